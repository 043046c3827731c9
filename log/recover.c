/*
 * Recovery: decides, from the bytes of a log directory alone, which segments
 * and records the log holds and where its tail ends — or that it is corrupt.
 * It reads through the vfs only and never writes; the writer applies the
 * decision (log/recover.h).
 *
 * The reasoning, in short (docs/format.md, "Recovery", has it in full):
 *
 *  - Segments are a contiguous run of sequence numbers. The last one with a
 *    valid header (L) is the active or last sealed segment; files after it
 *    are spares (zero header, or a torn start after a sealed L).
 *  - Every segment before L was sealed, and its seal fdatasync'ed, before its
 *    successor got a header: any bad byte before its seal is corruption.
 *  - In L, records are valid up to a first bad position p. What follows p
 *    may hold valid records persisted out of order. Each record carries the
 *    LSN that was durable when it was written (its witness), so a valid
 *    record past p whose witness is >= the LSN expected at p proves that the
 *    damaged record had been acknowledged durable: corruption. Otherwise the
 *    damage is a torn tail, cut at p.
 *  - A spare holds records only once its predecessor's seal was synced; a
 *    spare after a sealed L whose header is torn is a torn start unless one
 *    of its records proves the header was durable.
 *
 * Files are streamed through one buffer of RCV_BUF_SIZE bytes; records
 * larger than it have their CRC computed piecewise.
 */
#include "log/recover.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "os/array.h"

#define RCV_BUF_SIZE (1u << 20)

/* One segment file of the directory. */
typedef struct rcv_file {
    uint64_t seq;
    uint64_t size;
    rlg_hdr_status hst;
    rlg_seg_header hdr;
    char name[32];
} rcv_file;

/* What a scan for candidates (structurally valid records) found. */
typedef struct rcv_cands {
    uint64_t count;               /* user records */
    uint64_t nlog;                /* seal and checkpoint records */
    uint64_t nckpt;               /* checkpoint records */
    uint64_t lsn_first, lsn_last; /* LSN range of the user records */
    bool has_w;                   /* w* below are set */
    uint64_t w;                   /* highest LSN proven durable by a candidate */
    uint64_t w_lsn, w_off;        /* the candidate proving it */
    uint16_t w_type;
    uint64_t z_end;    /* one past the last nonzero byte (or the start) */
    uint64_t cand_end; /* one past the last candidate (or the start) */
} rcv_cands;

typedef struct rcv {
    rlog_vfs *vfs;
    const char *dir;
    bool repair;
    bool readonly; /* the decision is only reported (messages say "would") */
    rlg_recovery *out;
    rlog_open_report *rep;
    rcv_file *files;
    size_t nfiles;
    size_t nkeep;   /* files[nkeep..] are dropped (repair) */
    size_t gap;     /* files[gap..] lie beyond missing segment files (or SIZE_MAX) */
    size_t last;    /* L: index of the last kept file with a valid header */
    bool damaged;   /* repair: a damage was found and the message names it */
    bool stop;      /* repair: the log was cut; nothing after matters */
    uint64_t proof; /* highest witness among kept records */
    /* a valid run marker (docs/format.md, "The run marker") for segment
     * run.seq: witnesses of records at offsets >= run.from_off there prove
     * nothing at or after run.from_lsn */
    bool run_on;
    rlg_run_mark run;
    uint64_t records; /* kept records, all types */
    char *path;
    size_t path_cap;
    uint8_t *buf;
    size_t cap;
    rlog_file *f; /* the open file (files[fi]) and the window of it in buf */
    size_t fi;
    uint64_t boff;
    size_t blen;
} rcv;

int rlg_read_rec_header(rlog_vfs *v, rlog_file *f, uint64_t off, rlg_rec_header *h)
{
    uint8_t b[RLG_REC_HEADER_SIZE];
    size_t got = 0;
    int e = v->pread(v, f, b, sizeof b, off, &got);
    if (!e && got != sizeof b)
        e = EIO;
    if (!e)
        rlg_rec_header_decode(b, h);
    return e;
}

int rlg_segment_reserve(rlg_segment *s, size_t more)
{
    if (more > SIZE_MAX - s->noffs)
        return RLOG_ENOMEM;
    return rlg_array_grow(&s->offs, &s->capoffs, s->noffs + more, sizeof *s->offs, 64);
}

int rlg_segment_push(rlg_segment *s, uint32_t off)
{
    int rv = rlg_segment_reserve(s, 1);
    if (!rv)
        s->offs[s->noffs++] = off;
    return rv;
}

void rlg_segment_free(rlg_segment *s)
{
    free(s->offs);
    s->offs = NULL;
    s->noffs = s->capoffs = 0;
}

void rlg_recovery_free(rlg_recovery *r)
{
    for (size_t i = 0; i < r->nsegs; i++)
        rlg_segment_free(&r->segs[i]);
    free(r->segs);
    free(r->spares);
    memset(r, 0, sizeof *r);
}

/* ---- messages ---- */

__attribute__((format(printf, 3, 4))) static int rcv_fail(rcv *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->rep->message, sizeof r->rep->message, fmt, ap);
    va_end(ap);
    return rc;
}

/* Points the report at file i, offset off (where the cut or damage is). */
static void rcv_at(rcv *r, size_t i, uint64_t off)
{
    r->rep->segment_seq = r->files[i].seq;
    snprintf(r->rep->segment_name, sizeof r->rep->segment_name, "%s", r->files[i].name);
    r->rep->offset = off;
}

/* A failed vfs call on the open file (off = UINT64_MAX: no offset). */
static int rcv_io_fail(rcv *r, int err, const char *op, uint64_t off)
{
    char eb[128];
    const char *es = strerror_r(err, eb, sizeof eb);
    const char *name = r->files[r->fi].name;
    if (off == UINT64_MAX)
        return rcv_fail(r, rlog_from_errno(err), "%s %s/%s: %s", op, r->dir, name, es);
    return rcv_fail(r, rlog_from_errno(err), "%s %s/%s at offset %" PRIu64 ": %s", op, r->dir, name,
                    off, es);
}

/*
 * Corruption at file i, offset off. Without repair: fails with
 * RLOG_ECORRUPT and a message "corruption in segment X at offset O: ...".
 * With repair: records the first such message and returns 0; the caller
 * then cuts the log.
 */
__attribute__((format(printf, 4, 5))) static int rcv_corrupt(rcv *r, size_t i, uint64_t off,
                                                             const char *fmt, ...)
{
    if (r->damaged)
        return r->repair ? 0 : RLOG_ECORRUPT;
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    rcv_at(r, i, off);
    r->rep->status = RLOG_TAIL_CORRUPT;
    r->damaged = true;
    rcv_fail(r, 0, "corruption in segment %s at offset %" PRIu64 ": %s", r->files[i].name, off,
             detail);
    return r->repair ? 0 : RLOG_ECORRUPT;
}

/* ---- reading ---- */

static int rcv_close(rcv *r)
{
    if (!r->f)
        return 0;
    int err = r->vfs->close(r->vfs, r->f);
    r->f = NULL;
    r->blen = 0;
    return err ? rcv_io_fail(r, err, "close", UINT64_MAX) : 0;
}

/* Makes files[i] the open file (read only). */
static int rcv_open(rcv *r, size_t i)
{
    if (r->f && r->fi == i)
        return 0;
    int rc = rcv_close(r);
    if (rc)
        return rc;
    r->fi = i;
    snprintf(r->path, r->path_cap, "%s/%s", r->dir, r->files[i].name);
    int err = r->vfs->open(r->vfs, r->path, RLOG_VFS_RDONLY, &r->f);
    if (err) {
        r->f = NULL;
        return rcv_io_fail(r, err, "open", UINT64_MAX);
    }
    r->boff = 0;
    r->blen = 0;
    return 0;
}

/* Makes [off, off+need) of the open file readable at *p (need <= cap and
 * off+need <= its size); *avail receives how many bytes from off on are. */
static int rcv_win(rcv *r, uint64_t off, size_t need, const uint8_t **p, size_t *avail)
{
    uint64_t size = r->files[r->fi].size;
    assert(need <= r->cap && off <= size && need <= size - off);
    bool held = off >= r->boff && off - r->boff <= r->blen && need <= r->blen - (off - r->boff);
    if (!held) {
        size_t want = size - off < r->cap ? (size_t)(size - off) : r->cap;
        size_t done = 0;
        r->blen = 0;
        int err = r->vfs->pread(r->vfs, r->f, r->buf, want, off, &done);
        if (err)
            return rcv_io_fail(r, err, "pread", off);
        r->boff = off;
        r->blen = done;
        if (done < need)
            return rcv_fail(r, RLOG_EIO,
                            "pread %s/%s at offset %" PRIu64 ": file ends early (%zu of %zu "
                            "bytes); did it change during recovery?",
                            r->dir, r->files[r->fi].name, off, done, need);
    }
    *p = r->buf + (off - r->boff);
    *avail = r->blen - (size_t)(off - r->boff);
    return 0;
}

static size_t rcv_first_nonzero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && ((uintptr_t)(p + i) & 7u))
        if (p[i++])
            return i - 1;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w)
            break;
    }
    for (; i < n; i++)
        if (p[i])
            return i;
    return n;
}

/* Checks the CRC of the record at off (header already in bounds). */
static int rcv_crc(rcv *r, uint64_t off, uint32_t len, uint32_t salt, bool *ok)
{
    const uint8_t *p;
    size_t avail;
    uint64_t total = RLG_REC_HEADER_SIZE + (uint64_t)len;
    if (total <= r->cap) {
        int rc = rcv_win(r, off, (size_t)total, &p, &avail);
        if (!rc)
            *ok = rlg_rec_crc_ok(p, salt, len);
        return rc;
    }
    uint8_t hdr[RLG_REC_HEADER_SIZE];
    int rc = rcv_win(r, off, sizeof hdr, &p, &avail);
    if (rc)
        return rc;
    memcpy(hdr, p, sizeof hdr);
    uint32_t s = rlg_crc32c_update(salt, hdr + 4, RLG_REC_HEADER_SIZE - 4);
    uint64_t pos = off + RLG_REC_HEADER_SIZE, rem = len;
    while (rem > 0) {
        size_t n = rem < r->cap ? (size_t)rem : r->cap;
        rc = rcv_win(r, pos, n, &p, &avail);
        if (rc)
            return rc;
        s = rlg_crc32c_update(s, p, n);
        pos += n;
        rem -= n;
    }
    *ok = ~s == rlg_get32(hdr);
    return 0;
}

/* Is there a valid record at off of the open file? *why = RLG_REC_OK if so. */
static int rcv_rec(rcv *r, uint64_t off, uint32_t salt, uint64_t e, bool exact, rlg_rec_header *h,
                   int *why)
{
    uint64_t size = r->files[r->fi].size;
    memset(h, 0, sizeof *h);
    if (off > size || size - off < RLG_REC_HEADER_SIZE) {
        *why = RLG_REC_EOF;
        return 0;
    }
    const uint8_t *p;
    size_t avail;
    int rc = rcv_win(r, off, RLG_REC_HEADER_SIZE, &p, &avail);
    if (rc)
        return rc;
    rlg_rec_header_decode(p, h);
    *why = rlg_rec_fields(h, size - off - RLG_REC_HEADER_SIZE, e, exact);
    if (*why) {
        if (exact && rcv_first_nonzero(p, RLG_REC_HEADER_SIZE) == RLG_REC_HEADER_SIZE)
            *why = RLG_REC_ZERO;
        return 0;
    }
    bool ok = false;
    rc = rcv_crc(r, off, h->len, salt, &ok);
    if (!rc && !ok)
        *why = RLG_REC_CRC;
    return rc;
}

/* What the valid record h at offset off of the open file proves durable:
 * every LSN <= the result. A user record or a seal: its witness; a
 * checkpoint: its own LSN (it is written after everything up to it was
 * synced). Within the range of a run marker, a replica's write batch that
 * may not have been synced: nothing from the marker's LSN on (the witness
 * describes the leader's disk; the batch itself may be torn). */
static uint64_t rcv_claim(const rcv *r, uint64_t off, const rlg_rec_header *h)
{
    uint64_t w = h->type == RLG_TYPE_CHECKPOINT ? h->lsn : h->durable;
    if (r->run_on && r->files[r->fi].seq == r->run.seq && off >= r->run.from_off &&
        w >= r->run.from_lsn)
        w = r->run.from_lsn - 1;
    return w;
}

/* ---- candidates: valid records anywhere in a region ---- */

static void rcv_cand_add(rcv_cands *c, const rlg_rec_header *h, uint64_t off, uint64_t w)
{
    if (h->type == RLG_TYPE_CHECKPOINT)
        c->nckpt++;
    if (!c->has_w || w > c->w) {
        c->has_w = true;
        c->w = w;
        c->w_lsn = h->lsn;
        c->w_off = off;
        c->w_type = h->type;
    }
    if (h->type < RLOG_TYPE_USER_MIN) {
        c->nlog++;
        return;
    }
    if (c->count == 0 || h->lsn < c->lsn_first)
        c->lsn_first = h->lsn;
    if (c->count == 0 || h->lsn > c->lsn_last)
        c->lsn_last = h->lsn;
    c->count++;
}

/* Checks the positions [from, to] for a candidate; *next = where to go on
 * (past the candidate found, or to + 1). */
static int rcv_cand_run(rcv *r, uint64_t from, uint64_t to, uint32_t salt, uint64_t e, rcv_cands *c,
                        uint64_t *next)
{
    for (uint64_t q = from; q <= to; q++) {
        rlg_rec_header h;
        int why;
        int rc = rcv_rec(r, q, salt, e, false, &h, &why);
        if (rc)
            return rc;
        if (why == RLG_REC_OK) {
            rcv_cand_add(c, &h, q, rcv_claim(r, q, &h));
            *next = q + RLG_REC_HEADER_SIZE + h.len;
            if (*next > c->z_end)
                c->z_end = *next;
            if (*next > c->cand_end)
                c->cand_end = *next;
            return 0;
        }
    }
    *next = to + 1;
    return 0;
}

/*
 * Scans [from, size) of file i for candidates under its own salt: records
 * that are valid except for their position (user LSN >= e, log records LSN
 * >= e-1). Runs of zeros are skipped: a record header is never all zero.
 */
static int rcv_cands_scan(rcv *r, size_t i, uint64_t from, uint64_t e, rcv_cands *c)
{
    memset(c, 0, sizeof *c);
    c->z_end = c->cand_end = from;
    int rc = rcv_open(r, i);
    if (rc)
        return rc;
    uint32_t salt = rlg_salt_state(r->out->log_id, r->files[i].seq);
    uint64_t size = r->files[i].size, q = from;
    while (q < size) {
        const uint8_t *p;
        size_t avail,
            need = size - q < RLG_REC_HEADER_SIZE ? (size_t)(size - q) : RLG_REC_HEADER_SIZE;
        rc = rcv_win(r, q, need, &p, &avail);
        if (rc)
            return rc;
        size_t nz = rcv_first_nonzero(p, avail);
        if (nz == avail) {
            if (avail >= size - q)
                break;
            q += avail - (RLG_REC_HEADER_SIZE - 1); /* avail >= 28 here */
            continue;
        }
        uint64_t n = q + nz; /* a nonzero byte: headers holding it start in [n-27, n] */
        if (n + 1 > c->z_end)
            c->z_end = n + 1;
        uint64_t start = n - q >= RLG_REC_HEADER_SIZE - 1 ? n - (RLG_REC_HEADER_SIZE - 1) : q;
        if (start == n) {
            /* Nonzero bytes from n on (stale bytes of a recycled file, or
             * garbage): every position is tried in turn, as the general
             * step below would, but one that cannot pass rlg_rec_kind is
             * passed over without the full check. */
            size_t k = nz;
            while (k + RLG_REC_HEADER_SIZE <= avail && p[k] && rlg_rec_kind_at(p + k))
                k++;
            if (q + k > c->z_end)
                c->z_end = q + k; /* p[k-1] was nonzero */
            if (k > nz) {
                q += k;
                continue;
            }
        }
        rc = rcv_cand_run(r, start, n, salt, e, c, &q);
        if (rc)
            return rc;
    }
    return 0;
}

/* Adds what a scan found to the report's account of what was cut. */
static void rcv_lost(rcv *r, const rcv_cands *c, uint64_t from)
{
    rlog_open_report *rep = r->rep;
    rep->bytes_cut += c->z_end - from;
    if (c->count == 0)
        return;
    if (rep->records_cut == 0 || c->lsn_first < rep->lsn_cut_first)
        rep->lsn_cut_first = c->lsn_first;
    if (rep->records_cut == 0 || c->lsn_last > rep->lsn_cut_last)
        rep->lsn_cut_last = c->lsn_last;
    rep->records_cut += c->count;
}

/* ---- the directory and the headers ---- */

static int rcv_cmp_seq(const void *a, const void *b)
{
    uint64_t x = ((const rcv_file *)a)->seq, y = ((const rcv_file *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Lists the segment files of the directory, sorted by seq. */
static int rcv_list(rcv *r)
{
    char **names = NULL;
    size_t n = 0;
    int err = r->vfs->list(r->vfs, r->dir, &names, &n);
    if (err == ENOENT)
        return rcv_fail(r, RLOG_ENOTLOG, "directory '%s' does not exist", r->dir);
    if (err == ENOTDIR)
        return rcv_fail(r, RLOG_ENOTLOG, "'%s' is not a directory", r->dir);
    if (err) {
        char eb[128];
        return rcv_fail(r, rlog_from_errno(err), "list %s: %s", r->dir,
                        strerror_r(err, eb, sizeof eb));
    }
    int rc = 0;
    r->files = calloc(n ? n : 1, sizeof *r->files);
    if (!r->files) {
        rc = rcv_fail(r, RLOG_ENOMEM, "out of memory listing %s", r->dir);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;
        if (!strcmp(names[i], RLG_RUN_MARKER))
            r->out->run_file = true;
        if (!rlg_seg_parse_name(names[i], &seq))
            continue;
        rcv_file *f = &r->files[r->nfiles++];
        f->seq = seq;
        rlg_seg_name(seq, f->name, sizeof f->name);
    }
    if (r->nfiles == 0)
        rc = rcv_fail(r, RLOG_ENOTLOG, "directory '%s' holds no segment files", r->dir);
    qsort(r->files, r->nfiles, sizeof *r->files, rcv_cmp_seq);
out:
    rlog_vfs_free_names(names, n);
    return rc;
}

/* Reads the size and the header of file i. */
static int rcv_header(rcv *r, size_t i)
{
    rcv_file *f = &r->files[i];
    int rc = rcv_open(r, i);
    if (rc)
        return rc;
    int err = r->vfs->size(r->vfs, r->f, &f->size);
    if (err)
        return rcv_io_fail(r, err, "size", UINT64_MAX);
    size_t n = f->size < RLG_SEG_HEADER_SIZE ? (size_t)f->size : RLG_SEG_HEADER_SIZE;
    uint8_t hb[RLG_SEG_HEADER_SIZE] = {0};
    size_t done = 0;
    err = n > 0 ? r->vfs->pread(r->vfs, r->f, hb, n, 0, &done) : 0;
    if (err)
        return rcv_io_fail(r, err, "pread", 0);
    if (done < n)
        return rcv_fail(r, RLOG_EIO, "pread %s/%s at offset 0: file ends early (%zu of %zu bytes)",
                        r->dir, f->name, done, n);
    if (n < RLG_SEG_HEADER_SIZE)
        f->hst = rcv_first_nonzero(hb, n) == n ? RLG_HDR_ZERO : RLG_HDR_BAD;
    else
        f->hst = rlg_seg_header_decode(hb, &f->hdr);
    return 0;
}

/* Corruption that even repair cannot fix (nothing would be left). */
static int rcv_unrepairable(rcv *r)
{
    char was[sizeof r->rep->message];
    memcpy(was, r->rep->message, sizeof was);
    r->rep->status = RLOG_TAIL_CORRUPT;
    return rcv_fail(r, RLOG_ECORRUPT, "cannot repair: %s", was);
}

/* No file has a valid header: an interrupted creation, or not. Creation
 * syncs segment 1's header before any record is written, so files whose
 * only nonzero bytes lie in the header area are an interrupted creation (a
 * torn first header); anything beyond it is corruption. */
static int rcv_no_header(rcv *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        rcv_cands c;
        int rc = rcv_cands_scan(r, i, 0, 1, &c);
        if (rc)
            return rc;
        if (c.z_end > RLG_SEG_HEADER_SIZE) {
            rcv_at(r, i, 0);
            r->rep->status = RLOG_TAIL_CORRUPT;
            return rcv_fail(r, RLOG_ECORRUPT,
                            "corruption in segment %s at offset 0: no segment file in '%s' has a "
                            "valid header",
                            r->files[i].name, r->dir);
        }
    }
    return rcv_fail(r, RLOG_ENOTLOG,
                    "directory '%s' holds only empty segment files (an interrupted creation)",
                    r->dir);
}

/* Format version, log identity, and the run of sequence numbers. */
static int rcv_classify(rcv *r)
{
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < r->nfiles; i++) {
        rcv_file *f = &r->files[i];
        if (f->hst == RLG_HDR_VERSION)
            return rcv_fail(r, RLOG_EVERSION,
                            "segment %s/%s has format version %" PRIu32
                            "; this build reads version %u",
                            r->dir, f->name, f->hdr.version, RLG_FORMAT_VERSION);
        if (f->hst == RLG_HDR_OK && first == SIZE_MAX)
            first = i;
    }
    if (first == SIZE_MAX)
        return rcv_no_header(r);
    r->out->log_id = r->rep->log_id = r->files[first].hdr.log_id;
    for (size_t i = first + 1; i < r->nfiles; i++) {
        rcv_file *f = &r->files[i];
        if (f->hst == RLG_HDR_OK && f->hdr.log_id != r->out->log_id)
            return rcv_fail(r, RLOG_EFOREIGN,
                            "segment %s/%s belongs to log %016" PRIx64 ", not to log %016" PRIx64
                            " (of %s)",
                            r->dir, f->name, f->hdr.log_id, r->out->log_id, r->files[first].name);
    }
    r->nkeep = r->nfiles;
    for (size_t i = 1; i < r->nfiles; i++) {
        if (r->files[i].seq == r->files[i - 1].seq + 1)
            continue;
        char miss[32];
        rlg_seg_name(r->files[i - 1].seq + 1, miss, sizeof miss);
        int rc = rcv_corrupt(r, i, 0, "segment file %s is missing (between %s and %s)", miss,
                             r->files[i - 1].name, r->files[i].name);
        if (rc)
            return rc;
        r->nkeep = r->gap = i; /* repair: keep what comes before the hole */
        break;
    }
    r->last = SIZE_MAX;
    for (size_t i = 0; i < r->nkeep; i++)
        if (r->files[i].hst == RLG_HDR_OK)
            r->last = i;
    if (r->last == SIZE_MAX)
        return rcv_unrepairable(r);
    return 0;
}

/* ---- segments ---- */

/* Repair: the log now ends at offset p of segment k (at its first damage,
 * or at its seal, which is dropped); every later file goes. */
static int rcv_repair_cut(rcv *r, size_t k, uint64_t p)
{
    rlg_recovery *out = r->out;
    rlg_segment *s = &out->segs[k];
    assert(k < out->nsegs && p <= s->end);
    if (s->sealed && p < s->end)
        r->records--; /* the seal */
    s->sealed = false;
    s->end = p;
    for (size_t j = k + 1; j < out->nsegs; j++)
        rlg_segment_free(&out->segs[j]);
    out->nsegs = k + 1;
    out->nspares = 0;
    r->last = k;
    if (r->nkeep > k + 1)
        r->nkeep = k + 1;
    r->stop = true;
    rcv_cands c;
    int rc = rcv_cands_scan(r, k, p, s->last_lsn + 1, &c);
    if (rc)
        return rc;
    rcv_lost(r, &c, p);
    out->cut = c.z_end > p;
    out->cut_seq = s->seq;
    out->cut_off = p;
    out->cut_end = c.z_end;
    return 0;
}

/* The header of file i (<= L) must start the next segment of the log. */
static int rcv_seg_header(rcv *r, size_t i)
{
    const rcv_file *f = &r->files[i];
    const rlg_segment *prev = i > 0 ? &r->out->segs[i - 1] : NULL;
    char d[256];
    if (f->hst != RLG_HDR_OK)
        snprintf(d, sizeof d, "%s segment header, but a later segment (%s) has a valid one",
                 f->hst == RLG_HDR_ZERO ? "zero" : "damaged", r->files[r->last].name);
    else if (f->hdr.seq != f->seq)
        snprintf(d, sizeof d, "the header says segment sequence %" PRIu64, f->hdr.seq);
    else if (f->hdr.first_lsn == 0)
        snprintf(d, sizeof d, "the header says first LSN 0");
    else if (prev && f->hdr.first_lsn != prev->last_lsn + 1)
        snprintf(d, sizeof d,
                 "LSN gap: the segment starts at LSN %" PRIu64 ", but %s ends at LSN %" PRIu64,
                 f->hdr.first_lsn, r->files[i - 1].name, prev->last_lsn);
    else
        return 0;
    int rc = rcv_corrupt(r, i, 0, "%s", d);
    if (rc)
        return rc;
    if (!prev)
        return rcv_unrepairable(r);
    assert(prev->sealed && prev->end >= RLG_SEG_HEADER_SIZE + RLG_SEAL_SIZE);
    return rcv_repair_cut(r, i - 1, prev->end - RLG_SEAL_SIZE);
}

/* Reads segment i's records in order from its header on, indexing them,
 * until a seal or the first position that does not hold the next record. */
static int rcv_scan(rcv *r, size_t i, int *why, rlg_rec_header *h)
{
    rlg_segment *s = &r->out->segs[i];
    int rc = rcv_open(r, i);
    if (rc)
        return rc;
    uint32_t salt = rlg_salt_state(r->out->log_id, s->seq);
    uint64_t off = RLG_SEG_HEADER_SIZE, e = s->first_lsn;
    for (;;) {
        rc = rcv_rec(r, off, salt, e, true, h, why);
        if (rc)
            return rc;
        if (*why == RLG_REC_OK && h->type >= RLOG_TYPE_USER_MIN && off > UINT32_MAX)
            *why = RLG_REC_FAR;
        if (*why != RLG_REC_OK)
            break;
        r->records++;
        /* a seal's witness counts as any record's: what was durable when
         * it was written, whether or not the seal itself reached the disk */
        uint64_t w = rcv_claim(r, off, h);
        r->proof = w > r->proof ? w : r->proof;
        if (h->type == RLG_TYPE_SEAL) {
            s->sealed = true;
            off += RLG_SEAL_SIZE;
            break;
        }
        if (h->type >= RLOG_TYPE_USER_MIN) {
            if (rlg_segment_push(s, (uint32_t)off))
                return rcv_fail(r, RLOG_ENOMEM, "out of memory indexing %s", r->files[i].name);
            e++;
        }
        off += RLG_REC_HEADER_SIZE + (uint64_t)h->len;
    }
    s->end = off;
    s->last_lsn = e - 1;
    assert(s->noffs == s->last_lsn + 1 - s->first_lsn);
    return 0;
}

/* Segment i (<= L): its header, its records; before L it must be sealed. */
static int rcv_seg(rcv *r, size_t i)
{
    int rc = rcv_seg_header(r, i);
    if (rc || r->stop)
        return rc;
    rlg_segment *s = &r->out->segs[r->out->nsegs++];
    s->seq = r->files[i].seq;
    s->size = r->files[i].size;
    s->first_lsn = r->files[i].hdr.first_lsn;
    s->last_lsn = s->first_lsn - 1;
    int why;
    rlg_rec_header h;
    rc = rcv_scan(r, i, &why, &h);
    if (rc || i == r->last || s->sealed)
        return rc;
    char what[160];
    rlg_rec_why_str(why, &h, what, sizeof what);
    rc = rcv_corrupt(r, i, s->end, "%s (sealed segment, expected LSN %" PRIu64 ")", what,
                     s->last_lsn + 1);
    return rc ? rc : rcv_repair_cut(r, i, s->end);
}

/* "records LSN a..b found past the damage" or that none was. */
static void rcv_found_str(const rcv_cands *c, char *buf, size_t cap)
{
    if (c->count)
        snprintf(buf, cap, "records LSN %" PRIu64 "..%" PRIu64 " found past the damage",
                 c->lsn_first, c->lsn_last);
    else
        snprintf(buf, cap, "no complete record past the damage");
}

/* "; a replica's run marker leaves ..." when the marker covers segment seq. */
static void rcv_run_note(const rcv *r, uint64_t seq, char *buf, size_t cap)
{
    buf[0] = 0;
    if (r->run_on && r->run.seq == seq)
        snprintf(buf, cap,
                 "; a replica's run marker leaves offsets from %" PRIu64 " (LSN %" PRIu64
                 ") unproven",
                 r->run.from_off, r->run.from_lsn);
}

/* Whether another segment file of the directory (a segment or a spare,
 * both pre-written to the log's size) is larger than files[i]. */
static bool rcv_smaller_than_another(const rcv *r, size_t i)
{
    for (size_t k = 0; k < r->nfiles; k++)
        if (k != i && r->files[k].size > r->files[i].size)
            return true;
    return false;
}

/*
 * A last segment cut short from outside: the writer pre-writes every
 * segment to its full size and never places a record past the file's end
 * (its last record always leaves room for the seal), so a file that ends
 * inside the record expected at p — its header names LSN e but its length
 * runs past the end — or fewer than a seal's bytes after p was truncated by
 * something else, and whatever followed p was lost: damage, not a torn
 * tail (docs/format.md, "A segment cut short").
 *
 * One torn write looks the same: a header that straddles a sector boundary
 * (RLG_TEAR_GRAIN, the smallest sector) can be torn into new LSN, witness
 * and type with an old length. So a length past the end of such a header
 * is taken as a cut only when the file is also smaller than another of the
 * log's files; otherwise it is an invalid record like any torn one (found
 * by the soak: log seed 40056738).
 */
static int rcv_cut_short(rcv *r, uint64_t p, uint64_t e, bool *cut)
{
    uint64_t size = r->files[r->last].size;
    *cut = false;
    char d[200];
    if (size - p < RLG_SEAL_SIZE) {
        snprintf(d, sizeof d, "the file ends %" PRIu64 " bytes after the last record", size - p);
    } else {
        rlg_rec_header h;
        int why;
        uint32_t salt = rlg_salt_state(r->out->log_id, r->files[r->last].seq);
        int rc = rcv_rec(r, p, salt, e, true, &h, &why);
        if (rc)
            return rc;
        uint64_t room = size - p - RLG_REC_HEADER_SIZE;
        if (why != RLG_REC_LEN || h.type < RLOG_TYPE_USER_MIN || h.flags || h.lsn != e ||
            h.durable >= h.lsn || h.len <= room)
            return 0;
        bool straddles = p / RLG_TEAR_GRAIN != (p + RLG_REC_HEADER_SIZE - 1) / RLG_TEAR_GRAIN;
        if (straddles && !rcv_smaller_than_another(r, r->last))
            return 0;
        snprintf(d, sizeof d,
                 "the file ends inside record LSN %" PRIu64 " (%" PRIu64 " of its %" PRIu64
                 " bytes are missing)",
                 e, RLG_REC_HEADER_SIZE + (uint64_t)h.len - (size - p),
                 RLG_REC_HEADER_SIZE + (uint64_t)h.len);
    }
    *cut = true;
    r->rep->lsn_cut_first = e;
    r->rep->lsn_cut_last = e;
    int rc = rcv_corrupt(r, r->last, p,
                         "segment file is %" PRIu64 " bytes, cut short by something outside rlog "
                         "(segments are pre-written to their full size): %s; records from LSN "
                         "%" PRIu64 " on are lost",
                         size, d, e);
    return rc ? rc : rcv_repair_cut(r, r->last, p);
}

/* The end of an unsealed L: clean, a torn tail, or damage proven durable. */
static int rcv_tail(rcv *r)
{
    rlg_segment *s = &r->out->segs[r->last];
    const char *name = r->files[r->last].name;
    uint64_t p = s->end, e = s->last_lsn + 1;
    bool short_file;
    int rc = rcv_cut_short(r, p, e, &short_file);
    if (rc || short_file)
        return rc;
    rcv_cands c;
    rc = rcv_cands_scan(r, r->last, p, e, &c);
    if (rc)
        return rc;
    if (c.has_w && c.w >= e) {
        if (c.w_type == RLG_TYPE_CHECKPOINT)
            rc =
                rcv_corrupt(r, r->last, p,
                            "record LSN %" PRIu64 " is damaged, but a checkpoint at offset %" PRIu64
                            " proves LSN %" PRIu64 " durable",
                            e, c.w_off, c.w);
        else
            rc = rcv_corrupt(r, r->last, p,
                             "record LSN %" PRIu64 " is damaged, but record LSN %" PRIu64
                             " at offset %" PRIu64 " was written when LSN %" PRIu64 " was durable",
                             e, c.w_lsn, c.w_off, c.w);
        return rc ? rc : rcv_repair_cut(r, r->last, p);
    }
    /* A recycled file holds stale bytes of another segment past its
     * records: they never validate under this segment's salt, so only
     * candidates tell of a torn write here (docs/format.md, "Recycled
     * segment files"), and the cut ends past the last one. */
    if (r->files[r->last].hdr.flags & RLG_SEG_RECYCLED)
        c.z_end = c.cand_end;
    if (c.z_end <= p)
        return 0;
    rcv_lost(r, &c, p);
    r->out->cut = true;
    r->out->cut_seq = s->seq;
    r->out->cut_off = p;
    r->out->cut_end = c.z_end;
    r->rep->status = RLOG_TAIL_TORN;
    rcv_at(r, r->last, p);
    char found[128], note[128];
    rcv_found_str(&c, found, sizeof found);
    rcv_run_note(r, s->seq, note, sizeof note);
    rcv_fail(r, 0,
             "torn tail in %s at offset %" PRIu64 " after LSN %" PRIu64 ": %" PRIu64
             " bytes cut (%s, none proven durable%s)",
             name, p, e - 1, c.z_end - p, found, note);
    return 0;
}

/* ---- spares ---- */

/* File j = L+1 after a sealed L: a clean spare, a torn start, or a header
 * that its records prove was durable. */
static int rcv_torn_start(rcv *r, size_t j, const rcv_cands *c)
{
    const rlg_segment *s = &r->out->segs[r->last];
    uint64_t first = s->last_lsn + 1;
    /* only proof of an LSN of this segment shows its header was durable: a
     * checkpoint repeating the predecessor's last LSN proves nothing new
     * (it may itself never have been synced) */
    if (c->has_w && c->w >= first) {
        int rc = rcv_corrupt(r, j, 0,
                             "the segment header is damaged, but the record at offset %" PRIu64
                             " (LSN %" PRIu64 ", type %u) proves LSN %" PRIu64 " durable",
                             c->w_off, c->w_lsn, (unsigned)c->w_type, c->w);
        if (rc)
            return rc;
        /* repair: drop it like a torn start */
    }
    if (c->z_end == 0)
        return 0;
    rcv_lost(r, c, 0);
    r->out->cut = true;
    r->out->cut_seq = r->files[j].seq;
    r->out->cut_off = 0;
    r->out->cut_end = c->z_end;
    if (r->damaged)
        return 0;
    r->rep->status = RLOG_TAIL_TORN;
    rcv_at(r, j, 0);
    char found[128], note[128];
    rcv_found_str(c, found, sizeof found);
    rcv_run_note(r, r->files[j].seq, note, sizeof note);
    rcv_fail(r, 0,
             "torn start of segment %s after sealed %s (last LSN %" PRIu64 "): %" PRIu64
             " bytes cut (%s, none proven durable%s)",
             r->files[j].name, r->files[r->last].name, s->last_lsn, c->z_end, found, note);
    return 0;
}

/* A spare that holds records where none can be. Repair drops it and all
 * after it. */
static int rcv_spare_records(rcv *r, size_t j, const rcv_cands *c)
{
    const rlg_segment *s = &r->out->segs[r->last];
    char why[96];
    if (!s->sealed)
        snprintf(why, sizeof why, "segment %s before it has no seal", r->files[r->last].name);
    else
        snprintf(why, sizeof why, "segment %s before it has no valid header", r->files[j - 1].name);
    int rc;
    if (c->count)
        rc = rcv_corrupt(r, j, c->w_off, "it holds records (LSN %" PRIu64 "..%" PRIu64 "), but %s",
                         c->lsn_first, c->lsn_last, why);
    else
        rc = rcv_corrupt(r, j, c->w_off, "it holds a log record of type %u, but %s",
                         (unsigned)c->w_type, why);
    if (rc)
        return rc;
    r->nkeep = j;
    return 0;
}

/* Files after L: spares, each checked for records under its own salt. */
static int rcv_spares(rcv *r)
{
    rlg_recovery *out = r->out;
    const rlg_segment *s = &out->segs[r->last];
    if (s->sealed && r->last + 1 >= r->nkeep) {
        char next[32];
        rlg_seg_name(s->seq + 1, next, sizeof next);
        int rc = rcv_corrupt(r, r->last, s->end - RLG_SEAL_SIZE,
                             "the segment is sealed but its successor %s is missing", next);
        return rc ? rc : rcv_repair_cut(r, r->last, s->end - RLG_SEAL_SIZE);
    }
    out->spares = calloc(r->nkeep - r->last, sizeof *out->spares);
    if (!out->spares)
        return rcv_fail(r, RLOG_ENOMEM, "out of memory");
    for (size_t j = r->last + 1; j < r->nkeep; j++) {
        rcv_cands c;
        int rc = rcv_cands_scan(r, j, 0, s->last_lsn + 1, &c);
        if (!rc && j == r->last + 1 && s->sealed)
            rc = rcv_torn_start(r, j, &c);
        else if (!rc && c.count + c.nlog > 0)
            rc = rcv_spare_records(r, j, &c);
        if (rc)
            return rc;
        if (j >= r->nkeep)
            break;
        out->spares[out->nspares++] = r->files[j].seq;
    }
    return 0;
}

/* ---- the outcome ---- */

/* Repair: accounts for the files it drops and says what it did. */
static int rcv_repaired(rcv *r)
{
    rlg_recovery *out = r->out;
    const rlg_segment *s = &out->segs[out->nsegs - 1];
    rcv_cands beyond = {0};
    for (size_t j = r->nkeep; j < r->nfiles; j++) {
        rcv_cands c;
        int rc = rcv_cands_scan(r, j, 0, s->last_lsn + 1, &c);
        if (rc)
            return rc;
        rcv_lost(r, &c, 0);
        if (j >= r->gap && c.count) { /* intact records past whole missing files */
            if (!beyond.count || c.lsn_first < beyond.lsn_first)
                beyond.lsn_first = c.lsn_first;
            if (c.lsn_last > beyond.lsn_last)
                beyond.lsn_last = c.lsn_last;
            beyond.count += c.count;
        }
    }
    if (beyond.count && !r->readonly) {
        /* not a damaged tail: records that lost only their predecessors.
         * Repair does not throw them away; the operator decides (rlog
         * repair moves them into its backup first; a read-only repair
         * view only reports them, below). */
        char was[sizeof r->rep->message];
        memcpy(was, r->rep->message, sizeof was);
        return rcv_fail(r, RLOG_ECORRUPT,
                        "cannot repair: %s; the segment files from %s on hold %" PRIu64
                        " intact records (LSN %" PRIu64 "..%" PRIu64
                        ") that repair would drop: restore the missing file, or move those "
                        "files out of the directory to repair without them; nothing was changed",
                        was, r->files[r->gap].name, beyond.count, beyond.lsn_first,
                        beyond.lsn_last);
    }
    char del[320] = "";
    if (r->nkeep < r->nfiles) {
        out->delete_from_seq = r->files[r->nkeep].seq;
        r->rep->drop_from_seq = out->delete_from_seq;
        snprintf(del, sizeof del, "; segment files from %s on %s", r->files[r->nkeep].name,
                 r->readonly ? "would be deleted (read-only: nothing was changed)" : "are deleted");
    }
    if (beyond.count) /* read-only: a writable repair refuses while they are here */
        snprintf(del + strlen(del), sizeof del - strlen(del),
                 "; %" PRIu64 " of them (LSN %" PRIu64 "..%" PRIu64
                 ") lie beyond missing segment file %s: a writable repair refuses to drop "
                 "them while their files are in the directory",
                 beyond.count, beyond.lsn_first, beyond.lsn_last, r->files[r->gap].name);
    const rlog_open_report *rep = r->rep;
    char lost[128] = "no intact record is dropped";
    if (rep->records_cut)
        snprintf(lost, sizeof lost,
                 "%" PRIu64 " intact records are dropped (LSN %" PRIu64 "..%" PRIu64 ")",
                 rep->records_cut, rep->lsn_cut_first, rep->lsn_cut_last);
    char was[sizeof rep->message];
    memcpy(was, rep->message, sizeof was);
    rcv_fail(r, 0, "%s; %s at LSN %" PRIu64 " (%s offset %" PRIu64 "), %s, %" PRIu64 " bytes cut%s",
             was, r->readonly ? "a repair would end the log" : "repaired: the log now ends",
             s->last_lsn, r->files[out->nsegs - 1].name, s->end, lost, rep->bytes_cut, del);
    return 0;
}

/* The report's counts, from whatever was recovered so far. */
static void rcv_counts(rcv *r)
{
    rlg_recovery *out = r->out;
    rlog_open_report *rep = r->rep;
    uint64_t proof = r->proof;
    for (size_t i = 0; i < out->nsegs; i++)
        if (out->segs[i].sealed && out->segs[i].last_lsn > proof)
            proof = out->segs[i].last_lsn;
    out->proven_durable = proof;
    rep->proven_durable = proof;
    uint64_t wit = r->proof;
    for (size_t i = 0; i + 1 < out->nsegs; i++)
        if (out->segs[i].sealed && out->segs[i].last_lsn > wit)
            wit = out->segs[i].last_lsn;
    out->witnessed = wit;
    rep->log_id = out->log_id;
    rep->segments = out->nsegs;
    rep->records = r->records;
    if (out->nsegs > 0) {
        rep->first_lsn = out->segs[0].first_lsn;
        rep->last_lsn = out->segs[out->nsegs - 1].last_lsn;
    }
}

static void rcv_clean_msg(rcv *r)
{
    const rlog_open_report *rep = r->rep;
    const char *s = rep->segments == 1 ? "" : "s";
    if (rep->last_lsn < rep->first_lsn)
        rcv_fail(r, 0, "clean: %" PRIu64 " segment%s, no records (next LSN %" PRIu64 ")",
                 rep->segments, s, rep->first_lsn);
    else
        rcv_fail(r, 0, "clean: %" PRIu64 " segment%s, LSN %" PRIu64 "..%" PRIu64, rep->segments, s,
                 rep->first_lsn, rep->last_lsn);
}

/*
 * The run marker, if any (docs/format.md, "The run marker"). It is honoured
 * when it is valid, belongs to this log and names L or the file after it:
 * a replica writes a batch only into its newest segment (L), or into the
 * segment it starts (L + 1, whose header may then be torn), after the
 * marker's fdatasync. Anything else is ignored, safely:
 *  - a marker for an older segment: its batch was synced before the call
 *    returned, and only a later call wrote a later segment's header;
 *  - an invalid (torn, short, empty) marker: it was being written or
 *    updated, and a batch is written only once the marker is durable, so
 *    no batch was in flight (the one before, if any, was synced).
 */
static int rcv_run_marker(rcv *r)
{
    if (!r->out->run_file)
        return 0;
    snprintf(r->path, r->path_cap, "%s/%s", r->dir, RLG_RUN_MARKER);
    rlog_file *f = NULL;
    int err = r->vfs->open(r->vfs, r->path, RLOG_VFS_RDONLY, &f);
    if (err == ENOENT)
        return 0;
    uint8_t b[RLG_RUN_MARKER_SIZE];
    size_t got = 0;
    if (!err) {
        err = r->vfs->pread(r->vfs, f, b, sizeof b, 0, &got);
        r->vfs->close(r->vfs, f);
    }
    char eb[128];
    if (err)
        return rcv_fail(r, rlog_from_errno(err), "reading %s: %s", r->path,
                        strerror_r(err, eb, sizeof eb));
    rlg_run_mark m;
    rlg_run_status st = rlg_run_mark_decode(b, got, &m);
    if (st == RLG_RUN_OTHER_VERSION)
        return rcv_fail(r, RLOG_EVERSION, "%s has version %" PRIu32 "; this build reads version %u",
                        r->path, rlg_get32(b + 8), RLG_RUN_FORMAT);
    uint64_t L = r->files[r->last].seq;
    if (st != RLG_RUN_OK || m.log_id != r->out->log_id || m.from_lsn == 0 ||
        (m.seq != L && m.seq != L + 1))
        return 0;
    r->run_on = true;
    r->run = m;
    r->out->run_marker = true;
    return 0;
}

static int rcv_run(rcv *r)
{
    int rc = rcv_list(r);
    for (size_t i = 0; !rc && i < r->nfiles; i++)
        rc = rcv_header(r, i);
    if (!rc)
        rc = rcv_classify(r);
    if (!rc)
        rc = rcv_run_marker(r);
    if (rc)
        return rc;
    r->out->segs = calloc(r->last + 1, sizeof *r->out->segs);
    if (!r->out->segs)
        return rcv_fail(r, RLOG_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && !r->stop && i <= r->last; i++)
        rc = rcv_seg(r, i);
    if (!rc && !r->stop && !r->out->segs[r->last].sealed)
        rc = rcv_tail(r);
    if (!rc && !r->stop)
        rc = rcv_spares(r);
    if (rc)
        return rc;
    rcv_counts(r);
    if (r->damaged)
        return rcv_repaired(r);
    if (r->rep->status == RLOG_TAIL_CLEAN)
        rcv_clean_msg(r);
    return 0;
}

int rlg_recover(rlog_vfs *vfs, const char *dir, unsigned mode, rlg_recovery *out,
                rlog_open_report *report)
{
    memset(out, 0, sizeof *out);
    memset(report, 0, sizeof *report);
    rcv r = {.vfs = vfs,
             .dir = dir,
             .repair = (mode & RLG_RECOVER_REPAIR) != 0,
             .readonly = (mode & RLG_RECOVER_READONLY) != 0,
             .out = out,
             .rep = report,
             .gap = SIZE_MAX};
    r.path_cap = strlen(dir) + 40;
    r.path = malloc(r.path_cap);
    r.cap = RCV_BUF_SIZE;
    r.buf = malloc(r.cap);
    int rc = r.path && r.buf ? rcv_run(&r) : rcv_fail(&r, RLOG_ENOMEM, "out of memory");
    int crc = rcv_close(&r);
    if (!rc)
        rc = crc;
    rcv_counts(&r);
    if (rc) {
        if (rc == RLOG_ECORRUPT)
            report->status = RLOG_TAIL_CORRUPT;
        rlg_recovery_free(out);
    }
    free(r.files);
    free(r.buf);
    free(r.path);
    return rc;
}
