/* tree: see include/jobfs/tree.h.
 *
 * Children are kept in an array (stable readdir offsets) plus an open-
 * addressing hash index (lookups in a jobs/ of 100,000 entries stay O(1)).
 * Names are never removed from a directory while mounted, so the index needs
 * no deletion.
 */
#include "jobfs/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t name_hash(const char *s)
{
        uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static void index_put(struct node **slots, size_t n_slots, struct node *kid)
{
        size_t i = name_hash(kid->name) & (n_slots - 1);

        while (slots[i])
                i = (i + 1) & (n_slots - 1);
        slots[i] = kid;
}

/* 8: a shard dir holds about a dozen files and a node dir one shard; a scan
 * of 8 names is as fast as a hash, and the index costs 80 bytes a dir. */
#define INDEX_MIN 8

/* Keeps the index under 50% full, once a dir has more than INDEX_MIN kids. */
static int index_grow(struct node *dir)
{
        size_t n = dir->n_slots ? dir->n_slots * 2 : 4 * INDEX_MIN;
        struct node **slots;

        if (dir->n_kids + 1 <= INDEX_MIN || (dir->n_slots && dir->n_kids + 1 <= dir->n_slots / 2))
                return 0;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < dir->n_kids; i++)
                index_put(slots, n, dir->kids[i]);
        free(dir->slots);
        dir->slots = slots;
        dir->n_slots = n;
        return 0;
}

struct node *tree_child(const struct node *dir, const char *name)
{
        size_t i;

        if (!dir->n_slots) {
                for (i = 0; i < dir->n_kids; i++)
                        if (strcmp(dir->kids[i]->name, name) == 0)
                                return dir->kids[i];
                return NULL;
        }
        i = name_hash(name) & (dir->n_slots - 1);
        for (; dir->slots[i]; i = (i + 1) & (dir->n_slots - 1))
                if (strcmp(dir->slots[i]->name, name) == 0)
                        return dir->slots[i];
        return NULL;
}

void node_set_mtime_now(struct node *n)
{
        clock_gettime(CLOCK_REALTIME, &n->mtime);
}

void tree_stamp(struct tree *t)
{
        clock_gettime(CLOCK_REALTIME, &t->stamp);
}

static struct node *node_alloc(struct tree *t, const char *name, bool is_dir, enum node_role role)
{
        size_t len = strlen(name);
        struct node *n = calloc(1, sizeof(*n) + len + 1);

        if (!n)
                return NULL;
        memcpy(n->name, name, len + 1);
        n->ino = t->next_ino++;
        n->is_dir = is_dir;
        n->role = role;
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
        t->root = node_alloc(t, "", true, ROLE_ROOT);
        if (!t->root) {
                free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

static void node_free(struct node *n)
{
        for (size_t i = 0; i < n->n_kids; i++)
                node_free(n->kids[i]);
        blob_unref(n->content);
        free(n->kids);
        free(n->slots);
        free(n);
}

static bool subtree_held(const struct node *n)
{
        for (size_t i = 0; i < n->n_kids; i++)
                if (n->kids[i]->nlookup > 0 || subtree_held(n->kids[i]))
                        return true;
        return false;
}

int tree_prune(struct node *dir)
{
        if (subtree_held(dir))
                return -EBUSY;
        for (size_t i = 0; i < dir->n_kids; i++)
                node_free(dir->kids[i]);
        free(dir->kids);
        free(dir->slots);
        dir->kids = dir->slots = NULL;
        dir->n_kids = dir->cap_kids = dir->n_slots = 0;
        return 0;
}

void tree_free(struct tree *t)
{
        if (!t)
                return;
        node_free(t->root);
        pthread_mutex_destroy(&t->lock);
        free(t);
}

int tree_add(struct tree *t, struct node *dir, const char *name, bool is_dir,
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
        n = node_alloc(t, name, is_dir, role);
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

bool node_visible(const struct node *n)
{
        return n->vis != VIS_GONE;
}

int changes_push(struct changes *c, enum change_kind kind, struct node *n)
{
        if (!c)
                return 0;       /* first sight: nothing to announce */
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                struct change *v = realloc(c->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                c->v = v;
                c->cap = cap;
        }
        c->v[c->n++] = (struct change){ .kind = kind, .node = n };
        return 0;
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
                subtree_gone(n->kids[i]);
}

int tree_remove(struct tree *t, struct node *n, struct changes *out)
{
        if (n->vis == VIS_GONE)
                return 0;
        for (size_t i = 0; i < n->n_kids; i++)
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
        n->mtime = t->stamp;
        if (n->parent)
                n->parent->mtime = t->stamp;
        n->vis = out && t->announce && seen ? VIS_PENDING_CREATE : VIS_VISIBLE;
        return seen ? changes_push(out, CHANGE_CREATE, n) : 0;
}

static int apply_dir(struct tree *t, struct node *dir, const struct snap *snap, struct unit *unit,
                     struct changes *out);

/* One snapshot entry against the existing child of the same name (or none). */
static int apply_entry(struct tree *t, struct node *dir, const struct snap *s, struct unit *unit,
                       struct changes *out)
{
        struct node *n = tree_child(dir, s->name);
        bool created = false;
        int r;

        if (n && n->is_dir != s->is_dir) {
                /* names keep the type first seen (a shard field never turns
                 * into a directory in these APIs); skip the odd entry */
                return 0;
        }
        if (!n) {
                r = tree_add(t, dir, s->name, s->is_dir, ROLE_PLAIN, &n);
                if (r < 0)
                        return r;
                n->vis = VIS_GONE;
                n->unit = unit;
                created = true;
        }
        if (n->vis == VIS_GONE || n->vis == VIS_PENDING_DELETE) {
                if (n->vis == VIS_PENDING_DELETE)
                        n->vis = VIS_VISIBLE;   /* came back before the replay: no event */
                else
                        created = true;
        }
        if (!s->is_dir && !blob_equal(n->content, s->content)) {
                blob_unref(n->content);
                n->content = blob_ref(s->content);
                n->gen++;
                n->mtime = t->stamp;
                if (!created && kernel_may_see(n)) {
                        r = changes_push(out, CHANGE_MODIFY, n);
                        if (r < 0)
                                return r;
                }
        }
        if (s->is_dir) {
                r = apply_dir(t, n, s, unit, out);
                if (r < 0)
                        return r;
        }
        return created ? tree_reveal(t, n, out) : 0;
}

static int apply_dir(struct tree *t, struct node *dir, const struct snap *snap, struct unit *unit,
                     struct changes *out)
{
        int r;

        for (size_t i = 0; i < snap->n_children; i++) {
                r = apply_entry(t, dir, snap->children[i], unit, out);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < dir->n_kids; i++) {
                struct node *k = dir->kids[i];

                if (k->unit == unit && !snap_child(snap, k->name)) {
                        r = tree_remove(t, k, out);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int tree_apply(struct tree *t, struct node *dir, const struct snap *snap, struct unit *unit,
               struct changes *out)
{
        tree_stamp(t);
        return apply_dir(t, dir, snap, unit, out);
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
