/* Shipping a Raft store (issue 15, item 3) on the simulator: the shipping
 * workload's Raft-store seeds (sim/ship_raft.c, docs/simulator.md
 * "Shipping a Raft store") — a leader rlog_rs with entries, truncations,
 * snapshots with their files, prefix deletion and installs, shipped to a
 * follower that loses power at random points and is checked after each.
 *
 * Teeth: with rlg_sabotage_side_nosync (a follower that renames a received
 * snapshot file into place without its fdatasync) the same seeds fail, and
 * `rlog sim --workload ship` (seeds pick the store) finds it within a few
 * seeds. */
#include "util/testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log/replica.h"
#include "rlog/sim.h"

/* Runs seeds first..first+n-1 of the shipping workload (store: `store`,
 * `steps` operations); returns how many failed, sums into *sum. */
static unsigned run_seeds(uint64_t first, unsigned n, unsigned store, uint32_t steps, bool quiet,
                          rlog_sim_result *sum)
{
    unsigned failed = 0;
    memset(sum, 0, sizeof *sum);
    for (uint64_t seed = first; seed < first + n; seed++) {
        rlog_sim_options o;
        rlog_sim_options_init(&o, seed);
        o.workloads = RLOG_SIM_WORKLOAD_SHIP;
        o.ship_store = store;
        o.steps = steps;
        rlog_sim_result r;
        assert_int_equal(rlog_sim_run(&o, &r), 0);
        rlog_sim_result_add(sum, &r);
        if (r.failed && (!quiet || failed == 0))
            printf("seed %" PRIu64 ": %s\n", seed, r.message);
        failed += (unsigned)r.failed;
    }
    printf("seeds=%u failed=%u raft_seeds=%" PRIu64 " power_losses=%" PRIu64
           " snapshots_put=%" PRIu64 " snapshots_checked=%" PRIu64 " truncations=%" PRIu64 "\n",
           n, failed, sum->ship_raft_seeds, sum->power_losses, sum->ship_raft_snaps_put,
           sum->ship_raft_snaps_checked, sum->ship_raft_truncations);
    return failed;
}

/* Every seed: after every power loss the follower holds what it reported
 * durable, only the leader's entries, and a snapshot that reads back — and
 * the run really shipped snapshots, truncations and power losses. */
static void test_raft_store_ships_durably(void **state)
{
    (void)state;
    rlog_sim_result sum;
    assert_int_equal(run_seeds(1, 40, RLOG_SIM_SHIP_RAFT, 150, false, &sum), 0);
    assert_int_equal(sum.ship_raft_seeds, 40);
    assert_true(sum.ship_raft_snaps_checked > 40);
    assert_true(sum.ship_raft_snaps_put > 40 && sum.ship_raft_truncations > 40);
    assert_true(sum.power_losses > 40 * 5);
}

/* The same seed gives the same run (trace hash and lines). */
static void test_deterministic(void **state)
{
    (void)state;
    rlog_sim_options o;
    rlog_sim_options_init(&o, 7);
    o.workloads = RLOG_SIM_WORKLOAD_SHIP;
    o.ship_store = RLOG_SIM_SHIP_RAFT;
    o.steps = 150;
    rlog_sim_result r;
    assert_true(tu_sim_run_thrice(&o, &r) > 1000);
    assert_int_equal(r.ship_raft_seeds, 1);
    assert_false(r.failed);
}

/* The oracle has teeth: a follower that installs a received snapshot file
 * without its fdatasync is caught on most of the same seeds. */
static void test_sabotage_side_nosync_is_caught(void **state)
{
    (void)state;
    rlog_sim_result sum;
    rlg_sabotage_side_nosync = true;
    unsigned failed = run_seeds(1, 40, RLOG_SIM_SHIP_RAFT, 150, true, &sum);
    rlg_sabotage_side_nosync = false;
    assert_true(failed >= 20);
}

/* ... and the soak finds it: `rlog sim --workload ship` at its defaults
 * (the seed picks the store, 1000 steps) fails on every seed that ships a
 * Raft store (about 30%: 6 of seeds 1..20), and only on those. */
static void test_sabotage_found_by_the_ship_workload(void **state)
{
    (void)state;
    rlg_sabotage_side_nosync = true;
    unsigned found = 0, raft = 0, found_plain = 0;
    uint64_t first = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        rlog_sim_options o;
        rlog_sim_options_init(&o, seed);
        o.workloads = RLOG_SIM_WORKLOAD_SHIP;
        rlog_sim_result r;
        assert_int_equal(rlog_sim_run(&o, &r), 0);
        raft += (unsigned)r.ship_raft_seeds;
        if (r.failed && !r.ship_raft_seeds)
            found_plain++;
        if (r.failed && r.ship_raft_seeds && found++ == 0) {
            first = seed;
            printf("first found by seed %" PRIu64 ": %s\n", seed, r.message);
        }
    }
    rlg_sabotage_side_nosync = false;
    printf("found by %u of 20 seeds (%u shipped a Raft store; first seed %" PRIu64 ")\n", found,
           raft, first);
    assert_true(raft >= 3);
    assert_int_equal(found, raft);
    assert_int_equal(found_plain, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_store_ships_durably),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_sabotage_side_nosync_is_caught),
        cmocka_unit_test(test_sabotage_found_by_the_ship_workload),
    };
    return TU_RUN("sim_ship_raft", tests, NULL, NULL);
}
