/*
 * The simulator driver: one seed -> one simulated file system, a fault plan,
 * a workload, oracles (the workloads' shared loop is sim/harness.c; the
 * seed loop of the CLI is tools/sim.c). Everything random comes from the seed: the file
 * system's own streams (faults, crash outcomes, env) and the driver's
 * stream (workload, schedule, plan). See docs/simulator.md.
 */
#include <assert.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/driver.h"

#define DRIVER_STREAM 7 /* rng stream of the driver (the fs uses others) */

static const char *const driver_fault_names[] = {"damage", "recovery_crash"};

const char *rlog_sim_fault_name(unsigned cls)
{
    if (cls < RLOG_SIMFS_FAULT_COUNT)
        return rlog_simfs_fault_name((rlog_simfs_fault)cls);
    if (cls < RLOG_SIM_FAULT_CLASSES)
        return driver_fault_names[cls - RLOG_SIMFS_FAULT_COUNT];
    return "?";
}

int rlg_sim_parse_names(const char *list, const char *(*name)(unsigned), unsigned count,
                        uint64_t all, uint64_t *mask)
{
    *mask = 0;
    if (!strcmp(list, "all")) {
        *mask = all;
        return 0;
    }
    if (!strcmp(list, "none") || !*list)
        return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        unsigned i;
        for (i = 0; i < count; i++)
            if (!strcmp(t, name(i)))
                break;
        if (i == count)
            return -1;
        *mask |= 1ull << i;
    }
    return 0;
}

int rlog_sim_parse_faults(const char *list, uint64_t *mask)
{
    return rlg_sim_parse_names(list, rlog_sim_fault_name, RLOG_SIM_FAULT_CLASSES, ~0ull, mask);
}

void rlog_sim_options_init(rlog_sim_options *o, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->seed = seed;
    o->steps = 1000;
    o->crashes = 5;
    o->faults = ~0ull;
    o->workloads = RLOG_SIM_WORKLOAD_ALL;
}

int rlog_sim_parse_workloads(const char *name, unsigned *mask)
{
    if (!strcmp(name, "log"))
        *mask = RLOG_SIM_WORKLOAD_LOG;
    else if (!strcmp(name, "raft"))
        *mask = RLOG_SIM_WORKLOAD_RAFT;
    else if (!strcmp(name, "ship"))
        *mask = RLOG_SIM_WORKLOAD_SHIP;
    else if (!strcmp(name, "all"))
        *mask = RLOG_SIM_WORKLOAD_ALL;
    else
        return -1;
    return 0;
}

/* ---- the fault plan ---- */

static void set_fault(rlg_sim *s, rlog_simfs_fault f, rlog_vfs_op op, uint32_t ppm)
{
    if (rlg_sim_allowed(s, f))
        rlog_simfs_set_fault(s->vfs, f, op, ppm);
}

/* Benign faults: they fail calls but never destroy acknowledged data. */
static void plan_benign(rlg_sim *s)
{
    static const rlog_vfs_op eio_ops[] = {RLOG_OP_OPEN,      RLOG_OP_PREAD,    RLOG_OP_PWRITE,
                                          RLOG_OP_FDATASYNC, RLOG_OP_ALLOCATE, RLOG_OP_UNLINK,
                                          RLOG_OP_LIST,      RLOG_OP_SYNC_DIR};
    uint32_t ppm = 300 + (uint32_t)rlog_sim_rng_below(&s->rng, 3000);
    for (size_t i = 0; i < sizeof eio_ops / sizeof *eio_ops; i++)
        set_fault(s, RLOG_SIMFS_FAULT_EIO, eio_ops[i], ppm);
    set_fault(s, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_PWRITE, ppm);
    set_fault(s, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_OPEN, ppm * 4);
    set_fault(s, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_ALLOCATE, ppm * 4);
    set_fault(s, RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_OP_PWRITE, ppm);
    set_fault(s, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_FDATASYNC, ppm / 2);
    if (s->opts->dir_sync_drop)
        set_fault(s, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_SYNC_DIR, ppm / 2);
}

/* Destructive faults: acknowledged data may be lost on the device. */
static void plan_destructive(rlg_sim *s)
{
    uint32_t ppm = 100 + (uint32_t)rlog_sim_rng_below(&s->rng, 1500);
    set_fault(s, RLOG_SIMFS_FAULT_MISDIRECT, RLOG_OP_PWRITE, ppm);
    set_fault(s, RLOG_SIMFS_FAULT_LOST_WRITE, RLOG_OP_PWRITE, ppm);
    set_fault(s, RLOG_SIMFS_FAULT_BITROT, RLOG_OP_PREAD, ppm / 4);
    set_fault(s, RLOG_SIMFS_FAULT_LATENT, RLOG_OP_PREAD, ppm / 4);
}

static rlog_vfs *make_fs(const rlog_sim_options *o, rlog_sim_rng *rng)
{
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, rlg_sim_mix(o->seed ^ 0x5eed));
    cfg.sector_size = rlog_sim_rng_chance(rng, 500000) ? 512 : 4096;
    if (!((o->faults >> RLOG_SIMFS_FAULT_TORN) & 1))
        cfg.torn_ppm = 0;
    /* how much of the unsynced state survives a power loss varies by seed */
    cfg.keep_unsynced_ppm = (uint32_t)rlog_sim_rng_below(rng, 1000001);
    if (!((o->faults >> RLOG_SIMFS_FAULT_LOST_UNSYNCED) & 1))
        cfg.keep_unsynced_ppm = 1000000;
    if (!((o->faults >> RLOG_SIMFS_FAULT_LOST_DIROP) & 1))
        cfg.keep_dirop_ppm = 1000000;
    return rlog_simfs_new(&cfg);
}

/* Whether the seed runs the shipping workload: a function of the seed alone
 * (not of the driver's stream), so that adding the workload left every
 * other seed's run exactly as it was. About 10% of seeds when it is one of
 * several allowed workloads. */
static bool picks_ship(const rlog_sim_options *o, unsigned wls)
{
    if (!(wls & RLOG_SIM_WORKLOAD_SHIP))
        return false;
    return wls == RLOG_SIM_WORKLOAD_SHIP || rlg_sim_mix(o->seed ^ 0x5417ull) % 100 < 10;
}

/* Whether a shipping seed ships a Raft store: again a function of the seed
 * alone, so that the plain-log seeds run as before. */
static bool picks_ship_raft(const rlog_sim_options *o)
{
    if (o->ship_store != RLOG_SIM_SHIP_BY_SEED)
        return o->ship_store == RLOG_SIM_SHIP_RAFT;
    return rlg_sim_mix(o->seed ^ 0x5a1dull) % 100 < 30;
}

/* Runs the chosen workload; false when the simulator ran out of memory. */
static bool run_workload(rlg_sim *s, bool ship, bool raft)
{
    jmp_buf here;
    jmp_buf *outer = rlg_sim_nomem_at;
    rlg_sim_nomem_at = &here;
    if (setjmp(here)) {
        rlg_sim_nomem_at = outer;
        return false;
    }
    if (ship) {
        s->res->ship_seeds = 1;
        if (picks_ship_raft(s->opts)) {
            s->res->ship_raft_seeds = 1;
            rlg_sim_ship_raft_workload(s);
        } else {
            rlg_sim_ship_workload(s);
        }
    } else if (raft) {
        s->res->raft_seeds = 1;
        rlg_sim_raft_workload(s);
    } else {
        rlg_sim_log_workload(s);
    }
    rlg_sim_nomem_at = outer;
    return true;
}

void rlog_sim_result_add(rlog_sim_result *s, const rlog_sim_result *r)
{
    s->ops += r->ops;
    s->appends += r->appends;
    s->acked += r->acked;
    s->reads += r->reads;
    s->crashes += r->crashes;
    s->power_losses += r->power_losses;
    s->recoveries += r->recoveries;
    s->recovery_crashes += r->recovery_crashes;
    s->mid_op_crashes += r->mid_op_crashes;
    s->corruption_detected += r->corruption_detected;
    s->torn_cut += r->torn_cut;
    s->raft_seeds += r->raft_seeds;
    s->raft_ops += r->raft_ops;
    s->ship_seeds += r->ship_seeds;
    s->ship_leader_crashes += r->ship_leader_crashes;
    s->ship_follower_crashes += r->ship_follower_crashes;
    s->ship_resets += r->ship_resets;
    s->ship_net_faults += r->ship_net_faults;
    s->ship_bytes += r->ship_bytes;
    s->ship_raft_seeds += r->ship_raft_seeds;
    s->ship_raft_snaps_put += r->ship_raft_snaps_put;
    s->ship_raft_snaps_checked += r->ship_raft_snaps_checked;
    s->ship_raft_truncations += r->ship_raft_truncations;
    for (unsigned i = 0; i < RLOG_SIM_FAULT_CLASSES; i++)
        s->faults[i] += r->faults[i];
}

int rlog_sim_run(const rlog_sim_options *o, rlog_sim_result *res)
{
    memset(res, 0, sizeof *res);
    rlg_sim s;
    memset(&s, 0, sizeof s);
    s.opts = o;
    s.res = res;
    rlog_sim_rng_init(&s.rng, o->seed, DRIVER_STREAM);
    s.vfs = make_fs(o, &s.rng);
    if (!s.vfs)
        return RLOG_ENOMEM;
    s.env = rlog_simfs_env(s.vfs);
    if (o->trace)
        rlog_simfs_set_trace(s.vfs, o->trace, o->trace_data);
    rlog_simfs_mkdirs(s.vfs, "/db");

    unsigned wls = o->workloads & RLOG_SIM_WORKLOAD_ALL;
    if (!wls)
        wls = RLOG_SIM_WORKLOAD_ALL;
    bool ship = picks_ship(o, wls);

    /* the plan: none, benign, benign + targeted damage, benign + destructive
     * (the shipping workload's leader gets at most benign faults: its
     * oracles need the leader's durable records to survive) */
    unsigned level = (unsigned)rlog_sim_rng_below(&s.rng, 100);
    const char *plan = "none";
    if (level >= 20) {
        plan_benign(&s);
        plan = "benign";
    }
    s.damage_planned =
        !ship && level >= 55 && level < 80 && rlg_sim_allowed(&s, RLOG_SIM_FAULT_DAMAGE);
    if (level >= 80 && !ship) {
        plan_destructive(&s);
        plan = "destructive";
    }
    rlg_sim_trace(&s, "seed %" PRIu64 " plan=%s%s steps=%u crashes=%u", o->seed, plan,
                  s.damage_planned ? "+damage" : "", o->steps, o->crashes);

    unsigned lr = wls & (RLOG_SIM_WORKLOAD_LOG | RLOG_SIM_WORKLOAD_RAFT);
    bool raft = !ship && (lr == RLOG_SIM_WORKLOAD_RAFT ||
                          (lr == (RLOG_SIM_WORKLOAD_LOG | RLOG_SIM_WORKLOAD_RAFT) &&
                           rlog_sim_rng_chance(&s.rng, 350000)));
    rlg_sim_trace(&s, "workload %s", ship ? "ship" : raft ? "raft" : "log");
    if (!run_workload(&s, ship, raft))
        return RLOG_ENOMEM; /* the run's memory is not freed: see rlg_sim_nomem */

    for (unsigned i = 0; i < RLOG_SIMFS_FAULT_COUNT; i++)
        res->faults[i] += rlog_simfs_faults(s.vfs, (rlog_simfs_fault)i);
    res->trace_hash = rlg_sim_mix(rlog_simfs_trace_hash(s.vfs) ^ s.hash);
    rlg_sim_trace(&s, "end failed=%d hash=%016" PRIx64, res->failed, res->trace_hash);
    s.vfs->destroy(s.vfs);
    return 0;
}
