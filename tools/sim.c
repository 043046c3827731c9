/*
 * rlog sim — runs the deterministic simulator over one seed or many, prints
 * a summary, and for each failing seed a one-line command that replays it
 * with a full trace. Several seeds run in parallel child processes with
 * --jobs (results come back over a pipe, merged in seed order).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlog/sim.h"
#include "tools/cli.h"

typedef struct sim_args {
    uint64_t seed, seeds, from, steps, crashes, jobs;
    bool one, trace;
    const char *faults, *workload;
    uint64_t mask;
    unsigned workloads;
} sim_args;

static int parse(cli_args *a, sim_args *s)
{
    s->seeds = 100;
    s->steps = 1000;
    s->crashes = 5;
    s->jobs = 1;
    s->faults = "all";
    s->workload = "all";
    while (a->i < a->argc) {
        const char *v = NULL;
        int r;
        if ((r = cli_opt_u64(a, "--seed", &s->seed, 0, UINT64_MAX)) != 0) {
            if (r < 0)
                return -1;
            s->one = true;
        } else if ((r = cli_opt_u64(a, "--seeds", &s->seeds, 1, 100000000)) != 0 ||
                   (r = cli_opt_u64(a, "--from", &s->from, 0, UINT64_MAX)) != 0 ||
                   (r = cli_opt_u64(a, "--steps", &s->steps, 1, 100000000)) != 0 ||
                   (r = cli_opt_u64(a, "--crashes", &s->crashes, 0, 100000)) != 0 ||
                   (r = cli_opt_u64(a, "--jobs", &s->jobs, 1, 64)) != 0) {
            if (r < 0)
                return -1;
        } else if ((r = cli_opt(a, "--faults", &v)) != 0) {
            if (r < 0)
                return -1;
            s->faults = v;
        } else if ((r = cli_opt(a, "--workload", &v)) != 0) {
            if (r < 0)
                return -1;
            s->workload = v;
        } else if (!strcmp(a->argv[a->i], "--trace")) {
            s->trace = true;
            a->i++;
        } else {
            cli_usage_error("sim", "unknown option '%s'", a->argv[a->i]);
            return -1;
        }
    }
    if (rlog_sim_parse_faults(s->faults, &s->mask) != 0) {
        cli_usage_error("sim",
                        "unknown fault class in '%s' (classes: all, none, or a list of "
                        "eio,enospc,sync_drop,short_write,misdirect,lost_write,bitrot,"
                        "latent,torn,lost_unsynced,lost_dirop,damage,recovery_crash)",
                        s->faults);
        return -1;
    }
    if (rlog_sim_parse_workloads(s->workload, &s->workloads) != 0) {
        cli_usage_error("sim", "unknown workload '%s' (log, raft, ship or all)", s->workload);
        return -1;
    }
    if (s->one) {
        s->from = s->seed;
        s->seeds = 1;
    }
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
    rlog_sim_result *s = &t->sum;
    s->ops += r->ops;
    s->appends += r->appends;
    s->acked += r->acked;
    s->reads += r->reads;
    s->crashes += r->crashes;
    s->power_losses += r->power_losses;
    s->recoveries += r->recoveries;
    s->recovery_crashes += r->recovery_crashes;
    s->mid_op_crashes += r->mid_op_crashes;
    s->corruption_detected += r->corruption_detected;
    s->torn_cut += r->torn_cut;
    s->raft_seeds += r->raft_seeds;
    s->raft_ops += r->raft_ops;
    s->ship_seeds += r->ship_seeds;
    s->ship_leader_crashes += r->ship_leader_crashes;
    s->ship_follower_crashes += r->ship_follower_crashes;
    s->ship_resets += r->ship_resets;
    s->ship_net_faults += r->ship_net_faults;
    s->ship_bytes += r->ship_bytes;
    for (unsigned i = 0; i < RLOG_SIM_FAULT_CLASSES; i++)
        s->faults[i] += r->faults[i];
    s->trace_hash ^= r->trace_hash;
}

static void report_failure(const sim_args *s, uint64_t seed, const rlog_sim_result *r)
{
    printf("FAIL seed=%" PRIu64 ": %s\n", seed, r->message);
    printf("  replay: rlog sim --seed %" PRIu64 " --steps %" PRIu64 " --crashes %" PRIu64
           " --faults %s --workload %s --trace\n",
           seed, s->steps, s->crashes, s->faults, s->workload);
}

static int run_one(const sim_args *s, uint64_t seed, rlog_sim_result *r)
{
    rlog_sim_options o;
    rlog_sim_options_init(&o, seed);
    o.steps = (uint32_t)s->steps;
    o.crashes = (uint32_t)s->crashes;
    o.faults = s->mask;
    o.workloads = s->workloads;
    if (s->trace)
        o.trace = cli_print_line;
    return rlog_sim_run(&o, r);
}

/* Runs seeds from, from+jobs, ... in a child; results go to fd. */
static void child(const sim_args *s, uint64_t k, int fd)
{
    for (uint64_t i = k; i < s->seeds; i += s->jobs) {
        rlog_sim_result r;
        if (run_one(s, s->from + i, &r) != 0) {
            memset(&r, 0, sizeof r);
            r.failed = 1;
            snprintf(r.message, sizeof r.message, "out of memory");
        }
        if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
            _exit(4);
    }
    _exit(0);
}

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static int run_parallel(const sim_args *s, totals *t)
{
    int fds[64];
    pid_t pids[64];
    for (uint64_t k = 0; k < s->jobs; k++) {
        int p[2];
        if (pipe(p) != 0)
            return CLI_EXIT_ERROR;
        fflush(stdout);
        pids[k] = fork();
        if (pids[k] == 0) {
            close(p[0]);
            child(s, k, p[1]);
        }
        close(p[1]);
        fds[k] = p[0];
    }
    int rc = 0;
    for (uint64_t i = 0; i < s->seeds; i++) {
        rlog_sim_result r;
        if (read_full(fds[i % s->jobs], &r, sizeof r) != 0) {
            fprintf(stderr, "rlog sim: a worker died at seed %" PRIu64 "\n", s->from + i);
            rc = CLI_EXIT_ERROR;
            break;
        }
        add(t, &r);
        if (r.failed)
            report_failure(s, s->from + i, &r);
    }
    for (uint64_t k = 0; k < s->jobs; k++) {
        close(fds[k]);
        waitpid(pids[k], NULL, 0);
    }
    return rc;
}

static void summary(const sim_args *s, const totals *t, double secs)
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
    if (s->one)
        printf("trace_hash=%016" PRIx64 "\n", r->trace_hash);
    if (!s->trace) /* a traced run prints nothing that varies between runs */
        printf("seconds=%.2f seeds_s=%.1f seeds_min=%.0f\n", secs, t->seeds / secs,
               60.0 * t->seeds / secs);
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
    totals t;
    memset(&t, 0, sizeof t);
    uint64_t t0 = cli_now_ns();
    int rc = 0;
    if (s.jobs > 1 && s.seeds > 1 && !s.trace) {
        rc = run_parallel(&s, &t);
    } else {
        for (uint64_t i = 0; i < s.seeds; i++) {
            rlog_sim_result r;
            if (run_one(&s, s.from + i, &r) != 0)
                return CLI_EXIT_ERROR;
            add(&t, &r);
            if (r.failed)
                report_failure(&s, s.from + i, &r);
            if (!s.trace && !cli_quiet && isatty(2) && i % 50 == 49)
                fprintf(stderr, "\r%" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " failed", i + 1,
                        s.seeds, t.failed);
        }
        if (!s.trace && !cli_quiet && isatty(2))
            fprintf(stderr, "\n");
    }
    summary(&s, &t, (cli_now_ns() - t0) / 1e9);
    if (rc)
        return rc;
    return t.failed ? 1 : 0;
}
