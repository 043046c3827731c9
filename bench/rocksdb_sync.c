/*
 * bench/rocksdb_sync — rlog's group commit against RocksDB's, in one run
 * and on one disk.
 *
 * Both sides: T threads (default 32), each writing one 1 KiB value per
 * call and waiting until it is durable, for --seconds:
 *   rocksdb   rocksdb_put with WriteOptions sync=true into a fresh database
 *             (default options but create_if_missing; the WAL is synced
 *             with fdatasync, RocksDB's own write groups share the sync);
 *             key "t<thread>-<counter>", 16 bytes;
 *   rlog      the group-commit case of bench/append (bench/common:
 *             RLOG_SYNC_GROUP, RLOG_OPEN_THREAD, one 1 KiB record per
 *             rlog_append).
 * The two run in --rounds rounds, in alternating order (the shared disk
 * drifts); each round's ratio is printed, then the rates of the totals.
 * WAL syncs come from RocksDB's statistics (rocksdb.wal.synced), rlog's
 * from its metrics, so the records per sync of both are printed too: both
 * sides are bound by the disk's sync rate, and per_sync_ratio (rlog's
 * records per sync over RocksDB's puts per sync) is the count behind the
 * timed ratio, and its ceiling when both sync equally fast.
 *
 * Built only when CMake finds librocksdb-dev (the comparison is optional).
 *
 * Output: per-round lines, then key=value lines (rocksdb_puts_s,
 * rlog_records_s, rlog_vs_rocksdb, ...).
 *
 *   rocksdb_sync [--threads T] [--seconds S] [--rounds N]
 *   data under $RLOG_BENCH_DIR or ./bench-data (removed at the end)
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "bench/common/bench_util.h"

#define RECORD_SIZE 1024

typedef struct cfg {
    int threads, rounds;
    double seconds;
    char dir[4096];
} cfg;

typedef struct run {
    uint64_t records, syncs;
    double seconds;
} run;

typedef struct rdb_ctx {
    rocksdb_t *db;
    rocksdb_writeoptions_t *wo;
    atomic_uint_fast64_t puts;
} rdb_ctx;

static void rdb_worker(void *data, int idx, const atomic_bool *stop)
{
    rdb_ctx *c = data;
    uint8_t val[RECORD_SIZE];
    bench_fill(val, sizeof val, (uint64_t)idx);
    char key[32];
    uint64_t n = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        int klen = snprintf(key, sizeof key, "t%02d-%012" PRIu64, idx % 100, n);
        char *err = NULL;
        rocksdb_put(c->db, c->wo, key, (size_t)klen, (const char *)val, sizeof val, &err);
        if (err)
            bench_die("rocksdb_put", err);
        n++;
    }
    atomic_fetch_add(&c->puts, n);
}

/* "rocksdb.wal.synced COUNT : N" of the statistics string (0 if absent). */
static uint64_t wal_syncs(rocksdb_options_t *o)
{
    char *s = rocksdb_options_statistics_get_string(o);
    uint64_t v = 0;
    const char *at = s ? strstr(s, "rocksdb.wal.synced COUNT : ") : NULL;
    if (at)
        v = strtoull(at + strlen("rocksdb.wal.synced COUNT : "), NULL, 10);
    rocksdb_free(s);
    return v;
}

static run rocksdb_run(const cfg *c, const char *dir)
{
    bench_rm_rf(dir);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_enable_statistics(o);
    char *err = NULL;
    rdb_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        bench_die("rocksdb", "out of memory");
    ctx->db = rocksdb_open(o, dir, &err);
    if (err)
        bench_die(dir, err);
    ctx->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(ctx->wo, 1);
    uint64_t syncs0 = wal_syncs(o);
    double seconds = bench_threads_run(c->threads, c->seconds, rdb_worker, ctx);
    run r = {
        .records = atomic_load(&ctx->puts), .seconds = seconds, .syncs = wal_syncs(o) - syncs0};
    rocksdb_writeoptions_destroy(ctx->wo);
    rocksdb_close(ctx->db);
    rocksdb_options_destroy(o);
    bench_rm_rf(dir);
    free(ctx);
    return r;
}

static run rlog_run(const cfg *c, const char *dir)
{
    bench_group_result g = bench_group_run(dir, c->threads, RECORD_SIZE, c->seconds, true);
    return (run){.records = g.records, .seconds = g.seconds, .syncs = g.syncs};
}

static void parse_args(int argc, char **argv, cfg *c)
{
    c->threads = 32;
    c->rounds = 3;
    c->seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            c->threads = atoi(argv[++i]);
            if (c->threads < 1 || c->threads > 1024)
                bench_die("--threads", "must be in 1 .. 1024");
        } else if (!bench_common_arg(argc, argv, &i, &c->rounds, &c->seconds)) {
            fprintf(
                stderr,
                "usage: rocksdb_sync [--threads T] [--seconds S] [--rounds N]\n" BENCH_USAGE_DATA);
            exit(strcmp(argv[i], "--help") == 0 ? 0 : 3);
        }
    }
    snprintf(c->dir, sizeof c->dir, "%s", bench_data_root());
}

int main(int argc, char **argv)
{
    cfg c;
    parse_args(argc, argv, &c);
    bench_fresh_dir(c.dir);
    char rdir[4200], ldir[4200];
    snprintf(rdir, sizeof rdir, "%s/rocksdb", c.dir);
    snprintf(ldir, sizeof ldir, "%s/rlog-group", c.dir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf(
        "bench/rocksdb_sync: %d threads x %d B, sync, %.1f s per case, %d rounds, data in %s\n\n",
        c.threads, RECORD_SIZE, c.seconds, c.rounds, c.dir);
    run sum_r = {0}, sum_l = {0};
    for (int round = 0; round < c.rounds; round++) {
        run r, l;
        if (round % 2) {
            l = rlog_run(&c, ldir);
            r = rocksdb_run(&c, rdir);
        } else {
            r = rocksdb_run(&c, rdir);
            l = rlog_run(&c, ldir);
        }
        printf("round %d: rocksdb %.0f puts/s (%.1f per WAL sync), rlog %.0f records/s "
               "(%.1f per sync), rlog/rocksdb %.2f\n",
               round + 1, bench_rate(r.records, r.seconds), bench_per_sync(r.records, r.syncs),
               bench_rate(l.records, l.seconds), bench_per_sync(l.records, l.syncs),
               bench_rate(l.records, l.seconds) / bench_rate(r.records, r.seconds));
        sum_r.records += r.records;
        sum_r.seconds += r.seconds;
        sum_r.syncs += r.syncs;
        sum_l.records += l.records;
        sum_l.seconds += l.seconds;
        sum_l.syncs += l.syncs;
    }
    printf("\nthreads=%d\nrecord_bytes=%d\nrocksdb_puts_s=%.0f\nrocksdb_puts_per_sync=%.1f\n"
           "rocksdb_syncs_s=%.0f\nrlog_records_s=%.0f\nrlog_records_per_sync=%.1f\n"
           "rlog_syncs_s=%.0f\nrlog_vs_rocksdb=%.2f\nper_sync_ratio=%.2f\n",
           c.threads, RECORD_SIZE, bench_rate(sum_r.records, sum_r.seconds),
           bench_per_sync(sum_r.records, sum_r.syncs), (double)sum_r.syncs / sum_r.seconds,
           bench_rate(sum_l.records, sum_l.seconds), bench_per_sync(sum_l.records, sum_l.syncs),
           (double)sum_l.syncs / sum_l.seconds,
           bench_rate(sum_l.records, sum_l.seconds) / bench_rate(sum_r.records, sum_r.seconds),
           bench_per_sync(sum_l.records, sum_l.syncs) / bench_per_sync(sum_r.records, sum_r.syncs));
    bench_rm_rf(c.dir);
    return 0;
}
