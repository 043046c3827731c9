/* Durable install, unlink and rename (the policy is in os/install.h). */
#include "os/install.h"
#include "os/sync.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static int failed(rlg_os_fail *fail, int code, int err, const char *what, const char *path)
{
    fail->err = err;
    fail->what = what;
    fail->path = path;
    return code;
}

/* The directory fsync that makes a directory operation durable; its
 * failure is FATAL (what and path name it in the failure). */
static int sync_after(rlog_vfs *v, const char *dir, const char *what, const char *path,
                      rlg_os_fail *fail)
{
    int e = rlg_os_sync_dir(v, dir);
    return e ? failed(fail, RLG_OS_FATAL, e, what, path) : RLG_OS_OK;
}

void rlg_install_discard(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp)
{
    if (t)
        (void)v->close(v, t);
    if (v->unlink(v, tmp) == 0)
        (void)rlg_os_sync_dir(v, dir); /* best effort: the failure is already reported */
}

int rlg_install_sync(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp, unsigned flags,
                     rlg_os_fail *fail)
{
    int e = 0;
    const char *what = "fdatasync of";
    if (flags & RLG_INSTALL_FSYNC)
        e = (what = "fsync of", rlg_os_fsync(v, t));
    else if (!(flags & RLG_INSTALL_NOSYNC))
        e = rlg_os_fdatasync(v, t);
    int ce = v->close(v, t);
    if (!e && ce)
        e = (what = "closing", ce);
    if (e) {
        rlg_install_discard(v, dir, NULL, tmp);
        return failed(fail, RLG_OS_FAILED, e, what, tmp);
    }
    return RLG_OS_OK;
}

int rlg_install_commit(rlog_vfs *v, const char *dir, const char *tmp, const char *path,
                       rlg_os_fail *fail)
{
    int e = v->rename(v, tmp, path);
    if (e) {
        rlg_install_discard(v, dir, NULL, tmp);
        return failed(fail, RLG_OS_FAILED, e, "renaming into place", path);
    }
    return sync_after(v, dir, "directory fsync after renaming into", path, fail);
}

int rlg_install(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp, const char *path,
                unsigned flags, rlg_os_fail *fail)
{
    int rv = rlg_install_sync(v, dir, t, tmp, flags, fail);
    return rv ? rv : rlg_install_commit(v, dir, tmp, path, fail);
}

int rlg_sync_dir(rlog_vfs *v, const char *dir, rlg_os_fail *fail)
{
    return sync_after(v, dir, "directory fsync of", dir, fail);
}

int rlg_unlink_synced(rlog_vfs *v, const char *dir, const char *path, rlg_os_fail *fail)
{
    int e = v->unlink(v, path);
    if (e == ENOENT)
        return RLG_OS_OK;
    if (e)
        return failed(fail, RLG_OS_FAILED, e, "unlinking", path);
    return sync_after(v, dir, "directory fsync after unlinking", path, fail);
}

int rlg_rename_synced(rlog_vfs *v, const char *dir, const char *from, const char *to,
                      rlg_os_fail *fail)
{
    int e = v->rename(v, from, to);
    if (e)
        return failed(fail, RLG_OS_FAILED, e, "renaming", from);
    return sync_after(v, dir, "directory fsync after renaming into", to, fail);
}

int rlg_copy_synced(rlog_vfs *v, const char *from, const char *to_dir, const char *to,
                    rlg_os_fail *fail)
{
    rlog_file *in = NULL, *out = NULL;
    uint64_t size = 0;
    const char *what = "opening", *at = from;
    int e = v->open(v, from, RLOG_VFS_RDONLY, &in);
    if (!e)
        e = (what = "reading the size of", v->size(v, in, &size));
    if (!e)
        e = (what = "creating", at = to,
             v->open(v, to, RLOG_VFS_CREATE | RLOG_VFS_EXCL | RLOG_VFS_RDWR, &out));
    size_t cap = 1u << 20;
    uint8_t *buf = e ? NULL : malloc(cap);
    if (!e && !buf)
        e = (what = "allocating a copy buffer for", ENOMEM);
    for (uint64_t off = 0; !e && off < size;) {
        size_t n = size - off < cap ? (size_t)(size - off) : cap, got = 0, put = 0;
        e = (what = "reading", at = from, v->pread(v, in, buf, n, off, &got));
        if (!e && got != n)
            e = EIO;
        if (!e)
            e = (what = "writing", at = to, v->pwrite(v, out, buf, n, off, &put));
        if (!e && put != n)
            e = EIO;
        off += n;
    }
    if (!e)
        e = (what = "fsync of", at = to, rlg_os_fsync(v, out));
    free(buf);
    if (in)
        (void)v->close(v, in);
    if (out)
        (void)v->close(v, out);
    if (e) {
        if (out)
            (void)v->unlink(v, to); /* best effort: no partial copy stays */
        return failed(fail, RLG_OS_FAILED, e, what, at);
    }
    return sync_after(v, to_dir, "directory fsync after copying into", to, fail);
}

int rlg_move_synced(rlog_vfs *v, const char *from_dir, const char *from, const char *to_dir,
                    const char *to, rlg_os_fail *fail)
{
    int e = v->rename(v, from, to);
    if (e == EXDEV) {
        int rv = rlg_copy_synced(v, from, to_dir, to, fail);
        if (rv)
            return rv;
        e = v->unlink(v, from);
        if (e)
            return failed(fail, RLG_OS_FAILED, e, "unlinking (after copying it)", from);
    } else if (e) {
        return failed(fail, RLG_OS_FAILED, e, "renaming", from);
    } else if (sync_after(v, to_dir, "directory fsync after moving into", to, fail)) {
        return RLG_OS_FATAL;
    }
    return sync_after(v, from_dir, "directory fsync after moving out", from, fail);
}
