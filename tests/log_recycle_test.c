/*
 * Segment recycling (log/spare.c, docs/format.md "Recycled segment
 * files"): rlog_delete_prefix renames deleted segment files aside and the
 * next spares are made from them without zero-filling, so an active
 * segment holds stale bytes of an older segment past its records. Recovery
 * must never read a stale record as current, never take one as proof that
 * a damaged record was durable, still cut a real torn write over stale
 * bytes, and call a clean recycled tail clean.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log/format.h"
#include "log/handle.h"
#include "util/testutil.h"

#define SEG  8192u
#define LEN  200
#define T    100
#define SEED 41u

static void append_n(rlog_log *l, uint64_t n)
{
    uint8_t buf[LEN];
    for (uint64_t i = 0; i < n; i++) {
        rlog_positions p;
        rlog_positions_get(l, &p);
        tu_fill(SEED, p.appended + 1, buf, LEN);
        rlog_record r = {.type = T, .len = LEN, .data = buf};
        int rv = rlog_append(l, &r, 1, NULL);
        if (rv)
            fail_msg("append: %s: %s", rlog_errname(rv), rlog_errmsg(l));
    }
}

/* How many rlog.recycle-* files dir holds. */
static unsigned pool_files(const char *dir)
{
    unsigned n = 0;
    char **names = NULL;
    size_t k = 0;
    rlog_vfs *v = rlog_vfs_posix();
    assert_int_equal(v->list(v, dir, &names, &k), 0);
    for (size_t i = 0; i < k; i++)
        n += strncmp(names[i], RLG_RECYCLE_PREFIX, strlen(RLG_RECYCLE_PREFIX)) == 0;
    rlog_vfs_free_names(names, k);
    return n;
}

/* The newest segment file (highest sequence number with a valid header). */
static uint64_t active_seq(const char *dir, rlg_seg_header *h)
{
    char **names = NULL;
    size_t n = tu_list_segments(dir, &names);
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        void *d;
        size_t len;
        tu_read_file(tu_path(dir, names[i]), &d, &len);
        rlg_seg_header x;
        if (len >= RLG_SEG_HEADER_SIZE && rlg_seg_header_decode(d, &x) == RLG_HDR_OK) {
            seq = x.seq;
            *h = x;
        }
        free(d);
    }
    tu_free_names(names, n);
    return seq;
}

/* One past the last record of a segment's bytes (walked under its salt). */
static size_t records_end(const uint8_t *d, size_t len, const rlg_seg_header *h)
{
    uint32_t salt = rlg_salt_state(h->log_id, h->seq);
    size_t o = RLG_SEG_HEADER_SIZE;
    while (o + RLG_REC_HEADER_SIZE <= len) {
        rlg_rec_header rh;
        rlg_rec_header_decode(d + o, &rh);
        if (rh.type == 0 || rh.len > len - o - RLG_REC_HEADER_SIZE ||
            !rlg_rec_crc_ok(d + o, salt, rh.len))
            break;
        o += RLG_REC_HEADER_SIZE + rh.len;
    }
    return o;
}

static bool nonzero(const uint8_t *d, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (d[i])
            return true;
    return false;
}

typedef struct fx {
    char *dir;
    uint64_t seq;  /* the active segment: a recycled file */
    uint64_t last; /* its last LSN (all durable) */
    uint64_t p;    /* its records end here; stale bytes follow */
    uint64_t log_id;
} fx;

/* A log whose active segment is a recycled file with stale records of an
 * older segment past its own, left by a crashed writer. */
static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("recycle");
    rlog_log *l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
    append_n(l, 150); /* about 4 segments */
    rlog_positions p;
    rlog_positions_get(l, &p);
    uint64_t deleted = 0;
    assert_int_equal(rlog_delete_prefix(l, p.durable - 40, &deleted), 0);
    assert_true(deleted >= 3); /* two for the rotations below, one for a spare */
    assert_int_equal(pool_files(f->dir), deleted);
    append_n(l, 77); /* rotates into recycled files; ends mid-segment */
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_true(m.segments_recycled >= 1);
    rlog_positions_get(l, &p);
    f->last = p.durable;
    rlg_log_crash(l);
    rlg_seg_header h;
    f->seq = active_seq(f->dir, &h);
    f->log_id = h.log_id;
    if (!(h.flags & RLG_SEG_RECYCLED))
        fail_msg("segment %s is not marked recycled", tu_seg_name(f->seq));
    void *d;
    size_t len;
    tu_read_file(tu_path(f->dir, tu_seg_name(f->seq)), &d, &len);
    assert_int_equal(len, SEG); /* a recycled file keeps the full size */
    f->p = records_end(d, len, &h);
    /* what makes the cases below meaningful: stale bytes past the tail */
    assert_true(f->p + 1024 < len && nonzero(d, f->p + 1024, len));
    free(d);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmdir_r(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* The log goes on: n more appends, a close, and a read-only open that is
 * clean and ends at `last`. */
static void goes_on(fx *f, rlog_log *l, uint64_t n, uint64_t last)
{
    append_n(l, n);
    assert_int_equal(rlog_close(l), 0);
    rlog_open_report rep;
    l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, last);
    assert_int_equal(rlog_close(l), 0);
}

/* Property: a recycled active segment whose stale bytes follow its records
 * is clean — nothing reported torn, nothing cut, no byte zeroed at the open
 * — and holds exactly the acknowledged records. */
static void test_stale_tail_is_clean(void **state)
{
    fx *f = *state;
    void *before;
    size_t blen;
    tu_read_file(tu_path(f->dir, tu_seg_name(f->seq)), &before, &blen);
    rlog_open_report rep;
    rlog_log *l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, 0, &rep);
    if (rep.status != RLOG_TAIL_CLEAN)
        fail_msg("status %d: %s", (int)rep.status, rep.message);
    assert_int_equal(rep.last_lsn, f->last);
    assert_int_equal(rep.bytes_cut, 0);
    void *after;
    size_t alen;
    tu_read_file(tu_path(f->dir, tu_seg_name(f->seq)), &after, &alen);
    assert_int_equal(alen, blen);
    assert_memory_equal(before, after, blen); /* no zero-fill at the open */
    goes_on(f, l, 3, f->last + 3);
    free(before);
    free(after);
}

/* Encodes a user record of segment `seq` (its salt) at d. */
static size_t put_record(uint8_t *d, uint64_t log_id, uint64_t seq, uint64_t lsn, uint64_t durable)
{
    uint8_t payload[LEN];
    tu_fill(SEED, lsn, payload, LEN);
    rlg_rec_encode(d, rlg_salt_state(log_id, seq), lsn, durable, T, payload, LEN);
    return RLG_REC_HEADER_SIZE + LEN;
}

/* Property: stale records of another segment are never read as records of
 * this one, even with exactly the next LSN at exactly the tail, and a stale
 * record whose witness would prove the tail durable proves nothing: the
 * log stays clean with the acknowledged records only. */
static void test_stale_record_never_current(void **state)
{
    fx *f = *state;
    uint8_t rec[2 * (RLG_REC_HEADER_SIZE + LEN)];
    size_t n = put_record(rec, f->log_id, f->seq - 1, f->last + 1, f->last);
    n += put_record(rec + n, f->log_id, f->seq - 2, f->last + 2, f->last + 1);
    tu_poke(tu_path(f->dir, tu_seg_name(f->seq)), f->p, rec, n);
    rlog_open_report rep;
    rlog_log *l = NULL;
    int rv = tu_try_open(f->dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &l, &rep);
    if (rv)
        fail_msg("open: %s: %s", rlog_errname(rv), rep.message);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, f->last);
    assert_int_equal(rlog_close(l), 0);
}

/* Property: a torn write over stale bytes is still a torn tail: a damaged
 * record followed by a complete one of this segment (never proven) is cut
 * — both — and the cut ends after the last record of this segment (the
 * stale bytes beyond are left); the log goes on and reopens clean. */
static void test_torn_over_stale_is_cut(void **state)
{
    fx *f = *state;
    uint8_t rec[2 * (RLG_REC_HEADER_SIZE + LEN)];
    size_t n1 = put_record(rec, f->log_id, f->seq, f->last + 1, f->last);
    size_t n = n1 + put_record(rec + n1, f->log_id, f->seq, f->last + 2, f->last);
    rec[RLG_REC_HEADER_SIZE + 5] ^= 0x40; /* record last+1 torn */
    const char *path = tu_path(f->dir, tu_seg_name(f->seq));
    tu_poke(path, f->p, rec, n);
    rlog_open_report rep;
    rlog_log *l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, 0, &rep);
    if (rep.status != RLOG_TAIL_TORN)
        fail_msg("status %d: %s", (int)rep.status, rep.message);
    assert_int_equal(rep.offset, f->p);
    assert_int_equal(rep.last_lsn, f->last);
    assert_int_equal(rep.records_cut, 1);
    assert_int_equal(rep.lsn_cut_first, f->last + 2);
    assert_int_equal(rep.bytes_cut, n);
    void *d;
    size_t len;
    tu_read_file(path, &d, &len);
    assert_false(nonzero(d, f->p, f->p + n)); /* cut */
    assert_true(nonzero(d, f->p + n, len));   /* stale bytes stay */
    free(d);
    goes_on(f, l, 2, f->last + 2);
}

/* Property: the witness still works in a recycled segment: a damaged
 * record followed by a record of this segment written when it was durable
 * is corruption, not a torn tail, and the open changes nothing. */
static void test_witness_in_recycled_segment(void **state)
{
    fx *f = *state;
    uint8_t rec[2 * (RLG_REC_HEADER_SIZE + LEN)];
    size_t n1 = put_record(rec, f->log_id, f->seq, f->last + 1, f->last);
    size_t n = n1 + put_record(rec + n1, f->log_id, f->seq, f->last + 2, f->last + 1);
    rec[RLG_REC_HEADER_SIZE + 5] ^= 0x40;
    tu_poke(tu_path(f->dir, tu_seg_name(f->seq)), f->p, rec, n);
    tu_snap s;
    tu_snap_take(f->dir, &s);
    rlog_open_report rep;
    rlog_log *l = NULL;
    assert_int_equal(tu_try_open(f->dir, NULL, SEG, RLOG_SYNC_EACH, 0, &l, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(rep.offset, f->p);
    tu_snap_assert_same(f->dir, &s);
    tu_snap_free(&s);
}

/* Property: a recycled spare after the active segment (a zero header, then
 * stale bytes) is made with its stale bytes kept. A later process's open
 * does not change it, but does not trust it either (log/open.c,
 * adopt_spares: the earlier process's fdatasync of it may have failed):
 * with no deleted file waiting, the next preparation writes every byte of
 * it again, so the segment it becomes is a plain one (not marked
 * recycled), zeros past its records. */
static void test_recycled_spare_kept(void **state)
{
    fx *f = *state;
    rlog_log *l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, 0, NULL);
    rlog_metrics m0, m1;
    rlog_metrics_get(l, &m0);
    assert_int_equal(rlog_step(l, NULL), 0); /* prepares the next spare */
    rlog_metrics_get(l, &m1);
    assert_int_equal(m1.segments_recycled, m0.segments_recycled + 1);
    assert_int_equal(m1.segments_prepared, m0.segments_prepared);
    assert_int_equal(rlog_close(l), 0);
    const char *path = tu_path(f->dir, tu_seg_name(f->seq + 1));
    void *d;
    size_t len;
    tu_read_file(path, &d, &len);
    assert_int_equal(len, SEG);
    assert_false(nonzero(d, 0, RLG_SEG_HEADER_SIZE));
    assert_true(nonzero(d, RLG_SEG_HEADER_SIZE, len));
    free(d);
    rlog_open_report rep;
    l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    tu_read_file(path, &d, &len);
    assert_true(nonzero(d, RLG_SEG_HEADER_SIZE, len)); /* the open left it */
    free(d);
    rlog_metrics_get(l, &m0);
    assert_int_equal(rlog_rotate(l), 0);
    rlog_metrics_get(l, &m1);
    assert_int_equal(m1.segments_prepared, m0.segments_prepared + 1); /* written again */
    assert_int_equal(m1.segments_recycled, m0.segments_recycled);
    assert_int_equal(rlog_close(l), 0);
    rlg_seg_header h;
    assert_int_equal(active_seq(f->dir, &h), f->seq + 1);
    assert_false(h.flags & RLG_SEG_RECYCLED);
    tu_read_file(path, &d, &len);
    assert_int_equal(len, SEG);
    assert_false(nonzero(d, 2 * RLG_SEG_HEADER_SIZE, len)); /* no stale byte left */
    free(d);
    l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    append_n(l, 1);
    assert_int_equal(rlog_close(l), 0);
    l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, f->last + 1);
    assert_int_equal(rlog_close(l), 0);
}

/* Property: at most RLG_RECYCLE_MAX deleted files wait; the others are
 * unlinked; with RLOG_OPEN_NO_RECYCLE none waits and no spare is made from
 * one. */
static void test_pool_bounded_and_optional(void **state)
{
    (void)state;
    for (int off = 0; off < 2; off++) {
        unsigned flags = off ? RLOG_OPEN_NO_RECYCLE : 0;
        char *D = tu_mkdtemp("recycle-pool");
        rlog_log *l = tu_open_log(D, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE | flags, NULL);
        append_n(l, 400); /* about 11 segments */
        rlog_positions p;
        rlog_positions_get(l, &p);
        uint64_t deleted = 0;
        assert_int_equal(rlog_delete_prefix(l, p.durable, &deleted), 0);
        assert_true(deleted > RLG_RECYCLE_MAX);
        assert_int_equal(pool_files(D), off ? 0 : RLG_RECYCLE_MAX);
        append_n(l, 100);
        rlog_metrics m;
        rlog_metrics_get(l, &m);
        assert_true(off ? m.segments_recycled == 0 : m.segments_recycled >= 2);
        assert_int_equal(rlog_close(l), 0);
        /* the waiting files are kept across a reopen */
        l = tu_open_log(D, NULL, SEG, RLOG_SYNC_EACH, flags, NULL);
        assert_int_equal(rlog_close(l), 0);
        assert_int_equal(pool_files(D), off ? 0 : RLG_RECYCLE_MAX - m.segments_recycled);
        tu_rmdir_r(D);
        free(D);
    }
}

/* Property: failures while recycling change nothing that matters: a failed
 * rename into the pool fails the deletion and keeps the segment; a failed
 * rename out of it falls back to a zero-filled spare (the waiting file is
 * dropped); a failed directory fsync after the rename fails the deletion
 * and is made good before the next directory operation. Every time the
 * log reopens clean with every record. */
static void test_recycle_faults(void **state)
{
    (void)state;
    char *D = tu_mkdtemp("recycle-faults");
    rlog_vfs *v = rlog_vfs_fault_new(rlog_vfs_posix());
    rlog_log *l = tu_open_log(D, v, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
    append_n(l, 150);
    rlog_positions p;
    rlog_positions_get(l, &p);
    /* 1. the rename into the pool fails */
    rlog_fault fr = {.op = RLOG_OP_RENAME, .err = EIO, .times = 1, .path_contains = "recycle-"};
    int id = rlog_vfs_fault_add(v, &fr);
    assert_true(id > 0);
    uint64_t deleted = 9;
    assert_int_equal(rlog_delete_prefix(l, p.durable, &deleted), RLOG_EIO);
    assert_int_equal(deleted, 0);
    assert_true(tu_file_size(tu_path(D, tu_seg_name(1))) == SEG);
    assert_int_equal(pool_files(D), 0);
    /* 2. the directory fsync after the rename fails: the deletion fails;
     * the next call syncs before its own rename */
    rlog_fault fs = {.op = RLOG_OP_SYNC_DIR, .err = EIO, .times = 1};
    assert_true(rlog_vfs_fault_add(v, &fs) > 0);
    assert_int_equal(rlog_delete_prefix(l, p.durable, &deleted), RLOG_EIO);
    assert_int_equal(deleted, 1);
    uint64_t syncs0 = rlog_vfs_fault_calls(v, RLOG_OP_SYNC_DIR);
    uint64_t renames0 = rlog_vfs_fault_calls(v, RLOG_OP_RENAME);
    assert_int_equal(rlog_delete_prefix(l, p.durable, &deleted), 0);
    assert_true(deleted >= 1);
    /* one sync before the first rename, one after each */
    assert_int_equal(rlog_vfs_fault_calls(v, RLOG_OP_SYNC_DIR) - syncs0,
                     1 + (rlog_vfs_fault_calls(v, RLOG_OP_RENAME) - renames0));
    assert_true(pool_files(D) >= 1);
    /* 3. the rename out of the pool fails: a zero-filled spare instead */
    rlog_fault fo = {.op = RLOG_OP_RENAME, .err = EIO, .times = 1, .path_contains = ".seg"};
    assert_true(rlog_vfs_fault_add(v, &fo) > 0);
    rlog_metrics m0, m1;
    rlog_metrics_get(l, &m0);
    unsigned pooled = pool_files(D);
    append_n(l, 40); /* rotations */
    rlog_metrics_get(l, &m1);
    assert_true(m1.segments_prepared > m0.segments_prepared);
    assert_true(pool_files(D) < pooled);
    assert_int_equal(rlog_close(l), 0);
    v->destroy(v);
    rlog_positions_get(l = tu_open_log(D, NULL, SEG, RLOG_SYNC_EACH, 0, NULL), &p);
    assert_int_equal(p.appended, 190);
    assert_int_equal(rlog_close(l), 0);
    tu_rmdir_r(D);
    free(D);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_tail_is_clean),
        cmocka_unit_test(test_stale_record_never_current),
        cmocka_unit_test(test_torn_over_stale_is_cut),
        cmocka_unit_test(test_witness_in_recycled_segment),
        cmocka_unit_test(test_recycled_spare_kept),
        TU_NO_FIXTURE(test_pool_bounded_and_optional),
        TU_NO_FIXTURE(test_recycle_faults),
    };
    return TU_RUN("log_recycle", tests, setup, teardown);
}
