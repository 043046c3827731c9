/* Durability requests above the vfs table: see os/sync.h. */
#include "os/sync.h"

int rlg_os_fdatasync(rlog_vfs *v, rlog_file *f)
{
    return v->fdatasync(v, f);
}

int rlg_os_fsync(rlog_vfs *v, rlog_file *f)
{
    return v->fsync(v, f);
}

int rlg_os_sync_dir(rlog_vfs *v, const char *dir)
{
    return v->sync_dir(v, dir);
}
