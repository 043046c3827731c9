/*
 * The log handle's internals, shared by the writer (log.c) and the readers
 * (reader.c). Nothing outside log/ includes this.
 *
 * Pipeline. An append encodes its records, under `mu`, into chunks: runs
 * of bytes destined for one segment at one offset. An I/O round (one at a
 * time: the thread that sets `io_busy`) detaches chunks, writes them with
 * `mu` released, syncs, and then, with `mu` held again, advances `written`
 * and `durable` and completes waiters. Rotation is encoded too: a chunk
 * that ends with a seal record closes a segment, and the next chunk starts
 * the new segment with its header. The segment index (`segs`) and the
 * encoder run ahead of the disk; on a failed write they are rolled back to
 * what was written.
 */
#ifndef RLG_LOG_INTERNAL_H
#define RLG_LOG_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#include "log/format.h"
#include "log/recover.h"
#include "rlog/log.h"

typedef struct rlg_sticky_val {
    bool set;
    uint16_t type;
    uint32_t len;
    uint8_t *data; /* owned */
} rlg_sticky_val;

typedef struct rlg_sticky_upd {
    unsigned slot; /* 1-based */
    rlg_sticky_val val;
} rlg_sticky_upd;

typedef struct rlg_chunk {
    struct rlg_chunk *next;
    uint64_t seq; /* segment */
    uint64_t off; /* file offset of data[0] */
    uint8_t *data;
    size_t len, cap;
    uint64_t first_lsn, last_lsn; /* user LSNs inside; last < first when none */
    bool starts_segment;          /* data begins with the segment header */
    bool seal;                    /* data ends with a seal record */
    bool closed;                  /* the encoder appends no more to it */
    bool boundary;                /* RLOG_SYNC_EACH: last chunk of one append call */
    rlg_sticky_upd *stk;          /* sticky values this chunk sets */
    size_t nstk;
} rlg_chunk;

/* A waiter: a blocking append (ticket) or an asynchronous one (cb). */
typedef struct rlg_waiter {
    struct rlg_waiter *next;
    uint64_t first, last;
    rlog_append_cb cb; /* NULL for a ticket */
    void *data;
    bool need_durable; /* ticket: complete at durable (else at written) */
    /* ticket: a sleeping appender waits on sem for one post, which says why
     * in `wake`: RLG_WAKE_DONE (complete() unlinked the ticket and set
     * status; the appender returns without mu) or RLG_WAKE_TOKEN (the I/O
     * token is free; it takes mu and looks). `sleeping` (mu) is true from
     * when it goes to sleep until a post is owed to it: one post per
     * sleep, so the post is the waker's last access to the waiter. */
    sem_t *sem;
    bool sleeping;
    int wake;
    bool done;
    bool rolled; /* failed by a rollback: counted in rb_pending until fired */
    int status;
} rlg_waiter;

enum { RLG_WAKE_DONE = 1, RLG_WAKE_TOKEN };

enum { RLG_SPARE_NONE = 0, RLG_SPARE_PREPARING, RLG_SPARE_READY };

/* At most this many deleted segment files wait for recycling; the others
 * are unlinked. */
#define RLG_RECYCLE_MAX 4
/* Name of a deleted segment file waiting for recycling: the prefix, then
 * its old sequence number as 16 hex digits. Never part of the log. */
#define RLG_RECYCLE_PREFIX "rlog.recycle-"

struct rlog_log {
    char *dir;
    rlog_vfs *vfs;
    rlog_env *env;
    rlog_options opts;
    uint64_t log_id;
    bool readonly;
    bool replica; /* the handle of a replica (log/replica.c): never appended to */

    pthread_mutex_t mu;
    pthread_cond_t cond;      /* round finished, spare state changed */
    pthread_cond_t bg_cond;   /* work for the background I/O thread */
    pthread_cond_t prep_cond; /* work for the preparer thread */
    /* Held around a directory operation of prefix deletion or recycling and
     * its directory fsync (never with mu): one unsynced at a time. */
    pthread_mutex_t dir_mu;
    bool io_busy;
    int poisoned; /* 0, or the error every call now returns */
    char errmsg[512];

    /* segment index; segs[nsegs-1] is where the encoder puts records */
    rlg_segment *segs;
    size_t nsegs, capsegs;
    uint64_t enc_off; /* encode offset in segs[nsegs-1] */
    uint64_t first;   /* first retained LSN */
    uint64_t appended, written, durable;

    /* disk side of the writer */
    rlog_file *wfile;       /* the active segment, open for writing (NULL when sealed) */
    uint64_t wfile_seq;     /* its seq (or of the last sealed segment) */
    uint64_t disk_last_seq; /* newest segment whose header is on disk */

    rlg_chunk *pend_head, *pend_tail;
    rlg_waiter *async_head, *async_tail; /* async appends, LSN order */
    rlg_waiter *tickets;                 /* blocking appends, any order */
    rlg_waiter *wakeq; /* completed sleeping tickets, posted once mu is released */
    /* Group commit: blocking appenders the rounds since the last round
     * started completed and have not appended again (they are expected to;
     * the next round's leader waits a little for them: drive()). */
    unsigned returning;

    int spare_state;
    uint64_t spare_seq;  /* seq of the READY spare */
    uint64_t spare_next; /* seq the next spare to prepare gets */
    rlog_file *spare_file;
    bool spare_failed;   /* the last preparation failed: background waits for a rotation */
    bool spare_recycled; /* the READY spare may hold stale bytes (docs/format.md,
                            "Recycled segment files"): its header gets RLG_SEG_RECYCLED */
    /* the spare a writable open found (0: none), made by an earlier process:
     * not trusted to be durable, its next preparation writes it again
     * (log/spare.c, rewrite_kept) */
    uint64_t spare_kept;
    /* Files of deleted segments kept for recycling, renamed to
     * RLG_RECYCLE_PREFIX + their old sequence number: they become spares
     * instead of new zero-filled files (log/spare.c). */
    uint64_t pool[RLG_RECYCLE_MAX];
    size_t npool;

    rlg_sticky_val sticky_enc[RLOG_STICKY_SLOTS]; /* as the encoder sees them */
    rlg_sticky_val sticky_wr[RLOG_STICKY_SLOTS];  /* as written to disk */

    bool dirty;        /* records appended since open or the last checkpoint */
    bool dir_unsynced; /* an unlink whose directory fsync failed */
    /* async appends failed by a rollback whose callbacks have not fired:
     * until they have, new appends are refused (their LSNs were reused, and
     * the caller does not know yet) */
    uint64_t rb_pending;
    /* threads delivering async callbacks right now (outside mu): rlog_sync
     * waits for them, so every callback of an earlier append has run */
    unsigned firing;
    rlog_metrics m;

    rlog_file *lockf; /* the directory lock (writers only) */

    /* RLOG_OPEN_THREAD: the I/O thread and the preparer; RLOG_OPEN_PREPARER:
     * the preparer only (bg_io false) */
    pthread_t bg, prep;
    bool bg_running, bg_io, bg_stop;
    unsigned iters_open;
};

/* Sets the handle's message (printf-style); returns err. Caller holds mu. */
int rlg_fail(rlog_log *l, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "dir/name" of segment seq into buf. */
void rlg_seg_path(const rlog_log *l, uint64_t seq, char *buf, size_t cap);
/* Room for one more entry in l->segs. RLOG_ENOMEM on failure. */
int rlg_segs_reserve(rlog_log *l);
/* Index of the segment holding lsn, or -1. Caller holds mu. */
long rlg_find_segment(const rlog_log *l, uint64_t lsn);
/* Index of the segment with sequence number seq (must exist). mu held. */
size_t rlg_find_segment_seq(const rlog_log *l, uint64_t seq);
/* Calls the logger, if any. */
void rlg_logf(const rlog_log *l, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* RLG_LOG_INTERNAL_H */
