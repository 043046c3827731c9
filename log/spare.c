/* Segment files: preparing the next segment ahead of need (created,
 * pre-written with zeros so later fdatasyncs touch no allocation metadata,
 * synced, directory synced) and deleting a prefix of sealed segments. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/writer.h"

uint8_t rlg_zero_chunk[RLG_ZERO_CHUNK];

int rlg_write_zeros(rlog_vfs *v, rlog_file *f, uint64_t from, uint64_t to)
{
    while (from < to) {
        size_t n = to - from < RLG_ZERO_CHUNK ? (size_t)(to - from) : RLG_ZERO_CHUNK, done = 0;
        int e = v->pwrite(v, f, rlg_zero_chunk, n, from, &done);
        if (!e && done != n)
            e = EIO;
        if (e)
            return e;
        from += n;
    }
    return 0;
}

int rlg_prewrite_zeros(rlog_vfs *v, rlog_file *f, uint64_t size)
{
    int e = 0;
    for (uint64_t off = 0; !e && off < size; off += RLG_ZERO_CHUNK) {
        uint64_t left = size - off;
        size_t n = left < RLG_ZERO_CHUNK ? (size_t)left : RLG_ZERO_CHUNK, done = 0;
        e = v->pwrite(v, f, rlg_zero_chunk, n, off, &done);
        if (!e && done != n)
            e = EIO;
        /* flush as we go: an appender's fdatasync ends in a device cache
         * flush that waits for every write in flight, ours included — keep
         * that at most one chunk */
        if (!e && off + n < size)
            e = v->fdatasync(v, f);
    }
    return e ? e : v->fdatasync(v, f);
}

int rlg_fill_zeros(rlog_vfs *v, rlog_file *f, uint64_t size, const char **what)
{
    *what = "allocate";
    int e = v->allocate(v, f, 0, size);
    if (e == EOPNOTSUPP || e == ENOSYS)
        e = 0;
    if (!e) {
        *what = "pre-write";
        e = rlg_prewrite_zeros(v, f, size);
    }
    return e;
}

int rlg_prepare_path(rlog_vfs *v, const char *dir, const char *path, uint64_t size, bool replace,
                     rlog_file **out, const char **what)
{
    rlog_file *f = NULL;
    *what = "create";
    /* EXCL: never overwrite a file we did not account for */
    int e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f);
    if (e == EEXIST && replace) { /* our own leftover spare (see rlg_prepare_spare) */
        *what = "replace";
        e = v->unlink(v, path);
        if (!e)
            e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f);
    }
    if (e)
        return e;
    e = rlg_fill_zeros(v, f, size, what);
    if (!e) {
        *what = "directory fsync after creating";
        e = v->sync_dir(v, dir);
    }
    if (e) {
        v->close(v, f);
        return e;
    }
    *out = f;
    return 0;
}

int rlg_prepare_file(rlog_log *l, const char *path, bool replace, rlog_file **out,
                     const char **what)
{
    return rlg_prepare_path(l->vfs, l->dir, path, l->opts.segment_size, replace, out, what);
}

int rlg_dir_settle(rlog_log *l)
{
    if (!l->dir_unsynced)
        return 0;
    pthread_mutex_unlock(&l->mu);
    int e = l->vfs->sync_dir(l->vfs, l->dir);
    pthread_mutex_lock(&l->mu);
    if (!e)
        l->dir_unsynced = false;
    return e;
}

int rlg_prepare_spare(rlog_log *l, uint64_t seq)
{
    char path[4096], name[32];
    rlg_seg_path(l, seq, path, sizeof path);
    rlg_seg_name(seq, name, sizeof name);
    /* A file already there with the designated next number, which is not
     * the ready spare, can only be a spare of ours left behind by a failed
     * rotation: it may be replaced. Anything else is never touched. */
    bool replace = seq == l->spare_next && seq > l->disk_last_seq;
    l->spare_state = RLG_SPARE_PREPARING;
    const char *what = "directory fsync (an earlier directory operation)";
    int e = rlg_dir_settle(l);
    bool left = false; /* a directory operation left unsynced */
    pthread_mutex_unlock(&l->mu);
    rlog_file *f = NULL;
    bool tried = !e;
    if (tried)
        e = rlg_prepare_file(l, path, replace, &f, &what);
    if (tried && e && e != EEXIST) {
        /* best effort: leave no half-made file behind */
        left = l->vfs->unlink(l->vfs, path) == 0 && l->vfs->sync_dir(l->vfs, l->dir) != 0;
    }
    pthread_mutex_lock(&l->mu);
    if (left)
        l->dir_unsynced = true;
    pthread_cond_broadcast(&l->cond);
    if (e) {
        l->spare_state = RLG_SPARE_NONE;
        l->spare_failed = true;
        int err = rlog_from_errno(e);
        rlg_logf(l, RLOG_LEVEL_WARN, "preparing segment %s failed: %s: %s", name, what,
                 strerror(e));
        return rlg_fail(l, err, "preparing segment %s: %s: %s", name, what, strerror(e));
    }
    l->spare_file = f;
    l->spare_seq = seq;
    l->spare_state = RLG_SPARE_READY;
    l->spare_failed = false;
    l->m.segments_prepared++;
    return 0;
}

int rlog_delete_prefix(rlog_log *l, uint64_t lsn, uint64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (l->readonly)
        return RLOG_EINVAL;
    pthread_mutex_lock(&l->mu);
    while (l->io_busy) /* no rotation while we look at the oldest segments */
        pthread_cond_wait(&l->cond, &l->mu);
    int rv = l->poisoned;
    if (rv) {
        pthread_mutex_unlock(&l->mu);
        return rv;
    }
    l->io_busy = true;
    /* an earlier deletion whose directory fsync failed is made durable
     * before the next unlink: two unsynced unlinks could come back from a
     * power loss as "the later kept, the earlier lost", a gap */
    int e0 = rlg_dir_settle(l);
    if (e0)
        rv = rlg_fail(l, rlog_from_errno(e0),
                      "delete prefix: directory fsync (an earlier deletion is not durable): %s",
                      strerror(e0));
    while (!rv && l->nsegs > 1) {
        rlg_segment *s = &l->segs[0];
        /* the successor's header must be durable before its predecessor
         * goes (else a power loss could leave no segment with a valid
         * header): a durable record past this segment proves it */
        if (!s->sealed || s->seq >= l->disk_last_seq || s->last_lsn >= lsn ||
            s->last_lsn >= l->durable)
            break;
        char path[4096], name[32];
        rlg_seg_path(l, s->seq, path, sizeof path);
        rlg_seg_name(s->seq, name, sizeof name);
        pthread_mutex_unlock(&l->mu);
        int e = l->vfs->unlink(l->vfs, path);
        bool gone = !e || e == ENOENT;
        int se = gone ? l->vfs->sync_dir(l->vfs, l->dir) : 0;
        pthread_mutex_lock(&l->mu);
        if (gone) { /* gone from the namespace: gone from the index too */
            rlg_segment_free(s);
            memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof *l->segs);
            l->nsegs--;
            l->first = l->segs[0].first_lsn;
            l->m.segments_deleted++;
            if (deleted)
                (*deleted)++;
        }
        l->dir_unsynced = gone && se;
        if (!gone || se) {
            /* an unsynced unlink may or may not survive a crash; recovery
             * accepts both (the files left are still a contiguous run) */
            e = gone ? se : e;
            rv = rlg_fail(l, rlog_from_errno(e), "delete prefix: %s %s: %s",
                          gone ? "directory fsync after unlinking" : "unlink", name, strerror(e));
            break;
        }
    }
    rlg_io_release(l, NULL);
    pthread_mutex_unlock(&l->mu);
    return rv;
}
