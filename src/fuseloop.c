/* fuseloop: see include/jobfs/fuseloop.h. */
#include "jobfs/fuseloop.h"

#include <errno.h>

#include "jobfs/log.h"

/* 3.10's default for idle workers kept (3.12 keeps its own default) */
#define IDLE_THREADS 10

int fuseloop_run(struct fuse_session *se, unsigned max_threads)
{
        int r;
#if HAVE_FUSE_LOOP_CFG
        struct fuse_loop_config *cfg = fuse_loop_cfg_create();

        if (!cfg)
                return -ENOMEM;
        fuse_loop_cfg_set_max_threads(cfg, max_threads);
        r = fuse_session_loop_mt(se, cfg);
        fuse_loop_cfg_destroy(cfg);
#else
        struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = IDLE_THREADS };

        log_info("libfuse %s cannot cap worker threads (3.12 can): running without a cap of %u",
                 fuse_pkgversion(), max_threads);
        r = fuse_session_loop_mt(se, &cfg);
#endif
        /* libfuse returns -errno, or a signal's number when one ended the loop */
        return r < 0 ? r : 0;
}
