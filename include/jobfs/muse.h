/* muse: the ws "muse" cluster backend, parsers exposed for tests.
 *
 * GET software/muse/state/NAME/KEY/ fills a run directory:
 *   cr state(process.latest_cr) msg url name job_id jobname
 *   slurm_state(process.latest_state) state.json(the reply as received)
 * and, once cr is OK and the run's request.returned_type is "stdout", one
 * GET software/muse/run/NAME/KEY/ adds `stdout` (exact bytes). cr OK or NOK
 * is final. GET software/list gives the software names. An error object
 * {"error","more","type"} for an unknown name or key is ENOENT.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/backend.h"
#include "jobfs/snapshot.h"

struct http;

/* url: the ws API root (http://host:8000/api/). Caller frees with backend_free. */
int muse_backend_new(struct http *http, const char *url, struct backend **ret);

/* Parses a state reply (any status: the body decides). *ret_want_stdout is
 * set when GET run must be asked for stdout. -ENOENT for an error object. */
int muse_parse_state(const char *body, size_t len, long status, struct snap **ret,
                     bool *ret_terminal, bool *ret_want_stdout);
/* Parses a run reply: *ret is info.stdout, exact bytes. */
int muse_parse_run(const char *body, size_t len, long status, struct blob **ret);
/* Parses software/list into names; caller clears *ret with backend_list_clear. */
int muse_parse_list(const char *body, size_t len, struct backend_list *ret);
