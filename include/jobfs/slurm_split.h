/* slurm_split: a slurmrestd reply's "jobs" array, one job object at a time.
 *
 * GET /jobs answers with every job in one reply (3.2 KB a job in 22.05: 32
 * MB for 10,000 jobs), so the reply is cut into its job objects as it
 * streams in and each one is handed on as bytes (exactly as received), never
 * the reply whole. jsonscan checks the syntax of every byte before the
 * splitter looks at it; the splitter only tracks strings and nesting to find
 * where each element of the top-level "jobs" array starts and ends. One job
 * object may be at most SLURM_SPLIT_ELEMENT_MAX bytes (-EFBIG past it).
 */
#pragma once
#include <stddef.h>

/* job_resources grows by about 200 bytes per allocated node: 8 MiB is a
 * job on 40,000 nodes */
#define SLURM_SPLIT_ELEMENT_MAX ((size_t)8 << 20)

/* Called for each element of the top-level "jobs" array (its bytes,
 * borrowed until the call returns); 0 or -errno, which stops the split. */
typedef int (*slurm_job_fn)(void *ctx, const char *bytes, size_t len);

struct slurm_split;

int slurm_split_new(slurm_job_fn fn, void *ctx, struct slurm_split **ret);
void slurm_split_free(struct slurm_split *s);           /* NULL-safe */
/* Feeds the next len bytes: -EBADMSG on bad syntax, or fn's error. */
int slurm_split_feed(struct slurm_split *s, const char *data, size_t len);
/* After the last byte: -EBADMSG unless the bytes were one JSON object with a
 * top-level "jobs" array (spelled plainly: no escapes in that key). */
int slurm_split_end(struct slurm_split *s);
/* The same over a whole body. */
int slurm_parse_jobs(const char *body, size_t len, slurm_job_fn fn, void *ctx);
