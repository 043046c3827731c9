/*
 * A replica's bytes written in place (rlg_replica_append) and the run
 * marker that lets a batch of many runs be synced once (log/replica.c has
 * the overview).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica_internal.h"
#include "os/sync.h"

/* ------------------------------------------------------ where bytes go */

/* The records of one append call, verified. */
typedef struct rp_rec {
    uint64_t off, lsn, proof, e_before;
    uint32_t len, crc;
    uint16_t type;
} rp_rec;

typedef struct rp_recs {
    rp_rec *v;
    size_t n, cap;
    size_t nuser;
} rp_recs;

static int recs_collect(void *arg, const rlg_rv *c)
{
    rp_recs *rs = arg;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 64;
        rp_rec *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return RLOG_ENOMEM;
        rs->v = v;
        rs->cap = cap;
    }
    const rlg_rec_header *h = &c->h;
    bool user = h->type >= RLOG_TYPE_USER_MIN;
    rp_rec *x = &rs->v[rs->n++];
    x->off = c->rec_off;
    x->len = h->len;
    x->crc = h->crc;
    x->type = h->type;
    x->lsn = h->lsn;
    x->proof = h->type == RLG_TYPE_CHECKPOINT ? h->lsn : h->durable;
    x->e_before = user ? h->lsn : h->lsn + 1;
    rs->nuser += user;
    return 0;
}

/* End of run starting at record i: the first later record whose proof
 * reaches the LSN expected where the run starts. */
static size_t run_end(const rp_recs *rs, size_t i)
{
    size_t j = i + 1;
    while (j < rs->n && rs->v[j].proof < rs->v[i].e_before)
        j++;
    return j;
}

static uint64_t rec_end(const rp_rec *x)
{
    return x->off + RLG_REC_HEADER_SIZE + x->len;
}

/* Records [i, j) (written and durable) enter segment s's index, which has
 * room for their offsets. */
static void index_apply(rlg_replica *r, rlg_segment *s, const rp_recs *rs, size_t i, size_t j)
{
    for (size_t k = i; k < j; k++) {
        const rp_rec *x = &rs->v[k];
        if (x->type >= RLOG_TYPE_USER_MIN) {
            assert(s->noffs < s->capoffs);
            s->offs[s->noffs++] = (uint32_t)x->off;
            s->last_lsn = x->lsn;
        }
        s->sealed = x->type == RLG_TYPE_SEAL;
        s->end = rec_end(x);
        r->last_off = x->off;
        r->last_crc = x->crc;
        r->last_lsn = x->lsn;
    }
    if (s->end > s->size) /* the writes extended the file */
        s->size = s->end;
    s->dend = s->end;
    s->dsealed = s->sealed;
    r->l->durable = s->last_lsn;
}

/* Writes a then b at off (one run), then fdatasync. A failed write is
 * zeroed and synced (nothing of it stays reachable); a failed sync, or a
 * failed zeroing, poisons the replica. */
static int write_run(rlg_replica *r, rlog_file *f, uint64_t seq, uint64_t off, const void *a,
                     size_t na, const void *b, size_t nb)
{
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    size_t d1 = 0, d2 = 0;
    int e = na ? v->pwrite(v, f, a, na, off, &d1) : 0;
    if (!e && d1 != na)
        e = EIO;
    if (!e && nb && (e = v->pwrite(v, f, b, nb, off + na, &d2)) == 0 && d2 != nb)
        e = EIO;
    if (e) {
        size_t done = d1 + d2;
        if (done) {
            int ue = rlg_write_zeros(v, f, off, off + done);
            if (!ue)
                ue = rlg_os_fdatasync(v, f);
            if (ue)
                return rlg_rp_poison(r, ue, "zeroing a failed write in", path);
        }
        return rlg_rp_fail(r, rlog_from_errno(e),
                           "write %s at offset %" PRIu64 " (%zu bytes): %s; rolled back", path, off,
                           na + nb, strerror(e));
    }
    e = rlg_os_fdatasync(v, f);
    if (e)
        return rlg_rp_poison(r, e, "fdatasync of", path);
    return 0;
}

/* ------------------------------------------------------------ run marker */

/* A batch within this many bytes after the durable marker's offset (same
 * segment) is covered by it; one further away moves the marker first, so
 * that the range whose witnesses do not count stays short (see
 * docs/durability.md: damage there is cut instead of reported). */
#define RP_RUN_SPAN (1u << 20)

/*
 * Makes sure the run marker (docs/format.md, "The run marker") covers a
 * batch that starts at offset off of segment seq, the next user LSN there
 * being lsn: that the marker on disk is valid and durable and names seq and
 * an offset <= off. The replica knows what it last made durable there
 * (r->run): when that covers the batch (and is less than RP_RUN_SPAN
 * behind), nothing is written. Otherwise the marker is written — (seq, off,
 * lsn) — and fdatasync'ed, and the first time this handle writes it, its
 * directory entry is synced too (the file is then overwritten in place: no
 * directory sync per batch). The marker is only ever written here, when no
 * byte of a batch is unsynced, and always synced before any byte of the
 * batch is written: whatever a crash does to the marker's own write (lost,
 * torn: recovery ignores an invalid marker), no batch was in flight. A
 * failed write leaves the replica as it was (nothing of the batch written);
 * a failed sync poisons it.
 */
static int run_cover(rlg_replica *r, uint64_t seq, uint64_t off, uint64_t lsn)
{
    if (r->run_ok && r->run.seq == seq && r->run.from_off <= off &&
        off - r->run.from_off < RP_RUN_SPAN)
        return 0;
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_path(r, RLG_RUN_MARKER, path, sizeof path);
    rlg_run_mark m = {r->l->log_id, seq, off, lsn};
    uint8_t b[RLG_RUN_MARKER_SIZE];
    rlg_run_mark_encode(&m, b);
    r->run_ok = false; /* until the new content is durable */
    size_t done = 0;
    int e = r->runf ? 0 : v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE, &r->runf);
    if (!e && (e = v->pwrite(v, r->runf, b, sizeof b, 0, &done)) == 0 && done != sizeof b)
        e = EIO;
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "writing %s: %s; nothing of the batch written",
                           path, strerror(e));
    e = rlg_os_fdatasync(v, r->runf);
    if (e)
        return rlg_rp_poison(r, e, "fdatasync of", path);
    if (!r->run_entry) {
        e = rlg_os_sync_dir(v, r->l->dir);
        if (e)
            return rlg_rp_poison(r, e, "directory fsync after creating", path);
        r->run_entry = true;
    }
    r->run = m;
    r->run_ok = true;
    return 0;
}

void rlg_rp_run_drop(rlg_replica *r)
{
    if (r->runf)
        r->l->vfs->close(r->l->vfs, r->runf);
    r->runf = NULL;
    r->run_entry = r->run_ok = false;
    char path[4096];
    rlg_rp_path(r, RLG_RUN_MARKER, path, sizeof path);
    r->l->vfs->unlink(r->l->vfs, path);
}

static int open_segment_file(rlg_replica *r, uint64_t seq, rlog_file **f)
{
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    int e = r->l->vfs->open(r->l->vfs, path, RLOG_VFS_RDWR, f);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "opening %s: %s", path, strerror(e));
    return 0;
}

/* The first segment of an empty replica, built as a new log's first
 * segment is (docs/format.md, "Creation"): under the temporary name,
 * zero-filled, header written and synced, renamed into place, directory
 * synced. A file with a segment name then always had a durable valid
 * header: recovery takes a segment file whose header is bad, with nonzero
 * bytes past it, for corruption when no other file has a valid header — a
 * torn header, or a torn pre-write of zeros (which may leave garbage). */
static int first_segment(rlg_replica *r, uint64_t seq, const uint8_t hdr[RLG_SEG_HEADER_SIZE],
                         rlog_file **out)
{
    rlog_vfs *v = r->l->vfs;
    char tmp[4096], path[4096];
    rlg_rp_path(r, RLG_RECEIVE_TMP, tmp, sizeof tmp);
    rlg_rp_seg_path(r, seq, path, sizeof path);
    rlog_file *t = NULL;
    const char *what = "";
    size_t done = 0;
    int e = rlg_prepare_path(v, r->l->dir, tmp, r->file_size, true, &t, &what);
    if (!e &&
        (what = "writing the header of", e = v->pwrite(v, t, hdr, RLG_SEG_HEADER_SIZE, 0, &done)) ==
            0 &&
        done != RLG_SEG_HEADER_SIZE)
        e = EIO;
    rlg_os_fail fail = {e, what, tmp};
    if (e) {
        rlg_install_discard(v, r->l->dir, t, tmp);
    }
    int rv = e ? RLG_OS_FAILED : rlg_install(v, r->l->dir, t, tmp, path, 0, &fail);
    if (rv)
        return rlg_rp_install_fail(r, rv, &fail, "starting segment", path);
    e = v->open(v, path, RLOG_VFS_RDWR, out);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "opening %s: %s", path, strerror(e));
    return 0;
}

/* A new segment in place: its file ready (reading as zeros, its size
 * durable; not pre-written: zero_ahead); it enters the index once its
 * header is durable. The first segment of an empty replica gets its header
 * before any record (first_segment, pre-written whole); later ones write it
 * with their first run (the log's rotation: the predecessor's seal is
 * durable, the file exists and reads as zeros). */
static int fresh_start(rlg_replica *r, uint64_t seq, uint64_t first_lsn, rlg_segment *ns,
                       uint8_t hdr[RLG_SEG_HEADER_SIZE], bool *hdr_pending)
{
    int rv = rlg_segs_reserve(r->l);
    if (rv)
        return rv;
    memset(ns, 0, sizeof *ns);
    ns->seq = seq;
    ns->first_lsn = first_lsn;
    ns->last_lsn = first_lsn - 1;
    ns->end = RLG_SEG_HEADER_SIZE;
    ns->size = r->file_size;
    ns->dend = RLG_SEG_HEADER_SIZE;
    rlg_seg_header h = {RLG_FORMAT_VERSION, r->l->log_id, seq, first_lsn, 0};
    rlg_seg_header_encode(&h, hdr);
    *hdr_pending = r->l->nsegs > 0;
    rlog_file *f = NULL;
    if (!*hdr_pending) {
        rv = rlg_rp_clear_leftovers(r);
        if (!rv)
            rv = first_segment(r, seq, hdr, &f);
        if (rv)
            return rv;
        r->zero_seq = seq; /* pre-written whole (first_segment) */
        r->zero_to = r->file_size;
        r->l->segs[r->l->nsegs++] = *ns;
        memset(ns, 0, sizeof *ns);
    } else {
        rv = rlg_rp_spare_ensure(r, seq, true);
        if (!rv)
            rv = open_segment_file(r, seq, &f);
        if (rv)
            return rv;
        r->zero_seq = 0; /* nothing written ahead in this file yet */
    }
    r->l->wfile = f;
    return 0;
}

/* Keeps zeros written ahead of offset `end` of segment seq's file f (the
 * end of the records about to be written), RLG_REPLICA_ZERO_AHEAD at a
 * time, so that the fdatasyncs of later runs allocate nothing — without
 * pre-writing the whole file when the segment starts (a pause of the
 * follower's poll thread). The zeros lie past every record, where the file
 * reads as zeros already (pre-written or not): whatever a crash keeps of
 * them, recovery finds the same records and a torn tail at worst, and the
 * run's own fdatasync makes them durable. */
static int zero_ahead(rlg_replica *r, rlog_file *f, uint64_t seq, uint64_t end)
{
    if (r->zero_seq != seq) {
        r->zero_seq = seq;
        r->zero_to = end;
    }
    uint64_t from = r->zero_to > end ? r->zero_to : end;
    if (from >= r->file_size || from - end >= RLG_REPLICA_ZERO_AHEAD / 2)
        return 0;
    uint64_t to =
        r->file_size - from > RLG_REPLICA_ZERO_AHEAD ? from + RLG_REPLICA_ZERO_AHEAD : r->file_size;
    int e = rlg_write_zeros(r->l->vfs, f, from, to);
    if (e) {
        char path[4096];
        rlg_rp_seg_path(r, seq, path, sizeof path);
        return rlg_rp_fail(r, rlog_from_errno(e),
                           "writing zeros ahead of the records in %s at %" PRIu64 "..%" PRIu64
                           ": %s",
                           path, from, to, strerror(e));
    }
    r->zero_to = to;
    return 0;
}

/* The number of runs records rs fall into. */
static size_t count_runs(const rp_recs *rs)
{
    size_t runs = 0;
    for (size_t i = 0; i < rs->n; i = run_end(rs, i))
        runs++;
    return runs;
}

/*
 * Writes the verified records rs (bytes[0] is at offset rs->v[0].off) into
 * segment seq in place. A call whose records form one run is written and
 * synced as it is. A call of two runs or more is a *batch*: the run marker
 * on disk must say that the bytes from (at most) the replica's end on are
 * unproven (run_cover: usually it does already, else it is written and
 * synced), then every byte is written in one go and synced once — one or
 * two syncs, whatever the leader's sync pattern. Recovery takes no witness
 * in the marker's range as proof of anything in it, so a crash that tears
 * the batch leaves a torn tail, as a run does.
 */
static int append_inplace(rlg_replica *r, bool fresh, uint64_t seq, uint64_t first_lsn,
                          const uint8_t *bytes, const rp_recs *rs)
{
    rlg_segment ns;
    uint8_t hdr[RLG_SEG_HEADER_SIZE];
    bool pending = false;
    memset(&ns, 0, sizeof ns);
    int rv = fresh ? fresh_start(r, seq, first_lsn, &ns, hdr, &pending) : 0;
    if (rv)
        return rv;
    rlg_segment *s = pending ? &ns : rlg_rp_newest(r);
    rv = rlg_segment_reserve(s, rs->nuser);
    if (!rv && !r->l->wfile)
        rv = open_segment_file(r, seq, &r->l->wfile);
    bool batch = count_runs(rs) >= 2;
    if (!rv && batch) /* the header too, when it comes with the batch */
        rv = run_cover(r, seq, pending ? 0 : s->end, s->last_lsn + 1);
    if (!rv && rs->n && rs->v[rs->n - 1].type != RLG_TYPE_SEAL) /* nothing follows a seal */
        rv = zero_ahead(r, r->l->wfile, seq, rec_end(&rs->v[rs->n - 1]));
    uint64_t base = rs->n ? rs->v[0].off : 0;
    for (size_t i = 0; !rv && (i < rs->n || pending);) {
        size_t j = batch ? rs->n : i < rs->n ? run_end(rs, i) : i;
        uint64_t from = i < j ? rs->v[i].off : RLG_SEG_HEADER_SIZE;
        uint64_t to = i < j ? rec_end(&rs->v[j - 1]) : from;
        if (i < j && rs->v[j - 1].type == RLG_TYPE_SEAL)
            rv = rlg_rp_spare_ensure(r, seq + 1, false); /* the successor exists before the seal */
        const uint8_t *p = to > from ? bytes + (from - base) : NULL;
        if (!rv)
            rv = pending
                     ? write_run(r, r->l->wfile, seq, 0, hdr, sizeof hdr, p, (size_t)(to - from))
                     : write_run(r, r->l->wfile, seq, from, p, (size_t)(to - from), NULL, 0);
        if (rv)
            break;
        if (pending) { /* the header is durable: the segment exists */
            r->l->segs[r->l->nsegs++] = ns;
            memset(&ns, 0, sizeof ns);
            s = rlg_rp_newest(r);
            pending = false;
        }
        index_apply(r, s, rs, i, j);
        i = j;
    }
    rlg_segment_free(&ns);
    if (!rv && rlg_rp_newest(r)->sealed)
        rlg_rp_close_active(r);
    if (rv && pending) /* the file is the zero spare again */
        rlg_rp_close_active(r);
    return rv;
}

int rlg_replica_append(rlg_replica *r, uint64_t seq, uint64_t seg_first_lsn, uint64_t off,
                       const void *bytes, size_t len)
{
    int rv = rlg_rp_check(r);
    if (rv)
        return rv;
    if (r->rx.on)
        return rlg_rp_fail(r, RLOG_EINVAL, "append: a whole-segment receive is in progress");
    if (len && !bytes)
        return rlg_rp_fail(r, RLOG_EINVAL, "append: no bytes");
    bool fresh = false;
    rv = rlg_rp_continues(r, seq, seg_first_lsn, off, &fresh);
    if (rv)
        return rv;
    const rlg_segment *s = rlg_rp_newest(r);
    rlg_rv c;
    rlg_rv_init(&c, r->l->log_id, seq, off, fresh ? seg_first_lsn : s->last_lsn + 1);
    rp_recs rs;
    memset(&rs, 0, sizeof rs);
    rv = rlg_rv_feed(r, &c, bytes, len, recs_collect, &rs);
    if (!rv && c.hlen)
        rv = rlg_rv_fail(r, &c, "the bytes end inside a record (%" PRIu64 " of its bytes given)",
                         c.off - c.rec_off);
    if (rv == RLOG_ENOMEM)
        rlg_rp_fail(r, rv, "append: out of memory verifying %zu bytes", len);
    if (!rv && (fresh || rs.n))
        rv = append_inplace(r, fresh, seq, seg_first_lsn, bytes, &rs);
    free(rs.v);
    return rv;
}
