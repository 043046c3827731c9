/*
 * bench/nng_pair — the nng transport's per-message cost over tcp loopback,
 * against raw nng pair1 in the same run.
 *
 * Cases:
 *   small   append_entries with one 84-byte entry (97 bytes encoded):
 *           messages per second, sender and receiver each on their own
 *           owner thread, at most `window` sends outstanding;
 *   large   the same with a 1 MiB entry: MB/s.
 * Baselines: raw nng pair1 (monogamous, default buffers) over
 * tcp://127.0.0.1, a sender thread doing blocking nng_sendmsg and a
 * receiver thread doing blocking nng_recvmsg, with the same message sizes.
 * The transport is used only through its table (rlog/transport.h).
 *
 * Output: a table, then key=value lines (transport_small_msgs_s,
 * raw_small_msgs_s, ratio_small, transport_large_mb_s, raw_large_mb_s,
 * ratio_large).
 *
 *   nng_pair [--quick]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "rlog/transport.h"

#define SMALL_PAYLOAD 84
#define LARGE_PAYLOAD (1u << 20)
#define MAX_MESSAGE   (8u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "nng_pair: %s: %s\n", what, msg);
    exit(1);
}

/* ---- through the transport ---- */

typedef struct side {
    rlog_transport *t;
    atomic_int up;
    atomic_long got;
    atomic_int stop;
    long completed;
} side;

static void on_up(void *data, uint64_t peer, const rlog_msg_hello *h)
{
    (void)peer;
    (void)h;
    atomic_store(&((side *)data)->up, 1);
}

static void on_down(void *data, uint64_t peer, int reason)
{
    (void)data;
    if (reason != RLOG_ECLOSED) {
        fprintf(stderr, "nng_pair: server %llu down: %s\n", (unsigned long long)peer,
                rlog_strerror(reason));
    }
}

static void on_recv(void *data, uint64_t peer, const rlog_msg *m)
{
    (void)peer;
    (void)m;
    atomic_fetch_add(&((side *)data)->got, 1);
}

static void on_sent(void *data, int status)
{
    if (status != 0) {
        die("send completion", rlog_strerror(status));
    }
    ((side *)data)->completed++;
}

static void *receiver_main(void *arg)
{
    side *l = arg;
    while (!atomic_load(&l->stop)) {
        l->t->poll(l->t, 10);
    }
    return NULL;
}

static rlog_transport *open_side(side *s, uint64_t id, const char *address)
{
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = id;
    cfg.address = address;
    cfg.role = RLOG_ROLE_RAFT;
    cfg.max_message = MAX_MESSAGE;
    rlog_transport_events ev = {s, on_up, on_down, on_recv};
    if (rlog_transport_nng_new(&s->t) != 0) {
        die("transport", "out of memory");
    }
    if (s->t->init(s->t, &cfg, &ev) != 0 || (address[0] && s->t->listen(s->t) != 0)) {
        die("transport", s->t->errmsg);
    }
    return s->t;
}

/* Sends n messages with `payload` bytes; returns seconds until all arrived. */
static double run_transport(size_t payload, long n, int window, size_t *encoded)
{
    side l, d;
    memset(&l, 0, sizeof l);
    memset(&d, 0, sizeof d);
    open_side(&l, 1, "tcp://127.0.0.1:0");
    open_side(&d, 2, "");
    pthread_t th;
    pthread_create(&th, NULL, receiver_main, &l);
    if (d.t->connect(d.t, 1, l.t->local_address(l.t)) != 0) {
        die("connect", d.t->errmsg);
    }
    while (!atomic_load(&d.up)) {
        d.t->poll(d.t, 10);
    }
    void *buf = calloc(1, payload);
    rlog_msg_entry e = {1, 1, (uint32_t)payload, buf};
    rlog_msg m;
    memset(&m, 0, sizeof m);
    m.type = RLOG_MSG_APPEND_ENTRIES;
    m.u.append_entries.term = 1;
    m.u.append_entries.n_entries = 1;
    m.u.append_entries.entries = &e;
    void *enc;
    if (rlog_msg_encode(&m, &enc, encoded) != 0) {
        die("encode", "failed");
    }
    rlog_free(enc);
    double t0 = now_s();
    long sent = 0;
    while (atomic_load(&l.got) < n) {
        while (sent < n && sent - d.completed < window) {
            if (d.t->send(d.t, 1, &m, on_sent, &d) != 0) {
                die("send", d.t->errmsg);
            }
            sent++;
        }
        d.t->poll(d.t, 1);
    }
    double dt = now_s() - t0;
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    d.t->close(d.t);
    l.t->close(l.t);
    free(buf);
    return dt;
}

/* ---- raw nng pair1 ---- */

typedef struct raw_rx {
    nng_socket s;
    long n;
} raw_rx;

static void *raw_receiver(void *arg)
{
    raw_rx *rx = arg;
    for (long i = 0; i < rx->n; i++) {
        nng_msg *m;
        if (nng_recvmsg(rx->s, &m, 0) != 0) {
            die("raw recv", "failed");
        }
        nng_msg_free(m);
    }
    return NULL;
}

static double run_raw(size_t len, long n)
{
    nng_socket tx;
    raw_rx rx = {.n = n};
    nng_listener l;
    int port = 0;
    char url[64];
    if (nng_pair1_open(&rx.s) != 0 || nng_pair1_open(&tx) != 0) {
        die("raw", "cannot open pair1 sockets");
    }
    nng_socket_set_size(rx.s, NNG_OPT_RECVMAXSZ, MAX_MESSAGE);
    if (nng_listener_create(&l, rx.s, "tcp://127.0.0.1:0") != 0 || nng_listener_start(l, 0) != 0 ||
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
        die("raw", "cannot listen");
    }
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    if (nng_dial(tx, url, NULL, 0) != 0) {
        die("raw", "cannot dial");
    }
    pthread_t th;
    pthread_create(&th, NULL, raw_receiver, &rx);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        nng_msg *m;
        if (nng_msg_alloc(&m, len) != 0 || nng_sendmsg(tx, m, 0) != 0) {
            die("raw send", "failed");
        }
    }
    pthread_join(th, NULL);
    double dt = now_s() - t0;
    nng_close(tx);
    nng_close(rx.s);
    return dt;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    long small_n = quick ? 20000 : 200000, large_n = quick ? 300 : 3000;
    size_t small_len, large_len;
    double ts = run_transport(SMALL_PAYLOAD, small_n, 64, &small_len);
    double rs = run_raw(small_len, small_n);
    double tl = run_transport(LARGE_PAYLOAD, large_n, 8, &large_len);
    double rl = run_raw(large_len, large_n);
    double t_small = (double)small_n / ts, r_small = (double)small_n / rs;
    double t_large = (double)large_n * (double)large_len / tl / 1e6;
    double r_large = (double)large_n * (double)large_len / rl / 1e6;
    printf("%-10s %10s %14s %14s\n", "case", "bytes", "transport", "raw pair1");
    printf("%-10s %10zu %10.0f msg/s %8.0f msg/s\n", "small", small_len, t_small, r_small);
    printf("%-10s %10zu %11.1f MB/s %9.1f MB/s\n", "large", large_len, t_large, r_large);
    printf("transport_small_msgs_s=%.0f\nraw_small_msgs_s=%.0f\nratio_small=%.2f\n", t_small,
           r_small, t_small / r_small);
    printf("transport_large_mb_s=%.1f\nraw_large_mb_s=%.1f\nratio_large=%.2f\n", t_large, r_large,
           t_large / r_large);
    return 0;
}
