/* session: the FUSE session's own io, so lookups run in parallel on the
 * libfuse that Debian 12 ships.
 *
 * libfuse before 3.17.1 drops FUSE_PARALLEL_DIROPS from its INIT reply even
 * when the filesystem asks for it (fixed upstream in 3.17.1, "Pass
 * FUSE_PARALLEL_DIROPS to kernel (#861)"), so the kernel holds a directory's
 * lock across every lookup in it: 16 parallel first reads of new jobs on a
 * server that takes 2 s each ended at 2, 4, ..., 32 s. jobfs gives libfuse
 * its own read and writev (fuse_session_custom_io, libfuse 3.14+) and sets
 * the flag in the INIT reply when the kernel offered it and op_init asked
 * for it. Where libfuse passes it itself (3.17.1+) or has no custom io
 * (before 3.14), nothing is amended: meson decides (JOBFS_AMEND_INIT).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fuse_session;

struct session_io {                     /* every field atomic: io runs on any thread */
        uint64_t init_unique;           /* the INIT request's, once read */
        bool init_read, kernel_offers, want, amended;
};

/* Installs the io on a mounted session (its fd); reads and writes then go
 * through session_read/session_writev. 0, or -errno (nothing installed). */
int session_install(struct fuse_session *se, struct session_io *io,
                    ssize_t (*read_fn)(int, void *, size_t, void *),
                    ssize_t (*writev_fn)(int, struct iovec *, int, void *));
/* As read(2) and writev(2) (-1 and errno on failure), for the io callbacks. */
ssize_t session_read(struct session_io *io, int fd, void *buf, size_t len);
ssize_t session_writev(struct session_io *io, int fd, struct iovec *iov, int count);
/* op_init wants parallel lookups (the kernel offered them). */
void session_want_parallel_dirops(struct session_io *io);
/* Whether the kernel was told: the amendment was made, or libfuse does it. */
bool session_parallel_dirops(const struct session_io *io);
