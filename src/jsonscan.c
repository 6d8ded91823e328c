/* jsonscan: see include/jobfs/jsonscan.h.
 *
 * A byte-at-a-time state machine (RFC 8259 grammar, numbers and literals
 * checked for their characters only). Object keys are kept per level so the
 * callback sees the path; \u escapes are decoded to UTF-8 (a lone surrogate
 * gives bytes that snap_name_ok rejects, which is what we want for names).
 */
#include "jobfs/jsonscan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum state {
        ST_VALUE,               /* a value must come (or ']' right after '[') */
        ST_KEY_OR_END,          /* after '{': a key or '}' */
        ST_KEY,                 /* after ',' in an object: a key */
        ST_COLON,
        ST_AFTER_VALUE,         /* ',' or the closing bracket */
        ST_STRING,
        ST_ESCAPE,
        ST_UNICODE,
        ST_LITERAL,
        ST_DONE,
};

struct frame {
        bool is_object;
        char key[JSONSCAN_STRING_MAX + 1];
};

struct jsonscan {
        jsonscan_fn fn;
        void *ctx;
        enum state st;
        bool in_key;            /* the string being read is an object key */
        bool report_keys;
        bool array_start;       /* just after '[': ']' may close it */
        struct frame *frames;   /* JSONSCAN_DEPTH_MAX of them */
        size_t depth;
        char str[JSONSCAN_STRING_MAX + 4];
        size_t len;
        bool too_long;
        unsigned uni, uni_digits;
        unsigned high;          /* a high surrogate waiting for its low half, or 0 */
        const char *path[JSONSCAN_DEPTH_MAX];
};

int jsonscan_new(jsonscan_fn fn, void *ctx, struct jsonscan **ret)
{
        struct jsonscan *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->frames = calloc(JSONSCAN_DEPTH_MAX, sizeof(*s->frames));
        if (!s->frames) {
                free(s);
                return -ENOMEM;
        }
        s->fn = fn;
        s->ctx = ctx;
        s->st = ST_VALUE;
        *ret = s;
        return 0;
}

void jsonscan_report_keys(struct jsonscan *s, bool on)
{
        s->report_keys = on;
}

void jsonscan_free(struct jsonscan *s)
{
        if (!s)
                return;
        free(s->frames);
        free(s);
}

static void str_put(struct jsonscan *s, unsigned char c)
{
        if (s->len < JSONSCAN_STRING_MAX)
                s->str[s->len++] = (char)c;
        else
                s->too_long = true;
}

static void str_put_utf8(struct jsonscan *s, unsigned cp)
{
        if (cp >= 0x10000) {
                str_put(s, (unsigned char)(0xf0 | (cp >> 18)));
                str_put(s, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
                str_put(s, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
                str_put(s, (unsigned char)(0x80 | (cp & 0x3f)));
        } else if (cp < 0x80) {
                str_put(s, (unsigned char)cp);
        } else if (cp < 0x800) {
                str_put(s, (unsigned char)(0xc0 | (cp >> 6)));
                str_put(s, (unsigned char)(0x80 | (cp & 0x3f)));
        } else {
                str_put(s, (unsigned char)(0xe0 | (cp >> 12)));
                str_put(s, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
                str_put(s, (unsigned char)(0x80 | (cp & 0x3f)));
        }
}

/* A value ended: the enclosing container now wants ',' or its bracket. */
static int value_done(struct jsonscan *s)
{
        s->st = s->depth == 0 ? ST_DONE : ST_AFTER_VALUE;
        return 0;
}

static int push(struct jsonscan *s, bool is_object)
{
        if (s->depth == JSONSCAN_DEPTH_MAX)
                return -EBADMSG;
        s->frames[s->depth].is_object = is_object;
        s->frames[s->depth].key[0] = '\0';
        s->path[s->depth] = is_object ? s->frames[s->depth].key : "[]";
        s->depth++;
        s->st = is_object ? ST_KEY_OR_END : ST_VALUE;
        s->array_start = !is_object;
        return 0;
}

static int pop(struct jsonscan *s, bool is_object)
{
        if (s->depth == 0 || s->frames[s->depth - 1].is_object != is_object)
                return -EBADMSG;
        s->depth--;
        return value_done(s);
}

static int string_done(struct jsonscan *s)
{
        if (s->in_key) {
                struct frame *f = &s->frames[s->depth - 1];

                if (s->report_keys && !s->too_long) {
                        int r;

                        s->str[s->len] = '\0';
                        r = s->fn(s->ctx, s->path, s->depth - 1, JSONSCAN_KEY, s->str, s->len);
                        if (r < 0)
                                return r;
                }
                /* an over-long key matches no path we look for */
                memcpy(f->key, s->too_long ? "" : s->str, s->too_long ? 1 : s->len);
                if (!s->too_long)
                        f->key[s->len] = '\0';
                s->st = ST_COLON;
                return 0;
        }
        if (!s->too_long) {
                int r;

                s->str[s->len] = '\0';
                r = s->fn(s->ctx, s->path, s->depth, JSONSCAN_STRING, s->str, s->len);
                if (r < 0)
                        return r;
        }
        return value_done(s);
}

static bool is_literal_char(unsigned char c)
{
        return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
               (c >= 'a' && c <= 'z');
}

static bool literal_ok(const char *t, size_t len)
{
        if ((len == 4 && !memcmp(t, "true", 4)) || (len == 5 && !memcmp(t, "false", 5)) ||
            (len == 4 && !memcmp(t, "null", 4)))
                return true;
        bool digit = false;

        for (size_t i = 0; i < len; i++) {
                digit |= t[i] >= '0' && t[i] <= '9';
                if (!digit && !(t[i] == '-' && i == 0))
                        return false;   /* a number starts with [-]digit */
                if (!((t[i] >= '0' && t[i] <= '9') || strchr("-+.eE", t[i])))
                        return false;
        }
        return digit;
}

static bool is_space(unsigned char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int start_string(struct jsonscan *s, bool key)
{
        s->high = 0;
        s->in_key = key;
        s->len = 0;
        s->too_long = false;
        s->st = ST_STRING;
        return 0;
}

static int step_value(struct jsonscan *s, unsigned char c)
{
        if (c == '{' || c == '[') {
                int r = s->fn(s->ctx, s->path, s->depth,
                              c == '{' ? JSONSCAN_OBJECT : JSONSCAN_ARRAY, NULL, 0);

                return r < 0 ? r : push(s, c == '{');
        }
        if (c == ']' && s->array_start)
                return pop(s, false);
        if (c == '"')
                return start_string(s, false);
        if (is_literal_char(c)) {
                s->len = 0;
                s->too_long = false;
                str_put(s, c);
                s->st = ST_LITERAL;
                return 0;
        }
        return -EBADMSG;
}

/* A \\uXXXX escape is complete. A surrogate pair (\\ud83d\\ude00) becomes one
 * 4-byte sequence, as json-c decodes it; a lone half stays the 3 bytes that
 * snap_name_ok rejects. */
static void unicode_done(struct jsonscan *s)
{
        unsigned cp = s->uni;

        if (s->high && cp >= 0xdc00 && cp <= 0xdfff) {
                str_put_utf8(s, 0x10000 + ((s->high - 0xd800) << 10) + (cp - 0xdc00));
                s->high = 0;
        } else {
                if (s->high)
                        str_put_utf8(s, s->high);
                s->high = cp >= 0xd800 && cp <= 0xdbff ? cp : 0;
                if (!s->high)
                        str_put_utf8(s, cp);
        }
        s->st = ST_STRING;
}

/* A byte that is not the '\\' of a next escape: a pending high surrogate is alone. */
static void flush_high(struct jsonscan *s)
{
        if (s->high)
                str_put_utf8(s, s->high);
        s->high = 0;
}

static int step(struct jsonscan *s, unsigned char c)
{
        int r;

        switch (s->st) {
        case ST_STRING:
                if (c == '\\') {
                        s->st = ST_ESCAPE;
                        return 0;
                }
                flush_high(s);
                if (c == '"')
                        return string_done(s);
                if (c < 0x20)
                        return -EBADMSG;
                str_put(s, c);
                return 0;
        case ST_ESCAPE: {
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                const char *p = c ? strchr(from, c) : NULL;

                if (c != 'u')
                        flush_high(s);
                if (c == 'u') {
                        s->uni = s->uni_digits = 0;
                        s->st = ST_UNICODE;
                        return 0;
                }
                if (!p)
                        return -EBADMSG;
                str_put(s, (unsigned char)to[p - from]);
                s->st = ST_STRING;
                return 0;
        }
        case ST_UNICODE:
                if (c >= '0' && c <= '9')
                        s->uni = s->uni * 16 + (c - '0');
                else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                        s->uni = s->uni * 16 + ((c | 0x20) - 'a' + 10);
                else
                        return -EBADMSG;
                if (++s->uni_digits == 4)
                        unicode_done(s);
                return 0;
        case ST_LITERAL:
                if (is_literal_char(c)) {
                        str_put(s, c);
                        return 0;
                }
                if (s->too_long || !literal_ok(s->str, s->len))
                        return -EBADMSG;
                s->str[s->len] = '\0';
                if (s->len == 4 && !memcmp(s->str, "null", 4))
                        r = s->fn(s->ctx, s->path, s->depth, JSONSCAN_NULL, NULL, 0);
                else
                        r = s->fn(s->ctx, s->path, s->depth, JSONSCAN_SCALAR, s->str, s->len);
                if (r < 0)
                        return r;
                value_done(s);
                return step(s, c);      /* the byte after a literal belongs to the container */
        default:
                break;
        }
        if (is_space(c))
                return 0;
        switch (s->st) {
        case ST_VALUE:
                return step_value(s, c);
        case ST_KEY_OR_END:
                if (c == '}')
                        return pop(s, true);
                /* fall through */
        case ST_KEY:
                return c == '"' ? start_string(s, true) : -EBADMSG;
        case ST_COLON:
                if (c != ':')
                        return -EBADMSG;
                s->st = ST_VALUE;
                s->array_start = false;
                return 0;
        case ST_AFTER_VALUE:
                if (c == ',') {
                        s->st = s->frames[s->depth - 1].is_object ? ST_KEY : ST_VALUE;
                        s->array_start = false;
                        return 0;
                }
                if (c == '}' || c == ']')
                        return pop(s, c == '}');
                return -EBADMSG;
        default:
                return -EBADMSG;        /* anything after the one top-level value */
        }
}

int jsonscan_feed(struct jsonscan *s, const char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                int r = step(s, (unsigned char)buf[i]);

                if (r < 0)
                        return r;
        }
        return 0;
}

int jsonscan_end(struct jsonscan *s)
{
        if (s->st == ST_LITERAL && s->depth == 0)
                return step(s, ' ');    /* a bare top-level number or literal ends here */
        return s->st == ST_DONE ? 0 : -EBADMSG;
}
