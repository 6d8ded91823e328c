/* backend: shared parts of the backends (see include/jobfs/backend.h). */
#include "jobfs/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/log.h"

int backend_alloc(const struct backend_ops *ops, struct http *http, const char *base_url,
                  struct backend **ret)
{
        struct backend *b = calloc(1, sizeof(*b));

        if (!b)
                return -ENOMEM;
        pthread_mutex_init(&b->lock, NULL);
        /* a flapping server gave 2,513 lines in 3 minutes; this caps it at 30 */
        log_limit_init(&b->outage_log, 60.0, 10);
        b->ops = ops;
        b->http = http;
        b->base_url = strdup(base_url);
        b->shown_url = backend_shown_url(base_url);
        if (!b->base_url || !b->shown_url) {
                backend_free(b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

void backend_free(struct backend *b)
{
        if (!b)
                return;
        if (b->ops && b->ops->free)
                b->ops->free(b);
        pthread_mutex_destroy(&b->lock);
        free(b->base_url);
        free(b->shown_url);
        free(b);
}

char *backend_shown_url(const char *url)
{
        const char *scheme = strstr(url, "://"), *at, *end;
        char *s;

        if (!scheme)
                return strdup(url);
        scheme += 3;
        end = scheme + strcspn(scheme, "/?#");
        at = memchr(scheme, '@', (size_t)(end - scheme));
        if (!at)
                return strdup(url);
        /* the user:secret part of scheme://user:secret@host/ is blanked */
        if (asprintf(&s, "%.*s***%s", (int)(scheme - url), url, at) < 0)
                return NULL;
        return s;
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
        char err[64];

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
                log_limited(&b->outage_log, LOG_LVL_WARN, "%s endpoint %s is unreachable (%s): %s",
                            b->ops->name, b->shown_url, what, strerror_r(-r, err, sizeof(err)));
        else if (!now_down && was_down && r != -ECANCELED)
                log_limited(&b->outage_log, LOG_LVL_WARN, "%s endpoint %s is back", b->ops->name,
                            b->shown_url);
}

void backend_health_get(struct backend *b, struct backend_health *ret)
{
        pthread_mutex_lock(&b->lock);
        *ret = b->health;
        pthread_mutex_unlock(&b->lock);
}

void backend_item_clear(struct backend_item *it)
{
        if (!it)
                return;
        snap_free(it->snap);
        free(it->name);
        memset(it, 0, sizeof(*it));
}

int backend_list_add(struct backend_list *l, char *name, uint64_t sig, struct snap *snap,
                     bool terminal)
{
        if (!name) {
                snap_free(snap);
                return -ENOMEM;
        }
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct backend_entry *v = realloc(l->v, cap * sizeof(*v));

                if (!v) {
                        free(name);
                        snap_free(snap);
                        return -ENOMEM;
                }
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = (struct backend_entry){ .name = name, .sig = sig, .snap = snap,
                                               .terminal = terminal };
        return 0;
}

void backend_list_clear(struct backend_list *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].name);
                snap_free(l->v[i].snap);
        }
        free(l->v);
        memset(l, 0, sizeof(*l));
}

/* splitmix64's finaliser: spreads every input bit over the output, so a sum
 * of mixed pair hashes does not cancel the way a sum of FNV values could */
static uint64_t mix(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
        const unsigned char *s = p;

        for (size_t i = 0; i < len; i++)
                h = (h ^ s[i]) * 1099511628211ULL;
        return h;
}

uint64_t backend_sig_add(uint64_t sig, const char *const *path, size_t depth, int kind,
                         const char *value, size_t len)
{
        uint64_t h = 1469598103934665603ULL;
        unsigned char k = (unsigned char)kind;

        for (size_t i = 0; i < depth; i++)
                h = fnv(h, path[i], strlen(path[i]) + 1);       /* the NUL separates */
        h = fnv(h, &k, 1);
        if (value)
                h = fnv(h, value, len);
        return sig + mix(h);    /* a sum: the order pairs come in does not matter */
}

uint64_t backend_sig_done(uint64_t sig)
{
        sig = mix(sig);
        return sig ? sig : 1;   /* 0 means "no signature" */
}

void backend_names_free(char **names, size_t n)
{
        if (!names)
                return;
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}
