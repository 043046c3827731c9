/*
 * The "unsynced" marker: after a failed fdatasync the page cache may keep
 * showing bytes that never reached the disk (and never will: the kernel
 * marked them clean). A process restart would read them back as if they were
 * durable. So a handle that is poisoned leaves a marker file, `rlog.unsynced`
 * (20 bytes: "RLOGUNS1", the durable LSN at the failure as u64 LE, CRC32C of
 * the 16 bytes before as u32 LE), written WITHOUT a sync: the lie it warns of
 * survives only a process crash, and so does the marker. The next writable
 * open rewrites and syncs every record past that LSN — none of them was ever
 * acknowledged, so rewriting them in place risks nothing acknowledged — and
 * then removes the marker durably. See docs/durability.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log/unsynced.h"
#include "os/sync.h"

#define MARKER       "rlog.unsynced"
#define MARKER_MAGIC "RLOGUNS1"
#define MARKER_SIZE  20

static void marker_path(const rlog_log *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", l->dir, MARKER);
}

void rlg_unsynced_mark(rlog_log *l, uint64_t durable)
{
    uint8_t m[MARKER_SIZE];
    memcpy(m, MARKER_MAGIC, 8);
    rlg_put64(m + 8, durable);
    rlg_put32(m + 16, rlg_crc32c(m, 16));
    char path[4096];
    marker_path(l, path, sizeof path);
    int e = EIO;
    size_t done = 0;
    for (int attempt = 0; attempt < 3 && (e || done != sizeof m); attempt++) {
        rlog_file *f = NULL;
        done = 0;
        e = l->vfs->open(l->vfs, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE, &f);
        if (!e)
            e = l->vfs->pwrite(l->vfs, f, m, sizeof m, 0, &done);
        /* durable, with its directory entry: a marker that a power loss
         * tears or drops leaves the next open only the recovery's proof,
         * which may start below records acknowledged before the failure,
         * and the open then rewrites those in place, where a torn rewrite
         * destroys them (seed 40165861: a spare's failed sync, a lost
         * marker, acknowledged LSN 231..238 gone) */
        if (!e && done == sizeof m)
            e = rlg_os_fdatasync(l->vfs, f);
        if (f)
            l->vfs->close(l->vfs, f);
        if (!e && done == sizeof m)
            e = rlg_os_sync_dir(l->vfs, l->dir);
    }
    if (e || done != sizeof m)
        rlg_logf(l, RLOG_LEVEL_ERROR,
                 "could not leave the unsynced marker %s (%s): a restart without a power loss "
                 "may read back records whose sync failed",
                 path, strerror(e ? e : EIO));
}

int rlg_unsynced_read(rlog_log *l, uint64_t *durable)
{
    char path[4096];
    marker_path(l, path, sizeof path);
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

int rlg_unsynced_clear(rlog_log *l)
{
    char path[4096];
    marker_path(l, path, sizeof path);
    int e = l->vfs->unlink(l->vfs, path);
    if (!e)
        e = rlg_os_sync_dir(l->vfs, l->dir);
    return e == ENOENT ? 0 : e;
}
