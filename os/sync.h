/*
 * Asking the file system for durability: the one place above the vfs table
 * (include/rlog/vfs.h) that syncs a file or a directory. Every layer calls
 * these instead of the table's fdatasync, fsync and sync_dir, so that what
 * "durable" costs and how it fails is decided — and can be changed, counted
 * or traced — here. Each returns the vfs's errno (0 on success) unchanged:
 * the caller keeps its own failure policy (poison, FAILED/FATAL in
 * os/install.h) and names the file in its message.
 */
#ifndef RLG_OS_SYNC_H
#define RLG_OS_SYNC_H

#include "rlog/vfs.h"

/* The file's data (and the metadata needed to read it back). */
int rlg_os_fdatasync(rlog_vfs *v, rlog_file *f);
/* The file's data and all its metadata. */
int rlg_os_fsync(rlog_vfs *v, rlog_file *f);
/* The directory's entries (creations, renames, unlinks). */
int rlg_os_sync_dir(rlog_vfs *v, const char *dir);

#endif /* RLG_OS_SYNC_H */
