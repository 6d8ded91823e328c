/* replay: see include/jobfs/replay.h.
 *
 * Locks are never held across a notify_* call or a syscall on the mount
 * (notes/fuse-inotify.md pitfall 5): what a replay needs of a node is
 * copied under the tree lock first (struct target).
 */
#include "jobfs/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "jobfs/clock.h"
#include "jobfs/log.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define TOPS_MAX 8
/* 20 ms: how often deferred mkdirs and rmdirs look whether the lookups in
 * their directory are done; a slow lookup lasts up to --timeout (10 s) */
#define DEFER_RETRY 0.02

struct queue {
        struct replay *r;
        struct node *top;               /* the top-level directory it serves */
        struct changes q;               /* protected by the tree lock */
        struct changes deferred;        /* the thread's own */
        pthread_cond_t wake;            /* on the tree lock, monotonic */
        pthread_t thread;
        pid_t tid;                      /* atomic: the thread's tid, 0 when none */
        int rootfd;                     /* O_PATH fd of the mount root, -1 when closed */
};

struct replay {
        struct replay_config cfg;
        struct fuse_session *se;
        dev_t dev;                      /* st_dev of our mount, taken at start */
        struct queue tops[TOPS_MAX];
        unsigned n_tops;
        bool stop, started;             /* protected by the tree lock */
        unsigned long events;           /* atomic */
};

int replay_new(const struct replay_config *cfg, struct replay **ret)
{
        struct replay *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->cfg = *cfg;
        *ret = r;
        return 0;
}

int replay_add_top(struct replay *r, struct node *top)
{
        struct queue *q;
        int rr;

        if (r->n_tops == TOPS_MAX)
                return -E2BIG;
        q = &r->tops[r->n_tops];
        memset(q, 0, sizeof(*q));
        q->r = r;
        q->top = top;
        q->rootfd = -1;
        rr = clock_cond_init(&q->wake);
        if (rr < 0)
                return rr;
        r->n_tops++;
        return 0;
}

bool replay_is_self(const struct replay *r, pid_t tid)
{
        if (tid == 0)
                return false;
        for (unsigned i = 0; i < r->n_tops; i++)
                if (tid == __atomic_load_n(&r->tops[i].tid, __ATOMIC_ACQUIRE))
                        return true;
        return false;
}

unsigned long replay_events(const struct replay *r)
{
        return __atomic_load_n(&r->events, __ATOMIC_RELAXED);
}

static struct queue *queue_of(struct replay *r, const struct node *n)
{
        const struct node *top = node_top(n);

        for (unsigned i = 0; i < r->n_tops; i++)
                if (r->tops[i].top == top)
                        return &r->tops[i];
        return r->n_tops ? &r->tops[0] : NULL;
}

/* Appends a change that is already marked queued on its node. */
static int push_queued(struct changes *v, const struct change *c)
{
        if (v->n == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 64;
                struct change *nv = realloc(v->v, cap * sizeof(*nv));

                if (!nv)
                        return -ENOMEM;
                v->v = nv;
                v->cap = cap;
        }
        v->v[v->n++] = *c;
        return 0;
}

void replay_push(void *ctx, struct changes *c)
{
        struct replay *r = ctx;

        for (size_t i = 0; i < c->n; i++) {
                struct node *n = c->v[i].node;
                struct queue *q = queue_of(r, n);

                /* changes_push (the tree's) marked n queued already */
                if (!q || push_queued(&q->q, &c->v[i]) < 0) {
                        /* settle what it waited for, so nothing stays pending */
                        log_error("out of memory queueing a change; its event is lost");
                        tree_replay_abandoned(n, c->v[i].kind);
                        tree_dequeue(r->cfg.tree, n, c->v[i].kind);
                        continue;
                }
                pthread_cond_signal(&q->wake);
        }
}

/* What a replay needs of a node, copied under the tree lock. */
struct target {
        uint64_t ino, parent_ino;
        char path[PATH_MAX];
        char name[SNAP_NAME_MAX + 1];
        bool is_dir, kernel_has, parent_held, pending;
        off_t size;
        struct timespec mtime;
};

static int target_get(struct replay *r, const struct change *c, struct target *ret)
{
        struct node *n = c->node, *parent = node_parent(n);
        struct node_attr a;

        node_attr(n, &a);
        ret->ino = tree_nodeid(r->cfg.tree, n);
        ret->parent_ino = tree_nodeid(r->cfg.tree, parent);
        snprintf(ret->name, sizeof(ret->name), "%s", node_name(n));
        ret->is_dir = a.type == NODE_DIR;
        ret->kernel_has = node_kernel_holds(n);
        ret->parent_held = node_kernel_holds(parent);
        ret->size = (off_t)a.size;
        ret->mtime = a.mtime;
        ret->pending = tree_change_pending(n, c->kind);
        return node_path(n, ret->path, sizeof(ret->path));
}

/* The mount root, opened from this thread; it must be our mount (st_dev),
 * so a path never lands in the directory underneath after a lazy unmount or
 * in another FUSE mount stacked on the same path. */
static int root_fd(struct queue *q)
{
        struct statfs sfs;
        struct stat st;

        if (q->rootfd >= 0)
                return q->rootfd;
        q->rootfd = open(q->r->cfg.mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (q->rootfd < 0)
                return -errno;
        if (fstatfs(q->rootfd, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC ||
            fstat(q->rootfd, &st) < 0 || st.st_dev != q->r->dev) {
                close(q->rootfd);
                q->rootfd = -1;
                return -ENODEV;
        }
        return q->rootfd;
}

static void root_close(struct queue *q)
{
        /* an open fd on the mount makes `fusermount3 -u` fail with EBUSY */
        if (q->rootfd >= 0)
                close(q->rootfd);
        q->rootfd = -1;
}

/* open+ftruncate+futimens+close: IN_OPEN, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE
 * (entr watches CLOSE_WRITE, inotifywait -e modify MODIFY). */
static int replay_modify(int root, const struct target *tg)
{
        struct timespec times[2] = { tg->mtime, tg->mtime };
        int fd = openat(root, tg->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        int r = 0;

        if (fd < 0)
                return -errno;
        if (ftruncate(fd, tg->size) < 0 || futimens(fd, times) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* mkdir/mknod: IN_CREATE. A user who looked the new name up first left a
 * positive dentry, and the kernel answers EEXIST without asking us: drop
 * that dentry (our lookup hides the name from replays) and try again. */
static int replay_create(struct fuse_session *se, int root, const struct target *tg)
{
        for (int attempt = 0; attempt < 2; attempt++) {
                int r = tg->is_dir ? mkdirat(root, tg->path, 0555)
                                   : mknodat(root, tg->path, S_IFREG | 0444, 0);

                if (r == 0 || errno != EEXIST)
                        return r < 0 ? -errno : 0;
                fuse_lowlevel_notify_inval_entry(se, tg->parent_ino, tg->name, strlen(tg->name));
        }
        return -EEXIST;
}

/* Raises one change; no lock held. */
static void raise_one(struct queue *q, const struct change *c, const struct target *tg)
{
        struct fuse_session *se = q->r->se;
        bool announce = q->r->cfg.announce;
        char err[64];
        int root, r;

        /* a directory handle past its first entry reads the kernel's cached
         * listing (cache_readdir), which a mkdir or rmdir does not drop */
        if (c->kind != CHANGE_MODIFY && tg->parent_held)
                fuse_lowlevel_notify_inval_inode(se, tg->parent_ino, 0, 0);
        if (c->kind == CHANGE_MODIFY) {
                if (tg->kernel_has)
                        fuse_lowlevel_notify_inval_inode(se, tg->ino, 0, 0);
                if (!announce || !(tg->kernel_has || tg->parent_held))
                        return;
                root = root_fd(q);
                r = root < 0 ? root : replay_modify(root, tg);
        } else if (announce && tg->pending) {
                root = root_fd(q);
                r = root;
                if (root >= 0 && c->kind == CHANGE_CREATE)
                        r = replay_create(se, root, tg);
                else if (root >= 0 && unlinkat(root, tg->path, tg->is_dir ? AT_REMOVEDIR : 0) < 0)
                        r = -errno;
                else if (root >= 0)
                        r = 0;
        } else {
                /* --no-notify, or nobody held the parent: just drop stale dentries */
                if (tg->parent_held)
                        fuse_lowlevel_notify_inval_entry(se, tg->parent_ino, tg->name, strlen(tg->name));
                return;
        }
        if (r < 0) {
                log_debug("replaying a change of '%s' through the mount: %s", tg->path,
                          strerror_r(-r, err, sizeof(err)));
                if (tg->parent_held)
                        fuse_lowlevel_notify_inval_entry(se, tg->parent_ino, tg->name, strlen(tg->name));
                return;
        }
        __atomic_add_fetch(&q->r->events, 1, __ATOMIC_RELAXED);
}

/* Whether c must wait: a mkdir or rmdir in a directory where a lookup waits
 * on the network would wait for that lookup's directory lock. */
static bool must_defer(const struct change *c)
{
        return c->kind != CHANGE_MODIFY && tree_lookups_pending(node_parent(c->node));
}

/* Raises one queued change and lets go of its node. Tree lock held on entry
 * and exit; dropped for the replay. */
static void raise_change(struct queue *q, const struct change *c)
{
        struct tree *t = q->r->cfg.tree;
        struct target tg;
        bool ok = !q->r->stop && target_get(q->r, c, &tg) == 0;

        if (ok) {
                pthread_mutex_unlock(tree_mutex(t));
                raise_one(q, c, &tg);
                pthread_mutex_lock(tree_mutex(t));
        }
        /* whatever happened, nothing stays pending (users would see a
         * vanished name for ever, or the replay never the new one) */
        tree_replay_abandoned(c->node, c->kind);
        tree_dequeue(t, c->node, c->kind);      /* may free the node: last */
}

static void *queue_main(void *arg)
{
        struct queue *q = arg;
        struct replay *r = q->r;
        struct tree *t = r->cfg.tree;
        const struct clock *clk = &clock_real;

        __atomic_store_n(&q->tid, gettid(), __ATOMIC_RELEASE);
        pthread_mutex_lock(tree_mutex(t));
        while (!r->stop) {
                struct changes batch = q->q, later = { 0 };

                if (batch.n == 0 && q->deferred.n == 0) {
                        pthread_cond_wait(&q->wake, tree_mutex(t));
                        continue;
                }
                memset(&q->q, 0, sizeof(q->q));
                /* deferred ones first: they are the oldest */
                for (size_t pass = 0; pass < 2; pass++) {
                        struct changes *v = pass == 0 ? &q->deferred : &batch;

                        for (size_t i = 0; i < v->n; i++) {
                                if (!r->stop && must_defer(&v->v[i]) &&
                                    push_queued(&later, &v->v[i]) == 0)
                                        continue;
                                raise_change(q, &v->v[i]);
                        }
                }
                changes_clear(&q->deferred);
                changes_clear(&batch);
                q->deferred = later;
                pthread_mutex_unlock(tree_mutex(t));
                root_close(q);
                pthread_mutex_lock(tree_mutex(t));
                if (q->deferred.n && !r->stop && q->q.n == 0)
                        clock_wait(clk, &q->wake, tree_mutex(t), clock_now(clk) + DEFER_RETRY);
        }
        /* unmounting: no more syscalls on the mount; settle what is left */
        for (size_t pass = 0; pass < 2; pass++) {
                struct changes *v = pass == 0 ? &q->deferred : &q->q;

                for (size_t i = 0; i < v->n; i++)
                        raise_change(q, &v->v[i]);
                changes_clear(v);
        }
        pthread_mutex_unlock(tree_mutex(t));
        /* a later thread may get this tid: it must not pass as a replay */
        __atomic_store_n(&q->tid, 0, __ATOMIC_RELEASE);
        return NULL;
}

/* The device of the newest mount at path, from /proc/self/mountinfo: a
 * stat of our own mount would wait for the FUSE loop, which is not running
 * yet. Mount points with spaces are escaped there as \040; ours is compared
 * escaped the same way. */
static int mount_dev(const char *path, dev_t *ret)
{
        char line[8192], want[PATH_MAX * 4], *w = want;
        unsigned maj, min;
        bool found = false;
        FILE *f;

        for (const char *p = path; *p && w < want + sizeof(want) - 5; p++) {
                if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
                        w += sprintf(w, "\\%03o", (unsigned char)*p);
                else
                        *w++ = *p;
        }
        *w = '\0';
        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char mnt[sizeof(want)];

                /* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... */
                if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) == 3 &&
                    strcmp(mnt, want) == 0) {
                        *ret = makedev(maj, min);
                        found = true;   /* the last one is on top */
                }
        }
        fclose(f);
        return found ? 0 : -ENOENT;
}

int replay_start(struct replay *r, struct fuse_session *se)
{
        int rr;

        r->se = se;
        rr = mount_dev(r->cfg.mountpoint, &r->dev);
        if (rr < 0)
                return rr;
        for (unsigned i = 0; i < r->n_tops; i++) {
                rr = -pthread_create(&r->tops[i].thread, NULL, queue_main, &r->tops[i]);

                if (rr < 0) {
                        r->n_tops = i;  /* stop joins what started */
                        r->started = true;
                        replay_stop(r);
                        return rr;
                }
        }
        r->started = true;
        return 0;
}

void replay_stop(struct replay *r)
{
        struct tree *t;

        if (!r || !r->started)
                return;
        t = r->cfg.tree;
        pthread_mutex_lock(tree_mutex(t));
        r->stop = true;
        for (unsigned i = 0; i < r->n_tops; i++)
                pthread_cond_broadcast(&r->tops[i].wake);
        pthread_mutex_unlock(tree_mutex(t));
        for (unsigned i = 0; i < r->n_tops; i++)
                pthread_join(r->tops[i].thread, NULL);
        r->started = false;
}

void replay_free(struct replay *r)
{
        if (!r)
                return;
        replay_stop(r);
        for (unsigned i = 0; i < r->n_tops; i++) {
                changes_clear(&r->tops[i].q);
                changes_clear(&r->tops[i].deferred);
                pthread_cond_destroy(&r->tops[i].wake);
        }
        free(r);
}
