/*
 * The nng transport: connections: socket, sends, receives, handshake, death.
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */

conn *rlg_nng_conn_up(tn *n, uint64_t id)
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
            rlg_nng_ev_queue_locked(&c->pipe_ev);
        } else if (c->live_pipe == 0) {
            c->removed[c->nremoved++ % REMOVED_KEEP] = id;
        }
    }
    nng_mtx_unlock(n->mtx);
    if (reject) {
        nng_pipe_close(p);
    }
}

void rlg_nng_conn_free(conn *c)
{
    nng_aio_free(c->send_aio);
    nng_aio_free(c->recv_aio);
    nng_aio_free(c->try_aio);
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

int rlg_nng_conn_new(tn *n, bool outgoing, conn **out)
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
    rlg_nng_ev_init(&c->send_ev, n, c, EV_SEND);
    rlg_nng_ev_init(&c->recv_ev, n, c, EV_RECV);
    rlg_nng_ev_init(&c->pipe_ev, n, c, EV_PIPE);
    int rv = nng_aio_alloc(&c->send_aio, rlg_nng_ev_aio_cb, &c->send_ev);
    if (rv == 0) {
        rv = nng_aio_alloc(&c->recv_aio, rlg_nng_ev_aio_cb, &c->recv_ev);
    }
    if (rv == 0 && (rv = nng_aio_alloc(&c->try_aio, NULL, NULL)) == 0) {
        nng_aio_set_timeout(c->try_aio, NNG_DURATION_ZERO);
    }
    if (rv == 0) {
        rv = nng_pair1_open(&c->sock);
    }
    if (rv != 0) {
        rlg_nng_conn_free(c);
        return rlg_nng_to_rlog(rv);
    }
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, n->cfg.max_message);
    /* nng must not redial a dedicated address by itself: a lost connection
     * starts over with a rendezvous (and a socket closed while nng 1.5.2
     * negotiates a tcp connection leaks). */
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, NO_REDIAL_MS);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, NO_REDIAL_MS);
    /* A receive buffer lets the owner thread take messages without a round
     * trip through nng's threads (rlg_nng_conn_on_recv): at most queue_messages and
     * queue_bytes worth of max_message ones. No send buffer: nng 1.5.2
     * leaks the messages still in a pair1 send buffer when the socket
     * closes (reproduced with nng alone); rlg_nng_conn_pump hands a message over
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
        rlg_nng_conn_free(c);
        return RLOG_ENOMEM;
    }
    c->next = n->conns;
    n->conns = c;
    *out = c;
    return 0;
}

void rlg_nng_conn_arm_recv(conn *c)
{
    c->receiving = true;
    nng_recv_aio(c->sock, c->recv_aio);
}

void rlg_nng_conn_enqueue(conn *c, sendreq *s)
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

sendreq *rlg_nng_conn_dequeue(conn *c)
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

/* What nng_sendmsg(NNG_FLAG_NONBLOCK) does, on c's own aio: 0 when nng
 * took m; otherwise m is still the caller's. The aio has no callback, so
 * its completion runs inside the call and the wait returns at once. */
static int conn_try_send(conn *c, nng_msg *m)
{
    nng_aio_set_msg(c->try_aio, m);
    nng_send_aio(c->sock, c->try_aio);
    nng_aio_wait(c->try_aio);
    int rv = nng_aio_result(c->try_aio);
    nng_aio_set_msg(c->try_aio, NULL);
    return rv;
}

/* What nng_recvmsg(NNG_FLAG_NONBLOCK) does, on c's own aio. */
static int conn_try_recv(conn *c, nng_msg **m)
{
    nng_recv_aio(c->sock, c->try_aio);
    nng_aio_wait(c->try_aio);
    int rv = nng_aio_result(c->try_aio);
    if (rv == 0) {
        *m = nng_aio_get_msg(c->try_aio);
        nng_aio_set_msg(c->try_aio, NULL);
    }
    return rv;
}

void rlg_nng_conn_pump(conn *c)
{
    while (!c->sending && c->qhead != NULL && c->state != CONN_DEAD) {
        sendreq *s = rlg_nng_conn_dequeue(c);
        if (conn_try_send(c, s->msg) == 0) {
            s->msg = NULL; /* nng's now */
            rlg_nng_sendreq_done(c->n, s, 0);
            continue;
        }
        c->inflight = s;
        c->sending = true;
        nng_aio_set_msg(c->send_aio, s->msg);
        s->msg = NULL;
        nng_send_aio(c->sock, c->send_aio);
    }
}

int rlg_nng_conn_enqueue_internal(conn *c, nng_msg *m)
{
    sendreq *s = calloc(1, sizeof *s);
    if (s == NULL) {
        nng_msg_free(m);
        return RLOG_ENOMEM;
    }
    s->msg = m;
    s->bytes = nng_msg_len(m);
    rlg_nng_conn_enqueue(c, s);
    rlg_nng_conn_pump(c);
    return 0;
}

void rlg_nng_conn_kill(conn *c, int reason, int send_status, after_kill after)
{
    tn *n = c->n;
    if (c->state == CONN_DEAD) {
        return;
    }
    bool was_up = c->state == CONN_UP;
    c->state = CONN_DEAD;
    rlg_nng_aio_end(c->send_aio);
    rlg_nng_aio_end(c->recv_aio);
    nng_close(c->sock);
    nng_mtx_lock(n->mtx);
    rlg_nng_ev_unlink_locked(&c->send_ev);
    rlg_nng_ev_unlink_locked(&c->recv_ev);
    rlg_nng_ev_unlink_locked(&c->pipe_ev);
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
        rlg_nng_sendreq_done(n, c->inflight, rv == 0 ? 0 : send_status);
        c->inflight = NULL;
    }
    for (sendreq *s; (s = rlg_nng_conn_dequeue(c)) != NULL;) {
        rlg_nng_sendreq_done(n, s, send_status);
    }
    if (was_up) {
        char name[RLOG_WIRE_ADDRESS_MAX + 128];
        rlg_nng_log(n, RLOG_LEVEL_INFO, "%s down: %s", rlg_nng_conn_name(c, name, sizeof name),
                    rlog_strerror(reason));
        c->down->kind = READY_DOWN;
        c->down->peer = c->peer_id;
        c->down->status = reason;
        rlg_nng_ready_push(n, c->down);
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
            /* the dialer acts on it at its next turn (rlg_nng_dialers_run) */
            d->state = after == AFTER_IDLE ? DIALER_IDLE : DIALER_LOST;
        }
    }
}

/* Dialers aiming at c's peer stop: it is up through c. */

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
            if (pass == 0 && wins && rlg_nng_takeover_refused(n, r, c)) {
                return false;
            }
            if (pass == 0 && !wins) {
                rlg_nng_log(n, RLOG_LEVEL_INFO,
                            "%s: keeping the connection via %s, closing the new one",
                            rlg_nng_conn_name(c, a, sizeof a), r->where);
                return false;
            }
            if (pass == 1 && r->state == CONN_UP) {
                rlg_nng_log(n, RLOG_LEVEL_INFO, "%s replaces %s", rlg_nng_conn_name(c, a, sizeof a),
                            rlg_nng_conn_name(r, b, sizeof b));
                rlg_nng_conn_kill(r, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_IDLE);
            }
        }
    }
    return true;
}

static void emit_up(tn *n, conn *c, const rlog_msg_hello *h)
{
    rlg_nng_ready_run(n);
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
    rlg_nng_ready_run(n);
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
        rlg_nng_log(n, RLOG_LEVEL_WARN,
                    "dedicated connection %s for server %" PRIu64
                    ": refused a first message (%zu bytes) from %s: %s",
                    c->where, c->peer_id, nng_msg_len(m), rlg_nng_pipe_name(pipe, who, sizeof who),
                    why);
        nng_pipe_close(pipe);
        if (c->bad >= BAD_HELLOS_MAX) {
            rlg_nng_conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
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
    if (conn_set_peer(c, &msg->u.hello) != 0 || rlg_nng_hello_to_nng(n, 0, &hello) != 0) {
        rlg_nng_log(n, RLOG_LEVEL_ERROR, "%s: out of memory in the handshake",
                    rlg_nng_conn_name(c, name, sizeof name));
        rlg_nng_conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    if (!conn_arbitrate(c)) {
        nng_msg_free(hello);
        rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        return;
    }
    if (rlg_nng_conn_enqueue_internal(c, hello) != 0) {
        rlg_nng_conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    c->state = CONN_UP;
    rlg_nng_log(n, RLOG_LEVEL_INFO, "%s up (%s, dialled us)",
                rlg_nng_conn_name(c, name, sizeof name), rlog_msg_role_name(msg->u.hello.role));
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
        rlg_nng_log(n, RLOG_LEVEL_WARN, "connection to %s via %s refused: %s", d->address, c->where,
                    why);
        rlg_nng_conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
        return;
    }
    c->peer_id = msg->u.hello.server_id;
    d->bound_id = c->peer_id;
    if (conn_set_peer(c, &msg->u.hello) != 0) {
        rlg_nng_conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    if (!conn_arbitrate(c)) {
        rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_IDLE);
        return;
    }
    c->state = CONN_UP;
    d->backoff_ms = n->cfg.backoff_min_ms;
    rlg_nng_log(n, RLOG_LEVEL_INFO, "%s up (%s, we dialled %s)",
                rlg_nng_conn_name(c, name, sizeof name), rlog_msg_role_name(msg->u.hello.role),
                d->address);
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
        rlg_nng_log(
            n, RLOG_LEVEL_WARN,
            "%s sent a message that does not decode (%zu bytes): %s; resetting the connection",
            rlg_nng_conn_name(c, name, sizeof name), nng_msg_len(m), err);
        rlg_nng_conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
    } else if (msg.type == RLOG_MSG_HELLO || msg.type == RLOG_MSG_REDIRECT) {
        rlg_nng_log(n, RLOG_LEVEL_WARN,
                    "%s sent a %s after the handshake; resetting the connection",
                    rlg_nng_conn_name(c, name, sizeof name), rlog_msg_type_name(msg.type));
        rlg_nng_conn_kill(c, RLOG_EPROTO, RLOG_EPROTO, AFTER_REDIAL);
    } else {
        rlg_nng_ready_run(n);
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

void rlg_nng_conn_on_recv(conn *c)
{
    tn *n = c->n;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    c->receiving = false;
    int rv = nng_aio_result(c->recv_aio);
    if (rv != 0) {
        rlg_nng_log(n, RLOG_LEVEL_DEBUG, "%s: receive failed: %s",
                    rlg_nng_conn_name(c, name, sizeof name), nng_strerror(rv));
        rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->recv_aio);
    nng_aio_set_msg(c->recv_aio, NULL);
    conn_take(c, m);
    for (int i = 0; i < RECV_BATCH && c->state != CONN_DEAD && !n->closing; i++) {
        if (conn_try_recv(c, &m) != 0) {
            break;
        }
        conn_take(c, m);
    }
    if (c->state != CONN_DEAD && !n->closing) {
        rlg_nng_conn_arm_recv(c);
    }
}

void rlg_nng_conn_on_sent(conn *c)
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
        rlg_nng_log(n, RLOG_LEVEL_DEBUG, "%s: send failed: %s",
                    rlg_nng_conn_name(c, name, sizeof name), nng_strerror(rv));
        rlg_nng_sendreq_done(n, s, RLOG_ENOCONN);
        rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        return;
    }
    nng_aio_set_msg(c->send_aio, NULL);
    rlg_nng_sendreq_done(n, s, 0);
    rlg_nng_conn_pump(c);
}

void rlg_nng_conn_on_pipe(conn *c)
{
    tn *n = c->n;
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    nng_mtx_lock(n->mtx);
    bool lost = c->lost;
    nng_mtx_unlock(n->mtx);
    if (lost) {
        rlg_nng_log(n, c->state == CONN_UP ? RLOG_LEVEL_INFO : RLOG_LEVEL_DEBUG,
                    "%s: connection lost%s", rlg_nng_conn_name(c, name, sizeof name),
                    c->state == CONN_UP ? "" : " during the handshake");
        rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
    }
}

int rlg_nng_conn_open_incoming(tn *n, uint64_t peer, conn **out)
{
    conn *c;
    int rc = rlg_nng_conn_new(n, false, &c);
    *out = NULL;
    if (rc != 0) {
        return rc;
    }
    c->peer_id = peer;
    c->token = rlg_nng_random64();
    int rv = NNG_EADDRINUSE;
    for (int i = 0; i < SUFFIX_TRIES && rv == NNG_EADDRINUSE; i++) {
        free(c->where);
        c->where = n->rdv.kind == ADDR_TCP
                       ? rlg_nng_str_printf("%s0", n->rdv.base)
                       : rlg_nng_str_printf("%s.%08" PRIx32, n->rdv.base, nng_random());
        if (c->where == NULL) {
            rlg_nng_conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
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
            c->where = rv == 0 ? rlg_nng_str_printf("%s%d", n->rdv.base, port) : NULL;
            rv = rv == 0 && c->where == NULL ? NNG_ENOMEM : rv;
        }
    }
    if (rv != 0) {
        rlg_nng_log(n, RLOG_LEVEL_WARN, "cannot listen at %s for server %" PRIu64 ": %s",
                    c->where ? c->where : n->rdv.base, peer, nng_strerror(rv));
        rlg_nng_conn_kill(c, RLOG_EIO, RLOG_EIO, AFTER_REDIAL);
        return rlg_nng_to_rlog(rv);
    }
    c->deadline = nng_clock() + n->cfg.handshake_ms;
    rlg_nng_conn_arm_recv(c);
    *out = c;
    return 0;
}
