/* The log's basic contract: LSNs, round trips across rotations and reopen,
 * readers (get, iterators, replay), positions, prefix deletion, sticky
 * records, input validation, the directory lock. */
#include "util/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "rlog/log.h"

#define T 100 /* user type used by these tests */

typedef tu_dir_fx fx;

static rlog_log *open_log(const char *dir, uint64_t seg, rlog_sync_mode mode, unsigned flags,
                          rlog_open_report *rep)
{
    return tu_open_log(dir, NULL, seg, mode, RLOG_OPEN_CREATE | flags, rep);
}

/* Payload length, a function of the LSN. */
static uint32_t len_of(uint64_t lsn)
{
    return (uint32_t)((lsn * 37) % 700);
}

/* Appends n records from LSN `from` (payload a function of LSN and seed). */
static void append_n(rlog_log *l, uint64_t from, uint64_t n, uint64_t seed)
{
    tu_recs s = {.type = T, .len_of = len_of, .seed = seed};
    tu_append_recs(l, &s, from, from + n - 1);
}

static void check_all(rlog_log *l, uint64_t from, uint64_t to, uint64_t seed)
{
    tu_recs s = {.type = T, .len_of = len_of, .seed = seed};
    tu_check_recs(l, &s, from, to);
}

/* Records come back byte for byte with gap-free LSNs across many rotations
 * and a reopen, and appends continue after the last record. */
static void test_round_trip_rotation_reopen(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 8192, RLOG_SYNC_EACH, 0, NULL);
    append_n(l, 1, 300, 7);
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_true(m.rotations >= 10);
    check_all(l, 1, 300, 7);
    assert_int_equal(rlog_close(l), 0);

    rlog_open_report rep;
    l = open_log(f->dir, 8192, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.first_lsn, 1);
    assert_int_equal(rep.last_lsn, 300);
    assert_int_equal(rep.proven_durable, 300); /* the close checkpoint proves all */
    check_all(l, 1, 300, 7);
    append_n(l, 301, 50, 7);
    check_all(l, 1, 350, 7);
    assert_int_equal(rlog_close(l), 0);
    l = open_log(f->dir, 8192, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &rep);
    check_all(l, 1, 350, 7);
    assert_int_equal(rlog_close(l), 0);
}

/* A batch gets consecutive LSNs; positions report appended/written/durable. */
static void test_batch_and_positions(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 1 << 20, RLOG_SYNC_NONE, 0, NULL);
    uint8_t buf[64];
    rlog_record r[10];
    for (int i = 0; i < 10; i++) {
        tu_fill(1, (uint64_t)i + 1, buf, sizeof buf);
        r[i] = (rlog_record){.type = T, .len = (uint32_t)len_of((uint64_t)i + 1), .data = NULL};
    }
    /* payloads: one buffer per record */
    uint8_t bufs[10][1024];
    for (int i = 0; i < 10; i++) {
        tu_fill(3, (uint64_t)i + 1, bufs[i], r[i].len);
        r[i].data = bufs[i];
    }
    uint64_t first = 0;
    assert_int_equal(rlog_append(l, r, 10, &first), 0);
    assert_int_equal(first, 1);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.appended, 10);
    assert_int_equal(p.written, 10);
    assert_int_equal(p.durable, 0); /* no sync mode: not durable yet */
    check_all(l, 1, 10, 3);
    /* durable-only readers see nothing yet */
    rlog_iter *it;
    rlog_record rec;
    assert_int_equal(rlog_iter_open(l, 1, RLOG_READ_DURABLE, &it), 0);
    assert_int_equal(rlog_iter_next(it, &rec), RLOG_EEND);
    assert_int_equal(rlog_sync(l), 0);
    rlog_positions_get(l, &p);
    assert_int_equal(p.durable, 10);
    assert_int_equal(rlog_iter_next(it, &rec), 0);
    assert_int_equal(rec.lsn, 1);
    rlog_iter_close(it);
    assert_int_equal(rlog_close(l), 0);
}

/* rlog_get returns each record; unknown LSNs are RLOG_ENOTFOUND. */
static void test_get(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 8192, RLOG_SYNC_GROUP, 0, NULL);
    append_n(l, 1, 100, 9);
    uint8_t want[1024];
    for (uint64_t lsn = 1; lsn <= 100; lsn++) {
        rlog_record r;
        void *p;
        assert_int_equal(rlog_get(l, lsn, 0, &r, &p), 0);
        assert_int_equal(r.len, len_of(lsn));
        tu_fill(9, lsn, want, r.len);
        assert_memory_equal(r.data, want, r.len);
        rlog_free(p);
    }
    rlog_record r;
    void *p;
    assert_int_equal(rlog_get(l, 0, 0, &r, &p), RLOG_ENOTFOUND);
    assert_int_equal(rlog_get(l, 101, 0, &r, &p), RLOG_ENOTFOUND);
    assert_int_equal(rlog_close(l), 0);
}

static int count_cb(void *data, const rlog_record *r)
{
    uint64_t *n = data;
    (*n)++;
    return r->lsn == 77 ? 5 : 0;
}

/* Replay stops at the record and byte limits and says where to go on. */
static void test_replay_pages(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 65536, RLOG_SYNC_EACH, 0, NULL);
    append_n(l, 1, 100, 1);
    uint64_t n = 0, next = 0;
    assert_int_equal(rlog_replay(l, 1, 10, 0, 0, count_cb, &n, &next), 0);
    assert_int_equal(n, 10);
    assert_int_equal(next, 11);
    n = 0;
    /* byte limit: stops once the limit is reached */
    assert_int_equal(rlog_replay(l, 11, 0, 1000, 0, count_cb, &n, &next), 0);
    size_t bytes = 0, k = 0;
    while (bytes < 1000)
        bytes += len_of(11 + k++);
    assert_int_equal(n, k);
    assert_int_equal(next, 11 + k);
    /* callback's non-zero return stops and is returned */
    n = 0;
    assert_int_equal(rlog_replay(l, 70, 0, 0, 0, count_cb, &n, &next), 5);
    assert_int_equal(n, 8);
    assert_int_equal(rlog_close(l), 0);
}

/* Prefix deletion removes whole sealed segments below the LSN, never the
 * active one; readers then get RLOG_ENOTFOUND below the new first LSN; the
 * log reopens from the new first segment. */
static void test_delete_prefix(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 8192, RLOG_SYNC_EACH, 0, NULL);
    append_n(l, 1, 300, 2);
    char **names;
    size_t before = tu_list_segments(f->dir, &names);
    tu_free_names(names, before);
    uint64_t deleted = 0;
    assert_int_equal(rlog_delete_prefix(l, 150, &deleted), 0);
    assert_true(deleted >= 3);
    size_t after = tu_list_segments(f->dir, &names);
    tu_free_names(names, after);
    assert_int_equal(after, before - deleted);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_true(p.first > 1 && p.first <= 150);
    rlog_record r;
    void *pl;
    assert_int_equal(rlog_get(l, 1, 0, &r, &pl), RLOG_ENOTFOUND);
    check_all(l, p.first, 300, 2);
    /* deleting everything keeps the active segment */
    assert_int_equal(rlog_delete_prefix(l, 1000, &deleted), 0);
    rlog_positions_get(l, &p);
    assert_true(p.first <= 300);
    uint64_t first = p.first;
    assert_int_equal(rlog_close(l), 0);
    rlog_open_report rep;
    l = open_log(f->dir, 8192, RLOG_SYNC_EACH, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.first_lsn, first);
    check_all(l, first, 300, 2);
    assert_int_equal(rlog_close(l), 0);
}

static uint32_t sticky_seen;
static int sticky_cb(void *data, const rlog_record *r)
{
    (void)data;
    if (r->type == T + 1)
        sticky_seen++;
    return 0;
}

/* A sticky record is repeated at the head of every later segment, so it
 * survives the deletion of the segment it was first written in. A call
 * never straddles segments: one that does not fit starts the next segment
 * (its records keep consecutive LSNs, after the sticky copy), and one that
 * cannot fit in any segment is refused and changes nothing. */
static void test_sticky_survives_prefix_deletion(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 8192, RLOG_SYNC_EACH, 0, NULL);
    const char hs[] = "hard-state-v1";
    rlog_record s = {.type = T + 1, .sticky = 1, .len = sizeof hs, .data = hs};
    assert_int_equal(rlog_append(l, &s, 1, NULL), 0);
    /* batches of ~5 KiB into 8 KiB segments: each must start a segment */
    uint8_t buf[600];
    memset(buf, 0xab, sizeof buf);
    rlog_record b[20];
    for (int i = 0; i < 20; i++)
        b[i] = (rlog_record){.type = T, .len = sizeof buf, .data = buf};
    rlog_positions before;
    rlog_positions_get(l, &before);
    assert_int_equal(rlog_append(l, b, 20, NULL), RLOG_ETOOBIG); /* 12.5 KiB */
    rlog_positions after;
    rlog_positions_get(l, &after);
    assert_int_equal(after.appended, before.appended);
    for (int k = 0; k < 5; k++) {
        uint64_t first = 0;
        assert_int_equal(rlog_append(l, b, 8, &first), 0);
        for (int i = 0; i < 8; i++) {
            rlog_record r;
            void *p;
            assert_int_equal(rlog_get(l, first + (uint64_t)i, 0, &r, &p), 0);
            assert_int_equal(r.type, T); /* no sticky copy inside the call */
            rlog_free(p);
        }
    }
    uint64_t deleted = 0;
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(rlog_delete_prefix(l, p.appended, &deleted), 0);
    assert_true(deleted > 0);
    assert_int_equal(rlog_close(l), 0);
    l = open_log(f->dir, 8192, RLOG_SYNC_EACH, 0, NULL);
    sticky_seen = 0;
    assert_int_equal(rlog_replay(l, 1, 0, 0, 0, sticky_cb, NULL, NULL), 0);
    assert_true(sticky_seen >= 1);
    assert_int_equal(rlog_close(l), 0);
}

/* Reserved types and oversize records are refused and change nothing. */
static void test_input_errors(void **state)
{
    fx *f = *state;
    rlog_options o;
    rlog_options_init(&o);
    o.flags = RLOG_OPEN_CREATE;
    o.segment_size = 65536;
    o.max_record = 1000;
    rlog_log *l;
    assert_int_equal(rlog_open(f->dir, &o, &l, NULL), 0);
    uint8_t buf[2000] = {0};
    rlog_record r = {.type = 3, .len = 10, .data = buf};
    assert_int_equal(rlog_append(l, &r, 1, NULL), RLOG_ERESERVED);
    assert_non_null(strstr(rlog_errmsg(l), "reserved"));
    r.type = T;
    r.len = 1001;
    assert_int_equal(rlog_append(l, &r, 1, NULL), RLOG_ETOOBIG);
    rlog_record two[2] = {{.type = T, .len = 5, .data = buf}, {.type = 2, .len = 5, .data = buf}};
    assert_int_equal(rlog_append(l, two, 2, NULL), RLOG_ERESERVED);
    assert_int_equal(rlog_append(l, NULL, 0, NULL), RLOG_EINVAL);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.appended, 0);
    r.len = 1000;
    uint64_t lsn = 0;
    assert_int_equal(rlog_append(l, &r, 1, &lsn), 0);
    assert_int_equal(lsn, 1); /* nothing was consumed by the refusals */
    assert_int_equal(rlog_close(l), 0);
}

/* A second writer on the same directory is refused with RLOG_EBUSY; a
 * directory without a log is RLOG_ENOTLOG unless asked to create. */
static void test_lock_and_notlog(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, 65536, RLOG_SYNC_EACH, 0, NULL);
    rlog_log *l2 = NULL;
    rlog_options o;
    rlog_options_init(&o);
    rlog_open_report rep;
    assert_int_equal(rlog_open(f->dir, &o, &l2, &rep), RLOG_EBUSY);
    assert_non_null(strstr(rep.message, "locked"));
    assert_int_equal(rlog_close(l), 0);
    assert_int_equal(rlog_open(f->dir, &o, &l2, &rep), 0);
    assert_int_equal(rlog_close(l2), 0);
    char *empty = tu_mkdtemp("notlog");
    assert_int_equal(rlog_open(empty, &o, &l2, &rep), RLOG_ENOTLOG);
    char **names;
    assert_int_equal(tu_list_segments(empty, &names), 0); /* nothing created */
    tu_free_names(names, 0);
    tu_rmdir_r(empty);
    free(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_rotation_reopen),
        cmocka_unit_test(test_batch_and_positions),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_replay_pages),
        cmocka_unit_test(test_delete_prefix),
        cmocka_unit_test(test_sticky_survives_prefix_deletion),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_lock_and_notlog),
    };
    return TU_RUN("log_basic", tests, tu_dir_setup, tu_dir_teardown);
}
