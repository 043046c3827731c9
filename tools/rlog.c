/*
 * rlog — the command-line tool: a load generator (write), a checker
 * (verify), and two read-only views (dump, stat) of a log directory.
 * docs/cli.md is the reference for commands, output lines and exit codes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

typedef struct cli_command {
    const char *name;
    int (*run)(cli_args *a);
    const char *synopsis;
    const char *summary;
} cli_command;

static const cli_command cli_commands[] = {
    {"write", cli_cmd_write,
     "rlog write DIR --count N --size BYTES [--batch K (1)] [--sync each|group|none (each)]\n"
     "           [--threads T (1)] [--seed S (1)] [--segment-size BYTES (the log's; new: 64M)]\n"
     "           [--serve URL [--linger S (10)] [--followers N (0)] [--id N (1)]\n"
     "            [--tls-cert FILE --tls-key FILE --tls-ca FILE]]",
     "append N pattern records (creating the log if needed), print each durable LSN;\n"
     "    with --serve, also ship the log to followers (then wait up to --linger s for them)"},
    {"verify", cli_cmd_verify, "rlog verify DIR [--seed S (none: payloads not checked)]",
     "check a log read-only (a Raft store: also its snapshot file); exit 0 clean,\n"
     "    1 torn tail, 2 corrupt, 3 not a log"},
    {"dump", cli_cmd_dump,
     "rlog dump DIR|--segment FILE [--from LSN (1)] [--to LSN (last)] [--limit N (all)]\n"
     "          [--type T[,T..] (all)] [--from-index I] [--to-index J] [--raw] [--json]\n"
     "          [--stats] [--follow] [--decode CMD]",
     "print one line per record (read-only); on a damaged log every record before the\n"
     "    damage, then a 'damage:' line (exit 2). --raw: whole payloads in hex (default: the\n"
     "    first 16 bytes); --stats: per-type counts and bytes instead of records; --follow:\n"
     "    keep printing records as they are appended (like tail -f); --segment: one segment\n"
     "    file alone; --from-index/--to-index: a Raft store's batches holding those entries;\n"
     "    --decode: run CMD (sh -c) per record (Raft: per entry) with the payload on stdin"},
    {"stat", cli_cmd_stat, "rlog stat DIR",
     "print the log's id, segments, positions and state (and a Raft store's summary)"},
    {"repair", cli_cmd_repair, "rlog repair DIR [--dry-run] [--backup DIR (DIR.repair-TIME)]",
     "cut a damaged log back to its valid prefix, moving every byte it cuts into the\n"
     "    backup directory; prints what moved and the LSN range (Raft: the index) lost.\n"
     "    Refuses while a writer holds the log; exit 0 repaired or nothing to do"},
    {"purge", cli_cmd_purge, "rlog purge DIR --before LSN | --before-index I",
     "delete the oldest segments whose records are all below LSN (a Raft store: whose\n"
     "    entries are all below index I, which the snapshot must cover), with the API's\n"
     "    safety (sealed, successor durable, never the active one)"},
    {"ship", cli_cmd_ship,
     "rlog ship serve DIR --listen URL [--id N (1)] [--interval MS (1000)] [TLS]\n"
     "       rlog ship follow DIR --leader URL [--id N (random)] [--leader-id N (any)]\n"
     "                        [--until LSN (none)] [--interval MS (1000)] [TLS]\n"
     "       rlog ship status URL [--timeout MS (3000)] [--id N (random)] [--leader-id N (any)]\n"
     "                        [TLS]",
     "serve a log to followers / keep DIR a byte-identical copy of a leader's log\n"
     "    (prints durable LSNs) / ask a leader for its followers' positions;\n"
     "    TLS = --tls-cert FILE --tls-key FILE --tls-ca FILE (a tls+tcp:// URL, mutual\n"
     "    authentication; the certificate is named rlog-<id>: docs/security.md)"},
    {"sim", cli_cmd_sim,
     "rlog sim [--seed S | --seeds N (100) [--from S (0)]] [--steps K (1000)]\n"
     "         [--crashes C (5)] [--faults LIST (all)]\n"
     "         [--workload log|raft|ship|all (all)] [--dir-sync-drop] [--jobs J (1)]\n"
     "         [--trace]\n"
     "rlog sim --workload cluster [--seed S | --seeds N (100) [--from S (0)]]\n"
     "         [--nodes 3|5 (3)] [--duration-ms MS (4000)] [--faults LIST (all)]\n"
     "         [--raw-libraft] [--jobs J (1)] [--trace]",
     "run the deterministic crash simulator; print failing seeds with a replay command"},
};
#define CLI_NCOMMANDS (sizeof cli_commands / sizeof cli_commands[0])

void cli_print_usage(FILE *f, const char *cmd)
{
    if (!cmd)
        fprintf(f, "usage: rlog COMMAND DIR [OPTIONS]   (rlog COMMAND --help for one command)\n\n");
    for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
        if (cmd && strcmp(cmd, cli_commands[i].name) != 0)
            continue;
        fprintf(f, "%s%s\n    %s\n", cmd ? "usage: " : "  ", cli_commands[i].synopsis,
                cli_commands[i].summary);
    }
    if (!cmd)
        fprintf(f,
                "\n  rlog --version\n\nexit codes: 0 ok/clean, 1 torn tail, 2 corruption, 3 not a "
                "log or usage error, 4 other error\nresults go to stdout, messages to stderr; "
                "see docs/cli.md and rlog(1)\n");
}

void cli_print_line(void *data, const char *line)
{
    (void)data;
    fputs(line, stdout);
    fputc('\n', stdout);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "rlog%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_print_usage(stderr, cmd);
    return CLI_EXIT_USAGE;
}

int cli_opt(cli_args *a, const char *name, const char **val)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *val = arg + n + 1;
        a->i++;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (a->i + 1 >= a->argc) {
        cli_usage_error(a->cmd, "option %s needs a value", name);
        return -1;
    }
    *val = a->argv[a->i + 1];
    a->i += 2;
    return 1;
}

int cli_arg_dir(cli_args *a, const char **dir)
{
    const char *arg = a->argv[a->i];
    if (arg[0] == '-')
        cli_usage_error(a->cmd, "unknown option '%s'", arg);
    else if (*dir)
        cli_usage_error(a->cmd, "unexpected argument '%s'", arg);
    else {
        *dir = arg;
        a->i++;
        return 1;
    }
    return -1;
}

int cli_parse_dir_opts(cli_args *a, const char **dir, cli_opt_fn opt, void *ctx)
{
    while (a->i < a->argc) {
        int r = opt(a, ctx);
        if (r == 0)
            r = cli_arg_dir(a, dir);
        if (r < 0)
            return CLI_EXIT_USAGE;
    }
    if (!*dir)
        return cli_usage_error(a->cmd, "missing DIR");
    return CLI_EXIT_OK;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return false;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift) {
        end++;
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    if (*end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

int cli_opt_u64(cli_args *a, const char *name, uint64_t *out, uint64_t min, uint64_t max)
{
    const char *val = NULL;
    int r = cli_opt(a, name, &val);
    if (r <= 0)
        return r;
    uint64_t v = 0;
    if (!cli_parse_u64(val, &v)) {
        cli_usage_error(a->cmd, "%s: '%s' is not a number", name, val);
        return -1;
    }
    if (v < min || v > max) {
        cli_usage_error(a->cmd, "%s: %s is out of range [%llu, %llu]", name, val,
                        (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 1;
}

int cli_exit_for_open(int rv)
{
    switch (rv) {
    case RLOG_OK:
        return CLI_EXIT_OK;
    case RLOG_ECORRUPT:
    case RLOG_EFOREIGN:
        return CLI_EXIT_CORRUPT;
    case RLOG_ENOTLOG:
    case RLOG_EVERSION:
    case RLOG_EINVAL:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_ERROR;
    }
}

static bool cli_is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

bool cli_quiet;

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* --quiet anywhere: taken out of argv */
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            cli_quiet = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            i--;
        }
    if (argc < 2) {
        cli_print_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("rlog %d.%d.%d (on-disk format version 1)\n", RLOG_VERSION_MAJOR, RLOG_VERSION_MINOR,
               RLOG_VERSION_PATCH);
        return CLI_EXIT_OK;
    }
    if (cli_is_help(argv[1])) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < CLI_NCOMMANDS; i++)
                if (strcmp(argv[2], cli_commands[i].name) == 0) {
                    cli_print_usage(stdout, argv[2]);
                    return CLI_EXIT_OK;
                }
            return cli_usage_error(NULL, "no such command '%s'", argv[2]);
        }
        cli_print_usage(stdout, NULL);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
        if (strcmp(argv[1], cli_commands[i].name) != 0)
            continue;
        for (int j = 2; j < argc; j++)
            if (cli_is_help(argv[j]) && strcmp(argv[j], "help") != 0) {
                cli_print_usage(stdout, argv[1]);
                return CLI_EXIT_OK;
            }
        cli_args a = {.argc = argc, .argv = argv, .i = 2, .cmd = cli_commands[i].name};
        return cli_commands[i].run(&a);
    }
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
