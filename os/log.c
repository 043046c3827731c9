/* Handing a message to a user's logger (os/log.h). */
#include "os/log.h"

#include <stdio.h>

void rlg_os_vlogf(rlog_logger_fn fn, void *data, rlog_level level, const char *prefix,
                  const char *fmt, va_list ap)
{
    if (fn == NULL)
        return;
    char buf[RLG_LOG_MAX];
    int k = snprintf(buf, sizeof buf, "%s", prefix);
    if (k < 0 || (size_t)k >= sizeof buf)
        k = 0;
    vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
    fn(data, level, buf);
}
