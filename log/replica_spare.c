/*
 * A replica's spare segment files: the zero-filled files after the newest
 * segment that the log's writing rules require.
 */
#include <errno.h>
#include <string.h>

#include "log/open.h"
#include "log/replica_internal.h"
#include "log/spare.h"
#include "os/install.h"
#include "os/sync.h"

/* ----------------------------------------------------------------- spares */

/* A taken spare whose fdatasync failed before: a new file in its place —
 * zero-filled and synced under RLG_SPARE_TMP, renamed over it, the
 * directory synced — so that nothing of the old file is trusted. After a
 * failed fdatasync the kernel may have dropped the file's dirty state (its
 * size, here) while a later fdatasync succeeds (soak seed 60252131: the
 * follower's copy of a sealed segment came out 5,465 bytes long instead of
 * the segment size). A taken spare holds no record yet, and the rename
 * swaps it atomically, so its successor rule holds throughout. */
static int spare_replace(rlg_replica *r, uint64_t seq, const char *path)
{
    rlog_vfs *v = r->l->vfs;
    char tmp[4096];
    rlg_rp_path(r, RLG_SPARE_TMP, tmp, sizeof tmp);
    rlog_file *t = NULL;
    const char *what = "";
    int e = rlg_prepare_path(v, r->l->dir, tmp, r->file_size, true, &t, &what);
    rlg_os_fail fail = {e, what, tmp};
    if (e)
        rlg_install_discard(v, r->l->dir, t, tmp);
    int rv = e ? RLG_OS_FAILED : rlg_install(v, r->l->dir, t, tmp, path, RLG_INSTALL_NOSYNC, &fail);
    if (rv)
        return rlg_rp_install_fail(r, rv, &fail, "replacing segment file", path);
    r->spare_suspect = 0;
    if (seq > r->spare_hi)
        r->spare_hi = seq;
    return 0;
}

int rlg_rp_spare_ensure(rlg_replica *r, uint64_t seq, bool taken)
{
    if (seq <= r->spare_hi && !taken)
        return 0;
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    if (taken && seq == r->spare_suspect)
        return spare_replace(r, seq, path);
    rlog_file *f = NULL;
    const char *what = "create";
    bool made = false, known = seq <= r->spare_hi;
    int e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f);
    if (e == EEXIST) {
        what = "open";
        e = v->open(v, path, RLOG_VFS_RDWR, &f);
    } else if (!e) {
        made = true;
    }
    uint64_t size = 0;
    if (!e && (what = "size", e = v->size(v, f, &size)) == 0 && size != r->file_size)
        e = (what = "truncate", v->truncate(v, f, r->file_size));
    /* the size is durable before a header is (recovery: full size); a
     * failed fdatasync is never retried on this file: spare_replace */
    if (!e && taken && (e = (what = "fdatasync", rlg_os_fdatasync(v, f))) != 0)
        r->spare_suspect = seq;
    if (f)
        v->close(v, f);
    if (!e && (made || !known))
        e = (what = "directory fsync after creating", rlg_os_sync_dir(v, r->l->dir));
    if (e) {
        if (made && v->unlink(v, path) == 0) /* not needed yet: no seal before it */
            rlg_os_sync_dir(v, r->l->dir);
        return rlg_rp_fail(r, rlog_from_errno(e), "preparing segment file %s: %s: %s", path, what,
                           strerror(e));
    }
    if (seq > r->spare_hi)
        r->spare_hi = seq;
    return 0;
}

int rlg_rp_spare_ahead(rlg_replica *r, uint64_t seq)
{
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
    rlog_file *f = NULL;
    int e = v->open(v, path, RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL, &f);
    if (e)
        return e;
    e = v->truncate(v, f, r->file_size);
    v->close(v, f);
    return e;
}
