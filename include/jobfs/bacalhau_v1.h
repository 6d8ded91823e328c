/* bacalhau_v1: the wire format of Bacalhau's v1 orchestrator API (v1.0.4+),
 * but for the job directory (bacalhau_v1_job.h).
 *
 * Owns what changes from release to release: the version reply and the
 * eras it implies, the execution state numbering (renumbered in v1.5.2: 7
 * was Completed and became Publishing), job list pages (Jobs or Items,
 * NextToken) scanned as they stream, and the two error shapes. Timestamps
 * are int64 nanoseconds, read as integers, never as doubles. No I/O here:
 * bacalhau_orch.c makes the requests.
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
