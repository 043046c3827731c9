/*
 * Testing your own code on the simulator (sim/user.c): the crash-point
 * helper finds a planted bug in a user's "atomic save" at the right call
 * and passes the fixed version at every call; the seed loop finds the
 * seeds where a user's workload loses acknowledged data, the same ones on
 * one thread or four, replays one of them alone, and stops at the first
 * when asked. The atomic save is the documented example itself
 * (examples/sim_user.c, included without its main).
 */
#include "util/testutil.h"

#include "rlog/sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_USER_NO_MAIN
#include "examples/sim_user.c"

/* ---- the crash-point helper ---- */

typedef struct points_seen {
    rlog_sim_crash_point p[64];
    size_t n;
} points_seen;

static void on_point(void *data, const rlog_sim_crash_point *p)
{
    points_seen *ps = data;
    assert_true(ps->n < 64);
    ps->p[ps->n++] = *p;
}

static int run_points(rlog_sim_fn op, unsigned kinds, int keep_going, points_seen *ps,
                      rlog_sim_crash_result *res)
{
    rlog_sim_crash_options o;
    rlog_sim_crash_options_init(&o, 7);
    o.mkdir = "/d";
    o.setup = setup;
    o.operation = op;
    o.check = check;
    o.keep_going = keep_going;
    if (kinds)
        o.kinds = kinds;
    o.on_point = on_point;
    o.data = ps;
    memset(ps, 0, sizeof *ps);
    return rlog_sim_crash_points(&o, NULL, res);
}

/* save_buggy renames before fsync: open, pwrite, rename, fsync, close,
 * sync_dir. A power loss that keeps the rename but not the data, just
 * before the fsync (call 4), leaves an empty file: found there, and only
 * there, and never by a process crash (the page cache keeps the data). */
static void test_crash_points_find_rename_before_fsync(void **state)
{
    (void)state;
    points_seen ps;
    rlog_sim_crash_result r;
    assert_int_equal(run_points(op_buggy, 0, 1, &ps, &r), 0);
    assert_int_equal(r.calls, 6);
    assert_int_equal(r.points, 7 * (1 + 3)); /* k = 1..7; a crash, 3 power losses */
    assert_int_equal(ps.n, r.points);
    assert_true(r.failed >= 1);
    bool outcome1_at_4 = false;
    for (size_t i = 0; i < ps.n; i++) {
        const rlog_sim_crash_point *p = &ps.p[i];
        if (!p->failed)
            continue;
        assert_int_equal(p->k, 4);
        assert_int_equal(p->kind, RLOG_SIM_CRASH_POWER);
        outcome1_at_4 |= p->outcome == 1;
    }
    assert_true(outcome1_at_4);
    assert_int_equal(r.first.k, 4);
    assert_int_equal(r.first.op, RLOG_OP_FSYNC);
    assert_true(!strncmp(r.first.call, "fsync /d/config.tmp", 19));
    assert_true(!strncmp(r.first.previous, "rename /d/config.tmp", 20));
    assert_non_null(strstr(r.first.message, "neither version"));
}

/* The fix (open, truncate, pwrite, fsync, close, rename, sync_dir) holds
 * at every call, for every kind of crash. */
static void test_crash_points_fixed_save_holds(void **state)
{
    (void)state;
    points_seen ps;
    rlog_sim_crash_result r;
    assert_int_equal(run_points(op_fixed, 0, 1, &ps, &r), 0);
    assert_int_equal(r.calls, 7);
    assert_int_equal(r.points, 8 * 4);
    assert_int_equal(r.failed, 0);
    /* every k was run, in order, the last one after the operation */
    assert_int_equal(ps.p[0].k, 1);
    assert_int_equal(ps.p[0].op, RLOG_OP_OPEN);
    assert_int_equal(ps.p[ps.n - 1].k, 8);
    assert_int_equal(ps.p[ps.n - 1].op, RLOG_OP_COUNT);
}

/* Stop at the first failure: k 1..3 (4 points each), then at k = 4 the
 * crash, outcome 0, and outcome 1 which fails. */
static void test_crash_points_stop_at_first(void **state)
{
    (void)state;
    points_seen ps;
    rlog_sim_crash_result r;
    assert_int_equal(run_points(op_buggy, 0, 0, &ps, &r), 0);
    assert_int_equal(r.failed, 1);
    assert_int_equal(r.points, 3 * 4 + 3);
    assert_int_equal(r.first.outcome, 1);
}

/* Process crashes alone cannot find this bug: proof that the power-loss
 * points are what found it above. */
static void test_crash_points_process_only(void **state)
{
    (void)state;
    points_seen ps;
    rlog_sim_crash_result r;
    assert_int_equal(run_points(op_buggy, RLOG_SIM_CRASH_PROCESS, 1, &ps, &r), 0);
    assert_int_equal(r.points, 7);
    assert_int_equal(r.failed, 0);
}

static int fail_always(rlog_sim_ctx *c, void *user)
{
    (void)user;
    return rlog_sim_failf(c, "setup says no");
}

static void test_crash_points_bad_input(void **state)
{
    (void)state;
    rlog_sim_crash_result r;
    rlog_sim_crash_options o;
    rlog_sim_crash_options_init(&o, 1);
    o.operation = op_fixed;
    assert_int_equal(rlog_sim_crash_points(&o, NULL, &r), RLOG_EINVAL); /* no check */
    o.check = check;
    o.mkdir = "/d";
    o.setup = fail_always;
    assert_int_equal(rlog_sim_crash_points(&o, NULL, &r), RLOG_EIO);
    assert_non_null(strstr(r.message, "setup says no"));
}

/* ---- the seed loop ---- */

/* A user's append-only journal: `n` records, each acknowledged after its
 * write. The planted bug: a record longer than 200 bytes is acknowledged
 * without its fsync. After a power loss every acknowledged record must be
 * there. Fails on the seeds that draw a long record and lose it. */
static int journal(rlog_sim_ctx *c, void *user)
{
    const int *buggy = user;
    rlog_file *f;
    uint8_t rec[256];
    uint64_t off = 0, acked = 0;
    if (c->vfs->open(c->vfs, "/d/j", RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f) ||
        c->vfs->sync_dir(c->vfs, "/d"))
        return rlog_sim_failf(c, "cannot create the journal");
    unsigned n = 2 + (unsigned)rlog_sim_rng_below(&c->rng, 6);
    for (unsigned i = 0; i < n; i++) {
        size_t len = 16 + (size_t)rlog_sim_rng_below(&c->rng, 220);
        size_t done;
        memset(rec, 'a' + (int)i, len);
        if (c->vfs->pwrite(c->vfs, f, rec, len, off, &done))
            break;
        if ((!*buggy || len <= 200) && c->vfs->fsync(c->vfs, f))
            break;
        off += len;
        acked = off;
    }
    c->vfs->close(c->vfs, f);
    rlog_simfs_power_loss(c->vfs);
    void *data;
    size_t len;
    if (rlog_simfs_read(c->vfs, "/d/j", 0, &data, &len))
        return rlog_sim_failf(c, "the journal is gone");
    rlog_free(data);
    if (len < acked)
        return rlog_sim_failf(c, "%" PRIu64 " bytes acknowledged, %zu survived", acked, len);
    /* the result space: this seed's trace hash, to compare runs */
    *(uint64_t *)c->result = rlog_simfs_trace_hash(c->vfs);
    return 0;
}

typedef struct seen {
    uint64_t seeds[300], hashes[300];
    size_t n;
} seen;

static void on_seed(void *data, uint64_t seed, int failed, const char *message, const void *result)
{
    seen *s = data;
    assert_true(s->n < 300);
    assert_true(!failed || message[0]);
    s->seeds[s->n] = seed;
    s->hashes[s->n++] = *(const uint64_t *)result;
}

static int loop(int buggy, uint64_t from, uint64_t count, unsigned jobs, int keep_going, seen *s,
                rlog_sim_seeds_result *res)
{
    rlog_sim_seeds_options o;
    rlog_sim_seeds_options_init(&o);
    o.from = from;
    o.count = count;
    o.jobs = jobs;
    o.keep_going = keep_going;
    o.mkdir = "/d";
    o.replay = "journal_test --seed {seed} --again {seed}";
    o.result_size = sizeof(uint64_t);
    o.on_seed = on_seed;
    o.data = s;
    memset(s, 0, sizeof *s);
    return rlog_sim_seeds(&o, journal, &buggy, res);
}

static void test_seeds_find_the_failing_seeds(void **state)
{
    (void)state;
    static seen s1, s4;
    rlog_sim_seeds_result r1, r4;
    assert_int_equal(loop(1, 1000, 200, 1, 1, &s1, &r1), 0);
    assert_int_equal(r1.ran, 200);
    assert_true(r1.failed > 0 && r1.failed < 200); /* the bug needs a long record, lost */
    assert_int_equal(r1.n_failures, r1.failed);
    /* on four threads: the same seeds fail, reported in seed order, and
     * every seed's run is the same run */
    assert_int_equal(loop(1, 1000, 200, 4, 1, &s4, &r4), 0);
    assert_int_equal(r4.ran, 200);
    assert_int_equal(r4.failed, r1.failed);
    for (size_t i = 0; i < r1.n_failures; i++) {
        assert_int_equal(r4.failures[i].seed, r1.failures[i].seed);
        assert_string_equal(r4.failures[i].message, r1.failures[i].message);
    }
    assert_int_equal(s4.n, 200);
    for (size_t i = 0; i < 200; i++) {
        assert_int_equal(s1.seeds[i], 1000 + i);
        assert_int_equal(s4.seeds[i], 1000 + i);
        assert_int_equal(s4.hashes[i], s1.hashes[i]);
    }
    /* the replay line, and replaying the first failing seed alone */
    uint64_t bad = r1.failures[0].seed;
    char want[128];
    snprintf(want, sizeof want, "journal_test --seed %" PRIu64 " --again %" PRIu64, bad, bad);
    assert_string_equal(r1.failures[0].replay, want);
    rlog_sim_seeds_result one;
    static seen s;
    assert_int_equal(loop(1, bad, 1, 1, 0, &s, &one), 0);
    assert_int_equal(one.failed, 1);
    assert_string_equal(one.failures[0].message, r1.failures[0].message);
    rlog_sim_seeds_release(&one);
    rlog_sim_seeds_release(&r4);
    rlog_sim_seeds_release(&r1);
}

static void test_seeds_fixed_journal_passes(void **state)
{
    (void)state;
    static seen s;
    rlog_sim_seeds_result r;
    assert_int_equal(loop(0, 1000, 200, 3, 1, &s, &r), 0);
    assert_int_equal(r.ran, 200);
    assert_int_equal(r.failed, 0);
    assert_null(r.failures);
    rlog_sim_seeds_release(&r);
}

/* Stop at the first failing seed, on one thread or four: the same seeds
 * ran (up to and including it), whatever the threads ran beyond it. */
static void test_seeds_stop_at_first(void **state)
{
    (void)state;
    static seen s;
    rlog_sim_seeds_result all, r;
    assert_int_equal(loop(1, 1000, 200, 1, 1, &s, &all), 0);
    uint64_t bad = all.failures[0].seed;
    for (unsigned jobs = 1; jobs <= 4; jobs += 3) {
        assert_int_equal(loop(1, 1000, 200, jobs, 0, &s, &r), 0);
        assert_int_equal(r.failed, 1);
        assert_int_equal(r.ran, bad - 1000 + 1);
        assert_int_equal(s.n, r.ran);
        assert_int_equal(r.failures[0].seed, bad);
        rlog_sim_seeds_release(&r);
    }
    rlog_sim_seeds_release(&all);
}

/* rlog's own simulator run as the callback (no_fs): each seed's trace
 * hash is the same on one thread and on four — what `rlog sim --jobs`
 * relies on (it caught two workload buffers that were static, shared by
 * the threads). */
static int builtin(rlog_sim_ctx *c, void *user)
{
    (void)user;
    rlog_sim_options o;
    rlog_sim_options_init(&o, c->seed);
    o.steps = 300;
    rlog_sim_result *r = c->result;
    if (rlog_sim_run(&o, r))
        return rlog_sim_failf(c, "out of memory");
    return r->failed ? rlog_sim_failf(c, "%s", r->message) : 0;
}

static uint64_t builtin_hash[2][64];
static void on_builtin(void *data, uint64_t seed, int failed, const char *message,
                       const void *result)
{
    uint64_t *h = data;
    h[seed - 500] = ((const rlog_sim_result *)result)->trace_hash;
}

static void test_seeds_builtin_deterministic_across_threads(void **state)
{
    (void)state;
    for (unsigned j = 0; j < 2; j++) {
        rlog_sim_seeds_options o;
        rlog_sim_seeds_options_init(&o);
        o.from = 500;
        o.count = 64;
        o.jobs = j ? 4 : 1;
        o.no_fs = 1;
        o.keep_going = 1;
        o.result_size = sizeof(rlog_sim_result);
        o.on_seed = on_builtin;
        o.data = builtin_hash[j];
        rlog_sim_seeds_result r;
        assert_int_equal(rlog_sim_seeds(&o, builtin, NULL, &r), 0);
        assert_int_equal(r.ran, 64);
        assert_int_equal(r.failed, 0);
        rlog_sim_seeds_release(&r);
    }
    for (unsigned i = 0; i < 64; i++) {
        assert_true(builtin_hash[0][i] != 0);
        assert_int_equal(builtin_hash[1][i], builtin_hash[0][i]);
    }
}

/* The example's own verdicts, as its main prints them. */
static void test_example_findings(void **state)
{
    (void)state;
    rlog_sim_crash_result r;
    assert_int_equal(crash_test(op_buggy, 1, &r), 1);
    assert_int_equal(r.first.k, 4);
    assert_int_equal(crash_test(op_fixed, 1, &r), 0);
    rlog_sim_seeds_result s;
    assert_int_equal(seed_test(1, 100, 2, &s), 0);
    assert_int_equal(s.ran, 100);
    rlog_sim_seeds_release(&s);
}

static void test_seeds_bad_input(void **state)
{
    (void)state;
    rlog_sim_seeds_options o;
    rlog_sim_seeds_options_init(&o);
    rlog_sim_seeds_result r;
    assert_int_equal(rlog_sim_seeds(&o, NULL, NULL, &r), RLOG_EINVAL);
    o.jobs = 1000;
    assert_int_equal(rlog_sim_seeds(&o, journal, NULL, &r), RLOG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_points_find_rename_before_fsync),
        cmocka_unit_test(test_crash_points_fixed_save_holds),
        cmocka_unit_test(test_crash_points_stop_at_first),
        cmocka_unit_test(test_crash_points_process_only),
        cmocka_unit_test(test_crash_points_bad_input),
        cmocka_unit_test(test_seeds_find_the_failing_seeds),
        cmocka_unit_test(test_seeds_fixed_journal_passes),
        cmocka_unit_test(test_seeds_stop_at_first),
        cmocka_unit_test(test_seeds_builtin_deterministic_across_threads),
        cmocka_unit_test(test_seeds_bad_input),
        cmocka_unit_test(test_example_findings),
    };
    return TU_RUN("sim_user", tests, NULL, NULL);
}
