/*
 * Cutting a replica back: truncation after a divergence (drop every record
 * from an LSN on) and reset (drop every segment). Each step leaves a
 * directory that recovers — after a crash at any point — to a consistent
 * prefix, with no corruption report:
 *
 *  - A segment after a sealed one may never vanish while its predecessor
 *    stays sealed (recovery reports a missing successor as corruption), and
 *    a file with a valid header may not follow one without (the same). So
 *    truncation replaces the segments it drops, newest first, each by an
 *    empty file (created under RLG_RECEIVE_TMP, renamed over the segment's
 *    name, directory synced): the predecessor becomes the newest segment,
 *    sealed, with a zero spare after it. The spares left beyond the first
 *    are then unlinked, highest first (no gap ever appears in the run).
 *  - The segment that keeps records is rewritten whole through the
 *    temporary file (its bytes up to the cut, then zeros) and renamed into
 *    place: zeroing its tail in place would leave, after a crash, a torn mix
 *    in which a surviving record's leader witness proves a zeroed one.
 *  - Reset deletes oldest first, like the log's prefix deletion (rule 7 of
 *    docs/format.md): the files left are always a valid log (a suffix of
 *    the segments), until the last one goes and only zero spares remain,
 *    which recovery reads as no log.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica_internal.h"

/* Copies [0, end) of the replica's own segment seq into t, checking every
 * record's CRC on the way (bytes read back are not trusted blindly). */
static int copy_prefix(rlg_replica *r, uint64_t seq, uint64_t end, rlog_file *t)
{
    rlog_vfs *v = r->l->vfs;
    const rlg_segment *s = &r->l->segs[rlg_find_segment_seq(r->l, seq)];
    assert(s->seq == seq && end >= RLG_SEG_HEADER_SIZE);
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    uint8_t *buf = malloc(RLG_ZERO_CHUNK);
    rlog_file *f = NULL;
    int e = buf ? v->open(v, path, RLOG_VFS_RDONLY, &f) : ENOMEM;
    rlg_rv c;
    rlg_rv_init(&c, r->l->log_id, seq, RLG_SEG_HEADER_SIZE, s->first_lsn);
    bool bad = false;
    for (uint64_t off = 0; !e && !bad && off < end;) {
        size_t n = end - off < RLG_ZERO_CHUNK ? (size_t)(end - off) : RLG_ZERO_CHUNK, got = 0;
        e = v->pread(v, f, buf, n, off, &got);
        if (!e && got != n)
            e = EIO;
        rlg_seg_header h;
        if (!e && off == 0 &&
            (n < RLG_SEG_HEADER_SIZE || rlg_seg_header_decode(buf, &h) != RLG_HDR_OK ||
             h.seq != seq || h.log_id != r->l->log_id)) {
            bad = true;
            rlg_rp_fail(r, RLOG_EIO, "the segment header is not this segment's");
        }
        size_t skip = off == 0 ? RLG_SEG_HEADER_SIZE : 0;
        if (!e && !bad)
            bad = rlg_rv_feed(r, &c, buf + skip, n - skip, NULL, NULL) != 0;
        if (!e && !bad && (e = v->pwrite(v, t, buf, n, off, &got)) == 0 && got != n)
            e = EIO;
        off += n;
    }
    if (!e && !bad && c.hlen)
        bad = true;
    free(buf);
    if (f)
        v->close(v, f);
    if (bad) {
        char why[sizeof r->l->errmsg];
        memcpy(why, r->l->errmsg, sizeof why);
        return rlg_rp_fail(r, RLOG_EIO,
                           "re-reading %s up to offset %" PRIu64
                           ": its bytes no longer verify (%.300s)",
                           path, end, why);
    }
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "copying %s: %s", path, strerror(e));
    return 0;
}

/* Replaces segment seq's file by an empty one (a zero spare). */
static int zero_replace(rlg_replica *r, uint64_t seq)
{
    rlog_vfs *v = r->l->vfs;
    char tmp[4096], path[4096];
    rlg_rp_path(r, RLG_RECEIVE_TMP, tmp, sizeof tmp);
    rlg_rp_seg_path(r, seq, path, sizeof path);
    rlog_file *t = NULL;
    int rv = rlg_rp_temp_create(r, RLG_RECEIVE_TMP, &t);
    if (rv)
        return rv;
    /* its size need not be durable: a short spare, even an empty one, is
     * still a valid spare */
    int e = v->truncate(v, t, r->file_size);
    rlg_os_fail fail = {e, "sizing", tmp};
    if (e) {
        rlg_install_discard(v, r->l->dir, t, tmp);
    }
    rv = e ? RLG_OS_FAILED : rlg_install(v, r->l->dir, t, tmp, path, RLG_INSTALL_NOSYNC, &fail);
    return rv ? rlg_rp_install_fail(r, rv, &fail, "replacing by an empty spare", path) : 0;
}

/* Segment k keeps [0, cut): rewritten through the temporary file. */
static int cut_segment(rlg_replica *r, size_t k, uint64_t cut)
{
    rlog_vfs *v = r->l->vfs;
    rlg_segment *s = &r->l->segs[k];
    char tmp[4096], path[4096];
    rlg_rp_path(r, RLG_RECEIVE_TMP, tmp, sizeof tmp);
    rlg_rp_seg_path(r, s->seq, path, sizeof path);
    rlog_file *t = NULL;
    int rv = rlg_rp_temp_create(r, RLG_RECEIVE_TMP, &t);
    if (!rv)
        rv = copy_prefix(r, s->seq, cut, t);
    int e = rv ? 0 : rlg_write_zeros(v, t, cut, s->size); /* written: it is active */
    rlg_os_fail fail = {e, "writing zeros to", tmp};
    if (rv || e) {
        rlg_install_discard(v, r->l->dir, t, tmp);
    }
    rlg_rp_close_active(r);
    if (rv)
        return rv;
    rv = e ? RLG_OS_FAILED : rlg_install(v, r->l->dir, t, tmp, path, 0, &fail);
    if (rv)
        return rlg_rp_install_fail(r, rv, &fail, "rewriting up to the cut", path);
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The sequence numbers of the segment files present above `keep`, highest
 * first (*seqs: free()): the dropped segments' empty files and the spares,
 * including any the handle does not account for (left by a step that
 * failed). */
static int files_above(rlg_replica *r, uint64_t keep, uint64_t **seqs, size_t *n)
{
    rlog_vfs *v = r->l->vfs;
    char **names = NULL;
    size_t count = 0;
    *n = 0;
    int e = v->list(v, r->l->dir, &names, &count);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "listing '%s': %s", r->l->dir, strerror(e));
    *seqs = malloc((count ? count : 1) * sizeof **seqs);
    for (size_t i = 0; *seqs && i < count; i++) {
        uint64_t seq;
        if (rlg_seg_parse_name(names[i], &seq) && seq > keep)
            (*seqs)[(*n)++] = seq;
    }
    rlog_vfs_free_names(names, count);
    if (!*seqs)
        return rlg_rp_fail(r, RLOG_ENOMEM, "truncate: out of memory");
    qsort(*seqs, *n, sizeof **seqs, cmp_desc);
    return 0;
}

/* Drops segments after index k, newest first, then every segment file
 * beyond the first one after k, highest first (the files left stay a
 * contiguous run). */
static int drop_after(rlg_replica *r, size_t k)
{
    rlog_log *l = r->l;
    while (l->nsegs - 1 > k) {
        rlg_segment *s = &l->segs[l->nsegs - 1];
        rlg_rp_close_active(r);
        int rv = zero_replace(r, s->seq);
        if (rv)
            return rv;
        /* an empty spare now: resized when it is taken */
        if (r->spare_hi < s->seq)
            r->spare_hi = s->seq;
        rlg_segment_free(s);
        l->nsegs--;
    }
    uint64_t keep = l->segs[k].seq + 1, *seqs = NULL;
    size_t n = 0;
    int rv = files_above(r, keep, &seqs, &n);
    for (size_t i = 0; !rv && i < n; i++) {
        char path[4096];
        rlg_rp_seg_path(r, seqs[i], path, sizeof path);
        rv = rlg_rp_unlink_synced(r, path);
        if (!rv && r->spare_hi >= seqs[i])
            r->spare_hi = seqs[i] - 1;
    }
    free(seqs);
    return rv;
}

/* A cut needs a usable replica and no whole-segment receive in progress. */
static int cut_check(rlg_replica *r, const char *what)
{
    int rv = rlg_rp_check(r);
    if (!rv && r->rx.on)
        rv = rlg_rp_fail(r, RLOG_EINVAL, "%s: a whole-segment receive is in progress", what);
    return rv;
}

int rlg_replica_truncate(rlg_replica *r, uint64_t lsn)
{
    int rv = cut_check(r, "truncate");
    if (rv)
        return rv;
    rlog_log *l = r->l;
    if (!l->nsegs)
        return 0;
    if (lsn <= l->segs[0].first_lsn)
        return rlg_replica_reset(r);
    if (lsn - 1 > l->segs[l->nsegs - 1].last_lsn)
        return 0; /* record lsn - 1 is not here yet: nothing to drop */
    long k = rlg_find_segment(l, lsn - 1);
    assert(k >= 0);
    rlg_rp_run_drop(r); /* the positions it names are about to change */
    rlg_segment *s = &l->segs[k];
    char path[4096];
    rlg_rp_seg_path(r, s->seq, path, sizeof path);
    rlog_file *f = NULL;
    uint64_t cut = 0, rec_lsn = 0;
    uint32_t crc = 0;
    int e = l->vfs->open(l->vfs, path, RLOG_VFS_RDONLY, &f);
    if (!e)
        e = rlg_rp_rec_at(r, f, s->offs[lsn - 1 - s->first_lsn], &crc, &rec_lsn, &cut);
    if (f)
        l->vfs->close(l->vfs, f);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "truncate: reading %s: %s", path, strerror(e));
    rv = drop_after(r, (size_t)k);
    s = &l->segs[k];
    if (!rv && (cut < s->end || s->sealed))
        rv = cut_segment(r, (size_t)k, cut);
    if (!rv) {
        s->noffs = (size_t)(lsn - s->first_lsn);
        s->last_lsn = lsn - 1;
        s->end = s->dend = cut;
        s->sealed = s->dsealed = false;
    }
    int lv = rlg_rp_load_last(r); /* also where a step failed: the index is what is on disk */
    return rv ? rv : lv;
}

/* Removes the oldest segment's file durably, then its index entry. */
static int drop_oldest(rlg_replica *r)
{
    rlog_log *l = r->l;
    char path[4096];
    rlg_rp_seg_path(r, l->segs[0].seq, path, sizeof path);
    int rv = rlg_rp_unlink_synced(r, path);
    if (rv)
        return rv;
    rlg_segment_free(&l->segs[0]);
    memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof *l->segs);
    l->nsegs--;
    return 0;
}

int rlg_replica_reset(rlg_replica *r)
{
    int rv = cut_check(r, "reset");
    if (rv)
        return rv;
    rlog_log *l = r->l;
    rlg_rp_close_active(r);
    rlg_rp_run_drop(r);     /* (made durable by the directory syncs below) */
    while (l->nsegs && !rv) /* oldest first: what is left is always a valid log */
        rv = drop_oldest(r);
    if (!rv) /* no segment left: the files that remain hold zeros (spares),
                which recovery reads, any subset of them, as no log */
        rv = rlg_rp_remove_seg_files(r, false, true, "reset: removing the spares");
    if (rv) {
        int lv = rlg_rp_load_last(r);
        (void)lv;
        return rv;
    }
    r->spare_hi = 0;
    r->adopted = false;
    r->base_seq = r->base_lsn = 0;
    l->log_id = 0;
    return rlg_rp_load_last(r);
}

int rlg_replica_delete_prefix(rlg_replica *r, uint64_t seq, uint64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    int rv = rlg_rp_check(r);
    rlog_log *l = r->l;
    /* every segment here has a durable header: the oldest may go whenever
     * it is not the newest (rule 7 of docs/format.md) */
    while (!rv && l->nsegs > 1 && l->segs[0].seq < seq) {
        rv = drop_oldest(r);
        if (rv)
            break;
        l->first = l->segs[0].first_lsn;
        if (deleted)
            (*deleted)++;
    }
    return rv;
}
