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
#include "jobfs/jsonscan.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define LIST_MAX 1000000        /* job ids from one list reply */
/* A list reply carries every job in full (about 1.6 KB each): 1 GiB is
 * 600,000 jobs. It is scanned as it streams, never held. */
#define LIST_REPLY_MAX ((size_t)1 << 30)

enum path_mode { PATH_UNKNOWN, PATH_REQUESTER, PATH_LEGACY };

struct bacalhau {
        int mode;               /* enum path_mode, atomic */
        char *client_id;        /* owned, may be NULL */
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

struct cut_keys;

/* What one parse gathers beside the snapshot. */
struct job_summary {
        unsigned seen;          /* bit i: a shard is in summary_order[i] */
        size_t shards;
        bool all_final;
        const struct cut_keys *cut;     /* keys json-c cut at a NUL: not names */
};

static bool is_cut_key(const struct cut_keys *k, const char *key);

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
        if (is_cut_key(sum->cut, node) || is_cut_key(sum->cut, shard)) {
                log_debug("left out a node or shard whose name holds a NUL");
                return 0;
        }
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
                        size_t len;
                        int r;

                        if (!jsonutil_str(ex, "NodeId", &node, &len) || strlen(node) != len)
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
                size_t len;
                int r;

                if (!jsonutil_str(ex, "NodeId", &node, &len) || strlen(node) != len)
                        continue;       /* a NUL inside: not a name */
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

/* Object keys that hold a NUL, cut where json-c cuts them ("a\u0000/x" is
 * seen by json-c as "a"): such a key must not pass for the safe name "a". */
struct cut_keys {
        char **v;
        size_t n;
};

static int on_key(void *ctx, const char *const *path, size_t depth, enum jsonscan_kind kind,
                  const char *value, size_t len)
{
        struct cut_keys *k = ctx;
        char **v;

        (void)path;
        (void)depth;
        if (kind != JSONSCAN_KEY || strlen(value) == len)
                return 0;
        if (k->n == SNAP_DIR_MAX)
                return -E2BIG;
        v = realloc(k->v, (k->n + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        k->v = v;
        k->v[k->n] = strdup(value);
        return k->v[k->n++] ? 0 : -ENOMEM;
}

/* Only when the reply has an escaped NUL at all (never, from a sane server). */
static int find_cut_keys(const char *body, size_t len, struct cut_keys *ret)
{
        struct jsonscan *js = NULL;
        int r;

        if (!memmem(body, len, "\\u0000", 6))
                return 0;
        r = jsonscan_new(on_key, ret, &js);
        if (r < 0)
                return r;
        jsonscan_report_keys(js, true);
        r = jsonscan_feed(js, body, len);
        jsonscan_free(js);
        return r == -EBADMSG ? 0 : r;   /* json-c judges the syntax */
}

static bool is_cut_key(const struct cut_keys *k, const char *key)
{
        if (!k)
                return false;
        for (size_t i = 0; i < k->n; i++)
                if (strcmp(k->v[i], key) == 0)
                        return true;
        return false;
}

static void cut_keys_clear(struct cut_keys *k)
{
        backend_names_free(k->v, k->n);
        k->v = NULL;
        k->n = 0;
}

/* The change signature of a states reply: its JobState, as the list has it. */
static int on_state_value(void *ctx, const char *const *path, size_t depth, enum jsonscan_kind kind,
                          const char *value, size_t len)
{
        uint64_t *sig = ctx;

        if (depth >= 2 && strcmp(path[0], "state") == 0)
                *sig = backend_sig_add(*sig, path + 1, depth - 1, (int)kind, value, len);
        return 0;
}

static int states_sig(const char *body, size_t len, uint64_t *ret)
{
        struct jsonscan *js = NULL;
        uint64_t sig = 0;
        int r = jsonscan_new(on_state_value, &sig, &js);

        if (r < 0)
                return r;
        r = jsonscan_feed(js, body, len);
        if (r == 0)
                r = jsonscan_end(js);
        jsonscan_free(js);
        /* json-c accepted the reply; a stricter scanner refusing it only costs
         * the change feed for this job (it is then polled on the budget) */
        *ret = r == 0 ? backend_sig_done(sig) : 0;
        return r == -ENOMEM ? r : 0;
}

int bacalhau_parse_states(const char *body, size_t len, struct backend_item *ret)
{
        struct cut_keys cut = { 0 };
        struct job_summary sum = { .all_final = true, .cut = &cut };
        struct json_object *root = NULL, *state, *v;
        struct snap *top = NULL;
        bool terminal = false;
        uint64_t sig = 0;
        int r;

        r = jsonutil_parse(body, len, &root);
        if (r < 0)
                return r;
        r = find_cut_keys(body, len, &cut);
        if (r < 0)
                goto out;
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
        if (!r)
                r = states_sig(body, len, &sig);
        if (r < 0)
                goto out;
        ret->snap = top;
        ret->terminal = terminal;
        ret->sig = sig;
        top = NULL;
out:
        cut_keys_clear(&cut);
        snap_free(top);
        json_object_put(root);
        return r;
}

/* Job ids gathered from a list reply as it streams in. */
struct list_ids {
        struct backend_list out;
        bool saw_jobs;          /* a top-level "jobs" array (or null) was there */
        char best[SNAP_NAME_MAX + 1];   /* the current entry's id so far */
        int best_rank;                  /* 0 = none yet; lower wins */
        uint64_t sig;           /* the current entry's JobState, as states_sig */
        bool has_state;
};

/* Where a list entry keeps its job id, best first: v0.3.16-19
 * jobs[].Metadata.ID, v0.3.20+ jobs[].Job.Metadata.ID, and the swagger
 * example's flat jobs[].ID. 0 for any other path. */
static int id_rank(const char *const *path, size_t depth)
{
        if (depth < 3 || strcmp(path[0], "jobs") != 0 || strcmp(path[1], "[]") != 0)
                return 0;
        if (depth == 4 && strcmp(path[2], "Metadata") == 0 && strcmp(path[3], "ID") == 0)
                return 1;
        if (depth == 5 && strcmp(path[2], "Job") == 0 && strcmp(path[3], "Metadata") == 0 &&
            strcmp(path[4], "ID") == 0)
                return 2;
        return depth == 3 && strcmp(path[2], "ID") == 0 ? 3 : 0;
}

/* The entry that just ended contributes its best id, and the signature of
 * its state when it had one (then the list is a change feed). */
static int flush_entry(struct list_ids *l)
{
        uint64_t sig = l->has_state ? backend_sig_done(l->sig) : 0;

        l->sig = 0;
        l->has_state = false;
        if (!l->best_rank)
                return 0;
        l->best_rank = 0;
        if (l->out.n == LIST_MAX)
                return -E2BIG;
        if (sig)
                l->out.feed = true;
        return backend_list_add(&l->out, strdup(l->best), sig, NULL, false);
}

/* Where an entry keeps its JobState, as path components below jobs[]:
 * v0.3.16-19 Status.JobState, v0.3.20+ State, the swagger example JobState.
 * 0 when the path is not inside one. */
static size_t state_offset(const char *const *path, size_t depth)
{
        if (depth >= 5 && strcmp(path[2], "Status") == 0 && strcmp(path[3], "JobState") == 0)
                return 4;
        if (depth >= 4 && (strcmp(path[2], "State") == 0 || strcmp(path[2], "JobState") == 0))
                return 3;
        return 0;
}

static int on_list_value(void *ctx, const char *const *path, size_t depth, enum jsonscan_kind kind,
                         const char *value, size_t len)
{
        struct list_ids *l = ctx;
        int rank;

        if (depth == 1 && strcmp(path[0], "jobs") == 0) {
                if (kind != JSONSCAN_ARRAY && kind != JSONSCAN_NULL)
                        return -EBADMSG;
                l->saw_jobs = true;
        }
        if (depth == 2 && strcmp(path[0], "jobs") == 0)
                return flush_entry(l);          /* a new entry starts */
        if (depth >= 3 && strcmp(path[0], "jobs") == 0) {
                size_t off = state_offset(path, depth);

                if (off) {
                        l->sig = backend_sig_add(l->sig, path + off, depth - off, (int)kind, value,
                                                 len);
                        l->has_state = true;
                }
        }
        rank = kind == JSONSCAN_STRING ? id_rank(path, depth) : 0;
        if (rank && (!l->best_rank || rank < l->best_rank) && snap_name_ok(value, len)) {
                memcpy(l->best, value, len + 1);
                l->best_rank = rank;
        }
        return 0;
}

static int feed_list(void *ctx, const char *data, size_t len)
{
        return jsonscan_feed(ctx, data, len);
}

/* A reply without a top-level "jobs" member is not a list reply (EBADMSG). */
static int list_finish(struct jsonscan *js, struct list_ids *l, struct backend_list *ret)
{
        int r = jsonscan_end(js);

        if (r == 0)
                r = flush_entry(l);
        if (r < 0)
                return r;
        if (!l->saw_jobs)
                return -EBADMSG;
        *ret = l->out;
        memset(&l->out, 0, sizeof(l->out));
        return 0;
}

int bacalhau_parse_list(const char *body, size_t len, struct backend_list *ret)
{
        struct list_ids l = { 0 };
        struct jsonscan *js = NULL;
        int r;

        r = jsonscan_new(on_list_value, &l, &js);
        if (r < 0)
                return r;
        r = jsonscan_feed(js, body, len);
        if (r == 0)
                r = list_finish(js, &l, ret);
        backend_list_clear(&l.out);
        jsonscan_free(js);
        return r;
}

/* POSTs body to the states or list endpoint, trying the v0.3.17+ path first
 * and the old one on 404, and remembering which one the server has. */
static int post_endpoint(struct backend *b, const char *what, const char *body,
                         http_chunk_fn fn, void *ctx, struct http_reply *ret)
{
        struct bacalhau *bc = b->priv;
        int mode = __atomic_load_n(&bc->mode, __ATOMIC_ACQUIRE);
        char *url;
        int r;

        for (int m = PATH_REQUESTER; m <= PATH_LEGACY; m++) {
                if (mode != PATH_UNKNOWN && m != mode)
                        continue;
                if (asprintf(&url, "%s/%s%s", b->base_url, m == PATH_REQUESTER ? "requester/" : "",
                             what) < 0)
                        return -ENOMEM;
                r = fn ? http_request_stream(b->http, "POST", url, body, fn, ctx, LIST_REPLY_MAX, ret)
                       : http_request(b->http, "POST", url, body, ret);
                free(url);
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
        log_debug("bacalhau: %s answers 404 to both /requester/%s and /%s: not a Bacalhau requester?",
                  b->base_url, what, what);
        return -EPROTONOSUPPORT;
}

static char *request_body(struct backend *b, const char *key, const char *value)
{
        const char *client_id = ((struct bacalhau *)b->priv)->client_id;
        struct json_object *o = json_object_new_object();
        char *s = NULL;

        if (!o)
                return NULL;
        json_object_object_add(o, "client_id", json_object_new_string(client_id ? client_id : ""));
        if (key)
                json_object_object_add(o, key, json_object_new_string(value));
        else
                json_object_object_add(o, "return_all", json_object_new_boolean(!client_id));
        {
                const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

                s = text ? strdup(text) : NULL;
        }
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

static int bacalhau_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct http_reply rep = { 0 };
        char *body = request_body(b, "job_id", keys[0]);
        int r;

        if (!body)
                return -ENOMEM;
        r = post_endpoint(b, "states", body, NULL, NULL, &rep);
        if (r >= 0)
                r = rep.status == 200 ? bacalhau_parse_states(rep.body, rep.len, ret)
                                      : reply_errno(&rep);
        backend_note(b, r, "states");
        http_reply_clear(&rep);
        free(body);
        return r;
}

static int bacalhau_list(struct backend *b, struct backend_list *ret)
{
        struct http_reply rep = { 0 };
        struct list_ids l = { 0 };
        struct jsonscan *js = NULL;
        char *body = request_body(b, NULL, NULL);
        int r;

        r = body ? jsonscan_new(on_list_value, &l, &js) : -ENOMEM;
        if (r >= 0)
                r = post_endpoint(b, "list", body, feed_list, js, &rep);
        if (r >= 0)
                r = rep.status == 200 ? list_finish(js, &l, ret)
                                      : http_status_errno(rep.status);
        backend_list_clear(&l.out);
        jsonscan_free(js);
        backend_note(b, r, "list");
        http_reply_clear(&rep);
        free(body);
        return r;
}

static void bacalhau_free(struct backend *b)
{
        struct bacalhau *bc = b->priv;

        if (bc)
                free(bc->client_id);
        free(bc);
}

static const struct backend_ops bacalhau_ops = {
        .name = "bacalhau",
        .root = "jobs",
        .depth = 1,
        .fetch = bacalhau_fetch,
        .list = bacalhau_list,
        .free = bacalhau_free,
};

int bacalhau_backend_new(struct http *http, const char *url, const char *client_id,
                         struct backend **ret)
{
        struct backend *b = NULL;
        struct bacalhau *bc;
        size_t len;
        int r;

        r = backend_alloc(&bacalhau_ops, http, url, &b);
        if (r < 0)
                return r;
        b->priv = bc = calloc(1, sizeof(*bc));
        if (!bc || (client_id && !(bc->client_id = strdup(client_id)))) {
                backend_free(b);
                return -ENOMEM;
        }
        len = strlen(b->base_url);
        while (len > 0 && b->base_url[len - 1] == '/')
                b->base_url[--len] = '\0';
        *ret = b;
        return 0;
}
