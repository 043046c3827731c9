/* The unsynced marker (log/unsynced.c; docs/durability.md). */
#ifndef RLG_UNSYNCED_H
#define RLG_UNSYNCED_H

#include "log/log_internal.h"

/* The temporary name the marker is written under before its rename (a
 * writable open reads it as the marker, then removes it). */
#define RLG_UNSYNCED_TMP "rlog.unsynced-tmp"

/* mark: after any failed sync, with the last LSN known durable (three
 * attempts; an ERROR log line when all fail). read: 0 none, 1 present
 * (*durable set), 2 present but unreadable, -errno on error. clear: removes
 * it durably (0 or an errno; on failure the marker is left again, at
 * `again`). */
void rlg_unsynced_mark(rlog_log *l, uint64_t durable);
int rlg_unsynced_read(rlog_log *l, uint64_t *durable);
int rlg_unsynced_clear(rlog_log *l, uint64_t again);

#endif /* RLG_UNSYNCED_H */
