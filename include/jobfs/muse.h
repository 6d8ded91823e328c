/* muse: the ws "muse" cluster backend, parsers exposed for tests.
 *
 * GET software/muse/state/NAME/KEY/ fills a run directory:
 *   cr state(process.latest_cr) msg url name job_id jobname
 *   slurm_state(process.latest_state) state.json(the reply as received)
 * plus content.zip, a lazy file: GET software/muse/content/NAME/KEY/ when it
 * is first used. Once cr is OK, one GET software/muse/run/NAME/KEY/ adds the
 * results in the form the run asked for (request.returned_type, todownload):
 * `stdout` (info.stdout), `result` (a stdout.txt or run.zip file, its bytes)
 * or `download_url` (todownload: the url, one line). A results reply over
 * --max-reply becomes a lazy file, which fails with EFBIG unless the core
 * allows more. cr OK or NOK is final. GET software/list gives the names.
 * An error object {"error","more","type"} for an unknown name or key is
 * ENOENT. The rule that tells a results reply's kind is in src/muse.c.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/backend.h"
#include "jobfs/blob.h"
#include "jobfs/snapshot.h"

struct http;

/* What the state report says about GET run. */
struct muse_ask {
        bool get_run;           /* cr is OK: GET run has the results */
        bool expect_json;       /* returned_type stdout, or todownload: a JSON reply */
        const char *file;       /* where the results go: stdout, result, download_url (static) */
};

enum muse_run_kind { MUSE_RUN_STDOUT, MUSE_RUN_RESULT, MUSE_RUN_DOWNLOAD };

/* url: the ws API root (http://host:8000/api/); slurm_link: a SLURM endpoint
 * is mounted too, and each run gets `slurm`, a symlink to
 * ../../../slurm/JOB_ID. Caller frees with backend_free. */
int muse_backend_new(struct http *http, const char *url, bool slurm_link, struct backend **ret);

/* Parses a state reply (any status: the body decides). -ENOENT for an error
 * object; outputs untouched on error. */
int muse_parse_state(const char *body, size_t len, long status, struct snap **ret,
                     bool *ret_terminal, struct muse_ask *ret_ask);
/* Parses a GET run reply; content_type may be NULL (none sent). *ret: the
 * file's bytes (caller unrefs); *ret_kind says which file. */
int muse_parse_run(const char *body, size_t len, long status, const char *content_type,
                   bool expect_json, enum muse_run_kind *ret_kind, struct blob **ret);
/* The file name of a run reply kind: "stdout", "result", "download_url". */
const char *muse_run_file(enum muse_run_kind kind);
/* Adds to run directory top what GET run brought: r is muse_parse_run's
 * result (or the request's failure) and out its blob, taken in every case.
 * Clears *terminal when the results must be asked again. 0 or -ENOMEM/-E2BIG. */
int muse_add_run(struct snap *top, const struct muse_ask *ask, int r, enum muse_run_kind kind,
                 struct blob *out, bool *terminal);
/* Parses a GET content reply: *ret is the zip, exact bytes (caller unrefs). */
int muse_parse_content(const char *body, size_t len, long status, struct blob **ret);
/* Parses software/list into names; caller clears *ret with backend_list_clear. */
int muse_parse_list(const char *body, size_t len, struct backend_list *ret);
