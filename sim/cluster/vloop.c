/*
 * The cluster workload's world: one virtual clock shared by the simulated
 * network and every server's rlog_loop, and one event heap. Each server's
 * loop (rlog/loop.h) is a table on this heap: posted functions, timers and
 * work are events ordered by (virtual time, a tie-breaker drawn from the
 * seed, sequence number). Posts of one loop get strictly increasing times,
 * so they run in the order they were posted; work runs inline after a
 * delay of its own (up to the seed's work_max_ns: a slow snapshot file),
 * its completion right after, while the loop's posts and timers go on. Nothing here reads a real
 * clock or depends on pointer values.
 */
#include <stdlib.h>
#include <string.h>

#include "os/array.h"
#include "sim/cluster/cluster.h"

struct rlog_loop_timer {
    uint64_t repeat_ns;
    rlog_loop_fn fn;
    void *arg;
    bool stopped, queued, running;
    cl_loop *loop; /* NULL once the loop was released */
};

static bool ev_before(const cl_ev *a, const cl_ev *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    if (a->tie != b->tie)
        return a->tie < b->tie;
    return a->seq < b->seq;
}

int rlg_cl_push(cl_world *w, cl_ev *ev)
{
    if (rlg_array_grow(&w->heap, &w->capheap, w->nheap + 1, sizeof *w->heap, 256) != 0) {
        free(ev);
        return RLOG_ENOMEM;
    }
    ev->seq = w->seq++;
    ev->tie = rlog_sim_rng_next(&w->tie_rng);
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(ev, w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = ev;
    return 0;
}

cl_ev *rlg_cl_pop(cl_world *w)
{
    if (w->nheap == 0)
        return NULL;
    cl_ev *top = w->heap[0];
    cl_ev *last = w->heap[--w->nheap];
    size_t n = w->nheap, i = 0;
    while (n > 0) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && ev_before(w->heap[l], last))
            m = l;
        if (l + 1 < n && ev_before(w->heap[l + 1], m == i ? last : w->heap[l]))
            m = l + 1;
        if (m == i)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

uint64_t rlg_cl_next_at(const cl_world *w)
{
    return w->nheap ? w->heap[0]->at : UINT64_MAX;
}

/* A new event of loop l (NULL: the world's own) at `at`, queued; the
 * caller fills in what it runs. NULL when memory ran out. */
static cl_ev *ev_queue(cl_world *w, cl_loop *l, int kind, uint64_t at)
{
    cl_ev *ev = calloc(1, sizeof *ev);
    if (ev == NULL)
        return NULL;
    ev->kind = kind;
    ev->at = at;
    ev->loop = l;
    return rlg_cl_push(w, ev) == 0 ? ev : NULL; /* (a failed push freed it) */
}

/* ---- the rlog_loop table ---- */

static cl_loop *loop_of(rlog_loop *t)
{
    return t->impl;
}

static uint64_t vl_now_ms(rlog_loop *t)
{
    return loop_of(t)->w->now / 1000000u;
}

static int vl_post(rlog_loop *t, rlog_loop_fn fn, void *arg)
{
    cl_loop *l = loop_of(t);
    cl_world *w = l->w;
    if (l->closed)
        return RLOG_ECLOSED;
    /* a turn of the loop later: 5 us .. post_max_ns (models the disk and
     * the scheduler), after every earlier post of this loop */
    uint64_t at = w->now + 5000 + rlog_sim_rng_below(&w->lat_rng, w->post_max_ns);
    if (at <= l->last_post)
        at = l->last_post + 1;
    l->last_post = at;
    cl_ev *ev = ev_queue(w, l, CL_EV_POST, at);
    if (ev == NULL)
        return RLOG_ENOMEM;
    ev->fn = fn;
    ev->arg = arg;
    l->refs++;
    return 0;
}

static int timer_queue(cl_world *w, rlog_loop_timer *tm, uint64_t delay_ns)
{
    cl_ev *ev = ev_queue(w, NULL, CL_EV_TIMER, w->now + delay_ns);
    if (ev == NULL)
        return RLOG_ENOMEM;
    ev->timer = tm;
    tm->queued = true;
    return 0;
}

static int vl_timer_start(rlog_loop *t, uint64_t delay_ms, uint64_t repeat_ms, rlog_loop_fn fn,
                          void *arg, rlog_loop_timer **out)
{
    cl_loop *l = loop_of(t);
    if (l->closed)
        return RLOG_ECLOSED;
    rlog_loop_timer *tm = calloc(1, sizeof *tm);
    if (tm == NULL)
        return RLOG_ENOMEM;
    tm->repeat_ns = repeat_ms * 1000000u;
    tm->fn = fn;
    tm->arg = arg;
    tm->loop = l;
    if (timer_queue(l->w, tm, (delay_ms ? delay_ms : 1) * 1000000u) != 0) {
        free(tm);
        return RLOG_ENOMEM;
    }
    l->timers++;
    *out = tm;
    return 0;
}

static void vl_timer_stop(rlog_loop *t, rlog_loop_timer *tm)
{
    cl_loop *l = loop_of(t);
    if (tm == NULL || tm->stopped)
        return;
    tm->stopped = true;
    l->timers--;
    if (!tm->queued && !tm->running)
        free(tm); /* a one-shot that fired (a running one is freed after its fn) */
}

static int vl_work(rlog_loop *t, rlog_loop_work_fn work, rlog_loop_after_fn after, void *arg)
{
    cl_loop *l = loop_of(t);
    cl_world *w = l->w;
    if (l->closed)
        return RLOG_ECLOSED;
    uint64_t at = w->now + 5000 + rlog_sim_rng_below(&w->work_rng, w->work_max_ns);
    cl_ev *ev = ev_queue(w, l, CL_EV_WORK, at);
    if (ev == NULL)
        return RLOG_ENOMEM;
    ev->work = work;
    ev->after = after;
    ev->arg = arg;
    l->refs++;
    return 0;
}

static void vl_close(rlog_loop *t, rlog_loop_fn done, void *arg)
{
    /* the adapter on a custom loop never closes it; the harness does */
    cl_loop *l = loop_of(t);
    l->closed = true;
    if (done != NULL)
        done(arg);
}

cl_loop *rlg_cl_loop_new(cl_world *w, void *owner)
{
    cl_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->w = w;
    l->owner = owner;
    l->tab.version = 1;
    l->tab.impl = l;
    l->tab.now_ms = vl_now_ms;
    l->tab.post = vl_post;
    l->tab.timer_start = vl_timer_start;
    l->tab.timer_stop = vl_timer_stop;
    l->tab.work = vl_work;
    l->tab.close = vl_close;
    return l;
}

/* A loop still holding a running timer at release is kept (leaked): the
 * adapter broke the contract, which the harness reports. */
static void loop_maybe_free(cl_loop *l)
{
    if (l->released && l->refs == 0 && l->timers == 0)
        free(l);
}

void rlg_cl_loop_release(cl_loop *l)
{
    l->closed = true;
    l->released = true;
    loop_maybe_free(l);
}

/* Runs one event. Returns true when it ran something of a loop. */
bool rlg_cl_run_event(cl_world *w, cl_ev *ev)
{
    bool ran = false;
    switch (ev->kind) {
    case CL_EV_POST: {
        cl_loop *l = ev->loop;
        l->refs--;
        if (!l->released) {
            w->current = l->owner;
            ev->fn(ev->arg);
            ran = true;
        }
        loop_maybe_free(l);
        break;
    }
    case CL_EV_WORK: {
        cl_loop *l = ev->loop;
        l->refs--;
        if (!l->released) {
            w->current = l->owner;
            int st = ev->work(ev->arg);
            ev->after(ev->arg, st);
            ran = true;
        }
        loop_maybe_free(l);
        break;
    }
    case CL_EV_TIMER: {
        rlog_loop_timer *tm = ev->timer;
        tm->queued = false;
        if (tm->stopped) {
            free(tm);
            break;
        }
        if (tm->loop == NULL || tm->loop->released)
            break; /* a leaked timer of a released loop: counted by the owner */
        w->current = tm->loop->owner;
        tm->running = true;
        tm->fn(tm->arg);
        tm->running = false;
        ran = true;
        if (tm->stopped) {
            free(tm);
        } else if (tm->repeat_ns) {
            if (timer_queue(w, tm, tm->repeat_ns) != 0)
                w->nomem = true;
        }
        break;
    }
    case CL_EV_CALL:
        w->current = NULL;
        ev->call(ev->arg, ev->u);
        break;
    }
    w->current = NULL;
    free(ev);
    return ran;
}

int rlg_cl_at(cl_world *w, uint64_t at, void (*fn)(void *arg, uint64_t u), void *arg, uint64_t u)
{
    cl_ev *ev = ev_queue(w, NULL, CL_EV_CALL, at < w->now ? w->now : at);
    if (ev == NULL)
        return RLOG_ENOMEM;
    ev->call = fn;
    ev->arg = arg;
    ev->u = u;
    return 0;
}

void rlg_cl_world_free(cl_world *w)
{
    for (size_t i = 0; i < w->nheap; i++) {
        cl_ev *ev = w->heap[i];
        if (ev->kind == CL_EV_TIMER && ev->timer->stopped)
            free(ev->timer);
        free(ev);
    }
    free(w->heap);
    w->heap = NULL;
    w->nheap = 0;
}
