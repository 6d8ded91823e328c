/* Unit tests of the SLURM backend (slurm.c) against a scripted server
 * (fakehttp.h) serving the real replies of tests/fixtures/slurm-*.json: the
 * constructor's refusals, the headers, API version detection, fetch and its
 * errors, auth failures logged once, and the change feed: a first full
 * list, 304s, output files growing under a 304, a 200 where jobs vanished
 * and changed, a failed list, and the cap on items carried whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fakehttp.h"
#include "slurmtest.h"
#include "snapcheck.h"
#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/log.h"
#include "jobfs/slurm.h"
#include "jobfs/slurm_job.h"
#include "jobfs/slurm_split.h"

#define TOKEN "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDAsInN1biI6InRlc3RlciJ9.c2ln"

static char tmpdir[PATH_MAX];
static struct fake srv;
static struct http *http;
static char url[64];

/* ---- helpers ------------------------------------------------------------------------ */

static struct backend *make(const char *api, const char *token_file)
{
        struct slurm_config cfg = { .url = url, .api = api, .user = "tester",
                                    .token_file = token_file, .output_max = 4096 };
        struct backend *b = NULL;

        if (!CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), 0))
                return NULL;
        return b;
}

static int fetch(struct backend *b, const char *name, struct backend_item *ret)
{
        const char *keys[1] = { name };

        memset(ret, 0, sizeof(*ret));
        return b->ops->fetch(b, keys, ret);
}

static const struct backend_entry *entry(const struct backend_list *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].name, name) == 0)
                        return &l->v[i];
        return NULL;
}

static size_t n_snaps(const struct backend_list *l)
{
        size_t n = 0;

        for (size_t i = 0; i < l->n; i++)
                n += l->v[i].snap != NULL;
        return n;
}

struct grab {
        const char *name;
        char *bytes;
        size_t len;
};

static int on_grab(void *ctx, const char *bytes, size_t len)
{
        struct grab *g = ctx;
        struct slurm_job *j = NULL;

        if (slurm_parse_job(bytes, len, &j) == 0 && strcmp(j->name, g->name) == 0 && !g->bytes) {
                g->bytes = strndup(bytes, len);
                g->len = len;
        }
        slurm_job_free(j);
        return 0;
}

/* The reply slurmrestd gives GET /job/NAME: the list's element, alone. */
static char *single_reply(const char *list, size_t len, const char *name, size_t *ret_len)
{
        struct grab g = { .name = name };
        char *out = NULL;

        if (!CHECK_INT_EQ(slurm_parse_jobs(list, len, on_grab, &g), 0) || !CHECK(g.bytes))
                return NULL;
        if (asprintf(&out, "{\n  \"meta\": {},\n  \"errors\": [\n  ],\n  \"jobs\": [\n    %s\n  ]\n}",
                     g.bytes) < 0)
                out = NULL;
        free(g.bytes);
        *ret_len = out ? strlen(out) : 0;
        return out;
}

/* Replaces the first `from` in *s by `to`. */
static void replace_one(char **s, size_t *len, const char *from, const char *to)
{
        char *hit = memmem(*s, *len, from, strlen(from)), *out;
        size_t at;

        if (!CHECK(hit != NULL))
                return;
        at = (size_t)(hit - *s);
        if (asprintf(&out, "%.*s%s%s", (int)at, *s, to, hit + strlen(from)) < 0)
                return;
        free(*s);
        *s = out;
        *len = strlen(out);
}

/* Removes job `name`'s element (and the comma before it) from a list body. */
static void drop_job(char **s, size_t *len, const char *name)
{
        struct grab g = { .name = name };
        char *hit, *out;
        size_t at, cut;

        if (!CHECK_INT_EQ(slurm_parse_jobs(*s, *len, on_grab, &g), 0) || !CHECK(g.bytes))
                return;
        hit = memmem(*s, *len, g.bytes, g.len);
        at = (size_t)(hit - *s);
        cut = g.len;
        while (at > 0 && (*s)[at - 1] != ',') {
                at--;
                cut++;
        }
        at--;
        cut++;
        if (asprintf(&out, "%.*s%s", (int)at, *s, *s + at + cut) >= 0) {
                free(*s);
                *s = out;
                *len = strlen(out);
        }
        free(g.bytes);
}

static void append_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "a");

        if (!CHECK(f != NULL))
                return;
        fputs(text, f);
        fclose(f);
}

/* ---- the constructor --------------------------------------------------------------------- */

static void test_new(void)
{
        struct slurm_config cfg = { .url = url, .user = "tester", .output_max = 1 };
        char path[PATH_MAX + 16];
        struct backend *b = NULL;
        char *log;
        int fd;

        capture_begin();
        unsetenv("SLURM_JWT");
        CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), -EACCES);     /* no token at all */
        setenv("SLURM_JWT", "two words", 1);
        CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), -EACCES);
        setenv("SLURM_JWT", TOKEN, 1);
        cfg.api = "v0.0.39";
        CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), -EINVAL);
        cfg.api = "auto";
        cfg.user = "x: y";
        CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), -EINVAL);
        cfg.user = "tester";
        snprintf(path, sizeof(path), "%s/tok", tmpdir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (CHECK(fd >= 0)) {
                CHECK(write(fd, "SLURM_JWT=" TOKEN "\n", strlen(TOKEN) + 11) > 0);
                close(fd);
        }
        CHECK(chmod(path, 0644) == 0);
        cfg.token_file = path;
        CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), -EACCES);     /* others may read it */
        log = capture_end();
        CHECK(strstr(log, "no token") && strstr(log, "chmod 600"));
        CHECK(!strstr(log, TOKEN));
        free(log);
        CHECK(b == NULL);
        /* control twins: a 0600 file, the environment, the default user */
        CHECK(chmod(path, 0600) == 0);
        if (CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), 0))
                backend_free(b);
        b = NULL;
        cfg.token_file = NULL;
        cfg.user = NULL;
        if (CHECK_INT_EQ(slurm_backend_new(http, &cfg, &b), 0)) {
                CHECK_STR_EQ(b->ops->name, "slurm");
                CHECK_STR_EQ(b->ops->root, "slurm");
                CHECK_INT_EQ(b->ops->depth, 1);
                backend_free(b);
        }
        unlink(path);
}

/* ---- fetch ------------------------------------------------------------------------------------ */

static void test_fetch(void)
{
        size_t len = 0, one_len = 0, n0;
        char *list = fixture_at("slurm-jobs.json", tmpdir, &len);
        char *one = list ? single_reply(list, len, "36", &one_len) : NULL;
        char *ping = NULL, *status = NULL;
        struct backend_item it;
        struct backend *b = make("auto", NULL);
        struct fake_req q;
        size_t plen = 0, slen = 0;
        FILE *f;

        ping = fixture_raw("slurm-ping.json", &plen);
        if (!one || !b || !ping)
                goto out;
        fake_json(&srv, "/slurm/v0.0.38/ping", 200, ping, plen);
        fake_json(&srv, "/slurm/v0.0.38/job/36", 200, one, one_len);
        n0 = fake_count(&srv);
        if (CHECK_INT_EQ(fetch(b, "36", &it), 0)) {
                CHECK(it.terminal && it.sig != 0 && it.name == NULL);
                CHECK_TEXT(it.snap, "state", "FAILED\n");
                CHECK_TEXT(it.snap, "exit_code", "3\n");
        }
        backend_item_clear(&it);
        /* the ping once (auto), then the job, with both headers */
        if (CHECK_INT_EQ(fake_count(&srv), n0 + 2)) {
                q = fake_get(&srv, n0);
                CHECK_STR_EQ(q.path, "/slurm/v0.0.38/ping");
                q = fake_get(&srv, n0 + 1);
                CHECK_STR_EQ(q.path, "/slurm/v0.0.38/job/36");
                CHECK_STR_EQ(q.user, "tester");
                CHECK_STR_EQ(q.token, TOKEN);
        }
        /* a second fetch: no ping again */
        CHECK_INT_EQ(fetch(b, "36", &it), 0);
        backend_item_clear(&it);
        CHECK_INT_EQ(fake_count(&srv), n0 + 3);
        /* names that are no job: ENOENT without a request */
        CHECK_INT_EQ(fetch(b, "abc", &it), -ENOENT);
        CHECK_INT_EQ(fetch(b, "036", &it), -ENOENT);
        CHECK_INT_EQ(fetch(b, "6_", &it), -ENOENT);
        CHECK_INT_EQ(fake_count(&srv), n0 + 3);
        CHECK(it.snap == NULL);
        /* unknown (or purged) job: 500 with error 2017 */
        {
                size_t ulen = 0;
                char *unk = fixture_raw("slurm-error-unknown.json", &ulen);

                if (unk)
                        fake_json(&srv, "/slurm/v0.0.38/job/999999", 500, unk, ulen);
                CHECK_INT_EQ(fetch(b, "999999", &it), -ENOENT);
                free(unk);
        }
        /* an array: GET /job/39 lists its three tasks, none of them is "39";
         * GET /job/45 (task 1's own id) answers with task 39_1 */
        {
                size_t alen = 0, tlen = 0;
                char *arr = fixture_at("slurm-job-array.json", tmpdir, &alen);
                char *t1 = single_reply(list, len, "39_1", &tlen);

                if (arr && t1) {
                        fake_json(&srv, "/slurm/v0.0.38/job/39", 200, arr, alen);
                        fake_json(&srv, "/slurm/v0.0.38/job/45", 200, t1, tlen);
                        fake_json(&srv, "/slurm/v0.0.38/job/39_1", 200, t1, tlen);
                        CHECK_INT_EQ(fetch(b, "39", &it), -ENOENT);
                        CHECK_INT_EQ(fetch(b, "45", &it), -ENOENT);
                        if (CHECK_INT_EQ(fetch(b, "39_1", &it), 0))
                                CHECK_TEXT(it.snap, "exit_code", "1\n");
                        backend_item_clear(&it);
                }
                free(arr);
                free(t1);
        }
        /* garbage in a 200: EBADMSG, nothing half-made */
        fake_route(&srv, "/slurm/v0.0.38/job/37", 200, "text/html", "<html>", 6);
        CHECK_INT_EQ(fetch(b, "37", &it), -EBADMSG);
        CHECK(it.snap == NULL);
        /* status: what was detected, and never the token */
        f = open_memstream(&status, &slen);
        if (CHECK(f)) {
                b->ops->status(b, f);
                fclose(f);
                CHECK(strstr(status, "api: v0.0.38 (detected)\n") != NULL);
                CHECK(strstr(status, "api_release: 22.05.8\n") != NULL);
                CHECK(strstr(status, "user: tester\n") != NULL);
                CHECK(strstr(status, "token: $SLURM_JWT\n") != NULL);
                CHECK(strstr(status, "token_expires: 2100-01-01T00:00:00Z\n") != NULL);
                CHECK(!strstr(status, TOKEN) && !strstr(status, "c2ln"));
        }
out:
        free(status);
        backend_free(b);
        free(ping);
        free(one);
        free(list);
}

/* auto: v0.0.38 absent (404) falls back to v0.0.37; a fixed version never
 * pings; a server with none of them is EPROTONOSUPPORT, said once. */
static void test_versions(void)
{
        size_t len = 0, one_len = 0, n0;
        char *list = fixture_at("slurm-jobs.json", tmpdir, &len);
        char *one = list ? single_reply(list, len, "35", &one_len) : NULL;
        struct backend_item it;
        struct backend *b;
        char *log;

        if (!one)
                goto out;
        fake_route(&srv, "/slurm/v0.0.38/ping", 404, "text/plain", "Unable find requested URL.", 26);
        fake_json(&srv, "/slurm/v0.0.37/ping", 200, "{\"pings\": []}", 13);
        fake_json(&srv, "/slurm/v0.0.37/job/35", 200, one, one_len);
        fake_json(&srv, "/slurm/v0.0.36/job/35", 200, one, one_len);
        b = make("auto", NULL);
        n0 = fake_count(&srv);
        CHECK_INT_EQ(b ? fetch(b, "35", &it) : -1, 0);
        backend_item_clear(&it);
        if (CHECK_INT_EQ(fake_count(&srv), n0 + 3)) {
                CHECK_STR_EQ(fake_get(&srv, n0).path, "/slurm/v0.0.38/ping");
                CHECK_STR_EQ(fake_get(&srv, n0 + 1).path, "/slurm/v0.0.37/ping");
                CHECK_STR_EQ(fake_get(&srv, n0 + 2).path, "/slurm/v0.0.37/job/35");
        }
        backend_free(b);
        /* fixed: straight to it */
        b = make("v0.0.36", NULL);
        n0 = fake_count(&srv);
        CHECK_INT_EQ(b ? fetch(b, "35", &it) : -1, 0);
        backend_item_clear(&it);
        if (CHECK_INT_EQ(fake_count(&srv), n0 + 1))
                CHECK_STR_EQ(fake_get(&srv, n0).path, "/slurm/v0.0.36/job/35");
        backend_free(b);
        /* none at all */
        fake_route(&srv, "/slurm/v0.0.37/ping", 404, "text/plain", "x", 1);
        b = make("auto", NULL);
        capture_begin();
        CHECK_INT_EQ(b ? fetch(b, "35", &it) : -1, -EPROTONOSUPPORT);
        CHECK_INT_EQ(b ? fetch(b, "35", &it) : -1, -EPROTONOSUPPORT);
        log = capture_end();
        CHECK_INT_EQ(count_lines(log, "none of /slurm/v0.0.38"), 1);
        free(log);
        backend_free(b);
        /* a 500 on the ping still means the version is there (the ping itself
         * failed: the token, or slurmctld) */
        {
                size_t tlen = 0;
                char *tok = fixture_raw("slurm-error-token.json", &tlen);

                if (tok)
                        fake_json(&srv, "/slurm/v0.0.38/ping", 500, tok, tlen);
                fake_json(&srv, "/slurm/v0.0.38/job/35", 200, one, one_len);
                b = make("auto", NULL);
                CHECK_INT_EQ(b ? fetch(b, "35", &it) : -1, 0);
                backend_item_clear(&it);
                backend_free(b);
                free(tok);
        }
out:
        free(one);
        free(list);
}

/* A bad token: 500 with error -1, or 401: EACCES, logged once until a
 * request succeeds again. */
static void test_auth(void)
{
        size_t tlen = 0, plen = 0, len = 0, one_len = 0;
        char *tok = fixture_raw("slurm-error-token.json", &tlen);
        char *ping = fixture_raw("slurm-ping.json", &plen);
        char *list = fixture_at("slurm-jobs.json", tmpdir, &len);
        char *one = list ? single_reply(list, len, "35", &one_len) : NULL;
        struct backend_item it;
        struct backend *b = make("auto", NULL);
        char *log;

        if (!tok || !ping || !one || !b)
                goto out;
        fake_json(&srv, "/slurm/v0.0.38/ping", 200, ping, plen);
        fake_json(&srv, "/slurm/v0.0.38/job/1", 500, tok, tlen);
        fake_route(&srv, "/slurm/v0.0.38/job/2", 401, "text/plain", "Authentication failure", 22);
        fake_json(&srv, "/slurm/v0.0.38/job/35", 200, one, one_len);
        capture_begin();
        CHECK_INT_EQ(fetch(b, "1", &it), -EACCES);
        CHECK_INT_EQ(fetch(b, "1", &it), -EACCES);
        CHECK_INT_EQ(fetch(b, "2", &it), -EACCES);
        log = capture_end();
        CHECK_INT_EQ(count_lines(log, "refused the request for user 'tester'"), 1);
        CHECK_INT_EQ(count_lines(log, "answered 401"), 0);     /* still the same outage */
        CHECK(!strstr(log, TOKEN));
        free(log);
        /* a success ends it; the next failure is said again */
        capture_begin();
        CHECK_INT_EQ(fetch(b, "35", &it), 0);
        backend_item_clear(&it);
        CHECK_INT_EQ(fetch(b, "2", &it), -EACCES);
        CHECK_INT_EQ(fetch(b, "2", &it), -EACCES);
        log = capture_end();
        CHECK_INT_EQ(count_lines(log, "answered 401"), 1);
        free(log);
out:
        backend_free(b);
        free(tok);
        free(ping);
        free(one);
        free(list);
}

/* A token file is read again when it changes: a renewed token needs no
 * remount; a file that went bad keeps the token that worked. */
static void test_token_reload(void)
{
        size_t plen = 0, len = 0, one_len = 0;
        char *ping = fixture_raw("slurm-ping.json", &plen);
        char *list = fixture_at("slurm-jobs.json", tmpdir, &len);
        char *one = list ? single_reply(list, len, "35", &one_len) : NULL;
        char path[PATH_MAX + 16], *log;
        struct backend_item it;
        struct backend *b = NULL;
        size_t n0;
        FILE *f;

        if (!ping || !one)
                goto out;
        fake_json(&srv, "/slurm/v0.0.38/ping", 200, ping, plen);
        fake_json(&srv, "/slurm/v0.0.38/job/35", 200, one, one_len);
        snprintf(path, sizeof(path), "%s/token", tmpdir);
        f = fopen(path, "w");
        if (!CHECK(f))
                goto out;
        fputs("SLURM_JWT=first.token.a\n", f);
        fclose(f);
        CHECK(chmod(path, 0600) == 0);
        b = make("v0.0.38", path);
        if (!b)
                goto out;
        n0 = fake_count(&srv);
        CHECK_INT_EQ(fetch(b, "35", &it), 0);
        backend_item_clear(&it);
        CHECK_STR_EQ(fake_get(&srv, n0).token, "first.token.a");
        /* renewed (another size, so even a coarse mtime sees it) */
        f = fopen(path, "w");
        if (CHECK(f)) {
                fputs("SLURM_JWT=second.token.bb\n", f);
                fclose(f);
        }
        log_max_level = LOG_LVL_INFO;
        capture_begin();
        CHECK_INT_EQ(fetch(b, "35", &it), 0);
        backend_item_clear(&it);
        CHECK_STR_EQ(fake_get(&srv, n0 + 1).token, "second.token.bb");
        /* control: unchanged, the same token and no reading again */
        CHECK_INT_EQ(fetch(b, "35", &it), 0);
        backend_item_clear(&it);
        CHECK_STR_EQ(fake_get(&srv, n0 + 2).token, "second.token.bb");
        log = capture_end();
        log_max_level = LOG_LVL_WARN;
        CHECK_INT_EQ(count_lines(log, "read again"), 1);
        free(log);
        /* opened up to others: refused, the last good token goes on */
        f = fopen(path, "w");
        if (CHECK(f)) {
                fputs("SLURM_JWT=third.token.ccc\n", f);
                fclose(f);
        }
        CHECK(chmod(path, 0644) == 0);
        capture_begin();
        CHECK_INT_EQ(fetch(b, "35", &it), 0);
        backend_item_clear(&it);
        CHECK_INT_EQ(fetch(b, "35", &it), 0);
        backend_item_clear(&it);
        log = capture_end();
        CHECK_STR_EQ(fake_get(&srv, n0 + 3).token, "second.token.bb");
        CHECK_INT_EQ(count_lines(log, "chmod 600"), 1);        /* once per change */
        CHECK(!strstr(log, "third.token"));
        free(log);
out:
        backend_free(b);
        if (ping)
                unlink(path);
        free(ping);
        free(one);
        free(list);
}

/* ---- the change feed ------------------------------------------------------------------------------ */

static void check_same(const struct backend_list *a, const struct backend_list *b)
{
        if (!CHECK_INT_EQ(a->n, b->n))
                return;
        for (size_t i = 0; i < a->n; i++) {
                CHECK_STR_EQ(a->v[i].name, b->v[i].name);
                CHECK(a->v[i].sig == b->v[i].sig);
        }
}

static void test_feed(void)
{
        size_t len = 0, plen = 0, one_len = 0, n0;
        char *list = fixture_at("slurm-jobs.json", tmpdir, &len);
        char *ping = fixture_raw("slurm-ping.json", &plen);
        char *one = NULL;
        char jobs[PATH_MAX + 16], out50[PATH_MAX + 32], out35[PATH_MAX + 32];
        struct backend_list l1 = { 0 }, l2 = { 0 }, l3 = { 0 }, l4 = { 0 };
        const struct backend_entry *e;
        struct backend_item it = { 0 };
        struct backend *b = make("auto", NULL);
        struct fake_req q;
        long long t;
        time_t now;

        if (!list || !ping || !b)
                goto out;
        snprintf(jobs, sizeof(jobs), "%s/jobs", tmpdir);
        snprintf(out50, sizeof(out50), "%s/slurm-50.out", jobs);
        snprintf(out35, sizeof(out35), "%s/slurm-35.out", jobs);
        mkdir(jobs, 0755);
        append_file(out35, "hello from job 35\n");
        fake_json(&srv, "/slurm/v0.0.38/ping", 200, ping, plen);
        fake_json(&srv, "/slurm/v0.0.38/jobs", 200, list, len);
        fake_route(&srv, "/slurm/v0.0.38/jobs?update_time=*", 304, NULL, NULL, 0);

        /* 1. the first list: every job, whole, in the server's order */
        if (!CHECK_INT_EQ(b->ops->list(b, &l1), 0))
                goto out;
        CHECK(l1.feed);
        CHECK_INT_EQ(l1.n, 18);
        CHECK_INT_EQ(n_snaps(&l1), 18);
        CHECK_STR_EQ(l1.v[0].name, "29");
        CHECK_STR_EQ(l1.v[6].name, "39_1");
        e = entry(&l1, "35");
        if (CHECK(e && e->snap)) {
                CHECK(e->terminal);
                CHECK_FILE(e->snap, "stdout", "hello from job 35\n", 18);
        }
        e = entry(&l1, "50");
        CHECK(e && !e->terminal && e->snap && !snap_at(e->snap, "stdout"));
        /* a list entry's sig is the sig a fetch of that job gives */
        one = single_reply(list, len, "35", &one_len);
        fake_json(&srv, "/slurm/v0.0.38/job/35", 200, one, one_len);
        if (CHECK_INT_EQ(fetch(b, "35", &it), 0))
                CHECK(it.sig == entry(&l1, "35")->sig);
        backend_item_clear(&it);

        /* 2. nothing changed: a 304, the same names and sigs, nothing whole */
        n0 = fake_count(&srv);
        now = time(NULL);
        if (!CHECK_INT_EQ(b->ops->list(b, &l2), 0))
                goto out;
        check_same(&l1, &l2);
        CHECK_INT_EQ(n_snaps(&l2), 0);
        CHECK(l2.feed);
        if (CHECK_INT_EQ(fake_count(&srv), n0 + 1)) {
                q = fake_get(&srv, n0);
                CHECK(sscanf(q.path, "/slurm/v0.0.38/jobs?update_time=%lld", &t) == 1);
                CHECK(t <= (long long)now && t >= (long long)now - 10);
        }
        backend_list_clear(&l2);

        /* 3. job 50 runs and writes: under a 304 its sig moves and the list
         * carries it whole; a fetch agrees on the sig */
        append_file(out50, "tick 1\n");
        if (!CHECK_INT_EQ(b->ops->list(b, &l2), 0))
                goto out;
        CHECK_INT_EQ(l2.n, 18);
        CHECK_INT_EQ(n_snaps(&l2), 1);
        e = entry(&l2, "50");
        if (CHECK(e && e->snap)) {
                CHECK_FILE(e->snap, "stdout", "tick 1\n", 7);
                CHECK(e->sig != entry(&l1, "50")->sig);
                CHECK(!e->terminal);
        }
        free(one);
        one = single_reply(list, len, "50", &one_len);
        fake_json(&srv, "/slurm/v0.0.38/job/50", 200, one, one_len);
        if (CHECK_INT_EQ(fetch(b, "50", &it), 0) && e)
                CHECK(it.sig == e->sig);
        backend_item_clear(&it);
        append_file(out50, "tick 2\n");
        if (CHECK_INT_EQ(b->ops->list(b, &l3), 0)) {
                e = entry(&l3, "50");
                if (CHECK(e && e->snap))
                        CHECK_FILE(e->snap, "stdout", "tick 1\ntick 2\n", 14);
                CHECK(e && e->sig != entry(&l2, "50")->sig);
                CHECK_INT_EQ(n_snaps(&l3), 1);
        }
        /* control: no change, nothing carried, nothing moved */
        if (CHECK_INT_EQ(b->ops->list(b, &l4), 0)) {
                CHECK_INT_EQ(n_snaps(&l4), 0);
                check_same(&l3, &l4);
        }
        backend_list_clear(&l3);
        backend_list_clear(&l4);
        /* a final job's file is not looked at again */
        append_file(out35, "written after the end\n");
        if (CHECK_INT_EQ(b->ops->list(b, &l3), 0)) {
                CHECK_INT_EQ(n_snaps(&l3), 0);
                CHECK(entry(&l3, "35")->sig == entry(&l1, "35")->sig);
        }
        backend_list_clear(&l3);

        /* 4. a 200: job 41 is gone (purged), job 50 completed, the rest as
         * it was: only 50 is carried, 41 is not listed */
        drop_job(&list, &len, "41");
        replace_one(&list, &len, "\"job_state\": \"RUNNING\"", "\"job_state\": \"COMPLETED\"");
        fake_json(&srv, "/slurm/v0.0.38/jobs?update_time=*", 200, list, len);
        if (CHECK_INT_EQ(b->ops->list(b, &l3), 0)) {
                CHECK_INT_EQ(l3.n, 17);
                CHECK(entry(&l3, "41") == NULL);
                e = entry(&l3, "50");
                if (CHECK(e && e->snap)) {
                        CHECK(e->terminal);
                        CHECK_TEXT(e->snap, "state", "COMPLETED\n");
                        CHECK_FILE(e->snap, "stdout", "tick 1\ntick 2\n", 14);
                }
                CHECK_INT_EQ(n_snaps(&l3), 1);
                for (size_t i = 0; i < l3.n; i++)
                        if (strcmp(l3.v[i].name, "50") != 0)
                                CHECK(l3.v[i].sig == entry(&l1, l3.v[i].name)->sig);
        }

        /* 5. the server fails: an error, and what was known stays */
        fake_json(&srv, "/slurm/v0.0.38/jobs?update_time=*", 503, "{}", 2);
        CHECK_INT_EQ(b->ops->list(b, &l4), -EAGAIN);
        CHECK(l4.v == NULL && l4.n == 0);
        fake_route(&srv, "/slurm/v0.0.38/jobs?update_time=*", 304, NULL, NULL, 0);
        if (CHECK_INT_EQ(b->ops->list(b, &l4), 0))
                check_same(&l3, &l4);
        /* a final job stays final: its output is not read again */
        append_file(out50, "tick 3\n");
        backend_list_clear(&l4);
        if (CHECK_INT_EQ(b->ops->list(b, &l4), 0)) {
                CHECK_INT_EQ(n_snaps(&l4), 0);
                check_same(&l3, &l4);
        }
out:
        backend_list_clear(&l1);
        backend_list_clear(&l2);
        backend_list_clear(&l3);
        backend_list_clear(&l4);
        backend_free(b);
        unlink(out35);
        unlink(out50);
        rmdir(jobs);
        free(one);
        free(ping);
        free(list);
}

/* The first list of a big cluster carries at most 1000 items whole; the
 * rest have their signature only (the cache fetches what it needs). */
static void test_carry_cap(void)
{
        size_t cap = 1 << 20, len = 0;
        char *body = malloc(cap);
        struct backend_list l = { 0 };
        struct backend *b = make("v0.0.38", NULL);

        if (!body || !b)
                goto out;
        len += (size_t)snprintf(body + len, cap - len, "{\"jobs\": [");
        for (int i = 1; i <= 1500; i++)
                len += (size_t)snprintf(body + len, cap - len,
                                        "%s{\"job_id\": %d, \"job_state\": \"COMPLETED\"}",
                                        i > 1 ? "," : "", i);
        len += (size_t)snprintf(body + len, cap - len, "]}");
        fake_json(&srv, "/slurm/v0.0.38/jobs", 200, body, len);
        if (CHECK_INT_EQ(b->ops->list(b, &l), 0)) {
                CHECK_INT_EQ(l.n, 1500);
                CHECK_INT_EQ(n_snaps(&l), 1000);
                CHECK(l.v[1499].sig != 0 && !l.v[1499].snap && l.v[1499].terminal);
        }
out:
        backend_list_clear(&l);
        backend_free(b);
        free(body);
}

int main(void)
{
        struct http_config hc = { .timeout_s = 10, .max_reply = 16 << 20 };
        char tmpl[] = "/tmp/test_slurm_backend.XXXXXX";

        log_max_level = LOG_LVL_WARN;
        if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir) || fake_start(&srv) < 0 ||
            http_new(&hc, &http) < 0) {
                perror("setup");
                return 1;
        }
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv.port);
        setenv("SLURM_JWT", TOKEN, 1);
        test_new();
        setenv("SLURM_JWT", TOKEN, 1);
        test_fetch();
        test_versions();
        test_auth();
        test_token_reload();
        test_feed();
        test_carry_cap();
        http_free(http);
        fake_stop(&srv);
        rmdir(tmpdir);
        return CHECK_DONE();
}
