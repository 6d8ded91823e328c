/* jobfs: see include/jobfs/jobfs.h. */
#include "jobfs/jobfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobfs/bacalhau.h"
#include "jobfs/backend.h"
#include "jobfs/cache.h"
#include "jobfs/clock.h"
#include "jobfs/fs.h"
#include "jobfs/http.h"
#include "jobfs/muse.h"
#include "jobfs/poll.h"
#include "jobfs/replay.h"
#include "jobfs/slurm.h"
#include "jobfs/tree.h"

/* 32 workers: the most requests one mount has in flight to one server
 * (32 parallel first reads of new jobs all wait one round trip); polls and
 * readahead together take 8 of them at most, readahead 6, so a reader
 * always finds one while a sweep or a poll round is in flight */
static const struct lane_config lane_defaults = {
        .max_workers = 32, .max_background = 8, .max_readahead = 6,
};

/* A backend with its own connection pool; *i counts the ones made. */
static int add_backend(struct jobfs *fs, int (*make)(struct jobfs *, struct http *, struct backend **))
{
        const struct options *o = fs->opts;
        struct http_config hc = {
                .timeout_s = o->timeout, .max_reply = o->max_reply,
                .insecure = o->insecure, .cacert = o->cacert,
        };
        struct node *root;
        unsigned i = fs->n_backends;
        int r;

        if (i == JOBFS_BACKENDS_MAX)
                return -E2BIG;
        r = http_new(&hc, &fs->http[i]);
        if (r < 0)
                return r;
        fs->n_backends++;       /* jobfs_free frees what was made */
        r = make(fs, fs->http[i], &fs->backends[i]);
        if (r == 0)
                r = cache_add_backend(fs->cache, fs->backends[i], &root);
        if (r == 0)
                r = replay_add_top(fs->replay, root);
        return r;
}

static int make_bacalhau(struct jobfs *fs, struct http *h, struct backend **ret)
{
        const struct options *o = fs->opts;
        struct bacalhau_config bc = {
                .url = o->bacalhau_url, .client_id = o->client_id,
                .api = (enum bacalhau_api)o->bacalhau_api, .namespace = o->namespace,
                .token_file = o->bacalhau_token_file,
        };

        return bacalhau_backend_new(h, &bc, ret);
}

static int make_muse(struct jobfs *fs, struct http *h, struct backend **ret)
{
        return muse_backend_new(h, fs->opts->muse_url, fs->opts->slurm_url != NULL, ret);
}

static int make_slurm(struct jobfs *fs, struct http *h, struct backend **ret)
{
        const struct options *o = fs->opts;
        struct slurm_config sc = {
                .url = o->slurm_url, .api = o->slurm_api, .user = o->slurm_user,
                .token_file = o->slurm_token_file, .output_max = o->max_reply,
                .fetch_max = o->max_reply,
        };

        return slurm_backend_new(h, &sc, ret);
}

static int build_meta(struct jobfs *fs)
{
        struct tree *t = fs->tree;
        int r;

        r = tree_add(t, tree_root(t), ".jobfs", NODE_DIR, ROLE_META, &fs->meta);
        if (r == 0)
                r = tree_add(t, fs->meta, "status", NODE_FILE, ROLE_STATUS, &fs->status);
        if (r == 0)
                r = tree_add(t, fs->meta, "metrics", NODE_FILE, ROLE_METRICS, &fs->metrics);
        return r;
}

int jobfs_new(const struct options *opts, struct jobfs **ret)
{
        struct jobfs *fs = calloc(1, sizeof(*fs));
        struct cache_config cc = {
                .clock = &clock_real, .ttl = opts->ttl, .max_stale = opts->max_stale,
                .poll_interval = opts->poll_interval, .cache_bytes = opts->cache_bytes,
                .cache_max = opts->cache_max, .max_file = opts->max_reply, .lane = lane_defaults,
        };
        struct poll_config pc = {
                .clock = &clock_real, .interval = opts->poll_interval, .budget = opts->poll_budget,
        };
        struct replay_config rc = { .mountpoint = opts->mountpoint, .announce = !opts->no_notify };
        int r;

        if (!fs)
                return -ENOMEM;
        fs->opts = opts;
        fs->started = clock_monotonic();
        fs->uid = getuid();
        fs->gid = getgid();
        r = tree_new(!opts->no_notify, &fs->tree);
        rc.tree = fs->tree;
        r = r ? r : cache_new(fs->tree, &cc, &fs->cache);
        r = r ? r : replay_new(&rc, &fs->replay);
        r = r ? r : add_backend(fs, make_bacalhau);
        r = r ? r : add_backend(fs, make_muse);
        if (opts->slurm_url)    /* no slurm/ without an endpoint */
                r = r ? r : add_backend(fs, make_slurm);
        r = r ? r : build_meta(fs);
        r = r ? r : poller_new(&pc, fs->cache, tree_mutex(fs->tree), &fs->poller);
        r = r ? r : fs_waits_new(fs, &fs->waits);
        if (r < 0) {
                jobfs_free(fs);
                return r;
        }
        cache_set_listener(fs->cache, replay_push, fs->replay);
        *ret = fs;
        return 0;
}

int jobfs_start(struct jobfs *fs)
{
        int r = replay_start(fs->replay, fs->se);

        r = r < 0 ? r : poller_start(fs->poller);
        return r < 0 ? r : fs_waits_start(fs->waits);
}

void jobfs_stop(struct jobfs *fs)
{
        if (!fs)
                return;
        for (unsigned i = 0; i < fs->n_backends; i++)
                http_cancel_all(fs->http[i]);
        fs_waits_stop(fs->waits);       /* waiters get ECANCELED */
        poller_stop(fs->poller);
        replay_stop(fs->replay);
        cache_stop(fs->cache);
}

void jobfs_free(struct jobfs *fs)
{
        if (!fs)
                return;
        jobfs_stop(fs);
        fs_waits_free(fs->waits);
        poller_free(fs->poller);
        replay_free(fs->replay);
        cache_free(fs->cache);
        tree_free(fs->tree);
        for (unsigned i = 0; i < fs->n_backends; i++) {
                backend_free(fs->backends[i]);
                http_free(fs->http[i]);
        }
        free(fs);
}

static void format_time(char *buf, size_t size, const struct timespec *ts)
{
        struct tm tm;

        if (ts->tv_sec == 0) {
                snprintf(buf, size, "never");
                return;
        }
        gmtime_r(&ts->tv_sec, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void status_endpoint(FILE *f, const struct cache_source_stats *s, const struct poll_stats *ps,
                            unsigned i, struct http *h)
{
        struct backend *b = (struct backend *)s->backend;
        struct backend_health hl;
        char ok[32], err[32], msg[64];

        backend_health_get(b, &hl);
        format_time(ok, sizeof(ok), &hl.last_ok);
        format_time(err, sizeof(err), &hl.last_error);
        fprintf(f, "[%s]\nurl: %s\nreachable: %s\nlast_success: %s\nlast_error: %s%s%s\n"
                   "requests: %llu\nerrors: %llu\nconnections: %llu\n",
                b->ops->name, b->shown_url,
                hl.requests == 0 ? "unknown" : hl.down ? "no" : "yes", ok, err,
                hl.last_errno ? " " : "", hl.last_errno ? strerror_r(-hl.last_errno, msg, sizeof(msg)) : "",
                (unsigned long long)hl.requests, (unsigned long long)hl.errors,
                (unsigned long long)http_connections(h));
        if (b->ops->status)
                b->ops->status(b, f);
        fprintf(f, "change_feed: %s\npolls: %llu\npoll_budget_denied: %llu\n"
                   "queued: %zu reader, %zu poll, %zu readahead\nworkers: %u\n\n",
                s->feed ? "yes" : "no", (unsigned long long)s->polls,
                (unsigned long long)(i < POLL_SOURCES_MAX ? ps->denied[i] : 0),
                s->lane.queued[LANE_READER], s->lane.queued[LANE_POLL], s->lane.queued[LANE_READAHEAD],
                s->lane.workers);
}

char *jobfs_status_text(struct jobfs *fs)
{
        struct cache_source_stats ss;
        struct cache_stats cs;
        struct poll_stats ps;
        uint64_t http_total = 0;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        poller_stats(fs->poller, &ps);
        for (unsigned i = 0; cache_source_stats(fs->cache, i, &ss); i++) {
                status_endpoint(f, &ss, &ps, i, fs->http[i]);
                http_total += http_requests(fs->http[i]);
        }
        cache_stats(fs->cache, &cs);
        fprintf(f, "[cache]\nunits: %zu\nfailed_lookups: %zu\ncached: %zu\nbytes: %zu\ncache_bytes: %zu\nhits: %llu\n"
                   "fetches: %llu\nshared_waits: %llu\nstale_served: %llu\nevictions: %llu\n"
                   "dropped_results: %llu\nhttp_requests: %llu\nevents: %lu\n"
                   "waiting_reads: %zu\nparallel_lookups: %s\nuptime_s: %.0f\n",
                cs.units, cs.failed_lookups, cs.cached, cs.bytes, cs.cache_bytes, (unsigned long long)cs.hits,
                (unsigned long long)cs.fetches, (unsigned long long)cs.waits,
                (unsigned long long)cs.stale_served, (unsigned long long)cs.evictions,
                (unsigned long long)cs.dropped_results, (unsigned long long)http_total,
                replay_events(fs->replay), fs_waits_parked(fs->waits),
                session_parallel_dirops(&fs->sio) ? "yes" : "no",
                clock_monotonic() - fs->started);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* One metric family's HELP and TYPE lines. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP jobfs_%s %s\n# TYPE jobfs_%s %s\n", name, help, name, type);
}

char *jobfs_metrics_text(struct jobfs *fs)
{
        struct cache_source_stats ss[JOBFS_BACKENDS_MAX];
        struct backend_health hl[JOBFS_BACKENDS_MAX];
        unsigned n = 0;
        struct cache_stats cs;
        struct poll_stats ps;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        while (n < JOBFS_BACKENDS_MAX && cache_source_stats(fs->cache, n, &ss[n])) {
                backend_health_get((struct backend *)ss[n].backend, &hl[n]);
                n++;
        }
        cache_stats(fs->cache, &cs);
        poller_stats(fs->poller, &ps);
        family(f, "up", "gauge", "Whether the endpoint answered its last request (1), or not (0).");
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "jobfs_up{backend=\"%s\"} %d\n", ss[i].backend->ops->name,
                        hl[i].requests && !hl[i].down ? 1 : 0);
        family(f, "requests_total", "counter", "Requests made to the endpoint, by outcome.");
        for (unsigned i = 0; i < n; i++) {
                const char *b = ss[i].backend->ops->name;

                fprintf(f, "jobfs_requests_total{backend=\"%s\",outcome=\"ok\"} %llu\n", b,
                        (unsigned long long)(hl[i].requests - hl[i].errors));
                fprintf(f, "jobfs_requests_total{backend=\"%s\",outcome=\"error\"} %llu\n", b,
                        (unsigned long long)hl[i].errors);
        }
        family(f, "request_duration_seconds", "histogram",
               "HTTP request durations, name resolution and connection included.");
        for (unsigned i = 0; i < n; i++) {
                uint64_t counts[HTTP_BUCKETS + 1], cum = 0;
                double sum;

                http_latency(fs->http[i], counts, &sum);
                for (size_t k = 0; k <= HTTP_BUCKETS; k++) {
                        cum += counts[k];
                        if (k < HTTP_BUCKETS)
                                fprintf(f, "jobfs_request_duration_seconds_bucket{backend=\"%s\",le=\"%g\"} %llu\n",
                                        ss[i].backend->ops->name, http_buckets[k], (unsigned long long)cum);
                        else
                                fprintf(f, "jobfs_request_duration_seconds_bucket{backend=\"%s\",le=\"+Inf\"} %llu\n",
                                        ss[i].backend->ops->name, (unsigned long long)cum);
                }
                fprintf(f, "jobfs_request_duration_seconds_sum{backend=\"%s\"} %.6f\n",
                        ss[i].backend->ops->name, sum);
                fprintf(f, "jobfs_request_duration_seconds_count{backend=\"%s\"} %llu\n",
                        ss[i].backend->ops->name, (unsigned long long)cum);
        }
        family(f, "polls_total", "counter", "Refetches the poller made (listings included).");
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "jobfs_polls_total{backend=\"%s\"} %llu\n", ss[i].backend->ops->name,
                        (unsigned long long)ss[i].polls);
        family(f, "poll_budget_denied_total", "counter",
               "Polls that were due but held back by --poll-budget.");
        for (unsigned i = 0; i < n && i < POLL_SOURCES_MAX; i++)
                fprintf(f, "jobfs_poll_budget_denied_total{backend=\"%s\"} %llu\n",
                        ss[i].backend->ops->name, (unsigned long long)ps.denied[i]);
        family(f, "poll_budget_requests_per_second", "gauge", "The poll budget, --poll-budget.");
        fprintf(f, "jobfs_poll_budget_requests_per_second %g\n", fs->opts->poll_budget);
        family(f, "cache_bytes", "gauge", "Memory held by cached contents and their nodes.");
        fprintf(f, "jobfs_cache_bytes %zu\n", cs.bytes);
        family(f, "cache_bytes_limit", "gauge", "The byte budget, --cache-bytes.");
        fprintf(f, "jobfs_cache_bytes_limit %zu\n", cs.cache_bytes);
        family(f, "cache_units", "gauge", "Jobs, runs and listings the cache knows.");
        fprintf(f, "jobfs_cache_units %zu\n", cs.units);
        family(f, "cache_cached_units", "gauge", "Jobs and runs whose contents are cached.");
        fprintf(f, "jobfs_cache_cached_units %zu\n", cs.cached);
        family(f, "cache_hits_total", "counter", "Reads served without a request.");
        fprintf(f, "jobfs_cache_hits_total %llu\n", (unsigned long long)cs.hits);
        family(f, "cache_fetches_total", "counter", "Fetches started.");
        fprintf(f, "jobfs_cache_fetches_total %llu\n", (unsigned long long)cs.fetches);
        family(f, "evictions_total", "counter", "Jobs and runs whose contents were dropped for memory.");
        fprintf(f, "jobfs_evictions_total %llu\n", (unsigned long long)cs.evictions);
        family(f, "stale_reads_total", "counter", "Reads served data older than --ttl.");
        fprintf(f, "jobfs_stale_reads_total %llu\n", (unsigned long long)cs.stale_served);
        family(f, "events_total", "counter", "Remote changes raised as inotify events.");
        fprintf(f, "jobfs_events_total %lu\n", replay_events(fs->replay));
        family(f, "waiting_reads", "gauge", "Reads of wait files waiting for their job.");
        fprintf(f, "jobfs_waiting_reads %zu\n", fs_waits_parked(fs->waits));
        family(f, "uptime_seconds", "gauge", "Seconds since the mount.");
        fprintf(f, "jobfs_uptime_seconds %.0f\n", clock_monotonic() - fs->started);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}
