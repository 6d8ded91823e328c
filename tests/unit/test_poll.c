/* Unit tests of the poller (poll.c): the period by interest, when a unit is
 * due (listings, change feeds, busy and failing units), and the budget in
 * a run of rounds on a fake clock: 50 held live jobs nobody reads cost at
 * most --poll-budget requests a second; the control twin with a budget
 * that fits them all polls every one each interval. */
#include <math.h>

#include "cachefake.h"
#include "jobfs/poll.h"

static void test_period(void)
{
        CHECK(poll_period(1, 0) == 1);
        CHECK(poll_period(1, 3.9) == 1);        /* read within 4 intervals: full rate */
        CHECK(poll_period(1, 8) == 2);          /* then a quarter of the idle time */
        CHECK(poll_period(1, 100) == 25);
        CHECK(poll_period(1, 1e6) == POLL_IDLE_MAX);
        CHECK(poll_period(0.2, 2) == 0.5);
        CHECK(poll_period(120, 1e6) == 120);    /* never below the interval */
}

static void test_due(void)
{
        struct poll_config cfg = { .interval = 1, .budget = 10 };
        struct poll_fact f = { .interest_at = 100, .fetched_at = 100 };
        double since;

        CHECK(!poll_due(&cfg, &f, 100.5, &since));
        CHECK(poll_due(&cfg, &f, 101, &since) && since == 101);
        f.busy = true;
        CHECK(!poll_due(&cfg, &f, 200, &since));
        f.busy = false;
        f.failing = true;
        CHECK(!poll_due(&cfg, &f, 200, &since));
        f.failing = false;
        /* idle for 100 s: every 25 s */
        f.fetched_at = 180;
        CHECK(!poll_due(&cfg, &f, 200, &since));
        CHECK(poll_due(&cfg, &f, 207, &since));   /* idle 107 s: 26.75 s */
        /* covered by a change feed: due only when it moved */
        f.covered = true;
        CHECK(!poll_due(&cfg, &f, 1000, &since));
        f.changed = true;
        CHECK(poll_due(&cfg, &f, 180.1, &since));
        /* a listing: at most 10% of the time it takes to send */
        memset(&f, 0, sizeof(f));
        f.is_list = true;
        f.interest_at = f.fetched_at = 100;
        f.fetch_secs = 0.5;
        CHECK(!poll_due(&cfg, &f, 104.9, &since));
        CHECK(poll_due(&cfg, &f, 105, &since));
}

/* 50 held live jobs, read once and then left alone, for 20 s of rounds. */
static int polled_in(double budget, double seconds)
{
        enum { JOBS = 50 };
        struct poll_config pc = { .interval = 1, .budget = budget };
        struct poller *p = NULL;
        struct env e;
        int before, after;

        if (!env_new(&e, 1.0, 0, 0))
                return -1;
        for (int i = 0; i < JOBS; i++) {
                char name[16];
                struct node *n;

                snprintf(name, sizeof(name), "job%d", i);
                read_state(&e, name, NULL, 0);
                lookup(&e, name, &n);
                lock(&e);
                cache_kernel_ref(e.c, n);       /* held, as after a sweep */
                unlock(&e);
        }
        pc.clock = &e.clock;
        poller_new(&pc, e.c, tree_mutex(e.t), &p);
        before = fetches(&e);
        for (double t = 0; t < seconds; t += 0.25) {
                clock_advance(&e.clock, 0.25);
                lock(&e);
                poller_tick(p);
                unlock(&e);
                /* let the lane run what the round queued */
                for (double end = real_now() + 5; real_now() < end; sched_yield()) {
                        struct cache_source_stats ss;

                        lock(&e);
                        cache_source_stats(e.c, 0, &ss);
                        unlock(&e);
                        if (!ss.lane.queued[LANE_POLL] && !ss.lane.running[LANE_POLL])
                                break;
                }
        }
        after = fetches(&e);
        poller_free(p);
        env_free(&e);
        return after - before;
}

static void test_budget(void)
{
        int tight = polled_in(5, 20), loose = polled_in(1000, 20);

        /* 5 requests a second for 20 s (plus one second's burst) */
        CHECK(tight > 0 && tight <= 5 * 20 + 5);
        /* the twin: unbounded, every job is polled as its period comes
         * (full rate for 4 s, then slower as they idle) */
        CHECK(loose > tight + 50);
}

/* The poller wakes when the next unit comes due, not on the next 250 ms
 * tick: a job fetched at t is polled at t + 1 s (interval 1 s), so a change
 * waits at most one interval. Twin: nothing held, nothing comes due, and
 * the next round is a plain tick (250 ms) away. */
static void test_wakes_when_due(void)
{
        for (int held = 1; held >= 0; held--) {
                struct poll_config pc = { .interval = 1, .budget = 1000 };
                struct poller *p = NULL;
                struct node *n;
                struct env e;
                double t0, next;

                if (!env_new(&e, 1.0, 0, 0))
                        return;
                clock_advance(&e.clock, 0.1);
                t0 = clock_now(&e.clock);
                read_state(&e, "job1", NULL, 0);        /* fetched at t0 */
                lookup(&e, "job1", &n);
                lock(&e);
                if (held)
                        cache_kernel_ref(e.c, n);       /* held: pollable */
                unlock(&e);
                pc.clock = &e.clock;
                if (!CHECK(poller_new(&pc, e.c, tree_mutex(e.t), &p) == 0))
                        return;
                clock_advance(&e.clock, 0.9);           /* t0 + 0.9: not due yet */
                lock(&e);
                next = poller_tick(p);
                unlock(&e);
                if (held)
                        CHECK(fabs(next - (t0 + 1.0)) < 1e-9);
                else
                        CHECK(fabs(next - (t0 + 0.9 + 0.25)) < 1e-9);
                poller_free(p);
                env_free(&e);
        }
}

int main(void)
{
        log_max_level = LOG_LVL_ERROR;
        test_period();
        test_due();
        test_budget();
        test_wakes_when_due();
        return CHECK_DONE();
}
