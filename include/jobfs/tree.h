/* tree: the inode tree the kernel sees, and the diff that updates it.
 *
 * Nodes are created on first sight and stay (marked GONE when the server
 * drops them) until unmount, so a path keeps its inode number while mounted;
 * the one exception is cache eviction (tree_prune), which frees the children
 * of a job or run directory when neither they nor the directory are held by
 * the kernel and no queued change names them.
 * A node's `unit` is the fetch unit (cache.h) whose replies fill it: a file's
 * content, a directory's children. tree_apply() merges a snapshot into a
 * directory and records what changed, for the notifier. One mutex (lock)
 * protects every node and unit field; nothing blocks while holding it.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jobfs/blob.h"
#include "jobfs/snapshot.h"

enum node_role { ROLE_PLAIN, ROLE_ROOT, ROLE_JOBS, ROLE_JOB, ROLE_SOFTWARE, ROLE_SWNAME,
                 ROLE_RUN, ROLE_META, ROLE_STATUS };

/* Visibility. PENDING_* exist while the notifier replays a change through the
 * mount: a new name is hidden from the notifier alone until its own
 * mkdir/mknod (users see it at once), a vanished one stays visible until its
 * own rmdir/unlink (notes/fuse-inotify.md). */
enum node_vis { VIS_VISIBLE, VIS_PENDING_CREATE, VIS_PENDING_DELETE, VIS_GONE };

struct unit;

struct node {
        uint64_t ino;                   /* st_ino, never reused while mounted */
        uint64_t nlookup;               /* the kernel's references */
        struct node *parent;
        size_t pos;                     /* index in parent->kids (listing order) */
        bool is_dir;
        uint8_t role;                   /* enum node_role */
        uint8_t vis;                    /* enum node_vis */
        uint8_t queued;                 /* bit (1 << change_kind): queued for the notifier */
        struct blob *content;           /* files: owned reference */
        struct timespec mtime;          /* when the current value was first seen */
        uint64_t gen;                   /* bumped on every content change */
        uint64_t cached_gen;            /* files: gen the kernel's page cache holds;
                                         * dirs: signature of its cached listing */
        struct unit *unit;              /* fills this node; NULL for static ones */
        struct node **kids;             /* dirs: children in creation order */
        size_t n_kids, cap_kids;
        struct node **slots;            /* dirs of over 8: open-addressing index over kids */
        size_t n_slots;
        char name[];                    /* allocated with the node: one malloc less each */
};

enum change_kind { CHANGE_MODIFY, CHANGE_CREATE, CHANGE_DELETE };

struct change {
        enum change_kind kind;
        struct node *node;
};

struct changes {
        struct change *v;
        size_t n, cap;
};

struct tree {
        pthread_mutex_t lock;
        struct node *root;
        uint64_t next_ino;
        bool announce;          /* replay changes through the mount (not --no-notify) */
        struct timespec stamp;  /* mtime given to what an update changes */
};

int tree_new(bool announce, struct tree **ret);
void tree_free(struct tree *t);         /* NULL-safe; frees every node */

/* The child called name in any visibility state, or NULL. */
struct node *tree_child(const struct node *dir, const char *name);
/* Adds a child; *ret borrowed until tree_free. -EEXIST if the name is taken. */
int tree_add(struct tree *t, struct node *dir, const char *name, bool is_dir,
             enum node_role role, struct node **ret);
bool node_visible(const struct node *n);        /* to users: anything but GONE */

/* Makes dir's subtree match snap: new names are created (PENDING_CREATE when
 * announcing and the kernel knows dir, else VISIBLE), changed files get new
 * content and mtime, vanished names are deleted. Appends one change per
 * affected entry the kernel may know of. New nodes get unit `unit`.
 * out == NULL means first sight of the unit: there is no earlier state to
 * differ from, so everything is revealed at once and nothing is announced
 * (the first `ls jobs/` must not raise 100,000 IN_CREATE events). The same
 * holds for tree_remove and tree_reveal. */
int tree_apply(struct tree *t, struct node *dir, const struct snap *snap, struct unit *unit,
               struct changes *out);
/* Marks n (and its subtree) deleted, recording a change if the kernel may see it. */
int tree_remove(struct tree *t, struct node *n, struct changes *out);
/* Makes a new child visible, recording a change when announced. */
int tree_reveal(struct tree *t, struct node *n, struct changes *out);

/* Frees dir's children (cache eviction); -EBUSY if the kernel holds any. */
int tree_prune(struct node *dir);

int changes_push(struct changes *c, enum change_kind kind, struct node *n);
void changes_clear(struct changes *c);

/* Writes n's path relative to the mount root into buf; -ENAMETOOLONG. */
int node_path(const struct node *n, char *buf, size_t size);

void node_set_mtime_now(struct node *n);
/* Takes the time once for an update, so the entries that one reply changed
 * share one mtime (find -newer compares nanoseconds). tree_apply calls it. */
void tree_stamp(struct tree *t);
