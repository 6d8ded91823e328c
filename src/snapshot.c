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

const struct snap *snap_child(const struct snap *dir, const char *name)
{
        for (size_t i = 0; i < dir->n_children; i++)
                if (strcmp(dir->children[i]->name, name) == 0)
                        return dir->children[i];
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
        return 0;
}

int snap_add_text(struct snap *parent, const char *name, const char *text, size_t len)
{
        return snap_add_file(parent, name, len ? blob_new_line(text, len) : blob_new("", 0));
}
