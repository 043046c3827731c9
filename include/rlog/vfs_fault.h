/*
 * rlog — a fault-injecting vfs wrapper, for tests (rlog's and users' own).
 *
 * Test tooling: it is built into librlog-sim (CMake target rlog::sim), not
 * into librlog, and installed only with -DRLOG_INSTALL_SIM=ON.
 */
#ifndef RLOG_VFS_FAULT_H
#define RLOG_VFS_FAULT_H

#include "rlog/vfs.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One fault rule. How rules apply (sim/vfs_fault.c):
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
#endif /* RLOG_VFS_FAULT_H */
