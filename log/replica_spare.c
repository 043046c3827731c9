/*
 * A replica's spare segment files: the zero-filled files after the newest
 * segment that the log's writing rules require.
 */
#include <errno.h>
#include <string.h>

#include "log/replica_internal.h"
#include "os/sync.h"

/* ----------------------------------------------------------------- spares */

int rlg_rp_spare_ensure(rlg_replica *r, uint64_t seq, bool taken)
{
    if (seq <= r->spare_hi && !taken)
        return 0;
    rlog_vfs *v = r->l->vfs;
    char path[4096];
    rlg_rp_seg_path(r, seq, path, sizeof path);
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
    if (!e && taken) /* the size is durable before a header is (recovery: full size) */
        e = (what = "fdatasync", rlg_os_fdatasync(v, f));
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
