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
