/* backend: shared parts of the backends (see include/jobfs/backend.h). */
#include "jobfs/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/log.h"

void backend_free(struct backend *b)
{
        if (!b)
                return;
        if (b->ops && b->ops->free)
                b->ops->free(b);
        pthread_mutex_destroy(&b->lock);
        free(b->base_url);
        free(b->client_id);
        free(b);
}

/* Whether r means the server or the way to it is in trouble, as opposed to
 * an answer about one unit (not found) or our own shutdown. */
static bool is_outage(int r)
{
        return r < 0 && r != -ENOENT && r != -ECANCELED && r != -ENOMEM;
}

void backend_note(struct backend *b, int r, const char *what)
{
        bool was_down, now_down = is_outage(r);
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        pthread_mutex_lock(&b->lock);
        was_down = b->health.down;
        b->health.requests++;
        if (now_down) {
                b->health.errors++;
                b->health.last_error = now;
                b->health.last_errno = r;
        } else if (r != -ECANCELED) {
                b->health.last_ok = now;
        }
        if (r != -ECANCELED)
                b->health.down = now_down;
        pthread_mutex_unlock(&b->lock);
        if (now_down && !was_down)
                log_warn("%s endpoint %s is unreachable (%s): %s", b->ops->name, b->base_url,
                         what, strerror(-r));
        else if (!now_down && was_down && r != -ECANCELED)
                log_warn("%s endpoint %s is back", b->ops->name, b->base_url);
}

void backend_health_get(struct backend *b, struct backend_health *ret)
{
        pthread_mutex_lock(&b->lock);
        *ret = b->health;
        pthread_mutex_unlock(&b->lock);
}

void backend_names_free(char **names, size_t n)
{
        if (!names)
                return;
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}
