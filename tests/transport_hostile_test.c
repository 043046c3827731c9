/*
 * The nng transport under strangers (docs/security.md, "Limits"): silent
 * connections to the public address are closed after the handshake
 * deadline and never keep a legitimate peer out; the caps per host and in
 * total close the oldest silent connections first; the reserve lets a
 * known peer in when unknown ones fill max_conns; a take-over of a server
 * id from another host is refused while the current connection is young;
 * and raw TCP garbage, a huge length prefix, a truncated frame and 2,000
 * connects leave the listener alive, without leaked descriptors, and
 * serving. Loopback only (127.0.0.x); every wait is bounded.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/req.h>

#include "util/testutil.h"
#include "util/tnode.h"

#include "rlog/wire.h"

#define SILENT 300
#define RAW    100 /* connections that never send even the SP header */

/* Room for SILENT connections at both ends in this one process. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t want = 4096;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        want = rl.rlim_max;
    }
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    assert_true(want >= 2 * (SILENT + RAW) + 64);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int k = 0;
    while (readdir(d) != NULL) {
        k++;
    }
    closedir(d);
    return k - 3; /* ".", ".." and the directory's own descriptor */
}

static uint16_t port_of(tnode *nd)
{
    const char *colon = strrchr(tnode_addr(nd), ':');
    assert_non_null(colon);
    return (uint16_t)atoi(colon + 1);
}

/* A blocking TCP connection from 127.0.0.<src> to 127.0.0.1:port. */
static int raw_connect(uint16_t port, int src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* The SP header exchange as a req0 peer (protocol 48): afterwards the
 * connection is an nng pipe of the listener's public rep0 socket. */
static void raw_sp(int fd)
{
    static const uint8_t req0[8] = {0, 'S', 'P', 0, 0, 48, 0, 0};
    assert_int_equal(send(fd, req0, sizeof req0, MSG_NOSIGNAL), (ssize_t)sizeof req0);
    uint8_t got[8];
    size_t have = 0;
    while (have < sizeof got) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, TNODE_WAIT_MS), 1);
        ssize_t k = recv(fd, got + have, sizeof got - have, 0);
        assert_true(k > 0);
        have += (size_t)k;
    }
    assert_int_equal(got[1], 'S');
    assert_int_equal(got[5], 49); /* rep0 */
}

/* Whether the peer closed fd (end of file or reset), without waiting;
 * what it sent (nng's SP header) is read and dropped. */
static bool raw_closed(int fd)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 0) {
            return false;
        }
        char buf[64];
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            return true;
        }
        if (k < 0) {
            return false;
        }
    }
}

static int count_open(const int *fds, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        k += !raw_closed(fds[i]);
    }
    return k;
}

static tnode *listener(unsigned handshake_ms, unsigned max_conns, unsigned per_host)
{
    rlog_transport_config c;
    rlog_transport_config_init(&c);
    c.address = "tcp://127.0.0.1:0";
    c.handshake_ms = handshake_ms;
    c.max_conns = max_conns;
    c.max_conns_per_host = per_host;
    return tnode_new(1, &c);
}

static tnode *dialer_node(uint64_t id, const char *to, uint64_t to_id)
{
    rlog_transport_config c;
    rlog_transport_config_init(&c);
    tnode *d = tnode_new(id, &c);
    assert_int_equal(d->t->connect(d->t, to_id, to), 0);
    return d;
}

/* Property (issue 15, item 4): 300 connections that complete the SP
 * handshake on the public address and then stay silent (and 100 that
 * never send a byte) do not keep a legitimate follower out: it comes up
 * WHILE all 300 are still held (the caps are set above 300 here, so
 * nothing but the deadline closes them); after the handshake deadline (the
 * default, 5 s) every silent one is closed by the listener while the
 * follower's connection stays up; the 100 mute ones are closed by nng's
 * own negotiation timeout (10 s in nng 1.5.2), which this test keeps an
 * eye on since rlog relies on it. */
static void test_silent_held_follower_gets_in(void **state)
{
    (void)state;
    raise_fd_limit();
    tnode *l = listener(0, 2 * SILENT, 2 * SILENT);
    uint16_t port = port_of(l);
    int fds[SILENT], mute[RAW];
    for (int i = 0; i < RAW; i++) {
        mute[i] = raw_connect(port, 1);
    }
    uint64_t t0 = tnode_now_ms();
    for (int i = 0; i < SILENT; i++) {
        fds[i] = raw_connect(port, 1);
        raw_sp(fds[i]);
        tnode_pump(&l, 1);
    }
    uint64_t t1 = tnode_now_ms();
    tnode *d = dialer_node(2, tnode_addr(l), 1);
    TNODE_PUMP_UNTIL(l->ups[2] == 1 && d->ups[1] == 1, l, d);
    uint64_t t2 = tnode_now_ms();
    printf("silent: %d connections opened in %llu ms; the follower came up %llu ms after "
           "connect(), %llu ms after the first silent one\n",
           SILENT, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
           (unsigned long long)(t2 - t0));
    /* The deadline (5,000 ms from each one's arrival) has not passed for
     * any of them unless this machine took that long to get here. */
    if (t2 - t0 < 4500) {
        assert_int_equal(count_open(fds, SILENT), SILENT);
    }
    TNODE_PUMP_UNTIL(count_open(fds, SILENT) == 0, l, d);
    assert_non_null(strstr(l->log, "silent past the 5000 ms handshake deadline"));
    TNODE_PUMP_FOR(100, l, d);
    assert_int_equal(l->downs[2], 0);
    assert_int_equal(d->downs[1], 0);
    for (int i = 0; i < SILENT; i++) {
        close(fds[i]);
    }
    TNODE_PUMP_UNTIL(count_open(mute, RAW) == 0, l, d); /* within 10 s of the 5 s waited */
    printf("silent: the %d mute connections closed %llu ms after they were opened\n", RAW,
           (unsigned long long)(tnode_now_ms() - t0));
    for (int i = 0; i < RAW; i++) {
        close(mute[i]);
    }
    tnode_free(d);
    tnode_free(l);
}

/* Property: the caps hold whatever the deadline: with max_conns_per_host
 * 16, 300 silent connections from one host leave at most 16 held — the
 * newest (the oldest silent ones are closed first) — and a legitimate
 * follower from the same host still comes up. With max_conns 64 and four
 * hosts (127.0.0.2..5) of 40 each (per host 32), at most 64 are held. */
static void test_caps_close_oldest_silent(void **state)
{
    (void)state;
    raise_fd_limit();
    tnode *l = listener(60000, 64, 16);
    uint16_t port = port_of(l);
    int fds[SILENT];
    for (int i = 0; i < SILENT; i++) {
        fds[i] = raw_connect(port, 1);
        raw_sp(fds[i]);
        tnode_pump(&l, 1);
    }
    TNODE_PUMP_UNTIL(count_open(fds, SILENT) <= 16, l);
    for (int i = 0; i < SILENT - 32; i++) {
        assert_true(raw_closed(fds[i])); /* old ones went first */
    }
    tnode *d = dialer_node(2, tnode_addr(l), 1);
    TNODE_PUMP_UNTIL(l->ups[2] == 1 && d->ups[1] == 1, l, d);
    assert_true(count_open(fds, SILENT) <= 16);
    assert_non_null(strstr(l->log, "to stay within max_conns 64 / max_conns_per_host 16"));
    for (int i = 0; i < SILENT; i++) {
        close(fds[i]);
    }
    tnode_free(d);
    tnode_free(l);

    l = listener(60000, 64, 32);
    port = port_of(l);
    for (int i = 0; i < 160; i++) {
        fds[i] = raw_connect(port, 2 + i % 4);
        raw_sp(fds[i]);
        tnode_pump(&l, 1);
    }
    TNODE_PUMP_UNTIL(count_open(fds, 160) <= 64, l);
    TNODE_PUMP_FOR(200, l);
    assert_true(count_open(fds, 160) >= 32); /* per host alone would keep 128 */
    assert_true(count_open(fds, 160) <= 64);
    for (int i = 0; i < 160; i++) {
        close(fds[i]);
    }
    tnode_free(l);
}

/* Property: the reserve. With max_conns 3, three unknown peers fill the
 * listener and a fourth is refused (logged with the limit), but a peer in
 * known_ids still gets in (reserve_conns 2); once the count is below
 * max_conns again, the refused one (which keeps asking) gets in. */
static void test_reserve_for_known_peers(void **state)
{
    (void)state;
    static const uint64_t known[] = {9};
    rlog_transport_config c;
    rlog_transport_config_init(&c);
    c.address = "tcp://127.0.0.1:0";
    c.max_conns = 3;
    c.reserve_conns = 2;
    c.known_ids = known;
    c.n_known_ids = 1;
    tnode *l = tnode_new(1, &c);
    tnode *u[4];
    for (int i = 0; i < 3; i++) {
        u[i] = dialer_node(10 + (uint64_t)i, tnode_addr(l), 1);
        TNODE_PUMP_UNTIL(l->ups[10 + i] == 1, l, u[i]);
    }
    u[3] = dialer_node(13, tnode_addr(l), 1);
    TNODE_PUMP_UNTIL(strstr(l->log, "the limit for an unknown peer is 3") != NULL, l, u[3]);
    tnode *k = dialer_node(9, tnode_addr(l), 1);
    TNODE_PUMP_UNTIL(l->ups[9] == 1 && k->ups[1] == 1, l, k, u[3]);
    assert_int_equal(l->ups[13], 0);
    /* max_conns counts every incoming connection, the known one too: once
     * two unknown ones leave, the fourth (which keeps asking) gets in. */
    tnode_free(u[0]);
    tnode_free(u[1]);
    TNODE_PUMP_UNTIL(l->ups[13] == 1, l, u[3], k);
    for (int i = 2; i < 4; i++) {
        tnode_free(u[i]);
    }
    tnode_free(k);
    tnode_free(l);
}

static void raw_send_msg(nng_socket s, const rlog_msg *m)
{
    void *buf;
    size_t len;
    assert_int_equal(rlog_msg_encode(m, &buf, &len), 0);
    assert_int_equal(nng_send(s, buf, len, 0), 0);
    rlog_free(buf);
}

/* Dials url on s from 127.0.0.2 (a second host on loopback). */
static void dial_from_2(nng_socket s, const char *url)
{
    nng_dialer dl;
    assert_int_equal(nng_dialer_create(&dl, s, url), 0);
    nng_sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.s_in.sa_family = NNG_AF_INET;
    sa.s_in.sa_addr = htonl(0x7f000002u);
    assert_int_equal(nng_dialer_set_addr(dl, NNG_OPT_LOCADDR, &sa), 0);
    assert_int_equal(nng_dialer_start(dl, 0), 0);
}

/* Property (item 5): an impostor from another host (127.0.0.2) that
 * claims the id of a follower that is up (from 127.0.0.1) and completes
 * the whole handshake does not take the id while the follower's
 * connection is younger than the handshake deadline: it is refused with
 * a log line naming both hosts, and the follower is never disconnected. */
static void test_takeover_from_other_host(void **state)
{
    (void)state;
    tnode *l = listener(0, 0, 0);
    tnode *d = dialer_node(7, tnode_addr(l), 1);
    TNODE_PUMP_UNTIL(l->ups[7] == 1 && d->ups[1] == 1, l, d);
    nng_socket req, p;
    assert_int_equal(nng_req0_open(&req), 0);
    dial_from_2(req, tnode_addr(l));
    rlog_msg h = tnode_hello(7, RLOG_WIRE_PROTOCOL, 0);
    raw_send_msg(req, &h);
    nng_msg *m = NULL;
    uint64_t end = tnode_now_ms() + TNODE_WAIT_MS;
    while (nng_recvmsg(req, &m, NNG_FLAG_NONBLOCK) != 0) {
        assert_true(tnode_now_ms() < end);
        tnode_pump(&l, 1);
    }
    rlog_msg rd;
    assert_int_equal(rlog_msg_decode(nng_msg_body(m), nng_msg_len(m), 0, &rd, NULL, 0), 0);
    assert_int_equal(rd.type, RLOG_MSG_REDIRECT);
    uint64_t token = rd.u.redirect.token;
    char where[256];
    snprintf(where, sizeof where, "%s", rd.u.redirect.address);
    rlog_msg_free(&rd);
    nng_msg_free(m);
    nng_close(req);
    assert_int_equal(nng_pair1_open(&p), 0);
    dial_from_2(p, where);
    h = tnode_hello(7, RLOG_WIRE_PROTOCOL, token);
    raw_send_msg(p, &h);
    TNODE_PUMP_UNTIL(strstr(l->log, "may not replace") != NULL, l, d);
    assert_non_null(
        strstr(l->log, "from host 127.0.0.2 may not replace the one from host 127.0.0.1"));
    TNODE_PUMP_FOR(300, l, d);
    assert_int_equal(l->ups[7], 1);
    assert_int_equal(l->downs[7], 0);
    assert_int_equal(d->downs[1], 0);
    nng_close(p);
    tnode_free(d);
    tnode_free(l);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    long pages = 0, rss = 0;
    assert_int_equal(fscanf(f, "%ld %ld", &pages, &rss), 2);
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Waits until fd is closed by the listener (pumping it). */
static void wait_closed(tnode *l, int fd)
{
    TNODE_PUMP_UNTIL(raw_closed(fd), l);
    close(fd);
}

/* Property (item 7): raw bytes that are not SP (an HTTP request), a huge
 * length prefix after the SP header, and a frame cut short each get the
 * connection closed; 2,000 connects (every tenth completing the SP
 * header) leave the listener with no more descriptors than before (so no
 * connection leaks) and serving a follower. The RSS before and after is
 * printed (a figure, not asserted: allocators keep what they freed). */
static void test_garbage_and_churn(void **state)
{
    (void)state;
    raise_fd_limit();
    tnode *l = listener(2000, 0, 0);
    uint16_t port = port_of(l);
    int fd = raw_connect(port, 1);
    static const char http[] = "GET / HTTP/1.0\r\n\r\n";
    assert_true(send(fd, http, sizeof http - 1, MSG_NOSIGNAL) > 0);
    wait_closed(l, fd);
    fd = raw_connect(port, 1);
    raw_sp(fd);
    static const uint8_t huge[8] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_true(send(fd, huge, sizeof huge, MSG_NOSIGNAL) > 0);
    wait_closed(l, fd);
    fd = raw_connect(port, 1);
    raw_sp(fd);
    static const uint8_t cut[12] = {0, 0, 0, 0, 0, 0, 0, 100, 0x97, 0x01, 0x01, 0x09};
    assert_true(send(fd, cut, sizeof cut, MSG_NOSIGNAL) > 0);
    wait_closed(l, fd); /* the deadline closes it: the rest never comes */
    TNODE_PUMP_FOR(200, l);
    int fds0 = open_fds();
    long rss0 = rss_kib();
    uint64_t t0 = tnode_now_ms();
    for (int i = 0; i < 2000; i++) {
        fd = raw_connect(port, 1);
        if (i % 10 == 0) {
            raw_sp(fd);
        }
        close(fd);
        if (i % 50 == 0) {
            tnode_pump(&l, 1);
        }
    }
    uint64_t t1 = tnode_now_ms();
    TNODE_PUMP_UNTIL(open_fds() <= fds0, l);
    long rss1 = rss_kib();
    printf("churn: 2000 connects in %llu ms; RSS %ld -> %ld KiB; descriptors back to %d\n",
           (unsigned long long)(t1 - t0), rss0, rss1, open_fds());
    tnode *d = dialer_node(2, tnode_addr(l), 1);
    TNODE_PUMP_UNTIL(l->ups[2] == 1 && d->ups[1] == 1, l, d);
    tnode_free(d);
    tnode_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_held_follower_gets_in),
        cmocka_unit_test(test_caps_close_oldest_silent),
        cmocka_unit_test(test_reserve_for_known_peers),
        cmocka_unit_test(test_takeover_from_other_host),
        cmocka_unit_test(test_garbage_and_churn),
    };
    return TU_RUN("transport_hostile", tests, NULL, NULL);
}
