/*
 * The cluster workload (rlog/sim_cluster.h, docs/simulator.md "Cluster
 * workload"): unmodified libraft servers on rlog's raft_io adapter, each
 * over its own simulated disk, on the simulated network and one virtual
 * clock (vloop.c); clients, faults and oracles.
 *
 * A run: bootstrap every server, wait for a leader; the fault phase
 * (clients submit operations while the seed's faults strike); the heal
 * phase (faults stop, every server that may restart does, partitions
 * heal); the liveness check (a leader, a committed write, every running
 * voter applies it within a bound); the final oracles; a clean shutdown.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "os/array.h"
#include "rlog/raft_io.h"
#include "rlog/raft_storage.h"
#include "sim/cluster/cluster.h"
#include "sim/harness.h"

#define CL_MAX_NODES  8
#define CL_DIR        "/raft"
#define CL_MS         ((uint64_t)1000000)
#define CL_OP_TIMEOUT (1500 * CL_MS)
#define CL_LIVENESS   (15000 * CL_MS) /* after healing: a leader and a commit */
#define CL_LIN_BUDGET 2000000u

typedef struct cl cl;
typedef struct cl_node cl_node;

/* A client operation, as the history records it. */
typedef struct cl_op {
    uint64_t id;
    uint32_t key;
    int kind; /* RLOG_SIM_CLUSTER_WRITE / READ */
    bool barrier;
    uint64_t value; /* written; or read */
    uint64_t invoke, complete;
    int outcome; /* 0 pending, 1 ok, 2 failed (did not happen), 3 unknown */
    unsigned client, node;
    uint64_t index; /* where the command was applied (0: not seen) */
} cl_op;

typedef struct cl_req {
    struct raft_apply apply;
    struct raft_barrier barrier;
    cl *c;
    size_t op;
    struct cl_req *next;
} cl_req;

typedef struct cl_client {
    unsigned target; /* node index it believes leads */
    size_t op;       /* current op + 1; 0: idle */
    uint64_t token;  /* of its one scheduled tick */
} cl_client;

typedef struct cl_change {
    struct raft_change req;
    cl *c;
    uint64_t id;
    int what;               /* 1 add, 2 assign voter, 3 remove */
    struct cl_node *issuer; /* the leader that was asked */
    struct cl_change *next;
} cl_change;

struct cl_node {
    cl *c;
    unsigned idx;
    uint64_t id;
    char addr[32];
    rlog_vfs *fs;
    rlog_env env;
    rlog_sim_rng rng;
    bool bad;                    /* may get corrupted (a minority of servers) */
    bool corrupted;              /* damage was done to its disk */
    bool refused;                /* refused to start: stays down */
    bool removed;                /* removed from the configuration: stays down */
    bool member;                 /* started as a member (bootstrap or added) */
    uint64_t quiet_barrier_term; /* term of its last barrier after the clients finished */
    /* the running incarnation */
    bool running, closing, failed;
    unsigned gen;
    cl_loop *loop;
    struct raft_io *io;
    struct raft *raft;
    struct raft_fsm ufsm; /* the user's */
    struct raft_fsm wfsm; /* the harness's wrapper */
    struct raft_io orig;  /* the adapter's methods */
    unsigned start_fails;
    bool restart_queued;
    /* applied commands (survives restarts through snapshots) */
    uint64_t last_cmd, chain;
    /* planted bug VOTE_VOLATILE: a vote not yet written */
    bool vote_pending;
    raft_id vote;
    uint64_t closing_u; /* what node_closed_ev does (AFTER_*, damage, restart) */
    /* the AppendEntries-result clamp (see w_send) */
    raft_io_recv_cb raft_recv;
    bool clamp;
    raft_index clamp_to;
    raft_term prevote_term; /* of the pre-vote request being handled */
};

/* What the run knows of index i: the command applied there. */
typedef struct cl_slot {
    uint64_t hash, chain, op, by;
    bool set;
} cl_slot;

struct cl {
    const rlog_sim_cluster_options *o;
    rlog_sim_cluster_result *res;
    cl_world w;
    rlog_simnet *net;
    rlog_sim_rng rng; /* the harness's decisions */
    uint64_t hash;
    bool stop;
    unsigned nnodes;
    cl_node nodes[CL_MAX_NODES];
    uint64_t next_id;
    cl_client clients[8];
    cl_op *ops;
    size_t nops, capops;
    cl_req *reqs;
    cl_change *changes;
    bool change_busy;
    cl_slot *slots;
    size_t capslots;
    uint64_t *term_leader; /* term -> leader id */
    size_t capterms;
    bool faulting; /* the fault phase */
    bool healed;
    uint64_t snapshot_threshold, snapshot_trailing;
    bool pre_vote;
    bool membership; /* the seed changes the membership */
    unsigned nbad;
    uint64_t net_faults_on;
    const rlog_sim_cluster_fsm *fsm;
    rlog_sim_cluster_fsm builtin;
    unsigned keys;
    bool quiet;           /* clients stop issuing */
    uint64_t heal_at;     /* when faults stopped */
    uint64_t converge_to; /* index every running voter must apply */
};

/* ------------------------------------------------------------ trace */

static uint64_t cl_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t cl_bytes_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void cl_trace(cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cl_trace(cl *c, const char *fmt, ...)
{
    char line[1200];
    int k = snprintf(line, sizeof line, "%" PRIu64 ".%09" PRIu64 " ", c->w.now / 1000000000u,
                     c->w.now % 1000000000u);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
    va_end(ap);
    for (const char *p = line; *p; p++)
        c->hash = cl_mix(c->hash ^ (uint8_t)*p);
    if (c->o->trace)
        c->o->trace(c->o->trace_data, line);
}

static void cl_fail(cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cl_fail(cl *c, const char *fmt, ...)
{
    if (!c->res->failed) {
        va_list ap;
        va_start(ap, fmt);
        int k = snprintf(c->res->message, sizeof c->res->message,
                         "t=%" PRIu64 "ms: ", c->w.now / CL_MS);
        vsnprintf(c->res->message + k, sizeof c->res->message - (size_t)k, fmt, ap);
        va_end(ap);
        c->res->failed = 1;
        cl_trace(c, "ORACLE FAILED: %s", c->res->message);
    }
    c->stop = true;
}

static void *cl_grow(void *p, size_t *cap, size_t idx, size_t size)
{
    return rlg_array_grow_zero(&p, cap, idx + 1, size, 64) ? NULL : p;
}

static bool cl_oom(cl *c, void *p)
{
    if (p == NULL) {
        c->w.nomem = true;
        c->stop = true;
        return true;
    }
    return false;
}

/* ------------------------------------------------ libraft's memory */

/* libraft 0.15 leaves some buffers it sends and stores uninitialised (a
 * barrier entry's 8 payload bytes): their bytes would differ from run to
 * run, and so would the trace hash. During a run libraft allocates zeroed
 * memory. */
static void *heap_malloc(void *data, size_t size)
{
    (void)data;
    return calloc(1, size ? size : 1);
}

static void heap_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static void *heap_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return calloc(n ? n : 1, size ? size : 1);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    uint8_t *p = realloc(ptr, size);
    if (p != NULL) {
        size_t now = malloc_usable_size(p);
        if (now > old)
            memset(p + old, 0, now - old);
    }
    return p;
}

static void *heap_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    size_t n = (size + alignment - 1) / alignment * alignment;
    void *p = aligned_alloc(alignment, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

static void heap_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)data;
    (void)alignment;
    free(ptr);
}

static struct raft_heap g_zero_heap = {.malloc = heap_malloc,
                                       .free = heap_free,
                                       .calloc = heap_calloc,
                                       .realloc = heap_realloc,
                                       .aligned_alloc = heap_aligned_alloc,
                                       .aligned_free = heap_aligned_free};

/* -------------------------------------------------------------- env */

static uint64_t env_now(rlog_env *e)
{
    cl_node *n = e->impl;
    return n->c->w.now;
}

static uint64_t env_random(rlog_env *e)
{
    cl_node *n = e->impl;
    return rlog_sim_rng_next(&n->rng);
}

static void env_destroy(rlog_env *e)
{
    (void)e;
}

/* ------------------------------------------- the built-in register map */

typedef struct kv_state {
    uint64_t *vals;
    unsigned keys;
} kv_state;

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)get_u64(p) & 0xffffffffu; /* callers pass 8 readable bytes */
}

static int kv_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    kv_state *s = fsm->data;
    if (buf->len != RLOG_SIM_CLUSTER_CMD_SIZE)
        return RAFT_MALFORMED;
    const uint8_t *b = buf->base;
    uint32_t kind = get_u32(b + 8), key = get_u32(b + 12);
    if (key >= s->keys)
        return RAFT_MALFORMED;
    if (kind == RLOG_SIM_CLUSTER_WRITE)
        s->vals[key] = get_u64(b + 16);
    *result = (void *)(uintptr_t)s->vals[key];
    return 0;
}

static int kv_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    kv_state *s = fsm->data;
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL)
        return RAFT_NOMEM;
    (*bufs)[0].len = 8u * s->keys;
    (*bufs)[0].base = raft_malloc((*bufs)[0].len);
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    for (unsigned i = 0; i < s->keys; i++)
        put_u64((uint8_t *)(*bufs)[0].base + 8 * i, s->vals[i]);
    *n = 1;
    return 0;
}

static int kv_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    kv_state *s = fsm->data;
    if (buf->len != 8u * s->keys)
        return RAFT_MALFORMED;
    for (unsigned i = 0; i < s->keys; i++)
        s->vals[i] = get_u64((const uint8_t *)buf->base + 8 * i);
    raft_free(buf->base);
    return 0;
}

static int kv_make(void *data, uint64_t id, struct raft_fsm *fsm)
{
    (void)id;
    kv_state *s = calloc(1, sizeof *s);
    unsigned keys = *(const unsigned *)data;
    if (s == NULL || (s->vals = calloc(keys, sizeof *s->vals)) == NULL) {
        free(s);
        return RAFT_NOMEM;
    }
    s->keys = keys;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = 1;
    fsm->data = s;
    fsm->apply = kv_apply;
    fsm->snapshot = kv_snapshot;
    fsm->restore = kv_restore;
    return 0;
}

static void kv_destroy(void *data, struct raft_fsm *fsm)
{
    (void)data;
    kv_state *s = fsm->data;
    free(s->vals);
    free(s);
}

static uint64_t kv_read(struct raft_fsm *fsm, uint32_t key)
{
    kv_state *s = fsm->data;
    return key < s->keys ? s->vals[key] : 0;
}

/* ------------------------------------- the FSM wrapper: applied commands */

static cl_slot *slot_at(cl *c, uint64_t index)
{
    cl_slot *s = cl_grow(c->slots, &c->capslots, index, sizeof *s);
    if (cl_oom(c, s))
        return NULL;
    c->slots = s;
    return &s[index];
}

/* State machine safety: command `h` applied at `index` by node n. */
static void note_applied(cl *c, cl_node *n, uint64_t index, uint64_t h, uint64_t opid)
{
    if (index <= n->last_cmd) {
        cl_fail(c, "server %" PRIu64 " applied index %" PRIu64 " after index %" PRIu64, n->id,
                index, n->last_cmd);
        return;
    }
    n->chain = cl_mix(n->chain ^ cl_mix(index ^ h));
    n->last_cmd = index;
    cl_slot *s = slot_at(c, index);
    if (s == NULL)
        return;
    if (!s->set) {
        *s = (cl_slot){.hash = h, .chain = n->chain, .op = opid, .by = n->id, .set = true};
    } else if (s->hash != h || s->chain != n->chain) {
        cl_fail(c,
                "state machine safety: server %" PRIu64 " applied %s at index %" PRIu64
                " (op %" PRIu64 ") than server %" PRIu64 " (op %" PRIu64 ")",
                n->id, s->hash != h ? "another command" : "a different history up to its command",
                index, opid, s->by, s->op);
    }
}

static int w_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    cl_node *n = fsm->data;
    cl *c = n->c;
    uint64_t index = raft_last_applied(n->raft) + 1;
    uint64_t h = cl_bytes_hash(buf->base, buf->len);
    int rv = n->ufsm.apply(&n->ufsm, buf, result);
    if (rv != 0) {
        cl_fail(c, "server %" PRIu64 ": the FSM failed to apply index %" PRIu64 ": %d", n->id,
                index, rv);
        return rv;
    }
    uint64_t op = buf->len == RLOG_SIM_CLUSTER_CMD_SIZE ? get_u64(buf->base) : 0;
    note_applied(c, n, index, h, op);
    if (buf->len == RLOG_SIM_CLUSTER_CMD_SIZE) {
        if (op >= 1 && op <= c->nops && c->ops[op - 1].index == 0)
            c->ops[op - 1].index = index;
        else if (op >= 1 && op <= c->nops && c->ops[op - 1].index != index)
            cl_fail(c, "op %" PRIu64 " applied at index %" PRIu64 " and at %" PRIu64, op,
                    c->ops[op - 1].index, index);
    }
    return 0;
}

#define CL_TRAILER 24

static int w_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    cl_node *n = fsm->data;
    struct raft_buffer *ub = NULL;
    unsigned un = 0;
    int rv = n->ufsm.snapshot(&n->ufsm, &ub, &un);
    if (rv != 0)
        return rv;
    struct raft_buffer *b = raft_malloc((un + 1) * sizeof *b);
    uint8_t *t = raft_malloc(CL_TRAILER);
    if (b == NULL || t == NULL) {
        raft_free(b);
        raft_free(t);
        for (unsigned i = 0; i < un; i++)
            raft_free(ub[i].base);
        raft_free(ub);
        return RAFT_NOMEM;
    }
    memcpy(b, ub, un * sizeof *b);
    raft_free(ub);
    put_u64(t, n->last_cmd);
    put_u64(t + 8, n->chain);
    put_u64(t + 16, 0x736e6170u);
    b[un].base = t;
    b[un].len = CL_TRAILER;
    *bufs = b;
    *n_bufs = un + 1;
    n->c->res->snapshots_taken++;
    cl_trace(n->c, "server %" PRIu64 " takes a snapshot at index %" PRIu64, n->id,
             (uint64_t)raft_last_applied(n->raft));
    return 0;
}

static int w_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    cl_node *n = fsm->data;
    cl *c = n->c;
    if (buf->len < CL_TRAILER)
        return RAFT_MALFORMED;
    const uint8_t *t = (const uint8_t *)buf->base + buf->len - CL_TRAILER;
    uint64_t last = get_u64(t), chain = get_u64(t + 8);
    if (get_u64(t + 16) != 0x736e6170u) {
        cl_fail(c, "server %" PRIu64 " restored a snapshot without the harness's trailer", n->id);
        return RAFT_MALFORMED;
    }
    struct raft_buffer ub = {buf->base, buf->len - CL_TRAILER};
    int rv = n->ufsm.restore(&n->ufsm, &ub);
    if (rv != 0)
        return rv;
    if (last > 0) {
        cl_slot *s = slot_at(c, last);
        if (s != NULL && s->set && s->chain != chain)
            cl_fail(c,
                    "state machine safety: server %" PRIu64
                    " restored a snapshot whose history up to index %" PRIu64
                    " differs from the applied one",
                    n->id, last);
    }
    n->last_cmd = last;
    n->chain = chain;
    c->res->snapshots_installed++;
    cl_trace(c, "server %" PRIu64 " restores a snapshot (last command at %" PRIu64 ")", n->id,
             last);
    return 0;
}

/* --------------------------------------- the io wrapper, planted bugs */

/* The io as the harness allocates it: libraft owns io->data. */
typedef struct cl_io {
    struct raft_io io; /* first */
    cl_node *n;
} cl_io;

static cl_node *node_of_io(struct raft_io *io)
{
    return ((cl_io *)io)->n;
}

typedef struct w_append {
    struct raft_io_append inner;
    struct raft_io_append *outer;
    raft_io_append_cb cb;
    cl_node *n;
    uint64_t last; /* index of the last entry */
    unsigned gen;
    unsigned refs; /* the store's completion, and a pending early ack */
    bool acked;    /* libraft heard of it */
} w_append;

static void w_append_unref(w_append *a)
{
    if (--a->refs == 0)
        free(a);
}

/* libraft 0.15 truncates its in-memory log at each failed leader append
 * (replication.c, appendLeaderCb: logTruncate(request->index)) without
 * checking that the index is still in the log: a second failed append of
 * those in flight truncates past the end and corrupts its memory. So a
 * server whose store failed gets ONE failure (libraft fails the client
 * request) and is then crashed by the harness; appends completing while it
 * closes (the dead process's, or a clean shutdown's RAFT_CANCELED) are
 * handed to libraft as done: in state UNAVAILABLE it only releases them. */
static void w_append_cb(struct raft_io_append *inner, int status)
{
    w_append *a = (w_append *)inner;
    cl_node *n = a->n;
    if (status != 0 && n->closing && raft_state(n->raft) == RAFT_UNAVAILABLE)
        status = 0;
    else if (status != 0)
        n->failed = true; /* the store failed: the process restarts */
    if (!a->acked && a->cb != NULL) {
        /* a follower answers the leader from this callback: its result
         * covers the entries of this append */
        a->acked = true;
        n->clamp = true;
        n->clamp_to = a->last;
        a->cb(a->outer, status);
        n->clamp = false;
    }
    w_append_unref(a);
}

static void w_early_ack(void *arg, uint64_t u)
{
    (void)u;
    w_append *a = arg;
    if (a->gen != a->n->gen || !a->n->running) {
        w_append_unref(a); /* that incarnation is gone */
        return;
    }
    if (!a->acked && a->cb != NULL) {
        a->acked = true;
        a->cb(a->outer, 0);
    }
    w_append_unref(a);
}

static int w_append_io(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    cl_node *nd = node_of_io(io);
    w_append *a = calloc(1, sizeof *a);
    if (a == NULL)
        return RAFT_NOMEM;
    a->outer = req;
    a->cb = cb;
    a->n = nd;
    a->gen = nd->gen;
    a->refs = 1;
    req->cb = cb;
    rlog_rs *rs = rlog_raft_io_storage(io);
    a->last = (rs != NULL ? rlog_rs_last_index(rs) : 0) + n;
    int rv = nd->orig.append(io, &a->inner, entries, n, w_append_cb);
    if (rv != 0) {
        free(a);
        return rv;
    }
    if (nd->c->o->bugs & RLOG_SIM_CLUSTER_BUG_EARLY_ACK) {
        /* BUG: libraft hears "durable" at once (on the next event), before
         * the store made the entries durable */
        a->refs++;
        if (rlg_cl_at(&nd->c->w, nd->c->w.now, w_early_ack, a, 0) != 0)
            a->refs--;
    }
    return 0;
}

static void w_vote_flush(cl_node *n)
{
    if (n->vote_pending && n->running && !n->closing) {
        n->vote_pending = false;
        if (n->orig.set_vote(n->io, n->vote) != 0)
            n->failed = true;
    }
}

static void w_vote_flush_ev(void *arg, uint64_t gen)
{
    cl_node *n = arg;
    if (n->gen == gen)
        w_vote_flush(n);
}

static int w_set_term(struct raft_io *io, raft_term term)
{
    cl_node *n = node_of_io(io);
    n->vote_pending = false; /* a new term clears the vote */
    int rv = n->orig.set_term(io, term);
    if (rv != 0)
        n->failed = true;
    return rv;
}

static int w_set_vote(struct raft_io *io, raft_id id)
{
    cl_node *n = node_of_io(io);
    if (n->c->o->bugs & RLOG_SIM_CLUSTER_BUG_VOTE_VOLATILE) {
        /* BUG: the vote reaches the disk later (a write never synced: the
         * page cache has it, so a process crash keeps it; a power loss
         * before the writeback forgets it) */
        n->vote_pending = true;
        n->vote = id;
        if (rlg_cl_at(&n->c->w, n->c->w.now + (200 + rlog_sim_rng_below(&n->c->rng, 3000)) * CL_MS,
                      w_vote_flush_ev, n, n->gen) != 0)
            w_vote_flush(n);
        return 0;
    }
    int rv = n->orig.set_vote(io, id);
    if (rv != 0)
        n->failed = true;
    return rv;
}

typedef struct w_trunc {
    cl_node *n;
    unsigned gen;
    raft_index index;
} w_trunc;

static void w_truncate_task(void *arg)
{
    w_trunc *t = arg;
    cl_node *n = t->n;
    if (n->gen == t->gen && n->running && !n->closing && n->orig.truncate(n->io, t->index) != 0)
        n->failed = true;
    free(t);
}

static int w_truncate(struct raft_io *io, raft_index index)
{
    cl_node *n = node_of_io(io);
    if (n->c->o->bugs & RLOG_SIM_CLUSTER_BUG_TRUNCATE_RACE) {
        /* BUG: the truncation is done on a later turn, after appends that
         * libraft made after it (they land at the wrong indexes, and are
         * then cut) */
        w_trunc *t = malloc(sizeof *t);
        if (t == NULL)
            return RAFT_NOMEM;
        *t = (w_trunc){n, n->gen, index};
        if (n->loop->tab.post(&n->loop->tab, w_truncate_task, t) != 0) {
            free(t);
            return RAFT_CANCELED;
        }
        return 0;
    }
    int rv = n->orig.truncate(io, index);
    if (rv != 0)
        n->failed = true;
    return rv;
}

/* libraft 0.15 answers a successful AppendEntries with its whole stored
 * log as last_log_index (replication.c: result.last_log_index =
 * r->last_stored), and the leader takes that as the match index (capped at
 * its own last index only). A follower whose stale tail from an older term
 * was not yet cut (a heartbeat carries no entries, so nothing is cut) is
 * then counted for entries it does not hold: the leader commits entries a
 * majority does not have, and then never repairs that follower (it ignores
 * its rejections: "match index is up to date"). The simulator found this
 * (seed 13 of the first run: a follower stuck forever). Unless
 * raw_libraft is set, the harness repairs it on the follower's side:
 * a success answer claims no more than prev_log_index + n_entries of the
 * request it answers (Raft's rule). */
static void w_recv(struct raft_io *io, struct raft_message *m)
{
    cl_node *n = node_of_io(io);
    bool was = n->clamp;
    raft_index to = n->clamp_to;
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        n->clamp = true;
        n->clamp_to = m->append_entries.prev_log_index + m->append_entries.n_entries;
    }
    n->prevote_term =
        m->type == RAFT_IO_REQUEST_VOTE && m->request_vote.pre_vote ? m->request_vote.term : 0;
    n->raft_recv(io, m);
    n->prevote_term = 0;
    n->clamp = was;
    n->clamp_to = to;
}

static int w_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    cl_node *n = node_of_io(io);
    n->raft_recv = recv;
    return n->orig.start(io, msecs, tick, n->c->o->raw_libraft ? recv : w_recv);
}

static int w_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                  raft_io_send_cb cb)
{
    cl_node *n = node_of_io(io);
    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT && !n->c->o->raw_libraft && n->clamp &&
        m->append_entries_result.rejected == 0 &&
        m->append_entries_result.last_log_index > n->clamp_to) {
        struct raft_message copy = *m;
        copy.append_entries_result.last_log_index = n->clamp_to;
        return n->orig.send(io, req, &copy, cb);
    }
    /* libraft 0.15 answers every pre-vote with the request's term, also
     * when it refuses because its own term is higher (recv_request_vote.c:
     * result->term = args->term): a candidate with a lower term never
     * learns the higher one. Two live servers of three — one with the
     * longer log and the lower term, one with the higher term and the
     * shorter log — then refuse each other forever (found: a liveness
     * failure, seed 1701 of the first 2000). The harness answers a refused
     * pre-vote with the refuser's term (Raft's rule for RequestVote). */
    if (m->type == RAFT_IO_REQUEST_VOTE_RESULT && !n->c->o->raw_libraft && n->prevote_term &&
        !m->request_vote_result.vote_granted && n->raft->current_term > n->prevote_term) {
        struct raft_message copy = *m;
        copy.request_vote_result.term = n->raft->current_term;
        return n->orig.send(io, req, &copy, cb);
    }
    return n->orig.send(io, req, m, cb);
}

/* libraft 0.15 leaks the buffer array of a snapshot installed from the
 * leader when it discards it (replication.c, installSnapshotCb: the
 * discard path frees bufs[0].base, not bufs) — a failed or cancelled
 * install, e.g. by a crash. The harness frees it after libraft's callback
 * took that path, so that leak checkers judge rlog. */
typedef struct w_snap {
    struct raft_io_snapshot_put inner;
    struct raft_io_snapshot_put *outer;
    raft_io_snapshot_put_cb cb;
    cl_node *n;
    struct raft_buffer *bufs;
    unsigned trailing;
} w_snap;

static void w_snapshot_put_cb(struct raft_io_snapshot_put *inner, int status)
{
    w_snap *w = (w_snap *)inner;
    cl_node *n = w->n;
    bool discard = w->trailing == 0 && !n->c->o->raw_libraft &&
                   (status != 0 || raft_state(n->raft) == RAFT_UNAVAILABLE);
    struct raft_buffer *bufs = w->bufs;
    if (status != 0)
        n->failed = true; /* the adapter fails stop after a failed put: the process restarts */
    if (w->cb != NULL)
        w->cb(w->outer, status);
    if (discard)
        raft_free(bufs);
    free(w);
}

static int w_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                          const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    cl_node *n = node_of_io(io);
    w_snap *w = calloc(1, sizeof *w);
    if (w == NULL)
        return RAFT_NOMEM;
    w->outer = req;
    w->cb = cb;
    w->n = n;
    w->bufs = snapshot->bufs;
    w->trailing = trailing;
    req->cb = cb;
    int rv = n->orig.snapshot_put(io, trailing, &w->inner, snapshot, w_snapshot_put_cb);
    if (rv != 0)
        free(w);
    return rv;
}

static void wrap_io(cl_node *n)
{
    n->orig = *n->io;
    ((cl_io *)n->io)->n = n;
    n->io->append = w_append_io;
    n->io->set_term = w_set_term;
    n->io->set_vote = w_set_vote;
    n->io->truncate = w_truncate;
    n->io->start = w_start;
    n->io->send = w_send;
    n->io->snapshot_put = w_snapshot_put;
}

/* ------------------------------------------------------------ servers */

static bool node_live(const cl_node *n)
{
    return n->running && !n->closing;
}

static void node_trace_fs(void *data, const char *line)
{
    cl_node *n = data;
    if (n->c->o->trace) {
        char buf[1300];
        snprintf(buf, sizeof buf, "  s%" PRIu64 " fs %s", n->id, line);
        n->c->o->trace(n->c->o->trace_data, buf);
    }
}

static void node_log(void *data, rlog_level level, const char *msg)
{
    cl_node *n = data;
    (void)level;
    if (n->c->o->trace) {
        char buf[1300];
        snprintf(buf, sizeof buf, "  s%" PRIu64 " log %s", n->id, msg);
        n->c->o->trace(n->c->o->trace_data, buf);
    }
}

static int node_init_disk(cl *c, cl_node *n)
{
    rlog_simfs_config cfg;
    rlog_simfs_config_init(&cfg, cl_mix(c->o->seed ^ (0xd15c0000ull + n->id)));
    cfg.sector_size = 4096;
    cfg.keep_unsynced_ppm = (uint32_t)rlog_sim_rng_below(&c->rng, 1000001);
    n->fs = rlog_simfs_new(&cfg);
    if (n->fs == NULL)
        return RLOG_ENOMEM;
    if (c->o->trace)
        rlog_simfs_set_trace(n->fs, node_trace_fs, n);
    n->env = (rlog_env){.impl = n, .now_ns = env_now, .random = env_random, .destroy = env_destroy};
    rlog_sim_rng_init(&n->rng, c->o->seed, 100 + n->id);
    return 0;
}

static void node_free_incarnation(cl *c, cl_node *n)
{
    if (n->io != NULL) {
        rlog_raft_io_fini(n->io);
        free(n->io);
        n->io = NULL;
    }
    if (n->ufsm.data != NULL) {
        c->fsm->destroy(c->fsm->data, &n->ufsm);
        memset(&n->ufsm, 0, sizeof n->ufsm);
    }
    free(n->raft);
    n->raft = NULL;
    if (n->loop != NULL) {
        if (n->loop->timers > 0)
            cl_fail(c, "server %" PRIu64 ": the adapter left %u timers running after close", n->id,
                    n->loop->timers);
        rlg_cl_loop_release(n->loop);
        n->loop = NULL;
    }
    n->running = n->closing = n->failed = false;
    n->vote_pending = false;
}

/* What happens once a closing server's raft_close completed. */
enum { AFTER_NONE, AFTER_CRASH, AFTER_POWER };

static void node_restart_ev(void *arg, uint64_t u);

static void node_schedule_restart(cl *c, cl_node *n, uint64_t delay_ns)
{
    if (n->restart_queued || n->refused || n->removed || n->running)
        return;
    n->restart_queued = true;
    if (rlg_cl_at(&c->w, c->w.now + delay_ns, node_restart_ev, n, 0) != 0)
        cl_oom(c, NULL);
}

/* The user records of the segment file at path that lie in the valid
 * prefix of the file (the records recovery reads in order: the segment's
 * salt, consecutive LSNs from the header's first one), as laid out in its
 * durable bytes. For each: fn(arg, offset, size, lsn, proof) where proof is
 * what the record proves durable (docs/format.md, "The durability
 * witness"; a SEAL's proof is its segment's last LSN, a CHECKPOINT's its
 * own LSN) and size is 0 for the SEAL and CHECKPOINT records. */
static void seg_records(cl_node *n, const char *path,
                        void (*fn)(void *arg, uint64_t off, uint64_t size, uint64_t lsn,
                                   uint64_t proof),
                        void *arg)
{
    const char *slash = strrchr(path, '/');
    uint64_t seq;
    uint8_t *d = NULL;
    size_t len = 0;
    rlg_seg_header h;
    if (slash == NULL || !rlg_seg_parse_name(slash + 1, &seq) ||
        rlog_simfs_read(n->fs, path, 1, (void **)&d, &len) != 0)
        return;
    if (len >= RLG_SEG_HEADER_SIZE && rlg_seg_header_decode(d, &h) == RLG_HDR_OK) {
        uint32_t salt = rlg_salt_state(h.log_id, seq);
        uint64_t e = h.first_lsn;
        rlg_rec_header rh;
        for (uint64_t at = RLG_SEG_HEADER_SIZE, o = at; rlg_seg_next(d, len, salt, &o, &rh);
             at = o) {
            bool user = rh.type >= RLOG_TYPE_USER_MIN;
            if (rh.flags != 0 || (user ? rh.lsn != e : rh.lsn + 1 != e))
                break;
            if (user) {
                e++;
                fn(arg, at, o - at, rh.lsn, rh.durable);
            } else {
                fn(arg, at, 0, rh.lsn, rh.lsn);
            }
        }
    }
    rlog_free(d);
}

typedef struct cl_proof {
    uint64_t proven; /* the highest LSN the records prove durable */
    uint64_t count;  /* user records at or below it */
    uint64_t pick;   /* the one to find (count down) */
    uint64_t off, size;
} cl_proof;

static void proof_max(void *arg, uint64_t off, uint64_t size, uint64_t lsn, uint64_t proof)
{
    cl_proof *p = arg;
    (void)off, (void)size, (void)lsn;
    if (proof > p->proven)
        p->proven = proof;
}

static void proof_count(void *arg, uint64_t off, uint64_t size, uint64_t lsn, uint64_t proof)
{
    cl_proof *p = arg;
    (void)proof;
    if (size == 0 || lsn > p->proven)
        return;
    if (p->count++ == p->pick) {
        p->off = off;
        p->size = size;
    }
}

/* Bit rot in the segment file at path, inside a record that the store's
 * own records prove durable (proof over all of its segment files); false
 * when the file holds no such record. Damage to an unproven record — the
 * last ones synced, with nothing written after them — is exactly a torn
 * write to any single-copy format (docs/durability.md, "The window no
 * format closes"): recovery cuts it and the server forgets what it had
 * acknowledged (a vote: it may vote twice in a term), which is the fault
 * plan's doing, not the store's. Damage to a proven record must be
 * reported by the store's open; if it is cut silently instead, the
 * oracles (election safety, durability, ...) see the loss. */
static bool damage_proven(cl *c, cl_node *n, char **paths, size_t count, const char *path,
                          uint64_t *off)
{
    cl_proof p = {0};
    for (size_t i = 0; i < count; i++)
        seg_records(n, paths[i], proof_max, &p);
    p.pick = UINT64_MAX;
    seg_records(n, path, proof_count, &p);
    if (p.count == 0)
        return false;
    p.pick = rlog_sim_rng_below(&c->rng, p.count);
    p.count = 0;
    seg_records(n, path, proof_count, &p);
    return rlog_simfs_bitrot_range(n->fs, path, p.off, p.off + p.size, off) == 0;
}

/* Damage to a bad server's disk after a power loss: bit rot — in a
 * segment file only inside a record proven durable (see damage_proven), in
 * another file (snapshot files, which the marker's CRC32C covers) anywhere
 * — or an unreadable sector anywhere. While it runs (live): bit rot in a
 * proven record only, which its next open must report. (Live damage to the
 * snapshot file of a leader would leave it unable to send that snapshot,
 * for ever: a running store does not re-check its files, and libraft 0.15
 * retries the send without end — a liveness failure that says nothing of
 * the store.) */
static void node_damage(cl *c, cl_node *n, bool live)
{
    char **paths = NULL;
    size_t count = 0;
    if (rlog_simfs_list_files(n->fs, 0, &paths, &count) != 0 || count == 0) {
        rlog_vfs_free_names(paths, count);
        return;
    }
    const char *p = paths[rlog_sim_rng_below(&c->rng, count)];
    const char *slash = strrchr(p, '/');
    uint64_t off = 0, seq;
    bool seg = slash != NULL && rlg_seg_parse_name(slash + 1, &seq) &&
               !(c->o->bugs & RLOG_SIM_CLUSTER_BUG_ROT_UNPROVEN);
    if (live && !seg) {
        rlog_vfs_free_names(paths, count);
        return;
    }
    if (live || rlog_sim_rng_chance(&c->rng, 500000)) {
        if (seg ? damage_proven(c, n, paths, count, p, &off)
                : rlog_simfs_bitrot(n->fs, p, &off) == 0) {
            n->corrupted = true;
            c->res->corruptions++;
            cl_trace(c, "server %" PRIu64 " disk: bit rot in %s at %" PRIu64 "%s", n->id, p, off,
                     seg ? " (a proven record)" : "");
        } else if (seg) {
            cl_trace(c, "server %" PRIu64 " disk: no proven record in %s to damage", n->id, p);
        }
    } else {
        void *data = NULL;
        size_t len = 0;
        if (rlog_simfs_read(n->fs, p, 0, &data, &len) == 0 && len > 0) {
            off = rlog_sim_rng_below(&c->rng, len);
            if (rlog_simfs_add_latent(n->fs, p, off, 1) == 0) {
                n->corrupted = true;
                c->res->corruptions++;
                cl_trace(c, "server %" PRIu64 " disk: unreadable sector in %s at %" PRIu64, n->id,
                         p, off);
            }
        }
        rlog_free(data);
    }
    rlog_vfs_free_names(paths, count);
}

static void node_closed_ev(void *arg, uint64_t u)
{
    cl_node *n = arg;
    cl *c = n->c;
    int after = (int)(u & 0xff);
    bool damage = (u >> 8) & 1, restart = (u >> 9) & 1;
    node_free_incarnation(c, n);
    if (after == AFTER_POWER) {
        rlog_simfs_power_loss(n->fs);
        cl_trace(c, "server %" PRIu64 " POWER LOSS", n->id);
    } else if (after == AFTER_CRASH) {
        rlog_simfs_crash(n->fs);
        cl_trace(c, "server %" PRIu64 " PROCESS CRASH", n->id);
    } else {
        cl_trace(c, "server %" PRIu64 " closed", n->id);
    }
    if (damage)
        node_damage(c, n, false);
    if (restart && !c->stop)
        node_schedule_restart(c, n, (20 + rlog_sim_rng_below(&c->rng, 600)) * CL_MS);
}

static void raft_closed_cb(struct raft *r)
{
    cl_node *n = r->data;
    /* finish on a later turn: the adapter's close is still on the stack */
    if (rlg_cl_at(&n->c->w, n->c->w.now, node_closed_ev, n, n->closing_u) != 0)
        cl_oom(n->c, NULL);
}

/* Pending client operations on a server that dies have unknown outcomes
 * (writes) or are dropped (reads). */
static void ops_orphan(cl *c, cl_node *n)
{
    for (unsigned i = 0; i < c->o->clients; i++) {
        cl_client *cli = &c->clients[i];
        if (cli->op == 0)
            continue;
        cl_op *op = &c->ops[cli->op - 1];
        if (op->node != n->idx || op->outcome != 0)
            continue;
        op->outcome = op->kind == RLOG_SIM_CLUSTER_WRITE ? 3 : 2;
        op->complete = UINT64_MAX;
        cli->op = 0;
    }
}

/* Stops server n: power/crash (its disk is frozen at once, then crashed
 * once raft_close completed) or a clean close. */
static void node_kill(cl *c, cl_node *n, int after, bool damage, bool restart)
{
    if (!node_live(n))
        return;
    if (after == AFTER_CRASH)
        w_vote_flush(n); /* BUG VOTE_VOLATILE: an unsynced vote is in the page cache */
    n->closing = true;
    n->closing_u = (uint64_t)after | (uint64_t)damage << 8 | (uint64_t)restart << 9;
    if (after != AFTER_NONE)
        rlog_simfs_halt_after(n->fs, 0); /* the process is dead: nothing more reaches the disk */
    if (after == AFTER_POWER)
        c->res->power_losses++;
    else if (after == AFTER_CRASH)
        c->res->crashes++;
    ops_orphan(c, n);
    cl_trace(c, "server %" PRIu64 " %s", n->id,
             after == AFTER_POWER   ? "loses power"
             : after == AFTER_CRASH ? "crashes"
                                    : "stops");
    raft_close(n->raft, raft_closed_cb);
}

/* A start that failed. closing: raft_close is about to run (it crashes the
 * disk and maybe restarts once done); otherwise that happens here. */
static void start_failed(cl *c, cl_node *n, int rv, const char *msg, bool halted, bool closing)
{
    cl_trace(c, "server %" PRIu64 " start failed%s: %s: %s", n->id, halted ? " (dying)" : "",
             raft_strerror(rv), msg);
    bool restart = true;
    if (!halted) {
        n->start_fails++;
        if (rv == RAFT_CORRUPT || n->start_fails >= 6) {
            if (rlog_simfs_faults(n->fs, RLOG_SIMFS_FAULT_BITROT) ||
                rlog_simfs_faults(n->fs, RLOG_SIMFS_FAULT_LATENT))
                n->corrupted = true; /* read faults of its disk damaged it */
            if (!n->corrupted) {
                cl_fail(c, "server %" PRIu64 " (disk never damaged) cannot start: %s", n->id, msg);
            } else {
                n->refused = true; /* loudly refused: it stays down */
                c->res->refused_starts++;
                cl_trace(c, "server %" PRIu64 " refuses to start (damaged disk)", n->id);
            }
            restart = false;
        } else if (n->start_fails >= 3) {
            rlog_simfs_enable_faults(n->fs, 0); /* a later attempt on a calm disk */
        }
    }
    if (closing) {
        n->closing_u = AFTER_CRASH | (uint64_t)restart << 9;
        return;
    }
    rlog_simfs_crash(n->fs);
    if (restart)
        node_schedule_restart(c, n, (halted ? 10 : 50) * CL_MS);
}

/* Starts a new incarnation of server n (boot: bootstrap with that
 * configuration first). */
static void node_start(cl *c, cl_node *n, const struct raft_configuration *boot, bool halt)
{
    n->gen++;
    n->loop = rlg_cl_loop_new(&c->w, n);
    n->io = calloc(1, sizeof(cl_io));
    n->raft = calloc(1, sizeof *n->raft);
    rlog_transport *t = NULL;
    if (cl_oom(c, n->loop) || cl_oom(c, n->io) || cl_oom(c, n->raft) ||
        rlog_simnet_transport_new(c->net, &t) != 0) {
        cl_oom(c, NULL);
        node_free_incarnation(c, n);
        return;
    }
    if (c->fsm->make(c->fsm->data, n->id, &n->ufsm) != 0) {
        cl_fail(c, "the FSM's make() failed for server %" PRIu64, n->id);
        t->close(t);
        node_free_incarnation(c, n);
        return;
    }
    n->wfsm = (struct raft_fsm){
        .version = 1, .data = n, .apply = w_apply, .snapshot = w_snapshot, .restore = w_restore};
    n->last_cmd = 0;
    n->chain = 0;
    struct rlog_raft_io_options o;
    memset(&o, 0, sizeof o);
    o.flags = RLOG_RAFT_IO_NO_THREADS;
    o.segment_size = 16384;
    o.poll_ms = 500;
    o.snapshot_chunk = 512;
    if (c->o->trace) {
        o.logger = node_log;
        o.logger_data = n;
    }
    if (halt)
        rlog_simfs_halt_after(n->fs, 1 + rlog_sim_rng_below(&c->rng, 60));
    int rv = rlog_raft_io_init_custom(n->io, &n->loop->tab, CL_DIR, n->fs, &n->env, t, &o);
    if (rv != 0) {
        char msg[RAFT_ERRMSG_BUF_SIZE];
        snprintf(msg, sizeof msg, "%s", n->io->errmsg);
        node_free_incarnation(c, n);
        start_failed(c, n, rv, msg, halt, false);
        return;
    }
    wrap_io(n);
    rv = raft_init(n->raft, n->io, &n->wfsm, n->id, n->addr);
    if (rv != 0) {
        char msg[RAFT_ERRMSG_BUF_SIZE];
        snprintf(msg, sizeof msg, "%s", raft_errmsg(n->raft));
        node_free_incarnation(c, n);
        start_failed(c, n, rv, msg, halt, false);
        return;
    }
    n->raft->data = n;
    raft_set_election_timeout(n->raft, 300);
    raft_set_heartbeat_timeout(n->raft, 50);
    raft_set_install_snapshot_timeout(n->raft, 2000);
    raft_set_snapshot_threshold(n->raft, (unsigned)c->snapshot_threshold);
    raft_set_snapshot_trailing(n->raft, (unsigned)c->snapshot_trailing);
    raft_set_pre_vote(n->raft, c->pre_vote);
    n->running = true;
    if (boot != NULL && (rv = raft_bootstrap(n->raft, boot)) != 0) {
        cl_fail(c, "server %" PRIu64 ": bootstrap failed: %s", n->id, raft_errmsg(n->raft));
        return;
    }
    rv = raft_start(n->raft);
    if (rv != 0) {
        char msg[RAFT_ERRMSG_BUF_SIZE];
        snprintf(msg, sizeof msg, "%s", raft_errmsg(n->raft));
        n->closing = true;
        start_failed(c, n, rv, msg, halt, true);
        raft_close(n->raft, raft_closed_cb);
        return;
    }
    n->start_fails = 0;
    if (c->faulting)
        rlog_simfs_enable_faults(n->fs, 1);
    c->res->restarts++;
    cl_trace(c, "server %" PRIu64 " started (term %" PRIu64 ", last index %" PRIu64 ")%s", n->id,
             (uint64_t)n->raft->current_term, (uint64_t)raft_last_index(n->raft),
             halt ? ", dying" : "");
    if (halt) {
        /* it dies inside its recovery: whatever it did is frozen now */
        c->res->recovery_crashes++;
        node_kill(c, n, rlog_sim_rng_chance(&c->rng, 500000) ? AFTER_POWER : AFTER_CRASH, false,
                  true);
    }
}

static void node_restart_ev(void *arg, uint64_t u)
{
    (void)u;
    cl_node *n = arg;
    cl *c = n->c;
    n->restart_queued = false;
    if (c->stop || n->running || n->refused || n->removed)
        return;
    bool halt = c->faulting && (c->o->faults & RLOG_SIM_CLUSTER_F_CRASH) &&
                rlog_sim_rng_chance(&c->rng, 150000);
    node_start(c, n, NULL, halt);
}

/* ------------------------------------------------------------ clients */

static cl_node *node_by_id(cl *c, uint64_t id)
{
    for (unsigned i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id == id)
            return &c->nodes[i];
    return NULL;
}

static void client_retarget(cl *c, cl_client *cli, cl_node *n)
{
    raft_id id = 0;
    const char *addr = NULL;
    if (n != NULL && node_live(n))
        raft_leader(n->raft, &id, &addr);
    cl_node *l = id ? node_by_id(c, id) : NULL;
    cli->target = l != NULL ? l->idx : (unsigned)rlog_sim_rng_below(&c->rng, c->nnodes);
}

static void client_tick_ev(void *arg, uint64_t u);

static void client_next(cl *c, unsigned ci, uint64_t delay_ns)
{
    uint64_t token = ++c->clients[ci].token;
    if (rlg_cl_at(&c->w, c->w.now + delay_ns, client_tick_ev, c, ci | token << 8) != 0)
        cl_oom(c, NULL);
}

static void op_resolve(cl *c, cl_op *op, int outcome, uint64_t value)
{
    op->outcome = outcome;
    op->complete = outcome == 3 ? UINT64_MAX : c->w.now;
    if (outcome == 1 && op->kind == RLOG_SIM_CLUSTER_READ)
        op->value = value;
    if (outcome == 1)
        c->res->ops_ok++;
    else if (outcome == 2)
        c->res->ops_failed++;
    else
        c->res->ops_unknown++;
    cl_client *cli = &c->clients[op->client];
    if (cli->op == (size_t)(op - c->ops) + 1)
        cli->op = 0;
    cl_trace(c, "client %u op %" PRIu64 " %s key %u %s %" PRIu64 " via s%" PRIu64, op->client,
             op->id,
             op->kind == RLOG_SIM_CLUSTER_WRITE ? "write"
             : op->barrier                      ? "read(barrier)"
                                                : "read",
             op->key,
             outcome == 1   ? "ok"
             : outcome == 2 ? "failed"
                            : "unknown",
             op->value, c->nodes[op->node].id);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    cl_req *r = req->data;
    cl *c = r->c;
    cl_op *op = &c->ops[r->op];
    if (op->outcome != 0)
        return; /* timed out, or its server died: already judged */
    if (status == 0) {
        uint64_t v = (uint64_t)(uintptr_t)result;
        if (op->kind == RLOG_SIM_CLUSTER_WRITE && v != op->value) {
            cl_fail(c, "write op %" PRIu64 " applied but the FSM answered %" PRIu64, op->id, v);
            return;
        }
        op_resolve(c, op, 1, v);
    } else {
        op_resolve(c, op, op->kind == RLOG_SIM_CLUSTER_WRITE ? 3 : 2, 0);
        client_retarget(c, &c->clients[op->client], &c->nodes[op->node]);
    }
    client_next(c, op->client, rlog_sim_rng_below(&c->rng, 20) * CL_MS);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    cl_req *r = req->data;
    cl *c = r->c;
    cl_op *op = &c->ops[r->op];
    if (op->outcome != 0)
        return;
    cl_node *n = &c->nodes[op->node];
    if (status == 0 && node_live(n)) {
        op_resolve(c, op, 1, c->fsm->read(&n->ufsm, op->key));
    } else {
        op_resolve(c, op, 2, 0);
        client_retarget(c, &c->clients[op->client], n);
    }
    client_next(c, op->client, rlog_sim_rng_below(&c->rng, 20) * CL_MS);
}

static void client_issue(cl *c, unsigned ci)
{
    cl_client *cli = &c->clients[ci];
    cl_node *n = &c->nodes[cli->target];
    if (!node_live(n)) {
        client_retarget(c, cli, NULL);
        client_next(c, ci, (5 + rlog_sim_rng_below(&c->rng, 20)) * CL_MS);
        return;
    }
    cl_op *ops = cl_grow(c->ops, &c->capops, c->nops, sizeof *ops);
    cl_req *r = calloc(1, sizeof *r);
    if (cl_oom(c, ops) || cl_oom(c, r)) {
        free(r);
        return;
    }
    c->ops = ops;
    size_t i = c->nops++;
    cl_op *op = &ops[i];
    memset(op, 0, sizeof *op);
    op->id = i + 1;
    op->key = (uint32_t)rlog_sim_rng_below(&c->rng, c->o->keys);
    op->kind =
        rlog_sim_rng_chance(&c->rng, 550000) ? RLOG_SIM_CLUSTER_WRITE : RLOG_SIM_CLUSTER_READ;
    op->barrier = op->kind == RLOG_SIM_CLUSTER_READ && rlog_sim_rng_chance(&c->rng, 500000);
    op->value = op->kind == RLOG_SIM_CLUSTER_WRITE ? op->id : 0;
    op->invoke = c->w.now;
    op->client = ci;
    op->node = n->idx;
    r->c = c;
    r->op = i;
    r->next = c->reqs;
    c->reqs = r;
    cli->op = i + 1;
    int rv;
    if (op->barrier) {
        r->barrier.data = r;
        rv = raft_barrier(n->raft, &r->barrier, barrier_cb);
    } else {
        struct raft_buffer buf = {raft_malloc(RLOG_SIM_CLUSTER_CMD_SIZE),
                                  RLOG_SIM_CLUSTER_CMD_SIZE};
        if (cl_oom(c, buf.base))
            return;
        uint8_t *b = buf.base;
        put_u64(b, op->id);
        put_u64(b + 8, (uint64_t)op->kind | (uint64_t)op->key << 32);
        put_u64(b + 16, op->value);
        r->apply.data = r;
        rv = raft_apply(n->raft, &r->apply, &buf, 1, apply_cb);
        if (rv != 0)
            raft_free(buf.base);
    }
    if (rv != 0) { /* refused at once: it did not happen */
        op_resolve(c, op, 2, 0);
        client_retarget(c, cli, n);
        client_next(c, ci, (1 + rlog_sim_rng_below(&c->rng, 10)) * CL_MS);
    } else {
        client_next(c, ci, CL_OP_TIMEOUT); /* gives up then */
    }
}

static bool clients_on(cl *c);

static void client_tick_ev(void *arg, uint64_t u)
{
    cl *c = arg;
    unsigned ci = (unsigned)(u & 0xff);
    cl_client *cli = &c->clients[ci];
    if (c->stop || (u >> 8) != cli->token)
        return;
    if (cli->op != 0) {
        cl_op *op = &c->ops[cli->op - 1];
        if (op->outcome == 0 && c->w.now - op->invoke >= CL_OP_TIMEOUT) {
            op_resolve(c, op, op->kind == RLOG_SIM_CLUSTER_WRITE ? 3 : 2, 0);
            client_retarget(c, cli, NULL);
        } else {
            if (op->outcome == 0)
                client_next(c, ci, op->invoke + CL_OP_TIMEOUT - c->w.now);
            return;
        }
    }
    if (clients_on(c))
        client_issue(c, ci);
}

static bool clients_on(cl *c)
{
    return !c->stop && !c->quiet;
}

/* ---------------------------------------------------------- oracles */

static cl_node *current_leader(cl *c)
{
    cl_node *best = NULL;
    for (unsigned i = 0; i < c->nnodes; i++) {
        cl_node *n = &c->nodes[i];
        if (node_live(n) && raft_state(n->raft) == RAFT_LEADER &&
            (best == NULL || n->raft->current_term > best->raft->current_term))
            best = n;
    }
    return best;
}

/* Election safety, after every event: at most one leader per term. Also
 * sends a failed server to restart. */
static void check_event(cl *c)
{
    for (unsigned i = 0; i < c->nnodes; i++) {
        cl_node *n = &c->nodes[i];
        if (!node_live(n))
            continue;
        if (n->failed || raft_state(n->raft) == RAFT_UNAVAILABLE) {
            cl_trace(c, "server %" PRIu64 " failed (%s): the process restarts", n->id,
                     n->failed ? "storage error" : "unavailable");
            node_kill(c, n, AFTER_CRASH, false, true);
            continue;
        }
        if (raft_state(n->raft) != RAFT_LEADER)
            continue;
        uint64_t term = n->raft->current_term;
        uint64_t *tl = cl_grow(c->term_leader, &c->capterms, term, sizeof *tl);
        if (cl_oom(c, tl))
            return;
        c->term_leader = tl;
        if (tl[term] == 0) {
            tl[term] = n->id;
            c->res->leaders++;
            if (term > c->res->max_term)
                c->res->max_term = term;
            cl_trace(c, "server %" PRIu64 " leads term %" PRIu64, n->id, term);
        } else if (tl[term] != n->id) {
            cl_fail(c,
                    "election safety: servers %" PRIu64 " and %" PRIu64 " both lead term %" PRIu64,
                    tl[term], n->id, term);
        }
    }
}

/* The entries of a server's store: index -> (term, payload hash). */
typedef struct cl_log {
    uint64_t first, last;
    uint64_t *term, *hash;
} cl_log;

static int log_read(cl_node *n, cl_log *lg)
{
    memset(lg, 0, sizeof *lg);
    rlog_rs *rs = rlog_raft_io_storage(n->io);
    if (rs == NULL)
        return -1;
    lg->first = rlog_rs_first_index(rs);
    lg->last = rlog_rs_last_index(rs);
    if (lg->last < lg->first)
        return 0;
    size_t cnt = (size_t)(lg->last - lg->first + 1);
    lg->term = calloc(cnt, sizeof *lg->term);
    lg->hash = calloc(cnt, sizeof *lg->hash);
    if (lg->term == NULL || lg->hash == NULL)
        return -1;
    uint64_t at = lg->first;
    while (at <= lg->last) {
        rlog_rs_entries ch;
        if (rlog_rs_entries_read(rs, at, lg->last, 1 << 20, &ch) != 0 || ch.n == 0)
            return -1;
        for (size_t k = 0; k < ch.n; k++) {
            lg->term[at - lg->first + k] = ch.v[k].term;
            lg->hash[at - lg->first + k] = cl_bytes_hash(ch.v[k].data, ch.v[k].len) ^ ch.v[k].type;
        }
        at += ch.n;
        rlog_rs_entries_free(&ch);
    }
    return 0;
}

static void log_free(cl_log *lg)
{
    free(lg->term);
    free(lg->hash);
}

/* Log matching: two logs holding an entry with the same index and term
 * hold the same entries up to it (where both still have them). */
static void check_log_matching(cl *c)
{
    cl_log lg[CL_MAX_NODES];
    cl_node *who[CL_MAX_NODES];
    unsigned k = 0;
    for (unsigned i = 0; i < c->nnodes; i++) {
        cl_node *n = &c->nodes[i];
        if (!node_live(n))
            continue;
        rlog_simfs_enable_faults(n->fs, 0);
        int rv = log_read(n, &lg[k]);
        if (rv != 0) {
            log_free(&lg[k]);
            continue;
        }
        who[k++] = n;
    }
    for (unsigned a = 0; a < k && !c->stop; a++)
        for (unsigned b = a + 1; b < k && !c->stop; b++) {
            uint64_t lo = lg[a].first > lg[b].first ? lg[a].first : lg[b].first;
            uint64_t hi = lg[a].last < lg[b].last ? lg[a].last : lg[b].last;
            bool match = false;
            for (uint64_t i = hi; i >= lo && i > 0 && !c->stop; i--) {
                uint64_t ta = lg[a].term[i - lg[a].first], tb = lg[b].term[i - lg[b].first];
                uint64_t ha = lg[a].hash[i - lg[a].first], hb = lg[b].hash[i - lg[b].first];
                if (!match && ta == tb)
                    match = true;
                if (match && (ta != tb || ha != hb))
                    cl_fail(c,
                            "log matching: servers %" PRIu64 " and %" PRIu64
                            " agree on the term below index %" PRIu64 " but differ at %" PRIu64
                            " (terms %" PRIu64 "/%" PRIu64 ", first %" PRIu64 "/%" PRIu64 ")",
                            who[a]->id, who[b]->id, hi, i, ta, tb, lg[a].first, lg[b].first);
            }
        }
    for (unsigned i = 0; i < k; i++)
        log_free(&lg[i]);
}

static void check_history(cl *c)
{
    rlog_sim_lin_op *h = malloc((c->nops + 1) * sizeof *h);
    if (cl_oom(c, h))
        return;
    for (uint32_t key = 0; key < c->o->keys && !c->stop; key++) {
        size_t n = 0;
        for (size_t i = 0; i < c->nops; i++) {
            const cl_op *op = &c->ops[i];
            if (op->key != key || op->outcome == 2 || op->outcome == 0)
                continue;
            if (op->kind == RLOG_SIM_CLUSTER_READ && op->outcome != 1)
                continue;
            h[n++] = (rlog_sim_lin_op){.invoke = op->invoke,
                                       .complete = op->outcome == 1 ? op->complete : UINT64_MAX,
                                       .write = op->kind == RLOG_SIM_CLUSTER_WRITE,
                                       .value = op->value};
        }
        int v = rlog_sim_lin_check(h, n, 0, CL_LIN_BUDGET);
        if (v == 0)
            cl_fail(c, "linearizability: the history of key %u (%zu operations) has no legal order",
                    key, n);
        else if (v < 0)
            c->res->linearizability_unknown++;
    }
    free(h);
}

/* ------------------------------------------------------- membership */

static unsigned voters_of(const struct raft *r)
{
    unsigned v = 0;
    for (unsigned i = 0; i < r->configuration.n; i++)
        v += r->configuration.servers[i].role == RAFT_VOTER;
    return v;
}

static void change_cb(struct raft_change *req, int status);

static cl_change *change_new(cl *c, uint64_t id, int what)
{
    cl_change *ch = calloc(1, sizeof *ch);
    if (cl_oom(c, ch))
        return NULL;
    ch->c = c;
    ch->id = id;
    ch->what = what;
    ch->req.data = ch;
    ch->next = c->changes;
    c->changes = ch;
    return ch;
}

static void promote_ev(void *arg, uint64_t id)
{
    cl *c = arg;
    cl_node *l = current_leader(c);
    if (c->stop || l == NULL) {
        c->change_busy = false;
        return;
    }
    cl_change *ch = change_new(c, id, 2);
    if (ch == NULL)
        return;
    ch->issuer = l;
    int rv = raft_assign(l->raft, &ch->req, id, RAFT_VOTER, change_cb);
    cl_trace(c, "server %" PRIu64 " asks to promote %" PRIu64 " to voter: %s", l->id, id,
             rv ? raft_strerror(rv) : "ok");
    if (rv != 0)
        c->change_busy = false;
}

static void removed_stop_ev(void *arg, uint64_t u)
{
    (void)u;
    cl_node *n = arg;
    node_kill(n->c, n, AFTER_NONE, false, false);
}

static void change_cb(struct raft_change *req, int status)
{
    cl_change *ch = req->data;
    cl *c = ch->c;
    const char *what = ch->what == 1 ? "add" : ch->what == 2 ? "promote" : "remove";
    /* libraft 0.15 fires the pending change's callback when any
     * configuration entry is applied (replication.c, applyChange takes
     * leader_state.change whatever the index): a new leader that commits an
     * older configuration entry reports its own change done while that is
     * still uncommitted. The callback runs inside the issuer's raft, so its
     * uncommitted index says which: not done yet — the harness neither
     * counts it nor stops a "removed" server that is still a voter (seed
     * 120384: the removed leader stopped for good, a voter for ever down). */
    if (status == 0 && ch->issuer != NULL && ch->issuer->raft != NULL &&
        ch->issuer->raft->configuration_uncommitted_index != 0) {
        cl_trace(c,
                 "membership change %s %" PRIu64 ": callback fired for an older configuration "
                 "entry (libraft 0.15), change at %" PRIu64 " still uncommitted",
                 what, ch->id, (uint64_t)ch->issuer->raft->configuration_uncommitted_index);
        c->change_busy = false;
        return;
    }
    cl_trace(c, "membership change %s %" PRIu64 ": %s", what, ch->id,
             status ? raft_strerror(status) : "done");
    if (status == 0)
        c->res->membership_changes++;
    if (status == 0 && ch->what == 1) {
        if (rlg_cl_at(&c->w, c->w.now + 20 * CL_MS, promote_ev, c, ch->id) != 0)
            cl_oom(c, NULL);
        return;
    }
    if (status == 0 && ch->what == 3) {
        cl_node *n = node_by_id(c, ch->id);
        if (n != NULL) {
            n->removed = true;
            /* stopped on a later event: this callback may be its own */
            if (rlg_cl_at(&c->w, c->w.now, removed_stop_ev, n, 0) != 0)
                cl_oom(c, NULL);
        }
    }
    c->change_busy = false;
}

static void membership_change(cl *c)
{
    cl_node *l = current_leader(c);
    if (c->change_busy || l == NULL)
        return;
    unsigned voters = voters_of(l->raft);
    if (voters <= c->o->nodes && c->nnodes < CL_MAX_NODES) {
        cl_node *n = &c->nodes[c->nnodes];
        memset(n, 0, sizeof *n);
        n->c = c;
        n->idx = c->nnodes;
        n->id = c->next_id++;
        snprintf(n->addr, sizeof n->addr, "sim://server%" PRIu64, n->id);
        if (node_init_disk(c, n) != 0) {
            cl_oom(c, NULL);
            return;
        }
        c->nnodes++;
        n->member = true;
        node_start(c, n, NULL, false);
        cl_change *ch = change_new(c, n->id, 1);
        if (ch == NULL)
            return;
        c->change_busy = true;
        ch->issuer = l;
        int rv = raft_add(l->raft, &ch->req, n->id, n->addr, change_cb);
        cl_trace(c, "server %" PRIu64 " asks to add %" PRIu64 ": %s", l->id, n->id,
                 rv ? raft_strerror(rv) : "ok");
        if (rv != 0)
            c->change_busy = false;
    } else if (voters > c->o->nodes) {
        /* remove a voter (maybe the leader itself) */
        const struct raft_configuration *cf = &l->raft->configuration;
        unsigned pick = (unsigned)rlog_sim_rng_below(&c->rng, cf->n);
        uint64_t id = cf->servers[pick].id;
        cl_change *ch = change_new(c, id, 3);
        if (ch == NULL)
            return;
        c->change_busy = true;
        ch->issuer = l;
        int rv = raft_remove(l->raft, &ch->req, id, change_cb);
        cl_trace(c, "server %" PRIu64 " asks to remove %" PRIu64 ": %s", l->id, id,
                 rv ? raft_strerror(rv) : "ok");
        if (rv != 0)
            c->change_busy = false;
    }
}

/* ------------------------------------------------------------ faults */

static cl_node *pick_live(cl *c)
{
    unsigned live[CL_MAX_NODES], k = 0;
    for (unsigned i = 0; i < c->nnodes; i++)
        if (node_live(&c->nodes[i]))
            live[k++] = i;
    return k ? &c->nodes[live[rlog_sim_rng_below(&c->rng, k)]] : NULL;
}

static void heal_ev(void *arg, uint64_t u)
{
    cl *c = arg;
    (void)u;
    if (!c->faulting)
        return;
    rlog_simnet_heal_all(c->net);
    cl_trace(c, "network heals");
}

/* Corruption on a minority, but not in seeds that change the membership:
 * a server that refuses to start stays down, and libraft 0.15 does not
 * vote while it is not a voter in its own configuration (election.c,
 * electionVote) — with a promotion in flight that the new server has not
 * heard of, the others need a vote it will never give (found: seed 1360
 * of the first 2000). */
static bool may_corrupt(const cl *c)
{
    return (c->o->faults & RLOG_SIM_CLUSTER_F_CORRUPT) && (!c->membership || c->o->raw_libraft);
}

static void kill_one(cl *c, cl_node *n, bool power)
{
    bool damage = power && n->bad && may_corrupt(c) && rlog_sim_rng_chance(&c->rng, 400000);
    node_kill(c, n, power ? AFTER_POWER : AFTER_CRASH, damage, true);
}

static void fault_ev(void *arg, uint64_t u)
{
    cl *c = arg;
    (void)u;
    if (c->stop || !c->faulting)
        return;
    unsigned f = c->o->faults;
    unsigned roll = (unsigned)rlog_sim_rng_below(&c->rng, 100);
    cl_node *n = pick_live(c);
    if (roll < 25 && (f & RLOG_SIM_CLUSTER_F_CRASH) && n != NULL) {
        kill_one(c, n, false);
    } else if (roll < 45 && (f & RLOG_SIM_CLUSTER_F_POWER) && n != NULL) {
        if (rlog_sim_rng_chance(&c->rng, 400000)) {
            /* several servers lose power at once (all of them, often) */
            bool all = rlog_sim_rng_chance(&c->rng, 500000);
            cl_trace(c, "power fails in %s servers", all ? "all" : "several");
            for (unsigned i = 0; i < c->nnodes; i++)
                if (node_live(&c->nodes[i]) && (all || rlog_sim_rng_chance(&c->rng, 600000)))
                    kill_one(c, &c->nodes[i], true);
        } else {
            kill_one(c, n, true);
        }
    } else if (roll < 65 && (f & RLOG_SIM_CLUSTER_F_PARTITION) && n != NULL) {
        c->res->partitions++;
        if (rlog_sim_rng_chance(&c->rng, 400000)) {
            rlog_simnet_isolate(c->net, n->id);
            cl_trace(c, "server %" PRIu64 " isolated", n->id);
        } else {
            cl_node *m = pick_live(c);
            if (m != NULL && m != n && rlog_sim_rng_chance(&c->rng, 500000)) {
                rlog_simnet_partition(c->net, n->id, m->id);
                cl_trace(c, "servers %" PRIu64 " and %" PRIu64 " cut apart", n->id, m->id);
            } else if (m != NULL && m != n) {
                rlog_simnet_partition_oneway(c->net, n->id, m->id);
                cl_trace(c, "messages from server %" PRIu64 " to server %" PRIu64 " are lost",
                         n->id, m->id);
            }
        }
        if (rlg_cl_at(&c->w, c->w.now + (100 + rlog_sim_rng_below(&c->rng, 1500)) * CL_MS, heal_ev,
                      c, 0) != 0)
            cl_oom(c, NULL);
    } else if (roll < 75 && (f & RLOG_SIM_CLUSTER_F_NET)) {
        c->net_faults_on = !c->net_faults_on;
        rlog_simnet_faults(c->net, (int)c->net_faults_on);
        cl_trace(c, "network faults %s", c->net_faults_on ? "on" : "off");
    } else if (roll < 85 && c->membership) {
        membership_change(c);
    } else if (roll >= 85 && n != NULL && n->bad && may_corrupt(c) &&
               !(c->o->bugs & RLOG_SIM_CLUSTER_BUG_ROT_UNPROVEN)) {
        node_damage(c, n, true); /* while it runs */
    }
    uint64_t next = (50 + rlog_sim_rng_below(&c->rng, 400)) * CL_MS;
    if (rlg_cl_at(&c->w, c->w.now + next, fault_ev, c, 0) != 0)
        cl_oom(c, NULL);
}

static void disk_faults(cl *c, bool on)
{
    for (unsigned i = 0; i < c->nnodes; i++) {
        cl_node *n = &c->nodes[i];
        if (!on) {
            rlog_simfs_clear_faults(n->fs);
            continue;
        }
        uint32_t ppm = 50 + (uint32_t)rlog_sim_rng_below(&c->rng, 400);
        static const rlog_vfs_op ops[] = {RLOG_OP_PWRITE, RLOG_OP_FDATASYNC, RLOG_OP_OPEN,
                                          RLOG_OP_PREAD,  RLOG_OP_SYNC_DIR,  RLOG_OP_ALLOCATE};
        for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
            rlog_simfs_set_fault(n->fs, RLOG_SIMFS_FAULT_EIO, ops[k], ppm);
        rlog_simfs_set_fault(n->fs, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_PWRITE, ppm);
        rlog_simfs_set_fault(n->fs, RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_OP_PWRITE, ppm);
        rlog_simfs_set_fault(n->fs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_FDATASYNC, ppm);
        /* no bit rot on reads: it would strike whatever is read, the
         * unproven tail too (see damage_proven); fault_ev rots proven
         * records of a running bad server instead */
        if (n->bad && may_corrupt(c)) {
            if (c->o->bugs & RLOG_SIM_CLUSTER_BUG_ROT_UNPROVEN)
                rlog_simfs_set_fault(n->fs, RLOG_SIMFS_FAULT_BITROT, RLOG_OP_PREAD, ppm / 4);
            rlog_simfs_set_fault(n->fs, RLOG_SIMFS_FAULT_LATENT, RLOG_OP_PREAD, ppm / 4);
        }
    }
}

/* ------------------------------------------------------------- run */

/* Runs the world until virtual time `until` or until done(c) holds. */
static void run_until(cl *c, uint64_t until, bool (*done)(cl *c))
{
    while (!c->stop && !c->w.nomem) {
        if (done != NULL && done(c))
            return;
        uint64_t tl = rlg_cl_next_at(&c->w), tn = rlog_simnet_next_ns(c->net);
        uint64_t t = tl < tn ? tl : tn;
        if (t > until) {
            if (until > c->w.now)
                rlog_simnet_advance(c->net, until - c->w.now);
            c->w.now = rlog_simnet_now_ns(c->net);
            return;
        }
        if (tn <= tl) {
            rlog_simnet_step(c->net);
            c->w.now = rlog_simnet_now_ns(c->net);
            continue;
        }
        if (tl > c->w.now)
            rlog_simnet_advance(c->net, tl - c->w.now);
        c->w.now = rlog_simnet_now_ns(c->net);
        cl_ev *ev = rlg_cl_pop(&c->w);
        rlg_cl_run_event(&c->w, ev);
        c->res->events++;
        check_event(c);
    }
}

static bool have_leader(cl *c)
{
    return current_leader(c) != NULL;
}

static bool write_after_heal(cl *c)
{
    for (size_t i = c->nops; i-- > 0;) {
        const cl_op *op = &c->ops[i];
        if (op->invoke < c->heal_at)
            break;
        if (op->kind == RLOG_SIM_CLUSTER_WRITE && op->outcome == 1)
            return true;
    }
    return false;
}

static bool clients_idle(cl *c)
{
    for (unsigned i = 0; i < c->o->clients; i++)
        if (c->clients[i].op != 0)
            return false;
    return true;
}

/* Every running voter of the leader's configuration applied up to
 * c->converge_to. */
static bool converged(cl *c)
{
    cl_node *l = current_leader(c);
    if (l == NULL)
        return false;
    const struct raft_configuration *cf = &l->raft->configuration;
    for (unsigned i = 0; i < cf->n; i++) {
        cl_node *n = node_by_id(c, cf->servers[i].id);
        if (cf->servers[i].role != RAFT_VOTER || n == NULL || n->refused)
            continue;
        if (!node_live(n) || raft_last_applied(n->raft) < c->converge_to)
            return false;
    }
    return true;
}

/* libraft 0.15 appends nothing when it becomes leader, and the adapter
 * keeps it from committing entries of older terms by counting replicas
 * (docs/simulator.md, "libraft 0.15" item 9): a leader whose log ends with
 * such entries commits them only with an entry of its own term. During the
 * run the clients' writes and reads bring one; once they have finished,
 * the harness has a leader that has not committed its whole log append a
 * barrier, once per term, as libraft >= 0.17.1 does whenever it becomes
 * leader (convertToLeader). Not with raw_libraft. */
static void quiet_barrier_cb(struct raft_barrier *req, int status)
{
    (void)status;
    free(req);
}

static bool converged_after_barrier(cl *c)
{
    cl_node *l = current_leader(c);
    if (l != NULL && !c->o->raw_libraft && l->quiet_barrier_term != l->raft->current_term &&
        l->raft->commit_index < raft_last_index(l->raft)) {
        l->quiet_barrier_term = l->raft->current_term;
        struct raft_barrier *req = calloc(1, sizeof *req);
        if (req == NULL)
            cl_oom(c, NULL);
        else if (raft_barrier(l->raft, req, quiet_barrier_cb) != 0)
            free(req);
        else
            cl_trace(c,
                     "server %" PRIu64 " appends a barrier in term %" PRIu64
                     " to commit entries %" PRIu64 "..%" PRIu64 " (libraft 0.15)",
                     l->id, (uint64_t)l->raft->current_term, (uint64_t)l->raft->commit_index + 1,
                     (uint64_t)raft_last_index(l->raft));
    }
    return converged(c);
}

static bool all_closed(cl *c)
{
    for (unsigned i = 0; i < c->nnodes; i++)
        if (c->nodes[i].running)
            return false;
    return true;
}

void rlog_sim_cluster_options_init(rlog_sim_cluster_options *o, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->seed = seed;
    o->nodes = 3;
    o->duration_ms = 4000;
    o->clients = 3;
    o->keys = 3;
    o->faults = RLOG_SIM_CLUSTER_F_ALL;
}

static void net_trace(void *data, const char *line)
{
    cl *c = data;
    char buf[1300];
    snprintf(buf, sizeof buf, "  net %s", line);
    c->o->trace(c->o->trace_data, buf);
}

static int cluster_setup(cl *c)
{
    const rlog_sim_cluster_options *o = c->o;
    rlog_sim_rng_init(&c->rng, o->seed, 1);
    rlog_sim_rng_init(&c->w.tie_rng, o->seed, 2);
    rlog_sim_rng_init(&c->w.lat_rng, o->seed, 3);
    /* a turn of a server's loop takes up to 0.2 .. 8 ms: the disk (a sync
     * is a posted turn) and the scheduler */
    c->w.post_max_ns = (200 + rlog_sim_rng_below(&c->rng, 8000)) * 1000u;
    /* work (a snapshot file written or read in the loop's pool) takes up
     * to 1 ms .. 1 s: a seed with slow snapshot files sees elections,
     * appends and crashes while an install is still being written */
    rlog_sim_rng_init(&c->w.work_rng, o->seed, 4);
    c->w.work_max_ns = (1 + rlog_sim_rng_below(&c->w.work_rng, 1000)) * 1000000u;
    c->keys = o->keys;
    c->builtin = (rlog_sim_cluster_fsm){
        .data = &c->keys, .make = kv_make, .destroy = kv_destroy, .read = kv_read};
    c->fsm = o->fsm != NULL ? o->fsm : &c->builtin;
    c->snapshot_threshold = 8 + rlog_sim_rng_below(&c->rng, 60);
    /* never 0: libraft passes its trailing to snapshot_put, where 0 means
     * "installed from the leader: the log restarts after the snapshot"
     * (raft_uv alike), which would drop the entries after a local one */
    c->snapshot_trailing = 1 + rlog_sim_rng_below(&c->rng, c->snapshot_threshold);
    c->pre_vote = rlog_sim_rng_chance(&c->rng, 500000);
    /* libraft 0.15 rolls an uncommitted configuration back to the last
     * committed configuration ENTRY of its in-memory log
     * (membership.c, membershipRollback: logGet(configuration_index)),
     * which compaction may have removed: a NULL dereference (fixed in
     * libraft 0.17.1, "membership: Ensure configuration rollback is
     * possible"). So a seed changes the membership or compacts its logs,
     * not both (unless raw_libraft). */
    c->membership =
        (o->faults & RLOG_SIM_CLUSTER_F_MEMBERSHIP) && rlog_sim_rng_chance(&c->rng, 300000);
    if (c->membership && !o->raw_libraft)
        c->snapshot_threshold = 1u << 30;

    rlog_simnet_config nc;
    rlog_simnet_config_init(&nc, cl_mix(o->seed ^ 0x4e7ull));
    nc.timeout_ns = 300 * CL_MS;
    nc.latency_min_ns = 50000;
    nc.latency_max_ns = 100000 + rlog_sim_rng_below(&c->rng, 3000000);
    if (o->faults & RLOG_SIM_CLUSTER_F_NET) {
        uint32_t ppm = (uint32_t)rlog_sim_rng_below(&c->rng, 30000);
        nc.rates = (rlog_simnet_rates){.drop_ppm = ppm,
                                       .dup_ppm = ppm,
                                       .reorder_ppm = ppm,
                                       .delay_ppm = ppm,
                                       .reset_ppm = ppm / 20,
                                       .delay_max_ns = 50 * CL_MS};
    }
    c->net = rlog_simnet_new(&nc);
    if (c->net == NULL)
        return RLOG_ENOMEM;
    rlog_simnet_faults(c->net, 0);
    if (o->trace)
        rlog_simnet_set_trace(c->net, net_trace, c);
    c->w.now = rlog_simnet_now_ns(c->net);

    c->nnodes = o->nodes;
    c->next_id = o->nodes + 1;
    c->nbad = (o->nodes - 1) / 2;
    unsigned first_bad = (unsigned)rlog_sim_rng_below(&c->rng, o->nodes);
    for (unsigned i = 0; i < o->nodes; i++) {
        cl_node *n = &c->nodes[i];
        n->c = c;
        n->idx = i;
        n->id = i + 1;
        n->member = true;
        n->bad = (i + o->nodes - first_bad) % o->nodes < c->nbad;
        snprintf(n->addr, sizeof n->addr, "sim://server%" PRIu64, n->id);
        if (node_init_disk(c, n) != 0)
            return RLOG_ENOMEM;
    }
    cl_trace(c,
             "seed %" PRIu64 " servers %u faults 0x%x bugs 0x%x snapshot threshold %" PRIu64
             " trailing %" PRIu64 " pre-vote %d membership %d",
             o->seed, o->nodes, o->faults, o->bugs, c->snapshot_threshold, c->snapshot_trailing,
             c->pre_vote, c->membership);
    return 0;
}

static void cluster_free(cl *c)
{
    for (unsigned i = 0; i < c->nnodes; i++) {
        cl_node *n = &c->nodes[i];
        if (n->running) /* the shutdown did not complete: drop it */
            node_free_incarnation(c, n);
        if (n->fs != NULL)
            n->fs->destroy(n->fs);
    }
    rlg_cl_world_free(&c->w);
    if (c->net != NULL)
        rlog_simnet_free(c->net);
    while (c->reqs != NULL) {
        cl_req *r = c->reqs;
        c->reqs = r->next;
        free(r);
    }
    while (c->changes != NULL) {
        cl_change *ch = c->changes;
        c->changes = ch->next;
        free(ch);
    }
    free(c->ops);
    free(c->slots);
    free(c->term_leader);
}

static void final_checks(cl *c, cl_node *l)
{
    /* durability: every acknowledged write sits at an index the final
     * leader applied, and that index holds its command (state machine
     * safety compared every server's command there) */
    for (size_t i = 0; i < c->nops && !c->stop; i++) {
        const cl_op *op = &c->ops[i];
        if (op->kind != RLOG_SIM_CLUSTER_WRITE || op->outcome != 1)
            continue;
        if (op->index == 0 || op->index > l->last_cmd)
            cl_fail(c,
                    "durability: write op %" PRIu64 " (key %u) was acknowledged but the final "
                    "leader %" PRIu64 " has not applied it (index %" PRIu64 ")",
                    op->id, op->key, l->id, op->index);
    }
    if (!c->stop)
        check_log_matching(c);
    if (!c->stop)
        check_history(c);
    c->res->commit_index = l->raft->commit_index;
}

/* The fault families' names: names[i] is the family of bit i. */
static const char *const cluster_fault_names[] = {"crash", "power",   "partition", "net",
                                                  "disk",  "corrupt", "membership"};
#define CLUSTER_FAULT_FAMILIES (sizeof cluster_fault_names / sizeof *cluster_fault_names)
_Static_assert(RLOG_SIM_CLUSTER_F_ALL == (1u << CLUSTER_FAULT_FAMILIES) - 1 &&
                   RLOG_SIM_CLUSTER_F_CRASH == 1u << 0 && RLOG_SIM_CLUSTER_F_POWER == 1u << 1 &&
                   RLOG_SIM_CLUSTER_F_PARTITION == 1u << 2 && RLOG_SIM_CLUSTER_F_NET == 1u << 3 &&
                   RLOG_SIM_CLUSTER_F_DISK == 1u << 4 && RLOG_SIM_CLUSTER_F_CORRUPT == 1u << 5 &&
                   RLOG_SIM_CLUSTER_F_MEMBERSHIP == 1u << 6,
               "one name per RLOG_SIM_CLUSTER_F_* bit, in bit order");

static const char *cluster_fault_name(unsigned i)
{
    return cluster_fault_names[i];
}

int rlog_sim_cluster_parse_faults(const char *list, unsigned *mask)
{
    uint64_t m = 0;
    int rv = rlg_sim_parse_names(list, cluster_fault_name, CLUSTER_FAULT_FAMILIES,
                                 RLOG_SIM_CLUSTER_F_ALL, &m);
    *mask = (unsigned)m;
    return rv;
}

void rlog_sim_cluster_result_add(rlog_sim_cluster_result *s, const rlog_sim_cluster_result *r)
{
    s->virtual_ms += r->virtual_ms;
    s->events += r->events;
    s->ops_ok += r->ops_ok;
    s->ops_failed += r->ops_failed;
    s->ops_unknown += r->ops_unknown;
    s->crashes += r->crashes;
    s->power_losses += r->power_losses;
    s->recovery_crashes += r->recovery_crashes;
    s->restarts += r->restarts;
    s->partitions += r->partitions;
    s->disk_faults += r->disk_faults;
    s->corruptions += r->corruptions;
    s->refused_starts += r->refused_starts;
    s->membership_changes += r->membership_changes;
    s->snapshots_taken += r->snapshots_taken;
    s->snapshots_installed += r->snapshots_installed;
    s->leaders += r->leaders;
    s->linearizability_unknown += r->linearizability_unknown;
}

int rlog_sim_cluster_run(const rlog_sim_cluster_options *o, rlog_sim_cluster_result *res)
{
    memset(res, 0, sizeof *res);
    if ((o->nodes != 3 && o->nodes != 5) || o->clients == 0 || o->clients > 8 || o->keys == 0)
        return RLOG_EINVAL;
    cl *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RLOG_ENOMEM;
    c->o = o;
    c->res = res;
    raft_heap_set(&g_zero_heap);
    int rv = cluster_setup(c);
    uint64_t t0 = c->w.now;
    if (rv == 0) {
        /* bootstrap every server with the same configuration */
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (unsigned i = 0; i < o->nodes; i++)
            if (raft_configuration_add(&conf, c->nodes[i].id, c->nodes[i].addr, RAFT_VOTER) != 0)
                cl_oom(c, NULL);
        for (unsigned i = 0; i < o->nodes && !c->stop; i++)
            node_start(c, &c->nodes[i], &conf, false);
        raft_configuration_close(&conf);
        run_until(c, c->w.now + 10000 * CL_MS, have_leader);
        if (!c->stop && !have_leader(c))
            cl_fail(c, "no leader elected after bootstrap within 10 s");
    }
    if (rv == 0 && !c->stop) {
        /* the fault phase */
        c->faulting = true;
        if (o->faults & RLOG_SIM_CLUSTER_F_DISK)
            disk_faults(c, true);
        for (unsigned i = 0; i < o->clients; i++) {
            c->clients[i].target = (unsigned)rlog_sim_rng_below(&c->rng, o->nodes);
            client_next(c, i, rlog_sim_rng_below(&c->rng, 10) * CL_MS);
        }
        if (rlg_cl_at(&c->w, c->w.now + (50 + rlog_sim_rng_below(&c->rng, 300)) * CL_MS, fault_ev,
                      c, 0) != 0)
            cl_oom(c, NULL);
        run_until(c, c->w.now + (uint64_t)o->duration_ms * CL_MS, NULL);

        /* the heal phase: faults stop, every server that may run does */
        c->faulting = false;
        c->heal_at = c->w.now;
        cl_trace(c, "faults stop");
        disk_faults(c, false);
        rlog_simnet_heal_all(c->net);
        rlog_simnet_faults(c->net, 0);
        for (unsigned i = 0; i < c->nnodes; i++) {
            cl_node *n = &c->nodes[i];
            rlog_simfs_enable_faults(n->fs, 0);
            if (!n->running)
                node_schedule_restart(c, n, 0);
        }
        uint64_t deadline = c->w.now + CL_LIVENESS;
        run_until(c, deadline, write_after_heal);
        if (!c->stop && !write_after_heal(c))
            cl_fail(c, "liveness: no write committed within %llu ms after the faults stopped",
                    (unsigned long long)(CL_LIVENESS / CL_MS));
        /* let the clients finish, then every running voter must catch up */
        c->quiet = true;
        run_until(c, c->w.now + 2 * CL_OP_TIMEOUT, clients_idle);
        run_until(c, c->w.now + CL_LIVENESS, have_leader);
        cl_node *l = current_leader(c);
        if (!c->stop && l != NULL) {
            c->converge_to = l->raft->commit_index;
            run_until(c, c->w.now + CL_LIVENESS, converged_after_barrier);
            l = current_leader(c);
            if (!c->stop && (l == NULL || !converged(c))) {
                char who[400] = "";
                size_t k = 0;
                for (unsigned i = 0; i < c->nnodes && k < sizeof who - 80; i++) {
                    cl_node *n = &c->nodes[i];
                    k += (size_t)snprintf(who + k, sizeof who - k, " s%" PRIu64 ":%s", n->id,
                                          !node_live(n)                        ? "down"
                                          : raft_state(n->raft) == RAFT_LEADER ? "leader"
                                                                               : "up");
                    if (node_live(n))
                        k += (size_t)snprintf(
                            who + k, sizeof who - k,
                            "/term %" PRIu64 "/applied %" PRIu64 "/commit %" PRIu64
                            "/last %" PRIu64,
                            (uint64_t)n->raft->current_term, (uint64_t)raft_last_applied(n->raft),
                            (uint64_t)n->raft->commit_index, (uint64_t)raft_last_index(n->raft));
                }
                cl_fail(c,
                        "liveness: the running voters did not all apply index %" PRIu64
                        " within %llu ms:%s",
                        c->converge_to, (unsigned long long)(CL_LIVENESS / CL_MS), who);
            }
        } else if (!c->stop) {
            cl_fail(c, "liveness: no leader after the clients finished");
        }
        if (!c->stop && l != NULL)
            final_checks(c, l);
    }
    /* shutdown: every running server closes cleanly */
    for (unsigned i = 0; i < c->nnodes; i++) {
        cl_node *n = &c->nodes[i];
        for (unsigned k = 0; k < o->clients; k++)
            ops_orphan(c, n);
        if (node_live(n))
            node_kill(c, n, AFTER_NONE, false, false);
    }
    bool was_stopped = c->stop;
    c->stop = false; /* the shutdown runs even after a failure */
    c->quiet = true;
    run_until(c, c->w.now + 60000 * CL_MS, all_closed);
    c->stop = was_stopped;
    if (c->w.nomem && rv == 0)
        rv = RLOG_ENOMEM;
    res->virtual_ms = (c->w.now - t0) / CL_MS;
    uint64_t h = c->hash ^ rlog_simnet_trace_hash(c->net);
    for (unsigned i = 0; i < c->nnodes; i++)
        h = cl_mix(h ^ rlog_simfs_trace_hash(c->nodes[i].fs));
    res->trace_hash = h;
    cl_trace(c, "end failed=%d hash=%016" PRIx64, res->failed, res->trace_hash);
    cluster_free(c);
    free(c);
    raft_heap_set_default();
    return rv;
}
