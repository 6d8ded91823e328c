/* notify: the poller and the notifier, which make remote changes visible.
 *
 * The poller refetches, every poll interval, the live units the kernel still
 * holds (an inotify watch holds its inode), and the jobs/ and software/
 * listings while they are held. Every refresh that changed the tree (the
 * poller's or a reader's) hands its changes to the notifier thread, which
 * first keeps the kernel's caches right (inval_inode / inval_entry) and then,
 * unless --no-notify, replays the change through the mount itself so the
 * kernel raises real inotify events: open(O_WRONLY)+ftruncate+futimens+close
 * for a changed file (IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE), mkdir/mknod for
 * a new entry (IN_CREATE), rmdir/unlink for a vanished one (IN_DELETE). The
 * FUSE handlers accept those syscalls only from the notifier thread. See
 * shared/notes/fuse-inotify.md for why each step is there.
 */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "jobfs/tree.h"

struct jobfs;
struct notifier;

int notifier_new(struct jobfs *fs, struct notifier **ret);
/* Starts the poller (when poll_interval > 0) and the notifier threads. */
int notifier_start(struct notifier *n);
/* Stops and joins both threads; idempotent, never blocks past the current
 * request's deadline. Must run while the FUSE loop still answers. */
void notifier_stop(struct notifier *n);
void notifier_free(struct notifier *n); /* NULL-safe; stops first */

/* cache_changes_fn: queues changes for the notifier (tree lock held). */
void notifier_push(void *ctx, struct changes *c);
/* Whether a FUSE request comes from the notifier thread (ctx->pid is a tid). */
bool notifier_is_self(const struct notifier *n, pid_t tid);
/* Changes replayed through the mount so far (for .jobfs/status). */
unsigned long notifier_events(const struct notifier *n);
