/* Helpers shared by the test binaries: scratch directories and file pokes.
 * Test code only: aborts the test (cmocka fail) on setup errors. */
#ifndef RLOG_TESTUTIL_H
#define RLOG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rlog/log.h"
#include "rlog/raft_storage.h"
#include "rlog/sim.h"
#include "rlog/vfs_fault.h"

/* A fresh empty directory for one test case, under $RLOG_TEST_TMPDIR (set by
 * ctest) or /tmp. Returns a malloc'd path; remove with tu_rmdir_r + free. */
char *tu_mkdtemp(const char *tag);
/* rm -rf path (test cleanup; ignores errors). */
void tu_rmdir_r(const char *path);
/* A cmocka fixture: *state = a tu_dir_fx with a fresh scratch directory,
 * removed (with everything in it) by tu_dir_teardown. */
typedef struct tu_dir_fx {
    char *dir;
    rlog_vfs *vfs; /* tu_fault_setup only: the fault wrapper over posix */
} tu_dir_fx;
int tu_dir_setup(void **state);
int tu_dir_teardown(void **state);
/* The same with vfs = rlog_vfs_fault_new(rlog_vfs_posix()), destroyed by
 * tu_fault_teardown. */
int tu_fault_setup(void **state);
int tu_fault_teardown(void **state);
/* How many seeds a simulator test runs: $env_var when set, else `normal`,
 * or `sanitized` in an ASan build (which runs several times slower). */
uint64_t tu_seeds_to_run(const char *env_var, uint64_t normal, uint64_t sanitized);
/* Runs the cmocka group `group`: the entries that name no fixture of their
 * own under setup/teardown (a binary names its per-test fixture once, not in
 * each entry; NULL: none), the group under group_setup/group_teardown.
 * RLOG_TEST_FILTER, a cmocka pattern such as "*restart*", runs only the
 * matching tests. Returns the number of failed tests. */
int tu_run(const char *group, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
           CMFixtureFunction teardown, CMFixtureFunction group_setup,
           CMFixtureFunction group_teardown);
#define TU_RUN(group, tests, setup, teardown)                                                      \
    tu_run(group, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown, NULL, NULL)

/* A tests[] entry that runs without the binary's per-test fixture (the
 * fixture hooks of the entry do nothing; *state stays NULL). */
int tu_no_fixture(void **state);
#define TU_NO_FIXTURE(f) cmocka_unit_test_setup_teardown(f, tu_no_fixture, tu_no_fixture)

/* A table-driven case for a tests[] list: BODY runs with *state = the
 * case (a pointer to its parameters, e.g. a compound literal in main; the
 * last argument, commas allowed), registered under its own NAME so that a
 * failure names the case. */
#define TU_CASE(name_, body, ...)                                                                  \
    {                                                                                              \
        .name = (name_), .test_func = (body), .initial_state = (void *)(__VA_ARGS__)               \
    }

/* vfs->open with `flags`; fails the test unless it opens. */
rlog_file *tu_vfs_open(rlog_vfs *vfs, const char *path, unsigned flags);
/* vfs->pwrite of len bytes at off; fails the test unless it succeeds and
 * reports every byte written. */
void tu_vfs_write(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off);
/* vfs->list of dir succeeds and names exactly one entry, `name`. */
void tu_vfs_expect_only(rlog_vfs *vfs, const char *dir, const char *name);
/* A simulated file system (rlog_simfs_new with *cfg) holding directory
 * `dir` (and its parents); fails the test when it cannot. */
rlog_vfs *tu_simfs_new(const rlog_simfs_config *cfg, const char *dir);
/* The size of file path of a simulated file system: what a power loss
 * that keeps no unsynced write would leave (durable) or what a read sees
 * now; -1: there is no such file. */
long tu_simfs_size(rlog_vfs *vfs, const char *path, bool durable);
/* "dir/name" in a static rotating buffer (valid for a few calls). */
const char *tu_path(const char *dir, const char *name);
/* The file name of segment seq, in a static rotating buffer (a few calls). */
const char *tu_seg_name(uint64_t seq);
/* Whole-file helpers on the real file system (bypassing the vfs on purpose:
 * tests damage files behind the log's back). */
long tu_file_size(const char *path);
void tu_read_file(const char *path, void **data, size_t *len); /* malloc'd */
void tu_write_file(const char *path, const void *data, size_t len);
void tu_flip_bit(const char *path, uint64_t off, unsigned bit);
void tu_poke(const char *path, uint64_t off, const void *data, size_t len);
void tu_truncate(const char *path, uint64_t size);
void tu_remove(const char *path); /* unlink; the file must exist */
/* Garbles (XOR 0xa5) the bytes from off to the last nonzero byte of the
 * file, keeping its size: what a crash in the middle of writes past off
 * into a pre-written segment may leave (torn sectors, no valid record). */
bool tu_garble_from(const char *path, uint64_t off); /* false: nothing there */
void tu_copy_file(const char *from, const char *to);
/* Creates directory `to` (if needed) and copies into it every file of
 * `from` whose name does not start with a dot (no subdirectories). */
void tu_copy_dir(const char *from, const char *to);
/* Sorted list of *.seg files in dir (malloc'd names; free with tu_free_names). */
size_t tu_list_segments(const char *dir, char ***names);
void tu_free_names(char **names, size_t n);
/* Opens the log in dir with these options (vfs NULL = posix), flags as
 * given (add RLOG_OPEN_CREATE to create); rep may be NULL. tu_try_open
 * returns rlog_open's code; tu_open_log fails the test on an error,
 * printing the report's message. */
int tu_try_open(const char *dir, rlog_vfs *vfs, uint64_t seg, rlog_sync_mode mode, unsigned flags,
                rlog_log **l, rlog_open_report *rep);
/* rlog_rs_open of the Raft store in dir through vfs (NULL: posix) with
 * segment size seg (0: the default), open flags `flags` and sync mode
 * `mode`; returns its code. */
int tu_rs_try_open(const char *dir, rlog_vfs *vfs, uint64_t seg, unsigned flags,
                   rlog_sync_mode mode, rlog_rs **rs, rlog_rs_open_report *rep);
/* The same through posix; fails the test, naming dir and the open report,
 * when it cannot. */
rlog_rs *tu_rs_open(const char *dir, uint64_t seg, unsigned flags, rlog_sync_mode mode);
/* Puts a snapshot at `index` of `term` (configuration `conf` from
 * index 1, data one buffer of len bytes, keeping `trailing` entries) and
 * returns its file's name (static buffer: valid until the next call). */
const char *tu_rs_put_snapshot(rlog_rs *rs, uint64_t index, uint64_t term, const char *conf,
                               const void *data, size_t len, unsigned trailing);
/* Entries a_first..a_last of store a and b_first..b_last of store b are as
 * many, with the same terms and bytes. */
void tu_rs_expect_same_entries(rlog_rs *a, uint64_t a_first, uint64_t a_last, rlog_rs *b,
                               uint64_t b_first, uint64_t b_last);
rlog_log *tu_open_log(const char *dir, rlog_vfs *vfs, uint64_t seg, rlog_sync_mode mode,
                      unsigned flags, rlog_open_report *rep);
/* A snapshot of every segment file of a directory (names, sizes, bytes),
 * to assert that something (a failed open, a read-only tool) changed no
 * byte. */
typedef struct tu_snap {
    size_t n;
    char **names;
    void **data;
    size_t *len;
} tu_snap;
void tu_snap_take(const char *dir, tu_snap *s);
void tu_snap_free(tu_snap *s);
/* The directory holds the same segment files with the same bytes as s. */
void tu_snap_assert_same(const char *dir, const tu_snap *s);
/* Deterministic payload bytes for (seed, lsn). */
void tu_fill(uint64_t seed, uint64_t lsn, void *buf, size_t len);
/* Records whose payload is a function of their LSN: type `type`, `len`
 * bytes (or len_of(lsn) when len_of is set) of tu_fill(seed, lsn, ...). */
typedef struct tu_recs {
    uint16_t type;
    uint32_t len;
    uint32_t (*len_of)(uint64_t lsn);
    uint64_t seed;
} tu_recs;
/* Appends records from..to one by one; fails the test (naming the LSN and
 * the error) unless each append succeeds and gets its LSN. */
void tu_append_recs(rlog_log *l, const tu_recs *s, uint64_t from, uint64_t to);
/* Iterates from `from`: records from..to are there with their LSN, type,
 * length and bytes, and the next read is RLOG_EEND. */
void tu_check_recs(rlog_log *l, const tu_recs *s, uint64_t from, uint64_t to);

/* The simulator (rlog/sim.h) over many seeds. tu_sim_seeds runs seeds
 * first..first+n-1 with the workloads named as `rlog sim --workload` takes
 * them, sums every counter and fault class of their results into *sum
 * (zeroed first), prints each failing seed with the command that replays
 * it, and returns how many failed. */
uint64_t tu_sim_seeds(uint64_t first, uint64_t n, const char *workload, rlog_sim_result *sum);
/* Runs the seed of *o three times — traced twice (o->trace is replaced by
 * a line counter), then untraced — and fails the test unless all three give
 * the same trace hash and both traced runs the same number of lines. r gets
 * the first run's result; returns its number of trace lines. */
uint64_t tu_sim_run_thrice(rlog_sim_options *o, rlog_sim_result *r);

/* The rlog command-line tool, run as a separate process (./rlog, or
 * $RLOG_BIN): tu_rlog runs `rlog ARGS` (printf-style) with stdout and
 * stderr captured together into *out (malloc'd; NULL: discarded) and
 * returns its exit status (the test fails unless it exited normally). */
int tu_rlog(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The path of that tool: $RLOG_BIN, or ./rlog. */
const char *tu_rlog_bin(void);
/* The tool tests' usual log: TU_LOG_COUNT records of TU_LOG_SIZE bytes,
 * written with seed TU_LOG_SEED over several 64 KiB segments. */
enum { TU_LOG_SEED = 7, TU_LOG_COUNT = 2000, TU_LOG_SIZE = 200 };
/* A cmocka fixture for tests of the tool: a scratch directory and the
 * path of a log inside it (not created). */
typedef struct tu_log_fx {
    char *dir; /* scratch directory */
    char *log; /* dir/log */
} tu_log_fx;
int tu_log_setup(void **state);
int tu_log_teardown(void **state);
/* `rlog write LOG --count N --size S --batch 4 --seed SEED
 * --segment-size 64K`, which must succeed; returns its output (free). */
char *tu_rlog_write(const char *log, int count, int size, int seed);
/* Fails the test, printing out, unless out contains needle. */
void tu_expect(const char *out, const char *needle);
/* The last line of s (without its newline), in a static buffer. */
const char *tu_last_line(const char *s);
/* Lines (newline-terminated) in s that start with prefix. */
size_t tu_lines_starting(const char *s, const char *prefix);

#endif
