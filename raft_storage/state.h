/*
 * The Raft state that the records describe, and the rules that decide
 * whether a record may follow the state. The same check/apply pair serves
 * the API (check the input, append the record, apply it) and recovery
 * (decode, check — a failure is corruption —, apply), so the state after a
 * reopen is by construction the state before it.
 *
 * Replay rules (docs/raft_storage.md, "Recovery"):
 *  - The replay starts *unanchored*: the records before the first retained
 *    segment are gone, so the state has no entries yet. The first entries
 *    record anchors it and may start at any index above the snapshot index
 *    (the ones before it were in deleted segments). A truncation record
 *    while unanchored only has its bounds checked. At the end of the replay
 *    an unanchored state becomes the empty log after the snapshot.
 *  - Anchored, an entries record must start at last + 1 (ENONCONTIG).
 *  - Entry terms are >= 1 and never below the term of the entry before
 *    (or of the snapshot when the batch follows it) (ETERM).
 *  - A truncation at i needs snapshot index < i, commit < i and
 *    i <= last + 1 (ESTALE/EINVAL). When i < first (only in a replay that
 *    starts after the entries before i were deleted) the log becomes empty
 *    at i: the next entries record must start at i.
 *  - A hard state: term never goes back (ETERM), vote set once per term
 *    (EVOTE), commit never goes back (ESTALE).
 *  - A snapshot marker below the current one is ESTALE; equal to it, it
 *    must be byte-identical (a sticky repeat, no effect). A newer one says
 *    in its REPLACE flag what it did when it was written: it replaced the
 *    log (trailing 0, or the entry at index missing or of another term):
 *    the log becomes empty after it (first = last + 1 = index + 1); or it
 *    kept the entries after index - trailing (the entry at index must then
 *    be there with the marker's term, unless the replay starts after it).
 *    The flag, not the replayed entries, decides, because a replay that
 *    starts in a later segment may not hold the entry at index.
 */
#ifndef RLG_RS_STATE_H
#define RLG_RS_STATE_H

#include "raft_storage/codec.h"
#include "raft_storage/index.h"

typedef struct rlg_snap {
    bool has;
    rlg_snap_view v; /* name and conf point into raw */
    uint8_t *raw;    /* the marker's payload, owned */
    size_t raw_len;
    char name[RLG_RS_NAME_MAX + 1];
} rlg_snap;

typedef struct rlg_state {
    rlog_rs_hard_state hs;
    bool has_hs;
    rlg_snap snap;
    rlg_index ix;
    bool anchored;
    /* LSN of the latest hard-state and snapshot-marker record (a copy at a
     * segment head included); 0 when none */
    uint64_t hs_lsn, snap_lsn;
} rlg_state;

/* An empty state, unanchored (ready for a replay). */
void rlg_state_init(rlg_state *st);
void rlg_state_free(rlg_state *st);
/* Whether record r may follow the state: 0, or an RLOG_E* code with the
 * reason in why. */
int rlg_state_check(const rlg_state *st, const rlg_rec *r, char *why, size_t cap);
/* Checks entries e[0..n) at first_index as rlg_state_check checks a batch. */
int rlg_state_check_entries(const rlg_state *st, uint64_t first_index, const rlog_rs_entry *e,
                            size_t n, char *why, size_t cap);
/* Applies a checked record at `lsn`. Fails only with RLOG_ENOMEM. */
int rlg_state_apply(rlg_state *st, const rlg_rec *r, uint64_t lsn);
/* Whether a snapshot (index, term, trailing) replaces the whole log now
 * (see the rules above). */
bool rlg_state_snap_replaces(const rlg_state *st, uint64_t index, uint64_t term, uint32_t trailing);
/* Ends a replay: an unanchored state becomes the empty log after the
 * snapshot. */
void rlg_state_anchor(rlg_state *st);
/* Term of entry i (including the snapshot's), 0 when unknown. */
uint64_t rlg_state_term(const rlg_state *st, uint64_t i);

#endif /* RLG_RS_STATE_H */
