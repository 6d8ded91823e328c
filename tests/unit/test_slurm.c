/* Unit tests of the SLURM parsers (slurm_job.c, slurm_split.c,
 * slurm_token.c): job objects to directories, names of array tasks, exit
 * codes, sbatch path patterns, output files, signatures, error replies, the
 * splitter on hostile input, and token files.
 *
 * The fixtures tests/fixtures/slurm-*.json are replies of a real slurmrestd
 * 22.05.8 (Debian 12) with only its cluster directory renamed to /srv/slurm:
 * GET /slurm/v0.0.38/jobs holding completed, failed (exit 3), killed (-9),
 * cancelled, timed-out, launch-failed, pending (held, begin time), running
 * and array jobs; single jobs and errors. Expected values come from what
 * that cluster did (squeue, the files slurmstepd wrote), not from jobfs.
 * Tests that read output files put the fixtures' directory and user id on a
 * temp dir of this test and on our own uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "slurmtest.h"
#include "snapcheck.h"
#include "jobfs/backend.h"
#include "jobfs/log.h"
#include "jobfs/slurm_job.h"
#include "jobfs/slurm_split.h"
#include "jobfs/slurm_token.h"

static char tmpdir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------------ */

#define MAX_JOBS 64
struct jobs {
        struct slurm_job *v[MAX_JOBS];
        size_t n;
        const char *body;       /* the reply the bytes came from */
        size_t body_len;
        bool bytes_inside;      /* every object's bytes are a piece of body */
};

static int collect(void *ctx, const char *bytes, size_t len)
{
        struct jobs *js = ctx;
        struct slurm_job *j = NULL;
        int r;

        if (js->body && !(bytes[0] == '{' && bytes[len - 1] == '}' &&
                          memmem(js->body, js->body_len, bytes, len)))
                js->bytes_inside = false;
        r = slurm_parse_job(bytes, len, &j);
        if (r < 0)
                return r;
        if (js->n == MAX_JOBS) {
                slurm_job_free(j);
                return -E2BIG;
        }
        js->v[js->n++] = j;
        return 0;
}

static int parse_all(const char *body, size_t len, struct jobs *js)
{
        memset(js, 0, sizeof(*js));
        js->body = body;
        js->body_len = len;
        js->bytes_inside = true;
        return slurm_parse_jobs(body, len, collect, js);
}

static void jobs_free(struct jobs *js)
{
        for (size_t i = 0; i < js->n; i++)
                slurm_job_free(js->v[i]);
        js->n = 0;
}

static struct slurm_job *find(const struct jobs *js, const char *name)
{
        for (size_t i = 0; i < js->n; i++)
                if (strcmp(js->v[i]->name, name) == 0)
                        return js->v[i];
        return NULL;
}

/* The directory of job `name`, outputs not read. Caller frees. */
static struct snap *dir_of(const struct jobs *js, const char *name, size_t out_max)
{
        struct slurm_job *j = find(js, name);
        struct snap *s = NULL;
        uint64_t outs = 0;
        size_t nread = 0;

        if (!CHECK(j != NULL)) {
                fprintf(stderr, "    no job %s\n", name);
                return NULL;
        }
        if (!CHECK_INT_EQ(slurm_job_snap(j, out_max, &s, &outs, &nread), 0))
                return NULL;
        return s;
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        if (!CHECK(f != NULL))
                return;
        fputs(text, f);
        fclose(f);
}

/* ---- the list fixture -------------------------------------------------------- */

static void test_names_and_order(void)
{
        /* the order is slurmctld's, not sorted; tasks 1 and 2 of array 39 got
         * their own ids 45 and 46, task 3 kept 39; 49 is a held array whose
         * tasks have not been split off yet (squeue: 49_[1-3]) */
        static const char *const want[] = {
                "29", "30", "35", "36", "37", "38", "39_1", "40", "41", "42", "43", "44",
                "39_2", "39_3", "47", "48", "49", "50",
        };
        size_t len = 0;
        char *body = fixture_raw("slurm-jobs.json", &len);
        struct jobs js;

        if (!body)
                return;
        if (CHECK_INT_EQ(parse_all(body, len, &js), 0) &&
            CHECK_INT_EQ(js.n, sizeof(want) / sizeof(want[0]))) {
                for (size_t i = 0; i < js.n; i++)
                        CHECK_STR_EQ(js.v[i]->name, want[i]);
                CHECK(js.bytes_inside);
        }
        /* the same reply fed one byte at a time */
        {
                struct jobs one = { .bytes_inside = true };
                struct slurm_split *sp = NULL;
                int r = slurm_split_new(collect, &one, &sp);

                for (size_t i = 0; r == 0 && i < len; i++)
                        r = slurm_split_feed(sp, body + i, 1);
                if (r == 0)
                        r = slurm_split_end(sp);
                CHECK_INT_EQ(r, 0);
                if (CHECK_INT_EQ(one.n, js.n))
                        for (size_t i = 0; i < one.n; i++) {
                                CHECK_STR_EQ(one.v[i]->name, js.v[i]->name);
                                CHECK(one.v[i]->sum == js.v[i]->sum);
                        }
                slurm_split_free(sp);
                jobs_free(&one);
        }
        jobs_free(&js);
        free(body);
}

static void test_failed_job(void)
{
        size_t len = 0;
        char *body = fixture_raw("slurm-jobs.json", &len);
        struct slurm_job *j;
        struct snap *s;
        struct jobs js;

        if (!body || !CHECK_INT_EQ(parse_all(body, len, &js), 0))
                goto out;
        j = find(&js, "36");
        if (!CHECK(j))
                goto out;
        CHECK(j->terminal && j->started);
        CHECK_INT_EQ(j->uid, 0);
        CHECK_STR_EQ(j->out_path, "/srv/slurm/jobs/slurm-36.out");
        CHECK(j->err_path == NULL);     /* no --error: into the stdout file */
        s = dir_of(&js, "36", 0);
        CHECK_TEXT(s, "state", "FAILED\n");
        CHECK_TEXT(s, "reason", "NonZeroExitCode\n");
        CHECK_TEXT(s, "exit_code", "3\n");      /* sent as 768 */
        CHECK_ABSENT(s, "signal");
        CHECK_TEXT(s, "name", "fail.sh\n");
        CHECK_TEXT(s, "user", "root\n");
        CHECK_TEXT(s, "partition", "debug\n");
        CHECK_TEXT(s, "nodes", "vm\n");
        CHECK_TEXT(s, "work_dir", "/srv/slurm/jobs\n");
        CHECK_TEXT(s, "submit_time", "1796124209\n");
        CHECK_TEXT(s, "start_time", "1796124210\n");
        CHECK_TEXT(s, "end_time", "1796124210\n");
        CHECK_TEXT(s, "stdout_path", "/srv/slurm/jobs/slurm-36.out\n");
        CHECK_TEXT(s, "stderr_path", "/srv/slurm/jobs/slurm-36.out\n");
        CHECK_ABSENT(s, "stdout");      /* out_max 0: not read */
        CHECK_ABSENT(s, "stderr");
        CHECK_FILE(s, "job.json", j->json->data, j->json->len);
        CHECK(memmem(body, len, j->json->data, j->json->len) != NULL);
        CHECK_DIR(s, "", 14);
        snap_free(s);
out:
        jobs_free(&js);
        free(body);
}

/* Final states: exit codes and signals; live ones: no exit_code, no
 * end_time (a forecast), a pending one no start_time either. */
static void test_states(void)
{
        static const struct {
                const char *name, *state, *reason, *exit_code, *signal;
                bool terminal, started, end_time;
        } cases[] = {
                { "35", "COMPLETED", "None", "0", NULL, true, true, true },
                { "38", "FAILED", "JobLaunchFailure", "137", "9", true, true, true },    /* kill -9 $$ */
                { "39_1", "FAILED", "NonZeroExitCode", "1", NULL, true, true, true },
                { "39_3", "FAILED", "NonZeroExitCode", "3", NULL, true, true, true },
                { "40", "CANCELLED", "None", "143", "15", true, true, true },           /* scancel */
                { "42", "TIMEOUT", "TimeLimit", "143", "15", true, true, true },        /* --time=1 */
                { "44", "FAILED", "JobLaunchFailure", "181", "53", true, true, true },  /* 4021 */
                { "41", "PENDING", "JobHeldUser", NULL, NULL, false, false, false },
                { "30", "PENDING", "BeginTime", NULL, NULL, false, false, false },
                { "49", "PENDING", "JobHeldUser", NULL, NULL, false, false, false },
                { "50", "RUNNING", "None", NULL, NULL, false, true, false },
        };
        size_t len = 0;
        char *body = fixture_raw("slurm-jobs.json", &len);
        struct jobs js;

        if (!body || !CHECK_INT_EQ(parse_all(body, len, &js), 0))
                goto out;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct slurm_job *j = find(&js, cases[i].name);
                struct snap *s = dir_of(&js, cases[i].name, 0);
                char want[64];

                if (!j || !s) {
                        snap_free(s);
                        continue;
                }
                snprintf(want, sizeof(want), "%s\n", cases[i].state);
                CHECK_TEXT(s, "state", want);
                snprintf(want, sizeof(want), "%s\n", cases[i].reason);
                CHECK_TEXT(s, "reason", want);
                if (cases[i].exit_code) {
                        snprintf(want, sizeof(want), "%s\n", cases[i].exit_code);
                        CHECK_TEXT(s, "exit_code", want);
                } else {
                        CHECK_ABSENT(s, "exit_code");
                }
                if (cases[i].signal) {
                        snprintf(want, sizeof(want), "%s\n", cases[i].signal);
                        CHECK_TEXT(s, "signal", want);
                } else {
                        CHECK_ABSENT(s, "signal");
                }
                if (!CHECK(j->terminal == cases[i].terminal && j->started == cases[i].started))
                        fprintf(stderr, "    job %s\n", cases[i].name);
                CHECK((snap_at(s, "end_time") != NULL) == cases[i].end_time);
                CHECK((snap_at(s, "start_time") != NULL) == cases[i].started);
                CHECK(snap_at(s, "submit_time") != NULL);
                snap_free(s);
        }
        /* a pending job has no nodes yet: an empty file, as sent */
        {
                struct snap *s = dir_of(&js, "41", 0);

                CHECK_FILE(s, "nodes", "", 0);
                snap_free(s);
        }
out:
        jobs_free(&js);
        free(body);
}

static void test_paths(void)
{
        size_t len = 0;
        char *body = fixture_raw("slurm-jobs.json", &len);
        struct snap *s;
        struct jobs js;

        if (!body || !CHECK_INT_EQ(parse_all(body, len, &js), 0))
                goto out;
        /* --output=.../out/custom-%j-%x.log --error=.../out/custom-%j.err:
         * the files slurmstepd wrote were custom-37-custom-out.log and custom-37.err */
        s = dir_of(&js, "37", 0);
        CHECK_TEXT(s, "stdout_path", "/srv/slurm/jobs/out/custom-37-custom-out.log\n");
        CHECK_TEXT(s, "stderr_path", "/srv/slurm/jobs/out/custom-37.err\n");
        snap_free(s);
        /* array tasks default to slurm-%A_%a.out, whatever their own id */
        s = dir_of(&js, "39_1", 0);
        CHECK_TEXT(s, "stdout_path", "/srv/slurm/jobs/slurm-39_1.out\n");
        snap_free(s);
        s = dir_of(&js, "39_3", 0);
        CHECK_TEXT(s, "stdout_path", "/srv/slurm/jobs/slurm-39_3.out\n");
        snap_free(s);
        /* control twin: a plain job's default is slurm-%j.out */
        s = dir_of(&js, "35", 0);
        CHECK_TEXT(s, "stdout_path", "/srv/slurm/jobs/slurm-35.out\n");
        snap_free(s);
        s = dir_of(&js, "44", 0);
        CHECK_TEXT(s, "stdout_path", "/srv/slurm/jobs/missing/x-44.out\n");
        snap_free(s);
out:
        jobs_free(&js);
        free(body);
}

/* One GET /job/ID reply and the same job in GET /jobs: the same bytes, the
 * same signature; v0.0.36's record of the same job differs (user_name ""). */
static void test_signatures(void)
{
        size_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
        char *list = fixture_raw("slurm-jobs.json", &n1);
        char *one = fixture_raw("slurm-job-running.json", &n2);
        char *arr = fixture_raw("slurm-job-array.json", &n3);
        char *v36 = fixture_raw("slurm-job-v36.json", &n4);
        struct jobs a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

        if (!list || !one || !arr || !v36)
                goto out;
        if (!CHECK_INT_EQ(parse_all(list, n1, &a), 0) || !CHECK_INT_EQ(parse_all(one, n2, &b), 0) ||
            !CHECK_INT_EQ(parse_all(arr, n3, &c), 0) || !CHECK_INT_EQ(parse_all(v36, n4, &d), 0))
                goto out;
        if (CHECK_INT_EQ(b.n, 1) && CHECK(find(&a, "50"))) {
                CHECK(b.v[0]->sum == find(&a, "50")->sum);
                CHECK_MEM_EQ(b.v[0]->json->data, b.v[0]->json->len, find(&a, "50")->json->data,
                             find(&a, "50")->json->len);
        }
        /* GET /job/39 of an array: all three tasks, none named "39" */
        if (CHECK_INT_EQ(c.n, 3)) {
                CHECK_STR_EQ(c.v[0]->name, "39_3");
                CHECK_STR_EQ(c.v[1]->name, "39_2");
                CHECK_STR_EQ(c.v[2]->name, "39_1");
                for (size_t i = 0; i < c.n; i++)
                        CHECK(find(&a, c.v[i]->name) && find(&a, c.v[i]->name)->sum == c.v[i]->sum);
        }
        /* control: other jobs, and the same job from another API version */
        CHECK(find(&a, "35")->sum != find(&a, "36")->sum);
        if (CHECK_INT_EQ(d.n, 1)) {
                CHECK_STR_EQ(d.v[0]->name, "36");
                CHECK(d.v[0]->sum != find(&a, "36")->sum);
        }
out:
        jobs_free(&a);
        jobs_free(&b);
        jobs_free(&c);
        jobs_free(&d);
        free(list);
        free(one);
        free(arr);
        free(v36);
}

static uint64_t sum_of(const char *json)
{
        struct slurm_job *j = NULL;
        uint64_t s = 0;

        if (CHECK_INT_EQ(slurm_parse_job(json, strlen(json), &j), 0))
                s = j->sum;
        slurm_job_free(j);
        return s;
}

/* The signature is over values, not bytes; last_sched_evaluation (which a
 * pending job's record changes at every scheduler pass without slurmctld
 * counting an update) is left out of it, nothing else is. */
static void test_signature_rules(void)
{
        uint64_t base = sum_of("{\"job_id\": 7, \"job_state\": \"PENDING\", \"flags\": [\"A\", \"B\"],"
                               " \"last_sched_evaluation\": 100, \"x\": {\"y\": null}}");

        CHECK(base != 0);
        CHECK(base == sum_of("{\"x\":{\"y\":null},\"flags\":[\"A\",\"B\"],\"job_state\":\"PENDING\","
                             "\"last_sched_evaluation\":100,\"job_id\":7}"));
        CHECK(base == sum_of("{\"job_id\": 7, \"job_state\": \"PENDING\", \"flags\": [\"A\", \"B\"],"
                             " \"last_sched_evaluation\": 101, \"x\": {\"y\": null}}"));
        /* control twins: every other change moves it */
        CHECK(base != sum_of("{\"job_id\": 7, \"job_state\": \"RUNNING\", \"flags\": [\"A\", \"B\"],"
                             " \"last_sched_evaluation\": 100, \"x\": {\"y\": null}}"));
        CHECK(base != sum_of("{\"job_id\": 7, \"job_state\": \"PENDING\", \"flags\": [\"B\", \"A\"],"
                             " \"last_sched_evaluation\": 100, \"x\": {\"y\": null}}"));
        CHECK(base != sum_of("{\"job_id\": 7, \"job_state\": \"PENDING\", \"flags\": [\"A\", \"B\"],"
                             " \"last_sched_evaluation\": 100, \"x\": {}}"));
        CHECK(base != sum_of("{\"job_id\": 7, \"job_state\": \"PENDING\", \"flags\": [\"A\", \"B\"],"
                             " \"last_sched_evaluation\": 100, \"x\": {\"y\": 0}}"));
        CHECK(base != sum_of("{\"job_id\": 7, \"job_state\": \"PENDING\", \"flags\": [\"A\", \"B\"],"
                             " \"x\": {\"y\": null}, \"z\": {\"last_sched_evaluation\": 100}}"));
}

/* ---- exit codes, names, expansion -------------------------------------------------- */

static void test_exit_codes(void)
{
        static const struct { long long raw; int code, sig; } ok[] = {
                { 0, 0, 0 }, { 256, 1, 0 }, { 768, 3, 0 }, { 1280, 5, 0 }, { 255 << 8, 255, 0 },
                { 15, 143, 15 }, { 9, 137, 9 }, { 0x8b, 139, 11 } /* SIGSEGV, core */,
                { 4021, 181, 53 } /* launch failure: 0x0FB5 */,
        };
        static const long long bad[] = { -1, -2, 0x10000, 4294967294LL, 0x7f, 0x17f };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int code = -1, sig = -1;

                if (CHECK_INT_EQ(slurm_exit_code(ok[i].raw, &code, &sig), 0)) {
                        CHECK_INT_EQ(code, ok[i].code);
                        CHECK_INT_EQ(sig, ok[i].sig);
                }
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int code = -1, sig = -1;

                CHECK_INT_EQ(slurm_exit_code(bad[i], &code, &sig), -EINVAL);
                CHECK(code == -1 && sig == -1);
        }
}

static void test_name_rules(void)
{
        static const char *const good[] = { "1", "35", "4294967294", "6_2", "6_0", "49_12345" };
        static const char *const bad[] = {
                "", "0", "007", "6_", "_2", "6_02", "06_2", "abc", "12345678901", "6_2_3", "6-2",
                "6_[1-3]", " 6", "6\n", "+6", "-6", "6.0",
        };

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (!CHECK(slurm_name_ok(good[i])))
                        fprintf(stderr, "    '%s'\n", good[i]);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (!CHECK(!slurm_name_ok(bad[i])))
                        fprintf(stderr, "    '%s'\n", bad[i]);
}

static void check_expand(int line, const char *pat, const struct slurm_path_vars *v, const char *want)
{
        char *got = NULL;

        if (check_int(__FILE__, line, "slurm_expand_path", "0", slurm_expand_path(pat, v, &got), 0))
                check_str(__FILE__, line, pat, "want", got, want);
        free(got);
}
#define CHECK_EXPAND(pat, v, want) check_expand(__LINE__, (pat), (v), (want))

/* Each pattern was given to sbatch on the real cluster; want is the name of
 * the file slurmstepd created. */
static void test_expand(void)
{
        struct slurm_path_vars plain = { .job_id = 2, .array_task_id = -1, .user = "root",
                                         .name = "nm", .node = "vm" };
        struct slurm_path_vars task = { .job_id = 7, .array_job_id = 3, .array_task_id = 2,
                                        .user = "root", .name = "arr", .node = "vm" };
        struct slurm_path_vars v = plain;
        char *got = NULL, big[PATH_MAX + 8];

        CHECK_EXPAND("p_%%_%A_%a_%J_%j_%N_%n_%s_%t_%u_%x_%4j_%b_%q_%3a.out", &plain,
                     "p_%_2_4294967294_2_2_vm_0_batch_0_root_nm_0002_%b_%q_4294967294.out");
        CHECK_EXPAND("a_%%_%A_%a_%J_%j_%N_%n_%s_%t_%u_%x_%4j_%b_%3a_%03A.out", &task,
                     "a_%_3_2_7_7_vm_0_batch_0_root_arr_0007_%b_002_003.out");
        /* one backslash anywhere: nothing is replaced, each quotes the next byte */
        CHECK_EXPAND("d\\%j.out", &plain, "d%j.out");
        CHECK_EXPAND("e\\\\%j_\\\\x\\y.out", &plain, "e\\%j_\\xy.out");
        CHECK_EXPAND("f%j\\n.out", &plain, "f%jn.out");
        v.job_id = 11;
        v.name = "s4";
        CHECK_EXPAND("g%5%x%", &v, "g5s4%");
        v.job_id = 13;
        CHECK_EXPAND("i%0j_%1j_%12j_%123j", &v, "i13_13_0000000013_0000000013");
        v.job_id = 14;
        v.name = "s7";
        CHECK_EXPAND("j%5b_%5q_%12u_%4x_%3N_%%%j_%5%_%Z", &v, "j5b_5q_root_s7_vm_%14_5%_%Z");
        CHECK_EXPAND("k%", &v, "k%");
        CHECK_EXPAND("l%5", &v, "l5");
        CHECK_EXPAND("m%%j%%%%", &v, "m%j%%");
        v.job_id = 18;
        CHECK_EXPAND("n%99999999999j", &v, "n0000000018");
        v.job_id = 19;
        CHECK_EXPAND("o%5%j", &v, "o519");
        {
                struct slurm_path_vars custom = { .job_id = 3, .array_task_id = -1,
                                                  .name = "custom-out" };
                struct slurm_path_vars t1 = { .job_id = 13, .array_job_id = 6, .array_task_id = 1 };
                struct slurm_path_vars none = { .job_id = 1, .array_task_id = -1 };

                CHECK_EXPAND("/srv/slurm/jobs/out/custom-%j-%x.log", &custom,
                             "/srv/slurm/jobs/out/custom-3-custom-out.log");
                CHECK_EXPAND("slurm-%A_%a.out", &t1, "slurm-6_1.out");
                /* unknown values expand to nothing rather than to "(null)" */
                CHECK_EXPAND("x%u%N%x", &none, "x");
        }
        /* PATH_MAX: an error, never a cut name */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        CHECK_INT_EQ(slurm_expand_path(big, &plain, &got), -ENAMETOOLONG);
        CHECK(got == NULL);
        big[PATH_MAX - 1] = '\0';       /* control: 4095 bytes fit */
        if (CHECK_INT_EQ(slurm_expand_path(big, &plain, &got), 0))
                CHECK_INT_EQ(strlen(got), PATH_MAX - 1);
        free(got);
}

/* Patterns through a job object: relative ones and defaults are made
 * absolute against current_working_directory; "" for stderr is stdout's file. */
static void test_job_paths(void)
{
        static const struct {
                const char *out, *err, *cwd, *want_out, *want_err;
        } cases[] = {
                { "", "", "/w", "/w/slurm-5.out", NULL },
                { "rel-%j.out", "", "/w/", "/w/rel-5.out", NULL },
                { "/o/%x.out", "/o/%x.out", "/w", "/o/jn.out", NULL },  /* the same file */
                { "/o/%x.out", "e-%j", "/w", "/o/jn.out", "/w/e-5" },
                { "", "/o/e", "/w", "/w/slurm-5.out", "/o/e" },
                { "rel", "", "", NULL, NULL },  /* no working directory: unknown */
                { "rel", "", "not/absolute", NULL, NULL },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char json[512];
                struct slurm_job *j = NULL;

                snprintf(json, sizeof(json),
                         "{\"job_id\": 5, \"name\": \"jn\", \"job_state\": \"RUNNING\", \"standard_output\": "
                         "\"%s\", \"standard_error\": \"%s\", \"current_working_directory\": \"%s\"}",
                         cases[i].out, cases[i].err, cases[i].cwd);
                if (!CHECK_INT_EQ(slurm_parse_job(json, strlen(json), &j), 0))
                        continue;
                CHECK_STR_EQ(j->out_path, cases[i].want_out);
                CHECK_STR_EQ(j->err_path, cases[i].want_err);
                slurm_job_free(j);
        }
}

/* ---- output files ----------------------------------------------------------------- */

/* A job record in tmpdir: RUNNING unless state says otherwise. */
static struct slurm_job *tmp_job(const char *state, const char *out, const char *err, long long uid)
{
        char json[PATH_MAX + 2048];
        struct slurm_job *j = NULL;

        snprintf(json, sizeof(json),
                 "{\"job_id\": 77, \"name\": \"t\", \"job_state\": \"%s\", \"user_id\": %lld,"
                 " \"user_name\": \"u\", \"standard_output\": \"%s\", \"standard_error\": \"%s\","
                 " \"current_working_directory\": \"%s\", \"exit_code\": 0}",
                 state, uid, out, err, tmpdir);
        if (!CHECK_INT_EQ(slurm_parse_job(json, strlen(json), &j), 0))
                return NULL;
        return j;
}

static struct snap *tmp_snap(const struct slurm_job *j, size_t max, uint64_t *ret_sig)
{
        struct snap *s = NULL;
        uint64_t outs = 0;
        size_t nread = 0;

        if (!j || !CHECK_INT_EQ(slurm_job_snap(j, max, &s, &outs, &nread), 0))
                return NULL;
        /* what a list sees from stat alone is what the read saw */
        CHECK(outs == slurm_job_outputs_sig(j, max));
        *ret_sig = slurm_job_sig(j->sum, outs);
        return s;
}

static void test_outputs(void)
{
        char out[PATH_MAX + 32], err[PATH_MAX + 32], fifo[PATH_MAX + 32];
        long long me = (long long)getuid();
        struct slurm_job *j;
        struct snap *s;
        uint64_t sig1 = 0, sig2 = 0, sig3 = 0, sig4 = 0;

        snprintf(out, sizeof(out), "%s/slurm-77.out", tmpdir);
        snprintf(err, sizeof(err), "%s/77.err", tmpdir);
        snprintf(fifo, sizeof(fifo), "%s/fifo-77", tmpdir);

        /* no file yet (a job that just started): stdout absent */
        j = tmp_job("RUNNING", "", "", me);
        s = tmp_snap(j, 1024, &sig1);
        CHECK_ABSENT(s, "stdout");
        CHECK_ABSENT(s, "stderr");
        {
                char want[PATH_MAX + 40];

                snprintf(want, sizeof(want), "%s\n", out);
                CHECK_TEXT(s, "stdout_path", want);
                CHECK_TEXT(s, "stderr_path", want);
        }
        snap_free(s);
        slurm_job_free(j);

        /* the file appears: exact bytes, stderr a link to it */
        write_file(out, "tick 1\n");
        j = tmp_job("RUNNING", "", "", me);
        s = tmp_snap(j, 1024, &sig2);
        CHECK_FILE(s, "stdout", "tick 1\n", 7);
        if (CHECK(snap_at(s, "stderr") && snap_at(s, "stderr")->type == SNAP_LINK))
                CHECK_MEM_EQ(snap_at(s, "stderr")->content->data, snap_at(s, "stderr")->content->len,
                             "stdout", 6);
        CHECK(sig2 != sig1);
        snap_free(s);

        /* it grows: the signature moves with it */
        write_file(out, "tick 1\ntick 2\n");
        s = tmp_snap(j, 1024, &sig3);
        CHECK_FILE(s, "stdout", "tick 1\ntick 2\n", 14);
        CHECK(sig3 != sig2);
        snap_free(s);
        /* control: nothing changed, nothing moves */
        s = tmp_snap(j, 1024, &sig4);
        CHECK(sig4 == sig3);
        snap_free(s);
        /* rewritten to the same size: the mtime moves it */
        {
                struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };

                write_file(out, "tock 1\ntock 2\n");
                utimensat(AT_FDCWD, out, ts, 0);
                s = tmp_snap(j, 1024, &sig4);
                CHECK_FILE(s, "stdout", "tock 1\ntock 2\n", 14);
                CHECK(sig4 != sig3);
                snap_free(s);
        }
        /* the cap: the first bytes; past it, growth moves nothing */
        s = tmp_snap(j, 4, &sig1);
        CHECK_FILE(s, "stdout", "tock", 4);
        snap_free(s);
        write_file(out, "tock 1\ntock 2\ntock 3\n");
        s = tmp_snap(j, 4, &sig2);
        CHECK_FILE(s, "stdout", "tock", 4);
        CHECK(sig2 == sig1);
        snap_free(s);
        slurm_job_free(j);

        /* someone else's file (the job's user is not the file's owner): absent */
        j = tmp_job("RUNNING", "", "", me + 1);
        s = tmp_snap(j, 1024, &sig1);
        CHECK_ABSENT(s, "stdout");
        CHECK(snap_at(s, "stdout_path") != NULL);
        snap_free(s);
        slurm_job_free(j);
        /* a pending job: a file of its name is an older job's */
        j = tmp_job("PENDING", "", "", me);
        s = tmp_snap(j, 1024, &sig1);
        CHECK_ABSENT(s, "stdout");
        snap_free(s);
        slurm_job_free(j);
        /* a final job: still shown (control of the two above) */
        j = tmp_job("COMPLETED", "", "", me);
        s = tmp_snap(j, 1024, &sig1);
        CHECK_FILE(s, "stdout", "tock 1\ntock 2\ntock 3\n", 21);
        CHECK_TEXT(s, "exit_code", "0\n");
        snap_free(s);
        slurm_job_free(j);

        /* --error to a file of its own */
        write_file(err, "oops\n");
        j = tmp_job("RUNNING", "", "77.err", me);
        s = tmp_snap(j, 1024, &sig1);
        CHECK_FILE(s, "stderr", "oops\n", 5);
        CHECK(snap_at(s, "stderr")->type == SNAP_FILE);
        snap_free(s);
        slurm_job_free(j);

        /* a FIFO and a device are never opened for reading: absent, no hang */
        if (CHECK(mkfifo(fifo, 0644) == 0)) {
                j = tmp_job("RUNNING", "fifo-77", "/dev/zero", me);
                s = tmp_snap(j, 1024, &sig1);
                CHECK_ABSENT(s, "stdout");
                CHECK_ABSENT(s, "stderr");
                snap_free(s);
                slurm_job_free(j);
        }
        unlink(fifo);
        unlink(out);
        unlink(err);
}

/* ---- error replies and hostile bodies ---------------------------------------------------- */

static void test_reply_errors(void)
{
        static const struct { const char *fixture; long status; int want; } files[] = {
                { "slurm-error-unknown.json", 500, -ENOENT },
                { "slurm-error-token.json", 500, -EACCES },
                { "slurm-error-unknown-v36.json", 500, -ENOENT },
        };
        static const struct { const char *body; long status; int want; } bodies[] = {
                { "Authentication failure", 401, -EACCES },
                { "", 403, -EACCES },
                { "Unable find requested URL. Please view /openapi/v3 for API reference.", 404, -ENOENT },
                { "{\"errors\": [], \"jobs\": []}", 500, -EIO },        /* v0.0.36, bad token */
                { "{\"errors\": [{\"error_number\": 9002}]}", 400, -EIO },
                { "{\"errors\": [{\"error_number\": \"2017\"}]}", 500, -EIO },  /* a string: no */
                { "{\"errors\": {\"error_number\": 2017}}", 500, -EIO },
                { "{\"errors\": [{\"error\": \"unknown job 5\", \"error_number\": 12}]}", 500, -EIO },
                { "<html>busy</html>", 503, -EAGAIN },
                { "{\"errors\": [", 500, -EIO },
        };

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                size_t len = 0;
                char *body = fixture_raw(files[i].fixture, &len);

                if (body && !CHECK_INT_EQ(slurm_reply_errno(files[i].status, body, len), files[i].want))
                        fprintf(stderr, "    %s\n", files[i].fixture);
                free(body);
        }
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
                if (!CHECK_INT_EQ(slurm_reply_errno(bodies[i].status, bodies[i].body,
                                                    strlen(bodies[i].body)), bodies[i].want))
                        fprintf(stderr, "    %ld %s\n", bodies[i].status, bodies[i].body);
}

static int split_r(const char *body, size_t *n)
{
        struct jobs js;
        int r = parse_all(body, strlen(body), &js);

        *n = js.n;
        jobs_free(&js);
        return r;
}

static void test_split_hostile(void)
{
        static const struct { const char *body; int want; size_t n; } cases[] = {
                { "{\"jobs\": []}", 0, 0 },
                { "{\"meta\": {}, \"errors\": [], \"jobs\": [{\"job_id\": 1}, {\"job_id\": 2}]}", 0, 2 },
                /* braces inside strings do not count */
                { "{\"a\": \"}{[\", \"jobs\": [{\"job_id\": 1, \"x\": \"]}\\\"}\"}]}", 0, 1 },
                /* a nested "jobs" is not the list */
                { "{\"meta\": {\"jobs\": [{\"job_id\": 9}]}, \"jobs\": []}", 0, 0 },
                { "{\"x\": [{\"jobs\": [{\"job_id\": 9}]}], \"jobs\": [{\"job_id\": 1}]}", 0, 1 },
                { "", -EBADMSG, 0 },
                { "Authentication failure", -EBADMSG, 0 },
                { "{}", -EBADMSG, 0 },
                { "{\"errors\": []}", -EBADMSG, 0 },
                { "{\"jobs\": {}}", -EBADMSG, 0 },
                { "{\"jobs\": null}", -EBADMSG, 0 },
                { "[{\"jobs\": []}]", -EBADMSG, 0 },
                { "{\"jobs\": [1]}", -EBADMSG, 0 },
                { "{\"jobs\": [[]]}", -EBADMSG, 0 },
                { "{\"\\u006aobs\": [{\"job_id\": 1}]}", -EBADMSG, 0 },        /* escaped key */
                { "{\"jobs\": [{\"job_id\": 1}]} x", -EBADMSG, 0 },
                /* objects are handed on as they end: the caller drops them on error */
                { "{\"jobs\": [{\"job_id\": 1}]", -EBADMSG, 1 },
                { "{\"jobs\": [{\"job_id\": 1]}", -EBADMSG, 0 },
                /* an element that is not a job stops the whole reply */
                { "{\"jobs\": [{\"job_id\": \"1\"}]}", -EBADMSG, 0 },
                { "{\"jobs\": [{\"job_id\": 0}]}", -EBADMSG, 0 },
                { "{\"jobs\": [{\"job_id\": 4294967296}]}", -EBADMSG, 0 },
                { "{\"jobs\": [{\"name\": \"x\"}]}", -EBADMSG, 0 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t n = 0;

                if (!CHECK_INT_EQ(split_r(cases[i].body, &n), cases[i].want) ||
                    !CHECK_INT_EQ(n, cases[i].n))
                        fprintf(stderr, "    body: %s\n", cases[i].body);
        }
        /* one job object over SLURM_SPLIT_ELEMENT_MAX: EFBIG; just under: fine */
        for (int over = 0; over <= 1; over++) {
                size_t fill = SLURM_SPLIT_ELEMENT_MAX - 40 + (over ? 40 : 0);
                char *body = malloc(fill + 64);
                size_t n = 0;

                if (!CHECK(body))
                        return;
                static const char head[] = "{\"jobs\": [{\"job_id\": 1, \"x\": \"";

                strcpy(body, head);
                memset(body + strlen(head), 'x', fill);
                strcpy(body + strlen(head) + fill, "\"}]}");
                CHECK_INT_EQ(split_r(body, &n), over ? -EFBIG : 0);
                free(body);
        }
}

/* Fields of the wrong type are left out one by one, not the job. */
static void test_wrong_types(void)
{
        static const char json[] =
                "{\"job_id\": 8, \"job_state\": [\"RUNNING\"], \"state_reason\": 5, \"name\": null,"
                " \"user_name\": {}, \"exit_code\": \"768\", \"submit_time\": \"today\","
                " \"start_time\": -5, \"standard_output\": 3, \"current_working_directory\": true,"
                " \"array_job_id\": \"6\", \"array_task_id\": \"2\", \"user_id\": \"0\"}";
        struct slurm_job *j = NULL;
        struct snap *s = NULL;
        uint64_t outs;
        size_t nread;

        if (!CHECK_INT_EQ(slurm_parse_job(json, strlen(json), &j), 0))
                return;
        CHECK_STR_EQ(j->name, "8");
        CHECK(!j->terminal && !j->started);     /* no state string: not started either */
        CHECK(j->uid == -1 && j->out_path == NULL && j->err_path == NULL);
        if (CHECK_INT_EQ(slurm_job_snap(j, 1024, &s, &outs, &nread), 0)) {
                CHECK_ABSENT(s, "state");
                CHECK_TEXT(s, "reason", "5\n");
                CHECK_ABSENT(s, "name");
                CHECK_ABSENT(s, "exit_code");
                CHECK_ABSENT(s, "submit_time");
                CHECK_ABSENT(s, "start_time");
                CHECK_ABSENT(s, "stdout_path");
                CHECK_TEXT(s, "work_dir", "true\n");     /* as sent, like every scalar */
                CHECK(snap_at(s, "job.json") != NULL);
        }
        snap_free(s);
        slurm_job_free(j);
        /* a NUL inside a value is not cut into a shorter path */
        {
                static const char nul[] = "{\"job_id\": 9, \"job_state\": \"RUNNING\", \"standard_output\":"
                                          " \"/etc/passwd\\u0000x\", \"current_working_directory\": \"/w\"}";

                j = NULL;
                if (CHECK_INT_EQ(slurm_parse_job(nul, strlen(nul), &j), 0))
                        CHECK(j->out_path == NULL);
                slurm_job_free(j);
        }
}

/* ---- tokens --------------------------------------------------------------------------- */

static void check_token(int line, const char *text, const char *want)
{
        char *got = NULL;
        int r = slurm_token_parse(text, strlen(text), &got);

        if (want) {
                if (check_int(__FILE__, line, "slurm_token_parse", "0", r, 0))
                        check_str(__FILE__, line, "token", "want", got, want);
        } else {
                check_int(__FILE__, line, "slurm_token_parse", "-EINVAL", r, -EINVAL);
                check_bool(__FILE__, line, "untouched", got == NULL);
        }
        slurm_token_free(got);
}
#define CHECK_TOKEN(text, want) check_token(__LINE__, (text), (want))

static void test_token_parse(void)
{
        CHECK_TOKEN("eyJhbGc.eyJleHA.sig", "eyJhbGc.eyJleHA.sig");
        CHECK_TOKEN("eyJhbGc.eyJleHA.sig\n", "eyJhbGc.eyJleHA.sig");
        CHECK_TOKEN("  eyJhbGc.eyJleHA.sig \r\n\n", "eyJhbGc.eyJleHA.sig");
        CHECK_TOKEN("SLURM_JWT=eyJhbGc.eyJleHA.sig\n", "eyJhbGc.eyJleHA.sig");  /* scontrol token */
        CHECK_TOKEN("export SLURM_JWT=abc\n", "abc");
        CHECK_TOKEN("SLURM_JWT=\"abc\"\n", "abc");
        CHECK_TOKEN("SLURM_JWT='abc'", "abc");
        CHECK_TOKEN("# a comment\n\nSLURM_JWT=abc\n", "abc");
        CHECK_TOKEN("some words\nSLURM_JWT=abc\n", "abc");      /* the line wins over prose */
        CHECK_TOKEN("", NULL);
        CHECK_TOKEN("\n\n# only a comment\n", NULL);
        CHECK_TOKEN("SLURM_JWT=\n", NULL);
        CHECK_TOKEN("two\nraw lines\n", NULL);
        CHECK_TOKEN("a token with spaces", NULL);
        CHECK_TOKEN("SLURM_JWT=abc\rX-Evil: 1\n", NULL);       /* no header injection */
        CHECK_TOKEN("SLURM_JWT=ab\001c\n", NULL);
        CHECK_TOKEN("SLURM_JWT=\"abc'\n", NULL);
        CHECK_TOKEN("SLURM_JWT=abc;rm\n", NULL);
        CHECK(slurm_token_ok("abc", 3) && !slurm_token_ok("", 0) && !slurm_token_ok("a b", 3));
        {
                char big[SLURM_TOKEN_MAX + 2];

                memset(big, 'a', sizeof(big));
                CHECK(slurm_token_ok(big, SLURM_TOKEN_MAX));
                CHECK(!slurm_token_ok(big, SLURM_TOKEN_MAX + 1));
        }
}

static void test_token_file(void)
{
        static const mode_t refused[] = { 0640, 0604, 0644, 0620, 0602, 0610 };
        char path[PATH_MAX + 32], *log;
        struct stat st;
        char *tok = NULL;

        snprintf(path, sizeof(path), "%s/token", tmpdir);
        write_file(path, "SLURM_JWT=abc.def.ghi\n");
        CHECK(chmod(path, 0600) == 0);
        if (CHECK_INT_EQ(slurm_token_load(path, &tok, &st), 0))
                CHECK_STR_EQ(tok, "abc.def.ghi");
        slurm_token_free(tok);
        tok = NULL;
        /* group or others may read it (or write it): refused, like ssh, with
         * one line that says what to do */
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                CHECK(chmod(path, refused[i]) == 0);
                capture_begin();
                if (!CHECK_INT_EQ(slurm_token_load(path, &tok, &st), -EACCES))
                        fprintf(stderr, "    mode %04o\n", (unsigned)refused[i]);
                log = capture_end();
                CHECK_INT_EQ(count_lines(log, "\n"), 1);
                CHECK(strstr(log, "chmod 600") && strstr(log, path));
                CHECK(!strstr(log, "abc.def"));         /* never the token */
                free(log);
                CHECK(tok == NULL);
        }
        /* control: owner-only modes are fine, and silent */
        CHECK(chmod(path, 0400) == 0);
        capture_begin();
        CHECK_INT_EQ(slurm_token_load(path, &tok, &st), 0);
        log = capture_end();
        CHECK_STR_EQ(log, "");
        free(log);
        slurm_token_free(tok);
        tok = NULL;
        capture_begin();
        /* another user's file (only root can make one here) */
        if (geteuid() == 0) {
                CHECK(chown(path, 65534, 65534) == 0);
                CHECK_INT_EQ(slurm_token_load(path, &tok, &st), -EACCES);
                CHECK(chown(path, 0, 0) == 0);
        }
        /* content and kind */
        CHECK(chmod(path, 0600) == 0);
        write_file(path, "\n");
        CHECK_INT_EQ(slurm_token_load(path, &tok, &st), -EINVAL);
        CHECK_INT_EQ(slurm_token_load(tmpdir, &tok, &st), -EINVAL);     /* a directory */
        unlink(path);
        CHECK_INT_EQ(slurm_token_load(path, &tok, &st), -ENOENT);
        free(capture_end());
        CHECK(tok == NULL);
}

static void test_token_expiry(void)
{
        /* {"alg":"HS256","typ":"JWT"} . {"exp":1796209996,"iat":1796123596,"sun":"root"} . sig */
        CHECK_INT_EQ(slurm_token_expiry("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                                        "eyJleHAiOjE3OTYyMDk5OTYsImlhdCI6MTc5NjEyMzU5Niwic3VuIjoicm9vdCJ9."
                                        "c2ln"),
                     1796209996);
        /* padded base64 is fine too; no exp, or garbage, is 0 */
        CHECK_INT_EQ(slurm_token_expiry("x.eyJleHAiOjEwfQ==.y"), 10);
        CHECK_INT_EQ(slurm_token_expiry("x.eyJpYXQiOjEwfQ.y"), 0);
        CHECK_INT_EQ(slurm_token_expiry("x.eyJleHAiOiIxMCJ9.y"), 0);   /* "exp": "10" */
        CHECK_INT_EQ(slurm_token_expiry("abc"), 0);
        CHECK_INT_EQ(slurm_token_expiry("a.b"), 0);
        CHECK_INT_EQ(slurm_token_expiry("a.!!!.b"), 0);
        CHECK_INT_EQ(slurm_token_expiry("a.eyJleHAiOjEwfQ=x.b"), 0);
}

int main(void)
{
        char tmpl[] = "/tmp/test_slurm.XXXXXX";

        log_max_level = LOG_LVL_WARN;
        if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        test_names_and_order();
        test_failed_job();
        test_states();
        test_paths();
        test_signatures();
        test_signature_rules();
        test_exit_codes();
        test_name_rules();
        test_expand();
        test_job_paths();
        test_outputs();
        test_reply_errors();
        test_split_hostile();
        test_wrong_types();
        test_token_parse();
        test_token_file();
        test_token_expiry();
        rmdir(tmpdir);
        return CHECK_DONE();
}
