/*
 * rlog purge DIR --before LSN | --before-index I: deletes the oldest
 * segments, for operators, with the library's safety (rlog_delete_prefix:
 * only sealed segments whose records are all below the LSN and whose
 * successor is durable, oldest first, each durably; never the active one).
 * For a Raft store the bound is an entry index and only entries the current
 * snapshot covers (index <= snapshot index + 1) may go:
 * rlog_rs_purge_before decides and refuses. docs/cli.md, "rlog purge".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rlog/raft_storage.h"
#include "tools/cli.h"

typedef struct pg_args {
    const char *dir;
    uint64_t before;
    bool by_index;
    bool have;
} pg_args;

static int pg_opt(cli_args *a, void *ctx)
{
    pg_args *out = ctx;
    int r;
    if ((r = cli_opt_u64(a, "--before", &out->before, 1, UINT64_MAX)) != 0) {
        out->have = true;
    } else if ((r = cli_opt_u64(a, "--before-index", &out->before, 1, UINT64_MAX)) != 0) {
        out->have = out->by_index = true;
    }
    return r;
}

static int pg_parse(cli_args *a, pg_args *out)
{
    memset(out, 0, sizeof *out);
    int ex = cli_parse_dir_opts(a, &out->dir, pg_opt, out);
    if (ex)
        return ex;
    if (!out->have)
        return cli_usage_error(a->cmd, "--before LSN or --before-index I is required");
    return CLI_EXIT_OK;
}

int cli_cmd_purge(cli_args *a)
{
    pg_args args;
    int ex = pg_parse(a, &args);
    if (ex)
        return ex;
    rlog_rs *rs = NULL;
    rlog_log *log = NULL;
    rlog_open_report rep;
    int rv;
    uint64_t deleted = 0;
    if (args.by_index) {
        rlog_rs_options o;
        rlog_rs_options_init(&o);
        o.log.segment_size = cli_log_segment_size(args.dir);
        o.log.flags |= RLOG_OPEN_NO_RECYCLE; /* an operator purges to get the space back */
        rlog_rs_open_report rrep;
        rv = rlog_rs_open(args.dir, &o, &rs, &rrep);
        if (rv) {
            fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv), rrep.message);
            return cli_exit_for_open(rv);
        }
        log = rlog_rs_log(rs);
        rv = rlog_rs_purge_before(rs, args.before, &deleted);
        if (rv == RLOG_EINVAL) { /* not covered by the snapshot: refused */
            fprintf(stderr, "rlog purge: %s: %s\n", args.dir, rlog_rs_errmsg(rs));
            rlog_rs_close(rs);
            return CLI_EXIT_USAGE;
        }
        if (rv)
            fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv),
                    rlog_rs_errmsg(rs));
    } else {
        rlog_options o;
        rlog_options_init(&o);
        o.segment_size = cli_log_segment_size(args.dir);
        o.flags |= RLOG_OPEN_NO_RECYCLE; /* an operator purges to get the space back */
        rv = rlog_open(args.dir, &o, &log, &rep);
        if (rv) {
            fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv), rep.message);
            return cli_exit_for_open(rv);
        }
        rv = rlog_delete_prefix(log, args.before, &deleted);
        if (rv)
            fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv),
                    rlog_errmsg(log));
    }
    rlog_positions pos;
    rlog_positions_get(log, &pos);
    printf("deleted=%" PRIu64 " first_lsn=%" PRIu64 " last_lsn=%" PRIu64, deleted, pos.first,
           pos.appended);
    if (rs)
        printf(" first_index=%" PRIu64, rlog_rs_first_index(rs));
    printf("\n");
    int crv = rs ? rlog_rs_close(rs) : rlog_close(log);
    if (!rv)
        rv = crv;
    return rv ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
