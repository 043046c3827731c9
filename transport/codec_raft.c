/*
 * The wire codec: the Raft messages (types 2-8).
 * transport/codec.c has the schema of every message.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>

#include "transport/codec_internal.h"

bool rlg_codec_raft_type(uint64_t type)
{
    return type >= RLOG_MSG_REQUEST_VOTE && type <= RLOG_MSG_TIMEOUT_NOW;
}

/* ------------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------- */

static int enc_request_vote(msgpack_packer *pk, const rlog_msg_request_vote *v)
{
    uint64_t u[4] = {v->term, v->candidate_id, v->last_log_index, v->last_log_term};
    int rc = rlg_codec_enc_u64s(pk, u, 4);
    rc |= rlg_codec_enc_bool(pk, v->disrupt_leader);
    rc |= rlg_codec_enc_bool(pk, v->pre_vote);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_request_vote_result(msgpack_packer *pk, const rlog_msg_request_vote_result *v)
{
    int rc = msgpack_pack_uint64(pk, v->term);
    rc |= rlg_codec_enc_bool(pk, v->vote_granted);
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
    int rc = rlg_codec_enc_u64s(pk, u, 4);
    rc |= msgpack_pack_array(pk, a->n_entries);
    for (uint32_t i = 0; i < a->n_entries && rc == 0; i++) {
        const rlog_msg_entry *e = &a->entries[i];
        rc |= msgpack_pack_array(pk, 3);
        rc |= msgpack_pack_uint64(pk, e->term);
        rc |= msgpack_pack_uint16(pk, e->type);
        rc |= rlg_codec_enc_bin(pk, e->data, e->len);
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
    int rc = rlg_codec_enc_u64s(pk, u, 4);
    rc |= rlg_codec_enc_bin(pk, s->conf, s->conf_len);
    rc |= msgpack_pack_uint64(pk, s->total);
    rc |= msgpack_pack_uint64(pk, s->offset);
    rc |= rlg_codec_enc_bin(pk, s->chunk, s->chunk_len);
    rc |= rlg_codec_enc_bool(pk, s->done);
    return rc ? RLOG_ENOMEM : 0;
}

static int enc_three(msgpack_packer *pk, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t u[3] = {a, b, c};
    return rlg_codec_enc_u64s(pk, u, 3) ? RLOG_ENOMEM : 0;
}

int rlg_codec_enc_raft(msgpack_packer *pk, const rlog_msg *m)
{
    switch (m->type) {
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
    default:
        return RLOG_EINVAL;
    }
}

/* ------------------------------------------------------------------------
 * Decoding: one function per message
 * ---------------------------------------------------------------------- */

static int dec_request_vote(codec_rd *r, rlog_msg *m)
{
    rlog_msg_request_vote *v = &m->u.request_vote;
    static const char *const names[] = {"term", "candidate_id", "last_log_index", "last_log_term"};
    uint64_t *const out[] = {&v->term, &v->candidate_id, &v->last_log_index, &v->last_log_term};
    if (rlg_codec_rd_u64s(r, names, out, 4) ||
        rlg_codec_rd_bool(r, "disrupt_leader", &v->disrupt_leader) ||
        rlg_codec_rd_bool(r, "pre_vote", &v->pre_vote)) {
        return RLOG_EPROTO;
    }
    return 0;
}

static int dec_request_vote_result(codec_rd *r, rlog_msg *m)
{
    rlog_msg_request_vote_result *v = &m->u.request_vote_result;
    if (rlg_codec_rd_u64(r, "term", &v->term) ||
        rlg_codec_rd_bool(r, "vote_granted", &v->vote_granted) ||
        rlg_codec_rd_tribool(r, "pre_vote", &v->pre_vote)) {
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
    if (rlg_codec_rd_array(r, "(entry)", &n)) {
        return RLOG_EPROTO;
    }
    if (n != 3) {
        return rlg_codec_rd_fail(r, at, "(entry)", "array of %" PRIu32 " elements; an entry has 3",
                                 n);
    }
    if (rlg_codec_rd_u64(r, "term", &e->term) || rlg_codec_rd_uint(r, "type", UINT16_MAX, &type) ||
        rlg_codec_rd_bin(r, "payload", &e->data, &len)) {
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
    if (rlg_codec_rd_u64s(r, names, out, 4)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    uint32_t n;
    if (rlg_codec_rd_array(r, "entries", &n)) {
        return RLOG_EPROTO;
    }
    size_t cap = rlg_codec_rd_left(r) / RLOG_WIRE_ENTRY_MIN_BYTES;
    if (n > cap) {
        return rlg_codec_rd_fail(r, at, "entries",
                                 "count %" PRIu32
                                 " exceeds the %zu entries that the %zu remaining bytes "
                                 "can hold",
                                 n, cap, rlg_codec_rd_left(r));
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
    if (rlg_codec_rd_u64s(r, names, out, 4) ||
        rlg_codec_rd_bin(r, "conf", &s->conf, &s->conf_len) ||
        rlg_codec_rd_u64(r, "total", &s->total) || rlg_codec_rd_u64(r, "offset", &s->offset)) {
        return RLOG_EPROTO;
    }
    if (rlg_codec_rd_part(r, "chunk", s->offset, s->total, "snapshot", &s->chunk, &s->chunk_len)) {
        return RLOG_EPROTO;
    }
    size_t at = r->off;
    if (rlg_codec_rd_bool(r, "done", &s->done)) {
        return RLOG_EPROTO;
    }
    bool ends = s->offset + s->chunk_len == s->total;
    if (s->done != ends) {
        return rlg_codec_rd_fail(r, at, "done", "%s but the chunk ends at %" PRIu64 " of %" PRIu64,
                                 s->done ? "true" : "false", s->offset + s->chunk_len, s->total);
    }
    return 0;
}

static int dec_three(codec_rd *r, const char *n0, const char *n1, const char *n2, uint64_t *v0,
                     uint64_t *v1, uint64_t *v2)
{
    const char *const names[] = {n0, n1, n2};
    uint64_t *const out[] = {v0, v1, v2};
    return rlg_codec_rd_u64s(r, names, out, 3);
}

int rlg_codec_dec_raft(codec_rd *r, rlog_msg *m, uint64_t type)
{
    switch (type) {
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
    default: /* dec_body passes only these types */
        assert(0);
        return RLOG_EPROTO;
    }
}

/* ------------------------------------------------------------------------
 * Equality
 * ---------------------------------------------------------------------- */

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
            !rlg_codec_bytes_equal(x->data, x->len, y->data, y->len)) {
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
           a->done == b->done &&
           rlg_codec_bytes_equal(a->conf, a->conf_len, b->conf, b->conf_len) &&
           rlg_codec_bytes_equal(a->chunk, a->chunk_len, b->chunk, b->chunk_len);
}

bool rlg_codec_eq_raft(const rlog_msg *a, const rlog_msg *b)
{
    switch (a->type) {
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
    default:
        return false;
    }
}
