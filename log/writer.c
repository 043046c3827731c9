/*
 * The append pipeline: encoding records into chunks, I/O rounds that write
 * and sync them, completion of waiters, rollback after a failed write,
 * poisoning after a failed sync. See log_internal.h for the shape.
 *
 * Invariants (mu held):
 *   durable <= written <= appended
 *   every chunk in pend_* holds bytes not yet written, in file order
 *   segs[i].offs covers every LSN assigned in segment i (written or not)
 *   sticky_wr is what the written prefix of the log last set
 */
#include <assert.h>
#include <sched.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log_internal.h"
#include "log/spare.h"
#include "log/unsynced.h"
#include "log/writer.h"
#include "os/sync.h"

/* Group commit: how often a round's leader yields to returning appenders at
 * most (see gather; its bound is time, this only when the clock stands). */
#define RLG_GATHER_YIELDS 4096u
/* Group commit: how many rounds a leader runs back to back, each syncing
 * what arrived during the sync before (see drive_ticket), before it hands
 * the token on: bounds how long leading delays its own return. */
#define RLG_LEAD_ROUNDS 8u

/* ---------------------------------------------------------------- chunks */

static void chunk_free(rlg_chunk *c)
{
    for (size_t i = 0; i < c->nstk; i++)
        free(c->stk[i].val.data);
    free(c->stk);
    free(c->data);
    free(c);
}

static void free_chunks(rlog_log *l)
{
    while (l->pend_head) {
        rlg_chunk *c = l->pend_head;
        l->pend_head = c->next;
        chunk_free(c);
    }
    l->pend_tail = NULL;
}

static rlg_chunk *chunk_new(rlog_log *l, uint64_t seq, uint64_t off)
{
    rlg_chunk *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->seq = seq;
    c->off = off;
    c->first_lsn = l->appended + 1;
    c->last_lsn = l->appended;
    if (l->pend_tail)
        l->pend_tail->next = c;
    else
        l->pend_head = c;
    l->pend_tail = c;
    return c;
}

static int chunk_reserve(rlg_chunk *c, size_t more)
{
    if (c->len + more <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + more)
        cap *= 2;
    uint8_t *d = realloc(c->data, cap);
    if (!d)
        return RLOG_ENOMEM;
    c->data = d;
    c->cap = cap;
    return 0;
}

/* The chunk the encoder appends to: the open tail for the current segment,
 * or a new one. */
static rlg_chunk *enc_chunk(rlog_log *l, bool fresh)
{
    rlg_segment *s = &l->segs[l->nsegs - 1];
    rlg_chunk *t = l->pend_tail;
    if (!fresh && t && !t->closed && t->seq == s->seq && t->off + t->len == l->enc_off)
        return t;
    if (t)
        t->closed = true;
    return chunk_new(l, s->seq, l->enc_off);
}

/* ---------------------------------------------------------------- sticky */

static void sticky_clear(rlg_sticky_val *v)
{
    free(v->data);
    memset(v, 0, sizeof *v);
}

static int sticky_copy(rlg_sticky_val *dst, uint16_t type, const void *data, uint32_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (!d)
        return RLOG_ENOMEM;
    if (len)
        memcpy(d, data, len);
    free(dst->data);
    dst->set = true;
    dst->type = type;
    dst->len = len;
    dst->data = d;
    return 0;
}

static void sticky_restore(rlog_log *l)
{
    for (unsigned i = 0; i < RLOG_STICKY_SLOTS; i++) {
        rlg_sticky_val *w = &l->sticky_wr[i];
        if (w->set)
            sticky_copy(&l->sticky_enc[i], w->type, w->data, w->len);
        else
            sticky_clear(&l->sticky_enc[i]);
    }
}

static size_t sticky_bytes(const rlog_log *l)
{
    size_t n = 0;
    for (unsigned i = 0; i < RLOG_STICKY_SLOTS; i++)
        if (l->sticky_enc[i].set)
            n += RLG_REC_HEADER_SIZE + l->sticky_enc[i].len;
    return n;
}

uint64_t rlg_log_head_lsn(rlog_log *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t lsn = l->nsegs ? l->segs[l->nsegs - 1].first_lsn : 0;
    pthread_mutex_unlock(&l->mu);
    return lsn;
}

int rlog_sticky_set(rlog_log *l, unsigned slot, const rlog_record *rec)
{
    if (slot < 1 || slot > RLOG_STICKY_SLOTS)
        return RLOG_EINVAL;
    if (rec && (rec->type < RLOG_TYPE_USER_MIN || rec->len > l->opts.max_record))
        return RLOG_EINVAL;
    pthread_mutex_lock(&l->mu);
    int rv = 0;
    if (!rec) {
        sticky_clear(&l->sticky_enc[slot - 1]);
        sticky_clear(&l->sticky_wr[slot - 1]);
    } else {
        rv = sticky_copy(&l->sticky_enc[slot - 1], rec->type, rec->data, rec->len);
        if (!rv)
            rv = sticky_copy(&l->sticky_wr[slot - 1], rec->type, rec->data, rec->len);
    }
    pthread_mutex_unlock(&l->mu);
    return rv;
}

/* ---------------------------------------------------------------- encoding */

/* Everything the encoder changes, so that a failed encode can be undone. */
typedef struct enc_mark {
    uint64_t appended, enc_off;
    size_t nsegs, noffs;
    rlg_chunk *tail;
    size_t tail_len, tail_nstk;
    bool tail_closed, tail_seal, tail_boundary;
    uint64_t tail_last;
} enc_mark;

static void enc_save(rlog_log *l, enc_mark *m)
{
    m->appended = l->appended;
    m->enc_off = l->enc_off;
    m->nsegs = l->nsegs;
    m->noffs = l->segs[l->nsegs - 1].noffs;
    m->tail = l->pend_tail;
    if (m->tail) {
        m->tail_len = m->tail->len;
        m->tail_nstk = m->tail->nstk;
        m->tail_closed = m->tail->closed;
        m->tail_seal = m->tail->seal;
        m->tail_boundary = m->tail->boundary;
        m->tail_last = m->tail->last_lsn;
    }
}

static void enc_restore(rlog_log *l, const enc_mark *m)
{
    /* chunks made after the mark */
    rlg_chunk *c = m->tail ? m->tail->next : l->pend_head;
    while (c) {
        rlg_chunk *n = c->next;
        chunk_free(c);
        c = n;
    }
    if (m->tail) {
        m->tail->next = NULL;
        m->tail->len = m->tail_len;
        for (size_t i = m->tail_nstk; i < m->tail->nstk; i++)
            free(m->tail->stk[i].val.data);
        m->tail->nstk = m->tail_nstk;
        m->tail->closed = m->tail_closed;
        m->tail->seal = m->tail_seal;
        m->tail->boundary = m->tail_boundary;
        m->tail->last_lsn = m->tail_last;
    } else {
        l->pend_head = NULL;
    }
    l->pend_tail = m->tail;
    while (l->nsegs > m->nsegs)
        rlg_segment_free(&l->segs[--l->nsegs]);
    l->segs[l->nsegs - 1].noffs = m->noffs;
    l->segs[l->nsegs - 1].last_lsn = l->segs[l->nsegs - 1].first_lsn + m->noffs - 1;
    l->segs[l->nsegs - 1].sealed = false;
    l->appended = m->appended;
    l->enc_off = m->enc_off;
}

/* Appends one encoded record to the encoder's chunk. */
static int enc_record(rlog_log *l, uint16_t type, const void *data, uint32_t len, bool fresh)
{
    rlg_segment *s = &l->segs[l->nsegs - 1];
    rlg_chunk *c = enc_chunk(l, fresh);
    if (!c)
        return RLOG_ENOMEM;
    size_t n = RLG_REC_HEADER_SIZE + (size_t)len;
    if (chunk_reserve(c, n))
        return RLOG_ENOMEM;
    bool user = type >= RLOG_TYPE_USER_MIN;
    uint64_t lsn = user ? l->appended + 1 : l->appended;
    if (user && rlg_segment_push(s, (uint32_t)l->enc_off))
        return RLOG_ENOMEM;
    rlg_rec_encode(c->data + c->len, rlg_salt_state(l->log_id, s->seq), lsn, l->durable, type, data,
                   len);
    c->len += n;
    l->enc_off += n;
    if (user) {
        l->appended = lsn;
        c->last_lsn = lsn;
        s->last_lsn = lsn;
    }
    return 0;
}

static int enc_sticky_upd(rlog_log *l, unsigned slot, const rlog_record *r)
{
    rlg_chunk *c = l->pend_tail;
    rlg_sticky_upd *v = realloc(c->stk, (c->nstk + 1) * sizeof *v);
    if (!v)
        return RLOG_ENOMEM;
    c->stk = v;
    rlg_sticky_upd *u = &c->stk[c->nstk];
    memset(u, 0, sizeof *u);
    u->slot = slot;
    if (sticky_copy(&u->val, r->type, r->data, r->len))
        return RLOG_ENOMEM;
    c->nstk++;
    return sticky_copy(&l->sticky_enc[slot - 1], r->type, r->data, r->len);
}

static int enc_sticky_copies(rlog_log *l)
{
    for (unsigned i = 0; i < RLOG_STICKY_SLOTS; i++) {
        rlg_sticky_val *v = &l->sticky_enc[i];
        if (!v->set)
            continue;
        int rv = enc_record(l, v->type, v->data, v->len, false);
        if (rv)
            return rv;
    }
    return 0;
}

/* Closes the current segment with a seal (unless sealed already) and starts
 * segment seq+1 in the index with its header, followed by the sticky
 * records. */
static int enc_rotate(rlog_log *l)
{
    rlg_segment *s = &l->segs[l->nsegs - 1];
    if (!s->sealed) {
        int rv = enc_record(l, RLG_TYPE_SEAL, NULL, 0, false);
        if (rv)
            return rv;
        l->pend_tail->seal = true;
        l->pend_tail->closed = true;
        s->sealed = true;
    }
    int rv = rlg_segs_reserve(l);
    if (rv)
        return rv;
    uint64_t seq = l->segs[l->nsegs - 1].seq + 1;
    rlg_segment *ns = &l->segs[l->nsegs++];
    memset(ns, 0, sizeof *ns);
    ns->seq = seq;
    ns->first_lsn = l->appended + 1;
    ns->last_lsn = l->appended;
    l->enc_off = 0;
    rlg_chunk *c = chunk_new(l, seq, 0);
    if (!c || chunk_reserve(c, RLG_SEG_HEADER_SIZE))
        return RLOG_ENOMEM;
    c->starts_segment = true;
    rlg_seg_header h = {RLG_FORMAT_VERSION, l->log_id, seq, ns->first_lsn, 0};
    rlg_seg_header_encode(&h, c->data);
    c->len = RLG_SEG_HEADER_SIZE;
    l->enc_off = RLG_SEG_HEADER_SIZE;
    return enc_sticky_copies(l);
}

static bool fits(const rlog_log *l, size_t need)
{
    const rlg_segment *s = &l->segs[l->nsegs - 1];
    return !s->sealed && l->enc_off + need + RLG_TAIL_RESERVE <= l->opts.segment_size;
}

/* Bytes a call's records take in a segment. */
static size_t call_bytes(const rlog_record *recs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += RLG_REC_HEADER_SIZE + (size_t)recs[i].len;
    return total;
}

static int validate(rlog_log *l, const rlog_record *recs, size_t n)
{
    if (!recs || n == 0)
        return rlg_fail(l, RLOG_EINVAL, "append: no records");
    size_t fresh = RLG_SEG_HEADER_SIZE + sticky_bytes(l) + RLG_TAIL_RESERVE;
    for (size_t i = 0; i < n; i++) {
        const rlog_record *r = &recs[i];
        if (r->type < RLOG_TYPE_USER_MIN)
            return rlg_fail(l, RLOG_ERESERVED,
                            "append: record %zu has type %u; types below %u are reserved", i,
                            r->type, RLOG_TYPE_USER_MIN);
        if (r->len > l->opts.max_record || (r->len && !r->data))
            return rlg_fail(l, r->len > l->opts.max_record ? RLOG_ETOOBIG : RLOG_EINVAL,
                            "append: record %zu is %" PRIu32 " bytes; the maximum is %" PRIu32, i,
                            r->len, l->opts.max_record);
        if (r->sticky > RLOG_STICKY_SLOTS)
            return rlg_fail(l, RLOG_EINVAL, "append: record %zu: sticky slot %u out of range", i,
                            r->sticky);
    }
    size_t total = call_bytes(recs, n);
    if (fresh + total > l->opts.segment_size)
        return rlg_fail(l, RLOG_ETOOBIG,
                        "append: the call's %zu records (%zu bytes) and the sticky records do "
                        "not fit in one %" PRIu64 "-byte segment; split the call",
                        n, total, l->opts.segment_size);
    return 0;
}

/* Whether an append may go ahead: not poisoned, no rolled-back callback
 * undelivered, valid records. */
static int admit(rlog_log *l, const rlog_record *recs, size_t n)
{
    if (l->poisoned)
        return l->poisoned;
    if (l->rb_pending)
        return rlg_fail(l, RLOG_ECANCELED,
                        "append refused: a write failed and %" PRIu64
                        " queued asynchronous appends were rolled back; their callbacks are "
                        "still to be delivered (their LSNs will be reused)",
                        l->rb_pending);
    return validate(l, recs, n);
}

/* Encodes a whole append call; on failure nothing of it remains. A call
 * never straddles segments: when it does not fit in what is left of the
 * current one it starts the next (after the sticky copies at its head).
 * So a call's records have consecutive LSNs, the sticky copies always head
 * their segment, and a failed call can never leave a prefix of itself made
 * durable by the seal of the segment before. */
static int encode(rlog_log *l, const rlog_record *recs, size_t n, uint64_t *first)
{
    enc_mark m;
    enc_save(l, &m);
    bool each = l->opts.sync == RLOG_SYNC_EACH;
    size_t total = call_bytes(recs, n);
    int rv = 0;
    if (!fits(l, total)) {
        rv = enc_rotate(l);
        if (!rv && !fits(l, total))
            rv = RLOG_ETOOBIG; /* the sticky copies grew since validate() */
    }
    for (size_t i = 0; i < n && !rv; i++) {
        rv = enc_record(l, recs[i].type, recs[i].data, recs[i].len, each && i == 0);
        if (!rv && i == 0)
            *first = l->appended;
        if (!rv && recs[i].sticky)
            rv = enc_sticky_upd(l, recs[i].sticky, &recs[i]);
    }
    if (rv) {
        enc_restore(l, &m);
        return rlg_fail(l, rv, "append: %s while encoding %zu records",
                        rv == RLOG_ETOOBIG ? "the call and the sticky copies exceed a segment"
                                           : "out of memory",
                        n);
    }
    if (each) {
        l->pend_tail->boundary = true;
        l->pend_tail->closed = true;
    }
    l->dirty = true;
    return 0;
}

/* ---------------------------------------------------------------- waiters */

static void waiter_link_async(rlog_log *l, rlg_waiter *w)
{
    if (l->async_tail)
        l->async_tail->next = w;
    else
        l->async_head = w;
    l->async_tail = w;
}

static void ticket_unlink(rlog_log *l, rlg_waiter *w)
{
    for (rlg_waiter **p = &l->tickets; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            return;
        }
    }
}

/* Marks tickets that are done and unlinks them (their appends' metrics
 * counted here: a woken appender returns without mu); queues the sleeping
 * ones on wakeq for wake_flush. Detaches finished async waiters into *out
 * (to be fired outside mu). `failed_from`: LSNs >= it were lost with
 * `err` (0 = none). */
static void complete(rlog_log *l, uint64_t failed_from, int err, rlg_waiter **out)
{
    for (rlg_waiter **p = &l->tickets; *p;) {
        rlg_waiter *w = *p;
        uint64_t pos = w->need_durable ? l->durable : l->written;
        if (err && w->last >= failed_from) {
            w->status = err;
        } else if (w->last <= pos) {
            w->status = 0;
            l->m.appends++;
            l->m.records += w->last - w->first + 1;
            l->returning++;
        } else {
            p = &w->next;
            continue;
        }
        w->done = true;
        *p = w->next;
        w->next = NULL;
        if (w->sleeping) {
            w->sleeping = false;
            w->wake = RLG_WAKE_DONE;
            w->next = l->wakeq;
            l->wakeq = w;
        }
    }
    /* Lost records fail their waiters now, wherever they are in the queue
     * (their LSNs will be reused: a later durable position must not
     * complete them); callbacks still fire in LSN order, from the head. */
    for (rlg_waiter *w = err ? l->async_head : NULL; w; w = w->next) {
        if (!w->done && w->last >= failed_from) {
            w->done = true;
            w->status = err;
            w->rolled = true;
            l->rb_pending++;
        }
    }
    rlg_waiter **tail = out;
    while (*tail)
        tail = &(*tail)->next;
    while (l->async_head) {
        rlg_waiter *w = l->async_head;
        if (!w->done && w->last <= l->durable)
            w->status = 0;
        else if (!w->done)
            break;
        l->async_head = w->next;
        if (!l->async_head)
            l->async_tail = NULL;
        w->next = NULL;
        *tail = w;
        tail = &w->next;
    }
}

/* Fires the callbacks (mu NOT held); returns how many were rolled back. */
static uint64_t fire(rlg_waiter *list)
{
    uint64_t rolled = 0;
    while (list) {
        rlg_waiter *n = list->next;
        rolled += list->rolled;
        list->cb(list->data, list->status, list->first, list->last);
        free(list);
        list = n;
    }
    return rolled;
}

/* Posts the completed sleeping tickets complete() queued. mu held, released
 * meanwhile: a woken appender returns without taking mu, so it must not
 * find it held (it would sleep again on it), and the next appenders can
 * encode while the others are being woken. The post is the last access to
 * a waiter (its owner may return at once). */
static void wake_flush(rlog_log *l)
{
    rlg_waiter *w = l->wakeq;
    if (!w)
        return;
    l->wakeq = NULL;
    pthread_mutex_unlock(&l->mu);
    while (w) {
        rlg_waiter *n = w->next;
        sem_post(w->sem);
        w = n;
    }
    pthread_mutex_lock(&l->mu);
}

/* ---------------------------------------------------------------- I/O */

static void hist_add(uint64_t *hist, uint64_t v)
{
    unsigned b = 0;
    while (v > 1 && b < RLOG_HIST_BUCKETS - 1) {
        v >>= 1;
        b++;
    }
    hist[b]++;
}

/* fdatasync with metrics; mu NOT held. */
static int timed_sync(rlog_log *l, rlog_file *f, uint64_t records)
{
    uint64_t t0 = l->env->now_ns(l->env);
    int e = rlg_os_fdatasync(l->vfs, f);
    uint64_t dt = l->env->now_ns(l->env) - t0;
    pthread_mutex_lock(&l->mu);
    l->m.syncs++;
    l->m.sync_ns_total += dt;
    if (dt > l->m.sync_ns_max)
        l->m.sync_ns_max = dt;
    hist_add(l->m.sync_us_hist, dt / 1000);
    if (records)
        hist_add(l->m.batch_hist, records);
    pthread_mutex_unlock(&l->mu);
    return e;
}

/* After a failed fdatasync: the page cache may have dropped the data, so
 * nothing written since the last good sync can be trusted. mu held. */
static void poison(rlog_log *l, int e, const char *what, uint64_t seq, rlg_waiter **out)
{
    char name[32];
    rlg_seg_name(seq, name, sizeof name);
    rlg_fail(l, RLOG_EPOISONED,
             "%s %s failed (%s): LSNs after %" PRIu64
             " may be lost; the handle is poisoned, reopen the log to recover",
             what, name, strerror(e), l->durable);
    l->poisoned = RLOG_EPOISONED;
    rlg_unsynced_mark(l, l->durable);
    complete(l, l->durable + 1, RLOG_EPOISONED, out);
    rlg_logf(l, RLOG_LEVEL_ERROR, "%s", l->errmsg);
}

/* Undoes the encoder back to what was written. mu held. */
static void rollback(rlog_log *l, int err, rlg_waiter **out)
{
    free_chunks(l);
    /* drop index entries beyond the written segment and LSN */
    while (l->nsegs > 1 && l->segs[l->nsegs - 1].seq > l->disk_last_seq)
        rlg_segment_free(&l->segs[--l->nsegs]);
    rlg_segment *s = &l->segs[l->nsegs - 1];
    if (l->written + 1 >= s->first_lsn) {
        s->noffs = (size_t)(l->written + 1 - s->first_lsn);
        s->last_lsn = l->written;
    }
    s->sealed = l->wfile == NULL;
    l->enc_off = s->end;
    l->appended = l->written;
    sticky_restore(l);
    l->m.write_errors++;
    complete(l, l->written + 1, err, out);
}

/* Zeroes [off, off+len) of f and syncs, after a failed write. */
static int unwrite(rlog_log *l, rlog_file *f, uint64_t off, size_t len)
{
    int e = rlg_write_zeros(l->vfs, f, off, off + len);
    return e ? e : rlg_os_fdatasync(l->vfs, f);
}

/* Waits for (or makes) a ready spare for segment seq. mu held; may
 * release it. */
static int ensure_spare(rlog_log *l, uint64_t seq)
{
    while (l->spare_state == RLG_SPARE_PREPARING)
        pthread_cond_wait(&l->cond, &l->mu);
    if (l->spare_state == RLG_SPARE_READY && l->spare_seq == seq)
        return 0;
    assert(l->spare_state == RLG_SPARE_NONE);
    l->m.prepare_stalls++;
    return rlg_prepare_spare(l, seq);
}

static int take_spare(rlog_log *l, uint64_t seq, rlog_file **out, bool *recycled)
{
    int rv = ensure_spare(l, seq);
    if (rv)
        return rv;
    *out = l->spare_file;
    *recycled = l->spare_recycled;
    l->spare_file = NULL;
    l->spare_state = RLG_SPARE_NONE;
    l->spare_next = seq + 1;
    pthread_cond_signal(&l->prep_cond);
    return 0;
}

/* A segment file taken for a rotation that failed becomes the spare again
 * (its failed write was zeroed). A spare prepared meanwhile for the segment
 * after it is no longer next: it is closed and removed (best effort; a
 * leftover is replaced when that number is prepared again). mu held. */
static void respare(rlog_log *l, rlog_file *f, uint64_t seq, bool recycled)
{
    if (l->spare_state == RLG_SPARE_READY && l->spare_file) {
        char path[4096];
        rlg_seg_path(l, l->spare_seq, path, sizeof path);
        l->vfs->close(l->vfs, l->spare_file);
        if (l->vfs->unlink(l->vfs, path) == 0)
            l->dir_unsynced = true; /* synced before the next directory operation */
    }
    l->spare_file = f;
    l->spare_seq = seq;
    l->spare_state = RLG_SPARE_READY;
    l->spare_recycled = recycled;
    l->spare_next = seq + 1;
}

/* The header a chunk starts with says the file is recycled: recovery then
 * takes nonzero bytes past the records that hold no record of this segment
 * for stale bytes, not for a torn write (docs/format.md, "Recycled segment
 * files"). */
static void mark_recycled(rlg_chunk *c)
{
    rlg_seg_header h;
    rlg_hdr_status st = rlg_seg_header_decode(c->data, &h);
    assert(st == RLG_HDR_OK);
    (void)st;
    h.flags |= RLG_SEG_RECYCLED;
    rlg_seg_header_encode(&h, c->data);
}

/* Writes one chunk. mu held on entry and exit (released for the I/O).
 * Returns 0, or an RLOG_E* error after rolling back or poisoning. */
static int write_chunk(rlog_log *l, rlg_chunk *c, rlg_waiter **out)
{
    char name[32];
    rlg_seg_name(c->seq, name, sizeof name);
    rlog_file *f = l->wfile;
    bool recycled = false;
    if (c->starts_segment) {
        int rv = take_spare(l, c->seq, &f, &recycled);
        if (rv) {
            rollback(l, rv, out);
            return rv; /* l->errmsg names the segment and the cause */
        }
        if (recycled)
            mark_recycled(c);
    }
    if (c->seal) {
        /* the successor must exist before the seal can be durable */
        int rv = ensure_spare(l, c->seq + 1);
        if (rv) {
            if (c->starts_segment) /* untouched: still the spare for a retry */
                respare(l, f, c->seq, recycled);
            rollback(l, rv, out);
            char why[sizeof l->errmsg];
            memcpy(why, l->errmsg, sizeof why);
            return rlg_fail(l, rv, "rotation after %s: %.400s", name, why);
        }
    }
    assert(f);
    pthread_mutex_unlock(&l->mu);
    uint64_t fsize = 0;
    if (c->starts_segment && l->vfs->size(l->vfs, f, &fsize))
        fsize = l->opts.segment_size; /* only for the shipping view: best effort */
    size_t done = 0;
    int e = l->vfs->pwrite(l->vfs, f, c->data, c->len, c->off, &done);
    if (!e && done != c->len)
        e = EIO; /* short write */
    int ue = e && done ? unwrite(l, f, c->off, done) : 0;
    int se = (!e && c->seal) ? timed_sync(l, f, 0) : 0;
    pthread_mutex_lock(&l->mu);
    l->m.writes++;
    rlg_segment *s = &l->segs[rlg_find_segment_seq(l, c->seq)];
    if (s->seq == c->seq) { /* (a rolled-back rotation's segment is gone from the index) */
        if (c->starts_segment)
            s->size = fsize;
        if (c->off + done > s->size)
            s->size = c->off + done;
    }
    if (e) {
        if (c->starts_segment)
            respare(l, f, c->seq, recycled);
        if (ue) {
            poison(l, ue, "zeroing a failed write in", c->seq, out);
            return RLOG_EPOISONED;
        }
        int err = rlog_from_errno(e);
        rollback(l, err, out);
        return rlg_fail(l, err,
                        "write %s at offset %" PRIu64 " (%zu bytes, LSN %" PRIu64 "..%" PRIu64
                        "): %s; rolled back",
                        name, c->off, c->len, c->first_lsn, c->last_lsn, strerror(e));
    }
    if (c->starts_segment) {
        l->wfile = f;
        l->wfile_seq = c->seq;
        l->disk_last_seq = c->seq;
    }
    l->m.bytes += c->len;
    s->end = c->off + c->len;
    if (c->last_lsn >= c->first_lsn)
        l->written = c->last_lsn;
    for (size_t i = 0; i < c->nstk; i++) {
        rlg_sticky_val *w = &l->sticky_wr[c->stk[i].slot - 1];
        free(w->data);
        *w = c->stk[i].val;
        c->stk[i].val.data = NULL;
    }
    c->nstk = 0;
    if (c->seal) {
        if (se) {
            poison(l, se, "fdatasync (seal) of", c->seq, out);
            return RLOG_EPOISONED;
        }
        l->durable = l->written;
        s->dend = s->end;
        s->dsealed = true;
        l->m.rotations++;
        rlog_file *old = l->wfile;
        l->wfile = NULL;
        pthread_mutex_unlock(&l->mu);
        l->vfs->close(l->vfs, old);
        pthread_mutex_lock(&l->mu);
    }
    return 0;
}

/* Detaches the chunks this round writes. mu held. */
static rlg_chunk *detach(rlog_log *l, bool all)
{
    rlg_chunk *head = l->pend_head, *c = head;
    if (!c)
        return NULL;
    if (!all && l->opts.sync == RLOG_SYNC_EACH) {
        while (c->next && !c->boundary)
            c = c->next;
    } else {
        c = l->pend_tail;
    }
    l->pend_head = c->next;
    if (!l->pend_head)
        l->pend_tail = NULL;
    c->next = NULL;
    for (rlg_chunk *x = head; x; x = x->next)
        x->closed = true;
    return head;
}

int rlg_io_round(rlog_log *l, bool all, bool sync)
{
    assert(l->io_busy);
    rlg_waiter *fired = NULL;
    int rv = l->poisoned;
    uint64_t before = l->durable;
    if (rv)
        return rv;
    rlg_chunk *c = detach(l, all);
    while (c) {
        rlg_chunk *n = c->next;
        rv = write_chunk(l, c, &fired);
        chunk_free(c);
        c = n;
        if (rv) {
            while (c) { /* already failed by rollback: just free */
                n = c->next;
                chunk_free(c);
                c = n;
            }
            break;
        }
    }
    /* after a rolled-back write, still sync what was written before it: the
     * waiters ahead of the lost records complete now, so the callbacks of
     * the lost ones are delivered in this round (in LSN order) */
    bool rolled = rv && !l->poisoned;
    if ((!rv || rolled) && (sync || rolled) && l->written > l->durable && l->wfile) {
        uint64_t target = l->written;
        rlog_file *f = l->wfile;
        rlg_segment *s = &l->segs[rlg_find_segment_seq(l, l->wfile_seq)];
        uint64_t end = s->end; /* io_busy: nothing else writes meanwhile */
        pthread_mutex_unlock(&l->mu);
        int e = timed_sync(l, f, target - before);
        pthread_mutex_lock(&l->mu);
        if (e) {
            poison(l, e, "fdatasync of", l->wfile_seq, &fired);
            rv = RLOG_EPOISONED;
        } else {
            if (target > l->durable)
                l->durable = target;
            s = &l->segs[rlg_find_segment_seq(l, l->wfile_seq)];
            if (s->seq == l->wfile_seq && end > s->dend)
                s->dend = end;
        }
    }
    complete(l, 0, 0, &fired);
    pthread_cond_broadcast(&l->cond);
    wake_flush(l);
    if (fired) {
        l->firing++;
        pthread_mutex_unlock(&l->mu);
        uint64_t n = fire(fired);
        pthread_mutex_lock(&l->mu);
        l->rb_pending -= n;
        l->firing--;
        pthread_cond_broadcast(&l->cond);
    }
    return rv;
}

void rlg_io_release(rlog_log *l, const rlg_waiter *self)
{
    assert(!l->wakeq);
    l->io_busy = false;
    pthread_cond_broadcast(&l->cond); /* the rare waiters: sync, rotate, step, ... */
    if (!l->pend_head)
        return;
    /* hand the token to one sleeping append (not to all: 32 woken threads
     * on 2 cores delay the next round more than they help it) */
    for (rlg_waiter *w = l->tickets; w; w = w->next) {
        if (w != self && w->sleeping) {
            w->sleeping = false;
            w->wake = RLG_WAKE_TOKEN;
            sem_post(w->sem);
            break;
        }
    }
    if (l->bg_io && (l->async_head || !l->tickets))
        pthread_cond_signal(&l->bg_cond); /* work io_turn takes */
}

/* Runs rounds until `done` says so, for rlog_sync and rlog_rotate (a
 * blocking append: drive_ticket). mu held. Waits while another thread does
 * I/O. */
static int drive(rlog_log *l, bool all, bool sync, uint64_t sync_to)
{
    for (;;) {
        if (!l->pend_head && l->durable >= (sync_to < l->appended ? sync_to : l->appended))
            return 0;
        if (l->poisoned)
            return l->poisoned;
        if (l->io_busy) {
            pthread_cond_wait(&l->cond, &l->mu);
            continue;
        }
        l->io_busy = true;
        int rv = rlg_io_round(l, all, sync);
        rlg_io_release(l, NULL);
        if (rv)
            return rv;
    }
}

/* Group commit: the leader of a round, holding the token, lets the
 * appenders the rounds before completed append again first, so that they
 * join this round rather than form the next one (else 2N appenders settle
 * into two groups of N taking turns, half the records per fdatasync). It
 * yields while some are still on their way back, until none is or an
 * average fdatasync's time has passed (or RLG_GATHER_YIELDS yields): an
 * appender that went on to other work delays the round by at most that
 * much, once. The bound is time, not a count of yields without an arrival:
 * on a loaded machine a yield often gives the core to another process, and
 * such a count ended one gather in ten early (15% of rounds short). The
 * appenders that come back meanwhile find the token taken and sleep: one
 * thread yields, not all of them. mu held (released meanwhile). */
static void gather(rlog_log *l)
{
    if (!l->returning)
        return;
    uint64_t limit = l->m.syncs ? l->m.sync_ns_total / l->m.syncs : 0;
    uint64_t t0 = l->env->now_ns(l->env);
    for (unsigned yields = 0; l->returning && yields < RLG_GATHER_YIELDS; yields++) {
        pthread_mutex_unlock(&l->mu);
        sched_yield();
        uint64_t now = l->env->now_ns(l->env);
        pthread_mutex_lock(&l->mu);
        if (now - t0 >= limit)
            break;
    }
}

/* Runs rounds until t's records are done; returns its status. mu held on
 * entry, NOT on return. While another thread does I/O, t sleeps on its
 * semaphore: woken when its records complete (then it returns without
 * taking mu) or when it is handed the token. */
static int drive_ticket(rlog_log *l, rlg_waiter *t)
{
    for (;;) {
        if (t->done)
            break;
        if (l->poisoned) {
            ticket_unlink(l, t);
            t->status = l->poisoned;
            break;
        }
        if (l->io_busy) {
            t->sleeping = true;
            pthread_mutex_unlock(&l->mu);
            while (sem_wait(t->sem) != 0) /* EINTR */
                ;
            if (t->wake == RLG_WAKE_DONE)
                return t->status; /* unlinked, counted: complete() */
            pthread_mutex_lock(&l->mu);
            continue;
        }
        l->io_busy = true;
        bool group = l->opts.sync == RLOG_SYNC_GROUP;
        if (group)
            gather(l);
        l->returning = 0;
        int rv = rlg_io_round(l, false, t->need_durable);
        /* Pipelined group commit: the appends that arrived while that sync
         * ran are written and synced at once, by this thread (already
         * running: a hand-off would wait for a core behind the appenders
         * just woken), without waiting for those the round woke — they come
         * back during this sync and make the next round. Unless fewer are
         * waiting than are on their way back (the disk outran their
         * return): then this thread gathers first (bounded by a sync's
         * time), or the rounds would settle into a tiny one and a large one
         * taking turns, half the records per fdatasync. */
        for (unsigned k = 1; group && !rv && l->pend_head && k < RLG_LEAD_ROUNDS; k++) {
            unsigned waiting = 0;
            for (rlg_waiter *w = l->tickets; w; w = w->next)
                waiting++;
            if (waiting < l->returning)
                gather(l);
            else
                l->m.pipelined++;
            l->returning = 0;
            rv = rlg_io_round(l, false, true);
        }
        rlg_io_release(l, t);
    }
    pthread_mutex_unlock(&l->mu);
    return t->status;
}

/* What every append does first, with mu held: checks the handle and the
 * records (admit), then encodes them into the pending chunk; *first gets
 * the LSN of the first record. */
static int admit_encode(rlog_log *l, const rlog_record *recs, size_t n, uint64_t *first)
{
    int rv = admit(l, recs, n);
    return rv ? rv : encode(l, recs, n, first);
}

int rlog_append(rlog_log *l, const rlog_record *recs, size_t n, uint64_t *first_lsn)
{
    if (l->readonly)
        return RLOG_EINVAL;
    pthread_mutex_lock(&l->mu);
    uint64_t first = 0;
    int rv = admit_encode(l, recs, n, &first);
    if (rv) {
        pthread_mutex_unlock(&l->mu);
        return rv;
    }
    if (l->returning) /* an appender a round completed is back (gather) */
        l->returning--;
    rlg_waiter t = {0};
    sem_t sem;
    sem_init(&sem, 0, 0);
    t.sem = &sem;
    t.first = first;
    t.last = l->appended;
    t.need_durable = l->opts.sync != RLOG_SYNC_NONE;
    t.next = l->tickets;
    l->tickets = &t;
    rv = drive_ticket(l, &t); /* releases mu */
    sem_destroy(&sem);
    if (!rv && first_lsn)
        *first_lsn = t.first;
    return rv;
}

int rlog_append_async(rlog_log *l, const rlog_record *recs, size_t n, rlog_append_cb cb, void *data,
                      uint64_t *first_lsn)
{
    if (l->readonly || !cb)
        return RLOG_EINVAL;
    rlg_waiter *w = calloc(1, sizeof *w);
    if (!w)
        return RLOG_ENOMEM;
    pthread_mutex_lock(&l->mu);
    uint64_t first = 0;
    int rv = admit_encode(l, recs, n, &first);
    if (rv) {
        pthread_mutex_unlock(&l->mu);
        free(w);
        return rv;
    }
    w->first = first;
    w->last = l->appended;
    w->cb = cb;
    w->data = data;
    waiter_link_async(l, w);
    l->m.appends++;
    l->m.records += n;
    if (first_lsn)
        *first_lsn = w->first;
    if (l->bg_io)
        pthread_cond_signal(&l->bg_cond);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int rlog_sync(rlog_log *l)
{
    if (l->readonly)
        return 0;
    pthread_mutex_lock(&l->mu);
    uint64_t target = l->appended;
    int rv = drive(l, true, true, target);
    /* and the callbacks of the async appends up to target have all run
     * (another thread may be delivering them right now) */
    while (!rv && !l->poisoned && (l->firing || (l->async_head && l->async_head->last <= target)))
        pthread_cond_wait(&l->cond, &l->mu);
    pthread_mutex_unlock(&l->mu);
    return rv;
}

int rlog_step(rlog_log *l, int *more)
{
    if (more)
        *more = 0;
    if (l->readonly)
        return 0;
    pthread_mutex_lock(&l->mu);
    int rv = l->poisoned;
    if (!rv && !l->io_busy && (l->pend_head || l->async_head)) {
        l->io_busy = true;
        rv = rlg_io_round(l, true, l->opts.sync != RLOG_SYNC_NONE);
        rlg_io_release(l, NULL);
    } else if (!rv && l->spare_state == RLG_SPARE_NONE) {
        rv = rlg_prepare_spare(l, l->spare_next);
    }
    if (more)
        *more = !l->poisoned && (l->pend_head != NULL || l->spare_state == RLG_SPARE_NONE ||
                                 (l->async_head && l->opts.sync != RLOG_SYNC_NONE));
    pthread_mutex_unlock(&l->mu);
    return rv;
}

int rlog_rotate(rlog_log *l)
{
    if (l->readonly)
        return RLOG_EINVAL;
    pthread_mutex_lock(&l->mu);
    int rv = l->poisoned;
    if (!rv) {
        enc_mark m;
        enc_save(l, &m);
        rv = enc_rotate(l);
        if (rv) {
            enc_restore(l, &m);
            rv = rlg_fail(l, rv, "rotate: out of memory");
        }
    }
    if (!rv)
        rv = drive(l, true, true, l->appended);
    pthread_mutex_unlock(&l->mu);
    return rv;
}

/* ------------------------------------------------------ background thread */

/* A background thread of the handle: under mu, until bg_stop, `turn`
 * does one piece of work (true) or finds none (false: the thread waits
 * on cond). */
static void bg_loop(rlog_log *l, bool (*turn)(rlog_log *l), pthread_cond_t *cond)
{
    pthread_mutex_lock(&l->mu);
    while (!l->bg_stop) {
        if (!turn(l))
            pthread_cond_wait(cond, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
}

/* The I/O thread's turn: writes and syncs what asynchronous appends queued. */
static bool io_turn(rlog_log *l)
{
    /* blocking appends drive their own rounds (drive_ticket): leading them too
     * would start rounds before the group has gathered */
    if (!l->pend_head || l->poisoned || l->io_busy || (!l->async_head && l->tickets))
        return false;
    l->io_busy = true;
    rlg_io_round(l, l->opts.sync != RLOG_SYNC_EACH, l->opts.sync != RLOG_SYNC_NONE);
    rlg_io_release(l, NULL);
    return true;
}

static void *bg_main(void *arg)
{
    rlog_log *l = arg;
    bg_loop(l, io_turn, &l->bg_cond);
    return NULL;
}

/* The preparer's turn: makes the next segment ready off the hot path.
 * After a failed preparation the next rotation retries inline (and
 * reports the error to its caller); the thread does not spin. */
static bool prep_turn(rlog_log *l)
{
    if (l->poisoned || l->spare_failed || l->spare_state != RLG_SPARE_NONE)
        return false;
    rlg_prepare_spare(l, l->spare_next);
    return true;
}

static void *prep_main(void *arg)
{
    rlog_log *l = arg;
    bg_loop(l, prep_turn, &l->prep_cond);
    return NULL;
}

int rlg_bg_start(rlog_log *l, bool io)
{
    l->bg_stop = false;
    if (io && pthread_create(&l->bg, NULL, bg_main, l) != 0)
        return RLOG_ENOMEM;
    if (pthread_create(&l->prep, NULL, prep_main, l) != 0) {
        if (io) {
            pthread_mutex_lock(&l->mu);
            l->bg_stop = true;
            pthread_cond_broadcast(&l->bg_cond);
            pthread_mutex_unlock(&l->mu);
            pthread_join(l->bg, NULL);
        }
        return RLOG_ENOMEM;
    }
    l->bg_io = io;
    l->bg_running = true;
    return 0;
}

void rlg_bg_stop(rlog_log *l)
{
    if (!l->bg_running)
        return;
    pthread_mutex_lock(&l->mu);
    l->bg_stop = true;
    pthread_cond_broadcast(&l->bg_cond);
    pthread_cond_broadcast(&l->prep_cond);
    pthread_mutex_unlock(&l->mu);
    if (l->bg_io)
        pthread_join(l->bg, NULL);
    pthread_join(l->prep, NULL);
    l->bg_running = false;
    l->bg_io = false;
}

void rlg_drop_pending(rlog_log *l, void (*drop)(void *data))
{
    free_chunks(l);
    while (l->async_head) {
        rlg_waiter *w = l->async_head;
        l->async_head = w->next;
        if (drop)
            drop(w->data);
        free(w);
    }
    l->async_tail = NULL;
}

/* Fails everything still queued (at close). mu held. */
void rlg_fail_pending(rlog_log *l, int err)
{
    rlg_waiter *fired = NULL;
    free_chunks(l);
    complete(l, l->durable + 1, err, &fired);
    wake_flush(l);
    pthread_mutex_unlock(&l->mu);
    fire(fired);
    pthread_mutex_lock(&l->mu);
}

/* poison() while nothing is pending (at close): no waiter to complete. */
static int poison_idle(rlog_log *l, int e, const char *what, uint64_t seq)
{
    rlg_waiter *fired = NULL;
    poison(l, e, what, seq, &fired);
    assert(!fired && !l->wakeq);
    return RLOG_EPOISONED;
}

/* Appends a checkpoint record proving everything durable (at close). mu
 * held, nothing pending, durable == appended.
 *
 * The checkpoint is left out where it would not leave a seal's room before
 * the end of the file: recovery takes an unsealed segment that ends less
 * than that after its last record for one cut short from outside
 * (docs/format.md, "A segment cut short"). Only a checkpoint ends past
 * size - RLG_TAIL_RESERVE (a user record leaves room for a seal and a
 * checkpoint), so the last record there is the checkpoint of an earlier
 * close and no user record follows it: it already proves everything (found
 * by the soak after a failed seal: log seed 40078725, raft seed 50194902). */
int rlg_write_checkpoint(rlog_log *l)
{
    if (!l->dirty || !l->wfile || l->poisoned)
        return 0;
    rlg_segment *s = &l->segs[l->nsegs - 1];
    if (s->end + RLG_REC_HEADER_SIZE + RLG_SEAL_SIZE > s->size) {
        l->dirty = false;
        return 0;
    }
    uint8_t rec[RLG_REC_HEADER_SIZE];
    rlg_rec_encode(rec, rlg_salt_state(l->log_id, s->seq), l->appended, l->durable,
                   RLG_TYPE_CHECKPOINT, NULL, 0);
    size_t done = 0;
    int e = l->vfs->pwrite(l->vfs, l->wfile, rec, sizeof rec, s->end, &done);
    if (!e && done != sizeof rec)
        e = EIO;
    if (s->end + done > s->size)
        s->size = s->end + done;
    if (e) {
        /* the zeroing's sync failing is a failed sync like any other: bytes
         * written before it (a new segment's header, found by the soak: log
         * seed 40093821) may never reach the disk */
        int ue = done ? unwrite(l, l->wfile, s->end, done) : 0;
        if (ue)
            return poison_idle(l, ue, "zeroing a failed checkpoint write in", s->seq);
        return rlg_fail(l, rlog_from_errno(e), "close: writing the checkpoint failed: %s",
                        strerror(e));
    }
    e = rlg_os_fdatasync(l->vfs, l->wfile);
    if (e)
        return poison_idle(l, e, "fdatasync (checkpoint) of", s->seq);
    s->end += sizeof rec;
    s->dend = s->end;
    l->enc_off = s->end;
    l->dirty = false;
    return 0;
}
