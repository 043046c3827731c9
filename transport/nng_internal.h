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
 *           oldest silent ones over the caps (rlg_nng_guests_run).
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
 * object cancels its aios and waits for their callbacks (rlg_nng_aio_end), closes
 * its socket, then unlinks its slots from the inbox, so no event ever
 * refers to a dead object.
 *
 * Limits and TLS (docs/security.md) live in their own file
 * (nng_limits.c) called from the rendezvous, the timers and the
 * arbitration; the TLS configuration itself is transport/nng_tls.c.
 *
 * User callbacks. peer_up and recv are called directly by the state
 * machine (their arguments are borrowed); peer_down, send completions and
 * posted functions are `ready` nodes appended to tn->ready and run in
 * order, before and after each direct call, so callbacks never nest. Any
 * object may die during a callback (the user may disconnect or close):
 * code after a callback checks the state before touching sockets.
 *
 * Files (all internal to the nng transport; this header is their shared
 * ground: the objects above and the functions one file calls in another):
 *   nng_util.c   errors, logging, addresses and message encoding
 *   nng_events.c the inbox (nng threads -> owner) and the ready list (owner)
 *   nng_conn.c   connections: socket, sends, receives, handshake, death
 *   nng_dialer.c dialers: rendezvous request, dedicated dial, backoff,
 *                their turn in the loop (rlg_nng_dialers_run). A dialer
 *                makes and stops its conn (nng_dialer.c -> nng_conn.c);
 *                a conn calls no dialer function: it records its end or
 *                its success in its dialer's fields (DIALER_LOST or
 *                DIALER_IDLE, bound_id, backoff_ms), which the dialer's
 *                turn acts on.
 *   nng_limits.c limits against strangers and TLS diagnostics
 *   nng_rdv.c    the rendezvous (the public address)
 *   nng.c        the owner's loop and the transport table
 */
#ifndef RLG_TRANSPORT_NNG_INTERNAL_H
#define RLG_TRANSPORT_NNG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

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
    /* No callback, timeout zero: the owner's non-blocking sends and
     * receives (nng_sendmsg/nng_recvmsg NONBLOCK allocate an aio per call,
     * and nng 1.5.2 asks the kernel for random bytes for each one). Never
     * in flight outside those calls. */
    nng_aio *try_aio;
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
    DIALER_LOST, /* its conn died: backs off at the next rlg_nng_dialers_run */
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

/* What a dead outgoing connection's dialer does next. */
typedef enum after_kill {
    AFTER_REDIAL, /* its dialer backs off and redials */
    AFTER_IDLE,   /* its dialer waits: the peer is up through another conn */
} after_kill;

/* ------------------------------------------------------------------------
 * nng_util.c: errors, logging, addresses and message encoding
 * ---------------------------------------------------------------------- */

int rlg_nng_err(tn *n, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void rlg_nng_log(tn *n, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "server 3 at tcp://h:9003 (via tcp://h:40211)" for messages. */
const char *rlg_nng_conn_name(const conn *c, char *buf, size_t cap);
/* The remote end of a pipe as text, for messages about hostile input. */
const char *rlg_nng_pipe_name(nng_pipe p, char *buf, size_t cap);
/* True when url is an ipc:// address whose path a Unix socket cannot hold
 * (nng would only say "Address invalid"). */
bool rlg_nng_ipc_too_long(const char *url);
/* The error for such an address, naming the limit. */
int rlg_nng_ipc_too_long_err(tn *n, const char *what, const char *url);
/* Classifies `url`; for tcp, *port_at is the offset of the port (after the
 * last ':'), which must be 1..5 digits <= 65535; *port its value. */
addr_kind rlg_nng_addr_parse(const char *url, size_t *port_at, unsigned *port);
char *rlg_nng_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * The dedicated address a dialer dials, from the redirect it was given for
 * `dialled`: tcp — the host we dialled with the redirect's port; ipc,
 * inproc, abstract — the redirect itself, which must be `dialled` plus "."
 * and 1..16 hex digits. NULL with *why set when the redirect is not one.
 */
char *rlg_nng_redirect_target(const char *dialled, const char *redirect, const char **why);
/* Encodes msg into a new nng message (one copy of the encoding). */
int rlg_nng_msg_to_nng(const rlog_msg *msg, size_t max, nng_msg **out, size_t *len);
int rlg_nng_hello_to_nng(tn *n, uint64_t flags, nng_msg **out);
uint64_t rlg_nng_random64(void);
int rlg_nng_to_rlog(int rv);

/* ------------------------------------------------------------------------
 * nng_events.c: the inbox (nng threads -> owner) and the ready list (owner)
 * ---------------------------------------------------------------------- */

/*
 * Ends the operation in flight on aio (if any) and waits for its callback,
 * from the owner thread. Cancel-and-wait rather than nng_aio_stop: with
 * nng 1.5.2, nng_close after nng_aio_stop of a send waiting on a busy pipe
 * hangs (reproduced with nng alone), and a stopped aio refuses later
 * operations.
 */
void rlg_nng_aio_end(nng_aio *aio);
/*
 * Ends a socket that has one aio and one event slot (a dialer's req0, the
 * rendezvous rep0): the aio's operation ended (rlg_nng_aio_end), the socket
 * closed, the slot taken off the inbox. When an operation was in flight
 * (busy), the message the aio is left with is freed when it is ours — the
 * one we were sending (`sending`) that nng did not take, or one it
 * received — and the aio holds none.
 */
void rlg_nng_sock_end(tn *n, nng_aio *aio, nng_socket sock, ev *e, bool busy, bool sending);
void rlg_nng_ev_init(ev *e, tn *n, void *owner, ev_kind kind);
void rlg_nng_ev_queue_locked(ev *e);
void rlg_nng_ev_unlink_locked(ev *e);
/* nng aio callback (an nng thread): hand the completion to the owner. */
void rlg_nng_ev_aio_cb(void *arg);
ev *rlg_nng_inbox_pop(tn *n);
void rlg_nng_ready_push(tn *n, ready *r);
/* Moves posted functions to the ready list. */
void rlg_nng_posts_take(tn *n);
/* Runs the ready callbacks in order (popping each before its call, so a
 * nested run from close() continues where this one stopped). */
void rlg_nng_ready_run(tn *n);
void rlg_nng_sendreq_done(tn *n, sendreq *s, int status);

/* ------------------------------------------------------------------------
 * nng_conn.c: connections: socket, sends, receives, handshake, death
 * ---------------------------------------------------------------------- */

conn *rlg_nng_conn_up(tn *n, uint64_t id);
void rlg_nng_conn_free(conn *c);
/* A new conn with its pair1 socket (linked into tn->conns). */
int rlg_nng_conn_new(tn *n, bool outgoing, conn **out);
void rlg_nng_conn_arm_recv(conn *c);
void rlg_nng_conn_enqueue(conn *c, sendreq *s);
/* Takes the oldest send off c's queue; NULL when it is empty. */
sendreq *rlg_nng_conn_dequeue(conn *c);
/*
 * Hands queued sends to nng, oldest first, unless one is in flight: each
 * goes straight to the pipe from this thread while nng takes it without
 * waiting (a zero-timeout send on try_aio; completion 0 at once); the first one nng
 * refuses (pipe busy, no pipe yet, any other answer) becomes the single
 * nng_send_aio in flight, whose completion (conn_on_sent) resumes the pump.
 */
void rlg_nng_conn_pump(conn *c);
/* Queues an internal message (a hello): no completion callback. */
int rlg_nng_conn_enqueue_internal(conn *c, nng_msg *m);
/*
 * Ends a connection: stops its aios, closes its socket, completes its sends
 * with send_status (the in-flight one with 0 when nng had taken it), queues
 * peer_down(reason) if it was up, and moves it to the graveyard.
 */
void rlg_nng_conn_kill(conn *c, int reason, int send_status, after_kill after);
/* A receive completed: take its message and those already buffered in the
 * socket (up to RECV_BATCH, from this thread), then receive again. */
void rlg_nng_conn_on_recv(conn *c);
void rlg_nng_conn_on_sent(conn *c);
void rlg_nng_conn_on_pipe(conn *c);
/* Incoming: a dedicated socket listening for the dialer of server `peer`. */
int rlg_nng_conn_open_incoming(tn *n, uint64_t peer, conn **out);

/* ------------------------------------------------------------------------
 * nng_dialer.c: dialers: rendezvous request, dedicated dial, backoff
 * ---------------------------------------------------------------------- */

bool rlg_nng_dialer_aims_at(const dialer *d, uint64_t id);
/* Starts a rendezvous: our hello to the public address on a fresh req0. */
void rlg_nng_dialer_ask(dialer *d);
void rlg_nng_dialer_on_aio(dialer *d);
/*
 * The dialers' turn in the owner's loop: one whose connection died
 * (DIALER_LOST) backs off; one waiting while its peer is up through
 * another connection goes idle, an idle one whose peer is down backs off
 * from the minimum; one whose wait is over asks again. Returns the next
 * deadline (TIME_NEVER: none). A connection only records its end in its
 * dialer's state: nng_dialer.c calls nng_conn.c, never the reverse.
 */
nng_time rlg_nng_dialers_run(tn *n, nng_time now);
/* Stops a dialer for good (its conn dies too); freed at the top level. */
void rlg_nng_dialer_stop(dialer *d, int reason, int send_status);
void rlg_nng_dialer_free(dialer *d);

/* ------------------------------------------------------------------------
 * nng_limits.c: limits against strangers and TLS diagnostics
 * ---------------------------------------------------------------------- */

/*
 * Pipe callback of the public address (an nng thread). A pipe is refused
 * on arrival only above a hard ceiling (max_conns + reserve_conns, per
 * host max_conns_per_host + reserve_conns); below it, it is admitted and
 * the owner thread closes the oldest silent ones to get back under the
 * caps (guests_run). So a newcomer always gets a chance to speak.
 */
void rlg_nng_rdv_pipe_cb(nng_pipe p, nng_pipe_ev what, void *arg);
/* Closes the public address's connections that are past their deadline
 * or over a cap (oldest silent first); returns the next deadline. */
nng_time rlg_nng_guests_run(tn *n, nng_time now);
/* A request arrived on pipe p. false when p is no longer admitted (closed
 * as silent or over a cap) or was already answered (one redirect per
 * connection; a refused request may be repeated until the deadline);
 * else *h is its host. With `answered`, records that it got its redirect
 * (it no longer counts as silent). */
bool rlg_nng_guest_request(tn *n, nng_pipe p, host *h, bool answered);
/*
 * Whether server `peer` from host h may have a dedicated connection: at
 * most max_conns incoming ones (max_conns + reserve_conns for a known
 * peer), max_conns_per_host from one host (known peers exempt), and
 * HS_PER_PEER in handshake per peer (a newer rendezvous replaces the
 * oldest: *replace, which the caller kills; else NULL). A peer that is
 * up may always redial: its new connection replaces the old. Returns
 * NULL, or why not (in why).
 */
const char *rlg_nng_conns_admit(tn *n, uint64_t peer, const host *h, char *why, size_t cap,
                                conn **replace);
/*
 * "Newer wins" lets a peer that dialled us replace its own older
 * connection. A replacement from ANOTHER host while the current connection
 * is younger than handshake_ms is refused (an impostor and the real peer
 * would otherwise take the id from each other in a loop); every replacement
 * from another host is logged. Without TLS a server id is only a claim.
 */
bool rlg_nng_takeover_refused(tn *n, const conn *cur, const conn *cand);
/* Dials url on sock without blocking; with TLS, the server's certificate
 * must be named after expect_id (any name when 0). */
int rlg_nng_dial_start(tn *n, nng_socket sock, const char *url, uint64_t expect_id,
                       nng_dialer *out);
/* Whether url's scheme fits the configuration: tls+tcp:// exactly when
 * TLS is on. Else RLOG_EINVAL with a message. */
int rlg_nng_tls_url_check(tn *n, const char *what, const char *url);
/* A connection in handshake reached its deadline: with TLS, say whether
 * TLS handshakes failed on it (nng tells no one else). */
void rlg_nng_tls_explain(tn *n, const conn *c, nng_stat **snap);
/* With TLS, logs the handshakes that failed at the public address (peers
 * without a certificate, or with one from another CA) since the last
 * report; returns when to look again. */
nng_time rlg_nng_tls_report(tn *n, nng_time now, nng_stat **snap);
/* With TLS, why the rendezvous did not answer, when its TLS handshake
 * failed. */
void rlg_nng_tls_explain_dialer(tn *n, const dialer *d);

/* ------------------------------------------------------------------------
 * nng_rdv.c: the rendezvous (the public address)
 * ---------------------------------------------------------------------- */

void rlg_nng_rdv_arm(tn *n);
void rlg_nng_rdv_on_aio(tn *n);
void rlg_nng_rdv_stop(tn *n);

#endif /* RLG_TRANSPORT_NNG_INTERNAL_H */
