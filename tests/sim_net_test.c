/*
 * The simulator's network (sim/simnet.c): the transport table's contract
 * (rlog/transport.h) on a deterministic network, and each fault kind made
 * visible. Every test says which property it checks; all run in virtual
 * time with bounded loops.
 */
#include "util/testutil.h"

#include "rlog/sim.h"
#include "rlog/transport.h"
#include "rlog/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN    4
#define MAXMSG  2048
#define MS      1000000ull
#define LEADER  "sim://leader"
#define MAXLOOP 200000

typedef struct node node;

typedef struct slot {
    node *n;
    uint64_t seq;
} slot;

struct node {
    rlog_transport *t;
    uint64_t id;
    rlog_simnet *net;
    int ups, downs, last_down;
    uint64_t up_peer, down_peer;
    uint32_t up_role;
    char up_addr[64];
    uint64_t recv[MAXMSG * 2], recv_from[MAXMSG * 2], recv_at[MAXMSG * 2];
    size_t nrecv;
    slot slots[MAXMSG];
    uint64_t cb_seq[MAXMSG];
    int cb_status[MAXMSG];
    size_t ncb;
    int posts;
    char log[512];
};

static void ev_up(void *data, uint64_t peer, const rlog_msg_hello *h)
{
    node *n = data;
    n->ups++;
    n->up_peer = peer;
    n->up_role = h->role;
    snprintf(n->up_addr, sizeof n->up_addr, "%s", h->address);
    assert_int_equal(h->server_id, peer);
    assert_int_equal(h->protocol_version, RLOG_WIRE_PROTOCOL);
}

static void ev_down(void *data, uint64_t peer, int reason)
{
    node *n = data;
    n->downs++;
    n->down_peer = peer;
    n->last_down = reason;
}

static void ev_recv(void *data, uint64_t peer, const rlog_msg *m)
{
    node *n = data;
    assert_int_equal(m->type, RLOG_MSG_APPEND_ENTRIES);
    assert_true(n->nrecv < MAXMSG * 2);
    const rlog_msg_append_entries *a = &m->u.append_entries;
    for (uint32_t i = 0; i < a->n_entries; i++) /* payload bytes survived the codec */
        for (uint32_t k = 0; k < a->entries[i].len; k++)
            assert_int_equal(((const unsigned char *)a->entries[i].data)[k], (a->term + k) & 0xff);
    n->recv_from[n->nrecv] = peer;
    n->recv_at[n->nrecv] = rlog_simnet_now_ns(n->net);
    n->recv[n->nrecv++] = a->term;
}

static void on_sent(void *data, int status)
{
    slot *s = data;
    node *n = s->n;
    assert_true(n->ncb < MAXMSG);
    n->cb_seq[n->ncb] = s->seq;
    n->cb_status[n->ncb++] = status;
}

static void logger(void *data, rlog_level level, const char *msg)
{
    node *n = data;
    (void)level;
    snprintf(n->log, sizeof n->log, "%s", msg);
}

static rlog_simnet *net_new(uint64_t seed)
{
    rlog_simnet_config cfg;
    rlog_simnet_config_init(&cfg, seed);
    rlog_simnet *net = rlog_simnet_new(&cfg);
    assert_non_null(net);
    return net;
}

/* A node with server id `id`, listening at `addr` when given. */
static void node_start(rlog_simnet *net, node *n, uint64_t id, const char *addr, uint32_t role,
                       const rlog_transport_config *base)
{
    memset(n, 0, sizeof *n);
    n->id = id;
    n->net = net;
    rlog_transport_config cfg;
    if (base)
        cfg = *base;
    else
        memset(&cfg, 0, sizeof cfg);
    cfg.server_id = id;
    cfg.address = addr;
    cfg.role = role;
    cfg.logger = logger;
    cfg.logger_data = n;
    rlog_transport_events ev = {.data = n, .peer_up = ev_up, .peer_down = ev_down, .recv = ev_recv};
    assert_int_equal(rlog_simnet_transport_new(net, &n->t), 0);
    assert_int_equal(n->t->version, 1);
    assert_int_equal(n->t->init(n->t, &cfg, &ev), 0);
    if (addr)
        assert_int_equal(n->t->listen(n->t), 0);
}

static void poll_all(node **ns, int k)
{
    for (int i = 0; i < k; i++)
        if (ns[i]->t)
            assert_true(ns[i]->t->poll(ns[i]->t, 0) >= 0);
}

/* Polls and steps until virtual time `until` (or nothing is scheduled). */
static void run_until(rlog_simnet *net, node **ns, int k, uint64_t until)
{
    for (int i = 0; i < MAXLOOP && rlog_simnet_next_ns(net) <= until; i++) {
        poll_all(ns, k);
        rlog_simnet_step(net);
    }
    poll_all(ns, k);
    if (rlog_simnet_now_ns(net) < until)
        rlog_simnet_advance(net, until - rlog_simnet_now_ns(net));
    poll_all(ns, k);
}

static void run_for(rlog_simnet *net, node **ns, int k, uint64_t ns_)
{
    run_until(net, ns, k, rlog_simnet_now_ns(net) + ns_);
}

/* Sends append_entries term = seq with one entry of `len` pattern bytes. */
static int send_seq(node *n, uint64_t peer, uint64_t seq, size_t len)
{
    static unsigned char buf[70000];
    assert_true(len <= sizeof buf && seq < MAXMSG);
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)((seq + k) & 0xff);
    rlog_msg_entry e = {.term = seq, .type = 1, .len = (uint32_t)len, .data = len ? buf : NULL};
    rlog_msg m = {.type = RLOG_MSG_APPEND_ENTRIES};
    m.u.append_entries = (rlog_msg_append_entries){.term = seq, .n_entries = 1, .entries = &e};
    n->slots[seq] = (slot){n, seq};
    return n->t->send(n->t, peer, &m, on_sent, &n->slots[seq]);
}

/* Leader (id 1, listening) and follower (id 2, dialling it), both up. */
static void pair_up(rlog_simnet *net, node *l, node *f, const rlog_transport_config *base)
{
    node_start(net, l, 1, LEADER, RLOG_ROLE_SHIP_LEADER, base);
    node_start(net, f, 2, NULL, RLOG_ROLE_SHIP_FOLLOWER, base);
    assert_int_equal(f->t->connect(f->t, 1, LEADER), 0);
    node *ns[] = {l, f};
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(l->ups, 1);
    assert_int_equal(f->ups, 1);
}

static void close_all(rlog_simnet *net, node **ns, int k)
{
    for (int i = 0; i < k; i++)
        if (ns[i]->t)
            ns[i]->t->close(ns[i]->t);
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_NOMEM), 0);
    rlog_simnet_free(net);
}

/* Sends 0..count-1 from f to peer 1 and runs until all are settled. */
static void stream(rlog_simnet *net, node *l, node *f, int count, uint64_t gap_ns)
{
    node *ns[] = {l, f};
    for (int i = 0; i < count; i++) {
        assert_int_equal(send_seq(f, 1, (uint64_t)i, 16), 0);
        run_for(net, ns, 2, gap_ns);
    }
    run_for(net, ns, 2, 200 * MS);
}

/* Hellos: both sides see peer_up with the other's id, address and role;
 * a dial with peer id 0 learns the id the peer announces. */
static void test_hello_peer_up(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(1);
    node l, f, o;
    pair_up(net, &l, &f, NULL);
    assert_int_equal(l.up_peer, 2);
    assert_string_equal(l.up_addr, "");
    assert_int_equal(l.up_role, RLOG_ROLE_SHIP_FOLLOWER);
    assert_int_equal(f.up_peer, 1);
    assert_string_equal(f.up_addr, LEADER);
    assert_int_equal(f.up_role, RLOG_ROLE_SHIP_LEADER);
    node_start(net, &o, 3, "sim://obs", RLOG_ROLE_OBSERVER, NULL);
    assert_int_equal(o.t->connect(o.t, 0, LEADER), 0);
    node *ns[] = {&l, &f, &o};
    run_for(net, ns, 3, 10 * MS);
    assert_int_equal(o.ups, 1);
    assert_int_equal(o.up_peer, 1);
    assert_int_equal(l.ups, 2);
    assert_int_equal(l.up_peer, 3);
    assert_string_equal(l.up_addr, "sim://obs");
    assert_int_equal(l.downs + f.downs + o.downs, 0);
    /* both directions carry messages */
    assert_int_equal(send_seq(&l, 3, 5, 0), 0);
    assert_int_equal(send_seq(&o, 1, 6, 3), 0);
    run_for(net, ns, 3, 10 * MS);
    assert_int_equal(o.nrecv, 1);
    assert_int_equal(o.recv[0], 5);
    assert_int_equal(l.nrecv, 1);
    assert_int_equal(l.recv_from[0], 3);
    close_all(net, ns, 3);
}

/* Without faults every message arrives once, in order, despite random
 * latencies, and every send completes with 0. */
static void test_fifo_no_faults(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(2);
    node l, f;
    pair_up(net, &l, &f, NULL);
    stream(net, &l, &f, 500, 20000);
    assert_int_equal(l.nrecv, 500);
    for (size_t i = 0; i < l.nrecv; i++)
        assert_int_equal(l.recv[i], i);
    assert_int_equal(f.ncb, 500);
    for (size_t i = 0; i < f.ncb; i++)
        assert_int_equal(f.cb_status[i], 0);
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_DELIVERED), 500);
    node *ns[] = {&l, &f};
    close_all(net, ns, 2);
}

static rlog_simnet *net_with(uint64_t seed, rlog_simnet_rates r)
{
    rlog_simnet_config cfg;
    rlog_simnet_config_init(&cfg, seed);
    cfg.rates = r;
    rlog_simnet *net = rlog_simnet_new(&cfg);
    assert_non_null(net);
    return net;
}

/* Drop: fewer deliveries, exactly the dropped ones missing, order kept,
 * sends still complete with 0 (the loss is after the hand-off). */
static void test_drop(void **state)
{
    (void)state;
    rlog_simnet *net = net_with(3, (rlog_simnet_rates){.drop_ppm = 300000});
    node l, f;
    pair_up(net, &l, &f, NULL);
    stream(net, &l, &f, 400, 20000);
    uint64_t dropped = rlog_simnet_count(net, RLOG_SIMNET_DROPPED);
    assert_true(dropped > 50 && dropped < 250);
    assert_int_equal(l.nrecv, 400 - dropped);
    for (size_t i = 1; i < l.nrecv; i++)
        assert_true(l.recv[i] > l.recv[i - 1]);
    for (size_t i = 0; i < f.ncb; i++)
        assert_int_equal(f.cb_status[i], 0);
    assert_int_equal(f.ncb, 400);
    node *ns[] = {&l, &f};
    close_all(net, ns, 2);
}

/* Duplicate: some messages arrive twice, none lost. */
static void test_duplicate(void **state)
{
    (void)state;
    rlog_simnet *net = net_with(4, (rlog_simnet_rates){.dup_ppm = 200000});
    node l, f;
    pair_up(net, &l, &f, NULL);
    stream(net, &l, &f, 300, 20000);
    uint64_t dups = rlog_simnet_count(net, RLOG_SIMNET_DUPLICATED);
    assert_true(dups > 20);
    assert_int_equal(l.nrecv, 300 + dups);
    int seen[300] = {0}, twice = 0;
    for (size_t i = 0; i < l.nrecv; i++)
        twice += seen[l.recv[i]]++ == 1;
    assert_int_equal(twice, dups);
    for (int i = 0; i < 300; i++)
        assert_true(seen[i] >= 1);
    node *ns[] = {&l, &f};
    close_all(net, ns, 2);
}

/* Reorder: a later message is delivered before an earlier one; nothing is
 * lost or duplicated. */
static void test_reorder(void **state)
{
    (void)state;
    rlog_simnet *net =
        net_with(5, (rlog_simnet_rates){.reorder_ppm = 100000, .delay_max_ns = 5 * MS});
    node l, f;
    pair_up(net, &l, &f, NULL);
    stream(net, &l, &f, 300, 50000);
    assert_true(rlog_simnet_count(net, RLOG_SIMNET_REORDERED) > 10);
    assert_int_equal(l.nrecv, 300);
    int inversions = 0, seen[300] = {0};
    for (size_t i = 0; i < l.nrecv; i++) {
        seen[l.recv[i]]++;
        inversions += i > 0 && l.recv[i] < l.recv[i - 1];
    }
    assert_true(inversions > 5);
    for (int i = 0; i < 300; i++)
        assert_int_equal(seen[i], 1);
    node *ns[] = {&l, &f};
    close_all(net, ns, 2);
}

/* Delay: order is kept but messages arrive later than the latency bound. */
static void test_delay(void **state)
{
    (void)state;
    rlog_simnet *net =
        net_with(6, (rlog_simnet_rates){.delay_ppm = 1000000, .delay_max_ns = 50 * MS});
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    uint64_t t0 = rlog_simnet_now_ns(net);
    for (int i = 0; i < 20; i++)
        assert_int_equal(send_seq(&f, 1, (uint64_t)i, 8), 0);
    run_for(net, ns, 2, 500 * MS);
    assert_int_equal(l.nrecv, 20);
    for (size_t i = 0; i < l.nrecv; i++)
        assert_int_equal(l.recv[i], i);
    assert_true(l.recv_at[19] - t0 > 5 * MS); /* latency alone: <= 0.5 ms */
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_DELAYED), 20);
    close_all(net, ns, 2);
}

/* Partition: messages are lost, both sides see peer_down after the
 * timeout, dials fail while it stands; heal: the follower redials, both
 * see peer_up again and messages flow. */
static void test_partition_heal(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(7);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_simnet_partition(net, 1, 2);
    assert_true(rlog_simnet_partitioned(net, 2, 1));
    assert_int_equal(send_seq(&f, 1, 1, 8), 0);
    run_for(net, ns, 2, 500 * MS); /* before the 1 s timeout */
    assert_int_equal(l.nrecv, 0);
    assert_int_equal(l.downs + f.downs, 0);
    assert_true(rlog_simnet_count(net, RLOG_SIMNET_PARTITION_LOST) >= 1);
    run_for(net, ns, 2, 600 * MS);
    assert_int_equal(l.downs, 1);
    assert_int_equal(f.downs, 1);
    assert_int_equal(l.last_down, RLOG_ENOCONN);
    assert_int_equal(f.last_down, RLOG_ENOCONN);
    assert_int_equal(send_seq(&f, 1, 2, 8), RLOG_ENOCONN);
    run_for(net, ns, 2, 3000 * MS);
    assert_int_equal(f.ups, 1); /* redials time out */
    assert_true(rlog_simnet_count(net, RLOG_SIMNET_DIAL) >= 2);
    rlog_simnet_heal(net, 2, 1);
    run_for(net, ns, 2, 3000 * MS); /* a dial timeout plus the largest backoff */
    assert_int_equal(f.ups, 2);
    assert_int_equal(l.ups, 2);
    assert_int_equal(send_seq(&f, 1, 3, 8), 0);
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(l.nrecv, 1);
    assert_int_equal(l.recv[0], 3);
    /* isolate: the same, from every host */
    rlog_simnet_isolate(net, 1);
    run_for(net, ns, 2, 1100 * MS);
    assert_int_equal(l.downs, 2);
    assert_int_equal(f.downs, 2);
    rlog_simnet_heal(net, 1, 0);
    run_for(net, ns, 2, 3000 * MS);
    assert_int_equal(f.ups, 3);
    close_all(net, ns, 2);
}

/* A one-way partition loses the messages of one direction only, and the
 * connection stays up; healing it lets them through again. */
static void test_oneway_partition(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(9);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_simnet_partition_oneway(net, 2, 1); /* f (server 2) cannot reach l */
    assert_false(rlog_simnet_partitioned(net, 2, 1));
    assert_int_equal(send_seq(&f, 1, 1, 8), 0);
    assert_int_equal(send_seq(&l, 2, 7, 8), 0);
    run_for(net, ns, 2, 2000 * MS); /* past the 1 s timeout */
    assert_int_equal(l.nrecv, 0);
    assert_int_equal(f.nrecv, 1);
    assert_int_equal(f.recv[0], 7);
    assert_int_equal(l.downs + f.downs, 0);
    assert_true(rlog_simnet_count(net, RLOG_SIMNET_PARTITION_LOST) >= 1);
    rlog_simnet_heal(net, 1, 2);
    assert_int_equal(send_seq(&f, 1, 2, 8), 0);
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(l.nrecv, 1);
    assert_int_equal(l.recv[0], 2);
    close_all(net, ns, 2);
}

/* A short partition healed before the timeout loses messages but keeps
 * the connection; a close across a partition is noticed only at the
 * timeout. */
static void test_short_partition(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(8);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_simnet_partition(net, 1, 2);
    assert_int_equal(send_seq(&f, 1, 1, 8), 0);
    run_for(net, ns, 2, 100 * MS);
    rlog_simnet_heal_all(net);
    assert_int_equal(send_seq(&f, 1, 2, 8), 0);
    run_for(net, ns, 2, 2000 * MS);
    assert_int_equal(l.nrecv, 1);
    assert_int_equal(l.recv[0], 2);
    assert_int_equal(l.downs + f.downs, 0);
    rlog_simnet_partition(net, 1, 2);
    f.t->close(f.t);
    f.t = NULL;
    run_for(net, ns, 2, 900 * MS);
    assert_int_equal(l.downs, 0);
    run_for(net, ns, 2, 200 * MS);
    assert_int_equal(l.downs, 1);
    close_all(net, ns, 2);
}

/* Reset mid-stream: both sides see peer_down(ENOCONN) at once, messages in
 * flight are lost, queued sends fail with ENOCONN, the follower redials.
 * The reset fault does the same by chance. */
static void test_reset(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(9);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_simnet_slow(net, 2, 1, 1000); /* 1000 B/s: the queue backs up */
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_seq(&f, 1, (uint64_t)i, 8), 0);
    rlog_simnet_advance(net, 1); /* the first is on the wire */
    assert_int_equal(rlog_simnet_reset_conn(net, f.t, 1), 0);
    poll_all(ns, 2);
    assert_int_equal(l.downs, 1);
    assert_int_equal(f.downs, 1);
    assert_int_equal(f.last_down, RLOG_ENOCONN);
    assert_int_equal(f.ncb, 5);
    assert_int_equal(f.cb_status[0], 0);
    for (int i = 1; i < 5; i++)
        assert_int_equal(f.cb_status[i], RLOG_ENOCONN);
    run_for(net, ns, 2, 100 * MS);
    assert_int_equal(l.nrecv, 0);
    assert_true(rlog_simnet_count(net, RLOG_SIMNET_INFLIGHT_LOST) >= 1);
    assert_int_equal(f.ups, 2); /* redialled */
    assert_int_equal(l.ups, 2);
    rlog_simnet_slow(net, 2, 1, 0);
    rlog_simnet_set_rates(net, &(rlog_simnet_rates){.reset_ppm = 50000});
    int sent = 0;
    for (int i = 0; i < 200; i++) {
        sent += send_seq(&f, 1, (uint64_t)i, 16) == 0; /* ENOCONN while reconnecting */
        run_for(net, ns, 2, 200000);
    }
    run_for(net, ns, 2, 100 * MS);
    uint64_t resets = rlog_simnet_count(net, RLOG_SIMNET_RESET); /* the first one too */
    assert_true(resets > 3);
    assert_int_equal((uint64_t)f.downs, resets);
    assert_int_equal((uint64_t)l.downs, resets);
    assert_true(l.nrecv < (size_t)sent);
    close_all(net, ns, 2);
}

/* A slow host: its latency is multiplied; on a narrow link the send queue
 * fills and drops the oldest queued message first with EFULL. */
static void test_slow_peer_efull(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(10);
    rlog_transport_config base;
    memset(&base, 0, sizeof base);
    base.queue_messages = 8;
    node l, f;
    pair_up(net, &l, &f, &base);
    node *ns[] = {&l, &f};
    rlog_simnet_slow(net, 2, 100, 0);
    uint64_t t0 = rlog_simnet_now_ns(net);
    assert_int_equal(send_seq(&l, 2, 0, 8), 0);
    run_for(net, ns, 2, 200 * MS);
    assert_int_equal(f.nrecv, 1);
    assert_true(f.recv_at[0] - t0 >= 100 * 50000); /* 100 x the 50 us minimum */
    rlog_simnet_slow(net, 2, 1, 10000);            /* 10 kB/s */
    for (int i = 1; i <= 40; i++)
        assert_int_equal(send_seq(&l, 2, (uint64_t)i, 1000), 0);
    run_for(net, ns, 2, 10000 * MS);
    /* 1 left at once, 8 stayed queued, 31 were pushed out in send order */
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_EFULL), 31);
    assert_int_equal(l.ncb, 41);
    size_t efull = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < l.ncb; i++)
        if (l.cb_status[i] == RLOG_EFULL) {
            assert_true(l.cb_seq[i] > last);
            last = l.cb_seq[i];
            efull++;
            assert_true(l.cb_seq[i] >= 2 && l.cb_seq[i] <= 32);
        }
    assert_int_equal(efull, 31);
    assert_int_equal(f.nrecv, 1 + 9);
    assert_int_equal(f.recv[1], 1);
    for (size_t i = 2; i < f.nrecv; i++)
        assert_int_equal(f.recv[i], 31 + i);
    close_all(net, ns, 2);
}

/* The byte limit of the send queue drops the oldest too. */
static void test_queue_bytes(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(18);
    rlog_transport_config base;
    memset(&base, 0, sizeof base);
    base.queue_bytes = 2500;
    node l, f;
    pair_up(net, &l, &f, &base);
    node *ns[] = {&l, &f};
    rlog_simnet_slow(net, 1, 1, 1000);
    for (int i = 0; i < 5; i++) /* ~1030 bytes each: two fit in the queue */
        assert_int_equal(send_seq(&l, 2, (uint64_t)i, 1000), 0);
    run_for(net, ns, 2, 5000 * MS);
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_EFULL), 2);
    assert_int_equal(l.ncb, 5);
    assert_int_equal(l.cb_seq[1], 1);
    assert_int_equal(l.cb_status[1], RLOG_EFULL);
    assert_int_equal(l.cb_seq[2], 2);
    assert_int_equal(l.cb_status[2], RLOG_EFULL);
    assert_int_equal(f.nrecv, 3);
    assert_int_equal(f.recv[1], 3);
    assert_int_equal(f.recv[2], 4);
    close_all(net, ns, 2);
}

/* A scenario with every fault kind, recorded as (time, node, seq). */
typedef struct run_rec {
    uint64_t hash;
    size_t n;
    uint64_t v[3 * MAXMSG];
} run_rec;

static void scenario(uint64_t seed, run_rec *out)
{
    rlog_simnet *net = net_with(seed, (rlog_simnet_rates){.drop_ppm = 50000,
                                                          .dup_ppm = 50000,
                                                          .reorder_ppm = 50000,
                                                          .delay_ppm = 50000,
                                                          .reset_ppm = 10000,
                                                          .delay_max_ns = 3 * MS});
    static node l, f, g;
    pair_up(net, &l, &f, NULL);
    node_start(net, &g, 3, NULL, RLOG_ROLE_SHIP_FOLLOWER, NULL);
    assert_int_equal(g.t->connect(g.t, 1, LEADER), 0);
    node *ns[] = {&l, &f, &g};
    for (uint64_t i = 0; i < 300; i++) {
        send_seq(&f, 1, i, (size_t)(i % 50));
        send_seq(&g, 1, i, 7);
        if (i == 100)
            rlog_simnet_partition(net, 1, 3);
        if (i == 200)
            rlog_simnet_heal_all(net);
        run_for(net, ns, 3, 30000);
    }
    run_for(net, ns, 3, 3000 * MS);
    out->hash = rlog_simnet_trace_hash(net);

    out->n = 0;
    for (size_t i = 0; i < l.nrecv && out->n + 3 <= 3 * MAXMSG; i++) {
        out->v[out->n++] = l.recv_at[i];
        out->v[out->n++] = l.recv_from[i];
        out->v[out->n++] = l.recv[i];
    }
    close_all(net, ns, 3);
}

/* Determinism: the same seed gives the same trace hash and the same
 * deliveries at the same virtual times; another seed differs. */
static void test_determinism(void **state)
{
    (void)state;
    static run_rec a, b, c;
    scenario(11, &a);
    scenario(11, &b);
    scenario(12, &c);
    assert_true(a.n > 300);
    assert_int_equal(a.hash, b.hash);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.v, b.v, a.n * sizeof a.v[0]);
    assert_true(a.hash != c.hash);
    assert_true(a.n != c.n || memcmp(a.v, c.v, a.n * sizeof a.v[0]) != 0);
}

/* Hostile bytes: garbage, an oversized message and a second hello each
 * reset the connection — the receiver sees peer_down(EPROTO) with a logged
 * reason, the sender peer_down(ENOCONN) — and the dialer reconnects. */
static void test_hostile_bytes(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(13);
    rlog_transport_config base;
    memset(&base, 0, sizeof base);
    base.max_message = 4096;
    node l, f;
    pair_up(net, &l, &f, &base);
    node *ns[] = {&l, &f};
    static const unsigned char garbage[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x04, 0x01};
    assert_int_equal(rlog_simnet_inject_raw(net, f.t, 1, garbage, sizeof garbage), 0);
    run_for(net, ns, 2, 20 * MS);
    assert_int_equal(l.downs, 1);
    assert_int_equal(l.last_down, RLOG_EPROTO);
    assert_int_equal(f.downs, 1);
    assert_int_equal(f.last_down, RLOG_ENOCONN);
    assert_non_null(strstr(l.log, "server 2"));
    assert_int_equal(l.nrecv, 0);
    run_for(net, ns, 2, 100 * MS);
    assert_int_equal(f.ups, 2);

    /* bigger than max_message: refused by send, and reset when it arrives */
    rlog_msg_entry e = {.term = 1, .type = 1, .len = 5000, .data = calloc(1, 5000)};
    rlog_msg m = {.type = RLOG_MSG_APPEND_ENTRIES};
    m.u.append_entries = (rlog_msg_append_entries){.term = 1, .n_entries = 1, .entries = &e};
    assert_int_equal(f.t->send(f.t, 1, &m, NULL, NULL), RLOG_ETOOBIG);
    assert_non_null(strstr(f.t->errmsg, "max_message"));
    void *buf;
    size_t len;
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), 0);
    free((void *)e.data);
    assert_int_equal(rlog_simnet_inject_raw(net, f.t, 1, buf, len), 0);
    rlog_free(buf);
    run_for(net, ns, 2, 20 * MS);
    assert_int_equal(l.downs, 2);
    assert_int_equal(l.last_down, RLOG_EPROTO);
    run_for(net, ns, 2, 100 * MS);
    assert_int_equal(f.ups, 3);

    /* a hello on an open connection */
    rlog_msg h = {.type = RLOG_MSG_HELLO};
    h.u.hello = (rlog_msg_hello){.server_id = 2, .address = "", .protocol_version = 1};
    assert_int_equal(f.t->send(f.t, 1, &h, NULL, NULL), RLOG_EINVAL);
    assert_int_equal(rlog_msg_encode(&h, &buf, &len), 0);
    assert_int_equal(rlog_simnet_inject_raw(net, f.t, 1, buf, len), 0);
    rlog_free(buf);
    run_for(net, ns, 2, 20 * MS);
    assert_int_equal(l.downs, 3);
    assert_non_null(strstr(l.log, "unexpected hello"));
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_EPROTO), 3);
    close_all(net, ns, 2);
}

/* close: every pending send completes exactly once inside close (the ones
 * still queued with ECLOSED), then peer_down(ECLOSED); nothing runs after;
 * the peer sees peer_down(ENOCONN). */
static void test_close_eclosed(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(14);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_simnet_slow(net, 2, 1, 100);
    for (int i = 0; i < 6; i++)
        assert_int_equal(send_seq(&f, 1, (uint64_t)i, 100), 0);
    f.t->close(f.t);
    f.t = NULL;
    assert_int_equal(f.ncb, 6);
    assert_int_equal(f.cb_status[0], 0); /* on the wire before the close */
    for (int i = 1; i < 6; i++) {
        assert_int_equal(f.cb_seq[i], i);
        assert_int_equal(f.cb_status[i], RLOG_ECLOSED);
    }
    assert_int_equal(f.downs, 1);
    assert_int_equal(f.last_down, RLOG_ECLOSED);
    run_for(net, ns, 2, 5000 * MS);
    assert_int_equal(f.ncb, 6);
    assert_int_equal(f.downs, 1);
    assert_int_equal(l.downs, 1);
    assert_int_equal(l.last_down, RLOG_ENOCONN);
    close_all(net, ns, 2);
}

static void recv_then_close(void *data, uint64_t peer, const rlog_msg *m)
{
    node *n = data;
    ev_recv(data, peer, m);
    n->t->close(n->t); /* from inside the owner's own callback */
}

/* close() from inside a callback: the rest of the queue is settled inside
 * close, poll returns normally, nothing runs afterwards. */
static void test_close_in_callback(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(21);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_transport_events ev = {.data = &l, .peer_down = ev_down, .recv = recv_then_close};
    l.t->close(l.t); /* a fresh leader whose recv closes it */
    memset(&l, 0, sizeof l);
    l.id = 1;
    l.net = net;
    rlog_transport_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server_id = 1;
    cfg.address = LEADER;
    cfg.role = RLOG_ROLE_RAFT;
    assert_int_equal(rlog_simnet_transport_new(net, &l.t), 0);
    assert_int_equal(l.t->init(l.t, &cfg, &ev), 0);
    assert_int_equal(l.t->listen(l.t), 0);
    run_for(net, ns, 2, 100 * MS); /* the follower redials the new leader */
    assert_int_equal(f.ups, 2);
    assert_int_equal(send_seq(&f, 1, 1, 4), 0);
    assert_int_equal(send_seq(&f, 1, 2, 4), 0);
    for (int i = 0; i < 100 && l.nrecv == 0; i++)
        rlog_simnet_step(net);
    rlog_transport *t = l.t;
    assert_int_equal(t->poll(t, 0), 1); /* ran the recv that closed it */
    l.t = NULL;
    assert_int_equal(l.nrecv, 1);
    assert_int_equal(l.downs, 1);
    assert_int_equal(l.last_down, RLOG_ECLOSED);
    run_for(net, ns, 2, 100 * MS);
    assert_int_equal(l.nrecv, 1);
    assert_int_equal(f.last_down, RLOG_ENOCONN);
    close_all(net, ns, 2);
}

/* A crash: no callback runs on the crashed node, its peer sees
 * peer_down only after the timeout; a restarted node with the same id
 * replaces its old connection at once. */
static void test_crash_restart(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(15);
    node l, f, f2;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f, &f2};
    memset(&f2, 0, sizeof f2);
    assert_int_equal(send_seq(&f, 1, 1, 8), 0);
    rlog_simnet_node_crash(net, f.t);
    f.t = NULL;
    assert_int_equal(f.ncb, 0);
    run_for(net, ns, 3, 900 * MS);
    assert_int_equal(l.downs, 0);
    run_for(net, ns, 3, 200 * MS);
    assert_int_equal(l.downs, 1);
    assert_int_equal(f.downs + f.ncb, 0);
    /* leader crashes: the restarted one takes its address */
    rlog_simnet_node_crash(net, l.t);
    l.t = NULL;
    node_start(net, &l, 1, LEADER, RLOG_ROLE_SHIP_LEADER, NULL);
    node_start(net, &f2, 2, NULL, RLOG_ROLE_SHIP_FOLLOWER, NULL);
    assert_int_equal(f2.t->connect(f2.t, 1, LEADER), 0);
    run_for(net, ns, 3, 10 * MS);
    assert_int_equal(l.ups, 1);
    /* the follower restarts again before the leader notices */
    rlog_simnet_node_crash(net, f2.t);
    node_start(net, &f2, 2, NULL, RLOG_ROLE_SHIP_FOLLOWER, NULL);
    assert_int_equal(f2.t->connect(f2.t, 1, LEADER), 0);
    run_for(net, ns, 3, 10 * MS);
    assert_int_equal(l.downs, 1);
    assert_int_equal(l.ups, 2);
    assert_int_equal(f2.ups, 1);
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_CRASH), 3);
    close_all(net, ns, 3);
}

/* disconnect: queued sends fail with ECANCELED, peer_down(ENOCONN)
 * follows on the next poll, and the peer is not redialled. */
static void test_disconnect(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(16);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    rlog_simnet_slow(net, 2, 1, 100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_seq(&f, 1, (uint64_t)i, 100), 0);
    assert_int_equal(f.t->disconnect(f.t, 1), 0);
    assert_int_equal(f.downs, 0); /* not inside the call */
    poll_all(ns, 2);
    assert_int_equal(f.downs, 1);
    assert_int_equal(f.last_down, RLOG_ENOCONN);
    assert_int_equal(f.ncb, 3);
    assert_int_equal(f.cb_status[1], RLOG_ECANCELED);
    assert_int_equal(f.cb_status[2], RLOG_ECANCELED);
    uint64_t dials = rlog_simnet_count(net, RLOG_SIMNET_DIAL);
    run_for(net, ns, 2, 5000 * MS);
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_DIAL), dials);
    assert_int_equal(f.ups, 1);
    assert_int_equal(l.downs, 1);
    assert_int_equal(f.t->disconnect(f.t, 1), RLOG_ENOCONN);
    close_all(net, ns, 2);
}

/* Two servers dialling each other at once end up with one connection,
 * the same on both sides, without flapping. */
static void test_simultaneous_dial(void **state)
{
    (void)state;
    for (uint64_t seed = 20; seed < 40; seed++) {
        rlog_simnet *net = net_new(seed);
        node a, b;
        node_start(net, &a, 1, "sim://a", RLOG_ROLE_RAFT, NULL);
        node_start(net, &b, 2, "sim://b", RLOG_ROLE_RAFT, NULL);
        assert_int_equal(a.t->connect(a.t, 2, "sim://b"), 0);
        assert_int_equal(b.t->connect(b.t, 1, "sim://a"), 0);
        node *ns[] = {&a, &b};
        run_for(net, ns, 2, 3 * MS); /* one round trip: no redial needed */
        assert_int_equal(a.ups, 1);
        assert_int_equal(b.ups, 1);
        run_for(net, ns, 2, 3000 * MS);
        assert_int_equal(a.ups - a.downs, 1);
        assert_int_equal(b.ups - b.downs, 1);
        assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_DIAL), 2);
        assert_int_equal(send_seq(&a, 2, 1, 4), 0);
        assert_int_equal(send_seq(&b, 1, 2, 4), 0);
        run_for(net, ns, 2, 10 * MS);
        assert_int_equal(b.nrecv, 1);
        assert_int_equal(a.nrecv, 1);
        close_all(net, ns, 2);
    }
}

/* Which connection each node keeps, from the network's trace: the node
 * that dialled each connection, and per node the last connection that came
 * up there and the peer server it came up with. */
typedef struct conn_log {
    int dialer[64];
    uint64_t last_up[MAXN], up_peer[MAXN];
} conn_log;

static void conn_log_line(void *data, const char *line)
{
    conn_log *cl = data;
    unsigned long long c, peer;
    unsigned at;
    const char *p = strstr(line, " conn ");
    if (!p)
        return;
    if (sscanf(p, " conn %llu node %u dials", &c, &at) == 2 && c < 64)
        cl->dialer[c] = (int)at;
    else if (sscanf(p, " conn %llu up at node %u: server %llu", &c, &at, &peer) == 3 && at < MAXN) {
        cl->last_up[at] = c;
        cl->up_peer[at] = peer;
    }
}

/* The server id that dialled the connection both nodes (0 and 1) keep;
 * fails unless they keep the same one. */
static uint64_t kept_dialled_by(const conn_log *cl)
{
    uint64_t c = cl->last_up[0];
    assert_true(c > 0 && c < 64);
    assert_int_equal(cl->last_up[1], c);
    int d = cl->dialer[c];
    assert_true(d == 0 || d == 1);
    return cl->up_peer[!d]; /* the other node saw the dialler's id */
}

/* Crossing dials settle as the nng transport settles them
 * (rlg_transport_newer_wins, as transport_nng_test's check_crossing): both
 * ends keep the same connection, the one dialled by the smaller server id
 * — whichever hello arrives first, over many seeds' latencies. */
static void test_crossing_smaller_id_wins(void **state)
{
    (void)state;
    for (uint64_t seed = 40; seed < 80; seed++) {
        rlog_simnet *net = net_new(seed);
        conn_log cl;
        memset(&cl, 0, sizeof cl);
        rlog_simnet_set_trace(net, conn_log_line, &cl);
        node a, b;
        /* the larger id starts first half of the time: node order is not the rule */
        uint64_t ida = seed % 2 ? 1 : 2, idb = 3 - ida;
        node_start(net, &a, ida, "sim://a", RLOG_ROLE_RAFT, NULL);
        node_start(net, &b, idb, "sim://b", RLOG_ROLE_RAFT, NULL);
        assert_int_equal(a.t->connect(a.t, idb, "sim://b"), 0);
        assert_int_equal(b.t->connect(b.t, ida, "sim://a"), 0);
        node *ns[] = {&a, &b};
        run_for(net, ns, 2, 3000 * MS);
        assert_int_equal(a.ups - a.downs, 1);
        assert_int_equal(b.ups - b.downs, 1);
        assert_int_equal(kept_dialled_by(&cl), 1);
        assert_int_equal(send_seq(&a, idb, 1, 4), 0);
        assert_int_equal(send_seq(&b, ida, 2, 4), 0);
        run_for(net, ns, 2, 10 * MS);
        assert_int_equal(a.nrecv, 1);
        assert_int_equal(b.nrecv, 1);
        rlog_simnet_set_trace(net, NULL, NULL);
        close_all(net, ns, 2);
    }
}

/* Servers a (1) and b (2) connected, the connection dialled by b when
 * b_dials (else by a); then b crashes (no close: a sees nothing until the
 * timeout), restarts and dials a. */
static void restart_setup(rlog_simnet *net, node *a, node *b, node **ns, bool b_dials)
{
    node_start(net, a, 1, "sim://a", RLOG_ROLE_RAFT, NULL);
    node_start(net, b, 2, "sim://b", RLOG_ROLE_RAFT, NULL);
    if (b_dials)
        assert_int_equal(b->t->connect(b->t, 1, "sim://a"), 0);
    else
        assert_int_equal(a->t->connect(a->t, 2, "sim://b"), 0);
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(a->ups, 1);
    rlog_simnet_node_crash(net, b->t);
    node_start(net, b, 2, "sim://b", RLOG_ROLE_RAFT, NULL);
    assert_int_equal(b->t->connect(b->t, 1, "sim://a"), 0);
}

/* A restarted server that dials again replaces, at once, a stale
 * connection it had dialled itself (of two connections the peer dialled,
 * the newer wins). */
static void test_restart_replaces(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(19);
    node a, b;
    node *ns[] = {&a, &b};
    restart_setup(net, &a, &b, ns, true);
    run_for(net, ns, 2, 10 * MS); /* far below the 1 s timeout */
    assert_int_equal(a.downs, 1);
    assert_int_equal(a.ups, 2);
    assert_int_equal(b.ups, 1);
    assert_int_equal(send_seq(&a, 2, 1, 4), 0);
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(b.nrecv, 1);
    run_for(net, ns, 2, 5000 * MS); /* the old connection's timeout changes nothing */
    assert_int_equal(a.downs, 1);
    assert_int_equal(b.downs, 0);
    close_all(net, ns, 2);
}

/* A stale connection that the smaller id dialled is kept against the
 * restarted peer's new dial (mixed directions: the one dialled by the
 * smaller id wins, as in nng) until it times out; then the two settle on
 * one connection and messages flow. */
static void test_restart_waits_for_stale_dialled(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(19);
    node a, b;
    node *ns[] = {&a, &b};
    restart_setup(net, &a, &b, ns, false);
    run_for(net, ns, 2, 100 * MS); /* below the 1 s timeout: b's dials give way */
    assert_int_equal(a.downs, 0);
    assert_int_equal(a.ups, 1);
    assert_int_equal(b.ups, 0);
    run_for(net, ns, 2, 5000 * MS); /* the stale one times out */
    assert_int_equal(a.downs, 1);
    assert_int_equal(a.ups - a.downs, 1);
    assert_int_equal(b.ups - b.downs, 1);
    assert_int_equal(send_seq(&a, 2, 1, 4), 0);
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(b.nrecv, 1);
    close_all(net, ns, 2);
}

static void on_post(void *arg)
{
    ((node *)arg)->posts++;
}

/* The env runs on the virtual clock with seeded randomness; post() runs at
 * the next poll; argument errors are reported with a message. */
static void test_env_post_errors(void **state)
{
    (void)state;
    rlog_simnet *net = net_new(17), *net2 = net_new(17);
    rlog_env *env = rlog_simnet_env(net);
    assert_int_equal(env->now_ns(env), rlog_simnet_now_ns(net));
    rlog_simnet_advance(net, 12345);
    assert_int_equal(env->now_ns(env), 1000000000ull + 12345);
    assert_int_equal(env->random(env), rlog_simnet_env(net2)->random(rlog_simnet_env(net2)));
    rlog_simnet_free(net2);
    node l, f;
    pair_up(net, &l, &f, NULL);
    node *ns[] = {&l, &f};
    assert_int_equal(l.t->post(l.t, on_post, &l), 0);
    assert_int_equal(l.posts, 0);
    poll_all(ns, 2);
    assert_int_equal(l.posts, 1);
    assert_int_equal(send_seq(&l, 9, 1, 0), RLOG_ENOCONN);
    assert_non_null(strstr(l.t->errmsg, "server 9"));
    node dup;
    memset(&dup, 0, sizeof dup);
    assert_int_equal(rlog_simnet_transport_new(net, &dup.t), 0);
    rlog_transport_config cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(dup.t->init(dup.t, &cfg, NULL), RLOG_EINVAL);
    cfg.server_id = 5;
    cfg.address = LEADER;
    assert_int_equal(dup.t->init(dup.t, &cfg, NULL), RLOG_EINVAL); /* role 0, as in nng */
    assert_non_null(strstr(dup.t->errmsg, "unknown role"));
    cfg.role = RLOG_ROLE_RAFT;
    assert_int_equal(dup.t->init(dup.t, &cfg, NULL), 0);
    assert_int_equal(dup.t->listen(dup.t), RLOG_EBUSY);
    assert_int_equal(dup.t->connect(dup.t, 1, ""), RLOG_EINVAL);
    dup.t->close(dup.t);
    /* a dial that finds another server than it asked for */
    node g;
    node_start(net, &g, 3, NULL, RLOG_ROLE_OBSERVER, NULL);
    assert_int_equal(g.t->connect(g.t, 5, LEADER), 0);
    node *ns3[] = {&l, &f, &g};
    run_for(net, ns3, 3, 100 * MS);
    assert_int_equal(g.ups, 0);
    assert_non_null(strstr(g.log, "expected server 5, the hello says 1"));
    g.t->close(g.t);
    /* a dial to nobody is refused and retried */
    assert_int_equal(f.t->connect(f.t, 7, "sim://nobody"), 0);
    run_for(net, ns, 2, 100 * MS);
    assert_true(rlog_simnet_count(net, RLOG_SIMNET_REFUSED) >= 2);
    assert_string_equal(rlog_simnet_counter_name(RLOG_SIMNET_EFULL), "efull");
    close_all(net, ns, 2);
}

/* Property (issue 15 / issue 10: the simulator's network keeps the real
 * transport's limits, through the same functions): a flood of silent
 * connections is held within max_conns (max_conns_per_host per host, also
 * from the known follower's own host) and closed at the handshake
 * deadline, and does not keep the known follower out; once max_conns
 * unknown peers are up, another unknown one is refused with a log line
 * naming the limit, while the known follower still gets in on the
 * reserve. */
static void test_silent_flood_keeps_known_peer_in(void **state)
{
    (void)state;
    static const uint64_t known[] = {2};
    rlog_transport_config base;
    rlog_transport_config_init(&base);
    base.max_conns = 8;
    base.max_conns_per_host = 4;
    base.reserve_conns = 2;
    base.handshake_ms = 1000;
    base.known_ids = known;
    base.n_known_ids = 1;
    enum { UNKNOWN = 9 };
    rlog_simnet *net = net_new(15);
    node *l = calloc(1, sizeof *l), *f = calloc(1, sizeof *f);
    node *u = calloc(UNKNOWN, sizeof *u);
    assert_true(l && f && u);
    node_start(net, l, 1, LEADER, RLOG_ROLE_SHIP_LEADER, &base);
    node *ns[UNKNOWN + 2] = {l, f};
    /* 500 silent connections from one host, then 3 from each of 30 hosts,
     * and 50 from the follower's own host (2) */
    assert_int_equal(rlog_simnet_open_silent(net, 99, LEADER, 500), 0);
    assert_int_equal(rlog_simnet_silent_held(net, LEADER), 4);
    for (uint64_t h = 100; h < 130; h++) {
        assert_int_equal(rlog_simnet_open_silent(net, h, LEADER, 3), 0);
        assert_true(rlog_simnet_silent_held(net, LEADER) <= 8);
    }
    assert_int_equal(rlog_simnet_silent_held(net, LEADER), 8);
    /* each newcomer pushes out the oldest; once host 2 holds 5, its own
     * oldest goes too: 4 of host 2 and 3 others remain */
    assert_int_equal(rlog_simnet_open_silent(net, 2, LEADER, 50), 0);
    assert_int_equal(rlog_simnet_silent_held(net, LEADER), 7);
    assert_int_equal(rlog_simnet_open_silent(net, 2, "sim://nobody", 1), RLOG_ENOTFOUND);
    uint64_t limited = rlog_simnet_count(net, RLOG_SIMNET_LIMITED);
    assert_int_equal(limited, 500 + 90 + 50 - 7);
    /* the known follower gets in while the flood is held */
    node_start(net, f, 2, NULL, RLOG_ROLE_SHIP_FOLLOWER, &base);
    assert_int_equal(f->t->connect(f->t, 1, LEADER), 0);
    run_for(net, ns, 2, 10 * MS);
    assert_int_equal(f->ups, 1);
    assert_int_equal(l->ups, 1);
    assert_int_equal(rlog_simnet_silent_held(net, LEADER), 7);
    /* the handshake deadline closes every silent one */
    run_for(net, ns, 2, 1000 * MS);
    assert_int_equal(rlog_simnet_silent_held(net, LEADER), 0);
    assert_int_equal(rlog_simnet_count(net, RLOG_SIMNET_LIMITED), limited + 7);
    /* without the follower, 8 unknown peers (one host each) fill max_conns */
    f->t->close(f->t);
    f->t = NULL;
    run_for(net, ns, 2, 10 * MS);
    for (int i = 0; i < UNKNOWN; i++) {
        ns[2 + i] = &u[i];
        node_start(net, &u[i], 10 + (uint64_t)i, NULL, RLOG_ROLE_SHIP_FOLLOWER, &base);
        assert_int_equal(u[i].t->connect(u[i].t, 1, LEADER), 0);
        run_for(net, ns, 2 + i + 1, 10 * MS);
        assert_int_equal(u[i].ups, i < 8 ? 1 : 0);
    }
    assert_non_null(strstr(l->log, "refused server 18 at sim://leader: 8 incoming connections, "
                                   "the limit for an unknown peer is 8"));
    /* ... and the known follower still gets in on the reserve */
    node_start(net, f, 2, NULL, RLOG_ROLE_SHIP_FOLLOWER, &base);
    assert_int_equal(f->t->connect(f->t, 1, LEADER), 0);
    run_for(net, ns, UNKNOWN + 2, 10 * MS);
    assert_int_equal(f->ups, 1);
    assert_int_equal(u[UNKNOWN - 1].ups, 0);
    close_all(net, ns, UNKNOWN + 2);
    free(u);
    free(f);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_peer_up),
        cmocka_unit_test(test_fifo_no_faults),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_partition_heal),
        cmocka_unit_test(test_oneway_partition),
        cmocka_unit_test(test_short_partition),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_slow_peer_efull),
        cmocka_unit_test(test_queue_bytes),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_close_eclosed),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_crash_restart),
        cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_simultaneous_dial),
        cmocka_unit_test(test_restart_replaces),
        cmocka_unit_test(test_restart_waits_for_stale_dialled),
        cmocka_unit_test(test_crossing_smaller_id_wins),
        cmocka_unit_test(test_env_post_errors),
        cmocka_unit_test(test_silent_flood_keeps_known_peer_in),
    };
    return TU_RUN("sim_net", tests, NULL, NULL);
}
