/* Unit tests of log.c: the line format for each destination (a file, a
 * terminal, the journal's stream), the level filter, log_errno, long
 * messages, whole lines from many threads, and the rate limit. stderr is
 * pointed at a temp file or a pseudo-terminal while a check logs, and put
 * back before the check looks. Each format check has its control twin: the
 * same message to the other destination must come out the other way. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "jobfs/log.h"

static char logpath[] = "/tmp/jobfs-test-log-XXXXXX";
static int saved_stderr = -1;

/* Points stderr at a new empty log file. */
static void capture_start(void)
{
        int fd = open(logpath, O_WRONLY | O_TRUNC | O_CLOEXEC);

        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
}

/* Puts stderr back; returns what was logged (caller frees with free()). */
static char *capture_end(void)
{
        size_t len;

        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        return check_slurp(logpath, &len);
}

static bool matches(const char *s, const char *pattern)
{
        regex_t re;
        bool ok;

        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
                return false;
        ok = regexec(&re, s, 0, NULL, 0) == 0;
        regfree(&re);
        return ok;
}

static unsigned count_lines(const char *s)
{
        unsigned n = 0;

        for (; s && *s; s++)
                n += *s == '\n';
        return n;
}

#define TS "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

static void test_file_lines_have_time_and_level(void)
{
        char pattern[128], *out;

        snprintf(pattern, sizeof(pattern), TS "jobfs\\[%ld\\]: warning: endpoint 'x' is down$",
                 (long)getpid());
        unsetenv("JOURNAL_STREAM");
        capture_start();
        log_warn("endpoint '%s' is down", "x");
        log_error("plain");
        out = capture_end();
        CHECK(matches(out, pattern));
        CHECK(matches(out, TS "jobfs\\[[0-9]+\\]: error: plain$"));
        CHECK_INT_EQ(count_lines(out), 2);
        free(out);
}

/* Logs one line with stderr on a pseudo-terminal; returns what the terminal
 * got (caller frees), NULL if no pty could be had. */
static char *log_to_pty(const char *msg)
{
        char buf[512], *res = NULL;
        int master = posix_openpt(O_RDWR | O_NOCTTY), slave = -1;
        ssize_t n;

        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
                goto out;
        slave = open(ptsname(master), O_RDWR | O_NOCTTY);
        if (slave < 0)
                goto out;
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        dup2(slave, STDERR_FILENO);
        log_info("%s", msg);
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        n = read(master, buf, sizeof(buf) - 1);     /* the line is there: written above */
        if (n >= 0) {
                buf[n] = '\0';
                res = strdup(buf);
        }
out:
        if (slave >= 0)
                close(slave);
        if (master >= 0)
                close(master);
        return res;
}

static void test_terminal_lines_are_short(void)
{
        char *out = log_to_pty("mounted");

        if (!out) {     /* a chroot or container without /dev/pts */
                fprintf(stderr, "no pseudo-terminal to be had: terminal lines not checked\n");
                return;
        }
        /* the terminal turns \n into \r\n */
        CHECK_STR_EQ(out, "jobfs: info: mounted\r\n");
        free(out);
}

static void test_journal_stream_gets_priority(void)
{
        char js[64], *out;
        struct stat st;

        if (!CHECK(stat(logpath, &st) == 0))
                return;
        snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", js, 1);
        capture_start();
        log_warn("to the journal");
        log_error("an error");
        out = capture_end();
        CHECK_STR_EQ(out, "<4>jobfs: warning: to the journal\n<3>jobfs: error: an error\n");
        free(out);
        /* control: a JOURNAL_STREAM that names another file is not us */
        snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + 1);
        setenv("JOURNAL_STREAM", js, 1);
        capture_start();
        log_warn("to the journal");
        out = capture_end();
        CHECK(matches(out, TS "jobfs\\[[0-9]+\\]: warning: to the journal$"));
        free(out);
        unsetenv("JOURNAL_STREAM");
}

static void test_levels_and_errno(void)
{
        char *out;
        int r;

        log_max_level = LOG_LVL_INFO;
        capture_start();
        log_debug("hidden %d", 1);
        out = capture_end();
        CHECK_STR_EQ(out, "");
        free(out);
        log_max_level = LOG_LVL_DEBUG;
        capture_start();
        log_debug("shown %d", 2);
        out = capture_end();
        CHECK(matches(out, TS "jobfs\\[[0-9]+\\]: debug: shown 2$"));
        free(out);
        log_max_level = LOG_LVL_INFO;

        capture_start();
        r = log_errno(-ENOENT, "opening '%s'", "f");
        out = capture_end();
        CHECK_INT_EQ(r, -ENOENT);
        CHECK(matches(out, "error: opening 'f': No such file or directory$"));
        free(out);
}

static void test_long_message_is_one_line(void)
{
        static char big[8192];
        char *out;

        memset(big, 'a', sizeof(big) - 1);
        capture_start();
        log_warn("%s", big);
        out = capture_end();
        CHECK_INT_EQ(count_lines(out), 1);
        CHECK(out && strlen(out) < 1200 && out[strlen(out) - 1] == '\n');
        free(out);
}

#define THREADS 4
#define PER_THREAD 300

static void *logger(void *arg)
{
        for (int i = 0; i < PER_THREAD; i++)
                log_warn("thread %ld line %d %s", (long)(intptr_t)arg, i,
                         "padding padding padding padding padding padding padding");
        return NULL;
}

static void test_threads_write_whole_lines(void)
{
        pthread_t t[THREADS];
        unsigned good = 0;
        char *out, *save = NULL;

        capture_start();
        for (long i = 0; i < THREADS; i++)
                pthread_create(&t[i], NULL, logger, (void *)(intptr_t)i);
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        out = capture_end();
        if (!CHECK(out != NULL))
                return;
        for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                good += matches(l, TS "jobfs\\[[0-9]+\\]: warning: thread [0-3] line [0-9]+ "
                                   "(padding ?){7}$");
        CHECK_INT_EQ(good, THREADS * PER_THREAD);
        free(out);
}

static void test_limit_window(void)
{
        struct log_limit l = LOG_LIMIT_INIT(10.0, 3);
        unsigned held = 99;

        CHECK(log_limit_check(&l, 100.0, &held));
        CHECK_INT_EQ(held, 0);
        CHECK(log_limit_check(&l, 101.0, &held));
        CHECK(log_limit_check(&l, 102.0, &held));
        CHECK(!log_limit_check(&l, 103.0, &held));     /* 4th in 10 s */
        CHECK(!log_limit_check(&l, 109.9, &held));
        CHECK(log_limit_check(&l, 110.0, &held));      /* a new window */
        CHECK_INT_EQ(held, 2);
        CHECK(log_limit_check(&l, 110.1, &held));
        CHECK_INT_EQ(held, 0);
        /* control: spaced out by the interval, nothing is ever held back */
        struct log_limit m;

        log_limit_init(&m, 1.0, 1);
        bool all = true;

        for (int i = 0; i < 100; i++)
                all = all && log_limit_check(&m, 5.0 + i * 1.0, &held) && held == 0;
        CHECK(all);
}

/* The flapping server: 2,513 lines in 3 minutes without a limit. */
static void test_limit_flapping(void)
{
        struct log_limit l = LOG_LIMIT_INIT(60.0, 5);
        unsigned passed = 0, held, held_total = 0;

        for (int i = 0; i < 2513; i++)
                if (log_limit_check(&l, i * (180.0 / 2513), &held)) {
                        passed++;
                        held_total += held;
                }
        CHECK_INT_EQ(passed, 15);               /* 5 in each of the 3 minutes */
        /* every line is logged, reported as held back, or still held in the last window */
        CHECK_INT_EQ(passed + held_total + l.held, 2513);
        CHECK(held_total > 2513 / 2);
}

static void test_log_limited_says_how_many(void)
{
        struct log_limit l = LOG_LIMIT_INIT(3600.0, 2);
        char *out;

        capture_start();
        for (int i = 0; i < 5; i++)
                log_limited(&l, LOG_LVL_WARN, "endpoint down %d", i);
        out = capture_end();
        CHECK_INT_EQ(count_lines(out), 2);
        CHECK(matches(out, "warning: endpoint down 0$"));
        CHECK(matches(out, "warning: endpoint down 1$"));
        CHECK(!matches(out, "down [234]"));
        free(out);
        /* the next window's first line tells what was held back */
        l.begin -= 3600.0;
        capture_start();
        log_limited(&l, LOG_LVL_WARN, "endpoint back");
        out = capture_end();
        CHECK(matches(out, "warning: endpoint back \\(3 similar lines not logged\\)$"));
        free(out);
}

int main(void)
{
        int fd = mkstemp(logpath);

        if (!CHECK(fd >= 0))
                return CHECK_DONE();
        close(fd);
        test_file_lines_have_time_and_level();
        test_terminal_lines_are_short();
        test_journal_stream_gets_priority();
        test_levels_and_errno();
        test_long_message_is_one_line();
        test_threads_write_whole_lines();
        test_limit_window();
        test_limit_flapping();
        test_log_limited_says_how_many();
        unlink(logpath);
        return CHECK_DONE();
}
