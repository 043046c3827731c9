/* Pieces of rlog_open (log/open.c) shared with the replica
 * (log/replica.c): the directory lock, adopting a recovery, and the
 * temporary names that are never part of a log. */
#ifndef RLG_OPEN_H
#define RLG_OPEN_H

#include "log/log_internal.h"
#include "log/recover.h"

/* Takes the directory lock (creating the directory first with
 * RLOG_OPEN_CREATE); the report's message says why not. */
int rlg_lock_dir(rlog_log *l, rlog_file **lk, rlog_open_report *rep);
/* Takes the recovered state as a writable open does: directory sync,
 * leftovers of receives removed, the cut, the spares, the tail made
 * durable (docs/format.md, "Opening for writing"). r->segs moves to l. */
int rlg_adopt(rlog_log *l, rlg_recovery *r);

/* Name of the file a new log's first segment is built under. */
#define RLG_CREATE_TMP "rlog.creating"
/* A replica's segment and side file being received (log/replica.c). */
#define RLG_RECEIVE_TMP      "rlog.receiving"
#define RLG_RECEIVE_FILE_TMP "rlog.receiving-file"
/* A replica's spare segment file being made again after its fdatasync
 * failed (log/replica_spare.c). */
#define RLG_SPARE_TMP "rlog.spare"
/* One of the four temporary names above, the unsynced marker's
 * (RLG_UNSYNCED_TMP) or a replica's run marker (RLG_RUN_MARKER): never
 * part of the log. */
bool rlg_is_temp_name(const char *name);

#endif /* RLG_OPEN_H */
