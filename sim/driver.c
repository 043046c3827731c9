/*
 * The simulator driver: one seed -> one simulated file system, a fault plan,
 * a workload, oracles. Everything random comes from the seed: the file
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

int rlog_sim_parse_faults(const char *list, uint64_t *mask)
{
    *mask = 0;
    if (!strcmp(list, "all")) {
        *mask = ~0ull;
        return 0;
    }
    if (!strcmp(list, "none") || !*list)
        return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        unsigned i;
        for (i = 0; i < RLOG_SIM_FAULT_CLASSES; i++)
            if (!strcmp(t, rlog_sim_fault_name(i)))
                break;
        if (i == RLOG_SIM_FAULT_CLASSES)
            return -1;
        *mask |= 1ull << i;
    }
    return 0;
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

uint64_t rlg_sim_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rlg_sim_fill(uint64_t x, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* Where rlg_sim_nomem jumps: the innermost rlog_sim_run of this thread. */
static _Thread_local jmp_buf *nomem_at;

_Noreturn void rlg_sim_nomem(void)
{
    assert(nomem_at);
    longjmp(*nomem_at, 1);
}

void *rlg_sim_grow(void *p, size_t *cap, size_t idx, size_t size)
{
    if (idx < *cap)
        return p;
    size_t n = *cap ? *cap : 1024;
    while (n <= idx)
        n *= 2;
    uint8_t *q = realloc(p, n * size);
    if (!q)
        rlg_sim_nomem();
    memset(q + *cap * size, 0, (n - *cap) * size);
    *cap = n;
    return q;
}

void rlg_sim_fail(rlg_sim *s, const char *fmt, ...)
{
    if (!s->res->failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(s->res->message, sizeof s->res->message, "step %" PRIu64 ": ", s->step);
        vsnprintf(s->res->message + n, sizeof s->res->message - (size_t)n, fmt, ap);
        va_end(ap);
        s->res->failed = 1;
        rlg_sim_trace(s, "ORACLE FAILED: %s", s->res->message);
    }
    s->stop = true;
}

void rlg_sim_trace(rlg_sim *s, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (const char *p = line; *p; p++)
        s->hash = rlg_sim_mix(s->hash ^ (uint8_t)*p);
    if (s->opts->trace)
        s->opts->trace(s->opts->trace_data, line);
}

uint64_t rlg_sim_fault_total(rlg_sim *s)
{
    static const rlog_simfs_fault failing[] = {
        RLOG_SIMFS_FAULT_EIO,         RLOG_SIMFS_FAULT_ENOSPC,      RLOG_SIMFS_FAULT_SYNC_DROP,
        RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_SIMFS_FAULT_LATENT_READ, RLOG_SIMFS_FAULT_CAPACITY};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof failing / sizeof *failing; i++)
        n += rlog_simfs_faults(s->vfs, failing[i]);
    return n;
}

bool rlg_sim_error_explained(rlg_sim *s, int rv, const char *what)
{
    if (s->dying || rlg_sim_fault_total(s) != s->op_faults)
        return true;
    rlg_sim_fail(s, "%s failed with %s but no fault was injected during the operation", what,
                 rlog_errname(rv));
    return false;
}

bool rlg_sim_allowed(const rlg_sim *s, unsigned bit)
{
    return (s->opts->faults >> bit) & 1u;
}

void rlg_sim_note_faults(rlg_sim *s)
{
    static const rlog_simfs_fault destroying[] = {RLOG_SIMFS_FAULT_MISDIRECT,
                                                  RLOG_SIMFS_FAULT_LOST_WRITE,
                                                  RLOG_SIMFS_FAULT_BITROT, RLOG_SIMFS_FAULT_LATENT};
    for (size_t i = 0; i < sizeof destroying / sizeof *destroying; i++)
        if (rlog_simfs_faults(s->vfs, destroying[i]))
            s->destructive = true;
}

/* ---- the shared run: crashes, reopening, the schedule ---- */

void rlg_sim_crash(rlg_sim *s, const rlg_sim_wl *wl, bool power)
{
    void *mk = NULL;
    size_t mkl = 0;
    /* A process that dies inside an operation fails its calls after death
     * without doing anything: a sync that failed only so left no lie in the
     * page cache. But a fault injected before death (since s->op_faults was
     * taken) may have failed a real sync, and death may then have stopped
     * the marker: the rule applies as to any poisoned handle. */
    bool real_fault = !s->dying || rlg_sim_fault_total(s) != s->op_faults;
    if (real_fault && wl->poisoned(wl->w) &&
        (rlog_simfs_read(s->vfs, wl->marker, 0, &mk, &mkl) || mkl != 20)) {
        /* a sync failed and even the marker that warns of it could not be
         * written: the page cache may now show records the disk never got
         * (docs/durability.md) — a double fault that destroys data */
        s->destructive = true;
        rlg_sim_trace(s, "sync failed and no unsynced marker could be written");
    }
    rlog_free(mk);
    if (power) {
        rlog_simfs_power_loss(s->vfs);
        s->res->power_losses++;
    } else {
        rlog_simfs_crash(s->vfs);
    }
    s->res->crashes++;
    s->dying = false;
    wl->drop(wl->w);
    rlg_sim_trace(s, "%s", power ? "POWER LOSS" : "PROCESS CRASH");
}

/* A failed open: retry (false) or the seed ends (true). */
static bool open_failed(rlg_sim *s, int rv, const char *msg)
{
    rlg_sim_note_faults(s);
    if (rv == RLOG_ECORRUPT) {
        if (!s->destructive)
            rlg_sim_fail(s, "open reported corruption but no destructive fault struck: %s", msg);
        s->res->corruption_detected++;
        s->stop = true;
        return true;
    }
    if (rv != RLOG_EIO && rv != RLOG_ENOSPC) {
        rlg_sim_fail(s, "open failed with %s: %s", rlog_errname(rv), msg);
        return true;
    }
    return false;
}

bool rlg_sim_reopen(rlg_sim *s, const rlg_sim_wl *wl)
{
    char msg[600];
    if (s->dying) { /* the process is about to die: whatever it opens is moot */
        int rv = wl->open(wl->w, msg, sizeof msg);
        rlg_sim_trace(s, "open (dying) -> %s", rlog_errname(rv));
        return true;
    }
    for (int try_no = 0; try_no < 8 && !s->stop; try_no++) {
        bool halt = try_no < 3 && rlg_sim_allowed(s, RLOG_SIM_FAULT_RECOVERY_CRASH) &&
                    rlog_sim_rng_chance(&s->rng, 200000);
        if (halt)
            rlog_simfs_halt_after(s->vfs, 1 + rlog_sim_rng_below(&s->rng, 80));
        rlog_simfs_enable_faults(s->vfs, try_no < 4);
        int rv = wl->open(wl->w, msg, sizeof msg);
        s->res->recoveries++;
        rlg_sim_trace(s, "open%s -> %s: %s", halt ? " (dies inside)" : "", rlog_errname(rv), msg);
        if (halt) {
            s->res->recovery_crashes++;
            s->res->faults[RLOG_SIM_FAULT_RECOVERY_CRASH]++;
            rlg_sim_crash(s, wl, rlog_sim_rng_chance(&s->rng, 500000));
            continue;
        }
        if (rv == 0) {
            rlog_simfs_enable_faults(s->vfs, 0);
            wl->recovered(wl->w);
            rlog_simfs_enable_faults(s->vfs, 1);
            return !s->stop;
        }
        if (open_failed(s, rv, msg))
            return false;
        rlg_sim_crash(s, wl, false);
    }
    rlog_simfs_enable_faults(s->vfs, 1);
    rlg_sim_note_faults(s);
    if (!s->stop && rlog_simfs_faults(s->vfs, RLOG_SIMFS_FAULT_LATENT_READ)) {
        /* an unreadable sector (sticky): the open keeps failing, loudly,
         * naming the file and offset — the right outcome */
        s->res->corruption_detected++;
        s->stop = true;
    }
    if (!s->stop)
        rlg_sim_fail(s, "the store could not be reopened");
    return false;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void rlg_sim_drive(rlg_sim *s, const rlg_sim_wl *wl)
{
    uint32_t nc = s->opts->crashes;
    uint64_t *at = calloc(nc + 1, sizeof *at);
    if (!at)
        rlg_sim_nomem();
    for (uint32_t i = 0; i < nc; i++)
        at[i] = 1 + rlog_sim_rng_below(&s->rng, s->opts->steps ? s->opts->steps : 1);
    qsort(at, nc, sizeof *at, cmp_u64);
    uint32_t next = 0;
    bool open = rlg_sim_reopen(s, wl);
    for (uint64_t step = 1; open && step <= s->opts->steps && !s->stop; step++) {
        s->step = step;
        if (wl->failed ? wl->failed(wl->w) : wl->poisoned(wl->w)) {
            /* a failed handle: the process restarts */
            rlg_sim_crash(s, wl, false);
            if (!rlg_sim_reopen(s, wl))
                break;
        }
        if (next < nc && at[next] == step) {
            while (next < nc && at[next] == step)
                next++;
            if (rlog_sim_rng_chance(&s->rng, 300000)) {
                /* the process dies inside an operation, a few calls in */
                uint64_t calls = 1 + rlog_sim_rng_below(&s->rng, 16);
                rlg_sim_trace(s, "the process will die after %" PRIu64 " more calls", calls);
                s->dying = true;
                s->op_faults = rlg_sim_fault_total(s);
                rlog_simfs_halt_after(s->vfs, calls);
                wl->op(wl->w);
                s->res->mid_op_crashes++;
            }
            rlg_sim_crash(s, wl, rlog_sim_rng_chance(&s->rng, 600000));
            if (s->damage_planned && next == nc && wl->damage)
                wl->damage(wl->w);
            if (s->stop || !rlg_sim_reopen(s, wl))
                break;
            continue;
        }
        s->op_faults = rlg_sim_fault_total(s);
        wl->op(wl->w);
        s->res->ops++;
    }
    if (open && !s->stop) {
        s->op_faults = rlg_sim_fault_total(s);
        wl->finish(wl->w);
    }
    free(at);
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

/* Runs the chosen workload; false when the simulator ran out of memory. */
static bool run_workload(rlg_sim *s, bool ship, bool raft)
{
    jmp_buf here;
    jmp_buf *outer = nomem_at;
    nomem_at = &here;
    if (setjmp(here)) {
        nomem_at = outer;
        return false;
    }
    if (ship) {
        s->res->ship_seeds = 1;
        rlg_sim_ship_workload(s);
    } else if (raft) {
        s->res->raft_seeds = 1;
        rlg_sim_raft_workload(s);
    } else {
        rlg_sim_log_workload(s);
    }
    nomem_at = outer;
    return true;
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
