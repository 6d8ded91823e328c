/* Unit tests of snapshot.c: which server names may become directory entries,
 * the insertion errors and the entry cap, and the text-file newline rule. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "snapcheck.h"
#include "jobfs/blob.h"
#include "jobfs/snapshot.h"

/* snap_name_ok over a literal, its length taken with sizeof (NULs count) */
#define NAME_OK(lit) snap_name_ok((lit), sizeof(lit) - 1)

static void test_name_basic(void)
{
        CHECK(!snap_name_ok(NULL, 0));
        CHECK(!snap_name_ok("", 0));
        CHECK(!NAME_OK("."));
        CHECK(!NAME_OK(".."));
        CHECK(!NAME_OK("a/b"));
        CHECK(!NAME_OK("/"));
        CHECK(!NAME_OK("a/"));
        CHECK(!NAME_OK("/a"));
        /* control twins: names that only look odd are fine */
        CHECK(NAME_OK("..."));
        CHECK(NAME_OK(".a"));
        CHECK(NAME_OK("a."));
        CHECK(NAME_OK("a b"));
        CHECK(NAME_OK("QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL"));
        CHECK(NAME_OK("9304c616-291f-41ad-b862-54e133c0149e"));
        CHECK(NAME_OK("state.json"));
        /* the length argument is what counts, not the NUL */
        CHECK(snap_name_ok("ab/c", 2));
        CHECK(!snap_name_ok("..x", 2));
        CHECK(snap_name_ok("..x", 3));
}

static void test_name_control(void)
{
        /* NUL inside the given length */
        CHECK(!NAME_OK("a\0b"));
        CHECK(!NAME_OK("\0"));
        /* every other C0 control, alone and inside a name, and DEL */
        for (int c = 1; c < 0x20; c++) {
                char one[2] = { (char)c, 0 };
                char mid[4] = { 'a', (char)c, 'b', 0 };

                if (!CHECK(!snap_name_ok(one, 1)))
                        fprintf(stderr, "    control char 0x%02x accepted alone\n", c);
                if (!CHECK(!snap_name_ok(mid, 3)))
                        fprintf(stderr, "    control char 0x%02x accepted inside a name\n", c);
        }
        CHECK(!NAME_OK("\x7f"));
        CHECK(!NAME_OK("a\x7f"));
        CHECK(!NAME_OK("a\nb"));
        CHECK(!NAME_OK("tab\t"));
        /* the printable ASCII edges are fine */
        CHECK(NAME_OK(" "));
        CHECK(NAME_OK("~"));
}

static void test_name_length(void)
{
        char name[600];

        memset(name, 'a', sizeof(name));
        CHECK(snap_name_ok(name, 1));
        CHECK(snap_name_ok(name, 255));
        CHECK(!snap_name_ok(name, 256));
        CHECK(!snap_name_ok(name, sizeof(name)));
        /* 85 x U+20AC (3 bytes each) = 255 bytes: fine; one more byte: not */
        for (int i = 0; i < 86; i++)
                memcpy(name + 3 * i, "\xe2\x82\xac", 3);
        CHECK(snap_name_ok(name, 255));
        CHECK(!snap_name_ok(name, 258));
        /* a multi-byte character must not be cut by the limit either */
        CHECK(!snap_name_ok(name, 254));
}

static void test_name_utf8(void)
{
        /* valid: 2, 3 and 4 byte sequences and the edges of each range */
        CHECK(NAME_OK("\xc3\xa9t\xc3\xa9"));            /* été */
        CHECK(!NAME_OK("\xc2\x80"));                    /* U+0080, smallest 2-byte: a C1 control */
        CHECK(!NAME_OK("a\xc2\x9b" "b"));                /* U+009B CSI, terminal escapes */
        CHECK(NAME_OK("\xc2\xa0"));                     /* U+00A0, the first after C1 */
        CHECK(NAME_OK("\xdf\xbf"));                     /* U+07FF */
        CHECK(NAME_OK("\xe0\xa0\x80"));                 /* U+0800, smallest 3-byte */
        CHECK(NAME_OK("\xe2\x82\xac"));                 /* U+20AC */
        CHECK(NAME_OK("\xed\x9f\xbf"));                 /* U+D7FF, below the surrogates */
        CHECK(NAME_OK("\xee\x80\x80"));                 /* U+E000, above them */
        CHECK(NAME_OK("\xef\xbf\xbd"));                 /* U+FFFD */
        CHECK(NAME_OK("\xf0\x90\x80\x80"));             /* U+10000, smallest 4-byte */
        CHECK(NAME_OK("\xf0\x9f\x98\x80"));             /* U+1F600 */
        CHECK(NAME_OK("\xf4\x8f\xbf\xbf"));             /* U+10FFFF, the last */
        CHECK(NAME_OK("job-\xe6\x97\xa5\xe6\x9c\xac"));

        /* stray and missing continuation bytes */
        CHECK(!NAME_OK("\x80"));
        CHECK(!NAME_OK("a\xbf"));
        CHECK(!NAME_OK("\xc3"));                        /* cut at the end */
        CHECK(!snap_name_ok("\xc3\xa9", 1));            /* cut by the length */
        CHECK(!NAME_OK("\xc3\x41"));
        CHECK(!NAME_OK("\xe2\x82"));
        CHECK(!NAME_OK("\xe2\x82\x41"));
        CHECK(!NAME_OK("\xf0\x9f\x98"));
        CHECK(!NAME_OK("\xf0\x9f\x98\x41"));
        /* overlong forms, among them '/' and '.' in disguise */
        CHECK(!NAME_OK("\xc0\xaf"));                    /* '/' */
        CHECK(!NAME_OK("\xc0\xae"));                    /* '.' */
        CHECK(!NAME_OK("\xc0\x80"));                    /* NUL */
        CHECK(!NAME_OK("\xc1\xbf"));
        CHECK(!NAME_OK("\xe0\x80\xaf"));
        CHECK(!NAME_OK("\xe0\x9f\xbf"));                /* U+07FF in 3 bytes */
        CHECK(!NAME_OK("\xf0\x80\x80\xaf"));
        CHECK(!NAME_OK("\xf0\x8f\xbf\xbf"));            /* U+FFFF in 4 bytes */
        /* UTF-16 surrogates, alone and as a CESU-8 pair */
        CHECK(!NAME_OK("\xed\xa0\x80"));                /* U+D800 */
        CHECK(!NAME_OK("\xed\xbf\xbf"));                /* U+DFFF */
        CHECK(!NAME_OK("\xed\xa0\xbd\xed\xb8\x80"));
        /* past U+10FFFF, and bytes that never start a sequence */
        CHECK(!NAME_OK("\xf4\x90\x80\x80"));
        CHECK(!NAME_OK("\xf5\x80\x80\x80"));
        CHECK(!NAME_OK("\xf8\x88\x80\x80\x80"));
        CHECK(!NAME_OK("\xfc\x84\x80\x80\x80\x80"));
        CHECK(!NAME_OK("\xfe"));
        CHECK(!NAME_OK("\xff"));
        CHECK(!NAME_OK("ok\xff"));
        /* Latin-1 sent as is */
        CHECK(!NAME_OK("caf\xe9"));
}

static void test_add(void)
{
        struct snap *top = snap_new(), *d = NULL, *d2 = NULL;
        struct blob *b;

        if (!CHECK(top))
                return;
        CHECK(top->is_dir);
        CHECK(top->name == NULL);
        CHECK_INT_EQ(snap_add_dir(top, "node", &d), 0);
        CHECK(d && d->is_dir);
        CHECK_STR_EQ(d ? d->name : NULL, "node");
        CHECK(snap_child(top, "node") == d);
        CHECK_INT_EQ(snap_add_dir(d, "0", NULL), 0);    /* ret may be NULL */
        CHECK(snap_child(d, "0") != NULL);
        CHECK_INT_EQ(snap_add_text(top, "state", "Running", 7), 0);
        CHECK(snap_child(top, "missing") == NULL);

        /* duplicates, of either type, are -EEXIST and change nothing */
        CHECK_INT_EQ(snap_add_dir(top, "node", &d2), -EEXIST);
        CHECK_INT_EQ(snap_add_dir(top, "state", &d2), -EEXIST);
        CHECK_INT_EQ(snap_add_text(top, "node", "x", 1), -EEXIST);
        CHECK_INT_EQ(snap_add_text(top, "state", "Completed", 9), -EEXIST);
        CHECK(d2 == NULL);              /* ret untouched on failure */
        CHECK_TEXT(top, "state", "Running\n");
        CHECK_DIR(top, "", 2);
        CHECK_INT_EQ(*top->count, 3);
        /* the same name in another directory is fine */
        CHECK_INT_EQ(snap_add_text(d, "state", "x", 1), 0);

        /* unsafe names are -EINVAL */
        CHECK_INT_EQ(snap_add_dir(top, "", &d2), -EINVAL);
        CHECK_INT_EQ(snap_add_dir(top, ".", &d2), -EINVAL);
        CHECK_INT_EQ(snap_add_dir(top, "..", &d2), -EINVAL);
        CHECK_INT_EQ(snap_add_dir(top, "a/b", &d2), -EINVAL);
        CHECK_INT_EQ(snap_add_text(top, "..", "x", 1), -EINVAL);
        CHECK_INT_EQ(snap_add_text(top, "a\x01", "x", 1), -EINVAL);
        CHECK_INT_EQ(snap_add_text(top, "\xc0\xaf", "x", 1), -EINVAL);
        CHECK(d2 == NULL);
        CHECK_DIR(top, "", 2);
        CHECK_INT_EQ(*top->count, 4);

        /* snap_add_file takes the reference on success and on every error */
        b = blob_new("abc", 3);
        blob_ref(b);
        CHECK_INT_EQ(snap_add_file(top, "a/b", b), -EINVAL);
        CHECK_INT_EQ(b->refs, 1);
        blob_ref(b);
        CHECK_INT_EQ(snap_add_file(top, "state", b), -EEXIST);
        CHECK_INT_EQ(b->refs, 1);
        blob_ref(b);
        CHECK_INT_EQ(snap_add_file(top, "raw", b), 0);
        CHECK_INT_EQ(b->refs, 2);
        CHECK_FILE(top, "raw", "abc", 3);
        blob_unref(b);
        /* a failed allocation arrives as NULL content */
        CHECK_INT_EQ(snap_add_file(top, "nothing", NULL), -ENOMEM);
        CHECK_ABSENT(top, "nothing");

        snap_free(top);
        snap_free(NULL);
}

static void test_add_text(void)
{
        struct snap *top = snap_new();
        const struct snap *s;

        if (!CHECK(top))
                return;
        CHECK_INT_EQ(snap_add_text(top, "state", "Completed", 9), 0);
        CHECK_FILE(top, "state", "Completed\n", 10);
        /* len decides, not the NUL */
        CHECK_INT_EQ(snap_add_text(top, "cut", "abcdef", 3), 0);
        CHECK_FILE(top, "cut", "abc\n", 4);
        /* one newline is added even after one that is there */
        CHECK_INT_EQ(snap_add_text(top, "nl", "a\n", 2), 0);
        CHECK_FILE(top, "nl", "a\n\n", 3);
        /* empty text: an empty file, not "\n" and not an absent file */
        CHECK_INT_EQ(snap_add_text(top, "empty", "", 0), 0);
        CHECK_FILE(top, "empty", "", 0);
        s = snap_child(top, "empty");
        CHECK(s && !s->is_dir && s->content && s->content->len == 0);
        CHECK(s && s->content && s->content->data[0] == '\0');
        /* the content is NUL-terminated past len (blob.h) */
        s = snap_child(top, "state");
        CHECK(s && s->content && s->content->data[10] == '\0');
        snap_free(top);
}

/* Fills a snapshot to SNAP_MAX_ENTRIES, spread over directories so the
 * linear duplicate check stays fast, then checks every kind of add fails. */
/* A directory holds at most SNAP_DIR_MAX entries: the duplicate check is a
 * scan, and 50,000 node ids in a 1 MB reply took 30 s of CPU without it. */
static void test_dir_cap(void)
{
        struct snap *top = snap_new();
        char name[32];
        int r = 0;
        int i;

        if (!CHECK(top))
                return;
        for (i = 0; r == 0 && i < SNAP_DIR_MAX + 10; i++) {
                snprintf(name, sizeof(name), "n%d", i);
                r = snap_add_dir(top, name, NULL);
        }
        CHECK_INT_EQ(r, -E2BIG);
        CHECK_INT_EQ(i, SNAP_DIR_MAX + 1);
        CHECK_INT_EQ(top->n_children, SNAP_DIR_MAX);
        snap_free(top);
}

static void test_cap(void)
{
        enum { PER_DIR = 249 };         /* 400 dirs x (1 + 249) = 100,000 entries */
        struct snap *top = snap_new(), *last = NULL, *d;
        size_t added = 0;
        char name[32];
        int r = 0;
        struct blob *b;

        if (!CHECK(top))
                return;
        for (int i = 0; r == 0 && added < SNAP_MAX_ENTRIES; i++) {
                snprintf(name, sizeof(name), "d%d", i);
                r = snap_add_dir(top, name, &last);
                if (r == 0)
                        added++;
                for (int j = 0; r == 0 && j < PER_DIR && added < SNAP_MAX_ENTRIES; j++) {
                        snprintf(name, sizeof(name), "f%d", j);
                        r = snap_add_text(last, name, "x", 1);
                        if (r == 0)
                                added++;
                }
        }
        CHECK_INT_EQ(r, 0);
        CHECK_INT_EQ(added, SNAP_MAX_ENTRIES);
        CHECK_INT_EQ(*top->count, SNAP_MAX_ENTRIES);
        /* the count is the whole snapshot's: any directory is full now */
        CHECK_INT_EQ(snap_add_dir(top, "one-more", &d), -E2BIG);
        CHECK_INT_EQ(snap_add_text(top, "one-more", "x", 1), -E2BIG);
        CHECK_INT_EQ(snap_add_text(last, "one-more", "x", 1), -E2BIG);
        b = blob_ref(blob_new("y", 1));
        CHECK_INT_EQ(snap_add_file(last, "one-more", b), -E2BIG);
        CHECK_INT_EQ(b->refs, 1);
        blob_unref(b);
        CHECK_ABSENT(top, "one-more");
        CHECK_INT_EQ(*top->count, SNAP_MAX_ENTRIES);
        snap_free(top);

        /* control twin: one below the cap still adds */
        top = snap_new();
        if (!CHECK(top))
                return;
        *top->count = SNAP_MAX_ENTRIES - 1;
        CHECK_INT_EQ(snap_add_text(top, "last", "x", 1), 0);
        CHECK_INT_EQ(snap_add_text(top, "past", "x", 1), -E2BIG);
        snap_free(top);
}

int main(void)
{
        test_name_basic();
        test_name_control();
        test_name_length();
        test_name_utf8();
        test_add();
        test_add_text();
        test_dir_cap();
        test_cap();
        return CHECK_DONE();
}
