/*
 * Segment shipping: asking a running leader for its status (rlog ship
 * status URL). A one-shot observer: an nng transport of its own with role
 * RLOG_ROLE_OBSERVER dials the leader, sends SHIP_STATUS_REQ once the
 * connection is up, and waits for the SHIP_STATUS answer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ship_internal.h"

typedef struct st_query {
    rlog_transport *t;
    uint64_t request_id;
    bool up, sent, done;
    int rc;
    rlog_ship_status *out;
    char *err;
    size_t errcap;
} st_query;

static void st_peer_up(void *data, uint64_t peer_id, const rlog_msg_hello *hello)
{
    st_query *q = data;
    q->up = true;
    if (hello->role != RLOG_ROLE_SHIP_LEADER) {
        q->done = true;
        q->rc = RLOG_EPROTO;
        snprintf(q->err, q->errcap, "the peer at '%s' is a %s, not a shipping leader",
                 hello->address, rlog_msg_role_name(hello->role));
        return;
    }
    rlog_msg m = {.type = RLOG_MSG_SHIP_STATUS_REQ};
    m.u.ship_status_req.request_id = q->request_id;
    int rc = q->t->send(q->t, peer_id, &m, NULL, NULL);
    q->sent = rc == 0;
}

static void st_peer_down(void *data, uint64_t peer_id, int reason)
{
    (void)data;
    (void)peer_id;
    (void)reason;
}

static void st_recv(void *data, uint64_t peer_id, const rlog_msg *m)
{
    st_query *q = data;
    (void)peer_id;
    if (q->done || m->type != RLOG_MSG_SHIP_STATUS ||
        m->u.ship_status.request_id != q->request_id) {
        return;
    }
    const rlog_msg_ship_status *s = &m->u.ship_status;
    rlog_ship_status *o = q->out;
    o->log_id = s->log_id;
    o->first_lsn = s->first_lsn;
    o->durable_lsn = s->durable_lsn;
    o->first_seq = s->first_seq;
    o->last_seq = s->last_seq;
    o->followers = calloc(s->n_followers ? s->n_followers : 1, sizeof *o->followers);
    q->done = true;
    if (o->followers == NULL) {
        q->rc = RLOG_ENOMEM;
        return;
    }
    o->n_followers = s->n_followers;
    for (uint32_t i = 0; i < s->n_followers; i++) {
        const rlog_msg_ship_peer *p = &s->followers[i];
        rlog_ship_follower_info *fi = &o->followers[i];
        fi->id = p->id;
        snprintf(fi->name, sizeof fi->name, "%s", p->name);
        fi->state = (int)p->state;
        fi->durable = p->durable;
        fi->sent = p->sent;
        fi->lag_records = p->lag_records;
        fi->lag_bytes = p->lag_bytes;
        fi->bytes_sent = p->bytes_sent;
        fi->connected = p->connected;
    }
    q->rc = 0;
}

int rlog_ship_status_query(const char *address, int timeout_ms, rlog_ship_status *out, char *err,
                           size_t errcap)
{
    return rlog_ship_status_query_config(address, 0, NULL, timeout_ms, out, err, errcap);
}

int rlog_ship_status_query_config(const char *address, uint64_t leader_id,
                                  const rlog_transport_config *tcfg, int timeout_ms,
                                  rlog_ship_status *out, char *err, size_t errcap)
{
    char dummy[1];
    if (err == NULL || errcap == 0) {
        err = dummy;
        errcap = sizeof dummy;
    }
    err[0] = '\0';
    if (out == NULL || address == NULL) {
        return RLOG_EINVAL;
    }
    memset(out, 0, sizeof *out);
    rlog_env *env = rlog_env_posix();
    rlog_transport_config cfg;
    if (tcfg != NULL) {
        cfg = *tcfg;
    } else {
        rlog_transport_config_init(&cfg);
    }
    if (cfg.server_id == 0 && cfg.tls_ca_file != NULL) {
        snprintf(err, errcap,
                 "with TLS the query needs a server id: its certificate must be named "
                 "rlog-<id> (docs/security.md)");
        return RLOG_EINVAL;
    }
    if (cfg.server_id == 0) {
        cfg.server_id = env->random(env) | 1u;
    }
    cfg.address = "";
    cfg.role = RLOG_ROLE_OBSERVER;
    if (cfg.handshake_ms == 0 && timeout_ms > 0) {
        /* a failed (TLS) handshake is reported at this deadline: within
         * the query's time */
        cfg.handshake_ms = timeout_ms / 2 > 100 ? (unsigned)timeout_ms / 2 : 100u;
    }
    st_query q = {NULL, env->random(env) | 1u, false, false, false, RLOG_ENOCONN, out, err, errcap};
    int rc = rlog_transport_nng_new(&q.t);
    if (rc != 0) {
        snprintf(err, errcap, "making a transport: %s", rlog_strerror(rc));
        return rc;
    }
    rlog_transport_events ev = {&q, st_peer_up, st_peer_down, st_recv};
    rc = q.t->init(q.t, &cfg, &ev);
    rc = rc ? rc : q.t->connect(q.t, leader_id, address);
    if (rc != 0) {
        snprintf(err, errcap, "%s", q.t->errmsg);
        q.t->close(q.t);
        return rc;
    }
    uint64_t deadline = env->now_ns(env) + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    while (!q.done) {
        uint64_t now = env->now_ns(env);
        if (now >= deadline) {
            break;
        }
        uint64_t left_ms = (deadline - now + 999999u) / 1000000u;
        if (q.t->poll(q.t, left_ms > 100 ? 100 : (int)left_ms) < 0) {
            break;
        }
    }
    q.t->close(q.t);
    if (!q.done) {
        snprintf(err, errcap, "no status from '%s' within %d ms (%s)", address, timeout_ms,
                 q.up ? "connected, no answer" : "could not connect");
        q.rc = RLOG_ENOCONN;
    }
    if (q.rc != 0) {
        rlog_ship_status_release(out);
    }
    return q.rc;
}

void rlog_ship_status_release(rlog_ship_status *st)
{
    if (st == NULL) {
        return;
    }
    free(st->followers);
    st->followers = NULL;
    st->n_followers = 0;
}
