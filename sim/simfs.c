/*
 * The simulated file system and environment: an in-memory rlog_vfs with a
 * volatile page cache, crash events and fault injection, and an rlog_env
 * with a virtual clock. The model and the fault classes are specified in
 * include/rlog/sim.h; this file follows it.
 *
 * State. Inodes live in fs->inodes in creation order (every walk that draws
 * random numbers goes in that order, never in pointer order). A file inode
 * holds `vol` (what reads see), `dur` (what is on the simulated disk) and
 * `pend`, the operations applied to `vol` but not yet to `dur`. A directory
 * inode holds `vdir` and `ddir`, its volatile and durable entries;
 * fs->dirops holds the directory operations applied to some `vdir` but not
 * yet to `ddir`, in the order they were made. Inodes are reclaimed by a
 * mark-and-sweep (fs_gc) over both namespaces, the pending directory
 * operations and the live handles.
 *
 * Handles carry the generation of the file system they were opened in;
 * every crash bumps fs->gen, so a handle from before a crash is recognised
 * without touching its inode (which may be gone). Handles stay on
 * fs->handles until closed or until destroy.
 */
#include "rlog/sim.h"
#include "sim/driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIMFS_MAGIC     0x53494d4648444c45ull /* handle marker */
#define SIMFS_DEAD      0x444541444844444cull /* freed-handle marker */
#define SIMFS_MAX_FILE  (1ull << 32)          /* EFBIG beyond */
#define SIMFS_MAX_PATH  4096
#define SIMFS_MAX_DEPTH 128

enum { STREAM_FAULT = 1, STREAM_CRASH = 2, STREAM_ENV = 3 };

typedef struct sim_inode sim_inode;

typedef struct sim_bytes {
    uint8_t *p;
    size_t size, cap;
} sim_bytes;

typedef struct sim_entry {
    char *name;
    sim_inode *ino;
} sim_entry;

typedef struct sim_dir {
    sim_entry *v;
    size_t n, cap;
} sim_dir;

typedef enum sim_pend_kind { PEND_WRITE, PEND_SETSIZE, PEND_EXTEND } sim_pend_kind;

/* One unsynced file operation. */
typedef struct sim_pend {
    sim_pend_kind kind;
    uint64_t off;  /* WRITE: where the data lands on disk; SETSIZE/EXTEND: the size */
    uint64_t len;  /* WRITE: bytes of data (0 for a lost write) */
    uint64_t end;  /* WRITE: the size the file grows to at least */
    uint8_t *data; /* WRITE: len bytes */
} sim_pend;

struct sim_inode {
    uint64_t id;
    bool is_dir;
    bool mark;
    /* files */
    sim_bytes vol, dur;
    sim_pend *pend;
    size_t npend, cappend;
    uint64_t *latent; /* unreadable sector numbers, sorted */
    size_t nlatent, caplatent;
    uint64_t reserved; /* bytes reserved by allocate() */
    /* directories */
    sim_dir vdir, ddir;
    rlog_file *lock_holder;
};

typedef enum sim_dirop_kind { DIROP_CREATE, DIROP_UNLINK, DIROP_RENAME } sim_dirop_kind;

/* One unsynced directory operation. CREATE and UNLINK: name_a in dir_a.
 * RENAME: dir_a/name_a -> dir_b/name_b (dir_b NULL when it is dir_a). */
typedef struct sim_dirop {
    sim_dirop_kind kind;
    sim_inode *ino;
    sim_inode *dir_a, *dir_b;
    char *name_a, *name_b;
    bool synced_a, synced_b;
} sim_dirop;

struct rlog_file {
    uint64_t magic;
    uint64_t gen;
    rlog_file *prev, *next;
    sim_inode *ino; /* the file, or the locked directory */
    unsigned flags;
    bool is_lock;
    char *path;
};

typedef struct sim_sched {
    rlog_simfs_fault fault;
    rlog_vfs_op op;
    uint64_t nth;
} sim_sched;

typedef struct simfs {
    rlog_vfs vfs;
    rlog_env env;
    pthread_mutex_t mu;
    rlog_simfs_config cfg;
    rlog_sim_rng fault_rng, crash_rng, env_rng;
    uint64_t gen;
    uint64_t now_ns;
    uint64_t next_id;
    uint64_t hash;
    sim_inode *root;
    sim_inode **inodes;
    size_t ninodes, capinodes;
    sim_dirop *dirops;
    size_t ndirops, capdirops;
    rlog_file *handles;
    uint64_t calls[RLOG_OP_COUNT];
    uint64_t counts[RLOG_SIMFS_FAULT_COUNT];
    uint32_t ppm[RLOG_SIMFS_FAULT_COUNT][RLOG_OP_COUNT];
    sim_sched *sched;
    size_t nsched, capsched;
    bool faults_on;
    bool halt_armed; /* the process "dies" after halt_left more calls */
    uint64_t halt_left;
    rlog_simfs_trace_fn trace_fn;
    void *trace_data;
} simfs;

typedef struct sim_path {
    char buf[SIMFS_MAX_PATH];
    const char *comp[SIMFS_MAX_DEPTH];
    size_t n;
} sim_path;

static const char *const simfs_op_names[RLOG_OP_COUNT] = {
    "open", "close",  "pread",  "pwrite", "fdatasync", "fsync",    "truncate", "allocate",
    "size", "rename", "unlink", "mkdir",  "list",      "sync_dir", "lock",     "unlock",
};

static const char *const simfs_fault_names[RLOG_SIMFS_FAULT_COUNT] = {
    "eio",        "enospc",        "sync_drop",  "short_write",   "misdirect",
    "lost_write", "bitrot",        "latent",     "latent_read",   "capacity",
    "torn",       "lost_unsynced", "lost_dirop", "process_crash", "power_loss",
};

/* ---- small containers ---- */

static int simfs_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (!np)
        return ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

/* Sets the size; bytes that appear are zero. */
static int bytes_resize(sim_bytes *b, size_t size)
{
    if (size > b->size) {
        if (simfs_grow((void **)&b->p, &b->cap, size, 1))
            return ENOMEM;
        memset(b->p + b->size, 0, size - b->size);
    }
    b->size = size;
    return 0;
}

static int bytes_copy(sim_bytes *dst, const sim_bytes *src)
{
    if (simfs_grow((void **)&dst->p, &dst->cap, src->size, 1))
        return ENOMEM;
    if (src->size)
        memcpy(dst->p, src->p, src->size);
    dst->size = src->size;
    return 0;
}

static sim_entry *dir_find(sim_dir *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].name, name) == 0)
            return &d->v[i];
    return NULL;
}

static sim_inode *dir_get(sim_dir *d, const char *name)
{
    sim_entry *e = dir_find(d, name);
    return e ? e->ino : NULL;
}

static int dir_set(sim_dir *d, const char *name, sim_inode *ino)
{
    sim_entry *e = dir_find(d, name);
    if (e) {
        e->ino = ino;
        return 0;
    }
    if (simfs_grow((void **)&d->v, &d->cap, d->n + 1, sizeof *d->v))
        return ENOMEM;
    char *copy = strdup(name);
    if (!copy)
        return ENOMEM;
    d->v[d->n].name = copy;
    d->v[d->n].ino = ino;
    d->n++;
    return 0;
}

static void dir_remove(sim_dir *d, const char *name)
{
    sim_entry *e = dir_find(d, name);
    if (!e)
        return;
    size_t i = (size_t)(e - d->v);
    free(e->name);
    memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof *d->v);
    d->n--;
}

static void dir_free(sim_dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].name);
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

static int dir_copy(sim_dir *dst, const sim_dir *src)
{
    dir_free(dst);
    for (size_t i = 0; i < src->n; i++)
        if (dir_set(dst, src->v[i].name, src->v[i].ino))
            return ENOMEM;
    return 0;
}

/* ---- hashing (trace) ---- */

static uint64_t hash_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash_bytes(const void *data, size_t len)
{
    return rlg_sim_hash(data, len);
}

static void trace_mix(simfs *fs, uint64_t x)
{
    fs->hash = hash_mix(fs->hash ^ hash_mix(x + 0x9e3779b97f4a7c15ull));
}

static const char *errno_name(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case EIO:
        return "EIO";
    case ENOSPC:
        return "ENOSPC";
    case ENOENT:
        return "ENOENT";
    case EEXIST:
        return "EEXIST";
    case EBUSY:
        return "EBUSY";
    case EBADF:
        return "EBADF";
    case EISDIR:
        return "EISDIR";
    case ENOTDIR:
        return "ENOTDIR";
    case EINVAL:
        return "EINVAL";
    case ENOMEM:
        return "ENOMEM";
    case EOPNOTSUPP:
        return "EOPNOTSUPP";
    case EFBIG:
        return "EFBIG";
    case ENAMETOOLONG:
        return "ENAMETOOLONG";
    default:
        return "E?";
    }
}

/* Ends a vfs call: advances the clock, mixes the call into the trace hash
 * and reports it to the trace callback. */
static void op_end(simfs *fs, rlog_vfs_op op, const char *path, uint64_t a, uint64_t b, int err,
                   uint64_t done, const void *data, size_t len)
{
    fs->now_ns += fs->cfg.latency_ns[op] + fs->cfg.ns_per_byte * len;
    trace_mix(fs, (uint64_t)op);
    trace_mix(fs, path ? hash_bytes(path, strlen(path)) : 0);
    trace_mix(fs, a);
    trace_mix(fs, b);
    trace_mix(fs, (uint64_t)err);
    trace_mix(fs, done);
    if (data && len)
        trace_mix(fs, hash_bytes(data, len));
    if (fs->trace_fn) {
        char line[SIMFS_MAX_PATH + 160];
        snprintf(line, sizeof line, "%s %s %llu %llu -> %s done=%llu", simfs_op_names[op],
                 path ? path : "-", (unsigned long long)a, (unsigned long long)b, errno_name(err),
                 (unsigned long long)done);
        fs->trace_fn(fs->trace_data, line);
    }
}

static void event_trace(simfs *fs, const char *what)
{
    trace_mix(fs, hash_bytes(what, strlen(what)));
    for (int i = 0; i < RLOG_SIMFS_FAULT_COUNT; i++)
        trace_mix(fs, fs->counts[i]);
    if (fs->trace_fn) {
        char line[256];
        snprintf(line, sizeof line, "%s lost_unsynced=%llu torn=%llu lost_dirop=%llu", what,
                 (unsigned long long)fs->counts[RLOG_SIMFS_FAULT_LOST_UNSYNCED],
                 (unsigned long long)fs->counts[RLOG_SIMFS_FAULT_TORN],
                 (unsigned long long)fs->counts[RLOG_SIMFS_FAULT_LOST_DIROP]);
        fs->trace_fn(fs->trace_data, line);
    }
}

/* ---- paths ---- */

static int path_parse(const char *path, sim_path *p)
{
    if (!path)
        return EINVAL;
    size_t len = strlen(path);
    if (len >= sizeof p->buf)
        return ENAMETOOLONG;
    memcpy(p->buf, path, len + 1);
    p->n = 0;
    char *s = p->buf;
    while (*s) {
        while (*s == '/')
            *s++ = '\0';
        if (!*s)
            break;
        char *c = s;
        while (*s && *s != '/')
            s++;
        if (*s)
            *s++ = '\0';
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (p->n > 0)
                p->n--;
            continue;
        }
        if (p->n == SIMFS_MAX_DEPTH)
            return ENAMETOOLONG;
        p->comp[p->n++] = c;
    }
    return 0;
}

static const char *path_last(const sim_path *p)
{
    return p->n ? p->comp[p->n - 1] : "";
}

/* Resolves `p` in the volatile or durable namespace: *parent is the
 * directory holding the last component and *ino the inode it names (NULL
 * when there is none). The root itself gives *parent = NULL, *ino = root. */
static int path_lookup(simfs *fs, const sim_path *p, bool durable, sim_inode **parent,
                       sim_inode **ino)
{
    sim_inode *d = fs->root;
    *parent = NULL;
    *ino = d;
    if (p->n == 0)
        return 0;
    for (size_t i = 0; i + 1 < p->n; i++) {
        sim_inode *next = dir_get(durable ? &d->ddir : &d->vdir, p->comp[i]);
        if (!next)
            return ENOENT;
        if (!next->is_dir)
            return ENOTDIR;
        d = next;
    }
    *parent = d;
    *ino = dir_get(durable ? &d->ddir : &d->vdir, path_last(p));
    return 0;
}

static int path_resolve(simfs *fs, const char *path, bool durable, sim_path *p, sim_inode **parent,
                        sim_inode **ino)
{
    int err = path_parse(path, p);
    if (err)
        return err;
    return path_lookup(fs, p, durable, parent, ino);
}

/* ---- inodes ---- */

static sim_inode *inode_new(simfs *fs, bool is_dir)
{
    if (simfs_grow((void **)&fs->inodes, &fs->capinodes, fs->ninodes + 1, sizeof *fs->inodes))
        return NULL;
    sim_inode *ino = calloc(1, sizeof *ino);
    if (!ino)
        return NULL;
    ino->id = fs->next_id++;
    ino->is_dir = is_dir;
    fs->inodes[fs->ninodes++] = ino;
    return ino;
}

static void pend_clear(sim_inode *ino)
{
    for (size_t i = 0; i < ino->npend; i++)
        free(ino->pend[i].data);
    ino->npend = 0;
}

static void inode_free(sim_inode *ino)
{
    free(ino->vol.p);
    free(ino->dur.p);
    pend_clear(ino);
    free(ino->pend);
    free(ino->latent);
    dir_free(&ino->vdir);
    dir_free(&ino->ddir);
    free(ino);
}

static uint64_t inode_extent(const sim_inode *ino)
{
    uint64_t e = ino->vol.size;
    if (ino->dur.size > e)
        e = ino->dur.size;
    if (ino->reserved > e)
        e = ino->reserved;
    return e;
}

static uint64_t fs_used(simfs *fs)
{
    uint64_t used = 0;
    for (size_t i = 0; i < fs->ninodes; i++)
        if (!fs->inodes[i]->is_dir)
            used += inode_extent(fs->inodes[i]);
    return used;
}

/* Bytes by which `ino` may grow beyond its current extent (capacity). */
static uint64_t fs_room(simfs *fs)
{
    if (fs->cfg.capacity == 0)
        return UINT64_MAX;
    uint64_t used = fs_used(fs);
    return used >= fs->cfg.capacity ? 0 : fs->cfg.capacity - used;
}

static void gc_mark_dir(sim_inode *d)
{
    sim_dir *dirs[2] = {&d->vdir, &d->ddir};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < dirs[k]->n; i++) {
            sim_inode *ino = dirs[k]->v[i].ino;
            if (ino->mark)
                continue;
            ino->mark = true;
            if (ino->is_dir)
                gc_mark_dir(ino);
        }
    }
}

/* Frees every inode that no name, pending directory operation or live
 * handle refers to. */
static void fs_gc(simfs *fs)
{
    for (size_t i = 0; i < fs->ninodes; i++)
        fs->inodes[i]->mark = false;
    fs->root->mark = true;
    gc_mark_dir(fs->root);
    for (size_t i = 0; i < fs->ndirops; i++)
        fs->dirops[i].ino->mark = true;
    for (rlog_file *f = fs->handles; f; f = f->next)
        if (f->gen == fs->gen && f->ino)
            f->ino->mark = true;
    size_t j = 0;
    for (size_t i = 0; i < fs->ninodes; i++) {
        if (fs->inodes[i]->mark)
            fs->inodes[j++] = fs->inodes[i];
        else
            inode_free(fs->inodes[i]);
    }
    fs->ninodes = j;
}

/* ---- latent sector errors ---- */

static bool latent_hit(const sim_inode *ino, uint64_t off, uint64_t len, uint64_t ss)
{
    if (len == 0)
        return false;
    uint64_t first = off / ss, last = (off + len - 1) / ss;
    for (size_t i = 0; i < ino->nlatent; i++)
        if (ino->latent[i] >= first && ino->latent[i] <= last)
            return true;
    return false;
}

static int latent_add(sim_inode *ino, uint64_t sector)
{
    size_t i = 0;
    while (i < ino->nlatent && ino->latent[i] < sector)
        i++;
    if (i < ino->nlatent && ino->latent[i] == sector)
        return 0;
    if (simfs_grow((void **)&ino->latent, &ino->caplatent, ino->nlatent + 1, sizeof *ino->latent))
        return ENOMEM;
    memmove(&ino->latent[i + 1], &ino->latent[i], (ino->nlatent - i) * sizeof *ino->latent);
    ino->latent[i] = sector;
    ino->nlatent++;
    return 0;
}

/* Removes the sectors in [first, last]. */
static void latent_remove(sim_inode *ino, uint64_t first, uint64_t last)
{
    size_t j = 0;
    for (size_t i = 0; i < ino->nlatent; i++)
        if (ino->latent[i] < first || ino->latent[i] > last)
            ino->latent[j++] = ino->latent[i];
    ino->nlatent = j;
}

/* ---- pending file operations ---- */

/* Applies `pe` to `target`. A torn write is applied sector piece by sector
 * piece, each old, new, zeroed or garbage (crash stream). */
static int pend_apply(simfs *fs, sim_bytes *target, const sim_pend *pe, bool torn)
{
    switch (pe->kind) {
    case PEND_SETSIZE:
        return bytes_resize(target, (size_t)pe->off);
    case PEND_EXTEND:
        return pe->off > target->size ? bytes_resize(target, (size_t)pe->off) : 0;
    case PEND_WRITE:
        break;
    }
    uint64_t size = target->size;
    if (pe->end > size)
        size = pe->end;
    if (pe->off + pe->len > size)
        size = pe->off + pe->len;
    if (bytes_resize(target, (size_t)size))
        return ENOMEM;
    if (!torn) {
        if (pe->len)
            memcpy(target->p + pe->off, pe->data, (size_t)pe->len);
        return 0;
    }
    uint64_t ss = fs->cfg.sector_size;
    uint64_t pos = pe->off, end = pe->off + pe->len;
    while (pos < end) {
        uint64_t next = (pos / ss + 1) * ss;
        if (next > end)
            next = end;
        uint8_t *dst = target->p + pos;
        size_t n = (size_t)(next - pos);
        switch (rlog_sim_rng_below(&fs->crash_rng, 4)) {
        case 0: /* old */
            break;
        case 1: /* new */
            memcpy(dst, pe->data + (pos - pe->off), n);
            break;
        case 2: /* zeroed */
            memset(dst, 0, n);
            break;
        default: /* garbage */
            for (size_t i = 0; i < n; i++)
                dst[i] = (uint8_t)rlog_sim_rng_next(&fs->crash_rng);
            break;
        }
        pos = next;
    }
    return 0;
}

/* Makes every pending operation of `ino` durable, in order. */
static int pend_flush(simfs *fs, sim_inode *ino, size_t count)
{
    int err = 0;
    for (size_t i = 0; i < count; i++)
        if (pend_apply(fs, &ino->dur, &ino->pend[i], false))
            err = ENOMEM;
    for (size_t i = 0; i < count; i++)
        free(ino->pend[i].data);
    if (count < ino->npend)
        memmove(ino->pend, ino->pend + count, (ino->npend - count) * sizeof *ino->pend);
    ino->npend -= count;
    return err;
}

/* Queues `pe` (taking its data); writes back the oldest half of the queue
 * when it is longer than max_pending. */
static int pend_push(simfs *fs, sim_inode *ino, sim_pend pe)
{
    if (simfs_grow((void **)&ino->pend, &ino->cappend, ino->npend + 1, sizeof *ino->pend)) {
        free(pe.data);
        return ENOMEM;
    }
    ino->pend[ino->npend++] = pe;
    if (ino->npend > fs->cfg.max_pending)
        return pend_flush(fs, ino, (ino->npend + 1) / 2);
    return 0;
}

/* ---- pending directory operations ---- */

static int dirop_push(simfs *fs, sim_dirop op)
{
    if (simfs_grow((void **)&fs->dirops, &fs->capdirops, fs->ndirops + 1, sizeof *fs->dirops))
        goto nomem;
    op.name_a = strdup(op.name_a);
    if (!op.name_a)
        goto nomem;
    if (op.name_b) {
        op.name_b = strdup(op.name_b);
        if (!op.name_b) {
            free(op.name_a);
            goto nomem;
        }
    }
    fs->dirops[fs->ndirops++] = op;
    return 0;
nomem:
    return ENOMEM;
}

static void dirop_free(sim_dirop *op)
{
    free(op->name_a);
    free(op->name_b);
}

/* Applies `op` to the durable namespace. An operation on a name that does
 * not (or no longer) name op->ino there does not apply. */
static int dirop_apply_durable(sim_dirop *op)
{
    sim_dir *a = &op->dir_a->ddir;
    switch (op->kind) {
    case DIROP_CREATE:
        return dir_set(a, op->name_a, op->ino);
    case DIROP_UNLINK:
        if (dir_get(a, op->name_a) == op->ino)
            dir_remove(a, op->name_a);
        return 0;
    case DIROP_RENAME: {
        sim_dir *b = op->dir_b ? &op->dir_b->ddir : a;
        if (dir_get(a, op->name_a) != op->ino)
            return 0;
        if (dir_set(b, op->name_b, op->ino))
            return ENOMEM;
        dir_remove(a, op->name_a);
        return 0;
    }
    }
    return 0;
}

/* ---- fault decisions ---- */

static bool fault_applies(rlog_simfs_fault fault, rlog_vfs_op op)
{
    if ((int)op < 0 || op >= RLOG_OP_COUNT)
        return false;
    switch (fault) {
    case RLOG_SIMFS_FAULT_EIO:
        return true;
    case RLOG_SIMFS_FAULT_ENOSPC:
        return op == RLOG_OP_OPEN || op == RLOG_OP_PWRITE || op == RLOG_OP_FDATASYNC ||
               op == RLOG_OP_FSYNC || op == RLOG_OP_TRUNCATE || op == RLOG_OP_ALLOCATE ||
               op == RLOG_OP_RENAME || op == RLOG_OP_MKDIR || op == RLOG_OP_SYNC_DIR;
    case RLOG_SIMFS_FAULT_SYNC_DROP:
        return op == RLOG_OP_FDATASYNC || op == RLOG_OP_FSYNC || op == RLOG_OP_SYNC_DIR;
    case RLOG_SIMFS_FAULT_SHORT_WRITE:
    case RLOG_SIMFS_FAULT_MISDIRECT:
    case RLOG_SIMFS_FAULT_LOST_WRITE:
        return op == RLOG_OP_PWRITE;
    case RLOG_SIMFS_FAULT_BITROT:
    case RLOG_SIMFS_FAULT_LATENT:
        return op == RLOG_OP_PREAD;
    default:
        return false;
    }
}

/* Decides whether `fault` strikes the current call of `op` (scheduled
 * first, then by probability), and counts it. */
static bool fault_hit(simfs *fs, rlog_simfs_fault fault, rlog_vfs_op op)
{
    if (!fs->faults_on)
        return false;
    bool hit = false;
    uint64_t call = fs->calls[op];
    size_t j = 0;
    for (size_t i = 0; i < fs->nsched; i++) {
        sim_sched *s = &fs->sched[i];
        bool drop = s->op == op && s->nth < call; /* passed: stale */
        if (!hit && s->op == op && s->fault == fault && s->nth == call) {
            hit = true;
            drop = true;
        }
        if (!drop)
            fs->sched[j++] = *s;
    }
    fs->nsched = j;
    if (!hit && fs->ppm[fault][op])
        hit = rlog_sim_rng_chance(&fs->fault_rng, fs->ppm[fault][op]);
    if (hit)
        fs->counts[fault]++;
    return hit;
}

/* Flips one bit of vol[lo, hi) (and of the durable copy where it has that
 * byte), chosen by the fault stream. */
static uint64_t bitrot_locked(simfs *fs, sim_inode *ino, uint64_t lo, uint64_t hi)
{
    uint64_t at = lo + rlog_sim_rng_below(&fs->fault_rng, hi - lo);
    uint8_t mask = (uint8_t)(1u << rlog_sim_rng_below(&fs->fault_rng, 8));
    ino->vol.p[at] ^= mask;
    if (at < ino->dur.size)
        ino->dur.p[at] ^= mask;
    return at;
}

/* EIO, then ENOSPC where it applies. */
static int fault_generic(simfs *fs, rlog_vfs_op op)
{
    if (fs->halt_armed) { /* a dead process: nothing it asks for happens */
        if (fs->halt_left == 0)
            return EIO;
        fs->halt_left--;
    }
    if (fault_hit(fs, RLOG_SIMFS_FAULT_EIO, op))
        return EIO;
    if (fault_applies(RLOG_SIMFS_FAULT_ENOSPC, op) && fault_hit(fs, RLOG_SIMFS_FAULT_ENOSPC, op))
        return ENOSPC;
    return 0;
}

/* ---- handles ---- */

static simfs *fs_of(rlog_vfs *vfs)
{
    return vfs->impl;
}

static int handle_check(simfs *fs, rlog_file *f)
{
    if (!f || f->magic != SIMFS_MAGIC)
        return EBADF;
    if (f->gen != fs->gen)
        return EIO; /* opened before a crash */
    return 0;
}

static rlog_file *handle_new(simfs *fs, sim_inode *ino, unsigned flags, bool is_lock,
                             const char *path)
{
    rlog_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return NULL;
    }
    f->magic = SIMFS_MAGIC;
    f->gen = fs->gen;
    f->ino = ino;
    f->flags = flags;
    f->is_lock = is_lock;
    f->next = fs->handles;
    if (fs->handles)
        fs->handles->prev = f;
    fs->handles = f;
    return f;
}

static void handle_free(simfs *fs, rlog_file *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        fs->handles = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->magic = SIMFS_DEAD;
    free(f->path);
    free(f);
}

/* ---- the vfs ---- */

/* Every vfs call holds fs->mu from its begin (path_begin, dir_begin,
 * file_begin, handle_release) to its end (call_end), which advances the
 * clock and traces the call. */

/* Ends a vfs call begun by path_begin, dir_begin or file_begin: op_end,
 * then the lock is released. Returns err. */
static int call_end(simfs *fs, rlog_vfs_op op, const char *path, uint64_t a, uint64_t b, int err,
                    uint64_t done, const void *data, size_t len)
{
    op_end(fs, op, path, a, b, err, done, data, len);
    pthread_mutex_unlock(&fs->mu);
    return err;
}

/* Common start of the calls on a path: takes the lock, counts the call,
 * draws its fault (EINVAL instead when `valid` is false) and resolves
 * `path`. */
static int path_begin(simfs *fs, rlog_vfs_op op, bool valid, const char *path, sim_path *p,
                      sim_inode **parent, sim_inode **ino)
{
    pthread_mutex_lock(&fs->mu);
    fs->calls[op]++;
    int err = valid ? fault_generic(fs, op) : EINVAL;
    if (!err)
        err = path_resolve(fs, path, false, p, parent, ino);
    return err;
}

/* path_begin for a call on a directory that must exist. */
static int dir_begin(simfs *fs, rlog_vfs_op op, bool valid, const char *dir, sim_path *p,
                     sim_inode **parent, sim_inode **d)
{
    int err = path_begin(fs, op, valid, dir, p, parent, d);
    if (!err && !*d)
        err = ENOENT;
    if (!err && !(*d)->is_dir)
        err = ENOTDIR;
    return err;
}

static int simfs_open(rlog_vfs *vfs, const char *path, unsigned flags, rlog_file **out)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    sim_inode *parent, *ino;
    int err;
    unsigned known = RLOG_VFS_RDONLY | RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL;
    bool rd = flags & RLOG_VFS_RDONLY, rw = flags & RLOG_VFS_RDWR;
    bool valid = out && rd != rw && !(flags & ~known) &&
                 (!(flags & RLOG_VFS_EXCL) || (flags & RLOG_VFS_CREATE));
    if (valid)
        *out = NULL;
    if ((err = path_begin(fs, RLOG_OP_OPEN, valid, path, &p, &parent, &ino)))
        goto done;
    if (ino) {
        if ((flags & RLOG_VFS_CREATE) && (flags & RLOG_VFS_EXCL))
            err = EEXIST;
        else if (ino->is_dir)
            err = EISDIR;
        if (err)
            goto done;
    } else {
        if (!(flags & RLOG_VFS_CREATE)) {
            err = ENOENT;
            goto done;
        }
        ino = inode_new(fs, false);
        sim_dirop op = {
            .kind = DIROP_CREATE, .ino = ino, .dir_a = parent, .name_a = (char *)path_last(&p)};
        if (!ino || dirop_push(fs, op)) {
            err = ENOMEM;
            goto done;
        }
        if (dir_set(&parent->vdir, path_last(&p), ino)) {
            dirop_free(&fs->dirops[--fs->ndirops]);
            err = ENOMEM;
            goto done;
        }
    }
    *out = handle_new(fs, ino, flags, false, path);
    if (!*out)
        err = ENOMEM;
done:
    if (err)
        fs_gc(fs);
    return call_end(fs, RLOG_OP_OPEN, path, flags, 0, err, 0, NULL, 0);
}

/* Close and unlock (`lock_only`: the handle must be a lock): counts the
 * call, checks the handle, draws the fault, and releases a held directory
 * lock and the handle even when the fault fails the call. */
static int handle_release(simfs *fs, rlog_file *f, rlog_vfs_op op, bool lock_only)
{
    pthread_mutex_lock(&fs->mu);
    fs->calls[op]++;
    int err = handle_check(fs, f);
    if (err != EBADF && lock_only && !f->is_lock)
        err = EBADF;
    if (err == EBADF)
        return call_end(fs, op, NULL, 0, 0, err, 0, NULL, 0);
    if (!err)
        err = fault_generic(fs, op);
    if (f->gen == fs->gen && f->is_lock && f->ino->lock_holder == f)
        f->ino->lock_holder = NULL;
    op_end(fs, op, f->path, 0, 0, err, 0, NULL, 0);
    handle_free(fs, f);
    if (!lock_only)
        fs_gc(fs);
    pthread_mutex_unlock(&fs->mu);
    return err;
}

static int simfs_close(rlog_vfs *vfs, rlog_file *f)
{
    return handle_release(fs_of(vfs), f, RLOG_OP_CLOSE, false);
}

/* Common start of the calls on an open file handle: takes the lock,
 * counts the call, checks the handle and draws the fault. */
static int file_begin(simfs *fs, rlog_file *f, rlog_vfs_op op, bool write)
{
    pthread_mutex_lock(&fs->mu);
    fs->calls[op]++;
    int err = handle_check(fs, f);
    if (err)
        return err;
    if (f->is_lock || (write && !(f->flags & RLOG_VFS_RDWR)))
        return EBADF;
    return fault_generic(fs, op);
}

static const char *file_path(rlog_file *f)
{
    return f && f->magic == SIMFS_MAGIC ? f->path : NULL;
}

static int simfs_pread(rlog_vfs *vfs, rlog_file *f, void *buf, size_t len, uint64_t off,
                       size_t *done)
{
    simfs *fs = fs_of(vfs);
    size_t n = 0;
    int err = file_begin(fs, f, RLOG_OP_PREAD, false);
    if (err)
        goto done;
    sim_inode *ino = f->ino;
    uint64_t ss = fs->cfg.sector_size;
    if (off < ino->vol.size) {
        n = len;
        if (n > ino->vol.size - off)
            n = (size_t)(ino->vol.size - off);
    }
    if (n == 0)
        goto done;
    if (fault_hit(fs, RLOG_SIMFS_FAULT_LATENT, RLOG_OP_PREAD)) {
        uint64_t first = off / ss, last = (off + n - 1) / ss;
        if (latent_add(ino, first + rlog_sim_rng_below(&fs->fault_rng, last - first + 1))) {
            err = ENOMEM;
            n = 0;
            goto done;
        }
    }
    if (latent_hit(ino, off, n, ss)) {
        fs->counts[RLOG_SIMFS_FAULT_LATENT_READ]++;
        err = EIO;
        n = 0;
        goto done;
    }
    if (fault_hit(fs, RLOG_SIMFS_FAULT_BITROT, RLOG_OP_PREAD)) {
        bitrot_locked(fs, ino, off, off + n);
    }
    memcpy(buf, ino->vol.p + off, n);
done:
    if (done)
        *done = n;
    return call_end(fs, RLOG_OP_PREAD, file_path(f), off, len, err, n, err ? NULL : buf,
                    err ? 0 : n);
}

/* Queues the disk-bound copy of a write of vol[off, off+n), which may be
 * misdirected or lost. */
static int pwrite_queue(simfs *fs, sim_inode *ino, const void *buf, size_t n, uint64_t off)
{
    sim_pend pe = {.kind = PEND_WRITE, .off = off, .len = n, .end = off + n};
    bool lost = fault_hit(fs, RLOG_SIMFS_FAULT_LOST_WRITE, RLOG_OP_PWRITE);
    if (!lost && fault_hit(fs, RLOG_SIMFS_FAULT_MISDIRECT, RLOG_OP_PWRITE)) {
        /* Another sector-aligned place inside the file, if there is one. */
        uint64_t ss = fs->cfg.sector_size;
        uint64_t places = ino->vol.size >= n ? (ino->vol.size - n) / ss + 1 : 0;
        if (places > 1 || (places == 1 && off != 0)) {
            do {
                pe.off = rlog_sim_rng_below(&fs->fault_rng, places) * ss;
            } while (pe.off == off);
        } else {
            lost = true;
        }
    }
    if (lost) {
        pe.len = 0;
    } else {
        pe.data = malloc(n);
        if (!pe.data)
            return ENOMEM;
        memcpy(pe.data, buf, n);
    }
    return pend_push(fs, ino, pe);
}

static int simfs_pwrite(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off,
                        size_t *done)
{
    simfs *fs = fs_of(vfs);
    size_t n = 0;
    int err = file_begin(fs, f, RLOG_OP_PWRITE, true);
    if (err)
        goto done;
    sim_inode *ino = f->ino;
    if (off > SIMFS_MAX_FILE || len > SIMFS_MAX_FILE - off) {
        err = EFBIG;
        goto done;
    }
    n = len;
    if (n > 0 && fault_hit(fs, RLOG_SIMFS_FAULT_SHORT_WRITE, RLOG_OP_PWRITE)) {
        n = (size_t)rlog_sim_rng_below(&fs->fault_rng, n);
        err = EIO;
    }
    uint64_t extent = inode_extent(ino);
    if (off + n > extent) {
        uint64_t room = fs_room(fs);
        if (off + n - extent > room) {
            fs->counts[RLOG_SIMFS_FAULT_CAPACITY]++;
            n = off + room > extent ? (size_t)(extent + room - off) : 0;
            err = ENOSPC;
        }
    }
    if (n == 0)
        goto done;
    if (off + n > ino->vol.size && bytes_resize(&ino->vol, (size_t)(off + n))) {
        n = 0;
        err = ENOMEM;
        goto done;
    }
    memcpy(ino->vol.p + off, buf, n);
    latent_remove(ino, off / fs->cfg.sector_size, (off + n - 1) / fs->cfg.sector_size);
    int qerr = pwrite_queue(fs, ino, buf, n, off);
    if (qerr && !err)
        err = qerr;
done:
    if (done)
        *done = n;
    return call_end(fs, RLOG_OP_PWRITE, file_path(f), off, len, err, n, buf, n);
}

static int simfs_sync_file(rlog_vfs *vfs, rlog_file *f, rlog_vfs_op op)
{
    simfs *fs = fs_of(vfs);
    uint64_t bytes = 0;
    int err = file_begin(fs, f, op, false);
    if (err)
        goto done;
    sim_inode *ino = f->ino;
    for (size_t i = 0; i < ino->npend; i++)
        bytes += ino->pend[i].len;
    if (fault_hit(fs, RLOG_SIMFS_FAULT_SYNC_DROP, op)) {
        pend_clear(ino); /* the dirty pages are marked clean: never durable */
        err = EIO;
    } else {
        err = pend_flush(fs, ino, ino->npend);
    }
done:
    fs->now_ns += fs->cfg.ns_per_byte * bytes;
    return call_end(fs, op, file_path(f), bytes, 0, err, 0, NULL, 0);
}

static int simfs_fdatasync(rlog_vfs *vfs, rlog_file *f)
{
    return simfs_sync_file(vfs, f, RLOG_OP_FDATASYNC);
}

static int simfs_fsync(rlog_vfs *vfs, rlog_file *f)
{
    return simfs_sync_file(vfs, f, RLOG_OP_FSYNC);
}

static int simfs_truncate(rlog_vfs *vfs, rlog_file *f, uint64_t size)
{
    simfs *fs = fs_of(vfs);
    int err = file_begin(fs, f, RLOG_OP_TRUNCATE, true);
    if (err)
        goto done;
    sim_inode *ino = f->ino;
    if (size > SIMFS_MAX_FILE) {
        err = EFBIG;
        goto done;
    }
    uint64_t extent = inode_extent(ino);
    if (size > extent && size - extent > fs_room(fs)) {
        fs->counts[RLOG_SIMFS_FAULT_CAPACITY]++;
        err = ENOSPC;
        goto done;
    }
    sim_pend pe = {.kind = PEND_SETSIZE, .off = size};
    if ((err = bytes_resize(&ino->vol, (size_t)size)))
        goto done;
    if (size < ino->reserved)
        ino->reserved = size;
    uint64_t ss = fs->cfg.sector_size;
    latent_remove(ino, (size + ss - 1) / ss, UINT64_MAX);
    err = pend_push(fs, ino, pe);
done:
    return call_end(fs, RLOG_OP_TRUNCATE, file_path(f), size, 0, err, 0, NULL, 0);
}

static int simfs_allocate(rlog_vfs *vfs, rlog_file *f, uint64_t off, uint64_t len)
{
    simfs *fs = fs_of(vfs);
    int err = file_begin(fs, f, RLOG_OP_ALLOCATE, true);
    if (err)
        goto done;
    sim_inode *ino = f->ino;
    if (fs->cfg.alloc_mode == RLOG_SIMFS_ALLOC_UNSUPPORTED) {
        err = EOPNOTSUPP;
        goto done;
    }
    if (len == 0)
        goto done; /* reserves nothing, like the posix vfs */
    if (off > SIMFS_MAX_FILE || len > SIMFS_MAX_FILE - off) {
        err = EFBIG;
        goto done;
    }
    uint64_t end = off + len, extent = inode_extent(ino);
    if (end > extent && end - extent > fs_room(fs)) {
        fs->counts[RLOG_SIMFS_FAULT_CAPACITY]++;
        err = ENOSPC;
        goto done;
    }
    if (end > ino->reserved)
        ino->reserved = end;
    if (fs->cfg.alloc_mode == RLOG_SIMFS_ALLOC_EXTEND && end > ino->vol.size) {
        sim_pend pe = {.kind = PEND_EXTEND, .off = end};
        if (!(err = bytes_resize(&ino->vol, (size_t)end)))
            err = pend_push(fs, ino, pe);
    }
done:
    return call_end(fs, RLOG_OP_ALLOCATE, file_path(f), off, len, err, 0, NULL, 0);
}

static int simfs_size(rlog_vfs *vfs, rlog_file *f, uint64_t *size)
{
    simfs *fs = fs_of(vfs);
    uint64_t s = 0;
    int err = file_begin(fs, f, RLOG_OP_SIZE, false);
    if (!err)
        s = f->ino->vol.size;
    if (size)
        *size = s;
    return call_end(fs, RLOG_OP_SIZE, file_path(f), 0, 0, err, s, NULL, 0);
}

static int simfs_rename(rlog_vfs *vfs, const char *from, const char *to)
{
    simfs *fs = fs_of(vfs);
    sim_path pf, pt;
    sim_inode *fparent, *ino, *tparent, *tino;
    int err = path_begin(fs, RLOG_OP_RENAME, true, from, &pf, &fparent, &ino);
    if (err)
        goto done;
    if (!ino) {
        err = ENOENT;
        goto done;
    }
    if ((err = path_resolve(fs, to, false, &pt, &tparent, &tino)))
        goto done;
    if (ino->is_dir || (tino && tino->is_dir) || !tparent) {
        err = EISDIR;
        goto done;
    }
    if (tino == ino)
        goto done; /* same file: nothing to do */
    sim_dirop op = {.kind = DIROP_RENAME,
                    .ino = ino,
                    .dir_a = fparent,
                    .dir_b = tparent == fparent ? NULL : tparent,
                    .name_a = (char *)path_last(&pf),
                    .name_b = (char *)path_last(&pt)};
    if ((err = dirop_push(fs, op)))
        goto done;
    if ((err = dir_set(&tparent->vdir, path_last(&pt), ino))) {
        dirop_free(&fs->dirops[--fs->ndirops]);
        goto done;
    }
    dir_remove(&fparent->vdir, path_last(&pf));
    fs_gc(fs);
done:
    return call_end(fs, RLOG_OP_RENAME, from, to ? hash_bytes(to, strlen(to)) : 0, 0, err, 0, NULL,
                    0);
}

static int simfs_unlink(rlog_vfs *vfs, const char *path)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    sim_inode *parent, *ino;
    int err = path_begin(fs, RLOG_OP_UNLINK, true, path, &p, &parent, &ino);
    if (!err && !ino)
        err = ENOENT;
    if (!err && ino->is_dir)
        err = EISDIR;
    if (!err) {
        sim_dirop op = {
            .kind = DIROP_UNLINK, .ino = ino, .dir_a = parent, .name_a = (char *)path_last(&p)};
        err = dirop_push(fs, op);
    }
    if (!err) {
        dir_remove(&parent->vdir, path_last(&p));
        fs_gc(fs);
    }
    return call_end(fs, RLOG_OP_UNLINK, path, 0, 0, err, 0, NULL, 0);
}

/* Makes directory `name` in `parent`, durable at once. */
static int dir_make(simfs *fs, sim_inode *parent, const char *name)
{
    sim_inode *d = inode_new(fs, true);
    if (!d || dir_set(&parent->vdir, name, d) || dir_set(&parent->ddir, name, d)) {
        if (parent->vdir.n && dir_get(&parent->vdir, name) == d)
            dir_remove(&parent->vdir, name);
        fs_gc(fs);
        return ENOMEM;
    }
    return 0;
}

static int simfs_mkdir(rlog_vfs *vfs, const char *path)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    sim_inode *parent, *ino;
    int err = path_begin(fs, RLOG_OP_MKDIR, true, path, &p, &parent, &ino);
    if (!err && ino)
        err = EEXIST;
    if (!err)
        err = dir_make(fs, parent, path_last(&p));
    return call_end(fs, RLOG_OP_MKDIR, path, 0, 0, err, 0, NULL, 0);
}

static int names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

static int simfs_list(rlog_vfs *vfs, const char *dir, char ***names, size_t *count)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    sim_inode *parent, *d;
    char **v = NULL;
    size_t n = 0;
    uint64_t h = 0;
    int err = dir_begin(fs, RLOG_OP_LIST, names && count, dir, &p, &parent, &d);
    if (!err) {
        v = calloc(d->vdir.n + 1, sizeof *v);
        if (!v)
            err = ENOMEM;
        for (; !err && n < d->vdir.n; n++) {
            v[n] = strdup(d->vdir.v[n].name);
            if (!v[n])
                err = ENOMEM;
        }
    }
    if (err) {
        names_free(v, n);
        n = 0;
    } else {
        qsort(v, n, sizeof *v, names_cmp);
        for (size_t i = 0; i < n; i++)
            h = hash_mix(h ^ hash_bytes(v[i], strlen(v[i])));
        *names = v;
        *count = n;
    }
    return call_end(fs, RLOG_OP_LIST, dir, h, 0, err, n, NULL, 0);
}

/* Makes durable the pending directory operations that only waited for a
 * sync of `d`, in their order. */
static int dirops_sync(simfs *fs, sim_inode *d)
{
    int err = 0;
    size_t j = 0;
    for (size_t i = 0; i < fs->ndirops; i++) {
        sim_dirop *op = &fs->dirops[i];
        if (op->dir_a == d)
            op->synced_a = true;
        if (op->dir_b == d)
            op->synced_b = true;
        if (op->synced_a && (!op->dir_b || op->synced_b)) {
            if (dirop_apply_durable(op))
                err = ENOMEM;
            dirop_free(op);
        } else {
            fs->dirops[j++] = *op;
        }
    }
    fs->ndirops = j;
    return err;
}

/* A failed directory fsync that dropped the dirty state of `d`: its
 * pending directory operations (those of a rename naming `d` on either
 * side too) are discarded, never to become durable, while the volatile
 * namespace keeps showing them. A later sync of `d` covers only later
 * operations. */
static void dirops_drop(simfs *fs, sim_inode *d)
{
    size_t j = 0;
    for (size_t i = 0; i < fs->ndirops; i++) {
        sim_dirop *op = &fs->dirops[i];
        if (op->dir_a == d || op->dir_b == d)
            dirop_free(op);
        else
            fs->dirops[j++] = *op;
    }
    fs->ndirops = j;
}

static int simfs_sync_dir(rlog_vfs *vfs, const char *dir)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    sim_inode *parent, *d;
    int err = dir_begin(fs, RLOG_OP_SYNC_DIR, true, dir, &p, &parent, &d);
    if (!err && fault_hit(fs, RLOG_SIMFS_FAULT_SYNC_DROP, RLOG_OP_SYNC_DIR)) {
        dirops_drop(fs, d);
        fs_gc(fs);
        err = EIO;
    } else if (!err) {
        err = dirops_sync(fs, d);
        fs_gc(fs);
    }
    return call_end(fs, RLOG_OP_SYNC_DIR, dir, 0, 0, err, 0, NULL, 0);
}

static int simfs_lock(rlog_vfs *vfs, const char *dir, rlog_file **out)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    sim_inode *parent, *d;
    if (out)
        *out = NULL;
    int err = dir_begin(fs, RLOG_OP_LOCK, out != NULL, dir, &p, &parent, &d);
    if (!err && d->lock_holder)
        err = EBUSY;
    if (!err) {
        *out = handle_new(fs, d, 0, true, dir);
        if (*out)
            d->lock_holder = *out;
        else
            err = ENOMEM;
    }
    return call_end(fs, RLOG_OP_LOCK, dir, 0, 0, err, 0, NULL, 0);
}

static int simfs_unlock(rlog_vfs *vfs, rlog_file *f)
{
    return handle_release(fs_of(vfs), f, RLOG_OP_UNLOCK, true);
}

static void simfs_destroy(rlog_vfs *vfs)
{
    if (!vfs)
        return;
    simfs *fs = fs_of(vfs);
    while (fs->handles)
        handle_free(fs, fs->handles);
    for (size_t i = 0; i < fs->ndirops; i++)
        dirop_free(&fs->dirops[i]);
    free(fs->dirops);
    for (size_t i = 0; i < fs->ninodes; i++)
        inode_free(fs->inodes[i]);
    free(fs->inodes);
    free(fs->sched);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

/* ---- the env ---- */

static uint64_t simenv_now_ns(rlog_env *env)
{
    simfs *fs = env->impl;
    pthread_mutex_lock(&fs->mu);
    uint64_t t = fs->now_ns;
    pthread_mutex_unlock(&fs->mu);
    return t;
}

static uint64_t simenv_random(rlog_env *env)
{
    simfs *fs = env->impl;
    pthread_mutex_lock(&fs->mu);
    uint64_t r = rlog_sim_rng_next(&fs->env_rng);
    pthread_mutex_unlock(&fs->mu);
    return r;
}

static void simenv_destroy(rlog_env *env)
{
    (void)env; /* owned by the vfs */
}

/* ---- construction ---- */

void rlog_simfs_config_init(rlog_simfs_config *cfg, uint64_t seed)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = seed;
    cfg->sector_size = 4096;
    cfg->keep_unsynced_ppm = 500000;
    cfg->torn_ppm = 200000;
    cfg->keep_dirop_ppm = 500000;
    cfg->max_pending = 4096;
    cfg->alloc_mode = RLOG_SIMFS_ALLOC_EXTEND;
    static const uint64_t lat[RLOG_OP_COUNT] = {
        [RLOG_OP_OPEN] = 5000,     [RLOG_OP_CLOSE] = 2000,       [RLOG_OP_PREAD] = 1000,
        [RLOG_OP_PWRITE] = 2000,   [RLOG_OP_FDATASYNC] = 500000, [RLOG_OP_FSYNC] = 600000,
        [RLOG_OP_TRUNCATE] = 5000, [RLOG_OP_ALLOCATE] = 10000,   [RLOG_OP_SIZE] = 500,
        [RLOG_OP_RENAME] = 10000,  [RLOG_OP_UNLINK] = 10000,     [RLOG_OP_MKDIR] = 10000,
        [RLOG_OP_LIST] = 5000,     [RLOG_OP_SYNC_DIR] = 300000,  [RLOG_OP_LOCK] = 1000,
        [RLOG_OP_UNLOCK] = 1000,
    };
    memcpy(cfg->latency_ns, lat, sizeof lat);
    cfg->ns_per_byte = 1;
}

rlog_vfs *rlog_simfs_new(const rlog_simfs_config *cfg)
{
    rlog_simfs_config def;
    if (!cfg) {
        rlog_simfs_config_init(&def, 0);
        cfg = &def;
    }
    uint32_t ss = cfg->sector_size;
    if (ss < 512 || ss > 65536 || (ss & (ss - 1)) || cfg->max_pending == 0 ||
        cfg->keep_unsynced_ppm > 1000000 || cfg->torn_ppm > 1000000 ||
        cfg->keep_dirop_ppm > 1000000 || (unsigned)cfg->alloc_mode > RLOG_SIMFS_ALLOC_UNSUPPORTED)
        return NULL;
    simfs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return NULL;
    if (pthread_mutex_init(&fs->mu, NULL)) {
        free(fs);
        return NULL;
    }
    fs->cfg = *cfg;
    fs->vfs.impl = fs;
    rlog_sim_rng_init(&fs->fault_rng, cfg->seed, STREAM_FAULT);
    rlog_sim_rng_init(&fs->crash_rng, cfg->seed, STREAM_CRASH);
    rlog_sim_rng_init(&fs->env_rng, cfg->seed, STREAM_ENV);
    fs->gen = 1;
    fs->now_ns = 1000000000ull;
    fs->next_id = 1;
    fs->hash = hash_mix(cfg->seed ^ 0x73696d6673ull);
    fs->faults_on = true;
    fs->root = inode_new(fs, true);
    if (!fs->root) {
        simfs_destroy(&fs->vfs);
        return NULL;
    }
    fs->vfs = (rlog_vfs){
        .impl = fs,
        .open = simfs_open,
        .close = simfs_close,
        .pread = simfs_pread,
        .pwrite = simfs_pwrite,
        .fdatasync = simfs_fdatasync,
        .fsync = simfs_fsync,
        .truncate = simfs_truncate,
        .allocate = simfs_allocate,
        .size = simfs_size,
        .rename = simfs_rename,
        .unlink = simfs_unlink,
        .mkdir = simfs_mkdir,
        .list = simfs_list,
        .sync_dir = simfs_sync_dir,
        .lock = simfs_lock,
        .unlock = simfs_unlock,
        .destroy = simfs_destroy,
    };
    fs->env = (rlog_env){
        .impl = fs,
        .now_ns = simenv_now_ns,
        .random = simenv_random,
        .destroy = simenv_destroy,
    };
    return &fs->vfs;
}

void rlog_simfs_reseed_crash(rlog_vfs *vfs, uint64_t seed)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    rlog_sim_rng_init(&fs->crash_rng, seed, STREAM_CRASH);
    pthread_mutex_unlock(&fs->mu);
}

rlog_env *rlog_simfs_env(rlog_vfs *vfs)
{
    return &fs_of(vfs)->env;
}

/* ---- crash events ---- */

static void fs_kill_handles(simfs *fs)
{
    fs->gen++;
    fs->halt_armed = false;
    for (size_t i = 0; i < fs->ninodes; i++)
        fs->inodes[i]->lock_holder = NULL;
}

void rlog_simfs_crash(rlog_vfs *vfs)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    fs->counts[RLOG_SIMFS_FAULT_PROCESS_CRASH]++;
    fs_kill_handles(fs);
    fs_gc(fs);
    event_trace(fs, "crash");
    pthread_mutex_unlock(&fs->mu);
}

/* Power loss, files: each pending operation is kept (maybe torn) or lost. */
static int power_loss_file(simfs *fs, sim_inode *ino)
{
    int err = 0;
    for (size_t i = 0; i < ino->npend; i++) {
        sim_pend *pe = &ino->pend[i];
        if (!rlog_sim_rng_chance(&fs->crash_rng, fs->cfg.keep_unsynced_ppm)) {
            fs->counts[RLOG_SIMFS_FAULT_LOST_UNSYNCED]++;
            continue;
        }
        bool torn = pe->kind == PEND_WRITE && pe->len > 0 &&
                    rlog_sim_rng_chance(&fs->crash_rng, fs->cfg.torn_ppm);
        if (torn)
            fs->counts[RLOG_SIMFS_FAULT_TORN]++;
        if (pend_apply(fs, &ino->dur, pe, torn))
            err = ENOMEM;
    }
    pend_clear(ino);
    if (bytes_copy(&ino->vol, &ino->dur))
        err = ENOMEM;
    return err;
}

int rlog_simfs_power_loss(rlog_vfs *vfs)
{
    simfs *fs = fs_of(vfs);
    int err = 0;
    pthread_mutex_lock(&fs->mu);
    fs->counts[RLOG_SIMFS_FAULT_POWER_LOSS]++;
    fs_kill_handles(fs);
    for (size_t i = 0; i < fs->ndirops; i++) {
        sim_dirop *op = &fs->dirops[i];
        if (rlog_sim_rng_chance(&fs->crash_rng, fs->cfg.keep_dirop_ppm)) {
            if (dirop_apply_durable(op))
                err = ENOMEM;
        } else {
            fs->counts[RLOG_SIMFS_FAULT_LOST_DIROP]++;
        }
        dirop_free(op);
    }
    fs->ndirops = 0;
    for (size_t i = 0; i < fs->ninodes; i++) {
        sim_inode *ino = fs->inodes[i];
        if (ino->is_dir) {
            if (dir_copy(&ino->vdir, &ino->ddir))
                err = ENOMEM;
        } else if (power_loss_file(fs, ino)) {
            err = ENOMEM;
        }
    }
    fs_gc(fs);
    event_trace(fs, "power_loss");
    pthread_mutex_unlock(&fs->mu);
    return err;
}

int rlog_simfs_drop_caches(rlog_vfs *vfs)
{
    simfs *fs = fs_of(vfs);
    int err = 0;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->ninodes; i++) {
        sim_inode *ino = fs->inodes[i];
        if (ino->is_dir)
            continue;
        if (bytes_copy(&ino->vol, &ino->dur))
            err = ENOMEM;
        for (size_t k = 0; k < ino->npend; k++)
            if (pend_apply(fs, &ino->vol, &ino->pend[k], false))
                err = ENOMEM;
    }
    event_trace(fs, "drop_caches");
    pthread_mutex_unlock(&fs->mu);
    return err;
}

/* ---- fault control ---- */

int rlog_simfs_set_fault(rlog_vfs *vfs, rlog_simfs_fault fault, rlog_vfs_op op, uint32_t ppm)
{
    simfs *fs = fs_of(vfs);
    int err = EINVAL;
    if ((unsigned)fault >= RLOG_SIMFS_FAULT_COUNT || (unsigned)op > RLOG_OP_COUNT)
        return EINVAL;
    pthread_mutex_lock(&fs->mu);
    for (int o = 0; o < RLOG_OP_COUNT; o++) {
        if ((op == RLOG_OP_COUNT || o == (int)op) && fault_applies(fault, (rlog_vfs_op)o)) {
            fs->ppm[fault][o] = ppm;
            err = 0;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return err;
}

int rlog_simfs_schedule_fault(rlog_vfs *vfs, rlog_simfs_fault fault, rlog_vfs_op op, uint64_t nth)
{
    simfs *fs = fs_of(vfs);
    if ((unsigned)fault >= RLOG_SIMFS_FAULT_COUNT || !fault_applies(fault, op))
        return EINVAL;
    pthread_mutex_lock(&fs->mu);
    int err = 0;
    if (nth <= fs->calls[op])
        err = EINVAL;
    else if (simfs_grow((void **)&fs->sched, &fs->capsched, fs->nsched + 1, sizeof *fs->sched))
        err = ENOMEM;
    else
        fs->sched[fs->nsched++] = (sim_sched){.fault = fault, .op = op, .nth = nth};
    pthread_mutex_unlock(&fs->mu);
    return err;
}

void rlog_simfs_clear_faults(rlog_vfs *vfs)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    memset(fs->ppm, 0, sizeof fs->ppm);
    fs->nsched = 0;
    for (size_t i = 0; i < fs->ninodes; i++)
        fs->inodes[i]->nlatent = 0;
    pthread_mutex_unlock(&fs->mu);
}

void rlog_simfs_enable_faults(rlog_vfs *vfs, int on)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    fs->faults_on = on != 0;
    pthread_mutex_unlock(&fs->mu);
}

/* The file at `path` in the volatile namespace. */
static int file_lookup(simfs *fs, const char *path, bool durable, sim_inode **out)
{
    sim_path p;
    sim_inode *parent, *ino;
    int err = path_resolve(fs, path, durable, &p, &parent, &ino);
    if (err)
        return err;
    if (!ino)
        return ENOENT;
    if (ino->is_dir)
        return EISDIR;
    *out = ino;
    return 0;
}

int rlog_simfs_bitrot_range(rlog_vfs *vfs, const char *path, uint64_t lo, uint64_t hi,
                            uint64_t *off)
{
    simfs *fs = fs_of(vfs);
    sim_inode *ino;
    pthread_mutex_lock(&fs->mu);
    int err = file_lookup(fs, path, false, &ino);
    if (!err && hi == UINT64_MAX)
        hi = ino->vol.size;
    if (!err && (lo >= hi || hi > ino->vol.size))
        err = EINVAL;
    if (!err) {
        uint64_t at = bitrot_locked(fs, ino, lo, hi);
        fs->counts[RLOG_SIMFS_FAULT_BITROT]++;
        trace_mix(fs, at);
        if (off)
            *off = at;
    }
    pthread_mutex_unlock(&fs->mu);
    return err;
}

int rlog_simfs_bitrot(rlog_vfs *vfs, const char *path, uint64_t *off)
{
    return rlog_simfs_bitrot_range(vfs, path, 0, UINT64_MAX, off);
}

int rlog_simfs_add_latent(rlog_vfs *vfs, const char *path, uint64_t off, uint64_t len)
{
    simfs *fs = fs_of(vfs);
    sim_inode *ino;
    if (len == 0 || off + len < off)
        return EINVAL;
    pthread_mutex_lock(&fs->mu);
    int err = file_lookup(fs, path, false, &ino);
    if (!err) {
        uint64_t ss = fs->cfg.sector_size;
        for (uint64_t s = off / ss; !err && s <= (off + len - 1) / ss; s++)
            err = latent_add(ino, s);
        fs->counts[RLOG_SIMFS_FAULT_LATENT]++;
        trace_mix(fs, off ^ (len << 32));
    }
    pthread_mutex_unlock(&fs->mu);
    return err;
}

/* ---- inspection ---- */

int rlog_simfs_read(rlog_vfs *vfs, const char *path, int durable, void **data, size_t *len)
{
    simfs *fs = fs_of(vfs);
    sim_inode *ino;
    pthread_mutex_lock(&fs->mu);
    int err = file_lookup(fs, path, durable != 0, &ino);
    if (!err) {
        const sim_bytes *b = durable ? &ino->dur : &ino->vol;
        void *copy = malloc(b->size ? b->size : 1);
        if (!copy) {
            err = ENOMEM;
        } else {
            if (b->size)
                memcpy(copy, b->p, b->size);
            *data = copy;
            *len = b->size;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return err;
}

typedef struct list_ctx {
    char **v;
    size_t n, cap;
    char path[SIMFS_MAX_PATH];
    bool durable;
} list_ctx;

static int list_walk(list_ctx *c, sim_inode *d, size_t plen)
{
    sim_dir *dir = c->durable ? &d->ddir : &d->vdir;
    for (size_t i = 0; i < dir->n; i++) {
        int w = snprintf(c->path + plen, sizeof c->path - plen, "/%s", dir->v[i].name);
        if (w < 0 || (size_t)w >= sizeof c->path - plen)
            return ENAMETOOLONG;
        if (dir->v[i].ino->is_dir) {
            int err = list_walk(c, dir->v[i].ino, plen + (size_t)w);
            if (err)
                return err;
            continue;
        }
        if (simfs_grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v))
            return ENOMEM;
        if (!(c->v[c->n] = strdup(c->path)))
            return ENOMEM;
        c->n++;
    }
    return 0;
}

int rlog_simfs_list_files(rlog_vfs *vfs, int durable, char ***paths, size_t *count)
{
    simfs *fs = fs_of(vfs);
    list_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->durable = durable != 0;
    pthread_mutex_lock(&fs->mu);
    int err = list_walk(c, fs->root, 0);
    pthread_mutex_unlock(&fs->mu);
    if (err) {
        names_free(c->v, c->n);
    } else {
        if (c->n)
            qsort(c->v, c->n, sizeof *c->v, names_cmp);
        *paths = c->v;
        *count = c->n;
    }
    free(c);
    return err;
}

int rlog_simfs_mkdirs(rlog_vfs *vfs, const char *path)
{
    simfs *fs = fs_of(vfs);
    sim_path p;
    int err = path_parse(path, &p);
    if (err)
        return err;
    pthread_mutex_lock(&fs->mu);
    sim_inode *d = fs->root;
    for (size_t i = 0; !err && i < p.n; i++) {
        sim_inode *next = dir_get(&d->vdir, p.comp[i]);
        if (!next) {
            err = dir_make(fs, d, p.comp[i]);
            next = err ? NULL : dir_get(&d->vdir, p.comp[i]);
        } else if (!next->is_dir) {
            err = ENOTDIR;
        }
        d = next;
    }
    pthread_mutex_unlock(&fs->mu);
    return err;
}

uint64_t rlog_simfs_calls(rlog_vfs *vfs, rlog_vfs_op op)
{
    simfs *fs = fs_of(vfs);
    uint64_t n = 0;
    pthread_mutex_lock(&fs->mu);
    for (int o = 0; o < RLOG_OP_COUNT; o++)
        if (op == RLOG_OP_COUNT || o == (int)op)
            n += fs->calls[o];
    pthread_mutex_unlock(&fs->mu);
    return n;
}

uint64_t rlog_simfs_faults(rlog_vfs *vfs, rlog_simfs_fault fault)
{
    simfs *fs = fs_of(vfs);
    if ((unsigned)fault >= RLOG_SIMFS_FAULT_COUNT)
        return 0;
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->counts[fault];
    pthread_mutex_unlock(&fs->mu);
    return n;
}

uint64_t rlog_simfs_unsynced_bytes(rlog_vfs *vfs)
{
    simfs *fs = fs_of(vfs);
    uint64_t n = 0;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->ninodes; i++)
        for (size_t k = 0; k < fs->inodes[i]->npend; k++)
            n += fs->inodes[i]->pend[k].len;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

uint64_t rlog_simfs_trace_hash(rlog_vfs *vfs)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    uint64_t h = fs->hash;
    pthread_mutex_unlock(&fs->mu);
    return h;
}

uint64_t rlog_simfs_now_ns(rlog_vfs *vfs)
{
    return simenv_now_ns(&fs_of(vfs)->env);
}

void rlog_simfs_advance(rlog_vfs *vfs, uint64_t ns)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    fs->now_ns += ns;
    pthread_mutex_unlock(&fs->mu);
}

void rlog_simfs_set_trace(rlog_vfs *vfs, rlog_simfs_trace_fn fn, void *data)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    fs->trace_fn = fn;
    fs->trace_data = data;
    pthread_mutex_unlock(&fs->mu);
}

const char *rlog_simfs_fault_name(rlog_simfs_fault fault)
{
    return (unsigned)fault < RLOG_SIMFS_FAULT_COUNT ? simfs_fault_names[fault] : "?";
}

const char *rlog_simfs_op_name(rlog_vfs_op op)
{
    return (unsigned)op < RLOG_OP_COUNT ? simfs_op_names[op] : "?";
}

void rlog_simfs_halt_after(rlog_vfs *vfs, uint64_t calls)
{
    simfs *fs = fs_of(vfs);
    pthread_mutex_lock(&fs->mu);
    fs->halt_armed = true;
    fs->halt_left = calls;
    pthread_mutex_unlock(&fs->mu);
}
