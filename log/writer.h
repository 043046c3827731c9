/* The append pipeline's entry points (log/writer.c) for opening, closing
 * and deleting a prefix. All take the handle with mu held unless said
 * otherwise. */
#ifndef RLG_WRITER_H
#define RLG_WRITER_H

#include "log/log_internal.h"

/* One I/O round: writes the pending chunks (all, or in RLOG_SYNC_EACH mode
 * through the first call boundary), syncs when `sync`, completes waiters.
 * The caller has set io_busy. Releases mu during I/O. */
int rlg_io_round(rlog_log *l, bool all, bool sync);
/* Releases the I/O token (io_busy) and hands it on: wakes the rare waiters
 * and one blocking append (not `self`), and the I/O thread, when work is
 * pending. mu held. */
void rlg_io_release(rlog_log *l, const rlg_waiter *self);
/* Background threads (mu NOT held): the preparer, and the I/O thread when
 * `io`. */
int rlg_bg_start(rlog_log *l, bool io);
void rlg_bg_stop(rlog_log *l);
/* After a crash: drop what is queued, firing no callback (drop, when not
 * NULL, gets each async append's data). mu held. */
void rlg_drop_pending(rlog_log *l, void (*drop)(void *data));
/* At close: fail what is still queued with err. */
void rlg_fail_pending(rlog_log *l, int err);
/* At close: append a checkpoint record and sync it. */
int rlg_write_checkpoint(rlog_log *l);
/* The LSN the active (last) segment starts at: records at or after it are
 * in that segment (the Raft storage checks that the segment holds its
 * current state, raft_storage/open.c). */
uint64_t rlg_log_head_lsn(rlog_log *l);

#endif
