/* bacalhau_auth: see include/jobfs/bacalhau_auth.h.
 *
 * Secrets are checked for what would break or forge a header line (CR, LF,
 * other controls) before any header is built, and every copy is wiped with
 * explicit_bzero before it is freed. Log lines name the variable or the
 * file, never the value.
 */
#include "jobfs/bacalhau_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobfs/log.h"

#define TOKEN_FILE_MAX (64 * 1024)      /* a JWT is ~1 KB; a key ~40 bytes */
#define SECRET_MAX 8192                 /* one header line; curl takes far more */

void bacalhau_auth_wipe_free(char *secret)
{
        if (!secret)
                return;
        explicit_bzero(secret, strlen(secret));
        free(secret);
}

void bacalhau_auth_clear(struct bacalhau_auth *a)
{
        if (!a)
                return;
        bacalhau_auth_wipe_free(a->header);
        a->header = NULL;
        a->kind = "none";
}

/* A Bearer credential: visible ASCII only (RFC 6750's b64token and more). */
static bool token_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > SECRET_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x21 || s[i] > 0x7e)
                        return false;
        return true;
}

/* A user name or password: anything but controls (base64 carries UTF-8). */
static bool text_ok(const char *s, bool colon_ok)
{
        size_t n = strlen(s);

        if (n > SECRET_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c == 0x7f || (!colon_ok && c == ':'))
                        return false;
        }
        return true;
}

static char *base64(const char *in, size_t n)
{
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned char)in[i] << 16;

                if (i + 1 < n)
                        v |= (unsigned char)in[i + 1] << 8;
                if (i + 2 < n)
                        v |= (unsigned char)in[i + 2];
                *o++ = t[(v >> 18) & 63];
                *o++ = t[(v >> 12) & 63];
                *o++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
                *o++ = i + 2 < n ? t[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

static char *header_with(const char *scheme, const char *credential)
{
        size_t n = strlen("Authorization: ") + strlen(scheme) + 1 + strlen(credential) + 1;
        char *h = malloc(n);

        if (h)
                snprintf(h, n, "Authorization: %s %s", scheme, credential);
        return h;
}

static int basic_header(const char *user, const char *password, char **ret)
{
        size_t n = strlen(user) + 1 + strlen(password);
        char *pair = malloc(n + 1), *b64 = NULL;
        int r = -ENOMEM;

        if (!pair)
                return -ENOMEM;
        snprintf(pair, n + 1, "%s:%s", user, password);
        b64 = base64(pair, n);
        if (b64 && (*ret = header_with("Basic", b64)))
                r = 0;
        explicit_bzero(pair, n);
        free(pair);
        bacalhau_auth_wipe_free(b64);
        return r;
}

int bacalhau_auth_read_token_file(const char *path, char **ret)
{
        char *buf = NULL;
        struct stat st;
        ssize_t got;
        size_t len = 0;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                log_error("bacalhau: cannot open the token file '%s'", path);
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                log_error("bacalhau: the token file '%s' is not a regular file", path);
                r = -EINVAL;
                goto out;
        }
        if ((st.st_mode & 077) || (st.st_uid != getuid() && st.st_uid != 0)) {
                log_error("bacalhau: the token file '%s' is open to others (mode %04o, owner %u): "
                          "it must be the user's and mode 0600 (chmod 600 '%s')",
                          path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, path);
                r = -EPERM;
                goto out;
        }
        if (st.st_size > TOKEN_FILE_MAX) {
                r = -EFBIG;
                goto out;
        }
        buf = calloc(1, TOKEN_FILE_MAX + 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        while (len < TOKEN_FILE_MAX && (got = read(fd, buf + len, TOKEN_FILE_MAX - len)) != 0) {
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0) {
                        r = -errno;
                        goto out;
                }
                len += (size_t)got;
        }
        buf[strcspn(buf, "\r\n")] = '\0';       /* the first line */
        len = strlen(buf);
        while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
                buf[--len] = '\0';
        if (len == 0 || !token_ok(buf)) {
                log_error("bacalhau: the token file '%s' holds no usable token on its first line",
                          path);
                r = -EINVAL;
                goto out;
        }
        *ret = buf;
        buf = NULL;
out:
        if (buf) {
                explicit_bzero(buf, TOKEN_FILE_MAX);
                free(buf);
        }
        close(fd);
        return r;
}

int bacalhau_auth_from(const char *api_key, const char *user, const char *password,
                       const char *token_file, struct bacalhau_auth *ret)
{
        struct bacalhau_auth a = { .header = NULL, .kind = "none" };
        char *token = NULL;
        int r = 0;

        if (token_file) {
                r = bacalhau_auth_read_token_file(token_file, &token);
                if (r < 0)
                        return r;
                a.header = header_with("Bearer", token);
                a.kind = "token-file";
                bacalhau_auth_wipe_free(token);
                r = a.header ? 0 : -ENOMEM;
        } else if (api_key && (user || password)) {
                log_error("bacalhau: BACALHAU_API_KEY and BACALHAU_API_USERNAME/PASSWORD are both "
                          "set: choose one");
                r = -EINVAL;
        } else if (api_key) {
                if (!token_ok(api_key)) {
                        log_error("bacalhau: BACALHAU_API_KEY is empty or holds spaces or controls");
                        return -EINVAL;
                }
                a.header = header_with("Bearer", api_key);
                a.kind = "api-key";
                r = a.header ? 0 : -ENOMEM;
        } else if (user || password) {
                if (!user || !password || !*user) {
                        log_error("bacalhau: BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD go "
                                  "together");
                        return -EINVAL;
                }
                if (!text_ok(user, false) || !text_ok(password, true)) {
                        log_error("bacalhau: BACALHAU_API_USERNAME or BACALHAU_API_PASSWORD holds "
                                  "a control character (or the name a ':')");
                        return -EINVAL;
                }
                r = basic_header(user, password, &a.header);
                a.kind = "basic";
        }
        if (r == 0)
                *ret = a;
        return r;
}

int bacalhau_auth_load(const char *token_file, struct bacalhau_auth *ret)
{
        const char *key = getenv("BACALHAU_API_KEY");
        const char *user = getenv("BACALHAU_API_USERNAME");
        const char *password = getenv("BACALHAU_API_PASSWORD");

        /* an empty variable is an unset one (`BACALHAU_API_KEY= jobfs ...`) */
        return bacalhau_auth_from(key && *key ? key : NULL, user && *user ? user : NULL,
                                  password && *password ? password : NULL, token_file, ret);
}
