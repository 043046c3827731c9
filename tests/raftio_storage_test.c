/* The storage methods of librlog-raft's struct raft_io, called the way
 * libraft 0.15 calls them, on a real libuv loop and a real directory: load
 * (empty, after bootstrap, after recover, after appends + truncate +
 * snapshot, with the ownership libraft expects), bootstrap twice,
 * set_term/set_vote durable on return, append callbacks in order and only
 * once durable (also without the log's threads), truncate with appends in
 * flight, snapshot_put with trailing > 0 and == 0 and snapshot_get, close
 * with work pending (a queued send RAFT_CANCELED, appends finished,
 * nothing after the close callback), EIO/ENOSPC on append through a fault
 * vfs (every later append fails, nothing acknowledged lost), a damaged
 * entry at start (the error names the file and offset), async_work, time
 * and random; every callback on the loop thread. */
#include "util/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <uv.h>

#include "rlog/raft_io.h"
#include "rlog/vfs_fault.h"

typedef struct fx {
    char *dir;
    uv_loop_t loop;
    struct raft_io io;
    bool open;
    int closed; /* close callbacks seen */
} fx;

/* The thread that runs the loop: every callback must run on it. */
static uv_thread_t loop_thread;

static void on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    assert_true(uv_thread_equal(&self, &loop_thread));
}

static int setup(void **state)
{
    loop_thread = uv_thread_self();
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("raftio");
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static void close_cb(struct raft_io *io)
{
    on_loop_thread();
    fx *f = io->data;
    f->closed++;
}

/* Runs the loop until *flag is reached (a guard of many turns, not a
 * timing assertion). */
static void run_until(fx *f, const int *flag, int want)
{
    for (int i = 0; i < 200000 && *flag < want; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(*flag >= want);
}

static void io_close(fx *f)
{
    if (!f->open) {
        return;
    }
    int before = f->closed;
    f->io.close(&f->io, close_cb);
    run_until(f, &f->closed, before + 1);
    rlog_raft_io_fini(&f->io);
    f->open = false;
}

static int teardown(void **state)
{
    fx *f = *state;
    io_close(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tu_rmdir_r(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Options for the next io_open (NULL = defaults). */
static const struct rlog_raft_io_options *next_opts;

static void io_open_custom(fx *f, rlog_loop *loop, rlog_vfs *vfs, const char *dir)
{
    int rv = loop != NULL ? rlog_raft_io_init_custom(&f->io, loop, dir, vfs, NULL, NULL, next_opts)
                          : rlog_raft_io_init(&f->io, &f->loop, dir, next_opts);
    if (rv != 0) {
        fail_msg("rlog_raft_io_init: %s", f->io.errmsg);
    }
    f->io.data = f;
    rv = f->io.init(&f->io, 1, "127.0.0.1:0");
    if (rv != 0) {
        fail_msg("io->init: %s", f->io.errmsg);
    }
    f->open = true;
}

static void io_open(fx *f)
{
    io_open_custom(f, NULL, NULL, f->dir);
}

typedef struct loaded {
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;
} loaded;

static void snapshot_free(struct raft_snapshot *s)
{
    if (s == NULL) {
        return;
    }
    raft_configuration_close(&s->configuration);
    for (unsigned i = 0; i < s->n_bufs; i++) {
        raft_free(s->bufs[i].base);
    }
    raft_free(s->bufs);
    raft_free(s);
}

/* Frees what load handed over the way libraft does for entries without a
 * batch: each entry's buffer, then the array. Also checks load's rule
 * (load.c, "One allocation per entry"): no entry has a batch, every entry
 * has a buffer of its own (the ASan build would report two entries
 * sharing one as a double free). */
static void loaded_free(loaded *l)
{
    for (size_t i = 0; i < l->n; i++) {
        assert_null(l->entries[i].batch);
        assert_non_null(l->entries[i].buf.base);
        raft_free(l->entries[i].buf.base);
    }
    raft_free(l->entries);
    snapshot_free(l->snap);
    memset(l, 0, sizeof *l);
}

static void load(fx *f, loaded *l)
{
    memset(l, 0, sizeof *l);
    int rv = f->io.load(&f->io, &l->term, &l->vote, &l->snap, &l->start, &l->entries, &l->n);
    if (rv != 0) {
        fail_msg("load: %s", f->io.errmsg);
    }
}

static void conf_one(struct raft_configuration *c, raft_id id)
{
    raft_configuration_init(c);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)(9000 + id));
    assert_int_equal(raft_configuration_add(c, id, addr, RAFT_VOTER), 0);
}

/* ---- appends ---- */

typedef struct app {
    struct raft_io_append req;
    fx *f;
    int status;
    int order;               /* sequence number of its callback, -1 until it ran */
    raft_index last;         /* last index it carried */
    raft_index durable_seen; /* last index found in a copy of dir at callback time */
} app;

static int cb_seq;

/* Last index in a copy of the directory taken now (what is on disk). */
static raft_index last_index_on_disk(const char *dir)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s.copy", dir);
    tu_rmdir_r(copy);
    tu_copy_dir(dir, copy);
    rlog_rs *rs = tu_rs_open(copy, 0, 0, RLOG_SYNC_EACH);
    raft_index last = rlog_rs_last_index(rs);
    rlog_rs_close(rs);
    tu_rmdir_r(copy);
    return last;
}

static void append_cb(struct raft_io_append *req, int status)
{
    on_loop_thread();
    app *a = req->data;
    a->status = status;
    a->order = cb_seq++;
    if (status == 0 && a->f != NULL) {
        a->durable_seen = last_index_on_disk(a->f->dir);
    }
}

static void payload(raft_index index, raft_term term, char *buf, size_t cap)
{
    snprintf(buf, cap, "entry-%llu-term-%llu", (unsigned long long)index, (unsigned long long)term);
}

/* Submits entries first..first+n-1 of `term`. */
static int submit(fx *f, app *a, raft_index first, unsigned n, raft_term term)
{
    struct raft_entry e[16];
    char bufs[16][48];
    assert_true(n <= 16);
    for (unsigned i = 0; i < n; i++) {
        payload(first + i, term, bufs[i], sizeof bufs[i]);
        e[i].term = term;
        e[i].type = RAFT_COMMAND;
        e[i].buf.base = bufs[i];
        e[i].buf.len = strlen(bufs[i]);
        e[i].batch = NULL;
    }
    a->req.data = a;
    a->order = -1;
    a->status = -1;
    a->last = first + n - 1;
    return f->io.append(&f->io, &a->req, e, n, append_cb);
}

static void expect_entries(const loaded *l, raft_index from, raft_index to, raft_term term)
{
    for (raft_index i = from; i <= to; i++) {
        size_t k = (size_t)(i - l->start);
        assert_true(k < l->n);
        char want[48];
        payload(i, term, want, sizeof want);
        assert_int_equal(l->entries[k].term, term);
        assert_int_equal(l->entries[k].buf.len, strlen(want));
        assert_memory_equal(l->entries[k].buf.base, want, strlen(want));
    }
}

static void bootstrap(fx *f)
{
    struct raft_configuration c;
    conf_one(&c, 1);
    int rv = f->io.bootstrap(&f->io, &c);
    raft_configuration_close(&c);
    if (rv != 0) {
        fail_msg("bootstrap: %s", f->io.errmsg);
    }
}

/* ------------------------------------------------------------ tests */

static void test_load_empty(void **state)
{
    fx *f = *state;
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.term, 0);
    assert_int_equal(l.vote, 0);
    assert_null(l.snap);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 0);
    loaded_free(&l);
}

static void test_bootstrap_load_and_twice(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.term, 1);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.entries[0].type, RAFT_CHANGE);
    assert_int_equal(l.entries[0].term, 1);
    struct raft_configuration c;
    conf_one(&c, 1);
    struct raft_buffer enc;
    assert_int_equal(raft_configuration_encode(&c, &enc), 0);
    assert_int_equal(l.entries[0].buf.len, enc.len);
    assert_memory_equal(l.entries[0].buf.base, enc.base, enc.len);
    raft_free(enc.base);
    loaded_free(&l);
    /* Twice, and again after a restart: refused, nothing changed. */
    assert_int_equal(f->io.bootstrap(&f->io, &c), RAFT_CANTBOOTSTRAP);
    io_close(f);
    io_open(f);
    assert_int_equal(f->io.bootstrap(&f->io, &c), RAFT_CANTBOOTSTRAP);
    assert_non_null(strstr(f->io.errmsg, "already holds"));
    raft_configuration_close(&c);
    load(f, &l);
    assert_int_equal(l.n, 1);
    loaded_free(&l);
}

/* recover appends a configuration entry after the last one, durably:
 * libraft's raft_recover forces a new configuration this way. */
static void test_recover_appends_configuration(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    assert_int_equal(f->io.set_term(&f->io, 4), 0);
    struct raft_configuration c;
    conf_one(&c, 7);
    assert_int_equal(f->io.recover(&f->io, &c), 0);
    io_close(f);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.entries[1].type, RAFT_CHANGE);
    assert_int_equal(l.entries[1].term, 4);
    struct raft_buffer enc;
    assert_int_equal(raft_configuration_encode(&c, &enc), 0);
    assert_int_equal(l.entries[1].buf.len, enc.len);
    /* libraft's encoder pads to 8 bytes and leaves the padding
     * uninitialised: compare the encoding itself (format version, server
     * count, then per server its id, address with its NUL and role). */
    size_t used = 1 + 8;
    for (unsigned i = 0; i < c.n; i++) {
        used += 8 + strlen(c.servers[i].address) + 1 + 1;
    }
    assert_true(used <= enc.len);
    assert_memory_equal(l.entries[1].buf.base, enc.base, used);
    raft_free(enc.base);
    raft_configuration_close(&c);
    loaded_free(&l);
}

static void test_term_vote_durable_on_return(void **state)
{
    fx *f = *state;
    io_open(f);
    assert_int_equal(f->io.set_term(&f->io, 5), 0);
    assert_int_equal(f->io.set_vote(&f->io, 2), 0);
    /* A copy taken right after the calls (io still open) holds them. */
    char copy[1024];
    snprintf(copy, sizeof copy, "%s.c", f->dir);
    tu_copy_dir(f->dir, copy);
    fx g = {.dir = copy};
    assert_int_equal(uv_loop_init(&g.loop), 0);
    io_open(&g);
    loaded l;
    load(&g, &l);
    assert_int_equal(l.term, 5);
    assert_int_equal(l.vote, 2);
    loaded_free(&l);
    /* A vote may not change within a term: refused. */
    assert_int_not_equal(g.io.set_vote(&g.io, 3), 0);
    io_close(&g);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&g.loop), 0);
    tu_rmdir_r(copy);
}

static void test_append_order_after_durable(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    app a[3] = {{.f = f}, {.f = f}, {.f = f}};
    cb_seq = 0;
    assert_int_equal(submit(f, &a[0], 2, 1, 1), 0);
    assert_int_equal(submit(f, &a[1], 3, 3, 1), 0);
    assert_int_equal(submit(f, &a[2], 6, 2, 2), 0);
    /* No callback inside append. */
    assert_int_equal(a[0].order, -1);
    run_until(f, &cb_seq, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].status, 0);
        assert_int_equal(a[i].order, i);
        /* When the callback ran, its entries were in the files. */
        assert_true(a[i].durable_seen >= a[i].last);
    }
    io_close(f);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.n, 7);
    expect_entries(&l, 2, 5, 1);
    expect_entries(&l, 6, 7, 2);
    loaded_free(&l);
}

/* The same contract without the log's threads (RLOG_RAFT_IO_NO_THREADS,
 * the mode of deterministic single-threaded loops): appends are made
 * durable by a function posted to the loop. */
static void test_append_order_no_threads(void **state)
{
    struct rlog_raft_io_options o = {.flags = RLOG_RAFT_IO_NO_THREADS};
    next_opts = &o;
    test_append_order_after_durable(state);
    next_opts = NULL;
}

static void test_truncate_with_appends_in_flight(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    app a = {0}, b = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 5, 1), 0);    /* 2..6 */
    assert_int_equal(f->io.truncate(&f->io, 4), 0); /* before a completed */
    assert_int_equal(submit(f, &b, 4, 3, 2), 0);    /* 4..6 of term 2 */
    run_until(f, &cb_seq, 2);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_true(a.order < b.order);
    io_close(f);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 6);
    expect_entries(&l, 2, 3, 1);
    expect_entries(&l, 4, 6, 2);
    loaded_free(&l);
}

typedef struct snapreq {
    struct raft_io_snapshot_put put;
    struct raft_io_snapshot_get get;
    int done;
    int status;
    struct raft_snapshot *got;
} snapreq;

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    on_loop_thread();
    snapreq *s = req->data;
    s->status = status;
    s->done++;
}

static void get_cb(struct raft_io_snapshot_get *req, struct raft_snapshot *snap, int status)
{
    on_loop_thread();
    snapreq *s = req->data;
    s->status = status;
    s->got = snap;
    s->done++;
}

/* Stores a snapshot through io->snapshot_put and returns the status its
 * callback reported. */
static int try_put_snapshot(fx *f, raft_index index, raft_term term, unsigned trailing,
                            const char *data)
{
    struct raft_snapshot snap = {0};
    snap.index = index;
    snap.term = term;
    conf_one(&snap.configuration, 1);
    snap.configuration_index = 1;
    /* Two buffers: the store concatenates them. */
    size_t half = strlen(data) / 2;
    struct raft_buffer bufs[2] = {{(void *)data, half},
                                  {(void *)(data + half), strlen(data) - half}};
    snap.bufs = bufs;
    snap.n_bufs = 2;
    snapreq s = {0};
    s.put.data = &s;
    assert_int_equal(f->io.snapshot_put(&f->io, trailing, &s.put, &snap, put_cb), 0);
    assert_int_equal(s.done, 0); /* never inside the call */
    run_until(f, &s.done, 1);
    raft_configuration_close(&snap.configuration);
    return s.status;
}

static void put_snapshot(fx *f, raft_index index, raft_term term, unsigned trailing,
                         const char *data)
{
    int status = try_put_snapshot(f, index, term, trailing, data);
    if (status != 0) {
        fail_msg("snapshot_put: %d %s", status, f->io.errmsg);
    }
}

static void expect_snapshot(const struct raft_snapshot *s, raft_index index, raft_term term,
                            const char *data)
{
    assert_non_null(s);
    assert_int_equal(s->index, index);
    assert_int_equal(s->term, term);
    assert_int_equal(s->n_bufs, 1);
    assert_int_equal(s->bufs[0].len, strlen(data));
    assert_memory_equal(s->bufs[0].base, data, strlen(data));
    assert_int_equal(s->configuration.n, 1);
    assert_int_equal(s->configuration.servers[0].id, 1);
    assert_string_equal(s->configuration.servers[0].address, "127.0.0.1:9001");
    assert_int_equal(s->configuration_index, 1);
}

static void test_snapshot_compaction_and_get(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    app a = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 9, 1), 0); /* 2..10 */
    run_until(f, &cb_seq, 1);
    const char *data = "the state machine at index 8";
    put_snapshot(f, 8, 1, 3, data);
    snapreq g = {0};
    g.get.data = &g;
    assert_int_equal(f->io.snapshot_get(&f->io, &g.get, get_cb), 0);
    run_until(f, &g.done, 1);
    assert_int_equal(g.status, 0);
    expect_snapshot(g.got, 8, 1, data);
    snapshot_free(g.got);
    io_close(f);
    io_open(f);
    loaded l;
    load(f, &l);
    expect_snapshot(l.snap, 8, 1, data);
    /* trailing 3: entries 6..10 kept (overlapping the snapshot). */
    assert_int_equal(l.start, 6);
    assert_int_equal(l.n, 5);
    expect_entries(&l, 6, 10, 1);
    loaded_free(&l);
}

static void test_snapshot_install_replaces_log(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    app a = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 4, 1), 0); /* 2..5 */
    run_until(f, &cb_seq, 1);
    const char *data = "leader's state at 20";
    put_snapshot(f, 20, 3, 0, data);
    /* The next append continues after the snapshot. */
    app b = {0};
    assert_int_equal(submit(f, &b, 21, 2, 3), 0);
    run_until(f, &cb_seq, 2);
    assert_int_equal(b.status, 0);
    io_close(f);
    io_open(f);
    loaded l;
    load(f, &l);
    expect_snapshot(l.snap, 20, 3, data);
    assert_int_equal(l.start, 21);
    assert_int_equal(l.n, 2);
    expect_entries(&l, 21, 22, 3);
    loaded_free(&l);
}

static void test_snapshot_get_none(void **state)
{
    fx *f = *state;
    io_open(f);
    snapreq g = {0};
    g.get.data = &g;
    assert_int_equal(f->io.snapshot_get(&f->io, &g.get, get_cb), 0);
    run_until(f, &g.done, 1);
    assert_int_equal(g.status, RAFT_NOTFOUND);
    assert_null(g.got);
}

static int closed_at_seq;

static void close_seq_cb(struct raft_io *io)
{
    fx *f = io->data;
    closed_at_seq = cb_seq++;
    f->closed++;
}

typedef struct sendreq {
    struct raft_io_send req;
    int status;
    int order;
} sendreq;

static void send_cb(struct raft_io_send *req, int status)
{
    on_loop_thread();
    sendreq *s = req->data;
    s->status = status;
    s->order = cb_seq++;
}

/* Close with work pending: a send queued for a peer that never answers is
 * canceled; appends in flight are finished (they report their real status:
 * libraft 0.15's leader path cannot take RAFT_CANCELED for an append once
 * it is closing, see docs/raft_io.md); everything before the close
 * callback, nothing after it, nothing accepted after close began. */
static void test_close_with_work_pending(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    app a[4];
    memset(a, 0, sizeof a);
    cb_seq = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(submit(f, &a[i], (raft_index)(2 + i * 2), 2, 1), 0);
    }
    struct raft_message m = {
        .type = RAFT_IO_REQUEST_VOTE, .server_id = 2, .server_address = "127.0.0.1:1"};
    m.request_vote.term = 1;
    sendreq sr = {.status = -1, .order = -1};
    sr.req.data = &sr;
    assert_int_equal(f->io.send(&f->io, &sr.req, &m, send_cb), 0);
    f->io.close(&f->io, close_seq_cb);
    assert_int_equal(cb_seq, 0); /* nothing runs inside close */
    /* Methods after close refuse (nothing is accepted). */
    app late = {0};
    assert_int_not_equal(submit(f, &late, 10, 1, 1), 0);
    assert_int_not_equal(f->io.send(&f->io, &sr.req, &m, send_cb), 0);
    run_until(f, &f->closed, 1);
    assert_int_equal(sr.status, RAFT_CANCELED);
    assert_true(sr.order < closed_at_seq);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a[i].status, 0);
        assert_true(a[i].order < closed_at_seq);
    }
    assert_int_equal(late.order, -1);
    /* Nothing runs after the close callback. */
    int seen = cb_seq;
    for (int i = 0; i < 10; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(cb_seq, seen);
    rlog_raft_io_fini(&f->io);
    f->open = false;
    /* What was reported durable is there. */
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.n, 9);
    expect_entries(&l, 2, 9, 1);
    loaded_free(&l);
}

static void flag_set(void *arg)
{
    (*(int *)arg)++;
}

/* EIO or ENOSPC on an append: that one and every later one fail with
 * RAFT_IOERR; what was acknowledged before is still there after reopen. */
static void append_fault(fx *f, int err)
{
    rlog_vfs *fv = rlog_vfs_fault_new(rlog_vfs_posix());
    rlog_loop *loop = NULL;
    assert_int_equal(rlog_loop_uv_new(&f->loop, &loop), 0);
    io_open_custom(f, loop, fv, f->dir);
    bootstrap(f);
    app a = {0}, b = {0}, c = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 3, 1), 0);
    run_until(f, &cb_seq, 1);
    assert_int_equal(a.status, 0);
    rlog_fault rule = {.op = RLOG_OP_PWRITE, .err = err, .path_contains = ".seg"};
    assert_true(rlog_vfs_fault_add(fv, &rule) > 0);
    rlog_fault rule2 = {.op = RLOG_OP_FDATASYNC, .err = err, .path_contains = ".seg"};
    assert_true(rlog_vfs_fault_add(fv, &rule2) > 0);
    assert_int_equal(submit(f, &b, 5, 2, 1), 0);
    assert_int_equal(submit(f, &c, 7, 1, 1), 0);
    run_until(f, &cb_seq, 3);
    assert_int_equal(b.status, RAFT_IOERR);
    assert_int_equal(c.status, RAFT_IOERR);
    assert_true(rlog_vfs_fault_injected(fv) > 0);
    assert_non_null(strstr(f->io.errmsg, "failed"));
    /* Later appends fail too, even with the disk healthy again. */
    rlog_vfs_fault_clear(fv);
    app d = {0};
    int rv = submit(f, &d, 8, 1, 1);
    if (rv == 0) {
        run_until(f, &cb_seq, 4);
        assert_int_equal(d.status, RAFT_IOERR);
    }
    io_close(f);
    int loop_closed = 0;
    loop->close(loop, flag_set, &loop_closed);
    run_until(f, &loop_closed, 1);
    rlog_loop_uv_free(loop);
    fv->destroy(fv);
    /* Reopen on the real file system: entries 1..4 (acknowledged) kept. */
    io_open(f);
    loaded l;
    load(f, &l);
    assert_true(l.n >= 4);
    expect_entries(&l, 2, 4, 1);
    loaded_free(&l);
}

/* The libuv loop driver's post() (raft_io/loop_uv.c): functions posted
 * from the loop thread (which wake the loop through a uv_idle_t, not the
 * uv_async_t) and from another thread run in the order they were posted,
 * never inside post(), each on a later turn; a post made on the loop
 * thread alone wakes the loop (the bounded UV_RUN_NOWAIT turns below
 * would not run it otherwise), and the loop closes with nothing left. */
typedef struct post_rec {
    rlog_loop *loop;
    int order[8];
    int n;
    bool inside; /* a posted function is running */
    bool nested; /* one ran inside another or inside post() */
} post_rec;

typedef struct post_item {
    post_rec *rec;
    int id;
} post_item;

static post_item post_items[8];

static void post_note(void *arg)
{
    post_item *it = arg;
    post_rec *rec = it->rec;
    if (rec->inside) {
        rec->nested = true;
    }
    rec->order[rec->n++] = it->id;
}

static void post_from_thread(void *arg)
{
    post_item *it = arg;
    it->rec->loop->post(it->rec->loop, post_note, it); /* 0: checked by the order */
}

/* Runs on the loop: posts 2 (loop thread), 3 (another thread, joined), 4
 * (loop thread). */
static void post_first(void *arg)
{
    post_item *it = arg;
    post_rec *rec = it->rec;
    rec->inside = true;
    rec->order[rec->n++] = it->id;
    assert_int_equal(rec->loop->post(rec->loop, post_note, &post_items[2]), 0);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, post_from_thread, &post_items[3]), 0);
    assert_int_equal(uv_thread_join(&t), 0);
    assert_int_equal(rec->loop->post(rec->loop, post_note, &post_items[4]), 0);
    rec->inside = false;
}

static void run_nowait_until(fx *f, const int *n, int want)
{
    for (int i = 0; i < 1000 && *n < want; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(*n, want);
}

static void test_loop_uv_post_order(void **state)
{
    fx *f = *state;
    post_rec rec = {0};
    assert_int_equal(rlog_loop_uv_new(&f->loop, &rec.loop), 0);
    for (int i = 0; i < 8; i++) {
        post_items[i] = (post_item){&rec, i};
    }
    /* 0 from this thread before the loop ran (the async handle), then 1,
     * which posts 2, 3 and 4 while it runs. */
    assert_int_equal(rec.loop->post(rec.loop, post_note, &post_items[0]), 0);
    assert_int_equal(rec.loop->post(rec.loop, post_first, &post_items[1]), 0);
    assert_int_equal(rec.n, 0);
    run_nowait_until(f, &rec.n, 5);
    /* Posted on the loop thread alone (the loop is idle otherwise). */
    assert_int_equal(rec.loop->post(rec.loop, post_note, &post_items[5]), 0);
    assert_int_equal(rec.n, 5);
    /* ... and wakes it without a wake-up through the kernel (the idle
     * handle: the loop's next turn does not block) */
    assert_int_equal(uv_backend_timeout(&f->loop), 0);
    run_nowait_until(f, &rec.n, 6);
    assert_false(rec.nested);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rec.order[i], i);
    }
    int closed = 0;
    rec.loop->close(rec.loop, flag_set, &closed);
    run_until(f, &closed, 1);
    rlog_loop_uv_free(rec.loop);
    assert_int_equal(uv_loop_alive(&f->loop), 0);
}

static void test_append_eio(void **state)
{
    append_fault(*state, EIO);
}

static void test_append_enospc(void **state)
{
    append_fault(*state, ENOSPC);
}

/* A snapshot install (trailing 0) that fails on the disk leaves the store
 * ending where it did, while libraft 0.15 goes on as if the log started
 * after the snapshot: the next append must fail (RAFT_IOERR), never land at
 * another index than libraft meant (the cluster simulator's seed 118488
 * stored the leader's entries 55..94 at 24..63). After reopening, the
 * store holds exactly what it held before the failed install. */
static void test_failed_install_fails_later_appends(void **state)
{
    fx *f = *state;
    rlog_vfs *fv = rlog_vfs_fault_new(rlog_vfs_posix());
    rlog_loop *loop = NULL;
    assert_int_equal(rlog_loop_uv_new(&f->loop, &loop), 0);
    io_open_custom(f, loop, fv, f->dir);
    bootstrap(f);
    app a = {0}, b = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 4, 1), 0); /* 2..5 */
    run_until(f, &cb_seq, 1);
    assert_int_equal(a.status, 0);
    rlog_fault rule = {.op = RLOG_OP_PWRITE, .err = EIO, .path_contains = ".seg"};
    assert_true(rlog_vfs_fault_add(fv, &rule) > 0);
    assert_int_equal(try_put_snapshot(f, 20, 3, 0, "leader's state at 20"), RAFT_IOERR);
    rlog_vfs_fault_clear(fv);
    /* libraft would now append the leader's entry 21. */
    int rv = submit(f, &b, 21, 1, 3);
    if (rv == 0) {
        run_until(f, &cb_seq, 2);
        assert_int_equal(b.status, RAFT_IOERR);
    }
    io_close(f);
    int loop_closed = 0;
    loop->close(loop, flag_set, &loop_closed);
    run_until(f, &loop_closed, 1);
    rlog_loop_uv_free(loop);
    fv->destroy(fv);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_null(l.snap);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 5); /* the bootstrap configuration and 2..5, nothing more */
    expect_entries(&l, 2, 5, 1);
    loaded_free(&l);
}

static uint8_t big_byte(raft_index index, size_t k)
{
    return (uint8_t)(index * 131u + k * 7u + (k >> 12));
}

/* ---- snapshot file I/O off the loop ---- */

/* A vfs that holds the first write (or read) of a snapshot file until the
 * loop thread opens the gate: the work pool's thread waits there, so the
 * loop can only open it if it is free while the file is written. Wait at
 * most 10 s, so a put that runs on the loop thread (which would wait for
 * itself) ends and fails the test instead of hanging. */
static struct gate {
    rlog_vfs vfs; /* posix's table with open, pwrite, pread replaced */
    rlog_vfs *base;
    uv_mutex_t mu;
    uv_cond_t cv;
    const char *name; /* files whose name contains this are held */
    rlog_file *held_file;
    bool waiting, open, timed_out;
} gate;

static void gate_pass(rlog_file *f)
{
    uv_mutex_lock(&gate.mu);
    if (f == gate.held_file && !gate.open) {
        gate.waiting = true;
        while (!gate.open && !gate.timed_out) {
            if (uv_cond_timedwait(&gate.cv, &gate.mu, 10ull * 1000000000ull) != 0) {
                gate.timed_out = true;
            }
        }
        gate.waiting = false;
    }
    uv_mutex_unlock(&gate.mu);
}

static int gate_vfs_open(rlog_vfs *v, const char *path, unsigned flags, rlog_file **out)
{
    (void)v;
    int rv = gate.base->open(gate.base, path, flags, out);
    uv_mutex_lock(&gate.mu);
    if (rv == 0 && gate.name != NULL && strstr(path, gate.name) != NULL && gate.held_file == NULL) {
        gate.held_file = *out;
    }
    uv_mutex_unlock(&gate.mu);
    return rv;
}

static int gate_vfs_pwrite(rlog_vfs *v, rlog_file *f, const void *buf, size_t len, uint64_t off,
                           size_t *done)
{
    (void)v;
    gate_pass(f);
    return gate.base->pwrite(gate.base, f, buf, len, off, done);
}

static int gate_vfs_pread(rlog_vfs *v, rlog_file *f, void *buf, size_t len, uint64_t off,
                          size_t *done)
{
    (void)v;
    gate_pass(f);
    return gate.base->pread(gate.base, f, buf, len, off, done);
}

/* The loop's side: a repeating 1 ms timer that opens the gate once the
 * work is waiting at it, and counts the turns it saw that. */
static int opened_by_timer;

static void gate_timer_cb(uv_timer_t *t)
{
    (void)t;
    on_loop_thread();
    uv_mutex_lock(&gate.mu);
    if (gate.waiting && !gate.open) {
        gate.open = true;
        opened_by_timer++;
        uv_cond_signal(&gate.cv);
    }
    uv_mutex_unlock(&gate.mu);
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* Opens the io on a gate vfs holding files named *name*, with the timer. */
static void gate_open(fx *f, const char *name, uv_timer_t *timer, rlog_loop **loop)
{
    memset(&gate, 0, sizeof gate);
    gate.base = rlog_vfs_posix();
    gate.vfs = *gate.base;
    gate.vfs.open = gate_vfs_open;
    gate.vfs.pwrite = gate_vfs_pwrite;
    gate.vfs.pread = gate_vfs_pread;
    gate.vfs.destroy = NULL;
    gate.name = name;
    assert_int_equal(uv_mutex_init(&gate.mu), 0);
    assert_int_equal(uv_cond_init(&gate.cv), 0);
    opened_by_timer = 0;
    assert_int_equal(rlog_loop_uv_new(&f->loop, loop), 0);
    io_open_custom(f, *loop, &gate.vfs, f->dir);
    assert_int_equal(uv_timer_init(&f->loop, timer), 0);
    assert_int_equal(uv_timer_start(timer, gate_timer_cb, 1, 1), 0);
}

static void gate_close(fx *f, uv_timer_t *timer, rlog_loop *loop)
{
    io_close(f);
    uv_close((uv_handle_t *)timer, timer_closed);
    int loop_closed = 0;
    loop->close(loop, flag_set, &loop_closed);
    run_until(f, &loop_closed, 1);
    rlog_loop_uv_free(loop);
    uv_cond_destroy(&gate.cv);
    uv_mutex_destroy(&gate.mu);
    assert_false(gate.timed_out);
}

enum { BIG_SNAP = 64 << 20, MID_SNAP = 16 << 20 };

/* data for a big snapshot: len bytes, not one repeated byte */
static uint8_t *big_snapshot_data(size_t len)
{
    uint8_t *d = malloc(len);
    for (size_t k = 0; k < len; k++) {
        d[k] = big_byte(7, k);
    }
    return d;
}

static void snapshot_of(struct raft_snapshot *snap, struct raft_buffer *buf, raft_index index,
                        raft_term term, void *data, size_t len)
{
    memset(snap, 0, sizeof *snap);
    snap->index = index;
    snap->term = term;
    conf_one(&snap->configuration, 1);
    snap->configuration_index = 1;
    buf->base = data;
    buf->len = len;
    snap->bufs = buf;
    snap->n_bufs = 1;
}

/* A 64 MiB snapshot_put (trailing > 0) and its snapshot_get leave the loop
 * free while their files are written and read: the write (then the read)
 * waits at the gate until a timer on the loop opens it, so the callback
 * can only come if the loop ran timers meanwhile (a put doing its I/O on
 * the loop thread would wait for itself; the gate gives up after 10 s and
 * the test fails). An append made while the put is pending completes
 * normally; the snapshot read back is the one written. */
static void test_snapshot_io_off_loop(void **state)
{
    fx *f = *state;
    uv_timer_t timer;
    rlog_loop *loop = NULL;
    gate_open(f, ".snap", &timer, &loop);
    bootstrap(f);
    app a = {0}, b = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 9, 1), 0); /* 2..10 */
    run_until(f, &cb_seq, 1);
    uint8_t *data = big_snapshot_data(BIG_SNAP);
    struct raft_snapshot snap;
    struct raft_buffer buf;
    snapshot_of(&snap, &buf, 8, 1, data, BIG_SNAP);
    snapreq s = {0};
    s.put.data = &s;
    assert_int_equal(f->io.snapshot_put(&f->io, 2, &s.put, &snap, put_cb), 0);
    assert_int_equal(submit(f, &b, 11, 2, 1), 0); /* not held: trailing > 0 */
    run_until(f, &s.done, 1);
    assert_int_equal(s.status, 0);
    assert_int_equal(opened_by_timer, 1);
    run_until(f, &cb_seq, 2);
    assert_int_equal(b.status, 0);
    raft_configuration_close(&snap.configuration);
    /* the read of snapshot_get is held the same way */
    uv_mutex_lock(&gate.mu);
    gate.open = false;
    gate.held_file = NULL;
    uv_mutex_unlock(&gate.mu);
    snapreq g = {0};
    g.get.data = &g;
    assert_int_equal(f->io.snapshot_get(&f->io, &g.get, get_cb), 0);
    run_until(f, &g.done, 1);
    assert_int_equal(g.status, 0);
    assert_int_equal(opened_by_timer, 2);
    assert_non_null(g.got);
    assert_int_equal(g.got->index, 8);
    assert_int_equal(g.got->bufs[0].len, BIG_SNAP);
    assert_memory_equal(g.got->bufs[0].base, data, BIG_SNAP);
    snapshot_free(g.got);
    free(data);
    gate_close(f, &timer, loop);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.snap->index, 8);
    assert_int_equal(l.start, 7); /* trailing 2: 7..12 */
    assert_int_equal(l.n, 6);
    expect_entries(&l, 7, 12, 1);
    loaded_free(&l);
}

/* An install (trailing 0) pending in the work pool: an append libraft
 * makes meanwhile (at the snapshot's index + 1, where its log now ends) is
 * held and reaches the store after the marker: both succeed, the append's
 * callback comes after the put's, and after a restart the log is the
 * snapshot followed by that append. Without the hold the store, still at
 * its old last index, would refuse an append at index + 1. */
static void test_install_holds_appends(void **state)
{
    fx *f = *state;
    uv_timer_t timer;
    rlog_loop *loop = NULL;
    gate_open(f, ".snap", &timer, &loop);
    bootstrap(f);
    app a = {0}, b = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 4, 1), 0); /* 2..5 */
    run_until(f, &cb_seq, 1);
    char data[] = "the leader's state at 20";
    struct raft_snapshot snap;
    struct raft_buffer buf;
    snapshot_of(&snap, &buf, 20, 3, data, strlen(data));
    snapreq s = {0};
    s.put.data = &s;
    assert_int_equal(f->io.snapshot_put(&f->io, 0, &s.put, &snap, put_cb), 0);
    assert_int_equal(submit(f, &b, 21, 2, 3), 0);
    int put_seq = -1;
    while (s.done == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    put_seq = cb_seq++;
    assert_int_equal(s.status, 0);
    run_until(f, &cb_seq, 3);
    assert_int_equal(b.status, 0);
    assert_true(b.order > put_seq);
    assert_int_equal(opened_by_timer, 1);
    raft_configuration_close(&snap.configuration);
    gate_close(f, &timer, loop);
    io_open(f);
    loaded l;
    load(f, &l);
    expect_snapshot(l.snap, 20, 3, data);
    assert_int_equal(l.start, 21);
    assert_int_equal(l.n, 2);
    expect_entries(&l, 21, 22, 3);
    loaded_free(&l);
}

/* close while an install's file is being written, with an append held
 * behind it: the put is finished, not dropped (its callback with status
 * 0), the held append reaches the store and completes (status 0), both
 * before the close callback, and a restart finds the snapshot and the
 * append. */
static void test_close_with_snapshot_write_pending(void **state)
{
    fx *f = *state;
    uv_timer_t timer;
    rlog_loop *loop = NULL;
    gate_open(f, ".snap", &timer, &loop);
    bootstrap(f);
    uint8_t *data = big_snapshot_data(MID_SNAP);
    struct raft_snapshot snap;
    struct raft_buffer buf;
    snapshot_of(&snap, &buf, 20, 3, data, MID_SNAP);
    snapreq s = {0};
    s.put.data = &s;
    cb_seq = 0;
    assert_int_equal(f->io.snapshot_put(&f->io, 0, &s.put, &snap, put_cb), 0);
    app b = {0};
    assert_int_equal(submit(f, &b, 21, 1, 3), 0);
    f->io.close(&f->io, close_seq_cb);
    assert_int_equal(s.done, 0);
    run_until(f, &f->closed, 1);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.status, 0);
    assert_int_equal(b.status, 0);
    assert_true(b.order < closed_at_seq);
    assert_int_equal(opened_by_timer, 1);
    rlog_raft_io_fini(&f->io);
    f->open = false;
    raft_configuration_close(&snap.configuration);
    gate_close(f, &timer, loop);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.snap->index, 20);
    assert_int_equal(l.snap->bufs[0].len, MID_SNAP);
    assert_memory_equal(l.snap->bufs[0].base, data, MID_SNAP);
    assert_int_equal(l.start, 21);
    assert_int_equal(l.n, 1);
    expect_entries(&l, 21, 21, 3);
    loaded_free(&l);
    free(data);
}

/* A large load (12 MiB of 1 MiB entries, plus the bootstrap entry, then
 * 64 small entries, several per batch record): every entry's bytes come
 * back, each in a buffer of its own that no other entry's buffer overlaps
 * (libraft 0.15 can free a shared batch twice: load.c, "One allocation
 * per entry"). */
static void test_load_one_allocation_per_entry(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    enum { PER = 4, APPENDS = 3, SIZE = 1 << 20, SMALL = 64, SMALL_SIZE = 8 };
    uint8_t *bufs = malloc((size_t)PER * SIZE);
    app a[APPENDS + 1];
    memset(a, 0, sizeof a);
    cb_seq = 0;
    for (int j = 0; j < APPENDS; j++) {
        struct raft_entry e[PER];
        for (int i = 0; i < PER; i++) {
            raft_index index = (raft_index)(2 + j * PER + i);
            uint8_t *p = bufs + (size_t)i * SIZE;
            for (size_t k = 0; k < SIZE; k++) {
                p[k] = big_byte(index, k);
            }
            e[i] = (struct raft_entry){.term = 1, .type = RAFT_COMMAND, .buf = {p, SIZE}};
        }
        a[j].req.data = &a[j];
        assert_int_equal(f->io.append(&f->io, &a[j].req, e, PER, append_cb), 0);
        run_until(f, &cb_seq, j + 1); /* entries are borrowed only during the call */
        assert_int_equal(a[j].status, 0);
    }
    free(bufs);
    struct raft_entry small[SMALL];
    uint8_t small_bytes[SMALL][SMALL_SIZE];
    for (int i = 0; i < SMALL; i++) {
        raft_index index = (raft_index)(2 + PER * APPENDS + i);
        for (size_t k = 0; k < SMALL_SIZE; k++) {
            small_bytes[i][k] = big_byte(index, k);
        }
        small[i] = (struct raft_entry){
            .term = 1, .type = RAFT_COMMAND, .buf = {small_bytes[i], SMALL_SIZE}};
    }
    a[APPENDS].req.data = &a[APPENDS];
    assert_int_equal(f->io.append(&f->io, &a[APPENDS].req, small, SMALL, append_cb), 0);
    run_until(f, &cb_seq, APPENDS + 1);
    assert_int_equal(a[APPENDS].status, 0);
    io_close(f);
    io_open(f);
    loaded l;
    load(f, &l);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 1 + PER * APPENDS + SMALL);
    for (size_t i = 0; i < l.n; i++) {
        const struct raft_entry *e = &l.entries[i];
        const uint8_t *b = e->buf.base;
        for (size_t k = 0; k < i; k++) {
            const uint8_t *o = l.entries[k].buf.base;
            assert_true(b >= o + (l.entries[k].buf.len > 0 ? l.entries[k].buf.len : 1) ||
                        o >= b + (e->buf.len > 0 ? e->buf.len : 1));
        }
        if (i == 0) {
            continue;
        }
        size_t len = i <= PER * APPENDS ? SIZE : SMALL_SIZE;
        assert_int_equal(e->buf.len, len);
        const uint8_t *d = e->buf.base;
        for (size_t k = 0; k < len; k++) {
            if (d[k] != big_byte(1 + i, k)) {
                fail_msg("entry %zu byte %zu differs", 1 + i, k);
            }
        }
    }
    loaded_free(&l);
}

static void test_damaged_entry_fails_init(void **state)
{
    fx *f = *state;
    io_open(f);
    bootstrap(f);
    app a = {0};
    cb_seq = 0;
    assert_int_equal(submit(f, &a, 2, 5, 1), 0);
    run_until(f, &cb_seq, 1);
    io_close(f);
    /* Flip a bit inside the payload of entry 4, wherever it is. */
    char **names;
    size_t n = tu_list_segments(f->dir, &names);
    char want[48];
    payload(4, 1, want, sizeof want);
    size_t found = n;
    uint64_t off = 0;
    for (size_t i = 0; i < n && found == n; i++) {
        void *bytes;
        size_t len;
        tu_read_file(tu_path(f->dir, names[i]), &bytes, &len);
        uint8_t *hit = memmem(bytes, len, want, strlen(want));
        if (hit != NULL) {
            found = i;
            off = (uint64_t)(hit - (uint8_t *)bytes) + 3;
        }
        free(bytes);
    }
    assert_true(found < n);
    tu_flip_bit(tu_path(f->dir, names[found]), off, 2);
    assert_int_equal(rlog_raft_io_init(&f->io, &f->loop, f->dir, NULL), 0);
    int rv = f->io.init(&f->io, 1, "127.0.0.1:0");
    assert_int_equal(rv, RAFT_CORRUPT);
    /* The message names the segment file and an offset. */
    assert_non_null(strstr(f->io.errmsg, names[found]));
    assert_non_null(strstr(f->io.errmsg, "offset"));
    rlog_raft_io_fini(&f->io);
    tu_free_names(names, n);
}

typedef struct workreq {
    struct raft_io_async_work req;
    int ran_on_loop;
    int status;
    int done;
    uv_thread_t loop_thread;
    uv_thread_t work_thread;
} workreq;

static int work_fn(struct raft_io_async_work *req)
{
    workreq *w = req->data;
    w->work_thread = uv_thread_self();
    return 42;
}

static void work_cb(struct raft_io_async_work *req, int status)
{
    workreq *w = req->data;
    w->status = status;
    w->ran_on_loop = uv_thread_equal(&w->loop_thread, &(uv_thread_t){uv_thread_self()});
    w->done++;
}

static void test_async_work_time_random(void **state)
{
    fx *f = *state;
    io_open(f);
    workreq w = {0};
    w.req.data = &w;
    w.req.work = work_fn;
    w.loop_thread = uv_thread_self();
    assert_int_equal(f->io.async_work(&f->io, &w.req, work_cb), 0);
    assert_int_equal(w.done, 0);
    run_until(f, &w.done, 1);
    assert_int_equal(w.status, 42);
    assert_true(w.ran_on_loop);
    assert_false(uv_thread_equal(&w.loop_thread, &w.work_thread));
    raft_time t0 = f->io.time(&f->io);
    uv_sleep(5);
    uv_update_time(&f->loop);
    assert_true(f->io.time(&f->io) >= t0 + 5);
    int seen[10] = {0};
    for (int i = 0; i < 2000; i++) {
        int v = f->io.random(&f->io, 100, 110);
        assert_true(v >= 100 && v < 110);
        seen[v - 100]++;
    }
    for (int i = 0; i < 10; i++) {
        assert_true(seen[i] > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_empty),
        cmocka_unit_test(test_bootstrap_load_and_twice),
        cmocka_unit_test(test_recover_appends_configuration),
        cmocka_unit_test(test_term_vote_durable_on_return),
        cmocka_unit_test(test_append_order_after_durable),
        cmocka_unit_test(test_append_order_no_threads),
        cmocka_unit_test(test_truncate_with_appends_in_flight),
        cmocka_unit_test(test_snapshot_compaction_and_get),
        cmocka_unit_test(test_snapshot_install_replaces_log),
        cmocka_unit_test(test_snapshot_get_none),
        cmocka_unit_test(test_close_with_work_pending),
        cmocka_unit_test(test_append_eio),
        cmocka_unit_test(test_append_enospc),
        cmocka_unit_test(test_failed_install_fails_later_appends),
        cmocka_unit_test(test_load_one_allocation_per_entry),
        cmocka_unit_test(test_loop_uv_post_order),
        cmocka_unit_test(test_snapshot_io_off_loop),
        cmocka_unit_test(test_install_holds_appends),
        cmocka_unit_test(test_close_with_snapshot_write_pending),
        cmocka_unit_test(test_damaged_entry_fails_init),
        cmocka_unit_test(test_async_work_time_random),
    };
    return TU_RUN("raftio_storage", tests, setup, teardown);
}
