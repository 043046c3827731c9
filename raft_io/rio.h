/*
 * Internal state of the raft_io adapter (rlog/raft_io.h). One `rio` per
 * struct raft_io, in io->impl. Everything here is touched on the loop
 * thread only, except the fields marked atomic (nng's threads reach the
 * adapter only through rio_post and the wake hook).
 *
 * Files: io.c (entry points, start, close, time, random, async_work, the
 * posting of callbacks), load.c (load, bootstrap, recover, set_term,
 * set_vote), append.c (append, truncate), snapshot.c (snapshot_put/get),
 * send.c (send, peers, the address book), recv.c (wire messages ->
 * raft_message), conf.c (libraft's configuration encoding),
 * loop_uv.c (the libuv loop driver).
 */
#ifndef RLOG_RAFT_IO_RIO_H
#define RLOG_RAFT_IO_RIO_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <raft.h>

#include "rlog/loop.h"
#include "rlog/raft_io.h"
#include "rlog/raft_storage.h"
#include "rlog/ship.h"
#include "rlog/transport.h"
#include "rlog/vfs.h"

#define RIO_SNAPSHOT_CHUNK_DEFAULT (1u << 20)
#define RIO_POLL_MS_DEFAULT        10u
#define RIO_PEER_QUEUE_MAX         64u /* messages kept for a peer not yet connected */

#define RIO_HOLD_BYTES (1u << 20) /* payload bytes merged into one held message */

typedef struct rio rio;
typedef struct rio_peer rio_peer;
typedef struct rio_send rio_send;

/* An AppendEntries or AppendEntriesResult held until the end of the loop
 * turn (send.c, "Coalescing"); later ones of the same turn merge into it.
 * AppendEntries: m.append_entries.entries is `entries` (the structs are
 * ours, the payloads libraft's, which it keeps until every send callback
 * in `sends` ran). */
typedef struct rio_held {
    struct rio_held *next;
    struct raft_message m;
    struct raft_entry *entries;
    unsigned cap;
    size_t bytes;    /* payload bytes in entries */
    rio_send *sends; /* completed together, in order */
    rio_send *sends_tail;
} rio_held;

/* A message encoded (rlog_msg_encode) while its peer was not up yet. */
typedef struct rio_queued {
    struct rio_queued *next;
    void *buf;
    size_t len;
    void *send; /* send.c's request, completed when it leaves or is dropped */
} rio_queued;

/* A peer: what we know of a server we talk to. */
struct rio_peer {
    rio_peer *next;
    raft_id id;
    char *address; /* libraft's form ("host:port"), as last given or heard */
    bool dialing;  /* connect() done for `url` */
    char *url;     /* transport address we dial */
    bool up;
    bool turn_sent; /* a message left for it during this loop turn */
    rio_held *hhead, *htail;
    rio_queued *qhead, *qtail;
    unsigned qn;
    /* InstallSnapshot reassembly (chunks arrive in order on a connection). */
    bool snap_active;
    uint64_t snap_last_index, snap_last_term, snap_total, snap_have;
    uint8_t *snap_buf; /* raft_malloc'd, snap_total bytes */
};

struct rio {
    struct raft_io *io;
    rlog_loop *loop;
    bool own_loop;        /* rlog_raft_io_init: a uv driver made in io->init */
    struct uv_loop_s *uv; /* rlog_raft_io_init only */
    rlog_vfs *vfs;
    rlog_env *env;
    rlog_transport *t; /* owned; NULL once closed */
    bool t_inited;
    rlog_transport *ship_t; /* owned until handed to the shipping leader */
    char *dir;
    struct rlog_raft_io_options opts; /* strings below are copies */
    char *listen_address;
    char *ship_address;

    raft_id id;
    char *address; /* ours, libraft form */
    rlog_rs *rs;

    raft_io_tick_cb tick;
    raft_io_recv_cb recv;
    rlog_loop_timer *tick_timer;
    rlog_loop_timer *poll_timer;
    rlog_ship_leader *ship;

    raft_index loaded_last; /* load: the last entry handed to libraft (0: none) */

    rio_peer *peers;
    bool flush_posted; /* send.c's end-of-turn flush is queued */
    bool tick_held;    /* io.c held libraft's tick back during an install */

    atomic_uint pending; /* posted functions not yet run */
    atomic_bool poll_posted;
    atomic_bool append_failed; /* an append failed: every later one fails */
    atomic_bool sync_posted;   /* RLOG_RAFT_IO_NO_THREADS: a sync is queued */
    unsigned works;            /* async_work and snapshot work in flight (loop thread) */

    /* snapshot.c (loop thread) */
    struct rio_snap *snap_put; /* the snapshot_put in the work pool (one at a time) */
    struct rio_held_append *held_head, *held_tail; /* appends held by a pending install */

    bool closing;
    bool close_finishing;
    raft_io_close_cb close_cb;
};

/* io.c */
int rlg_rio_post(rio *r, rlog_loop_fn fn, void *arg);
/* Closes the store, then the shipping leader (close; snapshot.c once a
 * pending snapshot_put committed). */
void rlg_rio_store_close(rio *r);
/* Called after each posted function ran (pending--), and by close. */
void rlg_rio_done_one(rio *r);
void rlg_rio_check_closed(rio *r);
int rlg_rio_err(rio *r, int raft_rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void rlg_rio_log(rio *r, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* RLOG_E* -> RAFT_* (storage errors are RAFT_IOERR). */
int rlg_rio_raft_code(int rlog_rv);

/* load.c */
int rlg_rio_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                 struct raft_snapshot **snapshot, raft_index *start_index,
                 struct raft_entry *entries[], size_t *n_entries);
int rlg_rio_bootstrap(struct raft_io *io, const struct raft_configuration *conf);
int rlg_rio_recover(struct raft_io *io, const struct raft_configuration *conf);
int rlg_rio_set_term(struct raft_io *io, raft_term term);
int rlg_rio_set_vote(struct raft_io *io, raft_id server_id);
/* The current snapshot as libraft wants it (raft_malloc'd, one buffer);
 * *out NULL when there is none. Shared by load and snapshot_get. */
int rlg_rio_snapshot_read(rio *r, struct raft_snapshot **out);
/* s as libraft's snapshot (raft_calloc'd, one raft_malloc'd buffer, the
 * configuration decoded). Touches no rio: any thread (snapshot_get's
 * work). RAFT_NOMEM or RAFT_CORRUPT with a message in err. */
int rlg_rio_snapshot_convert(const rlog_rs_snapshot *s, const char *dir, struct raft_snapshot **out,
                             char *err, size_t errcap);
void rlg_rio_snapshot_destroy(struct raft_snapshot *s);

/* append.c */
/* append without the closing check and without holding: what append does
 * once an install no longer holds it (also while closing: held appends
 * were accepted). */
int rlg_rio_append_submit(rio *r, struct raft_io_append *req, const struct raft_entry entries[],
                          unsigned n, raft_io_append_cb cb);
int rlg_rio_append(struct raft_io *io, struct raft_io_append *req,
                   const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
int rlg_rio_truncate(struct raft_io *io, raft_index index);

/* snapshot.c */
int rlg_rio_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                         const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb);
int rlg_rio_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                         raft_io_snapshot_get_cb cb);
/* True while an install (snapshot_put with trailing 0) is in the work
 * pool: appends are held until its marker is written (they belong after
 * it). */
bool rlg_rio_snap_holds(rio *r);
int rlg_rio_snap_hold_append(rio *r, struct raft_io_append *req, const struct raft_entry entries[],
                             unsigned n, raft_io_append_cb cb);

/* send.c */
int rlg_rio_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *message,
                 raft_io_send_cb cb);
void rlg_rio_peer_up(void *data, uint64_t peer_id, const rlog_msg_hello *hello);
void rlg_rio_peer_down(void *data, uint64_t peer_id, int reason);
rio_peer *rlg_rio_peer_get(rio *r, raft_id id);
/* Drops a partly received snapshot. */
void rlg_rio_peer_snap_reset(rio_peer *p);
void rlg_rio_peers_free(rio *r);
/* "host:port" -> "tcp://host:port" (an address with a scheme is kept);
 * malloc'd, NULL when out of memory. */
char *rlg_rio_url(const char *address);

/* recv.c */
void rlg_rio_recv(void *data, uint64_t peer_id, const rlog_msg *msg);

/* conf.c: libraft's configuration encoding (format 1: u8 1, u64le n, then
 * per server u64le id, NUL-terminated address, u8 role). Decodes hostile
 * bytes into c (initialised empty by the caller). RAFT_MALFORMED with a
 * message naming the byte offset. */
int rlg_rio_conf_decode(const void *buf, size_t len, struct raft_configuration *c, char *err,
                        size_t errcap);

#endif /* RLOG_RAFT_IO_RIO_H */
