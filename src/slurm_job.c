/* slurm_job: see include/jobfs/slurm_job.h.
 *
 * Path expansion follows what slurmstepd 22.05.8 was seen to create, not
 * only its man page: %A is the job id outside arrays, %a is 4294967294
 * there, %J is the bare job id and %s "batch" for a batch step, a width is
 * capped at 10 digits, an unknown letter keeps its '%' (but a width before
 * it is printed without one), and one backslash anywhere turns every
 * replacement off and is itself dropped.
 */
#include "jobfs/slurm_job.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobfs/backend.h"
#include "jobfs/http.h"
#include "jobfs/jsonscan.h"
#include "jobfs/jsonutil.h"
#include "jobfs/log.h"

#define NO_VAL_TEXT "4294967294"        /* what %a gives outside an array */
#define WIDTH_MAX 10                    /* "%99j" pads to 10 digits, no more */

static const char *const final_states[] = {
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
        "PREEMPTED", "BOOT_FAIL", "DEADLINE",
};

static bool state_is_final(const char *s)
{
        for (size_t i = 0; s && i < sizeof(final_states) / sizeof(final_states[0]); i++)
                if (strcmp(s, final_states[i]) == 0)
                        return true;
        return false;
}

/* ---- exit codes ---------------------------------------------------------- */

int slurm_exit_code(long long raw, int *ret_code, int *ret_signal)
{
        int sig = (int)(raw & 0x7f);

        /* 0x7f in the low bits is a stopped child, not an end */
        if (raw < 0 || raw > 0xffff || sig == 0x7f)
                return -EINVAL;
        *ret_signal = sig;
        *ret_code = sig ? 128 + sig : (int)((raw >> 8) & 0xff);
        return 0;
}

/* ---- path expansion -------------------------------------------------------- */

struct out {
        char buf[PATH_MAX];
        size_t len;
        bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
        if (n > sizeof(o->buf) - 1 - o->len) {
                o->over = true;
                return;
        }
        memcpy(o->buf + o->len, s, n);
        o->len += n;
}

static void put_num(struct out *o, const char *digits, unsigned width)
{
        size_t n = strlen(digits);

        for (; width > n; width--)
                put(o, "0", 1);
        put(o, digits, n);
}

int slurm_expand_path(const char *p, const struct slurm_path_vars *v, char **ret)
{
        struct out o = { .len = 0 };
        char num[32];

        if (strchr(p, '\\')) {
                /* no replacement at all; each backslash quotes the next byte */
                for (; *p; p++)
                        if (*p != '\\' || (p[1] && (p++, true)))
                                put(&o, p, 1);
                goto done;
        }
        while (*p) {
                const char *spec;
                unsigned width = 0;
                bool digits = false;

                if (*p != '%') {
                        put(&o, p++, 1);
                        continue;
                }
                spec = p + 1;
                while (*spec >= '0' && *spec <= '9') {
                        digits = true;
                        if (width < 1000)
                                width = width * 10 + (unsigned)(*spec - '0');
                        spec++;
                }
                if (width > WIDTH_MAX)
                        width = WIDTH_MAX;
                switch (*spec) {
                case '%':
                        if (digits)
                                goto unknown;
                        put(&o, "%", 1);
                        break;
                case 'A':
                        snprintf(num, sizeof(num), "%llu", v->array_job_id ? v->array_job_id
                                                                            : v->job_id);
                        put_num(&o, num, width);
                        break;
                case 'a':
                        if (v->array_task_id >= 0)
                                snprintf(num, sizeof(num), "%lld", v->array_task_id);
                        else
                                snprintf(num, sizeof(num), "%s", NO_VAL_TEXT);
                        put_num(&o, num, width);
                        break;
                case 'J':       /* jobid.stepid; the batch step prints the job id alone */
                case 'j':
                        snprintf(num, sizeof(num), "%llu", v->job_id);
                        put_num(&o, num, width);
                        break;
                case 'n':       /* node and task rank: 0 for the batch script */
                case 't':
                        put_num(&o, "0", width);
                        break;
                case 's':
                        put(&o, "batch", 5);
                        break;
                case 'N':
                        put(&o, v->node ? v->node : "", v->node ? strlen(v->node) : 0);
                        break;
                case 'u':
                        put(&o, v->user ? v->user : "", v->user ? strlen(v->user) : 0);
                        break;
                case 'x':
                        put(&o, v->name ? v->name : "", v->name ? strlen(v->name) : 0);
                        break;
                default:
                unknown:
                        /* "%b" stays "%b"; "%5b" becomes "5b"; the byte after
                         * is read again as text (it may start a "%x") */
                        if (digits)
                                put(&o, p + 1, (size_t)(spec - p - 1));
                        else
                                put(&o, "%", 1);
                        p = spec;
                        continue;
                }
                p = spec + 1;
        }
done:
        if (o.over)
                return -ENAMETOOLONG;
        o.buf[o.len] = '\0';
        *ret = strdup(o.buf);
        return *ret ? 0 : -ENOMEM;
}

/* ---- one job object --------------------------------------------------------- */

static bool get_ll(struct json_object *obj, const char *key, long long *ret)
{
        struct json_object *v = jsonutil_get(obj, key);

        if (!v || !json_object_is_type(v, json_type_int))
                return false;
        errno = 0;
        *ret = (long long)json_object_get_int64(v);
        return errno == 0;
}

static const char *get_s(struct json_object *obj, const char *key)
{
        const char *s;
        size_t len;

        /* a string cut by a NUL inside would be a lie: such values are left out */
        if (!jsonutil_str(obj, key, &s, &len) || strlen(s) != len)
                return NULL;
        return s;
}

/* The signature walk: every scalar with its path; containers count as a
 * kind of their own so that {} and an absent member differ. */
static uint64_t sig_walk(uint64_t sig, struct json_object *v, const char **path, size_t depth)
{
        char idx[24], num[64];
        const char *s = NULL;
        size_t len = 0;
        int kind;

        switch (json_object_get_type(v)) {
        case json_type_object:
                sig = backend_sig_add(sig, path, depth, JSONSCAN_OBJECT, NULL, 0);
                if (depth == JSONUTIL_DEPTH_MAX)
                        return sig;
                json_object_object_foreach(v, key, child) {
                        /* changes at every scheduler pass over a pending job,
                         * without slurmctld counting it as an update (GET
                         * /jobs?update_time stays 304): not a change */
                        if (depth == 0 && strcmp(key, "last_sched_evaluation") == 0)
                                continue;
                        path[depth] = key;
                        sig = sig_walk(sig, child, path, depth + 1);
                }
                return sig;
        case json_type_array:
                sig = backend_sig_add(sig, path, depth, JSONSCAN_ARRAY, NULL, 0);
                if (depth == JSONUTIL_DEPTH_MAX)
                        return sig;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        snprintf(idx, sizeof(idx), "%zu", i);
                        path[depth] = idx;
                        sig = sig_walk(sig, json_object_array_get_idx(v, i), path, depth + 1);
                }
                return sig;
        case json_type_string:
                kind = JSONSCAN_STRING;
                s = json_object_get_string(v);
                len = (size_t)json_object_get_string_len(v);
                break;
        case json_type_null:
                kind = JSONSCAN_NULL;
                break;
        case json_type_int:
                kind = JSONSCAN_SCALAR;
                if (json_object_get_int64(v) == INT64_MAX)      /* past int64: uint64 */
                        snprintf(num, sizeof(num), "%" PRIu64, json_object_get_uint64(v));
                else
                        snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(v));
                s = num;
                len = strlen(num);
                break;
        default:        /* double, boolean: json-c's own spelling */
                kind = JSONSCAN_SCALAR;
                s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
                len = s ? strlen(s) : 0;
                break;
        }
        return backend_sig_add(sig, path, depth, kind, s, len);
}

/* user_name, or (v0.0.36 sends "") the local name of user_id. */
static int job_user(struct json_object *obj, long long uid, char **ret)
{
        const char *u = get_s(obj, "user_name");
        struct passwd pw, *res = NULL;
        char buf[1024];

        *ret = NULL;
        if (u && *u)
                return (*ret = strdup(u)) ? 0 : -ENOMEM;
        if (uid >= 0 && uid <= UINT32_MAX &&
            getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res)
                return (*ret = strdup(res->pw_name)) ? 0 : -ENOMEM;
        return u ? ((*ret = strdup("")) ? 0 : -ENOMEM) : 0;
}

/* Where one stream goes: the pattern expanded, made absolute against the
 * working directory; "" is SLURM's default. NULL (and 0) when unknowable. */
static int job_path(struct json_object *obj, const char *key, const struct slurm_path_vars *v,
                    char **ret)
{
        const char *pat = get_s(obj, key);
        const char *cwd = get_s(obj, "current_working_directory");
        char *p = NULL;
        int r;

        *ret = NULL;
        if (!pat)
                return 0;
        if (!*pat)
                pat = v->array_job_id && v->array_task_id >= 0 ? "slurm-%A_%a.out" : "slurm-%j.out";
        r = slurm_expand_path(pat, v, &p);
        if (r < 0)
                return r == -ENAMETOOLONG ? 0 : r;
        if (p[0] == '/') {
                *ret = p;
                return 0;
        }
        if (cwd && cwd[0] == '/' && asprintf(ret, "%s%s%s", cwd,
                                             cwd[strlen(cwd) - 1] == '/' ? "" : "/", p) < 0) {
                *ret = NULL;
                r = -ENOMEM;
        }
        free(p);
        return r < 0 ? r : 0;
}

static int job_name(unsigned long long id, unsigned long long array_id, long long task, char **ret)
{
        int n = array_id && task >= 0 ? asprintf(ret, "%llu_%lld", array_id, task)
                                      : asprintf(ret, "%llu", id);

        if (n < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

int slurm_parse_job(const char *bytes, size_t len, struct slurm_job **ret)
{
        struct slurm_path_vars pv = { .array_task_id = -1 };
        struct json_object *obj = NULL;
        struct slurm_job *j = NULL;
        const char *path[JSONUTIL_DEPTH_MAX + 1];
        const char *state;
        char *user = NULL;
        long long id, n;
        int r;

        r = jsonutil_parse(bytes, len, &obj);
        if (r < 0)
                return r;
        if (!json_object_is_type(obj, json_type_object) || !get_ll(obj, "job_id", &id) || id <= 0 ||
            id > UINT32_MAX) {
                r = -EBADMSG;
                goto out;
        }
        j = calloc(1, sizeof(*j));
        if (!j) {
                r = -ENOMEM;
                goto out;
        }
        pv.job_id = (unsigned long long)id;
        if (get_ll(obj, "array_job_id", &n) && n > 0 && n <= UINT32_MAX)
                pv.array_job_id = (unsigned long long)n;
        /* null outside arrays; NO_VAL (4294967294) and above mean the same */
        if (get_ll(obj, "array_task_id", &n) && n >= 0 && n < 4294967294LL)
                pv.array_task_id = n;
        if (!get_ll(obj, "user_id", &j->uid) || j->uid < 0)
                j->uid = -1;
        state = get_s(obj, "job_state");
        j->terminal = state_is_final(state);
        j->started = state && strcmp(state, "PENDING") != 0;
        r = job_name(pv.job_id, pv.array_job_id, pv.array_task_id, &j->name);
        r = r ? r : job_user(obj, j->uid, &user);
        if (r < 0)
                goto out;
        pv.user = user;
        pv.name = get_s(obj, "name");
        pv.node = get_s(obj, "batch_host");
        r = job_path(obj, "standard_output", &pv, &j->out_path);
        /* an empty standard_error sends stderr into the stdout file */
        if (!r && (!get_s(obj, "standard_error") || *get_s(obj, "standard_error")))
                r = job_path(obj, "standard_error", &pv, &j->err_path);
        if (r < 0)
                goto out;
        if (j->err_path && j->out_path && strcmp(j->err_path, j->out_path) == 0) {
                free(j->err_path);
                j->err_path = NULL;
        }
        j->json = blob_new(bytes, len);
        if (!j->json) {
                r = -ENOMEM;
                goto out;
        }
        j->sum = sig_walk(0, obj, path, 0);
        j->obj = obj;
        obj = NULL;
        *ret = j;
        j = NULL;
out:
        free(user);
        slurm_job_free(j);
        json_object_put(obj);
        return r;
}

void slurm_job_free(struct slurm_job *j)
{
        if (!j)
                return;
        free(j->name);
        free(j->out_path);
        free(j->err_path);
        blob_unref(j->json);
        json_object_put(j->obj);
        free(j);
}

void slurm_job_shrink(struct slurm_job *j, bool keep_json)
{
        json_object_put(j->obj);
        j->obj = NULL;
        if (!keep_json) {
                blob_unref(j->json);
                j->json = NULL;
        }
}

/* ---- output files -------------------------------------------------------------- */

/* Opens a job's output file if we may show it: the job has started (before
 * that a file of that name is an older job's), it is a regular file (never
 * a FIFO or a device: O_NONBLOCK, and nothing is read from those), and it is
 * owned by the job's user, so that a job whose --output names someone
 * else's file cannot make it readable here. fd or -errno. */
static int open_output(const struct slurm_job *j, const char *path, struct stat *st)
{
        int fd;

        if (!path || !j->started || j->uid < 0)
                return -ENOENT;
        fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || (long long)st->st_uid != j->uid) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

static size_t shown_size(const struct stat *st, size_t max)
{
        return st->st_size < 0 ? 0 : (unsigned long long)st->st_size > max ? max
                                                                           : (size_t)st->st_size;
}

/* One stream's share of the signature: what is shown of it (size and
 * mtime, both from the same fstat the read uses), or its absence. Past the
 * cap only the size counts: what is shown has stopped changing, and a log
 * that keeps growing must not cost a rebuild on every poll. */
static uint64_t stream_sig(const char *stream, const struct stat *st, size_t max)
{
        const char *path[2] = { stream, NULL };
        uint64_t sig;
        char v[64];

        if (!st)
                return backend_sig_add(0, path, 1, JSONSCAN_NULL, NULL, 0);
        path[1] = "size";
        snprintf(v, sizeof(v), "%zu", shown_size(st, max));
        sig = backend_sig_add(0, path, 2, JSONSCAN_SCALAR, v, strlen(v));
        if (st->st_size >= 0 && (unsigned long long)st->st_size > max)
                return sig;
        path[1] = "mtime";
        snprintf(v, sizeof(v), "%lld.%09ld", (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        return sig + backend_sig_add(0, path, 2, JSONSCAN_SCALAR, v, strlen(v));
}

uint64_t slurm_job_outputs_sig(const struct slurm_job *j, size_t out_max)
{
        const char *paths[2] = { j->out_path, j->err_path };
        const char *names[2] = { "stdout", "stderr" };
        uint64_t sig = 0;

        for (int i = 0; i < 2; i++) {
                struct stat st;
                int fd = out_max ? open_output(j, paths[i], &st) : -ENOENT;

                sig += stream_sig(names[i], fd >= 0 ? &st : NULL, out_max);
                if (fd >= 0)
                        close(fd);
        }
        return sig;
}

uint64_t slurm_job_sig(uint64_t sum, uint64_t outputs)
{
        return backend_sig_done(sum + outputs);
}

/* Reads the first shown_size bytes of an output file; *ret NULL if it may
 * not be shown. The signature share is that of the same fstat. */
static int read_output(const struct slurm_job *j, const char *path, const char *stream,
                       size_t max, struct blob **ret, uint64_t *ret_sig)
{
        struct stat st;
        size_t want, got = 0;
        char *buf;
        int fd = max ? open_output(j, path, &st) : -ENOENT;

        *ret = NULL;
        if (fd < 0) {
                *ret_sig = stream_sig(stream, NULL, max);
                return 0;
        }
        want = shown_size(&st, max);
        buf = malloc(want ? want : 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (got < want) {
                ssize_t n = pread(fd, buf + got, want - got, (off_t)got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;  /* truncated meanwhile: show what is there */
                got += (size_t)n;
        }
        close(fd);
        /* truncated meanwhile: this read's sig describes the bytes it got
         * (the next probe sees the smaller size the file now has) */
        if (got < want)
                st.st_size = (off_t)got;
        *ret_sig = stream_sig(stream, &st, max);
        *ret = blob_new(buf, got);
        free(buf);
        return *ret ? 0 : -ENOMEM;
}

static int add_num(struct snap *dir, const char *name, long long v)
{
        char num[32];

        snprintf(num, sizeof(num), "%lld", v);
        return snap_add_text(dir, name, num, strlen(num));
}

static int add_str(struct snap *dir, const char *name, const char *s)
{
        return s ? jsonutil_snap_result(snap_add_text(dir, name, s, strlen(s)), name) : 0;
}

/* submit_time always; start_time once started (a pending job's is a
 * forecast); end_time once final (a running job's is start + time limit). */
static int add_times(struct snap *top, struct json_object *obj, const struct slurm_job *j)
{
        long long t;
        int r = 0;

        if (get_ll(obj, "submit_time", &t) && t > 0)
                r = add_num(top, "submit_time", t);
        if (!r && j->started && get_ll(obj, "start_time", &t) && t > 0)
                r = add_num(top, "start_time", t);
        if (!r && j->terminal && get_ll(obj, "end_time", &t) && t > 0)
                r = add_num(top, "end_time", t);
        return r;
}

static int add_exit(struct snap *top, struct json_object *obj, const struct slurm_job *j)
{
        long long raw;
        int code, sig, r;

        /* a live job's exit_code is 0: it would read as success */
        if (!j->terminal || !get_ll(obj, "exit_code", &raw) || slurm_exit_code(raw, &code, &sig) < 0)
                return 0;
        r = add_num(top, "exit_code", code);
        if (!r && sig)
                r = add_num(top, "signal", sig);
        return r;
}

static int add_outputs(struct snap *top, const struct slurm_job *j, size_t max, uint64_t *ret_sig,
                       size_t *ret_read)
{
        struct blob *out = NULL, *err = NULL;
        uint64_t s1 = 0, s2 = 0;
        int r;

        r = add_str(top, "stdout_path", j->out_path);
        r = r ? r : add_str(top, "stderr_path", j->err_path ? j->err_path : j->out_path);
        r = r ? r : read_output(j, j->out_path, "stdout", max, &out, &s1);
        r = r ? r : read_output(j, j->err_path, "stderr", max, &err, &s2);
        if (r < 0)
                goto out;
        *ret_read = (out ? out->len : 0) + (err ? err->len : 0);
        *ret_sig = s1 + s2;
        if (out) {
                r = snap_add_file(top, "stdout", out);
                out = NULL;
                /* the same file: a link, not the bytes twice */
                if (!r && !j->err_path)
                        r = snap_add_link(top, "stderr", "stdout");
        }
        if (!r && err) {
                r = snap_add_file(top, "stderr", err);
                err = NULL;
        }
out:
        blob_unref(out);
        blob_unref(err);
        return r;
}

int slurm_job_snap(const struct slurm_job *j, size_t out_max, struct snap **ret,
                   uint64_t *ret_outputs, size_t *ret_read)
{
        struct json_object *obj = j->obj;
        struct snap *top;
        uint64_t outs = 0;
        size_t nread = 0;
        char *user = NULL;
        int r;

        if (!obj)
                return -EINVAL;
        top = snap_new();
        if (!top)
                return -ENOMEM;
        r = jsonutil_add_text(top, "state", obj, "job_state");
        r = r ? r : jsonutil_add_text(top, "reason", obj, "state_reason");
        r = r ? r : add_exit(top, obj, j);
        r = r ? r : jsonutil_add_text(top, "name", obj, "name");
        r = r ? r : job_user(obj, j->uid, &user);
        r = r ? r : add_str(top, "user", user);
        r = r ? r : jsonutil_add_text(top, "partition", obj, "partition");
        r = r ? r : jsonutil_add_text(top, "nodes", obj, "nodes");
        r = r ? r : jsonutil_add_text(top, "work_dir", obj, "current_working_directory");
        r = r ? r : add_times(top, obj, j);
        r = r ? r : snap_add_file(top, "job.json", blob_ref(j->json));
        r = r ? r : add_outputs(top, j, out_max, &outs, &nread);
        free(user);
        if (r < 0) {
                snap_free(top);
                return r;
        }
        *ret = top;
        *ret_outputs = outs;
        *ret_read = nread;
        return 0;
}

/* ---- names and error replies ------------------------------------------------ */

static bool digits_ok(const char *s, size_t n)
{
        if (n == 0 || n > 10 || (s[0] == '0' && n > 1))
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

bool slurm_name_ok(const char *name)
{
        const char *u = strchr(name, '_');

        if (!u)
                return digits_ok(name, strlen(name)) && strcmp(name, "0") != 0;
        return digits_ok(name, (size_t)(u - name)) && name[0] != '0' &&
               digits_ok(u + 1, strlen(u + 1));
}

int slurm_reply_errno(long status, const char *body, size_t len)
{
        struct json_object *root = NULL, *errs;
        int r = 0;

        if (status == 401 || status == 403)
                return -EACCES;
        if (body && len && jsonutil_parse(body, len, &root) == 0 &&
            (errs = jsonutil_get(root, "errors")) && json_object_is_type(errs, json_type_array)) {
                for (size_t i = 0; !r && i < json_object_array_length(errs); i++) {
                        struct json_object *e = json_object_array_get_idx(errs, i);
                        struct json_object *num = jsonutil_get(e, "error_number");
                        const char *msg = NULL;
                        long long n = 0;

                        if (num && json_object_is_type(num, json_type_int))
                                n = (long long)json_object_get_int64(num);
                        jsonutil_str(e, "error", &msg, NULL);
                        if (n == 2017)
                                r = -ENOENT;    /* Invalid job id specified */
                        else if (n == -1)
                                r = -EACCES;    /* auth failed (or slurmctld away) */
                        else if (!num && msg && strstr(msg, "unknown job"))
                                r = -ENOENT;    /* v0.0.36 */
                }
        }
        json_object_put(root);
        return r ? r : http_status_errno(status);
}
