/* Internal pieces shared by the simulator's driver files. */
#ifndef RLG_SIM_DRIVER_H
#define RLG_SIM_DRIVER_H

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
    bool destructive; /* a fault that may destroy acknowledged data struck */
    bool stop;        /* the seed ends (failure, or corruption reported as expected) */
    bool damage_planned; /* one crash is followed by a targeted bit flip */
};

/* Records an oracle violation (the first one wins) and stops the seed. */
void rlg_sim_fail(rlg_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Emits a trace line (when tracing) and mixes it into the event hash. */
void rlg_sim_trace(rlg_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when fault class bit `bit` is allowed by the options. */
bool rlg_sim_allowed(const rlg_sim *s, unsigned bit);
/* Refreshes s->destructive from the file system's fault counters. */
void rlg_sim_note_faults(rlg_sim *s);

/* The log workload (sim/log_workload.c). */
void rlg_sim_log_workload(rlg_sim *s);

#endif
