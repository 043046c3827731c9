/* The Raft record codec and the compact index:
 *  - every record type round-trips; every shorter or longer payload, and
 *    every single-byte change of the length fields, decodes to an error or
 *    to a record that stays within the payload (hostile input; run under
 *    ASan to catch any read outside it);
 *  - the index agrees with a plain per-entry array under random appends,
 *    truncations and prefix drops (terms, batch LSNs, counts). */
#include "util/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "raft_storage/codec.h"
#include "raft_storage/index.h"

static void test_roundtrip(void **state)
{
    (void)state;
    rlg_rec r;
    char why[200];
    uint8_t hs[RLG_RS_HS_SIZE];
    rlog_rs_hard_state h = {7, 3, 99};
    rlg_hs_encode(&h, hs);
    assert_int_equal(rlg_rec_decode(RLOG_RS_TYPE_HARD_STATE, hs, sizeof hs, &r, why, sizeof why),
                     0);
    assert_int_equal(r.u.hs.term, 7);
    assert_int_equal(r.u.hs.vote, 3);
    assert_int_equal(r.u.hs.commit, 99);

    rlog_rs_entry e[3] = {{4, 1, 3, "abc", NULL}, {4, 2, 0, NULL, NULL}, {5, 3, 2, "xy", NULL}};
    size_t n = rlg_batch_size(e, 3);
    assert_int_equal(n, RLG_RS_BATCH_HDR + 3 * RLG_RS_ENTRY_HDR + 5);
    uint8_t *b = malloc(n);
    rlg_batch_encode(10, e, 3, b);
    assert_int_equal(rlg_rec_decode(RLOG_RS_TYPE_ENTRIES, b, n, &r, why, sizeof why), 0);
    assert_int_equal(r.u.batch.first_index, 10);
    assert_int_equal(r.u.batch.count, 3);
    rlog_rs_entry got;
    rlg_batch_entry(&r.u.batch, 2, &got);
    assert_int_equal(got.term, 5);
    assert_int_equal(got.type, 3);
    assert_int_equal(got.len, 2);
    assert_memory_equal(got.data, "xy", 2);
    free(b);

    rlg_snap_view v = {.index = 50,
                       .term = 4,
                       .conf_index = 49,
                       .size = 1000,
                       .crc = 0xabcd,
                       .trailing = 8,
                       .name_len = 6,
                       .flags = RLG_SNAP_REPLACE,
                       .conf_len = 3,
                       .name = "s.snap",
                       .conf = (const uint8_t *)"cfg"};
    n = rlg_snap_size(6, 3);
    b = malloc(n);
    rlg_snap_encode(&v, b);
    assert_int_equal(rlg_rec_decode(RLOG_RS_TYPE_SNAPSHOT, b, n, &r, why, sizeof why), 0);
    assert_int_equal(r.u.snap.index, 50);
    assert_int_equal(r.u.snap.trailing, 8);
    assert_int_equal(r.u.snap.flags, RLG_SNAP_REPLACE);
    assert_memory_equal(r.u.snap.name, "s.snap", 6);
    assert_memory_equal(r.u.snap.conf, "cfg", 3);
    free(b);
}

/* Decodes every prefix and an over-long copy of buf; all but the full
 * length must fail. Each try uses an exact-size heap copy so that ASan sees
 * any read beyond it. */
static void all_lengths_fail(uint16_t type, const uint8_t *buf, size_t n)
{
    rlg_rec r;
    char why[200];
    for (size_t len = 0; len <= n + 1; len++) {
        uint8_t *c = malloc(len ? len : 1);
        memcpy(c, buf, len < n ? len : n);
        if (len > n)
            c[n] = 0;
        int rv = rlg_rec_decode(type, c, len, &r, why, sizeof why);
        if (len == n)
            assert_int_equal(rv, 0);
        else if (rv != RLOG_ECORRUPT)
            fail_msg("type %u: %zu of %zu bytes decoded", (unsigned)type, len, n);
        free(c);
    }
}

static void test_hostile_lengths(void **state)
{
    (void)state;
    uint8_t hs[RLG_RS_HS_SIZE] = {1};
    all_lengths_fail(RLOG_RS_TYPE_HARD_STATE, hs, sizeof hs);
    uint8_t tr[RLG_RS_TRUNC_SIZE] = {5};
    all_lengths_fail(RLOG_RS_TYPE_TRUNCATE, tr, sizeof tr);
    rlog_rs_entry e[2] = {{1, 0, 4, "abcd", NULL}, {1, 0, 1, "z", NULL}};
    uint8_t b[128];
    size_t n = rlg_batch_size(e, 2);
    rlg_batch_encode(3, e, 2, b);
    all_lengths_fail(RLOG_RS_TYPE_ENTRIES, b, n);
    rlg_snap_view v = {.index = 5,
                       .term = 1,
                       .name_len = 3,
                       .conf_len = 2,
                       .name = "a.b",
                       .conf = (const uint8_t *)"cc"};
    uint8_t s[128];
    size_t sn = rlg_snap_size(3, 2);
    rlg_snap_encode(&v, s);
    all_lengths_fail(RLOG_RS_TYPE_SNAPSHOT, s, sn);
}

/* Every byte of a batch and a marker set to every value: the decoder
 * either fails or yields views inside the payload whose lengths add up. */
static void test_hostile_bytes(void **state)
{
    (void)state;
    rlog_rs_entry e[3] = {{1, 0, 4, "abcd", NULL}, {2, 0, 1, "z", NULL}, {2, 0, 0, NULL, NULL}};
    size_t n = rlg_batch_size(e, 3);
    uint8_t *orig = malloc(n);
    rlg_batch_encode(3, e, 3, orig);
    unsigned ok = 0;
    for (size_t i = 0; i < n; i++) {
        for (unsigned val = 0; val < 256; val += 17) {
            uint8_t *c = malloc(n);
            memcpy(c, orig, n);
            c[i] = (uint8_t)val;
            rlg_rec r;
            char why[200];
            if (rlg_rec_decode(RLOG_RS_TYPE_ENTRIES, c, n, &r, why, sizeof why) == 0) {
                size_t total = 0;
                for (uint32_t k = 0; k < r.u.batch.count; k++) {
                    rlog_rs_entry g;
                    rlg_batch_entry(&r.u.batch, k, &g);
                    total += g.len;
                    if (g.len)
                        assert_true((const uint8_t *)g.data + g.len <= c + n);
                }
                assert_int_equal(total + RLG_RS_BATCH_HDR + r.u.batch.count * RLG_RS_ENTRY_HDR, n);
                ok++;
            }
            free(c);
        }
    }
    assert_true(ok > 0);
    free(orig);
    /* a marker naming a path outside the directory is rejected */
    rlg_snap_view v = {.index = 5, .term = 1, .name_len = 5, .name = "../x1"};
    uint8_t s[64];
    rlg_snap_encode(&v, s);
    rlg_rec r;
    char why[200];
    assert_int_equal(
        rlg_rec_decode(RLOG_RS_TYPE_SNAPSHOT, s, rlg_snap_size(5, 0), &r, why, sizeof why),
        RLOG_ECORRUPT);
    assert_false(rlg_snap_name_ok("..", 2));
    assert_false(rlg_snap_name_ok("a/b", 3));
    assert_true(rlg_snap_name_ok("snapshot-1.snap", 15));
}

/* ---------------------------------------------------------------- index */

#define MAXE 20000

typedef struct naive {
    uint64_t first, last;
    uint64_t term[MAXE], lsn[MAXE];
} naive;

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void check_index(const rlg_index *ix, const naive *nv)
{
    assert_int_equal(ix->first, nv->first);
    assert_int_equal(ix->last, nv->last);
    assert_int_equal(rlg_index_term(ix, nv->first - 1), 0);
    assert_int_equal(rlg_index_term(ix, nv->last + 1), 0);
    for (uint64_t i = nv->first; i <= nv->last; i++) {
        assert_int_equal(rlg_index_term(ix, i), nv->term[i]);
        rlg_bpos p;
        rlg_index_locate(ix, i, &p);
        assert_int_equal(p.lsn, nv->lsn[i]);
        assert_true(p.index <= i && i < p.index + p.count);
    }
}

static void test_index_vs_naive(void **state)
{
    (void)state;
    static naive nv;
    rlg_index ix;
    uint64_t seed = 99, lsn = 1, term = 1;
    rlg_index_init(&ix, 1);
    nv.first = 1;
    nv.last = 0;
    uint8_t buf[RLG_RS_BATCH_HDR + 64 * RLG_RS_ENTRY_HDR];
    for (int op = 0; op < 3000; op++) {
        unsigned k = (unsigned)(rnd(&seed) % 10);
        if (k < 7 && nv.last + 70 < MAXE) {
            rlog_rs_entry e[64];
            size_t n = 1 + rnd(&seed) % (rnd(&seed) % 2 ? 3 : 64);
            for (size_t j = 0; j < n; j++) {
                if (rnd(&seed) % 20 == 0)
                    term++;
                e[j] = (rlog_rs_entry){term, 0, 0, NULL, NULL};
            }
            rlg_batch_encode(nv.last + 1, e, n, buf);
            rlg_rec r;
            assert_int_equal(
                rlg_rec_decode(RLOG_RS_TYPE_ENTRIES, buf, rlg_batch_size(e, n), &r, NULL, 0), 0);
            lsn += 1 + rnd(&seed) % 3;
            assert_int_equal(rlg_index_add(&ix, &r.u.batch, lsn), 0);
            for (size_t j = 0; j < n; j++) {
                nv.term[nv.last + 1 + j] = e[j].term;
                nv.lsn[nv.last + 1 + j] = lsn;
            }
            nv.last += n;
        } else if (k < 9 && nv.last >= nv.first) {
            uint64_t i = nv.first + rnd(&seed) % (nv.last - nv.first + 2);
            rlg_index_truncate(&ix, i);
            nv.last = i - 1;
        } else if (nv.last > nv.first) {
            uint64_t nf = nv.first + 1 + rnd(&seed) % (nv.last - nv.first + 5);
            rlg_index_drop_prefix(&ix, nf);
            if (nf > nv.last)
                nv.last = nf - 1;
            nv.first = nf;
        }
        if (op % 50 == 0 || op > 2950)
            check_index(&ix, &nv);
    }
    check_index(&ix, &nv);
    rlg_index_free(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_hostile_lengths),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_index_vs_naive),
    };
    return TU_RUN("raft_codec", tests, NULL, NULL);
}
