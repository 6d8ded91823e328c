/* Unit tests of the Bacalhau v1 wire format (bacalhau_v1.c, the job
 * directory of bacalhau_v1_job.c) and credentials (bacalhau_auth.c), one
 * section per era of shared/api/bacalhau-v1.md.
 *
 * Fixtures (tests/fixtures/bacalhau-v1-*.json) are the replies of that file:
 * section 10(a), the docs' v1.1 example (pretty-printed, as echo's debug mode
 * sends it), and section 10(b), the v1.8+ replies (compact), plus the error
 * bodies of section 5. Smaller era-specific replies are inline. Expected
 * values are written from those notes (section 4's enum tables, section 3's
 * key spellings), never copied from what the parser printed; every behaviour
 * has a twin that must come out the other way (v1.5.1 vs v1.5.2 numbering,
 * running vs completed exit codes, a 0600 vs 0644 token file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "snapcheck.h"
#include "jobfs/backend.h"
#include "jobfs/bacalhau_auth.h"
#include "jobfs/bacalhau_v1.h"
#include "jobfs/bacalhau_v1_job.h"
#include "jobfs/log.h"

#define JOB_A "j-412c34b4-da77-4a46-886c-76e03615a04e"
#define NODE_A "QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3"
#define JOB_H "j-1efa8fb5-a3ce-4c15-8660-e6c5cd4fe981"
#define NODE_H "n-1af42f75-7b2e-4c41-9c3a-2f0d9b1e6a55"

/* A string literal and its length, NULs included. */
#define LIT(s) (s), (sizeof(s) - 1)

static struct bacalhau_v1_version ver(const char *text)
{
        struct bacalhau_v1_version v = { 0 };

        CHECK_INT_EQ(bacalhau_v1_version_set(text, &v), 0);
        return v;
}

static char *fixture(const char *name, size_t *len)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
        return check_slurp(path, len);
}

/* Builds a job item from a job reply and optional executions and history
 * replies (NULL: none); -errno of the first step that fails. */
static int build(const char *version, const char *key, const char *job, size_t job_len,
                 const char *execs, size_t execs_len, const char *hist, size_t hist_len,
                 struct backend_item *ret)
{
        struct bacalhau_v1_version v = ver(version);
        struct bacalhau_v1_job *j = NULL;
        const char *token;
        size_t n;
        int r = bacalhau_v1_job_new(&v, &j);

        r = r ? r : bacalhau_v1_job_add_job(j, job, job_len);
        if (r == 0 && execs)
                r = bacalhau_v1_job_add_executions(j, execs, execs_len);
        if (r == 0 && hist)
                r = bacalhau_v1_job_add_history(j, hist, hist_len, &n, &token);
        r = r ? r : bacalhau_v1_job_finish(j, key, ret);
        bacalhau_v1_job_free(j);
        return r;
}

static int build_str(const char *version, const char *key, const char *job, const char *execs,
                     struct backend_item *ret)
{
        return build(version, key, job, strlen(job), execs, execs ? strlen(execs) : 0, NULL, 0, ret);
}

/* A v1.2+ job reply around one execution (pretty or not does not matter to json-c). */
#define JOB_REPLY(state, rev, mod) \
        "{\"Job\":{\"ID\":\"j-00000001\",\"Name\":\"n\",\"Namespace\":\"default\",\"Type\":\"batch\"," \
        "\"State\":{\"StateType\":\"" state "\"},\"Version\":0,\"Revision\":" #rev ","           \
        "\"CreateTime\":1740845480101000001,\"ModifyTime\":" #mod "}}"
#define EXECS(items) "{\"NextToken\":\"\",\"Items\":[" items "]}"
#define EXEC(id, state, runoutput)                                                                   \
        "{\"ID\":\"" id "\",\"NodeID\":\"n-1\",\"JobID\":\"j-00000001\",\"DesiredState\":{\"StateType\":1}," \
        "\"ComputeState\":{\"StateType\":" #state "},\"PublishedResult\":{\"Type\":\"\"},"          \
        "\"RunOutput\":" runoutput ",\"Revision\":2,\"CreateTime\":1740845480200000000,"           \
        "\"ModifyTime\":1740845480300000000}"
#define RO_V12(out, code) \
        "{\"Stdout\":\"" out "\",\"StdoutTruncated\":false,\"stderr\":\"\",\"StderrTruncated\":false," \
        "\"ExitCode\":" #code ",\"ErrorMsg\":\"\"}"

/* ---- versions and eras ----------------------------------------------------- */

static void test_versions(void)
{
        struct bacalhau_v1_version v;
        size_t len;
        char *body;

        body = fixture("bacalhau-v1-a-version.json", &len);
        if (body && CHECK_INT_EQ(bacalhau_v1_parse_version(body, len, &v), 0)) {
                CHECK_STR_EQ(v.text, "v1.1.0");         /* the lower-case keys of v1.0.4-v1.1 */
                CHECK_STR_EQ(bacalhau_v1_era(&v), "A");
                CHECK(!v.new_numbers && !v.dev);
        }
        free(body);
        body = fixture("bacalhau-v1-h-version.json", &len);
        if (body && CHECK_INT_EQ(bacalhau_v1_parse_version(body, len, &v), 0)) {
                CHECK_STR_EQ(v.text, "v1.9.3");
                CHECK_STR_EQ(bacalhau_v1_era(&v), "H");
                CHECK(v.new_numbers);
        }
        free(body);
        /* v0.3's POST /version */
        CHECK_INT_EQ(bacalhau_v1_parse_version(LIT("{\"build_version_info\":{\"major\":\"0\","
                                                   "\"minor\":\"3\",\"gitversion\":\"v0.3.16\"}}\n"),
                                               &v), 0);
        CHECK_STR_EQ(v.text, "v0.3.16");
        CHECK_STR_EQ(bacalhau_v1_era(&v), "L");
        /* the era table, each boundary and the release before it */
        {
                static const char *const cases[][2] = {
                        { "v1.0.3", "L" }, { "v1.0.4", "A" }, { "v1.1.9", "A" }, { "v1.2.0", "B" },
                        { "v1.2.1", "B" }, { "v1.2.2", "C" }, { "v1.3.2", "C" }, { "v1.4.0", "D" },
                        { "v1.5.0", "E" }, { "v1.5.1", "E" }, { "v1.5.2", "F" }, { "v1.6.5", "F" },
                        { "v1.7.0", "G" }, { "v1.8.0", "H" }, { "v1.9.3", "H" }, { "v2.0.0", "H" },
                        { "v0.0.0-5aa7ba4", "dev" },
                };

                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        v = ver(cases[i][0]);
                        CHECK_STR_EQ(bacalhau_v1_era(&v), cases[i][1]);
                }
        }
        CHECK(!ver("v1.5.1").new_numbers);
        CHECK(ver("v1.5.2").new_numbers);
        CHECK(ver("v1.5.2-rc1").new_numbers);
        CHECK(ver("v0.0.0-abc").dev && !ver("v0.0.0-abc").new_numbers);
        CHECK(bacalhau_v1_at_least(&(struct bacalhau_v1_version){ .dev = true }, 1, 8, 0));
        /* not versions */
        CHECK_INT_EQ(bacalhau_v1_version_set("1.5", &v), -EINVAL);
        CHECK_INT_EQ(bacalhau_v1_version_set("v1.5.2x", &v), -EINVAL);
        CHECK_INT_EQ(bacalhau_v1_version_set("v1.999999.0", &v), -EINVAL);
        CHECK_INT_EQ(bacalhau_v1_version_set("", &v), -EINVAL);
        CHECK_INT_EQ(bacalhau_v1_parse_version(LIT("{\"GitVersion\":5}"), &v), -EBADMSG);
        CHECK_INT_EQ(bacalhau_v1_parse_version(LIT("404 page not found\n"), &v), -EBADMSG);
        /* a hostile version string is shown sanitised */
        CHECK_INT_EQ(bacalhau_v1_version_set("v1.5.2-\x1b[31m", &v), 0);
        CHECK_STR_EQ(v.text, "v1.5.2-?[31m");
}

/* ---- era A: v1.0.4-v1.1.x (bacalhau-v1.md 10(a)) ------------------------------- */

static void test_era_a(void)
{
        size_t jl, el, hl;
        char *job = fixture("bacalhau-v1-a-job.json", &jl);
        char *ex = fixture("bacalhau-v1-a-executions.json", &el);
        char *hist = fixture("bacalhau-v1-a-history.json", &hl);
        struct backend_item it = { 0 };
        const struct snap *f;

        if (!job || !ex || !hist)
                goto out;
        CHECK(memchr(job, '\n', jl - 1) != NULL);       /* pretty-printed, as echo's debug mode */
        if (!CHECK_INT_EQ(build("v1.1.0", JOB_A, job, jl, ex, el, hist, hl, &it), 0))
                goto out;
        CHECK_TEXT(it.snap, "state", "Completed\n");
        CHECK_TEXT(it.snap, "name", JOB_A "\n");
        CHECK_TEXT(it.snap, "namespace", "default\n");
        CHECK_TEXT(it.snap, "type", "batch\n");
        CHECK_TEXT(it.snap, "message", "");     /* always sent before v1.2, here empty */
        CHECK_TEXT(it.snap, "created", "2023-09-28T07:36:05.101709698Z\n");
        CHECK_TEXT(it.snap, "modified", "2023-09-28T07:36:06.470340241Z\n");
        CHECK_FILE(it.snap, "state.json", job, jl);
        /* the old numbering: 7 is Completed, so the exit code shows */
        CHECK_TEXT(it.snap, NODE_A "/0/state", "Completed\n");
        CHECK_TEXT(it.snap, NODE_A "/0/desired_state", "Stopped\n");
        CHECK_TEXT(it.snap, NODE_A "/0/id", "e-cdd9fb3e-3183-4069-8bc9-679b6bcce4db\n");
        CHECK_TEXT(it.snap, NODE_A "/0/stdout", "hello world\n");      /* lower-case keys */
        CHECK_TEXT(it.snap, NODE_A "/0/stderr", "");
        CHECK_TEXT(it.snap, NODE_A "/0/stdouttruncated", "false\n");
        CHECK_TEXT(it.snap, NODE_A "/0/exitCode", "0\n");
        CHECK_TEXT(it.snap, NODE_A "/0/runnerError", "");
        CHECK_ABSENT(it.snap, NODE_A "/0/result_type");        /* Type "" is no result */
        /* no Event, no Comment before v1.3.1: the type and the state change */
        CHECK_TEXT(it.snap, "history",
                   "2023-09-28T07:23:01.705013731Z\tExecutionLevel\tUndefined -> New\n"
                   "2023-09-28T07:23:01.705013732Z\tExecutionLevel\tNew -> AskForBid\n"
                   "2023-09-28T07:23:01.705013733Z\tExecutionLevel\tAskForBid -> AskForBidAccepted\n"
                   "2023-09-28T07:23:01.705013734Z\tExecutionLevel\tAskForBidAccepted -> AskForBidAccepted\n"
                   "2023-09-28T07:23:01.705013735Z\tExecutionLevel\tAskForBidAccepted -> BidAccepted\n"
                   "2023-09-28T07:23:01.705013736Z\tExecutionLevel\tBidAccepted -> Completed\n");
        CHECK(it.terminal);
        CHECK(it.sig == bacalhau_v1_sig(3, 1695886566470340241LL));
        CHECK(it.name == NULL);         /* opened by its full id */
        f = snap_at(it.snap, "job.json");
        CHECK(f && strstr(f->content->data, "\"ResourcesConfig\"") &&
              f->content->data[f->content->len - 1] == '\n');
        backend_item_clear(&it);
        /* twin: opened by a short id the server resolved, the item names the job */
        if (CHECK_INT_EQ(build("v1.1.0", "j-412c34b4", job, jl, ex, el, hist, hl, &it), 0))
                CHECK_STR_EQ(it.name, JOB_A);
        backend_item_clear(&it);
out:
        free(job);
        free(ex);
        free(hist);
}

/* ---- era B: v1.2.0-v1.2.1, explicit tags, "stderr" still lower-case ------------------ */

static void test_era_b(void)
{
        static const char job[] = JOB_REPLY("Completed", 4, 1740845480987000001);
        static const char execs[] = "{\"NextToken\":\"\",\"Executions\":["
                EXEC("e-1", 7, "{\"Stdout\":\"out\\n\",\"StdoutTruncated\":true,\"stderr\":\"err\\n\","
                     "\"StderrTruncated\":false,\"ExitCode\":3,\"ErrorMsg\":\"oops\"}") "]}";
        struct backend_item it = { 0 };

        if (!CHECK_INT_EQ(build_str("v1.2.0", "j-00000001", job, execs, &it), 0))
                return;
        CHECK_TEXT(it.snap, "n-1/0/stdout", "out\n");
        CHECK_TEXT(it.snap, "n-1/0/stderr", "err\n");
        CHECK_TEXT(it.snap, "n-1/0/stdouttruncated", "true\n");
        CHECK_TEXT(it.snap, "n-1/0/stderrtruncated", "false\n");
        CHECK_TEXT(it.snap, "n-1/0/exitCode", "3\n");           /* non-zero, still Completed */
        CHECK_TEXT(it.snap, "n-1/0/runnerError", "oops\n");     /* ErrorMsg: one name across eras */
        CHECK_TEXT(it.snap, "n-1/0/desired_state", "Running\n");
        CHECK_ABSENT(it.snap, "message");       /* omitempty from v1.2: an absent file */
        CHECK_ABSENT(it.snap, "history");       /* not asked for: no file */
        backend_item_clear(&it);
}

/* ---- era C: v1.2.2-v1.3.x, include=, paging tokens, "Jobs" ---------------------------- */

static void test_era_c(void)
{
        /* a list page as v1.3.2 pretty-prints it, with a token (limit 2, offset 2) */
        static const char page[] =
                "{\n  \"NextToken\": \"Ok46Mjoy\",\n  \"Jobs\": [\n    {\n      \"ID\": \"j-a\",\n"
                "      \"Tasks\": [{\"ID\": \"not-a-job\"}],\n      \"State\": {\"StateType\": \"Running\"},\n"
                "      \"Revision\": 5,\n      \"CreateTime\": 1740845480101000001,\n"
                "      \"ModifyTime\": 1740845480987000001\n    },\n    {\n      \"ID\": \"j-b\",\n"
                "      \"Revision\": 2\n    }\n  ]\n}\n";
        static const char job[] =
                "{\"Job\":{\"ID\":\"j-00000001\",\"State\":{\"StateType\":\"Running\"},\"Revision\":5,"
                "\"ModifyTime\":1740845480987000001},"
                "\"History\":{\"NextToken\":\"\",\"History\":[{\"Type\":\"JobLevel\",\"JobID\":\"j-00000001\","
                "\"JobState\":{\"New\":\"Pending\"},\"NewRevision\":1,\"Comment\":\"Job created\","
                "\"Time\":\"2025-03-01T16:11:20.1Z\"},{\"Type\":\"JobLevel\",\"JobID\":\"j-00000001\","
                "\"JobState\":{\"Previous\":\"Pending\",\"New\":\"Running\"},\"NewRevision\":2,"
                "\"Time\":\"2025-03-01T16:11:21Z\"}]},"
                "\"Executions\":{\"NextToken\":\"\",\"Executions\":[" EXEC("e-1", 5, "null") "]}}";
        struct bacalhau_v1_page p = { 0 };
        struct backend_item it = { 0 };

        if (CHECK_INT_EQ(bacalhau_v1_parse_page(page, sizeof(page) - 1, 100, &p), 0) &&
            CHECK_INT_EQ(p.n, 2)) {
                CHECK_STR_EQ(p.next_token, "Ok46Mjoy");
                CHECK_STR_EQ(p.v[0].name, "j-a");       /* not the task's ID */
                CHECK(p.v[0].sig == bacalhau_v1_sig(5, 1740845480987000001LL));
                CHECK(p.v[0].modify_ns == 1740845480987000001LL);
                CHECK_STR_EQ(p.v[1].name, "j-b");
                CHECK(p.v[1].sig == 0);         /* no ModifyTime: no signature */
        }
        bacalhau_v1_page_clear(&p);
        /* include=executions,history: one reply fills everything */
        if (!CHECK_INT_EQ(build_str("v1.3.2", "j-00000001", job, NULL, &it), 0))
                return;
        CHECK_TEXT(it.snap, "state", "Running\n");
        CHECK(!it.terminal);
        CHECK(it.sig == bacalhau_v1_sig(5, 1740845480987000001LL));     /* == the list's */
        CHECK_TEXT(it.snap, "n-1/0/state", "BidAccepted\n");
        CHECK_ABSENT(it.snap, "n-1/0/stdout");          /* RunOutput null while it runs */
        CHECK_ABSENT(it.snap, "n-1/0/exitCode");
        CHECK_TEXT(it.snap, "history",
                   "2025-03-01T16:11:20.1Z\tJobLevel\tJob created\n"
                   "2025-03-01T16:11:21Z\tJobLevel\tPending -> Running\n");
        backend_item_clear(&it);
}

/* ---- era D: v1.4.0, "Items", Queued, echo's 500 for an unknown job -------------------- */

static void test_era_d(void)
{
        static const char job[] = JOB_REPLY("Queued", 2, 1740845480987000001);
        struct backend_item it = { 0 };
        size_t len;
        char *body;

        if (CHECK_INT_EQ(build_str("v1.4.0", "j-00000001", job, EXECS(""), &it), 0)) {
                CHECK_TEXT(it.snap, "state", "Queued\n");
                CHECK(!it.terminal);
                CHECK_DIR(it.snap, "", 8);      /* no execution, message, history: 8 files */
        }
        backend_item_clear(&it);
        body = fixture("bacalhau-v1-d-error-notfound.json", &len);
        if (body)
                CHECK_INT_EQ(bacalhau_v1_reply_errno(500, body, len), -ENOENT);
        free(body);
        body = fixture("bacalhau-v1-d-error-multiple.json", &len);
        if (body)
                CHECK_INT_EQ(bacalhau_v1_reply_errno(500, body, len), -ENOENT);
        free(body);
        /* twin: another 500 is a server failure */
        CHECK_INT_EQ(bacalhau_v1_reply_errno(500, LIT("{\"error\":\"bolt: database not open\","
                                                  "\"message\":\"Internal Server Error\"}")),
                     -EIO);
}

/* ---- eras E and F: the enum trap at v1.5.2 ---------------------------------------------- */

static void test_enum_trap(void)
{
        static const char job[] = JOB_REPLY("Completed", 4, 1740845480987000001);
        static const char seven[] = EXECS(EXEC("e-1", 7, RO_V12("done\\n", 0)));
        static const char nine[] = EXECS(EXEC("e-1", 9, RO_V12("done\\n", 0)));
        static const char running[] = EXECS(EXEC("e-1", 5, RO_V12("", 0)));
        struct backend_item it = { 0 };

        /* 7: Completed up to v1.5.1 ... */
        if (CHECK_INT_EQ(build_str("v1.5.1", "j-00000001", job, seven, &it), 0)) {
                CHECK_TEXT(it.snap, "n-1/0/state", "Completed\n");
                CHECK_TEXT(it.snap, "n-1/0/exitCode", "0\n");
        }
        backend_item_clear(&it);
        /* ... Publishing from v1.5.2, with no exit code yet */
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001", job, seven, &it), 0)) {
                CHECK_TEXT(it.snap, "n-1/0/state", "Publishing\n");
                CHECK_ABSENT(it.snap, "n-1/0/exitCode");
        }
        backend_item_clear(&it);
        /* 9: Completed from v1.5.2, Cancelled before */
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001", job, nine, &it), 0)) {
                CHECK_TEXT(it.snap, "n-1/0/state", "Completed\n");
                CHECK_TEXT(it.snap, "n-1/0/exitCode", "0\n");
        }
        backend_item_clear(&it);
        if (CHECK_INT_EQ(build_str("v1.5.1", "j-00000001", job, nine, &it), 0)) {
                CHECK_TEXT(it.snap, "n-1/0/state", "Cancelled\n");
                CHECK_ABSENT(it.snap, "n-1/0/exitCode");
        }
        backend_item_clear(&it);
        /* F: RunOutput from the start, ExitCode 0 while running: not an exit code */
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001", job, running, &it), 0)) {
                CHECK_TEXT(it.snap, "n-1/0/state", "BidAccepted\n");
                CHECK_TEXT(it.snap, "n-1/0/stdout", "");
                CHECK_ABSENT(it.snap, "n-1/0/exitCode");
        }
        backend_item_clear(&it);
        /* a number neither numbering has stays a number */
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001", job, EXECS(EXEC("e-1", 42, "null")), &it), 0))
                CHECK_TEXT(it.snap, "n-1/0/state", "42\n");
        backend_item_clear(&it);
        CHECK_STR_EQ(bacalhau_v1_exec_state(&(struct bacalhau_v1_version){ .new_numbers = true }, 11),
                     "Cancelled");
        CHECK(bacalhau_v1_exec_state(&(struct bacalhau_v1_version){ .new_numbers = false }, 11) == NULL);
}

static void test_era_e_errors(void)
{
        size_t len;
        char *body = fixture("bacalhau-v1-e-error-notfound.json", &len);

        if (body)
                CHECK_INT_EQ(bacalhau_v1_reply_errno(404, body, len), -ENOENT);
        free(body);
        body = fixture("bacalhau-v1-e-error-multiple.json", &len);
        if (body)       /* 500, but Code MultipleJobsFound: an ambiguous prefix */
                CHECK_INT_EQ(bacalhau_v1_reply_errno(500, body, len), -ENOENT);
        free(body);
        body = fixture("bacalhau-v1-e-legacy-410.json", &len);
        if (body)       /* the legacy endpoint, 410 Gone in v1.5-v1.6 */
                CHECK_INT_EQ(bacalhau_v1_reply_errno(410, body, len), -ENOENT);
        free(body);
        /* executions of an unknown full id, v1.5-v1.7 */
        CHECK_INT_EQ(bacalhau_v1_reply_errno(404, LIT("{\"Status\":404,\"Message\":\"bucket not found\","
                                                  "\"Code\":\"BoltDBBucketNotFound\"}")), -ENOENT);
        CHECK_INT_EQ(bacalhau_v1_reply_errno(503, LIT("Server Timeout!")), -EAGAIN);
        CHECK_INT_EQ(bacalhau_v1_reply_errno(400, LIT("{\"Status\":400,\"Code\":\"BadRequest\"}")), -EIO);
}

/* ---- era G: v1.7.0 sends auth failures as 500 ---------------------------------------------- */

static void test_era_g_auth(void)
{
        size_t len;
        char *body = fixture("bacalhau-v1-g-error-auth500.json", &len);

        if (body)
                CHECK_INT_EQ(bacalhau_v1_reply_errno(500, body, len), -EACCES);
        free(body);
        CHECK_INT_EQ(bacalhau_v1_reply_errno(500, LIT("{\"Status\":500,\"Message\":\"authentication failed: "
                                                  "invalid API key\",\"Code\":\"InternalError\"}")),
                     -EACCES);
        /* twin: an ordinary internal error stays EIO */
        CHECK_INT_EQ(bacalhau_v1_reply_errno(500, LIT("{\"Status\":500,\"Message\":\"Internal server error\","
                                                  "\"Code\":\"InternalError\"}")), -EIO);
        body = fixture("bacalhau-v1-h-error-401.json", &len);
        if (body)
                CHECK_INT_EQ(bacalhau_v1_reply_errno(401, body, len), -EACCES);
        free(body);
        CHECK_INT_EQ(bacalhau_v1_reply_errno(403, LIT("")), -EACCES);
}

/* ---- era H: v1.8+ (bacalhau-v1.md 10(b)) --------------------------------------------------- */

static void test_era_h(void)
{
        size_t jl, ll, el, hl;
        char *job = fixture("bacalhau-v1-h-job.json", &jl);
        char *list = fixture("bacalhau-v1-h-list.json", &ll);
        char *ex = fixture("bacalhau-v1-h-executions.json", &el);
        char *hist = fixture("bacalhau-v1-h-history.json", &hl);
        struct bacalhau_v1_page p = { 0 };
        struct backend_item it = { 0 };
        uint64_t list_sig = 0;

        if (!job || !list || !ex || !hist)
                goto out;
        CHECK(memchr(job, '\n', jl - 1) == NULL);       /* compact from v1.5 */
        if (CHECK_INT_EQ(bacalhau_v1_parse_page(list, ll, 100, &p), 0) && CHECK_INT_EQ(p.n, 1)) {
                CHECK_STR_EQ(p.v[0].name, JOB_H);
                CHECK_STR_EQ(p.next_token, "Ok46MTox");
                list_sig = p.v[0].sig;
        }
        bacalhau_v1_page_clear(&p);
        /* opened by its name (v1.8+ looks names up first): the item names the job */
        if (!CHECK_INT_EQ(build("v1.9.3", "hello-bacalhau", job, jl, NULL, 0, NULL, 0, &it), 0))
                goto out;
        CHECK_STR_EQ(it.name, JOB_H);
        CHECK(it.sig != 0 && it.sig == list_sig);       /* the change feed's promise */
        CHECK_TEXT(it.snap, "name", "hello-bacalhau\n");
        CHECK_TEXT(it.snap, "modified", "2025-03-01T16:11:20.987000001Z\n");
        /* two executions on one node: 0 is the newer (CreateTime ...300 > ...200) */
        CHECK_DIR(it.snap, NODE_H, 2);
        CHECK_TEXT(it.snap, NODE_H "/0/id", "e-5f62dd5d-0c1e-4b7a-8d2f-3e4a5b6c7d8e\n");
        CHECK_TEXT(it.snap, NODE_H "/0/state", "Completed\n");         /* 9, new numbering */
        CHECK_TEXT(it.snap, NODE_H "/0/exitCode", "1\n");
        CHECK_TEXT(it.snap, NODE_H "/0/stderr", "boom\n");
        CHECK_TEXT(it.snap, NODE_H "/0/message", "Running\n");         /* stale, as the server has it */
        CHECK_TEXT(it.snap, NODE_H "/0/result_type", "urlDownload\n");
        CHECK_TEXT(it.snap, NODE_H "/0/URL",
                   "http://127.0.0.1:6001/e-5f62dd5d-0c1e-4b7a-8d2f-3e4a5b6c7d8e.tar.gz\n");
        CHECK_TEXT(it.snap, NODE_H "/1/id", "e-0a1b2c3d-0000-4000-8000-000000000000\n");
        CHECK_TEXT(it.snap, NODE_H "/1/state", "Failed\n");
        CHECK_TEXT(it.snap, NODE_H "/1/message", "<runner error text>\n");
        CHECK_ABSENT(it.snap, NODE_H "/1/exitCode");   /* ExitCode 0 of a failed one */
        CHECK_ABSENT(it.snap, NODE_H "/1/result_type");
        CHECK_TEXT(it.snap, "history",
                   "2025-03-01T16:11:20.102Z\tSubmission\tJob submitted\n"
                   "2025-03-01T16:11:20.103Z\tScheduling\tRequested execution on n-1af42f75\n"
                   "2025-03-01T16:11:20.104Z\tState Update\tRunning\n"
                   "2025-03-01T16:11:20.105Z\tExecution\tRunning\n"
                   "2025-03-01T16:11:20.106Z\tExecution\tCompleted successfully\n"
                   "2025-03-01T16:11:20.107Z\tState Update\tCompleted\n");
        backend_item_clear(&it);
        /* the same job from separate executions and history replies: the same tree */
        if (CHECK_INT_EQ(build("v1.9.3", JOB_H, job, jl, ex, el, hist, hl, &it), 0)) {
                CHECK(it.name == NULL);
                CHECK_DIR(it.snap, NODE_H, 2);
                CHECK_TEXT(it.snap, NODE_H "/1/state", "Failed\n");
        }
        backend_item_clear(&it);
out:
        free(job);
        free(list);
        free(ex);
        free(hist);
}

/* ---- int64 nanoseconds above 2^53 ---------------------------------------------------------- */

static void test_nanoseconds(void)
{
        /* 1740845480987000001 as a double is 1740845480987000064: the last
         * digits show whether anything went through a double */
        static const char page[] = "{\"NextToken\":\"\",\"Items\":[{\"ID\":\"j-1\",\"Revision\":1,"
                                   "\"ModifyTime\":1740845480987000001},{\"ID\":\"j-2\",\"Revision\":1,"
                                   "\"ModifyTime\":1740845480987000064},{\"ID\":\"j-3\",\"Revision\":1,"
                                   "\"ModifyTime\":1.740845480987e18},{\"ID\":\"j-4\",\"Revision\":1,"
                                   "\"ModifyTime\":99999999999999999999}]}";
        struct bacalhau_v1_page p = { 0 };
        struct backend_item it = { 0 };

        if (CHECK_INT_EQ(bacalhau_v1_parse_page(page, sizeof(page) - 1, 100, &p), 0) &&
            CHECK_INT_EQ(p.n, 4)) {
                CHECK(p.v[0].modify_ns == 1740845480987000001LL);
                CHECK(p.v[1].modify_ns == 1740845480987000064LL);
                CHECK(p.v[0].sig != p.v[1].sig);        /* 63 ns apart: another state */
                CHECK(p.v[2].sig == 0 && p.v[3].sig == 0);      /* a float, an overflow */
        }
        bacalhau_v1_page_clear(&p);
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001",
                                   JOB_REPLY("Running", 1, 1740845480987000001), NULL, &it), 0)) {
                CHECK_TEXT(it.snap, "modified", "2025-03-01T16:11:20.987000001Z\n");
                CHECK_TEXT(it.snap, "created", "2025-03-01T16:11:20.101000001Z\n");
                CHECK(it.sig == bacalhau_v1_sig(1, 1740845480987000001LL));
                CHECK(it.sig != bacalhau_v1_sig(1, 1740845480987000064LL));
        }
        backend_item_clear(&it);
        /* before 1970, a float, an absurd year: absent or exact, never a crash */
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001",
                                   "{\"Job\":{\"ID\":\"j-00000001\",\"CreateTime\":-1,"
                                   "\"ModifyTime\":1.7e18}}", NULL, &it), 0)) {
                CHECK_TEXT(it.snap, "created", "1969-12-31T23:59:59.999999999Z\n");
                CHECK_ABSENT(it.snap, "modified");
                CHECK(it.sig == 0);
        }
        backend_item_clear(&it);
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001",
                                   "{\"Job\":{\"ID\":\"j-00000001\",\"CreateTime\":9223372036854775807}}",
                                   NULL, &it), 0))
                CHECK_TEXT(it.snap, "created", "2262-04-11T23:47:16.854775807Z\n");   /* int64's end */
        backend_item_clear(&it);
}

/* ---- paging: list tokens, history pages ------------------------------------------------------ */

static void test_paging(void)
{
        static const char job[] = JOB_REPLY("Running", 1, 1);
        static const char page1[] = "{\"NextToken\":\"Ok46MTAwMDoxMDAx\",\"Items\":["
                                    "{\"Type\":\"JobLevel\",\"Event\":{\"Topic\":\"A\",\"Message\":\"one\"},"
                                    "\"Time\":\"t1\"}]}";
        static const char page2[] = "{\"NextToken\":\"\",\"Items\":[{\"Type\":\"JobLevel\",\"Event\":"
                                    "{\"Topic\":\"B\",\"Message\":\"two\\tlines\\nhere\"},\"Time\":\"t2\"}]}";
        struct bacalhau_v1_version v = ver("v1.5.2");
        struct bacalhau_v1_page p = { 0 };
        struct backend_item it = { 0 };
        struct bacalhau_v1_job *j = NULL;
        const char *token = NULL;
        size_t n = 0;

        /* list: no token on the last page; a null list is an empty one; a page cap */
        CHECK_INT_EQ(bacalhau_v1_parse_page(LIT("{\"NextToken\":\"\",\"Items\":null}"), 10, &p), 0);
        CHECK(p.n == 0 && p.next_token == NULL);
        bacalhau_v1_page_clear(&p);
        CHECK_INT_EQ(bacalhau_v1_parse_page(LIT("{\"Items\":[{\"ID\":\"a\"},{\"ID\":\"b\"},{\"ID\":\"c\"}]}"), 2, &p), 0);
        CHECK_INT_EQ(p.n, 2);
        bacalhau_v1_page_clear(&p);
        /* not a list reply */
        CHECK_INT_EQ(bacalhau_v1_parse_page(LIT("{\"NextToken\":\"\"}"), 10, &p), -EBADMSG);
        CHECK_INT_EQ(bacalhau_v1_parse_page(LIT("{\"Items\":{}}"), 10, &p), -EBADMSG);
        CHECK_INT_EQ(bacalhau_v1_parse_page(LIT("{\"Items\":["), 10, &p), -EBADMSG);
        CHECK(p.v == NULL && p.n == 0);
        /* unsafe ids are left out */
        CHECK_INT_EQ(bacalhau_v1_parse_page(LIT("{\"Items\":[{\"ID\":\"..\"},{\"ID\":\"a/b\"},{\"ID\":\"ok\"}]}"), 10, &p), 0);
        if (CHECK_INT_EQ(p.n, 1))
                CHECK_STR_EQ(p.v[0].name, "ok");
        bacalhau_v1_page_clear(&p);

        /* history pages replace include=history's first 100, in order */
        if (!CHECK_INT_EQ(bacalhau_v1_job_new(&v, &j), 0))
                return;
        CHECK_INT_EQ(bacalhau_v1_job_add_job(j, LIT("{\"Job\":{\"ID\":\"j-1\"},\"History\":"
                                                    "{\"Items\":[{\"Time\":\"t0\"}]}}")), 0);
        CHECK_INT_EQ(bacalhau_v1_job_history_items(j), 1);
        CHECK_STR_EQ(bacalhau_v1_job_id(j), "j-1");
        CHECK_INT_EQ(bacalhau_v1_job_add_history(j, page1, sizeof(page1) - 1, &n, &token), 0);
        CHECK_INT_EQ(n, 1);
        CHECK_STR_EQ(token, "Ok46MTAwMDoxMDAx");
        CHECK_INT_EQ(bacalhau_v1_job_add_history(j, page2, sizeof(page2) - 1, &n, &token), 0);
        CHECK(n == 1 && token == NULL);
        CHECK_INT_EQ(bacalhau_v1_job_history_items(j), 2);
        CHECK_INT_EQ(bacalhau_v1_job_add_history(j, LIT("{\"Jobs\":[]}"), &n, &token), -EBADMSG);
        if (CHECK_INT_EQ(bacalhau_v1_job_finish(j, "j-1", &it), 0))
                CHECK_TEXT(it.snap, "history", "t1\tA\tone\nt2\tB\ttwo lines here\n");
        backend_item_clear(&it);
        bacalhau_v1_job_free(j);
        (void)job;
}

/* ---- hostile replies ---------------------------------------------------------------------------- */

static void test_hostile(void)
{
        static const char job[] = JOB_REPLY("Completed", 1, 1);
        static const char cut[] = EXECS(
                "{\"ID\":\"e-2\",\"NodeID\":\"n-\\u0000x\",\"ComputeState\":{\"StateType\":9}},"
                "{\"ID\":\"e-5\",\"NodeID\":\"n-ok\",\"PublishedResult\":{\"Type\":\"s3\","
                "\"Params\":{\"Bucket\\u0000x\":\"b\"}}}");
        static const char execs[] = EXECS(
                "{\"ID\":\"e-1\",\"NodeID\":\"state\",\"ComputeState\":{\"StateType\":9}},"
                "{\"ID\":\"e-3\",\"NodeID\":\"..\"},{\"ID\":\"e-4\"},5,null,"
                "{\"ID\":\"e-5\",\"NodeID\":\"n-ok\",\"ComputeState\":{\"StateType\":\"Completed\"},"
                "\"PublishedResult\":{\"Type\":\"s3\",\"Params\":{\"Bucket\":\"b\",\"state\":\"x\","
                "\"a/b\":\"y\",\"Nested\":{\"k\":1},\"Region\":7}},"
                "\"RunOutput\":{\"Stdout\":5,\"stderr\":\"e\",\"ExitCode\":\"zero\"}}");
        struct backend_item it = { 0 };

        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001", job, execs, &it), 0)) {
                CHECK_TEXT(it.snap, "state", "Completed\n");    /* the job's, not a node's */
                CHECK_DIR(it.snap, "", 9);      /* 8 job files + n-ok */
                CHECK_TEXT(it.snap, "n-ok/0/state", "Completed\n");
                CHECK_TEXT(it.snap, "n-ok/0/Bucket", "b\n");
                CHECK_TEXT(it.snap, "n-ok/0/Region", "7\n");
                CHECK_TEXT(it.snap, "n-ok/0/state", "Completed\n");     /* not the param */
                CHECK_ABSENT(it.snap, "n-ok/0/Nested");
                CHECK_ABSENT(it.snap, "n-ok/0/stdout");         /* a number: left out */
                CHECK_TEXT(it.snap, "n-ok/0/stderr", "e");
                CHECK_TEXT(it.snap, "n-ok/0/exitCode", "zero\n");
        }
        backend_item_clear(&it);
        /* a key or a node id holding a NUL (json-c would cut it): left out */
        if (CHECK_INT_EQ(build_str("v1.5.2", "j-00000001", job, cut, &it), 0)) {
                CHECK_ABSENT(it.snap, "n-");
                CHECK_TEXT(it.snap, "n-ok/0/result_type", "s3\n");
                CHECK_DIR(it.snap, "n-ok/0", 2);        /* id, result_type: no Bucket */
        }
        backend_item_clear(&it);
        /* not a job reply */
        CHECK_INT_EQ(build_str("v1.5.2", "x", "{\"Job\":{}}", NULL, &it), -EBADMSG);
        CHECK_INT_EQ(build_str("v1.5.2", "x", "{\"Job\":{\"ID\":\"\"}}", NULL, &it), -EBADMSG);
        CHECK_INT_EQ(build_str("v1.5.2", "x", "[1]", NULL, &it), -EBADMSG);
        CHECK_INT_EQ(build_str("v1.5.2", "x", job, "{\"Items\":5}", &it), -EBADMSG);
        CHECK(it.snap == NULL && it.name == NULL && it.sig == 0);
}

/* ---- credentials ---------------------------------------------------------------------------------- */

static void test_auth_headers(void)
{
        struct bacalhau_auth a = { 0 };

        CHECK_INT_EQ(bacalhau_auth_from(NULL, NULL, NULL, NULL, &a), 0);
        CHECK(a.header == NULL);
        CHECK_STR_EQ(a.kind, "none");
        CHECK_INT_EQ(bacalhau_auth_from("k-123", NULL, NULL, NULL, &a), 0);
        CHECK_STR_EQ(a.header, "Authorization: Bearer k-123");
        CHECK_STR_EQ(a.kind, "api-key");
        bacalhau_auth_clear(&a);
        /* RFC 7617's example pair, and a UTF-8 one */
        CHECK_INT_EQ(bacalhau_auth_from(NULL, "Aladdin", "open sesame", NULL, &a), 0);
        CHECK_STR_EQ(a.header, "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        CHECK_STR_EQ(a.kind, "basic");
        bacalhau_auth_clear(&a);
        CHECK_INT_EQ(bacalhau_auth_from(NULL, "u", "p:\xc3\xa9", NULL, &a), 0);
        CHECK_STR_EQ(a.header, "Authorization: Basic dTpwOsOp");
        bacalhau_auth_clear(&a);
        CHECK(a.header == NULL);
        /* refused: both kinds, half a pair, header injection */
        a.header = (char *)"untouched";
        CHECK_INT_EQ(bacalhau_auth_from("k", "u", "p", NULL, &a), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_from(NULL, "u", NULL, NULL, &a), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_from(NULL, NULL, "p", NULL, &a), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_from("k\r\nX-Evil: 1", NULL, NULL, NULL, &a), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_from("k k", NULL, NULL, NULL, &a), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_from(NULL, "u:v", "p", NULL, &a), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_from(NULL, "u", "p\n", NULL, &a), -EINVAL);
        CHECK_STR_EQ(a.header, "untouched");
        a.header = NULL;
        /* the environment, as the bacalhau CLI reads it */
        setenv("BACALHAU_API_KEY", "env-key", 1);
        CHECK_INT_EQ(bacalhau_auth_load(NULL, &a), 0);
        CHECK_STR_EQ(a.header, "Authorization: Bearer env-key");
        bacalhau_auth_clear(&a);
        setenv("BACALHAU_API_USERNAME", "u", 1);
        setenv("BACALHAU_API_PASSWORD", "p", 1);
        CHECK_INT_EQ(bacalhau_auth_load(NULL, &a), -EINVAL);    /* both kinds */
        unsetenv("BACALHAU_API_KEY");
        CHECK_INT_EQ(bacalhau_auth_load(NULL, &a), 0);
        CHECK_STR_EQ(a.header, "Authorization: Basic dTpw");
        bacalhau_auth_clear(&a);
        unsetenv("BACALHAU_API_USERNAME");
        unsetenv("BACALHAU_API_PASSWORD");
        setenv("BACALHAU_API_KEY", "", 1);      /* empty is unset */
        CHECK_INT_EQ(bacalhau_auth_load(NULL, &a), 0);
        CHECK(a.header == NULL);
        unsetenv("BACALHAU_API_KEY");
}

static int write_file(const char *path, const char *text, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = write(fd, text, strlen(text));
        close(fd);
        if (n != (ssize_t)strlen(text))
                return -EIO;
        return chmod(path, mode) < 0 ? -errno : 0;
}

static void test_token_file(void)
{
        char dir[] = "/tmp/jobfs-test-token-XXXXXX", path[64], sub[64];
        struct bacalhau_auth a = { 0 };
        char *token = NULL;

        if (!CHECK(mkdtemp(dir) != NULL))
                return;
        snprintf(path, sizeof(path), "%s/token", dir);
        snprintf(sub, sizeof(sub), "%s/d", dir);
        /* 0600: read, first line only, trailing blanks cut */
        CHECK_INT_EQ(write_file(path, "eyJhbGciOi.x.y  \nsecond line\n", 0600), 0);
        if (CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), 0))
                CHECK_STR_EQ(token, "eyJhbGciOi.x.y");
        bacalhau_auth_wipe_free(token);
        token = NULL;
        /* the file wins over the environment */
        setenv("BACALHAU_API_KEY", "env-key", 1);
        CHECK_INT_EQ(bacalhau_auth_load(path, &a), 0);
        CHECK_STR_EQ(a.header, "Authorization: Bearer eyJhbGciOi.x.y");
        CHECK_STR_EQ(a.kind, "token-file");
        bacalhau_auth_clear(&a);
        unsetenv("BACALHAU_API_KEY");
        /* twins: readable by others, by the group, writable by the group */
        CHECK_INT_EQ(chmod(path, 0644), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), -EPERM);
        CHECK_INT_EQ(bacalhau_auth_load(path, &a), -EPERM);
        CHECK(a.header == NULL);
        CHECK_INT_EQ(chmod(path, 0640), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), -EPERM);
        CHECK_INT_EQ(chmod(path, 0620), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), -EPERM);
        CHECK_INT_EQ(chmod(path, 0400), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), 0);
        bacalhau_auth_wipe_free(token);
        token = NULL;
        /* empty, blank first line, not a file, missing */
        CHECK_INT_EQ(write_file(path, "", 0600), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), -EINVAL);
        CHECK_INT_EQ(write_file(path, "\ntoken\n", 0600), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(path, &token), -EINVAL);
        CHECK_INT_EQ(mkdir(sub, 0700), 0);
        CHECK_INT_EQ(bacalhau_auth_read_token_file(sub, &token), -EINVAL);
        CHECK_INT_EQ(bacalhau_auth_read_token_file("/nonexistent/jobfs-token", &token), -ENOENT);
        CHECK(token == NULL);
        rmdir(sub);
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        log_max_level = LOG_LVL_ERROR;
        test_versions();
        test_era_a();
        test_era_b();
        test_era_c();
        test_era_d();
        test_enum_trap();
        test_era_e_errors();
        test_era_g_auth();
        test_era_h();
        test_nanoseconds();
        test_paging();
        test_hostile();
        test_auth_headers();
        test_token_file();
        return CHECK_DONE();
}
