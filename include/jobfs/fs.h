/* fs: the FUSE low-level handlers. Thin: each translates the request, calls
 * a worker that returns 0 or -errno, and replies exactly once.
 *
 * Nodeids are node pointers (the root is FUSE_ROOT_ID); a node the kernel
 * holds (nlookup > 0) is never freed (tree.h), so its nodeid stays valid. Users get a
 * read-only filesystem (writes EACCES, the rest EROFS); only the notifier
 * thread may open for writing, setattr, mkdir, mknod, unlink and rmdir, which
 * is how it makes the kernel raise inotify events (notify.h).
 */
#pragma once
#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops fs_ops;
