/*
 * rlog — a struct raft_io (canonical libraft 0.15, raft_io version 2) on
 * rlog: rlog's Raft storage (raft_storage.h: checksummed segments, atomic
 * truncation markers, checksummed snapshot files) and rlog's nng transport.
 * Library librlog-raft (pkg-config rlog-raft, CMake rlog::raft).
 *
 * A libraft program switches from raft_uv by replacing two calls:
 *
 *     raft_uv_tcp_init(&transport, &loop);            // removed
 *     raft_uv_init(&io, &loop, dir, &transport);      // removed
 *     rlog_raft_io_init(&io, &loop, dir, NULL);        // added
 *     ...
 *     raft_close(&raft, close_cb);  // then, in or after close_cb:
 *     rlog_raft_io_fini(&io);       // replaces raft_uv_close + raft_uv_tcp_close
 *
 * Addresses stay libraft's "host:port" strings (mapped to tcp://host:port;
 * an address that already has a scheme, "ipc:///tmp/x", is used as is).
 * docs/raft_io.md has the contract method by method.
 *
 * Threads: every raft_io method must be called on the loop thread, and
 * every callback (append, send, snapshot_put/get, tick, recv, async_work,
 * close) runs on it, never nested inside the method call that asked for it.
 * rlog's own threads (the log's I/O thread, nng's threads) hand their
 * completions to the loop (rlog/loop.h: post()).
 */
#ifndef RLOG_RAFT_IO_H
#define RLOG_RAFT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "rlog/common.h"
#include "rlog/loop.h"
#include "rlog/raft_storage.h"
#include "rlog/transport.h"
#include "rlog/vfs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct raft_io;
struct uv_loop_s;

/* rlog_raft_io_options.flags */
/* Open the log without any thread. Appends are always made durable by a
 * function posted to the loop (rlog_rs_sync, once per turn); without this
 * flag the log keeps one thread that prepares the next segment file off
 * the loop, with it the loop prepares it at rotation. For deterministic
 * single-threaded loops (the simulator). */
#define RLOG_RAFT_IO_NO_THREADS 0x1u

/* Zero-initialised (or NULL) = defaults for every field. Strings are
 * copied by init. */
struct rlog_raft_io_options {
    /* Bytes per log segment file; 0 = 64 MiB (4 KiB .. 4 GiB-1). */
    uint64_t segment_size;
    /* Where the transport listens, as an nng URL ("tcp://0.0.0.0:9001");
     * NULL = the Raft address libraft gives io->init, as tcp://host:port.
     * Peers still reach this server at its Raft address. */
    const char *listen_address;
    /* Messages (one line each, at the given level) from the adapter, the
     * log and the transport. NULL = silent. May be called from the log's
     * I/O thread and from the loop thread. */
    rlog_logger_fn logger;
    void *logger_data;
    /* If set, the node also serves its log directory to `rlog ship follow`
     * mirrors at this nng URL ("tcp://0.0.0.0:9101") through rlog's segment
     * shipping (rlog/ship.h): each mirror keeps a byte-identical copy that
     * is itself a valid rlog Raft directory. NULL = no shipping. */
    const char *ship_address;
    /* Largest message accepted from a peer in bytes; 0 = 64 MiB. Bigger
     * messages make the transport reset the connection. */
    size_t max_message;
    /* Snapshot bytes per InstallSnapshot message (a snapshot is sent as
     * consecutive chunks and reassembled by the receiver); 0 = 1 MiB.
     * Must stay well below the peers' max_message. */
    size_t snapshot_chunk;
    /* How often the adapter polls the transport (and the shipping leader)
     * for timers of its own (redial backoff, handshakes, shipping
     * heartbeats), milliseconds; 0 = 10. Network events wake the loop at
     * once regardless. */
    unsigned poll_ms;
    /* RLOG_RAFT_IO_* flags. */
    unsigned flags;
    /* Advanced: a fresh transport (not yet init()ed) for the shipping
     * leader; NULL = an nng transport. Owned by the adapter from init on
     * (also when init fails). Only used with ship_address. */
    rlog_transport *ship_transport;
};

/*
 * Initialises `io` (all of it is overwritten) as a raft_io on the libuv
 * loop `loop` (borrowed: it must outlive the io) storing its state in
 * `dir` (created if missing, like mkdir; the parent must exist). opts may
 * be NULL. Nothing touches the directory yet: libraft's raft_init calls
 * io->init, which opens (recovers) the store and fails with a message
 * naming file and offset if it is damaged. Returns 0 or a RAFT_* code
 * (RAFT_NOMEM, RAFT_INVALID) with io->errmsg saying why; a failed init
 * leaves nothing to free. Must be called on the loop thread.
 */
RLOG_API int rlog_raft_io_init(struct raft_io *io, struct uv_loop_s *loop, const char *dir,
                               const struct rlog_raft_io_options *opts);

/*
 * The same adapter on any loop and any vfs/env/transport (the simulator's,
 * a fault-injecting vfs): `loop`, `vfs` and `env` are borrowed and must
 * outlive the io (stop using `loop` only after fini); vfs/env NULL = posix.
 * `transport` is a fresh table (rlog_transport_nng_new, the simulator's)
 * that the adapter owns from this call on, also when it fails (it is
 * closed then); NULL = an nng transport. Returns like rlog_raft_io_init.
 */
RLOG_API int rlog_raft_io_init_custom(struct raft_io *io, rlog_loop *loop, const char *dir,
                                      rlog_vfs *vfs, rlog_env *env, rlog_transport *transport,
                                      const struct rlog_raft_io_options *opts);

/*
 * Frees everything init allocated. Call it after the callback of
 * raft_close (which calls io->close) has run, or instead of raft_close when
 * raft_init failed or was never called. Safe on an io whose init failed.
 */
RLOG_API void rlog_raft_io_fini(struct raft_io *io);

/*
 * The Raft store under the io (borrowed, NULL before io->init or after
 * close began): for observing (rlog_rs_stats_get, rlog_rs_summary) on the
 * loop thread. Do not write through it.
 */
RLOG_API rlog_rs *rlog_raft_io_storage(struct raft_io *io);

/*
 * The address the transport listens at (with the port the system chose for
 * "tcp://...:0"), "" before io->start. Loop thread; valid until close.
 */
RLOG_API const char *rlog_raft_io_listen_address(struct raft_io *io);

/* ---- the libuv loop driver (raft_io/loop_uv.c) ---- */

/*
 * An rlog_loop on libuv loop `uv` (borrowed). Must be called on the loop
 * thread. post() from another thread wakes the loop through a
 * uv_async_t, from the loop thread through a uv_idle_t; timers are
 * uv_timer_t; work() uses uv_queue_work. Returns 0 or RLOG_ENOMEM /
 * RLOG_EIO. The handles keep `uv` alive until loop->close()'s done has
 * run; then free the table with rlog_loop_uv_free.
 */
RLOG_API int rlog_loop_uv_new(struct uv_loop_s *uv, rlog_loop **out);
/* Frees the table once its close() completed (done ran). NULL is
 * accepted. */
RLOG_API void rlog_loop_uv_free(rlog_loop *loop);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_RAFT_IO_H */
