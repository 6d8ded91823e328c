/* slurmtest: helpers shared by the SLURM unit tests (header-only).
 *
 * Fixtures as the server sent them, or moved onto a test's temp dir (their
 * /srv/slurm directory replaced, their jobs made the test user's, so that
 * output files the test writes are the jobs' own); and stderr captured, to
 * count the log lines a call wrote.
 */
#pragma once
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* A fixture as the server sent it. Caller frees. */
static inline char *fixture_raw(const char *name, size_t *len)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
        return check_slurp(path, len);
}

/* Replaces every `from` in *s (len *n) by `to`; *s is reallocated. */
static inline void replace_all(char **s, size_t *n, const char *from, const char *to)
{
        size_t fl = strlen(from), tl = strlen(to), cap = *n + 1, len = 0;
        char *out = malloc(cap), *p = *s, *end = *s + *n;

        while (out && p < end) {
                char *hit = memmem(p, (size_t)(end - p), from, fl);
                size_t keep = hit ? (size_t)(hit - p) : (size_t)(end - p);

                if (len + keep + tl + 1 > cap) {
                        char *grown;

                        cap = (len + keep + tl + 1) * 2;
                        grown = realloc(out, cap);
                        if (!grown) {
                                free(out);
                                out = NULL;
                                break;
                        }
                        out = grown;
                }
                memcpy(out + len, p, keep);
                len += keep;
                if (!hit)
                        break;
                memcpy(out + len, to, tl);
                len += tl;
                p = hit + fl;
        }
        free(*s);
        *s = out;
        if (out)
                out[len] = '\0';
        *n = out ? len : 0;
}

/* A fixture moved onto dir (its /srv/slurm) and onto our uid. Caller frees. */
static inline char *fixture_at(const char *name, const char *dir, size_t *len)
{
        char *s = fixture_raw(name, len), esc[PATH_MAX * 2], uid[64];
        size_t j = 0;

        if (!s)
                return NULL;
        for (const char *p = dir; *p && j < sizeof(esc) - 3; p++) {
                if (*p == '/')
                        esc[j++] = '\\';      /* slurmrestd writes "\/" */
                esc[j++] = *p;
        }
        esc[j] = '\0';
        snprintf(uid, sizeof(uid), "\"user_id\": %u,", (unsigned)getuid());
        replace_all(&s, len, "\\/srv\\/slurm", esc);
        if (s)
                replace_all(&s, len, "\"user_id\": 0,", uid);
        return s;
}

/* Sends stderr (our log) to a file between begin and end; end returns
 * what was written (caller frees). */
static int saved_stderr = -1;
static FILE *captured;

static inline void capture_begin(void)
{
        fflush(stderr);
        captured = tmpfile();
        saved_stderr = dup(STDERR_FILENO);
        if (captured)
                dup2(fileno(captured), STDERR_FILENO);
}

static inline char *capture_end(void)
{
        char *text = NULL;
        long n;

        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        if (!captured)
                return strdup("");
        n = ftell(captured);
        rewind(captured);
        text = calloc(1, n > 0 ? (size_t)n + 1 : 1);
        if (text && n > 0 && fread(text, 1, (size_t)n, captured) != (size_t)n)
                text[0] = '\0';
        fclose(captured);
        captured = NULL;
        return text;
}

static inline size_t count_lines(const char *text, const char *needle)
{
        size_t n = 0;

        for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}
