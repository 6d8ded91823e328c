/* cache_internal: what cache.c and cache_list.c share; private to them.
 * Every field: protected by the tree lock. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jobfs/backend.h"
#include "jobfs/cache.h"
#include "jobfs/lane.h"
#include "jobfs/tree.h"

struct unit;

struct link {
        struct unit *prev, *next;
};

struct ulist {
        struct unit *head, *tail;       /* head: most recently used */
        size_t n;
};

enum lru_class { LRU_NONE = -1, LRU_FREE = 0 /* kernel holds none of it */, LRU_HELD = 1 };

/* What a lane runs: a unit's fetch, or a lazy file's bytes. */
enum job_kind { JOB_UNIT, JOB_FILE };
struct fetch_job {
        struct lane_item item;
        enum job_kind kind;
};

/* A lazy file being fetched (single flight per node). */
struct file_fetch {
        struct fetch_job job;           /* first: a fetch_job * is a file_fetch * */
        struct unit *unit;              /* the file's unit: busy while this lives */
        struct node *node;
        bool in_flight, done;
        int result;
        unsigned waiters;
        struct file_fetch *next;
};

struct source {
        unsigned index;
        struct backend *b;              /* borrowed */
        struct lane *lane;              /* owned */
        struct node *root;              /* ROLE_AREA */
        struct unit *list;              /* NULL when the backend cannot list */
        uint64_t list_seq;              /* bumped by each listing applied */
        bool feed;                      /* the last listing was a change feed */
        double feed_interest;           /* latest interest in a unit the feed covers */
        size_t readahead_cursor;        /* next position of root to consider */
        uint64_t polls;
};

struct unit {
        struct fetch_job job;           /* first: a fetch_job * is a unit * */
        struct source *src;
        bool is_list;
        struct node *dir;               /* the directory it fills; NULL while a probe */
        struct node *probe_parent;      /* a probe: where the name would go */
        char *probe_name;               /* owned, a probe's name */
        struct unit *probe_next;        /* c->probes */
        /* data */
        bool has_data, ever_filled, terminal, removed;
        bool pruned;                    /* eviction freed some of its nodes: the
                                         * refill brings them back quietly */
        int error;                      /* last fetch's failure, 0 after a success */
        double fetched_at, error_at, fetch_secs, pending_since;
        struct timespec fetched_wall;   /* CLOCK_REALTIME of the data (xattr) */
        uint64_t data_sig;              /* the last fetch's change signature */
        uint64_t feed_sig, listed_seq;  /* as the last listing that named it had it */
        bool feed_changed;              /* the feed says it moved since fetched */
        uint8_t feed_misses;            /* fetches that did not match the feed's sig */
        /* fetching */
        bool in_flight;
        double want_age;                /* of the queued fetch */
        uint64_t gen;                   /* bumped by invalidations; stale results dropped */
        unsigned long fetches_done;
        unsigned waiters;               /* callers blocked on it */
        unsigned files;                 /* lazy file fetches of its nodes in flight */
        unsigned parked;                /* reads and polls of its wait file waiting */
        /* lifetime and memory */
        unsigned kernel;                /* its nodes the kernel holds */
        size_t bytes;                   /* what its nodes hold (tree_unit_bytes) */
        double touched_at, interest_at;
        int lru;                        /* enum lru_class it is on */
        struct link lru_link, live_link, all_link, zombie_link;
        bool live;                      /* on c->live: held, live data, pollable */
        bool zombie;                    /* on c->zombies: done with, but a queued
                                         * change still names one of its nodes */
};

struct cache {
        struct tree *tree;              /* borrowed */
        struct cache_config cfg;
        double backoff;
        pthread_cond_t done;            /* a fetch ended; on the tree lock, monotonic */
        bool stopping;
        struct source *sources[8];      /* 8: three APIs today */
        unsigned n_sources;
        struct ulist all;               /* every unit */
        struct ulist lru[2];            /* enum lru_class */
        struct ulist live;              /* held live items, for the poller */
        struct ulist zombies;           /* units to free once their nodes are free */
        struct unit *probes;            /* units of names not in the tree yet */
        size_t n_probes;
        struct file_fetch *files;       /* lazy file fetches */
        size_t bytes, n_cached;
        struct cache_stats stats;
        cache_changes_fn on_changes;
        void *on_changes_ctx;
        void (*on_moved)(void *ctx);    /* cache_set_feed_listener */
        void *on_moved_ctx;
};

/* --- small facts of a unit, shared by cache.c and cache_view.c ---------- */

/* 3: fetches in a row whose signature differs from what the feed listed
 * before a unit stops trusting the feed and is polled on the budget */
#define FEED_MISSES_MAX 3

/* 1 s: a healthy server answers well within it; past it, a reader of data
 * it has seen gets that data instead of waiting out --timeout. */
#define STALE_GRACE 1.0

/* A fetch is queued or in flight. */
static inline bool fetch_pending(const struct unit *u)
{
        return u->in_flight || lane_item_queued(&u->job.item);
}

static inline bool in_backoff(const struct cache *c, const struct unit *u, double now)
{
        return u->error && now - u->error_at < c->backoff;
}

/* Where the backend's items live: its root (depth 1) or a listed group. */
static inline bool is_item_parent(const struct source *src, const struct node *dir)
{
        if (src->b->ops->depth <= 1)
                return dir == src->root;
        return node_role(dir) == ROLE_GROUP && node_parent(dir) == src->root;
}

/* cache.c */
double cache_now_of(const struct cache *c);
struct unit *unit_new(struct cache *c, struct source *src, struct node *dir);
/* The unit of an item directory, made if the listing made the node only. */
struct unit *item_unit(struct cache *c, struct node *dir);
struct source *source_of(const struct cache *c, const struct node *n);
void unit_submit(struct cache *c, struct unit *u, enum lane_prio prio, double want_age);
/* Recomputes a unit's list memberships and frees it if nothing needs it. */
void unit_settle(struct cache *c, struct unit *u);
/* Applies a fetched item (as a fetch or a listing carrying it brought it). */
int apply_item(struct cache *c, struct unit *u, struct snap *snap, bool terminal, uint64_t sig,
               struct changes *out);
void announce(struct cache *c, struct changes *ch);
/* The job is gone (its fetch said so, or the listing dropped it). */
int unit_removed(struct cache *c, struct unit *u, struct changes *out);
struct unit *probe_take(struct cache *c, struct node *parent, const char *name);

/* cache_list.c */
int apply_list(struct cache *c, struct unit *u, struct backend_list *l);
