/* fs: see include/jobfs/fs.h. This file: the shared helpers, lookups,
 * attributes, reads and xattrs; fs_dir.c lists directories; fs_replay.c
 * holds the receivers of the replays' syscalls and the refusals of
 * everyone else's. */
#include "jobfs/fs.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "jobfs/cache.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/replay.h"
#include "jobfs/session.h"
#include "jobfs/tree.h"
#include "fs_internal.h"

struct jobfs *fs_jobfs(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

struct node *fs_node(struct jobfs *fs, fuse_ino_t ino)
{
        return tree_from_nodeid(fs->tree, ino);
}

bool fs_from_replay(struct jobfs *fs, fuse_req_t req)
{
        return replay_is_self(fs->replay, fuse_req_ctx(req)->pid);
}

static bool req_interrupted(void *ctx)
{
        return fuse_req_interrupted(ctx);
}

struct cache_caller fs_caller(fuse_req_t req)
{
        return (struct cache_caller){ .interrupted = req_interrupted, .ctx = req };
}

double fs_timeout(struct jobfs *fs, const struct node *n)
{
        struct node_attr a;

        node_attr(n, &a);
        /* live: its size is a placeholder, asked again each time */
        if (node_role(n) == ROLE_WAIT && !a.has_content)
                return 0;
        /* rendered anew on every stat: the kernel must ask, or a read of a
         * changed status would stop at the old size */
        if (node_role(n) == ROLE_STATUS || node_role(n) == ROLE_METRICS)
                return 0;
        return cache_timeout(fs->cache, n);
}

void fs_fill_attr(struct jobfs *fs, const struct node *n, struct stat *st)
{
        struct node_attr a;

        node_attr(n, &a);
        memset(st, 0, sizeof(*st));
        st->st_ino = a.ino;
        st->st_mode = a.type == NODE_DIR ? S_IFDIR | 0555 : a.type == NODE_LINK ? S_IFLNK | 0777
                                                                               : S_IFREG | 0444;
        st->st_nlink = a.type == NODE_DIR ? 2 : 1;
        st->st_uid = fs->uid;
        st->st_gid = fs->gid;
        st->st_size = a.type == NODE_DIR ? 0 : (off_t)a.size;
        /* a live job's wait file: a size that makes the kernel ask for the
         * bytes (a read of 0 bytes would not reach us); the answer is shorter */
        if (node_role(n) == ROLE_WAIT && !a.has_content)
                st->st_size = WAIT_SIZE_LIVE;
        st->st_blksize = 4096;
        st->st_blocks = (st->st_size + 511) / 512;
        st->st_mtim = a.mtime;
        st->st_ctim = a.mtime;
        st->st_atim = a.mtime;
}

void fs_fill_entry_nocount(struct jobfs *fs, struct node *n, struct fuse_entry_param *e)
{
        memset(e, 0, sizeof(*e));
        e->ino = tree_nodeid(fs->tree, n);
        e->generation = 1;
        fs_fill_attr(fs, n, &e->attr);
        e->attr_timeout = e->entry_timeout = fs_timeout(fs, n);
}

void fs_fill_entry(struct jobfs *fs, struct node *n, struct fuse_entry_param *e)
{
        fs_fill_entry_nocount(fs, n, e);
        cache_kernel_ref(fs->cache, n);
}

void fs_reply_entry(struct jobfs *fs, fuse_req_t req, struct node *n,
                    const struct fuse_entry_param *e)
{
        if (fuse_reply_entry(req, e) < 0 && n) {
                pthread_mutex_lock(tree_mutex(fs->tree));
                cache_kernel_forget(fs->cache, n, 1);
                pthread_mutex_unlock(tree_mutex(fs->tree));
        }
}

/* .jobfs/status and .jobfs/metrics are rendered on every lookup, stat and
 * read, so their sizes are exact. */
static bool is_rendered(const struct node *n)
{
        return node_role(n) == ROLE_STATUS || node_role(n) == ROLE_METRICS;
}

static int render(struct jobfs *fs, struct node *n)
{
        char *text = node_role(n) == ROLE_STATUS ? jobfs_status_text(fs) : jobfs_metrics_text(fs);
        struct blob *b;

        if (!text)
                return -ENOMEM;
        b = blob_new(text, strlen(text));
        free(text);
        if (!b)
                return -ENOMEM;
        node_set_content(n, b);
        return 0;
}

/* Brings the data of n up to date before its attributes or bytes are given. */
static int refresh(struct jobfs *fs, fuse_req_t req, struct node *n)
{
        struct cache_caller who = fs_caller(req);

        if (is_rendered(n))
                return render(fs, n);
        return cache_get(fs->cache, n, NEED_FRESH, &who);
}

static int do_lookup(struct jobfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                     struct fuse_entry_param *e, struct node **ret)
{
        struct node *p = fs_node(fs, parent), *n = NULL;
        struct cache_caller who = fs_caller(req);
        int r;

        if (fs_from_replay(fs, req)) {
                /* a replay must not see a new name before its own mkdir/mknod,
                 * or the kernel answers EEXIST without asking us, and no event */
                n = node_is_dir(p) ? tree_child(p, name) : NULL;
                if (!n || !node_visible(n) || node_hidden_from_replay(n))
                        return -ENOENT;
        } else {
                r = cache_lookup(fs->cache, p, name, &who, &n);
                if (r < 0)
                        return r;
                if (is_rendered(n))
                        render(fs, n);
        }
        fs_fill_entry(fs, n, e);
        *ret = n;
        return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_jobfs(req);
        struct fuse_entry_param e;
        struct node *n = NULL;
        double negative = 0;
        int r;

        pthread_mutex_lock(tree_mutex(fs->tree));
        r = do_lookup(fs, req, parent, name, &e, &n);
        if (r == -ENOENT && !fs_from_replay(fs, req))
                negative = cache_negative_timeout(fs->cache, fs_node(fs, parent));
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (negative > 0) {
                /* the server said no such job: the kernel keeps that answer for
                 * the back-off, and the daemon keeps nothing */
                memset(&e, 0, sizeof(e));
                e.entry_timeout = negative;
                fuse_reply_entry(req, &e);
        } else if (r < 0) {
                fuse_reply_err(req, -r);
        } else {
                fs_reply_entry(fs, req, n, &e);
        }
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        struct jobfs *fs = fs_jobfs(req);

        pthread_mutex_lock(tree_mutex(fs->tree));
        cache_kernel_forget(fs->cache, fs_node(fs, ino), nlookup);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        struct jobfs *fs = fs_jobfs(req);

        pthread_mutex_lock(tree_mutex(fs->tree));
        for (size_t i = 0; i < count; i++)
                cache_kernel_forget(fs->cache, fs_node(fs, forgets[i].ino), forgets[i].nlookup);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        fuse_reply_none(req);
}

static int do_getattr(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct stat *st,
                      double *ret_timeout)
{
        struct node *n = fs_node(fs, ino);
        int r = 0;

        /* a directory's attributes do not depend on its data; a file's do */
        if (!node_is_dir(n) && !fs_from_replay(fs, req))
                r = refresh(fs, req, n);
        if (r < 0)
                return r;       /* stale data within --max-stale comes back as 0 */
        fs_fill_attr(fs, n, st);
        *ret_timeout = fs_timeout(fs, n);
        return 0;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        double timeout = 0;
        struct stat st;
        int r;

        (void)fi;
        pthread_mutex_lock(tree_mutex(fs->tree));
        r = do_getattr(fs, req, ino, &st, &timeout);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_attr(req, &st, timeout);
}

/* Where the kernel supports it (FUSE_CAP_NO_OPEN_SUPPORT), the first open is
 * answered ENOSYS and the kernel then opens files by itself with keep_cache:
 * a warm open+read+close costs no round trip at all. Freshness does not need
 * open: with auto_inval_data every read past the attribute timeout asks
 * getattr, which refreshes the unit, and a changed mtime or size drops the
 * stale pages; the replay's inval_inode does the same at once. Writes are
 * then refused at write/setattr time (EROFS) instead of at open (EACCES). */
static int do_open(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct node *n = fs_node(fs, ino);
        int r;

        if (node_is_dir(n))
                return -EISDIR;
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
                return fs_from_replay(fs, req) ? 0 : -EACCES;
        if (fs->kernel_opens)
                return -ENOSYS;
        r = refresh(fs, req, n);
        if (r < 0)
                return r;
        /* the kernel's pages are still right unless the content changed since
         * they were read; a change also bumps mtime (auto_inval_data) */
        fi->keep_cache = tree_kernel_copy_valid(n);
#if HAVE_FUSE_NOFLUSH
        fi->noflush = 1;        /* nothing to flush: close needs no round trip (3.11+) */
#endif
        if (is_rendered(n))
                fi->direct_io = 1;      /* rendered anew each time: no page cache */
        return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        int r;

        pthread_mutex_lock(tree_mutex(fs->tree));
        r = do_open(fs, req, ino, fi);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        struct cache_caller who = fs_caller(req);
        struct node *n;
        struct blob *b = NULL;
        int r = 0;

        (void)fi;
        pthread_mutex_lock(tree_mutex(fs->tree));
        n = fs_node(fs, ino);
        if (node_role(n) == ROLE_WAIT) {
                pthread_mutex_unlock(tree_mutex(fs->tree));
                fs_wait_read(req, n, size, off);        /* answered when final */
                return;
        }
        if (is_rendered(n) && off == 0)
                render(fs, n);
        if (!fs_from_replay(fs, req))
                r = cache_content(fs->cache, n, &who, &b);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (r < 0)
                fuse_reply_err(req, -r);
        else if (!b || off < 0 || (size_t)off >= b->len)
                fuse_reply_buf(req, NULL, 0);
        else
                fuse_reply_buf(req, b->data + off, size < b->len - (size_t)off ? size : b->len - (size_t)off);
        blob_unref(b);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct fuse_pollhandle *ph)
{
        struct jobfs *fs = fs_jobfs(req);
        struct node *n;

        (void)fi;
        pthread_mutex_lock(tree_mutex(fs->tree));
        n = fs_node(fs, ino);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (node_role(n) == ROLE_WAIT) {
                fs_wait_poll(req, n, ph);
                return;
        }
        if (ph)
                fuse_pollhandle_destroy(ph);
        fuse_reply_poll(req, POLLIN | POLLRDNORM);      /* the rest never blocks */
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct jobfs *fs = fs_jobfs(req);
        struct blob *b;

        pthread_mutex_lock(tree_mutex(fs->tree));
        b = node_content(fs_node(fs, ino));
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (!b)
                fuse_reply_err(req, EINVAL);
        else
                fuse_reply_readlink(req, b->data);
        blob_unref(b);
}

/* Nothing is ever written, so nothing to flush: ENOSYS makes the kernel stop
 * sending FLUSH on every close (fc->no_flush), one round trip fewer. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        (void)fi;
        fuse_reply_err(req, ENOSYS);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        (void)fi;
        fuse_reply_err(req, 0);
}

/* df shows the cache: its size is --cache-bytes, what is used is cached. */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct jobfs *fs = fs_jobfs(req);
        struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = SNAP_NAME_MAX };
        struct cache_stats st;

        (void)ino;
        pthread_mutex_lock(tree_mutex(fs->tree));
        cache_stats(fs->cache, &st);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        sv.f_blocks = st.cache_bytes / 4096;
        sv.f_bfree = sv.f_bavail = st.bytes < st.cache_bytes ? (st.cache_bytes - st.bytes) / 4096 : 0;
        sv.f_files = st.units;
        fuse_reply_statfs(req, &sv);
}

static void reply_xattr(fuse_req_t req, const char *value, int len, size_t size)
{
        if (len < 0)
                fuse_reply_err(req, -len);
        else if (size == 0)
                fuse_reply_xattr(req, (size_t)len);
        else if ((size_t)len > size)
                fuse_reply_err(req, ERANGE);
        else
                fuse_reply_buf(req, value, (size_t)len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        struct jobfs *fs = fs_jobfs(req);
        char value[256];
        int len;

        pthread_mutex_lock(tree_mutex(fs->tree));
        len = cache_xattr(fs->cache, fs_node(fs, ino), name, value, sizeof(value));
        pthread_mutex_unlock(tree_mutex(fs->tree));
        reply_xattr(req, value, len, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        static const char *const names[] = { "user.jobfs.fetched", "user.jobfs.stale" };
        struct jobfs *fs = fs_jobfs(req);
        char list[64], value[256];
        int len = 0;

        pthread_mutex_lock(tree_mutex(fs->tree));
        for (size_t i = 0; i < 2; i++)
                if (cache_xattr(fs->cache, fs_node(fs, ino), names[i], value, sizeof(value)) >= 0)
                        len += snprintf(list + len, sizeof(list) - (size_t)len, "%s", names[i]) + 1;
        pthread_mutex_unlock(tree_mutex(fs->tree));
        reply_xattr(req, list, len, size);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        struct jobfs *fs = userdata;

        /* --strict-writes keeps opens here, to refuse writes at open (jobfs(1), BUGS) */
        fs->kernel_opens = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0 && !fs->opts->strict_writes;
        /* a change of mtime seen by getattr drops stale pages (the default, made explicit) */
        if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
                conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
        /* reads the reader itself waits for: the kernel then sends INTERRUPT
         * for any signal, so Ctrl-C ends a parked read of a wait file in a
         * program that handles SIGINT (python, a shell's read). Readahead
         * done in the background waits in the page lock, which only a fatal
         * signal breaks. Files are small and cached; measured in README. */
        conn->want &= ~FUSE_CAP_ASYNC_READ;
        /* lookups in one directory in parallel: one slow job must not hold
         * up the others (session.c makes sure libfuse passes it on) */
        if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) {
                conn->want |= FUSE_CAP_PARALLEL_DIROPS;
                session_want_parallel_dirops(&fs->sio);
        }
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
        struct jobfs *fs = userdata;

        return session_read(&fs->sio, fd, buf, len);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
        struct jobfs *fs = userdata;

        return session_writev(&fs->sio, fd, iov, count);
}

int fs_install_io(struct jobfs *fs)
{
        return session_install(fs->se, &fs->sio, io_read, io_writev);
}

const struct fuse_lowlevel_ops fs_ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = fs_op_setattr,
        .readlink = op_readlink,
        .poll = op_poll,
        .open = op_open,
        .read = op_read,
        .write = fs_op_write,
        .flush = op_flush,
        .release = op_release,
        .opendir = fs_op_opendir,
        .readdir = fs_op_readdir,
        .readdirplus = fs_op_readdirplus,
        .releasedir = fs_op_releasedir,
        .mkdir = fs_op_mkdir,
        .mknod = fs_op_mknod,
        .unlink = fs_op_unlink,
        .rmdir = fs_op_rmdir,
        .create = fs_op_create,
        .rename = fs_op_rename,
        .link = fs_op_link,
        .symlink = fs_op_symlink,
        .statfs = op_statfs,
        .access = fs_op_access,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setxattr = fs_op_setxattr,
        .removexattr = fs_op_removexattr,
};
