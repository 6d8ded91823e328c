/* options: see include/jobfs/options.h. */
#include "jobfs/options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_URL, OPT_STRING, OPT_PATH, OPT_SECONDS, OPT_POS_SECONDS, OPT_RATE,
                OPT_BYTES, OPT_COUNT, OPT_FLAG, OPT_CHOICE /* int: the index */,
                OPT_CHOICE_NAME /* char *: the value */ };

struct opt_def {
        const char *name;       /* long form; the mount form has '_' for '-' */
        enum opt_type type;
        size_t offset;
        const char *arg, *help;
        const char *const *choices;     /* OPT_CHOICE*: the values, NULL-terminated */
};

static const char *const api_choices[] = { "auto", "v0", "v1", NULL };
static const char *const slurm_apis[] = { "auto", "v0.0.38", "v0.0.37", "v0.0.36", NULL };

#define OFF(f) offsetof(struct options, f)

static const struct opt_def opt_defs[] = {
        { "bacalhau-url", OPT_URL, OFF(bacalhau_url), "URL",
          "Bacalhau requester API (default http://127.0.0.1:1234)" },
        { "muse-url", OPT_URL, OFF(muse_url), "URL",
          "muse ws API root (default http://127.0.0.1:8000/api/)" },
        { "client-id", OPT_STRING, OFF(client_id), "ID",
          "Bacalhau client id whose jobs jobs/ lists (default: all jobs)" },
        { "bacalhau-api", OPT_CHOICE, OFF(bacalhau_api), "auto|v0|v1",
          "Bacalhau API: v0 (v0.3 requester), v1 (orchestrator, v1.0.4+) (default auto)",
          api_choices },
        { "namespace", OPT_STRING, OFF(namespace), "NS",
          "Bacalhau v1 namespace whose jobs jobs/ lists (default: all namespaces)" },
        { "bacalhau-token-file", OPT_PATH, OFF(bacalhau_token_file), "FILE",
          "Bacalhau Bearer token, from a file only its owner may read" },
        { "ttl", OPT_SECONDS, OFF(ttl), "SECONDS",
          "how long live job data is served before a refetch (default 1)" },
        { "timeout", OPT_POS_SECONDS, OFF(timeout), "SECONDS",
          "deadline of one HTTP request, DNS and connect included (default 10)" },
        { "poll-interval", OPT_SECONDS, OFF(poll_interval), "SECONDS",
          "how often held live jobs are checked for changes; 0 = never (default 1)" },
        { "poll-budget", OPT_RATE, OFF(poll_budget), "N",
          "most requests per second the poller makes to one server (default 10)" },
        { "wait-timeout", OPT_SECONDS, OFF(wait_timeout), "SECONDS",
          "a read of a wait file gives up with ETIMEDOUT after this; 0 = never (default 0)" },
        { "strict-writes", OPT_FLAG, OFF(strict_writes), NULL,
          "send every open to jobfs, which refuses writes at open (no event); slower opens" },
        { "no-notify", OPT_FLAG, OFF(no_notify), NULL,
          "keep caches fresh but raise no inotify events for remote changes" },
        { "max-stale", OPT_SECONDS, OFF(max_stale), "SECONDS",
          "serve data at most this old while a server fails; 0 = no limit (default 0)" },
        { "max-reply", OPT_BYTES, OFF(max_reply), "BYTES",
          "largest server reply accepted, K/M/G suffixes allowed (default 16M)" },
        { "cache-bytes", OPT_BYTES, OFF(cache_bytes), "BYTES",
          "memory for cached contents, K/M/G suffixes allowed (default 256M)" },
        { "cache-max", OPT_COUNT, OFF(cache_max), "N",
          "most jobs and runs kept with their contents (default 10000)" },
        { "insecure", OPT_FLAG, OFF(insecure), NULL,
          "do not verify TLS certificates of https endpoints" },
        { "cacert", OPT_PATH, OFF(cacert), "FILE",
          "CA certificates to verify https endpoints with" },
        { "slurm-url", OPT_URL, OFF(slurm_url), "URL",
          "slurmrestd root, e.g. http://127.0.0.1:6820; slurm/ exists only with it" },
        { "slurm-api", OPT_CHOICE_NAME, OFF(slurm_api), "VERSION",
          "slurmrestd API: auto, v0.0.38, v0.0.37 or v0.0.36 (default auto)", slurm_apis },
        { "slurm-user", OPT_STRING, OFF(slurm_user), "NAME",
          "user named in X-SLURM-USER-NAME (default: the mounting user)" },
        { "slurm-token-file", OPT_PATH, OFF(slurm_token_file), "FILE",
          "file holding the SLURM token, mode 0600 (default: $SLURM_JWT)" },
};

#define N_DEFS (sizeof(opt_defs) / sizeof(opt_defs[0]))

void options_print_help(FILE *f)
{
        fprintf(f, "usage: jobfs [OPTIONS] MOUNTPOINT\n\n"
                   "Mounts remote compute jobs as files: Bacalhau jobs under jobs/,\n"
                   "muse cluster runs under software/, SLURM jobs under slurm/ (with\n"
                   "--slurm-url). Unmount with fusermount3 -u MOUNTPOINT.\n\n"
                   "Options (each also as -o name=value, with '_' for '-'):\n");
        for (size_t i = 0; i < N_DEFS; i++) {
                char left[64];

                snprintf(left, sizeof(left), "--%s%s%s", opt_defs[i].name,
                         opt_defs[i].arg ? "=" : "", opt_defs[i].arg ? opt_defs[i].arg : "");
                fprintf(f, "    %-28s %s\n", left, opt_defs[i].help);
        }
        fprintf(f, "    %-28s %s\n", "-f", "stay in the foreground");
        fprintf(f, "    %-28s %s\n", "-d", "debug: foreground, log every request");
        fprintf(f, "    %-28s %s\n", "-o OPT[,OPT...]", "mount options: the above, and libfuse's");
        fprintf(f, "    %-28s %s\n", "-h, --help", "print this help and exit");
        fprintf(f, "    %-28s %s\n", "-V, --version", "print the version and exit");
        fprintf(f, "\nSee jobfs(1) for the files, the errors and the events.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("jobfs: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see jobfs --help)\n", stderr);
        return -EINVAL;
}

static int parse_seconds(const char *v, double *ret, bool positive)
{
        char *end;
        double d;

        errno = 0;
        d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 86400.0 * 365 ||
            (positive && d <= 0))
                return -EINVAL;
        *ret = d;
        return 0;
}

static int parse_count(const char *v, size_t *ret, bool suffixes)
{
        unsigned long long n;
        char *end;

        if (*v == '-')
                return -EINVAL;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || end == v)
                return -EINVAL;
        if (suffixes && *end) {
                const char *units = "KMG";
                const char *u = strchr(units, *end);

                if (!u || end[1])
                        return -EINVAL;
                for (long s = 0; s <= u - units; s++) {
                        if (n > ULLONG_MAX / 1024)
                                return -EINVAL;
                        n *= 1024;
                }
        } else if (*end) {
                return -EINVAL;
        }
        if (n == 0 || n > SIZE_MAX / 2)
                return -EINVAL;
        *ret = (size_t)n;
        return 0;
}

static bool url_ok(const char *v)
{
        const char *host;

        if (strncmp(v, "http://", 7) == 0)
                host = v + 7;
        else if (strncmp(v, "https://", 8) == 0)
                host = v + 8;
        else
                return false;
        return *host && *host != '/' && !strpbrk(v, " \t\r\n") && strlen(v) < 1024;
}

static int set_string(char **slot, const char *v)
{
        char *s = strdup(v);

        if (!s)
                return -ENOMEM;
        free(*slot);
        *slot = s;
        return 0;
}

static int apply_opt(struct options *o, const struct opt_def *d, const char *v)
{
        char *field = (char *)o + d->offset;
        int r = 0;

        if (d->type == OPT_FLAG) {
                if (v)
                        return usage_error("option '%s' takes no value", d->name);
                *(bool *)field = true;
                return 0;
        }
        if (!v || !*v)
                return usage_error("option '%s' needs a value", d->name);
        switch (d->type) {
        case OPT_URL:
                if (!url_ok(v))
                        return usage_error("bad URL '%s' for %s: want http://HOST[:PORT]/...", v, d->name);
                r = set_string((char **)field, v);
                break;
        case OPT_STRING:
        case OPT_PATH:
                r = set_string((char **)field, v);
                break;
        case OPT_SECONDS:
        case OPT_POS_SECONDS:
                if (parse_seconds(v, (double *)field, d->type == OPT_POS_SECONDS) < 0)
                        return usage_error("bad number of seconds '%s' for %s", v, d->name);
                break;
        case OPT_RATE:
                if (parse_seconds(v, (double *)field, true) < 0 || *(double *)field > 1e6)
                        return usage_error("bad rate '%s' for %s: want a number above 0", v, d->name);
                break;
        case OPT_BYTES:
        case OPT_COUNT:
                if (parse_count(v, (size_t *)field, d->type == OPT_BYTES) < 0)
                        return usage_error("bad count '%s' for %s", v, d->name);
                break;
        case OPT_CHOICE:
        case OPT_CHOICE_NAME: {
                char want[128] = "";

                for (int i = 0; d->choices[i]; i++) {
                        if (strcmp(v, d->choices[i]) == 0 && d->type == OPT_CHOICE_NAME)
                                return set_string((char **)field, v);
                        if (strcmp(v, d->choices[i]) == 0) {
                                *(int *)field = i;
                                return 0;
                        }
                        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
                                 i ? ", " : "", d->choices[i]);
                }
                return usage_error("bad value '%s' for %s: want one of %s", v, d->name, want);
        }
        case OPT_FLAG:
                break;
        }
        return r;
}

/* Finds a jobfs option by its long ("poll-interval") or mount ("poll_interval") name. */
static const struct opt_def *find_def(const char *name, size_t len)
{
        for (size_t i = 0; i < N_DEFS; i++) {
                const char *d = opt_defs[i].name;
                size_t j;

                if (strlen(d) != len)
                        continue;
                for (j = 0; j < len; j++)
                        if (d[j] != name[j] && !(d[j] == '-' && name[j] == '_'))
                                break;
                if (j == len)
                        return &opt_defs[i];
        }
        return NULL;
}

static int push_fuse_arg(struct options *o, const char *arg)
{
        char **v = realloc(o->fuse_argv, (size_t)(o->fuse_argc + 2) * sizeof(*v));

        if (!v)
                return -ENOMEM;
        o->fuse_argv = v;
        v[o->fuse_argc] = strdup(arg);
        if (!v[o->fuse_argc])
                return -ENOMEM;
        v[++o->fuse_argc] = NULL;
        return 0;
}

/* Options that only mean something to mount(8), systemd or the kernel's
 * atime handling, which mount.fuse3 may hand on (it passes what mount(8) left,
 * and everything when called directly): libfuse refuses them as unknown, so
 * they are dropped here. jobfs sets noatime itself; the atime ones it knows
 * (atime, noatime) go on to libfuse. */
static bool fstab_only(const char *tok)
{
        static const char *const names[] = {
                "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group",
                "_netdev", "nofail", "relatime", "norelatime", "strictatime", "nostrictatime",
                "lazytime", "nolazytime", "diratime", "nodiratime", "iversion", "noiversion",
                "mand", "nomand", "silent", "loud",
        };

        if (strncmp(tok, "x-", 2) == 0 || strncmp(tok, "comment=", 8) == 0)
                return true;    /* x-systemd.automount, x-gvfs-show, comment=systemd.xxx */
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(tok, names[i]) == 0)
                        return true;
        return false;
}

/* Splits "a=1,b,c=2": ours are applied, fstab-only ones dropped, the rest go
 * to libfuse as -o. */
static int parse_mount_opts(struct options *o, const char *list)
{
        char *copy = strdup(list), *save = NULL;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(tok, '=');
                const struct opt_def *d = find_def(tok, eq ? (size_t)(eq - tok) : strlen(tok));

                if (d)
                        r = apply_opt(o, d, eq ? eq + 1 : NULL);
                else if (strcmp(tok, "ro") == 0)
                        r = usage_error("-o ro is not supported: jobfs is always read-only to users");
                else if (fstab_only(tok))
                        continue;
                else if ((r = push_fuse_arg(o, "-o")) == 0)
                        r = push_fuse_arg(o, tok);
        }
        free(copy);
        return r;
}

static int set_defaults(struct options *o, const char *argv0)
{
        memset(o, 0, sizeof(*o));
        o->ttl = 1.0;
        o->timeout = 10.0;
        o->poll_interval = 1.0;
        o->max_reply = 16u << 20;
        o->cache_max = 10000;
        /* 256 MiB: a login node is shared by tens of users, and 100,000
         * typical jobs (2.5 KiB each with their nodes) fit */
        o->cache_bytes = (size_t)256 << 20;
        /* 10 requests per second: 1% of the Bacalhau requester's own rate
         * limit (1,000 per second), so a hundred mounts polling flat out
         * stay within it; watched jobs past 10 share the rest by turns */
        o->poll_budget = 10;
        o->bacalhau_url = strdup("http://127.0.0.1:1234");
        o->muse_url = strdup("http://127.0.0.1:8000/api/");
        o->slurm_api = strdup("auto");
        if (!o->bacalhau_url || !o->muse_url || !o->slurm_api)
                return -ENOMEM;
        return push_fuse_arg(o, argv0 ? argv0 : "jobfs");
}

static int parse_long(struct options *o, int argc, char **argv, int *i)
{
        const char *arg = argv[*i] + 2;
        const char *eq = strchr(arg, '=');
        const struct opt_def *d = find_def(arg, eq ? (size_t)(eq - arg) : strlen(arg));
        const char *v = eq ? eq + 1 : NULL;

        if (!d || memchr(arg, '_', eq ? (size_t)(eq - arg) : strlen(arg)))
                return usage_error("unknown option '%s'", argv[*i]);
        if (!v && d->type != OPT_FLAG) {
                if (*i + 1 >= argc)
                        return usage_error("option '%s' needs a value", d->name);
                v = argv[++*i];
        }
        return apply_opt(o, d, v);
}

/* Resolves the mount point: the last positional argument. mount.fuse3 (fstab)
 * runs `jobfs SOURCE MOUNTPOINT -o ...`; the source names nothing for jobfs. */
static int set_mountpoint(struct options *o, const char *arg)
{
        o->mountpoint = realpath(arg, NULL);
        if (!o->mountpoint) {
                fprintf(stderr, "jobfs: bad mount point '%s': %s\n", arg, strerror(errno));
                return -EINVAL;
        }
        return 0;
}

enum options_result options_parse(int argc, char **argv, struct options *o)
{
        int r = set_defaults(o, argc > 0 ? argv[0] : NULL);
        const char *positional[2] = { NULL, NULL };
        int n_positional = 0;

        for (int i = 1; r == 0 && i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        options_print_help(stdout);
                        return OPTIONS_EXIT_OK;
                } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
                        printf("jobfs %s\n", JOBFS_VERSION);
                        return OPTIONS_EXIT_OK;
                } else if (strcmp(a, "-f") == 0) {
                        o->foreground = true;
                } else if (strcmp(a, "-d") == 0) {
                        o->foreground = o->debug = true;
                } else if (strcmp(a, "-o") == 0) {
                        if (i + 1 >= argc)
                                r = usage_error("-o needs a list of options");
                        else
                                r = parse_mount_opts(o, argv[++i]);
                } else if (strncmp(a, "-o", 2) == 0) {
                        r = parse_mount_opts(o, a + 2);
                } else if (strncmp(a, "--", 2) == 0 && a[2]) {
                        r = parse_long(o, argc, argv, &i);
                } else if (a[0] == '-' && a[1]) {
                        r = usage_error("unknown option '%s'", a);
                } else {
                        if (n_positional == 2)
                                r = usage_error("too many arguments ('%s'): want [SOURCE] MOUNTPOINT", a);
                        else
                                positional[n_positional++] = a;
                }
        }
        if (r == 0 && n_positional == 0)
                r = usage_error("no mount point given");
        else if (r == 0)
                r = set_mountpoint(o, positional[n_positional - 1]);
        if (r == -ENOMEM)
                fputs("jobfs: out of memory\n", stderr);
        return r == 0 ? OPTIONS_RUN : OPTIONS_EXIT_USAGE;
}

void options_free(struct options *o)
{
        if (!o)
                return;
        free(o->bacalhau_url);
        free(o->muse_url);
        free(o->client_id);
        free(o->namespace);
        free(o->bacalhau_token_file);
        free(o->cacert);
        free(o->slurm_url);
        free(o->slurm_api);
        free(o->slurm_user);
        free(o->slurm_token_file);
        free(o->mountpoint);
        for (int i = 0; i < o->fuse_argc; i++)
                free(o->fuse_argv[i]);
        free(o->fuse_argv);
        memset(o, 0, sizeof(*o));
}

/* Blanks the password of every scheme://user:password@host in s, in place. */
static void blank_passwords(char *s)
{
        for (char *p = strstr(s, "://"); p; p = strstr(p, "://")) {
                char *host = p + 3, *end = host + strcspn(host, "/?#,"), *at, *colon;

                at = memchr(host, '@', (size_t)(end - host));
                colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
                if (colon)
                        memset(colon + 1, '*', (size_t)(at - colon - 1));
                p = end;
        }
}

void options_hide_secrets(int argc, char **argv)
{
        for (int i = 1; i < argc; i++)
                blank_passwords(argv[i]);
}
