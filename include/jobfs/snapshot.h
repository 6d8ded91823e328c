/* snapshot: what one fetch returned, as a small tree of named dirs, files and
 * symlinks.
 *
 * Backends turn a server reply into a snapshot; the tree module diffs it
 * against what the kernel has seen. Snapshots know nothing of FUSE, JSON or
 * HTTP. Every name is checked on the way in (snap_name_ok), so a snapshot
 * never holds a name that cannot be a directory entry, and entries are capped
 * per directory (SNAP_DIR_MAX) and per snapshot (SNAP_MAX_ENTRIES) so a
 * hostile reply cannot grow it without bound. A directory of more than
 * SNAP_INDEX_MIN entries gets a hash index, so filling one stays linear.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/blob.h"

#define SNAP_NAME_MAX 255
/* per directory: the documented ceiling of a directory (man jobfs, LIMITS):
 * a job with 5,000 nodes fits, a jobs/ of 100,000 jobs fits */
#define SNAP_DIR_MAX 100000
/* per snapshot: a 16 MiB reply (--max-reply) cannot describe more than about
 * a million entries ("a":1, is 6 bytes), and 1,000,000 snap entries are
 * about 80 MB while they exist (one fetch at a time per worker) */
#define SNAP_MAX_ENTRIES 1000000
#define SNAP_INDEX_MIN 16       /* below it a scan is as fast as a hash */

/* SNAP_LAZY: a file whose bytes the fetch did not bring (a run's zipped
 * folder): the backend's fetch_file gets them when the file is first stat'ed
 * or read, never when its directory is listed. */
enum snap_type { SNAP_DIR, SNAP_FILE, SNAP_LINK, SNAP_LAZY };

struct snap {
        char *name;                     /* owned; NULL for the top */
        bool is_dir;                    /* type == SNAP_DIR */
        enum snap_type type;
        struct blob *content;           /* files: the bytes; links: the target; lazy: NULL.
                                         * Owned reference */
        struct snap **children;         /* dirs: owned, in insertion order */
        size_t n_children, cap_children;
        struct snap **slots;            /* dirs over SNAP_INDEX_MIN: open-addressing index */
        size_t n_slots;
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
/* Add a symlink to target (a relative path inside the mount, at most 4095
 * bytes, no NUL). */
int snap_add_link(struct snap *parent, const char *name, const char *target);

/* Add a lazy file (see SNAP_LAZY). */
int snap_add_lazy(struct snap *parent, const char *name);

const struct snap *snap_child(const struct snap *dir, const char *name);

/* A name a server sent may become a directory entry: not empty, ".", "..",
 * no '/', NUL or control character (C0, DEL, C1), valid UTF-8, at most 255
 * bytes. */
bool snap_name_ok(const char *name, size_t len);

/* FNV-1a of a NUL-terminated name: the hash the snapshot and tree indexes use. */
unsigned long long snap_name_hash(const char *name);
