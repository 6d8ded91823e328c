/* fs_internal: what fs.c, fs_dir.c and fs_replay.c share; private to them. */
#pragma once
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "jobfs/cache.h"

struct jobfs;
struct node;

#define WAIT_SIZE_LIVE 4096     /* st_size of a live job's wait file: one page */

struct jobfs *fs_jobfs(fuse_req_t req);
struct node *fs_node(struct jobfs *fs, fuse_ino_t ino);
/* Whether the request comes from a replay thread (its own-mount syscalls). */
bool fs_from_replay(struct jobfs *fs, fuse_req_t req);
/* The caller a cache wait may be interrupted for (Ctrl-C). */
struct cache_caller fs_caller(fuse_req_t req);
/* Tree lock held from here on. */
void fs_fill_attr(struct jobfs *fs, const struct node *n, struct stat *st);
/* An entry for the kernel; fs_fill_entry also counts the kernel's reference. */
void fs_fill_entry_nocount(struct jobfs *fs, struct node *n, struct fuse_entry_param *e);
void fs_fill_entry(struct jobfs *fs, struct node *n, struct fuse_entry_param *e);
/* Replies with an entry fs_fill_entry counted; a reply the kernel refused
 * (the request was interrupted) never took the reference: it is given back. */
void fs_reply_entry(struct jobfs *fs, fuse_req_t req, struct node *n,
                    const struct fuse_entry_param *e);
/* How long the kernel may cache n's entry and attributes. */
double fs_timeout(struct jobfs *fs, const struct node *n);

/* fs_wait.c: reads and polls of wait files park until the job is final */
void fs_wait_read(fuse_req_t req, struct node *wait, size_t size, off_t off);
void fs_wait_poll(fuse_req_t req, struct node *wait, struct fuse_pollhandle *ph);

/* fs_dir.c */
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* fs_replay.c: the replays' syscalls, and everyone else's refusals */
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void fs_op_access(fuse_req_t req, fuse_ino_t ino, int mask);
