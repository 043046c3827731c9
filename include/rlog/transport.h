/*
 * rlog — the transport: a table of functions that moves wire messages
 * (rlog/wire.h) between servers, in the shape of libraft's raft_io /
 * raft_uv_transport. Two implementations: nng (tcp://, ipc://, inproc://;
 * transport/nng*.c) and the simulator's deterministic network (sim/simnet.c,
 * rlog/sim.h). Everything above (the Raft adapter, segment shipping) talks
 * to the table only, which is what lets the simulator run it.
 *
 * Model. A transport is one endpoint with a server id, an address (may be
 * "" for an endpoint that only dials) and a role (rlog_msg_role). It keeps
 * at most one connection per peer server id. A connection starts with a
 * hello in each direction (server id, address, protocol version, role);
 * only then is the peer "up" and may messages flow. Peers come from two
 * places:
 *   - listen(): peers that dial our address;
 *   - connect(id, address): we dial them, and keep redialling with
 *     backoff whenever the connection is lost, until disconnect() or close.
 * Messages on one connection arrive in order, each at most once; across a
 * reconnection (and in the simulator, under network faults) messages may
 * be lost, so protocols above must resend what is not acknowledged.
 *
 * One connection per peer id. When a second connection to the same peer
 * completes its hellos, one of the two is closed (peer_down for the old
 * one, then peer_up, when the new one wins): between two connections that
 * the peer dialled the newer wins (a restarted peer is not locked out by
 * its stale connection); between two we dialled the older wins; between
 * crossing connections (both sides dialled at once) the one dialled by
 * the smaller server id wins, on both ends alike. A connect()ed peer that
 * is up through a connection it dialled is not redialled until that
 * connection is lost.
 *
 * Threads. Every callback (events and send completions) runs on the
 * OWNER'S thread, inside poll() (or inside close()): never on a thread of
 * nng's, and never nested in another callback of the same transport. All
 * functions except post() must be called from the owner's thread (the
 * thread that calls poll); post() may be called from any thread to hand
 * work to it. Callbacks may call any function of the table, close()
 * included; poll() called from inside a callback fails with -RLOG_EINVAL.
 *
 * Errors: functions return 0 or an RLOG_E* code and leave a message in
 * t->errmsg naming the peer and address.
 */
#ifndef RLOG_TRANSPORT_H
#define RLOG_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/common.h"
#include "rlog/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RLOG_TRANSPORT_ERRMSG_SIZE 256

typedef struct rlog_transport rlog_transport;

/* Events delivered by poll() on the owner's thread. Any member may be NULL.
 * A peer is identified by the server id from its hello. */
typedef struct rlog_transport_events {
    void *data;
    /* The connection to `peer_id` is established and both hellos were
     * exchanged. `hello` is the peer's (valid during the call; its flags,
     * which carried the rendezvous token, read 0). */
    void (*peer_up)(void *data, uint64_t peer_id, const rlog_msg_hello *hello);
    /* The connection to `peer_id` is gone (reason: RLOG_ENOCONN for a
     * disconnect or reset, RLOG_EPROTO for a peer that broke the protocol,
     * RLOG_ECLOSED at close). Sends queued to it fail with the same code.
     * A connect()ed peer is redialled. */
    void (*peer_down)(void *data, uint64_t peer_id, int reason);
    /* A message from an up peer. `msg` (and the bytes it points into) is
     * valid only during the call. Hellos are consumed by the transport and
     * never delivered here. */
    void (*recv)(void *data, uint64_t peer_id, const rlog_msg *msg);
} rlog_transport_events;

/* Completion of a send: 0 once the message was handed to the connection
 * (like nng: accepted for sending, not delivered), or RLOG_ENOCONN (no
 * connection to that peer, or it was lost before the message left; a
 * reset for a protocol breach reports peer_down's RLOG_EPROTO),
 * RLOG_EFULL (dropped from a full queue: oldest first), RLOG_ECANCELED
 * (disconnect()), RLOG_ECLOSED (the transport is closing). */
typedef void (*rlog_transport_send_cb)(void *data, int status);

typedef struct rlog_transport_config {
    uint64_t server_id;  /* ours, non-zero */
    const char *address; /* where listen() accepts; "" or NULL: dial only */
    uint32_t role;       /* rlog_msg_role sent in our hellos */
    /* Largest message accepted from the network in bytes; bigger ones are
     * refused (the connection is reset). 0 = RLOG_WIRE_MAX_BYTES_DEFAULT. */
    size_t max_message;
    /* Per-peer send queue limit, messages (0 = 64) and bytes (0 = 64 MiB):
     * a send beyond either drops the OLDEST queued message with RLOG_EFULL.
     * Counted are the messages the connection has not taken yet. (The nng
     * transport also receives up to min(queue_messages, queue_bytes /
     * max_message) messages ahead per connection, at least 1.) */
    unsigned queue_messages;
    size_t queue_bytes;
    /* Reconnect backoff in milliseconds: first retry after backoff_min_ms
     * (0 = 10), doubling up to backoff_max_ms (0 = 1000), with jitter. */
    unsigned backoff_min_ms, backoff_max_ms;
    rlog_logger_fn logger; /* NULL = silent */
    void *logger_data;
    /* Optional "poll me" hook for owners that run poll() from an event
     * loop instead of blocking in it (the Raft adapter, rlog/raft_io.h):
     * called from ANY thread (nng's threads, a thread calling post(), the
     * owner) each time poll() has new events to run. It must be
     * thread-safe, return quickly and not call into the transport (post a
     * poll() to the owner's loop instead). Timers of the transport's own
     * (redial backoff, handshake timeouts) do not call it: such owners
     * also poll() periodically. NULL = none. */
    void (*wake)(void *wake_data);
    void *wake_data;

    /* --- Limits against strangers (docs/security.md). A zero field means
     * the default; the simulator's network applies them too, without TLS
     * (docs/simulator.md, "Network"). --- */
    /* A connection that has not completed its hello within this many ms is
     * closed: a connection to the public address lives at most this long
     * (it only asks for a dedicated address), a dedicated address waits
     * this long for its dialer, a dialer this long for each answer.
     * 0 = 5000. */
    unsigned handshake_ms;
    /* Incoming connections held at once: connections to the public address
     * plus dedicated connections (in handshake or up). 0 = 256. When the
     * public address is full, the oldest connection there that has not
     * spoken is closed to admit a new one; a hello that would need a
     * dedicated connection beyond the cap is refused. */
    unsigned max_conns;
    /* The same, per remote host (IP address; every ipc/inproc peer counts
     * as one host). 0 = 32. */
    unsigned max_conns_per_host;
    /* Dedicated connections beyond max_conns kept for known peers: ids we
     * connect()ed and those listed in known_ids. 0 = 16. Without TLS a
     * peer id is a claim (anyone may announce a known id). */
    unsigned reserve_conns;
    const uint64_t *known_ids; /* borrowed during init (copied); may be NULL */
    size_t n_known_ids;

    /* --- TLS with mutual authentication (docs/security.md). Set all three
     * to turn it on: every address (listen and connect) must then be
     * tls+tcp:// (tls+tcp4://, tls+tcp6://), every peer must present a
     * certificate signed by a CA in tls_ca_file, and a peer's server id is
     * bound to its certificate: the certificate's subject alternative DNS
     * name (or, without one, its common name) must be "rlog-<id>" in
     * decimal (e.g. "rlog-7"). Our own certificate must be named after our
     * server_id likewise. PEM files, read once by init() (paths copied).
     * All NULL: no TLS (tls+tcp:// addresses are refused). --- */
    const char *tls_cert_file; /* our certificate (may hold its chain) */
    const char *tls_key_file;  /* its private key, unencrypted */
    const char *tls_ca_file;   /* the CA certificate(s) peers must chain to */
} rlog_transport_config;

/* Fills defaults (everything zero/NULL). */
RLOG_API void rlog_transport_config_init(rlog_transport_config *cfg);

struct rlog_transport {
    int version; /* 1 */
    void *impl;
    /* Message of the last failing call on this transport (owner thread). */
    char errmsg[RLOG_TRANSPORT_ERRMSG_SIZE];

    /* Sets identity and limits and installs the event callbacks (the
     * table copies cfg and ev; cfg->address is copied). Once, first. */
    int (*init)(rlog_transport *t, const rlog_transport_config *cfg,
                const rlog_transport_events *ev);
    /* Starts accepting peers at cfg->address (RLOG_EINVAL without one;
     * RLOG_EBUSY when the address is in use, RLOG_EIO otherwise). */
    int (*listen)(rlog_transport *t);
    /* Dials `address` and keeps the connection up (redialling with backoff)
     * until disconnect(). `peer_id` is the id we expect in its hello (a
     * server that announces another id is refused and redialled); 0
     * accepts any and the peer is then known by the id it announces (see
     * peer_up). Returns at once; peer_up follows when connected. Errors:
     * RLOG_EINVAL (malformed or unsupported address, our own id),
     * RLOG_EBUSY (already connecting to peer_id at another address;
     * connecting again to the same address is a no-op). */
    int (*connect)(rlog_transport *t, uint64_t peer_id, const char *address);
    /* Drops the connection to peer_id and stops redialling it. Queued
     * sends fail with RLOG_ECANCELED; peer_down (RLOG_ENOCONN) follows from
     * a later poll(). A peer that dialled us may dial again. RLOG_ENOTFOUND
     * when there is neither a connection nor a dialer for peer_id. */
    int (*disconnect)(rlog_transport *t, uint64_t peer_id);
    /* Queues `msg` (encoded before the call returns: msg and what it points
     * to are borrowed for the call only) to an up peer. cb (may be NULL)
     * fires later from poll(), exactly once, unless send returns non-zero
     * (RLOG_ENOCONN: peer not up; RLOG_EINVAL: bad message; RLOG_ETOOBIG:
     * encodes to more than OUR max_message; RLOG_ENOMEM; RLOG_ECLOSED),
     * in which case it never fires. Completions come in the order of the
     * sends, except that EFULL drops are reported when they happen. */
    int (*send)(rlog_transport *t, uint64_t peer_id, const rlog_msg *msg, rlog_transport_send_cb cb,
                void *data);
    /* Runs pending callbacks on the calling (owner) thread. Waits up to
     * timeout_ms (0: do not wait; < 0: until something happens) for the
     * first, then runs all that are ready. Returns the number run (>= 0),
     * or RLOG_ECLOSED as a negative value once closed. The simulator's
     * implementation never waits: its time moves only when the simulation
     * advances it. */
    int (*poll)(rlog_transport *t, int timeout_ms);
    /* Thread-safe: runs fn(arg) on the owner's thread from a later poll(),
     * and wakes a poll() that is waiting. Every fn accepted runs exactly
     * once (those still pending run inside close). RLOG_ECLOSED once close
     * has begun; the caller must not call post() after close returns (t is
     * freed): stop other threads first. RLOG_ENOMEM. */
    int (*post)(rlog_transport *t, void (*fn)(void *arg), void *arg);
    /* Closes every connection and the listener; pending sends fail with
     * RLOG_ECLOSED (their callbacks and peer_down run inside close, on the
     * owner thread); no callback runs after close returns. Then frees the
     * transport (t is invalid after the call). Called from a callback, the
     * memory is released when the poll() that ran the callback returns. */
    void (*close)(rlog_transport *t);

    /* --- added after version 1's first draft; may be NULL in tables that
     * have no use for it (then cfg->address is the answer) --- */
    /* The address listen() accepts at, with the port the system chose when
     * cfg->address asked for tcp port 0 ("tcp://127.0.0.1:0"); this is also
     * the address sent in our hellos. cfg->address before listen(); "" for
     * a dial-only endpoint. Valid until the next listen() or close. */
    const char *(*local_address)(rlog_transport *t);
};

/* ---- the nng implementation (transport/nng*.c) ----
 * One pair1 socket in monogamous mode per peer: pair1's polyamorous mode
 * drops messages silently under load. A listening address accepts any
 * number of peers by a rendezvous (docs/wire.md, "Connections"): a dialer's
 * hello on the public address (a rep0 socket) is answered with the address
 * of a fresh pair1 socket reserved for it, plus a one-time token it must
 * present there. NNG_OPT_RECVMAXSZ is set to max_message on every socket
 * (the rendezvous socket: 4 KiB). Addresses: tcp://, tcp4://, tcp6://
 * (host:port; port 0 to listen on one the system picks, see
 * local_address), tls+tcp:// (and tls+tcp4://, tls+tcp6://: only, and
 * always, with the TLS files of the config; docs/security.md), ipc://,
 * inproc://, abstract:// (dedicated addresses are
 * the base plus ".<8 hex digits>": keep ipc paths 9 bytes under the
 * system's limit). A message over max_message is refused by the receiver:
 * over tcp and ipc nng closes the connection itself (peer_down
 * RLOG_ENOCONN on both ends); over inproc the decoder refuses it
 * (RLOG_EPROTO at the receiver). Returns RLOG_ENOMEM or 0; *out is then
 * ready for init() (or close()). */
RLOG_API int rlog_transport_nng_new(rlog_transport **out);

/* "raft", "ship-follower", "ship-leader", "observer"; "unknown" for other
 * values. Static string. */
RLOG_API const char *rlog_msg_role_name(uint32_t role);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_TRANSPORT_H */
