/*
 * rlog — wire messages of the network side: the connection hello, Raft's
 * RPCs and segment shipping, encoded as msgpack (docs/wire.md is the
 * specification; docs/shipping.md the shipping protocol).
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
 * entry payloads, the snapshot configuration and chunk, shipped segment
 * bytes and side-file bytes point INTO the input buffer, which must stay
 * alive and unchanged while they are used. The decoder copies strings (the
 * hello address, shipping names and texts, NUL-terminated) and builds the
 * arrays (entries, side files, status followers) in one allocation owned by
 * the message: release it with rlog_msg_free() (which does not touch the
 * input buffer).
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
/* Longest side-file name in shipping messages (bytes; at least 1, no NUL,
 * no '/'). */
#define RLOG_WIRE_NAME_MAX 255u
/* Longest human-readable text (refusal and truncation reasons, follower
 * names in a status), in bytes, no NUL. */
#define RLOG_WIRE_TEXT_MAX 1024u
/* Smallest encodings of one element of the shipping arrays (checked against
 * the remaining bytes before allocating): a side file [name (>= 1 byte),
 * size, crc] and a status follower [id, name, state, 5 counters, bool]. */
#define RLOG_WIRE_SHIP_FILE_MIN_BYTES 5u
#define RLOG_WIRE_SHIP_PEER_MIN_BYTES 10u

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
    /* segment shipping (docs/shipping.md) */
    RLOG_MSG_SHIP_START = 16,
    RLOG_MSG_SHIP_REFUSE = 17,
    RLOG_MSG_SHIP_TRUNCATE = 18,
    RLOG_MSG_SHIP_ACCEPT = 19,
    RLOG_MSG_SHIP_FILES = 20,
    RLOG_MSG_SHIP_FILES_OK = 21,
    RLOG_MSG_SHIP_FILE_REQ = 22,
    RLOG_MSG_SHIP_FILE_DATA = 23,
    RLOG_MSG_SHIP_DATA = 24,
    RLOG_MSG_SHIP_ACK = 25,
    RLOG_MSG_SHIP_RESTART = 26,
    RLOG_MSG_SHIP_STATUS_REQ = 27,
    RLOG_MSG_SHIP_STATUS = 28,
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

/* ---- Segment shipping (types 16..28; docs/shipping.md has the protocol).
 * Every message of a session carries the follower's session nonce; a
 * position is (segment seq, byte offset in that segment file). */

/* Follower -> leader: opens a session with the follower's durable position
 * (log/replica.h's rlg_replica_pos). log_id 0: the follower is empty and
 * every position field is 0. */
typedef struct rlog_msg_ship_start {
    uint64_t nonce;         /* new per session, random */
    uint64_t log_id;        /* 0: empty */
    uint64_t file_size;     /* its segments' file size */
    uint64_t first_lsn;     /* first LSN it holds */
    uint64_t last_lsn;      /* last LSN it holds durably */
    uint64_t seq;           /* its newest segment */
    uint64_t seg_first_lsn; /* that segment's first LSN (header) */
    uint64_t end;           /* offset just past its last record there */
    bool sealed;            /* that segment ends with a seal */
    uint64_t last_rec_off;  /* offset of its last record (0: none) */
    uint32_t last_rec_crc;  /* that record's crc field */
    uint64_t last_rec_lsn;  /* that record's lsn field */
    uint64_t window;        /* bytes it accepts in flight (0: leader's choice) */
    uint64_t max_message;   /* largest message it accepts (0: default) */
} rlog_msg_ship_start;

/* Leader -> follower: the session is refused for good (another log, an
 * impossible position). code is an RLOG_E* value. */
typedef struct rlog_msg_ship_refuse {
    uint64_t nonce;
    uint32_t code;
    const char *message; /* NUL-terminated, <= RLOG_WIRE_TEXT_MAX bytes */
} rlog_msg_ship_refuse;

/* Leader -> follower: the follower diverged; drop every record with
 * LSN >= lsn, then start a new session. */
typedef struct rlog_msg_ship_truncate {
    uint64_t nonce;
    uint64_t lsn;
    const char *message; /* why, NUL-terminated, <= RLOG_WIRE_TEXT_MAX bytes */
} rlog_msg_ship_truncate;

/* One side file (a snapshot) of the leader's directory. */
typedef struct rlog_msg_ship_file {
    const char *name; /* 1..RLOG_WIRE_NAME_MAX bytes, no NUL, no '/' */
    uint64_t size;
    uint32_t crc; /* CRC32C of the whole file */
} rlog_msg_ship_file;

/* Leader -> follower: the session is accepted. adopt: discard every
 * segment and adopt (log_id, file_size, seq, first_lsn) — the leader's
 * oldest retained segment; otherwise data continues at the follower's
 * position. The side-file list (generation files_gen, taken when the
 * leader's durable LSN was files_upto) must be present before data. */
typedef struct rlog_msg_ship_accept {
    uint64_t nonce;
    uint64_t log_id;
    bool adopt;
    uint64_t file_size;
    uint64_t seq;
    uint64_t first_lsn;
    uint64_t leader_durable;
    uint64_t files_gen;
    uint64_t files_upto;
    uint32_t n_files;
    const rlog_msg_ship_file *files; /* decoded: owned by the message */
} rlog_msg_ship_accept;

/* Leader -> follower: the side-file list changed (generation gen). */
typedef struct rlog_msg_ship_files {
    uint64_t nonce;
    uint64_t gen;
    uint64_t upto;
    uint32_t n_files;
    const rlog_msg_ship_file *files; /* decoded: owned by the message */
} rlog_msg_ship_files;

/* Follower -> leader: every side file of generation gen is durable here. */
typedef struct rlog_msg_ship_files_ok {
    uint64_t nonce;
    uint64_t gen;
} rlog_msg_ship_files_ok;

/* Follower -> leader: send bytes [offset, offset + len) of side file name. */
typedef struct rlog_msg_ship_file_req {
    uint64_t nonce;
    const char *name;
    uint64_t offset;
    uint64_t len;
} rlog_msg_ship_file_req;

/* Leader -> follower: bytes of a side file (size and crc of the whole
 * file). Decoder check: offset + len <= size. */
typedef struct rlog_msg_ship_file_data {
    uint64_t nonce;
    const char *name;
    uint64_t size;
    uint32_t crc;
    uint64_t offset;
    size_t len;
    const void *data; /* decoded: into the input buffer; NULL if len 0 */
} rlog_msg_ship_file_data;

/* Leader -> follower: bytes [off, off + len) of segment seq — whole
 * records, exactly as in the leader's file. len 0: a heartbeat at the
 * leader's send position. seg_end: the segment's final end when it is
 * sealed on the leader (0: not sealed yet). first_seq: the leader's oldest
 * retained segment (the follower deletes its segments before it). Decoder
 * checks: off + len does not overflow; seg_end == 0 or off + len <=
 * seg_end. */
typedef struct rlog_msg_ship_data {
    uint64_t nonce;
    uint64_t seq;
    uint64_t seg_first_lsn;
    uint64_t file_size;
    uint64_t off;
    uint64_t seg_end;
    uint64_t leader_durable;
    uint64_t first_seq;
    size_t len;
    const void *bytes; /* decoded: into the input buffer; NULL if len 0 */
} rlog_msg_ship_data;

#define RLOG_SHIP_ACK_GAP 0x1u /* flags: data arrived past recv (a gap): resend from recv */

/* Follower -> leader: recv = where the next byte must start (everything
 * before it was received: written, maybe not yet synced); durable = the
 * same for durable bytes, with the last durable LSN. A position after a
 * sealed segment is (seq + 1, 64). */
typedef struct rlog_msg_ship_ack {
    uint64_t nonce;
    uint64_t recv_seq;
    uint64_t recv_off;
    uint64_t durable_seq;
    uint64_t durable_off;
    uint64_t durable_lsn;
    uint32_t flags;
} rlog_msg_ship_ack;

/* Leader -> follower: start a new session (the leader can no longer
 * continue this one, e.g. its segments were deleted under it). */
typedef struct rlog_msg_ship_restart {
    uint64_t nonce;
    const char *message; /* NUL-terminated, <= RLOG_WIRE_TEXT_MAX bytes */
} rlog_msg_ship_restart;

/* Observer -> leader. */
typedef struct rlog_msg_ship_status_req {
    uint64_t request_id;
} rlog_msg_ship_status_req;

/* One follower in a status answer (rlog_ship_follower_info). */
typedef struct rlog_msg_ship_peer {
    uint64_t id;
    const char *name; /* <= RLOG_WIRE_TEXT_MAX bytes, no NUL; may be "" */
    uint32_t state;   /* rlog_ship_state */
    uint64_t durable;
    uint64_t sent;
    uint64_t lag_records;
    uint64_t lag_bytes;
    uint64_t bytes_sent;
    bool connected;
} rlog_msg_ship_peer;

/* Leader -> observer. */
typedef struct rlog_msg_ship_status {
    uint64_t request_id;
    uint64_t log_id;
    uint64_t first_lsn;
    uint64_t durable_lsn;
    uint64_t first_seq;
    uint64_t last_seq;
    uint32_t n_followers;
    const rlog_msg_ship_peer *followers; /* decoded: owned by the message */
} rlog_msg_ship_status;

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
        rlog_msg_ship_start ship_start;
        rlog_msg_ship_refuse ship_refuse;
        rlog_msg_ship_truncate ship_truncate;
        rlog_msg_ship_accept ship_accept;
        rlog_msg_ship_files ship_files;
        rlog_msg_ship_files_ok ship_files_ok;
        rlog_msg_ship_file_req ship_file_req;
        rlog_msg_ship_file_data ship_file_data;
        rlog_msg_ship_data ship_data;
        rlog_msg_ship_ack ship_ack;
        rlog_msg_ship_restart ship_restart;
        rlog_msg_ship_status_req ship_status_req;
        rlog_msg_ship_status ship_status;
    } u;
    /* Private: the decoder's allocation (entries array, address or text
     * copy, the shipping arrays with their names).
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
