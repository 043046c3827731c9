/* The operator's views and purge of the rlog tool (run as a process):
 *  - dump --limit/--to/--type select exactly the records asked for;
 *    --stats counts them per type; --raw shows whole payloads;
 *  - dump --segment FILE shows that one (sealed) segment's records;
 *  - dump --decode CMD feeds each payload to CMD with its LSN;
 *  - dump --follow prints records appended by another process after it
 *    started, then stops at --limit;
 *  - a Raft store in --json: per-entry index/term/type, the hard state,
 *    the snapshot marker; --from-index/--to-index select batches; --decode
 *    runs once per entry in range with its index and term;
 *  - purge --before deletes only whole segments below the LSN (the log
 *    still verifies); purge --before-index refuses entries the snapshot
 *    does not cover and drops those it does;
 *  - --version, and --quiet silences stderr notes. */
#include "util/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/raft_storage.h"

typedef tu_log_fx fx;

static void test_dump_selection(void **state)
{
    fx *f = *state;
    free(tu_rlog_write(f->log, 600, 40, TU_LOG_SEED));
    char *out;
    assert_int_equal(tu_rlog(&out, "dump %s --from 10 --limit 5", f->log), 0);
    assert_int_equal(tu_lines_starting(out, "lsn="), 5);
    assert_true(strncmp(out, "lsn=10 ", 7) == 0);
    tu_expect(tu_last_line(out), "lsn=14 ");
    free(out);
    assert_int_equal(tu_rlog(&out, "dump %s --from 590 --to 595", f->log), 0);
    assert_int_equal(tu_lines_starting(out, "lsn="), 6);
    free(out);
    assert_int_equal(tu_rlog(&out, "dump %s --type 17", f->log), 0);
    assert_int_equal(tu_lines_starting(out, "lsn="), 0);
    free(out);
    assert_int_equal(tu_rlog(&out, "dump %s --stats --to 100", f->log), 0);
    tu_expect(out, "type=16 records=100 bytes=4000\n");
    tu_expect(out, "total records=100 bytes=4000\n");
    free(out);
    /* --raw: all 40 bytes (80 hex digits), no "..." */
    assert_int_equal(tu_rlog(&out, "dump %s --from 3 --limit 1 --raw --json", f->log), 0);
    tu_expect(out, "\"truncated\":false");
    const char *h = strstr(out, "\"hex\":\"");
    assert_non_null(h);
    assert_int_equal(strcspn(h + 7, "\""), 80);
    free(out);
}

static void test_dump_segment_and_decode(void **state)
{
    fx *f = *state;
    free(tu_rlog_write(f->log, TU_LOG_COUNT, TU_LOG_SIZE, TU_LOG_SEED));
    char *out;
    /* segment 2 alone: sealed, LSNs 285.. (stat gives its first LSN) */
    assert_int_equal(tu_rlog(&out, "dump --segment %s/0000000000000002.seg", f->log), 0);
    assert_true(strncmp(out, "lsn=285 ", 8) == 0);
    assert_int_equal(tu_lines_starting(out, "lsn="), 284);
    assert_null(strstr(out, "damage"));
    free(out);
    assert_int_equal(
        tu_rlog(&out, "dump %s --from 7 --limit 2 --decode 'echo got $RLOG_LSN $(wc -c)'", f->log),
        0);
    tu_expect(out, "\ngot 7 200\n");
    tu_expect(out, "\ngot 8 200\n");
    free(out);
    assert_int_equal(tu_rlog(&out, "dump %s --limit 1 --decode false", f->log), 4);
    free(out);
}

static void test_dump_follow(void **state)
{
    fx *f = *state;
    free(tu_rlog_write(f->log, 10, 20, TU_LOG_SEED));
    char cmd[4096];
    const char *bin = getenv("RLOG_BIN");
    snprintf(cmd, sizeof cmd, "%s dump %s --follow --limit 15", bin && *bin ? bin : "./rlog",
             f->log);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256];
    for (int i = 1; i <= 10; i++) { /* what was there */
        assert_non_null(fgets(line, sizeof line, p));
        char want[32];
        snprintf(want, sizeof want, "lsn=%d ", i);
        assert_true(strncmp(line, want, strlen(want)) == 0);
    }
    free(tu_rlog_write(f->log, 5, 20, TU_LOG_SEED)); /* appended while it follows */
    int n = 0;
    while (fgets(line, sizeof line, p))
        n++;
    assert_int_equal(n, 5);
    assert_true(strncmp(line, "lsn=15 ", 7) == 0);
    assert_int_equal(pclose(p), 0);
}

/* A Raft store: term 2, entries 1..120 (batches of 4), a snapshot at
 * `snap` keeping `trailing` entries, over 4 KiB segments. */
static void make_store(const char *dir, uint64_t snap, unsigned trailing)
{
    rlog_rs *rs = tu_rs_open(dir, 4096, RLOG_OPEN_CREATE, RLOG_SYNC_EACH);
    assert_int_equal(rlog_rs_set_term(rs, 2), 0);
    uint8_t pay[4][30];
    for (uint64_t i = 1; i <= 120; i += 4) {
        rlog_rs_entry e[4];
        for (int k = 0; k < 4; k++) {
            tu_fill(3, i + k, pay[k], sizeof pay[k]);
            e[k] = (rlog_rs_entry){.term = 2, .type = 1, .len = sizeof pay[k], .data = pay[k]};
        }
        assert_int_equal(rlog_rs_append(rs, i, e, 4), 0);
    }
    uint8_t data[100] = {1};
    tu_rs_put_snapshot(rs, snap, 2, "c", data, sizeof data, trailing);
    assert_int_equal(rlog_rs_close(rs), 0);
}

static void test_dump_raft_json(void **state)
{
    fx *f = *state;
    make_store(f->log, 100, 10);
    char *out;
    assert_int_equal(tu_rlog(&out, "dump %s --json", f->log), 0);
    tu_expect(out, "\"hard_state\":{\"term\":2,\"vote\":0,\"commit\":0}");
    tu_expect(out, "\"entries\":[{\"index\":117,\"term\":2,\"type\":1,\"len\":30},{\"index\":118,");
    tu_expect(out, "\"snapshot\":{\"index\":100,\"term\":2,\"conf_index\":1,");
    free(out);
    /* the batches holding entries 110..113: 109..112 and 113..116 */
    assert_int_equal(tu_rlog(&out, "dump %s --json --from-index 110 --to-index 113", f->log), 0);
    assert_int_equal(tu_lines_starting(out, "{"), 2);
    tu_expect(out, "{\"index\":109,");
    tu_expect(out, "{\"index\":116,");
    free(out);
    assert_int_equal(tu_rlog(&out,
                             "dump %s --from-index 111 --to-index 113 --decode "
                             "'echo entry $RLOG_INDEX term $RLOG_TERM $(wc -c)'",
                             f->log),
                     0);
    assert_int_equal(tu_lines_starting(out, "entry "), 3);
    tu_expect(out, "\nentry 111 term 2 30\n");
    free(out);
}

static void test_purge(void **state)
{
    fx *f = *state;
    free(tu_rlog_write(f->log, TU_LOG_COUNT, TU_LOG_SIZE, TU_LOG_SEED));
    char *out;
    /* segments 1..3 hold LSNs 1..852: --before 900 deletes exactly them */
    assert_int_equal(tu_rlog(&out, "purge %s --before 900", f->log), 0);
    tu_expect(out, "deleted=3 first_lsn=853 ");
    free(out);
    assert_int_equal(tu_rlog(&out, "verify %s --seed %d", f->log, TU_LOG_SEED), 0);
    tu_expect(tu_last_line(out), "first_lsn=853 last_lsn=2000");
    free(out);
    assert_int_equal(tu_rlog(NULL, "purge %s", f->log), 3);

    /* a Raft store: entries above the snapshot are not the operator's */
    char *raft = strdup(tu_path(f->dir, "raft"));
    make_store(raft, 120, 100);
    assert_int_equal(tu_rlog(&out, "purge %s --before-index 122", raft), 3);
    tu_expect(out, "not all covered by the snapshot");
    free(out);
    assert_int_equal(tu_rlog(&out, "stat %s", raft), 0);
    tu_expect(out, "raft: entries 21..120");
    free(out);
    assert_int_equal(tu_rlog(&out, "purge %s --before-index 121", raft), 0);
    tu_expect(out, "deleted=");
    tu_expect(out, " first_index=");
    assert_null(strstr(out, "deleted=0 "));
    assert_null(strstr(out, "first_index=21\n")); /* the in-memory index followed */
    free(out);
    assert_int_equal(tu_rlog(&out, "stat %s", raft), 0);
    tu_expect(out, "\nraft=yes\n");
    tu_expect(out, "raft: snapshot index 120 ");
    assert_null(strstr(out, "raft: entries 21..120"));
    free(out);
    assert_int_equal(tu_rlog(NULL, "verify %s", raft), 0);
    free(raft);
}

static void test_version_quiet(void **state)
{
    fx *f = *state;
    char *out;
    assert_int_equal(tu_rlog(&out, "--version"), 0);
    assert_true(strncmp(out, "rlog 0.1.0 ", 11) == 0);
    free(out);
    free(tu_rlog_write(f->log, 5, 20, TU_LOG_SEED));
    /* garbage after the last record: a torn tail dump notes on stderr */
    char **names;
    size_t n = tu_list_segments(f->log, &names);
    const char junk[8] = "junkjunk";
    tu_poke(tu_path(f->log, names[0]), 64 + 5 * 48 + 200, junk, sizeof junk);
    tu_free_names(names, n);
    assert_int_equal(tu_rlog(&out, "dump %s", f->log), 0);
    tu_expect(out, "torn tail");
    free(out);
    assert_int_equal(tu_rlog(&out, "dump %s --quiet", f->log), 0);
    assert_null(strstr(out, "torn tail"));
    assert_int_equal(tu_lines_starting(out, "lsn="), 5);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_selection), cmocka_unit_test(test_dump_segment_and_decode),
        cmocka_unit_test(test_dump_follow),    cmocka_unit_test(test_dump_raft_json),
        cmocka_unit_test(test_purge),          cmocka_unit_test(test_version_quiet),
    };
    return TU_RUN("tools_dump", tests, tu_log_setup, tu_log_teardown);
}
