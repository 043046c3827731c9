/*
 * The simulator's network (rlog/sim.h, "Simulated network"): a
 * deterministic, single-threaded implementation of the transport table
 * (rlog/transport.h) over a modelled network with faults.
 *
 * Two queues drive everything:
 *  - the network's event heap, ordered by (virtual time, sequence number):
 *    packets in flight, resets, timeouts, redial timers, send-queue pumps.
 *    rlog_simnet_step/advance pop it and act at once, as a kernel and nng's
 *    threads would: connections open and die, packets are decoded, send
 *    queues drain;
 *  - each endpoint's ready list: the callbacks those actions produced
 *    (peer_up, peer_down, recv, send completions, posted functions), in
 *    order. poll() runs the ones queued before it started.
 * A connection (sn_conn) has two ends: 0 is the dialer's, 1 the listener's
 * (attached to a node when the dialer's hello arrives). Each end owns its
 * send queue and its outgoing link, and dies once (sn_end.dead). A
 * connection is freed when no live end and no event refers to it (refs).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/sim.h"
#include "rlog/transport.h"
#include "rlog/wire.h"
#include "sim/harness.h"
#include "transport/transport.h"

/* PRNG streams of the seed (simfs uses 1..3). */
enum { STREAM_FAULT = 0x6e01, STREAM_LATENCY, STREAM_BACKOFF, STREAM_ENV };

#define NS_PER_S ((uint64_t)1000000000)
#define RST_NONE UINT64_MAX /* end_kill: do not tell the other end */
#define NONE     (-1)       /* sn_trace: no counter */

typedef struct sn_node sn_node;
typedef struct sn_conn sn_conn;

typedef enum sn_kind {
    EV_PKT, /* network events (heap) */
    EV_RST,
    EV_CTIMEO,
    EV_PTIMEO,
    EV_REDIAL,
    EV_PUMP,
    EV_GTIMEO, /* a silent guest's handshake deadline */
    R_UP,      /* callbacks (ready lists) */
    R_DOWN,
    R_RECV,
    R_CB,
    R_POST,
} sn_kind;

typedef struct sn_ev {
    struct sn_ev *next; /* ready list */
    uint64_t at, seq;   /* heap order */
    sn_kind kind;
    int side;      /* the end of `conn` it concerns */
    sn_conn *conn; /* holds a reference */
    sn_node *node; /* EV_REDIAL; ready items */
    uint64_t peer, gen;
    size_t dial;
    int status; /* R_DOWN reason, R_CB status */
    void *buf;  /* owned: EV_PKT, R_RECV, queued bytes; R_UP address */
    size_t len;
    uint64_t h; /* EV_PKT: sn_hash(buf, len) when `hashed` (computed at the send) */
    bool hashed;
    rlog_msg msg;         /* R_RECV (points into buf) */
    rlog_msg_hello hello; /* R_UP */
    rlog_transport_send_cb cb;
    void (*fn)(void *);
    void *data;
} sn_ev;

typedef struct sn_end {
    sn_node *node;    /* NULL until the listener accepts */
    uint64_t peer_id; /* expected by a dialer (0 = any), then announced */
    char *peer_addr;  /* announced in the peer's hello */
    bool up, dead, user_up, pump_armed;
    sn_ev *qhead, *qtail; /* sends not yet on the wire (R_CB, buf = the bytes) */
    unsigned qn;
    size_t qbytes;
    uint64_t link_free, last_arrival; /* our outgoing direction */
} sn_end;

struct sn_conn {
    sn_conn *prev, *next; /* the network's list, creation order */
    uint64_t id;
    uint64_t host[2]; /* server ids of the dialer and listener (0 until accepted) */
    char *address;    /* dialled */
    unsigned refs;
    sn_end end[2];
};

/* A connection to a listener that has not sent its hello (a stranger's:
 * rlog_simnet_open_silent): held under the limits (docs/security.md). A
 * dial's hello arrives with its connection, so dials never wait here. */
typedef struct sn_guest {
    uint64_t id, host, since; /* since: ns */
} sn_guest;

typedef struct sn_dial {
    bool active;
    uint64_t peer_id, known_id, gen;
    char *address;
    sn_conn *conn; /* the connection serving this dial, or NULL */
    int side;
    unsigned backoff_ms;
} sn_dial;

struct sn_node {
    rlog_simnet *net;
    rlog_transport *t;
    uint32_t idx;
    bool inited, listening, dead, closing, free_t;
    int in_poll;
    rlog_transport_config cfg;
    char *address;
    rlog_transport_events ev;
    sn_ev *rhead, *rtail;
    size_t rcount;
    sn_dial *dials;
    size_t ndials;
    uint64_t *known_ids; /* cfg.known_ids points here */
    sn_guest *guests;    /* oldest first */
    size_t nguests, capguests;
};

typedef struct sn_host {
    uint64_t id, bps;
    uint32_t mult;
} sn_host;

typedef struct sn_cut {
    uint64_t a, b; /* b == 0: a is isolated */
    bool oneway;   /* only messages from a to b are lost */
} sn_cut;

struct rlog_simnet {
    rlog_simnet_config cfg;
    uint64_t now, seq, conn_ids, guest_ids, hash;
    bool faults_on;
    rlog_sim_rng fault_rng, lat_rng, backoff_rng, env_rng;
    sn_ev **heap;
    size_t nheap, capheap;
    sn_node **nodes;
    size_t nnodes;
    sn_conn *conns, *conns_tail;
    sn_cut *cuts;
    size_t ncuts;
    sn_host *hosts;
    size_t nhosts;
    uint64_t count[RLOG_SIMNET_COUNTER_COUNT];
    rlog_sim_trace_fn trace;
    void *trace_data;
    rlog_env env;
};

/* ---- trace ---- */

static uint64_t sn_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The hash of bytes on the wire in trace lines (the harness's, four lanes
 * wide: every message is hashed once). */
static uint64_t sn_hash(const void *data, size_t len)
{
    return rlg_sim_hash(data, len);
}

/* Counts (unless `which` is NONE), hashes and emits one trace line. */
static void sn_line(rlog_simnet *net, int which, const char *line, size_t len)
{
    if (which != NONE)
        net->count[which]++;
    net->hash = sn_mix(net->hash ^ sn_hash(line, len));
    if (net->trace)
        net->trace(net->trace_data, line);
}

/* Traces one event (and counts it, unless `which` is NONE). */
__attribute__((format(printf, 3, 4))) static void sn_trace(rlog_simnet *net, int which,
                                                           const char *fmt, ...)
{
    char line[640];
    int n = snprintf(line, sizeof line, "%" PRIu64 ".%09" PRIu64 " ", net->now / NS_PER_S,
                     net->now % NS_PER_S);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    sn_line(net, which, line, strlen(line));
}

/* The lines of every message sent and received (most of the trace) are
 * put together by hand, byte for byte what sn_trace's printf formats
 * make of them, without printf's cost: a writer into a line buffer. */
typedef struct sn_w {
    char *p, *end;
} sn_w;

static void w_str(sn_w *w, const char *s)
{
    while (*s && w->p < w->end)
        *w->p++ = *s++;
}

/* v in decimal, at least `width` digits (zero-padded). */
static void w_dec(sn_w *w, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n > 0 && w->p < w->end)
        *w->p++ = tmp[--n];
}

static void w_hex16(sn_w *w, uint64_t v)
{
    for (int i = 15; i >= 0 && w->p < w->end; i--)
        *w->p++ = "0123456789abcdef"[(v >> (4 * i)) & 15];
}

/* "<s>.<ns> conn <id> " into line. */
static void w_head(sn_w *w, const rlog_simnet *net, uint64_t conn)
{
    w_dec(w, net->now / NS_PER_S, 1);
    w_str(w, ".");
    w_dec(w, net->now % NS_PER_S, 9);
    w_str(w, " conn ");
    w_dec(w, conn, 1);
    w_str(w, " ");
}

/* " len <len> h <h>", then the line is done. */
static void w_end(sn_w *w, rlog_simnet *net, int which, char *line, size_t len, uint64_t h)
{
    w_str(w, " len ");
    w_dec(w, len, 1);
    w_str(w, " h ");
    w_hex16(w, h);
    *w->p = 0;
    sn_line(net, which, line, (size_t)(w->p - line));
}

/* sn_trace(net, NONE, "conn %" PRIu64 " send %s %d->%d len %zu h %016" PRIx64, ...) */
static void trace_send(rlog_simnet *net, uint64_t conn, const char *type, int s, size_t len,
                       uint64_t h)
{
    char line[640];
    sn_w w = {line, line + sizeof line - 1};
    w_head(&w, net, conn);
    w_str(&w, "send ");
    w_str(&w, type);
    w_str(&w, " ");
    w_dec(&w, (uint64_t)s, 1);
    w_str(&w, "->");
    w_dec(&w, (uint64_t)!s, 1);
    w_end(&w, net, NONE, line, len, h);
}

/* sn_trace(net, DELIVERED, "conn %" PRIu64 " recv %s at node %u from %" PRIu64
 * " len %zu h %016" PRIx64, ...) */
static void trace_recv(rlog_simnet *net, uint64_t conn, const char *type, unsigned node,
                       uint64_t from, size_t len, uint64_t h)
{
    char line[640];
    sn_w w = {line, line + sizeof line - 1};
    w_head(&w, net, conn);
    w_str(&w, "recv ");
    w_str(&w, type);
    w_str(&w, " at node ");
    w_dec(&w, node, 1);
    w_str(&w, " from ");
    w_dec(&w, from, 1);
    w_end(&w, net, RLOG_SIMNET_DELIVERED, line, len, h);
}

/* ---- events, connections ---- */

static void conn_unref(rlog_simnet *net, sn_conn *c)
{
    if (--c->refs)
        return;
    for (int s = 0; s < 2; s++)
        free(c->end[s].peer_addr); /* queues were emptied by end_kill */
    *(c->prev ? &c->prev->next : &net->conns) = c->next;
    *(c->next ? &c->next->prev : &net->conns_tail) = c->prev;
    free(c->address);
    free(c);
}

static sn_ev *ev_new(rlog_simnet *net, sn_kind kind, sn_conn *c, int side)
{
    sn_ev *ev = calloc(1, sizeof *ev);
    if (!ev) {
        net->count[RLOG_SIMNET_NOMEM]++;
        return NULL;
    }
    ev->kind = kind;
    ev->side = side;
    ev->conn = c;
    if (c)
        c->refs++;
    return ev;
}

static void ev_free(rlog_simnet *net, sn_ev *ev)
{
    rlog_msg_free(&ev->msg);
    free(ev->buf);
    if (ev->conn)
        conn_unref(net, ev->conn);
    free(ev);
}

static bool ev_before(const sn_ev *a, const sn_ev *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void sched(rlog_simnet *net, sn_ev *ev, uint64_t at)
{
    if (!ev)
        return;
    if (net->nheap == net->capheap) {
        size_t cap = net->capheap ? 2 * net->capheap : 64;
        sn_ev **h = realloc(net->heap, cap * sizeof *h);
        if (!h) {
            net->count[RLOG_SIMNET_NOMEM]++;
            ev_free(net, ev);
            return;
        }
        net->heap = h;
        net->capheap = cap;
    }
    ev->at = at;
    ev->seq = net->seq++;
    size_t i = net->nheap++;
    while (i > 0 && ev_before(ev, net->heap[(i - 1) / 2])) {
        net->heap[i] = net->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    net->heap[i] = ev;
}

static sn_ev *heap_pop(rlog_simnet *net)
{
    sn_ev *top = net->heap[0], *last = net->heap[--net->nheap];
    size_t i = 0, n = net->nheap;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= n)
            break;
        if (k + 1 < n && ev_before(net->heap[k + 1], net->heap[k]))
            k++;
        if (!ev_before(net->heap[k], last))
            break;
        net->heap[i] = net->heap[k];
        i = k;
    }
    if (n)
        net->heap[i] = last;
    return top;
}

static void ready(sn_node *n, sn_ev *ev)
{
    if (!ev)
        return;
    ev->node = n;
    *(n->rtail ? &n->rtail->next : &n->rhead) = ev;
    n->rtail = ev;
    n->rcount++;
    if (n->cfg.wake) /* like nng: the owner learns that poll() has work */
        n->cfg.wake(n->cfg.wake_data);
}

static sn_ev *ready_pop(sn_node *n)
{
    sn_ev *ev = n->rhead;
    if (ev) {
        n->rhead = ev->next;
        if (!n->rhead)
            n->rtail = NULL;
        n->rcount--;
    }
    return ev;
}

static sn_ev *q_pop(sn_end *e)
{
    sn_ev *m = e->qhead;
    e->qhead = m->next;
    if (!e->qhead)
        e->qtail = NULL;
    m->next = NULL;
    e->qn--;
    e->qbytes -= m->len;
    return m;
}

/* A send left its queue: its callback is due with `status`. */
static void q_done(rlog_simnet *net, sn_node *n, sn_ev *m, int status, bool silent)
{
    free(m->buf);
    m->buf = NULL;
    m->status = status;
    if (m->cb && !silent)
        ready(n, m);
    else
        ev_free(net, m);
}

/* ---- hosts: partitions, slow links ---- */

static sn_host host_of(rlog_simnet *net, uint64_t id)
{
    for (size_t i = 0; i < net->nhosts; i++)
        if (net->hosts[i].id == id)
            return net->hosts[i];
    return (sn_host){id, 0, 1};
}

static bool is_cut(rlog_simnet *net, uint64_t a, uint64_t b)
{
    if (a == b || !a || !b)
        return false;
    for (size_t i = 0; i < net->ncuts; i++) {
        sn_cut k = net->cuts[i];
        if (k.oneway)
            continue;
        if (k.b ? (k.a == a && k.b == b) || (k.a == b && k.b == a) : k.a == a || k.a == b)
            return true;
    }
    return false;
}

/* True when a message from host `from` to host `to` is lost now: a cut
 * between them, or a one-way cut from -> to. */
static bool is_cut_dir(rlog_simnet *net, uint64_t from, uint64_t to)
{
    if (is_cut(net, from, to))
        return true;
    for (size_t i = 0; i < net->ncuts; i++)
        if (net->cuts[i].oneway && net->cuts[i].a == from && net->cuts[i].b == to)
            return true;
    return false;
}

static uint64_t latency(rlog_simnet *net, const sn_conn *c)
{
    uint64_t lo = net->cfg.latency_min_ns, hi = net->cfg.latency_max_ns;
    uint64_t l = lo + rlog_sim_rng_below(&net->lat_rng, hi - lo + 1);
    uint32_t m0 = host_of(net, c->host[0]).mult, m1 = host_of(net, c->host[1]).mult;
    return l * (m0 > m1 ? m0 : m1);
}

static uint64_t link_bps(rlog_simnet *net, const sn_conn *c)
{
    uint64_t b = net->cfg.bytes_per_sec;
    for (int i = 0; i < 2; i++) {
        uint64_t h = host_of(net, c->host[i]).bps;
        if (h && (!b || h < b))
            b = h;
    }
    return b;
}

/* How long until the other end learns that this one is gone. */
static uint64_t rst_delay(rlog_simnet *net, const sn_conn *c)
{
    return is_cut(net, c->host[0], c->host[1]) ? net->cfg.timeout_ns : latency(net, c);
}

/* ---- dial records ---- */

static void dial_now(rlog_simnet *net, sn_node *n, size_t i);

/* The live end of n to `peer` (up, or with need_up false also a dialer's end
 * still connecting), other than skip's. */
static sn_conn *find_end(rlog_simnet *net, const sn_node *n, uint64_t peer, bool need_up,
                         const sn_conn *skip, int *side)
{
    for (sn_conn *c = net->conns; peer && c; c = c->next)
        for (int s = 0; s < 2; s++) {
            const sn_end *e = &c->end[s];
            if (c != skip && e->node == n && !e->dead && e->peer_id == peer &&
                (e->up || (!need_up && s == 0))) {
                *side = s;
                return c;
            }
        }
    return NULL;
}

/* A dial is satisfied by any up connection to its peer. */
static bool dial_adopt(rlog_simnet *net, sn_node *n, sn_dial *d)
{
    int s;
    sn_conn *c = find_end(net, n, d->peer_id ? d->peer_id : d->known_id, true, NULL, &s);
    if (!c)
        return false;
    d->conn = c;
    d->side = s;
    d->gen++; /* cancels a redial timer */
    d->backoff_ms = n->cfg.backoff_min_ms;
    return true;
}

static void dial_later(rlog_simnet *net, sn_node *n, size_t i)
{
    sn_dial *d = &n->dials[i];
    if (dial_adopt(net, n, d))
        return;
    /* the real transport's backoff (transport/transport.c) */
    uint64_t ms =
        rlg_transport_backoff_jitter(d->backoff_ms, (uint32_t)rlog_sim_rng_next(&net->backoff_rng));
    d->backoff_ms =
        rlg_transport_backoff_next(d->backoff_ms, n->cfg.backoff_min_ms, n->cfg.backoff_max_ms);
    sn_trace(net, NONE, "node %u redial %s in %" PRIu64 " ms", n->idx, d->address, ms);
    sn_ev *ev = ev_new(net, EV_REDIAL, NULL, 0);
    if (ev) {
        ev->node = n;
        ev->dial = i;
        ev->gen = d->gen;
    }
    sched(net, ev, net->now + ms * 1000000u);
}

/* The end (c, s) of n died: its dials look for another connection or redial. */
static void dials_release(rlog_simnet *net, sn_node *n, const sn_conn *c, int s)
{
    for (size_t i = 0; i < n->ndials; i++)
        if (n->dials[i].active && n->dials[i].conn == c && n->dials[i].side == s) {
            n->dials[i].conn = NULL;
            dial_later(net, n, i);
        }
}

/* The end (c, s) of n came up. */
static void dials_up(rlog_simnet *net, sn_node *n, sn_conn *c, int s)
{
    for (size_t i = 0; i < n->ndials; i++) {
        sn_dial *d = &n->dials[i];
        if (d->active && d->conn == c && d->side == s) {
            d->backoff_ms = n->cfg.backoff_min_ms;
            if (!d->peer_id)
                d->known_id = c->end[s].peer_id;
        } else if (d->active && !d->conn) {
            dial_adopt(net, n, d);
        }
    }
}

/* ---- connection ends ---- */

/* Kills end s of c: queued sends fail with cbstatus and an up end reports
 * peer_down(reason) (neither when silent); the other end is told after
 * `rst` ns (RST_NONE: never). */
static void end_kill(rlog_simnet *net, sn_conn *c, int s, int reason, int cbstatus, bool silent,
                     uint64_t rst)
{
    sn_end *e = &c->end[s];
    if (e->dead)
        return;
    e->dead = true;
    c->refs++;
    sn_node *n = e->node;
    if (n) {
        sn_trace(net, NONE, "conn %" PRIu64 " end %d of node %u down: %s", c->id, s, n->idx,
                 rlog_errname(reason));
        while (e->qhead)
            q_done(net, n, q_pop(e), cbstatus, silent);
        if (e->up && !silent) {
            sn_ev *ev = ev_new(net, R_DOWN, c, s);
            if (ev) {
                ev->peer = e->peer_id;
                ev->status = reason;
            }
            ready(n, ev);
        }
        e->up = false;
        c->refs--; /* the node's reference (c->refs stays > 0: ours) */
        dials_release(net, n, c, s);
    }
    if (!c->end[!s].dead && rst != RST_NONE)
        sched(net, ev_new(net, EV_RST, c, !s), net->now + rst);
    conn_unref(net, c);
}

/* The network breaks c: both ends die now. */
static void conn_break(rlog_simnet *net, sn_conn *c)
{
    sn_trace(net, RLOG_SIMNET_RESET, "conn %" PRIu64 " reset", c->id);
    c->refs++;
    for (int s = 0; s < 2; s++) {
        if (c->end[s].node)
            end_kill(net, c, s, RLOG_ENOCONN, RLOG_ENOCONN, false, RST_NONE);
        c->end[s].dead = true;
    }
    conn_unref(net, c);
}

static void proto_fail(rlog_simnet *net, sn_conn *c, int s, const char *what)
{
    sn_node *n = c->end[s].node;
    const char *addr = s == 0 ? c->address : c->end[s].peer_addr ? c->end[s].peer_addr : "?";
    char msg[512];
    snprintf(msg, sizeof msg,
             "server %" PRIu64 ": connection %" PRIu64 " with server %" PRIu64 " (%s): %s; reset",
             n->cfg.server_id, c->id, c->end[s].peer_id, addr, what);
    sn_trace(net, RLOG_SIMNET_EPROTO, "%s", msg);
    if (n->cfg.logger)
        n->cfg.logger(n->cfg.logger_data, RLOG_LEVEL_WARN, msg);
    end_kill(net, c, s, RLOG_EPROTO, RLOG_EPROTO, false, rst_delay(net, c));
}

/* h: the bytes' sn_hash, when hashed (the send traced it; the receipt
 * traces it again, and the bytes do not change in flight). */
static void pkt_sched(rlog_simnet *net, sn_conn *c, int to, void *buf, size_t len, uint64_t at,
                      bool hashed, uint64_t h)
{
    sn_ev *ev = ev_new(net, EV_PKT, c, to);
    if (!ev) {
        free(buf);
        return;
    }
    ev->buf = buf;
    ev->len = len;
    ev->hashed = hashed;
    ev->h = h;
    sched(net, ev, at);
}

/* Schedules bytes from end s in order (no faults): hellos, injected bytes. */
static void send_plain(rlog_simnet *net, sn_conn *c, int s, void *buf, size_t len)
{
    sn_end *e = &c->end[s];
    uint64_t at = net->now + latency(net, c);
    if (at < e->last_arrival)
        at = e->last_arrival;
    e->last_arrival = at;
    pkt_sched(net, c, !s, buf, len, at, false, 0);
}

static void send_hello(rlog_simnet *net, sn_conn *c, int s)
{
    const sn_node *n = c->end[s].node;
    rlog_msg m = {.type = RLOG_MSG_HELLO};
    m.u.hello = (rlog_msg_hello){.server_id = n->cfg.server_id,
                                 .address = n->address ? n->address : "",
                                 .protocol_version = RLOG_WIRE_PROTOCOL,
                                 .role = n->cfg.role};
    void *buf;
    size_t len;
    if (rlog_msg_encode(&m, &buf, &len)) {
        net->count[RLOG_SIMNET_NOMEM]++; /* the address was checked at init */
        return;
    }
    send_plain(net, c, s, buf, len);
}

/* A message leaves end s at `at` (arrival before faults): the faults. */
static void transmit(rlog_simnet *net, sn_conn *c, int s, void *buf, size_t len, uint64_t at)
{
    sn_end *e = &c->end[s];
    const rlog_simnet_rates *r = &net->cfg.rates;
    bool f = net->faults_on;
    uint64_t h = sn_hash(buf, len);
    trace_send(net, c->id, rlog_msg_type_name(len > 1 ? ((const unsigned char *)buf)[1] : 0), s,
               len, h);
    if (f && rlog_sim_rng_chance(&net->fault_rng, r->drop_ppm)) {
        sn_trace(net, RLOG_SIMNET_DROPPED, "conn %" PRIu64 " drop", c->id);
        free(buf);
        return;
    }
    if (f && rlog_sim_rng_chance(&net->fault_rng, r->delay_ppm)) {
        sn_trace(net, RLOG_SIMNET_DELAYED, "conn %" PRIu64 " delay", c->id);
        at += 1 + rlog_sim_rng_below(&net->fault_rng, r->delay_max_ns);
    }
    if (at < e->last_arrival) /* in order: wait for the ones ahead */
        at = e->last_arrival;
    if (f && rlog_sim_rng_chance(&net->fault_rng, r->reorder_ppm)) {
        sn_trace(net, RLOG_SIMNET_REORDERED, "conn %" PRIu64 " hold back", c->id);
        at += 1 + rlog_sim_rng_below(&net->fault_rng, r->delay_max_ns);
    } else {
        e->last_arrival = at;
    }
    if (f && rlog_sim_rng_chance(&net->fault_rng, r->dup_ppm)) {
        void *copy = malloc(len ? len : 1);
        if (copy) {
            sn_trace(net, RLOG_SIMNET_DUPLICATED, "conn %" PRIu64 " duplicate", c->id);
            memcpy(copy, buf, len);
            pkt_sched(net, c, !s, copy, len, at + 1 + latency(net, c), true, h);
        }
    }
    pkt_sched(net, c, !s, buf, len, at, true, h);
}

/* Moves end s's queued sends onto the wire as its link allows. */
static void pump(rlog_simnet *net, sn_conn *c, int s)
{
    sn_end *e = &c->end[s];
    while (e->qhead && !e->dead) {
        if (e->link_free > net->now) {
            if (!e->pump_armed) {
                e->pump_armed = true;
                sched(net, ev_new(net, EV_PUMP, c, s), e->link_free);
            }
            return;
        }
        if (net->faults_on && rlog_sim_rng_chance(&net->fault_rng, net->cfg.rates.reset_ppm)) {
            conn_break(net, c);
            return;
        }
        sn_ev *m = q_pop(e);
        void *buf = m->buf;
        size_t len = m->len;
        m->buf = NULL;
        q_done(net, e->node, m, 0, false);
        uint64_t bps = link_bps(net, c);
        e->link_free = net->now + (bps ? len * NS_PER_S / bps : 0);
        net->count[RLOG_SIMNET_SENT]++;
        transmit(net, c, s, buf, len, e->link_free + latency(net, c));
    }
}

/* ---- network events ---- */

static sn_node *find_listener(rlog_simnet *net, const char *address)
{
    for (size_t i = 0; i < net->nnodes; i++) {
        sn_node *n = net->nodes[i];
        if (n->listening && !n->closing && strcmp(n->address, address) == 0)
            return n;
    }
    return NULL;
}

/* ---- limits against strangers: the real transport's rules
 * (rlg_limits_*, transport/transport.c) over n's guests and connections */

static unsigned guests_from(const sn_node *n, uint64_t host)
{
    unsigned k = 0;
    for (size_t i = 0; i < n->nguests; i++)
        k += n->guests[i].host == host;
    return k;
}

static void guest_drop(sn_node *n, size_t i)
{
    memmove(&n->guests[i], &n->guests[i + 1], (n->nguests - i - 1) * sizeof *n->guests);
    n->nguests--;
}

/* Closes silent guests, oldest first, until n is within max_conns and
 * max_conns_per_host (every guest here is silent). */
static void guests_trim(rlog_simnet *net, sn_node *n)
{
    for (;;) {
        size_t v = rlg_limits_guests_over(&n->cfg, (unsigned)n->nguests) ? 0 : SIZE_MAX;
        for (size_t i = 0; v == SIZE_MAX && i < n->nguests; i++)
            if (rlg_limits_host_over(&n->cfg, guests_from(n, n->guests[i].host)))
                v = i; /* the first of its host: its oldest */
        if (v == SIZE_MAX)
            return;
        sn_trace(net, RLOG_SIMNET_LIMITED,
                 "guest %" PRIu64 " of node %u closed: silent, to stay within max_conns %u / "
                 "max_conns_per_host %u",
                 n->guests[v].id, n->idx, n->cfg.max_conns, n->cfg.max_conns_per_host);
        guest_drop(n, v);
    }
}

/* The first packet at a listener end: accept it, or refuse. */
static bool accept_conn(rlog_simnet *net, sn_conn *c)
{
    sn_node *l = find_listener(net, c->address);
    if (!l) {
        sn_trace(net, RLOG_SIMNET_REFUSED, "conn %" PRIu64 " refused: nobody listens at %s", c->id,
                 c->address);
        end_kill(net, c, 1, RLOG_ENOCONN, RLOG_ENOCONN, true, latency(net, c));
        return false;
    }
    if (is_cut_dir(net, c->host[0], l->cfg.server_id)) {
        sn_trace(net, RLOG_SIMNET_PARTITION_LOST, "conn %" PRIu64 " hello lost to a partition",
                 c->id);
        return false;
    }
    if (rlg_limits_guest_refused(&l->cfg, (unsigned)l->nguests, guests_from(l, c->host[0]))) {
        sn_trace(net, RLOG_SIMNET_LIMITED,
                 "conn %" PRIu64 " refused by node %u on arrival: %zu silent connections held",
                 c->id, l->idx, l->nguests);
        end_kill(net, c, 1, RLOG_ENOCONN, RLOG_ENOCONN, true, latency(net, c));
        return false;
    }
    c->end[1].node = l;
    c->host[1] = l->cfg.server_id;
    c->refs++;
    sn_trace(net, NONE, "conn %" PRIu64 " accepted by node %u", c->id, l->idx);
    return true;
}

/* Is `id` a known peer of n (rlg_limits_admit): one it connect()ed, or one
 * in its known_ids? */
static bool peer_known(const sn_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->ndials; i++)
        if (n->dials[i].active && n->dials[i].peer_id == id)
            return true;
    return rlg_transport_id_known(&n->cfg, id);
}

/* The hello of server `peer` arrived at listener end c: may it have a
 * connection? The real transport's rule (rlg_limits_admit) over n's
 * incoming connections that are up. Returns false (c refused, logged)
 * when not. */
static bool admit(rlog_simnet *net, sn_conn *c, uint64_t peer)
{
    sn_node *n = c->end[1].node;
    unsigned incoming = 0, from_host = 0;
    int side;
    for (const sn_conn *r = net->conns; r; r = r->next)
        if (r != c && r->end[1].node == n && !r->end[1].dead && r->end[1].up) {
            incoming++;
            from_host += r->host[0] == c->host[0];
        }
    char hn[32], why[200], msg[320];
    snprintf(hn, sizeof hn, "%" PRIu64, c->host[0]);
    if (!rlg_limits_admit(&n->cfg, incoming, from_host, peer_known(n, peer),
                          find_end(net, n, peer, true, c, &side) != NULL, hn, why, sizeof why))
        return true;
    snprintf(msg, sizeof msg, "server %" PRIu64 ": refused server %" PRIu64 " at %s: %s",
             n->cfg.server_id, peer, n->address, why);
    sn_trace(net, RLOG_SIMNET_LIMITED, "conn %" PRIu64 " %s", c->id, msg);
    if (n->cfg.logger)
        n->cfg.logger(n->cfg.logger_data, RLOG_LEVEL_WARN, msg);
    end_kill(net, c, 1, RLOG_ENOCONN, RLOG_ENOCONN, false, rst_delay(net, c));
    return false;
}

/*
 * One connection per peer, by the real transport's rule
 * (rlg_transport_newer_wins): end s of c has its peer's hello. Its rivals
 * are n's up ends to the same peer and, for an incoming c, n's own dial to
 * the peer still in handshake (a crossing). When a rival wins, c's end is
 * closed (no hello answers it) and false is returned; otherwise every rival
 * is closed — an up one gets peer_down, a dial in handshake is abandoned
 * (its hello, should it still arrive, is lost) — and true is returned.
 */
static bool arbitrate(rlog_simnet *net, sn_conn *c, int s)
{
    sn_node *n = c->end[s].node;
    uint64_t peer = c->end[s].peer_id;
    for (int pass = 0; pass < 2; pass++)
        for (sn_conn *r = net->conns, *next; r; r = next) {
            next = r->next;
            for (int rs = 0; rs < 2 && r != c; rs++) {
                const sn_end *re = &r->end[rs];
                if (re->node != n || re->dead || re->peer_id != peer ||
                    (!re->up && !(rs == 0 && s == 1)))
                    continue;
                if (pass == 0 &&
                    !rlg_transport_newer_wins(n->cfg.server_id, peer, rs == 0, s == 0)) {
                    sn_trace(net, NONE, "conn %" PRIu64 " gives way to conn %" PRIu64, c->id,
                             r->id);
                    end_kill(net, c, s, RLOG_ENOCONN, RLOG_ENOCONN, false, rst_delay(net, c));
                    return false;
                }
                if (pass == 1) {
                    sn_trace(net, NONE, "conn %" PRIu64 " replaces conn %" PRIu64, c->id, r->id);
                    end_kill(net, r, rs, RLOG_ENOCONN, RLOG_ENOCONN, false, rst_delay(net, r));
                    break; /* r may be freed */
                }
            }
        }
    return true;
}

/* A hello on end s, not yet up. Returns false when the end was killed. */
static bool on_hello(rlog_simnet *net, sn_conn *c, int s, const rlog_msg *m)
{
    sn_end *e = &c->end[s];
    sn_node *n = e->node;
    const rlog_msg_hello *h = &m->u.hello;
    char what[200] = "";
    /* the real transport's checks (transport/transport.c), then our own */
    if (!rlg_transport_hello_refused(n->cfg.server_id, 0, m, NULL, what, sizeof what) && s == 0 &&
        e->peer_id && e->peer_id != h->server_id)
        snprintf(what, sizeof what, "expected server %" PRIu64 ", the hello says %" PRIu64,
                 e->peer_id, h->server_id);
    if (*what) {
        proto_fail(net, c, s, what);
        return false;
    }
    if (s == 1 && !admit(net, c, h->server_id))
        return false;
    e->peer_id = h->server_id;
    free(e->peer_addr);
    e->peer_addr = strdup(h->address);
    if (!arbitrate(net, c, s))
        return false;
    if (s == 1)
        send_hello(net, c, 1);
    e->up = true;
    sn_trace(net, RLOG_SIMNET_UP, "conn %" PRIu64 " up at node %u: server %" PRIu64 " (%s) role %u",
             c->id, n->idx, h->server_id, h->address, h->role);
    sn_ev *ev = ev_new(net, R_UP, c, s);
    if (ev && (ev->buf = strdup(h->address))) {
        ev->peer = h->server_id;
        ev->hello = *h;
        ev->hello.address = ev->buf;
    }
    ready(n, ev);
    dials_up(net, n, c, s);
    return true;
}

static void on_pkt(rlog_simnet *net, sn_ev *ev)
{
    sn_conn *c = ev->conn;
    int s = ev->side;
    sn_end *e = &c->end[s];
    if (e->dead || (!e->node && c->end[!s].dead)) {
        sn_trace(net, RLOG_SIMNET_INFLIGHT_LOST, "conn %" PRIu64 " lost in flight: end %d is gone",
                 c->id, s);
        return;
    }
    if (!e->node) {
        if (!accept_conn(net, c))
            return;
    } else if (is_cut_dir(net, c->host[!s], c->host[s])) {
        sn_trace(net, RLOG_SIMNET_PARTITION_LOST, "conn %" PRIu64 " lost to a partition", c->id);
        return;
    }
    sn_node *n = e->node;
    rlog_msg m;
    char err[256];
    if (rlog_msg_decode(ev->buf, ev->len, n->cfg.max_message, &m, err, sizeof err)) {
        proto_fail(net, c, s, err);
        return;
    }
    if (!e->up) {
        on_hello(net, c, s, &m);
    } else if (m.type == RLOG_MSG_HELLO || m.type == RLOG_MSG_REDIRECT) {
        snprintf(err, sizeof err, "unexpected %s on an open connection",
                 rlog_msg_type_name(m.type));
        proto_fail(net, c, s, err);
    } else {
        sn_ev *r = ev_new(net, R_RECV, NULL, 0);
        if (r) {
            trace_recv(net, c->id, rlog_msg_type_name(m.type), n->idx, e->peer_id, ev->len,
                       ev->hashed ? ev->h : sn_hash(ev->buf, ev->len));
            r->peer = e->peer_id;
            r->msg = m;
            r->buf = ev->buf; /* m points into it */
            r->len = ev->len;
            ev->buf = NULL;
            ready(n, r);
            return;
        }
    }
    rlog_msg_free(&m);
}

static void handle(rlog_simnet *net, sn_ev *ev)
{
    sn_conn *c = ev->conn;
    sn_end *e = c ? &c->end[ev->side] : NULL;
    switch (ev->kind) {
    case EV_PKT:
        on_pkt(net, ev);
        break;
    case EV_RST: /* the other end is gone */
        if (e->node)
            end_kill(net, c, ev->side, RLOG_ENOCONN, RLOG_ENOCONN, false, RST_NONE);
        e->dead = true;
        break;
    case EV_CTIMEO: /* a dial unanswered */
        if (!e->dead && !e->up) {
            sn_trace(net, RLOG_SIMNET_TIMEOUT, "conn %" PRIu64 " dial of %s timed out", c->id,
                     c->address);
            end_kill(net, c, ev->side, RLOG_ENOCONN, RLOG_ENOCONN, false, rst_delay(net, c));
        }
        break;
    case EV_PTIMEO: /* keepalive across a partition */
        for (int s = 0; s < 2 && is_cut(net, c->host[0], c->host[1]); s++) {
            if (c->end[s].node && !c->end[s].dead) {
                sn_trace(net, RLOG_SIMNET_TIMEOUT, "conn %" PRIu64 " end %d timed out", c->id, s);
                end_kill(net, c, s, RLOG_ENOCONN, RLOG_ENOCONN, false, RST_NONE);
            }
            c->end[s].dead = true;
        }
        break;
    case EV_REDIAL: {
        sn_node *n = ev->node;
        if (n->dead || ev->dial >= n->ndials)
            break;
        sn_dial *d = &n->dials[ev->dial];
        if (d->active && d->gen == ev->gen && !d->conn && !dial_adopt(net, n, d))
            dial_now(net, n, ev->dial);
        break;
    }
    case EV_PUMP:
        e->pump_armed = false;
        pump(net, c, ev->side);
        break;
    case EV_GTIMEO:
        for (size_t i = 0; !ev->node->dead && i < ev->node->nguests; i++)
            if (ev->node->guests[i].id == ev->gen) {
                sn_trace(net, RLOG_SIMNET_LIMITED,
                         "guest %" PRIu64 " of node %u closed: silent past the %u ms handshake "
                         "deadline",
                         ev->gen, ev->node->idx, ev->node->cfg.handshake_ms);
                guest_drop(ev->node, i);
                break;
            }
        break;
    default:
        break;
    }
    ev_free(net, ev);
}

static void dial_now(rlog_simnet *net, sn_node *n, size_t i)
{
    sn_dial *d = &n->dials[i];
    sn_conn *c = calloc(1, sizeof *c);
    char *a = strdup(d->address);
    if (!c || !a) {
        free(c);
        free(a);
        net->count[RLOG_SIMNET_NOMEM]++;
        return;
    }
    c->id = ++net->conn_ids;
    c->address = a;
    c->host[0] = n->cfg.server_id;
    c->refs = 1;
    c->end[0].node = n;
    c->end[0].peer_id = d->peer_id;
    c->prev = net->conns_tail;
    *(c->prev ? &c->prev->next : &net->conns) = c;
    net->conns_tail = c;
    d->conn = c;
    d->side = 0;
    sn_trace(net, RLOG_SIMNET_DIAL, "conn %" PRIu64 " node %u dials %s (server %" PRIu64 ")", c->id,
             n->idx, d->address, d->peer_id);
    send_hello(net, c, 0);
    sched(net, ev_new(net, EV_CTIMEO, c, 0), net->now + net->cfg.timeout_ns);
}

/* ---- the transport table ---- */

__attribute__((format(printf, 3, 4))) static int t_fail(rlog_transport *t, int rv, const char *fmt,
                                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
    va_end(ap);
    return rv;
}

/* Common checks: initialised and not closed. */
static int t_usable(rlog_transport *t)
{
    sn_node *n = t->impl;
    if (n->closing)
        return t_fail(t, RLOG_ECLOSED, "sim transport of server %" PRIu64 " is closed",
                      n->cfg.server_id);
    if (!n->inited)
        return t_fail(t, RLOG_EINVAL, "sim transport: not initialised");
    return 0;
}

static int t_init(rlog_transport *t, const rlog_transport_config *cfg,
                  const rlog_transport_events *ev)
{
    sn_node *n = t->impl;
    if (n->inited || !cfg)
        return t_fail(t, RLOG_EINVAL, "sim transport: %s",
                      n->inited ? "init called twice" : "no configuration");
    /* the real transport's checks and defaults (transport/transport.c) */
    rlog_transport_config res;
    char why[256];
    if (rlg_transport_config_resolve(cfg, &res, why, sizeof why))
        return t_fail(t, RLOG_EINVAL, "sim transport: %s", why);
    if (*res.address && !(n->address = strdup(res.address)))
        return t_fail(t, RLOG_ENOMEM, "sim transport: out of memory");
    if (res.n_known_ids) { /* borrowed during init only (rlog/transport.h) */
        n->known_ids = malloc(res.n_known_ids * sizeof *n->known_ids);
        if (!n->known_ids)
            return t_fail(t, RLOG_ENOMEM, "sim transport: out of memory");
        memcpy(n->known_ids, res.known_ids, res.n_known_ids * sizeof *n->known_ids);
    }
    n->cfg = res;
    n->cfg.address = n->address ? n->address : "";
    n->cfg.known_ids = n->known_ids;
    if (ev)
        n->ev = *ev;
    n->inited = true;
    sn_trace(n->net, NONE, "node %u init server %" PRIu64 " address '%s' role %u", n->idx,
             cfg->server_id, n->cfg.address, cfg->role);
    return 0;
}

static int t_listen(rlog_transport *t)
{
    sn_node *n = t->impl;
    int rv = t_usable(t);
    if (rv || n->listening)
        return rv;
    if (!n->address)
        return t_fail(t, RLOG_EINVAL, "server %" PRIu64 ": no address to listen at",
                      n->cfg.server_id);
    if (find_listener(n->net, n->address))
        return t_fail(t, RLOG_EBUSY, "server %" PRIu64 ": address %s is in use", n->cfg.server_id,
                      n->address);
    n->listening = true;
    sn_trace(n->net, NONE, "node %u listens at %s", n->idx, n->address);
    return 0;
}

static int t_connect(rlog_transport *t, uint64_t peer_id, const char *address)
{
    sn_node *n = t->impl;
    int rv = t_usable(t);
    if (rv)
        return rv;
    if (!address || !*address || strlen(address) > RLOG_WIRE_ADDRESS_MAX)
        return t_fail(t, RLOG_EINVAL, "server %" PRIu64 ": bad address to dial for server %" PRIu64,
                      n->cfg.server_id, peer_id);
    char *a = strdup(address);
    sn_dial *d = a ? realloc(n->dials, (n->ndials + 1) * sizeof *d) : NULL;
    if (!d) {
        free(a);
        return t_fail(t, RLOG_ENOMEM, "server %" PRIu64 ": out of memory", n->cfg.server_id);
    }
    n->dials = d;
    for (size_t i = 0; peer_id && i < n->ndials; i++)
        if (d[i].active && d[i].peer_id == peer_id) { /* a new address for a known peer */
            free(d[i].address);
            d[i].address = a;
            return 0;
        }
    d[n->ndials] = (sn_dial){
        .active = true, .peer_id = peer_id, .address = a, .backoff_ms = n->cfg.backoff_min_ms};
    size_t i = n->ndials++;
    if (!dial_adopt(n->net, n, &n->dials[i]))
        dial_now(n->net, n, i);
    return 0;
}

static int t_disconnect(rlog_transport *t, uint64_t peer_id)
{
    sn_node *n = t->impl;
    rlog_simnet *net = n->net;
    int rv = t_usable(t);
    if (rv)
        return rv;
    bool found = false;
    for (size_t i = 0; peer_id && i < n->ndials; i++) {
        sn_dial *d = &n->dials[i];
        if (d->active && (d->peer_id == peer_id || d->known_id == peer_id)) {
            sn_conn *c = d->conn;
            d->active = false;
            d->gen++;
            d->conn = NULL;
            found = true;
            if (c) /* a dial still connecting has no peer id to find it by */
                end_kill(net, c, d->side, RLOG_ENOCONN, RLOG_ECANCELED, false, rst_delay(net, c));
        }
    }
    for (sn_conn *c = net->conns, *next; peer_id && c; c = next) {
        next = c->next;
        for (int s = 0; s < 2; s++)
            if (c->end[s].node == n && !c->end[s].dead && c->end[s].peer_id == peer_id) {
                found = true;
                end_kill(net, c, s, RLOG_ENOCONN, RLOG_ECANCELED, false, rst_delay(net, c));
            }
    }
    if (!found)
        return t_fail(t, RLOG_ENOCONN, "server %" PRIu64 ": no connection to server %" PRIu64,
                      n->cfg.server_id, peer_id);
    return 0;
}

static int t_send(rlog_transport *t, uint64_t peer_id, const rlog_msg *msg,
                  rlog_transport_send_cb cb, void *data)
{
    sn_node *n = t->impl;
    rlog_simnet *net = n->net;
    int rv = t_usable(t), s;
    if (rv)
        return rv;
    if (!msg || msg->type == RLOG_MSG_HELLO || msg->type == RLOG_MSG_REDIRECT)
        return t_fail(t, RLOG_EINVAL, "server %" PRIu64 ": %s is not a message to send",
                      n->cfg.server_id, msg ? rlog_msg_type_name(msg->type) : "NULL");
    sn_conn *c = find_end(net, n, peer_id, true, NULL, &s);
    if (!c)
        return t_fail(t, RLOG_ENOCONN, "server %" PRIu64 ": server %" PRIu64 " is not connected",
                      n->cfg.server_id, peer_id);
    void *buf;
    size_t len;
    if ((rv = rlog_msg_encode(msg, &buf, &len)))
        return t_fail(t, rv, "server %" PRIu64 ": cannot encode %s for server %" PRIu64 ": %s",
                      n->cfg.server_id, rlog_msg_type_name(msg->type), peer_id, rlog_strerror(rv));
    sn_ev *m = len <= n->cfg.max_message ? ev_new(net, R_CB, NULL, 0) : NULL;
    if (!m) {
        free(buf);
        if (len <= n->cfg.max_message)
            return t_fail(t, RLOG_ENOMEM, "server %" PRIu64 ": out of memory", n->cfg.server_id);
        return t_fail(t, RLOG_ETOOBIG,
                      "server %" PRIu64 ": %s of %zu bytes for server %" PRIu64
                      " (%s) exceeds max_message %zu",
                      n->cfg.server_id, rlog_msg_type_name(msg->type), len, peer_id,
                      c->end[s].peer_addr, n->cfg.max_message);
    }
    m->buf = buf;
    m->len = len;
    m->cb = cb;
    m->data = data;
    sn_end *e = &c->end[s];
    *(e->qtail ? &e->qtail->next : &e->qhead) = m;
    e->qtail = m;
    e->qn++;
    e->qbytes += len;
    while (e->qn > n->cfg.queue_messages || (e->qbytes > n->cfg.queue_bytes && e->qn > 1)) {
        sn_trace(net, RLOG_SIMNET_EFULL, "conn %" PRIu64 " queue full at node %u: oldest dropped",
                 c->id, n->idx);
        q_done(net, n, q_pop(e), RLOG_EFULL, false);
    }
    pump(net, c, s);
    return 0;
}

/* Runs one ready item; while closing, only send completions, posted
 * functions and the peer_down of peers the owner saw come up. */
static void run_item(sn_node *n, sn_ev *ev, bool closing)
{
    const rlog_transport_events *v = &n->ev;
    sn_end *e = ev->conn ? &ev->conn->end[ev->side] : NULL;
    switch (ev->kind) {
    case R_UP:
        if (!closing && ev->buf) {
            e->user_up = true;
            if (v->peer_up)
                v->peer_up(v->data, ev->peer, &ev->hello);
        }
        break;
    case R_DOWN:
        if (e->user_up) {
            e->user_up = false;
            if (v->peer_down)
                v->peer_down(v->data, ev->peer, ev->status);
        }
        break;
    case R_RECV:
        if (!closing && v->recv)
            v->recv(v->data, ev->peer, &ev->msg);
        break;
    case R_CB:
        ev->cb(ev->data, ev->status);
        break;
    case R_POST:
        ev->fn(ev->data);
        break;
    default:
        break;
    }
}

static int t_poll(rlog_transport *t, int timeout_ms)
{
    (void)timeout_ms; /* virtual time never passes in poll */
    sn_node *n = t->impl;
    if (n->closing)
        return -RLOG_ECLOSED;
    int ran = 0;
    n->in_poll++;
    for (size_t k = n->rcount; k > 0 && !n->closing; k--) {
        sn_ev *ev = ready_pop(n);
        run_item(n, ev, false);
        ev_free(n->net, ev);
        ran++;
    }
    if (--n->in_poll == 0 && n->free_t) { /* closed from inside a callback */
        free(n->t);
        n->t = NULL;
    }
    return ran;
}

static int t_post(rlog_transport *t, void (*fn)(void *arg), void *arg)
{
    sn_node *n = t->impl;
    if (n->closing)
        return t_fail(t, RLOG_ECLOSED, "sim transport is closed");
    if (!fn)
        return t_fail(t, RLOG_EINVAL, "sim transport: post without a function");
    sn_ev *ev = ev_new(n->net, R_POST, NULL, 0);
    if (!ev)
        return t_fail(t, RLOG_ENOMEM, "sim transport: out of memory");
    ev->fn = fn;
    ev->data = arg;
    ready(n, ev);
    return 0;
}

/* Runs (close) or drops (crash) every ready item. */
static void drain(sn_node *n, bool run)
{
    sn_ev *ev;
    while ((ev = ready_pop(n))) {
        if (run)
            run_item(n, ev, true);
        ev_free(n->net, ev);
    }
}

/* Close (callbacks inside, the peers hear at once) or crash (silent, the
 * peers hear after the timeout). */
static void node_shutdown(rlog_simnet *net, sn_node *n, bool crash)
{
    n->closing = true;
    n->listening = false;
    for (size_t i = 0; i < n->ndials; i++) {
        free(n->dials[i].address);
        n->dials[i] = (sn_dial){0};
    }
    drain(n, !crash);
    for (sn_conn *c = net->conns, *next; c; c = next) {
        next = c->next;
        c->refs++; /* keeps `next` reachable while c is handled */
        for (int s = 0; s < 2; s++)
            if (c->end[s].node == n && !c->end[s].dead)
                end_kill(net, c, s, RLOG_ECLOSED, RLOG_ECLOSED, crash,
                         crash ? net->cfg.timeout_ns : rst_delay(net, c));
        next = c->next;
        conn_unref(net, c);
    }
    drain(n, !crash);
    n->nguests = 0; /* their deadlines find nothing */
    n->dead = true;
    if (n->in_poll)
        n->free_t = true;
    else {
        free(n->t);
        n->t = NULL;
    }
}

static void t_close(rlog_transport *t)
{
    sn_node *n = t->impl;
    if (n->closing)
        return;
    sn_trace(n->net, NONE, "node %u close", n->idx);
    node_shutdown(n->net, n, false);
}

int rlog_simnet_transport_new(rlog_simnet *net, rlog_transport **out)
{
    *out = NULL;
    rlog_transport *t = calloc(1, sizeof *t);
    sn_node *n = calloc(1, sizeof *n);
    sn_node **nodes = t && n ? realloc(net->nodes, (net->nnodes + 1) * sizeof *nodes) : NULL;
    if (!nodes) {
        free(t);
        free(n);
        return RLOG_ENOMEM;
    }
    net->nodes = nodes;
    n->net = net;
    n->t = t;
    n->idx = (uint32_t)net->nnodes;
    nodes[net->nnodes++] = n;
    t->version = 1;
    t->impl = n;
    t->init = t_init;
    t->listen = t_listen;
    t->connect = t_connect;
    t->disconnect = t_disconnect;
    t->send = t_send;
    t->poll = t_poll;
    t->post = t_post;
    t->close = t_close;
    *out = t;
    return 0;
}

/* ---- the network ---- */

static uint64_t env_now(rlog_env *env)
{
    return ((rlog_simnet *)env->impl)->now;
}

static uint64_t env_random(rlog_env *env)
{
    return rlog_sim_rng_next(&((rlog_simnet *)env->impl)->env_rng);
}

static void env_destroy(rlog_env *env)
{
    (void)env; /* owned by the network */
}

void rlog_simnet_config_init(rlog_simnet_config *cfg, uint64_t seed)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = seed;
    cfg->latency_min_ns = 50000;
    cfg->latency_max_ns = 500000;
    cfg->timeout_ns = NS_PER_S;
    cfg->rates.delay_max_ns = 10000000;
}

static bool rates_ok(const rlog_simnet_rates *r)
{
    return r->drop_ppm <= 1000000 && r->dup_ppm <= 1000000 && r->reorder_ppm <= 1000000 &&
           r->delay_ppm <= 1000000 && r->reset_ppm <= 1000000 && r->delay_max_ns <= 1000 * NS_PER_S;
}

rlog_simnet *rlog_simnet_new(const rlog_simnet_config *cfg)
{
    rlog_simnet_config def;
    if (!cfg) {
        rlog_simnet_config_init(&def, 0);
        cfg = &def;
    }
    if (cfg->latency_min_ns > cfg->latency_max_ns || cfg->latency_max_ns > 1000 * NS_PER_S ||
        !cfg->timeout_ns || !rates_ok(&cfg->rates))
        return NULL;
    rlog_simnet *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->cfg = *cfg;
    net->now = NS_PER_S;
    net->faults_on = true;
    net->hash = sn_mix(cfg->seed ^ 0x73696d6e6574ull);
    rlog_sim_rng_init(&net->fault_rng, cfg->seed, STREAM_FAULT);
    rlog_sim_rng_init(&net->lat_rng, cfg->seed, STREAM_LATENCY);
    rlog_sim_rng_init(&net->backoff_rng, cfg->seed, STREAM_BACKOFF);
    rlog_sim_rng_init(&net->env_rng, cfg->seed, STREAM_ENV);
    net->env =
        (rlog_env){.impl = net, .now_ns = env_now, .random = env_random, .destroy = env_destroy};
    return net;
}

void rlog_simnet_free(rlog_simnet *net)
{
    if (!net)
        return;
    net->trace = NULL;
    for (size_t i = 0; i < net->nnodes; i++)
        if (!net->nodes[i]->dead)
            node_shutdown(net, net->nodes[i], true);
    while (net->nheap)
        ev_free(net, heap_pop(net));
    for (size_t i = 0; i < net->nnodes; i++) {
        free(net->nodes[i]->dials);
        free(net->nodes[i]->guests);
        free(net->nodes[i]->known_ids);
        free(net->nodes[i]->address);
        free(net->nodes[i]);
    }
    while (net->conns) { /* none should be left: each is freed with its last reference */
        net->conns->refs = 1;
        conn_unref(net, net->conns);
    }
    free(net->nodes);
    free(net->heap);
    free(net->cuts);
    free(net->hosts);
    free(net);
}

int rlog_simnet_step(rlog_simnet *net)
{
    if (!net->nheap)
        return 0;
    if (net->heap[0]->at > net->now)
        net->now = net->heap[0]->at;
    int ran = 0;
    while (net->nheap && net->heap[0]->at <= net->now) {
        handle(net, heap_pop(net));
        ran++;
    }
    return ran;
}

void rlog_simnet_advance(rlog_simnet *net, uint64_t ns)
{
    uint64_t end = net->now + ns;
    while (net->nheap && net->heap[0]->at <= end)
        rlog_simnet_step(net);
    net->now = end;
}

uint64_t rlog_simnet_now_ns(rlog_simnet *net)
{
    return net->now;
}

uint64_t rlog_simnet_next_ns(rlog_simnet *net)
{
    return net->nheap ? net->heap[0]->at : UINT64_MAX;
}

rlog_env *rlog_simnet_env(rlog_simnet *net)
{
    return &net->env;
}

void rlog_simnet_faults(rlog_simnet *net, int on)
{
    net->faults_on = on != 0;
    sn_trace(net, NONE, "faults %s", on ? "on" : "off");
}

void rlog_simnet_set_rates(rlog_simnet *net, const rlog_simnet_rates *rates)
{
    if (rates_ok(rates))
        net->cfg.rates = *rates;
}

/* A new cut: connections across it time out unless it is healed first. */
static void cut_add(rlog_simnet *net, uint64_t a, uint64_t b, bool oneway)
{
    sn_cut *k = realloc(net->cuts, (net->ncuts + 1) * sizeof *k);
    if (!k) {
        net->count[RLOG_SIMNET_NOMEM]++;
        return;
    }
    net->cuts = k;
    k[net->ncuts++] = (sn_cut){a, b, oneway};
    if (oneway) { /* connections stay up: only a's messages to b are lost */
        sn_trace(net, NONE, "partition one-way %" PRIu64 " -> %" PRIu64, a, b);
        return;
    }
    sn_trace(net, NONE, "partition %" PRIu64 " %" PRIu64, a, b);
    for (sn_conn *c = net->conns; c; c = c->next)
        if (is_cut(net, c->host[0], c->host[1]))
            sched(net, ev_new(net, EV_PTIMEO, c, 0), net->now + net->cfg.timeout_ns);
}

void rlog_simnet_partition(rlog_simnet *net, uint64_t a, uint64_t b)
{
    if (a && b && a != b)
        cut_add(net, a, b, false);
}

void rlog_simnet_partition_oneway(rlog_simnet *net, uint64_t from, uint64_t to)
{
    if (from && to && from != to)
        cut_add(net, from, to, true);
}

void rlog_simnet_isolate(rlog_simnet *net, uint64_t a)
{
    if (a)
        cut_add(net, a, 0, false);
}

void rlog_simnet_heal(rlog_simnet *net, uint64_t a, uint64_t b)
{
    size_t j = 0;
    for (size_t i = 0; i < net->ncuts; i++) {
        sn_cut k = net->cuts[i];
        bool heal = b ? (k.a == a && k.b == b) || (k.a == b && k.b == a) : k.a == a || k.b == a;
        if (!heal)
            net->cuts[j++] = k;
    }
    net->ncuts = j;
    sn_trace(net, NONE, "heal %" PRIu64 " %" PRIu64, a, b);
}

void rlog_simnet_heal_all(rlog_simnet *net)
{
    net->ncuts = 0;
    sn_trace(net, NONE, "heal all");
}

int rlog_simnet_partitioned(rlog_simnet *net, uint64_t a, uint64_t b)
{
    return is_cut(net, a, b);
}

void rlog_simnet_slow(rlog_simnet *net, uint64_t server_id, uint32_t latency_mult,
                      uint64_t bytes_per_sec)
{
    sn_host h = {server_id, bytes_per_sec, latency_mult ? latency_mult : 1};
    sn_trace(net, NONE, "slow %" PRIu64 " x%u %" PRIu64 " B/s", server_id, h.mult, bytes_per_sec);
    for (size_t i = 0; i < net->nhosts; i++)
        if (net->hosts[i].id == server_id) {
            net->hosts[i] = h;
            return;
        }
    sn_host *v = realloc(net->hosts, (net->nhosts + 1) * sizeof *v);
    if (!v) {
        net->count[RLOG_SIMNET_NOMEM]++;
        return;
    }
    net->hosts = v;
    v[net->nhosts++] = h;
}

int rlog_simnet_reset_conn(rlog_simnet *net, rlog_transport *t, uint64_t peer_id)
{
    int s;
    sn_conn *c = find_end(net, t->impl, peer_id, false, NULL, &s);
    if (!c)
        return RLOG_ENOCONN;
    conn_break(net, c);
    return 0;
}

void rlog_simnet_node_crash(rlog_simnet *net, rlog_transport *t)
{
    sn_node *n = t->impl;
    if (n->closing)
        return;
    sn_trace(net, RLOG_SIMNET_CRASH, "node %u crash", n->idx);
    node_shutdown(net, n, true);
}

int rlog_simnet_inject_raw(rlog_simnet *net, rlog_transport *from, uint64_t to, const void *bytes,
                           size_t len)
{
    int s;
    sn_conn *c = find_end(net, from->impl, to, true, NULL, &s);
    if (!c)
        return RLOG_ENOCONN;
    void *buf = malloc(len ? len : 1);
    if (!buf)
        return RLOG_ENOMEM;
    memcpy(buf, bytes, len);
    sn_trace(net, NONE, "conn %" PRIu64 " inject %zu raw bytes h %016" PRIx64, c->id, len,
             sn_hash(buf, len));
    send_plain(net, c, s, buf, len);
    return 0;
}

int rlog_simnet_open_silent(rlog_simnet *net, uint64_t host, const char *address, unsigned count)
{
    sn_node *l = find_listener(net, address);
    if (!l)
        return RLOG_ENOTFOUND;
    for (unsigned k = 0; k < count; k++) {
        if (rlg_limits_guest_refused(&l->cfg, (unsigned)l->nguests, guests_from(l, host))) {
            sn_trace(net, RLOG_SIMNET_LIMITED,
                     "node %u refused a silent connection from host %" PRIu64
                     " on arrival: %zu held",
                     l->idx, host, l->nguests);
            continue;
        }
        if (l->nguests == l->capguests) {
            size_t cap = l->capguests ? 2 * l->capguests : 16;
            sn_guest *g = realloc(l->guests, cap * sizeof *g);
            if (!g)
                return RLOG_ENOMEM;
            l->guests = g;
            l->capguests = cap;
        }
        sn_ev *ev = ev_new(net, EV_GTIMEO, NULL, 0);
        if (!ev)
            return RLOG_ENOMEM;
        sn_guest *g = &l->guests[l->nguests++];
        *g = (sn_guest){++net->guest_ids, host, net->now};
        ev->node = l;
        ev->gen = g->id;
        sn_trace(net, NONE, "guest %" PRIu64 " from host %" PRIu64 " held by node %u (silent)",
                 g->id, host, l->idx);
        sched(net, ev, net->now + (uint64_t)l->cfg.handshake_ms * 1000000u);
        guests_trim(net, l);
    }
    return 0;
}

size_t rlog_simnet_silent_held(rlog_simnet *net, const char *address)
{
    sn_node *l = find_listener(net, address);
    return l ? l->nguests : 0;
}

uint64_t rlog_simnet_count(rlog_simnet *net, rlog_simnet_counter which)
{
    return (unsigned)which < RLOG_SIMNET_COUNTER_COUNT ? net->count[which] : 0;
}

const char *rlog_simnet_counter_name(rlog_simnet_counter which)
{
    static const char *const names[RLOG_SIMNET_COUNTER_COUNT] = {
        "sent",    "delivered", "dropped",        "duplicated",    "reordered",
        "delayed", "reset",     "partition_lost", "inflight_lost", "timeout",
        "efull",   "eproto",    "dial",           "refused",       "up",
        "crash",   "nomem",     "limited"};
    return (unsigned)which < RLOG_SIMNET_COUNTER_COUNT ? names[which] : "?";
}

uint64_t rlog_simnet_trace_hash(rlog_simnet *net)
{
    return net->hash;
}

void rlog_simnet_set_trace(rlog_simnet *net, rlog_sim_trace_fn fn, void *data)
{
    net->trace = fn;
    net->trace_data = data;
}
