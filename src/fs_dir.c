/* fs_dir: directory listings for the FUSE handlers (see include/jobfs/fs.h).
 *
 * opendir takes the entries once, so readdir offsets stay valid while jobs
 * appear; READDIRPLUS hands out attributes with the names, so `ls -l` and
 * `grep -r` need no LOOKUP per entry; opening a job directory starts the
 * readahead of the ones after it (prefetch.h).
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

/* Entries of one opendir, taken once so offsets stay valid while the tree
 * changes underneath (a job appearing mid-listing). items[0] is ".", items[1]
 * "..". The nodes outlive the handle: the kernel holds the open directory,
 * and eviction frees no child of a held directory. */
struct dir_list {
        size_t n;
        struct node *items[];
};

/* A listing past its TTL is served as it is while a pool thread refetches it
 * (stale-while-revalidate): the jobs/ list of 100,000 jobs is 160 MB, and an
 * `ls` must not wait seconds for it every TTL. New names appear once it is
 * in, with IN_CREATE for watchers. The first listing is waited for. */
static int refresh_listing(struct jobfs *fs, struct unit *u)
{
        return fs_refresh_unit(fs, u, 0);
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
                return fs_refresh(fs, d);
        }
}

/* The kernel may keep a directory's listing (cache_readdir) across opens
 * while the set of names in it is the same: a repeated `ls` or `grep -r`
 * then reads listings with no READDIR round trip. The signature of the
 * listing is a hash of the inode numbers shown, in order; cached_gen keeps
 * the one the kernel's copy was made from. */
static void keep_listing_if_same(struct node *d, const struct dir_list *l,
                                 struct fuse_file_info *fi)
{
        uint64_t sig = 1469598103934665603ULL;          /* FNV-1a over the inodes */

        for (size_t i = 2; i < l->n; i++)
                sig = (sig ^ l->items[i]->ino) * 1099511628211ULL;
        fi->cache_readdir = 1;
        fi->keep_cache = d->cached_gen == sig;
        d->cached_gen = sig;
}

static int do_opendir(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                      struct dir_list **ret)
{
        struct node *d = fs_node(fs, ino);
        struct dir_list *l;
        size_t n = 0;
        int r;

        if (!d->is_dir)
                return -ENOTDIR;
        if (!fs_from_notifier(fs, req)) {
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
        keep_listing_if_same(d, l, fi);
        *ret = l;
        return 0;
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        struct dir_list *l = NULL;
        int r;

        pthread_mutex_lock(&fs->tree->lock);
        r = do_opendir(fs, req, ino, fi, &l);
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

                        fs_fill_entry_nocount(fs, n, &e);
                        need = fuse_add_direntry_plus(req, buf + used, size - used, item_name(l, i),
                                                      &e, (off_t)(i + 1));
                        if (need <= size - used && i >= 2)
                                fs_hold(n);
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
        struct jobfs *fs = fs_jobfs(req);
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

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
        (void)ino;
        reply_dir(req, off, size, fi, false);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        (void)ino;
        reply_dir(req, off, size, fi, true);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        free((struct dir_list *)(uintptr_t)fi->fh);
        fuse_reply_err(req, 0);
}

