/* Unit tests of the Bacalhau parsers (bacalhau.c): the seed reply as the Go
 * server sends it (tests/fixtures/bacalhau-seed.json: compact, sorted map
 * keys, Go struct field order, trailing "\n"), the job summary, the E4
 * shape, wrong types field by field, hostile names, broken JSON, and the
 * three list shapes. Expected values come from the seed and api/bacalhau.md,
 * not from what the parser printed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "snapcheck.h"
#include "jobfs/backend.h"
#include "jobfs/bacalhau.h"
#include "jobfs/log.h"

#define NODE_A "QmSyJ8VUd4YSPwZFJSJsHmmmmg7sd4BAc2yHY73nisJo86"   /* Cancelled */
#define NODE_B "QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3"   /* Cancelled */
#define NODE_C "QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL"   /* Completed */
#define JOB_ID "9304c616-291f-41ad-b862-54e133c0149e"

/* A RunOutput as the Go encoder writes it (all six fields, no omitempty). */
#define RUN_OUTPUT(out, err, code) \
        "\"RunOutput\":{\"stdout\":\"" out "\",\"stdouttruncated\":false,\"stderr\":\"" err \
        "\",\"stderrtruncated\":false,\"exitCode\":" #code ",\"runnerError\":\"\"}"

/* bacalhau_parse_states, its item unpacked; outputs untouched on failure */
static int parse_states(const char *json, size_t len, struct snap **ret, bool *ret_terminal)
{
        struct backend_item it = { 0 };
        int r = bacalhau_parse_states(json, len, &it);

        if (r < 0) {
                CHECK(it.snap == NULL && it.sig == 0);
                return r;
        }
        CHECK(it.sig != 0);     /* a parsed reply has a change signature */
        *ret = it.snap;
        *ret_terminal = it.terminal;
        it.snap = NULL;
        backend_item_clear(&it);
        return 0;
}

static int parse(const char *json, struct snap **ret, bool *ret_terminal)
{
        return parse_states(json, strlen(json), ret, ret_terminal);
}

/* Parses json, expecting failure r, and checks the outputs were not touched. */
#define CHECK_PARSE_FAILS(json, len, r) check_parse_fails(__FILE__, __LINE__, (json), (len), (r))
/* the same over a literal, NULs included */
#define CHECK_BAD(lit, r) CHECK_PARSE_FAILS((lit), sizeof(lit) - 1, (r))
static bool check_parse_fails(const char *file, int line, const char *json, size_t len, int want)
{
        struct snap sentinel, *s = &sentinel;
        bool terminal = true;
        int r = parse_states(json, len, &s, &terminal);
        bool ok = check_int(file, line, "parse_states(...)", "want", r, want);

        if (r == 0)
                snap_free(s);
        else
                ok = check_bool(file, line, "outputs untouched on failure", s == &sentinel && terminal) && ok;
        return ok;
}

static void test_seed(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/bacalhau-seed.json", &len);
        struct snap *s = NULL;
        bool terminal = false;

        if (!body)
                return;
        /* the fixture is the Go encoder's output: one line, "\n" at the end */
        CHECK(len > 2 && body[len - 1] == '\n' && body[len - 2] == '}');
        CHECK(memchr(body, '\n', len - 1) == NULL);
        if (!CHECK_INT_EQ(parse_states(body, len, &s, &terminal), 0)) {
                free(body);
                return;
        }
        CHECK(terminal);
        /* top: 3 node dirs, the job summary and the reply as received */
        CHECK_DIR(s, "", 5);
        CHECK_TEXT(s, "state", "Completed\n");
        CHECK_FILE(s, "state.json", body, len);

        /* the two losing bidders: only a state, no RunOutput files */
        CHECK_DIR(s, NODE_A, 1);
        CHECK_DIR(s, NODE_A "/0", 1);
        CHECK_TEXT(s, NODE_A "/0/state", "Cancelled\n");
        CHECK_ABSENT(s, NODE_A "/0/status");
        CHECK_ABSENT(s, NODE_A "/0/stdout");
        CHECK_ABSENT(s, NODE_A "/0/stderr");
        CHECK_ABSENT(s, NODE_A "/0/exitCode");
        CHECK_ABSENT(s, NODE_A "/0/CID");
        CHECK_ABSENT(s, NODE_A "/0/Complete");
        CHECK_DIR(s, NODE_B, 1);
        CHECK_DIR(s, NODE_B "/0", 1);
        CHECK_TEXT(s, NODE_B "/0/state", "Cancelled\n");
        CHECK_ABSENT(s, NODE_B "/0/stdout");
        CHECK_ABSENT(s, NODE_B "/0/Result");

        /* the winner: every field the server sent, nothing else */
        CHECK_DIR(s, NODE_C, 1);
        CHECK_DIR(s, NODE_C "/0", 13);
        CHECK_TEXT(s, NODE_C "/0/state", "Completed\n");
        CHECK_TEXT(s, NODE_C "/0/status", "Got results proposal of length: 0\n");
        CHECK_FILE(s, NODE_C "/0/stdout", "Thu Nov 17 13:32:55 UTC 2022\n", 29);
        CHECK_FILE(s, NODE_C "/0/stderr", "", 0);
        CHECK_TEXT(s, NODE_C "/0/exitCode", "0\n");
        CHECK_FILE(s, NODE_C "/0/runnerError", "", 0);
        CHECK_TEXT(s, NODE_C "/0/stdouttruncated", "false\n");
        CHECK_TEXT(s, NODE_C "/0/stderrtruncated", "false\n");
        CHECK_TEXT(s, NODE_C "/0/StorageSource", "IPFS\n");
        CHECK_TEXT(s, NODE_C "/0/Name", "job-" JOB_ID "-shard-0-host-" NODE_C "\n");
        CHECK_TEXT(s, NODE_C "/0/CID", "QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe\n");
        CHECK_TEXT(s, NODE_C "/0/Complete", "true\n");
        CHECK_TEXT(s, NODE_C "/0/Result", "true\n");
        /* fields the server left out are absent files */
        CHECK_ABSENT(s, NODE_C "/0/URL");
        CHECK_ABSENT(s, NODE_C "/0/SourcePath");
        CHECK_ABSENT(s, NODE_C "/0/path");
        CHECK_ABSENT(s, NODE_C "/0/VerificationProposal");
        CHECK_ABSENT(s, NODE_C "/1");
        snap_free(s);

        /* the same reply without Go's trailing newline is as good */
        s = NULL;
        CHECK_INT_EQ(parse_states(body, len - 1, &s, &terminal), 0);
        CHECK_FILE(s, "state.json", body, len - 1);
        snap_free(s);
        free(body);
}

static void test_running(void)
{
        static const char running[] =
                "{\"state\":{\"Nodes\":{\"QmRunner1111111111111111111111111111111111111a\":{\"Shards\":{\"0\":"
                "{\"NodeId\":\"QmRunner1111111111111111111111111111111111111a\",\"State\":\"Running\","
                "\"VerificationResult\":{},\"PublishedResults\":{}," RUN_OUTPUT("step 1\\n", "", 0)
                "}}}}}}\n";
        struct snap *s = NULL;
        bool terminal = true;

        if (!CHECK_INT_EQ(parse(running, &s, &terminal), 0))
                return;
        CHECK(!terminal);
        CHECK_TEXT(s, "state", "Running\n");
        CHECK_TEXT(s, "QmRunner1111111111111111111111111111111111111a/0/state", "Running\n");
        CHECK_FILE(s, "QmRunner1111111111111111111111111111111111111a/0/stdout", "step 1\n", 7);
        CHECK_FILE(s, "state.json", running, strlen(running));
        snap_free(s);

        /* a known job with no state yet: no summary, not final */
        s = NULL;
        terminal = true;
        if (!CHECK_INT_EQ(parse("{\"state\":{}}\n", &s, &terminal), 0))
                return;
        CHECK(!terminal);
        CHECK_DIR(s, "", 1);
        CHECK_ABSENT(s, "state");
        CHECK_TEXT(s, "state.json", "{\"state\":{}}\n");
        snap_free(s);

        /* Nodes present but empty: the same */
        s = NULL;
        terminal = true;
        CHECK_INT_EQ(parse("{\"state\":{\"Nodes\":{}}}", &s, &terminal), 0);
        CHECK(!terminal);
        CHECK_ABSENT(s, "state");
        snap_free(s);
}

/* The summary: the first of Running, Verifying, Waiting, Bidding, Completed,
 * Error, Cancelled that any shard is in; final when every shard is. */
static void test_summary(void)
{
        static const struct {
                const char *states[8];  /* one shard per node; "" = no State */
                const char *want;       /* NULL = no summary file */
                bool terminal;
        } cases[] = {
                { { "Completed", "Cancelled", "Cancelled" }, "Completed", true },
                { { "Cancelled", "Cancelled", "Completed" }, "Completed", true },
                { { "Running", "Cancelled" }, "Running", false },
                { { "Cancelled", "Running" }, "Running", false },
                { { "Completed", "Verifying" }, "Verifying", false },
                { { "Bidding", "Waiting" }, "Waiting", false },
                { { "Bidding" }, "Bidding", false },
                { { "Error", "Cancelled" }, "Error", true },
                { { "Error", "Completed" }, "Completed", true },
                { { "Cancelled" }, "Cancelled", true },
                { { "Cancelled", "Error", "Completed", "Bidding", "Waiting", "Verifying", "Running" },
                  "Running", false },
                { { "Cancelled", "Sleeping" }, "Cancelled", false },
                { { "Sleeping" }, NULL, false },
                { { "" }, NULL, false },
                { { "", "Completed" }, "Completed", false },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char json[2048];
                size_t n = 0;
                struct snap *s = NULL;
                bool terminal = !cases[i].terminal;

                n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"state\":{\"Nodes\":{");
                for (int j = 0; cases[i].states[j]; j++) {
                        const char *st = cases[i].states[j];

                        n += (size_t)snprintf(json + n, sizeof(json) - n,
                                              "%s\"QmNode%d\":{\"Shards\":{\"0\":{\"NodeId\":\"QmNode%d\"%s%s%s,"
                                              "\"VerificationResult\":{},\"PublishedResults\":{}}}}",
                                              j ? "," : "", j, j, *st ? ",\"State\":\"" : "", st,
                                              *st ? "\"" : "");
                }
                n += (size_t)snprintf(json + n, sizeof(json) - n, "}}}\n");
                if (!CHECK(n < sizeof(json)))
                        continue;
                if (!CHECK_INT_EQ(parse(json, &s, &terminal), 0)) {
                        fprintf(stderr, "    case %zu: %s", i, json);
                        continue;
                }
                if (cases[i].want) {
                        char line[32];

                        snprintf(line, sizeof(line), "%s\n", cases[i].want);
                        if (!CHECK_TEXT(s, "state", line))
                                fprintf(stderr, "    case %zu: %s", i, json);
                } else if (!CHECK_ABSENT(s, "state")) {
                        fprintf(stderr, "    case %zu: %s", i, json);
                }
                if (!CHECK_INT_EQ(terminal, cases[i].terminal))
                        fprintf(stderr, "    case %zu: %s", i, json);
                snap_free(s);
        }
}

/* E4 (v0.3.24+): Executions and a job-level State, which wins. */
static void test_e4(void)
{
        static const char e4_fmt[] =
                "{\"state\":{\"JobID\":\"j-4\",\"Executions\":["
                "{\"JobID\":\"j-4\",\"NodeId\":\"QmE4a\",\"ComputeReference\":\"e-1\",\"State\":\"Completed\","
                "\"AcceptedAskForBid\":true,\"VerificationResult\":{\"Complete\":true,\"Result\":true},"
                "\"PublishedResults\":{\"StorageSource\":\"IPFS\",\"CID\":\"QmOut\"},"
                RUN_OUTPUT("hello\\n", "warn\\n", 3) ",\"Version\":4,"
                "\"CreateTime\":\"2023-03-01T00:00:00Z\",\"UpdateTime\":\"2023-03-01T00:01:00Z\"},"
                "{\"JobID\":\"j-4\",\"NodeId\":\"QmE4b\",\"ComputeReference\":\"e-2\",\"State\":\"BidRejected\","
                "\"AcceptedAskForBid\":false,\"VerificationResult\":{},\"PublishedResults\":{},\"Version\":2,"
                "\"CreateTime\":\"2023-03-01T00:00:00Z\",\"UpdateTime\":\"2023-03-01T00:00:10Z\"},"
                "{\"JobID\":\"j-4\",\"ComputeReference\":\"e-3\",\"State\":\"Failed\"}"
                "],\"State\":\"%s\",\"Version\":5,\"CreateTime\":\"2023-03-01T00:00:00Z\","
                "\"UpdateTime\":\"2023-03-01T00:01:00Z\",\"TimeoutAt\":\"0001-01-01T00:00:00Z\"}}\n";
        static const struct {
                const char *state;
                bool terminal;
        } cases[] = {
                { "InProgress", false }, { "New", false }, { "Queued", false },
                { "Completed", true }, { "CompletedPartially", true }, { "Error", true },
                { "Cancelled", true },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char json[2048], want[32];
                struct snap *s = NULL;
                bool terminal = !cases[i].terminal;

                snprintf(json, sizeof(json), e4_fmt, cases[i].state);
                snprintf(want, sizeof(want), "%s\n", cases[i].state);
                if (!CHECK_INT_EQ(parse(json, &s, &terminal), 0))
                        continue;
                CHECK_TEXT(s, "state", want);
                if (!CHECK_INT_EQ(terminal, cases[i].terminal))
                        fprintf(stderr, "    job State %s\n", cases[i].state);
                if (i == 0) {
                        /* two executions with a node id; the third has none */
                        CHECK_DIR(s, "", 4);
                        CHECK_DIR(s, "QmE4a/0", 11);
                        CHECK_TEXT(s, "QmE4a/0/state", "Completed\n");
                        CHECK_FILE(s, "QmE4a/0/stdout", "hello\n", 6);
                        CHECK_FILE(s, "QmE4a/0/stderr", "warn\n", 5);
                        CHECK_TEXT(s, "QmE4a/0/exitCode", "3\n");
                        CHECK_TEXT(s, "QmE4a/0/CID", "QmOut\n");
                        CHECK_TEXT(s, "QmE4a/0/Complete", "true\n");
                        CHECK_DIR(s, "QmE4b/0", 1);
                        CHECK_TEXT(s, "QmE4b/0/state", "BidRejected\n");
                        CHECK_FILE(s, "state.json", json, strlen(json));
                }
                snap_free(s);
        }
}

/* E4 executions may carry a ShardIndex (E3 era); it names the shard dir. */
static void test_e4_shard_index(void)
{
        static const char json[] =
                "{\"state\":{\"JobID\":\"j\",\"Executions\":["
                "{\"NodeId\":\"QmX\",\"ShardIndex\":1,\"State\":\"Running\"},"
                "{\"NodeId\":\"QmX\",\"State\":\"Completed\"},"
                "{\"NodeId\":\"QmY\",\"ShardIndex\":\"2\",\"State\":\"Waiting\"}],\"State\":\"InProgress\"}}";
        struct snap *s = NULL;
        bool terminal = true;

        if (!CHECK_INT_EQ(parse(json, &s, &terminal), 0))
                return;
        CHECK(!terminal);
        CHECK_TEXT(s, "QmX/1/state", "Running\n");
        CHECK_TEXT(s, "QmX/0/state", "Completed\n");
        /* a ShardIndex of the wrong type counts as the default, 0 */
        CHECK_TEXT(s, "QmY/0/state", "Waiting\n");
        snap_free(s);
}

/* E3 (v0.3.20-23, api/bacalhau.md section 3) nests the executions one level
 * down: state.Shards.N.Executions[]. bacalhau.h says the E3 shape is read. */
static void test_e3(void)
{
        static const char json[] =
                "{\"state\":{\"JobID\":\"j-3\",\"Shards\":{\"0\":{\"JobID\":\"j-3\",\"ShardIndex\":0,"
                "\"Executions\":[{\"JobID\":\"j-3\",\"NodeId\":\"QmE3a\",\"ShardIndex\":0,"
                "\"ComputeReference\":\"e-1\",\"State\":\"Completed\",\"VerificationResult\":{},"
                "\"PublishedResults\":{}," RUN_OUTPUT("e3\\n", "", 0) ",\"Version\":3}],"
                "\"State\":\"Completed\",\"Version\":2}},\"State\":\"Completed\",\"Version\":3}}\n";
        struct snap *s = NULL;
        bool terminal = false;

        if (!CHECK_INT_EQ(parse(json, &s, &terminal), 0))
                return;
        CHECK(terminal);
        CHECK_TEXT(s, "state", "Completed\n");
        CHECK_TEXT(s, "QmE3a/0/state", "Completed\n");
        CHECK_FILE(s, "QmE3a/0/stdout", "e3\n", 3);
        snap_free(s);
}

/* A field of the wrong type is rendered (scalars) or left out (the rest),
 * one field at a time; the reply as a whole still parses. */
static void test_wrong_types(void)
{
        static const char json[] =
                "{\"state\":{\"Nodes\":{\"QmT\":{\"Shards\":{\"0\":{\"NodeId\":\"QmT\","
                "\"State\":7,\"Status\":{\"a\":1},\"VerificationProposal\":null,"
                "\"VerificationResult\":{\"Complete\":\"yes\",\"Result\":1},"
                "\"PublishedResults\":{\"StorageSource\":[\"IPFS\"],\"Name\":true,\"CID\":12,"
                "\"URL\":1.5,\"SourcePath\":null,\"path\":-3},"
                "\"RunOutput\":{\"stdout\":42,\"stdouttruncated\":\"false\",\"stderr\":null,"
                "\"stderrtruncated\":0,\"exitCode\":\"0\",\"runnerError\":[]}}}}}}}";
        struct snap *s = NULL;
        bool terminal = true;

        if (!CHECK_INT_EQ(parse(json, &s, &terminal), 0))
                return;
        /* State as a number: rendered as its JSON spelling... */
        CHECK_TEXT(s, "QmT/0/state", "7\n");
        /* ...but it is no known state, so no summary and not final */
        CHECK_ABSENT(s, "state");
        CHECK(!terminal);
        CHECK_ABSENT(s, "QmT/0/status");
        CHECK_ABSENT(s, "QmT/0/VerificationProposal");
        CHECK_TEXT(s, "QmT/0/Complete", "yes\n");
        CHECK_TEXT(s, "QmT/0/Result", "1\n");
        CHECK_ABSENT(s, "QmT/0/StorageSource");
        CHECK_TEXT(s, "QmT/0/Name", "true\n");
        CHECK_TEXT(s, "QmT/0/CID", "12\n");
        CHECK_TEXT(s, "QmT/0/URL", "1.5\n");
        CHECK_ABSENT(s, "QmT/0/SourcePath");
        CHECK_TEXT(s, "QmT/0/path", "-3\n");
        /* stdout/stderr must be strings: exact bytes or nothing */
        CHECK_ABSENT(s, "QmT/0/stdout");
        CHECK_ABSENT(s, "QmT/0/stderr");
        CHECK_TEXT(s, "QmT/0/stdouttruncated", "false\n");
        CHECK_TEXT(s, "QmT/0/stderrtruncated", "0\n");
        CHECK_TEXT(s, "QmT/0/exitCode", "0\n");
        CHECK_ABSENT(s, "QmT/0/runnerError");
        CHECK_DIR(s, "QmT/0", 10);
        snap_free(s);

        /* wrong types one level up: the odd part is skipped, the rest kept */
        s = NULL;
        if (CHECK_INT_EQ(parse("{\"state\":{\"Nodes\":{"
                               "\"QmArr\":{\"Shards\":[{\"State\":\"Running\"}]},"
                               "\"QmStr\":{\"Shards\":\"0\"},"
                               "\"QmNum\":7,"
                               "\"QmBadShard\":{\"Shards\":{\"0\":\"Running\",\"1\":null}},"
                               "\"QmRO\":{\"Shards\":{\"0\":{\"State\":\"Error\",\"RunOutput\":[1],"
                               "\"VerificationResult\":\"x\",\"PublishedResults\":7}}},"
                               "\"QmOk\":{\"Shards\":{\"0\":{\"State\":\"Completed\"}}}}}}",
                               &s, &terminal), 0)) {
                CHECK_ABSENT(s, "QmArr");
                CHECK_ABSENT(s, "QmStr");
                CHECK_ABSENT(s, "QmNum");
                CHECK_ABSENT(s, "QmBadShard/0");
                CHECK_ABSENT(s, "QmBadShard/1");
                CHECK_DIR(s, "QmRO/0", 1);
                CHECK_TEXT(s, "QmRO/0/state", "Error\n");
                CHECK_TEXT(s, "QmOk/0/state", "Completed\n");
                CHECK_TEXT(s, "state", "Completed\n");
                CHECK(terminal);
                snap_free(s);
        }

        /* Nodes or Executions of the wrong type: ignored, not fatal */
        s = NULL;
        if (CHECK_INT_EQ(parse("{\"state\":{\"Nodes\":[1,2],\"Executions\":{\"a\":1}}}", &s, &terminal), 0)) {
                CHECK_DIR(s, "", 1);
                snap_free(s);
        }
        s = NULL;
        if (CHECK_INT_EQ(parse("{\"state\":{\"Executions\":[1,\"x\",null,[],{\"NodeId\":5}],"
                               "\"State\":\"Queued\"}}", &s, &terminal), 0)) {
                CHECK_DIR(s, "", 2);
                CHECK_TEXT(s, "state", "Queued\n");
                CHECK(!terminal);
                snap_free(s);
        }
        /* a job-level State that is not a string falls back to the shards */
        s = NULL;
        if (CHECK_INT_EQ(parse("{\"state\":{\"State\":6,\"Executions\":[{\"NodeId\":\"QmZ\","
                               "\"State\":\"Completed\"}]}}", &s, &terminal), 0)) {
                CHECK_TEXT(s, "state", "Completed\n");
                CHECK(terminal);
                snap_free(s);
        }

        /* the reply itself of the wrong shape is a bad message */
        CHECK_BAD("{\"state\":[]}", -EBADMSG);
        CHECK_BAD("{\"state\":null}", -EBADMSG);
        CHECK_BAD("{\"state\":\"Completed\"}", -EBADMSG);
        CHECK_BAD("{\"State\":{}}", -EBADMSG);
        CHECK_BAD("{}", -EBADMSG);
        CHECK_BAD("[{\"state\":{}}]", -EBADMSG);
        CHECK_BAD("\"state\"", -EBADMSG);
        CHECK_BAD("null", -EBADMSG);
}

static void test_hostile_names(void)
{
        static const char json[] =
                "{\"state\":{\"Nodes\":{"
                "\"..\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\".\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"a/b\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"/\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"bad\\u0001ctl\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"\\u0000x\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"\xc0\xae\xc0\xae\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"caf\xe9\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"QmGood\":{\"Shards\":{\"0\":{\"State\":\"Running\"},\"..\":{\"State\":\"Running\"},"
                "\"../../etc\":{\"State\":\"Running\"},\"1\":{\"State\":\"Running\"}}},"
                "\"...\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"n\\u00e9ud\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}}"
                "}}}";
        char big[1024];
        struct snap *s = NULL;
        bool terminal = true;
        int n;

        if (!CHECK_INT_EQ(parse(json, &s, &terminal), 0))
                return;
        CHECK_DIR(s, "", 5);            /* QmGood, "...", "nœud", state, state.json */
        CHECK_ABSENT(s, "..");
        CHECK_ABSENT(s, ".");
        CHECK_ABSENT(s, "a");
        CHECK_ABSENT(s, "bad\x01" "ctl");
        CHECK_DIR(s, "QmGood", 2);
        CHECK_TEXT(s, "QmGood/0/state", "Running\n");
        CHECK_TEXT(s, "QmGood/1/state", "Running\n");
        CHECK_TEXT(s, ".../0/state", "Running\n");
        CHECK_TEXT(s, "n\xc3\xa9ud/0/state", "Running\n");
        CHECK_TEXT(s, "state", "Running\n");
        snap_free(s);

        /* a 256-byte node name is left out, a 255-byte one kept */
        n = snprintf(big, sizeof(big), "{\"state\":{\"Nodes\":{\"%0256d\":{\"Shards\":{\"0\":{}}},"
                     "\"%0255d\":{\"Shards\":{\"0\":{}}}}}}", 0, 0);
        s = NULL;
        if (CHECK(n > 0 && (size_t)n < sizeof(big)) && CHECK_INT_EQ(parse(big, &s, &terminal), 0)) {
                CHECK_DIR(s, "", 2);
                CHECK(s->n_children > 0 && strlen(s->children[0]->name) == 255);
                snap_free(s);
        }
}

/* Node names that are safe file names but collide with the job's own files
 * ("state", "state.json"). Nothing a server sends should cost the user the
 * whole job directory: the colliding node may be left out, but the parse
 * must succeed and state.json must hold the reply. */
static void test_name_collision(void)
{
        static const char *const json[] = {
                "{\"state\":{\"Nodes\":{\"state.json\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"QmOk\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}}}}}",
                "{\"state\":{\"Nodes\":{\"state\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}},"
                "\"QmOk\":{\"Shards\":{\"0\":{\"State\":\"Running\"}}}}}}",
                "{\"state\":{\"Executions\":[{\"NodeId\":\"state\",\"State\":\"Completed\"}],"
                "\"State\":\"Completed\"}}",
        };

        for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
                struct snap *s = NULL;
                bool terminal = false;

                if (!CHECK_INT_EQ(parse(json[i], &s, &terminal), 0)) {
                        fprintf(stderr, "    reply: %s\n", json[i]);
                        continue;
                }
                CHECK_FILE(s, "state.json", json[i], strlen(json[i]));
                CHECK(snap_at(s, "state") && !snap_at(s, "state")->is_dir);
                snap_free(s);
        }
}

static void test_bad_json(void)
{
        size_t len = 0;
        char *body = check_slurp(FIXTURES "/bacalhau-seed.json", &len);
        char *deep;
        size_t n;
        int bad = 0;

        CHECK_BAD("", -EBADMSG);
        CHECK_BAD("not json", -EBADMSG);
        CHECK_BAD("Job not found. ID: x\n", -EBADMSG);
        CHECK_BAD("{", -EBADMSG);
        CHECK_BAD("{\"state\":{}", -EBADMSG);
        CHECK_BAD("{\"state\":{\"Nodes\":{\"a\":\"\\x\"}}}", -EBADMSG);
        /* trailing garbage: a second value, text, a NUL; white space is fine */
        CHECK_BAD("{\"state\":{}}{}", -EBADMSG);
        CHECK_BAD("{\"state\":{}}\nx", -EBADMSG);
        CHECK_BAD("{\"state\":{}} 1", -EBADMSG);
        CHECK_BAD("{\"state\":{}}\n\0garbage", -EBADMSG);
        CHECK_BAD("{\"state\":{}}\0", -EBADMSG);
        CHECK_BAD("{\"state\":{}} \r\n\t", 0);
        /* the length given is what is parsed */
        CHECK_PARSE_FAILS("{\"state\":{}}garbage", 12, 0);

        /* every cut of the seed reply short of its closing brace */
        if (body) {
                for (size_t cut = 0; cut + 1 < len; cut++) {
                        struct snap *s = NULL;
                        bool terminal;
                        int r = parse_states(body, cut, &s, &terminal);

                        if (r != -EBADMSG) {
                                if (bad++ < 5)
                                        fprintf(stderr, "    cut at %zu: %d\n", cut, r);
                                if (r == 0)
                                        snap_free(s);
                        }
                }
                CHECK_INT_EQ(bad, 0);
        }
        free(body);

        /* nesting: 100,000 '[' is refused quickly, not a stack overflow */
        n = 100000;
        deep = malloc(n + 16);
        if (CHECK(deep)) {
                memset(deep, '[', n);
                CHECK_PARSE_FAILS(deep, n, -EBADMSG);
                memcpy(deep, "{\"state\":", 9);
                CHECK_PARSE_FAILS(deep, n, -EBADMSG);
                memset(deep + n / 2, ']', n / 2);
                CHECK_PARSE_FAILS(deep, n, -EBADMSG);
                free(deep);
        }
}

/* The depth cap (JSONUTIL_DEPTH_MAX 64) leaves room for real replies. */
static void test_depth_cap(void)
{
        char json[512];
        struct snap *s = NULL;
        bool terminal;

        for (int depth = 60; depth <= 66; depth++) {
                /* {"state":{},"x":[[...]]}: the root object is level 1 */
                int arrays = depth - 1, n = 0, r;

                n += snprintf(json + n, sizeof(json) - (size_t)n, "{\"state\":{},\"x\":");
                for (int i = 0; i < arrays; i++)
                        json[n++] = '[';
                for (int i = 0; i < arrays; i++)
                        json[n++] = ']';
                json[n++] = '}';
                json[n] = '\0';
                s = NULL;
                r = parse(json, &s, &terminal);
                if (!CHECK_INT_EQ(r, depth <= 64 ? 0 : -EBADMSG))
                        fprintf(stderr, "    depth %d\n", depth);
                snap_free(r == 0 ? s : NULL);
        }
}

/* Parses a list reply, expecting r and the ids in want. */
#define CHECK_LIST(json, r, ...) \
        check_names_parse(__FILE__, __LINE__, bacalhau_parse_list, "bacalhau_parse_list(json)", (json), \
                          (r), (const char *[]){ __VA_ARGS__, NULL })

static void test_list(void)
{
        /* v0.3.16-19: {"Metadata":{"ID"}} in a full Job */
        CHECK_LIST("{\"jobs\":[{\"APIVersion\":\"V1beta1\",\"Metadata\":{\"ID\":\"" JOB_ID "\","
                   "\"CreatedAt\":\"2022-11-17T13:32:55.33837275Z\",\"ClientID\":\"ac13\"},"
                   "\"Spec\":{\"Engine\":\"Docker\"},\"Status\":{\"JobState\":{\"Nodes\":{}}}}]}\n",
                   0, JOB_ID);
        /* v0.3.20+: {"Job":{"Metadata":{"ID"}},"State":...} */
        CHECK_LIST("{\"jobs\":[{\"Job\":{\"APIVersion\":\"V1beta1\",\"Metadata\":{\"ID\":\"job-2\"}},"
                   "\"State\":{\"State\":\"Completed\"}},{\"Job\":{\"Metadata\":{\"ID\":\"job-3\"}}}]}",
                   0, "job-2", "job-3");
        /* the swagger example's flat {"ID"} */
        CHECK_LIST("{\"jobs\":[{\"ID\":\"flat-1\",\"JobState\":{},\"CreatedAt\":\"x\"}]}", 0, "flat-1");
        /* the three mixed, in order; entries without a usable id skipped */
        CHECK_LIST("{\"jobs\":[{\"ID\":\"a\"},{\"Metadata\":{\"ID\":\"b\"}},{\"Job\":{\"Metadata\":{\"ID\":\"c\"}}},"
                   "{},{\"Metadata\":{\"ID\":5}},{\"ID\":null},7,\"d\",null,[],"
                   "{\"ID\":\"..\"},{\"ID\":\"a/b\"},{\"ID\":\"\"},{\"Metadata\":{\"ID\":\"x\\ny\"}},"
                   "{\"Metadata\":{\"ID\":3},\"ID\":\"e\"}]}",
                   0, "a", "b", "c", "e");
        /* Metadata.ID wins over a flat ID */
        CHECK_LIST("{\"jobs\":[{\"Metadata\":{\"ID\":\"meta\"},\"ID\":\"flat\"}]}", 0, "meta");

        /* Go encodes a nil slice as null: no jobs, not an error */
        {
                struct backend_list l = { .n = 99 };

                CHECK_INT_EQ(bacalhau_parse_list("{\"jobs\":null}\n", 14, &l), 0);
                CHECK_INT_EQ(l.n, 0);
                backend_list_clear(&l);
                l.n = 99;
                CHECK_INT_EQ(bacalhau_parse_list("{\"jobs\":[]}", 11, &l), 0);
                CHECK_INT_EQ(l.n, 0);
                backend_list_clear(&l);
        }
        /* a missing jobs key or the wrong type is a bad message */
        CHECK_LIST("{}", -EBADMSG, NULL);
        CHECK_LIST("{\"Jobs\":[]}", -EBADMSG, NULL);
        CHECK_LIST("{\"jobs\":{}}", -EBADMSG, NULL);
        CHECK_LIST("{\"jobs\":\"x\"}", -EBADMSG, NULL);
        CHECK_LIST("{\"jobs\":7}", -EBADMSG, NULL);
        CHECK_LIST("[]", -EBADMSG, NULL);
        CHECK_LIST("null", -EBADMSG, NULL);
        CHECK_LIST("", -EBADMSG, NULL);
        CHECK_LIST("{\"jobs\":[", -EBADMSG, NULL);
        CHECK_LIST("{\"jobs\":[]} x", -EBADMSG, NULL);
        CHECK_LIST("{\"Code\":\"error-job-not-found\",\"Message\":\"Job not found. ID: x\"}", -EBADMSG, NULL);
}

/* The list is a change feed: an entry's sig equals the sig of a states reply
 * holding the same JobState, whatever the key order and spacing; a change in
 * any value moves it (the control twin). */
static uint64_t states_sig_of(const char *json)
{
        struct backend_item it = { 0 };
        uint64_t sig = 0;

        if (CHECK_INT_EQ(bacalhau_parse_states(json, strlen(json), &it), 0))
                sig = it.sig;
        backend_item_clear(&it);
        return sig;
}

static uint64_t list_sig_of(const char *json, size_t i)
{
        struct backend_list l = { 0 };
        uint64_t sig = 0;

        if (CHECK_INT_EQ(bacalhau_parse_list(json, strlen(json), &l), 0) && CHECK(i < l.n)) {
                CHECK(l.feed);
                sig = l.v[i].sig;
        }
        backend_list_clear(&l);
        return sig;
}

#define E1_STATE(state, out) \
        "{\"Nodes\":{\"QmA\":{\"Shards\":{\"0\":{\"NodeId\":\"QmA\",\"State\":\"" state "\"," \
        "\"VerificationResult\":{},\"PublishedResults\":{}," RUN_OUTPUT(out, "", 0) "}}}}}"

static void test_feed_sig(void)
{
        const char *states = "{\"state\":" E1_STATE("Running", "a\\n") "}\n";
        /* the same state, keys in another order, with spaces: v0.3.16 list */
        const char *list_e2 =
                "{\"jobs\":[{\"Metadata\":{\"ID\":\"j0\"},\"Status\":{\"JobState\":{\"Nodes\":{\"QmA\":"
                "{\"Shards\":{\"0\":{ \"State\": \"Running\", \"NodeId\":\"QmA\",\"PublishedResults\":{},"
                "\"VerificationResult\":{}," RUN_OUTPUT("a\\n", "", 0) "}}}}}}},"
                "{\"Metadata\":{\"ID\":\"j1\"},\"Status\":{\"JobState\":" E1_STATE("Running", "a\\nb\\n") "}}]}";
        /* v0.3.20+: {"Job":...,"State":JobState}; E4 shape */
        const char *e4 = "{\"JobID\":\"j\",\"Executions\":[{\"NodeId\":\"QmA\",\"State\":\"BidAccepted\"}],"
                         "\"State\":\"InProgress\",\"Version\":3}";
        char states_e4[512], list_e4[512];
        uint64_t sig;

        sig = states_sig_of(states);
        CHECK(sig != 0);
        CHECK_INT_EQ(list_sig_of(list_e2, 0), sig);
        CHECK(list_sig_of(list_e2, 1) != sig);          /* one more line of stdout */
        CHECK(states_sig_of("{\"state\":" E1_STATE("Verifying", "a\\n") "}") != sig);

        snprintf(states_e4, sizeof(states_e4), "{\"state\":%s}", e4);
        snprintf(list_e4, sizeof(list_e4), "{\"jobs\":[{\"Job\":{\"Metadata\":{\"ID\":\"j\"}},\"State\":%s}]}", e4);
        CHECK_INT_EQ(list_sig_of(list_e4, 0), states_sig_of(states_e4));
        CHECK(states_sig_of(states_e4) != sig);

        /* a list without states is no feed: no sigs */
        {
                struct backend_list l = { 0 };

                const char *plain = "{\"jobs\":[{\"ID\":\"x\"}]}";

                CHECK_INT_EQ(bacalhau_parse_list(plain, strlen(plain), &l), 0);
                CHECK(!l.feed && l.n == 1 && l.v[0].sig == 0);
                backend_list_clear(&l);
        }
}

static void test_terminal(void)
{
        static const char *const final[] = {
                "Completed", "Error", "Cancelled", "CompletedPartially", "Failed", "Stopped",
        };
        static const char *const live[] = {
                "Running", "Verifying", "Waiting", "Bidding", "InProgress", "New", "Queued",
                "Pending", "AskForBid", "BidAccepted", "", "completed", "Completed ", "Complete",
                "Cancelled\n",
        };

        for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
                if (!CHECK(bacalhau_state_is_terminal(final[i])))
                        fprintf(stderr, "    state '%s'\n", final[i]);
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (!CHECK(!bacalhau_state_is_terminal(live[i])))
                        fprintf(stderr, "    state '%s'\n", live[i]);
        CHECK(!bacalhau_state_is_terminal(NULL));
}

int main(void)
{
        log_max_level = LOG_LVL_WARN;   /* "left out an entry" notes are expected here */
        test_seed();
        test_running();
        test_summary();
        test_e4();
        test_e4_shard_index();
        test_e3();
        test_wrong_types();
        test_hostile_names();
        test_name_collision();
        test_bad_json();
        test_depth_cap();
        test_list();
        test_feed_sig();
        test_terminal();
        return CHECK_DONE();
}
