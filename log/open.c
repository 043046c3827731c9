/* Opening (creating, recovering, applying the cut) and closing a log; a
 * handle's lifetime and accessors are in log/handle.c. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/handle.h"
#include "log/open.h"
#include "log/spare.h"
#include "log/unsynced.h"
#include "log/writer.h"
#include "os/install.h"
#include "os/sync.h"

#define RLG_DEFAULT_SEGMENT    (64ull << 20)
#define RLG_DEFAULT_MAX_RECORD (16u << 20)
#define RLG_MIN_SEGMENT        4096ull
#define RLG_MAX_SEGMENT        0xffffffffull

void rlog_options_init(rlog_options *o)
{
    memset(o, 0, sizeof *o);
    o->segment_size = RLG_DEFAULT_SEGMENT;
    o->max_record = RLG_DEFAULT_MAX_RECORD;
    o->sync = RLOG_SYNC_EACH;
}

/* ------------------------------------------------------------------ open */

static int check_options(const rlog_options *in, rlog_options *o, char *msg, size_t cap)
{
    if (in)
        *o = *in;
    else
        rlog_options_init(o);
    if (!o->segment_size)
        o->segment_size = RLG_DEFAULT_SEGMENT;
    if (!o->max_record)
        o->max_record = RLG_DEFAULT_MAX_RECORD;
    if (o->segment_size < RLG_MIN_SEGMENT || o->segment_size > RLG_MAX_SEGMENT) {
        snprintf(msg, cap, "segment_size %" PRIu64 " is outside 4096 .. 4294967295",
                 o->segment_size);
        return RLOG_EINVAL;
    }
    if (o->sync > RLOG_SYNC_NONE) {
        snprintf(msg, cap, "unknown sync mode %d", (int)o->sync);
        return RLOG_EINVAL;
    }
    uint64_t room = o->segment_size - RLG_SEG_HEADER_SIZE - 3 * RLG_REC_HEADER_SIZE;
    if (o->max_record > room)
        o->max_record = (uint32_t)room;
    return 0;
}

static void parent_of(const char *dir, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", dir);
    char *slash = strrchr(buf, '/');
    if (!slash)
        snprintf(buf, cap, ".");
    else if (slash == buf)
        buf[1] = 0;
    else
        *slash = 0;
}

/* Calls fn(l, name, arg) for each name in the log's directory until one
 * returns non-zero, which it returns. */
static int each_name(rlog_log *l, int (*fn)(rlog_log *l, const char *name, void *arg), void *arg)
{
    char **names = NULL;
    size_t n = 0;
    int e = l->vfs->list(l->vfs, l->dir, &names, &n);
    if (e)
        return rlg_fail(l, rlog_from_errno(e), "listing '%s': %s", l->dir, strerror(e));
    int rv = 0;
    for (size_t i = 0; i < n && !rv; i++)
        rv = fn(l, names[i], arg);
    rlog_vfs_free_names(names, n);
    return rv;
}

/* Unlinks path (one already gone is fine); no directory sync. */
static int remove_path(rlog_log *l, const char *path)
{
    int e = l->vfs->unlink(l->vfs, path);
    if (e && e != ENOENT)
        return rlg_fail(l, rlog_from_errno(e), "removing %s: %s", path, strerror(e));
    return 0;
}

static int remove_files(rlog_log *l, const uint64_t *seqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        rlg_seg_path(l, seqs[i], path, sizeof path);
        int e = l->vfs->unlink(l->vfs, path);
        if (!e)
            e = rlg_os_sync_dir(l->vfs, l->dir);
        if (e && e != ENOENT)
            return rlg_fail(l, rlog_from_errno(e), "removing %s: %s", path, strerror(e));
    }
    return 0;
}

/* Recovery said "not a log": any segment files are all-zero leftovers of an
 * interrupted creation. Remove them so creation starts from nothing. */
static int remove_leftover(rlog_log *l, const char *name, void *arg)
{
    (void)arg;
    uint64_t seq;
    if (rlg_seg_parse_name(name, &seq))
        return remove_files(l, &seq, 1);
    if (rlg_is_temp_name(name)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", l->dir, name);
        return remove_path(l, path);
    }
    return 0;
}

static int remove_leftovers(rlog_log *l)
{
    return each_name(l, remove_leftover, NULL);
}

/* Writes segment 1 of a new log under a temporary name — zeros, header,
 * synced — and only then renames it into place (directory synced): a file
 * with a segment name always had a durable, valid header (os/install.h).
 * A failed creation removes the temporary file; one interrupted by a crash
 * leaves it, and the next creation removes it. */
static int build_first_segment(rlog_log *l, rlog_file **out, const char **what)
{
    rlog_vfs *v = l->vfs;
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/%s", l->dir, RLG_CREATE_TMP);
    rlg_seg_path(l, 1, path, sizeof path);
    rlog_file *f = NULL;
    int e = rlg_prepare_file(l, tmp, false, &f, what);
    uint8_t hdr[RLG_SEG_HEADER_SIZE];
    rlg_seg_header h = {RLG_FORMAT_VERSION, l->log_id, 1, 1, 0};
    rlg_seg_header_encode(&h, hdr);
    size_t done = 0;
    if (!e) {
        *what = "writing the header of";
        e = v->pwrite(v, f, hdr, sizeof hdr, 0, &done);
    }
    if (!e && done != sizeof hdr)
        e = EIO;
    if (e) {
        rlg_install_discard(v, l->dir, f, tmp);
        return e;
    }
    /* a failed open leaves no handle to poison: FATAL is a plain failure */
    rlg_os_fail fail;
    if (rlg_install(v, l->dir, f, tmp, path, 0, &fail) != RLG_OS_OK) {
        *what = fail.what;
        return fail.err;
    }
    *what = "opening"; /* the handle names the segment from now on */
    return v->open(v, path, RLOG_VFS_RDWR, out);
}

static int create_log(rlog_log *l, rlog_open_report *rep)
{
    l->log_id = l->env->random(l->env);
    if (!l->log_id)
        l->log_id = 1;
    l->segs = calloc(1, sizeof *l->segs);
    if (!l->segs)
        return RLOG_ENOMEM;
    l->capsegs = l->nsegs = 1;
    rlg_segment *s = &l->segs[0];
    s->seq = 1;
    s->first_lsn = 1;
    s->last_lsn = 0;
    s->end = RLG_SEG_HEADER_SIZE;
    s->size = l->opts.segment_size;
    s->dend = RLG_SEG_HEADER_SIZE; /* synced before the rename */
    int rv = remove_leftovers(l);
    if (rv) {
        snprintf(rep->message, sizeof rep->message, "%s", l->errmsg);
        return rv;
    }
    const char *what = "";
    int e = build_first_segment(l, &l->wfile, &what);
    if (e) {
        snprintf(rep->message, sizeof rep->message, "creating a log in '%.300s': %s %s: %s", l->dir,
                 what, RLG_CREATE_TMP, strerror(e));
        return rlog_from_errno(e);
    }
    l->wfile_seq = 1;
    l->disk_last_seq = 1;
    l->spare_next = 2;
    l->enc_off = RLG_SEG_HEADER_SIZE;
    l->first = 1;
    rep->status = RLOG_TAIL_CLEAN;
    rep->log_id = l->log_id;
    rep->segments = 1;
    rep->first_lsn = 1;
    snprintf(rep->message, sizeof rep->message, "created a new log in '%s'", l->dir);
    return 0;
}

/* Zeroes the torn bytes recovery found and syncs them. If that fails, the
 * page cache may show zeros where the disk still holds the torn bytes: the
 * unsynced marker makes the next open zero them again (see open_existing). */
static int apply_cut(rlog_log *l, const rlg_recovery *r)
{
    char path[4096];
    rlg_seg_path(l, r->cut_seq, path, sizeof path);
    rlog_file *f = NULL;
    int e = l->vfs->open(l->vfs, path, RLOG_VFS_RDWR, &f);
    if (!e)
        e = rlg_write_zeros(l->vfs, f, r->cut_off, r->cut_end);
    if (!e)
        e = rlg_os_fdatasync(l->vfs, f);
    if (f)
        l->vfs->close(l->vfs, f);
    if (e) {
        if (f)
            rlg_unsynced_mark(l, r->witnessed);
        return rlg_fail(l, rlog_from_errno(e),
                        "cutting the torn tail of %s at offset %" PRIu64 ": %s", path, r->cut_off,
                        strerror(e));
    }
    return 0;
}

/* A replica's kept spare f: what is not zero is zeroed and synced. Its
 * size is the replica's to set when it takes it, and it is never trusted
 * to be durable: the replica replaces it then (open_log in
 * log/replica.c). */
static int prepare_kept_spare(rlog_log *l, rlog_file *f, const char **what)
{
    size_t cap = RLG_ZERO_CHUNK;
    uint8_t *buf = malloc(cap), *zeros = rlg_zero_chunk;
    uint64_t size = 0;
    bool dirty = false;
    *what = "zeroing";
    int e = buf ? l->vfs->size(l->vfs, f, &size) : ENOMEM;
    for (uint64_t off = 0; !e && off < size; off += cap) {
        size_t n = size - off < cap ? (size_t)(size - off) : cap, got = 0, done = 0;
        e = l->vfs->pread(l->vfs, f, buf, n, off, &got);
        if (!e && got != n)
            e = EIO;
        if (!e && memcmp(buf, zeros, n) != 0) {
            e = l->vfs->pwrite(l->vfs, f, zeros, n, off, &done);
            if (!e && done != n)
                e = EIO;
            dirty = true;
        }
    }
    free(buf);
    return !e && dirty ? rlg_os_fdatasync(l->vfs, f) : e;
}

/* The first spare (seq last+1) stays the next segment: when the last
 * segment is sealed it must never be missing, even for a moment. Recovery
 * checked it holds no record of this log. Further spares are removed
 * first, highest first, so that the files left always form a contiguous
 * run (a gap in the run is corruption, step 2 of recovery).
 *
 * A log does not trust the kept spare: an earlier process made it, and
 * that process's fdatasync of it may have failed. A later fdatasync that
 * succeeds proves nothing (the kernel may have dropped the failed pages'
 * dirty state, the file's size with them; soak seed 60319397: a leader's
 * sealed segment came back from a power loss 1,943 bytes short of the
 * segment size). So it is not adopted as the ready spare: the next
 * preparation writes every byte of it again in place, or renames a
 * recycled file over it (log/spare.c, l->spare_kept). */
static int adopt_spares(rlog_log *l, const rlg_recovery *r)
{
    size_t keep = r->nspares && r->spares[0] == l->disk_last_seq + 1 ? 1 : 0;
    for (size_t i = r->nspares; i > keep; i--) {
        int rv = remove_files(l, &r->spares[i - 1], 1);
        if (rv)
            return rv;
    }
    if (!keep)
        return 0;
    if (!l->replica) {
        l->spare_kept = r->spares[0];
        return 0;
    }
    char path[4096];
    rlg_seg_path(l, r->spares[0], path, sizeof path);
    const char *what = "opening";
    int e = l->vfs->open(l->vfs, path, RLOG_VFS_RDWR, &l->spare_file);
    if (!e)
        e = prepare_kept_spare(l, l->spare_file, &what);
    if (e)
        return rlg_fail(l, rlog_from_errno(e), "preparing spare %s: %s: %s", path, what,
                        strerror(e));
    l->spare_seq = r->spares[0];
    l->spare_state = RLG_SPARE_READY;
    return 0;
}

/* Repair dropped segments seq >= from: delete them, newest first, so the
 * files left always form a contiguous run. */
static int note_top(rlog_log *l, const char *name, void *arg)
{
    (void)l;
    uint64_t seq, *top = arg;
    if (rlg_seg_parse_name(name, &seq) && seq > *top)
        *top = seq;
    return 0;
}

static int delete_dropped(rlog_log *l, uint64_t from)
{
    uint64_t top = 0;
    int rv = each_name(l, note_top, &top);
    for (uint64_t seq = top; seq >= from && seq > 0 && !rv; seq--)
        rv = remove_files(l, &seq, 1);
    return rv;
}

/* Checks that buf (bytes [from, end) of segment s) still holds exactly the
 * valid records recovery found there: a read must not be trusted blindly
 * before it is written back. */
static bool tail_intact(const rlog_log *l, const rlg_segment *s, const uint8_t *buf, uint64_t from,
                        uint64_t end)
{
    uint64_t off = from;
    if (off == 0) {
        rlg_seg_header h;
        if (rlg_seg_header_decode(buf, &h) != RLG_HDR_OK || h.seq != s->seq)
            return false;
        off = RLG_SEG_HEADER_SIZE;
    }
    uint32_t salt = rlg_salt_state(l->log_id, s->seq);
    rlg_rec_header h;
    for (uint64_t o = off - from; o < end - from;)
        if (!rlg_seg_next(buf, (size_t)(end - from), salt, &o, &h))
            return false;
    return true;
}

/* Rewrites [from, end) of segment s with the bytes it reads back (checked
 * again first), then syncs: bytes that only the page cache holds (a sync of
 * them failed before the process restarted) become durable for real. */
static int rewrite_tail(rlog_log *l, rlog_file *f, const rlg_segment *s, uint64_t from,
                        uint64_t end)
{
    if (from >= end)
        return rlg_os_fdatasync(l->vfs, f);
    uint8_t *buf = malloc((size_t)(end - from));
    if (!buf)
        return ENOMEM;
    size_t got = 0, done = 0;
    int e = l->vfs->pread(l->vfs, f, buf, (size_t)(end - from), from, &got);
    if (!e && got != end - from)
        e = EIO;
    if (!e && !tail_intact(l, s, buf, from, end))
        e = EIO; /* the bytes changed under us: an unstable read */
    if (!e)
        e = l->vfs->pwrite(l->vfs, f, buf, (size_t)(end - from), from, &done);
    if (!e && done != end - from)
        e = EIO;
    free(buf);
    return e ? e : rlg_os_fdatasync(l->vfs, f);
}

/* Where the last segment's unproven bytes start: just past the last byte of
 * the user record whose LSN is `proven` (the highest LSN known durable), or
 * at the header when no record of the segment is proven (then not even the
 * header is). Everything after that record — later records, but also a
 * checkpoint or a seal right behind it, which may have been written in the
 * same failed write — may exist only in the page cache. Sets *from, or
 * returns an errno. */
static int unproven_from(rlog_log *l, rlog_file *f, const rlg_segment *s, uint64_t proven,
                         uint64_t *from)
{
    if (proven < s->first_lsn || s->noffs == 0) {
        *from = 0;
        return 0;
    }
    uint64_t lsn = proven < s->last_lsn ? proven : s->last_lsn;
    uint64_t off = s->offs[lsn - s->first_lsn];
    rlg_rec_header h;
    int e = rlg_read_rec_header(l->vfs, f, off, &h);
    if (!e)
        *from = off + RLG_REC_HEADER_SIZE + h.len;
    return e;
}

bool rlg_is_temp_name(const char *name)
{
    return !strcmp(name, RLG_CREATE_TMP) || !strcmp(name, RLG_RECEIVE_TMP) ||
           !strcmp(name, RLG_RECEIVE_FILE_TMP) || !strcmp(name, RLG_SPARE_TMP) ||
           !strcmp(name, RLG_UNSYNCED_TMP) || !strcmp(name, RLG_RUN_MARKER) ||
           !strncmp(name, RLG_RECYCLE_PREFIX, strlen(RLG_RECYCLE_PREFIX));
}

/* Deleted segment files left waiting for recycling (rlog.recycle-*) wait
 * again, up to the bound; the others are unlinked (no directory sync: one
 * that reappears after a crash is taken or removed by the next open). */
static int adopt_pooled(rlog_log *l, const char *name, void *arg)
{
    const bool *recycle = arg;
    size_t plen = strlen(RLG_RECYCLE_PREFIX);
    if (strncmp(name, RLG_RECYCLE_PREFIX, plen) != 0)
        return 0;
    char *end = NULL;
    uint64_t old = strtoull(name + plen, &end, 16);
    char path[4096], canon[4096];
    snprintf(path, sizeof path, "%s/%s", l->dir, name);
    rlg_pool_path(l, old, canon, sizeof canon);
    if (*recycle && l->npool < RLG_RECYCLE_MAX && !strcmp(canon, path)) {
        l->pool[l->npool++] = old;
        return 0;
    }
    return remove_path(l, path);
}

static int adopt_pool(rlog_log *l)
{
    bool recycle = !l->replica && !(l->opts.flags & RLOG_OPEN_NO_RECYCLE);
    return each_name(l, adopt_pooled, &recycle);
}

/* A replica's run marker (docs/format.md, "The run marker") has served its
 * purpose once everything recovered is durable: removed, durably (one that
 * reappeared would only keep witnesses in its range from counting).
 * 0 or an errno. */
static int remove_run_marker(rlog_log *l)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", l->dir, RLG_RUN_MARKER);
    int e = l->vfs->unlink(l->vfs, path);
    if (e == ENOENT)
        return 0;
    return e ? e : rlg_os_sync_dir(l->vfs, l->dir);
}

/* Unlinks the temporary files of an interrupted segment or side-file
 * receive or spare replacement (a replica's, log/replica*.c): never part
 * of the log. No directory
 * sync: one that reappears after a crash is removed again. */
static int remove_receive_temps(rlog_log *l)
{
    static const char *const names[] = {RLG_RECEIVE_TMP, RLG_RECEIVE_FILE_TMP, RLG_SPARE_TMP};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", l->dir, names[i]);
        int e = l->vfs->unlink(l->vfs, path);
        if (e && e != ENOENT)
            return rlg_fail(l, rlog_from_errno(e), "removing %s: %s", path, strerror(e));
    }
    return 0;
}

/* What a read-only handle can vouch for as durable (for the shipping view):
 * the segments before the last one (their seals were synced before their
 * successors got headers) and, in the last one, the records its proof
 * covers. Its own seal, a trailing checkpoint and unproven records may live
 * only in the page cache of a process that died. */
static void readonly_durable(rlog_log *l, const rlg_recovery *r)
{
    for (size_t i = 0; i + 1 < l->nsegs; i++) {
        l->segs[i].dend = l->segs[i].end;
        l->segs[i].dsealed = l->segs[i].sealed;
    }
    rlg_segment *s = &l->segs[l->nsegs - 1];
    /* a first segment's header is durable: made so by creation (renamed in
     * after a sync), or proven by the durable record that allowed its
     * predecessors' deletion */
    s->dend = l->nsegs == 1 ? RLG_SEG_HEADER_SIZE : 0;
    s->dsealed = false;
    if (r->witnessed < s->first_lsn || s->noffs == 0)
        return;
    uint64_t lsn = r->witnessed < s->last_lsn ? r->witnessed : s->last_lsn;
    uint64_t off = s->offs[lsn - s->first_lsn];
    char path[4096];
    rlg_seg_path(l, s->seq, path, sizeof path);
    rlog_file *f = NULL;
    rlg_rec_header h;
    int e = l->vfs->open(l->vfs, path, RLOG_VFS_RDONLY, &f);
    if (!e)
        e = rlg_read_rec_header(l->vfs, f, off, &h);
    if (f)
        l->vfs->close(l->vfs, f);
    if (!e)
        s->dend = off + RLG_REC_HEADER_SIZE + h.len;
}

/* An active segment shorter than the segment size (written under a smaller
 * setting, or cut short and then repaired) is pre-written to full size
 * before anything is appended: records never run to a file's end, which is
 * what lets recovery tell a file cut short from outside (docs/format.md,
 * "A segment cut short"). */
static int grow_active(rlog_log *l, rlog_file *f, rlg_segment *s)
{
    uint64_t size = 0;
    int e = l->vfs->size(l->vfs, f, &size);
    if (e || size >= l->opts.segment_size)
        return e;
    e = rlg_write_zeros(l->vfs, f, size, l->opts.segment_size);
    if (!e)
        e = rlg_os_fdatasync(l->vfs, f);
    if (!e)
        s->size = l->opts.segment_size;
    return e;
}

/* Takes the recovered state; opens the active segment for writing and makes
 * everything kept durable. */
int rlg_adopt(rlog_log *l, rlg_recovery *r)
{
    l->log_id = r->log_id;
    l->segs = r->segs;
    l->nsegs = l->capsegs = r->nsegs;
    r->segs = NULL;
    r->nsegs = 0;
    rlg_segment *last = &l->segs[l->nsegs - 1];
    l->first = l->segs[0].first_lsn;
    l->appended = l->written = l->durable = last->last_lsn;
    l->enc_off = last->end;
    l->disk_last_seq = last->seq;
    l->wfile_seq = last->seq;
    l->spare_next = last->seq + 1;
    if (l->readonly) {
        readonly_durable(l, r);
        return 0;
    }
    /* the directory as recovery saw it (an unsynced unlink of a failed
     * prefix deletion, say) becomes durable before anything builds on it */
    int e0 = rlg_os_sync_dir(l->vfs, l->dir);
    if (e0)
        return rlg_fail(l, rlog_from_errno(e0), "directory fsync of '%s': %s", l->dir,
                        strerror(e0));
    int rv = remove_receive_temps(l);
    if (!rv)
        rv = adopt_pool(l);
    if (!rv && r->delete_from_seq)
        rv = delete_dropped(l, r->delete_from_seq);
    if (!rv && r->cut)
        rv = apply_cut(l, r);
    if (rv)
        return rv;
    rv = adopt_spares(l, r);
    if (rv)
        return rv;
    /* recovered == durable from here on: a plain fdatasync flushes what a
     * crashed process left dirty; after a failed sync (the marker says so)
     * the records past the last durable LSN are rewritten first */
    char path[4096];
    rlg_seg_path(l, last->seq, path, sizeof path);
    rlog_file *f = NULL;
    uint64_t marked = 0, from = last->end;
    int m = rlg_unsynced_read(l, &marked);
    /* an unreadable marker (its write failed too): from the proof */
    uint64_t start = m == 1 && marked > r->witnessed ? marked : r->witnessed;
    int e = m < 0 ? -m : l->vfs->open(l->vfs, path, RLOG_VFS_RDWR, &f);
    if (!e && m > 0)
        e = unproven_from(l, f, last, start, &from);
    uint64_t fsize = 0;
    if (!e && m > 0) /* zeros the page cache shows past the end may hide torn bytes
                        on the disk (a cut whose sync failed): write them again */
        e = l->vfs->size(l->vfs, f, &fsize);
    if (!e && m > 0 && fsize > last->end)
        e = rlg_write_zeros(l->vfs, f, last->end, fsize);
    if (!e)
        e = rewrite_tail(l, f, last, from, last->end);
    if (!e && !last->sealed && !l->replica)
        e = grow_active(l, f, last);
    if (e && m == 0 && f)
        rlg_unsynced_mark(l, r->witnessed); /* a failed sync here: same danger */
    bool clearing = !e && m > 0;
    if (clearing)
        e = rlg_unsynced_clear(l, start);
    if (e) {
        if (f)
            l->vfs->close(l->vfs, f);
        if (clearing)
            return rlg_fail(l, rlog_from_errno(e),
                            "removing the unsynced marker in '%s' (left again for the next "
                            "open): %s",
                            l->dir, strerror(e));
        return rlg_fail(l, rlog_from_errno(e), "making %s durable: %s", path, strerror(e));
    }
    e = r->run_file ? remove_run_marker(l) : 0;
    if (e) {
        l->vfs->close(l->vfs, f);
        return rlg_fail(l, rlog_from_errno(e), "removing %s/%s: %s", l->dir, RLG_RUN_MARKER,
                        strerror(e));
    }
    if (last->sealed)
        l->vfs->close(l->vfs, f);
    else
        l->wfile = f;
    for (size_t i = 0; i < l->nsegs; i++) { /* everything kept is durable now */
        l->segs[i].dend = l->segs[i].end;
        l->segs[i].dsealed = l->segs[i].sealed;
    }
    return 0;
}

int rlg_lock_dir(rlog_log *l, rlog_file **lk, rlog_open_report *rep)
{
    int e = l->vfs->lock(l->vfs, l->dir, lk);
    if (e == ENOENT && (l->opts.flags & RLOG_OPEN_CREATE)) {
        e = l->vfs->mkdir(l->vfs, l->dir);
        if (e && e != EEXIST) { /* e.g. a missing parent: rlog creates one level */
            snprintf(rep->message, sizeof rep->message, "cannot create log directory '%s': %s",
                     l->dir, strerror(e));
            return e == ENOENT || e == ENOTDIR ? RLOG_ENOTLOG : rlog_from_errno(e);
        }
        char parent[4096];
        parent_of(l->dir, parent, sizeof parent);
        rlg_os_sync_dir(l->vfs, parent);
        e = l->vfs->lock(l->vfs, l->dir, lk);
    }
    if (!e)
        return 0;
    if (e == EBUSY || e == EAGAIN) {
        snprintf(rep->message, sizeof rep->message,
                 "log directory '%s' is locked by another writer", l->dir);
        return RLOG_EBUSY;
    }
    snprintf(rep->message, sizeof rep->message, "cannot lock log directory '%s': %s", l->dir,
             strerror(e));
    return e == ENOENT || e == ENOTDIR ? RLOG_ENOTLOG : rlog_from_errno(e);
}

int rlog_open(const char *dir, const rlog_options *opts, rlog_log **out, rlog_open_report *report)
{
    rlog_open_report scratch;
    rlog_open_report *rep = report ? report : &scratch;
    memset(rep, 0, sizeof *rep);
    *out = NULL;
    rlog_options o;
    if (!dir || !*dir) {
        snprintf(rep->message, sizeof rep->message, "no directory given");
        return RLOG_EINVAL;
    }
    int rv = check_options(opts, &o, rep->message, sizeof rep->message);
    if (rv)
        return rv;
    rlog_log *l = rlg_log_new(dir, &o);
    if (!l)
        return RLOG_ENOMEM;
    rlog_file *lk = NULL;
    if (!l->readonly && (rv = rlg_lock_dir(l, &lk, rep)) != 0)
        goto fail;
    rlg_recovery r;
    memset(&r, 0, sizeof r);
    rv = rlg_recover(l->vfs, dir,
                     ((o.flags & RLOG_OPEN_REPAIR) ? RLG_RECOVER_REPAIR : 0) |
                         (l->readonly ? RLG_RECOVER_READONLY : 0),
                     &r, rep);
    if (rv == RLOG_ENOTLOG && (o.flags & RLOG_OPEN_CREATE) && !l->readonly) {
        /* files of an interrupted creation (all zero) are replaced */
        rv = create_log(l, rep);
    } else if (!rv) {
        rv = rlg_adopt(l, &r);
        if (rv)
            snprintf(rep->message, sizeof rep->message, "%s", l->errmsg);
    }
    rlg_recovery_free(&r);
    if (rv)
        goto fail_unlock;
    l->lockf = lk;
    if ((o.flags & (RLOG_OPEN_THREAD | RLOG_OPEN_PREPARER)) && !l->readonly &&
        (rv = rlg_bg_start(l, (o.flags & RLOG_OPEN_THREAD) != 0)) != 0)
        goto fail_unlock;
    *out = l;
    return 0;
fail_unlock:
    l->lockf = lk;
fail:
    rlg_log_release(l);
    return rv;
}

int rlog_close(rlog_log *l)
{
    if (!l)
        return 0;
    rlg_bg_stop(l);
    int rv = 0;
    pthread_mutex_lock(&l->mu);
    assert(l->iters_open == 0 && "rlog_close: close every iterator first");
    if (!l->readonly && !l->poisoned) {
        l->io_busy = true;
        rv = rlg_io_round(l, true, true);
        if (rv && !l->poisoned) /* still sync what was written before the failure */
            rlg_io_round(l, true, true);
        if (!rv && !l->pend_head)
            rv = rlg_write_checkpoint(l);
        l->io_busy = false;
    }
    if (l->poisoned) /* a close never hides that what was appended may be lost */
        rv = l->poisoned;
    rlg_fail_pending(l, RLOG_ECLOSED);
    pthread_mutex_unlock(&l->mu);
    rlg_log_release(l);
    return rv;
}

void rlog_abandon(rlog_log *l, void (*drop)(void *data))
{
    /* As if the process died: nothing more is written or synced. */
    rlg_bg_stop(l);
    pthread_mutex_lock(&l->mu);
    rlg_drop_pending(l, drop);
    pthread_mutex_unlock(&l->mu);
    rlg_log_release(l);
}

void rlg_log_crash(rlog_log *l)
{
    rlog_abandon(l, NULL);
}
