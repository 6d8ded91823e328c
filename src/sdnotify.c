/* sdnotify: see include/jobfs/sdnotify.h. The wire format is systemd's
 * (sd_notify(3)): one AF_UNIX datagram, the state bytes with no terminator.
 * An abstract address is sent without a trailing NUL, as its length is part
 * of the name. */
#include "jobfs/sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify_send(const char *state)
{
        const char *name = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len, state_len;
        socklen_t sa_len;
        ssize_t n;
        int fd = -1, r;

        if (!name || !*name)
                return 0;
        if (!state)
                return -EINVAL;
        if (name[0] != '/' && name[0] != '@')
                return strchr(name, ':') ? -EAFNOSUPPORT : -EINVAL;
        len = strlen(name);
        /* 108 bytes on Linux; a path needs room for its NUL, "@x" does not */
        if (len < 2 || len > sizeof(sa.sun_path) - (name[0] == '/'))
                return -EINVAL;
        memcpy(sa.sun_path, name, len);
        if (name[0] == '@')
                sa.sun_path[0] = '\0';
        sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        state_len = strlen(state);
        n = sendto(fd, state, state_len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sa_len);
        if (n < 0)
                r = -errno;
        else
                r = (size_t)n == state_len ? 1 : -EMSGSIZE;     /* datagrams go whole or not */
        close(fd);
        return r;
}
