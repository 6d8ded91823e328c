/* main: parse options, mount, run the FUSE loop, and shut down cleanly.
 *
 * Shutdown order matters (shared/notes/fuse-inotify.md, pitfall 3): a replay
 * may be inside a syscall on our own mount, which only the FUSE loop can
 * answer. So TERM/INT/HUP go to a sigwait thread that stops the replays, the
 * poller and the lanes first (jobfs_stop), and only then ends the loop
 * (fuse_session_exit, plus SIGUSR1 to wake the main thread out of its wait).
 * Every thread is started with those signals blocked, before the sigwait
 * thread, so it sees them all started.
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
#include "jobfs/fuseloop.h"
#include "jobfs/jobfs.h"
#include "jobfs/log.h"
#include "jobfs/options.h"
#include "jobfs/sdnotify.h"

struct signal_ctx {
        struct jobfs *fs;
        pthread_t main_thread;
        sigset_t set;
        bool main_done;                 /* atomic: the loop ended; SIGUSR2 ends us */
        bool stopped;                   /* atomic: a signal stopped jobfs */
};

static void on_wakeup(int sig)
{
        (void)sig;      /* only interrupts the main thread's wait */
}

static void *signal_main(void *arg)
{
        struct signal_ctx *ctx = arg;
        int sig = 0;

        for (;;) {
                if (sigwait(&ctx->set, &sig) != 0)
                        return NULL;
                if (sig == SIGUSR2) {
                        if (__atomic_load_n(&ctx->main_done, __ATOMIC_ACQUIRE))
                                return NULL;
                        continue;       /* a stray SIGUSR2 from outside: not ours */
                }
                if (__atomic_exchange_n(&ctx->stopped, true, __ATOMIC_ACQ_REL)) {
                        log_info("signal %d: already unmounting", sig);
                        continue;
                }
                log_info("signal %d: unmounting", sig);
                sdnotify_send("STOPPING=1");
                jobfs_stop(ctx->fs);
                fuse_session_exit(ctx->fs->se);
                pthread_kill(ctx->main_thread, SIGUSR1);
        }
}

static int block_signals(struct signal_ctx *ctx)
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

static int add_args(struct fuse_args *args, const struct options *opts)
{
        for (int i = 0; i < opts->fuse_argc; i++)
                if (fuse_opt_add_arg(args, opts->fuse_argv[i]) != 0)
                        return -ENOMEM;
        if (fuse_opt_add_arg(args, "-o") != 0 ||
            fuse_opt_add_arg(args, "fsname=jobfs,subtype=jobfs,noatime") != 0)
                return -ENOMEM;
        return 0;
}

static int run(struct options *opts)
{
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct signal_ctx sctx = { 0 };
        struct jobfs *fs = NULL;
        pthread_t sig_thread;
        bool mounted = false, sig_started = false;
        int r;

        r = add_args(&args, opts);
        if (r == 0)
                r = jobfs_new(opts, &fs);
        if (r < 0) {
                fuse_opt_free_args(&args);
                log_errno(r, "starting");
                return 1;
        }
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
        r = fs_install_io(fs);
        if (r < 0 && r != -ENOSYS)
                log_warn("lookups in one directory run one at a time (libfuse custom io: %s)",
                         strerror(-r));
        if (!opts->foreground)
                log_use_syslog(true);
        if (fuse_daemonize(opts->foreground) != 0) {
                r = 1;
                goto out;
        }
        /* threads only after daemonizing (fork keeps just the caller), and
         * with the signals blocked, so only the sigwait thread takes them */
        sctx.fs = fs;
        sctx.main_thread = pthread_self();
        r = block_signals(&sctx);
        if (r == 0)
                r = jobfs_start(fs);
        if (r == 0)
                r = -pthread_create(&sig_thread, NULL, signal_main, &sctx);
        sig_started = r == 0;
        if (r < 0) {
                log_errno(r, "starting threads");
                r = 1;
                goto out;
        }
        log_info("mounted on %s (endpoints: .jobfs/status)", opts->mountpoint);
        sdnotify_send("READY=1");      /* Type=notify units: mounted, threads up */
        r = fuseloop_run(fs->se, 64) < 0 ? 1 : 0;     /* readers may wait on the network */
        sdnotify_send("STOPPING=1");
out:
        /* the loop ended by itself (an unmount, or an error): unmount first,
         * so a replay's syscall on the mount fails instead of waiting for a
         * loop that no longer answers */
        if (mounted && !__atomic_load_n(&sctx.stopped, __ATOMIC_ACQUIRE)) {
                fuse_session_unmount(fs->se);
                mounted = false;
        }
        if (sig_started) {
                __atomic_store_n(&sctx.main_done, true, __ATOMIC_RELEASE);
                pthread_kill(sig_thread, SIGUSR2);
                pthread_join(sig_thread, NULL);
        }
        jobfs_stop(fs);
        if (mounted)
                fuse_session_unmount(fs->se);
        if (fs->se)
                fuse_session_destroy(fs->se);
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
        options_hide_secrets(argc, argv);       /* before any fork: ps shows no password */
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
