/* blob: an immutable, reference-counted byte string (a file's content).
 *
 * Contents are shared between the tree (current value) and readers that took
 * a reference under the tree lock, so a read never copies under the lock and
 * a value can be replaced while a reader still uses the old one.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct blob {
        unsigned refs;          /* atomic */
        size_t len;
        char data[];            /* len bytes, plus a NUL not counted in len */
};

/* Returns a new blob holding a copy of data, refs = 1, or NULL on ENOMEM. */
struct blob *blob_new(const void *data, size_t len);
/* Like blob_new, with "\n" appended (short text values, sysfs style). */
struct blob *blob_new_line(const char *text, size_t len);
struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b);        /* NULL-safe */
bool blob_equal(const struct blob *a, const struct blob *b);
