/* fuzz_bacalhau: bacalhau_parse_states and bacalhau_parse_list on any bytes.
 *
 * Both parsers get the same input (a reply body, not NUL-terminated, so an
 * over-read past len shows up under ASan). On success the snapshot must hold
 * only safe, unique names, the right entry count, and state.json must be the
 * input byte for byte; the id list must hold only safe names. On failure the
 * output parameters must be untouched and the errno one the backend expects.
 * Everything is freed, so LeakSanitizer checks the error paths too.
 *
 * -EEXIST is not allowed: a node whose id is "state" or "state.json" (the
 * job directory's own files) must be left out, not fail the whole reply
 * (corpus/bacalhau/hostile-collide-*). The list parser streams through
 * jsonscan, a byte-at-a-time state machine, so feeding the whole input at
 * once covers any split of it into chunks.
 */
#include <errno.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "jobfs/bacalhau.h"
#include "jobfs/backend.h"

static bool states_errno_ok(int r)
{
        return r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        struct backend_item it = { 0 };
        struct backend_list l = { .n = 12345 };
        int r;

        r = bacalhau_parse_states(body, size, &it);
        if (r == 0) {
                check_snap(it.snap);
                check_file_bytes(it.snap, "state.json", body, size);
                backend_item_clear(&it);
        } else {
                check(r < 0 && states_errno_ok(r));
                check(!it.snap && !it.terminal && !it.sig && !it.name);
        }

        r = bacalhau_parse_list(body, size, &l);
        if (r == 0) {
                check(l.n <= size);     /* each id takes at least one input byte */
                check_names(&l);
        } else {
                check(r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG);
                check(l.v == NULL && l.n == 12345);
        }
        return 0;
}
