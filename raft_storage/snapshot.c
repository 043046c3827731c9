/*
 * Snapshots: the data lives in its own file in the store's directory,
 * "snapshot-<index %016x>-<term %016x>.snap", written as
 * "<name>.tmp" → fsync → rename → directory fsync; CRC32C over the whole
 * file. The marker record that names it (with size and CRC) makes it the
 * current snapshot; until the marker is durable the file is an orphan that
 * the next open removes. See docs/raft_storage.md, "Snapshots".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/format.h"
#include "os/bytes.h"
#include "os/install.h"
#include "os/sync.h"
#include "raft_storage/rs_internal.h"

#define SNAP_PREFIX "snapshot-"
#define SNAP_SUFFIX ".snap"
#define SNAP_TMP    ".tmp"

static void snap_name(uint64_t index, uint64_t term, char *buf, size_t cap)
{
    snprintf(buf, cap, SNAP_PREFIX "%016" PRIx64 "-%016" PRIx64 SNAP_SUFFIX, index, term);
}

/* Parses our snapshot file names (and their temp names). */
static bool parse_snap_name(const char *name, uint64_t *index, bool *temp)
{
    size_t pl = strlen(SNAP_PREFIX), n = strlen(name);
    size_t base = pl + 16 + 1 + 16 + strlen(SNAP_SUFFIX);
    uint64_t term;
    if (n != base && n != base + strlen(SNAP_TMP))
        return false;
    if (strncmp(name, SNAP_PREFIX, pl) != 0 || !rlg_get_hex16(name + pl, index) ||
        name[pl + 16] != '-' || !rlg_get_hex16(name + pl + 17, &term) ||
        strncmp(name + pl + 33, SNAP_SUFFIX, strlen(SNAP_SUFFIX)) != 0)
        return false;
    *temp = n != base;
    return !*temp || strcmp(name + base, SNAP_TMP) == 0;
}

static void path_of(const rlog_rs *rs, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", rs->dir, name);
}

/* ---------------------------------------------------------------- jobs */

/* A snapshot file written or read away from the handle's thread: what it
 * needs of the handle is copied in at rlog_rs_snapshot_prepare/_open, so
 * rlog_rs_snapshot_write/_load touch only the job and the vfs. */
struct rlog_rs_snap_job {
    rlog_vfs *vfs;
    char *dir;
    char name[RLG_RS_NAME_MAX + 1];
    /* put: the descriptor (conf and the bufs array copied; the data
     * borrowed until rlog_rs_snapshot_write returns) and what was written */
    rlog_rs_snapshot_desc d;
    bool written;
    uint64_t size;
    uint32_t crc;
    /* load: the file opened at rlog_rs_snapshot_open and its marker */
    rlog_file *f;
    rlog_rs_snapshot meta;
    uint64_t lsn;
    char errmsg[512];
};

static void path_of_job(const rlog_rs_snap_job *j, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", j->dir, name);
}

static int job_fail(rlog_rs_snap_job *j, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int job_fail(rlog_rs_snap_job *j, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errmsg, sizeof j->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

static int job_vfs_fail(rlog_rs_snap_job *j, int e, const char *what, const char *path)
{
    char eb[128];
    return job_fail(j, rlog_from_errno(e), "snapshot: %s %s: %s", what, path,
                    strerror_r(e, eb, sizeof eb));
}

static int vfs_fail(rlog_rs *rs, int e, const char *what, const char *path)
{
    char eb[128];
    return rlg_rs_fail(rs, rlog_from_errno(e), "snapshot: %s %s: %s", what, path,
                       strerror_r(e, eb, sizeof eb));
}

static rlog_rs_snap_job *job_new(rlog_rs *rs)
{
    rlog_rs_snap_job *j = calloc(1, sizeof *j);
    if (j && !(j->dir = strdup(rs->dir))) {
        free(j);
        j = NULL;
    }
    if (j)
        j->vfs = rs->vfs;
    return j;
}

void rlog_rs_snapshot_job_free(rlog_rs_snap_job *j)
{
    if (!j)
        return;
    if (j->written) { /* never committed: an orphan nothing refers to */
        char path[4096];
        path_of_job(j, j->name, path, sizeof path);
        j->vfs->unlink(j->vfs, path);
        rlg_os_sync_dir(j->vfs, j->dir);
    }
    if (j->f)
        j->vfs->close(j->vfs, j->f);
    free((void *)j->d.conf);
    free((void *)j->d.bufs);
    rlog_rs_snapshot_release(&j->meta);
    free(j->dir);
    free(j);
}

const char *rlog_rs_snapshot_job_errmsg(const rlog_rs_snap_job *j)
{
    return j->errmsg;
}

/* ---------------------------------------------------------------- put */

/* Writes the data to `tmp`; j->size and j->crc describe it. On failure
 * tmp is gone. */
static int write_tmp(rlog_rs_snap_job *j, const char *tmp, rlog_file **out)
{
    rlog_vfs *v = j->vfs;
    const rlog_rs_snapshot_desc *d = &j->d;
    rlog_file *f = NULL;
    v->unlink(v, tmp); /* a leftover of an earlier failed put */
    int e = v->open(v, tmp, RLOG_VFS_CREATE | RLOG_VFS_EXCL | RLOG_VFS_RDWR, &f);
    if (e)
        return job_vfs_fail(j, e, "create", tmp);
    uint64_t off = 0;
    uint32_t state = 0xffffffffu;
    for (unsigned i = 0; i < d->n_bufs && !e; i++) {
        size_t done = 0;
        if (d->bufs[i].len == 0)
            continue;
        e = v->pwrite(v, f, d->bufs[i].base, d->bufs[i].len, off, &done);
        if (!e && done != d->bufs[i].len)
            e = EIO;
        state = rlg_crc32c_update(state, d->bufs[i].base, d->bufs[i].len);
        off += d->bufs[i].len;
    }
    j->size = off;
    j->crc = ~state;
    if (e) {
        rlg_install_discard(v, j->dir, f, tmp);
        return job_vfs_fail(j, e, "write", tmp);
    }
    *out = f;
    return 0;
}

/* temp → fsync → rename → directory fsync (os/install.h). There is no
 * handle to poison: a failed directory fsync after the rename removes the
 * file again (nothing refers to it yet) and the put fails. */
int rlog_rs_snapshot_write(rlog_rs_snap_job *j)
{
    char path[4096], tmp[4096 + 8];
    path_of_job(j, j->name, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s" SNAP_TMP, path);
    rlog_file *f = NULL;
    int rv = write_tmp(j, tmp, &f);
    if (rv)
        return rv;
    rlg_os_fail fail, undo;
    rv = rlg_install(j->vfs, j->dir, f, tmp, path, RLG_INSTALL_FSYNC, &fail);
    if (rv == RLG_OS_FATAL)
        (void)rlg_unlink_synced(j->vfs, j->dir, path, &undo);
    if (rv)
        return job_vfs_fail(j, fail.err, fail.what, fail.path);
    j->written = true;
    return 0;
}

/* Deletes the segments that hold only records the state no longer needs:
 * everything before the batch of the first entry (or before the marker
 * when no entry remains). A failure here loses nothing; it is logged and
 * the next put retries. */
static void compact_log(rlog_rs *rs)
{
    if (rlg_rs_delete_before(rs, rs->st.ix.first, NULL) != 0) {
        rs->prefix_delete_errors++;
        rlg_rs_logf(rs, RLOG_LEVEL_WARN, "snapshot: deleting segments before index %" PRIu64 ": %s",
                    rs->st.ix.first, rlog_errmsg(rs->log));
    }
}

static int put_marker(rlog_rs *rs, const rlog_rs_snapshot_desc *d, const char *name, uint64_t size,
                      uint32_t crc, uint64_t *lsn)
{
    rlg_snap_view v = {
        .index = d->index,
        .term = d->term,
        .conf_index = d->conf_index,
        .size = size,
        .crc = crc,
        .trailing = d->trailing,
        .name_len = (uint16_t)strlen(name),
        .flags =
            rlg_state_snap_replaces(&rs->st, d->index, d->term, d->trailing) ? RLG_SNAP_REPLACE : 0,
        .conf_len = d->conf_len,
        .name = name,
        .conf = d->conf,
    };
    size_t len = rlg_snap_size(v.name_len, v.conf_len);
    int rv = rlg_rs_enc_reserve(rs, len);
    if (rv)
        return rv;
    rlg_snap_encode(&v, rs->enc);
    rlg_rec r;
    char why[200];
    if ((rv = rlg_rec_decode(RLOG_RS_TYPE_SNAPSHOT, rs->enc, len, &r, why, sizeof why)) != 0 ||
        (rv = rlg_state_check(&rs->st, &r, why, sizeof why)) != 0)
        return rlg_rs_fail(rs, rv, "snapshot: %s", why);
    return rlg_rs_append_apply(rs, RLOG_RS_TYPE_SNAPSHOT, RLOG_RS_SLOT_SNAPSHOT, rs->enc, len, lsn);
}

static int check_desc(rlog_rs *rs, const rlog_rs_snapshot_desc *d, const char *name)
{
    if (!d || d->index == 0 || d->term == 0 || (d->n_bufs && !d->bufs) || (d->conf_len && !d->conf))
        return rlg_rs_fail(rs, RLOG_EINVAL, "snapshot: bad descriptor");
    if (rs->st.snap.has && d->index <= rs->st.snap.v.index)
        return rlg_rs_fail(rs, RLOG_ESTALE,
                           "snapshot: index %" PRIu64 " is not newer than the current %" PRIu64,
                           d->index, rs->st.snap.v.index);
    if (rlg_snap_size(strlen(name), d->conf_len) > rs->rec_max)
        return rlg_rs_fail(rs, RLOG_ETOOBIG,
                           "snapshot: configuration of %" PRIu32 " bytes exceeds the record limit",
                           d->conf_len);
    return 0;
}

int rlog_rs_snapshot_prepare(rlog_rs *rs, const rlog_rs_snapshot_desc *d, rlog_rs_snap_job **out)
{
    *out = NULL;
    int rv = rlg_rs_writable(rs);
    if (rv)
        return rv;
    char name[RLG_RS_NAME_MAX + 1];
    if (d)
        snap_name(d->index, d->term, name, sizeof name);
    if ((rv = check_desc(rs, d, name)) != 0)
        return rv;
    rlog_rs_snap_job *j = job_new(rs);
    void *conf = j ? malloc(d->conf_len ? d->conf_len : 1) : NULL;
    rlog_rs_buf *bufs = conf ? calloc(d->n_bufs ? d->n_bufs : 1, sizeof *bufs) : NULL;
    if (!bufs) {
        free(conf);
        rlog_rs_snapshot_job_free(j);
        return rlg_rs_fail(rs, RLOG_ENOMEM, "snapshot: out of memory");
    }
    if (d->conf_len)
        memcpy(conf, d->conf, d->conf_len);
    if (d->n_bufs)
        memcpy(bufs, d->bufs, d->n_bufs * sizeof *bufs);
    j->d = *d;
    j->d.conf = conf;
    j->d.bufs = bufs;
    snprintf(j->name, sizeof j->name, "%s", name);
    *out = j;
    return 0;
}

int rlog_rs_snapshot_commit(rlog_rs *rs, rlog_rs_snap_job *j, int write_status)
{
    int rv = write_status;
    if (rv) {
        rv = rlg_rs_fail(rs, rv, "%s", j->errmsg);
        rlog_rs_snapshot_job_free(j);
        return rv;
    }
    uint64_t lsn = 0;
    if ((rv = rlg_rs_writable(rs)) != 0 || (rv = check_desc(rs, &j->d, j->name)) != 0 ||
        (rv = put_marker(rs, &j->d, j->name, j->size, j->crc, &lsn)) != 0) {
        /* a marker that may be durable (poisoned log, index failure) keeps
         * its file: the next open decides */
        if (rv == RLOG_EPOISONED || atomic_load(&rs->failed))
            j->written = false;
        rlog_rs_snapshot_job_free(j);
        return rv;
    }
    j->written = false; /* the marker names it now */
    rlog_rs_snapshot_job_free(j);
    rs->snap_lsn = lsn;
    compact_log(rs);
    uint64_t t, s;
    if (rlg_rs_snap_cleanup(rs, false, &t, &s))
        rlg_rs_logf(rs, RLOG_LEVEL_WARN, "%s", rs->errmsg);
    rs->errmsg[0] = '\0';
    return 0;
}

int rlog_rs_snapshot_put(rlog_rs *rs, const rlog_rs_snapshot_desc *d)
{
    rlog_rs_snap_job *j = NULL;
    int rv = rlog_rs_snapshot_prepare(rs, d, &j);
    if (rv)
        return rv;
    return rlog_rs_snapshot_commit(rs, j, rlog_rs_snapshot_write(j));
}

/* ---------------------------------------------------------------- cleanup */

typedef struct old_snap {
    uint64_t index;
    char *name;
} old_snap;

static int cmp_old_desc(const void *a, const void *b)
{
    uint64_t x = ((const old_snap *)a)->index, y = ((const old_snap *)b)->index;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int remove_name(rlog_rs *rs, const char *name, uint64_t *count)
{
    char path[4096];
    path_of(rs, name, path, sizeof path);
    int e = rs->vfs->unlink(rs->vfs, path);
    if (e && e != ENOENT)
        return vfs_fail(rs, e, "remove", path);
    (*count)++;
    return 0;
}

/* Classifies one directory entry: removes temps and orphans, collects
 * older snapshots into olds. */
static int classify(rlog_rs *rs, const char *nm, bool temps, old_snap *olds, size_t *nold,
                    uint64_t *tr, uint64_t *sr)
{
    uint64_t index;
    bool temp;
    if (!parse_snap_name(nm, &index, &temp))
        return 0;
    const rlg_snap *cur = &rs->st.snap;
    if (temp)
        return temps ? remove_name(rs, nm, tr) : 0;
    if (cur->has && strcmp(nm, cur->name) == 0)
        return 0;
    if (!cur->has || index >= cur->v.index)
        return remove_name(rs, nm, sr); /* orphan of a put whose marker never made it */
    olds[*nold].index = index;
    olds[*nold].name = (char *)nm;
    (*nold)++;
    return 0;
}

int rlg_rs_snap_cleanup(rlog_rs *rs, bool temps, uint64_t *tr, uint64_t *sr)
{
    char **names = NULL;
    size_t n = 0, nold = 0;
    *tr = *sr = 0;
    int e = rs->vfs->list(rs->vfs, rs->dir, &names, &n);
    if (e)
        return vfs_fail(rs, e, "list", rs->dir);
    int rv = 0;
    old_snap *olds = calloc(n ? n : 1, sizeof *olds);
    if (!olds) {
        rv = rlg_rs_fail(rs, RLOG_ENOMEM, "snapshot cleanup: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !rv; i++)
        rv = classify(rs, names[i], temps, olds, &nold, tr, sr);
    qsort(olds, nold, sizeof *olds, cmp_old_desc);
    size_t keep_old = rs->opts.snapshots_keep - 1;
    for (size_t i = keep_old; i < nold && !rv; i++)
        rv = remove_name(rs, olds[i].name, sr);
    if (!rv && *tr + *sr > 0 && (e = rlg_os_sync_dir(rs->vfs, rs->dir)) != 0)
        rv = vfs_fail(rs, e, "fsync directory", rs->dir);
out:
    free(olds);
    rlog_vfs_free_names(names, n);
    return rv;
}

/* ---------------------------------------------------------------- get */

#define SNAP_CHUNK (1u << 20)

/* The current snapshot's file as its marker describes it. */
typedef struct snap_ref {
    rlog_vfs *vfs;
    const char *path;
    uint64_t size, lsn;
    uint32_t crc;
} snap_ref;

static int msg_fail(char *msg, size_t cap, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int msg_fail(char *msg, size_t cap, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return err;
}

static int open_ref(const snap_ref *r, rlog_file **f, char *msg, size_t cap)
{
    int e = r->vfs->open(r->vfs, r->path, RLOG_VFS_RDONLY, f);
    char eb[128];
    if (e == ENOENT)
        return msg_fail(msg, cap, RLOG_ECORRUPT,
                        "snapshot file %s named by the marker (LSN %" PRIu64 ") is missing",
                        r->path, r->lsn);
    if (e)
        return msg_fail(msg, cap, rlog_from_errno(e), "snapshot: open %s: %s", r->path,
                        strerror_r(e, eb, sizeof eb));
    return 0;
}

/* Reads the open file f and checks it against its marker (size, CRC32C):
 * RLOG_ECORRUPT naming the file, the marker's LSN and what differs; the
 * message goes to msg. With `data`, the whole file is returned in *data
 * (malloc'd); without, it is streamed through a bounded buffer. Touches
 * no handle: any thread may call it. */
static int check_file(const snap_ref *r, rlog_file *f, void **data, char *msg, size_t cap_msg)
{
    rlog_vfs *v = r->vfs;
    uint64_t size = 0;
    char eb[128];
    int rv = 0, e;
    uint8_t *buf = NULL;
    size_t cap = 0;
    if ((e = v->size(v, f, &size)) != 0)
        rv = msg_fail(msg, cap_msg, rlog_from_errno(e), "snapshot: size of %s: %s", r->path,
                      strerror_r(e, eb, sizeof eb));
    else if (size != r->size)
        rv = msg_fail(msg, cap_msg, RLOG_ECORRUPT,
                      "snapshot file %s has %" PRIu64 " bytes; the marker (LSN %" PRIu64
                      ") says %" PRIu64,
                      r->path, size, r->lsn, r->size);
    else if (size > SIZE_MAX - 1)
        rv = msg_fail(msg, cap_msg, RLOG_ENOMEM, "snapshot: out of memory for %" PRIu64 " bytes",
                      size);
    if (!rv) {
        cap = data ? (size_t)size : (size < SNAP_CHUNK ? (size_t)size : SNAP_CHUNK);
        if (!(buf = malloc(cap ? cap : 1)))
            rv = msg_fail(msg, cap_msg, RLOG_ENOMEM, "snapshot: out of memory for %zu bytes", cap);
    }
    uint32_t state = 0xffffffffu;
    for (uint64_t off = 0; !rv && off < size;) {
        size_t n = size - off < cap ? (size_t)(size - off) : cap, done = 0;
        uint8_t *p = data ? buf + off : buf;
        if ((e = v->pread(v, f, p, n, off, &done)) != 0)
            rv = msg_fail(msg, cap_msg, rlog_from_errno(e), "snapshot: read %s: %s", r->path,
                          strerror_r(e, eb, sizeof eb));
        else if (done != n)
            rv = msg_fail(msg, cap_msg, RLOG_ECORRUPT,
                          "snapshot file %s is short at offset %" PRIu64, r->path, off + done);
        else
            state = rlg_crc32c_update(state, p, n);
        off += n;
    }
    if (!rv && ~state != r->crc)
        rv = msg_fail(msg, cap_msg, RLOG_ECORRUPT,
                      "snapshot file %s fails its checksum (CRC32C %08" PRIx32
                      ", the marker (LSN %" PRIu64 ") says %08" PRIx32 ")",
                      r->path, ~state, r->lsn, r->crc);
    if (!rv && data)
        *data = buf;
    else
        free(buf);
    return rv;
}

static void current_ref(rlog_rs *rs, char *path, size_t cap, snap_ref *r)
{
    const rlg_snap *cur = &rs->st.snap;
    path_of(rs, cur->name, path, cap);
    *r = (snap_ref){rs->vfs, path, cur->v.size, rs->snap_lsn, cur->v.crc};
}

int rlg_rs_snap_verify(rlog_rs *rs)
{
    if (!rs->st.snap.has)
        return 0;
    char path[4096], msg[512];
    snap_ref r;
    current_ref(rs, path, sizeof path, &r);
    rlog_file *f = NULL;
    int rv = open_ref(&r, &f, msg, sizeof msg);
    if (!rv) {
        rv = check_file(&r, f, NULL, msg, sizeof msg);
        rs->vfs->close(rs->vfs, f);
    }
    return rv ? rlg_rs_fail(rs, rv, "%s", msg) : 0;
}

int rlog_rs_snapshot_open(rlog_rs *rs, rlog_rs_snap_job **out)
{
    *out = NULL;
    const rlg_snap *cur = &rs->st.snap;
    if (!cur->has)
        return rlg_rs_fail(rs, RLOG_ENOTFOUND, "no snapshot");
    rlog_rs_snap_job *j = job_new(rs);
    if (!j || !(j->meta.conf = malloc(cur->v.conf_len ? cur->v.conf_len : 1))) {
        rlog_rs_snapshot_job_free(j);
        return rlg_rs_fail(rs, RLOG_ENOMEM, "snapshot: out of memory");
    }
    char path[4096];
    snap_ref r;
    current_ref(rs, path, sizeof path, &r);
    /* opened now: a file removed later (a newer snapshot's cleanup) stays
     * readable through it */
    int rv = open_ref(&r, &j->f, j->errmsg, sizeof j->errmsg);
    if (rv) {
        rv = rlg_rs_fail(rs, rv, "%s", j->errmsg);
        rlog_rs_snapshot_job_free(j);
        return rv;
    }
    memcpy(j->meta.conf, cur->v.conf, cur->v.conf_len);
    j->meta.index = cur->v.index;
    j->meta.term = cur->v.term;
    j->meta.conf_index = cur->v.conf_index;
    j->meta.conf_len = cur->v.conf_len;
    j->meta.size = cur->v.size;
    j->meta.crc = cur->v.crc;
    j->meta.trailing = cur->v.trailing;
    j->lsn = rs->snap_lsn;
    snprintf(j->meta.file, sizeof j->meta.file, "%s", cur->name);
    *out = j;
    return 0;
}

int rlog_rs_snapshot_load(rlog_rs_snap_job *j, rlog_rs_snapshot *out)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    path_of_job(j, j->meta.file, path, sizeof path);
    snap_ref r = {j->vfs, path, j->meta.size, j->lsn, j->meta.crc};
    void *data = NULL;
    int rv = check_file(&r, j->f, &data, j->errmsg, sizeof j->errmsg);
    if (rv)
        return rv;
    *out = j->meta;
    out->data = data;
    memset(&j->meta, 0, sizeof j->meta); /* the conf went to out */
    return 0;
}

int rlog_rs_snapshot_get(rlog_rs *rs, rlog_rs_snapshot *out)
{
    memset(out, 0, sizeof *out);
    rlog_rs_snap_job *j = NULL;
    int rv = rlog_rs_snapshot_open(rs, &j);
    if (rv)
        return rv;
    if ((rv = rlog_rs_snapshot_load(j, out)) != 0)
        rv = rlg_rs_fail(rs, rv, "%s", j->errmsg);
    rlog_rs_snapshot_job_free(j);
    return rv;
}

void rlog_rs_snapshot_release(rlog_rs_snapshot *s)
{
    if (!s)
        return;
    free(s->data);
    free(s->conf);
    memset(s, 0, sizeof *s);
}
