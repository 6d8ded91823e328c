/* cache_list: listings, change feeds and readahead (see include/jobfs/cache.h).
 *
 * A listing names what is under a backend's root. With items right there
 * (jobs/ID) the names become item directories, made without a unit: one
 * costs about 150 bytes until it is read. With items one level down
 * (software/NAME/KEY) they become group directories. Names the listing
 * drops go (IN_DELETE), except items opened by path that no listing named.
 * Where the listing is a change feed, an entry whose signature differs from
 * the unit's last fetch marks the unit changed: the poller fetches it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/log.h"
#include "cache_internal.h"

/* 1,000,000: the largest list reply a backend accepts; a server sending new
 * random ids on every poll cannot grow a root past it */
#define LISTING_MAX 1000000
/* 16: two lanes' worth of background workers (8) ahead of a sweep, so the
 * reader never waits for a slot; scans look at 4x that at most per open */
#define READAHEAD 16

/* The names of one listing, for the removal pass: an open-addressing set. */
struct name_set {
        const struct backend_list *l;
        size_t *slots;          /* entry index + 1; 0 = empty */
        size_t n_slots;
};

static int set_build(struct name_set *s, const struct backend_list *l)
{
        s->l = l;
        s->n_slots = 16;
        while (s->n_slots < 2 * l->n)
                s->n_slots *= 2;
        s->slots = calloc(s->n_slots, sizeof(*s->slots));
        if (!s->slots)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                size_t k = (size_t)snap_name_hash(l->v[i].name) & (s->n_slots - 1);

                while (s->slots[k])
                        k = (k + 1) & (s->n_slots - 1);
                s->slots[k] = i + 1;
        }
        return 0;
}

static bool set_has(const struct name_set *s, const char *name)
{
        for (size_t k = (size_t)snap_name_hash(name) & (s->n_slots - 1); s->slots[k];
             k = (k + 1) & (s->n_slots - 1))
                if (strcmp(s->l->v[s->slots[k] - 1].name, name) == 0)
                        return true;
        return false;
}

/* Makes (or brings back) the node of a listed name; a lookup in flight for
 * it hands over its unit. */
static int listed_node(struct cache *c, struct source *src, const char *name, bool items,
                       struct changes *out, struct node **ret)
{
        struct node *n = tree_child(src->root, name);
        struct unit *probe;
        int r;

        if (!n) {
                if (tree_kids(src->root) >= LISTING_MAX) {
                        log_debug("%s lists more than %d names; the rest are left out",
                                  src->b->ops->name, LISTING_MAX);
                        return 1;
                }
                r = tree_add(c->tree, src->root, name, NODE_DIR, items ? ROLE_ITEM : ROLE_GROUP, &n);
                if (r < 0)
                        return r;
                tree_remove(c->tree, n, NULL);  /* hidden until revealed below */
                if (items && (probe = probe_take(c, src->root, name))) {
                        /* its name stays: a fetch in flight may be using it */
                        node_set_unit(n, probe);
                        probe->dir = n;
                }
        }
        r = tree_reveal(c->tree, n, out);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

/* What the listing says of an item the cache knows. */
static int listed_item(struct cache *c, struct unit *u, const struct backend_list *l,
                       struct backend_entry *e, uint64_t seq, struct changes *out,
                       bool *ret_moved)
{
        int r = 0;

        u->listed_seq = seq;
        u->feed_sig = e->sig;
        if (e->snap && (u->ever_filled || u->kernel > 0)) {
                /* the listing carried the whole item: no fetch needed */
                r = apply_item(c, u, e->snap, e->terminal, e->sig, u->ever_filled ? out : NULL);
                unit_settle(c, u);
        } else if (l->feed && e->sig && u->has_data && !u->terminal) {
                if (u->data_sig != e->sig) {
                        *ret_moved = *ret_moved || !u->feed_changed;
                        u->feed_changed = true;
                } else if (!u->feed_changed && u->feed_misses < FEED_MISSES_MAX) {
                        /* the feed vouches that nothing moved: the data is as
                         * fresh as this listing (finished a few ms after the
                         * server wrote it), and a read within --ttl of it
                         * needs no request of its own */
                        u->fetched_at = cache_now_of(c);
                }
        }
        return r;
}

/* Names the listing no longer has go; items opened by path and never listed stay. */
static int drop_unlisted(struct cache *c, struct source *src, const struct name_set *set,
                         uint64_t prev_seq, bool items, struct changes *out)
{
        struct unit **gone = NULL;
        size_t pos = 0, n_gone = 0, cap = 0;
        struct node *k;
        int r = 0;

        for (; r == 0 && (k = tree_kid_from(src->root, &pos)); pos++) {
                struct unit *u = node_unit(k);

                if (set_has(set, node_name(k)))
                        continue;
                if (!items) {
                        if (node_role(k) == ROLE_GROUP)
                                r = tree_remove(c->tree, k, out);
                } else if (node_role(k) == ROLE_ITEM && !u) {
                        r = tree_remove(c->tree, k, out);
                } else if (node_role(k) == ROLE_ITEM && u->listed_seq && u->listed_seq == prev_seq) {
                        r = unit_removed(c, u, out);
                        if (r == 0 && n_gone == cap) {
                                struct unit **v = realloc(gone, (cap = cap ? 2 * cap : 16) * sizeof(*v));

                                if (!v)
                                        r = -ENOMEM;
                                else
                                        gone = v;
                        }
                        if (r == 0)
                                gone[n_gone++] = u;
                }
        }
        /* after the walk: settling frees units and their directories, and
         * freeing compacts the root, which would move the walk's positions */
        for (size_t i = 0; i < n_gone; i++)
                unit_settle(c, gone[i]);
        free(gone);
        tree_reclaim(c->tree, src->root);
        return r;
}

int apply_list(struct cache *c, struct unit *u, struct backend_list *l)
{
        struct source *src = u->src;
        bool items = src->b->ops->depth <= 1;
        struct changes ch = { 0 };
        struct changes *out = u->ever_filled ? &ch : NULL;     /* the first `ls` announces nothing */
        uint64_t prev_seq = src->list_seq, seq = prev_seq + 1;
        struct name_set set = { 0 };
        bool moved = false;             /* a job the feed says moved, newly */
        struct node *n;
        int r;

        r = set_build(&set, l);
        if (r < 0)
                return r;
        tree_stamp(c->tree);
        src->list_seq = seq;
        src->feed = l->feed;
        for (size_t i = 0; r == 0 && i < l->n; i++) {
                r = listed_node(c, src, l->v[i].name, items, out, &n);
                if (r == 1) {
                        r = 0;
                        break;
                }
                /* an item the kernel has seen announces its changes even
                 * in the first listing: a job opened by path before anyone
                 * listed its root is watched as well */
                if (r == 0 && items && node_unit(n))
                        r = listed_item(c, node_unit(n), l, &l->v[i], seq, &ch, &moved);
        }
        if (r == 0)
                r = drop_unlisted(c, src, &set, prev_seq, items, out);
        free(set.slots);
        if (r == 0) {
                u->has_data = u->ever_filled = true;
                u->error = 0;
                u->fetched_at = cache_now_of(c);
                clock_gettime(CLOCK_REALTIME, &u->fetched_wall);
        }
        announce(c, &ch);
        if (moved && c->on_moved)
                c->on_moved(c->on_moved_ctx);
        return r;
}

void cache_readahead(struct cache *c, struct node *dir)
{
        struct source *src = source_of(c, dir);
        size_t p, cursor, scanned = 0, queued = 0;

        if (!src || src->b->ops->depth != 1 || node_parent(dir) != src->root ||
            node_role(dir) != ROLE_ITEM)
                return;
        p = node_pos(dir);
        cursor = src->readahead_cursor;
        /* behind the reader (a new sweep) or far ahead (it jumped back): restart */
        if (cursor < p + 1 || cursor > p + 1 + 2 * READAHEAD)
                cursor = p + 1;
        while (queued < READAHEAD && scanned < 4 * READAHEAD && cursor < p + 1 + 2 * READAHEAD) {
                size_t pos = cursor;
                struct node *k = tree_kid_from(src->root, &pos);
                struct unit *u;

                if (!k)
                        break;
                scanned += pos - cursor + 1;
                cursor = pos + 1;
                if (node_role(k) != ROLE_ITEM || !(u = item_unit(c, k)))
                        continue;
                /* not fetched yet, and not failing (a job the list keeps but
                 * the server no longer has must not be asked again and again) */
                if (u->has_data || u->in_flight || u->error)
                        continue;
                unit_submit(c, u, LANE_READAHEAD, c->cfg.ttl);
                queued++;
        }
        src->readahead_cursor = cursor;
}
