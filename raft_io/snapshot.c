/*
 * snapshot_put and snapshot_get.
 *
 * Both do their disk work synchronously on the loop thread (the store's
 * handle is used from one thread) and deliver libraft's callback on a
 * later turn of the loop (with the real status, also once close began).
 * snapshot_put writes the data to its own file
 * (temp, fsync, rename, directory fsync), then the marker (durable); with
 * trailing > 0 entries up to index - trailing are dropped (compaction),
 * with trailing == 0 the snapshot replaces the whole log (a snapshot
 * installed from the leader: the next append starts at index + 1).
 * libraft's buffers are only read during the call. The snapshot handed to
 * snapshot_get's callback is libraft's (raft_malloc'd, one buffer).
 */
#include <stdlib.h>

#include "raft_io/rio.h"

typedef struct rio_snap {
    rio *r;
    struct raft_io_snapshot_put *put;
    raft_io_snapshot_put_cb put_cb;
    struct raft_io_snapshot_get *get;
    raft_io_snapshot_get_cb get_cb;
    struct raft_snapshot *snapshot; /* get: what the callback receives */
    int status;                     /* RAFT_* */
} rio_snap;

static void snap_deliver(void *arg)
{
    rio_snap *s = arg;
    rio *r = s->r;
    int st = s->status; /* the disk work is done: its real status, also when closing */
    if (s->put != NULL) {
        if (s->put_cb != NULL) {
            s->put_cb(s->put, st);
        }
    } else {
        struct raft_snapshot *snap = s->snapshot;
        if (st != 0 && snap != NULL) {
            rlg_rio_snapshot_destroy(snap);
            snap = NULL;
        }
        if (s->get_cb != NULL) {
            s->get_cb(s->get, snap, st);
        } else if (snap != NULL) {
            rlg_rio_snapshot_destroy(snap);
        }
    }
    free(s);
    rlg_rio_done_one(r);
}

static int snap_post(rio *r, rio_snap *s)
{
    int rv = rlg_rio_post(r, snap_deliver, s);
    if (rv != 0) {
        if (s->snapshot != NULL) {
            rlg_rio_snapshot_destroy(s->snapshot);
        }
        free(s);
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "snapshot: cannot post: %s",
                           rlog_strerror(rv));
    }
    return 0;
}

int rlg_rio_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                         const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    rio *r = io->impl;
    if (r->rs == NULL || r->closing) {
        return rlg_rio_err(r, RAFT_CANCELED, "snapshot_put: the io is closing or not initialised");
    }
    req->cb = cb;
    rio_snap *s = calloc(1, sizeof *s);
    rlog_rs_buf *bufs = calloc(snapshot->n_bufs > 0 ? snapshot->n_bufs : 1, sizeof *bufs);
    struct raft_buffer conf = {NULL, 0};
    int rv = s == NULL || bufs == NULL ? RAFT_NOMEM
                                       : raft_configuration_encode(&snapshot->configuration, &conf);
    if (rv != 0) {
        free(s);
        free(bufs);
        return rlg_rio_err(r, rv, "snapshot_put: %s", raft_strerror(rv));
    }
    for (unsigned i = 0; i < snapshot->n_bufs; i++) {
        bufs[i].base = snapshot->bufs[i].base;
        bufs[i].len = snapshot->bufs[i].len;
    }
    rlog_rs_snapshot_desc d = {.index = snapshot->index,
                               .term = snapshot->term,
                               .conf_index = snapshot->configuration_index,
                               .conf = conf.base,
                               .conf_len = (uint32_t)conf.len,
                               .bufs = bufs,
                               .n_bufs = snapshot->n_bufs,
                               .trailing = trailing};
    s->r = r;
    s->put = req;
    s->put_cb = cb;
    rv = atomic_load(&r->append_failed) ? RLOG_EPOISONED : rlog_rs_snapshot_put(r->rs, &d);
    raft_free(conf.base);
    free(bufs);
    if (rv != 0) {
        /* Reported through the callback, like a failed write in raft_uv.
         * And the server goes fail-stop, as after a failed append: libraft
         * 0.15 carries on after a failed install as if the log started
         * after the snapshot, while the store still ends where it did, so
         * its next append would land at another index than it meant (the
         * cluster simulator's seed 118488). Every later append fails. */
        atomic_store(&r->append_failed, true);
        s->status = rlg_rio_raft_code(rv);
        rlg_rio_err(r, s->status, "snapshot_put at index %llu (trailing %u) in %s: %s",
                    (unsigned long long)snapshot->index, trailing, r->dir,
                    rv == RLOG_EPOISONED ? "an earlier append failed" : rlog_rs_errmsg(r->rs));
        rlg_rio_log(r, RLOG_LEVEL_ERROR, "%s", io->errmsg);
    }
    return snap_post(r, s);
}

int rlg_rio_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                         raft_io_snapshot_get_cb cb)
{
    rio *r = io->impl;
    if (r->rs == NULL || r->closing) {
        return rlg_rio_err(r, RAFT_CANCELED, "snapshot_get: the io is closing or not initialised");
    }
    req->cb = cb;
    rio_snap *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return rlg_rio_err(r, RAFT_NOMEM, "snapshot_get: out of memory");
    }
    s->r = r;
    s->get = req;
    s->get_cb = cb;
    s->status = rlg_rio_snapshot_read(r, &s->snapshot);
    if (s->status == 0 && s->snapshot == NULL) {
        s->status = rlg_rio_err(r, RAFT_NOTFOUND, "snapshot_get: no snapshot in %s", r->dir);
    }
    return snap_post(r, s);
}
