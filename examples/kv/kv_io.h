/*
 * kv_io — the one place where the kv example and bench/raftkv choose the
 * struct raft_io that libraft runs on:
 *
 *   rlog: rlog_raft_io_init(io, loop, dir, NULL)          (include/rlog/raft_io.h)
 *   uv:   raft_uv_tcp_init(transport, loop) + raft_uv_init(io, loop, dir, transport)
 *
 * Porting a libraft program from raft_uv to rlog is exactly the change
 * between the two branches of kv_io_init and kv_io_fini. The rlog branch is
 * compiled when the build has the rlog_raft library (KV_HAVE_RLOG_RAFT).
 */
#ifndef KV_IO_H
#define KV_IO_H

#include <stdbool.h>
#include <stddef.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

enum kv_io_kind { KV_IO_UV, KV_IO_RLOG };

/* Messages of the rlog io at or above this level go to stderr. */
enum kv_log_level { KV_LOG_DEBUG, KV_LOG_INFO, KV_LOG_WARN, KV_LOG_ERROR, KV_LOG_OFF };

struct kv_io {
    struct raft_io io;                  /* what raft_init gets */
    struct raft_uv_transport transport; /* uv only */
    enum kv_io_kind kind;
    enum kv_log_level log_level;
};

/* True when this build has the rlog io (the rlog_raft library). */
bool kv_io_have_rlog(void);

/* rlog when built with it, uv otherwise. */
enum kv_io_kind kv_io_default(void);

/* "rlog" or "uv" into *kind; -1 for any other name or for "rlog" in a build
 * without it. */
int kv_io_parse(const char *name, enum kv_io_kind *kind);

const char *kv_io_name(enum kv_io_kind kind);

/* "debug", "info", "warn", "error" or "off" into *level; -1 otherwise. */
int kv_log_level_parse(const char *name, enum kv_log_level *level);

/* Initialises k->io for a raft instance on loop storing in dir (which must
 * exist). log_level filters the rlog io's messages (raft_uv has none).
 * Returns 0, or a libraft error code with a message in err; on failure
 * nothing is left to free. */
int kv_io_init(struct kv_io *k, enum kv_io_kind kind, uv_loop_t *loop, const char *dir,
               enum kv_log_level log_level, char *err, size_t err_len);

/* Frees what kv_io_init allocated. Call only after raft_close's callback ran
 * (or, for an io used without a raft instance, after io->close's callback). */
void kv_io_fini(struct kv_io *k);

#endif
