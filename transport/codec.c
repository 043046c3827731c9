/*
 * The wire codec: rlog_msg <-> msgpack (docs/wire.md is the specification,
 * transport/codec_schema.c the schema of every message).
 *
 * One walker over a message's schema encodes, decodes, compares and sizes
 * every message type: a field is named once, in the schema, and read,
 * written and compared here by its type.
 *
 * Encoding uses msgpack-c's packer (smallest format for every value).
 * Decoding does not use msgpack-c's unpacker (it reserves memory for an
 * array header's claimed size before reading the elements): a fixed-schema
 * reader walks the raw bytes, checks every length and count against the
 * bytes that remain, and allocates at most one block of O(len) bytes (the
 * one str field copied, or the one array with its elements' strings).
 */
#include "transport/codec.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec_internal.h"

/* The value of field f in body: its address, and its pointer and length
 * for bins and arrays (read and written through memcpy: an array's pointer
 * member is a typed pointer, a bin's length a size_t or uint32_t). */
static void *at_off(const void *body, size_t off)
{
    return (char *)body + off;
}

static const void *get_ptr(const void *body, const codec_field *f)
{
    const void *p;
    memcpy(&p, at_off(body, f->off), sizeof p);
    return p;
}

static size_t get_len(const void *body, const codec_field *f)
{
    if (f->type == CODEC_BIN) {
        size_t n;
        memcpy(&n, at_off(body, f->len_off), sizeof n);
        return n;
    }
    uint32_t n; /* CODEC_BIN32, CODEC_ARRAY */
    memcpy(&n, at_off(body, f->len_off), sizeof n);
    return n;
}

static void set_ptr_len(void *body, const codec_field *f, const void *p, size_t len)
{
    memcpy(at_off(body, f->off), &p, sizeof p);
    if (f->type == CODEC_BIN) {
        memcpy(at_off(body, f->len_off), &len, sizeof len);
    } else {
        uint32_t n = (uint32_t)len; /* bin32 lengths and array counts fit */
        memcpy(at_off(body, f->len_off), &n, sizeof n);
    }
}

static const void *element(const void *items, const codec_array *a, size_t i)
{
    return (const char *)items + i * a->size;
}

/* Whether field f of body keeps the rules that tie it to earlier fields;
 * when not, why says how (why may be NULL when cap is 0). */
static bool field_ok(const void *body, const codec_field *f, char *why, size_t cap)
{
    if (f->part != NULL) {
        uint64_t offset = *(const uint64_t *)at_off(body, f->part_off);
        uint64_t total = *(const uint64_t *)at_off(body, f->total_off);
        size_t len = get_len(body, f);
        if (offset > total || len > total - offset) {
            snprintf(why, cap, "offset %" PRIu64 " + %zu bytes run past the %s size %" PRIu64,
                     offset, len, f->part, total);
            return false;
        }
    }
    return f->rule == NULL || f->rule(body, why, cap);
}

/* Bytes of a number's or a flag's value; 0 for the other types. */
static size_t scalar_size(codec_type type)
{
    switch (type) {
    case CODEC_U64:
        return sizeof(uint64_t);
    case CODEC_U32:
        return sizeof(uint32_t);
    case CODEC_U16:
        return sizeof(uint16_t);
    case CODEC_BOOL:
        return sizeof(bool);
    case CODEC_TRIBOOL:
        return sizeof(rlog_msg_tribool);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------- */

/* Packs the fields of body; *rc collects the packer's results. Returns
 * RLOG_EINVAL for a value the decoder would refuse, else 0. */
static int enc_fields(msgpack_packer *pk, const void *body, const codec_field *f, unsigned n,
                      int *rc)
{
    for (unsigned i = 0; i < n; i++, f++) {
        const void *v = at_off(body, f->off);
        if (!field_ok(body, f, NULL, 0)) {
            return RLOG_EINVAL;
        }
        switch (f->type) {
        case CODEC_U64:
            *rc |= msgpack_pack_uint64(pk, *(const uint64_t *)v);
            break;
        case CODEC_U32:
            *rc |= msgpack_pack_uint32(pk, *(const uint32_t *)v);
            break;
        case CODEC_U16:
            *rc |= msgpack_pack_uint16(pk, *(const uint16_t *)v);
            break;
        case CODEC_BOOL:
            *rc |= rlg_codec_enc_bool(pk, *(const bool *)v);
            break;
        case CODEC_TRIBOOL:
            switch (*(const rlog_msg_tribool *)v) {
            case RLOG_TRIBOOL_UNKNOWN:
                *rc |= msgpack_pack_nil(pk);
                break;
            case RLOG_TRIBOOL_TRUE:
                *rc |= msgpack_pack_true(pk);
                break;
            case RLOG_TRIBOOL_FALSE:
                *rc |= msgpack_pack_false(pk);
                break;
            default:
                return RLOG_EINVAL;
            }
            break;
        case CODEC_STR:
            if (rlg_codec_enc_str(pk, *(const char *const *)v, f->str, rc)) {
                return RLOG_EINVAL;
            }
            break;
        case CODEC_BIN:
        case CODEC_BIN32: {
            const void *p = get_ptr(body, f);
            size_t len = get_len(body, f);
            if ((len > 0 && p == NULL) || len > UINT32_MAX) {
                return RLOG_EINVAL; /* bin32 is the largest msgpack byte string */
            }
            *rc |= rlg_codec_enc_bin(pk, p, len);
            break;
        }
        case CODEC_ARRAY: {
            const codec_array *a = f->array;
            const void *items = get_ptr(body, f);
            size_t count = get_len(body, f);
            if (count > 0 && items == NULL) {
                return RLOG_EINVAL;
            }
            *rc |= msgpack_pack_array(pk, (uint32_t)count);
            for (size_t k = 0; k < count; k++) {
                *rc |= msgpack_pack_array(pk, a->n);
                if (enc_fields(pk, element(items, a, k), a->fields, a->n, rc)) {
                    return RLOG_EINVAL;
                }
            }
            break;
        }
        }
    }
    return 0;
}

/* An upper bound of the encoded size of the fields of body (so that large
 * AppendEntries and snapshot chunks are not copied by repeated doubling). */
static size_t enc_size(const void *body, const codec_field *f, unsigned n)
{
    size_t size = 0;
    for (unsigned i = 0; i < n; i++, f++) {
        switch (f->type) {
        case CODEC_STR: {
            const char *s = *(const char *const *)at_off(body, f->off);
            size += 5 + (s != NULL ? strnlen(s, RLOG_WIRE_TEXT_MAX + 1) : 0);
            break;
        }
        case CODEC_BIN:
        case CODEC_BIN32:
            size += 5 + get_len(body, f);
            break;
        case CODEC_ARRAY: {
            const void *items = get_ptr(body, f);
            size_t count = items != NULL ? get_len(body, f) : 0;
            size += 5;
            for (size_t k = 0; k < count; k++) {
                size += 5 + enc_size(element(items, f->array, k), f->array->fields, f->array->n);
            }
            break;
        }
        default:
            size += 9;
            break;
        }
    }
    return size;
}

int rlog_msg_encode(const rlog_msg *msg, void **buf, size_t *len)
{
    if (buf == NULL || len == NULL) {
        return RLOG_EINVAL;
    }
    *buf = NULL;
    *len = 0;
    const codec_schema *s = msg != NULL ? rlg_codec_schema((uint64_t)msg->type) : NULL;
    if (s == NULL) {
        return RLOG_EINVAL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t est = 16 + enc_size(&msg->u, s->fields, s->n);
    sb.data = malloc(est);
    if (sb.data == NULL) {
        return RLOG_ENOMEM;
    }
    sb.alloc = est;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 2 + s->n);
    rc |= msgpack_pack_uint32(&pk, (uint32_t)msg->type);
    rc |= msgpack_pack_uint32(&pk, RLOG_WIRE_MSG_VERSION);
    int bad = enc_fields(&pk, &msg->u, s->fields, s->n, &rc);
    if (bad != 0 || rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return bad != 0 ? bad : RLOG_ENOMEM;
    }
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return 0;
}

/* ------------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------- */

/* Where the strings of a body go: inside an array, into the block after
 * its elements (`strs` advances); at the top level, the one str field is
 * copied once the whole message decoded (`top`). */
typedef struct dec_strs {
    char *strs;
    const void *top;
    size_t top_len;
    const char **top_out;
} dec_strs;

static int dec_fields(codec_rd *r, rlog_msg *m, void *body, const codec_field *f, unsigned n,
                      dec_strs *ds);

/* Array field f: the count is checked against the bytes that remain (each
 * element takes at least min_bytes), then one block holds the elements
 * and, when they have str fields, their strings (at most the remaining
 * bytes + one NUL each). */
static int dec_array(codec_rd *r, rlog_msg *m, void *body, const codec_field *f)
{
    const codec_array *a = f->array;
    size_t at = r->off;
    uint32_t n;
    if (rlg_codec_rd_array(r, f->name, &n)) {
        return RLOG_EPROTO;
    }
    size_t cap = rlg_codec_rd_left(r) / a->min_bytes;
    if (n > cap) {
        return rlg_codec_rd_fail(r, at, f->name,
                                 "count %" PRIu32
                                 " exceeds the %zu %s that the %zu remaining bytes "
                                 "can hold",
                                 n, cap, a->plural, rlg_codec_rd_left(r));
    }
    if (n == 0) {
        return 0;
    }
    bool strs = false;
    for (unsigned i = 0; i < a->n; i++) {
        strs |= a->fields[i].type == CODEC_STR;
    }
    char *block = calloc(1, (size_t)n * a->size + (strs ? rlg_codec_rd_left(r) + n : 0));
    if (block == NULL) {
        return RLOG_ENOMEM;
    }
    assert(m->alloc_ == NULL); /* one allocation per message */
    m->alloc_ = block;
    dec_strs ds = {.strs = block + (size_t)n * a->size};
    r->array = f->name;
    for (uint32_t i = 0; i < n; i++) {
        r->entry = (long)i;
        size_t head = r->off;
        uint32_t k;
        if (rlg_codec_rd_array(r, a->label, &k)) {
            return RLOG_EPROTO;
        }
        if (k != a->n) {
            return rlg_codec_rd_fail(r, head, a->label,
                                     "array of %" PRIu32 " elements; each %s has %u", k, a->noun,
                                     a->n);
        }
        if (dec_fields(r, m, block + (size_t)i * a->size, a->fields, a->n, &ds)) {
            return RLOG_EPROTO;
        }
    }
    r->entry = -1;
    set_ptr_len(body, f, block, n);
    return 0;
}

static int dec_str(codec_rd *r, const codec_field *f, const char **out, dec_strs *ds)
{
    const void *p;
    size_t len;
    if (rlg_codec_dec_str(r, f->name, f->str, &p, &len)) {
        return RLOG_EPROTO;
    }
    if (ds->strs == NULL) {          /* copied by dec_body */
        assert(ds->top_out == NULL); /* one allocation per message */
        ds->top = p;
        ds->top_len = len;
        ds->top_out = out;
        return 0;
    }
    *out = ds->strs;
    ds->strs = rlg_codec_put_str(ds->strs, p, len);
    return 0;
}

static int dec_field(codec_rd *r, rlog_msg *m, void *body, const codec_field *f, dec_strs *ds)
{
    void *v = at_off(body, f->off);
    switch (f->type) {
    case CODEC_U64:
        return rlg_codec_rd_u64(r, f->name, v);
    case CODEC_U32:
        return rlg_codec_rd_u32(r, f->name, v);
    case CODEC_U16: {
        uint64_t x = 0;
        int rc = rlg_codec_rd_uint(r, f->name, UINT16_MAX, &x);
        *(uint16_t *)v = (uint16_t)x;
        return rc;
    }
    case CODEC_BOOL:
        return rlg_codec_rd_bool(r, f->name, v);
    case CODEC_TRIBOOL:
        return rlg_codec_rd_tribool(r, f->name, v);
    case CODEC_STR:
        return dec_str(r, f, v, ds);
    case CODEC_BIN:
    case CODEC_BIN32: {
        const void *p = NULL;
        size_t len = 0;
        int rc = rlg_codec_rd_bin(r, f->name, &p, &len);
        set_ptr_len(body, f, p, len);
        return rc;
    }
    case CODEC_ARRAY:
        return dec_array(r, m, body, f);
    }
    return RLOG_EPROTO;
}

static int dec_fields(codec_rd *r, rlog_msg *m, void *body, const codec_field *f, unsigned n,
                      dec_strs *ds)
{
    for (unsigned i = 0; i < n; i++, f++) {
        size_t at = r->off;
        int rc = dec_field(r, m, body, f, ds);
        if (rc != 0) {
            return rc;
        }
        char why[160];
        if (!field_ok(body, f, why, sizeof why)) {
            return rlg_codec_rd_fail(r, at, f->name, "%s", why);
        }
    }
    return 0;
}

static int dec_body(codec_rd *r, rlog_msg *m, const codec_schema *s)
{
    dec_strs ds = {0};
    int rc = dec_fields(r, m, &m->u, s->fields, s->n, &ds);
    if (rc == 0 && ds.top_out != NULL) {
        rc = rlg_codec_dec_copy(m, ds.top, ds.top_len, ds.top_out);
    }
    return rc;
}

/* [type, version, ...]: checks the header against the schema. */
static int dec_header(codec_rd *r, uint64_t *type, const codec_schema **schema)
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
    const codec_schema *s = rlg_codec_schema(*type);
    if (s == NULL) {
        return rlg_codec_rd_fail(r, at, "type", "unknown message type %" PRIu64, *type);
    }
    r->msg = s->name;
    at = r->off;
    if (rlg_codec_rd_u64(r, "version", &version)) {
        return RLOG_EPROTO;
    }
    if (version != RLOG_WIRE_MSG_VERSION) {
        return rlg_codec_rd_fail(r, at, "version",
                                 "unsupported version %" PRIu64 " (this build speaks %u)", version,
                                 RLOG_WIRE_MSG_VERSION);
    }
    if (n != s->n + 2) {
        return rlg_codec_rd_fail(r, 0, "(array)", "%" PRIu32 " elements; version %u has %u", n,
                                 RLOG_WIRE_MSG_VERSION, s->n + 2);
    }
    *schema = s;
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
    codec_rd r = {buf, len, 0, "message", -1, err, errcap, NULL};
    if (max_bytes == 0) {
        max_bytes = RLOG_WIRE_MAX_BYTES_DEFAULT;
    }
    if (len > max_bytes) {
        return rlg_codec_rd_fail(&r, 0, "(array)", "%zu bytes exceed the limit of %zu", len,
                                 max_bytes);
    }
    uint64_t type = 0;
    const codec_schema *s = NULL;
    int rc = dec_header(&r, &type, &s);
    if (rc == 0) {
        rc = dec_body(&r, out, s);
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

static bool eq_fields(const void *a, const void *b, const codec_field *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++, f++) {
        const void *x = at_off(a, f->off), *y = at_off(b, f->off);
        size_t width = scalar_size(f->type);
        bool same = width > 0 && memcmp(x, y, width) == 0;
        switch (f->type) {
        case CODEC_STR:
            same = rlg_codec_str_equal(*(const char *const *)x, *(const char *const *)y);
            break;
        case CODEC_BIN:
        case CODEC_BIN32:
            same =
                rlg_codec_bytes_equal(get_ptr(a, f), get_len(a, f), get_ptr(b, f), get_len(b, f));
            break;
        case CODEC_ARRAY: {
            size_t count = get_len(a, f);
            const void *ia = get_ptr(a, f), *ib = get_ptr(b, f);
            same = count == get_len(b, f);
            for (size_t k = 0; same && k < count; k++) {
                same = eq_fields(element(ia, f->array, k), element(ib, f->array, k),
                                 f->array->fields, f->array->n);
            }
            break;
        }
        default: /* a scalar: compared above */
            break;
        }
        if (!same) {
            return false;
        }
    }
    return true;
}

bool rlg_msg_equal(const rlog_msg *a, const rlog_msg *b)
{
    const codec_schema *s = rlg_codec_schema((uint64_t)a->type);
    return a->type == b->type && s != NULL && eq_fields(&a->u, &b->u, s->fields, s->n);
}
