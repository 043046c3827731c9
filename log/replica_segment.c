/*
 * A whole sealed segment received through a temporary file
 * (rlg_replica_segment_*) and installed under its name (log/replica.c has
 * the overview).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log/replica_internal.h"

/* ------------------------------------------------------------ run marker */

/* Moves temporary file t (closed here), a sealed segment, to segment seq's
 * name: fdatasync, the successor first, rename, directory fsync. The file
 * after the successor is created too, and made durable by the same
 * directory fsync: the next segment's install then finds its successor
 * there (one directory fsync per segment while catching up). */
static int install(rlg_replica *r, rlog_file *t, uint64_t seq)
{
    rlog_vfs *v = r->l->vfs;
    char tmp[4096], path[4096];
    rlg_rp_path(r, RLG_RECEIVE_TMP, tmp, sizeof tmp);
    rlg_rp_seg_path(r, seq, path, sizeof path);
    assert(!r->l->wfile); /* the newest segment is sealed (or none): no active file */
    rlg_os_fail fail;
    int rv = rlg_install_sync(v, r->l->dir, t, tmp, 0, &fail);
    if (rv)
        return rlg_rp_install_fail(r, rv, &fail, "installing segment", path);
    rv = rlg_rp_spare_ensure(r, seq + 1, false);
    bool ahead = !rv && r->spare_hi == seq + 1 && rlg_rp_spare_ahead(r, seq + 2) == 0;
    if (rv) {
        rlg_install_discard(v, r->l->dir, NULL, tmp);
        return rv;
    }
    rv = rlg_install_commit(v, r->l->dir, tmp, path, &fail);
    if (rv == RLG_OS_FAILED &&
        ahead) { /* not needed: leave no file the handle does not account for */
        char next[4096];
        rlg_rp_seg_path(r, seq + 2, next, sizeof next);
        v->unlink(v, next);
    }
    if (rv)
        return rlg_rp_install_fail(r, rv, &fail, "installing segment", path);
    if (ahead)
        r->spare_hi = seq + 2;
    return 0;
}

/* ------------------------------------------------- whole-segment receive */

static int rx_collect(void *arg, const rlg_rv *c)
{
    rlg_rx *rx = arg;
    if (c->h.type >= RLOG_TYPE_USER_MIN) {
        if (rlg_segment_push(&rx->seg, (uint32_t)c->rec_off))
            return RLOG_ENOMEM;
        rx->seg.last_lsn = c->h.lsn;
    }
    rx->last_off = c->rec_off;
    rx->last_crc = c->h.crc;
    rx->last_lsn = c->h.lsn;
    return 0;
}

void rlg_replica_segment_abort(rlg_replica *r)
{
    rlg_rx *rx = &r->rx;
    if (!rx->on)
        return;
    if (rx->f) {
        char tmp[4096];
        rlg_rp_path(r, RLG_RECEIVE_TMP, tmp, sizeof tmp);
        r->l->vfs->close(r->l->vfs, rx->f);
        r->l->vfs->unlink(r->l->vfs, tmp);
    }
    rlg_segment_free(&rx->seg);
    memset(rx, 0, sizeof *rx);
}

int rlg_replica_segment_begin(rlg_replica *r, uint64_t seq, uint64_t seg_first_lsn)
{
    int rv = rlg_rp_check(r);
    if (rv)
        return rv;
    if (r->rx.on)
        return rlg_rp_fail(r, RLOG_EINVAL, "segment_begin: a receive is in progress already");
    bool fresh = false;
    rv = rlg_rp_continues(r, seq, seg_first_lsn, RLG_SEG_HEADER_SIZE, &fresh);
    if (!rv && !fresh)
        rv = rlg_rp_fail(r, RLOG_EPROTO,
                         "segment_begin: the replica holds segment %" PRIu64 " already", seq);
    if (!rv && r->l->nsegs == 0)
        rv = rlg_rp_clear_leftovers(r);
    if (rv)
        return rv;
    rlg_rx *rx = &r->rx;
    rlog_vfs *v = r->l->vfs;
    rv = rlg_rp_temp_create(r, RLG_RECEIVE_TMP, &rx->f);
    if (rv)
        return rv;
    rx->on = true;
    uint8_t hdr[RLG_SEG_HEADER_SIZE];
    rlg_seg_header h = {RLG_FORMAT_VERSION, r->l->log_id, seq, seg_first_lsn, 0};
    rlg_seg_header_encode(&h, hdr);
    size_t done = 0;
    int e = v->truncate(v, rx->f, r->file_size);
    if (!e && (e = v->pwrite(v, rx->f, hdr, sizeof hdr, 0, &done)) == 0 && done != sizeof hdr)
        e = EIO;
    if (e) {
        rlg_replica_segment_abort(r);
        return rlg_rp_fail(r, rlog_from_errno(e), "writing %s for segment %" PRIu64 ": %s",
                           RLG_RECEIVE_TMP, seq, strerror(e));
    }
    rlg_rv_init(&rx->rv, r->l->log_id, seq, RLG_SEG_HEADER_SIZE, seg_first_lsn);
    rx->seg.seq = seq;
    rx->seg.first_lsn = seg_first_lsn;
    rx->seg.last_lsn = seg_first_lsn - 1;
    rx->seg.size = r->file_size;
    return 0;
}

int rlg_replica_segment_write(rlg_replica *r, uint64_t off, const void *bytes, size_t len)
{
    rlg_rx *rx = &r->rx;
    if (!rx->on)
        return rlg_rp_fail(r, RLOG_EINVAL, "segment_write: no receive in progress");
    if (len && !bytes)
        return rlg_rp_fail(r, RLOG_EINVAL, "segment_write: no bytes");
    int rv = 0;
    if (off != rx->rv.off) {
        char name[32];
        rv = rlg_rp_fail(r, RLOG_EPROTO,
                         "segment %s: bytes at offset %" PRIu64
                         " do not continue the receive (next offset %" PRIu64 ")",
                         rlg_rp_seg_name(rx->rv.seq, name), off, rx->rv.off);
    }
    if (!rv)
        rv = rlg_rv_feed(r, &rx->rv, bytes, len, rx_collect, rx);
    if (rv == RLOG_ENOMEM)
        rlg_rp_fail(r, rv, "segment_write: out of memory indexing the segment");
    size_t done = 0;
    int e = rv ? 0 : r->l->vfs->pwrite(r->l->vfs, rx->f, bytes, len, off, &done);
    if (!rv && !e && done != len)
        e = EIO;
    if (e)
        rv = rlg_rp_fail(r, rlog_from_errno(e), "writing %s at offset %" PRIu64 ": %s",
                         RLG_RECEIVE_TMP, off, strerror(e));
    if (rv) { /* the receive is over; the replica is as it was */
        char why[sizeof r->l->errmsg];
        memcpy(why, r->l->errmsg, sizeof why);
        rlg_replica_segment_abort(r);
        rlg_rp_fail(r, rv, "%s; the segment receive is aborted", why);
    }
    return rv;
}

int rlg_replica_segment_commit(rlg_replica *r)
{
    rlg_rx *rx = &r->rx;
    if (!rx->on)
        return rlg_rp_fail(r, RLOG_EINVAL, "segment_commit: no receive in progress");
    int rv = rlg_rp_check(r);
    char name[32];
    if (!rv && (!rx->rv.sealed || rx->rv.hlen))
        rv = rlg_rp_fail(r, RLOG_EPROTO,
                         "segment %s is incomplete: no seal after offset %" PRIu64 " (LSN %" PRIu64
                         "); the segment receive is aborted",
                         rlg_rp_seg_name(rx->rv.seq, name), rx->rv.off, rx->rv.e - 1);
    if (!rv)
        rv = rlg_segs_reserve(r->l);
    if (rv) {
        rlg_replica_segment_abort(r);
        return rv;
    }
    rlog_file *t = rx->f;
    rx->f = NULL;
    rv = install(r, t, rx->rv.seq);
    if (rv) {
        rlg_replica_segment_abort(r);
        return rv;
    }
    rlg_segment *s = &r->l->segs[r->l->nsegs++];
    *s = rx->seg;
    s->end = rx->rv.off;
    if (s->end > s->size) /* the writes extended the file */
        s->size = s->end;
    s->sealed = s->dsealed = true;
    s->dend = s->end;
    r->last_off = rx->last_off;
    r->last_crc = rx->last_crc;
    r->last_lsn = rx->last_lsn;
    r->l->durable = s->last_lsn;
    memset(rx, 0, sizeof *rx);
    return 0;
}
