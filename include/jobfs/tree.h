/* tree: the inode tree the kernel sees, its lifetimes, and the diff that
 * updates it.
 *
 * Owns struct node (private to tree.c): names, parents, inode numbers, the
 * kernel's lookup counts, open directory handles, visibility, contents and
 * mtimes. One mutex (tree_mutex) protects every node, and the cache's units
 * too; nothing blocks while holding it.
 *
 * Lifetime: a node lives while it is linked and visible, or while the kernel
 * holds it (nlookup > 0), a change naming it is queued for replay, or a
 * handle of its parent directory is open. A vanished (GONE) node is freed,
 * and its name leaves the directory, once none of those holds it; item
 * directories (ROLE_ITEM) are the cache's to free (tree_unlink_item).
 * Inode numbers come from a counter and are never reused while mounted.
 *
 * Visibility (only tree.c writes it), for the replays that raise inotify
 * events (replay.h, notes/fuse-inotify.md):
 *   VISIBLE --server drops it--> PENDING_DELETE --replay's rmdir/unlink--> GONE
 *   GONE/new --server sends it--> PENDING_CREATE --replay's mkdir/mknod--> VISIBLE
 * PENDING_CREATE is visible to users and hidden from the replay thread alone;
 * PENDING_DELETE is visible to everyone until the replay removes it. Without
 * a watcher to tell (--no-notify, or the kernel does not know the parent)
 * the pending states are skipped.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jobfs/blob.h"
#include "jobfs/snapshot.h"

struct tree;
struct node;
struct unit;            /* the cache's; the tree only keeps the pointer */

enum node_role { ROLE_PLAIN, ROLE_ROOT, ROLE_AREA /* a backend's root: jobs/ */,
                 ROLE_GROUP /* a listed name above items: software/NAME */,
                 ROLE_ITEM /* a job or run directory */, ROLE_META, ROLE_STATUS, ROLE_METRICS,
                 ROLE_WAIT /* an item's wait file: reads block until it is final */ };
enum node_type { NODE_DIR, NODE_FILE, NODE_LINK, NODE_LAZY /* bytes not fetched yet */ };
enum change_kind { CHANGE_MODIFY, CHANGE_CREATE, CHANGE_DELETE };

struct change {
        enum change_kind kind;
        struct node *node;
};

struct changes {                        /* a growable vector; changes_clear frees it */
        struct change *v;
        size_t n, cap;
};

/* What a reader or the replay needs of a node, copied under the lock. */
struct node_attr {
        uint64_t ino;
        enum node_type type;
        uint64_t size;                  /* bytes of content (also once dropped) */
        struct timespec mtime;          /* when the current value was first seen */
        bool has_content;               /* false: dropped by eviction, or lazy */
};

int tree_new(bool announce, struct tree **ret);
void tree_free(struct tree *t);         /* NULL-safe; frees every node */
pthread_mutex_t *tree_mutex(struct tree *t);
struct node *tree_root(struct tree *t);
/* FUSE nodeids: the root is 1 (FUSE_ROOT_ID), other nodes their address; a
 * node the kernel holds is never freed, so its nodeid stays valid. */
uint64_t tree_nodeid(const struct tree *t, const struct node *n);
struct node *tree_from_nodeid(struct tree *t, uint64_t nodeid);

/* The child called name in any visibility state, or NULL. */
struct node *tree_child(const struct node *dir, const char *name);
/* Adds a visible child; *ret borrowed (see Lifetime). -EEXIST if taken. */
int tree_add(struct tree *t, struct node *dir, const char *name, enum node_type type,
             enum node_role role, struct node **ret);

const char *node_name(const struct node *n);
struct node *node_parent(const struct node *n);
enum node_role node_role(const struct node *n);
bool node_is_dir(const struct node *n);
struct unit *node_unit(const struct node *n);
void node_set_unit(struct node *n, struct unit *u);     /* the cache's */
bool node_visible(const struct node *n);                /* to users: not GONE */
bool node_hidden_from_replay(const struct node *n);     /* PENDING_CREATE */
bool node_kernel_holds(const struct node *n);
void node_attr(const struct node *n, struct node_attr *ret);
/* A reference to the content (caller unrefs), or NULL. */
struct blob *node_content(const struct node *n);
/* Replaces a file's content, taking the reference (lazy files once fetched;
 * .jobfs/status). A new value gets a new mtime. */
void node_set_content(struct node *n, struct blob *b);
/* The kernel keeps pages (files) or a listing (dirs) across opens while they
 * are still right: true when nothing changed since the last call for n. */
bool tree_kernel_copy_valid(struct node *n);
/* Writes n's path relative to the mount root into buf; -ENAMETOOLONG. */
int node_path(const struct node *n, char *buf, size_t size);
/* The top-level directory n lives in (jobs/, software/...), or NULL for the root. */
struct node *node_top(const struct node *n);

/* The kernel's references: tree_ref counts one more (true: the first);
 * tree_forget drops count (true: the last; a GONE node other than an item
 * directory may be freed then, and must not be used after). */
bool tree_ref(struct tree *t, struct node *n);
bool tree_forget(struct tree *t, struct node *n, uint64_t count);
/* Open directory handles: a handle's children stay allocated until closed. */
void tree_dir_open(struct node *dir);
void tree_dir_close(struct tree *t, struct node *dir);
/* Calls fn for each visible child in listing order, stopping on nonzero. */
int tree_each_child(const struct node *dir, int (*fn)(void *ctx, struct node *kid), void *ctx);
size_t tree_kids(const struct node *dir);       /* children, GONE ones included */
/* The visible child at listing position *pos or after (GONE ones skipped),
 * or NULL; *pos is set to its position. For readahead cursors. */
struct node *tree_kid_from(const struct node *dir, size_t *pos);
size_t node_pos(const struct node *n);

/* Makes dir's subtree match snap (see the .c for the rules) and appends one
 * change per entry the kernel may know of. out == NULL: first sight, nothing
 * is announced (the first `ls jobs/` must not raise 100,000 IN_CREATEs).
 * New nodes get unit u; only nodes of u are removed. */
int tree_apply(struct tree *t, struct node *dir, const struct snap *snap, struct unit *u,
               struct changes *out);
/* tree_apply after tree_prune_unheld: names the eviction freed come back
 * without an IN_CREATE (they never went away on the server); changes and
 * deletions are recorded as usual. */
int tree_refill(struct tree *t, struct node *dir, const struct snap *snap, struct unit *u,
                struct changes *out);
/* Marks n and its subtree vanished, recording a change if a watcher may care. */
int tree_remove(struct tree *t, struct node *n, struct changes *out);
/* Makes a vanished or new node visible again, recording a change when announced. */
int tree_reveal(struct tree *t, struct node *n, struct changes *out);
/* Bytes that u's nodes below dir hold: content plus the nodes themselves. */
size_t tree_unit_bytes(const struct node *dir, const struct unit *u);
/* Frees dir's children (eviction): -EBUSY if the kernel holds any of them,
 * a handle is open or a change is queued. */
int tree_prune(struct tree *t, struct node *dir);
/* Frees the subtrees below dir that nothing holds (eviction of a unit the
 * kernel holds part of); returns how many went. */
size_t tree_prune_unheld(struct tree *t, struct node *dir);
/* Drops the contents below dir, keeping nodes, sizes and a hash of each
 * content so a refetch tells changes apart. Returns the bytes released. */
size_t tree_drop_content(struct node *dir);
/* Frees the vanished children of dir that nothing holds any more. */
void tree_reclaim(struct tree *t, struct node *dir);
/* Keeps n allocated (a fetch of its bytes, a parked read or poll of it);
 * tree_unpin may free n if it vanished meanwhile: use it last. */
void tree_pin(struct node *n);
void tree_unpin(struct tree *t, struct node *n);
/* Frees a GONE item directory without a unit, and its subtree; -EBUSY while
 * anything holds it. A group it alone kept goes too. */
int tree_unlink_item(struct tree *t, struct node *dir);

/* Replays (replay.h). A change recorded by changes_push keeps its node until
 * tree_dequeue (n may be freed then: call it last). */
void tree_dequeue(struct tree *t, struct node *n, enum change_kind kind);
bool tree_change_pending(const struct node *n, enum change_kind kind);
/* The replay's mkdir/mknod (CREATE) or rmdir/unlink (DELETE) came through:
 * -EEXIST / -ENOENT when n was not pending that way. */
int tree_replayed(struct node *n, enum change_kind kind);
/* The replay could not be done: settle the state it was waiting for. */
void tree_replay_abandoned(struct node *n, enum change_kind kind);
/* Lookups waiting on the network below dir (the replay defers mkdir and
 * rmdir there, which would wait for the directory's lock). */
void tree_lookup_begin(struct node *dir);
void tree_lookup_end(struct node *dir);
bool tree_lookups_pending(const struct node *dir);

/* Records a change (none twice while one is queued): the node stays
 * allocated until the change is dequeued. */
int changes_push(struct changes *c, enum change_kind kind, struct node *n);
/* Settles and dequeues recorded changes nobody will replay, then clears. */
void changes_release(struct tree *t, struct changes *c);
void changes_clear(struct changes *c);  /* frees the vector only */
/* Takes the time once for an update, so what one reply changed shares one
 * mtime (find -newer compares nanoseconds). tree_apply calls it. */
void tree_stamp(struct tree *t);
