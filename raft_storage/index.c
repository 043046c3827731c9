/* The compact in-memory index of the Raft log (layout: index.h). */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "raft_storage/index.h"

/* Grows *p (elements of size `elem`) to hold at least `need`, by 1.5x. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap + *cap / 2 + 16;
    if (c < need)
        c = need;
    void *n = realloc(*p, c * elem);
    if (!n)
        return RLOG_ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

/* Shrinks *p to `len` elements (plus a little) when it is mostly unused. */
static void shrink(void **p, size_t *cap, size_t len, size_t elem)
{
    if (*cap <= 2 * len + 64)
        return;
    size_t c = len + len / 2 + 16;
    void *n = realloc(*p, c * elem);
    if (n) {
        *p = n;
        *cap = c;
    }
}

void rlg_index_init(rlg_index *ix, uint64_t first)
{
    memset(ix, 0, sizeof *ix);
    ix->first = first;
    ix->last = first - 1;
}

void rlg_index_free(rlg_index *ix)
{
    free(ix->runs);
    free(ix->ck);
    free(ix->s);
    memset(ix, 0, sizeof *ix);
}

void rlg_index_reset(rlg_index *ix, uint64_t first)
{
    rlg_index_free(ix);
    rlg_index_init(ix, first);
}

/* A batch is one varint x = count * 2 + (delta != 1), followed by the
 * varint delta (its LSN minus the previous batch's) only when that bit is
 * set; a group's first batch stores no delta. Mostly one byte per batch. */
static size_t put_batch(uint8_t *p, uint64_t count, bool first_of_group, uint64_t delta)
{
    bool explicit_delta = !first_of_group && delta != 1;
    size_t n = rlg_varint_put(p, count * 2 + explicit_delta);
    if (explicit_delta)
        n += rlg_varint_put(p + n, delta);
    return n;
}

static size_t get_batch(const uint8_t *p, uint64_t *count, uint64_t *delta)
{
    uint64_t x;
    size_t n = rlg_varint_get(p, &x);
    *count = x >> 1;
    *delta = 1;
    if (x & 1)
        n += rlg_varint_get(p + n, delta);
    return n;
}

/* Decodes the batch at stream offset off: group ck, ordinal k, first index
 * `index`; prev_lsn is the LSN of the batch before it (unused when k = 0). */
static void decode_at(const rlg_index *ix, size_t ck, uint64_t off, unsigned k, uint64_t index,
                      uint64_t prev_lsn, rlg_bpos *p)
{
    uint64_t count, delta;
    size_t n = get_batch(ix->s + off, &count, &delta);
    p->ck = ck;
    p->off = off;
    p->len = n;
    p->k = k;
    p->index = index;
    p->count = (uint32_t)count;
    p->lsn = k == 0 ? ix->ck[ck].lsn : prev_lsn + delta;
}

bool rlg_index_next(const rlg_index *ix, rlg_bpos *p)
{
    uint64_t off = p->off + p->len;
    if (off >= ix->sn)
        return false;
    if (p->ck + 1 < ix->cn && off == ix->ck[p->ck + 1].off)
        decode_at(ix, p->ck + 1, off, 0, p->index + p->count, 0, p);
    else
        decode_at(ix, p->ck, off, p->k + 1, p->index + p->count, p->lsn, p);
    return true;
}

/* The runs and the checkpoints both start with the index they are sorted
 * by, which is what last_at_most reads. */
_Static_assert(offsetof(rlg_run, index) == 0 && offsetof(rlg_ckpt, index) == 0,
               "a sorted element starts with its index");

/* The last element of [lo, hi) — elements of `size` bytes that start with
 * a uint64_t index, sorted by it — whose index is <= i; the caller knows
 * that the one at lo is. A binary search. */
static size_t last_at_most(const void *base, size_t size, size_t lo, size_t hi, uint64_t i)
{
    const unsigned char *b = base;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t index;
        memcpy(&index, b + mid * size, sizeof index);
        if (index <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void rlg_index_locate(const rlg_index *ix, uint64_t i, rlg_bpos *p)
{
    assert(i >= ix->first && i <= ix->last && ix->cn > ix->ch);
    size_t lo = last_at_most(ix->ck, sizeof *ix->ck, ix->ch, ix->cn, i);
    decode_at(ix, lo, ix->ck[lo].off, 0, ix->ck[lo].index, 0, p);
    while (i >= p->index + p->count) {
        bool more = rlg_index_next(ix, p);
        assert(more);
        (void)more;
    }
}

static size_t runs_needed(const rlg_index *ix, const rlg_batch_view *b)
{
    size_t n = 0;
    uint64_t prev = ix->rn > ix->rh ? ix->runs[ix->rn - 1].term : 0;
    for (uint32_t k = 0; k < b->count; k++) {
        uint64_t t = rlg_batch_term(b, k);
        if (t != prev)
            n++;
        prev = t;
    }
    return n;
}

int rlg_index_add(rlg_index *ix, const rlg_batch_view *b, uint64_t lsn)
{
    assert(b->first_index == ix->last + 1 && b->count > 0);
    bool group = ix->cn == ix->ch || ix->tail.k + 1 >= RLG_INDEX_GROUP;
    size_t nruns = runs_needed(ix, b);
    if (grow((void **)&ix->s, &ix->scap, ix->sn + 2 * 10, 1) ||
        grow((void **)&ix->ck, &ix->ccap, ix->cn + group, sizeof *ix->ck) ||
        grow((void **)&ix->runs, &ix->rcap, ix->rn + nruns, sizeof *ix->runs))
        return RLOG_ENOMEM;
    uint64_t off = ix->sn;
    if (group)
        ix->ck[ix->cn++] = (rlg_ckpt){b->first_index, lsn, off};
    ix->sn += put_batch(ix->s + ix->sn, b->count, group, group ? 0 : lsn - ix->tail.lsn);
    ix->tail = (rlg_bpos){
        ix->cn - 1, off, (size_t)(ix->sn - off), group ? 0 : ix->tail.k + 1, b->first_index,
        b->count,   lsn};
    uint64_t prev = ix->rn > ix->rh ? ix->runs[ix->rn - 1].term : 0;
    for (uint32_t k = 0; k < b->count; k++) {
        uint64_t t = rlg_batch_term(b, k);
        if (t != prev)
            ix->runs[ix->rn++] = (rlg_run){b->first_index + k, t};
        prev = t;
    }
    ix->last = b->first_index + b->count - 1;
    ix->batches++;
    return 0;
}

/* Batches from p to the end of the stream (p included). */
static uint64_t batches_from(const rlg_index *ix, rlg_bpos p)
{
    uint64_t n = 1;
    while (rlg_index_next(ix, &p))
        n++;
    return n;
}

void rlg_index_truncate(rlg_index *ix, uint64_t i)
{
    assert(i >= ix->first && i <= ix->last + 1);
    if (i > ix->last)
        return;
    if (i == ix->first) {
        rlg_index_reset(ix, i);
        return;
    }
    rlg_bpos p;
    rlg_index_locate(ix, i, &p);
    ix->batches -= batches_from(ix, p);
    if (p.index < i) {
        /* keep the first i - p.index entries of p: rewrite its count */
        uint64_t count, delta;
        get_batch(ix->s + p.off, &count, &delta);
        ix->sn = p.off; /* the new count is smaller: it fits */
        ix->sn += put_batch(ix->s + ix->sn, i - p.index, p.k == 0, delta);
        ix->cn = p.ck + 1;
        p.count = (uint32_t)(i - p.index);
        p.len = (size_t)(ix->sn - p.off);
        ix->tail = p;
        ix->batches++;
    } else {
        ix->sn = p.off;
        ix->cn = p.k == 0 ? p.ck : p.ck + 1;
        ix->last = i - 1;
        rlg_index_locate(ix, i - 1, &ix->tail);
    }
    ix->last = i - 1;
    while (ix->rn > ix->rh && ix->runs[ix->rn - 1].index >= i)
        ix->rn--;
    assert(ix->rn > ix->rh);
}

static uint64_t group_batches(const rlg_index *ix, size_t ck)
{
    rlg_bpos p;
    decode_at(ix, ck, ix->ck[ck].off, 0, ix->ck[ck].index, 0, &p);
    uint64_t n = 1;
    while (rlg_index_next(ix, &p) && p.ck == ck)
        n++;
    return n;
}

/* Moves the live parts of the arrays to their starts when the dead heads
 * outweigh them. */
static void compact(rlg_index *ix)
{
    if (ix->ch > 0 && ix->ch >= ix->cn - ix->ch) {
        uint64_t base = ix->ck[ix->ch].off;
        memmove(ix->s, ix->s + base, (size_t)(ix->sn - base));
        ix->sn -= base;
        memmove(ix->ck, ix->ck + ix->ch, (ix->cn - ix->ch) * sizeof *ix->ck);
        ix->cn -= ix->ch;
        for (size_t k = 0; k < ix->cn; k++)
            ix->ck[k].off -= base;
        ix->tail.off -= base;
        ix->tail.ck -= ix->ch;
        ix->ch = 0;
        shrink((void **)&ix->s, &ix->scap, ix->sn, 1);
        shrink((void **)&ix->ck, &ix->ccap, ix->cn, sizeof *ix->ck);
    }
    if (ix->rh > 0 && ix->rh >= ix->rn - ix->rh) {
        memmove(ix->runs, ix->runs + ix->rh, (ix->rn - ix->rh) * sizeof *ix->runs);
        ix->rn -= ix->rh;
        ix->rh = 0;
        shrink((void **)&ix->runs, &ix->rcap, ix->rn, sizeof *ix->runs);
    }
}

void rlg_index_drop_prefix(rlg_index *ix, uint64_t new_first)
{
    if (new_first <= ix->first)
        return;
    if (new_first > ix->last) {
        rlg_index_reset(ix, new_first);
        return;
    }
    ix->first = new_first;
    while (ix->ch + 1 < ix->cn && ix->ck[ix->ch + 1].index <= new_first) {
        ix->batches -= group_batches(ix, ix->ch);
        ix->ch++;
    }
    while (ix->rh + 1 < ix->rn && ix->runs[ix->rh + 1].index <= new_first)
        ix->rh++;
    compact(ix);
}

uint64_t rlg_index_term(const rlg_index *ix, uint64_t i)
{
    if (i < ix->first || i > ix->last)
        return 0;
    return ix->runs[last_at_most(ix->runs, sizeof *ix->runs, ix->rh, ix->rn, i)].term;
}

uint64_t rlg_index_bytes(const rlg_index *ix)
{
    return (uint64_t)ix->scap + ix->ccap * sizeof *ix->ck + ix->rcap * sizeof *ix->runs;
}
