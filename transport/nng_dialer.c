/*
 * The nng transport: dialers: rendezvous request, dedicated dial, backoff.
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * Dialers
 * ---------------------------------------------------------------------- */

bool rlg_nng_dialer_aims_at(const dialer *d, uint64_t id)
{
    return d->want_id != 0 ? d->want_id == id : d->bound_id == id;
}

static void dialer_close_req(dialer *d)
{
    tn *n = d->n;
    if (!d->req_open) {
        return;
    }
    rlg_nng_sock_end(n, d->aio, d->req, &d->ev, d->aio_busy, !d->answering);
    d->req_open = false;
    d->aio_busy = false;
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
    rlg_nng_log(d->n, level, "dialling %s: %s; retrying in about %u ms", d->address, buf,
                d->backoff_ms);
    dialer_close_req(d);
    dialer_backoff(d);
}

void rlg_nng_dialer_ask(dialer *d)
{
    tn *n = d->n;
    int rv = d->aio == NULL ? nng_aio_alloc(&d->aio, rlg_nng_ev_aio_cb, &d->ev) : 0;
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
    rv = rlg_nng_dial_start(n, d->req, d->address, d->want_id, &d->req_dl);
    if (rv != 0) {
        dialer_fail(d, RLOG_LEVEL_WARN, "cannot dial: %s", nng_strerror(rv));
        return;
    }
    nng_msg *m = NULL;
    if (rlg_nng_hello_to_nng(n, 0, &m) != 0) {
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
    if (rlg_nng_conn_new(n, true, &c) != 0) {
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
    int rv = rlg_nng_dial_start(n, c->sock, where, d->want_id, &c->dl);
    nng_msg *m = NULL;
    if (rv != 0) {
        rlg_nng_log(n, RLOG_LEVEL_WARN, "dialling %s: cannot dial %s: %s", d->address, where,
                    nng_strerror(rv));
        rlg_nng_conn_kill(c, RLOG_EIO, RLOG_EIO, AFTER_REDIAL);
        return;
    }
    if (rlg_nng_hello_to_nng(n, token, &m) != 0 || rlg_nng_conn_enqueue_internal(c, m) != 0) {
        rlg_nng_conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return;
    }
    rlg_nng_conn_arm_recv(c);
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
        where = rlg_nng_redirect_target(d->address, msg.u.redirect.address, &why);
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
    if (d->bound_id != 0 && rlg_nng_conn_up(d->n, d->bound_id) != NULL) {
        free(where); /* the peer came up through another connection */
        d->state = DIALER_IDLE;
        return;
    }
    dialer_connect(d, where, token);
}

void rlg_nng_dialer_on_aio(dialer *d)
{
    d->aio_busy = false;
    int rv = nng_aio_result(d->aio);
    nng_msg *m = nng_aio_get_msg(d->aio);
    nng_aio_set_msg(d->aio, NULL);
    if (rv != 0) {
        rlg_nng_tls_explain_dialer(d->n, d);
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

nng_time rlg_nng_dialers_run(tn *n, nng_time now)
{
    nng_time next = TIME_NEVER;
    for (dialer *d = n->dialers; d != NULL; d = d->next) {
        if (d->state == DIALER_LOST) {
            dialer_backoff(d);
        }
        bool up = d->bound_id != 0 && rlg_nng_conn_up(n, d->bound_id) != NULL;
        if (d->state == DIALER_IDLE && !up) {
            d->backoff_ms = n->cfg.backoff_min_ms;
            dialer_backoff(d);
        } else if (d->state == DIALER_WAIT && up) {
            d->state = DIALER_IDLE; /* one asking finishes (dialer_answer) */
        }
        if (d->state != DIALER_WAIT) {
            continue;
        }
        if (d->deadline <= now) {
            rlg_nng_dialer_ask(d);
        }
        if (d->state == DIALER_WAIT && d->deadline < next) {
            next = d->deadline;
        }
    }
    return next;
}

void rlg_nng_dialer_stop(dialer *d, int reason, int send_status)
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
        rlg_nng_conn_kill(c, reason, send_status, AFTER_REDIAL);
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

void rlg_nng_dialer_free(dialer *d)
{
    if (d->aio != NULL) {
        nng_aio_free(d->aio);
    }
    free(d->address);
    free(d);
}
