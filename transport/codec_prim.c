/*
 * The wire codec's primitives, which every message's encoder and decoder
 * uses: msgpack-c's packer for encoding, a fixed-schema reader over the raw
 * bytes for decoding (every length and count checked against the bytes
 * that remain), the str fields with their limits, and equality helpers.
 * transport/codec_schema.c has the schema of every message.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_internal.h"

/* ------------------------------------------------------------------------
 * Encoding: msgpack-c's packer
 * ---------------------------------------------------------------------- */

int rlg_codec_enc_bin(msgpack_packer *pk, const void *data, size_t len)
{
    int rc = msgpack_pack_bin(pk, len);
    if (len > 0) {
        rc |= msgpack_pack_bin_body(pk, data, len);
    }
    return rc;
}

int rlg_codec_enc_bool(msgpack_packer *pk, bool b)
{
    return b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static size_t codec_str_max(codec_str kind)
{
    switch (kind) {
    case STR_ADDRESS:
        return RLOG_WIRE_ADDRESS_MAX;
    case STR_TEXT:
        return RLOG_WIRE_TEXT_MAX;
    default:
        return RLOG_WIRE_NAME_MAX;
    }
}

int rlg_codec_enc_str(msgpack_packer *pk, const char *s, codec_str kind, int *rc)
{
    if (s == NULL) {
        return RLOG_EINVAL;
    }
    size_t max = codec_str_max(kind);
    size_t len = strnlen(s, max + 1);
    if (len > max || (kind == STR_NAME && (len == 0 || memchr(s, '/', len) != NULL))) {
        return RLOG_EINVAL;
    }
    *rc |= msgpack_pack_str(pk, len);
    if (len > 0) {
        *rc |= msgpack_pack_str_body(pk, s, len);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Decoding: a fixed-schema reader over the raw bytes
 * ---------------------------------------------------------------------- */

int rlg_codec_rd_fail(codec_rd *r, size_t at, const char *field, const char *fmt, ...)
{
    if (r->err == NULL || r->errcap == 0) {
        return RLOG_EPROTO;
    }
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->entry >= 0) {
        snprintf(r->err, r->errcap, "%s.%s[%ld].%s at offset %zu: %s", r->msg, r->array, r->entry,
                 field, at, what);
    } else {
        snprintf(r->err, r->errcap, "%s.%s at offset %zu: %s", r->msg, field, at, what);
    }
    return RLOG_EPROTO;
}

size_t rlg_codec_rd_left(const codec_rd *r)
{
    return r->len - r->off;
}

/* Big-endian unsigned of `width` bytes at the cursor (caller checked). */
static uint64_t rd_be(codec_rd *r, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++) {
        v = (v << 8) | r->p[r->off + i];
    }
    r->off += width;
    return v;
}

static const char *rd_format_name(uint8_t b)
{
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf)) {
        return "unsigned integer";
    }
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3)) {
        return "signed integer";
    }
    if (b <= 0x8f || b == 0xde || b == 0xdf) {
        return "map";
    }
    if (b <= 0x9f || b == 0xdc || b == 0xdd) {
        return "array";
    }
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) {
        return "str";
    }
    switch (b) {
    case 0xc0:
        return "nil";
    case 0xc2:
    case 0xc3:
        return "bool";
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return "bin";
    case 0xca:
    case 0xcb:
        return "float";
    case 0xc1:
        return "never-used byte";
    default:
        return "ext";
    }
}

/* Reads the format byte of `field`; fails on end of input. */
static int rd_head(codec_rd *r, const char *field, const char *want, uint8_t *b)
{
    if (rlg_codec_rd_left(r) == 0) {
        return rlg_codec_rd_fail(r, r->off, field, "truncated: expected %s, no bytes remain", want);
    }
    *b = r->p[r->off++];
    return 0;
}

static int rd_wrong(codec_rd *r, size_t at, const char *field, const char *want, uint8_t b)
{
    return rlg_codec_rd_fail(r, at, field, "expected %s, found %s (0x%02x)", want,
                             rd_format_name(b), b);
}

/* Reads a `width`-byte big-endian length or value after a format byte. */
static int rd_fixed(codec_rd *r, size_t at, const char *field, unsigned width, uint64_t *v)
{
    if (rlg_codec_rd_left(r) < width) {
        return rlg_codec_rd_fail(r, at, field, "truncated: needs %u more bytes, %zu remain", width,
                                 rlg_codec_rd_left(r));
    }
    *v = rd_be(r, width);
    return 0;
}

int rlg_codec_rd_uint(codec_rd *r, const char *field, uint64_t max, uint64_t *v)
{
    size_t at = r->off;
    uint8_t b = 0;
    if (rd_head(r, field, "an unsigned integer", &b)) {
        return RLOG_EPROTO;
    }
    unsigned width = 0;
    bool is_signed = false;
    if (b <= 0x7f) {
        *v = b;
    } else if (b >= 0xcc && b <= 0xcf) {
        width = 1u << (b - 0xcc);
    } else if (b >= 0xd0 && b <= 0xd3) {
        width = 1u << (b - 0xd0);
        is_signed = true;
    } else if (b >= 0xe0) {
        return rlg_codec_rd_fail(r, at, field, "negative integer %d", (int)(int8_t)b);
    } else {
        return rd_wrong(r, at, field, "an unsigned integer", b);
    }
    if (width > 0 && rd_fixed(r, at, field, width, v)) {
        return RLOG_EPROTO;
    }
    if (is_signed && ((*v >> (8 * width - 1)) & 1u)) {
        return rlg_codec_rd_fail(r, at, field, "negative integer");
    }
    if (*v > max) {
        return rlg_codec_rd_fail(r, at, field, "value %" PRIu64 " exceeds the maximum %" PRIu64, *v,
                                 max);
    }
    return 0;
}

int rlg_codec_rd_u64(codec_rd *r, const char *field, uint64_t *v)
{
    return rlg_codec_rd_uint(r, field, UINT64_MAX, v);
}

int rlg_codec_rd_u32(codec_rd *r, const char *field, uint32_t *v)
{
    uint64_t x = 0;
    int rc = rlg_codec_rd_uint(r, field, UINT32_MAX, &x);
    *v = (uint32_t)x;
    return rc;
}

int rlg_codec_rd_bool(codec_rd *r, const char *field, bool *v)
{
    size_t at = r->off;
    uint8_t b = 0;
    if (rd_head(r, field, "a bool", &b)) {
        return RLOG_EPROTO;
    }
    if (b != 0xc2 && b != 0xc3) {
        return rd_wrong(r, at, field, "a bool", b);
    }
    *v = b == 0xc3;
    return 0;
}

int rlg_codec_rd_tribool(codec_rd *r, const char *field, rlog_msg_tribool *v)
{
    size_t at = r->off;
    uint8_t b = 0;
    if (rd_head(r, field, "nil or a bool", &b)) {
        return RLOG_EPROTO;
    }
    switch (b) {
    case 0xc0:
        *v = RLOG_TRIBOOL_UNKNOWN;
        return 0;
    case 0xc2:
        *v = RLOG_TRIBOOL_FALSE;
        return 0;
    case 0xc3:
        *v = RLOG_TRIBOOL_TRUE;
        return 0;
    default:
        return rd_wrong(r, at, field, "nil or a bool", b);
    }
}

/* The body of a str or bin whose length was just read: checked against the
 * bytes that remain; *data points into the input (NULL when empty). */
static int rd_body(codec_rd *r, size_t at, const char *field, uint64_t n, const void **data)
{
    if (n > rlg_codec_rd_left(r)) {
        return rlg_codec_rd_fail(r, at, field,
                                 "length %" PRIu64 " runs past the end (%zu bytes remain)", n,
                                 rlg_codec_rd_left(r));
    }
    *data = n > 0 ? r->p + r->off : NULL;
    r->off += (size_t)n;
    return 0;
}

int rlg_codec_rd_bin(codec_rd *r, const char *field, const void **data, size_t *len)
{
    size_t at = r->off;
    uint8_t b = 0;
    if (rd_head(r, field, "bin", &b)) {
        return RLOG_EPROTO;
    }
    if (b < 0xc4 || b > 0xc6) {
        return rd_wrong(r, at, field, "bin", b);
    }
    uint64_t n;
    if (rd_fixed(r, at, field, 1u << (b - 0xc4), &n) || rd_body(r, at, field, n, data)) {
        return RLOG_EPROTO;
    }
    *len = (size_t)n;
    return 0;
}

static int rd_str(codec_rd *r, const char *field, const void **data, size_t *len)
{
    size_t at = r->off;
    uint8_t b = 0;
    if (rd_head(r, field, "str", &b)) {
        return RLOG_EPROTO;
    }
    uint64_t n;
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1fu;
    } else if (b >= 0xd9 && b <= 0xdb) {
        if (rd_fixed(r, at, field, 1u << (b - 0xd9), &n)) {
            return RLOG_EPROTO;
        }
    } else {
        return rd_wrong(r, at, field, "str", b);
    }
    if (rd_body(r, at, field, n, data)) {
        return RLOG_EPROTO;
    }
    *len = (size_t)n;
    return 0;
}

int rlg_codec_rd_array(codec_rd *r, const char *field, uint32_t *n)
{
    size_t at = r->off;
    uint8_t b = 0;
    if (rd_head(r, field, "an array", &b)) {
        return RLOG_EPROTO;
    }
    uint64_t v;
    if (b >= 0x90 && b <= 0x9f) {
        v = b & 0x0fu;
    } else if (b == 0xdc || b == 0xdd) {
        if (rd_fixed(r, at, field, b == 0xdc ? 2u : 4u, &v)) {
            return RLOG_EPROTO;
        }
    } else {
        return rd_wrong(r, at, field, "an array", b);
    }
    *n = (uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------------------
 * Decoding: str fields
 * ---------------------------------------------------------------------- */

int rlg_codec_dec_str(codec_rd *r, const char *field, codec_str kind, const void **p, size_t *len)
{
    size_t at = r->off;
    if (rd_str(r, field, p, len)) {
        return RLOG_EPROTO;
    }
    size_t max = codec_str_max(kind);
    if (*len > max) {
        return rlg_codec_rd_fail(r, at, field, "%zu bytes exceed the maximum %zu", *len, max);
    }
    if (kind == STR_NAME && *len == 0) {
        return rlg_codec_rd_fail(r, at, field, "empty name");
    }
    if (*len > 0 && memchr(*p, 0, *len) != NULL) {
        return rlg_codec_rd_fail(r, at, field, "contains a NUL byte");
    }
    if (kind == STR_NAME && memchr(*p, '/', *len) != NULL) {
        return rlg_codec_rd_fail(r, at, field, "contains '/'");
    }
    return 0;
}

char *rlg_codec_put_str(char *dst, const void *p, size_t len)
{
    if (len > 0) {
        memcpy(dst, p, len);
    }
    dst[len] = '\0';
    return dst + len + 1;
}

int rlg_codec_dec_copy(rlog_msg *m, const void *addr, size_t alen, const char **out)
{
    char *copy = malloc(alen + 1);
    if (copy == NULL) {
        return RLOG_ENOMEM;
    }
    rlg_codec_put_str(copy, addr, alen);
    *out = copy;
    assert(m->alloc_ == NULL); /* one allocation per message */
    m->alloc_ = copy;
    return 0;
}

/* ------------------------------------------------------------------------
 * Equality
 * ---------------------------------------------------------------------- */

bool rlg_codec_bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

bool rlg_codec_str_equal(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}
