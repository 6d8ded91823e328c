/* slurm: see include/jobfs/slurm.h.
 *
 * The list is the change feed. slurmctld answers GET /jobs?update_time=T
 * with 304 when no job changed in or after second T of its own clock (a
 * change in second T itself still gives 200: measured), so T is the second
 * our previous list was sent, minus 1 for clocks a little apart; a full list
 * every RESYNC_S seconds bounds what larger clock skew could hide. A 200
 * carries every job again, so jobs missing from it are gone (purged after
 * MinJobAge; without slurmdbd they are then unknown ids, ENOENT).
 *
 * Output files change without slurmctld knowing, so every list (304 ones
 * too) looks at the files of the live jobs again: their size and mtime are
 * part of the signature, a growing stdout moves it, and the list then
 * carries the rebuilt item (from the job's bytes kept for that) instead of
 * costing a fetch. Final jobs are not looked at again.
 *
 * Locking: list_lock makes lists one at a time and guards the set (only
 * list() touches it); lock guards the token, the detected API and counters.
 */
#include "jobfs/slurm.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"
#include "jobfs/slurm_job.h"
#include "jobfs/slurm_split.h"
#include "jobfs/slurm_token.h"

#define RESYNC_S 300                    /* a full list at least this often */
#define LIST_REPLY_MAX ((size_t)1 << 30)        /* 300,000 jobs of 3.2 KB, streamed */
#define FETCH_REPLY_MAX ((size_t)256 << 20)     /* without --max-reply; GET /job/ARRAY lists all its tasks */
/* Items a list carries whole: the first list of a big cluster would
 * otherwise read every job's output; past these the entries carry only
 * their signature, and the cache fetches what it needs. */
#define LIST_SNAPS_MAX 1000
#define LIST_READ_MAX ((size_t)64 << 20)
#define USER_MAX 256

enum api { API_UNKNOWN, API_V36, API_V37, API_V38 };
static const char *const api_names[] = { NULL, "v0.0.36", "v0.0.37", "v0.0.38" };

struct rec {
        struct slurm_job *job;  /* owned; shrunk: its bytes kept only while live and started */
        uint64_t outsig;        /* its output files' share of the signature, last seen */
        struct snap *snap;      /* owned, only while a list is being built */
};

/* The jobs of the last list, in the server's order, with a name index. */
struct set {
        struct rec *v;
        size_t n, cap;
        size_t *slots;          /* open addressing: index + 1, 0 = empty */
        size_t n_slots;
};

struct slurm {
        char *user;
        char *token_file;               /* NULL: $SLURM_JWT */
        size_t out_max;
        size_t fetch_max;               /* one GET /job/ID reply, streamed: --max-reply */
        bool api_fixed;
        pthread_mutex_t lock;           /* protects the fields below it */
        char *token;
        struct stat token_st;
        long long token_exp;            /* its exp claim, 0 = none */
        int api;                        /* enum api */
        char release[32];               /* meta.Slurm.release of the ping */
        bool auth_logged, version_logged;
        unsigned long long lists_full, lists_changed, lists_unchanged;
        size_t n_jobs;                  /* in the set, for status (which must not wait
                                         * for a list in flight) */
        pthread_mutex_t list_lock;      /* one list at a time; protects the fields below */
        struct set set;
        bool have_list;
        time_t last_send, last_full;    /* wall clock seconds of the last good list */
};

/* ---- names and the set ------------------------------------------------------ */

static size_t *set_slot(const struct set *s, const char *name)
{
        size_t mask = s->n_slots - 1, i = (size_t)snap_name_hash(name) & mask;

        for (;; i = (i + 1) & mask)
                if (!s->slots[i] || strcmp(s->v[s->slots[i] - 1].job->name, name) == 0)
                        return &s->slots[i];
}

static struct rec *set_find(const struct set *s, const char *name)
{
        size_t *slot;

        if (!s->n_slots)
                return NULL;
        slot = set_slot(s, name);
        return *slot ? &s->v[*slot - 1] : NULL;
}

static int set_grow_index(struct set *s)
{
        size_t n = s->n_slots ? s->n_slots * 2 : 64;
        size_t *old = s->slots, old_n = s->n_slots;

        s->slots = calloc(n, sizeof(*s->slots));
        if (!s->slots) {
                s->slots = old;
                return -ENOMEM;
        }
        s->n_slots = n;
        for (size_t i = 0; i < old_n; i++)
                if (old[i])
                        *set_slot(s, s->v[old[i] - 1].job->name) = old[i];
        free(old);
        return 0;
}

/* Appends job (taken in every case) unless its name is there already. */
static int set_add(struct set *s, struct slurm_job *job, uint64_t outsig, struct snap *snap)
{
        int r = 0;

        if (s->n >= SNAP_DIR_MAX)
                r = -E2BIG;
        else if (set_find(s, job->name))
                r = -EEXIST;
        else if ((s->n + 1) * 2 > s->n_slots)
                r = set_grow_index(s);
        if (!r && s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                struct rec *v = realloc(s->v, cap * sizeof(*v));

                if (!v)
                        r = -ENOMEM;
                else
                        s->v = v, s->cap = cap;
        }
        if (r < 0) {
                slurm_job_free(job);
                snap_free(snap);
                return r;
        }
        s->v[s->n] = (struct rec){ .job = job, .outsig = outsig, .snap = snap };
        *set_slot(s, job->name) = ++s->n;
        return 0;
}

static void set_clear(struct set *s)
{
        for (size_t i = 0; i < s->n; i++) {
                slurm_job_free(s->v[i].job);
                snap_free(s->v[i].snap);
        }
        free(s->v);
        free(s->slots);
        memset(s, 0, sizeof(*s));
}

/* ---- requests ------------------------------------------------------------------ */

/* Reads the token file again when it changed (a refreshed token needs no
 * remount); a file that went bad keeps the old token. */
static void token_refresh(struct slurm *sl)
{
        struct stat st;
        char *tok = NULL;

        if (!sl->token_file || stat(sl->token_file, &st) < 0)
                return;
        pthread_mutex_lock(&sl->lock);
        if (st.st_ino == sl->token_st.st_ino && st.st_size == sl->token_st.st_size &&
            st.st_mtim.tv_sec == sl->token_st.st_mtim.tv_sec &&
            st.st_mtim.tv_nsec == sl->token_st.st_mtim.tv_nsec) {
                pthread_mutex_unlock(&sl->lock);
                return;
        }
        sl->token_st = st;      /* one attempt per change, whatever comes of it */
        pthread_mutex_unlock(&sl->lock);
        if (slurm_token_load(sl->token_file, &tok, &st) < 0)
                return;
        pthread_mutex_lock(&sl->lock);
        slurm_token_free(sl->token);
        sl->token = tok;
        sl->token_st = st;
        sl->token_exp = slurm_token_expiry(tok);
        sl->auth_logged = false;
        pthread_mutex_unlock(&sl->lock);
        log_info("slurm: token file '%s' read again", sl->token_file);
}

struct hdrs {
        char *line[2];
        const char *v[3];
};

static int hdrs_make(struct slurm *sl, struct hdrs *h)
{
        int r = 0;

        memset(h, 0, sizeof(*h));
        token_refresh(sl);
        pthread_mutex_lock(&sl->lock);
        if (asprintf(&h->line[0], "X-SLURM-USER-NAME: %s", sl->user) < 0)
                h->line[0] = NULL;
        if (asprintf(&h->line[1], "X-SLURM-USER-TOKEN: %s", sl->token) < 0)
                h->line[1] = NULL;
        pthread_mutex_unlock(&sl->lock);
        if (!h->line[0] || !h->line[1])
                r = -ENOMEM;
        h->v[0] = h->line[0];
        h->v[1] = h->line[1];
        return r;
}

static void hdrs_clear(struct hdrs *h)
{
        free(h->line[0]);
        slurm_token_free(h->line[1]);   /* wiped: it holds the token */
        memset(h, 0, sizeof(*h));
}

/* One GET below the root; a 200 body goes to fn when fn is set. */
static int get(struct backend *b, const char *path, http_chunk_fn fn, void *ctx, size_t max,
               struct http_reply *ret)
{
        struct hdrs h;
        char *url = NULL;
        int r = hdrs_make(b->priv, &h);

        if (r == 0 && asprintf(&url, "%s%s", b->base_url, path) < 0) {
                url = NULL;
                r = -ENOMEM;
        }
        if (r == 0) {
                struct http_request req = { .method = "GET", .url = url, .headers = h.v,
                                            .on_chunk = fn, .ctx = ctx, .stream_max = max };

                r = http_send(b->http, &req, ret);
        }
        hdrs_clear(&h);
        free(url);
        return r;
}

static void format_utc(char *buf, size_t size, long long t)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm))
                snprintf(buf, size, "unknown");
        else
                strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Says once (until a request succeeds) why the server refused us. */
static void note_auth(struct backend *b, int r, long status)
{
        struct slurm *sl = b->priv;
        char exp[32];
        bool expired, say;

        pthread_mutex_lock(&sl->lock);
        if (r != -EACCES) {
                if (r == 0)
                        sl->auth_logged = false;
                pthread_mutex_unlock(&sl->lock);
                return;
        }
        say = !sl->auth_logged;
        sl->auth_logged = true;
        expired = sl->token_exp && sl->token_exp <= (long long)time(NULL);
        format_utc(exp, sizeof(exp), sl->token_exp);
        pthread_mutex_unlock(&sl->lock);
        if (!say)
                return;
        if (expired)
                log_error("slurm: %s refused the token for user '%s': it expired at %s", b->shown_url,
                          sl->user, exp);
        else if (status == 401 || status == 403)
                log_error("slurm: %s answered %ld: no valid token for user '%s' (is it started "
                          "with rest_auth/jwt?)", b->shown_url, status, sl->user);
        else
                log_error("slurm: %s refused the request for user '%s' (error -1: a bad token, "
                          "one for another user, or slurmctld is not answering it)",
                          b->shown_url, sl->user);
}

/* Reads meta.Slurm.release of a reply, for status. */
static void note_release(struct slurm *sl, const struct http_reply *rep)
{
        struct json_object *root = NULL;
        const char *rel;

        if (jsonutil_parse(rep->body, rep->len, &root) < 0)
                return;
        if (jsonutil_str(jsonutil_get(jsonutil_get(root, "meta"), "Slurm"), "release", &rel, NULL)) {
                pthread_mutex_lock(&sl->lock);
                snprintf(sl->release, sizeof(sl->release), "%s", rel);
                pthread_mutex_unlock(&sl->lock);
        }
        json_object_put(root);
}

/* The API version to use: the configured one, or the first whose /ping
 * exists. A 404 means the plugin is not loaded; a 500 still means it is
 * (the ping itself failed, e.g. for the token), so it is remembered. */
static int api_version(struct backend *b, int *ret)
{
        struct slurm *sl = b->priv;
        struct http_reply rep = { 0 };
        char path[64];
        bool say;
        int v, r = 0;

        pthread_mutex_lock(&sl->lock);
        v = sl->api;
        pthread_mutex_unlock(&sl->lock);
        if (v != API_UNKNOWN) {
                *ret = v;
                return 0;
        }
        for (v = API_V38; v >= API_V36; v--) {
                snprintf(path, sizeof(path), "/slurm/%s/ping", api_names[v]);
                r = get(b, path, NULL, NULL, 0, &rep);
                if (r == 0 && rep.status != 404 && rep.status != 200 && rep.status != 500)
                        r = slurm_reply_errno(rep.status, rep.body, rep.len);
                backend_note(b, r, "ping");
                note_auth(b, r, rep.status);
                if (r == 0 && rep.status != 404)
                        break;
                http_reply_clear(&rep);
                if (r < 0)
                        return r;
        }
        if (v < API_V36) {
                pthread_mutex_lock(&sl->lock);
                say = !sl->version_logged;
                sl->version_logged = true;
                pthread_mutex_unlock(&sl->lock);
                if (say)
                        log_error("slurm: %s has none of /slurm/v0.0.38, v0.0.37, v0.0.36 (404): "
                                  "not a slurmrestd of SLURM 20.11-23.11?", b->shown_url);
                return -EPROTONOSUPPORT;
        }
        if (rep.status == 200)
                note_release(sl, &rep);
        http_reply_clear(&rep);
        pthread_mutex_lock(&sl->lock);
        sl->api = v;
        pthread_mutex_unlock(&sl->lock);
        log_info("slurm: %s speaks /slurm/%s", b->shown_url, api_names[v]);
        *ret = v;
        return 0;
}

/* A reply that is not a 200: the errno, logged as the backend logs. */
static int reply_error(struct backend *b, const struct http_reply *rep, bool fetch)
{
        int r = slurm_reply_errno(rep->status, rep->body, rep->len);

        if (rep->status == 404 && r == -ENOENT) {
                /* plain-text 404: the path is unknown, not the job */
                log_debug("slurm: %s answers 404: wrong --slurm-api or URL?", b->shown_url);
                r = -EPROTONOSUPPORT;
        } else if (fetch && rep->status == 400) {
                r = -ENOENT;    /* 9002: not a job id slurmrestd can parse */
        }
        return r;
}

/* ---- fetch -------------------------------------------------------------------------- */

struct fetch_ctx {
        const char *name;
        struct slurm_job *job;  /* the element named name */
};

static int on_fetch_job(void *ctx, const char *bytes, size_t len)
{
        struct fetch_ctx *f = ctx;
        struct slurm_job *j = NULL;
        int r = slurm_parse_job(bytes, len, &j);

        if (r == -EBADMSG)
                return 0;       /* not a job we can read: not the one asked for */
        if (r < 0)
                return r;
        if (!f->job && strcmp(j->name, f->name) == 0)
                f->job = j;
        else
                slurm_job_free(j);
        return 0;
}

static int feed_split(void *ctx, const char *data, size_t len)
{
        return slurm_split_feed(ctx, data, len);
}

static int slurm_fetch(struct backend *b, const char *const keys[], struct backend_item *ret)
{
        struct slurm *sl = b->priv;
        struct fetch_ctx f = { .name = keys[0] };
        struct http_reply rep = { 0 };
        struct slurm_split *sp = NULL;
        struct snap *snap = NULL;
        uint64_t outs = 0;
        char path[96];
        size_t nread;
        int v, r;

        /* "abc", "007", "6_" never were jobs: no request */
        if (!slurm_name_ok(keys[0]))
                return -ENOENT;
        r = api_version(b, &v);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/slurm/%s/job/%s", api_names[v], keys[0]);
        r = slurm_split_new(on_fetch_job, &f, &sp);
        r = r ? r : get(b, path, feed_split, sp, sl->fetch_max, &rep);
        if (r == 0)
                r = rep.status == 200 ? slurm_split_end(sp) : reply_error(b, &rep, true);
        backend_note(b, r, "job");
        note_auth(b, r, rep.status);
        /* GET /job/13 of task 6_1 answers with 6_1, and GET /job/6 of an
         * array with its tasks: only the element with this name is it */
        if (r == 0 && !f.job)
                r = -ENOENT;
        if (r == 0)
                r = slurm_job_snap(f.job, sl->out_max, &snap, &outs, &nread);
        if (r == 0) {
                ret->snap = snap;
                ret->terminal = f.job->terminal;
                ret->sig = slurm_job_sig(f.job->sum, outs);
                ret->name = NULL;
        }
        slurm_job_free(f.job);
        slurm_split_free(sp);
        http_reply_clear(&rep);
        return r;
}

/* ---- list ----------------------------------------------------------------------------- */

struct list_ctx {
        struct slurm *sl;
        struct set next;        /* the jobs of this reply */
        size_t snaps, read;     /* items carried whole, output bytes read */
};

static bool budget_left(const struct list_ctx *l)
{
        return l->snaps < LIST_SNAPS_MAX && l->read < LIST_READ_MAX;
}

/* Builds the whole item of a job that changed, while the budget lasts. */
static int carry(struct list_ctx *l, const struct slurm_job *j, struct snap **ret, uint64_t *ret_outs)
{
        size_t nread = 0;
        int r;

        *ret = NULL;
        if (!budget_left(l))
                return 0;
        r = slurm_job_snap(j, l->sl->out_max, ret, ret_outs, &nread);
        if (r == 0) {
                l->snaps++;
                l->read += nread;
        }
        return r;
}

/* One job of a 200 list: compared with what the last list had. */
static int on_list_job(void *ctx, const char *bytes, size_t len)
{
        struct list_ctx *l = ctx;
        struct slurm_job *j = NULL;
        struct snap *snap = NULL;
        const struct rec *old;
        uint64_t outs;
        int r = slurm_parse_job(bytes, len, &j);

        if (r == -EBADMSG) {
                log_debug("slurm: left out a job object without a job_id");
                return 0;
        }
        if (r < 0)
                return r;
        old = set_find(&l->sl->set, j->name);
        if (old && old->job->sum == j->sum && old->job->terminal) {
                outs = old->outsig;     /* final: its files are not looked at again */
        } else {
                outs = slurm_job_outputs_sig(j, l->sl->out_max);
                if (!old || old->job->sum != j->sum || old->outsig != outs)
                        r = carry(l, j, &snap, &outs);
        }
        if (r < 0) {
                slurm_job_free(j);
                return r;
        }
        /* live and started: keep its bytes, its output may change under it */
        slurm_job_shrink(j, !j->terminal && j->started);
        r = set_add(&l->next, j, outs, snap);
        return r == -EEXIST ? 0 : r;
}

/* A 304: the jobs are as they were, their output files may not be. */
static int recheck_outputs(struct list_ctx *l)
{
        struct set *s = &l->sl->set;

        for (size_t i = 0; i < s->n; i++) {
                struct rec *rc = &s->v[i];
                struct slurm_job *again = NULL;
                uint64_t outs;
                int r;

                if (rc->job->terminal || !rc->job->started)
                        continue;
                outs = slurm_job_outputs_sig(rc->job, l->sl->out_max);
                if (outs == rc->outsig)
                        continue;
                rc->outsig = outs;
                if (!rc->job->json || !budget_left(l))
                        continue;       /* the moved sig makes the cache fetch it */
                r = slurm_parse_job(rc->job->json->data, rc->job->json->len, &again);
                if (r == 0)
                        r = carry(l, again, &rc->snap, &rc->outsig);
                slurm_job_free(again);
                if (r < 0 && r != -EBADMSG)
                        return r;
        }
        return 0;
}

/* The complete list from the set; the carried items move into it. */
static int list_out(struct set *s, struct backend_list *ret)
{
        struct backend_list out = { .feed = true };
        int r = 0;

        for (size_t i = 0; r == 0 && i < s->n; i++) {
                struct rec *rc = &s->v[i];

                r = backend_list_add(&out, strdup(rc->job->name),
                                     slurm_job_sig(rc->job->sum, rc->outsig), rc->snap,
                                     rc->job->terminal);
                rc->snap = NULL;
        }
        for (size_t i = 0; i < s->n; i++) {
                snap_free(s->v[i].snap);
                s->v[i].snap = NULL;
        }
        if (r < 0) {
                backend_list_clear(&out);
                return r;
        }
        *ret = out;
        return 0;
}

static int slurm_list(struct backend *b, struct backend_list *ret)
{
        struct slurm *sl = b->priv;
        struct list_ctx l = { .sl = sl };
        struct http_reply rep = { 0 };
        struct slurm_split *sp = NULL;
        char path[96];
        time_t sent;
        bool full;
        int v, r;

        pthread_mutex_lock(&sl->list_lock);
        r = api_version(b, &v);
        if (r < 0)
                goto out;
        sent = time(NULL);
        full = !sl->have_list || sent - sl->last_full >= RESYNC_S || sent < sl->last_full;
        if (full)
                snprintf(path, sizeof(path), "/slurm/%s/jobs", api_names[v]);
        else
                snprintf(path, sizeof(path), "/slurm/%s/jobs?update_time=%lld", api_names[v],
                         (long long)sl->last_send - 1);
        r = slurm_split_new(on_list_job, &l, &sp);
        r = r ? r : get(b, path, feed_split, sp, LIST_REPLY_MAX, &rep);
        if (r == 0 && rep.status == 200)
                r = slurm_split_end(sp);
        else if (r == 0 && rep.status == 304 && !full)
                r = recheck_outputs(&l);
        else if (r == 0)
                r = reply_error(b, &rep, false);
        backend_note(b, r, "jobs");
        note_auth(b, r, rep.status);
        if (r < 0)
                goto out;
        if (rep.status == 200) {
                set_clear(&sl->set);
                sl->set = l.next;
                memset(&l.next, 0, sizeof(l.next));
        }
        r = list_out(&sl->set, ret);
        if (r < 0)
                goto out;
        sl->have_list = true;
        sl->last_send = sent;
        if (full)
                sl->last_full = sent;
        pthread_mutex_lock(&sl->lock);
        sl->n_jobs = sl->set.n;
        if (full)
                sl->lists_full++;
        else if (rep.status == 200)
                sl->lists_changed++;
        else
                sl->lists_unchanged++;
        pthread_mutex_unlock(&sl->lock);
out:
        if (r < 0) {
                /* a failed 304 recheck may have carried items: not kept */
                for (size_t i = 0; i < sl->set.n; i++) {
                        snap_free(sl->set.v[i].snap);
                        sl->set.v[i].snap = NULL;
                }
        }
        pthread_mutex_unlock(&sl->list_lock);
        set_clear(&l.next);
        slurm_split_free(sp);
        http_reply_clear(&rep);
        return r;
}

/* ---- status, lifecycle -------------------------------------------------------------------- */

static void slurm_status(struct backend *b, FILE *f)
{
        struct slurm *sl = b->priv;
        char exp[32];

        pthread_mutex_lock(&sl->lock);
        format_utc(exp, sizeof(exp), sl->token_exp);
        if (sl->api == API_UNKNOWN)
                fprintf(f, "api: auto (not detected yet)\n");
        else
                fprintf(f, "api: %s (%s)\n", api_names[sl->api],
                        sl->api_fixed ? "--slurm-api" : "detected");
        if (sl->release[0])
                fprintf(f, "api_release: %s\n", sl->release);
        fprintf(f, "user: %s\ntoken: %s%s\ntoken_expires: %s\njobs: %zu\n"
                   "lists: %llu full, %llu changed, %llu unchanged (304)\n",
                sl->user, sl->token_file ? "file " : "$SLURM_JWT",
                sl->token_file ? sl->token_file : "", sl->token_exp ? exp : "never", sl->n_jobs,
                sl->lists_full, sl->lists_changed, sl->lists_unchanged);
        pthread_mutex_unlock(&sl->lock);
}

static void slurm_free(struct backend *b)
{
        struct slurm *sl = b->priv;

        if (!sl)
                return;
        set_clear(&sl->set);
        slurm_token_free(sl->token);
        free(sl->user);
        free(sl->token_file);
        pthread_mutex_destroy(&sl->lock);
        pthread_mutex_destroy(&sl->list_lock);
        free(sl);
}

static const struct backend_ops slurm_ops = {
        .name = "slurm",
        .root = "slurm",
        .depth = 1,
        .fetch = slurm_fetch,
        .list = slurm_list,
        .status = slurm_status,
        .free = slurm_free,
};

/* The X-SLURM-USER-NAME value: printable, no header syntax in it. */
static bool user_ok(const char *u)
{
        size_t n = strlen(u);

        if (n == 0 || n > USER_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e || u[i] == ':')
                        return false;
        return true;
}

static int config_user(const struct slurm_config *cfg, char **ret)
{
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (cfg->user)
                *ret = strdup(cfg->user);
        else if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
                *ret = strdup(res->pw_name);
        else
                return log_errno(-EINVAL, "slurm: uid %u has no user name; give --slurm-user",
                                 (unsigned)getuid());
        if (!*ret)
                return -ENOMEM;
        if (!user_ok(*ret))
                return log_errno(-EINVAL, "slurm: bad user name for X-SLURM-USER-NAME");
        return 0;
}

static int config_token(struct slurm *sl, const char *file)
{
        const char *env = getenv("SLURM_JWT");

        if (file) {
                sl->token_file = strdup(file);
                if (!sl->token_file)
                        return -ENOMEM;
                return slurm_token_load(file, &sl->token, &sl->token_st);
        }
        if (!env || !*env)
                return log_errno(-EACCES, "slurm: no token: set SLURM_JWT (eval $(scontrol "
                                          "token)) or give --slurm-token-file");
        if (!slurm_token_ok(env, strlen(env)))
                return log_errno(-EACCES, "slurm: SLURM_JWT holds no valid token");
        sl->token = strdup(env);
        return sl->token ? 0 : -ENOMEM;
}

int slurm_backend_new(struct http *http, const struct slurm_config *cfg, struct backend **ret)
{
        struct backend *b = NULL;
        struct slurm *sl;
        size_t len;
        int r;

        r = backend_alloc(&slurm_ops, http, cfg->url, &b);
        if (r < 0)
                return r;
        b->priv = sl = calloc(1, sizeof(*sl));
        if (!sl) {
                backend_free(b);
                return -ENOMEM;
        }
        pthread_mutex_init(&sl->lock, NULL);
        pthread_mutex_init(&sl->list_lock, NULL);
        sl->out_max = cfg->output_max;
        sl->fetch_max = cfg->fetch_max ? cfg->fetch_max : FETCH_REPLY_MAX;
        if (cfg->api && strcmp(cfg->api, "auto") != 0) {
                for (int v = API_V36; v <= API_V38; v++)
                        if (strcmp(cfg->api, api_names[v]) == 0)
                                sl->api = v;
                sl->api_fixed = true;
                if (sl->api == API_UNKNOWN)
                        r = log_errno(-EINVAL, "slurm: unknown API version '%s'", cfg->api);
        }
        r = r ? r : config_user(cfg, &sl->user);
        r = r ? r : config_token(sl, cfg->token_file);
        if (r < 0) {
                backend_free(b);
                return r;
        }
        sl->token_exp = slurm_token_expiry(sl->token);
        if (sl->token_exp && sl->token_exp <= (long long)time(NULL))
                log_warn("slurm: the token has expired; slurmrestd will refuse it");
        len = strlen(b->base_url);
        while (len > 0 && b->base_url[len - 1] == '/')
                b->base_url[--len] = '\0';
        *ret = b;
        return 0;
}
