/*
 * kv_fsm — the replicated state of the kv example: a map from keys to
 * values, changed only by committed log entries.
 *
 * Command (one log entry, little endian):
 *   [1 byte op: 1 put, 2 del] [u32 key length] [u32 value length] [key] [value]
 *   [0..7 zero bytes: the entry's length is a multiple of 8, for raft_uv]
 * Snapshot (one buffer):
 *   "KVS1" [u64 number of pairs] then per pair [u32 key length] [u32 value
 *   length] [key] [value]
 * Keys and values are byte strings (the server restricts them to one line).
 */
#ifndef KV_FSM_H
#define KV_FSM_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

enum { KV_OP_PUT = 1, KV_OP_DEL = 2 };

struct kv_pair {
    struct kv_pair *next; /* bucket chain */
    char *key;            /* key_len bytes + NUL, owned */
    char *value;          /* value_len bytes + NUL, owned */
    uint32_t key_len;
    uint32_t value_len;
};

struct kv_map {
    struct kv_pair **buckets; /* n_buckets chains, owned */
    size_t n_buckets;         /* a power of two, or 0 before the first put */
    size_t n_pairs;
};

struct kv_fsm {
    struct raft_fsm fsm; /* what raft_init gets; fsm.data points here */
    struct kv_map map;
    uint64_t applied;  /* commands applied */
    uint64_t restores; /* snapshots restored (at start and installs) */
};

void kv_fsm_init(struct kv_fsm *f);
void kv_fsm_close(struct kv_fsm *f);

/* The value stored for key, or NULL; valid until the next change. */
const struct kv_pair *kv_map_get(const struct kv_map *m, const char *key, size_t key_len);

/* An order-independent digest of every (key, value) pair: two maps with the
 * same pairs have the same digest, whatever their insertion history. */
uint64_t kv_map_digest(const struct kv_map *m);

/* Encodes a command into a raft_malloc'd buffer (ownership passes to the
 * caller, then to raft_apply). Returns 0 or RAFT_NOMEM. */
int kv_command_encode(int op, const char *key, size_t key_len, const char *value, size_t value_len,
                      struct raft_buffer *buf);

#endif
