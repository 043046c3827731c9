/* Segment files made ahead of need (log/spare.c): created, zero-filled so
 * later fdatasyncs touch no allocation metadata, synced, directory synced.
 * Also used by the replica for the segments it receives. */
#ifndef RLG_SPARE_H
#define RLG_SPARE_H

#include "log/log_internal.h"

/* Creates, zero-fills and syncs segment file seq as the spare (also syncs
 * the directory). spare_state must be NONE; PREPARING meanwhile (mu
 * released), READY after. On failure the partial file is removed. */
int rlg_prepare_spare(rlog_log *l, uint64_t seq);
/* "dir/rlog.recycle-<old seq>": where deleted segment file `old` waits
 * for recycling. */
void rlg_pool_path(const rlog_log *l, uint64_t old, char *buf, size_t cap);
/* Directory operations are never unsynced two at a time (a power loss
 * keeps each independently: a later unlink kept with an earlier one lost is
 * a gap). A handle whose last directory operation is not known durable
 * (l->dir_unsynced: its directory fsync failed, or it was left unsynced on
 * purpose) syncs the directory before its next one: 0 (the flag cleared) or
 * the errno of that fsync (the caller then makes no directory operation).
 * mu held; released around the fsync. */
int rlg_dir_settle(rlog_log *l);
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

#endif /* RLG_SPARE_H */
