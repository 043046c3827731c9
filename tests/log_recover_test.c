/*
 * Recovery (log/recover.c) on segment files built by hand with the codec:
 * every test writes a directory the way the writer (or a crash, or bit rot)
 * would leave it and checks what rlg_recover decides.
 */
#include "util/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "log/recover.h"
#include "rlog/vfs.h"

#define SEG_SIZE  8192u
#define LOG_ID    0x1234abcd5678ef01ull
#define OTHER_ID  0x0badc0ffee0ddf00ull
#define TYPE_USER 16u
#define MAX_RECS  64

/* ---- a test-local segment builder ---- */

typedef struct sb {
    uint8_t *buf;
    size_t size, off;
    uint64_t log_id, seq, first, next;
    uint32_t salt;
    uint64_t offs[MAX_RECS]; /* offs[i]: offset of record first + i */
    size_t n;
    uint64_t seal_off;
} sb;

/* A segment of `size` bytes (zero filled) with a valid header. */
static void sb_init(sb *b, uint64_t log_id, uint64_t seq, uint64_t first, size_t size)
{
    memset(b, 0, sizeof *b);
    b->buf = calloc(1, size);
    assert_non_null(b->buf);
    b->size = size;
    b->log_id = log_id;
    b->seq = seq;
    b->first = b->next = first;
    b->salt = rlg_salt_state(log_id, seq);
    rlg_seg_header h = {
        .version = RLG_FORMAT_VERSION, .log_id = log_id, .seq = seq, .first_lsn = first};
    rlg_seg_header_encode(&h, b->buf);
    b->off = RLG_SEG_HEADER_SIZE;
}

/* Appends the next user record, written when `durable` was durable. */
static uint64_t sb_rec(sb *b, uint64_t durable, uint32_t len)
{
    assert_true(b->off + RLG_REC_HEADER_SIZE + len <= b->size && b->n < MAX_RECS);
    uint8_t *payload = malloc(len ? len : 1);
    assert_non_null(payload);
    tu_fill(7, b->next, payload, len);
    uint64_t at = b->off;
    rlg_rec_encode(b->buf + at, b->salt, b->next, durable, TYPE_USER, payload, len);
    free(payload);
    b->offs[b->n++] = at;
    b->next++;
    b->off += RLG_REC_HEADER_SIZE + len;
    return at;
}

/* n records of len bytes, each synced before the next (witness lsn-1). */
static void sb_synced(sb *b, size_t n, uint32_t len)
{
    for (size_t i = 0; i < n; i++)
        sb_rec(b, b->next - 1, len);
}

/* A seal or checkpoint record (LSN = the last record's). */
static uint64_t sb_log(sb *b, uint16_t type, uint64_t durable)
{
    uint64_t at = b->off;
    rlg_rec_encode(b->buf + at, b->salt, b->next - 1, durable, type, NULL, 0);
    b->off += RLG_REC_HEADER_SIZE;
    if (type == RLG_TYPE_SEAL)
        b->seal_off = at;
    return at;
}

static uint64_t sb_seal(sb *b)
{
    return sb_log(b, RLG_TYPE_SEAL, b->next - 1);
}

static const char *seg_path(const char *dir, uint64_t seq)
{
    char name[32];
    rlg_seg_name(seq, name, sizeof name);
    return tu_path(dir, name);
}

static void sb_write(const sb *b, const char *dir)
{
    tu_write_file(seg_path(dir, b->seq), b->buf, b->size);
}

static void sb_free(sb *b)
{
    free(b->buf);
    b->buf = NULL;
}

/* A spare as the writer prepares it: all zeros. */
static void write_zero_file(const char *dir, uint64_t seq, size_t size)
{
    uint8_t *z = calloc(1, size ? size : 1);
    assert_non_null(z);
    tu_write_file(seg_path(dir, seq), z, size);
    free(z);
}

static int recover(const char *dir, bool repair, rlg_recovery *r, rlog_open_report *rep)
{
    return rlg_recover(rlog_vfs_posix(), dir, repair ? RLG_RECOVER_REPAIR : 0, r, rep);
}

/* The recovered segment matches the builder: LSNs, offsets of `keep`
 * records. */
static void check_seg(const rlg_segment *s, const sb *b, size_t keep)
{
    assert_int_equal(s->seq, b->seq);
    assert_int_equal(s->first_lsn, b->first);
    assert_int_equal(s->last_lsn, b->first + keep - 1);
    assert_int_equal(s->noffs, keep);
    for (size_t i = 0; i < keep; i++)
        assert_int_equal(s->offs[i], b->offs[i]);
}

static void assert_contains(const char *s, const char *part)
{
    if (!strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* Each test's fixture: a scratch directory and up to three segment
 * builders, all freed by the teardown. */
typedef struct rfx {
    char *dir;
    sb s[3];
} rfx;

static int rfx_setup(void **state)
{
    rfx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp("recover");
    *state = f;
    return 0;
}

static int rfx_teardown(void **state)
{
    rfx *f = *state;
    for (size_t i = 0; i < sizeof f->s / sizeof f->s[0]; i++)
        sb_free(&f->s[i]);
    tu_rmdir_r(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Segments 1..3 (or 1..2 when c is NULL) of `len`-byte records synced one by
 * one, `na`, `nb`, `nc` of them, every segment but the last sealed; all
 * written to dir. */
static void sb_chain(const char *dir, uint32_t len, sb *a, size_t na, sb *b, size_t nb, sb *c,
                     size_t nc)
{
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, na, len);
    sb_seal(a);
    sb_init(b, LOG_ID, 2, a->next, SEG_SIZE);
    sb_synced(b, nb, len);
    if (c) {
        sb_seal(b);
        sb_init(c, LOG_ID, 3, b->next, SEG_SIZE);
        sb_synced(c, nc, len);
    }
    sb_write(a, dir);
    sb_write(b, dir);
    if (c)
        sb_write(c, dir);
}

/* A sealed segment 1 of n 8-byte records and an empty segment 2 of log
 * `log_id` starting at LSN `first`, written to dir: a valid successor only
 * when log_id is LOG_ID and first is n + 1. */
static void sealed_then_empty(const char *dir, sb *a, size_t n, sb *b, uint64_t log_id,
                              uint64_t first)
{
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, n, 8);
    sb_seal(a);
    sb_init(b, log_id, 2, first, SEG_SIZE);
    sb_write(a, dir);
    sb_write(b, dir);
}

/* ---- clean logs ---- */

/* Three segments (two sealed, one with a checkpoint) and a spare: every
 * record is indexed at its offset, nothing is cut. */
static void test_clean_multi_segment(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1], *c = &fx->s[2];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 10, 50);
    sb_seal(a);
    sb_init(b, LOG_ID, 2, 11, SEG_SIZE);
    sb_synced(b, 7, 0);
    sb_log(b, RLG_TYPE_CHECKPOINT, 17);
    sb_synced(b, 8, 100);
    sb_seal(b);
    sb_init(c, LOG_ID, 3, 26, SEG_SIZE);
    sb_synced(c, 5, 10);
    sb_write(a, dir);
    sb_write(b, dir);
    sb_write(c, dir);
    write_zero_file(dir, 4, SEG_SIZE);
    tu_write_file(tu_path(dir, "README"), "not a segment", 13);

    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(r.log_id, LOG_ID);
    assert_int_equal(r.nsegs, 3);
    check_seg(&r.segs[0], a, 10);
    check_seg(&r.segs[1], b, 15);
    check_seg(&r.segs[2], c, 5);
    assert_true(r.segs[0].sealed && r.segs[1].sealed && !r.segs[2].sealed);
    assert_int_equal(r.segs[0].end, a->off);
    assert_int_equal(r.segs[1].end, b->off);
    assert_int_equal(r.segs[2].end, c->off);
    assert_int_equal(r.nspares, 1);
    assert_int_equal(r.spares[0], 4);
    assert_false(r.cut);
    assert_int_equal(r.delete_from_seq, 0);
    assert_int_equal(r.proven_durable, 29);
    assert_int_equal(rep.segments, 3);
    assert_int_equal(rep.records, 10 + 1 + 7 + 1 + 8 + 1 + 5);
    assert_int_equal(rep.first_lsn, 1);
    assert_int_equal(rep.last_lsn, 30);
    assert_contains(rep.message, "clean");
    assert_contains(rep.message, "1..30");
    rlg_recovery_free(&r);
}

/* A freshly created log (header only) is clean and empty. */
static void test_clean_empty_log(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_write(a, dir);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(r.nsegs, 1);
    assert_int_equal(r.segs[0].end, RLG_SEG_HEADER_SIZE);
    assert_int_equal(r.segs[0].last_lsn, 0);
    assert_int_equal(rep.first_lsn, 1);
    assert_int_equal(rep.last_lsn, 0);
    rlg_recovery_free(&r);
}

/* ---- torn tails ---- */

/* The last record torn at every byte (its bytes written up to there, zeros
 * after, or garbage from there on): a torn tail cut at that record, never
 * corruption, and every earlier record kept. The same file *truncated*
 * there (shorter than it was pre-written) was cut from outside: damage
 * naming the LSN from which records are lost. */
static void test_torn_tail_every_offset(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 4, 30);
    uint64_t o = sb_rec(a, 3, 40), end = a->off;
    write_zero_file(dir, 2, SEG_SIZE);
    for (uint64_t t = o; t < end; t++) {
        for (int garbage = 0; garbage < 2; garbage++) {
            uint8_t *copy = malloc(a->size);
            assert_non_null(copy);
            memcpy(copy, a->buf, a->size);
            for (uint64_t i = t; i < end; i++)
                copy[i] = garbage ? copy[i] ^ 0xa5 : 0;
            tu_write_file(seg_path(dir, 1), copy, t);
            rlg_recovery r;
            rlog_open_report rep;
            int rc = recover(dir, false, &r, &rep);
            if (rc != RLOG_ECORRUPT || !strstr(rep.message, "cut short") ||
                rep.lsn_cut_first != 5 || rep.offset != o)
                fail_msg("t=%llu truncated: %s: %s", (unsigned long long)t, rlog_errname(rc),
                         rep.message);
            tu_write_file(seg_path(dir, 1), copy, a->size);
            free(copy);
            rc = recover(dir, false, &r, &rep);
            if (rc)
                fail_msg("t=%llu garbage=%d: %s", (unsigned long long)t, garbage, rep.message);
            check_seg(&r.segs[0], a, 4);
            assert_int_equal(r.segs[0].end, o);
            assert_int_equal(r.proven_durable, 3);
            assert_int_equal(rep.records_cut, 0);
            if (!garbage && t == o) { /* the record was never written */
                assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
                assert_false(r.cut);
            } else {
                assert_int_equal(rep.status, RLOG_TAIL_TORN);
                assert_true(r.cut);
                assert_int_equal(r.cut_seq, 1);
                assert_int_equal(r.cut_off, o);
                assert_true(r.cut_end > o && r.cut_end <= (garbage ? end : t));
                assert_int_equal(rep.offset, o);
                assert_int_equal(rep.bytes_cut, r.cut_end - o);
            }
            assert_int_equal(r.nspares, 1);
            rlg_recovery_free(&r);
        }
    }
}

/* A torn write whose tear falls inside the next record's header: the
 * sector before the boundary kept old bytes (part of the length), the one
 * after took the new LSN, witness and type. The file is full size, like
 * the spare after it, so a length past its end is a torn record, not a cut
 * from outside; the same header in a file shorter than the spare is a cut
 * (soak seed 40056738 reported corruption after an ordinary power loss). */
static void test_torn_header_across_sectors(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 3, 20);
    /* pad so that the next header starts 7 bytes before a sector boundary */
    uint64_t want = RLG_TEAR_GRAIN * 2 - 7;
    uint64_t pad = want - a->off - RLG_REC_HEADER_SIZE;
    sb_rec(a, 3, (uint32_t)pad);
    uint64_t o = sb_rec(a, 4, 600);
    assert_int_equal(o, want);
    /* old bytes before the boundary: crc and the low three length bytes */
    memset(a->buf + o, 0xd3, 7);
    sb_write(a, dir);
    write_zero_file(dir, 2, SEG_SIZE);
    rlg_recovery r;
    rlog_open_report rep;
    int rc = recover(dir, false, &r, &rep);
    if (rc)
        fail_msg("full-size file: %s: %s", rlog_errname(rc), rep.message);
    assert_int_equal(rep.status, RLOG_TAIL_TORN);
    check_seg(&r.segs[0], a, 4);
    assert_int_equal(r.cut_off, o);
    rlg_recovery_free(&r);
    /* the same bytes in a file cut short at the end of that header */
    tu_write_file(seg_path(dir, 1), a->buf, o + RLG_REC_HEADER_SIZE + 8);
    rc = recover(dir, false, &r, &rep);
    assert_int_equal(rc, RLOG_ECORRUPT);
    assert_contains(rep.message, "cut short");
    assert_int_equal(rep.lsn_cut_first, 5);
}

/* A hole (record 4 never reached the disk) followed by record 5 that was
 * written before 4 was durable: torn, and record 5 is reported cut. */
static void test_hole_with_low_witness_is_torn(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 3, 20);
    uint64_t o4 = sb_rec(a, 3, 20);
    sb_rec(a, 3, 20);
    memset(a->buf + o4, 0, RLG_REC_HEADER_SIZE + 20);
    sb_write(a, dir);
    write_zero_file(dir, 2, SEG_SIZE);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_TORN);
    check_seg(&r.segs[0], a, 3);
    assert_true(r.cut);
    assert_int_equal(r.cut_off, o4);
    assert_int_equal(r.cut_end, a->off);
    assert_int_equal(rep.records_cut, 1);
    assert_int_equal(rep.lsn_cut_first, 5);
    assert_int_equal(rep.lsn_cut_last, 5);
    assert_contains(rep.message, "LSN 5..5");
    rlg_recovery_free(&r);
}

/* The same hole, but record 5 was written once 4 was durable: record 4 was
 * acknowledged and is gone — corruption naming the offset and LSN. */
static void test_hole_proven_durable_is_corrupt(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 3, 20);
    uint64_t o4 = sb_rec(a, 3, 20);
    uint64_t o5 = sb_rec(a, 4, 20);
    memset(a->buf + o4, 0, RLG_REC_HEADER_SIZE + 20);
    sb_write(a, dir);
    write_zero_file(dir, 2, SEG_SIZE);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(rep.segment_seq, 1);
    assert_int_equal(rep.offset, o4);
    assert_null(r.segs);
    char want[128];
    snprintf(want, sizeof want, "0000000000000001.seg at offset %llu", (unsigned long long)o4);
    assert_contains(rep.message, want);
    assert_contains(rep.message, "record LSN 4 is damaged");
    snprintf(want, sizeof want, "LSN 5 at offset %llu", (unsigned long long)o5);
    assert_contains(rep.message, want);
}

/* The same hole, but what lies where record 4 was is dense nonzero garbage
 * (the stale bytes of a recycled file look like this): the scan for
 * candidates tries every offset in it and still finds record 5 right where
 * the garbage ends — also when record 5's header straddles the end of the
 * scan's 1 MiB read window, or starts right at it. */
static void test_candidate_after_dense_garbage(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    const uint32_t lens[] = {RLG_REC_HEADER_SIZE + 20, 4999, (1u << 20) - 10, 1u << 20,
                             (1u << 20) - RLG_REC_HEADER_SIZE};
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        sb *a = &fx->s[0];
        sb_init(a, LOG_ID, 1, 1, 2u << 20);
        sb_synced(a, 3, 20);
        uint64_t o4 = sb_rec(a, 3, lens[t] - RLG_REC_HEADER_SIZE);
        uint64_t o5 = sb_rec(a, 4, 20);
        assert_int_equal(o5 - o4, lens[t]);
        uint64_t x = 0x9e3779b97f4a7c15u + t;
        for (uint64_t i = o4; i < o5; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            a->buf[i] = (uint8_t)(x | 1u); /* never zero */
        }
        sb_write(a, dir);
        rlg_recovery r;
        rlog_open_report rep;
        assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
        assert_int_equal(rep.offset, o4);
        char want[128];
        snprintf(want, sizeof want, "LSN 5 at offset %llu", (unsigned long long)o5);
        if (!strstr(rep.message, want))
            fail_msg("garbage of %u bytes: %s", lens[t], rep.message);
        sb_free(a);
    }
}

/* A seal's witness proves what was durable when the seal was written,
 * like any record's: the last segment, sealed, its successor a zero spare
 * (a rotation whose new segment never got its header), proves its last
 * record durable through the seal alone. Recovery once ignored the seal's
 * witness, and an open after a failed sync rewrote that acknowledged
 * record in place, where a power loss tore it (simulator seed 50500948,
 * an acknowledged Raft snapshot marker lost). */
static void test_seal_witness_counts(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 4, 20); /* record 4's witness: 3 */
    sb_seal(a);          /* witness 4 */
    sb_write(a, dir);
    write_zero_file(dir, 2, SEG_SIZE);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(r.nsegs, 1);
    assert_true(r.segs[0].sealed);
    assert_int_equal(r.witnessed, 4);
    assert_int_equal(rep.proven_durable, 4);
    rlg_recovery_free(&r);
}

/* ---- corruption ---- */

/* A flipped bit in a sealed segment is corruption even when no witness
 * proves the record durable. */
static void test_flip_in_sealed_segment(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    for (int i = 0; i < 5; i++)
        sb_rec(a, 0, 32);
    sb_seal(a);
    sb_init(b, LOG_ID, 2, 6, SEG_SIZE);
    sb_synced(b, 2, 32);
    sb_write(a, dir);
    sb_write(b, dir);
    write_zero_file(dir, 3, SEG_SIZE);
    tu_flip_bit(seg_path(dir, 1), a->offs[2] + RLG_REC_HEADER_SIZE + 5, 3);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(rep.segment_seq, 1);
    assert_int_equal(rep.offset, a->offs[2]);
    assert_contains(rep.message, "sealed segment, expected LSN 3");
    /* and a seal that is lost: the sealed segment ends in zeros */
    memset(a->buf + a->seal_off, 0, RLG_SEAL_SIZE);
    sb_write(a, dir);
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.offset, a->seal_off);
    assert_contains(rep.message, "zero bytes");
}

/* In a log synced after every append, a flipped bit in the middle of the
 * active segment is proven durable by the next record: corruption. */
static void test_flip_in_synced_active_segment(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 10, 40);
    sb_write(a, dir);
    write_zero_file(dir, 2, SEG_SIZE);
    tu_flip_bit(seg_path(dir, 1), a->offs[4] + 10, 0);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.offset, a->offs[4]);
    assert_contains(rep.message, "record LSN 5 is damaged");
}

/* Damage to the last record: torn when nothing proves it durable; corrupt
 * when a checkpoint written after it does. */
static void test_checkpoint_proves_last_record(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    for (int i = 0; i < 5; i++)
        sb_rec(a, 0, 24);
    sb_write(a, dir);
    tu_flip_bit(seg_path(dir, 1), a->offs[4] + 30, 1);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_TORN);
    assert_int_equal(r.cut_off, a->offs[4]);
    rlg_recovery_free(&r);

    sb_log(a, RLG_TYPE_CHECKPOINT, 0); /* its LSN proves, not its witness */
    sb_write(a, dir);
    tu_flip_bit(seg_path(dir, 1), a->offs[4] + 30, 1);
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.offset, a->offs[4]);
    assert_contains(rep.message, "checkpoint");
}

/* Records of another segment or another log in a spare never validate: the
 * spare is clean (after an active segment) and nothing is lost (after a
 * sealed one). */
static void test_stale_records_in_spare(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *stale = &fx->s[1];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 3, 16);
    sb_write(a, dir);
    /* a spare holding what would be the next records, but salted for seq 7,
     * then for another log's seq 2; its header zero */
    sb_init(stale, LOG_ID, 7, 4, SEG_SIZE);
    sb_rec(stale, 3, 16);
    sb_rec(stale, 4, 16);
    stale->salt = rlg_salt_state(OTHER_ID, 2);
    sb_rec(stale, 5, 16);
    memset(stale->buf, 0, RLG_SEG_HEADER_SIZE);
    stale->seq = 2;
    sb_write(stale, dir);
    write_zero_file(dir, 3, SEG_SIZE);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_false(r.cut);
    assert_int_equal(rep.last_lsn, 3);
    assert_int_equal(r.nspares, 2);
    assert_int_equal(r.spares[0], 2);
    assert_int_equal(r.spares[1], 3);
    rlg_recovery_free(&r);

    /* after a sealed segment: a torn start at worst, never corruption */
    sb_seal(a);
    sb_write(a, dir);
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_not_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(rep.last_lsn, 3);
    assert_int_equal(rep.records_cut, 0);
    assert_true(r.segs[0].sealed);
    assert_int_equal(r.spares[0], 2);
    rlg_recovery_free(&r);
}

/* Valid records in the spare after an unsealed segment: they can only have
 * been written after a seal that is gone. */
static void test_records_after_unsealed_segment(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 3, 16);
    sb_init(b, LOG_ID, 2, 4, SEG_SIZE);
    sb_synced(b, 2, 16);
    memset(b->buf, 0, RLG_SEG_HEADER_SIZE);
    sb_write(a, dir);
    sb_write(b, dir);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.segment_seq, 2);
    assert_contains(rep.message, "no seal");
}

static void test_missing_middle_segment(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1], *c = &fx->s[2];
    sb_chain(dir, 8, a, 2, b, 2, c, 2);
    tu_remove(seg_path(dir, 2));
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_contains(rep.message, "0000000000000002.seg is missing");
}

static void test_lsn_gap_between_segments(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    sealed_then_empty(dir, a, 5, b, LOG_ID, 7);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.segment_seq, 2);
    assert_contains(rep.message, "LSN gap");
}

/* A segment of another log: EFOREIGN naming both ids, even with repair. */
static void test_foreign_segment(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    sealed_then_empty(dir, a, 2, b, OTHER_ID, 3);
    for (int repair = 0; repair < 2; repair++) {
        rlg_recovery r;
        rlog_open_report rep;
        assert_int_equal(recover(dir, repair, &r, &rep), RLOG_EFOREIGN);
        assert_contains(rep.message, "0000000000000002.seg");
        assert_contains(rep.message, "0badc0ffee0ddf00");
        assert_contains(rep.message, "1234abcd5678ef01");
    }
}

static void test_version_2_header(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    rlg_seg_header h = {.version = 2, .log_id = LOG_ID, .seq = 1, .first_lsn = 1};
    rlg_seg_header_encode(&h, a->buf);
    sb_write(a, dir);
    for (int repair = 0; repair < 2; repair++) {
        rlg_recovery r;
        rlog_open_report rep;
        assert_int_equal(recover(dir, repair, &r, &rep), RLOG_EVERSION);
        assert_contains(rep.message, "version 2");
    }
}

static void test_sealed_without_successor(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 4, 8);
    sb_seal(a);
    sb_write(a, dir);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_contains(rep.message, "successor 0000000000000002.seg is missing");
    /* repair drops the seal: the segment becomes the active one again */
    assert_int_equal(recover(dir, true, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(r.nsegs, 1);
    check_seg(&r.segs[0], a, 4);
    assert_false(r.segs[0].sealed);
    assert_int_equal(r.segs[0].end, a->seal_off);
    assert_true(r.cut);
    assert_int_equal(r.cut_off, a->seal_off);
    assert_int_equal(r.cut_end, a->seal_off + RLG_SEAL_SIZE);
    assert_int_equal(rep.records_cut, 0);
    assert_int_equal(rep.records, 4);
    rlg_recovery_free(&r);
}

/* ---- segment starts ---- */

/* A sealed segment 1, then segment 2 whose header is torn (garbage) and
 * whose records were written before anything in it was durable. */
static void torn_start_dir(const char *dir, uint64_t witness7, sb *a, sb *b)
{
    sb_init(a, LOG_ID, 1, 1, SEG_SIZE);
    sb_synced(a, 5, 12);
    sb_seal(a);
    sb_init(b, LOG_ID, 2, 6, SEG_SIZE);
    sb_rec(b, 5, 12);
    sb_rec(b, witness7, 12);
    tu_fill(99, 0, b->buf, RLG_SEG_HEADER_SIZE);
    sb_write(a, dir);
    sb_write(b, dir);
}

static void test_torn_segment_start(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    torn_start_dir(dir, 5, a, b);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_TORN);
    assert_int_equal(r.nsegs, 1);
    check_seg(&r.segs[0], a, 5);
    assert_true(r.segs[0].sealed);
    assert_true(r.cut);
    assert_int_equal(r.cut_seq, 2);
    assert_int_equal(r.cut_off, 0);
    assert_int_equal(r.cut_end, b->off);
    assert_int_equal(rep.records_cut, 2);
    assert_int_equal(rep.lsn_cut_first, 6);
    assert_int_equal(rep.lsn_cut_last, 7);
    assert_int_equal(r.nspares, 1);
    assert_int_equal(r.spares[0], 2);
    rlg_recovery_free(&r);
}

/* The same, but record 7 was written once 6 was durable: the header was
 * durable too, and is damaged. */
static void test_damaged_header_proven_durable(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    torn_start_dir(dir, 6, a, b);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.segment_seq, 2);
    assert_contains(rep.message, "header is damaged");
}

/* ---- not a log ---- */

static void test_not_a_log(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ENOTLOG);
    assert_contains(rep.message, dir);
    tu_write_file(tu_path(dir, "notes.txt"), "hello", 5);
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ENOTLOG);
    const char *gone = tu_path(dir, "no-such-dir");
    assert_int_equal(recover(gone, false, &r, &rep), RLOG_ENOTLOG);
    assert_contains(rep.message, "does not exist");
    assert_contains(rep.message, gone);
}

/* Segment files with no valid header whose only nonzero bytes lie in the
 * header area (a creation interrupted before the header was synced: zero or
 * torn) are not a log; a nonzero byte past the header is corruption, since
 * records are only written after the first header is durable. */
static void test_zero_files_only(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    write_zero_file(dir, 1, SEG_SIZE);
    write_zero_file(dir, 2, 10);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ENOTLOG);
    assert_contains(rep.message, "interrupted");
    tu_poke(seg_path(dir, 2), 3, "x", 1); /* torn header bytes */
    tu_poke(seg_path(dir, 1), 40, "RLOG", 4);
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ENOTLOG);
    tu_poke(seg_path(dir, 1), RLG_SEG_HEADER_SIZE, "x", 1); /* past the header */
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
}

/* ---- repair ---- */

/* Damage in a sealed middle segment: repair keeps what precedes it, cuts
 * there, drops the later segments and says what was lost. */
static void test_repair_cuts_at_first_damage(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1], *c = &fx->s[2];
    sb_chain(dir, 20, a, 5, b, 5, c, 2);
    write_zero_file(dir, 4, SEG_SIZE);
    tu_flip_bit(seg_path(dir, 2), b->offs[2] + 40, 6); /* LSN 8 */
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(recover(dir, true, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(r.nsegs, 2);
    check_seg(&r.segs[0], a, 5);
    check_seg(&r.segs[1], b, 2);
    assert_true(r.segs[0].sealed);
    assert_false(r.segs[1].sealed);
    assert_int_equal(r.segs[1].end, b->offs[2]);
    assert_true(r.cut);
    assert_int_equal(r.cut_seq, 2);
    assert_int_equal(r.cut_off, b->offs[2]);
    assert_int_equal(r.cut_end, b->off);
    assert_int_equal(r.delete_from_seq, 3);
    assert_int_equal(r.nspares, 0);
    assert_int_equal(rep.last_lsn, 7);
    assert_int_equal(rep.records_cut, 4); /* 9, 10, 11, 12 */
    assert_int_equal(rep.lsn_cut_first, 9);
    assert_int_equal(rep.lsn_cut_last, 12);
    assert_int_equal(rep.segment_seq, 2);
    assert_int_equal(rep.offset, b->offs[2]);
    assert_contains(rep.message, "repaired");
    assert_contains(rep.message, "0000000000000003.seg on are deleted");
    assert_int_equal(rep.drop_from_seq, 3);
    rlg_recovery_free(&r);
    /* read-only: the same decision, told as what a repair would do */
    assert_int_equal(
        rlg_recover(rlog_vfs_posix(), dir, RLG_RECOVER_REPAIR | RLG_RECOVER_READONLY, &r, &rep), 0);
    assert_contains(rep.message, "a repair would end the log at LSN 7");
    assert_contains(rep.message, "0000000000000003.seg on would be deleted");
    assert_null(strstr(rep.message, "are deleted"));
    assert_null(strstr(rep.message, "repaired"));
    rlg_recovery_free(&r);
}

/* A damaged header in the middle: corruption; repair ends the log at the
 * previous segment's seal (which it drops) and deletes the rest. */
static void test_repair_damaged_middle_header(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1], *c = &fx->s[2];
    sb_chain(dir, 20, a, 3, b, 3, c, 1);
    tu_flip_bit(seg_path(dir, 2), 20, 0);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.segment_seq, 2);
    assert_contains(rep.message, "damaged segment header");
    assert_int_equal(recover(dir, true, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CORRUPT);
    assert_int_equal(r.nsegs, 1);
    check_seg(&r.segs[0], a, 3);
    assert_false(r.segs[0].sealed);
    assert_int_equal(r.cut_seq, 1);
    assert_int_equal(r.cut_off, a->seal_off);
    assert_int_equal(r.delete_from_seq, 2);
    assert_int_equal(rep.records_cut, 4); /* 4..6 of segment 2 and 7 */
    assert_int_equal(rep.lsn_cut_first, 4);
    assert_int_equal(rep.lsn_cut_last, 7);
    rlg_recovery_free(&r);
}

/* ---- reports, large records ---- */

/* The one-line message names the segment file, the offset and the LSNs. */
static void test_report_names_segment_and_offset(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1], *c = &fx->s[2];
    sb_chain(dir, 8, a, 3, b, 3, c, 3);
    uint64_t o = sb_rec(c, 9, 8);
    c->buf[o + 3] ^= 0x10;
    sb_write(c, dir);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_TORN);
    assert_string_equal(rep.segment_name, "0000000000000003.seg");
    assert_int_equal(rep.segment_seq, 3);
    assert_int_equal(rep.offset, o);
    char want[128];
    snprintf(want, sizeof want, "torn tail in 0000000000000003.seg at offset %llu after LSN 9",
             (unsigned long long)o);
    assert_contains(rep.message, want);
    rlg_recovery_free(&r);
}

/* Records larger than the read buffer are checked piecewise. */
static void test_large_records(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    const uint32_t big = 3u << 20;
    sb *a = &fx->s[0];
    sb_init(a, LOG_ID, 1, 1, (size_t)big * 2 + 4096);
    sb_synced(a, 1, 100);
    uint64_t o2 = sb_rec(a, 1, big);
    sb_rec(a, 1, big);
    sb_write(a, dir);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    check_seg(&r.segs[0], a, 3);
    rlg_recovery_free(&r);
    /* record 2 damaged in its last byte; record 3 does not prove it */
    tu_flip_bit(seg_path(dir, 1), o2 + RLG_REC_HEADER_SIZE + big - 1, 0);
    assert_int_equal(recover(dir, false, &r, &rep), 0);
    assert_int_equal(rep.status, RLOG_TAIL_TORN);
    assert_int_equal(r.cut_off, o2);
    assert_int_equal(rep.records_cut, 1);
    assert_int_equal(rep.lsn_cut_first, 3);
    rlg_recovery_free(&r);
    /* now record 3 was written once 2 was durable */
    a->off = a->offs[2];
    a->next = 3;
    a->n = 2;
    sb_rec(a, 2, big);
    a->buf[o2 + RLG_REC_HEADER_SIZE + big - 1] ^= 1;
    sb_write(a, dir);
    assert_int_equal(recover(dir, false, &r, &rep), RLOG_ECORRUPT);
    assert_int_equal(rep.offset, o2);
}

/* A failing read is an I/O error naming the call, the file and the offset,
 * not a verdict on the log. */
static void test_read_error_names_call_and_file(void **state)
{
    rfx *fx = *state;
    const char *dir = fx->dir;
    sb *a = &fx->s[0], *b = &fx->s[1];
    sb_chain(dir, 8, a, 2, b, 2, NULL, 0);
    rlog_vfs *vfs = rlog_vfs_fault_new(rlog_vfs_posix());
    assert_non_null(vfs);
    rlog_fault f = {
        .op = RLOG_OP_PREAD, .skip = 1, .err = EIO, .path_contains = "0000000000000002.seg"};
    assert_true(rlog_vfs_fault_add(vfs, &f) > 0);
    rlg_recovery r;
    rlog_open_report rep;
    assert_int_equal(rlg_recover(vfs, dir, false, &r, &rep), RLOG_EIO);
    assert_null(r.segs);
    assert_contains(rep.message, "pread");
    assert_contains(rep.message, "0000000000000002.seg at offset");
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_OPEN),
                     rlog_vfs_fault_calls(vfs, RLOG_OP_CLOSE));
    rlog_vfs_fault_clear(vfs);
    assert_int_equal(rlg_recover(vfs, dir, false, &r, &rep), 0);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_PWRITE), 0);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_OPEN),
                     rlog_vfs_fault_calls(vfs, RLOG_OP_CLOSE));
    rlg_recovery_free(&r);
    vfs->destroy(vfs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_multi_segment),
        cmocka_unit_test(test_clean_empty_log),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_torn_header_across_sectors),
        cmocka_unit_test(test_hole_with_low_witness_is_torn),
        cmocka_unit_test(test_hole_proven_durable_is_corrupt),
        cmocka_unit_test(test_candidate_after_dense_garbage),
        cmocka_unit_test(test_seal_witness_counts),
        cmocka_unit_test(test_flip_in_sealed_segment),
        cmocka_unit_test(test_flip_in_synced_active_segment),
        cmocka_unit_test(test_checkpoint_proves_last_record),
        cmocka_unit_test(test_stale_records_in_spare),
        cmocka_unit_test(test_records_after_unsealed_segment),
        cmocka_unit_test(test_missing_middle_segment),
        cmocka_unit_test(test_lsn_gap_between_segments),
        cmocka_unit_test(test_foreign_segment),
        cmocka_unit_test(test_version_2_header),
        cmocka_unit_test(test_sealed_without_successor),
        cmocka_unit_test(test_torn_segment_start),
        cmocka_unit_test(test_damaged_header_proven_durable),
        cmocka_unit_test(test_not_a_log),
        cmocka_unit_test(test_zero_files_only),
        cmocka_unit_test(test_repair_cuts_at_first_damage),
        cmocka_unit_test(test_repair_damaged_middle_header),
        cmocka_unit_test(test_report_names_segment_and_offset),
        cmocka_unit_test(test_large_records),
        cmocka_unit_test(test_read_error_names_call_and_file),
    };
    return TU_RUN("log_recover", tests, rfx_setup, rfx_teardown);
}
