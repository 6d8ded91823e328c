/* Unit tests of tree.c: adding and finding children (10,000 of them), node
 * paths, and tree_apply's diff: visibility states, the changes recorded for
 * the notifier, content generations and mtimes, and stable inode numbers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jobfs/cache.h"
#include "jobfs/tree.h"

/* tree_apply only compares unit pointers; these stand for two fetch units. */
static struct unit unit_a, unit_b;

static const struct timespec OLD_MTIME = { 1000, 0 };

static bool ts_eq(struct timespec a, struct timespec b)
{
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

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
        return n && n->content && n->content->len == strlen(text) &&
               memcmp(n->content->data, text, n->content->len) == 0;
}

static void test_add_child(void)
{
        struct tree *t = NULL;
        struct node *jobs = NULL, *a = NULL, *b = NULL, *dup = NULL;

        if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                return;
        CHECK_INT_EQ(t->root->ino, 1);          /* FUSE_ROOT_ID */
        CHECK(t->root->is_dir);
        CHECK(t->root->parent == NULL);
        CHECK(tree_child(t->root, "jobs") == NULL);     /* empty dir, no index yet */
        CHECK_INT_EQ(tree_add(t, t->root, "jobs", true, ROLE_JOBS, &jobs), 0);
        CHECK(jobs && jobs->is_dir && jobs->parent == t->root && jobs->role == ROLE_JOBS);
        CHECK_INT_EQ(jobs->vis, VIS_VISIBLE);
        CHECK_INT_EQ(jobs->nlookup, 0);
        CHECK_INT_EQ(tree_add(t, jobs, "a", false, ROLE_PLAIN, &a), 0);
        CHECK_INT_EQ(tree_add(t, jobs, "b", false, ROLE_PLAIN, &b), 0);
        CHECK(tree_child(t->root, "jobs") == jobs);
        CHECK(tree_child(jobs, "a") == a);
        CHECK(tree_child(jobs, "b") == b);
        CHECK(tree_child(jobs, "c") == NULL);
        CHECK(tree_child(t->root, "a") == NULL);        /* children are per directory */
        /* inode numbers: distinct, increasing, never 1 again */
        CHECK(jobs->ino > 1 && a->ino > jobs->ino && b->ino > a->ino);
        /* duplicate names are refused and change nothing */
        CHECK_INT_EQ(tree_add(t, jobs, "a", true, ROLE_JOB, &dup), -EEXIST);
        CHECK(dup == NULL);
        CHECK_INT_EQ(jobs->n_kids, 2);
        CHECK(tree_child(jobs, "a") == a && !a->is_dir);
        /* the same name under another directory is another node */
        CHECK_INT_EQ(tree_add(t, t->root, "a", false, ROLE_PLAIN, &dup), 0);
        CHECK(dup && dup != a && tree_child(t->root, "a") == dup);
        /* node_visible: users see everything but GONE (a PENDING_CREATE name
         * is hidden from the notifier alone) */
        a->vis = VIS_PENDING_CREATE;
        CHECK(node_visible(a));
        a->vis = VIS_GONE;
        CHECK(!node_visible(a));
        a->vis = VIS_PENDING_DELETE;
        CHECK(node_visible(a));
        a->vis = VIS_VISIBLE;
        CHECK(node_visible(a));
        tree_free(t);
        tree_free(NULL);
}

static void test_many_children(void)
{
        enum { N = 10000 };
        struct tree *t = NULL;
        struct node *dir = NULL, *n;
        size_t slots_seen[16] = { 0 }, n_seen = 0, missing = 0, wrong = 0, order = 0;
        char name[48];

        if (!CHECK_INT_EQ(tree_new(false, &t), 0))
                return;
        CHECK_INT_EQ(tree_add(t, t->root, "jobs", true, ROLE_JOBS, &dir), 0);
        for (int i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "00000000-0000-4000-8000-%012d", i);
                int r = tree_add(t, dir, name, true, ROLE_JOB, &n);

                if (r != 0) {
                        CHECK_INT_EQ(r, 0);
                        break;
                }
                if (n_seen == 0 || slots_seen[n_seen - 1] != dir->n_slots) {
                        if (n_seen < 16)
                                slots_seen[n_seen++] = dir->n_slots;
                }
                /* no index up to 8 kids (a scan is as fast), then one under half full */
                if (dir->n_kids <= 8 ? dir->n_slots != 0 : dir->n_slots < 2 * dir->n_kids) {
                        CHECK(dir->n_slots >= 2 * dir->n_kids);
                        break;
                }
        }
        CHECK_INT_EQ(dir->n_kids, N);
        /* grown by doubling: a power of two, several times over */
        CHECK(dir->n_slots >= 2 * N && (dir->n_slots & (dir->n_slots - 1)) == 0);
        CHECK(n_seen >= 10);
        for (int i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "00000000-0000-4000-8000-%012d", i);
                n = tree_child(dir, name);
                if (!n)
                        missing++;
                else if (strcmp(n->name, name) != 0 || n->parent != dir)
                        wrong++;
                if (strcmp(dir->kids[i]->name, name) != 0)
                        order++;        /* kids keep creation order (readdir offsets) */
        }
        CHECK_INT_EQ(missing, 0);
        CHECK_INT_EQ(wrong, 0);
        CHECK_INT_EQ(order, 0);
        CHECK(tree_child(dir, "00000000-0000-4000-8000-000000010000") == NULL);
        CHECK(tree_child(dir, "") == NULL);
        CHECK(tree_child(dir, "x") == NULL);
        /* every inode number distinct */
        {
                uint64_t *inos = calloc(N, sizeof(*inos));
                size_t dups = 0;

                if (CHECK(inos)) {
                        for (int i = 0; i < N; i++)
                                inos[i] = dir->kids[i]->ino;
                        for (int i = 1; i < N; i++)
                                if (inos[i] <= inos[i - 1])
                                        dups++;
                        CHECK_INT_EQ(dups, 0);
                        free(inos);
                }
        }
        tree_free(t);
}

static void test_node_path(void)
{
        struct tree *t = NULL;
        struct node *jobs, *job, *nd, *f;
        char buf[256];

        if (!CHECK_INT_EQ(tree_new(false, &t), 0))
                return;
        tree_add(t, t->root, "jobs", true, ROLE_JOBS, &jobs);
        tree_add(t, jobs, "9304c616", true, ROLE_JOB, &job);
        tree_add(t, job, "QmNode", true, ROLE_PLAIN, &nd);
        tree_add(t, nd, "stdout", false, ROLE_PLAIN, &f);
        CHECK_INT_EQ(node_path(t->root, buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "");
        CHECK_INT_EQ(node_path(jobs, buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "jobs");
        CHECK_INT_EQ(node_path(f, buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "jobs/9304c616/QmNode/stdout");
        /* "jobs/9304c616/QmNode/stdout" is 27 bytes: 28 fit, 27 do not */
        memset(buf, 'x', sizeof(buf));
        CHECK_INT_EQ(node_path(f, buf, 28), 0);
        CHECK_STR_EQ(buf, "jobs/9304c616/QmNode/stdout");
        CHECK_INT_EQ(node_path(f, buf, 27), -ENAMETOOLONG);
        CHECK_INT_EQ(node_path(f, buf, 1), -ENAMETOOLONG);
        CHECK_INT_EQ(node_path(t->root, buf, 1), 0);
        CHECK_STR_EQ(buf, "");
        tree_free(t);
}

/* A job dir under jobs/, as the handlers build it; kernel_knows sets the
 * job dir's lookup count (the kernel looked it up or not). */
static struct node *job_dir(struct tree *t, uint64_t nlookup)
{
        struct node *jobs = NULL, *job = NULL;

        tree_add(t, t->root, "jobs", true, ROLE_JOBS, &jobs);
        tree_add(t, jobs, "job", true, ROLE_JOB, &job);
        if (job)
                job->nlookup = nlookup;
        return job;
}

static const char *const FIRST[][2] = { { "state", "Running" }, { "status", "ok" }, { NULL, NULL } };

/* First fill of a directory the kernel does not know: nothing to announce. */
static void test_apply_first_unknown(void)
{
        struct tree *t = NULL;
        struct changes ch = { 0 };
        struct node *job, *n, *sub, *f;
        struct snap *s = snap_of(FIRST), *sd = NULL;

        if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                return;
        job = job_dir(t, 0);
        snap_add_dir(s, "QmNode", &sd);
        snap_add_dir(sd, "0", &sd);
        snap_add_text(sd, "stdout", "x", 1);
        CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, &ch), 0);
        CHECK_INT_EQ(ch.n, 0);
        n = tree_child(job, "state");
        CHECK(n && !n->is_dir && n->vis == VIS_VISIBLE && n->unit == &unit_a);
        CHECK(content_is(n, "Running\n"));
        CHECK(n && n->gen == 1);
        n = tree_child(job, "status");
        CHECK(n && n->vis == VIS_VISIBLE && content_is(n, "ok\n"));
        sub = tree_child(job, "QmNode");
        CHECK(sub && sub->is_dir && sub->vis == VIS_VISIBLE && sub->unit == &unit_a);
        sub = sub ? tree_child(sub, "0") : NULL;
        CHECK(sub && sub->is_dir && sub->vis == VIS_VISIBLE);
        f = sub ? tree_child(sub, "stdout") : NULL;
        CHECK(f && f->vis == VIS_VISIBLE && content_is(f, "x\n"));
        CHECK_INT_EQ(job->n_kids, 3);
        changes_clear(&ch);
        snap_free(s);
        tree_free(t);
}

/* A new entry in a directory the kernel knows: hidden until the notifier
 * replays it when announcing, visible at once when not; recorded either way. */
static void test_apply_create(void)
{
        for (int announce = 0; announce <= 1; announce++) {
                struct tree *t = NULL;
                struct changes ch = { 0 };
                struct node *job, *n, *sub, *deep;
                struct snap *s = snap_of(FIRST), *s2 = snap_of(FIRST), *sd = NULL;

                if (!CHECK_INT_EQ(tree_new(announce, &t), 0))
                        return;
                job = job_dir(t, 0);
                CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, &ch), 0);
                CHECK_INT_EQ(ch.n, 0);
                job->nlookup = 1;       /* the kernel looked the job up since */

                snap_add_dir(s2, "QmNew", &sd);
                snap_add_dir(sd, "0", &sd);
                snap_add_text(sd, "state", "Running", 7);
                CHECK_INT_EQ(tree_apply(t, job, s2, &unit_a, &ch), 0);
                n = tree_child(job, "QmNew");
                if (!CHECK(n))
                        goto next;
                CHECK_INT_EQ(n->vis, announce ? VIS_PENDING_CREATE : VIS_VISIBLE);
                CHECK(node_visible(n));
                /* one change, for the new top entry only: the kernel cannot
                 * know anything below a directory it has not seen */
                CHECK_INT_EQ(ch.n, 1);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_CREATE, n), 1);
                sub = tree_child(n, "0");
                CHECK(sub && sub->vis == VIS_VISIBLE);
                deep = sub ? tree_child(sub, "state") : NULL;
                CHECK(deep && deep->vis == VIS_VISIBLE && content_is(deep, "Running\n"));
                /* the unchanged files stayed as they were */
                CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, NULL), 0);
next:
                changes_clear(&ch);
                snap_free(s);
                snap_free(s2);
                tree_free(t);
        }
}

/* A changed file: new content, gen + 1, new mtime, and one MODIFY when the
 * kernel may see it; an unchanged file: nothing, mtime kept. */
static void test_apply_modify(void)
{
        static const char *const NEXT[][2] = { { "state", "Completed" }, { "status", "ok" }, { NULL, NULL } };

        for (int seen = 0; seen <= 1; seen++) {
                struct tree *t = NULL;
                struct changes ch = { 0 };
                struct node *job, *st, *stat;
                struct snap *s = snap_of(FIRST), *s2 = snap_of(NEXT), *s3 = snap_of(NEXT);
                uint64_t gen, ino;

                if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                        return;
                job = job_dir(t, seen);
                CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, &ch), 0);
                changes_clear(&ch);
                st = tree_child(job, "state");
                stat = tree_child(job, "status");
                if (!CHECK(st && stat))
                        goto next;
                if (seen)
                        CHECK_INT_EQ(st->vis, VIS_PENDING_CREATE);
                st->vis = stat->vis = VIS_VISIBLE;      /* as after the notifier's replay */
                st->mtime = stat->mtime = OLD_MTIME;
                gen = st->gen;
                ino = st->ino;

                CHECK_INT_EQ(tree_apply(t, job, s2, &unit_a, &ch), 0);
                CHECK(content_is(st, "Completed\n"));
                CHECK(content_is(tree_child(job, "state"), "Completed\n"));
                CHECK(tree_child(job, "state") == st);
                CHECK_INT_EQ(st->ino, ino);
                CHECK_INT_EQ(st->gen, gen + 1);
                CHECK(!ts_eq(st->mtime, OLD_MTIME) && st->mtime.tv_sec > OLD_MTIME.tv_sec);
                CHECK_INT_EQ(st->vis, VIS_VISIBLE);
                /* MODIFY only when the kernel may hold the file or list its dir */
                CHECK_INT_EQ(ch.n, seen ? 1 : 0);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, st), seen ? 1 : 0);
                /* the unchanged file: no change, same gen, mtime kept */
                CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, stat), 0);
                CHECK(ts_eq(stat->mtime, OLD_MTIME));
                CHECK_INT_EQ(stat->gen, 1);
                changes_clear(&ch);

                /* the same values again (new blobs, equal bytes): no change at all */
                st->mtime = OLD_MTIME;
                CHECK_INT_EQ(tree_apply(t, job, s3, &unit_a, &ch), 0);
                CHECK_INT_EQ(ch.n, 0);
                CHECK_INT_EQ(st->gen, gen + 1);
                CHECK(ts_eq(st->mtime, OLD_MTIME));

                /* a file the kernel holds (nlookup) counts though its dir is unknown */
                if (!seen) {
                        struct snap *s4 = snap_of(FIRST);

                        st->nlookup = 1;
                        CHECK_INT_EQ(tree_apply(t, job, s4, &unit_a, &ch), 0);
                        CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, st), 1);
                        CHECK_INT_EQ(ch.n, 1);
                        snap_free(s4);
                }
next:
                changes_clear(&ch);
                snap_free(s);
                snap_free(s2);
                snap_free(s3);
                tree_free(t);
        }
}

/* A vanished entry: PENDING_DELETE (announced, dir known) or GONE, with one
 * DELETE when the kernel may know it; its subtree goes too. */
static void test_apply_delete(void)
{
        static const char *const ONLY_STATE[][2] = { { "state", "Running" }, { NULL, NULL } };
        static const struct {
                bool announce;
                uint64_t dir_nlookup, node_nlookup;
                enum node_vis want_vis;
                size_t want_changes;
        } cases[] = {
                { true, 1, 0, VIS_PENDING_DELETE, 1 },
                { false, 1, 0, VIS_GONE, 1 },
                { true, 0, 0, VIS_GONE, 0 },
                { false, 0, 0, VIS_GONE, 0 },
                /* the kernel holds the entry itself but no longer the dir */
                { true, 0, 1, VIS_GONE, 1 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct tree *t = NULL;
                struct changes ch = { 0 };
                struct node *job, *nd, *shard, *status, *state;
                struct snap *s = snap_of(FIRST), *s2 = snap_of(ONLY_STATE), *sd = NULL;

                if (!CHECK_INT_EQ(tree_new(cases[i].announce, &t), 0))
                        return;
                job = job_dir(t, 0);
                snap_add_dir(s, "QmNode", &sd);
                snap_add_dir(sd, "0", &sd);
                snap_add_text(sd, "state", "Running", 7);
                CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, &ch), 0);
                CHECK_INT_EQ(ch.n, 0);
                job->nlookup = cases[i].dir_nlookup;
                status = tree_child(job, "status");
                nd = tree_child(job, "QmNode");
                state = tree_child(job, "state");
                shard = nd ? tree_child(nd, "0") : NULL;
                if (!CHECK(status && nd && shard && state))
                        goto next;
                status->nlookup = nd->nlookup = cases[i].node_nlookup;

                CHECK_INT_EQ(tree_apply(t, job, s2, &unit_a, &ch), 0);
                if (!CHECK_INT_EQ(status->vis, cases[i].want_vis) ||
                    !CHECK_INT_EQ(nd->vis, cases[i].want_vis) ||
                    !CHECK_INT_EQ(ch.n, 2 * cases[i].want_changes))
                        fprintf(stderr, "    case %zu\n", i);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_DELETE, status), cases[i].want_changes);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_DELETE, nd), cases[i].want_changes);
                /* below a deleted dir everything is gone, with no change of its own */
                CHECK_INT_EQ(shard->vis, VIS_GONE);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_DELETE, shard), 0);
                /* the name stays in the index (a stable inode when it comes back) */
                CHECK(tree_child(job, "status") == status);
                CHECK(state->vis == VIS_VISIBLE);
                CHECK_INT_EQ(count_kind(&ch, CHANGE_DELETE, state), 0);
next:
                changes_clear(&ch);
                snap_free(s);
                snap_free(s2);
                tree_free(t);
        }
}

/* A name that comes back gets its old node and inode number. */
static void test_apply_comeback(void)
{
        static const char *const ONLY_STATE[][2] = { { "state", "Running" }, { NULL, NULL } };
        static const char *const BACK[][2] = { { "state", "Running" }, { "status", "again" }, { NULL, NULL } };
        struct tree *t = NULL;
        struct changes ch = { 0 };
        struct node *job, *status;
        struct snap *s = snap_of(FIRST), *s2 = snap_of(ONLY_STATE), *s3 = snap_of(BACK),
                    *s4 = snap_of(ONLY_STATE), *s5 = snap_of(FIRST);
        uint64_t ino, next_ino;

        if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                return;
        job = job_dir(t, 1);
        CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, &ch), 0);
        changes_clear(&ch);
        status = tree_child(job, "status");
        if (!CHECK(status))
                goto out;
        status->vis = VIS_VISIBLE;
        ino = status->ino;

        /* gone for good (the notifier replayed the delete) */
        CHECK_INT_EQ(tree_apply(t, job, s2, &unit_a, &ch), 0);
        CHECK_INT_EQ(status->vis, VIS_PENDING_DELETE);
        status->vis = VIS_GONE;
        changes_clear(&ch);
        next_ino = t->next_ino;

        /* back: same node, same inode, new content, announced as a create */
        CHECK_INT_EQ(tree_apply(t, job, s3, &unit_a, &ch), 0);
        CHECK(tree_child(job, "status") == status);
        CHECK_INT_EQ(status->ino, ino);
        CHECK_INT_EQ(t->next_ino, next_ino);    /* no inode number used up */
        CHECK_INT_EQ(status->vis, VIS_PENDING_CREATE);
        CHECK(content_is(status, "again\n"));
        CHECK_INT_EQ(ch.n, 1);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_CREATE, status), 1);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_MODIFY, status), 0);
        changes_clear(&ch);
        status->vis = VIS_VISIBLE;

        /* gone and back before the notifier replayed the delete: no event */
        CHECK_INT_EQ(tree_apply(t, job, s4, &unit_a, &ch), 0);
        CHECK_INT_EQ(status->vis, VIS_PENDING_DELETE);
        changes_clear(&ch);
        CHECK_INT_EQ(tree_apply(t, job, s5, &unit_a, &ch), 0);
        CHECK_INT_EQ(status->vis, VIS_VISIBLE);
        CHECK_INT_EQ(status->ino, ino);
        CHECK(content_is(status, "ok\n"));
        CHECK_INT_EQ(count_kind(&ch, CHANGE_CREATE, status), 0);
        CHECK_INT_EQ(count_kind(&ch, CHANGE_DELETE, status), 0);
        changes_clear(&ch);
out:
        changes_clear(&ch);
        snap_free(s);
        snap_free(s2);
        snap_free(s3);
        snap_free(s4);
        snap_free(s5);
        tree_free(t);
}

/* out == NULL: the first sight of a unit. Nothing differs from an earlier
 * state, so even in a dir the kernel knows everything is revealed at once,
 * vanished names just go, and nothing is recorded. */
static void test_apply_first_sight(void)
{
        static const char *const NEXT[][2] = { { "state", "Completed" }, { NULL, NULL } };
        struct tree *t = NULL;
        struct node *job, *st, *stat;
        struct snap *s = snap_of(FIRST), *s2 = snap_of(NEXT);

        if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                return;
        job = job_dir(t, 1);
        CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, NULL), 0);
        st = tree_child(job, "state");
        stat = tree_child(job, "status");
        CHECK(st && st->vis == VIS_VISIBLE && content_is(st, "Running\n"));
        CHECK(stat && stat->vis == VIS_VISIBLE);
        if (st && stat) {
                st->mtime = OLD_MTIME;
                CHECK_INT_EQ(tree_apply(t, job, s2, &unit_a, NULL), 0);
                CHECK(content_is(st, "Completed\n"));
                CHECK_INT_EQ(st->gen, 2);
                CHECK(!ts_eq(st->mtime, OLD_MTIME));
                CHECK_INT_EQ(stat->vis, VIS_GONE);
        }
        snap_free(s);
        snap_free(s2);
        tree_free(t);
}

/* Entries another unit (or none) fills are not this snapshot's to delete;
 * a name that changes type is skipped. */
static void test_apply_ownership(void)
{
        static const char *const EMPTY[][2] = { { NULL, NULL } };
        struct tree *t = NULL;
        struct changes ch = { 0 };
        struct node *job, *mine, *other, *stat = NULL, *st;
        struct snap *s = snap_of(FIRST), *s2 = snap_of(EMPTY), *s3 = snap_new();

        if (!CHECK_INT_EQ(tree_new(true, &t), 0))
                return;
        job = job_dir(t, 1);
        tree_add(t, job, "static", false, ROLE_PLAIN, &stat);
        CHECK_INT_EQ(tree_apply(t, job, s, &unit_a, &ch), 0);
        changes_clear(&ch);
        mine = tree_child(job, "state");
        other = tree_child(job, "status");
        if (!CHECK(mine && other && stat))
                goto out;
        other->unit = &unit_b;
        mine->vis = other->vis = VIS_VISIBLE;
        CHECK_INT_EQ(tree_apply(t, job, s2, &unit_a, &ch), 0);
        CHECK_INT_EQ(mine->vis, VIS_PENDING_DELETE);
        CHECK_INT_EQ(other->vis, VIS_VISIBLE);
        CHECK_INT_EQ(stat->vis, VIS_VISIBLE);
        CHECK_INT_EQ(ch.n, 1);
        changes_clear(&ch);

        /* "status" as a directory now: the file keeps its type */
        snap_add_dir(s3, "status", NULL);
        other->unit = &unit_a;
        CHECK_INT_EQ(tree_apply(t, job, s3, &unit_a, &ch), 0);
        st = tree_child(job, "status");
        CHECK(st == other && !st->is_dir);
out:
        changes_clear(&ch);
        snap_free(s);
        snap_free(s2);
        snap_free(s3);
        tree_free(t);
}

static void test_changes(void)
{
        struct changes ch = { 0 };
        struct node n1, n2;

        for (int i = 0; i < 100; i++)
                CHECK_INT_EQ(changes_push(&ch, i % 2 ? CHANGE_MODIFY : CHANGE_DELETE, i % 2 ? &n1 : &n2), 0);
        CHECK_INT_EQ(ch.n, 100);
        CHECK(ch.cap >= 100);
        CHECK(ch.v[99].kind == CHANGE_MODIFY && ch.v[99].node == &n1);
        CHECK(ch.v[0].kind == CHANGE_DELETE && ch.v[0].node == &n2);
        changes_clear(&ch);
        CHECK(ch.n == 0 && ch.v == NULL && ch.cap == 0);
        changes_clear(&ch);
}

int main(void)
{
        test_add_child();
        test_many_children();
        test_node_path();
        test_apply_first_unknown();
        test_apply_create();
        test_apply_modify();
        test_apply_delete();
        test_apply_comeback();
        test_apply_first_sight();
        test_apply_ownership();
        test_changes();
        return CHECK_DONE();
}
