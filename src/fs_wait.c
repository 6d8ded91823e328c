/* fs_wait: reads and polls of `wait` files, parked until the job is final.
 *
 * A read of an item's wait file (ROLE_WAIT) whose job is live is not
 * answered by the FUSE worker: the request is parked here and the worker
 * goes back to the loop, so 1,000 waiters cost 1,000 small records, not
 * 1,000 threads. One thread looks at what is parked every 100 ms (a final
 * job is seen within that of its fetch, which the poller makes at full
 * rate while someone waits) and answers: the final state, ENOENT if the job
 * went away, ETIMEDOUT past --wait-timeout, ECANCELED at unmount. Ctrl-C
 * answers EINTR at once (the interrupt callback). A poll() of a live wait
 * file keeps its handle here and is woken (notify_poll) once the job is final.
 * The kernel gives one handle per open file, and a handle cannot be told
 * from another, so each poll keeps its own record: at most 64 per wait
 * file, each woken after 30 s at the latest (the kernel polls again and a
 * new record replaces it), so a loop of poll() calls with a timeout cannot
 * grow the list.
 *
 * Who answers a parked request is whoever takes it off the list under the
 * tree lock: the thread, or the interrupt callback. Before answering, the
 * thread unregisters the callback (fuse_req_interrupt_func(req, NULL)),
 * which waits for a callback in progress, so a record is never used after
 * it is freed.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/cache.h"
#include "jobfs/clock.h"
#include "jobfs/fs.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/tree.h"
#include "fs_internal.h"

/* 100 ms: a waiter hears of a final job at most that long after jobfs
 * fetched it, well under the poll interval it is fetched at (1 s) */
#define WAIT_TICK 0.1
/* a poll record is woken after 30 s even while the job runs: a poller that
 * has gone (its handle is never told) costs a record for that long at most */
#define POLL_RENEW 30.0
/* records per wait file: each open file has one handle; 64 pollers of one
 * file is more than any watcher runs, and the oldest is woken to make room */
#define POLLS_PER_FILE 64

struct parked {
        fuse_req_t req;                 /* a READ; NULL for a poll */
        struct fuse_pollhandle *ph;     /* a poll waiting for readiness, or NULL */
        struct node *wait;              /* the wait file: the kernel holds it while open */
        size_t size;
        off_t off;
        double deadline;                /* monotonic; 0 = none */
        bool interrupted;               /* atomic: Ctrl-C came */
        bool on_list;                   /* protected by the tree lock */
        int err;                        /* the answer once taken off: an errno, or 0 */
        struct blob *final;             /* ... or the final state (owned) */
        struct fs_waits *w;
        struct parked *next;            /* the list, then the answered batch */
};

struct fs_waits {
        struct jobfs *fs;
        pthread_t thread;
        pthread_cond_t wake;            /* on the tree lock, monotonic: stop */
        bool stop, running;             /* protected by the tree lock */
        struct parked *list;            /* protected by the tree lock */
        size_t n;
};

int fs_waits_new(struct jobfs *fs, struct fs_waits **ret)
{
        struct fs_waits *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return -ENOMEM;
        w->fs = fs;
        r = clock_cond_init(&w->wake);
        if (r < 0) {
                free(w);
                return r;
        }
        *ret = w;
        return 0;
}

static void unlink_parked(struct fs_waits *w, struct parked *p)
{
        for (struct parked **pp = &w->list; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        *pp = p->next;
                        w->n--;
                        break;
                }
        }
        p->on_list = false;
        cache_wait_park(w->fs->cache, p->wait, -1);
        tree_unpin(w->fs->tree, p->wait);       /* last use of p->wait */
}

/* Puts p on the list; tree lock held. The wait node is pinned while it is
 * there: the kernel may forget it (an unmount) before the answer. */
static void list_parked(struct fs_waits *w, struct parked *p)
{
        p->on_list = true;
        p->next = w->list;
        w->list = p;
        w->n++;
        tree_pin(p->wait);
        cache_wait_park(w->fs->cache, p->wait, +1);
}

/* Answers p (taken off the list, or never on it) and frees it. No lock held. */
static void answer(struct parked *p, int err, struct blob *b)
{
        if (p->req) {
                fuse_req_interrupt_func(p->req, NULL, NULL);    /* waits out a callback */
                if (err)
                        fuse_reply_err(p->req, err);
                else if (!b || p->off < 0 || (size_t)p->off >= b->len)
                        fuse_reply_buf(p->req, NULL, 0);
                else
                        fuse_reply_buf(p->req, b->data + p->off,
                                       p->size < b->len - (size_t)p->off ? p->size : b->len - (size_t)p->off);
        }
        if (p->ph) {
                /* readable (a read answers now), or renewed: the kernel
                 * polls again either way */
                fuse_lowlevel_notify_poll(p->ph);
                fuse_pollhandle_destroy(p->ph);
        }
        blob_unref(b);
        free(p);
}

static void on_interrupt(fuse_req_t req, void *data)
{
        struct parked *p = data;
        struct fs_waits *w = p->w;
        bool mine = false;

        (void)req;
        __atomic_store_n(&p->interrupted, true, __ATOMIC_RELEASE);
        pthread_mutex_lock(tree_mutex(w->fs->tree));
        if (p->on_list) {
                unlink_parked(w, p);
                mine = true;
        }
        pthread_mutex_unlock(tree_mutex(w->fs->tree));
        if (mine) {
                /* the callback is running: no fuse_req_interrupt_func here */
                fuse_reply_err(p->req, EINTR);
                free(p);
        }
}

/* What a parked request gets now, or 0 (and no blob) to keep waiting. */
static int verdict(struct fs_waits *w, struct parked *p, double now, struct blob **ret)
{
        int s = cache_wait_state(w->fs->cache, p->wait, ret);

        if (w->stop)
                return ECANCELED;
        if (s < 0)
                return -s;
        if (s > 0)
                return -1;      /* final: the answer is *ret */
        if (p->deadline > 0 && now >= p->deadline)
                return ETIMEDOUT;
        return 0;
}

static void *waits_main(void *arg)
{
        struct fs_waits *w = arg;
        struct tree *t = w->fs->tree;
        const struct clock *clk = cache_clock(w->fs->cache);

        pthread_mutex_lock(tree_mutex(t));
        for (;;) {
                struct parked *ready = NULL, *next;
                double now = clock_now(clk);
                bool stopping = w->stop;

                for (struct parked *p = w->list; p; p = next) {
                        int v;

                        next = p->next;
                        v = verdict(w, p, now, &p->final);
                        if (v == 0)
                                continue;
                        unlink_parked(w, p);
                        p->err = v > 0 ? v : 0;
                        p->next = ready;
                        ready = p;
                }
                pthread_mutex_unlock(tree_mutex(t));
                for (struct parked *p = ready; p; p = next) {
                        next = p->next;
                        answer(p, p->err, p->final);
                }
                pthread_mutex_lock(tree_mutex(t));
                if (stopping && !w->list)
                        break;
                if (!w->stop)
                        clock_wait(clk, &w->wake, tree_mutex(t), clock_now(clk) + WAIT_TICK);
        }
        pthread_mutex_unlock(tree_mutex(t));
        return NULL;
}

int fs_waits_start(struct fs_waits *w)
{
        int r = -pthread_create(&w->thread, NULL, waits_main, w);

        w->running = r == 0;
        return r;
}

void fs_waits_stop(struct fs_waits *w)
{
        if (!w || !w->running)
                return;
        pthread_mutex_lock(tree_mutex(w->fs->tree));
        w->stop = true;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(tree_mutex(w->fs->tree));
        pthread_join(w->thread, NULL);
        w->running = false;
}

void fs_waits_free(struct fs_waits *w)
{
        if (!w)
                return;
        fs_waits_stop(w);
        /* the thread answers every record before it ends; none is left
         * unless it never ran */
        for (struct parked *p = w->list, *next; p; p = next) {
                next = p->next;
                unlink_parked(w, p);
                answer(p, ECANCELED, NULL);
        }
        pthread_cond_destroy(&w->wake);
        free(w);
}

static struct parked *parked_new(struct fs_waits *w, struct node *wait)
{
        struct parked *p = calloc(1, sizeof(*p));
        double timeout = w->fs->opts->wait_timeout;

        if (!p)
                return NULL;
        p->w = w;
        p->wait = wait;
        if (timeout > 0)
                p->deadline = clock_now(cache_clock(w->fs->cache)) + timeout;
        return p;
}

/* Parks p unless it can be answered now; tree lock held. 1: parked. */
static int park(struct fs_waits *w, struct parked *p, struct blob **ret, int *ret_err)
{
        int v = verdict(w, p, clock_now(cache_clock(w->fs->cache)), ret);

        if (__atomic_load_n(&p->interrupted, __ATOMIC_ACQUIRE))
                v = EINTR;
        if (v != 0) {
                *ret_err = v > 0 ? v : 0;
                return 0;
        }
        list_parked(w, p);
        return 1;
}

void fs_wait_read(fuse_req_t req, struct node *wait, size_t size, off_t off)
{
        struct jobfs *fs = fs_jobfs(req);
        struct parked *p = parked_new(fs->waits, wait);
        struct blob *b = NULL;
        int err = 0, parked;

        if (!p) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        p->req = req;
        p->size = size;
        p->off = off;
        /* registered before the tree lock: the callback takes it */
        fuse_req_interrupt_func(req, on_interrupt, p);
        pthread_mutex_lock(tree_mutex(fs->tree));
        parked = park(fs->waits, p, &b, &err);
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (!parked)
                answer(p, err, b);      /* final already, gone, or interrupted */
}

/* poll(): readable once a read would not block (final, or gone); while the
 * job is live, the handle waits here and is woken then. */
void fs_wait_poll(fuse_req_t req, struct node *wait, struct fuse_pollhandle *ph)
{
        struct jobfs *fs = fs_jobfs(req);
        struct fs_waits *w = fs->waits;
        struct blob *b = NULL;
        struct parked *oldest = NULL;
        bool ready;

        pthread_mutex_lock(tree_mutex(fs->tree));
        ready = w->stop || cache_wait_state(fs->cache, wait, &b) != 0;
        if (!ready && ph) {
                struct parked *p = parked_new(w, wait);
                size_t mine = 0;

                if (p) {
                        for (struct parked *q = w->list; q; q = q->next) {
                                if (q->ph && q->wait == wait) {
                                        mine++;
                                        oldest = q;     /* the list is newest first */
                                }
                        }
                        if (mine < POLLS_PER_FILE)
                                oldest = NULL;
                        else
                                unlink_parked(w, oldest);
                        p->ph = ph;
                        p->deadline = clock_now(cache_clock(fs->cache)) + POLL_RENEW;
                        list_parked(w, p);
                        ph = NULL;      /* kept */
                }
        }
        pthread_mutex_unlock(tree_mutex(fs->tree));
        if (oldest)
                answer(oldest, ETIMEDOUT, NULL);        /* woken: its poller polls again */
        if (ph)
                fuse_pollhandle_destroy(ph);
        blob_unref(b);
        fuse_reply_poll(req, ready ? POLLIN | POLLRDNORM : 0);
}

size_t fs_waits_parked(struct fs_waits *w)
{
        return w->n;
}
