/* The rlog tool on damaged directories (run as a separate process):
 *  - verify and stat of a Raft store whose snapshot file is missing or
 *    damaged: exit 2, the file named;
 *  - dump of a damaged log: every record before the damage, then the
 *    damage (segment, offset), exit 2;
 *  - a segment cut short by `truncate`: damage (exit 2) naming the range
 *    lost, not a torn tail;
 *  - repair: --dry-run changes nothing; a repair moves what it cuts into
 *    the backup directory (byte-identical), names the LSN range lost, leaves
 *    a foreign file alone, and verify is then clean; refused while a writer
 *    holds the lock; on a Raft store it names the index to refetch from;
 *  - bad input refused before touching the disk: a record that cannot fit
 *    a segment, another --segment-size on an existing log, help on an
 *    unknown command. */
#include "util/testutil.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rlog/raft_storage.h"

typedef tu_log_fx fx;

static void write_log(const fx *f)
{
    free(tu_rlog_write(f->log, TU_LOG_COUNT, TU_LOG_SIZE, TU_LOG_SEED));
}

/* The first LSN of segment file `name` (from its header). */
static unsigned long long seg_first_lsn(const char *dir, const char *name)
{
    void *d;
    size_t n;
    tu_read_file(tu_path(dir, name), &d, &n);
    assert_true(n >= 64);
    unsigned long long v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | ((unsigned char *)d)[32 + i];
    free(d);
    return v;
}

/* ---------------------------------------------------------------- Raft */

/* A Raft store: entries 1..300 of 100 bytes over 4 KiB segments, a
 * snapshot at 250 (trailing 20). Returns the snapshot file's name. */
static const char *make_store(const char *dir)
{
    rlog_rs *rs = tu_rs_open(dir, 4096, RLOG_OPEN_CREATE, RLOG_SYNC_EACH);
    assert_int_equal(rlog_rs_set_term(rs, 3), 0);
    uint8_t pay[100];
    for (uint64_t i = 1; i <= 300; i++) {
        tu_fill(5, i, pay, sizeof pay);
        rlog_rs_entry e = {.term = i < 200 ? 2 : 3, .type = 1, .len = sizeof pay, .data = pay};
        assert_int_equal(rlog_rs_append(rs, i, &e, 1), 0);
    }
    static uint8_t data[3000];
    tu_fill(9, 1, data, sizeof data);
    const char *name = tu_rs_put_snapshot(rs, 250, 3, "c", data, sizeof data, 20);
    assert_int_equal(rlog_rs_close(rs), 0);
    return name;
}

/* `rlog ARGS` exits with `rc` and prints each of the strings in `ap`, up
 * to NULL. */
static void expect_argsv(const char *args, int rc, va_list ap)
{
    char *out;
    assert_int_equal(tu_rlog(&out, "%s", args), rc);
    for (const char *want = va_arg(ap, const char *); want; want = va_arg(ap, const char *))
        tu_expect(out, want);
    free(out);
}

/* `rlog CMD LOG` exits with `rc` and prints each of the strings that
 * follow, up to NULL. */
static void expect_rlog(const char *cmd, const char *log, int rc, ...)
{
    char args[8192];
    snprintf(args, sizeof args, "%s %s", cmd, log);
    va_list ap;
    va_start(ap, rc);
    expect_argsv(args, rc, ap);
    va_end(ap);
}

/* `rlog repair LOG OPTS --backup BK` (without --backup when bk is NULL)
 * exits with `rc` and prints each of the strings that follow, up to NULL. */
static void expect_repair(const char *log, const char *opts, const char *bk, int rc, ...)
{
    char args[8192];
    snprintf(args, sizeof args, "repair %s %s%s%s", log, opts, bk ? " --backup " : "",
             bk ? bk : "");
    va_list ap;
    va_start(ap, rc);
    expect_argsv(args, rc, ap);
    va_end(ap);
}

/* verify (checking every payload written by write_log) finds a clean log
 * that ends at LSN `last`. */
static void expect_clean(const char *log, unsigned long long last)
{
    char *out;
    assert_int_equal(tu_rlog(&out, "verify %s --seed %d", log, TU_LOG_SEED), 0);
    char want[64];
    snprintf(want, sizeof want, "last_lsn=%llu", last);
    tu_expect(tu_last_line(out), want);
    free(out);
}

static void test_raft_snapshot_damage_verify_stat(void **state)
{
    fx *f = *state;
    const char *snap = make_store(f->log);
    expect_rlog("verify", f->log, 0, NULL);
    char *out;
    /* a flipped byte: the checksum */
    tu_flip_bit(tu_path(f->log, snap), 1500, 2);
    assert_int_equal(tu_rlog(&out, "verify %s", f->log), 2);
    tu_expect(out, snap);
    tu_expect(out, "checksum");
    assert_true(strncmp(tu_last_line(out), "status=corrupt ", 15) == 0);
    free(out);
    expect_rlog("stat", f->log, 2, "\nraft=damaged\n", snap, NULL);
    /* deleted: missing */
    assert_int_equal(unlink(tu_path(f->log, snap)), 0);
    expect_rlog("verify", f->log, 2, snap, "missing", NULL);
    expect_rlog("stat", f->log, 2, "missing", NULL);
}

/* ---------------------------------------------------------------- dump */

static void test_dump_up_to_damage(void **state)
{
    fx *f = *state;
    write_log(f);
    unsigned long long first3 = seg_first_lsn(f->log, "0000000000000003.seg");
    /* the payload of the first record of segment 3 (sealed) */
    tu_flip_bit(tu_path(f->log, "0000000000000003.seg"), 64 + 28 + 5, 0);
    char *out;
    assert_int_equal(tu_rlog(&out, "dump %s", f->log), 2);
    assert_int_equal(tu_lines_starting(out, "lsn="), first3 - 1);
    assert_true(strncmp(out, "lsn=1 type=16 len=200 ", 22) == 0);
    char last[64];
    snprintf(last, sizeof last, "\nlsn=%llu type=16", first3 - 1);
    tu_expect(out, last);
    tu_expect(tu_last_line(out), "damage: ");
    tu_expect(tu_last_line(out), "0000000000000003.seg at offset 64");
    free(out);
    assert_int_equal(tu_rlog(&out, "dump %s --json", f->log), 2);
    assert_int_equal(tu_lines_starting(out, "{\"lsn\":"), first3 - 1);
    tu_expect(tu_last_line(out),
              "{\"damage\":{\"segment\":\"0000000000000003.seg\",\"offset\":64,");
    free(out);
}

/* ---------------------------------------------------------------- truncate */

static void test_truncated_segment_is_damage(void **state)
{
    fx *f = *state;
    write_log(f);
    char **names;
    size_t n = tu_list_segments(f->log, &names);
    /* the active segment: the last one with a header; cut it in the middle
     * of its records (every record in it was acknowledged) */
    char active[64] = "";
    for (size_t i = 0; i < n; i++) {
        void *d;
        size_t len;
        tu_read_file(tu_path(f->log, names[i]), &d, &len);
        if (memcmp(d, "RLOGSEG1", 8) == 0)
            snprintf(active, sizeof active, "%s", names[i]);
        free(d);
    }
    tu_free_names(names, n);
    unsigned long long first = seg_first_lsn(f->log, active);
    assert_true(first + 6 < TU_LOG_COUNT);
    tu_truncate(tu_path(f->log, active), 64 + 5 * 228 + 100);
    char range[64];
    snprintf(range, sizeof range, "from LSN %llu on", first + 5);
    expect_rlog("verify", f->log, 2, active, "cut short", range, NULL);
    /* the whole range: records after the cut were acknowledged */
    expect_rlog("stat", f->log, 2, "\nstatus=corrupt\n", NULL);
    /* repair (default backup beside the log) gives a clean log of the rest */
    expect_repair(f->log, "", NULL, 0, "backup=", NULL);
    expect_clean(f->log, first + 4);
    /* the sibling backup directory holds the cut segment's original bytes */
    DIR *d = opendir(f->dir);
    struct dirent *e;
    bool found = false;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "log.repair-", 11) == 0) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", e->d_name, active);
            found = tu_file_size(tu_path(f->dir, p)) == 64 + 5 * 228 + 100;
        }
    closedir(d);
    assert_true(found);
}

/* ---------------------------------------------------------------- repair */

static void test_repair_with_backup(void **state)
{
    fx *f = *state;
    write_log(f);
    unsigned long long first3 = seg_first_lsn(f->log, "0000000000000003.seg");
    tu_flip_bit(tu_path(f->log, "0000000000000003.seg"), 64 + 3 * 228 + 40, 4);
    tu_write_file(tu_path(f->log, "notes.txt"), "mine\n", 5);
    tu_snap before;
    tu_snap_take(f->log, &before);
    void *seg4;
    size_t seg4_len;
    tu_read_file(tu_path(f->log, "0000000000000004.seg"), &seg4, &seg4_len);

    const char *bk = strdup(tu_path(f->dir, "bk"));
    /* dry run: the plan, nothing changed, no backup made */
    expect_repair(f->log, "--dry-run", bk, 0, "would move", "notes.txt", NULL);
    tu_snap_assert_same(f->log, &before);
    assert_int_equal(access(bk, F_OK), -1);

    /* a writer holds the lock: refused, nothing changed */
    rlog_vfs *v = rlog_vfs_posix();
    rlog_file *lk = NULL;
    assert_int_equal(v->lock(v, f->log, &lk), 0);
    expect_repair(f->log, "", bk, 4, "RLOG_EBUSY", NULL);
    assert_int_equal(v->unlock(v, lk), 0);
    tu_snap_assert_same(f->log, &before);

    char lost[96];
    snprintf(lost, sizeof lost, "lost: LSN %llu", first3 + 3);
    expect_repair(f->log, "", bk, 0, "moved: ", "0000000000000004.seg", lost,
                  "left alone: ", "notes.txt", NULL);
    /* the dropped segment is in the backup, byte for byte; the foreign file
     * stayed */
    void *moved;
    size_t moved_len;
    tu_read_file(tu_path(bk, "0000000000000004.seg"), &moved, &moved_len);
    assert_int_equal(moved_len, seg4_len);
    assert_memory_equal(moved, seg4, seg4_len);
    free(moved);
    free(seg4);
    assert_int_equal(access(tu_path(f->log, "0000000000000004.seg"), F_OK), -1);
    assert_int_equal(tu_file_size(tu_path(f->log, "notes.txt")), 5);
    /* the damaged segment's original bytes too */
    assert_int_equal(tu_file_size(tu_path(bk, "0000000000000003.seg")), 65536);
    expect_clean(f->log, first3 + 2);
    /* nothing left to do */
    expect_repair(f->log, "", bk, 0, "nothing to repair", NULL);
    tu_snap_free(&before);
    free((void *)bk);
}

static void test_repair_raft_store(void **state)
{
    fx *f = *state;
    const char *snap = make_store(f->log);
    /* damage the oldest segment still held (sealed): everything after it
     * goes */
    char **names;
    size_t n = tu_list_segments(f->log, &names);
    assert_true(n >= 4);
    char victim[64];
    snprintf(victim, sizeof victim, "%s", names[1]);
    tu_free_names(names, n);
    tu_flip_bit(tu_path(f->log, victim), 64 + 28 + 3, 1);
    expect_rlog("verify", f->log, 2, NULL);
    /* the snapshot marker was in what was cut: its file is kept in the
     * backup (the store's next open would remove it as an orphan) */
    expect_repair(f->log, "", tu_path(f->dir, "bk"), 0, "raft: ", "refetch", "index",
                  "a snapshot whose marker was cut", NULL);
    assert_int_equal(tu_file_size(tu_path(tu_path(f->dir, "bk"), snap)), 3000);
    assert_int_equal(access(tu_path(f->log, snap), F_OK), -1);
    expect_rlog("verify", f->log, 0, NULL);
    expect_rlog("stat", f->log, 0, "\nraft=yes\n", NULL);
}

/* A segment file deleted from the middle: the log ends at the seal of the
 * one before it (copied to the backup), the later ones are moved. */
static void test_repair_missing_segment(void **state)
{
    fx *f = *state;
    write_log(f);
    unsigned long long first4 = seg_first_lsn(f->log, "0000000000000004.seg");
    assert_int_equal(unlink(tu_path(f->log, "0000000000000004.seg")), 0);
    expect_rlog("verify", f->log, 2, "0000000000000004.seg is missing", NULL);
    char *bk = strdup(tu_path(f->dir, "bk"));
    expect_repair(f->log, "", bk, 0, "0000000000000003.seg (its seal is cut",
                  "0000000000000005.seg (dropped from the log)", NULL);
    assert_int_equal(tu_file_size(tu_path(bk, "0000000000000003.seg")), 65536);
    assert_int_equal(tu_file_size(tu_path(bk, "0000000000000005.seg")), 65536);
    expect_clean(f->log, first4 - 1);
    free(bk);
}

/* A segment file of another log copied in: every open fails with
 * RLOG_EFOREIGN; repair moves it into the backup and the log is clean. */
static void test_repair_foreign_segment(void **state)
{
    fx *f = *state;
    write_log(f);
    char *other = strdup(tu_path(f->dir, "other"));
    free(tu_rlog_write(other, 10, 20, 1));
    char *stray = strdup(tu_path(f->log, "000000000000000a.seg"));
    tu_copy_file(tu_path(other, "0000000000000001.seg"), stray);
    expect_rlog("verify", f->log, 2, "belongs to log", NULL);
    char *bk = strdup(tu_path(f->dir, "bk"));
    expect_repair(f->log, "--dry-run", bk, 0, "would move: ", "a segment of another log", NULL);
    assert_int_equal(tu_file_size(stray), 65536);
    expect_repair(f->log, "", bk, 0, "moved: ", "000000000000000a.seg", NULL);
    assert_int_equal(tu_file_size(tu_path(bk, "000000000000000a.seg")), 65536);
    expect_clean(f->log, 2000);
    free(bk);
    free(stray);
    free(other);
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(void **state)
{
    fx *f = *state;
    char *out;
    /* a record that cannot fit a segment: refused before the log exists */
    assert_int_equal(tu_rlog(&out, "write %s --count 1 --size 1M --segment-size 64K", f->log), 3);
    tu_expect(out, "--size");
    free(out);
    assert_int_equal(tu_rlog(NULL, "write %s --count 1 --size 64M", f->log), 3);
    assert_int_equal(access(f->log, F_OK), -1);
    /* a record above the default maximum (16 MiB) that fits: written */
    assert_int_equal(tu_rlog(&out, "write %s --count 1 --size 20M --segment-size 32M", f->log), 0);
    free(out);
    /* another segment size on the existing log: refused, nothing appended */
    assert_int_equal(tu_rlog(&out, "write %s --count 1 --size 10 --segment-size 64K", f->log), 3);
    tu_expect(out, "33554432");
    tu_expect(out, "65536");
    free(out);
    assert_int_equal(tu_rlog(&out, "verify %s", f->log), 0);
    tu_expect(tu_last_line(out), "last_lsn=1");
    free(out);
    /* without --segment-size the log's own size is kept */
    assert_int_equal(tu_rlog(&out, "write %s --count 1 --size 10", f->log), 0);
    free(out);
    /* help on an unknown command: a usage error, not success */
    assert_int_equal(tu_rlog(&out, "help nosuch"), 3);
    tu_expect(out, "nosuch");
    free(out);
    assert_int_equal(tu_rlog(NULL, "help dump"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_snapshot_damage_verify_stat),
        cmocka_unit_test(test_dump_up_to_damage),
        cmocka_unit_test(test_truncated_segment_is_damage),
        cmocka_unit_test(test_repair_with_backup),
        cmocka_unit_test(test_repair_raft_store),
        cmocka_unit_test(test_repair_missing_segment),
        cmocka_unit_test(test_repair_foreign_segment),
        cmocka_unit_test(test_bad_input),
    };
    return TU_RUN("tools_damage", tests, tu_log_setup, tu_log_teardown);
}
