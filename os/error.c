/* Error codes: names, descriptions, errno mapping (see include/rlog/common.h). */
#include <errno.h>
#include <stdlib.h>

#include "rlog/common.h"

const char *rlog_strerror(int err)
{
    switch (err) {
#define RLOG_ERR_DESC_(name, code, desc)                                                           \
    case RLOG_##name:                                                                              \
        return desc;
        RLOG_ERRORS(RLOG_ERR_DESC_)
#undef RLOG_ERR_DESC_
    }
    return "unknown error";
}

const char *rlog_errname(int err)
{
    switch (err) {
#define RLOG_ERR_NAME_(name, code, desc)                                                           \
    case RLOG_##name:                                                                              \
        return "RLOG_" #name;
        RLOG_ERRORS(RLOG_ERR_NAME_)
#undef RLOG_ERR_NAME_
    }
    return "RLOG_EUNKNOWN";
}

int rlog_from_errno(int err)
{
    switch (err) {
    case 0:
        return RLOG_OK;
    case ENOSPC:
    case EDQUOT:
        return RLOG_ENOSPC;
    case ENOMEM:
        return RLOG_ENOMEM;
    case EBUSY:
    case EAGAIN:
        return RLOG_EBUSY;
    case ENOENT:
        return RLOG_ENOTFOUND;
    case EOPNOTSUPP:
        return RLOG_ENOTSUP;
    default:
        return RLOG_EIO;
    }
}

void rlog_free(void *p)
{
    free(p);
}
