/* blob: see include/jobfs/blob.h. */
#include "jobfs/blob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct blob *blob_alloc(size_t len)
{
        struct blob *b;

        if (len > SIZE_MAX - sizeof(*b) - 2)
                return NULL;
        b = malloc(sizeof(*b) + len + 1);
        if (!b)
                return NULL;
        b->refs = 1;
        b->len = len;
        b->data[len] = '\0';
        return b;
}

struct blob *blob_new(const void *data, size_t len)
{
        struct blob *b = blob_alloc(len);

        if (b && len)
                memcpy(b->data, data, len);
        return b;
}

struct blob *blob_new_line(const char *text, size_t len)
{
        struct blob *b = blob_alloc(len + 1);

        if (!b)
                return NULL;
        memcpy(b->data, text, len);
        b->data[len] = '\n';
        return b;
}

struct blob *blob_ref(struct blob *b)
{
        if (b)
                __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
        return b;
}

void blob_unref(struct blob *b)
{
        if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
                free(b);
}

bool blob_equal(const struct blob *a, const struct blob *b)
{
        if (a == b)
                return true;
        if (!a || !b || a->len != b->len)
                return false;
        return memcmp(a->data, b->data, a->len) == 0;
}
