/*
 * The Raft storage workload and its model.
 *
 * Every entry and every snapshot gets a generation number `gen`; an entry's
 * payload starts with its gen and the rest is a function of (seed, gen), so
 * an entry read back names the attempt it came from.
 *
 * The model is the Raft state (hard state, snapshot marker, entries
 * first..last with each entry's term and gen) in three copies:
 *   acked  what was acknowledged durable (a synchronous call returned 0, an
 *          asynchronous append's callback said 0, a clean close returned 0);
 *   cur    acked plus every operation the store accepted since (what the
 *          handle must show now);
 *   pend   the operations not yet acknowledged, in order. An operation that
 *          failed stays in it, marked failed: it may still have reached the
 *          disk, but only right where it was made.
 * Records become durable in log order, so after a crash the store must hold
 * exactly acked + the operations pend[0..k) that did not fail, for some k —
 * possibly followed by one failed operation made at that point, or by the
 * first records of a multi-record append. Nothing else: no lenient default.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/bytes.h"
#include "os/crc32c.h"
#include "rlog/raft_storage.h"
#include "sim/driver.h" /* only this workload's entry point */
#include "sim/harness.h"

#define DIR       "/db/raft"
#define MAX_BATCH 8
#define MAX_ENTRY 2100
#define MAX_SNAP  3000

typedef struct ment {
    uint64_t term, gen;
} ment;

typedef struct msnap {
    bool has;
    uint64_t index, term, conf_index, size, gen;
    uint32_t trailing, crc;
} msnap;

typedef struct mstate {
    rlog_rs_hard_state hs;
    msnap snap;
    uint64_t first, last;
    ment *e; /* indexed by Raft index; e[first..last] hold the entries */
    size_t cap;
} mstate;

typedef enum opkind { OP_APPEND, OP_HS, OP_TRUNC, OP_SNAP } opkind;

typedef struct rop {
    opkind kind;
    bool failed, async, done;
    bool durable;   /* the log reported its records durable (not yet acked) */
    uint64_t lsn;   /* the log's appended position after the call */
    uint64_t index; /* append: first index; truncate: the index */
    uint32_t n;     /* append: entry count */
    ment *e;        /* append: the entries */
    rlog_rs_hard_state hs;
    msnap snap;
} rop;

typedef struct ginfo {
    uint64_t index, term;
} ginfo;

typedef struct wl {
    rlg_sim *s;
    rlog_rs *rs;
    rlog_rs_options opts;
    size_t rec_max;
    mstate acked, cur, scratch, got;
    rop *pend;
    size_t npend, cappend;
    ginfo *gi; /* per entry gen: where it was appended */
    uint64_t gen;
    size_t capgi;
    msnap *puts; /* every snapshot put, in order (a recovery may fall back to any) */
    size_t nputs, capputs;
    uint64_t term_hi;
    bool bump;   /* the next append starts a new term (after a truncation) */
    bool failed; /* the handle failed (an async append failed, EPOISONED) */
    int tail;    /* the last open's rlog_tail_status */
    bool seen;   /* a hard state was observed after a recovery */
    rlog_rs_hard_state seen_hs;
    const rlg_sim_wl *vt;
    uint8_t buf[MAX_SNAP + MAX_ENTRY];
} wl;

/* ---- payloads ---- */

static uint32_t ent_len(const wl *w, uint64_t gen)
{
    uint64_t h = rlg_sim_mix(w->s->opts->seed * 131 + gen);
    unsigned r = (unsigned)(h % 100);
    h >>= 8;
    uint64_t big = w->rec_max / 2 - 8;
    return 8 + (uint32_t)(r < 70 ? h % 40 : r < 95 ? h % 300 : h % big);
}

static void ent_fill(const wl *w, uint64_t gen, uint8_t *p)
{
    uint32_t len = ent_len(w, gen);
    rlg_put64(p, gen);
    rlg_sim_fill(rlg_sim_mix(w->s->opts->seed ^ (gen << 24)) | 1, p + 8, len - 8);
}

/* The gen of an entry read back, or 0 when it is not one we appended. */
static uint64_t ent_gen(wl *w, const rlog_rs_entry *e)
{
    if (e->len < 8)
        return 0;
    uint64_t gen = rlg_get64(e->data);
    if (!gen || gen > w->gen || ent_len(w, gen) != e->len || e->type != gen % 3)
        return 0;
    ent_fill(w, gen, w->buf);
    return memcmp(w->buf, e->data, e->len) ? 0 : gen;
}

static void snap_data(const wl *w, uint64_t gen, uint8_t *p, uint64_t *size, uint32_t *conf_len)
{
    uint64_t h = rlg_sim_mix(w->s->opts->seed * 977 + gen);
    *size = h % MAX_SNAP;
    *conf_len = 1 + (uint32_t)((h >> 20) % 30);
    rlg_sim_fill(rlg_sim_mix(gen ^ (w->s->opts->seed << 8)) | 1, p, *size + *conf_len);
}

/* ---- the model ---- */

static void ms_reserve(mstate *m, uint64_t idx)
{
    m->e = rlg_sim_grow(m->e, &m->cap, idx, sizeof *m->e);
}

static void ms_reset(mstate *m)
{
    memset(&m->hs, 0, sizeof m->hs);
    memset(&m->snap, 0, sizeof m->snap);
    m->first = 1;
    m->last = 0;
}

static void ms_copy(mstate *d, const mstate *src)
{
    d->hs = src->hs;
    d->snap = src->snap;
    d->first = src->first;
    d->last = src->last;
    ms_reserve(d, src->last + 1);
    if (src->last >= src->first)
        memcpy(d->e + src->first, src->e + src->first, (src->last - src->first + 1) * sizeof *d->e);
}

static uint64_t ms_term(const mstate *m, uint64_t i)
{
    if (m->snap.has && i == m->snap.index)
        return m->snap.term;
    return i >= m->first && i <= m->last ? m->e[i].term : 0;
}

/* Applies op; for an append only its first n entries. */
static void ms_apply(mstate *m, const rop *op, uint32_t n)
{
    switch (op->kind) {
    case OP_APPEND:
        ms_reserve(m, op->index + n);
        memcpy(m->e + op->index, op->e, n * sizeof *op->e);
        m->last = op->index + n - 1;
        break;
    case OP_HS:
        m->hs = op->hs;
        break;
    case OP_TRUNC:
        if (op->index < m->first)
            m->first = op->index;
        m->last = op->index - 1;
        break;
    case OP_SNAP: {
        uint64_t i = op->snap.index, tr = op->snap.trailing;
        if (tr == 0 || i < m->first || i > m->last || m->e[i].term != op->snap.term) {
            m->first = i + 1;
            m->last = i;
        } else if (i >= tr && i - tr + 1 > m->first) {
            m->first = i - tr + 1;
        }
        m->snap = op->snap;
        break;
    }
    }
}

static bool snap_eq(const msnap *a, const msnap *b)
{
    if (a->has != b->has)
        return false;
    return !a->has ||
           (a->index == b->index && a->term == b->term && a->conf_index == b->conf_index &&
            a->size == b->size && a->crc == b->crc && a->trailing == b->trailing);
}

static bool ms_equal(const mstate *a, const mstate *b)
{
    if (a->hs.term != b->hs.term || a->hs.vote != b->hs.vote || a->hs.commit != b->hs.commit ||
        a->first != b->first || a->last != b->last || !snap_eq(&a->snap, &b->snap))
        return false;
    for (uint64_t i = a->first; i <= a->last; i++)
        if (a->e[i].term != b->e[i].term || a->e[i].gen != b->e[i].gen)
            return false;
    return true;
}

/* Describes how `got` differs from `m` (first difference). */
static void ms_diff(const mstate *got, const mstate *m, char *buf, size_t cap)
{
    if (got->hs.term != m->hs.term || got->hs.vote != m->hs.vote || got->hs.commit != m->hs.commit)
        snprintf(buf, cap,
                 "hard state term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
                 ", expected %" PRIu64 "/%" PRIu64 "/%" PRIu64,
                 got->hs.term, got->hs.vote, got->hs.commit, m->hs.term, m->hs.vote, m->hs.commit);
    else if (!snap_eq(&got->snap, &m->snap))
        snprintf(buf, cap,
                 "snapshot %d index %" PRIu64 " term %" PRIu64 " trailing %" PRIu32
                 ", expected %d index %" PRIu64 " term %" PRIu64 " trailing %" PRIu32,
                 got->snap.has, got->snap.index, got->snap.term, got->snap.trailing, m->snap.has,
                 m->snap.index, m->snap.term, m->snap.trailing);
    else if (got->first != m->first || got->last != m->last)
        snprintf(buf, cap, "entries %" PRIu64 "..%" PRIu64 ", expected %" PRIu64 "..%" PRIu64,
                 got->first, got->last, m->first, m->last);
    else
        for (uint64_t i = m->first; i <= m->last; i++)
            if (got->e[i].term != m->e[i].term || got->e[i].gen != m->e[i].gen) {
                snprintf(buf, cap,
                         "entry %" PRIu64 " term %" PRIu64 " gen %" PRIu64
                         ", expected term %" PRIu64 " gen %" PRIu64,
                         i, got->e[i].term, got->e[i].gen, m->e[i].term, m->e[i].gen);
                return;
            }
}

/* ---- pending operations ---- */

static rop *push_op(wl *w, opkind kind)
{
    w->pend = rlg_sim_grow(w->pend, &w->cappend, w->npend, sizeof *w->pend);
    rop *op = &w->pend[w->npend++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

/* Acknowledges pend[0..j]: records are durable in order. */
static void ack_through(wl *w, size_t j)
{
    for (size_t k = 0; k <= j; k++) {
        const rop *op = &w->pend[k];
        uint64_t end = w->acked.last + 1;
        if (!op->failed && ((op->kind == OP_APPEND && op->index != end) ||
                            (op->kind == OP_TRUNC && op->index > end)))
            rlg_sim_fail(w->s,
                         "%s at %" PRIu64 " acknowledged, but the durable log ends at %" PRIu64
                         ": it was accepted after an earlier append that the log rolled back",
                         op->kind == OP_APPEND ? "append" : "truncation", op->index, end - 1);
        if (!w->pend[k].failed) {
            ms_apply(&w->acked, &w->pend[k], w->pend[k].n);
            w->s->res->acked++;
        }
        free(w->pend[k].e);
    }
    memmove(w->pend, w->pend + j + 1, (w->npend - j - 1) * sizeof *w->pend);
    w->npend -= j + 1;
}

static void clear_pend(wl *w)
{
    for (size_t k = 0; k < w->npend; k++)
        free(w->pend[k].e);
    w->npend = 0;
}

static bool log_poisoned(const wl *w)
{
    if (!w->rs || !rlog_rs_log(w->rs))
        return false;
    rlog_positions p;
    rlog_positions_get(rlog_rs_log(w->rs), &p);
    return p.poisoned != 0;
}

static uint64_t durable_lsn(wl *w)
{
    rlog_positions p;
    rlog_positions_get(rlog_rs_log(w->rs), &p);
    return p.durable;
}

static uint64_t appended_lsn(wl *w)
{
    rlog_positions p;
    rlog_positions_get(rlog_rs_log(w->rs), &p);
    return p.appended;
}

/* An acknowledgement of op: its records must be durable, by a sync that
 * succeeded (nothing acknowledged covers a failed fsync). */
static void check_ack(wl *w, const rop *op, const char *what)
{
    uint64_t d = durable_lsn(w); /* advanced only by syncs that succeeded */
    if (d < op->lsn)
        rlg_sim_fail(w->s, "%s acknowledged at LSN %" PRIu64 " but the log is durable to %" PRIu64,
                     what, op->lsn, d);
}

static bool expected_error(wl *w, int rv)
{
    return rlg_sim_expected_error(w->s, rv, "a Raft storage call", &w->failed);
}

/* The store's in-memory state must be the model's cur. */
static void check_handle(wl *w, const char *after)
{
    rlog_rs_stats st;
    rlog_rs_stats_get(w->rs, &st);
    const mstate *m = &w->cur;
    if (st.hs.term != m->hs.term || st.hs.vote != m->hs.vote || st.hs.commit != m->hs.commit ||
        st.first_index != m->first || st.last_index != m->last ||
        st.has_snapshot != (int)m->snap.has ||
        (m->snap.has && (st.snap_index != m->snap.index || st.snap_term != m->snap.term)))
        rlg_sim_fail(w->s,
                     "after %s the handle shows term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
                     " entries %" PRIu64 "..%" PRIu64 " snapshot %" PRIu64
                     "; the model term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
                     " entries %" PRIu64 "..%" PRIu64 " snapshot %" PRIu64,
                     after, st.hs.term, st.hs.vote, st.hs.commit, st.first_index, st.last_index,
                     st.snap_index, m->hs.term, m->hs.vote, m->hs.commit, m->first, m->last,
                     m->snap.index);
}

/* A synchronous call that returns 0 made everything before it durable:
 * the callbacks of the asynchronous appends queued before it have fired. */
static void check_order(wl *w, const char *what)
{
    for (size_t k = 0; k + 1 < w->npend; k++)
        if (w->pend[k].async && !w->pend[k].done)
            rlg_sim_fail(w->s,
                         "%s returned before the callback of entries %" PRIu64 "..%" PRIu64
                         " appended before it",
                         what, w->pend[k].index, w->pend[k].index + w->pend[k].n - 1);
}

/* The outcome of a call that made the last pending operation. */
static void settle(wl *w, int rv, const char *what)
{
    rop *op = &w->pend[w->npend - 1];
    rlg_sim_trace(w->s, "%s -> %s", what, rlog_errname(rv));
    if (rv == 0) {
        op->lsn = appended_lsn(w);
        ms_apply(&w->cur, op, op->n);
        if (!op->async) {
            check_ack(w, op, what);
            check_order(w, what);
            ack_through(w, w->npend - 1);
        }
    } else {
        op->failed = true;
        if (!expected_error(w, rv))
            rlg_sim_fail(w->s, "%s failed with %s: %s", what, rlog_errname(rv),
                         rlog_rs_errmsg(w->rs));
    }
    w->s->res->raft_ops++;
    if (!w->s->stop && !w->failed)
        check_handle(w, what);
}

/* ---- operations ---- */

static void async_cb(void *data, int status, uint64_t first, uint64_t last)
{
    wl *w = data;
    rlg_sim_trace(w->s, "  async done %" PRIu64 "..%" PRIu64 " -> %s", first, last,
                  rlog_errname(status));
    size_t j = 0;
    while (j < w->npend && !(w->pend[j].async && w->pend[j].index == first))
        j++;
    if (j == w->npend || w->pend[j].index + w->pend[j].n - 1 != last) {
        rlg_sim_fail(w->s, "append callback for entries %" PRIu64 "..%" PRIu64 " never queued",
                     first, last);
        return;
    }
    for (size_t k = 0; k < j; k++)
        if (w->pend[k].async && !w->pend[k].done)
            rlg_sim_fail(w->s, "append callback for %" PRIu64 " before the one for %" PRIu64, first,
                         w->pend[k].index);
    w->pend[j].done = true;
    if (status == 0) {
        check_ack(w, &w->pend[j], "async append");
        ack_through(w, j);
    } else {
        /* rolled back (the log zeroes and syncs a failed write): never
         * acknowledged by a later call; poisoned: unknown, still in flight */
        w->pend[j].failed = status == RLOG_EIO || status == RLOG_ENOSPC;
        w->failed = true;
        if (status != RLOG_EIO && status != RLOG_ENOSPC && status != RLOG_EPOISONED &&
            status != RLOG_ECLOSED)
            rlg_sim_fail(w->s, "async append failed with %s", rlog_errname(status));
    }
}

static uint64_t next_term(wl *w)
{
    uint64_t t = ms_term(&w->cur, w->cur.last);
    if (w->cur.hs.term > t)
        t = w->cur.hs.term;
    if (t == 0)
        t = 1;
    if (w->bump) {
        t = w->term_hi + 1;
        w->bump = false;
    } else if (rlog_sim_rng_chance(&w->s->rng, 50000)) {
        t++;
    }
    return t;
}

static void new_gen(wl *w, uint64_t index, uint64_t term)
{
    uint64_t gen = ++w->gen;
    w->gi = rlg_sim_grow(w->gi, &w->capgi, gen, sizeof *w->gi);
    w->gi[gen] = (ginfo){index, term};
}

static void op_append(wl *w, bool async)
{
    static _Thread_local uint8_t store[MAX_BATCH * MAX_ENTRY]; /* one per seed-loop thread */
    rlog_rs_entry ents[MAX_BATCH];
    uint32_t n = 1 + (uint32_t)rlog_sim_rng_below(&w->s->rng, MAX_BATCH);
    uint64_t first = w->cur.last + 1, t = next_term(w);
    rop *op = push_op(w, OP_APPEND);
    op->async = async;
    op->index = first;
    op->n = n;
    op->e = malloc(n * sizeof *op->e);
    if (!op->e)
        rlg_sim_nomem();
    size_t off = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (k && rlog_sim_rng_chance(&w->s->rng, 30000))
            t++;
        new_gen(w, first + k, t);
        uint32_t len = ent_len(w, w->gen);
        ent_fill(w, w->gen, store + off);
        ents[k] = (rlog_rs_entry){t, (uint16_t)(w->gen % 3), len, store + off, NULL};
        op->e[k] = (ment){t, w->gen};
        off += len;
    }
    if (t > w->term_hi)
        w->term_hi = t;
    int rv = async ? rlog_rs_append_async(w->rs, first, ents, n, async_cb, w)
                   : rlog_rs_append(w->rs, first, ents, n);
    char what[96];
    snprintf(what, sizeof what, "append%s %" PRIu64 "..%" PRIu64 " term %" PRIu64,
             async ? "_async" : "", first, first + n - 1, t);
    settle(w, rv, what);
}

static void op_hard_state(wl *w)
{
    rlog_sim_rng *r = &w->s->rng;
    rlog_rs_hard_state hs = w->cur.hs;
    bool new_term = hs.term == 0 || rlog_sim_rng_chance(r, 300000);
    if (new_term) {
        hs.term += 1 + rlog_sim_rng_below(r, 2);
        hs.vote = 0;
    }
    if (hs.vote == 0 && rlog_sim_rng_chance(r, 500000))
        hs.vote = 1 + rlog_sim_rng_below(r, 5);
    uint64_t top = w->acked.last < w->cur.last ? w->acked.last : w->cur.last;
    if (top > hs.commit && rlog_sim_rng_chance(r, 600000))
        hs.commit += 1 + rlog_sim_rng_below(r, top - hs.commit);
    if (hs.term > w->term_hi)
        w->term_hi = hs.term;
    rop *op = push_op(w, OP_HS);
    op->hs = hs;
    int rv;
    const char *how = "set_hard_state";
    if (new_term && hs.vote == 0 && hs.commit == w->cur.hs.commit) {
        how = "set_term";
        rv = rlog_rs_set_term(w->rs, hs.term);
    } else if (!new_term && hs.commit == w->cur.hs.commit && w->cur.hs.vote == 0 && hs.vote) {
        how = "set_vote";
        rv = rlog_rs_set_vote(w->rs, hs.vote);
    } else {
        rv = rlog_rs_set_hard_state(w->rs, &hs);
    }
    char what[128];
    snprintf(what, sizeof what, "%s term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64, how,
             hs.term, hs.vote, hs.commit);
    settle(w, rv, what);
}

static void op_truncate(wl *w)
{
    uint64_t lo = w->cur.hs.commit;
    if (w->cur.snap.has && w->cur.snap.index > lo)
        lo = w->cur.snap.index;
    lo++;
    if (lo > w->cur.last + 1)
        return;
    uint64_t i = lo + rlog_sim_rng_below(&w->s->rng, w->cur.last + 2 - lo);
    rop *op = push_op(w, OP_TRUNC);
    op->index = i;
    int rv = rlog_rs_truncate(w->rs, i);
    char what[64];
    snprintf(what, sizeof what, "truncate %" PRIu64, i);
    settle(w, rv, what);
    if (rv == 0)
        w->bump = true; /* a new leader's entries follow */
}

static void op_snapshot(wl *w, bool install)
{
    rlog_sim_rng *r = &w->s->rng;
    uint64_t si = w->cur.snap.has ? w->cur.snap.index : 0, index, term;
    uint32_t trailing = 0;
    if (install) {
        index = (w->cur.last > si ? w->cur.last : si) + 1 + rlog_sim_rng_below(r, 30);
        term = next_term(w);
    } else {
        uint64_t lo = si + 1 > w->cur.first ? si + 1 : w->cur.first;
        uint64_t hi = w->acked.last < w->cur.last ? w->acked.last : w->cur.last;
        if (lo > hi)
            return;
        index = lo + rlog_sim_rng_below(r, hi - lo + 1);
        term = ms_term(&w->cur, index) + rlog_sim_rng_chance(r, 100000);
        trailing = rlog_sim_rng_chance(r, 150000) ? 0 : 1 + (uint32_t)rlog_sim_rng_below(r, 40);
    }
    if (term > w->term_hi)
        w->term_hi = term;
    uint64_t size;
    uint32_t conf_len;
    new_gen(w, 0, 0);
    uint64_t gen = w->gen;
    snap_data(w, gen, w->buf, &size, &conf_len);
    rop *op = push_op(w, OP_SNAP);
    op->snap = (msnap){true, index, term,     rlog_sim_rng_below(r, index + 1),
                       size, gen,   trailing, rlg_crc32c(w->buf, size)};
    w->puts = rlg_sim_grow(w->puts, &w->capputs, w->nputs, sizeof *w->puts);
    w->puts[w->nputs++] = op->snap;
    rlog_rs_buf bufs[2] = {{w->buf, size / 3}, {w->buf + size / 3, size - size / 3}};
    rlog_rs_snapshot_desc d = {index, term,    op->snap.conf_index, w->buf + size, conf_len, bufs,
                               2,     trailing};
    int rv = rlog_rs_snapshot_put(w->rs, &d);
    char what[128];
    snprintf(what, sizeof what, "snapshot_put index %" PRIu64 " term %" PRIu64 " trailing %" PRIu32,
             index, term, trailing);
    settle(w, rv, what);
}

static void op_progress(wl *w, bool sync)
{
    int more = 0;
    int rv = sync ? rlog_rs_sync(w->rs) : rlog_rs_step(w->rs, &more);
    rlg_sim_trace(w->s, "%s -> %s", sync ? "sync" : "step", rlog_errname(rv));
    w->s->res->raft_ops++;
    if (rv && !expected_error(w, rv))
        rlg_sim_fail(w->s, "%s failed with %s", sync ? "sync" : "step", rlog_errname(rv));
    for (size_t k = 0; sync && rv == 0 && k < w->npend && !w->s->stop; k++)
        if (w->pend[k].async && !w->pend[k].done)
            rlg_sim_fail(
                w->s, "sync returned 0 but entries %" PRIu64 "..%" PRIu64 " were not acknowledged",
                w->pend[k].index, w->pend[k].index + w->pend[k].n - 1);
}

/* Input that breaks a rule: refused with its error, nothing changed. */
static void op_bad_input(wl *w)
{
    const mstate *m = &w->cur;
    rlog_rs_hard_state hs = m->hs;
    uint8_t pl[8] = {0};
    rlog_rs_entry e = {m->last ? ms_term(m, m->last) : 1, 0, 8, pl, NULL};
    int rv, want;
    const char *what;
    switch (rlog_sim_rng_below(&w->s->rng, 5)) {
    case 0:
        if (!hs.term)
            return;
        hs.term--;
        what = "hard state with a lower term";
        want = RLOG_ETERM;
        rv = rlog_rs_set_hard_state(w->rs, &hs);
        break;
    case 1:
        if (!hs.vote)
            return;
        hs.vote++;
        what = "a second vote in a term";
        want = RLOG_EVOTE;
        rv = rlog_rs_set_hard_state(w->rs, &hs);
        break;
    case 2:
        if (!hs.commit)
            return;
        what = "truncation at the commit index";
        want = RLOG_ESTALE;
        rv = rlog_rs_truncate(w->rs, hs.commit);
        break;
    case 3:
        what = "a non-contiguous append";
        want = RLOG_ENONCONTIG;
        rv = rlog_rs_append(w->rs, m->last + 2, &e, 1);
        break;
    default: {
        if (!m->snap.has)
            return;
        rlog_rs_snapshot_desc d = {m->snap.index, m->snap.term, 0, pl, 1, NULL, 0, 1};
        what = "a stale snapshot";
        want = RLOG_ESTALE;
        rv = rlog_rs_snapshot_put(w->rs, &d);
        break;
    }
    }
    rlg_sim_trace(w->s, "%s -> %s", what, rlog_errname(rv));
    w->s->res->raft_ops++;
    if (rv != want && rv != RLOG_EPOISONED)
        rlg_sim_fail(w->s, "%s returned %s, not %s", what, rlog_errname(rv), rlog_errname(want));
    else
        check_handle(w, what);
}

/* ---- reads, checked against the model ---- */

static bool check_entry(wl *w, uint64_t i, const rlog_rs_entry *e, const char *how)
{
    uint64_t gen = ent_gen(w, e);
    const ment *m = &w->cur.e[i];
    if (e->term == m->term && gen == m->gen)
        return true;
    rlg_sim_fail(w->s,
                 "%s: entry %" PRIu64 " has term %" PRIu64 " gen %" PRIu64 " (%" PRIu32
                 " bytes), expected term %" PRIu64 " gen %" PRIu64,
                 how, i, e->term, gen, e->len, m->term, m->gen);
    return false;
}

/* Checks a read of lo..hi (max bytes `max`) that returned `out`. */
static void check_read(wl *w, uint64_t lo, uint64_t hi, size_t max, const rlog_rs_entries *out)
{
    uint64_t top = hi < w->cur.last ? hi : w->cur.last, want = top - lo + 1;
    if (out->first != lo || out->n == 0 || out->n > want || (max == 0 && out->n != want)) {
        rlg_sim_fail(w->s,
                     "entries_read %" PRIu64 "..%" PRIu64
                     " max %zu returned %zu entries from %" PRIu64,
                     lo, hi, max, out->n, out->first);
        return;
    }
    size_t bytes = 0;
    for (size_t k = 0; k < out->n; k++) {
        if (!check_entry(w, lo + k, &out->v[k], "entries_read"))
            return;
        bytes += out->v[k].len;
    }
    if (max && out->n > 1 && bytes > max)
        rlg_sim_fail(w->s, "entries_read returned %zu bytes over the limit %zu", bytes, max);
    else if (max && out->n < want && bytes + ent_len(w, w->cur.e[lo + out->n].gen) <= max)
        rlg_sim_fail(w->s, "entries_read stopped at %zu bytes, under the limit %zu", bytes, max);
}

static void op_read(wl *w)
{
    rlog_sim_rng *r = &w->s->rng;
    if (w->cur.first > w->cur.last)
        return;
    uint64_t lo = w->cur.first + rlog_sim_rng_below(r, w->cur.last - w->cur.first + 1);
    uint64_t hi = lo + rlog_sim_rng_below(r, 24);
    size_t max = rlog_sim_rng_chance(r, 500000) ? 0 : 64 + (size_t)rlog_sim_rng_below(r, 4000);
    rlog_rs_entries out;
    int rv = rlog_rs_entries_read(w->rs, lo, hi, max, &out);
    rlg_sim_trace(w->s, "entries_read %" PRIu64 "..%" PRIu64 " max %zu -> %s n=%zu", lo, hi, max,
                  rlog_errname(rv), rv ? (size_t)0 : out.n);
    w->s->res->raft_ops++;
    w->s->res->reads++;
    if (rv == 0)
        check_read(w, lo, hi, max, &out);
    else if (rv == RLOG_ECORRUPT && w->failed)
        ; /* a failed handle's index still holds the entries the log rolled back */
    else if (!expected_error(w, rv))
        rlg_sim_fail(w->s, "entries_read %" PRIu64 "..%" PRIu64 " failed with %s: %s", lo, hi,
                     rlog_errname(rv), rlog_rs_errmsg(w->rs));
    rlog_rs_entries_free(&out);
}

static void op_term(wl *w)
{
    uint64_t lo = w->cur.first > 1 ? w->cur.first - 1 : 0;
    uint64_t i = lo + rlog_sim_rng_below(&w->s->rng, w->cur.last + 3 - lo);
    uint64_t t = rlog_rs_term(w->rs, i), want = ms_term(&w->cur, i);
    w->s->res->raft_ops++;
    if (t != want)
        rlg_sim_fail(w->s, "term(%" PRIu64 ") = %" PRIu64 ", expected %" PRIu64, i, t, want);
}

/* A snapshot read back must be the one the model holds, bytes and all. */
static void check_snapshot(wl *w, const rlog_rs_snapshot *sn, const msnap *m)
{
    uint64_t size;
    uint32_t conf_len;
    snap_data(w, m->gen, w->buf, &size, &conf_len);
    if (sn->index != m->index || sn->term != m->term || sn->conf_index != m->conf_index ||
        sn->trailing != m->trailing || sn->size != size || sn->crc != m->crc ||
        memcmp(sn->data, w->buf, size) || sn->conf_len != conf_len ||
        memcmp(sn->conf, w->buf + size, conf_len))
        rlg_sim_fail(w->s,
                     "snapshot_get: index %" PRIu64 " term %" PRIu64 " size %" PRIu64
                     " crc %08" PRIx32 " is not the snapshot stored at index %" PRIu64
                     " term %" PRIu64 " size %" PRIu64 " crc %08" PRIx32,
                     sn->index, sn->term, sn->size, sn->crc, m->index, m->term, size, m->crc);
}

/* Reads the current snapshot back; false when the seed stops. */
static bool snap_get(wl *w, const msnap *m)
{
    rlog_rs_snapshot sn;
    int rv = rlog_rs_snapshot_get(w->rs, &sn);
    rlg_sim_trace(w->s, "snapshot_get -> %s", rlog_errname(rv));
    w->s->res->raft_ops++;
    if (rv == 0 && (w->s->opts->sabotage & RLOG_SIM_SABOTAGE_SNAP_FOREIGN))
        sn.crc ^= 1; /* (tests only) a snapshot never written */
    if (!m->has) {
        if (rv != RLOG_ENOTFOUND)
            rlg_sim_fail(w->s, "snapshot_get without a snapshot returned %s", rlog_errname(rv));
    } else if (rv == 0 && !m->gen && w->s->destructive) {
        /* a snapshot recovery could not tie to any put (recorded as unknown,
         * m->gen 0): after a destructive fault its bytes cannot be judged,
         * only that it is the one recovery reported (the same rule at every
         * read); without one it is a snapshot never written, and fails */
        if (sn.index != m->index || sn.term != m->term || sn.crc != m->crc)
            rlg_sim_fail(w->s,
                         "snapshot_get: index %" PRIu64 " term %" PRIu64 " crc %08" PRIx32
                         " is not the snapshot recovered (index %" PRIu64 " term %" PRIu64
                         " crc %08" PRIx32 ")",
                         sn.index, sn.term, sn.crc, m->index, m->term, m->crc);
    } else if (rv == 0) {
        check_snapshot(w, &sn, m);
    } else if ((rv == RLOG_ECORRUPT || rv == RLOG_EIO) &&
               (rlg_sim_note_faults(w->s), w->s->destructive)) {
        w->s->res->corruption_detected++; /* the damage is reported: loud */
        w->s->stop = true;
    } else if (rv != RLOG_EIO && rv != RLOG_ENOSPC) {
        rlg_sim_fail(w->s, "snapshot_get failed with %s: %s", rlog_errname(rv),
                     rlog_rs_errmsg(w->rs));
    }
    rlog_rs_snapshot_release(&sn);
    return !w->s->stop;
}

/* ---- recovery and its oracles ---- */

/* The recovered store as a model state (entry gens 0 when not ours). */
static int read_state(wl *w, mstate *g)
{
    rlog_rs_stats st;
    rlog_rs_stats_get(w->rs, &st);
    g->hs = st.hs;
    g->first = st.first_index;
    g->last = st.last_index;
    memset(&g->snap, 0, sizeof g->snap);
    if (st.has_snapshot)
        g->snap = (msnap){true, st.snap_index,    st.snap_term, st.snap_conf_index, st.snap_size,
                          0,    st.snap_trailing, st.snap_crc};
    if (g->first > g->last)
        return 0;
    rlog_rs_entries out;
    int rv = rlog_rs_entries_read(w->rs, g->first, g->last, 0, &out);
    if (rv)
        return rv;
    ms_reserve(g, g->last + 1);
    for (size_t k = 0; k < out.n; k++)
        g->e[g->first + k] = (ment){out.v[k].term, ent_gen(w, &out.v[k])};
    if (out.n != g->last - g->first + 1)
        g->last = g->first + out.n - 1; /* shows as a mismatch */
    rlog_rs_entries_free(&out);
    return 0;
}

/* The end of the records of a batch split starting at entry `start`
 * (the store splits batches as rlog_rs_append documents). */
static uint32_t next_cut(const wl *w, const rop *op, uint32_t start)
{
    size_t size = RLOG_RS_BATCH_OVERHEAD;
    uint32_t k = start;
    while (k < op->n && size + RLOG_RS_ENTRY_OVERHEAD + ent_len(w, op->e[k].gen) <= w->rec_max)
        size += RLOG_RS_ENTRY_OVERHEAD + ent_len(w, op->e[k++].gen);
    return k > start ? k : start + 1;
}

/* Whether g is acked + the live operations of pend[0..j) + optionally a
 * tail (a failed operation made there, or the first records of an append). */
static bool matches(wl *w, mstate *g)
{
    mstate *sc = &w->scratch;
    size_t need = 0; /* operations the log said were durable must be there */
    for (size_t j = 0; j < w->npend; j++)
        if (w->pend[j].durable)
            need = j + 1;
    ms_copy(sc, &w->acked);
    bool ok = need == 0 && ms_equal(g, sc);
    for (size_t j = 0; j < w->npend && !ok; j++) {
        const rop *op = &w->pend[j];
        mstate save = *sc;
        for (uint32_t c = 0;
             !ok && j >= need && op->kind == OP_APPEND && (c = next_cut(w, op, c)) < op->n;) {
            ms_apply(sc, op, c);
            ok = ms_equal(g, sc);
            if (!ok)
                sc->last = save.last;
        }
        if (ok)
            break;
        ms_apply(sc, op, op->n);
        ok = (op->failed ? j >= need : j + 1 >= need) && ms_equal(g, sc);
        if (!ok && op->failed) {
            sc->hs = save.hs;
            sc->snap = save.snap;
            sc->first = save.first;
            sc->last = save.last;
        }
    }
    if (ok)
        g->snap.gen = sc->snap.gen;
    return ok;
}

static size_t need_durable(const wl *w)
{
    size_t n = 0;
    for (size_t j = 0; j < w->npend; j++)
        n += w->pend[j].durable;
    return n;
}

/* Explains a recovered state that matches nothing. */
static void report_mismatch(wl *w, const mstate *g)
{
    char a[256] = "", b[256] = "";
    const rlog_rs_hard_state *h = &w->acked.hs;
    if (g->hs.term < h->term)
        rlg_sim_fail(w->s, "hard-state term went back from %" PRIu64 " to %" PRIu64, h->term,
                     g->hs.term);
    else if (g->hs.term == h->term && h->vote && g->hs.vote != h->vote)
        rlg_sim_fail(w->s, "vote changed within term %" PRIu64 ": %" PRIu64 " became %" PRIu64,
                     h->term, h->vote, g->hs.vote);
    ms_diff(g, &w->acked, a, sizeof a);
    ms_diff(g, &w->cur, b, sizeof b);
    rlg_sim_fail(w->s,
                 "recovered Raft state is neither the acknowledged one nor any prefix of the %zu "
                 "operations in flight (%zu reported durable): %s (vs acknowledged); %s (vs all "
                 "applied)",
                 w->npend, need_durable(w), a, b);
}

/* With a destructive fault the state may be older than acknowledged, but
 * every entry must still be one appended at its index with its term. */
static void check_attempts(wl *w, const mstate *g)
{
    for (uint64_t i = g->first; i <= g->last && !w->s->stop; i++) {
        uint64_t gen = g->e[i].gen;
        if (!gen || w->gi[gen].index != i || w->gi[gen].term != g->e[i].term)
            rlg_sim_fail(w->s,
                         "after recovery entry %" PRIu64 " (term %" PRIu64
                         ") holds bytes never appended there",
                         i, g->e[i].term);
    }
}

/* The attempt a recovered snapshot is: the acknowledged one, one in flight,
 * or any earlier put (a destructive fault may lose a newer snapshot's
 * marker; the store then falls back to an older snapshot it still keeps).
 * 0 when it is none of them: a snapshot never written. */
static uint64_t snap_gen_of(wl *w, const msnap *m)
{
    if (w->acked.snap.has && w->acked.snap.index == m->index && w->acked.snap.crc == m->crc)
        return w->acked.snap.gen;
    for (size_t j = 0; j < w->npend; j++)
        if (w->pend[j].kind == OP_SNAP && w->pend[j].snap.index == m->index &&
            w->pend[j].snap.crc == m->crc)
            return w->pend[j].snap.gen;
    for (size_t j = w->nputs; j-- > 0;) {
        const msnap *p = &w->puts[j];
        if (p->index == m->index && p->term == m->term && p->crc == m->crc && p->size == m->size &&
            p->trailing == m->trailing && p->conf_index == m->conf_index)
            return p->gen;
    }
    return 0;
}

/* Term never goes back; within a term the vote never changes once set. */
static void check_hs_history(wl *w, const rlog_rs_hard_state *hs)
{
    const rlog_rs_hard_state *p = &w->seen_hs;
    if (w->seen && !w->s->destructive &&
        (hs->term < p->term || (hs->term == p->term && p->vote && hs->vote != p->vote)))
        rlg_sim_fail(w->s,
                     "hard state went from term %" PRIu64 " vote %" PRIu64 " to term %" PRIu64
                     " vote %" PRIu64,
                     p->term, p->vote, hs->term, hs->vote);
    w->seen = true;
    w->seen_hs = *hs;
}

static void rs_drop(void *vw)
{
    wl *w = vw;
    if (w->rs) {
        rlog_log *l = rlog_rs_log(w->rs);
        uint64_t d = l ? durable_lsn(w) : 0;
        for (size_t j = 0; j < w->npend; j++)
            if (!w->pend[j].failed && w->pend[j].lsn && w->pend[j].lsn <= d)
                w->pend[j].durable = true;
        rlog_rs_abandon(w->rs);
        w->rs = NULL;
    }
    w->failed = false;
}

/* Traces every record of the log, as `rlog dump` would show it (to
 * explain a replay that failed). Read-only, faults suspended. */
static void trace_records(wl *w)
{
    rlog_options o = w->opts.log;
    o.flags = RLOG_OPEN_READONLY;
    rlog_log *l;
    rlog_iter *it;
    if (rlog_open(DIR, &o, &l, NULL))
        return;
    if (rlog_iter_open(l, 1, 0, &it) == 0) {
        rlog_record rec;
        char line[256];
        while (rlog_iter_next(it, &rec) == 0) {
            rlog_rs_format_record(rec.type, rec.data, rec.len, line, sizeof line);
            rlg_sim_trace(w->s, "  record LSN %" PRIu64 ": %s", rec.lsn, line);
        }
        rlog_iter_close(it);
    }
    rlog_close(l);
}

static int rs_open(void *vw, char *msg, size_t cap)
{
    wl *w = vw;
    rlog_rs_open_report rep;
    int rv = rlog_rs_open(DIR, &w->opts, &w->rs, &rep);
    snprintf(msg, cap, "%s", rep.message);
    w->tail = rep.log.status;
    if (rv == RLOG_ECORRUPT && rep.corrupt_lsn) { /* done traced or not: same run */
        rlog_simfs_enable_faults(w->s->vfs, 0);
        trace_records(w);
        rlog_simfs_enable_faults(w->s->vfs, 1);
    }
    return rv;
}

/* Recovering twice gives the same state, and the second time a clean log. */
static void check_idempotent(wl *w)
{
    rlog_simfs_crash(w->s->vfs);
    rs_drop(w);
    char msg[600];
    int rv = rs_open(w, msg, sizeof msg);
    if (rv) {
        rlg_sim_fail(w->s, "second recovery failed with %s: %s", rlog_errname(rv), msg);
        return;
    }
    rv = read_state(w, &w->scratch);
    if (rv || !ms_equal(&w->scratch, &w->got) || w->tail != RLOG_TAIL_CLEAN) {
        char d[256] = "";
        ms_diff(&w->scratch, &w->got, d, sizeof d);
        rlg_sim_fail(w->s, "recovery is not idempotent (%s, tail %d): %s: %s", rlog_errname(rv),
                     w->tail, d, msg);
    }
    rlg_sim_trace(w->s, "recovered twice: same state, entries %" PRIu64 "..%" PRIu64, w->got.first,
                  w->got.last);
}

static void rs_recovered(void *vw)
{
    wl *w = vw;
    rlg_sim *s = w->s;
    rlg_sim_note_faults(s);
    if (w->tail == RLOG_TAIL_TORN)
        s->res->torn_cut++;
    int rv = read_state(w, &w->got);
    rlg_sim_note_faults(s);
    if (rv && s->destructive && (rv == RLOG_ECORRUPT || rv == RLOG_EIO)) {
        s->res->corruption_detected++; /* damage found on read: loud */
        s->stop = true;
        return;
    }
    if (rv) {
        rlg_sim_fail(s, "reading the recovered entries failed with %s: %s", rlog_errname(rv),
                     rlog_rs_errmsg(w->rs));
        return;
    }
    bool ok = matches(w, &w->got);
    if (!ok && !s->destructive)
        report_mismatch(w, &w->got);
    else if (!ok)
        check_attempts(w, &w->got);
    if (!ok)
        w->got.snap.gen = snap_gen_of(w, &w->got.snap);
    check_hs_history(w, &w->got.hs);
    if (s->stop)
        return;
    rlg_sim_trace(s,
                  "recovered: term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64 " entries %" PRIu64
                  "..%" PRIu64 " snapshot %" PRIu64 " (%zu in flight)",
                  w->got.hs.term, w->got.hs.vote, w->got.hs.commit, w->got.first, w->got.last,
                  w->got.snap.index, w->npend);
    ms_copy(&w->acked, &w->got);
    ms_copy(&w->cur, &w->got);
    clear_pend(w);
    w->bump = false;
    if (w->got.snap.has && !snap_get(w, &w->got.snap))
        return;
    if (!s->destructive && rlog_sim_rng_chance(&s->rng, 250000))
        check_idempotent(w);
}

static bool rs_poisoned(void *vw)
{
    return log_poisoned(vw);
}

static bool rs_failed(void *vw)
{
    wl *w = vw;
    return w->rs && (w->failed || log_poisoned(w));
}

static void clean_restart(wl *w)
{
    bool failed = w->failed;
    int rv = rlog_rs_close(w->rs);
    w->rs = NULL;
    w->failed = false;
    rlg_sim_trace(w->s, "close -> %s", rlog_errname(rv));
    if (rv == 0 && !failed && w->npend)
        ack_through(w, w->npend - 1);
    else if (rv && !expected_error(w, rv))
        rlg_sim_fail(w->s, "close failed with %s", rlog_errname(rv));
    w->failed = false;
    if (!w->s->stop)
        rlg_sim_reopen(w->s, w->vt);
}

static void op_append_sync(wl *w)
{
    op_append(w, false);
}

static void op_append_async(wl *w)
{
    op_append(w, true);
}

static void op_step(wl *w)
{
    op_progress(w, false);
}

static void op_sync(wl *w)
{
    op_progress(w, true);
}

static void op_snapshot_trailing(wl *w)
{
    op_snapshot(w, false);
}

static void op_install(wl *w)
{
    op_snapshot(w, true);
}

static void op_snap_get(wl *w)
{
    snap_get(w, &w->cur.snap);
}

/* The operations and their weights (per mille). */
static const struct {
    unsigned weight;
    void (*fn)(wl *w);
} rs_ops[] = {
    {220, op_append_sync},
    {180, op_append_async},
    {70, op_step},
    {40, op_sync},
    {90, op_hard_state},
    {50, op_truncate},
    {45, op_snapshot_trailing},
    {15, op_install},
    {120, op_read},
    {70, op_term},
    {30, op_snap_get},
    {45, op_bad_input},
    {25, clean_restart},
};

static void rs_op(void *vw)
{
    unsigned r = (unsigned)rlog_sim_rng_below(&((wl *)vw)->s->rng, 1000);
    size_t k = 0;
    while (k + 1 < sizeof rs_ops / sizeof *rs_ops && r >= rs_ops[k].weight)
        r -= rs_ops[k++].weight;
    rs_ops[k].fn(vw);
}

static void rs_finish(void *vw)
{
    wl *w = vw;
    clean_restart(w);
    if (w->rs)
        rlg_sim_trace(w->s, "final entries %" PRIu64 "..%" PRIu64 " term %" PRIu64, w->cur.first,
                      w->cur.last, w->cur.hs.term);
}

void rlg_sim_raft_workload(rlg_sim *s)
{
    wl *w = calloc(1, sizeof *w);
    if (!w)
        rlg_sim_nomem();
    w->s = s;
    rlog_rs_options_init(&w->opts);
    static const uint64_t segs[] = {4096, 8192, 16384};
    w->opts.log.vfs = s->vfs;
    w->opts.log.env = s->env;
    w->opts.log.segment_size = segs[rlog_sim_rng_below(&s->rng, 3)];
    w->opts.log.sync = (rlog_sync_mode)rlog_sim_rng_below(&s->rng, 3);
    w->opts.log.flags = RLOG_OPEN_CREATE;
    w->opts.snapshots_keep = 1 + (unsigned)rlog_sim_rng_below(&s->rng, 3);
    w->rec_max = (size_t)w->opts.log.segment_size / 4;
    ms_reset(&w->acked);
    ms_reset(&w->cur);
    rlg_sim_trace(s, "raft segment_size=%" PRIu64 " sync=%d snapshots_keep=%u",
                  w->opts.log.segment_size, (int)w->opts.log.sync, w->opts.snapshots_keep);
    rlg_sim_wl vt = {w,         DIR "/rlog.unsynced",
                     rs_open,   rs_recovered,
                     rs_drop,   rs_poisoned,
                     rs_failed, rs_op,
                     NULL,      rs_finish};
    w->vt = &vt;
    rlg_sim_drive(s, &vt);
    rs_drop(w);
    clear_pend(w);
    free(w->pend);
    free(w->gi);
    free(w->puts);
    free(w->acked.e);
    free(w->cur.e);
    free(w->scratch.e);
    free(w->got.e);
    free(w);
}
