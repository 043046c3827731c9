/* The helpers every file of the Raft store uses on a store (declared in
 * raft_storage/rs_internal.h): its error message and logger, poisoning and
 * the writable check, the encode buffer; and its two accessors. Kept out of
 * open.c so that entries.c and snapshot.c do not depend on opening. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "os/log.h"
#include "raft_storage/rs_internal.h"

int rlg_rs_fail(rlog_rs *rs, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rs->errmsg, sizeof rs->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

void rlg_rs_logf(rlog_rs *rs, rlog_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rlg_os_vlogf(rs->opts.log.logger, rs->opts.log.logger_data, level, "", fmt, ap);
    va_end(ap);
}

void rlg_rs_poison(rlog_rs *rs, int err)
{
    int zero = 0;
    atomic_compare_exchange_strong(&rs->failed, &zero, err);
}

int rlg_rs_writable(rlog_rs *rs)
{
    int f = atomic_load(&rs->failed);
    if (f)
        return rlg_rs_fail(rs, RLOG_EPOISONED,
                           "the store failed earlier (%s); close and reopen to recover",
                           rlog_errname(f));
    if (rs->readonly)
        return rlg_rs_fail(rs, RLOG_ENOTSUP, "the store is open read-only");
    return 0;
}

int rlg_rs_enc_reserve(rlog_rs *rs, size_t n)
{
    if (n <= rs->enc_cap)
        return 0;
    size_t cap = rs->enc_cap ? rs->enc_cap : 4096;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    uint8_t *p = realloc(rs->enc, cap);
    if (!p)
        return rlg_rs_fail(rs, RLOG_ENOMEM, "out of memory encoding %zu bytes", n);
    rs->enc = p;
    rs->enc_cap = cap;
    return 0;
}

const char *rlog_rs_errmsg(rlog_rs *rs)
{
    return rs->errmsg;
}

rlog_log *rlog_rs_log(rlog_rs *rs)
{
    return rs->log;
}
