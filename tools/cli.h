/*
 * Shared pieces of the rlog command-line tool (every tools .c file, linked into one
 * binary): exit codes, argument parsing, the latency histogram, the
 * per-command entry points. docs/cli.md is the user's reference.
 */
#ifndef RLOG_CLI_H
#define RLOG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rlog/log.h"

/* Exit codes, shared by every command (docs/cli.md). */
enum cli_exit {
    CLI_EXIT_OK = 0,      /* success; verify: the log is clean */
    CLI_EXIT_TORN = 1,    /* verify: a torn tail (what a writing open would cut) */
    CLI_EXIT_CORRUPT = 2, /* damage to durable data, or a payload off the pattern */
    CLI_EXIT_USAGE = 3,   /* not a log (or unreadable format), or a usage error */
    CLI_EXIT_ERROR = 4,   /* anything else: I/O error, out of memory, lock held */
};

/* The record type `rlog write` appends. */
#define CLI_RECORD_TYPE RLOG_TYPE_USER_MIN

/* ---- argument parsing ---- */

/* A cursor over argv after the command name. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *cmd; /* command name, for messages */
} cli_args;

/* Prints "rlog CMD: <msg>" and the command's usage hint to stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A trace sink for the simulator (rlog_sim_trace_fn shape): `line` and a
 * newline on stdout; `data` unused. */
void cli_print_line(void *data, const char *line);

/* If argv[i] is option `name` ("--count N" or "--count=N"), stores its
 * value in *val, advances past it and returns 1; returns 0 if it is not
 * this option, -1 (after a usage message) if the value is missing. */
int cli_opt(cli_args *a, const char *name, const char **val);
/* argv[i] matched none of the command's options: the directory when it is
 * not an option and none was given yet (stored, 1), else a usage error
 * (printed, -1). */
int cli_arg_dir(cli_args *a, const char **dir);
/* One command's option parser: takes the option at argv[i] (advancing past
 * it, 1), says it is none of its options (0), or reports a usage error
 * (printed, -1). ctx is the command's own. */
typedef int (*cli_opt_fn)(cli_args *a, void *ctx);
/* The rest of argv: options (opt) and one DIR (cli_arg_dir). CLI_EXIT_OK,
 * or CLI_EXIT_USAGE after a usage error or when DIR is missing. */
int cli_parse_dir_opts(cli_args *a, const char **dir, cli_opt_fn opt, void *ctx);
/* Parses an unsigned decimal (or 0x hex) integer with an optional K/M/G
 * (binary) suffix. Returns false on junk or overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);
/* cli_opt + cli_parse_u64: 1 parsed, 0 not this option, -1 usage error. */
int cli_opt_u64(cli_args *a, const char *name, uint64_t *out, uint64_t min, uint64_t max);

/* ---- exit code of a failed open ---- */

/* Maps an rlog_open error code to an exit code. */
int cli_exit_for_open(int rv);

/* ---- latency histogram (log-linear, <1% relative error) ---- */

#define CLI_HIST_SUB     128
#define CLI_HIST_BUCKETS (64 * CLI_HIST_SUB)
typedef struct cli_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t buckets[CLI_HIST_BUCKETS];
} cli_hist;

void cli_hist_add(cli_hist *h, uint64_t ns);
void cli_hist_merge(cli_hist *into, const cli_hist *from);
/* The value (ns, bucket's upper bound, capped at max) below which a
 * fraction q of the samples lie; 0 when empty. */
uint64_t cli_hist_quantile(const cli_hist *h, double q);

/* ---- the seed range of rlog sim (every workload; tools/sim.c) ---- */

/* What every workload takes: --seed S (one seed), --seeds N (default
 * 100), --from A, --jobs J (default 1, at most 64), --faults LIST (default
 * "all"; each workload parses its own classes) and --trace. */
typedef struct cli_seeds {
    uint64_t seed, seeds, from, jobs;
    bool one;                /* --seed was given */
    const char *faults;      /* --faults, unparsed */
    bool trace;              /* --trace */
    uint64_t t0_ns, last_ns; /* progress: start, last line */
} cli_seeds;

void cli_seeds_init(cli_seeds *s);
/* One of the options above: 1 parsed, 0 not one of them, -1 usage error. */
int cli_opt_seeds(cli_args *a, cli_seeds *s);
/* After parsing: --seed S means from = S, seeds = 1. */
void cli_seeds_finish(cli_seeds *s);
/* Progress on stderr when it is a terminal (and not --quiet): "done/total
 * seeds, failed, seeds/min", at most once a second, in place; last = 1
 * ends the line. Results stay on stdout. */
void cli_seeds_progress(cli_seeds *s, uint64_t done, uint64_t failed, bool last);
/* The last lines of every workload's summary: the trace hash of a single
 * seed (--seed), then the speed unless traced (a traced run prints nothing
 * that varies between runs). */
void cli_seeds_summary_end(const cli_seeds *s, uint64_t seeds, uint64_t trace_hash);

/* rlog sim --workload cluster (tools/sim_cluster.c; built with librlog-raft). */
int cli_cmd_sim_cluster(cli_args *a);

/* Monotonic clock in nanoseconds. */
uint64_t cli_now_ns(void);

/* ---- record formatting (dump) ---- */

/* Formats one record on one line (no newline) into out. The hook for
 * type-specific decoders: with `raft` (the directory holds a Raft store,
 * see tools/inspect.c) records of types 16..19 are decoded with
 * rlog_rs_format_record; otherwise every record is shown as hex. */
void cli_format_record(const rlog_record *rec, bool json, bool raft, FILE *out);

/* ---- segment files ---- */

/* The segment size of the log in dir: the size of its lowest-numbered
 * segment file; 0 when dir holds none (or cannot be listed). */
uint64_t cli_log_segment_size(const char *dir);
/* Segment files of dir whose valid header names another log than the one
 * most headers name (*log_id): their names in *names (free each and the
 * array); returns how many. */
size_t cli_foreign_segments(const char *dir, char ***names, uint64_t *log_id);

/* ---- Raft stores ---- */

struct rlog_rs;
enum { CLI_RAFT_NO = 0, CLI_RAFT_YES = 1, CLI_RAFT_DAMAGED = 2 };
/* Whether dir holds a Raft store, opened read-only (plus `extra` open
 * flags, e.g. RLOG_OPEN_REPAIR for the valid prefix of a damaged log):
 * CLI_RAFT_NO for another kind of log (or an empty one), CLI_RAFT_YES
 * (*out, may be NULL, gets the handle: rlog_rs_close it), or
 * CLI_RAFT_DAMAGED (msg says why: a record that breaks the rules, the
 * snapshot file missing or damaged). */
int cli_raft_probe(const char *dir, unsigned extra, struct rlog_rs **out, char *msg, size_t cap);

/* tools/raft_dump.c: a Raft store's records in dump. */
/* The entry indexes of an ENTRIES record; false for any other record. */
bool cli_raft_entry_range(const rlog_record *rec, uint64_t *first, uint64_t *last);
/* The decoded fields of a Raft record as JSON members (",\"hard_state\":{..}",
 * ",\"entries\":[{index,term,type,len}..]", ",\"truncate_from\":I",
 * ",\"snapshot\":{..}"); nothing for a record that does not decode. */
void cli_raft_json_fields(const rlog_record *rec, FILE *out);
/* dump --decode CMD: runs CMD (sh -c) with the payload on its stdin and
 * RLOG_LSN, RLOG_TYPE, RLOG_LEN set; for a Raft store's ENTRIES record once
 * per entry with index in [lo, hi], with RLOG_INDEX, RLOG_TERM,
 * RLOG_ENTRY_TYPE too. Returns 0, or the first non-zero status. */
int cli_decode_record(const rlog_record *rec, bool raft, uint64_t lo, uint64_t hi, const char *cmd);

/* ---- commands: each returns an exit code ---- */

int cli_cmd_write(cli_args *a);
int cli_cmd_verify(cli_args *a);
int cli_cmd_dump(cli_args *a);
int cli_cmd_stat(cli_args *a);
int cli_cmd_sim(cli_args *a);    /* tools/sim.c */
int cli_cmd_ship(cli_args *a);   /* tools/ship.c */
int cli_cmd_repair(cli_args *a); /* tools/repair.c */
int cli_cmd_purge(cli_args *a);  /* tools/purge.c */

/* --quiet (any command): no notes, warnings or progress on stderr; errors
 * are still printed. */
extern bool cli_quiet;

/* ---- TLS flags (--tls-cert FILE --tls-key FILE --tls-ca FILE) ---- */
typedef struct cli_tls {
    const char *cert, *key, *ca; /* NULL: not given */
} cli_tls;
/* 1 parsed one of the three flags, 0 not one of them, -1 usage error. */
int cli_opt_tls(cli_args *a, cli_tls *t);
/* Usage error (and message) unless none or all three are given. */
int cli_tls_check(const char *cmd, const cli_tls *t);

/* ---- a shipping leader inside another command (rlog write --serve) ---- */
typedef struct cli_server cli_server;
/* Serves `log` on url (server id `id`; TLS when tls has its files);
 * prints to stderr as "rlog WHO: ...". */
int cli_server_start(cli_server **out, rlog_log *log, const char *url, uint64_t id,
                     const cli_tls *tls, const char *who);
/* Runs the leader's poll loop on a thread of its own. */
int cli_server_run_thread(cli_server *s);
/* Thread-safe: new durable records. */
void cli_server_notify(cli_server *s);
/* Waits up to timeout_ns until every connected follower, and at least
 * min_followers, has the log's durable position. */
void cli_server_linger(cli_server *s, rlog_log *log, uint64_t timeout_ns, uint64_t min_followers);
/* Stops the thread, prints a last status, frees. */
void cli_server_stop(cli_server *s, rlog_log *log);
/* Usage text of one command (NULL: all) to f. */
void cli_print_usage(FILE *f, const char *cmd);

#endif
