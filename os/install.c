/* Durable install, unlink and rename (the policy is in os/install.h). */
#include "os/install.h"

#include <errno.h>

static int failed(rlg_os_fail *fail, int code, int err, const char *what, const char *path)
{
    fail->err = err;
    fail->what = what;
    fail->path = path;
    return code;
}

void rlg_install_discard(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp)
{
    if (t)
        (void)v->close(v, t);
    if (v->unlink(v, tmp) == 0)
        (void)v->sync_dir(v, dir); /* best effort: the failure is already reported */
}

int rlg_install_sync(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp, unsigned flags,
                     rlg_os_fail *fail)
{
    int e = 0;
    const char *what = "fdatasync of";
    if (flags & RLG_INSTALL_FSYNC)
        e = (what = "fsync of", v->fsync(v, t));
    else if (!(flags & RLG_INSTALL_NOSYNC))
        e = v->fdatasync(v, t);
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
    return rlg_sync_dir(v, dir, fail)
               ? failed(fail, RLG_OS_FATAL, fail->err, "directory fsync after renaming into", path)
               : RLG_OS_OK;
}

int rlg_install(rlog_vfs *v, const char *dir, rlog_file *t, const char *tmp, const char *path,
                unsigned flags, rlg_os_fail *fail)
{
    int rv = rlg_install_sync(v, dir, t, tmp, flags, fail);
    return rv ? rv : rlg_install_commit(v, dir, tmp, path, fail);
}

int rlg_sync_dir(rlog_vfs *v, const char *dir, rlg_os_fail *fail)
{
    int e = v->sync_dir(v, dir);
    return e ? failed(fail, RLG_OS_FATAL, e, "directory fsync of", dir) : RLG_OS_OK;
}

int rlg_unlink_synced(rlog_vfs *v, const char *dir, const char *path, rlg_os_fail *fail)
{
    int e = v->unlink(v, path);
    if (e == ENOENT)
        return RLG_OS_OK;
    if (e)
        return failed(fail, RLG_OS_FAILED, e, "unlinking", path);
    return rlg_sync_dir(v, dir, fail)
               ? failed(fail, RLG_OS_FATAL, fail->err, "directory fsync after unlinking", path)
               : RLG_OS_OK;
}

int rlg_rename_synced(rlog_vfs *v, const char *dir, const char *from, const char *to,
                      rlg_os_fail *fail)
{
    int e = v->rename(v, from, to);
    if (e)
        return failed(fail, RLG_OS_FAILED, e, "renaming", from);
    return rlg_sync_dir(v, dir, fail)
               ? failed(fail, RLG_OS_FATAL, fail->err, "directory fsync after renaming into", to)
               : RLG_OS_OK;
}
