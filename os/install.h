/*
 * Durable directory operations: the one place that decides how a file is
 * installed under its final name and how a directory entry is removed, and
 * what a failure means (docs/durability.md, "Installing a file").
 *
 * Installing a temporary file `tmp` as `path`:
 *   1. the caller creates tmp and writes it;
 *   2. rlg_install_sync: fdatasync (or fsync) tmp, close it;
 *   3. rlg_install_commit: rename(tmp, path), then fsync the directory.
 * rlg_install does 2 and 3. One failure policy:
 *   - RLG_OS_FAILED: a step up to and including the rename failed. `path`
 *     is unchanged and tmp is gone (unlinked, the directory fsync
 *     attempted): a temporary file never survives a failed install.
 *   - RLG_OS_FATAL: the rename happened but the directory fsync failed. The
 *     kernel may have dropped the entry's dirty state, so after a crash
 *     either file may be at `path`: the caller must poison its handle (or,
 *     owning none, undo and report). Never retried.
 * Every directory change here is followed by its directory fsync before the
 * function returns, so no two directory operations are ever unsynced at
 * once when callers use only these helpers.
 */
#ifndef RLG_OS_INSTALL_H
#define RLG_OS_INSTALL_H

#include <stdbool.h>

#include "rlog/vfs.h"

enum {
    RLG_OS_OK = 0,
    RLG_OS_FAILED = 1, /* nothing changed at the final name */
    RLG_OS_FATAL = 2,  /* a directory fsync failed: poison */
};

/* What failed: the errno, the step ("fdatasync of", "renaming into place",
 * "directory fsync after renaming into", ...) and the path it concerned. */
typedef struct rlg_os_fail {
    int err;
    const char *what;
    const char *path;
} rlg_os_fail;

/* rlg_install_sync flags */
#define RLG_INSTALL_FSYNC  0x1u /* fsync (data and metadata) instead of fdatasync */
#define RLG_INSTALL_NOSYNC 0x2u /* the file's bytes need no durability (a spare) */

/* Step 2: makes t durable per flags and closes it (t is closed in every
 * case). On failure tmp is discarded; RLG_OS_FAILED. */
int rlg_install_sync(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp, unsigned flags,
                     rlg_os_fail *fail);
/* Step 3: rename(tmp, path), directory fsync. RLG_OS_OK, _FAILED (tmp
 * discarded, path unchanged) or _FATAL. */
int rlg_install_commit(rlog_vfs *v, const char *dir, const char *tmp, const char *path,
                       rlg_os_fail *fail);
/* Steps 2 and 3. */
int rlg_install(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp, const char *path,
                unsigned flags, rlg_os_fail *fail);
/* Removes tmp after a failure before the rename (best effort: closes t when
 * not NULL, unlinks, then fsyncs the directory when the unlink removed
 * something). */
void rlg_install_discard(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp);

/* unlink(path) then the directory fsync. A missing file is RLG_OS_OK with
 * nothing synced. RLG_OS_FAILED when the unlink fails (nothing changed),
 * RLG_OS_FATAL when the directory fsync does. */
int rlg_unlink_synced(rlog_vfs *v, const char *dir, const char *path, rlg_os_fail *fail);
/* rename(from, to) then the directory fsync; the same results. */
int rlg_rename_synced(rlog_vfs *v, const char *dir, const char *from, const char *to,
                      rlg_os_fail *fail);
/* Copies file `from` to the new file `to` in directory to_dir (created
 * exclusively), fsyncs the copy, then to_dir. RLG_OS_OK; RLG_OS_FAILED when
 * the copy failed (a partial copy is unlinked); RLG_OS_FATAL when to_dir's
 * fsync did. `from` is not changed. */
int rlg_copy_synced(rlog_vfs *v, const char *from, const char *to_dir, const char *to,
                    rlg_os_fail *fail);
/* Moves `from` (in from_dir) to `to` in another directory, to_dir:
 * rename, then fsync to_dir (the new entry) before from_dir (the old one
 * gone), so that a crash never loses the file from both. Across file
 * systems (EXDEV): rlg_copy_synced, then unlink(from) and fsync from_dir.
 * RLG_OS_OK; RLG_OS_FAILED when `from` is still where it was (a copy
 * that was made is kept only when the unlink of `from` failed);
 * RLG_OS_FATAL when a directory fsync failed after a change. */
int rlg_move_synced(rlog_vfs *v, const char *from_dir, const char *from, const char *to_dir,
                    const char *to, rlg_os_fail *fail);
/* fsync of directory dir alone: RLG_OS_OK or RLG_OS_FATAL. */
int rlg_sync_dir(rlog_vfs *v, const char *dir, rlg_os_fail *fail);

#endif /* RLG_OS_INSTALL_H */
