/* Unit tests of the muse parsers (muse.c): the doc's Example A (OK) and a
 * WAIT and a NOK reply (tests/fixtures/muse-*.json), the error object, bodies
 * that are not JSON, the run reply's exact stdout bytes and software/list.
 * Expected values come from api/muse.md. The docs show no WAIT or NOK reply
 * (muse.md section 4): those fixtures are Example A with the guessed
 * IN_PROGRESS/RUNNING and ENDED_NOK/FAILED values and msg/url texts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "snapcheck.h"
#include "jobfs/backend.h"
#include "jobfs/blob.h"
#include "jobfs/muse.h"

#define KEY_OK "58ae6cea-df31-4059-9466-b817c337985d"
#define API "http://127.0.0.1:8000/api/software/muse/"

/* muse_parse_run over a literal, NULs included */
#define RUN(lit, status, ret) muse_parse_run((lit), sizeof(lit) - 1, (status), (ret))

struct state_result {
        int r;
        struct snap *snap;
        bool terminal, want_stdout;
};

/* Parses with sentinels in the outputs, so "untouched on failure" shows. */
static struct state_result parse_state(const char *body, size_t len, long status)
{
        static struct snap sentinel;
        struct state_result res = { .snap = &sentinel, .terminal = true, .want_stdout = true };

        res.r = muse_parse_state(body, len, status, &res.snap, &res.terminal, &res.want_stdout);
        if (res.r < 0) {
                CHECK(res.snap == &sentinel);
                CHECK(res.terminal && res.want_stdout);
                res.snap = NULL;
        }
        return res;
}

static struct state_result parse_state_str(const char *body, long status)
{
        return parse_state(body, strlen(body), status);
}

static void test_state_ok(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/muse-state-ok.json", &len);
        struct state_result res;

        if (!body)
                return;
        res = parse_state(body, len, 200);
        if (CHECK_INT_EQ(res.r, 0)) {
                CHECK(res.terminal);
                CHECK(res.want_stdout);
                CHECK_DIR(res.snap, "", 9);
                CHECK_TEXT(res.snap, "cr", "OK\n");
                CHECK_TEXT(res.snap, "name", "sw_example\n");
                CHECK_TEXT(res.snap, "state", "ENDED_OK\n");
                CHECK_TEXT(res.snap, "slurm_state", "COMPLETED\n");
                CHECK_TEXT(res.snap, "job_id", "2459394\n");       /* a JSON integer */
                CHECK_TEXT(res.snap, "jobname", "114-ws-sw_example\n");
                CHECK_TEXT(res.snap, "msg",
                           "End of job. You can now get results by GET " API "run/sw_example/" KEY_OK
                           "/ request or ask for content (to investigate) by GET " API
                           "content/sw_example/" KEY_OK "/ request.\n");
                CHECK_TEXT(res.snap, "url", API "run/sw_example/" KEY_OK "/\n");
                CHECK_FILE(res.snap, "state.json", body, len);
                /* stdout comes from GET run, not from the state reply */
                CHECK_ABSENT(res.snap, "stdout");
        }
        snap_free(res.snap);

        /* a report under any status but 200 is not taken as one */
        res = parse_state(body, len, 202);
        CHECK_INT_EQ(res.r, -EIO);
        snap_free(res.snap);
        free(body);
}

static void test_state_wait_nok(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/muse-state-wait.json", &len);
        struct state_result res;

        if (body) {
                res = parse_state(body, len, 200);
                if (CHECK_INT_EQ(res.r, 0)) {
                        CHECK(!res.terminal);
                        CHECK(!res.want_stdout);
                        CHECK_TEXT(res.snap, "cr", "WAIT\n");
                        CHECK_TEXT(res.snap, "state", "IN_PROGRESS\n");
                        CHECK_TEXT(res.snap, "slurm_state", "RUNNING\n");
                        CHECK_TEXT(res.snap, "job_id", "2459395\n");
                        CHECK_TEXT(res.snap, "jobname", "115-ws-sw_example\n");
                        CHECK_TEXT(res.snap, "url", API "state/sw_example/11111111-1111-4111-8111-111111111111/\n");
                        CHECK_FILE(res.snap, "state.json", body, len);
                }
                snap_free(res.snap);
                free(body);
        }
        body = check_slurp(FIXTURES "/muse-state-nok.json", &len);
        if (body) {
                res = parse_state(body, len, 200);
                if (CHECK_INT_EQ(res.r, 0)) {
                        CHECK(res.terminal);
                        CHECK(!res.want_stdout);
                        CHECK_TEXT(res.snap, "cr", "NOK\n");
                        CHECK_TEXT(res.snap, "state", "ENDED_NOK\n");
                        CHECK_TEXT(res.snap, "slurm_state", "FAILED\n");
                        CHECK_TEXT(res.snap, "job_id", "2459396\n");
                        CHECK_FILE(res.snap, "state.json", body, len);
                }
                snap_free(res.snap);
                free(body);
        }
}

/* want_stdout: only for cr OK with returned_type stdout (the default). */
static void test_state_want_stdout(void)
{
        static const struct {
                const char *json;
                bool terminal, want_stdout;
        } cases[] = {
                { "{\"info\":{\"report\":{\"request\":{\"returned_type\":\"stdout\"},\"cr\":\"OK\"}}}", true, true },
                { "{\"info\":{\"report\":{\"request\":{\"returned_type\":\"run.zip\"},\"cr\":\"OK\"}}}", true, false },
                { "{\"info\":{\"report\":{\"request\":{\"returned_type\":\"stdout.txt\"},\"cr\":\"OK\"}}}", true, false },
                { "{\"info\":{\"report\":{\"request\":{},\"cr\":\"OK\"}}}", true, true },
                { "{\"info\":{\"report\":{\"cr\":\"OK\"}}}", true, true },
                { "{\"info\":{\"report\":{\"request\":{\"returned_type\":7},\"cr\":\"OK\"}}}", true, true },
                { "{\"info\":{\"report\":{\"request\":{\"returned_type\":\"stdout\"},\"cr\":\"NOK\"}}}", true, false },
                { "{\"info\":{\"report\":{\"request\":{\"returned_type\":\"stdout\"},\"cr\":\"WAIT\"}}}", false, false },
                { "{\"info\":{\"report\":{\"cr\":\"ok\"}}}", false, false },
                { "{\"info\":{\"report\":{\"cr\":\"\"}}}", false, false },
                { "{\"info\":{\"report\":{\"cr\":\"RUNNING\"}}}", false, false },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct state_result res = parse_state_str(cases[i].json, 200);

                if (!CHECK_INT_EQ(res.r, 0) ||
                    !CHECK_INT_EQ(res.terminal, cases[i].terminal) ||
                    !CHECK_INT_EQ(res.want_stdout, cases[i].want_stdout))
                        fprintf(stderr, "    reply: %s\n", cases[i].json);
                snap_free(res.snap);
        }
}

/* Absent fields are absent files; values keep their JSON spelling. */
static void test_state_fields(void)
{
        struct state_result res;

        res = parse_state_str("{\"info\":{\"report\":{\"cr\":\"WAIT\"}}}", 200);
        if (CHECK_INT_EQ(res.r, 0)) {
                CHECK_DIR(res.snap, "", 2);
                CHECK_TEXT(res.snap, "cr", "WAIT\n");
                CHECK_ABSENT(res.snap, "state");
                CHECK_ABSENT(res.snap, "job_id");
                CHECK_ABSENT(res.snap, "msg");
                CHECK_ABSENT(res.snap, "url");
                CHECK_ABSENT(res.snap, "name");
        }
        snap_free(res.snap);

        res = parse_state_str("{\"info\":{\"report\":{\"process\":{\"jobname\":null,\"job_id\":\"2459394\","
                              "\"latest_cr\":[],\"latest_state\":\"\"},\"name\":{},\"cr\":\"WAIT\"}},"
                              "\"msg\":7,\"url\":false}", 200);
        if (CHECK_INT_EQ(res.r, 0)) {
                CHECK_TEXT(res.snap, "job_id", "2459394\n");
                CHECK_ABSENT(res.snap, "jobname");
                CHECK_ABSENT(res.snap, "state");
                CHECK_FILE(res.snap, "slurm_state", "", 0);
                CHECK_ABSENT(res.snap, "name");
                CHECK_TEXT(res.snap, "msg", "7\n");
                CHECK_TEXT(res.snap, "url", "false\n");
        }
        snap_free(res.snap);

        /* a large SLURM id keeps every digit */
        res = parse_state_str("{\"info\":{\"report\":{\"process\":{\"job_id\":9007199254740993},"
                              "\"cr\":\"WAIT\"}}}", 200);
        if (CHECK_INT_EQ(res.r, 0))
                CHECK_TEXT(res.snap, "job_id", "9007199254740993\n");
        snap_free(res.snap);
}

static void test_state_errors(void)
{
        static const char err[] =
                "{\"error\":\"unknown key 'x'\",\"more\":[\"no run with this key\"],\"type\":\"KeyError\"}";
        struct state_result res;

        /* the error object: no such run below 500, a server failure from 500 */
        CHECK_INT_EQ(parse_state_str(err, 404).r, -ENOENT);
        CHECK_INT_EQ(parse_state_str(err, 400).r, -ENOENT);
        CHECK_INT_EQ(parse_state_str(err, 200).r, -ENOENT);
        CHECK_INT_EQ(parse_state_str(err, 500).r, -EIO);
        CHECK_INT_EQ(parse_state_str(err, 503).r, -EAGAIN);    /* as the status says */
        CHECK_INT_EQ(parse_state_str(err, 504).r, -ETIMEDOUT);
        CHECK_INT_EQ(parse_state_str("{\"error\":null}", 404).r, -ENOENT);

        /* garbage with 200 is a bad message */
        CHECK_INT_EQ(parse_state_str("", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("garbage", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("<html><body>Server Error</body></html>", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":{\"report\":{\"cr\":\"OK\"}}", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":{\"report\":{\"cr\":\"OK\"}}} x", 200).r, -EBADMSG);
        /* JSON, but not a state report */
        CHECK_INT_EQ(parse_state_str("[]", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("\"OK\"", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{}", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":{}}", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":{\"report\":{}}}", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":{\"report\":{\"cr\":1}}}", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":{\"report\":[]}}", 200).r, -EBADMSG);
        CHECK_INT_EQ(parse_state_str("{\"info\":[],\"report\":{\"cr\":\"OK\"}}", 200).r, -EBADMSG);

        /* a non-200 body that is not JSON: the status decides */
        CHECK_INT_EQ(parse_state_str("<h1>Not Found</h1>", 404).r, -ENOENT);
        CHECK_INT_EQ(parse_state_str("Gone", 410).r, -ENOENT);
        CHECK_INT_EQ(parse_state_str("", 500).r, -EIO);
        CHECK_INT_EQ(parse_state_str("<h1>Server Error (500)</h1>", 500).r, -EIO);
        CHECK_INT_EQ(parse_state_str("Bad Gateway", 502).r, -EIO);
        CHECK_INT_EQ(parse_state_str("Service Unavailable", 503).r, -EAGAIN);
        CHECK_INT_EQ(parse_state_str("Too Many Requests", 429).r, -EAGAIN);
        CHECK_INT_EQ(parse_state_str("Gateway Timeout", 504).r, -ETIMEDOUT);
        CHECK_INT_EQ(parse_state_str("Forbidden", 403).r, -EACCES);
        CHECK_INT_EQ(parse_state_str("{\"detail\":\"Authentication credentials were not provided.\"}", 401).r,
                     -EACCES);
        /* a non-200 with a well-formed report is still an error */
        res = parse_state_str("{\"info\":{\"report\":{\"cr\":\"OK\"}}}", 404);
        CHECK_INT_EQ(res.r, -ENOENT);
        res = parse_state_str("{\"info\":{\"report\":{\"cr\":\"OK\"}}}", 500);
        CHECK_INT_EQ(res.r, -EIO);
        /* control twin: the same report with 200 parses */
        res = parse_state_str("{\"info\":{\"report\":{\"cr\":\"OK\"}}}", 200);
        CHECK_INT_EQ(res.r, 0);
        snap_free(res.snap);
}

static void test_run(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/muse-run-ok.json", &len);
        struct blob sentinel, *out = NULL;
        int r;

        if (body) {
                r = muse_parse_run(body, len, 200, &out);
                if (CHECK_INT_EQ(r, 0))
                        CHECK_MEM_EQ(out->data, out->len, "9.0\n", 4);
                blob_unref(out);
                free(body);
        }
        /* exact bytes: no newline added, none taken, NULs and UTF-8 kept */
        out = NULL;
        r = RUN("{\"info\":{\"stdout\":\"70.0\"}}", 200, &out);
        if (CHECK_INT_EQ(r, 0))
                CHECK_MEM_EQ(out->data, out->len, "70.0", 4);
        blob_unref(out);
        out = NULL;
        r = RUN("{\"info\":{\"stdout\":\"a\\u0000b\\n\\n\\u00e9\\t\"}}", 200, &out);
        if (CHECK_INT_EQ(r, 0))
                CHECK_MEM_EQ(out->data, out->len, "a\0b\n\n\xc3\xa9\t", 8);
        blob_unref(out);
        out = NULL;
        r = RUN("{\"info\":{\"stdout\":\"\"}}", 200, &out);
        if (CHECK_INT_EQ(r, 0))
                CHECK_INT_EQ(out->len, 0);
        blob_unref(out);

        /* failures leave *ret alone */
        out = &sentinel;
        CHECK_INT_EQ(RUN("{\"error\":\"not ready\",\"more\":[],\"type\":\"x\"}", 400, &out), -ENOENT);
        CHECK_INT_EQ(RUN("{\"error\":\"boom\",\"more\":[],\"type\":\"x\"}", 500, &out), -EIO);
        CHECK_INT_EQ(RUN("{\"info\":{\"stdout\":9}}", 200, &out), -EBADMSG);
        CHECK_INT_EQ(RUN("{\"info\":{}}", 200, &out), -EBADMSG);
        CHECK_INT_EQ(RUN("{\"msg\":\"download\",\"url\":\"x\"}", 200, &out), -EBADMSG);
        CHECK_INT_EQ(RUN("59.0\n", 200, &out), -EBADMSG);
        CHECK_INT_EQ(RUN("PK\x03\x04", 200, &out), -EBADMSG);
        CHECK_INT_EQ(RUN("Not Found", 404, &out), -ENOENT);
        CHECK_INT_EQ(RUN("", 503, &out), -EAGAIN);
        CHECK(out == &sentinel);
}

#define CHECK_NAMES(json, r, ...) \
        check_names_parse(__FILE__, __LINE__, muse_parse_list, "muse_parse_list(json)", (json), (r), \
                          (const char *[]){ __VA_ARGS__, NULL })

static void test_list(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/muse-list.json", &len);

        if (body) {
                CHECK_NAMES(body, 0, "sw_example", "sw_other");
                free(body);
        }
        CHECK_NAMES("[]", 0, NULL);
        CHECK_NAMES("[{\"name\":\"a\"},{},{\"name\":7},{\"name\":null},\"b\",null,[],"
                    "{\"name\":\"..\"},{\"name\":\".\"},{\"name\":\"x/y\"},{\"name\":\"\"},"
                    "{\"name\":\"tab\\there\"},{\"info\":{\"name\":\"c\"}},{\"name\":\"d\"}]",
                    0, "a", "d");
        CHECK_NAMES("{}", -EBADMSG, NULL);
        CHECK_NAMES("{\"name\":\"sw_example\"}", -EBADMSG, NULL);
        CHECK_NAMES("{\"error\":\"x\",\"more\":[],\"type\":\"y\"}", -EBADMSG, NULL);
        CHECK_NAMES("null", -EBADMSG, NULL);
        CHECK_NAMES("", -EBADMSG, NULL);
        CHECK_NAMES("[{\"name\":\"a\"}", -EBADMSG, NULL);
        CHECK_NAMES("[] []", -EBADMSG, NULL);
}

int main(void)
{
        test_state_ok();
        test_state_wait_nok();
        test_state_want_stdout();
        test_state_fields();
        test_state_errors();
        test_run();
        test_list();
        return CHECK_DONE();
}
