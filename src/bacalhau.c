/* bacalhau: see include/jobfs/bacalhau.h; API facts in shared/api/bacalhau.md
 * (v0.3) and shared/api/bacalhau-v1.md (v1, and how to tell them apart).
 *
 * This file holds the v0.3 client and the choice between it and the v1 one
 * (bacalhau_orch.c). It is over 800 lines because both are the one backend
 * jobs/ has: the v0.3 parsers (~550 lines) and the detection that picks
 * them (~200); everything of v1 lives in its own modules. Quirks kept on purpose: the v0.3 200 reply is
 * text/plain (so the content type is not checked), and an unknown job is a
 * 500 whose plain-text body starts with "Job not found", which we turn into
 * ENOENT.
 */
#include "jobfs/bacalhau.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/backend.h"
#include "jobfs/bacalhau_auth.h"
#include "jobfs/bacalhau_orch.h"
#include "jobfs/bacalhau_v1.h"
#include "jobfs/http.h"
#include "jobfs/jsonscan.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define LIST_MAX 1000000        /* job ids from one list reply */
/* A list reply carries every job in full (about 1.6 KB each): 1 GiB is
 * 600,000 jobs. It is scanned as it streams, never held. */
#define LIST_REPLY_MAX ((size_t)1 << 30)

enum path_mode { PATH_UNKNOWN, PATH_REQUESTER, PATH_LEGACY };
enum api_kind { KIND_UNKNOWN, KIND_V0, KIND_V1 };

struct bacalhau {
        int mode;               /* enum path_mode, atomic */
        char *client_id;        /* owned, may be NULL */
        enum bacalhau_api forced;
        struct bacalhau_auth auth;      /* owned; its header goes in headers[0] */
        const char *headers[2];         /* NULL-terminated, for http_send */
        struct bacalhau_orch *orch;     /* owned: the v1 client */
        pthread_mutex_t lock;           /* protects what follows; held while detecting */
        enum api_kind kind;             /* what the server speaks, once detected */
        struct bacalhau_v1_version version;
        bool version_known;             /* version holds what the server said */
        bool denied;                    /* the last answer was EACCES (logged once) */
        bool gone_logged;               /* a forced v0 met a v1.5+ server's 410 */
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
 * and the old one on 404, and remembering which one the server has.
 * subject: the job id the body asks for, named in the debug line, or NULL. */
static int post_endpoint(struct backend *b, const char *what, const char *body,
                         const char *subject, http_chunk_fn fn, void *ctx,
                         struct http_reply *ret)
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
                {
                        struct http_request req = { .method = "POST", .url = url, .body = body,
                                                    .headers = bc->headers, .on_chunk = fn,
                                                    .ctx = ctx, .stream_max = LIST_REPLY_MAX,
                                                    .subject = subject };

                        r = http_send(b->http, &req, ret);
                }
                free(url);
                if (r < 0)
                        return r;
                if (ret->status != 404 || mode != PATH_UNKNOWN) {
                        /* only an answer of the endpoint itself (200, or its 400/500
                         * errors) tells the path: a proxy's 401 or 503 does not */
                        if (mode == PATH_UNKNOWN &&
                            (ret->status == 200 || ret->status == 400 || ret->status == 500)) {
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
                  b->shown_url, what, what);
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
static int reply_errno(struct backend *b, const struct http_reply *rep)
{
        struct bacalhau *bc = b->priv;

        if (rep->status == 500 && rep->body && strncmp(rep->body, "Job not found", 13) == 0)
                return -ENOENT;
        if (rep->status == 410 && !bc->gone_logged) {
                bc->gone_logged = true;         /* a benign race: at worst two lines */
                log_warn("bacalhau: %s answers 410 Gone to the v0.3 API: it is v1.5 or later; "
                         "drop --bacalhau-api=v0", b->base_url);
        }
        return http_status_errno(rep->status);
}

static int v0_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct http_reply rep = { 0 };
        char *body = request_body(b, "job_id", keys[0]);
        int r;

        if (!body)
                return -ENOMEM;
        r = post_endpoint(b, "states", body, keys[0], NULL, NULL, &rep);
        if (r >= 0)
                r = rep.status == 200 ? bacalhau_parse_states(rep.body, rep.len, ret)
                                      : reply_errno(b, &rep);
        http_reply_clear(&rep);
        free(body);
        return r;
}

static int v0_list(struct backend *b, struct backend_list *ret)
{
        struct http_reply rep = { 0 };
        struct list_ids l = { 0 };
        struct jsonscan *js = NULL;
        char *body = request_body(b, NULL, NULL);
        int r;

        r = body ? jsonscan_new(on_list_value, &l, &js) : -ENOMEM;
        if (r >= 0)
                r = post_endpoint(b, "list", body, NULL, feed_list, js, &rep);
        if (r >= 0)
                r = rep.status == 200 ? list_finish(js, &l, ret) : reply_errno(b, &rep);
        backend_list_clear(&l.out);
        jsonscan_free(js);
        http_reply_clear(&rep);
        free(body);
        return r;
}

/* ---- which API: detection ------------------------------------------------ */

/* One GET or POST to base + path, with our credentials. */
static int request(struct backend *b, const char *method, const char *path, const char *body,
                   struct http_reply *ret)
{
        struct bacalhau *bc = b->priv;
        struct http_request req = { .method = method, .body = body, .headers = bc->headers };
        char *url = NULL;
        int r;

        if (asprintf(&url, "%s%s", b->base_url, path) < 0)
                return -ENOMEM;
        req.url = url;
        r = http_send(b->http, &req, ret);
        free(url);
        return r;
}

/* A dev build (v0.0.0-...) says no release: the execution numbering is
 * read off /agent/node, which has SupportedProtocols from v1.5.2 on. */
static void probe_numbering(struct backend *b, struct bacalhau_v1_version *v)
{
        struct http_reply rep = { 0 };

        if (request(b, "GET", "/api/v1/agent/node", NULL, &rep) == 0 && rep.status == 200)
                v->new_numbers = rep.body && strstr(rep.body, "\"SupportedProtocols\"");
        http_reply_clear(&rep);
}

/* v0.3's POST /version, for .jobfs/status only: any failure is ignored. */
static void probe_v0_version(struct backend *b, struct bacalhau *bc)
{
        struct http_reply rep = { 0 };

        if (request(b, "POST", "/version", "{\"client_id\":\"\"}", &rep) == 0 &&
            rep.status == 200 && bacalhau_v1_parse_version(rep.body, rep.len, &bc->version) == 0)
                bc->version_known = true;
        http_reply_clear(&rep);
}

/* Finds what the server speaks; bc->lock held. An answer that says
 * nothing (5xx, garbage, no connection) is an error: not remembered. */
static int detect(struct backend *b, struct bacalhau *bc)
{
        struct bacalhau_v1_version v;
        struct http_reply rep = { 0 };
        int r;

        bc->version_known = false;
        if (bc->forced == BACALHAU_API_V0) {
                bc->kind = KIND_V0;
                return 0;
        }
        r = request(b, "GET", "/api/v1/agent/version", NULL, &rep);
        if (r < 0)
                return r;
        if (rep.status == 200 && bacalhau_v1_parse_version(rep.body, rep.len, &v) == 0) {
                if (v.dev)
                        probe_numbering(b, &v);
                bc->version = v;
                bc->version_known = true;
                /* no v1.0.0-v1.0.3 answers here, so a release below v1.0.4 is odd */
                bc->kind = v.dev || bacalhau_v1_at_least(&v, 1, 0, 4) ? KIND_V1 : KIND_V0;
        } else if (rep.status == 404 && bc->forced == BACALHAU_API_AUTO) {
                bc->kind = KIND_V0;     /* era L: Go's mux knows no /api/v1/agent */
                probe_v0_version(b, bc);
        } else if (bc->forced == BACALHAU_API_V1 && rep.status != 401 && rep.status != 403 &&
                   rep.status < 500) {
                /* forced, and no version said: read it as a current release */
                bacalhau_v1_version_set("v0.0.0-unknown", &bc->version);
                bc->version.new_numbers = true;
                bc->kind = KIND_V1;
        } else {
                r = rep.status == 200 ? -EBADMSG
                                      : bacalhau_v1_reply_errno(rep.status, rep.body, rep.len);
        }
        http_reply_clear(&rep);
        if (r == 0 && bc->kind == KIND_V1)
                bacalhau_orch_reset(bc->orch);  /* maybe another server than before */
        if (r == 0)
                log_info("bacalhau: %s speaks the %s API%s%s", b->shown_url,
                         bc->kind == KIND_V1 ? "v1 orchestrator" : "v0.3 requester",
                         bc->version_known ? ", release " : "",
                         bc->version_known ? bc->version.text : "");
        return r;
}

/* The API to use now: detected on first use and after an outage. */
static int current_api(struct backend *b, enum api_kind *ret_kind,
                       struct bacalhau_v1_version *ret_version)
{
        struct bacalhau *bc = b->priv;
        int r = 0;

        pthread_mutex_lock(&bc->lock);
        if (bc->kind == KIND_UNKNOWN)
                r = detect(b, bc);
        *ret_kind = bc->kind;
        *ret_version = bc->version;
        pthread_mutex_unlock(&bc->lock);
        return r;
}

/* Errors that mean the server (or the way to it) went away, not an answer:
 * whatever comes back may be another release, so detect again. */
static bool lost_server(int r)
{
        return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EHOSTUNREACH ||
               r == -ENETUNREACH || r == -EPROTO || r == -EAGAIN;
}

/* Bookkeeping after each fetch or list: health, the one EACCES line, and
 * forgetting the API when the server was lost. */
static int after(struct backend *b, int r, const char *what)
{
        struct bacalhau *bc = b->priv;
        bool log_denied = false;

        backend_note(b, r, what);
        pthread_mutex_lock(&bc->lock);
        if (r == -EACCES && !bc->denied)
                log_denied = true;
        if (r != -ECANCELED)
                bc->denied = r == -EACCES;
        if (lost_server(r))
                bc->kind = KIND_UNKNOWN;
        pthread_mutex_unlock(&bc->lock);
        if (log_denied)
                log_warn("bacalhau: %s refuses access (%s credentials): check BACALHAU_API_KEY, "
                         "BACALHAU_API_USERNAME/PASSWORD or --bacalhau-token-file",
                         b->shown_url, bc->auth.kind);
        return r;
}

static int bacalhau_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct bacalhau *bc = b->priv;
        struct bacalhau_v1_version v;
        enum api_kind kind;
        int r = current_api(b, &kind, &v);

        if (r == 0)
                r = kind == KIND_V1 ? bacalhau_orch_fetch(bc->orch, &v, keys[0], ret)
                                    : v0_fetch(b, keys, ret);
        return after(b, r, kind == KIND_V1 ? "job" : "states");
}

static int bacalhau_list(struct backend *b, struct backend_list *ret)
{
        struct bacalhau *bc = b->priv;
        struct bacalhau_v1_version v;
        enum api_kind kind;
        int r = current_api(b, &kind, &v);

        if (r == 0)
                r = kind == KIND_V1 ? bacalhau_orch_list(bc->orch, &v, ret) : v0_list(b, ret);
        return after(b, r, kind == KIND_V1 ? "jobs" : "list");
}

/* .jobfs/status lines: the API, the release and its era, how we log in
 * (the kind of credentials, never them). */
static void bacalhau_status(struct backend *b, FILE *f)
{
        struct bacalhau *bc = b->priv;
        const char *forced = bc->forced == BACALHAU_API_AUTO ? "" : "forced, ";

        pthread_mutex_lock(&bc->lock);
        if (bc->kind == KIND_UNKNOWN)
                fprintf(f, "api: not detected yet\n");
        else if (bc->version_known || bc->kind == KIND_V1)
                fprintf(f, "api: %s (%s%s, era %s)\n", bc->kind == KIND_V1 ? "v1" : "v0", forced,
                        bc->version.text,
                        bc->kind == KIND_V1 ? bacalhau_v1_era(&bc->version) : "L");
        else
                fprintf(f, "api: v0 (%slegacy requester API, era L)\n", forced);
        pthread_mutex_unlock(&bc->lock);
        fprintf(f, "auth: %s\n", bc->auth.kind);
}

static void bacalhau_free(struct backend *b)
{
        struct bacalhau *bc = b->priv;

        if (!bc)
                return;
        bacalhau_orch_free(bc->orch);
        bacalhau_auth_clear(&bc->auth);
        pthread_mutex_destroy(&bc->lock);
        free(bc->client_id);
        free(bc);
}

static const struct backend_ops bacalhau_ops = {
        .name = "bacalhau",
        .root = "jobs",
        .depth = 1,
        .fetch = bacalhau_fetch,
        .list = bacalhau_list,
        .status = bacalhau_status,
        .free = bacalhau_free,
};

int bacalhau_backend_new(struct http *http, const struct bacalhau_config *cfg,
                         struct backend **ret)
{
        struct backend *b = NULL;
        struct bacalhau *bc;
        size_t len;
        int r;

        r = backend_alloc(&bacalhau_ops, http, cfg->url, &b);
        if (r < 0)
                return r;
        b->priv = bc = calloc(1, sizeof(*bc));
        if (!bc) {
                backend_free(b);
                return -ENOMEM;
        }
        pthread_mutex_init(&bc->lock, NULL);
        bc->auth.kind = "none";
        bc->forced = cfg->api;
        len = strlen(b->base_url);
        while (len > 0 && b->base_url[len - 1] == '/')
                b->base_url[--len] = '\0';
        r = bacalhau_auth_load(cfg->token_file, &bc->auth);
        bc->headers[0] = bc->auth.header;       /* NULL: none, and the list ends there */
        if (r == 0 && cfg->client_id && !(bc->client_id = strdup(cfg->client_id)))
                r = -ENOMEM;
        if (r == 0)
                r = bacalhau_orch_new(b, cfg->namespace, bc->headers, &bc->orch);
        if (r < 0) {
                backend_free(b);
                return r;
        }
        *ret = b;
        return 0;
}
