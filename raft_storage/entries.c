/* Writing and reading the Raft log: hard state, entry batches (sync and
 * async), truncation, and reads of entries and terms. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "os/array.h"
#include "raft_storage/rs_internal.h"

/* ---------------------------------------------------------------- helpers */

/* Applies records recs[0..n) that the log holds from LSN first_lsn on. */
static int apply_records(rlog_rs *rs, const rlog_record *recs, size_t n, uint64_t first_lsn)
{
    for (size_t k = 0; k < n; k++) {
        rlg_rec r;
        char why[200];
        int rv = rlg_rec_decode(recs[k].type, recs[k].data, recs[k].len, &r, why, sizeof why);
        if (!rv)
            rv = rlg_state_apply(&rs->st, &r, first_lsn + k);
        if (rv) {
            /* durable on disk but not in memory: only a reopen can agree */
            rlg_rs_poison(rs, rv);
            return rlg_rs_fail(rs, rv,
                               "LSN %" PRIu64 " is durable but the index could not follow (%s)",
                               first_lsn + k, rv == RLOG_ENOMEM ? "out of memory" : why);
        }
    }
    return 0;
}

static int sync_if_needed(rlog_rs *rs)
{
    if (rs->opts.log.sync != RLOG_SYNC_NONE)
        return 0;
    int rv = rlog_sync(rs->log);
    if (rv) {
        rlg_rs_poison(rs, rv); /* written but not durable: reopen decides */
        return rlg_rs_fail(rs, rv, "sync: %s", rlog_errmsg(rs->log));
    }
    return 0;
}

int rlg_rs_append_apply(rlog_rs *rs, uint16_t type, unsigned sticky, const void *payload,
                        size_t len, uint64_t *lsn)
{
    rlog_record rec = {0, type, (uint8_t)sticky, (uint32_t)len, payload};
    uint64_t first = 0;
    int rv = rlog_append(rs->log, &rec, 1, &first);
    if (rv)
        return rlg_rs_fail(rs, rv, "append: %s", rlog_errmsg(rs->log));
    if ((rv = sync_if_needed(rs)) != 0)
        return rv;
    if (lsn)
        *lsn = first;
    return apply_records(rs, &rec, 1, first);
}

/* ---------------------------------------------------------------- hard state */

int rlog_rs_set_hard_state(rlog_rs *rs, const rlog_rs_hard_state *hs)
{
    int rv = rlg_rs_writable(rs);
    if (rv)
        return rv;
    rlg_rec r = {.type = RLOG_RS_TYPE_HARD_STATE, .u.hs = *hs};
    char why[200];
    if ((rv = rlg_state_check(&rs->st, &r, why, sizeof why)) != 0)
        return rlg_rs_fail(rs, rv, "hard state: %s", why);
    uint8_t buf[RLG_RS_HS_SIZE];
    rlg_hs_encode(hs, buf);
    return rlg_rs_append_apply(rs, RLOG_RS_TYPE_HARD_STATE, RLOG_RS_SLOT_HARD_STATE, buf,
                               sizeof buf, NULL);
}

int rlog_rs_set_term(rlog_rs *rs, uint64_t term)
{
    rlog_rs_hard_state hs = {term, 0, rs->st.hs.commit};
    if (term == rs->st.hs.term)
        hs.vote = rs->st.hs.vote;
    return rlog_rs_set_hard_state(rs, &hs);
}

int rlog_rs_set_vote(rlog_rs *rs, uint64_t vote)
{
    rlog_rs_hard_state hs = {rs->st.hs.term, vote, rs->st.hs.commit};
    return rlog_rs_set_hard_state(rs, &hs);
}

void rlog_rs_hard_state_get(rlog_rs *rs, rlog_rs_hard_state *hs)
{
    *hs = rs->st.hs;
}

/* ---------------------------------------------------------------- entries */

typedef struct async_ctx {
    rlog_rs *rs;
    rlog_rs_append_cb cb;
    void *data;
    uint64_t first, last;
} async_ctx;

/* Runs on the log's I/O thread. */
static void async_done(void *data, int status, uint64_t first_lsn, uint64_t last_lsn)
{
    async_ctx *c = data;
    (void)first_lsn;
    (void)last_lsn;
    if (status)
        rlg_rs_poison(c->rs, status);
    if (c->cb)
        c->cb(c->data, status, c->first, c->last);
    free(c);
}

/* A batch too big for one record goes to the log as one call per record
 * (a log call never straddles segments, and a record is at most a quarter
 * of one). The calls are not atomic together: when one fails after others
 * were accepted, part of the batch may become durable, so the store is
 * poisoned (a reopen recovers whatever prefix is durable). Only the last
 * asynchronous call carries the caller's callback; the others poison the
 * store if they fail. */
static int append_split(rlog_rs *rs, const rlog_record *recs, size_t nrec, bool async,
                        rlog_rs_append_cb cb, void *data, uint64_t first, uint64_t last)
{
    uint64_t *lsns = malloc(nrec * sizeof *lsns);
    int rv = lsns ? 0 : RLOG_ENOMEM;
    size_t k;
    for (k = 0; k < nrec && !rv; k++) {
        if (async) {
            async_ctx *c = malloc(sizeof *c);
            if (!c)
                rv = RLOG_ENOMEM;
            else
                *c = (async_ctx){rs, k + 1 == nrec ? cb : NULL, data, first, last};
            if (c && (rv = rlog_append_async(rs->log, &recs[k], 1, async_done, c, &lsns[k])) != 0)
                free(c);
        } else {
            rv = rlog_append(rs->log, &recs[k], 1, &lsns[k]);
            if (!rv)
                rv = sync_if_needed(rs);
        }
    }
    if (rv) { /* the handle keeps its state; what reached the log needs a reopen */
        if (k > 1)
            rlg_rs_poison(rs, rv);
        rlg_rs_fail(rs, rv, "append: record %zu of %zu of the batch: %s", k, nrec,
                    rlog_errmsg(rs->log));
    }
    for (size_t j = 0; j < nrec && !rv; j++)
        rv = apply_records(rs, &recs[j], 1, lsns[j]);
    free(lsns);
    return rv;
}

/* Splits e[0..n) into batch records of at most rs->rec_max bytes, encoded
 * one after another into rs->enc; recs (n entries of room) describes them. */
static int encode_batches(rlog_rs *rs, uint64_t first_index, const rlog_rs_entry *e, size_t n,
                          rlog_record *recs, size_t *nrec)
{
    size_t total = rlg_batch_size(e, n);
    size_t k = 0, count = 0, off = 0;
    if (total == SIZE_MAX || rlg_rs_enc_reserve(rs, total + n * RLG_RS_BATCH_HDR))
        return rlg_rs_fail(rs, RLOG_ENOMEM, "append: out of memory for %zu entries", n);
    *nrec = 0;
    while (k < n) {
        size_t start = k, size = RLG_RS_BATCH_HDR;
        while (k < n && size + RLG_RS_ENTRY_HDR + e[k].len <= rs->rec_max &&
               k - start < UINT32_MAX) {
            size += RLG_RS_ENTRY_HDR + e[k].len;
            k++;
        }
        if (k == start)
            return rlg_rs_fail(rs, RLOG_ETOOBIG,
                               "append: entry %" PRIu64 " (%" PRIu32
                               " bytes) exceeds the record limit of %zu bytes",
                               first_index + k, e[k].len, rs->rec_max);
        rlg_batch_encode(first_index + start, e + start, k - start, rs->enc + off);
        recs[count] = (rlog_record){0, RLOG_RS_TYPE_ENTRIES, 0, (uint32_t)size, rs->enc + off};
        count++;
        off += size;
    }
    *nrec = count;
    return 0;
}

static int append_common(rlog_rs *rs, uint64_t first_index, const rlog_rs_entry *e, size_t n,
                         bool async, rlog_rs_append_cb cb, void *data)
{
    int rv = rlg_rs_writable(rs);
    if (rv)
        return rv;
    if (!e || n == 0)
        return rlg_rs_fail(rs, RLOG_EINVAL, "append: no entries");
    for (size_t k = 0; k < n; k++)
        if (e[k].len && !e[k].data)
            return rlg_rs_fail(rs, RLOG_EINVAL, "append: entry %zu has no payload", k);
    char why[200];
    if ((rv = rlg_state_check_entries(&rs->st, first_index, e, n, why, sizeof why)) != 0)
        return rlg_rs_fail(rs, rv, "append: %s", why);
    rlog_record *recs = malloc(n * sizeof *recs);
    async_ctx *c = async ? malloc(sizeof *c) : NULL;
    size_t nrec = 0;
    uint64_t lsn = 0;
    if (!recs || (async && !c)) {
        rv = rlg_rs_fail(rs, RLOG_ENOMEM, "append: out of memory");
        goto out;
    }
    if ((rv = encode_batches(rs, first_index, e, n, recs, &nrec)) != 0)
        goto out;
    if (nrec > 1) { /* a log call must fit in one segment: one record each */
        rv = append_split(rs, recs, nrec, async, cb, data, first_index, first_index + n - 1);
        goto out;
    }
    if (async) {
        *c = (async_ctx){rs, cb, data, first_index, first_index + n - 1};
        rv = rlog_append_async(rs->log, recs, nrec, async_done, c, &lsn);
        if (!rv)
            c = NULL; /* the callback owns it now */
    } else {
        rv = rlog_append(rs->log, recs, nrec, &lsn);
    }
    if (rv) {
        rlg_rs_fail(rs, rv, "append: %s", rlog_errmsg(rs->log));
        goto out;
    }
    if (!async && (rv = sync_if_needed(rs)) != 0)
        goto out;
    rv = apply_records(rs, recs, nrec, lsn);
out:
    free(c);
    free(recs);
    return rv;
}

int rlog_rs_append(rlog_rs *rs, uint64_t first_index, const rlog_rs_entry *e, size_t n)
{
    return append_common(rs, first_index, e, n, false, NULL, NULL);
}

int rlog_rs_append_async(rlog_rs *rs, uint64_t first_index, const rlog_rs_entry *e, size_t n,
                         rlog_rs_append_cb cb, void *data)
{
    return append_common(rs, first_index, e, n, true, cb, data);
}

int rlog_rs_truncate(rlog_rs *rs, uint64_t index)
{
    int rv = rlg_rs_writable(rs);
    if (rv)
        return rv;
    rlg_rec r = {.type = RLOG_RS_TYPE_TRUNCATE, .u.trunc = index};
    char why[200];
    if ((rv = rlg_state_check(&rs->st, &r, why, sizeof why)) != 0)
        return rlg_rs_fail(rs, rv, "truncate: %s", why);
    uint8_t buf[RLG_RS_TRUNC_SIZE];
    rlg_trunc_encode(index, buf);
    return rlg_rs_append_apply(rs, RLOG_RS_TYPE_TRUNCATE, 0, buf, sizeof buf, NULL);
}

int rlog_rs_sync(rlog_rs *rs)
{
    int rv = rlog_sync(rs->log);
    if (rv)
        return rlg_rs_fail(rs, rv, "sync: %s", rlog_errmsg(rs->log));
    return 0;
}

int rlog_rs_step(rlog_rs *rs, int *more)
{
    int rv = rlog_step(rs->log, more);
    if (rv)
        return rlg_rs_fail(rs, rv, "step: %s", rlog_errmsg(rs->log));
    return 0;
}

/* ---------------------------------------------------------------- reading */

uint64_t rlog_rs_term(rlog_rs *rs, uint64_t index)
{
    return rlg_state_term(&rs->st, index);
}

uint64_t rlog_rs_first_index(rlog_rs *rs)
{
    return rs->st.ix.first;
}

uint64_t rlog_rs_last_index(rlog_rs *rs)
{
    return rs->st.ix.last;
}

void rlog_rs_entries_free(rlog_rs_entries *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nbufs; i++)
        free(e->bufs[i]);
    free(e->bufs);
    free(e->v);
    memset(e, 0, sizeof *e);
}

typedef struct reader {
    rlog_rs *rs;
    rlog_iter *it;
    bool synced;
    size_t capv, capb;
    size_t bytes, max_bytes;
} reader;

/* Advances the iterator to batch record p->lsn and decodes it in place:
 * *rec and *b point into the iterator's buffer (valid until its next
 * read). Every record read is checked against its checksum by the log. */
static int next_batch(reader *rd, const rlg_bpos *p, rlog_record *rec, rlg_batch_view *b)
{
    rlog_rs *rs = rd->rs;
    for (;;) {
        int rv = rlog_iter_next(rd->it, rec);
        if (rv == RLOG_EEND && !rd->synced) {
            rd->synced = true; /* in flight: wait for it to be written */
            if ((rv = rlog_sync(rs->log)) == 0)
                continue;
        }
        if (rv)
            return rlg_rs_fail(rs, rv == RLOG_EEND ? RLOG_ECORRUPT : rv,
                               "reading batch LSN %" PRIu64 ": %s", p->lsn, rlog_errmsg(rs->log));
        if (rec->lsn >= p->lsn)
            break;
    }
    rlg_rec r;
    char why[200];
    int rv = rec->lsn == p->lsn && rec->type == RLOG_RS_TYPE_ENTRIES ? 0 : RLOG_ECORRUPT;
    if (!rv)
        rv = rlg_rec_decode(rec->type, rec->data, rec->len, &r, why, sizeof why);
    if (!rv && (r.u.batch.first_index != p->index || r.u.batch.count < p->count))
        rv = RLOG_ECORRUPT;
    if (rv)
        return rlg_rs_fail(rs, RLOG_ECORRUPT,
                           "LSN %" PRIu64 " is not the batch of entries %" PRIu64 "..%" PRIu64,
                           p->lsn, p->index, p->index + p->count - 1);
    *b = r.u.batch;
    b->count = p->count; /* entries past a truncation are not ours */
    return 0;
}

/* Reads batch record p->lsn into a buffer of its own; b points into it. */
static int read_batch(reader *rd, const rlg_bpos *p, uint8_t **buf, rlg_batch_view *b)
{
    rlog_record rec;
    rlg_batch_view in;
    *buf = NULL;
    int rv = next_batch(rd, p, &rec, &in);
    if (rv)
        return rv;
    if (!(*buf = malloc(rec.len ? rec.len : 1)))
        return rlg_rs_fail(rd->rs, RLOG_ENOMEM, "out of memory reading LSN %" PRIu64, p->lsn);
    memcpy(*buf, rec.data, rec.len);
    const uint8_t *base = rec.data;
    *b = in;
    b->table = *buf + (in.table - base);
    b->payloads = *buf + (in.payloads - base);
    return 0;
}

/* Adds entries [lo, hi] of batch b (buffer buf) to out; *full when the
 * byte budget stopped it. */
static int take_entries(reader *rd, uint8_t *buf, const rlg_batch_view *b, uint64_t lo, uint64_t hi,
                        rlog_rs_entries *out, bool *full)
{
    if (rlg_array_grow(&out->bufs, &rd->capb, out->nbufs + 1, sizeof *out->bufs, 8))
        return RLOG_ENOMEM;
    out->bufs[out->nbufs++] = buf;
    const uint8_t *d = b->payloads;
    for (uint32_t k = 0; k < b->count; k++) {
        rlog_rs_entry e;
        uint64_t idx = b->first_index + k;
        const uint8_t *t = b->table + (size_t)k * RLG_RS_ENTRY_HDR;
        e.term = rlg_get64(t);
        e.len = rlg_get32(t + 8);
        e.type = rlg_get16(t + 12);
        e.data = d;
        e.batch = buf;
        d += e.len;
        if (idx < lo)
            continue;
        if (idx > hi)
            break;
        if (rd->max_bytes && out->n > 0 && rd->bytes + e.len > rd->max_bytes) {
            *full = true;
            break;
        }
        if (rlg_array_grow(&out->v, &rd->capv, out->n + 1, sizeof *out->v, 64))
            return RLOG_ENOMEM;
        out->v[out->n++] = e;
        rd->bytes += e.len;
    }
    return 0;
}

static int read_range(reader *rd, uint64_t lo, uint64_t hi, rlog_rs_entries *out)
{
    rlog_rs *rs = rd->rs;
    rlg_bpos p;
    rlg_index_locate(&rs->st.ix, lo, &p);
    int rv = rlog_iter_open(rs->log, p.lsn, 0, &rd->it);
    if (rv)
        return rlg_rs_fail(rs, rv, "reading entries: %s", rlog_errmsg(rs->log));
    bool full = false;
    do {
        uint8_t *buf = NULL;
        rlg_batch_view b = {0};
        if ((rv = read_batch(rd, &p, &buf, &b)) != 0)
            break;
        if ((rv = take_entries(rd, buf, &b, lo, hi, out, &full)) != 0) {
            if (out->nbufs == 0 || out->bufs[out->nbufs - 1] != buf)
                free(buf);
            rv = rlg_rs_fail(rs, rv, "reading entries: out of memory");
            break;
        }
    } while (!full && p.index + p.count <= hi && rlg_index_next(&rs->st.ix, &p));
    rlog_iter_close(rd->it);
    return rv;
}

/* Checks lo (inside the log) and hi (not below lo); clamps hi to the last
 * index. */
static int check_range(rlog_rs *rs, const char *what, uint64_t lo, uint64_t *hi)
{
    const rlg_index *ix = &rs->st.ix;
    if (lo < ix->first || lo > ix->last)
        return rlg_rs_fail(rs, RLOG_ENOTFOUND,
                           "entry %" PRIu64 " is not in the log (%" PRIu64 "..%" PRIu64 ")", lo,
                           ix->first, ix->last);
    if (*hi < lo)
        return rlg_rs_fail(rs, RLOG_EINVAL, "%s: range %" PRIu64 "..%" PRIu64, what, lo, *hi);
    if (*hi > ix->last)
        *hi = ix->last;
    return 0;
}

int rlog_rs_entries_read(rlog_rs *rs, uint64_t lo, uint64_t hi, size_t max_bytes,
                         rlog_rs_entries *out)
{
    memset(out, 0, sizeof *out);
    int rv = check_range(rs, "read", lo, &hi);
    if (rv)
        return rv;
    reader rd = {.rs = rs, .max_bytes = max_bytes};
    out->first = lo;
    rv = read_range(&rd, lo, hi, out);
    if (rv)
        rlog_rs_entries_free(out);
    return rv;
}

/* The entries [lo, hi] of batch b as rlog_rs_entry (data into b), in
 * v[0..*n); v holds b->count. */
static void batch_entries(const rlg_batch_view *b, uint64_t lo, uint64_t hi, rlog_rs_entry *v,
                          size_t *n)
{
    const uint8_t *d = b->payloads;
    *n = 0;
    for (uint32_t k = 0; k < b->count; k++) {
        uint64_t idx = b->first_index + k;
        const uint8_t *t = b->table + (size_t)k * RLG_RS_ENTRY_HDR;
        uint32_t len = rlg_get32(t + 8);
        if (idx > hi)
            break;
        if (idx >= lo)
            v[(*n)++] = (rlog_rs_entry){
                .term = rlg_get64(t), .type = rlg_get16(t + 12), .len = len, .data = d};
        d += len;
    }
}

int rlog_rs_entries_scan(rlog_rs *rs, uint64_t lo, uint64_t hi, rlog_rs_scan_cb cb, void *data)
{
    const rlg_index *ix = &rs->st.ix;
    int rv = check_range(rs, "scan", lo, &hi);
    if (rv)
        return rv;
    reader rd = {.rs = rs};
    rlg_bpos p;
    rlg_index_locate(ix, lo, &p);
    rv = rlog_iter_open(rs->log, p.lsn, 0, &rd.it);
    if (rv)
        return rlg_rs_fail(rs, rv, "reading entries: %s", rlog_errmsg(rs->log));
    rlog_rs_entry *v = NULL;
    size_t cap = 0;
    do {
        rlog_record rec;
        rlg_batch_view b;
        size_t n = 0;
        if ((rv = next_batch(&rd, &p, &rec, &b)) != 0)
            break;
        if (b.count > cap) {
            rlog_rs_entry *nv = realloc(v, (size_t)b.count * sizeof *nv);
            if (!nv) {
                rv = rlg_rs_fail(rs, RLOG_ENOMEM, "reading entries: out of memory");
                break;
            }
            v = nv;
            cap = b.count;
        }
        batch_entries(&b, lo, hi, v, &n);
        if (n > 0 && (rv = cb(data, v, n)) != 0)
            break;
    } while (p.index + p.count <= hi && rlg_index_next(ix, &p));
    free(v);
    rlog_iter_close(rd.it);
    return rv;
}
