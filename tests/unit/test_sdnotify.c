/* Unit tests of sdnotify.c against real AF_UNIX datagram sockets, a path
 * one and an abstract one, as systemd hands out: each sent state must arrive
 * as one datagram with exactly its bytes; the control twins (no
 * $NOTIFY_SOCKET, a socket nobody reads) must deliver nothing. Every receive
 * is bounded by a 5 s poll. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "jobfs/sdnotify.h"

#define WAIT_MS 5000    /* a local datagram is there at once; 5 s is a hang */

/* Binds a datagram socket to name ('@' = abstract); returns the fd or -1. */
static int listen_on(const char *name)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(name);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || len >= sizeof(sa.sun_path))
                goto fail;
        memcpy(sa.sun_path, name, len);
        if (name[0] == '@')
                sa.sun_path[0] = '\0';
        if (bind(fd, (struct sockaddr *)&sa,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] != '@'))) < 0)
                goto fail;
        return fd;
fail:
        if (fd >= 0)
                close(fd);
        return -1;
}

/* Receives one datagram into buf (NUL-terminated); its length, or -1 when
 * none came within timeout_ms. */
static ssize_t receive(int fd, char *buf, size_t size, int timeout_ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, timeout_ms) != 1)
                return -1;
        n = recv(fd, buf, size - 1, MSG_DONTWAIT);
        if (n >= 0)
                buf[n] = '\0';
        return n;
}

static void test_socket(const char *name)
{
        char buf[256];
        int fd = listen_on(name);

        if (!CHECK(fd >= 0))
                return;
        setenv("NOTIFY_SOCKET", name, 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), 1);
        CHECK_INT_EQ(receive(fd, buf, sizeof(buf), WAIT_MS), 7);
        CHECK_STR_EQ(buf, "READY=1");
        /* two sends are two datagrams, not one stream */
        CHECK_INT_EQ(sdnotify_send("STATUS=serving\nMAINPID=1"), 1);
        CHECK_INT_EQ(sdnotify_send("STOPPING=1"), 1);
        CHECK_INT_EQ(receive(fd, buf, sizeof(buf), WAIT_MS), 24);
        CHECK_STR_EQ(buf, "STATUS=serving\nMAINPID=1");
        CHECK_INT_EQ(receive(fd, buf, sizeof(buf), WAIT_MS), 10);
        CHECK_STR_EQ(buf, "STOPPING=1");
        /* control: nothing more was sent, nothing more comes */
        CHECK_INT_EQ(receive(fd, buf, sizeof(buf), 50), -1);
        unsetenv("NOTIFY_SOCKET");
        close(fd);
}

static void test_unset_is_noop(const char *name)
{
        char buf[64];
        int fd = listen_on(name);

        if (!CHECK(fd >= 0))
                return;
        unsetenv("NOTIFY_SOCKET");
        CHECK_INT_EQ(sdnotify_send("READY=1"), 0);
        setenv("NOTIFY_SOCKET", "", 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), 0);
        CHECK_INT_EQ(receive(fd, buf, sizeof(buf), 50), -1);
        unsetenv("NOTIFY_SOCKET");
        close(fd);
}

static void test_bad_names(const char *dir)
{
        char path[PATH_MAX], longname[200];

        setenv("NOTIFY_SOCKET", "relative/path", 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), -EINVAL);
        setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), -EAFNOSUPPORT);
        setenv("NOTIFY_SOCKET", "@", 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), -EINVAL);
        memset(longname, 'x', sizeof(longname) - 1);
        longname[0] = '/';
        longname[sizeof(longname) - 1] = '\0';
        setenv("NOTIFY_SOCKET", longname, 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), -EINVAL);
        /* a path nobody listens on: the error comes back, nothing hangs */
        snprintf(path, sizeof(path), "%s/nobody", dir);
        setenv("NOTIFY_SOCKET", path, 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), -ENOENT);
        setenv("NOTIFY_SOCKET", "@jobfs-test-nobody-listens-here", 1);
        CHECK_INT_EQ(sdnotify_send("READY=1"), -ECONNREFUSED);
        unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
        char dir[] = "/tmp/jobfs-sdnotify-XXXXXX";
        char path[sizeof(dir) + 16], abstract[64];

        if (!CHECK(mkdtemp(dir) != NULL))
                return CHECK_DONE();
        snprintf(path, sizeof(path), "%s/notify", dir);
        snprintf(abstract, sizeof(abstract), "@jobfs-test-sdnotify-%ld", (long)getpid());
        test_socket(path);
        unlink(path);
        test_socket(abstract);
        test_unset_is_noop(path);
        unlink(path);
        test_bad_names(dir);
        rmdir(dir);
        return CHECK_DONE();
}
