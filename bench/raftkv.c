/*
 * bench/raftkv: libraft on rlog's raft_io versus libraft on raft_uv, in the
 * same run on the same machine.
 *
 * 1. Commits: a 3-node cluster on loopback, each node on its own thread and
 *    libuv loop (this program, three struct raft). The leader keeps a window
 *    of W raft_apply requests of --size bytes (default 1 KiB) in flight for
 *    --seconds seconds (after a warm-up) and measures each one from
 *    raft_apply to its callback (committed by a majority and applied on the
 *    leader): commits/s, p50 and p99 latency. Windows 1 and 64. libraft's
 *    default timeouts and snapshot settings (threshold 1024, trailing 8192).
 *    Also counts, robust to a loaded machine: the process's context
 *    switches (voluntary + involuntary, getrusage) and CPU time (user +
 *    system) per commit, over the measured seconds, all threads of the
 *    three nodes together.
 * 2. Load: a log of --load-entries entries (default 100000; the issue's
 *    figure is 1000000) of --size bytes written through raft_io (bootstrap,
 *    then append in batches of 64, 8 batches in flight), then started in a
 *    fresh process (this program re-executed with --load-child): the time
 *    from the io's init through raft_init to the return of raft_start (a
 *    node's whole start: raft_uv reads the log in raft_start, rlog opens
 *    its store in raft_init) and the growth of the process's resident set
 *    across it (VmRSS after - before; VmHWM too), and the CPU time of the
 *    process and of its loop thread across it (getrusage RUSAGE_SELF and
 *    RUSAGE_THREAD): on a loaded machine the elapsed time is mostly waiting
 *    for a core, and the loop thread's CPU time is the start's critical
 *    path when a core is free for rlog's helper threads.
 *    Best time of --load-runs (default 3) runs; the page cache is warm.
 *    --load-snapshot-at N (1 .. entries + 1) puts a snapshot at index N
 *    through the io's snapshot_put with libraft's default trailing (8192)
 *    after writing, as a node that compacts would have: the load then
 *    restores it and reads the entries the io kept.
 *
 * Prints one table per part and the ratios rlog/uv. The rlog io's messages
 * of level error go to stderr.
 *
 *   raftkv [--io uv,rlog] [--seconds S] [--size B] [--load-entries N]
 *          [--load-runs R] [--load-snapshot-at N] [--dir DIR] [--window W]
 *          [--skip-commits] [--skip-load] [--keep]
 *
 * --window W runs the commits part with that one window (1..64) only.
 * --keep leaves the load logs in DIR/load-<io> (raftkv --load-child IO DIR
 * HOST:PORT loads one again).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RLOG_HAVE_LIBRAFT
int main(void)
{
    printf("raftkv: not built (libraft and libuv were not found: RLOG_HAVE_LIBRAFT undefined)\n");
    return 0;
}
#else

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "kv_io.h"

#define N_NODES       3
#define LOAD_BATCH    64u
#define LOAD_INFLIGHT 8u
#define LOAD_TRAILING 8192u /* libraft's default snapshot trailing */
#define MAX_WINDOW    64u

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "raftkv: %s: %s\n", what, detail);
    exit(1);
}

/* snprintf for paths and commands: a result that does not fit is fatal. */
static void fmt(char *out, size_t cap, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(out, cap, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        die("path or command too long", format);
}

/* A loopback port nobody listens on now (the kernel's choice for port 0). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("free port", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static void fill_configuration(struct raft_configuration *conf, char addr[][32])
{
    raft_configuration_init(conf);
    for (unsigned i = 0; i < N_NODES; i++)
        if (raft_configuration_add(conf, i + 1, addr[i], RAFT_VOTER) != 0)
            die("raft_configuration_add", addr[i]);
}

/* An FSM that only counts: the benchmark measures the log, not a state. */
static int count_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    (void)buf;
    (*(uint64_t *)fsm->data)++;
    *result = NULL;
    return 0;
}

static int count_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct raft_buffer *b = raft_malloc(sizeof *b);
    if (!b || !(b->base = raft_malloc(8))) {
        raft_free(b);
        return RAFT_NOMEM;
    }
    b->len = 8;
    memcpy(b->base, fsm->data, 8);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int count_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    if (buf->len != 8)
        return RAFT_MALFORMED;
    memcpy(fsm->data, buf->base, 8);
    raft_free(buf->base);
    return 0;
}

/* ------------------------------------------------ part 1: commits */

struct cluster;

struct slot {
    struct raft_apply req;
    struct node *node;
    uint64_t t0;
};

struct node {
    struct cluster *cl;
    unsigned id;
    uv_loop_t loop;
    struct kv_io io;
    struct raft raft;
    struct raft_fsm fsm;
    uint64_t applied;
    uv_timer_t poll; /* is this node the leader? then it drives the load */
    uv_async_t stop; /* main thread -> loop: close */
    pthread_t thread;
    int start_rv;
    char dir[4200];
    /* the driver, on the leader's loop */
    struct slot slots[MAX_WINDOW];
    unsigned inflight;
    uint64_t submitted, completed, deadline_ns, t_first, t_last;
    /* getrusage at the start and at the end of the measured seconds */
    uint64_t cs0, cpu_us0, cs1, cpu_us1, n_usage;
};

struct cluster {
    enum kv_io_kind kind;
    unsigned window, warmup;
    size_t size;
    double seconds;
    char addr[N_NODES][32];
    struct node nodes[N_NODES];
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned leader; /* the node that drives, 0 before one was elected */
    bool done;
    int error;
    char errmsg[256];
    uint64_t *lat_ns; /* measured latencies, cap entries */
    size_t n_lat, cap;
};

static void cluster_finish(struct cluster *cl, int error, const char *msg)
{
    pthread_mutex_lock(&cl->mu);
    if (!cl->done) {
        cl->done = true;
        cl->error = error;
        if (msg)
            snprintf(cl->errmsg, sizeof cl->errmsg, "%s", msg);
        pthread_cond_signal(&cl->cond);
    }
    pthread_mutex_unlock(&cl->mu);
}

static void on_apply(struct raft_apply *req, int status, void *result);

/* Context switches and CPU microseconds so far: of the whole process
 * (RUSAGE_SELF) or of the calling thread (RUSAGE_THREAD). */
static void usage_of(int who, uint64_t *cs, uint64_t *cpu_us)
{
    struct rusage u;
    getrusage(who, &u);
    *cs = (uint64_t)u.ru_nvcsw + (uint64_t)u.ru_nivcsw;
    *cpu_us = (uint64_t)u.ru_utime.tv_sec * 1000000u + (uint64_t)u.ru_utime.tv_usec +
              (uint64_t)u.ru_stime.tv_sec * 1000000u + (uint64_t)u.ru_stime.tv_usec;
}

static void usage_now(uint64_t *cs, uint64_t *cpu_us)
{
    usage_of(RUSAGE_SELF, cs, cpu_us);
}

static int submit(struct slot *s)
{
    struct node *n = s->node;
    struct raft_buffer buf = {.len = n->cl->size, .base = raft_malloc(n->cl->size)};
    if (!buf.base)
        return RAFT_NOMEM;
    memset(buf.base, (int)(n->submitted & 0xff), buf.len);
    s->req.data = s;
    s->t0 = bench_now_ns();
    int rv = raft_apply(&n->raft, &s->req, &buf, 1, on_apply);
    if (rv != 0) {
        raft_free(buf.base);
        return rv;
    }
    n->submitted++;
    n->inflight++;
    return 0;
}

static void on_apply(struct raft_apply *req, int status, void *result)
{
    struct slot *s = req->data;
    struct node *n = s->node;
    struct cluster *cl = n->cl;
    uint64_t t = bench_now_ns();
    (void)result;
    n->inflight--;
    if (status != 0) {
        cluster_finish(cl, status, raft_strerror(status));
        return;
    }
    n->completed++;
    if (n->completed == cl->warmup) {
        n->t_first = t; /* measuring starts */
        n->deadline_ns = t + (uint64_t)(cl->seconds * 1e9);
        usage_now(&n->cs0, &n->cpu_us0);
    } else if (n->completed > cl->warmup && cl->n_lat < cl->cap) {
        cl->lat_ns[cl->n_lat++] = t - s->t0;
        n->t_last = t;
    }
    if (n->n_usage == 0 && n->deadline_ns != 0 && t >= n->deadline_ns) {
        usage_now(&n->cs1, &n->cpu_us1);
        n->n_usage = n->completed - cl->warmup;
    }
    if (n->deadline_ns == 0 || t < n->deadline_ns) {
        int rv = submit(s);
        if (rv != 0)
            cluster_finish(cl, rv, raft_strerror(rv));
    } else if (n->inflight == 0) {
        cluster_finish(cl, 0, NULL);
    }
}

static void on_poll(uv_timer_t *t)
{
    struct node *n = t->data;
    struct cluster *cl = n->cl;
    if (raft_state(&n->raft) != RAFT_LEADER)
        return;
    pthread_mutex_lock(&cl->mu);
    bool mine = cl->leader == 0;
    if (mine)
        cl->leader = n->id;
    pthread_mutex_unlock(&cl->mu);
    uv_timer_stop(t);
    if (!mine)
        return;
    for (unsigned i = 0; i < cl->window; i++) {
        n->slots[i].node = n;
        int rv = submit(&n->slots[i]);
        if (rv != 0) {
            cluster_finish(cl, rv, raft_strerror(rv));
            return;
        }
    }
}

static void on_raft_closed(struct raft *r)
{
    (void)r;
}

static void on_stop(uv_async_t *a)
{
    struct node *n = a->data;
    uv_close((uv_handle_t *)&n->poll, NULL);
    uv_close((uv_handle_t *)&n->stop, NULL);
    raft_close(&n->raft, on_raft_closed);
}

static void *node_main(void *arg)
{
    struct node *n = arg;
    uv_run(&n->loop, UV_RUN_DEFAULT);
    kv_io_fini(&n->io);
    uv_loop_close(&n->loop);
    return NULL;
}

/* Sets up node i on its loop (not running yet). */
static void node_open(struct cluster *cl, unsigned i, const char *root)
{
    struct node *n = &cl->nodes[i];
    char err[512];
    n->cl = cl;
    n->id = i + 1;
    fmt(n->dir, sizeof n->dir, "%s/n%u", root, n->id);
    bench_rm_rf(n->dir);
    if (mkdir(n->dir, 0755) != 0)
        die("mkdir", n->dir);
    uv_loop_init(&n->loop);
    if (kv_io_init(&n->io, cl->kind, &n->loop, n->dir, KV_LOG_ERROR, err, sizeof err) != 0)
        die("io", err);
    n->fsm = (struct raft_fsm){.version = 1,
                               .data = &n->applied,
                               .apply = count_apply,
                               .snapshot = count_snapshot,
                               .restore = count_restore};
    if (raft_init(&n->raft, &n->io.io, &n->fsm, n->id, cl->addr[i]) != 0)
        die("raft_init", n->raft.errmsg);
    struct raft_configuration conf;
    fill_configuration(&conf, cl->addr);
    if (raft_bootstrap(&n->raft, &conf) != 0)
        die("raft_bootstrap", n->raft.errmsg);
    raft_configuration_close(&conf);
    if (raft_start(&n->raft) != 0)
        die("raft_start", n->raft.errmsg);
    uv_timer_init(&n->loop, &n->poll);
    n->poll.data = n;
    uv_timer_start(&n->poll, on_poll, 5, 5);
    uv_async_init(&n->loop, &n->stop, on_stop);
    n->stop.data = n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct commit_result {
    double per_s, p50_us, p99_us;
    double cs_per_commit, cpu_us_per_commit;
    uint64_t measured;
};

static struct commit_result run_commits(enum kv_io_kind kind, unsigned window, size_t size,
                                        double seconds, const char *root)
{
    struct cluster *cl = calloc(1, sizeof *cl);
    cl->kind = kind;
    cl->window = window;
    cl->size = size;
    cl->seconds = seconds;
    cl->warmup = 200 > 4 * window ? 200 : 4 * window;
    cl->cap = 4u << 20;
    cl->lat_ns = malloc(cl->cap * sizeof *cl->lat_ns);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cond, NULL);
    for (unsigned i = 0; i < N_NODES; i++)
        snprintf(cl->addr[i], sizeof cl->addr[i], "127.0.0.1:%d", free_port());
    char dir[4200];
    fmt(dir, sizeof dir, "%s/commits-%s-w%u", root, kv_io_name(kind), window);
    bench_rm_rf(dir);
    mkdir(dir, 0755);
    for (unsigned i = 0; i < N_NODES; i++)
        node_open(cl, i, dir);
    for (unsigned i = 0; i < N_NODES; i++)
        pthread_create(&cl->nodes[i].thread, NULL, node_main, &cl->nodes[i]);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)seconds + 60;
    pthread_mutex_lock(&cl->mu);
    while (!cl->done)
        if (pthread_cond_timedwait(&cl->cond, &cl->mu, &until) == ETIMEDOUT)
            break;
    bool done = cl->done;
    pthread_mutex_unlock(&cl->mu);
    for (unsigned i = 0; i < N_NODES; i++)
        uv_async_send(&cl->nodes[i].stop);
    for (unsigned i = 0; i < N_NODES; i++)
        pthread_join(cl->nodes[i].thread, NULL);
    if (!done)
        die("commits", "no result within the time limit (no leader elected?)");
    if (cl->error)
        die("commits: an apply failed", cl->errmsg);
    struct node *l = &cl->nodes[cl->leader - 1];
    struct commit_result r = {0};
    r.measured = cl->n_lat;
    if (cl->n_lat > 0) {
        qsort(cl->lat_ns, cl->n_lat, sizeof *cl->lat_ns, cmp_u64);
        r.p50_us = (double)cl->lat_ns[cl->n_lat / 2] / 1e3;
        r.p99_us = (double)cl->lat_ns[(cl->n_lat * 99) / 100] / 1e3;
        r.per_s = (double)cl->n_lat / ((double)(l->t_last - l->t_first) / 1e9);
    }
    if (l->n_usage > 0) {
        r.cs_per_commit = (double)(l->cs1 - l->cs0) / (double)l->n_usage;
        r.cpu_us_per_commit = (double)(l->cpu_us1 - l->cpu_us0) / (double)l->n_usage;
    }
    free(cl->lat_ns);
    free(cl);
    bench_rm_rf(dir);
    return r;
}

/* ----------------------------------------------------- part 2: load */

struct writer {
    uv_loop_t loop;
    struct kv_io io;
    struct raft_entry entries[LOAD_INFLIGHT][LOAD_BATCH];
    struct raft_io_append reqs[LOAD_INFLIGHT];
    unsigned inflight;
    int error;
    bool closed;
    struct raft_io_snapshot_put put;
    bool put_done;
};

static void on_append(struct raft_io_append *req, int status)
{
    struct writer *w = req->data;
    w->inflight--;
    if (status != 0 && !w->error)
        w->error = status;
}

static void on_snapshot_put(struct raft_io_snapshot_put *req, int status)
{
    struct writer *w = req->data;
    w->put_done = true;
    if (status != 0 && !w->error)
        w->error = status;
}

/* Stores a snapshot at index `at` (term 1, the 3-voter configuration, an
 * 8-byte FSM state) through the io's snapshot_put with libraft's default
 * trailing: entries up to at - LOAD_TRAILING are dropped, the rest stay
 * (a node that took a snapshot after applying entry `at`). */
static void write_snapshot(struct writer *w, char addr[][32], uint64_t at)
{
    struct raft_io *io = &w->io.io;
    uint64_t state = at;
    struct raft_buffer buf = {.base = &state, .len = sizeof state};
    struct raft_snapshot snap = {
        .index = at, .term = 1, .configuration_index = 1, .bufs = &buf, .n_bufs = 1};
    fill_configuration(&snap.configuration, addr);
    w->put.data = w;
    if (io->snapshot_put(io, LOAD_TRAILING, &w->put, &snap, on_snapshot_put) != 0)
        die("raft_io snapshot_put", io->errmsg);
    while (!w->put_done)
        uv_run(&w->loop, UV_RUN_ONCE);
    raft_configuration_close(&snap.configuration);
    if (w->error)
        die("raft_io snapshot_put", raft_strerror(w->error));
}

static void on_io_closed(struct raft_io *io)
{
    struct writer *w = io->data;
    w->closed = true;
}

/* Frees what raft_io.load returned. */
static void free_loaded(struct raft_snapshot *snap, struct raft_entry *entries, size_t n)
{
    void *batch = NULL; /* raft_uv: batches; rlog: a buffer per entry */
    for (size_t i = 0; i < n; i++)
        if (entries[i].batch == NULL)
            raft_free(entries[i].buf.base);
        else if (entries[i].batch != batch)
            raft_free(batch = entries[i].batch);
    raft_free(entries);
    if (snap) {
        for (unsigned i = 0; i < snap->n_bufs; i++)
            raft_free(snap->bufs[i].base);
        raft_free(snap->bufs);
        raft_configuration_close(&snap->configuration);
        raft_free(snap);
    }
}

/* Bootstraps a 3-voter configuration in dir and appends n entries of size
 * bytes (term 1) through the io's own raft_io methods; then, when snap_at
 * > 0, a snapshot at snap_at (write_snapshot). */
static void write_log(enum kv_io_kind kind, const char *dir, char addr[][32], uint64_t n,
                      size_t size, uint64_t snap_at)
{
    struct writer *w = calloc(1, sizeof *w);
    char err[512];
    uv_loop_init(&w->loop);
    if (kv_io_init(&w->io, kind, &w->loop, dir, KV_LOG_ERROR, err, sizeof err) != 0)
        die("io", err);
    struct raft_io *io = &w->io.io;
    io->data = w;
    if (io->init(io, 1, addr[0]) != 0)
        die("raft_io init", io->errmsg);
    struct raft_configuration conf;
    fill_configuration(&conf, addr);
    if (io->bootstrap(io, &conf) != 0)
        die("raft_io bootstrap", io->errmsg);
    raft_configuration_close(&conf);
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap = NULL;
    raft_index start;
    struct raft_entry *loaded = NULL;
    size_t n_loaded = 0;
    if (io->load(io, &term, &vote, &snap, &start, &loaded, &n_loaded) != 0)
        die("raft_io load", io->errmsg);
    free_loaded(snap, loaded, n_loaded);
    uint8_t *payload = malloc(size);
    memset(payload, 'e', size);
    for (unsigned s = 0; s < LOAD_INFLIGHT; s++)
        for (unsigned k = 0; k < LOAD_BATCH; k++)
            w->entries[s][k] = (struct raft_entry){
                .term = 1, .type = RAFT_COMMAND, .buf = {.base = payload, .len = size}};
    uint64_t sent = 0;
    unsigned next = 0;
    while (sent < n && !w->error) {
        while (w->inflight < LOAD_INFLIGHT && sent < n) {
            unsigned k = (unsigned)(n - sent < LOAD_BATCH ? n - sent : LOAD_BATCH);
            w->reqs[next].data = w;
            if (io->append(io, &w->reqs[next], w->entries[next], k, on_append) != 0)
                die("raft_io append", io->errmsg);
            w->inflight++;
            sent += k;
            next = (next + 1) % LOAD_INFLIGHT;
        }
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    while (w->inflight > 0)
        uv_run(&w->loop, UV_RUN_ONCE);
    if (w->error)
        die("raft_io append", raft_strerror(w->error));
    if (snap_at > 0)
        write_snapshot(w, addr, snap_at);
    io->close(io, on_io_closed);
    while (!w->closed)
        uv_run(&w->loop, UV_RUN_ONCE);
    kv_io_fini(&w->io);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    free(payload);
    free(w);
}

/* A field of /proc/self/status in KiB. */
static long proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t len = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            v = strtol(line + len + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* --load-child IO DIR ADDRESS: io init + raft_init + raft_start on the log
 * in DIR, print figures. */
static int load_child(const char *io_name, const char *dir, const char *address)
{
    enum kv_io_kind kind;
    char err[512];
    static uv_loop_t loop;
    static struct kv_io io;
    static struct raft raft;
    static uint64_t applied;
    struct raft_fsm fsm = {.version = 1,
                           .data = &applied,
                           .apply = count_apply,
                           .snapshot = count_snapshot,
                           .restore = count_restore};
    if (kv_io_parse(io_name, &kind) != 0)
        die("--load-child", io_name);
    uv_loop_init(&loop);
    /* Timed from the io's init on: raft_uv reads its log in raft_start
     * (io->load), rlog opens (recovers) its store in raft_init (io->init). */
    long rss0 = proc_status_kb("VmRSS"), hwm0 = proc_status_kb("VmHWM");
    uint64_t cs, cpu0, loop0, cpu1, loop1;
    usage_of(RUSAGE_SELF, &cs, &cpu0);
    usage_of(RUSAGE_THREAD, &cs, &loop0);
    uint64_t t0 = bench_now_ns();
    if (kv_io_init(&io, kind, &loop, dir, KV_LOG_ERROR, err, sizeof err) != 0)
        die("io", err);
    if (raft_init(&raft, &io.io, &fsm, 1, address) != 0)
        die("raft_init", raft.errmsg);
    if (raft_start(&raft) != 0)
        die("raft_start", raft.errmsg);
    uint64_t t1 = bench_now_ns();
    usage_of(RUSAGE_SELF, &cs, &cpu1);
    usage_of(RUSAGE_THREAD, &cs, &loop1);
    long rss1 = proc_status_kb("VmRSS"), hwm1 = proc_status_kb("VmHWM");
    printf("load_ms=%.2f rss_kb=%ld hwm_kb=%ld last_index=%llu cpu_ms=%.1f loop_cpu_ms=%.1f\n",
           (double)(t1 - t0) / 1e6, rss1 - rss0, hwm1 - hwm0,
           (unsigned long long)raft_last_index(&raft), (double)(cpu1 - cpu0) / 1e3,
           (double)(loop1 - loop0) / 1e3);
    fflush(stdout);
    _exit(0); /* the figures are out; no need to close */
}

struct load_result {
    double ms;
    long rss_kb, hwm_kb;
    unsigned long long last_index;
    double cpu_ms, loop_cpu_ms; /* the process's CPU time; the loop thread's */
};

static struct load_result run_load(const char *self, enum kv_io_kind kind, const char *root,
                                   uint64_t n, size_t size, uint64_t snap_at, unsigned runs,
                                   bool keep, double *write_s)
{
    char dir[4200], addr[N_NODES][32], cmd[9000], line[512];
    fmt(dir, sizeof dir, "%s/load-%s", root, kv_io_name(kind));
    bench_rm_rf(dir);
    mkdir(dir, 0755);
    for (unsigned i = 0; i < N_NODES; i++)
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", free_port());
    uint64_t t0 = bench_now_ns();
    write_log(kind, dir, addr, n, size, snap_at);
    *write_s = (double)(bench_now_ns() - t0) / 1e9;
    struct load_result best = {.ms = -1};
    for (unsigned r = 0; r < runs; r++) {
        fmt(cmd, sizeof cmd, "'%s' --load-child %s '%s' 127.0.0.1:%d", self, kv_io_name(kind), dir,
            free_port());
        FILE *p = popen(cmd, "r");
        struct load_result lr = {.ms = -1};
        if (p && fgets(line, sizeof line, p) &&
            sscanf(line,
                   "load_ms=%lf rss_kb=%ld hwm_kb=%ld last_index=%llu cpu_ms=%lf loop_cpu_ms=%lf",
                   &lr.ms, &lr.rss_kb, &lr.hwm_kb, &lr.last_index, &lr.cpu_ms,
                   &lr.loop_cpu_ms) != 6)
            lr.ms = -1;
        if (!p || pclose(p) != 0 || lr.ms < 0)
            die("load child failed", cmd);
        if (lr.last_index != n + 1)
            die("load child", "loaded a different number of entries than written");
        if (best.ms < 0 || lr.ms < best.ms)
            best = lr;
    }
    if (!keep)
        bench_rm_rf(dir);
    return best;
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    die("usage", "raftkv [--io uv,rlog] [--seconds S] [--size B] [--load-entries N] "
                 "[--load-runs R] [--load-snapshot-at N] [--dir DIR] [--window W] [--skip-commits] "
                 "[--skip-load] [--keep]");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a peer gone: EPIPE, not death */
    if (argc == 5 && strcmp(argv[1], "--load-child") == 0)
        return load_child(argv[2], argv[3], argv[4]);
    const char *root = "/tmp/rlog-bench-raftkv";
    double seconds = 2;
    size_t size = 1024;
    uint64_t load_entries = 100000;
    uint64_t snap_at = 0;
    unsigned load_runs = 3;
    bool commits = true, load = true, keep = false;
    unsigned windows[2] = {1, 64}; /* 0: not run */
    enum kv_io_kind kinds[2];
    unsigned n_kinds = 0;
    const char *ios = NULL;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--skip-commits") == 0) {
            commits = false;
            continue;
        }
        if (strcmp(f, "--skip-load") == 0) {
            load = false;
            continue;
        }
        if (strcmp(f, "--keep") == 0) {
            keep = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(f, "--io") == 0)
            ios = v;
        else if (strcmp(f, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(f, "--size") == 0)
            size = strtoull(v, NULL, 10);
        else if (strcmp(f, "--load-entries") == 0)
            load_entries = strtoull(v, NULL, 10);
        else if (strcmp(f, "--load-snapshot-at") == 0)
            snap_at = strtoull(v, NULL, 10);
        else if (strcmp(f, "--load-runs") == 0)
            load_runs = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(f, "--dir") == 0)
            root = v;
        else if (strcmp(f, "--window") == 0) {
            unsigned x = (unsigned)strtoul(v, NULL, 10);
            if (x == 0 || x > MAX_WINDOW)
                usage();
            windows[0] = x;
            windows[1] = 0;
        } else
            usage();
    }
    if (seconds <= 0 || size == 0 || load_entries == 0 || load_runs == 0 ||
        snap_at > load_entries + 1)
        usage();
    if (ios) {
        char *copy = strdup(ios), *save = NULL;
        for (char *s = strtok_r(copy, ",", &save); s && n_kinds < 2; s = strtok_r(NULL, ",", &save))
            if (kv_io_parse(s, &kinds[n_kinds++]) != 0)
                die("--io: unknown or not built", s);
        free(copy);
    } else {
        kinds[n_kinds++] = KV_IO_UV;
        if (kv_io_have_rlog())
            kinds[n_kinds++] = KV_IO_RLOG;
    }
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        die("readlink /proc/self/exe", strerror(errno));
    self[sl] = '\0';
    mkdir(root, 0755);
    printf("raftkv: libraft %s on", "0.15");
    for (unsigned k = 0; k < n_kinds; k++)
        printf(" %s", kv_io_name(kinds[k]));
    printf("%s; %zu B entries; dir %s\n", kv_io_have_rlog() ? "" : " (rlog io not built)", size,
           root);

    struct commit_result cr[2][2];
    if (commits) {
        printf("\n3 nodes on loopback, a thread and loop each; %.1f s per run after a warm-up\n",
               seconds);
        printf("%-6s %7s %12s %10s %10s %10s %10s %10s\n", "io", "window", "commits/s", "p50 us",
               "p99 us", "measured", "cs/commit", "cpu us/c");
        for (unsigned w = 0; w < 2; w++) {
            for (unsigned k = 0; k < n_kinds && windows[w] != 0; k++) {
                cr[w][k] = run_commits(kinds[k], windows[w], size, seconds, root);
                printf("%-6s %7u %12.0f %10.0f %10.0f %10" PRIu64 " %10.1f %10.0f\n",
                       kv_io_name(kinds[k]), windows[w], cr[w][k].per_s, cr[w][k].p50_us,
                       cr[w][k].p99_us, cr[w][k].measured, cr[w][k].cs_per_commit,
                       cr[w][k].cpu_us_per_commit);
                fflush(stdout);
            }
        }
    }
    struct load_result lr[2];
    double write_s[2];
    if (load) {
        printf("\nload: io init + raft_init + raft_start on a log of %" PRIu64
               " entries of %zu B, best of %u\n",
               load_entries, size, load_runs);
        if (snap_at > 0)
            printf("after a snapshot at index %" PRIu64 " put with trailing %u (the io may drop "
                   "entries up to %" PRIu64 ")\n",
                   snap_at, LOAD_TRAILING, snap_at > LOAD_TRAILING ? snap_at - LOAD_TRAILING : 0);
        printf("%-6s %12s %14s %14s %12s %12s %12s\n", "io", "load ms", "RSS delta MB",
               "HWM delta MB", "write s", "cpu ms", "loop cpu ms");
        for (unsigned k = 0; k < n_kinds; k++) {
            lr[k] = run_load(self, kinds[k], root, load_entries, size, snap_at, load_runs, keep,
                             &write_s[k]);
            printf("%-6s %12.1f %14.1f %14.1f %12.1f %12.1f %12.1f\n", kv_io_name(kinds[k]),
                   lr[k].ms, lr[k].rss_kb / 1024.0, lr[k].hwm_kb / 1024.0, write_s[k], lr[k].cpu_ms,
                   lr[k].loop_cpu_ms);
            fflush(stdout);
        }
    }
    /* key=value lines, and the ratios when both ran (uv first, rlog second) */
    for (unsigned k = 0; k < n_kinds; k++) {
        const char *name = kv_io_name(kinds[k]);
        for (unsigned w = 0; commits && w < 2 && windows[w] != 0; w++)
            printf("%s_w%u_commits_per_s=%.0f\n%s_w%u_p50_us=%.0f\n%s_w%u_p99_us=%.0f\n"
                   "%s_w%u_cs_per_commit=%.1f\n%s_w%u_cpu_us_per_commit=%.0f\n",
                   name, windows[w], cr[w][k].per_s, name, windows[w], cr[w][k].p50_us, name,
                   windows[w], cr[w][k].p99_us, name, windows[w], cr[w][k].cs_per_commit, name,
                   windows[w], cr[w][k].cpu_us_per_commit);
        if (load)
            printf("%s_load_ms=%.1f\n%s_load_rss_kb=%ld\n%s_load_cpu_ms=%.1f\n"
                   "%s_load_loop_cpu_ms=%.1f\n",
                   name, lr[k].ms, name, lr[k].rss_kb, name, lr[k].cpu_ms, name, lr[k].loop_cpu_ms);
    }
    if (n_kinds == 2 && kinds[0] == KV_IO_UV && kinds[1] == KV_IO_RLOG) {
        printf("\nratios rlog/uv (goals: throughput w64 >= 2, p99 w1 <= 1, load time <= 0.25, "
               "RSS <= 0.125)\n");
        for (unsigned w = 0; commits && w < 2 && windows[w] != 0; w++)
            printf("w%u_throughput_ratio=%.2f\nw%u_p50_ratio=%.2f\nw%u_p99_ratio=%.2f\n",
                   windows[w], cr[w][1].per_s / cr[w][0].per_s, windows[w],
                   cr[w][1].p50_us / cr[w][0].p50_us, windows[w],
                   cr[w][1].p99_us / cr[w][0].p99_us);
        if (load)
            printf("load_time_ratio=%.3f\nload_rss_ratio=%.3f\nload_loop_cpu_ratio=%.3f\n",
                   lr[1].ms / lr[0].ms, (double)lr[1].rss_kb / (double)lr[0].rss_kb,
                   lr[1].loop_cpu_ms / lr[0].loop_cpu_ms);
    }
    return 0;
}
#endif
