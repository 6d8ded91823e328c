/* fuzz_names: snap_name_ok against a reference written from the spec.
 *
 * The input is the name, raw bytes. The reference below is deliberately
 * written differently from snapshot.c (it follows the byte-range grammar of
 * RFC 3629 section 4 instead of decoding code points), so a shared mistake is
 * unlikely. Any disagreement aborts. Then snap_add_dir, which sees a C string
 * (the input up to its first NUL), must succeed exactly when snap_name_ok
 * accepts that string, on a fresh snapshot, and a second add must be -EEXIST.
 *
 * "Control character" is C0 (0x00-0x1f), DEL and C1 (U+0080-U+009F, bytes
 * C2 80-C2 9F), as snapshot.c reads it.
 */
#include <errno.h>
#include <stdint.h>

#include "fuzz_common.h"

/* A name is ok: 1-255 bytes, not "." or "..", no '/', C0 or DEL, and the
 * bytes are UTF-8 per RFC 3629 (no overlongs, surrogates, or > U+10FFFF). */
static bool ref_name_ok(const unsigned char *p, size_t n)
{
        size_t i = 0;

        if (n == 0 || n > 255)
                return false;
        if (n == 1 && p[0] == '.')
                return false;
        if (n == 2 && p[0] == '.' && p[1] == '.')
                return false;
        while (i < n) {
                unsigned char c = p[i], lo = 0x80, hi = 0xbf;
                size_t tails;

                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f || c == '/')
                                return false;
                        i++;
                        continue;
                }
                if (c == 0xc2) {
                        tails = 1;
                        lo = 0xa0;              /* below: C1 controls */
                } else if (c >= 0xc3 && c <= 0xdf) {
                        tails = 1;
                } else if (c == 0xe0) {
                        tails = 2;
                        lo = 0xa0;              /* below: overlong */
                } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
                        tails = 2;
                } else if (c == 0xed) {
                        tails = 2;
                        hi = 0x9f;              /* above: UTF-16 surrogates */
                } else if (c == 0xf0) {
                        tails = 3;
                        lo = 0x90;              /* below: overlong */
                } else if (c >= 0xf1 && c <= 0xf3) {
                        tails = 3;
                } else if (c == 0xf4) {
                        tails = 3;
                        hi = 0x8f;              /* above: past U+10FFFF */
                } else {
                        return false;           /* 80-C1 (tail, overlong lead), F5-FF */
                }
                if (tails > n - i - 1)
                        return false;
                if (p[i + 1] < lo || p[i + 1] > hi)
                        return false;
                for (size_t k = 2; k <= tails; k++)
                        if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                                return false;
                i += tails + 1;
        }
        return true;
}

static void dump_name(const char *what, const uint8_t *data, size_t size)
{
        fprintf(stderr, "%s, name (%zu bytes):", what, size);
        for (size_t i = 0; i < size && i < 300; i++)
                fprintf(stderr, " %02x", data[i]);
        fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct snap *top, *d = UNTOUCHED;
        char *name;
        size_t slen;
        bool ok;
        int r;

        ok = snap_name_ok((const char *)data, size);
        if (ok != ref_name_ok(data, size)) {
                dump_name(ok ? "snap_name_ok accepts, reference rejects"
                             : "snap_name_ok rejects, reference accepts", data, size);
                abort();
        }

        /* snap_add_dir takes a C string: it sees the input up to the first NUL */
        name = malloc(size + 1);
        check(name);
        memcpy(name, data, size);
        name[size] = '\0';
        slen = strlen(name);
        ok = snap_name_ok(name, slen);
        check(ok == ref_name_ok((const unsigned char *)name, slen));

        top = snap_new();
        check(top);
        r = snap_add_dir(top, name, &d);
        if (ok) {
                check(r == 0 && d != UNTOUCHED && d->is_dir && strcmp(d->name, name) == 0);
                check(snap_child(top, name) == d && *top->count == 1);
                check(snap_add_dir(top, name, NULL) == -EEXIST);
                check(snap_add_text(top, name, "x", 1) == -EEXIST);    /* the blob is taken */
        } else {
                if (r != -EINVAL)
                        dump_name("snap_add_dir disagrees with snap_name_ok", data, size);
                check(r == -EINVAL && d == UNTOUCHED && top->n_children == 0);
                check(snap_add_text(top, name, "x", 1) == -EINVAL);
        }
        check(*top->count == (ok ? 1u : 0u));
        snap_free(top);
        free(name);
        return 0;
}
