/* bacalhau: the Bacalhau backend, every release from v0.3 to v1.9, parsers
 * of the v0.3 API exposed for tests.
 *
 * Which API a server speaks is found on first use, and again once it comes
 * back after an outage (it may have been upgraded): GET /api/v1/agent/version
 * answers from v1.0.4 on, and such a server is read through its orchestrator
 * API (bacalhau_orch.h), even where it still has the old one; a 404 means
 * the v0.3 requester API below (v0.3.x, v1.0.0-v1.0.3), whose release POST
 * /version may tell. --bacalhau-api forces one. Credentials: bacalhau_auth.h.
 *
 * v0.3: POST /requester/states (falling back to POST /states, the pre-v0.3.17 path,
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

enum bacalhau_api { BACALHAU_API_AUTO, BACALHAU_API_V0, BACALHAU_API_V1 };

struct bacalhau_config {
        const char *url;                /* the server's root (http://host:1234) */
        const char *client_id;          /* v0.3: whose jobs jobs/ lists; NULL = all */
        enum bacalhau_api api;          /* AUTO: detected */
        const char *namespace;          /* v1: the namespace jobs/ lists; NULL = all */
        const char *token_file;         /* a Bearer token; NULL: the environment's
                                         * credentials, if any (bacalhau_auth.h) */
};

/* Reads the credentials at once (a bad token file fails here: -EPERM,
 * -EINVAL, ...). Caller frees with backend_free. */
int bacalhau_backend_new(struct http *http, const struct bacalhau_config *cfg,
                         struct backend **ret);

/* Parses a 200 reply of states; caller clears *ret with backend_item_clear. */
int bacalhau_parse_states(const char *body, size_t len, struct backend_item *ret);
/* Parses a 200 reply of list into job ids (and their states' signatures);
 * caller clears *ret with backend_list_clear. */
int bacalhau_parse_list(const char *body, size_t len, struct backend_list *ret);
/* Whether a shard/job state string is final (Completed, Error, Cancelled...). */
bool bacalhau_state_is_terminal(const char *state);
