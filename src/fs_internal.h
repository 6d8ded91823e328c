/* fs_internal: what fs.c, fs_dir.c and fs_write.c share; private to them.
 * All of it runs with the tree lock held, except fs_jobfs and fs_from_notifier.
 */
#pragma once
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/stat.h>

struct jobfs;
struct node;
struct unit;

struct jobfs *fs_jobfs(fuse_req_t req);
struct node *fs_node(struct jobfs *fs, fuse_ino_t ino);
fuse_ino_t fs_ino(struct jobfs *fs, struct node *n);
/* Whether the request comes from the notifier thread (its own-mount syscalls). */
bool fs_from_notifier(struct jobfs *fs, fuse_req_t req);
/* How long the kernel may cache n: the TTL, or 1 h once its job is final. */
double fs_timeout(struct jobfs *fs, const struct node *n);
void fs_fill_attr(const struct node *n, struct stat *st);
/* Entry for the kernel without / with one more lookup reference. */
void fs_fill_entry_nocount(struct jobfs *fs, struct node *n, struct fuse_entry_param *e);
void fs_fill_entry(struct jobfs *fs, struct node *n, struct fuse_entry_param *e);
/* The kernel took one more reference to n (a lookup count). */
void fs_hold(struct node *n);
/* Refreshes a unit past its TTL. When there is data to fall back on, the
 * refetch runs on a pool thread and the caller waits `grace` seconds for it
 * at most, then uses what there is (the refetch goes on, bounded by its own
 * deadline, and its outcome is there for the next access). */
int fs_refresh_unit(struct jobfs *fs, struct unit *u, double grace);
/* Brings the data of n up to the TTL (stale data is fine: 0). */
int fs_refresh(struct jobfs *fs, struct node *n);

/* fs_dir.c */
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* fs_write.c */
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
