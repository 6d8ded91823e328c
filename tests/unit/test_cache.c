/* Unit tests of the cache policy (cache.c, cache_list.c) with a fake clock
 * and a fake backend: freshness and the TTL, final units, single flight,
 * the stale grace and --max-stale, stale-if-error and the back-off, gone
 * jobs, unknown names, Ctrl-C, change feeds, listings that drop jobs, the
 * generation check, eviction by bytes (held and not), and readahead.
 *
 * No sleeps: time is the fake clock's, and a fetch can be held at a gate
 * until the test opens it. Every real wait (for a thread to reach the gate)
 * has a 5 s deadline. The fake counts its calls: the requests a server
 * would have seen. */
#include "cachefake.h"

static void test_ttl(void)
{
        struct env e;
        char buf[64];

        if (!env_new(&e, 1.0, 0, 0))
                return;
        CHECK_INT_EQ(fetches(&e), 0);           /* nothing until asked */
        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "Running\n");
        CHECK_INT_EQ(fetches(&e), 1);
        CHECK_STR_EQ(e.f->keys[0], "job1");
        /* within the TTL: served, no request */
        for (int i = 0; i < 5; i++)
                CHECK_INT_EQ(read_state(&e, "job1", NULL, 0), 0);
        CHECK_INT_EQ(fetches(&e), 1);
        /* control twin: past the TTL, one new request and its data */
        set_state(&e, 0, "Verifying", false, 2);
        clock_advance(&e.clock, 1.5);
        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "Verifying\n");
        CHECK_INT_EQ(fetches(&e), 2);
        env_free(&e);

        /* TTL 0: every read asks, and every read returns */
        if (!env_new(&e, 0, 0, 0))
                return;
        for (int i = 0; i < 3; i++)
                CHECK_INT_EQ(read_state(&e, "job1", NULL, 0), 0);
        CHECK(fetches(&e) >= 3);
        env_free(&e);
}

static void test_terminal(void)
{
        struct env e;
        char buf[64];

        if (!env_new(&e, 1.0, 0, 0))
                return;
        set_state(&e, 0, "Completed", true, 1);
        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
        clock_advance(&e.clock, 1e6);
        set_state(&e, 0, "Running", false, 2);
        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "Completed\n");       /* final: never refetched */
        CHECK_INT_EQ(fetches(&e), 1);
        {
                struct node *n;

                lookup(&e, "job1", &n);
                CHECK(cache_timeout(e.c, n) >= 3600);   /* the kernel may keep it long */
        }
        env_free(&e);

        /* control twin: the same reply, not final, is refetched */
        if (!env_new(&e, 1.0, 0, 0))
                return;
        set_state(&e, 0, "Completed", false, 1);
        read_state(&e, "job1", NULL, 0);
        clock_advance(&e.clock, 1e6);
        read_state(&e, "job1", NULL, 0);
        CHECK_INT_EQ(fetches(&e), 2);
        env_free(&e);
}

struct reader {
        struct env *e;
        const char *job;
        int r;
        char buf[64];
        pthread_t thread;
};

static void *reader_main(void *arg)
{
        struct reader *rd = arg;

        rd->r = read_state(rd->e, rd->job, rd->buf, sizeof(rd->buf));
        return NULL;
}

/* 8 readers of a new job share one request. */
static void test_single_flight(void)
{
        enum { N = 8 };
        struct reader rd[N];
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        gate(&e, true);
        for (int i = 0; i < N; i++) {
                rd[i] = (struct reader){ .e = &e, .job = "job1" };
                pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]);
        }
        wait_at_gate(&e, 1);
        /* every reader waits on the one request (shared_waits counts them) */
        for (double end = real_now() + 5; stats(&e).waits < N && real_now() < end; sched_yield())
                ;
        CHECK_INT_EQ(stats(&e).waits, N);
        gate(&e, false);
        for (int i = 0; i < N; i++) {
                pthread_join(rd[i].thread, NULL);
                CHECK_INT_EQ(rd[i].r, 0);
                CHECK_STR_EQ(rd[i].buf, "Running\n");
        }
        CHECK_INT_EQ(fetches(&e), 1);
        env_free(&e);
}

static int stale_xattr(struct env *e, const char *job, char *buf, size_t size)
{
        struct node *n;
        int r;

        /* as getxattr does: on the node as it is, asking nothing */
        lock(e);
        n = tree_child(e->jobs, job);
        n = n ? tree_child(n, "state") : NULL;
        r = n ? cache_xattr(e->c, n, "user.jobfs.stale", buf, size) : -ENOENT;
        unlock(e);
        if (r >= 0)
                buf[r] = '\0';
        return r;
}

/* A slow refetch: the reader with data waits the grace (1 s) at most, gets
 * the data, marked stale; past --max-stale it gets an error instead. */
static void test_stale_grace(void)
{
        struct reader rd;
        struct env e;
        char x[128];

        if (!env_new(&e, 1.0, 2.0, 0))
                return;
        read_state(&e, "job1", NULL, 0);
        clock_advance(&e.clock, 1.5);           /* past the TTL, within --max-stale */
        gate(&e, true);
        rd = (struct reader){ .e = &e, .job = "job1" };
        pthread_create(&rd.thread, NULL, reader_main, &rd);
        wait_at_gate(&e, 1);
        CHECK(stale_xattr(&e, "job1", x, sizeof(x)) == -ENODATA);  /* pending, not past the grace */
        clock_advance(&e.clock, 1.1);           /* the grace runs out */
        pthread_join(rd.thread, NULL);
        /* 2.6 s old > --max-stale 2: not served */
        CHECK_INT_EQ(rd.r, -ETIMEDOUT);
        CHECK(stale_xattr(&e, "job1", x, sizeof(x)) > 0);
        CHECK(strstr(x, "refetch pending") != NULL);
        gate(&e, false);
        env_free(&e);

        /* control twin: without --max-stale the old data is served, stale */
        if (!env_new(&e, 1.0, 0, 0))
                return;
        read_state(&e, "job1", NULL, 0);
        clock_advance(&e.clock, 1.5);
        gate(&e, true);
        rd = (struct reader){ .e = &e, .job = "job1" };
        pthread_create(&rd.thread, NULL, reader_main, &rd);
        wait_at_gate(&e, 1);
        clock_advance(&e.clock, 1.1);
        pthread_join(rd.thread, NULL);
        CHECK_INT_EQ(rd.r, 0);
        CHECK_STR_EQ(rd.buf, "Running\n");
        CHECK(stats(&e).stale_served >= 1);
        gate(&e, false);
        env_free(&e);
}

/* A failed refetch serves the last good data, says so, and is not asked
 * again within the 1 s back-off. */
static void test_stale_if_error(void)
{
        struct env e;
        char buf[64], x[128];

        if (!env_new(&e, 1.0, 0, 0))
                return;
        read_state(&e, "job1", NULL, 0);
        clock_advance(&e.clock, 5);
        set_state(&e, -EIO, NULL, false, 1);
        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "Running\n");
        CHECK_INT_EQ(fetches(&e), 2);
        CHECK(stale_xattr(&e, "job1", x, sizeof(x)) > 0);
        CHECK(strstr(x, "Input/output error") != NULL);
        /* within the back-off: no request */
        for (int i = 0; i < 3; i++)
                read_state(&e, "job1", NULL, 0);
        CHECK_INT_EQ(fetches(&e), 2);
        /* after it: one; a success clears the mark */
        clock_advance(&e.clock, 1.1);
        set_state(&e, 0, "Completed", false, 3);
        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "Completed\n");
        CHECK_INT_EQ(fetches(&e), 3);
        CHECK_INT_EQ(stale_xattr(&e, "job1", x, sizeof(x)), -ENODATA);
        env_free(&e);

        /* a cold unit has nothing to serve: the error itself */
        if (!env_new(&e, 1.0, 0, 0))
                return;
        set_state(&e, -ECONNREFUSED, NULL, false, 1);
        CHECK_INT_EQ(read_state(&e, "job1", NULL, 0), -ECONNREFUSED);
        env_free(&e);
}

/* The server says the job is gone: its directory goes, ENOENT; it may come back. */
static void test_enoent(void)
{
        struct node *n = NULL;
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        read_state(&e, "job1", NULL, 0);
        lookup(&e, "job1", &n);
        lock(&e);
        cache_kernel_ref(e.c, n);               /* the kernel holds the dir */
        unlock(&e);
        clock_advance(&e.clock, 2);
        set_state(&e, -ENOENT, NULL, false, 1);
        CHECK_INT_EQ(read_state(&e, "job1", NULL, 0), -ENOENT);
        CHECK(!node_visible(n));
        CHECK_INT_EQ(lookup(&e, "job1", NULL), -ENOENT);        /* within the back-off */
        CHECK_INT_EQ(fetches(&e), 2);
        clock_advance(&e.clock, 1.1);
        set_state(&e, 0, "Running", false, 1);
        CHECK_INT_EQ(lookup(&e, "job1", NULL), 0);              /* back, same node */
        CHECK(node_visible(n) && tree_child(e.jobs, "job1") == n);
        env_free(&e);
}

/* Unknown names leave nothing but a bounded, short-lived negative entry. */
static void test_unknown_names(void)
{
        struct env e;
        char name[32];
        size_t units0;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        units0 = stats(&e).units;
        set_state(&e, -ENOENT, NULL, false, 1);
        for (int i = 0; i < 300; i++) {
                snprintf(name, sizeof(name), "no-such-%d", i);
                CHECK_INT_EQ(lookup(&e, name, NULL), -ENOENT);
        }
        CHECK_INT_EQ(fetches(&e), 300);
        CHECK_INT_EQ(stats(&e).units, units0);
        CHECK(stats(&e).failed_lookups <= 256);
        /* asked again within the back-off: no request (the kernel also keeps
         * a negative entry that long) */
        CHECK_INT_EQ(lookup(&e, "no-such-299", NULL), -ENOENT);
        CHECK_INT_EQ(fetches(&e), 300);
        CHECK(cache_negative_timeout(e.c, e.jobs) > 0);
        CHECK(tree_child(e.jobs, "no-such-299") == NULL);
        /* past it, swept: nothing left */
        clock_advance(&e.clock, 2);
        lock(&e);
        cache_sweep(e.c);
        unlock(&e);
        CHECK_INT_EQ(stats(&e).failed_lookups, 0);
        /* unsafe names never reach the server */
        CHECK_INT_EQ(lookup(&e, "..", NULL), -ENOENT);
        CHECK_INT_EQ(lookup(&e, "a\x01", NULL), -ENOENT);
        CHECK_INT_EQ(fetches(&e), 300);
        env_free(&e);
}

static bool interrupted_flag;

static bool is_interrupted(void *ctx)
{
        (void)ctx;
        return __atomic_load_n(&interrupted_flag, __ATOMIC_ACQUIRE);
}

static void *interruptible_reader(void *arg)
{
        struct reader *rd = arg;
        struct cache_caller who = { .interrupted = is_interrupted };
        struct node *n = NULL;

        lock(rd->e);
        rd->r = cache_lookup(rd->e->c, rd->e->jobs, rd->job, &who, &n);
        unlock(rd->e);
        return NULL;
}

/* Ctrl-C ends a wait for a stuck server; the fetch goes on for the next reader. */
static void test_interrupt(void)
{
        struct reader rd;
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        gate(&e, true);
        interrupted_flag = false;
        rd = (struct reader){ .e = &e, .job = "job1" };
        pthread_create(&rd.thread, NULL, interruptible_reader, &rd);
        wait_at_gate(&e, 1);
        __atomic_store_n(&interrupted_flag, true, __ATOMIC_RELEASE);
        pthread_join(rd.thread, NULL);
        CHECK_INT_EQ(rd.r, -EINTR);
        gate(&e, false);
        /* the fetch completed behind: the next lookup costs nothing */
        for (double end = real_now() + 5; stats(&e).cached == 0 && real_now() < end; sched_yield())
                ;
        CHECK_INT_EQ(lookup(&e, "job1", NULL), 0);
        CHECK_INT_EQ(fetches(&e), 1);
        env_free(&e);
}

/* The fake lists one job, job1, whose listing signature is sig; a change
 * feed when feed is true. Before the first listing (no worker reads it). */
static void list_job1(struct env *e, bool feed, uint64_t sig)
{
        e->f->feed = feed;
        snprintf(e->f->names[0], sizeof(e->f->names[0]), "job1");
        e->f->sigs[0] = sig;
        e->f->n_names = 1;
}

/* job1 moves on the server: its listing signature says so from now on. */
static void move_job1(struct env *e, uint64_t sig)
{
        pthread_mutex_lock(&e->f->lock);
        e->f->sigs[0] = sig;
        pthread_mutex_unlock(&e->f->lock);
}

/* A change feed: a listed job whose signature did not move is not due; one
 * whose signature moved is, and a poll fetches it. Twin: without a feed,
 * nothing says it moved (the poller falls back to its period). */
static void test_feed(void)
{
        const struct poll_fact *f;
        struct facts fs;
        struct node *n;
        struct env e;

        for (int feed = 1; feed >= 0; feed--) {
                if (!env_new(&e, 1.0, 0, 0))
                        return;
                list_job1(&e, feed, 7);
                list_now(&e);
                set_state(&e, 0, "Running", false, 7);
                read_state(&e, "job1", NULL, 0);
                lookup(&e, "job1", &n);
                lock(&e);
                cache_kernel_ref(e.c, n);       /* held: pollable */
                unlock(&e);
                clock_advance(&e.clock, 2);
                list_now(&e);                   /* the same sig: nothing moved */
                fs = poll_facts(&e);
                f = item_fact(&fs);
                if (!CHECK(f != NULL))
                        return;
                CHECK_INT_EQ(f->covered, feed);
                CHECK(!f->changed);
                /* the job moves on the server: the listing says so */
                move_job1(&e, 8);
                set_state(&e, 0, "Verifying", false, 8);
                clock_advance(&e.clock, 2);
                list_now(&e);
                fs = poll_facts(&e);
                f = item_fact(&fs);
                CHECK_INT_EQ(f->changed, feed);
                if (feed) {
                        lock(&e);
                        cache_poll(e.c, f->unit);
                        unlock(&e);
                        for (double end = real_now() + 5; fetches(&e) < 2 && real_now() < end;)
                                ;
                        CHECK_INT_EQ(fetches(&e), 2);
                        fs = poll_facts(&e);
                        /* fetched and matching: not changed any more, still covered */
                        for (double end = real_now() + 5; real_now() < end; fs = poll_facts(&e))
                                if (item_fact(&fs) && !item_fact(&fs)->busy)
                                        break;
                        CHECK(item_fact(&fs) && !item_fact(&fs)->changed && item_fact(&fs)->covered);
                }
                env_free(&e);
        }
}

/* A job the feed lists with the signature of its data is as fresh as that
 * listing: read 1.5 s after its fetch (TTL 1 s) but 0.3 s after the listing,
 * it is served without a request. Twin: the signature moved, and the read
 * fetches. */
static void test_feed_unchanged_renews_freshness(void)
{
        for (int moved = 0; moved <= 1; moved++) {
                char buf[32];
                struct env e;

                if (!env_new(&e, 1.0, 0, 0))
                        return;
                list_job1(&e, true, 7);
                set_state(&e, 0, "Running", false, 7);
                list_now(&e);
                CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
                CHECK_INT_EQ(fetches(&e), 1);
                clock_advance(&e.clock, 1.2);   /* the listing is due again */
                if (moved) {
                        move_job1(&e, 8);
                        set_state(&e, 0, "Verifying", false, 8);
                }
                list_now(&e);
                clock_advance(&e.clock, 0.3);
                CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
                CHECK_STR_EQ(buf, moved ? "Verifying\n" : "Running\n");
                CHECK_INT_EQ(fetches(&e), 1 + moved);
                env_free(&e);
        }
}

static int kicks;

static void count_kick(void *ctx)
{
        (void)ctx;
        kicks++;
}

/* A listing that says a job moved tells the feed listener (the poller, which
 * then fetches it at once instead of on its next round), once per move.
 * Twin: listings that say nothing moved tell it nothing. */
static void test_feed_move_kicks_the_poller(void)
{
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        kicks = 0;
        lock(&e);
        cache_set_feed_listener(e.c, count_kick, NULL);
        unlock(&e);
        list_job1(&e, true, 7);
        set_state(&e, 0, "Running", false, 7);
        list_now(&e);
        CHECK_INT_EQ(read_state(&e, "job1", NULL, 0), 0);
        for (int i = 0; i < 2; i++) {
                clock_advance(&e.clock, 1.2);
                list_now(&e);                   /* unchanged */
        }
        CHECK_INT_EQ(kicks, 0);
        move_job1(&e, 8);
        for (int i = 0; i < 2; i++) {
                clock_advance(&e.clock, 1.2);
                list_now(&e);                   /* moved; then still moved, not fetched */
        }
        CHECK_INT_EQ(kicks, 1);
        lock(&e);
        cache_set_feed_listener(e.c, NULL, NULL);
        unlock(&e);
        env_free(&e);
}

/* The changes the cache announced (tree lock held); let go of at once. */
static size_t announced;

static void count_changes(void *ctx, struct changes *ch)
{
        announced += ch->n;
        changes_release(ctx, ch);
}

/* A job opened by path, then its root listed for the first time with the
 * item in it, changed: the change is announced (found by a CI run: a SLURM
 * job read by path went RUNNING silently when the first GET /jobs came
 * after its first fetch). Twin: a job never read announces nothing. */
static void test_first_listing_announces_item_changes(void)
{
        struct node *n;
        struct env e;

        for (int read_before = 1; read_before >= 0; read_before--) {
                if (!env_new(&e, 1.0, 0, 0))
                        return;
                announced = 0;
                cache_set_listener(e.c, count_changes, e.t);
                e.f->list_snaps = true;
                snprintf(e.f->names[0], sizeof(e.f->names[0]), "job1");
                e.f->n_names = 1;
                set_state(&e, 0, "PENDING", false, 1);
                if (read_before) {
                        CHECK_INT_EQ(read_state(&e, "job1", NULL, 0), 0);
                        lookup(&e, "job1", &n);
                        lock(&e);
                        cache_kernel_ref(e.c, n);
                        unlock(&e);
                }
                set_state(&e, 0, "RUNNING", false, 2);
                list_now(&e);                   /* the first listing of jobs/ */
                lock(&e);
                CHECK_INT_EQ(announced > 0, read_before);
                unlock(&e);
                if (read_before) {
                        char buf[32];

                        clock_advance(&e.clock, 0.5);   /* within the TTL: no fetch */
                        CHECK_INT_EQ(read_state(&e, "job1", buf, sizeof(buf)), 0);
                        CHECK_STR_EQ(buf, "RUNNING\n");
                        CHECK_INT_EQ(fetches(&e), 1);
                }
                env_free(&e);
        }
}

static bool has_list_fact(struct env *e)
{
        struct facts fs = poll_facts(e);

        for (size_t i = 0; i < fs.n; i++)
                if (fs.v[i].is_list)
                        return true;
        return false;
}

/* The listing is the change feed of the held jobs it covers: it is polled
 * while one relies on it, even once the kernel forgot jobs/ (found by a CI
 * run: a watched job whose listing nobody polled). Twin: the job not held,
 * nothing relies on the listing, it is not polled. */
static void test_feed_polled_while_relied_on(void)
{
        for (int held = 1; held >= 0; held--) {
                struct node *n;
                struct env e;

                if (!env_new(&e, 1.0, 0, 0))
                        return;
                list_job1(&e, true, 7);
                set_state(&e, 0, "Running", false, 7);
                read_state(&e, "job1", NULL, 0);        /* read before any listing */
                list_now(&e);                   /* holds jobs/ once; covers job1 */
                lookup(&e, "job1", &n);
                lock(&e);
                if (held) {
                        cache_kernel_ref(e.c, n);
                        cache_kernel_ref(e.c, tree_child(n, "state"));   /* a watch */
                }
                cache_kernel_forget(e.c, e.jobs, 1);    /* the kernel drops jobs/ */
                unlock(&e);
                CHECK_INT_EQ(has_list_fact(&e), held);
                env_free(&e);
        }
}

/* The listing drops a job it listed before: it goes. A job opened by path
 * that no listing named stays (twin). */
static void test_list_removal(void)
{
        struct node *listed, *opened;
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        snprintf(e.f->names[0], sizeof(e.f->names[0]), "listed");
        snprintf(e.f->names[1], sizeof(e.f->names[1]), "other");
        e.f->n_names = 2;
        list_now(&e);
        CHECK_INT_EQ(lookup(&e, "listed", &listed), 0);
        CHECK_INT_EQ(fetches(&e), 0);           /* listed: exists, fetched when read */
        CHECK_INT_EQ(lookup(&e, "opened", &opened), 0);
        CHECK_INT_EQ(fetches(&e), 1);
        pthread_mutex_lock(&e.f->lock);
        snprintf(e.f->names[0], sizeof(e.f->names[0]), "other");
        e.f->n_names = 1;
        pthread_mutex_unlock(&e.f->lock);
        clock_advance(&e.clock, 2);
        list_now(&e);
        for (double end = real_now() + 5; real_now() < end; sched_yield()) {
                bool gone;

                lock(&e);
                gone = tree_child(e.jobs, "listed") == NULL;
                unlock(&e);
                if (gone)
                        break;
        }
        lock(&e);
        CHECK(tree_child(e.jobs, "listed") == NULL);    /* gone, and freed: nobody held it */
        CHECK(tree_child(e.jobs, "opened") == opened && node_visible(opened));
        unlock(&e);
        env_free(&e);
}

/* A fetch that started before the listing dropped its job is dropped. */
static void test_generation(void)
{
        struct reader rd;
        struct node *n;
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        snprintf(e.f->names[0], sizeof(e.f->names[0]), "job1");
        snprintf(e.f->names[1], sizeof(e.f->names[1]), "keep");
        e.f->n_names = 2;
        list_now(&e);
        read_state(&e, "job1", NULL, 0);
        lookup(&e, "job1", &n);
        lock(&e);
        cache_kernel_ref(e.c, n);
        unlock(&e);
        clock_advance(&e.clock, 2);
        gate(&e, true);
        rd = (struct reader){ .e = &e, .job = "job1" };
        pthread_create(&rd.thread, NULL, reader_main, &rd);
        wait_at_gate(&e, 1);
        /* meanwhile the listing drops it */
        pthread_mutex_lock(&e.f->lock);
        snprintf(e.f->names[0], sizeof(e.f->names[0]), "keep");
        e.f->n_names = 1;
        pthread_mutex_unlock(&e.f->lock);
        lock(&e);
        cache_get(e.c, e.jobs, NEED_LISTING, &(struct cache_caller){ 0 });
        unlock(&e);
        for (double end = real_now() + 5; real_now() < end;) {
                bool gone;

                lock(&e);
                gone = !node_visible(n);
                unlock(&e);
                if (gone)
                        break;
        }
        gate(&e, false);
        pthread_join(rd.thread, NULL);
        CHECK_INT_EQ(rd.r, -ENOENT);
        CHECK(stats(&e).dropped_results == 1);
        lock(&e);
        CHECK(!node_visible(n));                /* not brought back by the old reply */
        unlock(&e);
        env_free(&e);
}

/* Past --cache-bytes the least recently used lose their contents: first the
 * ones the kernel forgot (their nodes freed), then held ones (nodes kept,
 * contents refetched when read). Eviction never stalls behind held units. */
static void test_eviction(void)
{
        enum { JOBS = 40, BIG = 100000 };
        struct node *held[JOBS];
        struct env e;
        char name[32], buf[64];

        if (!env_new(&e, 1.0, 0, 10 * BIG))
                return;
        e.f->big = BIG;
        set_state(&e, 0, "Completed", true, 1);
        for (int i = 0; i < JOBS; i++) {
                snprintf(name, sizeof(name), "job%d", i);
                read_state(&e, name, NULL, 0);
                lookup(&e, name, &held[i]);
                if (i < JOBS / 2) {             /* the oldest half held, as by inotify */
                        struct node *st;

                        lock(&e);
                        cache_kernel_ref(e.c, held[i]);
                        cache_lookup(e.c, held[i], "state", NULL, &st);
                        cache_kernel_ref(e.c, st);
                        unlock(&e);
                }
                CHECK(stats(&e).bytes <= 11 * BIG + 100000);
        }
        CHECK(stats(&e).cached <= 10);
        CHECK(stats(&e).evictions >= JOBS - 10);
        /* a held job keeps its nodes; its content comes back on a read */
        lock(&e);
        CHECK(tree_child(held[0], "state") != NULL);
        unlock(&e);
        CHECK_INT_EQ(read_state(&e, "job0", buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, "Completed\n");
        CHECK_INT_EQ(fetches(&e), JOBS + 1);
        env_free(&e);

        /* control twin: room for all, nothing goes */
        if (!env_new(&e, 1.0, 0, 100 * BIG))
                return;
        e.f->big = BIG;
        set_state(&e, 0, "Completed", true, 1);
        for (int i = 0; i < JOBS; i++) {
                snprintf(name, sizeof(name), "job%d", i);
                read_state(&e, name, NULL, 0);
        }
        CHECK_INT_EQ(stats(&e).cached, JOBS);
        CHECK_INT_EQ(stats(&e).evictions, 0);
        env_free(&e);
}

/* Readahead: opening job k queues the next ones, a window ahead of the
 * reader, each considered once (a warm sweep costs nothing). */
static void test_readahead(void)
{
        enum { JOBS = 200 };
        struct node *n;
        struct env e;

        if (!env_new(&e, 1.0, 0, 0))
                return;
        for (int i = 0; i < JOBS && i < NAMES_MAX; i++)
                snprintf(e.f->names[i], sizeof(e.f->names[i]), "job%02d", i);
        e.f->n_names = NAMES_MAX;
        set_state(&e, 0, "Completed", true, 1);
        list_now(&e);
        CHECK_INT_EQ(lookup(&e, "job00", &n), 0);
        lock(&e);
        cache_readahead(e.c, n);
        unlock(&e);
        /* the window: 16 queued, fetched by the lane */
        for (double end = real_now() + 5; fetches(&e) < 16 && real_now() < end; sched_yield())
                ;
        CHECK_INT_EQ(fetches(&e), 16);
        /* a sweep over all of them: every job fetched once */
        for (int i = 0; i < NAMES_MAX; i++) {
                char name[16];

                snprintf(name, sizeof(name), "job%02d", i);
                lookup(&e, name, &n);
                lock(&e);
                cache_readahead(e.c, n);
                unlock(&e);
                read_state(&e, name, NULL, 0);
        }
        CHECK_INT_EQ(fetches(&e), NAMES_MAX);
        env_free(&e);
}

int main(void)
{
        log_max_level = LOG_LVL_ERROR;
        test_ttl();
        test_terminal();
        test_single_flight();
        test_stale_grace();
        test_stale_if_error();
        test_enoent();
        test_unknown_names();
        test_interrupt();
        test_feed();
        test_feed_unchanged_renews_freshness();
        test_feed_move_kicks_the_poller();
        test_feed_polled_while_relied_on();
        test_first_listing_announces_item_changes();
        test_list_removal();
        test_generation();
        test_eviction();
        test_readahead();
        return CHECK_DONE();
}
