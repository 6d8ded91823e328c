/* fs: the FUSE low-level handlers. Thin: each translates the request, calls
 * a worker that returns 0 or -errno, and replies exactly once.
 *
 * Nodeids are node pointers (the root is FUSE_ROOT_ID); nodes live until
 * unmount, so a nodeid the kernel holds is always valid. Users get a
 * read-only filesystem (writes EACCES, the rest EROFS); only the notifier
 * thread may open for writing, setattr, mkdir, mknod, unlink and rmdir, which
 * is how it makes the kernel raise inotify events (notify.h).
 */
#pragma once
#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops fs_ops;
