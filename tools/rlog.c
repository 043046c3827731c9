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
     "rlog write DIR --count N --size BYTES [--batch K] [--sync each|group|none]\n"
     "           [--threads T] [--seed S] [--segment-size BYTES]\n"
     "           [--serve URL [--linger S] [--followers N] [--id N]\n"
     "            [--tls-cert FILE --tls-key FILE --tls-ca FILE]]",
     "append N pattern records (creating the log if needed), print each durable LSN;\n"
     "    with --serve, also ship the log to followers (then wait up to --linger s for them)"},
    {"verify", cli_cmd_verify, "rlog verify DIR [--seed S]",
     "check a log read-only; exit 0 clean, 1 torn tail, 2 corrupt, 3 not a log"},
    {"dump", cli_cmd_dump, "rlog dump DIR [--from LSN] [--json]",
     "print one line per record (read-only)"},
    {"stat", cli_cmd_stat, "rlog stat DIR", "print the log's id, segments, positions and state"},
    {"ship", cli_cmd_ship,
     "rlog ship serve DIR --listen URL [--id N] [--interval MS] [TLS]\n"
     "       rlog ship follow DIR --leader URL [--id N] [--until LSN] [--interval MS] [TLS]\n"
     "       rlog ship status URL [--timeout MS]",
     "serve a log to followers / keep DIR a byte-identical copy of a leader's log\n"
     "    (prints durable LSNs) / ask a leader for its followers' positions;\n"
     "    TLS = --tls-cert FILE --tls-key FILE --tls-ca FILE (a tls+tcp:// URL, mutual\n"
     "    authentication; the certificate is named rlog-<id>: docs/security.md)"},
    {"sim", cli_cmd_sim,
     "rlog sim [--seed S | --seeds N [--from S]] [--steps K] [--crashes C]\n"
     "         [--faults LIST] [--workload log|raft|ship|all] [--jobs J] [--trace]\n"
     "rlog sim --workload cluster [--seed S | --seeds N [--from S]] [--nodes 3|5]\n"
     "         [--duration-ms MS] [--faults LIST] [--raw-libraft] [--jobs J] [--trace]",
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
        fprintf(f, "\nexit codes: 0 ok/clean, 1 torn tail, 2 corruption, 3 not a log or usage "
                   "error, 4 other error\nsee docs/cli.md\n");
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1])) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < CLI_NCOMMANDS; i++)
                if (strcmp(argv[2], cli_commands[i].name) == 0) {
                    cli_print_usage(stdout, argv[2]);
                    return CLI_EXIT_OK;
                }
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
