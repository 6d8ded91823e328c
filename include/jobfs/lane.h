/* lane: one backend's fetch executor, so a stuck server stalls only itself.
 *
 * Each backend gets a lane: its own queue, its own worker threads, and (in
 * jobfs.c) its own HTTP connection pool. Items are queued at one of three
 * priorities; readers go first, then polls, then readahead, and queueing an
 * item again at a higher priority moves it up. Workers are started on demand
 * up to max_workers (the connection budget of one server); polls and
 * readahead together never take more than max_background of them, and
 * readahead never more than max_readahead, so a reader always finds a worker
 * while a sweep or a poll round is in flight. With max_workers 0 nothing runs
 * by itself: lane_run_one runs the next item in the caller (unit tests).
 *
 * Everything runs under the caller's mutex (the tree lock): the queue is
 * protected by it, run is called with it held and may drop it while it waits
 * on the network.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lane_prio { LANE_READER, LANE_POLL, LANE_READAHEAD, LANE_PRIOS };

struct lane_item {                      /* embedded in what is fetched */
        struct lane_item *prev, *next;  /* protected by the lane's mutex */
        int prio;                       /* enum lane_prio while queued, -1 otherwise */
};

/* Runs one item taken off the queue, mutex held (it may drop and retake it). */
typedef void (*lane_run_fn)(void *ctx, struct lane_item *it, enum lane_prio prio);

struct lane_config {
        unsigned max_workers;           /* 0: synchronous (lane_run_one) */
        unsigned max_background;        /* polls + readahead running at once */
        unsigned max_readahead;
};

struct lane_stats {
        size_t queued[LANE_PRIOS];
        unsigned running[LANE_PRIOS];
        unsigned workers;
        uint64_t runs;
};

struct lane;

int lane_new(const struct lane_config *cfg, pthread_mutex_t *mutex, lane_run_fn run, void *ctx,
             struct lane **ret);
/* Stops and joins the workers (a run in flight ends by its request's
 * deadline); queued items stay queued. Idempotent; mutex NOT held. */
void lane_stop(struct lane *l);
void lane_free(struct lane *l);         /* NULL-safe; stops first */

void lane_item_init(struct lane_item *it);
/* Queues it at prio, or moves it up to prio; mutex held. */
void lane_submit(struct lane *l, struct lane_item *it, enum lane_prio prio);
/* Takes it off the queue; false if it was not queued. Mutex held. */
bool lane_cancel(struct lane *l, struct lane_item *it);
bool lane_item_queued(const struct lane_item *it);
/* Runs the next eligible item in the caller; false if none. Mutex held. */
bool lane_run_one(struct lane *l);
void lane_stats(const struct lane *l, struct lane_stats *ret);  /* mutex held */
