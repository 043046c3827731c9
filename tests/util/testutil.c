#include "util/testutil.h"
#include "bench/common/bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int tu_run(const char *group, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
           CMFixtureFunction teardown, CMFixtureFunction group_setup,
           CMFixtureFunction group_teardown)
{
    struct CMUnitTest *all = calloc(n, sizeof *all);
    if (all == NULL) {
        fprintf(stderr, "%s: out of memory for %zu tests\n", group, n);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        all[i] = tests[i];
        if (all[i].setup_func == NULL && all[i].teardown_func == NULL) {
            all[i].setup_func = setup;
            all[i].teardown_func = teardown;
        }
    }
    const char *only = getenv("RLOG_TEST_FILTER");
    if (only != NULL && *only != '\0')
        cmocka_set_test_filter(only);
    int failed = _cmocka_run_group_tests(group, all, n, group_setup, group_teardown);
    free(all);
    return failed;
}

int tu_no_fixture(void **state)
{
    (void)state;
    return 0;
}

uint64_t tu_seeds_to_run(const char *env_var, uint64_t normal, uint64_t sanitized)
{
    const char *e = getenv(env_var);
    if (e != NULL && *e != '\0')
        return strtoull(e, NULL, 10);
#if defined(__SANITIZE_ADDRESS__)
    (void)normal;
    return sanitized;
#else
    (void)sanitized;
    return normal;
#endif
}

char *tu_mkdtemp(const char *tag)
{
    const char *base = getenv("RLOG_TEST_TMPDIR");
    char root[4096];
    snprintf(root, sizeof root, "%s", base && *base ? base : "/tmp/rlog-tests");
    /* mkdir -p root */
    for (char *p = root + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(root, 0755);
            *p = '/';
        }
    }
    mkdir(root, 0755);
    char *path = malloc(strlen(root) + strlen(tag) + 16);
    assert_non_null(path);
    sprintf(path, "%s/%s-XXXXXX", root, tag);
    assert_non_null(mkdtemp(path));
    return path;
}

void tu_rmdir_r(const char *path)
{
    if (path)
        bench_rm_rf(path);
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[8][4096];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

const char *tu_seg_name(uint64_t seq)
{
    static char bufs[8][32];
    static int i;
    char *b = bufs[i++ % 8];
    rlog_segment_name(seq, b, 32);
    return b;
}

long tu_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long)st.st_size;
}

void tu_read_file(const char *path, void **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(*data);
    assert_int_equal(fread(*data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

void tu_poke(const char *path, uint64_t off, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
    close(fd);
}

void tu_flip_bit(const char *path, uint64_t off, unsigned bit)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= (unsigned char)(1u << bit);
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

void tu_truncate(const char *path, uint64_t size)
{
    assert_int_equal(truncate(path, (off_t)size), 0);
}

void tu_remove(const char *path)
{
    assert_int_equal(unlink(path), 0);
}

void tu_copy_file(const char *from, const char *to)
{
    void *d;
    size_t n;
    tu_read_file(from, &d, &n);
    tu_write_file(to, d, n);
    free(d);
}

void tu_copy_dir(const char *from, const char *to)
{
    mkdir(to, 0755);
    DIR *d = opendir(from);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char a[8192], b[8192];
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        tu_copy_file(a, b);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tu_list_segments(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".seg") == 0) {
            if (n == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    *names = v;
    return n;
}

void tu_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void tu_fill(uint64_t seed, uint64_t lsn, void *buf, size_t len)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (lsn + 0x632BE59BD9B4E019ull);
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

static uint32_t recs_len(const tu_recs *s, uint64_t lsn)
{
    return s->len_of ? s->len_of(lsn) : s->len;
}

void tu_append_recs(rlog_log *l, const tu_recs *s, uint64_t from, uint64_t to)
{
    for (uint64_t lsn = from; lsn <= to; lsn++) {
        uint32_t len = recs_len(s, lsn);
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        tu_fill(s->seed, lsn, buf, len);
        rlog_record r = {.type = s->type, .len = len, .data = buf};
        uint64_t got = 0;
        int rv = rlog_append(l, &r, 1, &got);
        free(buf);
        if (rv)
            fail_msg("append LSN %llu: %s: %s", (unsigned long long)lsn, rlog_errname(rv),
                     rlog_errmsg(l));
        assert_int_equal(got, lsn);
    }
}

void tu_check_recs(rlog_log *l, const tu_recs *s, uint64_t from, uint64_t to)
{
    rlog_iter *it;
    assert_int_equal(rlog_iter_open(l, from, 0, &it), 0);
    rlog_record r;
    for (uint64_t lsn = from; lsn <= to; lsn++) {
        int rv = rlog_iter_next(it, &r);
        if (rv)
            fail_msg("iter LSN %llu: %s: %s", (unsigned long long)lsn, rlog_errname(rv),
                     rlog_errmsg(l));
        assert_int_equal(r.lsn, lsn);
        assert_int_equal(r.type, s->type);
        assert_int_equal(r.len, recs_len(s, lsn));
        uint8_t *want = malloc(r.len ? r.len : 1);
        assert_non_null(want);
        tu_fill(s->seed, lsn, want, r.len);
        assert_memory_equal(r.data, want, r.len);
        free(want);
    }
    assert_int_equal(rlog_iter_next(it, &r), RLOG_EEND);
    rlog_iter_close(it);
}

void tu_snap_take(const char *dir, tu_snap *s)
{
    s->n = tu_list_segments(dir, &s->names);
    s->data = calloc(s->n ? s->n : 1, sizeof *s->data);
    s->len = calloc(s->n ? s->n : 1, sizeof *s->len);
    for (size_t i = 0; i < s->n; i++)
        tu_read_file(tu_path(dir, s->names[i]), &s->data[i], &s->len[i]);
}

void tu_snap_free(tu_snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s->data);
    free(s->len);
    tu_free_names(s->names, s->n);
}

void tu_snap_assert_same(const char *dir, const tu_snap *s)
{
    tu_snap now;
    tu_snap_take(dir, &now);
    if (now.n != s->n)
        fail_msg("%zu segment files now, %zu before", now.n, s->n);
    for (size_t i = 0; i < s->n; i++) {
        assert_string_equal(now.names[i], s->names[i]);
        if (now.len[i] != s->len[i])
            fail_msg("segment %s changed size: %zu, was %zu", s->names[i], now.len[i], s->len[i]);
        const unsigned char *a = now.data[i], *b = s->data[i];
        for (size_t k = 0; k < s->len[i]; k++)
            if (a[k] != b[k])
                fail_msg("segment %s changed at offset %zu", s->names[i], k);
    }
    tu_snap_free(&now);
}

int tu_try_open(const char *dir, rlog_vfs *vfs, uint64_t seg, rlog_sync_mode mode, unsigned flags,
                rlog_log **l, rlog_open_report *rep)
{
    rlog_options o;
    rlog_options_init(&o);
    o.vfs = vfs;
    o.segment_size = seg;
    o.sync = mode;
    o.flags = flags;
    return rlog_open(dir, &o, l, rep);
}

rlog_file *tu_vfs_open(rlog_vfs *vfs, const char *path, unsigned flags)
{
    rlog_file *f = NULL;
    assert_int_equal(vfs->open(vfs, path, flags, &f), 0);
    assert_non_null(f);
    return f;
}

void tu_vfs_write(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off)
{
    size_t done = (size_t)-1;
    assert_int_equal(vfs->pwrite(vfs, f, buf, len, off, &done), 0);
    assert_int_equal(done, len);
}

void tu_vfs_expect_only(rlog_vfs *vfs, const char *dir, const char *name)
{
    char **names;
    size_t n;
    assert_int_equal(vfs->list(vfs, dir, &names, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], name);
    rlog_vfs_free_names(names, n);
}

rlog_vfs *tu_simfs_new(const rlog_simfs_config *cfg, const char *dir)
{
    rlog_vfs *vfs = rlog_simfs_new(cfg);
    assert_non_null(vfs);
    assert_int_equal(rlog_simfs_mkdirs(vfs, dir), 0);
    return vfs;
}

long tu_simfs_size(rlog_vfs *vfs, const char *path, bool durable)
{
    void *d = NULL;
    size_t len = 0;
    if (rlog_simfs_read(vfs, path, durable, &d, &len))
        return -1;
    rlog_free(d);
    return (long)len;
}

int tu_rs_try_open(const char *dir, rlog_vfs *vfs, uint64_t seg, unsigned flags,
                   rlog_sync_mode mode, rlog_rs **rs, rlog_rs_open_report *rep)
{
    rlog_rs_options o;
    rlog_rs_options_init(&o);
    o.log.vfs = vfs;
    o.log.segment_size = seg;
    o.log.flags = flags;
    o.log.sync = mode;
    *rs = NULL;
    return rlog_rs_open(dir, &o, rs, rep);
}

rlog_rs *tu_rs_open(const char *dir, uint64_t seg, unsigned flags, rlog_sync_mode mode)
{
    rlog_rs *rs;
    rlog_rs_open_report rep;
    int rv = tu_rs_try_open(dir, NULL, seg, flags, mode, &rs, &rep);
    if (rv)
        fail_msg("open %s: %s: %s", dir, rlog_errname(rv), rep.message);
    return rs;
}

const char *tu_rs_put_snapshot(rlog_rs *rs, uint64_t index, uint64_t term, const char *conf,
                               const void *data, size_t len, unsigned trailing)
{
    rlog_rs_buf b = {data, len};
    rlog_rs_snapshot_desc d = {.index = index,
                               .term = term,
                               .conf_index = 1,
                               .conf = conf,
                               .conf_len = strlen(conf),
                               .bufs = &b,
                               .n_bufs = 1,
                               .trailing = trailing};
    assert_int_equal(rlog_rs_snapshot_put(rs, &d), 0);
    rlog_rs_snapshot s;
    assert_int_equal(rlog_rs_snapshot_get(rs, &s), 0);
    static char name[256];
    snprintf(name, sizeof name, "%s", s.file);
    rlog_rs_snapshot_release(&s);
    return name;
}

void tu_rs_expect_same_entries(rlog_rs *a, uint64_t a_first, uint64_t a_last, rlog_rs *b,
                               uint64_t b_first, uint64_t b_last)
{
    rlog_rs_entries ea, eb;
    assert_int_equal(rlog_rs_entries_read(a, a_first, a_last, 0, &ea), 0);
    assert_int_equal(rlog_rs_entries_read(b, b_first, b_last, 0, &eb), 0);
    assert_int_equal(ea.n, eb.n);
    for (size_t i = 0; i < ea.n; i++) {
        assert_int_equal(ea.v[i].term, eb.v[i].term);
        assert_int_equal(ea.v[i].len, eb.v[i].len);
        assert_memory_equal(ea.v[i].data, eb.v[i].data, ea.v[i].len);
    }
    rlog_rs_entries_free(&ea);
    rlog_rs_entries_free(&eb);
}

rlog_log *tu_open_log(const char *dir, rlog_vfs *vfs, uint64_t seg, rlog_sync_mode mode,
                      unsigned flags, rlog_open_report *rep)
{
    rlog_open_report r;
    rlog_open_report *rp = rep ? rep : &r;
    rlog_log *l = NULL;
    int rv = tu_try_open(dir, vfs, seg, mode, flags, &l, rp);
    if (rv)
        fail_msg("open %s: %s: %s", dir, rlog_errname(rv), rp->message);
    return l;
}

uint64_t tu_sim_seeds(uint64_t first, uint64_t n, const char *workload, rlog_sim_result *sum)
{
    unsigned mask = 0;
    assert_int_equal(rlog_sim_parse_workloads(workload, &mask), 0);
    memset(sum, 0, sizeof *sum);
    uint64_t failed = 0;
    for (uint64_t seed = first; seed < first + n; seed++) {
        rlog_sim_options o;
        rlog_sim_options_init(&o, seed);
        o.workloads = mask;
        rlog_sim_result r;
        assert_int_equal(rlog_sim_run(&o, &r), 0);
        if (r.failed) {
            printf("FAIL seed=%" PRIu64 ": %s\n  replay: rlog sim --seed %" PRIu64
                   " --workload %s --trace\n",
                   seed, r.message, seed, workload);
            failed++;
        }
        rlog_sim_result_add(sum, &r);
    }
    return failed;
}

static void tu_count_lines(void *data, const char *line)
{
    (void)line;
    (*(uint64_t *)data)++;
}

uint64_t tu_sim_run_thrice(rlog_sim_options *o, rlog_sim_result *r)
{
    uint64_t lines1 = 0, lines2 = 0;
    o->trace = tu_count_lines;
    o->trace_data = &lines1;
    rlog_sim_result b, c;
    assert_int_equal(rlog_sim_run(o, r), 0);
    o->trace_data = &lines2;
    assert_int_equal(rlog_sim_run(o, &b), 0);
    o->trace = NULL; /* tracing must not change the run */
    assert_int_equal(rlog_sim_run(o, &c), 0);
    if (r->trace_hash != b.trace_hash || lines1 != lines2 || c.trace_hash != r->trace_hash)
        fail_msg("seed %" PRIu64 " is not deterministic: %016" PRIx64 " (%" PRIu64
                 " lines) vs %016" PRIx64 " (%" PRIu64 " lines), untraced %016" PRIx64,
                 o->seed, r->trace_hash, lines1, b.trace_hash, lines2, c.trace_hash);
    return lines1;
}

int tu_dir_setup(void **state)
{
    tu_dir_fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp("fx");
    *state = f;
    return 0;
}

int tu_dir_teardown(void **state)
{
    tu_dir_fx *f = *state;
    tu_rmdir_r(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

int tu_fault_setup(void **state)
{
    if (tu_dir_setup(state))
        return -1;
    tu_dir_fx *f = *state;
    f->vfs = rlog_vfs_fault_new(rlog_vfs_posix());
    return f->vfs ? 0 : -1;
}

int tu_fault_teardown(void **state)
{
    tu_dir_fx *f = *state;
    if (f->vfs)
        f->vfs->destroy(f->vfs);
    return tu_dir_teardown(state);
}

/* ---- the rlog command-line tool ---- */

const char *tu_rlog_bin(void)
{
    const char *bin = getenv("RLOG_BIN");
    return bin && *bin ? bin : "./rlog";
}

/* The command is sized to fit: a checkout in a deep directory makes every
 * path in it long, and a script of a dozen paths cut at a fixed size runs
 * something else than the test meant. */
int tu_rlog(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(k >= 0);
    char *args = malloc((size_t)k + 1);
    assert_non_null(args);
    va_start(ap, fmt);
    vsnprintf(args, (size_t)k + 1, fmt, ap);
    va_end(ap);
    size_t clen = strlen(tu_rlog_bin()) + (size_t)k + 16;
    char *cmd = malloc(clen);
    assert_non_null(cmd);
    snprintf(cmd, clen, "%s %s 2>&1", tu_rlog_bin(), args);
    FILE *p = popen(cmd, "r");
    free(cmd);
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st))
        fail_msg("rlog %s: did not exit normally", args);
    free(args);
    if (out)
        *out = buf;
    else
        free(buf);
    return WEXITSTATUS(st);
}

int tu_log_setup(void **state)
{
    tu_log_fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp("cli");
    f->log = strdup(tu_path(f->dir, "log"));
    *state = f;
    return 0;
}

int tu_log_teardown(void **state)
{
    tu_log_fx *f = *state;
    tu_rmdir_r(f->dir);
    free(f->dir);
    free(f->log);
    free(f);
    return 0;
}

char *tu_rlog_write(const char *log, int count, int size, int seed)
{
    char *out;
    int rc = tu_rlog(&out, "write %s --count %d --size %d --batch 4 --seed %d --segment-size 64K",
                     log, count, size, seed);
    if (rc)
        fail_msg("rlog write exited %d: %s", rc, out);
    return out;
}

void tu_expect(const char *out, const char *needle)
{
    if (!strstr(out, needle))
        fail_msg("output lacks '%s':\n%s", needle, out);
}

const char *tu_last_line(const char *s)
{
    static char line[1024];
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n')
        n--;
    size_t b = n;
    while (b && s[b - 1] != '\n')
        b--;
    snprintf(line, sizeof line, "%.*s", (int)(n - b), s + b);
    return line;
}

size_t tu_lines_starting(const char *s, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (const char *p = s; *p;) {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

bool tu_garble_from(const char *path, uint64_t off)
{
    uint8_t *d;
    size_t n;
    tu_read_file(path, (void **)&d, &n);
    size_t end = n;
    while (end > off && d[end - 1] == 0)
        end--;
    for (size_t i = off; i < end; i++)
        d[i] ^= 0xa5;
    tu_write_file(path, d, n);
    free(d);
    return end > off;
}
