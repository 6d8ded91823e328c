/* fuzz_common: checks shared by the libFuzzer harnesses (header-only).
 *
 * A harness fails by abort(), which libFuzzer reports as a crash with the
 * input saved; check() says which invariant broke first, on stderr.
 */
#pragma once
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/backend.h"
#include "jobfs/blob.h"
#include "jobfs/log.h"
#include "jobfs/snapshot.h"

#define check(expr)                                                                      \
        do {                                                                             \
                if (!(expr)) {                                                           \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,       \
                                __LINE__, #expr);                                        \
                        abort();                                                         \
                }                                                                        \
        } while (0)

/* Something no parser hands back: shows an output parameter was written on failure. */
#define UNTOUCHED ((void *)(uintptr_t)0x5a5a5a5a)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        log_max_level = LOG_LVL_ERROR;  /* log_info on every skipped name would drown the output */
        return 0;
}

static inline int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks one directory level and below; returns the entries under dir. */
static inline size_t check_dir(const struct snap *dir, const size_t *count)
{
        size_t total = 0;
        char **names;

        check(dir->is_dir && !dir->content);
        check(dir->n_children <= dir->cap_children);
        check(dir->n_children == 0 || dir->children);
        if (dir->n_children == 0)
                return 0;
        names = malloc(dir->n_children * sizeof(*names));
        check(names);
        for (size_t i = 0; i < dir->n_children; i++) {
                const struct snap *c = dir->children[i];

                check(c && c->name && c->count == count);
                check(snap_name_ok(c->name, strlen(c->name)));
                names[i] = c->name;
                if (c->is_dir) {
                        total += check_dir(c, count);
                } else if (c->type == SNAP_LAZY) {
                        check(!c->content && c->n_children == 0);     /* bytes come later */
                } else {
                        check(c->content && c->n_children == 0 && c->content->refs >= 1);
                        check(c->content->data[c->content->len] == '\0');
                }
                total++;
        }
        /* no two entries of one directory share a name */
        qsort(names, dir->n_children, sizeof(*names), cmp_names);
        for (size_t i = 1; i < dir->n_children; i++)
                check(strcmp(names[i - 1], names[i]) != 0);
        free(names);
        return total;
}

/* Checks a whole snapshot: safe unique names, consistent shape, the entry
 * count right and within SNAP_MAX_ENTRIES. */
static inline void check_snap(const struct snap *top)
{
        size_t total;

        check(top && !top->name && top->count);
        total = check_dir(top, top->count);
        check(total == *top->count);
        check(total <= SNAP_MAX_ENTRIES);
}

/* Checks that top has file `name` holding exactly len bytes of data. */
static inline void check_file_bytes(const struct snap *top, const char *name, const void *data, size_t len)
{
        const struct snap *f = snap_child(top, name);

        check(f && !f->is_dir && f->content);
        check(f->content->len == len);
        check(len == 0 || memcmp(f->content->data, data, len) == 0);
}

/* Checks a name list from a list parser, then frees it. */
static inline void check_names(struct backend_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                check(l->v[i].name && snap_name_ok(l->v[i].name, strlen(l->v[i].name)));
        check(l->n <= l->cap);
        backend_list_clear(l);
}
