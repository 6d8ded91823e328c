/* fuzz_bacalhau_v1: the v1 wire-format parsers (bacalhau_v1.c) on any bytes.
 *
 * The input's first byte picks the release (an old-numbering v1.1.0 or
 * v1.5.1, a new-numbering v1.5.2 or v1.9.3) and the rest is a reply body,
 * not NUL-terminated (an over-read shows under ASan). The same bytes go to
 * every parser: the version reply, the job builder (as the job reply, then
 * as an executions reply and as a history page), the streaming list-page
 * scanner, and the error mapper. On success a snapshot must hold only safe,
 * unique names with the right count, state.json must be the job reply byte
 * for byte, list entries must be safe names; on failure outputs must be
 * untouched and the errno one the backend expects. Everything is freed, so
 * LeakSanitizer checks the error paths too.
 */
#include <errno.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "jobfs/backend.h"
#include "jobfs/bacalhau_v1.h"
#include "jobfs/bacalhau_v1_job.h"

static bool parse_errno_ok(int r)
{
        return r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG;
}

static void fuzz_job(const struct bacalhau_v1_version *v, const char *body, size_t size)
{
        struct backend_item it = { .snap = UNTOUCHED };
        struct bacalhau_v1_job *j = NULL;
        const char *token = NULL;
        size_t n = 0;
        int r;

        check(bacalhau_v1_job_new(v, &j) == 0);
        r = bacalhau_v1_job_add_job(j, body, size);
        check(r == 0 || parse_errno_ok(r));
        if (r < 0) {
                check(bacalhau_v1_job_id(j) == NULL);
                check(bacalhau_v1_job_finish(j, "k", &it) == -EINVAL && it.snap == UNTOUCHED);
                bacalhau_v1_job_free(j);
                return;
        }
        check(bacalhau_v1_job_id(j) && *bacalhau_v1_job_id(j));
        /* the same bytes as the other replies a fetch may bring */
        r = bacalhau_v1_job_add_executions(j, body, size);
        check(r == 0 || parse_errno_ok(r));
        r = bacalhau_v1_job_add_history(j, body, size, &n, &token);
        check(r == 0 || parse_errno_ok(r));
        check(r < 0 || !token || (*token && strlen(token) <= 1024));
        it.snap = NULL;
        r = bacalhau_v1_job_finish(j, "k", &it);
        check(r == 0 || r == -ENOMEM || r == -E2BIG);
        if (r == 0) {
                check_snap(it.snap);
                check_file_bytes(it.snap, "state.json", body, size);
                check(!it.name || snap_name_ok(it.name, strlen(it.name)));
                backend_item_clear(&it);
        } else {
                check(it.snap == NULL && it.name == NULL && !it.sig);
        }
        bacalhau_v1_job_free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const releases[] = { "v1.1.0", "v1.5.1", "v1.5.2", "v1.9.3" };
        struct bacalhau_v1_version v = { 0 }, got = { .major = 77 };
        struct bacalhau_v1_page page = { .n = 12345 };
        const char *body;
        int r;

        if (size == 0)
                return 0;
        check(bacalhau_v1_version_set(releases[data[0] % 4], &v) == 0);
        body = (const char *)data + 1;
        size--;

        r = bacalhau_v1_parse_version(body, size, &got);
        check(r == 0 || parse_errno_ok(r));
        if (r == 0)
                for (const char *p = got.text; *p; p++)
                        check(*p > 0x20 && *p < 0x7f);
        else
                check(got.major == 77);

        fuzz_job(&v, body, size);

        r = bacalhau_v1_parse_page(body, size, 1000, &page);
        check(r == 0 || parse_errno_ok(r));
        if (r == 0) {
                check(page.n <= 1000 && page.n <= size);
                for (size_t i = 0; i < page.n; i++)
                        check(snap_name_ok(page.v[i].name, strlen(page.v[i].name)));
                check(!page.next_token || strlen(page.next_token) <= 1024);
                bacalhau_v1_page_clear(&page);
        } else {
                check(page.v == NULL && page.n == 12345);
        }

        for (long status = 400; status <= 504; status += 52) {
                r = bacalhau_v1_reply_errno(status, body, size);
                check(r == -ENOENT || r == -EACCES || r == -EIO || r == -ETIMEDOUT ||
                      r == -EAGAIN);
        }
        return 0;
}
