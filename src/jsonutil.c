/* jsonutil: see include/jobfs/jsonutil.h. */
#include "jobfs/jsonutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "jobfs/log.h"

int jsonutil_parse(const char *body, size_t len, struct json_object **ret)
{
        struct json_tokener *tok;
        struct json_object *obj;
        enum json_tokener_error err;
        size_t end;
        int r = -EBADMSG;

        if (len > INT32_MAX)
                return -EFBIG;
        tok = json_tokener_new_ex(JSONUTIL_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        obj = json_tokener_parse_ex(tok, body, (int)len);
        err = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (!obj || err != json_tokener_success) {
                log_debug("bad JSON reply: %s", json_tokener_error_desc(err));
                goto out;
        }
        /* trailing white space (Go's encoder adds "\n") is fine; anything else is not */
        for (; end < len; end++)
                if (body[end] != ' ' && body[end] != '\t' && body[end] != '\r' && body[end] != '\n')
                        goto out;
        *ret = obj;
        obj = NULL;
        r = 0;
out:
        json_object_put(obj);
        json_tokener_free(tok);
        return r;
}

struct json_object *jsonutil_get(struct json_object *obj, const char *key)
{
        struct json_object *v = NULL;

        if (!obj || !json_object_is_type(obj, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(obj, key, &v))
                return NULL;
        return v;
}

bool jsonutil_str(struct json_object *obj, const char *key, const char **ret, size_t *ret_len)
{
        struct json_object *v = jsonutil_get(obj, key);

        if (!v || !json_object_is_type(v, json_type_string))
                return false;
        *ret = json_object_get_string(v);
        if (ret_len)
                *ret_len = (size_t)json_object_get_string_len(v);
        return true;
}

int jsonutil_snap_result(int r, const char *name)
{
        if (r == -EINVAL || r == -EEXIST) {
                log_debug("left out an entry whose name is not a safe file name (%zu bytes)",
                          strlen(name));
                return 0;
        }
        return r;
}

int jsonutil_add_text(struct snap *dir, const char *name, struct json_object *obj,
                      const char *key)
{
        struct json_object *v = jsonutil_get(obj, key);
        char num[64];
        const char *s;
        size_t len;

        if (!v)
                return 0;
        switch (json_object_get_type(v)) {
        case json_type_string:
                s = json_object_get_string(v);
                len = (size_t)json_object_get_string_len(v);
                break;
        case json_type_int:
                snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(v));
                s = num;
                len = strlen(num);
                break;
        case json_type_double:
                snprintf(num, sizeof(num), "%.17g", json_object_get_double(v));
                s = num;
                len = strlen(num);
                break;
        case json_type_boolean:
                s = json_object_get_boolean(v) ? "true" : "false";
                len = strlen(s);
                break;
        default:
                log_debug("field '%s' has a type that is not a value; left out", key);
                return 0;
        }
        return jsonutil_snap_result(snap_add_text(dir, name, s, len), name);
}

int jsonutil_add_bytes(struct snap *dir, const char *name, struct json_object *obj,
                       const char *key)
{
        const char *s;
        size_t len;

        if (!jsonutil_str(obj, key, &s, &len))
                return 0;
        return jsonutil_snap_result(snap_add_file(dir, name, blob_new(s, len)), name);
}
