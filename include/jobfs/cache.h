/* cache: fetch units, their TTLs, and one request in flight per unit.
 *
 * A unit is what one request fills: a Bacalhau job dir, a muse run dir, the
 * jobs/ listing, the software/ listing. cache_refresh() returns at once when
 * the unit's data is young enough (or final: a terminal job is never
 * refetched); otherwise one caller fetches, without the tree lock, while
 * concurrent callers wait for its outcome (single-flight). A failed refetch
 * keeps serving the last good data (stale-if-error, up to max_stale) and is
 * not retried for a short back-off, so a down server is not hammered.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jobfs/tree.h"

struct backend;
struct probe;

enum unit_kind { UNIT_JOB, UNIT_RUN, UNIT_JOBS_LIST, UNIT_SW_LIST };

struct unit {                           /* all fields: protected by tree->lock */
        enum unit_kind kind;
        struct node *dir;               /* the directory it fills */
        struct backend *backend;        /* borrowed */
        bool fetching;                  /* a request is in flight */
        bool ever_ok, terminal;
        int error;                      /* last refetch failure, 0 after a success */
        double fetched_at, error_at;    /* monotonic seconds */
        double fetch_secs;              /* how long the last fetch took */
        struct timespec fetched_wall;   /* CLOCK_REALTIME of the data (xattr) */
        unsigned pins;                  /* queued changes naming its nodes */
        size_t held;                    /* its nodes the kernel holds (nlookup > 0): an
                                         * inotify watch on a file holds the file, not
                                         * always its directory */
        bool cached;                    /* holds content, on the LRU list */
        bool prefetch_queued;           /* on the prefetch queue */
        double prefetch_age;            /* max_age for the queued refresh; 0 = TTL */
        unsigned long fetches_done;     /* bumped when a fetch ends (cache_wait) */
        struct unit *next;              /* cache->units */
        struct unit *lru_prev, *lru_next;       /* cache->lru, most recent first */
};

struct cache_stats {
        uint64_t hits, fetches, waits;
        uint64_t stale_served;          /* reads that did not wait out a slow refetch */
};

/* Called with the tree lock held when a refresh changed the tree. */
typedef void (*cache_changes_fn)(void *ctx, struct changes *c);

struct cache {
        struct tree *tree;              /* borrowed */
        pthread_cond_t done;            /* a fetch finished; waits on tree->lock */
        double ttl, max_stale, backoff;
        struct unit *units;             /* every unit, for the poller */
        size_t n_units;
        struct unit *lru_head, *lru_tail;       /* cached job/run units */
        struct probe *probes;                   /* lookups of unknown names in flight */
        size_t n_cached, cache_max;
        struct cache_stats stats;
        cache_changes_fn on_changes;
        void *ctx;
};

/* cache_max: cached job/run units kept once the kernel holds none of their
 * nodes; past it the least recently used one loses its content (its
 * directory stays, and is refetched on next use). */
int cache_new(struct tree *t, double ttl, double max_stale, size_t cache_max, struct cache **ret);
void cache_free(struct cache *c);       /* NULL-safe */

/* Creates the unit that fills dir (sets dir->unit). Tree lock held. */
int cache_unit_new(struct cache *c, enum unit_kind kind, struct node *dir, struct backend *b,
                   struct unit **ret);

/* Looks up a job (kind UNIT_JOB, role ROLE_JOB) or run (UNIT_RUN, ROLE_RUN)
 * the tree has not got, under parent: fetches it first, and only then, on
 * success, makes its directory and unit, so unknown names leave nothing in
 * memory. Concurrent probes of one name share the request. Tree lock held,
 * dropped while fetching. *ret borrowed until tree_free. */
int cache_probe(struct cache *c, struct node *parent, const char *name, enum unit_kind kind,
                enum node_role role, struct backend *b, struct node **ret);

/* Makes u's data at most max_age seconds old (see above). Called and returns
 * with the tree lock held; drops it while fetching. 0 when data is there
 * (maybe stale), else -errno. */
int cache_refresh(struct cache *c, struct unit *u, double max_age);

/* Whether cache_refresh(c, u, max_age) would fetch now (not fresh, not
 * within the back-off after an error, no fetch in flight). Tree lock held. */
bool cache_needs_fetch(const struct cache *c, const struct unit *u, double max_age);

/* Waits up to `grace` seconds for the next fetch of u to end (another thread
 * does it), then answers like cache_refresh: 0 with data (maybe stale) or
 * -errno. Tree lock held; dropped while waiting. */
int cache_wait(struct cache *c, struct unit *u, double grace);

/* Evicts least recently used units the kernel no longer holds while more
 * than cache_max are cached (a bounded scan). Tree lock held. */
void cache_trim(struct cache *c);

/* Whether u's data is older than its TTL and a refetch failed (stale). */
bool cache_unit_stale(const struct cache *c, const struct unit *u);

double cache_now(void);                 /* monotonic seconds */
