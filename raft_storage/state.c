/* The replay rules: checking and applying Raft records (see state.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_storage/state.h"

void rlg_state_init(rlg_state *st)
{
    memset(st, 0, sizeof *st);
    rlg_index_init(&st->ix, 1);
}

void rlg_state_free(rlg_state *st)
{
    free(st->snap.raw);
    rlg_index_free(&st->ix);
    memset(st, 0, sizeof *st);
}

uint64_t rlg_state_term(const rlg_state *st, uint64_t i)
{
    if (st->snap.has && i == st->snap.v.index)
        return st->snap.v.term;
    return rlg_index_term(&st->ix, i);
}

static uint64_t snap_index(const rlg_state *st)
{
    return st->snap.has ? st->snap.v.index : 0;
}

static int check_hs(const rlg_state *st, const rlog_rs_hard_state *n, char *why, size_t cap)
{
    const rlog_rs_hard_state *c = &st->hs;
    if (n->term < c->term)
        return rlg_rs_why(RLOG_ETERM, why, cap,
                          "term %" PRIu64 " is below the current term %" PRIu64, n->term, c->term);
    if (n->term == c->term && c->vote != 0 && n->vote != c->vote)
        return rlg_rs_why(RLOG_EVOTE, why, cap,
                          "vote for %" PRIu64 " in term %" PRIu64
                          " which already voted for %" PRIu64,
                          n->vote, n->term, c->vote);
    if (n->commit < c->commit)
        return rlg_rs_why(RLOG_ESTALE, why, cap,
                          "commit index %" PRIu64 " is below the current %" PRIu64, n->commit,
                          c->commit);
    return 0;
}

/* The start index and the term before a batch at first_index. */
static int check_start(const rlg_state *st, uint64_t first_index, uint64_t *prev_term, char *why,
                       size_t cap)
{
    uint64_t si = snap_index(st);
    if (st->anchored && first_index != st->ix.last + 1)
        return rlg_rs_why(RLOG_ENONCONTIG, why, cap,
                          "entries start at %" PRIu64 " but the log ends at %" PRIu64, first_index,
                          st->ix.last);
    if (!st->anchored && first_index <= si)
        return rlg_rs_why(RLOG_ENONCONTIG, why, cap,
                          "entries start at %" PRIu64 ", within the snapshot (index %" PRIu64 ")",
                          first_index, si);
    *prev_term = rlg_state_term(st, first_index - 1);
    return 0;
}

static int check_term(uint64_t k_index, uint64_t term, uint64_t prev, char *why, size_t cap)
{
    if (term == 0 || term < prev)
        return rlg_rs_why(RLOG_ETERM, why, cap,
                          "entry %" PRIu64 " has term %" PRIu64 ", below the term %" PRIu64
                          " before it",
                          k_index, term, prev ? prev : 1);
    return 0;
}

int rlg_state_check_entries(const rlg_state *st, uint64_t first_index, const rlog_rs_entry *e,
                            size_t n, char *why, size_t cap)
{
    uint64_t prev;
    if (first_index == 0 || n == 0 || first_index > UINT64_MAX - n)
        return rlg_rs_why(RLOG_EINVAL, why, cap, "bad entry range at %" PRIu64, first_index);
    int rv = check_start(st, first_index, &prev, why, cap);
    for (size_t k = 0; k < n && !rv; k++) {
        rv = check_term(first_index + k, e[k].term, prev, why, cap);
        prev = e[k].term;
    }
    return rv;
}

static int check_batch(const rlg_state *st, const rlg_batch_view *b, char *why, size_t cap)
{
    uint64_t prev;
    int rv = check_start(st, b->first_index, &prev, why, cap);
    for (uint32_t k = 0; k < b->count && !rv; k++) {
        uint64_t t = rlg_batch_term(b, k);
        rv = check_term(b->first_index + k, t, prev, why, cap);
        prev = t;
    }
    return rv;
}

static int check_trunc(const rlg_state *st, uint64_t i, char *why, size_t cap)
{
    if (i == 0)
        return rlg_rs_why(RLOG_EINVAL, why, cap, "truncation at index 0");
    if (st->snap.has && i <= st->snap.v.index)
        return rlg_rs_why(RLOG_ESTALE, why, cap,
                          "truncation at %" PRIu64 " is not above the snapshot index %" PRIu64, i,
                          st->snap.v.index);
    if (i <= st->hs.commit)
        return rlg_rs_why(RLOG_ESTALE, why, cap,
                          "truncation at %" PRIu64 " is not above the commit index %" PRIu64, i,
                          st->hs.commit);
    if (st->anchored && i > st->ix.last + 1)
        return rlg_rs_why(RLOG_EINVAL, why, cap,
                          "truncation at %" PRIu64 " is beyond the log %" PRIu64 "..%" PRIu64, i,
                          st->ix.first, st->ix.last);
    return 0;
}

bool rlg_state_snap_replaces(const rlg_state *st, uint64_t index, uint64_t term, uint32_t trailing)
{
    const rlg_index *ix = &st->ix;
    return trailing == 0 || index < ix->first || index > ix->last ||
           rlg_index_term(ix, index) != term;
}

static int check_snap(const rlg_state *st, const rlg_rec *r, char *why, size_t cap)
{
    const rlg_snap_view *v = &r->u.snap;
    if (st->snap.has && v->index <= st->snap.v.index) {
        if (v->index == st->snap.v.index && r->raw_len == st->snap.raw_len &&
            memcmp(r->raw, st->snap.raw, r->raw_len) == 0)
            return 0; /* a repeat of the current marker */
        return rlg_rs_why(RLOG_ESTALE, why, cap,
                          "snapshot at index %" PRIu64
                          " is not newer than the current one at %" PRIu64,
                          v->index, st->snap.v.index);
    }
    if (v->flags & RLG_SNAP_REPLACE || !st->anchored)
        return 0;
    /* it kept the log: the entry at index must be there with its term,
     * unless the entries up to it were in deleted segments */
    if (v->trailing == 0 || v->index > st->ix.last ||
        (v->index >= st->ix.first && rlg_index_term(&st->ix, v->index) != v->term))
        return rlg_rs_why(RLOG_EINVAL, why, cap,
                          "snapshot at index %" PRIu64 " term %" PRIu64
                          " says it kept the log %" PRIu64 "..%" PRIu64 ", which does not hold it",
                          v->index, v->term, st->ix.first, st->ix.last);
    return 0;
}

int rlg_state_check(const rlg_state *st, const rlg_rec *r, char *why, size_t cap)
{
    switch (r->type) {
    case RLOG_RS_TYPE_HARD_STATE:
        return check_hs(st, &r->u.hs, why, cap);
    case RLOG_RS_TYPE_ENTRIES:
        return check_batch(st, &r->u.batch, why, cap);
    case RLOG_RS_TYPE_TRUNCATE:
        return check_trunc(st, r->u.trunc, why, cap);
    case RLOG_RS_TYPE_SNAPSHOT:
        return check_snap(st, r, why, cap);
    default:
        return rlg_rs_why(RLOG_EINVAL, why, cap, "record type %u", (unsigned)r->type);
    }
}

static int apply_snap(rlg_state *st, const rlg_rec *r)
{
    const rlg_snap_view *v = &r->u.snap;
    if (st->snap.has && v->index == st->snap.v.index)
        return 0; /* repeat */
    uint8_t *raw = malloc(r->raw_len);
    if (!raw)
        return RLOG_ENOMEM;
    memcpy(raw, r->raw, r->raw_len);
    free(st->snap.raw);
    st->snap.has = true;
    st->snap.raw = raw;
    st->snap.raw_len = r->raw_len;
    st->snap.v = *v;
    st->snap.v.name = (const char *)raw + RLG_RS_SNAP_HDR;
    st->snap.v.conf = raw + RLG_RS_SNAP_HDR + v->name_len;
    memcpy(st->snap.name, st->snap.v.name, v->name_len);
    st->snap.name[v->name_len] = '\0';
    rlg_index *ix = &st->ix;
    if (v->flags & RLG_SNAP_REPLACE || !st->anchored)
        rlg_index_reset(ix, v->index + 1);
    else if (v->index >= v->trailing)
        rlg_index_drop_prefix(ix, v->index - v->trailing + 1);
    return 0;
}

int rlg_state_apply(rlg_state *st, const rlg_rec *r, uint64_t lsn)
{
    switch (r->type) {
    case RLOG_RS_TYPE_HARD_STATE:
        st->hs = r->u.hs;
        st->has_hs = true;
        st->hs_lsn = lsn;
        return 0;
    case RLOG_RS_TYPE_ENTRIES:
        if (!st->anchored) {
            rlg_index_reset(&st->ix, r->u.batch.first_index);
            st->anchored = true;
        }
        return rlg_index_add(&st->ix, &r->u.batch, lsn);
    case RLOG_RS_TYPE_TRUNCATE:
        if (st->anchored && r->u.trunc < st->ix.first)
            rlg_index_reset(&st->ix, r->u.trunc); /* the entries before were deleted */
        else if (st->anchored)
            rlg_index_truncate(&st->ix, r->u.trunc);
        return 0;
    default:
        st->snap_lsn = lsn;
        return apply_snap(st, r);
    }
}

void rlg_state_anchor(rlg_state *st)
{
    if (st->anchored)
        return;
    rlg_index_reset(&st->ix, snap_index(st) + 1);
    st->anchored = true;
}
