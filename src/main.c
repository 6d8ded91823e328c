/* main: parse options, mount, run the FUSE loop, and shut down cleanly.
 *
 * Shutdown order matters (shared/notes/fuse-inotify.md, pitfall 3): the
 * notifier may be inside a syscall on our own mount, which only the FUSE loop
 * can answer. So TERM/INT/HUP go to a sigwait thread that stops and joins the
 * notifier first, and only then ends the loop (fuse_session_exit, plus
 * SIGUSR1 to wake the main thread out of its wait).
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobfs/fs.h"
#include "jobfs/http.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/notify.h"
#include "jobfs/options.h"
#include "jobfs/prefetch.h"

struct signal_ctx {
        struct jobfs *fs;
        pthread_t main_thread;
        sigset_t set;
};

static void on_wakeup(int sig)
{
        (void)sig;      /* only interrupts the main thread's wait */
}

static void *signal_main(void *arg)
{
        struct signal_ctx *ctx = arg;
        int sig = 0;

        if (sigwait(&ctx->set, &sig) != 0)
                return NULL;
        if (sig == SIGUSR2)
                return NULL;    /* main is done: no signal came */
        log_info("signal %d: unmounting", sig);
        http_cancel_all(ctx->fs->http);
        notifier_stop(ctx->fs->notifier);
        prefetch_stop(ctx->fs->prefetch);
        fuse_session_exit(ctx->fs->se);
        pthread_kill(ctx->main_thread, SIGUSR1);
        return NULL;
}

static int install_signals(struct signal_ctx *ctx)
{
        struct sigaction sa = { .sa_handler = on_wakeup };     /* no SA_RESTART */

        sigemptyset(&ctx->set);
        sigaddset(&ctx->set, SIGTERM);
        sigaddset(&ctx->set, SIGINT);
        sigaddset(&ctx->set, SIGHUP);
        sigaddset(&ctx->set, SIGUSR2);
        if (sigaction(SIGUSR1, &sa, NULL) < 0)
                return -errno;
        signal(SIGPIPE, SIG_IGN);
        return -pthread_sigmask(SIG_BLOCK, &ctx->set, NULL);
}

static int run(struct options *opts)
{
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse_loop_config *loop = NULL;
        struct signal_ctx sctx = { 0 };
        struct jobfs *fs = NULL;
        pthread_t sig_thread;
        bool mounted = false, sig_started = false;
        int r;

        for (int i = 0; i < opts->fuse_argc; i++)
                if (fuse_opt_add_arg(&args, opts->fuse_argv[i]) != 0)
                        return 1;
        r = jobfs_new(opts, &fs);
        if (r < 0) {
                fuse_opt_free_args(&args);
                log_errno(r, "starting");
                return 1;
        }
        fuse_opt_add_arg(&args, "-o");
        fuse_opt_add_arg(&args, "fsname=jobfs,subtype=jobfs,noatime");
        fs->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
        if (!fs->se) {
                r = 2;          /* libfuse printed why: a bad -o option */
                goto out;
        }
        if (fuse_session_mount(fs->se, opts->mountpoint) != 0) {
                r = 1;
                goto out;
        }
        mounted = true;
        if (!opts->foreground)
                log_use_syslog(true);
        if (fuse_daemonize(opts->foreground) != 0) {
                r = 1;
                goto out;
        }
        /* threads only after daemonizing: fork keeps just the caller */
        sctx.fs = fs;
        sctx.main_thread = pthread_self();
        r = install_signals(&sctx);
        if (r == 0)
                r = -pthread_create(&sig_thread, NULL, signal_main, &sctx);
        sig_started = r == 0;
        if (r == 0)
                r = notifier_start(fs->notifier);
        if (r == 0)
                r = prefetch_start(fs->prefetch);
        if (r < 0) {
                log_errno(r, "starting threads");
                r = 1;
                goto out;
        }
        log_info("mounted on %s (bacalhau %s, muse %s)", opts->mountpoint, opts->bacalhau_url,
                 opts->muse_url);
        loop = fuse_loop_cfg_create();
        if (!loop) {
                r = 1;
                goto out;
        }
        fuse_loop_cfg_set_max_threads(loop, 64);       /* workers may wait on the network */
        r = fuse_session_loop_mt(fs->se, loop) < 0 ? 1 : 0;
out:
        if (sig_started) {
                pthread_kill(sig_thread, SIGUSR2);
                pthread_join(sig_thread, NULL);
        }
        if (fs->http)
                http_cancel_all(fs->http);
        notifier_stop(fs->notifier);
        prefetch_stop(fs->prefetch);
        if (mounted)
                fuse_session_unmount(fs->se);
        if (fs->se)
                fuse_session_destroy(fs->se);
        fuse_loop_cfg_destroy(loop);
        fuse_opt_free_args(&args);
        jobfs_free(fs);
        return r;
}

int main(int argc, char **argv)
{
        struct options opts;
        enum options_result res = options_parse(argc, argv, &opts);
        int r;

        if (res != OPTIONS_RUN) {
                options_free(&opts);
                return res == OPTIONS_EXIT_OK ? 0 : 2;
        }
        if (opts.debug)
                log_max_level = LOG_LVL_DEBUG;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
                log_error("cannot initialise libcurl");
                options_free(&opts);
                return 1;
        }
        r = run(&opts);
        curl_global_cleanup();
        options_free(&opts);
        return r;
}
