/*
 * The read-only commands: verify, dump, stat. Each opens the log with
 * RLOG_OPEN_READONLY (no lock, nothing written, a torn tail reported but not
 * cut) and reads it through the public API; stat and the messages of verify
 * also read the 64-byte segment headers (log/format.h) to name segments.
 *
 * dump and stat also recognise a Raft store (raft_storage.h): a directory
 * whose first user record is a well-formed Raft record and that
 * rlog_rs_open (read-only) replays without error. Both checks are needed:
 * `rlog write` also appends type 16 records, but never ones that decode.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "rlog/raft_storage.h"
#include "tools/cli.h"
#include "tools/pattern.h"

/* ---- segment files, read directly (headers only) ---- */

typedef struct seg_info {
    uint64_t seq;
    char name[64];
    uint64_t size;
    bool hdr_ok;        /* header decodes and checks */
    uint64_t first_lsn; /* from the header when hdr_ok */
} seg_info;

static bool seg_name_parse(const char *name, uint64_t *seq)
{
    /* "%016" PRIx64 ".seg" */
    if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = name[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *seq = v;
    return true;
}

static int seg_cmp(const void *a, const void *b)
{
    const seg_info *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void seg_read_header(rlog_vfs *v, const char *dir, seg_info *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    rlog_file *f = NULL;
    if (v->open(v, path, RLOG_VFS_RDONLY, &f))
        return;
    v->size(v, f, &s->size);
    uint8_t hdr[RLG_SEG_HEADER_SIZE];
    size_t done = 0;
    rlg_seg_header h;
    if (!v->pread(v, f, hdr, sizeof hdr, 0, &done) && done == sizeof hdr &&
        rlg_seg_header_decode(hdr, &h) == RLG_HDR_OK) {
        s->hdr_ok = true;
        s->first_lsn = h.first_lsn;
    }
    v->close(v, f);
}

/* The segment files of dir, sorted by sequence. *out: free(). */
static int seg_list(const char *dir, seg_info **out, size_t *n)
{
    rlog_vfs *v = rlog_vfs_posix();
    char **names = NULL;
    size_t count = 0;
    *out = NULL;
    *n = 0;
    int e = v->list(v, dir, &names, &count);
    if (e)
        return e;
    seg_info *segs = calloc(count ? count : 1, sizeof *segs);
    if (!segs) {
        rlog_vfs_free_names(names, count);
        return RLOG_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (!seg_name_parse(names[i], &segs[k].seq))
            continue;
        snprintf(segs[k].name, sizeof segs[k].name, "%s", names[i]);
        seg_read_header(v, dir, &segs[k]);
        k++;
    }
    rlog_vfs_free_names(names, count);
    qsort(segs, k, sizeof *segs, seg_cmp);
    *out = segs;
    *n = k;
    return 0;
}

/* Name of the segment that holds lsn, judged from the headers ("?" when
 * unknown). The log's segments are segs[0 .. nlog-1]. */
static const char *seg_holding(const seg_info *segs, size_t nlog, uint64_t lsn)
{
    const char *name = "?";
    for (size_t i = 0; i < nlog; i++)
        if (segs[i].hdr_ok && segs[i].first_lsn <= lsn)
            name = segs[i].name;
    return name;
}

/* ---- opening read-only ---- */

typedef struct ro_open {
    const char *cmd;
    const char *dir;
    rlog_log *log;
    rlog_open_report rep;
    int rv;
} ro_open;

static int ro_do_open(ro_open *o)
{
    rlog_options opts;
    rlog_options_init(&opts);
    opts.flags = RLOG_OPEN_READONLY;
    memset(&o->rep, 0, sizeof o->rep);
    o->rv = rlog_open(o->dir, &opts, &o->log, &o->rep);
    return o->rv;
}

static const char *ro_status_name(const rlog_open_report *rep)
{
    switch (rep->status) {
    case RLOG_TAIL_CLEAN:
        return "clean";
    case RLOG_TAIL_TORN:
        return "torn";
    default:
        return "corrupt";
    }
}

/* Prints why an open failed; returns the exit code. */
static int ro_open_failed(const ro_open *o)
{
    fprintf(stderr, "rlog %s: %s: %s: %s\n", o->cmd, o->dir, rlog_errname(o->rv),
            o->rep.message[0] ? o->rep.message : rlog_strerror(o->rv));
    return cli_exit_for_open(o->rv);
}

/* Parses "DIR" plus the options a command takes. */
typedef struct ro_args {
    const char *dir;
    bool have_seed;
    uint64_t seed;
    uint64_t from;
    bool json;
} ro_args;

static int ro_parse(cli_args *a, ro_args *out, bool seed, bool from_json)
{
    memset(out, 0, sizeof *out);
    out->from = 1;
    while (a->i < a->argc) {
        int r = 0;
        if (seed && (r = cli_opt_u64(a, "--seed", &out->seed, 0, UINT64_MAX)) != 0) {
            out->have_seed = r > 0;
        } else if (from_json && (r = cli_opt_u64(a, "--from", &out->from, 0, UINT64_MAX)) != 0) {
        } else if (from_json && strcmp(a->argv[a->i], "--json") == 0) {
            out->json = true;
            a->i++;
        } else if (a->argv[a->i][0] == '-') {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        } else if (!out->dir) {
            out->dir = a->argv[a->i++];
        } else {
            return cli_usage_error(a->cmd, "unexpected argument '%s'", a->argv[a->i]);
        }
        if (r < 0)
            return CLI_EXIT_USAGE;
    }
    if (!out->dir)
        return cli_usage_error(a->cmd, "missing DIR");
    return CLI_EXIT_OK;
}

/* ---- Raft store detection ---- */

/* Opens dir as a Raft store, read-only, if it is one (see the top of this
 * file): *out is then a handle to close with rlog_rs_close, else NULL. */
static void raft_try_open(ro_open *o, rlog_rs **out)
{
    *out = NULL;
    if (o->rep.last_lsn < o->rep.first_lsn)
        return; /* no record: nothing says what the log is */
    rlog_record rec;
    void *payload = NULL;
    if (rlog_get(o->log, o->rep.first_lsn, 0, &rec, &payload) != RLOG_OK)
        return;
    char line[256];
    int rv = rlog_rs_format_record(rec.type, rec.data, rec.len, line, sizeof line);
    rlog_free(payload);
    if (rv != RLOG_OK)
        return;
    rlog_rs_options opts;
    rlog_rs_options_init(&opts);
    opts.log.flags = RLOG_OPEN_READONLY;
    rlog_rs_open_report rep;
    rlog_rs *rs = NULL;
    if (rlog_rs_open(o->dir, &opts, &rs, &rep) == RLOG_OK && rep.records > 0)
        *out = rs;
    else
        rlog_rs_close(rs);
}

/* Writes s as the body of a JSON string (quotes and escapes). */
static void json_string(const char *s, FILE *out)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* ---- verify ---- */

typedef struct vf_state {
    uint64_t records;    /* user records read */
    uint64_t last_lsn;   /* last LSN read */
    uint64_t mismatches; /* payloads off the pattern (--seed) */
} vf_state;

/* Pattern mismatches printed one by one; the rest are counted. */
#define VF_MISMATCHES_SHOWN 10

/* Reads every record; returns false after printing a corruption message. */
static bool vf_scan(ro_open *o, const ro_args *args, const seg_info *segs, size_t nlog,
                    vf_state *st)
{
    rlog_iter *it = NULL;
    int rv = rlog_iter_open(o->log, 1, 0, &it);
    if (rv) {
        printf("error: cannot iterate: %s: %s\n", rlog_errname(rv), rlog_errmsg(o->log));
        return false;
    }
    uint64_t expect = o->rep.first_lsn;
    rlog_record rec;
    bool ok = true;
    while (ok && (rv = rlog_iter_next(it, &rec)) == RLOG_OK) {
        if (rec.lsn != expect) {
            printf("corrupt: %s: LSN %" PRIu64 " follows LSN %" PRIu64 " (expected %" PRIu64 ")\n",
                   seg_holding(segs, nlog, rec.lsn), rec.lsn, st->last_lsn, expect);
            ok = false;
            break;
        }
        if (args->have_seed) {
            size_t off = cli_pattern_check(args->seed, rec.lsn, rec.data, rec.len);
            if (off != rec.len && st->mismatches++ < VF_MISMATCHES_SHOWN)
                printf("corrupt: segment %s: LSN %" PRIu64 " (type %u, %u bytes): payload "
                       "differs from the pattern of seed %" PRIu64 " at byte %zu\n",
                       seg_holding(segs, nlog, rec.lsn), rec.lsn, rec.type, rec.len, args->seed,
                       off);
        }
        st->records++;
        st->last_lsn = rec.lsn;
        expect = rec.lsn + 1;
    }
    if (ok && rv != RLOG_EEND) {
        printf("corrupt: segment %s: reading LSN %" PRIu64 ": %s: %s\n",
               seg_holding(segs, nlog, expect), expect, rlog_errname(rv), rlog_errmsg(o->log));
        ok = false;
    }
    if (ok && st->last_lsn != o->rep.last_lsn) {
        printf("corrupt: the log holds LSNs %" PRIu64 "..%" PRIu64 " but reading stopped after "
               "LSN %" PRIu64 "\n",
               o->rep.first_lsn, o->rep.last_lsn, st->last_lsn);
        ok = false;
    }
    rlog_iter_close(it);
    if (st->mismatches > VF_MISMATCHES_SHOWN)
        printf("corrupt: %" PRIu64 " records in all differ from the pattern of seed %" PRIu64 "\n",
               st->mismatches, args->seed);
    return ok && st->mismatches == 0;
}

int cli_cmd_verify(cli_args *a)
{
    ro_args args;
    int ex = ro_parse(a, &args, true, false);
    if (ex)
        return ex;
    ro_open o = {.cmd = "verify", .dir = args.dir};
    seg_info *segs = NULL;
    size_t nsegs = 0;
    if (ro_do_open(&o)) {
        ex = cli_exit_for_open(o.rv);
        if (ex != CLI_EXIT_CORRUPT)
            return ro_open_failed(&o);
        else {
            printf("corrupt: %s\n", o.rep.message);
            printf("status=corrupt segments=%" PRIu64 " records=%" PRIu64 " first_lsn=%" PRIu64
                   " last_lsn=%" PRIu64 "\n",
                   o.rep.segments, o.rep.records, o.rep.first_lsn, o.rep.last_lsn);
        }
        return ex;
    }
    seg_list(args.dir, &segs, &nsegs);
    size_t nlog = (size_t)(o.rep.segments < nsegs ? o.rep.segments : nsegs);
    if (o.rep.status == RLOG_TAIL_TORN)
        printf("torn: %s\n", o.rep.message);
    vf_state st = {.last_lsn = o.rep.first_lsn - 1};
    bool ok = vf_scan(&o, &args, segs, nlog, &st);
    const char *status = !ok ? "corrupt" : ro_status_name(&o.rep);
    printf("status=%s segments=%" PRIu64 " records=%" PRIu64 " first_lsn=%" PRIu64
           " last_lsn=%" PRIu64 "\n",
           status, o.rep.segments, st.records, o.rep.first_lsn, o.rep.last_lsn);
    rlog_close(o.log);
    free(segs);
    if (!ok)
        return CLI_EXIT_CORRUPT;
    return o.rep.status == RLOG_TAIL_TORN ? CLI_EXIT_TORN : CLI_EXIT_OK;
}

/* ---- dump ---- */

static void fmt_hex(const rlog_record *rec, size_t max, FILE *out)
{
    const uint8_t *p = rec->data;
    size_t n = rec->len < max ? rec->len : max;
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", p[i]);
}

#define FMT_HEX_PREFIX 16

/* The generic formatter: any type. */
static void fmt_generic(const rlog_record *rec, bool json, FILE *out)
{
    if (json) {
        fprintf(out, "{\"lsn\":%" PRIu64 ",\"type\":%u,\"len\":%u,\"hex\":\"", rec->lsn, rec->type,
                rec->len);
        fmt_hex(rec, FMT_HEX_PREFIX, out);
        fprintf(out, "\",\"truncated\":%s}", rec->len > FMT_HEX_PREFIX ? "true" : "false");
    } else {
        fprintf(out, "lsn=%" PRIu64 " type=%u len=%u data=", rec->lsn, rec->type, rec->len);
        fmt_hex(rec, FMT_HEX_PREFIX, out);
        if (rec->len > FMT_HEX_PREFIX)
            fputs("...", out);
    }
}

/* A Raft record, decoded: "lsn=.. type=.. len=.. <rlog_rs_format_record's
 * line>", or in JSON with the line as "raft". A payload that does not
 * decode shows its reason ("BAD Raft record: ..."). */
static void fmt_raft(const rlog_record *rec, bool json, FILE *out)
{
    char line[512];
    rlog_rs_format_record(rec->type, rec->data, rec->len, line, sizeof line);
    if (json) {
        fprintf(out, "{\"lsn\":%" PRIu64 ",\"type\":%u,\"len\":%u,\"raft\":", rec->lsn, rec->type,
                rec->len);
        json_string(line, out);
        fputc('}', out);
    } else {
        fprintf(out, "lsn=%" PRIu64 " type=%u len=%u %s", rec->lsn, rec->type, rec->len, line);
    }
}

void cli_format_record(const rlog_record *rec, bool json, bool raft, FILE *out)
{
    /* In a log that is not a Raft store the same types are someone else's. */
    bool raft_type = rec->type >= RLOG_RS_TYPE_HARD_STATE && rec->type <= RLOG_RS_TYPE_SNAPSHOT;
    if (raft && raft_type)
        fmt_raft(rec, json, out);
    else
        fmt_generic(rec, json, out);
}

int cli_cmd_dump(cli_args *a)
{
    ro_args args;
    int ex = ro_parse(a, &args, false, true);
    if (ex)
        return ex;
    ro_open o = {.cmd = "dump", .dir = args.dir};
    if (ro_do_open(&o))
        return ro_open_failed(&o);
    if (o.rep.status == RLOG_TAIL_TORN)
        fprintf(stderr, "rlog dump: torn tail (not shown): %s\n", o.rep.message);
    rlog_rs *rs = NULL;
    raft_try_open(&o, &rs);
    bool raft = rs != NULL;
    rlog_rs_close(rs);
    rlog_iter *it = NULL;
    int rv = rlog_iter_open(o.log, args.from, 0, &it);
    rlog_record rec;
    while (!rv && (rv = rlog_iter_next(it, &rec)) == RLOG_OK) {
        cli_format_record(&rec, args.json, raft, stdout);
        fputc('\n', stdout);
    }
    ex = CLI_EXIT_OK;
    if (rv != RLOG_EEND) {
        fflush(stdout);
        fprintf(stderr, "rlog dump: %s: %s: %s\n", args.dir, rlog_errname(rv), rlog_errmsg(o.log));
        ex = rv == RLOG_ECORRUPT ? CLI_EXIT_CORRUPT : CLI_EXIT_ERROR;
    }
    if (it)
        rlog_iter_close(it);
    rlog_close(o.log);
    if (fflush(stdout) != 0 && !ex)
        ex = CLI_EXIT_ERROR;
    return ex;
}

/* ---- stat ---- */

int cli_cmd_stat(cli_args *a)
{
    ro_args args;
    int ex = ro_parse(a, &args, false, false);
    if (ex)
        return ex;
    ro_open o = {.cmd = "stat", .dir = args.dir};
    int rv = ro_do_open(&o);
    seg_info *segs = NULL;
    size_t nsegs = 0;
    int e = seg_list(args.dir, &segs, &nsegs);
    if (rv && (rv == RLOG_ENOTLOG || e)) {
        free(segs);
        return ro_open_failed(&o);
    }
    size_t nlog = rv ? nsegs : (size_t)(o.rep.segments < nsegs ? o.rep.segments : nsegs);
    printf("dir=%s\n", args.dir);
    printf("log_id=%016" PRIx64 "\n", o.rep.log_id);
    printf("status=%s\n", rv ? "corrupt" : ro_status_name(&o.rep));
    if (rv)
        printf("open_error=%s\n", rlog_errname(rv));
    printf("message=%s\n", o.rep.message);
    printf("segments=%" PRIu64 "\n", rv ? (uint64_t)nsegs : o.rep.segments);
    uint64_t total = 0;
    for (size_t i = 0; i < nsegs; i++) {
        total += segs[i].size;
        printf("segment=%s size=%" PRIu64 " first_lsn=", segs[i].name, segs[i].size);
        if (segs[i].hdr_ok)
            printf("%" PRIu64, segs[i].first_lsn);
        else
            printf("none");
        printf(" role=%s\n", i < nlog ? "log" : "spare");
    }
    printf("bytes=%" PRIu64 "\n", total);
    printf("first_lsn=%" PRIu64 "\n", o.rep.first_lsn);
    printf("last_lsn=%" PRIu64 "\n", o.rep.last_lsn);
    printf("records=%" PRIu64 "\n", o.rep.records);
    printf("proven_durable=%" PRIu64 "\n", o.rep.proven_durable);
    free(segs);
    if (rv)
        return cli_exit_for_open(rv);
    rlog_rs *rs = NULL;
    raft_try_open(&o, &rs);
    printf("raft=%s\n", rs ? "yes" : "no");
    if (rs) {
        char sum[2048];
        rlog_rs_summary(rs, sum, sizeof sum);
        fputs(sum, stdout);
        rlog_rs_close(rs);
    }
    rlog_close(o.log);
    return CLI_EXIT_OK;
}
