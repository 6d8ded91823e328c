/* http: see include/jobfs/http.h.
 *
 * Easy handles are kept in a free list and reused: each remembers its
 * settings, and the share object lets any of them reuse any idle connection.
 * Threads never use one handle at once (the free list hands each out once).
 */
#include "jobfs/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/log.h"

#define HANDLES_MAX 64  /* idle handles kept; more threads just make new ones */
#define HTTP_POOL_MAX 32        /* idle connections kept alive */

struct http {
        struct http_config cfg;
        char *cacert;
        CURLSH *share;
        pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
        pthread_mutex_t lock;           /* protects idle, n_idle */
        CURL *idle[HANDLES_MAX];
        size_t n_idle;
        bool cancelled;                 /* atomic */
        uint64_t requests;              /* atomic */
        uint64_t connections;           /* atomic: new TCP connections */
        uint64_t latency[HTTP_BUCKETS + 1];     /* atomic: requests by duration bucket */
        uint64_t latency_us;            /* atomic: their total duration */
};

struct transfer {
        struct http *h;
        CURL *c;
        char *buf;
        size_t len, cap;
        bool too_big;
        http_chunk_fn fn;               /* streaming: 200 bodies go here */
        void *ctx;
        size_t streamed, stream_max;
        int stream_err;                 /* fn's error, or -EFBIG */
};

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *userp)
{
        struct http *h = userp;

        (void)c;
        (void)access;
        pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *userp)
{
        struct http *h = userp;

        (void)c;
        pthread_mutex_unlock(&h->share_locks[data]);
}

int http_new(const struct http_config *cfg, struct http **ret)
{
        struct http *h = calloc(1, sizeof(*h));

        if (!h)
                return -ENOMEM;
        h->cfg = *cfg;
        if (cfg->cacert) {
                h->cacert = strdup(cfg->cacert);
                if (!h->cacert)
                        goto fail;
                h->cfg.cacert = h->cacert;
        }
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_init(&h->share_locks[i], NULL);
        pthread_mutex_init(&h->lock, NULL);
        h->share = curl_share_init();
        if (!h->share)
                goto fail;
        curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        *ret = h;
        return 0;
fail:
        free(h->cacert);
        free(h);
        return -ENOMEM;
}

void http_free(struct http *h)
{
        if (!h)
                return;
        for (size_t i = 0; i < h->n_idle; i++)
                curl_easy_cleanup(h->idle[i]);
        curl_share_cleanup(h->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_destroy(&h->share_locks[i]);
        pthread_mutex_destroy(&h->lock);
        free(h->cacert);
        free(h);
}

void http_cancel_all(struct http *h)
{
        __atomic_store_n(&h->cancelled, true, __ATOMIC_RELEASE);
}

uint64_t http_requests(const struct http *h)
{
        return __atomic_load_n(&h->requests, __ATOMIC_RELAXED);
}

uint64_t http_connections(const struct http *h)
{
        return __atomic_load_n(&h->connections, __ATOMIC_RELAXED);
}

static size_t on_stream(struct transfer *t, const char *ptr, size_t n)
{
        if (n > t->stream_max - t->streamed) {
                t->stream_err = -EFBIG;
                return 0;
        }
        t->streamed += n;
        t->stream_err = t->fn(t->ctx, ptr, n);
        return t->stream_err < 0 ? 0 : n;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userp)
{
        struct transfer *t = userp;
        size_t n = size * nmemb;

        if (t->fn) {
                long status = 0;

                curl_easy_getinfo(t->c, CURLINFO_RESPONSE_CODE, &status);
                if (status == 200)
                        return on_stream(t, ptr, n);
        }
        if (n > t->h->cfg.max_reply - t->len) {
                t->too_big = true;
                return 0;       /* makes curl fail with CURLE_WRITE_ERROR */
        }
        if (n + 1 > t->cap - t->len) {
                size_t cap = t->cap ? t->cap : 4096;
                char *b;

                while (cap - t->len < n + 1)
                        cap *= 2;
                b = realloc(t->buf, cap);
                if (!b)
                        return 0;
                t->buf = b;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, ptr, n);
        t->len += n;
        t->buf[t->len] = '\0';
        return n;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        struct transfer *t = userp;

        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        (void)ulnow;
        return __atomic_load_n(&t->h->cancelled, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static CURL *handle_get(struct http *h)
{
        CURL *c = NULL;
        long ms = (long)(h->cfg.timeout_s * 1000.0);

        pthread_mutex_lock(&h->lock);
        if (h->n_idle > 0)
                c = h->idle[--h->n_idle];
        pthread_mutex_unlock(&h->lock);
        if (c)
                return c;
        c = curl_easy_init();
        if (!c)
                return NULL;
        if (ms < 1)
                ms = 1;
        curl_easy_setopt(c, CURLOPT_SHARE, h->share);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);      /* threads: no SIGALRM */
        /* the shared connection cache keeps what the handle returning a
         * connection allows (default 5): room for the prefetch pool, the
         * poller and the readers, or every sweep request opens a new one */
        curl_easy_setopt(c, CURLOPT_MAXCONNECTS, (long)HTTP_POOL_MAX);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "jobfs/" JOBFS_VERSION);
#if HAVE_CURLOPT_PROTOCOLS_STR
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        /* before curl 7.85 (Debian 11 has 7.74); deprecated, so newer ones use _STR */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        if (h->cfg.insecure) {
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (h->cfg.cacert)
                curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.cacert);
        return c;
}

static void handle_put(struct http *h, CURL *c)
{
        pthread_mutex_lock(&h->lock);
        if (h->n_idle < HANDLES_MAX) {
                h->idle[h->n_idle++] = c;
                c = NULL;
        }
        pthread_mutex_unlock(&h->lock);
        if (c)
                curl_easy_cleanup(c);
}

/* The errno table for transport failures; man/jobfs.1 ERRORS shows the same. */
static int http_curl_errno(CURLcode rc, CURL *c, const struct transfer *t)
{
        long os_errno = 0;

        if (t->stream_err < 0)
                return t->stream_err;   /* the consumer stopped the transfer */
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
                if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
                        return -(int)os_errno;
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_WRITE_ERROR:
                return t->too_big ? -EFBIG : -ENOMEM;
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
                return -ECONNRESET;
        case CURLE_UNSUPPORTED_PROTOCOL:        /* URLs are checked: an HTTP/0.9 reply */
        case CURLE_WEIRD_SERVER_REPLY:          /* no status line, or a broken one */
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
                return -EPROTO;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;    /* PARTIAL_FILE (cut mid-reply) and the rest */
        }
}

int http_status_errno(long status)
{
        switch (status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
        case 410:
                return -ENOENT;
        case 408:
        case 504:
                return -ETIMEDOUT;
        case 429:
        case 503:
                return -EAGAIN;
        default:
                return -EIO;
        }
}

/* The request's headers: the body's type and the caller's lines. */
static int build_headers(const struct http_request *req, struct curl_slist **ret)
{
        struct curl_slist *l = NULL, *n;
        char ctype[128];

        if (req->body) {
                snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                         req->body_type ? req->body_type : "application/json");
                if (!(l = curl_slist_append(NULL, ctype)))
                        return -ENOMEM;
        }
        for (size_t i = 0; req->headers && req->headers[i]; i++) {
                n = curl_slist_append(l, req->headers[i]);
                if (!n) {
                        curl_slist_free_all(l);
                        return -ENOMEM;
                }
                l = n;
        }
        *ret = l;
        return 0;
}

/* url for a log line: a user:password@ part blanked (logs never hold secrets). */
static const char *loggable(const char *url, char *buf, size_t size)
{
        const char *host = strstr(url, "://"), *at;

        if (!host)
                return url;
        host += 3;
        at = memchr(host, '@', strcspn(host, "/?#"));
        if (!at)
                return url;
        snprintf(buf, size, "%.*s***%s", (int)(host - url), url, at);
        return buf;
}

/* The transfer's duration, DNS and connect included, for debug lines. */
static double elapsed_ms(CURL *c)
{
        double s = 0;

        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &s);
        return s * 1000;
}

const double http_buckets[HTTP_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

static void observe(struct http *h, double secs)
{
        size_t i = 0;

        while (i < HTTP_BUCKETS && secs > http_buckets[i])
                i++;
        __atomic_add_fetch(&h->latency[i], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&h->latency_us, (uint64_t)(secs * 1e6), __ATOMIC_RELAXED);
}

void http_latency(const struct http *h, uint64_t ret_counts[HTTP_BUCKETS + 1], double *ret_sum)
{
        for (size_t i = 0; i <= HTTP_BUCKETS; i++)
                ret_counts[i] = __atomic_load_n(&h->latency[i], __ATOMIC_RELAXED);
        *ret_sum = (double)__atomic_load_n(&h->latency_us, __ATOMIC_RELAXED) / 1e6;
}

int http_send(struct http *h, const struct http_request *req, struct http_reply *ret)
{
        struct transfer t = { .h = h, .fn = req->on_chunk, .ctx = req->ctx,
                              .stream_max = req->stream_max };
        struct curl_slist *hdrs = NULL;
        char *ctype = NULL, shown[2048];
        /* for the debug lines: " JOB-ID" when the URL does not name it */
        const char *sep = req->subject ? " " : "", *subject = req->subject ? req->subject : "";
        CURLcode rc;
        CURL *c;
        int r;

        if (__atomic_load_n(&h->cancelled, __ATOMIC_ACQUIRE))
                return -ECANCELED;
        r = build_headers(req, &hdrs);
        if (r < 0)
                return r;
        c = handle_get(h);
        if (!c) {
                curl_slist_free_all(hdrs);
                return -ENOMEM;
        }
        t.c = c;
        __atomic_add_fetch(&h->requests, 1, __ATOMIC_RELAXED);
        curl_easy_setopt(c, CURLOPT_URL, req->url);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
        if (req->body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
        } else {
                curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                                 strcmp(req->method, "GET") ? req->method : NULL);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        rc = curl_easy_perform(c);
        observe(h, elapsed_ms(c) / 1000);
        {
                long connects = 0;

                curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
                if (connects > 0)
                        __atomic_add_fetch(&h->connections, (uint64_t)connects, __ATOMIC_RELAXED);
        }
        if (rc != CURLE_OK) {
                r = http_curl_errno(rc, c, &t);
                log_debug("%s %s%s%s: %s after %.0f ms", req->method,
                          loggable(req->url, shown, sizeof(shown)), sep, subject,
                          curl_easy_strerror(rc), elapsed_ms(c));
                goto out;
        }
        {
                char *ct = NULL;

                curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
                if (ct && !(ctype = strdup(ct))) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (!t.buf && !(t.buf = calloc(1, 1))) {
                r = -ENOMEM;
                goto out;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
        log_debug("%s %s%s%s: %ld, %zu bytes in %.0f ms", req->method,
                  loggable(req->url, shown, sizeof(shown)), sep, subject, ret->status,
                  t.len + t.streamed, elapsed_ms(c));
        ret->content_type = ctype;
        ret->body = t.buf;
        ret->len = t.len;
        ctype = NULL;
        t.buf = NULL;
        r = 0;
out:
        /* a reused handle must not keep pointers to this call's data */
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_slist_free_all(hdrs);
        handle_put(h, c);
        free(ctype);
        free(t.buf);
        return r;
}

int http_request(struct http *h, const char *method, const char *url, const char *body,
                 struct http_reply *ret)
{
        struct http_request req = { .method = method, .url = url, .body = body };

        return http_send(h, &req, ret);
}

int http_request_stream(struct http *h, const char *method, const char *url, const char *body,
                        http_chunk_fn fn, void *ctx, size_t stream_max, struct http_reply *ret)
{
        struct http_request req = { .method = method, .url = url, .body = body, .on_chunk = fn,
                                    .ctx = ctx, .stream_max = stream_max };

        return http_send(h, &req, ret);
}

void http_reply_clear(struct http_reply *r)
{
        if (!r)
                return;
        free(r->content_type);
        free(r->body);
        memset(r, 0, sizeof(*r));
}

char *http_escape(const char *segment)
{
        char *e = curl_easy_escape(NULL, segment, 0);
        char *copy;

        if (!e)
                return NULL;
        copy = strdup(e);       /* callers free() what we return, not curl_free() */
        curl_free(e);
        return copy;
}
