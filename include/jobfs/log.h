/* log: leveled logging to stderr (foreground) or syslog (daemonized).
 *
 * The level is the one piece of global state jobfs allows (STYLE.md): it is
 * read on every log call, and checked before any formatting is done.
 * Server-controlled strings are passed as arguments, never as the format.
 */
#pragma once
#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_max_level;

/* Route messages to syslog instead of stderr (after daemonizing). */
void log_use_syslog(bool on);

void log_msg(enum log_level lvl, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Logs at error level and returns r (a -errno), for "return log_errno(...)". */
int log_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_max_level >= LOG_LVL_WARN) log_msg(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_max_level >= LOG_LVL_INFO) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_max_level >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)
