/* fakehttp: a scripted HTTP/1.1 server in a thread, for backend tests.
 *
 * Listens on 127.0.0.1 port 0. Each request gets the reply of the first
 * route whose path equals the request's (or, for a route ending in '*',
 * starts with it), else the plain-text 404 slurmrestd sends for unknown
 * paths. Every reply closes the connection, as slurmrestd's errors do. The
 * requests are recorded (path and the X-SLURM-USER-* headers) for checks.
 * Header-only: one server per test program is plenty.
 */
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_ROUTES 32
#define FAKE_REQS 512

struct fake_route {
        char path[256];
        long status;
        char *body;             /* owned; NULL = no body (304) */
        size_t len;
        const char *ctype;
};

struct fake_req {
        char path[512];
        char user[128];
        char token[256];
};

struct fake {
        int fd, port;
        pthread_t thread;
        pthread_mutex_t lock;   /* protects everything below */
        bool stop;
        struct fake_route routes[FAKE_ROUTES];
        size_t n_routes;
        struct fake_req reqs[FAKE_REQS];
        size_t n_reqs;
};

/* Sets (or replaces) the reply for path; body copied, NULL for none. */
static inline void fake_route(struct fake *f, const char *path, long status, const char *ctype,
                              const char *body, size_t len)
{
        struct fake_route *r = NULL;

        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < f->n_routes; i++)
                if (strcmp(f->routes[i].path, path) == 0)
                        r = &f->routes[i];
        if (!r && f->n_routes < FAKE_ROUTES)
                r = &f->routes[f->n_routes++];
        if (r) {
                free(r->body);
                snprintf(r->path, sizeof(r->path), "%s", path);
                r->status = status;
                r->ctype = ctype;
                r->len = body ? len : 0;
                r->body = body ? malloc(len + 1) : NULL;
                if (r->body)
                        memcpy(r->body, body, len);
        }
        pthread_mutex_unlock(&f->lock);
}

static inline void fake_json(struct fake *f, const char *path, long status, const char *body,
                             size_t len)
{
        fake_route(f, path, status, "application/json", body, len);
}

static inline size_t fake_count(struct fake *f)
{
        size_t n;

        pthread_mutex_lock(&f->lock);
        n = f->n_reqs;
        pthread_mutex_unlock(&f->lock);
        return n;
}

/* A copy of request i (0 = the first ever). */
static inline struct fake_req fake_get(struct fake *f, size_t i)
{
        struct fake_req r = { { 0 } };

        pthread_mutex_lock(&f->lock);
        if (i < f->n_reqs)
                r = f->reqs[i];
        pthread_mutex_unlock(&f->lock);
        return r;
}

static inline void fake_header(const char *head, const char *name, char *out, size_t size)
{
        size_t n = strlen(name);

        for (const char *p = head; (p = strstr(p, "\r\n")); p += 2) {
                if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
                        const char *v = p + 3 + n, *e;

                        while (*v == ' ')
                                v++;
                        e = strstr(v, "\r\n");
                        snprintf(out, size, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
                        return;
                }
        }
}

static inline void fake_serve(struct fake *f, int c)
{
        static const char nf[] = "Unable find requested URL. Please view /openapi/v3 for API reference.";
        char head[16384], path[512] = "", line[512];
        const struct fake_route *r = NULL;
        size_t len = 0;
        long status = 404;
        const char *ctype = "text/plain", *body = nf;
        size_t blen = sizeof(nf) - 1;

        while (len < sizeof(head) - 1 && !memmem(head, len, "\r\n\r\n", 4)) {
                ssize_t n = read(c, head + len, sizeof(head) - 1 - len);

                if (n <= 0)
                        return;
                len += (size_t)n;
        }
        head[len] = '\0';
        sscanf(head, "%*s %511s", path);
        pthread_mutex_lock(&f->lock);
        if (f->n_reqs < FAKE_REQS) {
                struct fake_req *q = &f->reqs[f->n_reqs++];

                memset(q, 0, sizeof(*q));
                snprintf(q->path, sizeof(q->path), "%s", path);
                fake_header(head, "X-SLURM-USER-NAME", q->user, sizeof(q->user));
                fake_header(head, "X-SLURM-USER-TOKEN", q->token, sizeof(q->token));
        }
        for (size_t i = 0; !r && i < f->n_routes; i++) {
                const struct fake_route *t = &f->routes[i];
                size_t pl = strlen(t->path);

                if (strcmp(t->path, path) == 0 ||
                    (pl && t->path[pl - 1] == '*' && strncmp(t->path, path, pl - 1) == 0))
                        r = t;
        }
        if (r) {
                status = r->status;
                ctype = r->ctype;
                body = r->body;
                blen = r->len;
        }
        if (!body) {
                snprintf(line, sizeof(line), "HTTP/1.1 %ld X\r\n\r\n", status);
                (void)!write(c, line, strlen(line));
        } else {
                snprintf(line, sizeof(line),
                         "HTTP/1.1 %ld X\r\nConnection: Close\r\nContent-Length: %zu\r\n"
                         "Content-Type: %s\r\n\r\n", status, blen, ctype);
                (void)!write(c, line, strlen(line));
                for (size_t off = 0; off < blen;) {
                        ssize_t n = write(c, body + off, blen - off);

                        if (n <= 0)
                                break;
                        off += (size_t)n;
                }
        }
        pthread_mutex_unlock(&f->lock);
}

static inline void *fake_main(void *arg)
{
        struct fake *f = arg;

        for (;;) {
                struct pollfd p = { .fd = f->fd, .events = POLLIN };
                bool stop;
                int c;

                pthread_mutex_lock(&f->lock);
                stop = f->stop;
                pthread_mutex_unlock(&f->lock);
                if (stop)
                        return NULL;
                if (poll(&p, 1, 50) <= 0)
                        continue;
                c = accept(f->fd, NULL, NULL);
                if (c < 0)
                        continue;
                fake_serve(f, c);
                shutdown(c, SHUT_WR);
                close(c);
        }
}

static inline int fake_start(struct fake *f)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);

        memset(f, 0, sizeof(*f));
        pthread_mutex_init(&f->lock, NULL);
        f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(f->fd, 64) < 0 || getsockname(f->fd, (struct sockaddr *)&a, &alen) < 0)
                return -1;
        f->port = ntohs(a.sin_port);
        return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

static inline void fake_stop(struct fake *f)
{
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->thread, NULL);
        close(f->fd);
        for (size_t i = 0; i < f->n_routes; i++)
                free(f->routes[i].body);
        pthread_mutex_destroy(&f->lock);
}
