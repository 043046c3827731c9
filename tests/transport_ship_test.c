/* Segment shipping (include/rlog/ship.h, docs/shipping.md): a leader serves
 * a log over a transport, followers keep byte-identical copies.
 *
 * Each test says the property it checks. They run over nng (inproc://, one
 * tcp://127.0.0.1 case) with both sides polled from one thread in bounded
 * loops, or over the simulator's network (deterministic, virtual time,
 * message faults) with the logs on the real file system. "Identical"
 * always means: every segment file the follower holds with a valid header
 * has the same bytes (whole file, size included) as the leader's, every
 * leader segment with a durable header is on the follower, and the
 * follower's directory opens with rlog_open and holds exactly the leader's
 * records (LSN, type, payload). Set SHIP_TEST_LOG=1 to see both sides' logs.
 */
#include "util/testutil.h"
#include "util/tnode.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/format.h"
#include "log/replica.h"
#include "transport/ship_internal.h"
#include "rlog/log.h"
#include "rlog/raft_storage.h"
#include "rlog/ship.h"
#include "rlog/sim.h"
#include "rlog/transport.h"

/* ---- harness -------------------------------------------------------------- */

#define SEG_SIZE   (64u * 1024u)
#define MAX_FOLLOW 4

static void test_logger(void *data, rlog_level level, const char *msg)
{
    (void)level;
    fprintf(stderr, "[%s] %s\n", (const char *)data, msg);
}

static bool logging(void)
{
    const char *v = getenv("SHIP_TEST_LOG");
    return v != NULL && v[0] == '1';
}

/* Where the sides run: nng (inproc or tcp) or the simulated network. */
typedef struct harness {
    bool sim;
    rlog_simnet *net;
    rlog_env *env; /* the clock both sides use (NULL: posix) */
    char addr[128];
    rlog_ship_leader *ld;
    rlog_ship_follower *f[MAX_FOLLOW];
    uint64_t fid[MAX_FOLLOW];
    int nf;
    rlog_ship_leader_options lopts;
    rlog_ship_follower_options fopts;
} harness;

static unsigned addr_counter;
/* Set by the TLS case: certificates "n<id>" from CA "ca" in this directory. */
static const char *tls_dir;

static void h_init(harness *h, const char *kind)
{
    memset(h, 0, sizeof *h);
    const char *force = getenv("SHIP_TEST_NET"); /* "sim": run inproc cases there */
    if (force != NULL && strcmp(force, "sim") == 0 && strcmp(kind, "inproc") == 0) {
        kind = "sim";
    }
    if (strcmp(kind, "sim") == 0) {
        rlog_simnet_config cfg;
        rlog_simnet_config_init(&cfg, 42);
        h->sim = true;
        h->net = rlog_simnet_new(&cfg);
        assert_non_null(h->net);
        h->env = rlog_simnet_env(h->net);
        snprintf(h->addr, sizeof h->addr, "sim://leader");
    } else if (strcmp(kind, "tcp") == 0 || strcmp(kind, "tls") == 0) {
        snprintf(h->addr, sizeof h->addr, "%s://127.0.0.1:%u",
                 strcmp(kind, "tls") == 0 ? "tls+tcp" : "tcp",
                 10000u + (unsigned)(getpid() % 20000) + addr_counter++);
    } else {
        snprintf(h->addr, sizeof h->addr, "inproc://ship-test-%d-%u", (int)getpid(),
                 addr_counter++);
    }
    h->lopts.env = h->env;
    h->fopts.env = h->env;
    if (logging()) {
        h->lopts.logger = test_logger;
        h->lopts.logger_data = "leader";
        h->fopts.logger = test_logger;
        h->fopts.logger_data = "follower";
    }
}

static rlog_transport *h_transport(harness *h)
{
    rlog_transport *t = NULL;
    int rc = h->sim ? rlog_simnet_transport_new(h->net, &t) : rlog_transport_nng_new(&t);
    assert_int_equal(rc, 0);
    return t;
}

static void h_tcfg(rlog_transport_config *cfg, uint64_t id, const char *addr)
{
    rlog_transport_config_init(cfg);
    cfg->server_id = id;
    cfg->address = addr;
    if (tls_dir != NULL) {
        char name[32];
        snprintf(name, sizeof name, "n%" PRIu64, id);
        tnode_tls_cfg(cfg, tls_dir, "ca", name);
    }
    if (logging()) {
        cfg->logger = test_logger;
        cfg->logger_data = "transport";
    }
}

static void h_leader(harness *h, rlog_log *l)
{
    rlog_transport_config cfg;
    h_tcfg(&cfg, 1, h->addr);
    int rc = rlog_ship_leader_new(l, h_transport(h), &cfg, &h->lopts, &h->ld);
    if (rc != 0) {
        fail_msg("leader: %s", rlog_strerror(rc));
    }
}

/* A follower of dir with server id 100 + slot. */
static void h_follower(harness *h, int slot, const char *dir)
{
    rlog_transport_config cfg;
    h_tcfg(&cfg, 100 + (uint64_t)slot, "");
    int rc = rlog_ship_follower_new(dir, h_transport(h), &cfg, h->addr, &h->fopts, &h->f[slot]);
    if (rc != 0) {
        fail_msg("follower %s: %s", dir, rlog_strerror(rc));
    }
    h->fid[slot] = 100 + (uint64_t)slot;
    if (slot >= h->nf) {
        h->nf = slot + 1;
    }
}

static void h_follower_free(harness *h, int slot)
{
    rlog_ship_follower_free(h->f[slot]);
    h->f[slot] = NULL;
}

static void h_leader_free(harness *h)
{
    rlog_ship_leader_free(h->ld);
    h->ld = NULL;
}

/* One round: every side polls once; the simulated network moves on. */
static void h_pump(harness *h)
{
    int wait = h->sim ? 0 : 1;
    if (h->ld != NULL) {
        assert_int_equal(rlog_ship_leader_poll(h->ld, wait), 0);
    }
    for (int i = 0; i < h->nf; i++) {
        if (h->f[i] != NULL) {
            rlog_ship_follower_poll(h->f[i], wait);
        }
    }
    if (h->sim && rlog_simnet_step(h->net) == 0) {
        rlog_simnet_advance(h->net, 1000000);
    }
}

static void h_done(harness *h)
{
    for (int i = 0; i < h->nf; i++) {
        if (h->f[i] != NULL) {
            h_follower_free(h, i);
        }
    }
    if (h->ld != NULL) {
        h_leader_free(h);
    }
    if (h->net != NULL) {
        rlog_simnet_free(h->net);
    }
}

/* The end of a test: frees both sides (h_done), closes the leader's log
 * (l may be NULL) and removes and frees the directories (either may be
 * NULL). */
static void h_teardown(harness *h, rlog_log *l, char *ldir, char *fdir)
{
    h_done(h);
    if (l != NULL) {
        assert_int_equal(rlog_close(l), 0);
    }
    char *dirs[2] = {ldir, fdir};
    for (int i = 0; i < 2; i++) {
        if (dirs[i] != NULL) {
            tu_rmdir_r(dirs[i]);
            free(dirs[i]);
        }
    }
}

static rlog_ship_follower_info *h_info(harness *h, uint64_t id, rlog_ship_follower_info *buf,
                                       size_t cap)
{
    size_t n = 0;
    rlog_ship_leader_followers(h->ld, buf, cap, &n);
    for (size_t i = 0; i < n && i < cap; i++) {
        if (buf[i].id == id && buf[i].connected) {
            return &buf[i];
        }
    }
    return NULL;
}

/* Follower `slot` holds everything durable on the leader (to the byte) and
 * both sides say so. */
static bool h_caught_up(harness *h, rlog_log *l, int slot)
{
    rlog_positions p;
    rlog_positions_get(l, &p);
    rlog_ship_follower_info buf[16];
    rlog_ship_follower_info *fi = h_info(h, h->fid[slot], buf, 16);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h->f[slot], &st);
    return fi != NULL && fi->lag_bytes == 0 && fi->durable == p.durable &&
           fi->state == RLOG_SHIP_TAILING && st.state == RLOG_SHIP_TAILING &&
           st.durable == p.durable;
}

static bool h_all_caught_up(harness *h, rlog_log *l)
{
    for (int i = 0; i < h->nf; i++) {
        if (h->f[i] != NULL && !h_caught_up(h, l, i)) {
            return false;
        }
    }
    return true;
}

/* Rounds before a wait fails: virtual time is cheap; over nng a round
 * costs up to a few milliseconds of polling, so its bound keeps a stuck
 * case well under a minute. */
#define MAX_ROUNDS     200000
#define MAX_ROUNDS_NNG 12000

static int h_rounds(const harness *h)
{
    return h->sim ? MAX_ROUNDS : MAX_ROUNDS_NNG;
}

/* Pumps until every follower caught up; fails after MAX_ROUNDS rounds. */
static void h_sync(harness *h, rlog_log *l)
{
    for (int i = 0; i < h_rounds(h); i++) {
        h_pump(h);
        if (h_all_caught_up(h, l)) {
            /* One more round so that no ACK is left in flight. */
            h_pump(h);
            return;
        }
    }
    for (int i = 0; i < h->nf; i++) {
        if (h->f[i] != NULL) {
            rlog_ship_follower_status st;
            rlog_ship_follower_status_get(h->f[i], &st);
            print_message("follower %d: %s durable %" PRIu64 " leader %" PRIu64 ": %s\n", i,
                          rlog_ship_state_name(st.state), st.durable, st.leader_durable,
                          st.message);
        }
    }
    fail_msg("followers did not catch up in %d rounds (leader: %s)", h_rounds(h),
             rlog_ship_leader_errmsg(h->ld));
}

/* Pumps until follower `slot` reaches `state`. */
static void h_until_state(harness *h, int slot, int state)
{
    rlog_ship_follower_status st;
    for (int i = 0; i < h_rounds(h); i++) {
        h_pump(h);
        rlog_ship_follower_status_get(h->f[slot], &st);
        if (st.state == state) {
            return;
        }
    }
    fail_msg("follower %d never became %s (is %s: %s)", slot, rlog_ship_state_name(state),
             rlog_ship_state_name(st.state), st.message);
}

/* ---- logs ------------------------------------------------------------------ */

static rlog_log *open_log(const char *dir, unsigned flags)
{
    return tu_open_log(dir, NULL, SEG_SIZE, RLOG_SYNC_EACH, flags, NULL);
}

static rlog_log *open_log_size(const char *dir, uint64_t size, unsigned flags)
{
    return tu_open_log(dir, NULL, size, RLOG_SYNC_EACH, flags, NULL);
}

/* Appends n records with payloads of 0..max_len bytes from (seed, lsn);
 * every 7th call appends a batch of 3. Returns the last LSN. */
static uint64_t append_n(rlog_log *l, uint64_t seed, int n, size_t max_len)
{
    static uint8_t buf[3][40000];
    uint64_t lsn = 0;
    for (int i = 0; i < n;) {
        rlog_positions p;
        rlog_positions_get(l, &p);
        int batch = (i % 7 == 6 && n - i >= 3) ? 3 : 1;
        rlog_record r[3];
        for (int k = 0; k < batch; k++) {
            uint64_t at = p.appended + 1 + (uint64_t)k;
            size_t len = (size_t)((at * 2654435761u + seed) % (max_len + 1));
            assert_true(len <= sizeof buf[k]);
            tu_fill(seed, at, buf[k], len);
            r[k] =
                (rlog_record){0, (uint16_t)(RLOG_TYPE_USER_MIN + at % 5), 0, (uint32_t)len, buf[k]};
        }
        int rc = rlog_append(l, r, (size_t)batch, &lsn);
        if (rc != 0) {
            fail_msg("append: %s", rlog_errmsg(l));
        }
        lsn += (uint64_t)batch - 1;
        i += batch;
    }
    return lsn;
}

/* The bytes of the leader's durable view (sum of segment extents). */
static uint64_t view_bytes(rlog_log *l)
{
    rlg_ship_seg *v = NULL;
    size_t n = 0;
    assert_int_equal(rlg_ship_view(l, &v, &n, NULL), 0);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i].end - RLG_SEG_HEADER_SIZE;
    }
    free(v);
    return sum;
}

static bool header_is_zero(const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len && i < RLG_SEG_HEADER_SIZE; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* One past the last record (a seal included) of a segment file with a
 * valid header: the salted CRC stops at stale bytes of a recycled file. */
static size_t records_end(const uint8_t *d, size_t len)
{
    rlg_seg_header h;
    if (len < RLG_SEG_HEADER_SIZE || rlg_seg_header_decode(d, &h) != RLG_HDR_OK) {
        return 0;
    }
    uint32_t salt = rlg_salt_state(h.log_id, h.seq);
    size_t o = RLG_SEG_HEADER_SIZE;
    while (o + RLG_REC_HEADER_SIZE <= len) {
        rlg_rec_header rh;
        rlg_rec_header_decode(d + o, &rh);
        if (rh.type == 0 || rh.len > len - o - RLG_REC_HEADER_SIZE ||
            !rlg_rec_crc_ok(d + o, salt, rh.len)) {
            break;
        }
        o += RLG_REC_HEADER_SIZE + rh.len;
        if (rh.type == RLG_TYPE_SEAL) {
            break;
        }
    }
    return o;
}

/* Every follower segment with a header equals the leader's file (same
 * size, same header but for its flags, same records: past them a leader's
 * recycled file holds stale bytes); every leader segment with a header is
 * on the follower. */
static void assert_segments_identical(const char *ldir, const char *fdir)
{
    char **ln = NULL, **fn = NULL;
    size_t nl = tu_list_segments(ldir, &ln), nf = tu_list_segments(fdir, &fn);
    size_t have = 0;
    for (size_t i = 0; i < nf; i++) {
        void *fb, *lb = NULL;
        size_t flen, llen = 0;
        tu_read_file(tu_path(fdir, fn[i]), &fb, &flen);
        if (header_is_zero(fb, flen)) {
            free(fb);
            continue; /* a spare */
        }
        bool found = false;
        for (size_t k = 0; k < nl && !found; k++) {
            found = strcmp(ln[k], fn[i]) == 0;
        }
        if (!found) {
            fail_msg("follower segment %s is not on the leader", fn[i]);
        }
        tu_read_file(tu_path(ldir, fn[i]), &lb, &llen);
        size_t end = records_end(fb, flen);
        size_t at = flen == llen ? rlg_seg_diff(fb, lb, end) : 0;
        if (flen != llen || at != end) {
            fail_msg("segment %s differs: follower %zu bytes, leader %zu, first difference at %zu",
                     fn[i], flen, llen, at);
        }
        have++;
        free(fb);
        free(lb);
    }
    size_t want = 0;
    for (size_t k = 0; k < nl; k++) {
        void *lb;
        size_t llen;
        tu_read_file(tu_path(ldir, ln[k]), &lb, &llen);
        want += !header_is_zero(lb, llen);
        free(lb);
    }
    if (have != want) {
        fail_msg("the follower has %zu segments, the leader %zu", have, want);
    }
    tu_free_names(ln, nl);
    tu_free_names(fn, nf);
}

/* The follower directory opens as a log holding exactly the leader's
 * durable records. The follower must be freed (it holds the lock). */
static void assert_records_identical(rlog_log *l, const char *fdir)
{
    rlog_log *f = open_log(fdir, RLOG_OPEN_READONLY);
    rlog_positions lp, fp;
    rlog_positions_get(l, &lp);
    rlog_positions_get(f, &fp);
    assert_int_equal(fp.first, lp.first);
    assert_int_equal(fp.durable, lp.durable);
    rlog_iter *a, *b;
    assert_int_equal(rlog_iter_open(l, 0, RLOG_READ_DURABLE, &a), 0);
    assert_int_equal(rlog_iter_open(f, 0, 0, &b), 0);
    uint64_t n = 0;
    for (;;) {
        rlog_record x, y;
        int ra = rlog_iter_next(a, &x), rb = rlog_iter_next(b, &y);
        assert_int_equal(ra, rb);
        if (ra != 0) {
            assert_int_equal(ra, RLOG_EEND);
            break;
        }
        assert_int_equal(x.lsn, y.lsn);
        assert_int_equal(x.type, y.type);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.data, y.data, x.len);
        n++;
    }
    assert_true(n > 0);
    rlog_iter_close(a);
    rlog_iter_close(b);
    assert_int_equal(rlog_close(f), 0);
}

static void assert_identical(harness *h, int slot, rlog_log *l, const char *ldir, const char *fdir)
{
    h_follower_free(h, slot);
    assert_segments_identical(ldir, fdir);
    assert_records_identical(l, fdir);
}

static size_t count_segments(const char *dir)
{
    char **n = NULL;
    size_t k = tu_list_segments(dir, &n);
    tu_free_names(n, k);
    return k;
}

/* ---- tests ------------------------------------------------------------------ */

/* A writer thread appending with notify, as a real leader process does. */
typedef struct writer_arg {
    rlog_log *l;
    rlog_ship_leader *ld;
    int n;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *w = p;
    for (int i = 0; i < w->n; i++) {
        append_n(w->l, 7, 1, 3000);
        rlog_ship_leader_notify(w->ld);
    }
    return NULL;
}

/* Property: a fresh follower catches up a multi-segment log (sealed
 * segments shipped whole), then tails appends made by another thread while
 * it ships (notify from that thread); at the end every segment is
 * byte-identical and the follower's directory holds exactly the leader's
 * records. */
static void catch_up_and_tail(const char *kind)
{
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, kind);
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 400, 2000); /* ~400 KiB: several 64 KiB segments */
    assert_true(count_segments(ldir) >= 5);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.bytes_received, view_bytes(l));
    assert_int_equal(st.truncations + st.resets, 0);

    if (h.sim) {
        append_n(l, 2, 200, 3000); /* simulated network: one thread */
        rlog_ship_leader_notify(h.ld);
    } else {
        pthread_t th;
        writer_arg w = {l, h.ld, 200};
        assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
        for (int i = 0; i < 100; i++) {
            h_pump(&h);
        }
        assert_int_equal(pthread_join(th, NULL), 0);
    }
    h_sync(&h, l);
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.bytes_received, view_bytes(l));
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

static void test_catch_up_and_tail_inproc(void **state)
{
    (void)state;
    catch_up_and_tail("inproc");
}

/* Property: the same over tcp on 127.0.0.1. */
static void test_catch_up_and_tail_tcp(void **state)
{
    (void)state;
    catch_up_and_tail("tcp");
}

/* Property (issue 15, item 6): the same over tls+tcp:// with mutual
 * authentication, certificates from a CA made now with `openssl`: the
 * follower's segments are byte-identical to the leader's. */
static void test_catch_up_and_tail_tls(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ship-tls");
    tnode_tls_ca(dir, "ca");
    tnode_tls_cert(dir, "ca", "n1", "rlog-1");
    tnode_tls_cert(dir, "ca", "n100", "rlog-100");
    tls_dir = dir;
    catch_up_and_tail("tls");
    tls_dir = NULL;
    tu_rmdir_r(dir);
    free(dir);
}

/* Property: the same over the simulated network (no faults). */
static void test_catch_up_and_tail_sim(void **state)
{
    (void)state;
    catch_up_and_tail("sim");
}

/* Property: a follower restarted (freed and made again on its directory)
 * resumes where it stood: it receives no byte it already has, then exactly
 * the bytes appended since. */
static void test_follower_restart_resumes(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "inproc");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 300, 2000);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    h_follower_free(&h, 0);

    h_follower(&h, 0, fdir); /* restart with nothing new */
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.bytes_received, 0);
    h_follower_free(&h, 0);

    uint64_t before = view_bytes(l);
    append_n(l, 3, 150, 2000); /* crosses segment boundaries */
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.bytes_received, view_bytes(l) - before);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* Property: a follower stopped in the middle of the stream (while it was
 * receiving, after some bytes and before all) resumes from what it made
 * durable and ends identical. */
static void test_disconnect_mid_stream(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "inproc");
    h.lopts.chunk_bytes = 8192;
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 600, 2000);
    uint64_t total = view_bytes(l);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    rlog_ship_follower_status st;
    for (int i = 0; i < h_rounds(&h); i++) {
        h_pump(&h);
        rlog_ship_follower_status_get(h.f[0], &st);
        if (st.bytes_received > 0) {
            break;
        }
    }
    assert_true(st.bytes_received > 0 && st.bytes_received < total);
    uint64_t got = st.bytes_received;
    h_follower_free(&h, 0);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status_get(h.f[0], &st);
    /* Nothing durable was sent twice: the two sessions add up to the log
     * (at most the segment being received whole when it stopped again). */
    assert_true(got + st.bytes_received >= total);
    assert_true(got + st.bytes_received <= total + SEG_SIZE);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* Property: three followers at once (one starting late) all end
 * identical; the leader lists each with its state and no lag. */
static void test_three_followers(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader");
    char *fdir[3];
    harness h;
    h_init(&h, "inproc");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 300, 2000);
    h_leader(&h, l);
    for (int i = 0; i < 3; i++) {
        fdir[i] = tu_mkdtemp("ship-follower");
    }
    h_follower(&h, 0, fdir[0]);
    h_follower(&h, 1, fdir[1]);
    for (int i = 0; i < 20; i++) {
        h_pump(&h);
    }
    h_follower(&h, 2, fdir[2]);
    append_n(l, 2, 100, 2000);
    h_sync(&h, l);
    rlog_ship_follower_info info[8];
    size_t n = 0;
    rlog_ship_leader_followers(h.ld, info, 8, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(info[i].connected);
        assert_int_equal(info[i].state, RLOG_SHIP_TAILING);
        assert_int_equal(info[i].lag_records, 0);
        assert_int_equal(info[i].lag_bytes, 0);
    }
    for (int i = 0; i < 3; i++) {
        assert_identical(&h, i, l, ldir, fdir[i]);
        tu_rmdir_r(fdir[i]);
        free(fdir[i]);
    }
    h_teardown(&h, l, ldir, NULL);
}

/* ---- a transport wrapper that watches the leader's traffic ---------------- */

typedef struct watch {
    size_t window;
    uint64_t data_msgs;
    uint64_t max_unacked;
    uint64_t acks;
    /* DATA sent and not yet covered by an ACK: (seq, off, len) */
    uint64_t (*sent)[3];
    size_t nsent, cap;
    rlg_ship_pos acked;
} watch;

typedef struct wrap {
    rlog_transport pub;
    rlog_transport *in;
    rlog_transport_events ev;
    watch *w;
} wrap;

static uint64_t watch_unacked(const watch *w)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < w->nsent; i++) {
        rlg_ship_pos end = {w->sent[i][0], w->sent[i][1] + w->sent[i][2]};
        if (rlg_ship_pos_cmp(end, w->acked) > 0) {
            sum += w->sent[i][2];
        }
    }
    return sum;
}

static void wrap_recv(void *data, uint64_t peer, const rlog_msg *m)
{
    wrap *x = data;
    if (m->type == RLOG_MSG_SHIP_ACK) {
        rlg_ship_pos r = {m->u.ship_ack.recv_seq, m->u.ship_ack.recv_off};
        if (rlg_ship_pos_cmp(r, x->w->acked) > 0) {
            x->w->acked = r;
        }
        x->w->acks++;
    }
    x->ev.recv(x->ev.data, peer, m);
}

static void wrap_up(void *data, uint64_t peer, const rlog_msg_hello *hello)
{
    wrap *x = data;
    x->ev.peer_up(x->ev.data, peer, hello);
}

static void wrap_down(void *data, uint64_t peer, int reason)
{
    wrap *x = data;
    x->ev.peer_down(x->ev.data, peer, reason);
}

static int wrap_init(rlog_transport *t, const rlog_transport_config *cfg,
                     const rlog_transport_events *ev)
{
    wrap *x = (wrap *)t;
    x->ev = *ev;
    rlog_transport_events mine = {x, wrap_up, wrap_down, wrap_recv};
    return x->in->init(x->in, cfg, &mine);
}

static int wrap_listen(rlog_transport *t)
{
    wrap *x = (wrap *)t;
    return x->in->listen(x->in);
}

static int wrap_connect(rlog_transport *t, uint64_t id, const char *addr)
{
    wrap *x = (wrap *)t;
    return x->in->connect(x->in, id, addr);
}

static int wrap_disconnect(rlog_transport *t, uint64_t id)
{
    wrap *x = (wrap *)t;
    return x->in->disconnect(x->in, id);
}

static int wrap_send(rlog_transport *t, uint64_t id, const rlog_msg *m, rlog_transport_send_cb cb,
                     void *data)
{
    wrap *x = (wrap *)t;
    int rc = x->in->send(x->in, id, m, cb, data);
    if (rc == 0 && m->type == RLOG_MSG_SHIP_DATA && m->u.ship_data.len > 0) {
        watch *w = x->w;
        if (w->nsent == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 256;
            w->sent = realloc(w->sent, w->cap * sizeof *w->sent);
            assert_non_null(w->sent);
        }
        w->sent[w->nsent][0] = m->u.ship_data.seq;
        w->sent[w->nsent][1] = m->u.ship_data.off;
        w->sent[w->nsent][2] = m->u.ship_data.len;
        w->nsent++;
        w->data_msgs++;
        uint64_t un = watch_unacked(w);
        if (un > w->max_unacked) {
            w->max_unacked = un;
        }
    }
    snprintf(t->errmsg, sizeof t->errmsg, "%s", x->in->errmsg);
    return rc;
}

static int wrap_poll(rlog_transport *t, int timeout_ms)
{
    wrap *x = (wrap *)t;
    return x->in->poll(x->in, timeout_ms);
}

static int wrap_post(rlog_transport *t, void (*fn)(void *), void *arg)
{
    wrap *x = (wrap *)t;
    return x->in->post(x->in, fn, arg);
}

static void wrap_close(rlog_transport *t)
{
    wrap *x = (wrap *)t;
    x->in->close(x->in);
    free(x);
}

static rlog_transport *wrap_new(rlog_transport *in, watch *w)
{
    wrap *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->in = in;
    x->w = w;
    x->pub.version = 1;
    x->pub.init = wrap_init;
    x->pub.listen = wrap_listen;
    x->pub.connect = wrap_connect;
    x->pub.disconnect = wrap_disconnect;
    x->pub.send = wrap_send;
    x->pub.poll = wrap_poll;
    x->pub.post = wrap_post;
    x->pub.close = wrap_close;
    return &x->pub;
}

/* Property: the leader never has more than window_bytes of data sent and
 * not acknowledged (as received) to a follower — counted on the wire by a
 * wrapper around its transport — while the follower catches up a log far
 * larger than the window, and nothing is resent on a loss-free link. */
static void test_window_bound(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "inproc");
    watch w = {.window = 24 * 1024};
    h.lopts.window_bytes = w.window;
    h.lopts.chunk_bytes = 4096;
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 500, 2000);
    rlog_transport_config cfg;
    h_tcfg(&cfg, 1, h.addr);
    assert_int_equal(rlog_ship_leader_new(l, wrap_new(h_transport(&h), &w), &cfg, &h.lopts, &h.ld),
                     0);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    print_message("%" PRIu64 " data messages, %" PRIu64 " acks, at most %" PRIu64
                  " bytes unacknowledged (window %zu)\n",
                  w.data_msgs, w.acks, w.max_unacked, w.window);
    assert_true(w.data_msgs > 50);
    assert_true(w.max_unacked <= w.window);
    assert_true(w.max_unacked > w.window / 2); /* the window was used */
    rlog_ship_follower_info info[4];
    rlog_ship_follower_info *fi = h_info(&h, 100, info, 4);
    assert_non_null(fi);
    assert_int_equal(fi->resends, 0);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
    free(w.sent);
}

/* Property: a leader restart (leader freed, log closed and reopened, a new
 * leader on the same address) does not disturb its followers: they
 * reconnect on their own, receive only the bytes written since (the close
 * checkpoint and new records), and end identical. */
static void test_leader_restart(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader");
    char *fdir[2] = {tu_mkdtemp("ship-follower"), tu_mkdtemp("ship-follower")};
    harness h;
    h_init(&h, "inproc");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 200, 2000);
    h_leader(&h, l);
    h_follower(&h, 0, fdir[0]);
    h_follower(&h, 1, fdir[1]);
    h_sync(&h, l);
    rlog_ship_follower_status st[2];
    rlog_ship_follower_status_get(h.f[0], &st[0]);
    rlog_ship_follower_status_get(h.f[1], &st[1]);
    uint64_t before = view_bytes(l);

    h_leader_free(&h);
    assert_int_equal(rlog_close(l), 0);
    for (int i = 0; i < 20; i++) {
        h_pump(&h); /* followers notice and redial in vain */
    }
    l = open_log(ldir, 0);
    append_n(l, 2, 120, 2000);
    h_leader(&h, l);
    h_sync(&h, l);
    for (int i = 0; i < 2; i++) {
        rlog_ship_follower_status now;
        rlog_ship_follower_status_get(h.f[i], &now);
        assert_true(now.reconnects >= 1);
        assert_int_equal(now.bytes_received - st[i].bytes_received, view_bytes(l) - before);
        assert_int_equal(now.truncations + now.resets, 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_identical(&h, i, l, ldir, fdir[i]);
        tu_rmdir_r(fdir[i]);
        free(fdir[i]);
    }
    h_teardown(&h, l, ldir, NULL);
}

static void copy_dir(const char *from, const char *to)
{
    char **n = NULL;
    size_t k = tu_list_segments(from, &n);
    for (size_t i = 0; i < k; i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s", tu_path(from, n[i]));
        tu_copy_file(src, tu_path(to, n[i]));
    }
    tu_free_names(n, k);
}

/* Property: a follower that diverged from the leader (same log id and a
 * common prefix, then other records — more of them than the leader has,
 * spanning more segments) is told where to truncate, repeatedly if needed,
 * and ends byte-identical to the leader with exactly its records. */
static void test_diverged_follower(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 150, 2000);
    assert_int_equal(rlog_close(l), 0);
    copy_dir(ldir, fdir);
    rlog_log *fl = open_log(fdir, 0);
    append_n(fl, 99, 250, 2000); /* the follower's own records */
    assert_int_equal(rlog_close(fl), 0);
    l = open_log(ldir, 0);
    append_n(l, 2, 60, 2000);
    assert_true(count_segments(fdir) > count_segments(ldir));

    harness h;
    h_init(&h, "inproc");
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    print_message("truncations %" PRIu64 ", sessions %" PRIu64 ": %s\n", st.truncations,
                  st.sessions, st.message);
    assert_true(st.truncations >= 1);
    assert_int_equal(st.resets, 0);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* Property: a follower whose position lies before the leader's retained
 * prefix (the leader deleted the segments after it) starts over from the
 * leader's first segment: its old segments are gone and it ends identical.
 */
static void test_behind_prefix(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "inproc");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 150, 2000);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    h_follower_free(&h, 0);

    uint64_t last = append_n(l, 2, 400, 2000);
    uint64_t deleted = 0;
    assert_int_equal(rlog_delete_prefix(l, last - 50, &deleted), 0);
    assert_true(deleted >= 3);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.resets, 1);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* Property: a follower of another log (different log id) is refused with a
 * message naming both ids, and its directory is left untouched. */
static void test_other_log_refused(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 50, 2000);
    rlog_log *other = open_log(fdir, RLOG_OPEN_CREATE);
    append_n(other, 2, 80, 2000);
    rlog_open_report rep;
    assert_int_equal(rlog_close(other), 0);
    other = tu_open_log(fdir, NULL, SEG_SIZE, RLOG_SYNC_EACH, RLOG_OPEN_READONLY, &rep);
    uint64_t other_id = rep.log_id;
    assert_int_equal(rlog_close(other), 0);
    tu_snap before;
    tu_snap_take(fdir, &before);

    harness h;
    h_init(&h, "inproc");
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_until_state(&h, 0, RLOG_SHIP_REFUSED);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    char id[32];
    snprintf(id, sizeof id, "%016" PRIx64, other_id);
    print_message("%s\n", st.message);
    assert_non_null(strstr(st.message, id));
    assert_non_null(strstr(st.message, "refus"));
    assert_int_equal(st.error, RLOG_EFOREIGN);
    for (int i = 0; i < 50; i++) {
        h_pump(&h); /* it stays refused and quiet */
    }
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.state, RLOG_SHIP_REFUSED);
    assert_int_equal(st.bytes_received, 0);
    rlog_ship_follower_info info[4];
    size_t n = 0;
    rlog_ship_leader_followers(h.ld, info, 4, &n);
    assert_int_equal(n, 1);
    assert_int_equal(info[0].state, RLOG_SHIP_REFUSED);
    h_follower_free(&h, 0);
    tu_snap_assert_same(fdir, &before);
    tu_snap_free(&before);
    h_teardown(&h, l, ldir, fdir);
}

/* Property: when the leader's segment size changes (the log reopened with
 * a smaller size), the follower's new segments take the new size: every
 * copy stays byte-identical, file size included. (A larger size makes the
 * log grow its active segment's file; the replica extends its copy the
 * same way: tests/log_replica_test.c covers that case.) */
static void test_segment_size_change(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "inproc");
    rlog_log *l = open_log_size(ldir, 2 * SEG_SIZE, RLOG_OPEN_CREATE);
    append_n(l, 1, 150, 2000);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    h_leader_free(&h);
    assert_int_equal(rlog_close(l), 0);
    l = open_log(ldir, 0);
    append_n(l, 2, 200, 2000); /* new segments of 64 KiB */
    h_leader(&h, l);
    h_sync(&h, l);
    h_follower_free(&h, 0);
    char **names = NULL;
    size_t n = tu_list_segments(fdir, &names);
    bool small = false, big = false;
    for (size_t i = 0; i < n; i++) {
        long size = tu_file_size(tu_path(fdir, names[i]));
        small |= size == SEG_SIZE;
        big |= size == 2 * SEG_SIZE;
    }
    tu_free_names(names, n);
    assert_true(small && big);
    assert_segments_identical(ldir, fdir);
    assert_records_identical(l, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* Property: a follower cannot take a directory another writer holds: it
 * fails with RLOG_EBUSY, releases the transport it was given, and changes
 * nothing. */
static void test_follower_dir_locked(void **state)
{
    (void)state;
    char *fdir = tu_mkdtemp("ship-follower");
    rlog_log *l = open_log(fdir, RLOG_OPEN_CREATE);
    append_n(l, 1, 10, 100);
    tu_snap before;
    tu_snap_take(fdir, &before);
    harness h;
    h_init(&h, "inproc");
    rlog_transport_config cfg;
    h_tcfg(&cfg, 100, "");
    rlog_ship_follower *f = NULL;
    int rc = rlog_ship_follower_new(fdir, h_transport(&h), &cfg, h.addr, &h.fopts, &f);
    assert_int_equal(rc, RLOG_EBUSY);
    assert_null(f);
    tu_snap_assert_same(fdir, &before);
    tu_snap_free(&before);
    h_teardown(&h, l, NULL, fdir);
}

/* ---- Raft storage ----------------------------------------------------------- */

static rlog_rs *rs_open(const char *dir, unsigned flags)
{
    return tu_rs_open(dir, SEG_SIZE, flags, RLOG_SYNC_EACH);
}

static void rs_append(rlog_rs *rs, uint64_t from, int n, uint64_t term)
{
    static uint8_t buf[1500];
    for (int i = 0; i < n; i++) {
        uint64_t idx = from + (uint64_t)i;
        size_t len = (size_t)(idx * 7919u % sizeof buf);
        tu_fill(5, idx, buf, len);
        rlog_rs_entry e = {term, 1, (uint32_t)len, buf, NULL};
        assert_int_equal(rlog_rs_append(rs, idx, &e, 1), 0);
    }
}

static void rs_snapshot(rlog_rs *rs, uint64_t index, uint64_t term, size_t size)
{
    uint8_t *data = malloc(size);
    assert_non_null(data);
    tu_fill(index, term, data, size);
    rlog_rs_buf b = {data, size};
    rlog_rs_snapshot_desc d = {index, term, index, "conf", 4, &b, 1, 10};
    int rc = rlog_rs_snapshot_put(rs, &d);
    if (rc != 0) {
        fail_msg("snapshot_put: %s", rlog_rs_errmsg(rs));
    }
    free(data);
}

/* The follower's store holds the same Raft state as the leader's. */
static void assert_rs_same(rlog_rs *a, const char *fdir)
{
    rlog_rs *b = rs_open(fdir, RLOG_OPEN_READONLY);
    rlog_rs_stats x, y;
    rlog_rs_stats_get(a, &x);
    rlog_rs_stats_get(b, &y);
    assert_int_equal(x.hs.term, y.hs.term);
    assert_int_equal(x.hs.vote, y.hs.vote);
    assert_int_equal(x.hs.commit, y.hs.commit);
    assert_int_equal(x.first_index, y.first_index);
    assert_int_equal(x.last_index, y.last_index);
    assert_int_equal(x.has_snapshot, y.has_snapshot);
    assert_int_equal(x.snap_index, y.snap_index);
    assert_int_equal(x.snap_crc, y.snap_crc);
    assert_string_equal(x.snap_file, y.snap_file);
    rlog_rs_snapshot sa, sb;
    assert_int_equal(rlog_rs_snapshot_get(a, &sa), 0);
    assert_int_equal(rlog_rs_snapshot_get(b, &sb), 0); /* the file is there, intact */
    assert_int_equal(sa.size, sb.size);
    assert_memory_equal(sa.data, sb.data, sa.size);
    rlog_rs_snapshot_release(&sa);
    rlog_rs_snapshot_release(&sb);
    tu_rs_expect_same_entries(a, x.first_index, x.last_index, b, y.first_index, y.last_index);
    assert_int_equal(rlog_rs_close(b), 0);
}

/* The .snap files of a directory, sorted, joined by spaces. */
static void snap_files(const char *dir, char *out, size_t cap)
{
    rlog_vfs *vfs = rlog_vfs_posix();
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(vfs->list(vfs, dir, &names, &n), 0);
    out[0] = '\0';
    for (int pass = 0; pass < 2; pass++) { /* crude sort: two passes suffice for <= 2 files */
        for (size_t i = 0; i + 1 < n; i++) {
            if (strcmp(names[i], names[i + 1]) > 0) {
                char *t = names[i];
                names[i] = names[i + 1];
                names[i + 1] = t;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > 5 && strcmp(names[i] + len - 5, ".snap") == 0) {
            snprintf(out + strlen(out), cap - strlen(out), "%s ", names[i]);
        }
    }
    rlog_vfs_free_names(names, n);
}

/* Property: a Raft storage directory ships whole: a follower that starts
 * after the leader stored a snapshot and compacted its log receives the
 * snapshot file before the records that refer to it, and its directory
 * opens with rlog_rs_open to the same hard state, entries and snapshot; a
 * snapshot taken while it tails arrives too, and the snapshot file the
 * leader dropped is dropped on the follower once it no longer needs it. */
static void test_raft_storage(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    rlog_rs *rs = rs_open(ldir, RLOG_OPEN_CREATE);
    rlog_rs_hard_state hs = {3, 1, 0};
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), 0);
    rs_append(rs, 1, 300, 3);
    rs_snapshot(rs, 250, 3, 20000);
    rs_append(rs, 301, 50, 3);
    rlog_log *l = rlog_rs_log(rs);
    rlog_positions p;
    rlog_positions_get(l, &p);
    assert_true(p.first > 1); /* compacted: the oldest segments are gone */

    harness h;
    h_init(&h, "inproc");
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.files_received, 1);

    /* A second and a third snapshot while it tails: the leader keeps two
     * files, the follower follows. */
    hs.commit = 320;
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), 0);
    rs_snapshot(rs, 320, 3, 30000);
    rs_append(rs, 351, 100, 4);
    rs_snapshot(rs, 400, 4, 10000);
    rs_append(rs, 451, 20, 4);
    h_sync(&h, l);
    for (int i = 0; i < 5; i++) {
        h_pump(&h); /* let it prune */
    }
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.files_received, 3);
    char lf[512], ff[512];
    snap_files(ldir, lf, sizeof lf);
    snap_files(fdir, ff, sizeof ff);
    print_message("leader: %s\nfollower: %s\n", lf, ff);
    assert_string_equal(lf, ff);
    h_follower_free(&h, 0);
    assert_segments_identical(ldir, fdir);
    assert_rs_same(rs, fdir);
    h_done(&h);
    assert_int_equal(rlog_rs_close(rs), 0);
    tu_rmdir_r(ldir);
    tu_rmdir_r(fdir);
    free(ldir);
    free(fdir);
}

/* Property: a side file the leader listed and then lost (removed with no
 * record written since, so its durable view did not change) does not stall
 * a follower that asks for it: the leader lists its files again and sends
 * the new list, and the follower catches up without the file. */
static void test_side_file_removed(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "sim");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 50, 2000);
    char snap[4096];
    snprintf(snap, sizeof snap, "%s", tu_path(ldir, "old.snap"));
    tu_write_file(snap, "a snapshot", 10);
    h_leader(&h, l); /* lists old.snap */
    assert_int_equal(remove(snap), 0);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.files_received, 0);
    assert_int_equal(tu_file_size(tu_path(fdir, "old.snap")), -1);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* ---- faults and hostile peers ------------------------------------------------ */

/* Property: over a network that drops, duplicates, reorders, delays and
 * resets (the simulator's, deterministic), a follower still ends
 * identical: stale and out-of-order messages are refused by nonce and
 * position, gaps are resent. */
static void test_lossy_network(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "sim");
    h.lopts.chunk_bytes = 4096;
    h.lopts.window_bytes = 32768;
    rlog_simnet_rates r = {50000, 50000, 50000, 20000, 2000, 5000000};
    rlog_simnet_set_rates(h.net, &r);
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 300, 2000);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    for (int i = 0; i < 3000; i++) {
        h_pump(&h);
        if (i % 100 == 0) {
            append_n(l, 2, 10, 2000);
        }
    }
    rlog_simnet_faults(h.net, 0);
    h_sync(&h, l);
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    print_message("dropped %" PRIu64 " duplicated %" PRIu64 " reordered %" PRIu64 " resets %" PRIu64
                  "; follower rejected %" PRIu64 ", sessions %" PRIu64 "\n",
                  rlog_simnet_count(h.net, RLOG_SIMNET_DROPPED),
                  rlog_simnet_count(h.net, RLOG_SIMNET_DUPLICATED),
                  rlog_simnet_count(h.net, RLOG_SIMNET_REORDERED),
                  rlog_simnet_count(h.net, RLOG_SIMNET_RESET), st.rejected, st.sessions);
    assert_true(rlog_simnet_count(h.net, RLOG_SIMNET_DROPPED) > 0);
    assert_true(rlog_simnet_count(h.net, RLOG_SIMNET_DUPLICATED) > 0);
    assert_true(st.rejected > 0);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

/* A hand-driven peer on the simulated network. */
typedef struct fake {
    rlog_transport *t;
    uint64_t peer;
    bool up, down;
    rlog_msg last; /* copy of the last message's scalar fields */
    char text[1100];
    int nmsgs;
    uint64_t start_nonce;
} fake;

static void fake_up(void *d, uint64_t peer, const rlog_msg_hello *h)
{
    fake *f = d;
    (void)h;
    f->peer = peer;
    f->up = true;
}

static void fake_down(void *d, uint64_t peer, int reason)
{
    fake *f = d;
    (void)peer;
    (void)reason;
    f->up = false;
    f->down = true;
}

static void fake_recv(void *d, uint64_t peer, const rlog_msg *m)
{
    fake *f = d;
    (void)peer;
    f->last = *m;
    f->nmsgs++;
    f->text[0] = '\0';
    if (m->type == RLOG_MSG_SHIP_REFUSE) {
        snprintf(f->text, sizeof f->text, "%s", m->u.ship_refuse.message);
    }
    if (m->type == RLOG_MSG_SHIP_START) {
        f->start_nonce = m->u.ship_start.nonce;
    }
    f->last.alloc_ = NULL;
}

static void fake_new(harness *h, fake *f, uint64_t id, uint32_t role, const char *listen)
{
    memset(f, 0, sizeof *f);
    f->t = h_transport(h);
    rlog_transport_config cfg;
    h_tcfg(&cfg, id, listen);
    cfg.role = role;
    rlog_transport_events ev = {f, fake_up, fake_down, fake_recv};
    assert_int_equal(f->t->init(f->t, &cfg, &ev), 0);
    if (listen[0] != '\0') {
        assert_int_equal(f->t->listen(f->t), 0);
    }
}

static void fake_pump(harness *h, fake *f, bool (*done)(fake *))
{
    for (int i = 0; i < MAX_ROUNDS / 10; i++) {
        f->t->poll(f->t, 0);
        h_pump(h);
        if (done(f)) {
            return;
        }
    }
    fail_msg("the fake peer's condition never held");
}

static bool fake_is_up(fake *f)
{
    return f->up;
}

static bool fake_got_msg(fake *f)
{
    return f->nmsgs > 0;
}

static bool fake_is_down(fake *f)
{
    return f->down;
}

/* Property: the leader checks what followers send. A START with an
 * impossible position is refused with a message saying what is wrong; an
 * ACK for bytes never sent, and a message type a follower never sends,
 * cost the peer its connection; a peer with the wrong role is dropped. The
 * leader keeps serving. */
static void test_leader_hostile_input(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader");
    harness h;
    h_init(&h, "sim");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 50, 2000);
    h_leader(&h, l);

    /* An impossible position: the last record lies past the end. */
    fake f;
    fake_new(&h, &f, 500, RLOG_ROLE_SHIP_FOLLOWER, "");
    assert_int_equal(f.t->connect(f.t, 0, h.addr), 0);
    fake_pump(&h, &f, fake_is_up);
    rlog_msg m = {.type = RLOG_MSG_SHIP_START};
    m.u.ship_start = (rlog_msg_ship_start){7, 1, 4096, 1, 10, 1, 1, 800, false, 900, 0, 10, 0, 0};
    assert_int_equal(f.t->send(f.t, f.peer, &m, NULL, NULL), 0);
    fake_pump(&h, &f, fake_got_msg);
    assert_int_equal(f.last.type, RLOG_MSG_SHIP_REFUSE);
    assert_int_equal(f.last.u.ship_refuse.nonce, 7);
    assert_int_equal(f.last.u.ship_refuse.code, RLOG_EPROTO);
    print_message("%s\n", f.text);
    assert_non_null(strstr(f.text, "impossible"));
    assert_non_null(strstr(f.text, "last record at 900 with end 800"));

    /* A valid empty START, then an ACK beyond anything sent. */
    f.nmsgs = 0;
    m.u.ship_start = (rlog_msg_ship_start){8, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0};
    assert_int_equal(f.t->send(f.t, f.peer, &m, NULL, NULL), 0);
    fake_pump(&h, &f, fake_got_msg);
    assert_int_equal(f.last.type, RLOG_MSG_SHIP_ACCEPT);
    rlog_msg ok = {.type = RLOG_MSG_SHIP_FILES_OK};
    ok.u.ship_files_ok = (rlog_msg_ship_files_ok){8, f.last.u.ship_accept.files_gen};
    assert_int_equal(f.t->send(f.t, f.peer, &ok, NULL, NULL), 0);
    rlog_msg ack = {.type = RLOG_MSG_SHIP_ACK};
    ack.u.ship_ack = (rlog_msg_ship_ack){8, 99, 64, 1, 64, 5, 0};
    assert_int_equal(f.t->send(f.t, f.peer, &ack, NULL, NULL), 0);
    fake_pump(&h, &f, fake_is_down);
    print_message("%s\n", rlog_ship_leader_errmsg(h.ld));
    assert_non_null(strstr(rlog_ship_leader_errmsg(h.ld), "nothing was sent past"));

    /* A follower that sends DATA (a leader's message). */
    f.down = false;
    fake_pump(&h, &f, fake_is_up); /* it redials */
    rlog_msg d = {.type = RLOG_MSG_SHIP_DATA};
    d.u.ship_data = (rlog_msg_ship_data){1, 1, 1, 4096, 64, 0, 0, 1, 0, NULL};
    assert_int_equal(f.t->send(f.t, f.peer, &d, NULL, NULL), 0);
    fake_pump(&h, &f, fake_is_down);
    assert_non_null(strstr(rlog_ship_leader_errmsg(h.ld), "unexpected ship_data"));
    f.t->close(f.t);

    /* A peer that says it is a Raft server. */
    fake_new(&h, &f, 501, RLOG_ROLE_RAFT, "");
    assert_int_equal(f.t->connect(f.t, 0, h.addr), 0);
    fake_pump(&h, &f, fake_is_down);
    assert_non_null(strstr(rlog_ship_leader_errmsg(h.ld), "connected as"));
    f.t->close(f.t);

    /* And a real follower is still served. */
    char *fdir = tu_mkdtemp("ship-follower");
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    assert_identical(&h, 0, l, ldir, fdir);
    h_teardown(&h, l, ldir, fdir);
}

static bool fake_got_start(fake *f)
{
    return f->start_nonce != 0;
}

static bool fake_got_files_ok(fake *f)
{
    return f->nmsgs > 0 && f->last.type == RLOG_MSG_SHIP_FILES_OK;
}

/* Property: the follower checks what a leader sends. Bytes that fail
 * verification (a flipped bit in a record) are refused by the replica:
 * nothing is written, the status says why, and the follower opens a new
 * session (a new START with a new nonce). Messages with a stale nonce are
 * dropped. */
static void test_follower_hostile_leader(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 20, 200);
    rlog_positions pos;
    rlog_positions_get(l, &pos);
    rlg_ship_seg *v = NULL;
    size_t nv = 0;
    uint64_t log_id = 0;
    assert_int_equal(rlg_ship_view(l, &v, &nv, &log_id), 0);
    assert_true(nv >= 1);
    void *seg;
    size_t seglen;
    char name[64];
    rlog_segment_name(v[0].seq, name, sizeof name);
    tu_read_file(tu_path(ldir, name), &seg, &seglen);

    harness h;
    h_init(&h, "sim");
    fake ld;
    fake_new(&h, &ld, 1, RLOG_ROLE_SHIP_LEADER, h.addr);
    h_follower(&h, 0, fdir);
    fake_pump(&h, &ld, fake_got_start);
    uint64_t nonce = ld.start_nonce;
    rlog_msg a = {.type = RLOG_MSG_SHIP_ACCEPT};
    a.u.ship_accept = (rlog_msg_ship_accept){
        nonce, log_id, true, v[0].file_size, v[0].seq, v[0].first_lsn, pos.durable, 1, 0, 0, NULL};
    assert_int_equal(ld.t->send(ld.t, ld.peer, &a, NULL, NULL), 0);
    fake_pump(&h, &ld, fake_got_files_ok);

    /* A stale nonce: dropped. */
    uint8_t *bytes = (uint8_t *)seg + RLG_SEG_HEADER_SIZE;
    size_t len = (size_t)(v[0].end - RLG_SEG_HEADER_SIZE);
    rlog_msg d = {.type = RLOG_MSG_SHIP_DATA};
    d.u.ship_data = (rlog_msg_ship_data){nonce + 1, v[0].seq, v[0].first_lsn, v[0].file_size,
                                         64,        0,        pos.durable,    v[0].seq,
                                         len,       bytes};
    assert_int_equal(ld.t->send(ld.t, ld.peer, &d, NULL, NULL), 0);
    for (int i = 0; i < 20; i++) {
        ld.t->poll(ld.t, 0);
        h_pump(&h);
    }
    rlog_ship_follower_status st;
    rlog_ship_follower_status_get(h.f[0], &st);
    assert_int_equal(st.bytes_received, 0);
    assert_true(st.rejected >= 1);

    /* A flipped bit inside the second record's payload. */
    bytes[RLG_REC_HEADER_SIZE + rlg_rec_len_at(bytes) + RLG_REC_HEADER_SIZE] ^= 0x10;
    d.u.ship_data.nonce = nonce;
    ld.start_nonce = 0;
    assert_int_equal(ld.t->send(ld.t, ld.peer, &d, NULL, NULL), 0);
    fake_pump(&h, &ld, fake_got_start); /* a new session */
    assert_true(ld.start_nonce != nonce);
    rlog_ship_follower_status_get(h.f[0], &st);
    print_message("%s\n", st.message);
    assert_int_equal(st.bytes_received, 0);
    assert_int_equal(st.error, RLOG_EPROTO);
    assert_non_null(strstr(st.message, "refused"));
    assert_int_equal(st.sessions, 2);
    h_follower_free(&h, 0);
    assert_int_equal(count_segments(fdir), 0);
    ld.t->close(ld.t);
    h_teardown(&h, l, ldir, fdir);
    free(seg);
    free(v);
}

typedef struct loop_arg {
    rlog_ship_leader *ld;
    atomic_int stop;
} loop_arg;

static void *leader_loop(void *p)
{
    loop_arg *a = p;
    while (!atomic_load(&a->stop)) {
        rlog_ship_leader_poll(a->ld, 5);
    }
    return NULL;
}

/* Property: rlog_ship_status_query asks a running leader (over nng, role
 * observer) and gets its positions and its followers' states; an address
 * where nobody listens answers RLOG_ENOCONN within the timeout. */
static void test_status_query(void **state)
{
    (void)state;
    char *ldir = tu_mkdtemp("ship-leader"), *fdir = tu_mkdtemp("ship-follower");
    harness h;
    h_init(&h, "tcp");
    rlog_log *l = open_log(ldir, RLOG_OPEN_CREATE);
    append_n(l, 1, 100, 2000);
    h_leader(&h, l);
    h_follower(&h, 0, fdir);
    h_sync(&h, l);
    rlog_positions p;
    rlog_positions_get(l, &p);

    /* The query waits: the leader runs on a thread of its own meanwhile. */
    loop_arg la = {h.ld, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, leader_loop, &la), 0);
    rlog_ship_status s;
    char err[256];
    int rc = rlog_ship_status_query(h.addr, 10000, &s, err, sizeof err);
    atomic_store(&la.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (rc != 0) {
        fail_msg("status query: %s", err);
    }
    rlg_ship_seg *v = NULL;
    size_t nv = 0;
    uint64_t log_id = 0;
    assert_int_equal(rlg_ship_view(l, &v, &nv, &log_id), 0);
    assert_int_equal(s.log_id, log_id);
    assert_int_equal(s.durable_lsn, p.durable);
    assert_int_equal(s.first_lsn, p.first);
    assert_int_equal(s.first_seq, v[0].seq);
    assert_int_equal(s.last_seq, v[nv - 1].seq);
    free(v);
    assert_int_equal(s.n_followers, 1);
    assert_int_equal(s.followers[0].id, 100);
    assert_true(s.followers[0].connected);
    assert_int_equal(s.followers[0].state, RLOG_SHIP_TAILING);
    assert_int_equal(s.followers[0].durable, p.durable);
    assert_int_equal(s.followers[0].lag_bytes, 0);
    rlog_ship_status_release(&s);

    /* Nobody there. */
    char nowhere[64];
    snprintf(nowhere, sizeof nowhere, "tcp://127.0.0.1:%u",
             10000u + (unsigned)(getpid() % 20000) + addr_counter++);
    rc = rlog_ship_status_query(nowhere, 300, &s, err, sizeof err);
    print_message("%s\n", err);
    assert_int_equal(rc, RLOG_ENOCONN);
    assert_non_null(strstr(err, "could not connect"));
    h_teardown(&h, l, ldir, fdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catch_up_and_tail_sim),
        cmocka_unit_test(test_lossy_network),
        cmocka_unit_test(test_leader_hostile_input),
        cmocka_unit_test(test_follower_hostile_leader),
        cmocka_unit_test(test_catch_up_and_tail_inproc),
        cmocka_unit_test(test_catch_up_and_tail_tcp),
        cmocka_unit_test(test_catch_up_and_tail_tls),
        cmocka_unit_test(test_follower_restart_resumes),
        cmocka_unit_test(test_disconnect_mid_stream),
        cmocka_unit_test(test_three_followers),
        cmocka_unit_test(test_window_bound),
        cmocka_unit_test(test_leader_restart),
        cmocka_unit_test(test_diverged_follower),
        cmocka_unit_test(test_behind_prefix),
        cmocka_unit_test(test_other_log_refused),
        cmocka_unit_test(test_raft_storage),
        cmocka_unit_test(test_side_file_removed),
        cmocka_unit_test(test_segment_size_change),
        cmocka_unit_test(test_follower_dir_locked),
        cmocka_unit_test(test_status_query),
    };
    return TU_RUN("transport_ship", tests, NULL, NULL);
}
