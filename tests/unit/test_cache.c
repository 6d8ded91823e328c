/* Unit tests of cache.c against a fake backend: TTL hits and refetches,
 * terminal units, ENOENT, stale-if-error and max_stale, the error back-off,
 * single-flight under concurrent callers, the change callback, and the
 * listing units. The fake counts its calls; those counts are the ground
 * truth ("how many requests would the server have seen"). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "jobfs/backend.h"
#include "jobfs/cache.h"
#include "jobfs/tree.h"

struct fake {
        struct backend b;               /* first: the cache sees only this */
        pthread_mutex_t lock;           /* protects everything below */
        int fetches, lists;
        int result;                     /* what fetch/list return */
        bool terminal;
        const char *state;              /* the "state" file a fetch returns */
        double delay;                   /* s a fetch takes */
        char keys[2][128];              /* the keys of the last fetch */
        const char *names[8];           /* what list returns, NULL-terminated */
};

static void sleep_s(double s)
{
        struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int fake_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct fake *f = (struct fake *)b;
        struct snap *s;
        char state[64];
        double delay;
        bool terminal;
        int r;

        pthread_mutex_lock(&f->lock);
        f->fetches++;
        snprintf(f->keys[0], sizeof(f->keys[0]), "%s", keys[0] ? keys[0] : "(null)");
        snprintf(f->keys[1], sizeof(f->keys[1]), "%s", keys[1] ? keys[1] : "(null)");
        snprintf(state, sizeof(state), "%s", f->state);
        r = f->result;
        terminal = f->terminal;
        delay = f->delay;
        pthread_mutex_unlock(&f->lock);
        if (delay > 0)
                sleep_s(delay);
        if (r < 0)
                return r;
        s = snap_new();
        if (!s)
                return -ENOMEM;
        snap_add_text(s, "state", state, strlen(state));
        ret->snap = s;
        ret->terminal = terminal;
        return 0;
}

static int fake_list(struct backend *b, struct backend_list *ret)
{
        struct fake *f = (struct fake *)b;
        struct backend_list l = { 0 };
        int r;

        pthread_mutex_lock(&f->lock);
        f->lists++;
        r = f->result;
        for (size_t i = 0; r == 0 && f->names[i]; i++)
                r = backend_list_add(&l, strdup(f->names[i]), 0, NULL, false);
        pthread_mutex_unlock(&f->lock);
        if (r < 0) {
                backend_list_clear(&l);
                return r;
        }
        *ret = l;
        return 0;
}

static const struct backend_ops fake_ops = {
        .name = "fake",
        .fetch = fake_fetch,
        .list = fake_list,
};

static struct fake *fake_new(void)
{
        struct fake *f = calloc(1, sizeof(*f));

        if (!f)
                return NULL;
        pthread_mutex_init(&f->b.lock, NULL);
        pthread_mutex_init(&f->lock, NULL);
        f->b.ops = &fake_ops;
        f->state = "Running";
        return f;
}

static void fake_set(struct fake *f, int result, const char *state, bool terminal)
{
        pthread_mutex_lock(&f->lock);
        f->result = result;
        if (state)
                f->state = state;
        f->terminal = terminal;
        pthread_mutex_unlock(&f->lock);
}

static int fake_fetches(struct fake *f)
{
        int n;

        pthread_mutex_lock(&f->lock);
        n = f->fetches;
        pthread_mutex_unlock(&f->lock);
        return n;
}

static void fake_free(struct fake *f)
{
        if (!f)
                return;
        pthread_mutex_destroy(&f->lock);
        backend_free(&f->b);    /* destroys b.lock and frees f (b is first) */
}

/* A tree with jobs/job1 filled by one UNIT_JOB unit of a fake backend. */
struct env {
        struct tree *t;
        struct cache *c;
        struct fake *f;
        struct node *jobs, *job;
        struct unit *u;
};

/* 10,000: options.c's default --cache-max; no test but test_evict reaches it */
#define CACHE_MAX 10000

static bool env_new(struct env *e, double ttl, double max_stale)
{
        memset(e, 0, sizeof(*e));
        if (tree_new(false, &e->t) < 0 || cache_new(e->t, ttl, max_stale, CACHE_MAX, &e->c) < 0 ||
            !(e->f = fake_new()) ||
            tree_add(e->t, e->t->root, "jobs", true, ROLE_JOBS, &e->jobs) < 0 ||
            tree_add(e->t, e->jobs, "job1", true, ROLE_JOB, &e->job) < 0 ||
            cache_unit_new(e->c, UNIT_JOB, e->job, &e->f->b, &e->u) < 0)
                return CHECK(!"test setup failed");
        return true;
}

static void env_free(struct env *e)
{
        cache_free(e->c);
        tree_free(e->t);
        fake_free(e->f);
}

static int refresh(struct env *e, double max_age)
{
        int r;

        pthread_mutex_lock(&e->t->lock);
        r = cache_refresh(e->c, e->u, max_age);
        pthread_mutex_unlock(&e->t->lock);
        return r;
}

static bool stale(struct env *e)
{
        bool s;

        pthread_mutex_lock(&e->t->lock);
        s = cache_unit_stale(e->c, e->u);
        pthread_mutex_unlock(&e->t->lock);
        return s;
}

/* Pretends the last successful fetch was `s` seconds earlier. */
static void age(struct env *e, double s)
{
        pthread_mutex_lock(&e->t->lock);
        e->u->fetched_at -= s;
        pthread_mutex_unlock(&e->t->lock);
}

/* The content of jobs/job1/<name>, or NULL. */
static const char *job_file(struct env *e, const char *name)
{
        struct node *n = tree_child(e->job, name);

        return n && n->content ? n->content->data : NULL;
}

/* Waits (at most 2 s) until the unit's error back-off has run out. */
static void wait_backoff(struct env *e)
{
        double deadline = cache_now() + 2.0;

        while (cache_now() < deadline) {
                bool over;

                pthread_mutex_lock(&e->t->lock);
                over = cache_now() - e->u->error_at >= e->c->backoff;
                pthread_mutex_unlock(&e->t->lock);
                if (over)
                        return;
                sleep_s(0.005);
        }
        CHECK(!"back-off did not run out within 2 s");
}

static void test_ttl(void)
{
        struct env e;

        if (!env_new(&e, 1.0, 0))
                return;
        CHECK_INT_EQ(fake_fetches(e.f), 0);     /* nothing until asked */
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        CHECK_STR_EQ(e.f->keys[0], "job1");
        CHECK_STR_EQ(job_file(&e, "state"), "Running\n");
        CHECK(e.u->ever_ok && !e.u->terminal && e.u->error == 0);
        /* within max_age: served, no request */
        for (int i = 0; i < 5; i++)
                CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        CHECK_INT_EQ(e.c->stats.hits, 5);
        CHECK_INT_EQ(e.c->stats.fetches, 1);
        /* past max_age: one new request, and its data */
        fake_set(e.f, 0, "Verifying", false);
        age(&e, 11);
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        CHECK_STR_EQ(job_file(&e, "state"), "Verifying\n");
        /* control twin of the hits: the same data, a tighter max_age */
        age(&e, 0.5);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        CHECK_INT_EQ(refresh(&e, 0.25), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 3);
        /* max_age 0: always asks */
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 5);
        CHECK_INT_EQ(e.c->stats.fetches, 5);
        env_free(&e);
}

static void test_terminal(void)
{
        struct env e;

        if (!env_new(&e, 1.0, 0))
                return;
        fake_set(e.f, 0, "Completed", true);
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        CHECK(e.u->terminal);
        /* never refetched, however old and whatever max_age */
        age(&e, 1e6);
        fake_set(e.f, 0, "Running", false);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(refresh(&e, 1), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        CHECK_STR_EQ(job_file(&e, "state"), "Completed\n");
        CHECK(!stale(&e));
        env_free(&e);

        /* control twin: the same reply, not final, is refetched */
        if (!env_new(&e, 1.0, 0))
                return;
        fake_set(e.f, 0, "Completed", false);
        CHECK_INT_EQ(refresh(&e, 10), 0);
        age(&e, 1e6);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        env_free(&e);
}

static void test_enoent(void)
{
        struct env e;

        if (!env_new(&e, 1.0, 0))
                return;
        e.c->backoff = 0.05;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(e.job->vis, VIS_VISIBLE);
        /* the server says the job is gone: the dir goes, the error is ENOENT */
        fake_set(e.f, -ENOENT, NULL, false);
        CHECK_INT_EQ(refresh(&e, 0), -ENOENT);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        CHECK_INT_EQ(e.job->vis, VIS_GONE);
        CHECK(!e.u->ever_ok);
        CHECK(!stale(&e));
        /* and stays ENOENT (no stale data served for a job that is gone) */
        CHECK_INT_EQ(refresh(&e, 10), -ENOENT);
        wait_backoff(&e);
        CHECK_INT_EQ(refresh(&e, 10), -ENOENT);
        CHECK_INT_EQ(fake_fetches(e.f), 3);
        /* it comes back: the same node is visible again */
        wait_backoff(&e);
        fake_set(e.f, 0, "Running", false);
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(e.job->vis, VIS_VISIBLE);
        CHECK(tree_child(e.jobs, "job1") == e.job);
        CHECK_STR_EQ(job_file(&e, "state"), "Running\n");
        env_free(&e);

        /* a cold unit: ENOENT at once */
        if (!env_new(&e, 1.0, 0))
                return;
        fake_set(e.f, -ENOENT, NULL, false);
        CHECK_INT_EQ(refresh(&e, 10), -ENOENT);
        CHECK_INT_EQ(e.job->vis, VIS_GONE);
        env_free(&e);
}

/* A failed refetch serves the last good data and says it is stale. */
static void test_stale_if_error(void)
{
        struct env e;

        if (!env_new(&e, 1.0, 0))
                return;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK(!stale(&e));
        age(&e, 100);
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        CHECK_INT_EQ(e.u->error, -EIO);
        CHECK(stale(&e));
        CHECK_STR_EQ(job_file(&e, "state"), "Running\n");
        CHECK_INT_EQ(e.job->vis, VIS_VISIBLE);
        /* each failure kind the same way */
        e.c->backoff = 0;
        fake_set(e.f, -ETIMEDOUT, NULL, false);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        CHECK_INT_EQ(e.u->error, -ETIMEDOUT);
        fake_set(e.f, -EBADMSG, NULL, false);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        CHECK(stale(&e));
        /* a success clears it */
        fake_set(e.f, 0, "Completed", false);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        CHECK(!stale(&e));
        CHECK_INT_EQ(e.u->error, 0);
        CHECK_STR_EQ(job_file(&e, "state"), "Completed\n");
        env_free(&e);

        /* control twin: a failure while the data is younger than the TTL is
         * served too, but it is not stale yet */
        if (!env_new(&e, 1.0, 0))
                return;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        CHECK(!stale(&e));
        env_free(&e);

        /* a cold unit has nothing to serve: the error itself */
        if (!env_new(&e, 1.0, 0))
                return;
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 10), -EIO);
        CHECK(!stale(&e));
        env_free(&e);
}

static void test_backoff(void)
{
        struct env e;

        if (!env_new(&e, 1.0, 0))
                return;
        CHECK(e.c->backoff > 0 && e.c->backoff <= 5);   /* a short default back-off */
        e.c->backoff = 0.05;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        /* within the back-off: no request, the stale data */
        for (int i = 0; i < 5; i++)
                CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        /* after it: asked again */
        wait_backoff(&e);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 3);
        /* and once the server is back, the back-off does not linger */
        wait_backoff(&e);
        fake_set(e.f, 0, "Completed", false);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 4);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 5);
        CHECK_STR_EQ(job_file(&e, "state"), "Completed\n");
        env_free(&e);

        /* a cold unit in back-off: the error, without a request */
        if (!env_new(&e, 1.0, 0))
                return;
        e.c->backoff = 0.05;
        fake_set(e.f, -ETIMEDOUT, NULL, false);
        CHECK_INT_EQ(refresh(&e, 10), -ETIMEDOUT);
        CHECK_INT_EQ(refresh(&e, 10), -ETIMEDOUT);
        CHECK_INT_EQ(refresh(&e, 0), -ETIMEDOUT);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        wait_backoff(&e);
        fake_set(e.f, 0, NULL, false);
        CHECK_INT_EQ(refresh(&e, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        env_free(&e);
}

static void test_max_stale(void)
{
        struct env e;

        /* data 10 s old, max_stale 5: the failure is the answer */
        if (!env_new(&e, 1.0, 5))
                return;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        age(&e, 10);
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 1.0), -EIO);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        CHECK_INT_EQ(refresh(&e, 1.0), -EIO);    /* in back-off too */
        CHECK_INT_EQ(fake_fetches(e.f), 2);
        env_free(&e);

        /* control twin: data 2 s old, max_stale 5: served */
        if (!env_new(&e, 1.0, 5))
                return;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        age(&e, 2);
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        CHECK(stale(&e));
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        env_free(&e);

        /* max_stale 0: stale data is served however old */
        if (!env_new(&e, 1.0, 0))
                return;
        CHECK_INT_EQ(refresh(&e, 10), 0);
        age(&e, 1e6);
        fake_set(e.f, -EIO, NULL, false);
        CHECK_INT_EQ(refresh(&e, 1.0), 0);
        env_free(&e);
}

/* Single-flight: N concurrent callers of a cold unit, one request. */
enum { N_THREADS = 8 };

struct caller {
        struct env *e;
        pthread_barrier_t *start;
        int r;
};

static void *call_refresh(void *arg)
{
        struct caller *c = arg;

        pthread_barrier_wait(c->start);
        c->r = refresh(c->e, 10);
        return NULL;
}

static void run_callers(struct env *e, struct caller *callers)
{
        pthread_t th[N_THREADS];
        pthread_barrier_t start;
        int started = 0;

        pthread_barrier_init(&start, NULL, N_THREADS);
        for (int i = 0; i < N_THREADS; i++) {
                callers[i] = (struct caller){ .e = e, .start = &start, .r = 1 };
                if (pthread_create(&th[i], NULL, call_refresh, &callers[i]) != 0)
                        break;
                started++;
        }
        if (!CHECK_INT_EQ(started, N_THREADS)) {
                /* the barrier would never open: nothing sensible left to test */
                exit(CHECK_DONE());
        }
        for (int i = 0; i < started; i++)
                pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
}

static void test_single_flight(void)
{
        struct caller callers[N_THREADS];
        struct env e;
        int ok = 0;

        if (!env_new(&e, 1.0, 0))
                return;
        e.f->delay = 0.1;       /* long enough for every caller to arrive mid-fetch */
        run_callers(&e, callers);
        for (int i = 0; i < N_THREADS; i++)
                ok += callers[i].r == 0;
        CHECK_INT_EQ(ok, N_THREADS);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        CHECK_INT_EQ(e.c->stats.fetches, 1);
        CHECK(e.c->stats.waits >= 1);
        CHECK(!e.u->fetching);
        CHECK_STR_EQ(job_file(&e, "state"), "Running\n");
        env_free(&e);

        /* a failing request is shared the same way: one request, N errors */
        if (!env_new(&e, 1.0, 0))
                return;
        e.f->delay = 0.1;
        fake_set(e.f, -EHOSTUNREACH, NULL, false);
        run_callers(&e, callers);
        ok = 0;
        for (int i = 0; i < N_THREADS; i++)
                ok += callers[i].r == -EHOSTUNREACH;
        CHECK_INT_EQ(ok, N_THREADS);
        CHECK_INT_EQ(fake_fetches(e.f), 1);
        env_free(&e);

        /* control twin: the same callers one after another with max_age 0
         * each make their own request */
        if (!env_new(&e, 1.0, 0))
                return;
        for (int i = 0; i < N_THREADS; i++)
                CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(fake_fetches(e.f), N_THREADS);
        env_free(&e);
}

/* on_changes: called with the tree lock held, only when the tree changed
 * in a way the kernel may see. */
struct seen_changes {
        struct tree *t;
        int calls, creates, modifies, deletes;
        bool locked;
};

static void on_changes(void *ctx, struct changes *c)
{
        struct seen_changes *s = ctx;

        s->calls++;
        s->locked = pthread_mutex_trylock(&s->t->lock) == EBUSY;
        for (size_t i = 0; i < c->n; i++) {
                s->creates += c->v[i].kind == CHANGE_CREATE;
                s->modifies += c->v[i].kind == CHANGE_MODIFY;
                s->deletes += c->v[i].kind == CHANGE_DELETE;
        }
}

static void test_on_changes(void)
{
        struct seen_changes s = { 0 };
        struct env e;

        if (!env_new(&e, 1.0, 0))
                return;
        s.t = e.t;
        e.c->on_changes = on_changes;
        e.c->ctx = &s;
        e.job->nlookup = 1;     /* the kernel knows the job dir */
        /* the first fill is no change anyone saw happen (cache.c): silent */
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(s.calls, 0);
        CHECK_STR_EQ(job_file(&e, "state"), "Running\n");
        /* same data: no call */
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(s.calls, 0);
        /* changed data: one call, one MODIFY, under the tree lock */
        fake_set(e.f, 0, "Completed", false);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(s.calls, 1);
        CHECK(s.locked);
        CHECK_INT_EQ(s.modifies, 1);
        CHECK_INT_EQ(s.creates + s.deletes, 0);
        /* the job vanishes: one DELETE of the job dir (its parent is known) */
        e.jobs->nlookup = 1;
        fake_set(e.f, -ENOENT, NULL, false);
        CHECK_INT_EQ(refresh(&e, 0), -ENOENT);
        CHECK_INT_EQ(s.calls, 2);
        CHECK_INT_EQ(s.deletes, 1);
        env_free(&e);

        /* control twin: a dir the kernel does not know raises nothing */
        memset(&s, 0, sizeof(s));
        if (!env_new(&e, 1.0, 0))
                return;
        s.t = e.t;
        e.c->on_changes = on_changes;
        e.c->ctx = &s;
        CHECK_INT_EQ(refresh(&e, 0), 0);
        fake_set(e.f, 0, "Completed", false);
        CHECK_INT_EQ(refresh(&e, 0), 0);
        CHECK_INT_EQ(s.calls, 0);
        CHECK_STR_EQ(job_file(&e, "state"), "Completed\n");
        env_free(&e);
}

/* Adds jobs/<name> with its own job unit; NULL on failure. */
static struct unit *add_job(struct env *e, const char *name)
{
        struct node *n = NULL;
        struct unit *u = NULL;

        if (tree_add(e->t, e->jobs, name, true, ROLE_JOB, &n) < 0 ||
            cache_unit_new(e->c, UNIT_JOB, n, &e->f->b, &u) < 0)
                return NULL;
        return u;
}

static int refresh_unit(struct env *e, struct unit *u, double max_age)
{
        int r;

        pthread_mutex_lock(&e->t->lock);
        r = cache_refresh(e->c, u, max_age);
        pthread_mutex_unlock(&e->t->lock);
        return r;
}

/* --cache-max: past it the least recently used unit the kernel does not
 * hold loses its content (its directory stays) and is refetched on use. */
static void test_evict(void)
{
        struct unit *a, *b, *c;
        struct env e;
        int fetches;

        if (!env_new(&e, 1.0, 0))
                return;
        e.c->cache_max = 1;
        a = e.u;
        b = add_job(&e, "job2");
        c = add_job(&e, "job3");
        if (!CHECK(b && c))
                goto out;
        CHECK_INT_EQ(refresh_unit(&e, a, 10), 0);
        CHECK_INT_EQ(refresh_unit(&e, b, 10), 0);
        CHECK_INT_EQ(refresh_unit(&e, c, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 3);
        /* one unit keeps its content: the last one fetched */
        CHECK_INT_EQ(e.c->n_cached, 1);
        CHECK_INT_EQ(a->dir->n_kids, 0);
        CHECK_INT_EQ(b->dir->n_kids, 0);
        CHECK(tree_child(c->dir, "state") != NULL);
        CHECK(!a->ever_ok && !b->ever_ok && c->ever_ok);
        /* the directories stay, with their inode numbers */
        CHECK(tree_child(e.jobs, "job1") == a->dir && a->dir->vis == VIS_VISIBLE);
        /* an evicted unit is refetched on use; then c is the oldest */
        fetches = fake_fetches(e.f);
        CHECK_INT_EQ(refresh_unit(&e, a, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), fetches + 1);
        CHECK(tree_child(a->dir, "state") != NULL);
        CHECK_INT_EQ(c->dir->n_kids, 0);
        CHECK_INT_EQ(e.c->n_cached, 1);
out:
        env_free(&e);

        /* control twin: a unit whose dir the kernel holds is never evicted */
        if (!env_new(&e, 1.0, 0))
                return;
        e.c->cache_max = 1;
        a = e.u;
        b = add_job(&e, "job2");
        if (!CHECK(b))
                goto out2;
        a->dir->nlookup = 1;
        CHECK_INT_EQ(refresh_unit(&e, a, 10), 0);
        CHECK_INT_EQ(refresh_unit(&e, b, 10), 0);
        CHECK(tree_child(a->dir, "state") != NULL);
        CHECK(a->ever_ok);
        CHECK_INT_EQ(refresh_unit(&e, a, 10), 0);
        CHECK_INT_EQ(fake_fetches(e.f), 2);
out2:
        env_free(&e);

        /* control twin: under cache_max nothing is evicted */
        if (!env_new(&e, 1.0, 0))
                return;
        a = e.u;
        b = add_job(&e, "job2");
        c = add_job(&e, "job3");
        if (CHECK(b && c)) {
                CHECK_INT_EQ(refresh_unit(&e, a, 10), 0);
                CHECK_INT_EQ(refresh_unit(&e, b, 10), 0);
                CHECK_INT_EQ(refresh_unit(&e, c, 10), 0);
                CHECK_INT_EQ(e.c->n_cached, 3);
                CHECK(tree_child(a->dir, "state") && tree_child(b->dir, "state"));
        }
        env_free(&e);
}

static void test_units(void)
{
        struct env e;
        struct unit *list = NULL, *sw_list = NULL, *run = NULL;
        struct node *sw = NULL, *name = NULL, *key = NULL, *a, *b;
        size_t units;
        int r;

        if (!env_new(&e, 1.0, 0))
                return;
        pthread_mutex_lock(&e.t->lock);
        /* jobs/ listing: names become job dirs with their own units */
        e.f->names[0] = "job-a";
        e.f->names[1] = "job-b";
        e.f->names[2] = "job1";                 /* already there */
        cache_unit_new(e.c, UNIT_JOBS_LIST, e.jobs, &e.f->b, &list);
        units = e.c->n_units;
        r = cache_refresh(e.c, list, 10);
        CHECK_INT_EQ(r, 0);
        CHECK_INT_EQ(e.f->lists, 1);
        CHECK_INT_EQ(e.f->fetches, 0);
        a = tree_child(e.jobs, "job-a");
        b = tree_child(e.jobs, "job-b");
        CHECK(a && a->is_dir && a->role == ROLE_JOB && a->vis == VIS_VISIBLE);
        CHECK(a && a->unit && a->unit->kind == UNIT_JOB && a->unit->dir == a);
        CHECK(b && b->unit && b->unit != (a ? a->unit : NULL));
        CHECK(tree_child(e.jobs, "job1") == e.job && e.job->unit == e.u);
        CHECK_INT_EQ(e.c->n_units, units + 2);
        /* jobs/ only grows: a job missing from the list stays */
        e.f->names[0] = "job-b";
        e.f->names[1] = NULL;
        r = cache_refresh(e.c, list, 0);
        CHECK_INT_EQ(r, 0);
        CHECK(a && a->vis == VIS_VISIBLE);
        CHECK_INT_EQ(e.c->n_units, units + 2);

        /* software/ follows its list */
        tree_add(e.t, e.t->root, "software", true, ROLE_SOFTWARE, &sw);
        cache_unit_new(e.c, UNIT_SW_LIST, sw, &e.f->b, &sw_list);
        e.f->names[0] = "sw_example";
        e.f->names[1] = "sw_other";
        e.f->names[2] = NULL;
        r = cache_refresh(e.c, sw_list, 0);
        CHECK_INT_EQ(r, 0);
        name = tree_child(sw, "sw_example");
        a = tree_child(sw, "sw_other");
        CHECK(name && name->role == ROLE_SWNAME && name->vis == VIS_VISIBLE && !name->unit);
        CHECK(a && a->vis == VIS_VISIBLE);
        e.f->names[0] = "sw_example";
        e.f->names[1] = NULL;
        r = cache_refresh(e.c, sw_list, 0);
        CHECK_INT_EQ(r, 0);
        CHECK(a && a->vis == VIS_GONE);
        CHECK(name && name->vis == VIS_VISIBLE);

        /* a run unit asks for (software name, key) */
        if (name && tree_add(e.t, name, "58ae6cea-df31-4059-9466-b817c337985d", true, ROLE_RUN, &key) == 0 &&
            cache_unit_new(e.c, UNIT_RUN, key, &e.f->b, &run) == 0) {
                r = cache_refresh(e.c, run, 10);
                CHECK_INT_EQ(r, 0);
                CHECK_STR_EQ(e.f->keys[0], "sw_example");
                CHECK_STR_EQ(e.f->keys[1], "58ae6cea-df31-4059-9466-b817c337985d");
                CHECK(tree_child(key, "state") != NULL);
        }
        pthread_mutex_unlock(&e.t->lock);
        env_free(&e);
}

int main(void)
{
        test_ttl();
        test_terminal();
        test_enoent();
        test_stale_if_error();
        test_backoff();
        test_max_stale();
        test_single_flight();
        test_on_changes();
        test_evict();
        test_units();
        return CHECK_DONE();
}
