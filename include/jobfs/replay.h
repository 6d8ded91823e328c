/* replay: turns tree changes into the kernel's cache invalidations and real
 * inotify events.
 *
 * Every change a fetch finds (cache.h) is queued here. For each, a replay
 * thread (never a FUSE worker: a worker that touches its own mount
 * deadlocks, notes/fuse-inotify.md pitfall 2) first keeps the kernel's
 * caches right (inval_inode / inval_entry) and then, unless --no-notify,
 * replays the change through the mount itself so the kernel raises the
 * events: open(O_WRONLY)+ftruncate+futimens+close for a changed file
 * (IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE), mkdir/mknod for a new entry
 * (IN_CREATE), rmdir/unlink for a vanished one (IN_DELETE). The FUSE
 * handlers accept those syscalls from replay threads only (fs_replay.c).
 *
 * One queue and thread per top-level directory (jobs/, software/, slurm/),
 * so the events of one backend never wait behind another's. A mkdir or
 * rmdir needs its directory's lock, which a lookup waiting on the network
 * holds (up to --timeout): such changes are deferred behind the others
 * until the lookups below that directory are done. Nothing here waits on
 * the network. Queues live under the tree lock.
 */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "jobfs/tree.h"

struct fuse_session;
struct replay;

struct replay_config {
        struct tree *tree;              /* borrowed */
        const char *mountpoint;         /* borrowed, absolute */
        bool announce;                  /* raise events (not --no-notify) */
};

int replay_new(const struct replay_config *cfg, struct replay **ret);
/* Adds the queue of a top-level directory (before replay_start). */
int replay_add_top(struct replay *r, struct node *top);
/* Starts the threads, once mounted (se answers the invalidations). */
int replay_start(struct replay *r, struct fuse_session *se);
/* Stops and joins the threads; queued changes are settled without events.
 * Must run while the FUSE loop still answers. Idempotent. */
void replay_stop(struct replay *r);
void replay_free(struct replay *r);     /* NULL-safe; stops first */

/* cache_changes_fn: queues changes (tree lock held). */
void replay_push(void *ctx, struct changes *c);
/* Whether a FUSE request comes from a replay thread (ctx->pid is a tid). */
bool replay_is_self(const struct replay *r, pid_t tid);
/* Changes replayed through the mount so far (for .jobfs/status). */
unsigned long replay_events(const struct replay *r);
