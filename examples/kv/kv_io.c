/* kv_io: see kv_io.h. */
#include "kv_io.h"

#include <stdio.h>
#include <string.h>

#ifdef KV_HAVE_RLOG_RAFT
#include "rlog/raft_io.h"
#endif

bool kv_io_have_rlog(void)
{
#ifdef KV_HAVE_RLOG_RAFT
    return true;
#else
    return false;
#endif
}

enum kv_io_kind kv_io_default(void)
{
    return kv_io_have_rlog() ? KV_IO_RLOG : KV_IO_UV;
}

int kv_io_parse(const char *name, enum kv_io_kind *kind)
{
    if (strcmp(name, "uv") == 0) {
        *kind = KV_IO_UV;
        return 0;
    }
    if (strcmp(name, "rlog") == 0 && kv_io_have_rlog()) {
        *kind = KV_IO_RLOG;
        return 0;
    }
    return -1;
}

int kv_log_level_parse(const char *name, enum kv_log_level *level)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= KV_LOG_OFF; i++) {
        if (strcmp(name, names[i]) == 0) {
            *level = (enum kv_log_level)i;
            return 0;
        }
    }
    return -1;
}

#ifdef KV_HAVE_RLOG_RAFT
/* rlog's logger: one line on stderr (any thread; stdio locks the stream). */
static void log_to_stderr(void *data, rlog_level level, const char *msg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    struct kv_io *k = data;
    if ((int)level >= (int)k->log_level)
        fprintf(stderr, "rlog %s: %s\n", level <= RLOG_LEVEL_ERROR ? names[level] : "?", msg);
}
#endif

const char *kv_io_name(enum kv_io_kind kind)
{
    return kind == KV_IO_RLOG ? "rlog" : "uv";
}

int kv_io_init(struct kv_io *k, enum kv_io_kind kind, uv_loop_t *loop, const char *dir,
               enum kv_log_level log_level, char *err, size_t err_len)
{
    int rv;
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->log_level = log_level;
    if (kind == KV_IO_RLOG) {
#ifdef KV_HAVE_RLOG_RAFT
        struct rlog_raft_io_options opts = {0}; /* defaults */
        if (log_level != KV_LOG_OFF) {
            opts.logger = log_to_stderr;
            opts.logger_data = k;
        }
        rv = rlog_raft_io_init(&k->io, loop, dir, &opts);
        if (rv != 0)
            snprintf(err, err_len, "rlog_raft_io_init(%s): %s", dir, k->io.errmsg);
        return rv;
#else
        snprintf(err, err_len, "this build has no rlog io (rlog_raft library not found)");
        return RAFT_INVALID;
#endif
    }
    rv = raft_uv_tcp_init(&k->transport, loop);
    if (rv != 0) {
        snprintf(err, err_len, "raft_uv_tcp_init: %s", raft_strerror(rv));
        return rv;
    }
    rv = raft_uv_init(&k->io, loop, dir, &k->transport);
    if (rv != 0) {
        snprintf(err, err_len, "raft_uv_init(%s): %s", dir, k->io.errmsg);
        raft_uv_tcp_close(&k->transport);
        return rv;
    }
    return 0;
}

void kv_io_fini(struct kv_io *k)
{
    if (k->kind == KV_IO_RLOG) {
#ifdef KV_HAVE_RLOG_RAFT
        rlog_raft_io_fini(&k->io);
#endif
        return;
    }
    raft_uv_close(&k->io);
    raft_uv_tcp_close(&k->transport);
}
