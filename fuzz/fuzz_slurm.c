/* fuzz_slurm: the SLURM parsers on any bytes.
 *
 * The input is a reply body (not NUL-terminated, so an over-read past size
 * shows up under ASan). slurm_parse_jobs splits it; each job object it hands
 * on must be a piece of the input beginning with '{' and ending with '}',
 * and each that slurm_parse_job accepts must have a name jobfs can look up
 * (slurm_name_ok), a signature that a second parse of the same bytes gives
 * again, and a directory of safe unique names whose job.json is those bytes
 * exactly. Output files are never read here (out_max 0): the paths come from
 * the input. The same bytes then go, as they are, to slurm_parse_job,
 * slurm_reply_errno (under 500 and 404) and slurm_token_parse; NUL-terminated
 * to slurm_expand_path and slurm_token_expiry; and the first 8 of them as a
 * wait status to slurm_exit_code. Everything is freed, so LeakSanitizer
 * checks the error paths too.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "jobfs/slurm_job.h"
#include "jobfs/slurm_split.h"
#include "jobfs/slurm_token.h"

struct ctx {
        const char *body;
        size_t size, objects;
};

static bool parse_errno_ok(int r)
{
        return r == -EBADMSG || r == -EFBIG || r == -ENOMEM || r == -E2BIG;
}

static void check_job(const char *bytes, size_t len)
{
        struct slurm_job *j = NULL, *again = NULL;
        struct snap *s = NULL;
        uint64_t outs = 1;
        size_t nread = 1;
        int r = slurm_parse_job(bytes, len, &j);

        if (r < 0) {
                check(parse_errno_ok(r) && j == NULL);
                return;
        }
        check(j->name && slurm_name_ok(j->name) && snap_name_ok(j->name, strlen(j->name)));
        check(!j->terminal || j->started);
        check(!j->out_path || j->out_path[0] == '/');
        check(!j->err_path || (j->err_path[0] == '/' &&
                               (!j->out_path || strcmp(j->err_path, j->out_path) != 0)));
        check(slurm_parse_job(bytes, len, &again) == 0 && again->sum == j->sum &&
              strcmp(again->name, j->name) == 0);
        r = slurm_job_snap(j, 0, &s, &outs, &nread);
        if (r == 0) {
                check_snap(s);
                check_file_bytes(s, "job.json", bytes, len);
                check(nread == 0 && !snap_child(s, "stdout") && !snap_child(s, "stderr"));
                check(outs == slurm_job_outputs_sig(j, 0));
                check(slurm_job_sig(j->sum, outs) != 0);
                snap_free(s);
        } else {
                check(r == -ENOMEM || r == -E2BIG);
        }
        /* shrinking keeps what a list needs */
        slurm_job_shrink(j, false);
        check(j->obj == NULL && j->json == NULL && j->name);
        slurm_job_free(j);
        slurm_job_free(again);
}

static int on_job(void *arg, const char *bytes, size_t len)
{
        struct ctx *c = arg;

        c->objects++;
        check(len >= 2 && bytes[0] == '{' && bytes[len - 1] == '}');
        check(len <= SLURM_SPLIT_ELEMENT_MAX);
        check(memmem(c->body, c->size, bytes, len) != NULL);
        check_job(bytes, len);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        struct ctx c = { .body = body, .size = size };
        char *copy, *tok = UNTOUCHED, *path = UNTOUCHED;
        int r, code = -1, sig = -1;
        long long raw = 0;

        r = slurm_parse_jobs(body, size, on_job, &c);
        check(r == 0 || parse_errno_ok(r));
        check(c.objects <= size / 2);

        check_job(body, size);

        r = slurm_reply_errno(500, body, size);
        check(r == -ENOENT || r == -EACCES || r == -EIO);
        r = slurm_reply_errno(404, body, size);
        check(r == -ENOENT || r == -EACCES);

        r = slurm_token_parse(body, size, &tok);
        if (r == 0) {
                check(slurm_token_ok(tok, strlen(tok)));
                slurm_token_free(tok);
        } else {
                check((r == -EINVAL || r == -ENOMEM) && tok == UNTOUCHED);
        }

        copy = malloc(size + 1);
        check(copy);
        memcpy(copy, body, size);
        copy[size] = '\0';
        {
                struct slurm_path_vars v = { .job_id = 123, .array_job_id = size & 1 ? 120 : 0,
                                             .array_task_id = size & 2 ? 3 : -1, .user = "u",
                                             .name = copy, .node = "node1" };

                r = slurm_expand_path(copy, &v, &path);
                if (r == 0) {
                        check(strlen(path) < PATH_MAX);
                        free(path);
                } else {
                        check((r == -ENAMETOOLONG || r == -ENOMEM) && path == UNTOUCHED);
                }
        }
        check(slurm_token_expiry(copy) >= 0);
        free(copy);

        memcpy(&raw, data, size < sizeof(raw) ? size : sizeof(raw));
        if (slurm_exit_code(raw, &code, &sig) == 0) {
                check(raw >= 0 && raw <= 0xffff);
                check(sig >= 0 && sig < 0x7f && code >= 0 && code <= 255);
                check(sig ? code == 128 + sig : code == ((raw >> 8) & 0xff));
        } else {
                check(code == -1 && sig == -1);
        }
        return 0;
}
