/* jobfs: the daemon's state, one struct reached from every FUSE request
 * through fuse_req_userdata() (no globals beyond the log level).
 *
 * Tree layout built here: / holds jobs/ (Bacalhau), software/ (muse) and the
 * hidden .jobfs/ (status). jobfs_new builds the static part and the listing
 * units; everything below is created on demand by the FUSE handlers.
 */
#pragma once
#include <stdbool.h>

#include "jobfs/options.h"

struct http;
struct backend;
struct tree;
struct cache;
struct node;
struct unit;
struct notifier;
struct prefetch;
struct fuse_session;

/* 1 h: terminal jobs never change, so the kernel may keep them long */
#define JOBFS_FINAL_TIMEOUT 3600.0

struct jobfs {
        const struct options *opts;     /* borrowed from main */
        struct http *http;
        struct backend *bacalhau, *muse;
        struct tree *tree;
        struct cache *cache;
        struct notifier *notifier;
        struct prefetch *prefetch;
        struct fuse_session *se;        /* set by main once created */
        struct node *jobs, *software, *meta, *status;   /* borrowed from tree */
        struct unit *jobs_list, *sw_list;               /* borrowed from cache */
        double started;                 /* monotonic */
        bool kernel_opens;              /* FUSE_CAP_NO_OPEN_SUPPORT: opens cost nothing */
};

/* Builds everything but the FUSE session; caller frees with jobfs_free. */
int jobfs_new(const struct options *opts, struct jobfs **ret);
void jobfs_free(struct jobfs *fs);      /* NULL-safe */

/* Renders .jobfs/status (endpoint health, counters); tree lock held.
 * Caller frees with free(). */
char *jobfs_status_text(struct jobfs *fs);
