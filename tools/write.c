/*
 * rlog write — a load generator in the spirit of pg_test_fsync and
 * fio --verify. It appends --count records of --size bytes, --batch records
 * per append call, from --threads threads, and prints "durable <LSN>" each
 * time an append call comes back durable, then one line of figures.
 *
 * Payloads. Record LSN L carries cli_pattern_fill(seed, L): a function of
 * (seed, LSN) alone, so `rlog verify --seed` checks any record from its
 * position. The writer must therefore know a record's LSN before it builds
 * the payload. LSNs are handed out by the log at append time, so the tool
 * serialises its own appenders with one mutex (wr.mu) around "predict the
 * next LSN, build the payloads, hand them to the log":
 *   - with one thread (or --sync none) the call under the mutex is
 *     rlog_append itself;
 *   - with several threads and a syncing mode it is rlog_append_async,
 *     which returns as soon as the LSNs are assigned and the payloads
 *     copied; the thread then waits, outside the mutex, for the completion
 *     callback. The log's background thread batches whatever is queued into
 *     one write and one fdatasync, so the appenders share syncs (group
 *     commit) exactly as concurrent rlog_append callers would.
 * Every append checks that the LSN the log assigned is the one predicted.
 *
 * Output. "durable <LSN>" lines go straight to fd 1 with write(2)
 * (unbuffered), from one place at a time and increasing: the single
 * appender after each rlog_append, or the completion callback, which the
 * log calls one at a time in LSN order.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/format.h"
#include "tools/cli.h"
#include "tools/pattern.h"

typedef struct wr_conf {
    const char *dir;
    uint64_t count, size, batch, threads, seed, segment_size;
    rlog_sync_mode sync;
    const char *serve;  /* --serve URL: also a shipping leader */
    uint64_t linger;    /* --linger S: wait for followers at the end */
    uint64_t followers; /* --followers N: ... for at least N of them */
    uint64_t id;        /* --id N: the leader's server id */
    cli_tls tls;        /* --tls-cert/--tls-key/--tls-ca: serve over TLS */
} wr_conf;

typedef struct wr_run wr_run;

/* One appender thread. */
typedef struct wr_thread {
    wr_run *run;
    pthread_t tid;
    uint8_t *buf;      /* batch * size payload bytes */
    rlog_record *recs; /* batch records pointing into buf */
    cli_hist *hist;    /* latency of each append call */
    /* completion of the async append in flight (run->async) */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    bool done;
    int status;
} wr_thread;

struct wr_run {
    wr_conf c;
    rlog_log *log;
    bool async; /* several threads and a syncing mode: rlog_append_async */
    pthread_mutex_t mu;
    uint64_t next_lsn;  /* under mu: LSN the next append gets */
    uint64_t remaining; /* under mu: records still to append */
    atomic_bool failed;
    uint64_t printed; /* last "durable" LSN printed (see file comment) */
    atomic_uint_fast64_t appended_records;
    cli_server *server; /* --serve */
    /* progress on a terminal */
    bool progress;
    uint64_t start_ns;
    atomic_uint_fast64_t next_progress_ns;
};

static void wr_write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Prints "durable <lsn>" if lsn moves the printed position forward. Called
 * by one party at a time (see the file comment). */
static void wr_print_durable(wr_run *r, uint64_t lsn)
{
    if (r->server)
        cli_server_notify(r->server);
    if (lsn <= r->printed)
        return;
    r->printed = lsn;
    char line[40];
    int n = snprintf(line, sizeof line, "durable %" PRIu64 "\n", lsn);
    wr_write_all(STDOUT_FILENO, line, (size_t)n);
}

static void wr_fail(wr_run *r, int rv, uint64_t lsn, const char *what, const char *msg)
{
    if (atomic_exchange(&r->failed, true))
        return; /* report the first failure only */
    fprintf(stderr, "rlog write: %s at LSN %" PRIu64 " failed: %s: %s\n", what, lsn,
            rlog_errname(rv), msg && *msg ? msg : rlog_strerror(rv));
}

static void wr_progress(wr_run *r)
{
    uint64_t now = cli_now_ns();
    uint64_t due = atomic_load(&r->next_progress_ns);
    if (now < due || !atomic_compare_exchange_strong(&r->next_progress_ns, &due, now + 500000000))
        return;
    uint64_t n = atomic_load(&r->appended_records);
    double s = (double)(now - r->start_ns) / 1e9;
    fprintf(stderr, "\r  %" PRIu64 "/%" PRIu64 " records  %.0f records/s  %.1fs ", n, r->c.count,
            s > 0 ? (double)n / s : 0.0, s);
}

/* Completion of an async append: runs on the log's thread, one at a time,
 * in LSN order. */
static void wr_on_durable(void *data, int status, uint64_t first_lsn, uint64_t last_lsn)
{
    wr_thread *t = data;
    if (status == 0)
        wr_print_durable(t->run, last_lsn);
    pthread_mutex_lock(&t->wmu);
    t->status = status;
    t->done = true;
    pthread_cond_signal(&t->wcv);
    pthread_mutex_unlock(&t->wmu);
}

/* Reserves the next batch under r->mu and fills its payloads. Returns the
 * number of records (0: nothing left or a failure). mu stays held when > 0. */
static size_t wr_reserve(wr_thread *t, uint64_t *lsn)
{
    wr_run *r = t->run;
    pthread_mutex_lock(&r->mu);
    if (atomic_load(&r->failed) || r->remaining == 0) {
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    size_t k = (size_t)(r->remaining < r->c.batch ? r->remaining : r->c.batch);
    *lsn = r->next_lsn;
    for (size_t i = 0; i < k; i++)
        cli_pattern_fill(r->c.seed, *lsn + i, t->buf + i * r->c.size, t->recs[i].len);
    return k;
}

/* One append call of k records expected at LSN lsn. Returns false to stop. */
static bool wr_append_one(wr_thread *t, size_t k, uint64_t lsn)
{
    wr_run *r = t->run;
    uint64_t got = 0;
    int rv;
    uint64_t t0 = cli_now_ns();
    if (r->async) {
        t->done = false;
        rv = rlog_append_async(r->log, t->recs, k, wr_on_durable, t, &got);
        const char *msg = rv ? rlog_errmsg(r->log) : NULL;
        if (!rv) {
            r->next_lsn = got + k;
            r->remaining -= k;
        }
        pthread_mutex_unlock(&r->mu);
        if (rv) {
            wr_fail(r, rv, lsn, "rlog_append_async", msg);
            return false;
        }
        pthread_mutex_lock(&t->wmu);
        while (!t->done)
            pthread_cond_wait(&t->wcv, &t->wmu);
        rv = t->status;
        pthread_mutex_unlock(&t->wmu);
        if (rv) {
            wr_fail(r, rv, got, "append (completion)", NULL);
            return false;
        }
    } else {
        rv = rlog_append(r->log, t->recs, k, &got);
        if (rv) {
            wr_fail(r, rv, lsn, "rlog_append", rlog_errmsg(r->log));
            pthread_mutex_unlock(&r->mu);
            return false;
        }
        r->next_lsn = got + k;
        r->remaining -= k;
        if (r->c.sync != RLOG_SYNC_NONE)
            wr_print_durable(r, got + k - 1);
        pthread_mutex_unlock(&r->mu);
    }
    cli_hist_add(t->hist, cli_now_ns() - t0);
    if (got != lsn) {
        char msg[128];
        snprintf(msg, sizeof msg, "the log assigned LSN %" PRIu64 " instead", got);
        wr_fail(r, RLOG_EINVAL, lsn, "LSN check", msg);
        return false;
    }
    atomic_fetch_add(&r->appended_records, k);
    return true;
}

static void *wr_thread_main(void *arg)
{
    wr_thread *t = arg;
    uint64_t lsn = 0;
    size_t k;
    while ((k = wr_reserve(t, &lsn)) > 0) {
        if (!wr_append_one(t, k, lsn))
            break;
        if (t->run->progress)
            wr_progress(t->run);
    }
    return NULL;
}

/*
 * Sizes checked before anything touches the disk: an existing log keeps
 * its segment size (another --segment-size is refused: a log's segments
 * are all made under one setting), and one append call (--batch records
 * of --size bytes, each with its 28-byte header) must fit in a fresh
 * segment after its 64-byte header and the room kept for the seal and a
 * checkpoint (docs/format.md).
 */
static int wr_check_sizes(cli_args *a, wr_conf *c)
{
    uint64_t have = cli_log_segment_size(c->dir);
    if (have && c->segment_size && c->segment_size != have)
        return cli_usage_error(a->cmd,
                               "%s holds a log with %" PRIu64
                               "-byte segments; --segment-size %" PRIu64
                               " would mix sizes (leave it out to keep the log's)",
                               c->dir, have, c->segment_size);
    if (!c->segment_size)
        c->segment_size = have ? have : 64u << 20;
    const uint64_t hdr = RLG_REC_HEADER_SIZE,
                   fixed = c->segment_size - RLG_SEG_ROOM(c->segment_size);
    uint64_t call = c->batch * (hdr + c->size);
    if (call + fixed > c->segment_size)
        return cli_usage_error(a->cmd,
                               "--size %" PRIu64 " x --batch %" PRIu64 " needs %" PRIu64
                               " bytes per append, more than a %" PRIu64
                               "-byte segment holds (at most %" PRIu64 " bytes of payload "
                               "per record at this batch)",
                               c->size, c->batch, call + fixed, c->segment_size,
                               c->segment_size < fixed + c->batch * hdr
                                   ? 0
                                   : (c->segment_size - fixed) / c->batch - hdr);
    return CLI_EXIT_OK;
}

/* What wr_opt fills: the configuration, and which required options came. */
typedef struct wr_parsed {
    wr_conf *c;
    bool have_count, have_size;
} wr_parsed;

static int wr_opt(cli_args *a, void *ctx)
{
    wr_parsed *p = ctx;
    wr_conf *c = p->c;
    const char *v = NULL;
    int r;
    if ((r = cli_opt_u64(a, "--count", &c->count, 1, UINT64_MAX / 2)) != 0) {
        p->have_count = true;
    } else if ((r = cli_opt_u64(a, "--size", &c->size, 0, 64u << 20)) != 0) {
        p->have_size = true;
    } else if ((r = cli_opt_u64(a, "--batch", &c->batch, 1, 1u << 20)) != 0 ||
               (r = cli_opt_u64(a, "--threads", &c->threads, 1, 1024)) != 0 ||
               (r = cli_opt_u64(a, "--seed", &c->seed, 0, UINT64_MAX)) != 0 ||
               (r = cli_opt_u64(a, "--segment-size", &c->segment_size, 4096, UINT32_MAX)) != 0) {
    } else if ((r = cli_opt(a, "--serve", &c->serve)) != 0 ||
               (r = cli_opt_u64(a, "--linger", &c->linger, 0, 86400)) != 0 ||
               (r = cli_opt_u64(a, "--followers", &c->followers, 0, 64)) != 0 ||
               (r = cli_opt_u64(a, "--id", &c->id, 1, UINT64_MAX)) != 0 ||
               (r = cli_opt_tls(a, &c->tls)) != 0) {
    } else if ((r = cli_opt(a, "--sync", &v)) > 0) {
        if (strcmp(v, "each") == 0)
            c->sync = RLOG_SYNC_EACH;
        else if (strcmp(v, "group") == 0)
            c->sync = RLOG_SYNC_GROUP;
        else if (strcmp(v, "none") == 0)
            c->sync = RLOG_SYNC_NONE;
        else {
            cli_usage_error(a->cmd, "--sync: '%s' is not each, group or none", v);
            return -1;
        }
    }
    return r;
}

static int wr_parse(cli_args *a, wr_conf *c)
{
    c->batch = 1;
    c->threads = 1;
    c->seed = 1;
    c->sync = RLOG_SYNC_EACH;
    c->linger = 10;
    c->id = 1;
    wr_parsed p = {c, false, false};
    int ex = cli_parse_dir_opts(a, &c->dir, wr_opt, &p);
    if (ex)
        return ex;
    if (!p.have_count || !p.have_size)
        return cli_usage_error(a->cmd, "--count and --size are required");
    if (c->batch * c->size > (1ull << 30))
        return cli_usage_error(a->cmd, "--batch x --size must stay within 1 GiB");
    if (c->tls.ca && !c->serve)
        return cli_usage_error(a->cmd, "--tls-* need --serve");
    int rc = cli_tls_check(a->cmd, &c->tls);
    if (rc != 0)
        return rc;
    return wr_check_sizes(a, c);
}

static int wr_open(wr_run *r)
{
    rlog_options o;
    rlog_options_init(&o);
    o.flags = RLOG_OPEN_CREATE | RLOG_OPEN_THREAD;
    o.sync = r->c.sync;
    o.segment_size = r->c.segment_size;
    if (r->c.size > 16u << 20) /* above the default maximum, checked to fit a segment */
        o.max_record = (uint32_t)r->c.size;
    rlog_open_report rep;
    memset(&rep, 0, sizeof rep);
    int rv = rlog_open(r->c.dir, &o, &r->log, &rep);
    if (rv) {
        fprintf(stderr, "rlog write: cannot open %s: %s: %s\n", r->c.dir, rlog_errname(rv),
                rep.message[0] ? rep.message : rlog_strerror(rv));
        return cli_exit_for_open(rv);
    }
    if (rep.status != RLOG_TAIL_CLEAN && !cli_quiet)
        fprintf(stderr, "rlog write: %s: recovered: %s\n", r->c.dir, rep.message);
    return CLI_EXIT_OK;
}

static int wr_threads_init(wr_run *r, wr_thread *ts)
{
    for (uint64_t i = 0; i < r->c.threads; i++) {
        wr_thread *t = &ts[i];
        t->run = r;
        t->buf = malloc(r->c.batch * r->c.size + 1);
        t->recs = calloc(r->c.batch, sizeof *t->recs);
        t->hist = calloc(1, sizeof *t->hist);
        if (!t->buf || !t->recs || !t->hist)
            return RLOG_ENOMEM;
        for (uint64_t j = 0; j < r->c.batch; j++) {
            t->recs[j].type = CLI_RECORD_TYPE;
            t->recs[j].len = (uint32_t)r->c.size;
            t->recs[j].data = t->buf + j * r->c.size;
        }
        pthread_mutex_init(&t->wmu, NULL);
        pthread_cond_init(&t->wcv, NULL);
    }
    return RLOG_OK;
}

static void wr_threads_free(wr_run *r, wr_thread *ts)
{
    for (uint64_t i = 0; i < r->c.threads; i++) {
        if (ts[i].run) {
            pthread_mutex_destroy(&ts[i].wmu);
            pthread_cond_destroy(&ts[i].wcv);
        }
        free(ts[i].buf);
        free(ts[i].recs);
        free(ts[i].hist);
    }
    free(ts);
}

/* Starts the appenders (thread 0 is the calling thread) and joins them. */
static int wr_run_threads(wr_run *r, wr_thread *ts)
{
    uint64_t started = 1;
    for (; started < r->c.threads; started++) {
        int e = pthread_create(&ts[started].tid, NULL, wr_thread_main, &ts[started]);
        if (e) {
            fprintf(stderr, "rlog write: pthread_create: %s\n", strerror(e));
            pthread_mutex_lock(&r->mu);
            r->remaining = 0;
            pthread_mutex_unlock(&r->mu);
            break;
        }
    }
    wr_thread_main(&ts[0]);
    for (uint64_t i = 1; i < started; i++)
        pthread_join(ts[i].tid, NULL);
    return started == r->c.threads ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static void wr_report(wr_run *r, wr_thread *ts, uint64_t first_lsn, double seconds)
{
    cli_hist *all = calloc(1, sizeof *all);
    if (!all)
        return;
    for (uint64_t i = 0; i < r->c.threads; i++)
        cli_hist_merge(all, ts[i].hist);
    rlog_positions pos;
    rlog_positions_get(r->log, &pos);
    uint64_t n = atomic_load(&r->appended_records);
    if (seconds <= 0)
        seconds = 1e-9;
    printf("appended=%" PRIu64 " durable=%" PRIu64 " seconds=%.3f records_s=%.0f mb_s=%.2f"
           " p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f first_lsn=%" PRIu64
           " records=%" PRIu64 "\n",
           pos.appended, pos.durable, seconds, (double)n / seconds,
           (double)(n * r->c.size) / 1e6 / seconds, (double)cli_hist_quantile(all, 0.50) / 1e3,
           (double)cli_hist_quantile(all, 0.99) / 1e3, (double)cli_hist_quantile(all, 0.999) / 1e3,
           (double)all->max_ns / 1e3, first_lsn, n);
    fflush(stdout);
    free(all);
}

int cli_cmd_write(cli_args *a)
{
    wr_run r;
    memset(&r, 0, sizeof r);
    int ex = wr_parse(a, &r.c);
    if (ex)
        return ex;
    r.async = r.c.threads > 1 && r.c.sync != RLOG_SYNC_NONE;
    r.remaining = r.c.count;
    wr_thread *ts = calloc(r.c.threads, sizeof *ts);
    if (!ts || wr_threads_init(&r, ts)) {
        fprintf(stderr, "rlog write: out of memory\n");
        if (ts)
            wr_threads_free(&r, ts);
        return CLI_EXIT_ERROR;
    }
    ex = wr_open(&r);
    if (ex) {
        wr_threads_free(&r, ts);
        return ex;
    }
    if (r.c.serve) {
        if (cli_server_start(&r.server, r.log, r.c.serve, r.c.id, &r.c.tls, "write") ||
            cli_server_run_thread(r.server)) {
            if (r.server)
                cli_server_stop(r.server, r.log);
            rlog_close(r.log);
            wr_threads_free(&r, ts);
            return CLI_EXIT_ERROR;
        }
    }
    pthread_mutex_init(&r.mu, NULL);
    rlog_positions pos;
    rlog_positions_get(r.log, &pos);
    r.next_lsn = pos.appended + 1;
    r.printed = pos.durable;
    uint64_t first_lsn = r.next_lsn;
    r.progress = !cli_quiet && isatty(STDERR_FILENO); /* progress goes to stderr */
    r.start_ns = cli_now_ns();
    atomic_store(&r.next_progress_ns, r.start_ns + 1000000000);

    ex = wr_run_threads(&r, ts);
    int rv = rlog_sync(r.log); /* --sync none: the one sync; else a no-op */
    if (rv)
        wr_fail(&r, rv, r.next_lsn, "rlog_sync", rlog_errmsg(r.log));
    else {
        rlog_positions_get(r.log, &pos);
        wr_print_durable(&r, pos.durable);
    }
    double seconds = (double)(cli_now_ns() - r.start_ns) / 1e9;
    if (r.progress)
        fprintf(stderr, "\r\033[K");
    wr_report(&r, ts, first_lsn, seconds);
    if (r.server) {
        cli_server_linger(r.server, r.log, r.c.linger * 1000000000ull, r.c.followers);
        cli_server_stop(r.server, r.log);
    }
    rv = rlog_close(r.log);
    if (rv && !atomic_load(&r.failed))
        wr_fail(&r, rv, r.next_lsn, "rlog_close", NULL);
    if (atomic_load(&r.failed) && !ex)
        ex = CLI_EXIT_ERROR;
    pthread_mutex_destroy(&r.mu);
    wr_threads_free(&r, ts);
    return ex;
}
