/* notify: see include/jobfs/notify.h.
 *
 * Two threads, neither a FUSE worker (a worker that touches its own mount
 * deadlocks, fuse-inotify.md pitfall 2): the poller, which may block on the
 * network, and the notifier, which only replays changes, so a slow server
 * never delays the events of another. Locks are never held across a notify_*
 * call or a syscall on the mount (pitfall 5).
 */
#include "jobfs/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "jobfs/cache.h"
#include "jobfs/http.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/prefetch.h"

#define FUSE_SUPER_MAGIC 0x65735546

struct notifier {
        struct jobfs *fs;
        pthread_mutex_t lock;           /* protects queue, stop */
        pthread_cond_t wake;            /* the notifier: changes queued, or stop */
        pthread_cond_t tick;            /* the poller (CLOCK_MONOTONIC): stop */
        struct changes queue;
        bool stop;
        bool started;
        pthread_t poll_thread, notify_thread;
        bool have_poll_thread;
        pid_t self_tid;                 /* atomic: the notifier thread's tid */
        int rootfd;                     /* O_PATH fd of the mount root, -1 until opened */
        unsigned long events;           /* atomic */
};

int notifier_new(struct jobfs *fs, struct notifier **ret)
{
        struct notifier *n = calloc(1, sizeof(*n));
        pthread_condattr_t ca;

        if (!n)
                return -ENOMEM;
        n->fs = fs;
        n->rootfd = -1;
        pthread_mutex_init(&n->lock, NULL);
        pthread_cond_init(&n->wake, NULL);
        /* the poller's timed waits are on CLOCK_MONOTONIC: immune to clock steps */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&n->tick, &ca);
        pthread_condattr_destroy(&ca);
        *ret = n;
        return 0;
}

bool notifier_is_self(const struct notifier *n, pid_t tid)
{
        return tid != 0 && tid == __atomic_load_n(&n->self_tid, __ATOMIC_ACQUIRE);
}

unsigned long notifier_events(const struct notifier *n)
{
        return __atomic_load_n(&n->events, __ATOMIC_RELAXED);
}

void notifier_push(void *ctx, struct changes *c)
{
        struct notifier *n = ctx;

        pthread_mutex_lock(&n->lock);
        for (size_t i = 0; i < c->n; i++) {
                struct node *nd = c->v[i].node;
                uint8_t bit = (uint8_t)(1u << c->v[i].kind);

                /* the notifier reads the node's state when it gets there: a
                 * second change of the same kind queued meanwhile adds nothing,
                 * and a job changing every poll cannot grow the queue */
                if (nd->queued & bit)
                        continue;
                if (changes_push(&n->queue, c->v[i].kind, nd) < 0) {
                        log_error("out of memory queueing a change; its event is lost");
                        break;
                }
                nd->queued |= bit;
                /* the unit's nodes must outlive the queue: no eviction meanwhile */
                if (nd->unit)
                        nd->unit->pins++;
        }
        pthread_cond_signal(&n->wake);
        pthread_mutex_unlock(&n->lock);
}

/* What the notifier needs of a node, copied under the tree lock. */
struct target {
        fuse_ino_t ino, parent_ino;
        char path[PATH_MAX];
        char name[SNAP_NAME_MAX + 1];
        bool is_dir, kernel_has, parent_held, pending;
        off_t size;
        struct timespec mtime;
};

static fuse_ino_t ino_of(const struct tree *t, const struct node *nd)
{
        return nd == t->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)nd;
}

static int target_get(struct notifier *n, const struct change *c, struct target *ret)
{
        struct tree *t = n->fs->tree;
        struct node *nd = c->node;
        int r;

        pthread_mutex_lock(&t->lock);
        ret->ino = ino_of(t, nd);
        ret->parent_ino = ino_of(t, nd->parent);
        snprintf(ret->name, sizeof(ret->name), "%s", nd->name);
        ret->is_dir = nd->is_dir;
        ret->kernel_has = nd->nlookup > 0;
        ret->parent_held = nd->parent->nlookup > 0;
        ret->size = nd->content ? (off_t)nd->content->len : 0;
        ret->mtime = nd->mtime;
        ret->pending = (c->kind == CHANGE_CREATE && nd->vis == VIS_PENDING_CREATE) ||
                       (c->kind == CHANGE_DELETE && nd->vis == VIS_PENDING_DELETE);
        r = node_path(nd, ret->path, sizeof(ret->path));
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* The mount root, opened once from this thread; checked to be our FUSE mount
 * so a path never lands in the directory underneath after a lazy unmount. */
static int root_fd(struct notifier *n)
{
        struct statfs sfs;

        if (n->rootfd >= 0)
                return n->rootfd;
        n->rootfd = open(n->fs->opts->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (n->rootfd < 0)
                return -errno;
        if (fstatfs(n->rootfd, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC) {
                close(n->rootfd);
                n->rootfd = -1;
                return -ENODEV;
        }
        return n->rootfd;
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


static void force_state(struct notifier *n, const struct change *c)
{
        struct tree *t = n->fs->tree;

        pthread_mutex_lock(&t->lock);
        if (c->node->vis == VIS_PENDING_CREATE)
                c->node->vis = VIS_VISIBLE;
        else if (c->node->vis == VIS_PENDING_DELETE)
                c->node->vis = VIS_GONE;
        pthread_mutex_unlock(&t->lock);
}

static void raise_one(struct notifier *n, const struct change *c);

/* Raises one queued change, then lets its unit be evicted again. */
static void raise_change(struct notifier *n, const struct change *c)
{
        struct tree *t = n->fs->tree;

        /* cleared before the replay reads the node: a change arriving during
         * it is queued again, not lost */
        pthread_mutex_lock(&t->lock);
        c->node->queued &= (uint8_t)~(1u << c->kind);
        pthread_mutex_unlock(&t->lock);
        if (__atomic_load_n(&n->stop, __ATOMIC_ACQUIRE))
                force_state(n, c);      /* unmounting: no more syscalls on the mount */
        else
                raise_one(n, c);
        pthread_mutex_lock(&t->lock);
        if (c->node->unit)
                c->node->unit->pins--;
        pthread_mutex_unlock(&t->lock);
}

/* mkdir/mknod: IN_CREATE. A user who looked the new name up first left a
 * positive dentry, and the kernel answers EEXIST without asking us: drop
 * that dentry (our lookup hides the name from the notifier) and try again. */
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

static void raise_one(struct notifier *n, const struct change *c)
{
        struct fuse_session *se = n->fs->se;
        bool announce = !n->fs->opts->no_notify;
        struct target tg;
        int root, r;

        if (target_get(n, c, &tg) < 0) {
                force_state(n, c);
                return;
        }
        if (c->kind == CHANGE_MODIFY) {
                if (tg.kernel_has)
                        fuse_lowlevel_notify_inval_inode(se, tg.ino, 0, 0);
                if (!announce || !(tg.kernel_has || tg.parent_held))
                        return;
                root = root_fd(n);
                r = root < 0 ? root : replay_modify(root, &tg);
        } else if (announce && tg.pending) {
                root = root_fd(n);
                r = root;
                if (root >= 0 && c->kind == CHANGE_CREATE)
                        r = replay_create(se, root, &tg);
                else if (root >= 0)
                        r = unlinkat(root, tg.path, tg.is_dir ? AT_REMOVEDIR : 0);
                r = r < 0 ? -errno : r;
        } else {
                /* --no-notify, or nobody held the parent: just drop stale dentries */
                if (tg.parent_held)
                        fuse_lowlevel_notify_inval_entry(se, tg.parent_ino, tg.name, strlen(tg.name));
                return;
        }
        if (r < 0) {
                log_debug("replaying a change of '%s' through the mount: %s", tg.path, strerror(-r));
                force_state(n, c);
                if (tg.parent_held)
                        fuse_lowlevel_notify_inval_entry(se, tg.parent_ino, tg.name, strlen(tg.name));
                return;
        }
        __atomic_add_fetch(&n->events, 1, __ATOMIC_RELAXED);
}

static void *notify_main(void *arg)
{
        struct notifier *n = arg;
        struct changes batch = { 0 };

        __atomic_store_n(&n->self_tid, gettid(), __ATOMIC_RELEASE);
        pthread_mutex_lock(&n->lock);
        while (!n->stop) {
                if (n->queue.n == 0) {
                        pthread_cond_wait(&n->wake, &n->lock);
                        continue;
                }
                batch = n->queue;
                memset(&n->queue, 0, sizeof(n->queue));
                pthread_mutex_unlock(&n->lock);
                for (size_t i = 0; i < batch.n; i++)
                        raise_change(n, &batch.v[i]);
                changes_clear(&batch);
                /* an open fd on the mount makes `fusermount3 -u` fail with EBUSY */
                if (n->rootfd >= 0)
                        close(n->rootfd);
                n->rootfd = -1;
                pthread_mutex_lock(&n->lock);
        }
        pthread_mutex_unlock(&n->lock);
        if (n->rootfd >= 0)
                close(n->rootfd);
        n->rootfd = -1;
        /* a later thread may get this tid: it must not pass as the notifier */
        __atomic_store_n(&n->self_tid, 0, __ATOMIC_RELEASE);
        return NULL;
}

/* Live units the kernel holds any node of (a watched file may outlive its
 * directory's dentry under memory pressure), plus the listings while held. */
static size_t collect_units(struct jobfs *fs, struct unit ***ret)
{
        struct unit **v = NULL;
        size_t n = 0, cap = 0;

        for (struct unit *u = fs->cache->units; u; u = u->next) {
                bool listing = u->kind == UNIT_JOBS_LIST || u->kind == UNIT_SW_LIST;
                struct unit **nv;

                if ((u->held == 0 && u->dir->nlookup == 0) ||
                    (!listing && (!u->ever_ok || u->terminal)))
                        continue;
                /* a listing costs the server what it took to send (160 MB and 2 s
                 * for 100,000 jobs): poll it at most 10% of the time */
                if (listing && cache_now() - u->fetched_at < 10 * u->fetch_secs)
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 32;
                        nv = realloc(v, cap * sizeof(*v));
                        if (!nv)
                                break;
                        v = nv;
                }
                v[n++] = u;
        }
        *ret = v;
        return n;
}

static void poll_once(struct notifier *n)
{
        struct jobfs *fs = n->fs;
        struct unit **units = NULL;
        size_t count;
        /* half an interval: data a reader fetched just now is fresh enough,
         * and a change is seen at most 1.5 intervals after it happened */
        double max_age = fs->opts->poll_interval / 2;

        pthread_mutex_lock(&fs->tree->lock);
        count = collect_units(fs, &units);
        /* the pool polls 8 at a time; what does not fit is polled right here */
        for (size_t i = 0; i < count && !__atomic_load_n(&n->stop, __ATOMIC_ACQUIRE); i++)
                if (prefetch_poll(fs->prefetch, units[i], max_age) < 0)
                        cache_refresh(fs->cache, units[i], max_age);
        pthread_mutex_unlock(&fs->tree->lock);
        free(units);
}

static void *poll_main(void *arg)
{
        struct notifier *n = arg;
        double interval = n->fs->opts->poll_interval;
        struct timespec next;

        clock_gettime(CLOCK_MONOTONIC, &next);
        pthread_mutex_lock(&n->lock);
        while (!n->stop) {
                next.tv_sec += (time_t)interval;
                next.tv_nsec += (long)((interval - (double)(time_t)interval) * 1e9);
                if (next.tv_nsec >= 1000000000L) {
                        next.tv_sec++;
                        next.tv_nsec -= 1000000000L;
                }
                while (!n->stop && pthread_cond_timedwait(&n->tick, &n->lock, &next) != ETIMEDOUT)
                        ;
                if (n->stop)
                        break;
                pthread_mutex_unlock(&n->lock);
                poll_once(n);
                pthread_mutex_lock(&n->lock);
                clock_gettime(CLOCK_MONOTONIC, &next);
        }
        pthread_mutex_unlock(&n->lock);
        return NULL;
}

int notifier_start(struct notifier *n)
{
        int r;

        r = -pthread_create(&n->notify_thread, NULL, notify_main, n);
        if (r < 0)
                return r;
        n->started = true;
        if (n->fs->opts->poll_interval > 0) {
                r = -pthread_create(&n->poll_thread, NULL, poll_main, n);
                if (r < 0) {
                        notifier_stop(n);
                        return r;
                }
                n->have_poll_thread = true;
        }
        return 0;
}

void notifier_stop(struct notifier *n)
{
        if (!n || !n->started)
                return;
        pthread_mutex_lock(&n->lock);
        n->stop = true;
        pthread_cond_broadcast(&n->wake);
        pthread_cond_broadcast(&n->tick);
        pthread_mutex_unlock(&n->lock);
        pthread_join(n->notify_thread, NULL);
        if (n->have_poll_thread)
                pthread_join(n->poll_thread, NULL);
        n->started = false;
        n->have_poll_thread = false;
}

void notifier_free(struct notifier *n)
{
        if (!n)
                return;
        notifier_stop(n);
        changes_clear(&n->queue);
        pthread_mutex_destroy(&n->lock);
        pthread_cond_destroy(&n->wake);
        pthread_cond_destroy(&n->tick);
        free(n);
}
