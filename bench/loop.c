/* loop.c: time one file-system operation many times inside one process.
 *
 *   loop read|stat ROUNDS PATH [WARMUP]
 *
 * read: open(O_RDONLY) + read() until end of file + close(), per round.
 * stat: stat(), per round.
 * Each round is timed on its own with clock_gettime(CLOCK_MONOTONIC); the
 * program prints one JSON line: median, p10, p90, p99, min and mean ns per
 * round, and the bytes read per round.  WARMUP rounds (default 100) run
 * first and are not counted.  Exit status 1 on any failed call, or when a
 * round reads a different number of bytes than the first one.
 *
 * Compiled by bench/run.py with `cc -O2`; no dependencies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long read_once(const char *path)
{
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
                fprintf(stderr, "loop: open %s: %s\n", path, strerror(errno));
                return -1;
        }
        long total = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "loop: read %s: %s\n", path, strerror(errno));
                        close(fd);
                        return -1;
                }
                if (n == 0)
                        break;
                total += n;
        }
        if (close(fd) < 0) {
                fprintf(stderr, "loop: close %s: %s\n", path, strerror(errno));
                return -1;
        }
        return total;
}

static long stat_once(const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                fprintf(stderr, "loop: stat %s: %s\n", path, strerror(errno));
                return -1;
        }
        return (long)st.st_size;
}

static int cmp64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, long n, double p)
{
        long i = (long)(p * (double)(n - 1) + 0.5);
        return v[i];
}

int main(int argc, char **argv)
{
        if (argc < 4 || argc > 5 || (strcmp(argv[1], "read") && strcmp(argv[1], "stat"))) {
                fprintf(stderr, "usage: loop read|stat ROUNDS PATH [WARMUP]\n");
                return 2;
        }
        long (*op)(const char *) = strcmp(argv[1], "read") == 0 ? read_once : stat_once;
        long rounds = strtol(argv[2], NULL, 10);
        long warmup = argc == 5 ? strtol(argv[4], NULL, 10) : 100;
        const char *path = argv[3];
        if (rounds < 1 || warmup < 0) {
                fprintf(stderr, "loop: bad ROUNDS or WARMUP\n");
                return 2;
        }
        long expect = op(path);
        if (expect < 0)
                return 1;
        for (long i = 0; i < warmup; i++)
                if (op(path) != expect)
                        return 1;
        int64_t *t = malloc(sizeof *t * (size_t)rounds);
        if (!t)
                return 1;
        int64_t sum = 0;
        for (long i = 0; i < rounds; i++) {
                int64_t a = now_ns();
                long got = op(path);
                int64_t b = now_ns();
                if (got != expect) {
                        fprintf(stderr, "loop: round %ld got %ld bytes, expected %ld\n", i, got, expect);
                        return 1;
                }
                t[i] = b - a;
                sum += t[i];
        }
        qsort(t, (size_t)rounds, sizeof *t, cmp64);
        printf("{\"op\":\"%s\",\"rounds\":%ld,\"bytes\":%ld,\"median_ns\":%lld,\"p10_ns\":%lld,"
               "\"p90_ns\":%lld,\"p99_ns\":%lld,\"min_ns\":%lld,\"mean_ns\":%.1f}\n",
               argv[1], rounds, expect, (long long)pct(t, rounds, 0.5), (long long)pct(t, rounds, 0.1),
               (long long)pct(t, rounds, 0.9), (long long)pct(t, rounds, 0.99), (long long)t[0],
               (double)sum / (double)rounds);
        free(t);
        return 0;
}
