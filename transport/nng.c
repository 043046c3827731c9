/*
 * The nng transport: the owner's loop and the transport table.
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * The owner's loop
 * ---------------------------------------------------------------------- */

static void ev_dispatch(ev *e)
{
    switch (e->kind) {
    case EV_SEND:
        rlg_nng_conn_on_sent(e->owner);
        break;
    case EV_RECV:
        rlg_nng_conn_on_recv(e->owner);
        break;
    case EV_PIPE:
        rlg_nng_conn_on_pipe(e->owner);
        break;
    case EV_DIALER:
        rlg_nng_dialer_on_aio(e->owner);
        break;
    case EV_RDV:
        rlg_nng_rdv_on_aio(e->n);
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
            rlg_nng_tls_explain(n, c, &snap);
            rlg_nng_log(n, RLOG_LEVEL_DEBUG, "%s: handshake timed out",
                        rlg_nng_conn_name(c, name, sizeof name));
            rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
        } else if (c->deadline < next) {
            next = c->deadline;
        }
    }
    nng_time g = rlg_nng_dialers_run(n, now);
    next = g < next ? g : next;
    g = rlg_nng_guests_run(n, now);
    next = g < next ? g : next;
    g = rlg_nng_tls_report(n, now, &snap);
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
        rlg_nng_conn_free(c);
    }
    while (n->dead_dialers != NULL) {
        dialer *d = n->dead_dialers;
        n->dead_dialers = d->next;
        rlg_nng_dialer_free(d);
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
        return rlg_nng_err(n, RLOG_EINVAL, "%s: init() first", what);
    }
    if (n->closing) {
        return rlg_nng_err(n, RLOG_ECLOSED, "%s: the transport is closing", what);
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
            return rlg_nng_err(n, RLOG_ENOMEM, "init: out of memory");
        }
        memcpy(n->known, c->known_ids, c->n_known_ids * sizeof *n->known);
        c->known_ids = n->known;
    }
    int rc = rlg_tls_load(c, &n->tls, n->t->errmsg, sizeof n->t->errmsg);
    if (rc == 0 && c->address[0] != '\0') {
        rc = rlg_nng_tls_url_check(n, "init: address", c->address);
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
        return rlg_nng_err(n, RLOG_EINVAL, "init: called twice");
    }
    rlog_transport_config c;
    int rc = rlg_transport_config_resolve(cfg, &c, t->errmsg, sizeof t->errmsg);
    if (rc != 0) {
        return rc;
    }
    size_t at;
    unsigned port;
    if (c.address[0] != '\0' && rlg_nng_addr_parse(c.address, &at, &port) == ADDR_BAD) {
        return rlg_nng_err(n, RLOG_EINVAL,
                           "init: server %" PRIu64 ": unsupported address '%s' (tcp://host:port, "
                           "tcp4://, tcp6://, ipc://path, inproc://name, abstract://name)",
                           c.server_id, c.address);
    }
    if (rlg_nng_ipc_too_long(c.address)) {
        return rlg_nng_ipc_too_long_err(n, "init", c.address);
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
        return rlg_nng_err(n, RLOG_ENOMEM, "init: out of memory");
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
        rlg_nng_ev_init(&r->gev, n, NULL, EV_GUEST);
    }
    int rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_PRE, rlg_nng_rdv_pipe_cb, n);
    if (rv == 0) {
        rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, rlg_nng_rdv_pipe_cb, n);
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
        return rlg_nng_err(n, RLOG_EINVAL, "listen: server %" PRIu64 " has no address",
                           n->cfg.server_id);
    }
    if (r->open) {
        return rlg_nng_err(n, RLOG_EBUSY, "listen: already listening at %s", n->address);
    }
    size_t at = 0;
    unsigned port = 0;
    r->kind = rlg_nng_addr_parse(addr, &at, &port);
    if (r->aio == NULL) {
        rlg_nng_ev_init(&r->ev, n, NULL, EV_RDV);
        if (nng_aio_alloc(&r->aio, rlg_nng_ev_aio_cb, &r->ev) != 0) {
            return rlg_nng_err(n, RLOG_ENOMEM, "listen at %s: out of memory", addr);
        }
    }
    int rv = nng_rep0_open(&r->sock);
    if (rv != 0) {
        return rlg_nng_err(n, rlg_nng_to_rlog(rv), "listen at %s: cannot open a rep0 socket: %s",
                           addr, nng_strerror(rv));
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
        local =
            r->kind == ADDR_TCP ? rlg_nng_str_printf("%.*s%d", (int)at, addr, bound) : strdup(addr);
        base = r->kind == ADDR_TCP ? rlg_nng_str_printf("%.*s", (int)at, addr) : strdup(addr);
        rv = local && base ? 0 : NNG_ENOMEM;
    }
    if (rv != 0) {
        nng_close(r->sock);
        free(local);
        free(base);
        return rlg_nng_err(n, rlg_nng_to_rlog(rv), "listen at %s: %s", addr,
                           rv == NNG_EADDRINUSE ? "address in use" : nng_strerror(rv));
    }
    free(n->address);
    n->address = local;
    free(r->base);
    r->base = base;
    r->open = true;
    rlg_nng_rdv_arm(n);
    rlg_nng_log(n, RLOG_LEVEL_INFO, "listening at %s", n->address);
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
    addr_kind kind = address != NULL ? rlg_nng_addr_parse(address, &at, &port) : ADDR_BAD;
    if (kind == ADDR_BAD || strlen(address) > RLOG_WIRE_ADDRESS_MAX ||
        (kind == ADDR_TCP && port == 0)) {
        return rlg_nng_err(n, RLOG_EINVAL,
                           "connect to server %" PRIu64 ": unsupported address '%s'", peer_id,
                           address ? address : "(null)");
    }
    if (rlg_nng_ipc_too_long(address)) {
        return rlg_nng_ipc_too_long_err(n, "connect", address);
    }
    if (peer_id == n->cfg.server_id) {
        return rlg_nng_err(n, RLOG_EINVAL, "connect to %s: server %" PRIu64 " is ourselves",
                           address, peer_id);
    }
    rc = rlg_nng_tls_url_check(n, "connect to", address);
    if (rc != 0) {
        return rc;
    }
    for (dialer *d = n->dialers; d != NULL; d = d->next) {
        bool same = strcmp(d->address, address) == 0;
        if (peer_id != 0 && d->want_id == peer_id) {
            if (same) {
                return 0;
            }
            return rlg_nng_err(n, RLOG_EBUSY,
                               "connect to server %" PRIu64
                               " at %s: already connecting to it at %s",
                               peer_id, address, d->address);
        }
        if (peer_id == 0 && d->want_id == 0 && same) {
            return 0;
        }
    }
    dialer *d = calloc(1, sizeof *d);
    if (d == NULL || (d->address = strdup(address)) == NULL) {
        free(d);
        return rlg_nng_err(n, RLOG_ENOMEM, "connect to %s: out of memory", address);
    }
    d->n = n;
    d->want_id = d->bound_id = peer_id;
    d->backoff_ms = n->cfg.backoff_min_ms;
    rlg_nng_ev_init(&d->ev, n, d, EV_DIALER);
    d->next = n->dialers;
    n->dialers = d;
    if (peer_id != 0 && rlg_nng_conn_up(n, peer_id) != NULL) {
        d->state = DIALER_IDLE;
    } else {
        rlg_nng_dialer_ask(d);
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
        return rlg_nng_err(n, RLOG_EINVAL, "disconnect: server id 0");
    }
    bool found = false;
    dialer *dn;
    for (dialer *d = n->dialers; d != NULL; d = dn) {
        dn = d->next;
        if (rlg_nng_dialer_aims_at(d, peer_id)) {
            found = true;
            rlg_nng_dialer_stop(d, RLOG_ENOCONN, RLOG_ECANCELED);
        }
    }
    conn *cn;
    for (conn *c = n->conns; c != NULL; c = cn) {
        cn = c->next;
        if (c->peer_id == peer_id && c->state != CONN_DEAD) {
            found = true;
            rlg_nng_conn_kill(c, RLOG_ENOCONN, RLOG_ECANCELED, AFTER_REDIAL);
        }
    }
    if (!found) {
        return rlg_nng_err(n, RLOG_ENOTFOUND, "disconnect: no connection to server %" PRIu64,
                           peer_id);
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
        return rlg_nng_err(n, RLOG_EINVAL, "send to server %" PRIu64 ": %s", peer_id,
                           msg ? "hello and redirect belong to the transport" : "NULL message");
    }
    conn *c = rlg_nng_conn_up(n, peer_id);
    if (c == NULL) {
        return rlg_nng_err(n, RLOG_ENOCONN, "send %s to server %" PRIu64 ": not connected",
                           rlog_msg_type_name(msg->type), peer_id);
    }
    sendreq *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return rlg_nng_err(n, RLOG_ENOMEM, "send to server %" PRIu64 ": out of memory", peer_id);
    }
    rc = rlg_nng_msg_to_nng(msg, n->cfg.max_message, &s->msg, &s->bytes);
    if (rc != 0) {
        char name[RLOG_WIRE_ADDRESS_MAX + 128];
        free(s);
        return rlg_nng_err(n, rc, "send %s to %s: %s%s", rlog_msg_type_name(msg->type),
                           rlg_nng_conn_name(c, name, sizeof name), rlog_strerror(rc),
                           rc == RLOG_ETOOBIG ? " (max_message)" : "");
    }
    s->r.cb = cb;
    s->r.data = data;
    while (c->qhead != NULL &&
           (c->qn + 1 > n->cfg.queue_messages || c->qbytes + s->bytes > n->cfg.queue_bytes)) {
        rlg_nng_sendreq_done(n, rlg_nng_conn_dequeue(c), RLOG_EFULL);
    }
    rlg_nng_conn_enqueue(c, s);
    rlg_nng_conn_pump(c);
    return 0;
}

static int tn_poll(rlog_transport *t, int timeout_ms)
{
    tn *n = t->impl;
    if (n->closing) {
        return -RLOG_ECLOSED;
    }
    if (!n->inited) {
        return -rlg_nng_err(n, RLOG_EINVAL, "poll: init() first");
    }
    if (n->in_poll) {
        return -rlg_nng_err(n, RLOG_EINVAL, "poll: called from inside a transport callback");
    }
    n->in_poll = true;
    n->ran = 0;
    nng_time until = timeout_ms < 0 ? TIME_NEVER : nng_clock() + (nng_time)timeout_ms;
    for (;;) {
        rlg_nng_ready_run(n);
        nng_time next = timers_run(n);
        rlg_nng_posts_take(n);
        rlg_nng_ready_run(n);
        ev *e;
        while (!n->closing && (e = rlg_nng_inbox_pop(n)) != NULL) {
            ev_dispatch(e);
            rlg_nng_ready_run(n);
            graveyard_free(n);
        }
        if (!n->closing) {
            next = timers_run(n); /* events may have added deadlines */
            rlg_nng_ready_run(n);
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
    rlg_nng_rdv_stop(n);
    while (n->dialers != NULL) {
        rlg_nng_dialer_stop(n->dialers, RLOG_ECLOSED, RLOG_ECLOSED);
    }
    while (n->conns != NULL) {
        rlg_nng_conn_kill(n->conns, RLOG_ECLOSED, RLOG_ECLOSED, AFTER_REDIAL);
    }
    nng_mtx_lock(n->mtx);
    n->shut = true;
    nng_mtx_unlock(n->mtx);
    rlg_nng_posts_take(n);
    rlg_nng_ready_run(n);
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
