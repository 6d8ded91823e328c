/* snapcheck: checks on snapshots by path, for the backend parser tests.
 *
 * CHECK_FILE(top, "node/0/stdout", bytes, len) checks that the path is a
 * file holding exactly those bytes; CHECK_TEXT(top, path, "Completed\n") the
 * same with a C string; CHECK_ABSENT(top, path) that no entry has that path
 * (a field the server did not send is an absent file, not an empty one).
 */
#pragma once
#include "check.h"
#include "jobfs/backend.h"
#include "jobfs/snapshot.h"

/* The entry at a '/'-separated path below top, or NULL. */
static inline const struct snap *snap_at(const struct snap *top, const char *path)
{
        char buf[1024];
        const struct snap *s = top;
        char *save = NULL;

        if (!top || strlen(path) >= sizeof(buf))
                return NULL;
        strcpy(buf, path);
        for (char *tok = strtok_r(buf, "/", &save); tok && s; tok = strtok_r(NULL, "/", &save))
                s = s->is_dir ? snap_child(s, tok) : NULL;
        return s;
}

static inline bool check_snap_file(const char *file, int line, const struct snap *top,
                                   const char *path, const char *want, size_t want_len)
{
        const struct snap *s = snap_at(top, path);

        if (!s || s->is_dir || !s->content) {
                check_note(false, file, line);
                fprintf(stderr, "file '%s' %s\n", path, !s ? "is absent" : "is not a file");
                return false;
        }
        return check_mem(file, line, path, "expected", s->content->data, s->content->len, want,
                         want_len);
}

static inline bool check_snap_absent(const char *file, int line, const struct snap *top,
                                     const char *path)
{
        const struct snap *s = snap_at(top, path);

        if (!check_note(s == NULL, file, line)) {
                fprintf(stderr, "'%s' should be absent, is a %s", path, s->is_dir ? "dir" : "file");
                if (!s->is_dir && s->content) {
                        fputs(" holding ", stderr);
                        check_show(stderr, s->content->data, s->content->len);
                }
                fputc('\n', stderr);
        }
        return s == NULL;
}

static inline bool check_snap_dir(const char *file, int line, const struct snap *top,
                                  const char *path, size_t n_children)
{
        const struct snap *s = snap_at(top, path);

        if (!check_note(s && s->is_dir && s->n_children == n_children, file, line)) {
                if (!s || !s->is_dir)
                        fprintf(stderr, "dir '%s' %s\n", path, !s ? "is absent" : "is a file");
                else
                        fprintf(stderr, "dir '%s' has %zu entries, expected %zu\n", path,
                                s->n_children, n_children);
                return false;
        }
        return true;
}

#define CHECK_FILE(top, path, want, len) check_snap_file(__FILE__, __LINE__, (top), (path), (want), (len))
#define CHECK_TEXT(top, path, want) check_snap_file(__FILE__, __LINE__, (top), (path), (want), strlen(want))
#define CHECK_ABSENT(top, path) check_snap_absent(__FILE__, __LINE__, (top), (path))
/* path is a directory with exactly n entries ("" is top itself) */
#define CHECK_DIR(top, path, n) check_snap_dir(__FILE__, __LINE__, (top), (path), (n))

/* A list parser (bacalhau_parse_list, muse_parse_list) on json: expects r
 * and the names in want (NULL-terminated), outputs untouched on failure. */
typedef int (*names_parser)(const char *body, size_t len, struct backend_list *ret);

static inline void check_names_parse(const char *file, int line, names_parser parse,
                                     const char *what, const char *json, int want_r,
                                     const char **want)
{
        struct backend_list l = { .n = 12345 };
        size_t n_want = 0;
        int r = parse(json, strlen(json), &l);

        while (want[n_want])
                n_want++;
        if (!check_int(file, line, what, "want", r, want_r)) {
                fprintf(stderr, "    reply: %s\n", json);
        } else if (r < 0) {
                check_bool(file, line, "outputs untouched on failure", l.v == NULL && l.n == 12345);
        } else if (check_int(file, line, "n", "n_want", (intmax_t)l.n, (intmax_t)n_want)) {
                for (size_t i = 0; i < l.n; i++)
                        check_str(file, line, "names[i]", "want[i]", l.v[i].name, want[i]);
        }
        if (r == 0)
                backend_list_clear(&l);
}
