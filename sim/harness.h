/* What a workload uses of the simulator (sim/harness.c): the run's state,
 * oracle failures and tracing, fault accounting, and the shared loop that
 * crashes and reopens a store. The workloads depend on this, never on the
 * driver (sim/driver.h), which picks and runs them. */
#ifndef RLG_SIM_HARNESS_H
#define RLG_SIM_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>

#include "rlog/sim.h"

typedef struct rlg_sim rlg_sim;

struct rlg_sim {
    const rlog_sim_options *opts;
    rlog_sim_result *res;
    rlog_vfs *vfs;
    rlog_env *env;
    rlog_sim_rng rng; /* workload and schedule decisions */
    uint64_t hash;    /* driver events */
    uint64_t step;
    bool destructive;    /* a fault that may destroy acknowledged data struck */
    bool stop;           /* the seed ends (failure, or corruption reported as expected) */
    bool damage_planned; /* one crash is followed by a targeted bit flip */
    bool dying;          /* the process dies inside the current operation */
    uint64_t op_faults;  /* injected faults counted when the operation began */
};

/* splitmix64's finalizer: a well-mixed function of z. */
uint64_t rlg_sim_mix(uint64_t z);
/* A 64-bit hash of len bytes (fast; not cryptographic). */
uint64_t rlg_sim_hash(const void *data, size_t len);
/* Fills p with len bytes of the xorshift64 stream started at x (x != 0). */
void rlg_sim_fill(uint64_t x, uint8_t *p, size_t len);
/* The same stream 8 bytes a step (each step's value little-endian): a
 * different filling, eight times fewer steps. */
void rlg_sim_fill8(uint64_t x, uint8_t *p, size_t len);
/* The simulator's own memory ran out: ends the run at once (a longjmp to
 * rlog_sim_run, which returns RLOG_ENOMEM; what the run held is not freed,
 * but the calling process goes on). Only from inside rlog_sim_run. */
_Noreturn void rlg_sim_nomem(void);
/* Where rlg_sim_nomem jumps: the innermost rlog_sim_run of this thread
 * (set and restored by rlog_sim_run). */
extern _Thread_local jmp_buf *rlg_sim_nomem_at;
/* Grows the zero-filled array p of *cap elements of `size` bytes (doubling)
 * so that element idx exists; returns it. rlg_sim_nomem() when out of
 * memory. */
void *rlg_sim_grow(void *p, size_t *cap, size_t idx, size_t size);
/* Records an oracle violation (the first one wins) and stops the seed. */
void rlg_sim_fail(rlg_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Emits a trace line (when tracing) and mixes it into the event hash. */
void rlg_sim_trace(rlg_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when fault class bit `bit` is allowed by the options. */
bool rlg_sim_allowed(const rlg_sim *s, unsigned bit);
/* Injected faults that can make a call fail, so far. */
uint64_t rlg_sim_fault_total(rlg_sim *s);
/* True when an EIO/ENOSPC the current operation met is explained: a fault
 * was injected since it began, or the process is dying. Otherwise the
 * seed fails: the library made up an error (or kept one past its cause). */
bool rlg_sim_error_explained(rlg_sim *s, int rv, const char *what);
/* Parses a comma-separated list of the names name(0) .. name(count - 1)
 * ("all": the mask `all`; "none" or "": 0) into a mask with bit i for
 * name(i); -1 on an unknown name. The fault lists of the workloads and of
 * the cluster. */
int rlg_sim_parse_names(const char *list, const char *(*name)(unsigned), unsigned count,
                        uint64_t all, uint64_t *mask);
/* Calls fn(arg, path, contents, length) for each file of the simulated
 * file system vfs, in path order, with what reads see (durable = 0) or
 * what a power loss that keeps nothing unsynced leaves (durable = 1),
 * until fn returns true. 0, or the errno of listing the files. */
int rlg_sim_each_file(rlog_vfs *vfs, int durable,
                      bool (*fn)(void *arg, const char *path, const uint8_t *d, size_t len),
                      void *arg);
/* Refreshes s->destructive from the file system's fault counters. */
void rlg_sim_note_faults(rlg_sim *s);
/* The one rule for an error a workload's store returned from a call
 * (`what` names it): EIO and ENOSPC must be explained
 * (rlg_sim_error_explained); RLOG_EPOISONED is expected and sets
 * *poisoned; RLOG_ECORRUPT is expected only once a destructive fault has
 * struck. True when the error is expected. */
bool rlg_sim_expected_error(rlg_sim *s, int rv, const char *what, bool *poisoned);

/* A workload as the shared driver loop sees it: one store (a log, a Raft
 * store) that is opened, worked on, crashed and reopened. */
typedef struct rlg_sim_wl {
    void *w;
    const char *marker; /* path of the log's unsynced marker file */
    /* Opens the store: 0 or an RLOG_E* code; msg gets the open report. */
    int (*open)(void *w, char *msg, size_t cap);
    /* After a successful open (faults suspended): the recovery oracles. */
    void (*recovered)(void *w);
    /* Frees the handle as a dying process would (after the file system's
     * crash event); forgets the handle's poisoned state. */
    void (*drop)(void *w);
    /* True when the open log handle is poisoned (a sync failed). */
    bool (*poisoned)(void *w);
    /* True when the handle must be reopened (NULL: when poisoned). */
    bool (*failed)(void *w);
    void (*op)(void *w);     /* one random operation */
    void (*damage)(void *w); /* targeted damage after the last crash; may be NULL */
    void (*finish)(void *w); /* clean close and reopen at the end of the seed */
} rlg_sim_wl;

/* A crash event (power loss or process crash), then wl->drop. Applies the
 * double-fault rule: a poisoned handle whose unsynced marker could not be
 * written makes the seed destructive. */
void rlg_sim_crash(rlg_sim *s, const rlg_sim_wl *wl, bool power);
/* Opens the store as a new process would, until it is open (crashing some
 * opens from inside, retrying failed ones); checks wl->recovered. False
 * when the seed stops (failure, or damage reported loudly as it must be). */
bool rlg_sim_reopen(rlg_sim *s, const rlg_sim_wl *wl);
/* The run: opts->steps operations with opts->crashes crashes at steps the
 * seed picks; a poisoned handle makes the process restart. */
void rlg_sim_drive(rlg_sim *s, const rlg_sim_wl *wl);

#endif /* RLG_SIM_HARNESS_H */
