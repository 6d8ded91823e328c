/* fs: see include/jobfs/fs.h. */
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

/* Entries of one opendir, taken once so offsets stay valid while the tree
 * changes underneath (a job appearing mid-listing). items[0] is ".", items[1]
 * "..". The nodes outlive the handle: the kernel holds the directory, so
 * eviction leaves its children alone. */
struct dir_list {
        size_t n;
        struct node *items[];
};

static struct jobfs *fs_of(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

static struct node *node_of(struct jobfs *fs, fuse_ino_t ino)
{
        return ino == FUSE_ROOT_ID ? fs->tree->root : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct jobfs *fs, struct node *n)
{
        return n == fs->tree->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static bool from_notifier(struct jobfs *fs, fuse_req_t req)
{
        return notifier_is_self(fs->notifier, fuse_req_ctx(req)->pid);
}

/* How long the kernel may cache n: long once its job is final. */
static double timeout_of(struct jobfs *fs, const struct node *n)
{
        if (n->unit && n->unit->terminal && (n->unit->kind == UNIT_JOB || n->unit->kind == UNIT_RUN))
                return JOBFS_FINAL_TIMEOUT;
        return fs->opts->ttl;
}

static void fill_attr(const struct node *n, struct stat *st)
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

static void fill_entry_nocount(struct jobfs *fs, struct node *n, struct fuse_entry_param *e)
{
        memset(e, 0, sizeof(*e));
        e->ino = ino_of(fs, n);
        e->generation = 1;
        fill_attr(n, &e->attr);
        e->attr_timeout = e->entry_timeout = timeout_of(fs, n);
}

/* An entry handed to the kernel: it now holds one more reference. */
static void fill_entry(struct jobfs *fs, struct node *n, struct fuse_entry_param *e)
{
        fill_entry_nocount(fs, n, e);
        n->nlookup++;
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

/* Refreshes a unit past its TTL. When there is data to fall back on, the
 * refetch runs on a pool thread and the reader waits STALE_GRACE for it at
 * most, then reads what there is (the refetch goes on, bounded by its own
 * deadline, and its outcome is there for the next read). */
static int refresh_unit(struct jobfs *fs, struct unit *u)
{
        if (u->ever_ok && u->fetching)
                return cache_wait(fs->cache, u, STALE_GRACE);  /* the poller's, say */
        if (u->ever_ok && cache_needs_fetch(fs->cache, u, fs->opts->ttl) &&
            prefetch_unit(fs->prefetch, u))
                return cache_wait(fs->cache, u, STALE_GRACE);
        return cache_refresh(fs->cache, u, fs->opts->ttl);
}

/* Brings the data of n (a file's content, a dir's children) up to the TTL.
 * Tree lock held. Stale data is fine (cache_refresh decides). */
static int refresh(struct jobfs *fs, struct node *n)
{
        if (n->role == ROLE_STATUS)
                return render_status(fs);
        if (!n->unit || n->role == ROLE_JOBS || n->role == ROLE_SOFTWARE)
                return 0;       /* listings refresh on readdir, not on every stat */
        return refresh_unit(fs, n->unit);
}

/* A job (under jobs/) or run (under software/NAME/) opened by its path. */
static int lookup_unit_dir(struct jobfs *fs, struct node *parent, const char *name,
                           struct node **ret)
{
        bool is_job = parent->role == ROLE_JOBS;
        struct node *n = tree_child(parent, name);
        struct unit *u;
        int r;

        if (!n) {
                if (!snap_name_ok(name, strlen(name)))
                        return -ENOENT;
                r = tree_add(fs->tree, parent, name, true, is_job ? ROLE_JOB : ROLE_RUN, &n);
                if (r < 0)
                        return r;
                n->vis = VIS_GONE;
                r = cache_unit_new(fs->cache, is_job ? UNIT_JOB : UNIT_RUN, n,
                                   is_job ? fs->bacalhau : fs->muse, &u);
                if (r < 0)
                        return r;
        }
        if (!n->unit->ever_ok || !node_visible(n)) {
                /* first sight (or gone): the server decides whether it exists */
                r = refresh_unit(fs, n->unit);
                if (r < 0)
                        return r;
        }
        *ret = n;
        return 0;
}

static int do_lookup(struct jobfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                     struct fuse_entry_param *e)
{
        struct node *p = node_of(fs, parent), *n = NULL;
        bool self = from_notifier(fs, req);
        int r = 0;

        if (!p->is_dir)
                return -ENOTDIR;
        if (strlen(name) > SNAP_NAME_MAX)
                return -ENAMETOOLONG;
        if (!self && (p->role == ROLE_JOBS || p->role == ROLE_SWNAME)) {
                r = lookup_unit_dir(fs, p, name, &n);
                if (r < 0)
                        return r;
                fill_entry(fs, n, e);
                return 0;
        }
        n = tree_child(p, name);
        if (!self && p->role == ROLE_SOFTWARE && (!n || !node_visible(n))) {
                r = cache_refresh(fs->cache, fs->sw_list, fs->opts->ttl);
                n = tree_child(p, name);
        } else if (!self) {
                r = refresh(fs, p);
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
        fill_entry(fs, n, e);
        return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_of(req);
        struct fuse_entry_param e;
        int r;

        pthread_mutex_lock(&fs->tree->lock);
        r = do_lookup(fs, req, parent, name, &e);
        pthread_mutex_unlock(&fs->tree->lock);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_entry(req, &e);
}

static void forget_one(struct jobfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
        struct node *n = node_of(fs, ino);

        n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
        /* the kernel let go of a job or run: room to evict past --cache-max */
        if (n->nlookup == 0 && n->unit && n->unit->dir == n && fs->cache->n_cached > fs->cache->cache_max)
                cache_trim(fs->cache);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        struct jobfs *fs = fs_of(req);

        pthread_mutex_lock(&fs->tree->lock);
        forget_one(fs, ino, nlookup);
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        struct jobfs *fs = fs_of(req);

        pthread_mutex_lock(&fs->tree->lock);
        for (size_t i = 0; i < count; i++)
                forget_one(fs, forgets[i].ino, forgets[i].nlookup);
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_none(req);
}

static int do_getattr(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct stat *st,
                      double *ret_timeout)
{
        struct node *n = node_of(fs, ino);
        int r = 0;

        if (!n->is_dir && !from_notifier(fs, req))
                r = refresh(fs, n);
        if (r < 0)
                return r;       /* stale data within --max-stale comes back as 0 */
        fill_attr(n, st);
        *ret_timeout = timeout_of(fs, n);
        return 0;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_of(req);
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

/* Only the notifier's ftruncate/futimens get here; the file keeps the
 * server's content and our mtime, and the reply tells the kernel so. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_of(req);
        struct stat st;
        double timeout;

        (void)attr;
        (void)to_set;
        (void)fi;
        if (!from_notifier(fs, req)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        pthread_mutex_lock(&fs->tree->lock);
        fill_attr(node_of(fs, ino), &st);
        timeout = timeout_of(fs, node_of(fs, ino));
        pthread_mutex_unlock(&fs->tree->lock);
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
        struct node *n = node_of(fs, ino);
        int r;

        if (n->is_dir)
                return -EISDIR;
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
                if (!from_notifier(fs, req))
                        return -EACCES;
                return 0;
        }
        if (fs->kernel_opens)
                return -ENOSYS;
        r = refresh(fs, n);
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
        struct jobfs *fs = fs_of(req);
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
        struct jobfs *fs = fs_of(req);
        struct blob *b;

        (void)fi;
        pthread_mutex_lock(&fs->tree->lock);
        b = blob_ref(node_of(fs, ino)->content);
        pthread_mutex_unlock(&fs->tree->lock);
        if (!b || off < 0 || (size_t)off >= b->len)
                fuse_reply_buf(req, NULL, 0);
        else
                fuse_reply_buf(req, b->data + off, size < b->len - (size_t)off ? size : b->len - (size_t)off);
        blob_unref(b);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
        (void)ino;
        (void)buf;
        (void)size;
        (void)off;
        (void)fi;
        fuse_reply_err(req, EROFS);
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

/* A listing past its TTL is served as it is while a pool thread refetches it
 * (stale-while-revalidate): the jobs/ list of 100,000 jobs is 160 MB, and an
 * `ls` must not wait seconds for it every TTL. New names appear once it is
 * in, with IN_CREATE for watchers. The first listing is waited for. */
static int refresh_listing(struct jobfs *fs, struct unit *u)
{
        if (u->ever_ok && prefetch_unit(fs->prefetch, u))
                return 0;
        return cache_refresh(fs->cache, u, fs->opts->ttl);
}

/* Brings a directory's children up to date before listing them. */
static int refresh_dir(struct jobfs *fs, struct node *d)
{
        int r;

        if (d->role == ROLE_JOB || d->role == ROLE_RUN)
                prefetch_after(fs->prefetch, d);        /* a sweep goes on to the next ones */
        switch (d->role) {
        case ROLE_JOBS:
                /* the list endpoint adds to what we know; without it we still
                 * list the jobs opened so far */
                r = refresh_listing(fs, fs->jobs_list);
                if (r < 0)
                        log_debug("listing jobs/: %s", strerror(-r));
                return 0;
        case ROLE_SOFTWARE:
                return refresh_listing(fs, fs->sw_list);
        default:
                return refresh(fs, d);
        }
}

static int do_opendir(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct dir_list **ret)
{
        struct node *d = node_of(fs, ino);
        struct dir_list *l;
        size_t n = 0;
        int r;

        if (!d->is_dir)
                return -ENOTDIR;
        if (!from_notifier(fs, req)) {
                r = refresh_dir(fs, d);
                if (r < 0 && (!d->unit || !d->unit->ever_ok))
                        return r;
        }
        for (size_t i = 0; i < d->n_kids; i++)
                n += node_visible(d->kids[i]);
        l = calloc(1, sizeof(*l) + (n + 2) * sizeof(l->items[0]));
        if (!l)
                return -ENOMEM;
        l->items[l->n++] = d;
        l->items[l->n++] = d->parent ? d->parent : d;
        for (size_t i = 0; i < d->n_kids; i++)
                if (node_visible(d->kids[i]))
                        l->items[l->n++] = d->kids[i];
        *ret = l;
        return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_of(req);
        struct dir_list *l = NULL;
        int r;

        pthread_mutex_lock(&fs->tree->lock);
        r = do_opendir(fs, req, ino, &l);
        pthread_mutex_unlock(&fs->tree->lock);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uint64_t)(uintptr_t)l;
        if (fuse_reply_open(req, fi) != 0)
                free(l);
}

static const char *item_name(const struct dir_list *l, size_t i)
{
        return i == 0 ? "." : i == 1 ? ".." : l->items[i]->name;
}

/* Fills buf with entries from off on; with plus, each entry carries its
 * attributes (READDIRPLUS: `ls -l` and `grep -r` need no LOOKUP per entry)
 * and, "." and ".." aside, one more kernel reference. */
static size_t fill_dir(struct jobfs *fs, fuse_req_t req, const struct dir_list *l, off_t off,
                       char *buf, size_t size, bool plus)
{
        size_t used = 0;

        for (size_t i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
                struct node *n = l->items[i];
                size_t need;

                if (plus) {
                        struct fuse_entry_param e;

                        fill_entry_nocount(fs, n, &e);
                        need = fuse_add_direntry_plus(req, buf + used, size - used, item_name(l, i),
                                                      &e, (off_t)(i + 1));
                        if (need <= size - used && i >= 2)
                                n->nlookup++;
                } else {
                        struct stat st = { .st_ino = n->ino, .st_mode = n->is_dir ? S_IFDIR : S_IFREG };

                        need = fuse_add_direntry(req, buf + used, size - used, item_name(l, i), &st,
                                                 (off_t)(i + 1));
                }
                if (need > size - used)
                        break;
                used += need;
        }
        return used;
}

static void reply_dir(fuse_req_t req, off_t off, size_t size, struct fuse_file_info *fi, bool plus)
{
        struct jobfs *fs = fs_of(req);
        struct dir_list *l = (struct dir_list *)(uintptr_t)fi->fh;
        char *buf = malloc(size);
        size_t used;

        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        pthread_mutex_lock(&fs->tree->lock);
        used = fill_dir(fs, req, l, off, buf, size, plus);
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_buf(req, buf, used);
        free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        (void)ino;
        reply_dir(req, off, size, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        (void)ino;
        reply_dir(req, off, size, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        free((struct dir_list *)(uintptr_t)fi->fh);
        fuse_reply_err(req, 0);
}

/* The notifier's mkdir/mknod: reveal a pending entry (raises IN_CREATE). */
static int do_create_self(struct jobfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                          struct fuse_entry_param *e)
{
        struct node *n;

        if (!from_notifier(fs, req))
                return -EROFS;
        n = tree_child(node_of(fs, parent), name);
        if (!n || n->vis != VIS_PENDING_CREATE)
                return -EEXIST;
        n->vis = VIS_VISIBLE;
        fill_entry(fs, n, e);
        return 0;
}

static void reply_create_self(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct jobfs *fs = fs_of(req);
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

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        (void)mode;
        reply_create_self(req, parent, name);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
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
        struct jobfs *fs = fs_of(req);
        struct node *n;
        int r = 0;

        if (!from_notifier(fs, req)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        pthread_mutex_lock(&fs->tree->lock);
        n = tree_child(node_of(fs, parent), name);
        if (n && n->vis == VIS_PENDING_DELETE)
                n->vis = VIS_GONE;
        else
                r = -ENOENT;
        pthread_mutex_unlock(&fs->tree->lock);
        fuse_reply_err(req, -r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_self(req, parent, name);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_self(req, parent, name);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        (void)parent;
        (void)name;
        (void)mode;
        (void)fi;
        fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        (void)parent;
        (void)name;
        (void)newparent;
        (void)newname;
        (void)flags;
        fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        (void)ino;
        (void)newparent;
        (void)newname;
        fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        (void)link;
        (void)parent;
        (void)name;
        fuse_reply_err(req, EROFS);
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
        struct jobfs *fs = fs_of(req);
        char value[128];
        int len;

        pthread_mutex_lock(&fs->tree->lock);
        len = xattr_value(fs, node_of(fs, ino), name, value, sizeof(value));
        pthread_mutex_unlock(&fs->tree->lock);
        reply_xattr(req, value, len, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        static const char *const names[] = { XATTR_FETCHED, XATTR_STALE };
        struct jobfs *fs = fs_of(req);
        char list[64], value[128];
        int len = 0;

        pthread_mutex_lock(&fs->tree->lock);
        for (size_t i = 0; i < 2; i++)
                if (xattr_value(fs, node_of(fs, ino), names[i], value, sizeof(value)) >= 0)
                        len += snprintf(list + len, sizeof(list) - (size_t)len, "%s", names[i]) + 1;
        pthread_mutex_unlock(&fs->tree->lock);
        reply_xattr(req, list, len, size);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
        (void)ino;
        (void)name;
        (void)value;
        (void)size;
        (void)flags;
        fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        (void)ino;
        (void)name;
        fuse_reply_err(req, EROFS);
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
        .setattr = op_setattr,
        .open = op_open,
        .read = op_read,
        .write = op_write,
        .flush = op_flush,
        .release = op_release,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .mkdir = op_mkdir,
        .mknod = op_mknod,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .create = op_create,
        .rename = op_rename,
        .link = op_link,
        .symlink = op_symlink,
        .statfs = op_statfs,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
};
