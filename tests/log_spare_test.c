/*
 * The log's spare segment files at a writable open (log/open.c,
 * adopt_spares): a segment file is never used before it is fully prepared
 * (the segment size, zeros, synced), and leftover spares are removed so that
 * the segment files always form a contiguous run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/handle.h"
#include "rlog/sim.h"
#include "util/testutil.h"

#define SEG 4096u

static void append_n(rlog_log *l, unsigned n, uint32_t len)
{
    static uint8_t buf[1024];
    for (unsigned i = 0; i < n; i++) {
        tu_fill(7, i, buf, len);
        rlog_record r = {.type = RLOG_TYPE_USER_MIN, .len = len, .data = buf};
        int rv = rlog_append(l, &r, 1, NULL);
        if (rv)
            fail_msg("append: %s: %s", rlog_errname(rv), rlog_errmsg(l));
    }
}

/* Every case starts from a log of five records in a fresh directory
 * (tu_dir_fx; removed by tu_dir_teardown). */
static int setup(void **state)
{
    if (tu_dir_setup(state))
        return -1;
    rlog_log *l =
        tu_open_log(((tu_dir_fx *)*state)->dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
    append_n(l, 5, 100);
    assert_int_equal(rlog_close(l), 0);
    return 0;
}

/* Reads every record of the log in dir back (LSN 1 .. last) and returns how
 * many there are; the open must succeed. */
static uint64_t count_records(const char *dir)
{
    rlog_log *l = tu_open_log(dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, NULL);
    rlog_iter *it = NULL;
    assert_int_equal(rlog_iter_open(l, 0, 0, &it), 0);
    rlog_record rec;
    uint64_t n = 0;
    int rv;
    while ((rv = rlog_iter_next(it, &rec)) == 0)
        assert_int_equal(rec.lsn, ++n);
    assert_int_equal(rv, RLOG_EEND);
    rlog_iter_close(it);
    assert_int_equal(rlog_close(l), 0);
    return n;
}

/* Property (the sim's seeds 144, 30408, 30770, 30980): when preparing the
 * next segment fails (its allocation fails) and so does the removal of the
 * partial file, the short file that stays is prepared again by the next
 * writable open before it is used: it has the segment size right after the
 * open, and once it becomes the active segment it still has exactly that
 * size (a file that grew with the appends would not). */
static void test_short_leftover_spare_prepared(void **state)
{
    const char *D = ((tu_dir_fx *)*state)->dir;
    rlog_log *l;

    rlog_vfs *v = rlog_vfs_fault_new(rlog_vfs_posix());
    rlog_fault fa = {.op = RLOG_OP_ALLOCATE, .err = EIO, .path_contains = tu_seg_name(2)};
    assert_true(rlog_vfs_fault_add(v, &fa) > 0);
    rlog_fault fu = {.op = RLOG_OP_UNLINK, .err = EIO, .path_contains = tu_seg_name(2)};
    assert_true(rlog_vfs_fault_add(v, &fu) > 0);
    l = tu_open_log(D, v, SEG, RLOG_SYNC_EACH, 0, NULL);
    assert_int_equal(rlog_rotate(l), RLOG_EIO); /* preparing segment 2 failed */
    assert_int_equal(rlog_close(l), 0);
    assert_true(tu_file_size(tu_path(D, tu_seg_name(2))) >= 0); /* left behind */
    assert_true(tu_file_size(tu_path(D, tu_seg_name(2))) < (long)SEG);
    v->destroy(v);

    l = tu_open_log(D, NULL, SEG, RLOG_SYNC_EACH, 0, NULL);
    assert_int_equal(rlog_step(l, NULL), 0); /* the next preparation */
    assert_int_equal(tu_file_size(tu_path(D, tu_seg_name(2))), SEG);
    append_n(l, 40, 300); /* into segment 2 and beyond */
    assert_int_equal(rlog_close(l), 0);
    char **names = NULL;
    size_t n = tu_list_segments(D, &names);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++)
        if (tu_file_size(tu_path(D, names[i])) != (long)SEG)
            fail_msg("%s has %ld bytes, not %u", names[i], tu_file_size(tu_path(D, names[i])), SEG);
    tu_free_names(names, n);
    assert_int_equal(count_records(D), 45);
}

/* Property: a kept spare larger than the segment size (made by an open with
 * a larger setting) is cut to the segment size by the next writable open;
 * its bytes are zeros and the log reads back unchanged. */
static void test_long_leftover_spare_prepared(void **state)
{
    const char *D = ((tu_dir_fx *)*state)->dir;
    rlog_log *l;
    uint8_t *zeros = calloc(1, 3 * SEG);
    tu_write_file(tu_path(D, tu_seg_name(2)), zeros, 3 * SEG);
    l = tu_open_log(D, NULL, SEG, RLOG_SYNC_EACH, 0, NULL);
    assert_int_equal(rlog_step(l, NULL), 0); /* the next preparation */
    assert_int_equal(tu_file_size(tu_path(D, tu_seg_name(2))), SEG);
    void *d = NULL;
    size_t len = 0;
    tu_read_file(tu_path(D, tu_seg_name(2)), &d, &len);
    assert_memory_equal(d, zeros, len);
    free(d);
    append_n(l, 20, 300);
    assert_int_equal(rlog_close(l), 0);
    assert_int_equal(tu_file_size(tu_path(D, tu_seg_name(2))), SEG);
    assert_int_equal(count_records(D), 25);
    free(zeros);
}

/* Property: surplus spares (beyond the one after the last segment) are
 * removed highest first, so that an open that fails part-way (here: the
 * highest one cannot be removed) never leaves a gap in the run of segment
 * files; the next open succeeds and removes them. */
static void test_surplus_spares_removed_highest_first(void **state)
{
    const char *D = ((tu_dir_fx *)*state)->dir;
    rlog_log *l;
    uint8_t *zeros = calloc(1, SEG);
    tu_write_file(tu_path(D, tu_seg_name(2)), zeros, SEG);
    tu_write_file(tu_path(D, tu_seg_name(3)), "", 0);
    tu_write_file(tu_path(D, tu_seg_name(4)), zeros, 100);
    rlog_vfs *v = rlog_vfs_fault_new(rlog_vfs_posix());
    rlog_fault fu = {.op = RLOG_OP_UNLINK, .err = EIO, .path_contains = tu_seg_name(4)};
    assert_true(rlog_vfs_fault_add(v, &fu) > 0);
    rlog_open_report rep;
    assert_int_equal(tu_try_open(D, v, SEG, RLOG_SYNC_EACH, 0, &l, &rep), RLOG_EIO);
    v->destroy(v);
    char **names = NULL;
    size_t n = tu_list_segments(D, &names);
    for (size_t i = 1; i < n; i++) { /* a contiguous run */
        uint64_t a = strtoull(names[i - 1], NULL, 16), b = strtoull(names[i], NULL, 16);
        if (b != a + 1)
            fail_msg("%s follows %s: a gap", names[i], names[i - 1]);
    }
    tu_free_names(names, n);
    l = tu_open_log(D, NULL, SEG, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rlog_close(l), 0);
    assert_int_equal(tu_file_size(tu_path(D, tu_seg_name(2))), SEG);
    assert_int_equal(tu_file_size(tu_path(D, tu_seg_name(3))), -1);
    assert_int_equal(tu_file_size(tu_path(D, tu_seg_name(4))), -1);
    assert_int_equal(count_records(D), 5);
    free(zeros);
}

/* Property (soak seed 60319397): a writable open never trusts the spare
 * it finds. The process that made spare 2 died after that spare's
 * fdatasync failed and dropped the dirty pages (and the removal of the
 * partial file failed too); the next process used to fdatasync the file
 * again, which succeeded with nothing to write, so segment 2 came back from
 * a power loss shorter than the segment size (only the synced records and
 * seal were on the disk). Now the spare is written again before it is
 * used: after the power loss every segment file has the segment size, and
 * every record is there. Over many simulated file systems (each seed
 * decides what the power loss keeps). */
static void test_kept_spare_not_trusted(void **state)
{
    (void)state;
    const char *D = "/db/log";
    for (uint64_t seed = 1; seed <= 20; seed++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, seed);
        rlog_vfs *vfs = tu_simfs_new(&cfg, "/db");
        rlog_log *l = tu_open_log(D, vfs, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
        append_n(l, 3, 100); /* segment 1 only */
        assert_int_equal(tu_simfs_size(vfs, tu_path(D, tu_seg_name(2)), true), -1);
        rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_FDATASYNC,
                                  rlog_simfs_calls(vfs, RLOG_OP_FDATASYNC) + 1);
        rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_EIO, RLOG_OP_UNLINK,
                                  rlog_simfs_calls(vfs, RLOG_OP_UNLINK) + 1);
        assert_int_equal(rlog_step(l, NULL), RLOG_EIO); /* preparing spare 2 */
        rlg_log_crash(l);                               /* the process died */
        rlog_simfs_crash(vfs);

        l = tu_open_log(D, vfs, SEG, RLOG_SYNC_EACH, 0, NULL);
        append_n(l, 40, 300); /* through segment 2 and beyond */
        rlog_positions p;
        rlog_positions_get(l, &p);
        assert_int_equal(rlog_close(l), 0);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        for (uint64_t seq = 1; seq <= 3; seq++)
            if (tu_simfs_size(vfs, tu_path(D, tu_seg_name(seq)), true) != (long)SEG)
                fail_msg("seed %" PRIu64 ": %s has %ld bytes on the disk, not %u", seed,
                         tu_seg_name(seq), tu_simfs_size(vfs, tu_path(D, tu_seg_name(seq)), true),
                         SEG);
        l = tu_open_log(D, vfs, SEG, RLOG_SYNC_EACH, 0, NULL);
        rlog_positions q;
        rlog_positions_get(l, &q);
        assert_int_equal(q.durable, p.durable);
        assert_int_equal(q.durable, 43);
        assert_int_equal(rlog_close(l), 0);
        vfs->destroy(vfs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_leftover_spare_prepared),
        cmocka_unit_test(test_long_leftover_spare_prepared),
        cmocka_unit_test(test_surplus_spares_removed_highest_first),
        cmocka_unit_test(test_kept_spare_not_trusted),
    };
    return TU_RUN("log_spare", tests, setup, tu_dir_teardown);
}
