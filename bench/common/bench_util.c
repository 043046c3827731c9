/* bench/common: see bench_util.h. */
#include "bench_util.h"

#include "os/sync.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bench_usage bench_usage_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
                (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
    return (bench_usage){.cpu_us = us, .csw = (uint64_t)(ru.ru_nvcsw + ru.ru_nivcsw)};
}

bench_usage bench_usage_since(bench_usage start, bench_usage end)
{
    return (bench_usage){.cpu_us = end.cpu_us - start.cpu_us, .csw = end.csw - start.csw};
}

const char *bench_data_root(void)
{
    const char *d = getenv("RLOG_BENCH_DIR");
    return d && *d ? d : "bench-data";
}

bool bench_common_arg(int argc, char **argv, int *i, int *rounds, double *seconds)
{
    if (*i + 1 >= argc)
        return false;
    if (rounds && strcmp(argv[*i], "--rounds") == 0) {
        *rounds = atoi(argv[++*i]);
        if (*rounds < 1 || *rounds > 100)
            bench_die("--rounds", "must be in 1 .. 100");
        return true;
    }
    if (strcmp(argv[*i], "--seconds") == 0) {
        *seconds = atof(argv[++*i]);
        if (*seconds <= 0 || *seconds > 600)
            bench_die("--seconds", "must be in (0, 600]");
        return true;
    }
    return false;
}

double bench_rate(uint64_t records, double seconds)
{
    return seconds > 0 ? (double)records / seconds : 0;
}

double bench_per_sync(uint64_t records, uint64_t syncs)
{
    return syncs ? (double)records / (double)syncs : 0;
}

void bench_die(const char *what, const char *detail)
{
    fprintf(stderr, "bench: %s: %s\n", what, detail);
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

void bench_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void bench_fresh_dir(const char *dir)
{
    bench_rm_rf(dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die(dir, strerror(errno));
}

void bench_fill(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

rlog_log *bench_log_open(const char *dir, rlog_sync_mode mode, uint64_t segment_size, rlog_vfs *vfs,
                         unsigned flags)
{
    bench_rm_rf(dir);
    rlog_options o;
    rlog_options_init(&o);
    o.sync = mode;
    o.segment_size = segment_size;
    o.vfs = vfs;
    o.flags = RLOG_OPEN_CREATE | RLOG_OPEN_THREAD | flags;
    rlog_log *l = NULL;
    rlog_open_report rep;
    int rv = rlog_open(dir, &o, &l, &rep);
    if (rv)
        bench_die(dir, rep.message[0] ? rep.message : rlog_strerror(rv));
    rlog_metrics m;
    uint64_t deadline = bench_now_ns() + 5000000000ull;
    do {
        rlog_metrics_get(l, &m);
        if (m.segments_prepared >= 2)
            break;
        usleep(10000);
    } while (bench_now_ns() < deadline);
    return l;
}

/* ---- a counting vfs ---- */

_Atomic uint64_t bench_vfs_written, bench_vfs_syncs, bench_vfs_zeros;

/* Is buf all zero bytes? (Only asked of writes of 4 KiB or more: records
 * are never all zeros, zero fill is.) */
static bool all_zero(const void *buf, size_t len)
{
    static const uint8_t zero[4096];
    const uint8_t *p = buf;
    for (size_t off = 0; off < len; off += sizeof zero) {
        size_t n = len - off < sizeof zero ? len - off : sizeof zero;
        if (memcmp(p + off, zero, n) != 0)
            return false;
    }
    return true;
}

static int count_pwrite(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off,
                        size_t *done)
{
    (void)vfs;
    rlog_vfs *base = rlog_vfs_posix();
    int e = base->pwrite(base, f, buf, len, off, done);
    atomic_fetch_add(&bench_vfs_written, *done);
    if (len >= 4096 && all_zero(buf, len))
        atomic_fetch_add(&bench_vfs_zeros, *done);
    return e;
}

static uint64_t *_Atomic sync_ts;
static size_t sync_cap;
static _Atomic size_t *sync_n;

void bench_vfs_time_syncs(uint64_t *ts, size_t cap, _Atomic size_t *n)
{
    atomic_store(&sync_ts, NULL);
    sync_cap = cap;
    sync_n = n;
    atomic_store(&sync_ts, ts);
}

static int count_fdatasync(rlog_vfs *vfs, rlog_file *f)
{
    (void)vfs;
    atomic_fetch_add(&bench_vfs_syncs, 1);
    uint64_t *ts = atomic_load(&sync_ts), t0 = ts ? bench_now_ns() : 0;
    uint64_t zeros = atomic_load(&bench_vfs_zeros);
    int e = rlog_vfs_posix()->fdatasync(rlog_vfs_posix(), f);
    if (ts != NULL) {
        size_t i = atomic_fetch_add(sync_n, 1);
        if (i < sync_cap) {
            ts[3 * i] = t0;
            ts[3 * i + 1] = bench_now_ns();
            ts[3 * i + 2] = zeros;
        }
    }
    return e;
}

static int count_fsync(rlog_vfs *vfs, rlog_file *f)
{
    (void)vfs;
    atomic_fetch_add(&bench_vfs_syncs, 1);
    return rlog_vfs_posix()->fsync(rlog_vfs_posix(), f);
}

static int count_sync_dir(rlog_vfs *vfs, const char *dir)
{
    (void)vfs;
    atomic_fetch_add(&bench_vfs_syncs, 1);
    return rlog_vfs_posix()->sync_dir(rlog_vfs_posix(), dir);
}

rlog_vfs *bench_counting_vfs(void)
{
    static rlog_vfs v;
    v = *rlog_vfs_posix();
    v.pwrite = count_pwrite;
    v.fdatasync = count_fdatasync;
    v.fsync = count_fsync;
    v.sync_dir = count_sync_dir;
    return &v;
}

/* ---- threads for a while ---- */

typedef struct threads_arg {
    void (*worker)(void *data, int idx, const atomic_bool *stop);
    void *data;
    int idx;
    const atomic_bool *stop;
} threads_arg;

static void *threads_main(void *p)
{
    threads_arg *a = p;
    a->worker(a->data, a->idx, a->stop);
    return NULL;
}

double bench_threads_run(int threads, double seconds,
                         void (*worker)(void *data, int idx, const atomic_bool *stop), void *data)
{
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    threads_arg *args = calloc((size_t)threads, sizeof *args);
    if (!tids || !args)
        bench_die("threads", "out of memory");
    atomic_bool stop = false;
    uint64_t start = bench_now_ns();
    for (int i = 0; i < threads; i++) {
        args[i] = (threads_arg){.worker = worker, .data = data, .idx = i, .stop = &stop};
        if (pthread_create(&tids[i], NULL, threads_main, &args[i]))
            bench_die("pthread_create", strerror(errno));
    }
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, true);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    double elapsed = (double)(bench_now_ns() - start) / 1e9;
    free(args);
    free(tids);
    return elapsed;
}

/* ---- group commit ---- */

typedef struct group_ctx {
    rlog_log *log;
    size_t record_size;
    atomic_uint_fast64_t records;
    atomic_uint_fast64_t max_ns;
} group_ctx;

static void group_worker(void *data, int idx, const atomic_bool *stop)
{
    group_ctx *g = data;
    uint8_t *buf = malloc(g->record_size);
    if (!buf)
        bench_die("group", "out of memory");
    bench_fill(buf, g->record_size, (uint64_t)idx);
    rlog_record rec = {.type = BENCH_TYPE, .len = (uint32_t)g->record_size, .data = buf};
    uint64_t n = 0, max = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        uint64_t t0 = bench_now_ns();
        int rv = rlog_append(g->log, &rec, 1, NULL);
        if (rv)
            bench_die("rlog_append (group)", rlog_strerror(rv));
        uint64_t d = bench_now_ns() - t0;
        if (d > max)
            max = d;
        n++;
    }
    atomic_fetch_add(&g->records, n);
    uint_fast64_t seen = atomic_load(&g->max_ns);
    while (max > seen && !atomic_compare_exchange_weak(&g->max_ns, &seen, max))
        ;
    free(buf);
}

bench_group_result bench_group_run(const char *dir, int threads, size_t record_size, double seconds,
                                   bool io_thread)
{
    group_ctx *g = calloc(1, sizeof *g);
    if (!g)
        bench_die("group", "out of memory");
    g->record_size = record_size;
    g->log = bench_log_open(dir, RLOG_SYNC_GROUP, 0, NULL, 0);
    if (!io_thread) { /* the appenders hand the lead to each other */
        rlog_close(g->log);
        rlog_options o;
        rlog_options_init(&o);
        o.sync = RLOG_SYNC_GROUP;
        rlog_open_report rep;
        if (rlog_open(dir, &o, &g->log, &rep))
            bench_die("reopen (group)", rep.message);
    }
    bench_group_result r = {0};
    bench_usage u0 = bench_usage_now();
    r.seconds = bench_threads_run(threads, seconds, group_worker, g);
    r.use = bench_usage_since(u0, bench_usage_now());
    r.records = atomic_load(&g->records);
    r.max_us = (double)atomic_load(&g->max_ns) / 1e3;
    rlog_metrics m;
    rlog_metrics_get(g->log, &m);
    r.syncs = m.syncs;
    r.pipelined = m.pipelined;
    int rv = rlog_close(g->log);
    if (rv)
        bench_die("rlog_close (group)", rlog_strerror(rv));
    bench_rm_rf(dir);
    free(g);
    return r;
}

rlog_file *bench_prewritten(const char *path, uint64_t size)
{
    rlog_vfs *v = rlog_vfs_posix();
    rlog_file *f = NULL;
    int e = v->unlink(v, path);
    if (e == 0 || e == ENOENT)
        e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f);
    if (e)
        bench_die(path, strerror(e));
    size_t chunk = 1u << 20, done;
    void *zeros = calloc(1, chunk);
    if (!zeros)
        bench_die(path, "out of memory");
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
        if ((e = v->pwrite(v, f, zeros, n, off, &done)) != 0)
            bench_die(path, strerror(e));
    }
    free(zeros);
    if ((e = rlg_os_fdatasync(v, f)) != 0)
        bench_die(path, strerror(e));
    return f;
}
