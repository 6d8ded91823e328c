/* Unit tests of options.c: defaults, every long option in both spellings,
 * -o lists mixing ours and libfuse's, usage errors, --help/--version, and
 * the mount point. The parser's own messages go to /dev/null while it runs
 * (they are expected); the checks' messages are printed after. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "jobfs/options.h"

static char tmpdir[PATH_MAX];  /* real path of this test's mkdtemp dir */
static char mnt[PATH_MAX + 16];  /* tmpdir/mnt, an existing directory */
static char mnt2[PATH_MAX + 16]; /* tmpdir/mnt2 */

/* Runs options_parse on a NULL-terminated argument list (after "jobfs"),
 * with stdout and stderr sent to /dev/null. */
static enum options_result parse_v(struct options *o, const char *first, va_list ap)
{
        char *argv[64];
        int argc = 0, saved_out, saved_err, devnull;
        enum options_result res;

        argv[argc++] = (char *)"jobfs";
        for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
                argv[argc++] = (char *)a;
        argv[argc] = NULL;
        fflush(stdout);
        fflush(stderr);
        saved_out = dup(STDOUT_FILENO);
        saved_err = dup(STDERR_FILENO);
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) {
                dup2(devnull, STDOUT_FILENO);
                dup2(devnull, STDERR_FILENO);
                close(devnull);
        }
        res = options_parse(argc, argv, o);
        fflush(stdout);
        fflush(stderr);
        dup2(saved_out, STDOUT_FILENO);
        dup2(saved_err, STDERR_FILENO);
        close(saved_out);
        close(saved_err);
        return res;
}

static enum options_result parse(struct options *o, const char *first, ...)
{
        enum options_result res;
        va_list ap;

        va_start(ap, first);
        res = parse_v(o, first, ap);
        va_end(ap);
        return res;
}

/* Checks that the arguments give want, freeing the result either way. */
#define CHECK_RESULT(want, ...) check_result(__FILE__, __LINE__, (want), __VA_ARGS__, (const char *)NULL)
static void check_result(const char *file, int line, enum options_result want, const char *first, ...)
{
        struct options o;
        enum options_result res;
        va_list ap;

        va_start(ap, first);
        res = parse_v(&o, first, ap);
        va_end(ap);
        if (!check_int(file, line, "options_parse(...)", "want", res, want)) {
                va_start(ap, first);
                fputs("    args:", stderr);
                for (const char *a = first; a; a = va_arg(ap, const char *))
                        fprintf(stderr, " '%s'", a);
                fputc('\n', stderr);
                va_end(ap);
        }
        options_free(&o);
}

#define CHECK_USAGE(...) CHECK_RESULT(OPTIONS_EXIT_USAGE, __VA_ARGS__)
#define CHECK_RUN(...) CHECK_RESULT(OPTIONS_RUN, __VA_ARGS__)

static void test_defaults(void)
{
        struct options o;

        if (!CHECK_INT_EQ(parse(&o, mnt, NULL), OPTIONS_RUN))
                return;
        CHECK_STR_EQ(o.bacalhau_url, "http://127.0.0.1:1234");
        CHECK_STR_EQ(o.muse_url, "http://127.0.0.1:8000/api/");
        CHECK(o.client_id == NULL);
        CHECK(o.cacert == NULL);
        CHECK(o.slurm_url == NULL);     /* no slurm/ unless asked for */
        CHECK_STR_EQ(o.slurm_api, "auto");
        CHECK(o.slurm_user == NULL && o.slurm_token_file == NULL);
        CHECK(o.ttl == 1.0);
        CHECK(o.timeout == 10.0);
        CHECK(o.poll_interval == 1.0);
        CHECK(o.max_stale == 0.0);
        CHECK_INT_EQ(o.max_reply, 16 << 20);
        CHECK_INT_EQ(o.cache_max, 10000);
        CHECK(!o.no_notify && !o.insecure && !o.foreground && !o.debug);
        CHECK_STR_EQ(o.mountpoint, mnt);
        CHECK_INT_EQ(o.fuse_argc, 1);
        CHECK_STR_EQ(o.fuse_argv[0], "jobfs");
        CHECK(o.fuse_argv[1] == NULL);
        options_free(&o);
        CHECK(o.mountpoint == NULL && o.fuse_argv == NULL && o.bacalhau_url == NULL);
        options_free(&o);       /* twice is fine */
        options_free(NULL);
}

/* Each option as --name=value and as --name value. */
static void test_long_options(void)
{
        for (int sep = 0; sep <= 1; sep++) {
                static const char *const opts[][2] = {
                        { "bacalhau-url", "https://bacalhau.example.org:1234" },
                        { "muse-url", "http://147.100.179.250/api" },
                        { "client-id", "ac13188e93c97a9c2e7cf8e86c7313156a73436036f30da1ececc2ce79f9ea51" },
                        { "ttl", "2.5" },
                        { "timeout", "0.5" },
                        { "poll-interval", "0" },
                        { "max-stale", "3600" },
                        { "max-reply", "4K" },
                        { "cache-max", "7" },
                        { "cacert", "/etc/ssl/certs/ca.pem" },
                        { "slurm-url", "http://127.0.0.1:6820" },
                        { "slurm-api", "v0.0.37" },
                        { "slurm-user", "alice" },
                        { "slurm-token-file", "/home/alice/.slurm_token" },
                };
                const size_t n = sizeof(opts) / sizeof(opts[0]);
                char joined[16][200];
                const char *args[40];
                char *argv[48];
                int argc = 0;
                struct options o;
                enum options_result res;

                argv[argc++] = (char *)"jobfs";
                for (size_t i = 0; i < n; i++) {
                        if (sep) {
                                snprintf(joined[i], sizeof(joined[i]), "--%s", opts[i][0]);
                                args[2 * i] = joined[i];
                                args[2 * i + 1] = opts[i][1];
                                argv[argc++] = (char *)args[2 * i];
                                argv[argc++] = (char *)args[2 * i + 1];
                        } else {
                                snprintf(joined[i], sizeof(joined[i]), "--%s=%s", opts[i][0], opts[i][1]);
                                argv[argc++] = joined[i];
                        }
                }
                argv[argc++] = (char *)"--no-notify";
                argv[argc++] = (char *)"--insecure";
                argv[argc++] = (char *)"-f";
                argv[argc++] = mnt;
                argv[argc] = NULL;
                fflush(stderr);
                res = options_parse(argc, argv, &o);
                if (!CHECK_INT_EQ(res, OPTIONS_RUN)) {
                        fprintf(stderr, "    form: %s\n", sep ? "--name value" : "--name=value");
                        options_free(&o);
                        continue;
                }
                CHECK_STR_EQ(o.bacalhau_url, "https://bacalhau.example.org:1234");
                CHECK_STR_EQ(o.muse_url, "http://147.100.179.250/api");
                CHECK_STR_EQ(o.client_id, "ac13188e93c97a9c2e7cf8e86c7313156a73436036f30da1ececc2ce79f9ea51");
                CHECK(o.ttl == 2.5);
                CHECK(o.timeout == 0.5);
                CHECK(o.poll_interval == 0.0);
                CHECK(o.max_stale == 3600.0);
                CHECK_INT_EQ(o.max_reply, 4096);
                CHECK_INT_EQ(o.cache_max, 7);
                CHECK_STR_EQ(o.cacert, "/etc/ssl/certs/ca.pem");
                CHECK_STR_EQ(o.slurm_url, "http://127.0.0.1:6820");
                CHECK_STR_EQ(o.slurm_api, "v0.0.37");
                CHECK_STR_EQ(o.slurm_user, "alice");
                CHECK_STR_EQ(o.slurm_token_file, "/home/alice/.slurm_token");
                CHECK(o.no_notify && o.insecure && o.foreground && !o.debug);
                CHECK_STR_EQ(o.mountpoint, mnt);
                CHECK_INT_EQ(o.fuse_argc, 1);
                options_free(&o);
        }
}

static void test_values(void)
{
        struct options o;

        /* size suffixes */
        if (CHECK_INT_EQ(parse(&o, "--max-reply=2M", mnt, NULL), OPTIONS_RUN))
                CHECK_INT_EQ(o.max_reply, 2 << 20);
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, "--max-reply", "1G", mnt, NULL), OPTIONS_RUN))
                CHECK_INT_EQ(o.max_reply, 1 << 30);
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, "--max-reply=1000", mnt, NULL), OPTIONS_RUN))
                CHECK_INT_EQ(o.max_reply, 1000);
        options_free(&o);
        /* -d is debug and foreground; a later option wins over an earlier one */
        if (CHECK_INT_EQ(parse(&o, "-d", "--ttl=3", "--ttl=4", mnt, NULL), OPTIONS_RUN)) {
                CHECK(o.debug && o.foreground);
                CHECK(o.ttl == 4.0);
        }
        options_free(&o);
        /* options after the mount point */
        if (CHECK_INT_EQ(parse(&o, mnt, "--ttl", "0", NULL), OPTIONS_RUN))
                CHECK(o.ttl == 0.0);
        options_free(&o);
        /* a value may itself contain '=' or look like an option */
        if (CHECK_INT_EQ(parse(&o, "--client-id", "--x=y", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.client_id, "--x=y");
        options_free(&o);
}

/* A value that holds an underscore, given as --name=value. Underscores are
 * refused in long option *names* (--poll_interval), not in values. */
static void test_underscore_in_value(void)
{
        struct options o;

        if (CHECK_INT_EQ(parse(&o, "--cacert=/etc/ssl/ca_bundle.pem", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.cacert, "/etc/ssl/ca_bundle.pem");
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, "--client-id=team_a", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.client_id, "team_a");
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, "--bacalhau-url=http://bacalhau_1:1234", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.bacalhau_url, "http://bacalhau_1:1234");
        options_free(&o);
        /* control twin: the separate-value form of the same */
        if (CHECK_INT_EQ(parse(&o, "--cacert", "/etc/ssl/ca_bundle.pem", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.cacert, "/etc/ssl/ca_bundle.pem");
        options_free(&o);
}

static void test_mount_options(void)
{
        struct options o;

        /* ours (with '_' or '-') applied; libfuse's passed on as -o X, in order */
        if (CHECK_INT_EQ(parse(&o, "-o", "allow_other,bacalhau_url=http://h:1,no_notify,ttl=3,"
                               "max_read=4096,poll-interval=2,max_reply=1M,client_id=c1,cache_max=5", mnt, NULL),
                         OPTIONS_RUN)) {
                CHECK_STR_EQ(o.bacalhau_url, "http://h:1");
                CHECK(o.no_notify);
                CHECK(o.ttl == 3.0);
                CHECK(o.poll_interval == 2.0);
                CHECK_INT_EQ(o.max_reply, 1 << 20);
                CHECK_STR_EQ(o.client_id, "c1");
                CHECK_INT_EQ(o.cache_max, 5);
                if (CHECK_INT_EQ(o.fuse_argc, 5)) {
                        CHECK_STR_EQ(o.fuse_argv[0], "jobfs");
                        CHECK_STR_EQ(o.fuse_argv[1], "-o");
                        CHECK_STR_EQ(o.fuse_argv[2], "allow_other");
                        CHECK_STR_EQ(o.fuse_argv[3], "-o");
                        CHECK_STR_EQ(o.fuse_argv[4], "max_read=4096");
                        CHECK(o.fuse_argv[5] == NULL);
                }
        }
        options_free(&o);
        /* -oLIST attached, several -o, and fstab's "-o" before the mount point */
        if (CHECK_INT_EQ(parse(&o, "-oinsecure,default_permissions", "-o", "max_stale=60", "-o",
                               "fsname=jobfs", mnt, NULL), OPTIONS_RUN)) {
                CHECK(o.insecure);
                CHECK(o.max_stale == 60.0);
                if (CHECK_INT_EQ(o.fuse_argc, 5)) {
                        CHECK_STR_EQ(o.fuse_argv[2], "default_permissions");
                        CHECK_STR_EQ(o.fuse_argv[4], "fsname=jobfs");
                }
        }
        options_free(&o);
        /* empty items in a list are skipped */
        if (CHECK_INT_EQ(parse(&o, "-o", ",ttl=5,,", mnt, NULL), OPTIONS_RUN)) {
                CHECK(o.ttl == 5.0);
                CHECK_INT_EQ(o.fuse_argc, 1);
        }
        options_free(&o);
        /* what mount(8) and mount.fuse3 hand on from an fstab line: the
         * fstab-only options are dropped, the kernel's flags go to libfuse */
        if (CHECK_INT_EQ(parse(&o, "jobfs", mnt, "-o", "rw,defaults,noauto,_netdev,nofail,user,users,"
                               "x-systemd.automount,x-systemd.idle-timeout=600,comment=x,relatime,"
                               "lazytime,ttl=2,nosuid,nodev", NULL), OPTIONS_RUN)) {
                CHECK(o.ttl == 2.0);
                if (CHECK_INT_EQ(o.fuse_argc, 7)) {
                        CHECK_STR_EQ(o.fuse_argv[2], "rw");
                        CHECK_STR_EQ(o.fuse_argv[4], "nosuid");
                        CHECK_STR_EQ(o.fuse_argv[6], "nodev");
                }
        }
        options_free(&o);
        /* control twin: names that only look alike are libfuse's to judge */
        if (CHECK_INT_EQ(parse(&o, "-o", "xsystemd,default,netdev,commentx", mnt, NULL), OPTIONS_RUN)) {
                if (CHECK_INT_EQ(o.fuse_argc, 9)) {
                        CHECK_STR_EQ(o.fuse_argv[2], "xsystemd");
                        CHECK_STR_EQ(o.fuse_argv[4], "default");
                        CHECK_STR_EQ(o.fuse_argv[6], "netdev");
                        CHECK_STR_EQ(o.fuse_argv[8], "commentx");
                }
        }
        options_free(&o);
        /* the slurm options in mount form, as in an fstab line */
        if (CHECK_INT_EQ(parse(&o, "-o", "slurm_url=http://ctl:6820,slurm_api=v0.0.36,slurm_user=bob,"
                               "slurm_token_file=/etc/jobfs/token", mnt, NULL), OPTIONS_RUN)) {
                CHECK_STR_EQ(o.slurm_url, "http://ctl:6820");
                CHECK_STR_EQ(o.slurm_api, "v0.0.36");
                CHECK_STR_EQ(o.slurm_user, "bob");
                CHECK_STR_EQ(o.slurm_token_file, "/etc/jobfs/token");
                CHECK_INT_EQ(o.fuse_argc, 1);
        }
        options_free(&o);
        /* a mount-option value with an underscore is kept whole */
        if (CHECK_INT_EQ(parse(&o, "-o", "cacert=/etc/ssl/ca_bundle.pem", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.cacert, "/etc/ssl/ca_bundle.pem");
        options_free(&o);
}

static void test_usage_errors(void)
{
        /* bad URLs */
        CHECK_USAGE("--bacalhau-url=ftp://h:1", mnt);
        CHECK_USAGE("--bacalhau-url=http://", mnt);
        CHECK_USAGE("--bacalhau-url=http:///api", mnt);
        CHECK_USAGE("--bacalhau-url=127.0.0.1:1234", mnt);
        CHECK_USAGE("--muse-url", "http://a b/", mnt);
        CHECK_USAGE("--muse-url=", mnt);
        CHECK_USAGE("-o", "muse_url=localhost", mnt);
        /* bad numbers */
        CHECK_USAGE("--ttl=abc", mnt);
        CHECK_USAGE("--ttl=-1", mnt);
        CHECK_USAGE("--ttl=1s", mnt);
        CHECK_USAGE("--ttl=inf", mnt);
        CHECK_USAGE("--ttl=nan", mnt);
        CHECK_USAGE("--ttl=1e300", mnt);
        CHECK_USAGE("--ttl=", mnt);
        CHECK_USAGE("--timeout=0", mnt);        /* a deadline must be positive */
        CHECK_USAGE("--poll-interval=x", mnt);
        CHECK_USAGE("--max-stale=-5", mnt);
        CHECK_USAGE("--max-reply=0", mnt);
        CHECK_USAGE("--max-reply=-5", mnt);
        CHECK_USAGE("--max-reply=10X", mnt);
        CHECK_USAGE("--max-reply=1KB", mnt);
        CHECK_USAGE("--max-reply=99999999999999999999", mnt);
        CHECK_USAGE("--max-reply=99999999999G", mnt);
        CHECK_USAGE("--cache-max=1K", mnt);     /* counts take no suffix */
        CHECK_USAGE("--cache-max=1.5", mnt);
        CHECK_USAGE("-o", "ttl=abc", mnt);
        /* slurm: a URL, and one of the API versions jobfs speaks */
        CHECK_USAGE("--slurm-url=localhost:6820", mnt);
        CHECK_USAGE("--slurm-api=v0.0.39", mnt);
        CHECK_USAGE("--slurm-api=V0.0.38", mnt);
        CHECK_USAGE("--slurm-api=", mnt);
        CHECK_USAGE("-o", "slurm_api=latest", mnt);
        CHECK_USAGE("--slurm-token=abc", mnt);  /* a token is never an option */
        /* unknown options, underscores in long names, flags with values */
        CHECK_USAGE("--nope", mnt);
        CHECK_USAGE("--poll_interval=1", mnt);
        CHECK_USAGE("--no_notify", mnt);
        CHECK_USAGE("-x", mnt);
        CHECK_USAGE("--no-notify=1", mnt);
        CHECK_USAGE("-o", "insecure=yes", mnt);
        /* missing values */
        CHECK_USAGE(mnt, "--ttl");
        CHECK_USAGE(mnt, "-o");
        /* -o ro: jobfs is read-only anyway and says so */
        CHECK_USAGE("-o", "ro", mnt);
        CHECK_USAGE("-o", "allow_other,ro", mnt);
        CHECK_USAGE("-oro", mnt);
        /* mount points: none, three positionals, missing */
        CHECK_USAGE("--ttl=1", NULL);
        CHECK_USAGE("jobfs", mnt, mnt2);
        CHECK_USAGE(mnt, mnt2, mnt);
        {
                char missing[PATH_MAX + 16];

                snprintf(missing, sizeof(missing), "%s/does-not-exist", tmpdir);
                CHECK_USAGE(missing);
        }
        /* control twins of the above: the nearest good spellings */
        CHECK_RUN("--bacalhau-url=http://h:1", mnt);
        CHECK_RUN("--bacalhau-url=http://h/", mnt);
        CHECK_RUN("--ttl=0", mnt);
        CHECK_RUN("--ttl=1e3", mnt);
        CHECK_RUN("--timeout=0.001", mnt);
        CHECK_RUN("--max-reply=1K", mnt);
        CHECK_RUN("--cache-max=1", mnt);
        CHECK_RUN("-o", "rw_something_else", mnt);
        CHECK_RUN("-o", "insecure", mnt);
        CHECK_RUN("--slurm-url=http://localhost:6820", mnt);
        CHECK_RUN("--slurm-api=auto", mnt);
        CHECK_RUN("--slurm-api=v0.0.38", mnt);
        CHECK_RUN("-o", "slurm_api=v0.0.37", mnt);
}

/* The Bacalhau v1 options: a choice, a string, a path. */
static void test_bacalhau_options(void)
{
        static const char *const apis[] = { "auto", "v0", "v1" };
        struct options o;

        if (CHECK_INT_EQ(parse(&o, mnt, NULL), OPTIONS_RUN)) {
                CHECK_INT_EQ(o.bacalhau_api, 0);        /* auto */
                CHECK(o.namespace == NULL && o.bacalhau_token_file == NULL);
        }
        options_free(&o);
        for (int i = 0; i < 3; i++) {
                char arg[32];

                snprintf(arg, sizeof(arg), "--bacalhau-api=%s", apis[i]);
                if (CHECK_INT_EQ(parse(&o, arg, mnt, NULL), OPTIONS_RUN))
                        CHECK_INT_EQ(o.bacalhau_api, i);
                options_free(&o);
        }
        if (CHECK_INT_EQ(parse(&o, "-o", "bacalhau_api=v1,namespace=team_a,bacalhau_token_file=/t",
                               mnt, NULL), OPTIONS_RUN)) {
                CHECK_INT_EQ(o.bacalhau_api, 2);
                CHECK_STR_EQ(o.namespace, "team_a");
                CHECK_STR_EQ(o.bacalhau_token_file, "/t");
        }
        options_free(&o);
        CHECK_USAGE("--bacalhau-api=v2", mnt);
        CHECK_USAGE("--bacalhau-api=V1", mnt);
        CHECK_USAGE("--bacalhau-api=", mnt);
        CHECK_USAGE("--namespace=", mnt);
        CHECK_USAGE("-o", "bacalhau_token_file=", mnt);
        CHECK_RUN("--bacalhau-api", "v0", mnt);         /* twin: a good value, apart */
}

static void test_help_version(void)
{
        struct options o;
        char buf[8192];
        size_t n;
        FILE *f;
        static const char *const names[] = {
                "--bacalhau-url", "--muse-url", "--client-id", "--ttl", "--timeout",
                "--poll-interval", "--no-notify", "--max-stale", "--max-reply", "--cache-max",
                "--insecure", "--cacert", "--slurm-url", "--slurm-api", "--slurm-user",
                "--slurm-token-file", "--help", "--version",
        };

        CHECK_RESULT(OPTIONS_EXIT_OK, "--help");
        CHECK_RESULT(OPTIONS_EXIT_OK, "-h");
        CHECK_RESULT(OPTIONS_EXIT_OK, "-V");
        CHECK_RESULT(OPTIONS_EXIT_OK, "--version");
        /* help wins over what comes after it, even a bad option */
        CHECK_RESULT(OPTIONS_EXIT_OK, "--help", "--nope");
        CHECK_RESULT(OPTIONS_EXIT_OK, mnt, "-V");
        /* and o is safe to free */
        CHECK_INT_EQ(parse(&o, "--help", NULL), OPTIONS_EXIT_OK);
        options_free(&o);

        /* --help names every option */
        f = tmpfile();
        if (!CHECK(f))
                return;
        options_print_help(f);
        rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        CHECK(n > 0 && n < sizeof(buf) - 1);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (!CHECK(strstr(buf, names[i]) != NULL))
                        fprintf(stderr, "    --help does not mention %s\n", names[i]);
}

static void test_mountpoint(void)
{
        struct options o;
        char cwd[PATH_MAX], rel[PATH_MAX + 8];

        /* mount.fuse3 (fstab) runs `jobfs SOURCE MOUNTPOINT -o ...`: the last
         * positional is the mount point, the source names nothing */
        if (CHECK_INT_EQ(parse(&o, "jobfs", mnt, "-o", "allow_other", NULL), OPTIONS_RUN)) {
                CHECK_STR_EQ(o.mountpoint, mnt);
                CHECK_INT_EQ(o.fuse_argc, 3);
        }
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, mnt, mnt2, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.mountpoint, mnt2);
        options_free(&o);
        /* the source need not exist; the mount point must */
        if (CHECK_INT_EQ(parse(&o, "/nonexistent/source", mnt, NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.mountpoint, mnt);
        options_free(&o);
        CHECK_USAGE(mnt, "/nonexistent/mountpoint");

        if (!CHECK(getcwd(cwd, sizeof(cwd)) != NULL))
                return;
        /* relative paths are made absolute (the daemon chdirs to /) */
        if (!CHECK_INT_EQ(chdir(tmpdir), 0))
                return;
        if (CHECK_INT_EQ(parse(&o, "mnt", NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.mountpoint, mnt);
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, "./mnt2/../mnt/", NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.mountpoint, mnt);
        options_free(&o);
        if (CHECK_INT_EQ(parse(&o, ".", NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.mountpoint, tmpdir);
        options_free(&o);
        if (CHECK_INT_EQ(chdir(mnt), 0) && CHECK_INT_EQ(parse(&o, "../mnt2", NULL), OPTIONS_RUN))
                CHECK_STR_EQ(o.mountpoint, mnt2);
        options_free(&o);
        snprintf(rel, sizeof(rel), "%s", "mnt");
        CHECK_USAGE(rel);       /* tmpdir/mnt/mnt does not exist */
        CHECK_INT_EQ(chdir(cwd), 0);
}

int main(void)
{
        char tmpl[] = "/tmp/jobfs-test-options-XXXXXX";
        int rc;

        if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
        snprintf(mnt2, sizeof(mnt2), "%s/mnt2", tmpdir);
        if (mkdir(mnt, 0700) < 0 || mkdir(mnt2, 0700) < 0) {
                perror("mkdir");
                return 1;
        }
        test_defaults();
        test_long_options();
        test_values();
        test_underscore_in_value();
        test_mount_options();
        test_usage_errors();
        test_bacalhau_options();
        test_help_version();
        test_mountpoint();
        rc = CHECK_DONE();
        rmdir(mnt);
        rmdir(mnt2);
        rmdir(tmpdir);
        return rc;
}
