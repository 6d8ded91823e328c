/* log: leveled logging to stderr (foreground) or syslog (daemonized).
 *
 * The level is the one piece of global state jobfs allows (STYLE.md): it is
 * read on every log call, and checked before any formatting is done.
 * Server-controlled strings are passed as arguments, never as the format.
 * Each message is written as one line with one write, whoever logs:
 *   on a terminal      "jobfs: warning: MSG"
 *   to the journal     "<4>jobfs: warning: MSG" ($JOURNAL_STREAM names our
 *                      stderr: journald reads the priority, adds the time)
 *   elsewhere          "2026-11-24T10:11:12.345Z jobfs[PID]: warning: MSG"
 *                      (a file or a pipe: UTC, milliseconds)
 *   syslog             LOG_DAEMON, tag "jobfs", with the pid
 * A struct log_limit caps how many lines one cause may write (a flapping
 * server must not flood the log): the caller owns it, log.c its fields.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_max_level;

/* Route messages to syslog (LOG_DAEMON) instead of stderr: after daemonizing. */
void log_use_syslog(bool on);

void log_msg(enum log_level lvl, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Logs at error level and returns r (a -errno), for "return log_errno(...)". */
int log_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_max_level >= LOG_LVL_WARN) log_msg(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_max_level >= LOG_LVL_INFO) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_max_level >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* At most `burst` lines per `interval` seconds; the first line let through
 * after some were held back says how many. Initialise with LOG_LIMIT_INIT;
 * the other fields belong to log.c (protected by lock). */
struct log_limit {
        double interval;        /* s */
        unsigned burst;
        pthread_mutex_t lock;
        double begin;           /* s, CLOCK_MONOTONIC: start of the window */
        unsigned n, held;       /* lines let through in the window; held back since */
};
#define LOG_LIMIT_INIT(interval_s, burst_n) \
        { .interval = (interval_s), .burst = (burst_n), .lock = PTHREAD_MUTEX_INITIALIZER }

/* The same for a struct log_limit inside an allocated object. Nothing to free. */
void log_limit_init(struct log_limit *l, double interval, unsigned burst);

/* Whether a line may be written at time now (s, monotonic). When it may and
 * lines were held back before it, *ret_held is their number, else 0. */
bool log_limit_check(struct log_limit *l, double now, unsigned *ret_held);

/* log_msg through l: dropped past the limit; the next line that passes ends
 * with "(N similar lines not logged)". */
void log_limited(struct log_limit *l, enum log_level lvl, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
