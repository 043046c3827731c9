/*
 * The nng transport (rlog/transport.h): one monogamous pair1 socket per
 * peer, a rendezvous so that one public address serves any number of
 * peers, and an owner-thread event loop. docs/wire.md, "Connections",
 * specifies what goes over the network; this comment says how the code is
 * arranged.
 *
 * Objects (owned by the owner thread, hanging off tn):
 *   rdv     the public address: a rep0 socket with one context. A request
 *           is a dialer's hello; the answer is a redirect to a fresh
 *           dedicated pair1 socket (an incoming conn) with a one-time token.
 *   dialer  one per connect(): asks the rendezvous (a req0 socket per
 *           attempt), dials the dedicated address it is given (an outgoing
 *           conn), and starts over after a backoff when that fails or the
 *           connection is lost. IDLE while the peer is up through another
 *           connection.
 *           Its pipes ("guests") are tracked under tn->mtx by pipe
 *           callbacks; the owner closes those past handshake_ms and the
 *           oldest silent ones over the caps (guests_run).
 *   conn    one pair1 socket = one connection, incoming or outgoing:
 *           HANDSHAKE until the hellos are exchanged, then UP (it is "the
 *           peer"), then DEAD (kept in the graveyard until poll() is back at
 *           its top level, then freed).
 *
 * Threads. nng completes aios and reports pipe events on its own threads.
 * Those callbacks only append the `ev` slot embedded in the object to the
 * inbox (under tn->mtx) and wake the owner; each aio has at most one
 * operation in flight, so a slot is queued at most once. poll() pops slots
 * one at a time and runs the state machines. The owner never holds tn->mtx
 * while calling into nng, and waiting for an aio or nng_close happen only
 * on the owner thread (nng_close waits for running pipe callbacks, which
 * take tn->mtx: calling it from an nng callback could deadlock). Killing an
 * object cancels its aios and waits for their callbacks (aio_end), closes
 * its socket, then unlinks its slots from the inbox, so no event ever
 * refers to a dead object.
 *
 * Limits and TLS (docs/security.md) live in their own section
 * ("Limits against strangers") called from the rendezvous, the timers and
 * the arbitration; the TLS configuration itself is transport/nng_tls.c.
 *
 * User callbacks. peer_up and recv are called directly by the state
 * machine (their arguments are borrowed); peer_down, send completions and
 * posted functions are `ready` nodes appended to tn->ready and run in
 * order, before and after each direct call, so callbacks never nest. Any
 * object may die during a callback (the user may disconnect or close):
 * code after a callback checks the state before touching sockets.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "rlog/transport.h"
#include "rlog/wire.h"
#include "transport/nng_tls.h"
#include "transport/transport.h"

#define RDV_MAX_BYTES  4096u         /* rendezvous messages: one hello or redirect */
#define REQ_RESEND_MS  1000          /* req0 resends an unanswered rendezvous request */
#define BAD_HELLOS_MAX 3u            /* refused first messages before a dedicated socket closes */
#define SUFFIX_TRIES   4             /* fresh ipc/inproc names tried on a clash */
#define REMOVED_KEEP   4             /* pipes removed before the hello, remembered */
#define NO_REDIAL_MS   (3600 * 1000) /* nng's own redial of a dedicated address */
#define NNG_BUF_MAX    8192u         /* nng's limit for NNG_OPT_SENDBUF/RECVBUF */
#define RECV_BATCH     64            /* messages taken per receive completion */
#define TIME_NEVER     UINT64_MAX
#define LOG_MAX        640
#define TLS_REPORT_MS  1000 /* failed TLS handshakes are logged this often */
#define CLOSE_BATCH    64   /* silent connections closed per pass */
#define HS_PER_PEER    2u   /* dedicated connections in handshake per peer id */

typedef struct tn tn;
typedef struct conn conn;
typedef struct dialer dialer;

/* ------------------------------------------------------------------------
 * Events from nng's threads and callbacks for the user
 * ---------------------------------------------------------------------- */

typedef enum ev_kind { EV_SEND, EV_RECV, EV_PIPE, EV_DIALER, EV_RDV, EV_GUEST } ev_kind;

/* A notification slot embedded in its owner; links under tn->mtx. */
typedef struct ev {
    struct ev *prev, *next;
    tn *n;
    void *owner;
    ev_kind kind;
    bool queued;
} ev;

typedef enum ready_kind { READY_SEND, READY_DOWN, READY_POST } ready_kind;

/* A callback to run on the owner thread, in order. */
typedef struct ready {
    struct ready *next;
    ready_kind kind;
    int status;                /* SEND: completion status; DOWN: reason */
    uint64_t peer;             /* DOWN */
    rlog_transport_send_cb cb; /* SEND (NULL: internal message) */
    void (*fn)(void *);        /* POST */
    void *data;
} ready;

/* One send: queued on its conn (linked by r.next), in flight, then its
 * completion in the ready list. */
typedef struct sendreq {
    ready r;      /* first member: a sendreq is freed as its ready node */
    nng_msg *msg; /* ours until handed to nng_send_aio */
    size_t bytes;
} sendreq;

/* ------------------------------------------------------------------------
 * Objects
 * ---------------------------------------------------------------------- */

typedef enum conn_state { CONN_HANDSHAKE, CONN_UP, CONN_DEAD } conn_state;

/* A remote host, for the per-host limits: the IP address of a tcp pipe;
 * every ipc, inproc or abstract pipe is the one host "local". */
typedef struct host {
    uint16_t family; /* NNG_AF_INET, NNG_AF_INET6, 0 = local */
    uint8_t a[16];
} host;

/* A connection to the public address (an nng pipe of the rep0 socket): it
 * may ask for one dedicated address, within handshake_ms of arriving. */
typedef struct guest {
    nng_pipe pipe;
    host h;
    nng_time since;
    bool spoke; /* its request was taken */
} guest;

struct conn {
    tn *n;
    conn *next; /* tn->conns, then tn->graveyard */
    nng_socket sock;
    bool outgoing;    /* we dialled it */
    dialer *d;        /* outgoing: the dialer that made it, while both live */
    uint64_t peer_id; /* incoming: from the rendezvous; outgoing: expected
                         (0 = any) until the peer's hello, then announced */
    uint64_t token;   /* incoming: what the dialer must present */
    char *where;      /* the dedicated address */
    char *peer_addr;  /* announced in the peer's hello; "" before */
    conn_state state;
    nng_time deadline; /* end of the handshake */
    nng_aio *send_aio, *recv_aio;
    ev send_ev, recv_ev, pipe_ev;
    bool sending, receiving; /* an operation is in flight on that aio */
    sendreq *inflight;
    sendreq *qhead, *qtail; /* waiting sends, oldest first */
    unsigned qn;
    size_t qbytes;
    ready *down;  /* peer_down, allocated up front */
    unsigned bad; /* refused first messages (incoming) */
    /* Under tn->mtx (pipe callbacks). */
    uint32_t live_pipe; /* incoming: the pipe whose hello was accepted */
    uint32_t removed[REMOVED_KEEP];
    unsigned nremoved;
    bool lost;
    /* Limits and TLS (incoming: host is the rendezvous pipe's). */
    host h;
    nng_time up_at;
    nng_listener l; /* incoming: the dedicated listener */
    nng_dialer dl;  /* outgoing: the dialer of the dedicated address */
};

typedef enum dialer_state {
    DIALER_WAIT, /* backing off until deadline */
    DIALER_ASK,  /* rendezvous request in flight */
    DIALER_CONN, /* its conn is in handshake or up */
    DIALER_IDLE, /* the peer is up through another connection */
    DIALER_DEAD,
} dialer_state;

struct dialer {
    tn *n;
    dialer *next;      /* tn->dialers, then tn->dead_dialers */
    uint64_t want_id;  /* 0 = any */
    uint64_t bound_id; /* the id it reached last (want_id when set) */
    char *address;
    dialer_state state;
    nng_time deadline;
    unsigned backoff_ms;
    nng_socket req;
    bool req_open;
    nng_aio *aio;
    ev ev;
    bool aio_busy;
    bool answering; /* the aio receives the answer (else sends the request) */
    conn *c;
    nng_dialer req_dl; /* of the req0 socket (TLS failure counts) */
};

typedef enum addr_kind { ADDR_BAD, ADDR_TCP, ADDR_SUFFIX } addr_kind;

typedef struct rdv {
    bool open;
    nng_socket sock;
    nng_ctx ctx;
    nng_aio *aio;
    ev ev;
    bool busy, replying;
    addr_kind kind;
    char *base; /* tcp: "scheme://host:"; others: the public address */
    nng_listener l;
    ev gev; /* EV_GUEST: a pipe arrived (its deadline must be timed) */
    /* Under tn->mtx (pipe callbacks): the connections to the address. */
    guest *guests;
    unsigned nguests, gcap;
    uint64_t refused; /* pipes refused on arrival (over the hard ceiling) */
    bool trim;        /* pipes arrived since the caps were last enforced */
    /* Owner thread: TLS handshakes that failed there, already logged. */
    uint64_t tls_failed;
    nng_time tls_check;
} rdv;

struct tn {
    rlog_transport *t;
    bool inited, closing, in_poll, free_on_return;
    rlog_transport_config cfg; /* resolved; cfg.address points to cfg_address */
    char *cfg_address;
    char *address; /* local address: cfg's, with the bound port after listen */
    rlog_transport_events ev;
    nng_mtx *mtx;
    nng_cv *cv;
    /* Under mtx. */
    ev inbox; /* sentinel */
    ready *posts, *posts_tail;
    bool waiting, shut;
    /* Owner thread. */
    ready *ready_head, *ready_tail;
    conn *conns, *graveyard;
    dialer *dialers, *dead_dialers;
    rdv rdv;
    int ran;         /* user callbacks run by the current poll */
    uint64_t *known; /* cfg.known_ids, copied */
    rlg_tls *tls;    /* NULL: no TLS */
};

/* ------------------------------------------------------------------------
 * Errors and logging
 * ---------------------------------------------------------------------- */

static int tn_err(tn *n, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tn_err(tn *n, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->t->errmsg, sizeof n->t->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

static void tn_log(tn *n, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tn_log(tn *n, rlog_level level, const char *fmt, ...)
{
    if (n->cfg.logger == NULL) {
        return;
    }
    char buf[LOG_MAX];
    int k = snprintf(buf, sizeof buf, "transport %" PRIu64 ": ", n->cfg.server_id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
    va_end(ap);
    n->cfg.logger(n->cfg.logger_data, level, buf);
}

/* "server 3 at tcp://h:9003 (via tcp://h:40211)" for messages. */
static const char *conn_name(const conn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "server %" PRIu64 " at %s (via %s)", c->peer_id,
             c->peer_addr && c->peer_addr[0] ? c->peer_addr : "(no address)",
             c->where ? c->where : "?");
    return buf;
}

/* The remote end of a pipe as text, for messages about hostile input. */
static const char *pipe_name(nng_pipe p, char *buf, size_t cap)
{
    nng_sockaddr sa;
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        snprintf(buf, cap, "pipe %" PRIu32, (uint32_t)nng_pipe_id(p));
        return buf;
    }
    if (sa.s_family == NNG_AF_INET) {
        const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in.sa_port;
        snprintf(buf, cap, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
                 (unsigned)(pt[0] << 8 | pt[1]));
    } else if (sa.s_family == NNG_AF_INET6) {
        const uint8_t *a = sa.s_in6.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in6.sa_port;
        size_t k = 0;
        k += (size_t)snprintf(buf + k, cap - k, "[");
        for (int i = 0; i < 16 && k < cap; i += 2) {
            k += (size_t)snprintf(buf + k, cap - k, i ? ":%x" : "%x",
                                  (unsigned)(a[i] << 8 | a[i + 1]));
        }
        if (k < cap) {
            snprintf(buf + k, cap - k, "]:%u", (unsigned)(pt[0] << 8 | pt[1]));
        }
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(buf, cap, "ipc pipe %" PRIu32, (uint32_t)nng_pipe_id(p));
    } else {
        snprintf(buf, cap, "pipe %" PRIu32, (uint32_t)nng_pipe_id(p));
    }
    return buf;
}

/* ------------------------------------------------------------------------
 * Addresses
 * ---------------------------------------------------------------------- */

/* The longest ipc:// path a Unix socket address holds (sun_path, with its
 * terminating NUL: 107 bytes on Linux). */
#define IPC_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* True when url is an ipc:// address whose path a Unix socket cannot hold
 * (nng would only say "Address invalid"). */
static bool ipc_too_long(const char *url)
{
    return strncmp(url, "ipc://", 6) == 0 && strlen(url + 6) > IPC_PATH_MAX;
}

/* The error for such an address, naming the limit. */
static int ipc_too_long_err(tn *n, const char *what, const char *url)
{
    return tn_err(n, RLOG_EINVAL,
                  "%s: ipc path of %zu bytes is over the %zu-byte limit of a Unix socket path "
                  "(sun_path): use a shorter path or abstract://name (%s)",
                  what, strlen(url + 6), (size_t)IPC_PATH_MAX, url);
}

/* Classifies `url`; for tcp, *port_at is the offset of the port (after the
 * last ':'), which must be 1..5 digits <= 65535; *port its value. */
static addr_kind addr_parse(const char *url, size_t *port_at, unsigned *port)
{
    static const char *const tcp[] = {"tcp://",     "tcp4://",     "tcp6://",
                                      "tls+tcp://", "tls+tcp4://", "tls+tcp6://"};
    static const char *const suffix[] = {"ipc://", "inproc://", "abstract://"};
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffix[i]);
        if (strncmp(url, suffix[i], sl) == 0) {
            return url[sl] != '\0' ? ADDR_SUFFIX : ADDR_BAD;
        }
    }
    for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++) {
        size_t sl = strlen(tcp[i]);
        if (strncmp(url, tcp[i], sl) != 0) {
            continue;
        }
        const char *colon = strrchr(url + sl, ':');
        if (colon == NULL) {
            return ADDR_BAD;
        }
        size_t digits = strlen(colon + 1);
        if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") != digits) {
            return ADDR_BAD;
        }
        unsigned long v = strtoul(colon + 1, NULL, 10);
        if (v > 65535) {
            return ADDR_BAD;
        }
        *port_at = (size_t)(colon + 1 - url);
        *port = (unsigned)v;
        return ADDR_TCP;
    }
    return ADDR_BAD;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (s != NULL) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/*
 * The dedicated address a dialer dials, from the redirect it was given for
 * `dialled`: tcp — the host we dialled with the redirect's port; ipc,
 * inproc, abstract — the redirect itself, which must be `dialled` plus "."
 * and 1..16 hex digits. NULL with *why set when the redirect is not one.
 */
static char *redirect_target(const char *dialled, const char *redirect, const char **why)
{
    size_t at = 0, rat = 0;
    unsigned port = 0, rport = 0;
    addr_kind k = addr_parse(dialled, &at, &port);
    if (k == ADDR_TCP) {
        if (addr_parse(redirect, &rat, &rport) != ADDR_TCP || rport == 0) {
            *why = "redirect is not a tcp address with a port";
            return NULL;
        }
        char *s = str_printf("%.*s%u", (int)at, dialled, rport);
        *why = s ? NULL : "out of memory";
        return s;
    }
    size_t dl = strlen(dialled);
    const char *tail = redirect + dl;
    size_t tl = strlen(redirect) >= dl ? strlen(tail) : 0;
    if (strncmp(redirect, dialled, dl) != 0 || tl < 2 || tl > 17 || tail[0] != '.' ||
        strspn(tail + 1, "0123456789abcdef") != tl - 1) {
        *why = "redirect is not the dialled address plus a suffix";
        return NULL;
    }
    char *s = strdup(redirect);
    *why = s ? NULL : "out of memory";
    return s;
}

/* ------------------------------------------------------------------------
 * The inbox (nng threads -> owner) and the ready list (owner)
 * ---------------------------------------------------------------------- */

/*
 * Ends the operation in flight on aio (if any) and waits for its callback,
 * from the owner thread. Cancel-and-wait rather than nng_aio_stop: with
 * nng 1.5.2, nng_close after nng_aio_stop of a send waiting on a busy pipe
 * hangs (reproduced with nng alone), and a stopped aio refuses later
 * operations.
 */
static void aio_end(nng_aio *aio)
{
    nng_aio_cancel(aio);
    nng_aio_wait(aio);
}

static void ev_init(ev *e, tn *n, void *owner, ev_kind kind)
{
    e->prev = e->next = NULL;
    e->n = n;
    e->owner = owner;
    e->kind = kind;
    e->queued = false;
}

static void ev_queue_locked(ev *e)
{
    tn *n = e->n;
    if (e->queued) {
        return;
    }
    e->prev = n->inbox.prev;
    e->next = &n->inbox;
    n->inbox.prev->next = e;
    n->inbox.prev = e;
    e->queued = true;
    if (n->waiting) {
        nng_cv_wake1(n->cv);
    }
    if (n->cfg.wake != NULL) {
        n->cfg.wake(n->cfg.wake_data);
    }
}

static void ev_unlink_locked(ev *e)
{
    if (!e->queued) {
        return;
    }
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->queued = false;
}

/* nng aio callback (an nng thread): hand the completion to the owner. */
static void ev_aio_cb(void *arg)
{
    ev *e = arg;
    nng_mtx_lock(e->n->mtx);
    ev_queue_locked(e);
    nng_mtx_unlock(e->n->mtx);
}

static ev *inbox_pop(tn *n)
{
    nng_mtx_lock(n->mtx);
    ev *e = n->inbox.next;
    if (e == &n->inbox) {
        e = NULL;
    } else {
        ev_unlink_locked(e);
    }
    nng_mtx_unlock(n->mtx);
    return e;
}

static void ready_push(tn *n, ready *r)
{
    r->next = NULL;
    if (n->ready_tail != NULL) {
        n->ready_tail->next = r;
    } else {
        n->ready_head = r;
    }
    n->ready_tail = r;
}

/* Moves posted functions to the ready list. */
static void posts_take(tn *n)
{
    nng_mtx_lock(n->mtx);
    ready *p = n->posts;
    n->posts = n->posts_tail = NULL;
    nng_mtx_unlock(n->mtx);
    while (p != NULL) {
        ready *next = p->next;
        ready_push(n, p);
        p = next;
    }
}

/* Runs the ready callbacks in order (popping each before its call, so a
 * nested run from close() continues where this one stopped). */
static void ready_run(tn *n)
{
    ready *r;
    while ((r = n->ready_head) != NULL) {
        n->ready_head = r->next;
        if (n->ready_head == NULL) {
            n->ready_tail = NULL;
        }
        switch (r->kind) {
        case READY_SEND:
            if (r->cb != NULL) {
                n->ran++;
                r->cb(r->data, r->status);
            }
            break;
        case READY_DOWN:
            n->ran++;
            if (n->ev.peer_down != NULL) {
                n->ev.peer_down(n->ev.data, r->peer, r->status);
            }
            break;
        case READY_POST:
            n->ran++;
            r->fn(r->data);
            break;
        }
        free(r); /* a sendreq's ready node is its first member */
    }
}

static void sendreq_done(tn *n, sendreq *s, int status)
{
    if (s->msg != NULL) {
        nng_msg_free(s->msg);
        s->msg = NULL;
    }
    s->r.kind = READY_SEND;
    s->r.status = status;
    ready_push(n, &s->r);
}

/* ------------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------- */

/* Encodes msg into a new nng message (one copy of the encoding). */
static int msg_to_nng(const rlog_msg *msg, size_t max, nng_msg **out, size_t *len)
{
    void *buf = NULL;
    *out = NULL;
    int rc = rlog_msg_encode(msg, &buf, len);
    if (rc != 0) {
        return rc;
    }
    if (*len > max) {
        rlog_free(buf);
        return RLOG_ETOOBIG;
    }
    if (nng_msg_alloc(out, *len) != 0) {
        rlog_free(buf);
        return RLOG_ENOMEM;
    }
    memcpy(nng_msg_body(*out), buf, *len);
    rlog_free(buf);
    return 0;
}

static int hello_to_nng(tn *n, uint64_t flags, nng_msg **out)
{
    rlog_msg m;
    memset(&m, 0, sizeof m);
    m.type = RLOG_MSG_HELLO;
    m.u.hello.server_id = n->cfg.server_id;
    m.u.hello.address = n->address;
    m.u.hello.protocol_version = RLOG_WIRE_PROTOCOL;
    m.u.hello.role = n->cfg.role;
    m.u.hello.flags = flags;
    size_t len;
    return msg_to_nng(&m, RDV_MAX_BYTES, out, &len);
}

static uint64_t random64(void)
{
    uint64_t v = ((uint64_t)nng_random() << 32) | nng_random();
    return v != 0 ? v : 1;
}

static int nng_to_rlog(int rv)
{
    switch (rv) {
    case NNG_EADDRINUSE:
        return RLOG_EBUSY;
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EINVAL:
        return RLOG_EINVAL;
    case NNG_ENOMEM:
        return RLOG_ENOMEM;
    default:
        return RLOG_EIO;
    }
}

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */

static void dialer_backoff(dialer *d);

static conn *conn_up(tn *n, uint64_t id)
{
    for (conn *c = n->conns; c != NULL; c = c->next) {
        if (c->state == CONN_UP && c->peer_id == id) {
            return c;
        }
    }
    return NULL;
}

static void conn_pipe_cb(nng_pipe p, nng_pipe_ev what, void *arg)
{
    conn *c = arg;
    tn *n = c->n;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    bool reject = false;
    nng_mtx_lock(n->mtx);
    if (what == NNG_PIPE_EV_ADD_PRE) {
        reject = c->live_pipe != 0; /* incoming: one verified pipe only */
    } else if (what == NNG_PIPE_EV_REM_POST) {
        if (c->outgoing || id == c->live_pipe) {
            c->lost = true;
            ev_queue_locked(&c->pipe_ev);
        } else if (c->live_pipe == 0) {
            c->removed[c->nremoved++ % REMOVED_KEEP] = id;
        }
    }
    nng_mtx_unlock(n->mtx);
    if (reject) {
        nng_pipe_close(p);
    }
}

static void conn_free(conn *c)
{
    nng_aio_free(c->send_aio);
    nng_aio_free(c->recv_aio);
    free(c->down);
    free(c->where);
    free(c->peer_addr);
    free(c);
}

/* nng's socket buffers hold 1..8192 messages. */
static size_t buf_clamp(size_t v)
{
    return v < 1 ? 1 : v > NNG_BUF_MAX ? NNG_BUF_MAX : v;
}

/* A new conn with its pair1 socket (linked into tn->conns). */
static int conn_new(tn *n, bool outgoing, conn **out)
{
    conn *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL || (c->down = calloc(1, sizeof *c->down)) == NULL) {
        free(c);
        return RLOG_ENOMEM;
    }
    c->n = n;
    c->outgoing = outgoing;
    c->state = CONN_HANDSHAKE;
    ev_init(&c->send_ev, n, c, EV_SEND);
    ev_init(&c->recv_ev, n, c, EV_RECV);
    ev_init(&c->pipe_ev, n, c, EV_PIPE);
    int rv = nng_aio_alloc(&c->send_aio, ev_aio_cb, &c->send_ev);
    if (rv == 0) {
        rv = nng_aio_alloc(&c->recv_aio, ev_aio_cb, &c->recv_ev);
    }
    if (rv == 0) {
        rv = nng_pair1_open(&c->sock);
    }
    if (rv != 0) {
        conn_free(c);
        return nng_to_rlog(rv);
    }
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, n->cfg.max_message);
    /* nng must not redial a dedicated address by itself: a lost connection
     * starts over with a rendezvous (and a socket closed while nng 1.5.2
     * negotiates a tcp connection leaks). */
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, NO_REDIAL_MS);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, NO_REDIAL_MS);
    /* A receive buffer lets the owner thread take messages without a round
     * trip through nng's threads (conn_on_recv): at most queue_messages and
     * queue_bytes worth of max_message ones. No send buffer: nng 1.5.2
     * leaks the messages still in a pair1 send buffer when the socket
     * closes (reproduced with nng alone); conn_pump hands a message over
     * directly while the pipe is idle instead. */
    size_t rbuf = n->cfg.queue_bytes / n->cfg.max_message;
    rbuf = rbuf > n->cfg.queue_messages ? n->cfg.queue_messages : rbuf;
    nng_socket_set_int(c->sock, NNG_OPT_RECVBUF, (int)buf_clamp(rbuf));
    nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, conn_pipe_cb, c);
    if (!outgoing) {
        nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, conn_pipe_cb, c);
    }
    c->peer_addr = strdup("");
    if (c->peer_addr == NULL) {
        nng_close(c->sock);
        conn_free(c);
        return RLOG_ENOMEM;
    }
    c->next = n->conns;
    n->conns = c;
    *out = c;
    return 0;
}

static void conn_arm_recv(conn *c)
{
    c->receiving = true;
    nng_recv_aio(c->sock, c->recv_aio);
}

static void conn_enqueue(conn *c, sendreq *s)
{
    s->r.next = NULL;
    if (c->qtail != NULL) {
        c->qtail->r.next = &s->r;
    } else {
        c->qhead = s;
    }
    c->qtail = s;
    c->qn++;
    c->qbytes += s->bytes;
}

/* Takes the oldest send off c's queue; NULL when it is empty. */
static sendreq *conn_dequeue(conn *c)
{
    sendreq *s = c->qhead;
    if (s != NULL) {
        c->qhead = (sendreq *)s->r.next;
        if (c->qhead == NULL) {
            c->qtail = NULL;
        }
        c->qn--;
        c->qbytes -= s->bytes;
    }
    return s;
}

/*
 * Hands queued sends to nng, oldest first, unless one is in flight: each
 * goes straight to the pipe from this thread while nng takes it without
 * waiting (nng_sendmsg NONBLOCK; completion 0 at once); the first one nng
 * refuses (pipe busy, no pipe yet, any other answer) becomes the single
 * nng_send_aio in flight, whose completion (conn_on_sent) resumes the pump.
 */
static void conn_pump(conn *c)
{
    while (!c->sending && c->qhead != NULL && c->state != CONN_DEAD) {
        sendreq *s = conn_dequeue(c);
        if (nng_sendmsg(c->sock, s->msg, NNG_FLAG_NONBLOCK) == 0) {
            s->msg = NULL; /* nng's now */
            sendreq_done(c->n, s, 0);
            continue;
        }
        c->inflight = s;
        c->sending = true;
        nng_aio_set_msg(c->send_aio, s->msg);
        s->msg = NULL;
        nng_send_aio(c->sock, c->send_aio);
    }
}

/* Queues an internal message (a hello): no completion callback. */
static int conn_enqueue_internal(conn *c, nng_msg *m)
{
    sendreq *s = calloc(1, sizeof *s);
    if (s == NULL) {
        nng_msg_free(m);
        return RLOG_ENOMEM;
    }
    s->msg = m;
    s->bytes = nng_msg_len(m);
    conn_enqueue(c, s);
    conn_pump(c);
    return 0;
}

typedef enum after_kill {
    AFTER_REDIAL, /* its dialer backs off and redials */
    AFTER_IDLE,   /* its dialer waits: the peer is up through another conn */
} after_kill;

/*
 * Ends a connection: stops its aios, closes its socket, completes its sends
 * with send_status (the in-flight one with 0 when nng had taken it), queues
 * peer_down(reason) if it was up, and moves it to the graveyard.
 */
static void conn_kill(conn *c, int reason, int send_status, after_kill after)
{
    tn *n = c->n;
    if (c->state == CONN_DEAD) {
        return;
    }
    bool was_up = c->state == CONN_UP;
    c->state = CONN_DEAD;
    aio_end(c->send_aio);
    aio_end(c->recv_aio);
    nng_close(c->sock);
    nng_mtx_lock(n->mtx);
    ev_unlink_locked(&c->send_ev);
    ev_unlink_locked(&c->recv_ev);
    ev_unlink_locked(&c->pipe_ev);
    nng_mtx_unlock(n->mtx);
    if (c->receiving) {
        if (nng_aio_result(c->recv_aio) == 0) {
            nng_msg_free(nng_aio_get_msg(c->recv_aio));
        }
        nng_aio_set_msg(c->recv_aio, NULL);
        c->receiving = false;
    }
    if (c->sending) {
        int rv = nng_aio_result(c->send_aio);
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->send_aio));
        }
        nng_aio_set_msg(c->send_aio, NULL);
        c->sending = false;
        sendreq_done(n, c->inflight, rv == 0 ? 0 : send_status);
        c->inflight = NULL;
    }
    for (sendreq *s; (s = conn_dequeue(c)) != NULL;) {
        sendreq_done(n, s, send_status);
    }
    if (was_up) {
        char name[RLOG_WIRE_ADDRESS_MAX + 128];
        tn_log(n, RLOG_LEVEL_INFO, "%s down: %s", conn_name(c, name, sizeof name),
               rlog_strerror(reason));
        c->down->kind = READY_DOWN;
        c->down->peer = c->peer_id;
        c->down->status = reason;
        ready_push(n, c->down);
        c->down = NULL;
    }
    for (conn **pp = &n->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->next = n->graveyard;
    n->graveyard = c;
    dialer *d = c->d;
    if (d != NULL) {
        c->d = NULL;
        d->c = NULL;
        if (d->state == DIALER_CONN && !n->closing) {
            if (after == AFTER_IDLE) {
                d->state = DIALER_IDLE;
            } else {
                dialer_backoff(d);
            }
        }
    }
}

/* Dialers aiming at c's peer stop: it is up through c. */
static void dialers_settle(tn *n, const conn *c);
static bool takeover_refused(tn *n, const conn *cur, const conn *cand);
static int dial_start(tn *n, nng_socket sock, const char *url, uint64_t expect_id, nng_dialer *out);
static void tls_explain_dialer(tn *n, const dialer *d);
static void tls_explain(tn *n, const conn *c, nng_stat **snap);

/*
 * One connection per peer (rlg_transport_newer_wins): c has just completed
 * its hellos. Returns false when c must give way to a connection that is
 * already there; otherwise kills the up connection c replaces and returns
 * true. Rivals: the peer's up connection, and — for an incoming c — our own
 * outgoing connection to the peer in handshake (a crossing). A handshake
 * rival that c beats is left to finish: it loses when it completes (or the
 * peer closes it), and is not closed while nng may still be negotiating
 * its tcp connection (nng 1.5.2 leaks a socket closed at that moment).
 */
static bool conn_arbitrate(conn *c)
{
    tn *n = c->n;
    char a[RLOG_WIRE_ADDRESS_MAX + 128], b[RLOG_WIRE_ADDRESS_MAX + 128];
    for (int pass = 0; pass < 2; pass++) {
        conn *next;
        for (conn *r = n->conns; r != NULL; r = next) {
            next = r->next;
            if (r == c || r->peer_id != c->peer_id || r->state == CONN_DEAD) {
                continue;
            }
            if (r->state == CONN_HANDSHAKE && !(r->outgoing && !c->outgoing)) {
                continue;
            }
            bool wins =
                rlg_transport_newer_wins(n->cfg.server_id, c->peer_id, r->outgoing, c->outgoing);
            if (pass == 0 && wins && takeover_refused(n, r, c)) {
                return false;
            }
            if (pass == 0 && !wins) {
                tn_log(n, RLOG_LEVEL_INFO, "%s: keeping the connection via %s, closing the new one",
                       conn_name(c, a, sizeof a), r->where);
                return false;
            }
            if (pass == 1 && r->state == CONN_UP) {
                tn_log(n, RLOG_LEVEL_INFO, "%s replaces %s", conn_name(c, a, sizeof a),
                       conn_name(r, b, sizeof b));
                conn_kill(r, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_IDLE);
            }
        }
    }
    dialers_settle(n, c);
    return true;
}

static void emit_up(tn *n, conn *c, const rlog_msg_hello *h)
{
    ready_run(n);
    if (n->closing || c->state != CONN_UP) {
        return;
    }
    c->up_at = nng_clock();
    rlog_msg_hello copy = *h;
    copy.flags = 0;
    n->ran++;
    if (n->ev.peer_up != NULL) {
        n->ev.peer_up(n->ev.data, c->peer_id, &copy);
    }
    ready_run(n);
}

static int conn_set_peer(conn *c, const rlog_msg_hello *h)
{
    char *a = strdup(h->address);
    if (a == NULL) {
        return RLOG_ENOMEM;
    }
    free(c->peer_addr);
    c->peer_addr = a;
    return 0;
}

/* Incoming, in handshake: the first message on the dedicated socket must be
 * the dialer's hello with the token. A refused one closes only that pipe. */
static void conn_hello_incoming(conn *c, nng_msg *m, int rc, const rlog_msg *msg, const char *err)
{
    tn *n = c->n;
    nng_pipe pipe = nng_msg_get_pipe(m);
    uint32_t pid = (uint32_t)nng_pipe_id(pipe);
    char why[320], who[96], name[RLOG_WIRE_ADDRESS_MAX + 128];
    why[0] = '\0';
    if (!rlg_transport_hello_refused(n->cfg.server_id, rc, msg, err, why, sizeof why)) {
        if (msg->u.hello.flags != c->token) {
            snprintf(why, sizeof why, "wrong rendezvous token");
        } else if (msg->u.hello.server_id != c->peer_id) {
            snprintf(why, sizeof why, "hello announces server %" PRIu64 ", the rendezvous %" PRIu64,
                     msg->u.hello.server_id, c->peer_id);
        }
    }
    if (why[0] != '\0') {
        c->bad++;
        tn_log(n, RLOG_LEVEL_WARN,
               "dedicated connection %s for server %" PRIu64
               ": refused a first message (%zu bytes) from %s: %s",
               c->where, c->peer_id, nng_msg_len(m), pipe_name(pipe, who, sizeof who), why);
        nng_pipe_close(pipe);
        if (c->bad >= BAD_HELLOS_MAX) {
            conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
        }
        return;
    }
    bool gone = false;
    nng_mtx_lock(n->mtx);
    for (unsigned i = 0; i < REMOVED_KEEP; i++) {
        gone = gone || c->removed[i] == pid;
    }
    if (!gone) {
        c->live_pipe = pid;
    }
    nng_mtx_unlock(n->mtx);
    if (gone) {
        return; /* its pipe already closed: wait for another (or the deadline) */
    }
    nng_msg *hello = NULL;
    if (conn_set_peer(c, &msg->u.hello) != 0 || hello_to_nng(n, 0, &hello) != 0) {
        tn_log(n, RLOG_LEVEL_ERROR, "%s: out of memory in the handshake",
               conn_name(c, name, sizeof name));
        conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    if (!conn_arbitrate(c)) {
        nng_msg_free(hello);
        conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        return;
    }
    if (conn_enqueue_internal(c, hello) != 0) {
        conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    c->state = CONN_UP;
    tn_log(n, RLOG_LEVEL_INFO, "%s up (%s, dialled us)", conn_name(c, name, sizeof name),
           rlog_msg_role_name(msg->u.hello.role));
    emit_up(n, c, &msg->u.hello);
}

/* Outgoing, in handshake: the listener answers our hello with its own. */
static void conn_hello_outgoing(conn *c, int rc, const rlog_msg *msg, const char *err)
{
    tn *n = c->n;
    dialer *d = c->d;
    char why[320], name[RLOG_WIRE_ADDRESS_MAX + 128];
    why[0] = '\0';
    if (!rlg_transport_hello_refused(n->cfg.server_id, rc, msg, err, why, sizeof why) &&
        d->want_id != 0 && msg->u.hello.server_id != d->want_id) {
        snprintf(why, sizeof why, "expected server %" PRIu64 ", found server %" PRIu64, d->want_id,
                 msg->u.hello.server_id);
    }
    if (why[0] != '\0') {
        tn_log(n, RLOG_LEVEL_WARN, "connection to %s via %s refused: %s", d->address, c->where,
               why);
        conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
        return;
    }
    c->peer_id = msg->u.hello.server_id;
    d->bound_id = c->peer_id;
    if (conn_set_peer(c, &msg->u.hello) != 0) {
        conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    if (!conn_arbitrate(c)) {
        conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_IDLE);
        return;
    }
    c->state = CONN_UP;
    d->backoff_ms = n->cfg.backoff_min_ms;
    tn_log(n, RLOG_LEVEL_INFO, "%s up (%s, we dialled %s)", conn_name(c, name, sizeof name),
           rlog_msg_role_name(msg->u.hello.role), d->address);
    emit_up(n, c, &msg->u.hello);
}

/* One message received on c: the handshake, or a message for the user;
 * anything that does not decode resets the connection. Frees m. */
static void conn_take(conn *c, nng_msg *m)
{
    tn *n = c->n;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    rlog_msg msg;
    char err[256];
    int rc =
        rlog_msg_decode(nng_msg_body(m), nng_msg_len(m), n->cfg.max_message, &msg, err, sizeof err);
    if (c->state == CONN_HANDSHAKE) {
        if (c->outgoing) {
            conn_hello_outgoing(c, rc, &msg, err);
        } else {
            conn_hello_incoming(c, m, rc, &msg, err);
        }
    } else if (!c->outgoing && (uint32_t)nng_pipe_id(nng_msg_get_pipe(m)) != c->live_pipe) {
        /* Not from the verified pipe (cannot happen: others are refused). */
    } else if (rc != 0) {
        tn_log(n, RLOG_LEVEL_WARN,
               "%s sent a message that does not decode (%zu bytes): %s; resetting the connection",
               conn_name(c, name, sizeof name), nng_msg_len(m), err);
        conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
    } else if (msg.type == RLOG_MSG_HELLO || msg.type == RLOG_MSG_REDIRECT) {
        tn_log(n, RLOG_LEVEL_WARN, "%s sent a %s after the handshake; resetting the connection",
               conn_name(c, name, sizeof name), rlog_msg_type_name(msg.type));
        conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
    } else {
        ready_run(n);
        if (!n->closing && c->state == CONN_UP) {
            n->ran++;
            if (n->ev.recv != NULL) {
                n->ev.recv(n->ev.data, c->peer_id, &msg);
            }
        }
    }
    if (rc == 0) {
        rlog_msg_free(&msg);
    }
    nng_msg_free(m);
}

/* A receive completed: take its message and those already buffered in the
 * socket (up to RECV_BATCH, from this thread), then receive again. */
static void conn_on_recv(conn *c)
{
    tn *n = c->n;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    c->receiving = false;
    int rv = nng_aio_result(c->recv_aio);
    if (rv != 0) {
        tn_log(n, RLOG_LEVEL_DEBUG, "%s: receive failed: %s", conn_name(c, name, sizeof name),
               nng_strerror(rv));
        conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->recv_aio);
    nng_aio_set_msg(c->recv_aio, NULL);
    conn_take(c, m);
    for (int i = 0; i < RECV_BATCH && c->state != CONN_DEAD && !n->closing; i++) {
        if (nng_recvmsg(c->sock, &m, NNG_FLAG_NONBLOCK) != 0) {
            break;
        }
        conn_take(c, m);
    }
    if (c->state != CONN_DEAD && !n->closing) {
        conn_arm_recv(c);
    }
}

static void conn_on_sent(conn *c)
{
    tn *n = c->n;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    sendreq *s = c->inflight;
    c->inflight = NULL;
    c->sending = false;
    int rv = nng_aio_result(c->send_aio);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(c->send_aio));
        nng_aio_set_msg(c->send_aio, NULL);
        tn_log(n, RLOG_LEVEL_DEBUG, "%s: send failed: %s", conn_name(c, name, sizeof name),
               nng_strerror(rv));
        sendreq_done(n, s, RLOG_ENOCONN);
        conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        return;
    }
    nng_aio_set_msg(c->send_aio, NULL);
    sendreq_done(n, s, 0);
    conn_pump(c);
}

static void conn_on_pipe(conn *c)
{
    tn *n = c->n;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    nng_mtx_lock(n->mtx);
    bool lost = c->lost;
    nng_mtx_unlock(n->mtx);
    if (lost) {
        tn_log(n, c->state == CONN_UP ? RLOG_LEVEL_INFO : RLOG_LEVEL_DEBUG, "%s: connection lost%s",
               conn_name(c, name, sizeof name), c->state == CONN_UP ? "" : " during the handshake");
        conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
    }
}

/* Incoming: a dedicated socket listening for the dialer of server `peer`. */
static int conn_open_incoming(tn *n, uint64_t peer, conn **out)
{
    conn *c;
    int rc = conn_new(n, false, &c);
    *out = NULL;
    if (rc != 0) {
        return rc;
    }
    c->peer_id = peer;
    c->token = random64();
    int rv = NNG_EADDRINUSE;
    for (int i = 0; i < SUFFIX_TRIES && rv == NNG_EADDRINUSE; i++) {
        free(c->where);
        c->where = n->rdv.kind == ADDR_TCP ? str_printf("%s0", n->rdv.base)
                                           : str_printf("%s.%08" PRIx32, n->rdv.base, nng_random());
        if (c->where == NULL) {
            conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
            return RLOG_ENOMEM;
        }
        nng_listener l;
        rv = nng_listener_create(&l, c->sock, c->where);
        if (rv == 0 && n->tls != NULL) {
            rv = rlg_tls_listener(n->tls, l, peer);
        }
        if (rv == 0) {
            rv = nng_listener_start(l, 0);
            c->l = l;
        }
        int port = 0;
        if (rv == 0 && n->rdv.kind == ADDR_TCP) {
            rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
            free(c->where);
            c->where = rv == 0 ? str_printf("%s%d", n->rdv.base, port) : NULL;
            rv = rv == 0 && c->where == NULL ? NNG_ENOMEM : rv;
        }
    }
    if (rv != 0) {
        tn_log(n, RLOG_LEVEL_WARN, "cannot listen at %s for server %" PRIu64 ": %s",
               c->where ? c->where : n->rdv.base, peer, nng_strerror(rv));
        conn_kill(c, RLOG_EIO, RLOG_EIO, AFTER_REDIAL);
        return nng_to_rlog(rv);
    }
    c->deadline = nng_clock() + n->cfg.handshake_ms;
    conn_arm_recv(c);
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------
 * Dialers
 * ---------------------------------------------------------------------- */

static bool dialer_aims_at(const dialer *d, uint64_t id)
{
    return d->want_id != 0 ? d->want_id == id : d->bound_id == id;
}

static void dialer_close_req(dialer *d)
{
    tn *n = d->n;
    if (!d->req_open) {
        return;
    }
    aio_end(d->aio);
    nng_close(d->req);
    d->req_open = false;
    nng_mtx_lock(n->mtx);
    ev_unlink_locked(&d->ev);
    nng_mtx_unlock(n->mtx);
    if (d->aio_busy) {
        int rv = nng_aio_result(d->aio);
        nng_msg *m = nng_aio_get_msg(d->aio);
        if (m != NULL && (d->answering ? rv == 0 : rv != 0)) {
            nng_msg_free(m);
        }
        nng_aio_set_msg(d->aio, NULL);
        d->aio_busy = false;
    }
}

/* Waits, then asks again: a jittered backoff that doubles up to the max. */
static void dialer_backoff(dialer *d)
{
    tn *n = d->n;
    unsigned wait = rlg_transport_backoff_jitter(d->backoff_ms, nng_random());
    d->backoff_ms =
        rlg_transport_backoff_next(d->backoff_ms, n->cfg.backoff_min_ms, n->cfg.backoff_max_ms);
    d->state = DIALER_WAIT;
    d->deadline = nng_clock() + wait;
}

static void dialer_fail(dialer *d, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dialer_fail(dialer *d, rlog_level level, const char *fmt, ...)
{
    char buf[LOG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tn_log(d->n, level, "dialling %s: %s; retrying in about %u ms", d->address, buf, d->backoff_ms);
    dialer_close_req(d);
    dialer_backoff(d);
}

/* Starts a rendezvous: our hello to the public address on a fresh req0. */
static void dialer_ask(dialer *d)
{
    tn *n = d->n;
    int rv = d->aio == NULL ? nng_aio_alloc(&d->aio, ev_aio_cb, &d->ev) : 0;
    if (rv == 0) {
        rv = nng_req0_open(&d->req);
    }
    if (rv != 0) {
        dialer_fail(d, RLOG_LEVEL_WARN, "cannot open a req0 socket: %s", nng_strerror(rv));
        return;
    }
    d->req_open = true;
    d->state = DIALER_ASK;
    nng_socket_set_size(d->req, NNG_OPT_RECVMAXSZ, RDV_MAX_BYTES);
    nng_socket_set_ms(d->req, NNG_OPT_REQ_RESENDTIME, REQ_RESEND_MS);
    nng_socket_set_ms(d->req, NNG_OPT_RECONNMINT, (nng_duration)n->cfg.backoff_min_ms);
    nng_socket_set_ms(d->req, NNG_OPT_RECONNMAXT, (nng_duration)n->cfg.backoff_max_ms);
    rv = dial_start(n, d->req, d->address, d->want_id, &d->req_dl);
    if (rv != 0) {
        dialer_fail(d, RLOG_LEVEL_WARN, "cannot dial: %s", nng_strerror(rv));
        return;
    }
    nng_msg *m = NULL;
    if (hello_to_nng(n, 0, &m) != 0) {
        dialer_fail(d, RLOG_LEVEL_ERROR, "out of memory");
        return;
    }
    d->answering = false;
    d->aio_busy = true;
    nng_aio_set_msg(d->aio, m);
    nng_aio_set_timeout(d->aio, n->cfg.handshake_ms);
    nng_send_aio(d->req, d->aio);
}

/* The dedicated connection: dial it and present the token in our hello. */
static void dialer_connect(dialer *d, char *where, uint64_t token)
{
    tn *n = d->n;
    conn *c;
    if (conn_new(n, true, &c) != 0) {
        free(where);
        dialer_fail(d, RLOG_LEVEL_ERROR, "out of memory");
        return;
    }
    c->where = where;
    c->peer_id = d->want_id;
    c->d = d;
    d->c = c;
    d->state = DIALER_CONN;
    c->deadline = nng_clock() + n->cfg.handshake_ms;
    int rv = dial_start(n, c->sock, where, d->want_id, &c->dl);
    nng_msg *m = NULL;
    if (rv != 0) {
        tn_log(n, RLOG_LEVEL_WARN, "dialling %s: cannot dial %s: %s", d->address, where,
               nng_strerror(rv));
        conn_kill(c, RLOG_EIO, RLOG_EIO, AFTER_REDIAL);
        return;
    }
    if (hello_to_nng(n, token, &m) != 0 || conn_enqueue_internal(c, m) != 0) {
        conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    conn_arm_recv(c);
}

/* The rendezvous answer: a redirect to a dedicated address. */
static void dialer_answer(dialer *d, nng_msg *m)
{
    rlog_msg msg;
    char err[256];
    const char *why = NULL;
    char *where = NULL;
    uint64_t token = 0;
    int rc = rlog_msg_decode(nng_msg_body(m), nng_msg_len(m), RDV_MAX_BYTES, &msg, err, sizeof err);
    if (rc != 0) {
        why = err;
    } else if (msg.type != RLOG_MSG_REDIRECT) {
        why = "the answer is not a redirect";
    } else {
        where = redirect_target(d->address, msg.u.redirect.address, &why);
        token = msg.u.redirect.token;
    }
    if (rc == 0) {
        rlog_msg_free(&msg);
    }
    nng_msg_free(m);
    if (where == NULL) {
        dialer_fail(d, RLOG_LEVEL_WARN, "bad rendezvous answer: %s", why);
        return;
    }
    dialer_close_req(d);
    if (d->bound_id != 0 && conn_up(d->n, d->bound_id) != NULL) {
        free(where); /* the peer came up through another connection */
        d->state = DIALER_IDLE;
        return;
    }
    dialer_connect(d, where, token);
}

static void dialer_on_aio(dialer *d)
{
    d->aio_busy = false;
    int rv = nng_aio_result(d->aio);
    nng_msg *m = nng_aio_get_msg(d->aio);
    nng_aio_set_msg(d->aio, NULL);
    if (rv != 0) {
        tls_explain_dialer(d->n, d);
    }
    if (!d->answering) {
        if (rv != 0) {
            nng_msg_free(m);
            dialer_fail(d, RLOG_LEVEL_DEBUG, "rendezvous request not sent: %s", nng_strerror(rv));
            return;
        }
        d->answering = true;
        d->aio_busy = true;
        nng_aio_set_timeout(d->aio, d->n->cfg.handshake_ms);
        nng_recv_aio(d->req, d->aio);
        return;
    }
    if (rv != 0) {
        dialer_fail(d, RLOG_LEVEL_DEBUG, "no rendezvous answer: %s", nng_strerror(rv));
        return;
    }
    dialer_answer(d, m);
}

static void dialers_settle(tn *n, const conn *c)
{
    for (dialer *d = n->dialers; d != NULL; d = d->next) {
        if (d->c == c || !dialer_aims_at(d, c->peer_id)) {
            continue;
        }
        if (d->state == DIALER_WAIT) {
            d->state = DIALER_IDLE; /* one asking finishes (dialer_answer) */
        }
    }
}

/* Stops a dialer for good (its conn dies too); freed at the top level. */
static void dialer_stop(dialer *d, int reason, int send_status)
{
    tn *n = d->n;
    if (d->state == DIALER_DEAD) {
        return;
    }
    dialer_close_req(d);
    if (d->c != NULL) {
        conn *c = d->c;
        d->c = NULL;
        c->d = NULL;
        conn_kill(c, reason, send_status, AFTER_REDIAL);
    }
    d->state = DIALER_DEAD;
    for (dialer **pp = &n->dialers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    d->next = n->dead_dialers;
    n->dead_dialers = d;
}

static void dialer_free(dialer *d)
{
    if (d->aio != NULL) {
        nng_aio_free(d->aio);
    }
    free(d->address);
    free(d);
}

/* ------------------------------------------------------------------------
 * Limits against strangers (docs/security.md): the handshake deadline and
 * caps of the public address, caps on dedicated connections with a reserve
 * for known peers, take-overs, and what failed TLS handshakes say
 * ---------------------------------------------------------------------- */

static void host_of(nng_pipe p, host *h)
{
    nng_sockaddr sa;
    memset(h, 0, sizeof *h);
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        return;
    }
    if (sa.s_family == NNG_AF_INET) {
        h->family = NNG_AF_INET;
        memcpy(h->a, &sa.s_in.sa_addr, 4);
    } else if (sa.s_family == NNG_AF_INET6) {
        h->family = NNG_AF_INET6;
        memcpy(h->a, sa.s_in6.sa_addr, 16);
    }
}

static bool host_eq(const host *a, const host *b)
{
    return a->family == b->family && memcmp(a->a, b->a, sizeof a->a) == 0;
}

static const char *host_name(const host *h, char *buf, size_t cap)
{
    if (h->family == NNG_AF_INET) {
        snprintf(buf, cap, "%u.%u.%u.%u", h->a[0], h->a[1], h->a[2], h->a[3]);
    } else if (h->family == NNG_AF_INET6) {
        size_t k = 0;
        for (int i = 0; i < 16 && k < cap; i += 2) {
            k += (size_t)snprintf(buf + k, cap - k, i ? ":%x" : "%x",
                                  (unsigned)(h->a[i] << 8 | h->a[i + 1]));
        }
    } else {
        snprintf(buf, cap, "local");
    }
    return buf;
}

/* Is `id` a known peer: one we connect()ed or one listed in known_ids? */
static bool peer_known(const tn *n, uint64_t id)
{
    for (const dialer *d = n->dialers; d != NULL; d = d->next) {
        if (d->want_id == id) {
            return true;
        }
    }
    return rlg_transport_id_known(&n->cfg, id);
}

/*
 * Pipe callback of the public address (an nng thread). A pipe is refused
 * on arrival only above a hard ceiling (max_conns + reserve_conns, per
 * host max_conns_per_host + reserve_conns); below it, it is admitted and
 * the owner thread closes the oldest silent ones to get back under the
 * caps (guests_run). So a newcomer always gets a chance to speak.
 */
static void rdv_pipe_cb(nng_pipe p, nng_pipe_ev what, void *arg)
{
    tn *n = arg;
    rdv *r = &n->rdv;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    bool reject = false;
    host h;
    if (what == NNG_PIPE_EV_ADD_PRE) {
        host_of(p, &h);
    }
    nng_mtx_lock(n->mtx);
    if (what == NNG_PIPE_EV_ADD_PRE) {
        unsigned same = 0;
        for (unsigned i = 0; i < r->nguests; i++) {
            same += host_eq(&r->guests[i].h, &h);
        }
        reject = r->nguests >= r->gcap || same >= n->cfg.max_conns_per_host + n->cfg.reserve_conns;
        if (reject) {
            r->refused++;
        } else {
            guest *g = &r->guests[r->nguests++];
            g->pipe = p;
            g->h = h;
            g->since = nng_clock();
            g->spoke = false;
            r->trim = true;
        }
        ev_queue_locked(&r->gev);
    } else if (what == NNG_PIPE_EV_REM_POST) {
        for (unsigned i = 0; i < r->nguests; i++) {
            if ((uint32_t)nng_pipe_id(r->guests[i].pipe) == id) {
                r->guests[i] = r->guests[--r->nguests];
                break;
            }
        }
    }
    nng_mtx_unlock(n->mtx);
    if (reject) {
        nng_pipe_close(p);
    }
}

/* Under mtx: the oldest guest that has not spoken (from host h when h is
 * non-NULL); -1 when there is none. */
static int guest_oldest_silent_locked(const rdv *r, const host *h)
{
    int best = -1;
    for (unsigned i = 0; i < r->nguests; i++) {
        const guest *g = &r->guests[i];
        if (!g->spoke && (h == NULL || host_eq(&g->h, h)) &&
            (best < 0 || g->since < r->guests[best].since)) {
            best = (int)i;
        }
    }
    return best;
}

/* Under mtx: a guest whose host has more than max_conns_per_host guests
 * (its oldest silent one), or -1. */
static int guest_over_host_cap_locked(const tn *n, const rdv *r)
{
    for (unsigned i = 0; i < r->nguests; i++) {
        unsigned same = 0;
        for (unsigned k = 0; k < r->nguests; k++) {
            same += host_eq(&r->guests[k].h, &r->guests[i].h);
        }
        if (same > n->cfg.max_conns_per_host) {
            int g = guest_oldest_silent_locked(r, &r->guests[i].h);
            if (g >= 0) {
                return g;
            }
        }
    }
    return -1;
}

/* Closes the public address's connections that are past their deadline
 * or over a cap (oldest silent first); returns the next deadline. */
static nng_time guests_run(tn *n, nng_time now)
{
    rdv *r = &n->rdv;
    nng_time next = TIME_NEVER;
    unsigned expired = 0, evicted = 0;
    uint64_t refused = 0;
    bool more = true;
    while (more) {
        nng_pipe batch[CLOSE_BATCH];
        unsigned k = 0;
        nng_mtx_lock(n->mtx);
        for (unsigned i = 0; i < r->nguests && k < CLOSE_BATCH;) {
            if (r->guests[i].since + n->cfg.handshake_ms <= now) {
                batch[k++] = r->guests[i].pipe;
                r->guests[i] = r->guests[--r->nguests];
                expired++;
            } else {
                i++;
            }
        }
        while (r->trim && k < CLOSE_BATCH) {
            int g = r->nguests > n->cfg.max_conns ? guest_oldest_silent_locked(r, NULL)
                                                  : guest_over_host_cap_locked(n, r);
            if (g < 0) {
                r->trim = false; /* within the caps (a new pipe sets it again) */
                break;
            }
            batch[k++] = r->guests[g].pipe;
            r->guests[g] = r->guests[--r->nguests];
            evicted++;
        }
        more = k == CLOSE_BATCH;
        for (unsigned i = 0; !more && i < r->nguests; i++) {
            nng_time due = r->guests[i].since + n->cfg.handshake_ms;
            next = due < next ? due : next;
        }
        refused += r->refused;
        r->refused = 0;
        nng_mtx_unlock(n->mtx);
        for (unsigned i = 0; i < k; i++) {
            nng_pipe_close(batch[i]);
        }
    }
    if (expired + evicted + refused > 0) {
        tn_log(n, RLOG_LEVEL_INFO,
               "rendezvous at %s: closed %u connection(s) silent past the %u ms handshake "
               "deadline, %u silent one(s) to stay within max_conns %u / max_conns_per_host %u, "
               "refused %" PRIu64 " on arrival",
               n->address, expired, n->cfg.handshake_ms, evicted, n->cfg.max_conns,
               n->cfg.max_conns_per_host, refused);
    }
    return next;
}

/* The guest of pipe p, under mtx; NULL when it is gone. */
static guest *guest_find_locked(rdv *r, nng_pipe p)
{
    for (unsigned i = 0; i < r->nguests; i++) {
        if (nng_pipe_id(r->guests[i].pipe) == nng_pipe_id(p)) {
            return &r->guests[i];
        }
    }
    return NULL;
}

/* A request arrived on pipe p. false when p is no longer admitted (closed
 * as silent or over a cap) or was already answered (one redirect per
 * connection; a refused request may be repeated until the deadline);
 * else *h is its host. With `answered`, records that it got its redirect
 * (it no longer counts as silent). */
static bool guest_request(tn *n, nng_pipe p, host *h, bool answered)
{
    nng_mtx_lock(n->mtx);
    guest *g = guest_find_locked(&n->rdv, p);
    bool ok = g != NULL && !g->spoke;
    if (ok) {
        *h = g->h;
        g->spoke = answered;
    }
    nng_mtx_unlock(n->mtx);
    return ok;
}

/*
 * Whether server `peer` from host h may have a dedicated connection: at
 * most max_conns incoming ones (max_conns + reserve_conns for a known
 * peer), max_conns_per_host from one host (known peers exempt), and
 * HS_PER_PEER in handshake per peer (a newer rendezvous replaces the
 * oldest). A peer that is up may always redial: its new connection
 * replaces the old. Returns NULL, or why not (in why).
 */
static const char *conns_admit(tn *n, uint64_t peer, const host *h, char *why, size_t cap)
{
    unsigned total = 0, same = 0, hs = 0;
    bool up = false;
    conn *oldest = NULL;
    for (conn *c = n->conns; c != NULL; c = c->next) {
        up = up || (c->peer_id == peer && c->state == CONN_UP);
        if (c->outgoing || c->state == CONN_DEAD) {
            continue;
        }
        if (c->peer_id == peer && c->state == CONN_HANDSHAKE) {
            hs++;
            oldest = oldest == NULL || c->deadline < oldest->deadline ? c : oldest;
        }
        total++;
        same += host_eq(&c->h, h);
    }
    if (hs >= HS_PER_PEER) {
        char name[RLOG_WIRE_ADDRESS_MAX + 128];
        tn_log(n, RLOG_LEVEL_INFO, "%s: a newer rendezvous replaces this handshake",
               conn_name(oldest, name, sizeof name));
        total--;
        same -= host_eq(&oldest->h, h);
        nng_stat *snap = NULL;
        tls_explain(n, oldest, &snap);
        if (snap != NULL) {
            nng_stats_free(snap);
        }
        conn_kill(oldest, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
    }
    bool known = peer_known(n, peer);
    unsigned limit = n->cfg.max_conns + (known ? n->cfg.reserve_conns : 0);
    char hn[64];
    if (!up && total >= limit) {
        snprintf(why, cap, "%u incoming connections, the limit for %s peer is %u", total,
                 known ? "a known" : "an unknown", limit);
        return why;
    }
    if (!up && !known && same >= n->cfg.max_conns_per_host) {
        snprintf(why, cap, "%u incoming connections from host %s (max_conns_per_host %u)", same,
                 host_name(h, hn, sizeof hn), n->cfg.max_conns_per_host);
        return why;
    }
    return NULL;
}

/*
 * "Newer wins" lets a peer that dialled us replace its own older
 * connection. A replacement from ANOTHER host while the current connection
 * is younger than handshake_ms is refused (an impostor and the real peer
 * would otherwise take the id from each other in a loop); every replacement
 * from another host is logged. Without TLS a server id is only a claim.
 */
static bool takeover_refused(tn *n, const conn *cur, const conn *cand)
{
    if (cur->outgoing || cand->outgoing || cur->state != CONN_UP || host_eq(&cur->h, &cand->h)) {
        return false;
    }
    char a[64], b[64];
    nng_time age = nng_clock() - cur->up_at;
    bool refuse = age < n->cfg.handshake_ms;
    tn_log(n, RLOG_LEVEL_WARN,
           "server %" PRIu64 ": a connection from host %s %s the one from host %s (up %" PRIu64
           " ms)%s",
           cur->peer_id, host_name(&cand->h, b, sizeof b), refuse ? "may not replace" : "replaces",
           host_name(&cur->h, a, sizeof a), (uint64_t)age,
           n->tls ? "" : "; without TLS a server id is only a claim");
    return refuse;
}

/* Dials url on sock without blocking; with TLS, the server's certificate
 * must be named after expect_id (any name when 0). */
static int dial_start(tn *n, nng_socket sock, const char *url, uint64_t expect_id, nng_dialer *out)
{
    int rv = nng_dialer_create(out, sock, url);
    if (rv == 0 && n->tls != NULL) {
        rv = rlg_tls_dialer(n->tls, *out, expect_id);
    }
    if (rv == 0) {
        rv = nng_dialer_start(*out, NNG_FLAG_NONBLOCK);
    }
    return rv;
}

/* Whether url's scheme fits the configuration: tls+tcp:// exactly when
 * TLS is on. Else RLOG_EINVAL with a message. */
static int tls_url_check(tn *n, const char *what, const char *url)
{
    bool tls_url = rlg_tls_url(url);
    if (tls_url == (n->tls != NULL)) {
        return 0;
    }
    return tn_err(n, RLOG_EINVAL, "%s %s: %s", what, url,
                  tls_url ? "tls+tcp:// needs tls_cert_file, tls_key_file and tls_ca_file"
                          : "TLS is configured: use a tls+tcp:// address");
}

/* A connection in handshake reached its deadline: with TLS, say whether
 * TLS handshakes failed on it (nng tells no one else). */
static void tls_explain(tn *n, const conn *c, nng_stat **snap)
{
    if (n->tls == NULL || (*snap == NULL && nng_stats_get(snap) != 0)) {
        return;
    }
    uint64_t k =
        c->outgoing ? rlg_tls_failures(*snap, NULL, &c->dl) : rlg_tls_failures(*snap, &c->l, NULL);
    if (k == 0) {
        return;
    }
    if (c->outgoing) {
        tn_log(n, RLOG_LEVEL_WARN,
               "connection to %s (server %" PRIu64 "): %" PRIu64
               " TLS handshake(s) failed: it refused our certificate, or its certificate is "
               "not from our CA%s",
               c->where, c->peer_id, k, c->peer_id ? " or not named rlog-<its id>" : "");
    } else {
        tn_log(n, RLOG_LEVEL_WARN,
               "refused server %" PRIu64 " at %s: %" PRIu64
               " TLS handshake(s) failed: its certificate is not named rlog-%" PRIu64
               " or not from our CA (a peer claiming another's id?)",
               c->peer_id, c->where, k, c->peer_id);
    }
}

/* With TLS, logs the handshakes that failed at the public address (peers
 * without a certificate, or with one from another CA) since the last
 * report; returns when to look again. */
static nng_time tls_report(tn *n, nng_time now, nng_stat **snap)
{
    rdv *r = &n->rdv;
    if (n->tls == NULL || !r->open) {
        return TIME_NEVER;
    }
    if (now < r->tls_check) {
        return r->tls_check;
    }
    r->tls_check = now + TLS_REPORT_MS;
    if (*snap == NULL && nng_stats_get(snap) != 0) {
        return r->tls_check;
    }
    uint64_t k = rlg_tls_failures(*snap, &r->l, NULL);
    if (k > r->tls_failed) {
        tn_log(n, RLOG_LEVEL_WARN,
               "rendezvous at %s: refused %" PRIu64
               " connection(s) whose TLS handshake failed (no certificate, one not from our CA, "
               "or not trusting ours)",
               n->address, k - r->tls_failed);
        r->tls_failed = k;
    }
    return r->tls_check;
}

/* With TLS, why the rendezvous did not answer, when its TLS handshake
 * failed. */
static void tls_explain_dialer(tn *n, const dialer *d)
{
    nng_stat *snap = NULL;
    if (n->tls == NULL || nng_stats_get(&snap) != 0) {
        return;
    }
    uint64_t k = rlg_tls_failures(snap, NULL, &d->req_dl);
    nng_stats_free(snap);
    if (k > 0) {
        tn_log(n, RLOG_LEVEL_WARN,
               "dialling %s: %" PRIu64
               " TLS handshake(s) failed: the server refused our certificate, or its certificate "
               "is not from our CA%s",
               d->address, k, d->want_id ? " or not named rlog-<its id>" : "");
    }
}

/* ------------------------------------------------------------------------
 * The rendezvous (public address)
 * ---------------------------------------------------------------------- */

static void rdv_arm(tn *n)
{
    rdv *r = &n->rdv;
    r->replying = false;
    r->busy = true;
    nng_aio_set_timeout(r->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(r->ctx, r->aio);
}

/* A dialer's hello on the public address: returns the redirect to send
 * back, or NULL (logged) for a request that is refused. */
static nng_msg *rdv_request(tn *n, nng_msg *m)
{
    char who[96], err[256], why[320];
    rlog_msg msg;
    nng_msg *reply = NULL;
    host h;
    pipe_name(nng_msg_get_pipe(m), who, sizeof who);
    if (!guest_request(n, nng_msg_get_pipe(m), &h, false)) {
        tn_log(n, RLOG_LEVEL_DEBUG,
               "rendezvous at %s: ignored a request from %s (closed, or "
               "not its first)",
               n->address, who);
        return NULL;
    }
    int rc = rlog_msg_decode(nng_msg_body(m), nng_msg_len(m), RDV_MAX_BYTES, &msg, err, sizeof err);
    why[0] = '\0';
    if (!rlg_transport_hello_refused(n->cfg.server_id, rc, &msg, err, why, sizeof why)) {
        conns_admit(n, msg.u.hello.server_id, &h, why, sizeof why);
    }
    if (why[0] != '\0') {
        tn_log(n, RLOG_LEVEL_WARN, "rendezvous at %s: refused a request (%zu bytes) from %s: %s",
               n->address, nng_msg_len(m), who, why);
        if (rc == 0) {
            rlog_msg_free(&msg);
        }
        return NULL;
    }
    uint64_t peer = msg.u.hello.server_id;
    rlog_msg_free(&msg);
    conn *c;
    if (conn_open_incoming(n, peer, &c) != 0) {
        return NULL;
    }
    c->h = h;
    rlog_msg out;
    memset(&out, 0, sizeof out);
    out.type = RLOG_MSG_REDIRECT;
    out.u.redirect.address = c->where;
    out.u.redirect.token = c->token;
    size_t len;
    if (msg_to_nng(&out, RDV_MAX_BYTES, &reply, &len) != 0) {
        conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return NULL;
    }
    tn_log(n, RLOG_LEVEL_DEBUG, "rendezvous at %s: server %" PRIu64 " from %s sent to %s",
           n->address, peer, who, c->where);
    guest_request(n, nng_msg_get_pipe(m), &h, true);
    return reply;
}

static void rdv_on_aio(tn *n)
{
    rdv *r = &n->rdv;
    r->busy = false;
    int rv = nng_aio_result(r->aio);
    nng_msg *m = nng_aio_get_msg(r->aio);
    nng_aio_set_msg(r->aio, NULL);
    if (r->replying) {
        if (rv != 0) {
            nng_msg_free(m);
        }
        rdv_arm(n);
        return;
    }
    if (rv != 0) {
        tn_log(n, RLOG_LEVEL_WARN, "rendezvous at %s: receive failed: %s", n->address,
               nng_strerror(rv));
        if (rv != NNG_ECLOSED) {
            rdv_arm(n);
        }
        return;
    }
    nng_msg *reply = rdv_request(n, m);
    nng_msg_free(m);
    if (reply == NULL) {
        rdv_arm(n);
        return;
    }
    r->replying = true;
    r->busy = true;
    nng_aio_set_msg(r->aio, reply);
    nng_aio_set_timeout(r->aio, n->cfg.handshake_ms);
    nng_ctx_send(r->ctx, r->aio);
}

static void rdv_stop(tn *n)
{
    rdv *r = &n->rdv;
    if (!r->open) {
        return;
    }
    aio_end(r->aio);
    nng_close(r->sock);
    r->open = false;
    nng_mtx_lock(n->mtx);
    ev_unlink_locked(&r->ev);
    ev_unlink_locked(&r->gev);
    r->nguests = 0;
    nng_mtx_unlock(n->mtx);
    if (r->busy) {
        int rv = nng_aio_result(r->aio);
        nng_msg *m = nng_aio_get_msg(r->aio);
        if (m != NULL && (r->replying ? rv != 0 : rv == 0)) {
            nng_msg_free(m);
        }
        nng_aio_set_msg(r->aio, NULL);
        r->busy = false;
    }
}

/* ------------------------------------------------------------------------
 * The owner's loop
 * ---------------------------------------------------------------------- */

static void ev_dispatch(ev *e)
{
    switch (e->kind) {
    case EV_SEND:
        conn_on_sent(e->owner);
        break;
    case EV_RECV:
        conn_on_recv(e->owner);
        break;
    case EV_PIPE:
        conn_on_pipe(e->owner);
        break;
    case EV_DIALER:
        dialer_on_aio(e->owner);
        break;
    case EV_RDV:
        rdv_on_aio(e->n);
        break;
    case EV_GUEST:
        break; /* poll() runs the timers again after its events */
    }
}

/* Fires what is due; returns the next deadline (TIME_NEVER: none). */
static nng_time timers_run(tn *n)
{
    nng_time now = nng_clock(), next = TIME_NEVER;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    nng_stat *snap = NULL;
    conn *cn;
    for (conn *c = n->conns; c != NULL; c = cn) {
        cn = c->next;
        if (c->state != CONN_HANDSHAKE) {
            continue;
        }
        if (c->deadline <= now) {
            tls_explain(n, c, &snap);
            tn_log(n, RLOG_LEVEL_DEBUG, "%s: handshake timed out", conn_name(c, name, sizeof name));
            conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        } else if (c->deadline < next) {
            next = c->deadline;
        }
    }
    for (dialer *d = n->dialers; d != NULL; d = d->next) {
        bool up = d->bound_id != 0 && conn_up(n, d->bound_id) != NULL;
        if (d->state == DIALER_IDLE && !up) {
            d->backoff_ms = n->cfg.backoff_min_ms;
            dialer_backoff(d);
        } else if (d->state == DIALER_WAIT && up) {
            d->state = DIALER_IDLE;
        }
        if (d->state != DIALER_WAIT) {
            continue;
        }
        if (d->deadline <= now) {
            dialer_ask(d);
        }
        if (d->state == DIALER_WAIT && d->deadline < next) {
            next = d->deadline;
        }
    }
    nng_time g = guests_run(n, now);
    next = g < next ? g : next;
    g = tls_report(n, now, &snap);
    next = g < next ? g : next;
    if (snap != NULL) {
        nng_stats_free(snap);
    }
    return next;
}

static void graveyard_free(tn *n)
{
    while (n->graveyard != NULL) {
        conn *c = n->graveyard;
        n->graveyard = c->next;
        conn_free(c);
    }
    while (n->dead_dialers != NULL) {
        dialer *d = n->dead_dialers;
        n->dead_dialers = d->next;
        dialer_free(d);
    }
}

static void tn_free(tn *n)
{
    graveyard_free(n);
    if (n->rdv.aio != NULL) {
        nng_aio_free(n->rdv.aio);
    }
    free(n->rdv.base);
    free(n->rdv.guests);
    free(n->known);
    rlg_tls_free(n->tls);
    free(n->cfg_address);
    free(n->address);
    if (n->cv != NULL) {
        nng_cv_free(n->cv);
    }
    if (n->mtx != NULL) {
        nng_mtx_free(n->mtx);
    }
    free(n->t);
    free(n);
}

/* ------------------------------------------------------------------------
 * The table
 * ---------------------------------------------------------------------- */

static int tn_check(tn *n, const char *what)
{
    if (!n->inited) {
        return tn_err(n, RLOG_EINVAL, "%s: init() first", what);
    }
    if (n->closing) {
        return tn_err(n, RLOG_ECLOSED, "%s: the transport is closing", what);
    }
    return 0;
}

/* init's part for the limits and TLS: copies the known ids (c->known_ids
 * then points to the copy), loads the TLS files, checks the address's
 * scheme. The TLS paths are not kept. */
static int tn_init_limits(tn *n, rlog_transport_config *c)
{
    if (c->n_known_ids > 0) {
        n->known = malloc(c->n_known_ids * sizeof *n->known);
        if (n->known == NULL) {
            return tn_err(n, RLOG_ENOMEM, "init: out of memory");
        }
        memcpy(n->known, c->known_ids, c->n_known_ids * sizeof *n->known);
        c->known_ids = n->known;
    }
    int rc = rlg_tls_load(c, &n->tls, n->t->errmsg, sizeof n->t->errmsg);
    if (rc == 0 && c->address[0] != '\0') {
        rc = tls_url_check(n, "init: address", c->address);
    }
    c->tls_cert_file = c->tls_key_file = c->tls_ca_file = NULL;
    if (rc != 0 && c->logger != NULL) {
        c->logger(c->logger_data, RLOG_LEVEL_ERROR, n->t->errmsg); /* callers may lose it */
    }
    if (rc != 0) {
        rlg_tls_free(n->tls);
        n->tls = NULL;
        free(n->known);
        n->known = NULL;
    }
    return rc;
}

static int tn_init(rlog_transport *t, const rlog_transport_config *cfg,
                   const rlog_transport_events *events)
{
    tn *n = t->impl;
    if (n->inited || n->closing) {
        return tn_err(n, RLOG_EINVAL, "init: called twice");
    }
    rlog_transport_config c;
    int rc = rlg_transport_config_resolve(cfg, &c, t->errmsg, sizeof t->errmsg);
    if (rc != 0) {
        return rc;
    }
    size_t at;
    unsigned port;
    if (c.address[0] != '\0' && addr_parse(c.address, &at, &port) == ADDR_BAD) {
        return tn_err(n, RLOG_EINVAL,
                      "init: server %" PRIu64 ": unsupported address '%s' (tcp://host:port, "
                      "tcp4://, tcp6://, ipc://path, inproc://name, abstract://name)",
                      c.server_id, c.address);
    }
    if (ipc_too_long(c.address)) {
        return ipc_too_long_err(n, "init", c.address);
    }
    rc = tn_init_limits(n, &c);
    if (rc != 0) {
        return rc;
    }
    n->cfg_address = strdup(c.address);
    n->address = strdup(c.address);
    if (n->cfg_address == NULL || n->address == NULL) {
        free(n->cfg_address);
        free(n->address);
        n->cfg_address = n->address = NULL;
        return tn_err(n, RLOG_ENOMEM, "init: out of memory");
    }
    c.address = n->cfg_address;
    n->cfg = c;
    if (events != NULL) {
        n->ev = *events;
    }
    n->inited = true;
    return 0;
}

/* listen's part for the limits: the table of connections to the public
 * address, and the pipe callbacks that fill it. Returns an nng error. */
static int rdv_limits_start(tn *n)
{
    rdv *r = &n->rdv;
    if (r->guests == NULL) {
        r->gcap = n->cfg.max_conns + n->cfg.reserve_conns;
        r->guests = calloc(r->gcap, sizeof *r->guests);
        if (r->guests == NULL) {
            return NNG_ENOMEM;
        }
        ev_init(&r->gev, n, NULL, EV_GUEST);
    }
    int rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_PRE, rdv_pipe_cb, n);
    if (rv == 0) {
        rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, rdv_pipe_cb, n);
    }
    return rv;
}

static int tn_listen(rlog_transport *t)
{
    tn *n = t->impl;
    rdv *r = &n->rdv;
    int rc = tn_check(n, "listen");
    if (rc != 0) {
        return rc;
    }
    const char *addr = n->cfg.address;
    if (addr[0] == '\0') {
        return tn_err(n, RLOG_EINVAL, "listen: server %" PRIu64 " has no address",
                      n->cfg.server_id);
    }
    if (r->open) {
        return tn_err(n, RLOG_EBUSY, "listen: already listening at %s", n->address);
    }
    size_t at = 0;
    unsigned port = 0;
    r->kind = addr_parse(addr, &at, &port);
    if (r->aio == NULL) {
        ev_init(&r->ev, n, NULL, EV_RDV);
        if (nng_aio_alloc(&r->aio, ev_aio_cb, &r->ev) != 0) {
            return tn_err(n, RLOG_ENOMEM, "listen at %s: out of memory", addr);
        }
    }
    int rv = nng_rep0_open(&r->sock);
    if (rv != 0) {
        return tn_err(n, nng_to_rlog(rv), "listen at %s: cannot open a rep0 socket: %s", addr,
                      nng_strerror(rv));
    }
    nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, RDV_MAX_BYTES);
    nng_listener l;
    rv = rdv_limits_start(n);
    if (rv == 0) {
        rv = nng_listener_create(&l, r->sock, addr);
    }
    if (rv == 0 && n->tls != NULL) {
        rv = rlg_tls_listener(n->tls, l, 0);
    }
    if (rv == 0) {
        rv = nng_listener_start(l, 0);
        r->l = l;
    }
    int bound = (int)port;
    if (rv == 0 && r->kind == ADDR_TCP) {
        rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &bound);
    }
    if (rv == 0) {
        rv = nng_ctx_open(&r->ctx, r->sock);
    }
    char *local = NULL, *base = NULL;
    if (rv == 0) {
        local = r->kind == ADDR_TCP ? str_printf("%.*s%d", (int)at, addr, bound) : strdup(addr);
        base = r->kind == ADDR_TCP ? str_printf("%.*s", (int)at, addr) : strdup(addr);
        rv = local && base ? 0 : NNG_ENOMEM;
    }
    if (rv != 0) {
        nng_close(r->sock);
        free(local);
        free(base);
        return tn_err(n, nng_to_rlog(rv), "listen at %s: %s", addr,
                      rv == NNG_EADDRINUSE ? "address in use" : nng_strerror(rv));
    }
    free(n->address);
    n->address = local;
    free(r->base);
    r->base = base;
    r->open = true;
    rdv_arm(n);
    tn_log(n, RLOG_LEVEL_INFO, "listening at %s", n->address);
    return 0;
}

static int tn_connect(rlog_transport *t, uint64_t peer_id, const char *address)
{
    tn *n = t->impl;
    int rc = tn_check(n, "connect");
    if (rc != 0) {
        return rc;
    }
    size_t at;
    unsigned port = 0;
    addr_kind kind = address != NULL ? addr_parse(address, &at, &port) : ADDR_BAD;
    if (kind == ADDR_BAD || strlen(address) > RLOG_WIRE_ADDRESS_MAX ||
        (kind == ADDR_TCP && port == 0)) {
        return tn_err(n, RLOG_EINVAL, "connect to server %" PRIu64 ": unsupported address '%s'",
                      peer_id, address ? address : "(null)");
    }
    if (ipc_too_long(address)) {
        return ipc_too_long_err(n, "connect", address);
    }
    if (peer_id == n->cfg.server_id) {
        return tn_err(n, RLOG_EINVAL, "connect to %s: server %" PRIu64 " is ourselves", address,
                      peer_id);
    }
    rc = tls_url_check(n, "connect to", address);
    if (rc != 0) {
        return rc;
    }
    for (dialer *d = n->dialers; d != NULL; d = d->next) {
        bool same = strcmp(d->address, address) == 0;
        if (peer_id != 0 && d->want_id == peer_id) {
            if (same) {
                return 0;
            }
            return tn_err(n, RLOG_EBUSY,
                          "connect to server %" PRIu64 " at %s: already connecting to it at %s",
                          peer_id, address, d->address);
        }
        if (peer_id == 0 && d->want_id == 0 && same) {
            return 0;
        }
    }
    dialer *d = calloc(1, sizeof *d);
    if (d == NULL || (d->address = strdup(address)) == NULL) {
        free(d);
        return tn_err(n, RLOG_ENOMEM, "connect to %s: out of memory", address);
    }
    d->n = n;
    d->want_id = d->bound_id = peer_id;
    d->backoff_ms = n->cfg.backoff_min_ms;
    ev_init(&d->ev, n, d, EV_DIALER);
    d->next = n->dialers;
    n->dialers = d;
    if (peer_id != 0 && conn_up(n, peer_id) != NULL) {
        d->state = DIALER_IDLE;
    } else {
        dialer_ask(d);
    }
    return 0;
}

static int tn_disconnect(rlog_transport *t, uint64_t peer_id)
{
    tn *n = t->impl;
    int rc = tn_check(n, "disconnect");
    if (rc != 0) {
        return rc;
    }
    if (peer_id == 0) {
        return tn_err(n, RLOG_EINVAL, "disconnect: server id 0");
    }
    bool found = false;
    dialer *dn;
    for (dialer *d = n->dialers; d != NULL; d = dn) {
        dn = d->next;
        if (dialer_aims_at(d, peer_id)) {
            found = true;
            dialer_stop(d, RLOG_ENOCONN, RLOG_ECANCELED);
        }
    }
    conn *cn;
    for (conn *c = n->conns; c != NULL; c = cn) {
        cn = c->next;
        if (c->peer_id == peer_id && c->state != CONN_DEAD) {
            found = true;
            conn_kill(c, RLOG_ENOCONN, RLOG_ECANCELED, AFTER_REDIAL);
        }
    }
    if (!found) {
        return tn_err(n, RLOG_ENOTFOUND, "disconnect: no connection to server %" PRIu64, peer_id);
    }
    return 0;
}

static int tn_send(rlog_transport *t, uint64_t peer_id, const rlog_msg *msg,
                   rlog_transport_send_cb cb, void *data)
{
    tn *n = t->impl;
    int rc = tn_check(n, "send");
    if (rc != 0) {
        return rc;
    }
    if (msg == NULL || msg->type == RLOG_MSG_HELLO || msg->type == RLOG_MSG_REDIRECT) {
        return tn_err(n, RLOG_EINVAL, "send to server %" PRIu64 ": %s", peer_id,
                      msg ? "hello and redirect belong to the transport" : "NULL message");
    }
    conn *c = conn_up(n, peer_id);
    if (c == NULL) {
        return tn_err(n, RLOG_ENOCONN, "send %s to server %" PRIu64 ": not connected",
                      rlog_msg_type_name(msg->type), peer_id);
    }
    sendreq *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return tn_err(n, RLOG_ENOMEM, "send to server %" PRIu64 ": out of memory", peer_id);
    }
    rc = msg_to_nng(msg, n->cfg.max_message, &s->msg, &s->bytes);
    if (rc != 0) {
        char name[RLOG_WIRE_ADDRESS_MAX + 128];
        free(s);
        return tn_err(n, rc, "send %s to %s: %s%s", rlog_msg_type_name(msg->type),
                      conn_name(c, name, sizeof name), rlog_strerror(rc),
                      rc == RLOG_ETOOBIG ? " (max_message)" : "");
    }
    s->r.cb = cb;
    s->r.data = data;
    while (c->qhead != NULL &&
           (c->qn + 1 > n->cfg.queue_messages || c->qbytes + s->bytes > n->cfg.queue_bytes)) {
        sendreq_done(n, conn_dequeue(c), RLOG_EFULL);
    }
    conn_enqueue(c, s);
    conn_pump(c);
    return 0;
}

static int tn_poll(rlog_transport *t, int timeout_ms)
{
    tn *n = t->impl;
    if (n->closing) {
        return -RLOG_ECLOSED;
    }
    if (!n->inited) {
        return -tn_err(n, RLOG_EINVAL, "poll: init() first");
    }
    if (n->in_poll) {
        return -tn_err(n, RLOG_EINVAL, "poll: called from inside a transport callback");
    }
    n->in_poll = true;
    n->ran = 0;
    nng_time until = timeout_ms < 0 ? TIME_NEVER : nng_clock() + (nng_time)timeout_ms;
    for (;;) {
        ready_run(n);
        nng_time next = timers_run(n);
        posts_take(n);
        ready_run(n);
        ev *e;
        while (!n->closing && (e = inbox_pop(n)) != NULL) {
            ev_dispatch(e);
            ready_run(n);
            graveyard_free(n);
        }
        if (!n->closing) {
            next = timers_run(n); /* events may have added deadlines */
            ready_run(n);
        }
        graveyard_free(n);
        if (n->closing || n->ran > 0 || timeout_ms == 0) {
            break;
        }
        nng_time now = nng_clock();
        if (now >= until) {
            break;
        }
        nng_time wake = next < until ? next : until;
        nng_mtx_lock(n->mtx);
        if (n->inbox.next == &n->inbox && n->posts == NULL) {
            n->waiting = true;
            if (wake == TIME_NEVER) {
                nng_cv_wait(n->cv);
            } else if (wake > now) {
                nng_cv_until(n->cv, wake);
            }
            n->waiting = false;
        }
        nng_mtx_unlock(n->mtx);
    }
    n->in_poll = false;
    int ran = n->ran;
    if (n->free_on_return) {
        tn_free(n);
        return -RLOG_ECLOSED;
    }
    return ran;
}

static int tn_post(rlog_transport *t, void (*fn)(void *arg), void *arg)
{
    tn *n = t->impl;
    if (fn == NULL) {
        return RLOG_EINVAL;
    }
    ready *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return RLOG_ENOMEM;
    }
    r->kind = READY_POST;
    r->fn = fn;
    r->data = arg;
    nng_mtx_lock(n->mtx);
    if (n->shut) {
        nng_mtx_unlock(n->mtx);
        free(r);
        return RLOG_ECLOSED;
    }
    if (n->posts_tail != NULL) {
        n->posts_tail->next = r;
    } else {
        n->posts = r;
    }
    n->posts_tail = r;
    if (n->waiting) {
        nng_cv_wake1(n->cv);
    }
    if (n->cfg.wake != NULL) {
        n->cfg.wake(n->cfg.wake_data);
    }
    nng_mtx_unlock(n->mtx);
    return 0;
}

static void tn_close(rlog_transport *t)
{
    tn *n = t->impl;
    if (n->closing) {
        return;
    }
    n->closing = true;
    rdv_stop(n);
    while (n->dialers != NULL) {
        dialer_stop(n->dialers, RLOG_ECLOSED, RLOG_ECLOSED);
    }
    while (n->conns != NULL) {
        conn_kill(n->conns, RLOG_ECLOSED, RLOG_ECLOSED, AFTER_REDIAL);
    }
    nng_mtx_lock(n->mtx);
    n->shut = true;
    nng_mtx_unlock(n->mtx);
    posts_take(n);
    ready_run(n);
    if (n->in_poll) {
        n->free_on_return = true;
        return;
    }
    tn_free(n);
}

static const char *tn_local_address(rlog_transport *t)
{
    tn *n = t->impl;
    return n->address != NULL ? n->address : "";
}

int rlog_transport_nng_new(rlog_transport **out)
{
    *out = NULL;
    rlog_transport *t = calloc(1, sizeof *t);
    tn *n = calloc(1, sizeof *n);
    if (t == NULL || n == NULL) {
        free(t);
        free(n);
        return RLOG_ENOMEM;
    }
    n->t = t;
    n->inbox.prev = n->inbox.next = &n->inbox;
    if (nng_mtx_alloc(&n->mtx) != 0 || nng_cv_alloc(&n->cv, n->mtx) != 0) {
        tn_free(n);
        return RLOG_ENOMEM;
    }
    t->version = 1;
    t->impl = n;
    t->init = tn_init;
    t->listen = tn_listen;
    t->connect = tn_connect;
    t->disconnect = tn_disconnect;
    t->send = tn_send;
    t->poll = tn_poll;
    t->post = tn_post;
    t->close = tn_close;
    t->local_address = tn_local_address;
    *out = t;
    return 0;
}
