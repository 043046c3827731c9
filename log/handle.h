/* A log handle's lifetime (log/handle.c; rlg_log_crash beside
 * rlog_abandon in log/open.c):
 * the helpers every file of the log uses on a handle are declared in
 * log/log_internal.h and defined in log/handle.c too. */
#ifndef RLG_HANDLE_H
#define RLG_HANDLE_H

#include "log/log_internal.h"

/* A handle with no segment, not open (NULL when out of memory). */
rlog_log *rlg_log_new(const char *dir, const rlog_options *o);
/* Closes its files (active, spare), releases the lock (lockf), frees it. */
void rlg_log_release(rlog_log *l);

/* Frees a handle as if its process had died: no write, no sync, no
 * checkpoint, callbacks never fire. For tests and the simulator. */
void rlg_log_crash(rlog_log *l);

#endif /* RLG_HANDLE_H */
