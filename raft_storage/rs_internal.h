/* The Raft storage handle's internals, shared by the files of
 * raft_storage/. Nothing outside raft_storage/ includes this. */
#ifndef RLG_RS_INTERNAL_H
#define RLG_RS_INTERNAL_H

#include <stdatomic.h>

#include "raft_storage/state.h"
#include "rlog/raft_storage.h"

struct rlog_rs {
    char *dir;
    rlog_rs_options opts;
    rlog_vfs *vfs; /* opts.log.vfs or posix; borrowed */
    rlog_log *log;
    bool readonly;
    rlg_state st;
    /* 0, or the error that failed the handle (set by the log's I/O thread
     * from an append callback, or by the owner thread). */
    atomic_int failed;
    size_t rec_max; /* largest payload of one record we write */
    uint8_t *enc;   /* encoding buffer, reused */
    size_t enc_cap;
    uint64_t prefix_delete_errors;
    uint64_t snap_lsn; /* LSN of the current snapshot's marker (0: none) */
    char errmsg[512];
};

/* Sets the handle's message (printf-style); returns err. */
int rlg_rs_fail(rlog_rs *rs, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* RLOG_EPOISONED (with a message) when the handle is failed, RLOG_ENOTSUP
 * when read-only; else 0. For every call that writes. */
int rlg_rs_writable(rlog_rs *rs);
/* Marks the handle failed with err (first error wins). */
void rlg_rs_poison(rlog_rs *rs, int err);
/* Makes sure rs->enc holds n bytes. */
int rlg_rs_enc_reserve(rlog_rs *rs, size_t n);
/* Appends one record synchronously (durable on return, whatever the log's
 * sync mode), then decodes and applies it. *lsn (may be NULL) gets its LSN.
 * The record must have been checked. */
int rlg_rs_append_apply(rlog_rs *rs, uint16_t type, unsigned sticky, const void *payload,
                        size_t len, uint64_t *lsn);
/* Logs through the options' logger. */
void rlg_rs_logf(rlog_rs *rs, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* purge.c: deletes the log segments that hold only records before the
 * batch of entry max(index, first) (before the snapshot marker when no
 * entry from there on is held), oldest first (rlog_delete_prefix), and
 * drops from the index the entries that went with them, as a reopen
 * would. *deleted (may be NULL): segments deleted. The log's error. */
int rlg_rs_delete_before(rlog_rs *rs, uint64_t index, uint64_t *deleted);

/* snapshot.c: removes temp files (when `temps`), orphans newer than the
 * current marker and surplus older snapshot files. Counts what it removed. */
int rlg_rs_snap_cleanup(rlog_rs *rs, bool temps, uint64_t *temps_removed, uint64_t *snaps_removed);

/* snapshot.c: checks the current snapshot's file against its marker
 * (present, size, CRC32C; streamed): 0, or RLOG_ECORRUPT with a message
 * naming the file and the marker's LSN. 0 when there is no snapshot. */
int rlg_rs_snap_verify(rlog_rs *rs);

#endif /* RLG_RS_INTERNAL_H */
