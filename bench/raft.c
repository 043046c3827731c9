/*
 * bench/raft: Raft storage, rlog versus libraft's libuv backend.
 *
 * Writes N entries (default 1,000,000) of 104 bytes in batches of 64 with
 * each engine into <dir>/rlog and <dir>/libraft, then loads each store in a
 * fresh process (this program re-executed with --load-child) three times
 * and reports the best load time, the peak RSS of the loading process
 * (ru_maxrss from wait4) and the append rate.
 *
 *   rlog:    rlog_rs_append_async with a background thread and group
 *            commit; load = rlog_rs_open (replay into the compact index;
 *            payloads stay in the segments). "rlog load+read" also reads
 *            every entry back (in 1 MiB pages) to show the cost of touching
 *            the payloads.
 *   libraft: raft_uv_init with auto-recovery off; append through
 *            raft_io.append; load = raft_io.load, which materializes every
 *            entry in memory.
 *
 * Both keep the same number of batches in flight (--window, default 8).
 * Usage: raft [--entries N] [--dir DIR] [--window W]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "rlog/raft_storage.h"

#ifdef RLOG_HAVE_LIBRAFT
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>
#endif

#define ENTRY_SIZE 104u
#define BATCH      64u

/* ---------------------------------------------------------------- rlog */

typedef struct window {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned inflight;
    int error;
} window;

static void rlog_done(void *data, int status, uint64_t first, uint64_t last)
{
    window *w = data;
    (void)first;
    (void)last;
    pthread_mutex_lock(&w->mu);
    w->inflight--;
    if (status)
        w->error = status;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static rlog_rs *rlog_open_store(const char *dir, unsigned flags)
{
    rlog_rs_options o;
    rlog_rs_options_init(&o);
    o.log.flags = flags;
    o.log.sync = RLOG_SYNC_GROUP;
    rlog_rs *rs;
    rlog_rs_open_report rep;
    if (rlog_rs_open(dir, &o, &rs, &rep))
        bench_die("rlog open", rep.message);
    return rs;
}

static uint64_t rlog_syncs; /* fdatasync calls during the rlog write */

static uint64_t rlog_write(const char *dir, uint64_t n, unsigned win)
{
    mkdir(dir, 0755);
    rlog_rs *rs = rlog_open_store(dir, RLOG_OPEN_CREATE | RLOG_OPEN_THREAD);
    if (rlog_rs_set_term(rs, 1))
        bench_die("rlog set_term", rlog_rs_errmsg(rs));
    static uint8_t payload[ENTRY_SIZE];
    memset(payload, 'r', sizeof payload);
    rlog_rs_entry e[BATCH];
    for (unsigned k = 0; k < BATCH; k++)
        e[k] = (rlog_rs_entry){1, 1, ENTRY_SIZE, payload, NULL};
    window w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    uint64_t t0 = bench_now_ns();
    for (uint64_t next = 1; next <= n;) {
        size_t cnt = n - next + 1 < BATCH ? (size_t)(n - next + 1) : BATCH;
        pthread_mutex_lock(&w.mu);
        while (w.inflight >= win)
            pthread_cond_wait(&w.cond, &w.mu);
        w.inflight++;
        pthread_mutex_unlock(&w.mu);
        if (rlog_rs_append_async(rs, next, e, cnt, rlog_done, &w))
            bench_die("rlog append", rlog_rs_errmsg(rs));
        next += cnt;
    }
    pthread_mutex_lock(&w.mu);
    while (w.inflight > 0)
        pthread_cond_wait(&w.cond, &w.mu);
    pthread_mutex_unlock(&w.mu);
    uint64_t dt = bench_now_ns() - t0;
    if (w.error)
        bench_die("rlog append callback", rlog_strerror(w.error));
    rlog_metrics m;
    rlog_metrics_get(rlog_rs_log(rs), &m);
    rlog_syncs = m.syncs;
    if (rlog_rs_close(rs))
        bench_die("rlog close", "failed");
    return dt;
}

static uint64_t rlog_load(const char *dir, int read_all)
{
    uint64_t t0 = bench_now_ns();
    rlog_rs *rs = rlog_open_store(dir, 0);
    uint64_t n = rlog_rs_last_index(rs) + 1 - rlog_rs_first_index(rs);
    if (read_all) {
        uint64_t i = rlog_rs_first_index(rs), got = 0;
        while (i <= rlog_rs_last_index(rs)) {
            rlog_rs_entries e;
            if (rlog_rs_entries_read(rs, i, UINT64_MAX, 1u << 20, &e))
                bench_die("rlog read", rlog_rs_errmsg(rs));
            i += e.n;
            got += e.n;
            rlog_rs_entries_free(&e);
        }
        if (got != n)
            bench_die("rlog read", "entry count");
    }
    uint64_t dt = bench_now_ns() - t0;
    rlog_rs_close(rs);
    printf("entries=%" PRIu64 "\n", n);
    return dt;
}

/* ---------------------------------------------------------------- libraft */

#ifdef RLOG_HAVE_LIBRAFT
typedef struct lr {
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    bool closed;
    /* append driver */
    struct raft_entry entries[BATCH];
    struct raft_io_append *reqs;
    uint64_t next, n, done;
    unsigned inflight;
    int error;
} lr;

static void lr_open(lr *l, const char *dir)
{
    memset(l, 0, sizeof *l);
    if (uv_loop_init(&l->loop))
        bench_die("uv_loop_init", "failed");
    if (raft_uv_tcp_init(&l->transport, &l->loop))
        bench_die("raft_uv_tcp_init", "failed");
    if (raft_uv_init(&l->io, &l->loop, dir, &l->transport))
        bench_die("raft_uv_init", l->io.errmsg);
    raft_uv_set_auto_recovery(&l->io, false);
    if (l->io.init(&l->io, 1, "127.0.0.1:9999"))
        bench_die("raft_io init", l->io.errmsg);
}

static void lr_close_cb(struct raft_io *io)
{
    lr *l = io->data;
    l->closed = true;
}

static void lr_close(lr *l)
{
    l->io.data = l;
    l->io.close(&l->io, lr_close_cb);
    while (!l->closed)
        uv_run(&l->loop, UV_RUN_ONCE);
    raft_uv_close(&l->io);
    raft_uv_tcp_close(&l->transport);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    uv_loop_close(&l->loop);
}

static uint64_t lr_load_entries(lr *l)
{
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap = NULL;
    raft_index start;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    if (l->io.load(&l->io, &term, &vote, &snap, &start, &entries, &n))
        bench_die("raft_io load", l->io.errmsg);
    void *batch = NULL; /* raft_uv: batches; rlog: a buffer per entry */
    for (size_t i = 0; i < n; i++) {
        if (entries[i].batch == NULL) {
            raft_free(entries[i].buf.base);
        } else if (entries[i].batch != batch) {
            batch = entries[i].batch;
            raft_free(batch);
        }
    }
    raft_free(entries);
    if (snap)
        bench_die("libraft load", "unexpected snapshot");
    return n;
}

static void lr_append_cb(struct raft_io_append *req, int status)
{
    lr *l = req->data;
    if (status)
        l->error = status;
    l->inflight--;
    l->done++;
}

static uint64_t libraft_write(const char *dir, uint64_t n, unsigned win)
{
    mkdir(dir, 0755);
    lr *l = calloc(1, sizeof *l);
    lr_open(l, dir);
    lr_load_entries(l);
    if (l->io.set_term(&l->io, 1))
        bench_die("raft_io set_term", l->io.errmsg);
    static uint8_t payload[ENTRY_SIZE];
    memset(payload, 'l', sizeof payload);
    for (unsigned k = 0; k < BATCH; k++) {
        l->entries[k].term = 1;
        l->entries[k].type = RAFT_COMMAND;
        l->entries[k].buf.base = payload;
        l->entries[k].buf.len = ENTRY_SIZE;
        l->entries[k].batch = NULL;
    }
    l->reqs = calloc(64, sizeof *l->reqs);
    l->next = 1;
    l->n = n;
    uint64_t t0 = bench_now_ns();
    /* keep `win` batches in flight, like the rlog run */
    while (!l->error && l->next <= l->n) {
        while (l->inflight < win && l->next <= l->n) {
            unsigned cnt = l->n - l->next + 1 < BATCH ? (unsigned)(l->n - l->next + 1) : BATCH;
            struct raft_io_append *req = &l->reqs[(l->next / BATCH) % 64];
            req->data = l;
            if (l->io.append(&l->io, req, l->entries, cnt, lr_append_cb))
                bench_die("raft_io append", l->io.errmsg);
            l->inflight++;
            l->next += cnt;
        }
        uv_run(&l->loop, UV_RUN_ONCE);
    }
    while (!l->error && l->inflight > 0)
        uv_run(&l->loop, UV_RUN_ONCE);
    uint64_t dt = bench_now_ns() - t0;
    if (l->error)
        bench_die("raft_io append callback", raft_strerror(l->error));
    lr_close(l);
    free(l->reqs);
    free(l);
    return dt;
}
#endif

/* ---------------------------------------------------------------- driver */

typedef struct load_result {
    double ms;
    long rss_kb;
    uint64_t entries;
} load_result;

/* Runs `self --load-child engine dir` and measures it. */
static load_result load_in_child(const char *self, const char *engine, const char *dir)
{
    int fds[2];
    if (pipe(fds))
        bench_die("pipe", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(self, self, "--load-child", engine, dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char out[256] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof out - 1 && (r = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        bench_die("load child failed", engine);
    load_result res = {0, ru.ru_maxrss, 0};
    const char *p = strstr(out, "entries=");
    const char *q = strstr(out, "load_ns=");
    if (!p || !q)
        bench_die("load child output", out);
    res.entries = strtoull(p + 8, NULL, 10);
    res.ms = (double)strtoull(q + 8, NULL, 10) / 1e6;
    return res;
}

static load_result best_of(const char *self, const char *engine, const char *dir, int runs)
{
    load_result best = {0, 0, 0};
    for (int i = 0; i < runs; i++) {
        load_result r = load_in_child(self, engine, dir);
        if (i == 0 || r.ms < best.ms)
            best.ms = r.ms;
        if (r.rss_kb > best.rss_kb)
            best.rss_kb = r.rss_kb;
        best.entries = r.entries;
    }
    return best;
}

static int child_main(const char *engine, const char *dir)
{
    uint64_t dt = 0;
    if (strcmp(engine, "rlog") == 0 || strcmp(engine, "rlog-read") == 0) {
        dt = rlog_load(dir, engine[4] == '-');
#ifdef RLOG_HAVE_LIBRAFT
    } else if (strcmp(engine, "libraft") == 0) {
        lr *l = calloc(1, sizeof *l);
        uint64_t t0 = bench_now_ns();
        lr_open(l, dir);
        uint64_t n = lr_load_entries(l);
        dt = bench_now_ns() - t0;
        lr_close(l);
        free(l);
        printf("entries=%" PRIu64 "\n", n);
#endif
    } else {
        bench_die("unknown engine", engine);
    }
    printf("load_ns=%" PRIu64 "\n", dt);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t n = 1000000;
    const char *root = "raft-bench.tmp";
    unsigned win = 8;
    if (argc == 4 && strcmp(argv[1], "--load-child") == 0)
        return child_main(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            root = argv[++i];
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            win = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            bench_die("usage", "raft [--entries N] [--dir DIR] [--window W]");
    }
    if (n == 0 || win == 0 || win > 64)
        bench_die("usage", "--entries >= 1, 1 <= --window <= 64");
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        bench_die("readlink /proc/self/exe", strerror(errno));
    self[sl] = 0;
    char rdir[4200], ldir[4200];
    mkdir(root, 0755);
    snprintf(rdir, sizeof rdir, "%s/rlog", root);
    snprintf(ldir, sizeof ldir, "%s/libraft", root);
    bench_rm_rf(rdir);
    bench_rm_rf(ldir);
    printf("raft storage bench: %" PRIu64 " entries of %u B, batches of %u, %u in flight, dir %s\n",
           n, ENTRY_SIZE, BATCH, win, root);
    double r_app = (double)rlog_write(rdir, n, win) / 1e9;
    load_result rl = best_of(self, "rlog", rdir, 3);
    load_result rr = best_of(self, "rlog-read", rdir, 1);
    printf("%-18s %12s %12s %14s\n", "engine", "load ms", "peak RSS MB", "append ent/s");
    printf("%-18s %12.1f %12.1f %14.0f\n", "rlog", rl.ms, rl.rss_kb / 1024.0, (double)n / r_app);
    printf("%-18s %12.1f %12.1f %14s\n", "rlog load+read", rr.ms, rr.rss_kb / 1024.0, "-");
#ifdef RLOG_HAVE_LIBRAFT
    double l_app = (double)libraft_write(ldir, n, win) / 1e9;
    load_result ll = best_of(self, "libraft", ldir, 3);
    printf("%-18s %12.1f %12.1f %14.0f\n", "libraft (uv)", ll.ms, ll.rss_kb / 1024.0,
           (double)n / l_app);
    if (ll.entries != n || rl.entries != n)
        bench_die("entry counts differ", "check the stores");
    printf("entries=%" PRIu64 "\n", n);
    printf("rlog_load_ms=%.1f\nrlog_read_all_ms=%.1f\nrlog_rss_kb=%ld\nrlog_append_per_s=%.0f\n",
           rl.ms, rr.ms, rl.rss_kb, (double)n / r_app);
    printf("libraft_load_ms=%.1f\nlibraft_rss_kb=%ld\nlibraft_append_per_s=%.0f\n", ll.ms,
           ll.rss_kb, (double)n / l_app);
    printf("rlog_fdatasyncs=%" PRIu64 "\n", rlog_syncs);
    printf("load_speedup=%.2f\nrss_ratio=%.4f\nappend_speedup=%.2f\n", ll.ms / rl.ms,
           (double)rl.rss_kb / (double)ll.rss_kb, l_app / r_app);
#else
    printf("entries=%" PRIu64 "\nrlog_load_ms=%.1f\nrlog_read_all_ms=%.1f\nrlog_rss_kb=%ld\n"
           "rlog_append_per_s=%.0f\nlibraft=not built (RLOG_HAVE_LIBRAFT undefined)\n",
           n, rl.ms, rr.ms, rl.rss_kb, (double)n / r_app);
#endif
    return 0;
}
