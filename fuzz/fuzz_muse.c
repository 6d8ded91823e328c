/* fuzz_muse: muse_parse_state, muse_parse_run, muse_parse_content and
 * muse_parse_list.
 *
 * The first input byte picks the HTTP status (byte % 5 -> 200, 400, 404, 500,
 * 503), the reply's Content-Type (byte / 5 % 6: none, application/json, a
 * JSON type with parameters, text/plain, application/zip, a +json type) and
 * what the run asked for (byte >= 128: JSON expected); the rest is the reply
 * body, not NUL-terminated. The ws API documents no statuses, so every
 * parser must judge any body under any status without crashing, and succeed
 * only on a 200. On success: the snapshot's names are safe and unique,
 * state.json is the body byte for byte and content.zip is lazy; a run reply
 * is info.stdout exactly (cross-checked with json-c here), the body itself
 * (a file), or one line; a content reply is the body and a zip; list names
 * are safe. On failure the outputs are untouched.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "jobfs/backend.h"
#include "jobfs/muse.h"

static const long statuses[] = { 200, 400, 404, 500, 503 };
static const char *const ctypes[] = { NULL, "application/json", "application/json; charset=utf-8",
                                      "text/plain", "application/zip", "application/problem+json" };

static bool errno_ok(int r)
{
        /* parse errors, size caps, and http_status_errno() of the statuses above */
        return r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG || r == -ENOENT ||
               r == -EIO || r == -EAGAIN;
}

/* member key of info (or of the root) of body as a string, parsed
 * independently of jsonutil; NULL if none. */
static struct json_object *ref_string(const char *body, size_t len, bool in_info, const char *key,
                                      struct json_object **ret_root)
{
        struct json_tokener *tok = json_tokener_new_ex(64);
        struct json_object *root, *obj, *out;

        check(tok);
        root = json_tokener_parse_ex(tok, body, (int)len);
        json_tokener_free(tok);
        *ret_root = root;
        obj = root;
        if (!root || (in_info && !json_object_object_get_ex(root, "info", &obj)) ||
            !json_object_object_get_ex(obj, key, &out) || !json_object_is_type(out, json_type_string))
                return NULL;
        return out;
}

static bool zip_signature(const char *body, size_t len)
{
        return len >= 4 && (memcmp(body, "PK\3\4", 4) == 0 || memcmp(body, "PK\5\6", 4) == 0);
}

static void check_run_reply(const char *body, size_t len, long status, enum muse_run_kind kind,
                            const struct blob *b)
{
        struct json_object *root = NULL, *out;

        check(status == 200 && b && b != UNTOUCHED);
        check(b->refs == 1 && b->data[b->len] == '\0');
        switch (kind) {
        case MUSE_RUN_RESULT:
                check(b->len == len && (len == 0 || memcmp(b->data, body, len) == 0));
                break;
        case MUSE_RUN_STDOUT:
                out = ref_string(body, len, true, "stdout", &root);
                check(out && (size_t)json_object_get_string_len(out) == b->len);
                check(memcmp(json_object_get_string(out), b->data, b->len) == 0);
                check(!zip_signature(body, len));
                break;
        case MUSE_RUN_DOWNLOAD:
                out = ref_string(body, len, false, "url", &root);
                check(out && (size_t)json_object_get_string_len(out) + 1 == b->len);
                check(memcmp(json_object_get_string(out), b->data, b->len - 1) == 0);
                check(b->len >= 2 && b->data[b->len - 1] == '\n');
                for (size_t i = 0; i + 1 < b->len; i++)
                        check((unsigned char)b->data[i] >= 0x20 && b->data[i] != 0x7f);
                break;
        default:
                check(!"a run reply of no known kind");
        }
        json_object_put(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data + 1;
        struct snap *s = UNTOUCHED;
        struct blob *b = UNTOUCHED;
        struct backend_list names = { .n = 12345 };
        struct muse_ask ask = { 0 };
        enum muse_run_kind kind = (enum muse_run_kind)77;
        const char *ctype;
        bool terminal = false, expect_json;
        size_t len;
        long status;
        int r;

        if (size < 1)
                return 0;
        status = statuses[data[0] % 5];
        ctype = ctypes[data[0] / 5 % 6];
        expect_json = data[0] >= 128;
        len = size - 1;

        r = muse_parse_state(body, len, status, &s, &terminal, &ask);
        if (r == 0) {
                const struct snap *lazy;

                check(status == 200);
                check_snap(s);
                check_file_bytes(s, "state.json", body, len);
                check(snap_child(s, "cr"));
                lazy = snap_child(s, "content.zip");
                check(lazy && lazy->type == SNAP_LAZY);
                check(!ask.get_run || terminal);
                check(ask.file && (strcmp(ask.file, "stdout") == 0 || strcmp(ask.file, "result") == 0 ||
                                   strcmp(ask.file, "download_url") == 0));
                check(ask.expect_json == (strcmp(ask.file, "result") != 0));
                snap_free(s);
        } else {
                check(r < 0 && errno_ok(r));
                check(s == UNTOUCHED && !terminal && !ask.get_run && !ask.file);
        }

        r = muse_parse_run(body, len, status, ctype, expect_json, &kind, &b);
        if (r == 0) {
                check_run_reply(body, len, status, kind, b);
                /* a zip is a file whatever the labels say */
                check(!zip_signature(body, len) || kind == MUSE_RUN_RESULT);
                blob_unref(b);
        } else {
                check(r < 0 && errno_ok(r));
                check(b == UNTOUCHED && kind == (enum muse_run_kind)77);
        }

        b = UNTOUCHED;
        r = muse_parse_content(body, len, status, &b);
        if (r == 0) {
                check(status == 200 && b && b != UNTOUCHED && zip_signature(body, len));
                check(b->len == len && memcmp(b->data, body, len) == 0 && b->data[len] == '\0');
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
