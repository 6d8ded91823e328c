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

#define PROBES_FAILED_MAX 256

struct probe {
        struct node *parent;
        char name[SNAP_NAME_MAX + 1];
        bool done;
        int result;
        double done_at;
        unsigned refs;                  /* callers still reading it */
        struct probe *next;             /* newest first */
};


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
        while (c->probes) {
                struct probe *p = c->probes;

                c->probes = p->next;
                free(p);
        }
        pthread_cond_destroy(&c->done);
        free(c);
}

static void unit_link(struct cache *c, struct unit *u, enum unit_kind kind, struct node *dir,
                      struct backend *b)
{
        u->kind = kind;
        u->dir = dir;
        u->backend = b;
        u->next = c->units;
        c->units = u;
        c->n_units++;
        dir->unit = u;
}

int cache_unit_new(struct cache *c, enum unit_kind kind, struct node *dir, struct backend *b,
                   struct unit **ret)
{
        struct unit *u = calloc(1, sizeof(*u));

        if (!u)
                return -ENOMEM;
        unit_link(c, u, kind, dir, b);
        *ret = u;
        return 0;
}

/* A job or run directory and its unit, both or neither (a node without its
 * unit would be dereferenced by the first lookup). */
static int add_unit_dir(struct cache *c, struct node *parent, const char *name, enum node_role role,
                        enum unit_kind kind, struct backend *b, struct node **ret)
{
        struct unit *u = calloc(1, sizeof(*u));
        int r;

        if (!u)
                return -ENOMEM;
        r = tree_add(c->tree, parent, name, true, role, ret);
        if (r < 0) {
                free(u);
                return r;
        }
        (*ret)->vis = VIS_GONE;
        unit_link(c, u, kind, *ret, b);
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

                if (evictable(u) && tree_prune(u->dir) == 0) {
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
        struct backend_list list;
};

static int fetch_unlocked(struct unit *u, const char *keys[2], struct fetched *f)
{
        struct backend *b = u->backend;

        switch (u->kind) {
        case UNIT_JOB:
        case UNIT_RUN: {
                struct backend_item it = { 0 };
                int r = b->ops->fetch(b, keys, &it);

                f->snap = it.snap;
                f->terminal = it.terminal;
                it.snap = NULL;
                backend_item_clear(&it);
                return r;
        }
        case UNIT_JOBS_LIST:
        case UNIT_SW_LIST:
                return b->ops->list(b, &f->list);
        }
        return -EINVAL;
}

/* 2,000,000: twice the largest list reply accepted; a server sending new
 * random ids on every poll cannot grow jobs/ past it. */
#define LISTING_MAX 2000000

/* Listings: jobs/ only grows (a job leaves when its own fetch says it is
 * gone); software/ follows the list, since names are checked against it.
 * Linear in the names: one index lookup each, then one pass over the kids. */
static int apply_names(struct cache *c, struct unit *u, struct fetched *f, struct changes *out)
{
        struct tree *t = c->tree;
        struct node *dir = u->dir;
        bool is_jobs = u->kind == UNIT_JOBS_LIST;
        bool *listed = NULL;
        int r = 0;

        for (size_t i = 0; i < f->list.n; i++) {
                struct node *n = tree_child(dir, f->list.v[i].name);

                if (!n && dir->n_kids >= LISTING_MAX) {
                        log_debug("%s lists more than %d names; the rest are left out",
                                  u->backend->ops->name, LISTING_MAX);
                        break;
                }
                if (!n && is_jobs)
                        r = add_unit_dir(c, dir, f->list.v[i].name, ROLE_JOB, UNIT_JOB, u->backend, &n);
                else if (!n && (r = tree_add(t, dir, f->list.v[i].name, true, ROLE_SWNAME, &n)) == 0)
                        n->vis = VIS_GONE;
                if (r < 0)
                        return r;
                r = tree_reveal(t, n, out);
                if (r < 0)
                        return r;
        }
        if (is_jobs || dir->n_kids == 0)
                return 0;
        listed = calloc(dir->n_kids, sizeof(*listed));
        if (!listed)
                return -ENOMEM;
        for (size_t i = 0; i < f->list.n; i++) {
                struct node *n = tree_child(dir, f->list.v[i].name);

                if (n)
                        listed[n->pos] = true;
        }
        for (size_t i = 0; i < dir->n_kids && r == 0; i++)
                if (!listed[i])
                        r = tree_remove(t, dir->kids[i], out);
        free(listed);
        return r;
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

static int complete_fetch(struct cache *c, struct unit *u, int r, struct fetched *f);

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
        double now = cache_now(), t0;
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
        t0 = cache_now();
        r = fetch_unlocked(u, keys, &f);
        pthread_mutex_lock(&c->tree->lock);
        u->fetch_secs = cache_now() - t0;
        return complete_fetch(c, u, r, &f);
}

/* Applies what a fetch of u brought (or its error) and wakes the waiters.
 * Tree lock held; consumes f. */
static int complete_fetch(struct cache *c, struct unit *u, int r, struct fetched *f)
{
        double now = cache_now();

        r = apply_fetched(c, u, r, f);
        if (r == 0) {
                u->ever_ok = true;
                u->terminal = f->snap ? f->terminal : false;
                u->fetched_at = now;
                clock_gettime(CLOCK_REALTIME, &u->fetched_wall);
                u->error = 0;
                if (!u->cached && f->snap) {
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
        snap_free(f->snap);
        backend_list_clear(&f->list);
        return r;
}

/* A lookup of a name the tree has not got: one request per name in flight,
 * shared by concurrent lookups. A failure is remembered for the back-off
 * (so a loop over a down server costs a request a second, not one per
 * access), in at most PROBES_FAILED_MAX entries; a success leaves a node. */
static struct probe *probe_find(struct cache *c, const struct node *parent, const char *name)
{
        for (struct probe *p = c->probes; p; p = p->next)
                if (p->parent == parent && strcmp(p->name, name) == 0)
                        return p;
        return NULL;
}

/* Drops finished probes nobody reads that are past the back-off, and the
 * oldest ones past the cap. */
static void probes_prune(struct cache *c, double now)
{
        size_t kept = 0;

        for (struct probe **pp = &c->probes; *pp;) {
                struct probe *p = *pp;
                bool old = p->done && p->refs == 0 &&
                           (now - p->done_at >= c->backoff || kept >= PROBES_FAILED_MAX);

                if (old) {
                        *pp = p->next;
                        free(p);
                        continue;
                }
                kept += p->done;
                pp = &p->next;
        }
}

static int probe_wait(struct cache *c, struct probe *p)
{
        p->refs++;
        c->stats.waits++;
        while (!p->done)
                pthread_cond_wait(&c->done, &c->tree->lock);
        p->refs--;
        return p->result;
}

int cache_probe(struct cache *c, struct node *parent, const char *name, enum unit_kind kind,
                enum node_role role, struct backend *b, struct node **ret)
{
        const char *keys[2] = { kind == UNIT_RUN ? parent->name : name, kind == UNIT_RUN ? name : NULL };
        struct fetched f = { 0 };
        struct probe *p;
        struct node *n;
        struct unit *u;
        int r;

        probes_prune(c, cache_now());
        p = probe_find(c, parent, name);
        if (p && p->done && p->result < 0) {
                c->stats.hits++;
                return p->result;               /* failed within the back-off */
        }
        if (p) {
                r = probe_wait(c, p);
                if (r < 0)
                        return r;
                n = tree_child(parent, name);
                if (!n)
                        return -ENOENT;
                *ret = n;
                return 0;
        }
        if (strlen(name) > SNAP_NAME_MAX)
                return -ENAMETOOLONG;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->parent = parent;
        strcpy(p->name, name);
        p->refs = 1;
        p->next = c->probes;
        c->probes = p;
        c->stats.fetches++;
        pthread_mutex_unlock(&c->tree->lock);
        {
                struct backend_item it = { 0 };

                r = b->ops->fetch(b, keys, &it);
                f.snap = it.snap;
                f.terminal = it.terminal;
                it.snap = NULL;
                backend_item_clear(&it);
        }
        pthread_mutex_lock(&c->tree->lock);
        if (r == 0 && !(n = tree_child(parent, name)))
                r = add_unit_dir(c, parent, name, role, kind, b, &n);
        if (r == 0) {
                u = n->unit;
                r = u->fetching ? 0 : complete_fetch(c, u, 0, &f);   /* else: a listing made it */
                f.snap = NULL;
        }
        snap_free(f.snap);
        p->done = true;
        p->result = r;
        p->done_at = cache_now();
        p->refs--;
        pthread_cond_broadcast(&c->done);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}
