/*
 * snapshot_put and snapshot_get: the file I/O runs in the loop's work pool
 * (libuv: uv_queue_work), so a large snapshot does not stop the loop while
 * it is written or read; what touches the store's handle stays on the loop
 * thread. The same path runs on every loop: a single-threaded loop (the
 * simulator's) runs the work inline on a later turn, so the simulator
 * drives exactly what production runs, appends arriving during an install
 * included.
 *
 * put: on the call, the store checks and copies the descriptor
 * (rlog_rs_snapshot_prepare); in the pool, the data file is written (temp,
 * fsync, rename, directory fsync: rlog_rs_snapshot_write; libraft keeps
 * its buffers until the callback); back on the loop, the marker is
 * written (durable), entries up to index - trailing are dropped and
 * segments deleted (rlog_rs_snapshot_commit), then libraft's callback
 * runs. One put at a time (libraft never starts a second; a second is
 * refused with RAFT_BUSY).
 *
 * Ordering with appends. trailing > 0 (a snapshot taken locally): appends
 * and truncations go on meanwhile; the marker only drops entries at or
 * below index - trailing, which libraft has applied and never truncates.
 * trailing == 0 (an install from the leader, replacing the log): libraft
 * 0.15 already counts its log as ending at the snapshot's index, so an
 * append made meanwhile (it ignores AppendEntries while installing, but a
 * follower whose election timer fires may become leader and append) is at
 * index + 1 — an index the store reaches only with the marker. Such
 * appends are held (copied) and handed to the store, in order, right
 * after the marker; appends in flight before the put were queued before
 * the marker and are replaced by it, as libraft means.
 *
 * get: on the call, the current snapshot's file is opened and its marker
 * copied (rlog_rs_snapshot_open: a newer snapshot's cleanup cannot take
 * the file away); in the pool, it is read, verified (size, CRC32C) and
 * turned into libraft's snapshot (raft_malloc'd, one buffer).
 *
 * Close: the work in the pool is waited for (the close callback comes
 * after). A pending put is finished, not canceled: the store closes only
 * after its commit, then the held appends reach the store and complete
 * with their real status (see append.c, "Close"); callbacks carry real
 * statuses. If the loop drops the work (RLOG_ECANCELED) the callback gets
 * RAFT_CANCELED and a put's file is removed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_io/rio.h"

typedef struct rio_snap {
    rio *r;
    struct raft_io_snapshot_put *put;
    raft_io_snapshot_put_cb put_cb;
    struct raft_io_snapshot_get *get;
    raft_io_snapshot_get_cb get_cb;
    rlog_rs_snap_job *job;
    bool install;                   /* put with trailing 0 */
    unsigned trailing;              /* put */
    raft_index index;               /* put */
    struct raft_snapshot *snapshot; /* get: what the callback receives */
    int status;                     /* RAFT_* */
    char errmsg[300];               /* get: the work's message */
} rio_snap;

/* An append made while an install was pending: entries and payloads
 * copied (libraft lends them only during the call). */
typedef struct rio_held_append {
    struct rio_held_append *next;
    rio *r;
    struct raft_io_append *req;
    raft_io_append_cb cb;
    unsigned n;
    struct raft_entry *entries; /* n, payloads in the same block */
} rio_held_append;

static void snap_deliver(rio_snap *s)
{
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
    rlog_rs_snapshot_job_free(s->job);
    free(s);
}

/* A failure found on the call: the callback on a later turn. */
static void snap_posted(void *arg)
{
    rio_snap *s = arg;
    rio *r = s->r;
    snap_deliver(s);
    rlg_rio_done_one(r);
}

static int snap_post(rio *r, rio_snap *s)
{
    int rv = rlg_rio_post(r, snap_posted, s);
    if (rv != 0) {
        if (s->snapshot != NULL) {
            rlg_rio_snapshot_destroy(s->snapshot);
        }
        rlog_rs_snapshot_job_free(s->job);
        free(s);
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "snapshot: cannot post: %s",
                           rlog_strerror(rv));
    }
    return 0;
}

/* Hands it to the pool; on failure s is freed and the error returned. */
static int snap_queue(rio *r, rio_snap *s, rlog_loop_work_fn fn, rlog_loop_after_fn after)
{
    int rv = r->loop->work(r->loop, fn, after, s);
    if (rv != 0) {
        rlog_rs_snapshot_job_free(s->job);
        free(s);
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "snapshot: cannot queue the work: %s",
                           rlog_strerror(rv));
    }
    r->works++;
    return 0;
}

/* ------------------------------------------------------------------ put */

static void held_append_free(rio_held_append *h)
{
    free(h->entries);
    free(h);
}

static void held_failed(void *arg)
{
    rio_held_append *h = arg;
    rio *r = h->r;
    if (h->cb != NULL) {
        h->cb(h->req, RAFT_IOERR);
    }
    held_append_free(h);
    rlg_rio_done_one(r);
}

/* The install committed (or failed): the held appends go to the store in
 * the order they were made. After a failed install the store is failed
 * too, and each of them fails like any later append. */
static void held_release(rio *r)
{
    rio_held_append *h = r->held_head;
    r->held_head = r->held_tail = NULL;
    while (h != NULL) {
        rio_held_append *next = h->next;
        int rv = r->rs != NULL ? rlg_rio_append_submit(r, h->req, h->entries, h->n, h->cb)
                               : RAFT_CANCELED;
        if (rv == 0) {
            held_append_free(h);
        } else {
            rlg_rio_log(r, RLOG_LEVEL_ERROR, "append held by an install: %s", r->io->errmsg);
            if (rlg_rio_post(r, held_failed, h) != 0) {
                held_append_free(h);
            }
        }
        h = next;
    }
}

bool rlg_rio_snap_holds(rio *r)
{
    return r->snap_put != NULL && r->snap_put->install;
}

int rlg_rio_snap_hold_append(rio *r, struct raft_io_append *req, const struct raft_entry entries[],
                             unsigned n, raft_io_append_cb cb)
{
    size_t bytes = (size_t)n * sizeof(struct raft_entry);
    for (unsigned i = 0; i < n; i++) {
        bytes += entries[i].buf.len;
    }
    rio_held_append *h = calloc(1, sizeof *h);
    uint8_t *block = malloc(bytes > 0 ? bytes : 1);
    if (h == NULL || block == NULL) {
        free(h);
        free(block);
        return rlg_rio_err(r, RAFT_NOMEM, "append: out of memory");
    }
    req->cb = cb;
    h->r = r;
    h->req = req;
    h->cb = cb;
    h->n = n;
    h->entries = (struct raft_entry *)(void *)block;
    uint8_t *p = block + (size_t)n * sizeof(struct raft_entry);
    for (unsigned i = 0; i < n; i++) {
        h->entries[i] = entries[i];
        h->entries[i].buf.base = p;
        h->entries[i].batch = NULL;
        if (entries[i].buf.len > 0) {
            memcpy(p, entries[i].buf.base, entries[i].buf.len);
        }
        p += entries[i].buf.len;
    }
    if (r->held_tail != NULL) {
        r->held_tail->next = h;
    } else {
        r->held_head = h;
    }
    r->held_tail = h;
    return 0;
}

static int put_work(void *arg)
{
    rio_snap *s = arg;
    return rlog_rs_snapshot_write(s->job);
}

/* The file is written (status): commit, or report the failure; then the
 * appends it held go to the store. */
static void put_finish(rio_snap *s, int status)
{
    rio *r = s->r;
    r->snap_put = NULL;
    rlog_rs_snap_job *job = s->job;
    s->job = NULL;
    int rv = status;
    if (r->rs == NULL) { /* not reached: the store waits for this commit */
        rlog_rs_snapshot_job_free(job);
        rv = RLOG_ECANCELED;
    } else if (status == RLOG_ECANCELED) {
        rlog_rs_snapshot_job_free(job);
    } else {
        rv = rlog_rs_snapshot_commit(r->rs, job, status);
    }
    if (rv == RLOG_ECANCELED) {
        s->status = RAFT_CANCELED;
        rlg_rio_err(r, RAFT_CANCELED, "snapshot_put at index %llu: the work was dropped",
                    (unsigned long long)s->index);
    } else if (rv != 0) {
        /* Reported through the callback, like a failed write in raft_uv.
         * And the server goes fail-stop, as after a failed append: libraft
         * 0.15 carries on after a failed install as if the log started
         * after the snapshot, while the store still ends where it did, so
         * its next append would land at another index than it meant (the
         * cluster simulator's seed 118488). Every later append fails. */
        atomic_store(&r->append_failed, true);
        s->status = rlg_rio_raft_code(rv);
        rlg_rio_err(r, s->status, "snapshot_put at index %llu (trailing %u) in %s: %s",
                    (unsigned long long)s->index, s->trailing, r->dir, rlog_rs_errmsg(r->rs));
        rlg_rio_log(r, RLOG_LEVEL_ERROR, "%s", r->io->errmsg);
    }
    held_release(r);
}

/* A snapshot job's completion, on the loop: the job stops counting as
 * running, finish records its result, and libraft gets it (snap_deliver
 * may free s). Returns the io. */
static rio *job_done(rio_snap *s, int status, void (*finish)(rio_snap *s, int status))
{
    rio *r = s->r;
    r->works--;
    finish(s, status);
    snap_deliver(s);
    return r;
}

static void put_after(void *arg, int status)
{
    rio *r = job_done(arg, status, put_finish);
    if (r->closing) {
        rlg_rio_store_close(r); /* held appends complete before the close callback */
    }
    rlg_rio_check_closed(r);
}

int rlg_rio_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                         const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    rio *r = io->impl;
    if (r->rs == NULL || r->closing) {
        return rlg_rio_err(r, RAFT_CANCELED, "snapshot_put: the io is closing or not initialised");
    }
    if (r->snap_put != NULL) {
        return rlg_rio_err(r, RAFT_BUSY, "snapshot_put: another snapshot_put is pending");
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
    s->install = trailing == 0;
    s->trailing = trailing;
    s->index = snapshot->index;
    if (s->install && r->loaded_last > 0) {
        /* the case of load.c's "One allocation per entry" */
        unsigned queued = 0;
        for (rio_peer *p = r->peers; p != NULL; p = p->next) {
            queued += p->qn;
        }
        rlg_rio_log(r, RLOG_LEVEL_DEBUG,
                    "install of snapshot %llu: libraft drops its log, with entries up to %llu "
                    "that load handed to it (%u sends queued for peers not up)",
                    (unsigned long long)snapshot->index, (unsigned long long)r->loaded_last,
                    queued);
        r->loaded_last = 0;
    }
    rv = atomic_load(&r->append_failed) ? RLOG_EPOISONED
                                        : rlog_rs_snapshot_prepare(r->rs, &d, &s->job);
    raft_free(conf.base);
    free(bufs);
    if (rv == 0) {
        if ((rv = snap_queue(r, s, put_work, put_after)) == 0) {
            r->snap_put = s;
        }
        return rv;
    }
    /* Refused before any disk work: the same fail-stop as a failed write
     * (see put_after). */
    atomic_store(&r->append_failed, true);
    s->status = rlg_rio_raft_code(rv);
    rlg_rio_err(r, s->status, "snapshot_put at index %llu (trailing %u) in %s: %s",
                (unsigned long long)snapshot->index, trailing, r->dir,
                rv == RLOG_EPOISONED ? "an earlier append failed" : rlog_rs_errmsg(r->rs));
    rlg_rio_log(r, RLOG_LEVEL_ERROR, "%s", io->errmsg);
    return snap_post(r, s);
}

/* ------------------------------------------------------------------ get */

static int get_work(void *arg)
{
    rio_snap *s = arg;
    rlog_rs_snapshot data;
    int rv = rlog_rs_snapshot_load(s->job, &data);
    if (rv != 0) {
        snprintf(s->errmsg, sizeof s->errmsg, "snapshot_get: %s",
                 rlog_rs_snapshot_job_errmsg(s->job));
        return rlg_rio_raft_code(rv);
    }
    rv = rlg_rio_snapshot_convert(&data, s->r->dir, &s->snapshot, s->errmsg, sizeof s->errmsg);
    rlog_rs_snapshot_release(&data);
    return rv;
}

static void get_finish(rio_snap *s, int status)
{
    rio *r = s->r;
    s->status = status == RLOG_ECANCELED ? RAFT_CANCELED : status;
    if (s->status != 0) {
        rlg_rio_err(r, s->status, "%s (%s)", s->errmsg[0] ? s->errmsg : "snapshot_get: dropped",
                    r->dir);
    }
}

static void get_after(void *arg, int status)
{
    rlg_rio_check_closed(job_done(arg, status, get_finish));
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
    int rv = rlog_rs_snapshot_open(r->rs, &s->job);
    if (rv == 0) {
        return snap_queue(r, s, get_work, get_after);
    }
    s->status = rv == RLOG_ENOTFOUND ? RAFT_NOTFOUND : rlg_rio_raft_code(rv);
    rlg_rio_err(r, s->status, "snapshot_get: %s (%s)",
                rv == RLOG_ENOTFOUND ? "no snapshot" : rlog_rs_errmsg(r->rs), r->dir);
    return snap_post(r, s);
}
