/*
 * load, bootstrap, recover, set_term, set_vote: the synchronous storage
 * methods. Each is durable before it returns (rlog_rs writes and syncs).
 *
 * load hands libraft what it owns from then on, allocated with
 * raft_malloc: the entries array; one buffer per entry holding its payload
 * (batch NULL, see "One allocation per entry"); the snapshot struct, its
 * bufs array of exactly one buffer, and the configuration
 * (raft_configuration_add). start_index is the index of the first entry
 * returned: rlog_rs_first_index, which is the snapshot's index + 1 when no
 * entries are kept, and may be at or below the snapshot's index when
 * entries were kept behind it (libraft's `trailing`).
 *
 * One allocation per entry. libraft 0.15 (log.c) frees a batch when one
 * of its entries loses its last reference and no entry *still in the log*
 * points into the batch; it does not count the references that requests
 * in flight (sends, above all) hold to the batch's other entries. Once a
 * batch has left the log, every later release that drops some entry of it
 * to no references frees it again, and a removal that drops an entry no
 * request holds frees it under the requests that still read it. Every
 * way an entry leaves the log reaches this:
 *   - a suffix truncation (a conflicting leader; removeSuffix, from the
 *     end down): the batch is freed when its lowest entry goes, if no
 *     request holds that one, while a send holds higher ones;
 *   - an installed snapshot (logRestore truncates the whole log the same
 *     way): entries at or below the loaded snapshot's index too, which
 *     are committed but leave the log all the same — cluster seed 155312:
 *     a restarted leader's loaded entries were in sends to a peer that was
 *     down when an install from the new leader replaced its log;
 *   - a local snapshot (logSnapshot, removePrefix, from the front up):
 *     two sends that start at different entries of one batch, both
 *     outstanding when the prefix removal takes the whole batch; the send
 *     that started lower completes first and frees the batch, the other
 *     frees it again.
 * Sends stay outstanding for as long as their peer is down (send.c queues
 * them), and a leader sends each lagging peer from its own next index, so
 * no run of two or more entries is safe in one batch, at or below the
 * snapshot's index or above it. Each entry therefore gets its own
 * raft_malloc'd buffer and batch NULL, which libraft frees with the
 * entry's own reference count. The cost is one allocation per entry at
 * load (docs/raft_io.md, "Load: one allocation per entry"). Load is the
 * only way a batch enters libraft's log: libraft copies the entries it
 * appends from a received message into buffers of their own (recv.c), and
 * its leader's new entries have none.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Gives e a raft_malloc'd copy of data[0..len) (never NULL, also for
 * len 0) as its buf, batch NULL. RAFT_NOMEM leaves buf.base NULL. */
static int entry_own(struct raft_entry *e, const void *data, size_t len)
{
    uint8_t *b = raft_malloc(len > 0 ? len : 1); /* non-NULL: libraft frees it */
    if (b == NULL) {
        e->buf.base = NULL;
        e->batch = NULL;
        return RAFT_NOMEM;
    }
    if (len > 0) {
        memcpy(b, data, len);
    }
    e->buf.base = b;
    e->buf.len = len;
    e->batch = NULL;
    return 0;
}

/* Frees entries v[0..n) as libraft would (each entry's own buffer) and
 * the array v. */
static void entries_free(struct raft_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert(v[i].batch == NULL);
        raft_free(v[i].buf.base);
    }
    raft_free(v);
}

/* The entries being loaded: v[0..have) are filled. */
typedef struct load_state {
    struct raft_entry *v;
    size_t n, have;
    int why; /* RAFT_NOMEM or RAFT_CORRUPT when load_record stopped the scan */
} load_state;

/* rlog_rs_entries_scan's callback: copies the payloads of one batch record
 * into one buffer per entry (one copy from the reader's buffer). */
static int load_record(void *data, const rlog_rs_entry *e, size_t n)
{
    load_state *ls = data;
    if (n > ls->n - ls->have) {
        ls->why = RAFT_CORRUPT; /* more entries than the index said */
        return RLOG_ECORRUPT;
    }
    for (size_t k = 0; k < n; k++) {
        struct raft_entry *o = &ls->v[ls->have];
        o->term = e[k].term;
        o->type = (unsigned short)e[k].type;
        if (entry_own(o, e[k].data, e[k].len) != 0) {
            ls->why = RAFT_NOMEM;
            return RLOG_ENOMEM;
        }
        ls->have++;
    }
    return 0;
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
    int rv = rlog_rs_entries_scan(r->rs, first, last, load_record, &ls);
    if (rv == 0 && ls.have != ls.n) {
        rv = RLOG_ECORRUPT;
        ls.why = RAFT_CORRUPT;
    }
    if (rv != 0) {
        entries_free(ls.v, ls.have);
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
    r->loaded_last = *n_entries > 0 ? last : 0;
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
