/* Segment files: preparing the next segment ahead of need (created,
 * pre-written with zeros so later fdatasyncs touch no allocation metadata,
 * synced, directory synced), or recycling a deleted segment's file
 * (log/retention.c pools it). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/spare.h"
#include "os/install.h"
#include "os/sync.h"

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
            e = rlg_os_fdatasync(v, f);
    }
    return e ? e : rlg_os_fdatasync(v, f);
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
        e = rlg_os_sync_dir(v, dir);
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

void rlg_pool_path(const rlog_log *l, uint64_t old, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/" RLG_RECYCLE_PREFIX "%016" PRIx64, l->dir, old);
}

/* Turns the waiting file of deleted segment `old` into the spare at path:
 * its header is zeroed and synced while it still has its waiting name (a
 * file with a segment name never shows another segment's valid header),
 * then it is renamed into place and the directory synced. The rest of its
 * bytes stay: they never validate under the new segment's salt (see
 * docs/format.md, "Recycled segment files"). *renamed says whether the
 * rename was done (before it, a failure leaves nothing under a segment
 * name and the waiting file is dropped). mu NOT held. */
static int recycle_file(rlog_log *l, uint64_t old, const char *path, bool replace, rlog_file **out,
                        bool *renamed, const char **what)
{
    rlog_vfs *v = l->vfs;
    char from[4096];
    rlg_pool_path(l, old, from, sizeof from);
    rlog_file *f = NULL, *t = NULL;
    uint64_t size = 0;
    *renamed = false;
    *what = "open a recycled file for";
    int e = v->open(v, from, RLOG_VFS_RDWR, &f);
    if (!e && !(e = v->size(v, f, &size)) && size != l->opts.segment_size)
        e = EINVAL; /* made under another segment size: not worth reshaping */
    if (!e) {
        *what = "zero the header of a recycled file for";
        e = rlg_write_zeros(v, f, 0, RLG_SEG_HEADER_SIZE);
    }
    if (!e)
        e = rlg_os_fdatasync(v, f);
    /* rename replaces silently: keep the promise of never overwriting a
     * file we did not account for (see rlg_prepare_path's EXCL) */
    if (!e && !replace && v->open(v, path, RLOG_VFS_RDONLY, &t) == 0) {
        v->close(v, t);
        e = EEXIST;
    }
    if (!e) { /* rename and directory fsync; a failed rename drops the waiting file */
        rlg_os_fail fail = {0};
        pthread_mutex_lock(&l->dir_mu);
        int os = rlg_install_commit(v, l->dir, from, path, &fail);
        pthread_mutex_unlock(&l->dir_mu);
        *renamed = os != RLG_OS_FAILED;
        if (os) {
            e = fail.err;
            *what = fail.what;
        }
    }
    if (e) {
        if (f)
            v->close(v, f);
        if (!*renamed)
            v->unlink(v, from); /* best effort: a leftover is removed by the next open */
        return e;
    }
    *out = f;
    return 0;
}

int rlg_dir_settle(rlog_log *l)
{
    if (!l->dir_unsynced)
        return 0;
    pthread_mutex_unlock(&l->mu);
    int e = rlg_os_sync_dir(l->vfs, l->dir);
    pthread_mutex_lock(&l->mu);
    if (!e)
        l->dir_unsynced = false;
    return e;
}

/* The spare a writable open found (l->spare_kept) becomes a prepared
 * segment file again: every byte written again (zeros), the file cut or
 * grown to the segment size, synced. An earlier process made it, and that
 * process's fdatasync of it may have failed; a later fdatasync that
 * succeeds would prove nothing (the kernel may have dropped the failed
 * pages' dirty state, the file's size with them), so nothing of it is
 * trusted. In place: the successor of a sealed segment must exist at every
 * instant, and it holds no record (recovery checked). mu NOT held. */
static int rewrite_kept(rlog_log *l, const char *path, rlog_file **out, const char **what)
{
    rlog_vfs *v = l->vfs;
    rlog_file *f = NULL;
    uint64_t size = 0, want = l->opts.segment_size;
    *what = "open";
    int e = v->open(v, path, RLOG_VFS_RDWR, &f);
    if (!e)
        e = (*what = "size of", v->size(v, f, &size));
    if (!e && size > want)
        e = (*what = "truncating", v->truncate(v, f, want));
    if (!e)
        e = rlg_fill_zeros(v, f, want, what);
    if (e) {
        if (f)
            v->close(v, f);
        return e;
    }
    *out = f;
    return 0;
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
    bool tried = !e;   /* no directory operation unless the last one is durable */
    bool left = false; /* a directory operation left unsynced */
    /* a deleted segment's file, if one waits: no zero-fill (nor while a
     * deletion's directory fsync is outstanding: one directory operation
     * unsynced at a time) */
    bool pooled = tried && l->npool > 0 && !l->dir_unsynced;
    uint64_t old = pooled ? l->pool[--l->npool] : 0;
    bool kept = seq == l->spare_kept; /* the file is there: never removed */
    pthread_mutex_unlock(&l->mu);
    rlog_file *f = NULL;
    bool renamed = false;
    if (pooled)
        e = recycle_file(l, old, path, replace, &f, &renamed, &what);
    bool recycled = pooled && !e;
    if (pooled && e && !renamed) {
        rlg_logf(l, RLOG_LEVEL_WARN,
                 "recycling for segment %s failed (%s: %s); zero-filling a new file", name, what,
                 strerror(e));
        pooled = false;
    }
    if (tried && !pooled)
        e = kept ? rewrite_kept(l, path, &f, &what) : rlg_prepare_file(l, path, replace, &f, &what);
    if (tried && e && e != EEXIST && !kept) {
        /* best effort: leave no half-made file behind */
        left = l->vfs->unlink(l->vfs, path) == 0 && rlg_os_sync_dir(l->vfs, l->dir) != 0;
    } else if (renamed && e) {
        /* a recycled file renamed over the kept spare, its directory fsync
         * failed: which file a power loss leaves under the name is unknown
         * until the directory is synced, so nothing is written into it
         * before (soak raft seed 50918208: records written into the
         * renamed file were lost with the rename) */
        left = true;
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
    if (kept)
        l->spare_kept = 0;
    l->spare_recycled = recycled;
    if (recycled)
        l->m.segments_recycled++;
    else
        l->m.segments_prepared++;
    return 0;
}
