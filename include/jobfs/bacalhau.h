/* bacalhau: the Bacalhau requester backend (v0.3 API), parsers exposed for tests.
 *
 * POST /requester/states (falling back to POST /states, the pre-v0.3.17 path,
 * when the server answers 404; the working one is remembered) returns a job's
 * state per node and shard. A job directory is:
 *   state        summary (job-level State, else the first shard state found
 *                in Running, Verifying, Waiting, Bidding, Completed, Error,
 *                Cancelled)
 *   state.json   the reply as received
 *   NODE/SHARD/  state status stdout stderr exitCode runnerError
 *                stdouttruncated stderrtruncated VerificationProposal
 *                StorageSource Name CID URL SourcePath path Complete Result
 * Both the E1/E2 shape (Nodes -> Shards) and the E3/E4 one (Executions) are
 * read. The constructor is in backend.h.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/snapshot.h"

/* Parses a 200 reply of states; *ret: caller frees with snap_free. */
int bacalhau_parse_states(const char *body, size_t len, struct snap **ret, bool *ret_terminal);
/* Parses a 200 reply of list into job ids; free with backend_names_free. */
int bacalhau_parse_list(const char *body, size_t len, char ***ret_ids, size_t *ret_n);
/* Whether a shard/job state string is final (Completed, Error, Cancelled...). */
bool bacalhau_state_is_terminal(const char *state);
