/* poll: which units to refetch, and when, so watchers see remote changes
 * while a mount stays a good citizen.
 *
 * The poller is cache policy (cache.h gives it facts and runs what it picks).
 * Only units the kernel holds are considered (an inotify watch holds its
 * inode). Each unit's period follows the interest in it: the poll interval
 * while it was read or seen changing within the last 4 intervals, then a
 * quarter of its idle time, up to 60 s. Where the backend's listing is a
 * change feed, one listing per period covers every job it names, and a job
 * is fetched only when the feed says it moved. Every request the poller
 * makes, listings included, comes out of a per-backend budget of
 * --poll-budget requests per second (a token bucket of one second's worth),
 * the most recently interesting and longest overdue first, so the request
 * rate has a ceiling whatever the kernel caches.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache;
struct clock;
struct poll_fact;
struct poller;

#define POLL_IDLE_MAX 60.0      /* s: the longest period of a unit nobody reads */
#define POLL_HOT_INTERVALS 4    /* intervals after a read or change at full rate */
#define POLL_SOURCES_MAX 8

struct poll_config {
        const struct clock *clock;
        double interval;        /* s, --poll-interval; 0: no poller */
        double budget;          /* requests per second and backend, --poll-budget */
};

struct poll_stats {
        uint64_t ticks, polls[POLL_SOURCES_MAX], denied[POLL_SOURCES_MAX];
};

/* The period of a unit idle for `idle` seconds (pure: unit tests). */
double poll_period(double interval, double idle);
/* Whether the fact's unit is due at now, and since when (pure). */
bool poll_due(const struct poll_config *cfg, const struct poll_fact *f, double now,
              double *ret_since);

int poller_new(const struct poll_config *cfg, struct cache *c, pthread_mutex_t *lock,
               struct poller **ret);
/* One round: picks the due units within the budget and queues them. Lock held.
 * Returns when the next round should run (clock time): when the next unit
 * comes due, at most a quarter interval (250 ms) and at least 50 ms away. */
double poller_tick(struct poller *p);
int poller_start(struct poller *p);     /* the thread; a no-op when interval is 0 */
void poller_stop(struct poller *p);     /* idempotent; joins */
void poller_free(struct poller *p);     /* NULL-safe; stops first */
void poller_stats(const struct poller *p, struct poll_stats *ret);      /* lock held */
