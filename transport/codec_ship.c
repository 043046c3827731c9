/*
 * The wire codec: the segment-shipping messages (types 16-28, docs/shipping.md).
 * transport/codec.c has the schema of every message.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_internal.h"

/* ------------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------- */

static int enc_files(msgpack_packer *pk, uint32_t n, const rlog_msg_ship_file *f, int *rc)
{
    if (n > 0 && f == NULL) {
        return RLOG_EINVAL;
    }
    *rc |= msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        *rc |= msgpack_pack_array(pk, 3);
        if (rlg_codec_enc_str(pk, f[i].name, STR_NAME, rc)) {
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
    int rc = rlg_codec_enc_u64s(pk, u, 8);
    rc |= rlg_codec_enc_bool(pk, s->sealed);
    rc |= msgpack_pack_uint64(pk, s->last_rec_off);
    rc |= msgpack_pack_uint32(pk, s->last_rec_crc);
    uint64_t v[3] = {s->last_rec_lsn, s->window, s->max_message};
    rc |= rlg_codec_enc_u64s(pk, v, 3);
    return rc ? RLOG_ENOMEM : 0;
}

/* nonce, one uint64 or uint32 (`u32` picks), then a text. */
static int enc_num_text(msgpack_packer *pk, uint64_t nonce, uint64_t v, bool u32, const char *text)
{
    int rc = msgpack_pack_uint64(pk, nonce);
    rc |= u32 ? msgpack_pack_uint32(pk, (uint32_t)v) : msgpack_pack_uint64(pk, v);
    if (rlg_codec_enc_str(pk, text, STR_TEXT, &rc)) {
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_accept(msgpack_packer *pk, const rlog_msg_ship_accept *a)
{
    uint64_t u[2] = {a->nonce, a->log_id};
    uint64_t v[6] = {a->file_size,      a->seq,       a->first_lsn,
                     a->leader_durable, a->files_gen, a->files_upto};
    int rc = rlg_codec_enc_u64s(pk, u, 2);
    rc |= rlg_codec_enc_bool(pk, a->adopt);
    rc |= rlg_codec_enc_u64s(pk, v, 6);
    if (enc_files(pk, a->n_files, a->files, &rc)) {
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_files(msgpack_packer *pk, const rlog_msg_ship_files *f)
{
    uint64_t u[3] = {f->nonce, f->gen, f->upto};
    int rc = rlg_codec_enc_u64s(pk, u, 3);
    if (enc_files(pk, f->n_files, f->files, &rc)) {
        return RLOG_EINVAL;
    }
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_file_req(msgpack_packer *pk, const rlog_msg_ship_file_req *q)
{
    int rc = msgpack_pack_uint64(pk, q->nonce);
    if (rlg_codec_enc_str(pk, q->name, STR_NAME, &rc)) {
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
    if (rlg_codec_enc_str(pk, d->name, STR_NAME, &rc)) {
        return RLOG_EINVAL;
    }
    rc |= msgpack_pack_uint64(pk, d->size);
    rc |= msgpack_pack_uint32(pk, d->crc);
    rc |= msgpack_pack_uint64(pk, d->offset);
    rc |= rlg_codec_enc_bin(pk, d->data, d->len);
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
    int rc = rlg_codec_enc_u64s(pk, u, 8);
    rc |= rlg_codec_enc_bin(pk, d->bytes, d->len);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_ship_ack(msgpack_packer *pk, const rlog_msg_ship_ack *a)
{
    uint64_t u[6] = {a->nonce,       a->recv_seq,    a->recv_off,
                     a->durable_seq, a->durable_off, a->durable_lsn};
    int rc = rlg_codec_enc_u64s(pk, u, 6);
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
    int rc = rlg_codec_enc_u64s(pk, u, 6);
    rc |= msgpack_pack_array(pk, s->n_followers);
    for (uint32_t i = 0; i < s->n_followers; i++) {
        const rlog_msg_ship_peer *p = &s->followers[i];
        rc |= msgpack_pack_array(pk, 9);
        rc |= msgpack_pack_uint64(pk, p->id);
        if (rlg_codec_enc_str(pk, p->name, STR_TEXT, &rc)) {
            return RLOG_EINVAL;
        }
        rc |= msgpack_pack_uint32(pk, p->state);
        uint64_t v[5] = {p->durable, p->sent, p->lag_records, p->lag_bytes, p->bytes_sent};
        rc |= rlg_codec_enc_u64s(pk, v, 5);
        rc |= rlg_codec_enc_bool(pk, p->connected);
    }
    return rc ? RLOG_ENOMEM : 0;
}

int rlg_codec_enc_ship(msgpack_packer *pk, const rlog_msg *m)
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
        return rlg_codec_enc_u64s(pk, u, 2) ? RLOG_ENOMEM : 0;
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
        if (rlg_codec_enc_str(pk, m->u.ship_restart.message, STR_TEXT, &rc)) {
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

/* ------------------------------------------------------------------------
 * Decoding: one function per message
 * ---------------------------------------------------------------------- */

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
    if (rlg_codec_rd_array(r, field, n)) {
        return RLOG_EPROTO;
    }
    size_t cap = rlg_codec_rd_left(r) / min;
    if (*n > cap) {
        return rlg_codec_rd_fail(r, at, field,
                                 "count %" PRIu32
                                 " exceeds the %zu elements that the %zu remaining bytes "
                                 "can hold",
                                 *n, cap, rlg_codec_rd_left(r));
    }
    *items = NULL;
    if (*n == 0) {
        return 0;
    }
    char *block = malloc((size_t)*n * elem + rlg_codec_rd_left(r) + *n);
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
    if (rlg_codec_rd_array(r, "(element)", &n)) {
        return RLOG_EPROTO;
    }
    if (n != want) {
        return rlg_codec_rd_fail(r, at, "(element)",
                                 "array of %" PRIu32 " elements; it has %" PRIu32, n, want);
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
        if (dec_elem(r, 3) || rlg_codec_dec_str(r, "name", STR_NAME, &p, &len) ||
            rlg_codec_rd_u64(r, "size", &f[i].size) || rlg_codec_rd_u32(r, "crc", &f[i].crc)) {
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
        if (dec_elem(r, 9) || rlg_codec_rd_u64(r, "id", &p[i].id) ||
            rlg_codec_dec_str(r, "name", STR_TEXT, &s, &len) ||
            rlg_codec_rd_u32(r, "state", &p[i].state) || rlg_codec_rd_u64s(r, names, v, 5) ||
            rlg_codec_rd_bool(r, "connected", &p[i].connected)) {
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
    if (rlg_codec_rd_u64s(r, names, out, 8) || rlg_codec_rd_bool(r, "sealed", &s->sealed) ||
        rlg_codec_rd_u64(r, "last_rec_off", &s->last_rec_off) ||
        rlg_codec_rd_u32(r, "last_rec_crc", &s->last_rec_crc) ||
        rlg_codec_rd_u64(r, "last_rec_lsn", &s->last_rec_lsn) ||
        rlg_codec_rd_u64(r, "window", &s->window) ||
        rlg_codec_rd_u64(r, "max_message", &s->max_message)) {
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
    if (rlg_codec_rd_u64(r, "nonce", nonce) ||
        rlg_codec_rd_uint(r, num, u32 ? UINT32_MAX : UINT64_MAX, v) ||
        rlg_codec_dec_str(r, "message", STR_TEXT, &p, &len)) {
        return RLOG_EPROTO;
    }
    return rlg_codec_dec_copy(m, p, len, text);
}

static int dec_ship_accept(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_accept *a = &m->u.ship_accept;
    static const char *const names[] = {"file_size",      "seq",       "first_lsn",
                                        "leader_durable", "files_gen", "files_upto"};
    uint64_t *const out[] = {&a->file_size,      &a->seq,       &a->first_lsn,
                             &a->leader_durable, &a->files_gen, &a->files_upto};
    if (rlg_codec_rd_u64(r, "nonce", &a->nonce) || rlg_codec_rd_u64(r, "log_id", &a->log_id) ||
        rlg_codec_rd_bool(r, "adopt", &a->adopt) || rlg_codec_rd_u64s(r, names, out, 6)) {
        return RLOG_EPROTO;
    }
    return dec_files(r, m, &a->n_files, &a->files);
}

static int dec_ship_files(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_files *f = &m->u.ship_files;
    static const char *const names[] = {"nonce", "gen", "upto"};
    uint64_t *const out[] = {&f->nonce, &f->gen, &f->upto};
    if (rlg_codec_rd_u64s(r, names, out, 3)) {
        return RLOG_EPROTO;
    }
    return dec_files(r, m, &f->n_files, &f->files);
}

static int dec_ship_file_req(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_file_req *q = &m->u.ship_file_req;
    const void *p;
    size_t len;
    if (rlg_codec_rd_u64(r, "nonce", &q->nonce) ||
        rlg_codec_dec_str(r, "name", STR_NAME, &p, &len) ||
        rlg_codec_rd_u64(r, "offset", &q->offset) || rlg_codec_rd_u64(r, "len", &q->len)) {
        return RLOG_EPROTO;
    }
    return rlg_codec_dec_copy(m, p, len, &q->name);
}

static int dec_ship_file_data(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_file_data *d = &m->u.ship_file_data;
    const void *p;
    size_t len;
    if (rlg_codec_rd_u64(r, "nonce", &d->nonce) ||
        rlg_codec_dec_str(r, "name", STR_NAME, &p, &len) || rlg_codec_rd_u64(r, "size", &d->size) ||
        rlg_codec_rd_u32(r, "crc", &d->crc) || rlg_codec_rd_u64(r, "offset", &d->offset)) {
        return RLOG_EPROTO;
    }
    if (rlg_codec_rd_part(r, "data", d->offset, d->size, "file", &d->data, &d->len)) {
        return RLOG_EPROTO;
    }
    return rlg_codec_dec_copy(m, p, len, &d->name);
}

static int dec_ship_data(codec_rd *r, rlog_msg *m)
{
    rlog_msg_ship_data *d = &m->u.ship_data;
    static const char *const names[] = {"nonce", "seq",     "seg_first_lsn",  "file_size",
                                        "off",   "seg_end", "leader_durable", "first_seq"};
    uint64_t *const out[] = {&d->nonce, &d->seq,     &d->seg_first_lsn,  &d->file_size,
                             &d->off,   &d->seg_end, &d->leader_durable, &d->first_seq};
    if (rlg_codec_rd_u64s(r, names, out, 8)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    if (rlg_codec_rd_bin(r, "bytes", &d->bytes, &d->len)) {
        return RLOG_EPROTO;
    }
    if (d->len > UINT64_MAX - d->off) {
        return rlg_codec_rd_fail(r, at, "bytes", "offset %" PRIu64 " + %zu bytes overflow", d->off,
                                 d->len);
    }
    if (d->seg_end != 0 && d->off + d->len > d->seg_end) {
        return rlg_codec_rd_fail(r, at, "bytes",
                                 "offset %" PRIu64 " + %zu bytes run past the segment end %" PRIu64,
                                 d->off, d->len, d->seg_end);
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
    if (rlg_codec_rd_u64s(r, names, out, 6) || rlg_codec_rd_u32(r, "flags", &a->flags)) {
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
    if (rlg_codec_rd_u64s(r, names, out, 6)) {
        return RLOG_EPROTO;
    }
    return dec_peers(r, m, &s->n_followers, &s->followers);
}

int rlg_codec_dec_ship(codec_rd *r, rlog_msg *m, uint64_t type)
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
        return rlg_codec_rd_u64(r, "nonce", &m->u.ship_files_ok.nonce) ||
                       rlg_codec_rd_u64(r, "gen", &m->u.ship_files_ok.gen)
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
        if (rlg_codec_rd_u64(r, "nonce", &m->u.ship_restart.nonce) ||
            rlg_codec_dec_str(r, "message", STR_TEXT, &p, &len)) {
            return RLOG_EPROTO;
        }
        return rlg_codec_dec_copy(m, p, len, &m->u.ship_restart.message);
    }
    case RLOG_MSG_SHIP_STATUS_REQ:
        return rlg_codec_rd_u64(r, "request_id", &m->u.ship_status_req.request_id);
    case RLOG_MSG_SHIP_STATUS:
        return dec_ship_status(r, m);
    default: /* dec_header admitted only known types */
        assert(0);
        return RLOG_EPROTO;
    }
}

/* ------------------------------------------------------------------------
 * Equality
 * ---------------------------------------------------------------------- */

static bool eq_files(uint32_t na, const rlog_msg_ship_file *a, uint32_t nb,
                     const rlog_msg_ship_file *b)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < na; i++) {
        if (!rlg_codec_str_equal(a[i].name, b[i].name) || a[i].size != b[i].size ||
            a[i].crc != b[i].crc) {
            return false;
        }
    }
    return true;
}

static bool eq_peer(const rlog_msg_ship_peer *a, const rlog_msg_ship_peer *b)
{
    return a->id == b->id && rlg_codec_str_equal(a->name, b->name) && a->state == b->state &&
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

bool rlg_codec_eq_ship(const rlog_msg *x, const rlog_msg *y)
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
               rlg_codec_str_equal(x->u.ship_refuse.message, y->u.ship_refuse.message);
    case RLOG_MSG_SHIP_TRUNCATE:
        return x->u.ship_truncate.nonce == y->u.ship_truncate.nonce &&
               x->u.ship_truncate.lsn == y->u.ship_truncate.lsn &&
               rlg_codec_str_equal(x->u.ship_truncate.message, y->u.ship_truncate.message);
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
               rlg_codec_str_equal(x->u.ship_file_req.name, y->u.ship_file_req.name) &&
               x->u.ship_file_req.offset == y->u.ship_file_req.offset &&
               x->u.ship_file_req.len == y->u.ship_file_req.len;
    case RLOG_MSG_SHIP_FILE_DATA:
        return fa->nonce == fb->nonce && rlg_codec_str_equal(fa->name, fb->name) &&
               fa->size == fb->size && fa->crc == fb->crc && fa->offset == fb->offset &&
               rlg_codec_bytes_equal(fa->data, fa->len, fb->data, fb->len);
    case RLOG_MSG_SHIP_DATA:
        return da->nonce == db->nonce && da->seq == db->seq &&
               da->seg_first_lsn == db->seg_first_lsn && da->file_size == db->file_size &&
               da->off == db->off && da->seg_end == db->seg_end &&
               da->leader_durable == db->leader_durable && da->first_seq == db->first_seq &&
               rlg_codec_bytes_equal(da->bytes, da->len, db->bytes, db->len);
    case RLOG_MSG_SHIP_ACK:
        return aa->nonce == ab->nonce && aa->recv_seq == ab->recv_seq &&
               aa->recv_off == ab->recv_off && aa->durable_seq == ab->durable_seq &&
               aa->durable_off == ab->durable_off && aa->durable_lsn == ab->durable_lsn &&
               aa->flags == ab->flags;
    case RLOG_MSG_SHIP_RESTART:
        return x->u.ship_restart.nonce == y->u.ship_restart.nonce &&
               rlg_codec_str_equal(x->u.ship_restart.message, y->u.ship_restart.message);
    case RLOG_MSG_SHIP_STATUS_REQ:
        return x->u.ship_status_req.request_id == y->u.ship_status_req.request_id;
    case RLOG_MSG_SHIP_STATUS:
        return eq_ship_status(&x->u.ship_status, &y->u.ship_status);
    default:
        return false;
    }
}
