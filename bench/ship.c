/*
 * bench/ship — segment shipping over tcp loopback, against raw nng in the
 * same run.
 *
 * Cases:
 *   raw        nng pair1 (monogamous) over tcp://127.0.0.1: a sender thread
 *              pushes 1 MiB messages as fast as the receiver takes them —
 *              the ceiling any protocol over nng can reach here;
 *   rtt        round trip of a 64-byte message through raw pair1 (median);
 *   disk       the same bytes as the catch-up written durably into 16 MiB
 *              files (pwrite, fdatasync and a directory fsync per file):
 *              the ceiling of a durable copy on this disk;
 *   catch-up   a leader log of --catchup-mib MiB (64 KiB records, 16 MiB
 *              segments) is shipped to an empty follower directory: time
 *              from the follower's start until it is durable at the
 *              leader's last LSN; bytes = the leader's segment bytes;
 *   lag        the leader appends 1 KiB records, one per fdatasync
 *              (RLOG_SYNC_EACH), for --seconds; a follower tails it
 *              (after a warm-up of 1,000 records it has caught up with). For
 *              each record: the time from the leader's append returning
 *              (durable there) to the follower reporting it durable
 *              (on_durable). Percentiles against the leader's own fdatasync
 *              percentiles (the append call latency) and the rtt. Segments
 *              of --tail-segment-kib (default 16 MiB: a 4 s tail never
 *              leaves its first segment; a small size makes the follower
 *              start segments in place while it tails). Counted through
 *              a counting vfs under the follower: its batches (durable
 *              advances), syncs per batch (fdatasync, fsync, directory
 *              fsync) and bytes written per payload byte. The records
 *              whose lag reached p99 are grouped into clusters (lag
 *              windows that overlap): how many, how often, and whether a
 *              follower fdatasync inside took longer than the leader's
 *              p99 (the disk stalled), whether it was a heavy one (zeros
 *              written ahead, a segment start), and whether a probe
 *              thread sleeping 1 ms at a time overslept by > 2 ms in it
 *              (the whole process could not run) — what the tail waited
 *              for. CPU time and context switches of the whole process
 *              per record (the probe's ~1,000 wake-ups per second
 *              included);
 *   pipeline   the lag's limit on this disk, run after the tail for as long:
 *              a leader thread writes a 1 KiB record and fdatasyncs it,
 *              a follower thread writes what became durable meanwhile
 *              into its own file with one pwrite + fdatasync — no rlog,
 *              no network. Its p99 shows what the disk alone does to a
 *              lag's tail in the same run. Its records with lag >= its
 *              p99 are clustered like the tail's, and the stall probe
 *              runs during it too: a periodic stall of the machine shows
 *              the same cluster interval in both phases. Both phases print
 *              the CPUs the process used and the mean number of records
 *              in flight (leader-durable, not yet follower-durable; by
 *              Little's law mean lag x record rate): a stall of the whole
 *              machine delays about that many records, so the share of
 *              records it reaches (against the 1% of a p99) grows with it.
 *   pipeline over nng
 *              the same copy in rlog's topology without rlog: the leader
 *              thread wakes a sender thread that sends what became durable
 *              in one raw nng pair1 message over tcp loopback; a receiver
 *              thread hands it to the follower thread. What nng's path
 *              (its threads and their wake-ups) adds, against what rlog
 *              adds on top (pipeline_nng_*, lag_p99_vs_pipeline_nng).
 * Leader and follower run in this process, each on its own thread with its
 * own poll loop, talking through the nng transport.
 *
 * Goals (issue 5): catch-up >= 1 GB/s; lag p99 <= 2 x leader fsync p99 + rtt.
 *
 * Output: a table, then key=value lines (raw_mb_s, disk_mb_s, catchup_mb_s,
 * catchup_vs_raw, catchup_vs_disk, lag_p50_us, lag_p99_us, leader_sync_p99_us, rtt_us,
 * lag_goal_us, follower_syncs_per_batch, follower_write_amplification,
 * pipeline_lag_p99_us, lag_p99_vs_pipeline, lag_tail_clusters, ...).
 *
 *   ship [--quick] [--seconds S] [--catchup-mib M] [--tail-segment-kib K]
 *   data under $RLOG_BENCH_DIR or ./bench-data
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "bench/common/bench_util.h"
#include "os/sync.h"
#include "rlog/log.h"
#include "rlog/ship.h"
#include "rlog/transport.h"
#include "rlog/vfs.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile p (0..100) of n sorted values. */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* A free tcp port on 127.0.0.1 (bind port 0 with a throwaway socket). */
static int free_port(void)
{
    nng_socket s;
    nng_listener l;
    int port = 0;
    if (nng_pair1_open(&s) == 0) {
        if (nng_listen(s, "tcp://127.0.0.1:0", &l, 0) == 0)
            nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
        nng_close(s);
    }
    if (port <= 0)
        bench_die("free_port", "cannot bind tcp://127.0.0.1:0");
    return port;
}

/* ---- raw nng pair1 ---- */

typedef struct raw_rx {
    nng_socket s;
    uint64_t n, bytes;
} raw_rx;

static void *raw_rx_main(void *arg)
{
    raw_rx *r = arg;
    for (uint64_t i = 0; i < r->n; i++) {
        nng_msg *m;
        int e = nng_recvmsg(r->s, &m, 0);
        if (e)
            bench_die("raw recv", nng_strerror(e));
        r->bytes += nng_msg_len(m);
        nng_msg_free(m);
    }
    return NULL;
}

/* MB/s for n messages of `size` bytes over raw pair1 tcp loopback; also a
 * median round trip of 64-byte messages. */
static double raw_throughput(uint64_t n, size_t size, double *rtt_us)
{
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
    nng_socket a, b;
    int e;
    if ((e = nng_pair1_open(&a)) || (e = nng_pair1_open(&b)))
        bench_die("pair1 open", nng_strerror(e));
    nng_socket_set_size(b, NNG_OPT_RECVMAXSZ, size + 1024);
    if ((e = nng_listen(b, url, NULL, 0)) || (e = nng_dial(a, url, NULL, 0)))
        bench_die("pair1 connect", nng_strerror(e));
    void *payload = calloc(1, size);
    raw_rx rx = {b, n, 0};
    pthread_t t;
    uint64_t t0 = bench_now_ns();
    pthread_create(&t, NULL, raw_rx_main, &rx);
    for (uint64_t i = 0; i < n; i++) {
        nng_msg *m;
        if ((e = nng_msg_alloc(&m, 0)) || (e = nng_msg_append(m, payload, size)) ||
            (e = nng_sendmsg(a, m, 0)))
            bench_die("raw send", nng_strerror(e));
    }
    pthread_join(t, NULL);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    /* round trips */
    enum { RTTS = 2000 };
    static uint64_t rt[RTTS];
    for (int i = 0; i < RTTS; i++) {
        uint64_t s0 = bench_now_ns();
        char ping[64] = {0};
        nng_send(a, ping, sizeof ping, 0);
        nng_msg *m;
        nng_recvmsg(b, &m, 0);
        nng_sendmsg(b, m, 0);
        nng_recvmsg(a, &m, 0);
        nng_msg_free(m);
        rt[i] = bench_now_ns() - s0;
    }
    qsort(rt, RTTS, sizeof rt[0], cmp_u64);
    *rtt_us = (double)pct(rt, RTTS, 50) / 1000.0;
    nng_close(a);
    nng_close(b);
    free(payload);
    return (double)rx.bytes / secs / 1e6;
}

/* ---- raw disk: what a copy of `bytes` costs when written durably ---- */

/* MB/s writing `bytes` as files of seg_size bytes (1 MiB pwrites, one
 * fdatasync per file, one directory fsync per file) under dir: the
 * ceiling of a follower's catch-up on this disk. */
static double disk_throughput(const char *dir, uint64_t bytes, uint64_t seg_size)
{
    rlog_vfs *v = rlog_vfs_posix();
    v->mkdir(v, dir);
    size_t chunk = 1u << 20, done_now;
    void *buf = malloc(chunk);
    memset(buf, 0xa5, chunk);
    uint64_t t0 = bench_now_ns(), done = 0;
    for (unsigned i = 0; done < bytes; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%.4200s/f%u", dir, i);
        rlog_file *f = NULL;
        int e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f);
        if (e)
            bench_die("disk baseline", strerror(e));
        for (uint64_t off = 0; off < seg_size && done < bytes; off += chunk, done += chunk)
            if (v->pwrite(v, f, buf, chunk, off, &done_now))
                bench_die("disk baseline", "short write");
        rlg_os_fdatasync(v, f);
        v->close(v, f);
        rlg_os_sync_dir(v, dir);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    free(buf);
    bench_rm_rf(dir);
    return (double)done / secs / 1e6;
}

/* ---- the raw pipeline: what a lag of this disk is, without rlog ---- */

/* A 1 KiB record with its 28-byte header, as the tail writes it. */
#define PIPE_REC  1052u
#define PIPE_FILE (64u << 20)

typedef struct raw_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t produced; /* records available to the follower */
    bool stop;
    uint64_t *done_ns; /* leader-durable time of record i */
    uint64_t *lag_ns;
    size_t nlag, cap;
    rlog_file *f; /* the follower's file (posix vfs) */
    /* over nng: the leader sends each durable record (its index, then the
     * bytes) through tx; a receiver thread takes them from rx and hands
     * them to the follower thread as the in-process pipeline does */
    bool net;
    nng_socket tx, rx;
    pthread_cond_t scv; /* the sender waits here for durable records */
    uint64_t durable_n; /* records leader-durable (net) */
    bool send_stop;
} raw_pipe;

#define PIPE_STOP UINT64_MAX /* the index that ends a pipeline over nng */

/* The follower's network side of the pipeline over nng: each message makes
 * its record available to the follower thread (as nng's threads queue
 * what arrives for rlog's follower while it syncs). */
static void *raw_pipe_receiver(void *arg)
{
    raw_pipe *p = arg;
    for (;;) {
        nng_msg *m;
        int e = nng_recvmsg(p->rx, &m, 0);
        if (e)
            bench_die("pipeline over nng: recv", nng_strerror(e));
        uint64_t idx;
        memcpy(&idx, nng_msg_body(m), sizeof idx);
        nng_msg_free(m);
        pthread_mutex_lock(&p->mu);
        if (idx == PIPE_STOP)
            p->stop = true;
        else
            p->produced = idx + 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (idx == PIPE_STOP)
            return NULL;
    }
}

/* Sends records up to idx (their bytes; or PIPE_STOP) in one message. */
static void raw_pipe_send(raw_pipe *p, uint64_t idx, const uint8_t *recs, size_t len)
{
    nng_msg *m;
    int e;
    if ((e = nng_msg_alloc(&m, 0)) || (e = nng_msg_append(m, &idx, sizeof idx)) ||
        (e = nng_msg_append(m, recs, len)) || (e = nng_sendmsg(p->tx, m, 0)))
        bench_die("pipeline over nng: send", nng_strerror(e));
}

/* Waits until more than `from` records are available (*avail) or *stop;
 * returns the end of the next batch of at most `max` records (`from` when
 * stopped with nothing left). Takes and releases p->mu. */
static uint64_t pipe_next_batch(raw_pipe *p, pthread_cond_t *cv, const uint64_t *avail,
                                const bool *stop, uint64_t from, uint64_t max)
{
    pthread_mutex_lock(&p->mu);
    while (*avail == from && !*stop)
        pthread_cond_wait(cv, &p->mu);
    uint64_t to = *avail;
    pthread_mutex_unlock(&p->mu);
    return to - from > max ? from + max : to;
}

/* The leader's sending side of the pipeline over nng (rlog's leader poll
 * thread): whatever became durable since its last send, in one message. */
static void *raw_pipe_sender(void *arg)
{
    raw_pipe *p = arg;
    size_t max = 1024;
    uint8_t *buf = calloc(max, PIPE_REC);
    uint64_t sent = 0, to;
    while ((to = pipe_next_batch(p, &p->scv, &p->durable_n, &p->send_stop, sent, max)) != sent) {
        raw_pipe_send(p, to - 1, buf, (size_t)(to - sent) * PIPE_REC);
        sent = to;
    }
    raw_pipe_send(p, PIPE_STOP, buf, 0);
    free(buf);
    return NULL;
}

/* One record's (or batch's) durable write in the raw pipeline: pwrite and
 * fdatasync through the posix vfs and os/sync.h, as rlog's own writes. */
static void pipe_write(rlog_file *f, const void *buf, size_t len, uint64_t off, const char *who)
{
    rlog_vfs *v = rlog_vfs_posix();
    size_t done;
    if (v->pwrite(v, f, buf, len, off, &done) || rlg_os_fdatasync(v, f))
        bench_die("raw pipeline", who);
}

/* The follower of the raw pipeline: whatever the leader made durable since
 * its last sync, written with one pwrite and one fdatasync. */
static void *raw_pipe_follower(void *arg)
{
    raw_pipe *p = arg;
    size_t max = 1024;
    uint8_t *buf = calloc(max, PIPE_REC);
    uint64_t off = 0, from = 0, to;
    while ((to = pipe_next_batch(p, &p->cv, &p->produced, &p->stop, from, max)) != from) {
        size_t len = (size_t)(to - from) * PIPE_REC;
        if (off + len > PIPE_FILE)
            off = 0;
        pipe_write(p->f, buf, len, off, "follower write");
        off += len;
        uint64_t t = bench_now_ns();
        for (uint64_t i = from; i < to && i < p->cap; i++)
            p->lag_ns[p->nlag++] = t - p->done_ns[i];
        from = to;
    }
    free(buf);
    return NULL;
}

typedef struct pipe_result {
    size_t records;
    double lag50, lag99, lag999, lagmax, sync99; /* us */
    double lag_mean;                             /* us */
    size_t clusters;                             /* of records with lag >= p99 */
    double interval_ms_p50;                      /* between cluster starts */
} pipe_result;

/*
 * Groups records whose lag reached thr into clusters as tail_analysis does
 * (lag windows [done, done + lag] that overlap or lie within 1 ms): how
 * many, and the interval between their starts (p50). done[i] and lag[i]
 * belong to record i, in record order.
 */
static void lag_clusters(const uint64_t *done, const uint64_t *lag, size_t n, uint64_t thr,
                         size_t *clusters, double *interval_ms_p50)
{
    uint64_t *starts = calloc(n + 1, sizeof *starts);
    size_t nc = 0;
    uint64_t cend = 0;
    for (size_t i = 0; i < n; i++) {
        if (lag[i] < thr)
            continue;
        if (nc == 0 || done[i] > cend + 1000000u)
            starts[nc++] = done[i];
        if (done[i] + lag[i] > cend)
            cend = done[i] + lag[i];
    }
    for (size_t i = 1; i < nc; i++)
        starts[i - 1] = starts[i] - starts[i - 1];
    size_t ng = nc ? nc - 1 : 0;
    qsort(starts, ng, sizeof *starts, cmp_u64);
    *clusters = nc;
    *interval_ms_p50 = (double)pct(starts, ng, 50) / 1e6;
    free(starts);
}

/* The tail's limit on this disk, measured like the tail: a leader thread
 * writes a 1 KiB record and fdatasyncs it, for `seconds`; a follower
 * thread in the same process (no network, no verification) writes what
 * became durable meanwhile into its own file and fdatasyncs it. Lag: from
 * the leader's fdatasync returning to the follower's. Both files are
 * pre-written, as rlog's are. With `net`, the records travel as in rlog's
 * topology but without rlog: the leader thread wakes a sender thread, which
 * sends whatever became durable since its last send in one raw nng pair1
 * message over tcp loopback; a receiver thread hands them to the follower
 * thread — what nng's path adds to the same copy. */
static pipe_result raw_pipeline(const char *dir, double seconds, bool net)
{
    char lpath[4300], fpath[4300];
    mkdir(dir, 0755);
    snprintf(lpath, sizeof lpath, "%.4200s/leader", dir);
    snprintf(fpath, sizeof fpath, "%.4200s/follower", dir);
    rlog_file *lf = bench_prewritten(lpath, PIPE_FILE);
    raw_pipe p = {.cap = 4u << 20, .f = bench_prewritten(fpath, PIPE_FILE)};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    p.done_ns = calloc(p.cap, sizeof *p.done_ns);
    p.lag_ns = calloc(p.cap, sizeof *p.lag_ns);
    uint64_t *sync = calloc(p.cap, sizeof *sync);
    uint8_t rec[PIPE_REC];
    memset(rec, 0x5a, sizeof rec);
    pthread_t t, rt, st;
    p.net = net;
    if (net) {
        char url[64];
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
        int e;
        if ((e = nng_pair1_open(&p.tx)) || (e = nng_pair1_open(&p.rx)) ||
            (e = nng_listen(p.rx, url, NULL, 0)) || (e = nng_dial(p.tx, url, NULL, 0)))
            bench_die("pipeline over nng", nng_strerror(e));
        pthread_cond_init(&p.scv, NULL);
        pthread_create(&rt, NULL, raw_pipe_receiver, &p);
        pthread_create(&st, NULL, raw_pipe_sender, &p);
    }
    pthread_create(&t, NULL, raw_pipe_follower, &p);
    uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9), off = 0, n = 0;
    while (bench_now_ns() < end && n < p.cap) {
        uint64_t s0 = bench_now_ns();
        if (off + PIPE_REC > PIPE_FILE)
            off = 0;
        pipe_write(lf, rec, PIPE_REC, off, "leader write");
        off += PIPE_REC;
        uint64_t s1 = bench_now_ns();
        sync[n] = s1 - s0;
        p.done_ns[n] = s1;
        pthread_mutex_lock(&p.mu);
        if (net) {
            p.durable_n = ++n;
            pthread_cond_signal(&p.scv);
        } else {
            p.produced = ++n;
            pthread_cond_signal(&p.cv);
        }
        pthread_mutex_unlock(&p.mu);
    }
    if (net) {
        pthread_mutex_lock(&p.mu);
        p.send_stop = true;
        pthread_cond_signal(&p.scv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(st, NULL);
        pthread_join(rt, NULL);
        nng_close(p.tx);
        nng_close(p.rx);
        pthread_cond_destroy(&p.scv);
    } else {
        pthread_mutex_lock(&p.mu);
        p.stop = true;
        pthread_cond_signal(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    pthread_join(t, NULL);
    rlog_vfs *v = rlog_vfs_posix();
    v->close(v, lf);
    v->close(v, p.f);
    bench_rm_rf(dir);
    double sum = 0;
    for (size_t i = 0; i < p.nlag; i++)
        sum += (double)p.lag_ns[i];
    /* lag_ns[i] is record i's until sorted: cluster the tail first */
    uint64_t *sorted = malloc((p.nlag + 1) * sizeof *sorted);
    memcpy(sorted, p.lag_ns, p.nlag * sizeof *sorted);
    qsort(sorted, p.nlag, sizeof *sorted, cmp_u64);
    size_t nclusters = 0;
    double interval = 0;
    lag_clusters(p.done_ns, p.lag_ns, p.nlag, pct(sorted, p.nlag, 99), &nclusters, &interval);
    free(sorted);
    qsort(p.lag_ns, p.nlag, sizeof *p.lag_ns, cmp_u64);
    qsort(sync, n, sizeof *sync, cmp_u64);
    pipe_result r = {p.nlag,
                     (double)pct(p.lag_ns, p.nlag, 50) / 1000.0,
                     (double)pct(p.lag_ns, p.nlag, 99) / 1000.0,
                     (double)pct(p.lag_ns, p.nlag, 99.9) / 1000.0,
                     (double)pct(p.lag_ns, p.nlag, 100) / 1000.0,
                     (double)pct(sync, n, 99) / 1000.0,
                     p.nlag ? sum / (double)p.nlag / 1000.0 : 0,
                     nclusters,
                     interval};
    free(sync);
    free(p.lag_ns);
    free(p.done_ns);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    return r;
}

/* ---- leader / follower threads ---- */

typedef struct node {
    pthread_t tid;
    atomic_bool stop;
    rlog_ship_leader *ld;
    rlog_ship_follower *fw;
} node;

static void *node_main(void *arg)
{
    node *n = arg;
    while (!atomic_load(&n->stop)) {
        int e = n->ld ? rlog_ship_leader_poll(n->ld, 5) : rlog_ship_follower_poll(n->fw, 5);
        if (e && e != RLOG_ECLOSED) {
            fprintf(stderr, "bench/ship: poll: %s: %s\n", rlog_strerror(e),
                    n->ld ? rlog_ship_leader_errmsg(n->ld) : rlog_ship_follower_errmsg(n->fw));
        }
    }
    return NULL;
}

/* An nng transport and its configuration: server ID, listening on ADDRESS
 * ("" for none). */
static rlog_transport *new_transport(rlog_transport_config *cfg, uint64_t id, const char *address)
{
    rlog_transport *t;
    if (rlog_transport_nng_new(&t))
        bench_die("transport", "nng");
    rlog_transport_config_init(cfg);
    cfg->server_id = id;
    cfg->address = address;
    return t;
}

static rlog_ship_leader *start_leader(rlog_log *log, const char *url)
{
    rlog_transport_config cfg;
    rlog_transport *t = new_transport(&cfg, 1, url);
    rlog_ship_leader *ld = NULL;
    int e = rlog_ship_leader_new(log, t, &cfg, NULL, &ld);
    if (e)
        bench_die("leader", rlog_strerror(e));
    return ld;
}

typedef struct lag_state {
    /* leader side: durable time of LSN i at leader_ns[i - base] */
    uint64_t base, cap;
    _Atomic uint64_t *leader_ns;
    uint64_t *start_ns;   /* leader: when the append of LSN base + i began */
    uint64_t *durable_ns; /* follower: when LSN base + i was reported durable */
    uint64_t *lag_ns;
    size_t nlag;
    uint64_t last_seen;
    _Atomic uint64_t follower_durable;
    _Atomic uint64_t advances; /* on_durable calls: the follower's batches */
    /* the follower's heaviest batch while measuring: bytes written and
     * syncs since the previous durable advance (follower thread) */
    atomic_bool measuring;
    uint64_t prev_written, prev_syncs;
    _Atomic uint64_t max_batch_bytes, max_batch_syncs;
} lag_state;

static void on_durable(void *data, uint64_t lsn)
{
    lag_state *ls = data;
    uint64_t t = bench_now_ns();
    for (uint64_t l = ls->last_seen + 1; l <= lsn; l++) {
        if (l >= ls->base && l - ls->base < ls->cap) {
            uint64_t ln = atomic_load(&ls->leader_ns[l - ls->base]);
            if (ls->durable_ns != NULL)
                ls->durable_ns[l - ls->base] = t;
            if (ln && t > ln)
                ls->lag_ns[ls->nlag++] = t - ln;
        }
    }
    if (lsn > ls->last_seen)
        ls->last_seen = lsn;
    ls->advances++;
    uint64_t w = atomic_load(&bench_vfs_written), n = atomic_load(&bench_vfs_syncs);
    if (atomic_load(&ls->measuring)) {
        if (w - ls->prev_written > ls->max_batch_bytes)
            ls->max_batch_bytes = w - ls->prev_written;
        if (n - ls->prev_syncs > ls->max_batch_syncs)
            ls->max_batch_syncs = n - ls->prev_syncs;
    }
    ls->prev_written = w;
    ls->prev_syncs = n;
    atomic_store(&ls->follower_durable, lsn);
}

static rlog_ship_follower *start_follower(const char *dir, const char *url, lag_state *ls)
{
    rlog_transport_config cfg;
    rlog_transport *t = new_transport(&cfg, 2, "");
    rlog_ship_follower_options o = {0};
    o.vfs = bench_counting_vfs(); /* the follower's disk, counted */
    o.on_durable = on_durable;
    o.data = ls;
    rlog_ship_follower *fw = NULL;
    int e = rlog_ship_follower_new(dir, t, &cfg, url, &o, &fw);
    if (e)
        bench_die("follower", rlog_strerror(e));
    return fw;
}

/* ---- a probe for stalls of the whole machine ---- */

/* Sleeps 1 ms at a time and records when a sleep overran by more than
 * 2 ms (start, end): a time in which this process could not run at all,
 * whatever it waited for — the CPU taken away (other processes, the
 * hypervisor), not the disk. */
typedef struct probe {
    pthread_t tid;
    atomic_bool stop;
    uint64_t *ts;
    size_t n, cap;
} probe;

static void *probe_main(void *arg)
{
    probe *p = arg;
    while (!atomic_load(&p->stop)) {
        uint64_t t0 = bench_now_ns();
        usleep(1000);
        uint64_t t1 = bench_now_ns();
        if (t1 - t0 > 3000000u && p->n < p->cap) {
            p->ts[2 * p->n] = t0 + 1000000u;
            p->ts[2 * p->n + 1] = t1;
            p->n++;
        }
    }
    return NULL;
}

/* The probe's stalls: how many, their total, and the interval between the
 * starts of successive ones (p50) — a periodic stall of the machine shows
 * as a steady interval (a 100 ms grid), whichever phase it runs in. */
typedef struct probe_summary {
    size_t n;
    double stalled_ms, interval_ms_p50;
} probe_summary;

static probe_summary probe_sum(const probe *p)
{
    probe_summary r = {p->n, 0, 0};
    uint64_t *gaps = calloc(p->n + 1, sizeof *gaps);
    for (size_t k = 0; k < p->n; k++) {
        r.stalled_ms += (double)(p->ts[2 * k + 1] - p->ts[2 * k]) / 1e6;
        if (k > 0)
            gaps[k - 1] = p->ts[2 * k] - p->ts[2 * (k - 1)];
    }
    size_t ng = p->n ? p->n - 1 : 0;
    qsort(gaps, ng, sizeof *gaps, cmp_u64);
    r.interval_ms_p50 = (double)pct(gaps, ng, 50) / 1e6;
    free(gaps);
    return r;
}

static void probe_start(probe *p)
{
    *p = (probe){.cap = 1u << 16};
    p->ts = calloc(2 * p->cap, sizeof *p->ts);
    pthread_create(&p->tid, NULL, probe_main, p);
}

static void probe_stop(probe *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->tid, NULL);
}

/* ---- what the records above the lag's p99 waited for ---- */

typedef struct tail_report {
    size_t records;         /* records with lag >= p99 */
    size_t clusters;        /* of them, groups whose lag windows overlap */
    size_t slow_fw_sync;    /* clusters holding a follower fdatasync > leader sync p99 */
    size_t slow_leader;     /* clusters during which a leader append was > its p99 */
    double interval_ms_p50; /* between the starts of successive clusters */
    double lag_mean_us;     /* all measured records */
    double cluster_per_s;   /* clusters per second of tail */
    size_t heavy_clusters;  /* clusters holding a heavy follower fdatasync */
    size_t probe_clusters;  /* clusters overlapping a stall of the probe */
    size_t heavy, plain;    /* follower fdatasyncs after >= HEAVY_SYNC of zero fill, the others */
    double heavy_p50_us, plain_p50_us, plain_p99_us;
} tail_report;

/* A follower fdatasync after more than this many bytes of zero fill
 * written since the previous one is "heavy": zeros written ahead of the
 * records (a block allocation), or a segment's start. */
#define HEAVY_SYNC (4u << 10)

/*
 * Groups the records whose lag reached p99 into clusters (lag windows
 * [leader durable, follower durable] that overlap or lie within 1 ms) and
 * says, per cluster, whether the follower's disk stalled (one of its
 * fdatasyncs inside took longer than the leader's fdatasync p99) and
 * whether the leader's disk stalled at the same time. Records [first,
 * last]; fts: the follower's fdatasyncs (start, end pairs), in order.
 */
static tail_report tail_analysis(const lag_state *ls, uint64_t first, uint64_t last,
                                 uint64_t lag99_ns, uint64_t sync99_ns, const uint64_t *fts,
                                 size_t nfs, const probe *pb, double seconds)
{
    tail_report r = {0};
    uint64_t *starts = calloc(last - first + 2, sizeof *starts);
    double sum = 0;
    size_t nall = 0, fi = 0;
    uint64_t cbeg = 0, cend = 0;
    bool open_cluster = false, fw_slow = false, ld_slow = false;
    for (uint64_t l = first; l <= last + 1; l++) {
        bool in = l <= last && l - ls->base < ls->cap;
        uint64_t done = in ? atomic_load(&ls->leader_ns[l - ls->base]) : 0;
        uint64_t dur = in ? ls->durable_ns[l - ls->base] : 0;
        bool tail = done && dur > done && dur - done >= lag99_ns;
        if (done && dur > done) {
            sum += (double)(dur - done);
            nall++;
        }
        if (open_cluster && (!in || (tail && done > cend + 1000000u))) {
            /* close the cluster [cbeg, cend]: any follower sync inside? */
            while (fi < nfs && fts[3 * fi + 1] < cbeg)
                fi++;
            bool heavy = false;
            for (size_t k = fi; k < nfs && fts[3 * k] <= cend; k++) {
                fw_slow = fw_slow || fts[3 * k + 1] - fts[3 * k] > sync99_ns;
                heavy = heavy || (k > 0 && fts[3 * k + 2] - fts[3 * (k - 1) + 2] >= HEAVY_SYNC);
            }
            r.heavy_clusters += heavy;
            bool stalled = false;
            for (size_t k = 0; k < pb->n && !stalled; k++)
                stalled = pb->ts[2 * k] <= cend && pb->ts[2 * k + 1] >= cbeg;
            r.probe_clusters += stalled;
            starts[r.clusters++] = cbeg;
            r.slow_fw_sync += fw_slow;
            r.slow_leader += ld_slow;
            open_cluster = false;
        }
        if (!tail)
            continue;
        r.records++;
        if (!open_cluster) {
            open_cluster = true;
            cbeg = done;
            cend = dur;
            fw_slow = ld_slow = false;
            /* a leader append that overlapped the window and was slow */
            for (uint64_t k = l + 1; k <= last && k - ls->base < ls->cap; k++) {
                uint64_t s0 = ls->start_ns[k - ls->base], s1 = ls->leader_ns[k - ls->base];
                if (s0 == 0 || s0 > dur)
                    break;
                ld_slow = ld_slow || s1 - s0 > sync99_ns;
            }
        } else if (dur > cend) {
            cend = dur;
        }
    }
    uint64_t *gaps = calloc(r.clusters + 1, sizeof *gaps);
    for (size_t i = 1; i < r.clusters; i++)
        gaps[i - 1] = starts[i] - starts[i - 1];
    size_t ng = r.clusters ? r.clusters - 1 : 0;
    qsort(gaps, ng, sizeof *gaps, cmp_u64);
    r.interval_ms_p50 = (double)pct(gaps, ng, 50) / 1e6;
    r.lag_mean_us = nall ? sum / (double)nall / 1000.0 : 0;
    r.cluster_per_s = (double)r.clusters / seconds;
    uint64_t *hv = calloc(nfs + 1, sizeof *hv), *pl = calloc(nfs + 1, sizeof *pl);
    for (size_t k = 1; k < nfs; k++) {
        uint64_t d = fts[3 * k + 1] - fts[3 * k];
        if (fts[3 * k + 2] - fts[3 * (k - 1) + 2] >= HEAVY_SYNC)
            hv[r.heavy++] = d;
        else
            pl[r.plain++] = d;
    }
    qsort(hv, r.heavy, sizeof *hv, cmp_u64);
    qsort(pl, r.plain, sizeof *pl, cmp_u64);
    r.heavy_p50_us = (double)pct(hv, r.heavy, 50) / 1000.0;
    r.plain_p50_us = (double)pct(pl, r.plain, 50) / 1000.0;
    r.plain_p99_us = (double)pct(pl, r.plain, 99) / 1000.0;
    free(hv);
    free(pl);
    free(gaps);
    free(starts);
    return r;
}

/* A pipeline run with the stall probe beside it. */
typedef struct pipe_run {
    pipe_result r;
    probe_summary probe;
    double cpus;             /* CPU the process used per second of wall time */
    double in_flight;        /* mean records leader-durable, not follower-durable */
    double cpu_us, switches; /* per record, whole process */
    double goal;             /* 2 x its leader fdatasync p99 + rtt */
} pipe_run;

/* Runs raw_pipeline (net: over nng) with the probe and counts the
 * process's CPU. in_flight is the mean lag x the record rate (Little's
 * law): a stall of the whole machine delays about that many records, so
 * the share of records a periodic stall reaches grows with it. Both this
 * and the tail run the probe, so its ~1,000 wake-ups a second are in every
 * CPU figure. */
static pipe_run pipe_measure(const char *dir, double seconds, bool net, double rtt_us)
{
    pipe_run o;
    probe pb;
    probe_start(&pb);
    bench_usage c0 = bench_usage_now();
    uint64_t t0 = bench_now_ns();
    o.r = raw_pipeline(dir, seconds, net);
    double wall_us = (double)(bench_now_ns() - t0) / 1000.0;
    bench_usage c1 = bench_usage_now();
    probe_stop(&pb);
    o.probe = probe_sum(&pb);
    free(pb.ts);
    double recs = (double)(o.r.records ? o.r.records : 1);
    o.cpus = (c1.cpu_us - c0.cpu_us) / wall_us;
    o.in_flight = o.r.lag_mean * (double)o.r.records / wall_us;
    o.cpu_us = (c1.cpu_us - c0.cpu_us) / recs;
    o.switches = (double)(c1.csw - c0.csw) / recs;
    o.goal = 2 * o.r.sync99 + rtt_us;
    return o;
}

static uint64_t dir_bytes_of(rlog_log *log)
{
    rlog_metrics m;
    rlog_metrics_get(log, &m);
    return m.bytes;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    uint64_t catchup_mib = 1024, tail_segment_kib = 16384;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            seconds = 1;
            catchup_mib = 128;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--catchup-mib") && i + 1 < argc) {
            catchup_mib = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--tail-segment-kib") && i + 1 < argc) {
            tail_segment_kib = strtoull(argv[++i], NULL, 10);
            if (tail_segment_kib < 64 || tail_segment_kib > 1048576)
                bench_die("--tail-segment-kib", "must be in 64 .. 1048576");
        } else {
            fprintf(stderr, "usage: ship [--quick] [--seconds S] [--catchup-mib M] "
                            "[--tail-segment-kib K]\n" BENCH_USAGE_DATA);
            return 2;
        }
    }
    const char *d = bench_data_root();
    char root[4096], ldir[4200], fdir[4200], fdir2[4200];
    snprintf(root, sizeof root, "%s/ship", d);
    bench_rm_rf(root);
    mkdir(d, 0755);
    mkdir(root, 0755);
    snprintf(ldir, sizeof ldir, "%s/leader", root);
    snprintf(fdir, sizeof fdir, "%s/follower", root);
    snprintf(fdir2, sizeof fdir2, "%s/follower-tail", root);
    printf("bench/ship: catch-up of %" PRIu64 " MiB, %.1f s of live tail, data in %s\n\n",
           catchup_mib, seconds, root);

    /* raw ceilings: the network, and the disk */
    char ddir[4200];
    snprintf(ddir, sizeof ddir, "%s/disk", root);
    double disk_mb_s = disk_throughput(ddir, catchup_mib << 20, 16u << 20);
    double rtt_us = 0;
    double raw_mb_s = raw_throughput(catchup_mib < 256 ? 512 : 2048, 1u << 20, &rtt_us);

    /* catch-up: build the leader log (not timed) */
    rlog_options o;
    rlog_options_init(&o);
    o.flags = RLOG_OPEN_CREATE | RLOG_OPEN_THREAD;
    o.segment_size = 16u << 20;
    o.sync = RLOG_SYNC_NONE;
    rlog_log *log = NULL;
    int e = rlog_open(ldir, &o, &log, NULL);
    if (e)
        bench_die("open leader", rlog_strerror(e));
    size_t rec = 64u << 10;
    uint8_t *payload = malloc(rec);
    for (size_t i = 0; i < rec; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    uint64_t nrec = catchup_mib * 16;
    for (uint64_t i = 0; i < nrec; i++) {
        rlog_record r = {0, BENCH_TYPE, 0, (uint32_t)rec, payload};
        if ((e = rlog_append(log, &r, 1, NULL)))
            bench_die("append", rlog_errmsg(log));
    }
    if ((e = rlog_sync(log)))
        bench_die("sync", rlog_errmsg(log));
    rlog_positions pos;
    rlog_positions_get(log, &pos);
    uint64_t shipped_bytes = dir_bytes_of(log);

    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
    node L = {.ld = start_leader(log, url)};
    pthread_create(&L.tid, NULL, node_main, &L);
    lag_state none = {0};
    uint64_t t0 = bench_now_ns();
    node F = {.fw = start_follower(fdir, url, &none)};
    pthread_create(&F.tid, NULL, node_main, &F);
    while (atomic_load(&none.follower_durable) < pos.durable)
        usleep(200);
    double catchup_s = (double)(bench_now_ns() - t0) / 1e9;
    atomic_store(&F.stop, true);
    pthread_join(F.tid, NULL);
    rlog_ship_follower_free(F.fw);
    double catchup_mb_s = (double)shipped_bytes / catchup_s / 1e6;

    /* live tail: a new follower catches up first, then the leader appends
     * 1 KiB records, one fdatasync each */
    atomic_store(&L.stop, true);
    pthread_join(L.tid, NULL);
    rlog_ship_leader_free(L.ld);
    rlog_close(log);
    bench_rm_rf(ldir);
    o.sync = RLOG_SYNC_EACH;
    o.segment_size = tail_segment_kib << 10;
    if ((e = rlog_open(ldir, &o, &log, NULL)))
        bench_die("open leader", rlog_strerror(e));
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
    L = (node){.ld = start_leader(log, url)};
    pthread_create(&L.tid, NULL, node_main, &L);
    lag_state ls = {0};
    ls.base = 1;
    ls.cap = 4u << 20;
    ls.leader_ns = calloc(ls.cap, sizeof *ls.leader_ns);
    ls.lag_ns = calloc(ls.cap, sizeof *ls.lag_ns);
    ls.start_ns = calloc(ls.cap, sizeof *ls.start_ns);
    ls.durable_ns = calloc(ls.cap, sizeof *ls.durable_ns);
    /* the follower's fdatasyncs while measuring, timed */
    size_t fts_cap = 1u << 20;
    uint64_t *fts = calloc(3 * fts_cap, sizeof *fts);
    _Atomic size_t nfts = 0;
    F = (node){.fw = start_follower(fdir2, url, &ls)};
    pthread_create(&F.tid, NULL, node_main, &F);
    uint64_t *sync_ns = calloc(ls.cap, sizeof *sync_ns);
    size_t nsync = 0;
    /* warm-up, not measured: 1,000 records, and the follower caught up
     * (its first segment file is prepared on this path) */
    for (int i = 0; i < 1000; i++) {
        rlog_record r = {0, BENCH_TYPE, 0, 1024, payload};
        if ((e = rlog_append(log, &r, 1, NULL)))
            bench_die("append", rlog_errmsg(log));
        rlog_ship_leader_notify(L.ld);
    }
    rlog_positions_get(log, &pos);
    while (atomic_load(&ls.follower_durable) < pos.durable)
        usleep(200);
    uint64_t syncs0 = atomic_load(&bench_vfs_syncs), written0 = atomic_load(&bench_vfs_written);
    uint64_t adv0 = atomic_load(&ls.advances), first_lsn = pos.durable + 1;
    atomic_store(&ls.measuring, true);
    bench_vfs_time_syncs(fts, fts_cap, &nfts);
    probe pb;
    probe_start(&pb);
    bench_usage cpu0 = bench_usage_now();
    uint64_t tail_t0 = bench_now_ns();
    uint64_t end = tail_t0 + (uint64_t)(seconds * 1e9);
    while (bench_now_ns() < end && nsync < ls.cap) {
        rlog_record r = {0, BENCH_TYPE, 0, 1024, payload};
        uint64_t lsn, s0 = bench_now_ns();
        if ((e = rlog_append(log, &r, 1, &lsn)))
            bench_die("append", rlog_errmsg(log));
        uint64_t s1 = bench_now_ns();
        sync_ns[nsync++] = s1 - s0;
        if (lsn >= ls.base && lsn - ls.base < ls.cap) {
            ls.start_ns[lsn - ls.base] = s0;
            atomic_store(&ls.leader_ns[lsn - ls.base], s1);
        }
        rlog_ship_leader_notify(L.ld);
    }
    rlog_positions_get(log, &pos);
    uint64_t wait_end = bench_now_ns() + 10000000000ull;
    while (atomic_load(&ls.follower_durable) < pos.durable && bench_now_ns() < wait_end)
        usleep(200);
    /* counts of the measured stretch (the follower thread may still be
     * inside its last poll: a sync or two of slack) */
    double tail_records = (double)(pos.durable - first_lsn + 1);
    bench_usage cpu1 = bench_usage_now();
    double tail_wall_us = (double)(bench_now_ns() - tail_t0) / 1000.0;
    double tail_cpu_us = (cpu1.cpu_us - cpu0.cpu_us) / tail_records;
    double tail_switches = (double)(cpu1.csw - cpu0.csw) / tail_records;
    double batches = (double)(atomic_load(&ls.advances) - adv0);
    double fw_sync_n = (double)(atomic_load(&bench_vfs_syncs) - syncs0);
    double fw_wa = (double)(atomic_load(&bench_vfs_written) - written0) / (tail_records * 1024.0);
    atomic_store(&F.stop, true);
    pthread_join(F.tid, NULL);
    bench_vfs_time_syncs(NULL, 0, NULL);
    probe_stop(&pb);
    probe_summary ps = probe_sum(&pb);
    size_t nfs = atomic_load(&nfts) < fts_cap ? atomic_load(&nfts) : fts_cap;
    atomic_store(&L.stop, true);
    pthread_join(L.tid, NULL);
    rlog_ship_follower_free(F.fw);
    rlog_ship_leader_free(L.ld);
    rlog_close(log);

    qsort(ls.lag_ns, ls.nlag, sizeof *ls.lag_ns, cmp_u64);
    qsort(sync_ns, nsync, sizeof *sync_ns, cmp_u64);
    double lag50 = (double)pct(ls.lag_ns, ls.nlag, 50) / 1000.0;
    double lag99 = (double)pct(ls.lag_ns, ls.nlag, 99) / 1000.0;
    double lag999 = (double)pct(ls.lag_ns, ls.nlag, 99.9) / 1000.0;
    double lagmax = (double)pct(ls.lag_ns, ls.nlag, 100) / 1000.0;
    double sync50 = (double)pct(sync_ns, nsync, 50) / 1000.0;
    double sync99 = (double)pct(sync_ns, nsync, 99) / 1000.0;
    double goal = 2 * sync99 + rtt_us;
    tail_report tr = tail_analysis(&ls, first_lsn, pos.durable, pct(ls.lag_ns, ls.nlag, 99),
                                   pct(sync_ns, nsync, 99), fts, nfs, &pb, seconds);

    /* the same tail without rlog, in the same run (after it): in-process,
     * then over raw nng */
    char pdir[4200];
    snprintf(pdir, sizeof pdir, "%s/pipeline", root);
    pipe_run prun = pipe_measure(pdir, seconds, false, rtt_us);
    pipe_run nrun = pipe_measure(pdir, seconds, true, rtt_us);
    pipe_result pr = prun.r;
    probe_summary pps = prun.probe;
    double pipe_util = prun.cpus, pipe_inflight = prun.in_flight;
    double pipe_cpu_us = prun.cpu_us, pipe_switches = prun.switches, pgoal = prun.goal;
    /* CPU the process used per second of wall time, and (Little's law) the
     * mean number of records between leader-durable and follower-durable
     * (pipe_measure says why); the tail's sums cover the measured records
     * (tr.lag_mean_us), over its wall time. */
    double tail_util = (cpu1.cpu_us - cpu0.cpu_us) / tail_wall_us;
    double tail_inflight = tr.lag_mean_us * (double)ls.nlag / tail_wall_us;

    printf("%-34s %12s\n", "case", "figure");
    printf("%-34s %9.0f MB/s\n", "raw nng pair1, 1 MiB messages", raw_mb_s);
    printf("%-34s %9.1f us\n", "raw nng round trip (median)", rtt_us);
    printf("%-34s %9.0f MB/s\n", "raw disk, 16 MiB files + fdatasync", disk_mb_s);
    printf("%-34s %9.0f MB/s  (%.1f MB in %.2f s)\n", "catch-up, empty follower", catchup_mb_s,
           (double)shipped_bytes / 1e6, catchup_s);
    printf("%-34s %9.1f us p50, %.1f us p99, %.1f us p99.9, %.1f us max (%zu records)\n",
           "live tail lag", lag50, lag99, lag999, lagmax, ls.nlag);
    printf("%-34s %9.1f us p50, %.1f us p99\n", "leader append (fdatasync)", sync50, sync99);
    printf("%-34s %9.1f us p50, %.1f us p99, %.1f us p99.9, %.1f us max; leader fdatasync "
           "p99 %.1f us\n",
           "raw pipeline lag (no rlog)", pr.lag50, pr.lag99, pr.lag999, pr.lagmax, pr.sync99);
    printf("%-34s %9zu records in %zu clusters (%.1f per s, every %.1f ms p50); %zu with a "
           "follower fdatasync > leader p99, %zu with a slow leader append\n",
           "lag >= p99", tr.records, tr.clusters, tr.cluster_per_s, tr.interval_ms_p50,
           tr.slow_fw_sync, tr.slow_leader);
    printf("%-34s %9zu sleeps of 1 ms overran by > 2 ms (%.1f ms in all); %zu clusters of lag >= "
           "p99 overlap one\n",
           "stall probe while tailing", ps.n, ps.stalled_ms, tr.probe_clusters);
    printf("%-34s %9.1f ms p50 between stalls while tailing; %zu stalls (%.1f ms, every %.1f ms "
           "p50) during the pipeline\n",
           "stall probe, periodicity", ps.interval_ms_p50, pps.n, pps.stalled_ms,
           pps.interval_ms_p50);
    printf("%-34s %9zu clusters (every %.1f ms p50)\n", "pipeline lag >= its p99", pr.clusters,
           pr.interval_ms_p50);
    printf("%-34s %9.1f us p50, %.1f us p99, %.1f us p99.9, %.1f us max; p99 / its goal %.3f; "
           "%zu clusters of lag >= p99 (every %.1f ms p50); %zu probe stalls (every %.1f ms "
           "p50); %.2f CPUs, %.1f us CPU and %.1f switches per record, %.2f records in flight\n",
           "pipeline over raw nng (no rlog)", nrun.r.lag50, nrun.r.lag99, nrun.r.lag999,
           nrun.r.lagmax, nrun.r.lag99 / nrun.goal, nrun.r.clusters, nrun.r.interval_ms_p50,
           nrun.probe.n, nrun.probe.interval_ms_p50, nrun.cpus, nrun.cpu_us, nrun.switches,
           nrun.in_flight);
    printf("%-34s %9.2f CPUs while tailing, %.2f during the pipeline; records in flight "
           "(mean) %.2f tailing, %.2f pipeline\n",
           "process load", tail_util, pipe_util, tail_inflight, pipe_inflight);
    printf("%-34s %9zu heavy (>= %u KiB of zero fill before them: zeros ahead, segment start), "
           "p50 %.1f us; %zu plain, p50 %.1f us, p99 %.1f us; %zu clusters of lag >= p99 hold a "
           "heavy one\n",
           "follower fdatasyncs while tailing", tr.heavy, HEAVY_SYNC >> 10, tr.heavy_p50_us,
           tr.plain, tr.plain_p50_us, tr.plain_p99_us, tr.heavy_clusters);
    printf("%-34s %9.1f us CPU, %.1f context switches per record (whole process; pipeline: "
           "%.1f us, %.1f)\n",
           "tail, per record", tail_cpu_us, tail_switches, pipe_cpu_us, pipe_switches);
    printf("%-34s %9.2f records, %.2f syncs per batch; %.3f bytes written per payload byte\n",
           "follower, while tailing", tail_records / batches, fw_sync_n / batches, fw_wa);
    printf("%-34s %9" PRIu64 " bytes written, %" PRIu64 " syncs\n", "follower, heaviest batch",
           (uint64_t)ls.max_batch_bytes, (uint64_t)ls.max_batch_syncs);
    printf("\nraw_mb_s=%.0f\nrtt_us=%.1f\ndisk_mb_s=%.0f\ncatchup_mb_s=%.0f\ncatchup_vs_raw=%.3f\n"
           "catchup_vs_disk=%.3f\n",
           raw_mb_s, rtt_us, disk_mb_s, catchup_mb_s, catchup_mb_s / raw_mb_s,
           catchup_mb_s / disk_mb_s);
    printf("lag_records=%zu\nlag_p50_us=%.1f\nlag_p99_us=%.1f\nleader_sync_p50_us=%.1f\n"
           "leader_sync_p99_us=%.1f\nlag_goal_us=%.1f\nlag_p99_vs_goal=%.3f\n",
           ls.nlag, lag50, lag99, sync50, sync99, goal, lag99 / goal);
    printf("lag_p999_us=%.1f\nlag_max_us=%.1f\nlag_mean_us=%.1f\n", lag999, lagmax, tr.lag_mean_us);
    printf("pipeline_lag_p50_us=%.1f\npipeline_lag_p99_us=%.1f\npipeline_lag_p999_us=%.1f\n"
           "pipeline_sync_p99_us=%.1f\npipeline_lag_p99_vs_goal=%.3f\nlag_p99_vs_pipeline=%.3f\n",
           pr.lag50, pr.lag99, pr.lag999, pr.sync99, pr.lag99 / pgoal, lag99 / pr.lag99);
    printf("lag_tail_records=%zu\nlag_tail_clusters=%zu\nlag_tail_clusters_per_s=%.2f\n"
           "lag_tail_cluster_interval_ms_p50=%.1f\nlag_tail_clusters_slow_follower_sync=%zu\n"
           "lag_tail_clusters_slow_leader_append=%zu\n",
           tr.records, tr.clusters, tr.cluster_per_s, tr.interval_ms_p50, tr.slow_fw_sync,
           tr.slow_leader);
    printf("tail_cpu_us_per_record=%.1f\ntail_switches_per_record=%.2f\n"
           "pipeline_cpu_us_per_record=%.1f\npipeline_switches_per_record=%.2f\n",
           tail_cpu_us, tail_switches, pipe_cpu_us, pipe_switches);
    printf("probe_stalls=%zu\nprobe_stalled_ms=%.1f\nlag_tail_clusters_probe_stall=%zu\n"
           "probe_stall_interval_ms_p50=%.1f\n",
           ps.n, ps.stalled_ms, tr.probe_clusters, ps.interval_ms_p50);
    printf("pipeline_probe_stalls=%zu\npipeline_probe_stalled_ms=%.1f\n"
           "pipeline_probe_stall_interval_ms_p50=%.1f\n",
           pps.n, pps.stalled_ms, pps.interval_ms_p50);
    printf("tail_cpus=%.2f\npipeline_cpus=%.2f\ntail_in_flight=%.2f\npipeline_in_flight=%.2f\n"
           "pipeline_lag_mean_us=%.1f\npipeline_lag_tail_clusters=%zu\n"
           "pipeline_lag_tail_cluster_interval_ms_p50=%.1f\n",
           tail_util, pipe_util, tail_inflight, pipe_inflight, pr.lag_mean, pr.clusters,
           pr.interval_ms_p50);
    printf("pipeline_nng_lag_p50_us=%.1f\npipeline_nng_lag_p99_us=%.1f\n"
           "pipeline_nng_lag_p99_vs_goal=%.3f\nlag_p99_vs_pipeline_nng=%.3f\n"
           "pipeline_nng_lag_tail_cluster_interval_ms_p50=%.1f\npipeline_nng_probe_stalls=%zu\n"
           "pipeline_nng_probe_stall_interval_ms_p50=%.1f\npipeline_nng_cpus=%.2f\n"
           "pipeline_nng_cpu_us_per_record=%.1f\npipeline_nng_switches_per_record=%.2f\n"
           "pipeline_nng_in_flight=%.2f\n",
           nrun.r.lag50, nrun.r.lag99, nrun.r.lag99 / nrun.goal, lag99 / nrun.r.lag99,
           nrun.r.interval_ms_p50, nrun.probe.n, nrun.probe.interval_ms_p50, nrun.cpus, nrun.cpu_us,
           nrun.switches, nrun.in_flight);
    printf("follower_heavy_syncs=%zu\nfollower_heavy_sync_p50_us=%.1f\nfollower_plain_sync_p50_us="
           "%.1f\nfollower_plain_sync_p99_us=%.1f\nlag_tail_clusters_heavy_sync=%zu\n",
           tr.heavy, tr.heavy_p50_us, tr.plain_p50_us, tr.plain_p99_us, tr.heavy_clusters);
    printf("tail_batches=%.0f\ntail_records_per_batch=%.2f\nfollower_syncs_per_batch=%.3f\n"
           "follower_write_amplification=%.3f\n",
           batches, tail_records / batches, fw_sync_n / batches, fw_wa);
    printf("follower_max_batch_bytes=%" PRIu64 "\nfollower_max_batch_syncs=%" PRIu64 "\n",
           (uint64_t)ls.max_batch_bytes, (uint64_t)ls.max_batch_syncs);
    free(payload);
    free(sync_ns);
    free(ls.lag_ns);
    free(ls.leader_ns);
    free(ls.start_ns);
    free(ls.durable_ns);
    free(fts);
    free(pb.ts);
    bench_rm_rf(root);
    return 0;
}
