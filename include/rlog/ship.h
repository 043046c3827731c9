/*
 * rlog — segment shipping: a leader serves its log's segments to followers,
 * which keep byte-identical copies (docs/shipping.md).
 *
 * A follower connects with (log id, its position, the checksum of its last
 * record); the leader answers with the exact bytes of its segments from
 * there — sealed segments first, then the live tail as it becomes durable on
 * the leader. The follower verifies every record, writes it through log/
 * into segments with the same boundaries, syncs, and acknowledges its
 * durable position. Its directory is, at every instant, a valid rlog
 * directory (and a Raft storage directory when the leader's is one: side
 * files such as snapshots are shipped too) whose sealed segments are
 * byte-identical to the leader's.
 *
 * Both sides run on a transport (rlog/transport.h) and are driven by their
 * owner's loop: poll() runs the transport's callbacks and the shipping
 * state machine on the calling thread. Nothing here starts a thread. The
 * leader reads its log through the log's thread-safe calls, so another
 * thread may append to the same log handle while the leader ships it.
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

typedef enum rlog_ship_state {
    RLOG_SHIP_CONNECTING = 0, /* no session (dialling, or waiting to redial) */
    RLOG_SHIP_CATCHING_UP,    /* receiving bytes the leader had when asked */
    RLOG_SHIP_TAILING,        /* caught up: receiving the live tail */
    RLOG_SHIP_SNAPSHOT,       /* receiving side files (behind the retained prefix) */
    RLOG_SHIP_TRUNCATING,     /* diverged: cutting its log where the leader said */
    RLOG_SHIP_REFUSED,        /* the leader refused it (different log id, ...) */
} rlog_ship_state;

/* "catching-up" etc. */
RLOG_API const char *rlog_ship_state_name(int state);

/* One follower as its leader sees it. */
typedef struct rlog_ship_follower_info {
    uint64_t id;       /* follower's server id */
    char name[128];    /* the address it announced (may be "") */
    int state;         /* rlog_ship_state */
    uint64_t durable;  /* last LSN the follower acknowledged durable */
    uint64_t sent;     /* last LSN sent to it */
    uint64_t lag_records; /* leader durable LSN - follower durable LSN */
    uint64_t lag_bytes;   /* bytes between the two positions */
    uint64_t bytes_sent;  /* total, this session */
    bool connected;
} rlog_ship_follower_info;

typedef struct rlog_ship_leader_options {
    rlog_env *env;         /* clock; NULL = posix */
    size_t window_bytes;   /* unacknowledged bytes in flight per follower; 0 = 8 MiB */
    size_t chunk_bytes;    /* largest data message payload; 0 = 1 MiB */
    const char *side_suffix; /* side files shipped: names ending with it; NULL = ".snap" */
    rlog_logger_fn logger; /* NULL = silent */
    void *logger_data;
} rlog_ship_leader_options;

/*
 * A leader serving `log` (borrowed: it must outlive the leader; another
 * thread may append to it). `t` is a fresh transport (from
 * rlog_transport_nng_new, or the simulator's): the leader initialises it with
 * `tcfg` (its role is set to RLOG_ROLE_SHIP_LEADER) and its own callbacks,
 * listens on tcfg->address, and owns it from then on (freed by
 * rlog_ship_leader_free). opts may be NULL.
 */
RLOG_API int rlog_ship_leader_new(rlog_log *log, rlog_transport *t,
                                  const rlog_transport_config *tcfg,
                                  const rlog_ship_leader_options *opts, rlog_ship_leader **out);
/* Runs the transport's callbacks and ships what is due, waiting up to
 * timeout_ms for something to happen. Owner thread. Returns 0 or an error
 * of the transport. */
RLOG_API int rlog_ship_leader_poll(rlog_ship_leader *ld, int timeout_ms);
/* Thread-safe: new records may be durable; wakes poll(). Optional (poll
 * also looks on its own each time it runs) but keeps the tail's lag low. */
RLOG_API void rlog_ship_leader_notify(rlog_ship_leader *ld);
/* Copies up to cap followers into out; *n receives how many there are. */
RLOG_API void rlog_ship_leader_followers(rlog_ship_leader *ld, rlog_ship_follower_info *out,
                                         size_t cap, size_t *n);
/* Message of the last error. */
RLOG_API const char *rlog_ship_leader_errmsg(rlog_ship_leader *ld);
/* Closes the transport (followers see a disconnect) and frees the leader.
 * The log is left open. */
RLOG_API void rlog_ship_leader_free(rlog_ship_leader *ld);

typedef struct rlog_ship_follower_status {
    int state;             /* rlog_ship_state */
    uint64_t log_id;       /* 0 until known */
    uint64_t durable;      /* last LSN durable here (and acknowledged) */
    uint64_t leader_durable; /* the leader's durable LSN, as last heard */
    uint64_t bytes_received;
    uint64_t reconnects;
    uint64_t truncations;  /* divergences repaired */
    uint64_t resets;       /* restarts from the leader's retained prefix */
    char message[256];     /* last notable event or error, one line */
} rlog_ship_follower_status;

typedef struct rlog_ship_follower_options {
    rlog_vfs *vfs;         /* NULL = posix */
    rlog_env *env;         /* NULL = posix */
    /* Called (owner thread) each time the durable position advances. */
    void (*on_durable)(void *data, uint64_t lsn);
    void *data;
    rlog_logger_fn logger;
    void *logger_data;
} rlog_ship_follower_options;

/*
 * A follower keeping `dir` (created if missing; empty, or a previous copy
 * of the same log) in step with the leader at `leader_address`. `t` is a
 * fresh transport, initialised and owned as for the leader (role
 * RLOG_ROLE_SHIP_FOLLOWER; tcfg->address may be empty). Errors: RLOG_EBUSY
 * (directory locked), RLOG_ECORRUPT / RLOG_EFOREIGN / RLOG_EVERSION (as
 * rlog_open), RLOG_EIO.
 */
RLOG_API int rlog_ship_follower_new(const char *dir, rlog_transport *t,
                                    const rlog_transport_config *tcfg, const char *leader_address,
                                    const rlog_ship_follower_options *opts,
                                    rlog_ship_follower **out);
RLOG_API int rlog_ship_follower_poll(rlog_ship_follower *f, int timeout_ms);
RLOG_API void rlog_ship_follower_status_get(rlog_ship_follower *f,
                                            rlog_ship_follower_status *st);
RLOG_API const char *rlog_ship_follower_errmsg(rlog_ship_follower *f);
/* Closes the transport and the directory; frees the follower. */
RLOG_API void rlog_ship_follower_free(rlog_ship_follower *f);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_SHIP_H */
