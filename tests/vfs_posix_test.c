/* The posix vfs and env against the contract in include/rlog/vfs.h, on the
 * real file system of the test's scratch directory. */
#include "util/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rlog/vfs.h"

/* A scratch directory and the posix vfs. */
typedef tu_dir_fx fixture;

static int setup(void **state)
{
    if (tu_dir_setup(state))
        return -1;
    ((fixture *)*state)->vfs = rlog_vfs_posix();
    return 0;
}

static uint64_t size_ok(rlog_vfs *vfs, rlog_file *f)
{
    uint64_t size = UINT64_MAX;
    assert_int_equal(vfs->size(vfs, f, &size), 0);
    return size;
}

static int names_contain(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* Data written at scattered offsets reads back byte for byte; the gap
 * between writes reads as zeros; size is the end of the last write. */
static void test_pwrite_pread_round_trip_at_offsets(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *f = tu_vfs_open(vfs, tu_path(fx->dir, "f"), RLOG_VFS_RDWR | RLOG_VFS_CREATE);

    uint8_t a[1000], b[3000];
    tu_fill(1, 1, a, sizeof a);
    tu_fill(1, 2, b, sizeof b);
    tu_vfs_write(vfs, f, a, sizeof a, 0);
    tu_vfs_write(vfs, f, b, sizeof b, 10000);
    tu_vfs_write(vfs, f, a, 10, 500); /* overwrite in the middle of a */
    assert_int_equal(size_ok(vfs, f), 13000);

    uint8_t got[13000];
    size_t done = 0;
    assert_int_equal(vfs->pread(vfs, f, got, sizeof got, 0, &done), 0);
    assert_int_equal(done, sizeof got);
    assert_memory_equal(got, a, 500);
    assert_memory_equal(got + 500, a, 10);
    assert_memory_equal(got + 510, a + 510, sizeof a - 510);
    for (size_t i = sizeof a; i < 10000; i++)
        assert_int_equal(got[i], 0);
    assert_memory_equal(got + 10000, b, sizeof b);

    /* An unaligned read inside b. */
    assert_int_equal(vfs->pread(vfs, f, got, 777, 10001, &done), 0);
    assert_int_equal(done, 777);
    assert_memory_equal(got, b + 1, 777);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* A write of several MiB (more than one kernel call may take) arrives whole. */
static void test_large_write_round_trip(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    size_t len = 5u << 20;
    uint8_t *buf = malloc(len), *got = malloc(len);
    assert_non_null(buf);
    assert_non_null(got);
    tu_fill(7, 7, buf, len);
    rlog_file *f = tu_vfs_open(vfs, tu_path(fx->dir, "big"), RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    tu_vfs_write(vfs, f, buf, len, 4096);
    size_t done = 0;
    assert_int_equal(vfs->pread(vfs, f, got, len, 4096, &done), 0);
    assert_int_equal(done, len);
    assert_memory_equal(got, buf, len);
    assert_int_equal(tu_file_size(tu_path(fx->dir, "big")), (long)(len + 4096));
    assert_int_equal(vfs->close(vfs, f), 0);
    free(buf);
    free(got);
}

/* pread stops short only at end of file: it returns 0 with *done = the
 * bytes that exist, and 0 bytes at or past the end. */
static void test_pread_short_at_eof(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *f = tu_vfs_open(vfs, tu_path(fx->dir, "f"), RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    uint8_t data[100], got[200];
    tu_fill(2, 0, data, sizeof data);
    tu_vfs_write(vfs, f, data, sizeof data, 0);

    size_t done = 999;
    assert_int_equal(vfs->pread(vfs, f, got, sizeof got, 40, &done), 0);
    assert_int_equal(done, 60);
    assert_memory_equal(got, data + 40, 60);
    assert_int_equal(vfs->pread(vfs, f, got, sizeof got, 100, &done), 0);
    assert_int_equal(done, 0);
    assert_int_equal(vfs->pread(vfs, f, got, sizeof got, 1u << 20, &done), 0);
    assert_int_equal(done, 0);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* Open flags: EXCL refuses an existing file, a missing file without
 * CREATE is ENOENT, RDONLY refuses writes, nonsense flags are EINVAL. */
static void test_open_flags(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *path = tu_path(fx->dir, "f");
    rlog_file *f = NULL;

    assert_int_equal(vfs->open(vfs, path, RLOG_VFS_RDWR, &f), ENOENT);
    assert_null(f);
    f = tu_vfs_open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL);
    assert_int_equal(vfs->close(vfs, f), 0);

    f = (rlog_file *)&f; /* must be reset to NULL on failure */
    assert_int_equal(vfs->open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f),
                     EEXIST);
    assert_null(f);

    /* CREATE without EXCL opens the existing file and keeps its bytes. */
    tu_write_file(path, "hello", 5);
    f = tu_vfs_open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    assert_int_equal(size_ok(vfs, f), 5);
    assert_int_equal(vfs->close(vfs, f), 0);

    f = tu_vfs_open(vfs, path, RLOG_VFS_RDONLY);
    size_t done = 7;
    assert_int_equal(vfs->pwrite(vfs, f, "x", 1, 0, &done), EBADF);
    assert_int_equal(done, 0);
    char got[5];
    assert_int_equal(vfs->pread(vfs, f, got, 5, 0, &done), 0);
    assert_memory_equal(got, "hello", 5);
    assert_int_equal(vfs->close(vfs, f), 0);

    assert_int_equal(vfs->open(vfs, path, 0, &f), EINVAL);
    assert_int_equal(vfs->open(vfs, path, RLOG_VFS_RDONLY | RLOG_VFS_RDWR, &f), EINVAL);
    assert_int_equal(vfs->open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_EXCL, &f), EINVAL);
    assert_int_equal(vfs->open(vfs, path, RLOG_VFS_RDWR | 0x100u, &f), EINVAL);
}

/* A created file has mode 0644 (before the umask). */
static void test_create_mode(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    mode_t old = umask(022);
    const char *path = tu_path(fx->dir, "m");
    rlog_file *f = tu_vfs_open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* Every descriptor the vfs holds (files and locks) is close-on-exec. */
static void test_descriptors_are_cloexec(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    char want[PATH_MAX];
    assert_non_null(realpath(fx->dir, want));
    rlog_file *lock = NULL;
    assert_int_equal(vfs->lock(vfs, fx->dir, &lock), 0);
    rlog_file *f = tu_vfs_open(vfs, tu_path(fx->dir, "f"), RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    char want_file[PATH_MAX + 8];
    snprintf(want_file, sizeof want_file, "%s/f", want);

    int seen_dir = 0, seen_file = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0)
            continue;
        target[n] = 0;
        int is_dir = strcmp(target, want) == 0, is_file = strcmp(target, want_file) == 0;
        if (!is_dir && !is_file)
            continue;
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        seen_dir |= is_dir;
        seen_file |= is_file;
    }
    assert_true(seen_dir);
    assert_true(seen_file);
    assert_int_equal(vfs->close(vfs, f), 0);
    assert_int_equal(vfs->unlock(vfs, lock), 0);
}

/* list returns exactly the entries, without "." and "..". */
static void test_list_contents(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    char **names = NULL;
    size_t n = 99;
    assert_int_equal(vfs->list(vfs, fx->dir, &names, &n), 0);
    assert_int_equal(n, 0);
    rlog_vfs_free_names(names, n);

    const char *want[] = {"a.seg", "b.seg", "meta", "sub"};
    tu_write_file(tu_path(fx->dir, "a.seg"), "a", 1);
    tu_write_file(tu_path(fx->dir, "b.seg"), "b", 1);
    tu_write_file(tu_path(fx->dir, "meta"), "m", 1);
    assert_int_equal(vfs->mkdir(vfs, tu_path(fx->dir, "sub")), 0);
    tu_write_file(tu_path(fx->dir, "sub/inner"), "i", 1); /* not listed: not recursive */

    assert_int_equal(vfs->list(vfs, fx->dir, &names, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_true(names_contain(names, n, want[i]));
    rlog_vfs_free_names(names, n);

    /* Enough entries to make the array grow several times. */
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "many-%03d", i);
        tu_write_file(tu_path(fx->dir, name), "x", 1);
    }
    assert_int_equal(vfs->list(vfs, fx->dir, &names, &n), 0);
    assert_int_equal(n, 104);
    assert_true(names_contain(names, n, "many-000"));
    assert_true(names_contain(names, n, "many-099"));
    assert_false(names_contain(names, n, "."));
    assert_false(names_contain(names, n, ".."));
    rlog_vfs_free_names(names, n);

    assert_int_equal(vfs->list(vfs, tu_path(fx->dir, "missing"), &names, &n), ENOENT);
    assert_int_equal(vfs->list(vfs, tu_path(fx->dir, "meta"), &names, &n), ENOTDIR);
    rlog_vfs_free_names(NULL, 0); /* accepted */
}

/* rename replaces an existing target atomically: `to` holds the new bytes
 * and `from` is gone. */
static void test_rename_replaces(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    char *from = strdup(tu_path(fx->dir, "meta.tmp"));
    char *to = strdup(tu_path(fx->dir, "meta"));
    tu_write_file(to, "old-contents", 12);
    tu_write_file(from, "new", 3);

    assert_int_equal(vfs->rename(vfs, from, to), 0);
    assert_int_equal(vfs->sync_dir(vfs, fx->dir), 0);
    void *data;
    size_t len;
    tu_read_file(to, &data, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "new", 3);
    free(data);
    rlog_file *f = NULL;
    assert_int_equal(vfs->open(vfs, from, RLOG_VFS_RDONLY, &f), ENOENT);
    assert_int_equal(vfs->rename(vfs, from, to), ENOENT);
    free(from);
    free(to);
}

/* unlink removes the entry from list; unlinking again is ENOENT. */
static void test_unlink_then_list(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    tu_write_file(tu_path(fx->dir, "keep"), "k", 1);
    tu_write_file(tu_path(fx->dir, "drop"), "d", 1);
    assert_int_equal(vfs->unlink(vfs, tu_path(fx->dir, "drop")), 0);
    assert_int_equal(vfs->sync_dir(vfs, fx->dir), 0);

    tu_vfs_expect_only(vfs, fx->dir, "keep");
    assert_int_equal(vfs->unlink(vfs, tu_path(fx->dir, "drop")), ENOENT);
}

/* mkdir fails with EEXIST the second time; sync_dir needs a directory. */
static void test_mkdir_and_sync_dir(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    const char *sub = tu_path(fx->dir, "sub");
    assert_int_equal(vfs->mkdir(vfs, sub), 0);
    assert_int_equal(vfs->mkdir(vfs, sub), EEXIST);
    assert_int_equal(vfs->sync_dir(vfs, sub), 0);
    assert_int_equal(vfs->sync_dir(vfs, tu_path(fx->dir, "nope")), ENOENT);
    tu_write_file(tu_path(fx->dir, "file"), "f", 1);
    assert_int_equal(vfs->sync_dir(vfs, tu_path(fx->dir, "file")), ENOTDIR);
    assert_int_equal(vfs->mkdir(vfs, tu_path(fx->dir, "nope/deeper")), ENOENT);
}

/* A second lock on the same directory fails with EBUSY, from this process
 * (another handle) and from another process, and succeeds after unlock. */
static void test_lock_excludes_until_unlock(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *l1 = NULL, *l2 = NULL;
    assert_int_equal(vfs->lock(vfs, fx->dir, &l1), 0);
    assert_non_null(l1);
    l2 = (rlog_file *)&l2;
    assert_int_equal(vfs->lock(vfs, fx->dir, &l2), EBUSY);
    assert_null(l2);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rlog_file *l3 = NULL;
        _exit(rlog_vfs_posix()->lock(rlog_vfs_posix(), fx->dir, &l3) == EBUSY ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The lock creates no file in the directory. */
    char **names;
    size_t n;
    assert_int_equal(vfs->list(vfs, fx->dir, &names, &n), 0);
    assert_int_equal(n, 0);
    rlog_vfs_free_names(names, n);

    assert_int_equal(vfs->unlock(vfs, l1), 0);
    assert_int_equal(vfs->lock(vfs, fx->dir, &l2), 0);
    assert_int_equal(vfs->unlock(vfs, l2), 0);
    assert_int_equal(vfs->lock(vfs, tu_path(fx->dir, "missing"), &l2), ENOENT);
}

/* allocate extends the file to off+len (reserving the space) and never
 * shrinks it; truncate sets the size either way. */
static void test_allocate_truncate_size(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *f = tu_vfs_open(vfs, tu_path(fx->dir, "f"), RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    assert_int_equal(size_ok(vfs, f), 0);
    int err = vfs->allocate(vfs, f, 0, 1u << 20);
    if (err == EOPNOTSUPP) {
        assert_int_equal(vfs->close(vfs, f), 0);
        skip();
    }
    assert_int_equal(err, 0);
    assert_int_equal(size_ok(vfs, f), 1u << 20);
    assert_int_equal(vfs->allocate(vfs, f, 4096, 4096), 0); /* inside: no change */
    assert_int_equal(size_ok(vfs, f), 1u << 20);
    assert_int_equal(vfs->allocate(vfs, f, 100, 0), 0);
    assert_int_equal(size_ok(vfs, f), 1u << 20);

    /* Allocated space reads as zeros. */
    uint8_t got[64];
    size_t done;
    assert_int_equal(vfs->pread(vfs, f, got, sizeof got, 5000, &done), 0);
    assert_int_equal(done, sizeof got);
    for (size_t i = 0; i < sizeof got; i++)
        assert_int_equal(got[i], 0);

    assert_int_equal(vfs->truncate(vfs, f, 1234), 0);
    assert_int_equal(size_ok(vfs, f), 1234);
    assert_int_equal(vfs->truncate(vfs, f, 5000), 0);
    assert_int_equal(size_ok(vfs, f), 5000);
    assert_int_equal(tu_file_size(tu_path(fx->dir, "f")), 5000);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    assert_int_equal(vfs->fsync(vfs, f), 0);
    assert_int_equal(vfs->close(vfs, f), 0);
}

typedef struct writer_arg {
    rlog_vfs *vfs;
    rlog_file *f;
    unsigned id;
} writer_arg;

#define WRITERS       4
#define WRITER_BLOCKS 64
#define BLOCK         512

static void *writer_main(void *p)
{
    writer_arg *a = p;
    uint8_t buf[BLOCK];
    for (unsigned i = 0; i < WRITER_BLOCKS; i++) {
        uint64_t blk = (uint64_t)i * WRITERS + a->id;
        tu_fill(3, blk, buf, sizeof buf);
        size_t done = 0;
        if (a->vfs->pwrite(a->vfs, a->f, buf, sizeof buf, blk * BLOCK, &done) != 0 ||
            done != sizeof buf)
            return (void *)1;
        if (a->vfs->fdatasync(a->vfs, a->f) != 0)
            return (void *)1;
    }
    return NULL;
}

/* Several threads writing disjoint blocks of one file at once: positioned
 * I/O shares no offset, so every block lands where it was written. */
static void test_concurrent_pwrite_same_file(void **state)
{
    fixture *fx = *state;
    rlog_vfs *vfs = fx->vfs;
    rlog_file *f = tu_vfs_open(vfs, tu_path(fx->dir, "f"), RLOG_VFS_RDWR | RLOG_VFS_CREATE);
    pthread_t th[WRITERS];
    writer_arg args[WRITERS];
    for (unsigned i = 0; i < WRITERS; i++) {
        args[i] = (writer_arg){vfs, f, i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
    }
    for (unsigned i = 0; i < WRITERS; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    assert_int_equal(size_ok(vfs, f), (uint64_t)WRITERS * WRITER_BLOCKS * BLOCK);
    for (uint64_t blk = 0; blk < WRITERS * WRITER_BLOCKS; blk++) {
        uint8_t want[BLOCK], got[BLOCK];
        size_t done;
        tu_fill(3, blk, want, sizeof want);
        assert_int_equal(vfs->pread(vfs, f, got, sizeof got, blk * BLOCK, &done), 0);
        assert_int_equal(done, BLOCK);
        assert_memory_equal(got, want, BLOCK);
    }
    assert_int_equal(vfs->close(vfs, f), 0);
}

/* The posix tables are singletons whose destroy is a harmless no-op. */
static void test_singletons(void **state)
{
    (void)state;
    assert_ptr_equal(rlog_vfs_posix(), rlog_vfs_posix());
    assert_ptr_equal(rlog_env_posix(), rlog_env_posix());
    rlog_vfs_posix()->destroy(rlog_vfs_posix());
    rlog_env_posix()->destroy(rlog_env_posix());
    assert_non_null(rlog_vfs_posix()->open);
    assert_non_null(rlog_env_posix()->now_ns);
}

/* now_ns never goes back and advances across a sleep by at least the
 * sleep; random gives distinct values with both halves populated. */
static void test_env_clock_and_random(void **state)
{
    (void)state;
    rlog_env *env = rlog_env_posix();
    uint64_t prev = env->now_ns(env);
    for (int i = 0; i < 1000; i++) {
        uint64_t t = env->now_ns(env);
        assert_true(t >= prev);
        prev = t;
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_true(env->now_ns(env) - prev >= 5u * 1000 * 1000);

    enum { N = 256 };
    uint64_t v[N], or_hi = 0, or_lo = 0;
    for (int i = 0; i < N; i++) {
        v[i] = env->random(env);
        or_hi |= v[i] >> 32;
        or_lo |= v[i] & 0xffffffffu;
        for (int j = 0; j < i; j++)
            assert_true(v[i] != v[j]);
    }
    assert_int_equal(or_hi, 0xffffffffu);
    assert_int_equal(or_lo, 0xffffffffu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pwrite_pread_round_trip_at_offsets),
        cmocka_unit_test(test_large_write_round_trip),
        cmocka_unit_test(test_pread_short_at_eof),
        cmocka_unit_test(test_open_flags),
        cmocka_unit_test(test_create_mode),
        cmocka_unit_test(test_descriptors_are_cloexec),
        cmocka_unit_test(test_list_contents),
        cmocka_unit_test(test_rename_replaces),
        cmocka_unit_test(test_unlink_then_list),
        cmocka_unit_test(test_mkdir_and_sync_dir),
        cmocka_unit_test(test_lock_excludes_until_unlock),
        cmocka_unit_test(test_allocate_truncate_size),
        cmocka_unit_test(test_concurrent_pwrite_same_file),
        TU_NO_FIXTURE(test_singletons),
        TU_NO_FIXTURE(test_env_clock_and_random),
    };
    return TU_RUN("vfs_posix", tests, setup, tu_dir_teardown);
}
