/*
 * What the files of the wire codec share (docs/wire.md is the
 * specification, include/rlog/wire.h the API, transport/codec_schema.c
 * the schema of every message):
 *   codec.c        the frame [type, version, fields...] and the walker
 *                  that encodes, decodes, compares and sizes any message
 *                  from its schema
 *   codec_schema.c the schema: every message type's fields in wire order,
 *                  the rules between fields, the type names
 *   codec_prim.c   the primitives the walker uses: msgpack-c's packer, a
 *                  fixed-schema reader over the raw bytes, str fields
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

/* codec_schema.c: every message's fields, in wire order. The walker in
 * codec.c encodes, decodes, compares and sizes a message from its schema
 * alone, so a field is named once for all four. */

typedef enum codec_type {
    CODEC_U64,     /* uint64_t */
    CODEC_U32,     /* uint32_t (any integer up to 2^32-1 on the wire) */
    CODEC_U16,     /* uint16_t (up to 65535) */
    CODEC_BOOL,    /* bool */
    CODEC_TRIBOOL, /* rlog_msg_tribool: nil, true or false */
    CODEC_STR,     /* const char *, NUL-terminated, of kind `str` */
    CODEC_BIN,     /* const void * with a size_t length at len_off */
    CODEC_BIN32,   /* const void * with a uint32_t length at len_off */
    CODEC_ARRAY,   /* a pointer to `array` elements, uint32_t count at len_off */
} codec_type;

/* A rule that ties a field to the fields before it (a chunk within its
 * snapshot, say). Checked before encoding (a broken rule is RLOG_EINVAL)
 * and right after the field is decoded (a broken rule refuses the message
 * at that field, with the text written to why). */
typedef bool (*codec_rule)(const void *body, char *why, size_t cap);

typedef struct codec_array codec_array;

typedef struct codec_field {
    const char *name; /* as docs/wire.md and the errors name it */
    codec_type type;
    codec_str str;            /* CODEC_STR: which kind */
    size_t off;               /* offsetof the value (a bin's or an array's pointer) */
    size_t len_off;           /* CODEC_BIN, CODEC_BIN32, CODEC_ARRAY: offsetof the length */
    const codec_array *array; /* CODEC_ARRAY: what its elements hold */
    codec_rule rule;          /* NULL or the rule checked at this field */
    /* CODEC_BIN that is a part of something (`part`: "snapshot", "file"):
     * its bytes [offset, offset + len) lie within total bytes, both
     * uint64_t fields before it; checked like a rule. */
    const char *part;
    size_t part_off, total_off;
} codec_field;

/* The elements of an array field, each an array of exactly n fields. */
struct codec_array {
    const char *label;  /* one element, in errors: "(entry)" */
    const char *noun;   /* "entry" */
    const char *plural; /* "entries" */
    size_t min_bytes;   /* smallest encoding of one element (bounds the count) */
    size_t size;        /* sizeof one element */
    const codec_field *fields;
    unsigned n;
};

/* One message type: its name and its fields after [type, version]. */
typedef struct codec_schema {
    const char *name;
    const codec_field *fields;
    unsigned n;
} codec_schema;

/* The schema of message type `type`; NULL when the type is unknown. */
const codec_schema *rlg_codec_schema(uint64_t type);

/* codec_prim.c */

/* Packer calls return 0 or -1 (only on allocation failure): callers OR
 * their results and map a non-zero total to RLOG_ENOMEM. */
int rlg_codec_enc_bin(msgpack_packer *pk, const void *data, size_t len);
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
/* An array header; the count is NOT checked here (callers compare it with
 * the schema or with the bytes that remain). */
int rlg_codec_rd_array(codec_rd *r, const char *field, uint32_t *n);
/* A str field of `kind`, checked like rlg_codec_enc_str; *p points into the input
 * (not NUL-terminated): the caller copies it once the rest of the message
 * decoded. */
int rlg_codec_dec_str(codec_rd *r, const char *field, codec_str kind, const void **p, size_t *len);
/* Copies the str at addr, NUL-terminated, into the message's allocation. */
/* Copies len bytes from p to dst and terminates them with a NUL; returns
 * the byte after the NUL. */
char *rlg_codec_put_str(char *dst, const void *p, size_t len);
int rlg_codec_dec_copy(rlog_msg *m, const void *addr, size_t alen, const char **out);
bool rlg_codec_bytes_equal(const void *a, size_t alen, const void *b, size_t blen);
bool rlg_codec_str_equal(const char *a, const char *b);

#endif /* RLG_TRANSPORT_CODEC_INTERNAL_H */
