/*
 * The log workload and its model.
 *
 * Every append attempt gets a generation number `gen`; its payload is a
 * function of (seed, gen), so any record read back names the attempt it
 * came from. Per LSN the model keeps:
 *   cur    the attempt the log holds now (0: none),
 *   acked  the attempt acknowledged durable (0: none) and its witness,
 *   maybe  every attempt that may have reached the disk (it may come back
 *          after a crash as long as nothing acknowledged says otherwise).
 * After each recovery: every acknowledged record must be there with its
 * bytes (or the open must fail loudly, and only after a destructive fault);
 * every other record must be one of the attempts made at its LSN.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "rlog/log.h"
#include "sim/driver.h" /* only this workload's entry point */
#include "sim/harness.h"

#define DIR         "/db/log"
#define MAX_BATCH   6
#define MAX_PAYLOAD 3000

typedef struct attempt {
    uint64_t gen, witness;
} attempt;

typedef struct mrec {
    uint64_t cur, cur_witness;
    uint64_t acked, acked_witness;
    attempt *maybe;
    uint32_t nmaybe, capmaybe;
} mrec;

typedef struct wl {
    rlg_sim *s;
    rlog_log *log;
    rlog_options opts;
    mrec *m; /* indexed by LSN */
    size_t cap;
    uint64_t gen;
    uint64_t first;      /* the log's first LSN, as last known for sure */
    uint64_t first_max;  /* a deletion in flight may have removed up to here */
    uint64_t async_last; /* last LSN whose async callback fired */
    bool poisoned;
    rlog_open_report rep; /* of the last open */
    const rlg_sim_wl *vt;
    uint64_t *pay_hash; /* per generation: the hash of its payload */
    size_t cap_hash;
    uint8_t buf[MAX_PAYLOAD];
} wl;

/* ---- payloads ---- */

static uint32_t pay_len(const wl *w, uint64_t gen)
{
    uint64_t h = rlg_sim_mix(w->s->opts->seed * 31 + gen);
    unsigned r = (unsigned)(h % 100);
    h >>= 8;
    return (uint32_t)(r < 70 ? h % 64 : r < 95 ? h % 600 : h % MAX_PAYLOAD);
}

static void pay_fill(const wl *w, uint64_t gen, uint8_t *p, uint32_t len)
{
    rlg_sim_fill(rlg_sim_mix(w->s->opts->seed ^ (gen << 20)) | 1, p, len);
}

/* Whether data is the payload of attempt gen: compared by a 64-bit hash
 * taken when the payload was made (regenerating the bytes for every record
 * read back was a fifth of the simulator's time). */
static bool pay_is(wl *w, uint64_t gen, const void *data, uint32_t len)
{
    if (!gen || gen >= w->cap_hash || pay_len(w, gen) != len)
        return false;
    return rlg_sim_hash(data, len) == w->pay_hash[gen];
}

/* ---- model ---- */

static mrec *rec_at(wl *w, uint64_t lsn)
{
    w->m = rlg_sim_grow(w->m, &w->cap, lsn, sizeof *w->m);
    return &w->m[lsn];
}

static void add_maybe(wl *w, uint64_t lsn, uint64_t gen, uint64_t witness)
{
    mrec *r = rec_at(w, lsn);
    if (r->nmaybe == r->capmaybe) {
        r->capmaybe = r->capmaybe ? 2 * r->capmaybe : 2;
        r->maybe = realloc(r->maybe, r->capmaybe * sizeof *r->maybe);
        if (!r->maybe)
            rlg_sim_nomem();
    }
    r->maybe[r->nmaybe++] = (attempt){gen, witness};
}

static void ack_range(wl *w, uint64_t first, uint64_t last)
{
    for (uint64_t lsn = first; lsn <= last; lsn++) {
        mrec *r = rec_at(w, lsn);
        if (r->cur && r->acked != r->cur) {
            r->acked = r->cur;
            r->acked_witness = r->cur_witness;
            w->s->res->acked++;
        }
    }
}

static uint64_t max_acked(wl *w)
{
    for (uint64_t lsn = w->cap ? w->cap - 1 : 0; lsn > 0; lsn--)
        if (w->m[lsn].acked)
            return lsn;
    return 0;
}

/* Which attempt a record read back is: acked first, then cur, then maybe. */
static uint64_t identify(wl *w, uint64_t lsn, const void *data, uint32_t len, uint64_t *witness)
{
    mrec *r = rec_at(w, lsn);
    if (r->acked) {
        *witness = r->acked_witness;
        return pay_is(w, r->acked, data, len) ? r->acked : 0;
    }
    if (pay_is(w, r->cur, data, len)) {
        *witness = r->cur_witness;
        return r->cur;
    }
    for (uint32_t i = r->nmaybe; i-- > 0;) {
        if (pay_is(w, r->maybe[i].gen, data, len)) {
            *witness = r->maybe[i].witness;
            return r->maybe[i].gen;
        }
    }
    return 0;
}

static bool expected_error(wl *w, int rv)
{
    return rlg_sim_expected_error(w->s, rv, "a log call", &w->poisoned);
}

/* ---- operations ---- */

/* The model forgets the attempts past `appended`: never made, or rolled
 * back (their LSNs will be reused). */
static void forget_past(wl *w, uint64_t appended)
{
    for (uint64_t lsn = appended + 1; lsn < w->cap && w->m[lsn].cur; lsn++)
        w->m[lsn].cur = 0;
}

/* A call that failed on the way to the disk rolls back everything not
 * written, its own records and any queued behind the failed write. */
static void after_failed_append(wl *w)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    if (!w->poisoned && (p.appended != p.written))
        rlg_sim_fail(w->s,
                     "after a failed append: appended %" PRIu64 " != written %" PRIu64
                     " (not rolled back)",
                     p.appended, p.written);
    forget_past(w, p.appended);
}

/* A call refused up front (RLOG_ETOOBIG) changes nothing: asynchronous
 * appends queued before it stay queued (issue 15: seed 20020496 of the log
 * workload, where the oracle above wrongly demanded appended == written). */
static void after_refused_append(wl *w, const rlog_positions *before)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    if (p.appended != before->appended || p.written < before->written || p.first != before->first)
        rlg_sim_fail(w->s,
                     "a refused append changed the log: appended %" PRIu64 " -> %" PRIu64
                     ", written %" PRIu64 " -> %" PRIu64,
                     before->appended, p.appended, before->written, p.written);
    forget_past(w, p.appended);
}

static int make_batch(wl *w, rlog_record *recs, uint8_t *store, size_t n, uint64_t base,
                      uint64_t witness)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t gen = ++w->gen;
        uint32_t len = pay_len(w, gen);
        pay_fill(w, gen, store + off, len);
        w->pay_hash = rlg_sim_grow(w->pay_hash, &w->cap_hash, gen, sizeof *w->pay_hash);
        w->pay_hash[gen] = rlg_sim_hash(store + off, len);
        recs[i] = (rlog_record){.type = 16 + (uint16_t)(gen % 7), .len = len, .data = store + off};
        off += len;
        mrec *r = rec_at(w, base + i);
        r->cur = gen;
        r->cur_witness = witness;
        add_maybe(w, base + i, gen, witness);
    }
    return 0;
}

static void op_append(wl *w, bool async);

static void async_cb(void *data, int status, uint64_t first, uint64_t last)
{
    wl *w = data;
    if (status == 0) {
        rlog_positions p;
        rlog_positions_get(w->log, &p);
        if (p.durable < last)
            rlg_sim_fail(w->s,
                         "async callback for LSN %" PRIu64 "..%" PRIu64
                         " fired before durable (%" PRIu64 ")",
                         first, last, p.durable);
        if (first <= w->async_last)
            rlg_sim_fail(w->s, "async callbacks out of LSN order: %" PRIu64 " after %" PRIu64,
                         first, w->async_last);
        w->async_last = last;
        ack_range(w, first, last);
    } else if (status == RLOG_EPOISONED) {
        w->poisoned = true;
    } else if (status != RLOG_EIO && status != RLOG_ENOSPC && status != RLOG_ECLOSED) {
        rlg_sim_fail(w->s, "async append failed with %s", rlog_errname(status));
    }
    rlg_sim_trace(w->s, "  async done %" PRIu64 "..%" PRIu64 " -> %s", first, last,
                  rlog_errname(status));
}

/* How many of the next n attempts fit in one call (a call must fit in a
 * segment); with a small chance, all n even when they cannot (*too_big). */
static size_t batch_size(wl *w, size_t n, bool *too_big)
{
    uint64_t room = RLG_SEG_ROOM(w->opts.segment_size), bytes = 0;
    size_t k = 0;
    while (k < n && bytes + RLG_REC_HEADER_SIZE + pay_len(w, w->gen + k + 1) <= room)
        bytes += RLG_REC_HEADER_SIZE + pay_len(w, w->gen + ++k);
    *too_big = k < n && rlog_sim_rng_chance(&w->s->rng, 50000);
    return *too_big ? n : (k ? k : 1);
}

static void op_append(wl *w, bool async)
{
    bool too_big = false;
    size_t n = batch_size(w, 1 + (size_t)rlog_sim_rng_below(&w->s->rng, MAX_BATCH), &too_big);
    rlog_record recs[MAX_BATCH];
    static _Thread_local uint8_t store[MAX_BATCH * MAX_PAYLOAD]; /* one per seed-loop thread */
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    make_batch(w, recs, store, n, p.appended + 1, p.durable);
    uint64_t first = 0;
    int rv = async ? rlog_append_async(w->log, recs, n, async_cb, w, &first)
                   : rlog_append(w->log, recs, n, &first);
    w->s->res->appends++;
    rlg_sim_trace(w->s, "append%s n=%zu -> %s lsn=%" PRIu64, async ? "_async" : "", n,
                  rlog_errname(rv), first);
    if (rv == 0 && first != p.appended + 1)
        rlg_sim_fail(w->s, "append got LSN %" PRIu64 ", expected %" PRIu64, first, p.appended + 1);
    if (rv == 0 && !async && w->opts.sync != RLOG_SYNC_NONE)
        ack_range(w, first, first + n - 1);
    if (too_big && rv != RLOG_ETOOBIG && rv != RLOG_EPOISONED)
        rlg_sim_fail(w->s, "a call larger than a segment was not refused: %s", rlog_errname(rv));
    else if (!too_big && rv && !expected_error(w, rv))
        rlg_sim_fail(w->s, "append failed with %s: %s", rlog_errname(rv), rlog_errmsg(w->log));
    if (rv == RLOG_ETOOBIG)
        after_refused_append(w, &p);
    else if (rv)
        after_failed_append(w);
}

static void op_sync(wl *w)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    int rv = rlog_sync(w->log);
    rlg_sim_trace(w->s, "sync -> %s", rlog_errname(rv));
    if (rv == 0) {
        rlog_positions q;
        rlog_positions_get(w->log, &q);
        if (q.durable < p.appended && q.appended >= p.appended)
            rlg_sim_fail(w->s, "sync returned 0 but durable %" PRIu64 " < %" PRIu64, q.durable,
                         p.appended);
        ack_range(w, p.first, q.durable);
    } else if (!expected_error(w, rv)) {
        rlg_sim_fail(w->s, "sync failed with %s", rlog_errname(rv));
    } else {
        after_failed_append(w);
    }
}

static void op_step(wl *w)
{
    int more = 0;
    int rv = rlog_step(w->log, &more);
    rlg_sim_trace(w->s, "step -> %s", rlog_errname(rv));
    if (rv && !expected_error(w, rv))
        rlg_sim_fail(w->s, "step failed with %s", rlog_errname(rv));
    if (rv && rv != RLOG_EPOISONED)
        after_failed_append(w);
}

static void check_read(wl *w, uint64_t lsn, const rlog_record *rec, const char *how)
{
    mrec *r = rec_at(w, lsn);
    if (!pay_is(w, r->cur, rec->data, rec->len))
        rlg_sim_fail(w->s, "%s LSN %" PRIu64 ": %u bytes that are not attempt %" PRIu64, how, lsn,
                     rec->len, r->cur);
    w->s->res->reads++;
}

static void op_get(wl *w)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    if (p.written < p.first)
        return;
    uint64_t lsn = p.first + rlog_sim_rng_below(&w->s->rng, p.written - p.first + 1);
    rlog_record rec;
    void *pl = NULL;
    int rv = rlog_get(w->log, lsn, 0, &rec, &pl);
    rlg_sim_trace(w->s, "get %" PRIu64 " -> %s", lsn, rlog_errname(rv));
    if (rv == 0)
        check_read(w, lsn, &rec, "get");
    else if (!expected_error(w, rv))
        rlg_sim_fail(w->s, "get %" PRIu64 " failed with %s: %s", lsn, rlog_errname(rv),
                     rlog_errmsg(w->log));
    rlog_free(pl);
}

static void op_scan(wl *w)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    uint64_t from = p.first + rlog_sim_rng_below(&w->s->rng, p.written - p.first + 2);
    unsigned flags = rlog_sim_rng_chance(&w->s->rng, 300000) ? RLOG_READ_DURABLE : 0;
    uint64_t limit = flags ? p.durable : p.written;
    rlog_iter *it;
    if (rlog_iter_open(w->log, from, flags, &it))
        return;
    rlog_record rec;
    uint64_t lsn = from, n = 0;
    int rv;
    while (n++ < 64 && (rv = rlog_iter_next(it, &rec)) == 0) {
        if (rec.lsn != lsn || lsn > limit)
            rlg_sim_fail(w->s,
                         "iterator returned LSN %" PRIu64 ", expected %" PRIu64
                         " (visible limit %" PRIu64 ")",
                         rec.lsn, lsn, limit);
        check_read(w, lsn++, &rec, "iterate");
    }
    if (n <= 64 && rv != RLOG_EEND && !expected_error(w, rv))
        rlg_sim_fail(w->s, "iterator at %" PRIu64 " failed with %s", lsn, rlog_errname(rv));
    if (n <= 64 && rv == RLOG_EEND && lsn <= limit)
        rlg_sim_fail(w->s, "iterator ended at %" PRIu64 " before the visible limit %" PRIu64, lsn,
                     limit);
    rlog_iter_close(it);
    rlg_sim_trace(w->s, "scan from %" PRIu64 " -> %" PRIu64 " records", from, lsn - from);
}

static void op_rotate(wl *w)
{
    int rv = rlog_rotate(w->log);
    rlg_sim_trace(w->s, "rotate -> %s", rlog_errname(rv));
    if (rv && !expected_error(w, rv))
        rlg_sim_fail(w->s, "rotate failed with %s", rlog_errname(rv));
    if (rv)
        after_failed_append(w);
}

static void op_delete(wl *w)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    uint64_t target = p.first + rlog_sim_rng_below(&w->s->rng, p.durable - p.first + 2);
    uint64_t deleted = 0;
    if (target > w->first_max)
        w->first_max = target;
    int rv = rlog_delete_prefix(w->log, target, &deleted);
    rlog_positions_get(w->log, &p);
    rlg_sim_trace(w->s, "delete_prefix %" PRIu64 " -> %s deleted=%" PRIu64 " first=%" PRIu64,
                  target, rlog_errname(rv), deleted, p.first);
    if (rv && !expected_error(w, rv))
        rlg_sim_fail(w->s, "delete_prefix failed with %s", rlog_errname(rv));
    if (p.first > target)
        rlg_sim_fail(w->s, "delete_prefix %" PRIu64 " removed records up to %" PRIu64, target,
                     p.first - 1);
    if (rv == 0) /* on failure an unsynced unlink may still be undone by a crash */
        w->first = p.first;
}

/* ---- crashes, recovery and its oracles ---- */

static void drop(void *vw)
{
    wl *w = vw;
    if (w->log) {
        rlog_abandon(w->log, NULL);
        w->log = NULL;
    }
    w->poisoned = false;
}

/* Reads every record back: each must be an attempt made at its LSN; the
 * model then takes the recovered log as the durable truth. */
static void adopt_contents(wl *w, const rlog_open_report *rep)
{
    uint64_t first = rep->first_lsn, last = rep->last_lsn, lsn = first;
    rlog_iter *it;
    if (rlog_iter_open(w->log, first, 0, &it)) {
        rlg_sim_fail(w->s, "cannot open an iterator after recovery");
        return;
    }
    rlog_record rec;
    int rv;
    while ((rv = rlog_iter_next(it, &rec)) == 0) {
        uint64_t witness = 0, g = identify(w, lsn, rec.data, rec.len, &witness);
        if (!g || rec.lsn != lsn) {
            rlg_sim_fail(w->s,
                         "after recovery LSN %" PRIu64 " holds %u bytes never appended there"
                         " (acked attempt %" PRIu64 ")",
                         lsn, rec.len, rec_at(w, lsn)->acked);
            break;
        }
        mrec *r = rec_at(w, lsn++);
        r->cur = r->acked = g;
        r->cur_witness = r->acked_witness = witness;
    }
    rlog_iter_close(it);
    rlg_sim_note_faults(w->s);
    if (!w->s->stop && w->s->destructive && rv != RLOG_EEND) {
        w->s->res->corruption_detected++; /* damage found on read: loud */
        w->s->stop = true;
    }
    if (!w->s->stop && (rv != RLOG_EEND || lsn != last + 1))
        rlg_sim_fail(w->s,
                     "reading the recovered log stopped at LSN %" PRIu64 " of %" PRIu64 ": %s", lsn,
                     last, rlog_errname(rv));
    for (uint64_t l = last + 1; l < w->cap; l++)
        w->m[l].cur = w->m[l].acked = 0;
    for (uint64_t l = 0; l < first && l < w->cap; l++)
        w->m[l].cur = w->m[l].acked = 0;
    w->first = w->first_max = first;
    w->async_last = last;
}

static void check_recovered(wl *w, const rlog_open_report *rep)
{
    rlg_sim *s = w->s;
    rlg_sim_note_faults(s);
    uint64_t top = max_acked(w);
    if (rep->status == RLOG_TAIL_TORN)
        s->res->torn_cut++;
    if (!s->destructive) {
        if (rep->last_lsn < top)
            rlg_sim_fail(s, "acknowledged LSN %" PRIu64 " lost: the log ends at %" PRIu64 " (%s)",
                         top, rep->last_lsn, rep->message);
        else if (rep->first_lsn < w->first)
            rlg_sim_fail(s, "deleted records came back: first LSN %" PRIu64 " < %" PRIu64,
                         rep->first_lsn, w->first);
        else if (rep->first_lsn > w->first_max)
            rlg_sim_fail(s, "records lost at the head: first LSN %" PRIu64 " > %" PRIu64,
                         rep->first_lsn, w->first_max);
        for (uint64_t l = rep->first_lsn; !s->stop && l <= top && l < w->cap; l++)
            if (l < rep->first_lsn || l > rep->last_lsn)
                rlg_sim_fail(s, "acknowledged LSN %" PRIu64 " missing", l);
    }
    if (!s->stop)
        adopt_contents(w, rep);
}

static uint64_t contents_hash(wl *w, uint64_t *n)
{
    uint64_t h = 0;
    *n = 0;
    rlog_iter *it;
    if (rlog_iter_open(w->log, 1, 0, &it))
        return 0;
    rlog_record rec;
    while (rlog_iter_next(it, &rec) == 0) {
        h = rlg_sim_mix(h ^ rec.lsn ^ ((uint64_t)rec.type << 48));
        h = rlg_sim_mix(h ^ rlg_sim_hash(rec.data, rec.len));
        (*n)++;
    }
    rlog_iter_close(it);
    return h;
}

/* Recovering twice gives the same log, and the second time a clean one. */
static void check_idempotent(wl *w, const rlog_open_report *rep)
{
    rlg_sim *s = w->s;
    uint64_t n1, n2, h1 = contents_hash(w, &n1);
    rlog_simfs_crash(s->vfs);
    rlog_abandon(w->log, NULL);
    w->log = NULL;
    rlog_open_report rep2;
    int rv = rlog_open(DIR, &w->opts, &w->log, &rep2);
    if (rv) {
        rlg_sim_fail(s, "second recovery failed with %s: %s", rlog_errname(rv), rep2.message);
        return;
    }
    uint64_t h2 = contents_hash(w, &n2);
    if (h1 != h2 || n1 != n2 || rep2.first_lsn != rep->first_lsn ||
        rep2.last_lsn != rep->last_lsn || rep2.status != RLOG_TAIL_CLEAN)
        rlg_sim_fail(s,
                     "recovery is not idempotent: LSN %" PRIu64 "..%" PRIu64 " (%" PRIu64
                     " records) then %" PRIu64 "..%" PRIu64 " (%" PRIu64 " records), %s",
                     rep->first_lsn, rep->last_lsn, n1, rep2.first_lsn, rep2.last_lsn, n2,
                     rep2.message);
    rlg_sim_trace(s, "recovered twice: same %" PRIu64 " records", n2);
}

static int open_log(void *vw, char *msg, size_t cap)
{
    wl *w = vw;
    int rv = rlog_open(DIR, &w->opts, &w->log, &w->rep);
    snprintf(msg, cap, "%s", w->rep.message);
    return rv;
}

static void recovered(void *vw)
{
    wl *w = vw;
    check_recovered(w, &w->rep);
    if (!w->s->stop && !w->s->destructive && rlog_sim_rng_chance(&w->s->rng, 250000))
        check_idempotent(w, &w->rep);
}

/* ---- targeted damage: a record proven durable must be reported ---- */

/* What find_record looks for, and where it found it. */
typedef struct rec_find {
    uint64_t lsn;
    char *path;
    size_t cap;
    uint64_t off;
    uint32_t len;
    bool found;
} rec_find;

static bool find_in(void *arg, const char *path, const uint8_t *d, size_t dl)
{
    rec_find *q = arg;
    const char *name = strrchr(path, '/') + 1;
    uint64_t seq;
    rlg_seg_header h;
    if (strncmp(path, DIR "/", sizeof DIR) || !rlg_seg_parse_name(name, &seq) ||
        dl < RLG_SEG_HEADER_SIZE || rlg_seg_header_decode(d, &h) != RLG_HDR_OK)
        return false;
    uint32_t salt = rlg_salt_state(h.log_id, seq);
    rlg_rec_header rh;
    for (uint64_t at = RLG_SEG_HEADER_SIZE, o = at; rlg_seg_next(d, dl, salt, &o, &rh); at = o) {
        if (rh.type >= RLOG_TYPE_USER_MIN && rh.lsn == q->lsn) {
            snprintf(q->path, q->cap, "%s", path);
            q->off = at;
            q->len = rh.len;
            return q->found = true;
        }
    }
    return false;
}

static bool find_record(wl *w, uint64_t lsn, char *path, size_t cap, uint64_t *off, uint32_t *len)
{
    rec_find q = {lsn, path, cap, 0, 0, false};
    if (rlg_sim_each_file(w->s->vfs, 0, find_in, &q) || !q.found)
        return false;
    *off = q.off;
    *len = q.len;
    return true;
}

static bool hash_in(void *arg, const char *path, const uint8_t *d, size_t dl)
{
    (void)path;
    uint64_t *h = arg;
    *h = rlg_sim_mix(*h ^ dl);
    for (size_t k = 0; k < dl; k++)
        *h = *h * 0x100000001b3ull ^ d[k];
    return false;
}

static uint64_t files_hash(wl *w)
{
    uint64_t h = 0;
    return rlg_sim_each_file(w->s->vfs, 1, hash_in, &h) ? 0 : h;
}

static void flip(wl *w, const char *path, uint64_t off)
{
    rlog_vfs *v = w->s->vfs;
    rlog_file *f;
    uint8_t c = 0;
    size_t done;
    if (v->open(v, path, RLOG_VFS_RDWR, &f))
        return;
    v->pread(v, f, &c, 1, off, &done);
    c ^= (uint8_t)(1u << rlog_sim_rng_below(&w->s->rng, 8));
    v->pwrite(v, f, &c, 1, off, &done);
    v->fdatasync(v, f);
    v->close(v, f);
}

static bool note_first_lsn(void *arg, const char *path, const uint8_t *d, size_t dl)
{
    uint64_t *first = arg;
    rlg_seg_header h;
    if (!strncmp(path, DIR "/", sizeof DIR) && strstr(path, ".seg") && dl >= RLG_SEG_HEADER_SIZE &&
        rlg_seg_header_decode(d, &h) == RLG_HDR_OK)
        *first = h.first_lsn;
    return false;
}

/* The first LSN of the last segment with a valid header (0 if none). */
static uint64_t last_segment_first_lsn(wl *w)
{
    uint64_t first = 0; /* files come sorted: later segments last */
    return rlg_sim_each_file(w->s->vfs, 0, note_first_lsn, &first) ? 0 : first;
}

/* After a crash: flips a bit in an acknowledged record X that a later
 * acknowledged record Y proves durable (Y's witness >= X). The open must
 * fail with RLOG_ECORRUPT, naming the segment, and change nothing. */
static void damage_and_check(void *vw)
{
    wl *w = vw;
    rlg_sim *s = w->s;
    uint64_t y = 0, wmax = 0;
    for (uint64_t l = w->first_max; l < w->cap; l++)
        if (w->m[l].acked && w->m[l].acked_witness > wmax) {
            wmax = w->m[l].acked_witness;
            y = l;
        }
    if (wmax < w->first_max)
        return;
    /* damage in a sealed segment is reported whatever the proof says: aim
     * mostly at the last segment, where only the witness proves it */
    uint64_t lo = w->first_max, tail = last_segment_first_lsn(w);
    if (tail > lo && tail <= wmax && rlog_sim_rng_chance(&s->rng, 700000))
        lo = tail;
    uint64_t x = lo + rlog_sim_rng_below(&s->rng, wmax - lo + 1);
    char path[256];
    uint64_t off;
    uint32_t len;
    rlog_simfs_enable_faults(s->vfs, 0);
    if (!find_record(w, x, path, sizeof path, &off, &len)) {
        rlog_simfs_enable_faults(s->vfs, 1);
        return;
    }
    flip(w, path, off + rlog_sim_rng_below(&s->rng, RLG_REC_HEADER_SIZE + (uint64_t)len));
    s->res->faults[RLOG_SIM_FAULT_DAMAGE]++;
    rlg_sim_trace(s, "DAMAGE LSN %" PRIu64 " in %s (proven by LSN %" PRIu64 ")", x, path, y);
    uint64_t before = files_hash(w);
    rlog_open_report rep;
    int rv = rlog_open(DIR, &w->opts, &w->log, &rep);
    rlg_sim_trace(s, "open -> %s: %s", rlog_errname(rv), rep.message);
    if (rv == 0)
        rlg_sim_fail(s,
                     "LSN %" PRIu64 " was damaged while LSN %" PRIu64
                     " proves it durable, yet the open succeeded: %s",
                     x, y, rep.message);
    else if (rv != RLOG_ECORRUPT || !strstr(rep.message, ".seg"))
        rlg_sim_fail(s,
                     "damaged LSN %" PRIu64 ": open failed with %s, not a corruption report "
                     "naming the segment: %s",
                     x, rlog_errname(rv), rep.message);
    else if (files_hash(w) != before)
        rlg_sim_fail(s, "the failed open changed files");
    else
        s->res->corruption_detected++;
    s->stop = true;
}

/* ---- the run ---- */

static void clean_restart(wl *w)
{
    rlg_sim *s = w->s;
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    int rv = rlog_close(w->log);
    w->log = NULL;
    rlg_sim_trace(s, "close -> %s", rlog_errname(rv));
    if (rv == 0)
        ack_range(w, p.first, p.appended);
    else if (!expected_error(w, rv))
        rlg_sim_fail(s, "close failed with %s", rlog_errname(rv));
    if (!s->stop)
        rlg_sim_reopen(s, w->vt);
}

static void one_op(void *vw)
{
    wl *w = vw;
    unsigned r = (unsigned)rlog_sim_rng_below(&w->s->rng, 100);
    if (r < 35)
        op_append(w, false);
    else if (r < 52)
        op_append(w, true);
    else if (r < 62)
        op_step(w);
    else if (r < 70)
        op_sync(w);
    else if (r < 82)
        op_get(w);
    else if (r < 88)
        op_scan(w);
    else if (r < 91)
        op_rotate(w);
    else if (r < 97)
        op_delete(w);
    else
        clean_restart(w);
}

static bool poisoned(void *vw)
{
    return ((wl *)vw)->poisoned;
}

static void finish(void *vw)
{
    wl *w = vw;
    if (!w->log)
        return;
    clean_restart(w);
    rlog_positions p;
    if (w->log) {
        rlog_positions_get(w->log, &p);
        rlg_sim_trace(w->s, "final LSN %" PRIu64 "..%" PRIu64, p.first, p.appended);
    }
}

void rlg_sim_log_workload(rlg_sim *s)
{
    wl w;
    memset(&w, 0, sizeof w);
    w.s = s;
    rlog_options_init(&w.opts);
    static const uint64_t segs[] = {8192, 16384, 32768, 65536};
    w.opts.vfs = s->vfs;
    w.opts.env = s->env;
    w.opts.segment_size = segs[rlog_sim_rng_below(&s->rng, 4)];
    w.opts.max_record = MAX_PAYLOAD;
    w.opts.sync = (rlog_sync_mode)rlog_sim_rng_below(&s->rng, 3);
    w.opts.flags = RLOG_OPEN_CREATE;
    w.first = w.first_max = 1;
    rlg_sim_trace(s, "log segment_size=%" PRIu64 " sync=%d", w.opts.segment_size, (int)w.opts.sync);
    rlg_sim_wl vt = {&w,     DIR "/rlog.unsynced", open_log, recovered, drop, poisoned, NULL,
                     one_op, damage_and_check,     finish};
    w.vt = &vt;
    rlg_sim_drive(s, &vt);
    if (w.log)
        rlog_abandon(w.log, NULL);
    for (size_t i = 0; i < w.cap; i++)
        free(w.m[i].maybe);
    free(w.m);
    free(w.pay_hash);
}
