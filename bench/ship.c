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
 *              fsync) and bytes written per payload byte.
 * Leader and follower run in this process, each on its own thread with its
 * own poll loop, talking through the nng transport.
 *
 * Goals (issue 5): catch-up >= 1 GB/s; lag p99 <= 2 x leader fsync p99 + rtt.
 *
 * Output: a table, then key=value lines (raw_mb_s, disk_mb_s, catchup_mb_s,
 * catchup_vs_raw, catchup_vs_disk, lag_p50_us, lag_p99_us, leader_sync_p99_us, rtt_us,
 * lag_goal_us, follower_syncs_per_batch, follower_write_amplification, ...).
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

static rlog_ship_leader *start_leader(rlog_log *log, const char *url)
{
    rlog_transport *t;
    if (rlog_transport_nng_new(&t))
        bench_die("transport", "nng");
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = 1;
    cfg.address = url;
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
    rlog_transport *t;
    if (rlog_transport_nng_new(&t))
        bench_die("transport", "nng");
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = 2;
    cfg.address = "";
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
                            "[--tail-segment-kib K]\n"
                            "  data directory: $RLOG_BENCH_DIR or ./bench-data (removed at the "
                            "end)\n");
            return 2;
        }
    }
    const char *d = getenv("RLOG_BENCH_DIR");
    char root[4096], ldir[4200], fdir[4200], fdir2[4200];
    snprintf(root, sizeof root, "%s/ship", d && *d ? d : "bench-data");
    bench_rm_rf(root);
    mkdir(d && *d ? d : "bench-data", 0755);
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
    uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9);
    while (bench_now_ns() < end && nsync < ls.cap) {
        rlog_record r = {0, BENCH_TYPE, 0, 1024, payload};
        uint64_t lsn, s0 = bench_now_ns();
        if ((e = rlog_append(log, &r, 1, &lsn)))
            bench_die("append", rlog_errmsg(log));
        uint64_t s1 = bench_now_ns();
        sync_ns[nsync++] = s1 - s0;
        if (lsn >= ls.base && lsn - ls.base < ls.cap)
            atomic_store(&ls.leader_ns[lsn - ls.base], s1);
        rlog_ship_leader_notify(L.ld);
    }
    rlog_positions_get(log, &pos);
    uint64_t wait_end = bench_now_ns() + 10000000000ull;
    while (atomic_load(&ls.follower_durable) < pos.durable && bench_now_ns() < wait_end)
        usleep(200);
    /* counts of the measured stretch (the follower thread may still be
     * inside its last poll: a sync or two of slack) */
    double tail_records = (double)(pos.durable - first_lsn + 1);
    double batches = (double)(atomic_load(&ls.advances) - adv0);
    double fw_sync_n = (double)(atomic_load(&bench_vfs_syncs) - syncs0);
    double fw_wa = (double)(atomic_load(&bench_vfs_written) - written0) / (tail_records * 1024.0);
    atomic_store(&F.stop, true);
    pthread_join(F.tid, NULL);
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

    printf("%-34s %12s\n", "case", "figure");
    printf("%-34s %9.0f MB/s\n", "raw nng pair1, 1 MiB messages", raw_mb_s);
    printf("%-34s %9.1f us\n", "raw nng round trip (median)", rtt_us);
    printf("%-34s %9.0f MB/s\n", "raw disk, 16 MiB files + fdatasync", disk_mb_s);
    printf("%-34s %9.0f MB/s  (%.1f MB in %.2f s)\n", "catch-up, empty follower", catchup_mb_s,
           (double)shipped_bytes / 1e6, catchup_s);
    printf("%-34s %9.1f us p50, %.1f us p99, %.1f us p99.9, %.1f us max (%zu records)\n",
           "live tail lag", lag50, lag99, lag999, lagmax, ls.nlag);
    printf("%-34s %9.1f us p50, %.1f us p99\n", "leader append (fdatasync)", sync50, sync99);
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
    printf("lag_p999_us=%.1f\nlag_max_us=%.1f\n", lag999, lagmax);
    printf("tail_batches=%.0f\ntail_records_per_batch=%.2f\nfollower_syncs_per_batch=%.3f\n"
           "follower_write_amplification=%.3f\n",
           batches, tail_records / batches, fw_sync_n / batches, fw_wa);
    printf("follower_max_batch_bytes=%" PRIu64 "\nfollower_max_batch_syncs=%" PRIu64 "\n",
           (uint64_t)ls.max_batch_bytes, (uint64_t)ls.max_batch_syncs);
    free(payload);
    free(sync_ns);
    free(ls.lag_ns);
    free(ls.leader_ns);
    bench_rm_rf(root);
    return 0;
}
