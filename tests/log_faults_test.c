/* The log under injected file-system faults (the fault-injecting vfs):
 * short and failed writes are rolled back, ENOSPC fails an append cleanly,
 * a failed fdatasync poisons the handle for good, and a failed rotation
 * (while preparing the next segment, while sealing, or while starting the
 * new segment) leaves the log as it was, with no gap in segment numbers.
 * Every case ends with a reopen through the plain posix vfs that must find
 * exactly the acknowledged records. */
#include "util/testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "log/handle.h"
#include "rlog/log.h"

#define T    100     /* user record type */
#define SEG  8192    /* small segments: rotations come quickly */
#define LEN  1000    /* every record's payload length */
#define SEED 0x5eedu /* payload pattern */
/* Records of LEN bytes that fit in one segment (64-byte header, 56 bytes
 * kept for the seal and a checkpoint): the next one needs a rotation. */
#define PER_SEG (RLG_SEG_ROOM(SEG) / (RLG_REC_HEADER_SIZE + LEN))

#define SEG1 "0000000000000001.seg"
#define SEG2 "0000000000000002.seg"
#define SEG3 "0000000000000003.seg"

typedef struct fx {
    char *dir;
    rlog_vfs *fv; /* fault wrapper around posix */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("faults");
    f->fv = rlog_vfs_fault_new(rlog_vfs_posix());
    assert_non_null(f->fv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    f->fv->destroy(f->fv);
    tu_rmdir_r(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static rlog_log *open_with(const char *dir, rlog_vfs *vfs, unsigned flags, rlog_open_report *rep)
{
    return tu_open_log(dir, vfs, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE | flags, rep);
}

/* Appends the record that should get LSN `lsn`; returns the append's code. */
static int append_rec(rlog_log *l, uint64_t lsn)
{
    uint8_t buf[LEN];
    tu_fill(SEED, lsn, buf, sizeof buf);
    rlog_record r = {.type = T, .len = LEN, .data = buf};
    uint64_t got = 0;
    int rv = rlog_append(l, &r, 1, &got);
    if (rv == 0 && got != lsn)
        fail_msg("append got LSN %llu, expected %llu", (unsigned long long)got,
                 (unsigned long long)lsn);
    return rv;
}

static const tu_recs RECS = {.type = T, .len = LEN, .seed = SEED};

static void must_append(rlog_log *l, uint64_t from, uint64_t to)
{
    tu_append_recs(l, &RECS, from, to);
}

static void assert_positions(rlog_log *l, uint64_t appended, uint64_t written, uint64_t durable)
{
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.appended, appended);
    assert_int_equal(p.written, written);
    assert_int_equal(p.durable, durable);
}

/* Records from..to are there with their bytes, and nothing after them. */
static void check_records(rlog_log *l, uint64_t from, uint64_t to)
{
    tu_check_recs(l, &RECS, from, to);
}

/* A log (through the fault vfs) whose segment 1 is full, with fault ft
 * (when not NULL) armed for what comes next. */
static rlog_log *open_seg1_full(fx *f, const rlog_fault *ft)
{
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, PER_SEG);
    if (ft)
        rlog_vfs_fault_add(f->fv, ft);
    return l;
}

/* Record lsn is not readable by any reader. */
static void assert_unreadable(rlog_log *l, uint64_t lsn)
{
    rlog_record r;
    void *p = NULL;
    assert_int_equal(rlog_get(l, lsn, 0, &r, &p), RLOG_ENOTFOUND);
    rlog_iter *it;
    assert_int_equal(rlog_iter_open(l, lsn, 0, &it), 0);
    assert_int_equal(rlog_iter_next(it, &r), RLOG_EEND);
    rlog_iter_close(it);
}

/* Reopens through the plain posix vfs: exactly records 1..last, intact. */
static void verify_reopen(const char *dir, uint64_t last, uint64_t segments)
{
    rlog_open_report rep;
    rlog_log *l = open_with(dir, NULL, 0, &rep);
    if (rep.status == RLOG_TAIL_CORRUPT)
        fail_msg("reopen: %s", rep.message);
    assert_int_equal(rep.first_lsn, 1);
    assert_int_equal(rep.last_lsn, last);
    if (segments)
        assert_int_equal(rep.segments, segments);
    check_records(l, 1, last);
    assert_int_equal(rlog_close(l), 0);
}

/* ---- snapshots (tu_snap_* in tests/util) ---- */

/* The bytes of one file equal those it had in s. */
static void snap_assert_file_same(const char *dir, const tu_snap *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) != 0)
            continue;
        void *d;
        size_t n;
        tu_read_file(tu_path(dir, name), &d, &n);
        if (n != s->len[i] || memcmp(d, s->data[i], n) != 0)
            fail_msg("segment %s changed", name);
        free(d);
        return;
    }
    fail_msg("segment %s was not in the snapshot", name);
}

static bool all_zero_file(const char *path)
{
    void *d;
    size_t n;
    tu_read_file(path, &d, &n);
    const uint8_t *p = d;
    size_t i = 0;
    while (i < n && p[i] == 0)
        i++;
    free(d);
    return i == n;
}

/* The header of a segment file says (seq, first LSN). */
static void assert_seg_header(const char *dir, const char *name, uint64_t seq, uint64_t first)
{
    void *d;
    size_t n;
    tu_read_file(tu_path(dir, name), &d, &n);
    assert_true(n >= RLG_SEG_HEADER_SIZE);
    rlg_seg_header h;
    assert_int_equal(rlg_seg_header_decode(d, &h), RLG_HDR_OK);
    assert_int_equal(h.seq, seq);
    assert_int_equal(h.first_lsn, first);
    free(d);
}

/* Fault `id` gone, the next two appends go to segment 2 (its header names
 * LSN PER_SEG + 1, no segment 3 exists), every record reads back, and the
 * log closes cleanly. */
static void retry_into_seg2(fx *f, rlog_log *l, int id)
{
    rlog_vfs_fault_remove(f->fv, id);
    must_append(l, PER_SEG + 1, PER_SEG + 2);
    assert_seg_header(f->dir, SEG2, 2, PER_SEG + 1);
    assert_int_equal(tu_file_size(tu_path(f->dir, SEG3)), -1);
    check_records(l, 1, PER_SEG + 2);
    assert_int_equal(rlog_close(l), 0);
}

static void assert_errmsg_names(rlog_log *l, const char *name)
{
    if (!strstr(rlog_errmsg(l), name))
        fail_msg("errmsg does not name %s: '%s'", name, rlog_errmsg(l));
}

/* ---- failed and short writes ---- */

/* One failed write of an append (fault on the active segment's pwrite):
 * the append fails with `want`, the positions stay, the segment's bytes are
 * as before, nothing of the record is readable, the next append reuses the
 * LSN, and a reopen finds exactly the acknowledged records. */
static void write_fault_case(fx *f, int err, size_t partial, int want, unsigned flags)
{
    rlog_log *l = open_with(f->dir, f->fv, flags, NULL);
    must_append(l, 1, 3);
    assert_positions(l, 3, 3, 3);
    tu_snap before;
    tu_snap_take(f->dir, &before);
    rlog_fault ft = {
        .op = RLOG_OP_PWRITE, .times = 1, .err = err, .partial = partial, .path_contains = SEG1};
    int id = rlog_vfs_fault_add(f->fv, &ft);
    assert_true(id > 0);
    uint64_t inj = rlog_vfs_fault_injected(f->fv);
    int rv = append_rec(l, 4);
    assert_int_equal(rlog_vfs_fault_injected(f->fv), inj + 1);
    if (rv != want)
        fail_msg("append under fault: %s (expected %s): %s", rlog_errname(rv), rlog_errname(want),
                 rlog_errmsg(l));
    assert_errmsg_names(l, SEG1);
    assert_positions(l, 3, 3, 3);
    assert_unreadable(l, 4);
    snap_assert_file_same(f->dir, &before, SEG1); /* partial bytes zeroed again */
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_int_equal(m.write_errors, 1);
    assert_int_equal(m.appends, 3);
    rlog_vfs_fault_remove(f->fv, id);
    must_append(l, 4, 5); /* LSN 4 reused */
    check_records(l, 1, 5);
    assert_int_equal(rlog_close(l), 0);
    tu_snap_free(&before);
    verify_reopen(f->dir, 5, 1);
}

/* A silent short write (pwrite "succeeds" with fewer bytes) is an I/O error,
 * rolled back. */
static void test_short_write_silent(void **state)
{
    write_fault_case(*state, 0, 10, RLOG_EIO, 0);
}

/* A short write that reports EIO after part of the buffer reached the file. */
static void test_short_write_eio(void **state)
{
    write_fault_case(*state, EIO, 100, RLOG_EIO, 0);
}

/* EIO before any byte was written. */
static void test_pwrite_eio(void **state)
{
    write_fault_case(*state, EIO, SIZE_MAX, RLOG_EIO, 0);
}

/* ENOSPC on the write fails the append with RLOG_ENOSPC; the log goes on. */
static void test_pwrite_enospc(void **state)
{
    write_fault_case(*state, ENOSPC, SIZE_MAX, RLOG_ENOSPC, 0);
}

/* ENOSPC after a partial write, with the background thread running. */
static void test_pwrite_enospc_partial_thread(void **state)
{
    write_fault_case(*state, ENOSPC, 50, RLOG_ENOSPC, RLOG_OPEN_THREAD);
}

/* A failed batch append leaves none of its records: n records, one pwrite
 * fails, all n LSNs are reused. */
static void test_batch_write_fault_rolls_back_all(void **state)
{
    fx *f = *state;
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, 2);
    uint8_t bufs[3][LEN];
    rlog_record r[3];
    for (int i = 0; i < 3; i++) {
        tu_fill(SEED, 3 + (uint64_t)i, bufs[i], LEN);
        r[i] = (rlog_record){.type = T, .len = LEN, .data = bufs[i]};
    }
    rlog_fault ft = {
        .op = RLOG_OP_PWRITE, .times = 1, .err = EIO, .partial = 1500, .path_contains = SEG1};
    int id = rlog_vfs_fault_add(f->fv, &ft);
    assert_int_equal(rlog_append(l, r, 3, NULL), RLOG_EIO);
    assert_positions(l, 2, 2, 2);
    assert_unreadable(l, 3);
    assert_unreadable(l, 4);
    rlog_vfs_fault_remove(f->fv, id);
    uint64_t first = 0;
    assert_int_equal(rlog_append(l, r, 3, &first), 0);
    assert_int_equal(first, 3);
    check_records(l, 1, 5);
    assert_int_equal(rlog_close(l), 0);
    verify_reopen(f->dir, 5, 1);
}

/* ---- fdatasync failure: poisoning ---- */

/* Every later call fails with RLOG_EPOISONED. `quiet`: no thread may sync
 * a spare meanwhile, so no fdatasync at all may reach the vfs. */
static void assert_poisoned_for_good(fx *f, rlog_log *l, uint64_t durable, bool quiet)
{
    uint64_t syncs = rlog_vfs_fault_calls(f->fv, RLOG_OP_FDATASYNC);
    assert_int_equal(append_rec(l, durable + 1), RLOG_EPOISONED);
    assert_int_equal(rlog_sync(l), RLOG_EPOISONED);
    assert_int_equal(rlog_rotate(l), RLOG_EPOISONED);
    assert_int_equal(rlog_step(l, NULL), RLOG_EPOISONED);
    uint8_t b = 1;
    rlog_record r = {.type = T, .len = 1, .data = &b};
    assert_int_equal(rlog_append(l, &r, 1, NULL), RLOG_EPOISONED);
    assert_int_equal(rlog_delete_prefix(l, 1, NULL), RLOG_EPOISONED);
    /* never retried: no fdatasync reached the vfs after the failed one */
    if (quiet)
        assert_int_equal(rlog_vfs_fault_calls(f->fv, RLOG_OP_FDATASYNC), syncs);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.durable, durable);
}

/* A failed fdatasync after a write poisons the handle: the append fails
 * with RLOG_EPOISONED naming the segment, every later call fails the same
 * way even though the vfs works again, and a reopen recovers every record
 * acknowledged before. */
static void poison_case(fx *f, unsigned flags)
{
    rlog_log *l = open_with(f->dir, f->fv, flags, NULL);
    must_append(l, 1, 3);
    rlog_fault ft = {.op = RLOG_OP_FDATASYNC, .times = 1, .err = EIO, .path_contains = SEG1};
    rlog_vfs_fault_add(f->fv, &ft);
    int rv = append_rec(l, 4);
    if (rv != RLOG_EPOISONED)
        fail_msg("append with failing fdatasync: %s: %s", rlog_errname(rv), rlog_errmsg(l));
    assert_errmsg_names(l, SEG1);
    assert_poisoned_for_good(f, l, 3, !(flags & RLOG_OPEN_THREAD));
    rlog_close(l); /* poisoned: no checkpoint; the error it returns is not the point */
    /* LSN 4 was written (not acknowledged): it may or may not come back */
    rlog_open_report rep;
    l = open_with(f->dir, NULL, 0, &rep);
    assert_int_not_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_true(rep.last_lsn == 3 || rep.last_lsn == 4);
    check_records(l, 1, rep.last_lsn);
    uint64_t next = rep.last_lsn + 1;
    must_append(l, next, next + 1);
    assert_int_equal(rlog_close(l), 0);
    verify_reopen(f->dir, next + 1, 1);
}

static void test_fdatasync_failure_poisons(void **state)
{
    poison_case(*state, 0);
}

static void test_fdatasync_failure_poisons_thread(void **state)
{
    poison_case(*state, RLOG_OPEN_THREAD);
}

/* ---- failures while preparing the next segment ---- */

/* The append that needs segment 2 meets a fault while segment 2 is being
 * prepared: it fails with `want`, the log is exactly as before (same files,
 * same bytes, no half-made spare), a retry under the fault fails the same
 * way, and once the fault is gone the same append succeeds in segment 2. */
static void spare_fault_case(fx *f, rlog_vfs_op op, int err, const char *path, int want,
                             unsigned flags)
{
    rlog_fault ft = {.op = op, .times = 0, .err = err, .path_contains = path};
    int id = 0;
    if (flags & RLOG_OPEN_THREAD) /* the thread prepares segment 2 right away */
        id = rlog_vfs_fault_add(f->fv, &ft);
    rlog_log *l = open_with(f->dir, f->fv, flags, NULL);
    must_append(l, 1, PER_SEG);
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_int_equal(m.rotations, 0);
    if (!id)
        id = rlog_vfs_fault_add(f->fv, &ft);
    tu_snap before;
    tu_snap_take(f->dir, &before);
    assert_int_equal(before.n, 1);
    for (int attempt = 0; attempt < 2; attempt++) {
        uint64_t inj = rlog_vfs_fault_injected(f->fv);
        int rv = append_rec(l, PER_SEG + 1);
        if (rv != want)
            fail_msg("append needing a rotation: %s (expected %s): %s", rlog_errname(rv),
                     rlog_errname(want), rlog_errmsg(l));
        assert_true(rlog_vfs_fault_injected(f->fv) > inj);
        assert_positions(l, PER_SEG, PER_SEG, PER_SEG);
        assert_unreadable(l, PER_SEG + 1);
        tu_snap_assert_same(f->dir, &before);
    }
    rlog_metrics_get(l, &m);
    assert_int_equal(m.rotations, 0);
    rlog_vfs_fault_remove(f->fv, id);
    must_append(l, PER_SEG + 1, PER_SEG + 2);
    rlog_metrics_get(l, &m);
    assert_int_equal(m.rotations, 1);
    /* no gap: the record went to segment 2, and no segment 3 holds records */
    assert_seg_header(f->dir, SEG2, 2, PER_SEG + 1);
    if (tu_file_size(tu_path(f->dir, SEG3)) >= 0)
        assert_true(all_zero_file(tu_path(f->dir, SEG3))); /* at most a spare */
    check_records(l, 1, PER_SEG + 2);
    assert_int_equal(rlog_close(l), 0);
    tu_snap_free(&before);
    verify_reopen(f->dir, PER_SEG + 2, 2);
}

/* The error message of a failed preparation names the segment file that
 * could not be prepared and the cause. */
static void test_spare_failure_message(void **state)
{
    fx *f = *state;
    rlog_fault ft = {.op = RLOG_OP_PWRITE, .times = 0, .err = ENOSPC, .path_contains = SEG2};
    rlog_log *l = open_seg1_full(f, &ft);
    assert_int_equal(append_rec(l, PER_SEG + 1), RLOG_ENOSPC);
    assert_errmsg_names(l, SEG2);
    assert_errmsg_names(l, strerror(ENOSPC));
    rlog_vfs_fault_clear(f->fv);
    assert_int_equal(rlog_close(l), 0);
}

static void test_spare_create_enospc(void **state)
{
    spare_fault_case(*state, RLOG_OP_OPEN, ENOSPC, SEG2, RLOG_ENOSPC, 0);
}

static void test_spare_prewrite_enospc(void **state)
{
    spare_fault_case(*state, RLOG_OP_PWRITE, ENOSPC, SEG2, RLOG_ENOSPC, 0);
}

static void test_spare_fdatasync_enospc(void **state)
{
    spare_fault_case(*state, RLOG_OP_FDATASYNC, ENOSPC, SEG2, RLOG_ENOSPC, 0);
}

static void test_spare_allocate_enospc(void **state)
{
    spare_fault_case(*state, RLOG_OP_ALLOCATE, ENOSPC, SEG2, RLOG_ENOSPC, 0);
}

/* The directory fsync that makes the new spare's entry durable fails. */
static void test_spare_sync_dir_eio(void **state)
{
    spare_fault_case(*state, RLOG_OP_SYNC_DIR, EIO, NULL, RLOG_EIO, 0);
}

/* With the background thread: its own preparation fails first, then the
 * rotation's inline one. */
static void test_spare_enospc_thread(void **state)
{
    spare_fault_case(*state, RLOG_OP_OPEN, ENOSPC, SEG2, RLOG_ENOSPC, RLOG_OPEN_THREAD);
}

/* ---- failures during the rotation itself ---- */

/* The seal's fdatasync fails: poisoned (the sealed segment's durability is
 * unknown). Reopen recovers the records acknowledged before, and the log
 * continues from there. */
static void test_seal_fdatasync_failure_poisons(void **state)
{
    fx *f = *state;
    rlog_fault ft = {.op = RLOG_OP_FDATASYNC, .times = 1, .err = EIO, .path_contains = SEG1};
    rlog_log *l = open_seg1_full(f, &ft);
    int rv = append_rec(l, PER_SEG + 1);
    if (rv != RLOG_EPOISONED)
        fail_msg("append whose seal sync fails: %s: %s", rlog_errname(rv), rlog_errmsg(l));
    assert_errmsg_names(l, SEG1);
    assert_poisoned_for_good(f, l, PER_SEG, true);
    rlog_close(l);
    rlog_open_report rep;
    l = open_with(f->dir, NULL, 0, &rep);
    assert_int_not_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(rep.last_lsn, PER_SEG); /* record PER_SEG+1 was never written */
    check_records(l, 1, PER_SEG);
    must_append(l, PER_SEG + 1, PER_SEG + 2);
    assert_int_equal(rlog_close(l), 0);
    assert_seg_header(f->dir, SEG2, 2, PER_SEG + 1);
    verify_reopen(f->dir, PER_SEG + 2, 2);
}

/* The seal's write fails (nothing, or part of it, reaches the file): rolled
 * back; the active segment is byte for byte as before and still active; the
 * prepared spare stays a spare (all zeros); the retry rotates into segment
 * 2. */
static void seal_write_case(fx *f, size_t partial)
{
    rlog_log *l = open_seg1_full(f, NULL);
    tu_snap before;
    tu_snap_take(f->dir, &before);
    rlog_fault ft = {
        .op = RLOG_OP_PWRITE, .times = 1, .err = EIO, .partial = partial, .path_contains = SEG1};
    int id = rlog_vfs_fault_add(f->fv, &ft);
    int rv = append_rec(l, PER_SEG + 1);
    if (rv != RLOG_EIO)
        fail_msg("append whose seal write fails: %s: %s", rlog_errname(rv), rlog_errmsg(l));
    assert_positions(l, PER_SEG, PER_SEG, PER_SEG);
    assert_unreadable(l, PER_SEG + 1);
    snap_assert_file_same(f->dir, &before, SEG1);
    if (tu_file_size(tu_path(f->dir, SEG2)) >= 0)
        assert_true(all_zero_file(tu_path(f->dir, SEG2)));
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_int_equal(m.rotations, 0);
    retry_into_seg2(f, l, id);
    tu_snap_free(&before);
    verify_reopen(f->dir, PER_SEG + 2, 2);
}

static void test_seal_write_failure_rolls_back(void **state)
{
    seal_write_case(*state, SIZE_MAX);
}

static void test_seal_short_write_rolls_back(void **state)
{
    seal_write_case(*state, 10);
}

/* The seal is durable but the new segment's first write (header and
 * record) fails: the append fails, nothing of it is readable, the new file
 * stays an all-zero spare, and the retry writes segment 2 (no gap). A crash
 * at that point also recovers exactly the acknowledged records. */
static void test_new_segment_write_failure(void **state)
{
    fx *f = *state;
    rlog_log *l = open_seg1_full(f, NULL);
    assert_int_equal(rlog_step(l, NULL), 0); /* prepares segment 2 ahead */
    assert_true(all_zero_file(tu_path(f->dir, SEG2)));
    rlog_fault ft = {
        .op = RLOG_OP_PWRITE, .times = 1, .err = EIO, .partial = 30, .path_contains = SEG2};
    int id = rlog_vfs_fault_add(f->fv, &ft);
    int rv = append_rec(l, PER_SEG + 1);
    if (rv != RLOG_EIO)
        fail_msg("append whose new segment write fails: %s: %s", rlog_errname(rv), rlog_errmsg(l));
    assert_errmsg_names(l, SEG2);
    assert_positions(l, PER_SEG, PER_SEG, PER_SEG);
    assert_unreadable(l, PER_SEG + 1);
    assert_true(all_zero_file(tu_path(f->dir, SEG2)));
    /* what a crash right now would leave: exactly the acknowledged records */
    char *copy = tu_mkdtemp("faults-copy");
    char **names;
    size_t n = tu_list_segments(f->dir, &names);
    for (size_t i = 0; i < n; i++)
        tu_copy_file(tu_path(f->dir, names[i]), tu_path(copy, names[i]));
    tu_free_names(names, n);
    verify_reopen(copy, PER_SEG, 1);
    tu_rmdir_r(copy);
    free(copy);
    retry_into_seg2(f, l, id);
    verify_reopen(f->dir, PER_SEG + 2, 2);
}

/* An explicit rlog_rotate seals the active segment and starts the next one
 * before it returns; when preparing the next segment fails it returns the
 * error and changes nothing, and the next rotation gets segment 2. */
static void test_rotate_enospc(void **state)
{
    fx *f = *state;
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, 2);
    tu_snap before;
    tu_snap_take(f->dir, &before);
    rlog_fault ft = {.op = RLOG_OP_PWRITE, .times = 0, .err = ENOSPC, .path_contains = SEG2};
    int id = rlog_vfs_fault_add(f->fv, &ft);
    int rv = rlog_rotate(l);
    if (rv != RLOG_ENOSPC)
        fail_msg("rotate while segment 2 cannot be prepared: %s (expected RLOG_ENOSPC)",
                 rlog_errname(rv));
    tu_snap_assert_same(f->dir, &before);
    assert_positions(l, 2, 2, 2);
    rlog_vfs_fault_remove(f->fv, id);
    must_append(l, 3, 3); /* still in segment 1 */
    assert_int_equal(tu_file_size(tu_path(f->dir, SEG2)), -1);
    assert_int_equal(rlog_rotate(l), 0);
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_int_equal(m.rotations, 1);
    assert_seg_header(f->dir, SEG2, 2, 4); /* on disk when rotate returns */
    must_append(l, 4, 4);
    assert_int_equal(rlog_close(l), 0);
    tu_snap_free(&before);
    verify_reopen(f->dir, 4, 2);
}

/* rlog_rotate on a log with nothing pending performs the rotation before it
 * returns: the seal and segment 2's header are on disk, so a crash right
 * after it finds two segments. */
static void test_rotate_is_done_on_return(void **state)
{
    fx *f = *state;
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, 2);
    assert_int_equal(rlog_rotate(l), 0);
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_int_equal(m.rotations, 1);
    if (tu_file_size(tu_path(f->dir, SEG2)) < 0)
        fail_msg("rlog_rotate returned 0 but %s does not exist", SEG2);
    assert_seg_header(f->dir, SEG2, 2, 3);
    assert_int_equal(rlog_close(l), 0);
    verify_reopen(f->dir, 2, 2);
}

/* ---- the unsynced marker (fsyncgate) ---- */

/* A failed fdatasync leaves rlog.unsynced holding the last durable LSN (the
 * page cache may now show bytes the disk will never get); a clean close and
 * a crash without a failed sync leave none; the next writable open (after
 * the process died) removes it and recovers everything acknowledged. */
static void test_failed_sync_leaves_marker(void **state)
{
    fx *f = *state;
    const char *marker = tu_path(f->dir, "rlog.unsynced");
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, 3);
    assert_int_equal(rlog_close(l), 0);
    assert_int_equal(tu_file_size(marker), -1); /* clean close: no marker */
    l = open_with(f->dir, f->fv, 0, NULL);
    rlog_fault ft = {.op = RLOG_OP_FDATASYNC, .times = 1, .err = EIO, .path_contains = SEG1};
    assert_true(rlog_vfs_fault_add(f->fv, &ft) > 0);
    assert_int_equal(append_rec(l, 4), RLOG_EPOISONED);
    void *m;
    size_t n;
    tu_read_file(marker, &m, &n);
    assert_int_equal(n, 20);
    assert_memory_equal(m, "RLOGUNS1", 8);
    assert_int_equal(rlg_get64((uint8_t *)m + 8), 3); /* durable when the sync failed */
    assert_int_equal(rlg_get32((uint8_t *)m + 16), rlg_crc32c(m, 16));
    free(m);
    rlg_log_crash(l); /* the process dies without closing */
    rlog_open_report rep;
    l = open_with(f->dir, NULL, 0, &rep);
    assert_int_equal(tu_file_size(marker), -1);          /* handled and removed */
    assert_true(rep.last_lsn == 3 || rep.last_lsn == 4); /* 4 was never acknowledged */
    check_records(l, 1, rep.last_lsn);
    rlg_log_crash(l); /* a crash without a failed sync leaves no marker */
    assert_int_equal(tu_file_size(marker), -1);
}

/* The checkpoint a close writes must leave a seal's room: recovery takes a
 * segment ending less than that after its last record for one cut short
 * from outside. Segment 1 is filled up to SEG - 56 and closed (its
 * checkpoint ends at SEG - 28); a reopen's next append needs a rotation
 * whose seal write fails; the close after it must not write a second
 * checkpoint up to SEG - 0 (the soak's log seed 40078725, raft seed
 * 50194902): the reopen finds the log clean, and a later rotation still
 * has room for its seal. */
static void test_close_after_failed_seal_keeps_seal_room(void **state)
{
    fx *f = *state;
    rlog_log *l = open_seg1_full(f, NULL);
    size_t used = RLG_SEG_HEADER_SIZE + PER_SEG * (RLG_REC_HEADER_SIZE + LEN);
    size_t fill = SEG - RLG_TAIL_RESERVE - used - RLG_REC_HEADER_SIZE;
    assert_true(fill < LEN + RLG_REC_HEADER_SIZE); /* one more LEN record needs a rotation */
    uint8_t buf[LEN] = {0};
    rlog_record r = {.type = T, .len = (uint32_t)fill, .data = buf};
    uint64_t got = 0;
    assert_int_equal(rlog_append(l, &r, 1, &got), 0);
    assert_int_equal(got, PER_SEG + 1);
    assert_int_equal(rlog_close(l), 0); /* its checkpoint ends at SEG - 28 */
    l = open_with(f->dir, f->fv, 0, NULL);
    rlog_fault ft = {.op = RLOG_OP_PWRITE, .times = 1, .err = EIO, .path_contains = SEG1};
    int id = rlog_vfs_fault_add(f->fv, &ft);
    assert_int_equal(append_rec(l, PER_SEG + 2), RLOG_EIO); /* the seal's write failed */
    rlog_vfs_fault_remove(f->fv, id);
    assert_int_equal(rlog_close(l), 0);
    rlog_open_report rep;
    l = open_with(f->dir, NULL, 0, &rep);
    if (rep.status == RLOG_TAIL_CORRUPT)
        fail_msg("reopen: %s", rep.message);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, PER_SEG + 1);
    must_append(l, PER_SEG + 2, PER_SEG + 2); /* rotates: the seal fits */
    assert_seg_header(f->dir, SEG2, 2, PER_SEG + 2);
    assert_int_equal(rlog_close(l), 0);
    l = open_with(f->dir, NULL, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, PER_SEG + 2);
    assert_int_equal(rlog_close(l), 0);
}

/* A close whose checkpoint write fails part-way and whose zeroing's
 * fdatasync then fails too is a failed sync: the handle is poisoned and
 * rlog.unsynced is left, so the next open rewrites what the page cache may
 * show but the disk never got (the soak's log seed 40093821 lost a new
 * segment's header that way). */
static void test_failed_checkpoint_zeroing_sync_leaves_marker(void **state)
{
    fx *f = *state;
    const char *marker = tu_path(f->dir, "rlog.unsynced");
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, 3);
    uint64_t inj = rlog_vfs_fault_injected(f->fv);
    rlog_fault w = {
        .op = RLOG_OP_PWRITE, .times = 1, .err = EIO, .partial = 1, .path_contains = SEG1};
    rlog_fault s = {.op = RLOG_OP_FDATASYNC, .times = 1, .err = EIO, .path_contains = SEG1};
    assert_true(rlog_vfs_fault_add(f->fv, &w) > 0);
    assert_true(rlog_vfs_fault_add(f->fv, &s) > 0);
    assert_int_equal(rlog_close(l), RLOG_EPOISONED);
    assert_int_equal(rlog_vfs_fault_injected(f->fv), inj + 2);
    void *m;
    size_t n;
    tu_read_file(marker, &m, &n);
    assert_int_equal(n, 20);
    assert_memory_equal(m, "RLOGUNS1", 8);
    assert_int_equal(rlg_get64((uint8_t *)m + 8), 3);
    free(m);
    rlog_vfs_fault_clear(f->fv);
    verify_reopen(f->dir, 3, 1);
    assert_int_equal(tu_file_size(marker), -1);
}

/* ---- callbacks of rolled-back appends come before any new append ---- */

typedef struct cancel_ctx {
    rlog_log *l;
    int status;
    int inner; /* what an append made from inside the callback got */
} cancel_ctx;

static void cancel_cb(void *data, int status, uint64_t first, uint64_t last)
{
    cancel_ctx *c = data;
    (void)first;
    (void)last;
    c->status = status;
    uint8_t b[8] = {0};
    rlog_record r = {.type = T, .len = sizeof b, .data = b};
    c->inner = rlog_append_async(c->l, &r, 1, cancel_cb, c, NULL);
}

/* A write fails under a queued asynchronous append: its LSNs are rolled back
 * and will be reused, so until its failure callback has been delivered every
 * new append is refused with RLOG_ECANCELED (the caller could not yet know
 * its positions moved); then appends work again and reuse the LSN. */
static void test_append_refused_until_rollback_delivered(void **state)
{
    fx *f = *state;
    rlog_log *l = open_with(f->dir, f->fv, 0, NULL);
    must_append(l, 1, 2);
    cancel_ctx c = {.l = l, .status = -1, .inner = -1};
    uint8_t buf[LEN];
    tu_fill(SEED, 3, buf, sizeof buf);
    rlog_record r = {.type = T, .len = LEN, .data = buf};
    assert_int_equal(rlog_append_async(l, &r, 1, cancel_cb, &c, NULL), 0);
    rlog_fault ft = {.op = RLOG_OP_PWRITE, .times = 1, .err = EIO, .path_contains = SEG1};
    assert_true(rlog_vfs_fault_add(f->fv, &ft) > 0);
    assert_int_equal(rlog_step(l, NULL), RLOG_EIO);
    assert_int_equal(c.status, RLOG_EIO);      /* delivered by the failed round */
    assert_int_equal(c.inner, RLOG_ECANCELED); /* refused while it was being delivered */
    assert_positions(l, 2, 2, 2);
    must_append(l, 3, 4); /* afterwards: LSN 3 reused */
    assert_int_equal(rlog_close(l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_write_silent),
        cmocka_unit_test(test_short_write_eio),
        cmocka_unit_test(test_pwrite_eio),
        cmocka_unit_test(test_pwrite_enospc),
        cmocka_unit_test(test_pwrite_enospc_partial_thread),
        cmocka_unit_test(test_batch_write_fault_rolls_back_all),
        cmocka_unit_test(test_fdatasync_failure_poisons),
        cmocka_unit_test(test_fdatasync_failure_poisons_thread),
        cmocka_unit_test(test_spare_create_enospc),
        cmocka_unit_test(test_spare_prewrite_enospc),
        cmocka_unit_test(test_spare_fdatasync_enospc),
        cmocka_unit_test(test_spare_allocate_enospc),
        cmocka_unit_test(test_spare_sync_dir_eio),
        cmocka_unit_test(test_spare_enospc_thread),
        cmocka_unit_test(test_spare_failure_message),
        cmocka_unit_test(test_seal_fdatasync_failure_poisons),
        cmocka_unit_test(test_seal_write_failure_rolls_back),
        cmocka_unit_test(test_seal_short_write_rolls_back),
        cmocka_unit_test(test_new_segment_write_failure),
        cmocka_unit_test(test_rotate_enospc),
        cmocka_unit_test(test_rotate_is_done_on_return),
        cmocka_unit_test(test_failed_sync_leaves_marker),
        cmocka_unit_test(test_close_after_failed_seal_keeps_seal_room),
        cmocka_unit_test(test_failed_checkpoint_zeroing_sync_leaves_marker),
        cmocka_unit_test(test_append_refused_until_rollback_delivered),
    };
    return TU_RUN("log_faults", tests, setup, teardown);
}
