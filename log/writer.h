/* Internal entry points between the writer's files (writer.c, spare.c,
 * open.c). All take the handle with mu held unless said otherwise. */
#ifndef RLG_WRITER_H
#define RLG_WRITER_H

#include "log/log_internal.h"

/* One I/O round: writes the pending chunks (all, or in RLOG_SYNC_EACH mode
 * through the first call boundary), syncs when `sync`, completes waiters.
 * The caller has set io_busy. Releases mu during I/O. */
int rlg_io_round(rlog_log *l, bool all, bool sync);
/* Creates, zero-fills and syncs segment file seq as the spare (also syncs
 * the directory). spare_state must be NONE; PREPARING meanwhile (mu
 * released), READY after. On failure the partial file is removed. */
int rlg_prepare_spare(rlog_log *l, uint64_t seq);
/* Creates path (EXCL; with `replace`, an existing file is unlinked first),
 * fills it with zeros to the segment size, syncs it and the directory. mu
 * NOT held. *what names the step that failed. */
int rlg_prepare_file(rlog_log *l, const char *path, bool replace, rlog_file **out,
                     const char **what);
/* The same for any vfs, directory and size (the replica's segments). */
int rlg_prepare_path(rlog_vfs *v, const char *dir, const char *path, uint64_t size, bool replace,
                     rlog_file **out, const char **what);
/* Writes zeros over [0, size) of f, flushing as it goes, and syncs it: a
 * file that reads as zeros becomes allocated (see rlg_prepare_path). */
int rlg_prewrite_zeros(rlog_vfs *v, rlog_file *f, uint64_t size);
/* Allocates [0, size) of f (where the file system can) and pre-writes it
 * with zeros (rlg_prewrite_zeros). *what names the step that failed. */
int rlg_fill_zeros(rlog_vfs *v, rlog_file *f, uint64_t size, const char **what);
/* Writes zeros over [from, to) of f, without a sync. 0 or an errno (EIO
 * for a short write). */
int rlg_write_zeros(rlog_vfs *v, rlog_file *f, uint64_t from, uint64_t to);
/* 1 MiB of zeros, never written (it lives in .bss: no memory until read,
 * and then the shared zero page). For pre-writing, cutting and unwriting. */
#define RLG_ZERO_CHUNK (1u << 20)
extern uint8_t rlg_zero_chunk[RLG_ZERO_CHUNK];
/* Name of the file a new log's first segment is built under. */
#define RLG_CREATE_TMP "rlog.creating"
/* A replica's segment and side file being received (log/replica.c). */
#define RLG_RECEIVE_TMP      "rlog.receiving"
#define RLG_RECEIVE_FILE_TMP "rlog.receiving-file"
/* One of the three temporary names above, or a replica's run marker
 * (RLG_RUN_MARKER): never part of the log. */
bool rlg_is_temp_name(const char *name);
/* Releases the I/O token (io_busy) and hands it on: wakes the rare waiters
 * and one blocking append (not `self`), and the I/O thread, when work is
 * pending. mu held. */
void rlg_io_release(rlog_log *l, const rlg_waiter *self);
/* Background threads (mu NOT held). */
int rlg_bg_start(rlog_log *l);
void rlg_bg_stop(rlog_log *l);
/* After a crash: drop what is queued, firing no callback (drop, when not
 * NULL, gets each async append's data). mu held. */
void rlg_drop_pending(rlog_log *l, void (*drop)(void *data));
/* At close: fail what is still queued with err. */
void rlg_fail_pending(rlog_log *l, int err);
/* At close: append a checkpoint record and sync it. */
int rlg_write_checkpoint(rlog_log *l);

/* The unsynced marker (log/unsynced.c). mark: after any failed sync, with
 * the last LSN known durable. read: 0 none, 1 present (*durable set), 2 present but unreadable,
 * -errno on error. clear: removes it durably (errno). */
void rlg_unsynced_mark(rlog_log *l, uint64_t durable);
int rlg_unsynced_read(rlog_log *l, uint64_t *durable);
int rlg_unsynced_clear(rlog_log *l);

/* Frees a handle as if its process had died: no write, no sync, no
 * checkpoint, callbacks never fire. For tests and the simulator. */
void rlg_log_crash(rlog_log *l);

/* Pieces of rlog_open, shared with the replica (log/replica.c). */
/* A handle with no segment, not open (NULL when out of memory). */
rlog_log *rlg_log_new(const char *dir, const rlog_options *o);
/* Closes its files (active, spare), releases the lock (lockf), frees it. */
void rlg_log_release(rlog_log *l);
/* Takes the directory lock (creating the directory first with
 * RLOG_OPEN_CREATE); the report's message says why not. */
int rlg_lock_dir(rlog_log *l, rlog_file **lk, rlog_open_report *rep);
/* Takes the recovered state as a writable open does: directory sync,
 * leftovers of receives removed, the cut, the spares, the tail made
 * durable (docs/format.md, "Opening for writing"). r->segs moves to l. */
int rlg_adopt(rlog_log *l, rlg_recovery *r);
#endif
