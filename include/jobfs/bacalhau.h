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
 * read. The list reply carries every job's state, so it is a change feed:
 * an entry's sig equals the sig of a states reply of the job in that state.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/backend.h"
#include "jobfs/snapshot.h"

struct http;

/* url: the requester's root (http://host:1234); client_id: whose jobs jobs/
 * lists, NULL for all. Caller frees with backend_free. */
int bacalhau_backend_new(struct http *http, const char *url, const char *client_id,
                         struct backend **ret);

/* Parses a 200 reply of states; caller clears *ret with backend_item_clear. */
int bacalhau_parse_states(const char *body, size_t len, struct backend_item *ret);
/* Parses a 200 reply of list into job ids (and their states' signatures);
 * caller clears *ret with backend_list_clear. */
int bacalhau_parse_list(const char *body, size_t len, struct backend_list *ret);
/* Whether a shard/job state string is final (Completed, Error, Cancelled...). */
bool bacalhau_state_is_terminal(const char *state);
