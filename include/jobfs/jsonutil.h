/* jsonutil: json-c helpers shared by the backends (and only them).
 *
 * Parsing is depth-capped (JSONUTIL_DEPTH_MAX) and rejects trailing garbage;
 * field readers take what the server sent field by field and skip a field of
 * the wrong type instead of failing the whole reply.
 */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobfs/snapshot.h"

#define JSONUTIL_DEPTH_MAX 64   /* real replies nest 8 deep */

/* Parses len bytes; *ret: caller frees with json_object_put. -EBADMSG. */
int jsonutil_parse(const char *body, size_t len, struct json_object **ret);

/* The member key of obj if it is a JSON object, else NULL (borrowed). */
struct json_object *jsonutil_get(struct json_object *obj, const char *key);

/* The string value of member key; false if absent or not a string. */
bool jsonutil_str(struct json_object *obj, const char *key, const char **ret, size_t *ret_len);

/* Adds file `name` from member key of obj: a string as text + "\n", an
 * integer, double or boolean in its JSON spelling + "\n". Absent, null,
 * object or array members add nothing. Unsafe or duplicate names are skipped.
 * Returns 0, or -ENOMEM/-E2BIG (reply too large). */
int jsonutil_add_text(struct snap *dir, const char *name, struct json_object *obj,
                      const char *key);

/* Adds file `name` with the exact bytes of string member key (stdout). */
int jsonutil_add_bytes(struct snap *dir, const char *name, struct json_object *obj,
                       const char *key);

/* Maps a snapshot insertion result: unsafe names and duplicates are logged
 * and skipped (0); size and memory errors are returned. */
int jsonutil_snap_result(int r, const char *name);
