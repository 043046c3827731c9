/*
 * The shipping workload: a leader log served by rlog_ship_leader on the
 * simulated network (sim/simnet.c), 1..3 followers (rlog_ship_follower, each
 * on a simulated file system of its own) tailing it, crashes on every side,
 * network faults, and the shipping oracles (docs/simulator.md, "Shipping
 * scenarios").
 *
 * The model. Every append attempt gets a generation number `gen`; its
 * payload starts with gen (8 bytes, little-endian) and the rest is a
 * function of (seed, gen), its type too, so any record read anywhere names
 * the attempt that wrote it. Per LSN the model keeps the attempt the
 * leader's log holds now (`cur`) and the attempt the leader made durable
 * there (`dur`, 0: none yet). `dur` is set when the leader's durable
 * position passes the LSN, or when a recovery of the leader finds the
 * record (recovery makes everything it keeps durable); it survives the
 * deletion of the leader's prefix, since followers may keep older segments.
 *
 * The oracles:
 *  1. a follower never acknowledges (on_durable) more than it holds
 *     durably: after each of its crashes (process crash or power loss) its
 *     directory, opened read-only, ends at or after the last LSN it
 *     acknowledged (a reset from the leader's retained prefix, which really
 *     drops records, restarts the count);
 *  2. a follower never holds a record the leader did not make durable:
 *     every record it holds (read back after each crash, and parsed from its
 *     files at every check point) is the leader's durable attempt at that
 *     LSN. A follower told to truncate (a divergence) is a failure too: the
 *     leader never loses a durable record under the faults this workload
 *     injects, so a divergence means a follower got a record it should not;
 *  3. every sealed segment of a follower is byte-identical to the leader's
 *     file of the same name, unless the leader deleted it;
 *  4. convergence: at the end, with every fault off, partitions healed and
 *     no more crashes, every follower reaches the leader's durable LSN
 *     within a bounded number of rounds, its sealed segments identical and
 *     its active segment identical up to its end; then each loses power and
 *     recovers to at least what it acknowledged.
 *
 * Crashing a node: the process dies first (its file system refuses every
 * further call: rlog_simfs_halt_after(vfs, 0)), the network forgets its
 * endpoint without a goodbye (rlog_simnet_node_crash: its peers see a reset
 * after the timeout), its memory is freed, and then the file system's crash
 * event happens. The shipping objects own their transports, so they get a
 * thin wrapper (wtp) whose network endpoint can be crashed under them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "rlog/log.h"
#include "rlog/ship.h"
#include "rlog/transport.h"
#include "sim/driver.h" /* only this workload's entry point */
#include "sim/harness.h"

#define LDIR            "/db/log"
#define FROOT           "/f"
#define FDIR            "/f/log"
#define LADDR           "sim://leader"
#define LEADER_ID       1u
#define MAXF            3
#define MAX_BATCH       6
#define MIN_PAYLOAD     8u
#define MAX_PAYLOAD     3000u
#define IDLE_NS         5000000ull /* time moved when nothing is scheduled: 5 ms */
#define CHECK_EVERY     64u        /* steps between file checks of every follower */
#define CONVERGE_ROUNDS 200000u

/* ---- a transport whose network endpoint can die under its owner ---- */

typedef struct wtp {
    rlog_transport pub; /* what the shipping object owns */
    rlog_transport *in; /* the simulated network's endpoint; NULL once crashed */
} wtp;

static int wtp_ret(wtp *w, int rv)
{
    if (rv && w->in)
        memcpy(w->pub.errmsg, w->in->errmsg, sizeof w->pub.errmsg);
    return rv;
}

static int wtp_init(rlog_transport *t, const rlog_transport_config *cfg,
                    const rlog_transport_events *ev)
{
    wtp *w = t->impl;
    return w->in ? wtp_ret(w, w->in->init(w->in, cfg, ev)) : RLOG_ECLOSED;
}

static int wtp_listen(rlog_transport *t)
{
    wtp *w = t->impl;
    return w->in ? wtp_ret(w, w->in->listen(w->in)) : RLOG_ECLOSED;
}

static int wtp_connect(rlog_transport *t, uint64_t peer_id, const char *address)
{
    wtp *w = t->impl;
    return w->in ? wtp_ret(w, w->in->connect(w->in, peer_id, address)) : RLOG_ECLOSED;
}

static int wtp_disconnect(rlog_transport *t, uint64_t peer_id)
{
    wtp *w = t->impl;
    return w->in ? wtp_ret(w, w->in->disconnect(w->in, peer_id)) : RLOG_ECLOSED;
}

static int wtp_send(rlog_transport *t, uint64_t peer_id, const rlog_msg *msg,
                    rlog_transport_send_cb cb, void *data)
{
    wtp *w = t->impl;
    return w->in ? wtp_ret(w, w->in->send(w->in, peer_id, msg, cb, data)) : RLOG_ECLOSED;
}

static int wtp_poll(rlog_transport *t, int timeout_ms)
{
    wtp *w = t->impl; /* (w may be freed by a callback: not touched after) */
    return w->in ? w->in->poll(w->in, timeout_ms) : -RLOG_ECLOSED;
}

static int wtp_post(rlog_transport *t, void (*fn)(void *arg), void *arg)
{
    wtp *w = t->impl;
    return w->in ? wtp_ret(w, w->in->post(w->in, fn, arg)) : RLOG_ECLOSED;
}

static void wtp_close(rlog_transport *t)
{
    wtp *w = t->impl;
    if (w->in)
        w->in->close(w->in);
    free(w);
}

static wtp *wtp_new(rlog_simnet *net)
{
    wtp *w = calloc(1, sizeof *w);
    if (!w || rlog_simnet_transport_new(net, &w->in) != 0)
        rlg_sim_nomem();
    w->pub.version = 1;
    w->pub.impl = w;
    w->pub.init = wtp_init;
    w->pub.listen = wtp_listen;
    w->pub.connect = wtp_connect;
    w->pub.disconnect = wtp_disconnect;
    w->pub.send = wtp_send;
    w->pub.poll = wtp_poll;
    w->pub.post = wtp_post;
    w->pub.close = wtp_close;
    return w;
}

/* The endpoint vanishes (its peers see a reset after the timeout); the
 * wrapper stays, owned by the shipping object, until that is freed. */
static void wtp_crash(rlog_simnet *net, wtp *w)
{
    if (w && w->in) {
        rlog_simnet_node_crash(net, w->in);
        w->in = NULL;
    }
}

/* ---- the workload's state ---- */

typedef struct lrec {
    uint64_t cur; /* attempt the leader's log holds (or last tried) here */
    uint64_t dur; /* attempt the leader made durable here (0: none) */
} lrec;

typedef struct prefixed {
    rlog_sim_trace_fn fn;
    void *data;
    char prefix[8];
} prefixed;

typedef struct attempt {
    uint64_t lsn;    /* where the attempt was made */
    uint64_t digest; /* of its payload */
} attempt;

struct sw;

typedef struct fol {
    struct sw *w;
    unsigned idx;
    uint64_t id; /* server id */
    rlog_vfs *vfs;
    rlog_env *fenv;        /* its file system's env (used by read-only opens) */
    rlog_ship_follower *f; /* NULL while down */
    wtp *t;                /* its transport while up */
    uint64_t acked;        /* last LSN it acknowledged that still binds it */
    uint64_t seen_resets, seen_truncations, seen_bytes; /* this instance's counters */
    uint64_t counted_resets, counted_truncations;
    uint64_t down_until;      /* a crashed follower restarts at this step */
    bool dying;               /* its process dies inside the current polls */
    bool restart_due;         /* its disk failed it (state failed): restart it */
    int fail_error;           /* why (RLOG_EPOISONED: a failed sync) */
    bool lie;                 /* a double fault: its page cache may hold what its disk lost */
    uint64_t faults_at_start; /* failing faults of its disk when it started */
    prefixed tr;
} fol;

typedef struct sw {
    rlg_sim *s;
    rlog_simnet *net;
    rlog_env *nenv;
    /* the leader */
    rlog_log *log;
    rlog_options lopts;
    rlog_open_report rep;
    bool poisoned;
    rlog_ship_leader *ld;
    wtp *lt;
    rlog_ship_leader_options ldo;
    rlog_transport_config tc; /* address and server id set per node */
    /* the followers */
    unsigned nf;
    fol f[MAXF];
    rlog_ship_follower_options fo;
    /* the model */
    lrec *m; /* by LSN */
    size_t mcap;
    attempt *att; /* by gen */
    size_t gcap;
    uint64_t gen;
    uint64_t dur_mark; /* leader durable LSN already noted in m */
    uint32_t max_pay;
    bool net_faults; /* network faults allowed at all */
    bool fol_faults; /* followers' disks fail calls (benign faults) */
    bool leader_cut; /* the leader is isolated */
    bool converging; /* the final phase: no step loop restarts followers */
    rlog_simnet_rates rates;
    prefixed ntr;
    const rlg_sim_wl *vt;
    uint8_t buf[MAX_BATCH * MAX_PAYLOAD];
} sw;

static void prefixed_line(void *data, const char *line)
{
    prefixed *p = data;
    char out[1400];
    snprintf(out, sizeof out, "%s%s", p->prefix, line);
    p->fn(p->data, out);
}

/* ---- payloads: gen first, then a function of (seed, gen) ---- */

static uint32_t pay_len(const sw *w, uint64_t gen)
{
    uint64_t h = rlg_sim_mix(w->s->opts->seed * 131 + gen);
    unsigned r = (unsigned)(h % 100);
    h >>= 8;
    uint32_t span = r < 60 ? 57 : r < 90 ? 593 : w->max_pay - MIN_PAYLOAD + 1;
    return MIN_PAYLOAD + (uint32_t)(h % span);
}

static uint16_t pay_type(uint64_t gen)
{
    return (uint16_t)(RLOG_TYPE_USER_MIN + gen % 7);
}

static void pay_fill(const sw *w, uint64_t gen, uint8_t *p, uint32_t len)
{
    rlg_put64(p, gen);
    rlg_sim_fill8(rlg_sim_mix(w->s->opts->seed ^ (gen << 20)) | 1, p + 8, len - 8);
}

/* A 64-bit digest of a payload, 8 bytes a step (collisions between the
 * attempts of one run are not a concern). */
static uint64_t pay_digest(const uint8_t *p, uint32_t len)
{
    uint64_t h = len;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8)
        h = (h ^ rlg_get64(p + i)) * 0x9e3779b97f4a7c15ull;
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return rlg_sim_mix(h);
}

/* The attempt a record is (0: none made at that LSN). */
static uint64_t identify(sw *w, uint64_t lsn, uint16_t type, const void *data, uint32_t len)
{
    if (len < MIN_PAYLOAD)
        return 0;
    uint64_t gen = rlg_get64(data);
    if (!gen || gen > w->gen || w->att[gen].lsn != lsn || pay_len(w, gen) != len ||
        pay_type(gen) != type)
        return 0;
    return pay_digest(data, len) == w->att[gen].digest ? gen : 0;
}

static lrec *lrec_at(sw *w, uint64_t lsn)
{
    w->m = rlg_sim_grow(w->m, &w->mcap, lsn, sizeof *w->m);
    return &w->m[lsn];
}

/* ---- the leader ---- */

static bool leader_expected(sw *w, int rv)
{
    return rlg_sim_expected_error(w->s, rv, "a leader log call", &w->poisoned);
}

/* Marks what the leader's durable position now covers. */
static void note_durable(sw *w)
{
    if (!w->log)
        return;
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    for (uint64_t l = w->dur_mark + 1; l <= p.durable && !w->s->stop; l++) {
        lrec *r = lrec_at(w, l);
        if (!r->cur)
            rlg_sim_fail(w->s, "the leader reports LSN %" PRIu64 " durable, never appended", l);
        r->dur = r->cur;
    }
    if (p.durable > w->dur_mark)
        w->dur_mark = p.durable;
}

static void async_cb(void *data, int status, uint64_t first, uint64_t last)
{
    sw *w = data;
    if (status == RLOG_EPOISONED)
        w->poisoned = true;
    else if (status && status != RLOG_EIO && status != RLOG_ENOSPC && status != RLOG_ECLOSED)
        rlg_sim_fail(w->s, "leader async append failed with %s", rlog_errname(status));
    rlg_sim_trace(w->s, "  async done %" PRIu64 "..%" PRIu64 " -> %s", first, last,
                  rlog_errname(status));
}

/* How many of the next n attempts fit in one call (a call must fit in a
 * segment). */
static size_t batch_size(sw *w, size_t n)
{
    uint64_t room = RLG_SEG_ROOM(w->lopts.segment_size);
    uint64_t bytes = 0;
    size_t k = 0;
    while (k < n && bytes + RLG_REC_HEADER_SIZE + pay_len(w, w->gen + k + 1) <= room)
        bytes += RLG_REC_HEADER_SIZE + pay_len(w, w->gen + ++k);
    return k ? k : 1;
}

static void op_append(sw *w, bool async)
{
    rlg_sim *s = w->s;
    size_t n = batch_size(w, 1 + (size_t)rlog_sim_rng_below(&s->rng, MAX_BATCH));
    rlog_record recs[MAX_BATCH];
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t gen = ++w->gen, lsn = p.appended + 1 + i;
        uint32_t len = pay_len(w, gen);
        pay_fill(w, gen, w->buf + off, len);
        recs[i] = (rlog_record){.type = pay_type(gen), .len = len, .data = w->buf + off};
        off += len;
        w->att = rlg_sim_grow(w->att, &w->gcap, gen, sizeof *w->att);
        w->att[gen] = (attempt){lsn, pay_digest(w->buf + off - len, len)};
        lrec_at(w, lsn)->cur = gen;
    }
    uint64_t first = 0;
    int rv = async ? rlog_append_async(w->log, recs, n, async_cb, w, &first)
                   : rlog_append(w->log, recs, n, &first);
    s->res->appends++;
    rlg_sim_trace(s, "leader append%s n=%zu -> %s lsn=%" PRIu64, async ? "_async" : "", n,
                  rlog_errname(rv), first);
    if (rv == 0 && first != p.appended + 1)
        rlg_sim_fail(s, "leader append got LSN %" PRIu64 ", expected %" PRIu64, first,
                     p.appended + 1);
    else if (rv && !leader_expected(w, rv))
        rlg_sim_fail(s, "leader append failed with %s: %s", rlog_errname(rv), rlog_errmsg(w->log));
}

static void leader_call(sw *w, const char *what, int rv)
{
    rlg_sim_trace(w->s, "leader %s -> %s", what, rlog_errname(rv));
    if (rv && !leader_expected(w, rv))
        rlg_sim_fail(w->s, "leader %s failed with %s: %s", what, rlog_errname(rv),
                     rlog_errmsg(w->log));
}

/* Deletes a prefix: mostly up to what every running follower holds (as a
 * system that keeps its followers' needs would), else anywhere up to just
 * past the durable LSN (followers behind it must start over). */
static void op_delete(sw *w)
{
    rlog_positions p;
    rlog_positions_get(w->log, &p);
    uint64_t target = p.first + rlog_sim_rng_below(&w->s->rng, p.durable - p.first + 2);
    if (rlog_sim_rng_chance(&w->s->rng, 600000)) {
        uint64_t low = p.durable + 1;
        for (unsigned i = 0; i < w->nf; i++) {
            rlog_ship_follower_status st;
            if (w->f[i].f) {
                rlog_ship_follower_status_get(w->f[i].f, &st);
                if (st.durable + 1 < low)
                    low = st.durable + 1;
            }
        }
        target = low < p.first ? p.first : low;
    }
    uint64_t deleted = 0;
    int rv = rlog_delete_prefix(w->log, target, &deleted);
    rlg_sim_trace(w->s, "leader delete_prefix %" PRIu64 " -> deleted=%" PRIu64, target, deleted);
    leader_call(w, "delete_prefix", rv);
}

/* One operation on the leader's log. */
static void leader_op(sw *w)
{
    unsigned r = (unsigned)rlog_sim_rng_below(&w->s->rng, 100);
    int more = 0;
    if (r < 45)
        op_append(w, false);
    else if (r < 68)
        op_append(w, true);
    else if (r < 81)
        leader_call(w, "step", rlog_step(w->log, &more));
    else if (r < 92)
        leader_call(w, "sync", rlog_sync(w->log));
    else if (r < 97)
        leader_call(w, "rotate", rlog_rotate(w->log));
    else
        op_delete(w);
    note_durable(w);
}

/* After an open: the recovered log is durable as a whole. Every record must
 * be an attempt made at its LSN, and (unless a fault destroyed data) every
 * record the leader had made durable must still be there, unchanged. */
static void leader_adopt(sw *w)
{
    rlg_sim *s = w->s;
    uint64_t first = w->rep.first_lsn, last = w->rep.last_lsn, lsn = first;
    rlg_sim_note_faults(s);
    if (w->rep.status == RLOG_TAIL_TORN)
        s->res->torn_cut++;
    rlog_iter *it;
    if (rlog_iter_open(w->log, first, 0, &it)) {
        rlg_sim_fail(s, "cannot open an iterator on the recovered leader log");
        return;
    }
    rlog_record rec;
    int rv;
    while ((rv = rlog_iter_next(it, &rec)) == 0 && !s->stop) {
        uint64_t g = identify(w, lsn, rec.type, rec.data, rec.len);
        lrec *m = lrec_at(w, lsn);
        if (!g || rec.lsn != lsn)
            rlg_sim_fail(s,
                         "the recovered leader log holds at LSN %" PRIu64
                         " %u bytes never appended there",
                         lsn, rec.len);
        else if (m->dur && m->dur != g && !s->destructive)
            rlg_sim_fail(s,
                         "leader durable LSN %" PRIu64 " changed from attempt %" PRIu64
                         " to %" PRIu64 " across a crash",
                         lsn, m->dur, g);
        m->cur = m->dur = g;
        lsn++;
    }
    rlog_iter_close(it);
    if (!s->stop && (rv != RLOG_EEND || lsn != last + 1))
        rlg_sim_fail(
            s, "reading the recovered leader log stopped at LSN %" PRIu64 " of %" PRIu64 ": %s",
            lsn, last, rlog_errname(rv));
    for (uint64_t l = last + 1; l < w->mcap && !s->stop; l++) {
        if (w->m[l].dur && !s->destructive)
            rlg_sim_fail(s, "leader durable LSN %" PRIu64 " lost: the log ends at %" PRIu64 " (%s)",
                         l, last, w->rep.message);
        w->m[l].cur = w->m[l].dur = 0;
    }
    w->dur_mark = last;
    rlg_sim_trace(s, "leader recovered LSN %" PRIu64 "..%" PRIu64, first, last);
}

static int leader_open(void *vw, char *msg, size_t cap)
{
    sw *w = vw;
    int rv = rlog_open(LDIR, &w->lopts, &w->log, &w->rep);
    snprintf(msg, cap, "%s", w->rep.message);
    return rv;
}

static void leader_recovered(void *vw)
{
    leader_adopt(vw);
}

/* The leader's shipping side stops: as a crash (endpoint gone silently) or
 * gracefully (followers see a disconnect). */
static void leader_ship_stop(sw *w, bool crash)
{
    if (!w->ld)
        return;
    if (crash)
        wtp_crash(w->net, w->lt);
    rlog_ship_leader_free(w->ld);
    w->ld = NULL;
    w->lt = NULL;
}

static void leader_drop(void *vw)
{
    sw *w = vw;
    leader_ship_stop(w, true);
    if (w->log) {
        rlog_abandon(w->log, NULL);
        w->log = NULL;
    }
    w->poisoned = false;
}

static bool leader_poisoned(void *vw)
{
    return ((sw *)vw)->poisoned;
}

static void leader_nop(void *vw)
{
    (void)vw;
}

static bool leader_ship_start(sw *w)
{
    w->lt = wtp_new(w->net);
    rlog_transport_config tc = w->tc;
    tc.server_id = LEADER_ID;
    tc.address = LADDR;
    rlog_simfs_enable_faults(w->s->vfs, 0); /* (a failed start is not under test) */
    int rv = rlog_ship_leader_new(w->log, &w->lt->pub, &tc, &w->ldo, &w->ld);
    rlog_simfs_enable_faults(w->s->vfs, 1);
    rlg_sim_trace(w->s, "leader ship start -> %s", rlog_errname(rv));
    if (rv) {
        w->ld = NULL;
        w->lt = NULL;
        rlg_sim_fail(w->s, "the shipping leader could not start: %s", rlog_errname(rv));
        return false;
    }
    if (w->leader_cut)
        rlog_simnet_isolate(w->net, LEADER_ID);
    return true;
}

/* Reopens the leader's log as a new process would, then its shipping side
 * on the same address. False when the seed ends. */
static bool leader_restart(sw *w)
{
    if (!rlg_sim_reopen(w->s, w->vt))
        return false;
    return leader_ship_start(w);
}

/* The leader's process dies (mid-operation when mid_op), then a crash event
 * of its file system, then a restart. */
static bool leader_crash(sw *w, bool power, bool mid_op)
{
    rlg_sim *s = w->s;
    if (mid_op && w->log) {
        uint64_t calls = 1 + rlog_sim_rng_below(&s->rng, 16);
        rlg_sim_trace(s, "the leader will die after %" PRIu64 " more calls", calls);
        s->dying = true;
        s->op_faults = rlg_sim_fault_total(s);
        rlog_simfs_halt_after(s->vfs, calls);
        leader_op(w);
        s->res->mid_op_crashes++;
    }
    rlog_simfs_halt_after(s->vfs, 0); /* dead: nothing it still does happens */
    leader_ship_stop(w, true);
    rlg_sim_crash(s, w->vt, power);
    s->res->ship_leader_crashes++;
    return !s->stop && leader_restart(w);
}

/* Clean restart: the shipping side closes, the log closes, both reopen. */
static bool leader_clean_restart(sw *w)
{
    leader_ship_stop(w, false);
    int rv = rlog_close(w->log);
    w->log = NULL;
    rlg_sim_trace(w->s, "leader close -> %s", rlog_errname(rv));
    if (rv && !leader_expected(w, rv))
        rlg_sim_fail(w->s, "leader close failed with %s", rlog_errname(rv));
    w->poisoned = false;
    return !w->s->stop && leader_restart(w);
}

/* ---- followers ---- */

/* Oracle 2 for one record a follower holds. */
static void check_held(sw *w, fol *f, uint64_t lsn, uint16_t type, const void *data, uint32_t len,
                       const char *where)
{
    if (w->s->destructive || w->s->stop)
        return; /* the leader itself may have lost durable records */
    uint64_t dur = lsn < w->mcap ? w->m[lsn].dur : 0;
    if (!dur)
        rlg_sim_fail(w->s,
                     "follower %u holds LSN %" PRIu64 " (%s), which the leader never made"
                     " durable (leader durable %" PRIu64 ")",
                     f->idx, lsn, where, w->dur_mark);
    else if (identify(w, lsn, type, data, len) != dur)
        rlg_sim_fail(w->s,
                     "follower %u holds at LSN %" PRIu64 " (%s) a record that is not the"
                     " leader's durable one (attempt %" PRIu64 ", %u bytes, type %u)",
                     f->idx, lsn, where, dur, len, type);
}

static void on_durable(void *data, uint64_t lsn)
{
    fol *f = data;
    sw *w = f->w;
    rlog_ship_follower_status st; /* (a reset earlier in this poll: counted, it binds no more) */
    rlog_ship_follower_status_get(f->f, &st);
    f->seen_resets = st.resets;
    f->seen_truncations = st.truncations;
    if (w->s->opts->sabotage & RLOG_SIM_SABOTAGE_EARLY_ACK)
        lsn++; /* test hook: the oracle must catch it */
    if (lsn > f->acked)
        w->s->res->acked += lsn - f->acked;
    f->acked = lsn;
}

static const char *fstate(fol *f, rlog_ship_follower_status *st)
{
    rlog_ship_follower_status_get(f->f, st);
    return rlog_ship_state_name(st->state);
}

/* Injected faults that make a call of a follower's disk fail, so far. */
static uint64_t fol_fault_total(const fol *f)
{
    static const rlog_simfs_fault failing[] = {RLOG_SIMFS_FAULT_EIO, RLOG_SIMFS_FAULT_ENOSPC,
                                               RLOG_SIMFS_FAULT_SYNC_DROP,
                                               RLOG_SIMFS_FAULT_SHORT_WRITE};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof failing / sizeof *failing; i++)
        n += rlog_simfs_faults(f->vfs, failing[i]);
    return n;
}

/* After a follower's poll: its counters; a reset really drops records, so
 * what it acknowledged before no longer binds it. */
static void fol_after_poll(sw *w, fol *f, int rv)
{
    rlog_ship_follower_status st;
    const char *state = fstate(f, &st);
    if (st.bytes_received > f->seen_bytes) {
        w->s->res->ship_bytes += st.bytes_received - f->seen_bytes;
        f->seen_bytes = st.bytes_received;
    }
    if (st.resets != f->seen_resets) {
        /* what it acknowledged before is gone for good (and the follower
         * reports again only past its old high-water mark) */
        rlg_sim_trace(w->s, "follower %u reset: %s", f->idx, st.message);
        f->seen_resets = st.resets;
        f->acked = 0;
    }
    if (st.truncations != f->seen_truncations) {
        rlg_sim_trace(w->s, "follower %u truncated: %s", f->idx, st.message);
        f->seen_truncations = st.truncations;
        f->acked = 0;
    }
    if (st.resets > f->counted_resets) {
        w->s->res->ship_resets += st.resets - f->counted_resets;
        f->counted_resets = st.resets;
    }
    if (st.truncations > f->counted_truncations) {
        f->counted_truncations = st.truncations;
        rlg_sim_note_faults(w->s);
        if (!w->s->destructive)
            rlg_sim_fail(w->s,
                         "follower %u was told to truncate (a divergence), yet the leader"
                         " never lost a durable record: %s",
                         f->idx, st.message);
    }
    if (f->dying) /* its disk is gone: whatever it does now is moot, but its disk is checked */
        return;
    if (rv || st.state == RLOG_SHIP_FAILED) {
        /* its own disk failed it: allowed only after an injected fault; the
         * owner then frees it and opens it again */
        int e = rv ? rv : st.error;
        if ((e != RLOG_EIO && e != RLOG_ENOSPC && e != RLOG_EPOISONED) ||
            fol_fault_total(f) == f->faults_at_start)
            rlg_sim_fail(w->s,
                         "follower %u poll failed with %s (state %s, no disk fault"
                         " explains it): %s",
                         f->idx, rlog_errname(e), state, rlog_ship_follower_errmsg(f->f));
        else if (!f->restart_due) {
            rlg_sim_trace(w->s, "follower %u failed (%s): %s", f->idx, rlog_errname(e), st.message);
            f->restart_due = true;
            f->fail_error = e;
        }
    } else if (st.state == RLOG_SHIP_REFUSED)
        rlg_sim_fail(w->s, "follower %u was refused: %s", f->idx, st.message);
}

static void fol_crash(sw *w, fol *f, bool power, bool mid_op);
static void fol_start(sw *w, fol *f);

/* Polls every node once, then moves the network one event on. A follower
 * its disk failed is restarted (as a process crash) after the polls. */
static void pump(sw *w, unsigned rounds)
{
    for (unsigned r = 0; r < rounds && !w->s->stop; r++) {
        note_durable(w);
        if (w->ld) {
            int rv = rlog_ship_leader_poll(w->ld, 0);
            if (rv)
                rlg_sim_fail(w->s, "leader poll failed with %s: %s", rlog_errname(rv),
                             rlog_ship_leader_errmsg(w->ld));
        }
        for (unsigned i = 0; i < w->nf && !w->s->stop; i++)
            if (w->f[i].f)
                fol_after_poll(w, &w->f[i], rlog_ship_follower_poll(w->f[i].f, 0));
        for (unsigned i = 0; i < w->nf && !w->s->stop; i++)
            if (w->f[i].restart_due && !w->f[i].dying) {
                fol_crash(w, &w->f[i], false, false);
                w->f[i].down_until = w->s->step;
                if (w->converging && !w->s->stop)
                    fol_start(w, &w->f[i]);
            }
        if (rlog_simnet_step(w->net) == 0)
            rlog_simnet_advance(w->net, IDLE_NS);
    }
}

static void fol_start(sw *w, fol *f)
{
    f->t = wtp_new(w->net);
    rlog_transport_config tc = w->tc;
    tc.server_id = f->id;
    tc.address = "";
    rlog_ship_follower_options fo = w->fo;
    fo.vfs = f->vfs;
    fo.on_durable = on_durable;
    fo.data = f;
    uint64_t before = fol_fault_total(f);
    int rv = rlog_ship_follower_new(FDIR, &f->t->pub, &tc, LADDR, &fo, &f->f);
    w->s->res->recoveries++;
    rlg_sim_trace(w->s, "follower %u start -> %s", f->idx, rlog_errname(rv));
    f->restart_due = false;
    f->faults_at_start = fol_fault_total(f);
    if (rv) {
        f->f = NULL;
        f->t = NULL;
        if ((rv == RLOG_EIO || rv == RLOG_ENOSPC) && f->faults_at_start != before) {
            rlog_simfs_crash(f->vfs); /* (the process gives up; a new one tries later) */
            f->down_until = w->s->step + 1;
            return;
        }
        rlg_sim_fail(w->s, "follower %u could not restart on its directory: %s", f->idx,
                     rlog_errname(rv));
        return;
    }
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(f->f, &st);
    f->seen_resets = f->counted_resets = st.resets;
    f->seen_truncations = f->counted_truncations = st.truncations;
    f->seen_bytes = st.bytes_received;
}

/* Oracles 1 and 2 on a follower's directory as it is on its disk now (after
 * a crash event, before it restarts): opened read-only, it must end at or
 * after what the follower acknowledged, and hold only the leader's durable
 * records. */
static void check_fol_dir(sw *w, fol *f, const char *after)
{
    rlog_options o;
    rlog_options_init(&o);
    o.vfs = f->vfs;
    o.env = f->fenv;
    o.segment_size = w->lopts.segment_size;
    o.max_record = w->lopts.max_record;
    o.flags = RLOG_OPEN_READONLY;
    rlog_log *l = NULL;
    rlog_open_report rep;
    rlog_simfs_enable_faults(f->vfs, 0); /* (the oracle's reads are not under test) */
    int rv = rlog_open(FDIR, &o, &l, &rep);
    rlg_sim_trace(w->s, "follower %u read-only open -> %s: %s", f->idx, rlog_errname(rv),
                  rep.message);
    if (rv == RLOG_ENOTLOG) {
        if (f->acked && !f->lie)
            rlg_sim_fail(w->s,
                         "follower %u acknowledged LSN %" PRIu64 " durable, but after a %s"
                         " its directory holds no log",
                         f->idx, f->acked, after);
        rlog_simfs_enable_faults(f->vfs, 1);
        return;
    }
    if (rv) {
        rlg_sim_fail(w->s, "follower %u's directory does not open after a %s: %s: %s", f->idx,
                     after, rlog_errname(rv), rep.message);
        rlog_simfs_enable_faults(f->vfs, 1);
        return;
    }
    if (rep.last_lsn < f->acked && !f->lie)
        rlg_sim_fail(w->s,
                     "follower %u acknowledged LSN %" PRIu64 " durable, but after a %s its"
                     " directory ends at LSN %" PRIu64 " (%s)",
                     f->idx, f->acked, after, rep.last_lsn, rep.message);
    rlog_iter *it;
    if (!w->s->stop && rlog_iter_open(l, rep.first_lsn, 0, &it) == 0) {
        rlog_record rec;
        uint64_t lsn = rep.first_lsn;
        while (!w->s->stop && (rv = rlog_iter_next(it, &rec)) == 0) {
            check_held(w, f, rec.lsn, rec.type, rec.data, rec.len, "recovered");
            lsn = rec.lsn + 1;
        }
        if (!w->s->stop && (rv != RLOG_EEND || lsn != rep.last_lsn + 1))
            rlg_sim_fail(w->s,
                         "reading follower %u's recovered log stopped at LSN %" PRIu64
                         " of %" PRIu64 ": %s",
                         f->idx, lsn, rep.last_lsn, rlog_errname(rv));
        rlog_iter_close(it);
    }
    rlog_close(l);
    rlog_simfs_enable_faults(f->vfs, 1);
}

/* A follower's process dies (inside its work when mid_op), its endpoint
 * vanishes, its file system crashes; the oracles look at what is left. */
static void fol_crash(sw *w, fol *f, bool power, bool mid_op)
{
    rlg_sim *s = w->s;
    if (mid_op) {
        uint64_t calls = 1 + rlog_sim_rng_below(&s->rng, 40);
        rlg_sim_trace(s, "follower %u will die after %" PRIu64 " more calls", f->idx, calls);
        f->dying = true;
        rlog_simfs_halt_after(f->vfs, calls);
        pump(w, 1 + (unsigned)rlog_sim_rng_below(&s->rng, 12));
        s->res->mid_op_crashes++;
    }
    void *mk = NULL;
    size_t mkl = 0;
    if (!f->dying && f->restart_due && f->fail_error == RLOG_EPOISONED &&
        (rlog_simfs_read(f->vfs, FDIR "/rlog.unsynced", 0, &mk, &mkl) || mkl != 20)) {
        /* a sync failed and even the marker that warns of it could not be
         * written (docs/durability.md): the page cache may show records its
         * disk never got, and a restart may acknowledge them */
        f->lie = true;
        rlg_sim_trace(s, "follower %u: sync failed and no unsynced marker was written", f->idx);
    }
    rlog_free(mk);
    rlog_simfs_halt_after(f->vfs, 0);
    wtp_crash(w->net, f->t);
    rlog_ship_follower_free(f->f);
    f->f = NULL;
    f->t = NULL;
    f->dying = false;
    f->restart_due = false;
    if (power)
        rlog_simfs_power_loss(f->vfs);
    else
        rlog_simfs_crash(f->vfs);
    s->res->crashes++;
    s->res->power_losses += power;
    s->res->ship_follower_crashes++;
    rlg_sim_trace(s, "follower %u %s", f->idx, power ? "POWER LOSS" : "PROCESS CRASH");
    if (f->lie && power) { /* the disk's truth again: what it said before binds no more */
        f->lie = false;
        f->acked = 0;
    }
    check_fol_dir(w, f, power ? "power loss" : "process crash");
    f->down_until = s->step + rlog_sim_rng_below(&s->rng, 30);
}

/* ---- file-level checks (rlog_simfs_read: not counted, not traced) ---- */

typedef struct segview {
    uint8_t *d;
    size_t len;
    rlg_seg_header h;
    bool ok;           /* a valid header */
    bool sealed;       /* its records end with a seal */
    uint64_t end;      /* just past its last valid record */
    uint64_t last_lsn; /* of its last user record (0: none) */
} segview;

/* Reads and walks a segment file's bytes; when w and f are given, checks
 * every user record against the leader's durable ones (oracle 2). */
static int seg_load(rlog_vfs *vfs, const char *path, int durable, segview *v)
{
    memset(v, 0, sizeof *v);
    int e = rlog_simfs_read(vfs, path, durable, (void **)&v->d, &v->len);
    if (e)
        return e;
    v->ok = v->len >= RLG_SEG_HEADER_SIZE && rlg_seg_header_decode(v->d, &v->h) == RLG_HDR_OK;
    v->end = RLG_SEG_HEADER_SIZE;
    return 0;
}

static void seg_walk(sw *w, fol *f, segview *v, const char *name)
{
    if (!v->ok)
        return;
    uint32_t salt = rlg_salt_state(v->h.log_id, v->h.seq);
    rlg_rec_header rh;
    for (uint64_t o = RLG_SEG_HEADER_SIZE;
         !w->s->stop && rlg_seg_next(v->d, v->len, salt, &o, &rh);) {
        v->end = o;
        if (rh.type >= RLOG_TYPE_USER_MIN) {
            v->last_lsn = rh.lsn;
            if (f)
                check_held(w, f, rh.lsn, rh.type, v->d + o - rh.len, rh.len, name);
        }
        if (rh.type == RLG_TYPE_SEAL) {
            v->sealed = true;
            break;
        }
    }
}

static uint64_t first_diff(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, size_t n)
{
    size_t m = n < al ? n : al;
    m = m < bl ? m : bl;
    return rlg_seg_diff(a, b, m);
}

static bool same_bytes(const segview *l, const uint8_t *d, size_t len, size_t n, bool size_too)
{
    if (size_too ? l->len != len : l->len < n)
        return false;
    return rlg_seg_diff(l->d, d, n) == n;
}

/* Compares a follower's segment bytes d[0, len) with the leader's file of
 * the same name: their first n bytes (the header's flags aside: see
 * rlg_seg_diff), and with `size_too` their sizes. (Past a seal the two may
 * differ: a leader's recycled file holds stale bytes there.) The leader's durable bytes are the
 * reference; its page cache is accepted too (after a dropped sync the two differ, and the leader's
 * log, which reads the page cache, cannot tell). 0: same; 1: different (*off: first difference,
 * *llen: the leader's size); -1: the leader deleted it. */
static int leader_cmp(sw *w, const char *name, const uint8_t *d, size_t len, size_t n,
                      bool size_too, uint64_t *off, size_t *llen)
{
    char path[128];
    snprintf(path, sizeof path, LDIR "/%s", name);
    segview vol, dur;
    if (seg_load(w->s->vfs, path, 0, &vol))
        return -1; /* not in what the leader sees: deleted */
    bool has_dur = seg_load(w->s->vfs, path, 1, &dur) == 0;
    int rc =
        same_bytes(&vol, d, len, n, size_too) || (has_dur && same_bytes(&dur, d, len, n, size_too))
            ? 0
            : 1;
    const segview *ref = has_dur ? &dur : &vol;
    if (rc) {
        *off = first_diff(d, len, ref->d, ref->len, n);
        *llen = ref->len;
    }
    rlog_free(vol.d);
    if (has_dur)
        rlog_free(dur.d);
    return rc;
}

/* Oracles 2 and 3 over one view of a follower's files: what reads see now
 * (durable = 0) or what a power loss that keeps nothing unsynced leaves
 * (durable = 1). With `final` (the volatile view, once converged), also
 * oracle 4's match: every unsealed segment equals the leader's file up to
 * its end, and the files hold the leader's durable LSN. */
static void check_fol_view(sw *w, fol *f, int durable, bool final)
{
    char **paths = NULL;
    size_t n = 0;
    if (rlog_simfs_list_files(f->vfs, durable, &paths, &n))
        rlg_sim_nomem();
    const char *view = durable ? "durable" : "as read";
    uint64_t last = 0;
    for (size_t i = 0; i < n && !w->s->stop; i++) {
        const char *name = strrchr(paths[i], '/') + 1;
        uint64_t seq;
        if (strncmp(paths[i], FDIR "/", sizeof FDIR) || !rlg_seg_parse_name(name, &seq))
            continue;
        segview v;
        uint64_t off = 0;
        size_t llen = 0;
        if (seg_load(f->vfs, paths[i], durable, &v))
            continue;
        seg_walk(w, f, &v, durable ? "durable file" : "file");
        if (v.last_lsn > last)
            last = v.last_lsn;
        if (v.ok && v.sealed && !w->s->stop &&
            leader_cmp(w, name, v.d, v.len, v.end, true, &off, &llen) > 0)
            rlg_sim_fail(w->s,
                         "follower %u's sealed segment %s (%s) differs from the leader's at"
                         " offset %" PRIu64 " (follower %zu bytes, leader %zu)",
                         f->idx, name, view, off, v.len, llen);
        if (final && v.ok && !v.sealed && !w->s->stop) {
            int rc = leader_cmp(w, name, v.d, v.len, v.end, false, &off, &llen);
            if (rc < 0)
                rlg_sim_fail(w->s, "follower %u's active segment %s is not on the leader", f->idx,
                             name);
            else if (rc > 0)
                rlg_sim_fail(w->s,
                             "follower %u's active segment %s differs from the leader's at"
                             " offset %" PRIu64 " (its end %" PRIu64 ")",
                             f->idx, name, off, v.end);
        }
        rlog_free(v.d);
    }
    rlog_vfs_free_names(paths, n);
    if (final && !w->s->stop && last != w->dur_mark)
        rlg_sim_fail(w->s,
                     "follower %u's files end at LSN %" PRIu64 ", the leader's durable LSN"
                     " is %" PRIu64,
                     f->idx, last, w->dur_mark);
}

static void check_fol_files(sw *w, fol *f, bool final)
{
    check_fol_view(w, f, 0, final);
    check_fol_view(w, f, 1, false);
}

static void check_all_files(sw *w)
{
    for (unsigned i = 0; i < w->nf && !w->s->stop; i++)
        check_fol_files(w, &w->f[i], false);
}

/* ---- the network ---- */

static void net_op(sw *w)
{
    rlg_sim *s = w->s;
    fol *f = &w->f[rlog_sim_rng_below(&s->rng, w->nf)];
    unsigned r = (unsigned)rlog_sim_rng_below(&s->rng, 100);
    if (r < 25) {
        rlog_simnet_partition(w->net, LEADER_ID, f->id);
        rlg_sim_trace(s, "net partition leader | follower %u", f->idx);
    } else if (r < 50) {
        rlog_simnet_heal(w->net, LEADER_ID, f->id);
        rlg_sim_trace(s, "net heal leader | follower %u", f->idx);
        if (w->leader_cut)
            rlog_simnet_isolate(w->net, LEADER_ID); /* (an isolation stays) */
    } else if (r < 55) {
        rlog_simnet_isolate(w->net, LEADER_ID);
        w->leader_cut = true;
        rlg_sim_trace(s, "net isolate the leader");
    } else if (r < 62) {
        rlog_simnet_heal_all(w->net);
        w->leader_cut = false;
        rlg_sim_trace(s, "net heal all");
    } else if (r < 75) {
        bool slow = rlog_sim_rng_chance(&s->rng, 600000);
        uint32_t mult = slow ? 2 + (uint32_t)rlog_sim_rng_below(&s->rng, 40) : 0;
        uint64_t bps = slow ? (16u << 10) + rlog_sim_rng_below(&s->rng, 4u << 20) : 0;
        rlog_simnet_slow(w->net, f->id, mult, bps);
        rlg_sim_trace(s, "net follower %u latency x%u bandwidth %" PRIu64, f->idx, mult, bps);
    } else if (r < 95) {
        int rv =
            w->lt && w->lt->in ? rlog_simnet_reset_conn(w->net, w->lt->in, f->id) : RLOG_ENOCONN;
        rlg_sim_trace(s, "net reset leader - follower %u -> %s", f->idx, rlog_errname(rv));
    } else {
        bool on = rlog_sim_rng_chance(&s->rng, 500000);
        rlog_simnet_faults(w->net, on);
        rlg_sim_trace(s, "net random faults %s", on ? "on" : "off");
    }
}

static void net_setup(sw *w)
{
    rlg_sim *s = w->s;
    rlog_simnet_config c;
    rlog_simnet_config_init(&c, rlg_sim_mix(s->opts->seed ^ 0x4e7ull));
    c.latency_min_ns = 10000 + rlog_sim_rng_below(&s->rng, 200000);
    c.latency_max_ns = c.latency_min_ns + rlog_sim_rng_below(&s->rng, 2000000);
    c.timeout_ns = 100000000ull + rlog_sim_rng_below(&s->rng, 900000000ull);
    c.bytes_per_sec = rlog_sim_rng_chance(&s->rng, 300000)
                          ? (1u << 20) + rlog_sim_rng_below(&s->rng, 100u << 20)
                          : 0;
    unsigned plan = (unsigned)rlog_sim_rng_below(&s->rng, 100);
    const char *name = "calm";
    memset(&w->rates, 0, sizeof w->rates);
    w->rates.delay_max_ns = 1000000ull + rlog_sim_rng_below(&s->rng, 50000000ull);
    if (w->net_faults && plan >= 30) {
        uint32_t k = plan >= 70 ? 10 : 1; /* chaotic : lossy */
        name = plan >= 70 ? "chaotic" : "lossy";
        w->rates.drop_ppm = k * (uint32_t)rlog_sim_rng_below(&s->rng, 10000);
        w->rates.dup_ppm = k * (uint32_t)rlog_sim_rng_below(&s->rng, 10000);
        w->rates.reorder_ppm = k * (uint32_t)rlog_sim_rng_below(&s->rng, 20000);
        w->rates.delay_ppm = k * (uint32_t)rlog_sim_rng_below(&s->rng, 20000);
        w->rates.reset_ppm = k * (uint32_t)rlog_sim_rng_below(&s->rng, 2000);
    }
    c.rates = w->rates;
    w->net = rlog_simnet_new(&c);
    if (!w->net)
        rlg_sim_nomem();
    w->nenv = rlog_simnet_env(w->net);
    if (s->opts->trace) {
        w->ntr = (prefixed){s->opts->trace, s->opts->trace_data, "net: "};
        rlog_simnet_set_trace(w->net, prefixed_line, &w->ntr);
    }
    rlg_sim_trace(s,
                  "net %s latency %" PRIu64 "..%" PRIu64 " timeout %" PRIu64 " bps %" PRIu64
                  " drop %u dup %u reorder %u delay %u reset %u",
                  name, c.latency_min_ns, c.latency_max_ns, c.timeout_ns, c.bytes_per_sec,
                  w->rates.drop_ppm, w->rates.dup_ppm, w->rates.reorder_ppm, w->rates.delay_ppm,
                  w->rates.reset_ppm);
}

/* ---- setup ---- */

static void leader_setup(sw *w)
{
    rlg_sim *s = w->s;
    static const uint64_t segs[] = {4096, 8192, 16384};
    rlog_options_init(&w->lopts);
    w->lopts.vfs = s->vfs;
    w->lopts.env = s->env;
    w->lopts.segment_size = segs[rlog_sim_rng_below(&s->rng, 3)];
    w->lopts.max_record = MAX_PAYLOAD;
    w->lopts.sync = (rlog_sync_mode)rlog_sim_rng_below(&s->rng, 3);
    w->lopts.flags = RLOG_OPEN_CREATE;
    w->max_pay = (uint32_t)(w->lopts.segment_size - RLG_SEG_HEADER_SIZE - 3 * RLG_REC_HEADER_SIZE);
    if (w->max_pay > MAX_PAYLOAD)
        w->max_pay = MAX_PAYLOAD;

    static const size_t windows[] = {0, 4096, 16384, 65536};
    static const unsigned wmsgs[] = {0, 1, 4, 8};
    static const size_t chunks[] = {0, 512, 4096, 16384};
    w->ldo.env = w->nenv;
    w->ldo.window_bytes = windows[rlog_sim_rng_below(&s->rng, 4)];
    w->ldo.window_messages = wmsgs[rlog_sim_rng_below(&s->rng, 4)];
    w->ldo.chunk_bytes = chunks[rlog_sim_rng_below(&s->rng, 4)];
    w->ldo.resend_ms = 50 + (unsigned)rlog_sim_rng_below(&s->rng, 450);
    w->ldo.heartbeat_ms = 20 + (unsigned)rlog_sim_rng_below(&s->rng, 230);

    w->fo.env = w->nenv;
    w->fo.window_bytes = windows[rlog_sim_rng_below(&s->rng, 4)];
    w->fo.resend_ms = 50 + (unsigned)rlog_sim_rng_below(&s->rng, 450);
    w->fo.session_ms = 4 * w->ldo.heartbeat_ms + 100 + (unsigned)rlog_sim_rng_below(&s->rng, 2000);

    static const unsigned queues[] = {0, 4, 16};
    memset(&w->tc, 0, sizeof w->tc); /* the defaults */
    w->tc.queue_messages = queues[rlog_sim_rng_below(&s->rng, 3)];
    w->tc.backoff_min_ms = 1 + (unsigned)rlog_sim_rng_below(&s->rng, 20);
    w->tc.backoff_max_ms = w->tc.backoff_min_ms + 50 + (unsigned)rlog_sim_rng_below(&s->rng, 450);
    rlg_sim_trace(s,
                  "ship segment_size=%" PRIu64 " sync=%d window=%zu/%u chunk=%zu resend=%u"
                  " heartbeat=%u session=%u queue=%u",
                  w->lopts.segment_size, (int)w->lopts.sync, w->ldo.window_bytes,
                  w->ldo.window_messages, w->ldo.chunk_bytes, w->ldo.resend_ms, w->ldo.heartbeat_ms,
                  w->fo.session_ms, w->tc.queue_messages);
}

static void fol_setup(sw *w, unsigned i)
{
    rlg_sim *s = w->s;
    fol *f = &w->f[i];
    f->w = w;
    f->idx = i + 1;
    f->id = LEADER_ID + 1 + i;
    rlog_simfs_config c;
    rlog_simfs_config_init(&c, rlg_sim_mix(s->opts->seed ^ (0xf011ull + i)));
    c.sector_size = rlog_sim_rng_chance(&s->rng, 500000) ? 512 : 4096;
    c.keep_unsynced_ppm = (uint32_t)rlog_sim_rng_below(&s->rng, 1000001);
    if (!rlg_sim_allowed(s, RLOG_SIMFS_FAULT_TORN))
        c.torn_ppm = 0;
    if (!rlg_sim_allowed(s, RLOG_SIMFS_FAULT_LOST_UNSYNCED))
        c.keep_unsynced_ppm = 1000000;
    if (!rlg_sim_allowed(s, RLOG_SIMFS_FAULT_LOST_DIROP))
        c.keep_dirop_ppm = 1000000;
    f->vfs = rlog_simfs_new(&c);
    if (!f->vfs)
        rlg_sim_nomem();
    f->fenv = rlog_simfs_env(f->vfs);
    rlog_simfs_mkdirs(f->vfs, FROOT);
    if (w->fol_faults) { /* benign: they fail calls, never destroy what was synced */
        static const rlog_vfs_op eio_ops[] = {
            RLOG_OP_OPEN,   RLOG_OP_PREAD,  RLOG_OP_PWRITE, RLOG_OP_FDATASYNC, RLOG_OP_ALLOCATE,
            RLOG_OP_UNLINK, RLOG_OP_RENAME, RLOG_OP_LIST,   RLOG_OP_SYNC_DIR,  RLOG_OP_TRUNCATE};
        uint32_t ppm = 200 + (uint32_t)rlog_sim_rng_below(&s->rng, 2000);
        for (size_t k = 0; k < sizeof eio_ops / sizeof *eio_ops; k++)
            if (rlg_sim_allowed(s, RLOG_SIMFS_FAULT_EIO))
                rlog_simfs_set_fault(f->vfs, RLOG_SIMFS_FAULT_EIO, eio_ops[k], ppm);
        if (rlg_sim_allowed(s, RLOG_SIMFS_FAULT_ENOSPC)) {
            rlog_simfs_set_fault(f->vfs, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_PWRITE, ppm);
            rlog_simfs_set_fault(f->vfs, RLOG_SIMFS_FAULT_ENOSPC, RLOG_OP_ALLOCATE, ppm);
        }
        if (rlg_sim_allowed(s, RLOG_SIMFS_FAULT_SHORT_WRITE))
            rlog_simfs_set_fault(f->vfs, RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_OP_PWRITE, ppm);
        if (rlg_sim_allowed(s, RLOG_SIMFS_FAULT_SYNC_DROP))
            rlog_simfs_set_fault(f->vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_FDATASYNC, ppm / 2);
        if (rlg_sim_allowed(s, RLOG_SIMFS_FAULT_SYNC_DROP) && s->opts->dir_sync_drop)
            rlog_simfs_set_fault(f->vfs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_SYNC_DIR, ppm / 2);
    }
    if (s->opts->trace) {
        f->tr = (prefixed){s->opts->trace, s->opts->trace_data, ""};
        snprintf(f->tr.prefix, sizeof f->tr.prefix, "f%u: ", f->idx);
        rlog_simfs_set_trace(f->vfs, prefixed_line, &f->tr);
    }
}

/* ---- sabotage (tests only) ---- */

/* Flips one byte of the first sealed segment of follower 1 that the
 * leader still has. */
static bool sabotage_sealed(sw *w)
{
    fol *f = &w->f[0];
    char **paths = NULL;
    size_t n = 0;
    bool done = false;
    if (rlog_simfs_list_files(f->vfs, 0, &paths, &n))
        rlg_sim_nomem();
    for (size_t i = 0; i < n && !done; i++) {
        const char *name = strrchr(paths[i], '/') + 1;
        uint64_t seq, off;
        segview v;
        size_t llen = 0;
        if (!rlg_seg_parse_name(name, &seq) || seg_load(f->vfs, paths[i], 0, &v))
            continue;
        seg_walk(w, NULL, &v, name);
        if (v.ok && v.sealed && leader_cmp(w, name, v.d, v.len, v.end, true, &off, &llen) == 0) {
            done = rlog_simfs_bitrot(f->vfs, paths[i], &off) == 0;
            rlg_sim_trace(w->s, "SABOTAGE: a bit of follower 1's %s flipped at %" PRIu64, name,
                          off);
        }
        rlog_free(v.d);
    }
    rlog_vfs_free_names(paths, n);
    return done;
}

/* Rewrites the payload of follower 1's last record of more than 8 bytes
 * (one byte changed, CRC recomputed, synced): it still verifies, but it is
 * not the leader's record. */
static bool sabotage_forge(sw *w)
{
    fol *f = &w->f[0];
    char **paths = NULL;
    size_t n = 0;
    char path[128] = "";
    uint64_t at = 0;
    rlg_rec_header rh = {0};
    segview best = {0};
    if (rlog_simfs_list_files(f->vfs, 0, &paths, &n))
        rlg_sim_nomem();
    for (size_t i = 0; i < n; i++) {
        const char *name = strrchr(paths[i], '/') + 1;
        uint64_t seq;
        segview v;
        if (!rlg_seg_parse_name(name, &seq) || seg_load(f->vfs, paths[i], 0, &v))
            continue;
        if (!v.ok) {
            rlog_free(v.d);
            continue;
        }
        uint32_t salt = rlg_salt_state(v.h.log_id, v.h.seq);
        bool found = false;
        rlg_rec_header h;
        for (uint64_t o0 = RLG_SEG_HEADER_SIZE, o = o0; rlg_seg_next(v.d, v.len, salt, &o, &h);
             o0 = o) {
            if (h.type >= RLOG_TYPE_USER_MIN && h.len > MIN_PAYLOAD) {
                at = o0;
                rh = h;
                found = true;
            }
        }
        if (found) {
            rlog_free(best.d);
            best = v;
            snprintf(path, sizeof path, "%s", paths[i]);
        } else {
            rlog_free(v.d);
        }
    }
    rlog_vfs_free_names(paths, n);
    if (!best.d)
        return false;
    uint8_t *rec = best.d + at, *pl = rec + RLG_REC_HEADER_SIZE;
    pl[MIN_PAYLOAD] ^= 0x5a;
    rlg_rec_encode(rec, rlg_salt_state(best.h.log_id, best.h.seq), rh.lsn, rh.durable, rh.type, pl,
                   rh.len);
    rlog_vfs *v = f->vfs;
    rlog_file *fh;
    size_t done = 0;
    if (v->open(v, path, RLOG_VFS_RDWR, &fh) == 0) {
        v->pwrite(v, fh, rec, RLG_REC_HEADER_SIZE + rh.len, at, &done);
        v->fdatasync(v, fh);
        v->close(v, fh);
    }
    rlg_sim_trace(w->s, "SABOTAGE: follower 1's LSN %" PRIu64 " in %s rewritten", rh.lsn, path);
    rlog_free(best.d);
    return true;
}

/* ---- the run ---- */

static bool all_at(sw *w, uint64_t target)
{
    for (unsigned i = 0; i < w->nf; i++) {
        rlog_ship_follower_status st;
        rlog_ship_follower_status_get(w->f[i].f, &st);
        if (st.durable != target)
            return false;
    }
    return true;
}

/* The leader's table shows follower f connected, durable at `target`,
 * with no lag. */
static bool leader_sees_one(sw *w, const fol *f, uint64_t target, rlog_ship_follower_info *out)
{
    rlog_ship_follower_info info[16];
    size_t n = 0;
    rlog_ship_leader_followers(w->ld, info, 16, &n);
    for (size_t k = 0; k < n && k < 16; k++)
        if (info[k].id == f->id && info[k].connected) {
            *out = info[k];
            return info[k].durable == target && info[k].lag_records == 0;
        }
    memset(out, 0, sizeof *out);
    return false;
}

/* Part of oracle 4: once the followers have caught up, the leader's view
 * of them does too (their acknowledgements reach it) within a bound. */
static void leader_sees(sw *w, uint64_t target)
{
    rlog_ship_follower_info info;
    for (unsigned round = 0; round < 20000 && !w->s->stop; round++) {
        bool all = true;
        for (unsigned i = 0; i < w->nf && all; i++)
            all = leader_sees_one(w, &w->f[i], target, &info);
        if (all)
            return;
        pump(w, 1);
    }
    for (unsigned i = 0; i < w->nf && !w->s->stop; i++)
        if (!leader_sees_one(w, &w->f[i], target, &info))
            rlg_sim_fail(w->s,
                         "the leader does not see follower %u caught up at LSN %" PRIu64
                         ": connected %d, durable %" PRIu64 ", lag %" PRIu64 " records,"
                         " state %s",
                         w->f[i].idx, target, info.connected, info.durable, info.lag_records,
                         rlog_ship_state_name(info.state));
}

/* Oracle 4: no faults, no cuts, nobody down; everyone must catch up. */
static void converge(sw *w)
{
    rlg_sim *s = w->s;
    if (w->poisoned && !leader_crash(w, false, false))
        return;
    rlog_simfs_enable_faults(s->vfs, 0);
    rlog_simnet_faults(w->net, 0);
    rlog_simnet_heal_all(w->net);
    w->leader_cut = false;
    for (unsigned i = 0; i < w->nf; i++) {
        rlog_simfs_enable_faults(w->f[i].vfs, 0);
        if (w->f[i].f && w->f[i].restart_due)
            fol_crash(w, &w->f[i], false, false);
        rlog_simnet_slow(w->net, w->f[i].id, 0, 0);
        if (!w->f[i].f && !s->stop)
            fol_start(w, &w->f[i]);
    }
    if (s->stop)
        return;
    if (s->opts->sabotage & RLOG_SIM_SABOTAGE_NO_HEAL) {
        rlog_simnet_partition(w->net, LEADER_ID, w->f[w->nf - 1].id);
        rlg_sim_trace(s, "SABOTAGE: follower %u stays cut off", w->nf);
        op_append(w, false); /* (something it cannot have yet) */
    }
    leader_call(w, "sync", rlog_sync(w->log));
    note_durable(w);
    w->converging = true;
    uint64_t target = w->dur_mark;
    rlg_sim_trace(s, "converge to LSN %" PRIu64, target);
    unsigned round = 0;
    for (; round < CONVERGE_ROUNDS && !s->stop; round++) {
        pump(w, 1);
        if (round % 8 == 0 && all_at(w, target))
            break;
    }
    if (s->stop)
        return;
    if (round == CONVERGE_ROUNDS) {
        for (unsigned i = 0; i < w->nf && !s->stop; i++) {
            rlog_ship_follower_status st;
            const char *state = fstate(&w->f[i], &st);
            if (st.durable != target)
                rlg_sim_fail(s,
                             "follower %u did not converge within %u rounds (%.3f s): durable"
                             " %" PRIu64 " of %" PRIu64 ", state %s, sessions %" PRIu64 ": %s",
                             w->f[i].idx, CONVERGE_ROUNDS, rlog_simnet_now_ns(w->net) / 1e9,
                             st.durable, target, state, st.sessions, st.message);
        }
        return;
    }
    rlg_sim_trace(s, "converged after %u rounds", round);
    for (unsigned i = 0; i < w->nf && !s->stop; i++)
        check_fol_files(w, &w->f[i], true);
    leader_sees(w, target);
    if (!s->stop && (s->opts->sabotage & RLOG_SIM_SABOTAGE_SEALED_BYTE) && sabotage_sealed(w))
        check_all_files(w);
    if (!s->stop && (s->opts->sabotage & RLOG_SIM_SABOTAGE_FORGE))
        sabotage_forge(w);
    /* each follower loses power once caught up: it must keep what it said */
    for (unsigned i = 0; i < w->nf && !s->stop; i++) {
        fol *f = &w->f[i];
        rlog_simfs_halt_after(f->vfs, 0);
        rlog_ship_follower_free(f->f);
        f->f = NULL;
        f->t = NULL;
        rlog_simfs_power_loss(f->vfs);
        check_fol_dir(w, f, "final power loss");
    }
    if (!s->stop && w->log) {
        leader_ship_stop(w, false);
        int rv = rlog_close(w->log);
        w->log = NULL;
        if (rv)
            rlg_sim_fail(s, "leader close failed with %s", rlog_errname(rv));
    }
}

static void crash_event(sw *w)
{
    rlg_sim *s = w->s;
    bool power = rlog_sim_rng_chance(&s->rng, 600000);
    bool mid = rlog_sim_rng_chance(&s->rng, 300000);
    unsigned up = 0;
    for (unsigned i = 0; i < w->nf; i++)
        up += w->f[i].f != NULL;
    check_all_files(w);
    if (s->stop)
        return;
    if (!up || rlog_sim_rng_chance(&s->rng, 300000)) {
        leader_crash(w, power, mid);
        return;
    }
    unsigned k = (unsigned)rlog_sim_rng_below(&s->rng, up);
    for (unsigned i = 0; i < w->nf; i++)
        if (w->f[i].f && k-- == 0) {
            fol_crash(w, &w->f[i], power, mid);
            return;
        }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void drive(sw *w)
{
    rlg_sim *s = w->s;
    uint32_t nc = s->opts->crashes, steps = s->opts->steps, next = 0;
    uint64_t *at = calloc(nc + 1, sizeof *at);
    if (!at)
        rlg_sim_nomem();
    for (uint32_t i = 0; i < nc; i++)
        at[i] = 1 + rlog_sim_rng_below(&s->rng, steps ? steps : 1);
    qsort(at, nc, sizeof *at, cmp_u64);
    if (!leader_restart(w)) {
        free(at);
        return;
    }
    for (unsigned i = 0; i < w->nf; i++)
        fol_start(w, &w->f[i]);
    for (uint64_t step = 1; step <= steps && !s->stop; step++) {
        s->step = step;
        if (w->poisoned && !leader_crash(w, false, false)) /* the process restarts */
            break;
        for (unsigned i = 0; i < w->nf && !s->stop; i++)
            if (!w->f[i].f && step >= w->f[i].down_until)
                fol_start(w, &w->f[i]);
        if (next < nc && at[next] == step) {
            while (next < nc && at[next] == step)
                next++;
            crash_event(w);
        } else {
            unsigned r = (unsigned)rlog_sim_rng_below(&s->rng, 100);
            s->op_faults = rlg_sim_fault_total(s);
            if (r < 70) {
                leader_op(w);
            } else if (r < 82) {
                if (w->net_faults)
                    net_op(w);
            } else if (r < 83) {
                leader_clean_restart(w);
            } /* else: the network only */
            s->res->ops++;
        }
        if (!s->stop)
            pump(w, 1 + (unsigned)rlog_sim_rng_below(&s->rng, 6));
        if (!s->stop && step % CHECK_EVERY == 0)
            check_all_files(w);
    }
    free(at);
    if (!s->stop)
        converge(w);
}

void rlg_sim_ship_workload(rlg_sim *s)
{
    sw *w = calloc(1, sizeof *w);
    if (!w)
        rlg_sim_nomem();
    w->s = s;
    w->net_faults = s->opts->faults != 0;
    net_setup(w);
    leader_setup(w);
    w->nf = 1 + (unsigned)rlog_sim_rng_below(&s->rng, MAXF);
    w->fol_faults = rlog_sim_rng_chance(&s->rng, 300000);
    for (unsigned i = 0; i < w->nf; i++)
        fol_setup(w, i);
    rlg_sim_trace(s, "ship followers=%u disk faults=%s", w->nf, w->fol_faults ? "yes" : "no");
    rlg_sim_wl vt = {w,           LDIR "/rlog.unsynced",
                     leader_open, leader_recovered,
                     leader_drop, leader_poisoned,
                     NULL,        leader_nop,
                     NULL,        leader_nop};
    w->vt = &vt;
    drive(w);

    /* tear down: shipping objects first (they own transports), then the
     * network, then the followers' file systems */
    leader_ship_stop(w, true);
    if (w->log)
        rlog_abandon(w->log, NULL);
    for (unsigned i = 0; i < w->nf; i++) {
        fol *f = &w->f[i];
        if (f->f) {
            wtp_crash(w->net, f->t);
            rlog_ship_follower_free(f->f);
        }
        s->hash = rlg_sim_mix(s->hash ^ rlog_simfs_trace_hash(f->vfs));
        for (unsigned k = 0; k < RLOG_SIMFS_FAULT_COUNT; k++)
            s->res->faults[k] += rlog_simfs_faults(f->vfs, (rlog_simfs_fault)k);
    }
    static const rlog_simnet_counter faults[] = {RLOG_SIMNET_DROPPED,   RLOG_SIMNET_DUPLICATED,
                                                 RLOG_SIMNET_REORDERED, RLOG_SIMNET_DELAYED,
                                                 RLOG_SIMNET_RESET,     RLOG_SIMNET_PARTITION_LOST};
    for (size_t k = 0; k < sizeof faults / sizeof *faults; k++)
        s->res->ship_net_faults += rlog_simnet_count(w->net, faults[k]);
    s->hash = rlg_sim_mix(s->hash ^ rlog_simnet_trace_hash(w->net));
    rlg_sim_trace(s, "ship end net sent=%" PRIu64 " faults=%" PRIu64,
                  rlog_simnet_count(w->net, RLOG_SIMNET_SENT), s->res->ship_net_faults);
    rlog_simnet_free(w->net);
    for (unsigned i = 0; i < w->nf; i++)
        w->f[i].vfs->destroy(w->f[i].vfs);
    free(w->m);
    free(w->att);
    free(w);
}
