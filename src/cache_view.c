/* cache_view: what the cache tells the rest of jobfs (see
 * include/jobfs/cache.h): the kernel's timeouts, the xattrs that say how old
 * a file is, the facts the poller decides on, and the counts of .jobfs/status
 * and .jobfs/metrics. Reads of unit state, and the poller's one action
 * (cache_poll); cache.c owns the units. Every function runs with the tree
 * lock held.
 */
#include "jobfs/cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jobfs/lane.h"
#include "cache_internal.h"

/* 1 h: final jobs never change, so the kernel may keep them long */
#define FINAL_TIMEOUT 3600.0
#define XATTR_FETCHED "user.jobfs.fetched"
#define XATTR_STALE "user.jobfs.stale"

double cache_timeout(const struct cache *c, const struct node *n)
{
        const struct unit *u = node_unit(n);
        struct node_attr a;

        node_attr(n, &a);
        if (a.type == NODE_LAZY && !a.has_content)
                return 0;       /* its size comes with its first stat */
        if (u && !u->is_list && u->terminal && u->has_data)
                return FINAL_TIMEOUT;
        return c->cfg.ttl;
}

double cache_negative_timeout(const struct cache *c, const struct node *parent)
{
        const struct source *src = source_of(c, parent);

        /* the server said no such job: the kernel keeps that for the back-off,
         * so a loop over unknown names costs one request per name and second */
        return src && is_item_parent(src, parent) ? c->backoff : 0;
}

int cache_xattr(const struct cache *c, const struct node *n, const char *name, char *buf,
                size_t size)
{
        const struct unit *u = node_unit(n);
        double now = cache_now_of(c), age;
        char err[64];
        struct tm tm;
        int len;

        if (!u || u->is_list || !u->has_data)
                return -ENODATA;
        age = now - u->fetched_at;
        if (strcmp(name, XATTR_FETCHED) == 0) {
                gmtime_r(&u->fetched_wall.tv_sec, &tm);
                len = (int)strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
                return len > 0 ? len : -ERANGE;
        }
        if (strcmp(name, XATTR_STALE) != 0 || u->terminal || age <= c->cfg.ttl)
                return -ENODATA;
        /* stale: older than the TTL because a refetch failed, or is taking
         * longer than a reader waits */
        if (u->error)
                len = snprintf(buf, size, "%s", strerror_r(-u->error, err, sizeof(err)));
        else if (fetch_pending(u) && now - u->pending_since >= STALE_GRACE)
                len = snprintf(buf, size, "refetch pending %.0f s", now - u->pending_since);
        else
                return -ENODATA;
        return len >= 0 && (size_t)len < size ? len : -ERANGE;
}

/* --- the poller's side ----------------------------------------------------- */

static void fact_of(const struct cache *c, const struct unit *u, struct poll_fact *f)
{
        const struct source *src = u->src;
        double now = cache_now_of(c);

        memset(f, 0, sizeof(*f));
        f->unit = (struct unit *)u;
        f->source = src->index;
        f->is_list = u->is_list;
        f->busy = fetch_pending(u);
        f->failing = in_backoff(c, u, now);
        f->fetched_at = u->fetched_at;
        f->fetch_secs = u->fetch_secs;
        f->interest_at = u->parked ? now : u->interest_at;      /* someone waits on it */
        if (u->is_list) {
                if (src->feed_interest > f->interest_at)
                        f->interest_at = src->feed_interest;
                return;
        }
        f->covered = src->feed && src->list && !src->list->error && u->listed_seq == src->list_seq &&
                     u->data_sig && u->feed_misses < FEED_MISSES_MAX;
        f->changed = u->feed_changed;
}

void cache_poll_each(struct cache *c, void (*fn)(void *ctx, const struct poll_fact *f), void *ctx)
{
        double feed_interest[sizeof(c->sources) / sizeof(c->sources[0])] = { 0 };
        bool relied_on[sizeof(c->sources) / sizeof(c->sources[0])] = { false };
        struct poll_fact f;
        struct unit *next;

        /* a listing is the change feed of the held live jobs it covers: it is
         * polled while any relies on it, as hot as the hottest of them */
        for (struct unit *u = c->live.head; u; u = u->live_link.next) {
                fact_of(c, u, &f);
                if (f.covered) {
                        relied_on[f.source] = true;
                        if (f.interest_at > feed_interest[f.source])
                                feed_interest[f.source] = f.interest_at;
                }
        }
        for (unsigned i = 0; i < c->n_sources; i++) {
                struct unit *l = c->sources[i]->list;

                /* ... and while the kernel holds its directory */
                if (!l || (l->kernel == 0 && !relied_on[i]))
                        continue;
                fact_of(c, l, &f);
                if (feed_interest[i] > f.interest_at)
                        f.interest_at = feed_interest[i];
                fn(ctx, &f);
        }
        for (struct unit *u = c->live.head; u; u = next) {
                next = u->live_link.next;       /* fn may queue u: it stays on the list */
                fact_of(c, u, &f);
                fn(ctx, &f);
        }
}

void cache_poll(struct cache *c, struct unit *u)
{
        if (fetch_pending(u))
                return;
        u->src->polls++;
        /* half an interval: data a reader fetched just now is fresh enough,
         * and a change is seen at most 1.5 intervals after it happened */
        unit_submit(c, u, LANE_POLL, u->feed_changed ? 0 : c->cfg.poll_interval / 2);
}

void cache_stats(const struct cache *c, struct cache_stats *ret)
{
        *ret = c->stats;
        ret->units = c->all.n - c->n_probes;   /* failed lookups are not units */
        ret->failed_lookups = c->n_probes;
        ret->cached = c->n_cached;
        ret->bytes = c->bytes;
        ret->cache_bytes = c->cfg.cache_bytes;
}

bool cache_source_stats(const struct cache *c, unsigned i, struct cache_source_stats *ret)
{
        const struct source *src;

        if (i >= c->n_sources)
                return false;
        src = c->sources[i];
        memset(ret, 0, sizeof(*ret));
        ret->backend = src->b;
        lane_stats(src->lane, &ret->lane);
        ret->polls = src->polls;
        ret->feed = src->feed;
        return true;
}
