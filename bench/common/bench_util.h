/*
 * bench/common — what more than one benchmark program runs: the clock,
 * scratch directories, payload bytes, an rlog opened for timing, and the
 * group-commit case (bench/append runs it against one writer, bench/
 * rocksdb_sync against RocksDB's synchronous puts: one copy of the case).
 * Benchmarks only; nothing here is part of librlog.
 */
#ifndef RLOG_BENCH_UTIL_H
#define RLOG_BENCH_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/log.h"
#include "rlog/vfs.h"

#define BENCH_TYPE RLOG_TYPE_USER_MIN

/* The data directory every benchmark writes under: $RLOG_BENCH_DIR, or
 * ./bench-data. */
const char *bench_data_root(void);
/* Its line in every benchmark's usage message. */
#define BENCH_USAGE_DATA "  data directory: $RLOG_BENCH_DIR or ./bench-data (removed at the end)\n"

/* The options more than one benchmark takes: when argv[*i] is --rounds N
 * (1 .. 100) or --seconds S (0 < S <= 600), stores the value (dies when
 * it is out of range), steps *i past it and returns true; otherwise false.
 * ROUNDS NULL: the program takes no --rounds. */
bool bench_common_arg(int argc, char **argv, int *i, int *rounds, double *seconds);

/* Records per second (0 for no time) and records per sync (0 for none). */
double bench_rate(uint64_t records, double seconds);
double bench_per_sync(uint64_t records, uint64_t syncs);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Prints "bench: WHAT: DETAIL" to stderr and exits with status 1. */
void bench_die(const char *what, const char *detail);

/* Removes PATH and everything below it (errors ignored). */
void bench_rm_rf(const char *path);

/* Makes DIR anew and empty (removing what was there); dies on failure. */
void bench_fresh_dir(const char *dir);

/* LEN pseudo-random bytes from SEED (xorshift: cheap, incompressible). */
void bench_fill(uint8_t *buf, size_t len, uint64_t seed);

/* Removes DIR, creates a log there (RLOG_OPEN_CREATE | RLOG_OPEN_THREAD |
 * FLAGS) and waits up to 5 s for its I/O thread to prepare the next
 * segments, so that zero-filling does not compete with the timed syncs.
 * SEGMENT_SIZE 0 and VFS NULL: the defaults. Dies on error; the caller
 * closes the log. */
rlog_log *bench_log_open(const char *dir, rlog_sync_mode mode, uint64_t segment_size, rlog_vfs *vfs,
                         unsigned flags);

/* The posix vfs, counting (all users of it together): bytes passed to
 * pwrite, and syncs (fdatasync, fsync, directory fsync); bench_vfs_zeros:
 * the bytes of pwrites of 4 KiB or more that were all zeros (zero fill). */
extern _Atomic uint64_t bench_vfs_written, bench_vfs_syncs, bench_vfs_zeros;
rlog_vfs *bench_counting_vfs(void);

/* CPU time (user + system, all threads of the process) and context
 * switches (voluntary + involuntary), from getrusage(RUSAGE_SELF). Counts
 * per operation depend far less on the machine's load than timings do. */
typedef struct bench_usage {
    double cpu_us;
    uint64_t csw;
} bench_usage;

bench_usage bench_usage_now(void);

/* END - START. */
bench_usage bench_usage_since(bench_usage start, bench_usage end);

/* While set (non-NULL), every fdatasync through the counting vfs records
 * its start and end (bench_now_ns) and bench_vfs_zeros at its start in
 * ts[3 * i], ts[3 * i + 1], ts[3 * i + 2] for i < cap; *n counts them
 * (also past cap). NULL stops the recording. */
void bench_vfs_time_syncs(uint64_t *ts, size_t cap, _Atomic size_t *n);

/* Runs THREADS threads of WORKER(DATA, index 0..THREADS-1, STOP) for
 * SECONDS; a worker loops until *STOP is set, then returns. Returns the
 * wall time from the first thread's start to the last one's end. Dies when
 * a thread cannot start. */
double bench_threads_run(int threads, double seconds,
                         void (*worker)(void *data, int idx, const atomic_bool *stop), void *data);

/* Result of a group-commit run. */
typedef struct bench_group_result {
    uint64_t records;   /* appended by all threads together */
    double seconds;     /* wall time from the first thread's start to the last one's end */
    double max_us;      /* the slowest single rlog_append */
    uint64_t syncs;     /* fdatasyncs the log made (its metrics), preparation included */
    uint64_t pipelined; /* rounds started right after the sync before (its metrics) */
    bench_usage use;    /* of the whole process while the threads ran */
} bench_group_result;

/* The group-commit case: a fresh log in DIR with RLOG_SYNC_GROUP, THREADS
 * threads each appending one record of RECORD_SIZE bytes per rlog_append
 * for SECONDS. IO_THREAD false reopens the log without RLOG_OPEN_THREAD
 * (the appenders hand the lead to each other). DIR is removed afterwards.
 * Dies on error. */
bench_group_result bench_group_run(const char *dir, int threads, size_t record_size, double seconds,
                                   bool io_thread);

/* A file of `size` zero bytes at path (any old file replaced), written
 * through the posix vfs and synced with rlg_os_fdatasync, as rlog
 * pre-writes its segments: the raw baselines' files (no bench calls a sync
 * system call itself). Dies on failure; close with the posix vfs. */
rlog_file *bench_prewritten(const char *path, uint64_t size);

#endif
