/* The fault-injecting vfs wrapper over the posix vfs: which calls a rule
 * fails, what a partial write leaves on disk, and the counters. What reached
 * the disk is checked behind the wrapper's back (tu_* helpers). */
#include "util/testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/vfs.h"

typedef tu_dir_fx fixture; /* dir, vfs: the fault wrapper over posix */

static rlog_fault rule(rlog_vfs_op op, uint64_t skip, uint64_t times, int err)
{
    rlog_fault f = {op, skip, times, err, SIZE_MAX, NULL};
    return f;
}

static int add_ok(rlog_vfs *vfs, rlog_fault f)
{
    int id = rlog_vfs_fault_add(vfs, &f);
    assert_true(id > 0);
    return id;
}

static rlog_file *open_ok(rlog_vfs *vfs, const char *path)
{
    return tu_vfs_open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE);
}

static int write_at(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off,
                    size_t *done)
{
    *done = 777;
    return vfs->pwrite(vfs, f, buf, len, off, done);
}

/* The bytes of a file as on disk, via the real file system. */
static void expect_file(const char *path, const void *want, size_t len)
{
    void *data;
    size_t n;
    tu_read_file(path, &data, &n);
    assert_int_equal(n, len);
    if (len > 0)
        assert_memory_equal(data, want, len);
    free(data);
}

/* With no rules the wrapper is transparent and counts each call by op. */
static void test_passthrough_and_call_counters(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *path = tu_path(fx->dir, "f");
    rlog_file *f = open_ok(vfs, path);
    size_t done;
    assert_int_equal(write_at(vfs, f, "abcdef", 6, 0, &done), 0);
    assert_int_equal(done, 6);
    assert_int_equal(write_at(vfs, f, "XY", 2, 2, &done), 0);
    char got[6];
    assert_int_equal(vfs->pread(vfs, f, got, 6, 0, &done), 0);
    assert_int_equal(done, 6);
    assert_memory_equal(got, "abXYef", 6);
    uint64_t size = 0;
    assert_int_equal(vfs->size(vfs, f, &size), 0);
    assert_int_equal(size, 6);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    assert_int_equal(vfs->close(vfs, f), 0);
    assert_int_equal(vfs->sync_dir(vfs, fx->dir), 0);
    tu_vfs_expect_only(vfs, fx->dir, "f");
    expect_file(path, "abXYef", 6);

    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_OPEN), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_PWRITE), 2);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_PREAD), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_SIZE), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_FDATASYNC), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_CLOSE), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_SYNC_DIR), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_LIST), 1);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_FSYNC), 0);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_COUNT), 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 0);
}

/* skip = 2, times = 1: writes 1 and 2 succeed, write 3 fails with EIO and
 * writes nothing, write 4 succeeds again. */
static void test_nth_pwrite_fails(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *path = tu_path(fx->dir, "f");
    rlog_file *f = open_ok(vfs, path);
    add_ok(vfs, rule(RLOG_OP_PWRITE, 2, 1, EIO));
    size_t done;
    assert_int_equal(write_at(vfs, f, "aa", 2, 0, &done), 0);
    assert_int_equal(write_at(vfs, f, "bb", 2, 2, &done), 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 0);
    assert_int_equal(write_at(vfs, f, "cc", 2, 4, &done), EIO);
    assert_int_equal(done, 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 1);
    expect_file(path, "aabb", 4);
    assert_int_equal(write_at(vfs, f, "dd", 2, 4, &done), 0);
    assert_int_equal(done, 2);
    expect_file(path, "aabbdd", 6);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_PWRITE), 4);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 1);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* A partial failing write leaves exactly `partial` bytes on disk and
 * reports them in *done; partial larger than the write is clamped. */
static void test_partial_write_leaves_prefix(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *path = tu_path(fx->dir, "f");
    rlog_file *f = open_ok(vfs, path);
    rlog_fault r = rule(RLOG_OP_PWRITE, 0, 1, EIO);
    r.partial = 5;
    add_ok(vfs, r);
    size_t done;
    assert_int_equal(write_at(vfs, f, "0123456789abcdef", 16, 0, &done), EIO);
    assert_int_equal(done, 5);
    expect_file(path, "01234", 5);

    r.partial = 100; /* longer than the write */
    r.err = ENOSPC;
    add_ok(vfs, r);
    assert_int_equal(write_at(vfs, f, "ABCDEFGH", 8, 5, &done), ENOSPC);
    assert_int_equal(done, 8);
    expect_file(path, "01234ABCDEFGH", 13);

    r.partial = 0; /* fails having written nothing */
    add_ok(vfs, r);
    assert_int_equal(write_at(vfs, f, "zz", 2, 0, &done), ENOSPC);
    assert_int_equal(done, 0);
    expect_file(path, "01234ABCDEFGH", 13);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 3);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* err = 0 with partial: the write "succeeds" short, and only the prefix
 * is on disk. */
static void test_silent_short_write(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *path = tu_path(fx->dir, "f");
    rlog_file *f = open_ok(vfs, path);
    rlog_fault r = rule(RLOG_OP_PWRITE, 1, 1, 0);
    r.partial = 3;
    add_ok(vfs, r);
    size_t done;
    assert_int_equal(write_at(vfs, f, "hello", 5, 0, &done), 0);
    assert_int_equal(done, 5);
    assert_int_equal(write_at(vfs, f, "world", 5, 5, &done), 0);
    assert_int_equal(done, 3);
    expect_file(path, "hellowor", 8);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 1);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* A rule with path_contains only fails calls on matching paths; times = 0
 * keeps failing until the rule is removed. */
static void test_enospc_on_fdatasync_for_matching_paths(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *seg = open_ok(vfs, tu_path(fx->dir, "00000001.seg"));
    rlog_file *meta = open_ok(vfs, tu_path(fx->dir, "meta"));
    char sub[8];
    strcpy(sub, ".seg");
    rlog_fault r = rule(RLOG_OP_FDATASYNC, 0, 0, ENOSPC);
    r.path_contains = sub;
    int id = add_ok(vfs, r);
    strcpy(sub, "meta"); /* the rule keeps its own copy */

    for (int i = 0; i < 5; i++) {
        assert_int_equal(vfs->fdatasync(vfs, seg), ENOSPC);
        assert_int_equal(vfs->fdatasync(vfs, meta), 0);
    }
    /* Other ops on the same file are untouched. */
    assert_int_equal(vfs->fsync(vfs, seg), 0);
    size_t done;
    assert_int_equal(write_at(vfs, seg, "x", 1, 0, &done), 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 5);

    rlog_vfs_fault_remove(vfs, id);
    assert_int_equal(vfs->fdatasync(vfs, seg), 0);
    rlog_vfs_fault_remove(vfs, id); /* unknown id: ignored */
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_FDATASYNC), 11);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 5);
    assert_int_equal(vfs->close(vfs, seg), 0);
    assert_int_equal(vfs->close(vfs, meta), 0);
}

/* times = 2 fails exactly two matching calls; skip counts only matching
 * calls (other paths do not use it up). */
static void test_times_and_skip_count_matching_calls(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *a = open_ok(vfs, tu_path(fx->dir, "a.seg"));
    rlog_file *b = open_ok(vfs, tu_path(fx->dir, "b.idx"));
    rlog_fault r = rule(RLOG_OP_FSYNC, 1, 2, EIO);
    r.path_contains = "a.seg";
    add_ok(vfs, r);
    assert_int_equal(vfs->fsync(vfs, b), 0);
    assert_int_equal(vfs->fsync(vfs, b), 0);
    assert_int_equal(vfs->fsync(vfs, a), 0); /* the one skipped */
    assert_int_equal(vfs->fsync(vfs, b), 0);
    assert_int_equal(vfs->fsync(vfs, a), EIO);
    assert_int_equal(vfs->fsync(vfs, a), EIO);
    assert_int_equal(vfs->fsync(vfs, a), 0);
    assert_int_equal(vfs->fsync(vfs, a), 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 2);
    assert_int_equal(vfs->close(vfs, a), 0);
    assert_int_equal(vfs->close(vfs, b), 0);
}

/* A failed pread returns the error and *done = 0; the next one works. */
static void test_pread_fault(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *path = tu_path(fx->dir, "f");
    tu_write_file(path, "data", 4);
    rlog_file *f = open_ok(vfs, path);
    add_ok(vfs, rule(RLOG_OP_PREAD, 0, 1, EIO));
    char got[4];
    size_t done = 99;
    assert_int_equal(vfs->pread(vfs, f, got, 4, 0, &done), EIO);
    assert_int_equal(done, 0);
    assert_int_equal(vfs->pread(vfs, f, got, 4, 0, &done), 0);
    assert_int_equal(done, 4);
    assert_memory_equal(got, "data", 4);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* A failed open creates nothing and returns no handle. */
static void test_open_fault_creates_nothing(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    add_ok(vfs, rule(RLOG_OP_OPEN, 0, 1, EMFILE));
    rlog_file *f = (rlog_file *)&f;
    const char *path = tu_path(fx->dir, "f");
    assert_int_equal(vfs->open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f), EMFILE);
    assert_null(f);
    assert_int_equal(tu_file_size(path), -1);
    f = open_ok(vfs, path);
    assert_int_equal(vfs->close(vfs, f), 0);
    assert_int_equal(tu_file_size(path), 0);
}

/* A failed unlock (or close) still releases the base handle: the directory
 * can be locked again at once. (ASan also checks nothing leaks.) */
static void test_failed_unlock_and_close_release(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *l = NULL, *l2 = NULL;
    assert_int_equal(vfs->lock(vfs, fx->dir, &l), 0);
    assert_int_equal(vfs->lock(vfs, fx->dir, &l2), EBUSY);
    add_ok(vfs, rule(RLOG_OP_UNLOCK, 0, 1, EIO));
    assert_int_equal(vfs->unlock(vfs, l), EIO);
    assert_int_equal(vfs->lock(vfs, fx->dir, &l2), 0);
    assert_int_equal(vfs->unlock(vfs, l2), 0);

    add_ok(vfs, rule(RLOG_OP_CLOSE, 0, 1, EIO));
    rlog_file *f = open_ok(vfs, tu_path(fx->dir, "f"));
    assert_int_equal(vfs->close(vfs, f), EIO);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_CLOSE), 1);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 2);
}

/* lock rules match by directory; rename rules by either path. */
static void test_lock_and_rename_paths(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    /* names no checkout path contains (the scratch directory sits under it) */
    char *a = strdup(tu_path(fx->dir, "lockdir-a"));
    char *b = strdup(tu_path(fx->dir, "lockdir-b"));
    assert_int_equal(vfs->mkdir(vfs, a), 0);
    assert_int_equal(vfs->mkdir(vfs, b), 0);
    rlog_fault r = rule(RLOG_OP_LOCK, 0, 0, EACCES);
    r.path_contains = "/lockdir-a";
    add_ok(vfs, r);
    rlog_file *l = NULL;
    assert_int_equal(vfs->lock(vfs, a, &l), EACCES);
    assert_null(l);
    assert_int_equal(vfs->lock(vfs, b, &l), 0);
    assert_int_equal(vfs->unlock(vfs, l), 0);

    tu_write_file(tu_path(fx->dir, "x.tmp"), "1", 1);
    r = rule(RLOG_OP_RENAME, 0, 0, EIO);
    r.path_contains = "qmetaq";
    add_ok(vfs, r);
    char *tmp = strdup(tu_path(fx->dir, "x.tmp"));
    assert_int_equal(vfs->rename(vfs, tmp, tu_path(fx->dir, "qmetaq")), EIO); /* by `to` */
    assert_int_equal(vfs->rename(vfs, tmp, tu_path(fx->dir, "y")), 0);
    tu_write_file(tu_path(fx->dir, "qmetaq.tmp"), "2", 1);
    assert_int_equal(vfs->rename(vfs, tu_path(fx->dir, "qmetaq.tmp"), tu_path(fx->dir, "z")),
                     EIO); /* by `from` */
    assert_int_equal(tu_file_size(tu_path(fx->dir, "qmetaq.tmp")), 1);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 3);
    free(a);
    free(b);
    free(tmp);
}

/* When two rules trigger on one call the first added wins, and the other
 * keeps its budget for a later call. */
static void test_first_added_rule_wins(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *f = open_ok(vfs, tu_path(fx->dir, "f"));
    add_ok(vfs, rule(RLOG_OP_TRUNCATE, 1, 1, EIO));
    add_ok(vfs, rule(RLOG_OP_TRUNCATE, 1, 1, ENOSPC));
    assert_int_equal(vfs->truncate(vfs, f, 10), 0);
    assert_int_equal(vfs->truncate(vfs, f, 10), EIO);
    assert_int_equal(vfs->truncate(vfs, f, 10), ENOSPC);
    assert_int_equal(vfs->truncate(vfs, f, 10), 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 2);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* clear removes every rule; ids keep growing; bad rules are refused. */
static void test_clear_and_invalid_rules(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    int id1 = add_ok(vfs, rule(RLOG_OP_MKDIR, 0, 0, EIO));
    int id2 = add_ok(vfs, rule(RLOG_OP_UNLINK, 0, 0, EIO));
    assert_true(id2 > id1);
    assert_int_equal(vfs->mkdir(vfs, tu_path(fx->dir, "d")), EIO);
    rlog_vfs_fault_clear(vfs);
    assert_int_equal(vfs->mkdir(vfs, tu_path(fx->dir, "d")), 0);
    assert_int_equal(vfs->unlink(vfs, tu_path(fx->dir, "nothing")), ENOENT);
    assert_true(add_ok(vfs, rule(RLOG_OP_ALLOCATE, 0, 1, ENOSPC)) > id2);
    rlog_file *f = open_ok(vfs, tu_path(fx->dir, "f"));
    assert_int_equal(vfs->allocate(vfs, f, 0, 4096), ENOSPC);
    assert_int_equal(vfs->close(vfs, f), 0);

    rlog_fault bad = rule(RLOG_OP_FSYNC, 0, 0, 0); /* err 0 only for pwrite */
    assert_true(rlog_vfs_fault_add(vfs, &bad) < 0);
    bad = rule(RLOG_OP_COUNT, 0, 0, EIO);
    assert_true(rlog_vfs_fault_add(vfs, &bad) < 0);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 2);
}

/* A wrapper stacked on a wrapper: both count, the inner one's faults pass
 * through the outer one unchanged. */
static void test_stacked_wrappers(void **state)
{
    fixture *fx = *state;
    rlog_vfs *outer = rlog_vfs_fault_new(fx->vfs);
    assert_non_null(outer);
    add_ok(fx->vfs, rule(RLOG_OP_SYNC_DIR, 0, 1, EIO));
    assert_int_equal(outer->sync_dir(outer, fx->dir), EIO);
    assert_int_equal(outer->sync_dir(outer, fx->dir), 0);
    assert_int_equal(rlog_vfs_fault_calls(outer, RLOG_OP_SYNC_DIR), 2);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), 2);
    assert_int_equal(rlog_vfs_fault_injected(outer), 0);
    assert_int_equal(rlog_vfs_fault_injected(fx->vfs), 1);
    outer->destroy(outer);
}

#define THREADS 4
#define WRITES  100

typedef struct thread_arg {
    rlog_vfs *vfs;
    rlog_file *f;
    unsigned id;
    unsigned failed;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    char c = (char)('a' + a->id);
    for (unsigned i = 0; i < WRITES; i++) {
        size_t done;
        int err = a->vfs->pwrite(a->vfs, a->f, &c, 1, (uint64_t)i * THREADS + a->id, &done);
        if (err == EIO)
            a->failed++;
        else if (err != 0)
            return (void *)1;
    }
    return NULL;
}

/* Under concurrent calls the rule fails exactly `times` of them and the
 * counters add up: no lost updates. */
static void test_concurrent_calls_count_exactly(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *f = open_ok(vfs, tu_path(fx->dir, "f"));
    add_ok(vfs, rule(RLOG_OP_PWRITE, 100, 50, EIO));
    pthread_t th[THREADS];
    thread_arg args[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        args[i] = (thread_arg){vfs, f, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    unsigned failed = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
        failed += args[i].failed;
    }
    assert_int_equal(failed, 50);
    assert_int_equal(rlog_vfs_fault_injected(vfs), 50);
    assert_int_equal(rlog_vfs_fault_calls(vfs, RLOG_OP_PWRITE), THREADS * WRITES);
    assert_int_equal(vfs->close(vfs, f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passthrough_and_call_counters),
        cmocka_unit_test(test_nth_pwrite_fails),
        cmocka_unit_test(test_partial_write_leaves_prefix),
        cmocka_unit_test(test_silent_short_write),
        cmocka_unit_test(test_enospc_on_fdatasync_for_matching_paths),
        cmocka_unit_test(test_times_and_skip_count_matching_calls),
        cmocka_unit_test(test_pread_fault),
        cmocka_unit_test(test_open_fault_creates_nothing),
        cmocka_unit_test(test_failed_unlock_and_close_release),
        cmocka_unit_test(test_lock_and_rename_paths),
        cmocka_unit_test(test_first_added_rule_wins),
        cmocka_unit_test(test_clear_and_invalid_rules),
        cmocka_unit_test(test_stacked_wrappers),
        cmocka_unit_test(test_concurrent_calls_count_exactly),
    };
    return TU_RUN("vfs_fault", tests, tu_fault_setup, tu_fault_teardown);
}
