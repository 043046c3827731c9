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
 *    (replica_append.c, zero_ahead), which its own fdatasync makes durable.
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
 *
 * This file opens, adopts and closes a replica; log/replica_internal.h
 * lists the files that do the rest and the order in which they call each
 * other.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica_internal.h"

/* -------------------------------------------------------------- opening */

/* Recovery found no log: remove what an interrupted start left (segment
 * files holding zeros, temporary files, a marker). */
static int open_empty(rlg_replica *r)
{
    int rv = rlg_rp_remove_seg_files(r, true, true, "opening an empty replica");
    if (rv)
        return rv;
    int e = rlg_unsynced_clear(r->l, 0);
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
        /* made by an earlier process, whose fdatasync of it may have
         * failed: a later one that succeeds proves nothing, so taking it
         * installs a new file in its place (log/replica_spare.c) */
        r->spare_suspect = l->spare_seq;
        l->vfs->close(l->vfs, l->spare_file);
        l->spare_file = NULL;
        l->spare_state = RLG_SPARE_NONE;
    }
    const rlg_segment *s = rlg_rp_newest(r);
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
    const rlg_segment *s = rlg_rp_newest(r);
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
    const rlg_segment *s = rlg_rp_newest(r);
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
