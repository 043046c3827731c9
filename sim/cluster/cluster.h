/* Internal pieces of the cluster workload (sim/cluster/). */
#ifndef RLG_SIM_CLUSTER_H
#define RLG_SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "rlog/loop.h"
#include "rlog/sim_cluster.h"

enum { CL_EV_POST, CL_EV_TIMER, CL_EV_WORK, CL_EV_CALL };

typedef struct cl_loop cl_loop;

typedef struct cl_ev {
    uint64_t at, tie, seq;
    int kind;
    cl_loop *loop; /* POST, WORK */
    rlog_loop_fn fn;
    rlog_loop_work_fn work;
    rlog_loop_after_fn after;
    void *arg;
    rlog_loop_timer *timer;
    void (*call)(void *arg, uint64_t u); /* CALL: a harness action */
    uint64_t u;
} cl_ev;

/* The virtual world: the clock (equal to the network's) and the heap. */
typedef struct cl_world {
    uint64_t now; /* ns */
    uint64_t seq;
    cl_ev **heap;
    size_t nheap, capheap;
    rlog_sim_rng tie_rng, lat_rng, work_rng;
    uint64_t post_max_ns;
    uint64_t work_max_ns; /* the longest a loop's work (a snapshot's file) takes */
    void *current;        /* owner of the loop whose function runs now */
    bool nomem;
} cl_world;

struct cl_loop {
    rlog_loop tab;
    cl_world *w;
    void *owner;
    unsigned refs;   /* queued posts and work */
    unsigned timers; /* started, not stopped */
    uint64_t last_post;
    bool closed, released;
};

/* Queues ev (the world owns it from then on; freed on RLOG_ENOMEM). */
int rlg_cl_push(cl_world *w, cl_ev *ev);
cl_ev *rlg_cl_pop(cl_world *w);
uint64_t rlg_cl_next_at(const cl_world *w);
bool rlg_cl_run_event(cl_world *w, cl_ev *ev);
/* Schedules fn(arg, u) at virtual time `at` (ns). */
int rlg_cl_at(cl_world *w, uint64_t at, void (*fn)(void *arg, uint64_t u), void *arg, uint64_t u);
cl_loop *rlg_cl_loop_new(cl_world *w, void *owner);
/* The harness lets go of a loop: its queued posts and work are dropped. */
void rlg_cl_loop_release(cl_loop *l);
void rlg_cl_world_free(cl_world *w);

#endif
