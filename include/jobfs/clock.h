/* clock: the project's time, real or fake.
 *
 * Every policy that depends on time (TTLs, back-offs, stale limits, poll
 * periods, the poll budget) reads it through a struct clock, so unit tests
 * drive it with a fake clock and no sleeps. Monotonic seconds as a double:
 * microsecond resolution for about 285 years of uptime.
 */
#pragma once
#include <pthread.h>

struct clock {
        double (*now)(const struct clock *c);
        /* Waits on cond (mutex held) until signalled or until now() reaches
         * deadline; returns 0 or ETIMEDOUT (positive, as pthreads do). */
        int (*wait)(const struct clock *c, pthread_cond_t *cond, pthread_mutex_t *mutex,
                    double deadline);
        double fake_now;        /* the fake clock's time */
};

/* The real monotonic clock. Condition variables waited on through it must be
 * made with clock_cond_init (CLOCK_MONOTONIC). */
extern const struct clock clock_real;
/* A fake clock at t = 1000 s: tests move it with clock_advance. Its waits
 * re-check every millisecond of real time, so an advance is seen at once. */
void clock_fake_init(struct clock *c);
void clock_advance(struct clock *c, double seconds);

double clock_now(const struct clock *c);
int clock_wait(const struct clock *c, pthread_cond_t *cond, pthread_mutex_t *mutex,
               double deadline);
int clock_cond_init(pthread_cond_t *cond);
/* CLOCK_MONOTONIC seconds, for code that has no struct clock (bench, logs). */
double clock_monotonic(void);
