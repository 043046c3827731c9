/*
 * append and truncate.
 *
 * append queues the entries with rlog_rs_append_async (payloads copied, so
 * libraft's buffers are free again when the call returns) at the store's
 * last index + 1 — which already counts the appends still in flight — and
 * posts one sync task per loop turn. The task runs on the loop after the
 * turn that appended (after libraft sent its AppendEntries, which it does
 * right after io->append): rlog_rs_sync writes everything queued as one
 * write and one fdatasync, and completes the appends in index order; each
 * completion is posted to the loop, and posts run in order, so libraft's
 * callbacks come in submission order and only after the entries are
 * durable. The log has no I/O thread (RLOG_OPEN_PREPARER: only segment
 * preparation runs off the loop): handing each append to a writer thread
 * and its completion back cost two thread wake-ups per append and node;
 * without them bench/raftkv measures fewer context switches and less CPU
 * per commit at windows 1 and 64 (docs/raft_io.md, "Threads", "Benchmark").
 *
 * Failure. Once one append fails (EIO, ENOSPC, ...), the store is failed
 * (every later write returns RLOG_EPOISONED): that append and every later
 * one are reported RAFT_IOERR, and so are appends that the store still
 * reports durable after the first failure. Entries acknowledged before the
 * failure were durable when acknowledged; a reopen keeps them.
 *
 * Close: appends in flight are finished, not canceled — the store makes
 * them durable (or fails them) before it closes, and each callback gets
 * that real status before the close callback. (libraft 0.15's leader
 * append callback truncates its in-memory log on any error; called with
 * RAFT_CANCELED after raft_close began, it crashes.)
 *
 * truncate writes a truncation record, durable before it returns. Appends
 * still in flight were queued before it, so they become durable first (and
 * are then cut by the record): the entries libraft truncates are exactly
 * those it appended, whatever their state.
 */
#include <stdio.h>
#include <stdlib.h>

#include "raft_io/rio.h"

typedef struct rio_append {
    rio *r;
    struct raft_io_append *req;
    raft_io_append_cb cb;
    int status; /* RLOG_E* from the store */
    uint64_t first, last;
} rio_append;

static void append_deliver(void *arg)
{
    rio_append *a = arg;
    rio *r = a->r;
    int st = 0;
    if (a->status != 0) {
        st = a->status == RLOG_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
        rlg_rio_err(r, st, "append of entries %llu..%llu in %s failed: %s",
                    (unsigned long long)a->first, (unsigned long long)a->last, r->dir,
                    rlog_strerror(a->status));
        rlg_rio_log(r, RLOG_LEVEL_ERROR, "%s", r->io->errmsg);
    }
    struct raft_io_append *req = a->req;
    raft_io_append_cb cb = a->cb;
    free(a);
    if (cb != NULL) {
        cb(req, st);
    }
    rlg_rio_done_one(r);
}

static void append_post(rio_append *a)
{
    if (rlg_rio_post(a->r, append_deliver, a) != 0) {
        /* The loop refuses work only once it is closing, after the store
         * closed: nothing can be delivered any more. */
        free(a);
    }
}

/* The store's completion, on the loop thread: inside the sync task, or
 * inside a method whose synchronous write drove the queued appends
 * (truncate, set_term, ...) or inside the store's close. Posted, so that
 * it never runs nested in a method. */
static void append_done(void *data, int status, uint64_t first, uint64_t last)
{
    rio_append *a = data;
    rio *r = a->r;
    a->first = first;
    a->last = last;
    if (status != 0) {
        atomic_store(&r->append_failed, true);
    } else if (atomic_load(&r->append_failed)) {
        status = RLOG_EPOISONED;
    }
    a->status = status;
    if (status == 0 && r->ship != NULL) {
        rlog_ship_leader_notify(r->ship);
    }
    append_post(a);
}

/* The loop makes what this turn appended durable: one write and one
 * fdatasync for all of it (see the top). */
static void append_sync_task(void *arg)
{
    rio *r = arg;
    atomic_store(&r->sync_posted, false);
    if (r->rs != NULL) {
        rlog_rs_sync(r->rs); /* failures reach the appends' completions */
    }
    rlg_rio_done_one(r);
}

int rlg_rio_append(struct raft_io *io, struct raft_io_append *req,
                   const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    rio *r = io->impl;
    if (r->rs == NULL || r->closing) {
        return rlg_rio_err(r, RAFT_CANCELED, "append: the io is closing or not initialised");
    }
    if (rlg_rio_snap_holds(r)) {
        return rlg_rio_snap_hold_append(r, req, entries, n, cb);
    }
    return rlg_rio_append_submit(r, req, entries, n, cb);
}

int rlg_rio_append_submit(rio *r, struct raft_io_append *req, const struct raft_entry entries[],
                          unsigned n, raft_io_append_cb cb)
{
    req->cb = cb;
    rio_append *a = calloc(1, sizeof *a);
    rlog_rs_entry *e = calloc(n > 0 ? n : 1, sizeof *e);
    if (a == NULL || e == NULL) {
        free(a);
        free(e);
        return rlg_rio_err(r, RAFT_NOMEM, "append: out of memory");
    }
    a->r = r;
    a->req = req;
    a->cb = cb;
    a->first = rlog_rs_last_index(r->rs) + 1;
    a->last = a->first + n - 1;
    for (unsigned i = 0; i < n; i++) {
        if (entries[i].buf.len > UINT32_MAX) {
            free(a);
            free(e);
            return rlg_rio_err(r, RAFT_TOOBIG, "append: entry %u has %zu bytes", i,
                               entries[i].buf.len);
        }
        e[i].term = entries[i].term;
        e[i].type = (uint16_t)entries[i].type;
        e[i].len = (uint32_t)entries[i].buf.len;
        e[i].data = entries[i].buf.base;
    }
    int rv = 0;
    if (n == 0 || atomic_load(&r->append_failed)) {
        a->status = n == 0 ? 0 : RLOG_EPOISONED;
        append_post(a);
    } else if ((rv = rlog_rs_append_async(r->rs, a->first, e, n, append_done, a)) != 0) {
        if (rv == RLOG_EPOISONED || rv == RLOG_EIO || rv == RLOG_ENOSPC) {
            /* The store failed: the request is accepted and fails like
             * every append after the first failure. */
            atomic_store(&r->append_failed, true);
            a->status = rv;
            append_post(a);
            rv = 0;
        } else {
            rv = rlg_rio_err(r, rlg_rio_raft_code(rv), "append: entries %llu..%llu: %s",
                             (unsigned long long)a->first, (unsigned long long)a->last,
                             rlog_rs_errmsg(r->rs));
            free(a);
        }
    } else if (!atomic_exchange(&r->sync_posted, true)) {
        if (rlg_rio_post(r, append_sync_task, r) != 0) {
            atomic_store(&r->sync_posted, false);
        }
    }
    free(e);
    return rv;
}

int rlg_rio_truncate(struct raft_io *io, raft_index index)
{
    rio *r = io->impl;
    if (r->rs == NULL || r->closing) {
        return rlg_rio_err(r, RAFT_CANCELED, "truncate: the io is closing or not initialised");
    }
    if (atomic_load(&r->append_failed)) {
        return rlg_rio_err(r, RAFT_IOERR, "truncate: an earlier append failed in %s", r->dir);
    }
    int rv = rlog_rs_truncate(r->rs, index);
    if (rv != 0) {
        return rlg_rio_err(r, rlg_rio_raft_code(rv), "truncate at %llu: %s (%s)",
                           (unsigned long long)index, rlog_rs_errmsg(r->rs), r->dir);
    }
    if (index <= r->loaded_last) {
        /* the case of load.c's "One allocation per entry" */
        rlg_rio_log(r, RLOG_LEVEL_DEBUG,
                    "truncate at %llu: removes entries %llu..%llu that load handed to libraft",
                    (unsigned long long)index, (unsigned long long)index,
                    (unsigned long long)r->loaded_last);
        r->loaded_last = index - 1;
    }
    return 0;
}
