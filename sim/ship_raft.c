/*
 * The shipping workload on a Raft store (issue 15, item 3; part of
 * `rlog sim --workload ship`, docs/simulator.md "Shipping a Raft store"):
 * a leader rlog_rs — entries, truncations with a new term, snapshots with
 * their files (and the prefix deletion each one makes), installs — served
 * by rlog_ship_leader over the simulated network to one follower on a
 * simulated file system of its own, which loses power at random points.
 * After every power loss the follower's directory, opened as a Raft store
 * read-only, must hold at least what the follower reported durable, every
 * entry it holds must be one the leader appended at that index and term,
 * and the snapshot its marker names must read back whole (file present,
 * size and CRC32C, the leader's bytes). At the end the follower must reach
 * the leader's durable LSN, and a last power loss is checked the same way.
 *
 * The leader's disk gets no injected faults here (the driver's plan is
 * suspended on it): its operations must all succeed, so that a follower's
 * copy can be judged against them. The follower's power losses keep each
 * unsynced write with the probability the seed picks (often none).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/raft_storage.h"
#include "rlog/ship.h"
#include "rlog/transport.h"
#include "sim/driver.h" /* only this workload's entry point */
#include "sim/harness.h"

#define LDIR     "/db/rs"
#define FDIR     "/f/rs"
#define LADDR    "leader"
#define SEG      4096u
#define MAX_SNAP 9000u
#define MAX_ENT  708u
#define IDLE_NS  5000000ull
#define CONVERGE 200000u

typedef struct sr {
    rlg_sim *s;
    rlog_vfs *fv;
    rlog_simnet *net;
    rlog_rs *rs;
    rlog_ship_leader *ld;
    rlog_ship_follower *f;
    uint64_t term;
    /* this incarnation of the follower: resets from the leader's retained
     * prefix seen (they really drop what it held), and what it reported
     * durable (on_durable) since the last of them */
    uint64_t resets, acked_since_reset;
    uint8_t buf[MAX_SNAP]; /* scratch: an entry or a snapshot's bytes */
} sr;

/* Entries and snapshots are functions of (seed, index, term): any one read
 * back names the (index, term) the leader wrote it at. */
static uint32_t entry_len(const sr *r, uint64_t index, uint64_t term)
{
    return 8 + (uint32_t)((index * 7919u + term * 31u + r->s->opts->seed) % (MAX_ENT - 8));
}

static void entry_fill(const sr *r, uint64_t index, uint64_t term, uint8_t *buf)
{
    rlg_sim_fill8(rlg_sim_mix(r->s->opts->seed ^ (index << 20) ^ term) | 1, buf,
                  entry_len(r, index, term));
}

static uint64_t snap_size(const sr *r, uint64_t index, uint64_t term)
{
    return 1 + (index * 131u + term * 17u + r->s->opts->seed) % MAX_SNAP;
}

static void snap_fill(const sr *r, uint64_t index, uint64_t term, uint8_t *buf)
{
    rlg_sim_fill8(rlg_sim_mix(r->s->opts->seed ^ 0x5a5aull ^ (index << 24) ^ term) | 1, buf,
                  snap_size(r, index, term));
}

static rlog_transport *net_transport(sr *r)
{
    rlog_transport *t = NULL;
    if (rlog_simnet_transport_new(r->net, &t) != 0)
        rlg_sim_nomem();
    return t;
}

static void on_durable(void *data, uint64_t lsn)
{
    sr *r = data;
    r->acked_since_reset = lsn;
}

static void follower_start(sr *r)
{
    r->resets = 0;
    r->acked_since_reset = 0;
    rlog_transport_config tc;
    rlog_transport_config_init(&tc);
    tc.server_id = 2;
    tc.address = "";
    rlog_ship_follower_options fo;
    memset(&fo, 0, sizeof fo);
    fo.vfs = r->fv;
    fo.env = rlog_simnet_env(r->net);
    fo.on_durable = on_durable;
    fo.data = r;
    int rv = rlog_ship_follower_new(FDIR, net_transport(r), &tc, LADDR, &fo, &r->f);
    if (rv)
        rlg_sim_fail(r->s, "the follower does not start: %s", rlog_errname(rv));
}

static void pump(sr *r, unsigned rounds)
{
    for (unsigned i = 0; i < rounds && !r->s->stop; i++) {
        int rv = rlog_ship_leader_poll(r->ld, 0);
        if (rv)
            rlg_sim_fail(r->s, "the leader's poll: %s", rlog_errname(rv));
        if (r->f) {
            rlog_ship_follower_poll(r->f, 0);
            rlog_ship_follower_status st;
            rlog_ship_follower_status_get(r->f, &st);
            if (st.resets != r->resets) {
                rlg_sim_trace(r->s, "follower reset: %s", st.message);
                r->resets = st.resets;
                r->acked_since_reset = 0;
                r->s->res->ship_resets++;
            }
        }
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

static void check_snapshot(sr *r, rlog_rs *rs, const rlog_rs_stats *st, const char *when)
{
    rlog_rs_snapshot sn;
    int rv = rlog_rs_snapshot_get(rs, &sn);
    if (rv) {
        rlg_sim_fail(
            r->s, "%s: the follower's snapshot %" PRIu64 "/%" PRIu64 " does not read back: %s: %s",
            when, st->snap_index, st->snap_term, rlog_errname(rv), rlog_rs_errmsg(rs));
        return;
    }
    uint64_t size = snap_size(r, st->snap_index, st->snap_term);
    snap_fill(r, st->snap_index, st->snap_term, r->buf);
    if (sn.size != size || memcmp(sn.data, r->buf, size))
        rlg_sim_fail(r->s,
                     "%s: the follower's snapshot %" PRIu64 " holds other bytes than the leader's",
                     when, st->snap_index);
    else
        r->s->res->ship_raft_snaps_checked++;
    rlog_rs_snapshot_release(&sn);
}

static void check_entries(sr *r, rlog_rs *rs, const rlog_rs_stats *st, const char *when)
{
    rlog_rs_entries es;
    int rv = rlog_rs_entries_read(rs, st->first_index, st->last_index, 0, &es);
    if (rv) {
        rlg_sim_fail(r->s, "%s: reading the follower's entries %" PRIu64 "..%" PRIu64 ": %s", when,
                     st->first_index, st->last_index, rlog_errname(rv));
        return;
    }
    for (size_t k = 0; k < es.n; k++) {
        uint64_t index = st->first_index + k;
        const rlog_rs_entry *e = &es.v[k];
        entry_fill(r, index, e->term, r->buf);
        if (e->len != entry_len(r, index, e->term) || memcmp(e->data, r->buf, e->len)) {
            rlg_sim_fail(r->s,
                         "%s: the follower's entry %" PRIu64 " (term %" PRIu64
                         ") was never appended by the leader",
                         when, index, e->term);
            break;
        }
    }
    rlog_rs_entries_free(&es);
}

/* The follower's directory as a Raft store, read-only: the oracle. */
static void check_follower(sr *r, uint64_t acked, const char *when)
{
    rlog_rs *rs = NULL;
    rlog_rs_open_report rep;
    int rv = rs_open_on(r->fv, FDIR, RLOG_OPEN_READONLY, &rs, &rep);
    if (rv == RLOG_ENOTLOG && acked == 0)
        return;
    if (rv) {
        rlg_sim_fail(r->s, "%s: the follower's store does not open: %s: %s", when, rlog_errname(rv),
                     rep.message);
        return;
    }
    rlog_positions p;
    rlog_positions_get(rlog_rs_log(rs), &p);
    if (p.appended < acked)
        rlg_sim_fail(r->s,
                     "%s: the follower reported LSN %" PRIu64 " durable but holds up to %" PRIu64,
                     when, acked, p.appended);
    rlog_rs_stats st;
    rlog_rs_stats_get(rs, &st);
    rlg_sim_trace(r->s,
                  "%s: follower holds LSN %" PRIu64 " (acked %" PRIu64 "), entries %" PRIu64
                  "..%" PRIu64 ", snapshot %" PRIu64,
                  when, p.appended, acked, st.first_index, st.last_index,
                  st.has_snapshot ? st.snap_index : 0);
    if (st.has_snapshot)
        check_snapshot(r, rs, &st, when);
    if (st.first_index <= st.last_index)
        check_entries(r, rs, &st, when);
    rlog_rs_close(rs);
}

/* The follower's process dies (its disk refuses every further call), the
 * power goes, the oracle looks, and the follower starts again. */
static void follower_power_loss(sr *r, const char *when, bool restart)
{
    rlog_ship_follower_status st = {0};
    if (r->f) {
        rlog_ship_follower_status_get(r->f, &st);
        if (r->resets) /* what it held before the reset is gone for good */
            st.durable = r->acked_since_reset;
        rlog_simfs_halt_after(r->fv, 0);
        rlog_ship_follower_free(r->f);
        r->f = NULL;
    }
    rlog_simfs_power_loss(r->fv);
    r->s->res->power_losses++;
    r->s->res->ship_follower_crashes++;
    check_follower(r, st.durable, when);
    if (restart && !r->s->stop)
        follower_start(r);
}

static void leader_failed(sr *r, const char *what, int rv)
{
    rlg_sim_fail(r->s, "the leader's %s: %s: %s", what, rlog_errname(rv), rlog_rs_errmsg(r->rs));
}

static void op_append(sr *r)
{
    uint64_t last = rlog_rs_last_index(r->rs);
    unsigned n = 1 + (unsigned)rlog_sim_rng_below(&r->s->rng, 4);
    uint8_t *bufs = malloc((size_t)n * MAX_ENT);
    if (!bufs)
        rlg_sim_nomem();
    rlog_rs_entry e[4];
    for (unsigned k = 0; k < n; k++) {
        entry_fill(r, last + 1 + k, r->term, bufs + k * MAX_ENT);
        e[k] = (rlog_rs_entry){r->term, 1, entry_len(r, last + 1 + k, r->term), bufs + k * MAX_ENT,
                               NULL};
    }
    int rv = rlog_rs_append(r->rs, last + 1, e, n);
    free(bufs);
    rlg_sim_trace(r->s, "append %" PRIu64 "..%" PRIu64 " term %" PRIu64 " -> %s", last + 1,
                  last + n, r->term, rlog_errname(rv));
    if (rv)
        leader_failed(r, "append", rv);
    r->s->res->appends++;
}

static void op_truncate(sr *r)
{
    uint64_t first = rlog_rs_first_index(r->rs), last = rlog_rs_last_index(r->rs);
    if (last < first + 2)
        return;
    uint64_t at = first + 1 + rlog_sim_rng_below(&r->s->rng, last - first);
    int rv = rlog_rs_truncate(r->rs, at);
    rlg_sim_trace(r->s, "truncate at %" PRIu64 " -> %s", at, rlog_errname(rv));
    if (rv == RLOG_ESTALE) /* at or below the snapshot (in its trailing): refused */
        return;
    if (rv)
        leader_failed(r, "truncate", rv);
    r->term++; /* what follows comes from a new leader */
    r->s->res->ship_raft_truncations++;
}

static void op_snapshot(sr *r)
{
    rlg_sim *s = r->s;
    uint64_t first = rlog_rs_first_index(r->rs), last = rlog_rs_last_index(r->rs);
    bool install = rlog_sim_rng_chance(&s->rng, 150000) || last < first;
    uint64_t index, term;
    unsigned trailing = 0;
    if (install) { /* a snapshot from a newer leader, beyond the log */
        index = last + 1 + rlog_sim_rng_below(&s->rng, 5);
        term = ++r->term;
    } else {
        index = first + rlog_sim_rng_below(&s->rng, last - first + 1);
        term = rlog_rs_term(r->rs, index);
        trailing = (unsigned)rlog_sim_rng_below(&s->rng, 20);
    }
    snap_fill(r, index, term, r->buf);
    uint64_t size = snap_size(r, index, term);
    rlog_rs_buf b[2] = {{r->buf, size / 2}, {r->buf + size / 2, size - size / 2}};
    rlog_rs_snapshot_desc d = {index, term, index, "conf", 4, b, 2, trailing};
    int rv = rlog_rs_snapshot_put(r->rs, &d);
    rlg_sim_trace(s, "snapshot_put %" PRIu64 "/%" PRIu64 " size %" PRIu64 " trailing %u%s -> %s",
                  index, term, size, trailing, install ? " (install)" : "", rlog_errname(rv));
    if (rv == 0)
        s->res->ship_raft_snaps_put++;
    else if (rv != RLOG_ESTALE)
        leader_failed(r, "snapshot_put", rv);
}

static void converge(sr *r)
{
    rlog_positions lp;
    rlog_positions_get(rlog_rs_log(r->rs), &lp);
    rlog_ship_follower_status st = {0};
    for (unsigned i = 0; i < CONVERGE && !r->s->stop; i++) {
        rlog_ship_follower_status_get(r->f, &st);
        if (st.durable >= lp.durable)
            break;
        pump(r, 1);
    }
    if (r->s->stop)
        return;
    rlog_ship_follower_status_get(r->f, &st);
    if (st.durable < lp.durable)
        rlg_sim_fail(r->s,
                     "the follower did not converge: durable %" PRIu64 " < the leader's %" PRIu64,
                     st.durable, lp.durable);
}

static void setup(sr *r)
{
    rlg_sim *s = r->s;
    rlog_simfs_enable_faults(s->vfs, 0); /* see the head of this file */
    rlog_simfs_config fc;
    rlog_simfs_config_init(&fc, rlg_sim_mix(s->opts->seed ^ 0xf0110ull));
    fc.keep_unsynced_ppm =
        rlog_sim_rng_chance(&s->rng, 500000) ? 0 : (uint32_t)rlog_sim_rng_below(&s->rng, 1000001);
    if (!rlg_sim_allowed(s, RLOG_SIMFS_FAULT_TORN))
        fc.torn_ppm = 0;
    r->fv = rlog_simfs_new(&fc);
    if (!r->fv)
        rlg_sim_nomem();
    rlog_simfs_mkdirs(r->fv, "/f");
    rlog_simnet_config nc;
    rlog_simnet_config_init(&nc, s->opts->seed);
    r->net = rlog_simnet_new(&nc);
    if (!r->net)
        rlg_sim_nomem();
    rlg_sim_trace(s, "ship a Raft store: follower keeps %u ppm of unsynced writes",
                  fc.keep_unsynced_ppm);
}

void rlg_sim_ship_raft_workload(rlg_sim *s)
{
    sr *r = calloc(1, sizeof *r);
    if (!r)
        rlg_sim_nomem();
    r->s = s;
    r->term = 1;
    setup(r);
    rlog_rs_open_report rep;
    int rv = rs_open_on(s->vfs, LDIR, RLOG_OPEN_CREATE, &r->rs, &rep);
    if (rv)
        rlg_sim_fail(s, "the leader's store does not open: %s: %s", rlog_errname(rv), rep.message);
    rlog_transport_config tc;
    rlog_transport_config_init(&tc);
    tc.server_id = 1;
    tc.address = LADDR;
    rlog_ship_leader_options lo;
    memset(&lo, 0, sizeof lo);
    lo.env = rlog_simnet_env(r->net);
    lo.chunk_bytes = 2048; /* snapshot files travel in several chunks */
    if (!s->stop) {
        rv = rlog_ship_leader_new(rlog_rs_log(r->rs), net_transport(r), &tc, &lo, &r->ld);
        if (rv)
            rlg_sim_fail(s, "the shipping leader does not start: %s", rlog_errname(rv));
    }
    if (!s->stop)
        follower_start(r);
    for (uint32_t step = 1; step <= s->opts->steps && !s->stop; step++) {
        s->step = step;
        unsigned pick = (unsigned)rlog_sim_rng_below(&s->rng, 100);
        if (pick < 55)
            op_append(r);
        else if (pick < 63)
            op_truncate(r);
        else if (pick < 78)
            op_snapshot(r);
        else if (pick < 86)
            follower_power_loss(r, "power loss", true);
        s->res->ops++;
        pump(r, 1 + (unsigned)rlog_sim_rng_below(&s->rng, 30));
    }
    if (!s->stop)
        converge(r);
    if (!s->stop)
        follower_power_loss(r, "final power loss", false);

    if (r->f)
        rlog_ship_follower_free(r->f);
    if (r->ld)
        rlog_ship_leader_free(r->ld);
    if (r->rs)
        rlog_rs_close(r->rs);
    s->hash = rlg_sim_mix(s->hash ^ rlog_simfs_trace_hash(r->fv));
    s->hash = rlg_sim_mix(s->hash ^ rlog_simnet_trace_hash(r->net));
    for (unsigned k = 0; k < RLOG_SIMFS_FAULT_COUNT; k++)
        s->res->faults[k] += rlog_simfs_faults(r->fv, (rlog_simfs_fault)k);
    rlog_simnet_free(r->net);
    r->fv->destroy(r->fv);
    free(r);
}
