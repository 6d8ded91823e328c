/* Unit tests for jsonscan: the streaming scanner behind the jobs list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jobfs/jsonscan.h"

/* Records every value as "path=kind:value" lines, to compare as one string. */
struct record {
        char out[4096];
        size_t len;
        int fail_at;            /* return -EIO on this call (1-based), 0 never */
        int calls;
};

static int on_value(void *ctx, const char *const *path, size_t depth, enum jsonscan_kind kind,
                    const char *value, size_t len)
{
        static const char kinds[] = "soanx";
        struct record *r = ctx;

        char line[256];
        size_t n = 0;

        if (++r->calls == r->fail_at)
                return -EIO;
        for (size_t i = 0; i < depth && n < sizeof(line); i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "/%s", path[i]);
        if (n < sizeof(line))
                n += (size_t)snprintf(line + n, sizeof(line) - n, "=%c%s%.*s\n", kinds[kind],
                                      value ? ":" : "", (int)len, value ? value : "");
        if (n > sizeof(line) - 1)
                n = sizeof(line) - 1;
        if (n < sizeof(r->out) - r->len) {      /* deep inputs: keep what fits */
                memcpy(r->out + r->len, line, n);
                r->len += n;
                r->out[r->len] = '\0';
        }
        return 0;
}

/* Scans text fed in pieces of `chunk` bytes; returns the result, fills r. */
static int scan(const char *text, size_t chunk, struct record *r)
{
        struct jsonscan *js = NULL;
        size_t len = strlen(text);
        int ret = jsonscan_new(on_value, r, &js);

        for (size_t i = 0; ret == 0 && i < len; i += chunk)
                ret = jsonscan_feed(js, text + i, len - i < chunk ? len - i : chunk);
        if (ret == 0)
                ret = jsonscan_end(js);
        jsonscan_free(js);
        return ret;
}

static void check_scan(const char *text, int want, const char *want_out)
{
        /* the same answer whatever the chunking: 1 byte, 3 bytes, all at once */
        static const size_t chunks[] = { 1, 3, 1 << 20 };

        for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
                struct record r = { 0 };

                CHECK_INT_EQ(scan(text, chunks[i], &r), want);
                if (want_out)
                        CHECK_STR_EQ(r.out, want_out);
        }
}

static void test_paths(void)
{
        check_scan("{\"jobs\":[{\"Metadata\":{\"ID\":\"a\"}},{\"ID\":\"b\",\"n\":1.5e3,\"t\":true}]}\n", 0,
                   "=o\n/jobs=a\n/jobs/[]=o\n/jobs/[]/Metadata=o\n/jobs/[]/Metadata/ID=s:a\n"
                   "/jobs/[]=o\n/jobs/[]/ID=s:b\n/jobs/[]/n=x:1.5e3\n/jobs/[]/t=x:true\n");
        check_scan("{\"jobs\":null}", 0, "=o\n/jobs=n\n");
        check_scan("[]", 0, "=a\n");
        check_scan("[[],{}]", 0, "=a\n/[]=a\n/[]=o\n");
        check_scan("42", 0, "=x:42\n");
        /* numbers come as sent: nothing rounds 0.1 or clamps a uint64 */
        check_scan("[0.1,18446744073709551615,-0e+2]", 0,
                   "=a\n/[]=x:0.1\n/[]=x:18446744073709551615\n/[]=x:-0e+2\n");
        check_scan("\"x\"", 0, "=s:x\n");
}

static void test_escapes(void)
{
        check_scan("[\"a\\\"b\\\\c\\/d\\n\\t\"]", 0, "=a\n/[]=s:a\"b\\c/d\n\t\n");
        check_scan("[\"\\u0041\\u00e9\\u20ac\"]", 0, "=a\n/[]=s:A\xc3\xa9\xe2\x82\xac\n");
        check_scan("{\"k\\u0065y\":\"v\"}", 0, "=o\n/key=s:v\n");
        /* a surrogate pair is one 4-byte sequence (as json-c decodes it), a
         * lone half stays 3 bytes that snap_name_ok refuses */
        check_scan("[\"\\ud83d\\ude00\"]", 0, "=a\n/[]=s:\xf0\x9f\x98\x80\n");
        check_scan("[\"\\ud83dx\"]", 0, "=a\n/[]=s:\xed\xa0\xbdx\n");
        check_scan("[\"\\ud83d\\u0041\"]", 0, "=a\n/[]=s:\xed\xa0\xbd" "A\n");
        check_scan("[\"\\ude00\"]", 0, "=a\n/[]=s:\xed\xb8\x80\n");
}

static void test_bad(void)
{
        static const char *const bad[] = {
                "", "{", "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1 2]", "{1:2}", "tru",
                "[\"unterminated", "[\"bad \\x escape\"]", "[\"\\u12g4\"]", "nul", "{}}", "[] []",
                "[\"ctrl \x01 char\"]", "]", "{\"a\":1]", "[}", "-", "1.2.3x",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct record r = { 0 };

                if (!CHECK_INT_EQ(scan(bad[i], 1 << 20, &r), -EBADMSG))
                        fprintf(stderr, "  input: '%s'\n", bad[i]);
        }
}

static void test_depth_and_length(void)
{
        char deep[JSONSCAN_DEPTH_MAX * 2 + 3];
        size_t n = JSONSCAN_DEPTH_MAX;
        struct record r = { 0 };
        char *longs;

        memset(deep, '[', n);
        memset(deep + n, ']', n);
        deep[2 * n] = '\0';
        CHECK_INT_EQ(scan(deep, 1 << 20, &r), 0);
        memset(deep, '[', n + 1);
        memset(deep + n + 1, ']', n + 1);
        deep[2 * n + 2] = '\0';
        CHECK_INT_EQ(scan(deep, 1 << 20, &r), -EBADMSG);

        /* a string past JSONSCAN_STRING_MAX is scanned but not reported */
        longs = malloc(JSONSCAN_STRING_MAX + 16);
        if (!CHECK(longs))
                return;
        longs[0] = '[';
        longs[1] = '"';
        memset(longs + 2, 'x', JSONSCAN_STRING_MAX + 1);
        strcpy(longs + 2 + JSONSCAN_STRING_MAX + 1, "\",\"y\"]");
        memset(&r, 0, sizeof(r));
        CHECK_INT_EQ(scan(longs, 7, &r), 0);
        CHECK_STR_EQ(r.out, "=a\n/[]=s:y\n");
        free(longs);
}

static void test_callback_error_stops(void)
{
        struct record r = { .fail_at = 2 };

        CHECK_INT_EQ(scan("[\"a\",\"b\",\"c\"]", 1 << 20, &r), -EIO);
        CHECK_INT_EQ(r.calls, 2);
}

int main(void)
{
        test_paths();
        test_escapes();
        test_bad();
        test_depth_and_length();
        test_callback_error_stops();
        return CHECK_DONE();
}
