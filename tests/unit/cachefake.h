/* cachefake: a fake backend and a mount's worth of cache on a fake clock,
 * for the cache and poller unit tests (test_cache.c, test_poll.c).
 *
 * The fake counts its calls (the requests a server would have seen) and can
 * hold fetches at a gate until the test opens it; every real wait has a 5 s
 * deadline. Static functions: each test includes it once.
 */
#pragma once
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "jobfs/backend.h"
#include "jobfs/cache.h"
#include "jobfs/clock.h"
#include "jobfs/lane.h"
#include "jobfs/log.h"
#include "jobfs/tree.h"

#define NAMES_MAX 64

struct fake {
        pthread_mutex_t lock;           /* protects everything below */
        pthread_cond_t cond;            /* the gate opened, or a caller reached it */
        int fetches, lists;
        int result, list_result;        /* what fetch / list return */
        bool terminal;
        char state[64];                 /* the "state" file a fetch returns */
        size_t big;                     /* bytes of a "big" file, 0 = none */
        uint64_t sig;                   /* the fetch's change signature */
        bool gate;                      /* fetches wait while it is closed */
        int at_gate;
        char keys[2][64];               /* of the last fetch */
        char names[NAMES_MAX][64];      /* what list returns */
        uint64_t sigs[NAMES_MAX];
        size_t n_names;
        bool feed;
        bool list_snaps;                /* entries carry the whole item (as slurm's do) */
};

static inline struct fake *fake_of(struct backend *b)
{
        return b->priv;
}

static inline double real_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits (at most 5 s of real time) on f->cond until pred holds. Lock held. */
static inline bool fake_wait_until(struct fake *f, bool (*pred)(struct fake *, int), int arg)
{
        double end = real_now() + 5;

        while (!pred(f, arg)) {
                struct timespec ts = { .tv_sec = (time_t)(end), .tv_nsec = 0 };

                if (real_now() > end)
                        return false;
                ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
                pthread_cond_timedwait(&f->cond, &f->lock, &ts);
        }
        return true;
}

static inline bool gate_open(struct fake *f, int unused)
{
        (void)unused;
        return !f->gate;
}

static inline int fake_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct fake *f = fake_of(b);
        struct snap *s;
        char state[64];
        size_t big;
        int r;

        pthread_mutex_lock(&f->lock);
        f->fetches++;
        snprintf(f->keys[0], sizeof(f->keys[0]), "%s", keys[0] ? keys[0] : "(null)");
        snprintf(f->keys[1], sizeof(f->keys[1]), "%s", keys[0] && keys[1] ? keys[1] : "(null)");
        f->at_gate++;
        pthread_cond_broadcast(&f->cond);
        fake_wait_until(f, gate_open, 0);
        f->at_gate--;
        r = f->result;
        snprintf(state, sizeof(state), "%s", f->state);
        big = f->big;
        ret->terminal = f->terminal;
        ret->sig = f->sig;
        pthread_mutex_unlock(&f->lock);
        if (r < 0)
                return r;
        s = snap_new();
        if (!s)
                return -ENOMEM;
        snap_add_text(s, "state", state, strlen(state));
        if (big) {
                char *buf = malloc(big);

                memset(buf, 'x', big);
                snap_add_file(s, "big", blob_new(buf, big));
                free(buf);
        }
        ret->snap = s;
        return 0;
}

static inline int fake_list(struct backend *b, struct backend_list *ret)
{
        struct fake *f = fake_of(b);
        struct backend_list l = { 0 };
        int r;

        pthread_mutex_lock(&f->lock);
        f->lists++;
        r = f->list_result;
        for (size_t i = 0; r == 0 && i < f->n_names; i++) {
                struct snap *s = NULL;

                if (f->list_snaps && (s = snap_new()))
                        snap_add_text(s, "state", f->state, strlen(f->state));
                r = backend_list_add(&l, strdup(f->names[i]), f->feed ? f->sigs[i] : 0, s, false);
        }
        l.feed = f->feed;
        pthread_mutex_unlock(&f->lock);
        if (r < 0) {
                backend_list_clear(&l);
                return r;
        }
        *ret = l;
        return 0;
}

static inline void fake_free(struct backend *b)
{
        struct fake *f = fake_of(b);

        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f);
}

static const struct backend_ops fake_ops = {
        .name = "fake", .root = "jobs", .depth = 1,
        .fetch = fake_fetch, .list = fake_list, .free = fake_free,
};

/* A mount's worth: tree, cache on a fake clock, one fake backend. */
struct env {
        struct clock clock;
        struct tree *t;
        struct cache *c;
        struct backend *b;
        struct fake *f;
        struct node *jobs;
};

static inline bool env_new(struct env *e, double ttl, double max_stale, size_t cache_bytes)
{
        struct cache_config cc = {
                .ttl = ttl, .max_stale = max_stale, .poll_interval = 1.0,
                .cache_bytes = cache_bytes ? cache_bytes : (size_t)1 << 30, .cache_max = 100000,
                .max_file = 1 << 20,
                .lane = { .max_workers = 4, .max_background = 2, .max_readahead = 1 },
        };

        memset(e, 0, sizeof(*e));
        clock_fake_init(&e->clock);
        cc.clock = &e->clock;
        e->f = calloc(1, sizeof(*e->f));
        if (!e->f)
                return CHECK(!"setup failed");
        pthread_mutex_init(&e->f->lock, NULL);
        pthread_cond_init(&e->f->cond, NULL);
        snprintf(e->f->state, sizeof(e->f->state), "Running");
        e->f->sig = 1;
        if (backend_alloc(&fake_ops, NULL, "fake://", &e->b) < 0) {
                fake_free(&(struct backend){ .priv = e->f });
                return CHECK(!"setup failed");
        }
        e->b->priv = e->f;
        if (tree_new(false, &e->t) < 0 || cache_new(e->t, &cc, &e->c) < 0 ||
            cache_add_backend(e->c, e->b, &e->jobs) < 0)
                return CHECK(!"setup failed");
        return true;
}

static inline void env_free(struct env *e)
{
        cache_free(e->c);
        tree_free(e->t);
        backend_free(e->b);
}

static inline void lock(struct env *e)
{
        pthread_mutex_lock(tree_mutex(e->t));
}

static inline void unlock(struct env *e)
{
        pthread_mutex_unlock(tree_mutex(e->t));
}

static inline void set_state(struct env *e, int result, const char *state, bool terminal, uint64_t sig)
{
        pthread_mutex_lock(&e->f->lock);
        e->f->result = result;
        if (state)
                snprintf(e->f->state, sizeof(e->f->state), "%s", state);
        e->f->terminal = terminal;
        e->f->sig = sig;
        pthread_mutex_unlock(&e->f->lock);
}

static inline int fetches(struct env *e)
{
        int n;

        pthread_mutex_lock(&e->f->lock);
        n = e->f->fetches;
        pthread_mutex_unlock(&e->f->lock);
        return n;
}

static inline void gate(struct env *e, bool closed)
{
        pthread_mutex_lock(&e->f->lock);
        e->f->gate = closed;
        pthread_cond_broadcast(&e->f->cond);
        pthread_mutex_unlock(&e->f->lock);
}

static inline bool at_gate_is(struct fake *f, int n)
{
        return f->at_gate == n;
}

/* Waits until n fetches are held at the closed gate. */
static inline bool wait_at_gate(struct env *e, int n)
{
        bool ok;

        pthread_mutex_lock(&e->f->lock);
        ok = fake_wait_until(e->f, at_gate_is, n);
        pthread_mutex_unlock(&e->f->lock);
        return CHECK(ok);
}

static inline int lookup(struct env *e, const char *name, struct node **ret)
{
        struct node *n = NULL;
        int r;

        lock(e);
        r = cache_lookup(e->c, e->jobs, name, NULL, &n);
        unlock(e);
        if (ret)
                *ret = n;
        return r;
}

/* cache_get of name/state: what a stat or a cat does. */
static inline int read_state(struct env *e, const char *job, char *buf, size_t size)
{
        struct node *n = NULL, *st;
        struct blob *b = NULL;
        int r;

        lock(e);
        r = cache_lookup(e->c, e->jobs, job, NULL, &n);
        if (r == 0)
                r = cache_lookup(e->c, n, "state", NULL, &st);
        if (r == 0)
                r = cache_get(e->c, st, NEED_FRESH, NULL);
        if (r == 0)
                r = cache_content(e->c, st, NULL, &b);
        unlock(e);
        if (buf && size)
                snprintf(buf, size, "%.*s", b ? (int)b->len : 0, b ? b->data : "");
        blob_unref(b);
        return r;
}

static inline struct cache_stats stats(struct env *e)
{
        struct cache_stats s;

        lock(e);
        cache_stats(e->c, &s);
        unlock(e);
        return s;
}

struct facts {
        struct poll_fact v[16];
        size_t n;
};

static inline void collect(void *ctx, const struct poll_fact *f)
{
        struct facts *fs = ctx;

        if (fs->n < 16)
                fs->v[fs->n++] = *f;
}

static inline struct facts poll_facts(struct env *e)
{
        struct facts fs = { .n = 0 };

        memset(&fs, 0, sizeof(fs));

        lock(e);
        cache_poll_each(e->c, collect, &fs);
        unlock(e);
        return fs;
}

static inline const struct poll_fact *item_fact(const struct facts *fs)
{
        for (size_t i = 0; i < fs->n; i++)
                if (!fs->v[i].is_list)
                        return &fs->v[i];
        return NULL;
}


static inline bool list_busy(struct env *e)
{
        struct facts fs = poll_facts(e);

        for (size_t i = 0; i < fs.n; i++)
                if (fs.v[i].is_list)
                        return fs.v[i].busy;
        return false;
}

/* Lists now (as an ls would) and waits until the listing is applied. */
static inline void list_now(struct env *e)
{
        int before, lists = 0;

        pthread_mutex_lock(&e->f->lock);
        before = e->f->lists;
        pthread_mutex_unlock(&e->f->lock);
        lock(e);
        cache_kernel_ref(e->c, e->jobs);        /* the kernel holds jobs/ (an ls did) */
        cache_get(e->c, e->jobs, NEED_LISTING, &(struct cache_caller){ 0 });
        unlock(e);
        /* the listing runs on a worker */
        for (double end = real_now() + 5; real_now() < end; sched_yield()) {
                pthread_mutex_lock(&e->f->lock);
                lists = e->f->lists;
                pthread_mutex_unlock(&e->f->lock);
                if (lists > before && !list_busy(e))
                        break;
        }
        CHECK(lists > before);
}

