/*
 * The "unsynced" marker: after a failed fdatasync the page cache may keep
 * showing bytes that never reached the disk (and never will: the kernel
 * marked them clean). A process restart would read them back as if they were
 * durable. So a handle that is poisoned leaves a marker file, `rlog.unsynced`
 * (20 bytes: "RLOGUNS1", the durable LSN at the failure as u64 LE, CRC32C of
 * the 16 bytes before as u32 LE), installed durably: written under
 * `rlog.unsynced-tmp`, fdatasynced, renamed over `rlog.unsynced`, directory
 * fsynced (os/install.h). The next writable open rewrites and syncs every
 * record past that LSN — none of them was ever acknowledged, so rewriting
 * them in place risks nothing acknowledged — and then removes the marker
 * durably. See docs/durability.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log/unsynced.h"
#include "os/install.h"
#include "os/sync.h"

#define MARKER       "rlog.unsynced"
#define MARKER_MAGIC "RLOGUNS1"
#define MARKER_SIZE  20

static void marker_path(const rlog_log *l, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", l->dir, name);
}

/* One attempt: a new temporary file holding m, installed over the marker.
 * A temporary file an earlier attempt left (its discard failed) is removed
 * first and never reused: a failed fdatasync of it may have dropped its
 * size, which a later fdatasync of the same file would not write again. */
static int mark_once(rlog_log *l, const uint8_t *m, const char *tmp, const char *path,
                     rlg_os_fail *fail)
{
    rlog_vfs *v = l->vfs;
    rlog_file *f = NULL;
    size_t done = 0;
    const char *what = "removing";
    int e = v->unlink(v, tmp);
    if (e == ENOENT)
        e = 0;
    if (!e)
        e = (what = "creating",
             v->open(v, tmp, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f));
    if (!e)
        e = (what = "writing", v->pwrite(v, f, m, MARKER_SIZE, 0, &done));
    if (!e && done != MARKER_SIZE)
        e = EIO;
    if (e) {
        if (f)
            rlg_install_discard(v, l->dir, f, tmp);
        *fail = (rlg_os_fail){e, what, tmp};
        return RLG_OS_FAILED;
    }
    return rlg_install(v, l->dir, f, tmp, path, 0, fail);
}

/* Durable, with its directory entry: a marker that a power loss tears or
 * drops leaves the next open only the recovery's proof, which may start
 * below records acknowledged before the failure, and the open then
 * rewrites those in place, where a torn rewrite destroys them (seed
 * 40165861: a spare's failed sync, a lost marker, acknowledged LSN 231..238
 * gone).
 *
 * Each attempt makes a new file and a new rename, so the directory fsync
 * that ends it covers a directory operation made in that attempt. A failed
 * directory fsync is never retried as proof of an earlier rename: it may
 * have dropped that rename's dirty state for good, and a later fsync that
 * succeeds says nothing about it. Two renames onto `rlog.unsynced` (an
 * attempt whose directory fsync failed, then one whose fsync succeeded)
 * hold the same 20 bytes, each fdatasynced before its rename: whichever a
 * power loss keeps, the marker says the same. A temporary file left by a
 * crash before the rename counts as the marker (rlg_unsynced_read). */
void rlg_unsynced_mark(rlog_log *l, uint64_t durable)
{
    uint8_t m[MARKER_SIZE];
    memcpy(m, MARKER_MAGIC, 8);
    rlg_put64(m + 8, durable);
    rlg_put32(m + 16, rlg_crc32c(m, 16));
    char path[4096], tmp[4096];
    marker_path(l, MARKER, path, sizeof path);
    marker_path(l, RLG_UNSYNCED_TMP, tmp, sizeof tmp);
    rlg_os_fail fail = {EIO, "", path};
    int rv = RLG_OS_FAILED;
    for (int attempt = 0; attempt < 3 && rv != RLG_OS_OK; attempt++)
        rv = mark_once(l, m, tmp, path, &fail);
    if (rv != RLG_OS_OK)
        rlg_logf(l, RLOG_LEVEL_ERROR,
                 "could not leave the unsynced marker %s (%s %s: %s): a restart without a power "
                 "loss may read back records whose sync failed",
                 path, fail.what, fail.path, strerror(fail.err));
}

/* 0 none, 1 readable (*durable set), 2 present but unreadable, -errno. */
static int read_one(rlog_log *l, const char *path, uint64_t *durable)
{
    rlog_file *f = NULL;
    int e = l->vfs->open(l->vfs, path, RLOG_VFS_RDONLY, &f);
    if (e == ENOENT)
        return 0;
    if (e)
        return -e;
    uint8_t m[MARKER_SIZE];
    size_t got = 0;
    e = l->vfs->pread(l->vfs, f, m, sizeof m, 0, &got);
    l->vfs->close(l->vfs, f);
    if (e)
        return -e;
    /* empty or torn: the marker's own write failed (or a power loss tore
     * it): a sync failed, but at which LSN is unknown */
    if (got != sizeof m || memcmp(m, MARKER_MAGIC, 8) || rlg_get32(m + 16) != rlg_crc32c(m, 16))
        return 2;
    *durable = rlg_get64(m + 8);
    return 1;
}

/* The marker, else its temporary file: one is there only when a handle was
 * poisoned and died (or lost power) before the rename, and it says the
 * same as the marker would. A readable temporary file alone is installed
 * as the marker first (its bytes may not be durable, and the open that
 * acts on it may fail). */
int rlg_unsynced_read(rlog_log *l, uint64_t *durable)
{
    char path[4096];
    marker_path(l, MARKER, path, sizeof path);
    int m = read_one(l, path, durable);
    if (m < 0 || m == 1)
        return m;
    marker_path(l, RLG_UNSYNCED_TMP, path, sizeof path);
    int t = read_one(l, path, durable);
    if (t == 1 && m == 0)
        rlg_unsynced_mark(l, *durable);
    if (t < 0 || t == 1)
        return t;
    return m ? m : t;
}

/* Removes the marker and its temporary file, then fsyncs the directory
 * (when something was removed). On any failure the removal is not known
 * durable, and a marker that came back after a later power loss would make
 * a later open rewrite records acknowledged in between; nothing will ever
 * fsync the directory again as proof of these unlinks (a fsync that
 * succeeds after a failed one proves nothing). Instead the marker is left
 * again, at `again` — a new rename with its own directory fsync — and the
 * error returned: the open fails, and the next one finds the marker. */
int rlg_unsynced_clear(rlog_log *l, uint64_t again)
{
    static const char *const names[] = {MARKER, RLG_UNSYNCED_TMP};
    bool removed = false;
    int e = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !e; i++) {
        char path[4096];
        marker_path(l, names[i], path, sizeof path);
        e = l->vfs->unlink(l->vfs, path);
        removed |= e == 0;
        if (e == ENOENT)
            e = 0;
    }
    if (!e && removed)
        e = rlg_os_sync_dir(l->vfs, l->dir);
    if (e)
        rlg_unsynced_mark(l, again);
    return e;
}
