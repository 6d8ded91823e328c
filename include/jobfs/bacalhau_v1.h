/* bacalhau_v1: the wire format of Bacalhau's v1 orchestrator API (v1.0.4+).
 *
 * Owns what changes from release to release: the version reply and the
 * eras it implies, the execution state numbering (renumbered in v1.5.2: 7
 * was Completed and became Publishing), the key spellings (RunOutput's
 * stdout/Stdout, the lone lower-case stderr; list keys Jobs/Items), the two
 * error shapes, and the job directory built from a job's replies:
 *   name namespace type state message created modified job.json state.json
 *   history (one "TIME\tTOPIC\tMESSAGE" line per event)
 *   NODE/N/   N = 0 for the newest execution on NODE, 1 the one before...:
 *             id state desired_state message stdout stderr stdouttruncated
 *             stderrtruncated runnerError exitCode (Completed only)
 *             result_type and the published result's Params (CID, URL...)
 * Timestamps are int64 nanoseconds, read as integers, never as doubles.
 * No I/O here: bacalhau_orch.c makes the requests.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobfs/backend.h"

struct bacalhau_v1_version {
        unsigned major, minor, patch;
        bool dev;               /* v0.0.0-...: a dev build; numbering probed */
        bool new_numbers;       /* execution states numbered as from v1.5.2 */
        char text[48];          /* "v1.5.2" as sent, printable ASCII only */
};

/* Parses an agent/version reply ({"GitVersion"} or v1.0.4-v1.1's
 * {"gitversion"}), or v0.3's {"build_version_info":{...}}. -EBADMSG. */
int bacalhau_v1_parse_version(const char *body, size_t len, struct bacalhau_v1_version *ret);
/* From "vX.Y.Z[-suffix]"; -EINVAL for anything else. */
int bacalhau_v1_version_set(const char *text, struct bacalhau_v1_version *ret);
bool bacalhau_v1_at_least(const struct bacalhau_v1_version *v, unsigned major, unsigned minor,
                          unsigned patch);
/* The era letter of bacalhau-v1.md's table, "L" to "H"; "dev" for dev builds. */
const char *bacalhau_v1_era(const struct bacalhau_v1_version *v);
/* An execution state number by the version's numbering; NULL if unknown. */
const char *bacalhau_v1_exec_state(const struct bacalhau_v1_version *v, int64_t n);

/* The change signature of a job in the state (Revision, ModifyTime): list
 * entries and fetches compute the same one. */
uint64_t bacalhau_v1_sig(int64_t revision, int64_t modify_ns);

/* A job directory, built from GET .../jobs/{id} (maybe with
 * include=executions,history), then any separate executions reply and
 * history pages. */
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

/* One page of GET .../jobs, scanned as it streams (feed is an http_chunk_fn). */
struct bacalhau_v1_entry {
        char *name;             /* owned, a safe name */
        uint64_t sig;           /* 0 without Revision and ModifyTime */
        int64_t modify_ns;
};
struct bacalhau_v1_page {
        struct bacalhau_v1_entry *v;    /* owned */
        size_t n, cap;
        char *next_token;               /* owned, NULL when there is no next page */
};
struct bacalhau_v1_scan;
int bacalhau_v1_scan_new(size_t max_entries, struct bacalhau_v1_scan **ret);
int bacalhau_v1_scan_feed(void *scan, const char *data, size_t len);
/* -EBADMSG unless the reply was a list (a Jobs or Items member). */
int bacalhau_v1_scan_end(struct bacalhau_v1_scan *s, struct bacalhau_v1_page *ret);
void bacalhau_v1_scan_free(struct bacalhau_v1_scan *s);        /* NULL-safe */
int bacalhau_v1_parse_page(const char *body, size_t len, size_t max_entries,
                           struct bacalhau_v1_page *ret);
void bacalhau_v1_page_clear(struct bacalhau_v1_page *p);

/* The errno of a non-200 reply, either error shape: unknown job (500 up to
 * v1.4, 404 from v1.5) and ambiguous prefixes are -ENOENT; 401/403, and
 * v1.7.0's 500s for auth failures, -EACCES; the rest http_status_errno. */
int bacalhau_v1_reply_errno(long status, const char *body, size_t len);
