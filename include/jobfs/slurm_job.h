/* slurm_job: one slurmrestd job object -> a job directory (the parsers).
 *
 * Owns what a job object means: its name (`123`, or `6_2` for task 2 of
 * array 6), whether it is final, its change signature, the stdout/stderr
 * paths SLURM will write (patterns expanded as slurmstepd does), and the
 * snapshot: state reason exit_code signal name user partition nodes work_dir
 * submit_time start_time end_time stdout_path stderr_path job.json stdout
 * stderr. job.json is the object's bytes exactly as the server sent them
 * (one element of the reply's "jobs" array, the same bytes in GET /jobs and
 * GET /job/ID). stdout and stderr are read from the local filesystem, after
 * the reply: a job is final by its state alone, and slurmstepd has closed
 * its output before the state turns final, so a final job's stdout is whole.
 * Replies of v0.0.36-38 share these keys; json-c stays inside this module
 * (and slurm.c, for error replies).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobfs/blob.h"
#include "jobfs/snapshot.h"

struct json_object;

struct slurm_job {
        char *name;             /* owned, a safe name */
        bool started;           /* not PENDING: its output files are its own */
        bool terminal;          /* COMPLETED FAILED CANCELLED TIMEOUT OUT_OF_MEMORY
                                 * NODE_FAIL PREEMPTED BOOT_FAIL DEADLINE */
        uint64_t sum;           /* backend_sig_add sum over the object, before done */
        long long uid;          /* user_id, -1 if not sent */
        char *out_path;         /* owned: expanded, absolute; NULL if unknown */
        char *err_path;         /* owned; NULL when stderr goes to out_path */
        struct blob *json;      /* owned reference: the object's bytes */
        struct json_object *obj;        /* owned, NULL once slurm_job_shrink ran */
};

/* Parses one job object (len bytes, not NUL-terminated). -EBADMSG when it is
 * not an object with an integer job_id. Caller frees with slurm_job_free. */
int slurm_parse_job(const char *bytes, size_t len, struct slurm_job **ret);
void slurm_job_free(struct slurm_job *j);               /* NULL-safe */
/* Drops the parsed object (and the bytes unless keep_json) to save memory;
 * slurm_job_snap then needs a fresh slurm_parse_job of the kept bytes. */
void slurm_job_shrink(struct slurm_job *j, bool keep_json);

/* The job's directory. stdout/stderr are read when started and readable
 * (regular files owned by the job's user), at most out_max bytes each (the
 * first ones; 0: not read at all). *ret_outputs is the outputs' share of the
 * signature (the item's is slurm_job_sig(j->sum, it): equal for equal
 * objects and equal output files); *ret_read the bytes read. Needs j->obj. */
int slurm_job_snap(const struct slurm_job *j, size_t out_max, struct snap **ret,
                   uint64_t *ret_outputs, size_t *ret_read);
/* The same share from open and fstat alone (nothing read). */
uint64_t slurm_job_outputs_sig(const struct slurm_job *j, size_t out_max);
uint64_t slurm_job_sig(uint64_t sum, uint64_t outputs);

/* Raw wait(2) status -> shell-style code (exit N: N; signal S: 128 + S) and
 * the signal (0: none). -EINVAL for what is not an exit status. */
int slurm_exit_code(long long raw, int *ret_code, int *ret_signal);

struct slurm_path_vars {
        unsigned long long job_id, array_job_id;        /* array_job_id 0: no array */
        long long array_task_id;                        /* -1: not an array task */
        const char *user, *name, *node;                 /* NULL = "" */
};
/* Expands an sbatch filename pattern (%% %A %a %J %j %N %n %s %t %u %x, zero
 * padding %4j, a backslash anywhere turning expansion off) as slurmstepd
 * 22.05 does. *ret: caller frees. -ENAMETOOLONG past PATH_MAX. */
int slurm_expand_path(const char *pattern, const struct slurm_path_vars *v, char **ret);

/* Whether name is a job as jobfs names them: "123" or "6_2" (no zeros in
 * front). Anything else under slurm/ is ENOENT without a request. */
bool slurm_name_ok(const char *name);

/* Errno for a reply that is not a 200: error_number 2017 (no such job, or
 * purged after MinJobAge) and v0.0.36's "unknown job" -ENOENT; -1 (token
 * refused, also what slurmctld being away looks like) and 401/403 -EACCES;
 * the rest as http_status_errno. */
int slurm_reply_errno(long status, const char *body, size_t len);
