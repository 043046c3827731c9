/*
 * Segment shipping, the source (leader) side: the durable view of a log's
 * segments and raw reads of segment files (log/replica.h).
 *
 * The writer keeps, per segment, the byte offset up to which the file is
 * durable (rlg_segment.dend): it advances when an fdatasync that covered the
 * bytes returns 0 — a round's sync, the sync of a seal at rotation, the
 * sync of the checkpoint at close — and when a writable open has made what
 * it recovered durable. Bytes of a rolled-back write never count (they are
 * zeroed before the segment's end moves past them). So the view never shows
 * a byte a power loss could take back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log/log_internal.h"
#include "log/replica.h"

struct rlg_seg_reader {
    rlog_vfs *vfs;
    rlog_file *f;
};

/* User records of s that lie wholly before `end` (a record boundary). */
static uint64_t records_before(const rlg_segment *s, uint64_t end)
{
    size_t lo = 0, hi = s->noffs;
    while (lo < hi) { /* first offset >= end */
        size_t mid = (lo + hi) / 2;
        if (s->offs[mid] < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int rlg_ship_view(rlog_log *l, rlg_ship_seg **segs, size_t *n, uint64_t *log_id)
{
    *segs = NULL;
    *n = 0;
    pthread_mutex_lock(&l->mu);
    if (log_id)
        *log_id = l->log_id;
    rlg_ship_seg *v = calloc(l->nsegs ? l->nsegs : 1, sizeof *v);
    if (!v) {
        pthread_mutex_unlock(&l->mu);
        return RLOG_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        const rlg_segment *s = &l->segs[i];
        if (s->dend < RLG_SEG_HEADER_SIZE)
            continue; /* its header is not durable yet (then neither is any later one) */
        rlg_ship_seg *o = &v[k++];
        o->seq = s->seq;
        o->first_lsn = s->first_lsn;
        o->last_lsn = s->first_lsn - 1 + records_before(s, s->dend);
        o->end = s->dend;
        o->file_size = s->size > s->dend ? s->size : s->dend;
        o->sealed = s->dsealed;
    }
    pthread_mutex_unlock(&l->mu);
    *segs = v;
    *n = k;
    return 0;
}

const char *rlg_log_dir(const rlog_log *l)
{
    return l->dir;
}

rlog_vfs *rlg_log_vfs(const rlog_log *l)
{
    return l->vfs;
}

int rlg_seg_reader_open(rlog_log *l, uint64_t seq, rlg_seg_reader **out)
{
    *out = NULL;
    rlg_seg_reader *r = calloc(1, sizeof *r);
    if (!r)
        return RLOG_ENOMEM;
    char path[4096];
    rlg_seg_path(l, seq, path, sizeof path);
    r->vfs = l->vfs;
    int e = r->vfs->open(r->vfs, path, RLOG_VFS_RDONLY, &r->f);
    if (e) {
        free(r);
        return rlog_from_errno(e); /* ENOENT: RLOG_ENOTFOUND (deleted) */
    }
    *out = r;
    return 0;
}

int rlg_seg_reader_read(rlg_seg_reader *r, uint64_t off, void *buf, size_t len)
{
    size_t got = 0;
    int e = r->vfs->pread(r->vfs, r->f, buf, len, off, &got);
    if (e)
        return rlog_from_errno(e) == RLOG_ENOTFOUND ? RLOG_EIO : rlog_from_errno(e);
    return got == len ? 0 : RLOG_EIO;
}

void rlg_seg_reader_close(rlg_seg_reader *r)
{
    if (!r)
        return;
    r->vfs->close(r->vfs, r->f);
    free(r);
}
