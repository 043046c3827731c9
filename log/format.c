/* Segment and record codec. The layout is at the top of log/format.h and
 * fully in docs/format.md. */
#include "log/format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rlog/log.h"

uint32_t rlg_salt_state(uint64_t log_id, uint64_t seq)
{
    uint8_t salt[16];
    rlg_put64(salt, log_id);
    rlg_put64(salt + 8, seq);
    return rlg_crc32c_update(0xffffffffu, salt, sizeof salt);
}

void rlg_seg_header_encode(const rlg_seg_header *h, uint8_t out[RLG_SEG_HEADER_SIZE])
{
    memset(out, 0, RLG_SEG_HEADER_SIZE);
    memcpy(out, RLG_MAGIC, 8);
    rlg_put32(out + 8, h->version);
    rlg_put32(out + 12, RLG_SEG_HEADER_SIZE);
    rlg_put64(out + 16, h->log_id);
    rlg_put64(out + 24, h->seq);
    rlg_put64(out + 32, h->first_lsn);
    rlg_put32(out + RLG_SEG_OFF_FLAGS, h->flags);
    rlg_put32(out + 60, rlg_crc32c(out, 60));
}

rlg_hdr_status rlg_seg_header_decode(const uint8_t in[RLG_SEG_HEADER_SIZE], rlg_seg_header *h)
{
    bool zero = true;
    for (unsigned i = 0; i < RLG_SEG_HEADER_SIZE; i++) {
        if (in[i]) {
            zero = false;
            break;
        }
    }
    if (zero)
        return RLG_HDR_ZERO;
    if (memcmp(in, RLG_MAGIC, 8) != 0 || rlg_get32(in + 60) != rlg_crc32c(in, 60))
        return RLG_HDR_BAD;
    h->version = rlg_get32(in + 8);
    h->log_id = rlg_get64(in + 16);
    h->seq = rlg_get64(in + 24);
    h->first_lsn = rlg_get64(in + 32);
    h->flags = rlg_get32(in + RLG_SEG_OFF_FLAGS);
    if (h->version != RLG_FORMAT_VERSION || rlg_get32(in + 12) != RLG_SEG_HEADER_SIZE)
        return RLG_HDR_VERSION;
    return RLG_HDR_OK;
}

size_t rlg_seg_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    /* compared: [0, flags), [flags + 4, header CRC), [header end, n) */
    const size_t from[3] = {0, RLG_SEG_OFF_FLAGS + 4, RLG_SEG_HEADER_SIZE};
    const size_t to[3] = {RLG_SEG_OFF_FLAGS, RLG_SEG_OFF_CRC, SIZE_MAX};
    for (int k = 0; k < 3 && from[k] < n; k++) {
        size_t i = from[k], end = to[k] < n ? to[k] : n;
        if (memcmp(a + i, b + i, end - i) == 0)
            continue;
        while (a[i] == b[i])
            i++;
        return i;
    }
    return n;
}

void rlg_rec_encode(uint8_t *out, uint32_t salt_state, uint64_t lsn, uint64_t durable,
                    uint16_t type, const void *payload, uint32_t len)
{
    rlg_put32(out + 4, len);
    rlg_put64(out + 8, lsn);
    rlg_put64(out + 16, durable);
    rlg_put16(out + 24, type);
    rlg_put16(out + 26, 0);
    if (len)
        memcpy(out + RLG_REC_HEADER_SIZE, payload, len);
    uint32_t s = rlg_crc32c_update(salt_state, out + 4, RLG_REC_HEADER_SIZE - 4 + (size_t)len);
    rlg_put32(out, ~s);
}

void rlg_rec_header_decode(const uint8_t in[RLG_REC_HEADER_SIZE], rlg_rec_header *h)
{
    h->crc = rlg_get32(in + RLG_REC_OFF_CRC);
    h->len = rlg_get32(in + RLG_REC_OFF_LEN);
    h->lsn = rlg_get64(in + RLG_REC_OFF_LSN);
    h->durable = rlg_get64(in + RLG_REC_OFF_DURABLE);
    h->type = rlg_get16(in + RLG_REC_OFF_TYPE);
    h->flags = rlg_get16(in + RLG_REC_OFF_FLAGS);
}

rlg_rec_why rlg_rec_fields(const rlg_rec_header *h, uint64_t room, uint64_t e, bool exact)
{
    rlg_rec_why why = rlg_rec_kind(h->type, h->flags);
    if (why)
        return why;
    bool user = h->type >= RLOG_TYPE_USER_MIN;
    if (h->len > room || (!user && h->len != 0))
        return RLG_REC_LEN;
    uint64_t want = user ? e : e - 1;
    if (exact ? h->lsn != want : h->lsn < want)
        return RLG_REC_LSN;
    if (user && h->lsn == UINT64_MAX)
        return RLG_REC_LSN; /* the LSN after it would wrap */
    if (user ? h->durable >= h->lsn : h->durable > h->lsn)
        return RLG_REC_WITNESS;
    return RLG_REC_OK;
}

rlg_rec_why rlg_rec_check(const uint8_t *rec, size_t avail, uint32_t salt_state, uint64_t e,
                          rlg_rec_header *h)
{
    if (avail < RLG_REC_HEADER_SIZE)
        return RLG_REC_EOF;
    rlg_rec_header_decode(rec, h);
    rlg_rec_why why = rlg_rec_fields(h, avail - RLG_REC_HEADER_SIZE, e, true);
    if (why == RLG_REC_OK && !rlg_rec_crc_ok(rec, salt_state, h->len))
        why = RLG_REC_CRC;
    return why;
}

bool rlg_seg_next(const uint8_t *seg, size_t len, uint32_t salt_state, uint64_t *off,
                  rlg_rec_header *h)
{
    uint64_t o = *off;
    if (o > len || len - o < RLG_REC_HEADER_SIZE)
        return false;
    rlg_rec_header_decode(seg + o, h);
    if (h->len > len - o - RLG_REC_HEADER_SIZE || !rlg_rec_crc_ok(seg + o, salt_state, h->len))
        return false;
    *off = o + RLG_REC_HEADER_SIZE + h->len;
    return true;
}

void rlg_rec_why_str(rlg_rec_why why, const rlg_rec_header *h, char *buf, size_t cap)
{
    switch (why) {
    case RLG_REC_OK:
        snprintf(buf, cap, "a valid record");
        break;
    case RLG_REC_EOF:
        snprintf(buf, cap, "end of file");
        break;
    case RLG_REC_ZERO:
        snprintf(buf, cap, "zero bytes instead of a record");
        break;
    case RLG_REC_FLAGS:
        snprintf(buf, cap, "record flags 0x%x", (unsigned)h->flags);
        break;
    case RLG_REC_TYPE:
        snprintf(buf, cap, "invalid record type %u", (unsigned)h->type);
        break;
    case RLG_REC_LEN:
        snprintf(buf, cap, "record length %" PRIu32 " out of bounds", h->len);
        break;
    case RLG_REC_LSN:
        snprintf(buf, cap, "record type %u has LSN %" PRIu64, (unsigned)h->type, h->lsn);
        break;
    case RLG_REC_WITNESS:
        snprintf(buf, cap, "record witness %" PRIu64 " invalid for LSN %" PRIu64, h->durable,
                 h->lsn);
        break;
    case RLG_REC_CRC:
        snprintf(buf, cap, "record checksum mismatch");
        break;
    case RLG_REC_FAR:
        snprintf(buf, cap, "record beyond 4 GiB");
        break;
    }
}

bool rlg_rec_crc_ok(const uint8_t *rec, uint32_t salt_state, uint32_t len)
{
    uint32_t s = rlg_crc32c_update(salt_state, rec + 4, RLG_REC_HEADER_SIZE - 4 + (size_t)len);
    return ~s == rlg_get32(rec);
}

void rlg_run_mark_encode(const rlg_run_mark *m, uint8_t out[RLG_RUN_MARKER_SIZE])
{
    memcpy(out, RLG_RUN_MAGIC, 8);
    rlg_put32(out + 8, RLG_RUN_FORMAT);
    rlg_put32(out + 12, RLG_RUN_MARKER_SIZE);
    rlg_put64(out + 16, m->log_id);
    rlg_put64(out + 24, m->seq);
    rlg_put64(out + 32, m->from_off);
    rlg_put64(out + 40, m->from_lsn);
    rlg_put32(out + 48, rlg_crc32c(out, 48));
}

rlg_run_status rlg_run_mark_decode(const uint8_t *in, size_t len, rlg_run_mark *m)
{
    if (len < RLG_RUN_MARKER_SIZE || memcmp(in, RLG_RUN_MAGIC, 8) != 0 ||
        rlg_get32(in + 12) != RLG_RUN_MARKER_SIZE || rlg_get32(in + 48) != rlg_crc32c(in, 48))
        return RLG_RUN_BAD;
    if (rlg_get32(in + 8) != RLG_RUN_FORMAT)
        return RLG_RUN_OTHER_VERSION;
    m->log_id = rlg_get64(in + 16);
    m->seq = rlg_get64(in + 24);
    m->from_off = rlg_get64(in + 32);
    m->from_lsn = rlg_get64(in + 40);
    return RLG_RUN_OK;
}

void rlg_seg_name(uint64_t seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64 ".seg", seq);
}

bool rlg_seg_name_form(const char *name, uint64_t *seq)
{
    return strlen(name) == 20 && strcmp(name + 16, ".seg") == 0 && rlg_get_hex16(name, seq);
}

bool rlg_seg_parse_name(const char *name, uint64_t *seq)
{
    return rlg_seg_name_form(name, seq) && *seq != 0;
}

void rlog_segment_name(uint64_t seq, char *buf, size_t cap)
{
    rlg_seg_name(seq, buf, cap);
}
