/*
 * What every workload shares (sim/harness.h): oracle failures and tracing,
 * fault accounting, and the loop that runs a store's operations, crashes
 * it and reopens it as a new process would (docs/simulator.md).
 */
#include <assert.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/array.h"
#include "sim/harness.h"

uint64_t rlg_sim_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t hash_word(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t hash_step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x100000001b3ull;
    return h ^ (h >> 32);
}

uint64_t rlg_sim_hash(const void *data, size_t len)
{
    /* four independent lanes: the multiplications of one 32-byte block
     * overlap instead of forming one chain (the simulator hashes every byte
     * it moves into its trace hash) */
    const uint8_t *p = data;
    uint64_t a = 0xcbf29ce484222325ull ^ len, b = 0x84222325cbf29ce4ull, c = 0x9e3779b97f4a7c15ull,
             d = 0xc2b2ae3d27d4eb4full;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a = hash_step(a, hash_word(p + i));
        b = hash_step(b, hash_word(p + i + 8));
        c = hash_step(c, hash_word(p + i + 16));
        d = hash_step(d, hash_word(p + i + 24));
    }
    for (; i + 8 <= len; i += 8)
        a = hash_step(a, hash_word(p + i));
    for (; i < len; i++)
        b = (b ^ p[i]) * 0x100000001b3ull;
    return rlg_sim_mix(a ^ rlg_sim_mix(b ^ rlg_sim_mix(c ^ rlg_sim_mix(d))));
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

void rlg_sim_fill8(uint64_t x, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (size_t k = 0; k < 8 && i + k < len; k++)
            p[i + k] = (uint8_t)(x >> (8 * k));
    }
}

_Thread_local jmp_buf *rlg_sim_nomem_at;

_Noreturn void rlg_sim_nomem(void)
{
    assert(rlg_sim_nomem_at);
    longjmp(*rlg_sim_nomem_at, 1);
}

void *rlg_sim_grow(void *p, size_t *cap, size_t idx, size_t size)
{
    if (rlg_array_grow_zero(&p, cap, idx + 1, size, 1024))
        rlg_sim_nomem();
    return p;
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

bool rlg_sim_expected_error(rlg_sim *s, int rv, const char *what, bool *poisoned)
{
    if (rv == RLOG_EIO || rv == RLOG_ENOSPC)
        return rlg_sim_error_explained(s, rv, what);
    if (rv == RLOG_EPOISONED) {
        *poisoned = true;
        return true;
    }
    rlg_sim_note_faults(s);
    return s->destructive && rv == RLOG_ECORRUPT;
}

int rlg_sim_each_file(rlog_vfs *vfs, int durable,
                      bool (*fn)(void *arg, const char *path, const uint8_t *d, size_t len),
                      void *arg)
{
    char **paths = NULL;
    size_t n = 0;
    int e = rlog_simfs_list_files(vfs, durable, &paths, &n);
    if (e)
        return e;
    bool stop = false;
    for (size_t i = 0; i < n && !stop; i++) {
        void *d = NULL;
        size_t dl = 0;
        if (rlog_simfs_read(vfs, paths[i], durable, &d, &dl) == 0)
            stop = fn(arg, paths[i], d, dl);
        rlog_free(d);
    }
    rlog_vfs_free_names(paths, n);
    return 0;
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
