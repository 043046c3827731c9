/*
 * Testing your own code on the simulator (rlog/sim.h, "Testing your own
 * code"; docs/simulator.md): the seed loop, which runs a callback once per
 * seed on a fresh simulated file system (on several threads if asked,
 * reporting in seed order), and the crash-point helper, which crashes an
 * operation before each of its vfs calls in turn and runs the user's check
 * after each crash. Both stand on the file system's own crash hooks
 * (rlog_simfs_halt_after, rlog_simfs_crash, rlog_simfs_power_loss).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/harness.h"

#define USER_STREAM   11   /* ctx->rng's stream of the seed */
#define FAILURES_KEPT 1000 /* failing seeds listed in a result */

int rlog_sim_failf(rlog_sim_ctx *ctx, const char *fmt, ...)
{
    if (!ctx->message[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
        va_end(ap);
    }
    return 1;
}

/* A fresh context for `seed`: its file system from `tmpl` (NULL: the
 * defaults) with `tmpl->seed` replaced, `mkdir` made. 0 or RLOG_ENOMEM. */
static int ctx_open(rlog_sim_ctx *c, uint64_t seed, const rlog_simfs_config *tmpl, bool no_fs,
                    const char *mkdir)
{
    void *result = c->result;
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->result = result;
    rlog_sim_rng_init(&c->rng, seed, USER_STREAM);
    if (no_fs)
        return 0;
    rlog_simfs_config cfg;
    if (tmpl)
        cfg = *tmpl;
    else
        rlog_simfs_config_init(&cfg, seed);
    cfg.seed = seed;
    if (!(c->vfs = rlog_simfs_new(&cfg)))
        return RLOG_ENOMEM;
    c->env = rlog_simfs_env(c->vfs);
    if (mkdir && rlog_simfs_mkdirs(c->vfs, mkdir) != 0) {
        c->vfs->destroy(c->vfs);
        c->vfs = NULL;
        return RLOG_ENOMEM;
    }
    return 0;
}

static void ctx_close(rlog_sim_ctx *c)
{
    if (c->vfs)
        c->vfs->destroy(c->vfs);
    c->vfs = NULL;
    c->env = NULL;
}

/* ======================================================================
 * The seed loop
 * ====================================================================== */

void rlog_sim_seeds_options_init(rlog_sim_seeds_options *o)
{
    memset(o, 0, sizeof *o);
    o->count = 100;
    o->jobs = 1;
}

/* One seed's outcome, as a worker leaves it for the reporting thread. */
typedef struct slot {
    uint64_t seed;
    bool done;
    int rv; /* 0, or the error that kept the seed from running */
    int failed;
    char message[512];
    void *result;
} slot;

typedef struct loop {
    const rlog_sim_seeds_options *o;
    rlog_sim_fn run;
    void *user;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next;     /* next seed offset to take */
    uint64_t reported; /* offsets below this were reported */
    bool stop;
    size_t window; /* slots: a worker runs at most this far ahead */
    slot *slots;
} loop;

/* Runs seed from + i into s (any thread). */
static void run_seed(loop *l, uint64_t i, slot *s)
{
    const rlog_sim_seeds_options *o = l->o;
    rlog_sim_ctx c;
    c.result = s->result;
    if (s->result)
        memset(s->result, 0, o->result_size);
    s->seed = o->from + i;
    s->failed = 0;
    s->message[0] = '\0';
    s->rv = ctx_open(&c, s->seed, o->fs, o->no_fs, o->mkdir);
    if (s->rv)
        return;
    s->failed = l->run(&c, l->user) != 0;
    if (s->failed)
        snprintf(s->message, sizeof s->message, "%s",
                 c.message[0] ? c.message : "the callback failed (no message)");
    ctx_close(&c);
}

/* The replay command of `seed`: o->replay with every "{seed}" filled in. */
static void replay_line(const char *tmpl, uint64_t seed, char *out, size_t cap)
{
    size_t n = 0;
    if (!tmpl)
        tmpl = "seed {seed}";
    out[0] = '\0';
    for (const char *p = tmpl; *p && n + 1 < cap;) {
        if (!strncmp(p, "{seed}", 6)) {
            int w = snprintf(out + n, cap - n, "%" PRIu64, seed);
            n = w < 0 || (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
            p += 6;
        } else {
            out[n++] = *p++;
            out[n] = '\0';
        }
    }
}

/* Reports a finished seed (calling thread): false when the loop stops. */
static bool report(loop *l, const slot *s, rlog_sim_seeds_result *res)
{
    const rlog_sim_seeds_options *o = l->o;
    res->ran++;
    if (o->on_seed)
        o->on_seed(o->data, s->seed, s->failed, s->message, s->result);
    if (!s->failed)
        return true;
    res->failed++;
    if (res->n_failures < FAILURES_KEPT) {
        if (!res->failures && !(res->failures = calloc(FAILURES_KEPT, sizeof *res->failures)))
            return o->keep_going;
        rlog_sim_seed_failure *f = &res->failures[res->n_failures++];
        f->seed = s->seed;
        snprintf(f->message, sizeof f->message, "%s", s->message);
        replay_line(o->replay, s->seed, f->replay, sizeof f->replay);
    }
    return o->keep_going;
}

static void *worker(void *arg)
{
    loop *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->next < l->o->count && l->next - l->reported >= l->window)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop || l->next >= l->o->count)
            break;
        uint64_t i = l->next++;
        slot *s = &l->slots[i % l->window];
        pthread_mutex_unlock(&l->mu);
        run_seed(l, i, s);
        pthread_mutex_lock(&l->mu);
        s->done = true;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int loop_slots(loop *l, size_t n)
{
    l->window = n;
    if (!(l->slots = calloc(n, sizeof *l->slots)))
        return RLOG_ENOMEM;
    for (size_t k = 0; k < n && l->o->result_size; k++)
        if (!(l->slots[k].result = calloc(1, l->o->result_size)))
            return RLOG_ENOMEM;
    return 0;
}

static void loop_free(loop *l)
{
    for (size_t k = 0; l->slots && k < l->window; k++)
        free(l->slots[k].result);
    free(l->slots);
}

static int run_serial(loop *l, rlog_sim_seeds_result *res)
{
    for (uint64_t i = 0; i < l->o->count; i++) {
        run_seed(l, i, &l->slots[0]);
        if (l->slots[0].rv)
            return l->slots[0].rv;
        if (!report(l, &l->slots[0], res))
            break;
    }
    return 0;
}

static int run_threads(loop *l, unsigned jobs, rlog_sim_seeds_result *res)
{
    pthread_t th[256];
    unsigned started = 0;
    int rv = 0;
    for (; started < jobs; started++)
        if (pthread_create(&th[started], NULL, worker, l) != 0) {
            rv = RLOG_EIO;
            break;
        }
    pthread_mutex_lock(&l->mu);
    if (rv)
        l->stop = true;
    for (uint64_t i = 0; !rv && i < l->o->count; i++) {
        slot *s = &l->slots[i % l->window];
        while (!s->done)
            pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
        bool go_on = false;
        if (s->rv)
            rv = s->rv;
        else
            go_on = report(l, s, res);
        pthread_mutex_lock(&l->mu);
        s->done = false;
        l->reported = i + 1;
        pthread_cond_broadcast(&l->cv);
        if (!go_on) {
            l->stop = true;
            break;
        }
    }
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (unsigned k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    return rv;
}

int rlog_sim_seeds(const rlog_sim_seeds_options *o, rlog_sim_fn run, void *user,
                   rlog_sim_seeds_result *res)
{
    memset(res, 0, sizeof *res);
    if (!o || !run || o->jobs > 256)
        return RLOG_EINVAL;
    unsigned jobs = o->jobs ? o->jobs : 1;
    if ((uint64_t)jobs > o->count)
        jobs = o->count ? (unsigned)o->count : 1;
    loop l = {.o = o, .run = run, .user = user};
    int rv = loop_slots(&l, jobs > 1 ? 4 * (size_t)jobs : 1);
    if (rv == 0 && jobs == 1) {
        rv = run_serial(&l, res);
    } else if (rv == 0) {
        pthread_mutex_init(&l.mu, NULL);
        pthread_cond_init(&l.cv, NULL);
        rv = run_threads(&l, jobs, res);
        pthread_cond_destroy(&l.cv);
        pthread_mutex_destroy(&l.mu);
    }
    loop_free(&l);
    return rv;
}

void rlog_sim_seeds_release(rlog_sim_seeds_result *res)
{
    free(res->failures);
    res->failures = NULL;
    res->n_failures = 0;
}

void rlog_sim_seeds_print(const rlog_sim_seeds_result *res, void *out)
{
    FILE *f = out;
    for (size_t i = 0; i < res->n_failures; i++)
        fprintf(f, "FAIL seed=%" PRIu64 ": %s\n  replay: %s\n", res->failures[i].seed,
                res->failures[i].message, res->failures[i].replay);
    fprintf(f, "seeds=%" PRIu64 " failed=%" PRIu64 "\n", res->ran, res->failed);
}

/* ======================================================================
 * The crash-point helper
 * ====================================================================== */

void rlog_sim_crash_options_init(rlog_sim_crash_options *o, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->seed = seed;
    o->kinds = RLOG_SIM_CRASH_PROCESS | RLOG_SIM_CRASH_POWER;
    o->power_outcomes = 3;
}

/* The counting run's trace of the operation: one line per vfs call. */
typedef struct calls_seen {
    char (*line)[320];
    size_t n, cap;
    bool nomem;
} calls_seen;

static void note_call(void *data, const char *line)
{
    calls_seen *cs = data;
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 64;
        void *p = realloc(cs->line, cap * sizeof *cs->line);
        if (!p) {
            cs->nomem = true;
            return;
        }
        cs->line = p;
        cs->cap = cap;
    }
    snprintf(cs->line[cs->n++], sizeof *cs->line, "%s", line);
}

/* A file system at the state setup leaves, for one run of the operation.
 * RLOG_EIO (reason in res->message) when setup fails. */
static int crash_start(const rlog_sim_crash_options *o, void *user, const rlog_simfs_config *cfg,
                       rlog_sim_ctx *c, rlog_sim_crash_result *res)
{
    c->result = NULL;
    int rv = ctx_open(c, o->seed, cfg, false, o->mkdir);
    if (rv)
        return rv;
    if (o->setup && o->setup(c, user) != 0) {
        snprintf(res->message, sizeof res->message, "setup failed: %.400s", c->message);
        ctx_close(c);
        return RLOG_EIO;
    }
    c->message[0] = '\0';
    return 0;
}

/* The counting run: N and the name of each call. */
static int crash_count(const rlog_sim_crash_options *o, void *user, const rlog_simfs_config *cfg,
                       calls_seen *cs, rlog_sim_crash_result *res)
{
    rlog_sim_ctx c;
    int rv = crash_start(o, user, cfg, &c, res);
    if (rv)
        return rv;
    uint64_t before = rlog_simfs_calls(c.vfs, RLOG_OP_COUNT);
    rlog_simfs_set_trace(c.vfs, note_call, cs);
    int orv = o->operation(&c, user);
    rlog_simfs_set_trace(c.vfs, NULL, NULL);
    res->calls = rlog_simfs_calls(c.vfs, RLOG_OP_COUNT) - before;
    if (orv)
        snprintf(res->message, sizeof res->message, "the operation failed without a crash: %.400s",
                 c.message[0] ? c.message : "(no message)");
    ctx_close(&c);
    if (cs->nomem)
        return RLOG_ENOMEM;
    if (!orv && cs->n != res->calls) { /* a crash event inside the operation */
        snprintf(res->message, sizeof res->message,
                 "the operation made %" PRIu64 " vfs calls but %zu traced events: it must not "
                 "cause crash events itself",
                 res->calls, cs->n);
        return RLOG_EINVAL;
    }
    return orv ? RLOG_EIO : 0;
}

/* The file system of one crash point: power-loss outcome 0 keeps nothing
 * unsynced, 1 keeps the directory operations but no data write, the
 * others draw from the configuration's probabilities with another crash
 * stream. */
static void outcome_config(const rlog_simfs_config *base, unsigned kind, unsigned outcome,
                           rlog_simfs_config *cfg)
{
    *cfg = *base;
    if (kind != RLOG_SIM_CRASH_POWER || outcome > 1)
        return;
    cfg->keep_unsynced_ppm = 0;
    cfg->keep_dirop_ppm = outcome == 0 ? 0 : 1000000;
}

static void op_of(const char *line, rlog_vfs_op *op)
{
    *op = RLOG_OP_COUNT;
    for (unsigned i = 0; i < RLOG_OP_COUNT; i++) {
        const char *name = rlog_simfs_op_name((rlog_vfs_op)i);
        size_t n = strlen(name);
        if (!strncmp(line, name, n) && line[n] == ' ')
            *op = (rlog_vfs_op)i;
    }
}

/* One crash point: the operation dies before call p->k, the crash, the
 * check. 0 or an error that stops the whole call. */
static int crash_point(const rlog_sim_crash_options *o, void *user, const rlog_simfs_config *base,
                       rlog_sim_crash_point *p, rlog_sim_crash_result *res)
{
    rlog_simfs_config cfg;
    outcome_config(base, p->kind, p->outcome, &cfg);
    rlog_sim_ctx c;
    int rv = crash_start(o, user, &cfg, &c, res);
    if (rv)
        return rv;
    if (p->k <= res->calls)
        rlog_simfs_halt_after(c.vfs, p->k - 1);
    (void)o->operation(&c, user);
    c.message[0] = '\0';
    if (p->kind == RLOG_SIM_CRASH_POWER) {
        if (p->outcome > 1)
            rlog_simfs_reseed_crash(c.vfs, rlg_sim_mix(o->seed + p->outcome));
        if (rlog_simfs_power_loss(c.vfs) != 0) {
            ctx_close(&c);
            return RLOG_ENOMEM;
        }
    } else {
        rlog_simfs_crash(c.vfs);
    }
    p->failed = o->check(&c, user) != 0;
    snprintf(p->message, sizeof p->message, "%s",
             !p->failed     ? ""
             : c.message[0] ? c.message
                            : "the check failed (no message)");
    ctx_close(&c);
    return 0;
}

/* Runs every kind and outcome at k; false when the helper stops. */
static int crash_at(const rlog_sim_crash_options *o, void *user, const rlog_simfs_config *base,
                    const calls_seen *cs, uint64_t k, rlog_sim_crash_result *res, bool *stop)
{
    static const unsigned kinds[] = {RLOG_SIM_CRASH_PROCESS, RLOG_SIM_CRASH_POWER};
    for (size_t i = 0; i < 2 && !*stop; i++) {
        if (!(o->kinds & kinds[i]))
            continue;
        unsigned outcomes = kinds[i] == RLOG_SIM_CRASH_POWER ? o->power_outcomes : 1;
        for (unsigned j = 0; j < outcomes && !*stop; j++) {
            rlog_sim_crash_point p;
            memset(&p, 0, sizeof p);
            p.k = k;
            p.kind = kinds[i];
            p.outcome = j;
            if (k <= res->calls)
                snprintf(p.call, sizeof p.call, "%s", cs->line[k - 1]);
            else
                snprintf(p.call, sizeof p.call, "(after the operation)");
            op_of(p.call, &p.op);
            if (k > 1)
                snprintf(p.previous, sizeof p.previous, "%s", cs->line[k - 2]);
            int rv = crash_point(o, user, base, &p, res);
            if (rv)
                return rv;
            res->points++;
            if (o->on_point)
                o->on_point(o->data, &p);
            if (p.failed && res->failed++ == 0)
                res->first = p;
            if (p.failed && !o->keep_going)
                *stop = true;
        }
    }
    return 0;
}

int rlog_sim_crash_points(const rlog_sim_crash_options *o, void *user, rlog_sim_crash_result *res)
{
    memset(res, 0, sizeof *res);
    if (!o || !o->operation || !o->check)
        return RLOG_EINVAL;
    rlog_simfs_config base;
    if (o->fs)
        base = *o->fs;
    else
        rlog_simfs_config_init(&base, o->seed);
    base.seed = o->seed;
    calls_seen cs = {0};
    int rv = crash_count(o, user, &base, &cs, res);
    bool stop = false;
    for (uint64_t k = 1; rv == 0 && k <= res->calls + 1 && !stop; k++)
        rv = crash_at(o, user, &base, &cs, k, res, &stop);
    free(cs.line);
    return rv;
}
