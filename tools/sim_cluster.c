/*
 * rlog sim --workload cluster — whole libraft clusters in the simulator
 * (rlog/sim_cluster.h): runs seeds (in child processes with --jobs), prints
 * each failing seed with a one-line replay command, progress on stderr,
 * a summary with seeds per minute. Built when librlog-raft is.
 */
#ifdef RLOG_HAVE_SIM_CLUSTER
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlog/sim_cluster.h"
#include "tools/cli.h"

typedef struct cl_args {
    cli_seeds sd;
    uint64_t nodes, duration_ms;
    bool raw;
    unsigned mask;
} cl_args;

static int parse(cli_args *a, cl_args *s)
{
    cli_seeds_init(&s->sd);
    s->nodes = 3;
    s->duration_ms = 4000;
    while (a->i < a->argc) {
        const char *v = NULL;
        int r;
        if ((r = cli_opt_seeds(a, &s->sd)) != 0 ||
            (r = cli_opt_u64(a, "--nodes", &s->nodes, 3, 5)) != 0 ||
            (r = cli_opt_u64(a, "--duration-ms", &s->duration_ms, 100, 600000)) != 0) {
            if (r < 0)
                return -1;
        } else if ((r = cli_opt(a, "--workload", &v)) != 0) {
            if (r < 0)
                return -1; /* "cluster": how we got here */
        } else if (!strcmp(a->argv[a->i], "--raw-libraft")) {
            s->raw = true;
            a->i++;
        } else {
            cli_usage_error("sim", "unknown option '%s' for the cluster workload", a->argv[a->i]);
            return -1;
        }
    }
    if (s->nodes != 3 && s->nodes != 5) {
        cli_usage_error("sim", "--nodes must be 3 or 5");
        return -1;
    }
    if (rlog_sim_cluster_parse_faults(s->sd.faults, &s->mask) != 0) {
        cli_usage_error("sim",
                        "unknown fault family in '%s' (all, none, or a list of crash,power,"
                        "partition,net,disk,corrupt,membership)",
                        s->sd.faults);
        return -1;
    }
    cli_seeds_finish(&s->sd);
    return 0;
}

static int run_one(const cl_args *s, uint64_t seed, rlog_sim_cluster_result *r)
{
    rlog_sim_cluster_options o;
    rlog_sim_cluster_options_init(&o, seed);
    o.nodes = (unsigned)s->nodes;
    o.duration_ms = (uint32_t)s->duration_ms;
    o.faults = s->mask;
    o.raw_libraft = s->raw;
    if (s->sd.trace)
        o.trace = cli_print_line;
    return rlog_sim_cluster_run(&o, r);
}

static void report_failure(const cl_args *s, uint64_t seed, const rlog_sim_cluster_result *r)
{
    printf("FAIL seed=%" PRIu64 ": %s\n", seed, r->message);
    printf("  replay: rlog sim --workload cluster --seed %" PRIu64 " --nodes %" PRIu64
           " --duration-ms %" PRIu64 " --faults %s%s --trace\n",
           seed, s->nodes, s->duration_ms, s->sd.faults, s->raw ? " --raw-libraft" : "");
}

typedef struct cl_totals {
    uint64_t seeds, failed;
    rlog_sim_cluster_result sum;
} cl_totals;

static void add(cl_totals *t, const rlog_sim_cluster_result *r)
{
    t->seeds++;
    t->failed += r->failed != 0;
    rlog_sim_cluster_result_add(&t->sum, r);
    t->sum.trace_hash ^= r->trace_hash;
}

/* In seed order, in the parent: counts the seed's result, reports its
 * failure, shows progress. */
static void seed_done(cl_args *s, cl_totals *t, uint64_t seed, const rlog_sim_cluster_result *r)
{
    add(t, r);
    if (r->failed)
        report_failure(s, seed, r);
    if (!s->sd.trace)
        cli_seeds_progress(&s->sd, t->seeds, t->failed, false);
}

static void child(const cl_args *s, uint64_t k, int fd)
{
    for (uint64_t i = k; i < s->sd.seeds; i += s->sd.jobs) {
        rlog_sim_cluster_result r;
        if (run_one(s, s->sd.from + i, &r) != 0) {
            memset(&r, 0, sizeof r);
            r.failed = 1;
            snprintf(r.message, sizeof r.message, "the run could not be made (out of memory)");
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

static int run_seeds(cl_args *s, cl_totals *t)
{
    uint64_t jobs = s->sd.trace || s->sd.seeds < 2 ? 1 : s->sd.jobs;
    if (jobs == 1) {
        for (uint64_t i = 0; i < s->sd.seeds; i++) {
            rlog_sim_cluster_result r;
            if (run_one(s, s->sd.from + i, &r) != 0)
                return CLI_EXIT_ERROR;
            seed_done(s, t, s->sd.from + i, &r);
        }
        return 0;
    }
    int fds[64];
    pid_t pids[64];
    for (uint64_t k = 0; k < jobs; k++) {
        int p[2];
        if (pipe(p) != 0)
            return CLI_EXIT_ERROR;
        fflush(stdout);
        pids[k] = fork();
        if (pids[k] == 0) {
            close(p[0]);
            cl_args one = *s;
            one.sd.jobs = jobs;
            child(&one, k, p[1]);
        }
        close(p[1]);
        fds[k] = p[0];
    }
    int rc = 0;
    for (uint64_t i = 0; i < s->sd.seeds; i++) {
        rlog_sim_cluster_result r;
        if (read_full(fds[i % jobs], &r, sizeof r) != 0) {
            fprintf(stderr, "rlog sim: a worker died at seed %" PRIu64 "\n", s->sd.from + i);
            rc = CLI_EXIT_ERROR;
            break;
        }
        seed_done(s, t, s->sd.from + i, &r);
    }
    for (uint64_t k = 0; k < jobs; k++) {
        close(fds[k]);
        waitpid(pids[k], NULL, 0);
    }
    return rc;
}

int cli_cmd_sim_cluster(cli_args *a)
{
    cl_args s;
    memset(&s, 0, sizeof s);
    if (parse(a, &s) != 0)
        return CLI_EXIT_USAGE;
    cl_totals t;
    memset(&t, 0, sizeof t);
    int rc = run_seeds(&s, &t);
    if (!s.sd.trace)
        cli_seeds_progress(&s.sd, t.seeds, t.failed, true);
    const rlog_sim_cluster_result *r = &t.sum;
    printf("workload=cluster nodes=%" PRIu64 " seeds=%" PRIu64 " failed=%" PRIu64
           " virtual_s=%.1f events=%" PRIu64 " ops_ok=%" PRIu64 " ops_failed=%" PRIu64
           " ops_unknown=%" PRIu64 "\n",
           s.nodes, t.seeds, t.failed, r->virtual_ms / 1000.0, r->events, r->ops_ok, r->ops_failed,
           r->ops_unknown);
    printf("crashes=%" PRIu64 " power_losses=%" PRIu64 " recovery_crashes=%" PRIu64
           " restarts=%" PRIu64 " partitions=%" PRIu64 " corruptions=%" PRIu64
           " refused_starts=%" PRIu64 " membership_changes=%" PRIu64 " snapshots=%" PRIu64
           " installed=%" PRIu64 " leaders=%" PRIu64 " lin_unknown=%" PRIu64 "\n",
           r->crashes, r->power_losses, r->recovery_crashes, r->restarts, r->partitions,
           r->corruptions, r->refused_starts, r->membership_changes, r->snapshots_taken,
           r->snapshots_installed, r->leaders, r->linearizability_unknown);
    cli_seeds_summary_end(&s.sd, t.seeds, r->trace_hash);
    if (rc)
        return rc;
    return t.failed ? 1 : 0;
}
#endif
