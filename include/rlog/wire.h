/*
 * rlog — wire messages of the network side: the connection hello and Raft's
 * RPCs, encoded as msgpack (docs/wire.md is the specification).
 *
 * Every message is one msgpack array [type, version, fields...] with a fixed
 * number of fields per (type, version). Decoding treats the bytes as hostile:
 * it walks the fixed schema over the raw bytes, checks every length and count
 * against the bytes that remain before it allocates anything, allocates at
 * most O(len) (one block), and answers RLOG_EPROTO with a message naming the
 * field and its byte offset. It never asserts on input.
 *
 * Ownership. Encoding: the message is only read; the caller frees the
 * returned buffer with rlog_free(). Decoding is zero copy for byte fields:
 * entry payloads, the snapshot configuration and the snapshot chunk point
 * INTO the input buffer, which must stay alive and unchanged while they are
 * used. The decoder copies the hello address (NUL-terminated) and builds the
 * entries array in one allocation owned by the message: release it with
 * rlog_msg_free() (which does not touch the input buffer).
 *
 * Threads: all functions are pure; any thread, no shared state.
 */
#ifndef RLOG_WIRE_H
#define RLOG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol version carried in the hello (negotiated per connection). */
#define RLOG_WIRE_PROTOCOL 1u
/* Schema version of every message type in this build (field 1 of the
 * array). A decoder accepts only the version it knows. */
#define RLOG_WIRE_MSG_VERSION 1u
/* Decoder limit used when rlog_msg_decode is given max_bytes == 0. */
#define RLOG_WIRE_MAX_BYTES_DEFAULT (64u * 1024u * 1024u)
/* Longest hello address in bytes (no NUL inside, none counted). */
#define RLOG_WIRE_ADDRESS_MAX 1024u
/* Smallest possible encoding of one AppendEntries entry:
 * fixarray(3) + fixint term + fixint type + bin8 of length 0. A count of
 * entries above (remaining bytes / this) is rejected before allocating. */
#define RLOG_WIRE_ENTRY_MIN_BYTES 5u

/* Message types: 1..15 Raft RPC transport, 16..31 reserved for segment
 * shipping. Codes are stable: never renumber. */
typedef enum rlog_msg_type {
    RLOG_MSG_HELLO = 1,
    RLOG_MSG_REQUEST_VOTE = 2,
    RLOG_MSG_REQUEST_VOTE_RESULT = 3,
    RLOG_MSG_APPEND_ENTRIES = 4,
    RLOG_MSG_APPEND_ENTRIES_RESULT = 5,
    RLOG_MSG_INSTALL_SNAPSHOT = 6,
    RLOG_MSG_INSTALL_SNAPSHOT_RESULT = 7,
    RLOG_MSG_TIMEOUT_NOW = 8,
    RLOG_MSG_REDIRECT = 9,
} rlog_msg_type;

/* What the side that sends a hello is. The codec carries any value; the
 * receiver refuses roles it does not serve. Stable codes. */
typedef enum rlog_msg_role {
    RLOG_ROLE_RAFT = 1,          /* a Raft server opening its RPC connection */
    RLOG_ROLE_SHIP_FOLLOWER = 2, /* a follower that wants segment tails */
    RLOG_ROLE_SHIP_LEADER = 3,   /* a leader answering a follower */
    RLOG_ROLE_OBSERVER = 4,      /* status queries only (rlog ship status) */
} rlog_msg_role;

/* libraft's raft_tribool, same values; nil / true / false on the wire. */
typedef enum rlog_msg_tribool {
    RLOG_TRIBOOL_UNKNOWN = 0,
    RLOG_TRIBOOL_TRUE = 1,
    RLOG_TRIBOOL_FALSE = 2,
} rlog_msg_tribool;

/* First message on every connection, in both directions. */
typedef struct rlog_msg_hello {
    uint64_t server_id;        /* sender's server id (Raft id; 0 = none) */
    const char *address;       /* sender's address, NUL-terminated, at most
                                  RLOG_WIRE_ADDRESS_MAX bytes, no NUL inside */
    uint32_t protocol_version; /* RLOG_WIRE_PROTOCOL of the sender */
    uint32_t role;             /* rlog_msg_role */
    uint64_t flags;            /* feature bits; none defined yet, send 0 */
} rlog_msg_hello;

typedef struct rlog_msg_request_vote {
    uint64_t term;           /* candidate's term */
    uint64_t candidate_id;   /* server requesting the vote */
    uint64_t last_log_index; /* index of the candidate's last entry */
    uint64_t last_log_term;  /* term of that entry */
    bool disrupt_leader;     /* the current leader should be discarded */
    bool pre_vote;           /* a pre-vote request */
} rlog_msg_request_vote;

typedef struct rlog_msg_request_vote_result {
    uint64_t term;             /* receiver's current term */
    bool vote_granted;         /* the candidate got the vote */
    rlog_msg_tribool pre_vote; /* answer to a pre-vote request or not */
} rlog_msg_request_vote_result;

/* One log entry: libraft's raft_entry without the batch pointer. */
typedef struct rlog_msg_entry {
    uint64_t term;    /* term in which the entry was created */
    uint16_t type;    /* opaque (libraft: command, barrier, change) */
    uint32_t len;     /* payload bytes */
    const void *data; /* payload; decoded: points into the input buffer
                         (NULL when len == 0) */
} rlog_msg_entry;

typedef struct rlog_msg_append_entries {
    uint64_t term;                 /* leader's term */
    uint64_t prev_log_index;       /* index of the entry before the new ones */
    uint64_t prev_log_term;        /* its term */
    uint64_t leader_commit;        /* leader's commit index */
    uint32_t n_entries;            /* may be 0 (heartbeat) */
    const rlog_msg_entry *entries; /* n_entries; decoded: owned by the message */
} rlog_msg_append_entries;

typedef struct rlog_msg_append_entries_result {
    uint64_t term;           /* receiver's current term */
    uint64_t rejected;       /* if non-zero, the index that was rejected */
    uint64_t last_log_index; /* receiver's last entry index, as a hint */
} rlog_msg_append_entries_result;

/* One chunk of a snapshot. Every chunk repeats the snapshot's identity and
 * configuration so a receiver can check that chunks belong together.
 * Decoder checks: offset + chunk_len <= total, and done iff the chunk ends
 * at total. */
typedef struct rlog_msg_install_snapshot {
    uint64_t term;       /* leader's term */
    uint64_t last_index; /* index of the last entry in the snapshot */
    uint64_t last_term;  /* its term */
    uint64_t conf_index; /* index of the configuration */
    size_t conf_len;     /* encoded configuration (libraft's
                            raft_configuration_encode), opaque here */
    const void *conf;    /* decoded: into the input buffer; NULL if len 0 */
    uint64_t total;      /* size of the whole snapshot data in bytes */
    uint64_t offset;     /* where this chunk starts in the snapshot data */
    size_t chunk_len;    /* bytes in this chunk */
    const void *chunk;   /* decoded: into the input buffer; NULL if len 0 */
    bool done;           /* this is the last chunk */
} rlog_msg_install_snapshot;

/* Transport-level acknowledgement of snapshot chunks (flow control and
 * resumption). libraft never sees it: it answers a whole snapshot with an
 * AppendEntriesResult, as its own transport does. */
typedef struct rlog_msg_install_snapshot_result {
    uint64_t term;        /* receiver's current term */
    uint64_t last_index;  /* the snapshot being acknowledged */
    uint64_t next_offset; /* bytes received contiguously from offset 0 */
} rlog_msg_install_snapshot_result;

typedef struct rlog_msg_timeout_now {
    uint64_t term;           /* leader's term */
    uint64_t last_log_index; /* index of the leader's last entry */
    uint64_t last_log_term;  /* its term */
} rlog_msg_timeout_now;

/* Connection rendezvous (transport-level, never delivered to users): the
 * answer of a listening address to a dialer's hello. The dialer must dial
 * `address` (for tcp: the host it dialled with this port; see docs/wire.md)
 * and present `token` in its hello's flags there. */
typedef struct rlog_msg_redirect {
    const char *address; /* NUL-terminated, at most RLOG_WIRE_ADDRESS_MAX bytes */
    uint64_t token;      /* one-time, random */
} rlog_msg_redirect;

typedef struct rlog_msg {
    rlog_msg_type type;
    union {
        rlog_msg_hello hello;
        rlog_msg_request_vote request_vote;
        rlog_msg_request_vote_result request_vote_result;
        rlog_msg_append_entries append_entries;
        rlog_msg_append_entries_result append_entries_result;
        rlog_msg_install_snapshot install_snapshot;
        rlog_msg_install_snapshot_result install_snapshot_result;
        rlog_msg_timeout_now timeout_now;
        rlog_msg_redirect redirect;
    } u;
    /* Private: the decoder's allocation (entries array, address copy).
     * NULL in messages the caller builds. Freed by rlog_msg_free(). */
    void *alloc_;
} rlog_msg;

/* "append_entries" etc.; "unknown" for other values. Static string. */
RLOG_API const char *rlog_msg_type_name(int type);

/*
 * Encodes `msg` as one msgpack array. On success *buf is a malloc'd buffer
 * of *len bytes that the caller frees with rlog_free(). Errors: RLOG_EINVAL
 * (unknown type; NULL, too long or NUL-containing address; NULL data with a
 * non-zero length; a chunk that does not fit `total` or a done flag that
 * disagrees with it; a field the decoder would refuse), RLOG_ENOMEM. On
 * error *buf is NULL and *len 0. Nothing in `msg` is modified or kept.
 */
RLOG_API int rlog_msg_encode(const rlog_msg *msg, void **buf, size_t *len);

/*
 * Decodes one message from exactly `len` bytes of `buf` (trailing bytes are
 * an error). max_bytes caps len (0 = RLOG_WIRE_MAX_BYTES_DEFAULT). On
 * success fills *out (see the ownership note at the top: byte fields point
 * into `buf`) and returns 0; release with rlog_msg_free(). On error returns
 * RLOG_EPROTO (malformed, hostile, too large, unknown type or version; `err`
 * names the field and offset) or RLOG_ENOMEM, and *out holds nothing to
 * free. err may be NULL; otherwise it receives a NUL-terminated message of
 * at most errcap bytes.
 */
RLOG_API int rlog_msg_decode(const void *buf, size_t len, size_t max_bytes, rlog_msg *out,
                             char *err, size_t errcap);

/* Releases what rlog_msg_decode allocated; a no-op for caller-built or
 * zeroed messages. Safe to call twice. */
RLOG_API void rlog_msg_free(rlog_msg *msg);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_WIRE_H */
