/* prefetch: a bounded pool that fetches jobs before they are read.
 *
 * A sweep (grep -r, find, a shell loop) walks job directories in listing
 * order, one at a time. When one is opened, the next PREFETCH_AHEAD
 * siblings that were never fetched are queued here, and PREFETCH_WORKERS
 * threads fetch them in parallel (through the cache, so a reader arriving
 * meanwhile shares the request), keeping the sweep ahead of the reader by
 * about one pool's worth of requests. The pool is the connection pool: it
 * bounds the load a sweep puts on a server.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct cache;
struct node;
struct prefetch;
struct unit;

#define PREFETCH_WORKERS 8
#define PREFETCH_AHEAD 16       /* two pools' worth: the reader never waits for a slot */

int prefetch_new(struct cache *c, struct prefetch **ret);
int prefetch_start(struct prefetch *p);
/* Stops and joins the workers; a fetch in flight ends by its deadline (or at
 * once after http_cancel_all). Idempotent. */
void prefetch_stop(struct prefetch *p);
void prefetch_free(struct prefetch *p);         /* NULL-safe; stops first */

/* Queues one unit for a background refresh (a listing past its TTL is served
 * as it is meanwhile). 0, or -EAGAIN (full) / -ESHUTDOWN. Tree lock held. */
int prefetch_unit(struct prefetch *p, struct unit *u);

/* Like prefetch_unit, for the poller: the unit is refetched when older than
 * max_age (not the TTL). On error the caller refreshes it itself. */
int prefetch_poll(struct prefetch *p, struct unit *u, double max_age);

/* Queues the never-fetched siblings that follow dir in its parent's listing
 * order. Tree lock held. */
void prefetch_after(struct prefetch *p, struct node *dir);
