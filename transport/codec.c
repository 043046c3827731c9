/*
 * The wire codec: rlog_msg <-> msgpack (docs/wire.md is the specification).
 *
 * Every message is one msgpack array [type, version, fields...]; the number
 * of fields is fixed per (type, version). "uint" is any msgpack integer
 * format holding a non-negative value that fits the field; "bin" is
 * bin8/16/32; "str" is fixstr/str8/16/32; "bool" is true/false.
 *
 *   type                          fields after [type, 1, ...]
 *   1 hello                       server_id uint64, address str (<= 1024 bytes,
 *                                 no NUL), protocol_version uint32, role uint32,
 *                                 flags uint64
 *   2 request_vote                term, candidate_id, last_log_index,
 *                                 last_log_term (uint64), disrupt_leader bool,
 *                                 pre_vote bool
 *   3 request_vote_result         term uint64, vote_granted bool,
 *                                 pre_vote nil|bool (unknown|false/true)
 *   4 append_entries              term, prev_log_index, prev_log_term,
 *                                 leader_commit (uint64), entries array of
 *                                 [term uint64, type uint16, payload bin]
 *   5 append_entries_result       term, rejected, last_log_index (uint64)
 *   6 install_snapshot            term, last_index, last_term, conf_index
 *                                 (uint64), conf bin, total, offset (uint64),
 *                                 chunk bin, done bool
 *   7 install_snapshot_result     term, last_index, next_offset (uint64)
 *   8 timeout_now                 term, last_log_index, last_log_term (uint64)
 *   9 redirect                    address str (<= 1024 bytes, no NUL), token uint64
 *
 * Segment shipping (docs/shipping.md). "text" is a str of <= 1024 bytes
 * without NUL; "name" a str of 1..255 bytes without NUL or '/'; "files" an
 * array of [name, size uint64, crc uint32]; "peers" an array of [id uint64,
 * name text, state uint32, durable, sent, lag_records, lag_bytes,
 * bytes_sent (uint64), connected bool].
 *   16 ship_start                 nonce, log_id, file_size, first_lsn, last_lsn,
 *                                 seq, seg_first_lsn, end (uint64), sealed bool,
 *                                 last_rec_off uint64, last_rec_crc uint32,
 *                                 last_rec_lsn, window, max_message (uint64)
 *   17 ship_refuse                nonce uint64, code uint32, message text
 *   18 ship_truncate              nonce, lsn (uint64), message text
 *   19 ship_accept                nonce, log_id (uint64), adopt bool, file_size,
 *                                 seq, first_lsn, leader_durable, files_gen,
 *                                 files_upto (uint64), files
 *   20 ship_files                 nonce, gen, upto (uint64), files
 *   21 ship_files_ok              nonce, gen (uint64)
 *   22 ship_file_req              nonce uint64, name, offset, len (uint64)
 *   23 ship_file_data             nonce uint64, name, size uint64, crc uint32,
 *                                 offset uint64, data bin (offset + len <= size)
 *   24 ship_data                  nonce, seq, seg_first_lsn, file_size, off,
 *                                 seg_end, leader_durable, first_seq (uint64),
 *                                 bytes bin
 *                                 (off + len fits; seg_end 0 or >= off + len)
 *   25 ship_ack                   nonce, recv_seq, recv_off, durable_seq,
 *                                 durable_off, durable_lsn (uint64), flags uint32
 *   26 ship_restart               nonce uint64, message text
 *   27 ship_status_req            request_id uint64
 *   28 ship_status                request_id, log_id, first_lsn, durable_lsn,
 *                                 first_seq, last_seq (uint64), peers
 *
 * Encoding uses msgpack-c's packer (smallest format for every value).
 * Decoding does not use msgpack-c's unpacker (it reserves memory for an
 * array header's claimed size before reading the elements): a fixed-schema
 * reader walks the raw bytes, checks every length and count against the
 * bytes that remain, and allocates at most one block of O(len) bytes (the
 * entries array, a string copy, or a shipping array with its names).
 */
#include "transport/codec.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_internal.h"

/* ------------------------------------------------------------------------
 * Names
 * ---------------------------------------------------------------------- */

const char *rlog_msg_type_name(int type)
{
    switch (type) {
    case RLOG_MSG_HELLO:
        return "hello";
    case RLOG_MSG_REQUEST_VOTE:
        return "request_vote";
    case RLOG_MSG_REQUEST_VOTE_RESULT:
        return "request_vote_result";
    case RLOG_MSG_APPEND_ENTRIES:
        return "append_entries";
    case RLOG_MSG_APPEND_ENTRIES_RESULT:
        return "append_entries_result";
    case RLOG_MSG_INSTALL_SNAPSHOT:
        return "install_snapshot";
    case RLOG_MSG_INSTALL_SNAPSHOT_RESULT:
        return "install_snapshot_result";
    case RLOG_MSG_TIMEOUT_NOW:
        return "timeout_now";
    case RLOG_MSG_REDIRECT:
        return "redirect";
    default:
        return rlg_codec_ship_type_name(type);
    }
}

/* Number of fields after [type, version] for each known type; 0 = unknown. */
static unsigned codec_nfields(uint64_t type)
{
    switch (type) {
    case RLOG_MSG_HELLO:
        return 5;
    case RLOG_MSG_REQUEST_VOTE:
        return 6;
    case RLOG_MSG_REQUEST_VOTE_RESULT:
        return 3;
    case RLOG_MSG_APPEND_ENTRIES:
        return 5;
    case RLOG_MSG_APPEND_ENTRIES_RESULT:
        return 3;
    case RLOG_MSG_INSTALL_SNAPSHOT:
        return 9;
    case RLOG_MSG_INSTALL_SNAPSHOT_RESULT:
        return 3;
    case RLOG_MSG_TIMEOUT_NOW:
        return 3;
    case RLOG_MSG_REDIRECT:
        return 2;
    case RLOG_MSG_SHIP_START:
        return 14;
    case RLOG_MSG_SHIP_REFUSE:
    case RLOG_MSG_SHIP_TRUNCATE:
        return 3;
    case RLOG_MSG_SHIP_ACCEPT:
        return 10;
    case RLOG_MSG_SHIP_FILES:
    case RLOG_MSG_SHIP_FILE_REQ:
        return 4;
    case RLOG_MSG_SHIP_FILES_OK:
    case RLOG_MSG_SHIP_RESTART:
        return 2;
    case RLOG_MSG_SHIP_FILE_DATA:
        return 6;
    case RLOG_MSG_SHIP_DATA:
        return 9;
    case RLOG_MSG_SHIP_ACK:
    case RLOG_MSG_SHIP_STATUS:
        return 7;
    case RLOG_MSG_SHIP_STATUS_REQ:
        return 1;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------- */

int rlg_codec_enc_bin(msgpack_packer *pk, const void *data, size_t len)
{
    int rc = msgpack_pack_bin(pk, len);
    if (len > 0) {
        rc |= msgpack_pack_bin_body(pk, data, len);
    }
    return rc;
}

int rlg_codec_enc_u64s(msgpack_packer *pk, const uint64_t *v, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= msgpack_pack_uint64(pk, v[i]);
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

static int enc_hello(msgpack_packer *pk, const rlog_msg_hello *h)
{
    int rc = msgpack_pack_uint64(pk, h->server_id);
    if (rlg_codec_enc_str(pk, h->address, STR_ADDRESS, &rc)) {
        return RLOG_EINVAL;
    }
    rc |= msgpack_pack_uint32(pk, h->protocol_version);
    rc |= msgpack_pack_uint32(pk, h->role);
    rc |= msgpack_pack_uint64(pk, h->flags);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_body(msgpack_packer *pk, const rlog_msg *m)
{
    switch (m->type) {
    case RLOG_MSG_HELLO:
        return enc_hello(pk, &m->u.hello);
    case RLOG_MSG_REDIRECT: {
        int rc = 0;
        if (rlg_codec_enc_str(pk, m->u.redirect.address, STR_ADDRESS, &rc)) {
            return RLOG_EINVAL;
        }
        rc |= msgpack_pack_uint64(pk, m->u.redirect.token);
        return rc ? RLOG_ENOMEM : 0;
    }
    default:
        return rlg_codec_raft_type(m->type) ? rlg_codec_enc_raft(pk, m) : rlg_codec_enc_ship(pk, m);
    }
}

/* A first guess at the encoded size, so that large AppendEntries and
 * snapshot chunks are not copied by repeated doubling. */
static size_t enc_estimate(const rlog_msg *m)
{
    size_t n = 128;
    if (m->type == RLOG_MSG_APPEND_ENTRIES && m->u.append_entries.entries != NULL) {
        const rlog_msg_append_entries *a = &m->u.append_entries;
        for (uint32_t i = 0; i < a->n_entries; i++) {
            n += 20 + (size_t)a->entries[i].len;
        }
    } else if (m->type == RLOG_MSG_INSTALL_SNAPSHOT) {
        n += m->u.install_snapshot.conf_len + m->u.install_snapshot.chunk_len;
    } else if (m->type == RLOG_MSG_SHIP_DATA) {
        n += m->u.ship_data.len;
    } else if (m->type == RLOG_MSG_SHIP_FILE_DATA) {
        n += m->u.ship_file_data.len + RLOG_WIRE_NAME_MAX;
    } else if (m->type == RLOG_MSG_SHIP_ACCEPT || m->type == RLOG_MSG_SHIP_FILES) {
        uint32_t nf =
            m->type == RLOG_MSG_SHIP_ACCEPT ? m->u.ship_accept.n_files : m->u.ship_files.n_files;
        n += (size_t)nf * 48;
    } else if (m->type == RLOG_MSG_SHIP_STATUS) {
        n += (size_t)m->u.ship_status.n_followers * 96;
    }
    return n;
}

int rlog_msg_encode(const rlog_msg *msg, void **buf, size_t *len)
{
    if (buf == NULL || len == NULL) {
        return RLOG_EINVAL;
    }
    *buf = NULL;
    *len = 0;
    if (msg == NULL || codec_nfields((uint64_t)msg->type) == 0) {
        return RLOG_EINVAL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t est = enc_estimate(msg);
    sb.data = malloc(est);
    if (sb.data == NULL) {
        return RLOG_ENOMEM;
    }
    sb.alloc = est;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 2 + codec_nfields((uint64_t)msg->type));
    rc |= msgpack_pack_uint32(&pk, (uint32_t)msg->type);
    rc |= msgpack_pack_uint32(&pk, RLOG_WIRE_MSG_VERSION);
    rc = rc ? RLOG_ENOMEM : enc_body(&pk, msg);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
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

int rlg_codec_rd_u64s(codec_rd *r, const char *const *names, uint64_t *const *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rlg_codec_rd_u64(r, names[i], out[i])) {
            return RLOG_EPROTO;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Decoding: one function per message
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

int rlg_codec_dec_copy(rlog_msg *m, const void *addr, size_t alen, const char **out)
{
    char *copy = malloc(alen + 1);
    if (copy == NULL) {
        return RLOG_ENOMEM;
    }
    if (alen > 0) {
        memcpy(copy, addr, alen);
    }
    copy[alen] = '\0';
    *out = copy;
    assert(m->alloc_ == NULL); /* one allocation per message */
    m->alloc_ = copy;
    return 0;
}

static int dec_hello(codec_rd *r, rlog_msg *m)
{
    rlog_msg_hello *h = &m->u.hello;
    const void *addr = NULL;
    size_t alen = 0;
    if (rlg_codec_rd_u64(r, "server_id", &h->server_id) ||
        rlg_codec_dec_str(r, "address", STR_ADDRESS, &addr, &alen)) {
        return RLOG_EPROTO;
    }
    if (rlg_codec_rd_u32(r, "protocol_version", &h->protocol_version) ||
        rlg_codec_rd_u32(r, "role", &h->role) || rlg_codec_rd_u64(r, "flags", &h->flags)) {
        return RLOG_EPROTO;
    }
    return rlg_codec_dec_copy(m, addr, alen, &h->address);
}

static int dec_redirect(codec_rd *r, rlog_msg *m)
{
    const void *addr = NULL;
    size_t alen = 0;
    if (rlg_codec_dec_str(r, "address", STR_ADDRESS, &addr, &alen) ||
        rlg_codec_rd_u64(r, "token", &m->u.redirect.token)) {
        return RLOG_EPROTO;
    }
    return rlg_codec_dec_copy(m, addr, alen, &m->u.redirect.address);
}

static int dec_body(codec_rd *r, rlog_msg *m, uint64_t type)
{
    switch (type) {
    case RLOG_MSG_HELLO:
        return dec_hello(r, m);
    case RLOG_MSG_REDIRECT:
        return dec_redirect(r, m);
    default:
        return rlg_codec_raft_type(type) ? rlg_codec_dec_raft(r, m, type)
                                         : rlg_codec_dec_ship(r, m, type);
    }
}

/* [type, version, ...]: checks the header against the schema. */
static int dec_header(codec_rd *r, uint64_t *type)
{
    uint32_t n;
    uint64_t version;
    if (rlg_codec_rd_array(r, "(array)", &n)) {
        return RLOG_EPROTO;
    }
    if (n < 2) {
        return rlg_codec_rd_fail(r, 0, "(array)", "%" PRIu32 " elements; a message has at least 2",
                                 n);
    }
    size_t at = r->off;
    if (rlg_codec_rd_u64(r, "type", type)) {
        return RLOG_EPROTO;
    }
    unsigned nfields = codec_nfields(*type);
    if (nfields == 0) {
        return rlg_codec_rd_fail(r, at, "type", "unknown message type %" PRIu64, *type);
    }
    r->msg = rlog_msg_type_name((int)*type);
    at = r->off;
    if (rlg_codec_rd_u64(r, "version", &version)) {
        return RLOG_EPROTO;
    }
    if (version != RLOG_WIRE_MSG_VERSION) {
        return rlg_codec_rd_fail(r, at, "version",
                                 "unsupported version %" PRIu64 " (this build speaks %u)", version,
                                 RLOG_WIRE_MSG_VERSION);
    }
    if (n != nfields + 2) {
        return rlg_codec_rd_fail(r, 0, "(array)", "%" PRIu32 " elements; version %u has %u", n,
                                 RLOG_WIRE_MSG_VERSION, nfields + 2);
    }
    return 0;
}

int rlog_msg_decode(const void *buf, size_t len, size_t max_bytes, rlog_msg *out, char *err,
                    size_t errcap)
{
    if (out == NULL || (buf == NULL && len > 0)) {
        return RLOG_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (err != NULL && errcap > 0) {
        err[0] = '\0';
    }
    codec_rd r = {buf, len, 0, "message", -1, err, errcap, "entries"};
    if (max_bytes == 0) {
        max_bytes = RLOG_WIRE_MAX_BYTES_DEFAULT;
    }
    if (len > max_bytes) {
        return rlg_codec_rd_fail(&r, 0, "(array)", "%zu bytes exceed the limit of %zu", len,
                                 max_bytes);
    }
    uint64_t type = 0;
    int rc = dec_header(&r, &type);
    if (rc == 0) {
        rc = dec_body(&r, out, type);
    }
    if (rc == 0 && r.off != len) {
        rc = rlg_codec_rd_fail(&r, r.off, "(array)", "%zu trailing bytes after the message",
                               len - r.off);
    }
    if (rc == RLOG_ENOMEM && err != NULL && errcap > 0) {
        snprintf(err, errcap, "%s: out of memory", r.msg);
    }
    if (rc != 0) {
        rlog_msg_free(out);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->type = (rlog_msg_type)type;
    return 0;
}

void rlog_msg_free(rlog_msg *msg)
{
    if (msg == NULL) {
        return;
    }
    free(msg->alloc_);
    msg->alloc_ = NULL;
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

static bool eq_hello(const rlog_msg_hello *a, const rlog_msg_hello *b)
{
    return a->server_id == b->server_id && a->protocol_version == b->protocol_version &&
           a->role == b->role && a->flags == b->flags &&
           rlg_codec_str_equal(a->address, b->address);
}

bool rlg_msg_equal(const rlog_msg *a, const rlog_msg *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case RLOG_MSG_HELLO:
        return eq_hello(&a->u.hello, &b->u.hello);
    case RLOG_MSG_REDIRECT:
        return a->u.redirect.token == b->u.redirect.token &&
               rlg_codec_str_equal(a->u.redirect.address, b->u.redirect.address);
    default:
        return rlg_codec_raft_type(a->type) ? rlg_codec_eq_raft(a, b) : rlg_codec_eq_ship(a, b);
    }
}
