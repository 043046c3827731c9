/*
 * The adapter's entry points (rlog/raft_io.h) and the raft_io methods that
 * are about the adapter as a whole: init, start, close, time, random,
 * async_work; plus the one way callbacks reach libraft: rlg_rio_post.
 *
 * Life cycle (docs/raft_io.md, "Life cycle"):
 *   rlog_raft_io_init[_custom]  copies options, makes the directory, fills
 *                               the table; no files opened, no handles.
 *   io->init (raft_init)        opens the store, makes the uv loop driver
 *                               (rlog_raft_io_init), inits the transport,
 *                               starts the shipping leader.
 *   io->start (raft_start)      listens, starts the tick and poll timers.
 *   io->close (raft_close)      stops timers, closes the transport (sends
 *                               in flight: RAFT_CANCELED), the shipping
 *                               leader and the store (appends in flight
 *                               complete with their real status), waits
 *                               for posted callbacks and async work, closes
 *                               the uv driver, then calls libraft's cb.
 *   rlog_raft_io_fini           frees the rest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_io/rio.h"

/* ------------------------------------------------------------ messages */

void rlg_rio_log(rio *r, rlog_level level, const char *fmt, ...)
{
    if (r->opts.logger == NULL) {
        return;
    }
    char buf[768];
    int k = snprintf(buf, sizeof buf, "raft_io %llu: ", (unsigned long long)r->id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
    va_end(ap);
    r->opts.logger(r->opts.logger_data, level, buf);
}

/* Copies msg into out (cap bytes) with every occurrence of the data
 * directory `dir` written as ".../<its last component>". */
static void rio_elide_dir(const char *msg, const char *dir, char *out, size_t cap)
{
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') {
        dl--;
    }
    const char *base = dir + dl;
    while (base > dir && base[-1] != '/') {
        base--;
    }
    size_t o = 0;
    for (const char *p = msg; *p != '\0' && o + 1 < cap;) {
        if (dl > 0 && strncmp(p, dir, dl) == 0) {
            int k = snprintf(out + o, cap - o, ".../%.*s", (int)(dir + dl - base), base);
            o = k < 0 || (size_t)k >= cap - o ? cap - 1 : o + (size_t)k;
            p += dl;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* io->errmsg is libraft's fixed buffer (RAFT_ERRMSG_BUF_SIZE, 256 bytes).
 * A message that does not fit names the data directory by its last
 * component, so that what failed, the file and the offset survive a long
 * directory path (found by `make test` from a checkout 151 characters
 * deep: the segment's name had been cut off). */
int rlg_rio_err(rio *r, int raft_rv, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strlen(msg) >= sizeof r->io->errmsg && r->dir != NULL && r->dir[0] != '\0') {
        char shorter[sizeof msg];
        rio_elide_dir(msg, r->dir, shorter, sizeof shorter);
        memcpy(msg, shorter, sizeof msg);
    }
    size_t n = strlen(msg);
    if (n >= sizeof r->io->errmsg) {
        n = sizeof r->io->errmsg - 1; /* cut at the end: what failed comes first */
    }
    memcpy(r->io->errmsg, msg, n);
    r->io->errmsg[n] = '\0';
    return raft_rv;
}

int rlg_rio_raft_code(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RLOG_ENOMEM:
        return RAFT_NOMEM;
    case RLOG_EINVAL:
    case RLOG_ENONCONTIG:
    case RLOG_ETERM:
    case RLOG_EVOTE:
    case RLOG_ESTALE:
        return RAFT_INVALID;
    case RLOG_ETOOBIG:
        return RAFT_TOOBIG;
    case RLOG_ECORRUPT:
        return RAFT_CORRUPT;
    case RLOG_ECANCELED:
    case RLOG_ECLOSED:
        return RAFT_CANCELED;
    case RLOG_ENOCONN:
        return RAFT_NOCONNECTION;
    default: /* EIO, ENOSPC, EPOISONED, ...: the disk failed */
        return RAFT_IOERR;
    }
}

/* ------------------------------------------------------------- posting */

int rlg_rio_post(rio *r, rlog_loop_fn fn, void *arg)
{
    atomic_fetch_add(&r->pending, 1);
    int rv = r->loop->post(r->loop, fn, arg);
    if (rv != 0) {
        atomic_fetch_sub(&r->pending, 1);
    }
    return rv;
}

void rlg_rio_done_one(rio *r)
{
    atomic_fetch_sub(&r->pending, 1);
    rlg_rio_check_closed(r);
}

static void rio_close_done(void *arg)
{
    rio *r = arg;
    raft_io_close_cb cb = r->close_cb;
    r->close_cb = NULL;
    if (cb != NULL) {
        cb(r->io); /* may call rlog_raft_io_fini: r is gone after this */
    }
}

/* Close completes once the teardown ran and nothing posted or worked is
 * left; libraft's callback runs on a later turn of the loop. */
void rlg_rio_check_closed(rio *r)
{
    if (!r->closing || r->close_finishing || r->t != NULL || r->rs != NULL ||
        atomic_load(&r->pending) > 0 || r->works > 0) {
        return;
    }
    r->close_finishing = true;
    if (r->own_loop) {
        r->loop->close(r->loop, rio_close_done, r);
    } else if (r->loop->post(r->loop, rio_close_done, r) != 0) {
        rio_close_done(r); /* the loop refuses posts: nothing else can run */
    }
}

/* --------------------------------------------------- transport polling */

static void rio_poll_now(rio *r)
{
    if (r->closing) {
        return;
    }
    if (r->t != NULL && r->t_inited) {
        r->t->poll(r->t, 0);
    }
    if (r->ship != NULL && !r->closing) {
        rlog_ship_leader_poll(r->ship, 0);
    }
}

static void rio_poll_task(void *arg)
{
    rio *r = arg;
    atomic_store(&r->poll_posted, false);
    rio_poll_now(r);
    rlg_rio_done_one(r);
}

/* The transports' wake hook: any thread. One poll queued at a time. */
static void rio_wake(void *data)
{
    rio *r = data;
    if (!atomic_exchange(&r->poll_posted, true)) {
        if (rlg_rio_post(r, rio_poll_task, r) != 0) {
            atomic_store(&r->poll_posted, false);
        }
    }
}

static void rio_poll_timer(void *arg)
{
    rio_poll_now(arg);
}

/* libraft's tick, except while an install from the leader (snapshot_put
 * with trailing 0) is being written. libraft 0.15 lets a follower's
 * election timer fire during an install and turn it into a candidate; when
 * the install's callback then runs it answers the leader from
 * follower_state, which a candidate's state overlays, and sends to a
 * garbage address (a crash in io->send, with any io: the cluster simulator
 * found it once installs took longer than an election timeout, seed 310).
 * Later libraft versions refuse that conversion in tick; rlog does it from
 * the io side by holding the tick back until the install completes. */
static void rio_tick_timer(void *arg)
{
    rio *r = arg;
    if (r->closing || r->tick == NULL) {
        return;
    }
    if (rlg_rio_snap_holds(r)) {
        if (!r->tick_held) {
            rlg_rio_log(r, RLOG_LEVEL_INFO,
                        "tick held back while an install from the leader is written");
            r->tick_held = true;
        }
        return;
    }
    r->tick_held = false;
    r->tick(r->io);
}

/* ------------------------------------------------------------- methods */

static void rio_log_relay(void *data, rlog_level level, const char *msg)
{
    rio *r = data;
    r->opts.logger(r->opts.logger_data, level, msg);
}

static int rio_open_store(rio *r)
{
    rlog_rs_options o;
    rlog_rs_options_init(&o);
    o.log.vfs = r->vfs;
    o.log.env = r->env;
    o.log.segment_size = r->opts.segment_size;
    o.log.sync = RLOG_SYNC_GROUP;
    o.log.flags = RLOG_OPEN_CREATE;
    if (!(r->opts.flags & RLOG_RAFT_IO_NO_THREADS)) {
        /* Segments are prepared off the loop; appends are made durable by
         * the loop itself, once per turn (append.c). */
        o.log.flags |= RLOG_OPEN_PREPARER;
    }
    if (r->opts.logger != NULL) {
        o.log.logger = rio_log_relay;
        o.log.logger_data = r;
    }
    rlog_rs_open_report rep;
    memset(&rep, 0, sizeof rep);
    int rv = rlog_rs_open(r->dir, &o, &r->rs, &rep);
    if (rv != 0) {
        r->rs = NULL;
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "open %s: %s: %s", r->dir, rlog_errname(rv),
                           rep.message[0] ? rep.message : rlog_strerror(rv));
    }
    return 0;
}

static int rio_start_ship(rio *r)
{
    rlog_transport *st = r->ship_t;
    r->ship_t = NULL;
    int rv = st != NULL ? 0 : rlog_transport_nng_new(&st);
    if (rv != 0) {
        return rlg_rio_err(r, RAFT_NOMEM, "shipping: out of memory");
    }
    rlog_transport_config c;
    rlog_transport_config_init(&c);
    c.server_id = r->id;
    c.address = r->ship_address;
    c.role = RLOG_ROLE_SHIP_LEADER;
    c.logger = r->opts.logger != NULL ? rio_log_relay : NULL;
    c.logger_data = r;
    c.wake = rio_wake;
    c.wake_data = r;
    rlog_ship_leader_options so;
    memset(&so, 0, sizeof so);
    so.env = r->env;
    so.logger = c.logger;
    so.logger_data = r;
    rv = rlog_ship_leader_new(rlog_rs_log(r->rs), st, &c, &so, &r->ship);
    if (rv != 0) {
        r->ship = NULL;
        return rlg_rio_err(r, rv == RLOG_EBUSY ? RAFT_IOERR : rlg_rio_raft_code(rv),
                           "shipping: cannot serve at %s: %s", r->ship_address, rlog_strerror(rv));
    }
    return 0;
}

static void rio_loop_free(void *arg)
{
    rlog_loop_uv_free(arg);
}

static int rio_init(struct raft_io *io, raft_id id, const char *address)
{
    rio *r = io->impl;
    int rv;
    if (r->rs != NULL || id == 0 || address == NULL) {
        return rlg_rio_err(r, RAFT_INVALID, "init: called twice, or id 0 / no address");
    }
    r->id = id;
    r->address = strdup(address);
    if (r->address == NULL) {
        return rlg_rio_err(r, RAFT_NOMEM, "init: out of memory");
    }
    if (r->own_loop && (rv = rlog_loop_uv_new(r->uv, &r->loop)) != 0) {
        r->loop = NULL;
        rv =
            rlg_rio_err(r, rlg_rio_raft_code(rv), "init: libuv loop driver: %s", rlog_strerror(rv));
        goto err;
    }
    if ((rv = rio_open_store(r)) != 0) {
        goto err_loop;
    }
    char *url = r->listen_address != NULL ? NULL : rlg_rio_url(address);
    rlog_transport_config c;
    rlog_transport_config_init(&c);
    c.server_id = id;
    c.address = r->listen_address != NULL ? r->listen_address : url;
    c.role = RLOG_ROLE_RAFT;
    c.max_message = r->opts.max_message;
    c.logger = r->opts.logger != NULL ? rio_log_relay : NULL;
    c.logger_data = r;
    c.wake = rio_wake;
    c.wake_data = r;
    rlog_transport_events ev = {.data = r,
                                .peer_up = rlg_rio_peer_up,
                                .peer_down = rlg_rio_peer_down,
                                .recv = rlg_rio_recv};
    if (c.address == NULL) {
        rv = rlg_rio_err(r, RAFT_NOMEM, "init: out of memory");
        goto err_store;
    }
    rv = r->t->init(r->t, &c, &ev);
    free(url);
    if (rv != 0) {
        rv = rlg_rio_err(r, rv == RLOG_ENOMEM ? RAFT_NOMEM : RAFT_INVALID,
                         "init: transport for %s: %s", address, r->t->errmsg);
        goto err_store;
    }
    r->t_inited = true;
    if (r->ship_address != NULL && (rv = rio_start_ship(r)) != 0) {
        goto err_store;
    }
    return 0;

err_store:
    rlog_rs_close(r->rs);
    r->rs = NULL;
err_loop:
    if (r->own_loop && r->loop != NULL) {
        r->loop->close(r->loop, rio_loop_free, r->loop);
        r->loop = NULL;
    }
err:
    free(r->address);
    r->address = NULL;
    r->id = 0;
    return rv;
}

static int rio_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    rio *r = io->impl;
    if (r->rs == NULL || r->closing || r->tick_timer != NULL) {
        return rlg_rio_err(r, RAFT_INVALID, "start: io->init first, and only once");
    }
    r->tick = tick;
    r->recv = recv;
    int rv = r->t->listen(r->t);
    if (rv != 0) {
        return rlg_rio_err(r, RAFT_IOERR, "start: listen: %s", r->t->errmsg);
    }
    unsigned poll_ms = r->opts.poll_ms ? r->opts.poll_ms : RIO_POLL_MS_DEFAULT;
    if ((rv = r->loop->timer_start(r->loop, poll_ms, poll_ms, rio_poll_timer, r, &r->poll_timer)) !=
            0 ||
        (rv = r->loop->timer_start(r->loop, msecs, msecs, rio_tick_timer, r, &r->tick_timer)) !=
            0) {
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "start: timer: %s", rlog_strerror(rv));
    }
    return 0;
}

static void rio_teardown(rio *r)
{
    if (r->tick_timer != NULL) {
        r->loop->timer_stop(r->loop, r->tick_timer);
        r->tick_timer = NULL;
    }
    if (r->poll_timer != NULL) {
        r->loop->timer_stop(r->loop, r->poll_timer);
        r->poll_timer = NULL;
    }
    if (r->t != NULL) {
        rlog_transport *t = r->t;
        r->t = NULL;
        t->close(t); /* send completions run in here: RAFT_CANCELED, posted */
    }
    rlg_rio_peers_free(r);     /* queued sends: RAFT_CANCELED, posted */
    if (r->snap_put == NULL) { /* else once it committed (snapshot.c) */
        rlg_rio_store_close(r);
    }
}

void rlg_rio_store_close(rio *r)
{
    if (r->rs != NULL) {
        rlog_rs *rs = r->rs;
        r->rs = NULL;
        /* Appends in flight complete first (posted; their completions may
         * still notify the shipping leader, freed only after). */
        int rv = rlog_rs_close(rs);
        if (rv != 0) {
            rlg_rio_log(r, RLOG_LEVEL_WARN, "close: store: %s", rlog_strerror(rv));
        }
    }
    if (r->ship_t != NULL) {
        r->ship_t->close(r->ship_t);
        r->ship_t = NULL;
    }
    if (r->ship != NULL) {
        rlog_ship_leader_free(r->ship);
        r->ship = NULL;
    }
}

static void rio_close(struct raft_io *io, raft_io_close_cb cb)
{
    rio *r = io->impl;
    if (r->closing) {
        return;
    }
    r->closing = true;
    r->close_cb = cb;
    rio_teardown(r);
    if (r->loop == NULL) { /* io->init never succeeded: nothing can be pending */
        if (cb != NULL) {
            cb(io);
        }
        return;
    }
    rlg_rio_check_closed(r);
}

static raft_time rio_time(struct raft_io *io)
{
    rio *r = io->impl;
    if (r->loop != NULL) {
        return (raft_time)r->loop->now_ms(r->loop);
    }
    return (raft_time)(r->env->now_ns(r->env) / 1000000u);
}

static int rio_random(struct raft_io *io, int min, int max)
{
    rio *r = io->impl;
    if (max <= min) {
        return min;
    }
    uint64_t span = (uint64_t)((int64_t)max - (int64_t)min);
    return (int)((int64_t)min + (int64_t)(r->env->random(r->env) % span));
}

typedef struct rio_work {
    rio *r;
    struct raft_io_async_work *req;
    raft_io_async_work_cb cb;
} rio_work;

static int rio_work_fn(void *arg)
{
    rio_work *w = arg;
    return w->req->work(w->req);
}

static void rio_work_after(void *arg, int status)
{
    rio_work *w = arg;
    rio *r = w->r;
    struct raft_io_async_work *req = w->req;
    raft_io_async_work_cb cb = w->cb;
    free(w);
    r->works--;
    if (cb != NULL) {
        cb(req, status == RLOG_ECANCELED ? RAFT_CANCELED : status);
    }
    rlg_rio_check_closed(r);
}

static int rio_async_work(struct raft_io *io, struct raft_io_async_work *req,
                          raft_io_async_work_cb cb)
{
    rio *r = io->impl;
    if (r->closing || r->loop == NULL) {
        return rlg_rio_err(r, RAFT_CANCELED, "async_work: closing");
    }
    rio_work *w = malloc(sizeof *w);
    if (w == NULL) {
        return rlg_rio_err(r, RAFT_NOMEM, "async_work: out of memory");
    }
    w->r = r;
    w->req = req;
    w->cb = cb;
    req->cb = cb;
    int rv = r->loop->work(r->loop, rio_work_fn, rio_work_after, w);
    if (rv != 0) {
        free(w);
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "async_work: %s", rlog_strerror(rv));
    }
    r->works++;
    return 0;
}

/* ------------------------------------------------------- entry points */

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    if (d == NULL) {
        *oom = true;
    }
    return d;
}

static void rio_free(rio *r)
{
    free(r->dir);
    free(r->listen_address);
    free(r->ship_address);
    free(r->address);
    free(r);
}

static int rio_setup(struct raft_io *io, rio *r, const char *dir,
                     const struct rlog_raft_io_options *opts)
{
    bool oom = false;
    if (opts != NULL) {
        r->opts = *opts;
    }
    r->ship_t = r->opts.ship_transport;
    r->opts.ship_transport = NULL;
    r->dir = dup_or_null(dir, &oom);
    r->listen_address = dup_or_null(r->opts.listen_address, &oom);
    r->ship_address = dup_or_null(r->opts.ship_address, &oom);
    r->opts.listen_address = r->listen_address;
    r->opts.ship_address = r->ship_address;
    if (oom) {
        return rlg_rio_err(r, RAFT_NOMEM, "init: out of memory");
    }
    if (dir == NULL || dir[0] == '\0') {
        return rlg_rio_err(r, RAFT_INVALID, "init: no directory");
    }
    int e = r->vfs->mkdir(r->vfs, dir);
    if (e != 0 && e != EEXIST) {
        return rlg_rio_err(r, RAFT_IOERR, "init: cannot create directory %s: %s", dir, strerror(e));
    }
    io->version = 2;
    io->impl = r;
    io->init = rio_init;
    io->close = rio_close;
    io->load = rlg_rio_load;
    io->start = rio_start;
    io->bootstrap = rlg_rio_bootstrap;
    io->recover = rlg_rio_recover;
    io->set_term = rlg_rio_set_term;
    io->set_vote = rlg_rio_set_vote;
    io->send = rlg_rio_send;
    io->append = rlg_rio_append;
    io->truncate = rlg_rio_truncate;
    io->snapshot_put = rlg_rio_snapshot_put;
    io->snapshot_get = rlg_rio_snapshot_get;
    io->time = rio_time;
    io->random = rio_random;
    io->async_work = rio_async_work;
    return 0;
}

static int rio_new(struct raft_io *io, rlog_loop *loop, struct uv_loop_s *uv, const char *dir,
                   rlog_vfs *vfs, rlog_env *env, rlog_transport *t,
                   const struct rlog_raft_io_options *opts)
{
    memset(io, 0, sizeof *io);
    rlog_transport *ship_t = opts != NULL ? opts->ship_transport : NULL;
    rio *r = calloc(1, sizeof *r);
    int rv = RAFT_NOMEM;
    if (r == NULL) {
        snprintf(io->errmsg, sizeof io->errmsg, "init: out of memory");
        goto err;
    }
    r->io = io;
    r->loop = loop;
    r->uv = uv;
    r->own_loop = uv != NULL;
    r->vfs = vfs != NULL ? vfs : rlog_vfs_posix();
    r->env = env != NULL ? env : rlog_env_posix();
    atomic_init(&r->pending, 0);
    atomic_init(&r->poll_posted, false);
    atomic_init(&r->append_failed, false);
    atomic_init(&r->sync_posted, false);
    if (t == NULL && rlog_transport_nng_new(&t) != 0) {
        snprintf(io->errmsg, sizeof io->errmsg, "init: out of memory (transport)");
        goto err;
    }
    r->t = t;
    t = NULL;
    ship_t = NULL; /* rio_setup takes it from opts */
    if ((rv = rio_setup(io, r, dir, opts)) != 0) {
        goto err;
    }
    return 0;

err:
    if (r != NULL) {
        if (r->t != NULL) {
            r->t->close(r->t);
        }
        ship_t = r->ship_t != NULL ? r->ship_t : ship_t;
        char msg[RAFT_ERRMSG_BUF_SIZE];
        memcpy(msg, io->errmsg, sizeof msg);
        rio_free(r);
        memset(io, 0, sizeof *io);
        memcpy(io->errmsg, msg, sizeof msg);
    }
    if (t != NULL) {
        t->close(t);
    }
    if (ship_t != NULL) {
        ship_t->close(ship_t);
    }
    return rv;
}

int rlog_raft_io_init(struct raft_io *io, struct uv_loop_s *loop, const char *dir,
                      const struct rlog_raft_io_options *opts)
{
    if (loop == NULL) {
        memset(io, 0, sizeof *io);
        snprintf(io->errmsg, sizeof io->errmsg, "init: no libuv loop");
        return RAFT_INVALID;
    }
    return rio_new(io, NULL, loop, dir, NULL, NULL, NULL, opts);
}

int rlog_raft_io_init_custom(struct raft_io *io, rlog_loop *loop, const char *dir, rlog_vfs *vfs,
                             rlog_env *env, rlog_transport *transport,
                             const struct rlog_raft_io_options *opts)
{
    if (loop == NULL) {
        memset(io, 0, sizeof *io);
        if (transport != NULL) {
            transport->close(transport);
        }
        if (opts != NULL && opts->ship_transport != NULL) {
            opts->ship_transport->close(opts->ship_transport);
        }
        snprintf(io->errmsg, sizeof io->errmsg, "init: no loop table");
        return RAFT_INVALID;
    }
    return rio_new(io, loop, NULL, dir, vfs, env, transport, opts);
}

void rlog_raft_io_fini(struct raft_io *io)
{
    rio *r = io->impl;
    if (r == NULL) {
        return;
    }
    if (!r->closing) {
        /* raft_close never ran (raft_init failed or was never called). */
        r->closing = true;
        rio_teardown(r);
        if (r->own_loop && r->loop != NULL) {
            r->loop->close(r->loop, rio_loop_free, r->loop);
            r->loop = NULL;
        }
        if (atomic_load(&r->pending) > 0 || r->works > 0) {
            io->impl = NULL; /* still referenced by queued functions: leak it */
            return;
        }
    } else if (r->own_loop && r->loop != NULL) {
        rlog_loop_uv_free(r->loop);
    }
    rio_free(r);
    io->impl = NULL;
}

rlog_rs *rlog_raft_io_storage(struct raft_io *io)
{
    rio *r = io->impl;
    return r != NULL && !r->closing ? r->rs : NULL;
}

const char *rlog_raft_io_listen_address(struct raft_io *io)
{
    rio *r = io->impl;
    if (r == NULL || r->t == NULL || !r->t_inited || r->t->local_address == NULL) {
        return "";
    }
    return r->t->local_address(r->t);
}
