/* fs: the FUSE low-level handlers. Thin: each translates the request, asks
 * the cache (cache.h) the one question it has, and replies exactly once,
 * after the tree lock is released.
 *
 * Nodeids are node addresses (tree_nodeid); a node the kernel holds is never
 * freed, so its nodeid stays valid. Users get a read-only filesystem: writes
 * and write access checks EROFS (where the kernel opens files by itself, a
 * write-open succeeds and the write fails: BUGS in jobfs(1)), changes to the
 * tree EROFS; only replay threads (replay.h) may open for writing, setattr,
 * mkdir, mknod, unlink and rmdir, which is how they raise inotify events.
 */
#pragma once
#include <fuse_lowlevel.h>

struct jobfs;
struct fs_waits;

extern const struct fuse_lowlevel_ops fs_ops;
/* Gives the mounted session (fs->se) jobfs's io (session.h); -errno when
 * this libfuse needs none or cannot. */
int fs_install_io(struct jobfs *fs);

/* The parked reads and polls of wait files (fs_wait.c): one thread answers
 * them; fs_waits_stop answers what is left with ECANCELED (loop running). */
int fs_waits_new(struct jobfs *fs, struct fs_waits **ret);
int fs_waits_start(struct fs_waits *w);
void fs_waits_stop(struct fs_waits *w);         /* idempotent */
void fs_waits_free(struct fs_waits *w);         /* NULL-safe; stops first */
size_t fs_waits_parked(struct fs_waits *w);     /* tree lock held */
