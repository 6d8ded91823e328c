/* poll: see include/jobfs/poll.h. */
#include "jobfs/poll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/cache.h"
#include "jobfs/clock.h"

/* 5 s: how often failed lookups and units waiting on a queued change are
 * looked at again; they are few, and nothing waits on them */
#define SWEEP_EVERY 5.0
/* 50 ms: the shortest time between two rounds (see tick_every) */
#define TICK_MIN 0.05

struct candidate {
        struct unit *unit;
        unsigned source;
        bool is_list, hot;
        double since;           /* due since */
};

struct poller {
        struct poll_config cfg;
        struct cache *c;
        pthread_mutex_t *lock;          /* borrowed (the tree lock): protects all below */
        pthread_cond_t wake;            /* stop, kicked; monotonic */
        bool stop, running;
        bool kicked;                    /* a feed said jobs moved: a round now */
        pthread_t thread;
        double tokens[POLL_SOURCES_MAX];
        double refilled_at, swept_at;
        struct candidate *due;          /* this round's, reused */
        size_t n_due, cap_due;
        struct poll_stats stats;
};

double poll_period(double interval, double idle)
{
        double p = idle / 4;

        if (idle < POLL_HOT_INTERVALS * interval || p < interval)
                return interval;
        return p < POLL_IDLE_MAX ? p : (interval > POLL_IDLE_MAX ? interval : POLL_IDLE_MAX);
}

bool poll_due(const struct poll_config *cfg, const struct poll_fact *f, double now,
              double *ret_since)
{
        double period = poll_period(cfg->interval, now - f->interest_at);

        if (f->busy || f->failing)
                return false;
        if (f->is_list) {
                /* a listing costs the server what it took to send (160 MB and
                 * 2 s for 100,000 jobs): at most 10% of the time */
                if (period < 10 * f->fetch_secs)
                        period = 10 * f->fetch_secs;
        } else if (f->covered) {
                /* the feed tells when it moved: nothing to ask until then */
                *ret_since = f->fetched_at;
                return f->changed;
        }
        *ret_since = f->fetched_at + period;
        return now >= *ret_since;
}

/* The cache's feed listener (tree lock held): wakes poll_main for a round. */
static void poller_kick(void *ctx)
{
        struct poller *p = ctx;

        p->kicked = true;
        pthread_cond_signal(&p->wake);
}

int poller_new(const struct poll_config *cfg, struct cache *c, pthread_mutex_t *lock,
               struct poller **ret)
{
        struct poller *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->cfg = *cfg;
        p->c = c;
        p->lock = lock;
        r = clock_cond_init(&p->wake);
        if (r < 0) {
                free(p);
                return r;
        }
        p->refilled_at = p->swept_at = clock_now(cfg->clock);
        pthread_mutex_lock(lock);
        cache_set_feed_listener(c, poller_kick, p);
        pthread_mutex_unlock(lock);
        for (int i = 0; i < POLL_SOURCES_MAX; i++)
                p->tokens[i] = cfg->budget > 1 ? cfg->budget : 1;
        *ret = p;
        return 0;
}

struct collect {
        struct poller *p;
        double now;
        double next;            /* the soonest a unit not due yet comes due */
        int err;
};

static void collect_one(void *ctx, const struct poll_fact *f)
{
        struct collect *col = ctx;
        struct poller *p = col->p;
        double since = 0;       /* stays 0 for a unit no time makes due (busy, covered) */

        if (col->err || f->source >= POLL_SOURCES_MAX)
                return;
        if (!poll_due(&p->cfg, f, col->now, &since)) {
                if (since > col->now && since < col->next)
                        col->next = since;
                return;
        }
        if (p->n_due == p->cap_due) {
                size_t cap = p->cap_due ? 2 * p->cap_due : 64;
                struct candidate *v = realloc(p->due, cap * sizeof(*v));

                if (!v) {
                        col->err = -ENOMEM;
                        return;
                }
                p->due = v;
                p->cap_due = cap;
        }
        p->due[p->n_due++] = (struct candidate){
                .unit = f->unit, .source = f->source, .is_list = f->is_list, .since = since,
                .hot = col->now - f->interest_at < POLL_HOT_INTERVALS * p->cfg.interval,
        };
}

/* Listings first (one covers many jobs), then units read or changed lately,
 * then the longest overdue: under a tight budget nobody starves, and watched
 * jobs keep their latency. */
static int by_priority(const void *a, const void *b)
{
        const struct candidate *x = a, *y = b;

        if (x->is_list != y->is_list)
                return x->is_list ? -1 : 1;
        if (x->hot != y->hot)
                return x->hot ? -1 : 1;
        return (x->since > y->since) - (x->since < y->since);
}

/* A quarter interval between rounds, 50 to 250 ms, unless a unit comes due
 * sooner; 50 ms at least, so that 10,000 held units, each due at its own
 * moment, cost at most 20 rounds (about 20 ms) a second. */
static double tick_every(const struct poller *p)
{
        double t = p->cfg.interval / 4;

        return t < TICK_MIN ? TICK_MIN : t > 0.25 ? 0.25 : t;
}

double poller_tick(struct poller *p)
{
        struct collect col = { .p = p, .now = clock_now(p->cfg.clock) };
        double burst = p->cfg.budget > 1 ? p->cfg.budget : 1;   /* one second's worth */

        p->stats.ticks++;
        for (int i = 0; i < POLL_SOURCES_MAX; i++) {
                p->tokens[i] += (col.now - p->refilled_at) * p->cfg.budget;
                if (p->tokens[i] > burst)
                        p->tokens[i] = burst;
        }
        p->refilled_at = col.now;
        col.next = col.now + tick_every(p);
        p->n_due = 0;
        cache_poll_each(p->c, collect_one, &col);
        if (p->n_due > 1)       /* qsort(NULL, 0, ...) is undefined */
                qsort(p->due, p->n_due, sizeof(*p->due), by_priority);
        for (size_t i = 0; i < p->n_due; i++) {
                struct candidate *d = &p->due[i];

                if (p->tokens[d->source] < 1) {
                        p->stats.denied[d->source]++;
                        continue;
                }
                p->tokens[d->source] -= 1;
                p->stats.polls[d->source]++;
                cache_poll(p->c, d->unit);
        }
        if (col.now - p->swept_at >= SWEEP_EVERY) {
                cache_sweep(p->c);
                p->swept_at = col.now;
        }
        return col.next > col.now + TICK_MIN ? col.next : col.now + TICK_MIN;
}

static void *poll_main(void *arg)
{
        struct poller *p = arg;
        double until;

        pthread_mutex_lock(p->lock);
        until = clock_now(p->cfg.clock) + tick_every(p);
        while (!p->stop) {
                while (!p->stop && !p->kicked && clock_now(p->cfg.clock) < until)
                        clock_wait(p->cfg.clock, &p->wake, p->lock, until);
                p->kicked = false;
                if (!p->stop)
                        until = poller_tick(p);
        }
        pthread_mutex_unlock(p->lock);
        return NULL;
}

int poller_start(struct poller *p)
{
        int r;

        if (p->cfg.interval <= 0)
                return 0;
        r = -pthread_create(&p->thread, NULL, poll_main, p);
        if (r == 0)
                p->running = true;
        return r;
}

void poller_stop(struct poller *p)
{
        if (!p || !p->running)
                return;
        pthread_mutex_lock(p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(p->lock);
        pthread_join(p->thread, NULL);
        p->running = false;
}

void poller_free(struct poller *p)
{
        if (!p)
                return;
        poller_stop(p);
        pthread_mutex_lock(p->lock);
        cache_set_feed_listener(p->c, NULL, NULL);
        pthread_mutex_unlock(p->lock);
        pthread_cond_destroy(&p->wake);
        free(p->due);
        free(p);
}

void poller_stats(const struct poller *p, struct poll_stats *ret)
{
        *ret = p->stats;
}
