/* bacalhau_orch: see include/jobfs/bacalhau_orch.h; the routes, paging
 * tokens and orderings per release are in shared/api/bacalhau-v1.md
 * (sections 2 and 7).
 */
#include "jobfs/bacalhau_orch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobfs/backend.h"
#include "jobfs/bacalhau_v1.h"
#include "jobfs/bacalhau_v1_job.h"
#include "jobfs/http.h"
#include "jobfs/log.h"

#define PAGE_FULL 500           /* jobs per page of a full walk: ~750 KB pretty-printed */
#define PAGE_FEED 50            /* jobs per page of a change-feed poll: ~75 KB when idle */
#define LIST_MAX 1000000        /* jobs kept from a listing (jobs/ holds up to SNAP_DIR_MAX) */
#define LIST_PAGES_MAX (LIST_MAX / PAGE_FULL)
/* before v1.2.2 the list is one unlimited reply, streamed, never held */
#define LIST_REPLY_MAX ((size_t)1 << 30)
#define FULL_WALK_S 300.0       /* a whole walk every 5 min: jobs the server pruned go */
#define INCLUDE_HISTORY_MAX 100 /* include=history's cap (v1.5+) */
#define HISTORY_LIMIT 1000      /* events per history page we ask for */
#define HISTORY_PAGES 10        /* ... and pages: 10,000 events */

struct known {
        char *name;
        uint64_t sig;
        int64_t modify_ns;
};

struct bacalhau_orch {
        struct backend *b;              /* borrowed */
        char *ns_query;                 /* owned: "&namespace=NS" or "" */
        const char *const *headers;     /* borrowed */
        pthread_mutex_t lock;           /* serialises lists; protects what follows */
        struct known *v;                /* sorted by name */
        size_t n, cap;
        bool have;                      /* a full walk was done since the last reset */
        int64_t watermark;              /* the newest ModifyTime a walk saw */
        double last_full;               /* monotonic seconds of the last full walk */
        bool cut_logged;
};

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bacalhau_orch_new(struct backend *b, const char *namespace, const char *const *headers,
                      struct bacalhau_orch **ret)
{
        struct bacalhau_orch *o = calloc(1, sizeof(*o));
        char *esc = NULL;

        if (!o)
                return -ENOMEM;
        o->b = b;
        o->headers = headers;
        o->watermark = INT64_MIN;
        pthread_mutex_init(&o->lock, NULL);
        if (namespace && !(esc = http_escape(namespace)))
                goto fail;
        if (asprintf(&o->ns_query, "%s%s", esc ? "&namespace=" : "", esc ? esc : "") < 0) {
                o->ns_query = NULL;
                goto fail;
        }
        free(esc);
        *ret = o;
        return 0;
fail:
        free(esc);
        bacalhau_orch_free(o);
        return -ENOMEM;
}

static void known_clear(struct bacalhau_orch *o)
{
        for (size_t i = 0; i < o->n; i++)
                free(o->v[i].name);
        free(o->v);
        o->v = NULL;
        o->n = o->cap = 0;
}

void bacalhau_orch_free(struct bacalhau_orch *o)
{
        if (!o)
                return;
        known_clear(o);
        pthread_mutex_destroy(&o->lock);
        free(o->ns_query);
        free(o);
}

void bacalhau_orch_reset(struct bacalhau_orch *o)
{
        pthread_mutex_lock(&o->lock);
        known_clear(o);
        o->have = false;
        o->watermark = INT64_MIN;
        pthread_mutex_unlock(&o->lock);
}

/* One GET with our headers; a 200 body goes to fn when fn is set. */
static int get(struct bacalhau_orch *o, const char *url, http_chunk_fn fn, void *ctx,
               struct http_reply *ret)
{
        struct http_request req = { .method = "GET", .url = url, .headers = o->headers,
                                    .on_chunk = fn, .ctx = ctx, .stream_max = LIST_REPLY_MAX };

        return http_send(o->b->http, &req, ret);
}

/* GETs base + path; 0 with a 200 body in *ret, else -errno. */
static int get_ok(struct bacalhau_orch *o, const char *path, struct http_reply *ret)
{
        char *url = NULL;
        int r;

        if (asprintf(&url, "%s%s", o->b->base_url, path) < 0)
                return -ENOMEM;
        r = get(o, url, NULL, NULL, ret);
        free(url);
        if (r == 0 && ret->status != 200) {
                r = bacalhau_v1_reply_errno(ret->status, ret->body, ret->len);
                http_reply_clear(ret);
        }
        return r;
}

/* "&next_token=TOKEN", escaped, or "" without a token: the query part both
 * paged routes append. Returns a string the caller frees, or NULL. */
static char *next_token_param(const char *token)
{
        char *esc, *param = NULL;

        if (!token)
                return strdup("");
        if (!(esc = http_escape(token)))
                return NULL;
        if (asprintf(&param, "&next_token=%s", esc) < 0)
                param = NULL;
        free(esc);
        return param;
}

/* History pages (v1.5+) when include=history stopped at its cap. */
static int fetch_history_pages(struct bacalhau_orch *o, struct bacalhau_v1_job *j, const char *id)
{
        char *token = NULL;
        int r = 0;

        for (int page = 0; r == 0 && page < HISTORY_PAGES; page++) {
                struct http_reply rep = { 0 };
                char *path = NULL, *param = next_token_param(token);
                const char *next = NULL;
                size_t n = 0;

                if (!param || asprintf(&path, "/api/v1/orchestrator/jobs/%s/history?limit=%d%s",
                                       id, HISTORY_LIMIT, param) < 0) {
                        free(param);
                        r = -ENOMEM;
                        break;
                }
                free(param);
                r = get_ok(o, path, &rep);
                free(path);
                if (r == 0)
                        r = bacalhau_v1_job_add_history(j, rep.body, rep.len, &n, &next);
                http_reply_clear(&rep);
                free(token);
                token = NULL;
                /* a live job's token stays: a short page means nothing more yet */
                if (r < 0 || n < HISTORY_LIMIT || !next)
                        break;
                if (!(token = strdup(next)))
                        r = -ENOMEM;
        }
        free(token);
        return r;
}

/* Before v1.2.2: /executions and /history, each its own request. */
static int fetch_parts(struct bacalhau_orch *o, struct bacalhau_v1_job *j, const char *id)
{
        struct http_reply rep = { 0 };
        const char *next;
        char *path = NULL;
        size_t n;
        int r;

        if (asprintf(&path, "/api/v1/orchestrator/jobs/%s/executions", id) < 0)
                return -ENOMEM;
        r = get_ok(o, path, &rep);
        free(path);
        if (r == 0)
                r = bacalhau_v1_job_add_executions(j, rep.body, rep.len);
        http_reply_clear(&rep);
        if (r < 0)
                return r;
        if (asprintf(&path, "/api/v1/orchestrator/jobs/%s/history", id) < 0)
                return -ENOMEM;
        r = get_ok(o, path, &rep);
        free(path);
        if (r == 0)
                r = bacalhau_v1_job_add_history(j, rep.body, rep.len, &n, &next);
        http_reply_clear(&rep);
        return r;
}

int bacalhau_orch_fetch(struct bacalhau_orch *o, const struct bacalhau_v1_version *v,
                        const char *key, struct backend_item *ret)
{
        bool include = bacalhau_v1_at_least(v, 1, 2, 2);
        struct http_reply rep = { 0 };
        struct bacalhau_v1_job *j = NULL;
        char *esc = http_escape(key), *path = NULL, *id = NULL;
        int r;

        if (!esc)
                return -ENOMEM;
        r = asprintf(&path, "/api/v1/orchestrator/jobs/%s%s", esc,
                     include ? "?include=executions,history" : "") < 0 ? -ENOMEM : 0;
        r = r ? r : get_ok(o, path, &rep);
        r = r ? r : bacalhau_v1_job_new(v, &j);
        r = r ? r : bacalhau_v1_job_add_job(j, rep.body, rep.len);
        http_reply_clear(&rep);
        if (r == 0 && !(id = http_escape(bacalhau_v1_job_id(j))))
                r = -ENOMEM;
        if (r == 0 && !include)
                r = fetch_parts(o, j, id);
        else if (r == 0 && bacalhau_v1_at_least(v, 1, 5, 0) &&
                 bacalhau_v1_job_history_items(j) >= INCLUDE_HISTORY_MAX)
                r = fetch_history_pages(o, j, id);
        if (r == 0)
                r = bacalhau_v1_job_finish(j, key, ret);
        bacalhau_v1_job_free(j);
        free(id);
        free(path);
        free(esc);
        return r;
}

/* ---- the listing ---------------------------------------------------------- */

static int cmp_known(const void *a, const void *b)
{
        return strcmp(((const struct known *)a)->name, ((const struct known *)b)->name);
}

/* Sorts and drops duplicates (a job seen on two pages as offsets shift):
 * the copy with the newer ModifyTime stays. */
static void known_sort(struct known *v, size_t *n)
{
        size_t k = 0;

        qsort(v, *n, sizeof(*v), cmp_known);
        for (size_t i = 0; i < *n; i++) {
                if (k > 0 && strcmp(v[k - 1].name, v[i].name) == 0) {
                        if (v[i].modify_ns > v[k - 1].modify_ns) {
                                free(v[k - 1].name);
                                v[k - 1] = v[i];
                        } else {
                                free(v[i].name);
                        }
                        continue;
                }
                v[k++] = v[i];
        }
        *n = k;
}

static int known_push(struct known **v, size_t *n, size_t *cap, struct bacalhau_v1_entry *e)
{
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 256;
                struct known *nv = realloc(*v, c * sizeof(*nv));

                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = c;
        }
        (*v)[(*n)++] = (struct known){ .name = e->name, .sig = e->sig, .modify_ns = e->modify_ns };
        e->name = NULL;
        return 0;
}

/* Updates or inserts one entry of a change-feed page (o->v stays sorted). */
static int known_upsert(struct bacalhau_orch *o, struct bacalhau_v1_entry *e)
{
        size_t lo = 0, hi = o->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(o->v[mid].name, e->name);

                if (c == 0) {
                        o->v[mid].sig = e->sig;
                        o->v[mid].modify_ns = e->modify_ns;
                        return 0;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (o->n >= LIST_MAX)
                return 0;
        if (known_push(&o->v, &o->n, &o->cap, e) < 0)
                return -ENOMEM;
        {
                struct known added = o->v[o->n - 1];   /* pushed last; it goes at lo */

                memmove(&o->v[lo + 1], &o->v[lo], (o->n - 1 - lo) * sizeof(*o->v));
                o->v[lo] = added;
        }
        return 0;
}

/* One page of GET .../jobs, streamed into *ret. */
static int get_page(struct bacalhau_orch *o, const char *query, struct bacalhau_v1_page *ret)
{
        struct bacalhau_v1_scan *scan = NULL;
        struct http_reply rep = { 0 };
        char *url = NULL;
        int r;

        if (asprintf(&url, "%s/api/v1/orchestrator/jobs%s", o->b->base_url, query) < 0)
                return -ENOMEM;
        r = bacalhau_v1_scan_new(LIST_MAX, &scan);
        r = r ? r : get(o, url, bacalhau_v1_scan_feed, scan, &rep);
        if (r == 0)
                r = rep.status == 200 ? bacalhau_v1_scan_end(scan, ret)
                                      : bacalhau_v1_reply_errno(rep.status, rep.body, rep.len);
        http_reply_clear(&rep);
        bacalhau_v1_scan_free(scan);
        free(url);
        return r;
}

/* Before v1.2.2: one unlimited request, in no useful order; it replaces all. */
static int walk_single(struct bacalhau_orch *o)
{
        struct bacalhau_v1_page page = { 0 };
        struct known *v = NULL;
        size_t n = 0, cap = 0;
        char *query = NULL;
        int r;

        if (asprintf(&query, "%s%s", *o->ns_query ? "?" : "", *o->ns_query ? o->ns_query + 1 : "")
            < 0)
                return -ENOMEM;
        r = get_page(o, query, &page);
        for (size_t i = 0; r == 0 && i < page.n; i++)
                r = known_push(&v, &n, &cap, &page.v[i]);
        bacalhau_v1_page_clear(&page);
        free(query);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(v[i].name);
                free(v);
                return r;
        }
        known_sort(v, &n);
        known_clear(o);
        o->v = v;
        o->n = n;
        o->cap = cap;
        o->have = true;
        return 0;
}

/* v1.2.2+: pages newest-modified first. full: every page, replacing what is
 * known; else only until the jobs are older than the watermark. */
static int walk(struct bacalhau_orch *o, bool full)
{
        struct known *v = NULL;
        size_t n = 0, cap = 0;
        int64_t newest = o->watermark;
        char *token = NULL;
        int r = 0, pages = 0;

        for (;;) {
                struct bacalhau_v1_page page = { 0 };
                char *query = NULL, *param = next_token_param(token);
                int64_t oldest = INT64_MAX;
                bool done;

                if (!param || asprintf(&query, "?order_by=modified_at&reverse=true&limit=%d%s%s",
                                       full ? PAGE_FULL : PAGE_FEED, o->ns_query, param) < 0) {
                        free(param);
                        r = -ENOMEM;
                        break;
                }
                free(param);
                r = get_page(o, query, &page);
                free(query);
                for (size_t i = 0; r == 0 && i < page.n; i++) {
                        struct bacalhau_v1_entry *e = &page.v[i];

                        if (e->modify_ns > newest)
                                newest = e->modify_ns;
                        if (e->modify_ns < oldest)
                                oldest = e->modify_ns;
                        r = full ? known_push(&v, &n, &cap, e) : known_upsert(o, e);
                }
                pages++;
                done = r < 0 || !page.next_token || page.n == 0 ||
                       (!full && oldest < o->watermark);
                if (!done && (pages >= LIST_PAGES_MAX || n >= LIST_MAX)) {
                        if (!o->cut_logged)
                                log_warn("bacalhau: %s lists more than %d jobs; jobs/ shows the "
                                         "%zu most recently changed", o->b->base_url, LIST_MAX, n);
                        o->cut_logged = true;
                        done = true;
                }
                free(token);
                token = NULL;
                if (!done) {            /* the next page's token moves to us */
                        token = page.next_token;
                        page.next_token = NULL;
                }
                bacalhau_v1_page_clear(&page);
                if (done)
                        break;
        }
        free(token);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(v[i].name);
                free(v);
                return r;
        }
        if (full) {
                known_sort(v, &n);
                known_clear(o);
                o->v = v;
                o->n = n;
                o->cap = cap;
                o->have = true;
                o->last_full = now_s();
        }
        o->watermark = newest;
        return 0;
}

int bacalhau_orch_list(struct bacalhau_orch *o, const struct bacalhau_v1_version *v,
                       struct backend_list *ret)
{
        struct backend_list out = { 0 };
        int r;

        pthread_mutex_lock(&o->lock);
        if (!bacalhau_v1_at_least(v, 1, 2, 2))
                r = walk_single(o);
        else
                r = walk(o, !o->have || now_s() - o->last_full > FULL_WALK_S);
        for (size_t i = 0; r == 0 && i < o->n; i++)
                r = backend_list_add(&out, strdup(o->v[i].name), o->v[i].sig, NULL, false);
        pthread_mutex_unlock(&o->lock);
        if (r < 0) {
                backend_list_clear(&out);
                return r;
        }
        out.feed = true;
        *ret = out;
        return 0;
}
