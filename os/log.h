/* Handing a message to a user's logger (rlog_logger_fn): the one place
 * that formats it, for every layer's logging helper. */
#ifndef RLG_OS_LOG_H
#define RLG_OS_LOG_H

#include <stdarg.h>

#include "rlog/common.h"

/* The longest message handed to a logger (longer ones are cut). */
#define RLG_LOG_MAX 640

/* Formats `prefix` (may be "") then fmt with ap and calls fn(data, level,
 * message); nothing when fn is NULL. */
void rlg_os_vlogf(rlog_logger_fn fn, void *data, rlog_level level, const char *prefix,
                  const char *fmt, va_list ap);

#endif /* RLG_OS_LOG_H */
