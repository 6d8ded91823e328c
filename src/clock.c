/* clock: see include/jobfs/clock.h. */
#include "jobfs/clock.h"

#include <errno.h>
#include <math.h>
#include <time.h>

double clock_monotonic(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double real_now(const struct clock *c)
{
        (void)c;
        return clock_monotonic();
}

static struct timespec to_timespec(double t)
{
        struct timespec ts;

        if (!isfinite(t) || t > 1e12)
                t = 1e12;       /* "for ever": 31,000 years */
        if (t < 0)
                t = 0;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return ts;
}

static int real_wait(const struct clock *c, pthread_cond_t *cond, pthread_mutex_t *mutex,
                     double deadline)
{
        struct timespec ts = to_timespec(deadline);

        (void)c;
        return pthread_cond_timedwait(cond, mutex, &ts);
}

const struct clock clock_real = { .now = real_now, .wait = real_wait };

static double fake_now(const struct clock *c)
{
        double t;

        __atomic_load(&c->fake_now, &t, __ATOMIC_ACQUIRE);
        return t;
}

static int fake_wait(const struct clock *c, pthread_cond_t *cond, pthread_mutex_t *mutex,
                     double deadline)
{
        int r;

        if (fake_now(c) >= deadline)
                return ETIMEDOUT;
        r = real_wait(c, cond, mutex, clock_monotonic() + 0.001);
        if (r == ETIMEDOUT && fake_now(c) < deadline)
                return 0;       /* a spurious wake-up, as pthreads allow */
        return r;
}

void clock_fake_init(struct clock *c)
{
        c->now = fake_now;
        c->wait = fake_wait;
        c->fake_now = 1000.0;
}

void clock_advance(struct clock *c, double seconds)
{
        double t = fake_now(c) + seconds;

        __atomic_store(&c->fake_now, &t, __ATOMIC_RELEASE);
}

double clock_now(const struct clock *c)
{
        return c->now(c);
}

int clock_wait(const struct clock *c, pthread_cond_t *cond, pthread_mutex_t *mutex,
               double deadline)
{
        return c->wait(c, cond, mutex, deadline);
}

int clock_cond_init(pthread_cond_t *cond)
{
        pthread_condattr_t ca;
        int r;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        r = -pthread_cond_init(cond, &ca);
        pthread_condattr_destroy(&ca);
        return r;
}
