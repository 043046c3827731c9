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
 * The raw baseline for the first three: the same bytes per call (records
 * back to back, no headers) written with one pwrite + fdatasync into a
 * pre-written (zero-filled, synced) 64 MiB file, wrapping around. rlog is
 * used only through its public API; the baseline calls the OS directly.
 *
 * Output: a table, then key=value lines (rlog_1x100_records_s=...,
 * raw_1x100_records_s=..., ratio_1x100=..., group32_vs_single=...,
 * rotation_max_append_us=..., ...).
 *
 *   append [--quick] [--seconds S]    data under $RLOG_BENCH_DIR or ./bench-data
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rlog/log.h"

#define BENCH_TYPE       RLOG_TYPE_USER_MIN
#define RAW_FILE_SIZE    (64ull << 20)
#define ROTATION_SEGMENT (4ull << 20)
#define MAX_SAMPLES      (4u << 20)

typedef struct bench_cfg {
    double seconds; /* per case */
    char dir[4096];
} bench_cfg;

/* Result of one case. */
typedef struct result {
    uint64_t records, calls;
    double seconds;
    double p50_us, p99_us, max_us;
    uint64_t syncs; /* group: fdatasyncs the log made */
} result;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench/append: %s: %s\n", what, detail);
    exit(1);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

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

static void samples_add(samples *s, uint64_t ns)
{
    if (s->n < s->cap)
        s->ns[s->n++] = ns;
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
    r->max_us = (double)s->ns[s->n - 1] / 1e3;
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

/* ---- raw baseline ---- */

static int raw_prepare(const bench_cfg *cfg)
{
    const char *path = path_in(cfg, "raw.dat");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(path, strerror(errno));
    static uint8_t zeros[1 << 20];
    for (uint64_t off = 0; off < RAW_FILE_SIZE; off += sizeof zeros)
        if (pwrite(fd, zeros, sizeof zeros, (off_t)off) != (ssize_t)sizeof zeros)
            die("pre-writing raw.dat", strerror(errno));
    if (fdatasync(fd))
        die("fdatasync raw.dat", strerror(errno));
    return fd;
}

static result raw_run(const bench_cfg *cfg, int fd, size_t batch, size_t size)
{
    size_t len = batch * size;
    uint8_t *buf = malloc(len);
    samples s = {.ns = malloc(MAX_SAMPLES * sizeof(uint64_t)), .cap = MAX_SAMPLES};
    if (!buf || !s.ns)
        die("raw", "out of memory");
    fill(buf, len, 1);
    result r = {0};
    uint64_t off = 0, start = now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9), t = start;
    while (t < end) {
        if (off + len > RAW_FILE_SIZE)
            off = 0;
        uint64_t t0 = t;
        if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
            die("pwrite raw.dat", strerror(errno));
        if (fdatasync(fd))
            die("fdatasync raw.dat", strerror(errno));
        off += len;
        t = now_ns();
        samples_add(&s, t - t0);
        r.calls++;
        r.records += batch;
    }
    r.seconds = (double)(t - start) / 1e9;
    samples_finish(&s, &r);
    free(s.ns);
    free(buf);
    return r;
}

/* ---- rlog ---- */

static rlog_log *log_open(const bench_cfg *cfg, const char *name, rlog_sync_mode mode,
                          uint64_t segment_size)
{
    const char *dir = path_in(cfg, name);
    rm_rf(dir);
    rlog_options o;
    rlog_options_init(&o);
    o.sync = mode;
    o.segment_size = segment_size;
    o.flags = RLOG_OPEN_CREATE | RLOG_OPEN_THREAD;
    rlog_log *l = NULL;
    rlog_open_report rep;
    int rv = rlog_open(dir, &o, &l, &rep);
    if (rv)
        die(dir, rep.message[0] ? rep.message : rlog_strerror(rv));
    /* Let the background thread prepare the next segment before timing:
     * zero-filling it would otherwise compete with the measured syncs. */
    rlog_metrics m;
    uint64_t deadline = now_ns() + 5000000000ull;
    do {
        rlog_metrics_get(l, &m);
        if (m.segments_prepared >= 2)
            break;
        usleep(10000);
    } while (now_ns() < deadline);
    return l;
}

static void log_close(const bench_cfg *cfg, rlog_log *l, const char *name)
{
    int rv = rlog_close(l);
    if (rv)
        die("rlog_close", rlog_strerror(rv));
    rm_rf(path_in(cfg, name));
}

static rlog_record *make_records(size_t batch, size_t size, uint8_t **buf)
{
    *buf = malloc(batch * size + 1);
    rlog_record *recs = calloc(batch, sizeof *recs);
    if (!*buf || !recs)
        die("records", "out of memory");
    fill(*buf, batch * size, 2);
    for (size_t i = 0; i < batch; i++)
        recs[i] = (rlog_record){.type = BENCH_TYPE, .len = (uint32_t)size, .data = *buf + i * size};
    return recs;
}

static result rlog_run(const bench_cfg *cfg, size_t batch, size_t size)
{
    rlog_log *l = log_open(cfg, "rlog-single", RLOG_SYNC_EACH, 0);
    uint8_t *buf;
    rlog_record *recs = make_records(batch, size, &buf);
    samples s = {.ns = malloc(MAX_SAMPLES * sizeof(uint64_t)), .cap = MAX_SAMPLES};
    if (!s.ns)
        die("rlog", "out of memory");
    result r = {0};
    uint64_t start = now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9), t = start;
    while (t < end) {
        uint64_t t0 = t;
        int rv = rlog_append(l, recs, batch, NULL);
        if (rv)
            die("rlog_append", rlog_errmsg(l));
        t = now_ns();
        samples_add(&s, t - t0);
        r.calls++;
        r.records += batch;
    }
    r.seconds = (double)(t - start) / 1e9;
    samples_finish(&s, &r);
    log_close(cfg, l, "rlog-single");
    free(s.ns);
    free(recs);
    free(buf);
    return r;
}

/* ---- group commit ---- */

typedef struct group_ctx {
    rlog_log *log;
    atomic_bool stop;
    atomic_uint_fast64_t records;
    uint64_t max_ns[64];
} group_ctx;

typedef struct group_arg {
    group_ctx *g;
    int idx;
} group_arg;

static void *group_thread(void *p)
{
    group_arg *a = p;
    uint8_t buf[1024];
    fill(buf, sizeof buf, (uint64_t)a->idx);
    rlog_record rec = {.type = BENCH_TYPE, .len = sizeof buf, .data = buf};
    uint64_t n = 0, max = 0;
    while (!atomic_load_explicit(&a->g->stop, memory_order_relaxed)) {
        uint64_t t0 = now_ns();
        int rv = rlog_append(a->g->log, &rec, 1, NULL);
        if (rv)
            die("rlog_append (group)", rlog_strerror(rv));
        uint64_t d = now_ns() - t0;
        if (d > max)
            max = d;
        n++;
    }
    atomic_fetch_add(&a->g->records, n);
    a->g->max_ns[a->idx % 64] = max > a->g->max_ns[a->idx % 64] ? max : a->g->max_ns[a->idx % 64];
    return NULL;
}

static result group_run(const bench_cfg *cfg, int threads)
{
    group_ctx *g = calloc(1, sizeof *g);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    group_arg *args = calloc((size_t)threads, sizeof *args);
    if (!g || !tids || !args)
        die("group", "out of memory");
    g->log = log_open(cfg, "rlog-group", RLOG_SYNC_GROUP, 0);
    uint64_t start = now_ns();
    for (int i = 0; i < threads; i++) {
        args[i] = (group_arg){.g = g, .idx = i};
        if (pthread_create(&tids[i], NULL, group_thread, &args[i]))
            die("pthread_create", strerror(errno));
    }
    usleep((useconds_t)(cfg->seconds * 1e6));
    atomic_store(&g->stop, true);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    result r = {0};
    r.seconds = (double)(now_ns() - start) / 1e9;
    r.records = r.calls = atomic_load(&g->records);
    for (int i = 0; i < 64; i++)
        if ((double)g->max_ns[i] / 1e3 > r.max_us)
            r.max_us = (double)g->max_ns[i] / 1e3;
    rlog_metrics m;
    rlog_metrics_get(g->log, &m);
    r.syncs = m.syncs;
    log_close(cfg, g->log, "rlog-group");
    free(args);
    free(tids);
    free(g);
    return r;
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
    samples other = {.ns = malloc(MAX_SAMPLES * sizeof(uint64_t)), .cap = MAX_SAMPLES};
    if (!other.ns)
        die("rotation", "out of memory");
    rotation_result rr = {0};
    uint64_t max_rot = 0;
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    uint64_t rot0 = m.rotations, stalls0 = m.prepare_stalls, rot = rot0;
    /* at least the configured time, and at least 10 rotations (bounded) */
    uint64_t start = now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9);
    uint64_t hard_end = start + (uint64_t)(cfg->seconds * 4e9);
    for (uint64_t t = start; t < hard_end && (t < end || rot - rot0 < 10);) {
        uint64_t t0 = now_ns();
        int rv = rlog_append(l, recs, batch, NULL);
        t = now_ns();
        if (rv)
            die("rlog_append (rotation)", rlog_errmsg(l));
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

/* ---- main ---- */

static double rate(const result *r)
{
    return r->seconds > 0 ? (double)r->records / r->seconds : 0;
}

static double per_sync(const result *r)
{
    return r->syncs ? (double)r->records / (double)r->syncs : 0;
}

static void parse_args(int argc, char **argv, bench_cfg *cfg)
{
    cfg->seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            cfg->seconds = 0.4;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            cfg->seconds = atof(argv[++i]);
            if (cfg->seconds <= 0 || cfg->seconds > 600)
                die("--seconds", "must be in (0, 600]");
        } else {
            fprintf(stderr, "usage: append [--quick] [--seconds S]\n"
                            "  data directory: $RLOG_BENCH_DIR or ./bench-data (removed at the "
                            "end)\n");
            exit(strcmp(argv[i], "--help") == 0 ? 0 : 3);
        }
    }
    const char *d = getenv("RLOG_BENCH_DIR");
    snprintf(cfg->dir, sizeof cfg->dir, "%s", d && *d ? d : "bench-data");
}

typedef struct single_case {
    const char *key, *label;
    size_t batch, size;
    result rlog, raw;
} single_case;

int main(int argc, char **argv)
{
    bench_cfg cfg;
    parse_args(argc, argv, &cfg);
    rm_rf(cfg.dir);
    if (mkdir(cfg.dir, 0755) && errno != EEXIST)
        die(cfg.dir, strerror(errno));
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("bench/append: %.1f s per case, data in %s\n\n", cfg.seconds, cfg.dir);

    single_case cases[] = {
        {"1x100", "1 x 100 B per sync", 1, 100, {0}, {0}},
        {"64x100", "64 x 100 B per sync", 64, 100, {0}, {0}},
        {"64x1k", "64 x 1 KiB per sync", 64, 1024, {0}, {0}},
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    int raw_fd = raw_prepare(&cfg);
    printf("%-26s %12s %12s %7s %9s %9s %9s\n", "case", "rlog rec/s", "raw rec/s", "ratio",
           "p50 us", "p99 us", "max us");
    for (size_t i = 0; i < ncases; i++) {
        single_case *c = &cases[i];
        c->raw = raw_run(&cfg, raw_fd, c->batch, c->size);
        c->rlog = rlog_run(&cfg, c->batch, c->size);
        printf("%-26s %12.0f %12.0f %7.3f %9.1f %9.1f %9.1f\n", c->label, rate(&c->rlog),
               rate(&c->raw), rate(&c->rlog) / rate(&c->raw), c->rlog.p50_us, c->rlog.p99_us,
               c->rlog.max_us);
    }
    close(raw_fd);
    unlink(path_in(&cfg, "raw.dat"));

    const int nthreads[] = {1, 8, 32};
    result group[3];
    for (int i = 0; i < 3; i++) {
        group[i] = group_run(&cfg, nthreads[i]);
        char label[64];
        snprintf(label, sizeof label, "group %d thr x 1 KiB", nthreads[i]);
        printf("%-26s %12.0f %12s %7s %9s %9s %9.1f   %.1f records/sync\n", label, rate(&group[i]),
               "-", "-", "-", "-", group[i].max_us, per_sync(&group[i]));
    }
    rotation_result rot = rotation_run(&cfg);
    printf("\nrotation (4 MiB segments, 16 x 1 KiB per sync): %" PRIu64 " rotations in %" PRIu64
           " appends, %" PRIu64 " inline prepares\n"
           "  worst append across a rotation %.1f us; other appends: p99 %.1f us, max %.1f us\n\n",
           rot.rotations, rot.calls, rot.stalls, rot.max_rot_us, rot.p99_other_us,
           rot.max_other_us);

    for (size_t i = 0; i < ncases; i++) {
        single_case *c = &cases[i];
        printf("rlog_%s_records_s=%.0f\nraw_%s_records_s=%.0f\nratio_%s=%.3f\n"
               "rlog_%s_p99_us=%.1f\nrlog_%s_max_us=%.1f\n",
               c->key, rate(&c->rlog), c->key, rate(&c->raw), c->key,
               rate(&c->rlog) / rate(&c->raw), c->key, c->rlog.p99_us, c->key, c->rlog.max_us);
    }
    for (int i = 0; i < 3; i++)
        printf("group%d_records_s=%.0f\ngroup%d_records_per_sync=%.1f\n", nthreads[i],
               rate(&group[i]), nthreads[i], per_sync(&group[i]));
    printf("group32_vs_single=%.2f\n", rate(&group[2]) / rate(&group[0]));
    printf("group32_vs_1x100=%.2f\n", rate(&group[2]) / rate(&cases[0].rlog));
    printf("rotations=%" PRIu64 "\nrotation_prepare_stalls=%" PRIu64 "\n", rot.rotations,
           rot.stalls);
    printf("rotation_max_append_us=%.1f\nrotation_other_max_us=%.1f\n", rot.max_rot_us,
           rot.max_other_us);
    rm_rf(cfg.dir);
    return 0;
}
