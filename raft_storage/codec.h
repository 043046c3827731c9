/*
 * Payload encodings of the Raft record types (all integers little-endian;
 * docs/format.md ("Raft storage records") is the specification).
 *
 * HARD_STATE (16), exactly 24 bytes:
 *   0  8  term
 *   8  8  vote (server id, 0 = none)
 *   16 8  commit index
 *
 * ENTRIES (17), 16 + 16*count + sum(len) bytes:
 *   0  8  first index (>= 1)
 *   8  4  count (>= 1)
 *   12 4  reserved, zero
 *   16    count entry headers, 16 bytes each:
 *           0 8 term   8 4 payload length   12 2 entry type   14 2 reserved, zero
 *   ...   the payloads, concatenated in entry order
 *
 * TRUNCATE (18), exactly 8 bytes:
 *   0  8  index: entries from here on are gone
 *
 * SNAPSHOT (19), 48 + name_len + conf_len bytes:
 *   0  8  index       last index included
 *   8  8  term        its term
 *   16 8  conf_index  index of the configuration
 *   24 8  size        snapshot file bytes
 *   32 4  crc         CRC32C of the whole snapshot file
 *   36 4  trailing    entries kept at and before index (0 = replace the log)
 *   40 2  name_len    1..63
 *   42 2  flags       bit 0: the snapshot replaced the whole log (every entry
 *                     was dropped; the next entry is index + 1); other bits 0
 *   44 4  conf_len
 *   48    file name (name_len bytes of [A-Za-z0-9._-], no NUL, not "." or "..")
 *   ...   configuration (conf_len bytes)
 *
 * Decoding treats the payload as hostile: every length is checked against
 * the bytes that remain, and any surplus or shortfall is an error.
 */
#ifndef RLG_RS_CODEC_H
#define RLG_RS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/raft_storage.h"

/* The message of a refusal: writes it printf-style to why (when why is not
 * NULL and cap > 0) and returns err. The decoders here and the replay rules
 * (state.c) report every refusal through it. */
int rlg_rs_why(int err, char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define RLG_RS_HS_SIZE    24u
#define RLG_RS_TRUNC_SIZE 8u
#define RLG_RS_BATCH_HDR  RLOG_RS_BATCH_OVERHEAD
#define RLG_RS_ENTRY_HDR  RLOG_RS_ENTRY_OVERHEAD
#define RLG_RS_SNAP_HDR   48u
#define RLG_RS_NAME_MAX   63u
/* Snapshot marker flag: the snapshot replaced the whole log. */
#define RLG_SNAP_REPLACE 0x1u

/* A decoded ENTRIES payload: views into the payload bytes. */
typedef struct rlg_batch_view {
    uint64_t first_index;
    uint32_t count;
    const uint8_t *table;    /* count entry headers */
    const uint8_t *payloads; /* concatenated payloads */
} rlg_batch_view;

/* A decoded SNAPSHOT payload. name and conf point into the payload. */
typedef struct rlg_snap_view {
    uint64_t index, term, conf_index, size;
    uint32_t crc, trailing;
    uint16_t name_len;
    uint16_t flags; /* RLG_SNAP_REPLACE */
    uint32_t conf_len;
    const char *name; /* not NUL-terminated */
    const uint8_t *conf;
} rlg_snap_view;

/* One decoded Raft record. */
typedef struct rlg_rec {
    uint16_t type;
    const uint8_t *raw; /* the payload */
    size_t raw_len;
    union {
        rlog_rs_hard_state hs;
        rlg_batch_view batch;
        uint64_t trunc;
        rlg_snap_view snap;
    } u;
} rlg_rec;

/* Decodes a payload of `type`. Returns 0, or RLOG_ECORRUPT with a reason in
 * why (cap bytes). Never reads outside [p, p+len). */
int rlg_rec_decode(uint16_t type, const void *p, size_t len, rlg_rec *out, char *why, size_t cap);

/* Entry k of a decoded batch (k < count); data points into the payload. */
void rlg_batch_entry(const rlg_batch_view *b, uint32_t k, rlog_rs_entry *e);
/* Term of entry k of a decoded batch. */
uint64_t rlg_batch_term(const rlg_batch_view *b, uint32_t k);

void rlg_hs_encode(const rlog_rs_hard_state *hs, uint8_t out[RLG_RS_HS_SIZE]);
void rlg_trunc_encode(uint64_t index, uint8_t out[RLG_RS_TRUNC_SIZE]);
/* Bytes an ENTRIES payload of e[0..n) takes (SIZE_MAX on overflow). */
size_t rlg_batch_size(const rlog_rs_entry *e, size_t n);
/* Encodes e[0..n) starting at first_index into out (rlg_batch_size bytes). */
void rlg_batch_encode(uint64_t first_index, const rlog_rs_entry *e, size_t n, uint8_t *out);
/* Bytes a SNAPSHOT payload takes. */
size_t rlg_snap_size(size_t name_len, uint32_t conf_len);
void rlg_snap_encode(const rlg_snap_view *s, uint8_t *out);

/* True when name is a valid snapshot file name (see the layout above). */
bool rlg_snap_name_ok(const char *name, size_t len);

/* Unsigned LEB128 varints for the in-memory index. */
size_t rlg_varint_put(uint8_t *p, uint64_t v); /* p needs 10 bytes */
/* Decodes at p (trusted: our own memory). Returns bytes used. */
size_t rlg_varint_get(const uint8_t *p, uint64_t *v);

#endif /* RLG_RS_CODEC_H */
