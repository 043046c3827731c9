/*
 * rlog — the file-system table (vfs) and the environment table (env).
 *
 * Nothing in rlog makes a file-system, clock or randomness system call except
 * the posix implementations behind these tables. Everything above them calls
 * through the tables, so a simulator (sim/) or a fault-injecting wrapper can
 * stand in for the operating system — the way SQLite's VFS and libraft's
 * raft_io do.
 *
 * Conventions for every vfs function:
 *  - The return value is 0 on success or a positive errno value (EIO, ENOSPC,
 *    ENOENT, EEXIST, EBUSY, ...). rlog maps it with rlog_from_errno().
 *  - Paths are plain strings as the caller builds them ("dir/name"); the
 *    vfs does not interpret them beyond passing them to the OS.
 *  - pread and pwrite report through *done how many bytes moved. pread stops
 *    short (with 0) only at end of file. pwrite retries EINTR and partial
 *    writes; when it fails part-way it returns the error with *done set to
 *    the bytes that did reach the file.
 *  - A rlog_file is owned by the vfs that opened it and is released by
 *    close() (which releases it even when it returns an error).
 *  - Implementations must be safe to call from several threads at once on
 *    different files, and on the same file for pread/pwrite/sync.
 */
#ifndef RLOG_VFS_H
#define RLOG_VFS_H

#include "rlog/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlog_vfs rlog_vfs;
typedef struct rlog_env rlog_env;
/* An open file. Opaque; each vfs implementation defines its own. */
typedef struct rlog_file rlog_file;

/* open() flags */
#define RLOG_VFS_RDONLY 0x1u /* read only */
#define RLOG_VFS_RDWR   0x2u /* read and write */
#define RLOG_VFS_CREATE 0x4u /* create if missing (mode 0644) */
#define RLOG_VFS_EXCL   0x8u /* with CREATE: fail with EEXIST if it exists */

struct rlog_vfs {
    void *impl; /* implementation data */

    int (*open)(rlog_vfs *vfs, const char *path, unsigned flags, rlog_file **out);
    int (*close)(rlog_vfs *vfs, rlog_file *f);
    int (*pread)(rlog_vfs *vfs, rlog_file *f, void *buf, size_t len, uint64_t off, size_t *done);
    int (*pwrite)(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off,
                  size_t *done);
    /* Makes the file's data durable (and the metadata needed to read it). */
    int (*fdatasync)(rlog_vfs *vfs, rlog_file *f);
    /* Makes data and all metadata durable. */
    int (*fsync)(rlog_vfs *vfs, rlog_file *f);
    int (*truncate)(rlog_vfs *vfs, rlog_file *f, uint64_t size);
    /* Reserves [off, off+len) so later writes there cannot fail with ENOSPC.
     * May return EOPNOTSUPP where the file system cannot. */
    int (*allocate)(rlog_vfs *vfs, rlog_file *f, uint64_t off, uint64_t len);
    int (*size)(rlog_vfs *vfs, rlog_file *f, uint64_t *size);

    /* Atomically replaces `to` with `from`. Not durable until sync_dir(). */
    int (*rename)(rlog_vfs *vfs, const char *from, const char *to);
    /* Not durable until sync_dir(). */
    int (*unlink)(rlog_vfs *vfs, const char *path);
    /* EEXIST if it exists. */
    int (*mkdir)(rlog_vfs *vfs, const char *path);
    /* Names of the entries of a directory, without "." and "..", in no
     * particular order. *names is an array of *count strings; free it with
     * rlog_vfs_free_names(). ENOENT if the directory does not exist, ENOTDIR
     * if it is not a directory. */
    int (*list)(rlog_vfs *vfs, const char *dir, char ***names, size_t *count);
    /* Makes the directory's entries (creates, renames, unlinks) durable. */
    int (*sync_dir)(rlog_vfs *vfs, const char *dir);
    /* Takes an exclusive advisory lock on a directory without creating any
     * file in it. EBUSY if another holder (process or handle) has it.
     * Released by unlock() or when the process dies. */
    int (*lock)(rlog_vfs *vfs, const char *dir, rlog_file **lock);
    int (*unlock)(rlog_vfs *vfs, rlog_file *lock);

    /* Frees the vfs itself (for vfs made by a constructor below). */
    void (*destroy)(rlog_vfs *vfs);
};

/* Frees an array returned by list(). */
RLOG_API void rlog_vfs_free_names(char **names, size_t count);

struct rlog_env {
    void *impl;
    /* Monotonic clock, nanoseconds from an arbitrary origin. */
    uint64_t (*now_ns)(rlog_env *env);
    /* 64 random bits (log ids, jitter). */
    uint64_t (*random)(rlog_env *env);
    void (*destroy)(rlog_env *env);
};

/* The posix implementations. They are process-wide singletons that need no
 * freeing (destroy is a no-op) and are safe from any thread. */
RLOG_API rlog_vfs *rlog_vfs_posix(void);
RLOG_API rlog_env *rlog_env_posix(void);

/* The operations of the table, for counting and fault rules. */
typedef enum rlog_vfs_op {
    RLOG_OP_OPEN = 0,
    RLOG_OP_CLOSE,
    RLOG_OP_PREAD,
    RLOG_OP_PWRITE,
    RLOG_OP_FDATASYNC,
    RLOG_OP_FSYNC,
    RLOG_OP_TRUNCATE,
    RLOG_OP_ALLOCATE,
    RLOG_OP_SIZE,
    RLOG_OP_RENAME,
    RLOG_OP_UNLINK,
    RLOG_OP_MKDIR,
    RLOG_OP_LIST,
    RLOG_OP_SYNC_DIR,
    RLOG_OP_LOCK,
    RLOG_OP_UNLOCK,
    RLOG_OP_COUNT
} rlog_vfs_op;

/* The fault-injecting wrapper is test tooling: rlog/vfs_fault.h, in
 * librlog-sim (docs/simulator.md). */

#ifdef __cplusplus
}
#endif
#endif /* RLOG_VFS_H */
