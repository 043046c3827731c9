/* Raft storage recovery against a model:
 *  - every prefix of a recorded stream of operations (append, truncate,
 *    hard state, snapshot with compaction, install) recovers to the state
 *    that the complete records in it describe: the directory is copied after
 *    each operation and the last segment is cut at every record boundary and
 *    inside every record;
 *  - a failure of the Nth vfs call of each kind during an operation,
 *    followed by a crash and a reopen with the plain vfs, leaves either the
 *    state before the operation or the state after it. */
#include "util/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log/format.h"
#include "log/handle.h"
#include "raft_storage/rs_internal.h"
#include "rlog/raft_storage.h"

#define SEG  4096u
#define MAXI 4096u

/* ---------------------------------------------------------------- model */

typedef struct model {
    rlog_rs_hard_state hs;
    uint64_t first, last;
    int has_snap;
    uint64_t snap_index, snap_term;
    uint64_t term[MAXI];
    uint32_t salt[MAXI];
} model;

static void model_init(model *m)
{
    memset(m, 0, sizeof *m);
    m->first = 1;
}

static size_t payload(uint64_t index, uint32_t salt, uint8_t *buf)
{
    size_t len = (size_t)((index * 31 + salt * 17) % 61);
    tu_fill(salt, index, buf, len);
    return len;
}

static void model_snapshot(model *m, uint64_t index, uint64_t term, unsigned trailing)
{
    int keep = trailing > 0 && index >= m->first && index <= m->last && m->term[index] == term;
    if (!keep) {
        m->first = index + 1;
        m->last = index;
    } else if (index >= trailing && index - trailing + 1 > m->first) {
        m->first = index - trailing + 1;
    }
    m->has_snap = 1;
    m->snap_index = index;
    m->snap_term = term;
}

/* Compares the store with the model; returns a description of the first
 * difference or NULL. */
static const char *diff(rlog_rs *rs, const model *m)
{
    static char msg[256];
    rlog_rs_stats s;
    rlog_rs_stats_get(rs, &s);
    if (s.hs.term != m->hs.term || s.hs.vote != m->hs.vote || s.hs.commit != m->hs.commit)
        return "hard state";
    if (s.first_index != m->first || s.last_index != m->last) {
        snprintf(msg, sizeof msg, "range %" PRIu64 "..%" PRIu64 " expected %" PRIu64 "..%" PRIu64,
                 s.first_index, s.last_index, m->first, m->last);
        return msg;
    }
    if (s.has_snapshot != m->has_snap ||
        (m->has_snap && (s.snap_index != m->snap_index || s.snap_term != m->snap_term)))
        return "snapshot";
    if (m->has_snap && rlog_rs_term(rs, m->snap_index) != m->snap_term)
        return "snapshot term";
    for (uint64_t i = m->first; i <= m->last; i++)
        if (rlog_rs_term(rs, i) != m->term[i]) {
            snprintf(msg, sizeof msg, "term of %" PRIu64, i);
            return msg;
        }
    if (m->last < m->first)
        return NULL;
    rlog_rs_entries e;
    if (rlog_rs_entries_read(rs, m->first, m->last, 0, &e))
        return "entries read";
    const char *bad = e.n != m->last - m->first + 1 ? "entry count" : NULL;
    for (size_t k = 0; k < e.n && !bad; k++) {
        uint8_t buf[64];
        uint64_t i = m->first + k;
        size_t len = payload(i, m->salt[i], buf);
        if (e.v[k].term != m->term[i] || e.v[k].len != len || memcmp(e.v[k].data, buf, len))
            bad = "entry payload";
    }
    rlog_rs_entries_free(&e);
    return bad;
}

/* ---------------------------------------------------------------- workload */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return r->s >> 33;
}

static char last_open_msg[600];

static rlog_rs *open_rs(const char *dir, rlog_vfs *vfs, int *err)
{
    rlog_rs *rs;
    rlog_rs_open_report rep;
    int rv = tu_rs_try_open(dir, vfs, SEG, RLOG_OPEN_CREATE, RLOG_SYNC_EACH, &rs, &rep);
    snprintf(last_open_msg, sizeof last_open_msg, "%s", rep.message);
    if (err)
        *err = rv;
    else if (rv)
        fail_msg("open %s: %s: %s", dir, rlog_errname(rv), rep.message);
    return rs;
}

/* Frees the handle as a crash would: no write, no sync. */
static void crash_rs(rlog_rs *rs)
{
    rlg_log_crash(rs->log);
    rs->log = NULL;
    rlog_rs_close(rs);
}

static int do_append(rlog_rs *rs, model *m, rng *r, uint32_t salt)
{
    rlog_rs_entry e[8];
    uint8_t bufs[8][64];
    size_t n = 1 + rnd(r) % 6;
    uint64_t term = m->hs.term;
    for (size_t k = 0; k < n; k++) {
        uint64_t i = m->last + 1 + k;
        e[k] = (rlog_rs_entry){term, (uint16_t)(k % 3), (uint32_t)payload(i, salt, bufs[k]),
                               bufs[k], NULL};
    }
    int rv = rs ? rlog_rs_append(rs, m->last + 1, e, n) : 0;
    if (rv == 0) {
        for (size_t k = 0; k < n; k++) {
            m->term[m->last + 1 + k] = term;
            m->salt[m->last + 1 + k] = salt;
        }
        m->last += n;
    }
    return rv;
}

static int do_truncate(rlog_rs *rs, model *m, rng *r)
{
    uint64_t lo = (m->hs.commit > m->snap_index ? m->hs.commit : m->snap_index) + 1;
    if (lo < m->first)
        lo = m->first;
    if (m->last + 1 < lo)
        return 0;
    uint64_t i = lo + rnd(r) % (m->last + 2 - lo);
    int rv = rlog_rs_truncate(rs, i);
    if (rv == 0)
        m->last = i - 1;
    return rv;
}

static int do_hard_state(rlog_rs *rs, model *m, rng *r)
{
    rlog_rs_hard_state hs = m->hs;
    switch (rnd(r) % 3) {
    case 0:
        hs.term++;
        hs.vote = 0;
        break;
    case 1:
        if (hs.vote == 0)
            hs.vote = 1 + rnd(r) % 3;
        break;
    default:
        if (m->last > 6 && m->last - 6 > hs.commit)
            hs.commit = m->last - 6;
        break;
    }
    int rv = rlog_rs_set_hard_state(rs, &hs);
    if (rv == 0)
        m->hs = hs;
    return rv;
}

static int do_snapshot(rlog_rs *rs, model *m, rng *r, uint32_t salt)
{
    uint64_t lo = m->snap_index + 1 > m->first ? m->snap_index + 1 : m->first;
    uint64_t index, term;
    unsigned trailing;
    if (rnd(r) % 4 == 0 || m->last < lo) { /* install: beyond the log */
        index = m->last + 1 + rnd(r) % 4;
        term = m->hs.term;
        trailing = 0;
    } else {
        index = lo + rnd(r) % (m->last + 1 - lo);
        term = m->term[index];
        trailing = rnd(r) % 3 == 0 ? 0 : (unsigned)(rnd(r) % 8);
    }
    uint8_t data[300], conf[20];
    tu_fill(salt, index, data, sizeof data);
    tu_fill(salt + 1, index, conf, sizeof conf);
    rlog_rs_buf b[2] = {{data, 100}, {data + 100, sizeof data - 100}};
    rlog_rs_snapshot_desc d = {index, term, index, conf, sizeof conf, b, 2, trailing};
    int rv = rlog_rs_snapshot_put(rs, &d);
    if (rv == 0)
        model_snapshot(m, index, term, trailing);
    return rv;
}

/* One random operation; *kind gets its name. */
static int step(rlog_rs *rs, model *m, rng *r, uint32_t salt, const char **kind)
{
    if (m->hs.term == 0) {
        *kind = "hard state";
        rlog_rs_hard_state hs = {1, 1, 0};
        int rv = rlog_rs_set_hard_state(rs, &hs);
        if (!rv)
            m->hs = hs;
        return rv;
    }
    unsigned k = (unsigned)(rnd(r) % 20);
    if (k < 11) {
        *kind = "append";
        return do_append(rs, m, r, salt);
    }
    if (k < 14) {
        *kind = "truncate";
        return do_truncate(rs, m, r);
    }
    if (k < 18) {
        *kind = "hard state";
        return do_hard_state(rs, m, r);
    }
    *kind = "snapshot";
    return do_snapshot(rs, m, r, salt);
}

/* ---------------------------------------------------------------- dirs */

/* Copies files of `from` that `to` lacks. */
static void restore_missing(const char *from, const char *to)
{
    DIR *d = opendir(from);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char a[8192], b[8192];
        struct stat st;
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        if (de->d_name[0] != '.' && stat(b, &st) != 0)
            tu_copy_file(a, b);
    }
    closedir(d);
}

/* Record boundaries of a segment file: ends[k] = offset after record k,
 * lsns[k] its LSN. Returns the count. */
static size_t scan_segment(const char *path, uint64_t *ends, uint64_t *lsns, size_t cap)
{
    uint8_t *data;
    size_t len, n = 0;
    tu_read_file(path, (void **)&data, &len);
    uint64_t off = RLG_SEG_HEADER_SIZE;
    /* a spare (zero header) holds none; a recycled file holds stale
     * records of another segment past its own: the salted CRC tells */
    rlg_seg_header sh;
    if (len < RLG_SEG_HEADER_SIZE || rlg_seg_header_decode(data, &sh) != RLG_HDR_OK)
        off = len;
    uint32_t salt = off < len ? rlg_salt_state(sh.log_id, sh.seq) : 0;
    while (off + RLG_REC_HEADER_SIZE <= len && n < cap) {
        rlg_rec_header h;
        rlg_rec_header_decode(data + off, &h);
        if (h.type == 0 || off + RLG_REC_HEADER_SIZE + h.len > len ||
            !rlg_rec_crc_ok(data + off, salt, h.len))
            break;
        off += RLG_REC_HEADER_SIZE + h.len;
        ends[n] = off;
        lsns[n++] = h.lsn;
    }
    free(data);
    return n;
}

/* The last segment that holds records. */
static int last_segment(const char *dir, char *name, size_t cap)
{
    char **names;
    size_t n = tu_list_segments(dir, &names);
    int found = 0;
    for (size_t i = n; i-- > 0 && !found;) {
        uint64_t ends[1], lsns[1];
        if (scan_segment(tu_path(dir, names[i]), ends, lsns, 1) > 0) {
            snprintf(name, cap, "%s", names[i]);
            found = 1;
        }
    }
    tu_free_names(names, n);
    return found;
}

/* ---------------------------------------------------------------- graveyard vfs */

/* The posix vfs, except that a segment file is copied to grave_dir before
 * it is unlinked: a cut inside an operation that deleted segments puts
 * them back as they were when deleted (sealed). */
static char grave_dir[4096];

static void grave_keep(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    struct stat st;
    if (grave_dir[0] && n > 4 && strcmp(base + n - 4, ".seg") == 0 && stat(path, &st) == 0) {
        mkdir(grave_dir, 0755);
        tu_copy_file(path, tu_path(grave_dir, base));
    }
}

static int grave_unlink(rlog_vfs *vfs, const char *path)
{
    (void)vfs;
    grave_keep(path);
    return rlog_vfs_posix()->unlink(rlog_vfs_posix(), path);
}

/* A segment renamed away to wait for recycling is deleted too. */
static int grave_rename(rlog_vfs *vfs, const char *from, const char *to)
{
    (void)vfs;
    if (strstr(to, "rlog.recycle-"))
        grave_keep(from);
    return rlog_vfs_posix()->rename(rlog_vfs_posix(), from, to);
}

/* ---------------------------------------------------------------- prefix test */

#define OPS 160

typedef struct rec_state {
    model *models;         /* models[k]: after op k (0 = initial) */
    uint64_t lsn[OPS + 1]; /* appended LSN after op k */
    char *root;
} rec_state;

/* Opens a copy cut at `off` in segment `seg` and checks it against the
 * model of the last op whose record is complete. */
static void check_cut(rec_state *rs_, size_t k, const char *seg, uint64_t off, uint64_t last_lsn)
{
    char src[4096], prev[4096], work[4096];
    snprintf(src, sizeof src, "%s/op%zu", rs_->root, k);
    snprintf(work, sizeof work, "%s/work", rs_->root);
    tu_rmdir_r(work);
    tu_copy_dir(src, work);
    struct stat sb;
    snprintf(prev, sizeof prev, "%s/grave%zu", rs_->root, k);
    if (last_lsn < rs_->lsn[k] && stat(prev, &sb) == 0)
        restore_missing(prev, work); /* op k had not finished: nothing deleted yet */
    /* the writes after off are torn; when only zeros follow, nothing was
     * lost (the cut at the end of the op checks that state) */
    if (!tu_garble_from(tu_path(work, seg), off))
        return;
    size_t j = 0;
    while (j < k && rs_->lsn[j + 1] <= last_lsn)
        j++;
    int err;
    rlog_rs *rs = open_rs(work, NULL, &err);
    if (err)
        fail_msg("op %zu, cut %s at %" PRIu64 " (last LSN %" PRIu64 "): open: %s: %s", k, seg, off,
                 last_lsn, rlog_errname(err), last_open_msg);
    const char *d = diff(rs, &rs_->models[j]);
    if (d)
        fail_msg("op %zu, cut %s at %" PRIu64 " (last LSN %" PRIu64
                 "): expected state of op %zu: %s",
                 k, seg, off, last_lsn, j, d);
    rlog_rs_close(rs);
}

/* Cuts the directory after op k inside the bytes op k added to its last
 * segment. */
static unsigned check_op_cuts(rec_state *st, size_t k)
{
    char src[4096], seg[64];
    snprintf(src, sizeof src, "%s/op%zu", st->root, k);
    assert_true(last_segment(src, seg, sizeof seg));
    uint64_t ends[512], lsns[512];
    size_t n = scan_segment(tu_path(src, seg), ends, lsns, 512);
    unsigned cuts = 0;
    uint64_t start = RLG_SEG_HEADER_SIZE;
    uint64_t prev_lsn = lsns[0] - 1; /* records of earlier segments are complete */
    for (size_t r = 0; r < n; r++) {
        if (lsns[r] > st->lsn[k - 1]) {
            uint64_t len = ends[r] - start;
            uint64_t pts[4] = {start, start + 10, start + RLG_REC_HEADER_SIZE + len / 3,
                               ends[r] - 1};
            for (int p = 0; p < 4; p++) {
                if (pts[p] >= start && pts[p] < ends[r]) {
                    check_cut(st, k, seg, pts[p], prev_lsn);
                    cuts++;
                }
            }
        }
        start = ends[r];
        prev_lsn = lsns[r];
    }
    check_cut(st, k, seg, ends[n - 1], lsns[n - 1]);
    return cuts + 1;
}

static void run_prefix(uint64_t seed)
{
    rec_state st = {0};
    st.root = tu_mkdtemp("raft_prefix");
    st.models = calloc(OPS + 1, sizeof *st.models);
    char live[4096];
    snprintf(live, sizeof live, "%s/live", st.root);
    mkdir(live, 0755);
    rlog_vfs gv = *rlog_vfs_posix();
    gv.unlink = grave_unlink;
    gv.rename = grave_rename;
    rlog_rs *rs = open_rs(live, &gv, NULL);
    model m;
    model_init(&m);
    st.models[0] = m;
    rlog_positions pos0;
    rlog_positions_get(rlog_rs_log(rs), &pos0);
    st.lsn[0] = pos0.appended;
    char dst0[4096];
    snprintf(dst0, sizeof dst0, "%s/op0", st.root);
    tu_copy_dir(live, dst0);
    rng r = {seed};
    unsigned kinds[4] = {0};
    for (size_t k = 1; k <= OPS; k++) {
        const char *kind;
        snprintf(grave_dir, sizeof grave_dir, "%s/grave%zu", st.root, k);
        int rv = step(rs, &m, &r, (uint32_t)k, &kind);
        if (rv)
            fail_msg("op %zu (%s): %s: %s", k, kind, rlog_errname(rv), rlog_rs_errmsg(rs));
        kinds[kind[0] == 'a' ? 0 : kind[0] == 't' ? 1 : kind[0] == 'h' ? 2 : 3]++;
        const char *d = diff(rs, &m);
        if (d)
            fail_msg("op %zu (%s): live state differs: %s", k, kind, d);
        st.models[k] = m;
        rlog_positions pos;
        rlog_positions_get(rlog_rs_log(rs), &pos);
        st.lsn[k] = pos.appended;
        char dst[4096];
        snprintf(dst, sizeof dst, "%s/op%zu", st.root, k);
        tu_copy_dir(live, dst);
    }
    rlog_rs_stats s;
    rlog_rs_stats_get(rs, &s);
    rlog_rs_close(rs);
    grave_dir[0] = '\0';
    assert_true(kinds[0] > 40 && kinds[1] > 5 && kinds[2] > 10 && kinds[3] > 5);
    unsigned cuts = 0;
    for (size_t k = 1; k <= OPS; k++)
        cuts += check_op_cuts(&st, k);
    print_message("prefix test, seed %" PRIu64
                  ": %u ops (append %u, truncate %u, hard state %u, snapshot %u), %u "
                  "cuts checked, final entries %" PRIu64 "..%" PRIu64 "\n",
                  seed, OPS, kinds[0], kinds[1], kinds[2], kinds[3], cuts, s.first_index,
                  s.last_index);
    tu_rmdir_r(st.root);
    free(st.root);
    free(st.models);
}

static void test_every_prefix(void **state)
{
    (void)state;
    run_prefix(42);
    run_prefix(20261121);
}

/* ---------------------------------------------------------------- fault test */

typedef int (*op_fn)(rlog_rs *rs, model *m, rng *r);

static int op_snap_trailing(rlog_rs *rs, model *m, rng *r)
{
    (void)r;
    uint8_t data[500];
    tu_fill(9, 9, data, sizeof data);
    uint64_t index = m->last - 3;
    rlog_rs_buf b = {data, sizeof data};
    rlog_rs_snapshot_desc d = {index, m->term[index], index, "conf", 4, &b, 1, 5};
    int rv = rs ? rlog_rs_snapshot_put(rs, &d) : 0;
    if (!rv)
        model_snapshot(m, index, m->term[index], 5);
    return rv;
}

static int op_snap_install(rlog_rs *rs, model *m, rng *r)
{
    (void)r;
    uint8_t data[700];
    tu_fill(8, 8, data, sizeof data);
    uint64_t index = m->last + 10;
    rlog_rs_buf b = {data, sizeof data};
    rlog_rs_snapshot_desc d = {index, m->hs.term, index, "conf", 4, &b, 1, 0};
    int rv = rs ? rlog_rs_snapshot_put(rs, &d) : 0;
    if (!rv)
        model_snapshot(m, index, m->hs.term, 0);
    return rv;
}

static int op_truncate(rlog_rs *rs, model *m, rng *r)
{
    (void)r;
    int rv = rs ? rlog_rs_truncate(rs, m->last - 2) : 0;
    if (!rv)
        m->last -= 3;
    return rv;
}

static int op_hard_state(rlog_rs *rs, model *m, rng *r)
{
    (void)r;
    rlog_rs_hard_state hs = {m->hs.term + 1, 2, m->hs.commit};
    int rv = rs ? rlog_rs_set_hard_state(rs, &hs) : 0;
    if (!rv)
        m->hs = hs;
    return rv;
}

static int op_append(rlog_rs *rs, model *m, rng *r)
{
    return do_append(rs, m, r, 777);
}

/* Builds the same history in dir: enough records for several segments
 * and one earlier snapshot. */
static void history(rlog_rs *rs, model *m)
{
    rng r = {7};
    model_init(m);
    rlog_rs_hard_state hs = {3, 1, 0};
    assert_int_equal(rlog_rs_set_hard_state(rs, &hs), 0);
    m->hs = hs;
    for (int k = 0; k < 60; k++)
        assert_int_equal(do_append(rs, m, &r, (uint32_t)k), 0);
    uint8_t data[100] = {1, 2, 3};
    rlog_rs_buf b = {data, sizeof data};
    rlog_rs_snapshot_desc d = {20, m->term[20], 20, NULL, 0, &b, 1, 4};
    assert_int_equal(rlog_rs_snapshot_put(rs, &d), 0);
    model_snapshot(m, 20, m->term[20], 4);
    for (int k = 0; k < 30; k++)
        assert_int_equal(do_append(rs, m, &r, (uint32_t)(100 + k)), 0);
}

static const rlog_vfs_op fault_ops[] = {RLOG_OP_OPEN,      RLOG_OP_CLOSE,    RLOG_OP_PWRITE,
                                        RLOG_OP_FDATASYNC, RLOG_OP_FSYNC,    RLOG_OP_TRUNCATE,
                                        RLOG_OP_ALLOCATE,  RLOG_OP_RENAME,   RLOG_OP_UNLINK,
                                        RLOG_OP_LIST,      RLOG_OP_SYNC_DIR, RLOG_OP_SIZE};
#define NFAULT_OPS (sizeof fault_ops / sizeof fault_ops[0])

static void no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp"))
            fail_msg("temp file %s left after reopen", de->d_name);
    closedir(d);
}

/* Runs op with the Nth call of `kind` failing; crash; reopen plain.
 * Returns 1 while the fault was reached. */
static int fault_once(const char *root, op_fn op, rlog_vfs_op kind, uint64_t nth, int *outcome)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/f", root);
    tu_rmdir_r(dir);
    mkdir(dir, 0755);
    rlog_vfs *fv = rlog_vfs_fault_new(rlog_vfs_posix());
    rlog_rs *rs = open_rs(dir, fv, NULL);
    model before, after, scratch;
    history(rs, &before);
    after = scratch = before;
    rng r1 = {5}, r2 = {5};
    op(NULL, &after, &r1); /* the model of a completed op */
    rlog_fault f = {kind, nth, 0, EIO, 0, NULL};
    int id = rlog_vfs_fault_add(fv, &f);
    uint64_t injected0 = rlog_vfs_fault_injected(fv);
    int rv = op(rs, &scratch, &r2);
    int reached = rlog_vfs_fault_injected(fv) > injected0;
    rlog_vfs_fault_remove(fv, id);
    crash_rs(rs);
    fv->destroy(fv);
    rs = open_rs(dir, NULL, NULL);
    const char *d_before = rv == 0 ? "succeeded" : diff(rs, &before);
    const char *d_after = d_before ? diff(rs, &after) : NULL;
    if (d_before && d_after)
        fail_msg("fault %d #%" PRIu64 " (op returned %s): state is neither before (%s) nor after "
                 "(%s)",
                 (int)kind, nth, rlog_errname(rv), d_before, d_after);
    *outcome = d_before == NULL ? 0 : 1;
    if (after.has_snap) {
        rlog_rs_snapshot s;
        int g = rlog_rs_snapshot_get(rs, &s);
        if (g)
            fail_msg("fault %d #%" PRIu64 ": snapshot get: %s", (int)kind, nth, rlog_rs_errmsg(rs));
        rlog_rs_snapshot_release(&s);
    }
    rlog_rs_close(rs);
    no_temp_files(dir);
    return reached;
}

/* One operation under every fault (registered as test_fault_<op>): the
 * operation and the tag of its scratch directory. */
typedef struct fault_case {
    op_fn op;
    const char *tag;
} fault_case;

static void test_fault(void **state)
{
    const fault_case *c = *state;
    op_fn op = c->op;
    const char *tag = c->tag;
    char *root = tu_mkdtemp(tag);
    unsigned runs = 0, before = 0, after = 0;
    for (size_t k = 0; k < NFAULT_OPS; k++) {
        for (uint64_t nth = 0; nth < 64; nth++) {
            int outcome;
            int reached = fault_once(root, op, fault_ops[k], nth, &outcome);
            runs++;
            if (outcome)
                after++;
            else
                before++;
            if (!reached)
                break;
        }
    }
    print_message("%s: %u faulted runs: %u before, %u after\n", tag, runs, before, after);
    tu_rmdir_r(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_prefix),
        TU_CASE("test_fault_snapshot_trailing", test_fault,
                &(fault_case){op_snap_trailing, "raft_fault_snap"}),
        TU_CASE("test_fault_snapshot_install", test_fault,
                &(fault_case){op_snap_install, "raft_fault_install"}),
        TU_CASE("test_fault_truncate", test_fault, &(fault_case){op_truncate, "raft_fault_trunc"}),
        TU_CASE("test_fault_hard_state", test_fault, &(fault_case){op_hard_state, "raft_fault_hs"}),
        TU_CASE("test_fault_append", test_fault, &(fault_case){op_append, "raft_fault_append"}),
    };
    return TU_RUN("raft_recovery", tests, NULL, NULL);
}
