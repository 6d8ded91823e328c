/* cache: the one owner of freshness, fetching and memory.
 *
 * A unit is what one request fills: a job or run directory (an item), or a
 * backend's listing. The cache alone decides whether data is fresh, whether
 * a reader waits and how long, when to refetch, when stale data is served
 * (--max-stale and the stale xattr always honoured), and what is evicted
 * when --cache-bytes or --cache-max is passed. Handlers call one function
 * per question (cache_lookup, cache_get, cache_content) and never see a
 * unit. Fetches run on the backend's lane (lane.h), one in flight per unit,
 * shared by every waiter; a result that raced with an invalidation (the
 * list said the job is gone) is dropped by a generation check.
 *
 * One reference model per unit: it lives while the kernel holds any of its
 * nodes, a fetch is queued or in flight, or someone waits for it; at none it
 * is on an LRU list and may be evicted (its nodes freed), and even a held
 * unit's contents may be dropped past the byte budget (refetched on the next
 * read). Policy of polling (which units, when) is the poller's (poll.h); the
 * cache gives it facts and runs what it asks for. Tree lock held in every
 * call but cache_new/free/stop.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobfs/blob.h"
#include "jobfs/lane.h"
#include "jobfs/tree.h"

struct backend;
struct cache;
struct clock;
struct unit;

struct cache_config {
        const struct clock *clock;
        double ttl;                     /* s a live unit's data is fresh */
        double max_stale;               /* s data may be served past a failing refetch; 0 = for ever */
        double poll_interval;           /* s; a poll wants data at most half as old */
        size_t cache_bytes;             /* ceiling of cached contents and their nodes */
        size_t cache_max;               /* ceiling of cached items */
        size_t max_file;                /* largest lazy file fetched (--max-reply) */
        struct lane_config lane;        /* for each backend's lane */
};

/* Who waits: a FUSE request that may be interrupted (Ctrl-C), or NULL. */
struct cache_caller {
        bool (*interrupted)(void *ctx);
        void *ctx;
};

enum cache_need {
        NEED_FRESH,     /* stat, read, lookup: data within the TTL; with older data a reader
                         * waits 1 s at most for the refetch, then gets that data */
        NEED_LISTING,   /* readdir of a listing: what is there now, refreshed behind */
};

typedef void (*cache_changes_fn)(void *ctx, struct changes *c);

int cache_new(struct tree *t, const struct cache_config *cfg, struct cache **ret);
/* Adds a backend: its root directory under the mount root and its lane.
 * *ret_root borrowed until tree_free. */
int cache_add_backend(struct cache *c, struct backend *b, struct node **ret_root);
/* Changes found by any fetch go to fn (tree lock held), for the replays. */
void cache_set_listener(struct cache *c, cache_changes_fn fn, void *ctx);
/* A change feed's listing said jobs moved: fn(ctx) (tree lock held), for the
 * poller to fetch them now rather than on its next round (up to 250 ms on).
 * NULL fn: none. Tree lock held when set. */
void cache_set_feed_listener(struct cache *c, void (*fn)(void *ctx), void *ctx);
/* Unmounting: waiters return -ECANCELED, lanes stop. Tree lock NOT held. */
void cache_stop(struct cache *c);
void cache_free(struct cache *c);       /* NULL-safe; stops first */

/* The visible child of parent called name, fetching what decides it. */
int cache_lookup(struct cache *c, struct node *parent, const char *name,
                 const struct cache_caller *who, struct node **ret);
/* Brings n's data (its unit's, and a lazy file's bytes) up to need. 0 with
 * data (maybe stale within --max-stale), or -errno. */
int cache_get(struct cache *c, struct node *n, enum cache_need need, const struct cache_caller *who);
/* n's content for a read, refetched if it was evicted. *ret: caller unrefs. */
int cache_content(struct cache *c, struct node *n, const struct cache_caller *who,
                  struct blob **ret);
/* A job directory was opened: fetch the next ones of a sweep ahead. */
void cache_readahead(struct cache *c, struct node *dir);
/* The kernel took / dropped references (lookup counts). n may be freed by forget. */
void cache_kernel_ref(struct cache *c, struct node *n);
void cache_kernel_forget(struct cache *c, struct node *n, uint64_t count);

/* An item's wait file (ROLE_WAIT): 1 with *ret (its final state and a
 * newline; caller unrefs) once the job or run is final, 0 while it is live,
 * -ENOENT once it is gone. */
int cache_wait_state(struct cache *c, struct node *wait, struct blob **ret);
/* A read or poll of wait parks (+1) or leaves (-1): while any waits, its job
 * is polled at the full rate, within the budget. */
void cache_wait_park(struct cache *c, struct node *wait, int delta);

/* How long the kernel may keep n's entry and attributes: the TTL, an hour
 * once its job is final, 0 for a lazy file not fetched yet. */
double cache_timeout(const struct cache *c, const struct node *n);
/* How long the kernel may keep "no such name" under parent (0: not at all). */
double cache_negative_timeout(const struct cache *c, const struct node *parent);
/* user.jobfs.fetched / user.jobfs.stale: length, -ENODATA or -ERANGE. */
int cache_xattr(const struct cache *c, const struct node *n, const char *name, char *buf,
                size_t size);

/* For the poller (poll.h). A fact is valid during the callback only. */
struct poll_fact {
        struct unit *unit;
        unsigned source;                /* backend index, for its budget */
        bool is_list;
        bool covered;                   /* a change feed says when it moves */
        bool changed;                   /* the feed says it moved since fetched */
        bool busy;                      /* a fetch is queued or in flight */
        bool failing;                   /* its last fetch failed, within the back-off */
        double interest_at;             /* last read, or last change seen */
        double fetched_at, fetch_secs;
};
void cache_poll_each(struct cache *c, void (*fn)(void *ctx, const struct poll_fact *f), void *ctx);
/* Queues a poll of u (from a fact); no-op if busy. */
void cache_poll(struct cache *c, struct unit *u);
/* Frees what outlived its use: failed lookups past the back-off. */
void cache_sweep(struct cache *c);

struct cache_stats {
        size_t units, cached, bytes, cache_bytes, failed_lookups;
        uint64_t hits, fetches, waits, stale_served, evictions, dropped_results;
};
struct cache_source_stats {
        const struct backend *backend;
        struct lane_stats lane;
        uint64_t polls;
        bool feed;                      /* its last list was a change feed */
};
void cache_stats(const struct cache *c, struct cache_stats *ret);
/* The i-th backend's figures; false past the last. */
bool cache_source_stats(const struct cache *c, unsigned i, struct cache_source_stats *ret);
const struct clock *cache_clock(const struct cache *c);
