/* slurm_split: see include/jobfs/slurm_split.h. */
#include "jobfs/slurm_split.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs/jsonscan.h"

struct slurm_split {
        slurm_job_fn fn;
        void *ctx;
        struct jsonscan *scan;  /* checks the syntax and the envelope */
        bool saw_jobs;          /* jsonscan: a top-level "jobs" array */
        bool found_jobs;        /* the splitter found it too */
        int depth;              /* of the byte being read: 0 outside everything */
        bool in_str, esc;
        bool key_expected, in_key;      /* depth 1: a member name comes / is read */
        char key[8];
        size_t key_len;
        bool in_jobs;           /* inside the top-level "jobs" array */
        char *buf;              /* the element being captured, or NULL */
        size_t len, cap;
};

static int on_scan(void *ctx, const char *const *path, size_t depth, enum jsonscan_kind kind,
                   const char *value, size_t len)
{
        struct slurm_split *s = ctx;

        (void)value;
        (void)len;
        if (depth == 1 && strcmp(path[0], "jobs") == 0) {
                if (kind != JSONSCAN_ARRAY)
                        return -EBADMSG;
                s->saw_jobs = true;
        }
        return 0;
}

int slurm_split_new(slurm_job_fn fn, void *ctx, struct slurm_split **ret)
{
        struct slurm_split *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->fn = fn;
        s->ctx = ctx;
        r = jsonscan_new(on_scan, s, &s->scan);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void slurm_split_free(struct slurm_split *s)
{
        if (!s)
                return;
        jsonscan_free(s->scan);
        free(s->buf);
        free(s);
}

static int capture(struct slurm_split *s, char c)
{
        if (s->len == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 4096;
                char *b;

                if (s->len >= SLURM_SPLIT_ELEMENT_MAX)
                        return -EFBIG;
                if (cap > SLURM_SPLIT_ELEMENT_MAX)
                        cap = SLURM_SPLIT_ELEMENT_MAX;
                b = realloc(s->buf, cap);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->cap = cap;
        }
        s->buf[s->len++] = c;
        return 0;
}

/* One byte of a reply jsonscan has accepted: tracks strings and nesting
 * just enough to find the elements of the top-level "jobs" array. */
static int split_byte(struct slurm_split *s, char c)
{
        bool capturing = s->in_jobs && s->depth >= 3;
        int r = 0;

        if (capturing && (r = capture(s, c)) < 0)
                return r;
        if (s->in_str) {
                bool escaped = s->esc;

                s->esc = !escaped && c == '\\';
                if (!escaped && c == '"')
                        s->in_str = s->in_key = false;
                else if (s->in_key && !escaped && c != '\\' && s->key_len < sizeof(s->key))
                        s->key[s->key_len++] = c;
                else if (s->in_key)
                        s->key_len = sizeof(s->key) + 1;        /* escaped or long: not "jobs" */
                return 0;
        }
        /* an element of "jobs" is an object: nothing else may start there */
        if (s->in_jobs && s->depth == 2 && c != '{' && c != ',' && c != ']' && c != ' ' &&
            c != '\t' && c != '\n' && c != '\r')
                return -EBADMSG;
        switch (c) {
        case '"':
                s->in_str = true;
                if (s->depth == 1 && s->key_expected) {
                        s->in_key = true;
                        s->key_expected = false;
                        s->key_len = 0;
                }
                break;
        case ',':
                if (s->depth == 1)
                        s->key_expected = true;
                break;
        case '{':
        case '[':
                if (s->depth == 1 && c == '[' && s->key_len == 4 && memcmp(s->key, "jobs", 4) == 0)
                        s->in_jobs = s->found_jobs = true;
                if (s->in_jobs && s->depth == 2) {
                        s->len = 0;
                        r = capture(s, c);
                }
                if (s->depth == 0)
                        s->key_expected = c == '{';
                s->depth++;
                break;
        case '}':
        case ']':
                s->depth--;
                if (s->in_jobs && s->depth == 2)
                        r = s->fn(s->ctx, s->buf, s->len);
                else if (s->in_jobs && s->depth == 1)
                        s->in_jobs = false;
                break;
        }
        return r;
}

int slurm_split_feed(struct slurm_split *s, const char *data, size_t len)
{
        int r = jsonscan_feed(s->scan, data, len);

        for (size_t i = 0; r == 0 && i < len; i++)
                r = split_byte(s, data[i]);
        return r;
}

int slurm_split_end(struct slurm_split *s)
{
        int r = jsonscan_end(s->scan);

        if (r == 0 && (!s->saw_jobs || !s->found_jobs))
                r = -EBADMSG;   /* no "jobs" array, or one spelled with escapes */
        return r;
}

int slurm_parse_jobs(const char *body, size_t len, slurm_job_fn fn, void *ctx)
{
        struct slurm_split *s = NULL;
        int r = slurm_split_new(fn, ctx, &s);

        if (r < 0)
                return r;
        r = slurm_split_feed(s, body, len);
        if (r == 0)
                r = slurm_split_end(s);
        slurm_split_free(s);
        return r;
}

