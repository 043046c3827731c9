/* Readers: get by LSN, iterators, paginated replay. They look positions up
 * in the segment index under the log's mutex, then read through their own
 * file handles without it, so they run concurrently with the writer. Every
 * record read is checked against its checksum. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log_internal.h"

#define RLG_READ_BUF (256u << 10)

struct rlog_iter {
    rlog_log *log;
    uint64_t next;
    unsigned flags;
    rlog_file *f;
    uint64_t fseq;
    uint8_t *buf;
    size_t cap, len; /* buf holds len bytes of segment fseq from offset boff */
    uint64_t boff;
    uint64_t bvalid; /* buffered bytes below this offset were written when read */
};

typedef struct rec_pos {
    uint64_t seq, off, log_id;
    uint64_t wend; /* the segment's written end (bytes beyond may change) */
} rec_pos;

/* Where record lsn is, if visible. mu NOT held. */
static int locate(rlog_log *l, uint64_t lsn, unsigned flags, rec_pos *p)
{
    pthread_mutex_lock(&l->mu);
    uint64_t limit = (flags & RLOG_READ_DURABLE) ? l->durable : l->written;
    int rv = 0;
    long i = -1;
    if (lsn > limit)
        rv = RLOG_EEND;
    else if (lsn < l->first || (i = rlg_find_segment(l, lsn)) < 0)
        rv = RLOG_ENOTFOUND;
    if (!rv) {
        const rlg_segment *s = &l->segs[i];
        p->seq = s->seq;
        p->off = s->offs[lsn - s->first_lsn];
        p->log_id = l->log_id;
        p->wend = s->end;
    }
    pthread_mutex_unlock(&l->mu);
    return rv;
}

static int read_fail(rlog_log *l, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int read_fail(rlog_log *l, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&l->mu);
    snprintf(l->errmsg, sizeof l->errmsg, "%s", msg);
    pthread_mutex_unlock(&l->mu);
    return err;
}

static int open_seg(rlog_log *l, uint64_t seq, rlog_file **f)
{
    char path[4096];
    rlg_seg_path(l, seq, path, sizeof path);
    int e = l->vfs->open(l->vfs, path, RLOG_VFS_RDONLY, f);
    if (e == ENOENT)
        return read_fail(l, RLOG_ENOTFOUND, "segment %s was deleted", path);
    if (e)
        return read_fail(l, rlog_from_errno(e), "opening %s: %s", path, strerror(e));
    return 0;
}

/* Checks a record whose header+payload are at rec (rec_len bytes
 * available). */
static int check_record(rlog_log *l, const rec_pos *p, uint64_t lsn, const uint8_t *rec,
                        size_t avail, rlg_rec_header *h)
{
    char name[32];
    rlg_seg_name(p->seq, name, sizeof name);
    if (avail < RLG_REC_HEADER_SIZE)
        return read_fail(l, RLOG_ECORRUPT,
                         "%s offset %" PRIu64 ": record LSN %" PRIu64 " is cut short", name, p->off,
                         lsn);
    rlg_rec_why why = rlg_rec_check(rec, avail, rlg_salt_state(p->log_id, p->seq), lsn, h);
    if (why != RLG_REC_OK || h->type < RLOG_TYPE_USER_MIN) {
        char what[128];
        rlg_rec_why_str(why == RLG_REC_OK ? RLG_REC_TYPE : why, h, what, sizeof what);
        return read_fail(l, RLOG_ECORRUPT,
                         "%s offset %" PRIu64 ": record LSN %" PRIu64
                         " fails its checksum on read (%s)",
                         name, p->off, lsn, what);
    }
    return 0;
}

static int pread_all(rlog_log *l, rlog_file *f, uint64_t seq, void *buf, size_t n, uint64_t off,
                     size_t *got)
{
    int e = l->vfs->pread(l->vfs, f, buf, n, off, got);
    if (e) {
        char name[32];
        rlg_seg_name(seq, name, sizeof name);
        return read_fail(l, rlog_from_errno(e), "pread %s at offset %" PRIu64 ": %s", name, off,
                         strerror(e));
    }
    return 0;
}

int rlog_get(rlog_log *l, uint64_t lsn, unsigned flags, rlog_record *rec, void **payload)
{
    *payload = NULL;
    rec_pos p;
    int rv = locate(l, lsn, flags, &p);
    if (rv)
        return rv == RLOG_EEND ? RLOG_ENOTFOUND : rv;
    rlog_file *f = NULL;
    if ((rv = open_seg(l, p.seq, &f)) != 0)
        return rv;
    uint8_t hdr[RLG_REC_HEADER_SIZE];
    size_t got = 0;
    uint8_t *buf = NULL;
    rv = pread_all(l, f, p.seq, hdr, sizeof hdr, p.off, &got);
    if (!rv) {
        uint32_t len = rlg_rec_len_at(hdr);
        buf = malloc(RLG_REC_HEADER_SIZE + (size_t)len);
        if (!buf)
            rv = RLOG_ENOMEM;
        else
            rv = pread_all(l, f, p.seq, buf, RLG_REC_HEADER_SIZE + (size_t)len, p.off, &got);
    }
    l->vfs->close(l->vfs, f);
    rlg_rec_header h;
    if (!rv)
        rv = check_record(l, &p, lsn, buf, got, &h);
    if (rv) {
        free(buf);
        return rv;
    }
    memmove(buf, buf + RLG_REC_HEADER_SIZE, h.len);
    rec->lsn = lsn;
    rec->type = h.type;
    rec->sticky = 0;
    rec->len = h.len;
    rec->data = buf;
    *payload = buf;
    return 0;
}

int rlog_iter_open(rlog_log *l, uint64_t from, unsigned flags, rlog_iter **out)
{
    rlog_iter *it = calloc(1, sizeof *it);
    if (!it)
        return RLOG_ENOMEM;
    it->log = l;
    it->flags = flags;
    pthread_mutex_lock(&l->mu);
    it->next = from < l->first ? l->first : from;
    l->iters_open++;
    pthread_mutex_unlock(&l->mu);
    *out = it;
    return 0;
}

/* Makes [off, off+n) of segment seq present in the buffer. Read-ahead
 * past the segment's written end is not trusted later: those bytes (zeros
 * of a pre-written segment) may have been written since. */
static int fill(rlog_iter *it, const rec_pos *p, uint64_t off, size_t n)
{
    uint64_t seq = p->seq;
    if (it->f && it->fseq == seq && off >= it->boff && off + n <= it->bvalid)
        return 0;
    rlog_log *l = it->log;
    if (!it->f || it->fseq != seq) {
        if (it->f)
            l->vfs->close(l->vfs, it->f);
        it->f = NULL;
        it->len = 0;
        int rv = open_seg(l, seq, &it->f);
        if (rv)
            return rv;
        it->fseq = seq;
    }
    size_t want = n > RLG_READ_BUF ? n : RLG_READ_BUF;
    if (want > it->cap) {
        uint8_t *b = realloc(it->buf, want);
        if (!b)
            return RLOG_ENOMEM;
        it->buf = b;
        it->cap = want;
    }
    it->boff = off;
    it->len = 0;
    int rv = pread_all(l, it->f, seq, it->buf, want, off, &it->len);
    uint64_t end = it->boff + it->len;
    it->bvalid = rv ? it->boff : (end < p->wend ? end : p->wend);
    return rv;
}

int rlog_iter_next(rlog_iter *it, rlog_record *rec)
{
    rlog_log *l = it->log;
    rec_pos p;
    int rv = locate(l, it->next, it->flags, &p);
    if (rv)
        return rv;
    if ((rv = fill(it, &p, p.off, RLG_REC_HEADER_SIZE)) != 0)
        return rv;
    const uint8_t *h0 = it->buf + (p.off - it->boff);
    size_t need = RLG_REC_HEADER_SIZE + (size_t)rlg_rec_len_at(h0);
    if ((rv = fill(it, &p, p.off, need)) != 0)
        return rv;
    const uint8_t *r = it->buf + (p.off - it->boff);
    size_t avail = it->len - (size_t)(p.off - it->boff);
    rlg_rec_header h;
    if ((rv = check_record(l, &p, it->next, r, avail, &h)) != 0)
        return rv;
    rec->lsn = it->next;
    rec->type = h.type;
    rec->sticky = 0;
    rec->len = h.len;
    rec->data = r + RLG_REC_HEADER_SIZE;
    it->next++;
    return 0;
}

void rlog_iter_close(rlog_iter *it)
{
    if (!it)
        return;
    rlog_log *l = it->log;
    if (it->f)
        l->vfs->close(l->vfs, it->f);
    pthread_mutex_lock(&l->mu);
    l->iters_open--;
    pthread_mutex_unlock(&l->mu);
    free(it->buf);
    free(it);
}

int rlog_replay(rlog_log *l, uint64_t from, size_t max_records, size_t max_bytes, unsigned flags,
                rlog_replay_cb cb, void *data, uint64_t *next_lsn)
{
    rlog_iter *it;
    int rv = rlog_iter_open(l, from, flags, &it);
    if (rv)
        return rv;
    size_t nrec = 0, nbytes = 0;
    rlog_record rec;
    while ((!max_records || nrec < max_records) && (!max_bytes || nbytes < max_bytes)) {
        rv = rlog_iter_next(it, &rec);
        if (rv == RLOG_EEND) {
            rv = 0;
            break;
        }
        if (rv)
            break;
        nrec++;
        nbytes += rec.len;
        rv = cb(data, &rec);
        if (rv)
            break;
    }
    if (next_lsn)
        *next_lsn = it->next;
    rlog_iter_close(it);
    return rv;
}
