/* Unit tests of tree.c: children and their index (10,000 of them), paths,
 * tree_apply's diff (visibility states, recorded changes, contents, mtimes,
 * stable inode numbers), and lifetimes: vanished names freed once nothing
 * holds them (kernel references, queued changes, open handles, lookups),
 * a churning directory staying its real size, dropped contents keeping the
 * size and telling a change apart on refetch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "jobfs/tree.h"

/* tree_apply only compares unit pointers; these stand for two fetch units. */
static int unit_a_storage, unit_b_storage;
#define UNIT_A ((struct unit *)&unit_a_storage)
#define UNIT_B ((struct unit *)&unit_b_storage)

static struct snap *snap_of(const char *const files[][2])
{
        struct snap *s = snap_new();

        for (size_t i = 0; s && files[i][0]; i++)
                snap_add_text(s, files[i][0], files[i][1], strlen(files[i][1]));
        return s;
}

static size_t count_kind(const struct changes *c, enum change_kind kind, const struct node *n)
{
        size_t k = 0;

        for (size_t i = 0; i < c->n; i++)
                if (c->v[i].kind == kind && (!n || c->v[i].node == n))
                        k++;
        return k;
}

static bool content_is(const struct node *n, const char *text)
{
        struct blob *b = n ? node_content(n) : NULL;
        bool ok = b && b->len == strlen(text) && memcmp(b->data, text, b->len) == 0;

        blob_unref(b);
        return ok;
}

/* A tree with jobs/ (held by the kernel, as after an ls) and jobs/job. */
struct env {
        struct tree *t;
        struct node *jobs, *job;
};

static bool env_new(struct env *e, bool announce)
{
        memset(e, 0, sizeof(*e));
        if (tree_new(announce, &e->t) < 0 ||
            tree_add(e->t, tree_root(e->t), "jobs", NODE_DIR, ROLE_AREA, &e->jobs) < 0 ||
            tree_add(e->t, e->jobs, "job", NODE_DIR, ROLE_ITEM, &e->job) < 0)
                return CHECK(!"setup failed");
        node_set_unit(e->job, UNIT_A);
        tree_ref(e->t, e->jobs);
        return true;
}

static void test_add_child(void)
{
        struct tree *t = NULL;
        struct node *jobs = NULL, *a = NULL, *b = NULL, *dup = NULL;
        struct node_attr at;

        if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                return;
        node_attr(tree_root(t), &at);
        CHECK_INT_EQ(at.ino, 1);                /* FUSE_ROOT_ID */
        CHECK_INT_EQ(tree_nodeid(t, tree_root(t)), 1);
        CHECK(tree_from_nodeid(t, 1) == tree_root(t));
        CHECK(node_is_dir(tree_root(t)) && node_parent(tree_root(t)) == NULL);
        CHECK(tree_child(tree_root(t), "jobs") == NULL);
        CHECK_INT_EQ(tree_add(t, tree_root(t), "jobs", NODE_DIR, ROLE_AREA, &jobs), 0);
        CHECK(jobs && node_is_dir(jobs) && node_parent(jobs) == tree_root(t));
        CHECK_INT_EQ(node_role(jobs), ROLE_AREA);
        CHECK(node_visible(jobs) && !node_kernel_holds(jobs));
        CHECK(tree_from_nodeid(t, tree_nodeid(t, jobs)) == jobs);
        CHECK_INT_EQ(tree_add(t, jobs, "a", NODE_FILE, ROLE_PLAIN, &a), 0);
        CHECK_INT_EQ(tree_add(t, jobs, "b", NODE_FILE, ROLE_PLAIN, &b), 0);
        CHECK(tree_child(jobs, "a") == a && tree_child(jobs, "b") == b);
        CHECK(tree_child(jobs, "c") == NULL);
        CHECK(tree_child(tree_root(t), "a") == NULL);   /* children are per directory */
        CHECK(node_top(a) == jobs && node_top(jobs) == jobs && node_top(tree_root(t)) == NULL);
        /* inode numbers: distinct and increasing */
        {
                struct node_attr aj, aa, ab;

                node_attr(jobs, &aj);
                node_attr(a, &aa);
                node_attr(b, &ab);
                CHECK(aj.ino > 1 && aa.ino > aj.ino && ab.ino > aa.ino);
        }
        /* duplicate names are refused and change nothing */
        CHECK_INT_EQ(tree_add(t, jobs, "a", NODE_DIR, ROLE_ITEM, &dup), -EEXIST);
        CHECK(dup == NULL);
        CHECK_INT_EQ(tree_kids(jobs), 2);
        tree_free(t);
        tree_free(NULL);
}

static void test_many_children(void)
{
        enum { N = 10000 };
        struct tree *t = NULL;
        struct node *dir = NULL, *n;
        size_t missing = 0, order = 0, pos = 0;
        char name[48];

        if (!CHECK_INT_EQ(tree_new(false, &t), 0))
                return;
        CHECK_INT_EQ(tree_add(t, tree_root(t), "jobs", NODE_DIR, ROLE_AREA, &dir), 0);
        for (int i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "00000000-0000-4000-8000-%012d", i);
                if (!CHECK_INT_EQ(tree_add(t, dir, name, NODE_DIR, ROLE_ITEM, &n), 0))
                        break;
        }
        CHECK_INT_EQ(tree_kids(dir), N);
        for (int i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "00000000-0000-4000-8000-%012d", i);
                n = tree_child(dir, name);
                if (!n || strcmp(node_name(n), name) != 0 || node_parent(n) != dir)
                        missing++;
                /* kids keep creation order (readdir offsets, readahead) */
                n = tree_kid_from(dir, &pos);
                if (!n || strcmp(node_name(n), name) != 0)
                        order++;
                pos++;
        }
        CHECK_INT_EQ(missing, 0);
        CHECK_INT_EQ(order, 0);
        CHECK(tree_kid_from(dir, &pos) == NULL);
        CHECK(tree_child(dir, "00000000-0000-4000-8000-000000010000") == NULL);
        tree_free(t);
}

static void test_node_path(void)
{
        struct env e;
        struct node *node, *shard;
        char buf[64], small[8];

        if (!env_new(&e, false))
                return;
        tree_add(e.t, e.job, "QmNode", NODE_DIR, ROLE_PLAIN, &node);
        tree_add(e.t, node, "0", NODE_DIR, ROLE_PLAIN, &shard);
        CHECK_INT_EQ(node_path(shard, buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "jobs/job/QmNode/0");
        CHECK_INT_EQ(node_path(tree_root(e.t), buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "");
        CHECK_INT_EQ(node_path(shard, small, sizeof(small)), -ENAMETOOLONG);
        CHECK_INT_EQ(node_path(e.jobs, small, 5), 0);   /* "jobs" and its NUL */
        CHECK_INT_EQ(node_path(e.jobs, small, 4), -ENAMETOOLONG);
        tree_free(e.t);
}

/* The first fill announces nothing and reveals everything. */
static void test_apply_first_sight(void)
{
        static const char *const files[][2] = { { "state", "Running" }, { "status", "up" }, { NULL, NULL } };
        struct snap *s = snap_of(files);
        struct node *state;
        struct env e;

        if (!env_new(&e, true))
                return;
        tree_ref(e.t, e.job);
        CHECK_INT_EQ(tree_apply(e.t, e.job, s, UNIT_A, NULL), 0);
        state = tree_child(e.job, "state");
        CHECK(content_is(state, "Running\n"));
        CHECK(node_visible(state) && !node_hidden_from_replay(state));
        CHECK(node_unit(state) == UNIT_A);
        snap_free(s);
        tree_free(e.t);
}

static void test_apply_changes(void)
{
        static const char *const v1[][2] = { { "state", "Running" }, { NULL, NULL } };
        static const char *const v2[][2] = { { "state", "Completed" }, { "exitCode", "0" }, { NULL, NULL } };
        struct snap *s1 = snap_of(v1), *s2 = snap_of(v2);
        struct changes ch = { 0 };
        struct node *state, *exit_code;
        struct node_attr a1, a2;
        struct env e;

        if (!env_new(&e, true))
                return;
        tree_ref(e.t, e.job);           /* the kernel knows the job dir */
        tree_apply(e.t, e.job, s1, UNIT_A, NULL);
        state = tree_child(e.job, "state");
        tree_ref(e.t, state);
        node_attr(state, &a1);
        CHECK_INT_EQ(tree_apply(e.t, e.job, s2, UNIT_A, &ch), 0);
        exit_code = tree_child(e.job, "exitCode");
        CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, state), 1);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_CREATE, exit_code), 1);
        CHECK_INT_EQ(ch.n, 2);
        /* announcing: the new name is hidden from the replay until its mkdir */
        CHECK(node_visible(exit_code) && node_hidden_from_replay(exit_code));
        CHECK(tree_change_pending(exit_code, CHANGE_CREATE));
        CHECK_INT_EQ(tree_replayed(exit_code, CHANGE_CREATE), 0);
        CHECK(!node_hidden_from_replay(exit_code));
        CHECK_INT_EQ(tree_replayed(exit_code, CHANGE_CREATE), -EEXIST);    /* only once */
        node_attr(state, &a2);
        CHECK_INT_EQ(a2.ino, a1.ino);   /* the same inode, a new value */
        CHECK(content_is(state, "Completed\n"));
        CHECK_INT_EQ(a2.size, strlen("Completed\n"));
        changes_release(e.t, &ch);
        /* the same reply again: nothing changes, nothing is recorded */
        CHECK_INT_EQ(tree_apply(e.t, e.job, s2, UNIT_A, &ch), 0);
        CHECK_INT_EQ(ch.n, 0);
        snap_free(s1);
        snap_free(s2);
        tree_free(e.t);
}

/* One change per node and kind is queued at a time: a job changing on
 * every poll cannot grow the replay's queue. */
static void test_changes_deduplicated(void)
{
        static const char *const v[3][2][2] = {
                { { "state", "a" }, { NULL, NULL } },
                { { "state", "b" }, { NULL, NULL } },
                { { "state", "c" }, { NULL, NULL } },
        };
        struct changes ch = { 0 };
        struct node *state;
        struct env e;

        if (!env_new(&e, true))
                return;
        tree_ref(e.t, e.job);
        for (int i = 0; i < 3; i++) {
                struct snap *s = snap_of(v[i]);

                tree_apply(e.t, e.job, s, UNIT_A, i ? &ch : NULL);
                snap_free(s);
        }
        state = tree_child(e.job, "state");
        CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, state), 1);
        CHECK(content_is(state, "c\n"));
        tree_dequeue(e.t, state, CHANGE_MODIFY);
        changes_clear(&ch);
        {
                /* dequeued: the next change is recorded again (control twin) */
                struct snap *s = snap_of(v[0]);

                tree_apply(e.t, e.job, s, UNIT_A, &ch);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, state), 1);
                snap_free(s);
        }
        changes_release(e.t, &ch);
        tree_free(e.t);
}

/* Vanished names: pending delete while watched, freed once nothing holds them. */
static void test_delete_and_reclaim(void)
{
        static const char *const two[][2] = { { "state", "x" }, { "gone", "y" }, { NULL, NULL } };
        static const char *const one[][2] = { { "state", "x" }, { NULL, NULL } };
        struct snap *s2 = snap_of(two), *s1 = snap_of(one);
        struct changes ch = { 0 };
        struct node *gone;
        struct env e;

        if (!env_new(&e, true))
                return;
        tree_ref(e.t, e.job);
        tree_apply(e.t, e.job, s2, UNIT_A, NULL);
        gone = tree_child(e.job, "gone");
        tree_ref(e.t, gone);                    /* a watch on it */
        CHECK_INT_EQ(tree_apply(e.t, e.job, s1, UNIT_A, &ch), 0);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_DELETE, gone), 1);
        /* visible until the replay's unlink, then gone */
        CHECK(node_visible(gone) && tree_change_pending(gone, CHANGE_DELETE));
        CHECK_INT_EQ(tree_replayed(gone, CHANGE_DELETE), 0);
        CHECK(!node_visible(gone));
        CHECK(tree_child(e.job, "gone") == gone);       /* held: still allocated */
        tree_dequeue(e.t, gone, CHANGE_DELETE);
        changes_clear(&ch);
        CHECK(tree_child(e.job, "gone") == gone);       /* the kernel still holds it */
        CHECK(tree_forget(e.t, gone, 1));               /* freed now */
        CHECK(tree_child(e.job, "gone") == NULL);
        CHECK_INT_EQ(tree_kids(e.job), 1);
        snap_free(s1);
        snap_free(s2);
        tree_free(e.t);
}

/* Without a watcher to tell, a vanished unheld name is freed at once; an
 * open handle of its directory keeps it (readdir skips it). */
static void test_reclaim_waits_for_handles(void)
{
        static const char *const two[][2] = { { "a", "1" }, { "b", "2" }, { NULL, NULL } };
        static const char *const one[][2] = { { "a", "1" }, { NULL, NULL } };
        struct snap *s2 = snap_of(two), *s1 = snap_of(one);
        struct changes ch = { 0 };
        struct env e;

        if (!env_new(&e, false))
                return;
        tree_apply(e.t, e.job, s2, UNIT_A, NULL);
        tree_dir_open(e.job);
        tree_apply(e.t, e.job, s1, UNIT_A, &ch);
        CHECK(ch.n == 0);                               /* the kernel does not know job/ */
        CHECK(tree_child(e.job, "b") && !node_visible(tree_child(e.job, "b")));
        tree_dir_close(e.t, e.job);
        CHECK(tree_child(e.job, "b") == NULL);          /* freed with the last handle */
        /* control twin: no handle, freed at apply time */
        tree_apply(e.t, e.job, s2, UNIT_A, NULL);
        CHECK(tree_child(e.job, "b") && node_visible(tree_child(e.job, "b")));
        tree_apply(e.t, e.job, s1, UNIT_A, NULL);
        CHECK(tree_child(e.job, "b") == NULL);
        snap_free(s1);
        snap_free(s2);
        tree_free(e.t);
}

/* B7: a job whose node ids change on every reply stays its real size. */
static void test_churn_stays_small(void)
{
        struct env e;
        size_t max_kids = 0;
        clock_t t0 = clock();

        if (!env_new(&e, true))
                return;
        tree_ref(e.t, e.job);
        for (int round = 0; round < 200; round++) {
                struct snap *s = snap_new(), *d;
                struct changes ch = { 0 };
                char name[32];

                for (int k = 0; k < 100; k++) {
                        snprintf(name, sizeof(name), "Qm%d-%d", round, k);
                        snap_add_dir(s, name, &d);
                        snap_add_text(d, "state", "Running", 7);
                }
                tree_apply(e.t, e.job, s, UNIT_A, round ? &ch : NULL);
                /* the replay did its mkdirs and rmdirs */
                for (size_t i = 0; i < ch.n; i++)
                        tree_replayed(ch.v[i].node, ch.v[i].kind);
                changes_release(e.t, &ch);
                if (tree_kids(e.job) > max_kids)
                        max_kids = tree_kids(e.job);
                snap_free(s);
        }
        /* one reply's worth, plus the one before while its deletes were queued */
        CHECK(max_kids <= 200);
        CHECK_INT_EQ(tree_kids(e.job), 100);
        CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
        tree_free(e.t);
}

/* Dropped contents keep size and inode; a refetch with the same bytes is
 * no change, with other bytes it is one. */
static void test_drop_content(void)
{
        static const char *const v1[][2] = { { "state", "Running" }, { NULL, NULL } };
        static const char *const v2[][2] = { { "state", "Completed" }, { NULL, NULL } };
        struct snap *s1 = snap_of(v1), *s2 = snap_of(v2);
        struct changes ch = { 0 };
        struct node *state;
        struct node_attr a;
        struct env e;

        if (!env_new(&e, true))
                return;
        tree_ref(e.t, e.job);
        tree_apply(e.t, e.job, s1, UNIT_A, NULL);
        state = tree_child(e.job, "state");
        tree_ref(e.t, state);
        CHECK(tree_unit_bytes(e.job, UNIT_A) > strlen("Running\n"));
        CHECK_INT_EQ(tree_drop_content(e.job), strlen("Running\n"));
        node_attr(state, &a);
        CHECK(!a.has_content && a.size == strlen("Running\n"));
        CHECK(node_content(state) == NULL);
        tree_apply(e.t, e.job, s1, UNIT_A, &ch);
        CHECK_INT_EQ(ch.n, 0);                          /* the same value: no event */
        CHECK(content_is(state, "Running\n"));
        tree_drop_content(e.job);
        tree_apply(e.t, e.job, s2, UNIT_A, &ch);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, state), 1);  /* twin: a new value */
        changes_release(e.t, &ch);
        /* prune refuses while the kernel holds a node, frees once it does not */
        CHECK_INT_EQ(tree_prune(e.t, e.job), -EBUSY);
        tree_forget(e.t, state, 1);
        CHECK_INT_EQ(tree_prune(e.t, e.job), 0);
        CHECK(tree_child(e.job, "state") == NULL);
        snap_free(s1);
        snap_free(s2);
        tree_free(e.t);
}

/* Only nodes of the unit that fetched are removed by its replies. */
static void test_apply_ownership(void)
{
        static const char *const mine[][2] = { { "state", "x" }, { NULL, NULL } };
        struct snap *empty = snap_new(), *s = snap_of(mine);
        struct node *other;
        struct env e;

        if (!env_new(&e, false))
                return;
        tree_add(e.t, e.job, "other", NODE_FILE, ROLE_PLAIN, &other);
        node_set_unit(other, UNIT_B);
        tree_apply(e.t, e.job, s, UNIT_A, NULL);
        tree_apply(e.t, e.job, empty, UNIT_A, NULL);
        CHECK(tree_child(e.job, "state") == NULL);      /* A's: removed and freed */
        CHECK(tree_child(e.job, "other") == other && node_visible(other));     /* B's: kept */
        snap_free(empty);
        snap_free(s);
        tree_free(e.t);
}

/* B15: a name that turns from a file into a directory takes the new type. */
static void test_type_change(void)
{
        static const char *const as_file[][2] = { { "x", "1" }, { NULL, NULL } };
        struct snap *f = snap_of(as_file), *d = snap_new(), *sub;
        struct env e;

        if (!env_new(&e, false))
                return;
        snap_add_dir(d, "x", &sub);
        snap_add_text(sub, "inner", "2", 1);
        tree_apply(e.t, e.job, f, UNIT_A, NULL);
        CHECK(!node_is_dir(tree_child(e.job, "x")));
        tree_apply(e.t, e.job, d, UNIT_A, NULL);
        CHECK(tree_child(e.job, "x") && node_is_dir(tree_child(e.job, "x")));
        CHECK(content_is(tree_child(tree_child(e.job, "x"), "inner"), "2\n"));
        snap_free(f);
        snap_free(d);
        tree_free(e.t);
}

/* Symlinks and lazy files come through; a lazy file keeps no bytes until set. */
static void test_links_and_lazy(void)
{
        struct snap *s = snap_new();
        struct node *l, *z;
        struct node_attr a;
        struct env e;

        if (!env_new(&e, false))
                return;
        snap_add_link(s, "slurm", "../../../slurm/42");
        snap_add_lazy(s, "content.zip");
        tree_apply(e.t, e.job, s, UNIT_A, NULL);
        l = tree_child(e.job, "slurm");
        z = tree_child(e.job, "content.zip");
        node_attr(l, &a);
        CHECK_INT_EQ(a.type, NODE_LINK);
        CHECK(content_is(l, "../../../slurm/42"));
        node_attr(z, &a);
        CHECK(a.type == NODE_LAZY && !a.has_content && a.size == 0);
        node_set_content(z, blob_new("PK", 2));
        node_attr(z, &a);
        CHECK(a.has_content && a.size == 2);
        /* a refetch of a live item asks a lazy file again */
        tree_apply(e.t, e.job, s, UNIT_A, NULL);
        node_attr(z, &a);
        CHECK(!a.has_content);
        snap_free(s);
        tree_free(e.t);
}

/* A lookup waiting below a directory keeps its vanished children, and the
 * replay sees it to defer mkdirs there. */
static void test_lookups_pending(void)
{
        struct env e;
        struct node *n;

        if (!env_new(&e, false))
                return;
        CHECK(!tree_lookups_pending(e.jobs));
        tree_lookup_begin(e.jobs);
        CHECK(tree_lookups_pending(e.jobs));
        tree_add(e.t, e.job, "f", NODE_FILE, ROLE_PLAIN, &n);
        tree_lookup_begin(n);
        tree_remove(e.t, n, NULL);
        tree_reclaim(e.t, e.job);
        CHECK(tree_child(e.job, "f") == n);             /* kept while fetched */
        tree_lookup_end(n);
        tree_reclaim(e.t, e.job);
        CHECK(tree_child(e.job, "f") == NULL);
        tree_lookup_end(e.jobs);
        CHECK(!tree_lookups_pending(e.jobs));
        tree_free(e.t);
}

static void test_kernel_copy_valid(void)
{
        static const char *const v1[][2] = { { "a", "1" }, { NULL, NULL } };
        static const char *const v2[][2] = { { "a", "1" }, { "b", "2" }, { NULL, NULL } };
        struct snap *s1 = snap_of(v1), *s2 = snap_of(v2);
        struct env e;

        if (!env_new(&e, false))
                return;
        tree_apply(e.t, e.job, s1, UNIT_A, NULL);
        CHECK(!tree_kernel_copy_valid(e.job));  /* the kernel has no copy yet */
        CHECK(tree_kernel_copy_valid(e.job));   /* the same names */
        tree_apply(e.t, e.job, s2, UNIT_A, NULL);
        CHECK(!tree_kernel_copy_valid(e.job));  /* a new name */
        CHECK(tree_kernel_copy_valid(tree_child(e.job, "a")) == false);
        CHECK(tree_kernel_copy_valid(tree_child(e.job, "a")));
        snap_free(s1);
        snap_free(s2);
        tree_free(e.t);
}

/* Eviction of a job the kernel holds part of: the unheld nodes go, the held
 * ones stay; the refill brings the freed names back without IN_CREATE
 * (they never left the server), while a plain apply would announce them. */
static void test_prune_unheld_and_refill(void)
{
        struct snap *s = snap_new(), *d;
        struct changes ch = { 0 };
        struct node *state;
        struct env e;

        if (!env_new(&e, true))
                return;
        snap_add_text(s, "state", "Running", 7);
        for (int i = 0; i < 50; i++) {
                char name[16];

                snprintf(name, sizeof(name), "Qm%d", i);
                snap_add_dir(s, name, &d);
                snap_add_text(d, "state", "Running", 7);
        }
        tree_ref(e.t, e.job);
        tree_apply(e.t, e.job, s, UNIT_A, NULL);
        state = tree_child(e.job, "state");
        tree_ref(e.t, state);                   /* watched */
        CHECK_INT_EQ(tree_prune_unheld(e.t, e.job), 50);
        CHECK_INT_EQ(tree_kids(e.job), 1);
        CHECK(tree_child(e.job, "state") == state);
        CHECK_INT_EQ(tree_refill(e.t, e.job, s, UNIT_A, &ch), 0);
        CHECK_INT_EQ(tree_kids(e.job), 51);
        CHECK_INT_EQ(ch.n, 0);
        /* control twin: the same after a plain apply announces 50 creations */
        tree_prune_unheld(e.t, e.job);
        CHECK_INT_EQ(tree_apply(e.t, e.job, s, UNIT_A, &ch), 0);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_CREATE, NULL), 50);
        changes_release(e.t, &ch);
        snap_free(s);
        tree_free(e.t);
}

int main(void)
{
        test_add_child();
        test_many_children();
        test_node_path();
        test_apply_first_sight();
        test_apply_changes();
        test_changes_deduplicated();
        test_delete_and_reclaim();
        test_reclaim_waits_for_handles();
        test_churn_stays_small();
        test_drop_content();
        test_apply_ownership();
        test_type_change();
        test_links_and_lazy();
        test_lookups_pending();
        test_kernel_copy_valid();
        test_prune_unheld_and_refill();
        return CHECK_DONE();
}
