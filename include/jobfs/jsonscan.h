/* jsonscan: a streaming JSON scanner that reports string values by path.
 *
 * For replies too big to hold as a json-c tree (the Bacalhau list of 100,000
 * full jobs is 160 MB): bytes are fed as they arrive, nothing but the
 * current path and one string is kept, and each string value is handed to a
 * callback with its path ("jobs", "[]", "Metadata", "ID"). Syntax is checked
 * as it goes; depth and string length are capped.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define JSONSCAN_DEPTH_MAX 64
#define JSONSCAN_STRING_MAX 1024        /* longer strings are scanned, not reported */

enum jsonscan_kind { JSONSCAN_STRING, JSONSCAN_OBJECT, JSONSCAN_ARRAY, JSONSCAN_NULL,
                     JSONSCAN_SCALAR /* number, true, false */,
                     JSONSCAN_KEY /* only with jsonscan_report_keys: path is the object's */ };

/* Called for every value as it starts (containers) or ends (the rest):
 * path[0..depth-1] are object keys, or "[]" for array elements; value/len is
 * the decoded string for a string, the literal's text as sent for a scalar
 * ("18446744073709551615", "0.1", "true"), NULL/0 otherwise. Return 0 to go on,
 * -errno to stop the scan with that error. */
typedef int (*jsonscan_fn)(void *ctx, const char *const *path, size_t depth,
                           enum jsonscan_kind kind, const char *value, size_t len);

struct jsonscan;

int jsonscan_new(jsonscan_fn fn, void *ctx, struct jsonscan **ret);
void jsonscan_free(struct jsonscan *s);         /* NULL-safe */
/* Also report object keys (kind JSONSCAN_KEY, value = the decoded key, which
 * may hold a NUL that json-c would cut the key at). */
void jsonscan_report_keys(struct jsonscan *s, bool on);
/* Feeds the next len bytes. -EBADMSG on bad syntax, or the callback's error. */
int jsonscan_feed(struct jsonscan *s, const char *buf, size_t len);
/* After the last byte: -EBADMSG unless exactly one complete value was seen. */
int jsonscan_end(struct jsonscan *s);
