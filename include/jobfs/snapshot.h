/* snapshot: what one fetch returned, as a small tree of named dirs and files.
 *
 * Backends turn a server reply into a snapshot; the tree module diffs it
 * against what the kernel has seen. Snapshots know nothing of FUSE, JSON or
 * HTTP. Every name is checked on the way in (snap_name_ok), so a snapshot
 * never holds a name that cannot be a directory entry, and the number of
 * entries is capped (SNAP_MAX_ENTRIES) so a hostile reply cannot grow it
 * without bound.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/blob.h"

#define SNAP_NAME_MAX 255
#define SNAP_MAX_ENTRIES 100000   /* per snapshot: 100x the largest real job seen */
/* per directory: a job has tens of nodes; the cap keeps the duplicate check
 * (a scan) from going quadratic on a hostile reply of 50,000 node ids */
#define SNAP_DIR_MAX 1024

struct snap {
        char *name;                     /* owned; NULL for the top */
        bool is_dir;
        struct blob *content;           /* files: owned reference */
        struct snap **children;         /* dirs: owned */
        size_t n_children, cap_children;
        size_t *count;                  /* entries in the whole snapshot (top's) */
};

/* A new empty top directory; caller frees with snap_free. */
struct snap *snap_new(void);
void snap_free(struct snap *s);         /* NULL-safe, recursive */

/* Add a subdirectory; *ret is borrowed until snap_free of the top.
 * -EINVAL for an unsafe name, -EEXIST for a duplicate, -E2BIG past a cap. */
int snap_add_dir(struct snap *parent, const char *name, struct snap **ret);
/* Add a file; takes the content reference in every case (also on error). */
int snap_add_file(struct snap *parent, const char *name, struct blob *content);
/* Add a file holding text + "\n" (or nothing, for an empty text). */
int snap_add_text(struct snap *parent, const char *name, const char *text, size_t len);

const struct snap *snap_child(const struct snap *dir, const char *name);

/* A name a server sent may become a directory entry: not empty, ".", "..",
 * no '/', NUL or control character (C0, DEL, C1), valid UTF-8, at most 255
 * bytes. */
bool snap_name_ok(const char *name, size_t len);
