/*
 * A replica: a directory that receives a leader's segment bytes and stays,
 * at every instant, an rlog directory that recovers to a prefix of what it
 * was fed (log/replica.h; docs/format.md, "Replicas").
 *
 * Two ways in:
 *
 *  - In place (rlg_replica_append): verified records are written into the
 *    active segment. The records carry the LEADER's durability witness;
 *    recovery takes a valid record past a damaged one as proof that the
 *    damaged one was durable. A call whose records form one run (none has a
 *    proof — its `durable` field; a checkpoint's LSN — reaching the LSN
 *    expected where the run starts) is written and synced: whatever a crash
 *    tears inside it, nothing after the tear proves the torn record, and
 *    recovery cuts a torn tail instead of reporting corruption. A call of
 *    many runs is a batch: the run marker (RLG_RUN_MARKER), durable before
 *    any byte of the batch is written, makes recovery count no witness in
 *    the batch's range, so the batch is written and synced once. The first
 *    write of a new segment carries its header (the rotation rule of the
 *    log: the predecessor's seal is durable, the file exists and reads as
 *    zeros, its size synced). The file is not pre-written whole when the
 *    segment starts: each call writes zeros ahead of its records
 *    (zero_ahead), which its own fdatasync makes durable.
 *
 *  - Through a temporary file (rlg_replica_segment_*): the whole sealed
 *    segment is built in RLG_RECEIVE_TMP, synced once, and renamed over the
 *    segment's name (the zero spare), then the directory is synced. A
 *    rename is atomic: a crash leaves the old file or the new one. One
 *    fdatasync per segment, whatever the leader's sync pattern was.
 *
 * Invariants kept on disk (those of the log's writer, docs/format.md
 * "Writing rules"): a sealed newest segment's successor file exists; a file
 * with a segment name always had a durable valid header; files after the
 * newest segment hold zeros.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

static const char *seg_name(uint64_t seq, char buf[32])
{
    rlg_seg_name(seq, buf, 32);
    return buf;
}

static rlg_segment *newest(const rlg_replica *r)
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
    const rlg_segment *s = newest(r);
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

int rlg_rp_remove_seg_files(rlg_replica *r, bool temps, const char *what)
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
    return 0;
}

/* ------------------------------------------------------------ verifying */

/* Records may lie anywhere below 4 GiB, the largest segment: a record past
 * the end of the file extends it (a leader's segment outgrows its file when
 * its segment size setting grew since the file was made). */
#define RP_MAX_FILE 0xffffffffull

static void rv_init(rlg_rv *c, uint64_t log_id, uint64_t seq, uint64_t off, uint64_t e)
{
    memset(c, 0, sizeof *c);
    c->seq = seq;
    c->salt = rlg_salt_state(log_id, seq);
    c->off = off;
    c->e = e;
}

__attribute__((format(printf, 3, 4))) static int rv_fail(rlg_replica *r, const rlg_rv *c,
                                                         const char *fmt, ...)
{
    char what[256], name[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rlg_rp_fail(r, RLOG_EPROTO,
                       "segment %s offset %" PRIu64 " (next LSN %" PRIu64 "): %s; nothing written",
                       seg_name(c->seq, name), c->hlen ? c->rec_off : c->off, c->e, what);
}

/* The field checks of a complete record header (docs/format.md, "A valid
 * record"), at exactly the position it must fill. */
static int rv_fields(rlg_replica *r, const rlg_rv *c)
{
    const rlg_rec_header *h = &c->h;
    rlg_rec_why why = rlg_rec_fields(h, RP_MAX_FILE - c->rec_off - RLG_REC_HEADER_SIZE, c->e, true);
    if (why == RLG_REC_OK && h->type >= RLOG_TYPE_USER_MIN && c->rec_off > UINT32_MAX)
        why = RLG_REC_FAR;
    if (why != RLG_REC_OK) {
        char what[128];
        rlg_rec_why_str(why, h, what, sizeof what);
        return rv_fail(r, c, "%s (expected LSN %" PRIu64 ")", what, c->e);
    }
    return 0;
}

/* Feeds len bytes (any split of the segment's records) into c. */
static int rv_feed(rlg_replica *r, rlg_rv *c, const uint8_t *p, size_t len, rlg_rv_fn fn, void *arg)
{
    for (;;) {
        if (c->hlen < RLG_REC_HEADER_SIZE) {
            if (len == 0)
                return 0;
            if (c->hlen == 0) {
                c->rec_off = c->off;
                if (c->sealed)
                    return rv_fail(r, c, "%zu bytes after the seal", len);
                if (RP_MAX_FILE - c->off < RLG_REC_HEADER_SIZE)
                    return rv_fail(r, c, "record header past 4 GiB");
            }
            size_t n = RLG_REC_HEADER_SIZE - c->hlen;
            n = n < len ? n : len;
            memcpy(c->hdr + c->hlen, p, n);
            c->hlen += n;
            c->off += n;
            p += n;
            len -= n;
            if (c->hlen < RLG_REC_HEADER_SIZE)
                return 0;
            rlg_rec_header_decode(c->hdr, &c->h);
            int rv = rv_fields(r, c);
            if (rv)
                return rv;
            c->crc = rlg_crc32c_update(c->salt, c->hdr + 4, RLG_REC_HEADER_SIZE - 4);
            c->left = c->h.len;
        }
        size_t n = c->left < len ? (size_t)c->left : len;
        if (n) {
            c->crc = rlg_crc32c_update(c->crc, p, n);
            c->off += n;
            p += n;
            len -= n;
            c->left -= n;
        }
        if (c->left)
            return 0;
        if (~c->crc != c->h.crc)
            return rv_fail(r, c, "record checksum mismatch (type %u, LSN %" PRIu64 ")",
                           (unsigned)c->h.type, c->h.lsn);
        if (c->h.type >= RLOG_TYPE_USER_MIN)
            c->e++;
        if (c->h.type == RLG_TYPE_SEAL)
            c->sealed = true;
        int rv = fn ? fn(arg, c) : 0;
        c->hlen = 0;
        if (rv)
            return rv;
    }
}

/* ----------------------------------------------------------------- spares */

/* Makes sure the file of segment seq (at most spare_hi + 1) exists durably
 * and reads as file_size bytes of zeros, its size set without a sync (a
 * spare shorter than it should be, even empty, is still a valid spare).
 * `taken`: the segment is about to be written in place — the file is
 * opened even when it is known and synced, so that its size is durable
 * before its header is (recovery takes a segment file with a valid header
 * to have its full size); it is not pre-written: zeros go ahead of the
 * records as they come (zero_ahead). A file already there is one of ours
 * (the log's writing rules leave zeros after the newest segment). */
static int spare_ensure(rlg_replica *r, uint64_t seq, bool taken)
{
    if (seq <= r->spare_hi && !taken)
        return 0;
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    rlog_file *f = NULL;
    const char *what = "create";
    bool made = false, known = seq <= r->spare_hi;
    int e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f);
    if (e == EEXIST) {
        what = "open";
        e = v->open(v, path, RLOG_VFS_RDWR, &f);
    } else if (!e) {
        made = true;
    }
    uint64_t size = 0;
    if (!e && (what = "size", e = v->size(v, f, &size)) == 0 && size != r->file_size)
        e = (what = "truncate", v->truncate(v, f, r->file_size));
    if (!e && taken) /* the size is durable before a header is (recovery: full size) */
        e = (what = "fdatasync", rlg_os_fdatasync(v, f));
    if (f)
        v->close(v, f);
    if (!e && (made || !known))
        e = (what = "directory fsync after creating", rlg_os_sync_dir(v, r->l->dir));
    if (e) {
        if (made && v->unlink(v, path) == 0) /* not needed yet: no seal before it */
            rlg_os_sync_dir(v, r->l->dir);
        return rlg_rp_fail(r, rlog_from_errno(e), "preparing segment file %s: %s: %s", path, what,
                           strerror(e));
    }
    if (seq > r->spare_hi)
        r->spare_hi = seq;
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

/* Creates the empty file of segment seq if it is missing, without a sync
 * (the caller's next directory fsync makes it durable). 0 or an errno. */
static int spare_ahead(rlg_replica *r, uint64_t seq)
{
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    rlog_file *f = NULL;
    int e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f);
    if (e)
        return e;
    e = v->truncate(v, f, r->file_size);
    v->close(v, f);
    return e;
}

/* -------------------------------------------------------------- opening */

/* Recovery found no log: remove what an interrupted start left (segment
 * files holding zeros, temporary files, a marker). */
static int open_empty(rlg_replica *r)
{
    int rv = rlg_rp_remove_seg_files(r, true, "opening an empty replica");
    if (rv)
        return rv;
    int e = rlg_os_sync_dir(r->l->vfs, r->l->dir);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "directory fsync of '%s': %s", r->l->dir,
                           strerror(e));
    e = rlg_unsynced_clear(r->l);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "removing the unsynced marker: %s", strerror(e));
    return 0;
}

/* Recovery found a log: apply its decision as a writable open does. */
static int open_log(rlg_replica *r, rlg_recovery *rc)
{
    rlog_log *l = r->l;
    int rv = rlg_adopt(l, rc);
    if (rv)
        return rv;
    if (l->spare_file) { /* the zeroed successor: kept, opened when needed */
        r->spare_hi = l->spare_seq;
        l->vfs->close(l->vfs, l->spare_file);
        l->spare_file = NULL;
        l->spare_state = RLG_SPARE_NONE;
    }
    const rlg_segment *s = newest(r);
    r->file_size = s->size > s->end ? s->size : s->end;
    return rlg_rp_load_last(r);
}

int rlg_replica_open(const char *dir, rlog_vfs *vfs, rlog_env *env, rlg_replica **out, char *err,
                     size_t errcap)
{
    *out = NULL;
    if (errcap)
        err[0] = 0;
    rlog_options o;
    rlog_options_init(&o);
    o.vfs = vfs;
    o.env = env;
    o.flags = RLOG_OPEN_CREATE;
    rlg_replica *r = calloc(1, sizeof *r);
    rlog_log *l = r && dir && *dir ? rlg_log_new(dir, &o) : NULL;
    if (!l) {
        free(r);
        return dir && *dir ? RLOG_ENOMEM : RLOG_EINVAL;
    }
    r->l = l;
    l->replica = true;
    rlog_open_report rep;
    memset(&rep, 0, sizeof rep);
    int rv = rlg_lock_dir(l, &l->lockf, &rep);
    rlg_recovery rc;
    memset(&rc, 0, sizeof rc);
    if (!rv) {
        rv = rlg_recover(l->vfs, dir, 0, &rc, &rep);
        if (rv == RLOG_ENOTLOG)
            rv = open_empty(r);
        else if (!rv)
            rv = open_log(r, &rc);
        else
            snprintf(l->errmsg, sizeof l->errmsg, "%s", rep.message);
    } else {
        snprintf(l->errmsg, sizeof l->errmsg, "%s", rep.message);
    }
    rlg_recovery_free(&rc);
    if (rv) {
        if (errcap)
            snprintf(err, errcap, "replica '%s': %s", dir, l->errmsg);
        rlg_log_release(l);
        free(r);
        return rv;
    }
    *out = r;
    return 0;
}

void rlg_replica_close(rlg_replica *r)
{
    if (!r)
        return;
    rlg_replica_segment_abort(r);
    rlg_replica_file_abort(r);
    if (r->runf)
        r->l->vfs->close(r->l->vfs, r->runf);
    rlg_log_release(r->l);
    free(r);
}

void rlg_replica_pos_get(const rlg_replica *r, rlg_replica_pos *p)
{
    memset(p, 0, sizeof *p);
    const rlg_segment *s = newest(r);
    if (!s && !r->adopted)
        return;
    p->log_id = r->l->log_id;
    p->file_size = r->file_size;
    if (!s) { /* adopted, no segment yet: as if segment base_seq - 1 were sealed */
        p->first_lsn = r->base_lsn;
        p->last_lsn = r->base_lsn - 1;
        p->seq = r->base_seq - 1;
        p->seg_first_lsn = r->base_lsn;
        p->sealed = true;
        return;
    }
    p->first_lsn = r->l->segs[0].first_lsn;
    p->last_lsn = s->last_lsn;
    p->seq = s->seq;
    p->seg_first_lsn = s->first_lsn;
    p->end = s->end;
    p->sealed = s->sealed;
    p->last_rec_off = r->last_off;
    p->last_rec_crc = r->last_crc;
    p->last_rec_lsn = r->last_lsn;
}

const char *rlg_replica_errmsg(const rlg_replica *r)
{
    return r->l->errmsg;
}

static bool file_size_ok(uint64_t size)
{
    return size >= RLG_SEG_HEADER_SIZE + RLG_SEAL_SIZE && size <= 0xffffffffull;
}

int rlg_replica_adopt(rlg_replica *r, uint64_t log_id, uint64_t file_size, uint64_t seq,
                      uint64_t first_lsn)
{
    int rv = rlg_rp_check(r);
    if (rv)
        return rv;
    if (!log_id || !seq || !first_lsn || first_lsn == UINT64_MAX || !file_size_ok(file_size))
        return rlg_rp_fail(r, RLOG_EINVAL,
                           "adopt: invalid log id %016" PRIx64 ", file size %" PRIu64
                           ", segment %" PRIu64 " or first LSN %" PRIu64,
                           log_id, file_size, seq, first_lsn);
    const rlg_segment *s = newest(r);
    if (s && r->l->log_id != log_id)
        return rlg_rp_fail(r, RLOG_EFOREIGN,
                           "adopt: the replica holds segments of log %016" PRIx64
                           ", not of log %016" PRIx64,
                           r->l->log_id, log_id);
    if (s)
        return rlg_rp_fail(r, RLOG_EINVAL,
                           "adopt: the replica is not empty (LSN %" PRIu64 "..%" PRIu64
                           "); truncate or reset it first",
                           r->l->segs[0].first_lsn, s->last_lsn);
    r->l->log_id = log_id;
    r->file_size = file_size;
    r->base_seq = seq;
    r->base_lsn = first_lsn;
    r->adopted = true;
    return 0;
}

int rlg_replica_set_file_size(rlg_replica *r, uint64_t file_size)
{
    if (!file_size_ok(file_size))
        return rlg_rp_fail(r, RLOG_EINVAL, "segment file size %" PRIu64 " out of range", file_size);
    r->file_size = file_size; /* a spare of another size is resized when it is taken */
    return 0;
}

/* ------------------------------------------------------ where bytes go */

/* Whether bytes for (seq, first_lsn) at off continue the replica: the
 * newest segment at its end, or the next segment at offset 64. */
static int continues(rlg_replica *r, uint64_t seq, uint64_t first_lsn, uint64_t off, bool *fresh)
{
    const rlg_segment *s = newest(r);
    char a[32], b[32];
    if (!s && !r->adopted)
        return rlg_rp_fail(r, RLOG_EINVAL, "the replica is empty: adopt a log first");
    seg_name(seq, a);
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
                           a, off, s ? seg_name(s->seq, b) : "no segment",
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

/* Before the first segment of an empty replica: any segment file present
 * is a leftover (a zero spare of a reset that failed part-way, of a failed
 * first install, of a log the replica held before) and goes, so that it
 * cannot sit in a gap before the new segment (a gap in the run of segment
 * files is corruption, step 2 of recovery). None of them holds a valid
 * header, so the directory reads as "no log" meanwhile. The unlinks are made
 * durable by the directory fsync that precedes the rename bringing in the
 * first segment (first_segment; install, after spare_ensure). */
static int clear_leftovers(rlg_replica *r)
{
    assert(r->l->nsegs == 0);
    int rv = rlg_rp_remove_seg_files(r, false, "removing leftover segment files");
    if (rv)
        return rv;
    r->spare_hi = 0;
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

/* A new segment in place: its file ready (zeros, allocated); it enters the
 * index once its header is durable. The first segment of an empty replica
 * gets its header before any record (first_segment); later ones write it
 * with their first run (the log's rotation: the predecessor's seal is
 * durable, the file exists, zero-filled). */
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
        rv = clear_leftovers(r);
        if (!rv)
            rv = first_segment(r, seq, hdr, &f);
        if (rv)
            return rv;
        r->zero_seq = seq; /* pre-written whole (first_segment) */
        r->zero_to = r->file_size;
        r->l->segs[r->l->nsegs++] = *ns;
        memset(ns, 0, sizeof *ns);
    } else {
        rv = spare_ensure(r, seq, true);
        if (!rv)
            rv = open_segment_file(r, seq, &f);
        r->zero_seq = 0; /* nothing written ahead in this file yet */
        if (rv)
            return rv;
    }
    r->l->wfile = f;
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
    rlg_segment *s = pending ? &ns : newest(r);
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
            rv = spare_ensure(r, seq + 1, false); /* the successor exists before the seal */
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
            s = newest(r);
            pending = false;
        }
        index_apply(r, s, rs, i, j);
        i = j;
    }
    rlg_segment_free(&ns);
    if (!rv && newest(r)->sealed)
        rlg_rp_close_active(r);
    if (rv && pending) /* the file is the zero spare again */
        rlg_rp_close_active(r);
    return rv;
}

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
    rv = spare_ensure(r, seq + 1, false);
    bool ahead = !rv && r->spare_hi == seq + 1 && spare_ahead(r, seq + 2) == 0;
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

int rlg_rp_copy_prefix(rlg_replica *r, uint64_t seq, uint64_t end, rlog_file *t)
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
    rv_init(&c, r->l->log_id, seq, RLG_SEG_HEADER_SIZE, s->first_lsn);
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
            bad = rv_feed(r, &c, buf + skip, n - skip, NULL, NULL) != 0;
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
    rv = continues(r, seq, seg_first_lsn, off, &fresh);
    if (rv)
        return rv;
    const rlg_segment *s = newest(r);
    rlg_rv c;
    rv_init(&c, r->l->log_id, seq, off, fresh ? seg_first_lsn : s->last_lsn + 1);
    rp_recs rs;
    memset(&rs, 0, sizeof rs);
    rv = rv_feed(r, &c, bytes, len, recs_collect, &rs);
    if (!rv && c.hlen)
        rv = rv_fail(r, &c, "the bytes end inside a record (%" PRIu64 " of its bytes given)",
                     c.off - c.rec_off);
    if (rv == RLOG_ENOMEM)
        rlg_rp_fail(r, rv, "append: out of memory verifying %zu bytes", len);
    if (!rv && (fresh || rs.n))
        rv = append_inplace(r, fresh, seq, seg_first_lsn, bytes, &rs);
    free(rs.v);
    return rv;
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
    rv = continues(r, seq, seg_first_lsn, RLG_SEG_HEADER_SIZE, &fresh);
    if (!rv && !fresh)
        rv = rlg_rp_fail(r, RLOG_EPROTO,
                         "segment_begin: the replica holds segment %" PRIu64 " already", seq);
    if (!rv && r->l->nsegs == 0)
        rv = clear_leftovers(r);
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
    rv_init(&rx->rv, r->l->log_id, seq, RLG_SEG_HEADER_SIZE, seg_first_lsn);
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
                         seg_name(rx->rv.seq, name), off, rx->rv.off);
    }
    if (!rv)
        rv = rv_feed(r, &rx->rv, bytes, len, rx_collect, rx);
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
                         seg_name(rx->rv.seq, name), rx->rv.off, rx->rv.e - 1);
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
