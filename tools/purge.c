/*
 * rlog purge DIR --before LSN | --before-index I: deletes the oldest
 * segments, for operators, with the library's safety (rlog_delete_prefix:
 * only sealed segments whose records are all below the LSN and whose
 * successor is durable, oldest first, each durably; never the active one).
 * For a Raft store the bound is an entry index and only entries the current
 * snapshot covers (index <= snapshot index + 1) may go: the LSN is that of
 * the batch record holding entry I. The store is closed right after (the
 * in-memory index of the handle used here is not updated). docs/cli.md,
 * "rlog purge".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raft_storage/rs_internal.h"
#include "tools/cli.h"

typedef struct pg_args {
    const char *dir;
    uint64_t before;
    bool by_index;
    bool have;
} pg_args;

static int pg_parse(cli_args *a, pg_args *out)
{
    memset(out, 0, sizeof *out);
    while (a->i < a->argc) {
        int r = 0;
        if ((r = cli_opt_u64(a, "--before", &out->before, 1, UINT64_MAX)) != 0) {
            out->have = true;
        } else if ((r = cli_opt_u64(a, "--before-index", &out->before, 1, UINT64_MAX)) != 0) {
            out->have = out->by_index = true;
        } else if ((r = cli_arg_dir(a, &out->dir)) < 0) {
            return CLI_EXIT_USAGE;
        }
        if (r < 0)
            return CLI_EXIT_USAGE;
    }
    if (!out->dir)
        return cli_usage_error(a->cmd, "missing DIR");
    if (!out->have)
        return cli_usage_error(a->cmd, "--before LSN or --before-index I is required");
    return CLI_EXIT_OK;
}

/* The LSN below which a Raft store's segments may go for entries < index;
 * 0 after printing why none may. */
static uint64_t pg_raft_lsn(rlog_rs *rs, uint64_t index, const char *dir)
{
    const rlg_state *st = &rs->st;
    if (!st->snap.has || index > st->snap.v.index + 1) {
        fprintf(stderr,
                "rlog purge: %s: entries before index %" PRIu64 " are not all covered by the "
                "snapshot (%s%" PRIu64 "): only a snapshot may drop them\n",
                dir, index, st->snap.has ? "index " : "none; last index ",
                st->snap.has ? st->snap.v.index : st->ix.last);
        return 0;
    }
    if (index <= st->ix.last && index >= st->ix.first) {
        rlg_bpos p;
        rlg_index_locate(&st->ix, index, &p);
        return p.lsn;
    }
    return rs->snap_lsn; /* every entry held is covered: up to the marker */
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
    uint64_t lsn = args.before;
    if (args.by_index) {
        rlog_rs_options o;
        rlog_rs_options_init(&o);
        o.log.segment_size = cli_log_segment_size(args.dir);
        rlog_rs_open_report rrep;
        rv = rlog_rs_open(args.dir, &o, &rs, &rrep);
        if (rv) {
            fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv), rrep.message);
            return cli_exit_for_open(rv);
        }
        log = rlog_rs_log(rs);
        if ((lsn = pg_raft_lsn(rs, args.before, args.dir)) == 0) {
            rlog_rs_close(rs);
            return CLI_EXIT_USAGE;
        }
    } else {
        rlog_options o;
        rlog_options_init(&o);
        o.segment_size = cli_log_segment_size(args.dir);
        rv = rlog_open(args.dir, &o, &log, &rep);
        if (rv) {
            fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv), rep.message);
            return cli_exit_for_open(rv);
        }
    }
    uint64_t deleted = 0;
    rv = rlog_delete_prefix(log, lsn, &deleted);
    if (rv)
        fprintf(stderr, "rlog purge: %s: %s: %s\n", args.dir, rlog_errname(rv), rlog_errmsg(log));
    rlog_positions pos;
    rlog_positions_get(log, &pos);
    printf("deleted=%" PRIu64 " first_lsn=%" PRIu64 " last_lsn=%" PRIu64 "\n", deleted, pos.first,
           pos.appended);
    int crv = rs ? rlog_rs_close(rs) : rlog_close(log);
    if (!rv)
        rv = crv;
    return rv ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
