/*
 * rlog — the deterministic simulator.
 */
#ifndef RLOG_SIM_H
#define RLOG_SIM_H

#include "rlog/common.h"
#include "rlog/vfs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Simulated file system and environment
 * ======================================================================
 *
 * An in-memory, deterministic, fault-injecting rlog_vfs and rlog_env. The
 * log runs on it unchanged; the simulator driver crashes it anywhere.
 *
 * Determinism. One 64-bit seed decides everything. Three PRNG streams are
 * derived from it: the fault stream (per-call fault decisions, misdirected
 * offsets, bit-rot positions), the crash stream (what survives a power loss,
 * torn sectors, garbage bytes) and the env stream (env->random(), for the
 * workload). Enabling a fault class therefore never changes the workload's
 * random numbers. No real time, no real randomness, no order that depends on
 * pointer values: the same seed and the same sequence of calls give the same
 * results and the same trace hash (rlog_simfs_trace_hash), which mixes every
 * vfs call, its arguments, its result and the bytes it moved.
 *
 * The model: a file system with a volatile page cache.
 *
 *  - Namespace. Paths are '/'-separated; empty components and "." are
 *    ignored, ".." goes up; relative paths are relative to the root (there
 *    is no working directory). The root exists. Every directory holds a
 *    volatile and a durable set of entries. open(CREATE), rename and unlink
 *    change the volatile set only and are queued as pending directory
 *    operations; sync_dir(d) makes d's pending operations durable. A rename
 *    between two directories becomes durable only once both have been
 *    synced after it. rename is atomic, and only renames files (EISDIR for
 *    directories). mkdir is durable at once (a simplification: the driver
 *    makes the directories, the log makes files). There is no rmdir.
 *    fsync/fdatasync of a file does NOT make its directory entry durable.
 *  - Files (inodes). Each has durable bytes, volatile bytes (what reads
 *    see) and a list of pending (unsynced) writes, truncates and
 *    allocations. fdatasync and fsync (identical here) apply the pending
 *    list to the durable bytes, in order, and clear it. An inode lives while
 *    any volatile or durable entry, pending directory operation or open
 *    handle refers to it: an unlinked file stays usable through its open
 *    handles. When a file has more than `max_pending` pending operations the
 *    older half of them is written back (made durable), as the kernel's
 *    writeback would.
 *  - allocate() reserves space (counted against the capacity) and, in the
 *    default mode, extends the size with zeros like fallocate(mode 0), the
 *    posix vfs's call; len 0 succeeds and does nothing.
 *  - lock(dir) is an in-memory exclusive lock per directory (EBUSY for a
 *    second holder), released by unlock() or by any crash.
 *  - Virtual time. The env's now_ns() is a virtual clock that starts at
 *    1 s and that every vfs call advances by a fixed modeled latency
 *    (latency_ns[op] + ns_per_byte * bytes moved; syncs pay for the pending
 *    bytes they flush). The driver may advance it with rlog_simfs_advance.
 *
 * Crashes. After either kind, every handle opened before it (files and
 * locks) is dead: any call on it returns EIO and does not touch the file
 * system; close() on it frees it. Handles that are never closed are freed
 * by destroy, so a driver may drop a crashed log without closing anything.
 *  - rlog_simfs_crash (process crash): volatile state (page cache, pending
 *    writes, pending directory operations) survives; locks are released.
 *  - rlog_simfs_power_loss: the durable state is what survives. Pending
 *    directory operations are each kept (applied, in their original order)
 *    or lost, independently, with probability keep_dirop_ppm; a kept rename
 *    stays atomic; an operation on a name that is no longer there (its
 *    create was lost) does not apply; a file no entry reaches disappears.
 *    Pending file writes are each kept or lost independently with
 *    probability keep_unsynced_ppm (so a later write may survive an earlier
 *    lost one: reordering). A write made before a successful sync of its
 *    file is already durable (barrier). A kept write is torn with
 *    probability torn_ppm: then each sector-grain piece of it (sectors
 *    aligned to the file offset, sector_size 512 or 4096) is independently
 *    old, new, zeroed or garbage — never a mixture within a sector. Then
 *    every volatile state is rebuilt from the durable one.
 *  - rlog_simfs_drop_caches: the page cache is evicted and re-read: each
 *    file's volatile bytes become its durable bytes with its pending list
 *    applied. Reveals misdirected/lost writes and pages dropped by a failed
 *    sync without a power loss.
 *
 * Faults (rlog_simfs_fault). Each class is counted (rlog_simfs_faults).
 * Injectable ones are switched on per vfs op with a probability in parts
 * per million of calls (rlog_simfs_set_fault) or scheduled on the Nth call
 * of an op (rlog_simfs_schedule_fault), and all can be suspended at once
 * (rlog_simfs_enable_faults). Fault decisions are checked in the order
 * EIO, ENOSPC, then the op's own classes.
 *  - EIO: any op fails with EIO without changing anything (on close, the
 *    handle is still released).
 *  - ENOSPC: any op that may allocate (open, pwrite, fdatasync, fsync,
 *    truncate, allocate, rename, mkdir, sync_dir) fails with ENOSPC without
 *    changing anything.
 *  - SYNC_DROP (fdatasync, fsync): the sync fails with EIO and the file's
 *    pending writes are discarded — they will never become durable — while
 *    the volatile bytes stay as they are. A retried sync then "succeeds", and
 *    a power loss (or drop_caches) loses the data: the fsyncgate behaviour.
 *    SYNC_DROP (sync_dir): the same for a directory: the fsync fails with
 *    EIO and the directory's pending operations (creates, unlinks, renames
 *    into or out of it) are discarded while the volatile namespace keeps
 *    showing them; a retried sync_dir "succeeds" and covers only the
 *    operations made after the failure, and a power loss shows the
 *    directory without the discarded ones. (An EIO on sync_dir leaves them
 *    pending: a later sync_dir makes them durable.)
 *  - SHORT_WRITE (pwrite): a strict prefix of the buffer is written, and the
 *    call fails with EIO, *done = the prefix length.
 *  - MISDIRECT (pwrite): the call succeeds and reads see the data, but the
 *    copy bound for the disk lands at another sector-aligned offset of the
 *    same file (or is lost when the file is too small for another place).
 *  - LOST_WRITE (pwrite): the call succeeds, reads see the data, but the
 *    copy bound for the disk is never written (the size still grows).
 *  - BITROT (pread; or rlog_simfs_bitrot): one bit of the file flips, in
 *    both the volatile and the durable bytes, and stays flipped. On pread it
 *    flips inside the range read, before the data is returned.
 *  - LATENT (pread; or rlog_simfs_add_latent): a sector becomes unreadable:
 *    every pread touching it fails with EIO (counted as LATENT_READ) until a
 *    pwrite overlaps it or a truncate removes it. Sticky across crashes.
 *  - CAPACITY: not injected by rule; counted when a pwrite, truncate or
 *    allocate would make the total bytes exceed `capacity`. A pwrite then
 *    writes what fits and fails with ENOSPC (*done = bytes written).
 *  - TORN, LOST_UNSYNCED, LOST_DIROP: counted at power loss (a kept write
 *    was torn; an unsynced write was lost; a directory operation was lost).
 *  - PROCESS_CRASH, POWER_LOSS: counts of the crash events (not faults).
 *
 * Threads: every function takes one mutex; the file system is meant to be
 * driven from one thread.
 */

/* ---- Deterministic PRNG (xoshiro256**, seeded by splitmix64) ---- */

typedef struct rlog_sim_rng {
    uint64_t s[4];
} rlog_sim_rng;

/* Seeds `rng` for stream number `stream` of `seed`: different streams of
 * one seed are independent sequences. */
RLOG_API void rlog_sim_rng_init(rlog_sim_rng *rng, uint64_t seed, uint64_t stream);
/* 64 random bits. */
RLOG_API uint64_t rlog_sim_rng_next(rlog_sim_rng *rng);
/* Uniform in [0, n); 0 when n is 0. */
RLOG_API uint64_t rlog_sim_rng_below(rlog_sim_rng *rng, uint64_t n);
/* 1 with probability ppm / 1,000,000 (never draws when ppm is 0 or >= 1e6). */
RLOG_API int rlog_sim_rng_chance(rlog_sim_rng *rng, uint32_t ppm);

/* ---- Fault classes ---- */

typedef enum rlog_simfs_fault {
    RLOG_SIMFS_FAULT_EIO = 0,
    RLOG_SIMFS_FAULT_ENOSPC,
    RLOG_SIMFS_FAULT_SYNC_DROP,
    RLOG_SIMFS_FAULT_SHORT_WRITE,
    RLOG_SIMFS_FAULT_MISDIRECT,
    RLOG_SIMFS_FAULT_LOST_WRITE,
    RLOG_SIMFS_FAULT_BITROT,
    RLOG_SIMFS_FAULT_LATENT,
    /* counted only: */
    RLOG_SIMFS_FAULT_LATENT_READ,
    RLOG_SIMFS_FAULT_CAPACITY,
    RLOG_SIMFS_FAULT_TORN,
    RLOG_SIMFS_FAULT_LOST_UNSYNCED,
    RLOG_SIMFS_FAULT_LOST_DIROP,
    RLOG_SIMFS_FAULT_PROCESS_CRASH,
    RLOG_SIMFS_FAULT_POWER_LOSS,
    RLOG_SIMFS_FAULT_COUNT
} rlog_simfs_fault;

/* "eio", "enospc", "sync_drop", ... (static; "?" for others). */
RLOG_API const char *rlog_simfs_fault_name(rlog_simfs_fault fault);
/* "open", "pwrite", ... (static; "?" for others). */
RLOG_API const char *rlog_simfs_op_name(rlog_vfs_op op);

/* ---- Configuration ---- */

typedef enum rlog_simfs_alloc_mode {
    RLOG_SIMFS_ALLOC_EXTEND = 0,     /* like posix_fallocate: size grows */
    RLOG_SIMFS_ALLOC_KEEP_SIZE = 1,  /* like FALLOC_FL_KEEP_SIZE */
    RLOG_SIMFS_ALLOC_UNSUPPORTED = 2 /* allocate() returns EOPNOTSUPP */
} rlog_simfs_alloc_mode;

typedef struct rlog_simfs_config {
    uint64_t seed;
    uint32_t sector_size;       /* torn-write and latent-error grain: power of
                                   two, 512 .. 65536 (default 4096) */
    uint64_t capacity;          /* total bytes of all files; 0 = unlimited */
    uint32_t keep_unsynced_ppm; /* power loss: P(an unsynced write is kept) */
    uint32_t torn_ppm;          /* power loss: P(a kept write is torn) */
    uint32_t keep_dirop_ppm;    /* power loss: P(an unsynced dir op is kept) */
    uint32_t max_pending;       /* pending ops per file before writeback (> 0) */
    rlog_simfs_alloc_mode alloc_mode;
    uint64_t latency_ns[RLOG_OP_COUNT]; /* virtual cost of each op */
    uint64_t ns_per_byte;               /* plus this per byte moved */
} rlog_simfs_config;

/* Fills `cfg` with the defaults for `seed`: 4 KiB sectors, no capacity
 * limit, keep 50% of unsynced writes and directory ops, tear 20% of kept
 * writes, max_pending 4096, ALLOC_EXTEND, sync ~0.5 ms, pwrite ~2 us,
 * 1 ns per byte. No fault is switched on. */
RLOG_API void rlog_simfs_config_init(rlog_simfs_config *cfg, uint64_t seed);

/* Makes a simulated file system holding only the root directory. `cfg` is
 * copied (NULL = defaults for seed 0). Free with vfs->destroy(vfs), which
 * also frees every handle never closed and the env. NULL when out of memory
 * or when cfg is invalid. */
RLOG_API rlog_vfs *rlog_simfs_new(const rlog_simfs_config *cfg);
/* The env bound to `vfs` (virtual clock and env PRNG stream). Owned by the
 * vfs: valid until vfs->destroy; env->destroy is a no-op. */
RLOG_API rlog_env *rlog_simfs_env(rlog_vfs *vfs);

/* ---- Crash events ---- */

/* Process crash: handles die, locks are released, the page cache stays. */
RLOG_API void rlog_simfs_crash(rlog_vfs *vfs);
/* Power loss: a process crash, and the volatile state is rebuilt from the
 * durable one plus a PRNG-chosen subset of the unsynced operations (see
 * above). Returns 0, or ENOMEM (the state is then still consistent, but
 * some kept writes may be missing). */
RLOG_API int rlog_simfs_power_loss(rlog_vfs *vfs);
/* Models a process that dies in the middle of its work: after `calls` more
 * vfs calls, every call fails with EIO and changes nothing, until the next
 * crash event (which the driver then causes). Used to crash the log inside
 * recovery or a rotation at an exact point. */
RLOG_API void rlog_simfs_halt_after(rlog_vfs *vfs, uint64_t calls);
/* Reseeds the crash stream only (what a power loss keeps, tears or
 * garbles) as if the file system had been made with `seed`; the fault and
 * env streams go on unchanged. Lets a driver try several power-loss
 * outcomes of one run whose workload depends on the env's randomness. */
RLOG_API void rlog_simfs_reseed_crash(rlog_vfs *vfs, uint64_t seed);
/* Evicts the page cache (see above); handles stay valid. 0 or ENOMEM. */
RLOG_API int rlog_simfs_drop_caches(rlog_vfs *vfs);

/* ---- Fault control ---- */

/* Injects `fault` into calls of `op` with probability ppm per million
 * (0 switches it off). op = RLOG_OP_COUNT sets it for every op the class
 * applies to. EINVAL if the class is not injectable into that op. */
RLOG_API int rlog_simfs_set_fault(rlog_vfs *vfs, rlog_simfs_fault fault, rlog_vfs_op op,
                                  uint32_t ppm);
/* Injects `fault` into the nth call of `op`, counted from the creation of
 * the file system, 1-based (compare rlog_simfs_calls(vfs, op): nth =
 * calls + 1 is the next call). One-shot; dropped unfired when that call
 * fails earlier (by another fault or a bad argument). EINVAL if not injectable there or
 * nth is already past; ENOMEM. */
RLOG_API int rlog_simfs_schedule_fault(rlog_vfs *vfs, rlog_simfs_fault fault, rlog_vfs_op op,
                                       uint64_t nth);
/* Switches off every probability and removes every scheduled fault and
 * latent sector error. Counters are kept. */
RLOG_API void rlog_simfs_clear_faults(rlog_vfs *vfs);
/* Suspends (on = 0) or resumes (on = 1) all injection by rule (probability
 * and schedule); scheduled faults whose call passes while suspended are
 * skipped. Power-loss choices and the capacity limit are not affected. */
RLOG_API void rlog_simfs_enable_faults(rlog_vfs *vfs, int on);
/* Flips one bit, chosen by the fault stream, of the file at `path`
 * (volatile namespace), in its volatile and durable bytes. *off (may be
 * NULL) receives the byte offset. ENOENT, EISDIR, EINVAL (empty file). */
RLOG_API int rlog_simfs_bitrot(rlog_vfs *vfs, const char *path, uint64_t *off);
/* rlog_simfs_bitrot inside [lo, hi) of the file: for a caller that aims
 * at chosen bytes (the cluster workload strikes only records the store
 * proves durable); hi = UINT64_MAX: to the end. EINVAL when the range is
 * empty or past the end. */
RLOG_API int rlog_simfs_bitrot_range(rlog_vfs *vfs, const char *path, uint64_t lo, uint64_t hi,
                                     uint64_t *off);
/* Makes every sector touching [off, off+len) of the file at `path`
 * unreadable (sticky latent sector error). ENOENT, EISDIR, ENOMEM. */
RLOG_API int rlog_simfs_add_latent(rlog_vfs *vfs, const char *path, uint64_t off, uint64_t len);

/* ---- Inspection (for oracles and tests; not counted, not traced, never
 * faulted, does not advance time) ---- */

/* Copies the bytes of the file at `path`: durable = 0 resolves the path in
 * the volatile namespace and returns the volatile bytes (what a read sees
 * now); durable = 1 resolves it in the durable namespace and returns the
 * durable bytes (what survives a power loss that keeps nothing unsynced).
 * *data is malloc'd (free with rlog_free(); non-NULL even for an empty
 * file). ENOENT, EISDIR, ENOMEM. */
RLOG_API int rlog_simfs_read(rlog_vfs *vfs, const char *path, int durable, void **data,
                             size_t *len);
/* All regular files of the volatile (durable = 0) or durable namespace, as
 * absolute paths ("/d/f"), sorted by strcmp. Free with rlog_vfs_free_names()
 * (the array and each string are malloc'd). ENOMEM. */
RLOG_API int rlog_simfs_list_files(rlog_vfs *vfs, int durable, char ***paths, size_t *count);
/* mkdir -p (durable at once). 0, ENOTDIR, ENOMEM. */
RLOG_API int rlog_simfs_mkdirs(rlog_vfs *vfs, const char *path);
/* Calls of `op` so far (faulted or not); op = RLOG_OP_COUNT: all calls. */
RLOG_API uint64_t rlog_simfs_calls(rlog_vfs *vfs, rlog_vfs_op op);
/* Events of class `fault` so far. */
RLOG_API uint64_t rlog_simfs_faults(rlog_vfs *vfs, rlog_simfs_fault fault);
/* Bytes of pending (unsynced) writes, all files. */
RLOG_API uint64_t rlog_simfs_unsynced_bytes(rlog_vfs *vfs);
/* Running hash of every vfs call, its arguments, result and data, and of
 * every crash event. */
RLOG_API uint64_t rlog_simfs_trace_hash(rlog_vfs *vfs);
/* The virtual clock (same as env->now_ns). */
RLOG_API uint64_t rlog_simfs_now_ns(rlog_vfs *vfs);
RLOG_API void rlog_simfs_advance(rlog_vfs *vfs, uint64_t ns);

/* Called with one line per vfs call and crash event ("pwrite /d/f 0 4096
 * -> ok done=4096": op, path, two numeric arguments, result), without a
 * newline; `line` is valid only
 * during the call. fn = NULL stops tracing. The callback must not call back
 * into the file system. */
typedef void (*rlog_simfs_trace_fn)(void *data, const char *line);
RLOG_API void rlog_simfs_set_trace(rlog_vfs *vfs, rlog_simfs_trace_fn fn, void *data);

/* ======================================================================
 * The simulator driver
 * ======================================================================
 *
 * Runs one seed: a workload against the log (and the Raft storage) on a
 * fresh simulated file system, with crashes (process crash and power loss,
 * also inside recovery) and injected faults, all decided by the seed. After
 * every recovery it checks the oracles (docs/simulator.md):
 *  - every acknowledged-durable record is there and intact, or the open
 *    fails loudly (RLOG_ECORRUPT) — and only when a fault that destroys
 *    acknowledged data struck;
 *  - a record that was damaged on purpose while a later acknowledged record
 *    proves it durable is reported as corruption, never cut;
 *  - nothing that was never appended appears; LSNs are gap-free;
 *  - recovering twice gives the same state;
 *  - reads during the run return exactly what was appended.
 * The Raft workload (rlog_rs_* on the same file system) also checks: the
 * recovered hard state, snapshot marker and entries (term and payload of
 * each) are exactly the acknowledged state, or it followed by a prefix of
 * the operations in flight (each one whole, or the first records of an
 * append; never one the log reported durable left out); the hard-state
 * term never goes back and a vote never changes within a term; truncation
 * and snapshot (trailing, install) semantics; snapshot_get returns the
 * bytes stored; nothing is acknowledged before the log is durable past it
 * (so never past a failed fsync), and a synchronous call returns only
 * after the callbacks of the appends queued before it.
 * The shipping workload (a leader log served to 1..3 followers over the
 * simulated network, crashes and faults on every side) checks: a follower
 * never acknowledges more than it holds durably, never holds a record the
 * leader did not make durable, keeps every sealed segment byte-identical
 * to the leader's, and converges once faults stop.
 * Same seed, same options -> same trace hash, on every build type.
 */

/* Driver-level fault classes, numbered after the file system's. */
#define RLOG_SIM_FAULT_DAMAGE         RLOG_SIMFS_FAULT_COUNT       /* targeted bit flips */
#define RLOG_SIM_FAULT_RECOVERY_CRASH (RLOG_SIMFS_FAULT_COUNT + 1) /* crash inside recovery */
#define RLOG_SIM_FAULT_CLASSES        (RLOG_SIMFS_FAULT_COUNT + 2)

typedef void (*rlog_sim_trace_fn)(void *data, const char *line);

/* Workloads (rlog_sim_options.workloads): the log alone, the Raft storage
 * on it (append, hard state, truncation, snapshots, compaction), or segment
 * shipping (a leader log served to 1..3 followers over the simulated
 * network; docs/simulator.md, "Shipping scenarios"). */
#define RLOG_SIM_WORKLOAD_LOG  0x1u
#define RLOG_SIM_WORKLOAD_RAFT 0x2u
#define RLOG_SIM_WORKLOAD_SHIP 0x4u
#define RLOG_SIM_WORKLOAD_ALL  0x7u

/* Test hooks (rlog_sim_options.sabotage): the shipping workload breaks its
 * own run on purpose, so that a test can prove each of its oracles able to
 * fail. Never set outside such a test. */
#define RLOG_SIM_SABOTAGE_EARLY_ACK   0x1u /* a follower's acknowledgements count one LSN more */
#define RLOG_SIM_SABOTAGE_FORGE       0x2u /* a follower's record is rewritten (CRC still valid) */
#define RLOG_SIM_SABOTAGE_SEALED_BYTE 0x4u /* one byte of a follower's sealed segment flips */
#define RLOG_SIM_SABOTAGE_NO_HEAL     0x8u /* a partition stays while followers must converge */
/* The Raft workload: every snapshot the store returns reads as one never
 * written (its CRC32C changed) — the snapshot checks must catch it, also
 * for a snapshot recovery could not tie to a put. */
#define RLOG_SIM_SABOTAGE_SNAP_FOREIGN 0x10u

typedef struct rlog_sim_options {
    uint64_t seed;
    uint32_t steps;   /* workload operations (default 1000) */
    uint32_t crashes; /* crash events (default 5) */
    /* Allowed fault classes: bit i for class i (rlog_simfs_fault and
     * RLOG_SIM_FAULT_*); default all. Each seed picks a plan among them. */
    uint64_t faults;
    /* Allowed workloads (RLOG_SIM_WORKLOAD_*; default all): with several,
     * the seed picks one (with all: about 10% shipping, and of the others
     * about 35% Raft). */
    unsigned workloads;
    /* One line per driver event and per vfs call (NULL: no trace). Lines
     * hold nothing that varies between runs of a seed. */
    rlog_sim_trace_fn trace;
    void *trace_data;
    unsigned sabotage; /* RLOG_SIM_SABOTAGE_* (tests only; default 0) */
    /* What a shipping seed ships (RLOG_SIM_SHIP_*): by default the seed
     * picks (about 30% a Raft store, the rest a plain log). */
    unsigned ship_store;
    /* 1: the benign fault plans (and a shipping seed's follower faults)
     * also inject sync_drop into sync_dir — a failed directory fsync that
     * drops the directory's pending operations for good. Off by default:
     * the prefix deletion relies on a later directory fsync covering an
     * unlink whose fsync failed (docs/durability.md, "Directory
     * operations"), and switching it on changes every seed's fault draws. */
    unsigned dir_sync_drop;
} rlog_sim_options;

#define RLOG_SIM_SHIP_BY_SEED 0u
#define RLOG_SIM_SHIP_LOG     1u
#define RLOG_SIM_SHIP_RAFT    2u

typedef struct rlog_sim_result {
    int failed;         /* 1 when an oracle failed */
    char message[1024]; /* the first failure */
    uint64_t trace_hash;
    uint64_t ops, appends, acked, reads;
    uint64_t crashes, power_losses, recoveries, recovery_crashes;
    uint64_t mid_op_crashes;                 /* crashes inside an ordinary operation */
    uint64_t corruption_detected;            /* opens that failed loudly, as they had to */
    uint64_t torn_cut;                       /* recoveries that cut a torn tail */
    uint64_t faults[RLOG_SIM_FAULT_CLASSES]; /* faults injected, per class */
    uint64_t raft_seeds;                     /* 1 when the seed ran the Raft workload */
    uint64_t raft_ops;                       /* Raft storage operations (writes and checks) */
    /* The shipping workload: 1 when the seed ran it; crashes of its leader
     * and of its followers (process crashes and power losses); followers
     * restarted from the leader's retained prefix; network faults (messages
     * dropped, duplicated, reordered, delayed, lost to a partition, and
     * connections reset); segment bytes followers received and verified. */
    uint64_t ship_seeds;
    uint64_t ship_leader_crashes, ship_follower_crashes;
    uint64_t ship_resets;
    uint64_t ship_net_faults;
    uint64_t ship_bytes;
    /* Shipping a Raft store (sim/ship_raft.c): 1 when the seed did;
     * snapshots the leader put, follower snapshots read back whole after a
     * power loss, truncations the leader made. */
    uint64_t ship_raft_seeds;
    uint64_t ship_raft_snaps_put, ship_raft_snaps_checked, ship_raft_truncations;
} rlog_sim_result;

RLOG_API void rlog_sim_options_init(rlog_sim_options *opts, uint64_t seed);
/* Runs one seed. Returns 0 when it ran (see res->failed for the verdict),
 * RLOG_ENOMEM when it could not, or when the simulator's own memory ran out
 * during the run (the run's memory is then not freed; the process goes on).
 * The simulator is built into librlog-sim (CMake target rlog::sim), not
 * into librlog. */
RLOG_API int rlog_sim_run(const rlog_sim_options *opts, rlog_sim_result *res);
/* Adds r's counters (operations, crashes, faults per class, workload
 * counts) to sum, for totals over many seeds; failed, message and
 * trace_hash are the caller's to combine. */
RLOG_API void rlog_sim_result_add(rlog_sim_result *sum, const rlog_sim_result *r);
/* Parses "log", "raft", "ship" or "all" into a RLOG_SIM_WORKLOAD_* mask; -1 on
 * an unknown name. */
RLOG_API int rlog_sim_parse_workloads(const char *name, unsigned *mask);
/* "damage", "recovery_crash", or the file system's fault names. */
RLOG_API const char *rlog_sim_fault_name(unsigned cls);
/* Parses "eio,enospc,..." (or "all", "none") into a mask; -1 on an unknown
 * name. */
RLOG_API int rlog_sim_parse_faults(const char *list, uint64_t *mask);

/* ======================================================================
 * Testing your own code (sim/user.c; docs/simulator.md, "Testing your own
 * code")
 * ======================================================================
 *
 * Two helpers for code written against the vfs table:
 *  - the seed loop (rlog_sim_seeds) runs a callback once per seed of a
 *    range, each time on a fresh simulated file system seeded by that seed,
 *    optionally on several threads, and collects the failing seeds with a
 *    replay command;
 *  - the crash-point helper (rlog_sim_crash_points) runs an operation once
 *    to count its vfs calls N, then for each k = 1..N+1 rebuilds the state
 *    from scratch, runs the operation again with the process dying just
 *    before its call k (k = N+1: right after it returned), crashes (a
 *    process crash, and separately a power loss) and runs the user's check
 *    as a new process would; every k whose check fails is reported with
 *    the call's name.
 * Determinism: a seed's run depends on the seed alone (and on what the
 * callbacks do), never on the thread that runs it or on other seeds.
 */

/* What a callback gets: the seed and its simulated file system. */
typedef struct rlog_sim_ctx {
    uint64_t seed;
    rlog_vfs *vfs;    /* fresh for this seed (or crash point); owned by the helper */
    rlog_env *env;    /* rlog_simfs_env(vfs): virtual clock, seeded randomness */
    rlog_sim_rng rng; /* a stream of the seed for the callback's own choices */
    void *result;     /* rlog_sim_seeds_options.result_size zeroed bytes, or NULL */
    char message[512]; /* why the callback failed (rlog_sim_failf) */
} rlog_sim_ctx;

/* Writes the reason of a failure into ctx->message (printf-style; the first
 * one wins) and returns 1, so that a callback can `return rlog_sim_failf(..)`. */
RLOG_API int rlog_sim_failf(rlog_sim_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A callback: 0 passes, non-zero fails (the reason in ctx->message). */
typedef int (*rlog_sim_fn)(rlog_sim_ctx *ctx, void *user);

/* ---- the seed loop ---- */

typedef struct rlog_sim_seeds_options {
    uint64_t from;   /* first seed */
    uint64_t count;  /* seeds from, from+1, ..., from+count-1 (default 100) */
    unsigned jobs;   /* threads running seeds at once (default 1: the calling
                        thread only). With more, `run` must be thread-safe. */
    int keep_going;  /* 0 (default): stop at the first failing seed */
    /* The file system of each seed: this configuration with cfg.seed set to
     * the seed (NULL = rlog_simfs_config_init defaults). no_fs = 1: make
     * none (ctx->vfs and env are NULL: the callback brings its own, as
     * rlog_sim_run does). Each seed's file system starts with `mkdir` made
     * (NULL: nothing but the root). */
    const rlog_simfs_config *fs;
    int no_fs;
    const char *mkdir;
    /* A command that replays one seed; each "{seed}" in it is replaced by
     * the seed in the failures' replay lines (NULL: "seed {seed}"). */
    const char *replay;
    /* Bytes of per-seed result space (ctx->result; 0 = none), handed to
     * on_seed. */
    size_t result_size;
    /* Called in the calling thread, in seed order, after each seed:
     * failed = the callback's verdict, message its reason, result its
     * result space. May be NULL. */
    void (*on_seed)(void *data, uint64_t seed, int failed, const char *message,
                    const void *result);
    void *data;
} rlog_sim_seeds_options;

typedef struct rlog_sim_seed_failure {
    uint64_t seed;
    char message[512];
    char replay[512]; /* the replay command with the seed filled in */
} rlog_sim_seed_failure;

typedef struct rlog_sim_seeds_result {
    uint64_t ran;    /* seeds run to the end */
    uint64_t failed; /* of which failed */
    /* The failing seeds in seed order (at most 1000 kept; `failed` counts
     * all). malloc'd: rlog_sim_seeds_release. */
    rlog_sim_seed_failure *failures;
    size_t n_failures;
} rlog_sim_seeds_result;

RLOG_API void rlog_sim_seeds_options_init(rlog_sim_seeds_options *opts);
/* Runs `run` for the seeds of opts (see above). Returns 0 when the seeds
 * ran (the verdict is in res), RLOG_ENOMEM when a file system or the
 * bookkeeping could not be made, RLOG_EINVAL for bad options, or the
 * error of pthread_create as RLOG_EIO. res is filled in every case. */
RLOG_API int rlog_sim_seeds(const rlog_sim_seeds_options *opts, rlog_sim_fn run, void *user,
                            rlog_sim_seeds_result *res);
RLOG_API void rlog_sim_seeds_release(rlog_sim_seeds_result *res);
/* Writes "FAIL seed=S: message" and "  replay: command" per failure, then
 * "seeds=N failed=F", to `out` (a FILE *; void * keeps <stdio.h> out of
 * this header). */
RLOG_API void rlog_sim_seeds_print(const rlog_sim_seeds_result *res, void *out);

/* ---- the crash-point helper ---- */

#define RLOG_SIM_CRASH_PROCESS 0x1u /* rlog_simfs_crash: the page cache survives */
#define RLOG_SIM_CRASH_POWER   0x2u /* rlog_simfs_power_loss (see power_outcomes) */

typedef struct rlog_sim_crash_point {
    uint64_t k;        /* the process died before the operation's vfs call k
                          (1-based); k = calls + 1: after the operation */
    unsigned kind;     /* RLOG_SIM_CRASH_PROCESS or RLOG_SIM_CRASH_POWER */
    unsigned outcome;  /* power loss: which outcome (0-based, see above) */
    rlog_vfs_op op;    /* call k's op (RLOG_OP_COUNT when k = calls + 1) */
    char call[320];    /* call k as the counting run traced it ("rename /d/a.tmp
                          0 0 -> ok done=0"; "(after the operation)") */
    char previous[320]; /* call k-1, the last one that happened ("" for k = 1) */
    int failed;
    char message[512]; /* the check's reason */
} rlog_sim_crash_point;

typedef struct rlog_sim_crash_options {
    uint64_t seed;                /* the file system's seed */
    const rlog_simfs_config *fs;  /* NULL: rlog_simfs_config_init(seed) defaults */
    const char *mkdir;            /* made before setup (NULL: none) */
    /* Builds the state the operation starts from, on a fresh file system
     * (run before every crash point; must leave what it relies on durable:
     * sync what it writes). NULL: nothing. Non-zero fails the whole call. */
    rlog_sim_fn setup;
    /* The operation under test. Its result is ignored at a crash point (the
     * process dies inside it: its calls fail with EIO after death); in the
     * counting run, non-zero fails the whole call. */
    rlog_sim_fn operation;
    /* After the crash, as a new process: reopen and check the invariant.
     * 0 holds, non-zero is reported (reason in ctx->message). */
    rlog_sim_fn check;
    unsigned kinds; /* RLOG_SIM_CRASH_* (default both) */
    /* Power-loss outcomes tried per k (default 3): 1st keeps nothing
     * unsynced, 2nd keeps every unsynced directory operation but no
     * unsynced data write, the others are drawn from the seed (file system
     * seeds seed+1, seed+2, ...) with the configuration's probabilities. */
    unsigned power_outcomes;
    int keep_going; /* 0 (default): stop at the first failing point */
    /* Called for every crash point run (failed or not). May be NULL. */
    void (*on_point)(void *data, const rlog_sim_crash_point *p);
    void *data;
} rlog_sim_crash_options;


typedef struct rlog_sim_crash_result {
    uint64_t calls;  /* N: vfs calls of the operation (counting run) */
    uint64_t points; /* crash points run */
    uint64_t failed; /* of which failed their check */
    rlog_sim_crash_point first; /* the first failure (valid when failed) */
    char message[512];          /* why the call could not run (setup, count) */
} rlog_sim_crash_result;

RLOG_API void rlog_sim_crash_options_init(rlog_sim_crash_options *opts, uint64_t seed);
/* Runs the crash points (see above). 0 when they ran (verdict in res);
 * RLOG_EINVAL (no operation or check), RLOG_ENOMEM, or RLOG_EIO when setup
 * or the counting run of the operation failed (res->message says which). */
RLOG_API int rlog_sim_crash_points(const rlog_sim_crash_options *opts, void *user,
                                   rlog_sim_crash_result *res);

/* ======================================================================
 * Simulated network (sim/simnet.c; docs/simulator.md, "Network")
 * ======================================================================
 *
 * A deterministic, single-threaded, fault-injecting network and a second
 * implementation of the transport table (rlog/transport.h) on it. Every
 * message goes through the real codec (rlog_msg_encode on send,
 * rlog_msg_decode with the receiver's max_message on arrival).
 *
 * Nodes and hosts. Each transport made by rlog_simnet_transport_new is one
 * endpoint; addresses are plain strings ("sim://leader") that listen()
 * registers. A host is a server id: partitions and slow links apply to
 * every endpoint with that id (a Raft transport and a shipping transport of
 * one server are one host).
 *
 * Time. Virtual, in nanoseconds, starting at 1 s. It moves only in
 * rlog_simnet_step (to the next scheduled event) and rlog_simnet_advance.
 * Those run the network's side at once — connections open, time out and
 * close, messages are decoded, send queues drain, redial timers fire — and
 * queue the resulting callbacks on each endpoint. poll() never waits: it
 * runs the callbacks that were queued before it started. A driver loop is:
 * poll every endpoint, then step (0 = nothing scheduled), repeat (bounded:
 * a dial to a missing or partitioned peer is retried forever).
 *
 * Connections (like TCP). connect() dials: the dialer's hello reaches the
 * listener after a latency, the listener answers with its hello; each side
 * is up (peer_up) once it has the other's hello. Messages on a connection
 * arrive in order and at most once unless faults say otherwise. One
 * connection per peer id: when a second one to the same peer comes up it
 * replaces the first (peer_down, then peer_up: a peer that dials again has
 * lost the old connection, e.g. it restarted). Two servers dialling each
 * other at once end with the connection whose hello arrived first: the
 * dial it replaces is abandoned, and a hello that arrives after its dialer
 * abandoned the dial is lost. connect() does not dial a peer that is
 * already up (through either side's connection); a connect()ed peer whose
 * connection is lost is redialled with the transport's backoff (jittered
 * from the seed) until disconnect().
 * A connection is reset (both sides peer_down, messages in flight lost):
 *  - by the reset fault or rlog_simnet_reset_conn: at once, both sides;
 *  - when a message cannot be decoded or breaks the protocol: the receiver
 *    gets RLOG_EPROTO, the sender RLOG_ENOCONN after a latency;
 *  - by close (the peer sees RLOG_ENOCONN after a latency), a crash (after
 *    timeout_ns), a partition (both sides after timeout_ns, if the
 *    partition still stands then), a dial left unanswered for timeout_ns.
 * The real transport's limits against strangers (max_conns,
 * max_conns_per_host, reserve_conns, handshake_ms; rlg_limits_* in
 * transport/transport.c) decide which connections a listener holds and
 * which hellos it admits (docs/simulator.md, "Network").
 * Sends leave a per-peer queue (transport limits: drop-oldest RLOG_EFULL)
 * at the link's bandwidth; the send callback gets 0 when a message leaves.
 *
 * Faults (random, per message that leaves a send queue, in this order;
 * hellos are exempt; rlog_simnet_faults(net, 0) suspends them): reset,
 * drop (lost; the send still completes with 0), delay (this message and,
 * to keep order, the later ones), reorder (this message is held back
 * 1..delay_max_ns while later ones may overtake it), duplicate (a second
 * copy arrives later). Not random: partitions, slow hosts, crashes.
 *
 * Determinism. Every random choice comes from rlog_sim_rng streams of
 * cfg.seed (faults, latencies, backoff jitter, env); no real time, no
 * threads, no pointer order. The same seed and the same calls give the same
 * events, deliveries and trace hash. Not thread-safe: one thread drives the
 * network and every endpoint (post() included).
 */

#include "rlog/transport.h"

typedef struct rlog_simnet rlog_simnet;

/* Random faults, each in parts per million of messages sent. */
typedef struct rlog_simnet_rates {
    uint32_t drop_ppm;
    uint32_t dup_ppm;
    uint32_t reorder_ppm;
    uint32_t delay_ppm;
    uint32_t reset_ppm;
    uint64_t delay_max_ns; /* extra delay of a delayed or held-back message:
                              uniform in [1, delay_max_ns] */
} rlog_simnet_rates;

typedef struct rlog_simnet_config {
    uint64_t seed;
    uint64_t latency_min_ns; /* one-way latency of each message: uniform */
    uint64_t latency_max_ns; /* in [min, max], times the slow factor */
    uint64_t timeout_ns;     /* detecting a dead peer: partition, crash, dial */
    uint64_t bytes_per_sec;  /* bandwidth of every link; 0 = unlimited */
    rlog_simnet_rates rates;
} rlog_simnet_config;

typedef enum rlog_simnet_counter {
    RLOG_SIMNET_SENT = 0,       /* messages that left a send queue */
    RLOG_SIMNET_DELIVERED,      /* messages handed to recv (queued) */
    RLOG_SIMNET_DROPPED,        /* lost by the drop fault */
    RLOG_SIMNET_DUPLICATED,     /* copies added by the duplicate fault */
    RLOG_SIMNET_REORDERED,      /* held back by the reorder fault */
    RLOG_SIMNET_DELAYED,        /* delayed by the delay fault */
    RLOG_SIMNET_RESET,          /* connections reset (fault or reset_conn) */
    RLOG_SIMNET_PARTITION_LOST, /* messages and hellos lost to a partition */
    RLOG_SIMNET_INFLIGHT_LOST,  /* arrived at a connection end already gone */
    RLOG_SIMNET_TIMEOUT,        /* connection ends reset by a timeout */
    RLOG_SIMNET_EFULL,          /* sends dropped from a full queue */
    RLOG_SIMNET_EPROTO,         /* connections reset for a protocol error */
    RLOG_SIMNET_DIAL,           /* dial attempts */
    RLOG_SIMNET_REFUSED,        /* dials to an address nobody listens at */
    RLOG_SIMNET_UP,             /* connection ends that came up */
    RLOG_SIMNET_CRASH,          /* rlog_simnet_node_crash calls */
    RLOG_SIMNET_NOMEM, /* events lost to an allocation failure: the run is then not valid */
    RLOG_SIMNET_LIMITED, /* connections closed or refused by the limits against strangers */
    RLOG_SIMNET_COUNTER_COUNT
} rlog_simnet_counter;

/* Defaults for `seed`: latency 50..500 us, timeout 1 s, unlimited
 * bandwidth, no faults, delay_max 10 ms. */
RLOG_API void rlog_simnet_config_init(rlog_simnet_config *cfg, uint64_t seed);
/* A network (cfg copied; NULL = defaults for seed 0). NULL when out of
 * memory or cfg is invalid (latency_min > latency_max, latency_max > 1000 s,
 * timeout 0, a rate above 1e6). */
RLOG_API rlog_simnet *rlog_simnet_new(const rlog_simnet_config *cfg);
/* Frees the network, its env and every transport not yet closed (as a
 * crash: no callbacks). */
RLOG_API void rlog_simnet_free(rlog_simnet *net);
/* A fresh transport (version 1) on `net`, to init() and use as any other;
 * close() or rlog_simnet_node_crash() frees it. RLOG_ENOMEM. */
RLOG_API int rlog_simnet_transport_new(rlog_simnet *net, rlog_transport **out);

/* Advances virtual time to the next scheduled event and runs every event
 * due then. Returns how many ran; 0 when nothing is scheduled. */
RLOG_API int rlog_simnet_step(rlog_simnet *net);
/* Runs every event due within `ns` from now, then sets now += ns. */
RLOG_API void rlog_simnet_advance(rlog_simnet *net, uint64_t ns);
RLOG_API uint64_t rlog_simnet_now_ns(rlog_simnet *net);
/* Time of the next scheduled event (UINT64_MAX: none). */
RLOG_API uint64_t rlog_simnet_next_ns(rlog_simnet *net);
/* An env on the network's clock, random from the env stream of the seed.
 * Owned by the network (destroy is a no-op). */
RLOG_API rlog_env *rlog_simnet_env(rlog_simnet *net);

/* Suspends (on = 0) or resumes random faults. Partitions, slow hosts and
 * explicit resets are not affected. */
RLOG_API void rlog_simnet_faults(rlog_simnet *net, int on);
RLOG_API void rlog_simnet_set_rates(rlog_simnet *net, const rlog_simnet_rates *rates);
/* Cuts hosts a and b apart (both directions; a != b, both non-zero). */
RLOG_API void rlog_simnet_partition(rlog_simnet *net, uint64_t a, uint64_t b);
/* One-way: messages (and hellos) from host `from` to host `to` are lost,
 * those from `to` to `from` still arrive; connections are not timed out
 * by it. Healed like a cut between the two (rlog_simnet_heal). */
RLOG_API void rlog_simnet_partition_oneway(rlog_simnet *net, uint64_t from, uint64_t to);
/* Cuts host a from every other host. */
RLOG_API void rlog_simnet_isolate(rlog_simnet *net, uint64_t a);
/* Removes the cut between a and b; b = 0: every cut involving a. */
RLOG_API void rlog_simnet_heal(rlog_simnet *net, uint64_t a, uint64_t b);
RLOG_API void rlog_simnet_heal_all(rlog_simnet *net);
/* True when a message between hosts a and b would be lost now. */
RLOG_API int rlog_simnet_partitioned(rlog_simnet *net, uint64_t a, uint64_t b);
/* Host `server_id`'s links: latency times latency_mult (0 = 1; a link
 * takes the larger factor of its two hosts) and bandwidth bytes_per_sec
 * (0 = the network's; a link takes the smaller of its hosts'). */
RLOG_API void rlog_simnet_slow(rlog_simnet *net, uint64_t server_id, uint32_t latency_mult,
                               uint64_t bytes_per_sec);
/* Resets t's connection to peer_id now, both sides (RLOG_ENOCONN when
 * there is none). */
RLOG_API int rlog_simnet_reset_conn(rlog_simnet *net, rlog_transport *t, uint64_t peer_id);
/* The endpoint vanishes without a goodbye: no callback runs, its sends and
 * callbacks are dropped, its address is free at once, its peers see their
 * connections reset after timeout_ns. Frees t. */
RLOG_API void rlog_simnet_node_crash(rlog_simnet *net, rlog_transport *t);
/* Test hook: sends `len` raw bytes (not encoded, no faults) on from's up
 * connection to server `to`, as a hostile peer would. RLOG_ENOCONN,
 * RLOG_ENOMEM. */
RLOG_API int rlog_simnet_inject_raw(rlog_simnet *net, rlog_transport *from, uint64_t to,
                                    const void *bytes, size_t len);

/* Test hook: `count` connections from host `host` (a server id; it needs
 * no endpoint) reach the listener at `address` at once and never send a
 * byte, as a stranger flooding the port. The listener holds them under the
 * real transport's limits (rlg_limits_*, docs/security.md "Limits"): one
 * is refused on arrival beyond max_conns + reserve_conns held
 * (max_conns_per_host + reserve_conns from its host), then the oldest are
 * closed until max_conns (max_conns_per_host per host) remain, and each is
 * closed handshake_ms after it arrived. Counted as RLOG_SIMNET_LIMITED when
 * closed or refused. RLOG_ENOTFOUND (nobody listens there), RLOG_ENOMEM. */
RLOG_API int rlog_simnet_open_silent(rlog_simnet *net, uint64_t host, const char *address,
                                     unsigned count);
/* How many such silent connections the listener at `address` holds. */
RLOG_API size_t rlog_simnet_silent_held(rlog_simnet *net, const char *address);
RLOG_API uint64_t rlog_simnet_count(rlog_simnet *net, rlog_simnet_counter which);
/* "sent", "delivered", ... (static; "?" for others). */
RLOG_API const char *rlog_simnet_counter_name(rlog_simnet_counter which);
/* Running hash of every network event (the trace lines). */
RLOG_API uint64_t rlog_simnet_trace_hash(rlog_simnet *net);
/* One line per network event ("1.000250000 conn 3 recv append_entries
 * 2<-1 len 40 h 5f..."), without a newline; valid during the call only;
 * fn = NULL stops. The callback must not call into the network. */
RLOG_API void rlog_simnet_set_trace(rlog_simnet *net, rlog_sim_trace_fn fn, void *data);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_SIM_H */
