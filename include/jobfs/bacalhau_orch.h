/* bacalhau_orch: jobs read through Bacalhau's v1 orchestrator API (v1.0.4+).
 *
 * A fetch is GET /api/v1/orchestrator/jobs/{id}?include=executions,history
 * (one request from v1.2.2; before it, the job, /executions and /history
 * one by one), plus /history pages when a v1.5+ history outgrows the 100
 * events include= brings. The listing is the change feed: GET .../jobs
 * ordered by modified_at, newest first, read until the jobs are older than
 * the newest one the last listing saw, so a poll with nothing new costs one
 * small request whatever the number of jobs; the whole list is walked on
 * the first call and every FULL_WALK_S (bacalhau_orch.c) to drop jobs the
 * server forgot, and on every call before v1.2.2 (no modified_at order, no
 * paging tokens: one unlimited request). Entries' sigs are fetches' sigs.
 * The version is the caller's (bacalhau.c detects it).
 */
#pragma once
#include "jobfs/backend.h"
#include "jobfs/bacalhau_v1.h"

struct bacalhau_orch;

/* namespace: what the listing shows, NULL = all; headers: extra request
 * lines (auth), NULL-terminated, borrowed until free. Caller frees with
 * bacalhau_orch_free. */
int bacalhau_orch_new(struct backend *b, const char *namespace, const char *const *headers,
                      struct bacalhau_orch **ret);
void bacalhau_orch_free(struct bacalhau_orch *o);      /* NULL-safe */

/* backend_ops.fetch for one job (key: an id, a short id or, from v1.8, a name). */
int bacalhau_orch_fetch(struct bacalhau_orch *o, const struct bacalhau_v1_version *v,
                        const char *key, struct backend_item *ret);
/* backend_ops.list: every job the server has (see above); ret->feed is set. */
int bacalhau_orch_list(struct bacalhau_orch *o, const struct bacalhau_v1_version *v,
                       struct backend_list *ret);
/* Forgets the listing (the server changed: the next list walks it all). */
void bacalhau_orch_reset(struct bacalhau_orch *o);
