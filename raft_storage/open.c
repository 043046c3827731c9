/* Opening (recovery by replay), closing and observing a Raft store; the
 * helpers every file uses on a store are raft_storage/store.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/writer.h"
#include "raft_storage/rs_internal.h"

#define RLG_RS_DEFAULT_SEGMENT    (64ull << 20)
#define RLG_RS_DEFAULT_MAX_RECORD (16u << 20)

void rlog_rs_options_init(rlog_rs_options *opts)
{
    memset(opts, 0, sizeof *opts);
    rlog_options_init(&opts->log);
}

/* The largest record payload we write: within the log's limit and small
 * enough that a segment holds it with the sticky copies. */
static size_t record_limit(const rlog_options *o)
{
    uint64_t seg = o->segment_size ? o->segment_size : RLG_RS_DEFAULT_SEGMENT;
    uint64_t lim = o->max_record ? o->max_record : RLG_RS_DEFAULT_MAX_RECORD;
    if (lim > seg / 4)
        lim = seg / 4;
    return (size_t)lim;
}

/* Decodes, checks and applies one replayed record. */
static int replay_one(rlog_rs *rs, const rlog_record *rec, rlog_rs_open_report *rep)
{
    rlg_rec r;
    char why[300];
    int rv = rlg_rec_decode(rec->type, rec->data, rec->len, &r, why, sizeof why);
    if (rv && rep->records == 0)
        /* the first record already is not ours: another kind of log */
        return rlg_rs_fail(rs, RLOG_ENOTRAFT,
                           "%s: not a Raft store: its first record (LSN %" PRIu64
                           ", type %u, %u bytes) is not a Raft record: %s",
                           rs->dir, rec->lsn, (unsigned)rec->type, rec->len, why);
    if (!rv)
        rv = rlg_state_check(&rs->st, &r, why, sizeof why);
    if (rv) {
        rep->corrupt_lsn = rec->lsn;
        return rlg_rs_fail(rs, RLOG_ECORRUPT, "%s: record LSN %" PRIu64 " (type %u): %s", rs->dir,
                           rec->lsn, (unsigned)rec->type, why);
    }
    if (r.type == RLOG_RS_TYPE_SNAPSHOT)
        rs->snap_lsn = rec->lsn;
    if (rlg_state_apply(&rs->st, &r, rec->lsn))
        return rlg_rs_fail(rs, RLOG_ENOMEM, "out of memory replaying LSN %" PRIu64, rec->lsn);
    rep->records++;
    return 0;
}

static int replay(rlog_rs *rs, rlog_rs_open_report *rep)
{
    rlog_iter *it = NULL;
    int rv = rlog_iter_open(rs->log, 1, 0, &it);
    if (rv)
        return rlg_rs_fail(rs, rv, "replay: %s", rlog_errmsg(rs->log));
    rlog_record rec;
    while ((rv = rlog_iter_next(it, &rec)) == 0) {
        if ((rv = replay_one(rs, &rec, rep)) != 0)
            break;
    }
    if (rv == RLOG_EEND)
        rv = 0;
    else if (rv && !rs->errmsg[0])
        rv = rlg_rs_fail(rs, rv, "replay: %s", rlog_errmsg(rs->log));
    rlog_iter_close(it);
    if (!rv)
        rlg_state_anchor(&rs->st);
    return rv;
}

/*
 * After a reopen the log's sticky slots are empty: set them again. And the
 * active segment must itself hold the current hard state and snapshot
 * marker (as an original or a head copy), so that deleting every segment
 * before it keeps them. Normally it does; but a torn tail cut inside its
 * head (a power loss during the rotation's first write) leaves it with only
 * part of the copies, and records appended after the cut would follow a
 * head without them (the simulator found it: raft seed 50009579, where
 * deleting the segment before left a log whose replay met the snapshot
 * only after entries that follow it). A state whose latest record lies
 * before the active segment is appended again.
 */
static int restore_sticky(rlog_rs *rs)
{
    uint8_t hs[RLG_RS_HS_SIZE];
    rlog_record r[2];
    unsigned slot[2];
    uint64_t at[2];
    size_t n = 0;
    int rv = 0;
    if (rs->st.has_hs) {
        rlg_hs_encode(&rs->st.hs, hs);
        r[n] = (rlog_record){0, RLOG_RS_TYPE_HARD_STATE, 0, RLG_RS_HS_SIZE, hs};
        slot[n] = RLOG_RS_SLOT_HARD_STATE;
        at[n++] = rs->st.hs_lsn;
    }
    if (rs->st.snap.has) {
        r[n] = (rlog_record){0, RLOG_RS_TYPE_SNAPSHOT, 0, (uint32_t)rs->st.snap.raw_len,
                             rs->st.snap.raw};
        slot[n] = RLOG_RS_SLOT_SNAPSHOT;
        at[n++] = rs->st.snap_lsn;
    }
    for (size_t i = 0; i < n && !rv; i++)
        rv = rlog_sticky_set(rs->log, slot[i], &r[i]);
    if (rv)
        return rlg_rs_fail(rs, rv, "restoring sticky records: %s", rlog_errmsg(rs->log));
    uint64_t head = rlg_log_head_lsn(rs->log);
    for (size_t i = 0; i < n && !rv; i++)
        if (at[i] < head)
            rv = rlg_rs_append_apply(rs, r[i].type, slot[i], r[i].data, r[i].len, NULL);
    return rv;
}

static int open_steps(rlog_rs *rs, rlog_rs_open_report *rep)
{
    int rv = rlog_open(rs->dir, &rs->opts.log, &rs->log, &rep->log);
    if (rv) {
        rs->log = NULL;
        return rlg_rs_fail(rs, rv, "%s",
                           rep->log.message[0] ? rep->log.message : rlog_strerror(rv));
    }
    if ((rv = replay(rs, rep)) != 0)
        return rv;
    /* what the state references must be there: the current snapshot */
    if ((rv = rlg_rs_snap_verify(rs)) != 0) {
        rep->corrupt_lsn = rs->snap_lsn;
        return rv;
    }
    if (rs->readonly)
        return 0;
    if ((rv = restore_sticky(rs)) != 0)
        return rv;
    return rlg_rs_snap_cleanup(rs, true, &rep->temp_removed, &rep->snapshots_removed);
}

int rlog_rs_open(const char *dir, const rlog_rs_options *opts, rlog_rs **out,
                 rlog_rs_open_report *report)
{
    rlog_rs_open_report local;
    rlog_rs_open_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    *out = NULL;
    if (!dir) {
        snprintf(rep->message, sizeof rep->message, "no directory given");
        return RLOG_EINVAL;
    }
    rlog_rs *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->dir = strdup(dir))) {
        free(rs);
        snprintf(rep->message, sizeof rep->message, "out of memory");
        return RLOG_ENOMEM;
    }
    if (opts)
        rs->opts = *opts;
    else
        rlog_rs_options_init(&rs->opts);
    if (rs->opts.snapshots_keep == 0)
        rs->opts.snapshots_keep = 2;
    rs->vfs = rs->opts.log.vfs ? rs->opts.log.vfs : rlog_vfs_posix();
    rs->readonly = (rs->opts.log.flags & RLOG_OPEN_READONLY) != 0;
    rs->rec_max = record_limit(&rs->opts.log);
    atomic_init(&rs->failed, 0);
    rlg_state_init(&rs->st);
    int rv = open_steps(rs, rep);
    snprintf(rep->message, sizeof rep->message, "%s", rs->errmsg);
    /* a failed sync of the open's own append poisoned the log handle, which
     * goes with this failed open: to the caller it is the I/O error it is
     * (soak raft seed 51076869) */
    if (rv == RLOG_EPOISONED)
        rv = RLOG_EIO;
    if (rv) {
        if (rs->log)
            rlog_close(rs->log);
        rs->log = NULL;
        rlog_rs_close(rs);
        return rv;
    }
    if (!rep->message[0])
        snprintf(rep->message, sizeof rep->message,
                 "%s: %" PRIu64 " Raft records replayed, entries %" PRIu64 "..%" PRIu64, dir,
                 rep->records, rs->st.ix.first, rs->st.ix.last);
    *out = rs;
    return 0;
}

static void rs_free(rlog_rs *rs)
{
    rlg_state_free(&rs->st);
    free(rs->enc);
    free(rs->dir);
    free(rs);
}

int rlog_rs_close(rlog_rs *rs)
{
    if (!rs)
        return 0;
    int rv = rs->log ? rlog_close(rs->log) : 0;
    int failed = atomic_load(&rs->failed);
    if (!rv && failed) /* never hide that what was appended may be lost or partial */
        rv = RLOG_EPOISONED;
    rs_free(rs);
    return rv;
}

void rlog_rs_abandon(rlog_rs *rs)
{
    if (!rs)
        return;
    if (rs->log) /* the log's async contexts are the store's (entries.c) */
        rlog_abandon(rs->log, free);
    rs_free(rs);
}

/* ---------------------------------------------------------------- observing */

uint64_t rlog_rs_index_bytes(rlog_rs *rs)
{
    return rlg_index_bytes(&rs->st.ix);
}

void rlog_rs_stats_get(rlog_rs *rs, rlog_rs_stats *s)
{
    memset(s, 0, sizeof *s);
    const rlg_state *st = &rs->st;
    s->hs = st->hs;
    s->first_index = st->ix.first;
    s->last_index = st->ix.last;
    s->has_snapshot = st->snap.has;
    if (st->snap.has) {
        s->snap_index = st->snap.v.index;
        s->snap_term = st->snap.v.term;
        s->snap_conf_index = st->snap.v.conf_index;
        s->snap_size = st->snap.v.size;
        s->snap_conf_len = st->snap.v.conf_len;
        s->snap_crc = st->snap.v.crc;
        s->snap_trailing = st->snap.v.trailing;
        snprintf(s->snap_file, sizeof s->snap_file, "%s", st->snap.name);
    }
    s->batches = st->ix.batches;
    s->term_runs = rlg_index_runs(&st->ix);
    s->index_bytes = rlg_index_bytes(&st->ix);
}

void rlog_rs_summary(rlog_rs *rs, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    rlog_rs_stats s;
    rlog_rs_stats_get(rs, &s);
    uint64_t n = s.last_index + 1 - s.first_index;
    int k = snprintf(buf, cap,
                     "raft: term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64 "\n"
                     "raft: entries %" PRIu64 "..%" PRIu64 " (%" PRIu64 "), %" PRIu64
                     " batch records, %" PRIu64 " term runs, last term %" PRIu64 "\n",
                     s.hs.term, s.hs.vote, s.hs.commit, s.first_index, s.last_index, n, s.batches,
                     s.term_runs, rlog_rs_term(rs, s.last_index));
    if (k < 0 || (size_t)k >= cap)
        return;
    size_t used = (size_t)k;
    if (s.has_snapshot)
        k = snprintf(buf + used, cap - used,
                     "raft: snapshot index %" PRIu64 " term %" PRIu64 " conf@%" PRIu64
                     " file %s (%" PRIu64 " bytes, crc %08" PRIx32 ", trailing %" PRIu32 ")\n",
                     s.snap_index, s.snap_term, s.snap_conf_index, s.snap_file, s.snap_size,
                     s.snap_crc, s.snap_trailing);
    else
        k = snprintf(buf + used, cap - used, "raft: no snapshot\n");
    if (k < 0 || (size_t)k >= cap - used)
        return;
    used += (size_t)k;
    snprintf(buf + used, cap - used, "raft: index memory %" PRIu64 " bytes (%.2f per entry)\n",
             s.index_bytes, n ? (double)s.index_bytes / (double)n : 0.0);
}
