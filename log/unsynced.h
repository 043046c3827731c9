/* The unsynced marker (log/unsynced.c; docs/durability.md). */
#ifndef RLG_UNSYNCED_H
#define RLG_UNSYNCED_H

#include "log/log_internal.h"

/* mark: after any failed sync, with
 * the last LSN known durable. read: 0 none, 1 present (*durable set), 2 present but unreadable,
 * -errno on error. clear: removes it durably (errno). */
void rlg_unsynced_mark(rlog_log *l, uint64_t durable);
int rlg_unsynced_read(rlog_log *l, uint64_t *durable);
int rlg_unsynced_clear(rlog_log *l);

#endif /* RLG_UNSYNCED_H */
