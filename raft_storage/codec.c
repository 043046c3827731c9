/* The Raft record codec: encoders, hostile-input-safe decoders and the
 * one-line formatter used by `rlog dump`. Layouts: codec.h. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log/format.h"
#include "raft_storage/codec.h"

int rlg_rs_why(int err, char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* ---------------------------------------------------------------- encode */

void rlg_hs_encode(const rlog_rs_hard_state *hs, uint8_t out[RLG_RS_HS_SIZE])
{
    rlg_put64(out, hs->term);
    rlg_put64(out + 8, hs->vote);
    rlg_put64(out + 16, hs->commit);
}

void rlg_trunc_encode(uint64_t index, uint8_t out[RLG_RS_TRUNC_SIZE])
{
    rlg_put64(out, index);
}

size_t rlg_batch_size(const rlog_rs_entry *e, size_t n)
{
    if (n > (SIZE_MAX - RLG_RS_BATCH_HDR) / RLG_RS_ENTRY_HDR)
        return SIZE_MAX;
    size_t total = RLG_RS_BATCH_HDR + n * RLG_RS_ENTRY_HDR;
    for (size_t i = 0; i < n; i++) {
        if (total > SIZE_MAX - e[i].len)
            return SIZE_MAX;
        total += e[i].len;
    }
    return total;
}

void rlg_batch_encode(uint64_t first_index, const rlog_rs_entry *e, size_t n, uint8_t *out)
{
    rlg_put64(out, first_index);
    rlg_put32(out + 8, (uint32_t)n);
    rlg_put32(out + 12, 0);
    uint8_t *t = out + RLG_RS_BATCH_HDR;
    uint8_t *d = t + n * RLG_RS_ENTRY_HDR;
    for (size_t i = 0; i < n; i++, t += RLG_RS_ENTRY_HDR) {
        rlg_put64(t, e[i].term);
        rlg_put32(t + 8, e[i].len);
        rlg_put16(t + 12, e[i].type);
        rlg_put16(t + 14, 0);
        if (e[i].len)
            memcpy(d, e[i].data, e[i].len);
        d += e[i].len;
    }
}

size_t rlg_snap_size(size_t name_len, uint32_t conf_len)
{
    return RLG_RS_SNAP_HDR + name_len + conf_len;
}

void rlg_snap_encode(const rlg_snap_view *s, uint8_t *out)
{
    rlg_put64(out, s->index);
    rlg_put64(out + 8, s->term);
    rlg_put64(out + 16, s->conf_index);
    rlg_put64(out + 24, s->size);
    rlg_put32(out + 32, s->crc);
    rlg_put32(out + 36, s->trailing);
    rlg_put16(out + 40, s->name_len);
    rlg_put16(out + 42, s->flags);
    rlg_put32(out + 44, s->conf_len);
    memcpy(out + RLG_RS_SNAP_HDR, s->name, s->name_len);
    if (s->conf_len)
        memcpy(out + RLG_RS_SNAP_HDR + s->name_len, s->conf, s->conf_len);
}

bool rlg_snap_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > RLG_RS_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- decode */

/* Each Raft record type's name in refusals and its fixed size: the whole
 * record (hard state, truncation) or its header (entries, snapshot). The
 * types are RLOG_RS_TYPE_HARD_STATE.. in this order. */
typedef struct rec_kind {
    const char *name;
    size_t size;
    bool exact;
} rec_kind;

static const rec_kind rec_kinds[] = {
    {"hard state record", RLG_RS_HS_SIZE, true},
    {"entries record", RLG_RS_BATCH_HDR, false},
    {"truncation record", RLG_RS_TRUNC_SIZE, true},
    {"snapshot marker", RLG_RS_SNAP_HDR, false},
};
_Static_assert(RLOG_RS_TYPE_SNAPSHOT - RLOG_RS_TYPE_HARD_STATE + 1 ==
                   sizeof rec_kinds / sizeof rec_kinds[0],
               "one rec_kinds row per Raft record type");

/* Whether `type` is a Raft record type and `len` bytes hold its fixed part. */
static int check_size(uint16_t type, size_t len, char *why, size_t cap)
{
    if (type < RLOG_RS_TYPE_HARD_STATE || type > RLOG_RS_TYPE_SNAPSHOT)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "record type %u is not a Raft record",
                          (unsigned)type);
    const rec_kind *k = &rec_kinds[type - RLOG_RS_TYPE_HARD_STATE];
    if (k->exact && len != k->size)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "%s of %zu bytes (expected %zu)", k->name, len,
                          k->size);
    if (len < k->size)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "%s of %zu bytes is shorter than its header",
                          k->name, len);
    return 0;
}

static int decode_batch(const uint8_t *p, size_t len, rlg_batch_view *b, char *why, size_t cap)
{
    b->first_index = rlg_get64(p);
    b->count = rlg_get32(p + 8);
    if (rlg_get32(p + 12) != 0)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "entries record has non-zero reserved bits");
    if (b->first_index == 0 || b->count == 0)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                          "entries record with first index %" PRIu64 " and count %" PRIu32,
                          b->first_index, b->count);
    if (b->first_index > UINT64_MAX - b->count)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "entries record index range overflows");
    size_t rest = len - RLG_RS_BATCH_HDR;
    if (b->count > rest / RLG_RS_ENTRY_HDR)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                          "entries record claims %" PRIu32 " entries in %zu bytes", b->count, rest);
    b->table = p + RLG_RS_BATCH_HDR;
    rest -= (size_t)b->count * RLG_RS_ENTRY_HDR;
    b->payloads = b->table + (size_t)b->count * RLG_RS_ENTRY_HDR;
    for (uint32_t k = 0; k < b->count; k++) {
        const uint8_t *t = b->table + (size_t)k * RLG_RS_ENTRY_HDR;
        uint32_t l = rlg_get32(t + 8);
        if (rlg_get16(t + 14) != 0)
            return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                              "entry %" PRIu32 " has non-zero reserved bits", k);
        if (l > rest)
            return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                              "entry %" PRIu32 " claims %" PRIu32 " bytes; %zu remain", k, l, rest);
        rest -= l;
    }
    if (rest != 0)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                          "entries record has %zu bytes beyond its entries", rest);
    return 0;
}

static int decode_snap(const uint8_t *p, size_t len, rlg_snap_view *s, char *why, size_t cap)
{
    s->index = rlg_get64(p);
    s->term = rlg_get64(p + 8);
    s->conf_index = rlg_get64(p + 16);
    s->size = rlg_get64(p + 24);
    s->crc = rlg_get32(p + 32);
    s->trailing = rlg_get32(p + 36);
    s->name_len = rlg_get16(p + 40);
    s->flags = rlg_get16(p + 42);
    s->conf_len = rlg_get32(p + 44);
    if (s->flags & ~RLG_SNAP_REPLACE)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "snapshot marker has unknown flags %#x",
                          (unsigned)s->flags);
    size_t rest = len - RLG_RS_SNAP_HDR;
    if (s->name_len > rest || s->conf_len != rest - s->name_len)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                          "snapshot marker lengths (name %u, configuration %" PRIu32
                          ") do not match its %zu bytes",
                          (unsigned)s->name_len, s->conf_len, len);
    s->name = (const char *)p + RLG_RS_SNAP_HDR;
    s->conf = p + RLG_RS_SNAP_HDR + s->name_len;
    if (!rlg_snap_name_ok(s->name, s->name_len))
        return rlg_rs_why(RLOG_ECORRUPT, why, cap, "snapshot marker names an invalid file name");
    if (s->index == 0 || s->term == 0)
        return rlg_rs_why(RLOG_ECORRUPT, why, cap,
                          "snapshot marker with index %" PRIu64 " term %" PRIu64, s->index,
                          s->term);
    return 0;
}

int rlg_rec_decode(uint16_t type, const void *payload, size_t len, rlg_rec *out, char *why,
                   size_t cap)
{
    const uint8_t *p = payload;
    memset(out, 0, sizeof *out);
    out->type = type;
    out->raw = p;
    out->raw_len = len;
    int rc = check_size(type, len, why, cap);
    if (rc != 0)
        return rc;
    switch (type) {
    case RLOG_RS_TYPE_HARD_STATE:
        out->u.hs.term = rlg_get64(p);
        out->u.hs.vote = rlg_get64(p + 8);
        out->u.hs.commit = rlg_get64(p + 16);
        return 0;
    case RLOG_RS_TYPE_ENTRIES:
        return decode_batch(p, len, &out->u.batch, why, cap);
    case RLOG_RS_TYPE_TRUNCATE:
        out->u.trunc = rlg_get64(p);
        if (out->u.trunc == 0)
            return rlg_rs_why(RLOG_ECORRUPT, why, cap, "truncation at index 0");
        return 0;
    default: /* RLOG_RS_TYPE_SNAPSHOT: check_size admitted only the four */
        return decode_snap(p, len, &out->u.snap, why, cap);
    }
}

void rlg_batch_entry(const rlg_batch_view *b, uint32_t k, rlog_rs_entry *e)
{
    const uint8_t *d = b->payloads;
    for (uint32_t i = 0; i < k; i++)
        d += rlg_get32(b->table + (size_t)i * RLG_RS_ENTRY_HDR + 8);
    const uint8_t *t = b->table + (size_t)k * RLG_RS_ENTRY_HDR;
    e->term = rlg_get64(t);
    e->len = rlg_get32(t + 8);
    e->type = rlg_get16(t + 12);
    e->data = d;
    e->batch = NULL;
}

uint64_t rlg_batch_term(const rlg_batch_view *b, uint32_t k)
{
    return rlg_get64(b->table + (size_t)k * RLG_RS_ENTRY_HDR);
}

/* ---------------------------------------------------------------- varints */

size_t rlg_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t rlg_varint_get(const uint8_t *p, uint64_t *v)
{
    uint64_t x = 0;
    size_t n = 0;
    unsigned shift = 0;
    do {
        x |= (uint64_t)(p[n] & 0x7f) << shift;
        shift += 7;
    } while (p[n++] & 0x80);
    *v = x;
    return n;
}

/* ---------------------------------------------------------------- format */

static void format_batch(const rlg_batch_view *b, char *buf, size_t cap)
{
    uint64_t tmin = UINT64_MAX, tmax = 0, bytes = 0;
    for (uint32_t k = 0; k < b->count; k++) {
        const uint8_t *t = b->table + (size_t)k * RLG_RS_ENTRY_HDR;
        uint64_t term = rlg_get64(t);
        tmin = term < tmin ? term : tmin;
        tmax = term > tmax ? term : tmax;
        bytes += rlg_get32(t + 8);
    }
    snprintf(buf, cap,
             "entries %" PRIu64 "..%" PRIu64 " (%" PRIu32 ") terms %" PRIu64 "..%" PRIu64
             " bytes %" PRIu64,
             b->first_index, b->first_index + b->count - 1, b->count, tmin, tmax, bytes);
}

int rlog_rs_format_record(uint16_t type, const void *payload, size_t len, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return RLOG_EINVAL;
    rlg_rec r;
    char why[200];
    if (type < RLOG_RS_TYPE_HARD_STATE || type > RLOG_RS_TYPE_SNAPSHOT) {
        snprintf(buf, cap, "type %u (not a Raft record) %zu bytes", (unsigned)type, len);
        return RLOG_ENOTFOUND;
    }
    if (rlg_rec_decode(type, payload, len, &r, why, sizeof why)) {
        snprintf(buf, cap, "BAD Raft record: %s", why);
        return RLOG_ECORRUPT;
    }
    switch (type) {
    case RLOG_RS_TYPE_HARD_STATE:
        snprintf(buf, cap, "hard-state term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64,
                 r.u.hs.term, r.u.hs.vote, r.u.hs.commit);
        break;
    case RLOG_RS_TYPE_ENTRIES:
        format_batch(&r.u.batch, buf, cap);
        break;
    case RLOG_RS_TYPE_TRUNCATE:
        snprintf(buf, cap, "truncate from %" PRIu64, r.u.trunc);
        break;
    default:
        snprintf(buf, cap,
                 "snapshot index %" PRIu64 " term %" PRIu64 " conf@%" PRIu64 " (%" PRIu32
                 " bytes) file %.*s size %" PRIu64 " crc %08" PRIx32 " trailing %" PRIu32 "%s",
                 r.u.snap.index, r.u.snap.term, r.u.snap.conf_index, r.u.snap.conf_len,
                 (int)r.u.snap.name_len, r.u.snap.name, r.u.snap.size, r.u.snap.crc,
                 r.u.snap.trailing, (r.u.snap.flags & RLG_SNAP_REPLACE) ? " replaces-log" : "");
        break;
    }
    return 0;
}
