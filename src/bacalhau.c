/* bacalhau: see include/jobfs/bacalhau.h; API facts in shared/api/bacalhau.md.
 *
 * Quirks kept on purpose: the 200 reply is text/plain (so the content type is
 * not checked), and an unknown job is a 500 whose plain-text body starts with
 * "Job not found", which we turn into ENOENT.
 */
#include "jobfs/bacalhau.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define LIST_MAX 1000000        /* job ids from one list reply */

enum path_mode { PATH_UNKNOWN, PATH_REQUESTER, PATH_LEGACY };

struct bacalhau {
        int mode;               /* enum path_mode, atomic */
};

/* Summary priority (shared/README.md): live states first, then final ones. */
static const char *const summary_order[] = {
        "Running", "Verifying", "Waiting", "Bidding", "Completed", "Error", "Cancelled",
};

bool bacalhau_state_is_terminal(const char *s)
{
        static const char *const final[] = {
                "Completed", "Error", "Cancelled", "CompletedPartially", "Failed", "Stopped",
        };

        if (!s)
                return false;
        for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
                if (strcmp(s, final[i]) == 0)
                        return true;
        return false;
}

struct job_summary {
        unsigned seen;          /* bit i: a shard is in summary_order[i] */
        size_t shards;
        bool all_final;
};

static void summary_add(struct job_summary *sum, const char *state)
{
        sum->shards++;
        if (!bacalhau_state_is_terminal(state))
                sum->all_final = false;
        for (size_t i = 0; state && i < sizeof(summary_order) / sizeof(summary_order[0]); i++)
                if (strcmp(state, summary_order[i]) == 0)
                        sum->seen |= 1u << i;
}

/* Fills one shard (or execution) directory from its JSON object. */
static int add_shard_files(struct snap *dir, struct json_object *sh)
{
        static const char *const run_text[] = {
                "exitCode", "runnerError", "stdouttruncated", "stderrtruncated",
        };
        static const char *const published[] = {
                "StorageSource", "Name", "CID", "URL", "SourcePath", "path",
        };
        struct json_object *ro = jsonutil_get(sh, "RunOutput");
        struct json_object *pr = jsonutil_get(sh, "PublishedResults");
        struct json_object *vr = jsonutil_get(sh, "VerificationResult");
        int r = 0;

        r = r ? r : jsonutil_add_text(dir, "state", sh, "State");
        r = r ? r : jsonutil_add_text(dir, "status", sh, "Status");
        r = r ? r : jsonutil_add_text(dir, "VerificationProposal", sh, "VerificationProposal");
        r = r ? r : jsonutil_add_bytes(dir, "stdout", ro, "stdout");
        r = r ? r : jsonutil_add_bytes(dir, "stderr", ro, "stderr");
        for (size_t i = 0; !r && i < sizeof(run_text) / sizeof(run_text[0]); i++)
                r = jsonutil_add_text(dir, run_text[i], ro, run_text[i]);
        for (size_t i = 0; !r && i < sizeof(published) / sizeof(published[0]); i++)
                r = jsonutil_add_text(dir, published[i], pr, published[i]);
        r = r ? r : jsonutil_add_text(dir, "Complete", vr, "Complete");
        r = r ? r : jsonutil_add_text(dir, "Result", vr, "Result");
        return r;
}

/* Gets or makes NODE/SHARD in top; *ret NULL (and 0) when a name is unsafe. */
static int shard_dir(struct snap *top, const char *node, const char *shard, struct snap **ret)
{
        struct snap *nd = (struct snap *)snap_child(top, node);
        struct snap *sd;
        int r;

        *ret = NULL;
        if (strcmp(node, "state") == 0 || strcmp(node, "state.json") == 0)
                return jsonutil_snap_result(-EEXIST, node);     /* the job's own files */
        if (!nd) {
                r = snap_add_dir(top, node, &nd);
                if (r < 0)
                        return jsonutil_snap_result(r, node);
        } else if (!nd->is_dir) {
                return 0;
        }
        r = snap_add_dir(nd, shard, &sd);
        if (r < 0)
                return jsonutil_snap_result(r, shard);
        *ret = sd;
        return 0;
}

static int add_shard(struct snap *top, struct job_summary *sum, const char *node,
                     const char *shard, struct json_object *sh)
{
        const char *state = NULL;
        struct snap *dir;
        int r;

        if (!json_object_is_type(sh, json_type_object))
                return 0;
        jsonutil_str(sh, "State", &state, NULL);
        summary_add(sum, state);
        r = shard_dir(top, node, shard, &dir);
        if (r < 0 || !dir)
                return r;
        return add_shard_files(dir, sh);
}

/* E1/E2: {"Nodes":{NODE:{"Shards":{"0":{...}}}}} */
static int parse_nodes(struct snap *top, struct job_summary *sum, struct json_object *nodes)
{
        json_object_object_foreach(nodes, node, nobj) {
                struct json_object *shards = jsonutil_get(nobj, "Shards");

                if (!shards || !json_object_is_type(shards, json_type_object))
                        continue;
                json_object_object_foreach(shards, idx, sh) {
                        int r = add_shard(top, sum, node, idx, sh);

                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* E3/E4: {"Executions":[{"NodeId":...,"ShardIndex"?:n,...}]} */
static int parse_executions(struct snap *top, struct job_summary *sum, struct json_object *execs);

/* E3: {"Shards":{"0":{"Executions":[...]}}}: the shard index is the key */
static int parse_e3_shards(struct snap *top, struct job_summary *sum, struct json_object *shards)
{
        json_object_object_foreach(shards, idx, sh) {
                struct json_object *execs = jsonutil_get(sh, "Executions");
                size_t n;

                if (!execs || !json_object_is_type(execs, json_type_array))
                        continue;
                n = json_object_array_length(execs);
                for (size_t i = 0; i < n; i++) {
                        struct json_object *ex = json_object_array_get_idx(execs, i);
                        const char *node;
                        int r;

                        if (!jsonutil_str(ex, "NodeId", &node, NULL))
                                continue;
                        r = add_shard(top, sum, node, idx, ex);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int parse_executions(struct snap *top, struct job_summary *sum, struct json_object *execs)
{
        size_t n = json_object_array_length(execs);

        for (size_t i = 0; i < n; i++) {
                struct json_object *ex = json_object_array_get_idx(execs, i);
                struct json_object *si = jsonutil_get(ex, "ShardIndex");
                const char *node;
                char idx[32];
                int r;

                if (!jsonutil_str(ex, "NodeId", &node, NULL))
                        continue;
                snprintf(idx, sizeof(idx), "%d",
                         si && json_object_is_type(si, json_type_int) ? json_object_get_int(si) : 0);
                r = add_shard(top, sum, node, idx, ex);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_summary(struct snap *top, struct json_object *state, const struct job_summary *sum,
                       bool *ret_terminal)
{
        const char *job_state;

        if (jsonutil_str(state, "State", &job_state, NULL)) {
                *ret_terminal = bacalhau_state_is_terminal(job_state);
                return snap_add_text(top, "state", job_state, strlen(job_state));
        }
        *ret_terminal = sum->shards > 0 && sum->all_final;
        for (size_t i = 0; i < sizeof(summary_order) / sizeof(summary_order[0]); i++)
                if (sum->seen & (1u << i))
                        return snap_add_text(top, "state", summary_order[i],
                                             strlen(summary_order[i]));
        return 0;       /* no shard in a known state: no summary, like an absent field */
}

int bacalhau_parse_states(const char *body, size_t len, struct snap **ret, bool *ret_terminal)
{
        struct job_summary sum = { .all_final = true };
        struct json_object *root = NULL, *state, *v;
        struct snap *top = NULL;
        bool terminal = false;
        int r;

        r = jsonutil_parse(body, len, &root);
        if (r < 0)
                return r;
        state = jsonutil_get(root, "state");
        if (!state || !json_object_is_type(state, json_type_object)) {
                r = -EBADMSG;
                goto out;
        }
        top = snap_new();
        if (!top) {
                r = -ENOMEM;
                goto out;
        }
        v = jsonutil_get(state, "Nodes");
        if (v && json_object_is_type(v, json_type_object))
                r = parse_nodes(top, &sum, v);
        v = jsonutil_get(state, "Executions");
        if (!r && v && json_object_is_type(v, json_type_array))
                r = parse_executions(top, &sum, v);
        v = jsonutil_get(state, "Shards");
        if (!r && v && json_object_is_type(v, json_type_object))
                r = parse_e3_shards(top, &sum, v);
        if (!r)
                r = add_summary(top, state, &sum, &terminal);
        if (!r)
                r = snap_add_file(top, "state.json", blob_new(body, len));
        if (r < 0)
                goto out;
        *ret = top;
        *ret_terminal = terminal;
        top = NULL;
out:
        snap_free(top);
        json_object_put(root);
        return r;
}

/* The job id of one list entry: v0.3.16-19 {"Metadata":{"ID"}}, v0.3.20+
 * {"Job":{"Metadata":{"ID"}}}, and the swagger example's flat {"ID"}. */
static const char *list_entry_id(struct json_object *job)
{
        const char *id;

        if (jsonutil_str(jsonutil_get(job, "Metadata"), "ID", &id, NULL) ||
            jsonutil_str(jsonutil_get(jsonutil_get(job, "Job"), "Metadata"), "ID", &id, NULL) ||
            jsonutil_str(job, "ID", &id, NULL))
                return id;
        return NULL;
}

int bacalhau_parse_list(const char *body, size_t len, char ***ret_ids, size_t *ret_n)
{
        struct json_object *root = NULL, *jobs;
        char **ids = NULL;
        size_t n = 0, count;
        int r;

        r = jsonutil_parse(body, len, &root);
        if (r < 0)
                return r;
        jobs = jsonutil_get(root, "jobs");
        if (!json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "jobs", NULL) ||
            (jobs && !json_object_is_type(jobs, json_type_array))) {
                r = -EBADMSG;
                goto out;
        }
        count = jobs ? json_object_array_length(jobs) : 0;     /* Go encodes nil as null */
        if (count > LIST_MAX) {
                r = -E2BIG;
                goto out;
        }
        ids = calloc(count ? count : 1, sizeof(*ids));
        if (!ids) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < count; i++) {
                const char *id = list_entry_id(json_object_array_get_idx(jobs, i));

                if (!id || !snap_name_ok(id, strlen(id)))
                        continue;
                ids[n] = strdup(id);
                if (!ids[n]) {
                        r = -ENOMEM;
                        goto out;
                }
                n++;
        }
        *ret_ids = ids;
        *ret_n = n;
        ids = NULL;
        r = 0;
out:
        backend_names_free(ids, n);
        json_object_put(root);
        return r;
}

/* POSTs body to the states or list endpoint, trying the v0.3.17+ path first
 * and the old one on 404, and remembering which one the server has. */
static int post_endpoint(struct backend *b, const char *what, const char *body,
                         struct http_reply *ret)
{
        struct bacalhau *bc = b->priv;
        int mode = __atomic_load_n(&bc->mode, __ATOMIC_ACQUIRE);
        char url[2048];
        int r;

        for (int m = PATH_REQUESTER; m <= PATH_LEGACY; m++) {
                if (mode != PATH_UNKNOWN && m != mode)
                        continue;
                snprintf(url, sizeof(url), "%s/%s%s", b->base_url,
                         m == PATH_REQUESTER ? "requester/" : "", what);
                r = http_request(b->http, "POST", url, body, ret);
                if (r < 0)
                        return r;
                if (ret->status != 404 || mode != PATH_UNKNOWN) {
                        if (mode == PATH_UNKNOWN) {
                                __atomic_store_n(&bc->mode, m, __ATOMIC_RELEASE);
                                if (m == PATH_LEGACY)
                                        log_info("bacalhau: %s has no /requester/ paths; using /%s",
                                                 b->base_url, what);
                        }
                        return 0;
                }
                http_reply_clear(ret);
        }
        log_error("bacalhau: %s answers 404 to both /requester/%s and /%s: not a Bacalhau requester?",
                  b->base_url, what, what);
        return -EPROTONOSUPPORT;
}

static char *request_body(struct backend *b, const char *key, const char *value)
{
        struct json_object *o = json_object_new_object();
        char *s = NULL;

        if (!o)
                return NULL;
        json_object_object_add(o, "client_id", json_object_new_string(b->client_id ? b->client_id : ""));
        if (key)
                json_object_object_add(o, key, json_object_new_string(value));
        else
                json_object_object_add(o, "return_all", json_object_new_boolean(!b->client_id));
        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return s;
}

/* A non-200 reply: 500 "Job not found. ID: x" is ENOENT, the rest by status. */
static int reply_errno(const struct http_reply *rep)
{
        if (rep->status == 500 && rep->body && strncmp(rep->body, "Job not found", 13) == 0)
                return -ENOENT;
        return http_status_errno(rep->status);
}

static int bacalhau_fetch(struct backend *b, const char *const keys[], struct snap **ret_snap,
                          bool *ret_terminal)
{
        struct http_reply rep = { 0 };
        char *body = request_body(b, "job_id", keys[0]);
        int r;

        if (!body)
                return -ENOMEM;
        r = post_endpoint(b, "states", body, &rep);
        if (r >= 0)
                r = rep.status == 200 ? bacalhau_parse_states(rep.body, rep.len, ret_snap, ret_terminal)
                                      : reply_errno(&rep);
        backend_note(b, r, "states");
        http_reply_clear(&rep);
        free(body);
        return r;
}

static int bacalhau_list(struct backend *b, char ***ret_names, size_t *ret_n)
{
        struct http_reply rep = { 0 };
        char *body = request_body(b, NULL, NULL);
        int r;

        if (!body)
                return -ENOMEM;
        r = post_endpoint(b, "list", body, &rep);
        if (r >= 0)
                r = rep.status == 200 ? bacalhau_parse_list(rep.body, rep.len, ret_names, ret_n)
                                      : http_status_errno(rep.status);
        backend_note(b, r, "list");
        http_reply_clear(&rep);
        free(body);
        return r;
}

static void bacalhau_free(struct backend *b)
{
        free(b->priv);
}

static const struct backend_ops bacalhau_ops = {
        .name = "bacalhau",
        .fetch = bacalhau_fetch,
        .list = bacalhau_list,
        .free = bacalhau_free,
};

int bacalhau_backend_new(struct http *http, const char *url, const char *client_id,
                         struct backend **ret)
{
        struct backend *b = calloc(1, sizeof(*b));
        size_t len;

        if (!b)
                return -ENOMEM;
        pthread_mutex_init(&b->lock, NULL);
        b->ops = &bacalhau_ops;
        b->http = http;
        b->base_url = strdup(url);
        b->client_id = client_id ? strdup(client_id) : NULL;
        b->priv = calloc(1, sizeof(struct bacalhau));
        if (!b->base_url || (client_id && !b->client_id) || !b->priv) {
                backend_free(b);
                return -ENOMEM;
        }
        len = strlen(b->base_url);
        while (len > 0 && b->base_url[len - 1] == '/')
                b->base_url[--len] = '\0';
        *ret = b;
        return 0;
}
