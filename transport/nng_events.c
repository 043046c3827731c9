/*
 * The nng transport: the inbox (nng threads -> owner) and the ready list (owner).
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <stdlib.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * The inbox (nng threads -> owner) and the ready list (owner)
 * ---------------------------------------------------------------------- */

void rlg_nng_aio_end(nng_aio *aio)
{
    nng_aio_cancel(aio);
    nng_aio_wait(aio);
}

void rlg_nng_sock_end(tn *n, nng_aio *aio, nng_socket sock, ev *e, bool busy, bool sending)
{
    rlg_nng_aio_end(aio);
    nng_close(sock);
    nng_mtx_lock(n->mtx);
    rlg_nng_ev_unlink_locked(e);
    nng_mtx_unlock(n->mtx);
    if (busy) {
        int rv = nng_aio_result(aio);
        nng_msg *m = nng_aio_get_msg(aio);
        if (m != NULL && (sending ? rv != 0 : rv == 0)) {
            nng_msg_free(m);
        }
        nng_aio_set_msg(aio, NULL);
    }
}

void rlg_nng_ev_init(ev *e, tn *n, void *owner, ev_kind kind)
{
    e->prev = e->next = NULL;
    e->n = n;
    e->owner = owner;
    e->kind = kind;
    e->queued = false;
}

void rlg_nng_ev_queue_locked(ev *e)
{
    tn *n = e->n;
    if (e->queued) {
        return;
    }
    e->prev = n->inbox.prev;
    e->next = &n->inbox;
    n->inbox.prev->next = e;
    n->inbox.prev = e;
    e->queued = true;
    if (n->waiting) {
        nng_cv_wake1(n->cv);
    }
    if (n->cfg.wake != NULL) {
        n->cfg.wake(n->cfg.wake_data);
    }
}

void rlg_nng_ev_unlink_locked(ev *e)
{
    if (!e->queued) {
        return;
    }
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->queued = false;
}

void rlg_nng_ev_aio_cb(void *arg)
{
    ev *e = arg;
    nng_mtx_lock(e->n->mtx);
    rlg_nng_ev_queue_locked(e);
    nng_mtx_unlock(e->n->mtx);
}

ev *rlg_nng_inbox_pop(tn *n)
{
    nng_mtx_lock(n->mtx);
    ev *e = n->inbox.next;
    if (e == &n->inbox) {
        e = NULL;
    } else {
        rlg_nng_ev_unlink_locked(e);
    }
    nng_mtx_unlock(n->mtx);
    return e;
}

void rlg_nng_ready_push(tn *n, ready *r)
{
    r->next = NULL;
    if (n->ready_tail != NULL) {
        n->ready_tail->next = r;
    } else {
        n->ready_head = r;
    }
    n->ready_tail = r;
}

void rlg_nng_posts_take(tn *n)
{
    nng_mtx_lock(n->mtx);
    ready *p = n->posts;
    n->posts = n->posts_tail = NULL;
    nng_mtx_unlock(n->mtx);
    while (p != NULL) {
        ready *next = p->next;
        rlg_nng_ready_push(n, p);
        p = next;
    }
}

void rlg_nng_ready_run(tn *n)
{
    ready *r;
    while ((r = n->ready_head) != NULL) {
        n->ready_head = r->next;
        if (n->ready_head == NULL) {
            n->ready_tail = NULL;
        }
        switch (r->kind) {
        case READY_SEND:
            if (r->cb != NULL) {
                n->ran++;
                r->cb(r->data, r->status);
            }
            break;
        case READY_DOWN:
            n->ran++;
            if (n->ev.peer_down != NULL) {
                n->ev.peer_down(n->ev.data, r->peer, r->status);
            }
            break;
        case READY_POST:
            n->ran++;
            r->fn(r->data);
            break;
        }
        free(r); /* a sendreq's ready node is its first member */
    }
}

void rlg_nng_sendreq_done(tn *n, sendreq *s, int status)
{
    if (s->msg != NULL) {
        nng_msg_free(s->msg);
        s->msg = NULL;
    }
    s->r.kind = READY_SEND;
    s->r.status = status;
    rlg_nng_ready_push(n, &s->r);
}
