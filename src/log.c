/* log: see include/jobfs/log.h. One line per message, prefixed "jobfs:". */
#include "jobfs/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

enum log_level log_max_level = LOG_LVL_INFO;
static bool use_syslog;

void log_use_syslog(bool on)
{
        use_syslog = on;
        if (on)
                openlog("jobfs", LOG_PID, LOG_DAEMON);
}

static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        static const char *const tag[] = { "error", "warning", "info", "debug" };
        char line[1024];

        vsnprintf(line, sizeof(line), fmt, ap);
        if (use_syslog)
                syslog(prio[lvl], "%s", line);
        else
                fprintf(stderr, "jobfs: %s: %s\n", tag[lvl], line);
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
        char msg[768];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_msg(LOG_LVL_ERROR, "%s: %s", msg, strerror(r < 0 ? -r : r));
        return r;
}
