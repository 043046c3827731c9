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

#define RLG_MAGIC           "RLOGSEG1"
#define RLG_FORMAT_VERSION  1u
#define RLG_SEG_HEADER_SIZE 64u
#define RLG_REC_HEADER_SIZE 28u

/* Reserved record types (all < RLOG_TYPE_USER_MIN). */
#define RLG_TYPE_INVALID    0u /* never valid: an all-zero header is not a record */
#define RLG_TYPE_SEAL       1u /* last record of a sealed segment; empty payload */
#define RLG_TYPE_CHECKPOINT 2u /* written at close: proves all before it durable; empty */

/* Bytes a seal record takes. */
#define RLG_SEAL_SIZE RLG_REC_HEADER_SIZE

/* Header flag: the file was recycled (docs/format.md, "Recycled segment
 * files"): past its last record it may hold stale bytes of another
 * segment, so nonzero bytes there that hold no record of this segment are
 * not a torn write. */
#define RLG_SEG_RECYCLED 0x1u

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

/* Standard CRC32C of buf. */
uint32_t rlg_crc32c(const void *buf, size_t len);
/* Raw CRC state helpers (no final inversion): state' = update(state, buf). */
uint32_t rlg_crc32c_update(uint32_t state, const void *buf, size_t len);
/* The CRC state after the salt of (log_id, seq): start of every record CRC. */
uint32_t rlg_salt_state(uint64_t log_id, uint64_t seq);

static inline void rlg_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void rlg_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rlg_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t rlg_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t rlg_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t rlg_get64(const uint8_t *p)
{
    return (uint64_t)rlg_get32(p) | ((uint64_t)rlg_get32(p + 4) << 32);
}

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
/* Decodes the fixed header fields (no validation). */
void rlg_rec_header_decode(const uint8_t in[RLG_REC_HEADER_SIZE], rlg_rec_header *h);
/* True when the 28+h->len bytes at rec carry a valid CRC under salt. */
bool rlg_rec_crc_ok(const uint8_t *rec, uint32_t salt_state, uint32_t len);

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

#endif /* RLG_FORMAT_H */
