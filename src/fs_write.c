/* fs_write: every request that would change the tree. Users get EROFS (or
 * EACCES at open, in fs.c); the notifier thread alone may setattr, mkdir,
 * mknod, unlink and rmdir, which is how it makes the kernel raise inotify
 * events for remote changes (notify.h). Nothing is ever written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobfs/cache.h"
#include "jobfs/fs.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/prefetch.h"
#include "jobfs/tree.h"
#include "fs_internal.h"

/* Only the notifier's ftruncate/futimens get here; the file keeps the
 * server's content and our mtime, and the reply tells the kernel so. */
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        struct stat st;
        double timeout;

        (void)attr;
        (void)to_set;
        (void)fi;
        if (!fs_from_notifier(fs, req)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        pthread_mutex_lock(&fs->tree->lock);
        fs_fill_attr(fs_node(fs, ino), &st);
        timeout = fs_timeout(fs, fs_node(fs, ino));
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_attr(req, &st, timeout);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
        (void)ino;
        (void)buf;
        (void)size;
        (void)off;
        (void)fi;
        fuse_reply_err(req, EROFS);
}

/* The notifier's mkdir/mknod: reveal a pending entry (raises IN_CREATE). */
static int do_create_self(struct jobfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                          struct fuse_entry_param *e)
{
        struct node *n;

        if (!fs_from_notifier(fs, req))
                return -EROFS;
        n = tree_child(fs_node(fs, parent), name);
        if (!n || n->vis != VIS_PENDING_CREATE)
                return -EEXIST;
        n->vis = VIS_VISIBLE;
        fs_fill_entry(fs, n, e);
        return 0;
}

static void reply_create_self(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_jobfs(req);
        struct fuse_entry_param e;
        int r;

        pthread_mutex_lock(&fs->tree->lock);
        r = do_create_self(fs, req, parent, name, &e);
        pthread_mutex_unlock(&fs->tree->lock);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_entry(req, &e);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        (void)mode;
        reply_create_self(req, parent, name);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        (void)rdev;
        if (!S_ISREG(mode)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        reply_create_self(req, parent, name);
}

/* The notifier's unlink/rmdir: retire a vanished entry (raises IN_DELETE). */
static void remove_self(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_jobfs(req);
        struct node *n;
        int r = 0;

        if (!fs_from_notifier(fs, req)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        pthread_mutex_lock(&fs->tree->lock);
        n = tree_child(fs_node(fs, parent), name);
        if (n && n->vis == VIS_PENDING_DELETE)
                n->vis = VIS_GONE;
        else
                r = -ENOENT;
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_err(req, -r);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_self(req, parent, name);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_self(req, parent, name);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi)
{
        (void)parent;
        (void)name;
        (void)mode;
        (void)fi;
        fuse_reply_err(req, EROFS);
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags)
{
        (void)parent;
        (void)name;
        (void)newparent;
        (void)newname;
        (void)flags;
        fuse_reply_err(req, EROFS);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        (void)ino;
        (void)newparent;
        (void)newname;
        fuse_reply_err(req, EROFS);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        (void)link;
        (void)parent;
        (void)name;
        fuse_reply_err(req, EROFS);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
        (void)ino;
        (void)name;
        (void)value;
        (void)size;
        (void)flags;
        fuse_reply_err(req, EROFS);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        (void)ino;
        (void)name;
        fuse_reply_err(req, EROFS);
}

