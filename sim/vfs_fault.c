/* The fault-injecting vfs: wraps a base vfs and fails chosen calls, for
 * rlog's tests and for users' own (see the rlog_fault comments in
 * include/rlog/vfs.h).
 *
 * Rule semantics, precisely:
 *  - A rule matches a call when the call's op is the rule's op and the
 *    call's path contains path_contains (NULL matches every call). The path
 *    of a file operation (close, pread, pwrite, fdatasync, fsync, truncate,
 *    allocate, size) is the path the file was opened with; of lock/unlock
 *    the directory; rename matches when either `from` or `to` contains it.
 *  - Every rule counts every call it matches, from when it was added. A rule
 *    is armed for a call when it has seen more than `skip` matching calls
 *    (this one included) and has injected fewer than `times` faults
 *    (times == 0: no limit).
 *  - Of the rules armed for a call, the first added injects its fault; the
 *    others do not, and their `times` budget is not used up by it.
 *  - A faulted call does not reach the base, except: pwrite writes
 *    min(partial, len) bytes through first (partial != SIZE_MAX) and
 *    reports them in *done; close/unlock release the base handle and then
 *    return the error (vfs.h: close always releases).
 *  - err == 0 is only meaningful for RLOG_OP_PWRITE: a silent short write
 *    (returns 0 with *done = the bytes written through, 0 for SIZE_MAX).
 *
 * Thread safety: one mutex guards the rules and counters. It is never held
 * across a base call, so a slow or blocking base does not serialize others.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/vfs_fault.h"

/* Owned by the fault vfs; wraps a handle owned by the base vfs. Immutable
 * after open, so it is read without the mutex. */
struct rlog_file {
    rlog_file *base;
    char *path; /* the path it was opened with (the dir for a lock) */
};

typedef struct fault_rule {
    int id;
    rlog_fault rule;  /* rule.path_contains points to `path` */
    char *path;       /* owned copy of path_contains, or NULL */
    uint64_t seen;    /* matching calls since added */
    uint64_t faulted; /* faults this rule injected */
    struct fault_rule *next;
} fault_rule;

typedef struct fault_vfs {
    rlog_vfs pub; /* pub.impl points back to this struct */
    rlog_vfs *base;
    pthread_mutex_t mu;
    fault_rule *rules; /* in the order added */
    int next_id;
    uint64_t calls[RLOG_OP_COUNT];
    uint64_t injected;
} fault_vfs;

/* What to do with one call: `hit` false = pass it to the base. */
typedef struct fault_hit {
    int hit;
    int err;
    size_t partial;
} fault_hit;

static fault_vfs *fault_of(rlog_vfs *vfs)
{
    return vfs->impl;
}

static int fault_path_matches(const fault_rule *r, const char *p1, const char *p2)
{
    if (r->path == NULL)
        return 1;
    return (p1 != NULL && strstr(p1, r->path) != NULL) ||
           (p2 != NULL && strstr(p2, r->path) != NULL);
}

/* Counts the call and decides whether a rule fails it. */
static fault_hit fault_check(fault_vfs *fv, rlog_vfs_op op, const char *p1, const char *p2)
{
    fault_hit h = {0, 0, SIZE_MAX};
    pthread_mutex_lock(&fv->mu);
    fv->calls[op]++;
    for (fault_rule *r = fv->rules; r != NULL; r = r->next) {
        if (r->rule.op != op || !fault_path_matches(r, p1, p2))
            continue;
        r->seen++;
        int armed = r->seen > r->rule.skip && (r->rule.times == 0 || r->faulted < r->rule.times);
        if (armed && !h.hit) {
            r->faulted++;
            fv->injected++;
            h.hit = 1;
            h.err = r->rule.err;
            h.partial = r->rule.partial;
        }
    }
    pthread_mutex_unlock(&fv->mu);
    return h;
}

/* ---- the vfs table ---- */

/* Makes a wrapper handle around base handle `b`. On ENOMEM releases `b`
 * with `release` (close or unlock) so nothing leaks. */
static int fault_wrap(fault_vfs *fv, rlog_file *b, const char *path,
                      int (*release)(rlog_vfs *, rlog_file *), rlog_file **out)
{
    rlog_file *f = malloc(sizeof *f);
    char *copy = strdup(path);
    if (f == NULL || copy == NULL) {
        free(f);
        free(copy);
        release(fv->base, b);
        return ENOMEM;
    }
    f->base = b;
    f->path = copy;
    *out = f;
    return 0;
}

static void fault_unwrap_free(rlog_file *f)
{
    free(f->path);
    free(f);
}

static int fault_open(rlog_vfs *vfs, const char *path, unsigned flags, rlog_file **out)
{
    fault_vfs *fv = fault_of(vfs);
    *out = NULL;
    fault_hit h = fault_check(fv, RLOG_OP_OPEN, path, NULL);
    if (h.hit)
        return h.err;
    rlog_file *b = NULL;
    int err = fv->base->open(fv->base, path, flags, &b);
    if (err != 0)
        return err;
    return fault_wrap(fv, b, path, fv->base->close, out);
}

/* Closes or unlocks (op, through the base's release) a wrapped handle: the
 * base call is made even when a fault strikes, whose error is then the
 * answer; the wrapper is freed either way. */
static int fault_release(fault_vfs *fv, rlog_vfs_op op, rlog_file *f,
                         int (*release)(rlog_vfs *, rlog_file *))
{
    fault_hit h = fault_check(fv, op, f->path, NULL);
    int err = release(fv->base, f->base);
    fault_unwrap_free(f);
    return h.hit ? h.err : err;
}

static int fault_close(rlog_vfs *vfs, rlog_file *f)
{
    fault_vfs *fv = fault_of(vfs);
    return fault_release(fv, RLOG_OP_CLOSE, f, fv->base->close);
}

static int fault_pread(rlog_vfs *vfs, rlog_file *f, void *buf, size_t len, uint64_t off,
                       size_t *done)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_PREAD, f->path, NULL);
    if (h.hit) {
        *done = 0;
        return h.err;
    }
    return fv->base->pread(fv->base, f->base, buf, len, off, done);
}

static int fault_pwrite(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off,
                        size_t *done)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_PWRITE, f->path, NULL);
    if (!h.hit)
        return fv->base->pwrite(fv->base, f->base, buf, len, off, done);
    *done = 0;
    size_t n = h.partial == SIZE_MAX ? 0 : (h.partial < len ? h.partial : len);
    if (n > 0) {
        /* A real error from the base wins over the injected one. */
        int err = fv->base->pwrite(fv->base, f->base, buf, n, off, done);
        if (err != 0)
            return err;
    }
    return h.err;
}

static int fault_fdatasync(rlog_vfs *vfs, rlog_file *f)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_FDATASYNC, f->path, NULL);
    return h.hit ? h.err : fv->base->fdatasync(fv->base, f->base);
}

static int fault_fsync(rlog_vfs *vfs, rlog_file *f)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_FSYNC, f->path, NULL);
    return h.hit ? h.err : fv->base->fsync(fv->base, f->base);
}

static int fault_truncate(rlog_vfs *vfs, rlog_file *f, uint64_t size)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_TRUNCATE, f->path, NULL);
    return h.hit ? h.err : fv->base->truncate(fv->base, f->base, size);
}

static int fault_allocate(rlog_vfs *vfs, rlog_file *f, uint64_t off, uint64_t len)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_ALLOCATE, f->path, NULL);
    return h.hit ? h.err : fv->base->allocate(fv->base, f->base, off, len);
}

static int fault_size(rlog_vfs *vfs, rlog_file *f, uint64_t *size)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_SIZE, f->path, NULL);
    return h.hit ? h.err : fv->base->size(fv->base, f->base, size);
}

static int fault_rename(rlog_vfs *vfs, const char *from, const char *to)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_RENAME, from, to);
    return h.hit ? h.err : fv->base->rename(fv->base, from, to);
}

static int fault_unlink(rlog_vfs *vfs, const char *path)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_UNLINK, path, NULL);
    return h.hit ? h.err : fv->base->unlink(fv->base, path);
}

static int fault_mkdir(rlog_vfs *vfs, const char *path)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_MKDIR, path, NULL);
    return h.hit ? h.err : fv->base->mkdir(fv->base, path);
}

static int fault_list(rlog_vfs *vfs, const char *dir, char ***names, size_t *count)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_LIST, dir, NULL);
    if (h.hit) {
        *names = NULL;
        *count = 0;
        return h.err;
    }
    return fv->base->list(fv->base, dir, names, count);
}

static int fault_sync_dir(rlog_vfs *vfs, const char *dir)
{
    fault_vfs *fv = fault_of(vfs);
    fault_hit h = fault_check(fv, RLOG_OP_SYNC_DIR, dir, NULL);
    return h.hit ? h.err : fv->base->sync_dir(fv->base, dir);
}

static int fault_lock(rlog_vfs *vfs, const char *dir, rlog_file **lock)
{
    fault_vfs *fv = fault_of(vfs);
    *lock = NULL;
    fault_hit h = fault_check(fv, RLOG_OP_LOCK, dir, NULL);
    if (h.hit)
        return h.err;
    rlog_file *b = NULL;
    int err = fv->base->lock(fv->base, dir, &b);
    if (err != 0)
        return err;
    return fault_wrap(fv, b, dir, fv->base->unlock, lock);
}

static int fault_unlock(rlog_vfs *vfs, rlog_file *lock)
{
    fault_vfs *fv = fault_of(vfs);
    return fault_release(fv, RLOG_OP_UNLOCK, lock, fv->base->unlock);
}

static void fault_free_rules(fault_rule *r)
{
    while (r != NULL) {
        fault_rule *next = r->next;
        free(r->path);
        free(r);
        r = next;
    }
}

static void fault_destroy(rlog_vfs *vfs)
{
    fault_vfs *fv = fault_of(vfs);
    fault_free_rules(fv->rules);
    pthread_mutex_destroy(&fv->mu);
    free(fv);
}

static const rlog_vfs fault_table = {
    .impl = NULL,
    .open = fault_open,
    .close = fault_close,
    .pread = fault_pread,
    .pwrite = fault_pwrite,
    .fdatasync = fault_fdatasync,
    .fsync = fault_fsync,
    .truncate = fault_truncate,
    .allocate = fault_allocate,
    .size = fault_size,
    .rename = fault_rename,
    .unlink = fault_unlink,
    .mkdir = fault_mkdir,
    .list = fault_list,
    .sync_dir = fault_sync_dir,
    .lock = fault_lock,
    .unlock = fault_unlock,
    .destroy = fault_destroy,
};

/* ---- the control functions ---- */

rlog_vfs *rlog_vfs_fault_new(rlog_vfs *base)
{
    fault_vfs *fv = calloc(1, sizeof *fv);
    if (fv == NULL)
        return NULL;
    if (pthread_mutex_init(&fv->mu, NULL) != 0) {
        free(fv);
        return NULL;
    }
    fv->pub = fault_table;
    fv->pub.impl = fv;
    fv->base = base;
    fv->next_id = 1;
    return &fv->pub;
}

/* Besides the documented -ENOMEM, returns -EINVAL for a rule that cannot be
 * injected (unknown op, negative err, err == 0 on an op other than pwrite). */
int rlog_vfs_fault_add(rlog_vfs *vfs, const rlog_fault *fault)
{
    fault_vfs *fv = fault_of(vfs);
    if ((unsigned)fault->op >= RLOG_OP_COUNT || fault->err < 0 ||
        (fault->err == 0 && fault->op != RLOG_OP_PWRITE))
        return -EINVAL;
    fault_rule *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    if (fault->path_contains != NULL) {
        r->path = strdup(fault->path_contains);
        if (r->path == NULL) {
            free(r);
            return -ENOMEM;
        }
    }
    r->rule = *fault;
    r->rule.path_contains = r->path;

    pthread_mutex_lock(&fv->mu);
    r->id = fv->next_id++;
    fault_rule **tail = &fv->rules;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = r;
    int id = r->id;
    pthread_mutex_unlock(&fv->mu);
    return id;
}

void rlog_vfs_fault_remove(rlog_vfs *vfs, int id)
{
    fault_vfs *fv = fault_of(vfs);
    fault_rule *gone = NULL;
    pthread_mutex_lock(&fv->mu);
    for (fault_rule **p = &fv->rules; *p != NULL; p = &(*p)->next) {
        if ((*p)->id == id) {
            gone = *p;
            *p = gone->next;
            gone->next = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&fv->mu);
    fault_free_rules(gone);
}

void rlog_vfs_fault_clear(rlog_vfs *vfs)
{
    fault_vfs *fv = fault_of(vfs);
    pthread_mutex_lock(&fv->mu);
    fault_rule *all = fv->rules;
    fv->rules = NULL;
    pthread_mutex_unlock(&fv->mu);
    fault_free_rules(all);
}

uint64_t rlog_vfs_fault_calls(rlog_vfs *vfs, rlog_vfs_op op)
{
    fault_vfs *fv = fault_of(vfs);
    if ((unsigned)op >= RLOG_OP_COUNT)
        return 0;
    pthread_mutex_lock(&fv->mu);
    uint64_t n = fv->calls[op];
    pthread_mutex_unlock(&fv->mu);
    return n;
}

uint64_t rlog_vfs_fault_injected(rlog_vfs *vfs)
{
    fault_vfs *fv = fault_of(vfs);
    pthread_mutex_lock(&fv->mu);
    uint64_t n = fv->injected;
    pthread_mutex_unlock(&fv->mu);
    return n;
}
