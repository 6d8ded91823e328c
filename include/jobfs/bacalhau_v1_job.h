/* bacalhau_v1_job: a Bacalhau v1 job directory, built from its replies.
 *
 * From GET .../jobs/{id} (maybe with include=executions,history), then any
 * separate executions reply and history pages:
 *   name namespace type state message created modified job.json state.json
 *   history (one "TIME\tTOPIC\tMESSAGE" line per event)
 *   NODE/N/   N = 0 for the newest execution on NODE, 1 the one before...:
 *             id state desired_state message stdout stderr stdouttruncated
 *             stderrtruncated runnerError exitCode (Completed only)
 *             result_type and the published result's Params (CID, URL...)
 * Execution states are decoded by the release's numbering
 * (bacalhau_v1_exec_state); times are int64 ns, shown as RFC 3339 UTC.
 */
#pragma once
#include <stddef.h>

#include "jobfs/backend.h"
#include "jobfs/bacalhau_v1.h"

struct bacalhau_v1_job;
int bacalhau_v1_job_new(const struct bacalhau_v1_version *v, struct bacalhau_v1_job **ret);
void bacalhau_v1_job_free(struct bacalhau_v1_job *j);          /* NULL-safe */
int bacalhau_v1_job_add_job(struct bacalhau_v1_job *j, const char *body, size_t len);
int bacalhau_v1_job_add_executions(struct bacalhau_v1_job *j, const char *body, size_t len);
/* A history page; the first replaces the one include=history brought.
 * *ret_items: its items; *ret_token: its NextToken (borrowed until the
 * next call or the free; NULL when empty). */
int bacalhau_v1_job_add_history(struct bacalhau_v1_job *j, const char *body, size_t len,
                                size_t *ret_items, const char **ret_token);
/* After add_job: the job's full ID (borrowed until free), and how many
 * history items came with it. */
const char *bacalhau_v1_job_id(const struct bacalhau_v1_job *j);
size_t bacalhau_v1_job_history_items(const struct bacalhau_v1_job *j);
/* Builds the item; ret->name is set when the job's ID is not key (a short
 * id or name the server resolved). Caller clears ret. */
int bacalhau_v1_job_finish(struct bacalhau_v1_job *j, const char *key, struct backend_item *ret);
