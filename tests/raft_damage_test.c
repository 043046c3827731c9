/* Opening a damaged Raft store, or a directory that is not one:
 *  - the current snapshot file deleted, cut short or with a flipped byte:
 *    rlog_rs_open fails with RLOG_ECORRUPT and a message naming the file and
 *    what differs from its marker (size, CRC32C), read-only as well as for
 *    writing, and changes nothing on disk;
 *  - an older, surplus snapshot file that is damaged does not matter;
 *  - a plain log whose records are not Raft records: RLOG_ENOTRAFT with
 *    "not a Raft store", distinct from corruption. */
#include "util/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rlog/raft_storage.h"

#define SEG 65536u

static rlog_rs *open_store(const char *dir, unsigned flags, int *rv, rlog_rs_open_report *rep)
{
    rlog_rs *rs;
    *rv = tu_rs_try_open(dir, NULL, SEG, flags, RLOG_SYNC_EACH, &rs, rep);
    return rs;
}

/* A store with entries 1..40 and a snapshot at 30 (4000 bytes of data);
 * returns the snapshot file's path (static buffer). */
static const char *make_store(const char *dir)
{
    int rv;
    rlog_rs *rs = open_store(dir, RLOG_OPEN_CREATE, &rv, NULL);
    assert_int_equal(rv, 0);
    assert_int_equal(rlog_rs_set_term(rs, 2), 0);
    uint8_t pay[100];
    for (uint64_t i = 1; i <= 40; i++) {
        tu_fill(5, i, pay, sizeof pay);
        rlog_rs_entry e = {.term = 2, .type = 1, .len = sizeof pay, .data = pay};
        assert_int_equal(rlog_rs_append(rs, i, &e, 1), 0);
    }
    static uint8_t data[4000];
    tu_fill(9, 1, data, sizeof data);
    static char path[4096];
    snprintf(path, sizeof path, "%s",
             tu_path(dir, tu_rs_put_snapshot(rs, 30, 2, "conf", data, sizeof data, 5)));
    assert_int_equal(rlog_rs_close(rs), 0);
    return path;
}

/* Both open modes fail with ECORRUPT, the message naming the file and
 * containing `what`; nothing on disk changes. */
static void assert_open_fails(const char *dir, const char *file, const char *what)
{
    tu_snap before;
    tu_snap_take(dir, &before);
    const unsigned modes[] = {RLOG_OPEN_READONLY, 0};
    for (size_t m = 0; m < 2; m++) {
        rlog_rs_open_report rep;
        int rv;
        rlog_rs *rs = open_store(dir, modes[m], &rv, &rep);
        assert_null(rs);
        if (rv != RLOG_ECORRUPT)
            fail_msg("mode %u: %s: %s", modes[m], rlog_errname(rv), rep.message);
        if (!strstr(rep.message, file) || !strstr(rep.message, what))
            fail_msg("message lacks '%s' / '%s': %s", file, what, rep.message);
        assert_true(rep.corrupt_lsn > 0); /* the marker's LSN */
    }
    tu_snap_assert_same(dir, &before);
    tu_snap_free(&before);
}

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void test_snapshot_deleted(void **state)
{
    tu_dir_fx *f = *state;
    const char *snap = make_store(f->dir);
    assert_int_equal(unlink(snap), 0);
    assert_open_fails(f->dir, base(snap), "missing");
}

static void test_snapshot_short(void **state)
{
    tu_dir_fx *f = *state;
    const char *snap = make_store(f->dir);
    tu_truncate(snap, 1000);
    assert_open_fails(f->dir, base(snap), "1000 bytes");
}

static void test_snapshot_flipped(void **state)
{
    tu_dir_fx *f = *state;
    const char *snap = make_store(f->dir);
    tu_flip_bit(snap, 2500, 1);
    assert_open_fails(f->dir, base(snap), "checksum");
}

/* The intact store still opens (the check is not a false alarm), and the
 * snapshot reads back. */
static void test_snapshot_intact(void **state)
{
    tu_dir_fx *f = *state;
    make_store(f->dir);
    int rv;
    rlog_rs_open_report rep;
    rlog_rs *rs = open_store(f->dir, 0, &rv, &rep);
    if (rv)
        fail_msg("%s: %s", rlog_errname(rv), rep.message);
    rlog_rs_snapshot s;
    assert_int_equal(rlog_rs_snapshot_get(rs, &s), 0);
    assert_int_equal(s.size, 4000);
    rlog_rs_snapshot_release(&s);
    assert_int_equal(rlog_rs_close(rs), 0);
}

/* A plain log of records that are not Raft records. */
static void test_not_a_raft_store(void **state)
{
    tu_dir_fx *f = *state;
    rlog_log *l = tu_open_log(f->dir, NULL, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
    uint8_t pay[200];
    tu_fill(1, 1, pay, sizeof pay);
    rlog_record r = {.type = RLOG_TYPE_USER_MIN, .len = sizeof pay, .data = pay};
    assert_int_equal(rlog_append(l, &r, 1, NULL), 0);
    assert_int_equal(rlog_close(l), 0);
    tu_snap before;
    tu_snap_take(f->dir, &before);
    const unsigned modes[] = {RLOG_OPEN_READONLY, 0};
    for (size_t m = 0; m < 2; m++) {
        rlog_rs_open_report rep;
        int rv;
        assert_null(open_store(f->dir, modes[m], &rv, &rep));
        if (rv != RLOG_ENOTRAFT)
            fail_msg("%s: %s", rlog_errname(rv), rep.message);
        assert_non_null(strstr(rep.message, "not a Raft store"));
        assert_non_null(strstr(rep.message, "LSN 1"));
        assert_int_equal(rep.corrupt_lsn, 0);
    }
    assert_string_equal(rlog_strerror(RLOG_ENOTRAFT), "not a Raft store");
    tu_snap_assert_same(f->dir, &before);
    tu_snap_free(&before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_deleted), cmocka_unit_test(test_snapshot_short),
        cmocka_unit_test(test_snapshot_flipped), cmocka_unit_test(test_snapshot_intact),
        cmocka_unit_test(test_not_a_raft_store),
    };
    return TU_RUN("raft_damage", tests, tu_dir_setup, tu_dir_teardown);
}
