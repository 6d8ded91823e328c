/* slurm_token: see include/jobfs/slurm_token.h. */
#include "jobfs/slurm_token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define FILE_MAX 65536          /* a token file is one line; this is generous */

bool slurm_token_ok(const char *s, size_t len)
{
        if (len == 0 || len > SLURM_TOKEN_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      strchr("-_.=+/", c)) || c == '\0')
                        return false;
        }
        return true;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int slurm_token_parse(const char *text, size_t len, char **ret)
{
        const char *raw = NULL, *tok = NULL;
        size_t raw_len = 0, tok_len = 0, raws = 0;

        for (size_t pos = 0; pos < len;) {
                const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - line) : len - pos;

                pos += n + (nl ? 1 : 0);
                while (n && is_space(*line))
                        line++, n--;
                while (n && is_space(line[n - 1]))
                        n--;
                if (n == 0 || line[0] == '#')
                        continue;
                if (n > 7 && memcmp(line, "export ", 7) == 0) {
                        line += 7;
                        n -= 7;
                        while (n && is_space(*line))
                                line++, n--;
                }
                if (n >= 10 && memcmp(line, "SLURM_JWT=", 10) == 0) {
                        tok = line + 10;
                        tok_len = n - 10;
                        /* a quoted value, as a shell would write it */
                        if (tok_len >= 2 && (tok[0] == '"' || tok[0] == '\'') &&
                            tok[tok_len - 1] == tok[0]) {
                                tok++;
                                tok_len -= 2;
                        }
                } else {
                        raw = line;
                        raw_len = n;
                        raws++;
                }
        }
        if (!tok && raws == 1) {
                tok = raw;
                tok_len = raw_len;
        }
        if (!tok || !slurm_token_ok(tok, tok_len))
                return -EINVAL;
        *ret = strndup(tok, tok_len);
        return *ret ? 0 : -ENOMEM;
}

int slurm_token_load(const char *path, char **ret, struct stat *ret_st)
{
        char err[64], *buf = NULL;
        struct stat st;
        size_t len = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                log_error("slurm: cannot open token file '%s': %s", path,
                          strerror_r(-r, err, sizeof(err)));
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                log_error("slurm: token file '%s' is not a regular file", path);
                r = -EINVAL;
                goto out;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                log_error("slurm: token file '%s' is accessible by others (mode %04o): "
                          "refused; chmod 600 it", path, (unsigned)(st.st_mode & 07777));
                r = -EACCES;
                goto out;
        }
        if (st.st_uid != getuid() && st.st_uid != 0) {
                log_error("slurm: token file '%s' belongs to uid %u, not to us: refused", path,
                          (unsigned)st.st_uid);
                r = -EACCES;
                goto out;
        }
        buf = malloc(FILE_MAX);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, FILE_MAX - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == FILE_MAX) {
                        log_error("slurm: token file '%s' is larger than %d bytes", path, FILE_MAX);
                        r = -EFBIG;
                        goto out;
                }
        }
        r = slurm_token_parse(buf, len, ret);
        if (r == -EINVAL)
                log_error("slurm: token file '%s' holds no token (want the token, or a "
                          "SLURM_JWT=... line)", path);
        if (r == 0)
                *ret_st = st;
out:
        if (buf) {
                explicit_bzero(buf, FILE_MAX);
                free(buf);
        }
        close(fd);
        return r;
}

/* base64url without padding, as JWTs use it; -1 on a bad character */
static int b64url_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '-' ? 62 : c == '_' ? 63 : -1;
}

long long slurm_token_expiry(const char *token)
{
        const char *p = strchr(token, '.'), *end;
        struct json_object *claims = NULL, *exp;
        unsigned char out[1024];
        size_t n = 0;
        unsigned acc = 0, bits = 0;
        long long v = 0;

        if (!p)
                return 0;
        end = strchr(++p, '.');
        if (!end)
                return 0;
        for (; p < end; p++) {
                int d = p[0] == '=' ? 0 : b64url_value(*p);

                if (d < 0 || (p[0] == '=' && p + 1 < end && p[1] != '='))
                        return 0;
                if (p[0] == '=')
                        break;
                acc = (acc << 6) | (unsigned)d;
                bits += 6;
                if (bits >= 8) {
                        if (n == sizeof(out))
                                return 0;
                        bits -= 8;
                        out[n++] = (unsigned char)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (jsonutil_parse((const char *)out, n, &claims) < 0)
                return 0;
        exp = jsonutil_get(claims, "exp");
        if (exp && json_object_is_type(exp, json_type_int))
                v = (long long)json_object_get_int64(exp);
        json_object_put(claims);
        return v > 0 ? v : 0;
}

void slurm_token_free(char *token)
{
        if (!token)
                return;
        explicit_bzero(token, strlen(token));
        free(token);
}
