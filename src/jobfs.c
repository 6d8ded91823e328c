/* jobfs: see include/jobfs/jobfs.h. */
#include "jobfs/jobfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobfs/bacalhau.h"
#include "jobfs/backend.h"
#include "jobfs/muse.h"
#include "jobfs/cache.h"
#include "jobfs/http.h"
#include "jobfs/notify.h"
#include "jobfs/prefetch.h"
#include "jobfs/tree.h"

static int build_static(struct jobfs *fs)
{
        struct tree *t = fs->tree;
        int r;

        r = tree_add(t, t->root, "jobs", true, ROLE_JOBS, &fs->jobs);
        r = r ? r : tree_add(t, t->root, "software", true, ROLE_SOFTWARE, &fs->software);
        r = r ? r : tree_add(t, t->root, ".jobfs", true, ROLE_META, &fs->meta);
        r = r ? r : tree_add(t, fs->meta, "status", false, ROLE_STATUS, &fs->status);
        r = r ? r : cache_unit_new(fs->cache, UNIT_JOBS_LIST, fs->jobs, fs->bacalhau, &fs->jobs_list);
        r = r ? r : cache_unit_new(fs->cache, UNIT_SW_LIST, fs->software, fs->muse, &fs->sw_list);
        return r;
}

int jobfs_new(const struct options *opts, struct jobfs **ret)
{
        struct http_config hc = {
                .timeout_s = opts->timeout,
                .max_reply = opts->max_reply,
                .insecure = opts->insecure,
                .cacert = opts->cacert,
        };
        struct bacalhau_config bc = {
                .url = opts->bacalhau_url,
                .client_id = opts->client_id,
                .api = (enum bacalhau_api)opts->bacalhau_api,
                .namespace = opts->namespace,
                .token_file = opts->bacalhau_token_file,
        };
        struct jobfs *fs = calloc(1, sizeof(*fs));
        int r;

        if (!fs)
                return -ENOMEM;
        fs->opts = opts;
        fs->started = cache_now();
        r = http_new(&hc, &fs->http);
        r = r ? r : bacalhau_backend_new(fs->http, &bc, &fs->bacalhau);
        r = r ? r : muse_backend_new(fs->http, opts->muse_url, &fs->muse);
        r = r ? r : tree_new(!opts->no_notify, &fs->tree);
        r = r ? r : cache_new(fs->tree, opts->ttl, opts->max_stale, opts->cache_max, &fs->cache);
        r = r ? r : build_static(fs);
        r = r ? r : notifier_new(fs, &fs->notifier);
        r = r ? r : prefetch_new(fs->cache, &fs->prefetch);
        if (r < 0) {
                jobfs_free(fs);
                return r;
        }
        fs->cache->on_changes = notifier_push;
        fs->cache->ctx = fs->notifier;
        *ret = fs;
        return 0;
}

void jobfs_free(struct jobfs *fs)
{
        if (!fs)
                return;
        notifier_free(fs->notifier);
        prefetch_free(fs->prefetch);
        cache_free(fs->cache);
        tree_free(fs->tree);
        backend_free(fs->bacalhau);
        backend_free(fs->muse);
        http_free(fs->http);
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

static void status_endpoint(FILE *f, struct backend *b)
{
        struct backend_health h;
        char ok[32], err[32];

        backend_health_get(b, &h);
        format_time(ok, sizeof(ok), &h.last_ok);
        format_time(err, sizeof(err), &h.last_error);
        fprintf(f, "[%s]\nurl: %s\nreachable: %s\nlast_success: %s\nlast_error: %s%s%s\n"
                   "requests: %llu\nerrors: %llu\n\n",
                b->ops->name, b->base_url,
                h.requests == 0 ? "unknown" : h.down ? "no" : "yes", ok, err,
                h.last_errno ? " " : "", h.last_errno ? strerror(-h.last_errno) : "",
                (unsigned long long)h.requests, (unsigned long long)h.errors);
}

char *jobfs_status_text(struct jobfs *fs)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        status_endpoint(f, fs->bacalhau);
        status_endpoint(f, fs->muse);
        fprintf(f, "[cache]\nunits: %zu\ncached: %zu\nhits: %llu\nfetches: %llu\nshared_waits: %llu\n"
                   "stale_served: %llu\n"
                   "http_requests: %llu\nevents: %lu\nuptime_s: %.0f\n",
                fs->cache->n_units, fs->cache->n_cached, (unsigned long long)fs->cache->stats.hits,
                (unsigned long long)fs->cache->stats.fetches,
                (unsigned long long)fs->cache->stats.waits,
                (unsigned long long)fs->cache->stats.stale_served,
                (unsigned long long)http_requests(fs->http), notifier_events(fs->notifier),
                cache_now() - fs->started);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}
