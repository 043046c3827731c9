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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_internal.h"

/* ------------------------------------------------------------------------
 * Names
 * ---------------------------------------------------------------------- */

/* Each message kind's name and its number of fields after [type, version]
 * (docs/wire.md, "Messages"); a type with no name here is unknown. */
typedef struct codec_kind {
    const char *name;
    unsigned nfields;
} codec_kind;

static const codec_kind kinds[] = {
    [RLOG_MSG_HELLO] = {"hello", 5},
    [RLOG_MSG_REQUEST_VOTE] = {"request_vote", 6},
    [RLOG_MSG_REQUEST_VOTE_RESULT] = {"request_vote_result", 3},
    [RLOG_MSG_APPEND_ENTRIES] = {"append_entries", 5},
    [RLOG_MSG_APPEND_ENTRIES_RESULT] = {"append_entries_result", 3},
    [RLOG_MSG_INSTALL_SNAPSHOT] = {"install_snapshot", 9},
    [RLOG_MSG_INSTALL_SNAPSHOT_RESULT] = {"install_snapshot_result", 3},
    [RLOG_MSG_TIMEOUT_NOW] = {"timeout_now", 3},
    [RLOG_MSG_REDIRECT] = {"redirect", 2},
    [RLOG_MSG_SHIP_START] = {"ship_start", 14},
    [RLOG_MSG_SHIP_REFUSE] = {"ship_refuse", 3},
    [RLOG_MSG_SHIP_TRUNCATE] = {"ship_truncate", 3},
    [RLOG_MSG_SHIP_ACCEPT] = {"ship_accept", 10},
    [RLOG_MSG_SHIP_FILES] = {"ship_files", 4},
    [RLOG_MSG_SHIP_FILES_OK] = {"ship_files_ok", 2},
    [RLOG_MSG_SHIP_FILE_REQ] = {"ship_file_req", 4},
    [RLOG_MSG_SHIP_FILE_DATA] = {"ship_file_data", 6},
    [RLOG_MSG_SHIP_DATA] = {"ship_data", 9},
    [RLOG_MSG_SHIP_ACK] = {"ship_ack", 7},
    [RLOG_MSG_SHIP_RESTART] = {"ship_restart", 2},
    [RLOG_MSG_SHIP_STATUS_REQ] = {"ship_status_req", 1},
    [RLOG_MSG_SHIP_STATUS] = {"ship_status", 7},
};

/* The kind of a message type; NULL when the type is unknown. */
static const codec_kind *kind_of(uint64_t type)
{
    if (type >= sizeof kinds / sizeof kinds[0] || kinds[type].name == NULL) {
        return NULL;
    }
    return &kinds[type];
}

const char *rlog_msg_type_name(int type)
{
    const codec_kind *k = type < 0 ? NULL : kind_of((uint64_t)type);
    return k != NULL ? k->name : "unknown";
}

/* Number of fields after [type, version] for each known type; 0 = unknown. */
static unsigned codec_nfields(uint64_t type)
{
    const codec_kind *k = kind_of(type);
    return k != NULL ? k->nfields : 0;
}

/* ------------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------- */

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
 * Decoding: one function per message
 * ---------------------------------------------------------------------- */

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
