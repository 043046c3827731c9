/*
 * Segment shipping, the leader (docs/shipping.md is the protocol).
 *
 * The leader listens on a transport and keeps one entry per peer. A
 * follower opens a session with START (its position and a nonce); the
 * leader compares that position with its own durable view of the log
 * (rlg_ship_view) and answers REFUSE (another log, impossible position),
 * TRUNCATE (diverged: cut at an LSN, then START again) or ACCEPT (maybe
 * with "adopt": start over from the leader's oldest retained segment),
 * which carries the list of side files. Once the follower has every side
 * file (FILES_OK) the leader streams DATA: whole records copied from its
 * segment files, never past the durable extent the view reports, within a
 * window of unacknowledged bytes and messages. ACKs move the window; a gap
 * report or a silent window (resend_ms) sends again from the follower's
 * position. When the side-file list changes (a new snapshot), data stops
 * until the follower confirmed the new list, because records after that
 * point may refer to the new files.
 *
 * Every message from the network is checked: a wrong nonce is a stale
 * session (ignored), a position beyond anything sent is a protocol error
 * (the connection is dropped and the error logged).
 *
 * Threads: everything runs on the owner's thread inside poll(), except
 * rlog_ship_leader_notify (an atomic flag and the transport's post()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica.h"
#include "transport/ship_internal.h"

/* ------------------------------------------------------------------------
 * State
 * ---------------------------------------------------------------------- */

typedef enum ld_phase {
    LP_IDLE = 0, /* connected, no session: waiting for START */
    LP_FILES,    /* ACCEPT sent: waiting for FILES_OK */
    LP_DATA,     /* shipping */
    LP_REFUSED,  /* refused: waiting for the follower to go */
} ld_phase;

/* A DATA message sent and not yet acknowledged. */
typedef struct ld_chunk {
    rlg_ship_pos end; /* normalised position after it */
    size_t len;
} ld_chunk;

typedef struct ld_peer {
    uint64_t id;
    char name[128];
    uint32_t role;
    bool up;
    ld_phase phase;
    int shown; /* state to report while not shipping (truncating, refused) */
    uint64_t gone_ns;
    /* session */
    uint64_t nonce;
    bool session;
    bool adopt;               /* the ACCEPT told it to adopt */
    rlg_ship_pos send;        /* next byte to send */
    rlg_ship_pos recv;        /* acknowledged as received */
    rlg_ship_pos max_sent;    /* furthest position sent this session */
    rlg_ship_pos durable_pos; /* acknowledged durable */
    uint64_t durable_lsn;
    uint64_t files_gen_sent, files_gen_ok;
    bool files_serving; /* it asked for side-file bytes since the last list */
    uint64_t files_sent_ns;
    size_t window;      /* negotiated */
    size_t max_payload; /* data bytes per message the follower accepts */
    ld_chunk *ring;     /* window_msgs entries */
    unsigned ring_head, ring_n;
    size_t inflight;
    uint64_t progress_ns; /* last ACK progress (or first send into an empty window) */
    uint64_t sent_ns;     /* last message sent */
    rlg_ship_pos rewound; /* last rewind target and when */
    uint64_t rewound_ns;
    uint64_t stall_ns; /* a read failed: retry after resend_ns */
    /* statistics */
    uint64_t bytes_sent, sent_lsn, resends;
} ld_peer;

/* A side file of the leader's directory. */
typedef struct ld_file {
    char *name;
    uint64_t size;
    uint32_t crc;
} ld_file;

/* An open segment file, kept across polls (several followers may read
 * different segments). */
typedef struct ld_reader {
    uint64_t seq;
    rlg_seg_reader *r;
    uint64_t used;
} ld_reader;

#define LD_READERS 4

struct rlog_ship_leader {
    rlog_log *log;
    rlog_transport *t;
    rlog_env *env;
    rlog_vfs *vfs;
    char *dir;
    uint64_t server_id;
    /* options */
    size_t window, chunk;
    unsigned window_msgs;
    uint64_t resend_ns, heartbeat_ns;
    char *suffix;
    rlog_logger_fn logger;
    void *logger_data;
    /* the durable view */
    uint64_t log_id;
    rlg_ship_seg *view;
    size_t nview;
    /* side files: the list taken right after the view last changed */
    ld_file *files;
    size_t nfiles;
    uint64_t files_gen, files_upto;
    /* peers (pointers: entries stay put while callbacks run) */
    ld_peer **peers;
    size_t npeers, cap;
    uint8_t *buf;
    size_t bufcap;
    ld_reader readers[LD_READERS];
    uint64_t tick;
    atomic_int wake_pending;
    char errmsg[256];
};

static uint64_t ld_now(rlog_ship_leader *ld)
{
    return ld->env->now_ns(ld->env);
}

#define ld_log(ld, level, ...) rlg_ship_logf((ld)->logger, (ld)->logger_data, level, __VA_ARGS__)

#if defined(__GNUC__)
static void ld_error(rlog_ship_leader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#endif

/* Records a notable error (errmsg) and logs it. */
static void ld_error(rlog_ship_leader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->errmsg, sizeof ld->errmsg, fmt, ap);
    va_end(ap);
    ld_log(ld, RLOG_LEVEL_WARN, "ship leader: %s", ld->errmsg);
}

/* ------------------------------------------------------------------------
 * The view and the side files
 * ---------------------------------------------------------------------- */

static const rlg_ship_seg *ld_seg(const rlog_ship_leader *ld, uint64_t seq)
{
    size_t lo = 0, hi = ld->nview;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ld->view[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < ld->nview && ld->view[lo].seq == seq ? &ld->view[lo] : NULL;
}

/* (seq, end of a sealed seq) is the same place as (seq + 1, 64). */
static rlg_ship_pos ld_norm(const rlog_ship_leader *ld, rlg_ship_pos p)
{
    const rlg_ship_seg *s = ld_seg(ld, p.seq);
    if (s != NULL && s->sealed && p.off == s->end) {
        return (rlg_ship_pos){p.seq + 1, RLG_SEG_HEADER_SIZE};
    }
    return p;
}

static uint64_t ld_durable_lsn(const rlog_ship_leader *ld)
{
    return ld->nview ? ld->view[ld->nview - 1].last_lsn : 0;
}

static void ld_files_free(ld_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
    }
    free(f);
}

static int ld_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the side files (sorted by name), reusing known checksums. Returns
 * 0 and sets *changed, or an error (the old list stays). */
static int ld_files_list(rlog_ship_leader *ld, bool *changed)
{
    char **names = NULL;
    size_t count = 0;
    int e = ld->vfs->list(ld->vfs, ld->dir, &names, &count);
    if (e != 0) {
        ld_error(ld, "listing '%s' for side files: %s", ld->dir, strerror(e));
        return rlog_from_errno(e);
    }
    qsort(names, count, sizeof *names, ld_name_cmp);
    ld_file *nf = calloc(count ? count : 1, sizeof *nf);
    size_t n = 0;
    int rc = nf ? 0 : RLOG_ENOMEM;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (!rlg_ship_side_name(names[i], ld->suffix)) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", ld->dir, names[i]);
        ld_file f = {NULL, 0, 0};
        const ld_file *old = NULL;
        for (size_t k = 0; k < ld->nfiles; k++) {
            if (strcmp(ld->files[k].name, names[i]) == 0) {
                old = &ld->files[k];
            }
        }
        /* A side file is immutable once it has its name (written under a
         * temporary name, renamed): the size is enough to recognise it. */
        rlog_file *h = NULL;
        e = ld->vfs->open(ld->vfs, path, RLOG_VFS_RDONLY, &h);
        if (e == 0) {
            e = ld->vfs->size(ld->vfs, h, &f.size);
            ld->vfs->close(ld->vfs, h);
        }
        if (e == 0 && old != NULL && old->size == f.size) {
            f.crc = old->crc;
        } else if (e == 0) {
            rc = rlg_ship_file_crc(ld->vfs, path, &f.size, &f.crc);
            e = rc == RLOG_ENOTFOUND ? ENOENT : 0;
            rc = rc == RLOG_ENOTFOUND ? 0 : rc;
        }
        if (e == ENOENT) {
            continue; /* removed since the listing */
        }
        if (e != 0 || rc != 0) {
            ld_error(ld, "reading side file '%s': %s", path,
                     e != 0 ? strerror(e) : rlog_strerror(rc));
            rc = rc ? rc : rlog_from_errno(e);
            break;
        }
        f.name = strdup(names[i]);
        if (f.name == NULL) {
            rc = RLOG_ENOMEM;
            break;
        }
        nf[n++] = f;
    }
    rlog_vfs_free_names(names, count);
    if (rc != 0) {
        ld_files_free(nf, n);
        return rc;
    }
    *changed = n != ld->nfiles;
    for (size_t i = 0; i < n && !*changed; i++) {
        *changed = strcmp(nf[i].name, ld->files[i].name) != 0 || nf[i].size != ld->files[i].size ||
                   nf[i].crc != ld->files[i].crc;
    }
    ld_files_free(ld->files, ld->nfiles);
    ld->files = nf;
    ld->nfiles = n;
    return 0;
}

/* Lists the side files again (after the view was taken: every file a
 * record in the view refers to was durable before that record, so it is in
 * the list); a new generation when the list changed. */
static int ld_files_refresh(rlog_ship_leader *ld)
{
    bool changed = false;
    int rc = ld_files_list(ld, &changed);
    if (rc != 0) {
        return rc;
    }
    if (changed || ld->files_gen == 0) {
        ld->files_gen++;
    }
    ld->files_upto = ld_durable_lsn(ld);
    return 0;
}

/* Takes a fresh durable view; when it changed, lists the side files again. */
static int ld_refresh(rlog_ship_leader *ld)
{
    rlg_ship_seg *v = NULL;
    size_t n = 0;
    uint64_t id = 0;
    int rc = rlg_ship_view(ld->log, &v, &n, &id);
    if (rc != 0) {
        ld_error(ld, "reading the log's durable view: %s", rlog_strerror(rc));
        return rc;
    }
    bool same = n == ld->nview && (n == 0 || memcmp(v, ld->view, n * sizeof *v) == 0);
    free(ld->view);
    ld->view = v;
    ld->nview = n;
    ld->log_id = id;
    if (same && ld->files_gen != 0) {
        return 0;
    }
    return ld_files_refresh(ld);
}

/* ------------------------------------------------------------------------
 * Reading segments
 * ---------------------------------------------------------------------- */

static void ld_readers_close(rlog_ship_leader *ld)
{
    for (int i = 0; i < LD_READERS; i++) {
        if (ld->readers[i].r != NULL) {
            rlg_seg_reader_close(ld->readers[i].r);
        }
        ld->readers[i] = (ld_reader){0, NULL, 0};
    }
}

/* Reads len bytes at off of segment seq (RLOG_ENOTFOUND: deleted). */
static int ld_read(rlog_ship_leader *ld, uint64_t seq, uint64_t off, void *buf, size_t len)
{
    ld_reader *slot = NULL;
    for (int i = 0; i < LD_READERS; i++) {
        ld_reader *r = &ld->readers[i];
        if (r->r != NULL && r->seq == seq) {
            slot = r;
            break;
        }
        if (slot == NULL || (slot->r != NULL && (r->r == NULL || r->used < slot->used))) {
            slot = r; /* a free slot, else the least recently used */
        }
    }
    if (slot->r == NULL || slot->seq != seq) {
        if (slot->r != NULL) {
            rlg_seg_reader_close(slot->r);
            slot->r = NULL;
        }
        int rc = rlg_seg_reader_open(ld->log, seq, &slot->r);
        if (rc != 0) {
            slot->r = NULL;
            return rc;
        }
        slot->seq = seq;
    }
    slot->used = ++ld->tick;
    return rlg_seg_reader_read(slot->r, off, buf, len);
}

static int ld_buf(rlog_ship_leader *ld, size_t len)
{
    if (len <= ld->bufcap) {
        return 0;
    }
    size_t cap = ld->bufcap ? ld->bufcap : 65536;
    while (cap < len) {
        cap *= 2;
    }
    uint8_t *b = realloc(ld->buf, cap);
    if (b == NULL) {
        return RLOG_ENOMEM;
    }
    ld->buf = b;
    ld->bufcap = cap;
    return 0;
}

/*
 * Reads whole records of segment s from off into ld->buf: as many as fit
 * in `limit` bytes, or — when the first record alone is larger and `alone`
 * is set — that record by itself (if it fits max_payload). *n receives the
 * bytes (0: nothing fits), *last_lsn the lsn field of the last record.
 * RLOG_ECORRUPT for a record that runs past the durable end.
 */
static int ld_records(rlog_ship_leader *ld, const rlg_ship_seg *s, uint64_t off, size_t limit,
                      bool alone, size_t max_payload, size_t *n, uint64_t *last_lsn)
{
    *n = 0;
    uint64_t avail = s->end - off;
    size_t want = avail < limit ? (size_t)avail : limit;
    if (want < RLG_REC_HEADER_SIZE) {
        want = avail < RLG_REC_HEADER_SIZE ? (size_t)avail : RLG_REC_HEADER_SIZE;
    }
    int rc = ld_buf(ld, want);
    rc = rc ? rc : ld_read(ld, s->seq, off, ld->buf, want);
    if (rc != 0) {
        return rc;
    }
    size_t p = 0;
    while (p + RLG_REC_HEADER_SIZE <= want) {
        uint64_t rec = RLG_REC_HEADER_SIZE + (uint64_t)rlg_rec_len_at(ld->buf + p);
        if (rec > want - p) {
            break;
        }
        *last_lsn = rlg_rec_lsn_at(ld->buf + p);
        p += (size_t)rec;
    }
    if (p > 0 && p <= limit) {
        *n = p;
        return 0;
    }
    if (want < RLG_REC_HEADER_SIZE) {
        goto past_end;
    }
    uint64_t rec = RLG_REC_HEADER_SIZE + (uint64_t)rlg_rec_len_at(ld->buf);
    if (rec > avail) {
        goto past_end;
    }
    if (!alone) {
        return 0;
    }
    if (rec > max_payload) {
        ld_error(ld,
                 "segment %016" PRIx64 " offset %" PRIu64 ": a record of %" PRIu64
                 " bytes does not fit in a message (at most %zu): raise max_message",
                 s->seq, off, rec, max_payload);
        return RLOG_ETOOBIG;
    }
    rc = ld_buf(ld, (size_t)rec);
    rc = rc ? rc : ld_read(ld, s->seq, off, ld->buf, (size_t)rec);
    if (rc == 0) {
        *n = (size_t)rec;
        *last_lsn = rlg_rec_lsn_at(ld->buf);
    }
    return rc;
past_end:
    ld_error(ld,
             "segment %016" PRIx64 " offset %" PRIu64
             ": a record runs past the durable end %" PRIu64 " (damaged segment?)",
             s->seq, off, s->end);
    return RLOG_ECORRUPT;
}

/* ------------------------------------------------------------------------
 * Peers
 * ---------------------------------------------------------------------- */

static ld_peer *ld_peer_find(rlog_ship_leader *ld, uint64_t id)
{
    for (size_t i = 0; i < ld->npeers; i++) {
        if (ld->peers[i]->id == id) {
            return ld->peers[i];
        }
    }
    return NULL;
}

static void ld_peer_remove(rlog_ship_leader *ld, size_t i)
{
    free(ld->peers[i]->ring);
    free(ld->peers[i]);
    ld->peers[i] = ld->peers[--ld->npeers];
}

/* Forgets the oldest disconnected followers beyond RLG_SHIP_GONE_KEEP. */
static void ld_peers_prune(rlog_ship_leader *ld)
{
    for (;;) {
        size_t gone = 0, oldest = 0;
        for (size_t i = 0; i < ld->npeers; i++) {
            if (!ld->peers[i]->up) {
                if (gone == 0 || ld->peers[i]->gone_ns < ld->peers[oldest]->gone_ns) {
                    oldest = i;
                }
                gone++;
            }
        }
        if (gone <= RLG_SHIP_GONE_KEEP) {
            return;
        }
        ld_peer_remove(ld, oldest);
    }
}

static ld_peer *ld_peer_add(rlog_ship_leader *ld, uint64_t id)
{
    if (ld->npeers == ld->cap) {
        size_t cap = ld->cap ? 2 * ld->cap : 8;
        ld_peer **p = realloc(ld->peers, cap * sizeof *p);
        if (p == NULL) {
            return NULL;
        }
        ld->peers = p;
        ld->cap = cap;
    }
    ld_peer *p = calloc(1, sizeof *p);
    ld_chunk *ring = calloc(ld->window_msgs, sizeof *ring);
    if (p == NULL || ring == NULL) {
        free(p);
        free(ring);
        return NULL;
    }
    p->id = id;
    p->ring = ring;
    ld->peers[ld->npeers++] = p;
    return p;
}

static void ld_ring_clear(ld_peer *p)
{
    p->ring_head = p->ring_n = 0;
    p->inflight = 0;
}

/* Ends the peer's session (its data in flight is forgotten). */
static void ld_session_end(ld_peer *p)
{
    p->session = false;
    p->phase = p->phase == LP_REFUSED ? LP_REFUSED : LP_IDLE;
    ld_ring_clear(p);
    p->files_serving = false;
}

static int ld_send(rlog_ship_leader *ld, ld_peer *p, const rlog_msg *m)
{
    int rc = ld->t->send(ld->t, p->id, m, NULL, NULL);
    if (rc != 0 && rc != RLOG_ENOCONN) {
        ld_error(ld, "sending %s to follower %" PRIu64 ": %s (%s)", rlog_msg_type_name(m->type),
                 p->id, rlog_strerror(rc), ld->t->errmsg);
    }
    if (rc == 0) {
        p->sent_ns = ld_now(ld);
    }
    return rc;
}

#if defined(__GNUC__)
static void ld_protocol_error(rlog_ship_leader *ld, ld_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

/* A peer broke the protocol: drop its connection (a follower redials and
 * starts a new session). */
static void ld_protocol_error(rlog_ship_leader *ld, ld_peer *p, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ld_error(ld, "follower %" PRIu64 " (%s): %s; dropping the connection", p->id, p->name, what);
    ld_session_end(p);
    ld->t->disconnect(ld->t, p->id);
}

static void ld_text_msg(rlog_msg *m, rlog_msg_type type, uint64_t nonce, uint64_t num,
                        const char *text)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    if (type == RLOG_MSG_SHIP_REFUSE) {
        m->u.ship_refuse = (rlog_msg_ship_refuse){nonce, (uint32_t)num, text};
    } else if (type == RLOG_MSG_SHIP_TRUNCATE) {
        m->u.ship_truncate = (rlog_msg_ship_truncate){nonce, num, text};
    } else {
        m->u.ship_restart = (rlog_msg_ship_restart){nonce, text};
    }
}

/* Tells the follower to start a new session (this one cannot go on). */
static void ld_restart(rlog_ship_leader *ld, ld_peer *p, const char *why)
{
    rlog_msg m;
    ld_text_msg(&m, RLOG_MSG_SHIP_RESTART, p->nonce, 0, why);
    ld_log(ld, RLOG_LEVEL_INFO, "ship leader: follower %" PRIu64 ": restart: %s", p->id, why);
    ld_send(ld, p, &m);
    ld_session_end(p);
}

/* ------------------------------------------------------------------------
 * Sessions: START
 * ---------------------------------------------------------------------- */

/* Where a follower at `s` continues: (seq + 1, 64) after a seal. */
static rlg_ship_pos ld_next_pos(const rlog_msg_ship_start *s)
{
    return s->sealed ? (rlg_ship_pos){s->seq + 1, RLG_SEG_HEADER_SIZE}
                     : (rlg_ship_pos){s->seq, s->end};
}

/* A position no follower can hold: NULL when plausible, else why not. */
static const char *ld_start_invalid(const rlog_msg_ship_start *s, char *buf, size_t cap)
{
    if (s->log_id == 0) {
        return NULL;
    }
    if (s->seq == 0 || s->seg_first_lsn == 0 || s->first_lsn == 0) {
        snprintf(buf, cap, "segment %" PRIu64 ", first LSN %" PRIu64 ", log first LSN %" PRIu64,
                 s->seq, s->seg_first_lsn, s->first_lsn);
    } else if (s->end < RLG_SEG_HEADER_SIZE || s->end > UINT32_MAX) {
        /* (file_size is the size new segments get: the newest may differ) */
        snprintf(buf, cap, "end %" PRIu64 " outside [64, 4 GiB)", s->end);
    } else if (s->last_rec_off == 0 ? s->end != RLG_SEG_HEADER_SIZE
                                    : (s->last_rec_off < RLG_SEG_HEADER_SIZE ||
                                       s->last_rec_off > s->end - RLG_REC_HEADER_SIZE)) {
        snprintf(buf, cap, "last record at %" PRIu64 " with end %" PRIu64, s->last_rec_off, s->end);
    } else if (s->last_lsn + 1 < s->seg_first_lsn || s->first_lsn > s->seg_first_lsn ||
               s->last_rec_lsn > s->last_lsn) {
        snprintf(buf, cap,
                 "LSNs: log %" PRIu64 "..%" PRIu64 ", segment from %" PRIu64
                 ", last record %" PRIu64,
                 s->first_lsn, s->last_lsn, s->seg_first_lsn, s->last_rec_lsn);
    } else {
        return NULL;
    }
    return buf;
}

/* The outcome of comparing a follower's position with the view. */
typedef struct ld_verdict {
    int kind;     /* 0 accept, 1 truncate, 2 refuse */
    bool adopt;   /* accept: start over from the oldest retained segment */
    uint64_t lsn; /* truncate: cut here */
    uint32_t code;
    char why[256];
} ld_verdict;

/* Does the follower's last record in segment s match the leader's bytes? */
static int ld_last_record_matches(rlog_ship_leader *ld, const rlg_ship_seg *s,
                                  const rlog_msg_ship_start *st, bool *match, char *why, size_t cap)
{
    *match = false;
    if (st->end > s->end) {
        snprintf(why, cap,
                 "the follower's segment %016" PRIx64 " ends at %" PRIu64
                 ", past the leader's durable end %" PRIu64,
                 s->seq, st->end, s->end);
        return 0;
    }
    if (st->last_rec_off == 0) {
        *match = true; /* header only: log id, seq and first LSN match */
        return 0;
    }
    uint8_t h[RLG_REC_HEADER_SIZE];
    int rc = ld_read(ld, s->seq, st->last_rec_off, h, sizeof h);
    if (rc != 0) {
        return rc;
    }
    rlg_rec_header rh;
    rlg_rec_header_decode(h, &rh);
    uint32_t crc = rh.crc;
    uint64_t lsn = rh.lsn;
    uint64_t end = st->last_rec_off + RLG_REC_HEADER_SIZE + rh.len;
    *match = crc == st->last_rec_crc && lsn == st->last_rec_lsn && end == st->end &&
             (!st->sealed || (s->sealed && s->end == st->end));
    if (!*match) {
        snprintf(why, cap,
                 "the follower's last record in segment %016" PRIx64 " at offset %" PRIu64
                 " (LSN %" PRIu64 ", crc %08" PRIx32 ") differs from the leader's (LSN %" PRIu64
                 ", crc %08" PRIx32 ")",
                 s->seq, st->last_rec_off, st->last_rec_lsn, st->last_rec_crc, lsn, crc);
    }
    return 0;
}

static int ld_judge(rlog_ship_leader *ld, const rlog_msg_ship_start *st, ld_verdict *v)
{
    memset(v, 0, sizeof *v);
    char buf[200];
    const char *bad = ld_start_invalid(st, buf, sizeof buf);
    const rlg_ship_seg *first = &ld->view[0], *last = &ld->view[ld->nview - 1];
    if (bad != NULL) {
        v->kind = 2;
        v->code = RLOG_EPROTO;
        snprintf(v->why, sizeof v->why, "the follower's position is impossible: %s", bad);
        return 0;
    }
    if (st->log_id == 0) {
        v->adopt = true; /* empty: start from the oldest retained segment */
        return 0;
    }
    if (st->log_id != ld->log_id) {
        v->kind = 2;
        v->code = RLOG_EFOREIGN;
        snprintf(v->why, sizeof v->why,
                 "the follower holds log %016" PRIx64 ", the leader serves log %016" PRIx64
                 ": refusing to mix them",
                 st->log_id, ld->log_id);
        return 0;
    }
    if (st->seq > last->seq) {
        v->kind = 1;
        v->lsn = st->seg_first_lsn < last->last_lsn + 1 ? st->seg_first_lsn : last->last_lsn + 1;
        snprintf(v->why, sizeof v->why,
                 "the follower holds segment %016" PRIx64
                 "; the leader's newest durable segment is %016" PRIx64 " (LSNs to %" PRIu64 ")",
                 st->seq, last->seq, last->last_lsn);
        return 0;
    }
    const rlg_ship_seg *s = ld_seg(ld, st->seq);
    if (s == NULL) { /* before the leader's retained prefix */
        v->adopt =
            !(st->sealed && st->seq + 1 == first->seq && st->last_lsn + 1 == first->first_lsn);
        return 0;
    }
    bool match = false;
    if (s->first_lsn != st->seg_first_lsn) {
        snprintf(v->why, sizeof v->why,
                 "the follower's segment %016" PRIx64 " starts at LSN %" PRIu64
                 ", the leader's at %" PRIu64,
                 s->seq, st->seg_first_lsn, s->first_lsn);
    } else {
        int rc = ld_last_record_matches(ld, s, st, &match, v->why, sizeof v->why);
        if (rc != 0) {
            return rc;
        }
    }
    if (!match) {
        v->kind = 1;
        v->lsn = st->seg_first_lsn; /* at most back to the mismatching segment's start */
    }
    return 0;
}

/* The side-file list as a message carries it (malloc'd, borrowing the
 * names; NULL after logging when out of memory). */
static rlog_msg_ship_file *ld_files_msg(rlog_ship_leader *ld)
{
    rlog_msg_ship_file *out = calloc(ld->nfiles ? ld->nfiles : 1, sizeof *out);
    if (out == NULL) {
        ld_error(ld, "out of memory for the side-file list");
        return NULL;
    }
    for (size_t i = 0; i < ld->nfiles; i++) {
        out[i] = (rlog_msg_ship_file){ld->files[i].name, ld->files[i].size, ld->files[i].crc};
    }
    return out;
}

/* Sends ACCEPT (repeated until FILES_OK arrives). */
static void ld_send_accept(rlog_ship_leader *ld, ld_peer *p)
{
    rlog_msg_ship_file *files = ld_files_msg(ld);
    if (files == NULL) {
        return;
    }
    const rlg_ship_seg *first = &ld->view[0];
    rlog_msg m = {.type = RLOG_MSG_SHIP_ACCEPT};
    m.u.ship_accept = (rlog_msg_ship_accept){p->nonce,
                                             ld->log_id,
                                             p->adopt,
                                             p->adopt ? first->file_size : 0,
                                             p->adopt ? first->seq : 0,
                                             p->adopt ? first->first_lsn : 0,
                                             ld_durable_lsn(ld),
                                             ld->files_gen,
                                             ld->files_upto,
                                             (uint32_t)ld->nfiles,
                                             files};
    p->files_gen_sent = ld->files_gen;
    p->files_sent_ns = ld_now(ld);
    ld_send(ld, p, &m);
    free(files);
}

static void ld_send_files(rlog_ship_leader *ld, ld_peer *p)
{
    rlog_msg_ship_file *files = ld_files_msg(ld);
    if (files == NULL) {
        return;
    }
    rlog_msg m = {.type = RLOG_MSG_SHIP_FILES};
    m.u.ship_files =
        (rlog_msg_ship_files){p->nonce, ld->files_gen, ld->files_upto, (uint32_t)ld->nfiles, files};
    p->files_gen_sent = ld->files_gen;
    p->files_sent_ns = ld_now(ld);
    ld_send(ld, p, &m);
    free(files);
}

static void ld_on_start(rlog_ship_leader *ld, ld_peer *p, const rlog_msg_ship_start *st)
{
    if (p->role != RLOG_ROLE_SHIP_FOLLOWER) {
        ld_protocol_error(ld, p, "ship_start from a peer whose role is %s",
                          rlog_msg_role_name(p->role));
        return;
    }
    if (p->session && st->nonce == p->nonce && p->phase == LP_DATA) {
        return; /* a duplicate of the START that opened this session */
    }
    if (ld->nview == 0) {
        return; /* nothing durable yet: the follower repeats its START */
    }
    ld_session_end(p);
    p->phase = LP_IDLE;
    p->nonce = st->nonce;
    p->session = true;
    ld_verdict v;
    int rc = ld_judge(ld, st, &v);
    if (rc != 0) {
        ld_error(ld, "follower %" PRIu64 ": checking its position: %s", p->id, rlog_strerror(rc));
        p->session = false; /* it repeats the START */
        return;
    }
    rlog_msg m;
    if (v.kind == 2) {
        ld_error(ld, "follower %" PRIu64 " (%s) refused: %s", p->id, p->name, v.why);
        ld_text_msg(&m, RLOG_MSG_SHIP_REFUSE, st->nonce, v.code, v.why);
        ld_send(ld, p, &m);
        p->phase = LP_REFUSED;
        p->shown = RLOG_SHIP_REFUSED;
        return;
    }
    if (v.kind == 1) {
        ld_log(ld, RLOG_LEVEL_WARN,
               "ship leader: follower %" PRIu64 " diverged: %s; truncating it at LSN %" PRIu64,
               p->id, v.why, v.lsn);
        ld_text_msg(&m, RLOG_MSG_SHIP_TRUNCATE, st->nonce, v.lsn, v.why);
        ld_send(ld, p, &m);
        p->shown = RLOG_SHIP_TRUNCATING;
        p->session = false;
        return;
    }
    const rlg_ship_seg *first = &ld->view[0];
    p->adopt = v.adopt;
    p->send = v.adopt ? (rlg_ship_pos){first->seq, RLG_SEG_HEADER_SIZE} : ld_next_pos(st);
    p->recv = p->max_sent = p->durable_pos = p->send;
    p->durable_lsn = v.adopt ? first->first_lsn - 1 : st->last_lsn;
    p->sent_lsn = p->durable_lsn;
    p->window = st->window != 0 && st->window < ld->window ? (size_t)st->window : ld->window;
    uint64_t maxmsg = st->max_message ? st->max_message : RLOG_WIRE_MAX_BYTES_DEFAULT;
    if (maxmsg <= 2 * RLG_SHIP_MSG_OVERHEAD) {
        maxmsg = 2 * RLG_SHIP_MSG_OVERHEAD; /* a nonsense limit: still make progress */
    }
    p->max_payload = (size_t)(maxmsg - RLG_SHIP_MSG_OVERHEAD);
    p->bytes_sent = 0;
    p->resends = 0;
    p->files_gen_ok = 0;
    p->shown = RLOG_SHIP_CATCHING_UP;
    p->phase = LP_FILES;
    if (v.adopt) {
        ld_log(ld, RLOG_LEVEL_INFO,
               "ship leader: follower %" PRIu64 " starts over from segment %016" PRIx64
               " (LSN %" PRIu64 ")",
               p->id, first->seq, first->first_lsn);
    }
    ld_send_accept(ld, p);
}

/* ------------------------------------------------------------------------
 * Sessions: acknowledgements and side files
 * ---------------------------------------------------------------------- */

/* Goes back to `to` (gap or timeout): everything after it is sent again. */
static void ld_rewind(rlog_ship_leader *ld, ld_peer *p, rlg_ship_pos to)
{
    ld_ring_clear(p);
    p->send = to;
    p->resends++;
    p->rewound = to;
    p->rewound_ns = p->progress_ns = ld_now(ld);
}

static void ld_on_ack(rlog_ship_leader *ld, ld_peer *p, const rlog_msg_ship_ack *a)
{
    if (!p->session || a->nonce != p->nonce || p->phase != LP_DATA) {
        return; /* an older session's */
    }
    rlg_ship_pos r = ld_norm(ld, (rlg_ship_pos){a->recv_seq, a->recv_off});
    rlg_ship_pos d = ld_norm(ld, (rlg_ship_pos){a->durable_seq, a->durable_off});
    p->max_sent = ld_norm(ld, p->max_sent);
    if (rlg_ship_pos_cmp(r, p->max_sent) > 0 || rlg_ship_pos_cmp(d, r) > 0) {
        ld_protocol_error(ld, p,
                          "ship_ack: received %016" PRIx64 "/%" PRIu64 ", durable %016" PRIx64
                          "/%" PRIu64 ", but nothing was sent past %016" PRIx64 "/%" PRIu64,
                          r.seq, r.off, d.seq, d.off, p->max_sent.seq, p->max_sent.off);
        return;
    }
    if (rlg_ship_pos_cmp(d, p->durable_pos) > 0) {
        p->durable_pos = d;
    }
    if (a->durable_lsn > p->durable_lsn) {
        p->durable_lsn = a->durable_lsn;
    }
    if (rlg_ship_pos_cmp(r, p->recv) > 0) {
        p->recv = r;
        while (p->ring_n > 0 && rlg_ship_pos_cmp(p->ring[p->ring_head].end, r) <= 0) {
            p->inflight -= p->ring[p->ring_head].len;
            p->ring_head = (p->ring_head + 1) % ld->window_msgs;
            p->ring_n--;
        }
        if (rlg_ship_pos_cmp(r, p->send) > 0) {
            ld_ring_clear(p); /* it had more than we thought (after a rewind) */
            p->send = r;
        }
        p->progress_ns = ld_now(ld);
    }
    if ((a->flags & RLOG_SHIP_ACK_GAP) && rlg_ship_pos_cmp(r, p->send) < 0) {
        /* Once per position per resend period: the gap report of every
         * message that overtook the lost one must not rewind each time. */
        uint64_t now = ld_now(ld);
        if (rlg_ship_pos_cmp(r, p->rewound) != 0 || now - p->rewound_ns >= ld->resend_ns / 4) {
            ld_rewind(ld, p, r);
        }
    }
}

static void ld_on_files_ok(rlog_ship_leader *ld, ld_peer *p, const rlog_msg_ship_files_ok *o)
{
    if (!p->session || o->nonce != p->nonce || o->gen > ld->files_gen) {
        return;
    }
    if (o->gen > p->files_gen_ok) {
        p->files_gen_ok = o->gen;
    }
    if (p->phase == LP_FILES) {
        p->phase = LP_DATA;
        p->progress_ns = p->sent_ns = ld_now(ld);
    }
    if (p->files_gen_ok == ld->files_gen) {
        p->files_serving = false;
    }
}

static const ld_file *ld_file_find(const rlog_ship_leader *ld, const char *name)
{
    for (size_t i = 0; i < ld->nfiles; i++) {
        if (strcmp(ld->files[i].name, name) == 0) {
            return &ld->files[i];
        }
    }
    return NULL;
}

/* Sends [offset, offset + len) of a side file in chunks. */
static void ld_on_file_req(rlog_ship_leader *ld, ld_peer *p, const rlog_msg_ship_file_req *q)
{
    if (!p->session || q->nonce != p->nonce || (p->phase != LP_FILES && p->phase != LP_DATA)) {
        return;
    }
    const ld_file *f = ld_file_find(ld, q->name);
    if (f == NULL) { /* gone since the list it has: send the current one */
        ld_send_files(ld, p);
        return;
    }
    if (q->offset >= f->size) {
        return;
    }
    p->files_serving = true;
    uint64_t len = f->size - q->offset;
    len = len < q->len ? len : q->len;
    len = len < p->window ? len : p->window;
    size_t chunk = ld->chunk < p->max_payload - RLOG_WIRE_NAME_MAX
                       ? ld->chunk
                       : p->max_payload - RLOG_WIRE_NAME_MAX;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ld->dir, f->name);
    rlog_file *h = NULL;
    int e = ld->vfs->open(ld->vfs, path, RLOG_VFS_RDONLY, &h);
    if (e == ENOENT) {
        /* Removed since the list was taken (the view need not have
         * changed): list again and tell it the new list. */
        if (ld_files_refresh(ld) == 0) {
            ld_send_files(ld, p);
        }
        return;
    }
    int rc = e ? rlog_from_errno(e) : ld_buf(ld, chunk);
    for (uint64_t off = q->offset; rc == 0 && off < q->offset + len;) {
        size_t n = q->offset + len - off < chunk ? (size_t)(q->offset + len - off) : chunk;
        size_t done = 0;
        e = ld->vfs->pread(ld->vfs, h, ld->buf, n, off, &done);
        if (e != 0 || done != n) {
            rc = e ? rlog_from_errno(e) : RLOG_EIO;
            break;
        }
        rlog_msg m = {.type = RLOG_MSG_SHIP_FILE_DATA};
        m.u.ship_file_data =
            (rlog_msg_ship_file_data){p->nonce, f->name, f->size, f->crc, off, n, ld->buf};
        if (ld_send(ld, p, &m) != 0) {
            break;
        }
        p->bytes_sent += n;
        off += n;
    }
    if (h != NULL) {
        ld->vfs->close(ld->vfs, h);
    }
    if (rc != 0) {
        ld_error(ld, "reading side file '%s' for follower %" PRIu64 ": %s", path, p->id,
                 e ? strerror(e) : rlog_strerror(rc));
    }
}

/* ------------------------------------------------------------------------
 * Status
 * ---------------------------------------------------------------------- */

static uint64_t ld_lag_bytes(const rlog_ship_leader *ld, rlg_ship_pos from)
{
    uint64_t lag = 0;
    for (size_t i = 0; i < ld->nview; i++) {
        const rlg_ship_seg *s = &ld->view[i];
        if (s->seq > from.seq) {
            lag += s->end - RLG_SEG_HEADER_SIZE;
        } else if (s->seq == from.seq && s->end > from.off) {
            lag += s->end - from.off;
        }
    }
    return lag;
}

static int ld_peer_state(const rlog_ship_leader *ld, const ld_peer *p)
{
    if (p->phase == LP_REFUSED) {
        return RLOG_SHIP_REFUSED;
    }
    if (!p->up) {
        return RLOG_SHIP_CONNECTING;
    }
    if (p->phase == LP_IDLE) {
        return p->shown == RLOG_SHIP_TRUNCATING ? p->shown : RLOG_SHIP_CONNECTING;
    }
    if (p->files_serving) {
        return RLOG_SHIP_SNAPSHOT;
    }
    if (p->phase == LP_DATA && p->durable_lsn >= ld_durable_lsn(ld)) {
        return RLOG_SHIP_TAILING;
    }
    return RLOG_SHIP_CATCHING_UP;
}

static void ld_info(const rlog_ship_leader *ld, const ld_peer *p, rlog_ship_follower_info *o)
{
    memset(o, 0, sizeof *o);
    o->id = p->id;
    snprintf(o->name, sizeof o->name, "%s", p->name);
    o->state = ld_peer_state(ld, p);
    o->durable = p->durable_lsn;
    o->sent = p->sent_lsn;
    uint64_t dl = ld_durable_lsn(ld);
    o->lag_records = dl > p->durable_lsn ? dl - p->durable_lsn : 0;
    o->lag_bytes = ld_lag_bytes(ld, p->durable_pos);
    o->bytes_sent = p->bytes_sent;
    o->resends = p->resends;
    o->connected = p->up;
}

/* Followers, connected first, then disconnected ones newest first. */
static size_t ld_followers_sorted(const rlog_ship_leader *ld, const ld_peer **out)
{
    size_t n = 0;
    for (size_t i = 0; i < ld->npeers; i++) {
        if (ld->peers[i]->role == RLOG_ROLE_SHIP_FOLLOWER && ld->peers[i]->up) {
            out[n++] = ld->peers[i];
        }
    }
    size_t up = n;
    for (size_t i = 0; i < ld->npeers; i++) {
        const ld_peer *p = ld->peers[i];
        if (p->role == RLOG_ROLE_SHIP_FOLLOWER && !p->up) {
            size_t k = n++;
            while (k > up && out[k - 1]->gone_ns < p->gone_ns) {
                out[k] = out[k - 1];
                k--;
            }
            out[k] = p;
        }
    }
    return n;
}

static void ld_on_status_req(rlog_ship_leader *ld, ld_peer *p, uint64_t request_id)
{
    const ld_peer **list = calloc(ld->npeers ? ld->npeers : 1, sizeof *list);
    rlog_msg_ship_peer *peers = calloc(ld->npeers ? ld->npeers : 1, sizeof *peers);
    if (list == NULL || peers == NULL) {
        free(list);
        free(peers);
        return;
    }
    size_t n = ld_followers_sorted(ld, list);
    for (size_t i = 0; i < n; i++) {
        rlog_ship_follower_info fi;
        ld_info(ld, list[i], &fi);
        peers[i] = (rlog_msg_ship_peer){fi.id,        list[i]->name, (uint32_t)fi.state,
                                        fi.durable,   fi.sent,       fi.lag_records,
                                        fi.lag_bytes, fi.bytes_sent, fi.connected};
    }
    rlog_msg m = {.type = RLOG_MSG_SHIP_STATUS};
    m.u.ship_status = (rlog_msg_ship_status){request_id,
                                             ld->log_id,
                                             ld->nview ? ld->view[0].first_lsn : 0,
                                             ld_durable_lsn(ld),
                                             ld->nview ? ld->view[0].seq : 0,
                                             ld->nview ? ld->view[ld->nview - 1].seq : 0,
                                             (uint32_t)n,
                                             peers};
    ld_send(ld, p, &m);
    free(list);
    free(peers);
}

/* ------------------------------------------------------------------------
 * Transport events
 * ---------------------------------------------------------------------- */

static void ld_peer_up(void *data, uint64_t peer_id, const rlog_msg_hello *hello)
{
    rlog_ship_leader *ld = data;
    if (hello->role != RLOG_ROLE_SHIP_FOLLOWER && hello->role != RLOG_ROLE_OBSERVER) {
        ld_error(ld,
                 "peer %" PRIu64 " at '%s' connected as %s: a shipping leader serves "
                 "followers and observers only; dropping it",
                 peer_id, hello->address, rlog_msg_role_name(hello->role));
        ld->t->disconnect(ld->t, peer_id);
        return;
    }
    ld_peer *p = ld_peer_find(ld, peer_id);
    if (p == NULL && (p = ld_peer_add(ld, peer_id)) == NULL) {
        ld_error(ld, "out of memory for peer %" PRIu64, peer_id);
        ld->t->disconnect(ld->t, peer_id);
        return;
    }
    snprintf(p->name, sizeof p->name, "%s", hello->address);
    p->role = hello->role;
    p->up = true;
    p->phase = LP_IDLE;
    p->shown = RLOG_SHIP_CONNECTING;
    ld_session_end(p);
    ld_log(ld, RLOG_LEVEL_INFO, "ship leader: %s %" PRIu64 " connected (%s)",
           rlog_msg_role_name(hello->role), peer_id, hello->address);
}

static void ld_peer_down(void *data, uint64_t peer_id, int reason)
{
    rlog_ship_leader *ld = data;
    ld_peer *p = ld_peer_find(ld, peer_id);
    if (p == NULL) {
        return;
    }
    if (p->role == RLOG_ROLE_OBSERVER) {
        for (size_t i = 0; i < ld->npeers; i++) {
            if (ld->peers[i] == p) {
                ld_peer_remove(ld, i);
                break;
            }
        }
        return;
    }
    ld_log(ld, RLOG_LEVEL_INFO, "ship leader: follower %" PRIu64 " disconnected (%s)", peer_id,
           rlog_errname(reason));
    p->up = false;
    p->gone_ns = ld_now(ld);
    ld_session_end(p);
    ld_peers_prune(ld);
}

static void ld_recv(void *data, uint64_t peer_id, const rlog_msg *m)
{
    rlog_ship_leader *ld = data;
    ld_peer *p = ld_peer_find(ld, peer_id);
    if (p == NULL || !p->up) {
        return;
    }
    switch (m->type) {
    case RLOG_MSG_SHIP_START:
        ld_on_start(ld, p, &m->u.ship_start);
        break;
    case RLOG_MSG_SHIP_ACK:
        ld_on_ack(ld, p, &m->u.ship_ack);
        break;
    case RLOG_MSG_SHIP_FILES_OK:
        ld_on_files_ok(ld, p, &m->u.ship_files_ok);
        break;
    case RLOG_MSG_SHIP_FILE_REQ:
        ld_on_file_req(ld, p, &m->u.ship_file_req);
        break;
    case RLOG_MSG_SHIP_STATUS_REQ:
        ld_on_status_req(ld, p, m->u.ship_status_req.request_id);
        break;
    default:
        ld_protocol_error(ld, p, "unexpected %s message", rlog_msg_type_name(m->type));
        break;
    }
}

/* ------------------------------------------------------------------------
 * Shipping
 * ---------------------------------------------------------------------- */

static void ld_heartbeat(rlog_ship_leader *ld, ld_peer *p)
{
    const rlg_ship_seg *s = ld_seg(ld, p->send.seq);
    rlog_msg m = {.type = RLOG_MSG_SHIP_DATA};
    m.u.ship_data = (rlog_msg_ship_data){
        .nonce = p->nonce,
        .seq = p->send.seq,
        .seg_first_lsn = s ? s->first_lsn : 0,
        .file_size = s ? s->file_size : 0,
        .off = p->send.off,
        .seg_end = s && s->sealed && p->send.off <= s->end ? s->end : 0,
        .leader_durable = ld_durable_lsn(ld),
        .first_seq = ld->nview ? ld->view[0].seq : 0,
    };
    ld_send(ld, p, &m);
}

/* Sends data within the window. */
static void ld_pump(rlog_ship_leader *ld, ld_peer *p)
{
    uint64_t now = ld_now(ld);
    if (p->stall_ns != 0 && now - p->stall_ns < ld->resend_ns) {
        return;
    }
    p->stall_ns = 0;
    size_t chunk = ld->chunk < p->max_payload ? ld->chunk : p->max_payload;
    while (p->ring_n < ld->window_msgs && p->inflight < p->window) {
        const rlg_ship_seg *s = ld_seg(ld, p->send.seq);
        if (s == NULL) {
            if (ld->nview > 0 && p->send.seq < ld->view[0].seq) {
                char why[160];
                snprintf(why, sizeof why,
                         "segment %016" PRIx64 " was deleted (the leader now starts at %016" PRIx64
                         ")",
                         p->send.seq, ld->view[0].seq);
                ld_restart(ld, p, why);
            }
            return; /* or not durable yet */
        }
        if (p->send.off > s->end) {
            ld_restart(ld, p, "the follower's position is past the leader's durable end");
            return;
        }
        if (p->send.off == s->end) {
            if (!s->sealed) {
                return;
            }
            p->send = (rlg_ship_pos){s->seq + 1, RLG_SEG_HEADER_SIZE};
            continue;
        }
        size_t room = p->window - p->inflight;
        size_t limit = room < chunk ? room : chunk;
        size_t n = 0;
        uint64_t last_lsn = p->sent_lsn;
        int rc =
            ld_records(ld, s, p->send.off, limit, p->inflight == 0, p->max_payload, &n, &last_lsn);
        if (rc == RLOG_ENOTFOUND) {
            ld_restart(ld, p, "a segment was deleted while it was being sent");
            return;
        }
        if (rc != 0) {
            if (rc != RLOG_ECORRUPT && rc != RLOG_ETOOBIG) {
                ld_error(ld, "reading segment %016" PRIx64 " for follower %" PRIu64 ": %s", s->seq,
                         p->id, rlog_strerror(rc));
            }
            p->stall_ns = now ? now : 1;
            return;
        }
        if (n == 0) {
            return; /* the next record waits for room in the window */
        }
        rlog_msg m = {.type = RLOG_MSG_SHIP_DATA};
        m.u.ship_data = (rlog_msg_ship_data){.nonce = p->nonce,
                                             .seq = s->seq,
                                             .seg_first_lsn = s->first_lsn,
                                             .file_size = s->file_size,
                                             .off = p->send.off,
                                             .seg_end = s->sealed ? s->end : 0,
                                             .leader_durable = ld_durable_lsn(ld),
                                             .first_seq = ld->view[0].seq,
                                             .len = n,
                                             .bytes = ld->buf};
        if (ld_send(ld, p, &m) != 0) {
            return;
        }
        uint64_t end = p->send.off + n;
        rlg_ship_pos next = end == s->end && s->sealed
                                ? (rlg_ship_pos){s->seq + 1, RLG_SEG_HEADER_SIZE}
                                : (rlg_ship_pos){s->seq, end};
        if (p->ring_n == 0) {
            p->progress_ns = now;
        }
        p->ring[(p->ring_head + p->ring_n) % ld->window_msgs] = (ld_chunk){next, n};
        p->ring_n++;
        p->inflight += n;
        p->send = next;
        if (rlg_ship_pos_cmp(next, p->max_sent) > 0) {
            p->max_sent = next;
        }
        p->bytes_sent += n;
        p->sent_lsn = last_lsn > p->sent_lsn ? last_lsn : p->sent_lsn;
    }
}

/* Timers and data for one follower. */
static void ld_service(rlog_ship_leader *ld, ld_peer *p)
{
    if (!p->up || !p->session) {
        return;
    }
    uint64_t now = ld_now(ld);
    if (p->phase == LP_FILES) {
        if (now - p->files_sent_ns >= ld->resend_ns) {
            ld_send_accept(ld, p); /* ACCEPT or FILES_OK lost */
        }
        return;
    }
    if (p->phase != LP_DATA) {
        return;
    }
    if (p->files_gen_ok < ld->files_gen) {
        if (p->files_gen_sent < ld->files_gen || now - p->files_sent_ns >= ld->resend_ns) {
            ld_send_files(ld, p);
        }
    } else {
        if (p->ring_n > 0 && now - p->progress_ns >= ld->resend_ns) {
            ld_rewind(ld, p, p->recv); /* the window went silent */
        }
        ld_pump(ld, p);
    }
    if (ld_now(ld) - p->sent_ns >= ld->heartbeat_ns) {
        ld_heartbeat(ld, p);
    }
}

static void ld_step(rlog_ship_leader *ld)
{
    if (ld_refresh(ld) != 0 && ld->nview == 0) {
        return;
    }
    for (size_t i = 0; i < ld->npeers; i++) {
        ld_service(ld, ld->peers[i]);
    }
}

/* ------------------------------------------------------------------------
 * API
 * ---------------------------------------------------------------------- */

static void ld_wake(void *arg)
{
    rlog_ship_leader *ld = arg;
    atomic_store(&ld->wake_pending, 0);
}

void rlog_ship_leader_notify(rlog_ship_leader *ld)
{
    if (atomic_exchange(&ld->wake_pending, 1) == 0) {
        if (ld->t->post(ld->t, ld_wake, ld) != 0) {
            atomic_store(&ld->wake_pending, 0);
        }
    }
}

int rlog_ship_leader_poll(rlog_ship_leader *ld, int timeout_ms)
{
    ld_step(ld);
    int rc = ld->t->poll(ld->t, timeout_ms);
    if (rc < 0) {
        return -rc; /* RLOG_ECLOSED (or RLOG_EINVAL: called from a callback) */
    }
    ld_step(ld);
    return 0;
}

void rlog_ship_leader_followers(rlog_ship_leader *ld, rlog_ship_follower_info *out, size_t cap,
                                size_t *n)
{
    const ld_peer **list = calloc(ld->npeers ? ld->npeers : 1, sizeof *list);
    *n = 0;
    if (list == NULL) {
        return;
    }
    *n = ld_followers_sorted(ld, list);
    for (size_t i = 0; i < *n && i < cap; i++) {
        ld_info(ld, list[i], &out[i]);
    }
    free(list);
}

const char *rlog_ship_leader_errmsg(rlog_ship_leader *ld)
{
    return ld->errmsg;
}

static void ld_destroy(rlog_ship_leader *ld)
{
    ld_readers_close(ld);
    while (ld->npeers > 0) {
        ld_peer_remove(ld, ld->npeers - 1);
    }
    free(ld->peers);
    ld_files_free(ld->files, ld->nfiles);
    free(ld->view);
    free(ld->buf);
    free(ld->suffix);
    free(ld->dir);
    free(ld);
}

void rlog_ship_leader_free(rlog_ship_leader *ld)
{
    if (ld == NULL) {
        return;
    }
    ld->t->close(ld->t); /* peer_down callbacks run inside, on this thread */
    ld_destroy(ld);
}

static int ld_options(rlog_ship_leader *ld, const rlog_ship_leader_options *o)
{
    rlog_ship_leader_options d;
    memset(&d, 0, sizeof d);
    if (o == NULL) {
        o = &d;
    }
    ld->env = o->env ? o->env : rlog_env_posix();
    ld->window = o->window_bytes ? o->window_bytes : RLG_SHIP_WINDOW_BYTES;
    ld->window_msgs = o->window_messages ? o->window_messages : RLG_SHIP_WINDOW_MSGS;
    ld->chunk = o->chunk_bytes ? o->chunk_bytes : RLG_SHIP_CHUNK_BYTES;
    ld->resend_ns = (uint64_t)(o->resend_ms ? o->resend_ms : RLG_SHIP_RESEND_MS) * 1000000u;
    ld->heartbeat_ns =
        (uint64_t)(o->heartbeat_ms ? o->heartbeat_ms : RLG_SHIP_HEARTBEAT_MS) * 1000000u;
    ld->suffix = strdup(o->side_suffix ? o->side_suffix : RLG_SHIP_SIDE_SUFFIX);
    ld->logger = o->logger;
    ld->logger_data = o->logger_data;
    if (ld->chunk > UINT32_MAX) {
        ld->chunk = UINT32_MAX;
    }
    return ld->suffix ? 0 : RLOG_ENOMEM;
}

int rlog_ship_leader_new(rlog_log *log, rlog_transport *t, const rlog_transport_config *tcfg,
                         const rlog_ship_leader_options *opts, rlog_ship_leader **out)
{
    *out = NULL;
    if (log == NULL || t == NULL || tcfg == NULL) {
        if (t != NULL) {
            t->close(t);
        }
        return RLOG_EINVAL;
    }
    rlog_ship_leader *ld = calloc(1, sizeof *ld);
    int rc = ld ? 0 : RLOG_ENOMEM;
    if (rc == 0) {
        ld->log = log;
        ld->t = t;
        ld->vfs = rlg_log_vfs(log);
        ld->dir = strdup(rlg_log_dir(log));
        rc = ld->dir ? ld_options(ld, opts) : RLOG_ENOMEM;
    }
    if (rc == 0) {
        rc = ld_refresh(ld);
    }
    if (rc == 0) {
        rlog_transport_config cfg = *tcfg;
        cfg.role = RLOG_ROLE_SHIP_LEADER;
        ld->server_id = cfg.server_id;
        rlog_transport_events ev = {ld, ld_peer_up, ld_peer_down, ld_recv};
        rc = t->init(t, &cfg, &ev);
        if (rc == 0) {
            rc = t->listen(t);
        }
        if (rc != 0 && ld != NULL) {
            snprintf(ld->errmsg, sizeof ld->errmsg, "%s", t->errmsg);
        }
    }
    if (rc != 0) {
        t->close(t);
        if (ld != NULL) {
            ld_destroy(ld);
        }
        return rc;
    }
    *out = ld;
    return 0;
}
