/* fs_replay: every request that would change the tree. Replay threads
 * (replay.h) alone may setattr, mkdir, mknod, unlink and rmdir: that is how
 * they make the kernel raise inotify events for remote changes. Everyone
 * else gets EROFS (or EACCES at open, in fs.c). Nothing is ever written.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobfs/cache.h"
#include "jobfs/fs.h"
#include "jobfs/jobfs.h"
#include "jobfs/tree.h"
#include "fs_internal.h"

/* Only the replay's ftruncate/futimens get here; the file keeps the
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
        if (!fs_from_replay(fs, req)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        pthread_mutex_lock(tree_mutex(fs->tree));
        fs_fill_attr(fs, fs_node(fs, ino), &st);
        timeout = fs_timeout(fs, fs_node(fs, ino));
        pthread_mutex_unlock(tree_mutex(fs->tree));
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

/* A write permission check (`[ -w state ]`, access(W_OK)) says what a write
 * would meet; reads and searches are allowed. */
void fs_op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
        struct jobfs *fs = fs_jobfs(req);

        (void)ino;
        fuse_reply_err(req, (mask & W_OK) && !fs_from_replay(fs, req) ? EROFS : 0);
}

/* The replay's mkdir/mknod: reveal a pending entry (raises IN_CREATE). */
static void create_self(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_jobfs(req);
        struct fuse_entry_param e;
        struct node *n = NULL;
        int r = -EROFS;

        pthread_mutex_lock(tree_mutex(fs->tree));
        if (fs_from_replay(fs, req)) {
                n = tree_child(fs_node(fs, parent), name);
                r = n ? tree_replayed(n, CHANGE_CREATE) : -EEXIST;
                if (r == 0)
                        fs_fill_entry(fs, n, &e);
        }
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fs_reply_entry(fs, req, n, &e);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        (void)mode;
        create_self(req, parent, name);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        (void)rdev;
        if (!S_ISREG(mode)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        create_self(req, parent, name);
}

/* The replay's unlink/rmdir: retire a vanished entry (raises IN_DELETE). */
static void remove_self(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_jobfs(req);
        struct node *n;
        int r = -EROFS;

        pthread_mutex_lock(tree_mutex(fs->tree));
        if (fs_from_replay(fs, req)) {
                n = tree_child(fs_node(fs, parent), name);
                r = n ? tree_replayed(n, CHANGE_DELETE) : -ENOENT;
        }
        pthread_mutex_unlock(tree_mutex(fs->tree));
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
