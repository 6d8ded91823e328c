/* bacalhau_v1_job: see include/jobfs/bacalhau_v1_job.h; the shapes per
 * release are in shared/api/bacalhau-v1.md (sections 3 and 4).
 *
 * Replies are read leniently: every key spelling any release used is
 * accepted whatever the version (a server reporting the wrong version still
 * reads), and a field of the wrong type is left out, not fatal. Only the
 * execution state numbers cannot be guessed from the reply, so they follow
 * the version.
 */
#include "jobfs/bacalhau_v1_job.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobfs/backend.h"
#include "jobfs/bacalhau_v1.h"
#include "jobfs/blob.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

/* history: 10 pages of 1,000 (bacalhau_orch.c) is 10,000 events; a job with
 * more shows its first 100,000 lines, at most 16 MiB (a line is ~80 bytes) */
#define HISTORY_LINES_MAX 100000
#define HISTORY_BYTES_MAX ((size_t)16 << 20)
#define HISTORY_PAGES_MAX 64
#define TOKEN_MAX 1024          /* a paging token is ~20 bytes */

/* ---- small readers ---------------------------------------------------------- */

/* An int64 member as sent: json-c keeps integers as int64 (never a double). */
static bool get_int(struct json_object *obj, const char *key, int64_t *ret)
{
        struct json_object *v = jsonutil_get(obj, key);

        if (!v || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

/* The items of a list body: "Items" (v1.4+) or the older key. */
static struct json_object *list_items(struct json_object *list, const char *old_key)
{
        struct json_object *a = jsonutil_get(list, "Items");

        if (!a || !json_object_is_type(a, json_type_array))
                a = jsonutil_get(list, old_key);
        return a && json_object_is_type(a, json_type_array) ? a : NULL;
}

/* A list reply: an object with the list key (an array or null). */
static bool is_list(struct json_object *root, const char *old_key)
{
        struct json_object *a = NULL;

        if (!json_object_is_type(root, json_type_object))
                return false;
        if (!json_object_object_get_ex(root, "Items", &a) &&
            !json_object_object_get_ex(root, old_key, &a))
                return false;
        return !a || json_object_is_type(a, json_type_array);  /* NULL: JSON null */
}

static size_t items_in(struct json_object *list, const char *old_key)
{
        struct json_object *a = list_items(list, old_key);

        return a ? json_object_array_length(a) : 0;
}

/* RFC 3339 UTC with 9 fractional digits, from int64 ns ("2025-03-01T16:11:20.101000001Z"):
 * fixed width, so `sort` orders it, and `date -d` reads it. */
static int add_time(struct snap *dir, const char *name, struct json_object *obj, const char *key)
{
        int64_t ns, sec, frac;
        char buf[64], day[32];
        struct tm tm;
        time_t t;

        if (!get_int(obj, key, &ns))
                return 0;
        sec = ns / 1000000000;
        frac = ns % 1000000000;
        if (frac < 0) {
                frac += 1000000000;
                sec--;
        }
        t = (time_t)sec;
        if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
                return 0;       /* not a time anyone sends: left out */
        strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, sizeof(buf), "%s.%09" PRId64 "Z", day, frac);
        return jsonutil_snap_result(snap_add_text(dir, name, buf, strlen(buf)), name);
}

enum state_kind { STATE_JOB, STATE_EXECUTION, STATE_DESIRED };

/* A state's StateType as text: a name as sent (jobs), or a number by the
 * release's table (executions) or the fixed one (desired states); a number
 * no table has stays a number. NULL when absent. */
static const char *state_text(struct json_object *state, const struct bacalhau_v1_version *ver,
                              enum state_kind kind, char num[static 24])
{
        static const char *const desired[] = { "Pending", "Running", "Stopped" };
        struct json_object *v = jsonutil_get(state, "StateType");
        const char *name = NULL;
        int64_t i;

        if (!v)
                return NULL;
        if (json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        if (!json_object_is_type(v, json_type_int))
                return NULL;
        i = json_object_get_int64(v);
        if (kind == STATE_EXECUTION)
                name = bacalhau_v1_exec_state(ver, i);
        else if (kind == STATE_DESIRED && i >= 0 && i < 3)
                name = desired[i];
        if (name)
                return name;
        snprintf(num, 24, "%" PRId64, i);
        return num;
}

static int add_string(struct snap *dir, const char *name, const char *s)
{
        if (!s)
                return 0;
        return jsonutil_snap_result(snap_add_text(dir, name, s, strlen(s)), name);
}

/* ---- the job builder ----------------------------------------------------------- */

struct bacalhau_v1_job {
        struct bacalhau_v1_version v;
        struct json_object *root;               /* the job reply */
        struct json_object *job;                /* borrowed: root.Job */
        struct blob *body;                      /* the job reply's bytes: state.json */
        bool cut_keys;                          /* a key held an escaped NUL */
        struct json_object *execs;              /* a separate executions reply */
        struct json_object *hist[HISTORY_PAGES_MAX];    /* history pages */
        size_t n_hist, hist_items;
};

int bacalhau_v1_job_new(const struct bacalhau_v1_version *v, struct bacalhau_v1_job **ret)
{
        struct bacalhau_v1_job *j = calloc(1, sizeof(*j));

        if (!j)
                return -ENOMEM;
        j->v = *v;
        *ret = j;
        return 0;
}

void bacalhau_v1_job_free(struct bacalhau_v1_job *j)
{
        if (!j)
                return;
        json_object_put(j->root);
        json_object_put(j->execs);
        for (size_t i = 0; i < j->n_hist; i++)
                json_object_put(j->hist[i]);
        blob_unref(j->body);
        free(j);
}

static bool has_nul_escape(const char *body, size_t len)
{
        return memmem(body, len, "\\u0000", 6) != NULL;
}

int bacalhau_v1_job_add_job(struct bacalhau_v1_job *j, const char *body, size_t len)
{
        struct json_object *root = NULL, *job;
        const char *id;
        size_t id_len;
        int r;

        if (j->root)
                return -EINVAL;
        r = jsonutil_parse(body, len, &root);
        if (r < 0)
                return r;
        job = jsonutil_get(root, "Job");
        if (!job || !json_object_is_type(job, json_type_object) ||
            !jsonutil_str(job, "ID", &id, &id_len) || id_len == 0 || strlen(id) != id_len) {
                json_object_put(root);
                return -EBADMSG;
        }
        j->body = blob_new(body, len);
        if (!j->body) {
                json_object_put(root);
                return -ENOMEM;
        }
        j->root = root;
        j->job = job;
        j->cut_keys = has_nul_escape(body, len);
        j->hist_items = items_in(jsonutil_get(root, "History"), "History");
        return 0;
}

int bacalhau_v1_job_add_executions(struct bacalhau_v1_job *j, const char *body, size_t len)
{
        struct json_object *root = NULL;
        int r = jsonutil_parse(body, len, &root);

        if (r < 0)
                return r;
        if (!is_list(root, "Executions")) {
                json_object_put(root);
                return -EBADMSG;
        }
        json_object_put(j->execs);
        j->execs = root;
        j->cut_keys = j->cut_keys || has_nul_escape(body, len);
        return 0;
}

int bacalhau_v1_job_add_history(struct bacalhau_v1_job *j, const char *body, size_t len,
                                size_t *ret_items, const char **ret_token)
{
        struct json_object *root = NULL;
        const char *token = NULL;
        size_t token_len = 0, n;
        int r;

        if (j->n_hist == HISTORY_PAGES_MAX)
                return -E2BIG;
        r = jsonutil_parse(body, len, &root);
        if (r < 0)
                return r;
        if (!is_list(root, "History")) {
                json_object_put(root);
                return -EBADMSG;
        }
        if (j->n_hist == 0)
                j->hist_items = 0;      /* the pages replace include=history's first 100 */
        n = items_in(root, "History");
        j->hist[j->n_hist++] = root;
        j->hist_items += n;
        if (!jsonutil_str(root, "NextToken", &token, &token_len) || token_len == 0 ||
            token_len > TOKEN_MAX || strlen(token) != token_len)
                token = NULL;
        *ret_items = n;
        *ret_token = token;
        return 0;
}

const char *bacalhau_v1_job_id(const struct bacalhau_v1_job *j)
{
        const char *id = NULL;

        return j->job && jsonutil_str(j->job, "ID", &id, NULL) ? id : NULL;
}

size_t bacalhau_v1_job_history_items(const struct bacalhau_v1_job *j)
{
        return j->hist_items;
}

/* ---- history lines ------------------------------------------------------------ */

struct buf {
        char *p;
        size_t len, cap;
        bool full;
};

static int buf_put(struct buf *b, const char *s, size_t n, bool clean)
{
        if (b->full || n > HISTORY_BYTES_MAX - b->len) {
                b->full = true;
                return 0;
        }
        if (n + 1 > b->cap - b->len) {
                size_t cap = b->cap ? b->cap : 4096;
                char *p;

                while (n + 1 > cap - b->len)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                /* one event, one line: tabs and newlines inside a field become spaces */
                b->p[b->len++] = clean && (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        }
        return 0;
}

static int put_str(struct buf *b, struct json_object *obj, const char *key)
{
        const char *s;
        size_t n;

        if (!jsonutil_str(obj, key, &s, &n) || n == 0)
                return 1;       /* nothing there */
        return buf_put(b, s, n, true);
}

/* "Previous -> New" of a v1.0.4-v1.3.0 event without a Comment. */
static int put_change(struct buf *b, const struct bacalhau_v1_version *v, struct json_object *ev)
{
        struct json_object *js = jsonutil_get(ev, "JobState");
        struct json_object *es = jsonutil_get(ev, "ExecutionState");
        struct json_object *ch = js && json_object_is_type(js, json_type_object) ? js : es;
        const char *side[2] = { "Previous", "New" };
        int r = 0;

        if (!ch || !json_object_is_type(ch, json_type_object))
                return 0;
        for (int i = 0; i < 2 && r == 0; i++) {
                struct json_object *x = jsonutil_get(ch, side[i]);
                const char *name = NULL;
                char num[24];

                if (x && json_object_is_type(x, json_type_string)) {
                        name = json_object_get_string(x);
                } else if (x && json_object_is_type(x, json_type_int)) {
                        int64_t n = json_object_get_int64(x);

                        name = ch == es ? bacalhau_v1_exec_state(v, n) : NULL;
                        if (!name) {
                                snprintf(num, sizeof(num), "%" PRId64, n);
                                name = num;
                        }
                } else {
                        name = "Undefined";     /* a zero value is omitted (v1.2+) */
                }
                r = buf_put(b, name, strlen(name), true);
                if (r == 0 && i == 0)
                        r = buf_put(b, " -> ", 4, false);
        }
        return r;
}

static int history_line(struct buf *b, const struct bacalhau_v1_version *v, struct json_object *ev)
{
        struct json_object *event = jsonutil_get(ev, "Event");
        int r;

        if (!json_object_is_type(ev, json_type_object))
                return 0;
        /* TIME: the event's Time, else Event.Timestamp */
        if ((r = put_str(b, ev, "Time")) == 1)
                r = put_str(b, event, "Timestamp");
        if (r < 0 || (r = buf_put(b, "\t", 1, false)) < 0)
                return r;
        /* TOPIC: Event.Topic (v1.3.1+), else JobLevel/ExecutionLevel */
        if ((r = put_str(b, event, "Topic")) == 1)
                r = put_str(b, ev, "Type");
        if (r < 0 || (r = buf_put(b, "\t", 1, false)) < 0)
                return r;
        /* MESSAGE: Event.Message, else Comment, else the state change */
        if ((r = put_str(b, event, "Message")) == 1 && (r = put_str(b, ev, "Comment")) == 1)
                r = put_change(b, v, ev);
        return r < 0 ? r : buf_put(b, "\n", 1, false);
}

static int history_array(struct buf *b, size_t *lines, const struct bacalhau_v1_version *v,
                         struct json_object *items)
{
        size_t n = items ? json_object_array_length(items) : 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < n && *lines < HISTORY_LINES_MAX; i++, (*lines)++)
                r = history_line(b, v, json_object_array_get_idx(items, i));
        return r;
}

static int add_history(struct snap *top, struct bacalhau_v1_job *j)
{
        struct json_object *embedded = jsonutil_get(j->root, "History");
        struct buf b = { 0 };
        size_t lines = 0;
        int r = 0;

        if (j->n_hist == 0 && !embedded)
                return 0;       /* no history asked for: no file */
        if (j->n_hist == 0)
                r = history_array(&b, &lines, &j->v, list_items(embedded, "History"));
        for (size_t i = 0; r == 0 && i < j->n_hist; i++)
                r = history_array(&b, &lines, &j->v, list_items(j->hist[i], "History"));
        if (b.full || lines == HISTORY_LINES_MAX)
                log_debug("bacalhau: a job's history was cut at %zu lines", lines);
        if (r == 0)
                r = jsonutil_snap_result(snap_add_file(top, "history", blob_new(b.p ? b.p : "",
                                                                                 b.len)),
                                         "history");
        free(b.p);
        return r;
}

/* ---- executions ------------------------------------------------------------------ */

/* The job directory's own names: an execution's node can never be one. */
static const char *const job_files[] = {
        "name", "namespace", "type", "state", "message", "created", "modified", "job.json",
        "state.json", "history",
};

static bool is_job_file(const char *name)
{
        for (size_t i = 0; i < sizeof(job_files) / sizeof(job_files[0]); i++)
                if (strcmp(name, job_files[i]) == 0)
                        return true;
        return false;
}

struct exec_ref {
        struct json_object *ex;
        const char *node, *id;
        int64_t create_ns, modify_ns;
};

/* Newest first on each node: by CreateTime, then ModifyTime, then ID. */
static int exec_cmp(const void *pa, const void *pb)
{
        const struct exec_ref *a = pa, *b = pb;
        int c = strcmp(a->node, b->node);

        if (c)
                return c;
        if (a->create_ns != b->create_ns)
                return a->create_ns > b->create_ns ? -1 : 1;
        if (a->modify_ns != b->modify_ns)
                return a->modify_ns > b->modify_ns ? -1 : 1;
        return -strcmp(a->id, b->id);
}

/* RunOutput's keys, in the spelling of v1.2+ and of v1.0.4-v1.1 ("stderr" is
 * the same in both: the one key v1.2 left lower-case). */
static const char *ro_key(struct json_object *ro, const char *now, const char *old)
{
        return jsonutil_get(ro, now) ? now : old;
}

static int add_params(struct snap *dir, struct json_object *params, bool cut_keys)
{
        int r = 0;

        if (!params || !json_object_is_type(params, json_type_object))
                return 0;
        if (cut_keys) {
                log_debug("bacalhau: left out published result parameters (a key holds a NUL)");
                return 0;
        }
        json_object_object_foreach(params, key, val) {
                enum json_type t = json_object_get_type(val);

                if (t != json_type_string && t != json_type_int && t != json_type_double &&
                    t != json_type_boolean)
                        continue;
                /* a parameter named like one of the files above loses */
                if (snap_child(dir, key) || !snap_name_ok(key, strlen(key)))
                        continue;
                r = jsonutil_add_text(dir, key, params, key);
                if (r < 0)
                        break;
        }
        return r;
}

static int add_exec_files(struct snap *dir, const struct bacalhau_v1_version *v,
                          struct json_object *ex, bool cut_keys)
{
        struct json_object *cs = jsonutil_get(ex, "ComputeState");
        struct json_object *ds = jsonutil_get(ex, "DesiredState");
        struct json_object *ro = jsonutil_get(ex, "RunOutput");
        struct json_object *pr = jsonutil_get(ex, "PublishedResult");
        const char *state, *type;
        char num[24], dnum[24];
        int r;

        state = state_text(cs, v, STATE_EXECUTION, num);
        r = jsonutil_add_text(dir, "id", ex, "ID");
        r = r ? r : add_string(dir, "state", state);
        r = r ? r : add_string(dir, "desired_state", state_text(ds, v, STATE_DESIRED, dnum));
        r = r ? r : jsonutil_add_text(dir, "message", cs, "Message");
        if (ro && json_object_is_type(ro, json_type_object)) {
                r = r ? r : jsonutil_add_bytes(dir, "stdout", ro, ro_key(ro, "Stdout", "stdout"));
                r = r ? r : jsonutil_add_bytes(dir, "stderr", ro, ro_key(ro, "Stderr", "stderr"));
                r = r ? r : jsonutil_add_text(dir, "stdouttruncated", ro,
                                              ro_key(ro, "StdoutTruncated", "stdouttruncated"));
                r = r ? r : jsonutil_add_text(dir, "stderrtruncated", ro,
                                              ro_key(ro, "StderrTruncated", "stderrtruncated"));
                r = r ? r : jsonutil_add_text(dir, "runnerError", ro,
                                              ro_key(ro, "ErrorMsg", "runnerError"));
                /* from v1.5.2 RunOutput is there from the start, ExitCode 0
                 * while running: an exit code means something once Completed */
                if (state && strcmp(state, "Completed") == 0)
                        r = r ? r : jsonutil_add_text(dir, "exitCode", ro,
                                                      ro_key(ro, "ExitCode", "exitCode"));
        }
        if (pr && jsonutil_str(pr, "Type", &type, NULL) && *type)
                r = r ? r : jsonutil_add_text(dir, "result_type", pr, "Type");
        return r ? r : add_params(dir, jsonutil_get(pr, "Params"), cut_keys);
}

static int add_executions(struct snap *top, struct bacalhau_v1_job *j)
{
        struct json_object *items = j->execs ? list_items(j->execs, "Executions")
                                             : list_items(jsonutil_get(j->root, "Executions"),
                                                          "Executions");
        size_t n = items ? json_object_array_length(items) : 0, k = 0, seq = 0;
        struct exec_ref *refs;
        int r = 0;

        if (n == 0)
                return 0;
        refs = calloc(n, sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *ex = json_object_array_get_idx(items, i);
                struct exec_ref *e = &refs[k];
                size_t len;

                if (!jsonutil_str(ex, "NodeID", &e->node, &len) || strlen(e->node) != len ||
                    !snap_name_ok(e->node, len) || is_job_file(e->node))
                        continue;       /* a NUL inside, or not a name: left out */
                if (!jsonutil_str(ex, "ID", &e->id, NULL))
                        e->id = "";
                e->ex = ex;
                if (!get_int(ex, "CreateTime", &e->create_ns))
                        e->create_ns = INT64_MIN;
                if (!get_int(ex, "ModifyTime", &e->modify_ns))
                        e->modify_ns = INT64_MIN;
                k++;
        }
        qsort(refs, k, sizeof(*refs), exec_cmp);
        for (size_t i = 0; r == 0 && i < k; i++) {
                struct snap *node = (struct snap *)snap_child(top, refs[i].node), *dir;
                char idx[24];

                seq = i > 0 && strcmp(refs[i].node, refs[i - 1].node) == 0 ? seq + 1 : 0;
                if (!node && (r = snap_add_dir(top, refs[i].node, &node)) < 0)
                        break;
                snprintf(idx, sizeof(idx), "%zu", seq);
                r = snap_add_dir(node, idx, &dir);
                if (r == 0)
                        r = add_exec_files(dir, &j->v, refs[i].ex, j->cut_keys);
        }
        free(refs);
        return r;
}

/* ---- the whole item ---------------------------------------------------------------- */

static bool job_state_final(const char *s)
{
        return s && (strcmp(s, "Completed") == 0 || strcmp(s, "Failed") == 0 ||
                     strcmp(s, "Stopped") == 0);
}

static int add_job_json(struct snap *top, struct json_object *job)
{
        const char *s = json_object_to_json_string_ext(
                job, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        struct blob *b;
        size_t n;

        if (!s)
                return -ENOMEM;
        n = strlen(s);
        b = blob_new_line(s, n);
        return snap_add_file(top, "job.json", b);
}

int bacalhau_v1_job_finish(struct bacalhau_v1_job *j, const char *key, struct backend_item *ret)
{
        struct json_object *st;
        struct snap *top = NULL;
        const char *state, *id;
        int64_t rev, mod;
        char num[24];
        int r;

        if (!j->root)
                return -EINVAL;
        st = jsonutil_get(j->job, "State");
        state = state_text(st, &j->v, STATE_JOB, num);
        top = snap_new();
        if (!top)
                return -ENOMEM;
        r = jsonutil_add_text(top, "name", j->job, "Name");
        r = r ? r : jsonutil_add_text(top, "namespace", j->job, "Namespace");
        r = r ? r : jsonutil_add_text(top, "type", j->job, "Type");
        r = r ? r : add_string(top, "state", state);
        r = r ? r : jsonutil_add_text(top, "message", st, "Message");
        r = r ? r : add_time(top, "created", j->job, "CreateTime");
        r = r ? r : add_time(top, "modified", j->job, "ModifyTime");
        r = r ? r : add_job_json(top, j->job);
        r = r ? r : snap_add_file(top, "state.json", blob_ref(j->body));
        r = r ? r : add_history(top, j);
        r = r ? r : add_executions(top, j);
        id = bacalhau_v1_job_id(j);
        if (r == 0 && key && strcmp(id, key) != 0 && snap_name_ok(id, strlen(id)) &&
            !(ret->name = strdup(id)))
                r = -ENOMEM;
        if (r < 0) {
                snap_free(top);
                return r;
        }
        ret->snap = top;
        ret->terminal = job_state_final(state);
        ret->sig = get_int(j->job, "Revision", &rev) && get_int(j->job, "ModifyTime", &mod)
                           ? bacalhau_v1_sig(rev, mod)
                           : 0;
        return 0;
}
