/*
 * Segment shipping: helpers shared by the leader and the follower (state
 * names, logging, side-file names and checksums).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/log.h"
#include "os/names.h"
#include "transport/ship_internal.h"

const char *rlog_ship_state_name(int state)
{
    static const char *const names[] = {
        [RLOG_SHIP_CONNECTING] = "connecting", [RLOG_SHIP_CATCHING_UP] = "catching-up",
        [RLOG_SHIP_TAILING] = "tailing",       [RLOG_SHIP_SNAPSHOT] = "snapshot",
        [RLOG_SHIP_TRUNCATING] = "truncating", [RLOG_SHIP_REFUSED] = "refused",
        [RLOG_SHIP_FAILED] = "failed"};
    return rlg_name_at(names, sizeof names / sizeof names[0], (uint64_t)(int64_t)state);
}

void rlg_ship_logf(rlog_logger_fn fn, void *data, rlog_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rlg_os_vlogf(fn, data, level, "", fmt, ap);
    va_end(ap);
}

bool rlg_ship_side_name(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    if (n <= s || n > RLOG_WIRE_NAME_MAX || strchr(name, '/') != NULL) {
        return false;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        return false;
    }
    return memcmp(name + n - s, suffix, s) == 0;
}

int rlg_ship_file_crc(rlog_vfs *vfs, const char *path, uint64_t *size, uint32_t *crc)
{
    rlog_file *f = NULL;
    int e = vfs->open(vfs, path, RLOG_VFS_RDONLY, &f);
    if (e != 0) {
        return rlog_from_errno(e);
    }
    e = vfs->size(vfs, f, size);
    enum { BUF = 1u << 20 };
    uint8_t *buf = e == 0 ? malloc(BUF) : NULL;
    int rc = e != 0 ? rlog_from_errno(e) : buf == NULL ? RLOG_ENOMEM : 0;
    uint32_t state = 0xffffffffu;
    for (uint64_t off = 0; rc == 0 && off < *size;) {
        size_t want = *size - off < BUF ? (size_t)(*size - off) : BUF, done = 0;
        e = vfs->pread(vfs, f, buf, want, off, &done);
        if (e != 0 || done == 0) {
            rc = e != 0 ? rlog_from_errno(e) : RLOG_EIO; /* shrank under us */
            break;
        }
        state = rlg_crc32c_update(state, buf, done);
        off += done;
    }
    free(buf);
    vfs->close(vfs, f);
    *crc = ~state;
    return rc;
}
