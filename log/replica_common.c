/*
 * A replica's common ground (log/replica.c has the overview): errors and
 * poisoning, paths, the newest segment and its active file, temporary
 * files, and where bytes may go (rlg_rp_continues) for both ways in.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log/replica_internal.h"
#include "os/sync.h"

/* ------------------------------------------------------------- helpers */

int rlg_rp_fail(rlg_replica *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->l->errmsg, sizeof r->l->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

int rlg_rp_poison(rlg_replica *r, int e, const char *what, const char *path)
{
    r->poisoned = RLOG_EPOISONED;
    rlg_unsynced_mark(r->l, r->l->durable);
    return rlg_rp_fail(r, RLOG_EPOISONED,
                       "%s %s failed (%s): the replica is poisoned (durable up to LSN %" PRIu64
                       "); reopen it to recover",
                       what, path, strerror(e), r->l->durable);
}

int rlg_rp_check(rlg_replica *r)
{
    return r->poisoned;
}

void rlg_rp_seg_path(const rlg_replica *r, uint64_t seq, char *buf, size_t cap)
{
    rlg_seg_path(r->l, seq, buf, cap);
}

void rlg_rp_path(const rlg_replica *r, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", r->l->dir, name);
}

const char *rlg_rp_seg_name(uint64_t seq, char buf[32])
{
    rlg_seg_name(seq, buf, 32);
    return buf;
}

rlg_segment *rlg_rp_newest(const rlg_replica *r)
{
    return r->l->nsegs ? &r->l->segs[r->l->nsegs - 1] : NULL;
}

void rlg_rp_close_active(rlg_replica *r)
{
    if (r->l->wfile) {
        r->l->vfs->close(r->l->vfs, r->l->wfile);
        r->l->wfile = NULL;
    }
}

int rlg_rp_rec_at(rlg_replica *r, rlog_file *f, uint64_t off, uint32_t *crc, uint64_t *lsn,
                  uint64_t *end)
{
    rlg_rec_header h;
    int e = rlg_read_rec_header(r->l->vfs, f, off, &h);
    if (e)
        return e;
    *crc = h.crc;
    *lsn = h.lsn;
    *end = off + RLG_REC_HEADER_SIZE + h.len;
    return 0;
}

int rlg_rp_load_last(rlg_replica *r)
{
    r->last_off = r->last_lsn = 0;
    r->last_crc = 0;
    const rlg_segment *s = rlg_rp_newest(r);
    if (!s) {
        r->l->durable = 0;
        return 0;
    }
    r->l->durable = s->last_lsn;
    if (s->end <= RLG_SEG_HEADER_SIZE)
        return 0;
    char path[4096];
    rlg_rp_seg_path(r, s->seq, path, sizeof path);
    rlog_file *f = NULL;
    int e = r->l->vfs->open(r->l->vfs, path, RLOG_VFS_RDONLY, &f);
    uint64_t off = s->end - RLG_REC_HEADER_SIZE, end = 0, lsn = 0;
    uint32_t crc = 0;
    /* the last record is the last user record, or a log record after it
     * (seal, checkpoint: 28 bytes) */
    if (!e && s->noffs)
        e = rlg_rp_rec_at(r, f, s->offs[s->noffs - 1], &crc, &lsn, &end);
    if (!e && s->noffs && end == s->end)
        off = s->offs[s->noffs - 1];
    if (!e)
        e = rlg_rp_rec_at(r, f, off, &crc, &lsn, &end);
    if (f)
        r->l->vfs->close(r->l->vfs, f);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "reading the last record of %s: %s", path,
                           strerror(e));
    r->last_off = off;
    r->last_crc = crc;
    r->last_lsn = lsn;
    return 0;
}

int rlg_rp_temp_create(rlg_replica *r, const char *name, rlog_file **out)
{
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_path(r, name, path, sizeof path);
    int e = v->unlink(v, path);
    if (e == ENOENT)
        e = 0;
    if (!e)
        e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, out);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "creating %s: %s", path, strerror(e));
    return 0;
}

int rlg_rp_unlink_synced(rlg_replica *r, const char *path)
{
    rlg_os_fail fail;
    int rv = rlg_unlink_synced(r->l->vfs, r->l->dir, path, &fail);
    return rv ? rlg_rp_install_fail(r, rv, &fail, "removing", path) : 0;
}

int rlg_rp_install_fail(rlg_replica *r, int rv, const rlg_os_fail *fail, const char *doing,
                        const char *path)
{
    if (rv == RLG_OS_FATAL)
        return rlg_rp_poison(r, fail->err, fail->what, fail->path);
    return rlg_rp_fail(r, rlog_from_errno(fail->err), "%s %s: %s %s: %s", doing, path, fail->what,
                       fail->path, strerror(fail->err));
}

int rlg_rp_remove_seg_files(rlg_replica *r, bool temps, bool sync, const char *what)
{
    rlog_vfs *v = r->l->vfs;
    char **names = NULL;
    size_t n = 0;
    int e = v->list(v, r->l->dir, &names, &n);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "%s: listing '%s': %s", what, r->l->dir,
                           strerror(e));
    char path[4096];
    path[0] = 0;
    for (size_t i = 0; i < n && !e; i++) {
        uint64_t seq;
        if (!rlg_seg_parse_name(names[i], &seq) && !(temps && rlg_is_temp_name(names[i])))
            continue;
        rlg_rp_path(r, names[i], path, sizeof path);
        e = v->unlink(v, path);
        if (e == ENOENT)
            e = 0;
    }
    rlog_vfs_free_names(names, n);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "%s: removing %s: %s", what, path, strerror(e));
    e = sync ? rlg_os_sync_dir(v, r->l->dir) : 0;
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "%s: directory fsync of '%s': %s", what,
                           r->l->dir, strerror(e));
    return 0;
}

/* ------------------------------------------------------ where bytes go */

int rlg_rp_continues(rlg_replica *r, uint64_t seq, uint64_t first_lsn, uint64_t off, bool *fresh)
{
    const rlg_segment *s = rlg_rp_newest(r);
    char a[32], b[32];
    if (!s && !r->adopted)
        return rlg_rp_fail(r, RLOG_EINVAL, "the replica is empty: adopt a log first");
    rlg_rp_seg_name(seq, a);
    if (s && seq == s->seq) {
        *fresh = false;
        if (first_lsn != s->first_lsn)
            return rlg_rp_fail(r, RLOG_EPROTO,
                               "segment %s offset %" PRIu64 ": the segment starts at LSN %" PRIu64
                               " here, not %" PRIu64,
                               a, off, s->first_lsn, first_lsn);
        if (s->sealed)
            return rlg_rp_fail(r, RLOG_EPROTO,
                               "segment %s offset %" PRIu64
                               ": the segment is sealed here (LSN %" PRIu64 "), nothing follows",
                               a, off, s->last_lsn);
        if (off != s->end)
            return rlg_rp_fail(r, RLOG_EPROTO,
                               "segment %s offset %" PRIu64 ": does not continue the replica, "
                               "which holds the segment up to offset %" PRIu64 " (LSN %" PRIu64 ")",
                               a, off, s->end, s->last_lsn);
        return 0;
    }
    uint64_t next = s ? s->seq + 1 : r->base_seq, lsn = s ? s->last_lsn + 1 : r->base_lsn;
    *fresh = true;
    if (seq != next || (s && !s->sealed))
        return rlg_rp_fail(r, RLOG_EPROTO,
                           "segment %s offset %" PRIu64 ": does not continue the replica (it holds "
                           "%s%s, up to LSN %" PRIu64 ")",
                           a, off, s ? rlg_rp_seg_name(s->seq, b) : "no segment",
                           s && s->sealed ? ", sealed" : (s ? ", not sealed" : ""), lsn - 1);
    if (off != RLG_SEG_HEADER_SIZE)
        return rlg_rp_fail(r, RLOG_EPROTO,
                           "segment %s offset %" PRIu64
                           ": the segment is new here, its records start at offset 64",
                           a, off);
    if (first_lsn != lsn)
        return rlg_rp_fail(r, RLOG_EPROTO,
                           "segment %s offset %" PRIu64 ": the segment would start at LSN %" PRIu64
                           ", but the replica's next LSN is %" PRIu64,
                           a, off, first_lsn, lsn);
    return 0;
}

/* ------------------------------------------------------------ run marker */

int rlg_rp_clear_leftovers(rlg_replica *r)
{
    assert(r->l->nsegs == 0);
    int rv = rlg_rp_remove_seg_files(r, false, false, "removing leftover segment files");
    if (rv)
        return rv;
    r->spare_hi = 0;
    return 0;
}
