/*
 * Internal helpers for the transport implementations: the defaults, checks
 * and rules that rlog/transport.h promises of every one. transport/nng.c
 * and the simulator's network (sim/simnet.c) both call them, so the
 * simulator runs the real transport's rules. The public API is
 * rlog/transport.h.
 */
#ifndef RLG_TRANSPORT_TRANSPORT_H
#define RLG_TRANSPORT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/transport.h"

/* Defaults of rlog_transport_config (a zero field means "the default"). */
#define RLG_TRANSPORT_QUEUE_MESSAGES     64u
#define RLG_TRANSPORT_QUEUE_BYTES        (64u * 1024u * 1024u)
#define RLG_TRANSPORT_BACKOFF_MIN_MS     10u
#define RLG_TRANSPORT_BACKOFF_MAX_MS     1000u
#define RLG_TRANSPORT_HANDSHAKE_MS       5000u
#define RLG_TRANSPORT_MAX_CONNS          256u
#define RLG_TRANSPORT_MAX_CONNS_PER_HOST 32u
#define RLG_TRANSPORT_RESERVE_CONNS      16u
/* Smallest max_message accepted: a hello with the longest address fits. */
#define RLG_TRANSPORT_MAX_MESSAGE_MIN 2048u

/*
 * Checks `in` and writes to `out` a copy with every default filled in
 * (out->address is the caller's pointer, not a copy; NULL becomes "").
 * Returns 0, or RLOG_EINVAL with a message in errmsg (errcap bytes) naming
 * the field: server_id 0, an unknown role, max_message below
 * RLG_TRANSPORT_MAX_MESSAGE_MIN, backoff_min_ms above backoff_max_ms, an
 * address longer than RLOG_WIRE_ADDRESS_MAX bytes, known ids without an
 * array, some but not all of the three TLS files. known_ids and the TLS
 * paths are the caller's pointers (copy them to keep them).
 */
int rlg_transport_config_resolve(const rlog_transport_config *in, rlog_transport_config *out,
                                 char *errmsg, size_t errcap);

/* Whether `id` is in cfg->known_ids. */
bool rlg_transport_id_known(const rlog_transport_config *cfg, uint64_t id);

/* The next backoff after a failed attempt: twice `cur_ms`, at most max_ms
 * (and at least min_ms). */
unsigned rlg_transport_backoff_next(unsigned cur_ms, unsigned min_ms, unsigned max_ms);

/* The wait actually used for a backoff of `ms`: uniform in [ms/2, ms],
 * drawn from `random` (any 32-bit random value). */
unsigned rlg_transport_backoff_jitter(unsigned ms, uint32_t random);

/*
 * One connection per peer: which of two connections to the same peer
 * survives. `cur` is the connection that is up (or one we dialled whose
 * handshake is under way), `cand` one whose handshake just completed;
 * *_outgoing says that we dialled it. Returns true when cand replaces cur:
 *  - both dialled by the peer: the newer wins (the peer restarted or
 *    redialled; the old one is stale);
 *  - both dialled by us: the older wins (two dialers reached one server);
 *  - crossing (one each way, both sides dialled at once): the connection
 *    dialled by the smaller server id wins. Both ends apply the same rule,
 *    so they keep the same connection.
 */
bool rlg_transport_newer_wins(uint64_t self_id, uint64_t peer_id, bool cur_outgoing,
                              bool cand_outgoing);

/*
 * The checks every hello we receive must pass, in the nng transport and in
 * the simulator's network alike, wherever it arrives (the public address,
 * either end of a dedicated connection): it decoded (rc 0; else err is the
 * decoder's message), is a hello, speaks our protocol and announces a
 * server id that is neither 0 nor ours (self_id). Returns true with the
 * reason in why when it fails one; the caller adds its own checks.
 */
bool rlg_transport_hello_refused(uint64_t self_id, int rc, const rlog_msg *msg, const char *err,
                                 char *why, size_t cap);

/*
 * Limits against strangers (docs/security.md, "Limits"): the decisions, as
 * pure functions of counts that each implementation keeps of its own
 * connections, so that the nng transport (transport/nng_limits.c) and the
 * simulator's network (sim/simnet.c) apply the same rules. `cfg` is
 * resolved (rlg_transport_config_resolve: no zero limits). A "guest" is a
 * connection to the public (listening) address that has not yet been
 * admitted as a peer's connection: on nng a pipe of the rendezvous socket,
 * in the simulator a connection that has not sent its hello.
 */
/* A guest arriving: refused at once when the listener already holds
 * max_conns + reserve_conns guests, or max_conns_per_host + reserve_conns
 * from the newcomer's host (`guests_from_host`). Else it is held, and the
 * caps below are restored by closing silent guests, oldest first. */
bool rlg_limits_guest_refused(const rlog_transport_config *cfg, unsigned guests,
                              unsigned guests_from_host);
/* Whether the oldest silent guest must be closed: more than max_conns in
 * all. */
bool rlg_limits_guests_over(const rlog_transport_config *cfg, unsigned guests);
/* Whether the oldest silent guest of a host holding `guests_from_host`
 * guests must be closed: more than max_conns_per_host. */
bool rlg_limits_host_over(const rlog_transport_config *cfg, unsigned guests_from_host);
/* Whether a guest that arrived at since_ms (any millisecond clock) is past
 * the handshake deadline at now_ms: it is then closed, spoken or not. */
bool rlg_limits_expired(const rlog_transport_config *cfg, uint64_t since_ms, uint64_t now_ms);
/*
 * A peer's hello asks for a connection of its own (nng: a dedicated
 * address). `incoming` counts the listener's incoming connections in
 * handshake or up, `from_host` those of them from the hello's host (both
 * without a connection the newcomer replaces), `known` says whether the
 * peer's id is known (connect()ed, or in known_ids), `up` whether it is up
 * already (it may always redial: its new connection replaces the old).
 * Returns NULL to admit; else why (written to why, cap bytes), e.g. "256
 * incoming connections, the limit for an unknown peer is 256". host_name
 * names the host in that message.
 */
const char *rlg_limits_admit(const rlog_transport_config *cfg, unsigned incoming,
                             unsigned from_host, bool known, bool up, const char *host_name,
                             char *why, size_t cap);

#endif
