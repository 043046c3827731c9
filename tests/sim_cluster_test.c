/* The cluster workload of the simulator (rlog sim --workload cluster):
 * whole libraft 0.15 clusters on rlog's raft_io adapter. Every oracle holds
 * on many seeds while the faults it claims really strike; a seed run twice
 * gives the same trace byte for byte; the linearizability checker accepts
 * and rejects what it must; each planted adapter bug is found within a
 * stated number of seeds (and the seed that finds it passes without the
 * bug); a user's own FSM runs under the harness through the public API,
 * and a broken one is caught. Sanitizer builds run fewer seeds;
 * RLOG_SIM_CLUSTER_SEEDS overrides the count of the many-seeds test. */
#include "util/testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/sim_cluster.h"

/* Seeds a run: $RLOG_SIM_CLUSTER_SEEDS, else 100 (16 in a sanitizer build). */
static uint64_t seeds_to_run(void)
{
    return tu_seeds_to_run("RLOG_SIM_CLUSTER_SEEDS", 100, 16);
}

/* Runs seeds [first, first+n) with opts as a template (stopping at the
 * first failure when stop_at_first); returns the number that failed,
 * prints each, and the first failing seed in *first_failed (UINT64_MAX:
 * none). */
static uint64_t run_seeds_until(const rlog_sim_cluster_options *tmpl, uint64_t first, uint64_t n,
                                rlog_sim_cluster_result *sum, uint64_t *first_failed,
                                bool stop_at_first)
{
    uint64_t failed = 0;
    if (first_failed)
        *first_failed = UINT64_MAX;
    if (sum)
        memset(sum, 0, sizeof *sum);
    for (uint64_t s = first; s < first + n; s++) {
        rlog_sim_cluster_options o = *tmpl;
        o.seed = s;
        rlog_sim_cluster_result r;
        assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
        if (sum) {
            sum->failed += r.failed;
            rlog_sim_cluster_result_add(sum, &r);
        }
        if (r.failed) {
            if (failed++ == 0 && first_failed)
                *first_failed = s;
            printf("  seed %" PRIu64 " (nodes %u, bugs 0x%x): %s\n", s, o.nodes, o.bugs, r.message);
            if (stop_at_first)
                break;
        }
    }
    return failed;
}

static uint64_t run_seeds(const rlog_sim_cluster_options *tmpl, uint64_t first, uint64_t n,
                          rlog_sim_cluster_result *sum, uint64_t *first_failed)
{
    return run_seeds_until(tmpl, first, n, sum, first_failed, false);
}

/* ---------------------------------------------- linearizability checker */

static void test_linearizability_checker(void **state)
{
    (void)state;
    /* w1 [0,10], then r -> 1 [20,30]: fine; r -> 0 after it: not */
    rlog_sim_lin_op ok[] = {{0, 10, 1, 1}, {20, 30, 0, 1}};
    assert_int_equal(rlog_sim_lin_check(ok, 2, 0, 1000), 1);
    rlog_sim_lin_op stale[] = {{0, 10, 1, 1}, {20, 30, 0, 0}};
    assert_int_equal(rlog_sim_lin_check(stale, 2, 0, 1000), 0);
    /* concurrent write and read: the read may see either value */
    rlog_sim_lin_op conc[] = {{0, 50, 1, 7}, {10, 20, 0, 0}, {30, 40, 0, 7}};
    assert_int_equal(rlog_sim_lin_check(conc, 3, 0, 1000), 1);
    /* ... but not go back: 7 then 0 */
    rlog_sim_lin_op back[] = {{0, 50, 1, 7}, {10, 20, 0, 7}, {30, 40, 0, 0}};
    assert_int_equal(rlog_sim_lin_check(back, 3, 0, 1000), 0);
    /* a write whose outcome is unknown may take effect late, or never */
    rlog_sim_lin_op late[] = {{0, UINT64_MAX, 1, 3}, {10, 20, 0, 0}, {30, 40, 0, 3}};
    assert_int_equal(rlog_sim_lin_check(late, 3, 0, 1000), 1);
    rlog_sim_lin_op never[] = {{0, UINT64_MAX, 1, 3}, {10, 20, 0, 0}, {30, 40, 0, 0}};
    assert_int_equal(rlog_sim_lin_check(never, 3, 0, 1000), 1);
    /* but not before it was invoked */
    rlog_sim_lin_op early[] = {{10, 20, 0, 3}, {30, UINT64_MAX, 1, 3}};
    assert_int_equal(rlog_sim_lin_check(early, 2, 0, 1000), 0);
    /* two writes, reads see them in opposite orders: not linearizable */
    rlog_sim_lin_op cross[] = {
        {0, 100, 1, 1}, {0, 100, 1, 2}, {110, 120, 0, 1}, {130, 140, 0, 2}, {150, 160, 0, 1}};
    assert_int_equal(rlog_sim_lin_check(cross, 5, 0, 100000), 0);
    /* a long history of sequential ops finishes; a tiny budget gives up */
    enum { N = 300 };
    rlog_sim_lin_op *h = calloc(N, sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < N; i++)
        h[i] = (rlog_sim_lin_op){10 * i, 10 * i + 15, (int)(i % 2 == 0), i % 2 ? i - 1 : i};
    h[0].value = 0; /* w0 then r0, w2 r2, ... overlapping neighbours */
    assert_int_equal(rlog_sim_lin_check(h, N, 0, 1000000), 1);
    assert_int_equal(rlog_sim_lin_check(h, N, 0, 5), -1);
    free(h);
}

/* ------------------------------------------------------------ many seeds */

static void test_many_seeds(void **state)
{
    (void)state;
    uint64_t n = seeds_to_run();
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, 0);
    rlog_sim_cluster_result s3, s5;
    uint64_t f3 = run_seeds(&o, 1, n, &s3, NULL);
    o.nodes = 5;
    uint64_t f5 = run_seeds(&o, 1, n / 4 + 1, &s5, NULL);
    printf("3 servers: seeds=%" PRIu64 " failed=%" PRIu64 " ok=%" PRIu64 " failed_ops=%" PRIu64
           " unknown=%" PRIu64 " crashes=%" PRIu64 " power=%" PRIu64 " recovery_crashes=%" PRIu64
           " partitions=%" PRIu64 " corruptions=%" PRIu64 " refused=%" PRIu64 " membership=%" PRIu64
           " snapshots=%" PRIu64 "/%" PRIu64 " leaders=%" PRIu64 "\n",
           n, f3, s3.ops_ok, s3.ops_failed, s3.ops_unknown, s3.crashes, s3.power_losses,
           s3.recovery_crashes, s3.partitions, s3.corruptions, s3.refused_starts,
           s3.membership_changes, s3.snapshots_taken, s3.snapshots_installed, s3.leaders);
    printf("5 servers: seeds=%" PRIu64 " failed=%" PRIu64 " ok=%" PRIu64 " leaders=%" PRIu64 "\n",
           n / 4 + 1, f5, s5.ops_ok, s5.leaders);
    assert_int_equal(f3, 0);
    assert_int_equal(f5, 0);
    /* the run did what it claims: histories with every kind of outcome,
     * every fault family, snapshots taken and installed, new leaders */
    assert_true(s3.ops_ok > 50 * n && s3.ops_failed > 0 && s3.ops_unknown > 0);
    assert_true(s3.crashes > n && s3.power_losses > n && s3.recovery_crashes > 0);
    assert_true(s3.partitions > n / 2 && s3.corruptions > 0 && s3.refused_starts > 0);
    assert_true(s3.membership_changes > 0);
    assert_true(s3.snapshots_taken > n && s3.snapshots_installed > 0);
    assert_true(s3.leaders > 2 * n);
    assert_true(s5.ops_ok > 50 * (n / 4 + 1));
}

/* ---------------------------------------------------------- determinism */

typedef struct trace_acc {
    uint64_t hash, lines;
} trace_acc;

static void trace_fn(void *data, const char *line)
{
    trace_acc *t = data;
    for (const char *p = line; *p; p++)
        t->hash = (t->hash ^ (uint8_t)*p) * 0x100000001b3ull;
    t->hash = (t->hash ^ '\n') * 0x100000001b3ull;
    t->lines++;
}

static void determinism(unsigned nodes, uint64_t seed)
{
    uint64_t h[2], th[2], lines[2];
    for (int k = 0; k < 2; k++) {
        rlog_sim_cluster_options o;
        rlog_sim_cluster_options_init(&o, seed);
        o.nodes = nodes;
        trace_acc t = {0xcbf29ce484222325ull, 0};
        o.trace = trace_fn;
        o.trace_data = &t;
        rlog_sim_cluster_result r;
        assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
        assert_false(r.failed);
        h[k] = r.trace_hash;
        th[k] = t.hash;
        lines[k] = t.lines;
    }
    assert_true(lines[0] > 1000);
    assert_int_equal(lines[0], lines[1]);
    assert_true(th[0] == th[1]); /* the trace, byte for byte */
    assert_true(h[0] == h[1]);
    /* untraced: the same hash; another seed: another one */
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, seed);
    o.nodes = nodes;
    rlog_sim_cluster_result r;
    assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
    assert_true(r.trace_hash == h[0]);
    o.seed = seed + 1;
    assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
    assert_true(r.trace_hash != h[0]);
}

static void test_determinism(void **state)
{
    (void)state;
    determinism(3, 7);
    determinism(5, 11);
}

/* ------------------------------------------------------------------ teeth */

/* The planted bug is found within `within` seeds from `from` (the search
 * stops at the first seed that finds it); that seed runs clean without
 * the bug. */
static void teeth(unsigned bug, unsigned faults, uint64_t from, uint64_t within, const char *what)
{
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, 0);
    o.bugs = bug;
    o.faults = faults;
    uint64_t first;
    uint64_t found = run_seeds_until(&o, from, within, NULL, &first, true);
    printf("%s: found within %" PRIu64 " seeds, by seed %" PRIu64 "\n", what, within, first);
    assert_true(found > 0);
    o.bugs = 0;
    o.seed = first;
    rlog_sim_cluster_result r;
    assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
    assert_false(r.failed);
}

/* One planted bug (registered as test_teeth_<bug>): the arguments of teeth. */
typedef struct teeth_case {
    unsigned bug, faults;
    uint64_t from, within;
    const char *what;
} teeth_case;

static void test_teeth(void **state)
{
    const teeth_case *c = *state;
    teeth(c->bug, c->faults, c->from, c->within, c->what);
}

/* --------------------------------------------- damage only what is proven */

/* Seed 113594 (soak of seeds 100000..119999): bit rot struck server 3's
 * last synced record (its vote) with nothing written after it to prove
 * it durable; recovery cut it as a torn tail (docs/durability.md, "The
 * window no format closes"), the server voted again in term 5 and the
 * election safety oracle blamed rlog. The harness now rots only records
 * the store proves durable (which the store must then report): the seed
 * passes, and still strikes disks. (With the former rule it failed again
 * until the adapter began coalescing sends: the changed message order no
 * longer leads this seed to the case, and no seed of 1..5999 or
 * 100000..113999 does, so that half of the check is gone; the planted
 * store bugs above keep the oracles' teeth.) Since snapshot files take
 * disk time in the simulator the seed itself no longer strikes a disk, so
 * the check runs it and the seeds after it until one does: all pass, and
 * bit rot still strikes within a few seeds. */
static void test_regression_rot_unproven_113594(void **state)
{
    (void)state;
    uint64_t struck = 0;
    for (uint64_t seed = 113594; seed < 113594 + 20 && struck == 0; seed++) {
        rlog_sim_cluster_options o;
        rlog_sim_cluster_options_init(&o, seed);
        rlog_sim_cluster_result r;
        assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
        if (r.failed)
            printf("  seed %" PRIu64 ": %s\n", seed, r.message);
        assert_false(r.failed);
        struck += r.corruptions;
    }
    assert_true(struck > 0);
}

/* ------------------------------------------- slow snapshot files (libraft 0.15) */

typedef struct line_count {
    const char *needle;
    size_t n;
} line_count;

static void count_line(void *data, const char *line)
{
    line_count *c = data;
    if (strstr(line, c->needle) != NULL)
        c->n++;
}

/* Runs seed with its trace, counting lines that contain `needle`; the seed
 * must pass and the line must appear (the seed still reaches its case). */
static void run_seed_expecting(uint64_t seed, const char *needle)
{
    line_count c = {needle, 0};
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, seed);
    o.trace = count_line;
    o.trace_data = &c;
    rlog_sim_cluster_result r;
    assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
    if (r.failed)
        printf("  seed %" PRIu64 ": %s\n", seed, r.message);
    printf("  seed %" PRIu64 ": %zu line(s) with \"%s\"\n", seed, c.n, needle);
    assert_false(r.failed);
    assert_true(c.n > 0);
}

/* Snapshot files now take as long as on a disk (the simulator runs the
 * adapter's work pool path, up to 1 s per file). Seed 310: a follower's
 * election timer fired while it wrote an install from the leader; libraft
 * 0.15 made it a candidate, and the install's callback then answered the
 * leader from the candidate's state: a send to a garbage address, a crash
 * in io->send. The adapter holds the tick back during an install. */
static void test_regression_tick_during_install_310(void **state)
{
    (void)state;
    run_seed_expecting(310, "tick held back while an install");
}

/* Seed 342: the leader's first snapshot was still being written, so it
 * probed a follower that had compacted its own log with entries from 1;
 * libraft 0.15 appended them after its last entry, could not find them and
 * freed what it never held (a crash). The adapter cuts such a message to
 * start at the first entry the follower holds. Since the adapter stopped
 * libraft counting old-term entries (seed 164536) the runs changed and
 * seed 342 no longer reaches the case; seed 86 does (the lowest that
 * does). */
static void test_regression_entries_below_base_342(void **state)
{
    (void)state;
    run_seed_expecting(86, "cut to start there");
}

/* Seed 120384 (soak of 120000..139999): libraft 0.15 fired the pending
 * removal's callback when a new leader applied an older configuration
 * entry, before its own entry was even sent; the harness stopped the
 * "removed" server for good while it was still a voter, and the liveness
 * oracle failed. The harness now asks the issuer whether its change is
 * still uncommitted (docs/simulator.md, libraft 0.15, item 7). */
static void test_regression_early_change_callback_120384(void **state)
{
    (void)state;
    run_seed_expecting(120384, "callback fired for an older configuration entry");
}

/* Seed 155312 (soak of 140000..159999): server 3, leader after a restart,
 * had sends with entries it loaded queued for a peer that was down; an
 * install from the new leader replaced its log, and the queued sends'
 * completions freed the batch those entries shared twice (libraft 0.15,
 * docs/simulator.md "libraft 0.15" item 8: a crash). The adapter's load
 * now gives every entry its own allocation (raft_io/load.c, "One
 * allocation per entry"). The seed must pass and still reach the case: an
 * install that drops loaded entries while at least two sends are queued.
 * Since the adapter stopped libraft counting old-term entries (seed
 * 164536) the runs changed and seed 155312 no longer reaches the case;
 * seed 1228 does (five sends queued, as in 155312). Seed 1228 does not
 * crash with the shared batches back in load either (the review rebuilt
 * that): this test checks only that the case is still reached and passes;
 * what guards the fix is raftio_storage_test's loaded_free, which asserts
 * that no loaded entry has a batch. */
typedef struct dropped_loaded {
    unsigned max_queued; /* most sends queued at such an install */
    size_t lines;
} dropped_loaded;

static void count_dropped_loaded(void *data, const char *line)
{
    dropped_loaded *d = data;
    const char *p = strstr(line, "that load handed to it (");
    unsigned q;
    if (p != NULL && sscanf(p, "that load handed to it (%u sends queued", &q) == 1) {
        d->lines++;
        d->max_queued = q > d->max_queued ? q : d->max_queued;
    }
}

static void test_regression_loaded_batch_double_free_155312(void **state)
{
    (void)state;
    dropped_loaded d = {0, 0};
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, 1228);
    o.trace = count_dropped_loaded;
    o.trace_data = &d;
    rlog_sim_cluster_result r;
    assert_int_equal(rlog_sim_cluster_run(&o, &r), 0);
    if (r.failed)
        printf("  seed 1228: %s\n", r.message);
    printf("  seed 1228: %zu install(s) dropped loaded entries, up to %u sends queued\n", d.lines,
           d.max_queued);
    assert_false(r.failed);
    assert_true(d.lines > 0);
    assert_true(d.max_queued >= 2);
}

/* Seed 164536 (Figure 8 of the Raft paper): server 3 led term 2 and
 * appended 48..50 while cut off; server 1 led term 3 with entries of its
 * own at 49..51; server 3 led term 4 without an entry of term 4, sent its
 * term-2 entries to server 2, and libraft 0.15 committed them by counting
 * replicas (docs/simulator.md "libraft 0.15" item 9); server 1 later won
 * term 5 and overwrote index 49: a state machine safety failure. The
 * adapter now hands libraft such a result with last_log_index 0
 * (raft_io/recv.c). The seed must pass and still reach the case: the term-4
 * leader hears of its term-2 entries and does not count them. */
static void test_regression_old_term_commit_164536(void **state)
{
    (void)state;
    run_seed_expecting(164536, "of older term 2 in term 4: not counted toward commit");
}

/* ------------------------------------------------------ a user's own FSM */

/* A register map written by "a user": a sorted list of (key, value). With
 * `lossy`, every write of a value divisible by 5 is silently dropped: the
 * harness must catch that. */
typedef struct user_fsm {
    uint64_t vals[8];
    int lossy;
} user_fsm;

static int user_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    user_fsm *u = fsm->data;
    const uint8_t *b = buf->base;
    uint64_t v = 0;
    uint32_t kind = 0, key = 0;
    if (buf->len != RLOG_SIM_CLUSTER_CMD_SIZE)
        return RAFT_MALFORMED;
    for (int i = 0; i < 4; i++) {
        kind |= (uint32_t)b[8 + i] << (8 * i);
        key |= (uint32_t)b[12 + i] << (8 * i);
    }
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[16 + i] << (8 * i);
    if (key >= 8)
        return RAFT_MALFORMED;
    if (kind == RLOG_SIM_CLUSTER_WRITE && !(u->lossy && v % 5 == 0))
        u->vals[key] = v;
    *result = (void *)(uintptr_t)(kind == RLOG_SIM_CLUSTER_WRITE ? v : u->vals[key]);
    return 0;
}

static int user_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    user_fsm *u = fsm->data;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].len = sizeof u->vals;
    (*bufs)[0].base = raft_malloc(sizeof u->vals);
    memcpy((*bufs)[0].base, u->vals, sizeof u->vals);
    *n = 1;
    return 0;
}

static int user_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    user_fsm *u = fsm->data;
    if (buf->len != sizeof u->vals)
        return RAFT_MALFORMED;
    memcpy(u->vals, buf->base, sizeof u->vals);
    raft_free(buf->base);
    return 0;
}

static int user_make(void *data, uint64_t id, struct raft_fsm *fsm)
{
    (void)id;
    user_fsm *u = calloc(1, sizeof *u);
    if (u == NULL)
        return RAFT_NOMEM;
    u->lossy = *(int *)data;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = 1;
    fsm->data = u;
    fsm->apply = user_apply;
    fsm->snapshot = user_snapshot;
    fsm->restore = user_restore;
    return 0;
}

static void user_destroy(void *data, struct raft_fsm *fsm)
{
    (void)data;
    free(fsm->data);
}

static uint64_t user_read(struct raft_fsm *fsm, uint32_t key)
{
    user_fsm *u = fsm->data;
    return key < 8 ? u->vals[key] : 0;
}

/* The cluster's fault families by name: each name is its RLOG_SIM_CLUSTER_F_*
 * bit, "all" and "none" are the whole and the empty set, and an unknown
 * name is refused. */
static void test_parse_faults(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        int rv;
        unsigned mask;
    } cases[] = {
        {"all", 0, RLOG_SIM_CLUSTER_F_ALL},
        {"none", 0, 0},
        {"crash,net,membership", 0,
         RLOG_SIM_CLUSTER_F_CRASH | RLOG_SIM_CLUSTER_F_NET | RLOG_SIM_CLUSTER_F_MEMBERSHIP},
        {"power,partition,disk,corrupt", 0,
         RLOG_SIM_CLUSTER_F_POWER | RLOG_SIM_CLUSTER_F_PARTITION | RLOG_SIM_CLUSTER_F_DISK |
             RLOG_SIM_CLUSTER_F_CORRUPT},
        {"crash,eio", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned m = 0;
        assert_int_equal(rlog_sim_cluster_parse_faults(cases[i].list, &m), cases[i].rv);
        if (cases[i].rv == 0)
            assert_int_equal(m, cases[i].mask);
    }
}

static void test_user_fsm(void **state)
{
    (void)state;
    int lossy = 0;
    rlog_sim_cluster_fsm f = {&lossy, user_make, user_destroy, user_read};
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, 0);
    o.fsm = &f;
    assert_int_equal(run_seeds(&o, 1, 10, NULL, NULL), 0);
    lossy = 1;
    uint64_t first;
    uint64_t found = run_seeds(&o, 1, 10, NULL, &first);
    printf("a user FSM that drops writes: caught by %" PRIu64 " of 10 seeds\n", found);
    assert_true(found > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linearizability_checker),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_many_seeds),
        TU_CASE("test_teeth_early_ack", test_teeth,
                &(teeth_case){RLOG_SIM_CLUSTER_BUG_EARLY_ACK, RLOG_SIM_CLUSTER_F_ALL, 1, 200,
                              "append acknowledged before durable"}),
        TU_CASE("test_teeth_vote_volatile", test_teeth,
                &(teeth_case){RLOG_SIM_CLUSTER_BUG_VOTE_VOLATILE,
                              RLOG_SIM_CLUSTER_F_POWER | RLOG_SIM_CLUSTER_F_PARTITION, 1, 200,
                              "set_vote not durable"}),
        TU_CASE("test_teeth_truncate_race", test_teeth,
                &(teeth_case){RLOG_SIM_CLUSTER_BUG_TRUNCATE_RACE, RLOG_SIM_CLUSTER_F_ALL, 1, 40,
                              "truncate racing in-flight appends"}),
        cmocka_unit_test(test_regression_rot_unproven_113594),
        cmocka_unit_test(test_regression_tick_during_install_310),
        cmocka_unit_test(test_regression_entries_below_base_342),
        cmocka_unit_test(test_regression_early_change_callback_120384),
        cmocka_unit_test(test_regression_loaded_batch_double_free_155312),
        cmocka_unit_test(test_regression_old_term_commit_164536),
        cmocka_unit_test(test_user_fsm),
        cmocka_unit_test(test_parse_faults),
    };
    return TU_RUN("sim_cluster", tests, NULL, NULL);
}
