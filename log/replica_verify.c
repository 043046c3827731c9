/*
 * A replica's verification cursor (rlg_rv): records checked as their
 * bytes arrive, in any pieces, before any byte is written.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log/replica_internal.h"

/* ------------------------------------------------------------ verifying */

/* Records may lie anywhere below 4 GiB, the largest segment: a record past
 * the end of the file extends it (a leader's segment outgrows its file when
 * its segment size setting grew since the file was made). */
#define RP_MAX_FILE 0xffffffffull

void rlg_rv_init(rlg_rv *c, uint64_t log_id, uint64_t seq, uint64_t off, uint64_t e)
{
    memset(c, 0, sizeof *c);
    c->seq = seq;
    c->salt = rlg_salt_state(log_id, seq);
    c->off = off;
    c->e = e;
}

int rlg_rv_fail(rlg_replica *r, const rlg_rv *c, const char *fmt, ...)
{
    char what[256], name[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rlg_rp_fail(r, RLOG_EPROTO,
                       "segment %s offset %" PRIu64 " (next LSN %" PRIu64 "): %s; nothing written",
                       rlg_rp_seg_name(c->seq, name), c->hlen ? c->rec_off : c->off, c->e, what);
}

/* The field checks of a complete record header (docs/format.md, "A valid
 * record"), at exactly the position it must fill. */
static int rv_fields(rlg_replica *r, const rlg_rv *c)
{
    const rlg_rec_header *h = &c->h;
    rlg_rec_why why = rlg_rec_fields(h, RP_MAX_FILE - c->rec_off - RLG_REC_HEADER_SIZE, c->e, true);
    if (why == RLG_REC_OK && h->type >= RLOG_TYPE_USER_MIN && c->rec_off > UINT32_MAX)
        why = RLG_REC_FAR;
    if (why != RLG_REC_OK) {
        char what[128];
        rlg_rec_why_str(why, h, what, sizeof what);
        return rlg_rv_fail(r, c, "%s (expected LSN %" PRIu64 ")", what, c->e);
    }
    return 0;
}

int rlg_rv_feed(rlg_replica *r, rlg_rv *c, const uint8_t *p, size_t len, rlg_rv_fn fn, void *arg)
{
    for (;;) {
        if (c->hlen < RLG_REC_HEADER_SIZE) {
            if (len == 0)
                return 0;
            if (c->hlen == 0) {
                c->rec_off = c->off;
                if (c->sealed)
                    return rlg_rv_fail(r, c, "%zu bytes after the seal", len);
                if (RP_MAX_FILE - c->off < RLG_REC_HEADER_SIZE)
                    return rlg_rv_fail(r, c, "record header past 4 GiB");
            }
            size_t n = RLG_REC_HEADER_SIZE - c->hlen;
            n = n < len ? n : len;
            memcpy(c->hdr + c->hlen, p, n);
            c->hlen += n;
            c->off += n;
            p += n;
            len -= n;
            if (c->hlen < RLG_REC_HEADER_SIZE)
                return 0;
            rlg_rec_header_decode(c->hdr, &c->h);
            int rv = rv_fields(r, c);
            if (rv)
                return rv;
            c->crc = rlg_crc32c_update(c->salt, c->hdr + 4, RLG_REC_HEADER_SIZE - 4);
            c->left = c->h.len;
        }
        size_t n = c->left < len ? (size_t)c->left : len;
        if (n) {
            c->crc = rlg_crc32c_update(c->crc, p, n);
            c->off += n;
            p += n;
            len -= n;
            c->left -= n;
        }
        if (c->left)
            return 0;
        if (~c->crc != c->h.crc)
            return rlg_rv_fail(r, c, "record checksum mismatch (type %u, LSN %" PRIu64 ")",
                               (unsigned)c->h.type, c->h.lsn);
        if (c->h.type >= RLOG_TYPE_USER_MIN)
            c->e++;
        if (c->h.type == RLG_TYPE_SEAL)
            c->sealed = true;
        int rv = fn ? fn(arg, c) : 0;
        c->hlen = 0;
        if (rv)
            return rv;
    }
}
