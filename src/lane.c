/* lane: see include/jobfs/lane.h. */
#include "jobfs/lane.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/log.h"

struct queue {
        struct lane_item *head, *tail;
        size_t n;
};

struct lane {
        struct lane_config cfg;
        pthread_mutex_t *mutex;         /* borrowed: protects everything below */
        pthread_cond_t work;            /* an item was queued, or stop */
        lane_run_fn run;
        void *ctx;
        struct queue q[LANE_PRIOS];
        unsigned running[LANE_PRIOS];
        pthread_t *threads;             /* max_workers of them */
        unsigned n_threads, idle;
        unsigned wakes;                 /* signals sent that no idle worker took yet */
        bool stop;
        uint64_t runs;
};

int lane_new(const struct lane_config *cfg, pthread_mutex_t *mutex, lane_run_fn run, void *ctx,
             struct lane **ret)
{
        struct lane *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->cfg = *cfg;
        l->mutex = mutex;
        l->run = run;
        l->ctx = ctx;
        if (cfg->max_workers && !(l->threads = calloc(cfg->max_workers, sizeof(*l->threads)))) {
                free(l);
                return -ENOMEM;
        }
        pthread_cond_init(&l->work, NULL);
        *ret = l;
        return 0;
}

void lane_item_init(struct lane_item *it)
{
        it->prev = it->next = NULL;
        it->prio = -1;
}

bool lane_item_queued(const struct lane_item *it)
{
        return it->prio >= 0;
}

static void q_remove(struct queue *q, struct lane_item *it)
{
        if (it->prev)
                it->prev->next = it->next;
        else
                q->head = it->next;
        if (it->next)
                it->next->prev = it->prev;
        else
                q->tail = it->prev;
        it->prev = it->next = NULL;
        q->n--;
}

static void q_append(struct queue *q, struct lane_item *it)
{
        it->next = NULL;
        it->prev = q->tail;
        if (q->tail)
                q->tail->next = it;
        else
                q->head = it;
        q->tail = it;
        q->n++;
}

static unsigned background(const struct lane *l)
{
        return l->running[LANE_POLL] + l->running[LANE_READAHEAD];
}

/* The priority of the next item a worker may take now, or -1. */
static int eligible(const struct lane *l)
{
        if (l->q[LANE_READER].n)
                return LANE_READER;
        if (l->q[LANE_POLL].n && background(l) < l->cfg.max_background)
                return LANE_POLL;
        if (l->q[LANE_READAHEAD].n && background(l) < l->cfg.max_background &&
            l->running[LANE_READAHEAD] < l->cfg.max_readahead)
                return LANE_READAHEAD;
        return -1;
}

static void wake_worker(struct lane *l);

bool lane_run_one(struct lane *l)
{
        int p = eligible(l);
        struct lane_item *it;

        if (p < 0)
                return false;
        it = l->q[p].head;
        q_remove(&l->q[p], it);
        it->prio = -1;
        l->running[p]++;
        l->runs++;
        l->run(l->ctx, it, (enum lane_prio)p);
        l->running[p]--;
        /* a background slot came free: another worker may take what waits */
        if (p != LANE_READER && l->cfg.max_workers && eligible(l) >= 0)
                wake_worker(l);
        return true;
}

static void *worker_main(void *arg)
{
        struct lane *l = arg;

        pthread_mutex_lock(l->mutex);
        while (!l->stop) {
                if (lane_run_one(l))
                        continue;
                l->idle++;
                pthread_cond_wait(&l->work, l->mutex);
                l->idle--;
                if (l->wakes > 0)
                        l->wakes--;
        }
        pthread_mutex_unlock(l->mutex);
        return NULL;
}

/* A worker for a newly runnable item: a waiting one, or a new thread. An
 * idle worker already signalled counts as taken until it wakes, or two items
 * queued at once would both signal the same worker and the second wait for
 * the first's fetch (seconds, behind a slow server). */
static void wake_worker(struct lane *l)
{
        int r;

        if (l->idle > l->wakes) {
                l->wakes++;
                pthread_cond_signal(&l->work);
                return;
        }
        if (l->stop || l->n_threads >= l->cfg.max_workers)
                return;         /* busy workers take it when they are done */
        r = pthread_create(&l->threads[l->n_threads], NULL, worker_main, l);
        if (r != 0) {
                log_debug("lane: cannot start a worker: error %d", r);
                return;
        }
        l->n_threads++;
}

void lane_submit(struct lane *l, struct lane_item *it, enum lane_prio prio)
{
        if (it->prio >= 0 && it->prio <= (int)prio)
                return;         /* already queued as high or higher */
        if (it->prio >= 0)
                q_remove(&l->q[it->prio], it);
        it->prio = (int)prio;
        q_append(&l->q[prio], it);
        if (l->cfg.max_workers && eligible(l) >= 0)
                wake_worker(l);
}

bool lane_cancel(struct lane *l, struct lane_item *it)
{
        if (it->prio < 0)
                return false;
        q_remove(&l->q[it->prio], it);
        it->prio = -1;
        return true;
}

void lane_stats(const struct lane *l, struct lane_stats *ret)
{
        for (int p = 0; p < LANE_PRIOS; p++) {
                ret->queued[p] = l->q[p].n;
                ret->running[p] = l->running[p];
        }
        ret->workers = l->n_threads;
        ret->runs = l->runs;
}

void lane_stop(struct lane *l)
{
        unsigned n;

        if (!l)
                return;
        pthread_mutex_lock(l->mutex);
        l->stop = true;
        n = l->n_threads;
        pthread_cond_broadcast(&l->work);
        pthread_mutex_unlock(l->mutex);
        /* no thread is added once stop is set, so n is all of them */
        for (unsigned i = 0; i < n; i++)
                pthread_join(l->threads[i], NULL);
        pthread_mutex_lock(l->mutex);
        l->n_threads = 0;
        pthread_mutex_unlock(l->mutex);
}

void lane_free(struct lane *l)
{
        if (!l)
                return;
        lane_stop(l);
        pthread_cond_destroy(&l->work);
        free(l->threads);
        free(l);
}
