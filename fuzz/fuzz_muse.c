/* fuzz_muse: muse_parse_state, muse_parse_run and muse_parse_list.
 *
 * The first input byte picks the HTTP status (byte % 5 -> 200, 400, 404, 500,
 * 503); the rest is the reply body, not NUL-terminated. The ws API documents
 * no statuses, so every parser must judge any body under any status without
 * crashing, and succeed only on a 200. On success: the snapshot's names are
 * safe and unique, state.json is the body byte for byte, want_stdout implies
 * terminal; the run blob is info.stdout exactly (cross-checked with json-c
 * here); list names are safe. On failure the outputs are untouched.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "jobfs/backend.h"
#include "jobfs/muse.h"

static const long statuses[] = { 200, 400, 404, 500, 503 };

static bool errno_ok(int r)
{
        /* parse errors, size caps, and http_status_errno() of the statuses above */
        return r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG || r == -ENOENT ||
               r == -EIO || r == -EAGAIN;
}

/* info.stdout of body, parsed independently of jsonutil; NULL if none. */
static struct json_object *ref_stdout(const char *body, size_t len, struct json_object **ret_root)
{
        struct json_tokener *tok = json_tokener_new_ex(64);
        struct json_object *root, *info, *out;

        check(tok);
        root = json_tokener_parse_ex(tok, body, (int)len);
        json_tokener_free(tok);
        *ret_root = root;
        if (!root || !json_object_object_get_ex(root, "info", &info) ||
            !json_object_object_get_ex(info, "stdout", &out) ||
            !json_object_is_type(out, json_type_string))
                return NULL;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data + 1;
        struct snap *s = UNTOUCHED;
        struct blob *b = UNTOUCHED;
        struct backend_list names = { .n = 12345 };
        bool terminal = false, want_stdout = false;
        size_t len;
        long status;
        int r;

        if (size < 1)
                return 0;
        status = statuses[data[0] % 5];
        len = size - 1;

        r = muse_parse_state(body, len, status, &s, &terminal, &want_stdout);
        if (r == 0) {
                check(status == 200);
                check_snap(s);
                check_file_bytes(s, "state.json", body, len);
                check(snap_child(s, "cr"));
                check(!want_stdout || terminal);
                snap_free(s);
        } else {
                check(r < 0 && errno_ok(r));
                check(s == UNTOUCHED && !terminal && !want_stdout);
        }

        r = muse_parse_run(body, len, status, &b);
        if (r == 0) {
                struct json_object *root = NULL;
                struct json_object *out = ref_stdout(body, len, &root);

                check(status == 200 && b && b != UNTOUCHED);
                check(b->refs == 1 && b->data[b->len] == '\0');
                check(out && (size_t)json_object_get_string_len(out) == b->len);
                check(memcmp(json_object_get_string(out), b->data, b->len) == 0);
                json_object_put(root);
                blob_unref(b);
        } else {
                check(r < 0 && errno_ok(r));
                check(b == UNTOUCHED);
        }

        r = muse_parse_list(body, len, &names);
        if (r == 0) {
                check(names.n <= len);
                check_names(&names);
        } else {
                check(r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG);
                check(names.v == NULL && names.n == 12345);
        }
        return 0;
}
