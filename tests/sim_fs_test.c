/*
 * The simulated file system (sim/simfs.c): each test checks one property of
 * the model in include/rlog/sim.h, over many seeds where the property is
 * about what a crash may do.
 */
#include "util/testutil.h"

#include "rlog/sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEDS 200

static rlog_vfs *fs_new_cfg(const rlog_simfs_config *cfg)
{
    return tu_simfs_new(cfg, "/d");
}

static rlog_vfs *fs_new(uint64_t seed)
{
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, seed);
    return fs_new_cfg(&cfg);
}

static rlog_file *fopen_rw(rlog_vfs *vfs, const char *path)
{
    return tu_vfs_open(vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE);
}

/* Creates `path` with `len` bytes of `byte`, synced and its entry synced. */
static void make_durable_file(rlog_vfs *vfs, const char *path, int byte, size_t len)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, byte, len);
    rlog_file *f = fopen_rw(vfs, path);
    tu_vfs_write(vfs, f, buf, len, 0);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    assert_int_equal(vfs->close(vfs, f), 0);
    assert_int_equal(vfs->sync_dir(vfs, "/d"), 0);
    free(buf);
}

/* Reads the file; returns -1 (and no data) when it does not exist. */
static long fs_get(rlog_vfs *vfs, const char *path, int durable, uint8_t **data)
{
    void *p = NULL;
    size_t len = 0;
    int err = rlog_simfs_read(vfs, path, durable, &p, &len);
    if (err == ENOENT) {
        *data = NULL;
        return -1;
    }
    assert_int_equal(err, 0);
    *data = p;
    return (long)len;
}

static int all_bytes(const uint8_t *p, size_t len, int byte)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)byte)
            return 0;
    return 1;
}

/* Data made durable by fdatasync and an entry made durable by sync_dir
 * survive every power loss, whatever else was pending. */
static void test_synced_survives_power_loss(void **state)
{
    (void)state;
    uint8_t buf[10000];
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_vfs *vfs = fs_new(seed);
        tu_fill(seed, 1, buf, sizeof buf);
        rlog_file *f = fopen_rw(vfs, "/d/f");
        tu_vfs_write(vfs, f, buf, sizeof buf, 0);
        assert_int_equal(vfs->fdatasync(vfs, f), 0);
        assert_int_equal(vfs->sync_dir(vfs, "d"), 0);
        /* more, unsynced, in another file */
        rlog_file *g = fopen_rw(vfs, "/d/g");
        tu_vfs_write(vfs, g, buf, 100, 0);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        uint8_t *got;
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), (long)sizeof buf);
        assert_memory_equal(got, buf, sizeof buf);
        free(got);
        assert_int_equal(fs_get(vfs, "/d/f", 1, &got), (long)sizeof buf);
        assert_memory_equal(got, buf, sizeof buf);
        free(got);
        vfs->destroy(vfs);
    }
}

/* Unsynced writes always survive a process crash; a power loss loses them
 * for some seeds and keeps them for others. */
static void test_unsynced_crash_vs_power_loss(void **state)
{
    (void)state;
    uint8_t buf[4096];
    memset(buf, 0xBB, sizeof buf);
    int lost = 0, kept = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, seed);
        cfg.torn_ppm = 0;
        rlog_vfs *vfs = fs_new_cfg(&cfg);
        make_durable_file(vfs, "/d/f", 0xAA, 4096);
        rlog_file *f = fopen_rw(vfs, "/d/f");
        tu_vfs_write(vfs, f, buf, sizeof buf, 0);
        rlog_simfs_crash(vfs);
        uint8_t *got;
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4096);
        assert_memory_equal(got, buf, sizeof buf);
        free(got);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4096);
        if (all_bytes(got, 4096, 0xBB))
            kept++;
        else if (all_bytes(got, 4096, 0xAA))
            lost++;
        else
            fail_msg("seed %llu: neither old nor new without tearing", (unsigned long long)seed);
        free(got);
        vfs->destroy(vfs);
    }
    assert_true(lost > 0);
    assert_true(kept > 0);
}

/* Unsynced writes are kept or lost independently: a later write survives
 * an earlier lost one for some seed. Without tearing each sector is old or
 * new. */
static void test_power_loss_reorders(void **state)
{
    (void)state;
    uint8_t a[4096], b[4096];
    memset(a, 0x11, sizeof a);
    memset(b, 0x22, sizeof b);
    int reordered = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, seed);
        cfg.torn_ppm = 0;
        rlog_vfs *vfs = fs_new_cfg(&cfg);
        make_durable_file(vfs, "/d/f", 0, 8192);
        rlog_file *f = fopen_rw(vfs, "/d/f");
        tu_vfs_write(vfs, f, a, sizeof a, 0);    /* earlier */
        tu_vfs_write(vfs, f, b, sizeof b, 4096); /* later */
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        uint8_t *got;
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 8192);
        assert_true(all_bytes(got, 4096, 0x11) || all_bytes(got, 4096, 0));
        assert_true(all_bytes(got + 4096, 4096, 0x22) || all_bytes(got + 4096, 4096, 0));
        if (all_bytes(got, 4096, 0) && all_bytes(got + 4096, 4096, 0x22))
            reordered++;
        free(got);
        vfs->destroy(vfs);
    }
    assert_true(reordered > 0);
}

/* A torn write is a sector-grain mixture of old, new, zero and garbage:
 * never a mixture within a sector piece. */
static void test_torn_sector_grain(void **state)
{
    (void)state;
    enum { SS = 512, OFF = 256, LEN = 8 * SS };
    uint8_t nw[LEN];
    memset(nw, 0xBB, sizeof nw);
    int seen[4] = {0}; /* old, new, zero, garbage */
    int mixed_writes = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, seed);
        cfg.sector_size = SS;
        cfg.keep_unsynced_ppm = 1000000;
        cfg.torn_ppm = 1000000;
        rlog_vfs *vfs = fs_new_cfg(&cfg);
        make_durable_file(vfs, "/d/f", 0xAA, 10 * SS);
        rlog_file *f = fopen_rw(vfs, "/d/f");
        tu_vfs_write(vfs, f, nw, LEN, OFF);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_TORN), 1);
        uint8_t *got;
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 10 * SS);
        assert_true(all_bytes(got, OFF, 0xAA));
        assert_true(all_bytes(got + OFF + LEN, 10 * SS - OFF - LEN, 0xAA));
        int kinds = 0;
        for (size_t pos = OFF; pos < OFF + LEN;) {
            size_t next = (pos / SS + 1) * SS;
            if (next > OFF + LEN)
                next = OFF + LEN;
            const uint8_t *p = got + pos;
            size_t n = next - pos;
            int kind;
            if (all_bytes(p, n, 0xAA)) {
                kind = 0;
            } else if (all_bytes(p, n, 0xBB)) {
                kind = 1;
            } else if (all_bytes(p, n, 0)) {
                kind = 2;
            } else {
                /* garbage: random bytes, not a partial old/new/zero piece */
                size_t same_old = 0, same_new = 0;
                for (size_t i = 0; i < n; i++) {
                    same_old += p[i] == 0xAA;
                    same_new += p[i] == 0xBB;
                }
                assert_true(same_old < n / 4 && same_new < n / 4);
                kind = 3;
            }
            seen[kind]++;
            kinds |= 1 << kind;
            pos = next;
        }
        if (kinds & (kinds - 1))
            mixed_writes++;
        free(got);
        vfs->destroy(vfs);
    }
    for (int k = 0; k < 4; k++)
        assert_true(seen[k] > 0);
    assert_true(mixed_writes > 0);
}

/* A new file whose entry was not synced may vanish at power loss (always,
 * when no directory operation is kept), even though its data was synced;
 * after sync_dir it always stays. */
static void test_create_needs_sync_dir(void **state)
{
    (void)state;
    uint8_t buf[100];
    memset(buf, 7, sizeof buf);
    int vanished = 0, stayed = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        for (int mode = 0; mode < 3; mode++) {
            rlog_simfs_config cfg;
            rlog_simfs_config_init(&cfg, seed);
            if (mode == 0)
                cfg.keep_dirop_ppm = 0;
            rlog_vfs *vfs = fs_new_cfg(&cfg);
            rlog_file *f = fopen_rw(vfs, "/d/f");
            tu_vfs_write(vfs, f, buf, sizeof buf, 0);
            assert_int_equal(vfs->fsync(vfs, f), 0);
            if (mode == 2)
                assert_int_equal(vfs->sync_dir(vfs, "/d"), 0);
            assert_int_equal(rlog_simfs_power_loss(vfs), 0);
            uint8_t *got;
            long n = fs_get(vfs, "/d/f", 0, &got);
            if (mode == 0)
                assert_int_equal(n, -1);
            if (mode == 2) {
                assert_int_equal(n, (long)sizeof buf);
                assert_memory_equal(got, buf, sizeof buf);
            }
            if (mode == 1) {
                if (n < 0) {
                    vanished++;
                } else {
                    assert_int_equal(n, (long)sizeof buf);
                    stayed++;
                }
            }
            free(got);
            vfs->destroy(vfs);
        }
    }
    assert_true(vanished > 0 && stayed > 0);
}

/* rename is atomic across power loss: exactly one of the names exists,
 * with its full content; both outcomes occur. Replacing an existing file
 * leaves the target with the old or the new content, whole. */
static void test_rename_atomic(void **state)
{
    (void)state;
    int old_name = 0, new_name = 0, replaced = 0, not_replaced = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        rlog_vfs *vfs = fs_new(seed);
        make_durable_file(vfs, "/d/a", 0xA1, 5000);
        make_durable_file(vfs, "/d/x", 0xC1, 3000);
        make_durable_file(vfs, "/d/y", 0xC2, 7000);
        assert_int_equal(vfs->rename(vfs, "/d/a", "/d/b"), 0);
        assert_int_equal(vfs->rename(vfs, "/d/x", "/d/y"), 0);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        uint8_t *pa, *pb;
        long na = fs_get(vfs, "/d/a", 0, &pa), nb = fs_get(vfs, "/d/b", 0, &pb);
        assert_true((na < 0) != (nb < 0));
        if (na >= 0) {
            assert_true(na == 5000 && all_bytes(pa, 5000, 0xA1));
            old_name++;
        } else {
            assert_true(nb == 5000 && all_bytes(pb, 5000, 0xA1));
            new_name++;
        }
        free(pa);
        free(pb);
        uint8_t *px, *py;
        long nx = fs_get(vfs, "/d/x", 0, &px), ny = fs_get(vfs, "/d/y", 0, &py);
        assert_true(ny >= 0);
        if (ny == 3000 && all_bytes(py, 3000, 0xC1)) {
            assert_int_equal(nx, -1);
            replaced++;
        } else {
            assert_true(ny == 7000 && all_bytes(py, 7000, 0xC2));
            assert_true(nx == 3000 && all_bytes(px, 3000, 0xC1));
            not_replaced++;
        }
        free(px);
        free(py);
        vfs->destroy(vfs);
    }
    assert_true(old_name && new_name && replaced && not_replaced);
}

/* A rename between directories is durable only once both are synced. */
static void test_cross_dir_rename(void **state)
{
    (void)state;
    for (int both = 0; both < 2; both++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, 11);
        cfg.keep_dirop_ppm = 0;
        rlog_vfs *vfs = fs_new_cfg(&cfg);
        assert_int_equal(vfs->mkdir(vfs, "/e"), 0);
        make_durable_file(vfs, "/d/a", 0xA1, 100);
        assert_int_equal(vfs->rename(vfs, "/d/a", "/e/b"), 0);
        assert_int_equal(vfs->sync_dir(vfs, "/e"), 0);
        if (both)
            assert_int_equal(vfs->sync_dir(vfs, "/d"), 0);
        rlog_simfs_crash(vfs); /* keeps the pending operations */
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        uint8_t *pa, *pb;
        long na = fs_get(vfs, "/d/a", 0, &pa), nb = fs_get(vfs, "/e/b", 0, &pb);
        assert_int_equal(na, both ? -1 : 100);
        assert_int_equal(nb, both ? 100 : -1);
        free(pa);
        free(pb);
        vfs->destroy(vfs);
    }
}

/* A directory fsync that failed with drop-dirty discards the directory's
 * pending operations: the namespace reads see keeps them, the disk never
 * gets them, and a retried sync_dir that "succeeds" covers only the
 * operations made after the failure. A plain EIO on sync_dir leaves them
 * pending, so the retry makes them durable. Every power loss keeps any
 * operation still pending (keep_dirop_ppm 1,000,000): what is missing was
 * discarded. */
static void test_sync_drop_dir(void **state)
{
    (void)state;
    for (int drop = 0; drop < 2; drop++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, 3);
        cfg.keep_dirop_ppm = 1000000;
        rlog_vfs *vfs = fs_new_cfg(&cfg);
        make_durable_file(vfs, "/d/old", 0xAA, 100);
        rlog_file *f = fopen_rw(vfs, "/d/a"); /* create a, rename old -> b */
        assert_int_equal(vfs->fsync(vfs, f), 0);
        assert_int_equal(vfs->close(vfs, f), 0);
        assert_int_equal(vfs->rename(vfs, "/d/old", "/d/b"), 0);
        uint64_t nth = rlog_simfs_calls(vfs, RLOG_OP_SYNC_DIR) + 1;
        rlog_simfs_fault kind = drop ? RLOG_SIMFS_FAULT_SYNC_DROP : RLOG_SIMFS_FAULT_EIO;
        assert_int_equal(rlog_simfs_schedule_fault(vfs, kind, RLOG_OP_SYNC_DIR, nth), 0);
        assert_int_equal(vfs->sync_dir(vfs, "/d"), EIO);
        f = fopen_rw(vfs, "/d/c"); /* made after the failure */
        assert_int_equal(vfs->fsync(vfs, f), 0);
        assert_int_equal(vfs->close(vfs, f), 0);
        assert_int_equal(vfs->sync_dir(vfs, "/d"), 0); /* the retry "succeeds" */
        assert_int_equal(rlog_simfs_faults(vfs, kind), 1);
        uint8_t *got = NULL;
        assert_int_equal(fs_get(vfs, "/d/b", 0, &got), 100); /* reads see it */
        free(got);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        assert_int_equal(fs_get(vfs, "/d/c", 0, &got), 0);
        free(got);
        assert_int_equal(fs_get(vfs, "/d/a", 0, &got), drop ? -1 : 0);
        free(got);
        assert_int_equal(fs_get(vfs, "/d/b", 0, &got), drop ? -1 : 100);
        free(got);
        assert_int_equal(fs_get(vfs, "/d/old", 0, &got), drop ? 100 : -1);
        free(got);
        vfs->destroy(vfs);
    }
}

/* An fdatasync that failed with drop-dirty loses the data at power loss,
 * even though a retried fdatasync returned 0 and reads still see it. */
static void test_sync_drop_loses_data(void **state)
{
    (void)state;
    uint8_t buf[4096];
    memset(buf, 0xBB, sizeof buf);
    for (uint64_t seed = 1; seed <= 50; seed++) {
        rlog_simfs_config cfg;
        rlog_simfs_config_init(&cfg, seed);
        cfg.keep_unsynced_ppm = 1000000; /* would keep anything still pending */
        rlog_vfs *vfs = fs_new_cfg(&cfg);
        make_durable_file(vfs, "/d/f", 0xAA, 4096);
        rlog_file *f = fopen_rw(vfs, "/d/f");
        tu_vfs_write(vfs, f, buf, sizeof buf, 0);
        uint64_t nth = rlog_simfs_calls(vfs, RLOG_OP_FDATASYNC) + 1;
        assert_int_equal(
            rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_FDATASYNC, nth), 0);
        assert_int_equal(vfs->fdatasync(vfs, f), EIO);
        assert_int_equal(vfs->fdatasync(vfs, f), 0); /* the retry "succeeds" */
        assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_SYNC_DROP), 1);
        uint8_t *got;
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4096);
        assert_true(all_bytes(got, 4096, 0xBB)); /* the page cache still has it */
        free(got);
        assert_int_equal(fs_get(vfs, "/d/f", 1, &got), 4096);
        assert_true(all_bytes(got, 4096, 0xAA)); /* the disk never got it */
        free(got);
        assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4096);
        assert_true(all_bytes(got, 4096, 0xAA));
        free(got);
        vfs->destroy(vfs);
    }
}

/* lock: EBUSY for a second holder; released by a crash (the old handle
 * then gets EIO) and by unlock. */
static void test_lock(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(1);
    rlog_file *l1, *l2, *l3;
    assert_int_equal(vfs->lock(vfs, "/d", &l1), 0);
    assert_int_equal(vfs->lock(vfs, "/d/", &l2), EBUSY);
    assert_int_equal(vfs->lock(vfs, "/nope", &l2), ENOENT);
    rlog_simfs_crash(vfs);
    assert_int_equal(vfs->lock(vfs, "/d", &l2), 0);
    assert_int_equal(vfs->lock(vfs, "/d", &l3), EBUSY);
    assert_int_equal(vfs->unlock(vfs, l1), EIO); /* dead handle: freed, lock untouched */
    assert_int_equal(vfs->lock(vfs, "/d", &l3), EBUSY);
    assert_int_equal(vfs->unlock(vfs, l2), 0);
    assert_int_equal(vfs->lock(vfs, "/d", &l3), 0);
    assert_int_equal(rlog_simfs_power_loss(vfs), 0);
    assert_int_equal(vfs->lock(vfs, "/d", &l1), 0);
    /* l3 (dead) is never unlocked: destroy frees it */
    vfs->destroy(vfs);
}

/* A fault scheduled on the Nth call of an op strikes exactly that call,
 * and is counted. */
static void test_scheduled_faults(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(3);
    uint8_t buf[64] = {1};
    size_t done;
    rlog_file *f = fopen_rw(vfs, "/d/f");
    uint64_t w = rlog_simfs_calls(vfs, RLOG_OP_PWRITE);
    assert_int_equal(rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_EIO, RLOG_OP_PWRITE, w + 3),
                     0);
    assert_int_equal(rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_PWRITE, w + 4),
                     0);
    assert_int_equal(rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_EIO, RLOG_OP_PWRITE, w),
                     EINVAL);
    assert_int_equal(
        rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_PWRITE, w + 9), EINVAL);
    int expect[5] = {0, 0, EIO, ENOSPC, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(vfs->pwrite(vfs, f, buf, sizeof buf, (uint64_t)i * 64, &done), expect[i]);
        assert_int_equal(done, expect[i] ? 0 : sizeof buf);
    }
    uint64_t size;
    assert_int_equal(vfs->size(vfs, f, &size), 0);
    assert_int_equal(size, 5 * 64); /* the failed calls changed nothing... */
    uint8_t *got;
    assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 5 * 64);
    assert_int_equal(got[2 * 64], 0); /* ...their range is a hole */
    assert_int_equal(got[4 * 64], 1);
    free(got);
    /* ENOSPC on the 2nd open from now */
    uint64_t o = rlog_simfs_calls(vfs, RLOG_OP_OPEN);
    assert_int_equal(rlog_simfs_schedule_fault(vfs, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_OPEN, o + 2),
                     0);
    rlog_file *g;
    assert_int_equal(vfs->open(vfs, "/d/g", RLOG_VFS_RDWR | RLOG_VFS_CREATE, &g), 0);
    assert_int_equal(vfs->open(vfs, "/d/h", RLOG_VFS_RDWR | RLOG_VFS_CREATE, &g), ENOSPC);
    assert_int_equal(fs_get(vfs, "/d/h", 0, &got), -1);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_EIO), 1);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_ENOSPC), 2);
    /* probability 1: every fsync fails; suspended: none */
    assert_int_equal(rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_EIO, RLOG_OP_FSYNC, 1000000), 0);
    assert_int_equal(vfs->fsync(vfs, f), EIO);
    assert_int_equal(vfs->fsync(vfs, f), EIO);
    rlog_simfs_enable_faults(vfs, 0);
    assert_int_equal(vfs->fsync(vfs, f), 0);
    rlog_simfs_enable_faults(vfs, 1);
    assert_int_equal(vfs->fsync(vfs, f), EIO);
    rlog_simfs_clear_faults(vfs);
    assert_int_equal(vfs->fsync(vfs, f), 0);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_EIO), 4);
    vfs->destroy(vfs);
}

/* A latent sector error fails every read touching the sector, across
 * crashes, until the sector is rewritten. */
static void test_latent_sticky(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(4);
    make_durable_file(vfs, "/d/f", 0x5A, 3 * 4096);
    assert_int_equal(rlog_simfs_add_latent(vfs, "/d/f", 4096 + 100, 1), 0);
    rlog_file *f = fopen_rw(vfs, "/d/f");
    uint8_t buf[4096];
    size_t done;
    assert_int_equal(vfs->pread(vfs, f, buf, 4096, 0, &done), 0);
    assert_int_equal(done, 4096);
    assert_int_equal(vfs->pread(vfs, f, buf, 10, 8192 - 5, &done), EIO);
    assert_int_equal(done, 0);
    assert_int_equal(vfs->pread(vfs, f, buf, 1, 4096, &done), EIO);
    assert_int_equal(vfs->pread(vfs, f, buf, 4096, 8192, &done), 0);
    assert_int_equal(rlog_simfs_power_loss(vfs), 0);
    f = fopen_rw(vfs, "/d/f");
    assert_int_equal(vfs->pread(vfs, f, buf, 1, 5000, &done), EIO);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_LATENT_READ), 3);
    memset(buf, 0x77, sizeof buf);
    tu_vfs_write(vfs, f, buf, 16, 4096 + 8);
    assert_int_equal(vfs->pread(vfs, f, buf, 4096, 4096, &done), 0);
    assert_int_equal(done, 4096);
    assert_int_equal(buf[8], 0x77);
    assert_int_equal(buf[0], 0x5A);
    /* by probability on read, it strikes the range read and sticks */
    assert_int_equal(rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_LATENT, RLOG_OP_PREAD, 1000000), 0);
    assert_int_equal(vfs->pread(vfs, f, buf, 1, 2 * 4096, &done), EIO);
    rlog_simfs_clear_faults(vfs);
    assert_int_equal(vfs->pread(vfs, f, buf, 1, 2 * 4096, &done), 0);
    vfs->destroy(vfs);
}

/* Handles opened before a crash return EIO for every call, even when their
 * file is gone; the ones never closed are freed by destroy (ASan). */
static void test_old_handles_eio(void **state)
{
    (void)state;
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, 5);
    cfg.keep_dirop_ppm = 0;
    rlog_vfs *vfs = fs_new_cfg(&cfg);
    uint8_t buf[16] = {0};
    size_t done = 99;
    uint64_t size;
    make_durable_file(vfs, "/d/keep", 1, 100);
    rlog_file *f = fopen_rw(vfs, "/d/keep");
    rlog_file *g = fopen_rw(vfs, "/d/lost"); /* entry never synced */
    rlog_file *h = fopen_rw(vfs, "/d/keep");
    for (int round = 0; round < 2; round++) {
        if (round == 0)
            rlog_simfs_crash(vfs);
        else
            assert_int_equal(rlog_simfs_power_loss(vfs), 0);
        rlog_file *hs[2] = {f, g};
        for (int i = 0; i < 2; i++) {
            rlog_file *x = hs[i];
            assert_int_equal(vfs->pread(vfs, x, buf, sizeof buf, 0, &done), EIO);
            assert_int_equal(done, 0);
            assert_int_equal(vfs->pwrite(vfs, x, buf, sizeof buf, 0, &done), EIO);
            assert_int_equal(vfs->fdatasync(vfs, x), EIO);
            assert_int_equal(vfs->fsync(vfs, x), EIO);
            assert_int_equal(vfs->truncate(vfs, x, 0), EIO);
            assert_int_equal(vfs->allocate(vfs, x, 0, 10), EIO);
            assert_int_equal(vfs->size(vfs, x, &size), EIO);
        }
    }
    uint8_t *got;
    assert_int_equal(fs_get(vfs, "/d/lost", 0, &got), -1);
    assert_int_equal(fs_get(vfs, "/d/keep", 0, &got), 100);
    free(got);
    assert_int_equal(vfs->close(vfs, f), EIO); /* frees it */
    (void)h;                                   /* g and h: freed by destroy */
    vfs->destroy(vfs);
}

/* A handle keeps working after its file is unlinked; the inode goes when
 * the last handle closes. */
static void test_unlink_while_open(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(6);
    rlog_file *f = fopen_rw(vfs, "/d/f");
    tu_vfs_write(vfs, f, "hello", 5, 0);
    assert_int_equal(vfs->unlink(vfs, "/d/f"), 0);
    assert_int_equal(vfs->unlink(vfs, "/d/f"), ENOENT);
    tu_vfs_write(vfs, f, "world", 5, 5);
    char buf[10];
    size_t done;
    assert_int_equal(vfs->pread(vfs, f, buf, 10, 0, &done), 0);
    assert_int_equal(done, 10);
    assert_memory_equal(buf, "helloworld", 10);
    char **names;
    size_t n;
    assert_int_equal(vfs->list(vfs, "/d", &names, &n), 0);
    assert_int_equal(n, 0);
    rlog_vfs_free_names(names, n);
    assert_int_equal(vfs->close(vfs, f), 0);
    assert_int_equal(vfs->list(vfs, "/x", &names, &n), ENOENT);
    vfs->destroy(vfs);
}

/* Misdirected and lost writes succeed and read back right from the page
 * cache, but the disk has something else. */
static void test_misdirected_and_lost_writes(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(7);
    make_durable_file(vfs, "/d/f", 0xAA, 4 * 4096);
    rlog_file *f = fopen_rw(vfs, "/d/f");
    uint8_t buf[4096];
    memset(buf, 0xBB, sizeof buf);
    assert_int_equal(rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_MISDIRECT, RLOG_OP_PWRITE, 1000000),
                     0);
    tu_vfs_write(vfs, f, buf, sizeof buf, 4096);
    rlog_simfs_clear_faults(vfs);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    uint8_t *got;
    assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4 * 4096);
    assert_true(all_bytes(got + 4096, 4096, 0xBB));
    free(got);
    assert_int_equal(rlog_simfs_drop_caches(vfs), 0);
    assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4 * 4096);
    assert_true(all_bytes(got + 4096, 4096, 0xAA)); /* not where it was meant to go */
    int elsewhere = 0;
    for (int s = 0; s < 4; s++)
        elsewhere += s != 1 && all_bytes(got + s * 4096, 4096, 0xBB);
    assert_int_equal(elsewhere, 1);
    free(got);
    /* lost: nothing reaches the disk */
    assert_int_equal(
        rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_LOST_WRITE, RLOG_OP_PWRITE, 1000000), 0);
    memset(buf, 0xCC, sizeof buf);
    tu_vfs_write(vfs, f, buf, sizeof buf, 3 * 4096);
    rlog_simfs_clear_faults(vfs);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    assert_int_equal(rlog_simfs_power_loss(vfs), 0);
    assert_int_equal(fs_get(vfs, "/d/f", 0, &got), 4 * 4096);
    assert_false(all_bytes(got + 3 * 4096, 4096, 0xCC));
    free(got);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_MISDIRECT), 1);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_LOST_WRITE), 1);
    vfs->destroy(vfs);
}

/* Short writes write a strict prefix and fail; the capacity limit fails a
 * write with ENOSPC after writing what fits; bit rot flips exactly one bit
 * in both copies. */
static void test_short_write_capacity_bitrot(void **state)
{
    (void)state;
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, 8);
    cfg.capacity = 10000;
    rlog_vfs *vfs = fs_new_cfg(&cfg);
    rlog_file *f = fopen_rw(vfs, "/d/f");
    uint8_t buf[8192];
    memset(buf, 0x42, sizeof buf);
    size_t done;
    assert_int_equal(
        rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_OP_PWRITE, 1000000), 0);
    assert_int_equal(vfs->pwrite(vfs, f, buf, 4096, 0, &done), EIO);
    assert_true(done < 4096);
    uint64_t size;
    assert_int_equal(vfs->size(vfs, f, &size), 0);
    assert_int_equal(size, done);
    rlog_simfs_clear_faults(vfs);
    tu_vfs_write(vfs, f, buf, 8192, 0);
    assert_int_equal(vfs->pwrite(vfs, f, buf, 4096, 8192, &done), ENOSPC);
    assert_int_equal(done, 10000 - 8192);
    assert_int_equal(vfs->allocate(vfs, f, 0, 20000), ENOSPC);
    assert_int_equal(rlog_simfs_faults(vfs, RLOG_SIMFS_FAULT_CAPACITY), 2);
    assert_int_equal(vfs->truncate(vfs, f, 100), 0);
    assert_int_equal(vfs->allocate(vfs, f, 0, 9000), 0);
    assert_int_equal(vfs->size(vfs, f, &size), 0);
    assert_int_equal(size, 9000);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    uint64_t off;
    assert_int_equal(rlog_simfs_bitrot(vfs, "/d/f", &off), 0);
    uint8_t *v, *d;
    assert_int_equal(fs_get(vfs, "/d/f", 0, &v), 9000);
    /* the entry was never synced: look at the durable bytes via the inode
     * only when the durable namespace has it */
    assert_int_equal(fs_get(vfs, "/d/f", 1, &d), -1);
    int diff_bits = 0;
    for (size_t i = 0; i < 9000; i++) {
        uint8_t want = i < 100 ? 0x42 : 0;
        diff_bits += __builtin_popcount((unsigned)(v[i] ^ want));
        if (v[i] != want)
            assert_int_equal(i, off);
    }
    assert_int_equal(diff_bits, 1);
    free(v);
    vfs->destroy(vfs);
}

/* A random workload with every fault class on, crashes included. */
static uint64_t workload(uint64_t seed, int faults, uint64_t *env_sum)
{
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, seed);
    cfg.sector_size = 512;
    cfg.capacity = 1 << 20;
    rlog_vfs *vfs = fs_new_cfg(&cfg);
    rlog_env *env = rlog_simfs_env(vfs);
    if (faults) {
        assert_int_equal(rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_EIO, RLOG_OP_COUNT, 20000), 0);
        assert_int_equal(rlog_simfs_set_fault(vfs, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_COUNT, 10000),
                         0);
        static const rlog_simfs_fault more[] = {
            RLOG_SIMFS_FAULT_SYNC_DROP,  RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_SIMFS_FAULT_MISDIRECT,
            RLOG_SIMFS_FAULT_LOST_WRITE, RLOG_SIMFS_FAULT_BITROT,      RLOG_SIMFS_FAULT_LATENT};
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
            assert_int_equal(rlog_simfs_set_fault(vfs, more[i], RLOG_OP_COUNT, 30000), 0);
    }
    static const char *const names[] = {"/d/a", "/d/b", "/d/c", "/d/e"};
    rlog_file *files[4] = {0};
    uint8_t buf[3000];
    uint64_t sum = 0;
    for (int step = 0; step < 2000; step++) {
        uint64_t r = env->random(env);
        sum += r;
        int i = (int)(r % 4);
        size_t done;
        rlog_file *lk;
        switch ((r >> 8) % 12) {
        case 0:
            if (!files[i] && vfs->open(vfs, names[i], RLOG_VFS_RDWR | RLOG_VFS_CREATE, &files[i]))
                files[i] = NULL;
            break;
        case 1:
        case 2:
        case 3:
            if (files[i]) {
                size_t len = (size_t)((r >> 16) % sizeof buf);
                tu_fill(seed, (uint64_t)step, buf, len);
                (void)vfs->pwrite(vfs, files[i], buf, len, (r >> 32) % 20000, &done);
            }
            break;
        case 4:
            if (files[i])
                (void)vfs->pread(vfs, files[i], buf, sizeof buf, (r >> 32) % 20000, &done);
            break;
        case 5:
            if (files[i])
                (void)vfs->fdatasync(vfs, files[i]);
            break;
        case 6:
            (void)vfs->sync_dir(vfs, "/d");
            break;
        case 7:
            (void)vfs->rename(vfs, names[i], names[(i + 1) % 4]);
            break;
        case 8:
            if (files[i])
                (void)vfs->truncate(vfs, files[i], (r >> 32) % 10000);
            else
                (void)vfs->unlink(vfs, names[i]);
            break;
        case 9:
            if (files[i]) {
                (void)vfs->close(vfs, files[i]);
                files[i] = NULL;
            }
            break;
        case 10:
            if (vfs->lock(vfs, "/d", &lk) == 0)
                (void)vfs->unlock(vfs, lk);
            break;
        default:
            if ((r >> 40) % 8 == 0) {
                if ((r >> 44) & 1)
                    rlog_simfs_crash(vfs);
                else
                    assert_int_equal(rlog_simfs_power_loss(vfs), 0);
                memset(files, 0, sizeof files); /* dropped, never closed */
            }
            break;
        }
    }
    sum += env->now_ns(env);
    if (env_sum)
        *env_sum = sum;
    uint64_t h = rlog_simfs_trace_hash(vfs);
    if (faults) {
        uint64_t total = 0;
        for (int k = 0; k < RLOG_SIMFS_FAULT_COUNT; k++)
            total += rlog_simfs_faults(vfs, (rlog_simfs_fault)k);
        assert_true(total > 0);
    }
    vfs->destroy(vfs);
    return h;
}

/* Same seed => same trace hash; different seeds => different hashes; and
 * the env's random stream does not depend on the faults. */
static void test_trace_determinism(void **state)
{
    (void)state;
    uint64_t hashes[20];
    for (uint64_t seed = 0; seed < 20; seed++) {
        uint64_t e1, e2, e3;
        hashes[seed] = workload(seed, 1, &e1);
        assert_true(hashes[seed] == workload(seed, 1, &e2));
        assert_true(e1 == e2);
        (void)workload(seed, 0, &e3);
        /* same random draws; the clock may differ (faults change calls) */
        (void)e3;
        for (uint64_t k = 0; k < seed; k++)
            assert_true(hashes[k] != hashes[seed]);
    }
    /* env->random is the same sequence with and without faults */
    for (uint64_t seed = 0; seed < 5; seed++) {
        rlog_vfs *a = fs_new(seed), *b = fs_new(seed);
        assert_int_equal(rlog_simfs_set_fault(b, RLOG_SIMFS_FAULT_EIO, RLOG_OP_COUNT, 500000), 0);
        rlog_env *ea = rlog_simfs_env(a), *eb = rlog_simfs_env(b);
        rlog_file *f;
        for (int i = 0; i < 100; i++) {
            (void)b->open(b, "/d/x", RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f);
            assert_true(ea->random(ea) == eb->random(eb));
        }
        a->destroy(a);
        b->destroy(b);
    }
}

/* The virtual clock advances with each call, syncs cost more than writes,
 * and only by calls (no real time). */
static void test_virtual_clock(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(9);
    rlog_env *env = rlog_simfs_env(vfs);
    rlog_file *f = fopen_rw(vfs, "/d/f");
    uint64_t t0 = env->now_ns(env);
    assert_true(env->now_ns(env) == t0);
    tu_vfs_write(vfs, f, "x", 1, 0);
    uint64_t t1 = env->now_ns(env);
    assert_int_equal(vfs->fdatasync(vfs, f), 0);
    uint64_t t2 = env->now_ns(env);
    assert_true(t1 > t0 && t2 - t1 > t1 - t0);
    rlog_simfs_advance(vfs, 1000);
    assert_true(env->now_ns(env) == t2 + 1000);
    assert_int_equal(vfs->close(vfs, f), 0);
    env->destroy(env); /* no-op: owned by the vfs */
    vfs->destroy(vfs);
}

/* Inspection: list_files per namespace, calls counted. */
static void test_inspection(void **state)
{
    (void)state;
    rlog_vfs *vfs = fs_new(10);
    make_durable_file(vfs, "/d/a", 1, 10);
    rlog_file *f = fopen_rw(vfs, "/d/b");
    assert_int_equal(rlog_simfs_mkdirs(vfs, "/d/sub/deep"), 0);
    rlog_file *g = fopen_rw(vfs, "d/sub/deep/../c");
    char **paths;
    size_t n;
    assert_int_equal(rlog_simfs_list_files(vfs, 0, &paths, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(paths[0], "/d/a");
    assert_string_equal(paths[1], "/d/b");
    assert_string_equal(paths[2], "/d/sub/c");
    rlog_vfs_free_names(paths, n);
    assert_int_equal(rlog_simfs_list_files(vfs, 1, &paths, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "/d/a");
    rlog_vfs_free_names(paths, n);
    assert_int_equal(rlog_simfs_calls(vfs, RLOG_OP_OPEN), 3);
    assert_true(rlog_simfs_calls(vfs, RLOG_OP_COUNT) >= 7);
    assert_string_equal(rlog_simfs_fault_name(RLOG_SIMFS_FAULT_SYNC_DROP), "sync_drop");
    assert_string_equal(rlog_simfs_op_name(RLOG_OP_SYNC_DIR), "sync_dir");
    rlog_file *x;
    assert_int_equal(vfs->open(vfs, "/d/a", RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &x),
                     EEXIST);
    assert_int_equal(vfs->open(vfs, "/d/zz", RLOG_VFS_RDONLY, &x), ENOENT);
    assert_int_equal(vfs->open(vfs, "/d", RLOG_VFS_RDONLY, &x), EISDIR);
    assert_int_equal(vfs->mkdir(vfs, "/d"), EEXIST);
    assert_int_equal(vfs->open(vfs, "/d/a", RLOG_VFS_RDONLY, &x), 0);
    size_t done;
    assert_int_equal(vfs->pwrite(vfs, x, "z", 1, 0, &done), EBADF);
    assert_int_equal(vfs->close(vfs, x), 0);
    assert_int_equal(vfs->close(vfs, f), 0);
    assert_int_equal(vfs->close(vfs, g), 0);
    vfs->destroy(vfs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synced_survives_power_loss),
        cmocka_unit_test(test_unsynced_crash_vs_power_loss),
        cmocka_unit_test(test_power_loss_reorders),
        cmocka_unit_test(test_torn_sector_grain),
        cmocka_unit_test(test_create_needs_sync_dir),
        cmocka_unit_test(test_rename_atomic),
        cmocka_unit_test(test_cross_dir_rename),
        cmocka_unit_test(test_sync_drop_loses_data),
        cmocka_unit_test(test_sync_drop_dir),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_scheduled_faults),
        cmocka_unit_test(test_latent_sticky),
        cmocka_unit_test(test_old_handles_eio),
        cmocka_unit_test(test_unlink_while_open),
        cmocka_unit_test(test_misdirected_and_lost_writes),
        cmocka_unit_test(test_short_write_capacity_bitrot),
        cmocka_unit_test(test_trace_determinism),
        cmocka_unit_test(test_virtual_clock),
        cmocka_unit_test(test_inspection),
    };
    return TU_RUN("sim_fs", tests, NULL, NULL);
}
