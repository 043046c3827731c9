/* The Raft storage API: hard-state rules, contiguity, truncation and
 * re-append, snapshots (put, get, stale, install, corrupt file, retention,
 * temp cleanup), compaction that deletes segments without losing the hard
 * state, purging covered entries (rlog_rs_purge_before) and its refusals, asynchronous appends,
 * reads with a byte budget, index memory per entry, and that every rejected call changes nothing
 * (also after reopen). */
#include "util/testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_storage/codec.h"
#include "rlog/raft_storage.h"

typedef tu_dir_fx fx;

static rlog_rs *open_store(const char *dir, uint64_t seg, unsigned flags, rlog_sync_mode mode)
{
    return tu_rs_open(dir, seg, RLOG_OPEN_CREATE | flags, mode);
}

static rlog_rs *reopen(rlog_rs *rs, const char *dir, uint64_t seg)
{
    assert_int_equal(rlog_rs_close(rs), 0);
    return open_store(dir, seg, 0, RLOG_SYNC_EACH);
}

/* Appends entries first..first+n-1 of `term`, payload "e<index>". */
static int append_range(rlog_rs *rs, uint64_t first, size_t n, uint64_t term)
{
    rlog_rs_entry e[64];
    char bufs[64][24];
    assert_true(n <= 64);
    for (size_t k = 0; k < n; k++) {
        int len = snprintf(bufs[k], sizeof bufs[k], "e%llu-t%llu", (unsigned long long)(first + k),
                           (unsigned long long)term);
        e[k] = (rlog_rs_entry){term, 1, (uint32_t)len, bufs[k], NULL};
    }
    return rlog_rs_append(rs, first, e, n);
}

static void expect_entry(const rlog_rs_entry *e, uint64_t index, uint64_t term)
{
    char want[24];
    int len = snprintf(want, sizeof want, "e%llu-t%llu", (unsigned long long)index,
                       (unsigned long long)term);
    assert_int_equal(e->term, term);
    assert_int_equal(e->len, len);
    assert_memory_equal(e->data, want, (size_t)len);
}

static void expect_range(rlog_rs *rs, uint64_t first, uint64_t last)
{
    assert_int_equal(rlog_rs_first_index(rs), first);
    assert_int_equal(rlog_rs_last_index(rs), last);
}

/* ---------------------------------------------------------------- hard state */

static void expect_hs(rlog_rs *rs, uint64_t term, uint64_t vote, uint64_t commit)
{
    rlog_rs_hard_state hs;
    rlog_rs_hard_state_get(rs, &hs);
    assert_int_equal(hs.term, term);
    assert_int_equal(hs.vote, vote);
    assert_int_equal(hs.commit, commit);
}

/* Term never goes back, a vote is set once per term, commit never goes
 * back; rejected calls change nothing, on disk either. */
static void test_hard_state_rules(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 0, 0, RLOG_SYNC_EACH);
    expect_hs(rs, 0, 0, 0);
    assert_int_equal(rlog_rs_set_term(rs, 5), 0);
    assert_int_equal(rlog_rs_set_vote(rs, 3), 0);
    assert_int_equal(rlog_rs_set_vote(rs, 3), 0); /* same again: fine */
    assert_int_equal(rlog_rs_set_vote(rs, 4), RLOG_EVOTE);
    assert_int_equal(rlog_rs_set_vote(rs, 0), RLOG_EVOTE);
    assert_int_equal(rlog_rs_set_term(rs, 4), RLOG_ETERM);
    rlog_rs_hard_state hs = {5, 3, 10};
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), 0);
    hs.commit = 9;
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), RLOG_ESTALE);
    assert_non_null(strstr(rlog_rs_errmsg(rs), "commit"));
    expect_hs(rs, 5, 3, 10);
    rs = reopen(rs, f->dir, 0);
    expect_hs(rs, 5, 3, 10);
    assert_int_equal(rlog_rs_set_term(rs, 6), 0); /* new term clears the vote */
    expect_hs(rs, 6, 0, 10);
    assert_int_equal(rlog_rs_set_vote(rs, 2), 0);
    rs = reopen(rs, f->dir, 0);
    expect_hs(rs, 6, 2, 10);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- entries */

static void test_append_contiguity(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 0, 0, RLOG_SYNC_EACH);
    expect_range(rs, 1, 0);
    assert_int_equal(append_range(rs, 2, 3, 1), RLOG_ENONCONTIG);
    assert_int_equal(append_range(rs, 1, 10, 1), 0);
    assert_int_equal(append_range(rs, 12, 1, 1), RLOG_ENONCONTIG);
    assert_int_equal(append_range(rs, 10, 1, 1), RLOG_ENONCONTIG);
    assert_int_equal(append_range(rs, 11, 1, 0), RLOG_ETERM);
    assert_int_equal(append_range(rs, 11, 2, 2), 0);
    assert_int_equal(append_range(rs, 13, 1, 1), RLOG_ETERM); /* term below the last */
    assert_int_equal(rlog_rs_append(rs, 13, NULL, 0), RLOG_EINVAL);
    expect_range(rs, 1, 12);
    assert_int_equal(rlog_rs_term(rs, 10), 1);
    assert_int_equal(rlog_rs_term(rs, 11), 2);
    assert_int_equal(rlog_rs_term(rs, 13), 0);
    rs = reopen(rs, f->dir, 0);
    expect_range(rs, 1, 12);
    rlog_rs_entries e;
    assert_int_equal(rlog_rs_entries_read(rs, 1, 100, 0, &e), 0);
    assert_int_equal(e.n, 12);
    assert_int_equal(e.first, 1);
    for (size_t k = 0; k < e.n; k++)
        expect_entry(&e.v[k], 1 + k, k < 10 ? 1 : 2);
    rlog_rs_entries_free(&e);
    assert_int_equal(rlog_rs_entries_read(rs, 13, 20, 0, &e), RLOG_ENOTFOUND);
    assert_int_equal(e.n, 0);
    rlog_rs_close(rs);
}

/* Truncation is one record; re-append with a new term; the old entries
 * never come back, also after reopen. Bounds: above the snapshot and the
 * commit index, at most last + 1. */
static void test_truncate_reappend(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    for (uint64_t i = 1; i <= 40; i += 8)
        assert_int_equal(append_range(rs, i, 8, 1), 0);
    rlog_positions p0, p1;
    rlog_positions_get(rlog_rs_log(rs), &p0);
    assert_int_equal(rlog_rs_truncate(rs, 13), 0);
    rlog_positions_get(rlog_rs_log(rs), &p1);
    assert_int_equal(p1.appended, p0.appended + 1); /* exactly one record */
    expect_range(rs, 1, 12);
    assert_int_equal(append_range(rs, 13, 5, 2), 0);
    assert_int_equal(rlog_rs_truncate(rs, 19), RLOG_EINVAL); /* beyond last + 1 */
    assert_int_equal(rlog_rs_truncate(rs, 18), 0);           /* last + 1: no entry lost */
    expect_range(rs, 1, 17);
    rlog_rs_hard_state hs = {2, 0, 10};
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), 0);
    assert_int_equal(rlog_rs_truncate(rs, 10), RLOG_ESTALE); /* committed */
    assert_int_equal(rlog_rs_truncate(rs, 0), RLOG_EINVAL);
    rs = reopen(rs, f->dir, 4096);
    expect_range(rs, 1, 17);
    rlog_rs_entries e;
    assert_int_equal(rlog_rs_entries_read(rs, 1, 17, 0, &e), 0);
    assert_int_equal(e.n, 17);
    for (size_t k = 0; k < 17; k++)
        expect_entry(&e.v[k], 1 + k, k < 12 ? 1 : 2);
    rlog_rs_entries_free(&e);
    /* truncate inside a batch, then below the snapshot */
    assert_int_equal(rlog_rs_truncate(rs, 15), 0);
    assert_int_equal(append_range(rs, 15, 3, 3), 0);
    rlog_rs_buf b = {"snap", 4};
    rlog_rs_snapshot_desc d = {14, 2, 14, NULL, 0, &b, 1, 100};
    assert_int_equal(rlog_rs_snapshot_put(rs, &d), 0);
    assert_int_equal(rlog_rs_truncate(rs, 14), RLOG_ESTALE);
    expect_range(rs, 1, 17);
    rs = reopen(rs, f->dir, 4096);
    expect_range(rs, 1, 17);
    assert_int_equal(rlog_rs_term(rs, 14), 2);
    assert_int_equal(rlog_rs_term(rs, 15), 3);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- scan */

typedef struct scan_seen {
    uint64_t next; /* index the next entry must have */
    size_t calls;
    size_t stop_after; /* 0: never stop */
} scan_seen;

static int scan_check(void *data, const rlog_rs_entry *e, size_t n)
{
    scan_seen *s = data;
    assert_true(n > 0);
    for (size_t k = 0; k < n; k++) {
        expect_entry(&e[k], s->next, s->next < 13 ? 1 : 3);
        assert_null(e[k].batch);
        s->next++;
    }
    s->calls++;
    return s->stop_after && s->calls == s->stop_after ? 77 : 0;
}

/* rlog_rs_entries_scan yields exactly the entries lo..hi in index order,
 * one call per batch record (a range starting and ending inside batches,
 * entries cut by a truncation left out), stops with the callback's
 * value, and refuses a range outside the log. */
static void test_scan(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    for (uint64_t i = 1; i <= 40; i += 8)
        assert_int_equal(append_range(rs, i, 8, 1), 0);
    assert_int_equal(rlog_rs_truncate(rs, 13), 0); /* inside the batch 9..16 */
    assert_int_equal(append_range(rs, 13, 4, 3), 0);
    rs = reopen(rs, f->dir, 4096);
    scan_seen s = {.next = 3};
    assert_int_equal(rlog_rs_entries_scan(rs, 3, 14, scan_check, &s), 0);
    assert_int_equal(s.next, 15);
    assert_int_equal(s.calls, 3); /* 1..8, 9..12 (cut), 13..16 */
    s = (scan_seen){.next = 1};
    assert_int_equal(rlog_rs_entries_scan(rs, 1, 1000, scan_check, &s), 0);
    assert_int_equal(s.next, 17);
    s = (scan_seen){.next = 1, .stop_after = 2};
    assert_int_equal(rlog_rs_entries_scan(rs, 1, 16, scan_check, &s), 77);
    assert_int_equal(s.next, 13);
    assert_int_equal(rlog_rs_entries_scan(rs, 17, 20, scan_check, &s), RLOG_ENOTFOUND);
    assert_int_equal(rlog_rs_entries_scan(rs, 0, 20, scan_check, &s), RLOG_ENOTFOUND);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- reads */

static void test_read_budget(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 0, 0, RLOG_SYNC_EACH);
    for (uint64_t i = 1; i <= 100; i += 10)
        assert_int_equal(append_range(rs, i, 10, 1), 0);
    rlog_rs_entries e;
    /* "e1-t1".."e9-t1" are 5 bytes, "e10-t1".. 6 bytes */
    assert_int_equal(rlog_rs_entries_read(rs, 1, 100, 20, &e), 0);
    assert_int_equal(e.n, 4);
    rlog_rs_entries_free(&e);
    assert_int_equal(rlog_rs_entries_read(rs, 50, 100, 1, &e), 0); /* always one */
    assert_int_equal(e.n, 1);
    expect_entry(&e.v[0], 50, 1);
    rlog_rs_entries_free(&e);
    assert_int_equal(rlog_rs_entries_read(rs, 15, 34, 0, &e), 0);
    assert_int_equal(e.n, 20);
    for (size_t k = 0; k < e.n; k++)
        expect_entry(&e.v[k], 15 + k, 1);
    rlog_rs_entries_free(&e);
    assert_int_equal(rlog_rs_entries_read(rs, 0, 10, 0, &e), RLOG_ENOTFOUND);
    assert_int_equal(rlog_rs_entries_read(rs, 101, 101, 0, &e), RLOG_ENOTFOUND);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- snapshots */

static size_t count_files(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, needle))
            n++;
    closedir(d);
    return n;
}

static int put(rlog_rs *rs, uint64_t index, uint64_t term, unsigned trailing, const char *data)
{
    rlog_rs_buf b[2] = {{data, strlen(data) / 2},
                        {data + strlen(data) / 2, strlen(data) - strlen(data) / 2}};
    rlog_rs_snapshot_desc d = {index, term, index - 1, "cfg", 3, b, 2, trailing};
    return rlog_rs_snapshot_put(rs, &d);
}

static void expect_snapshot(rlog_rs *rs, uint64_t index, uint64_t term, const char *data)
{
    rlog_rs_snapshot s;
    int rv = rlog_rs_snapshot_get(rs, &s);
    if (rv)
        fail_msg("get: %s", rlog_rs_errmsg(rs));
    assert_int_equal(s.index, index);
    assert_int_equal(s.term, term);
    assert_int_equal(s.conf_index, index - 1);
    assert_int_equal(s.conf_len, 3);
    assert_memory_equal(s.conf, "cfg", 3);
    assert_int_equal(s.size, strlen(data));
    assert_memory_equal(s.data, data, strlen(data));
    rlog_rs_snapshot_release(&s);
}

static void test_snapshot_put_get(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    rlog_rs_snapshot s;
    assert_int_equal(rlog_rs_snapshot_get(rs, &s), RLOG_ENOTFOUND);
    for (uint64_t i = 1; i <= 64; i += 8)
        assert_int_equal(append_range(rs, i, 8, 1), 0);
    assert_int_equal(put(rs, 30, 1, 5, "state at thirty"), 0);
    expect_range(rs, 26, 64);
    assert_int_equal(rlog_rs_term(rs, 30), 1);
    assert_int_equal(rlog_rs_term(rs, 25), 0);
    expect_snapshot(rs, 30, 1, "state at thirty");
    /* older or equal: ESTALE, nothing changes */
    assert_int_equal(put(rs, 20, 1, 5, "older"), RLOG_ESTALE);
    assert_int_equal(put(rs, 30, 1, 5, "equal"), RLOG_ESTALE);
    assert_int_equal(count_files(f->dir, ".snap"), 1);
    expect_range(rs, 26, 64);
    assert_int_equal(put(rs, 40, 1, 5, "forty"), 0);
    assert_int_equal(put(rs, 50, 1, 5, "fifty"), 0);
    assert_int_equal(count_files(f->dir, ".snap"), 2); /* keep 2 by default */
    rs = reopen(rs, f->dir, 4096);
    expect_range(rs, 46, 64);
    expect_snapshot(rs, 50, 1, "fifty");
    /* a flipped byte: ECORRUPT naming the file; the state is unchanged */
    char path[4096];
    rlog_rs_stats st;
    rlog_rs_stats_get(rs, &st);
    snprintf(path, sizeof path, "%s/%s", f->dir, st.snap_file);
    tu_flip_bit(path, 2, 3);
    assert_int_equal(rlog_rs_snapshot_get(rs, &s), RLOG_ECORRUPT);
    assert_non_null(strstr(rlog_rs_errmsg(rs), st.snap_file));
    assert_non_null(strstr(rlog_rs_errmsg(rs), "checksum"));
    expect_range(rs, 46, 64);
    tu_flip_bit(path, 2, 3);
    expect_snapshot(rs, 50, 1, "fifty");
    tu_truncate(path, 3);
    assert_int_equal(rlog_rs_snapshot_get(rs, &s), RLOG_ECORRUPT);
    rlog_rs_close(rs);
}

/* Leftover temp files and orphans (a file whose marker never made it) are
 * removed at open. */
static void test_snapshot_leftovers(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    assert_int_equal(append_range(rs, 1, 10, 1), 0);
    assert_int_equal(put(rs, 5, 1, 2, "five"), 0);
    rlog_rs_close(rs);
    tu_write_file(tu_path(f->dir, "snapshot-0000000000000009-0000000000000001.snap.tmp"), "x", 1);
    tu_write_file(tu_path(f->dir, "snapshot-0000000000000009-0000000000000001.snap"), "y", 1);
    tu_write_file(tu_path(f->dir, "unrelated.txt"), "z", 1);
    rlog_rs_open_report rep;
    assert_int_equal(tu_rs_try_open(f->dir, NULL, 4096, 0, RLOG_SYNC_EACH, &rs, &rep), 0);
    assert_int_equal(rep.temp_removed, 1);
    assert_int_equal(rep.snapshots_removed, 1);
    assert_int_equal(count_files(f->dir, ".snap"), 1);
    assert_int_equal(count_files(f->dir, "unrelated"), 1);
    expect_snapshot(rs, 5, 1, "five");
    rlog_rs_close(rs);
}

/* A follower installs a snapshot beyond its log: the log ends empty after
 * it and the next append starts at index + 1. Also a snapshot whose term
 * disagrees with the entry at its index replaces the log. */
static void test_snapshot_install(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    for (uint64_t i = 1; i <= 50; i += 10)
        assert_int_equal(append_range(rs, i, 10, 1), 0);
    assert_int_equal(put(rs, 100, 3, 0, "installed"), 0);
    expect_range(rs, 101, 100);
    assert_int_equal(rlog_rs_term(rs, 100), 3);
    assert_int_equal(rlog_rs_term(rs, 50), 0);
    assert_int_equal(append_range(rs, 51, 1, 3), RLOG_ENONCONTIG);
    assert_int_equal(append_range(rs, 101, 1, 2), RLOG_ETERM); /* below the snapshot term */
    rs = reopen(rs, f->dir, 4096);
    expect_range(rs, 101, 100);
    assert_int_equal(append_range(rs, 101, 5, 3), 0);
    /* a snapshot at 103 with another term: replaces the log despite trailing */
    assert_int_equal(put(rs, 103, 4, 10, "conflict"), 0);
    expect_range(rs, 104, 103);
    rs = reopen(rs, f->dir, 4096);
    expect_range(rs, 104, 103);
    expect_snapshot(rs, 103, 4, "conflict");
    /* trailing 0 with the entry present: the whole log goes too */
    assert_int_equal(append_range(rs, 104, 6, 4), 0);
    assert_int_equal(put(rs, 106, 4, 0, "replace"), 0);
    expect_range(rs, 107, 106);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- compaction */

static size_t count_segments(const char *dir)
{
    char **names;
    size_t n = tu_list_segments(dir, &names);
    tu_free_names(names, n);
    return n;
}

/* The hard state, written once into the first segment, survives the
 * deletion of that segment (sticky copies), also across reopens. */
static void test_hard_state_survives_compaction(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    rlog_rs_hard_state hs = {7, 2, 0};
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), 0);
    uint64_t next = 1;
    for (int k = 0; k < 60; k++, next += 8)
        assert_int_equal(append_range(rs, next, 8, 7), 0);
    rs = reopen(rs, f->dir, 4096); /* the sticky slots must be set again */
    for (int k = 0; k < 60; k++, next += 8)
        assert_int_equal(append_range(rs, next, 8, 7), 0);
    assert_true(count_segments(f->dir) > 5);
    assert_true(tu_file_size(tu_path(f->dir, "0000000000000001.seg")) > 0);
    assert_int_equal(put(rs, next - 5, 7, 3, "late"), 0);
    expect_range(rs, next - 7, next - 1);
    assert_true(tu_file_size(tu_path(f->dir, "0000000000000001.seg")) < 0);
    assert_true(count_segments(f->dir) <= 3);
    rs = reopen(rs, f->dir, 4096);
    expect_hs(rs, 7, 2, 0);
    expect_range(rs, next - 7, next - 1);
    expect_snapshot(rs, next - 5, 7, "late");
    rlog_rs_entries e;
    assert_int_equal(rlog_rs_entries_read(rs, next - 7, next, 0, &e), 0);
    assert_int_equal(e.n, 7);
    for (size_t k = 0; k < e.n; k++)
        expect_entry(&e.v[k], next - 7 + k, 7);
    rlog_rs_entries_free(&e);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- async */

typedef struct cb_state {
    pthread_mutex_t mu;
    uint64_t next; /* next first index expected */
    unsigned fired, errors;
} cb_state;

static void on_append(void *data, int status, uint64_t first, uint64_t last)
{
    cb_state *c = data;
    pthread_mutex_lock(&c->mu);
    if (status || first != c->next)
        c->errors++;
    c->next = last + 1;
    c->fired++;
    pthread_mutex_unlock(&c->mu);
}

static void test_async_append(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 1 << 16, RLOG_OPEN_THREAD, RLOG_SYNC_GROUP);
    cb_state c = {PTHREAD_MUTEX_INITIALIZER, 1, 0, 0};
    uint64_t next = 1;
    for (int k = 0; k < 500; k++) {
        rlog_rs_entry e[4];
        char b[4][16];
        for (int j = 0; j < 4; j++) {
            int len = snprintf(b[j], sizeof b[j], "a%llu", (unsigned long long)(next + j));
            e[j] = (rlog_rs_entry){1 + (uint64_t)k / 100, 0, (uint32_t)len, b[j], NULL};
        }
        assert_int_equal(rlog_rs_append_async(rs, next, e, 4, on_append, &c), 0);
        next += 4;
    }
    assert_int_equal(rlog_rs_last_index(rs), 2000); /* indexed at once */
    rlog_rs_entries e;
    assert_int_equal(rlog_rs_entries_read(rs, 1995, 2000, 0, &e), 0); /* waits if needed */
    assert_int_equal(e.n, 6);
    assert_memory_equal(e.v[5].data, "a2000", 5);
    rlog_rs_entries_free(&e);
    assert_int_equal(rlog_rs_sync(rs), 0);
    pthread_mutex_lock(&c.mu);
    assert_int_equal(c.fired, 500);
    assert_int_equal(c.errors, 0);
    pthread_mutex_unlock(&c.mu);
    rs = reopen(rs, f->dir, 1 << 16);
    expect_range(rs, 1, 2000);
    assert_int_equal(rlog_rs_term(rs, 400), 1);
    assert_int_equal(rlog_rs_term(rs, 401), 2);
    rlog_rs_stats st;
    rlog_rs_stats_get(rs, &st);
    assert_int_equal(st.term_runs, 5);
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- index memory */

static double index_bytes_per_entry(const char *dir, size_t batch, uint64_t total)
{
    rlog_rs *rs = open_store(dir, 64u << 20, 0, RLOG_SYNC_NONE);
    rlog_rs_entry e[64];
    uint8_t payload[8] = {0};
    uint64_t next = 1;
    while (next <= total) {
        for (size_t k = 0; k < batch; k++)
            e[k] = (rlog_rs_entry){1 + (next + k) / 10000, 0, sizeof payload, payload, NULL};
        assert_int_equal(rlog_rs_append_async(rs, next, e, batch, NULL, NULL), 0);
        next += batch;
        if (next % 4096 < batch)
            assert_int_equal(rlog_rs_sync(rs), 0);
    }
    uint64_t live = rlog_rs_index_bytes(rs);
    rs = reopen(rs, dir, 64u << 20);
    uint64_t replayed = rlog_rs_index_bytes(rs);
    expect_range(rs, 1, next - 1);
    rlog_rs_close(rs);
    double a = (double)live / (double)(next - 1), b = (double)replayed / (double)(next - 1);
    print_message("batches of %zu: %.2f index bytes per entry live, %.2f after replay\n", batch, a,
                  b);
    return a > b ? a : b;
}

/* A counter, not a timer: the index stays a few bytes per entry with
 * 1-entry batches and a fraction of a byte with 64-entry batches. */
static void test_index_memory(void **state)
{
    fx *f = *state;
    char d1[4096], d64[4096];
    snprintf(d1, sizeof d1, "%s/b1", f->dir);
    snprintf(d64, sizeof d64, "%s/b64", f->dir);
    assert_true(index_bytes_per_entry(d1, 1, 200000) <= 3.0);
    assert_true(index_bytes_per_entry(d64, 64, 200000 / 64 * 64) <= 0.1);
}

/* ---------------------------------------------------------------- observing */

static void test_format_and_summary(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    assert_int_equal(rlog_rs_set_term(rs, 2), 0);
    assert_int_equal(append_range(rs, 1, 4, 2), 0);
    assert_int_equal(rlog_rs_truncate(rs, 3), 0);
    assert_int_equal(put(rs, 2, 2, 1, "s"), 0);
    const char *want[] = {"hard-state term 2 vote 0 commit 0", "entries 1..4 (4) terms 2..2",
                          "truncate from 3", "snapshot index 2 term 2"};
    rlog_iter *it;
    assert_int_equal(rlog_iter_open(rlog_rs_log(rs), 1, 0, &it), 0);
    rlog_record r;
    for (int k = 0; k < 4; k++) {
        char line[256];
        assert_int_equal(rlog_iter_next(it, &r), 0);
        assert_int_equal(rlog_rs_format_record(r.type, r.data, r.len, line, sizeof line), 0);
        if (!strstr(line, want[k]))
            fail_msg("record %d: '%s' lacks '%s'", k, line, want[k]);
    }
    rlog_iter_close(it);
    char line[64];
    assert_int_equal(rlog_rs_format_record(200, "x", 1, line, sizeof line), RLOG_ENOTFOUND);
    assert_int_equal(rlog_rs_format_record(RLOG_RS_TYPE_HARD_STATE, "x", 1, line, sizeof line),
                     RLOG_ECORRUPT);
    char sum[1024];
    rlog_rs_summary(rs, sum, sizeof sum);
    assert_non_null(strstr(sum, "term 2"));
    assert_non_null(strstr(sum, "entries 2..2"));
    assert_non_null(strstr(sum, "snapshot index 2"));
    rlog_rs_close(rs);
}

/* ---------------------------------------------------------------- foreign records */

/* Records that pass the log's checksum but break the Raft rules (a bug or
 * a foreign writer) fail the open with RLOG_ECORRUPT naming the LSN; a log
 * whose very first record is not a Raft record fails with RLOG_ENOTRAFT. */
static void write_raw(const char *dir, uint16_t type, const void *payload, uint32_t len)
{
    rlog_options o;
    rlog_options_init(&o);
    o.flags = RLOG_OPEN_CREATE;
    rlog_log *l;
    rlog_open_report rep;
    assert_int_equal(rlog_open(dir, &o, &l, &rep), 0);
    rlog_record r = {0, type, 0, len, payload};
    assert_int_equal(rlog_append(l, &r, 1, NULL), 0);
    assert_int_equal(rlog_close(l), 0);
}

static void expect_corrupt_open(const char *dir, uint64_t lsn, const char *needle)
{
    rlog_rs *rs = NULL;
    rlog_rs_open_report rep;
    assert_int_equal(rlog_rs_open(dir, NULL, &rs, &rep), RLOG_ECORRUPT);
    assert_null(rs);
    assert_int_equal(rep.corrupt_lsn, lsn);
    if (!strstr(rep.message, needle))
        fail_msg("'%s' lacks '%s'", rep.message, needle);
}

static void expect_not_raft(const char *dir, const char *needle)
{
    rlog_rs *rs = NULL;
    rlog_rs_open_report rep;
    assert_int_equal(rlog_rs_open(dir, NULL, &rs, &rep), RLOG_ENOTRAFT);
    assert_null(rs);
    assert_int_equal(rep.corrupt_lsn, 0);
    if (!strstr(rep.message, needle) || !strstr(rep.message, "not a Raft store"))
        fail_msg("'%s' lacks '%s'", rep.message, needle);
}

static void test_foreign_records(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 0, 0, RLOG_SYNC_EACH);
    assert_int_equal(append_range(rs, 1, 2, 1), 0);
    rlog_rs_close(rs);
    /* a batch at 5 after 1..2 */
    uint8_t b[64];
    rlog_rs_entry e = {1, 0, 1, "x", NULL};
    rlg_batch_encode(5, &e, 1, b);
    write_raw(f->dir, RLOG_RS_TYPE_ENTRIES, b, 16 + 16 + 1);
    expect_corrupt_open(f->dir, 2, "entries start at 5");
    /* a log whose first record is not a Raft record is another kind of
     * log, not a damaged store */
    char *d2 = tu_mkdtemp("raft_foreign");
    write_raw(d2, 300, "?", 1);
    expect_not_raft(d2, "not a Raft record");
    tu_rmdir_r(d2);
    free(d2);
    char *d3 = tu_mkdtemp("raft_foreign");
    uint8_t hs[24] = {0};
    write_raw(d3, RLOG_RS_TYPE_HARD_STATE, hs, 23);
    expect_not_raft(d3, "hard state record of 23 bytes");
    tu_rmdir_r(d3);
    free(d3);
}

/* Read-only: replays and summarises without writing; writing calls are
 * refused. */
/* ---------------------------------------------------------------- purge */

/* Reads first..last and checks every entry (term 7). */
static void expect_entries(rlog_rs *rs, uint64_t first, uint64_t last)
{
    expect_range(rs, first, last);
    rlog_rs_entries e;
    assert_int_equal(rlog_rs_entries_read(rs, first, last, 0, &e), 0);
    assert_int_equal(e.n, last - first + 1);
    for (size_t k = 0; k < e.n; k++)
        expect_entry(&e.v[k], first + k, 7);
    rlog_rs_entries_free(&e);
    if (first > 1)
        assert_int_equal(rlog_rs_entries_read(rs, first - 1, last, 0, &e), RLOG_ENOTFOUND);
}

/* rlog_rs_purge_before: refuses entries no snapshot covers (no snapshot;
 * index above snapshot index + 1; index 0), changing nothing; drops the
 * segments of covered trailing entries, leaving a first index at most the
 * one asked for, which a reopen finds again with every entry intact. */
static void test_purge_before(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    assert_int_equal(rlog_rs_set_term(rs, 7), 0);
    for (uint64_t next = 1; next <= 1600; next += 8)
        assert_int_equal(append_range(rs, next, 8, 7), 0);
    size_t segs = count_segments(f->dir);
    assert_true(segs > 10);
    uint64_t deleted = 99;
    assert_int_equal(rlog_rs_purge_before(rs, 500, &deleted), RLOG_EINVAL); /* no snapshot */
    assert_int_equal(deleted, 0);
    assert_non_null(strstr(rlog_rs_errmsg(rs), "not all covered by the snapshot (none"));
    assert_int_equal(count_segments(f->dir), segs);
    expect_range(rs, 1, 1600);

    /* a snapshot at 1500 keeping 1400 trailing entries: 101..1600 stay */
    assert_int_equal(put(rs, 1500, 7, 1400, "snap"), 0);
    expect_range(rs, 101, 1600);
    segs = count_segments(f->dir);
    assert_int_equal(rlog_rs_purge_before(rs, 1502, &deleted), RLOG_EINVAL);
    assert_non_null(strstr(rlog_rs_errmsg(rs), "index 1502 are not all covered"));
    assert_int_equal(rlog_rs_purge_before(rs, 0, &deleted), RLOG_EINVAL);
    assert_int_equal(count_segments(f->dir), segs);
    expect_entries(rs, 101, 1600);

    /* 800: whole segments below the batch of entry 800 go */
    assert_int_equal(rlog_rs_purge_before(rs, 800, &deleted), 0);
    assert_true(deleted > 0);
    assert_int_equal(count_segments(f->dir), segs - deleted);
    uint64_t first = rlog_rs_first_index(rs);
    assert_true(first > 101 && first <= 800);
    expect_entries(rs, first, 1600);
    assert_int_equal(rlog_rs_purge_before(rs, 800, &deleted), 0); /* again: nothing left */
    assert_int_equal(deleted, 0);
    rs = reopen(rs, f->dir, 4096);
    expect_entries(rs, first, 1600);
    expect_snapshot(rs, 1500, 7, "snap");
    expect_hs(rs, 7, 0, 0);

    /* snapshot index + 1: every covered entry may go */
    segs = count_segments(f->dir);
    assert_int_equal(rlog_rs_purge_before(rs, 1501, &deleted), 0);
    assert_true(deleted > 0);
    first = rlog_rs_first_index(rs);
    assert_true(first > 800 && first <= 1501);
    expect_entries(rs, first, 1600);
    rs = reopen(rs, f->dir, 4096);
    expect_entries(rs, first, 1600);
    expect_snapshot(rs, 1500, 7, "snap");
    rlog_rs_close(rs);
}

/* A snapshot that keeps no entry (trailing 0): purging up to index + 1
 * drops the segments before the marker; the log stays empty after it. */
static void test_purge_before_empty_log(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    assert_int_equal(rlog_rs_set_term(rs, 7), 0);
    for (uint64_t next = 1; next <= 400; next += 8)
        assert_int_equal(append_range(rs, next, 8, 7), 0);
    assert_int_equal(put(rs, 400, 7, 0, "all"), 0);
    expect_range(rs, 401, 400);
    uint64_t deleted = 0;
    assert_int_equal(rlog_rs_purge_before(rs, 401, &deleted), 0);
    expect_range(rs, 401, 400);
    assert_int_equal(append_range(rs, 401, 8, 7), 0);
    rs = reopen(rs, f->dir, 4096);
    expect_entries(rs, 401, 408);
    expect_snapshot(rs, 400, 7, "all");
    rlog_rs_close(rs);
}

static void test_readonly(void **state)
{
    fx *f = *state;
    rlog_rs *rs = open_store(f->dir, 4096, 0, RLOG_SYNC_EACH);
    assert_int_equal(rlog_rs_set_term(rs, 3), 0);
    assert_int_equal(append_range(rs, 1, 5, 3), 0);
    rlog_rs_close(rs);
    rlog_rs_open_report rep;
    assert_int_equal(
        tu_rs_try_open(f->dir, NULL, 4096, RLOG_OPEN_READONLY, RLOG_SYNC_EACH, &rs, &rep), 0);
    expect_range(rs, 1, 5);
    expect_hs(rs, 3, 0, 0);
    assert_int_equal(append_range(rs, 6, 1, 3), RLOG_ENOTSUP);
    assert_int_equal(rlog_rs_set_term(rs, 4), RLOG_ENOTSUP);
    assert_int_equal(rlog_rs_purge_before(rs, 1, NULL), RLOG_ENOTSUP);
    char sum[512];
    rlog_rs_summary(rs, sum, sizeof sum);
    assert_non_null(strstr(sum, "entries 1..5 (5)"));
    rlog_rs_close(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hard_state_rules),
        cmocka_unit_test(test_append_contiguity),
        cmocka_unit_test(test_truncate_reappend),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_read_budget),
        cmocka_unit_test(test_snapshot_put_get),
        cmocka_unit_test(test_snapshot_leftovers),
        cmocka_unit_test(test_snapshot_install),
        cmocka_unit_test(test_hard_state_survives_compaction),
        cmocka_unit_test(test_async_append),
        cmocka_unit_test(test_index_memory),
        cmocka_unit_test(test_format_and_summary),
        cmocka_unit_test(test_foreign_records),
        cmocka_unit_test(test_readonly),
        cmocka_unit_test(test_purge_before),
        cmocka_unit_test(test_purge_before_empty_log),
    };
    return TU_RUN("raft_storage", tests, tu_dir_setup, tu_dir_teardown);
}
