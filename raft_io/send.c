/*
 * send: libraft's messages onto the transport (rlog/transport.h), and the
 * address book of peers.
 *
 * A peer is dialled the first time a message goes to it (connect() with
 * libraft's "host:port" mapped to tcp://host:port; the transport redials
 * from then on). Until it is up, up to RIO_PEER_QUEUE_MAX messages wait,
 * encoded, and leave when it comes up; the oldest is dropped beyond that
 * (RAFT_NOCONNECTION). A snapshot is never queued: without a connection it
 * fails at once and libraft retries it later.
 *
 * InstallSnapshot goes as consecutive chunks of snapshot_chunk bytes (each
 * repeating the snapshot's identity and configuration), the next one sent
 * when the transport took the previous one; libraft's data stays borrowed
 * until its callback, which fires after the last chunk (or the first
 * failure).
 *
 * Callbacks: the transport completes sends on the loop thread inside
 * poll() (or inside close()); libraft's callback is posted from there, so
 * it never runs inside a transport call or inside io->send. Sends
 * completed together (a merged message, below) share one post.
 *
 * Coalescing. Every message through the transport costs several thread
 * hand-offs inside nng, so messages of one loop turn to one peer are
 * merged where Raft allows it. The first message of a turn to a peer
 * leaves at once (no latency is added to a lone message); an
 * AppendEntries or AppendEntriesResult that follows it in the same turn
 * is held, and an end-of-turn flush (a function posted to the loop) sends
 * what is held, in order. While held:
 *   - an AppendEntries that continues the held one (same term; its
 *     prev_log_index/prev_log_term are the held one's last entry) is
 *     appended to it: one message with both runs of entries and the later
 *     leader_commit, as if the leader had sent them at once (bounded by
 *     RIO_HOLD_BYTES of payload per message);
 *   - a successful AppendEntriesResult replaces a held successful one of
 *     the same term with a lower or equal last_log_index: acknowledgements
 *     are cumulative, the earlier one says nothing the later does not;
 *   - anything else is held behind them, and a message of another type
 *     (votes, TimeoutNow, InstallSnapshot) first flushes the peer's held
 *     messages, so the order to a peer never changes.
 * Each merged request gets libraft's callback with the merged message's
 * status; libraft keeps an AppendEntries' entries until its callback, so
 * held entries point at libraft's buffers without a copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_io/rio.h"

struct rio_send {
    rio_send *next; /* completed together with this one (a merged message) */
    rio *r;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    int status; /* RAFT_* */
    /* InstallSnapshot in chunks */
    raft_id peer_id;
    rlog_msg snap;  /* identity, conf; chunk fields set per chunk */
    void *conf_buf; /* raft_malloc'd encoded configuration */
    const uint8_t *data;
    size_t offset;
};

char *rlg_rio_url(const char *address)
{
    if (strstr(address, "://") != NULL) {
        return strdup(address);
    }
    size_t n = strlen(address) + sizeof "tcp://";
    char *u = malloc(n);
    if (u != NULL) {
        snprintf(u, n, "tcp://%s", address);
    }
    return u;
}

rio_peer *rlg_rio_peer_get(rio *r, raft_id id)
{
    for (rio_peer *p = r->peers; p != NULL; p = p->next) {
        if (p->id == id) {
            return p;
        }
    }
    rio_peer *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->id = id;
    p->next = r->peers;
    r->peers = p;
    return p;
}

/* Runs the callbacks of a chain of sends completed together. */
static void send_deliver(void *arg)
{
    rio_send *s = arg;
    rio *r = s->r;
    while (s != NULL) {
        rio_send *next = s->next;
        int st = r->closing ? RAFT_CANCELED : s->status;
        raft_free(s->conf_buf);
        struct raft_io_send *req = s->req;
        raft_io_send_cb cb = s->cb;
        free(s);
        if (cb != NULL) {
            cb(req, st);
        }
        s = next;
    }
    rlg_rio_done_one(r);
}

/* Completes s and the sends chained to it (one post). */
static void send_finish(rio_send *s, int status)
{
    for (rio_send *x = s; x != NULL; x = x->next) {
        x->status = status;
    }
    if (rlg_rio_post(s->r, send_deliver, s) != 0) {
        while (s != NULL) {
            rio_send *next = s->next;
            raft_free(s->conf_buf);
            free(s);
            s = next;
        }
    }
}

static int send_code(int rv)
{
    return rv == RLOG_ENOCONN || rv == RLOG_EFULL ? RAFT_NOCONNECTION : rlg_rio_raft_code(rv);
}

static void snap_chunk_next(rio_send *s);

static void send_cb(void *data, int status)
{
    rio_send *s = data;
    if (status == 0 && s->conf_buf != NULL && s->offset < s->snap.u.install_snapshot.total &&
        !s->r->closing) {
        snap_chunk_next(s);
        return;
    }
    send_finish(s, status == 0 ? 0 : send_code(status));
}

static void snap_chunk_next(rio_send *s)
{
    rio *r = s->r;
    rlog_msg_install_snapshot *is = &s->snap.u.install_snapshot;
    size_t chunk = r->opts.snapshot_chunk ? r->opts.snapshot_chunk : RIO_SNAPSHOT_CHUNK_DEFAULT;
    size_t left = (size_t)(is->total - s->offset);
    is->offset = s->offset;
    is->chunk_len = left < chunk ? left : chunk;
    is->chunk = is->chunk_len > 0 ? s->data + s->offset : NULL;
    is->done = s->offset + is->chunk_len == is->total;
    s->offset += is->chunk_len;
    int rv = r->t != NULL ? r->t->send(r->t, s->peer_id, &s->snap, send_cb, s) : RLOG_ECLOSED;
    if (rv != 0) {
        rlg_rio_log(r, RLOG_LEVEL_WARN, "send: snapshot %llu to server %llu: %s",
                    (unsigned long long)is->last_index, (unsigned long long)s->peer_id,
                    r->t != NULL ? r->t->errmsg : "closed");
        send_finish(s, send_code(rv));
    }
}

/* libraft message -> wire message (entries array malloc'd in *entries). */
static int to_wire(const struct raft_message *m, rlog_msg *w, rlog_msg_entry **entries)
{
    memset(w, 0, sizeof *w);
    *entries = NULL;
    switch (m->type) {
    case RAFT_IO_REQUEST_VOTE:
        w->type = RLOG_MSG_REQUEST_VOTE;
        w->u.request_vote = (rlog_msg_request_vote){
            .term = m->request_vote.term,
            .candidate_id = m->request_vote.candidate_id,
            .last_log_index = m->request_vote.last_log_index,
            .last_log_term = m->request_vote.last_log_term,
            .disrupt_leader = m->request_vote.disrupt_leader,
            .pre_vote = m->request_vote.pre_vote,
        };
        return 0;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        w->type = RLOG_MSG_REQUEST_VOTE_RESULT;
        w->u.request_vote_result = (rlog_msg_request_vote_result){
            .term = m->request_vote_result.term,
            .vote_granted = m->request_vote_result.vote_granted,
            .pre_vote = (rlog_msg_tribool)m->request_vote_result.pre_vote,
        };
        return 0;
    case RAFT_IO_APPEND_ENTRIES: {
        const struct raft_append_entries *ae = &m->append_entries;
        w->type = RLOG_MSG_APPEND_ENTRIES;
        w->u.append_entries = (rlog_msg_append_entries){
            .term = ae->term,
            .prev_log_index = ae->prev_log_index,
            .prev_log_term = ae->prev_log_term,
            .leader_commit = ae->leader_commit,
            .n_entries = ae->n_entries,
        };
        if (ae->n_entries > 0) {
            rlog_msg_entry *e = calloc(ae->n_entries, sizeof *e);
            if (e == NULL) {
                return RAFT_NOMEM;
            }
            for (unsigned i = 0; i < ae->n_entries; i++) {
                if (ae->entries[i].buf.len > UINT32_MAX) {
                    free(e);
                    return RAFT_TOOBIG;
                }
                e[i].term = ae->entries[i].term;
                e[i].type = (uint16_t)ae->entries[i].type;
                e[i].len = (uint32_t)ae->entries[i].buf.len;
                e[i].data = e[i].len > 0 ? ae->entries[i].buf.base : NULL;
            }
            w->u.append_entries.entries = e;
            *entries = e;
        }
        return 0;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        w->type = RLOG_MSG_APPEND_ENTRIES_RESULT;
        w->u.append_entries_result = (rlog_msg_append_entries_result){
            .term = m->append_entries_result.term,
            .rejected = m->append_entries_result.rejected,
            .last_log_index = m->append_entries_result.last_log_index,
        };
        return 0;
    case RAFT_IO_TIMEOUT_NOW:
        w->type = RLOG_MSG_TIMEOUT_NOW;
        w->u.timeout_now = (rlog_msg_timeout_now){
            .term = m->timeout_now.term,
            .last_log_index = m->timeout_now.last_log_index,
            .last_log_term = m->timeout_now.last_log_term,
        };
        return 0;
    default:
        return RAFT_INVALID;
    }
}

/* Points the peer at `address` (libraft form), dialling it if needed. */
static int peer_dial(rio *r, rio_peer *p, const char *address)
{
    if (p->url == NULL || p->address == NULL || strcmp(p->address, address) != 0) {
        char *a = strdup(address);
        char *u = rlg_rio_url(address);
        if (a == NULL || u == NULL) {
            free(a);
            free(u);
            return RAFT_NOMEM;
        }
        free(p->address);
        p->address = a;
        if (p->dialing && p->url != NULL && strcmp(p->url, u) != 0) {
            r->t->disconnect(r->t, p->id); /* the server moved */
            p->dialing = false;
        }
        free(p->url);
        p->url = u;
    }
    if (!p->dialing) {
        int rv = r->t->connect(r->t, p->id, p->url);
        if (rv != 0) {
            return rlg_rio_err(r, send_code(rv), "send: cannot dial server %llu at %s: %s",
                               (unsigned long long)p->id, p->url, r->t->errmsg);
        }
        p->dialing = true;
    }
    return 0;
}

static void queued_free(rio_queued *q)
{
    rlog_free(q->buf);
    free(q);
}

/* Keeps an encoded copy until the peer is up. */
static int peer_queue(rio *r, rio_peer *p, const rlog_msg *w, rio_send *s)
{
    rio_queued *q = calloc(1, sizeof *q);
    if (q == NULL) {
        return RAFT_NOMEM;
    }
    int rv = rlog_msg_encode(w, &q->buf, &q->len);
    if (rv != 0) {
        free(q);
        return rlg_rio_raft_code(rv);
    }
    q->send = s; /* the rio_send, completed later */
    if (p->qn >= RIO_PEER_QUEUE_MAX) {
        rio_queued *old = p->qhead;
        p->qhead = old->next;
        if (p->qhead == NULL) {
            p->qtail = NULL;
        }
        p->qn--;
        send_finish(old->send, RAFT_NOCONNECTION);
        queued_free(old);
    }
    if (p->qtail != NULL) {
        p->qtail->next = q;
    } else {
        p->qhead = q;
    }
    p->qtail = q;
    p->qn++;
    return 0;
}

static int send_snapshot(rio *r, rio_peer *p, const struct raft_message *m, rio_send *s)
{
    const struct raft_install_snapshot *is = &m->install_snapshot;
    if (!p->up) {
        return RAFT_NOCONNECTION;
    }
    struct raft_buffer conf;
    int rv = raft_configuration_encode(&is->conf, &conf);
    if (rv != 0) {
        return rv;
    }
    s->conf_buf = conf.base;
    s->peer_id = p->id;
    s->data = is->data.base;
    s->offset = 0;
    s->snap.type = RLOG_MSG_INSTALL_SNAPSHOT;
    s->snap.u.install_snapshot = (rlog_msg_install_snapshot){
        .term = is->term,
        .last_index = is->last_index,
        .last_term = is->last_term,
        .conf_index = is->conf_index,
        .conf_len = conf.len,
        .conf = conf.base,
        .total = is->data.len,
    };
    snap_chunk_next(s); /* failures complete s */
    return 0;
}

/* Hands a message to the transport, or keeps it encoded while the peer is
 * not up; failures complete s (and the sends chained to it). */
static void send_wire(rio *r, rio_peer *p, const rlog_msg *w, rio_send *s)
{
    int rv;
    if (p->up) {
        rv = r->t->send(r->t, p->id, w, send_cb, s);
        if (rv != 0) {
            send_finish(s, send_code(rv));
        }
    } else if ((rv = peer_queue(r, p, w, s)) != 0) {
        send_finish(s, rv);
    }
}

/* ----------------------------------------------------------- coalescing */

static void held_free(rio_held *h)
{
    free(h->entries);
    free(h);
}

/* Sends what is held for p, in order. */
static void flush_peer(rio *r, rio_peer *p)
{
    while (p->hhead != NULL) {
        rio_held *h = p->hhead;
        p->hhead = h->next;
        if (p->hhead == NULL) {
            p->htail = NULL;
        }
        rlog_msg w;
        rlog_msg_entry *entries = NULL;
        int rv = atomic_load(&r->append_failed) ? RAFT_IOERR : to_wire(&h->m, &w, &entries);
        if (rv != 0 || r->t == NULL) {
            send_finish(h->sends, rv != 0 ? rv : RAFT_CANCELED);
        } else {
            send_wire(r, p, &w, h->sends);
        }
        free(entries);
        held_free(h);
    }
}

static void flush_task(void *arg)
{
    rio *r = arg;
    r->flush_posted = false;
    for (rio_peer *p = r->peers; p != NULL; p = p->next) {
        if (!r->closing) {
            flush_peer(r, p);
        }
        p->turn_sent = false;
    }
    rlg_rio_done_one(r);
}

/* Queues the end-of-turn flush; false when the loop refuses it. */
static bool flush_post(rio *r)
{
    if (!r->flush_posted) {
        if (rlg_rio_post(r, flush_task, r) != 0) {
            return false;
        }
        r->flush_posted = true;
    }
    return true;
}

static bool ae_continues(const struct raft_append_entries *h, const struct raft_append_entries *a)
{
    raft_term last_term = h->n_entries > 0 ? h->entries[h->n_entries - 1].term : h->prev_log_term;
    return a->term == h->term && a->prev_log_index == h->prev_log_index + h->n_entries &&
           a->prev_log_term == last_term;
}

static bool aer_supersedes(const struct raft_append_entries_result *h,
                           const struct raft_append_entries_result *a)
{
    return h->rejected == 0 && a->rejected == 0 && a->term == h->term &&
           a->last_log_index >= h->last_log_index;
}

/* Appends a->entries to h (the structs; the payloads stay libraft's). */
static int held_add_entries(rio_held *h, const struct raft_append_entries *a, size_t bytes)
{
    struct raft_append_entries *ha = &h->m.append_entries;
    unsigned n = ha->n_entries + a->n_entries;
    if (n > h->cap) {
        unsigned cap = h->cap ? h->cap : 16;
        while (cap < n) {
            cap *= 2;
        }
        struct raft_entry *v = realloc(h->entries, cap * sizeof *v);
        if (v == NULL) {
            return RAFT_NOMEM;
        }
        h->entries = v;
        h->cap = cap;
    }
    if (a->n_entries > 0) {
        memcpy(h->entries + ha->n_entries, a->entries, a->n_entries * sizeof *a->entries);
    }
    ha->entries = h->entries;
    ha->n_entries = n;
    ha->leader_commit = a->leader_commit;
    h->bytes += bytes;
    return 0;
}

/* Holds an AppendEntries or AppendEntriesResult for the end of the turn,
 * merged into the last held message when Raft allows it (see the top). On
 * failure nothing is held and s is not used. */
static int hold(rio *r, rio_peer *p, const struct raft_message *m, rio_send *s)
{
    rio_held *h = p->htail;
    size_t bytes = 0;
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        const struct raft_append_entries *a = &m->append_entries;
        for (unsigned i = 0; i < a->n_entries; i++) {
            if (a->entries[i].buf.len > UINT32_MAX) {
                return RAFT_TOOBIG;
            }
            bytes += a->entries[i].buf.len;
        }
        if (h != NULL &&
            !(h->m.type == RAFT_IO_APPEND_ENTRIES && ae_continues(&h->m.append_entries, a) &&
              h->bytes + bytes <= RIO_HOLD_BYTES)) {
            h = NULL;
        }
    } else if (h != NULL &&
               !(h->m.type == RAFT_IO_APPEND_ENTRIES_RESULT &&
                 aer_supersedes(&h->m.append_entries_result, &m->append_entries_result))) {
        h = NULL;
    }
    bool fresh = h == NULL;
    if (fresh) {
        h = calloc(1, sizeof *h);
        if (h == NULL) {
            return RAFT_NOMEM;
        }
        h->m = *m;
        h->m.server_address = NULL; /* libraft's; only the id is needed now */
        if (m->type == RAFT_IO_APPEND_ENTRIES) {
            h->m.append_entries.entries = NULL;
            h->m.append_entries.n_entries = 0;
        }
    }
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        if (held_add_entries(h, &m->append_entries, bytes) != 0) {
            if (fresh) {
                held_free(h);
            }
            return RAFT_NOMEM;
        }
    } else {
        h->m.append_entries_result = m->append_entries_result;
    }
    if (fresh) {
        if (p->htail != NULL) {
            p->htail->next = h;
        } else {
            p->hhead = h;
        }
        p->htail = h;
    }
    if (h->sends_tail != NULL) {
        h->sends_tail->next = s;
    } else {
        h->sends = s;
    }
    h->sends_tail = s;
    if (!flush_post(r)) {
        flush_peer(r, p); /* no later turn to wait for: send now */
    }
    return 0;
}

int rlg_rio_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *message,
                 raft_io_send_cb cb)
{
    rio *r = io->impl;
    if (r->t == NULL || r->closing || !r->t_inited) {
        return rlg_rio_err(r, RAFT_CANCELED, "send: the io is closing or not initialised");
    }
    req->cb = cb;
    rio_peer *p = rlg_rio_peer_get(r, message->server_id);
    rio_send *s = calloc(1, sizeof *s);
    if (p == NULL || s == NULL) {
        free(s);
        return rlg_rio_err(r, RAFT_NOMEM, "send: out of memory");
    }
    s->r = r;
    s->req = req;
    s->cb = cb;
    if (atomic_load(&r->append_failed)) {
        /* Fail-stop after a disk failure: the server goes silent, so the
         * others elect a leader whose disk works (see recv.c). */
        send_finish(s, RAFT_IOERR);
        return 0;
    }
    int rv = peer_dial(r, p, message->server_address != NULL ? message->server_address : "");
    if (rv != 0) {
        rlg_rio_log(r, RLOG_LEVEL_WARN, "%s", io->errmsg);
        send_finish(s, rv);
        return 0;
    }
    bool mergeable =
        message->type == RAFT_IO_APPEND_ENTRIES || message->type == RAFT_IO_APPEND_ENTRIES_RESULT;
    if (mergeable && (p->hhead != NULL || (p->up && p->turn_sent))) {
        if ((rv = hold(r, p, message, s)) != 0) {
            free(s);
            return rlg_rio_err(r, rv, "send: message type %d to server %llu: %s", message->type,
                               (unsigned long long)message->server_id, raft_strerror(rv));
        }
        return 0;
    }
    flush_peer(r, p); /* what is held goes first */
    if (message->type == RAFT_IO_INSTALL_SNAPSHOT) {
        rv = send_snapshot(r, p, message, s);
        if (rv != 0) {
            send_finish(s, rv);
        }
        return 0;
    }
    rlog_msg w;
    rlog_msg_entry *entries;
    if ((rv = to_wire(message, &w, &entries)) != 0) {
        free(s);
        return rlg_rio_err(r, rv, "send: message type %d to server %llu: %s", message->type,
                           (unsigned long long)message->server_id, raft_strerror(rv));
    }
    send_wire(r, p, &w, s);
    free(entries);
    if (p->up && flush_post(r)) {
        p->turn_sent = true; /* later ones this turn are held */
    }
    return 0;
}

/* ------------------------------------------------------ transport events */

static const char *strip_scheme(const char *url)
{
    const char *t = strstr(url, "://");
    return t != NULL && strncmp(url, "tcp", 3) == 0 ? t + 3 : url;
}

void rlg_rio_peer_up(void *data, uint64_t peer_id, const rlog_msg_hello *hello)
{
    rio *r = data;
    rio_peer *p = rlg_rio_peer_get(r, peer_id);
    if (p == NULL) {
        rlg_rio_log(r, RLOG_LEVEL_ERROR, "peer %llu up: out of memory",
                    (unsigned long long)peer_id);
        return;
    }
    p->up = true;
    if (p->address == NULL && hello->address != NULL && hello->address[0] != '\0') {
        p->address = strdup(strip_scheme(hello->address));
    }
    while (p->qhead != NULL && p->up && r->t != NULL) {
        rio_queued *q = p->qhead;
        p->qhead = q->next;
        if (p->qhead == NULL) {
            p->qtail = NULL;
        }
        p->qn--;
        rio_send *s = q->send;
        rlog_msg w;
        int rv = rlog_msg_decode(q->buf, q->len, 0, &w, NULL, 0);
        if (rv == 0) {
            rv = r->t->send(r->t, p->id, &w, send_cb, s);
            rlog_msg_free(&w);
        }
        if (rv != 0) {
            send_finish(s, send_code(rv));
        }
        queued_free(q);
    }
}

void rlg_rio_peer_snap_reset(rio_peer *p)
{
    raft_free(p->snap_buf);
    p->snap_buf = NULL;
    p->snap_active = false;
    p->snap_have = 0;
}

void rlg_rio_peer_down(void *data, uint64_t peer_id, int reason)
{
    rio *r = data;
    for (rio_peer *p = r->peers; p != NULL; p = p->next) {
        if (p->id == peer_id) {
            p->up = false;
            rlg_rio_peer_snap_reset(p);
            rlg_rio_log(r, RLOG_LEVEL_DEBUG, "peer %llu down: %s", (unsigned long long)peer_id,
                        rlog_strerror(reason));
        }
    }
}

void rlg_rio_peers_free(rio *r)
{
    while (r->peers != NULL) {
        rio_peer *p = r->peers;
        r->peers = p->next;
        while (p->hhead != NULL) {
            rio_held *h = p->hhead;
            p->hhead = h->next;
            send_finish(h->sends, RAFT_CANCELED);
            held_free(h);
        }
        while (p->qhead != NULL) {
            rio_queued *q = p->qhead;
            p->qhead = q->next;
            send_finish(q->send, RAFT_CANCELED);
            queued_free(q);
        }
        rlg_rio_peer_snap_reset(p);
        free(p->address);
        free(p->url);
        free(p);
    }
}
