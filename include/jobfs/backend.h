/* backend: one job API behind a small vtable, and its endpoint health.
 *
 * A backend owns one directory under the mount root (ops->root: "jobs",
 * "software", "slurm"). It turns "fetch the item at KEYS" into a snapshot
 * (snapshot.h) and "list" into the names under its root; it hides the API's
 * paths, versions, quirks, auth and JSON. An item is what one fetch fills: a
 * job or run directory, ops->depth path components below the root (jobs/ID:
 * 1; software/NAME/KEY: 2). Backends know nothing of FUSE or the cache, and
 * are called from several threads at once (their own state is theirs to
 * lock). Each keeps the health of its endpoint and logs one line when it goes
 * down and one when it comes back, not one per request.
 *
 * Change feeds: where a list reply tells each item's version (Bacalhau
 * v0.3's list carries every job's state, v1 its Revision, slurmrestd its
 * update time), list entries carry a signature that equals the `sig` of a
 * fetch of the same item in the same state; the cache then refetches only
 * items whose signature moved. A list may also carry whole items (entry.snap)
 * when it holds everything a fetch would return.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "jobfs/log.h"
#include "jobfs/snapshot.h"

struct http;
struct backend;

/* What one fetch brought. */
struct backend_item {
        struct snap *snap;      /* owned: the item's directory */
        bool terminal;          /* final: it never changes again */
        uint64_t sig;           /* change signature, 0 = none */
        char *name;             /* owned, or NULL: the item's full name when the
                                 * server resolved a short one (v1 id prefixes) */
};

struct backend_entry {
        char *name;             /* owned, a safe name (snap_name_ok) */
        uint64_t sig;           /* as backend_item.sig; 0 = unknown */
        struct snap *snap;      /* owned, or NULL: the whole item, as fetched */
        bool terminal;          /* with snap */
};

/* What one list brought: every name under the root, not only changes. */
struct backend_list {
        struct backend_entry *v;        /* owned */
        size_t n, cap;
        bool feed;              /* entries' sigs are set: a change feed */
};

struct backend_ops {
        const char *name;       /* "bacalhau", "muse": logs and .jobfs/status */
        const char *root;       /* the directory under the mount root */
        unsigned depth;         /* 1 or 2: path components from root to an item */
        /* Fetches one item; keys[0..depth-1] are the path components below
         * the root. -ENOENT when the server says it does not exist. ret is
         * untouched on error; caller clears it with backend_item_clear. */
        int (*fetch)(struct backend *b, const char *const keys[], struct backend_item *ret);
        /* Lists the names one level below the root (job ids, software
         * names); NULL when the API has no list. Caller clears ret. */
        int (*list)(struct backend *b, struct backend_list *ret);
        /* Optional: the bytes of a lazy file (snap_add_lazy) of the item at
         * keys, at most max bytes (-EFBIG past it). *ret: caller unrefs. */
        int (*fetch_file)(struct backend *b, const char *const keys[], const char *name,
                          size_t max, struct blob **ret);
        /* Optional: extra "key: value" lines for .jobfs/status (the detected
         * API version, say). Never secrets. */
        void (*status)(struct backend *b, FILE *f);
        void (*free)(struct backend *b);        /* frees the ops' private part */
};

struct backend_health {
        bool down;
        struct timespec last_ok, last_error;    /* CLOCK_REALTIME; 0 = never */
        int last_errno;                         /* negative */
        uint64_t requests, errors;
};

/* Written by backend.c and by the API module that made it; read by anyone. */
struct backend {
        const struct backend_ops *ops;
        struct http *http;              /* borrowed: the backend's own connection pool */
        char *base_url;                 /* owned: what requests are built from */
        char *shown_url;                /* owned: base_url with any user:password@
                                         * blanked, for status and logs */
        void *priv;                     /* the API module's */
        pthread_mutex_t lock;           /* protects health */
        struct backend_health health;
        struct log_limit outage_log;    /* "unreachable"/"is back": 10 lines a minute */
};

/* For API modules: allocates a backend with ops and base_url (copied), the
 * rest zero. Caller frees with backend_free. */
int backend_alloc(const struct backend_ops *ops, struct http *http, const char *base_url,
                  struct backend **ret);
void backend_free(struct backend *b);   /* NULL-safe */
/* url with a user:password@ part blanked (http:// then *** then @host/); caller frees. */
char *backend_shown_url(const char *url);

/* Records the outcome r of one request (0 or -errno; -ENOENT counts as a
 * success: the server answered) and logs outage transitions. */
void backend_note(struct backend *b, int r, const char *what);
void backend_health_get(struct backend *b, struct backend_health *ret);

void backend_item_clear(struct backend_item *it);
/* Appends an entry taking name (and snap) in every case, also on error. */
int backend_list_add(struct backend_list *l, char *name, uint64_t sig, struct snap *snap,
                     bool terminal);
void backend_list_clear(struct backend_list *l);

/* Change signatures: an order-independent hash of (path, value) pairs, so
 * the same JSON object hashes the same whatever its key order or spacing.
 * Start at 0, add every scalar and string with its path below the object,
 * and end with backend_sig_done (never 0). */
uint64_t backend_sig_add(uint64_t sig, const char *const *path, size_t depth, int kind,
                         const char *value, size_t len);
uint64_t backend_sig_done(uint64_t sig);

/* Frees an array of n names (old-style list results, parsers' tests). */
void backend_names_free(char **names, size_t n);
