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
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    uint64_t log_id;    /* from the header when hdr_ok */
    uint64_t first_lsn; /* from the header when hdr_ok */
} seg_info;

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
        s->log_id = h.log_id;
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
        if (!rlg_seg_name_form(names[i], &segs[k].seq))
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

size_t cli_foreign_segments(const char *dir, char ***names, uint64_t *log_id)
{
    seg_info *segs = NULL;
    size_t n = 0, k = 0;
    *names = NULL;
    *log_id = 0;
    if (seg_list(dir, &segs, &n) || n == 0) {
        free(segs);
        return 0;
    }
    /* the log's id: the one most valid headers carry (ties: the lowest
     * segment's) */
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!segs[i].hdr_ok)
            continue;
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += segs[j].hdr_ok && segs[j].log_id == segs[i].log_id;
        if (c > best) {
            best = c;
            *log_id = segs[i].log_id;
        }
    }
    char **out = calloc(n, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (segs[i].hdr_ok && segs[i].log_id != *log_id)
            out[k++] = strdup(segs[i].name);
    free(segs);
    *names = out;
    return out ? k : 0;
}

uint64_t cli_log_segment_size(const char *dir)
{
    seg_info *segs = NULL;
    size_t n = 0;
    uint64_t size = 0;
    if (!seg_list(dir, &segs, &n) && n > 0)
        size = segs[0].size;
    free(segs);
    return size;
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

/* Opens read-only; with RLOG_OPEN_REPAIR in `extra`, a damaged log opens
 * as the valid prefix a repair would keep (nothing is changed). */
static int ro_do_open(ro_open *o, unsigned extra)
{
    rlog_options opts;
    rlog_options_init(&opts);
    opts.flags = RLOG_OPEN_READONLY | extra;
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
#define RO_MAX_TYPES 16

typedef struct ro_args {
    const char *dir;
    bool have_seed;
    uint64_t seed;
    /* dump */
    uint64_t from, to, limit;
    uint64_t from_index, to_index; /* Raft stores: entries shown */
    const char *decode;            /* --decode CMD */
    const char *segment;           /* --segment FILE */
    uint16_t types[RO_MAX_TYPES];
    size_t ntypes;
    bool json, raw, stats, follow;
} ro_args;

static bool ro_flag(cli_args *a, const char *name, bool *out)
{
    if (strcmp(a->argv[a->i], name) != 0)
        return false;
    *out = true;
    a->i++;
    return true;
}

/* --type T[,T...] */
static int ro_types(cli_args *a, ro_args *out)
{
    const char *v = NULL;
    int r = cli_opt(a, "--type", &v);
    if (r <= 0)
        return r;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t x;
        if (!cli_parse_u64(t, &x) || x > RLOG_TYPE_MAX || out->ntypes == RO_MAX_TYPES) {
            cli_usage_error(a->cmd, "--type: '%s' is not a list of up to %d types 0..65535", v,
                            RO_MAX_TYPES);
            return -1;
        }
        out->types[out->ntypes++] = (uint16_t)x;
    }
    return 1;
}

static int ro_parse(cli_args *a, ro_args *out, bool seed, bool dump)
{
    memset(out, 0, sizeof *out);
    out->from = 1;
    out->to = UINT64_MAX;
    out->limit = UINT64_MAX;
    out->to_index = UINT64_MAX;
    while (a->i < a->argc) {
        int r = 0;
        if (seed && (r = cli_opt_u64(a, "--seed", &out->seed, 0, UINT64_MAX)) != 0) {
            out->have_seed = r > 0;
        } else if (dump &&
                   ((r = cli_opt_u64(a, "--from", &out->from, 0, UINT64_MAX)) != 0 ||
                    (r = cli_opt_u64(a, "--to", &out->to, 1, UINT64_MAX)) != 0 ||
                    (r = cli_opt_u64(a, "--limit", &out->limit, 1, UINT64_MAX)) != 0 ||
                    (r = ro_types(a, out)) != 0 ||
                    (r = cli_opt_u64(a, "--from-index", &out->from_index, 0, UINT64_MAX)) != 0 ||
                    (r = cli_opt_u64(a, "--to-index", &out->to_index, 0, UINT64_MAX)) != 0 ||
                    (r = cli_opt(a, "--decode", &out->decode)) != 0 ||
                    (r = cli_opt(a, "--segment", &out->segment)) != 0)) {
        } else if (dump &&
                   (ro_flag(a, "--json", &out->json) || ro_flag(a, "--raw", &out->raw) ||
                    ro_flag(a, "--stats", &out->stats) || ro_flag(a, "--follow", &out->follow))) {
        } else if ((r = cli_arg_dir(a, &out->dir)) < 0) {
            return CLI_EXIT_USAGE;
        }
        if (r < 0)
            return CLI_EXIT_USAGE;
    }
    if (!out->dir && !out->segment)
        return cli_usage_error(a->cmd, "missing DIR");
    if (out->dir && out->segment)
        return cli_usage_error(a->cmd, "give DIR or --segment FILE, not both");
    return CLI_EXIT_OK;
}

/* ---- Raft store detection ---- */

int cli_raft_probe(const char *dir, unsigned extra, rlog_rs **out, char *msg, size_t cap)
{
    if (out)
        *out = NULL;
    rlog_rs_options opts;
    rlog_rs_options_init(&opts);
    opts.log.flags = RLOG_OPEN_READONLY | extra;
    rlog_rs_open_report rep;
    rlog_rs *rs = NULL;
    int rv = rlog_rs_open(dir, &opts, &rs, &rep);
    snprintf(msg, cap, "%s", rep.message);
    if (rv == RLOG_ENOTRAFT || rv == RLOG_ENOTLOG || (!rv && rep.records == 0)) {
        rlog_rs_close(rs);
        return CLI_RAFT_NO;
    }
    if (rv)
        return CLI_RAFT_DAMAGED;
    if (out)
        *out = rs;
    else
        rlog_rs_close(rs);
    return CLI_RAFT_YES;
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
    /* a progress line on stderr every half second, when it is a terminal */
    bool progress, progressed;
    uint64_t next_progress;
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
        if (st->progress && (st->records & 1023) == 0 && cli_now_ns() >= st->next_progress) {
            fprintf(stderr, "\rrlog verify: LSN %" PRIu64 " of %" PRIu64 " ...", rec.lsn,
                    o->rep.last_lsn);
            st->next_progress = cli_now_ns() + 500000000ull;
            st->progressed = true;
        }
    }
    if (st->progressed)
        fputc('\n', stderr);
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
    char damage[sizeof o.rep.message] = "";
    if (ro_do_open(&o, 0)) {
        if (o.rv != RLOG_ECORRUPT) {
            if (cli_exit_for_open(o.rv) != CLI_EXIT_CORRUPT)
                return ro_open_failed(&o);
            printf("corrupt: %s\n", o.rep.message);
            printf("status=corrupt segments=%" PRIu64 " records=0 first_lsn=0 last_lsn=0\n",
                   o.rep.segments);
            return CLI_EXIT_CORRUPT;
        }
        /* the records before the damage are still read and checked */
        memcpy(damage, o.rep.message, sizeof damage);
        if (ro_do_open(&o, RLOG_OPEN_REPAIR)) {
            printf("corrupt: %s\n", damage);
            printf("status=corrupt segments=0 records=0 first_lsn=0 last_lsn=0\n");
            return CLI_EXIT_CORRUPT;
        }
    }
    seg_info *segs = NULL;
    size_t nsegs = 0;
    seg_list(args.dir, &segs, &nsegs);
    size_t nlog = (size_t)(o.rep.segments < nsegs ? o.rep.segments : nsegs);
    if (damage[0])
        printf("corrupt: %s\n", damage);
    else if (o.rep.status == RLOG_TAIL_TORN)
        printf("torn: %s\n", o.rep.message);
    vf_state st = {.last_lsn = o.rep.first_lsn - 1,
                   .progress = !cli_quiet && isatty(STDERR_FILENO),
                   .next_progress = cli_now_ns() + 1000000000ull};
    bool ok = vf_scan(&o, &args, segs, nlog, &st) && !damage[0];
    char msg[1024];
    if (!damage[0] && cli_raft_probe(args.dir, 0, NULL, msg, sizeof msg) == CLI_RAFT_DAMAGED) {
        printf("corrupt: raft: %s\n", msg);
        ok = false;
    }
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

/* Payload bytes shown as hex: the first 16, or all (dump --raw). */
static size_t fmt_hex_max = FMT_HEX_PREFIX;

/* The generic formatter: any type. */
static void fmt_generic(const rlog_record *rec, bool json, FILE *out)
{
    bool more = rec->len > fmt_hex_max;
    if (json) {
        fprintf(out, "{\"lsn\":%" PRIu64 ",\"type\":%u,\"len\":%u,\"hex\":\"", rec->lsn, rec->type,
                rec->len);
        fmt_hex(rec, fmt_hex_max, out);
        fprintf(out, "\",\"truncated\":%s}", more ? "true" : "false");
    } else {
        fprintf(out, "lsn=%" PRIu64 " type=%u len=%u data=", rec->lsn, rec->type, rec->len);
        fmt_hex(rec, fmt_hex_max, out);
        if (more)
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
        cli_raft_json_fields(rec, out);
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

/* Per-type counts of dump --stats. */
typedef struct dump_stats {
    uint64_t records[RLOG_TYPE_MAX + 1];
    uint64_t bytes[RLOG_TYPE_MAX + 1];
} dump_stats;

static bool dump_wanted(const ro_args *args, uint16_t type)
{
    if (args->ntypes == 0)
        return true;
    for (size_t i = 0; i < args->ntypes; i++)
        if (args->types[i] == type)
            return true;
    return false;
}

static void dump_print_stats(const dump_stats *st, bool json)
{
    uint64_t n = 0, b = 0;
    for (size_t t = 0; t <= RLOG_TYPE_MAX; t++) {
        if (!st->records[t])
            continue;
        n += st->records[t];
        b += st->bytes[t];
        if (json)
            printf("{\"type\":%zu,\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", t,
                   st->records[t], st->bytes[t]);
        else
            printf("type=%zu records=%" PRIu64 " bytes=%" PRIu64 "\n", t, st->records[t],
                   st->bytes[t]);
    }
    if (json)
        printf("{\"total\":{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 "}}\n", n, b);
    else
        printf("total records=%" PRIu64 " bytes=%" PRIu64 "\n", n, b);
}

/* The damage line that ends a dump of a damaged log (stdout). */
static void dump_print_damage(const rlog_open_report *rep, const char *msg, bool json)
{
    if (json) {
        printf("{\"damage\":{\"segment\":");
        json_string(rep->segment_name, stdout);
        printf(",\"offset\":%" PRIu64 ",\"message\":", rep->offset);
        json_string(msg, stdout);
        printf("}}\n");
    } else {
        printf("damage: %s\n", msg);
    }
}

/* Prints the records [*next, to] visible in o->log; *shown counts them. */
static int dump_records(ro_open *o, const ro_args *args, bool raft, dump_stats *st, uint64_t *next,
                        uint64_t *shown)
{
    rlog_iter *it = NULL;
    int rv = rlog_iter_open(o->log, *next, 0, &it);
    rlog_record rec;
    while (!rv && *shown < args->limit && (rv = rlog_iter_next(it, &rec)) == RLOG_OK) {
        if (rec.lsn > args->to) {
            rv = RLOG_EEND;
            break;
        }
        *next = rec.lsn + 1;
        if (!dump_wanted(args, rec.type))
            continue;
        uint64_t fi, li;
        bool indexed = args->from_index > 0 || args->to_index < UINT64_MAX;
        if (indexed && (!raft || !cli_raft_entry_range(&rec, &fi, &li) || li < args->from_index ||
                        fi > args->to_index))
            continue; /* index bounds: only batches with entries in range */
        (*shown)++;
        if (st) {
            st->records[rec.type]++;
            st->bytes[rec.type] += rec.len;
            continue;
        }
        cli_format_record(&rec, args->json, raft, stdout);
        fputc('\n', stdout);
        if (args->decode &&
            cli_decode_record(&rec, raft, args->from_index, args->to_index, args->decode) != 0) {
            fflush(stdout);
            fprintf(stderr, "rlog dump: --decode '%s' failed at LSN %" PRIu64 "\n", args->decode,
                    rec.lsn);
            rv = RLOG_ECANCELED;
            break;
        }
    }
    if (rv == RLOG_OK && *shown >= args->limit)
        rv = RLOG_EEND;
    if (rv != RLOG_EEND && rv != RLOG_ECANCELED) {
        fflush(stdout);
        fprintf(stderr, "rlog dump: %s: %s: %s\n", o->dir, rlog_errname(rv), rlog_errmsg(o->log));
    }
    if (it)
        rlog_iter_close(it);
    return rv;
}

/* dump --segment FILE: a scratch directory holding FILE (a symbolic link
 * under its own name) and an empty successor (a spare, so that a sealed
 * segment is complete): the log of that one segment. */
static int dump_segment_dir(const char *file, char *dir, size_t cap)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    uint64_t seq;
    if (!rlg_seg_name_form(base, &seq) || seq == UINT64_MAX)
        return cli_usage_error("dump", "--segment %s: not a segment file name", file);
    char abs[4096];
    if (!realpath(file, abs)) {
        fprintf(stderr, "rlog dump: %s: %s\n", file, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/rlog-segment-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "rlog dump: %s: %s\n", dir, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    char path[4200], next[32];
    snprintf(path, sizeof path, "%s/%s", dir, base);
    int e = symlink(abs, path) ? errno : 0;
    rlog_segment_name(seq + 1, next, sizeof next);
    snprintf(path, sizeof path, "%s/%s", dir, next);
    FILE *f = e ? NULL : fopen(path, "w");
    if (!e && (!f || fclose(f)))
        e = errno;
    if (e) {
        fprintf(stderr, "rlog dump: %s: %s\n", dir, strerror(e));
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}

static void dump_segment_dir_remove(const char *dir)
{
    char **names = NULL;
    size_t n = 0;
    rlog_vfs *v = rlog_vfs_posix();
    if (v->list(v, dir, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            v->unlink(v, path);
        }
        rlog_vfs_free_names(names, n);
    }
    rmdir(dir);
}

/* --follow: reopens the log (read-only) every 200 ms and prints what was
 * appended meanwhile, until interrupted or --to / --limit is reached. */
static int dump_follow(ro_open *o, const ro_args *args, bool raft, uint64_t *next, uint64_t *shown)
{
    for (;;) {
        fflush(stdout);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rlog_close(o->log);
        o->log = NULL;
        if (ro_do_open(o, 0))
            return ro_open_failed(o);
        int rv = dump_records(o, args, raft, NULL, next, shown);
        if (rv != RLOG_EEND)
            return rv == RLOG_ECORRUPT ? CLI_EXIT_CORRUPT : CLI_EXIT_ERROR;
        if (*shown >= args->limit || *next > args->to)
            return CLI_EXIT_OK;
    }
}

static int dump_run(ro_args *args);

int cli_cmd_dump(cli_args *a)
{
    ro_args args;
    int ex = ro_parse(a, &args, false, true);
    if (ex)
        return ex;
    if (!args.segment)
        return dump_run(&args);
    char dir[4096];
    if ((ex = dump_segment_dir(args.segment, dir, sizeof dir)) != 0)
        return ex;
    args.dir = dir;
    args.follow = false;
    ex = dump_run(&args);
    dump_segment_dir_remove(dir);
    return ex;
}

static int dump_run(ro_args *a_)
{
    ro_args args = *a_;
    int ex;
    fmt_hex_max = args.raw ? UINT32_MAX : FMT_HEX_PREFIX;
    ro_open o = {.cmd = "dump", .dir = args.dir};
    rlog_open_report damage;
    bool damaged = false;
    if (ro_do_open(&o, 0)) {
        if (o.rv != RLOG_ECORRUPT)
            return ro_open_failed(&o);
        /* print the valid prefix, then the damage */
        damage = o.rep;
        damaged = true;
        if (ro_do_open(&o, RLOG_OPEN_REPAIR)) {
            dump_print_damage(&damage, damage.message, args.json);
            return CLI_EXIT_CORRUPT;
        }
    }
    if (o.rep.status == RLOG_TAIL_TORN && !cli_quiet)
        fprintf(stderr, "rlog dump: torn tail (not shown): %s\n", o.rep.message);
    char msg[1024];
    bool raft =
        cli_raft_probe(o.dir, damaged ? RLOG_OPEN_REPAIR : 0, NULL, msg, sizeof msg) != CLI_RAFT_NO;
    dump_stats *st = args.stats ? calloc(1, sizeof *st) : NULL;
    if (args.stats && !st) {
        rlog_close(o.log);
        fprintf(stderr, "rlog dump: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    uint64_t next = args.from, shown = 0;
    int rv = dump_records(&o, &args, raft, st, &next, &shown);
    ex = rv == RLOG_EEND ? CLI_EXIT_OK : rv == RLOG_ECORRUPT ? CLI_EXIT_CORRUPT : CLI_EXIT_ERROR;
    if (st)
        dump_print_stats(st, args.json);
    free(st);
    if (damaged) {
        dump_print_damage(&damage, damage.message, args.json);
        ex = CLI_EXIT_CORRUPT;
    } else if (!ex && args.follow && shown < args.limit && next <= args.to) {
        ex = dump_follow(&o, &args, raft, &next, &shown);
    }
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
    int rv = ro_do_open(&o, 0);
    seg_info *segs = NULL;
    size_t nsegs = 0;
    int e = seg_list(args.dir, &segs, &nsegs);
    if (rv && (rv == RLOG_ENOTLOG || e)) {
        free(segs);
        return ro_open_failed(&o);
    }
    /* on damage: the files up to the last one with a valid header are the
     * log's, those after it spares (docs/format.md, "Recovery") */
    size_t nlog = (size_t)(o.rep.segments < nsegs ? o.rep.segments : nsegs);
    if (rv) {
        nlog = 0;
        for (size_t i = 0; i < nsegs; i++)
            if (segs[i].hdr_ok)
                nlog = i + 1;
    }
    rlog_rs *rs = NULL;
    char rmsg[1024] = "";
    int raft = rv ? CLI_RAFT_NO : cli_raft_probe(args.dir, 0, &rs, rmsg, sizeof rmsg);
    bool corrupt = rv || raft == CLI_RAFT_DAMAGED;
    printf("dir=%s\n", args.dir);
    printf("log_id=%016" PRIx64 "\n", o.rep.log_id);
    printf("status=%s\n", corrupt ? "corrupt" : ro_status_name(&o.rep));
    if (rv)
        printf("open_error=%s\n", rlog_errname(rv));
    printf("message=%s\n", o.rep.message);
    printf("segments=%zu\n", nlog);
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
    printf("raft=%s\n", raft == CLI_RAFT_YES ? "yes" : raft == CLI_RAFT_DAMAGED ? "damaged" : "no");
    if (raft == CLI_RAFT_DAMAGED)
        printf("raft_error=%s\n", rmsg);
    if (rs) {
        char sum[2048];
        rlog_rs_summary(rs, sum, sizeof sum);
        fputs(sum, stdout);
        rlog_rs_close(rs);
    }
    rlog_close(o.log);
    return corrupt ? CLI_EXIT_CORRUPT : CLI_EXIT_OK;
}
