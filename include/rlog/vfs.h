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

/* ---- Fault-injecting wrapper (for tests and for users' own tests) ---- */

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

/*
 * One fault rule. How rules apply (log/vfs_fault.c):
 *  - A rule matches a call when the call's op is `op` and its path contains
 *    `path_contains` (NULL matches every call). The path of a file call
 *    (close, pread, pwrite, fdatasync, fsync, truncate, allocate, size) is
 *    the path the file was opened with; of lock/unlock, the directory; a
 *    rename matches when either `from` or `to` contains the string.
 *  - Every rule counts the calls it matches from when it is added, whether
 *    or not it (or another rule) faults them. It is armed for a call when
 *    it has seen more than `skip` matching calls, this one included, and
 *    has injected fewer than `times` faults (times == 0: no limit). A rule
 *    whose budget is spent stays in place, inert, until removed.
 *  - When several rules are armed for one call, the first added injects its
 *    fault; the others inject nothing and their `times` budget is not used.
 *  - A faulted call does not reach the wrapped vfs and returns `err`, with
 *    two exceptions. pwrite first writes min(partial, len) bytes through
 *    (none when partial is 0 or SIZE_MAX) and reports them in *done; an
 *    error of that real write is returned instead of `err`. close and
 *    unlock release the handle first (a vfs's close always releases).
 *  - err == 0 is accepted only for RLOG_OP_PWRITE: the call then returns 0
 *    with *done = min(partial, len) < len — a silent short write.
 */
typedef struct rlog_fault {
    rlog_vfs_op op;
    /* Matching calls to let through first, counted from when the rule is
     * added: 0 fails the very next one. */
    uint64_t skip;
    /* How many matching calls fail once it triggers; 0 = every one until
     * the rule is removed. */
    uint64_t times;
    /* Positive errno to return (EIO, ENOSPC, ...). 0 only with
     * RLOG_OP_PWRITE (a silent short write, see above). */
    int err;
    /* RLOG_OP_PWRITE only: bytes written through before the call fails
     * (clamped to the length); 0 or SIZE_MAX = write nothing. Ignored for
     * other ops. */
    size_t partial;
    /* Only calls whose path contains this substring match (NULL = all).
     * The string is copied. */
    const char *path_contains;
} rlog_fault;

/* Wraps `base` (borrowed; must outlive the wrapper). Free with
 * wrapper->destroy(wrapper). Returns NULL when out of memory. */
RLOG_API rlog_vfs *rlog_vfs_fault_new(rlog_vfs *base);
/* Adds a rule after the existing ones (the rule and its path_contains are
 * copied). Returns its id (> 0), -EINVAL for a rule that cannot be injected
 * (an op outside 0 .. RLOG_OP_COUNT-1, err < 0, or err == 0 on an op other
 * than RLOG_OP_PWRITE), or -ENOMEM. */
RLOG_API int rlog_vfs_fault_add(rlog_vfs *vfs, const rlog_fault *fault);
/* Removes rule `id` (unknown ids are ignored). */
RLOG_API void rlog_vfs_fault_remove(rlog_vfs *vfs, int id);
/* Removes every rule. The call counters are kept. */
RLOG_API void rlog_vfs_fault_clear(rlog_vfs *vfs);
/* Calls of `op` seen since the wrapper was made (faulted or not). */
RLOG_API uint64_t rlog_vfs_fault_calls(rlog_vfs *vfs, rlog_vfs_op op);
/* Faults injected so far (all rules). */
RLOG_API uint64_t rlog_vfs_fault_injected(rlog_vfs *vfs);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_VFS_H */
