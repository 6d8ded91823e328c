/* Unit tests of lane.c: priorities (readers, polls, readahead), moving an
 * item up, cancelling, the background and readahead caps, and workers
 * started on demand up to the cap, 32 of them running at once. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "jobfs/lane.h"

struct rec {
        struct lane_item item;
        int id;
};

struct ctx {
        pthread_mutex_t lock;
        struct lane *lane;
        int order[64];
        int n;
        /* threaded runs: how many run at once, held until released */
        int running, max_running;
        bool release;
        pthread_cond_t cond;
        int nested;                     /* sync runs: try a nested run from item 'nested' */
        bool nested_ran;
};

static void run(void *arg, struct lane_item *it, enum lane_prio prio)
{
        struct ctx *c = arg;
        struct rec *r = (struct rec *)it;

        (void)prio;
        c->order[c->n++] = r->id;
        if (r->id == c->nested)
                c->nested_ran = lane_run_one(c->lane);  /* a second background one? */
}

static void test_priorities(void)
{
        struct lane_config cfg = { .max_workers = 0, .max_background = 1, .max_readahead = 1 };
        struct ctx c = { .nested = -1 };
        struct rec r[6];

        pthread_mutex_init(&c.lock, NULL);
        if (!CHECK_INT_EQ(lane_new(&cfg, &c.lock, run, &c, &c.lane), 0))
                return;
        for (int i = 0; i < 6; i++) {
                lane_item_init(&r[i].item);
                r[i].id = i;
        }
        pthread_mutex_lock(&c.lock);
        lane_submit(c.lane, &r[0].item, LANE_READAHEAD);
        lane_submit(c.lane, &r[1].item, LANE_POLL);
        lane_submit(c.lane, &r[2].item, LANE_READER);
        lane_submit(c.lane, &r[3].item, LANE_READAHEAD);
        lane_submit(c.lane, &r[3].item, LANE_READER);   /* moved up */
        lane_submit(c.lane, &r[2].item, LANE_READAHEAD); /* never moved down */
        lane_submit(c.lane, &r[4].item, LANE_POLL);
        CHECK(lane_cancel(c.lane, &r[4].item));
        CHECK(!lane_cancel(c.lane, &r[4].item));
        CHECK(!lane_item_queued(&r[4].item) && lane_item_queued(&r[0].item));
        while (lane_run_one(c.lane))
                ;
        pthread_mutex_unlock(&c.lock);
        CHECK_INT_EQ(c.n, 4);
        CHECK_INT_EQ(c.order[0], 2);    /* readers, in order */
        CHECK_INT_EQ(c.order[1], 3);
        CHECK_INT_EQ(c.order[2], 1);    /* then polls */
        CHECK_INT_EQ(c.order[3], 0);    /* then readahead */
        lane_free(c.lane);
        pthread_mutex_destroy(&c.lock);
}

/* While a poll runs (max_background 1), another poll is not taken, a reader is. */
static void test_background_cap(void)
{
        struct lane_config cfg = { .max_workers = 0, .max_background = 1, .max_readahead = 1 };
        struct ctx c = { .nested = 1 };
        struct rec r[3];

        pthread_mutex_init(&c.lock, NULL);
        lane_new(&cfg, &c.lock, run, &c, &c.lane);
        for (int i = 0; i < 3; i++) {
                lane_item_init(&r[i].item);
                r[i].id = i;
        }
        pthread_mutex_lock(&c.lock);
        lane_submit(c.lane, &r[1].item, LANE_POLL);
        lane_submit(c.lane, &r[2].item, LANE_POLL);
        lane_run_one(c.lane);
        CHECK(!c.nested_ran);                   /* the second poll waited */
        CHECK_INT_EQ(c.n, 1);
        /* control twin: a reader is taken while the poll runs */
        c.nested = 2;
        lane_submit(c.lane, &r[0].item, LANE_READER);
        c.nested_ran = false;
        lane_run_one(c.lane);                   /* runs the reader, then... */
        lane_run_one(c.lane);                   /* the second poll, nesting: nothing left */
        pthread_mutex_unlock(&c.lock);
        CHECK_INT_EQ(c.order[1], 0);
        CHECK_INT_EQ(c.order[2], 2);
        lane_free(c.lane);
        pthread_mutex_destroy(&c.lock);
}

static void held_run(void *arg, struct lane_item *it, enum lane_prio prio)
{
        struct ctx *c = arg;

        (void)it;
        (void)prio;
        c->running++;
        if (c->running > c->max_running)
                c->max_running = c->running;
        pthread_cond_broadcast(&c->cond);
        while (!c->release)
                pthread_cond_wait(&c->cond, &c->lock);
        c->running--;
        c->n++;
        pthread_cond_broadcast(&c->cond);
}

/* Waits (5 s at most) until running reaches n. Lock held. */
static bool wait_running(struct ctx *c, int n)
{
        struct timespec end;

        clock_gettime(CLOCK_REALTIME, &end);
        end.tv_sec += 5;
        while (c->running < n)
                if (pthread_cond_timedwait(&c->cond, &c->lock, &end) != 0)
                        return false;
        return true;
}

static void threaded(unsigned n_items, enum lane_prio prio, int want_parallel)
{
        struct lane_config cfg = { .max_workers = 32, .max_background = 8, .max_readahead = 6 };
        struct ctx c = { .nested = -1 };
        struct rec *r = calloc(n_items, sizeof(*r));
        struct timespec end;

        pthread_mutex_init(&c.lock, NULL);
        pthread_cond_init(&c.cond, NULL);
        lane_new(&cfg, &c.lock, held_run, &c, &c.lane);
        pthread_mutex_lock(&c.lock);
        for (unsigned i = 0; i < n_items; i++) {
                lane_item_init(&r[i].item);
                lane_submit(c.lane, &r[i].item, prio);
        }
        CHECK(wait_running(&c, want_parallel));
        c.release = true;
        pthread_cond_broadcast(&c.cond);
        clock_gettime(CLOCK_REALTIME, &end);
        end.tv_sec += 5;
        while (c.n < (int)n_items && pthread_cond_timedwait(&c.cond, &c.lock, &end) == 0)
                ;
        pthread_mutex_unlock(&c.lock);
        CHECK_INT_EQ(c.n, n_items);
        CHECK_INT_EQ(c.max_running, want_parallel);
        lane_free(c.lane);
        pthread_cond_destroy(&c.cond);
        pthread_mutex_destroy(&c.lock);
        free(r);
}

int main(void)
{
        test_priorities();
        test_background_cap();
        threaded(32, LANE_READER, 32);          /* 32 first reads in parallel */
        threaded(40, LANE_READAHEAD, 6);        /* a sweep takes 6 workers at most */
        threaded(40, LANE_POLL, 8);             /* polls 8 */
        return CHECK_DONE();
}
