/*
 * On-disk format of rlog segments (short form; docs/format.md is the full
 * specification). All integers little-endian.
 *
 * Segment file "<seq as %016x>.seg":
 *
 *   0    segment header (64 bytes)
 *   64   record, record, ...          (no padding between records)
 *   ...  zeros up to the preallocated size
 *
 * Segment header:
 *   off size field
 *   0   8    magic "RLOGSEG1"
 *   8   4    format version (1)
 *   12  4    header size (64)
 *   16  8    log id (random, same in every segment of a log)
 *   24  8    segment sequence number (1, 2, ...; equals the file name's)
 *   32  8    first LSN of the segment
 *   40  4    flags: bit 0 RLG_SEG_RECYCLED (other bits zero)
 *   44  16   reserved, zero
 *   60  4    CRC32C of bytes 0..59
 *
 * Record (28-byte header + payload):
 *   off size field
 *   0   4    crc      CRC32C(salt || record bytes 4 .. 28+len)
 *   4   4    len      payload length
 *   8   8    lsn      this record's LSN (log records: the LSN they follow)
 *   16  8    durable  the log's durable LSN when this record was written
 *                     (always < lsn for user records, <= lsn for log records)
 *   24  2    type     < 16 reserved for the log (see RLG_TYPE_*)
 *   26  2    flags    zero
 *   28  len  payload
 *
 * salt = log id (8 bytes LE) || segment seq (8 bytes LE). CRC32C is the
 * standard (Castagnoli, reflected, init and final xor 0xffffffff), computed
 * with ISA-L's crc32_iscsi. Bytes from another segment or another log never
 * validate, so recycled and preallocated files are safe.
 */
#ifndef RLG_FORMAT_H
#define RLG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/bytes.h"
#include "rlog/log.h"
#include "os/crc32c.h"

#define RLG_MAGIC           "RLOGSEG1"
#define RLG_FORMAT_VERSION  1u
#define RLG_SEG_HEADER_SIZE 64u
#define RLG_REC_HEADER_SIZE 28u

_Static_assert(sizeof RLG_MAGIC - 1 == 8, "docs/format.md: the magic is 8 bytes");
_Static_assert(RLG_SEG_HEADER_SIZE == 64, "docs/format.md: the segment header is 64 bytes");
/* Record header field offsets (docs/format.md, "Records"). */
#define RLG_REC_OFF_CRC     0u
#define RLG_REC_OFF_LEN     4u
#define RLG_REC_OFF_LSN     8u
#define RLG_REC_OFF_DURABLE 16u
#define RLG_REC_OFF_TYPE    24u
#define RLG_REC_OFF_FLAGS   26u
_Static_assert(RLG_REC_OFF_LEN == RLG_REC_OFF_CRC + 4 && RLG_REC_OFF_LSN == RLG_REC_OFF_LEN + 4 &&
                   RLG_REC_OFF_DURABLE == RLG_REC_OFF_LSN + 8 &&
                   RLG_REC_OFF_TYPE == RLG_REC_OFF_DURABLE + 8 &&
                   RLG_REC_OFF_FLAGS == RLG_REC_OFF_TYPE + 2,
               "docs/format.md: crc, len, lsn, durable, type, flags, packed");
_Static_assert(RLG_REC_HEADER_SIZE == RLG_REC_OFF_FLAGS + 2,
               "docs/format.md: the record header is 28 bytes");

/* Reserved record types (all < RLOG_TYPE_USER_MIN). */
#define RLG_TYPE_INVALID    0u /* never valid: an all-zero header is not a record */
#define RLG_TYPE_SEAL       1u /* last record of a sealed segment; empty payload */
#define RLG_TYPE_CHECKPOINT 2u /* written at close: proves all before it durable; empty */

/* Bytes a seal record takes. */
#define RLG_SEAL_SIZE RLG_REC_HEADER_SIZE
/* The smallest unit a torn write keeps or loses whole (a 512-byte sector):
 * a record header inside one such unit is all old or all new, one that
 * straddles two may be half of each. */
#define RLG_TEAR_GRAIN 512u
/* Room the writer keeps at the end of every segment for the seal and a
 * checkpoint. */
#define RLG_TAIL_RESERVE (2 * RLG_REC_HEADER_SIZE)
/* Bytes of records (headers included, sticky copies not counted) that a
 * segment file of seg_size bytes holds. */
#define RLG_SEG_ROOM(seg_size) ((seg_size)-RLG_SEG_HEADER_SIZE - RLG_TAIL_RESERVE)

/* Header flag: the file was recycled (docs/format.md, "Recycled segment
 * files"): past its last record it may hold stale bytes of another
 * segment, so nonzero bytes there that hold no record of this segment are
 * not a torn write. */
#define RLG_SEG_RECYCLED 0x1u
/* Offsets of the header's flags and checksum fields. */
#define RLG_SEG_OFF_FLAGS 40u
#define RLG_SEG_OFF_CRC   60u

typedef struct rlg_seg_header {
    uint32_t version;
    uint64_t log_id;
    uint64_t seq;
    uint64_t first_lsn;
    uint32_t flags; /* RLG_SEG_RECYCLED */
} rlg_seg_header;

typedef struct rlg_rec_header {
    uint32_t crc;
    uint32_t len;
    uint64_t lsn;
    uint64_t durable;
    uint16_t type;
    uint16_t flags;
} rlg_rec_header;

/* The CRC state after the salt of (log_id, seq): start of every record CRC. */
uint32_t rlg_salt_state(uint64_t log_id, uint64_t seq);

/* Encodes a segment header into 64 bytes. */
void rlg_seg_header_encode(const rlg_seg_header *h, uint8_t out[RLG_SEG_HEADER_SIZE]);

typedef enum rlg_hdr_status {
    RLG_HDR_OK = 0,
    RLG_HDR_ZERO,    /* all 64 bytes zero: never written */
    RLG_HDR_BAD,     /* checksum or magic fails */
    RLG_HDR_VERSION, /* checksum fine, unknown version */
} rlg_hdr_status;
/* Decodes and checks 64 header bytes. */
rlg_hdr_status rlg_seg_header_decode(const uint8_t in[RLG_SEG_HEADER_SIZE], rlg_seg_header *h);

/* The first offset below n where two segment files' first n bytes differ
 * (n when none), not counting the header's flags field and checksum: a
 * leader's recycled segment and a follower's copy hold the same segment
 * with different flags. */
size_t rlg_seg_diff(const uint8_t *a, const uint8_t *b, size_t n);

/* Encodes a record header + payload at out (RLG_REC_HEADER_SIZE + len
 * bytes), computing the CRC from the segment's salt state. */
void rlg_rec_encode(uint8_t *out, uint32_t salt_state, uint64_t lsn, uint64_t durable,
                    uint16_t type, const void *payload, uint32_t len);
/* The payload length, LSN, witness and type fields of the record header at
 * p (no validation; for walking records already validated). */
static inline uint32_t rlg_rec_len_at(const uint8_t *p)
{
    return rlg_get32(p + RLG_REC_OFF_LEN);
}
static inline uint64_t rlg_rec_lsn_at(const uint8_t *p)
{
    return rlg_get64(p + RLG_REC_OFF_LSN);
}
static inline uint64_t rlg_rec_durable_at(const uint8_t *p)
{
    return rlg_get64(p + RLG_REC_OFF_DURABLE);
}
static inline uint16_t rlg_rec_type_at(const uint8_t *p)
{
    return rlg_get16(p + RLG_REC_OFF_TYPE);
}
/* Decodes the fixed header fields (no validation). */
void rlg_rec_header_decode(const uint8_t in[RLG_REC_HEADER_SIZE], rlg_rec_header *h);
/* True when the 28+h->len bytes at rec carry a valid CRC under salt. */
bool rlg_rec_crc_ok(const uint8_t *rec, uint32_t salt_state, uint32_t len);

/* Why a position does not hold the record expected there. The one verdict
 * of docs/format.md, "A valid record", used by recovery, readers and the
 * replica (each adds only what is its own: EOF, zeros, 4 GiB limits). */
typedef enum rlg_rec_why {
    RLG_REC_OK = 0,
    RLG_REC_EOF,     /* not even a record header fits before end of file */
    RLG_REC_ZERO,    /* zero bytes */
    RLG_REC_FLAGS,   /* nonzero flags */
    RLG_REC_TYPE,    /* a type that is never valid */
    RLG_REC_LEN,     /* length past the room, or nonzero for a log record */
    RLG_REC_LSN,     /* not the LSN expected here */
    RLG_REC_WITNESS, /* durable witness not below (user) / above (log) its LSN */
    RLG_REC_CRC,     /* checksum mismatch */
    RLG_REC_FAR,     /* a record starting beyond 4 GiB cannot be indexed */
} rlg_rec_why;

/* The first two field checks of rlg_rec_fields, on the flags and type
 * fields alone: flags zero, and a user type or a seal or checkpoint. Read
 * straight from header bytes by a scan that tries every offset, to pass
 * over positions quickly that rlg_rec_fields would refuse anyway. */
static inline rlg_rec_why rlg_rec_kind(uint16_t type, uint16_t flags)
{
    if (flags)
        return RLG_REC_FLAGS;
    if (type < RLOG_TYPE_USER_MIN && type != RLG_TYPE_SEAL && type != RLG_TYPE_CHECKPOINT)
        return RLG_REC_TYPE;
    return RLG_REC_OK;
}
static inline rlg_rec_why rlg_rec_kind_at(const uint8_t *p)
{
    return rlg_rec_kind(rlg_rec_type_at(p), rlg_get16(p + RLG_REC_OFF_FLAGS));
}

/* The field checks of a decoded record header (no CRC). `room`: bytes
 * available after the header. exact: the record that must come next (user
 * LSN e, log record LSN e-1); else any plausible record (user LSN >= e, log
 * record LSN >= e-1). */
rlg_rec_why rlg_rec_fields(const rlg_rec_header *h, uint64_t room, uint64_t e, bool exact);
/* Decodes the record at rec (avail bytes there) into *h and checks it
 * fully: fields (rlg_rec_fields, exact) and CRC under salt_state. */
rlg_rec_why rlg_rec_check(const uint8_t *rec, size_t avail, uint32_t salt_state, uint64_t e,
                          rlg_rec_header *h);
/* The checksummed record at *off in the segment bytes seg[0..len): true,
 * with *h decoded and *off advanced past it, when its header and payload
 * fit before len and its CRC validates under salt_state; false (nothing
 * changed) otherwise. No field or LSN checks: it walks the records a file
 * holds as laid out, for readers that check segment bytes independently of
 * recovery (the simulator's oracles); recovery's verdict is rlg_rec_check. */
bool rlg_seg_next(const uint8_t *seg, size_t len, uint32_t salt_state, uint64_t *off,
                  rlg_rec_header *h);
/* A sentence for why (with h's fields), for error messages. */
void rlg_rec_why_str(rlg_rec_why why, const rlg_rec_header *h, char *buf, size_t cap);

/*
 * The replica's run marker, file RLG_RUN_MARKER (docs/format.md, "The run
 * marker"). A replica writes it, and fdatasyncs it, before it writes a
 * batch of records in one go with one fdatasync; it says that in segment
 * `seq`, the records at offsets >= from_off (the first expecting LSN
 * from_lsn) may be unsynced, so their durability witnesses (which describe
 * the LEADER's disk) prove nothing at or after from_lsn.
 *   off size field
 *   0   8    magic "RLOGRUN1"
 *   8   4    version (1)
 *   12  4    size of the marker (52)
 *   16  8    log id
 *   24  8    segment sequence number
 *   32  8    from_off: first unproven offset (0: the header too)
 *   40  8    from_lsn: the user LSN expected at from_off
 *   48  4    CRC32C of bytes 0..47
 */
#define RLG_RUN_MARKER      "rlog.replica-run"
#define RLG_RUN_MAGIC       "RLOGRUN1"
#define RLG_RUN_FORMAT      1u
#define RLG_RUN_MARKER_SIZE 52u
_Static_assert(RLG_RUN_MARKER_SIZE == 8 + 4 + 4 + 8 + 8 + 8 + 8 + 4,
               "docs/format.md: the run marker's fields");

typedef struct rlg_run_mark {
    uint64_t log_id;
    uint64_t seq;
    uint64_t from_off;
    uint64_t from_lsn;
} rlg_run_mark;

typedef enum rlg_run_status {
    RLG_RUN_OK = 0,
    RLG_RUN_BAD,           /* short, torn, wrong magic or checksum: ignored */
    RLG_RUN_OTHER_VERSION, /* magic, size and checksum fine, unknown version */
} rlg_run_status;

void rlg_run_mark_encode(const rlg_run_mark *m, uint8_t out[RLG_RUN_MARKER_SIZE]);
/* Decodes len bytes read from the marker file. */
rlg_run_status rlg_run_mark_decode(const uint8_t *in, size_t len, rlg_run_mark *m);

/* "%016llx.seg"; parses a name back (false when it is not a segment name). */
void rlg_seg_name(uint64_t seq, char *buf, size_t cap);
bool rlg_seg_parse_name(const char *name, uint64_t *seq);
/* Whether name has a segment name's form, sequence 0 included (the CLI
 * lists such a file as a segment to report it); *seq gets the number. */
bool rlg_seg_name_form(const char *name, uint64_t *seq);

#endif /* RLG_FORMAT_H */
