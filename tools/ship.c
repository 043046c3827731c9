/*
 * rlog ship — segment shipping from the command line (docs/cli.md):
 *
 *   rlog ship serve  DIR --listen URL      serve an existing log to followers
 *   rlog ship follow DIR --leader URL      keep DIR a copy of the leader's log
 *   rlog ship status URL                   ask a leader how its followers do
 *
 * and the leader half of `rlog write ... --serve URL` (cli_serve_*), which
 * appends and serves in one process. Each side runs its poll loop on one
 * thread; status lines go to stderr every --interval, results to stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rlog/ship.h"
#include "rlog/transport.h"
#include "tools/cli.h"

static volatile sig_atomic_t ship_stop;

static void ship_on_signal(int sig)
{
    (void)sig;
    ship_stop = 1;
}

static void ship_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ship_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Shipping events at INFO and above; the transport's at WARN and above
 * (its INFO lines are per connection, e.g. every status query). */
static void ship_logger(void *data, rlog_level level, const char *msg)
{
    const char *who = data;
    if (level >= RLOG_LEVEL_INFO)
        fprintf(stderr, "rlog %s: %s\n", who, msg);
}

static void transport_logger(void *data, rlog_level level, const char *msg)
{
    if (level >= RLOG_LEVEL_WARN)
        ship_logger(data, level, msg);
}

int cli_opt_tls(cli_args *a, cli_tls *t)
{
    int r;
    if ((r = cli_opt(a, "--tls-cert", &t->cert)) != 0 ||
        (r = cli_opt(a, "--tls-key", &t->key)) != 0 || (r = cli_opt(a, "--tls-ca", &t->ca)) != 0)
        return r;
    return 0;
}

int cli_tls_check(const char *cmd, const cli_tls *t)
{
    int k = (t->cert != NULL) + (t->key != NULL) + (t->ca != NULL);
    if (k != 0 && k != 3)
        return cli_usage_error(cmd, "TLS needs --tls-cert, --tls-key and --tls-ca together");
    return CLI_EXIT_OK;
}

static void tls_apply(rlog_transport_config *cfg, const cli_tls *tls)
{
    if (tls != NULL && tls->ca != NULL) {
        cfg->tls_cert_file = tls->cert;
        cfg->tls_key_file = tls->key;
        cfg->tls_ca_file = tls->ca;
    }
}

/* Each connection holds descriptors: take the hard limit (bounded), so
 * that the transport's caps, not the default 1,024, decide who waits. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int ship_transport(rlog_transport **t, const char *who)
{
    int rv = rlog_transport_nng_new(t);
    if (rv)
        fprintf(stderr, "rlog %s: cannot create the nng transport: %s\n", who, rlog_strerror(rv));
    return rv;
}

/* ---- the leader (serve, and write --serve) ---- */

struct cli_server {
    rlog_ship_leader *ld;
    pthread_t tid;
    atomic_bool stop;
    bool thread;
    uint64_t interval_ns, next_status_ns;
    /* the last status block: each follower's id and bytes sent */
    uint64_t last_id[64], last_bytes[64];
    size_t nlast;
    uint64_t last_ns;
};

/* One status block: "leader durable=..." then one line per follower. */
static void cli_server_status(cli_server *s, rlog_log *log, FILE *out)
{
    rlog_positions pos;
    rlog_positions_get(log, &pos);
    rlog_ship_follower_info fi[64];
    size_t n = 0;
    rlog_ship_leader_followers(s->ld, fi, 64, &n);
    uint64_t now = cli_now_ns();
    double dt = s->last_ns ? (double)(now - s->last_ns) / 1e9 : 0;
    fprintf(out, "leader first=%" PRIu64 " durable=%" PRIu64 " followers=%zu\n", pos.first,
            pos.durable, n);
    for (size_t i = 0; i < n && i < 64; i++) {
        /* the rate against the same follower's count (the order changes) */
        uint64_t before = fi[i].bytes_sent;
        for (size_t k = 0; k < s->nlast; k++) {
            if (s->last_id[k] == fi[i].id)
                before = s->last_bytes[k];
        }
        double mb_s = dt > 0 && fi[i].bytes_sent >= before
                          ? (double)(fi[i].bytes_sent - before) / 1e6 / dt
                          : 0;
        fprintf(out,
                "follower id=%" PRIu64 " name=%s state=%s connected=%d durable=%" PRIu64
                " sent=%" PRIu64 " lag_records=%" PRIu64 " lag_bytes=%" PRIu64 " mb_s=%.1f\n",
                fi[i].id, fi[i].name[0] ? fi[i].name : "-", rlog_ship_state_name(fi[i].state),
                fi[i].connected, fi[i].durable, fi[i].sent, fi[i].lag_records, fi[i].lag_bytes,
                mb_s);
    }
    for (size_t i = 0; i < n && i < 64; i++) {
        s->last_id[i] = fi[i].id;
        s->last_bytes[i] = fi[i].bytes_sent;
    }
    s->nlast = n < 64 ? n : 64;
    fflush(out);
    s->last_ns = now;
}

int cli_server_start(cli_server **out, rlog_log *log, const char *url, uint64_t id,
                     const cli_tls *tls, const char *who)
{
    cli_server *s = calloc(1, sizeof *s);
    rlog_transport *t = NULL;
    if (!s)
        return RLOG_ENOMEM;
    int rv = ship_transport(&t, who);
    if (rv) {
        free(s);
        return rv;
    }
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = id;
    cfg.address = url;
    cfg.logger = transport_logger;
    cfg.logger_data = (void *)who;
    tls_apply(&cfg, tls);
    raise_fd_limit();
    rlog_ship_leader_options lo;
    memset(&lo, 0, sizeof lo);
    lo.logger = ship_logger;
    lo.logger_data = (void *)who;
    rv = rlog_ship_leader_new(log, t, &cfg, &lo, &s->ld);
    if (rv) {
        fprintf(stderr, "rlog %s: cannot serve on %s: %s\n", who, url, rlog_strerror(rv));
        free(s);
        return rv;
    }
    fprintf(stderr, "rlog %s: serving on %s\n", who, url);
    *out = s;
    return 0;
}

static void *cli_server_main(void *arg)
{
    cli_server *s = arg;
    while (!atomic_load(&s->stop))
        rlog_ship_leader_poll(s->ld, 20);
    return NULL;
}

int cli_server_run_thread(cli_server *s)
{
    int e = pthread_create(&s->tid, NULL, cli_server_main, s);
    if (e == 0)
        s->thread = true;
    return e ? RLOG_ENOMEM : 0;
}

void cli_server_notify(cli_server *s)
{
    rlog_ship_leader_notify(s->ld);
}

/* Stops the leader's thread, if it runs: the caller's thread owns it then. */
static void cli_server_join(cli_server *s)
{
    if (s->thread) {
        atomic_store(&s->stop, true);
        pthread_join(s->tid, NULL);
        s->thread = false;
    }
}

/* Waits (at most timeout_ns) until every connected follower, and at least
 * min_followers of them, acknowledged the log's durable position. The
 * leader's thread is stopped first and the leader polled here: its calls
 * (rlog_ship_leader_followers too) belong to one thread. */
void cli_server_linger(cli_server *s, rlog_log *log, uint64_t timeout_ns, uint64_t min_followers)
{
    cli_server_join(s);
    uint64_t end = cli_now_ns() + timeout_ns;
    rlog_positions pos;
    rlog_positions_get(log, &pos);
    while (cli_now_ns() < end && !ship_stop) {
        rlog_ship_follower_info fi[64];
        size_t n = 0;
        rlog_ship_leader_followers(s->ld, fi, 64, &n);
        bool behind = false;
        uint64_t done = 0;
        for (size_t i = 0; i < n && i < 64; i++) {
            if (fi[i].connected && fi[i].durable < pos.durable)
                behind = true;
            else if (fi[i].connected)
                done++;
        }
        if (!behind && done >= min_followers)
            break;
        rlog_ship_leader_poll(s->ld, 10);
    }
}

void cli_server_stop(cli_server *s, rlog_log *log)
{
    cli_server_join(s);
    cli_server_status(s, log, stderr);
    rlog_ship_leader_free(s->ld);
    free(s);
}

/* The options serve and follow share: DIR, the URL option `url_opt`
 * (--listen, --leader), TLS, --id, --interval and (follow: until and
 * leader_id != NULL) --until and --leader-id. */
static int ship_parse(cli_args *a, const char *url_opt, const char **dir, const char **url,
                      uint64_t *id, uint64_t *interval_ms, uint64_t *until, uint64_t *leader_id,
                      cli_tls *tls)
{
    while (a->i < a->argc) {
        int r;
        if ((r = cli_opt(a, url_opt, url)) != 0 || (r = cli_opt_tls(a, tls)) != 0 ||
            (r = cli_opt_u64(a, "--id", id, 1, UINT64_MAX)) != 0 ||
            (until && (r = cli_opt_u64(a, "--until", until, 1, UINT64_MAX)) != 0) ||
            (leader_id && (r = cli_opt_u64(a, "--leader-id", leader_id, 1, UINT64_MAX)) != 0) ||
            (r = cli_opt_u64(a, "--interval", interval_ms, 10, 3600000)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_arg_dir(a, dir) < 0) {
            return CLI_EXIT_USAGE;
        }
    }
    if (!*dir || !*url)
        return cli_usage_error(a->cmd, "DIR and %s URL are required", url_opt);
    if (cli_tls_check(a->cmd, tls) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    return CLI_EXIT_OK;
}

static int cmd_serve(cli_args *a)
{
    const char *dir = NULL, *url = NULL;
    uint64_t id = 1, interval_ms = 1000;
    cli_tls tls = {0};
    int ex = ship_parse(a, "--listen", &dir, &url, &id, &interval_ms, NULL, NULL, &tls);
    if (ex)
        return ex;
    rlog_options o;
    rlog_options_init(&o);
    o.segment_size = cli_log_segment_size(dir); /* the log's own (0: the default) */
    rlog_open_report rep;
    memset(&rep, 0, sizeof rep);
    rlog_log *log = NULL;
    int rv = rlog_open(dir, &o, &log, &rep);
    if (rv) {
        fprintf(stderr, "rlog ship serve: cannot open %s: %s: %s\n", dir, rlog_errname(rv),
                rep.message[0] ? rep.message : rlog_strerror(rv));
        return cli_exit_for_open(rv);
    }
    ship_catch_signals();
    cli_server *s = NULL;
    if (cli_server_start(&s, log, url, id, &tls, "ship serve")) {
        rlog_close(log);
        return CLI_EXIT_ERROR;
    }
    uint64_t next = cli_now_ns();
    while (!ship_stop) {
        rlog_ship_leader_poll(s->ld, 50);
        if (cli_now_ns() >= next) {
            cli_server_status(s, log, stderr);
            next = cli_now_ns() + interval_ms * 1000000ull;
        }
    }
    cli_server_stop(s, log);
    rv = rlog_close(log);
    return rv ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ---- the follower ---- */

static void follow_on_durable(void *data, uint64_t lsn)
{
    uint64_t *printed = data;
    if (lsn <= *printed)
        return;
    *printed = lsn;
    char line[40];
    int n = snprintf(line, sizeof line, "durable %" PRIu64 "\n", lsn);
    ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
    (void)w;
}

typedef struct follow_ctx {
    const char *dir, *url;
    uint64_t id, leader_id;
    cli_tls tls;
    uint64_t printed; /* last "durable" LSN printed */
} follow_ctx;

static int follow_open(follow_ctx *fc, rlog_ship_follower **f)
{
    rlog_transport *t = NULL;
    int rv = ship_transport(&t, "ship follow");
    if (rv)
        return rv;
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = fc->id;
    cfg.address = ""; /* dials only */
    cfg.logger = transport_logger;
    cfg.logger_data = "ship follow";
    tls_apply(&cfg, &fc->tls);
    rlog_ship_follower_options fo;
    memset(&fo, 0, sizeof fo);
    fo.on_durable = follow_on_durable;
    fo.data = &fc->printed;
    fo.logger = ship_logger;
    fo.logger_data = "ship follow";
    fo.leader_id = fc->leader_id;
    rv = rlog_ship_follower_new(fc->dir, t, &cfg, fc->url, &fo, f);
    if (rv)
        fprintf(stderr, "rlog ship follow: cannot follow into %s: %s\n", fc->dir,
                rlog_strerror(rv));
    return rv;
}

/* Catch-up progress: while the follower is behind the leader for more than
 * a second, one line on stderr, rewritten in place every 250 ms, and a
 * "caught up" line at the end (always at the end of the first catch-up
 * after start) — only when stderr is a terminal (and not --quiet). A
 * follower that keeps up with a live leader (behind for a few milliseconds
 * at each append) shows nothing. stdout ("durable N" lines) is unchanged. */
typedef struct catchup {
    bool tty;
    bool behind;       /* an episode is under way */
    bool displayed;    /* this episode has shown a line */
    bool shown;        /* a progress line is on the screen now */
    bool initial_done; /* the first catch-up after start ended */
    uint64_t t0_ns, next_ns;
    uint64_t bytes0, lsn0; /* where the episode started */
} catchup;

/* Erases a progress line on the screen (before another stderr line). */
static void catchup_clear(catchup *c)
{
    if (c->shown)
        fprintf(stderr, "\r\033[K");
    c->shown = false;
}

static void catchup_line(catchup *c, const rlog_ship_follower_status *st, uint64_t now, bool done)
{
    double secs = (double)(now - c->t0_ns) / 1e9;
    double mb = (double)(st->bytes_received - c->bytes0) / 1e6;
    uint64_t got = st->durable - c->lsn0, total = st->leader_durable - c->lsn0;
    catchup_clear(c);
    if (done) {
        fprintf(stderr,
                "rlog ship follow: caught up to LSN %" PRIu64 ": %" PRIu64
                " records, %.1f MB in %.1f s (%.1f MB/s)\n",
                st->durable, got, mb, secs, mb / secs);
        return;
    }
    double left = got ? (double)(st->leader_durable - st->durable) * secs / (double)got : 0;
    fprintf(stderr,
            "rlog ship follow: catching up: LSN %" PRIu64 " of %" PRIu64 " (%.0f%%), %.1f MB, "
            "%.1f MB/s, %" PRIu64 " records behind, ~%.0f s left",
            st->durable, st->leader_durable, total ? 100.0 * (double)got / (double)total : 0.0, mb,
            mb / secs, st->leader_durable - st->durable, left);
    fflush(stderr);
    c->shown = c->displayed = true;
}

static void catchup_progress(catchup *c, const rlog_ship_follower_status *st, uint64_t now)
{
    if (!c->tty)
        return;
    if (c->behind && (st->bytes_received < c->bytes0 || st->durable < c->lsn0))
        c->behind = false; /* the follower was reopened: a new episode */
    bool behind = st->leader_durable > st->durable;
    if (!behind && !c->behind && !c->initial_done && st->leader_durable > 0) {
        /* the first catch-up began and ended between two looks (a short
         * one, or a loaded machine): t0_ns and lsn0 are from the start */
        if (st->durable > c->lsn0)
            catchup_line(c, st, now, true);
        c->initial_done = true;
        return;
    }
    if (behind && !c->behind) {
        *c = (catchup){.tty = true,
                       .initial_done = c->initial_done,
                       .behind = true,
                       .t0_ns = now,
                       .next_ns = now + 1000000000ull,
                       .bytes0 = st->bytes_received,
                       .lsn0 = st->durable};
        return;
    }
    if (c->behind && !behind) {
        if (c->displayed || !c->initial_done)
            catchup_line(c, st, now, true);
        c->initial_done = true;
        c->behind = false;
    } else if (c->behind && now >= c->next_ns) {
        catchup_line(c, st, now, false);
        c->next_ns = now + 250000000ull;
    }
}

static int cmd_follow(cli_args *a)
{
    const char *dir = NULL, *url = NULL;
    uint64_t id = 0, interval_ms = 1000, until = 0, leader_id = 0;
    cli_tls tls = {0};
    int ex = ship_parse(a, "--leader", &dir, &url, &id, &interval_ms, &until, &leader_id, &tls);
    if (ex)
        return ex;
    if (tls.ca && id == 0)
        return cli_usage_error(a->cmd, "with TLS, --id N is required (the certificate is rlog-N)");
    if (id == 0) {
        rlog_env *env = rlog_env_posix();
        id = env->random(env) | 1u;
    }
    ship_catch_signals();
    follow_ctx fc = {dir, url, id, leader_id, tls, 0};
    rlog_ship_follower *f = NULL;
    int rv = follow_open(&fc, &f);
    if (rv)
        return cli_exit_for_open(rv);
    if (leader_id)
        fprintf(stderr,
                "rlog ship follow: %s following leader %" PRIu64 " at %s as id %" PRIu64 "\n", dir,
                leader_id, url, id);
    else
        fprintf(stderr, "rlog ship follow: %s following %s as id %" PRIu64 "\n", dir, url, id);
    ex = CLI_EXIT_OK;
    uint64_t next = cli_now_ns(), last_bytes = 0, last_ns = cli_now_ns();
    rlog_ship_follower_status st0;
    rlog_ship_follower_status_get(f, &st0);
    catchup cu = {.tty = !cli_quiet && isatty(STDERR_FILENO),
                  .t0_ns = cli_now_ns(),
                  .bytes0 = st0.bytes_received,
                  .lsn0 = st0.durable};
    while (!ship_stop) {
        rv = rlog_ship_follower_poll(f, 50);
        rlog_ship_follower_status st;
        rlog_ship_follower_status_get(f, &st);
        uint64_t now = cli_now_ns();
        catchup_progress(&cu, &st, now);
        if (now >= next || st.state == RLOG_SHIP_REFUSED || rv) {
            double dt = (double)(now - last_ns) / 1e9;
            catchup_clear(&cu);
            fprintf(stderr,
                    "follower state=%s log_id=%016" PRIx64 " durable=%" PRIu64
                    " leader_durable=%" PRIu64 " lag_records=%" PRIu64
                    " mb_s=%.1f reconnects=%" PRIu64 " truncations=%" PRIu64 " resets=%" PRIu64
                    "%s%s\n",
                    rlog_ship_state_name(st.state), st.log_id, st.durable, st.leader_durable,
                    st.leader_durable > st.durable ? st.leader_durable - st.durable : 0,
                    dt > 0 && st.bytes_received >= last_bytes
                        ? (double)(st.bytes_received - last_bytes) / 1e6 / dt
                        : 0,
                    st.reconnects, st.truncations, st.resets, st.message[0] ? " last=" : "",
                    st.message);
            last_bytes = st.bytes_received;
            last_ns = now;
            next = now + interval_ms * 1000000ull;
        }
        if (st.state == RLOG_SHIP_REFUSED) {
            fprintf(stderr, "rlog ship follow: refused by the leader: %s\n", st.message);
            ex = CLI_EXIT_ERROR;
            break;
        }
        if (rv && rv != RLOG_ECLOSED) {
            /* its own disk failed: reopen (recovery) after a pause, as
             * the API asks */
            fprintf(stderr, "rlog ship follow: %s: %s; reopening %s\n", rlog_errname(rv),
                    rlog_ship_follower_errmsg(f), dir);
            rlog_ship_follower_free(f);
            f = NULL;
            usleep(200000);
            if ((rv = follow_open(&fc, &f)) != 0) {
                ex = CLI_EXIT_ERROR;
                break;
            }
            last_bytes = 0;
            continue;
        }
        if (until && st.durable >= until)
            break;
    }
    catchup_clear(&cu);
    if (f)
        rlog_ship_follower_free(f);
    return ex;
}

/* ---- status ---- */

static int cmd_status(cli_args *a)
{
    const char *url = NULL;
    uint64_t timeout_ms = 3000, id = 0, leader_id = 0;
    cli_tls tls = {0};
    for (; a->i < a->argc;) {
        int r;
        if ((r = cli_opt_u64(a, "--timeout", &timeout_ms, 1, 3600000)) != 0 ||
            (r = cli_opt_u64(a, "--id", &id, 1, UINT64_MAX)) != 0 ||
            (r = cli_opt_u64(a, "--leader-id", &leader_id, 1, UINT64_MAX)) != 0 ||
            (r = cli_opt_tls(a, &tls)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
        } else if (a->argv[a->i][0] == '-') {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        } else if (!url) {
            url = a->argv[a->i++];
        } else {
            return cli_usage_error(a->cmd, "unexpected argument '%s'", a->argv[a->i]);
        }
    }
    if (!url)
        return cli_usage_error(a->cmd, "missing URL");
    if (cli_tls_check(a->cmd, &tls) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    bool tls_url = strncmp(url, "tls+", 4) == 0;
    if (tls_url && !tls.ca)
        return cli_usage_error(a->cmd,
                               "%s is a TLS leader: give --tls-cert, --tls-key, --tls-ca and "
                               "--id N (a certificate from the leader's CA named rlog-N)",
                               url);
    if (tls.ca && !tls_url)
        return cli_usage_error(a->cmd, "with --tls-* flags the URL must be tls+tcp://host:port");
    if (tls.ca && id == 0)
        return cli_usage_error(a->cmd, "with TLS, --id N is required (the certificate is rlog-N; "
                                       "not a follower's id: docs/security.md)");
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = id; /* 0: a random one */
    cfg.logger = transport_logger;
    cfg.logger_data = "ship status";
    tls_apply(&cfg, &tls);
    rlog_ship_status st;
    char err[256] = "";
    memset(&st, 0, sizeof st);
    int rv =
        rlog_ship_status_query_config(url, leader_id, &cfg, (int)timeout_ms, &st, err, sizeof err);
    if (rv) {
        fprintf(stderr, "rlog ship status: %s: %s: %s%s\n", url, rlog_errname(rv),
                err[0] ? err : rlog_strerror(rv),
                rv == RLOG_ENOCONN && !tls_url ? " (a TLS leader needs a tls+tcp:// URL and "
                                                 "--tls-cert, --tls-key, --tls-ca, --id)"
                                               : "");
        return CLI_EXIT_ERROR;
    }
    printf("leader log_id=%016" PRIx64 " first=%" PRIu64 " durable=%" PRIu64 " first_seq=%" PRIu64
           " last_seq=%" PRIu64 " followers=%zu\n",
           st.log_id, st.first_lsn, st.durable_lsn, st.first_seq, st.last_seq, st.n_followers);
    for (size_t i = 0; i < st.n_followers; i++) {
        const rlog_ship_follower_info *fi = &st.followers[i];
        printf("follower id=%" PRIu64 " name=%s state=%s connected=%d durable=%" PRIu64
               " lag_records=%" PRIu64 " lag_bytes=%" PRIu64 "\n",
               fi->id, fi->name[0] ? fi->name : "-", rlog_ship_state_name(fi->state), fi->connected,
               fi->durable, fi->lag_records, fi->lag_bytes);
    }
    rlog_ship_status_release(&st);
    return CLI_EXIT_OK;
}

int cli_cmd_ship(cli_args *a)
{
    if (a->i >= a->argc)
        return cli_usage_error(a->cmd, "missing sub-command (serve, follow or status)");
    const char *sub = a->argv[a->i++];
    if (strcmp(sub, "serve") == 0)
        return cmd_serve(a);
    if (strcmp(sub, "follow") == 0)
        return cmd_follow(a);
    if (strcmp(sub, "status") == 0)
        return cmd_status(a);
    return cli_usage_error(a->cmd, "unknown sub-command '%s' (serve, follow or status)", sub);
}
