/* fs_dir: directory listings for the FUSE handlers (see include/jobfs/fs.h).
 *
 * opendir takes the entries once, so readdir offsets stay valid while jobs
 * appear; READDIRPLUS hands out attributes with the names, so `ls -l` and
 * `grep -r` need no LOOKUP per entry; opening a job directory starts the
 * readahead of the ones after it (cache_readahead).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobfs/cache.h"
#include "jobfs/fs.h"
#include "jobfs/jobfs.h"
#include "jobfs/tree.h"
#include "fs_internal.h"

/* Entries of one opendir, taken once so offsets stay valid while the tree
 * changes underneath (a job appearing mid-listing). items[0] is ".", items[1]
 * "..". The handle keeps them allocated (tree_dir_open); one that vanished
 * since is skipped, never handed out again (a READDIRPLUS entry would make
 * the kernel re-create the dentry of a name that is gone). */
struct dir_list {
        struct node *dir;
        size_t n, cap;
        struct node *items[];
};

static int add_item(void *ctx, struct node *kid)
{
        struct dir_list *l = ctx;

        /* a wait file is found by name but never listed: a read of it blocks
         * until the job is final, and `grep -r`, `find -exec cat`, `cp -r`
         * or `tar` over a live job would block with it */
        if (node_role(kid) == ROLE_WAIT)
                return 0;
        if (l->n == l->cap)
                return -E2BIG;  /* cannot happen: cap counted the same kids */
        l->items[l->n++] = kid;
        return 0;
}

static int do_opendir(struct jobfs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                      struct dir_list **ret)
{
        struct node *d = fs_node(fs, ino);
        struct cache_caller who = fs_caller(req);
        size_t cap;
        struct dir_list *l;
        int r;

        if (!node_is_dir(d))
                return -ENOTDIR;
        if (!fs_from_replay(fs, req)) {
                /* a listing is shown as it is while it refreshes behind (the
                 * jobs/ list of 100,000 jobs is 160 MB, an `ls` must not wait
                 * for it every TTL); a job waits for its data */
                r = cache_get(fs->cache, d, node_role(d) == ROLE_AREA ? NEED_LISTING : NEED_FRESH, &who);
                if (r < 0)
                        return r;
                cache_readahead(fs->cache, d);  /* a sweep goes on to the next ones */
        }
        cap = tree_kids(d) + 2;
        l = calloc(1, sizeof(*l) + cap * sizeof(l->items[0]));
        if (!l)
                return -ENOMEM;
        l->dir = d;
        l->cap = cap;
        l->items[l->n++] = d;
        l->items[l->n++] = node_parent(d) ? node_parent(d) : d;
        tree_each_child(d, add_item, l);
        tree_dir_open(d);
        /* the kernel keeps a listing (cache_readdir) across opens while the
         * names in it are the same: a repeated `ls` or `grep -r` costs no
         * READDIR round trip */
        fi->cache_readdir = 1;
        fi->keep_cache = tree_kernel_copy_valid(d);
        *ret = l;
        return 0;
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct jobfs *fs = fs_jobfs(req);
        struct dir_list *l = NULL;
        int r;

        pthread_mutex_lock(tree_mutex(fs->tree));
        r = do_opendir(fs, req, ino, fi, &l);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uint64_t)(uintptr_t)l;
        if (fuse_reply_open(req, fi) != 0) {
                pthread_mutex_lock(tree_mutex(fs->tree));
                tree_dir_close(fs->tree, l->dir);
                pthread_mutex_unlock(tree_mutex(fs->tree));
                free(l);
        }
}

static const char *item_name(const struct dir_list *l, size_t i)
{
        return i == 0 ? "." : i == 1 ? ".." : node_name(l->items[i]);
}

/* Fills buf with entries from off on; with plus, each entry carries its
 * attributes (READDIRPLUS: `ls -l` and `grep -r` need no LOOKUP per entry)
 * and, "." and ".." aside, one more kernel reference, whose node is put in
 * refs (room for size / 24 + 1: no entry is smaller). Tree lock held. */
static size_t fill_dir(struct jobfs *fs, fuse_req_t req, const struct dir_list *l, off_t off,
                       char *buf, size_t size, struct node **refs, size_t *n_refs)
{
        size_t used = 0;

        for (size_t i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
                struct node *n = l->items[i];
                size_t need;

                if (i >= 2 && !node_visible(n))
                        continue;       /* vanished since opendir */
                if (refs) {
                        struct fuse_entry_param e;

                        fs_fill_entry_nocount(fs, n, &e);
                        need = fuse_add_direntry_plus(req, buf + used, size - used, item_name(l, i),
                                                      &e, (off_t)(i + 1));
                        if (need <= size - used && i >= 2) {
                                cache_kernel_ref(fs->cache, n);
                                refs[(*n_refs)++] = n;
                        }
                } else {
                        struct stat st;

                        fs_fill_attr(fs, n, &st);
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
        /* 24 bytes: the smallest dirent (FUSE_NAME_OFFSET + a 1-byte name,
         * padded); a direntplus is larger still */
        struct node **refs = plus ? calloc(size / 24 + 1, sizeof(*refs)) : NULL;
        char *buf = malloc(size);
        size_t used, n_refs = 0;

        if (!buf || (plus && !refs)) {
                fuse_reply_err(req, ENOMEM);
                goto out;
        }
        pthread_mutex_lock(tree_mutex(fs->tree));
        used = fill_dir(fs, req, l, off, buf, size, refs, &n_refs);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (fuse_reply_buf(req, buf, used) < 0 && n_refs) {
                /* refused (interrupted): the kernel took none of the references */
                pthread_mutex_lock(tree_mutex(fs->tree));
                for (size_t i = 0; i < n_refs; i++)
                        cache_kernel_forget(fs->cache, refs[i], 1);
                pthread_mutex_unlock(tree_mutex(fs->tree));
        }
out:
        free(refs);
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
        struct jobfs *fs = fs_jobfs(req);
        struct dir_list *l = (struct dir_list *)(uintptr_t)fi->fh;

        (void)ino;
        pthread_mutex_lock(tree_mutex(fs->tree));
        tree_dir_close(fs->tree, l->dir);       /* its vanished names may go now */
        pthread_mutex_unlock(tree_mutex(fs->tree));
        free(l);
        fuse_reply_err(req, 0);
}
