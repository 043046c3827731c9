/*
 * rlog — common definitions shared by every module: the export macro, the
 * error codes, the logging callback.
 *
 * Error convention: every function that can fail returns an int, 0 (RLOG_OK)
 * on success, otherwise one of the RLOG_E* codes below. A handle keeps a
 * human-readable message for its last error (rlog_errmsg() and friends) that
 * names the file, offset and LSN involved.
 */
#ifndef RLOG_COMMON_H
#define RLOG_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RLOG_BUILDING) && defined(__GNUC__)
#define RLOG_API __attribute__((visibility("default")))
#else
#define RLOG_API
#endif

#define RLOG_VERSION_MAJOR 0
#define RLOG_VERSION_MINOR 1
#define RLOG_VERSION_PATCH 0

/* X(name, code, description). Codes are stable: never renumber. */
#define RLOG_ERRORS(X)                                                                             \
    X(OK, 0, "ok")                                                                                 \
    X(EINVAL, 1, "invalid argument")                                                               \
    X(ENOMEM, 2, "out of memory")                                                                  \
    X(EIO, 3, "I/O error")                                                                         \
    X(ENOSPC, 4, "no space left on device")                                                        \
    X(ECORRUPT, 5, "corruption detected")                                                          \
    X(ENOTLOG, 6, "not an rlog directory")                                                         \
    X(EBUSY, 7, "locked by another writer")                                                        \
    X(EPOISONED, 8, "handle poisoned by a failed sync; reopen to recover")                         \
    X(ETOOBIG, 9, "record larger than the configured maximum")                                     \
    X(ERESERVED, 10, "record type is reserved for the log")                                        \
    X(ENOTFOUND, 11, "no such record")                                                             \
    X(EEND, 12, "end of log")                                                                      \
    X(EVERSION, 13, "unsupported format version")                                                  \
    X(EFOREIGN, 14, "belongs to another log")                                                      \
    X(ECLOSED, 15, "closed or shutting down")                                                      \
    X(ENOTSUP, 16, "not supported")                                                                \
    X(ETERM, 17, "term goes backwards")                                                            \
    X(EVOTE, 18, "vote changes within a term")                                                     \
    X(ENONCONTIG, 19, "entries are not contiguous")                                                \
    X(ESTALE, 20, "older than the current state")                                                  \
    X(EPROTO, 21, "malformed or hostile message")                                                  \
    X(ENOCONN, 22, "not connected")                                                                \
    X(ECANCELED, 23, "canceled")                                                                   \
    X(EDIVERGED, 24, "follower diverged from the leader")                                          \
    X(EFULL, 25, "queue full")                                                                     \
    X(ENOTRAFT, 26, "not a Raft store")

enum rlog_error {
#define RLOG_ERR_ENUM_(name, code, desc) RLOG_##name = code,
    RLOG_ERRORS(RLOG_ERR_ENUM_)
#undef RLOG_ERR_ENUM_
};

/* Static description of an error code ("unknown error" for others). */
RLOG_API const char *rlog_strerror(int err);
/* "RLOG_ECORRUPT" etc. */
RLOG_API const char *rlog_errname(int err);

/* Maps an errno value (as returned by a vfs call) to an RLOG_E* code:
 * ENOSPC/EDQUOT -> RLOG_ENOSPC, ENOMEM -> RLOG_ENOMEM, EBUSY/EAGAIN/EWOULDBLOCK ->
 * RLOG_EBUSY, ENOENT -> RLOG_ENOTFOUND, others -> RLOG_EIO. */
RLOG_API int rlog_from_errno(int err);

typedef enum rlog_level {
    RLOG_LEVEL_DEBUG = 0,
    RLOG_LEVEL_INFO = 1,
    RLOG_LEVEL_WARN = 2,
    RLOG_LEVEL_ERROR = 3,
} rlog_level;

/* Logging callback. The library never writes to stdout/stderr itself; it
 * reports through this callback when one is set. msg is valid only during
 * the call. May be called from any thread that calls into the library or
 * from the log's background thread. */
typedef void (*rlog_logger_fn)(void *data, rlog_level level, const char *msg);

/* Frees memory the library returned and documented as "free with
 * rlog_free()". NULL is accepted. */
RLOG_API void rlog_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_COMMON_H */
