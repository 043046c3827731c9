/*
 * load, bootstrap, recover, set_term, set_vote: the synchronous storage
 * methods. Each is durable before it returns (rlog_rs writes and syncs).
 *
 * load hands libraft what it owns from then on, allocated with
 * raft_malloc: the entries array; for each run of entries that came from
 * one rlog batch record, one buffer holding their payloads back to back
 * (each entry's buf points into it and its batch points at it); the
 * snapshot struct, its bufs array of exactly one buffer, and the
 * configuration (raft_configuration_add). start_index is the index of the
 * first entry returned: rlog_rs_first_index, which is the snapshot's index
 * + 1 when no entries are kept, and may be at or below the snapshot's index
 * when entries were kept behind it (libraft's `trailing`).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "raft_io/rio.h"

static int need_store(rio *r, const char *what)
{
    if (r->rs == NULL || r->closing) {
        return rlg_rio_err(r, RAFT_INVALID, "%s: the store is not open (io->init first)", what);
    }
    return 0;
}

static int store_err(rio *r, int rv, const char *what)
{
    return rlg_rio_err(r, rlg_rio_raft_code(rv), "%s: %s (%s)", what, rlog_rs_errmsg(r->rs),
                       r->dir);
}

int rlg_rio_batch_own(struct raft_entry *v, size_t n)
{
    size_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        bytes += v[k].buf.len;
    }
    uint8_t *batch = raft_malloc(bytes > 0 ? bytes : 8);
    if (batch == NULL) {
        for (size_t k = 0; k < n; k++) {
            v[k].batch = NULL;
        }
        return RAFT_NOMEM;
    }
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
        if (v[k].buf.len > 0) {
            memcpy(batch + off, v[k].buf.base, v[k].buf.len);
        }
        v[k].buf.base = batch + off;
        v[k].batch = batch;
        off += v[k].buf.len;
    }
    return 0;
}

/* Mapping ahead. Most of the CPU time of a large load is the kernel
 * zeroing the fresh memory of the batches (perf: docs/raft_io.md,
 * "Benchmark"). Unless the io is single-threaded (RLOG_RAFT_IO_NO_THREADS),
 * the next batch is raft_malloc'd on the loop thread as soon as the current
 * one is started, and a helper thread advises and populates it
 * (batch_advise) while the loop thread reads and copies into the current
 * one: with a free core the zeroing leaves the load's critical path. The
 * helper only calls madvise on memory the load owns and writes nothing the
 * load reads; the load waits for it before it reallocates or frees a batch
 * it was given, and joins it before load returns. */
typedef struct load_ahead {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint8_t *job; /* given and not yet populated (mu); NULL when idle */
    size_t job_len;
    bool stop; /* mu */
} load_ahead;

/* The entries being loaded: v[0..have) are filled; v[cur_first..have)
 * point into the batch being filled (cur, cap bytes, used so far). spare is
 * the next batch, being mapped ahead (spare_cap bytes), or NULL. */
typedef struct load_state {
    struct raft_entry *v;
    size_t n, have, cur_first;
    uint8_t *cur;
    size_t cap, used;
    uint8_t *spare;
    size_t spare_cap;
    bool threads;  /* mapping ahead allowed */
    bool ahead_on; /* ahead's thread runs */
    load_ahead ahead;
    int why; /* RAFT_NOMEM or RAFT_CORRUPT when load_record stopped the scan */
} load_state;

static void batch_advise(void *b, size_t len);

static void *ahead_main(void *arg)
{
    load_ahead *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->job == NULL && !a->stop) {
            pthread_cond_wait(&a->cond, &a->mu);
        }
        if (a->job == NULL) {
            break;
        }
        uint8_t *b = a->job;
        size_t len = a->job_len;
        pthread_mutex_unlock(&a->mu);
        batch_advise(b, len);
        pthread_mutex_lock(&a->mu);
        a->job = NULL;
        pthread_cond_broadcast(&a->cond);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Waits until the helper holds no batch (no-op without a helper). */
static void ahead_wait(load_state *ls)
{
    if (!ls->ahead_on) {
        return;
    }
    load_ahead *a = &ls->ahead;
    pthread_mutex_lock(&a->mu);
    while (a->job != NULL) {
        pthread_cond_wait(&a->cond, &a->mu);
    }
    pthread_mutex_unlock(&a->mu);
}

/* Hands b to the helper, started on first use; false when no thread could
 * be started (the caller then advises b itself, as without threads). */
static bool ahead_give(load_state *ls, uint8_t *b, size_t len)
{
    load_ahead *a = &ls->ahead;
    if (!ls->ahead_on) {
        if (!ls->threads) {
            return false;
        }
        a->job = NULL;
        a->stop = false;
        if (pthread_mutex_init(&a->mu, NULL) != 0) {
            ls->threads = false;
            return false;
        }
        if (pthread_cond_init(&a->cond, NULL) != 0) {
            pthread_mutex_destroy(&a->mu);
            ls->threads = false;
            return false;
        }
        if (pthread_create(&a->thread, NULL, ahead_main, a) != 0) {
            pthread_cond_destroy(&a->cond);
            pthread_mutex_destroy(&a->mu);
            ls->threads = false;
            return false;
        }
        ls->ahead_on = true;
    }
    pthread_mutex_lock(&a->mu);
    while (a->job != NULL) {
        pthread_cond_wait(&a->cond, &a->mu);
    }
    a->job = b;
    a->job_len = len;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    return true;
}

/* Joins the helper (after what it was given is done) and frees an unused
 * spare. */
static void ahead_end(load_state *ls)
{
    if (ls->ahead_on) {
        load_ahead *a = &ls->ahead;
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->mu);
        ls->ahead_on = false;
    }
    if (ls->spare != NULL) {
        raft_free(ls->spare);
        ls->spare = NULL;
    }
}

/* Gives the batch being filled back its unused tail (raft_realloc; a moved
 * batch has its entries pointed again). */
static void batch_close(load_state *ls)
{
    if (ls->cur == NULL || ls->used == ls->cap) {
        return;
    }
    ahead_wait(ls); /* cur may be the spare the helper still populates */
    uint8_t *nb = raft_realloc(ls->cur, ls->used > 0 ? ls->used : 8);
    if (nb == NULL || nb == ls->cur) {
        return; /* keeping the larger block is correct too */
    }
    for (size_t k = ls->cur_first; k < ls->have; k++) {
        ls->v[k].buf.base = nb + ((uint8_t *)ls->v[k].buf.base - ls->cur);
        ls->v[k].batch = nb;
    }
    ls->cur = nb;
    ls->cap = ls->used;
}

/* Asks the kernel to back the page-aligned inside of a new batch with huge
 * pages and to map it in one call: filling a GiB of fresh memory one 4 KiB
 * page fault at a time is most of a load's time otherwise (perf:
 * docs/raft_io.md, "Benchmark"). Advice only: contents and ownership do
 * not change, and a kernel without these flags ignores them. */
static void batch_advise(void *b, size_t len)
{
    uintptr_t lo = ((uintptr_t)b + 4095u) & ~(uintptr_t)4095u;
    uintptr_t hi = ((uintptr_t)b + len) & ~(uintptr_t)4095u;
    if (hi <= lo || hi - lo < (2u << 20)) {
        return; /* no huge page fits: the advice would only cost a call */
    }
#ifdef MADV_HUGEPAGE
    (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#endif
}

/* Maps the batch after the one just started ahead (see load_ahead) when
 * the entries left (`left` from the current record on, about `mean` bytes
 * each) look larger than it by at least a huge page; too small a guess
 * costs nothing but the spare (load_record then allocates another). */
static void load_ahead_next(load_state *ls, size_t mean, size_t left)
{
    if (!ls->threads || mean == 0) {
        return;
    }
    size_t est = left > SIZE_MAX / mean ? SIZE_MAX : mean * left;
    if (est <= ls->cap || est - ls->cap < (2u << 20) + mean) {
        return;
    }
    size_t cap = est - ls->cap + mean;
    cap = cap < RIO_LOAD_BATCH_BYTES ? cap : RIO_LOAD_BATCH_BYTES;
    uint8_t *b = raft_malloc(cap);
    if (b == NULL) {
        return; /* load_record allocates the next batch when it needs it */
    }
    if (!ahead_give(ls, b, cap)) {
        batch_advise(b, cap);
    }
    ls->spare = b;
    ls->spare_cap = cap;
}

/* rlog_rs_entries_scan's callback: copies the payloads of one batch record
 * straight into the batch being filled (one copy from the reader's
 * buffer), starting a new batch when they do not fit: RIO_LOAD_BATCH_BYTES,
 * or less when the entries left look smaller, or the record's size when
 * that is larger. */
static int load_record(void *data, const rlog_rs_entry *e, size_t n)
{
    load_state *ls = data;
    size_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        bytes += e[k].len;
    }
    if (n > ls->n - ls->have) {
        ls->why = RAFT_CORRUPT; /* more entries than the index said */
        return RLOG_ECORRUPT;
    }
    if (ls->cur == NULL || bytes > ls->cap - ls->used) {
        batch_close(ls);
        /* what is left, guessed from this record's mean entry size: a
         * small log gets a small batch */
        size_t left = ls->n - ls->have;
        size_t guess = n > 0 && bytes / n <= RIO_LOAD_BATCH_BYTES / left
                           ? bytes / n * left + bytes % n + 64
                           : RIO_LOAD_BATCH_BYTES;
        size_t cap = guess < RIO_LOAD_BATCH_BYTES ? guess : RIO_LOAD_BATCH_BYTES;
        cap = bytes > cap ? bytes : cap;
        uint8_t *b = NULL;
        if (ls->spare != NULL && ls->spare_cap >= bytes) {
            b = ls->spare; /* mapped ahead */
            cap = ls->spare_cap;
        } else {
            if (ls->spare != NULL) {
                ahead_wait(ls);
                raft_free(ls->spare); /* too small for this record */
            }
            if ((b = raft_malloc(cap)) == NULL) {
                ls->spare = NULL;
                ls->why = RAFT_NOMEM;
                return RLOG_ENOMEM;
            }
            batch_advise(b, cap);
        }
        ls->spare = NULL;
        ls->cur = b;
        ls->cap = cap;
        ls->used = 0;
        ls->cur_first = ls->have;
        load_ahead_next(ls, n > 0 ? bytes / n : 0, left);
    }
    for (size_t k = 0; k < n; k++) {
        struct raft_entry *o = &ls->v[ls->have++];
        o->term = e[k].term;
        o->type = (unsigned short)e[k].type;
        o->buf.base = ls->cur + ls->used;
        o->buf.len = e[k].len;
        o->batch = ls->cur;
        if (e[k].len > 0) {
            memcpy(o->buf.base, e[k].data, e[k].len);
        }
        ls->used += e[k].len;
    }
    return 0;
}

static void entries_destroy(struct raft_entry *v, size_t n)
{
    void *last = NULL;
    for (size_t i = 0; i < n; i++) {
        if (v[i].batch != NULL && v[i].batch != last) {
            last = v[i].batch;
            raft_free(last);
        }
    }
    raft_free(v);
}

static int load_entries(rio *r, raft_index first, raft_index last, struct raft_entry **out,
                        size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (last < first) {
        return 0;
    }
    load_state ls = {.n = (size_t)(last - first + 1)};
    ls.v = raft_calloc(ls.n, sizeof *ls.v);
    if (ls.v == NULL) {
        return rlg_rio_err(r, RAFT_NOMEM, "load: out of memory for %zu entries", ls.n);
    }
    ls.threads = !(r->opts.flags & RLOG_RAFT_IO_NO_THREADS);
    int rv = rlog_rs_entries_scan(r->rs, first, last, load_record, &ls);
    ahead_end(&ls);
    if (rv == 0 && ls.have != ls.n) {
        rv = RLOG_ECORRUPT;
        ls.why = RAFT_CORRUPT;
    }
    if (rv != 0) {
        if (ls.cur != NULL && ls.cur_first == ls.have) {
            raft_free(ls.cur); /* a batch no entry points at yet */
        }
        entries_destroy(ls.v, ls.have);
        if (ls.why == RAFT_NOMEM) {
            return rlg_rio_err(r, RAFT_NOMEM, "load: out of memory");
        }
        if (ls.why == RAFT_CORRUPT) {
            return rlg_rio_err(r, RAFT_CORRUPT,
                               "load: the store's index lists %zu entries from %llu, its batch "
                               "records hold another number (%s)",
                               ls.n, (unsigned long long)first, r->dir);
        }
        return store_err(r, rv, "load");
    }
    batch_close(&ls);
    *out = ls.v;
    *n_out = ls.n;
    return 0;
}

void rlg_rio_snapshot_destroy(struct raft_snapshot *s)
{
    if (s == NULL) {
        return;
    }
    raft_configuration_close(&s->configuration);
    if (s->bufs != NULL) {
        raft_free(s->bufs[0].base);
        raft_free(s->bufs);
    }
    raft_free(s);
}

int rlg_rio_snapshot_convert(const rlog_rs_snapshot *s, const char *dir, struct raft_snapshot **out,
                             char *err, size_t errcap)
{
    *out = NULL;
    struct raft_snapshot *snap = raft_calloc(1, sizeof *snap);
    if (snap == NULL) {
        snprintf(err, errcap, "snapshot: out of memory");
        return RAFT_NOMEM;
    }
    raft_configuration_init(&snap->configuration);
    snap->index = s->index;
    snap->term = s->term;
    snap->configuration_index = s->conf_index;
    char why[200];
    int rv = rlg_rio_conf_decode(s->conf, s->conf_len, &snap->configuration, why, sizeof why);
    if (rv != 0) {
        rv = rv == RAFT_NOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
        snprintf(err, errcap, "snapshot %s in %s (index %llu): %s", s->file, dir,
                 (unsigned long long)s->index, why);
        goto fail;
    }
    rv = RAFT_NOMEM;
    snprintf(err, errcap, "snapshot: out of memory for %llu bytes", (unsigned long long)s->size);
    if ((snap->bufs = raft_calloc(1, sizeof *snap->bufs)) == NULL) {
        goto fail;
    }
    snap->n_bufs = 1;
    if ((snap->bufs[0].base = raft_malloc(s->size > 0 ? (size_t)s->size : 8)) == NULL) {
        goto fail;
    }
    if (s->size > 0) {
        memcpy(snap->bufs[0].base, s->data, (size_t)s->size);
    }
    snap->bufs[0].len = (size_t)s->size;
    err[0] = '\0';
    *out = snap;
    return 0;
fail:
    rlg_rio_snapshot_destroy(snap);
    return rv;
}

int rlg_rio_snapshot_read(rio *r, struct raft_snapshot **out)
{
    *out = NULL;
    rlog_rs_snapshot s;
    int rv = rlog_rs_snapshot_get(r->rs, &s);
    if (rv == RLOG_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return store_err(r, rv, "snapshot");
    }
    char err[300];
    rv = rlg_rio_snapshot_convert(&s, r->dir, out, err, sizeof err);
    rlog_rs_snapshot_release(&s);
    return rv != 0 ? rlg_rio_err(r, rv, "%s", err) : 0;
}

int rlg_rio_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                 struct raft_snapshot **snapshot, raft_index *start_index,
                 struct raft_entry *entries[], size_t *n_entries)
{
    rio *r = io->impl;
    *snapshot = NULL;
    *entries = NULL;
    *n_entries = 0;
    *start_index = 1;
    int rv = need_store(r, "load");
    if (rv != 0) {
        return rv;
    }
    rlog_rs_hard_state hs;
    rlog_rs_hard_state_get(r->rs, &hs);
    struct raft_snapshot *snap = NULL;
    if ((rv = rlg_rio_snapshot_read(r, &snap)) != 0) {
        return rv;
    }
    raft_index first = rlog_rs_first_index(r->rs);
    raft_index last = rlog_rs_last_index(r->rs);
    if ((rv = load_entries(r, first, last, entries, n_entries)) != 0) {
        rlg_rio_snapshot_destroy(snap);
        return rv;
    }
    *term = hs.term;
    *voted_for = hs.vote;
    *snapshot = snap;
    *start_index = first;
    return 0;
}

/* Appends one RAFT_CHANGE entry holding `conf`, durably. */
static int append_conf(rio *r, const char *what, uint64_t index, uint64_t term,
                       const struct raft_configuration *conf)
{
    struct raft_buffer buf;
    int rv = raft_configuration_encode(conf, &buf);
    if (rv != 0) {
        return rlg_rio_err(r, rv, "%s: cannot encode the configuration: %s", what,
                           raft_strerror(rv));
    }
    rlog_rs_entry e = {
        .term = term, .type = RAFT_CHANGE, .len = (uint32_t)buf.len, .data = buf.base};
    rv = rlog_rs_append(r->rs, index, &e, 1);
    raft_free(buf.base);
    return rv != 0 ? store_err(r, rv, what) : 0;
}

int rlg_rio_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    rio *r = io->impl;
    int rv = need_store(r, "bootstrap");
    if (rv != 0) {
        return rv;
    }
    rlog_rs_stats st;
    rlog_rs_stats_get(r->rs, &st);
    if (st.hs.term != 0 || st.hs.vote != 0 || st.has_snapshot || st.last_index != 0) {
        return rlg_rio_err(r, RAFT_CANTBOOTSTRAP,
                           "bootstrap: %s already holds Raft state (term %llu, last index %llu)",
                           r->dir, (unsigned long long)st.hs.term,
                           (unsigned long long)st.last_index);
    }
    if ((rv = rlog_rs_set_term(r->rs, 1)) != 0) {
        return store_err(r, rv, "bootstrap");
    }
    return append_conf(r, "bootstrap", 1, 1, conf);
}

int rlg_rio_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    rio *r = io->impl;
    int rv = need_store(r, "recover");
    if (rv != 0) {
        return rv;
    }
    rlog_rs_hard_state hs;
    rlog_rs_hard_state_get(r->rs, &hs);
    uint64_t last = rlog_rs_last_index(r->rs);
    uint64_t term = rlog_rs_term(r->rs, last);
    if (hs.term > term) {
        term = hs.term;
    }
    if (term == 0) {
        term = 1;
    }
    return append_conf(r, "recover", last + 1, term, conf);
}

int rlg_rio_set_term(struct raft_io *io, raft_term term)
{
    rio *r = io->impl;
    int rv = need_store(r, "set_term");
    if (rv == 0 && (rv = rlog_rs_set_term(r->rs, term)) != 0) {
        rv = store_err(r, rv, "set_term");
    }
    return rv;
}

int rlg_rio_set_vote(struct raft_io *io, raft_id server_id)
{
    rio *r = io->impl;
    int rv = need_store(r, "set_vote");
    if (rv == 0 && (rv = rlog_rs_set_vote(r->rs, server_id)) != 0) {
        rv = store_err(r, rv, "set_vote");
    }
    return rv;
}
