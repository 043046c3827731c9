/*
 * The libuv driver of the loop table (rlog/loop.h).
 *
 *   post    a mutex-protected FIFO of (fn, arg) nodes. Another thread
 *           wakes the loop with one uv_async_t (uv_async_send coalesces
 *           wake-ups, so the async callback drains the whole queue). The
 *           loop thread itself (the thread that last drained the queue: a
 *           loop may be set up on one thread and run on another) starts a
 *           uv_idle_t instead: the loop's next turn runs it without
 *           blocking in its poll, and it drains the queue. uv_async_send
 *           from the loop thread would cost an eventfd write, and the
 *           wake-up a read: 2 system calls per turn that posted, and the
 *           adapter posts on most turns (the appends' sync task, their
 *           completions, send flushes). Either drain runs only what was
 *           queued when it started, so a function that posts again runs on
 *           a later turn; one FIFO keeps every thread's posts in order.
 *   timers  one malloc'd uv_timer_t each; stop closes the handle and frees
 *           it in the close callback (libuv: memory only after close).
 *   work    uv_queue_work; the completion runs on the loop thread.
 *   close   refuses new posts, drains the queue, waits for work in flight
 *           and for every timer handle to be closed, closes the async and
 *           idle handles, then calls done on the loop thread.
 */
#include <stdlib.h>

#include <uv.h>

#include "rlog/raft_io.h"

typedef struct post_node {
    struct post_node *next;
    rlog_loop_fn fn;
    void *arg;
} post_node;

typedef struct luv {
    rlog_loop table;
    uv_loop_t *uv;
    uv_thread_t owner; /* under mtx: the thread that last drained, the loop's */
    bool owner_known;  /* under mtx */
    uv_async_t async;
    uv_idle_t idle;   /* started by a post from the loop thread */
    bool idle_active; /* loop thread */
    uv_mutex_t mtx;
    post_node *head, *tail; /* under mtx */
    bool shut;              /* under mtx: close() began, posts refused */
    unsigned works;         /* work in flight (loop thread) */
    unsigned timers;        /* timer handles not yet closed (loop thread) */
    bool closing;
    bool async_closed;     /* both handles closed */
    unsigned handles_open; /* while closing them */
    rlog_loop_fn done;
    void *done_arg;
} luv;

struct rlog_loop_timer {
    uv_timer_t handle;
    luv *l;
    rlog_loop_fn fn;
    void *arg;
};

typedef struct work_req {
    uv_work_t req;
    luv *l;
    rlog_loop_work_fn work;
    rlog_loop_after_fn after;
    void *arg;
    int status;
} work_req;

static void luv_maybe_finish(luv *l);
static void luv_idle_cb(uv_idle_t *h);

static uint64_t luv_now_ms(rlog_loop *loop)
{
    luv *l = loop->impl;
    return (uint64_t)uv_now(l->uv);
}

static int luv_post(rlog_loop *loop, rlog_loop_fn fn, void *arg)
{
    luv *l = loop->impl;
    post_node *p = malloc(sizeof *p);
    if (p == NULL) {
        return RLOG_ENOMEM;
    }
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    uv_thread_t self = uv_thread_self();
    uv_mutex_lock(&l->mtx);
    bool local = l->owner_known && uv_thread_equal(&self, &l->owner);
    if (l->shut) {
        uv_mutex_unlock(&l->mtx);
        free(p);
        return RLOG_ECLOSED;
    }
    if (l->tail != NULL) {
        l->tail->next = p;
    } else {
        l->head = p;
    }
    l->tail = p;
    if (!local) {
        uv_async_send(&l->async);
    }
    uv_mutex_unlock(&l->mtx);
    if (local && !l->idle_active) {
        l->idle_active = true;
        uv_idle_start(&l->idle, luv_idle_cb);
    }
    return 0;
}

/* Runs what was queued when it started; later posts get a later turn. */
static void luv_drain(luv *l)
{
    uv_mutex_lock(&l->mtx);
    l->owner = uv_thread_self();
    l->owner_known = true;
    post_node *p = l->head;
    l->head = l->tail = NULL;
    uv_mutex_unlock(&l->mtx);
    while (p != NULL) {
        post_node *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

static void luv_async_cb(uv_async_t *h)
{
    luv *l = h->data;
    luv_drain(l);
    if (l->closing) {
        luv_maybe_finish(l);
    }
}

/* A post from the loop thread: the turn after it. */
static void luv_idle_cb(uv_idle_t *h)
{
    luv *l = h->data;
    l->idle_active = false;
    uv_idle_stop(h);
    luv_drain(l);
    if (l->closing) {
        luv_maybe_finish(l);
    }
}

static void luv_timer_cb(uv_timer_t *h)
{
    rlog_loop_timer *t = h->data;
    t->fn(t->arg);
}

static int luv_timer_start(rlog_loop *loop, uint64_t delay_ms, uint64_t repeat_ms, rlog_loop_fn fn,
                           void *arg, rlog_loop_timer **out)
{
    luv *l = loop->impl;
    if (l->closing) {
        return RLOG_ECLOSED;
    }
    rlog_loop_timer *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return RLOG_ENOMEM;
    }
    t->l = l;
    t->fn = fn;
    t->arg = arg;
    uv_timer_init(l->uv, &t->handle);
    t->handle.data = t;
    l->timers++;
    uv_timer_start(&t->handle, luv_timer_cb, delay_ms, repeat_ms);
    *out = t;
    return 0;
}

static void luv_timer_closed(uv_handle_t *h)
{
    rlog_loop_timer *t = h->data;
    luv *l = t->l;
    free(t);
    l->timers--;
    luv_maybe_finish(l);
}

static void luv_timer_stop(rlog_loop *loop, rlog_loop_timer *t)
{
    (void)loop;
    if (t == NULL) {
        return;
    }
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *)&t->handle, luv_timer_closed);
}

static void luv_work_cb(uv_work_t *req)
{
    work_req *w = req->data;
    w->status = w->work(w->arg);
}

static void luv_after_work_cb(uv_work_t *req, int status)
{
    work_req *w = req->data;
    luv *l = w->l;
    int st = status == UV_ECANCELED ? RLOG_ECANCELED : w->status;
    w->after(w->arg, st);
    free(w);
    l->works--;
    luv_maybe_finish(l);
}

static int luv_work(rlog_loop *loop, rlog_loop_work_fn work, rlog_loop_after_fn after, void *arg)
{
    luv *l = loop->impl;
    if (l->closing) {
        return RLOG_ECLOSED;
    }
    work_req *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return RLOG_ENOMEM;
    }
    w->l = l;
    w->work = work;
    w->after = after;
    w->arg = arg;
    w->req.data = w;
    int rv = uv_queue_work(l->uv, &w->req, luv_work_cb, luv_after_work_cb);
    if (rv != 0) {
        free(w);
        return RLOG_ENOMEM;
    }
    l->works++;
    return 0;
}

/* Both handles' close callbacks: the second one to run calls done (last,
 * so that the table may be freed in it). */
static void luv_handle_closed(uv_handle_t *h)
{
    luv *l = h->data;
    if (--l->handles_open > 0) {
        return;
    }
    l->async_closed = true;
    rlog_loop_fn done = l->done;
    l->done = NULL;
    if (done != NULL) {
        done(l->done_arg);
    }
}

/* Once nothing is queued or running, closes the async and idle handles;
 * done runs from the last close callback. */
static void luv_maybe_finish(luv *l)
{
    if (!l->closing || l->works > 0 || l->timers > 0 || uv_is_closing((uv_handle_t *)&l->async)) {
        return;
    }
    uv_mutex_lock(&l->mtx);
    bool empty = l->head == NULL;
    uv_mutex_unlock(&l->mtx);
    if (!empty) {
        uv_async_send(&l->async);
        return;
    }
    l->idle_active = false;
    uv_idle_stop(&l->idle);
    l->handles_open = 2;
    uv_close((uv_handle_t *)&l->async, luv_handle_closed);
    uv_close((uv_handle_t *)&l->idle, luv_handle_closed);
}

static void luv_close(rlog_loop *loop, rlog_loop_fn done, void *arg)
{
    luv *l = loop->impl;
    if (l->closing) {
        return;
    }
    l->closing = true;
    l->done = done;
    l->done_arg = arg;
    uv_mutex_lock(&l->mtx);
    l->shut = true;
    uv_mutex_unlock(&l->mtx);
    /* Queued functions run on the next turn (never inside close). */
    uv_async_send(&l->async);
}

int rlog_loop_uv_new(struct uv_loop_s *uv, rlog_loop **out)
{
    *out = NULL;
    luv *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return RLOG_ENOMEM;
    }
    if (uv_mutex_init(&l->mtx) != 0) {
        free(l);
        return RLOG_EIO;
    }
    if (uv_async_init(uv, &l->async, luv_async_cb) != 0) {
        uv_mutex_destroy(&l->mtx);
        free(l);
        return RLOG_EIO;
    }
    l->async.data = l;
    uv_idle_init(uv, &l->idle); /* cannot fail */
    l->idle.data = l;
    l->uv = uv;
    l->table.version = 1;
    l->table.impl = l;
    l->table.now_ms = luv_now_ms;
    l->table.post = luv_post;
    l->table.timer_start = luv_timer_start;
    l->table.timer_stop = luv_timer_stop;
    l->table.work = luv_work;
    l->table.close = luv_close;
    *out = &l->table;
    return 0;
}

void rlog_loop_uv_free(rlog_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    luv *l = loop->impl;
    /* Only after close completed: the async handle is closed. */
    if (!l->async_closed) {
        return; /* still referenced by libuv: leaking beats a use after free */
    }
    uv_mutex_destroy(&l->mtx);
    free(l);
}
