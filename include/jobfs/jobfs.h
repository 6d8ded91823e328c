/* jobfs: the daemon's state, one struct reached from every FUSE request
 * through fuse_req_userdata() (no globals beyond the log level), and the
 * .jobfs/status renderer.
 *
 * jobfs_new builds each backend with its own connection pool and lane, the
 * tree's static part (/, the backends' roots, the hidden .jobfs/status), the
 * cache, the poller and the replays; jobfs_start starts their threads once
 * the mount is up, jobfs_stop stops them while the FUSE loop still answers.
 */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "jobfs/options.h"
#include "jobfs/session.h"

struct backend;
struct cache;
struct fs_waits;
struct fuse_session;
struct http;
struct node;
struct poller;
struct replay;
struct tree;

#define JOBFS_BACKENDS_MAX 4

struct jobfs {
        const struct options *opts;     /* borrowed from main */
        struct http *http[JOBFS_BACKENDS_MAX];          /* one connection pool each */
        struct backend *backends[JOBFS_BACKENDS_MAX];
        unsigned n_backends;
        struct tree *tree;
        struct cache *cache;
        struct poller *poller;
        struct replay *replay;
        struct fs_waits *waits;         /* parked reads of wait files */
        struct fuse_session *se;        /* set by main once created */
        struct session_io sio;          /* the session's io (parallel lookups) */
        struct node *meta, *status, *metrics;   /* borrowed from tree */
        double started;                 /* monotonic */
        bool kernel_opens;              /* FUSE_CAP_NO_OPEN_SUPPORT: opens cost nothing */
        uid_t uid;
        gid_t gid;
};

/* Builds everything but the FUSE session; caller frees with jobfs_free. */
int jobfs_new(const struct options *opts, struct jobfs **ret);
/* Starts the poller and the replays (fs->se set, mounted). */
int jobfs_start(struct jobfs *fs);
/* Cancels requests, stops the replays, the poller and the lanes. Idempotent;
 * must run while the FUSE loop still answers (replays touch the mount). */
void jobfs_stop(struct jobfs *fs);
void jobfs_free(struct jobfs *fs);      /* NULL-safe */

/* Renders .jobfs/status (endpoint health, counters, for people) and
 * .jobfs/metrics (the same in the Prometheus text format, for node_exporter's
 * textfile collector); tree lock held. Caller frees with free(). */
char *jobfs_status_text(struct jobfs *fs);
char *jobfs_metrics_text(struct jobfs *fs);
