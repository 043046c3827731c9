/*
 * rlog — the event-loop table: everything the Raft adapter (raft_io/,
 * rlog/raft_io.h) needs from an event loop, as a small table of functions,
 * so that one adapter core runs on libuv (rlog_loop_uv_new in
 * rlog/raft_io.h) and on the simulator's virtual time alike.
 *
 * Model. A loop has ONE loop thread: the thread that runs it (libuv: the
 * thread inside uv_run; the simulator: the thread that advances virtual
 * time). Every function given to the table (posted functions, timer
 * functions, work completions, close's done) runs on the loop thread, never
 * nested inside a call into the table: a function posted or a timer started
 * from the loop thread runs on a later turn of the loop, not inside post()
 * or timer_start().
 *
 * Threads. post() may be called from any thread (the log's I/O thread, the
 * network library's threads): it is the only way other threads hand work to
 * the loop. Every other function must be called on the loop thread. A
 * driver needs no thread of its own: work() may run its function inline on
 * the loop thread (on a later turn, in virtual time), which is what a
 * deterministic single-threaded driver does; the libuv driver runs it on
 * libuv's thread pool.
 *
 * Ownership: the table belongs to whoever created it (the driver's
 * constructor says how to free it). Users borrow it; they stop their timers
 * and wait for their work before they let go of it.
 */
#ifndef RLOG_LOOP_H
#define RLOG_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "rlog/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlog_loop rlog_loop;
/* A timer started by timer_start(). Opaque; owned by the loop. */
typedef struct rlog_loop_timer rlog_loop_timer;

/* A function run on the loop thread. */
typedef void (*rlog_loop_fn)(void *arg);
/* Work run by work(): off the loop thread (libuv's pool) or inline on it
 * (a single-threaded driver). Returns a status handed to the completion. */
typedef int (*rlog_loop_work_fn)(void *arg);
/* Completion of work() on the loop thread: `status` is what the work
 * function returned, or RLOG_ECANCELED when the driver dropped the work
 * before it started (it then never runs). */
typedef void (*rlog_loop_after_fn)(void *arg, int status);

struct rlog_loop {
    int version; /* 1 */
    void *impl;

    /* Milliseconds from an arbitrary origin, never going back (libuv: the
     * loop's cached time, uv_now; the simulator: virtual time). Loop thread. */
    uint64_t (*now_ms)(rlog_loop *loop);

    /* ANY thread: runs fn(arg) once on the loop thread, on a later turn.
     * Functions posted from one thread run in the order they were posted.
     * Returns 0, RLOG_ENOMEM, or RLOG_ECLOSED once close() has begun (fn
     * then never runs). */
    int (*post)(rlog_loop *loop, rlog_loop_fn fn, void *arg);

    /* Loop thread: runs fn(arg) after delay_ms, then every repeat_ms
     * (0 = once). *out identifies the timer for timer_stop(); a one-shot
     * timer must still be stopped (that frees it). Returns 0 or
     * RLOG_ENOMEM / RLOG_ECLOSED. */
    int (*timer_start)(rlog_loop *loop, uint64_t delay_ms, uint64_t repeat_ms, rlog_loop_fn fn,
                       void *arg, rlog_loop_timer **out);
    /* Loop thread: stops and frees the timer; fn never runs after this
     * returns. May be called from the timer's own fn. */
    void (*timer_stop)(rlog_loop *loop, rlog_loop_timer *timer);

    /* Loop thread: runs work(arg) (off the loop thread or inline later),
     * then after(arg, status) on the loop thread, exactly once, unless
     * this returns non-zero (RLOG_ENOMEM, RLOG_ECLOSED). */
    int (*work)(rlog_loop *loop, rlog_loop_work_fn work, rlog_loop_after_fn after, void *arg);

    /* Loop thread, once, by the table's owner: stops accepting posts, runs
     * what was posted before, waits for work in flight (its completions
     * run), releases the driver's resources and then calls done(arg) on
     * the loop thread. Every timer must have been stopped. Freeing the
     * table itself is the driver's business (see its constructor). */
    void (*close)(rlog_loop *loop, rlog_loop_fn done, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif /* RLOG_LOOP_H */
