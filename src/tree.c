/* tree: see include/jobfs/tree.h.
 *
 * Children are kept in an array in creation order (listing order, readahead
 * cursors) plus an open-addressing hash index once a directory has more than
 * INDEX_MIN of them (jobs/ of 100,000 entries stays O(1) per name). A freed
 * child leaves a hole in the array and a tombstone in the index; both are
 * compacted once holes pass a quarter of the array, so a directory whose
 * names churn (node ids that change on every reply) stays its real size.
 */
#include "jobfs/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct node {
        uint64_t ino;                   /* st_ino, never reused while mounted */
        uint64_t nlookup;               /* the kernel's references */
        struct node *parent;
        size_t pos;                     /* index in parent->kids */
        uint8_t type;                   /* enum node_type */
        uint8_t role;                   /* enum node_role */
        uint8_t vis;                    /* enum node_vis */
        uint8_t queued;                 /* bit (1 << change_kind): queued for a replay */
        bool dropped;                   /* content dropped by eviction; size and hash kept */
        uint32_t handles;               /* open directory handles */
        uint32_t lookups;               /* lookups below it waiting on the network */
        uint32_t pins;                  /* fetches of its bytes, parked reads and polls */
        struct blob *content;           /* files: owned reference */
        uint64_t size, hash;            /* of the content, kept when it is dropped */
        struct timespec mtime;          /* when the current value was first seen */
        uint64_t gen;                   /* bumped on every content change */
        uint64_t kernel_gen;            /* files: gen the kernel's pages hold;
                                         * dirs: signature of its listing */
        struct unit *unit;              /* fills this node; NULL for static ones */
        struct node **kids;             /* dirs: children in creation order, NULL = hole */
        size_t n_kids, cap_kids, n_holes;
        struct node **slots;            /* dirs of over INDEX_MIN: index over kids */
        size_t n_slots, n_tombs;
        char name[];                    /* allocated with the node: one malloc less each */
};

enum node_vis { VIS_VISIBLE, VIS_PENDING_CREATE, VIS_PENDING_DELETE, VIS_GONE };

struct tree {
        pthread_mutex_t lock;
        struct node *root;
        uint64_t next_ino;
        bool announce;          /* replay changes through the mount (not --no-notify) */
        struct timespec stamp;  /* mtime given to what an update changes */
};

/* An index slot whose node was freed: lookups go past it, inserts reuse it. */
static struct node tombstone;
#define TOMB (&tombstone)

/* 8: a shard dir holds about a dozen files and a node dir one shard; a scan
 * of 8 names is as fast as a hash, and the index costs 80 bytes a dir. */
#define INDEX_MIN 8

static size_t slot_of(const char *name, size_t n_slots)
{
        return (size_t)snap_name_hash(name) & (n_slots - 1);
}

static void index_put(struct node **slots, size_t n_slots, struct node *kid)
{
        size_t i = slot_of(kid->name, n_slots);

        while (slots[i] && slots[i] != TOMB)
                i = (i + 1) & (n_slots - 1);
        slots[i] = kid;
}

/* Rebuilds the index for want entries (at most half full), dropping tombstones. */
static int index_rebuild(struct node *dir, size_t want)
{
        size_t n = 4 * INDEX_MIN;
        struct node **slots;

        while (n / 2 < want)
                n *= 2;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < dir->n_kids; i++)
                if (dir->kids[i])
                        index_put(slots, n, dir->kids[i]);
        free(dir->slots);
        dir->slots = slots;
        dir->n_slots = n;
        dir->n_tombs = 0;
        return 0;
}

static int index_grow(struct node *dir)
{
        size_t live = dir->n_kids - dir->n_holes + 1;

        if (live <= INDEX_MIN && !dir->n_slots)
                return 0;
        if (dir->n_slots && live + dir->n_tombs <= dir->n_slots / 2)
                return 0;
        return index_rebuild(dir, live);
}

struct node *tree_child(const struct node *dir, const char *name)
{
        size_t i;

        if (!dir->n_slots) {
                for (i = 0; i < dir->n_kids; i++)
                        if (dir->kids[i] && strcmp(dir->kids[i]->name, name) == 0)
                                return dir->kids[i];
                return NULL;
        }
        for (i = slot_of(name, dir->n_slots); dir->slots[i]; i = (i + 1) & (dir->n_slots - 1))
                if (dir->slots[i] != TOMB && strcmp(dir->slots[i]->name, name) == 0)
                        return dir->slots[i];
        return NULL;
}

void tree_stamp(struct tree *t)
{
        clock_gettime(CLOCK_REALTIME, &t->stamp);
}

static struct node *node_alloc(struct tree *t, const char *name, enum node_type type,
                               enum node_role role)
{
        size_t len = strlen(name);
        struct node *n = calloc(1, sizeof(*n) + len + 1);

        if (!n)
                return NULL;
        memcpy(n->name, name, len + 1);
        n->ino = t->next_ino++;
        n->type = (uint8_t)type;
        n->role = (uint8_t)role;
        n->vis = VIS_VISIBLE;
        n->mtime = t->stamp;
        return n;
}

int tree_new(bool announce, struct tree **ret)
{
        struct tree *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        t->next_ino = 1;                /* the root is 1, as FUSE_ROOT_ID */
        t->announce = announce;
        tree_stamp(t);
        t->root = node_alloc(t, "", NODE_DIR, ROLE_ROOT);
        if (!t->root) {
                pthread_mutex_destroy(&t->lock);
                free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

static void node_free(struct node *n)
{
        for (size_t i = 0; i < n->n_kids; i++)
                if (n->kids[i])
                        node_free(n->kids[i]);
        blob_unref(n->content);
        free(n->kids);
        free(n->slots);
        free(n);
}

void tree_free(struct tree *t)
{
        if (!t)
                return;
        node_free(t->root);
        pthread_mutex_destroy(&t->lock);
        free(t);
}

pthread_mutex_t *tree_mutex(struct tree *t)
{
        return &t->lock;
}

struct node *tree_root(struct tree *t)
{
        return t->root;
}

uint64_t tree_nodeid(const struct tree *t, const struct node *n)
{
        return n == t->root ? 1 : (uint64_t)(uintptr_t)n;
}

struct node *tree_from_nodeid(struct tree *t, uint64_t nodeid)
{
        return nodeid == 1 ? t->root : (struct node *)(uintptr_t)nodeid;
}

int tree_add(struct tree *t, struct node *dir, const char *name, enum node_type type,
             enum node_role role, struct node **ret)
{
        struct node *n;

        if (tree_child(dir, name))
                return -EEXIST;
        if (dir->n_kids == dir->cap_kids) {
                size_t cap = dir->cap_kids ? dir->cap_kids * 2 : 4;
                struct node **v = realloc(dir->kids, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                dir->kids = v;
                dir->cap_kids = cap;
        }
        if (index_grow(dir) < 0)
                return -ENOMEM;
        n = node_alloc(t, name, type, role);
        if (!n)
                return -ENOMEM;
        n->parent = dir;
        n->pos = dir->n_kids;
        dir->kids[dir->n_kids++] = n;
        if (dir->n_slots)
                index_put(dir->slots, dir->n_slots, n);
        *ret = n;
        return 0;
}

const char *node_name(const struct node *n) { return n->name; }
struct node *node_parent(const struct node *n) { return n->parent; }
enum node_role node_role(const struct node *n) { return (enum node_role)n->role; }
bool node_is_dir(const struct node *n) { return n->type == NODE_DIR; }
struct unit *node_unit(const struct node *n) { return n->unit; }
void node_set_unit(struct node *n, struct unit *u) { n->unit = u; }
bool node_visible(const struct node *n) { return n->vis != VIS_GONE; }
bool node_hidden_from_replay(const struct node *n) { return n->vis == VIS_PENDING_CREATE; }
bool node_kernel_holds(const struct node *n) { return n->nlookup > 0; }
size_t node_pos(const struct node *n) { return n->pos; }
size_t tree_kids(const struct node *dir) { return dir->n_kids - dir->n_holes; }

void node_attr(const struct node *n, struct node_attr *ret)
{
        ret->ino = n->ino;
        ret->type = (enum node_type)n->type;
        ret->size = n->size;
        ret->mtime = n->mtime;
        ret->has_content = n->content != NULL || n->type == NODE_DIR;
}

struct blob *node_content(const struct node *n)
{
        return blob_ref(n->content);
}

static uint64_t content_hash(const struct blob *b)
{
        uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

        for (size_t i = 0; b && i < b->len; i++)
                h = (h ^ (unsigned char)b->data[i]) * 1099511628211ULL;
        return h;
}

/* Whether b is the value n holds (or held, before its content was dropped). */
static bool same_content(const struct node *n, const struct blob *b, uint64_t hash)
{
        if (n->content)
                return blob_equal(n->content, b);
        return n->dropped && b && n->size == b->len && n->hash == hash;
}

/* Sets content; true when it is a new value (then gen and mtime move). */
static bool set_content(struct node *n, struct blob *b, const struct timespec *stamp)
{
        uint64_t hash = content_hash(b);
        bool changed = !same_content(n, b, hash);

        blob_unref(n->content);
        n->content = blob_ref(b);
        n->dropped = false;
        n->size = b ? b->len : 0;
        n->hash = hash;
        if (changed) {
                n->gen++;
                n->mtime = *stamp;
        }
        return changed;
}

void node_set_content(struct node *n, struct blob *b)
{
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        set_content(n, b, &now);
        blob_unref(b);
}

int node_path(const struct node *n, char *buf, size_t size)
{
        size_t len = 0;

        /* measure, then fill from the end */
        for (const struct node *p = n; p && p->parent; p = p->parent)
                len += strlen(p->name) + 1;
        if (len > 0)
                len--;          /* one '/' fewer than names */
        if (len + 1 > size)
                return -ENAMETOOLONG;
        buf[len] = '\0';
        for (const struct node *p = n; p && p->parent; p = p->parent) {
                size_t l = strlen(p->name);

                len -= l;
                memcpy(buf + len, p->name, l);
                if (len > 0)
                        buf[--len] = '/';
        }
        return 0;
}

struct node *node_top(const struct node *n)
{
        if (!n->parent)
                return NULL;
        while (n->parent->parent)
                n = n->parent;
        return (struct node *)n;
}

/* --- lifetimes --------------------------------------------------------- */

/* Whether anything but the tree itself still needs n or a node below it. */
static bool subtree_busy(const struct node *n)
{
        if (n->nlookup > 0 || n->queued || n->handles > 0 || n->lookups > 0 || n->pins > 0)
                return true;
        /* a job or run directory is its unit's while the unit lives: a group
         * the listing dropped keeps it (software/NAME/KEY of a cached run) */
        if (n->role == ROLE_ITEM && n->unit)
                return true;
        for (size_t i = 0; i < n->n_kids; i++)
                if (n->kids[i] && subtree_busy(n->kids[i]))
                        return true;
        return false;
}

/* Drops holes and tombstones once they are a quarter of the directory. */
static void compact(struct node *dir)
{
        size_t j = 0;

        if (dir->n_holes * 4 < dir->n_kids && dir->n_holes < 64)
                return;
        for (size_t i = 0; i < dir->n_kids; i++) {
                if (!dir->kids[i])
                        continue;
                dir->kids[i]->pos = j;
                dir->kids[j++] = dir->kids[i];
        }
        dir->n_kids = j;
        dir->n_holes = 0;
        if (dir->n_slots && index_rebuild(dir, j) < 0)
                return;         /* the old index (with tombstones) still works */
}

/* Takes n out of its parent's array and index and frees its subtree; the
 * array is compacted now, or by the caller once its loop over it is done. */
static void unlink_free_nocompact(struct node *n)
{
        struct node *dir = n->parent;

        dir->kids[n->pos] = NULL;
        dir->n_holes++;
        if (dir->n_slots) {
                size_t i = slot_of(n->name, dir->n_slots);

                while (dir->slots[i] != n)
                        i = (i + 1) & (dir->n_slots - 1);
                dir->slots[i] = TOMB;
                dir->n_tombs++;
        }
        node_free(n);
}

static void unlink_free(struct node *n)
{
        struct node *dir = n->parent;

        unlink_free_nocompact(n);
        compact(dir);
}

static bool reclaimable(const struct node *n)
{
        /* an item directory is the cache's while its unit lives */
        return n->vis == VIS_GONE && (n->role != ROLE_ITEM || !n->unit) && n->parent &&
               n->parent->handles == 0 && !subtree_busy(n);
}

/* Frees n if it vanished and nothing holds it, then its parent the same way. */
static void reclaim_up(struct node *n)
{
        while (n && reclaimable(n)) {
                struct node *p = n->parent;

                unlink_free(n);
                n = p;
        }
}

/* Frees every reclaimable vanished child of dir. */
static void reclaim_kids(struct node *dir)
{
        for (size_t i = 0; i < dir->n_kids; i++)
                if (dir->kids[i] && reclaimable(dir->kids[i]))
                        unlink_free_nocompact(dir->kids[i]);
        compact(dir);
}

void tree_reclaim(struct tree *t, struct node *dir)
{
        (void)t;
        if (dir->handles == 0)
                reclaim_kids(dir);
}

bool tree_ref(struct tree *t, struct node *n)
{
        (void)t;
        return n->nlookup++ == 0;
}

bool tree_forget(struct tree *t, struct node *n, uint64_t count)
{
        (void)t;
        /* the kernel never forgets more than it was given (passthrough_ll's
         * unref_inode asserts the same); a short count is our bug */
        if (count > n->nlookup)
                count = n->nlookup;
        n->nlookup -= count;
        if (n->nlookup > 0)
                return false;
        reclaim_up(n);
        return true;
}

void tree_dir_open(struct node *dir)
{
        dir->handles++;
}

void tree_dir_close(struct tree *t, struct node *dir)
{
        (void)t;
        if (dir->handles > 0 && --dir->handles == 0)
                reclaim_kids(dir);
}

int tree_each_child(const struct node *dir, int (*fn)(void *ctx, struct node *kid), void *ctx)
{
        for (size_t i = 0; i < dir->n_kids; i++) {
                struct node *k = dir->kids[i];
                int r;

                if (!k || k->vis == VIS_GONE)
                        continue;
                r = fn(ctx, k);
                if (r)
                        return r;
        }
        return 0;
}

struct node *tree_kid_from(const struct node *dir, size_t *pos)
{
        for (size_t i = *pos; i < dir->n_kids; i++) {
                if (dir->kids[i] && dir->kids[i]->vis != VIS_GONE) {
                        *pos = i;
                        return dir->kids[i];
                }
        }
        *pos = dir->n_kids;
        return NULL;
}

bool tree_kernel_copy_valid(struct node *n)
{
        uint64_t sig = n->gen;
        bool same;

        if (n->type == NODE_DIR) {
                sig = 1469598103934665603ULL;   /* FNV-1a over the inodes shown */
                for (size_t i = 0; i < n->n_kids; i++)
                        if (n->kids[i] && n->kids[i]->vis != VIS_GONE)
                                sig = (sig ^ n->kids[i]->ino) * 1099511628211ULL;
        }
        same = n->kernel_gen == sig;
        n->kernel_gen = sig;
        return same;
}

/* --- the diff ---------------------------------------------------------- */

int changes_push(struct changes *c, enum change_kind kind, struct node *n)
{
        uint8_t bit = (uint8_t)(1u << kind);

        if (!c)
                return 0;       /* first sight: nothing to announce */
        /* already on its way: the replay reads the node's state when it gets
         * there, so a job changing every poll cannot grow the queue */
        if (n->queued & bit)
                return 0;
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                struct change *v = realloc(c->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                c->v = v;
                c->cap = cap;
        }
        c->v[c->n++] = (struct change){ .kind = kind, .node = n };
        n->queued |= bit;       /* recorded: the node stays until the replay is done */
        return 0;
}

void changes_release(struct tree *t, struct changes *c)
{
        for (size_t i = 0; i < c->n; i++) {
                tree_replay_abandoned(c->v[i].node, c->v[i].kind);
                tree_dequeue(t, c->v[i].node, c->v[i].kind);
        }
        changes_clear(c);
}

void changes_clear(struct changes *c)
{
        free(c->v);
        memset(c, 0, sizeof(*c));
}

/* Whether the kernel may hold n or list it: then watchers may care. */
static bool kernel_may_see(const struct node *n)
{
        return n->nlookup > 0 || (n->parent && n->parent->nlookup > 0);
}

static void subtree_gone(struct node *n)
{
        n->vis = VIS_GONE;
        for (size_t i = 0; i < n->n_kids; i++)
                if (n->kids[i])
                        subtree_gone(n->kids[i]);
}

int tree_remove(struct tree *t, struct node *n, struct changes *out)
{
        if (n->vis == VIS_GONE)
                return 0;
        for (size_t i = 0; i < n->n_kids; i++)
                if (n->kids[i])
                        subtree_gone(n->kids[i]);
        if (n->parent)
                n->parent->mtime = t->stamp;
        if (!out || n->vis == VIS_PENDING_CREATE || !kernel_may_see(n)) {
                n->vis = VIS_GONE;
                return 0;
        }
        n->vis = t->announce && n->parent->nlookup > 0 ? VIS_PENDING_DELETE : VIS_GONE;
        return changes_push(out, CHANGE_DELETE, n);
}

int tree_reveal(struct tree *t, struct node *n, struct changes *out)
{
        bool seen = n->parent && n->parent->nlookup > 0;

        if (n->vis == VIS_VISIBLE || n->vis == VIS_PENDING_CREATE)
                return 0;
        if (n->vis == VIS_PENDING_DELETE) {
                n->vis = VIS_VISIBLE;   /* came back before the replay: no event */
                return 0;
        }
        n->mtime = t->stamp;
        if (n->parent)
                n->parent->mtime = t->stamp;
        n->vis = out && t->announce && seen ? VIS_PENDING_CREATE : VIS_VISIBLE;
        return seen ? changes_push(out, CHANGE_CREATE, n) : 0;
}

static enum node_type type_of(const struct snap *s)
{
        switch (s->type) {
        case SNAP_DIR:
                return NODE_DIR;
        case SNAP_LINK:
                return NODE_LINK;
        case SNAP_LAZY:
                return NODE_LAZY;
        case SNAP_FILE:
        default:
                return NODE_FILE;
        }
}

static bool types_agree(const struct node *n, const struct snap *s)
{
        enum node_type want = type_of(s);

        /* a lazy file once fetched is a file; a run's content.zip stays put */
        return n->type == want || (n->type == NODE_FILE && want == NODE_LAZY) ||
               (n->type == NODE_LAZY && want == NODE_FILE);
}

static int apply_dir(struct tree *t, struct node *dir, const struct snap *snap, struct unit *u,
                     struct changes *out, bool quiet_new);

/* A name whose type changed (a file that became a directory): the old node
 * goes; if nothing holds it, its name is free for the new one at once. */
static int retype(struct tree *t, struct node **n, struct changes *out)
{
        int r = tree_remove(t, *n, out);

        if (r < 0)
                return r;
        if (!reclaimable(*n))
                return 1;       /* held: the new entry comes once the kernel lets go */
        unlink_free(*n);
        *n = NULL;
        return 0;
}

/* One snapshot entry against the existing child of the same name (or none). */
static int apply_entry(struct tree *t, struct node *dir, const struct snap *s, struct unit *u,
                       struct changes *out, bool quiet_new)
{
        struct node *n = tree_child(dir, s->name);
        bool created = false;
        int r;

        if (n && !types_agree(n, s)) {
                r = retype(t, &n, out);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        if (!n) {
                r = tree_add(t, dir, s->name, type_of(s), ROLE_PLAIN, &n);
                if (r < 0)
                        return r;
                n->vis = VIS_GONE;
                n->unit = u;
        }
        if (n->vis == VIS_GONE)
                created = true;
        if (s->type == SNAP_LAZY && n->type == NODE_LAZY && n->content) {
                /* fetched when first used; a refetch of a live item may have
                 * changed it (a running job's folder), so it is asked again */
                n->dropped = false;
                blob_unref(n->content);
                n->content = NULL;
        }
        if (s->type == SNAP_FILE || s->type == SNAP_LINK) {
                if (n->type == NODE_LAZY)
                        n->type = NODE_FILE;
                if (set_content(n, s->content, &t->stamp) && !created && kernel_may_see(n)) {
                        r = changes_push(out, CHANGE_MODIFY, n);
                        if (r < 0)
                                return r;
                }
        }
        if (s->type == SNAP_DIR) {
                r = apply_dir(t, n, s, u, out, quiet_new);
                if (r < 0)
                        return r;
        }
        return tree_reveal(t, n, created && quiet_new ? NULL : out);
}

static int apply_dir(struct tree *t, struct node *dir, const struct snap *snap, struct unit *u,
                     struct changes *out, bool quiet_new)
{
        bool gone = false;
        int r;

        for (size_t i = 0; i < snap->n_children; i++) {
                r = apply_entry(t, dir, snap->children[i], u, out, quiet_new);
                if (r < 0)
                        return r;
        }
        /* linear: snap_child is a hash lookup past 16 entries */
        for (size_t i = 0; i < dir->n_kids; i++) {
                struct node *k = dir->kids[i];

                if (k && k->unit == u && k->vis != VIS_GONE && !snap_child(snap, k->name)) {
                        r = tree_remove(t, k, out);
                        if (r < 0)
                                return r;
                        gone = true;
                }
        }
        if (gone)
                reclaim_kids(dir);
        return 0;
}

int tree_apply(struct tree *t, struct node *dir, const struct snap *snap, struct unit *u,
               struct changes *out)
{
        tree_stamp(t);
        return apply_dir(t, dir, snap, u, out, false);
}

int tree_refill(struct tree *t, struct node *dir, const struct snap *snap, struct unit *u,
                struct changes *out)
{
        tree_stamp(t);
        return apply_dir(t, dir, snap, u, out, true);
}

size_t tree_unit_bytes(const struct node *dir, const struct unit *u)
{
        size_t bytes = 0;

        for (size_t i = 0; i < dir->n_kids; i++) {
                const struct node *k = dir->kids[i];

                if (!k || k->unit != u)
                        continue;
                bytes += sizeof(*k) + strlen(k->name) + 1 + (k->content ? k->content->len : 0) +
                         k->cap_kids * sizeof(k->kids[0]) + k->n_slots * sizeof(k->slots[0]);
                bytes += tree_unit_bytes(k, u);
        }
        return bytes;
}

int tree_prune(struct tree *t, struct node *dir)
{
        (void)t;
        for (size_t i = 0; i < dir->n_kids; i++)
                if (dir->kids[i] && subtree_busy(dir->kids[i]))
                        return -EBUSY;
        if (dir->handles > 0)
                return -EBUSY;
        for (size_t i = 0; i < dir->n_kids; i++)
                if (dir->kids[i])
                        node_free(dir->kids[i]);
        free(dir->kids);
        free(dir->slots);
        dir->kids = dir->slots = NULL;
        dir->n_kids = dir->cap_kids = dir->n_holes = dir->n_slots = dir->n_tombs = 0;
        return 0;
}

size_t tree_prune_unheld(struct tree *t, struct node *dir)
{
        size_t freed = 0;

        if (dir->handles > 0)
                return 0;
        for (size_t i = 0; i < dir->n_kids; i++) {
                struct node *k = dir->kids[i];

                if (!k)
                        continue;
                if (!subtree_busy(k)) {
                        freed++;
                        unlink_free_nocompact(k);
                } else if (k->type == NODE_DIR) {
                        freed += tree_prune_unheld(t, k);
                }
        }
        compact(dir);
        return freed;
}

size_t tree_drop_content(struct node *dir)
{
        size_t freed = 0;

        for (size_t i = 0; i < dir->n_kids; i++) {
                struct node *k = dir->kids[i];

                if (!k)
                        continue;
                /* a final job's wait file keeps its few bytes: its job is not
                 * polled any more, and a waiter must still get them */
                if (k->content && k->role != ROLE_WAIT) {
                        freed += k->content->len;
                        blob_unref(k->content);
                        k->content = NULL;
                        k->dropped = true;
                }
                freed += tree_drop_content(k);
        }
        return freed;
}

int tree_unlink_item(struct tree *t, struct node *dir)
{
        struct node *parent = dir->parent;

        (void)t;
        if (dir->vis != VIS_GONE || !parent || parent->handles > 0 || dir->unit ||
            subtree_busy(dir))
                return -EBUSY;
        unlink_free(dir);
        reclaim_up(parent);     /* a group that only this item kept */
        return 0;
}

void tree_pin(struct node *n)
{
        n->pins++;
}

void tree_unpin(struct tree *t, struct node *n)
{
        (void)t;
        if (n->pins > 0 && --n->pins == 0)
                reclaim_up(n);
}

/* --- replays ----------------------------------------------------------- */

void tree_dequeue(struct tree *t, struct node *n, enum change_kind kind)
{
        (void)t;
        n->queued &= (uint8_t)~(1u << kind);
        if (!n->queued)
                reclaim_up(n);
}

bool tree_change_pending(const struct node *n, enum change_kind kind)
{
        return (kind == CHANGE_CREATE && n->vis == VIS_PENDING_CREATE) ||
               (kind == CHANGE_DELETE && n->vis == VIS_PENDING_DELETE);
}

int tree_replayed(struct node *n, enum change_kind kind)
{
        if (!tree_change_pending(n, kind))
                return kind == CHANGE_CREATE ? -EEXIST : -ENOENT;
        n->vis = kind == CHANGE_CREATE ? VIS_VISIBLE : VIS_GONE;
        return 0;
}

void tree_replay_abandoned(struct node *n, enum change_kind kind)
{
        if (tree_change_pending(n, kind))
                n->vis = kind == CHANGE_CREATE ? VIS_VISIBLE : VIS_GONE;
}

void tree_lookup_begin(struct node *dir)
{
        dir->lookups++;
}

void tree_lookup_end(struct node *dir)
{
        if (dir->lookups > 0)
                dir->lookups--;
}

bool tree_lookups_pending(const struct node *dir)
{
        return dir->lookups > 0;
}
