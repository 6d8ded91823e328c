/* bacalhau_auth: the credentials jobfs shows a Bacalhau server, as the one
 * header line that carries them.
 *
 * Anonymous by default. As the bacalhau CLI (v1.7+) does: BACALHAU_API_KEY
 * gives "Authorization: Bearer KEY", BACALHAU_API_USERNAME with
 * BACALHAU_API_PASSWORD "Authorization: Basic base64(user:password)" (both
 * kinds at once is an error). --bacalhau-token-file=FILE gives a raw Bearer
 * token (a JWT from the /api/v1/auth flow) and wins over the environment; a
 * file that group or others may read is refused, as ssh refuses such keys.
 * The header is handed to http_send and nowhere else: it is never logged,
 * never in .jobfs/status (only `kind` is) and never on a command line.
 */
#pragma once

struct bacalhau_auth {
        char *header;           /* owned, "Authorization: ..."; NULL = anonymous */
        const char *kind;       /* "none", "api-key", "basic", "token-file": for status */
};

/* From the environment and token_file (NULL = none). -EINVAL for a bad
 * combination or value (logged, without the secret), -EPERM for a token file
 * others may read, or -errno of reading it. ret untouched on error; clear it
 * with bacalhau_auth_clear. */
int bacalhau_auth_load(const char *token_file, struct bacalhau_auth *ret);

/* The same from explicit values (tests; any may be NULL). */
int bacalhau_auth_from(const char *api_key, const char *user, const char *password,
                       const char *token_file, struct bacalhau_auth *ret);

/* The token in path: its first line, trailing white space cut. Refuses a
 * file that is not regular, not the caller's (or root's), readable by group
 * or others (-EPERM), empty (-EINVAL) or over 64 KiB (-EFBIG). *ret: caller
 * frees with bacalhau_auth_wipe_free. */
int bacalhau_auth_read_token_file(const char *path, char **ret);

/* Overwrites a secret string, then frees it (NULL-safe). */
void bacalhau_auth_wipe_free(char *secret);
/* Wipes and frees the header; NULL-safe. */
void bacalhau_auth_clear(struct bacalhau_auth *a);
