/* os/install.c, the one durable install and its failure policy, over the
 * posix vfs wrapped by the fault vfs: success puts the new bytes at the
 * final name and leaves no temporary file; a fault up to the rename
 * (fdatasync, rename) is RLG_OS_FAILED with the old file intact and the
 * temporary file gone; a failed directory fsync after the rename is
 * RLG_OS_FATAL; the unlink and rename helpers sync the directory; a move
 * into another directory syncs both (a copy across file systems). What is
 * on disk is checked behind the vfs's back (tu_* helpers). */
#include "util/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/install.h"

typedef tu_dir_fx fixture; /* dir, vfs: the fault wrapper over posix */

static void fail_next(rlog_vfs *vfs, rlog_vfs_op op)
{
    rlog_fault f = {op, 0, 1, EIO, SIZE_MAX, NULL};
    assert_true(rlog_vfs_fault_add(vfs, &f) > 0);
}

/* Creates tmp holding `text` through the vfs; returns it open. */
static rlog_file *temp_with(rlog_vfs *v, const char *tmp, const char *text)
{
    rlog_file *f = NULL;
    assert_int_equal(v->open(v, tmp, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f), 0);
    size_t done = 0;
    assert_int_equal(v->pwrite(v, f, text, strlen(text), 0, &done), 0);
    assert_int_equal(done, strlen(text));
    return f;
}

/* An install's two names in the fixture's directory: DIR/NAME.tmp, the
 * temporary file written first, and DIR/NAME, the final one. */
typedef struct install_names {
    char tmp[512], path[512];
} install_names;

static install_names names_of(const fixture *fx, const char *name)
{
    install_names n;
    snprintf(n.tmp, sizeof n.tmp, "%s/%s.tmp", fx->dir, name);
    snprintf(n.path, sizeof n.path, "%s/%s", fx->dir, name);
    return n;
}

/* The final file holds exactly `text`. */
static void holds(const char *path, const char *text)
{
    void *data = NULL;
    size_t len = 0;
    tu_read_file(path, &data, &len);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(data, text, len);
    free(data);
}

static void test_install_ok(void **state)
{
    fixture *fx = *state;
    install_names n = names_of(fx, "x");
    tu_write_file(n.path, "old", 3);
    uint64_t syncs0 = rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR);
    rlg_os_fail fail;
    rlog_file *f = temp_with(fx->vfs, n.tmp, "new bytes");
    assert_int_equal(rlg_install(fx->vfs, fx->dir, f, n.tmp, n.path, 0, &fail), RLG_OS_OK);
    holds(n.path, "new bytes");
    assert_int_equal(tu_file_size(n.tmp), -1);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_FDATASYNC), 1);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), syncs0 + 1);
}

/* A fault before or at the rename: FAILED, old file intact, no temp. */
static void failed_before_rename(fixture *fx, rlog_vfs_op op, const char *what)
{
    install_names n = names_of(fx, "y");
    tu_write_file(n.path, "old", 3);
    rlog_file *f = temp_with(fx->vfs, n.tmp, "new bytes");
    fail_next(fx->vfs, op);
    rlg_os_fail fail;
    assert_int_equal(rlg_install(fx->vfs, fx->dir, f, n.tmp, n.path, 0, &fail), RLG_OS_FAILED);
    assert_int_equal(fail.err, EIO);
    assert_non_null(strstr(fail.what, what));
    holds(n.path, "old");
    assert_int_equal(tu_file_size(n.tmp), -1); /* a temp never survives a failed install */
    rlog_vfs_fault_clear(fx->vfs);
}

static void test_install_fdatasync_fails(void **state)
{
    failed_before_rename(*state, RLOG_OP_FDATASYNC, "fdatasync");
}

static void test_install_rename_fails(void **state)
{
    failed_before_rename(*state, RLOG_OP_RENAME, "renaming");
}

/* The rename happened, the directory fsync failed: FATAL (poison). */
static void test_install_sync_dir_fails(void **state)
{
    fixture *fx = *state;
    install_names n = names_of(fx, "z");
    rlog_file *f = temp_with(fx->vfs, n.tmp, "new");
    fail_next(fx->vfs, RLOG_OP_SYNC_DIR);
    rlg_os_fail fail;
    assert_int_equal(rlg_install(fx->vfs, fx->dir, f, n.tmp, n.path, RLG_INSTALL_FSYNC, &fail),
                     RLG_OS_FATAL);
    assert_non_null(strstr(fail.what, "directory fsync"));
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_FSYNC), 1); /* FSYNC flag: fsync */
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_FDATASYNC), 0);
    holds(n.path, "new");
}

static void test_unlink_and_rename_synced(void **state)
{
    fixture *fx = *state;
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a", fx->dir);
    snprintf(b, sizeof b, "%s/b", fx->dir);
    tu_write_file(a, "A", 1);
    rlg_os_fail fail;
    uint64_t s0 = rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR);
    assert_int_equal(rlg_rename_synced(fx->vfs, fx->dir, a, b, &fail), RLG_OS_OK);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), s0 + 1);
    holds(b, "A");
    assert_int_equal(rlg_unlink_synced(fx->vfs, fx->dir, b, &fail), RLG_OS_OK);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), s0 + 2);
    assert_int_equal(tu_file_size(b), -1);
    /* a missing file: nothing to remove, nothing synced */
    assert_int_equal(rlg_unlink_synced(fx->vfs, fx->dir, b, &fail), RLG_OS_OK);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), s0 + 2);
    /* unlink fails: FAILED; the directory fsync after it fails: FATAL */
    tu_write_file(a, "A", 1);
    fail_next(fx->vfs, RLOG_OP_UNLINK);
    assert_int_equal(rlg_unlink_synced(fx->vfs, fx->dir, a, &fail), RLG_OS_FAILED);
    rlog_vfs_fault_clear(fx->vfs);
    fail_next(fx->vfs, RLOG_OP_SYNC_DIR);
    assert_int_equal(rlg_unlink_synced(fx->vfs, fx->dir, a, &fail), RLG_OS_FATAL);
    assert_int_equal(tu_file_size(a), -1);
}

/* Moving into another directory: the rename, then the fsync of the
 * destination directory before the source's; across file systems (EXDEV)
 * a copy fsynced, the destination synced, the source unlinked and its
 * directory synced; a copy that fails leaves the source and no partial
 * copy. */
static void test_move_synced(void **state)
{
    fixture *fx = *state;
    char sub[512], a[512], to[600];
    snprintf(sub, sizeof sub, "%s/backup", fx->dir);
    snprintf(a, sizeof a, "%s/a", fx->dir);
    snprintf(to, sizeof to, "%s/a", sub);
    assert_int_equal(fx->vfs->mkdir(fx->vfs, sub), 0);
    tu_write_file(a, "moved", 5);
    rlg_os_fail fail;
    uint64_t s0 = rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR);
    assert_int_equal(rlg_move_synced(fx->vfs, fx->dir, a, sub, to, &fail), RLG_OS_OK);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), s0 + 2);
    holds(to, "moved");
    assert_int_equal(tu_file_size(a), -1);
    /* another file system: copied, synced, the source removed */
    assert_int_equal(fx->vfs->unlink(fx->vfs, to), 0);
    tu_write_file(a, "copied", 6);
    rlog_fault x = {RLOG_OP_RENAME, 0, 1, EXDEV, SIZE_MAX, NULL};
    assert_true(rlog_vfs_fault_add(fx->vfs, &x) > 0);
    uint64_t f0 = rlog_vfs_fault_calls(fx->vfs, RLOG_OP_FSYNC);
    s0 = rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR);
    assert_int_equal(rlg_move_synced(fx->vfs, fx->dir, a, sub, to, &fail), RLG_OS_OK);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_FSYNC), f0 + 1);
    assert_int_equal(rlog_vfs_fault_calls(fx->vfs, RLOG_OP_SYNC_DIR), s0 + 2);
    holds(to, "copied");
    assert_int_equal(tu_file_size(a), -1);
    rlog_vfs_fault_clear(fx->vfs);
    /* the copy's write fails: FAILED, the source intact, no partial copy */
    assert_int_equal(fx->vfs->unlink(fx->vfs, to), 0);
    tu_write_file(a, "kept", 4);
    assert_true(rlog_vfs_fault_add(fx->vfs, &x) > 0);
    fail_next(fx->vfs, RLOG_OP_PWRITE);
    assert_int_equal(rlg_move_synced(fx->vfs, fx->dir, a, sub, to, &fail), RLG_OS_FAILED);
    assert_int_equal(fail.err, EIO);
    assert_non_null(strstr(fail.what, "writing"));
    holds(a, "kept");
    assert_int_equal(tu_file_size(to), -1);
    rlog_vfs_fault_clear(fx->vfs);
    /* the destination's directory fsync fails after the rename: FATAL */
    fail_next(fx->vfs, RLOG_OP_SYNC_DIR);
    assert_int_equal(rlg_move_synced(fx->vfs, fx->dir, a, sub, to, &fail), RLG_OS_FATAL);
    assert_non_null(strstr(fail.what, "directory fsync"));
    holds(to, "kept");
    rlog_vfs_fault_clear(fx->vfs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_ok),
        cmocka_unit_test(test_install_fdatasync_fails),
        cmocka_unit_test(test_install_rename_fails),
        cmocka_unit_test(test_install_sync_dir_fails),
        cmocka_unit_test(test_move_synced),
        cmocka_unit_test(test_unlink_and_rename_synced),
    };
    return TU_RUN("os_install", tests, tu_fault_setup, tu_fault_teardown);
}
