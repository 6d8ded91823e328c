/* log: see include/jobfs/log.h. Where a line goes is decided per line (one
 * isatty or fstat, some microseconds), so a daemon whose stderr changes, or a
 * test that points it at a pipe and then a terminal, gets the right form. */
#include "jobfs/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum log_level log_max_level = LOG_LVL_INFO;
static bool use_syslog;

#define LINE_MAX_BYTES 1024     /* longer messages are cut: one line stays one write */

void log_use_syslog(bool on)
{
        use_syslog = on;
        if (on)
                openlog("jobfs", LOG_PID, LOG_DAEMON);
}

/* Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM to
 * "DEV:INODE" of the socket it gives as stdout/stderr (systemd.exec(5)). */
static bool stderr_is_journal(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void vlog(enum log_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        static const char *const tag[] = { "error", "warning", "info", "debug" };
        char msg[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 192];  /* + time, pid, level */

        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (use_syslog) {
                syslog(prio[lvl], "%s", msg);
                return;
        }
        if (isatty(STDERR_FILENO)) {
                snprintf(line, sizeof(line), "jobfs: %s: %s\n", tag[lvl], msg);
        } else if (stderr_is_journal()) {
                snprintf(line, sizeof(line), "<%d>jobfs: %s: %s\n", prio[lvl], tag[lvl], msg);
        } else {
                struct timespec ts;
                struct tm tm;
                char when[32];

                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                snprintf(line, sizeof(line), "%s.%03ldZ jobfs[%ld]: %s: %s\n", when,
                         ts.tv_nsec / 1000000, (long)getpid(), tag[lvl], msg);
        }
        /* one stdio call: stderr's lock keeps threads' lines whole */
        fputs(line, stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
        va_list ap;

        if (lvl > log_max_level)
                return;
        va_start(ap, fmt);
        vlog(lvl, fmt, ap);
        va_end(ap);
}

int log_errno(int r, const char *fmt, ...)
{
        char msg[768], err[128];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* strerror_r, GNU form: strerror() is not thread-safe */
        log_msg(LOG_LVL_ERROR, "%s: %s", msg, strerror_r(r < 0 ? -r : r, err, sizeof(err)));
        return r;
}

void log_limit_init(struct log_limit *l, double interval, unsigned burst)
{
        *l = (struct log_limit)LOG_LIMIT_INIT(interval, burst);
}

bool log_limit_check(struct log_limit *l, double now, unsigned *ret_held)
{
        bool pass;

        pthread_mutex_lock(&l->lock);
        if (l->n == 0 || now - l->begin >= l->interval || now < l->begin) {
                l->begin = now;         /* a new window */
                l->n = 0;
        }
        pass = l->n < l->burst;
        if (pass) {
                l->n++;
                *ret_held = l->held;
                l->held = 0;
        } else {
                l->held++;
        }
        pthread_mutex_unlock(&l->lock);
        return pass;
}

void log_limited(struct log_limit *l, enum log_level lvl, const char *fmt, ...)
{
        struct timespec ts;
        unsigned held;
        char msg[768];
        va_list ap;

        if (lvl > log_max_level)
                return;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (!log_limit_check(l, (double)ts.tv_sec + ts.tv_nsec / 1e9, &held))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (held)
                log_msg(lvl, "%s (%u similar lines not logged)", msg, held);
        else
                log_msg(lvl, "%s", msg);
}
