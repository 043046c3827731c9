/*
 * rlog — segment shipping: a leader serves its log's segments to followers,
 * which keep byte-identical copies (docs/shipping.md is the protocol).
 *
 * A follower connects with (log id, its position, the checksum of its last
 * record); the leader answers with the exact bytes of its segments from
 * there — sealed segments first, then the live tail as it becomes durable on
 * the leader. The follower verifies every record, writes it through log/
 * into segments with the same boundaries, syncs, and acknowledges its
 * durable position. Its directory is a valid rlog directory (and a Raft
 * storage directory when the leader's is one: side files such as snapshots
 * are shipped first) whose sealed segments are byte-identical to the
 * leader's. Only bytes durable on the leader are ever sent, so a follower
 * never holds a record the leader could still lose.
 *
 * Both sides run on a transport (rlog/transport.h) and are driven by their
 * owner's loop: poll() runs the transport's callbacks and the shipping
 * state machine on the calling thread. Nothing here starts a thread or
 * sleeps: with the simulator's transport (whose poll never waits) and the
 * simulated vfs/env in the options, both sides run single-threaded and
 * deterministically (every clock read goes through the options' env, every
 * file through the log's or the options' vfs, every random number through
 * the env). The leader reads its log through the log's thread-safe calls,
 * so another thread may append to the same log handle while the leader
 * ships it.
 *
 * Errors: 0 or an RLOG_E* code; *_errmsg() names what and where.
 */
#ifndef RLOG_SHIP_H
#define RLOG_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/common.h"
#include "rlog/log.h"
#include "rlog/transport.h"
#include "rlog/vfs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlog_ship_leader rlog_ship_leader;
typedef struct rlog_ship_follower rlog_ship_follower;

/* Where a follower stands (as it sees itself, or as its leader sees it).
 * Stable codes: they travel in status messages. */
typedef enum rlog_ship_state {
    RLOG_SHIP_CONNECTING = 0,  /* no session (dialling, or waiting to redial) */
    RLOG_SHIP_CATCHING_UP = 1, /* receiving bytes older than the leader's durable end */
    RLOG_SHIP_TAILING = 2,     /* caught up: receiving the live tail */
    RLOG_SHIP_SNAPSHOT = 3,    /* receiving side files (snapshots) before data */
    RLOG_SHIP_TRUNCATING = 4,  /* diverged: cutting its log where the leader said */
    RLOG_SHIP_REFUSED = 5,     /* refused for good (another log, ...): stopped */
    RLOG_SHIP_FAILED = 6,      /* follower only: its own disk failed; free and reopen */
} rlog_ship_state;

/* "catching-up" etc.; "unknown" for other values. Static string. */
RLOG_API const char *rlog_ship_state_name(int state);

/* One follower as its leader sees it. */
typedef struct rlog_ship_follower_info {
    uint64_t id;          /* follower's server id (from its hello) */
    char name[128];       /* the address it announced (may be ""), truncated */
    int state;            /* rlog_ship_state */
    uint64_t durable;     /* last LSN the follower acknowledged durable */
    uint64_t sent;        /* last LSN sent to it (this session) */
    uint64_t lag_records; /* leader durable LSN - follower durable LSN */
    uint64_t lag_bytes;   /* segment bytes between the two durable positions */
    uint64_t bytes_sent;  /* segment and side-file bytes sent, this session */
    uint64_t resends;     /* times the send position went back (gap, timeout) */
    bool connected;
} rlog_ship_follower_info;

typedef struct rlog_ship_leader_options {
    rlog_env *env;            /* clock; NULL = posix. Borrowed. */
    size_t window_bytes;      /* unacknowledged bytes in flight per follower; 0 = 8 MiB */
    unsigned window_messages; /* ... and messages; 0 = 32 (stay below the transport's queue) */
    size_t chunk_bytes;       /* largest data payload per message; 0 = 1 MiB. A record
                                 larger than that is sent alone in one message. */
    unsigned resend_ms;       /* unacknowledged data is resent after this long; 0 = 1000 */
    unsigned heartbeat_ms;    /* an idle session gets a heartbeat this often; 0 = 250 */
    const char *side_suffix;  /* side files shipped: names ending with it; NULL = ".snap" */
    rlog_logger_fn logger;    /* NULL = silent */
    void *logger_data;
} rlog_ship_leader_options;

/*
 * A leader serving `log` (borrowed: it must outlive the leader; another
 * thread may append to it). `t` is a fresh transport (from
 * rlog_transport_nng_new, or the simulator's): the leader initialises it
 * with a copy of `tcfg` whose role is RLOG_ROLE_SHIP_LEADER and its own
 * callbacks, listens on tcfg->address, and owns it from then on, also on
 * failure (it is closed then). opts may be NULL. Side files are read from
 * the log's directory through the log's vfs. Errors: RLOG_EINVAL,
 * RLOG_ENOMEM, the transport's init/listen errors (RLOG_EBUSY: address in
 * use), RLOG_EIO from the log.
 */
RLOG_API int rlog_ship_leader_new(rlog_log *log, rlog_transport *t,
                                  const rlog_transport_config *tcfg,
                                  const rlog_ship_leader_options *opts, rlog_ship_leader **out);
/* Ships what is due, runs the transport's callbacks (waiting up to
 * timeout_ms for the first: 0 never waits, < 0 waits until something
 * happens), and ships again. Owner thread. Returns 0, or RLOG_ECLOSED once
 * the transport is closed. Problems with one follower (its protocol
 * errors, a segment that cannot be read) are logged and kept in its info;
 * they do not fail the call. */
RLOG_API int rlog_ship_leader_poll(rlog_ship_leader *ld, int timeout_ms);
/* Thread-safe (any thread, e.g. an append callback): new records may be
 * durable; wakes a waiting poll(). Optional — poll() also looks each time it
 * runs — but it keeps the tail's lag low. At most one wake-up is pending. */
RLOG_API void rlog_ship_leader_notify(rlog_ship_leader *ld);
/* Copies up to cap followers (connected ones, and up to 16 that
 * disconnected, newest first) into out; *n receives how many there are.
 * Owner thread (the table changes inside poll). */
RLOG_API void rlog_ship_leader_followers(rlog_ship_leader *ld, rlog_ship_follower_info *out,
                                         size_t cap, size_t *n);
/* Message of the last notable error ("" if none). Owner thread. */
RLOG_API const char *rlog_ship_leader_errmsg(rlog_ship_leader *ld);
/* Closes the transport (followers see a disconnect) and frees the leader.
 * The log is left open. */
RLOG_API void rlog_ship_leader_free(rlog_ship_leader *ld);

typedef struct rlog_ship_follower_status {
    int state;               /* rlog_ship_state */
    uint64_t log_id;         /* 0 until known */
    uint64_t durable;        /* last LSN durable here (what it acknowledges) */
    uint64_t leader_durable; /* the leader's durable LSN, as last heard */
    uint64_t bytes_received; /* segment bytes received and verified (all sessions) */
    uint64_t files_received; /* side files received */
    uint64_t reconnects;     /* connections lost */
    uint64_t sessions;       /* sessions started (START sent with a new nonce) */
    uint64_t truncations;    /* divergences repaired */
    uint64_t resets;         /* restarts from the leader's retained prefix */
    uint64_t rejected;       /* messages dropped: stale session, out of order, bad */
    int error;               /* RLOG_E* of the last error (0 if none) */
    char message[256];       /* last notable event or error, one line */
} rlog_ship_follower_status;

typedef struct rlog_ship_follower_options {
    rlog_vfs *vfs; /* NULL = posix. Borrowed. */
    rlog_env *env; /* clock and random; NULL = posix. Borrowed. */
    /* Called (owner thread, inside poll) each time the durable position
     * advances, with the last durable LSN. */
    void (*on_durable)(void *data, uint64_t lsn);
    void *data;
    size_t window_bytes;     /* announced to the leader; 0 = the leader's choice */
    unsigned resend_ms;      /* an unanswered request is repeated after; 0 = 1000 */
    unsigned session_ms;     /* a session silent this long is restarted; 0 = 3000 */
    const char *side_suffix; /* side files it may delete when the leader no
                                longer has them; NULL = ".snap" */
    rlog_logger_fn logger;
    void *logger_data;
    /* The leader's server id, or 0 for any. When set, a server at
     * leader_address that announces another id is refused (and redialled);
     * with TLS its certificate must be named "rlog-<leader_id>"
     * (docs/security.md): without it, any CA-signed member listening at
     * that address could pose as the leader. */
    uint64_t leader_id;
} rlog_ship_follower_options;

/*
 * A follower keeping `dir` (created if missing; empty, or a previous copy
 * of the same log) in step with the leader at `leader_address`. `t` is a
 * fresh transport, initialised and owned as for the leader (role
 * RLOG_ROLE_SHIP_FOLLOWER; tcfg->server_id must be unique among the
 * leader's followers; tcfg->address may be empty). Errors: RLOG_EBUSY
 * (directory locked), RLOG_ECORRUPT / RLOG_EFOREIGN / RLOG_EVERSION (as
 * rlog_open), RLOG_EIO, RLOG_EINVAL, the transport's errors.
 */
RLOG_API int rlog_ship_follower_new(const char *dir, rlog_transport *t,
                                    const rlog_transport_config *tcfg, const char *leader_address,
                                    const rlog_ship_follower_options *opts,
                                    rlog_ship_follower **out);
/* Runs the transport's callbacks (waiting up to timeout_ms for the first),
 * writes what arrived, acknowledges it. Owner thread. Returns 0;
 * RLOG_ECLOSED once the transport is closed; after a local disk error that
 * stops it (state RLOG_SHIP_FAILED: a failed sync, or a disk error while
 * resetting, adopting, truncating or deleting segments) that error
 * (RLOG_EPOISONED, RLOG_EIO, RLOG_ENOSPC, RLOG_ENOMEM) on every call: free
 * the follower and make a new one (opening recovers the directory). A
 * refusal is not an error of poll: the state says RLOG_SHIP_REFUSED. */
RLOG_API int rlog_ship_follower_poll(rlog_ship_follower *f, int timeout_ms);
RLOG_API void rlog_ship_follower_status_get(rlog_ship_follower *f, rlog_ship_follower_status *st);
RLOG_API const char *rlog_ship_follower_errmsg(rlog_ship_follower *f);
/* Closes the transport and the directory; frees the follower. (Every
 * poll writes what it received before it returns; a segment being
 * received whole is dropped and received again by the next follower.) */
RLOG_API void rlog_ship_follower_free(rlog_ship_follower *f);

/* ---- Status of a running leader (rlog ship status URL) ---- */

typedef struct rlog_ship_status {
    uint64_t log_id;
    uint64_t first_lsn;   /* first LSN the leader retains */
    uint64_t durable_lsn; /* its durable LSN */
    uint64_t first_seq, last_seq;
    size_t n_followers;
    rlog_ship_follower_info *followers; /* malloc'd; rlog_ship_status_release */
} rlog_ship_status;

/*
 * Asks the leader at `address` for its status over a transport of its own
 * (nng, role RLOG_ROLE_OBSERVER, a random server id), waiting up to
 * timeout_ms in total. Errors: RLOG_ENOCONN (no answer in time; err says
 * whether the connection came up), RLOG_EPROTO, RLOG_ENOMEM, the
 * transport's errors. err (may be NULL) receives a one-line message. On
 * success release *out with rlog_ship_status_release.
 */
RLOG_API int rlog_ship_status_query(const char *address, int timeout_ms, rlog_ship_status *out,
                                    char *err, size_t errcap);
/*
 * The same, with a transport configuration of the caller's (may be NULL:
 * as above). Its server_id is the id the query announces (0 = a random
 * one); its TLS files, logger and limits are used; address and role are
 * the query's own. With TLS (tls+tcp:// addresses only) a server_id is
 * required, and the leader binds it to the certificate: it must be named
 * "rlog-<server_id>". Give the query an id of its own, not a follower's:
 * a connection under a follower's id would replace that follower's
 * (docs/wire.md, "One connection per peer"). leader_id (0 = any): the id
 * the leader must announce (with TLS: the name its certificate must hold).
 * When tcfg->handshake_ms is 0, half of timeout_ms (at least 100) is used,
 * so that a failed TLS handshake is logged within the query's time.
 */
RLOG_API int rlog_ship_status_query_config(const char *address, uint64_t leader_id,
                                           const rlog_transport_config *tcfg, int timeout_ms,
                                           rlog_ship_status *out, char *err, size_t errcap);
RLOG_API void rlog_ship_status_release(rlog_ship_status *st);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_SHIP_H */
