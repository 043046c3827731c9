/*
 * Deleting the log segments whose records the Raft state no longer needs
 * (docs/raft_storage.md, "Purging covered entries"): after a snapshot
 * (snapshot.c) and on an operator's request (rlog_rs_purge_before, `rlog
 * purge --before-index`). One rule decides the LSN bound and brings the
 * in-memory index to what a reopen would find.
 */
#include <inttypes.h>

#include "raft_storage/rs_internal.h"

/* The first entry a reopen would find once the log starts at first_lsn:
 * that of the first batch at or after it (the replay anchors there); the
 * entries before it went with their segments. */
static void drop_deleted(rlog_rs *rs, uint64_t first_lsn)
{
    rlg_index *ix = &rs->st.ix;
    if (rlg_index_empty(ix))
        return;
    rlg_bpos p;
    rlg_index_locate(ix, ix->first, &p);
    while (p.lsn < first_lsn)
        if (!rlg_index_next(ix, &p)) {
            /* every batch went: the empty log after the snapshot */
            rlg_index_reset(ix, rs->st.snap.v.index + 1);
            return;
        }
    if (p.index > ix->first)
        rlg_index_drop_prefix(ix, p.index);
}

int rlg_rs_delete_before(rlog_rs *rs, uint64_t index, uint64_t *deleted)
{
    const rlg_index *ix = &rs->st.ix;
    uint64_t keep = rs->snap_lsn; /* no entry at or after index: up to the marker */
    if (index < ix->first)
        index = ix->first;
    if (!rlg_index_empty(ix) && index <= ix->last) {
        rlg_bpos p;
        rlg_index_locate(ix, index, &p);
        keep = p.lsn;
    }
    uint64_t n = 0;
    int rv = keep ? rlog_delete_prefix(rs->log, keep, &n) : 0;
    if (n) {
        rlog_positions pos;
        rlog_positions_get(rs->log, &pos);
        drop_deleted(rs, pos.first);
    }
    if (deleted)
        *deleted = n;
    return rv;
}

int rlog_rs_purge_before(rlog_rs *rs, uint64_t index, uint64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    int rv = rlg_rs_writable(rs);
    if (rv)
        return rv;
    const rlg_state *st = &rs->st;
    if (index == 0 || !st->snap.has || index > st->snap.v.index + 1)
        return rlg_rs_fail(rs, RLOG_EINVAL,
                           "purge: entries before index %" PRIu64 " are not all covered by the "
                           "snapshot (%s%" PRIu64 "): only a snapshot may drop them",
                           index, st->snap.has ? "index " : "none; last index ",
                           st->snap.has ? st->snap.v.index : st->ix.last);
    if ((rv = rlg_rs_delete_before(rs, index, deleted)) != 0)
        return rlg_rs_fail(rs, rv, "purge: deleting segments before index %" PRIu64 ": %s", index,
                           rlog_errmsg(rs->log));
    return 0;
}
