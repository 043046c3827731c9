/*
 * The nng transport: the rendezvous (the public address).
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <inttypes.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * The rendezvous (public address)
 * ---------------------------------------------------------------------- */

void rlg_nng_rdv_arm(tn *n)
{
    rdv *r = &n->rdv;
    r->replying = false;
    r->busy = true;
    nng_aio_set_timeout(r->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(r->ctx, r->aio);
}

/* A newer rendezvous of the same peer replaces its oldest connection in
 * handshake (rlg_nng_conns_admit chose it). */
static void replace_handshake(tn *n, conn *old)
{
    char name[RLOG_WIRE_ADDRESS_MAX + 128];
    rlg_nng_log(n, RLOG_LEVEL_INFO, "%s: a newer rendezvous replaces this handshake",
                rlg_nng_conn_name(old, name, sizeof name));
    nng_stat *snap = NULL;
    rlg_nng_tls_explain(n, old, &snap);
    if (snap != NULL) {
        nng_stats_free(snap);
    }
    rlg_nng_conn_kill(old, RLOG_ENOCONN, RLOG_ENOCONN, AFTER_REDIAL);
}

/* A dialer's hello on the public address: returns the redirect to send
 * back, or NULL (logged) for a request that is refused. */
static nng_msg *rdv_request(tn *n, nng_msg *m)
{
    char who[96], err[256], why[320];
    rlog_msg msg;
    nng_msg *reply = NULL;
    host h;
    rlg_nng_pipe_name(nng_msg_get_pipe(m), who, sizeof who);
    if (!rlg_nng_guest_request(n, nng_msg_get_pipe(m), &h, false)) {
        rlg_nng_log(n, RLOG_LEVEL_DEBUG,
                    "rendezvous at %s: ignored a request from %s (closed, or "
                    "not its first)",
                    n->address, who);
        return NULL;
    }
    int rc = rlog_msg_decode(nng_msg_body(m), nng_msg_len(m), RDV_MAX_BYTES, &msg, err, sizeof err);
    why[0] = '\0';
    if (!rlg_transport_hello_refused(n->cfg.server_id, rc, &msg, err, why, sizeof why)) {
        conn *old = NULL;
        rlg_nng_conns_admit(n, msg.u.hello.server_id, &h, why, sizeof why, &old);
        if (old != NULL) {
            replace_handshake(n, old);
        }
    }
    if (why[0] != '\0') {
        rlg_nng_log(n, RLOG_LEVEL_WARN,
                    "rendezvous at %s: refused a request (%zu bytes) from %s: %s", n->address,
                    nng_msg_len(m), who, why);
        if (rc == 0) {
            rlog_msg_free(&msg);
        }
        return NULL;
    }
    uint64_t peer = msg.u.hello.server_id;
    rlog_msg_free(&msg);
    conn *c;
    if (rlg_nng_conn_open_incoming(n, peer, &c) != 0) {
        return NULL;
    }
    c->h = h;
    rlog_msg out;
    memset(&out, 0, sizeof out);
    out.type = RLOG_MSG_REDIRECT;
    out.u.redirect.address = c->where;
    out.u.redirect.token = c->token;
    size_t len;
    if (rlg_nng_msg_to_nng(&out, RDV_MAX_BYTES, &reply, &len) != 0) {
        rlg_nng_conn_kill(c, RLOG_ENOMEM, RLOG_ENOMEM, AFTER_REDIAL);
        return NULL;
    }
    rlg_nng_log(n, RLOG_LEVEL_DEBUG, "rendezvous at %s: server %" PRIu64 " from %s sent to %s",
                n->address, peer, who, c->where);
    rlg_nng_guest_request(n, nng_msg_get_pipe(m), &h, true);
    return reply;
}

void rlg_nng_rdv_on_aio(tn *n)
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
        rlg_nng_rdv_arm(n);
        return;
    }
    if (rv != 0) {
        rlg_nng_log(n, RLOG_LEVEL_WARN, "rendezvous at %s: receive failed: %s", n->address,
                    nng_strerror(rv));
        if (rv != NNG_ECLOSED) {
            rlg_nng_rdv_arm(n);
        }
        return;
    }
    nng_msg *reply = rdv_request(n, m);
    nng_msg_free(m);
    if (reply == NULL) {
        rlg_nng_rdv_arm(n);
        return;
    }
    r->replying = true;
    r->busy = true;
    nng_aio_set_msg(r->aio, reply);
    nng_aio_set_timeout(r->aio, n->cfg.handshake_ms);
    nng_ctx_send(r->ctx, r->aio);
}

void rlg_nng_rdv_stop(tn *n)
{
    rdv *r = &n->rdv;
    if (!r->open) {
        return;
    }
    rlg_nng_sock_end(n, r->aio, r->sock, &r->ev, r->busy, r->replying);
    r->open = false;
    r->busy = false;
    nng_mtx_lock(n->mtx); /* the socket is closed: no pipe callback runs now */
    rlg_nng_ev_unlink_locked(&r->gev);
    r->nguests = 0;
    nng_mtx_unlock(n->mtx);
}
