/* http: the only module that talks libcurl.
 *
 * One struct http per daemon: a pool of easy handles sharing one connection
 * cache (keep-alive across threads, CURL_LOCK_DATA_CONNECT), DNS and TLS
 * sessions. Every request has a hard deadline (connect, DNS and transfer
 * together) and a hard cap on the reply size. Transport failures come back as
 * -errno (http_curl_errno is the table); HTTP statuses are the caller's to
 * judge, with http_status_errno as the shared mapping.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_config {
        double timeout_s;       /* whole request, DNS included */
        size_t max_reply;       /* bytes; a larger reply fails with -EFBIG */
        bool insecure;          /* do not verify TLS certificates */
        const char *cacert;     /* CA bundle file, or NULL for the system's */
};

struct http_reply {
        long status;
        char *content_type;     /* owned, may be NULL */
        char *body;             /* owned, NUL-terminated (not counted in len) */
        size_t len;
};

struct http;

int http_new(const struct http_config *cfg, struct http **ret);
void http_free(struct http *h);         /* NULL-safe; no request may be running */

/* Receives a 200 reply's body piece by piece; 0 or -errno (stops the transfer). */
typedef int (*http_chunk_fn)(void *ctx, const char *data, size_t len);

/* One request. Only method and url are needed; the rest may be 0/NULL. */
struct http_request {
        const char *method;             /* "GET", "POST", ... */
        const char *url;
        const char *body;               /* sent when non-NULL, as body_type */
        const char *body_type;          /* NULL: application/json */
        const char *const *headers;     /* extra "Name: value" lines, NULL-terminated;
                                         * may carry secrets: never logged */
        http_chunk_fn on_chunk;         /* a 200 body goes here as it arrives, never held */
        void *ctx;                      /* for on_chunk */
        size_t stream_max;              /* cap of a streamed body (-EFBIG past it) */
        const char *subject;            /* named in the debug line when the URL does not
                                         * name it (a job id sent in a POST body), or NULL */
};

/* Performs one request. Returns 0 with *ret filled (any status) or -errno;
 * ret untouched on error. A streamed 200 leaves ret->body empty. */
int http_send(struct http *h, const struct http_request *req, struct http_reply *ret);

/* Shorthands of http_send: body sent as application/json when non-NULL. */
int http_request(struct http *h, const char *method, const char *url, const char *body,
                 struct http_reply *ret);
void http_reply_clear(struct http_reply *r);

/* Like http_request, but a 200 reply's body goes to fn as it arrives, never
 * held whole, up to stream_max bytes (-EFBIG past it); ret->body is then
 * empty. Other statuses' bodies are kept as usual (max_reply). */
int http_request_stream(struct http *h, const char *method, const char *url, const char *body,
                        http_chunk_fn fn, void *ctx, size_t stream_max, struct http_reply *ret);

/* Makes requests in flight fail at once with -ECANCELED, and later ones too. */
void http_cancel_all(struct http *h);

/* Percent-escapes one URL path segment; caller frees with free(). */
char *http_escape(const char *segment);

/* The errno for an HTTP status that the caller does not handle itself. */
int http_status_errno(long status);

/* Requests started, and new TCP connections opened, since http_new. */
uint64_t http_requests(const struct http *h);
uint64_t http_connections(const struct http *h);

/* Request durations (DNS, connect, transfer), for .jobfs/metrics: counts per
 * bucket (seconds, upper bounds; the last is past them all) and their sum. */
#define HTTP_BUCKETS 11
extern const double http_buckets[HTTP_BUCKETS];
void http_latency(const struct http *h, uint64_t ret_counts[HTTP_BUCKETS + 1], double *ret_sum);
