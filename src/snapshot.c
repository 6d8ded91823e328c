/* snapshot: see include/jobfs/snapshot.h. */
#include "jobfs/snapshot.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct snap *snap_new(void)
{
        struct snap *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->is_dir = true;
        s->type = SNAP_DIR;
        s->count = calloc(1, sizeof(*s->count));
        if (!s->count) {
                free(s);
                return NULL;
        }
        return s;
}

static void snap_free_children(struct snap *s)
{
        for (size_t i = 0; i < s->n_children; i++) {
                struct snap *c = s->children[i];

                snap_free_children(c);
                blob_unref(c->content);
                free(c->name);
                free(c);
        }
        free(s->children);
        free(s->slots);
}

void snap_free(struct snap *s)
{
        if (!s)
                return;
        snap_free_children(s);
        blob_unref(s->content);
        free(s->name);
        free(s->count);
        free(s);
}

/* Checks one UTF-8 sequence at p (n bytes left); returns its length or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
        size_t len;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                len = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = p[0] & 0x0f;
        } else if ((p[0] & 0xf8) == 0xf0) {
                len = 4;
                cp = p[0] & 0x07;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates and values past U+10FFFF */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return len;
}

bool snap_name_ok(const char *name, size_t len)
{
        const unsigned char *p = (const unsigned char *)name;

        if (!name || len == 0 || len > SNAP_NAME_MAX)
                return false;
        if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
                return false;
        for (size_t i = 0; i < len;) {
                size_t n;

                if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
                        return false;
                n = utf8_seq(p + i, len - i);
                if (n == 0)
                        return false;
                /* C1 controls, U+0080..U+009F (0xc2 0x80..0x9f): CSI and friends */
                if (n == 2 && p[i] == 0xc2 && p[i + 1] <= 0x9f)
                        return false;
                i += n;
        }
        return true;
}

unsigned long long snap_name_hash(const char *name)
{
        unsigned long long h = 1469598103934665603ULL;  /* FNV-1a */

        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
                h = (h ^ *p) * 1099511628211ULL;
        return h;
}

static void index_put(struct snap **slots, size_t n_slots, struct snap *c)
{
        size_t i = (size_t)snap_name_hash(c->name) & (n_slots - 1);

        while (slots[i])
                i = (i + 1) & (n_slots - 1);
        slots[i] = c;
}

/* Keeps the index at most half full once a dir outgrows SNAP_INDEX_MIN. */
static int index_grow(struct snap *dir)
{
        size_t want = dir->n_children + 1, n;
        struct snap **slots;

        if (want <= SNAP_INDEX_MIN || want <= dir->n_slots / 2)
                return 0;
        n = dir->n_slots ? dir->n_slots * 2 : 4 * SNAP_INDEX_MIN;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < dir->n_children; i++)
                index_put(slots, n, dir->children[i]);
        free(dir->slots);
        dir->slots = slots;
        dir->n_slots = n;
        return 0;
}

const struct snap *snap_child(const struct snap *dir, const char *name)
{
        size_t i;

        if (!dir->n_slots) {
                for (i = 0; i < dir->n_children; i++)
                        if (strcmp(dir->children[i]->name, name) == 0)
                                return dir->children[i];
                return NULL;
        }
        i = (size_t)snap_name_hash(name) & (dir->n_slots - 1);
        for (; dir->slots[i]; i = (i + 1) & (dir->n_slots - 1))
                if (strcmp(dir->slots[i]->name, name) == 0)
                        return dir->slots[i];
        return NULL;
}

static int snap_add(struct snap *parent, const char *name, struct snap **ret)
{
        struct snap *c;

        if (!snap_name_ok(name, strlen(name)))
                return -EINVAL;
        if (*parent->count >= SNAP_MAX_ENTRIES || parent->n_children >= SNAP_DIR_MAX)
                return -E2BIG;
        if (snap_child(parent, name))
                return -EEXIST;
        if (index_grow(parent) < 0)
                return -ENOMEM;
        if (parent->n_children == parent->cap_children) {
                size_t cap = parent->cap_children ? parent->cap_children * 2 : 8;
                struct snap **v = realloc(parent->children, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                parent->children = v;
                parent->cap_children = cap;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->name = strdup(name);
        if (!c->name) {
                free(c);
                return -ENOMEM;
        }
        c->count = parent->count;
        parent->children[parent->n_children++] = c;
        if (parent->n_slots)
                index_put(parent->slots, parent->n_slots, c);
        (*parent->count)++;
        *ret = c;
        return 0;
}

int snap_add_dir(struct snap *parent, const char *name, struct snap **ret)
{
        struct snap *c;
        int r = snap_add(parent, name, &c);

        if (r < 0)
                return r;
        c->is_dir = true;
        c->type = SNAP_DIR;
        if (ret)
                *ret = c;
        return 0;
}

int snap_add_file(struct snap *parent, const char *name, struct blob *content)
{
        struct snap *c;
        int r;

        if (!content)
                return -ENOMEM;
        r = snap_add(parent, name, &c);
        if (r < 0) {
                blob_unref(content);
                return r;
        }
        c->content = content;
        c->type = SNAP_FILE;
        return 0;
}

int snap_add_text(struct snap *parent, const char *name, const char *text, size_t len)
{
        return snap_add_file(parent, name, len ? blob_new_line(text, len) : blob_new("", 0));
}

int snap_add_link(struct snap *parent, const char *name, const char *target)
{
        size_t len = strlen(target);
        struct snap *c;
        struct blob *b;
        int r;

        if (len == 0 || len > 4095)
                return -EINVAL;
        b = blob_new(target, len);
        if (!b)
                return -ENOMEM;
        r = snap_add(parent, name, &c);
        if (r < 0) {
                blob_unref(b);
                return r;
        }
        c->content = b;
        c->type = SNAP_LINK;
        return 0;
}

int snap_add_lazy(struct snap *parent, const char *name)
{
        struct snap *c;
        int r = snap_add(parent, name, &c);

        if (r < 0)
                return r;
        c->type = SNAP_LAZY;
        return 0;
}
