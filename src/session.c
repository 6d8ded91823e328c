/* session: see include/jobfs/session.h. */
#include "jobfs/session.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "jobfs/log.h"

int session_install(struct fuse_session *se, struct session_io *io,
                    ssize_t (*read_fn)(int, void *, size_t, void *),
                    ssize_t (*writev_fn)(int, struct iovec *, int, void *))
{
#if JOBFS_AMEND_INIT
        struct fuse_custom_io cio = { .read = read_fn, .writev = writev_fn };
        int r;

        memset(io, 0, sizeof(*io));
        r = fuse_session_custom_io(se, &cio, fuse_session_fd(se));
        return r < 0 ? r : 0;
#else
        (void)se;
        (void)read_fn;
        (void)writev_fn;
        memset(io, 0, sizeof(*io));
        return -ENOSYS;
#endif
}

ssize_t session_read(struct session_io *io, int fd, void *buf, size_t len)
{
        ssize_t n = read(fd, buf, len);
        const struct fuse_in_header *in = buf;
        int saved = errno;

        if (n >= (ssize_t)(sizeof(*in) + sizeof(struct fuse_init_in)) &&
            !__atomic_load_n(&io->init_read, __ATOMIC_ACQUIRE) && in->opcode == FUSE_INIT) {
                const struct fuse_init_in *init = (const void *)(in + 1);

                __atomic_store_n(&io->init_unique, in->unique, __ATOMIC_RELAXED);
                __atomic_store_n(&io->kernel_offers, (init->flags & FUSE_PARALLEL_DIROPS) != 0,
                                 __ATOMIC_RELAXED);
                __atomic_store_n(&io->init_read, true, __ATOMIC_RELEASE);
        }
        errno = saved;
        return n;       /* as read(2): libfuse reads errno on -1 */
}

/* The reply to INIT: its header names the INIT's unique and carries no error. */
static bool is_init_reply(struct session_io *io, const struct iovec *iov, int count)
{
        const struct fuse_out_header *out = iov[0].iov_base;

        return count >= 2 && __atomic_load_n(&io->init_read, __ATOMIC_ACQUIRE) &&
               !__atomic_load_n(&io->amended, __ATOMIC_ACQUIRE) &&
               iov[0].iov_len >= sizeof(*out) && out->error == 0 &&
               out->unique == __atomic_load_n(&io->init_unique, __ATOMIC_RELAXED) &&
               iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t);
}

ssize_t session_writev(struct session_io *io, int fd, struct iovec *iov, int count)
{
        ssize_t n;

        if (is_init_reply(io, iov, count) && __atomic_load_n(&io->want, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&io->kernel_offers, __ATOMIC_RELAXED)) {
                struct fuse_init_out *init = iov[1].iov_base;

                init->flags |= FUSE_PARALLEL_DIROPS;
                __atomic_store_n(&io->amended, true, __ATOMIC_RELEASE);
                log_debug("INIT reply: parallel lookups asked for (libfuse < 3.17.1 drops them)");
        }
        n = writev(fd, iov, count);
        return n;       /* as writev(2): libfuse reads errno on -1 */
}

void session_want_parallel_dirops(struct session_io *io)
{
        __atomic_store_n(&io->want, true, __ATOMIC_RELEASE);
}

bool session_parallel_dirops(const struct session_io *io)
{
#if JOBFS_AMEND_INIT
        return __atomic_load_n(&io->amended, __ATOMIC_ACQUIRE);
#else
        return __atomic_load_n(&io->want, __ATOMIC_ACQUIRE) && JOBFS_LIBFUSE_PASSES_DIROPS;
#endif
}
