/* backend: one job API behind a small vtable, and its endpoint health.
 *
 * A backend turns "fetch unit KEYS" into a snapshot (see snapshot.h) and
 * "list" into names; it hides the API's paths, quirks and JSON. Backends do
 * not know FUSE. Each keeps the health of its endpoint (reachable, last
 * success, last error) and logs one line when it goes down and one when it
 * comes back, not one per request.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#include "jobfs/snapshot.h"

struct http;
struct backend;

struct backend_ops {
        const char *name;               /* "bacalhau", "muse" */
        /* Fetches one unit: a job (keys[0] = id) or a run (keys[0] = name,
         * keys[1] = key). *ret_snap: caller frees with snap_free. -ENOENT when
         * the server says the unit does not exist. */
        int (*fetch)(struct backend *b, const char *const keys[], struct snap **ret_snap,
                     bool *ret_terminal);
        /* Names one level down: job ids, software names. Caller frees with
         * backend_names_free. */
        int (*list)(struct backend *b, char ***ret_names, size_t *ret_n);
        void (*free)(struct backend *b);        /* frees the ops' private part */
};

struct backend_health {
        bool down;
        struct timespec last_ok, last_error;    /* CLOCK_REALTIME; 0 = never */
        int last_errno;                         /* negative */
        uint64_t requests, errors;
};

struct backend {
        const struct backend_ops *ops;
        struct http *http;              /* borrowed */
        char *base_url;                 /* owned, no trailing '/' for bacalhau, with for muse */
        char *client_id;                /* owned, may be NULL */
        void *priv;
        pthread_mutex_t lock;           /* protects health */
        struct backend_health health;
};

/* Constructors; caller frees with backend_free. */
int bacalhau_backend_new(struct http *http, const char *url, const char *client_id,
                         struct backend **ret);
int muse_backend_new(struct http *http, const char *url, struct backend **ret);
void backend_free(struct backend *b);   /* NULL-safe */

/* Records the outcome r of one request (0 or -errno; -ENOENT counts as a
 * success: the server answered) and logs outage transitions. */
void backend_note(struct backend *b, int r, const char *what);
void backend_health_get(struct backend *b, struct backend_health *ret);

void backend_names_free(char **names, size_t n);
