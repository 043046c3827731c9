/*
 * rlog repair DIR [--dry-run] [--backup DIR]: cuts a damaged log (or a torn
 * tail) back to its valid prefix, moving aside — never deleting — every
 * byte it cuts. docs/cli.md, "rlog repair", is the reference.
 *
 * Steps:
 *  1. Plan: the read-only open says whether there is anything to do; the
 *     read-only repair open (RLOG_OPEN_READONLY | RLOG_OPEN_REPAIR) says
 *     what a repair keeps, which segment it cuts at which offset, and from
 *     which segment on files are dropped. A Raft store whose snapshot file
 *     is damaged cannot be repaired here (the state needs that file).
 *  2. Backup, under the directory's writer lock (a running writer makes
 *     the repair refuse): the segment that is cut is copied whole, the
 *     dropped segment files are renamed into the backup directory (copied
 *     when it is on another file system); every file and both directories
 *     are synced through the vfs.
 *  3. The library's repair (RLOG_OPEN_REPAIR, writable) applies the plan.
 *  4. Report: what moved, the LSN range lost, for a Raft store the index
 *     after which the node must refetch entries from its leader.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/format.h"
#include "os/install.h"
#include "rlog/raft_storage.h"
#include "tools/cli.h"

typedef struct rp_args {
    const char *dir;
    const char *backup;
    bool dry_run;
} rp_args;

static int rp_opt(cli_args *a, void *ctx)
{
    rp_args *out = ctx;
    if (strcmp(a->argv[a->i], "--dry-run") == 0) {
        out->dry_run = true;
        a->i++;
        return 1;
    }
    return cli_opt(a, "--backup", &out->backup);
}

static int rp_parse(cli_args *a, rp_args *out)
{
    memset(out, 0, sizeof *out);
    return cli_parse_dir_opts(a, &out->dir, rp_opt, out);
}

static int rp_open(const char *dir, unsigned flags, uint64_t seg_size, rlog_log **log,
                   rlog_open_report *rep)
{
    rlog_options o;
    rlog_options_init(&o);
    o.flags = flags;
    o.segment_size = seg_size;
    *log = NULL;
    return rlog_open(dir, &o, log, rep);
}

static int rp_fail(const char *dir, const char *what, int err)
{
    fprintf(stderr, "rlog repair: %s: %s: %s\n", dir, what, strerror(err));
    return CLI_EXIT_ERROR;
}

/* A failed os/install.h step while `doing` something: names the step and
 * the file it concerned. */
static int rp_os_fail(const char *doing, const rlg_os_fail *fail)
{
    fprintf(stderr, "rlog repair: %s: %s: %s %s: %s\n", fail->path, doing, fail->what, fail->path,
            strerror(fail->err));
    return CLI_EXIT_ERROR;
}

/* Files of dir that are not the log's nor a Raft store's: reported, left. */
static bool rp_ours(const char *name)
{
    uint64_t seq;
    size_t n = strlen(name);
    if (rlg_seg_name_form(name, &seq))
        return true;
    if (strncmp(name, "rlog.", 5) == 0)
        return true;
    return strncmp(name, "snapshot-", 9) == 0 &&
           ((n > 5 && strcmp(name + n - 5, ".snap") == 0) ||
            (n > 9 && strcmp(name + n - 9, ".snap.tmp") == 0));
}

typedef struct rp_plan {
    rlog_open_report rep; /* the read-only repair open's report */
    bool torn;            /* only a torn tail: a writable open cuts it */
    uint64_t seg_size;    /* the log's segment size (its first file's) */
    char cut_seg[64];     /* segment whose bytes from cut_off on are cut ("" = none) */
    uint64_t cut_off;
    char **drop; /* segment files dropped whole */
    size_t ndrop;
    bool raft;
} rp_plan;

static void rp_plan_free(rp_plan *p)
{
    for (size_t i = 0; i < p->ndrop; i++)
        free(p->drop[i]);
    free(p->drop);
}

static int rp_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists dir: the dropped segments into the plan, foreign files printed. */
static int rp_list(const rp_args *args, rp_plan *p)
{
    rlog_vfs *v = rlog_vfs_posix();
    char **names = NULL;
    size_t n = 0;
    int e = v->list(v, args->dir, &names, &n);
    if (e)
        return rp_fail(args->dir, "listing", e);
    p->drop = calloc(n ? n : 1, sizeof *p->drop);
    if (!p->drop) {
        rlog_vfs_free_names(names, n);
        return rp_fail(args->dir, "listing", ENOMEM);
    }
    uint64_t first_seq = UINT64_MAX, last_kept = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;
        if (!rp_ours(names[i])) {
            printf("left alone: %s/%s (not a file of the log)\n", args->dir, names[i]);
            continue;
        }
        if (!rlg_seg_name_form(names[i], &seq))
            continue;
        if (seq < first_seq) {
            first_seq = seq;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", args->dir, names[i]);
            rlog_file *f = NULL;
            if (!v->open(v, path, RLOG_VFS_RDONLY, &f)) {
                v->size(v, f, &p->seg_size);
                v->close(v, f);
            }
        }
        if (p->rep.drop_from_seq && seq >= p->rep.drop_from_seq)
            p->drop[p->ndrop++] = strdup(names[i]);
        else if (p->rep.drop_from_seq && seq > last_kept)
            last_kept = seq;
    }
    /* the log ends in the last file kept: the damaged one, or — a damaged
     * header, a missing file after it — the one before, whose seal is cut */
    if (p->rep.drop_from_seq && last_kept && last_kept != p->rep.segment_seq) {
        rlog_segment_name(last_kept, p->cut_seg, sizeof p->cut_seg);
        p->cut_off = UINT64_MAX;
    }
    rlog_vfs_free_names(names, n);
    qsort(p->drop, p->ndrop, sizeof *p->drop, rp_name_cmp); /* fixed-width hex: by seq */
    return CLI_EXIT_OK;
}

/* What the repair cuts from the plan's segment, for the messages. */
static const char *rp_cut_what(const rp_plan *p, char *buf, size_t cap)
{
    if (p->cut_off == UINT64_MAX)
        snprintf(buf, cap, "its seal is cut: the log ends in it");
    else
        snprintf(buf, cap, "its bytes from offset %" PRIu64 " on are cut", p->cut_off);
    return buf;
}

/* Moves (or copies) what the plan cuts into backup, under the lock. */
static int rp_backup(const rp_args *args, const rp_plan *p, const char *backup)
{
    rlog_vfs *v = rlog_vfs_posix();
    int e = v->mkdir(v, backup);
    if (e && e != EEXIST)
        return rp_fail(backup, "creating the backup directory", e);
    char from[4200], to[4200], what[96];
    rlg_os_fail fail = {0};
    if (p->cut_seg[0]) {
        snprintf(from, sizeof from, "%s/%s", args->dir, p->cut_seg);
        snprintf(to, sizeof to, "%s/%s", backup, p->cut_seg);
        if (rlg_copy_synced(v, from, backup, to, &fail))
            return rp_os_fail("copying the segment that is cut", &fail);
        printf("copied: %s -> %s (%s)\n", from, to, rp_cut_what(p, what, sizeof what));
    }
    for (size_t i = p->ndrop; i-- > 0;) { /* newest first: the run stays contiguous */
        snprintf(from, sizeof from, "%s/%s", args->dir, p->drop[i]);
        snprintf(to, sizeof to, "%s/%s", backup, p->drop[i]);
        if (rlg_move_synced(v, args->dir, from, backup, to, &fail))
            return rp_os_fail("moving it into the backup", &fail);
        printf("moved: %s -> %s (dropped from the log)\n", from, to);
    }
    return CLI_EXIT_OK;
}

/* The lost range, from the plan's report. */
static void rp_print_lost(const rlog_open_report *rep, bool torn)
{
    uint64_t from = rep->last_lsn + 1;
    if (torn) {
        printf("lost: nothing acknowledged (a torn tail after LSN %" PRIu64 ": %" PRIu64
               " bytes, none proven durable)\n",
               rep->last_lsn, rep->bytes_cut);
        return;
    }
    if (rep->records_cut && rep->lsn_cut_last >= from)
        printf("lost: LSN %" PRIu64 "..%" PRIu64 " (LSN %" PRIu64 " is damaged or missing; %" PRIu64
               " intact records after it go with it: their bytes are in the backup)\n",
               from, rep->lsn_cut_last, from, rep->records_cut);
    else
        printf("lost: LSN %" PRIu64 " on (the damaged or missing record and anything after it; "
               "no intact record was found past it)\n",
               from);
}

/* Parses "snapshot-<index %016x>-<term %016x>.snap". */
static bool rp_snap_index(const char *name, uint64_t *index)
{
    char tail[8];
    unsigned long long ix, term;
    return strlen(name) == 9 + 16 + 1 + 16 + 5 &&
           sscanf(name, "snapshot-%16llx-%16llx%7s", &ix, &term, tail) == 3 &&
           strcmp(tail, ".snap") == 0 && (*index = ix, true);
}

/* Snapshot files newer than the repaired store's marker (theirs was cut)
 * would be removed by the store's next open as orphans: they go into the
 * backup instead. */
static void rp_orphan_snapshots(const char *dir, const char *backup, bool has, uint64_t current)
{
    rlog_vfs *v = rlog_vfs_posix();
    char **names = NULL;
    size_t n = 0;
    if (v->list(v, dir, &names, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t index;
        if (!rp_snap_index(names[i], &index) || (has && index <= current))
            continue;
        char from[4200], to[4200];
        snprintf(from, sizeof from, "%s/%s", dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", backup, names[i]);
        rlg_os_fail fail = {0};
        if (rlg_move_synced(v, dir, from, backup, to, &fail))
            printf("raft: warning: %s (its marker was cut) could not be moved: %s %s: %s; the "
                   "store's next open removes it\n",
                   from, fail.what, fail.path, strerror(fail.err));
        else
            printf("moved: %s -> %s (a snapshot whose marker was cut)\n", from, to);
    }
    rlog_vfs_free_names(names, n);
}

/* After a repair of a Raft store: where the node must catch up from. */
static void rp_print_raft(const char *dir, const char *backup)
{
    rlog_rs *rs = NULL;
    char msg[1024];
    if (cli_raft_probe(dir, 0, &rs, msg, sizeof msg) != CLI_RAFT_YES) {
        printf("raft: the repaired store does not open: %s\n", msg);
        return;
    }
    rlog_rs_stats st;
    rlog_rs_stats_get(rs, &st);
    rp_orphan_snapshots(dir, backup, st.has_snapshot, st.snap_index);
    uint64_t last = st.last_index;
    printf("raft: the node's log now ends at index %" PRIu64 " (term %" PRIu64
           "); entries after index %" PRIu64
           " are gone and must be refetched from the leader (hard state term %" PRIu64
           " vote %" PRIu64 " commit %" PRIu64 ")\n",
           last, rlog_rs_term(rs, last), last, st.hs.term, st.hs.vote, st.hs.commit);
    if (st.hs.commit > last)
        printf("raft: warning: the commit index %" PRIu64 " is beyond the last entry held: entries "
               "this node acknowledged are lost; let it rejoin as a follower only\n",
               st.hs.commit);
    rlog_rs_close(rs);
}

static void rp_default_backup(const char *dir, char *out, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(out, cap, "%.*s.repair-%s", (int)n, dir, stamp);
}

/* Builds the plan; returns an exit code, or -1 to go on. */
static int rp_make_plan(const rp_args *args, rp_plan *p)
{
    rlog_log *log = NULL;
    rlog_open_report rep;
    int rv = rp_open(args->dir, RLOG_OPEN_READONLY, 0, &log, &rep);
    char msg[1024];
    if (!rv) {
        rlog_close(log);
        int raft = cli_raft_probe(args->dir, 0, NULL, msg, sizeof msg);
        if (raft == CLI_RAFT_DAMAGED) {
            printf("cannot repair: raft: %s\n(the Raft state needs this file: restore it from a "
                   "backup, or move the directory aside and let the node rejoin from its "
                   "leader)\n",
                   msg);
            return CLI_EXIT_CORRUPT;
        }
        if (rep.status == RLOG_TAIL_CLEAN) {
            printf("nothing to repair: %s\n", rep.message);
            return CLI_EXIT_OK;
        }
        p->rep = rep;
        p->torn = true;
        p->raft = raft == CLI_RAFT_YES;
        snprintf(p->cut_seg, sizeof p->cut_seg, "%s", rep.segment_name);
        p->cut_off = rep.offset;
        printf("torn: %s\n", rep.message);
        return -1;
    }
    if (rv != RLOG_ECORRUPT) {
        fprintf(stderr, "rlog repair: %s: %s: %s\n", args->dir, rlog_errname(rv), rep.message);
        return cli_exit_for_open(rv);
    }
    printf("damage: %s\n", rep.message);
    rv = rp_open(args->dir, RLOG_OPEN_READONLY | RLOG_OPEN_REPAIR, 0, &log, &p->rep);
    if (rv) {
        printf("cannot repair: %s\n", p->rep.message);
        return CLI_EXIT_CORRUPT;
    }
    rlog_close(log);
    int raft = cli_raft_probe(args->dir, RLOG_OPEN_REPAIR, NULL, msg, sizeof msg);
    if (raft == CLI_RAFT_DAMAGED) {
        printf("cannot repair: raft: %s\n", msg);
        return CLI_EXIT_CORRUPT;
    }
    p->raft = raft == CLI_RAFT_YES;

    snprintf(p->cut_seg, sizeof p->cut_seg, "%s", p->rep.segment_name);
    p->cut_off = p->rep.offset;
    return -1;
}

/* Segment files of another log (a copy gone wrong) make every open fail
 * with RLOG_EFOREIGN: they are moved into the backup first (under the
 * lock), reported with both log ids. Returns an exit code, or -1 to go on
 * (and, for a dry run, whether the rest of the plan can be made). */
static int rp_foreign(const rp_args *args, const char *backup, bool *blocked)
{
    char **names = NULL;
    uint64_t id = 0;
    size_t n = cli_foreign_segments(args->dir, &names, &id);
    int ex = -1;
    *blocked = false;
    rlog_vfs *v = rlog_vfs_posix();
    rlog_file *lk = NULL;
    int e = n && !args->dry_run ? v->lock(v, args->dir, &lk) : 0;
    if (e) {
        fprintf(stderr, "rlog repair: %s: %s: a writer holds the log; stop it first\n", args->dir,
                rlog_errname(e == EBUSY || e == EAGAIN ? RLOG_EBUSY : rlog_from_errno(e)));
        ex = CLI_EXIT_ERROR;
    }
    if (!e && n && !args->dry_run && (e = v->mkdir(v, backup)) != 0 && e != EEXIST)
        ex = rp_fail(backup, "creating the backup directory", e);
    for (size_t i = 0; i < n; i++) {
        char from[4200], to[4200];
        snprintf(from, sizeof from, "%s/%s", args->dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", backup, names[i]);
        if (ex < 0 && args->dry_run) {
            printf("would move: %s -> %s/ (a segment of another log, not of log %016" PRIx64 ")\n",
                   from, backup, id);
            *blocked = true;
        } else if (ex < 0) {
            rlg_os_fail fail = {0};
            if (rlg_move_synced(v, args->dir, from, backup, to, &fail))
                ex = rp_os_fail("moving it into the backup", &fail);
            else
                printf("moved: %s -> %s (a segment of another log, not of log %016" PRIx64 ")\n",
                       from, to, id);
        }
        free(names[i]);
    }
    free(names);
    if (lk)
        v->unlock(v, lk);
    return ex;
}

int cli_cmd_repair(cli_args *a)
{
    rp_args args;
    int ex = rp_parse(a, &args);
    if (ex)
        return ex;
    char backup[4096];
    if (args.backup)
        snprintf(backup, sizeof backup, "%s", args.backup);
    else
        rp_default_backup(args.dir, backup, sizeof backup);
    bool blocked;
    if ((ex = rp_foreign(&args, backup, &blocked)) >= 0)
        return ex;
    if (blocked) {
        printf("(the rest of the plan is made once those files are moved)\nstatus=dry-run "
               "backup=%s\n",
               backup);
        return CLI_EXIT_OK;
    }
    rp_plan p;
    memset(&p, 0, sizeof p);
    ex = rp_make_plan(&args, &p);
    if (ex >= 0)
        return ex;
    if ((ex = rp_list(&args, &p)) != 0) {
        rp_plan_free(&p);
        return ex;
    }
    rlog_vfs *v = rlog_vfs_posix();
    rlog_file *lk = NULL;
    int e = v->lock(v, args.dir, &lk);
    if (e) {
        rp_plan_free(&p);
        int rv = e == EBUSY || e == EAGAIN ? RLOG_EBUSY : rlog_from_errno(e);
        fprintf(stderr, "rlog repair: %s: %s: a writer holds the log; stop it first\n", args.dir,
                rlog_errname(rv));
        return CLI_EXIT_ERROR;
    }
    if (args.dry_run) {
        v->unlock(v, lk);
        char what[96];
        if (p.cut_seg[0])
            printf("would copy: %s/%s -> %s/ (%s)\n", args.dir, p.cut_seg, backup,
                   rp_cut_what(&p, what, sizeof what));
        for (size_t i = 0; i < p.ndrop; i++)
            printf("would move: %s/%s -> %s/ (dropped from the log)\n", args.dir, p.drop[i],
                   backup);
        rp_print_lost(&p.rep, p.torn);
        printf("status=dry-run backup=%s\n", backup);
        rp_plan_free(&p);
        return CLI_EXIT_OK;
    }
    ex = rp_backup(&args, &p, backup);
    v->unlock(v, lk);
    if (ex) {
        rp_plan_free(&p);
        return ex;
    }
    /* the library applies the cut (a writer starting in between would be
     * seen: the report is compared with the plan) */
    rlog_log *log = NULL;
    rlog_open_report rep;
    int rv = rp_open(args.dir, p.torn ? 0 : RLOG_OPEN_REPAIR, p.seg_size, &log, &rep);
    if (!rv)
        rv = rlog_close(log);
    if (rv) {
        fprintf(stderr, "rlog repair: %s: %s: %s (the backup in %s is complete)\n", args.dir,
                rlog_errname(rv), rep.message, backup);
        rp_plan_free(&p);
        return cli_exit_for_open(rv);
    }
    if (rep.last_lsn != p.rep.last_lsn)
        printf("warning: the log changed since it was planned: it now ends at LSN %" PRIu64
               ", not %" PRIu64 "\n",
               rep.last_lsn, p.rep.last_lsn);
    printf("kept: LSN %" PRIu64 "..%" PRIu64 "\n", rep.first_lsn, rep.last_lsn);
    rp_print_lost(&p.rep, p.torn);
    if (p.raft)
        rp_print_raft(args.dir, backup);
    printf("status=repaired backup=%s\n", backup);
    rp_plan_free(&p);
    return CLI_EXIT_OK;
}
