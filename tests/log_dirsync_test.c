/* Directory operations and failed directory fsyncs (issue 15, item 1). A
 * power loss keeps each unsynced directory operation independently, so two
 * unsynced unlinks at the head of the log may come back as "the later one
 * kept, the earlier one lost": a gap in the run of segment files. The log
 * never has two directory operations unsynced at once — a later one syncs
 * the directory first (docs/durability.md, "Directory operations") — and
 * repair never drops intact records that lie beyond a gap of missing
 * segment files. The unsynced marker is never made "durable" by a
 * directory fsync retried after a failed one (which may have dropped its
 * entry: sync_drop on sync_dir); a process that dies before the marker's
 * rename leaves its temporary file, which the next open takes for the
 * marker; a failed removal of the marker leaves it again. Everything runs
 * on the simulated file system, over many seeds (each seed decides what a
 * power loss keeps). */
#include "util/testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/handle.h"
#include "os/bytes.h"
#include "os/crc32c.h"
#include "rlog/log.h"
#include "rlog/sim.h"

#define DIR   "/db/log"
#define SEG   4096u
#define LEN   200
#define NSEGS 8
#define SEEDS 100

static rlog_vfs *fs_new(uint64_t seed)
{
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, seed);
    return tu_simfs_new(&cfg, "/db");
}

static size_t count_segments(rlog_vfs *vfs)
{
    char **names = NULL;
    size_t n = 0, segs = 0;
    assert_int_equal(rlog_simfs_list_files(vfs, 0, &names, &n), 0);
    for (size_t i = 0; i < n; i++)
        segs += strstr(names[i], ".seg") != NULL;
    rlog_vfs_free_names(names, n);
    return segs;
}

/* A log on vfs with at least NSEGS segment files, every record durable;
 * returns the last LSN. */
static rlog_log *make_log(rlog_vfs *vfs, uint64_t *last)
{
    rlog_log *l = tu_open_log(DIR, vfs, SEG, RLOG_SYNC_EACH, RLOG_OPEN_CREATE, NULL);
    uint8_t buf[LEN];
    uint64_t lsn = 0;
    while (count_segments(vfs) < NSEGS) {
        tu_fill(1, lsn + 1, buf, LEN);
        rlog_record r = {.type = 16, .len = LEN, .data = buf};
        assert_int_equal(rlog_append(l, &r, 1, &lsn), 0);
    }
    *last = lsn;
    return l;
}

/* Records first..last of l are intact (as make_log wrote them). */
static void check_records(rlog_log *l, uint64_t first, uint64_t last)
{
    uint8_t want[LEN];
    for (uint64_t lsn = first; lsn <= last; lsn++) {
        rlog_record r;
        void *buf = NULL;
        assert_int_equal(rlog_get(l, lsn, 0, &r, &buf), 0);
        tu_fill(1, lsn, want, LEN);
        assert_int_equal(r.len, LEN);
        assert_memory_equal(r.data, want, LEN);
        rlog_free(buf);
    }
}

/* Opens the log after the crash and checks it holds [first..last] intact,
 * with first <= keep_from. Returns the open's result. */
static int reopen_check(rlog_vfs *vfs, uint64_t keep_from, uint64_t last, rlog_open_report *rep)
{
    rlog_log *l = NULL;
    int rv = tu_try_open(DIR, vfs, SEG, RLOG_SYNC_EACH, 0, &l, rep);
    if (rv)
        return rv;
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_true(p.first <= keep_from);
    assert_int_equal(p.durable, last);
    check_records(l, p.first, last);
    assert_int_equal(rlog_close(l), 0);
    return 0;
}

/* The scenario of issue 15: 8 segments; rlog_delete_prefix with the
 * directory fsync after its unlink failing; rlog_delete_prefix again with
 * the process dying right after its first vfs call; power loss; reopen.
 * Before the fix the second call unlinked the next segment with the first
 * unlink still unsynced, and 19 of 100 seeds reopened to RLOG_ECORRUPT
 * ("segment file ... is missing"). Every seed must now reopen to every
 * record from the oldest segment not deleted on. */
static void test_delete_prefix_after_failed_dirsync(void **state)
{
    (void)state;
    unsigned corrupt = 0, deleted_twice = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_vfs *vfs = fs_new(seed);
        uint64_t last = 0;
        rlog_log *l = make_log(vfs, &last);
        rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_EIO, RLOG_OP_SYNC_DIR,
                                  rlog_simfs_calls(vfs, RLOG_OP_SYNC_DIR) + 1);
        uint64_t deleted = 0;
        assert_int_equal(rlog_delete_prefix(l, last, &deleted), RLOG_EIO);
        assert_int_equal(deleted, 1);
        rlog_simfs_halt_after(vfs, 1);
        uint64_t more = 0;
        assert_int_not_equal(rlog_delete_prefix(l, last, &more), 0);
        deleted_twice += more > 0;
        rlg_log_crash(l); /* the process died */
        rlog_simfs_power_loss(vfs);
        rlog_open_report rep;
        int rv = reopen_check(vfs, last, last, &rep);
        if (rv) {
            corrupt++;
            printf("seed %" PRIu64 ": open -> %s: %s\n", seed, rlog_strerror(rv), rep.message);
        }
        vfs->destroy(vfs);
    }
    printf("seeds=%d corrupt=%u second_call_deleted=%u\n", SEEDS, corrupt, deleted_twice);
    assert_int_equal(corrupt, 0);
}

/* Repair never drops intact records that lie beyond a gap of whole missing
 * segment files (what the bug above made of 188 acknowledged records): it
 * refuses, naming the gap and the LSN range of the records beyond it, and
 * changes nothing. Once the files after the gap are moved away, repair
 * proceeds and keeps everything before the gap. */
static void test_repair_refuses_to_drop_records_beyond_gap(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(7);
    uint64_t last = 0;
    rlog_log *l = make_log(vfs, &last);
    assert_int_equal(rlog_close(l), 0);
    size_t before = count_segments(vfs);
    assert_int_equal(vfs->unlink(vfs, DIR "/0000000000000003.seg"), 0);
    assert_int_equal(vfs->sync_dir(vfs, DIR), 0);
    uint64_t hash = rlog_simfs_trace_hash(vfs);
    uint64_t writes = rlog_simfs_calls(vfs, RLOG_OP_PWRITE) + rlog_simfs_calls(vfs, RLOG_OP_UNLINK);
    rlog_open_report rep;
    l = NULL;
    assert_int_equal(tu_try_open(DIR, vfs, SEG, RLOG_SYNC_EACH, RLOG_OPEN_REPAIR, &l, &rep),
                     RLOG_ECORRUPT);
    assert_null(l);
    assert_non_null(strstr(rep.message, "cannot repair"));
    assert_non_null(strstr(rep.message, "0000000000000003.seg is missing"));
    assert_non_null(strstr(rep.message, "from 0000000000000004.seg on hold"));
    char range[64];
    snprintf(range, sizeof range, "..%" PRIu64 ")", last);
    assert_non_null(strstr(rep.message, range));
    assert_int_equal(count_segments(vfs), before - 1); /* nothing deleted */
    assert_int_equal(rlog_simfs_calls(vfs, RLOG_OP_PWRITE) + rlog_simfs_calls(vfs, RLOG_OP_UNLINK),
                     writes);
    assert_true(rlog_simfs_trace_hash(vfs) != hash); /* it did look */
    /* the operator moves the files after the gap away: repair keeps 1..2 */
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(rlog_simfs_list_files(vfs, 0, &names, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strstr(names[i], ".seg") && strcmp(names[i], DIR "/0000000000000002.seg") > 0)
            assert_int_equal(vfs->unlink(vfs, names[i]), 0);
    rlog_vfs_free_names(names, n);
    l = tu_open_log(DIR, vfs, SEG, RLOG_SYNC_EACH, RLOG_OPEN_REPAIR, &rep);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.first, 1);
    assert_true(p.durable > 1 && p.durable < last);
    assert_int_equal(rlog_close(l), 0);
    vfs->destroy(vfs);
}

/* ---- the unsynced marker after a failed directory fsync ---- */

#define MARKER     DIR "/rlog.unsynced"
#define MARKER_TMP DIR "/rlog.unsynced-tmp"
#define ACKED      5 /* records appended and acknowledged before the failure */

static void count_errors(void *data, rlog_level level, const char *msg)
{
    *(unsigned *)data +=
        level == RLOG_LEVEL_ERROR && strstr(msg, "could not leave the unsynced marker") != NULL;
}

/* A log with records 1..ACKED acknowledged; the ERROR lines saying the
 * marker could not be left are counted in *errors. */
static rlog_log *marker_log(rlog_vfs *vfs, unsigned *errors)
{
    rlog_options o;
    rlog_options_init(&o);
    o.vfs = vfs;
    o.segment_size = SEG;
    o.sync = RLOG_SYNC_EACH;
    o.flags = RLOG_OPEN_CREATE;
    o.logger = count_errors;
    o.logger_data = errors;
    rlog_log *l = NULL;
    assert_int_equal(rlog_open(DIR, &o, &l, NULL), 0);
    uint8_t buf[LEN];
    for (uint64_t lsn = 1; lsn <= ACKED; lsn++) {
        tu_fill(1, lsn, buf, LEN);
        rlog_record r = {.type = 16, .len = LEN, .data = buf};
        uint64_t got = 0;
        assert_int_equal(rlog_append(l, &r, 1, &got), 0);
        assert_int_equal(got, lsn);
    }
    return l;
}

/* Appends record ACKED + 1, whose fdatasync fails and drops its pages: the
 * handle is poisoned and leaves the marker. */
static void poison(rlog_log *l, rlog_vfs *vfs)
{
    assert_int_equal(rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_FDATASYNC,
                                               rlog_simfs_calls(vfs, RLOG_OP_FDATASYNC) + 1),
                     0);
    uint8_t buf[LEN];
    tu_fill(1, ACKED + 1, buf, LEN);
    rlog_record r = {.type = 16, .len = LEN, .data = buf};
    uint64_t got = 0;
    assert_int_equal(rlog_append(l, &r, 1, &got), RLOG_EPOISONED);
}

/* The marker's bytes at `path` (durable or as the page cache shows them)
 * say LSN ACKED; false when there is no such file. */
static bool marker_says_acked(rlog_vfs *vfs, const char *path, int durable)
{
    void *m = NULL;
    size_t n = 0;
    if (rlog_simfs_read(vfs, path, durable, &m, &n))
        return false;
    bool ok = n == 20 && !memcmp(m, "RLOGUNS1", 8) && rlg_get64((uint8_t *)m + 8) == ACKED &&
              rlg_get32((uint8_t *)m + 16) == rlg_crc32c(m, 16);
    rlog_free(m);
    return ok;
}

/* Records 1..last of a log reopened after the crash: intact; returns what
 * the reopen says is durable. */
static uint64_t reopen_durable(rlog_vfs *vfs, uint64_t last)
{
    rlog_log *l = tu_open_log(DIR, vfs, SEG, RLOG_SYNC_EACH, 0, NULL);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_true(p.durable >= last);
    check_records(l, 1, last);
    rlg_log_crash(l);
    return p.durable;
}

/* A poisoning fdatasync failure whose marker's first directory fsync fails
 * and drops the directory's dirty state (the marker's entry with it). The
 * marker must be durable anyway — a later attempt makes a new directory
 * operation and syncs that — or the ERROR line must say it is not. Before
 * the fix the later attempts reopened the file the first one had created
 * (no new directory operation) and fsynced the directory again, which
 * succeeded: no ERROR, and after a power loss no marker, on every seed.
 * Then: power loss, and a reopen finds every acknowledged record. */
static void test_marker_durable_after_failed_dirsync(void **state)
{
    (void)state;
    unsigned lost = 0, errors_logged = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_vfs *vfs = fs_new(seed);
        unsigned errors = 0;
        rlog_log *l = marker_log(vfs, &errors);
        uint64_t drops = rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_SYNC_DROP);
        /* the first directory fsync after the failed sync is the marker's */
        assert_int_equal(rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_SYNC_DROP,
                                                   RLOG_OP_SYNC_DIR,
                                                   rlog_simfs_calls(vfs, RLOG_OP_SYNC_DIR) + 1),
                         0);
        poison(l, vfs);
        assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_SYNC_DROP), drops + 2);
        errors_logged += errors > 0;
        if (!marker_says_acked(vfs, MARKER, 1) && errors == 0) {
            lost++;
            printf("seed %" PRIu64 ": no durable marker, and no ERROR logged\n", seed);
        }
        rlg_log_crash(l); /* the process died */
        rlog_simfs_power_loss(vfs);
        reopen_durable(vfs, ACKED);
        vfs->destroy(vfs);
    }
    printf("seeds=%d marker_lost=%u error_logged=%u\n", SEEDS, lost, errors_logged);
    assert_int_equal(lost, 0);
    assert_int_equal(errors_logged, 0); /* one dropped fsync: the second attempt holds */
}

/* Counts vfs calls; notes the first failed fdatasync's number. */
typedef struct call_count {
    uint64_t n, failed_sync;
} call_count;

static void count_call(void *data, const char *line)
{
    call_count *c = data;
    c->n++;
    if (!c->failed_sync && !strncmp(line, "fdatasync ", 10) && !strstr(line, "-> ok"))
        c->failed_sync = c->n;
}

/* The marker is written under a temporary name and renamed: a process that
 * dies in between leaves only the temporary file, which the next open must
 * take for the marker — the page cache still shows record ACKED + 1 (its
 * failed fdatasync dropped the pages), and an open that trusted it would
 * call it durable, to lose it at the next power loss. The process dies
 * after each number of vfs calls after the failed sync in turn; whenever
 * the marker's bytes were in the page cache under either name, what the
 * reopen calls durable survives a power loss. */
static void test_marker_temp_counts_after_crash(void **state)
{
    (void)state;
    unsigned checked = 0, temp_only = 0;
    call_count c = {0, 0};
    rlog_vfs *vfs = fs_new(1);
    unsigned errors = 0;
    rlog_log *l = marker_log(vfs, &errors);
    rlog_simfs_set_trace(vfs, count_call, &c);
    poison(l, vfs);
    rlg_log_crash(l);
    vfs->destroy(vfs);
    assert_true(c.failed_sync > 0 && c.n > c.failed_sync);
    for (uint64_t k = c.failed_sync; k <= c.n; k++) {
        vfs = fs_new(1);
        l = marker_log(vfs, &errors);
        rlog_simfs_halt_after(vfs, k); /* the process dies after k calls */
        poison(l, vfs);
        rlg_log_crash(l);
        rlog_simfs_crash(vfs); /* the page cache survives */
        bool marked = marker_says_acked(vfs, MARKER, 0);
        bool temp = marker_says_acked(vfs, MARKER_TMP, 0);
        if (marked || temp) {
            checked++;
            temp_only += !marked;
            uint64_t durable = reopen_durable(vfs, ACKED);
            rlog_simfs_power_loss(vfs);
            uint64_t after = reopen_durable(vfs, ACKED);
            if (after < durable)
                fail_msg("dying after %" PRIu64 " calls: the reopen called LSN %" PRIu64
                         " durable, a power loss left %" PRIu64,
                         k, durable, after);
        }
        vfs->destroy(vfs);
    }
    printf("crash points=%" PRIu64 " checked=%u with only the temporary file=%u\n",
           c.n - c.failed_sync + 1, checked, temp_only);
    assert_true(temp_only > 0);
}

/* Counts vfs calls until the directory fsync after the open's unlink of
 * the marker, noting that fsync's number among the directory fsyncs. */
typedef struct clear_sync {
    uint64_t syncs, unlinked, at;
} clear_sync;

static void find_clear_sync(void *data, const char *line)
{
    clear_sync *c = data;
    if (!strncmp(line, "sync_dir ", 9)) {
        c->syncs++;
        if (c->unlinked && !c->at)
            c->at = c->syncs;
    }
    if (!strncmp(line, "unlink " MARKER " ", strlen("unlink " MARKER " ")))
        c->unlinked = 1;
}

/* The marker after a poisoning and a process crash; returns the vfs (seed 1). */
static rlog_vfs *poisoned_fs(void)
{
    rlog_vfs *vfs = fs_new(1);
    unsigned errors = 0;
    rlog_log *l = marker_log(vfs, &errors);
    poison(l, vfs);
    rlg_log_crash(l);
    rlog_simfs_crash(vfs);
    assert_true(marker_says_acked(vfs, MARKER, 1));
    return vfs;
}

/* The open that acted on the marker removes it with an unlink and a
 * directory fsync. When that fsync fails and drops the unlink, nothing may
 * later take a directory fsync for proof of the removal: a marker that came
 * back after a power loss, below records acknowledged in between, would
 * have those rewritten in place. So the open fails and leaves the marker
 * again — present as the page cache shows it and durably (before the fix
 * it was gone from the page cache while the disk kept it) — and the next
 * open acts on it and removes it durably. */
static void test_failed_marker_removal_leaves_marker(void **state)
{
    (void)state;
    clear_sync c = {0, 0, 0};
    rlog_vfs *vfs = poisoned_fs();
    uint64_t base = rlog_simfs_calls(vfs, RLOG_OP_SYNC_DIR);
    rlog_simfs_set_trace(vfs, find_clear_sync, &c);
    reopen_durable(vfs, ACKED);
    vfs->destroy(vfs);
    assert_true(c.at > 0);
    vfs = poisoned_fs();
    assert_int_equal(
        rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_SYNC_DIR, base + c.at),
        0);
    rlog_log *l = NULL;
    rlog_open_report rep;
    assert_int_equal(tu_try_open(DIR, vfs, SEG, RLOG_SYNC_EACH, 0, &l, &rep), RLOG_EIO);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_SYNC_DROP), 2);
    if (!marker_says_acked(vfs, MARKER, 0))
        fail_msg("the failed removal left no marker in the page cache: %s", rep.message);
    assert_true(marker_says_acked(vfs, MARKER, 1));
    reopen_durable(vfs, ACKED); /* acts on it, removes it durably */
    void *m = NULL;
    size_t n = 0;
    assert_int_equal(rlog_simfs_read(vfs, MARKER, 1, &m, &n), ENOENT);
    assert_int_equal(rlog_simfs_read(vfs, MARKER_TMP, 1, &m, &n), ENOENT);
    vfs->destroy(vfs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete_prefix_after_failed_dirsync),
        cmocka_unit_test(test_repair_refuses_to_drop_records_beyond_gap),
        cmocka_unit_test(test_marker_durable_after_failed_dirsync),
        cmocka_unit_test(test_marker_temp_counts_after_crash),
        cmocka_unit_test(test_failed_marker_removal_leaves_marker),
    };
    return TU_RUN("log_dirsync", tests, NULL, NULL);
}
