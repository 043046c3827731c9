/*
 * rlog sim — runs the deterministic simulator over one seed or many, prints
 * a summary, and for each failing seed a one-line command that replays it
 * with a full trace. The seeds run through the simulator's seed loop
 * (rlog_sim_seeds: --jobs threads, results reported in seed order). The
 * seed-range options and the progress line are shared with the cluster
 * workload (tools/sim_cluster.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rlog/sim.h"
#include "tools/cli.h"

typedef struct sim_args {
    cli_seeds sd;
    uint64_t steps, crashes;
    const char *workload;
    uint64_t mask;
    unsigned workloads;
    bool dir_sync_drop;
} sim_args;

static int parse(cli_args *a, sim_args *s)
{
    cli_seeds_init(&s->sd);
    s->steps = 1000;
    s->crashes = 5;
    s->workload = "all";
    while (a->i < a->argc) {
        const char *v = NULL;
        int r;
        if ((r = cli_opt_seeds(a, &s->sd)) != 0 ||
            (r = cli_opt_u64(a, "--steps", &s->steps, 1, 100000000)) != 0 ||
            (r = cli_opt_u64(a, "--crashes", &s->crashes, 0, 100000)) != 0) {
            if (r < 0)
                return -1;
        } else if ((r = cli_opt(a, "--workload", &v)) != 0) {
            if (r < 0)
                return -1;
            s->workload = v;
        } else if (!strcmp(a->argv[a->i], "--dir-sync-drop")) {
            s->dir_sync_drop = true;
            a->i++;
        } else {
            cli_usage_error("sim", "unknown option '%s'", a->argv[a->i]);
            return -1;
        }
    }
    if (rlog_sim_parse_faults(s->sd.faults, &s->mask) != 0) {
        cli_usage_error("sim",
                        "unknown fault class in '%s' (classes: all, none, or a list of "
                        "eio,enospc,sync_drop,short_write,misdirect,lost_write,bitrot,"
                        "latent,torn,lost_unsynced,lost_dirop,damage,recovery_crash)",
                        s->sd.faults);
        return -1;
    }
    if (rlog_sim_parse_workloads(s->workload, &s->workloads) != 0) {
        cli_usage_error("sim", "unknown workload '%s' (log, raft, ship or all)", s->workload);
        return -1;
    }
    cli_seeds_finish(&s->sd);
    return 0;
}

typedef struct totals {
    uint64_t seeds, failed;
    rlog_sim_result sum;
} totals;

static void add(totals *t, const rlog_sim_result *r)
{
    t->seeds++;
    t->failed += r->failed != 0;
    rlog_sim_result_add(&t->sum, r);
    t->sum.trace_hash ^= r->trace_hash;
}

static void report_failure(const sim_args *s, uint64_t seed, const rlog_sim_result *r)
{
    printf("FAIL seed=%" PRIu64 ": %s\n", seed, r->message);
    printf("  replay: rlog sim --seed %" PRIu64 " --steps %" PRIu64 " --crashes %" PRIu64
           " --faults %s --workload %s%s --trace\n",
           seed, s->steps, s->crashes, s->sd.faults, s->workload,
           s->dir_sync_drop ? " --dir-sync-drop" : "");
}

/* The seed loop's callback: one seed of rlog's own simulator; the result
 * goes to the loop's per-seed space (ctx->result). */
static int run_one(rlog_sim_ctx *c, void *user)
{
    const sim_args *s = user;
    rlog_sim_options o;
    rlog_sim_options_init(&o, c->seed);
    o.steps = (uint32_t)s->steps;
    o.crashes = (uint32_t)s->crashes;
    o.faults = s->mask;
    o.workloads = s->workloads;
    o.dir_sync_drop = s->dir_sync_drop;
    if (s->sd.trace)
        o.trace = cli_print_line;
    rlog_sim_result *r = c->result;
    if (rlog_sim_run(&o, r) != 0) {
        memset(r, 0, sizeof *r);
        r->failed = 1;
        snprintf(r->message, sizeof r->message, "out of memory");
    }
    return r->failed ? rlog_sim_failf(c, "%s", r->message) : 0;
}

typedef struct sim_run {
    sim_args *s;
    totals t;
} sim_run;

/* In seed order, in the main thread. */
static void on_seed(void *data, uint64_t seed, int failed, const char *message, const void *res)
{
    sim_run *run = data;
    const rlog_sim_result *r = res;
    add(&run->t, r);
    if (failed)
        report_failure(run->s, seed, r);
    if (!run->s->sd.trace)
        cli_seeds_progress(&run->s->sd, run->t.seeds, run->t.failed, false);
}

static void summary(const sim_args *s, const totals *t)
{
    const rlog_sim_result *r = &t->sum;
    printf("seeds=%" PRIu64 " failed=%" PRIu64 " ops=%" PRIu64 " appends=%" PRIu64 " acked=%" PRIu64
           " reads=%" PRIu64 " crashes=%" PRIu64 " power_losses=%" PRIu64 " recoveries=%" PRIu64
           " recovery_crashes=%" PRIu64 " mid_op_crashes=%" PRIu64 " corruption_detected=%" PRIu64
           " torn_cut=%" PRIu64 "\n",
           t->seeds, t->failed, r->ops, r->appends, r->acked, r->reads, r->crashes, r->power_losses,
           r->recoveries, r->recovery_crashes, r->mid_op_crashes, r->corruption_detected,
           r->torn_cut);
    printf("raft_seeds=%" PRIu64 " raft_ops=%" PRIu64 "\n", r->raft_seeds, r->raft_ops);
    if (r->ship_seeds)
        printf("ship_seeds=%" PRIu64 " leader_crashes=%" PRIu64 " follower_crashes=%" PRIu64
               " follower_resets=%" PRIu64 " net_faults=%" PRIu64 " shipped_bytes=%" PRIu64 "\n",
               r->ship_seeds, r->ship_leader_crashes, r->ship_follower_crashes, r->ship_resets,
               r->ship_net_faults, r->ship_bytes);
    printf("faults:");
    for (unsigned i = 0; i < RLOG_SIM_FAULT_CLASSES; i++)
        if (i != RLOG_SIMFS_FAULT_PROCESS_CRASH && i != RLOG_SIMFS_FAULT_POWER_LOSS)
            printf(" %s=%" PRIu64, rlog_sim_fault_name(i), r->faults[i]);
    printf("\n");
    cli_seeds_summary_end(&s->sd, t->seeds, r->trace_hash);
}

int cli_cmd_sim(cli_args *a)
{
    for (int i = a->i; i + 1 < a->argc; i++)
        if (!strcmp(a->argv[i], "--workload") && !strcmp(a->argv[i + 1], "cluster")) {
#ifdef RLOG_HAVE_SIM_CLUSTER
            return cli_cmd_sim_cluster(a);
#else
            return cli_usage_error("sim", "this rlog was built without libraft: no cluster "
                                          "workload");
#endif
        }
    sim_args s;
    memset(&s, 0, sizeof s);
    if (parse(a, &s) != 0)
        return CLI_EXIT_USAGE;
    sim_run run = {.s = &s};
    rlog_sim_seeds_options o;
    rlog_sim_seeds_options_init(&o);
    o.from = s.sd.from;
    o.count = s.sd.seeds;
    o.jobs = s.sd.trace ? 1 : (unsigned)s.sd.jobs; /* trace lines of one seed stay together */
    o.keep_going = 1;
    o.no_fs = 1; /* rlog_sim_run makes its own */
    o.result_size = sizeof(rlog_sim_result);
    o.on_seed = on_seed;
    o.data = &run;
    rlog_sim_seeds_result res;
    int rv = rlog_sim_seeds(&o, run_one, &s, &res);
    rlog_sim_seeds_release(&res);
    if (!s.sd.trace)
        cli_seeds_progress(&s.sd, run.t.seeds, run.t.failed, true);
    if (rv) {
        fprintf(stderr, "rlog sim: %s\n", rlog_strerror(rv));
        return CLI_EXIT_ERROR;
    }
    summary(&s, &run.t);
    return run.t.failed ? 1 : 0;
}

/* ---- the seed range, shared with the cluster workload ---- */

void cli_seeds_init(cli_seeds *s)
{
    memset(s, 0, sizeof *s);
    s->seeds = 100;
    s->jobs = 1;
    s->faults = "all";
    s->t0_ns = s->last_ns = cli_now_ns();
}

int cli_opt_seeds(cli_args *a, cli_seeds *s)
{
    int r = cli_opt_u64(a, "--seed", &s->seed, 0, UINT64_MAX);
    if (r > 0)
        s->one = true;
    if (r == 0 && (r = cli_opt_u64(a, "--seeds", &s->seeds, 1, 100000000)) == 0 &&
        (r = cli_opt_u64(a, "--from", &s->from, 0, UINT64_MAX)) == 0 &&
        (r = cli_opt_u64(a, "--jobs", &s->jobs, 1, 64)) == 0)
        r = cli_opt(a, "--faults", &s->faults);
    if (r == 0 && !strcmp(a->argv[a->i], "--trace")) {
        s->trace = true;
        a->i++;
        r = 1;
    }
    return r;
}

void cli_seeds_finish(cli_seeds *s)
{
    if (s->one) {
        s->from = s->seed;
        s->seeds = 1;
    }
    s->t0_ns = s->last_ns = cli_now_ns();
}

void cli_seeds_progress(cli_seeds *s, uint64_t done, uint64_t failed, bool last)
{
    if (cli_quiet || !isatty(STDERR_FILENO))
        return;
    uint64_t now = cli_now_ns();
    if (last ? s->last_ns == s->t0_ns : now - s->last_ns < 1000000000ull)
        return; /* nothing shown yet at the end: a short run stays silent */
    s->last_ns = now;
    double secs = (double)(now - s->t0_ns) / 1e9;
    fprintf(stderr,
            "\rrlog sim: %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " failed, %.0f seeds/min%s", done,
            s->seeds, failed, secs > 0 ? 60.0 * (double)done / secs : 0.0, last ? "\n" : "");
}

void cli_seeds_summary_end(const cli_seeds *s, uint64_t seeds, uint64_t trace_hash)
{
    double secs = (double)(cli_now_ns() - s->t0_ns) / 1e9;
    if (s->one)
        printf("trace_hash=%016" PRIx64 "\n", trace_hash);
    if (!s->trace) /* a traced run prints nothing that varies between runs */
        printf("seconds=%.2f seeds_s=%.1f seeds_min=%.0f\n", secs, (double)seeds / secs,
               60.0 * (double)seeds / secs);
}
