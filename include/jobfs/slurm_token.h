/* slurm_token: the JWT slurmrestd wants, from $SLURM_JWT or a token file.
 *
 * A token file holds the raw token, or the `SLURM_JWT=...` line that
 * `scontrol token` prints (an `export ` before it is fine, as are blank
 * lines and # comments). Like ssh with a private key, a file that its group
 * or others may access, or that belongs to another user (root aside), is
 * refused with -EACCES and one log line that says how to fix it. A token is
 * at most SLURM_TOKEN_MAX bytes of the JWT alphabet (base64url, '.', and
 * '+/=' of plain base64): it goes into an HTTP header, so a CR, LF or space
 * in it must never get that far. Tokens are never logged.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define SLURM_TOKEN_MAX 8192            /* a 22.05 token is about 150 bytes */

/* Whether s is a token we may send (see above). */
bool slurm_token_ok(const char *s, size_t len);
/* The token in a file's text; *ret: caller frees (with slurm_token_free).
 * -EINVAL when there is none, or more than one raw line. */
int slurm_token_parse(const char *text, size_t len, char **ret);
/* Reads and checks a token file; *ret_st is its fstat (to see it change).
 * -EACCES for its permissions or owner, -EINVAL for its content, -errno. */
int slurm_token_load(const char *path, char **ret, struct stat *ret_st);
/* The `exp` claim of a JWT (Unix seconds), or 0 when it has none. */
long long slurm_token_expiry(const char *token);
/* Wipes and frees a token (NULL-safe). */
void slurm_token_free(char *token);
