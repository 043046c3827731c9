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

#include <msgpack.h>

/* ------------------------------------------------------------------------
 * Names
 * ---------------------------------------------------------------------- */

static const char *ship_type_name(int type)
{
    static const char *const names[] = {
        "ship_start",    "ship_refuse",     "ship_truncate",  "ship_accept", "ship_files",
        "ship_files_ok", "ship_file_req",   "ship_file_data", "ship_data",   "ship_ack",
        "ship_restart",  "ship_status_req", "ship_status"};
    if (type >= RLOG_MSG_SHIP_START && type <= RLOG_MSG_SHIP_STATUS) {
        return names[type - RLOG_MSG_SHIP_START];
    }
    return "unknown";
}

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
        return ship_type_name(type);
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

/* Packer calls return 0 or -1 (only on allocation failure): callers OR
 * their results and map a non-zero total to RLOG_ENOMEM. */
static int enc_bin(msgpack_packer *pk, const void *data, size_t len)
{
    int rc = msgpack_pack_bin(pk, len);
    if (len > 0) {
        rc |= msgpack_pack_bin_body(pk, data, len);
    }
    return rc;
}

static int enc_u64s(msgpack_packer *pk, const uint64_t *v, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= msgpack_pack_uint64(pk, v[i]);
    }
    return rc;
}

static int enc_bool(msgpack_packer *pk, bool b)
{
    return b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

/* The three kinds of str field, with the limits both sides check: an
 * address (<= RLOG_WIRE_ADDRESS_MAX bytes), a text (<= RLOG_WIRE_TEXT_MAX
 * bytes) and a side-file name (1..RLOG_WIRE_NAME_MAX bytes, no '/'). None
 * holds a NUL byte. */
typedef enum codec_str { STR_ADDRESS, STR_TEXT, STR_NAME } codec_str;

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

/* A NUL-terminated string of `kind`. *rc receives the packer's result;
 * returns RLOG_EINVAL for a string the decoder refuses. */
static int enc_str(msgpack_packer *pk, const char *s, codec_str kind, int *rc)
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
    if (enc_str(pk, h->address, STR_ADDRESS, &rc)) {
        return RLOG_EINVAL;
    }
    rc |= msgpack_pack_uint32(pk, h->protocol_version);
    rc |= msgpack_pack_uint32(pk, h->role);
    rc |= msgpack_pack_uint64(pk, h->flags);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_request_vote(msgpack_packer *pk, const rlog_msg_request_vote *v)
{
    uint64_t u[4] = {v->term, v->candidate_id, v->last_log_index, v->last_log_term};
    int rc = enc_u64s(pk, u, 4);
    rc |= enc_bool(pk, v->disrupt_leader);
    rc |= enc_bool(pk, v->pre_vote);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_request_vote_result(msgpack_packer *pk, const rlog_msg_request_vote_result *v)
{
    int rc = msgpack_pack_uint64(pk, v->term);
    rc |= enc_bool(pk, v->vote_granted);
    switch (v->pre_vote) {
    case RLOG_TRIBOOL_UNKNOWN:
        rc |= msgpack_pack_nil(pk);
        break;
    case RLOG_TRIBOOL_TRUE:
        rc |= msgpack_pack_true(pk);
        break;
    case RLOG_TRIBOOL_FALSE:
        rc |= msgpack_pack_false(pk);
        break;
    default:
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_append_entries(msgpack_packer *pk, const rlog_msg_append_entries *a)
{
    if (a->n_entries > 0 && a->entries == NULL) {
        return RLOG_EINVAL;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        if (a->entries[i].len > 0 && a->entries[i].data == NULL) {
            return RLOG_EINVAL;
        }
    }
    uint64_t u[4] = {a->term, a->prev_log_index, a->prev_log_term, a->leader_commit};
    int rc = enc_u64s(pk, u, 4);
    rc |= msgpack_pack_array(pk, a->n_entries);
    for (uint32_t i = 0; i < a->n_entries && rc == 0; i++) {
        const rlog_msg_entry *e = &a->entries[i];
        rc |= msgpack_pack_array(pk, 3);
        rc |= msgpack_pack_uint64(pk, e->term);
        rc |= msgpack_pack_uint16(pk, e->type);
        rc |= enc_bin(pk, e->data, e->len);
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_install_snapshot(msgpack_packer *pk, const rlog_msg_install_snapshot *s)
{
    if ((s->conf_len > 0 && s->conf == NULL) || (s->chunk_len > 0 && s->chunk == NULL)) {
        return RLOG_EINVAL;
    }
    if (s->conf_len > UINT32_MAX || s->chunk_len > UINT32_MAX) {
        return RLOG_EINVAL; /* bin32 is the largest msgpack byte string */
    }
    if (s->offset > s->total || s->chunk_len > s->total - s->offset) {
        return RLOG_EINVAL;
    }
    if (s->done != (s->offset + s->chunk_len == s->total)) {
        return RLOG_EINVAL;
    }
    uint64_t u[4] = {s->term, s->last_index, s->last_term, s->conf_index};
    int rc = enc_u64s(pk, u, 4);
    rc |= enc_bin(pk, s->conf, s->conf_len);
    rc |= msgpack_pack_uint64(pk, s->total);
    rc |= msgpack_pack_uint64(pk, s->offset);
    rc |= enc_bin(pk, s->chunk, s->chunk_len);
    rc |= enc_bool(pk, s->done);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_three(msgpack_packer *pk, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t u[3] = {a, b, c};
    return enc_u64s(pk, u, 3) ? RLOG_ENOMEM : 0;
}

/* ---- segment shipping ---- */

static int enc_files(msgpack_packer *pk, uint32_t n, const rlog_msg_ship_file *f, int *rc)
{
    if (n > 0 && f == NULL) {
        return RLOG_EINVAL;
    }
    *rc |= msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        *rc |= msgpack_pack_array(pk, 3);
        if (enc_str(pk, f[i].name, STR_NAME, rc)) {
            return RLOG_EINVAL;
        }
        *rc |= msgpack_pack_uint64(pk, f[i].size);
        *rc |= msgpack_pack_uint32(pk, f[i].crc);
    }
    return 0;
}

static int enc_ship_start(msgpack_packer *pk, const rlog_msg_ship_start *s)
{
    uint64_t u[8] = {s->nonce,    s->log_id, s->file_size,     s->first_lsn,
                     s->last_lsn, s->seq,    s->seg_first_lsn, s->end};
    int rc = enc_u64s(pk, u, 8);
    rc |= enc_bool(pk, s->sealed);
    rc |= msgpack_pack_uint64(pk, s->last_rec_off);
    rc |= msgpack_pack_uint32(pk, s->last_rec_crc);
    uint64_t v[3] = {s->last_rec_lsn, s->window, s->max_message};
    rc |= enc_u64s(pk, v, 3);
    return rc ? RLOG_ENOMEM : 0;
}

/* nonce, one uint64 or uint32 (`u32` picks), then a text. */
static int enc_num_text(msgpack_packer *pk, uint64_t nonce, uint64_t v, bool u32, const char *text)
{
    int rc = msgpack_pack_uint64(pk, nonce);
    rc |= u32 ? msgpack_pack_uint32(pk, (uint32_t)v) : msgpack_pack_uint64(pk, v);
    if (enc_str(pk, text, STR_TEXT, &rc)) {
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_accept(msgpack_packer *pk, const rlog_msg_ship_accept *a)
{
    uint64_t u[2] = {a->nonce, a->log_id};
    uint64_t v[6] = {a->file_size,      a->seq,       a->first_lsn,
                     a->leader_durable, a->files_gen, a->files_upto};
    int rc = enc_u64s(pk, u, 2);
    rc |= enc_bool(pk, a->adopt);
    rc |= enc_u64s(pk, v, 6);
    if (enc_files(pk, a->n_files, a->files, &rc)) {
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_files(msgpack_packer *pk, const rlog_msg_ship_files *f)
{
    uint64_t u[3] = {f->nonce, f->gen, f->upto};
    int rc = enc_u64s(pk, u, 3);
    if (enc_files(pk, f->n_files, f->files, &rc)) {
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_file_req(msgpack_packer *pk, const rlog_msg_ship_file_req *q)
{
    int rc = msgpack_pack_uint64(pk, q->nonce);
    if (enc_str(pk, q->name, STR_NAME, &rc)) {
        return RLOG_EINVAL;
    }
    rc |= msgpack_pack_uint64(pk, q->offset);
    rc |= msgpack_pack_uint64(pk, q->len);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_file_data(msgpack_packer *pk, const rlog_msg_ship_file_data *d)
{
    if ((d->len > 0 && d->data == NULL) || d->len > UINT32_MAX) {
        return RLOG_EINVAL;
    }
    if (d->offset > d->size || d->len > d->size - d->offset) {
        return RLOG_EINVAL;
    }
    int rc = msgpack_pack_uint64(pk, d->nonce);
    if (enc_str(pk, d->name, STR_NAME, &rc)) {
        return RLOG_EINVAL;
    }
    rc |= msgpack_pack_uint64(pk, d->size);
    rc |= msgpack_pack_uint32(pk, d->crc);
    rc |= msgpack_pack_uint64(pk, d->offset);
    rc |= enc_bin(pk, d->data, d->len);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_data(msgpack_packer *pk, const rlog_msg_ship_data *d)
{
    if ((d->len > 0 && d->bytes == NULL) || d->len > UINT32_MAX) {
        return RLOG_EINVAL;
    }
    if (d->len > UINT64_MAX - d->off || (d->seg_end != 0 && d->off + d->len > d->seg_end)) {
        return RLOG_EINVAL;
    }
    uint64_t u[8] = {d->nonce, d->seq,     d->seg_first_lsn,  d->file_size,
                     d->off,   d->seg_end, d->leader_durable, d->first_seq};
    int rc = enc_u64s(pk, u, 8);
    rc |= enc_bin(pk, d->bytes, d->len);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_ack(msgpack_packer *pk, const rlog_msg_ship_ack *a)
{
    uint64_t u[6] = {a->nonce,       a->recv_seq,    a->recv_off,
                     a->durable_seq, a->durable_off, a->durable_lsn};
    int rc = enc_u64s(pk, u, 6);
    rc |= msgpack_pack_uint32(pk, a->flags);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_status(msgpack_packer *pk, const rlog_msg_ship_status *s)
{
    if (s->n_followers > 0 && s->followers == NULL) {
        return RLOG_EINVAL;
    }
    uint64_t u[6] = {s->request_id,  s->log_id,    s->first_lsn,
                     s->durable_lsn, s->first_seq, s->last_seq};
    int rc = enc_u64s(pk, u, 6);
    rc |= msgpack_pack_array(pk, s->n_followers);
    for (uint32_t i = 0; i < s->n_followers; i++) {
        const rlog_msg_ship_peer *p = &s->followers[i];
        rc |= msgpack_pack_array(pk, 9);
        rc |= msgpack_pack_uint64(pk, p->id);
        if (enc_str(pk, p->name, STR_TEXT, &rc)) {
            return RLOG_EINVAL;
        }
        rc |= msgpack_pack_uint32(pk, p->state);
        uint64_t v[5] = {p->durable, p->sent, p->lag_records, p->lag_bytes, p->bytes_sent};
        rc |= enc_u64s(pk, v, 5);
        rc |= enc_bool(pk, p->connected);
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship(msgpack_packer *pk, const rlog_msg *m)
{
    switch (m->type) {
    case RLOG_MSG_SHIP_START:
        return enc_ship_start(pk, &m->u.ship_start);
    case RLOG_MSG_SHIP_REFUSE: {
        const rlog_msg_ship_refuse *r = &m->u.ship_refuse;
        return enc_num_text(pk, r->nonce, r->code, true, r->message);
    }
    case RLOG_MSG_SHIP_TRUNCATE: {
        const rlog_msg_ship_truncate *t = &m->u.ship_truncate;
        return enc_num_text(pk, t->nonce, t->lsn, false, t->message);
    }
    case RLOG_MSG_SHIP_ACCEPT:
        return enc_ship_accept(pk, &m->u.ship_accept);
    case RLOG_MSG_SHIP_FILES:
        return enc_ship_files(pk, &m->u.ship_files);
    case RLOG_MSG_SHIP_FILES_OK: {
        uint64_t u[2] = {m->u.ship_files_ok.nonce, m->u.ship_files_ok.gen};
        return enc_u64s(pk, u, 2) ? RLOG_ENOMEM : 0;
    }
    case RLOG_MSG_SHIP_FILE_REQ:
        return enc_ship_file_req(pk, &m->u.ship_file_req);
    case RLOG_MSG_SHIP_FILE_DATA:
        return enc_ship_file_data(pk, &m->u.ship_file_data);
    case RLOG_MSG_SHIP_DATA:
        return enc_ship_data(pk, &m->u.ship_data);
    case RLOG_MSG_SHIP_ACK:
        return enc_ship_ack(pk, &m->u.ship_ack);
    case RLOG_MSG_SHIP_RESTART: {
        int rc = msgpack_pack_uint64(pk, m->u.ship_restart.nonce);
        if (enc_str(pk, m->u.ship_restart.message, STR_TEXT, &rc)) {
            return RLOG_EINVAL;
        }
        return rc ? RLOG_ENOMEM : 0;
    }
    case RLOG_MSG_SHIP_STATUS_REQ:
        return msgpack_pack_uint64(pk, m->u.ship_status_req.request_id) ? RLOG_ENOMEM : 0;
    case RLOG_MSG_SHIP_STATUS:
        return enc_ship_status(pk, &m->u.ship_status);
    default:
        return RLOG_EINVAL;
    }
}

static int enc_body(msgpack_packer *pk, const rlog_msg *m)
{
    switch (m->type) {
    case RLOG_MSG_HELLO:
        return enc_hello(pk, &m->u.hello);
    case RLOG_MSG_REQUEST_VOTE:
        return enc_request_vote(pk, &m->u.request_vote);
    case RLOG_MSG_REQUEST_VOTE_RESULT:
        return enc_request_vote_result(pk, &m->u.request_vote_result);
    case RLOG_MSG_APPEND_ENTRIES:
        return enc_append_entries(pk, &m->u.append_entries);
    case RLOG_MSG_APPEND_ENTRIES_RESULT: {
        const rlog_msg_append_entries_result *r = &m->u.append_entries_result;
        return enc_three(pk, r->term, r->rejected, r->last_log_index);
    }
    case RLOG_MSG_INSTALL_SNAPSHOT:
        return enc_install_snapshot(pk, &m->u.install_snapshot);
    case RLOG_MSG_INSTALL_SNAPSHOT_RESULT: {
        const rlog_msg_install_snapshot_result *r = &m->u.install_snapshot_result;
        return enc_three(pk, r->term, r->last_index, r->next_offset);
    }
    case RLOG_MSG_TIMEOUT_NOW: {
        const rlog_msg_timeout_now *t = &m->u.timeout_now;
        return enc_three(pk, t->term, t->last_log_index, t->last_log_term);
    }
    case RLOG_MSG_REDIRECT: {
        int rc = 0;
        if (enc_str(pk, m->u.redirect.address, STR_ADDRESS, &rc)) {
            return RLOG_EINVAL;
        }
        rc |= msgpack_pack_uint64(pk, m->u.redirect.token);
        return rc ? RLOG_ENOMEM : 0;
    }
    default:
        return enc_ship(pk, m);
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

#if defined(__GNUC__)
static int rd_fail(codec_rd *r, size_t at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif

static int rd_fail(codec_rd *r, size_t at, const char *field, const char *fmt, ...)
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

static size_t rd_left(const codec_rd *r)
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
    if (rd_left(r) == 0) {
        return rd_fail(r, r->off, field, "truncated: expected %s, no bytes remain", want);
    }
    *b = r->p[r->off++];
    return 0;
}

static int rd_wrong(codec_rd *r, size_t at, const char *field, const char *want, uint8_t b)
{
    return rd_fail(r, at, field, "expected %s, found %s (0x%02x)", want, rd_format_name(b), b);
}

/* Reads a `width`-byte big-endian length or value after a format byte. */
static int rd_fixed(codec_rd *r, size_t at, const char *field, unsigned width, uint64_t *v)
{
    if (rd_left(r) < width) {
        return rd_fail(r, at, field, "truncated: needs %u more bytes, %zu remain", width,
                       rd_left(r));
    }
    *v = rd_be(r, width);
    return 0;
}

/* Any msgpack integer holding a value in 0..max. */
static int rd_uint(codec_rd *r, const char *field, uint64_t max, uint64_t *v)
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
        return rd_fail(r, at, field, "negative integer %d", (int)(int8_t)b);
    } else {
        return rd_wrong(r, at, field, "an unsigned integer", b);
    }
    if (width > 0 && rd_fixed(r, at, field, width, v)) {
        return RLOG_EPROTO;
    }
    if (is_signed && ((*v >> (8 * width - 1)) & 1u)) {
        return rd_fail(r, at, field, "negative integer");
    }
    if (*v > max) {
        return rd_fail(r, at, field, "value %" PRIu64 " exceeds the maximum %" PRIu64, *v, max);
    }
    return 0;
}

static int rd_u64(codec_rd *r, const char *field, uint64_t *v)
{
    return rd_uint(r, field, UINT64_MAX, v);
}

static int rd_u32(codec_rd *r, const char *field, uint32_t *v)
{
    uint64_t x = 0;
    int rc = rd_uint(r, field, UINT32_MAX, &x);
    *v = (uint32_t)x;
    return rc;
}

static int rd_bool(codec_rd *r, const char *field, bool *v)
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

static int rd_tribool(codec_rd *r, const char *field, rlog_msg_tribool *v)
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
    if (n > rd_left(r)) {
        return rd_fail(r, at, field, "length %" PRIu64 " runs past the end (%zu bytes remain)", n,
                       rd_left(r));
    }
    *data = n > 0 ? r->p + r->off : NULL;
    r->off += (size_t)n;
    return 0;
}

static int rd_bin(codec_rd *r, const char *field, const void **data, size_t *len)
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

/* An array header; the count is NOT checked here (callers compare it with
 * the schema or with the bytes that remain). */
static int rd_array(codec_rd *r, const char *field, uint32_t *n)
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

/* Reads `n` uint64 fields named in `names` into `out`. */
static int rd_u64s(codec_rd *r, const char *const *names, uint64_t *const *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rd_u64(r, names[i], out[i])) {
            return RLOG_EPROTO;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Decoding: one function per message
 * ---------------------------------------------------------------------- */

/* A str field of `kind`, checked like enc_str; *p points into the input
 * (not NUL-terminated): dec_copy or dec_put_str copies it once the rest of
 * the message decoded. */
static int dec_str(codec_rd *r, const char *field, codec_str kind, const void **p, size_t *len)
{
    size_t at = r->off;
    if (rd_str(r, field, p, len)) {
        return RLOG_EPROTO;
    }
    size_t max = codec_str_max(kind);
    if (*len > max) {
        return rd_fail(r, at, field, "%zu bytes exceed the maximum %zu", *len, max);
    }
    if (kind == STR_NAME && *len == 0) {
        return rd_fail(r, at, field, "empty name");
    }
    if (*len > 0 && memchr(*p, 0, *len) != NULL) {
        return rd_fail(r, at, field, "contains a NUL byte");
    }
    if (kind == STR_NAME && memchr(*p, '/', *len) != NULL) {
        return rd_fail(r, at, field, "contains '/'");
    }
    return 0;
}

/* Copies the str at addr, NUL-terminated, into the message's allocation. */
static int dec_copy(rlog_msg *m, const void *addr, size_t alen, const char **out)
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
    if (rd_u64(r, "server_id", &h->server_id) || dec_str(r, "address", STR_ADDRESS, &addr, &alen)) {
        return RLOG_EPROTO;
    }
    if (rd_u32(r, "protocol_version", &h->protocol_version) || rd_u32(r, "role", &h->role) ||
        rd_u64(r, "flags", &h->flags)) {
        return RLOG_EPROTO;
    }
    return dec_copy(m, addr, alen, &h->address);
}

static int dec_redirect(codec_rd *r, rlog_msg *m)
{
    const void *addr = NULL;
    size_t alen = 0;
    if (dec_str(r, "address", STR_ADDRESS, &addr, &alen) ||
        rd_u64(r, "token", &m->u.redirect.token)) {
        return RLOG_EPROTO;
    }
    return dec_copy(m, addr, alen, &m->u.redirect.address);
}

static int dec_request_vote(codec_rd *r, rlog_msg *m)
{
    rlog_msg_request_vote *v = &m->u.request_vote;
    static const char *const names[] = {"term", "candidate_id", "last_log_index", "last_log_term"};
    uint64_t *const out[] = {&v->term, &v->candidate_id, &v->last_log_index, &v->last_log_term};
    if (rd_u64s(r, names, out, 4) || rd_bool(r, "disrupt_leader", &v->disrupt_leader) ||
        rd_bool(r, "pre_vote", &v->pre_vote)) {
        return RLOG_EPROTO;
    }
    return 0;
}

static int dec_request_vote_result(codec_rd *r, rlog_msg *m)
{
    rlog_msg_request_vote_result *v = &m->u.request_vote_result;
    if (rd_u64(r, "term", &v->term) || rd_bool(r, "vote_granted", &v->vote_granted) ||
        rd_tribool(r, "pre_vote", &v->pre_vote)) {
        return RLOG_EPROTO;
    }
    return 0;
}

static int dec_entry(codec_rd *r, rlog_msg_entry *e)
{
    size_t at = r->off;
    uint32_t n;
    uint64_t type;
    size_t len;
    if (rd_array(r, "(entry)", &n)) {
        return RLOG_EPROTO;
    }
    if (n != 3) {
        return rd_fail(r, at, "(entry)", "array of %" PRIu32 " elements; an entry has 3", n);
    }
    if (rd_u64(r, "term", &e->term) || rd_uint(r, "type", UINT16_MAX, &type) ||
        rd_bin(r, "payload", &e->data, &len)) {
        return RLOG_EPROTO;
    }
    e->type = (uint16_t)type;
    e->len = (uint32_t)len; /* bin32 lengths fit */
    return 0;
}

static int dec_append_entries(codec_rd *r, rlog_msg *m)
{
    rlog_msg_append_entries *a = &m->u.append_entries;
    static const char *const names[] = {"term", "prev_log_index", "prev_log_term", "leader_commit"};
    uint64_t *const out[] = {&a->term, &a->prev_log_index, &a->prev_log_term, &a->leader_commit};
    if (rd_u64s(r, names, out, 4)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    uint32_t n;
    if (rd_array(r, "entries", &n)) {
        return RLOG_EPROTO;
    }
    size_t cap = rd_left(r) / RLOG_WIRE_ENTRY_MIN_BYTES;
    if (n > cap) {
        return rd_fail(r, at, "entries",
                       "count %" PRIu32 " exceeds the %zu entries that the %zu remaining bytes "
                       "can hold",
                       n, cap, rd_left(r));
    }
    if (n == 0) {
        return 0;
    }
    rlog_msg_entry *e = calloc(n, sizeof *e);
    if (e == NULL) {
        return RLOG_ENOMEM;
    }
    assert(m->alloc_ == NULL); /* one allocation per message */
    m->alloc_ = e;
    for (uint32_t i = 0; i < n; i++) {
        r->entry = (long)i;
        if (dec_entry(r, &e[i])) {
            return RLOG_EPROTO;
        }
    }
    r->entry = -1;
    a->entries = e;
    a->n_entries = n;
    return 0;
}

static int dec_install_snapshot(codec_rd *r, rlog_msg *m)
{
    rlog_msg_install_snapshot *s = &m->u.install_snapshot;
    static const char *const names[] = {"term", "last_index", "last_term", "conf_index"};
    uint64_t *const out[] = {&s->term, &s->last_index, &s->last_term, &s->conf_index};
    if (rd_u64s(r, names, out, 4) || rd_bin(r, "conf", &s->conf, &s->conf_len) ||
        rd_u64(r, "total", &s->total) || rd_u64(r, "offset", &s->offset)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    if (rd_bin(r, "chunk", &s->chunk, &s->chunk_len)) {
        return RLOG_EPROTO;
    }
    if (s->offset > s->total || s->chunk_len > s->total - s->offset) {
        return rd_fail(r, at, "chunk",
                       "offset %" PRIu64 " + %zu bytes run past the snapshot size %" PRIu64,
                       s->offset, s->chunk_len, s->total);
    }
    at = r->off;
    if (rd_bool(r, "done", &s->done)) {
        return RLOG_EPROTO;
    }
    bool ends = s->offset + s->chunk_len == s->total;
    if (s->done != ends) {
        return rd_fail(r, at, "done", "%s but the chunk ends at %" PRIu64 " of %" PRIu64,
                       s->done ? "true" : "false", s->offset + s->chunk_len, s->total);
    }
    return 0;
}

static int dec_three(codec_rd *r, const char *n0, const char *n1, const char *n2, uint64_t *v0,
                     uint64_t *v1, uint64_t *v2)
{
    const char *const names[] = {n0, n1, n2};
    uint64_t *const out[] = {v0, v1, v2};
    return rd_u64s(r, names, out, 3);
}

/* ---- segment shipping ---- */

/* Copies len bytes at p NUL-terminated to *dst and advances it. */
static const char *dec_put_str(char **dst, const void *p, size_t len)
{
    char *s = *dst;
    if (len > 0) {
        memcpy(s, p, len);
    }
    s[len] = '\0';
    *dst = s + len + 1;
    return s;
}

/* The header of a shipping array `field` whose elements take at least
 * `min` bytes; allocates m->alloc_ for *n elements of `elem` bytes plus
 * their strings (at most the remaining bytes + one NUL each). */
static int dec_array_block(codec_rd *r, rlog_msg *m, const char *field, size_t min, size_t elem,
                           uint32_t *n, void **items, char **strs)
{
    size_t at = r->off;
    if (rd_array(r, field, n)) {
        return RLOG_EPROTO;
    }
    size_t cap = rd_left(r) / min;
    if (*n > cap) {
        return rd_fail(r, at, field,
                       "count %" PRIu32 " exceeds the %zu elements that the %zu remaining bytes "
                       "can hold",
                       *n, cap, rd_left(r));
    }
    *items = NULL;
    if (*n == 0) {
        return 0;
    }
    char *block = malloc((size_t)*n * elem + rd_left(r) + *n);
    if (block == NULL) {
        return RLOG_ENOMEM;
    }
    assert(m->alloc_ == NULL); /* one allocation per message */
    m->alloc_ = block;
    *items = block;
    *strs = block + (size_t)*n * elem;
    r->array = field;
    return 0;
}

/* One element header: an array of exactly `want` elements. */
static int dec_elem(codec_rd *r, uint32_t want)
{
    size_t at = r->off;
    uint32_t n;
    if (rd_array(r, "(element)", &n)) {
        return RLOG_EPROTO;
    }
    if (n != want) {
        return rd_fail(r, at, "(element)", "array of %" PRIu32 " elements; it has %" PRIu32, n,
                       want);
    }
    return 0;
}

static int dec_files(codec_rd *r, rlog_msg *m, uint32_t *n_out, const rlog_msg_ship_file **out)
{
    uint32_t n;
    void *items;
    char *strs = NULL;
    int rc = dec_array_block(r, m, "files", RLOG_WIRE_SHIP_FILE_MIN_BYTES,
                             sizeof(rlog_msg_ship_file), &n, &items, &strs);
    if (rc != 0 || n == 0) {
        return rc;
    }
    rlog_msg_ship_file *f = items;
    for (uint32_t i = 0; i < n; i++) {
        r->entry = (long)i;
        const void *p;
        size_t len;
        if (dec_elem(r, 3) || dec_str(r, "name", STR_NAME, &p, &len) ||
            rd_u64(r, "size", &f[i].size) || rd_u32(r, "crc", &f[i].crc)) {
            return RLOG_EPROTO;
        }
        f[i].name = dec_put_str(&strs, p, len);
    }
    r->entry = -1;
    *n_out = n;
    *out = f;
    return 0;
}

static int dec_peers(codec_rd *r, rlog_msg *m, uint32_t *n_out, const rlog_msg_ship_peer **out)
{
    uint32_t n;
    void *items;
    char *strs = NULL;
    int rc = dec_array_block(r, m, "followers", RLOG_WIRE_SHIP_PEER_MIN_BYTES,
                             sizeof(rlog_msg_ship_peer), &n, &items, &strs);
    if (rc != 0 || n == 0) {
        return rc;
    }
    rlog_msg_ship_peer *p = items;
    static const char *const names[] = {"durable", "sent", "lag_records", "lag_bytes",
                                        "bytes_sent"};
    for (uint32_t i = 0; i < n; i++) {
        r->entry = (long)i;
        const void *s;
        size_t len;
        uint64_t *const v[] = {&p[i].durable, &p[i].sent, &p[i].lag_records, &p[i].lag_bytes,
                               &p[i].bytes_sent};
        if (dec_elem(r, 9) || rd_u64(r, "id", &p[i].id) || dec_str(r, "name", STR_TEXT, &s, &len) ||
            rd_u32(r, "state", &p[i].state) || rd_u64s(r, names, v, 5) ||
            rd_bool(r, "connected", &p[i].connected)) {
            return RLOG_EPROTO;
        }
        p[i].name = dec_put_str(&strs, s, len);
    }
    r->entry = -1;
    *n_out = n;
    *out = p;
    return 0;
}

static int dec_ship_start(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_start *s = &m->u.ship_start;
    static const char *const names[] = {"nonce",    "log_id", "file_size",     "first_lsn",
                                        "last_lsn", "seq",    "seg_first_lsn", "end"};
    uint64_t *const out[] = {&s->nonce,    &s->log_id, &s->file_size,     &s->first_lsn,
                             &s->last_lsn, &s->seq,    &s->seg_first_lsn, &s->end};
    if (rd_u64s(r, names, out, 8) || rd_bool(r, "sealed", &s->sealed) ||
        rd_u64(r, "last_rec_off", &s->last_rec_off) ||
        rd_u32(r, "last_rec_crc", &s->last_rec_crc) ||
        rd_u64(r, "last_rec_lsn", &s->last_rec_lsn) || rd_u64(r, "window", &s->window) ||
        rd_u64(r, "max_message", &s->max_message)) {
        return RLOG_EPROTO;
    }
    return 0;
}

/* nonce, a number (uint32 when `u32`), a text copied into m->alloc_. */
static int dec_num_text(codec_rd *r, rlog_msg *m, const char *num, bool u32, uint64_t *nonce,
                        uint64_t *v, const char **text)
{
    const void *p;
    size_t len;
    if (rd_u64(r, "nonce", nonce) || rd_uint(r, num, u32 ? UINT32_MAX : UINT64_MAX, v) ||
        dec_str(r, "message", STR_TEXT, &p, &len)) {
        return RLOG_EPROTO;
    }
    return dec_copy(m, p, len, text);
}

static int dec_ship_accept(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_accept *a = &m->u.ship_accept;
    static const char *const names[] = {"file_size",      "seq",       "first_lsn",
                                        "leader_durable", "files_gen", "files_upto"};
    uint64_t *const out[] = {&a->file_size,      &a->seq,       &a->first_lsn,
                             &a->leader_durable, &a->files_gen, &a->files_upto};
    if (rd_u64(r, "nonce", &a->nonce) || rd_u64(r, "log_id", &a->log_id) ||
        rd_bool(r, "adopt", &a->adopt) || rd_u64s(r, names, out, 6)) {
        return RLOG_EPROTO;
    }
    return dec_files(r, m, &a->n_files, &a->files);
}

static int dec_ship_files(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_files *f = &m->u.ship_files;
    static const char *const names[] = {"nonce", "gen", "upto"};
    uint64_t *const out[] = {&f->nonce, &f->gen, &f->upto};
    if (rd_u64s(r, names, out, 3)) {
        return RLOG_EPROTO;
    }
    return dec_files(r, m, &f->n_files, &f->files);
}

static int dec_ship_file_req(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_file_req *q = &m->u.ship_file_req;
    const void *p;
    size_t len;
    if (rd_u64(r, "nonce", &q->nonce) || dec_str(r, "name", STR_NAME, &p, &len) ||
        rd_u64(r, "offset", &q->offset) || rd_u64(r, "len", &q->len)) {
        return RLOG_EPROTO;
    }
    return dec_copy(m, p, len, &q->name);
}

static int dec_ship_file_data(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_file_data *d = &m->u.ship_file_data;
    const void *p;
    size_t len;
    if (rd_u64(r, "nonce", &d->nonce) || dec_str(r, "name", STR_NAME, &p, &len) ||
        rd_u64(r, "size", &d->size) || rd_u32(r, "crc", &d->crc) ||
        rd_u64(r, "offset", &d->offset)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    if (rd_bin(r, "data", &d->data, &d->len)) {
        return RLOG_EPROTO;
    }
    if (d->offset > d->size || d->len > d->size - d->offset) {
        return rd_fail(r, at, "data",
                       "offset %" PRIu64 " + %zu bytes run past the file size %" PRIu64, d->offset,
                       d->len, d->size);
    }
    return dec_copy(m, p, len, &d->name);
}

static int dec_ship_data(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_data *d = &m->u.ship_data;
    static const char *const names[] = {"nonce", "seq",     "seg_first_lsn",  "file_size",
                                        "off",   "seg_end", "leader_durable", "first_seq"};
    uint64_t *const out[] = {&d->nonce, &d->seq,     &d->seg_first_lsn,  &d->file_size,
                             &d->off,   &d->seg_end, &d->leader_durable, &d->first_seq};
    if (rd_u64s(r, names, out, 8)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    if (rd_bin(r, "bytes", &d->bytes, &d->len)) {
        return RLOG_EPROTO;
    }
    if (d->len > UINT64_MAX - d->off) {
        return rd_fail(r, at, "bytes", "offset %" PRIu64 " + %zu bytes overflow", d->off, d->len);
    }
    if (d->seg_end != 0 && d->off + d->len > d->seg_end) {
        return rd_fail(r, at, "bytes",
                       "offset %" PRIu64 " + %zu bytes run past the segment end %" PRIu64, d->off,
                       d->len, d->seg_end);
    }
    return 0;
}

static int dec_ship_ack(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_ack *a = &m->u.ship_ack;
    static const char *const names[] = {"nonce",       "recv_seq",    "recv_off",
                                        "durable_seq", "durable_off", "durable_lsn"};
    uint64_t *const out[] = {&a->nonce,       &a->recv_seq,    &a->recv_off,
                             &a->durable_seq, &a->durable_off, &a->durable_lsn};
    if (rd_u64s(r, names, out, 6) || rd_u32(r, "flags", &a->flags)) {
        return RLOG_EPROTO;
    }
    return 0;
}

static int dec_ship_status(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_status *s = &m->u.ship_status;
    static const char *const names[] = {"request_id",  "log_id",    "first_lsn",
                                        "durable_lsn", "first_seq", "last_seq"};
    uint64_t *const out[] = {&s->request_id,  &s->log_id,    &s->first_lsn,
                             &s->durable_lsn, &s->first_seq, &s->last_seq};
    if (rd_u64s(r, names, out, 6)) {
        return RLOG_EPROTO;
    }
    return dec_peers(r, m, &s->n_followers, &s->followers);
}

static int dec_ship(codec_rd *r, rlog_msg *m, uint64_t type)
{
    switch (type) {
    case RLOG_MSG_SHIP_START:
        return dec_ship_start(r, m);
    case RLOG_MSG_SHIP_REFUSE: {
        rlog_msg_ship_refuse *x = &m->u.ship_refuse;
        uint64_t code = 0;
        int rc = dec_num_text(r, m, "code", true, &x->nonce, &code, &x->message);
        x->code = (uint32_t)code;
        return rc;
    }
    case RLOG_MSG_SHIP_TRUNCATE: {
        rlog_msg_ship_truncate *x = &m->u.ship_truncate;
        return dec_num_text(r, m, "lsn", false, &x->nonce, &x->lsn, &x->message);
    }
    case RLOG_MSG_SHIP_ACCEPT:
        return dec_ship_accept(r, m);
    case RLOG_MSG_SHIP_FILES:
        return dec_ship_files(r, m);
    case RLOG_MSG_SHIP_FILES_OK:
        return rd_u64(r, "nonce", &m->u.ship_files_ok.nonce) ||
                       rd_u64(r, "gen", &m->u.ship_files_ok.gen)
                   ? RLOG_EPROTO
                   : 0;
    case RLOG_MSG_SHIP_FILE_REQ:
        return dec_ship_file_req(r, m);
    case RLOG_MSG_SHIP_FILE_DATA:
        return dec_ship_file_data(r, m);
    case RLOG_MSG_SHIP_DATA:
        return dec_ship_data(r, m);
    case RLOG_MSG_SHIP_ACK:
        return dec_ship_ack(r, m);
    case RLOG_MSG_SHIP_RESTART: {
        const void *p;
        size_t len;
        if (rd_u64(r, "nonce", &m->u.ship_restart.nonce) ||
            dec_str(r, "message", STR_TEXT, &p, &len)) {
            return RLOG_EPROTO;
        }
        return dec_copy(m, p, len, &m->u.ship_restart.message);
    }
    case RLOG_MSG_SHIP_STATUS_REQ:
        return rd_u64(r, "request_id", &m->u.ship_status_req.request_id);
    case RLOG_MSG_SHIP_STATUS:
        return dec_ship_status(r, m);
    default: /* dec_header admitted only known types */
        assert(0);
        return RLOG_EPROTO;
    }
}

static int dec_body(codec_rd *r, rlog_msg *m, uint64_t type)
{
    switch (type) {
    case RLOG_MSG_HELLO:
        return dec_hello(r, m);
    case RLOG_MSG_REQUEST_VOTE:
        return dec_request_vote(r, m);
    case RLOG_MSG_REQUEST_VOTE_RESULT:
        return dec_request_vote_result(r, m);
    case RLOG_MSG_APPEND_ENTRIES:
        return dec_append_entries(r, m);
    case RLOG_MSG_APPEND_ENTRIES_RESULT: {
        rlog_msg_append_entries_result *a = &m->u.append_entries_result;
        return dec_three(r, "term", "rejected", "last_log_index", &a->term, &a->rejected,
                         &a->last_log_index);
    }
    case RLOG_MSG_INSTALL_SNAPSHOT:
        return dec_install_snapshot(r, m);
    case RLOG_MSG_INSTALL_SNAPSHOT_RESULT: {
        rlog_msg_install_snapshot_result *s = &m->u.install_snapshot_result;
        return dec_three(r, "term", "last_index", "next_offset", &s->term, &s->last_index,
                         &s->next_offset);
    }
    case RLOG_MSG_TIMEOUT_NOW: {
        rlog_msg_timeout_now *t = &m->u.timeout_now;
        return dec_three(r, "term", "last_log_index", "last_log_term", &t->term, &t->last_log_index,
                         &t->last_log_term);
    }
    case RLOG_MSG_REDIRECT:
        return dec_redirect(r, m);
    default:
        return dec_ship(r, m, type);
    }
}

/* [type, version, ...]: checks the header against the schema. */
static int dec_header(codec_rd *r, uint64_t *type)
{
    uint32_t n;
    uint64_t version;
    if (rd_array(r, "(array)", &n)) {
        return RLOG_EPROTO;
    }
    if (n < 2) {
        return rd_fail(r, 0, "(array)", "%" PRIu32 " elements; a message has at least 2", n);
    }
    size_t at = r->off;
    if (rd_u64(r, "type", type)) {
        return RLOG_EPROTO;
    }
    unsigned nfields = codec_nfields(*type);
    if (nfields == 0) {
        return rd_fail(r, at, "type", "unknown message type %" PRIu64, *type);
    }
    r->msg = rlog_msg_type_name((int)*type);
    at = r->off;
    if (rd_u64(r, "version", &version)) {
        return RLOG_EPROTO;
    }
    if (version != RLOG_WIRE_MSG_VERSION) {
        return rd_fail(r, at, "version", "unsupported version %" PRIu64 " (this build speaks %u)",
                       version, RLOG_WIRE_MSG_VERSION);
    }
    if (n != nfields + 2) {
        return rd_fail(r, 0, "(array)", "%" PRIu32 " elements; version %u has %u", n,
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
        return rd_fail(&r, 0, "(array)", "%zu bytes exceed the limit of %zu", len, max_bytes);
    }
    uint64_t type = 0;
    int rc = dec_header(&r, &type);
    if (rc == 0) {
        rc = dec_body(&r, out, type);
    }
    if (rc == 0 && r.off != len) {
        rc = rd_fail(&r, r.off, "(array)", "%zu trailing bytes after the message", len - r.off);
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

static bool bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool eq_append_entries(const rlog_msg_append_entries *a, const rlog_msg_append_entries *b)
{
    if (a->term != b->term || a->prev_log_index != b->prev_log_index ||
        a->prev_log_term != b->prev_log_term || a->leader_commit != b->leader_commit ||
        a->n_entries != b->n_entries) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const rlog_msg_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->type != y->type ||
            !bytes_equal(x->data, x->len, y->data, y->len)) {
            return false;
        }
    }
    return true;
}

static bool eq_install_snapshot(const rlog_msg_install_snapshot *a,
                                const rlog_msg_install_snapshot *b)
{
    return a->term == b->term && a->last_index == b->last_index && a->last_term == b->last_term &&
           a->conf_index == b->conf_index && a->total == b->total && a->offset == b->offset &&
           a->done == b->done && bytes_equal(a->conf, a->conf_len, b->conf, b->conf_len) &&
           bytes_equal(a->chunk, a->chunk_len, b->chunk, b->chunk_len);
}

static bool str_equal(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static bool eq_hello(const rlog_msg_hello *a, const rlog_msg_hello *b)
{
    return a->server_id == b->server_id && a->protocol_version == b->protocol_version &&
           a->role == b->role && a->flags == b->flags && str_equal(a->address, b->address);
}

static bool eq_files(uint32_t na, const rlog_msg_ship_file *a, uint32_t nb,
                     const rlog_msg_ship_file *b)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < na; i++) {
        if (!str_equal(a[i].name, b[i].name) || a[i].size != b[i].size || a[i].crc != b[i].crc) {
            return false;
        }
    }
    return true;
}

static bool eq_peer(const rlog_msg_ship_peer *a, const rlog_msg_ship_peer *b)
{
    return a->id == b->id && str_equal(a->name, b->name) && a->state == b->state &&
           a->durable == b->durable && a->sent == b->sent && a->lag_records == b->lag_records &&
           a->lag_bytes == b->lag_bytes && a->bytes_sent == b->bytes_sent &&
           a->connected == b->connected;
}

static bool eq_ship_start(const rlog_msg_ship_start *a, const rlog_msg_ship_start *b)
{
    return a->nonce == b->nonce && a->log_id == b->log_id && a->file_size == b->file_size &&
           a->first_lsn == b->first_lsn && a->last_lsn == b->last_lsn && a->seq == b->seq &&
           a->seg_first_lsn == b->seg_first_lsn && a->end == b->end && a->sealed == b->sealed &&
           a->last_rec_off == b->last_rec_off && a->last_rec_crc == b->last_rec_crc &&
           a->last_rec_lsn == b->last_rec_lsn && a->window == b->window &&
           a->max_message == b->max_message;
}

static bool eq_ship_accept(const rlog_msg_ship_accept *a, const rlog_msg_ship_accept *b)
{
    return a->nonce == b->nonce && a->log_id == b->log_id && a->adopt == b->adopt &&
           a->file_size == b->file_size && a->seq == b->seq && a->first_lsn == b->first_lsn &&
           a->leader_durable == b->leader_durable && a->files_gen == b->files_gen &&
           a->files_upto == b->files_upto && eq_files(a->n_files, a->files, b->n_files, b->files);
}

static bool eq_ship_status(const rlog_msg_ship_status *a, const rlog_msg_ship_status *b)
{
    if (a->request_id != b->request_id || a->log_id != b->log_id || a->first_lsn != b->first_lsn ||
        a->durable_lsn != b->durable_lsn || a->first_seq != b->first_seq ||
        a->last_seq != b->last_seq || a->n_followers != b->n_followers) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_followers; i++) {
        if (!eq_peer(&a->followers[i], &b->followers[i])) {
            return false;
        }
    }
    return true;
}

static bool eq_ship(const rlog_msg *x, const rlog_msg *y)
{
    const rlog_msg_ship_file_data *fa = &x->u.ship_file_data, *fb = &y->u.ship_file_data;
    const rlog_msg_ship_data *da = &x->u.ship_data, *db = &y->u.ship_data;
    const rlog_msg_ship_ack *aa = &x->u.ship_ack, *ab = &y->u.ship_ack;
    switch (x->type) {
    case RLOG_MSG_SHIP_START:
        return eq_ship_start(&x->u.ship_start, &y->u.ship_start);
    case RLOG_MSG_SHIP_REFUSE:
        return x->u.ship_refuse.nonce == y->u.ship_refuse.nonce &&
               x->u.ship_refuse.code == y->u.ship_refuse.code &&
               str_equal(x->u.ship_refuse.message, y->u.ship_refuse.message);
    case RLOG_MSG_SHIP_TRUNCATE:
        return x->u.ship_truncate.nonce == y->u.ship_truncate.nonce &&
               x->u.ship_truncate.lsn == y->u.ship_truncate.lsn &&
               str_equal(x->u.ship_truncate.message, y->u.ship_truncate.message);
    case RLOG_MSG_SHIP_ACCEPT:
        return eq_ship_accept(&x->u.ship_accept, &y->u.ship_accept);
    case RLOG_MSG_SHIP_FILES:
        return x->u.ship_files.nonce == y->u.ship_files.nonce &&
               x->u.ship_files.gen == y->u.ship_files.gen &&
               x->u.ship_files.upto == y->u.ship_files.upto &&
               eq_files(x->u.ship_files.n_files, x->u.ship_files.files, y->u.ship_files.n_files,
                        y->u.ship_files.files);
    case RLOG_MSG_SHIP_FILES_OK:
        return x->u.ship_files_ok.nonce == y->u.ship_files_ok.nonce &&
               x->u.ship_files_ok.gen == y->u.ship_files_ok.gen;
    case RLOG_MSG_SHIP_FILE_REQ:
        return x->u.ship_file_req.nonce == y->u.ship_file_req.nonce &&
               str_equal(x->u.ship_file_req.name, y->u.ship_file_req.name) &&
               x->u.ship_file_req.offset == y->u.ship_file_req.offset &&
               x->u.ship_file_req.len == y->u.ship_file_req.len;
    case RLOG_MSG_SHIP_FILE_DATA:
        return fa->nonce == fb->nonce && str_equal(fa->name, fb->name) && fa->size == fb->size &&
               fa->crc == fb->crc && fa->offset == fb->offset &&
               bytes_equal(fa->data, fa->len, fb->data, fb->len);
    case RLOG_MSG_SHIP_DATA:
        return da->nonce == db->nonce && da->seq == db->seq &&
               da->seg_first_lsn == db->seg_first_lsn && da->file_size == db->file_size &&
               da->off == db->off && da->seg_end == db->seg_end &&
               da->leader_durable == db->leader_durable && da->first_seq == db->first_seq &&
               bytes_equal(da->bytes, da->len, db->bytes, db->len);
    case RLOG_MSG_SHIP_ACK:
        return aa->nonce == ab->nonce && aa->recv_seq == ab->recv_seq &&
               aa->recv_off == ab->recv_off && aa->durable_seq == ab->durable_seq &&
               aa->durable_off == ab->durable_off && aa->durable_lsn == ab->durable_lsn &&
               aa->flags == ab->flags;
    case RLOG_MSG_SHIP_RESTART:
        return x->u.ship_restart.nonce == y->u.ship_restart.nonce &&
               str_equal(x->u.ship_restart.message, y->u.ship_restart.message);
    case RLOG_MSG_SHIP_STATUS_REQ:
        return x->u.ship_status_req.request_id == y->u.ship_status_req.request_id;
    case RLOG_MSG_SHIP_STATUS:
        return eq_ship_status(&x->u.ship_status, &y->u.ship_status);
    default:
        return false;
    }
}

bool rlg_msg_equal(const rlog_msg *a, const rlog_msg *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case RLOG_MSG_HELLO:
        return eq_hello(&a->u.hello, &b->u.hello);
    case RLOG_MSG_REQUEST_VOTE: {
        const rlog_msg_request_vote *x = &a->u.request_vote, *y = &b->u.request_vote;
        return x->term == y->term && x->candidate_id == y->candidate_id &&
               x->last_log_index == y->last_log_index && x->last_log_term == y->last_log_term &&
               x->disrupt_leader == y->disrupt_leader && x->pre_vote == y->pre_vote;
    }
    case RLOG_MSG_REQUEST_VOTE_RESULT: {
        const rlog_msg_request_vote_result *x = &a->u.request_vote_result;
        const rlog_msg_request_vote_result *y = &b->u.request_vote_result;
        return x->term == y->term && x->vote_granted == y->vote_granted &&
               x->pre_vote == y->pre_vote;
    }
    case RLOG_MSG_APPEND_ENTRIES:
        return eq_append_entries(&a->u.append_entries, &b->u.append_entries);
    case RLOG_MSG_APPEND_ENTRIES_RESULT: {
        const rlog_msg_append_entries_result *x = &a->u.append_entries_result;
        const rlog_msg_append_entries_result *y = &b->u.append_entries_result;
        return x->term == y->term && x->rejected == y->rejected &&
               x->last_log_index == y->last_log_index;
    }
    case RLOG_MSG_INSTALL_SNAPSHOT:
        return eq_install_snapshot(&a->u.install_snapshot, &b->u.install_snapshot);
    case RLOG_MSG_INSTALL_SNAPSHOT_RESULT: {
        const rlog_msg_install_snapshot_result *x = &a->u.install_snapshot_result;
        const rlog_msg_install_snapshot_result *y = &b->u.install_snapshot_result;
        return x->term == y->term && x->last_index == y->last_index &&
               x->next_offset == y->next_offset;
    }
    case RLOG_MSG_TIMEOUT_NOW: {
        const rlog_msg_timeout_now *x = &a->u.timeout_now, *y = &b->u.timeout_now;
        return x->term == y->term && x->last_log_index == y->last_log_index &&
               x->last_log_term == y->last_log_term;
    }
    case RLOG_MSG_REDIRECT:
        return a->u.redirect.token == b->u.redirect.token &&
               str_equal(a->u.redirect.address, b->u.redirect.address);
    default:
        return eq_ship(a, b);
    }
}
