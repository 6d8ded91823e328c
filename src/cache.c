/* cache: see include/jobfs/cache.h.
 *
 * This file: units and their lifetimes, freshness (unit_get: the one place
 * that decides whether a caller waits, gets what there is, or gets an
 * error), fetching and applying results, eviction, wait files. cache_list.c
 * applies listings and change feeds and does readahead; cache_view.c says
 * what the cache holds (timeouts, xattrs, poll facts, stats);
 * cache_internal.h is what they share. Every function runs with the tree
 * lock held.
 */
#include "jobfs/cache.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobfs/backend.h"
#include "jobfs/clock.h"
#include "jobfs/log.h"
#include "cache_internal.h"

/* 1 s: a flapping server is retried at the next access after a second,
 * while a shell loop over a down server costs one request per second. */
#define ERROR_BACKOFF 1.0
/* 100 ms: how often a waiting reader looks for a Ctrl-C (FUSE INTERRUPT),
 * well inside the 0.5 s a user waits for a shell to come back */
#define WAIT_SLICE 0.1
/* 256: failed lookups of unknown names remembered for the back-off; a loop
 * over 10,000 bad names still costs one request per name and second */
#define PROBES_FAILED_MAX 256

double cache_now_of(const struct cache *c)
{
        return clock_now(c->cfg.clock);
}

/* --- intrusive lists of units ------------------------------------------ */

static struct link *link_at(struct unit *u, size_t off)
{
        return (struct link *)((char *)u + off);
}

static void ulist_push_head(struct ulist *l, struct unit *u, size_t off)
{
        struct link *k = link_at(u, off);

        k->prev = NULL;
        k->next = l->head;
        if (l->head)
                link_at(l->head, off)->prev = u;
        l->head = u;
        if (!l->tail)
                l->tail = u;
        l->n++;
}

static void ulist_remove(struct ulist *l, struct unit *u, size_t off)
{
        struct link *k = link_at(u, off);

        if (k->prev)
                link_at(k->prev, off)->next = k->next;
        else
                l->head = k->next;
        if (k->next)
                link_at(k->next, off)->prev = k->prev;
        else
                l->tail = k->prev;
        k->prev = k->next = NULL;
        l->n--;
}

#define LRU_OFF offsetof(struct unit, lru_link)
#define LIVE_OFF offsetof(struct unit, live_link)
#define ALL_OFF offsetof(struct unit, all_link)
#define ZOMBIE_OFF offsetof(struct unit, zombie_link)

/* --- life of a unit ---------------------------------------------------- */

/* Something needs the unit as it is: a fetch, a waiter, a lazy file, a wait. */
static bool unit_busy(const struct unit *u)
{
        return u->in_flight || lane_item_queued(&u->job.item) || u->waiters > 0 || u->files > 0 ||
               u->parked > 0;
}

struct unit *unit_new(struct cache *c, struct source *src, struct node *dir)
{
        struct unit *u = calloc(1, sizeof(*u));

        if (!u)
                return NULL;
        lane_item_init(&u->job.item);
        u->job.kind = JOB_UNIT;
        u->src = src;
        u->dir = dir;
        u->lru = LRU_NONE;
        u->touched_at = u->interest_at = cache_now_of(c);
        if (dir) {
                node_set_unit(dir, u);
                u->kernel = node_kernel_holds(dir);     /* a listed dir has no children yet */
        }
        ulist_push_head(&c->all, u, ALL_OFF);
        return u;
}

static void unit_free(struct cache *c, struct unit *u)
{
        if (u->lru != LRU_NONE)
                ulist_remove(&c->lru[u->lru], u, LRU_OFF);
        if (u->live)
                ulist_remove(&c->live, u, LIVE_OFF);
        if (u->zombie)
                ulist_remove(&c->zombies, u, ZOMBIE_OFF);
        ulist_remove(&c->all, u, ALL_OFF);
        if (lane_item_queued(&u->job.item))
                lane_cancel(u->src->lane, &u->job.item);
        free(u->probe_name);
        free(u);
}

static void probe_unlink(struct cache *c, struct unit *u)
{
        for (struct unit **pp = &c->probes; *pp; pp = &(*pp)->probe_next) {
                if (*pp == u) {
                        *pp = u->probe_next;
                        c->n_probes--;
                        return;
                }
        }
}

struct unit *probe_take(struct cache *c, struct node *parent, const char *name)
{
        for (struct unit *u = c->probes; u; u = u->probe_next) {
                if (u->probe_parent == parent && strcmp(u->probe_name, name) == 0) {
                        probe_unlink(c, u);
                        return u;
                }
        }
        return NULL;
}

/* Evictable units with data and nothing in flight: those the kernel does
 * not hold first, since their nodes can be freed. */
static int lru_class(const struct unit *u)
{
        if (u->is_list || !u->has_data || unit_busy(u))
                return LRU_NONE;
        return u->kernel ? LRU_HELD : LRU_FREE;
}

/* Held by the kernel, live data showing (or dropped by eviction, its nodes
 * kept so a refetch still tells changes): the poller's to consider. */
static bool pollable(const struct unit *u)
{
        return !u->is_list && u->kernel > 0 && u->ever_filled && !u->terminal && !u->removed &&
               u->dir && node_visible(u->dir);
}

/* Whether a unit no one needs can go: it holds no data, and the back-off of
 * its last failure (what makes a loop over a down server cheap) is over. */
static bool unit_done_with(const struct cache *c, const struct unit *u)
{
        return !u->is_list && !unit_busy(u) && u->kernel == 0 && !u->has_data &&
               !in_backoff(c, u, cache_now_of(c));
}

void unit_settle(struct cache *c, struct unit *u)
{
        int cls = lru_class(u);
        bool live = pollable(u);

        if (cls != u->lru) {
                if (u->lru != LRU_NONE)
                        ulist_remove(&c->lru[u->lru], u, LRU_OFF);
                if (cls != LRU_NONE)
                        ulist_push_head(&c->lru[cls], u, LRU_OFF);
                u->lru = cls;
        }
        if (live != u->live) {
                if (live)
                        ulist_push_head(&c->live, u, LIVE_OFF);
                else
                        ulist_remove(&c->live, u, LIVE_OFF);
                u->live = live;
        }
        if (!unit_done_with(c, u))
                return;
        if (!u->dir) {
                probe_unlink(c, u);
        } else {
                if (tree_prune(c->tree, u->dir) < 0) {
                        /* a queued change still names a node: cache_sweep retries */
                        if (!u->zombie)
                                ulist_push_head(&c->zombies, u, ZOMBIE_OFF);
                        u->zombie = true;
                        return;
                }
                c->bytes -= u->bytes;
                node_set_unit(u->dir, NULL);
                /* a vanished job's directory goes now that no one holds it */
                if (!node_visible(u->dir))
                        tree_unlink_item(c->tree, u->dir);
        }
        unit_free(c, u);
}

static void touch(struct cache *c, struct unit *u, double now)
{
        u->touched_at = u->interest_at = now;
        if (u->lru != LRU_NONE && c->lru[u->lru].head != u) {
                ulist_remove(&c->lru[u->lru], u, LRU_OFF);
                ulist_push_head(&c->lru[u->lru], u, LRU_OFF);
        }
        if (u->src && u->src->feed && u->listed_seq == u->src->list_seq && now > u->src->feed_interest)
                u->src->feed_interest = now;
}

/* --- sources ------------------------------------------------------------ */

static void run_job(void *ctx, struct lane_item *it, enum lane_prio prio);

int cache_new(struct tree *t, const struct cache_config *cfg, struct cache **ret)
{
        struct cache *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->tree = t;
        c->cfg = *cfg;
        c->backoff = ERROR_BACKOFF;
        r = clock_cond_init(&c->done);
        if (r < 0) {
                free(c);
                return r;
        }
        c->stats.cache_bytes = cfg->cache_bytes;
        *ret = c;
        return 0;
}

int cache_add_backend(struct cache *c, struct backend *b, struct node **ret_root)
{
        struct source *src;
        int r;

        if (c->n_sources == sizeof(c->sources) / sizeof(c->sources[0]))
                return -E2BIG;
        src = calloc(1, sizeof(*src));
        if (!src)
                return -ENOMEM;
        src->index = c->n_sources;
        src->b = b;
        r = lane_new(&c->cfg.lane, tree_mutex(c->tree), run_job, c, &src->lane);
        if (r == 0)
                r = tree_add(c->tree, tree_root(c->tree), b->ops->root, NODE_DIR, ROLE_AREA,
                             &src->root);
        if (r == 0 && b->ops->list) {
                src->list = unit_new(c, src, src->root);
                if (!src->list)
                        r = -ENOMEM;
                else
                        src->list->is_list = true;
        }
        if (r < 0) {
                lane_free(src->lane);
                free(src);
                return r;
        }
        c->sources[c->n_sources++] = src;
        *ret_root = src->root;
        return 0;
}

void cache_set_listener(struct cache *c, cache_changes_fn fn, void *ctx)
{
        c->on_changes = fn;
        c->on_changes_ctx = ctx;
}

void cache_set_feed_listener(struct cache *c, void (*fn)(void *ctx), void *ctx)
{
        c->on_moved = fn;
        c->on_moved_ctx = ctx;
}

const struct clock *cache_clock(const struct cache *c)
{
        return c->cfg.clock;
}

void cache_stop(struct cache *c)
{
        if (!c)
                return;
        pthread_mutex_lock(tree_mutex(c->tree));
        c->stopping = true;
        pthread_cond_broadcast(&c->done);
        pthread_mutex_unlock(tree_mutex(c->tree));
        for (unsigned i = 0; i < c->n_sources; i++)
                lane_stop(c->sources[i]->lane);
}

void cache_free(struct cache *c)
{
        if (!c)
                return;
        cache_stop(c);
        while (c->all.head)
                unit_free(c, c->all.head);
        while (c->files) {
                struct file_fetch *f = c->files;

                c->files = f->next;
                free(f);
        }
        for (unsigned i = 0; i < c->n_sources; i++) {
                lane_free(c->sources[i]->lane);
                free(c->sources[i]);
        }
        pthread_cond_destroy(&c->done);
        free(c);
}

struct source *source_of(const struct cache *c, const struct node *n)
{
        const struct node *top = node_top(n);

        for (unsigned i = 0; top && i < c->n_sources; i++)
                if (c->sources[i]->root == top)
                        return c->sources[i];
        return NULL;
}

struct unit *item_unit(struct cache *c, struct node *dir)
{
        struct unit *u = node_unit(dir);
        struct source *src;

        if (u || node_role(dir) != ROLE_ITEM)
                return u;
        src = source_of(c, dir);
        u = unit_new(c, src, dir);
        /* a directory without a unit comes from the listing (lookups make
         * units at once), and the listing drops the ones it stops naming */
        if (u && node_visible(dir) && src->list)
                u->listed_seq = src->list_seq;
        return u;
}

/* The unit whose data decides n: an item's, the listing of a backend root. */
static struct unit *unit_of(struct cache *c, struct node *n)
{
        return node_role(n) == ROLE_ITEM ? item_unit(c, n) : node_unit(n);
}

/* --- fetching ------------------------------------------------------------ */

void announce(struct cache *c, struct changes *ch)
{
        if (ch->n && c->on_changes) {
                c->on_changes(c->on_changes_ctx, ch);   /* takes the queued changes */
                changes_clear(ch);
        } else {
                changes_release(c->tree, ch);
        }
}

void unit_submit(struct cache *c, struct unit *u, enum lane_prio prio, double want_age)
{
        if (u->in_flight)
                return;         /* the one in flight started just now: its data will do */
        if (!lane_item_queued(&u->job.item)) {
                u->want_age = want_age;
                u->pending_since = cache_now_of(c);
        } else if (want_age < u->want_age) {
                u->want_age = want_age;
        }
        lane_submit(u->src->lane, &u->job.item, prio);
        unit_settle(c, u);      /* busy now: off the LRU */
}

/* The path components below the backend's root: the keys of a fetch.
 * Names are immutable and the nodes outlive the fetch (the unit is busy,
 * the probe's parent counts a lookup), so the pointers stay valid unlocked. */
static unsigned build_keys(const struct unit *u, const char *keys[4])
{
        const struct node *root = u->src->root;
        const struct node *n = u->dir ? u->dir : u->probe_parent;
        const char *rev[4];
        unsigned depth = 0, k = 0;

        if (!u->dir)
                rev[depth++] = u->probe_name;
        for (; n && n != root && depth < 4; n = node_parent(n))
                rev[depth++] = node_name(n);
        while (depth > 0)
                keys[k++] = rev[--depth];
        keys[k] = NULL;
        return k;
}

static int attach_probe(struct cache *c, struct unit *u, const char *resolved, struct unit **ret);

static void complete_unit(struct cache *c, struct unit *u, uint64_t gen, int r,
                          struct backend_item *it, struct backend_list *l)
{
        struct changes ch = { 0 };
        struct changes *out;
        double now = cache_now_of(c);

        u->in_flight = false;
        u->fetches_done++;
        if (gen != u->gen) {
                /* invalidated meanwhile (the listing dropped the job): older
                 * than what we know; waiters ask again if they still care */
                c->stats.dropped_results++;
        } else if (r == 0 && u->is_list) {
                r = apply_list(c, u, l);
        } else if (r == 0 && !u->dir) {
                struct unit *to = u;

                r = attach_probe(c, u, it->name, &to);
                if (r == 0 && to != u && !to->in_flight) {
                        r = apply_item(c, to, it->snap, it->terminal, it->sig,
                                       to->ever_filled ? &ch : NULL);
                        unit_settle(c, to);
                }
                if (r == 0 && to == u)
                        r = apply_item(c, u, it->snap, it->terminal, it->sig, NULL);
                if (r == 0 && to != u)
                        r = -EEXIST;    /* this probe is done: its name is a link */
                if (r < 0) {
                        u->error = r;
                        u->error_at = now;
                }
        } else if (r == 0) {
                out = u->ever_filled ? &ch : NULL;   /* the first fill is no change seen */
                r = apply_item(c, u, it->snap, it->terminal, it->sig, out);
        } else if (r == -ENOENT && u->dir && !u->is_list) {
                unit_removed(c, u, u->ever_filled ? &ch : NULL);
        } else {
                u->error = r;
                u->error_at = now;
        }
        if (r < 0 && u->error == 0) {
                u->error = r;
                u->error_at = now;
        }
        announce(c, &ch);
        pthread_cond_broadcast(&c->done);
}

/* Evicts least recently used units while past --cache-bytes or --cache-max:
 * the kernel's forgotten ones lose their nodes, held ones their contents. */
static void trim(struct cache *c)
{
        while (c->bytes > c->cfg.cache_bytes || c->n_cached > c->cfg.cache_max) {
                struct unit *u = c->lru[LRU_FREE].tail ? c->lru[LRU_FREE].tail : c->lru[LRU_HELD].tail;

                if (!u)
                        return;
                c->bytes -= u->bytes;
                if (u->kernel == 0 && tree_prune(c->tree, u->dir) == 0) {
                        u->ever_filled = false;
                } else {
                        /* the kernel holds some of it (the job dir, a watched
                         * file): the rest goes, and the contents */
                        if (tree_prune_unheld(c->tree, u->dir) > 0)
                                u->pruned = true;
                        tree_drop_content(u->dir);
                }
                u->bytes = tree_unit_bytes(u->dir, u);
                c->bytes += u->bytes;
                u->has_data = false;
                c->n_cached--;
                c->stats.evictions++;
                unit_settle(c, u);      /* off the LRU (no data): the loop ends */
        }
}

static void fetch_unit(struct cache *c, struct unit *u)
{
        struct backend *b = u->src->b;
        struct backend_item it = { 0 };
        struct backend_list l = { 0 };
        struct node *probe_parent = u->dir ? NULL : u->probe_parent;
        const char *keys[5];
        uint64_t gen = u->gen;
        double t0;
        int r;

        build_keys(u, keys);
        u->in_flight = true;
        c->stats.fetches++;
        if (probe_parent)
                tree_lookup_begin(probe_parent);
        pthread_mutex_unlock(tree_mutex(c->tree));
        t0 = cache_now_of(c);
        r = u->is_list ? b->ops->list(b, &l) : b->ops->fetch(b, keys, &it);
        pthread_mutex_lock(tree_mutex(c->tree));
        u->fetch_secs = cache_now_of(c) - t0;
        if (probe_parent)
                tree_lookup_end(probe_parent);
        complete_unit(c, u, gen, r, &it, &l);
        backend_item_clear(&it);
        backend_list_clear(&l);
        unit_settle(c, u);
        trim(c);
}

static bool is_fresh(const struct unit *u, double now, double max_age)
{
        return u->has_data && !u->feed_changed && (u->terminal || now - u->fetched_at < max_age);
}

static void run_file(struct cache *c, struct file_fetch *f);

static void run_job(void *ctx, struct lane_item *it, enum lane_prio prio)
{
        struct cache *c = ctx;
        struct fetch_job *job = (struct fetch_job *)it;
        struct unit *u;

        if (job->kind == JOB_FILE) {
                run_file(c, (struct file_fetch *)job);
                return;
        }
        u = (struct unit *)job;
        if (c->stopping || is_fresh(u, cache_now_of(c), u->want_age) ||
            (prio != LANE_READER && in_backoff(c, u, cache_now_of(c)))) {
                /* fresh by now (a reader, or a listing carrying the item, got
                 * there first), or failing: it counts as done, so that whoever
                 * waits for it looks again instead of waiting for ever */
                u->fetches_done++;
                pthread_cond_broadcast(&c->done);
                unit_settle(c, u);
                return;
        }
        fetch_unit(c, u);
}

/* --- applying ------------------------------------------------------------ */

static void account(struct cache *c, struct unit *u)
{
        c->bytes -= u->bytes;
        u->bytes = u->dir ? tree_unit_bytes(u->dir, u) : 0;
        c->bytes += u->bytes;
}

/* Every item has `wait`: a file whose read blocks until the item is final,
 * then gives its final state (the item's `state` file) and a newline. */
static void update_wait(struct cache *c, struct unit *u)
{
        struct node *w = tree_child(u->dir, "wait"), *st;
        struct blob *b = NULL, *have;

        if (!w && tree_add(c->tree, u->dir, "wait", NODE_FILE, ROLE_WAIT, &w) < 0)
                return;         /* out of memory: no wait file, nothing else lost */
        if (node_role(w) != ROLE_WAIT)
                return;
        if (!node_visible(w))
                tree_reveal(c->tree, w, NULL);  /* the job came back */
        if (!u->terminal)
                return;
        have = node_content(w);
        if (!have) {
                st = tree_child(u->dir, "state");
                b = st ? node_content(st) : NULL;
                /* no state file: a final job whose state we cannot name */
                node_set_content(w, b && b->len ? blob_ref(b) : blob_new("final\n", 6));
        }
        blob_unref(b);
        blob_unref(have);
}

int apply_item(struct cache *c, struct unit *u, struct snap *snap, bool terminal, uint64_t sig,
               struct changes *out)
{
        size_t before = out ? out->n : 0;
        double now = cache_now_of(c);
        int r;

        if (!node_visible(node_parent(u->dir)))
                return -ENOENT;         /* its software name left the list: not revived */
        r = u->pruned ? tree_refill(c->tree, u->dir, snap, u, out)
                      : tree_apply(c->tree, u->dir, snap, u, out);
        u->pruned = false;
        if (r == 0)
                r = tree_reveal(c->tree, u->dir, out);
        if (r < 0)
                return r;
        if (!u->has_data)
                c->n_cached++;
        u->has_data = u->ever_filled = true;
        u->terminal = terminal;
        u->removed = false;
        u->error = 0;
        u->fetched_at = now;
        clock_gettime(CLOCK_REALTIME, &u->fetched_wall);
        if (u->feed_changed)
                u->feed_misses = u->feed_sig && sig != u->feed_sig ? u->feed_misses + 1 : 0;
        u->feed_changed = false;
        u->data_sig = sig;
        update_wait(c, u);
        if (out && out->n > before) {
                u->interest_at = now;   /* a change: watchers react to it */
                if (u->src->feed && u->listed_seq == u->src->list_seq && now > u->src->feed_interest)
                        u->src->feed_interest = now;    /* and its feed keeps the full rate */
        }
        account(c, u);
        return 0;
}

int unit_removed(struct cache *c, struct unit *u, struct changes *out)
{
        int r = tree_remove(c->tree, u->dir, out);

        u->gen++;               /* a fetch in flight must not bring it back */
        if (u->has_data)
                c->n_cached--;
        u->has_data = false;
        u->removed = true;
        u->error = -ENOENT;
        u->error_at = cache_now_of(c);
        u->feed_changed = false;
        return r;
}

/* A lookup's fetch found the job: its directory now, under the full name
 * the server resolved (a short id), with a symlink from the name asked.
 * *ret: the unit the data goes to: u, or the one the full name already has
 * (the listing named it first). */
static int attach_probe(struct cache *c, struct unit *u, const char *resolved, struct unit **ret)
{
        struct node *parent = u->probe_parent, *n, *link;
        const char *name = resolved && strcmp(resolved, u->probe_name) != 0 &&
                           snap_name_ok(resolved, strlen(resolved)) ? resolved : u->probe_name;
        int r;

        n = tree_child(parent, name);
        if (!n) {
                r = tree_add(c->tree, parent, name, NODE_DIR, ROLE_ITEM, &n);
                if (r < 0)
                        return r;
        }
        if (name != u->probe_name && !tree_child(parent, u->probe_name) &&
            tree_add(c->tree, parent, u->probe_name, NODE_LINK, ROLE_PLAIN, &link) == 0)
                node_set_content(link, blob_new(name, strlen(name)));
        if (node_unit(n) && node_unit(n) != u) {
                *ret = node_unit(n);    /* known under its full name already */
                return 0;
        }
        probe_unlink(c, u);
        node_set_unit(n, u);
        u->dir = n;
        u->kernel = node_kernel_holds(n);
        *ret = u;
        return 0;
}

/* --- freshness ------------------------------------------------------------ */

/* What a caller gets without (more) waiting: the data, stale or not, while
 * --max-stale allows; else the error that stopped the refetch. */
static int serve(struct cache *c, struct unit *u, double now)
{
        double age = now - u->fetched_at;

        if (!u->has_data)
                return u->error ? u->error : (c->stopping ? -ECANCELED : -EIO);
        if (!u->terminal && c->cfg.max_stale > 0 && age > c->cfg.max_stale)
                return u->error ? u->error : -ETIMEDOUT;
        if (!u->terminal && age > c->cfg.ttl)
                c->stats.stale_served++;
        return 0;
}

static bool caller_interrupted(const struct cache_caller *who)
{
        return who && who->interrupted && who->interrupted(who->ctx);
}

/* Waits for the next end of a fetch of u, until deadline; -EINTR on Ctrl-C,
 * -ETIMEDOUT at the deadline, 0 when one ended. */
static int wait_fetch(struct cache *c, struct unit *u, double deadline,
                      const struct cache_caller *who)
{
        unsigned long seen = u->fetches_done;
        int r = 0;

        u->waiters++;
        c->stats.waits++;
        while (u->fetches_done == seen && !c->stopping) {
                double now = cache_now_of(c), until = now + WAIT_SLICE;

                if (caller_interrupted(who)) {
                        r = -EINTR;
                        break;
                }
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                clock_wait(c->cfg.clock, &c->done, tree_mutex(c->tree), until < deadline ? until : deadline);
        }
        u->waiters--;
        return r;
}

/* The one freshness decision. */
static int unit_decide(struct cache *c, struct unit *u, enum cache_need need,
                       const struct cache_caller *who)
{
        unsigned long seen = u->fetches_done;
        double now = cache_now_of(c);
        int r;

        if (who)
                touch(c, u, now);
        for (;;) {
                if (c->stopping)
                        return -ECANCELED;
                /* fresh, or fetched successfully while we waited (what a TTL
                 * of 0 asks for: one fetch per access, not an endless loop) */
                if (is_fresh(u, now, c->cfg.ttl) ||
                    (u->fetches_done != seen && u->has_data && u->error == 0)) {
                        c->stats.hits += u->fetches_done == seen;
                        return 0;
                }
                if (in_backoff(c, u, now))
                        return serve(c, u, now);
                unit_submit(c, u, LANE_READER, c->cfg.ttl);
                if (u->has_data && need == NEED_LISTING)
                        return serve(c, u, now);        /* shown as it is, refreshed behind */
                /* a refetch pending past the grace already: the lookup before
                 * this stat waited it out, nobody waits twice */
                if (u->has_data && now - u->pending_since >= STALE_GRACE)
                        return serve(c, u, now);
                r = wait_fetch(c, u, u->has_data ? now + STALE_GRACE : 1e18, who);
                now = cache_now_of(c);
                if (r == -EINTR)
                        break;
                if (r == -ETIMEDOUT)
                        return serve(c, u, now);        /* the refetch goes on without us */
                if (u->removed || (!u->has_data && u->error))
                        return u->error;
        }
        return r;
}

/* unit_decide, then the unit goes back where it belongs (u may be freed
 * when the answer is an error). */
static int unit_get(struct cache *c, struct unit *u, enum cache_need need,
                    const struct cache_caller *who)
{
        int r = unit_decide(c, u, need, who);

        unit_settle(c, u);
        return r;
}

/* --- lazy files ----------------------------------------------------------- */

static void file_fetch_release(struct cache *c, struct file_fetch *f);

static void run_file(struct cache *c, struct file_fetch *f)
{
        struct backend *b = f->unit->src->b;
        struct blob *blob = NULL;
        const char *keys[5];
        char *name;
        int r;

        build_keys(f->unit, keys);
        name = strdup(node_name(f->node));
        f->in_flight = true;
        pthread_mutex_unlock(tree_mutex(c->tree));
        r = !name ? -ENOMEM : b->ops->fetch_file ? b->ops->fetch_file(b, keys, name, c->cfg.max_file, &blob)
                                                 : -EIO;
        pthread_mutex_lock(tree_mutex(c->tree));
        free(name);
        f->in_flight = false;
        f->done = true;
        f->result = r;
        if (r == 0) {
                node_set_content(f->node, blob);
                account(c, f->unit);
                trim(c);        /* a 16 MiB content.zip counts at once */
        }
        pthread_cond_broadcast(&c->done);
        file_fetch_release(c, f);       /* its readers may all have gone (Ctrl-C) */
}

static struct file_fetch *file_fetch_of(struct cache *c, struct unit *u, struct node *n)
{
        struct file_fetch *f;

        for (f = c->files; f; f = f->next)
                if (f->node == n)
                        return f;
        f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        lane_item_init(&f->job.item);
        f->job.kind = JOB_FILE;
        f->unit = u;
        f->node = n;
        tree_pin(n);            /* n outlives the fetch even if a refetch drops it */
        f->next = c->files;
        c->files = f;
        u->files++;
        return f;
}

/* Frees f once no reader waits and no fetch is queued or running. */
static void file_fetch_release(struct cache *c, struct file_fetch *f)
{
        if (f->waiters > 0 || f->in_flight || lane_item_queued(&f->job.item))
                return;
        for (struct file_fetch **pp = &c->files; *pp; pp = &(*pp)->next) {
                if (*pp == f) {
                        *pp = f->next;
                        break;
                }
        }
        tree_unpin(c->tree, f->node);
        f->unit->files--;
        unit_settle(c, f->unit);
        free(f);
}

/* Fetches the bytes of a lazy file n of unit u (single flight). */
static int file_get(struct cache *c, struct unit *u, struct node *n, const struct cache_caller *who)
{
        struct file_fetch *f = file_fetch_of(c, u, n);
        int r = 0;

        if (!f)
                return -ENOMEM;
        f->waiters++;
        if (!f->in_flight && !f->done)
                lane_submit(u->src->lane, &f->job.item, LANE_READER);
        while (!f->done && !c->stopping) {
                double until = cache_now_of(c) + WAIT_SLICE;

                if (caller_interrupted(who)) {
                        r = -EINTR;
                        break;
                }
                clock_wait(c->cfg.clock, &c->done, tree_mutex(c->tree), until);
        }
        if (r == 0)
                r = f->done ? f->result : -ECANCELED;
        f->waiters--;
        if (c->stopping && lane_item_queued(&f->job.item))
                lane_cancel(u->src->lane, &f->job.item);
        file_fetch_release(c, f);       /* a failure is asked again by the next read */
        return r;
}

/* --- what the FUSE handlers ask ------------------------------------------- */

int cache_get(struct cache *c, struct node *n, enum cache_need need, const struct cache_caller *who)
{
        struct unit *u = unit_of(c, n);
        struct node_attr a;
        int r;

        if (!u)
                return 0;               /* static: the root, .jobfs, a group */
        if (u->is_list && need == NEED_FRESH)
                return 0;               /* listings refresh on readdir, not on every stat */
        r = unit_get(c, u, need, who);
        /* a jobs/ whose list fails still shows the jobs opened by path (and
         * their errors); software/ has nothing to show without its list */
        if (r < 0 && u->is_list && u->src->b->ops->depth <= 1 && r != -EINTR && r != -ECANCELED)
                return 0;
        if (r < 0)
                return r;
        node_attr(n, &a);
        if (a.type == NODE_LAZY && !a.has_content)
                return file_get(c, u, n, who);
        return 0;
}

int cache_content(struct cache *c, struct node *n, const struct cache_caller *who,
                  struct blob **ret)
{
        struct blob *b = node_content(n);
        int r;

        for (int attempt = 0; !b && attempt < 2; attempt++) {
                r = cache_get(c, n, NEED_FRESH, who);
                if (r < 0)
                        return r;
                b = node_content(n);
        }
        *ret = b;               /* NULL: an entry that has no bytes (a dir) */
        return 0;
}

static struct unit *probe_of(struct cache *c, struct source *src, struct node *parent,
                             const char *name)
{
        struct unit *u;

        for (u = c->probes; u; u = u->probe_next)
                if (u->probe_parent == parent && strcmp(u->probe_name, name) == 0)
                        return u;
        if (c->n_probes >= PROBES_FAILED_MAX)
                cache_sweep(c);
        u = unit_new(c, src, NULL);
        if (!u)
                return NULL;
        u->probe_parent = parent;
        u->probe_name = strdup(name);
        if (!u->probe_name) {
                unit_free(c, u);
                return NULL;
        }
        u->probe_next = c->probes;
        c->probes = u;
        c->n_probes++;
        return u;
}

/* A job or run by its path: the server decides whether it exists. */
static int lookup_item(struct cache *c, struct source *src, struct node *parent, const char *name,
                       const struct cache_caller *who, struct node **ret)
{
        struct node *n = tree_child(parent, name);
        struct unit *u;
        int r;

        if (n && node_visible(n)) {
                u = node_unit(n);
                /* listed: it exists, its data comes when it is read */
                if (!u || u->has_data || (u->listed_seq && u->listed_seq == src->list_seq)) {
                        *ret = n;
                        return 0;
                }
        }
        if (!snap_name_ok(name, strlen(name)))
                return -ENOENT;
        u = n && node_role(n) == ROLE_ITEM ? item_unit(c, n) : n ? NULL : probe_of(c, src, parent, name);
        if (!u)
                return n ? -ENOENT : -ENOMEM;
        r = unit_get(c, u, NEED_FRESH, who);
        /* found, maybe as a link to the full name the server resolved */
        n = tree_child(parent, name);
        if (n && node_visible(n) && r != -EINTR) {
                *ret = n;
                return 0;
        }
        return r < 0 ? r : -ENOENT;
}

int cache_lookup(struct cache *c, struct node *parent, const char *name,
                 const struct cache_caller *who, struct node **ret)
{
        struct source *src = source_of(c, parent);
        struct node *n;
        int r = 0;

        if (!node_is_dir(parent))
                return -ENOTDIR;
        if (strlen(name) > SNAP_NAME_MAX)
                return -ENAMETOOLONG;
        if (src && is_item_parent(src, parent))
                return lookup_item(c, src, parent, name, who, ret);
        n = tree_child(parent, name);
        if (src && parent == src->root && src->list && (!n || !node_visible(n))) {
                /* software/NAME: the names come from the list */
                r = unit_get(c, src->list, NEED_FRESH, who);
        } else if (src && parent != src->root) {
                /* inside a job: while this waits on the network, a mkdir or
                 * rmdir in parent would wait for its lock (replay.h defers them) */
                tree_lookup_begin(parent);
                r = cache_get(c, parent, NEED_FRESH, who);
                tree_lookup_end(parent);
        }
        if (r < 0)
                return r;               /* no data to fall back on, or older than --max-stale */
        n = tree_child(parent, name);
        if (!n || !node_visible(n))
                return -ENOENT;
        *ret = n;
        return 0;
}

void cache_kernel_ref(struct cache *c, struct node *n)
{
        struct unit *u = node_unit(n);

        if (tree_ref(c->tree, n) && u) {
                u->kernel++;
                unit_settle(c, u);
        }
}

void cache_kernel_forget(struct cache *c, struct node *n, uint64_t count)
{
        struct unit *u = node_unit(n);

        /* n may be freed by tree_forget; u is not (it is the cache's) */
        if (tree_forget(c->tree, n, count) && u && u->kernel > 0) {
                u->kernel--;
                unit_settle(c, u);
        }
}

int cache_wait_state(struct cache *c, struct node *wait, struct blob **ret)
{
        struct node *dir = node_parent(wait);
        struct unit *u = dir ? node_unit(dir) : NULL;

        (void)c;

        struct blob *b;

        if (!u || u->removed || !node_visible(dir))
                return -ENOENT;
        /* the bytes are set once the job is final, and kept through eviction */
        b = node_content(wait);
        if (b) {
                *ret = b;
                return 1;
        }
        /* evicted before its wait file was made: fetch it again (a final job
         * is not polled) */
        if (!u->has_data && !fetch_pending(u))
                unit_submit(c, u, LANE_READER, c->cfg.ttl);
        return 0;
}

void cache_wait_park(struct cache *c, struct node *wait, int delta)
{
        struct node *dir = node_parent(wait);
        struct unit *u = dir ? node_unit(dir) : NULL;

        if (!u)
                return;
        if (delta < 0 && u->parked < (unsigned)-delta)
                u->parked = 0;
        else
                u->parked = (unsigned)((int)u->parked + delta);
        if (delta > 0)
                touch(c, u, cache_now_of(c));
        unit_settle(c, u);
}

void cache_sweep(struct cache *c)
{
        struct unit *next;

        for (struct unit *u = c->probes; u; u = next) {
                next = u->probe_next;
                unit_settle(c, u);
        }
        for (struct unit *u = c->zombies.head; u; u = next) {
                next = u->zombie_link.next;
                unit_settle(c, u);
        }
        /* past the cap, the oldest failures go even within their back-off
         * (room is left for the probe about to be made) */
        while (c->n_probes >= PROBES_FAILED_MAX) {
                struct unit *last = NULL;

                for (struct unit *u = c->probes; u; u = u->probe_next)
                        if (!unit_busy(u))
                                last = u;
                if (!last)
                        break;
                probe_unlink(c, last);
                unit_free(c, last);
        }
}

