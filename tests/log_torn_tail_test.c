/* A torn last record, at every byte offset. N records are appended and
 * synced one by one, then one more; the process crashes; the last record
 * is then overwritten with garbage or zeros from each byte offset to its
 * end. Every time the open succeeds with a torn tail (or a clean one when
 * only zeros remain), keeps exactly the N records before it, never reports
 * corruption, cuts the damage so that the log goes on and the next open is
 * clean. The file *truncated* at each offset instead (something outside
 * rlog cut a pre-written segment short) is damage: the open fails naming
 * LSN N+1 as lost; a repair keeps the N records, the segment is pre-written
 * to full size again and the log goes on. */
#include "util/testutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log/format.h"
#include "log/handle.h"
#include "rlog/log.h"

#define T        100
#define SEG      8192u
#define LEN      100 /* payload of the N acknowledged records */
#define REC      (RLG_REC_HEADER_SIZE + LEN)
#define PER_SEG  (RLG_SEG_ROOM(SEG) / REC)
#define N        (PER_SEG + 20) /* the last record goes to segment 2 */
#define LAST_LEN 300
#define LAST_REC (RLG_REC_HEADER_SIZE + LAST_LEN)
/* offset of record N+1 in segment 2 */
#define LAST_OFF (RLG_SEG_HEADER_SIZE + (N - PER_SEG) * REC)
#define SEED     77u

#define SEG1 "0000000000000001.seg"
#define SEG2 "0000000000000002.seg"

enum damage { CUT_FILE, GARBAGE, ZEROS };
static const char *const damage_name[] = {"truncated", "garbage", "zeros"};

typedef struct fx {
    char *base; /* the crashed log */
    char *work; /* a damaged copy */
    void *seg1, *seg2;
    size_t len1, len2;
} fx;

static rlog_log *open_log(const char *dir, unsigned flags, rlog_open_report *rep)
{
    return tu_open_log(dir, NULL, SEG, RLOG_SYNC_EACH, flags, rep);
}

static void append_one(rlog_log *l, uint64_t lsn, uint32_t len)
{
    tu_recs s = {.type = T, .len = len, .seed = SEED};
    tu_append_recs(l, &s, lsn, lsn);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->base = tu_mkdtemp("torn-base");
    f->work = tu_mkdtemp("torn-work");
    rlog_open_report rep;
    rlog_log *l = open_log(f->base, RLOG_OPEN_CREATE, &rep);
    for (uint64_t lsn = 1; lsn <= N; lsn++)
        append_one(l, lsn, LEN);
    append_one(l, N + 1, LAST_LEN);
    rlg_log_crash(l);
    tu_read_file(tu_path(f->base, SEG1), &f->seg1, &f->len1);
    tu_read_file(tu_path(f->base, SEG2), &f->seg2, &f->len2);
    /* the arithmetic above matches the file: record N+1 is where we think */
    rlg_rec_header h;
    assert_true(f->len2 >= LAST_OFF + LAST_REC);
    rlg_rec_header_decode((const uint8_t *)f->seg2 + LAST_OFF, &h);
    assert_int_equal(h.lsn, N + 1);
    assert_int_equal(h.len, LAST_LEN);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmdir_r(f->base);
    tu_rmdir_r(f->work);
    free(f->base);
    free(f->work);
    free(f->seg1);
    free(f->seg2);
    free(f);
    return 0;
}

/* Writes the damaged copy of the log into f->work; *zero tells whether the
 * bytes from the last record's offset on are all zero. Returns false when
 * the damage would change nothing (zeros over bytes already zero). */
static bool make_copy(fx *f, enum damage d, size_t o, bool *zero)
{
    tu_rmdir_r(f->work);
    assert_int_equal(mkdir(f->work, 0755), 0);
    tu_write_file(tu_path(f->work, SEG1), f->seg1, f->len1);
    uint8_t *s2 = malloc(f->len2);
    memcpy(s2, f->seg2, f->len2);
    size_t len = f->len2, at = LAST_OFF + o;
    if (d == CUT_FILE)
        len = at;
    else if (d == GARBAGE)
        tu_fill(1000 + o, 1, s2 + at, LAST_REC - o);
    else
        memset(s2 + at, 0, LAST_REC - o);
    const uint8_t *orig = f->seg2;
    bool changed = len < f->len2;
    for (size_t i = at; i < LAST_OFF + LAST_REC && d == GARBAGE; i++)
        if (s2[i] == orig[i])
            s2[i] = (uint8_t)~s2[i]; /* garbage always differs */
    for (size_t i = at; i < LAST_OFF + LAST_REC && !changed; i++)
        changed = s2[i] != orig[i];
    tu_write_file(tu_path(f->work, SEG2), s2, len);
    *zero = true;
    for (size_t i = LAST_OFF; i < len && *zero; i++)
        *zero = s2[i] == 0;
    free(s2);
    return changed;
}

/* Records 1..N are intact and the next is EEND. */
static void check_prefix(rlog_log *l)
{
    tu_recs s = {.type = T, .len = LEN, .seed = SEED};
    tu_check_recs(l, &s, 1, N);
}

static void one_case(fx *f, enum damage d, size_t o)
{
    bool zero;
    if (!make_copy(f, d, o, &zero))
        return; /* zeros over zeros: the record is intact */
    rlog_open_report rep;
    rlog_options opt;
    rlog_options_init(&opt);
    opt.segment_size = SEG;
    rlog_log *l = NULL;
    int rv;
    if (d == CUT_FILE) {
        rv = rlog_open(f->work, &opt, &l, &rep);
        if (rv != RLOG_ECORRUPT || !strstr(rep.message, "cut short") ||
            rep.lsn_cut_first != N + 1 || strcmp(rep.segment_name, SEG2) != 0)
            fail_msg("truncated from byte %zu: %s: %s", o, rlog_errname(rv), rep.message);
        assert_int_equal(tu_file_size(tu_path(f->work, SEG2)), LAST_OFF + o); /* unchanged */
        opt.flags = RLOG_OPEN_REPAIR;
    }
    rv = rlog_open(f->work, &opt, &l, &rep);
    if (rv)
        fail_msg("%s from byte %zu of the last record: open: %s: %s", damage_name[d], o,
                 rlog_errname(rv), rep.message);
    rlog_tail_status want = d == CUT_FILE ? RLOG_TAIL_CORRUPT
                            : zero        ? RLOG_TAIL_CLEAN
                                          : RLOG_TAIL_TORN;
    if (rep.status != want)
        fail_msg("%s from byte %zu: status %d, expected %d: %s", damage_name[d], o, (int)rep.status,
                 (int)want, rep.message);
    if (d == CUT_FILE) /* pre-written to full size again */
        assert_int_equal(tu_file_size(tu_path(f->work, SEG2)), SEG);
    if (!zero && d != CUT_FILE) {
        assert_string_equal(rep.segment_name, SEG2);
        assert_int_equal(rep.offset, LAST_OFF);
        assert_int_equal(rep.records_cut, 0); /* the torn record is no record */
        assert_true(rep.bytes_cut > 0 && rep.bytes_cut <= LAST_REC);
    }
    if (rep.last_lsn != N)
        fail_msg("%s from byte %zu: last LSN %llu, expected %d", damage_name[d], o,
                 (unsigned long long)rep.last_lsn, N);
    assert_int_equal(rep.first_lsn, 1);
    check_prefix(l);
    append_one(l, N + 1, LEN); /* the log goes on after the cut */
    assert_int_equal(rlog_close(l), 0);
    l = open_log(f->work, RLOG_OPEN_READONLY, &rep);
    if (rep.status != RLOG_TAIL_CLEAN)
        fail_msg("%s from byte %zu: open after the cut: %s", damage_name[d], o, rep.message);
    assert_int_equal(rep.last_lsn, N + 1);
    assert_int_equal(rlog_close(l), 0);
}

/* The file ends inside the last record, at each byte of it: damage. */
static void test_truncated_at_every_offset(void **state)
{
    for (size_t o = 0; o < LAST_REC; o++)
        one_case(*state, CUT_FILE, o);
}

/* Garbage from each byte of the last record to its end. */
static void test_garbage_from_every_offset(void **state)
{
    for (size_t o = 0; o < LAST_REC; o++)
        one_case(*state, GARBAGE, o);
}

/* Zeros from each byte of the last record to its end (unwritten sectors). */
static void test_zeros_from_every_offset(void **state)
{
    for (size_t o = 0; o < LAST_REC; o++)
        one_case(*state, ZEROS, o);
}

/* The undamaged crashed log: clean, all N+1 records (the sanity case). */
static void test_undamaged(void **state)
{
    fx *f = *state;
    rlog_open_report rep;
    rlog_log *l = open_log(f->base, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, N + 1);
    assert_int_equal(rlog_close(l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_garbage_from_every_offset),
        cmocka_unit_test(test_zeros_from_every_offset),
        cmocka_unit_test(test_undamaged),
    };
    return TU_RUN("log_torn_tail", tests, setup, teardown);
}
