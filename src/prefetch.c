/* prefetch: see include/jobfs/prefetch.h. The queue lives under the tree
 * lock, which every caller already holds. */
#include "jobfs/prefetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "jobfs/cache.h"
#include "jobfs/tree.h"

#define QUEUE_MAX 256   /* a ring; beyond it readahead is dropped, never blocks */

struct prefetch {
        struct cache *cache;
        pthread_cond_t work;            /* waits on tree->lock */
        struct unit *ring[QUEUE_MAX];   /* protected by tree->lock */
        size_t head, len;
        bool stop, started;
        pthread_t threads[PREFETCH_WORKERS];
        size_t n_threads;
};

int prefetch_new(struct cache *c, struct prefetch **ret)
{
        struct prefetch *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->cache = c;
        pthread_cond_init(&p->work, NULL);
        *ret = p;
        return 0;
}

static void *worker_main(void *arg)
{
        struct prefetch *p = arg;
        struct tree *t = p->cache->tree;

        pthread_mutex_lock(&t->lock);
        while (!p->stop) {
                struct unit *u;
                double age;

                if (p->len == 0) {
                        pthread_cond_wait(&p->work, &t->lock);
                        continue;
                }
                u = p->ring[p->head];
                p->head = (p->head + 1) % QUEUE_MAX;
                p->len--;
                u->prefetch_queued = false;
                /* taken now: the poller may queue u again while we fetch */
                age = u->prefetch_age > 0 ? u->prefetch_age : p->cache->ttl;
                u->prefetch_age = 0;
                cache_refresh(p->cache, u, age);        /* no-op when fresh by now */
        }
        pthread_mutex_unlock(&t->lock);
        return NULL;
}

int prefetch_start(struct prefetch *p)
{
        for (size_t i = 0; i < PREFETCH_WORKERS; i++) {
                int r = -pthread_create(&p->threads[i], NULL, worker_main, p);

                if (r < 0) {
                        prefetch_stop(p);
                        return r;
                }
                p->n_threads++;
                p->started = true;
        }
        return 0;
}

void prefetch_stop(struct prefetch *p)
{
        struct tree *t;

        if (!p || !p->started)
                return;
        t = p->cache->tree;
        pthread_mutex_lock(&t->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&t->lock);
        for (size_t i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        p->n_threads = 0;
        p->started = false;
}

void prefetch_free(struct prefetch *p)
{
        if (!p)
                return;
        prefetch_stop(p);
        pthread_cond_destroy(&p->work);
        free(p);
}

static int enqueue(struct prefetch *p, struct unit *u)
{
        if (u->prefetch_queued)
                return 0;
        if (p->len == QUEUE_MAX)
                return -EAGAIN;
        p->ring[(p->head + p->len) % QUEUE_MAX] = u;
        p->len++;
        u->prefetch_queued = true;
        pthread_cond_signal(&p->work);
        return 0;
}

int prefetch_unit(struct prefetch *p, struct unit *u)
{
        if (!p->started || p->stop)
                return -ESHUTDOWN;
        return enqueue(p, u);
}

int prefetch_poll(struct prefetch *p, struct unit *u, double max_age)
{
        if (!p->started || p->stop)
                return -ESHUTDOWN;
        if (u->prefetch_queued)
                return -EBUSY;  /* queued for a sweep: its age would be the TTL */
        u->prefetch_age = max_age;
        return enqueue(p, u);
}

void prefetch_after(struct prefetch *p, struct node *dir)
{
        struct node *parent = dir->parent;
        size_t queued = 0;

        if (!p->started || p->stop || !parent)
                return;
        for (size_t i = dir->pos + 1; i < parent->n_kids && queued < PREFETCH_AHEAD; i++) {
                struct unit *u = parent->kids[i]->unit;

                /* not fetched yet, and not failing (a job the list keeps but the
                 * server no longer has must not be asked again and again) */
                if (!u || u->dir != parent->kids[i] || u->ever_ok || u->fetching || u->error)
                        continue;
                queued++;
                if (enqueue(p, u) < 0)
                        break;
        }
}
