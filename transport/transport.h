/*
 * Internal helpers for the transport implementations: the defaults, checks
 * and rules that rlog/transport.h promises of every one. transport/nng.c
 * calls them; the simulator's sim/simnet.c does not yet (it has its own
 * defaults, backoff and replacement rule). The public API is
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

#endif
