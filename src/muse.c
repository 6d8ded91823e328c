/* muse: see include/jobfs/muse.h; API facts in shared/api/muse.md.
 *
 * The ws API documents no status codes, only the error body, so replies are
 * judged by their body first: an error object is "no such run" when the
 * status is below 500, and a server failure otherwise.
 *
 * Nor do the docs show a header, so the kind of a GET run reply is told by
 * this rule, in order:
 *   1. a status other than 200 is an error, judged as above;
 *   2. a body that opens with a zip signature ("PK\3\4", or "PK\5\6" for
 *      an empty archive) is a file, `result`, whatever the headers say;
 *   3. a Content-Type of application/json or any "+json" type is JSON:
 *      info.stdout (a string) is `stdout`, a string "url" is `download_url`,
 *      an error object is ENOENT, anything else EBADMSG;
 *   4. any other Content-Type (text/plain, application/zip,
 *      application/octet-stream...) is a file, `result`;
 *   5. no Content-Type at all: what the run asked for decides, JSON for
 *      returned_type stdout or todownload, a file otherwise.
 * So a stdout.txt whose text happens to be JSON is still a file as long as
 * the server labels it text/plain (Django's FileResponse guesses text/plain
 * from the .txt name), and a real zip is a file even when mislabelled.
 * GET content must be a zip (rule 2); anything else is an error or EBADMSG.
 */
#include "jobfs/muse.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define LIST_MAX 100000         /* software names from one list reply */
#define URL_MAX 8192            /* a download_url: the docs' is 80 bytes */
/* A 200 reply to GET content that is not a zip is only looked at as JSON
 * (an error object) up to this size: an error object is ~100 bytes. */
#define NOT_ZIP_JSON_MAX 65536
#define COLLECT_START 65536     /* first buffer of a lazy file's bytes; doubles */

/* -ENOENT/-EIO for an error object, 0 when obj is not one. */
static int error_object_errno(struct json_object *obj, long status)
{
        const char *msg;

        if (!jsonutil_get(obj, "error"))
                return 0;
        if (jsonutil_str(obj, "error", &msg, NULL))
                log_debug("muse: server error %ld: %s", status, msg);
        return status >= 500 ? http_status_errno(status) : -ENOENT;
}

static int parse_object(const char *body, size_t len, long status, struct json_object **ret)
{
        struct json_object *obj = NULL;
        int r = jsonutil_parse(body, len, &obj);

        if (r < 0)
                return status == 200 ? r : http_status_errno(status);
        r = error_object_errno(obj, status);
        if (r == 0 && status != 200)
                r = http_status_errno(status);
        if (r == 0 && !json_object_is_type(obj, json_type_object))
                r = -EBADMSG;
        if (r < 0) {
                json_object_put(obj);
                return r;
        }
        *ret = obj;
        return 0;
}

/* request.todownload: the report's boolean, or the POST's "yes" spelling */
static bool todownload(struct json_object *request)
{
        struct json_object *v = jsonutil_get(request, "todownload");
        const char *s;

        if (json_object_is_type(v, json_type_boolean))
                return json_object_get_boolean(v);
        return jsonutil_str(request, "todownload", &s, NULL) && strcmp(s, "yes") == 0;
}

int muse_parse_state(const char *body, size_t len, long status, struct snap **ret,
                     bool *ret_terminal, struct muse_ask *ret_ask)
{
        struct json_object *root = NULL, *report, *process, *request;
        struct snap *top = NULL;
        const char *cr = NULL, *rtype = NULL;
        bool file, download;
        int r;

        r = parse_object(body, len, status, &root);
        if (r < 0)
                return r;
        report = jsonutil_get(jsonutil_get(root, "info"), "report");
        if (!report || !jsonutil_str(report, "cr", &cr, NULL)) {
                r = -EBADMSG;
                goto out;
        }
        process = jsonutil_get(report, "process");
        request = jsonutil_get(report, "request");
        top = snap_new();
        if (!top) {
                r = -ENOMEM;
                goto out;
        }
        r = jsonutil_add_text(top, "cr", report, "cr");
        r = r ? r : jsonutil_add_text(top, "name", report, "name");
        r = r ? r : jsonutil_add_text(top, "state", process, "latest_cr");
        r = r ? r : jsonutil_add_text(top, "slurm_state", process, "latest_state");
        r = r ? r : jsonutil_add_text(top, "job_id", process, "job_id");
        r = r ? r : jsonutil_add_text(top, "jobname", process, "jobname");
        r = r ? r : jsonutil_add_text(top, "msg", root, "msg");
        r = r ? r : jsonutil_add_text(top, "url", root, "url");
        r = r ? r : snap_add_file(top, "state.json", blob_new(body, len));
        /* the run folder can be asked for at any time after the POST */
        r = r ? r : snap_add_lazy(top, "content.zip");
        if (r < 0)
                goto out;
        /* returned_type defaults to stdout (ws docs) when the report omits it;
         * the docs name stdout.txt and run.zip besides, both files */
        if (!jsonutil_str(request, "returned_type", &rtype, NULL))
                rtype = "stdout";
        file = strcmp(rtype, "stdout") != 0;
        download = file && todownload(request);        /* "only for run.zip/stdout.txt" */
        *ret_terminal = strcmp(cr, "OK") == 0 || strcmp(cr, "NOK") == 0;
        ret_ask->get_run = strcmp(cr, "OK") == 0;
        ret_ask->expect_json = !file || download;
        ret_ask->file = !file ? "stdout" : download ? "download_url" : "result";
        *ret = top;
        top = NULL;
out:
        snap_free(top);
        json_object_put(root);
        return r;
}

static bool is_zip(const char *body, size_t len)
{
        return len >= 4 && (memcmp(body, "PK\3\4", 4) == 0 || memcmp(body, "PK\5\6", 4) == 0);
}

/* Rules 3-5 of the file header: whether a 200 reply that is no zip is JSON. */
static bool is_json_reply(const char *content_type, bool expect_json)
{
        const char *p = content_type;
        size_t n;

        if (!p)
                return expect_json;
        p += strspn(p, " \t");
        n = strcspn(p, "; \t");
        return (n == 16 && strncasecmp(p, "application/json", 16) == 0) ||
               (n > 5 && memchr(p, '/', n) && strncasecmp(p + n - 5, "+json", 5) == 0);
}

/* The url of a download reply as one line: no control character in it. */
static int download_line(const char *url, size_t len, struct blob **ret)
{
        if (len == 0 || len > URL_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
                        return -EBADMSG;
        *ret = blob_new_line(url, len);
        return *ret ? 0 : -ENOMEM;
}

int muse_parse_run(const char *body, size_t len, long status, const char *content_type,
                   bool expect_json, enum muse_run_kind *ret_kind, struct blob **ret)
{
        struct json_object *root = NULL;
        struct blob *out = NULL;
        enum muse_run_kind kind;
        const char *s;
        size_t n;
        int r;

        if (status == 200 && (is_zip(body, len) || !is_json_reply(content_type, expect_json))) {
                out = blob_new(body, len);
                if (!out)
                        return -ENOMEM;
                *ret_kind = MUSE_RUN_RESULT;
                *ret = out;
                return 0;
        }
        r = parse_object(body, len, status, &root);
        if (r < 0)
                return r;
        if (jsonutil_str(jsonutil_get(root, "info"), "stdout", &s, &n)) {
                kind = MUSE_RUN_STDOUT;
                out = blob_new(s, n);
                r = out ? 0 : -ENOMEM;
        } else if (jsonutil_str(root, "url", &s, &n)) {
                kind = MUSE_RUN_DOWNLOAD;
                r = download_line(s, n, &out);
        } else {
                r = -EBADMSG;
        }
        if (r == 0) {
                *ret_kind = kind;
                *ret = out;
        }
        json_object_put(root);
        return r;
}

const char *muse_run_file(enum muse_run_kind kind)
{
        switch (kind) {
        case MUSE_RUN_STDOUT:
                return "stdout";
        case MUSE_RUN_DOWNLOAD:
                return "download_url";
        default:
                return "result";
        }
}

int muse_add_run(struct snap *top, const struct muse_ask *ask, int r, enum muse_run_kind kind,
                 struct blob *out, bool *terminal)
{
        const char *name = r == 0 ? muse_run_file(kind) : ask->file;

        if (r == 0)
                return jsonutil_snap_result(snap_add_file(top, name, out), name);
        blob_unref(out);
        if (r == -EFBIG) {
                /* over --max-reply: the run is final and its results will not
                 * shrink, so they are not asked again at every refetch; the
                 * file stays, lazy, and a read asks with the core's cap (EFBIG
                 * when that is --max-reply too), never a truncated file */
                return jsonutil_snap_result(snap_add_lazy(top, name), name);
        }
        /* the state is still worth showing; results are asked again next time */
        *terminal = false;
        return 0;
}

int muse_parse_content(const char *body, size_t len, long status, struct blob **ret)
{
        struct json_object *root = NULL;
        struct blob *out;
        int r;

        if (status == 200 && is_zip(body, len)) {
                out = blob_new(body, len);
                if (!out)
                        return -ENOMEM;
                *ret = out;
                return 0;
        }
        if (status == 200 && len > NOT_ZIP_JSON_MAX)
                return -EBADMSG;
        r = parse_object(body, len, status, &root);
        json_object_put(root);
        return r < 0 ? r : -EBADMSG;    /* JSON, but no zip */
}

int muse_parse_list(const char *body, size_t len, struct backend_list *ret)
{
        struct backend_list out = { 0 };
        struct json_object *root = NULL;
        size_t count;
        int r;

        r = jsonutil_parse(body, len, &root);
        if (r < 0)
                return r;
        if (!json_object_is_type(root, json_type_array)) {
                r = -EBADMSG;
                goto out;
        }
        count = json_object_array_length(root);
        if (count > LIST_MAX) {
                r = -E2BIG;
                goto out;
        }
        for (size_t i = 0; i < count; i++) {
                const char *name;
                size_t name_len;

                /* the JSON length, not strlen: "a\u0000b" must not pass as "a" */
                if (!jsonutil_str(json_object_array_get_idx(root, i), "name", &name, &name_len) ||
                    !snap_name_ok(name, name_len)) {
                        log_debug("muse: left out a software name that is not a safe file name");
                        continue;
                }
                r = backend_list_add(&out, strdup(name), 0, NULL, false);
                if (r < 0)
                        goto out;
        }
        *ret = out;
        memset(&out, 0, sizeof(out));
        r = 0;
out:
        backend_list_clear(&out);
        json_object_put(root);
        return r;
}

/* GETs BASE/software/muse/WHAT/NAME/KEY/ with both segments escaped; with
 * fn, a 200 body goes to fn, at most stream_max bytes (http_send). */
static int get_run_url(struct backend *b, const char *what, const char *const keys[],
                       http_chunk_fn fn, void *ctx, size_t stream_max, struct http_reply *ret)
{
        char *name = http_escape(keys[0]), *key = http_escape(keys[1]), *url = NULL;
        int r = -ENOMEM;

        if (name && key && asprintf(&url, "%ssoftware/muse/%s/%s/%s/", b->base_url, what, name,
                                    key) >= 0) {
                struct http_request req = { .method = "GET", .url = url, .on_chunk = fn,
                                            .ctx = ctx, .stream_max = stream_max };

                r = http_send(b->http, &req, ret);
        } else {
                url = NULL;
        }
        free(url);
        free(name);
        free(key);
        return r;
}

/* Whether a failure of a results request tells of the server's health: not
 * "no such run yet" and not our own cap. */
static int health_of(int r)
{
        return r == -ENOENT || r == -EFBIG ? 0 : r;
}

struct muse {
        bool slurm_link;        /* a SLURM endpoint is mounted: runs link to their job */
};

/* With a SLURM endpoint, the run's SLURM job is a link away:
 * software/NAME/KEY/slurm -> ../../../slurm/JOB_ID (a job id is digits). */
static void add_slurm_link(struct snap *top)
{
        const struct snap *id = snap_child(top, "job_id");
        char target[64];
        size_t n = 0;

        if (!id || id->type != SNAP_FILE || !id->content)
                return;
        while (n < id->content->len && n < 20 && id->content->data[n] >= '0' &&
               id->content->data[n] <= '9')
                n++;
        if (n == 0 || n != id->content->len - 1 || id->content->data[n] != '\n')
                return;
        snprintf(target, sizeof(target), "../../../slurm/%.*s", (int)n, id->content->data);
        jsonutil_snap_result(snap_add_link(top, "slurm", target), "slurm");
}

static int muse_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct http_reply rep = { 0 };
        struct muse_ask ask = { 0 };
        enum muse_run_kind kind = MUSE_RUN_RESULT;
        struct blob *out = NULL;
        struct snap *top = NULL;
        bool terminal = false;
        char err[64];
        int r;

        r = get_run_url(b, "state", keys, NULL, NULL, 0, &rep);
        if (r >= 0)
                r = muse_parse_state(rep.body, rep.len, rep.status, &top, &terminal, &ask);
        backend_note(b, r, "state");
        http_reply_clear(&rep);
        if (r < 0)
                return r;
        if (ask.get_run) {
                r = get_run_url(b, "run", keys, NULL, NULL, 0, &rep);
                if (r >= 0)
                        r = muse_parse_run(rep.body, rep.len, rep.status, rep.content_type,
                                           ask.expect_json, &kind, &out);
                backend_note(b, health_of(r), "run");
                http_reply_clear(&rep);
                if (r < 0)
                        log_debug("muse: results of '%s/%s': %s", keys[0], keys[1],
                                  strerror_r(-r, err, sizeof(err)));
                r = muse_add_run(top, &ask, r, kind, out, &terminal);
                if (r < 0) {
                        snap_free(top);
                        return r;
                }
        }
        if (((struct muse *)b->priv)->slurm_link)
                add_slurm_link(top);
        ret->snap = top;
        ret->terminal = terminal;
        return 0;
}

/* A lazy file's bytes as they arrive, up to max (http_send enforces it too). */
struct collect {
        char *buf;              /* owned */
        size_t len, cap, max;
};

static int collect_chunk(void *ctx, const char *data, size_t len)
{
        struct collect *c = ctx;

        if (len > c->max - c->len)
                return -EFBIG;
        if (len + 1 > c->cap - c->len) {
                size_t cap = c->cap ? c->cap : COLLECT_START;
                char *p;

                while (cap - c->len < len + 1 && cap <= SIZE_MAX / 2)
                        cap *= 2;
                /* no more than the cap allows: 16 MiB + 1, not 32 MiB */
                if (c->max < SIZE_MAX && cap > c->max + 1)
                        cap = c->max + 1;
                if (cap - c->len < len + 1)
                        return -ENOMEM;
                p = realloc(c->buf, cap);
                if (!p)
                        return -ENOMEM;
                c->buf = p;
                c->cap = cap;
        }
        memcpy(c->buf + c->len, data, len);
        c->len += len;
        c->buf[c->len] = '\0';
        return 0;
}

/* content.zip: GET content. stdout, result, download_url: GET run again,
 * when the fetch found the results over --max-reply (muse_add_run). */
static int muse_fetch_file(struct backend *b, const char *const keys[], const char *name,
                           size_t max, struct blob **ret)
{
        struct http_reply rep = { 0 };
        struct collect c = { .max = max };
        enum muse_run_kind kind;
        bool content = strcmp(name, "content.zip") == 0;
        struct blob *out = NULL;
        const char *body;
        size_t len;
        int r;

        if (!content && strcmp(name, "stdout") != 0 && strcmp(name, "result") != 0 &&
            strcmp(name, "download_url") != 0)
                return -ENOENT;
        r = get_run_url(b, content ? "content" : "run", keys, collect_chunk, &c, max, &rep);
        if (r < 0)
                goto out;
        /* a 200 body was streamed into c; any other stays in rep (--max-reply) */
        body = rep.status == 200 ? (c.buf ? c.buf : "") : rep.body;
        len = rep.status == 200 ? c.len : rep.len;
        if (content) {
                r = muse_parse_content(body, len, rep.status, &out);
        } else {
                r = muse_parse_run(body, len, rep.status, rep.content_type,
                                   strcmp(name, "result") != 0, &kind, &out);
                if (r == 0 && strcmp(muse_run_file(kind), name) != 0)
                        r = -EBADMSG;   /* the reply is of another kind than before */
        }
out:
        backend_note(b, health_of(r), content ? "content" : "run");
        http_reply_clear(&rep);
        free(c.buf);
        if (r < 0) {
                blob_unref(out);
                return r;
        }
        *ret = out;
        return 0;
}

static int muse_list(struct backend *b, struct backend_list *ret)
{
        struct http_reply rep = { 0 };
        char *url = NULL;
        int r;

        if (asprintf(&url, "%ssoftware/list", b->base_url) < 0)
                return -ENOMEM;
        r = http_request(b->http, "GET", url, NULL, &rep);
        if (r >= 0)
                r = rep.status == 200 ? muse_parse_list(rep.body, rep.len, ret)
                                      : rep.status == 404 ? -EIO /* not a ws API: software/ exists */
                                                          : http_status_errno(rep.status);
        backend_note(b, r, "software/list");
        http_reply_clear(&rep);
        free(url);
        return r;
}

static void muse_free(struct backend *b)
{
        free(b->priv);
}

static const struct backend_ops muse_ops = {
        .name = "muse",
        .free = muse_free,
        .root = "software",
        .depth = 2,
        .fetch = muse_fetch,
        .list = muse_list,
        .fetch_file = muse_fetch_file,
};

int muse_backend_new(struct http *http, const char *url, bool slurm_link, struct backend **ret)
{
        struct backend *b = NULL;
        size_t len = strlen(url);
        int r;

        r = backend_alloc(&muse_ops, http, url, &b);
        if (r < 0)
                return r;
        /* the base ends in '/' (the documented form is http://host:8000/api/) */
        if (len == 0 || url[len - 1] != '/') {
                free(b->base_url);
                if (asprintf(&b->base_url, "%s/", url) < 0) {
                        b->base_url = NULL;
                        backend_free(b);
                        return -ENOMEM;
                }
        }
        b->priv = calloc(1, sizeof(struct muse));
        if (!b->priv) {
                backend_free(b);
                return -ENOMEM;
        }
        ((struct muse *)b->priv)->slurm_link = slurm_link;
        *ret = b;
        return 0;
}
