/* bacalhau_v1: see include/jobfs/bacalhau_v1.h; the facts per release are
 * in shared/api/bacalhau-v1.md (sections 1, 4, 5, 7). The job directory
 * is built in bacalhau_v1_job.c.
 */
#include "jobfs/bacalhau_v1.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/jsonscan.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define TOKEN_MAX 1024          /* a paging token is ~20 bytes */

/* ---- versions ------------------------------------------------------------ */

static bool at_least(const struct bacalhau_v1_version *v, unsigned a, unsigned b, unsigned c)
{
        if (v->major != a)
                return v->major > a;
        if (v->minor != b)
                return v->minor > b;
        return v->patch >= c;
}

bool bacalhau_v1_at_least(const struct bacalhau_v1_version *v, unsigned major, unsigned minor,
                          unsigned patch)
{
        return v->dev || at_least(v, major, minor, patch);
}

static int number(const char **p, unsigned *ret)
{
        unsigned long n = 0;
        const char *s = *p;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                n = n * 10 + (unsigned long)(*s - '0');
                if (n > 99999)
                        return -EINVAL;
        }
        *ret = (unsigned)n;
        *p = s;
        return 0;
}

int bacalhau_v1_version_set(const char *text, struct bacalhau_v1_version *ret)
{
        struct bacalhau_v1_version v = { 0 };
        const char *p = text;
        size_t i;

        if (!text)
                return -EINVAL;
        if (*p == 'v')
                p++;
        if (number(&p, &v.major) < 0 || *p++ != '.' || number(&p, &v.minor) < 0 || *p++ != '.' ||
            number(&p, &v.patch) < 0 || (*p && *p != '-' && *p != '+'))
                return -EINVAL;
        v.dev = v.major == 0 && v.minor == 0 && v.patch == 0;
        v.new_numbers = !v.dev && at_least(&v, 1, 5, 2);
        /* shown in .jobfs/status: printable ASCII only, whatever was sent */
        for (i = 0; text[i] && i < sizeof(v.text) - 1; i++)
                v.text[i] = text[i] > 0x20 && text[i] < 0x7f ? text[i] : '?';
        v.text[i] = '\0';
        *ret = v;
        return 0;
}

int bacalhau_v1_parse_version(const char *body, size_t len, struct bacalhau_v1_version *ret)
{
        static const char *const keys[] = { "GitVersion", "gitversion" };
        struct json_object *root = NULL, *info;
        const char *text = NULL;
        int r = jsonutil_parse(body, len, &root);

        if (r < 0)
                return r;
        info = jsonutil_get(root, "build_version_info");   /* v0.3's POST /version */
        for (size_t i = 0; !text && i < 2; i++)
                if (!jsonutil_str(info ? info : root, keys[i], &text, NULL))
                        text = NULL;
        r = text && bacalhau_v1_version_set(text, ret) == 0 ? 0 : -EBADMSG;
        json_object_put(root);
        return r;
}

const char *bacalhau_v1_era(const struct bacalhau_v1_version *v)
{
        static const struct {
                unsigned a, b, c;
                const char *era;
        } starts[] = {
                { 1, 8, 0, "H" }, { 1, 7, 0, "G" }, { 1, 5, 2, "F" }, { 1, 5, 0, "E" },
                { 1, 4, 0, "D" }, { 1, 2, 2, "C" }, { 1, 2, 0, "B" }, { 1, 0, 4, "A" },
        };

        if (v->dev)
                return "dev";
        for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
                if (at_least(v, starts[i].a, starts[i].b, starts[i].c))
                        return starts[i].era;
        return "L";
}

/* ExecutionStateType: the trap of section 4. The same number means another
 * state on each side of v1.5.2 (7: Completed, then Publishing). */
static const char *const exec_old[] = {
        "Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected",
        "BidAccepted", "BidRejected", "Completed", "Failed", "Cancelled",
};
static const char *const exec_new[] = {
        "Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected",
        "BidAccepted", "Running", "Publishing", "BidRejected", "Completed", "Failed", "Cancelled",
};

const char *bacalhau_v1_exec_state(const struct bacalhau_v1_version *v, int64_t n)
{
        if (v->new_numbers)
                return n >= 0 && n < (int64_t)(sizeof(exec_new) / sizeof(exec_new[0])) ? exec_new[n]
                                                                                       : NULL;
        return n >= 0 && n < (int64_t)(sizeof(exec_old) / sizeof(exec_old[0])) ? exec_old[n] : NULL;
}

uint64_t bacalhau_v1_sig(int64_t revision, int64_t modify_ns)
{
        static const char *const rev[] = { "Revision" }, *const mod[] = { "ModifyTime" };
        char a[24], b[24];
        uint64_t sig = 0;

        snprintf(a, sizeof(a), "%" PRId64, revision);
        snprintf(b, sizeof(b), "%" PRId64, modify_ns);
        sig = backend_sig_add(sig, rev, 1, JSONSCAN_SCALAR, a, strlen(a));
        sig = backend_sig_add(sig, mod, 1, JSONSCAN_SCALAR, b, strlen(b));
        return backend_sig_done(sig);
}

/* ---- job list pages, streamed -------------------------------------------------------- */

struct bacalhau_v1_scan {
        struct jsonscan *js;
        struct bacalhau_v1_page out;
        size_t max;
        bool saw_list, in_entry, truncated;
        char id[SNAP_NAME_MAX + 1];
        bool has_id, has_rev, has_mod;
        int64_t rev, mod;
};

/* A JSON integer's text as int64, exactly; false for 1.0, 1e3, overflow. */
static bool scalar_int64(const char *s, size_t len, int64_t *ret)
{
        int64_t v = 0;
        size_t i = 0;
        bool neg = false;

        if (len > 0 && s[0] == '-') {
                neg = true;
                i = 1;
        }
        if (i == len)
                return false;
        for (; i < len; i++) {
                int d = s[i] - '0';

                if (d < 0 || d > 9)
                        return false;
                /* accumulate negatively: INT64_MIN has no positive twin */
                if (v < (INT64_MIN + d) / 10)
                        return false;
                v = v * 10 - d;
        }
        if (!neg && v == INT64_MIN)
                return false;
        *ret = neg ? v : -v;
        return true;
}

static bool is_list_key(const char *k)
{
        return strcmp(k, "Items") == 0 || strcmp(k, "Jobs") == 0;
}

static int flush_entry(struct bacalhau_v1_scan *s)
{
        struct bacalhau_v1_page *p = &s->out;
        bool had = s->in_entry && s->has_id;
        char *name;

        s->in_entry = false;
        if (!had)
                return 0;
        s->has_id = false;
        if (p->n == s->max) {
                s->truncated = true;
                return 0;
        }
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 64;
                struct bacalhau_v1_entry *v = realloc(p->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                p->v = v;
                p->cap = cap;
        }
        name = strdup(s->id);
        if (!name)
                return -ENOMEM;
        p->v[p->n++] = (struct bacalhau_v1_entry){
                .name = name,
                .sig = s->has_rev && s->has_mod ? bacalhau_v1_sig(s->rev, s->mod) : 0,
                .modify_ns = s->has_mod ? s->mod : INT64_MIN,
        };
        return 0;
}

static int on_page(void *ctx, const char *const *path, size_t depth, enum jsonscan_kind kind,
                   const char *value, size_t len)
{
        struct bacalhau_v1_scan *s = ctx;

        if (depth == 1 && strcmp(path[0], "NextToken") == 0) {
                free(s->out.next_token);
                s->out.next_token = NULL;
                if (kind == JSONSCAN_STRING && len > 0 && len <= TOKEN_MAX && strlen(value) == len &&
                    !(s->out.next_token = strdup(value)))
                        return -ENOMEM;
                return 0;
        }
        if (depth == 0 || !is_list_key(path[0]))
                return 0;
        if (depth == 1) {
                if (kind != JSONSCAN_ARRAY && kind != JSONSCAN_NULL)
                        return -EBADMSG;
                s->saw_list = true;
                return 0;
        }
        if (depth == 2) {
                int r = flush_entry(s);         /* a new element starts */

                if (r < 0)
                        return r;
                s->in_entry = kind == JSONSCAN_OBJECT;
                s->has_rev = s->has_mod = false;
                return 0;
        }
        if (depth != 3 || !s->in_entry)
                return 0;
        if (kind == JSONSCAN_STRING && strcmp(path[2], "ID") == 0 && snap_name_ok(value, len)) {
                memcpy(s->id, value, len + 1);
                s->has_id = true;
        } else if (kind == JSONSCAN_SCALAR && strcmp(path[2], "Revision") == 0) {
                s->has_rev = scalar_int64(value, len, &s->rev);
        } else if (kind == JSONSCAN_SCALAR && strcmp(path[2], "ModifyTime") == 0) {
                s->has_mod = scalar_int64(value, len, &s->mod);
        }
        return 0;
}

int bacalhau_v1_scan_new(size_t max_entries, struct bacalhau_v1_scan **ret)
{
        struct bacalhau_v1_scan *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->max = max_entries;
        r = jsonscan_new(on_page, s, &s->js);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int bacalhau_v1_scan_feed(void *scan, const char *data, size_t len)
{
        struct bacalhau_v1_scan *s = scan;

        return jsonscan_feed(s->js, data, len);
}

int bacalhau_v1_scan_end(struct bacalhau_v1_scan *s, struct bacalhau_v1_page *ret)
{
        int r = jsonscan_end(s->js);

        if (r == 0)
                r = flush_entry(s);
        if (r == 0 && !s->saw_list)
                r = -EBADMSG;
        if (r < 0)
                return r;
        if (s->truncated)
                log_debug("bacalhau: a job list page was cut at %zu entries", s->max);
        *ret = s->out;
        memset(&s->out, 0, sizeof(s->out));
        return 0;
}

void bacalhau_v1_scan_free(struct bacalhau_v1_scan *s)
{
        if (!s)
                return;
        bacalhau_v1_page_clear(&s->out);
        jsonscan_free(s->js);
        free(s);
}

int bacalhau_v1_parse_page(const char *body, size_t len, size_t max_entries,
                           struct bacalhau_v1_page *ret)
{
        struct bacalhau_v1_scan *s = NULL;
        int r = bacalhau_v1_scan_new(max_entries, &s);

        if (r < 0)
                return r;
        r = bacalhau_v1_scan_feed(s, body, len);
        if (r == 0)
                r = bacalhau_v1_scan_end(s, ret);
        bacalhau_v1_scan_free(s);
        return r;
}

void bacalhau_v1_page_clear(struct bacalhau_v1_page *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i].name);
        free(p->v);
        free(p->next_token);
        memset(p, 0, sizeof(*p));
}

/* ---- errors ------------------------------------------------------------------------------- */

static bool starts_with(const char *s, const char *prefix)
{
        return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int bacalhau_v1_reply_errno(long status, const char *body, size_t len)
{
        /* v1.7.0's authorizer errors (missing or bad credentials, a missing
         * capability) arrive as 500 InternalError with the reason as Message */
        static const char *const auth_500[] = {
                "missing authorization header", "authentication failed", "unauthorized",
        };
        struct json_object *root = NULL;
        const char *code = NULL, *msg = NULL, *err = NULL;
        int r = 0;

        if (status == 401 || status == 403)
                return -EACCES;
        if (body && len && jsonutil_parse(body, len, &root) == 0) {
                jsonutil_str(root, "Code", &code, NULL);        /* v1.5+ */
                jsonutil_str(root, "Message", &msg, NULL);
                jsonutil_str(root, "error", &err, NULL);        /* up to v1.4 */
        }
        if (code && (strcmp(code, "NotFound") == 0 || strcmp(code, "MultipleJobsFound") == 0 ||
                     strcmp(code, "BoltDBBucketNotFound") == 0))
                r = -ENOENT;
        else if (status == 500 && (starts_with(err, "Job not found") ||
                                   starts_with(err, "Multiple jobs found") ||
                                   starts_with(err, "bucket not found")))
                r = -ENOENT;
        else if (status == 500 && code && strcmp(code, "InternalError") == 0 && msg) {
                for (size_t i = 0; i < sizeof(auth_500) / sizeof(auth_500[0]); i++)
                        if (starts_with(msg, auth_500[i]) || strstr(msg, "required capability"))
                                r = -EACCES;
        }
        json_object_put(root);
        return r ? r : http_status_errno(status);
}
