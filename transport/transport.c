/*
 * What every transport implementation shares: configuration defaults and
 * checks, the reconnect backoff, the rule that picks one connection per
 * peer, role names. No system or nng calls here.
 */
#include "transport/transport.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "os/names.h"
#include "rlog/wire.h"

void rlog_transport_config_init(rlog_transport_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
}

const char *rlog_msg_role_name(uint32_t role)
{
    static const char *const names[] = {[RLOG_ROLE_RAFT] = "raft",
                                        [RLOG_ROLE_SHIP_FOLLOWER] = "ship-follower",
                                        [RLOG_ROLE_SHIP_LEADER] = "ship-leader",
                                        [RLOG_ROLE_OBSERVER] = "observer"};
    return rlg_name_at(names, sizeof names / sizeof names[0], role);
}

int rlg_transport_config_resolve(const rlog_transport_config *in, rlog_transport_config *out,
                                 char *errmsg, size_t errcap)
{
    if (in == NULL) {
        snprintf(errmsg, errcap, "transport config: NULL");
        return RLOG_EINVAL;
    }
    *out = *in;
    if (out->address == NULL) {
        out->address = "";
    }
    if (out->server_id == 0) {
        snprintf(errmsg, errcap, "transport config: server_id must not be 0");
        return RLOG_EINVAL;
    }
    if (out->role < RLOG_ROLE_RAFT || out->role > RLOG_ROLE_OBSERVER) {
        snprintf(errmsg, errcap, "transport config: unknown role %" PRIu32 " (server %" PRIu64 ")",
                 out->role, out->server_id);
        return RLOG_EINVAL;
    }
    if (strlen(out->address) > RLOG_WIRE_ADDRESS_MAX) {
        snprintf(errmsg, errcap,
                 "transport config: address of %zu bytes exceeds %u (server %" PRIu64 ")",
                 strlen(out->address), RLOG_WIRE_ADDRESS_MAX, out->server_id);
        return RLOG_EINVAL;
    }
    if (out->max_message == 0) {
        out->max_message = RLOG_WIRE_MAX_BYTES_DEFAULT;
    }
    if (out->max_message < RLG_TRANSPORT_MAX_MESSAGE_MIN) {
        snprintf(errmsg, errcap,
                 "transport config: max_message %zu is below the minimum %u (server %" PRIu64 ")",
                 out->max_message, RLG_TRANSPORT_MAX_MESSAGE_MIN, out->server_id);
        return RLOG_EINVAL;
    }
    if (out->queue_messages == 0) {
        out->queue_messages = RLG_TRANSPORT_QUEUE_MESSAGES;
    }
    if (out->queue_bytes == 0) {
        out->queue_bytes = RLG_TRANSPORT_QUEUE_BYTES;
    }
    if (out->backoff_min_ms == 0) {
        out->backoff_min_ms = RLG_TRANSPORT_BACKOFF_MIN_MS;
    }
    if (out->backoff_max_ms == 0) {
        out->backoff_max_ms = out->backoff_min_ms > RLG_TRANSPORT_BACKOFF_MAX_MS
                                  ? out->backoff_min_ms
                                  : RLG_TRANSPORT_BACKOFF_MAX_MS;
    }
    if (out->backoff_min_ms > out->backoff_max_ms) {
        snprintf(errmsg, errcap,
                 "transport config: backoff_min_ms %u exceeds backoff_max_ms %u (server %" PRIu64
                 ")",
                 out->backoff_min_ms, out->backoff_max_ms, out->server_id);
        return RLOG_EINVAL;
    }
    if (out->handshake_ms == 0) {
        out->handshake_ms = RLG_TRANSPORT_HANDSHAKE_MS;
    }
    if (out->max_conns == 0) {
        out->max_conns = RLG_TRANSPORT_MAX_CONNS;
    }
    if (out->max_conns_per_host == 0) {
        out->max_conns_per_host = RLG_TRANSPORT_MAX_CONNS_PER_HOST;
    }
    if (out->reserve_conns == 0) {
        out->reserve_conns = RLG_TRANSPORT_RESERVE_CONNS;
    }
    if (out->n_known_ids > 0 && out->known_ids == NULL) {
        snprintf(errmsg, errcap,
                 "transport config: %zu known_ids but a NULL array (server %" PRIu64 ")",
                 out->n_known_ids, out->server_id);
        return RLOG_EINVAL;
    }
    int tls =
        (out->tls_cert_file != NULL) + (out->tls_key_file != NULL) + (out->tls_ca_file != NULL);
    if (tls != 0 && tls != 3) {
        snprintf(errmsg, errcap,
                 "transport config: TLS needs tls_cert_file, tls_key_file and tls_ca_file "
                 "together (server %" PRIu64 ")",
                 out->server_id);
        return RLOG_EINVAL;
    }
    return 0;
}

bool rlg_transport_id_known(const rlog_transport_config *cfg, uint64_t id)
{
    for (size_t i = 0; i < cfg->n_known_ids; i++) {
        if (cfg->known_ids[i] == id) {
            return true;
        }
    }
    return false;
}

unsigned rlg_transport_backoff_next(unsigned cur_ms, unsigned min_ms, unsigned max_ms)
{
    unsigned next = cur_ms > max_ms / 2 ? max_ms : cur_ms * 2;
    return next < min_ms ? min_ms : next;
}

unsigned rlg_transport_backoff_jitter(unsigned ms, uint32_t random)
{
    unsigned half = ms / 2;
    return half + (unsigned)(random % ((uint32_t)(ms - half) + 1u));
}

bool rlg_transport_newer_wins(uint64_t self_id, uint64_t peer_id, bool cur_outgoing,
                              bool cand_outgoing)
{
    if (!cur_outgoing && !cand_outgoing) {
        return true;
    }
    if (cur_outgoing && cand_outgoing) {
        return false;
    }
    /* Crossing: cand wins when its dialler has the smaller id. */
    return cand_outgoing ? self_id < peer_id : peer_id < self_id;
}

bool rlg_transport_hello_refused(uint64_t self_id, int rc, const rlog_msg *msg, const char *err,
                                 char *why, size_t cap)
{
    if (rc != 0) {
        snprintf(why, cap, "does not decode: %s", err);
    } else if (msg->type != RLOG_MSG_HELLO) {
        snprintf(why, cap, "expected a hello, got %s", rlog_msg_type_name(msg->type));
    } else if (msg->u.hello.protocol_version < RLOG_WIRE_PROTOCOL) {
        snprintf(why, cap, "protocol version %" PRIu32 " (this build speaks %u)",
                 msg->u.hello.protocol_version, RLOG_WIRE_PROTOCOL);
    } else if (msg->u.hello.server_id == 0 || msg->u.hello.server_id == self_id) {
        snprintf(why, cap, "hello announces server %" PRIu64 " (0 or our own id)",
                 msg->u.hello.server_id);
    } else {
        return false;
    }
    return true;
}

bool rlg_limits_guest_refused(const rlog_transport_config *cfg, unsigned guests,
                              unsigned guests_from_host)
{
    return guests >= cfg->max_conns + cfg->reserve_conns ||
           guests_from_host >= cfg->max_conns_per_host + cfg->reserve_conns;
}

bool rlg_limits_guests_over(const rlog_transport_config *cfg, unsigned guests)
{
    return guests > cfg->max_conns;
}

bool rlg_limits_host_over(const rlog_transport_config *cfg, unsigned guests_from_host)
{
    return guests_from_host > cfg->max_conns_per_host;
}

bool rlg_limits_expired(const rlog_transport_config *cfg, uint64_t since_ms, uint64_t now_ms)
{
    return since_ms + cfg->handshake_ms <= now_ms;
}

const char *rlg_limits_admit(const rlog_transport_config *cfg, unsigned incoming,
                             unsigned from_host, bool known, bool up, const char *host_name,
                             char *why, size_t cap)
{
    unsigned limit = cfg->max_conns + (known ? cfg->reserve_conns : 0);
    if (!up && incoming >= limit) {
        snprintf(why, cap, "%u incoming connections, the limit for %s peer is %u", incoming,
                 known ? "a known" : "an unknown", limit);
        return why;
    }
    if (!up && !known && from_host >= cfg->max_conns_per_host) {
        snprintf(why, cap, "%u incoming connections from host %s (max_conns_per_host %u)",
                 from_host, host_name, cfg->max_conns_per_host);
        return why;
    }
    return NULL;
}
