/*
 * Segment shipping, the follower (docs/shipping.md is the protocol).
 *
 * The follower dials its leader and, each time the connection comes up,
 * opens a session: START with its durable position (rlg_replica_pos) and a
 * fresh random nonce. Every later message of the session carries that
 * nonce; anything else is stale (a duplicate, a message from before a
 * reconnect) and is dropped. The leader answers:
 *   REFUSE    another log or an impossible position: stop for good;
 *   TRUNCATE  diverged: cut the replica at an LSN, START again;
 *   ACCEPT    maybe "adopt" (reset, then adopt the leader's oldest
 *             segment), with the leader's side-file list: fetch what is
 *             missing (FILE_REQ / FILE_DATA, each file verified against its
 *             CRC32C and made durable by the replica) and say FILES_OK.
 * Then DATA flows. Bytes must continue exactly where the follower stands
 * (recv): earlier ones are duplicates (dropped, acknowledged again), later
 * ones mean a gap (dropped, reported with a GAP acknowledgement so the
 * leader resends). A sealed segment the follower lacks entirely is
 * received whole (rlg_replica_segment_begin/write/commit: one fdatasync per
 * segment); everything else is appended (rlg_replica_append), batched per
 * poll: what arrived in one poll is written and synced once. The replica
 * verifies every byte; bytes that fail end the session (a new START, with
 * backoff). After each poll the follower acknowledges recv and its durable
 * position.
 *
 * Side files the leader no longer lists are removed once the follower's
 * durable LSN has reached the point where the leader took that list (its
 * log no longer needs them then); only names ending with the side suffix.
 *
 * Threads: one owner thread calls everything.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica.h"
#include "transport/ship_internal.h"

typedef enum fl_phase {
    FP_IDLE = 0, /* not connected */
    FP_HELLO,    /* START sent (or due): waiting for the answer */
    FP_SESSION,  /* accepted */
    FP_REFUSED,  /* refused for good */
    FP_FAILED,   /* the replica failed (poisoned) */
} fl_phase;

/* A side file as the leader lists it, or as known to be here. */
typedef struct fl_file {
    char *name;
    uint64_t size;
    uint32_t crc;
} fl_file;

struct rlog_ship_follower {
    rlg_replica *r;
    rlog_transport *t;
    rlog_vfs *vfs;
    rlog_env *env;
    char *dir;
    char *suffix;
    void (*on_durable)(void *data, uint64_t lsn);
    void *data;
    size_t window;
    size_t max_message;
    uint64_t resend_ns, session_ns;
    rlog_logger_fn logger;
    void *logger_data;

    uint64_t leader_id;
    bool up;
    fl_phase phase;
    int shown; /* state shown while waiting for an answer (truncating) */
    uint64_t nonce;
    uint64_t start_ns; /* START last sent (0: due) */
    uint64_t heard_ns; /* last message of this session */
    uint64_t retry_ns; /* no START before this (backoff) */
    unsigned failures; /* consecutive failed sessions */

    /* where the next byte must start; fresh: no file for recv.seq here */
    rlg_ship_pos recv;
    bool fresh;
    uint64_t adopt_seq; /* an empty replica adopted: its first segment */
    uint64_t file_size; /* size of this replica's segment files */
    /* a sealed segment being received whole */
    bool seg_on;
    uint64_t seg_seq, seg_end;
    /* appended bytes not written yet (one segment, contiguous) */
    uint8_t *pend;
    size_t pend_len, pend_cap;
    uint64_t pend_seq, pend_first_lsn, pend_off;

    bool ack_due;
    uint64_t ack_ns;
    rlg_ship_pos nack_pos;
    uint64_t nack_ns;

    /* side files: the leader's list (generation gen) and the fetch */
    fl_file *list;
    size_t nlist;
    uint64_t gen, upto, gen_ok;
    bool fetching;
    size_t fetch_i;
    uint64_t fetch_off, fetch_end, fetch_ns;
    bool prune_due; /* remove files not in the list once durable >= upto */
    fl_file *known; /* side files here with their checksums */
    size_t nknown;

    uint64_t reported;    /* last LSN given to on_durable */
    uint64_t first_seq;   /* the leader's oldest retained segment, as last heard */
    uint64_t pruned_upto; /* segments before this were deleted here */
    rlog_ship_follower_status st;
    char errmsg[256];
};

#define fl_log(f, level, ...) rlg_ship_logf((f)->logger, (f)->logger_data, level, __VA_ARGS__)

static uint64_t fl_now(rlog_ship_follower *f)
{
    return f->env->now_ns(f->env);
}

#if defined(__GNUC__)
static void fl_note(rlog_ship_follower *f, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

/* Records a notable event (err 0) or error in the status and the log. */
static void fl_note(rlog_ship_follower *f, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->st.message, sizeof f->st.message, fmt, ap);
    va_end(ap);
    if (err != 0) {
        f->st.error = err;
        snprintf(f->errmsg, sizeof f->errmsg, "%s", f->st.message);
    }
    fl_log(f, err ? RLOG_LEVEL_WARN : RLOG_LEVEL_INFO, "ship follower: %s", f->st.message);
}

/* ------------------------------------------------------------------------
 * Positions
 * ---------------------------------------------------------------------- */

/* Does the replica hold a segment? (An adopted replica reads as if the
 * segment before its first were sealed, with end 0.) */
static bool fl_has_segments(const rlg_replica_pos *pos)
{
    return pos->seq != 0 && pos->end >= RLG_SEG_HEADER_SIZE;
}

/* The durable position, normalised; *fresh: no file for its seq here. */
static rlg_ship_pos fl_durable(rlog_ship_follower *f, rlg_replica_pos *pos, bool *fresh)
{
    rlg_replica_pos_get(f->r, pos);
    if (!fl_has_segments(pos)) {
        *fresh = true;
        return (rlg_ship_pos){f->adopt_seq, f->adopt_seq ? RLG_SEG_HEADER_SIZE : 0};
    }
    *fresh = pos->sealed;
    return pos->sealed ? (rlg_ship_pos){pos->seq + 1, RLG_SEG_HEADER_SIZE}
                       : (rlg_ship_pos){pos->seq, pos->end};
}

static void fl_report_durable(rlog_ship_follower *f)
{
    rlg_replica_pos pos;
    rlg_replica_pos_get(f->r, &pos);
    if (!fl_has_segments(&pos)) {
        return;
    }
    f->st.durable = pos.last_lsn;
    f->st.log_id = pos.log_id;
    if (pos.last_lsn > f->reported) {
        f->reported = pos.last_lsn;
        if (f->on_durable != NULL) {
            f->on_durable(f->data, pos.last_lsn);
        }
    }
}

/* ------------------------------------------------------------------------
 * Sending
 * ---------------------------------------------------------------------- */

static int fl_send(rlog_ship_follower *f, const rlog_msg *m)
{
    if (!f->up) {
        return RLOG_ENOCONN;
    }
    int rc = f->t->send(f->t, f->leader_id, m, NULL, NULL);
    if (rc != 0 && rc != RLOG_ENOCONN) {
        fl_log(f, RLOG_LEVEL_WARN, "ship follower: sending %s: %s (%s)",
               rlog_msg_type_name(m->type), rlog_strerror(rc), f->t->errmsg);
    }
    return rc;
}

static void fl_send_ack(rlog_ship_follower *f, uint32_t flags)
{
    rlg_replica_pos pos;
    bool fresh;
    rlg_ship_pos d = fl_durable(f, &pos, &fresh);
    rlog_msg m = {.type = RLOG_MSG_SHIP_ACK};
    uint64_t lsn = fl_has_segments(&pos) ? pos.last_lsn : 0;
    m.u.ship_ack =
        (rlog_msg_ship_ack){f->nonce, f->recv.seq, f->recv.off, d.seq, d.off, lsn, flags};
    if (rlg_ship_pos_cmp(d, f->recv) > 0) {
        m.u.ship_ack.durable_seq = f->recv.seq; /* never claim more than recv */
        m.u.ship_ack.durable_off = f->recv.off;
    }
    if (fl_send(f, &m) == 0) {
        f->ack_ns = fl_now(f);
        f->ack_due = false;
    }
}

/* Ends the transfers of a session (nothing of them is durable). */
static void fl_abort_transfers(rlog_ship_follower *f)
{
    if (f->seg_on) {
        rlg_replica_segment_abort(f->r);
        f->seg_on = false;
    }
    if (f->fetching) {
        rlg_replica_file_abort(f->r);
        f->fetching = false;
    }
    f->pend_len = 0;
}

/* Opens a new session: START with the durable position and a new nonce
 * (sent now, or once the backoff allows). */
static void fl_start(rlog_ship_follower *f)
{
    fl_abort_transfers(f);
    uint64_t nonce = f->env->random(f->env);
    f->nonce = nonce ? nonce : 1;
    f->phase = FP_HELLO;
    f->start_ns = 0;
    f->ack_due = false;
    f->st.sessions++;
}

static void fl_send_start(rlog_ship_follower *f)
{
    rlg_replica_pos pos;
    bool fresh;
    fl_durable(f, &pos, &fresh);
    rlog_msg m = {.type = RLOG_MSG_SHIP_START};
    rlog_msg_ship_start *s = &m.u.ship_start;
    s->nonce = f->nonce;
    s->window = f->window;
    s->max_message = f->max_message;
    if (fl_has_segments(&pos)) {
        *s = (rlog_msg_ship_start){
            f->nonce,         pos.log_id,        pos.file_size, pos.first_lsn, pos.last_lsn,
            pos.seq,          pos.seg_first_lsn, pos.end,       pos.sealed,    pos.last_rec_off,
            pos.last_rec_crc, pos.last_rec_lsn,  f->window,     f->max_message};
    }
    f->start_ns = fl_now(f);
    fl_send(f, &m);
}

/* Stops for good after a local failure; the message says what failed (the
 * note made just before, or the replica's message). */
static void fl_fail(rlog_ship_follower *f, int rc)
{
    char what[200];
    snprintf(what, sizeof what, "%.180s",
             f->st.error == rc ? f->st.message : rlg_replica_errmsg(f->r));
    fl_abort_transfers(f);
    f->phase = FP_FAILED;
    fl_note(f, rc, "%s; stopped: free the follower and open it again (the open recovers)", what);
    if (f->up) {
        f->t->disconnect(f->t, f->leader_id);
    }
}

/* The session failed on something the leader sent (or our disk refused):
 * a new session after a backoff; a poisoned replica stops everything. */
static void fl_session_failed(rlog_ship_follower *f, int rc)
{
    if (rc == RLOG_EPOISONED) {
        fl_fail(f, rc);
        return;
    }
    f->failures++;
    unsigned shift = f->failures < 6 ? f->failures - 1 : 5;
    f->retry_ns = fl_now(f) + (f->resend_ns << shift);
    fl_start(f);
}

/* A change of the replica's structure (reset, adopt, truncate, prefix
 * deletion) failed: a disk error part-way may have left the handle's view
 * of the directory behind the directory itself, so the follower stops and
 * must be opened again (the open recovers from what is on disk). Other
 * errors (a refusal of the leader's request) end the session. */
static void fl_structure_failed(rlog_ship_follower *f, int rc)
{
    if (rc == RLOG_EIO || rc == RLOG_ENOSPC || rc == RLOG_ENOMEM || rc == RLOG_EPOISONED) {
        fl_fail(f, rc);
    } else {
        fl_session_failed(f, rc);
    }
}

/* ------------------------------------------------------------------------
 * Writing data
 * ---------------------------------------------------------------------- */

/* Writes the batched appends (one replica call: verified, written, synced). */
static int fl_flush(rlog_ship_follower *f)
{
    if (f->pend_len == 0) {
        return 0;
    }
    size_t len = f->pend_len;
    f->pend_len = 0;
    int rc = rlg_replica_append(f->r, f->pend_seq, f->pend_first_lsn, f->pend_off, f->pend, len);
    if (rc != 0) {
        fl_note(f, rc, "segment %016" PRIx64 " bytes %" PRIu64 "..%" PRIu64 " refused: %s",
                f->pend_seq, f->pend_off, f->pend_off + len, rlg_replica_errmsg(f->r));
        fl_session_failed(f, rc);
        return rc;
    }
    f->st.bytes_received += len;
    f->failures = 0;
    f->ack_due = true;
    fl_report_durable(f);
    rlg_replica_pos pos;
    bool fresh;
    rlg_ship_pos d = fl_durable(f, &pos, &fresh);
    if (d.seq == f->recv.seq + 1 && pos.seq == f->recv.seq && pos.end == f->recv.off) {
        f->recv = d; /* the bytes ended with the seal */
        f->fresh = true;
    }
    return 0;
}

static int fl_pend(rlog_ship_follower *f, const rlog_msg_ship_data *d)
{
    size_t cap_max = f->window ? f->window : RLG_SHIP_WINDOW_BYTES;
    if (f->pend_len > 0 && (f->pend_seq != d->seq || f->pend_len + d->len > cap_max)) {
        int rc = fl_flush(f);
        if (rc != 0) {
            return rc;
        }
    }
    if (f->pend_len + d->len > f->pend_cap) {
        size_t cap = f->pend_cap ? f->pend_cap : 65536;
        while (cap < f->pend_len + d->len) {
            cap *= 2;
        }
        uint8_t *p = realloc(f->pend, cap);
        if (p == NULL) {
            return RLOG_ENOMEM;
        }
        f->pend = p;
        f->pend_cap = cap;
    }
    if (f->pend_len == 0) {
        f->pend_seq = d->seq;
        f->pend_first_lsn = d->seg_first_lsn;
        f->pend_off = d->off;
    }
    memcpy(f->pend + f->pend_len, d->bytes, d->len);
    f->pend_len += d->len;
    return 0;
}

/* Bytes of a sealed segment received whole. */
static int fl_segment_bytes(rlog_ship_follower *f, const rlog_msg_ship_data *d)
{
    int rc = 0;
    if (!f->seg_on) {
        rc = fl_flush(f);
        rc = rc ? rc : rlg_replica_segment_begin(f->r, d->seq, d->seg_first_lsn);
        if (rc != 0) {
            if (f->phase == FP_SESSION) {
                fl_note(f, rc, "receiving segment %016" PRIx64 ": %s", d->seq,
                        rlg_replica_errmsg(f->r));
                fl_session_failed(f, rc);
            }
            return rc;
        }
        f->seg_on = true;
        f->seg_seq = d->seq;
        f->seg_end = d->seg_end;
    }
    rc = rlg_replica_segment_write(f->r, d->off, d->bytes, d->len);
    if (rc == 0 && d->off + d->len == f->seg_end) {
        rc = rlg_replica_segment_commit(f->r);
        f->seg_on = rc != 0;
    }
    if (rc != 0) {
        fl_note(f, rc, "segment %016" PRIx64 " bytes %" PRIu64 "..%" PRIu64 " refused: %s", d->seq,
                d->off, d->off + d->len, rlg_replica_errmsg(f->r));
        fl_session_failed(f, rc);
        return rc;
    }
    f->st.bytes_received += d->len;
    f->failures = 0;
    if (!f->seg_on) {
        fl_report_durable(f);
    }
    return 0;
}

/* Answers data that does not continue recv: a duplicate (acknowledged
 * again, rate-limited) or a gap (reported once per position per period). */
static void fl_out_of_order(rlog_ship_follower *f, rlg_ship_pos at, bool heartbeat)
{
    uint64_t now = fl_now(f);
    int c = rlg_ship_pos_cmp(at, f->recv);
    if (!heartbeat) {
        f->st.rejected++;
    }
    if (c < 0 && now - f->ack_ns >= f->resend_ns / 4) {
        fl_send_ack(f, 0);
    } else if (c > 0 && (rlg_ship_pos_cmp(f->nack_pos, f->recv) != 0 ||
                         now - f->nack_ns >= f->resend_ns / 2)) {
        fl_send_ack(f, RLOG_SHIP_ACK_GAP);
        f->nack_pos = f->recv;
        f->nack_ns = now;
    }
}

static void fl_on_data(rlog_ship_follower *f, const rlog_msg_ship_data *d)
{
    if (d->leader_durable > f->st.leader_durable) {
        f->st.leader_durable = d->leader_durable;
    }
    if (d->first_seq > f->first_seq) {
        f->first_seq = d->first_seq;
    }
    rlg_ship_pos at = {d->seq, d->off};
    if (d->len == 0 || rlg_ship_pos_cmp(at, f->recv) != 0) {
        fl_out_of_order(f, at, d->len == 0);
        return;
    }
    if (d->seg_first_lsn == 0 || d->off < RLG_SEG_HEADER_SIZE ||
        (d->file_size != 0 && d->off + d->len > d->file_size)) {
        f->st.rejected++;
        fl_note(f, RLOG_EPROTO,
                "ship_data for segment %016" PRIx64 " at %" PRIu64 " (%zu bytes, first LSN %" PRIu64
                ", file size %" PRIu64 ") is impossible",
                d->seq, d->off, d->len, d->seg_first_lsn, d->file_size);
        fl_session_failed(f, RLOG_EPROTO);
        return;
    }
    if (f->fresh && d->off == RLG_SEG_HEADER_SIZE && d->file_size != f->file_size) {
        /* The leader changed its segment size: so does the copy. */
        int rc = fl_flush(f);
        if (rc != 0) {
            return;
        }
        rc = rlg_replica_set_file_size(f->r, d->file_size);
        if (rc != 0) {
            fl_note(f, rc, "segment %016" PRIx64 " of %" PRIu64 " bytes: %s", d->seq, d->file_size,
                    rlg_replica_errmsg(f->r));
            fl_session_failed(f, rc);
            return;
        }
        f->file_size = d->file_size;
    }
    int rc;
    if (f->seg_on || (f->fresh && d->off == RLG_SEG_HEADER_SIZE && d->seg_end != 0)) {
        rc = fl_segment_bytes(f, d);
    } else {
        rc = fl_pend(f, d);
    }
    if (rc != 0) {
        if (rc == RLOG_ENOMEM) {
            fl_note(f, rc, "out of memory for %zu bytes", d->len);
            fl_session_failed(f, rc);
        }
        return;
    }
    f->recv.off += d->len;
    f->fresh = false;
    if (d->seg_end != 0 && f->recv.off == d->seg_end) {
        f->recv = (rlg_ship_pos){d->seq + 1, RLG_SEG_HEADER_SIZE};
        f->fresh = true;
    }
    f->ack_due = true;
}

/* ------------------------------------------------------------------------
 * Side files
 * ---------------------------------------------------------------------- */

static void fl_files_free(fl_file *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
    }
    free(l);
}

static const fl_file *fl_known(const rlog_ship_follower *f, const char *name)
{
    for (size_t i = 0; i < f->nknown; i++) {
        if (strcmp(f->known[i].name, name) == 0) {
            return &f->known[i];
        }
    }
    return NULL;
}

static void fl_known_forget(rlog_ship_follower *f, const char *name)
{
    for (size_t i = 0; i < f->nknown; i++) {
        if (strcmp(f->known[i].name, name) == 0) {
            free(f->known[i].name);
            f->known[i] = f->known[--f->nknown];
            return;
        }
    }
}

static int fl_known_set(rlog_ship_follower *f, const char *name, uint64_t size, uint32_t crc)
{
    fl_known_forget(f, name);
    fl_file *k = realloc(f->known, (f->nknown + 1) * sizeof *k);
    if (k == NULL) {
        return RLOG_ENOMEM;
    }
    f->known = k;
    char *copy = strdup(name);
    if (copy == NULL) {
        return RLOG_ENOMEM;
    }
    f->known[f->nknown++] = (fl_file){copy, size, crc};
    return 0;
}

/* Is the leader's file `w` here already (same size and checksum)? The
 * checksum of a local file is computed once per (name, size). */
static bool fl_have(rlog_ship_follower *f, const fl_file *w)
{
    const fl_file *k = fl_known(f, w->name);
    if (k == NULL || k->size != w->size) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", f->dir, w->name);
        uint64_t size = 0;
        uint32_t crc = 0;
        if (rlg_ship_file_crc(f->vfs, path, &size, &crc) != 0 ||
            fl_known_set(f, w->name, size, crc) != 0) {
            return false;
        }
        k = fl_known(f, w->name);
    }
    return k->size == w->size && k->crc == w->crc;
}

static void fl_file_request(rlog_ship_follower *f)
{
    const fl_file *w = &f->list[f->fetch_i];
    uint64_t span = f->window ? f->window : RLG_SHIP_WINDOW_BYTES;
    f->fetch_end = w->size - f->fetch_off < span ? w->size : f->fetch_off + span;
    rlog_msg m = {.type = RLOG_MSG_SHIP_FILE_REQ};
    m.u.ship_file_req =
        (rlog_msg_ship_file_req){f->nonce, w->name, f->fetch_off, f->fetch_end - f->fetch_off};
    f->fetch_ns = fl_now(f);
    fl_send(f, &m);
}

/* Fetches the next missing side file, or confirms the list. */
static void fl_files_next(rlog_ship_follower *f, size_t from)
{
    for (size_t i = from; i < f->nlist; i++) {
        if (fl_have(f, &f->list[i])) {
            continue;
        }
        int rc = rlg_replica_file_begin(f->r, f->list[i].name, f->list[i].size);
        if (rc != 0) {
            fl_note(f, rc, "side file '%s': %s", f->list[i].name, rlg_replica_errmsg(f->r));
            fl_session_failed(f, rc);
            return;
        }
        f->fetching = true;
        f->fetch_i = i;
        f->fetch_off = 0;
        if (f->list[i].size == 0) {
            rc = rlg_replica_file_commit(f->r, f->list[i].crc);
            f->fetching = false;
            if (rc != 0 || fl_known_set(f, f->list[i].name, 0, f->list[i].crc) != 0) {
                fl_note(f, rc ? rc : RLOG_ENOMEM, "side file '%s': %s", f->list[i].name,
                        rlg_replica_errmsg(f->r));
                fl_session_failed(f, rc ? rc : RLOG_ENOMEM);
                return;
            }
            f->st.files_received++;
            continue;
        }
        fl_note(f, 0, "fetching side file '%s' (%" PRIu64 " bytes)", f->list[i].name,
                f->list[i].size);
        fl_file_request(f);
        return;
    }
    f->gen_ok = f->gen;
    f->prune_due = true;
    rlog_msg m = {.type = RLOG_MSG_SHIP_FILES_OK};
    m.u.ship_files_ok = (rlog_msg_ship_files_ok){f->nonce, f->gen};
    fl_send(f, &m);
}

static void fl_on_files(rlog_ship_follower *f, uint64_t gen, uint64_t upto, uint32_t n,
                        const rlog_msg_ship_file *files)
{
    if (gen < f->gen || (gen == f->gen && f->fetching)) {
        return; /* older, or the list being fetched */
    }
    if (gen == f->gen && f->gen_ok == gen) {
        rlog_msg m = {.type = RLOG_MSG_SHIP_FILES_OK}; /* our FILES_OK was lost */
        m.u.ship_files_ok = (rlog_msg_ship_files_ok){f->nonce, gen};
        fl_send(f, &m);
        return;
    }
    if (f->fetching) {
        rlg_replica_file_abort(f->r);
        f->fetching = false;
    }
    fl_file *l = calloc(n ? n : 1, sizeof *l);
    for (uint32_t i = 0; l != NULL && i < n; i++) {
        l[i] = (fl_file){strdup(files[i].name), files[i].size, files[i].crc};
        if (l[i].name == NULL) {
            fl_files_free(l, i);
            l = NULL;
        }
    }
    if (l == NULL) {
        fl_note(f, RLOG_ENOMEM, "out of memory for the side-file list");
        fl_session_failed(f, RLOG_ENOMEM);
        return;
    }
    fl_files_free(f->list, f->nlist);
    f->list = l;
    f->nlist = n;
    f->gen = gen;
    f->upto = upto;
    f->prune_due = false;
    fl_files_next(f, 0);
}

static void fl_on_file_data(rlog_ship_follower *f, const rlog_msg_ship_file_data *d)
{
    if (!f->fetching) {
        return;
    }
    const fl_file *w = &f->list[f->fetch_i];
    if (strcmp(d->name, w->name) != 0 || d->size != w->size || d->crc != w->crc) {
        f->st.rejected++;
        return;
    }
    if (d->offset != f->fetch_off) {
        f->st.rejected++;
        if (d->offset > f->fetch_off && fl_now(f) - f->fetch_ns >= f->resend_ns / 4) {
            fl_file_request(f); /* a chunk was lost */
        }
        return;
    }
    int rc = rlg_replica_file_write(f->r, d->offset, d->data, d->len);
    f->fetch_off += d->len;
    if (rc == 0 && f->fetch_off == w->size) {
        rc = rlg_replica_file_commit(f->r, w->crc);
        f->fetching = false;
        if (rc == 0) {
            rc = fl_known_set(f, w->name, w->size, w->crc);
            f->st.files_received++;
            fl_note(f, 0, "side file '%s' received (%" PRIu64 " bytes)", w->name, w->size);
        }
    }
    if (rc != 0) {
        if (f->fetching) {
            rlg_replica_file_abort(f->r);
            f->fetching = false;
        }
        fl_note(f, rc, "side file '%s': %s", w->name, rlg_replica_errmsg(f->r));
        fl_session_failed(f, rc);
        return;
    }
    f->fetch_ns = fl_now(f);
    if (!f->fetching) {
        fl_files_next(f, f->fetch_i + 1);
    } else if (f->fetch_off == f->fetch_end) {
        fl_file_request(f);
    }
}

/* Removes side files the leader no longer has, once this replica's log
 * has caught up with the point where the leader took its list. */
static void fl_prune(rlog_ship_follower *f)
{
    if (!f->prune_due || f->fetching || f->gen_ok != f->gen || f->st.durable < f->upto) {
        return;
    }
    f->prune_due = false;
    char **names = NULL;
    size_t count = 0;
    if (rlg_replica_list_files(f->r, &names, &count) != 0) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        bool listed = false;
        for (size_t k = 0; k < f->nlist && !listed; k++) {
            listed = strcmp(names[i], f->list[k].name) == 0;
        }
        if (listed || !rlg_ship_side_name(names[i], f->suffix)) {
            continue;
        }
        if (rlg_replica_remove_file(f->r, names[i]) == 0) {
            fl_known_forget(f, names[i]);
            fl_note(f, 0, "removed side file '%s' (the leader no longer has it)", names[i]);
        }
    }
    rlog_vfs_free_names(names, count);
}

/* ------------------------------------------------------------------------
 * Session answers
 * ---------------------------------------------------------------------- */

static void fl_on_accept(rlog_ship_follower *f, const rlog_msg_ship_accept *a)
{
    if (f->phase == FP_SESSION) { /* repeated: its FILES_OK may have been lost */
        fl_on_files(f, a->files_gen, a->files_upto, a->n_files, a->files);
        return;
    }
    rlg_replica_pos pos;
    bool fresh;
    fl_durable(f, &pos, &fresh);
    bool has = fl_has_segments(&pos);
    if (a->log_id == 0 || (!a->adopt && !has) || (a->adopt && a->seq == 0)) {
        fl_note(f, RLOG_EPROTO,
                "the leader accepted with an impossible answer (log %016" PRIx64
                ", adopt %d, segment %" PRIu64 ")",
                a->log_id, a->adopt, a->seq);
        fl_session_failed(f, RLOG_EPROTO);
        return;
    }
    if (a->adopt) {
        /* Reset even when it looks empty: a reset that failed part-way
         * (after removing the segments, before removing the spares) leaves
         * segment-named files that would sit in a gap before the adopted
         * segments. A reset of an empty replica removes just those. */
        int rc = rlg_replica_reset(f->r);
        if (has) {
            f->st.resets++;
            fl_note(f, 0,
                    "behind the leader's retained log: starting over from segment %016" PRIx64
                    " (LSN %" PRIu64 ")",
                    a->seq, a->first_lsn);
        }
        rc = rc ? rc : rlg_replica_adopt(f->r, a->log_id, a->file_size, a->seq, a->first_lsn);
        if (rc != 0) {
            fl_note(f, rc, "adopting the leader's log %016" PRIx64 ": %s", a->log_id,
                    rlg_replica_errmsg(f->r));
            fl_structure_failed(f, rc);
            return;
        }
        f->adopt_seq = a->seq;
        f->file_size = a->file_size;
    }
    f->recv = fl_durable(f, &pos, &f->fresh);
    if (fl_has_segments(&pos)) {
        f->file_size = pos.file_size;
    }
    f->st.log_id = a->log_id;
    f->phase = FP_SESSION;
    f->shown = RLOG_SHIP_CATCHING_UP;
    f->heard_ns = fl_now(f);
    if (a->leader_durable > f->st.leader_durable || a->adopt) {
        f->st.leader_durable = a->leader_durable;
    }
    f->gen = 0;
    f->gen_ok = 0;
    fl_on_files(f, a->files_gen, a->files_upto, a->n_files, a->files);
}

static void fl_on_truncate(rlog_ship_follower *f, const rlog_msg_ship_truncate *t)
{
    rlg_replica_pos before, after;
    bool fresh;
    fl_durable(f, &before, &fresh);
    int rc = rlg_replica_truncate(f->r, t->lsn);
    fl_durable(f, &after, &fresh);
    if (rc != 0) {
        fl_note(f, rc, "truncating at LSN %" PRIu64 " as the leader asked: %s", t->lsn,
                rlg_replica_errmsg(f->r));
        fl_structure_failed(f, rc);
        return;
    }
    if (after.seq == before.seq && after.end == before.end && after.last_lsn == before.last_lsn) {
        fl_note(f, RLOG_EPROTO,
                "the leader asked to truncate at LSN %" PRIu64
                ", which cuts nothing here (last LSN %" PRIu64 ")",
                t->lsn, before.last_lsn);
        fl_session_failed(f, RLOG_EPROTO);
        return;
    }
    f->st.truncations++;
    f->adopt_seq = 0;
    f->shown = RLOG_SHIP_TRUNCATING;
    fl_note(f, 0, "diverged from the leader: truncated at LSN %" PRIu64 " (%s)", t->lsn,
            t->message);
    f->st.durable = fl_has_segments(&after) ? after.last_lsn : 0;
    fl_start(f);
}

static void fl_on_refuse(rlog_ship_follower *f, const rlog_msg_ship_refuse *r)
{
    fl_abort_transfers(f);
    f->phase = FP_REFUSED;
    fl_note(f, r->code ? (int)r->code : RLOG_EPROTO, "refused by the leader: %s", r->message);
    f->t->disconnect(f->t, f->leader_id);
}

/* Is m from the current session (or, for ACCEPT, the answer to it)? */
static bool fl_current(rlog_ship_follower *f, const rlog_msg *m)
{
    uint64_t nonce;
    switch (m->type) {
    case RLOG_MSG_SHIP_REFUSE:
        nonce = m->u.ship_refuse.nonce;
        break;
    case RLOG_MSG_SHIP_TRUNCATE:
        nonce = m->u.ship_truncate.nonce;
        break;
    case RLOG_MSG_SHIP_ACCEPT:
        nonce = m->u.ship_accept.nonce;
        break;
    case RLOG_MSG_SHIP_FILES:
        nonce = m->u.ship_files.nonce;
        break;
    case RLOG_MSG_SHIP_FILE_DATA:
        nonce = m->u.ship_file_data.nonce;
        break;
    case RLOG_MSG_SHIP_DATA:
        nonce = m->u.ship_data.nonce;
        break;
    case RLOG_MSG_SHIP_RESTART:
        nonce = m->u.ship_restart.nonce;
        break;
    default:
        return false;
    }
    return nonce == f->nonce && (f->phase == FP_HELLO || f->phase == FP_SESSION);
}

static void fl_recv(void *data, uint64_t peer_id, const rlog_msg *m)
{
    rlog_ship_follower *f = data;
    if (peer_id != f->leader_id || !fl_current(f, m)) {
        f->st.rejected++;
        return;
    }
    bool hello = f->phase == FP_HELLO;
    if (m->type != RLOG_MSG_SHIP_ACCEPT && m->type != RLOG_MSG_SHIP_REFUSE &&
        m->type != RLOG_MSG_SHIP_TRUNCATE && m->type != RLOG_MSG_SHIP_RESTART && hello) {
        f->st.rejected++; /* data before the session was accepted */
        return;
    }
    f->heard_ns = fl_now(f);
    switch (m->type) {
    case RLOG_MSG_SHIP_ACCEPT:
        fl_on_accept(f, &m->u.ship_accept);
        break;
    case RLOG_MSG_SHIP_REFUSE:
        fl_on_refuse(f, &m->u.ship_refuse);
        break;
    case RLOG_MSG_SHIP_TRUNCATE:
        if (hello) {
            fl_on_truncate(f, &m->u.ship_truncate);
        }
        break;
    case RLOG_MSG_SHIP_RESTART:
        fl_note(f, 0, "the leader restarts the session: %s", m->u.ship_restart.message);
        if (fl_flush(f) == 0) {
            fl_start(f);
        }
        break;
    case RLOG_MSG_SHIP_FILES:
        fl_on_files(f, m->u.ship_files.gen, m->u.ship_files.upto, m->u.ship_files.n_files,
                    m->u.ship_files.files);
        break;
    case RLOG_MSG_SHIP_FILE_DATA:
        fl_on_file_data(f, &m->u.ship_file_data);
        break;
    case RLOG_MSG_SHIP_DATA:
        fl_on_data(f, &m->u.ship_data);
        break;
    default:
        break;
    }
}

static void fl_peer_up(void *data, uint64_t peer_id, const rlog_msg_hello *hello)
{
    rlog_ship_follower *f = data;
    if (f->phase == FP_REFUSED || f->phase == FP_FAILED) {
        f->t->disconnect(f->t, peer_id);
        return;
    }
    if (hello->role != RLOG_ROLE_SHIP_LEADER) {
        f->phase = FP_REFUSED;
        fl_note(f, RLOG_EPROTO,
                "the peer at '%s' (server %" PRIu64 ") is a %s, not a shipping "
                "leader; stopping",
                hello->address, peer_id, rlog_msg_role_name(hello->role));
        f->t->disconnect(f->t, peer_id);
        return;
    }
    f->leader_id = peer_id;
    f->up = true;
    fl_log(f, RLOG_LEVEL_INFO, "ship follower: connected to leader %" PRIu64 " (%s)", peer_id,
           hello->address);
    fl_start(f);
}

static void fl_peer_down(void *data, uint64_t peer_id, int reason)
{
    rlog_ship_follower *f = data;
    if (peer_id != f->leader_id || !f->up) {
        return;
    }
    f->up = false;
    f->st.reconnects++;
    if (f->phase == FP_SESSION) {
        fl_flush(f); /* verified leader-durable bytes: keep them */
    }
    fl_abort_transfers(f);
    if (f->phase == FP_HELLO || f->phase == FP_SESSION) {
        f->phase = FP_IDLE;
    }
    fl_log(f, RLOG_LEVEL_INFO, "ship follower: leader %" PRIu64 " disconnected (%s)", peer_id,
           rlog_errname(reason));
}

/* ------------------------------------------------------------------------
 * Timers
 * ---------------------------------------------------------------------- */

/* The leader deleted its oldest segments: so does the copy (it would
 * otherwise grow without bound). */
static void fl_delete_prefix(rlog_ship_follower *f)
{
    if (f->first_seq <= f->pruned_upto || f->seg_on) {
        return;
    }
    uint64_t n = 0;
    int rc = rlg_replica_delete_prefix(f->r, f->first_seq, &n);
    if (rc != 0) {
        fl_note(f, rc, "deleting segments before %016" PRIx64 " as the leader did: %s",
                f->first_seq, rlg_replica_errmsg(f->r));
        fl_structure_failed(f, rc);
        return;
    }
    f->pruned_upto = f->first_seq;
    if (n > 0) {
        fl_log(f, RLOG_LEVEL_INFO,
               "ship follower: deleted %" PRIu64 " segments before %016" PRIx64
               " (the leader's oldest)",
               n, f->first_seq);
    }
}

static void fl_service(rlog_ship_follower *f)
{
    uint64_t now = fl_now(f);
    if (!f->up) {
        return;
    }
    if (f->phase == FP_HELLO) {
        if ((f->start_ns == 0 || now - f->start_ns >= f->resend_ns) && now >= f->retry_ns) {
            fl_send_start(f);
        }
        return;
    }
    if (f->phase != FP_SESSION) {
        return;
    }
    if (now - f->heard_ns >= f->session_ns) {
        fl_note(f, 0, "the leader was silent for %" PRIu64 " ms: new session",
                (now - f->heard_ns) / 1000000u);
        if (fl_flush(f) == 0) {
            fl_start(f);
            fl_send_start(f);
        }
        return;
    }
    if (f->fetching && now - f->fetch_ns >= f->resend_ns) {
        fl_file_request(f);
    }
    fl_prune(f);
    fl_delete_prefix(f);
}

static int fl_state(const rlog_ship_follower *f)
{
    switch (f->phase) {
    case FP_REFUSED:
        return RLOG_SHIP_REFUSED;
    case FP_FAILED:
        return RLOG_SHIP_FAILED;
    case FP_IDLE:
        return RLOG_SHIP_CONNECTING;
    case FP_HELLO:
        return f->shown == RLOG_SHIP_TRUNCATING ? RLOG_SHIP_TRUNCATING : RLOG_SHIP_CONNECTING;
    default:
        break;
    }
    if (f->fetching) {
        return RLOG_SHIP_SNAPSHOT;
    }
    if (!f->seg_on && f->pend_len == 0 && f->st.durable >= f->st.leader_durable) {
        return RLOG_SHIP_TAILING;
    }
    return RLOG_SHIP_CATCHING_UP;
}

/* ------------------------------------------------------------------------
 * API
 * ---------------------------------------------------------------------- */

int rlog_ship_follower_poll(rlog_ship_follower *f, int timeout_ms)
{
    fl_service(f);
    int rc = f->t->poll(f->t, timeout_ms);
    if (rc < 0) {
        return -rc; /* RLOG_ECLOSED (or RLOG_EINVAL: called from a callback) */
    }
    if (f->phase == FP_SESSION) {
        fl_flush(f);
    }
    if (f->phase == FP_SESSION && f->ack_due) {
        fl_send_ack(f, 0);
    }
    fl_service(f);
    return f->phase == FP_FAILED ? f->st.error : 0;
}

void rlog_ship_follower_status_get(rlog_ship_follower *f, rlog_ship_follower_status *st)
{
    *st = f->st;
    st->state = fl_state(f);
}

const char *rlog_ship_follower_errmsg(rlog_ship_follower *f)
{
    return f->errmsg;
}

static void fl_destroy(rlog_ship_follower *f)
{
    if (f->r != NULL) {
        fl_abort_transfers(f);
        rlg_replica_close(f->r);
    }
    fl_files_free(f->list, f->nlist);
    fl_files_free(f->known, f->nknown);
    free(f->pend);
    free(f->dir);
    free(f->suffix);
    free(f);
}

void rlog_ship_follower_free(rlog_ship_follower *f)
{
    if (f == NULL) {
        return;
    }
    f->t->close(f->t); /* peer_down runs inside: it writes what is batched */
    fl_destroy(f);
}

static int fl_options(rlog_ship_follower *f, const rlog_ship_follower_options *o)
{
    rlog_ship_follower_options d;
    memset(&d, 0, sizeof d);
    if (o == NULL) {
        o = &d;
    }
    f->vfs = o->vfs ? o->vfs : rlog_vfs_posix();
    f->env = o->env ? o->env : rlog_env_posix();
    f->on_durable = o->on_durable;
    f->leader_id = o->leader_id; /* 0: any, then the id it announces */
    f->data = o->data;
    f->window = o->window_bytes;
    f->resend_ns = (uint64_t)(o->resend_ms ? o->resend_ms : RLG_SHIP_RESEND_MS) * 1000000u;
    f->session_ns = (uint64_t)(o->session_ms ? o->session_ms : RLG_SHIP_SESSION_MS) * 1000000u;
    f->suffix = strdup(o->side_suffix ? o->side_suffix : RLG_SHIP_SIDE_SUFFIX);
    f->logger = o->logger;
    f->logger_data = o->logger_data;
    return f->suffix ? 0 : RLOG_ENOMEM;
}

int rlog_ship_follower_new(const char *dir, rlog_transport *t, const rlog_transport_config *tcfg,
                           const char *leader_address, const rlog_ship_follower_options *opts,
                           rlog_ship_follower **out)
{
    *out = NULL;
    if (dir == NULL || t == NULL || tcfg == NULL || leader_address == NULL) {
        if (t != NULL) {
            t->close(t);
        }
        return RLOG_EINVAL;
    }
    rlog_ship_follower *f = calloc(1, sizeof *f);
    int rc = f ? 0 : RLOG_ENOMEM;
    rc = rc ? rc : fl_options(f, opts);
    if (rc == 0 && (f->dir = strdup(dir)) == NULL) {
        rc = RLOG_ENOMEM;
    }
    if (rc == 0) {
        char err[256] = "";
        rc = rlg_replica_open(dir, f->vfs, f->env, &f->r, err, sizeof err);
        if (rc != 0) {
            f->r = NULL;
            fl_log(f, RLOG_LEVEL_ERROR, "ship follower: opening '%s': %s", dir, err);
        }
    }
    if (rc == 0) {
        rlg_replica_pos pos;
        rlg_replica_pos_get(f->r, &pos);
        f->st.log_id = pos.log_id;
        f->st.durable = fl_has_segments(&pos) ? pos.last_lsn : 0;
        f->reported = f->st.durable;
        f->file_size = pos.file_size;
        f->t = t;
        rlog_transport_config cfg = *tcfg;
        cfg.role = RLOG_ROLE_SHIP_FOLLOWER;
        f->max_message = cfg.max_message;
        rlog_transport_events ev = {f, fl_peer_up, fl_peer_down, fl_recv};
        rc = t->init(t, &cfg, &ev);
        if (rc == 0 && cfg.address != NULL && cfg.address[0] != '\0') {
            rc = t->listen(t);
        }
        if (rc == 0) {
            rc = t->connect(t, f->leader_id, leader_address);
        }
        if (rc != 0) {
            fl_log(f, RLOG_LEVEL_ERROR, "ship follower: transport: %s", t->errmsg);
        }
    }
    if (rc != 0) {
        t->close(t);
        if (f != NULL) {
            fl_destroy(f);
        }
        return rc;
    }
    *out = f;
    return 0;
}
