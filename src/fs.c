/* fs: see include/jobfs/fs.h. This file: the shared helpers, lookups,
 * attributes, reads and xattrs; fs_dir.c lists directories; fs_write.c holds
 * the notifier's writes and the refusals of everyone else's. */
#include "jobfs/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobfs/cache.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/notify.h"
#include "jobfs/prefetch.h"
#include "jobfs/tree.h"
#include "fs_internal.h"

struct jobfs *fs_jobfs(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

struct node *fs_node(struct jobfs *fs, fuse_ino_t ino)
{
        return ino == FUSE_ROOT_ID ? fs->tree->root : (struct node *)(uintptr_t)ino;
}

fuse_ino_t fs_ino(struct jobfs *fs, struct node *n)
{
        return n == fs->tree->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

bool fs_from_notifier(struct jobfs *fs, fuse_req_t req)
{
        return notifier_is_self(fs->notifier, fuse_req_ctx(req)->pid);
}

/* How long the kernel may cache n: long once its job is final. */
double fs_timeout(struct jobfs *fs, const struct node *n)
{
        if (n->unit && n->unit->terminal && (n->unit->kind == UNIT_JOB || n->unit->kind == UNIT_RUN))
                return JOBFS_FINAL_TIMEOUT;
        return fs->opts->ttl;
}

void fs_fill_attr(const struct node *n, struct stat *st)
{
        memset(st, 0, sizeof(*st));
        st->st_ino = n->ino;
        st->st_mode = n->is_dir ? S_IFDIR | 0555 : S_IFREG | 0444;
        st->st_nlink = n->is_dir ? 2 : 1;
        st->st_uid = getuid();
        st->st_gid = getgid();
        st->st_size = n->content ? (off_t)n->content->len : 0;
        st->st_blksize = 4096;
        st->st_blocks = (st->st_size + 511) / 512;
        st->st_mtim = n->mtime;
        st->st_ctim = n->mtime;
        st->st_atim = n->mtime;
}

void fs_fill_entry_nocount(struct jobfs *fs, struct node *n, struct fuse_entry_param *e)
{
        memset(e, 0, sizeof(*e));
        e->ino = fs_ino(fs, n);
        e->generation = 1;
        fs_fill_attr(n, &e->attr);
        e->attr_timeout = e->entry_timeout = fs_timeout(fs, n);
}

/* An entry handed to the kernel: it now holds one more reference. */
void fs_fill_entry(struct jobfs *fs, struct node *n, struct fuse_entry_param *e)
{
        fs_fill_entry_nocount(fs, n, e);
        fs_hold(n);
}

void fs_hold(struct node *n)
{
        if (n->nlookup++ == 0 && n->unit)
                n->unit->held++;
}

/* .jobfs/status is rendered on every stat and open, so its size is exact. */
static int render_status(struct jobfs *fs)
{
        char *text = jobfs_status_text(fs);
        struct blob *b;

        if (!text)
                return -ENOMEM;
        b = blob_new(text, strlen(text));
        free(text);
        if (!b)
                return -ENOMEM;
        if (!blob_equal(b, fs->status->content)) {
                fs->status->gen++;
                node_set_mtime_now(fs->status);
        }
        blob_unref(fs->status->content);
        fs->status->content = b;
        return 0;
}

/* 1 s: a healthy server answers well within it; past it, a reader of data
 * it has seen gets that data instead of waiting out --timeout. */
#define STALE_GRACE 1.0

int fs_refresh_unit(struct jobfs *fs, struct unit *u, double grace)
{
        if (u->ever_ok && u->fetching)
                return cache_wait(fs->cache, u, grace);        /* the poller's, say */
        if (u->ever_ok && cache_needs_fetch(fs->cache, u, fs->opts->ttl) &&
            prefetch_unit(fs->prefetch, u) == 0)
                return cache_wait(fs->cache, u, grace);
        return cache_refresh(fs->cache, u, fs->opts->ttl);
}

/* Brings the data of n (a file's content, a dir's children) up to the TTL.
 * Tree lock held. Stale data is fine (cache_refresh decides). */
int fs_refresh(struct jobfs *fs, struct node *n)
{
        if (n->role == ROLE_STATUS)
                return render_status(fs);
        if (!n->unit || n->role == ROLE_JOBS || n->role == ROLE_SOFTWARE)
                return 0;       /* listings refresh on readdir, not on every stat */
        return fs_refresh_unit(fs, n->unit, STALE_GRACE);
}

/* A job (under jobs/) or run (under software/NAME/) opened by its path. */
static int lookup_unit_dir(struct jobfs *fs, struct node *parent, const char *name,
                           struct node **ret)
{
        bool is_job = parent->role == ROLE_JOBS;
        struct node *n = tree_child(parent, name);
        int r;

        if (!n) {
                if (!snap_name_ok(name, strlen(name)))
                        return -ENOENT;
                r = cache_probe(fs->cache, parent, name, is_job ? UNIT_JOB : UNIT_RUN,
                                is_job ? ROLE_JOB : ROLE_RUN, is_job ? fs->bacalhau : fs->muse, &n);
                if (r < 0)
                        return r;
        }
        if (!n->unit->ever_ok || !node_visible(n)) {
                /* first sight (or gone): the server decides whether it exists */
                r = fs_refresh_unit(fs, n->unit, STALE_GRACE);
                if (r < 0)
                        return r;
        }
        *ret = n;
        return 0;
}

static int do_lookup(struct jobfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                     struct fuse_entry_param *e)
{
        struct node *p = fs_node(fs, parent), *n = NULL;
        bool self = fs_from_notifier(fs, req);
        int r = 0;

        if (!p->is_dir)
                return -ENOTDIR;
        if (strlen(name) > SNAP_NAME_MAX)
                return -ENAMETOOLONG;
        if (!self && (p->role == ROLE_JOBS || p->role == ROLE_SWNAME)) {
                r = lookup_unit_dir(fs, p, name, &n);
                if (r < 0)
                        return r;
                fs_fill_entry(fs, n, e);
                return 0;
        }
        n = tree_child(p, name);
        if (!self && p->role == ROLE_SOFTWARE && (!n || !node_visible(n))) {
                r = cache_refresh(fs->cache, fs->sw_list, fs->opts->ttl);
                n = tree_child(p, name);
        } else if (!self) {
                r = fs_refresh(fs, p);
                n = tree_child(p, name);
        }
        /* the notifier must not see a new name before its own mkdir/mknod,
         * or the kernel answers EEXIST without asking us, and no event */
        if (r < 0)
                return r;       /* no data to fall back on, or older than --max-stale */
        if (!n || !node_visible(n) || (self && n->vis == VIS_PENDING_CREATE))
                return -ENOENT;
        if (n->role == ROLE_STATUS && !self)
                render_status(fs);
        fs_fill_entry(fs, n, e);
        return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_jobfs(req);
        struct fuse_entry_param e;
        bool negative;
        int r;

        pthread_mutex_lock(&fs->tree->lock);
        r = do_lookup(fs, req, parent, name, &e);
        /* the server said no such job or run: the kernel keeps that answer
         * for the back-off (1 s), so a loop over unknown names costs one
         * request per name and second, and the daemon keeps nothing */
        negative = r == -ENOENT && !fs_from_notifier(fs, req) &&
                   (fs_node(fs, parent)->role == ROLE_JOBS || fs_node(fs, parent)->role == ROLE_SWNAME);
        pthread_mutex_unlock(&fs->tree->lock);
        if (negative) {
                memset(&e, 0, sizeof(e));
                e.entry_timeout = fs->cache->backoff;
                fuse_reply_entry(req, &e);
        } else if (r < 0) {
                fuse_reply_err(req, -r);
        } else {
                fuse_reply_entry(req, &e);
        }
}

static void forget_one(struct jobfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
        struct node *n = fs_node(fs, ino);

        bool was_held = n->nlookup > 0;

        n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
        if (was_held && n->nlookup == 0 && n->unit && n->unit->held > 0)
                n->unit->held--;
        /* the kernel let go of a job or run: room to evict past --cache-max */
        if (was_held && n->nlookup == 0 && n->unit && n->unit->held == 0 &&
            fs->cache->n_cached > fs->cache->cache_max)
                cache_trim(fs->cache);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        struct jobfs *fs = fs_jobfs(req);

        pthread_mutex_lock(&fs->tree->lock);
        forget_one(fs, ino, nlookup);
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        struct jobfs *fs = fs_jobfs(req);

        pthread_mutex_lock(&fs->tree->lock);
        for (size_t i = 0; i < count; i++)
                forget_one(fs, forgets[i].ino, forgets[i].nlookup);
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_none(req);
}

static int do_getattr(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct stat *st,
                      double *ret_timeout)
{
        struct node *n = fs_node(fs, ino);
        int r = 0;

        if (!n->is_dir && !fs_from_notifier(fs, req))
                r = fs_refresh(fs, n);
        if (r < 0)
                return r;       /* stale data within --max-stale comes back as 0 */
        fs_fill_attr(n, st);
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
        pthread_mutex_lock(&fs->tree->lock);
        r = do_getattr(fs, req, ino, &st, &timeout);
        pthread_mutex_unlock(&fs->tree->lock);
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
 * stale pages; the notifier's inval_inode does the same at once. Writes are
 * then refused at write/setattr time (EROFS) instead of at open (EACCES). */
static int do_open(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct node *n = fs_node(fs, ino);
        int r;

        if (n->is_dir)
                return -EISDIR;
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
                if (!fs_from_notifier(fs, req))
                        return -EACCES;
                return 0;
        }
        if (fs->kernel_opens)
                return -ENOSYS;
        r = fs_refresh(fs, n);
        if (r < 0)
                return r;
        /* the kernel's pages are still right unless the content changed since
         * they were read; a change also bumps mtime (auto_inval_data) */
        fi->keep_cache = n->cached_gen == n->gen;
        n->cached_gen = n->gen;
        fi->noflush = 1;        /* nothing to flush: close needs no round trip */
        if (n->role == ROLE_STATUS)
                fi->direct_io = 1;      /* rendered anew each time: no page cache */
        return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        int r;

        pthread_mutex_lock(&fs->tree->lock);
        r = do_open(fs, req, ino, fi);
        pthread_mutex_unlock(&fs->tree->lock);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        struct blob *b;

        (void)fi;
        pthread_mutex_lock(&fs->tree->lock);
        b = blob_ref(fs_node(fs, ino)->content);
        pthread_mutex_unlock(&fs->tree->lock);
        if (!b || off < 0 || (size_t)off >= b->len)
                fuse_reply_buf(req, NULL, 0);
        else
                fuse_reply_buf(req, b->data + off, size < b->len - (size_t)off ? size : b->len - (size_t)off);
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

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = SNAP_NAME_MAX };

        (void)ino;
        fuse_reply_statfs(req, &sv);
}

#define XATTR_FETCHED "user.jobfs.fetched"
#define XATTR_STALE "user.jobfs.stale"

/* user.jobfs.fetched: when the data was fetched; user.jobfs.stale: present,
 * with the error, while a refetch failed and old data is being served. */
static int xattr_value(struct jobfs *fs, const struct node *n, const char *name, char *buf,
                       size_t size)
{
        const struct unit *u = n->unit;
        struct tm tm;

        if (!u || (u->kind != UNIT_JOB && u->kind != UNIT_RUN) || !u->ever_ok)
                return -ENODATA;
        if (strcmp(name, XATTR_FETCHED) == 0) {
                gmtime_r(&u->fetched_wall.tv_sec, &tm);
                return (int)strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        if (strcmp(name, XATTR_STALE) == 0 && cache_unit_stale(fs->cache, u))
                return snprintf(buf, size, "%s", strerror(-u->error));
        return -ENODATA;
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
        char value[128];
        int len;

        pthread_mutex_lock(&fs->tree->lock);
        len = xattr_value(fs, fs_node(fs, ino), name, value, sizeof(value));
        pthread_mutex_unlock(&fs->tree->lock);
        reply_xattr(req, value, len, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        static const char *const names[] = { XATTR_FETCHED, XATTR_STALE };
        struct jobfs *fs = fs_jobfs(req);
        char list[64], value[128];
        int len = 0;

        pthread_mutex_lock(&fs->tree->lock);
        for (size_t i = 0; i < 2; i++)
                if (xattr_value(fs, fs_node(fs, ino), names[i], value, sizeof(value)) >= 0)
                        len += snprintf(list + len, sizeof(list) - (size_t)len, "%s", names[i]) + 1;
        pthread_mutex_unlock(&fs->tree->lock);
        reply_xattr(req, list, len, size);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        struct jobfs *fs = userdata;

        fs->kernel_opens = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
        /* a change of mtime seen by getattr drops stale pages (the default, made explicit) */
        if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
                conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
        if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
                conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

const struct fuse_lowlevel_ops fs_ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = fs_op_setattr,
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
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setxattr = fs_op_setxattr,
        .removexattr = fs_op_removexattr,
};
