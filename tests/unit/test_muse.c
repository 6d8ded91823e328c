/* Unit tests of the muse parsers (muse.c): the doc's Example A (OK) and a
 * WAIT and a NOK reply (tests/fixtures/muse-*.json), the error object, bodies
 * that are not JSON, the results of GET run in each form (info.stdout's exact
 * bytes, a stdout.txt file, a run.zip file, a download link), the GET content
 * zip, and software/list. Expected values come from api/muse.md. The docs
 * show no WAIT or NOK reply (muse.md section 4): those fixtures are Example A
 * with the guessed IN_PROGRESS/RUNNING and ENDED_NOK/FAILED values and
 * msg/url texts. muse-run.zip is a run.zip as the simulator serves it
 * (members as muse.md section 5), muse-run-stdout.txt the docs' stdout.txt
 * example and muse-run-download.json the docs' todownload reply. */
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
#define DKEY "20210119_130603_a20ce46e-849e-4674-ab2d-b3927a758024"
#define JSON "application/json"

struct state_result {
        int r;
        struct snap *snap;
        bool terminal;
        struct muse_ask ask;
};

/* Parses with sentinels in the outputs, so "untouched on failure" shows. */
static struct state_result parse_state(const char *body, size_t len, long status)
{
        static struct snap sentinel;
        static const struct muse_ask ask_sentinel = { true, true, "sentinel" };
        struct state_result res = { .snap = &sentinel, .terminal = true, .ask = ask_sentinel };

        res.r = muse_parse_state(body, len, status, &res.snap, &res.terminal, &res.ask);
        if (res.r < 0) {
                CHECK(res.snap == &sentinel);
                CHECK(res.terminal && res.ask.get_run && res.ask.expect_json);
                CHECK(res.ask.file == ask_sentinel.file);
                res.snap = NULL;
        }
        return res;
}

static struct state_result parse_state_str(const char *body, long status)
{
        return parse_state(body, strlen(body), status);
}

/* content.zip is in every run directory, lazy: no bytes until it is read */
static bool check_lazy(const char *file, int line, const struct snap *top, const char *name)
{
        const struct snap *s = snap_child(top, name);
        bool ok = s && s->type == SNAP_LAZY && !s->is_dir && !s->content;

        if (!check_note(ok, file, line))
                fprintf(stderr, "'%s' is not a lazy file\n", name);
        return ok;
}
#define CHECK_LAZY(top, name) check_lazy(__FILE__, __LINE__, (top), (name))

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
                CHECK(res.ask.get_run && res.ask.expect_json);
                CHECK_STR_EQ(res.ask.file, "stdout");
                CHECK_DIR(res.snap, "", 10);
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
                CHECK_LAZY(res.snap, "content.zip");
                /* stdout comes from GET run, not from the state reply */
                CHECK_ABSENT(res.snap, "stdout");
                CHECK_ABSENT(res.snap, "result");
                CHECK_ABSENT(res.snap, "download_url");
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
                        CHECK(!res.ask.get_run);
                        CHECK_LAZY(res.snap, "content.zip");
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
                        CHECK(!res.ask.get_run);
                        CHECK_LAZY(res.snap, "content.zip");
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

#define RQ(req, cr) "{\"info\":{\"report\":{\"request\":" req ",\"cr\":\"" cr "\"}}}"

/* GET run only for cr OK; what it is asked for comes from request.returned_type
 * (default stdout) and request.todownload (only for the two file types). */
static void test_state_ask(void)
{
        static const struct {
                const char *json;
                bool terminal, get_run, expect_json;
                const char *file;
        } cases[] = {
                { RQ("{\"returned_type\":\"stdout\"}", "OK"), true, true, true, "stdout" },
                { RQ("{\"returned_type\":\"run.zip\"}", "OK"), true, true, false, "result" },
                { RQ("{\"returned_type\":\"stdout.txt\"}", "OK"), true, true, false, "result" },
                { RQ("{\"returned_type\":\"run.zip\",\"todownload\":true}", "OK"), true, true, true,
                  "download_url" },
                { RQ("{\"returned_type\":\"stdout.txt\",\"todownload\":\"yes\"}", "OK"), true, true,
                  true, "download_url" },
                /* control twins: todownload false, "no", or on stdout changes nothing */
                { RQ("{\"returned_type\":\"run.zip\",\"todownload\":false}", "OK"), true, true, false,
                  "result" },
                { RQ("{\"returned_type\":\"stdout.txt\",\"todownload\":\"no\"}", "OK"), true, true,
                  false, "result" },
                { RQ("{\"returned_type\":\"run.zip\",\"todownload\":1}", "OK"), true, true, false,
                  "result" },
                { RQ("{\"returned_type\":\"stdout\",\"todownload\":true}", "OK"), true, true, true,
                  "stdout" },
                { RQ("{}", "OK"), true, true, true, "stdout" },
                { "{\"info\":{\"report\":{\"cr\":\"OK\"}}}", true, true, true, "stdout" },
                { RQ("{\"returned_type\":7}", "OK"), true, true, true, "stdout" },
                { RQ("[]", "OK"), true, true, true, "stdout" },
                { RQ("{\"returned_type\":\"stdout\"}", "NOK"), true, false, true, "stdout" },
                { RQ("{\"returned_type\":\"run.zip\"}", "NOK"), true, false, false, "result" },
                { RQ("{\"returned_type\":\"stdout\"}", "WAIT"), false, false, true, "stdout" },
                { "{\"info\":{\"report\":{\"cr\":\"ok\"}}}", false, false, true, "stdout" },
                { "{\"info\":{\"report\":{\"cr\":\"\"}}}", false, false, true, "stdout" },
                { "{\"info\":{\"report\":{\"cr\":\"RUNNING\"}}}", false, false, true, "stdout" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct state_result res = parse_state_str(cases[i].json, 200);

                if (!CHECK_INT_EQ(res.r, 0) ||
                    !CHECK_INT_EQ(res.terminal, cases[i].terminal) ||
                    !CHECK_INT_EQ(res.ask.get_run, cases[i].get_run) ||
                    !CHECK_INT_EQ(res.ask.expect_json, cases[i].expect_json) ||
                    !CHECK_STR_EQ(res.ask.file, cases[i].file))
                        fprintf(stderr, "    reply: %s\n", cases[i].json);
                /* the state files are the same whatever was asked */
                CHECK_ABSENT(res.snap, "returned_type");
                CHECK_ABSENT(res.snap, "todownload");
                snap_free(res.snap);
        }
}

/* Absent fields are absent files; values keep their JSON spelling. */
static void test_state_fields(void)
{
        struct state_result res;

        res = parse_state_str("{\"info\":{\"report\":{\"cr\":\"WAIT\"}}}", 200);
        if (CHECK_INT_EQ(res.r, 0)) {
                CHECK_DIR(res.snap, "", 3);     /* cr, state.json, content.zip */
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

struct run_result {
        int r;
        enum muse_run_kind kind;
        struct blob *out;
};

/* muse_parse_run with sentinels in the outputs */
static struct run_result parse_run(const char *body, size_t len, long status, const char *ctype,
                                   bool expect_json)
{
        static struct blob sentinel;
        struct run_result res = { .kind = (enum muse_run_kind)77, .out = &sentinel };

        res.r = muse_parse_run(body, len, status, ctype, expect_json, &res.kind, &res.out);
        if (res.r < 0) {
                CHECK(res.out == &sentinel && res.kind == (enum muse_run_kind)77);
                res.out = NULL;
        }
        return res;
}

/* RUN(literal, status, content type, expect_json): literal NULs included */
#define RUN(lit, status, ctype, json) parse_run((lit), sizeof(lit) - 1, (status), (ctype), (json))

static bool check_run(const char *file, int line, struct run_result res, int r,
                      enum muse_run_kind kind, const void *want, size_t want_len)
{
        bool ok = check_int(file, line, "r", "expected r", res.r, r);

        if (ok && r == 0) {
                ok = check_int(file, line, "kind", "expected kind", res.kind, kind);
                ok = ok && check_mem(file, line, "bytes", "expected", res.out->data,
                                     res.out->len, want, want_len);
                ok = ok && check_bool(file, line, "NUL after the bytes",
                                      res.out->data[res.out->len] == '\0');
        }
        blob_unref(res.out);
        return ok;
}
#define CHECK_RUN(res, r, kind, lit) \
        check_run(__FILE__, __LINE__, (res), (r), (kind), (lit), sizeof(lit) - 1)
#define CHECK_RUN_ERR(res, r) check_run(__FILE__, __LINE__, (res), (r), MUSE_RUN_STDOUT, NULL, 0)

/* returned_type stdout: info.stdout, exact bytes */
static void test_run_stdout(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/muse-run-ok.json", &len);

        if (body) {
                CHECK_RUN(parse_run(body, len, 200, JSON, true), 0, MUSE_RUN_STDOUT, "9.0\n");
                /* a JSON reply is told by its Content-Type, or by the report without one */
                CHECK_RUN(parse_run(body, len, 200, NULL, true), 0, MUSE_RUN_STDOUT, "9.0\n");
                CHECK_RUN(parse_run(body, len, 200, "application/json; charset=utf-8", false), 0,
                          MUSE_RUN_STDOUT, "9.0\n");
                /* control twin: no Content-Type and a file asked for: the bytes */
                check_run(__FILE__, __LINE__, parse_run(body, len, 200, NULL, false), 0,
                          MUSE_RUN_RESULT, body, len);
                free(body);
        }
        /* no newline added, none taken, NULs and UTF-8 kept */
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"70.0\"}}", 200, JSON, true), 0, MUSE_RUN_STDOUT,
                  "70.0");
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"a\\u0000b\\n\\n\\u00e9\\t\"}}", 200, JSON, true), 0,
                  MUSE_RUN_STDOUT, "a\0b\n\n\xc3\xa9\t");
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"\"}}", 200, JSON, true), 0, MUSE_RUN_STDOUT, "");

        /* failures leave the outputs alone */
        CHECK_RUN_ERR(RUN("{\"error\":\"not ready\",\"more\":[],\"type\":\"x\"}", 400, JSON, true),
                      -ENOENT);
        CHECK_RUN_ERR(RUN("{\"error\":\"not ready\",\"more\":[],\"type\":\"x\"}", 200, JSON, true),
                      -ENOENT);
        CHECK_RUN_ERR(RUN("{\"error\":\"boom\",\"more\":[],\"type\":\"x\"}", 500, JSON, true), -EIO);
        CHECK_RUN_ERR(RUN("{\"info\":{\"stdout\":9}}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("{\"info\":{}}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("{\"url\":7}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("[]", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("59.0\n", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("59.0\n", 200, NULL, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("Not Found", 404, NULL, true), -ENOENT);
        CHECK_RUN_ERR(RUN("Not Found", 404, "text/plain", false), -ENOENT);
        CHECK_RUN_ERR(RUN("", 503, NULL, false), -EAGAIN);
}

/* returned_type stdout.txt and run.zip: the file's bytes, told apart from JSON */
static void test_run_files(void)
{
        size_t txt_len = 0, zip_len = 0;
        char *txt = check_slurp(FIXTURES "/muse-run-stdout.txt", &txt_len);
        char *zip = check_slurp(FIXTURES "/muse-run.zip", &zip_len);
        static const char *const zip_types[] = { "application/zip", JSON, "text/plain", NULL,
                                                 "application/octet-stream" };

        if (txt) {
                check_run(__FILE__, __LINE__, parse_run(txt, txt_len, 200, "text/plain", false), 0,
                          MUSE_RUN_RESULT, "59.0\n", 5);
                check_run(__FILE__, __LINE__, parse_run(txt, txt_len, 200, NULL, false), 0,
                          MUSE_RUN_RESULT, "59.0\n", 5);
                /* twin: the same text where JSON was expected is no reply */
                CHECK_RUN_ERR(parse_run(txt, txt_len, 200, NULL, true), -EBADMSG);
                free(txt);
        }
        if (zip && CHECK(zip_len > 22 && memcmp(zip, "PK\3\4", 4) == 0)) {
                /* a zip signature wins over any label and over what was asked */
                for (size_t i = 0; i < sizeof(zip_types) / sizeof(zip_types[0]); i++) {
                        check_run(__FILE__, __LINE__, parse_run(zip, zip_len, 200, zip_types[i], false),
                                  0, MUSE_RUN_RESULT, zip, zip_len);
                        check_run(__FILE__, __LINE__, parse_run(zip, zip_len, 200, zip_types[i], true),
                                  0, MUSE_RUN_RESULT, zip, zip_len);
                }
                /* but not over the status */
                CHECK_RUN_ERR(parse_run(zip, zip_len, 404, "application/zip", false), -ENOENT);
                CHECK_RUN_ERR(parse_run(zip, zip_len, 500, "application/zip", false), -EIO);
        }
        free(zip);
        /* an empty archive is its end record alone */
        CHECK_RUN(RUN("PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 200, JSON, true), 0,
                  MUSE_RUN_RESULT, "PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        CHECK_RUN(RUN("PK\3\4", 200, JSON, true), 0, MUSE_RUN_RESULT, "PK\3\4");
        /* twin: "PK" alone is no signature */
        CHECK_RUN_ERR(RUN("PK\3", 200, JSON, true), -EBADMSG);
        /* a text file whose text is JSON stays a file when labelled as text... */
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"x\"}}", 200, "text/plain", true), 0, MUSE_RUN_RESULT,
                  "{\"info\":{\"stdout\":\"x\"}}");
        CHECK_RUN(RUN("{\"error\":\"e\"}", 200, "text/plain", false), 0, MUSE_RUN_RESULT,
                  "{\"error\":\"e\"}");
        /* ...and is JSON when labelled so */
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"x\"}}", 200, JSON, false), 0, MUSE_RUN_STDOUT, "x");
        /* exact bytes, NULs and bad UTF-8 included; an empty file is a file */
        CHECK_RUN(RUN("\xff\0bin\r\n", 200, "text/plain", false), 0, MUSE_RUN_RESULT, "\xff\0bin\r\n");
        CHECK_RUN(RUN("", 200, "text/plain", false), 0, MUSE_RUN_RESULT, "");
        CHECK_RUN(RUN("", 200, NULL, false), 0, MUSE_RUN_RESULT, "");
        /* media types: parameters and case do not matter, +json is JSON */
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"y\"}}", 200, " Application/JSON ;charset=utf-8", false),
                  0, MUSE_RUN_STDOUT, "y");
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"y\"}}", 200, "application/problem+json", false), 0,
                  MUSE_RUN_STDOUT, "y");
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"y\"}}", 200, "application/jsonx", true), 0,
                  MUSE_RUN_RESULT, "{\"info\":{\"stdout\":\"y\"}}");
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"y\"}}", 200, "+json", true), 0, MUSE_RUN_RESULT,
                  "{\"info\":{\"stdout\":\"y\"}}");
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"y\"}}", 200, "", true), 0, MUSE_RUN_RESULT,
                  "{\"info\":{\"stdout\":\"y\"}}");
}

/* todownload: the url of the download, one line */
static void test_run_download(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/muse-run-download.json", &len);
        static char long_url[8192 + 64];
        int n;

        if (body) {
                CHECK_RUN(parse_run(body, len, 200, JSON, true), 0, MUSE_RUN_DOWNLOAD,
                          "http://127.0.0.1:8000/api/download/?key=" DKEY "\n");
                CHECK_RUN(parse_run(body, len, 200, NULL, true), 0, MUSE_RUN_DOWNLOAD,
                          "http://127.0.0.1:8000/api/download/?key=" DKEY "\n");
                /* twin: labelled as a text file, it is one */
                check_run(__FILE__, __LINE__, parse_run(body, len, 200, "text/plain", true), 0,
                          MUSE_RUN_RESULT, body, len);
                free(body);
        }
        CHECK_RUN(RUN("{\"msg\":\"download\",\"url\":\"x\"}", 200, JSON, true), 0, MUSE_RUN_DOWNLOAD,
                  "x\n");
        /* stdout wins when both are there (a stdout reply never has a url) */
        CHECK_RUN(RUN("{\"info\":{\"stdout\":\"s\"},\"url\":\"u\"}", 200, JSON, true), 0,
                  MUSE_RUN_STDOUT, "s");
        /* one line, or nothing */
        CHECK_RUN_ERR(RUN("{\"url\":\"http://a/\\nb\"}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("{\"url\":\"http://a/\\u0000\"}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("{\"url\":\"\\u007f\"}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("{\"url\":\"\"}", 200, JSON, true), -EBADMSG);
        CHECK_RUN_ERR(RUN("{\"url\":\"x\"}", 400, JSON, true), -EIO);
        /* 8192 bytes pass, 8193 do not */
        n = snprintf(long_url, sizeof(long_url), "{\"url\":\"%8192d\"}", 7);
        if (CHECK_INT_EQ(n, 8192 + 10)) {
                struct run_result res = parse_run(long_url, (size_t)n, 200, JSON, true);

                if (CHECK_INT_EQ(res.r, 0))
                        CHECK_INT_EQ(res.out->len, 8193);
                blob_unref(res.out);
        }
        n = snprintf(long_url, sizeof(long_url), "{\"url\":\"%8193d\"}", 7);
        CHECK_RUN_ERR(parse_run(long_url, (size_t)n, 200, JSON, true), -EBADMSG);
}

/* What one GET run adds to a run directory. */
static void test_add_run(void)
{
        static const struct muse_ask ask = { true, false, "result" };
        static const struct muse_ask ask_dl = { true, true, "download_url" };
        struct snap *top = snap_new();
        bool terminal = true;

        if (!CHECK(top))
                return;
        CHECK_INT_EQ(muse_add_run(top, &ask, 0, MUSE_RUN_RESULT, blob_new("PK\5\6", 4), &terminal), 0);
        CHECK_FILE(top, "result", "PK\5\6", 4);
        CHECK(terminal);
        snap_free(top);

        top = snap_new();
        CHECK_INT_EQ(muse_add_run(top, &ask_dl, 0, MUSE_RUN_DOWNLOAD, blob_new("u\n", 2), &terminal), 0);
        CHECK_TEXT(top, "download_url", "u\n");
        CHECK_ABSENT(top, "result");
        CHECK(terminal);
        snap_free(top);

        /* over --max-reply: the file the run asked for, lazy; still final */
        top = snap_new();
        CHECK_INT_EQ(muse_add_run(top, &ask, -EFBIG, MUSE_RUN_RESULT, NULL, &terminal), 0);
        CHECK_LAZY(top, "result");
        CHECK(terminal);
        snap_free(top);
        top = snap_new();
        CHECK_INT_EQ(muse_add_run(top, &ask_dl, -EFBIG, MUSE_RUN_RESULT, NULL, &terminal), 0);
        CHECK_LAZY(top, "download_url");
        CHECK_DIR(top, "", 1);
        snap_free(top);

        /* twin: any other failure adds nothing, and the run is asked again */
        top = snap_new();
        CHECK_INT_EQ(muse_add_run(top, &ask, -EIO, MUSE_RUN_RESULT, NULL, &terminal), 0);
        CHECK(!terminal);
        CHECK_DIR(top, "", 0);
        terminal = true;
        CHECK_INT_EQ(muse_add_run(top, &ask, -ENOENT, MUSE_RUN_RESULT, NULL, &terminal), 0);
        CHECK(!terminal);
        CHECK_DIR(top, "", 0);
        snap_free(top);
}

struct content_result {
        int r;
        struct blob *out;
};

static struct content_result parse_content(const char *body, size_t len, long status)
{
        static struct blob sentinel;
        struct content_result res = { .out = &sentinel };

        res.r = muse_parse_content(body, len, status, &res.out);
        if (res.r < 0) {
                CHECK(res.out == &sentinel);
                res.out = NULL;
        }
        return res;
}
#define CONTENT(lit, status) parse_content((lit), sizeof(lit) - 1, (status))

static void test_content(void)
{
        size_t len = 0;
        char *zip = check_slurp(FIXTURES "/muse-run.zip", &len);
        static char big[70000];
        struct content_result res;

        if (zip) {
                res = parse_content(zip, len, 200);
                if (CHECK_INT_EQ(res.r, 0))
                        CHECK_MEM_EQ(res.out->data, res.out->len, zip, len);
                blob_unref(res.out);
                CHECK_INT_EQ(parse_content(zip, len, 404).r, -ENOENT);
                CHECK_INT_EQ(parse_content(zip, len, 500).r, -EIO);
                free(zip);
        }
        res = CONTENT("PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 200);
        if (CHECK_INT_EQ(res.r, 0))
                CHECK_INT_EQ(res.out->len, 22);
        blob_unref(res.out);
        /* errors come as the error object */
        CHECK_INT_EQ(CONTENT("{\"error\":\"Unknown key\",\"more\":[],\"type\":\"NotFound\"}", 404).r,
                     -ENOENT);
        CHECK_INT_EQ(CONTENT("{\"error\":\"Unknown key\",\"more\":[],\"type\":\"NotFound\"}", 200).r,
                     -ENOENT);
        CHECK_INT_EQ(CONTENT("{\"error\":\"boom\",\"more\":[],\"type\":\"x\"}", 500).r, -EIO);
        CHECK_INT_EQ(CONTENT("", 503).r, -EAGAIN);
        /* a 200 that is no zip is a bad message, however long */
        CHECK_INT_EQ(CONTENT("{}", 200).r, -EBADMSG);
        CHECK_INT_EQ(CONTENT("{\"info\":{\"stdout\":\"9.0\"}}", 200).r, -EBADMSG);
        CHECK_INT_EQ(CONTENT("hello", 200).r, -EBADMSG);
        CHECK_INT_EQ(CONTENT("", 200).r, -EBADMSG);
        CHECK_INT_EQ(CONTENT("PK", 200).r, -EBADMSG);
        memset(big, 'x', sizeof(big));
        CHECK_INT_EQ(parse_content(big, sizeof(big), 200).r, -EBADMSG);
        memcpy(big, "PK\3\4", 4);       /* twin: the same size with a signature */
        res = parse_content(big, sizeof(big), 200);
        if (CHECK_INT_EQ(res.r, 0))
                CHECK_INT_EQ(res.out->len, sizeof(big));
        blob_unref(res.out);
}

static void test_run_file_names(void)
{
        CHECK_STR_EQ(muse_run_file(MUSE_RUN_STDOUT), "stdout");
        CHECK_STR_EQ(muse_run_file(MUSE_RUN_RESULT), "result");
        CHECK_STR_EQ(muse_run_file(MUSE_RUN_DOWNLOAD), "download_url");
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
        test_state_ask();
        test_state_fields();
        test_state_errors();
        test_run_stdout();
        test_run_files();
        test_run_download();
        test_add_run();
        test_content();
        test_run_file_names();
        test_list();
        return CHECK_DONE();
}
