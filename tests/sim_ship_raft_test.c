/* Shipping a Raft store (issue 15, item 3) on the simulator: a leader
 * rlog_rs on one simulated file system — entries, truncations with a new
 * term, snapshots with their files (and the prefix deletion each one makes),
 * installs — served by rlog_ship_leader over the simulated network to a
 * follower on another simulated file system, which loses power at random
 * points (keeping nothing unsynced). After every power loss the follower's
 * directory, opened as a Raft store read-only, must hold at least what the
 * follower reported durable, every entry it holds must be one the leader
 * appended at that index and term, and the snapshot its marker names must
 * read back whole (file present, size and CRC32C, the leader's bytes).
 *
 * Teeth: with rlg_sabotage_side_nosync (a follower that renames a received
 * snapshot file into place without its fdatasync) the same seeds fail. */
#include "util/testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica.h"
#include "rlog/raft_storage.h"
#include "rlog/ship.h"
#include "rlog/sim.h"
#include "rlog/transport.h"

#define LDIR     "/db/rs"
#define FDIR     "/f/rs"
#define LADDR    "leader"
#define SEG      4096u
#define STEPS    150
#define MAX_SNAP 9000
#define IDLE_NS  5000000ull

typedef struct run {
    uint64_t seed;
    rlog_sim_rng rng;
    rlog_vfs *lv, *fv;
    rlog_simnet *net;
    rlog_rs *rs;
    rlog_ship_leader *ld;
    rlog_ship_follower *f;
    uint64_t term;
    unsigned power_losses, snaps_put, snaps_checked, truncations;
    char fail[600]; /* the first failure, or "" */
} run;

static uint32_t entry_len(const run *r, uint64_t index, uint64_t term)
{
    return 8 + (uint32_t)((index * 7919u + term * 31u + r->seed) % 700u);
}

static void entry_fill(const run *r, uint64_t index, uint64_t term, uint8_t *buf)
{
    tu_fill(r->seed * 1000003u + term, index, buf, entry_len(r, index, term));
}

static uint64_t snap_size(const run *r, uint64_t index, uint64_t term)
{
    return 1 + (index * 131u + term * 17u + r->seed) % MAX_SNAP;
}

static void snap_fill(const run *r, uint64_t index, uint64_t term, uint8_t *buf)
{
    tu_fill(r->seed ^ 0x5a5aull, index * 64u + term, buf, snap_size(r, index, term));
}

static void failf(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(run *r, const char *fmt, ...)
{
    if (r->fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail, sizeof r->fail, fmt, ap);
    va_end(ap);
}

static rlog_vfs *fs_new(uint64_t seed, const char *dir)
{
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, seed);
    cfg.keep_unsynced_ppm = 0; /* a power loss keeps nothing unsynced */
    rlog_vfs *vfs = rlog_simfs_new(&cfg);
    assert_non_null(vfs);
    assert_int_equal(rlog_simfs_mkdirs(vfs, dir), 0);
    return vfs;
}

static rlog_transport *net_transport(run *r)
{
    rlog_transport *t = NULL;
    assert_int_equal(rlog_simnet_transport_new(r->net, &t), 0);
    return t;
}

static void follower_start(run *r)
{
    rlog_transport_config tc;
    rlog_transport_config_init(&tc);
    tc.server_id = 2;
    tc.address = "";
    rlog_ship_follower_options fo;
    memset(&fo, 0, sizeof fo);
    fo.vfs = r->fv;
    fo.env = rlog_simnet_env(r->net);
    assert_int_equal(rlog_ship_follower_new(FDIR, net_transport(r), &tc, LADDR, &fo, &r->f), 0);
}

static void pump(run *r, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++) {
        assert_int_equal(rlog_ship_leader_poll(r->ld, 0), 0);
        if (r->f)
            rlog_ship_follower_poll(r->f, 0);
        if (rlog_simnet_step(r->net) == 0)
            rlog_simnet_advance(r->net, IDLE_NS);
    }
}

/* A Raft store in dir on a simulated file system. */
static int rs_open_on(rlog_vfs *vfs, const char *dir, unsigned flags, rlog_rs **rs,
                      rlog_rs_open_report *rep)
{
    rlog_rs_options o;
    rlog_rs_options_init(&o);
    o.log.vfs = vfs;
    o.log.env = rlog_simfs_env(vfs);
    o.log.segment_size = SEG;
    o.log.flags = flags;
    return rlog_rs_open(dir, &o, rs, rep);
}

/* The follower's directory as a Raft store, read-only: the oracle. */
static void check_follower(run *r, uint64_t acked, const char *when)
{
    rlog_rs *rs = NULL;
    rlog_rs_open_report rep;
    int rv = rs_open_on(r->fv, FDIR, RLOG_OPEN_READONLY, &rs, &rep);
    if (rv == RLOG_ENOTLOG && acked == 0)
        return;
    if (rv) {
        failf(r, "%s: the follower's store does not open: %s: %s", when, rlog_errname(rv),
              rep.message);
        return;
    }
    rlog_positions p;
    rlog_positions_get(rlog_rs_log(rs), &p);
    if (p.appended < acked)
        failf(r, "%s: the follower reported LSN %" PRIu64 " durable but holds up to %" PRIu64, when,
              acked, p.appended);
    rlog_rs_stats st;
    rlog_rs_stats_get(rs, &st);
    if (st.has_snapshot) {
        rlog_rs_snapshot sn;
        rv = rlog_rs_snapshot_get(rs, &sn);
        uint64_t size = snap_size(r, st.snap_index, st.snap_term);
        uint8_t *want = malloc(MAX_SNAP);
        assert_non_null(want);
        snap_fill(r, st.snap_index, st.snap_term, want);
        if (rv)
            failf(r,
                  "%s: the follower's snapshot %" PRIu64 "/%" PRIu64 " does not read back: %s: %s",
                  when, st.snap_index, st.snap_term, rlog_errname(rv), rlog_rs_errmsg(rs));
        else if (sn.size != size || memcmp(sn.data, want, size))
            failf(r, "%s: the follower's snapshot %" PRIu64 " holds other bytes than the leader's",
                  when, st.snap_index);
        else
            r->snaps_checked++;
        free(want);
        if (!rv)
            rlog_rs_snapshot_release(&sn);
    }
    if (st.first_index <= st.last_index) {
        rlog_rs_entries es;
        rv = rlog_rs_entries_read(rs, st.first_index, st.last_index, 0, &es);
        if (rv)
            failf(r, "%s: reading the follower's entries %" PRIu64 "..%" PRIu64 ": %s", when,
                  st.first_index, st.last_index, rlog_errname(rv));
        uint8_t buf[1024];
        for (size_t k = 0; !rv && k < es.n; k++) {
            uint64_t index = st.first_index + k;
            const rlog_rs_entry *e = &es.v[k];
            entry_fill(r, index, e->term, buf);
            if (e->len != entry_len(r, index, e->term) || memcmp(e->data, buf, e->len))
                failf(r,
                      "%s: the follower's entry %" PRIu64 " (term %" PRIu64
                      ") was never appended by the leader",
                      when, index, e->term);
        }
        if (!rv)
            rlog_rs_entries_free(&es);
    }
    rlog_rs_close(rs);
}

/* The follower's process dies (its disk refuses every further call), the
 * power goes, the oracle looks, and the follower starts again. */
static void follower_power_loss(run *r, const char *when)
{
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(r->f, &st);
    rlog_simfs_halt_after(r->fv, 0);
    rlog_ship_follower_free(r->f);
    r->f = NULL;
    rlog_simfs_power_loss(r->fv);
    r->power_losses++;
    check_follower(r, st.durable, when);
    follower_start(r);
}

static void op_append(run *r)
{
    uint64_t last = rlog_rs_last_index(r->rs);
    unsigned n = 1 + (unsigned)rlog_sim_rng_below(&r->rng, 4);
    uint8_t bufs[4][1024];
    rlog_rs_entry e[4];
    for (unsigned k = 0; k < n; k++) {
        entry_fill(r, last + 1 + k, r->term, bufs[k]);
        e[k] = (rlog_rs_entry){r->term, 1, entry_len(r, last + 1 + k, r->term), bufs[k], NULL};
    }
    int rv = rlog_rs_append(r->rs, last + 1, e, n);
    if (rv)
        failf(r, "leader append at %" PRIu64 ": %s: %s", last + 1, rlog_errname(rv),
              rlog_rs_errmsg(r->rs));
}

static void op_truncate(run *r)
{
    uint64_t first = rlog_rs_first_index(r->rs), last = rlog_rs_last_index(r->rs);
    if (last < first + 2)
        return;
    uint64_t at = first + 1 + rlog_sim_rng_below(&r->rng, last - first);
    if (rlog_rs_truncate(r->rs, at) == 0) {
        r->term++; /* what follows comes from a new leader */
        r->truncations++;
    }
}

static void op_snapshot(run *r)
{
    uint64_t first = rlog_rs_first_index(r->rs), last = rlog_rs_last_index(r->rs);
    bool install = rlog_sim_rng_chance(&r->rng, 150000) || last < first;
    uint64_t index, term;
    unsigned trailing = 0;
    if (install) { /* a snapshot from a newer leader, beyond the log */
        index = last + 1 + rlog_sim_rng_below(&r->rng, 5);
        term = ++r->term;
    } else {
        index = first + rlog_sim_rng_below(&r->rng, last - first + 1);
        term = rlog_rs_term(r->rs, index);
        trailing = (unsigned)rlog_sim_rng_below(&r->rng, 20);
    }
    uint8_t *data = malloc(MAX_SNAP);
    assert_non_null(data);
    snap_fill(r, index, term, data);
    uint64_t size = snap_size(r, index, term);
    rlog_rs_buf b[2] = {{data, size / 2}, {data + size / 2, size - size / 2}};
    rlog_rs_snapshot_desc d = {index, term, index, "conf", 4, b, 2, trailing};
    int rv = rlog_rs_snapshot_put(r->rs, &d);
    free(data);
    if (rv == 0)
        r->snaps_put++;
    else if (rv != RLOG_ESTALE)
        failf(r, "leader snapshot_put %" PRIu64 "/%" PRIu64 ": %s: %s", index, term,
              rlog_errname(rv), rlog_rs_errmsg(r->rs));
}

static void run_seed(run *r, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->seed = seed;
    r->term = 1;
    rlog_sim_rng_init(&r->rng, seed, 0x5a1d);
    r->lv = fs_new(seed * 2 + 1, "/db");
    r->fv = fs_new(seed * 2 + 2, "/f");
    rlog_simnet_config nc;
    rlog_simnet_config_init(&nc, seed);
    r->net = rlog_simnet_new(&nc);
    assert_non_null(r->net);

    rlog_rs_open_report rep;
    assert_int_equal(rs_open_on(r->lv, LDIR, RLOG_OPEN_CREATE, &r->rs, &rep), 0);
    rlog_transport_config tc;
    rlog_transport_config_init(&tc);
    tc.server_id = 1;
    tc.address = LADDR;
    rlog_ship_leader_options lo;
    memset(&lo, 0, sizeof lo);
    lo.env = rlog_simnet_env(r->net);
    lo.chunk_bytes = 2048; /* snapshot files travel in several chunks */
    assert_int_equal(rlog_ship_leader_new(rlog_rs_log(r->rs), net_transport(r), &tc, &lo, &r->ld),
                     0);
    follower_start(r);

    for (unsigned step = 0; step < STEPS && !r->fail[0]; step++) {
        unsigned pick = (unsigned)rlog_sim_rng_below(&r->rng, 100);
        if (pick < 55)
            op_append(r);
        else if (pick < 63)
            op_truncate(r);
        else if (pick < 78)
            op_snapshot(r);
        else if (pick < 86)
            follower_power_loss(r, "power loss");
        pump(r, 1 + (unsigned)rlog_sim_rng_below(&r->rng, 30));
    }
    /* converge, then a last power loss */
    rlog_positions lp;
    rlog_positions_get(rlog_rs_log(r->rs), &lp);
    rlog_ship_follower_status st;
    for (unsigned i = 0; i < 200000 && !r->fail[0]; i++) {
        rlog_ship_follower_status_get(r->f, &st);
        if (st.durable >= lp.durable)
            break;
        pump(r, 1);
    }
    rlog_ship_follower_status_get(r->f, &st);
    if (st.durable < lp.durable)
        failf(r, "the follower did not converge: durable %" PRIu64 " < the leader's %" PRIu64,
              st.durable, lp.durable);
    follower_power_loss(r, "final power loss");

    rlog_ship_follower_free(r->f);
    rlog_ship_leader_free(r->ld);
    assert_int_equal(rlog_rs_close(r->rs), 0);
    rlog_simnet_free(r->net);
    r->lv->destroy(r->lv);
    r->fv->destroy(r->fv);
}

/* Runs seeds first..first+n-1; returns how many failed. */
static unsigned run_seeds(uint64_t first, unsigned n, bool quiet, unsigned *snaps)
{
    unsigned failed = 0, losses = 0, put = 0, checked = 0, truncs = 0;
    for (uint64_t seed = first; seed < first + n; seed++) {
        run r;
        run_seed(&r, seed);
        losses += r.power_losses;
        put += r.snaps_put;
        checked += r.snaps_checked;
        truncs += r.truncations;
        if (r.fail[0]) {
            failed++;
            if (!quiet || failed == 1)
                printf("seed %" PRIu64 ": %s\n", seed, r.fail);
        }
    }
    printf("seeds=%u failed=%u power_losses=%u snapshots_put=%u snapshots_checked=%u "
           "truncations=%u\n",
           n, failed, losses, put, checked, truncs);
    *snaps = checked;
    return failed;
}

/* Every seed: after every power loss the follower holds what it reported
 * durable, only the leader's entries, and a snapshot that reads back — and
 * the run really shipped snapshots, truncations and power losses. */
static void test_raft_store_ships_durably(void **state)
{
    (void)state;
    unsigned snaps = 0;
    assert_int_equal(run_seeds(1, 40, false, &snaps), 0);
    assert_true(snaps > 40);
}

/* The oracle has teeth: a follower that installs a received snapshot file
 * without its fdatasync is caught on most of the same seeds. */
static void test_sabotage_side_nosync_is_caught(void **state)
{
    (void)state;
    unsigned snaps = 0;
    rlg_sabotage_side_nosync = true;
    unsigned failed = run_seeds(1, 40, true, &snaps);
    rlg_sabotage_side_nosync = false;
    assert_true(failed >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_store_ships_durably),
        cmocka_unit_test(test_sabotage_side_nosync_is_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
