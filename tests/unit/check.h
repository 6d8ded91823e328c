/* check: the unit tests' assertion harness (no external framework).
 *
 * Each CHECK* evaluates its arguments once, counts a pass or a failure, and
 * on failure prints file:line, the expression and both values to stderr; it
 * also yields whether the check passed, so a test can stop before using a
 * NULL (`if (!CHECK(p)) return;`). CHECK_DONE() prints "N passed, M failed"
 * and is the test's exit status (nonzero when anything failed). Byte values
 * are shown escaped and cut at CHECK_SHOW_MAX bytes, so a binary or huge
 * value cannot flood the log.
 */
#pragma once
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_SHOW_MAX 200      /* bytes of a value shown in a failure */

static unsigned check_passed, check_failed;

static inline void check_show(FILE *f, const void *p, size_t len)
{
        const unsigned char *s = p;

        if (!p) {
                fputs("NULL", f);
                return;
        }
        fputc('"', f);
        for (size_t i = 0; i < len && i < CHECK_SHOW_MAX; i++) {
                if (s[i] == '\n')
                        fputs("\\n", f);
                else if (s[i] == '"' || s[i] == '\\')
                        fprintf(f, "\\%c", s[i]);
                else if (s[i] < 0x20 || s[i] >= 0x7f)
                        fprintf(f, "\\x%02x", s[i]);
                else
                        fputc(s[i], f);
        }
        fputc('"', f);
        if (len > CHECK_SHOW_MAX)
                fprintf(f, "... (%zu bytes)", len);
}

static inline bool check_note(bool ok, const char *file, int line)
{
        if (ok) {
                check_passed++;
                return true;
        }
        check_failed++;
        fprintf(stderr, "%s:%d: FAILED: ", file, line);
        return false;
}

static inline bool check_bool(const char *file, int line, const char *expr, bool ok)
{
        if (!check_note(ok, file, line))
                fprintf(stderr, "CHECK(%s)\n", expr);
        return ok;
}

static inline bool check_int(const char *file, int line, const char *ea, const char *eb,
                             intmax_t a, intmax_t b)
{
        if (!check_note(a == b, file, line))
                fprintf(stderr, "CHECK_INT_EQ(%s, %s): %jd != %jd\n", ea, eb, a, b);
        return a == b;
}

static inline bool check_mem(const char *file, int line, const char *ea, const char *eb,
                             const void *a, size_t alen, const void *b, size_t blen)
{
        bool ok = a && b && alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);

        if (!ok && !a && !b)
                ok = true;      /* both absent */
        if (!check_note(ok, file, line)) {
                fprintf(stderr, "%s vs %s:\n    got      ", ea, eb);
                check_show(stderr, a, alen);
                fprintf(stderr, " (%zu bytes)\n    expected ", alen);
                check_show(stderr, b, blen);
                fprintf(stderr, " (%zu bytes)\n", blen);
        }
        return ok;
}

static inline bool check_str(const char *file, int line, const char *ea, const char *eb,
                             const char *a, const char *b)
{
        return check_mem(file, line, ea, eb, a, a ? strlen(a) : 0, b, b ? strlen(b) : 0);
}

static inline int check_done(const char *file)
{
        const char *name = strrchr(file, '/');

        printf("%s: %u passed, %u failed\n", name ? name + 1 : file, check_passed, check_failed);
        fflush(stdout);
        return check_failed ? 1 : 0;
}

#define CHECK(expr) check_bool(__FILE__, __LINE__, #expr, (expr))
#define CHECK_INT_EQ(a, b) check_int(__FILE__, __LINE__, #a, #b, (intmax_t)(a), (intmax_t)(b))
#define CHECK_STR_EQ(a, b) check_str(__FILE__, __LINE__, #a, #b, (a), (b))
#define CHECK_MEM_EQ(p, plen, q, qlen) \
        check_mem(__FILE__, __LINE__, #p, #q, (p), (plen), (q), (qlen))
#define CHECK_DONE() check_done(__FILE__)

/* Reads a whole file (fixtures); caller frees with free(). NULL on error,
 * with the reason printed and counted as a failure. */
static inline char *check_slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t len = 0, cap = 0, n;

        if (!f) {
                check_failed++;
                fprintf(stderr, "cannot open fixture %s\n", path);
                return NULL;
        }
        do {
                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap + 65536);

                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                        cap += 65536;
                }
                n = fread(buf + len, 1, cap - len - 1, f);
                len += n;
        } while (n > 0);
        fclose(f);
        buf[len] = '\0';
        *ret_len = len;
        return buf;
}
