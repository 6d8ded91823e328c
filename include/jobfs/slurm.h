/* slurm: the SLURM backend (slurmrestd, OpenAPI v0.0.36-38), under slurm/.
 *
 * GET /slurm/VER/job/ID fills one job directory (slurm_job.h has the
 * files); GET /slurm/VER/jobs lists every job the user may see, and after
 * the first one GET /jobs?update_time=T asks only whether anything changed
 * (304 when nothing did, else 200 with all jobs again). The backend keeps
 * the last full set of jobs, so every list returns the complete set of
 * names with change signatures (a change feed: one request per poll, also
 * with 10,000 jobs), and the whole item for each job whose data or output
 * files changed since the previous list. Each request carries
 * X-SLURM-USER-NAME (cfg->user, default the mounting user) and
 * X-SLURM-USER-TOKEN; the token comes from $SLURM_JWT or cfg->token_file
 * (slurm_token.h), is read again when that file changes, and is never
 * logged. VER is cfg->api, or with "auto" the first of v0.0.38, v0.0.37,
 * v0.0.36 whose /ping exists (remembered; shown by ops->status).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/backend.h"

struct http;

struct slurm_config {
        const char *url;        /* slurmrestd root, e.g. http://127.0.0.1:6820 */
        const char *api;        /* "auto" (or NULL), "v0.0.38", "v0.0.37", "v0.0.36" */
        const char *user;       /* X-SLURM-USER-NAME; NULL: the mounting user's name */
        const char *token_file; /* NULL: the token is $SLURM_JWT */
        size_t output_max;      /* bytes of stdout/stderr shown at most; 0: none */
        size_t fetch_max;       /* bytes of one GET /job/ID reply (--max-reply); 0: 256 MiB */
};

/* -EACCES without a usable token (logged), -EINVAL for a bad api or user.
 * Caller frees with backend_free. */
int slurm_backend_new(struct http *http, const struct slurm_config *cfg, struct backend **ret);
