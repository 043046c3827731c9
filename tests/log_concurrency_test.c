/* The log with several threads: readers following a writer across
 * rotations, group commit, asynchronous appends and their callbacks (with
 * the background thread, and driven by rlog_step), callbacks on poisoning
 * and at close. Threads report failures through their structs; only the
 * main thread asserts. */
#include "util/testutil.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rlog/log.h"

#define T      100
#define SEG    8192u
#define MAXLEN 600

#define SEG1 "0000000000000001.seg"

typedef tu_dir_fx fx;

static rlog_log *open_log(const char *dir, rlog_vfs *vfs, uint64_t seg, rlog_sync_mode mode,
                          unsigned flags, rlog_open_report *rep)
{
    return tu_open_log(dir, vfs, seg, mode, RLOG_OPEN_CREATE | flags, rep);
}

static uint32_t len_of(uint64_t lsn)
{
    return (uint32_t)(1 + (lsn * 37) % MAXLEN);
}

/* Checks a record read back: LSN lsn, pattern `seed`. Writes a reason into
 * err (cap bytes) and returns false when it is wrong. */
static bool record_ok(const rlog_record *r, uint64_t lsn, uint64_t seed, char *err, size_t cap)
{
    uint8_t want[MAXLEN + 1];
    if (r->lsn != lsn || r->type != T || r->len != len_of(lsn)) {
        snprintf(err, cap, "record LSN %llu (type %u, %u bytes) where LSN %llu was due",
                 (unsigned long long)r->lsn, r->type, r->len, (unsigned long long)lsn);
        return false;
    }
    tu_fill(seed, lsn, want, r->len);
    if (memcmp(r->data, want, r->len) != 0) {
        snprintf(err, cap, "record LSN %llu has wrong bytes", (unsigned long long)lsn);
        return false;
    }
    return true;
}

static int append_pattern(rlog_log *l, uint64_t lsn, uint64_t seed)
{
    uint8_t buf[MAXLEN + 1];
    uint32_t len = len_of(lsn);
    tu_fill(seed, lsn, buf, len);
    rlog_record r = {.type = T, .len = len, .data = buf};
    uint64_t got = 0;
    int rv = rlog_append(l, &r, 1, &got);
    if (!rv && got != lsn)
        return -1;
    return rv;
}

/* Every record 1..n with pattern `seed`, then nothing. */
static void check_all(rlog_log *l, uint64_t n, uint64_t seed)
{
    rlog_iter *it;
    assert_int_equal(rlog_iter_open(l, 1, 0, &it), 0);
    rlog_record r;
    char err[160];
    for (uint64_t lsn = 1; lsn <= n; lsn++) {
        int rv = rlog_iter_next(it, &r);
        if (rv)
            fail_msg("iter LSN %llu: %s: %s", (unsigned long long)lsn, rlog_errname(rv),
                     rlog_errmsg(l));
        if (!record_ok(&r, lsn, seed, err, sizeof err))
            fail_msg("%s", err);
    }
    assert_int_equal(rlog_iter_next(it, &r), RLOG_EEND);
    rlog_iter_close(it);
}

/* Deadline for waits that must end (a hang becomes a failure). */
static void deadline(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

/* ---- readers following a writer ---- */

#define FOLLOW_N    3000
#define FOLLOW_SEED 21u

typedef struct shared {
    rlog_log *l;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t written_ack; /* rlog_append returned for LSNs up to this */
    uint64_t durable_ack; /* rlog_sync returned after LSNs up to this */
    uint64_t gen;         /* bumped on every change */
    bool done;
    char werr[200]; /* writer failure */
} shared;

typedef struct reader {
    shared *sh;
    unsigned flags;
    uint64_t seen;  /* records read */
    uint64_t eends; /* RLOG_EEND answers */
    char err[200];
} reader;

static void publish(shared *sh, uint64_t *field, uint64_t v, bool done)
{
    pthread_mutex_lock(&sh->mu);
    if (field)
        *field = v;
    sh->done = sh->done || done;
    sh->gen++;
    pthread_cond_broadcast(&sh->cond);
    pthread_mutex_unlock(&sh->mu);
}

static void *writer_main(void *arg)
{
    shared *sh = arg;
    for (uint64_t lsn = 1; lsn <= FOLLOW_N; lsn++) {
        int rv = append_pattern(sh->l, lsn, FOLLOW_SEED);
        if (rv) {
            snprintf(sh->werr, sizeof sh->werr, "append LSN %llu: %s", (unsigned long long)lsn,
                     rlog_errname(rv));
            break;
        }
        publish(sh, &sh->written_ack, lsn, false);
        if (lsn % 16 == 0 || lsn == FOLLOW_N) {
            rv = rlog_sync(sh->l);
            if (rv) {
                snprintf(sh->werr, sizeof sh->werr, "sync: %s", rlog_errname(rv));
                break;
            }
            publish(sh, &sh->durable_ack, lsn, false);
        }
    }
    publish(sh, NULL, 0, true);
    return NULL;
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    shared *sh = rd->sh;
    bool durable = rd->flags & RLOG_READ_DURABLE;
    rlog_iter *it;
    if (rlog_iter_open(sh->l, 1, rd->flags, &it) != 0) {
        snprintf(rd->err, sizeof rd->err, "iter_open failed");
        return NULL;
    }
    uint64_t next = 1;
    while (next <= FOLLOW_N) {
        pthread_mutex_lock(&sh->mu);
        uint64_t ack = durable ? sh->durable_ack : sh->written_ack, gen = sh->gen;
        bool done = sh->done;
        pthread_mutex_unlock(&sh->mu);
        rlog_record r;
        int rv = rlog_iter_next(it, &r);
        if (rv == RLOG_EEND) {
            rd->eends++;
            if (ack >= next || done) {
                snprintf(rd->err, sizeof rd->err,
                         "RLOG_EEND at LSN %llu, which was already acknowledged %s",
                         (unsigned long long)next, durable ? "durable" : "written");
                break;
            }
            pthread_mutex_lock(&sh->mu);
            while (sh->gen == gen && !sh->done)
                pthread_cond_wait(&sh->cond, &sh->mu);
            pthread_mutex_unlock(&sh->mu);
            continue;
        }
        if (rv) {
            snprintf(rd->err, sizeof rd->err, "iter_next at LSN %llu: %s", (unsigned long long)next,
                     rlog_errname(rv));
            break;
        }
        if (!record_ok(&r, next, FOLLOW_SEED, rd->err, sizeof rd->err))
            break;
        rlog_positions p;
        rlog_positions_get(sh->l, &p);
        uint64_t limit = durable ? p.durable : p.written;
        if (r.lsn > limit) {
            snprintf(rd->err, sizeof rd->err, "read LSN %llu beyond %s position %llu",
                     (unsigned long long)r.lsn, durable ? "durable" : "written",
                     (unsigned long long)limit);
            break;
        }
        rd->seen++;
        next++;
    }
    rlog_iter_close(it);
    return NULL;
}

/* Readers on their own threads follow a writer across many rotations: each
 * sees every record once, in order, with the right bytes, never one beyond
 * the written (or, for durable readers, the durable) position, and RLOG_EEND
 * only for records not yet acknowledged. */
static void test_readers_follow_writer(void **state)
{
    fx *f = *state;
    shared sh = {.l = open_log(f->dir, NULL, SEG, RLOG_SYNC_NONE, 0, NULL)};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cond, NULL);
    enum { NR = 4 };
    reader rd[NR];
    pthread_t th[NR], wt;
    for (int i = 0; i < NR; i++) {
        rd[i] = (reader){.sh = &sh, .flags = i % 2 ? RLOG_READ_DURABLE : 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &sh), 0);
    pthread_join(wt, NULL);
    for (int i = 0; i < NR; i++)
        pthread_join(th[i], NULL);
    if (sh.werr[0])
        fail_msg("writer: %s", sh.werr);
    for (int i = 0; i < NR; i++) {
        if (rd[i].err[0])
            fail_msg("reader %d (%s): %s", i, rd[i].flags ? "durable" : "written", rd[i].err);
        assert_int_equal(rd[i].seen, FOLLOW_N);
    }
    rlog_metrics m;
    rlog_metrics_get(sh.l, &m);
    assert_true(m.rotations >= 50);
    assert_int_equal(rlog_close(sh.l), 0);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cond);
}

/* Reads with `it` up to and including `upto`, then expects RLOG_EEND. */
static void read_exactly_to(rlog_log *l, rlog_iter *it, uint64_t *next, uint64_t upto,
                            uint64_t seed)
{
    rlog_record r;
    char err[160];
    while (*next <= upto) {
        int rv = rlog_iter_next(it, &r);
        if (rv)
            fail_msg("iter LSN %llu (visible up to %llu): %s: %s", (unsigned long long)*next,
                     (unsigned long long)upto, rlog_errname(rv), rlog_errmsg(l));
        if (!record_ok(&r, *next, seed, err, sizeof err))
            fail_msg("%s", err);
        (*next)++;
    }
    int rv = rlog_iter_next(it, &r);
    if (rv != RLOG_EEND)
        fail_msg("LSN %llu is beyond the visible %llu, but iter_next says %s",
                 (unsigned long long)*next, (unsigned long long)upto, rlog_errname(rv));
}

/* In lock step with the writer, the visibility bound is exact: a reader
 * sees precisely the records up to `written` and then RLOG_EEND, a durable
 * reader precisely those up to `durable` (also rlog_get), and both pick up
 * where they stopped once more becomes visible, across rotations. */
static void test_visibility_bound_exact(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, NULL, SEG, RLOG_SYNC_NONE, 0, NULL);
    rlog_iter *wi, *di;
    assert_int_equal(rlog_iter_open(l, 1, 0, &wi), 0);
    assert_int_equal(rlog_iter_open(l, 1, RLOG_READ_DURABLE, &di), 0);
    uint64_t wnext = 1, dnext = 1, lsn = 0, gaps = 0;
    for (int round = 0; round < 60; round++) {
        int k = 1 + round % 7;
        for (int i = 0; i < k; i++)
            assert_int_equal(append_pattern(l, ++lsn, 31), 0);
        if (round % 3 == 2)
            assert_int_equal(rlog_sync(l), 0);
        rlog_positions p;
        rlog_positions_get(l, &p);
        assert_int_equal(p.written, lsn);
        gaps += p.durable < p.written;
        read_exactly_to(l, wi, &wnext, p.written, 31);
        read_exactly_to(l, di, &dnext, p.durable, 31);
        rlog_record r;
        void *pl;
        if (p.durable < p.written)
            assert_int_equal(rlog_get(l, p.durable + 1, RLOG_READ_DURABLE, &r, &pl),
                             RLOG_ENOTFOUND);
    }
    assert_true(gaps > 10); /* the durable bound was tested apart from written */
    rlog_iter_close(wi);
    rlog_iter_close(di);
    assert_int_equal(rlog_close(l), 0);
}

/* ---- group commit ---- */

#define GC_THREADS 8
#define GC_PER     250

typedef struct gc_thread {
    rlog_log *l;
    unsigned id;
    uint64_t lsns[GC_PER];
    char err[160];
} gc_thread;

static void gc_payload(unsigned id, unsigned i, uint8_t *buf, uint32_t *len)
{
    *len = 16 + (i * 7 + id) % 200;
    tu_fill(id + 1, i, buf, *len);
    memcpy(buf, &id, sizeof id);
    memcpy(buf + 4, &i, sizeof i);
}

static void *gc_main(void *arg)
{
    gc_thread *g = arg;
    uint8_t buf[256];
    for (unsigned i = 0; i < GC_PER; i++) {
        uint32_t len;
        gc_payload(g->id, i, buf, &len);
        rlog_record r = {.type = T, .len = len, .data = buf};
        int rv = rlog_append(g->l, &r, 1, &g->lsns[i]);
        if (rv) {
            snprintf(g->err, sizeof g->err, "append %u: %s", i, rlog_errname(rv));
            return NULL;
        }
        /* acknowledged means durable */
        rlog_positions p;
        rlog_positions_get(g->l, &p);
        if (p.durable < g->lsns[i]) {
            snprintf(g->err, sizeof g->err, "append of LSN %llu returned at durable %llu",
                     (unsigned long long)g->lsns[i], (unsigned long long)p.durable);
            return NULL;
        }
    }
    return NULL;
}

/* 8 threads append concurrently in RLOG_SYNC_GROUP: LSNs are distinct and
 * gap-free, each thread's own appends get increasing LSNs, every record
 * reads back as its thread wrote it (also after reopen), and appenders
 * shared fdatasyncs (fewer syncs than appends, batches above 1). */
static void group_commit_case(fx *f, unsigned flags)
{
    rlog_log *l = open_log(f->dir, NULL, 65536, RLOG_SYNC_GROUP, flags, NULL);
    gc_thread *g = calloc(GC_THREADS, sizeof *g);
    pthread_t th[GC_THREADS];
    for (unsigned t = 0; t < GC_THREADS; t++) {
        g[t].l = l;
        g[t].id = t;
        assert_int_equal(pthread_create(&th[t], NULL, gc_main, &g[t]), 0);
    }
    for (unsigned t = 0; t < GC_THREADS; t++)
        pthread_join(th[t], NULL);
    const uint64_t total = GC_THREADS * GC_PER;
    uint8_t *owner = calloc(total + 1, 1);
    uint16_t *index = calloc(total + 1, sizeof *index);
    for (unsigned t = 0; t < GC_THREADS; t++) {
        if (g[t].err[0])
            fail_msg("thread %u: %s", t, g[t].err);
        for (unsigned i = 0; i < GC_PER; i++) {
            uint64_t lsn = g[t].lsns[i];
            assert_true(lsn >= 1 && lsn <= total);
            if (owner[lsn])
                fail_msg("LSN %llu handed out twice", (unsigned long long)lsn);
            owner[lsn] = (uint8_t)(t + 1);
            index[lsn] = (uint16_t)i;
            if (i > 0)
                assert_true(lsn > g[t].lsns[i - 1]);
        }
    }
    rlog_metrics m;
    rlog_metrics_get(l, &m);
    assert_int_equal(m.appends, total);
    assert_int_equal(m.records, total); /* counted by the round that completes an append */
    if (m.syncs >= total)
        fail_msg("%llu syncs for %llu appends: no group commit", (unsigned long long)m.syncs,
                 (unsigned long long)total);
    uint64_t batched = 0;
    for (int b = 1; b < RLOG_HIST_BUCKETS; b++)
        batched += m.batch_hist[b];
    assert_true(batched > 0);
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t lsn = 1; lsn <= total; lsn++) {
            rlog_record r;
            void *pl;
            assert_int_equal(rlog_get(l, lsn, 0, &r, &pl), 0);
            uint8_t want[256];
            uint32_t len;
            gc_payload(owner[lsn] - 1u, index[lsn], want, &len);
            assert_int_equal(r.len, len);
            assert_memory_equal(r.data, want, len);
            rlog_free(pl);
        }
        assert_int_equal(rlog_close(l), 0);
        if (pass == 0) {
            rlog_open_report rep;
            l = open_log(f->dir, NULL, 65536, RLOG_SYNC_GROUP, 0, &rep);
            assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
            assert_int_equal(rep.last_lsn, total);
        }
    }
    free(owner);
    free(index);
    free(g);
}

static void test_group_commit(void **state)
{
    group_commit_case(*state, 0);
}

static void test_group_commit_thread(void **state)
{
    group_commit_case(*state, RLOG_OPEN_THREAD);
}

/* Group commit waits a little for the appenders a round completed to append
 * again (log/writer.c, gather): one that stops appending must not stall
 * the others. A appends LEAVER_A times and then waits for B without
 * returning to the log; B appends LEAVER_B times and must finish, each of
 * its appends durable when it returns. */
#define LEAVER_A 50
#define LEAVER_B 400

typedef struct leaver {
    rlog_log *l;
    atomic_bool b_done;
    unsigned ok;
    uint64_t last;
} leaver;

static void *leaver_a(void *p)
{
    leaver *x = p;
    uint8_t b[64] = {1};
    rlog_record r = {.type = T, .len = sizeof b, .data = b};
    for (unsigned i = 0; i < LEAVER_A; i++)
        if (rlog_append(x->l, &r, 1, NULL) == 0)
            x->ok++;
    while (!atomic_load(&x->b_done))
        usleep(1000);
    return NULL;
}

static void test_group_commit_leaver(void **state)
{
    fx *f = *state;
    leaver x = {.l = open_log(f->dir, NULL, 65536, RLOG_SYNC_GROUP, 0, NULL)};
    pthread_t a;
    assert_int_equal(pthread_create(&a, NULL, leaver_a, &x), 0);
    uint8_t b[64] = {2};
    rlog_record r = {.type = T, .len = sizeof b, .data = b};
    for (unsigned i = 0; i < LEAVER_B; i++) {
        uint64_t lsn = 0;
        assert_int_equal(rlog_append(x.l, &r, 1, &lsn), 0);
        rlog_positions p;
        rlog_positions_get(x.l, &p);
        assert_true(p.durable >= lsn);
    }
    atomic_store(&x.b_done, true);
    pthread_join(a, NULL);
    assert_int_equal(x.ok, LEAVER_A);
    rlog_metrics m;
    rlog_metrics_get(x.l, &m);
    assert_int_equal(m.appends, LEAVER_A + LEAVER_B);
    assert_int_equal(rlog_close(x.l), 0);
}

/* Pipelined group commit (log/writer.c, drive_ticket): an append that
 * arrives while a sync runs is written and synced by the very next sync,
 * which the finished round's leader starts at once — no hand-off of the
 * token, no gathering of the appenders the finished round woke. The posix
 * vfs with a gate on the fdatasyncs of the two appender threads (others —
 * open, the preparer — pass): each gated sync records which thread made it
 * and what was written when it started, and waits for the test. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    rlog_vfs vfs;
    rlog_vfs *posix;
    rlog_log *l;
    unsigned syncs;    /* gated syncs started */
    unsigned released; /* gated syncs the test let finish */
    unsigned fail;     /* gated sync number `fail` (1-based) fails with EIO; 0: none */
    bool blind;        /* do not read the positions (a sync made with the log's mu held) */
    int role[4];       /* which thread made gated sync i (1 = A, 2 = B) */
    uint64_t written[4];
} gate;

static _Thread_local int gate_role; /* 0: not gated */
static gate *the_gate;

static int gate_fdatasync(rlog_vfs *vfs, rlog_file *f)
{
    gate *g = the_gate;
    if (gate_role) {
        rlog_positions p = {0};
        pthread_mutex_lock(&g->mu);
        bool look = !g->blind;
        pthread_mutex_unlock(&g->mu);
        if (look)
            rlog_positions_get(g->l, &p);
        pthread_mutex_lock(&g->mu);
        unsigned i = g->syncs++;
        if (i < 4) {
            g->role[i] = gate_role;
            g->written[i] = p.written;
        }
        pthread_cond_broadcast(&g->cond);
        while (g->released <= i)
            pthread_cond_wait(&g->cond, &g->mu);
        bool fail = i + 1 == g->fail;
        pthread_mutex_unlock(&g->mu);
        if (fail)
            return EIO;
    }
    return g->posix->fdatasync(vfs, f);
}

typedef struct gate_app {
    gate *g;
    int role;
    uint8_t byte;
    uint64_t lsn;
    atomic_int rv; /* 1: not returned yet */
} gate_app;

static void *gate_append(void *p)
{
    gate_app *a = p;
    gate_role = a->role;
    uint8_t b[32];
    memset(b, a->byte, sizeof b);
    rlog_record r = {.type = T, .len = sizeof b, .data = b};
    atomic_store(&a->rv, rlog_append(a->g->l, &r, 1, &a->lsn));
    return NULL;
}

static void gate_wait_syncs(gate *g, unsigned n)
{
    pthread_mutex_lock(&g->mu);
    while (g->syncs < n)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_release(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->released++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g, const char *dir)
{
    memset(g, 0, sizeof *g);
    g->posix = rlog_vfs_posix();
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->vfs = *g->posix;
    g->vfs.fdatasync = gate_fdatasync;
    the_gate = g;
    g->l = open_log(dir, &g->vfs, 65536, RLOG_SYNC_GROUP, 0, NULL);
}

static void gate_close(gate *g, int want)
{
    assert_int_equal(rlog_close(g->l), want);
    the_gate = NULL;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cond);
}

/* Waits until the log has assigned LSN lsn (its append sleeps then). */
static void wait_appended(rlog_log *l, uint64_t lsn)
{
    rlog_positions p;
    do {
        usleep(1000);
        rlog_positions_get(l, &p);
    } while (p.appended < lsn);
}

static void test_group_commit_pipelined(void **state)
{
    fx *f = *state;
    gate g;
    gate_open(&g, f->dir);
    gate_app a = {.g = &g, .role = 1, .byte = 0xa1}, b = {.g = &g, .role = 2, .byte = 0xb2};
    atomic_init(&a.rv, 1);
    atomic_init(&b.rv, 1);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, gate_append, &a), 0);
    gate_wait_syncs(&g, 1); /* A's round: LSN 1 written, its sync held */
    assert_int_equal(pthread_create(&tb, NULL, gate_append, &b), 0);
    wait_appended(g.l, 2); /* B arrives during the sync: LSN 2 encoded, B asleep */
    rlog_positions p;
    rlog_positions_get(g.l, &p);
    assert_int_equal(p.durable, 0);
    gate_release(&g); /* sync 1 ends */
    gate_wait_syncs(&g, 2);
    /* the next sync was started by A, the finished round's leader, and
     * covers B's record, written before it */
    assert_int_equal(g.role[0], 1);
    assert_int_equal(g.role[1], 1);
    assert_int_equal(g.written[0], 1);
    assert_int_equal(g.written[1], 2);
    assert_int_equal(atomic_load(&b.rv), 1); /* B waits for that sync */
    gate_release(&g);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(atomic_load(&a.rv), 0);
    assert_int_equal(atomic_load(&b.rv), 0);
    assert_int_equal(a.lsn, 1);
    assert_int_equal(b.lsn, 2);
    assert_int_equal(g.syncs, 2); /* B needed no third sync */
    rlog_positions_get(g.l, &p);
    assert_int_equal(p.durable, 2);
    rlog_metrics m;
    rlog_metrics_get(g.l, &m);
    assert_int_equal(m.pipelined, 1);
    gate_close(&g, 0);
}

/* The appenders a round completes are woken in chains, each woken one
 * waking the next (log/writer.c, wake_flush): none may be left asleep, also
 * when the round fails. A's sync is held while 7 more appenders arrive and
 * sleep; it then fails: every one of the 8 returns RLOG_EPOISONED. */
#define CHAIN_N 8

static void test_group_commit_failed_sync_wakes_all(void **state)
{
    fx *f = *state;
    gate g;
    gate_open(&g, f->dir);
    g.fail = 1;
    gate_app app[CHAIN_N];
    pthread_t th[CHAIN_N];
    for (unsigned i = 0; i < CHAIN_N; i++) {
        app[i] = (gate_app){.g = &g, .role = i ? 2 : 1, .byte = (uint8_t)i};
        atomic_init(&app[i].rv, 1);
        assert_int_equal(pthread_create(&th[i], NULL, gate_append, &app[i]), 0);
        if (i == 0)
            gate_wait_syncs(&g, 1);
    }
    wait_appended(g.l, CHAIN_N);
    pthread_mutex_lock(&g.mu); /* and the syncs of the unsynced marker after it */
    g.released = UINT_MAX;
    g.blind = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.mu);
    for (unsigned i = 0; i < CHAIN_N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(atomic_load(&app[i].rv), RLOG_EPOISONED);
    }
    assert_int_equal(g.role[0], 1); /* the failed sync was A's round */
    assert_int_equal(g.written[0], 1);
    gate_close(&g, RLOG_EPOISONED);
}

/* ---- asynchronous appends ---- */

typedef struct acall {
    struct actx *ctx;
    uint64_t first; /* as returned by rlog_append_async (main thread) */
    uint64_t cb_first, cb_last;
    int cb_status;
    unsigned fired;
} acall;

typedef struct actx {
    rlog_log *l;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t next_first; /* the first LSN the next callback must carry */
    uint64_t fired;
    atomic_int inside;
    int want_status;
    char err[200];
} actx;

static void actx_init(actx *c, int want_status)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    atomic_init(&c->inside, 0);
    c->next_first = 1;
    c->want_status = want_status;
}

static void actx_destroy(actx *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
}

static void async_cb(void *data, int status, uint64_t first, uint64_t last)
{
    acall *a = data;
    actx *c = a->ctx;
    if (atomic_fetch_add(&c->inside, 1) != 0 && !c->err[0])
        snprintf(c->err, sizeof c->err, "two callbacks ran at once");
    rlog_positions p = {0};
    if (status == 0)
        rlog_positions_get(c->l, &p);
    pthread_mutex_lock(&c->mu);
    a->fired++;
    a->cb_first = first;
    a->cb_last = last;
    a->cb_status = status;
    if (c->err[0]) {
    } else if (a->fired != 1) {
        snprintf(c->err, sizeof c->err, "callback of LSN %llu fired twice",
                 (unsigned long long)first);
    } else if (status != c->want_status) {
        snprintf(c->err, sizeof c->err, "callback of LSN %llu: status %s, expected %s",
                 (unsigned long long)first, rlog_errname(status), rlog_errname(c->want_status));
    } else if (first != c->next_first || last < first) {
        snprintf(c->err, sizeof c->err, "callback for LSN %llu..%llu when %llu was due",
                 (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)c->next_first);
    } else if (status == 0 && p.durable < last) {
        snprintf(c->err, sizeof c->err, "callback for LSN ..%llu at durable %llu",
                 (unsigned long long)last, (unsigned long long)p.durable);
    }
    c->next_first = last + 1;
    c->fired++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_sub(&c->inside, 1);
}

/* Queues call i (1..3 records, pattern 41) at LSN lsn; returns its code. */
static int queue_async(actx *c, acall *a, uint64_t lsn, unsigned n)
{
    uint8_t bufs[3][MAXLEN + 1];
    rlog_record r[3];
    for (unsigned k = 0; k < n; k++) {
        uint32_t len = len_of(lsn + k);
        tu_fill(41, lsn + k, bufs[k], len);
        r[k] = (rlog_record){.type = T, .len = len, .data = bufs[k]};
    }
    a->ctx = c;
    return rlog_append_async(c->l, r, n, async_cb, a, &a->first);
}

/* Queues n asynchronous appends from LSN *lsn on, the i-th of 1 + i % mod
 * records (sizes[i]): each is accepted and told its first LSN; *lsn ends
 * past the last record. Returns the calls (calloc'ed). */
static acall *queue_calls(actx *c, size_t n, unsigned mod, unsigned *sizes, uint64_t *lsn)
{
    acall *calls = calloc(n, sizeof *calls);
    assert_non_null(calls);
    for (size_t i = 0; i < n; i++) {
        sizes[i] = 1 + (unsigned)(i % mod);
        assert_int_equal(queue_async(c, &calls[i], *lsn, sizes[i]), 0);
        assert_int_equal(calls[i].first, *lsn);
        *lsn += sizes[i];
    }
    return calls;
}

/* Waits (bounded) until `n` callbacks fired. */
static void wait_fired(actx *c, uint64_t n)
{
    struct timespec ts;
    deadline(&ts, 60);
    pthread_mutex_lock(&c->mu);
    int e = 0;
    while (c->fired < n && e != ETIMEDOUT)
        e = pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    uint64_t fired = c->fired;
    pthread_mutex_unlock(&c->mu);
    if (fired < n)
        fail_msg("only %llu of %llu callbacks fired", (unsigned long long)fired,
                 (unsigned long long)n);
}

/* Each call fired exactly once, with the LSNs it was given. */
static void check_calls(actx *c, const acall *calls, size_t n, const unsigned *sizes)
{
    if (c->err[0])
        fail_msg("%s", c->err);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(calls[i].fired, 1);
        assert_int_equal(calls[i].cb_first, calls[i].first);
        assert_int_equal(calls[i].cb_last, calls[i].first + sizes[i] - 1);
    }
}

#define ASYNC_CALLS 600

/* Every record up to `last` is durable and readable in l; closed and
 * reopened, the log is clean and still holds them all. */
static void close_durable_reopen(fx *f, rlog_log *l, rlog_sync_mode mode, uint64_t last)
{
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_int_equal(p.durable, last);
    check_all(l, last, 41);
    assert_int_equal(rlog_close(l), 0);
    rlog_open_report rep;
    l = open_log(f->dir, NULL, SEG, mode, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    check_all(l, last, 41);
    assert_int_equal(rlog_close(l), 0);
}

/* Asynchronous appends with the background thread: every callback fires
 * exactly once, in LSN order, one at a time, with status 0, and only once
 * its records are durable; the records are all there after reopen. */
static void async_thread_case(fx *f, rlog_sync_mode mode)
{
    actx c;
    actx_init(&c, 0);
    c.l = open_log(f->dir, NULL, SEG, mode, RLOG_OPEN_THREAD, NULL);
    unsigned sizes[ASYNC_CALLS];
    uint64_t lsn = 1;
    acall *calls = queue_calls(&c, ASYNC_CALLS, 3, sizes, &lsn);
    wait_fired(&c, ASYNC_CALLS);
    check_calls(&c, calls, ASYNC_CALLS, sizes);
    close_durable_reopen(f, c.l, mode, lsn - 1);
    free(calls);
    actx_destroy(&c);
}

static void test_async_thread_group(void **state)
{
    async_thread_case(*state, RLOG_SYNC_GROUP);
}

static void test_async_thread_each(void **state)
{
    async_thread_case(*state, RLOG_SYNC_EACH);
}

/* Without a thread, nothing happens until rlog_step: no write, no callback.
 * Stepping performs the I/O and fires the callbacks exactly once each, in
 * LSN order, after durability; the steps end (more = 0) once all is done. */
static void test_async_step_driven(void **state)
{
    fx *f = *state;
    actx c;
    actx_init(&c, 0);
    c.l = open_log(f->dir, NULL, SEG, RLOG_SYNC_GROUP, 0, NULL);
    enum { CALLS = 300 };
    acall *calls = calloc(CALLS, sizeof *calls);
    unsigned sizes[CALLS];
    uint64_t lsn = 1;
    size_t queued = 0;
    for (int wave = 0; wave < 3; wave++) {
        for (size_t i = 0; i < CALLS / 3; i++, queued++) {
            sizes[queued] = 1 + (unsigned)(queued % 3);
            assert_int_equal(queue_async(&c, &calls[queued], lsn, sizes[queued]), 0);
            lsn += sizes[queued];
        }
        rlog_positions p;
        rlog_positions_get(c.l, &p);
        assert_int_equal(p.appended, lsn - 1);
        pthread_mutex_lock(&c.mu);
        uint64_t fired = c.fired;
        pthread_mutex_unlock(&c.mu);
        assert_int_equal(fired, (uint64_t)wave * (CALLS / 3)); /* nothing fired without steps */
        assert_true(p.durable < lsn - 1);
        int more = 1, steps = 0;
        while (more && steps < 100000) {
            int rv = rlog_step(c.l, &more);
            if (rv)
                fail_msg("step: %s: %s", rlog_errname(rv), rlog_errmsg(c.l));
            steps++;
        }
        assert_int_equal(more, 0);
        assert_int_equal(c.fired, queued);
        rlog_positions_get(c.l, &p);
        assert_int_equal(p.durable, lsn - 1);
    }
    check_calls(&c, calls, CALLS, sizes);
    check_all(c.l, lsn - 1, 41);
    assert_int_equal(rlog_close(c.l), 0);
    free(calls);
    actx_destroy(&c);
}

/* RLOG_OPEN_PREPARER: the preparer makes the next segment ready with no
 * call into the log, but no thread writes: queued asynchronous appends
 * wait for the owner's rlog_sync, which writes and syncs them, across
 * rotations, and fires each callback once, in LSN order, after
 * durability; a reopen finds everything, clean. */
static void test_async_preparer_sync_driven(void **state)
{
    fx *f = *state;
    actx c;
    actx_init(&c, 0);
    c.l = open_log(f->dir, NULL, SEG, RLOG_SYNC_GROUP, RLOG_OPEN_PREPARER, NULL);
    rlog_metrics m;
    for (int i = 0; i < 10000; i++) { /* bounded: 10 s */
        rlog_metrics_get(c.l, &m);
        if (m.segments_prepared > 0)
            break;
        usleep(1000);
    }
    assert_true(m.segments_prepared > 0); /* the thread did it: no call ran */
    enum { CALLS = 300 };
    unsigned sizes[CALLS];
    uint64_t lsn = 1;
    acall *calls = queue_calls(&c, CALLS, 3, sizes, &lsn);
    usleep(20000); /* an I/O thread would have written by now */
    rlog_positions p;
    rlog_positions_get(c.l, &p);
    pthread_mutex_lock(&c.mu);
    uint64_t fired = c.fired;
    pthread_mutex_unlock(&c.mu);
    assert_int_equal(fired, 0);
    assert_true(p.durable < lsn - 1);
    assert_int_equal(rlog_sync(c.l), 0);
    assert_int_equal(c.fired, CALLS);
    check_calls(&c, calls, CALLS, sizes);
    rlog_metrics_get(c.l, &m);
    assert_true(m.rotations > 0);
    close_durable_reopen(f, c.l, RLOG_SYNC_GROUP, lsn - 1);
    free(calls);
    actx_destroy(&c);
}

/* A failed fdatasync fails every pending asynchronous append with
 * RLOG_EPOISONED (callback once each, in LSN order); later ones are refused
 * at once without a callback. Stepped, and with the thread. */
static void async_poison_case(fx *f, unsigned flags)
{
    rlog_vfs *fv = rlog_vfs_fault_new(rlog_vfs_posix());
    actx c;
    actx_init(&c, RLOG_EPOISONED);
    c.l = open_log(f->dir, fv, SEG, RLOG_SYNC_GROUP, flags, NULL);
    rlog_fault ft = {.op = RLOG_OP_FDATASYNC, .times = 0, .err = EIO, .path_contains = SEG1};
    assert_true(rlog_vfs_fault_add(fv, &ft) > 0);
    enum { CALLS = 10 };
    acall calls[CALLS];
    unsigned sizes[CALLS];
    memset(calls, 0, sizeof calls);
    size_t queued = 0;
    uint64_t lsn = 1;
    for (size_t i = 0; i < CALLS; i++) {
        sizes[queued] = 1;
        int rv = queue_async(&c, &calls[queued], lsn, 1);
        if (rv == RLOG_EPOISONED) /* the thread already failed a sync */
            break;
        assert_int_equal(rv, 0);
        queued++;
        lsn++;
    }
    assert_true(queued > 0);
    if (!(flags & RLOG_OPEN_THREAD))
        assert_int_equal(rlog_step(c.l, NULL), RLOG_EPOISONED);
    wait_fired(&c, queued);
    check_calls(&c, calls, queued, sizes);
    acall late = {0};
    assert_int_equal(queue_async(&c, &late, lsn, 1), RLOG_EPOISONED);
    rlog_close(c.l);
    assert_int_equal(late.fired, 0);
    assert_int_equal(c.fired, queued); /* nothing fired twice, at close either */
    actx_destroy(&c);
    fv->destroy(fv);
}

static void test_async_poisoned_stepped(void **state)
{
    async_poison_case(*state, 0);
}

static void test_async_poisoned_thread(void **state)
{
    async_poison_case(*state, RLOG_OPEN_THREAD);
}

/* rlog_close writes and syncs what is pending (include/rlog/log.h): queued
 * asynchronous appends complete with status 0 before it returns, each
 * once, and a reopen finds them, clean (the close checkpoint). */
static void close_pending_case(fx *f, unsigned flags)
{
    actx c;
    actx_init(&c, 0);
    c.l = open_log(f->dir, NULL, SEG, RLOG_SYNC_GROUP, flags, NULL);
    enum { CALLS = 200 };
    unsigned sizes[CALLS];
    uint64_t lsn = 1;
    acall *calls = queue_calls(&c, CALLS, 2, sizes, &lsn);
    assert_int_equal(rlog_close(c.l), 0);
    assert_int_equal(c.fired, CALLS); /* before close returned */
    c.l = NULL;
    if (c.err[0])
        fail_msg("%s", c.err);
    for (size_t i = 0; i < CALLS; i++)
        assert_int_equal(calls[i].fired, 1);
    rlog_open_report rep;
    rlog_log *l = open_log(f->dir, NULL, SEG, RLOG_SYNC_GROUP, 0, &rep);
    assert_int_equal(rep.status, RLOG_TAIL_CLEAN);
    assert_int_equal(rep.last_lsn, lsn - 1);
    assert_int_equal(rep.proven_durable, lsn - 1);
    check_all(l, lsn - 1, 41);
    assert_int_equal(rlog_close(l), 0);
    free(calls);
    actx_destroy(&c);
}

static void test_close_completes_pending_async(void **state)
{
    close_pending_case(*state, 0);
}

static void test_close_completes_pending_async_thread(void **state)
{
    close_pending_case(*state, RLOG_OPEN_THREAD);
}

/* ---- rlog_sync and the callbacks delivered by the I/O thread ---- */

#define SLOW_CALLS 2000

static void slow_cb(void *data, int status, uint64_t first, uint64_t last)
{
    (void)first;
    (void)last;
    volatile unsigned spin = 0;
    for (unsigned i = 0; i < 2000; i++) /* a callback that takes a while */
        spin += i;
    if (status == 0)
        atomic_fetch_add((atomic_uint *)data, 1);
}

/* With RLOG_OPEN_THREAD the I/O thread delivers callbacks outside the lock,
 * possibly after the durable position already covers everything: rlog_sync
 * still returns only once the callback of every earlier async append ran. */
static void test_sync_waits_for_callbacks(void **state)
{
    fx *f = *state;
    rlog_log *l = open_log(f->dir, NULL, 1 << 20, RLOG_SYNC_GROUP, RLOG_OPEN_THREAD, NULL);
    atomic_uint fired = 0;
    uint8_t b[16] = {0};
    rlog_record r = {.type = T, .len = sizeof b, .data = b};
    for (unsigned i = 0; i < SLOW_CALLS; i++)
        assert_int_equal(rlog_append_async(l, &r, 1, slow_cb, &fired, NULL), 0);
    assert_int_equal(rlog_sync(l), 0);
    assert_int_equal(atomic_load(&fired), SLOW_CALLS);
    assert_int_equal(rlog_close(l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_follow_writer),
        cmocka_unit_test(test_visibility_bound_exact),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_group_commit_thread),
        cmocka_unit_test(test_group_commit_leaver),
        cmocka_unit_test(test_group_commit_pipelined),
        cmocka_unit_test(test_group_commit_failed_sync_wakes_all),
        cmocka_unit_test(test_async_thread_group),
        cmocka_unit_test(test_async_thread_each),
        cmocka_unit_test(test_async_preparer_sync_driven),
        cmocka_unit_test(test_async_step_driven),
        cmocka_unit_test(test_async_poisoned_stepped),
        cmocka_unit_test(test_async_poisoned_thread),
        cmocka_unit_test(test_close_completes_pending_async),
        cmocka_unit_test(test_close_completes_pending_async_thread),
        cmocka_unit_test(test_sync_waits_for_callbacks),
    };
    return TU_RUN("log_concurrency", tests, tu_dir_setup, tu_dir_teardown);
}
