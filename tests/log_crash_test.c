/* Crashes and damage behind the log's back. A handle is abandoned with
 * rlg_log_crash (as if its process died: nothing more written or synced),
 * files are damaged with the tu_* helpers, and the log is reopened:
 * corruption of what was durable fails the open, naming the segment and
 * offset, and changes no byte; a torn tail of unacknowledged records is
 * cut (or, read-only, only reported); stale bytes of other segments and
 * other logs never pass for records. */
#include "util/testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/format.h"
#include "log/handle.h"
#include "rlog/log.h"

#define T         100
#define LEN       100 /* payload bytes of every record */
#define REC       (RLG_REC_HEADER_SIZE + LEN)
#define BIG_SEG   (1u << 20) /* everything in segment 1 */
#define SMALL_SEG 8192u
/* records of LEN bytes per small segment (the rest is kept for seal and
 * checkpoint) */
#define PER_SEG (RLG_SEG_ROOM(SMALL_SEG) / REC)

#define SEG1 "0000000000000001.seg"
#define SEG2 "0000000000000002.seg"
#define SEG3 "0000000000000003.seg"
#define SEG4 "0000000000000004.seg"

typedef struct fx {
    char *dir;
    char *other; /* a second log, for foreign segments */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("crash");
    f->other = tu_mkdtemp("crash-other");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmdir_r(f->dir);
    tu_rmdir_r(f->other);
    free(f->dir);
    free(f->other);
    free(f);
    return 0;
}

static int try_open(const char *dir, uint64_t seg, rlog_sync_mode mode, unsigned flags,
                    rlog_log **l, rlog_open_report *rep)
{
    return tu_try_open(dir, NULL, seg, mode, flags, l, rep);
}

static rlog_log *open_log(const char *dir, uint64_t seg, rlog_sync_mode mode, unsigned flags,
                          rlog_open_report *rep)
{
    return tu_open_log(dir, NULL, seg, mode, flags, rep);
}

/* Appends records from..to of log `seed` (payload a function of both). */
static void append_n(rlog_log *l, uint64_t from, uint64_t to, uint64_t seed)
{
    tu_recs s = {.type = T, .len = LEN, .seed = seed};
    tu_append_recs(l, &s, from, to);
}

/* Records from..to of log `seed` are there, and nothing after them. */
static void check_records(rlog_log *l, uint64_t from, uint64_t to, uint64_t seed)
{
    tu_recs s = {.type = T, .len = LEN, .seed = seed};
    tu_check_recs(l, &s, from, to);
}

/* Offset of record lsn in a log whose records are all in segment 1. */
static uint64_t off_of(uint64_t lsn)
{
    return RLG_SEG_HEADER_SIZE + (lsn - 1) * REC;
}

/* A log of `n` records in `dir`, abandoned by a crash. */
static void make_crashed(const char *dir, uint64_t seg, rlog_sync_mode mode, uint64_t n,
                         uint64_t seed)
{
    rlog_log *l = open_log(dir, seg, mode, RLOG_OPEN_CREATE, NULL);
    append_n(l, 1, n, seed);
    rlg_log_crash(l);
}

/* Opening dir fails with `want`, writable and read-only alike, the report
 * says so, and no byte of any segment file changes. */
static void assert_open_fails(const char *dir, int want, rlog_open_report *rep)
{
    tu_snap before;
    tu_snap_take(dir, &before);
    const unsigned modes[2] = {0, RLOG_OPEN_READONLY};
    for (int i = 0; i < 2; i++) {
        rlog_log *l = NULL;
        int rv = try_open(dir, SMALL_SEG, RLOG_SYNC_EACH, modes[i], &l, rep);
        if (rv != want)
            fail_msg("open (%s): %s, expected %s: %s", i ? "read-only" : "writable",
                     rlog_errname(rv), rlog_errname(want), rep->message);
        assert_null(l);
        if (want == RLOG_ECORRUPT)
            assert_int_equal(rep->status, RLOG_TAIL_CORRUPT);
        tu_snap_assert_same(dir, &before);
    }
    tu_snap_free(&before);
}

static void assert_msg_has(const rlog_open_report *rep, const char *what)
{
    if (!strstr(rep->message, what))
        fail_msg("report message lacks '%s': %s", what, rep->message);
}

static void zero_range(const char *path, uint64_t off, size_t len)
{
    uint8_t *z = calloc(1, len);
    tu_poke(path, off, z, len);
    free(z);
}

/* ---- corruption ---- */

/* A flipped bit in any record of a sealed segment is corruption, whatever
 * the witnesses say: the open fails naming the segment file and the
 * record's offset, and changes nothing. */
static void test_flip_in_sealed_segment(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 4 * PER_SEG, 1);
    const uint64_t offs[] = {RLG_SEG_HEADER_SIZE, RLG_SEG_HEADER_SIZE + 5 * REC};
    const uint64_t within[] = {RLG_REC_HEADER_SIZE + 5, 9 /* the LSN field */};
    for (int i = 0; i < 2; i++) {
        uint64_t at = offs[i] + within[i];
        tu_flip_bit(tu_path(f->dir, SEG2), at, 3);
        rlog_open_report rep;
        assert_open_fails(f->dir, RLOG_ECORRUPT, &rep);
        assert_string_equal(rep.segment_name, SEG2);
        assert_int_equal(rep.offset, offs[i]);
        assert_msg_has(&rep, SEG2);
        char o[48];
        snprintf(o, sizeof o, "offset %llu", (unsigned long long)offs[i]);
        assert_msg_has(&rep, o);
        tu_flip_bit(tu_path(f->dir, SEG2), at, 3); /* undo: the log is whole again */
    }
    rlog_open_report rep;
    rlog_log *l = open_log(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    check_records(l, 1, 4 * PER_SEG, 1);
    assert_int_equal(rlog_close(l), 0);
}

/* In a log synced after every append, a flipped bit in a record in the
 * middle of the active segment is corruption (the records after it were
 * written once it was durable): the open fails and nothing is cut. */
static void test_flip_in_synced_active_segment(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, BIG_SEG, RLOG_SYNC_EACH, 20, 2);
    tu_flip_bit(tu_path(f->dir, SEG1), off_of(10) + RLG_REC_HEADER_SIZE + 50, 0);
    rlog_open_report rep;
    assert_open_fails(f->dir, RLOG_ECORRUPT, &rep);
    assert_string_equal(rep.segment_name, SEG1);
    assert_int_equal(rep.offset, off_of(10));
    assert_msg_has(&rep, SEG1);
    assert_msg_has(&rep, "LSN 10");
}

/* Deleting a middle segment: corruption naming the missing file. */
static void test_missing_middle_segment(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 3 * PER_SEG + 5, 3);
    assert_int_equal(unlink(tu_path(f->dir, SEG2)), 0);
    rlog_open_report rep;
    assert_open_fails(f->dir, RLOG_ECORRUPT, &rep);
    assert_msg_has(&rep, SEG2);
    assert_msg_has(&rep, "missing");
}

/* A segment of another log in the middle of this one: RLOG_EFOREIGN. */
static void test_foreign_segment_in_middle(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 3 * PER_SEG + 5, 4);
    make_crashed(f->other, SMALL_SEG, RLOG_SYNC_EACH, 3 * PER_SEG + 5, 5);
    tu_copy_file(tu_path(f->other, SEG2), tu_path(f->dir, SEG2));
    rlog_open_report rep;
    assert_open_fails(f->dir, RLOG_EFOREIGN, &rep);
    assert_msg_has(&rep, SEG2);
}

/* A whole segment of another log (its header intact) where this log's next
 * segment goes: still a segment of another log, RLOG_EFOREIGN
 * (docs/format.md, recovery step 2); nothing changes. */
static void test_foreign_segment_as_next(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 10, 6);
    make_crashed(f->other, SMALL_SEG, RLOG_SYNC_EACH, 2 * PER_SEG, 7);
    tu_copy_file(tu_path(f->other, SEG2), tu_path(f->dir, SEG2));
    rlog_open_report rep;
    assert_open_fails(f->dir, RLOG_EFOREIGN, &rep);
    assert_msg_has(&rep, SEG2);
}

/* ---- stale bytes in spares ---- */

/* A recycled file in the spare position: a full segment of another log (or
 * of another segment of this log) with its header zeroed. Its records are
 * salted with another identity, so none validates: the open is clean,
 * nothing foreign appears, the log rotates into that file, and after a
 * clean close the log reopens clean with exactly its own records. */
static void stale_spare_case(fx *f, const char *src_dir, const char *src, uint64_t n_before)
{
    tu_copy_file(tu_path(src_dir, src), tu_path(f->dir, "stale.tmp"));
    char spare[32];
    rlog_segment_name(n_before / PER_SEG + 2, spare, sizeof spare);
    tu_copy_file(tu_path(f->dir, "stale.tmp"), tu_path(f->dir, spare));
    unlink(tu_path(f->dir, "stale.tmp"));
    zero_range(tu_path(f->dir, spare), 0, RLG_SEG_HEADER_SIZE);

    rlog_open_report rep;
    rlog_log *l = open_log(f->dir, SMALL_SEG, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &rep);
    if (rep.status != RLOG_TAIL_CLEAN)
        fail_msg("read-only open with a stale spare: %s", rep.message);
    assert_int_equal(rep.last_lsn, n_before);
    check_records(l, 1, n_before, 8);
    assert_int_equal(rlog_close(l), 0);

    l = open_log(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, n_before);
    uint64_t last = n_before + PER_SEG; /* rotates into the stale file */
    append_n(l, n_before + 1, last, 8);
    check_records(l, 1, last, 8);
    assert_int_equal(rlog_close(l), 0);

    l = open_log(f->dir, SMALL_SEG, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &rep);
    if (rep.status != RLOG_TAIL_CLEAN)
        fail_msg("reopen after a clean close: status %d, not clean: %s", (int)rep.status,
                 rep.message);
    assert_int_equal(rep.last_lsn, last);
    check_records(l, 1, last, 8);
    assert_int_equal(rlog_close(l), 0);
}

static void test_stale_spare_from_other_log(void **state)
{
    fx *f = *state;
    make_crashed(f->other, SMALL_SEG, RLOG_SYNC_EACH, 3 * PER_SEG, 9);
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 10, 8);
    stale_spare_case(f, f->other, SEG2, 10);
}

static void test_stale_spare_from_own_segment(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, PER_SEG + 10, 8);
    /* segment 1's records, under segment 3's name */
    stale_spare_case(f, f->dir, SEG1, PER_SEG + 10);
}

/* ---- torn tails ---- */

/* Unsynced records persisted out of order: records 1..10 synced, 11..20
 * only written, then the crash persisted 16..20 but not 15. The open cuts
 * at record 15 and reports 16..20 as cut; the synced prefix is intact. A
 * read-only open reports the same and changes nothing; a writable one cuts,
 * and the next open is clean. */
static void test_unsynced_out_of_order(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, BIG_SEG, RLOG_SYNC_NONE, RLOG_OPEN_CREATE, NULL);
    append_n(l, 1, 10, 10);
    assert_int_equal(rlog_sync(l), 0);
    append_n(l, 11, 20, 10);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.durable, 10);
    assert_int_equal(p.written, 20);
    rlg_log_crash(l);
    zero_range(tu_path(f->dir, SEG1), off_of(15), REC);

    tu_snap before;
    tu_snap_take(f->dir, &before);
    for (int pass = 0; pass < 2; pass++) { /* read-only, then writable */
        rlog_open_report rep;
        l = open_log(f->dir, BIG_SEG, RLOG_SYNC_EACH, pass == 0 ? RLOG_OPEN_READONLY : 0, &rep);
        if (rep.status != RLOG_TAIL_TORN)
            fail_msg("open: status %d, expected torn: %s", (int)rep.status, rep.message);
        assert_string_equal(rep.segment_name, SEG1);
        assert_int_equal(rep.offset, off_of(15));
        assert_int_equal(rep.last_lsn, 14);
        assert_int_equal(rep.proven_durable, 10);
        assert_int_equal(rep.records_cut, 5);
        assert_int_equal(rep.lsn_cut_first, 16);
        assert_int_equal(rep.lsn_cut_last, 20);
        assert_int_equal(rep.bytes_cut, off_of(21) - off_of(15));
        check_records(l, 1, 14, 10);
        if (pass == 0) {
            assert_int_equal(rlog_close(l), 0);
            tu_snap_assert_same(f->dir, &before);
            continue;
        }
        append_n(l, 15, 15, 11); /* LSN 15 is free again */
        rlg_log_crash(l);
    }
    tu_snap_free(&before);
    rlog_open_report rep;
    l = open_log(f->dir, BIG_SEG, RLOG_SYNC_EACH, 0, &rep);
    if (rep.status != RLOG_TAIL_CLEAN)
        fail_msg("second open after the cut: %s", rep.message);
    assert_int_equal(rep.last_lsn, 15);
    rlog_record r;
    void *pl;
    assert_int_equal(rlog_get(l, 15, 0, &r, &pl), 0);
    uint8_t want[LEN];
    tu_fill(11, 15, want, LEN);
    assert_memory_equal(r.data, want, LEN); /* the new 15, not the torn one */
    rlog_free(pl);
    for (uint64_t lsn = 1; lsn <= 14; lsn++) {
        assert_int_equal(rlog_get(l, lsn, 0, &r, &pl), 0);
        tu_fill(10, lsn, want, LEN);
        assert_memory_equal(r.data, want, LEN);
        rlog_free(pl);
    }
    assert_int_equal(rlog_close(l), 0);
}

/* A process crash keeps what was written (page cache), synced or not. */
static void test_crash_keeps_written_records(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_NONE, 2 * PER_SEG + 3, 12);
    rlog_open_report rep;
    rlog_log *l = open_log(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, 2 * PER_SEG + 3);
    check_records(l, 1, 2 * PER_SEG + 3, 12);
    assert_int_equal(rlog_close(l), 0);
}

/* The close checkpoint proves the last record durable: after a clean close,
 * tearing the last record is corruption; after a crash (no checkpoint) the
 * same damage is a torn tail, cut. */
static void test_close_checkpoint_proves_last_record(void **state)
{
    fx *f = *state;
    for (int crash = 0; crash < 2; crash++) {
        tu_rmdir_r(f->dir);
        assert_int_equal(mkdir(f->dir, 0755), 0);
        rlog_log *l = open_log(f->dir, BIG_SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
        append_n(l, 1, 20, 13);
        if (crash)
            rlg_log_crash(l);
        else
            assert_int_equal(rlog_close(l), 0);
        /* the second half of record 20 never reached the disk */
        zero_range(tu_path(f->dir, SEG1), off_of(20) + REC / 2, REC / 2);
        rlog_open_report rep;
        if (!crash) {
            assert_open_fails(f->dir, RLOG_ECORRUPT, &rep);
            assert_int_equal(rep.offset, off_of(20));
            assert_msg_has(&rep, SEG1);
            assert_msg_has(&rep, "checkpoint");
            continue;
        }
        l = open_log(f->dir, BIG_SEG, RLOG_SYNC_EACH, 0, &rep);
        if (rep.status != RLOG_TAIL_TORN)
            fail_msg("crash, torn last record: status %d: %s", (int)rep.status, rep.message);
        assert_int_equal(rep.offset, off_of(20));
        assert_int_equal(rep.last_lsn, 19);
        check_records(l, 1, 19, 13);
        assert_int_equal(rlog_close(l), 0);
    }
}

/* A bit flipped in a sealed segment's header: corruption (a later segment
 * has a valid header), naming that segment. */
static void test_flip_in_sealed_header(void **state)
{
    fx *f = *state;
    make_crashed(f->dir, SMALL_SEG, RLOG_SYNC_EACH, 2 * PER_SEG + 5, 14);
    tu_flip_bit(tu_path(f->dir, SEG2), 33, 1); /* first LSN */
    rlog_open_report rep;
    assert_open_fails(f->dir, RLOG_ECORRUPT, &rep);
    assert_msg_has(&rep, SEG2);
    assert_string_equal(rep.segment_name, SEG2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flip_in_sealed_segment),
        cmocka_unit_test(test_flip_in_synced_active_segment),
        cmocka_unit_test(test_missing_middle_segment),
        cmocka_unit_test(test_foreign_segment_in_middle),
        cmocka_unit_test(test_foreign_segment_as_next),
        cmocka_unit_test(test_stale_spare_from_other_log),
        cmocka_unit_test(test_stale_spare_from_own_segment),
        cmocka_unit_test(test_unsynced_out_of_order),
        cmocka_unit_test(test_crash_keeps_written_records),
        cmocka_unit_test(test_close_checkpoint_proves_last_record),
        cmocka_unit_test(test_flip_in_sealed_header),
    };
    return TU_RUN("log_crash", tests, setup, teardown);
}
