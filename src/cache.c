/* cache: see include/jobfs/cache.h. */
#include "jobfs/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobfs/backend.h"
#include "jobfs/log.h"

/* 1 s: a flapping server is retried at the next access after a second,
 * while a shell loop over a down server costs one request per second. */
#define ERROR_BACKOFF 1.0

double cache_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cache_new(struct tree *t, double ttl, double max_stale, size_t cache_max, struct cache **ret)
{
        struct cache *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->tree = t;
        c->ttl = ttl;
        c->max_stale = max_stale;
        c->cache_max = cache_max;
        c->backoff = ERROR_BACKOFF;
        pthread_cond_init(&c->done, NULL);
        *ret = c;
        return 0;
}

void cache_free(struct cache *c)
{
        if (!c)
                return;
        while (c->units) {
                struct unit *u = c->units;

                c->units = u->next;
                free(u);
        }
        pthread_cond_destroy(&c->done);
        free(c);
}

int cache_unit_new(struct cache *c, enum unit_kind kind, struct node *dir, struct backend *b,
                   struct unit **ret)
{
        struct unit *u = calloc(1, sizeof(*u));

        if (!u)
                return -ENOMEM;
        u->kind = kind;
        u->dir = dir;
        u->backend = b;
        u->next = c->units;
        c->units = u;
        c->n_units++;
        dir->unit = u;
        *ret = u;
        return 0;
}

bool cache_unit_stale(const struct cache *c, const struct unit *u)
{
        return u->ever_ok && u->error && !u->terminal &&
               cache_now() - u->fetched_at > c->ttl;
}

static void lru_unlink(struct cache *c, struct unit *u)
{
        if (u->lru_prev)
                u->lru_prev->lru_next = u->lru_next;
        else
                c->lru_head = u->lru_next;
        if (u->lru_next)
                u->lru_next->lru_prev = u->lru_prev;
        else
                c->lru_tail = u->lru_prev;
        u->lru_prev = u->lru_next = NULL;
}

/* Marks u most recently used; listings are not on the list (never evicted). */
static void lru_touch(struct cache *c, struct unit *u)
{
        if (!u->cached || c->lru_head == u)
                return;
        if (u->lru_prev || u->lru_next || c->lru_tail == u)
                lru_unlink(c, u);       /* already listed (a fresh unit is not) */
        u->lru_next = c->lru_head;
        if (c->lru_head)
                c->lru_head->lru_prev = u;
        c->lru_head = u;
        if (!c->lru_tail)
                c->lru_tail = u;
}

static bool evictable(const struct unit *u)
{
        return u->held == 0 && u->dir->nlookup == 0 && !u->fetching && u->pins == 0;
}

/* 64: eviction runs under the tree lock, so it looks at a bounded number of
 * units per call; held ones are skipped and found again later. */
#define EVICT_SCAN_MAX 64

void cache_trim(struct cache *c)
{
        struct unit *u = c->lru_tail;

        for (int scanned = 0; u && c->n_cached > c->cache_max && scanned < EVICT_SCAN_MAX; scanned++) {
                struct unit *prev = u->lru_prev;

                if (evictable(u) && tree_prune(c->tree, u->dir) == 0) {
                        lru_unlink(c, u);
                        u->cached = false;
                        u->ever_ok = u->terminal = false;
                        u->error = 0;
                        c->n_cached--;
                }
                u = prev;
        }
}

/* What one fetch brought back, carried from outside the lock to inside. */
struct fetched {
        struct snap *snap;
        bool terminal;
        char **names;
        size_t n_names;
};

static int fetch_unlocked(struct unit *u, const char *keys[2], struct fetched *f)
{
        struct backend *b = u->backend;

        switch (u->kind) {
        case UNIT_JOB:
        case UNIT_RUN:
                return b->ops->fetch(b, keys, &f->snap, &f->terminal);
        case UNIT_JOBS_LIST:
        case UNIT_SW_LIST:
                return b->ops->list(b, &f->names, &f->n_names);
        }
        return -EINVAL;
}

/* Listings: jobs/ only grows (a job leaves when its own fetch says it is
 * gone); software/ follows the list, since names are checked against it. */
static int apply_names(struct cache *c, struct unit *u, struct fetched *f, struct changes *out)
{
        struct tree *t = c->tree;
        bool is_jobs = u->kind == UNIT_JOBS_LIST;
        int r;

        for (size_t i = 0; i < f->n_names; i++) {
                struct node *n = tree_child(u->dir, f->names[i]);
                struct unit *ju;

                if (!n) {
                        r = tree_add(t, u->dir, f->names[i], true, is_jobs ? ROLE_JOB : ROLE_SWNAME, &n);
                        if (r < 0)
                                return r;
                        n->vis = VIS_GONE;
                        if (is_jobs && (r = cache_unit_new(c, UNIT_JOB, n, u->backend, &ju)) < 0)
                                return r;
                }
                r = tree_reveal(t, n, out);
                if (r < 0)
                        return r;
        }
        if (is_jobs)
                return 0;
        for (size_t i = 0; i < u->dir->n_kids; i++) {
                struct node *k = u->dir->kids[i];
                bool listed = false;

                for (size_t j = 0; j < f->n_names && !listed; j++)
                        listed = strcmp(f->names[j], k->name) == 0;
                if (!listed && (r = tree_remove(t, k, out)) < 0)
                        return r;
        }
        return 0;
}

static int apply_fetched(struct cache *c, struct unit *u, int r, struct fetched *f)
{
        struct changes ch = { 0 };
        /* the first fill of a unit is no change anyone saw happen */
        struct changes *out = u->ever_ok ? &ch : NULL;

        tree_stamp(c->tree);
        if (r == -ENOENT && (u->kind == UNIT_JOB || u->kind == UNIT_RUN)) {
                /* the server says the unit is gone (or never was) */
                u->ever_ok = false;
                r = tree_remove(c->tree, u->dir, out) < 0 ? -ENOMEM : -ENOENT;
        } else if (r == 0 && f->snap) {
                r = tree_apply(c->tree, u->dir, f->snap, u, out);
                if (r == 0 && u->dir->vis == VIS_GONE)
                        r = tree_reveal(c->tree, u->dir, out);
        } else if (r == 0) {
                r = apply_names(c, u, f, out);
        }
        if (ch.n && c->on_changes)
                c->on_changes(c->ctx, &ch);
        changes_clear(&ch);
        return r;
}

static bool is_fresh(const struct unit *u, double now, double max_age)
{
        return u->ever_ok && (u->terminal || now - u->fetched_at < max_age);
}

/* After a recent failure: serve what we have, or the error, without asking. */
static bool in_backoff(const struct cache *c, const struct unit *u, double now)
{
        return u->error && now - u->error_at < c->backoff;
}

static int serve_after_error(const struct cache *c, const struct unit *u, double now)
{
        if (!u->ever_ok)
                return u->error;
        if (c->max_stale > 0 && now - u->fetched_at > c->max_stale)
                return u->error;
        return 0;
}

bool cache_needs_fetch(const struct cache *c, const struct unit *u, double max_age)
{
        double now = cache_now();

        return !u->fetching && !is_fresh(u, now, max_age) && !in_backoff(c, u, now);
}

int cache_wait(struct cache *c, struct unit *u, double grace)
{
        unsigned long seen = u->fetches_done;
        struct timespec deadline;
        double end;

        clock_gettime(CLOCK_REALTIME, &deadline);
        end = (double)deadline.tv_sec + (double)deadline.tv_nsec / 1e9 + grace;
        deadline.tv_sec = (time_t)end;
        deadline.tv_nsec = (long)((end - (double)deadline.tv_sec) * 1e9);
        while (u->fetches_done == seen)
                if (pthread_cond_timedwait(&c->done, &c->tree->lock, &deadline) == ETIMEDOUT)
                        break;
        if (!u->ever_ok && !u->error)
                return cache_refresh(c, u, c->ttl);     /* evicted meanwhile */
        if (u->fetches_done == seen) {
                c->stats.stale_served++;
                return serve_after_error(c, u, cache_now());
        }
        if (u->error == -ENOENT)
                return -ENOENT;
        return u->error ? serve_after_error(c, u, cache_now()) : 0;
}

int cache_refresh(struct cache *c, struct unit *u, double max_age)
{
        struct fetched f = { 0 };
        const char *keys[2] = { NULL, NULL };
        double now = cache_now();
        int r;

        while (u->fetching) {
                c->stats.waits++;
                pthread_cond_wait(&c->done, &c->tree->lock);
                now = cache_now();
                if (!u->fetching)
                        return u->error ? serve_after_error(c, u, now) : 0;
        }
        if (is_fresh(u, now, max_age)) {
                c->stats.hits++;
                lru_touch(c, u);
                return 0;
        }
        if (in_backoff(c, u, now))
                return serve_after_error(c, u, now);
        /* names are immutable and nodes outlive the fetch: safe to read unlocked */
        if (u->kind == UNIT_RUN) {
                keys[0] = u->dir->parent->name;
                keys[1] = u->dir->name;
        } else {
                keys[0] = u->dir->name;
        }
        u->fetching = true;
        c->stats.fetches++;
        pthread_mutex_unlock(&c->tree->lock);
        r = fetch_unlocked(u, keys, &f);
        pthread_mutex_lock(&c->tree->lock);
        now = cache_now();
        r = apply_fetched(c, u, r, &f);
        if (r == 0) {
                u->ever_ok = true;
                u->terminal = f.snap ? f.terminal : false;
                u->fetched_at = now;
                clock_gettime(CLOCK_REALTIME, &u->fetched_wall);
                u->error = 0;
                if (!u->cached && f.snap) {
                        u->cached = true;
                        c->n_cached++;
                }
                lru_touch(c, u);
                cache_trim(c);
        } else {
                u->error = r;
                u->error_at = now;
                if (r != -ENOENT)
                        r = serve_after_error(c, u, now);
        }
        u->fetching = false;
        u->fetches_done++;
        pthread_cond_broadcast(&c->done);
        snap_free(f.snap);
        backend_names_free(f.names, f.n_names);
        return r;
}
