/*
 * recv: wire messages from peers -> libraft's raft_message, handed to the
 * recv callback given to io->start (on the loop thread, inside the
 * transport's poll()).
 *
 * The transport already refused bytes that do not decode (rlog_msg_decode
 * treats them as hostile). What decodes but cannot be a Raft message for
 * libraft is dropped here with an error logged: another message family
 * (shipping, a transport-level result), an entry type libraft does not
 * know, a configuration that does not decode, snapshot chunks out of
 * order. After a disk failure (an append failed) every message is
 * dropped: the server fails stop (send.c fails its sends likewise).
 * Ownership passes to libraft as its own transport does it: an
 * AppendEntries' entries array and one batch buffer holding every payload
 * (batch_own); an InstallSnapshot's configuration and data buffer
 * (raft_malloc).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_io/rio.h"

static void drop(rio *r, uint64_t peer_id, const char *what, const char *why)
{
    rlg_rio_log(r, RLOG_LEVEL_ERROR, "dropped %s from server %llu: %s", what,
                (unsigned long long)peer_id, why);
}

/* An AppendEntries that starts below the first entry this server still
 * holds (prev_log_index under it) is cut to start there. libraft 0.15 takes
 * the entries of such a message as missing ones, appends them after its
 * last entry, then fails to find them and frees what it never held (a
 * crash). It happens when the leader still holds its whole log (its first
 * snapshot is still being written) and probes a follower that has
 * compacted its own: the cluster simulator found it once snapshot files
 * took as long to write as on a real disk (seed 342). The entries cut are
 * at or below this server's snapshot, so committed: the leader's entry at
 * the new base must carry the term this server holds there, or the
 * message is left as it came. A message entirely below the base becomes a
 * heartbeat at the base, so the leader learns where this server's log is.
 * Later libraft versions handle this themselves. */
static void trim_below_base(rio *r, uint64_t peer_id, rlog_msg_append_entries *ae)
{
    uint64_t first = rlog_rs_first_index(r->rs), last = rlog_rs_last_index(r->rs);
    uint64_t base = first <= last ? first : last; /* an entry held, or the snapshot */
    uint64_t base_term = base > 0 ? rlog_rs_term(r->rs, base) : 0;
    if (first == 0 || ae->prev_log_index >= first - 1 || base_term == 0) {
        return; /* no entry of it lies below what this server holds */
    }
    uint64_t skip = base - ae->prev_log_index; /* entries up to and including base */
    if (skip <= ae->n_entries && ae->entries[skip - 1].term != base_term) {
        return;
    }
    rlg_rio_log(r, RLOG_LEVEL_DEBUG,
                "AppendEntries from server %llu starts at %llu, below this server's first "
                "entry %llu: cut to start there",
                (unsigned long long)peer_id, (unsigned long long)ae->prev_log_index + 1,
                (unsigned long long)base);
    if (skip <= ae->n_entries) {
        ae->entries += skip;
        ae->n_entries -= (uint32_t)skip;
    } else {
        ae->n_entries = 0;
    }
    ae->prev_log_index = base;
    ae->prev_log_term = base_term;
}

/* A successful AppendEntries result whose last_log_index names an entry of
 * an older term than this server's current one is handed to libraft with
 * last_log_index 0: libraft then notes the contact (a leader that hears
 * from no majority steps down) and nothing else. libraft 0.15 counts such
 * a result toward commit (replicationQuorum commits its last stored entry
 * once a majority's match index reaches it, checking only that the
 * entry's term is not above the current one), so a leader whose log ends
 * with entries of an older term commits them by counting replicas — the
 * case of Figure 8 of the Raft paper: a later leader may overwrite them
 * (seed 164536). Terms never decrease along a log, so no entry at or below
 * such an index has the current term: nothing of the result may count.
 * Once the leader appends an entry of its own term (a client write, a
 * barrier), results that reach it count and commit everything below, as
 * Raft requires. libraft 0.15 takes last_log_index only as a match index
 * that never goes back (progressMaybeUpdate), so 0 changes neither match
 * nor next index, nor the probe/pipeline mode, nor a promotee's catch-up
 * round — which is also the cost: until the leader has an entry of its
 * own term, a follower in probe mode is sent the same entries again each
 * heartbeat and a promotion's catch-up round does not end (so a libraft
 * 0.15 program should raft_barrier on becoming leader, docs/raft_io.md).
 * Left alone: rejections (a hint, never a match), results of
 * another term (libraft ignores older ones; a newer one makes it step
 * down), an index at or below the snapshot (committed, and an install's
 * answer names the snapshot index: a leader must see it to leave snapshot
 * mode), an index whose term the store does not know (below its first
 * entry: compacted, so committed too), entry 1 (the bootstrap
 * configuration, which every server holds from raft_bootstrap: counting it
 * commits nothing that was not; leaving it alone keeps a fresh cluster's
 * first election as it was), and results while an install is
 * written (a leader's log then ends at that snapshot, committed, plus its
 * own held appends of the current term). The index is capped at the last
 * entry stored, as libraft caps it (the store counts appends in flight,
 * and a leader's log is the store's). On a server that does not lead,
 * libraft ignores every AppendEntries result. Upstream libraft fixed the
 * rule in 0.17.1 ("replication: Don't commit entries from old terms by
 * counting"); with it this rewrite changes nothing that libraft would
 * commit. */
static void old_term_result(rio *r, uint64_t peer_id, struct raft_append_entries_result *v)
{
    rlog_rs_hard_state hs;
    rlog_rs_hard_state_get(r->rs, &hs);
    if (v->rejected != 0 || v->term != hs.term || v->last_log_index == 0 || rlg_rio_snap_holds(r)) {
        return;
    }
    uint64_t last = rlog_rs_last_index(r->rs);
    uint64_t index = v->last_log_index < last ? v->last_log_index : last;
    uint64_t term = rlog_rs_term(r->rs, index);
    if (index == 1 || term == 0 || term >= hs.term) {
        return;
    }
    rlog_rs_stats st;
    rlog_rs_stats_get(r->rs, &st);
    if (st.has_snapshot && index <= st.snap_index) {
        return;
    }
    if (r->old_term_logged != hs.term) {
        r->old_term_logged = hs.term;
        rlg_rio_log(r, RLOG_LEVEL_INFO,
                    "AppendEntries result from server %llu names entry %llu of older term %llu "
                    "in term %llu: not counted toward commit (libraft 0.15; logged once per term)",
                    (unsigned long long)peer_id, (unsigned long long)index,
                    (unsigned long long)term, (unsigned long long)hs.term);
    }
    v->last_log_index = 0;
}

/* Copies the payloads of v[0..n) (bufs borrowed) into one raft_malloc'd
 * batch and points every entry's buf and batch into it. libraft 0.15 wants
 * a received message's entries in one batch: it frees entries[0].batch
 * after a message it did not append from, and it copies the entries it
 * appends into buffers of their own (replication.c, entryCopy), so no
 * batch of a received message ever enters its log (the double free of
 * load.c's "One allocation per entry" cannot reach these). RAFT_NOMEM
 * leaves every batch NULL. */
static int batch_own(struct raft_entry *v, size_t n)
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

static int entries_from_wire(const rlog_msg_append_entries *ae, struct raft_entry **out,
                             const char **why)
{
    *out = NULL;
    if (ae->n_entries == 0) {
        return 0;
    }
    for (uint32_t i = 0; i < ae->n_entries; i++) {
        uint16_t t = ae->entries[i].type;
        if (t != RAFT_COMMAND && t != RAFT_BARRIER && t != RAFT_CHANGE) {
            *why = "entry of an unknown type";
            return RAFT_MALFORMED;
        }
        if (ae->entries[i].term == 0) {
            *why = "entry with term 0";
            return RAFT_MALFORMED;
        }
    }
    struct raft_entry *v = raft_calloc(ae->n_entries, sizeof *v);
    if (v == NULL) {
        *why = "out of memory";
        return RAFT_NOMEM;
    }
    for (uint32_t i = 0; i < ae->n_entries; i++) {
        v[i].term = ae->entries[i].term;
        v[i].type = (unsigned short)ae->entries[i].type;
        v[i].buf.base = (void *)ae->entries[i].data;
        v[i].buf.len = ae->entries[i].len;
    }
    if (batch_own(v, ae->n_entries) != 0) {
        raft_free(v);
        *why = "out of memory";
        return RAFT_NOMEM;
    }
    *out = v;
    return 0;
}

/* Adds a chunk; returns 1 when the snapshot is complete (the data buffer
 * then belongs to the caller), 0 when more is expected, -1 when dropped. */
static int snapshot_chunk(rio *r, rio_peer *p, const rlog_msg_install_snapshot *is)
{
    if (is->offset == 0) {
        rlg_rio_peer_snap_reset(p);
        p->snap_active = true;
        p->snap_last_index = is->last_index;
        p->snap_last_term = is->last_term;
        p->snap_total = is->total;
    } else if (!p->snap_active || p->snap_last_index != is->last_index ||
               p->snap_last_term != is->last_term || p->snap_total != is->total ||
               p->snap_have != is->offset) {
        drop(r, p->id, "install_snapshot chunk", "does not continue the snapshot being received");
        rlg_rio_peer_snap_reset(p);
        return -1;
    }
    if (is->chunk_len > 0) {
        uint8_t *nb = raft_realloc(p->snap_buf, (size_t)(p->snap_have + is->chunk_len));
        if (nb == NULL) {
            drop(r, p->id, "install_snapshot chunk", "out of memory");
            rlg_rio_peer_snap_reset(p);
            return -1;
        }
        memcpy(nb + p->snap_have, is->chunk, is->chunk_len);
        p->snap_buf = nb;
        p->snap_have += is->chunk_len;
    }
    return is->done ? 1 : 0;
}

static void recv_snapshot(rio *r, rio_peer *p, const rlog_msg_install_snapshot *is,
                          struct raft_message *m)
{
    int done = snapshot_chunk(r, p, is);
    if (done <= 0) {
        return;
    }
    struct raft_install_snapshot *out = &m->install_snapshot;
    raft_configuration_init(&out->conf);
    char why[200];
    if (rlg_rio_conf_decode(is->conf, is->conf_len, &out->conf, why, sizeof why) != 0) {
        raft_configuration_close(&out->conf);
        rlg_rio_peer_snap_reset(p);
        drop(r, p->id, "install_snapshot", why);
        return;
    }
    m->type = RAFT_IO_INSTALL_SNAPSHOT;
    out->term = is->term;
    out->last_index = is->last_index;
    out->last_term = is->last_term;
    out->conf_index = is->conf_index;
    out->data.len = (size_t)p->snap_have;
    out->data.base = p->snap_buf != NULL ? p->snap_buf : raft_malloc(8);
    p->snap_buf = NULL; /* libraft's now */
    rlg_rio_peer_snap_reset(p);
    if (out->data.base == NULL) {
        raft_configuration_close(&out->conf);
        drop(r, p->id, "install_snapshot", "out of memory");
        return;
    }
    r->recv(r->io, m);
}

void rlg_rio_recv(void *data, uint64_t peer_id, const rlog_msg *msg)
{
    rio *r = data;
    if (r->closing || r->recv == NULL) {
        return;
    }
    if (atomic_load(&r->append_failed)) {
        /* Fail-stop: a server whose disk failed neither answers nor
         * listens. libraft 0.15 keeps a leader whose appends fail in
         * office (it only fails the requests); without contact with a
         * quorum it steps down, and the others elect a healthy leader.
         * A restart recovers the store. */
        return;
    }
    rio_peer *p = rlg_rio_peer_get(r, peer_id);
    if (p == NULL) {
        drop(r, peer_id, rlog_msg_type_name(msg->type), "out of memory");
        return;
    }
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.server_id = peer_id;
    m.server_address = p->address != NULL ? p->address : "";
    const char *why = NULL;
    switch (msg->type) {
    case RLOG_MSG_REQUEST_VOTE: {
        const rlog_msg_request_vote *v = &msg->u.request_vote;
        m.type = RAFT_IO_REQUEST_VOTE;
        m.request_vote.term = v->term;
        m.request_vote.candidate_id = v->candidate_id;
        m.request_vote.last_log_index = v->last_log_index;
        m.request_vote.last_log_term = v->last_log_term;
        m.request_vote.disrupt_leader = v->disrupt_leader;
        m.request_vote.pre_vote = v->pre_vote;
        break;
    }
    case RLOG_MSG_REQUEST_VOTE_RESULT: {
        const rlog_msg_request_vote_result *v = &msg->u.request_vote_result;
        m.type = RAFT_IO_REQUEST_VOTE_RESULT;
        m.request_vote_result.term = v->term;
        m.request_vote_result.vote_granted = v->vote_granted;
        if (v->pre_vote > RLOG_TRIBOOL_FALSE) {
            why = "pre_vote is not a tribool";
            break;
        }
        m.request_vote_result.pre_vote = (raft_tribool)v->pre_vote;
        break;
    }
    case RLOG_MSG_APPEND_ENTRIES: {
        rlog_msg_append_entries below_base = msg->u.append_entries;
        const rlog_msg_append_entries *ae = &below_base;
        trim_below_base(r, peer_id, &below_base);
        m.type = RAFT_IO_APPEND_ENTRIES;
        m.append_entries.term = ae->term;
        m.append_entries.prev_log_index = ae->prev_log_index;
        m.append_entries.prev_log_term = ae->prev_log_term;
        m.append_entries.leader_commit = ae->leader_commit;
        m.append_entries.n_entries = ae->n_entries;
        if (entries_from_wire(ae, &m.append_entries.entries, &why) != 0) {
            break;
        }
        r->recv(r->io, &m); /* libraft owns entries and batch now */
        return;
    }
    case RLOG_MSG_APPEND_ENTRIES_RESULT: {
        const rlog_msg_append_entries_result *v = &msg->u.append_entries_result;
        m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
        m.append_entries_result.term = v->term;
        m.append_entries_result.rejected = v->rejected;
        m.append_entries_result.last_log_index = v->last_log_index;
        old_term_result(r, peer_id, &m.append_entries_result);
        break;
    }
    case RLOG_MSG_INSTALL_SNAPSHOT:
        recv_snapshot(r, p, &msg->u.install_snapshot, &m);
        return;
    case RLOG_MSG_TIMEOUT_NOW: {
        const rlog_msg_timeout_now *v = &msg->u.timeout_now;
        m.type = RAFT_IO_TIMEOUT_NOW;
        m.timeout_now.term = v->term;
        m.timeout_now.last_log_index = v->last_log_index;
        m.timeout_now.last_log_term = v->last_log_term;
        break;
    }
    default:
        why = "not a Raft message";
        break;
    }
    if (why != NULL) {
        drop(r, peer_id, rlog_msg_type_name(msg->type), why);
        return;
    }
    r->recv(r->io, &m);
}
