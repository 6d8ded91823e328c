/* muse: see include/jobfs/muse.h; API facts in shared/api/muse.md.
 *
 * The ws API documents no status codes, only the error body, so replies are
 * judged by their body first: an error object is "no such run" when the
 * status is below 500, and a server failure otherwise.
 */
#include "jobfs/muse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define LIST_MAX 100000         /* software names from one list reply */

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

int muse_parse_state(const char *body, size_t len, long status, struct snap **ret,
                     bool *ret_terminal, bool *ret_want_stdout)
{
        struct json_object *root = NULL, *report, *process, *request;
        struct snap *top = NULL;
        const char *cr = NULL, *rtype = NULL;
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
        if (r < 0)
                goto out;
        /* returned_type defaults to stdout (ws docs) when the report omits it */
        if (!jsonutil_str(request, "returned_type", &rtype, NULL))
                rtype = "stdout";
        *ret_terminal = strcmp(cr, "OK") == 0 || strcmp(cr, "NOK") == 0;
        *ret_want_stdout = strcmp(cr, "OK") == 0 && strcmp(rtype, "stdout") == 0;
        *ret = top;
        top = NULL;
out:
        snap_free(top);
        json_object_put(root);
        return r;
}

int muse_parse_run(const char *body, size_t len, long status, struct blob **ret)
{
        struct json_object *root = NULL;
        const char *s;
        size_t n;
        int r;

        r = parse_object(body, len, status, &root);
        if (r < 0)
                return r;
        if (!jsonutil_str(jsonutil_get(root, "info"), "stdout", &s, &n)) {
                r = -EBADMSG;
                goto out;
        }
        *ret = blob_new(s, n);
        r = *ret ? 0 : -ENOMEM;
out:
        json_object_put(root);
        return r;
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

/* GETs BASE/software/muse/WHAT/NAME/KEY/ with both segments escaped. */
static int get_run_url(struct backend *b, const char *what, const char *const keys[],
                       struct http_reply *ret)
{
        char *name = http_escape(keys[0]), *key = http_escape(keys[1]), *url = NULL;
        int r = -ENOMEM;

        if (name && key && asprintf(&url, "%ssoftware/muse/%s/%s/%s/", b->base_url, what, name,
                                    key) >= 0)
                r = http_request(b->http, "GET", url, NULL, ret);
        else
                url = NULL;
        free(url);
        free(name);
        free(key);
        return r;
}

static int muse_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct http_reply rep = { 0 };
        struct blob *out = NULL;
        struct snap *top = NULL;
        bool terminal = false, want_stdout = false;
        char err[64];
        int r;

        r = get_run_url(b, "state", keys, &rep);
        if (r >= 0)
                r = muse_parse_state(rep.body, rep.len, rep.status, &top, &terminal, &want_stdout);
        backend_note(b, r, "state");
        http_reply_clear(&rep);
        if (r < 0)
                return r;
        if (want_stdout) {
                r = get_run_url(b, "run", keys, &rep);
                if (r >= 0)
                        r = muse_parse_run(rep.body, rep.len, rep.status, &out);
                backend_note(b, r == -ENOENT ? 0 : r, "run");
                http_reply_clear(&rep);
                if (r == 0)
                        r = snap_add_file(top, "stdout", out);
                if (r < 0) {
                        /* the state is still worth showing; stdout is asked again next time */
                        log_debug("muse: no stdout yet for '%s/%s': %s", keys[0], keys[1],
                                  strerror_r(-r, err, sizeof(err)));
                        terminal = false;
                        r = 0;
                }
        }
        ret->snap = top;
        ret->terminal = terminal;
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

static const struct backend_ops muse_ops = {
        .name = "muse",
        .root = "software",
        .depth = 2,
        .fetch = muse_fetch,
        .list = muse_list,
};

int muse_backend_new(struct http *http, const char *url, struct backend **ret)
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
        *ret = b;
        return 0;
}
