/*
 * What the files of the wire codec share (docs/wire.md is the
 * specification, include/rlog/wire.h the API, transport/codec.c the
 * schema of every message):
 *   codec.c       the frame [type, version, fields...], hello, redirect,
 *                 and the dispatch by type (encode, decode, equality)
 *   codec_raft.c  the Raft messages (types 2-8)
 *   codec_ship.c  the segment-shipping messages (types 16-28)
 *   codec_prim.c  the primitives all of them use: msgpack-c's packer, a
 *                 fixed-schema reader over the raw bytes, str fields
 * Each calls only the files listed after it.
 */
#ifndef RLG_TRANSPORT_CODEC_INTERNAL_H
#define RLG_TRANSPORT_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "rlog/wire.h"

/* The three kinds of str field, with the limits both sides check: an
 * address (<= RLOG_WIRE_ADDRESS_MAX bytes), a text (<= RLOG_WIRE_TEXT_MAX
 * bytes) and a side-file name (1..RLOG_WIRE_NAME_MAX bytes, no '/'). None
 * holds a NUL byte. */
typedef enum codec_str { STR_ADDRESS, STR_TEXT, STR_NAME } codec_str;

typedef struct codec_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    const char *msg; /* message name, for errors */
    long entry;      /* element index for errors; -1 = not inside an array */
    char *err;
    size_t errcap;
    const char *array; /* name of the array `entry` indexes, for errors */
} codec_rd;

/* codec_raft.c */

/* Whether `type` is one of the Raft messages (2-8, docs/wire.md). */
bool rlg_codec_raft_type(uint64_t type);
/* The Raft messages (types 2-8). */
int rlg_codec_enc_raft(msgpack_packer *pk, const rlog_msg *m);
/* The Raft messages (types 2-8). */
int rlg_codec_dec_raft(codec_rd *r, rlog_msg *m, uint64_t type);
/* The Raft messages (types 2-8); a and b have the same type. */
bool rlg_codec_eq_raft(const rlog_msg *a, const rlog_msg *b);

/* codec_ship.c */

int rlg_codec_enc_ship(msgpack_packer *pk, const rlog_msg *m);
int rlg_codec_dec_ship(codec_rd *r, rlog_msg *m, uint64_t type);
bool rlg_codec_eq_ship(const rlog_msg *x, const rlog_msg *y);

/* codec_prim.c */

/* Packer calls return 0 or -1 (only on allocation failure): callers OR
 * their results and map a non-zero total to RLOG_ENOMEM. */
int rlg_codec_enc_bin(msgpack_packer *pk, const void *data, size_t len);
int rlg_codec_enc_u64s(msgpack_packer *pk, const uint64_t *v, size_t n);
int rlg_codec_enc_bool(msgpack_packer *pk, bool b);
/* A NUL-terminated string of `kind`. *rc receives the packer's result;
 * returns RLOG_EINVAL for a string the decoder refuses. */
int rlg_codec_enc_str(msgpack_packer *pk, const char *s, codec_str kind, int *rc);
int rlg_codec_rd_fail(codec_rd *r, size_t at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t rlg_codec_rd_left(const codec_rd *r);
/* Any msgpack integer holding a value in 0..max. */
int rlg_codec_rd_uint(codec_rd *r, const char *field, uint64_t max, uint64_t *v);
int rlg_codec_rd_u64(codec_rd *r, const char *field, uint64_t *v);
int rlg_codec_rd_u32(codec_rd *r, const char *field, uint32_t *v);
int rlg_codec_rd_bool(codec_rd *r, const char *field, bool *v);
int rlg_codec_rd_tribool(codec_rd *r, const char *field, rlog_msg_tribool *v);
int rlg_codec_rd_bin(codec_rd *r, const char *field, const void **data, size_t *len);
/* A bin that holds bytes [offset, offset + len) of something of `total`
 * bytes (`what`: "snapshot", "file"): one that runs past the end is
 * refused, naming both. */
int rlg_codec_rd_part(codec_rd *r, const char *field, uint64_t offset, uint64_t total,
                      const char *what, const void **data, size_t *len);
/* An array header; the count is NOT checked here (callers compare it with
 * the schema or with the bytes that remain). */
int rlg_codec_rd_array(codec_rd *r, const char *field, uint32_t *n);
/* Reads `n` uint64 fields named in `names` into `out`. */
int rlg_codec_rd_u64s(codec_rd *r, const char *const *names, uint64_t *const *out, size_t n);
/* A str field of `kind`, checked like rlg_codec_enc_str; *p points into the input
 * (not NUL-terminated): rlg_codec_dec_copy or dec_put_str copies it once the rest of
 * the message decoded. */
int rlg_codec_dec_str(codec_rd *r, const char *field, codec_str kind, const void **p, size_t *len);
/* Copies the str at addr, NUL-terminated, into the message's allocation. */
int rlg_codec_dec_copy(rlog_msg *m, const void *addr, size_t alen, const char **out);
bool rlg_codec_bytes_equal(const void *a, size_t alen, const void *b, size_t blen);
bool rlg_codec_str_equal(const char *a, const char *b);

#endif /* RLG_TRANSPORT_CODEC_INTERNAL_H */
