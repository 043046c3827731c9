/*
 * kv_server — one node of a replicated key-value store on libraft.
 *
 *   kv_server --id 1 --address 127.0.0.1:9001 \
 *             --cluster 1@127.0.0.1:9001,2@127.0.0.1:9002,3@127.0.0.1:9003 \
 *             --dir /tmp/kv1 --client-port 7001 [--io rlog|uv]
 *             [--snapshot-threshold N] [--snapshot-trailing N]
 *             [--election-timeout MS] [--heartbeat MS]
 *             [--log-level debug|info|warn|error|off]   (rlog io messages, on stderr)
 *
 * Every node of a new cluster is started with the same --cluster: an empty
 * --dir is bootstrapped with it, a non-empty one is loaded (libraft answers
 * RAFT_CANTBOOTSTRAP, which is expected on a restart).
 *
 * Clients speak a line protocol on 127.0.0.1:<client-port>, one request at
 * a time per connection, one reply line per request:
 *
 *   put KEY VALUE   -> ok INDEX                (committed and applied)
 *   del KEY         -> ok INDEX
 *   get KEY         -> value VALUE | missing   (after a barrier: linearizable)
 *   status          -> id=.. state=.. leader=.. term=.. applied=.. commit=.. ...
 *
 * put, del and get are served by the leader only; any other node answers
 * "notleader leader=ID address=HOST:PORT" (ID 0 when it knows no leader).
 * "retry REASON" means the request may not have taken effect (leadership
 * lost, node shutting down) and "err REASON" means it was malformed. KEY is
 * one word, VALUE the rest of the line.
 *
 * Everything runs on one libuv loop thread. SIGINT/SIGTERM close cleanly.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv_fsm.h"
#include "kv_io.h"

#define MAX_LINE (1u << 20)

struct server;

/* One client connection. Freed once its handle is closed and no raft
 * request of it is pending (the request structs live here). */
struct conn {
    uv_tcp_t tcp;
    struct server *s;
    struct conn *next, *prev; /* the server's list of connections */
    char *buf;                /* received bytes not yet handled */
    size_t len, cap;
    bool busy;          /* a raft request of this connection is pending */
    bool closing;       /* uv_close called */
    bool handle_closed; /* its close callback ran */
    char *get_key;      /* the key of a pending get, owned */
    size_t get_key_len;
    struct raft_apply apply;
    struct raft_barrier barrier;
};

struct server {
    uv_loop_t loop;
    struct raft raft;
    struct kv_io io;
    struct kv_fsm fsm;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_timer_t watch; /* reports state changes */
    struct conn *conns;
    raft_id id;
    bool stopping;
    bool raft_started;
    uint64_t restores_at_start; /* snapshot restores during raft_start */
    int last_state;
    raft_id last_leader;
};

static const char *state_name(int state)
{
    switch (state) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "unavailable";
    }
}

/* ---------------------------------------------------------- replies */

struct reply {
    uv_write_t req;
    char text[]; /* NUL-terminated line */
};

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a client gone before its reply: nothing to do */
    free(req->data);
}

static void conn_reply(struct conn *c, const char *fmt, ...)
{
    if (c->closing)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    struct reply *r = malloc(sizeof *r + (size_t)n + 2);
    if (!r)
        return;
    va_start(ap, fmt);
    vsnprintf(r->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->text[n] = '\n';
    r->req.data = r;
    uv_buf_t b = uv_buf_init(r->text, (unsigned)n + 1);
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        free(r);
}

/* ----------------------------------------------------- connections */

static void conn_free(struct conn *c)
{
    if (c->next)
        c->next->prev = c->prev;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->conns = c->next;
    free(c->buf);
    free(c->get_key);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->handle_closed = true;
    if (!c->busy)
        conn_free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_process(struct conn *c);

/* A pending raft request of c completed: free c if it closed meanwhile,
 * else carry on with the next buffered request. Returns true if c is still
 * open. */
static bool conn_request_done(struct conn *c)
{
    c->busy = false;
    free(c->get_key);
    c->get_key = NULL;
    if (c->handle_closed) {
        conn_free(c);
        return false;
    }
    return !c->closing;
}

static void reply_not_leader(struct conn *c)
{
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&c->s->raft, &id, &address);
    conn_reply(c, "notleader leader=%llu address=%s", (unsigned long long)id,
               address ? address : "-");
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct conn *c = req->data;
    (void)result;
    if (!conn_request_done(c))
        return;
    if (status == 0)
        conn_reply(c, "ok %llu", (unsigned long long)req->index);
    else
        conn_reply(c, "retry %s", raft_strerror(status));
    conn_process(c);
}

static void on_barrier(struct raft_barrier *req, int status)
{
    struct conn *c = req->data;
    const struct kv_pair *p =
        status == 0 ? kv_map_get(&c->s->fsm.map, c->get_key, c->get_key_len) : NULL;
    /* reply before conn_request_done frees the key; the value is copied */
    if (!c->handle_closed && !c->closing) {
        if (status != 0)
            conn_reply(c, "retry %s", raft_strerror(status));
        else if (p)
            conn_reply(c, "value %s", p->value);
        else
            conn_reply(c, "missing");
    }
    if (conn_request_done(c))
        conn_process(c);
}

/* After raft_apply/raft_barrier returned rv: pending (its callback replies)
 * or refused (reply now). */
static void request_submitted(struct conn *c, int rv)
{
    if (rv == 0)
        c->busy = true;
    else if (rv == RAFT_NOTLEADER)
        reply_not_leader(c);
    else
        conn_reply(c, "retry %s", raft_strerror(rv));
}

/* put/del: propose the command; the reply comes from on_applied. */
static void handle_change(struct conn *c, int op, const char *key, size_t key_len,
                          const char *value, size_t value_len)
{
    struct raft_buffer buf;
    if (kv_command_encode(op, key, key_len, value, value_len, &buf) != 0) {
        conn_reply(c, "retry out of memory");
        return;
    }
    c->apply.data = c;
    int rv = raft_apply(&c->s->raft, &c->apply, &buf, 1, on_applied);
    if (rv != 0)
        raft_free(buf.base);
    request_submitted(c, rv);
}

static void handle_get(struct conn *c, const char *key, size_t key_len)
{
    c->get_key = malloc(key_len + 1);
    if (!c->get_key) {
        conn_reply(c, "retry out of memory");
        return;
    }
    memcpy(c->get_key, key, key_len);
    c->get_key[key_len] = '\0';
    c->get_key_len = key_len;
    c->barrier.data = c;
    int rv = raft_barrier(&c->s->raft, &c->barrier, on_barrier);
    if (rv != 0) {
        free(c->get_key);
        c->get_key = NULL;
    }
    request_submitted(c, rv);
}

static void handle_status(struct conn *c)
{
    struct server *s = c->s;
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(&s->raft, &leader, &address);
    conn_reply(
        c,
        "id=%llu state=%s leader=%llu term=%llu applied=%llu commit=%llu "
        "last_index=%llu keys=%zu digest=%016" PRIx64 " snapshot_installs=%" PRIu64 " io=%s",
        (unsigned long long)s->id, state_name(raft_state(&s->raft)), (unsigned long long)leader,
        (unsigned long long)s->raft.current_term, (unsigned long long)raft_last_applied(&s->raft),
        (unsigned long long)s->raft.commit_index, (unsigned long long)raft_last_index(&s->raft),
        s->fsm.map.n_pairs, kv_map_digest(&s->fsm.map), s->fsm.restores - s->restores_at_start,
        kv_io_name(s->io.kind));
}

/* One request line (without its newline, NUL-terminated). */
static void handle_line(struct conn *c, char *line)
{
    char *cmd = line;
    char *rest = strchr(line, ' ');
    if (rest)
        *rest++ = '\0';
    if (strcmp(cmd, "status") == 0) {
        handle_status(c);
        return;
    }
    if (c->s->stopping) {
        conn_reply(c, "retry shutting down");
        return;
    }
    const char *key = rest ? rest : "";
    size_t key_len = strcspn(key, " ");
    const char *value = key[key_len] ? key + key_len + 1 : "";
    bool put = strcmp(cmd, "put") == 0, del = strcmp(cmd, "del") == 0;
    bool get = strcmp(cmd, "get") == 0;
    if (!put && !del && !get) {
        conn_reply(c, "err unknown command '%s'", cmd);
        return;
    }
    if (key_len == 0 || (!put && key[key_len] != '\0')) {
        conn_reply(c, "err usage: put KEY VALUE | get KEY | del KEY | status");
        return;
    }
    if (raft_state(&c->s->raft) != RAFT_LEADER)
        reply_not_leader(c);
    else if (get)
        handle_get(c, key, key_len);
    else if (put)
        handle_change(c, KV_OP_PUT, key, key_len, value, strlen(value));
    else
        handle_change(c, KV_OP_DEL, key, key_len, NULL, 0);
}

/* Handles buffered complete lines until one leaves a raft request pending. */
static void conn_process(struct conn *c)
{
    while (!c->busy && !c->closing) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (!nl)
            return;
        size_t n = (size_t)(nl - c->buf);
        *nl = '\0';
        if (n > 0 && c->buf[n - 1] == '\r')
            c->buf[n - 1] = '\0';
        handle_line(c, c->buf); /* copies what it keeps */
        memmove(c->buf, nl + 1, c->len - n - 1);
        c->len -= n + 1;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    (void)suggested;
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        char *p = cap <= 2 * MAX_LINE ? realloc(c->buf, cap) : NULL;
        if (!p) {
            *b = uv_buf_init(NULL, 0); /* UV_ENOBUFS: the connection closes */
            return;
        }
        c->buf = p;
        c->cap = cap;
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = stream->data;
    (void)b;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    conn_process(c);
    if (c->len > MAX_LINE && !memchr(c->buf, '\n', c->len)) {
        conn_reply(c, "err line longer than %u bytes", MAX_LINE);
        conn_close(c);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status != 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* -------------------------------------------------------- lifecycle */

static void on_watch(uv_timer_t *t)
{
    struct server *s = t->data;
    raft_id leader = 0;
    const char *address = NULL;
    int state = raft_state(&s->raft);
    raft_leader(&s->raft, &leader, &address);
    if (state != s->last_state || leader != s->last_leader) {
        printf("node %llu: %s, term %llu, leader %llu\n", (unsigned long long)s->id,
               state_name(state), (unsigned long long)s->raft.current_term,
               (unsigned long long)leader);
        fflush(stdout);
        s->last_state = state;
        s->last_leader = leader;
    }
}

static void on_raft_closed(struct raft *r)
{
    (void)r; /* the io is freed after uv_run returns */
}

static void server_stop(struct server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    uv_close((uv_handle_t *)&s->watch, NULL);
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    for (struct conn *c = s->conns; c; c = c->next)
        conn_close(c);
    raft_close(&s->raft, on_raft_closed); /* fails pending requests */
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    printf("node %llu: signal %d, closing\n", (unsigned long long)s->id, signum);
    fflush(stdout);
    server_stop(s);
}

/* ------------------------------------------------------------ main */

struct config {
    raft_id id;
    const char *address, *cluster, *dir;
    int client_port;
    enum kv_io_kind io;
    enum kv_log_level log_level;
    unsigned snapshot_threshold, snapshot_trailing, election_ms, heartbeat_ms;
};

static void usage(void)
{
    fprintf(stderr, "usage: kv_server --id N --address HOST:PORT --cluster ID@HOST:PORT,... "
                    "--dir DIR --client-port PORT [--io rlog|uv] [--snapshot-threshold N] "
                    "[--snapshot-trailing N] [--election-timeout MS] [--heartbeat MS] "
                    "[--log-level debug|info|warn|error|off]\n");
    exit(2);
}

static unsigned long long parse_number(const char *flag, const char *text)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end) {
        fprintf(stderr, "kv_server: %s: not a number: '%s'\n", flag, text);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->io = kv_io_default();
    cfg->log_level = KV_LOG_WARN;
    cfg->snapshot_threshold = 1024; /* libraft's defaults */
    cfg->snapshot_trailing = 8192;
    cfg->election_ms = 1000;
    cfg->heartbeat_ms = 100;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(f, "--id") == 0)
            cfg->id = parse_number(f, v);
        else if (strcmp(f, "--address") == 0)
            cfg->address = v;
        else if (strcmp(f, "--cluster") == 0)
            cfg->cluster = v;
        else if (strcmp(f, "--dir") == 0)
            cfg->dir = v;
        else if (strcmp(f, "--client-port") == 0)
            cfg->client_port = (int)parse_number(f, v);
        else if (strcmp(f, "--snapshot-threshold") == 0)
            cfg->snapshot_threshold = (unsigned)parse_number(f, v);
        else if (strcmp(f, "--snapshot-trailing") == 0)
            cfg->snapshot_trailing = (unsigned)parse_number(f, v);
        else if (strcmp(f, "--election-timeout") == 0)
            cfg->election_ms = (unsigned)parse_number(f, v);
        else if (strcmp(f, "--heartbeat") == 0)
            cfg->heartbeat_ms = (unsigned)parse_number(f, v);
        else if (strcmp(f, "--log-level") == 0) {
            if (kv_log_level_parse(v, &cfg->log_level) != 0)
                usage();
        } else if (strcmp(f, "--io") == 0) {
            if (kv_io_parse(v, &cfg->io) != 0) {
                fprintf(stderr, "kv_server: --io %s: expected %s\n", v,
                        kv_io_have_rlog() ? "rlog or uv" : "uv (this build has no rlog io)");
                exit(2);
            }
        } else
            usage();
    }
    if (!cfg->id || !cfg->address || !cfg->cluster || !cfg->dir || cfg->client_port <= 0 ||
        cfg->client_port > 65535)
        usage();
}

/* "1@host:port,2@host:port" into conf (all voters). */
static int parse_cluster(const char *text, struct raft_configuration *conf)
{
    char *copy = strdup(text);
    int rv = copy ? 0 : RAFT_NOMEM;
    char *save = NULL;
    for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; item && rv == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *at = strchr(item, '@');
        char *end;
        unsigned long long id = at ? strtoull(item, &end, 10) : 0;
        if (!at || id == 0 || end != at) {
            fprintf(stderr, "kv_server: --cluster: bad member '%s' (expected ID@HOST:PORT)\n",
                    item);
            rv = RAFT_INVALID;
            break;
        }
        rv = raft_configuration_add(conf, id, at + 1, RAFT_VOTER);
        if (rv != 0)
            fprintf(stderr, "kv_server: --cluster: %s: %s\n", item, raft_strerror(rv));
    }
    free(copy);
    return rv;
}

static int listen_clients(struct server *s, int port)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    int rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rv != 0)
        fprintf(stderr, "kv_server: client port 127.0.0.1:%d: %s\n", port, uv_strerror(rv));
    return rv;
}

/* libraft's message, or the io's when libraft has none (some io failures
 * reach raft_start's caller without one). */
static void report_raft_error(struct server *s, const char *what, int rv)
{
    const char *msg = raft_errmsg(&s->raft);
    if (!msg || !*msg)
        msg = s->io.io.errmsg;
    fprintf(stderr, "kv_server: %s: %s: %s\n", what, raft_strerror(rv), msg);
}

static int start_raft(struct server *s, const struct config *cfg)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = parse_cluster(cfg->cluster, &conf);
    if (rv == 0) {
        rv = raft_bootstrap(&s->raft, &conf);
        if (rv == RAFT_CANTBOOTSTRAP)
            rv = 0; /* a restart: the directory holds the cluster's state */
        else if (rv != 0)
            report_raft_error(s, "bootstrap", rv);
    }
    raft_configuration_close(&conf);
    if (rv == 0) {
        rv = raft_start(&s->raft);
        if (rv != 0)
            report_raft_error(s, "start", rv);
    }
    s->restores_at_start = s->fsm.restores;
    return rv;
}

int main(int argc, char **argv)
{
    struct config cfg;
    parse_args(argc, argv, &cfg);
    static struct server srv;
    struct server *s = &srv;
    s->id = cfg.id;
    s->last_state = -1;
    char err[512];
    /* A peer or client that went away must not kill us on the next write:
     * libuv reports EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    if (mkdir(cfg.dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "kv_server: mkdir %s: %s\n", cfg.dir, strerror(errno));
        return 1;
    }
    uv_loop_init(&s->loop);
    if (kv_io_init(&s->io, cfg.io, &s->loop, cfg.dir, cfg.log_level, err, sizeof err) != 0) {
        fprintf(stderr, "kv_server: %s\n", err);
        return 1;
    }
    kv_fsm_init(&s->fsm);
    int rv = raft_init(&s->raft, &s->io.io, &s->fsm.fsm, cfg.id, cfg.address);
    if (rv != 0) {
        report_raft_error(s, "raft_init", rv);
        kv_io_fini(&s->io);
        return 1;
    }
    raft_set_election_timeout(&s->raft, cfg.election_ms);
    raft_set_heartbeat_timeout(&s->raft, cfg.heartbeat_ms);
    raft_set_snapshot_threshold(&s->raft, cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&s->raft, cfg.snapshot_trailing);
    /* A follower busy with a snapshot of its own ignores the leader's
     * InstallSnapshot (libraft 0.15, "the leader will eventually retry"),
     * and the leader retries only after install_snapshot_timeout — 30 s by
     * default. This store's snapshots are small: retry after 2 s. */
    raft_set_install_snapshot_timeout(&s->raft, 2000);

    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    uv_timer_init(&s->loop, &s->watch);
    s->watch.data = s;
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    int failed = start_raft(s, &cfg) != 0 || listen_clients(s, cfg.client_port) != 0;
    if (failed) {
        server_stop(s);
    } else {
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
        uv_timer_start(&s->watch, on_watch, 0, 20);
        printf("node %llu: raft %s, clients 127.0.0.1:%d, io %s, dir %s, applied %llu\n",
               (unsigned long long)cfg.id, cfg.address, cfg.client_port, kv_io_name(cfg.io),
               cfg.dir, (unsigned long long)raft_last_applied(&s->raft));
        fflush(stdout);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    kv_io_fini(&s->io);
    kv_fsm_close(&s->fsm);
    uv_loop_close(&s->loop);
    return failed ? 1 : 0;
}
