/* options: the command line and -o mount options, and --help.
 *
 * Every jobfs option exists as --long-option[=VALUE] and as the mount option
 * -o long_option[=VALUE] (fstab, systemd). One table (options.c) drives the
 * parser and --help; tests/integration/test_docs.py keeps man/jobfs.1 in sync.
 * Unknown -o options are passed on to libfuse, which judges them.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct options {
        char *bacalhau_url;     /* owned */
        char *muse_url;         /* owned */
        char *client_id;        /* owned, NULL = none */
        int bacalhau_api;       /* 0 auto, 1 v0, 2 v1: enum bacalhau_api's order */
        char *namespace;        /* owned, NULL = every namespace */
        char *bacalhau_token_file;      /* owned, NULL = none */
        char *cacert;           /* owned, NULL = system CAs */
        char *slurm_url;        /* owned, NULL = no slurm/ */
        char *slurm_api;        /* owned: "auto", "v0.0.38", "v0.0.37" or "v0.0.36" */
        char *slurm_user;       /* owned, NULL = the mounting user */
        char *slurm_token_file; /* owned, NULL = $SLURM_JWT */
        double ttl;             /* s, live data */
        double timeout;         /* s, one HTTP request */
        double poll_interval;   /* s, 0 = no polling */
        double poll_budget;     /* requests per second and server */
        double wait_timeout;    /* s a read of a wait file waits; 0 = for ever */
        double max_stale;       /* s, 0 = serve stale data forever */
        size_t max_reply;       /* bytes */
        size_t cache_bytes;     /* ceiling of cached contents */
        size_t cache_max;       /* ceiling of cached jobs and runs */
        bool no_notify, insecure, foreground, debug;
        bool strict_writes;     /* opens go to the daemon: writes refused at open */
        char *mountpoint;       /* owned, absolute */
        char **fuse_argv;       /* owned: argv[0] and libfuse's -o options */
        int fuse_argc;
};

enum options_result { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_EXIT_USAGE };

/* Fills *ret (defaults first). On OPTIONS_EXIT_USAGE one line was printed on
 * stderr; on OPTIONS_EXIT_OK help or version was printed. Free with
 * options_free in every case. */
enum options_result options_parse(int argc, char **argv, struct options *ret);
void options_free(struct options *o);
/* After options_parse: overwrites, in argv itself (what /proc/PID/cmdline
 * and ps show), the password of any URL given as user:password@host; the
 * parsed options keep it. Tokens never come on the command line at all. */
void options_hide_secrets(int argc, char **argv);
void options_print_help(FILE *f);
