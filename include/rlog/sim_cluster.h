/*
 * rlog — whole libraft clusters in the deterministic simulator
 * (docs/simulator.md, "Cluster workload").
 *
 * 3 or 5 unmodified libraft 0.15 servers, each on rlog's raft_io adapter
 * (rlog_raft_io_init_custom) over its own simulated disk (rlog_simfs) and
 * the simulated network (rlog_simnet), all in one process and one thread on
 * virtual time: a loop driver runs posted functions, timers and work in
 * virtual-time order with seed-driven tie-breaking. Clients write and read
 * a replicated register per key; crashes, power losses, partitions,
 * network and disk faults, membership changes and snapshots happen while
 * they do; oracles (election safety, state machine safety, durability,
 * linearizability of the client history, liveness) are checked after every
 * event and at the end. Same seed -> same trace hash.
 *
 * Needs <raft.h> (libraft 0.15) and librlog-raft; part of the simulator
 * library.
 */
#ifndef RLOG_SIM_CLUSTER_H
#define RLOG_SIM_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "rlog/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a user's FSM under the harness ----
 *
 * The harness's clients speak a register protocol. Each command is
 * RLOG_SIM_CLUSTER_CMD_SIZE bytes, little-endian:
 *   u64 op id (unique per run), u32 kind (1 = write, 2 = read), u32 key,
 *   u64 value (writes: a value never written before; reads: 0).
 * A write sets the key's register to value; a read leaves the state alone.
 * apply() must set *result to (void *)(uintptr_t)v, where v is the key's
 * value after the command (0 for a key never written). read() returns a
 * key's current value (used for reads through raft_barrier). Snapshots and
 * restore must carry the whole state. The harness wraps the FSM (it adds
 * a 24-byte trailer to each snapshot and removes it before restore), so
 * a version 1 FSM (no snapshot_finalize, no snapshot_async) is expected. */
#define RLOG_SIM_CLUSTER_CMD_SIZE 24
#define RLOG_SIM_CLUSTER_WRITE    1u
#define RLOG_SIM_CLUSTER_READ     2u

typedef struct rlog_sim_cluster_fsm {
    void *data;
    /* A fresh FSM (empty state) for server `id` starting (again: every
     * restart makes a new one). 0 or non-zero to fail the run. */
    int (*make)(void *data, uint64_t id, struct raft_fsm *fsm);
    /* Frees what make() allocated (after raft_close completed). */
    void (*destroy)(void *data, struct raft_fsm *fsm);
    /* The current value of `key` (0 if never written). */
    uint64_t (*read)(struct raft_fsm *fsm, uint32_t key);
} rlog_sim_cluster_fsm;

/* ---- planted bugs (tests only: they prove the oracles have teeth) ----
 * The harness wraps the adapter's raft_io methods; these switches make
 * the wrapper misbehave. Never set outside such a test. */
#define RLOG_SIM_CLUSTER_BUG_EARLY_ACK     0x1u /* append's cb before the store reports durable */
#define RLOG_SIM_CLUSTER_BUG_VOTE_VOLATILE 0x2u /* set_vote not made durable at once */
#define RLOG_SIM_CLUSTER_BUG_TRUNCATE_RACE 0x4u /* truncate drops in-flight appends' order */
/* The harness's own former bug: bit rot strikes any byte, unproven records
 * too (and on reads), so a server may lose a vote it acknowledged to a
 * torn-tail cut that no format can avoid: a false alarm (seed 113594) */
#define RLOG_SIM_CLUSTER_BUG_ROT_UNPROVEN 0x8u

/* ---- fault families (rlog_sim_cluster_options.faults; default all) ---- */
#define RLOG_SIM_CLUSTER_F_CRASH      0x01u /* process crashes, restarts, crash inside recovery */
#define RLOG_SIM_CLUSTER_F_POWER      0x02u /* power loss, also of several servers at once */
#define RLOG_SIM_CLUSTER_F_PARTITION  0x04u /* symmetric and one-way partitions, isolation */
#define RLOG_SIM_CLUSTER_F_NET        0x08u /* drop, duplicate, reorder, delay, reset */
#define RLOG_SIM_CLUSTER_F_DISK       0x10u /* EIO, ENOSPC, short writes, failed syncs */
#define RLOG_SIM_CLUSTER_F_CORRUPT    0x20u /* bit rot and latent errors on a minority */
#define RLOG_SIM_CLUSTER_F_MEMBERSHIP 0x40u /* add + promote, remove a server */
#define RLOG_SIM_CLUSTER_F_ALL        0x7fu

typedef struct rlog_sim_cluster_options {
    uint64_t seed;
    unsigned nodes;       /* 3 or 5 (default 3) */
    uint32_t duration_ms; /* virtual time of the fault phase (default 4000) */
    unsigned clients;     /* concurrent clients (default 3) */
    unsigned keys;        /* registers (default 3) */
    unsigned faults;      /* RLOG_SIM_CLUSTER_F_* allowed (default all) */
    unsigned bugs;        /* RLOG_SIM_CLUSTER_BUG_* (tests only; default 0) */
    /* One line per event (NULL: none). Lines hold nothing that varies
     * between runs of a seed. */
    rlog_sim_trace_fn trace;
    void *trace_data;
    /* 1: run libraft 0.15 as it is. 0 (default): the harness repairs one
     * libraft 0.15 bug on the follower's side (docs/simulator.md: a
     * successful AppendEntries answer claims the follower's whole stored
     * log, so a leader may count a follower for entries it does not
     * hold). */
    int raw_libraft;
    /* The FSM under test; NULL = the built-in register map. */
    const rlog_sim_cluster_fsm *fsm;
} rlog_sim_cluster_options;

typedef struct rlog_sim_cluster_result {
    int failed;
    char message[1024]; /* the first oracle failure */
    uint64_t trace_hash;
    uint64_t virtual_ms;                      /* virtual time the run took */
    uint64_t events;                          /* loop events run */
    uint64_t ops_ok, ops_failed, ops_unknown; /* client operations by outcome */
    uint64_t crashes, power_losses, recovery_crashes, restarts;
    uint64_t partitions, disk_faults, corruptions, refused_starts;
    uint64_t membership_changes, snapshots_taken, snapshots_installed;
    uint64_t leaders, max_term, commit_index;
    uint64_t linearizability_unknown; /* keys whose check hit its bound */
} rlog_sim_cluster_result;

RLOG_API void rlog_sim_cluster_options_init(rlog_sim_cluster_options *opts, uint64_t seed);
/* Runs one seed. 0 when it ran (verdict in res->failed), RLOG_ENOMEM or
 * RLOG_EINVAL (bad options) when it could not. */
RLOG_API int rlog_sim_cluster_run(const rlog_sim_cluster_options *opts,
                                  rlog_sim_cluster_result *res);
/* Adds r's counters (virtual time, events, operations, faults, recoveries,
 * membership, snapshots, leaders) to sum, for totals over many seeds;
 * failed, message, trace_hash and the maxima max_term and commit_index are
 * the caller's to combine. */
RLOG_API void rlog_sim_cluster_result_add(rlog_sim_cluster_result *sum,
                                          const rlog_sim_cluster_result *r);
/* Parses "crash,power,..." (the families RLOG_SIM_CLUSTER_F_* in their
 * order: crash, power, partition, net, disk, corrupt, membership) or "all",
 * "none" into a mask; -1 on an unknown name. */
RLOG_API int rlog_sim_cluster_parse_faults(const char *list, unsigned *mask);

/* ---- the linearizability checker (register per key) ----
 * A Wing-Gong search with memoised states (Lowe's refinement) over one
 * key's history. An operation that never completed (crash, timeout,
 * unknown outcome) has complete = UINT64_MAX: a write may then take effect
 * at any time after its invocation, or never; an incomplete read should be
 * left out. Values of writes should be unique. */
typedef struct rlog_sim_lin_op {
    uint64_t invoke, complete; /* virtual time; complete UINT64_MAX: unknown */
    int write;                 /* 1 write, 0 read */
    uint64_t value;            /* written, or returned by the read */
} rlog_sim_lin_op;

/* 1 linearizable, 0 not, -1 the search gave up after `budget` steps. */
RLOG_API int rlog_sim_lin_check(const rlog_sim_lin_op *ops, size_t n, uint64_t initial,
                                uint64_t budget);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_SIM_CLUSTER_H */
