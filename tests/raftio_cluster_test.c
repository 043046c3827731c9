/* libraft 0.15 clusters on librlog-raft: three (and four) servers in one
 * process on one libuv loop, talking over tcp loopback, storing in real
 * directories. Election; replication applied on every server with
 * byte-identical state machines; leader stop, re-election and restart
 * with catch-up; a snapshot installed on a follower that fell behind the
 * leader's compacted log; membership add, promote, remove; a restart of
 * every server; hostile and malformed messages from a fake peer dropped
 * with an error logged while the cluster keeps working; a burst of
 * commands leaves the leader as a few merged AppendEntries. The loop runs
 * until a condition holds, with a generous guard of loop time (never a
 * timing assertion). */
#include "util/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <raft.h>
#include <uv.h>

#include "rlog/raft_io.h"
#include "rlog/vfs_fault.h"
#include "rlog/ship.h"
#include "rlog/transport.h"

#define MAX_NODES 5
#define GUARD_MS  30000

typedef struct node {
    raft_id id;
    char address[64];
    char *dir;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    bool running;
    bool ignored; /* running but left out of leader and state checks */
    int closed;
    /* the state machine: every command applied, concatenated */
    uint8_t *state;
    size_t len;
    unsigned commands;
    unsigned restores;
    unsigned snapshots;
    /* set for nodes started with the custom init over a fault vfs */
    rlog_vfs *fv;
    rlog_loop *lp;
    /* messages this node's io sent (nodes started with c->counting) */
    unsigned ae_msgs;    /* AppendEntries carrying entries */
    unsigned ae_entries; /* the entries in them */
    /* c->spying: the io's own start and send, and what passed them from
     * and to server 99 (the hostile-peer tests' fake peer) */
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    int (*io_send)(struct raft_io *, struct raft_io_send *, const struct raft_message *,
                   raft_io_send_cb);
    raft_io_recv_cb libraft_recv;
    unsigned spy_ae;                     /* AppendEntries from 99 handed to libraft */
    struct raft_append_entries spy_last; /* the last one (entries not kept) */
    unsigned spy_results;                /* AppendEntriesResult libraft sent to 99 */
    unsigned spy_got;                    /* AppendEntriesResult from 99 handed to libraft */
    struct raft_append_entries_result spy_got_last; /* the last one */
    struct raft_append_entries_result spy_last_result;
} node;

typedef struct cluster {
    uv_loop_t loop;
    char *base;
    node nodes[MAX_NODES];
    unsigned n;
    unsigned threshold, trailing;
    char ship_address[64]; /* served by node 1 when set */
    bool faulty;           /* nodes start on a fault-injecting vfs */
    bool counting;         /* nodes send through a counting transport */
    bool spying;           /* nodes' io start and send wrapped (spy_*) */
    /* log lines with level >= ERROR, for the hostile-peer test */
    char errors[8192];
    unsigned old_term_lines; /* "not counted toward commit" (raft_io/recv.c) */
} cluster;

/* ---------------------------------------------------------- the FSM */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    node *n = fsm->data;
    n->state = realloc(n->state, n->len + buf->len);
    memcpy(n->state + n->len, buf->base, buf->len);
    n->len += buf->len;
    n->commands++;
    *result = NULL;
    return 0;
}

/* Snapshot: [u32 commands][state bytes]. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    node *n = fsm->data;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].len = 4 + n->len;
    (*bufs)[0].base = raft_malloc(4 + n->len + 1);
    memcpy((*bufs)[0].base, &n->commands, 4);
    if (n->len > 0) {
        memcpy((uint8_t *)(*bufs)[0].base + 4, n->state, n->len);
    }
    *n_bufs = 1;
    n->snapshots++;
    return 0;
}

/* Version 3: libraft runs this through io->async_work. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)fsm;
    return *n_bufs == 1 && (*bufs)[0].len >= 4 ? 0 : RAFT_INVALID;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)fsm;
    if (*bufs != NULL) {
        for (unsigned i = 0; i < *n_bufs; i++) {
            raft_free((*bufs)[i].base);
        }
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    node *n = fsm->data;
    if (buf->len < 4) {
        return RAFT_MALFORMED;
    }
    memcpy(&n->commands, buf->base, 4);
    n->len = buf->len - 4;
    n->state = realloc(n->state, n->len + 1);
    memcpy(n->state, (uint8_t *)buf->base + 4, n->len);
    raft_free(buf->base);
    n->restores++;
    return 0;
}

/* ------------------------------------------------------- the cluster */

static void collect_log(void *data, rlog_level level, const char *msg)
{
    cluster *c = data;
    if (getenv("RAFTIO_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "[%d] %s\n", (int)level, msg);
    }
    if (strstr(msg, "not counted toward commit") != NULL) {
        c->old_term_lines++;
    }
    if (level >= RLOG_LEVEL_ERROR) {
        size_t have = strlen(c->errors);
        snprintf(c->errors + have, sizeof c->errors - have, "%s\n", msg);
    }
}

static unsigned free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void node_prepare(cluster *c, unsigned i)
{
    node *n = &c->nodes[i];
    memset(n, 0, sizeof *n);
    n->id = i + 1;
    snprintf(n->address, sizeof n->address, "127.0.0.1:%u", free_port());
    size_t len = strlen(c->base) + 16;
    n->dir = malloc(len);
    snprintf(n->dir, len, "%s/n%u", c->base, i + 1);
}

static void conf_of(cluster *c, unsigned voters, struct raft_configuration *conf)
{
    raft_configuration_init(conf);
    for (unsigned i = 0; i < voters; i++) {
        assert_int_equal(
            raft_configuration_add(conf, c->nodes[i].id, c->nodes[i].address, RAFT_VOTER), 0);
    }
}

/* A transport that counts what node n sends and hands everything to the
 * nng transport. */
typedef struct counting {
    rlog_transport table;
    rlog_transport *inner;
    node *n;
} counting;

static void ct_errmsg(rlog_transport *t)
{
    counting *k = t->impl;
    memcpy(t->errmsg, k->inner->errmsg, sizeof t->errmsg);
}

static int ct_init(rlog_transport *t, const rlog_transport_config *cfg,
                   const rlog_transport_events *ev)
{
    counting *k = t->impl;
    int rv = k->inner->init(k->inner, cfg, ev);
    ct_errmsg(t);
    return rv;
}

static int ct_listen(rlog_transport *t)
{
    counting *k = t->impl;
    int rv = k->inner->listen(k->inner);
    ct_errmsg(t);
    return rv;
}

static int ct_connect(rlog_transport *t, uint64_t peer_id, const char *address)
{
    counting *k = t->impl;
    int rv = k->inner->connect(k->inner, peer_id, address);
    ct_errmsg(t);
    return rv;
}

static int ct_disconnect(rlog_transport *t, uint64_t peer_id)
{
    counting *k = t->impl;
    return k->inner->disconnect(k->inner, peer_id);
}

static int ct_send(rlog_transport *t, uint64_t peer_id, const rlog_msg *msg,
                   rlog_transport_send_cb cb, void *data)
{
    counting *k = t->impl;
    if (msg->type == RLOG_MSG_APPEND_ENTRIES && msg->u.append_entries.n_entries > 0) {
        k->n->ae_msgs++;
        k->n->ae_entries += msg->u.append_entries.n_entries;
    }
    int rv = k->inner->send(k->inner, peer_id, msg, cb, data);
    ct_errmsg(t);
    return rv;
}

static int ct_poll(rlog_transport *t, int timeout_ms)
{
    counting *k = t->impl;
    return k->inner->poll(k->inner, timeout_ms);
}

static int ct_post(rlog_transport *t, void (*fn)(void *arg), void *arg)
{
    counting *k = t->impl;
    return k->inner->post(k->inner, fn, arg);
}

static void ct_close(rlog_transport *t)
{
    counting *k = t->impl;
    rlog_transport *inner = k->inner;
    free(k);
    inner->close(inner);
}

static const char *ct_local_address(rlog_transport *t)
{
    counting *k = t->impl;
    return k->inner->local_address(k->inner);
}

static rlog_transport *counting_new(node *n)
{
    counting *k = calloc(1, sizeof *k);
    assert_non_null(k);
    assert_int_equal(rlog_transport_nng_new(&k->inner), 0);
    k->n = n;
    k->table = (rlog_transport){.version = 1,
                                .impl = k,
                                .init = ct_init,
                                .listen = ct_listen,
                                .connect = ct_connect,
                                .disconnect = ct_disconnect,
                                .send = ct_send,
                                .poll = ct_poll,
                                .post = ct_post,
                                .close = ct_close,
                                .local_address = ct_local_address};
    return &k->table;
}

/* c->spying: libraft's io start and send wrapped, to see what the adapter
 * hands libraft from server 99 and what libraft answers it. */
static cluster *spy_cluster;

static node *spy_node(struct raft_io *io)
{
    for (unsigned i = 0; i < MAX_NODES; i++) {
        if (&spy_cluster->nodes[i].io == io) {
            return &spy_cluster->nodes[i];
        }
    }
    fail_msg("spy: an io of no node");
    return NULL;
}

static void spy_recv(struct raft_io *io, struct raft_message *m)
{
    node *n = spy_node(io);
    if (m->server_id == 99 && m->type == RAFT_IO_APPEND_ENTRIES) {
        n->spy_ae++;
        n->spy_last = m->append_entries;
        n->spy_last.entries = NULL;
    }
    if (m->server_id == 99 && m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
        n->spy_got++;
        n->spy_got_last = m->append_entries_result;
    }
    n->libraft_recv(io, m);
}

static int spy_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    node *n = spy_node(io);
    n->libraft_recv = recv;
    return n->io_start(io, msecs, tick, spy_recv);
}

static int spy_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                    raft_io_send_cb cb)
{
    node *n = spy_node(io);
    if (m->server_id == 99 && m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
        n->spy_results++;
        n->spy_last_result = m->append_entries_result;
    }
    return n->io_send(io, req, m, cb);
}

/* Starts node i; bootstraps it with the first `voters` servers when
 * voters > 0 and its directory is new. */
static void node_start(cluster *c, unsigned i, unsigned voters)
{
    node *n = &c->nodes[i];
    struct rlog_raft_io_options o = {0};
    o.logger = collect_log;
    o.logger_data = c;
    o.segment_size = 256 * 1024;
    o.snapshot_chunk = 512; /* several chunks per snapshot */
    if (i == 0 && c->ship_address[0] != '\0') {
        o.ship_address = c->ship_address;
    }
    int rv;
    if (c->faulty) {
        n->fv = rlog_vfs_fault_new(rlog_vfs_posix());
        assert_int_equal(rlog_loop_uv_new(&c->loop, &n->lp), 0);
        rv = rlog_raft_io_init_custom(&n->io, n->lp, n->dir, n->fv, NULL, NULL, &o);
    } else if (c->counting) {
        assert_int_equal(rlog_loop_uv_new(&c->loop, &n->lp), 0);
        rv = rlog_raft_io_init_custom(&n->io, n->lp, n->dir, NULL, NULL, counting_new(n), &o);
    } else {
        rv = rlog_raft_io_init(&n->io, &c->loop, n->dir, &o);
    }
    if (rv != 0) {
        fail_msg("rlog_raft_io_init: %s", n->io.errmsg);
    }
    n->fsm = (struct raft_fsm){.version = 3,
                               .data = n,
                               .apply = fsm_apply,
                               .snapshot = fsm_snapshot,
                               .restore = fsm_restore,
                               .snapshot_finalize = fsm_snapshot_finalize,
                               .snapshot_async = fsm_snapshot_async};
    free(n->state);
    n->state = NULL;
    n->len = 0;
    n->commands = 0;
    if (c->spying) {
        spy_cluster = c;
        n->io_start = n->io.start;
        n->io_send = n->io.send;
        n->io.start = spy_start;
        n->io.send = spy_send;
    }
    rv = raft_init(&n->raft, &n->io, &n->fsm, n->id, n->address);
    if (rv != 0) {
        fail_msg("raft_init: %s", raft_errmsg(&n->raft));
    }
    raft_set_election_timeout(&n->raft, 200);
    raft_set_heartbeat_timeout(&n->raft, 40);
    raft_set_install_snapshot_timeout(&n->raft, 2000);
    if (c->threshold > 0) {
        raft_set_snapshot_threshold(&n->raft, c->threshold);
        raft_set_snapshot_trailing(&n->raft, c->trailing);
    }
    if (voters > 0) {
        struct raft_configuration conf;
        conf_of(c, voters, &conf);
        rv = raft_bootstrap(&n->raft, &conf);
        raft_configuration_close(&conf);
        assert_true(rv == 0 || rv == RAFT_CANTBOOTSTRAP);
    }
    rv = raft_start(&n->raft);
    if (rv != 0) {
        fail_msg("raft_start %u: %s", i + 1, raft_errmsg(&n->raft));
    }
    n->running = true;
}

static void raft_closed(struct raft *r)
{
    node *n = r->data;
    n->closed = 1;
}

static bool run_until_fn(cluster *c, bool (*cond)(cluster *, void *), void *arg)
{
    uv_update_time(&c->loop);
    uint64_t until = uv_now(&c->loop) + GUARD_MS;
    while (!cond(c, arg)) {
        if (uv_now(&c->loop) > until) {
            return false;
        }
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool node_closed(cluster *c, void *arg)
{
    (void)c;
    return ((node *)arg)->closed != 0;
}

static void loop_closed(void *arg)
{
    ((node *)arg)->closed = 1;
}

static void node_stop(cluster *c, unsigned i)
{
    node *n = &c->nodes[i];
    assert_true(n->running);
    n->closed = 0;
    n->raft.data = n;
    raft_close(&n->raft, raft_closed);
    assert_true(run_until_fn(c, node_closed, n));
    rlog_raft_io_fini(&n->io);
    n->running = false;
    if (n->lp != NULL) {
        n->closed = 0;
        n->lp->close(n->lp, loop_closed, n);
        assert_true(run_until_fn(c, node_closed, n));
        rlog_loop_uv_free(n->lp);
        n->lp = NULL;
        if (n->fv != NULL) {
            n->fv->destroy(n->fv);
            n->fv = NULL;
        }
    }
}

static int setup(void **state)
{
    cluster *c = calloc(1, sizeof *c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    c->base = tu_mkdtemp("raftio-cluster");
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    cluster *c = *state;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->nodes[i].running) {
            node_stop(c, i);
        }
        free(c->nodes[i].state);
        free(c->nodes[i].dir);
    }
    for (int i = 0; i < 20; i++) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(uv_loop_close(&c->loop), 0);
    tu_rmdir_r(c->base);
    free(c->base);
    free(c);
    return 0;
}

static void cluster_start(cluster *c, unsigned n)
{
    c->n = n;
    for (unsigned i = 0; i < n; i++) {
        node_prepare(c, i);
    }
    for (unsigned i = 0; i < n; i++) {
        node_start(c, i, n);
    }
}

/* The running leader that every other running node also follows. */
static node *stable_leader(cluster *c)
{
    node *l = NULL;
    for (unsigned i = 0; i < c->n; i++) {
        node *n = &c->nodes[i];
        if (n->running && !n->ignored && raft_state(&n->raft) == RAFT_LEADER) {
            if (l != NULL) {
                return NULL;
            }
            l = n;
        }
    }
    if (l == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < c->n; i++) {
        node *n = &c->nodes[i];
        raft_id id;
        const char *addr;
        bool member = false;
        for (unsigned k = 0; k < l->raft.configuration.n; k++) {
            const struct raft_server *sv = &l->raft.configuration.servers[k];
            member = member || (sv->id == n->id && sv->role != RAFT_SPARE);
        }
        if (n->running && !n->ignored && n != l && member) {
            raft_leader(&n->raft, &id, &addr);
            if (id != l->id) {
                return NULL;
            }
        }
    }
    return l;
}

static bool has_leader(cluster *c, void *arg)
{
    (void)arg;
    return stable_leader(c) != NULL;
}

static node *wait_leader(cluster *c)
{
    if (!run_until_fn(c, has_leader, NULL)) {
        for (unsigned i = 0; i < c->n; i++) {
            node *n = &c->nodes[i];
            raft_id id = 0;
            const char *addr;
            if (n->running) {
                raft_leader(&n->raft, &id, &addr);
            }
            print_message("server %llu: running %d state %d leader %llu applied %u\n",
                          (unsigned long long)n->id, n->running,
                          n->running ? raft_state(&n->raft) : -1, (unsigned long long)id,
                          n->commands);
        }
        fail_msg("no stable leader");
    }
    return stable_leader(c);
}

typedef struct applyreq {
    struct raft_apply req;
    int done;
    int status;
} applyreq;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    applyreq *a = req->data;
    a->status = status;
    a->done = 1;
}

static bool apply_done(cluster *c, void *arg)
{
    (void)c;
    return ((applyreq *)arg)->done != 0;
}

/* Applies commands first..first+count-1 through the leader (retrying
 * when leadership moves). */
static void apply_range(cluster *c, unsigned first, unsigned count)
{
    for (unsigned k = first; k < first + count; k++) {
        for (int attempt = 0;; attempt++) {
            assert_true(attempt < 20);
            node *l = wait_leader(c);
            struct raft_buffer buf;
            buf.len = 16;
            buf.base = raft_malloc(buf.len);
            memset(buf.base, 0, buf.len);
            snprintf(buf.base, buf.len, "cmd-%08u", k);
            applyreq a = {0};
            a.req.data = &a;
            int rv = raft_apply(&l->raft, &a.req, &buf, 1, apply_cb);
            if (rv != 0) {
                raft_free(buf.base);
                continue;
            }
            assert_true(run_until_fn(c, apply_done, &a));
            if (a.status == 0) {
                break;
            }
        }
    }
}

typedef struct want {
    unsigned commands;
} want;

static bool all_applied(cluster *c, void *arg)
{
    want *w = arg;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->nodes[i].running && !c->nodes[i].ignored && c->nodes[i].commands < w->commands) {
            return false;
        }
    }
    return true;
}

/* Every running node applied `commands` commands and holds the same bytes:
 * the commands in order. */
static void expect_same_state(cluster *c, unsigned commands)
{
    want w = {commands};
    assert_true(run_until_fn(c, all_applied, &w));
    for (unsigned i = 0; i < c->n; i++) {
        node *n = &c->nodes[i];
        if (!n->running || n->ignored) {
            continue;
        }
        assert_int_equal(n->commands, commands);
        assert_int_equal(n->len, (size_t)commands * 16);
        for (unsigned k = 0; k < commands; k++) {
            char want_cmd[16] = {0};
            snprintf(want_cmd, sizeof want_cmd, "cmd-%08u", k);
            assert_memory_equal(n->state + (size_t)k * 16, want_cmd, 16);
        }
    }
}

/* ------------------------------------------------------------ tests */

static void test_elect_replicate_failover_restart(void **state)
{
    cluster *c = *state;
    cluster_start(c, 3);
    node *l = wait_leader(c);
    apply_range(c, 0, 50);
    expect_same_state(c, 50);
    /* Stop the leader: another one takes over and keeps committing. */
    unsigned old = (unsigned)(l->id - 1);
    node_stop(c, old);
    node *l2 = wait_leader(c);
    assert_int_not_equal(l2->id, old + 1);
    apply_range(c, 50, 20);
    expect_same_state(c, 70);
    /* The old leader comes back and catches up, byte for byte. */
    node_start(c, old, 0);
    expect_same_state(c, 70);
    /* Its directory holds every entry: its log reaches the leader's. */
    rlog_rs *rs = rlog_raft_io_storage(&c->nodes[old].io);
    assert_non_null(rs);
    assert_true(rlog_rs_last_index(rs) >= 71);
}

static void test_snapshot_install_to_lagging_follower(void **state)
{
    cluster *c = *state;
    c->threshold = 16;
    c->trailing = 4;
    cluster_start(c, 3);
    node *l = wait_leader(c);
    unsigned lag = l->id == 3 ? 1 : 2; /* a follower, 0-based */
    apply_range(c, 0, 10);
    expect_same_state(c, 10);
    node_stop(c, lag);
    apply_range(c, 10, 90);
    expect_same_state(c, 100);
    /* The leader compacted past what the follower has. */
    l = wait_leader(c);
    rlog_rs *lrs = rlog_raft_io_storage(&l->io);
    assert_true(rlog_rs_first_index(lrs) > 12);
    node_start(c, lag, 0);
    expect_same_state(c, 100);
    node *f = &c->nodes[lag];
    assert_true(f->restores >= 1); /* caught up through a snapshot */
    rlog_rs_stats st;
    rlog_rs_stats_get(rlog_raft_io_storage(&f->io), &st);
    assert_true(st.has_snapshot);
    assert_true(st.snap_index > 12);
    /* And keeps replicating normally afterwards. */
    apply_range(c, 100, 10);
    expect_same_state(c, 110);
    /* Across a restart of the follower, its state comes back the same. */
    node_stop(c, lag);
    node_start(c, lag, 0);
    expect_same_state(c, 110);
}

typedef struct changereq {
    struct raft_change req;
    int done;
    int status;
} changereq;

static void change_cb(struct raft_change *req, int status)
{
    changereq *ch = req->data;
    ch->status = status;
    ch->done = 1;
}

static bool change_done(cluster *c, void *arg)
{
    (void)c;
    return ((changereq *)arg)->done != 0;
}

static void change(cluster *c, int kind, raft_id id, const char *address, int role)
{
    for (int attempt = 0;; attempt++) {
        assert_true(attempt < 20);
        node *l = wait_leader(c);
        changereq ch = {0};
        ch.req.data = &ch;
        int rv = kind == 0   ? raft_add(&l->raft, &ch.req, id, address, change_cb)
                 : kind == 1 ? raft_assign(&l->raft, &ch.req, id, role, change_cb)
                             : raft_remove(&l->raft, &ch.req, id, change_cb);
        if (rv == 0) {
            assert_true(run_until_fn(c, change_done, &ch));
            if (ch.status == 0) {
                return;
            }
        } else {
            /* a change in progress or no longer leader: let the loop turn */
            uv_run(&c->loop, UV_RUN_ONCE);
        }
    }
}

static const struct raft_server *conf_find(const struct raft_configuration *conf, raft_id id)
{
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return &conf->servers[i];
        }
    }
    return NULL;
}

static void test_membership_add_promote_remove(void **state)
{
    cluster *c = *state;
    cluster_start(c, 3);
    apply_range(c, 0, 20);
    expect_same_state(c, 20);
    /* A fourth server, empty directory, not bootstrapped. */
    node_prepare(c, 3);
    c->n = 4;
    node_start(c, 3, 0);
    change(c, 0, 4, c->nodes[3].address, 0);
    change(c, 1, 4, NULL, RAFT_VOTER);
    apply_range(c, 20, 10);
    expect_same_state(c, 30);
    /* Remove server 3 (if it leads, leadership moves first). */
    change(c, 2, 3, NULL, 0);
    /* Server 3 no longer hears from the leader: stop it. */
    node_stop(c, 2);
    node *l = wait_leader(c);
    const struct raft_server *s4 = conf_find(&l->raft.configuration, 4);
    assert_non_null(s4);
    assert_int_equal(s4->role, RAFT_VOTER);
    assert_null(conf_find(&l->raft.configuration, 3));
    assert_int_equal(l->raft.configuration.n, 3);
    /* The remaining three (with the new voter) commit alone. */
    apply_range(c, 30, 10);
    expect_same_state(c, 40);
}

static void test_restart_every_server(void **state)
{
    cluster *c = *state;
    c->threshold = 32;
    c->trailing = 8;
    cluster_start(c, 3);
    apply_range(c, 0, 60);
    expect_same_state(c, 60);
    for (unsigned i = 0; i < 3; i++) {
        node_stop(c, i);
    }
    for (unsigned i = 0; i < 3; i++) {
        node_start(c, i, 0);
    }
    wait_leader(c);
    /* A new command commits only after the old ones are applied again. */
    apply_range(c, 60, 1);
    expect_same_state(c, 61);
}

/* A fake peer dials server 1 and sends what a hostile or broken peer
 * might: a snapshot whose configuration does not decode, entries of an
 * unknown type, a shipping message, snapshot chunks out of order. Each is
 * dropped with an error logged; the cluster keeps committing. */
typedef struct fake {
    bool up;
} fake;

static void fake_up(void *data, uint64_t id, const rlog_msg_hello *h)
{
    (void)id;
    (void)h;
    ((fake *)data)->up = true;
}

static rlog_transport *fake_t;
static fake fake_state;

static bool fake_ready(cluster *c, void *arg)
{
    (void)c;
    (void)arg;
    fake_t->poll(fake_t, 0);
    return fake_state.up;
}

/* Whether a node logged a line containing arg. */
static bool log_has(cluster *c, void *arg)
{
    return strstr(c->errors, (const char *)arg) != NULL;
}

/* log_has, with the fake peer's transport polled first. */
static bool errors_logged(cluster *c, void *arg)
{
    fake_t->poll(fake_t, 0);
    return log_has(c, arg);
}

/* Starts the fake peer (server 99) and connects it to node n. */
static void fake_connect(cluster *c, node *n)
{
    assert_int_equal(rlog_transport_nng_new(&fake_t), 0);
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = 99;
    cfg.role = RLOG_ROLE_RAFT;
    memset(&fake_state, 0, sizeof fake_state);
    rlog_transport_events ev = {.data = &fake_state, .peer_up = fake_up};
    assert_int_equal(fake_t->init(fake_t, &cfg, &ev), 0);
    char url[96];
    snprintf(url, sizeof url, "tcp://%s", n->address);
    assert_int_equal(fake_t->connect(fake_t, n->id, url), 0);
    assert_true(run_until_fn(c, fake_ready, NULL));
}

static void test_hostile_peer_messages_dropped(void **state)
{
    cluster *c = *state;
    cluster_start(c, 3);
    apply_range(c, 0, 5);
    fake_connect(c, &c->nodes[0]);

    /* 1: a snapshot whose configuration bytes are garbage. */
    uint8_t garbage[12] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    rlog_msg m = {.type = RLOG_MSG_INSTALL_SNAPSHOT};
    m.u.install_snapshot = (rlog_msg_install_snapshot){.term = 1000,
                                                       .last_index = 500,
                                                       .last_term = 1000,
                                                       .conf_index = 1,
                                                       .conf_len = sizeof garbage,
                                                       .conf = garbage,
                                                       .total = 3,
                                                       .offset = 0,
                                                       .chunk_len = 3,
                                                       .chunk = "abc",
                                                       .done = true};
    assert_int_equal(fake_t->send(fake_t, 1, &m, NULL, NULL), 0);
    assert_true(run_until_fn(c, errors_logged, "configuration"));
    /* 2: an entry type libraft does not know. */
    rlog_msg_entry e = {.term = 1, .type = 77, .len = 3, .data = "xyz"};
    m = (rlog_msg){.type = RLOG_MSG_APPEND_ENTRIES};
    m.u.append_entries = (rlog_msg_append_entries){
        .term = 1, .prev_log_index = 0, .prev_log_term = 0, .n_entries = 1, .entries = &e};
    assert_int_equal(fake_t->send(fake_t, 1, &m, NULL, NULL), 0);
    assert_true(run_until_fn(c, errors_logged, "unknown type"));
    /* 3: a shipping message on the Raft connection. */
    m = (rlog_msg){.type = RLOG_MSG_SHIP_STATUS_REQ};
    m.u.ship_status_req.request_id = 1;
    assert_int_equal(fake_t->send(fake_t, 1, &m, NULL, NULL), 0);
    assert_true(run_until_fn(c, errors_logged, "not a Raft message"));
    /* 4: a snapshot chunk that does not start at 0. */
    m = (rlog_msg){.type = RLOG_MSG_INSTALL_SNAPSHOT};
    m.u.install_snapshot = (rlog_msg_install_snapshot){.term = 1,
                                                       .last_index = 5,
                                                       .last_term = 1,
                                                       .total = 10,
                                                       .offset = 4,
                                                       .chunk_len = 3,
                                                       .chunk = "abc"};
    assert_int_equal(fake_t->send(fake_t, 1, &m, NULL, NULL), 0);
    assert_true(run_until_fn(c, errors_logged, "does not continue"));
    fake_t->close(fake_t);
    fake_t = NULL;
    /* Nothing of it reached the log or the state machines. */
    apply_range(c, 5, 5);
    expect_same_state(c, 10);
    for (unsigned i = 0; i < 3; i++) {
        assert_true(rlog_rs_last_index(rlog_raft_io_storage(&c->nodes[i].io)) < 100);
    }
}

/* A fake peer sends a follower whose log is compacted (its first entry
 * above 1) AppendEntries in the follower's own term with prev_log_index
 * 2^64-1 and 2^64-2 (and an entry each). raft_io/recv.c's cut of messages
 * that start below the follower's first entry must leave them alone
 * (before 24624b6 its check, prev_log_index + 1 >= first, wrapped for
 * 2^64-1 and turned the message into a heartbeat at the first entry,
 * which libraft accepted): libraft gets each unchanged and rejects it,
 * and the follower's log and the cluster go on as before. */
static unsigned spy_seen; /* AppendEntries from 99 before the one awaited */

static bool spy_answered(cluster *c, void *arg)
{
    node *f = arg;
    (void)c;
    fake_t->poll(fake_t, 0);
    return f->spy_ae > spy_seen && f->spy_results == f->spy_ae;
}

static bool spy_result_got(cluster *c, void *arg)
{
    node *l = arg;
    (void)c;
    fake_t->poll(fake_t, 0);
    return l->spy_got > spy_seen;
}

static void test_hostile_prev_log_index_reaches_libraft(void **state)
{
    cluster *c = *state;
    c->threshold = 8;
    c->trailing = 2;
    c->spying = true;
    cluster_start(c, 3);
    apply_range(c, 0, 30);
    expect_same_state(c, 30);
    node *l = wait_leader(c);
    node *f = &c->nodes[l->id == 1 ? 1 : 0]; /* a follower */
    rlog_rs *rs = rlog_raft_io_storage(&f->io);
    uint64_t first = rlog_rs_first_index(rs), last = rlog_rs_last_index(rs);
    raft_index raft_last = raft_last_index(&f->raft);
    assert_true(first > 1); /* compacted */

    fake_connect(c, f);

    const uint64_t prevs[2] = {UINT64_MAX, UINT64_MAX - 1};
    for (unsigned k = 0; k < 2; k++) {
        raft_term term = f->raft.current_term;
        rlog_msg_entry e = {.term = term, .type = RAFT_COMMAND, .len = 3, .data = "xyz"};
        rlog_msg m = {.type = RLOG_MSG_APPEND_ENTRIES};
        m.u.append_entries = (rlog_msg_append_entries){.term = term,
                                                       .prev_log_index = prevs[k],
                                                       .prev_log_term = term,
                                                       .leader_commit = 0,
                                                       .n_entries = 1,
                                                       .entries = &e};
        spy_seen = f->spy_ae;
        assert_int_equal(fake_t->send(fake_t, f->id, &m, NULL, NULL), 0);
        assert_true(run_until_fn(c, spy_answered, f));
        assert_int_equal(f->spy_ae, spy_seen + 1);
        /* libraft got it as sent ... */
        assert_int_equal(f->spy_last.term, term);
        assert_true(f->spy_last.prev_log_index == prevs[k]);
        assert_int_equal(f->spy_last.prev_log_term, term);
        assert_int_equal(f->spy_last.n_entries, 1);
        /* ... and rejected it */
        assert_true(f->spy_last_result.rejected != 0);
        assert_true(rlog_rs_first_index(rs) >= first);
        assert_true(raft_last_index(&f->raft) >= raft_last);
    }
    fake_t->close(fake_t);
    fake_t = NULL;
    /* The follower's log is the leader's (nothing of the fake's entries
     * was stored), and the cluster keeps committing. */
    assert_int_equal(rlog_rs_term(rs, last), rlog_rs_term(rlog_raft_io_storage(&l->io), last));
    apply_range(c, 30, 5);
    expect_same_state(c, 35);
}

/* A leader hears from a fake peer (server 99) that it holds the leader's
 * last entry, which is of an older term: raft_io/recv.c hands libraft the
 * result with last_log_index 0 (libraft 0.15 would count it toward commit,
 * Figure 8 of the Raft paper). Left as sent: entry 1 (the bootstrap
 * configuration), a rejection, a result of another term, and, once the
 * leader wrote an entry of its own term, a result naming that entry. */
static raft_index spy_send_result(cluster *c, node *l, raft_term term, raft_index index,
                                  raft_index rejected)
{
    rlog_msg m = {.type = RLOG_MSG_APPEND_ENTRIES_RESULT};
    m.u.append_entries_result = (rlog_msg_append_entries_result){
        .term = term, .rejected = rejected, .last_log_index = index};
    spy_seen = l->spy_got;
    assert_int_equal(fake_t->send(fake_t, l->id, &m, NULL, NULL), 0);
    assert_true(run_until_fn(c, spy_result_got, l));
    assert_int_equal(l->spy_got_last.term, term);
    assert_int_equal(l->spy_got_last.rejected, rejected);
    return l->spy_got_last.last_log_index;
}

static void test_old_term_result_not_counted(void **state)
{
    cluster *c = *state;
    c->spying = true;
    cluster_start(c, 3);
    node *l = wait_leader(c);
    apply_range(c, 0, 5);
    expect_same_state(c, 5);
    /* A new leader, of a newer term, whose log ends with the old leader's
     * entries (libraft 0.15 appends nothing when it takes over). */
    unsigned old = (unsigned)(l->id - 1);
    raft_term old_term = l->raft.current_term;
    node_stop(c, old);
    node *l2 = wait_leader(c);
    raft_term term = l2->raft.current_term;
    rlog_rs *rs = rlog_raft_io_storage(&l2->io);
    raft_index last = rlog_rs_last_index(rs);
    assert_true(term > old_term);
    assert_true(last > 1);
    assert_true(rlog_rs_term(rs, last) < term);

    fake_connect(c, l2);
    assert_int_equal(spy_send_result(c, l2, term, last, 0), 0);
    assert_int_equal(spy_send_result(c, l2, term, last + 5, 0), 0); /* capped at last */
    assert_int_equal(spy_send_result(c, l2, term, 1, 0), 1);
    assert_int_equal(spy_send_result(c, l2, term, last, last), last);
    assert_int_equal(spy_send_result(c, l2, term - 1, last, 0), last); /* stale: ignored */
    assert_true(c->old_term_lines > 0);
    /* An entry of the leader's own term: results naming it count. */
    apply_range(c, 5, 1);
    raft_index mine = rlog_rs_last_index(rs);
    assert_int_equal(rlog_rs_term(rs, mine), term);
    assert_int_equal(spy_send_result(c, l2, term, mine, 0), mine);
    assert_int_equal(spy_send_result(c, l2, term, last, 0), 0);
    fake_t->close(fake_t);
    fake_t = NULL;
    node_start(c, old, 0);
    expect_same_state(c, 6);
}

/* Server 1 serves its directory to an `rlog ship follow` mirror: once the
 * mirror caught up, it holds the same Raft state (hard state, entries)
 * as server 1, read back through the Raft storage API. */
typedef struct mirror {
    rlog_ship_follower *f;
    node *src;
} mirror;

static bool mirror_caught_up(cluster *c, void *arg)
{
    (void)c;
    mirror *m = arg;
    rlog_ship_follower_poll(m->f, 0);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(m->f, &st);
    rlog_positions pos;
    rlog_positions_get(rlog_rs_log(rlog_raft_io_storage(&m->src->io)), &pos);
    return st.durable > 0 && st.durable == pos.durable && pos.durable == pos.appended;
}

static rlog_rs *open_ro(const char *dir)
{
    return tu_rs_open(dir, 0, RLOG_OPEN_READONLY, RLOG_SYNC_EACH);
}

static void test_mirror_of_a_node(void **state)
{
    cluster *c = *state;
    snprintf(c->ship_address, sizeof c->ship_address, "tcp://127.0.0.1:%u", free_port());
    cluster_start(c, 3);
    apply_range(c, 0, 30);
    expect_same_state(c, 30);
    rlog_transport *t;
    assert_int_equal(rlog_transport_nng_new(&t), 0);
    rlog_transport_config cfg;
    rlog_transport_config_init(&cfg);
    cfg.server_id = 1000;
    size_t len = strlen(c->base) + 16;
    char *mdir = malloc(len);
    snprintf(mdir, len, "%s/mirror", c->base);
    mirror m = {.src = &c->nodes[0]};
    int rv = rlog_ship_follower_new(mdir, t, &cfg, c->ship_address, NULL, &m.f);
    assert_int_equal(rv, 0);
    assert_true(run_until_fn(c, mirror_caught_up, &m));
    /* More entries keep flowing to the mirror. */
    apply_range(c, 30, 10);
    expect_same_state(c, 40);
    assert_true(run_until_fn(c, mirror_caught_up, &m));
    rlog_ship_follower_free(m.f);
    node_stop(c, 0);
    rlog_rs *a = open_ro(c->nodes[0].dir);
    rlog_rs *b = open_ro(mdir);
    rlog_rs_hard_state ha, hb;
    rlog_rs_hard_state_get(a, &ha);
    rlog_rs_hard_state_get(b, &hb);
    assert_int_equal(ha.term, hb.term);
    assert_int_equal(ha.vote, hb.vote);
    assert_int_equal(rlog_rs_first_index(a), rlog_rs_first_index(b));
    assert_int_equal(rlog_rs_last_index(a), rlog_rs_last_index(b));
    assert_true(rlog_rs_last_index(a) >= 41);
    tu_rs_expect_same_entries(a, 1, rlog_rs_last_index(a), b, 1, rlog_rs_last_index(b));
    rlog_rs_close(a);
    rlog_rs_close(b);
    free(mdir);
}

/* A leader cut off from its followers appends entries that never commit;
 * the others elect a new leader and commit other entries at the same
 * indexes. When the old leader comes back, its conflicting suffix is
 * truncated and replaced: same state machine, and its log holds the new
 * leader's entries. */
static applyreq orphan[5];

static void test_conflicting_suffix_truncated(void **state)
{
    cluster *c = *state;
    cluster_start(c, 3);
    apply_range(c, 0, 10);
    expect_same_state(c, 10);
    node *l = wait_leader(c);
    unsigned old = (unsigned)(l->id - 1);
    for (unsigned i = 0; i < 3; i++) {
        if (i != old) {
            node_stop(c, i);
        }
    }
    raft_index before = raft_last_index(&l->raft);
    for (unsigned k = 0; k < 5; k++) {
        struct raft_buffer buf = {.base = raft_malloc(16), .len = 16};
        memset(buf.base, 'X', 16);
        memset(&orphan[k], 0, sizeof orphan[k]);
        orphan[k].req.data = &orphan[k];
        assert_int_equal(raft_apply(&l->raft, &orphan[k].req, &buf, 1, apply_cb), 0);
    }
    /* Let them reach the old leader's disk (they cannot commit). */
    for (int i = 0; i < 50; i++) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
    }
    rlog_rs *rs = rlog_raft_io_storage(&l->io);
    assert_true(rlog_rs_last_index(rs) >= before + 1);
    raft_term orphan_term = rlog_rs_term(rs, before + 1);
    node_stop(c, old);
    for (unsigned k = 0; k < 5; k++) {
        assert_true(orphan[k].done && orphan[k].status != 0);
    }
    for (unsigned i = 0; i < 3; i++) {
        if (i != old) {
            node_start(c, i, 0);
        }
    }
    apply_range(c, 10, 10);
    expect_same_state(c, 20);
    node_start(c, old, 0);
    expect_same_state(c, 20);
    rs = rlog_raft_io_storage(&c->nodes[old].io);
    node *l2 = wait_leader(c);
    rlog_rs *lrs = rlog_raft_io_storage(&l2->io);
    assert_true(rlog_rs_term(rs, before + 1) != orphan_term);
    assert_int_equal(rlog_rs_term(rs, before + 1), rlog_rs_term(lrs, before + 1));
    rlog_rs_entries e;
    assert_int_equal(rlog_rs_entries_read(rs, before + 1, before + 5, 0, &e), 0);
    for (size_t i = 0; i < e.n; i++) {
        assert_true(e.v[i].len != 16 || memcmp(e.v[i].data, "XXXXXXXXXXXXXXXX", 16) != 0);
    }
    rlog_rs_entries_free(&e);
}

/* Like expect_same_state, but a command whose outcome its client was told
 * is unknown (an apply that failed) may have committed too, once: every
 * node holds the same bytes, and without those the acknowledged commands
 * 0..acked-1 in order. */
static bool converged(cluster *c, void *arg)
{
    unsigned min = *(unsigned *)arg;
    node *first = NULL;
    for (unsigned i = 0; i < c->n; i++) {
        node *n = &c->nodes[i];
        if (!n->running || n->ignored) {
            continue;
        }
        if (n->commands < min) {
            return false;
        }
        if (first == NULL) {
            first = n;
        } else if (n->len != first->len || memcmp(n->state, first->state, n->len) != 0) {
            return false;
        }
    }
    return true;
}

static void expect_acked_state(cluster *c, unsigned acked, char unknown)
{
    assert_true(run_until_fn(c, converged, &acked));
    for (unsigned i = 0; i < c->n; i++) {
        node *n = &c->nodes[i];
        if (!n->running || n->ignored) {
            continue;
        }
        unsigned k = 0, extra = 0;
        for (size_t off = 0; off < n->len; off += 16) {
            if (n->state[off] == (uint8_t)unknown) {
                extra++;
                continue;
            }
            char want_cmd[16] = {0};
            snprintf(want_cmd, sizeof want_cmd, "cmd-%08u", k++);
            assert_memory_equal(n->state + off, want_cmd, 16);
        }
        assert_int_equal(k, acked);
        assert_true(extra <= 1);
    }
}

/* A disk that fails under one server: every write and sync of its segments
 * fails with `err` (and, for ENOSPC, every allocation too). Its next append
 * fails (RAFT_IOERR, logged), the server fails stop (goes silent); a broken
 * leader is stepped down by libraft for lack of contact with a quorum, and
 * the other two elect a leader; with a broken follower the leader goes on
 * with the healthy one. Either way the cluster keeps committing, and after a
 * restart on a healthy disk the failed server recovers and holds every
 * acknowledged command, byte for byte like the others. */
static bool not_leader(cluster *c, void *arg)
{
    (void)c;
    return raft_state(&((node *)arg)->raft) != RAFT_LEADER;
}

static void break_disk(node *n, int err)
{
    rlog_fault w = {.op = RLOG_OP_PWRITE, .err = err, .path_contains = ".seg"};
    rlog_fault y = {.op = RLOG_OP_FDATASYNC, .err = err, .path_contains = ".seg"};
    rlog_fault a = {.op = RLOG_OP_ALLOCATE, .err = err};
    assert_true(rlog_vfs_fault_add(n->fv, &w) > 0);
    if (err == ENOSPC) {
        assert_true(rlog_vfs_fault_add(n->fv, &a) > 0);
    } else {
        assert_true(rlog_vfs_fault_add(n->fv, &y) > 0);
    }
}

static bool io_failed(cluster *c, void *arg)
{
    (void)c;
    return rlog_vfs_fault_injected(((node *)arg)->fv) > 0;
}

static void disk_failure(cluster *c, int err, bool on_leader)
{
    c->faulty = true;
    cluster_start(c, 3);
    apply_range(c, 0, 20);
    expect_same_state(c, 20);
    node *l = wait_leader(c);
    node *f = &c->nodes[l->id % c->n]; /* another server: a follower */
    node *bad = on_leader ? l : f;
    break_disk(bad, err);
    if (on_leader) {
        /* The next command fails on the broken leader. */
        struct raft_buffer buf = {.base = raft_malloc(16), .len = 16};
        memset(buf.base, 'E', 16);
        applyreq a = {0};
        a.req.data = &a;
        assert_int_equal(raft_apply(&l->raft, &a.req, &buf, 1, apply_cb), 0);
        assert_true(run_until_fn(c, apply_done, &a));
        assert_int_not_equal(a.status, 0);
        /* It steps down; the others take over and commit. */
        assert_true(run_until_fn(c, not_leader, l));
    } else {
        /* Commands commit with the leader and the healthy follower while the
         * broken one fails its first append and goes silent. */
        apply_range(c, 20, 1);
        assert_true(run_until_fn(c, io_failed, bad));
    }
    /* the fault is counted before the node logs what it did about it */
    const char *what = err == ENOSPC ? "no space left" : "I/O error";
    assert_true(run_until_fn(c, log_has, (void *)what));
    assert_non_null(strstr(c->errors, "failed"));
    bad->ignored = true;
    unsigned acked = on_leader ? 20 : 21;
    apply_range(c, acked, 20);
    acked += 20;
    expect_acked_state(c, acked, 'E');
    /* Restart on a healthy disk: it recovers and catches up. */
    bad->ignored = false;
    node_stop(c, (unsigned)(bad->id - 1));
    c->faulty = false;
    node_start(c, (unsigned)(bad->id - 1), 0);
    apply_range(c, acked, 5);
    expect_acked_state(c, acked + 5, 'E');
}

static void test_leader_disk_failure(void **state)
{
    disk_failure(*state, EIO, true);
}

static void test_follower_disk_full(void **state)
{
    disk_failure(*state, ENOSPC, false);
}

/* A burst of commands applied in one loop turn (the followers already
 * replicating in pipeline mode, where libraft sends one AppendEntries per
 * command and follower) leaves the leader as a few merged AppendEntries
 * per follower (raft_io/send.c, "Coalescing"), and every node still
 * applies every command in order. */
static void test_burst_coalesced(void **state)
{
    cluster *c = *state;
    c->counting = true;
    cluster_start(c, 3);
    apply_range(c, 0, 5);
    expect_same_state(c, 5);
    node *l = wait_leader(c);
    unsigned msgs0 = l->ae_msgs, entries0 = l->ae_entries;
    enum { BURST = 64 };
    applyreq *a = calloc(BURST, sizeof *a);
    for (unsigned k = 0; k < BURST; k++) {
        struct raft_buffer buf = {.len = 16, .base = raft_malloc(16)};
        memset(buf.base, 0, buf.len);
        snprintf(buf.base, buf.len, "cmd-%08u", 5 + k);
        a[k].req.data = &a[k];
        assert_int_equal(raft_apply(&l->raft, &a[k].req, &buf, 1, apply_cb), 0);
    }
    for (unsigned k = 0; k < BURST; k++) {
        assert_true(run_until_fn(c, apply_done, &a[k]));
        assert_int_equal(a[k].status, 0);
    }
    free(a);
    expect_same_state(c, 5 + BURST);
    unsigned msgs = l->ae_msgs - msgs0, entries = l->ae_entries - entries0;
    /* each follower got every entry of the burst at least once ... */
    assert_true(entries >= 2 * BURST);
    /* ... in far fewer messages than one per command and follower (128):
     * the first of the turn alone, the rest merged; slack for heartbeats
     * that resend under load) */
    assert_true(msgs <= 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elect_replicate_failover_restart),
        cmocka_unit_test(test_snapshot_install_to_lagging_follower),
        cmocka_unit_test(test_membership_add_promote_remove),
        cmocka_unit_test(test_restart_every_server),
        cmocka_unit_test(test_hostile_peer_messages_dropped),
        cmocka_unit_test(test_hostile_prev_log_index_reaches_libraft),
        cmocka_unit_test(test_old_term_result_not_counted),
        cmocka_unit_test(test_mirror_of_a_node),
        cmocka_unit_test(test_conflicting_suffix_truncated),
        cmocka_unit_test(test_leader_disk_failure),
        cmocka_unit_test(test_follower_disk_full),
        cmocka_unit_test(test_burst_coalesced),
    };
    return TU_RUN("raftio_cluster", tests, setup, teardown);
}
