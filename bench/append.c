/*
 * bench/append — append throughput and latency of rlog against the raw
 * device path, in one run and one directory.
 *
 * Cases (one writer unless said):
 *   1x100      1 record of 100 B per append call, RLOG_SYNC_EACH
 *   64x100     64 records of 100 B per call
 *   64x1k      64 records of 1 KiB per call
 *   group T    RLOG_SYNC_GROUP, T = 1, 8, 32 threads, each appending
 *              1 record of 1 KiB per call (they share fdatasyncs)
 *   rotation   4 MiB segments, 16 x 1 KiB per call: the worst latency of
 *              the append calls during which a rotation happened (the
 *              metrics' rotations counter moved), against the others
 *   steady     Raft-like steady state: 8 MiB segments, 64 x 1 KiB per call,
 *              and every 4 MiB appended the prefix is deleted (as after a
 *              snapshot) down to the last 8 MiB; measured once recycling
 *              is in effect, against the raw limit (same bytes per call,
 *              pre-written file) run just before it, and once more with
 *              RLOG_OPEN_NO_RECYCLE. Write amplification = bytes written
 *              through the vfs (a counting wrapper) per payload byte, and
 *              the kernel's count (/proc/self/io write_bytes) per payload
 *              byte.
 * The raw baseline for the first three: the same bytes per call (records
 * back to back, no headers) written with one pwrite + fdatasync into a
 * pre-written (zero-filled, synced) 64 MiB file, wrapping around. rlog is
 * used only through its public API; the baseline calls the OS directly.
 *
 * Output: a table, then key=value lines (rlog_1x100_records_s=...,
 * raw_1x100_records_s=..., ratio_1x100=..., group32_vs_single=...,
 * rotation_max_append_us=..., ...).
 *
 *   append [--quick] [--seconds S] [--only single|group|rotation|steady] [--rounds N]
 *   data under $RLOG_BENCH_DIR or ./bench-data
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "os/sync.h"
#include "rlog/log.h"
#include "rlog/vfs.h"

#define RAW_FILE_SIZE    (64ull << 20)
#define ROTATION_SEGMENT (4ull << 20)
#define MAX_SAMPLES      (4u << 20)
#define STEADY_SEGMENT   (8ull << 20)
#define STEADY_SNAPSHOT  (4ull << 20) /* bytes appended between prefix deletions */

typedef struct bench_cfg {
    double seconds;   /* per case */
    const char *only; /* NULL, or the one group of cases to run */
    int rounds;       /* group and steady: interleaved rounds */
    char dir[4096];
} bench_cfg;

/* Result of one case. */
typedef struct result {
    uint64_t records, calls;
    double seconds;
    double p50_us, p99_us, p999_us, max_us;
    uint64_t syncs;     /* group: fdatasyncs the log made */
    uint64_t pipelined; /* group: rounds started right after the sync before */
    bench_usage use;    /* CPU time and context switches of the process during the case */
} result;

static const char *path_in(const bench_cfg *cfg, const char *name)
{
    static char buf[4][4200];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", cfg->dir, name);
    return b;
}

/* ---- latency samples ---- */

typedef struct samples {
    uint64_t *ns;
    size_t n, cap;
} samples;

/* Room for MAX_SAMPLES latencies; WHAT names the case if memory runs out. */
static samples samples_new(const char *what)
{
    samples s = {.ns = malloc(MAX_SAMPLES * sizeof(uint64_t)), .cap = MAX_SAMPLES};
    if (!s.ns)
        bench_die(what, "out of memory");
    return s;
}

static void samples_add(samples *s, uint64_t ns)
{
    if (s->n < s->cap)
        s->ns[s->n++] = ns;
}

/* One timed call of BATCH records that took NS: a sample, counted in R. */
static void samples_call(samples *s, result *r, uint64_t ns, size_t batch)
{
    samples_add(s, ns);
    r->calls++;
    r->records += batch;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void samples_finish(samples *s, result *r)
{
    if (!s->n)
        return;
    qsort(s->ns, s->n, sizeof *s->ns, cmp_u64);
    r->p50_us = (double)s->ns[s->n / 2] / 1e3;
    r->p99_us = (double)s->ns[(size_t)((double)s->n * 0.99)] / 1e3;
    r->p999_us = (double)s->ns[(size_t)((double)s->n * 0.999)] / 1e3;
    r->max_us = (double)s->ns[s->n - 1] / 1e3;
}

/* The timed loop ran from START to END (ns): R's time and percentiles; frees S. */
static void samples_end(samples *s, result *r, uint64_t start, uint64_t end)
{
    r->seconds = (double)(end - start) / 1e9;
    samples_finish(s, r);
    free(s->ns);
}

/* ---- raw baseline ---- */

/* The raw file goes through the posix vfs and os/sync.h like rlog's own
 * segments: the same pwrite(2) and fdatasync(2) behind the same calls,
 * without the log. */
static rlog_file *raw_prepare(const bench_cfg *cfg)
{
    return bench_prewritten(path_in(cfg, "raw.dat"), RAW_FILE_SIZE);
}

static void raw_remove(const bench_cfg *cfg, rlog_file *f)
{
    rlog_vfs *v = rlog_vfs_posix();
    v->close(v, f);
    v->unlink(v, path_in(cfg, "raw.dat"));
}

static result raw_run(const bench_cfg *cfg, rlog_file *f, size_t batch, size_t size)
{
    rlog_vfs *v = rlog_vfs_posix();
    size_t done;
    int e;
    size_t len = batch * size;
    uint8_t *buf = malloc(len);
    samples s = samples_new("raw");
    if (!buf)
        bench_die("raw", "out of memory");
    bench_fill(buf, len, 1);
    result r = {0};
    uint64_t off = 0, start = bench_now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9),
             t = start;
    while (t < end) {
        if (off + len > RAW_FILE_SIZE)
            off = 0;
        uint64_t t0 = t;
        if ((e = v->pwrite(v, f, buf, len, off, &done)) != 0)
            bench_die("pwrite raw.dat", strerror(e));
        if ((e = rlg_os_fdatasync(v, f)) != 0)
            bench_die("fdatasync raw.dat", strerror(e));
        off += len;
        t = bench_now_ns();
        samples_call(&s, &r, t - t0, batch);
    }
    samples_end(&s, &r, start, t);
    free(buf);
    return r;
}

/* ---- rlog ---- */

static rlog_log *log_open_with(const bench_cfg *cfg, const char *name, rlog_sync_mode mode,
                               uint64_t segment_size, rlog_vfs *vfs, unsigned flags)
{
    return bench_log_open(path_in(cfg, name), mode, segment_size, vfs, flags);
}

static rlog_log *log_open(const bench_cfg *cfg, const char *name, rlog_sync_mode mode,
                          uint64_t segment_size)
{
    return log_open_with(cfg, name, mode, segment_size, NULL, 0);
}

static void log_close(const bench_cfg *cfg, rlog_log *l, const char *name)
{
    int rv = rlog_close(l);
    if (rv)
        bench_die("rlog_close", rlog_strerror(rv));
    bench_rm_rf(path_in(cfg, name));
}

static rlog_record *make_records(size_t batch, size_t size, uint8_t **buf)
{
    *buf = malloc(batch * size + 1);
    rlog_record *recs = calloc(batch, sizeof *recs);
    if (!*buf || !recs)
        bench_die("records", "out of memory");
    bench_fill(*buf, batch * size, 2);
    for (size_t i = 0; i < batch; i++)
        recs[i] = (rlog_record){.type = BENCH_TYPE, .len = (uint32_t)size, .data = *buf + i * size};
    return recs;
}

static result rlog_run(const bench_cfg *cfg, size_t batch, size_t size)
{
    rlog_log *l = log_open(cfg, "rlog-single", RLOG_SYNC_EACH, 0);
    uint8_t *buf;
    rlog_record *recs = make_records(batch, size, &buf);
    samples s = samples_new("rlog");
    result r = {0};
    bench_usage u0 = bench_usage_now();
    uint64_t start = bench_now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9), t = start;
    while (t < end) {
        uint64_t t0 = t;
        int rv = rlog_append(l, recs, batch, NULL);
        if (rv)
            bench_die("rlog_append", rlog_errmsg(l));
        t = bench_now_ns();
        samples_call(&s, &r, t - t0, batch);
    }
    r.use = bench_usage_since(u0, bench_usage_now());
    samples_end(&s, &r, start, t);
    log_close(cfg, l, "rlog-single");
    free(recs);
    free(buf);
    return r;
}

/* ---- group commit (bench/common: bench/rocksdb_sync runs the same case) ---- */

static result group_run(const bench_cfg *cfg, int threads, bool io_thread)
{
    bench_group_result g =
        bench_group_run(path_in(cfg, "rlog-group"), threads, 1024, cfg->seconds, io_thread);
    return (result){.records = g.records,
                    .calls = g.records,
                    .seconds = g.seconds,
                    .max_us = g.max_us,
                    .syncs = g.syncs,
                    .pipelined = g.pipelined,
                    .use = g.use};
}

/* ---- rotation ---- */

typedef struct rotation_result {
    uint64_t rotations, stalls, calls;
    double max_rot_us, max_other_us, p99_other_us;
} rotation_result;

static rotation_result rotation_run(const bench_cfg *cfg)
{
    rlog_log *l = log_open(cfg, "rlog-rotation", RLOG_SYNC_EACH, ROTATION_SEGMENT);
    uint8_t *buf;
    const size_t batch = 16;
    rlog_record *recs = make_records(batch, 1024, &buf);
    samples other = samples_new("rotation");
    rotation_result rr = {0};
    uint64_t max_rot = 0;
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    uint64_t rot0 = m.rotations, stalls0 = m.prepare_stalls, rot = rot0;
    /* at least the configured time, and at least 10 rotations (bounded) */
    uint64_t start = bench_now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9);
    uint64_t hard_end = start + (uint64_t)(cfg->seconds * 4e9);
    for (uint64_t t = start; t < hard_end && (t < end || rot - rot0 < 10);) {
        uint64_t t0 = bench_now_ns();
        int rv = rlog_append(l, recs, batch, NULL);
        t = bench_now_ns();
        if (rv)
            bench_die("rlog_append (rotation)", rlog_errmsg(l));
        rlog_metrics_get(l, &m);
        if (m.rotations != rot) {
            if (t - t0 > max_rot)
                max_rot = t - t0;
            rot = m.rotations;
        } else {
            samples_add(&other, t - t0);
        }
        rr.calls++;
    }
    rr.rotations = rot - rot0;
    rr.stalls = m.prepare_stalls - stalls0;
    rr.max_rot_us = (double)max_rot / 1e3;
    result r = {0};
    samples_finish(&other, &r);
    rr.max_other_us = r.max_us;
    rr.p99_other_us = r.p99_us;
    log_close(cfg, l, "rlog-rotation");
    free(other.ns);
    free(recs);
    free(buf);
    return rr;
}

/* ---- steady state ---- */

/* write_bytes of /proc/self/io: what this process sent to the storage
 * layer (0 when unreadable). */
static uint64_t proc_write_bytes(void)
{
    FILE *fp = fopen("/proc/self/io", "r");
    char line[128];
    uint64_t v = 0;
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "write_bytes: %" SCNu64, &v) == 1)
            break;
    if (fp)
        fclose(fp);
    return v;
}

typedef struct steady_result {
    result r;
    double wa_vfs, wa_kernel; /* bytes written per payload byte */
    uint64_t recycled, prepared, deletions;
} steady_result;

/* Appends 64 x 1 KiB per call for cfg->seconds once the log is in steady
 * state (with recycling: two segments made from deleted ones; without:
 * two prefix deletions), deleting the prefix every STEADY_SNAPSHOT bytes. */
static steady_result steady_run(const bench_cfg *cfg, bool recycle)
{
    const char *name = recycle ? "rlog-steady" : "rlog-steady-norecycle";
    rlog_log *l = log_open_with(cfg, name, RLOG_SYNC_EACH, STEADY_SEGMENT, bench_counting_vfs(),
                                recycle ? 0 : RLOG_OPEN_NO_RECYCLE);
    const size_t batch = 64, size = 1024;
    uint8_t *buf;
    rlog_record *recs = make_records(batch, size, &buf);
    samples s = samples_new("steady");
    const uint64_t keep = STEADY_SEGMENT / (size + 28), every = STEADY_SNAPSHOT / (size + 28);
    uint64_t since = 0, deletions = 0, warm_deletions = 0;
    bool measuring = false;
    steady_result sr = {0};
    uint64_t start = 0, end = 0, t = bench_now_ns(), warm_end = t + (uint64_t)(cfg->seconds * 10e9);
    uint64_t vfs0 = 0, io0 = 0, rec0 = 0, prep0 = 0;
    rlog_metrics m;
    for (;;) {
        if (!measuring) {
            rlog_metrics_get(l, &m);
            bool warm = recycle ? m.segments_recycled >= 2 : deletions >= 2;
            if (warm || t > warm_end) {
                measuring = true;
                start = t = bench_now_ns();
                end = start + (uint64_t)(cfg->seconds * 1e9);
                vfs0 = atomic_load(&bench_vfs_written);
                io0 = proc_write_bytes();
                rec0 = m.segments_recycled;
                prep0 = m.segments_prepared;
                warm_deletions = deletions;
            }
        } else if (t >= end) {
            break;
        }
        uint64_t t0 = t;
        int rv = rlog_append(l, recs, batch, NULL);
        if (rv)
            bench_die("rlog_append (steady)", rlog_errmsg(l));
        since += batch;
        if (since >= every) { /* a snapshot: the log keeps its last `keep` records */
            rlog_positions p;
            rlog_positions_get(l, &p);
            if (p.durable > keep && rlog_delete_prefix(l, p.durable - keep, NULL) == 0)
                deletions++;
            since = 0;
        }
        t = bench_now_ns();
        if (measuring)
            samples_call(&s, &sr.r, t - t0, batch);
    }
    samples_end(&s, &sr.r, start, t);
    double payload = (double)sr.r.records * (double)size;
    sr.wa_vfs = (double)(atomic_load(&bench_vfs_written) - vfs0) / payload;
    sr.wa_kernel = (double)(proc_write_bytes() - io0) / payload;
    rlog_metrics_get(l, &m);
    sr.recycled = m.segments_recycled - rec0;
    sr.prepared = m.segments_prepared - prep0;
    sr.deletions = deletions - warm_deletions;
    log_close(cfg, l, name);
    free(recs);
    free(buf);
    return sr;
}

/* ---- main ---- */

static double rate(const result *r)
{
    return bench_rate(r->records, r->seconds);
}

static double per_sync(const result *r)
{
    return bench_per_sync(r->records, r->syncs);
}

static double cpu_per_record(const result *r)
{
    return r->records ? r->use.cpu_us / (double)r->records : 0;
}

static double csw_per_sync(const result *r)
{
    return r->syncs ? (double)r->use.csw / (double)r->syncs : 0;
}

static double csw_per_record(const result *r)
{
    return r->records ? (double)r->use.csw / (double)r->records : 0;
}

/* Share of the syncs whose round started right after the sync before. */
static double pipelined_share(const result *r)
{
    return r->syncs ? (double)r->pipelined / (double)r->syncs : 0;
}

static void parse_args(int argc, char **argv, bench_cfg *cfg)
{
    cfg->seconds = 2.0;
    cfg->rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            cfg->seconds = 0.4;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            cfg->only = argv[++i];
            if (strcmp(cfg->only, "single") && strcmp(cfg->only, "group") &&
                strcmp(cfg->only, "rotation") && strcmp(cfg->only, "steady"))
                bench_die("--only", "single, group, rotation or steady");
        } else if (!bench_common_arg(argc, argv, &i, &cfg->rounds, &cfg->seconds)) {
            fprintf(stderr,
                    "usage: append [--quick] [--seconds S] "
                    "[--only single|group|rotation|steady] [--rounds N]\n" BENCH_USAGE_DATA);
            exit(strcmp(argv[i], "--help") == 0 ? 0 : 3);
        }
    }
    snprintf(cfg->dir, sizeof cfg->dir, "%s", bench_data_root());
}

typedef struct single_case {
    const char *key, *label;
    size_t batch, size;
    result rlog, raw;
} single_case;

static bool want(const bench_cfg *cfg, const char *name)
{
    return !cfg->only || strcmp(cfg->only, name) == 0;
}

static void run_single(const bench_cfg *cfg)
{
    single_case cases[] = {
        {"1x100", "1 x 100 B per sync", 1, 100, {0}, {0}},
        {"64x100", "64 x 100 B per sync", 64, 100, {0}, {0}},
        {"64x1k", "64 x 1 KiB per sync", 64, 1024, {0}, {0}},
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    rlog_file *raw_f = raw_prepare(cfg);
    printf("%-26s %12s %12s %7s %9s %9s %9s\n", "case", "rlog rec/s", "raw rec/s", "ratio",
           "p50 us", "p99 us", "max us");
    for (size_t i = 0; i < ncases; i++) {
        single_case *c = &cases[i];
        c->raw = raw_run(cfg, raw_f, c->batch, c->size);
        c->rlog = rlog_run(cfg, c->batch, c->size);
        printf("%-26s %12.0f %12.0f %7.3f %9.1f %9.1f %9.1f\n", c->label, rate(&c->rlog),
               rate(&c->raw), rate(&c->rlog) / rate(&c->raw), c->rlog.p50_us, c->rlog.p99_us,
               c->rlog.max_us);
    }
    raw_remove(cfg, raw_f);
    for (size_t i = 0; i < ncases; i++) {
        single_case *c = &cases[i];
        printf("rlog_%s_records_s=%.0f\nraw_%s_records_s=%.0f\nratio_%s=%.3f\n"
               "rlog_%s_p99_us=%.1f\nrlog_%s_max_us=%.1f\n",
               c->key, rate(&c->rlog), c->key, rate(&c->raw), c->key,
               rate(&c->rlog) / rate(&c->raw), c->key, c->rlog.p99_us, c->key, c->rlog.max_us);
    }
}

static void add_result(result *sum, const result *r)
{
    sum->records += r->records;
    sum->seconds += r->seconds;
    sum->syncs += r->syncs;
    sum->pipelined += r->pipelined;
    sum->use.cpu_us += r->use.cpu_us;
    sum->use.csw += r->use.csw;
    if (r->max_us > sum->max_us)
        sum->max_us = r->max_us;
}

/* Group commit. The disk is shared and noisy: the cases run in rounds,
 * interleaved, and the ratios are of the totals (each round's too). */
static void run_group(const bench_cfg *cfg)
{
    enum { G1, G8, G32, G32H, LIMIT, NG };
    const char *label[NG] = {"group 1 thr x 1 KiB", "group 8 thr x 1 KiB", "group 32 thr x 1 KiB",
                             "group 32, no I/O thread", "1 thr x 32 x 1 KiB (limit)"};
    result sum[NG] = {{0}};
    for (int round = 0; round < cfg->rounds; round++) {
        result r[NG];
        r[G1] = group_run(cfg, 1, true);
        r[G8] = group_run(cfg, 8, true);
        if (round % 2) { /* alternate their order: the disk drifts */
            r[G32H] = group_run(cfg, 32, false);
            r[G32] = group_run(cfg, 32, true);
        } else {
            r[G32] = group_run(cfg, 32, true);
            r[G32H] = group_run(cfg, 32, false);
        }
        r[LIMIT] = rlog_run(cfg, 32, 1024);
        r[LIMIT].syncs = r[LIMIT].calls;
        for (int i = 0; i < NG; i++)
            add_result(&sum[i], &r[i]);
        printf("round %d: group32/limit %.3f, group32/single %.1f, no I/O thread/limit %.3f "
               "(group32: %.1f records/sync, %.1f cpu us/record, %.1f csw/sync, "
               "%.2f csw/record, %.2f of syncs pipelined)\n",
               round + 1, rate(&r[G32]) / rate(&r[LIMIT]), rate(&r[G32]) / rate(&r[G1]),
               rate(&r[G32H]) / rate(&r[LIMIT]), per_sync(&r[G32]), cpu_per_record(&r[G32]),
               csw_per_sync(&r[G32]), csw_per_record(&r[G32]), pipelined_share(&r[G32]));
    }
    printf("%-26s %12s %9s %9s %9s %9s %9s %9s\n", "case", "records/s", "max us", "rec/sync",
           "cpu us/rec", "csw/sync", "csw/rec", "pipelined");
    for (int i = 0; i < NG; i++)
        printf("%-26s %12.0f %9.1f %9.1f %9.1f %9.1f %9.2f %9.2f\n", label[i], rate(&sum[i]),
               sum[i].max_us, per_sync(&sum[i]), cpu_per_record(&sum[i]), csw_per_sync(&sum[i]),
               csw_per_record(&sum[i]), pipelined_share(&sum[i]));
    printf("group1_records_s=%.0f\ngroup8_records_s=%.0f\ngroup32_records_s=%.0f\n"
           "group32_records_per_sync=%.1f\ngroup32_noiothread_records_s=%.0f\n"
           "group32_noiothread_records_per_sync=%.1f\ngroup_limit_records_s=%.0f\n",
           rate(&sum[G1]), rate(&sum[G8]), rate(&sum[G32]), per_sync(&sum[G32]), rate(&sum[G32H]),
           per_sync(&sum[G32H]), rate(&sum[LIMIT]));
    printf("group32_vs_single=%.2f\ngroup32_vs_limit=%.3f\ngroup32_noiothread_vs_limit=%.3f\n",
           rate(&sum[G32]) / rate(&sum[G1]), rate(&sum[G32]) / rate(&sum[LIMIT]),
           rate(&sum[G32H]) / rate(&sum[LIMIT]));
    printf("group1_cpu_us_per_record=%.1f\ngroup32_cpu_us_per_record=%.1f\n"
           "limit_cpu_us_per_record=%.1f\ngroup1_csw_per_sync=%.1f\ngroup32_csw_per_sync=%.1f\n"
           "limit_csw_per_sync=%.1f\n",
           cpu_per_record(&sum[G1]), cpu_per_record(&sum[G32]), cpu_per_record(&sum[LIMIT]),
           csw_per_sync(&sum[G1]), csw_per_sync(&sum[G32]), csw_per_sync(&sum[LIMIT]));
    printf("group32_csw_per_record=%.2f\ngroup32_pipelined_share=%.2f\n", csw_per_record(&sum[G32]),
           pipelined_share(&sum[G32]));
}

static void run_rotation(const bench_cfg *cfg)
{
    rotation_result rot = rotation_run(cfg);
    printf("\nrotation (4 MiB segments, 16 x 1 KiB per sync): %" PRIu64 " rotations in %" PRIu64
           " appends, %" PRIu64 " inline prepares\n"
           "  worst append across a rotation %.1f us; other appends: p99 %.1f us, max %.1f us\n\n",
           rot.rotations, rot.calls, rot.stalls, rot.max_rot_us, rot.p99_other_us,
           rot.max_other_us);
    printf("rotations=%" PRIu64 "\nrotation_prepare_stalls=%" PRIu64 "\n", rot.rotations,
           rot.stalls);
    printf("rotation_max_append_us=%.1f\nrotation_other_max_us=%.1f\n", rot.max_rot_us,
           rot.max_other_us);
}

static void steady_row(const char *label, const result *r, double ratio, double wa_vfs,
                       double wa_kernel)
{
    printf("%-24s %10.0f %6.3f %8.1f %8.1f %8.1f %9.1f %7.3f %7.3f\n", label, rate(r), ratio,
           r->p50_us, r->p99_us, r->p999_us, r->max_us, wa_vfs, wa_kernel);
}

static void add_steady(steady_result *sum, const steady_result *r)
{
    add_result(&sum->r, &r->r);
    sum->wa_vfs += r->wa_vfs * (double)r->r.records; /* weighted; divided at the end */
    sum->wa_kernel += r->wa_kernel * (double)r->r.records;
    sum->recycled += r->recycled;
    sum->prepared += r->prepared;
    sum->deletions += r->deletions;
}

static void run_steady(const bench_cfg *cfg)
{
    const size_t batch = 64, size = 1024;
    steady_result sum[3];
    memset(sum, 0, sizeof sum);
    for (int round = 0; round < cfg->rounds; round++) {
        rlog_file *raw_f = raw_prepare(cfg);
        uint64_t io0 = proc_write_bytes();
        steady_result r[3];
        memset(r, 0, sizeof r);
        r[0].r = raw_run(cfg, raw_f, batch, size);
        r[0].wa_vfs = 1.0;
        r[0].wa_kernel =
            (double)(proc_write_bytes() - io0) / ((double)r[0].r.records * (double)size);
        raw_remove(cfg, raw_f);
        r[1] = steady_run(cfg, true);
        r[2] = steady_run(cfg, false);
        printf("round %d: rlog/raw %.3f (p99 %.0f vs %.0f us, max %.0f vs %.0f us), "
               "no recycling/raw %.3f\n",
               round + 1, rate(&r[1].r) / rate(&r[0].r), r[1].r.p99_us, r[0].r.p99_us,
               r[1].r.max_us, r[0].r.max_us, rate(&r[2].r) / rate(&r[0].r));
        for (int i = 0; i < 3; i++) {
            /* percentiles: the worst round's (the samples are not kept) */
            steady_result *t = &sum[i];
            double p50 = t->r.p50_us, p99 = t->r.p99_us, p999 = t->r.p999_us;
            add_steady(t, &r[i]);
            t->r.p50_us = r[i].r.p50_us > p50 ? r[i].r.p50_us : p50;
            t->r.p99_us = r[i].r.p99_us > p99 ? r[i].r.p99_us : p99;
            t->r.p999_us = r[i].r.p999_us > p999 ? r[i].r.p999_us : p999;
        }
    }
    for (int i = 0; i < 3; i++) {
        sum[i].wa_vfs /= (double)sum[i].r.records;
        sum[i].wa_kernel /= (double)sum[i].r.records;
    }
    const steady_result *raw = &sum[0], *on = &sum[1], *off = &sum[2];
    printf("\nsteady state (8 MiB segments, 64 x 1 KiB per sync, prefix deleted every 4 MiB; "
           "%d rounds: rates of the totals, latencies of the worst round):\n",
           cfg->rounds);
    printf("%-24s %10s %6s %8s %8s %8s %9s %7s %7s\n", "", "rec/s", "ratio", "p50 us", "p99 us",
           "p99.9 us", "max us", "WA vfs", "WA krnl");
    steady_row("raw pre-written file", &raw->r, 1.0, 1.0, raw->wa_kernel);
    steady_row("rlog, recycling", &on->r, rate(&on->r) / rate(&raw->r), on->wa_vfs, on->wa_kernel);
    steady_row("rlog, no recycling", &off->r, rate(&off->r) / rate(&raw->r), off->wa_vfs,
               off->wa_kernel);
    printf("  recycling: %" PRIu64 " segments recycled, %" PRIu64 " zero-filled, %" PRIu64
           " prefix deletions while measured; without: %" PRIu64 " zero-filled\n"
           "  (WA krnl: /proc/self/io write_bytes per payload byte; it counts whole dirtied\n"
           "   page-cache folios, so compare it with the raw row, not with 1)\n\n",
           on->recycled, on->prepared, on->deletions, off->prepared);
    const struct {
        const char *key;
        const steady_result *r;
    } rows[] = {{"raw", raw}, {"rlog", on}, {"norecycle", off}};
    for (size_t i = 0; i < 3; i++)
        printf("steady_%s_records_s=%.0f\nsteady_%s_p50_us=%.1f\nsteady_%s_p99_us=%.1f\n"
               "steady_%s_p999_us=%.1f\nsteady_%s_max_us=%.1f\nsteady_%s_wa_vfs=%.3f\n"
               "steady_%s_wa_kernel=%.3f\n",
               rows[i].key, rate(&rows[i].r->r), rows[i].key, rows[i].r->r.p50_us, rows[i].key,
               rows[i].r->r.p99_us, rows[i].key, rows[i].r->r.p999_us, rows[i].key,
               rows[i].r->r.max_us, rows[i].key, rows[i].r->wa_vfs, rows[i].key,
               rows[i].r->wa_kernel);
    printf("steady_ratio=%.3f\nsteady_norecycle_ratio=%.3f\nsteady_max_vs_raw_max=%.2f\n",
           rate(&on->r) / rate(&raw->r), rate(&off->r) / rate(&raw->r),
           on->r.max_us / raw->r.max_us);
    printf("steady_recycled=%" PRIu64 "\nsteady_zero_filled=%" PRIu64 "\n", on->recycled,
           on->prepared);
}

int main(int argc, char **argv)
{
    bench_cfg cfg = {0};
    parse_args(argc, argv, &cfg);
    bench_fresh_dir(cfg.dir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("bench/append: %.1f s per case, data in %s\n\n", cfg.seconds, cfg.dir);
    if (want(&cfg, "single"))
        run_single(&cfg);
    if (want(&cfg, "group"))
        run_group(&cfg);
    if (want(&cfg, "rotation"))
        run_rotation(&cfg);
    if (want(&cfg, "steady"))
        run_steady(&cfg);
    bench_rm_rf(cfg.dir);
    return 0;
}
