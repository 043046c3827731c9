/*
 * rlog — the segmented, checksummed write-ahead log of typed records.
 *
 * A log is a directory of segment files. Each record is {type, payload} and
 * gets a log sequence number (LSN): 1, 2, 3, ... with no gaps. Types below
 * RLOG_TYPE_USER_MIN are reserved for the log itself. The on-disk format is
 * specified in docs/format.md; the durability guarantees in
 * docs/durability.md.
 *
 * Positions. The log always knows three of them:
 *   appended  the last LSN handed out by an append call,
 *   written   the last LSN whose bytes reached the file (page cache),
 *   durable   the last LSN made durable by fdatasync.
 * appended >= written >= durable. Readers see written records (or, on
 * request, durable ones only).
 *
 * Threads. A log handle may be used from several threads at once: appends
 * are serialised inside and, in RLOG_SYNC_GROUP mode, concurrent appenders
 * share one fdatasync (group commit). Without RLOG_OPEN_THREAD the log has
 * no thread of its own and makes progress only inside calls (rlog_append,
 * rlog_sync, rlog_step): that is how the simulator drives it,
 * single-threaded and deterministic. With RLOG_OPEN_THREAD the log runs two
 * threads of its own: one writes and syncs asynchronous appends, the other
 * prepares the next segment (creates it, fills it with zeros, syncs it)
 * off the hot path. With RLOG_OPEN_PREPARER only the second runs: the
 * owner makes asynchronous appends durable itself (rlog_sync or rlog_step,
 * e.g. once per turn of its event loop, which then writes and syncs what
 * the turn appended in one round without handing it to another thread),
 * and rotations still find their next segment ready. Blocking appends
 * always do their own I/O (the first waiting caller leads a round; the
 * others share its fdatasync).
 */
#ifndef RLOG_LOG_H
#define RLOG_LOG_H

#include "rlog/common.h"
#include "rlog/vfs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Types 0 .. RLOG_TYPE_USER_MIN-1 are the log's own; callers use
 * RLOG_TYPE_USER_MIN .. RLOG_TYPE_MAX. */
#define RLOG_TYPE_USER_MIN 16u
#define RLOG_TYPE_MAX      0xffffu

/* Number of sticky slots (see rlog_record.sticky). */
#define RLOG_STICKY_SLOTS 4u

typedef struct rlog_log rlog_log;

/* A record, as given to append and as returned by readers. */
typedef struct rlog_record {
    uint64_t lsn;     /* out: assigned / read LSN (ignored on input) */
    uint16_t type;    /* RLOG_TYPE_USER_MIN .. RLOG_TYPE_MAX */
    uint8_t sticky;   /* input only: 0, or 1..RLOG_STICKY_SLOTS (see below) */
    uint32_t len;     /* payload length */
    const void *data; /* payload; on input borrowed for the call only */
} rlog_record;
/*
 * Sticky records. A record appended with sticky = k (1..RLOG_STICKY_SLOTS)
 * also becomes the current value of slot k. At the head of every later
 * segment the log re-appends the current value of every set slot (as an
 * ordinary record with a new LSN) before any other record: segments are
 * always headed by the sticky copies, since calls never straddle them. A layer above
 * that keeps "current state" records (the Raft hard state, the snapshot
 * marker) uses this so that deleting old segments never loses the current
 * state. Slots are not persisted as such: after reopening, the layer above
 * sets them again with rlog_sticky_set().
 */

typedef enum rlog_sync_mode {
    RLOG_SYNC_EACH = 0,  /* each append call is written and fdatasync'ed alone */
    RLOG_SYNC_GROUP = 1, /* concurrent appends share one fdatasync */
    RLOG_SYNC_NONE = 2,  /* appends are written; durable only after rlog_sync() */
} rlog_sync_mode;

/* rlog_options.flags */
#define RLOG_OPEN_CREATE   0x1u /* create the log if the directory holds none */
#define RLOG_OPEN_READONLY 0x2u /* never write; no lock; torn tail reported, not cut */
#define RLOG_OPEN_THREAD   0x4u /* start the background threads (see above) */
/* Explicit repair: on corruption, cut the log at the first bad record
 * instead of failing the open. Loses acknowledged records; the report says
 * which. Never implied. */
#define RLOG_OPEN_REPAIR 0x8u
/* Never recycle: rlog_delete_prefix unlinks every deleted segment file and
 * each new segment is a new zero-filled file. By default up to 4 deleted
 * segment files wait (as rlog.recycle-*) to become the next segments,
 * which then need no zero-filling (docs/format.md, "Recycled segment
 * files"). */
#define RLOG_OPEN_NO_RECYCLE 0x10u
/* Start only the preparer thread (see "Threads" above); ignored with
 * RLOG_OPEN_THREAD, which starts both. */
#define RLOG_OPEN_PREPARER 0x20u

typedef struct rlog_options {
    rlog_vfs *vfs;         /* NULL = posix; borrowed, must outlive the log */
    rlog_env *env;         /* NULL = posix; borrowed, must outlive the log */
    uint64_t segment_size; /* bytes; 0 = 64 MiB; 4 KiB .. 4 GiB-1 */
    uint32_t max_record;   /* max payload bytes; 0 = 16 MiB (capped to fit a segment) */
    rlog_sync_mode sync;   /* default RLOG_SYNC_EACH */
    unsigned flags;        /* RLOG_OPEN_* */
    rlog_logger_fn logger; /* NULL = silent */
    void *logger_data;
} rlog_options;

/* Fills defaults (all zero means defaults). */
RLOG_API void rlog_options_init(rlog_options *opts);

/* What recovery found at open. */
typedef enum rlog_tail_status {
    RLOG_TAIL_CLEAN = 0,   /* every byte accounted for */
    RLOG_TAIL_TORN = 1,    /* a torn tail beyond what was durable: cut (or, read-only, would be) */
    RLOG_TAIL_CORRUPT = 2, /* damage to what was durable: open failed (unless REPAIR) */
} rlog_tail_status;

typedef struct rlog_open_report {
    rlog_tail_status status;
    uint64_t log_id;
    uint64_t segments;  /* segment files in the log (spares not counted) */
    uint64_t records;   /* records kept (all types) */
    uint64_t first_lsn; /* first LSN in the log (1 for an empty new log) */
    uint64_t last_lsn;  /* last LSN kept (first_lsn - 1 when empty) */
    /* Highest LSN that the records themselves prove was durable. */
    uint64_t proven_durable;
    /* Where the tail was cut, or where the corruption is. */
    uint64_t segment_seq;
    char segment_name[64];
    uint64_t offset;
    uint64_t bytes_cut;                   /* bytes beyond the cut that held anything but zeros */
    uint64_t records_cut;                 /* valid-looking records found beyond the cut */
    uint64_t lsn_cut_first, lsn_cut_last; /* LSN range lost at the cut (0,0 if none) */
    /* RLOG_OPEN_REPAIR: the segment files from this sequence number on are
     * dropped from the log (deleted; read-only: would be); 0 = none. */
    uint64_t drop_from_seq;
    char message[512]; /* one line naming segment, offset and LSNs */
} rlog_open_report;

/*
 * Opens (and recovers) the log in `dir`. On success *out is a handle to
 * close with rlog_close(). `report` (may be NULL) is filled in both on
 * success and on failure. Fails, changing nothing on disk:
 *   RLOG_ENOTLOG   dir has no log (and RLOG_OPEN_CREATE was not given),
 *   RLOG_EBUSY     another writer holds the log,
 *   RLOG_ECORRUPT  damage to durable data (report says where),
 *   RLOG_EFOREIGN  a segment of another log is in the directory,
 *   RLOG_EVERSION  a segment of a format this build cannot read,
 *   RLOG_EINVAL    bad options, RLOG_EIO / RLOG_ENOMEM.
 * When opening for writing succeeds after a torn tail, the torn bytes are
 * zeroed and synced (the report says what was cut) and everything kept is
 * made durable before the call returns.
 */
RLOG_API int rlog_open(const char *dir, const rlog_options *opts, rlog_log **out,
                       rlog_open_report *report);

/* Writes and syncs what is pending (unless poisoned), appends a checkpoint
 * record that proves every record durable, stops the background thread,
 * fails callbacks still pending with RLOG_ECLOSED, releases the lock and
 * frees the handle. All iterators must be closed first. Returns 0 only
 * when everything appended is durable: otherwise the first error met
 * (RLOG_EPOISONED for a poisoned handle). The handle is freed regardless. */
RLOG_API int rlog_close(rlog_log *log);

/* The message of the last error on this handle ("" if none): one buffer
 * per handle, overwritten by the next failing call on it from any thread,
 * so read it right after the call failed, on a handle you do not share
 * while doing so. */
RLOG_API const char *rlog_errmsg(rlog_log *log);

/*
 * Appends n records (n >= 1) as one unit: they get consecutive LSNs and
 * *first_lsn (may be NULL) receives the first. Returns once they are
 * durable (RLOG_SYNC_EACH, RLOG_SYNC_GROUP) or written (RLOG_SYNC_NONE).
 * A call's records always land in one segment (a call that does not fit in
 * what is left of the current one starts the next): the call, with the
 * sticky records, must fit in one segment, else RLOG_ETOOBIG — split it.
 * Errors: RLOG_ERESERVED, RLOG_ETOOBIG, RLOG_EINVAL (nothing changed);
 * RLOG_EIO / RLOG_ENOSPC from a write (rolled back: nothing of the call is
 * reachable, the next append reuses the LSNs); RLOG_EPOISONED after a
 * failed fdatasync (every later call fails; reopen to recover).
 */
RLOG_API int rlog_append(rlog_log *log, const rlog_record *recs, size_t n, uint64_t *first_lsn);

/* Completion of an asynchronous append: status 0 once records
 * first_lsn..last_lsn are durable, or the error that lost them. Callbacks
 * fire in LSN order, one at a time. They run on the thread that does the
 * I/O (the background thread, or whoever calls rlog_step / rlog_sync /
 * rlog_append) and may call rlog_append_async but not the blocking calls. */
typedef void (*rlog_append_cb)(void *data, int status, uint64_t first_lsn, uint64_t last_lsn);

/* Queues n records; returns at once with their LSNs assigned (*first_lsn)
 * and payloads copied. The callback fires later (see above). Input errors
 * are returned directly and the callback is not called. */
RLOG_API int rlog_append_async(rlog_log *log, const rlog_record *recs, size_t n, rlog_append_cb cb,
                               void *data, uint64_t *first_lsn);

/* Writes everything pending and makes it durable; returns once the
 * callbacks of every asynchronous append made before the call have run. Not
 * from inside a callback. */
RLOG_API int rlog_sync(rlog_log *log);

/* Single-threaded progress: performs the pending I/O (write, sync, prepare
 * the next segment) and fires due callbacks. Returns 0 or the error of the
 * I/O it did. *more (may be NULL) is set when work remains. */
RLOG_API int rlog_step(rlog_log *log, int *more);

typedef struct rlog_positions {
    uint64_t first;    /* first LSN retained */
    uint64_t appended; /* last LSN assigned */
    uint64_t written;  /* last LSN written to the file */
    uint64_t durable;  /* last LSN durable */
    int poisoned;      /* 0, or RLOG_EPOISONED once the handle is poisoned */
} rlog_positions;
RLOG_API void rlog_positions_get(rlog_log *log, rlog_positions *pos);

/* Frees the handle as if its process had died at this instant: nothing
 * more is written or synced, no checkpoint is appended, and no callback of
 * a queued rlog_append_async ever fires — `drop` (may be NULL) is called
 * instead with each such append's `data`, so that its owner can free it.
 * The directory is left as a crash would leave it; the next open recovers
 * it. For simulators and crash tests that run many "processes" in one
 * address space; a program simply exits or calls rlog_close(). */
RLOG_API void rlog_abandon(rlog_log *log, void (*drop)(void *data));

/* Seals the active segment and starts a new one. */
RLOG_API int rlog_rotate(rlog_log *log);

/* Deletes, oldest first and each durably, the sealed segments whose records
 * all have LSN < lsn and whose successor is durable (a record after them
 * is durable). The active segment is never deleted. *deleted (may be NULL)
 * receives the count. On success every deletion made so far (also by
 * earlier calls that failed part-way) is durable; on failure the deletions
 * already made are gone from the log but may reappear after a crash (the
 * files left are always a contiguous run). */
RLOG_API int rlog_delete_prefix(rlog_log *log, uint64_t lsn, uint64_t *deleted);

/* Sets sticky slot `slot` (1..RLOG_STICKY_SLOTS) without appending; rec =
 * NULL clears it. The payload is copied. */
RLOG_API int rlog_sticky_set(rlog_log *log, unsigned slot, const rlog_record *rec);

/* ---- Reading ---- */

/* Reader flags */
#define RLOG_READ_DURABLE 0x1u /* see durable records only (default: written) */

/* Reads record `lsn`, verifying its checksum. *payload receives a buffer of
 * rec->len bytes (rec->data points at it) to free with rlog_free().
 * RLOG_ENOTFOUND if lsn is not (or no longer, or not yet visibly) in the
 * log; RLOG_ECORRUPT if its bytes fail the checksum. */
RLOG_API int rlog_get(rlog_log *log, uint64_t lsn, unsigned flags, rlog_record *rec,
                      void **payload);

typedef struct rlog_iter rlog_iter;
/* An iterator from `from_lsn` (clamped up to the first retained LSN). It
 * has its own file handles and may run on another thread than the writer.
 * Close it before closing the log. */
RLOG_API int rlog_iter_open(rlog_log *log, uint64_t from_lsn, unsigned flags, rlog_iter **out);
/* Next record: RLOG_OK with *rec filled (rec->data valid until the next
 * call on this iterator), RLOG_EEND when no further record is visible yet
 * (call again later to see more), RLOG_ENOTFOUND if the next record was
 * deleted by rlog_delete_prefix, RLOG_ECORRUPT on a bad checksum. Records
 * of the log's own types are skipped. */
RLOG_API int rlog_iter_next(rlog_iter *it, rlog_record *rec);
RLOG_API void rlog_iter_close(rlog_iter *it);

/* Paginated replay: calls cb for each visible record from `from_lsn`,
 * stopping after max_records records or once max_bytes payload bytes were
 * delivered (0 = no limit), or when cb returns non-zero (that value is
 * returned). *next_lsn (may be NULL) receives where to continue. */
typedef int (*rlog_replay_cb)(void *data, const rlog_record *rec);
RLOG_API int rlog_replay(rlog_log *log, uint64_t from_lsn, size_t max_records, size_t max_bytes,
                         unsigned flags, rlog_replay_cb cb, void *data, uint64_t *next_lsn);

/* ---- Observing ---- */

#define RLOG_HIST_BUCKETS 32
typedef struct rlog_metrics {
    uint64_t appends;       /* append calls that succeeded */
    uint64_t records;       /* records appended (user records) */
    uint64_t bytes;         /* bytes written to segments */
    uint64_t writes;        /* pwrite calls */
    uint64_t syncs;         /* fdatasync calls */
    uint64_t sync_ns_total; /* time in fdatasync */
    uint64_t sync_ns_max;
    /* sync latency: bucket i counts syncs that took [2^i, 2^(i+1)) microseconds
     * (bucket 0 also holds those under 1 us) */
    uint64_t sync_us_hist[RLOG_HIST_BUCKETS];
    /* records per sync: bucket i counts syncs that covered [2^i, 2^(i+1)) records */
    uint64_t batch_hist[RLOG_HIST_BUCKETS];
    uint64_t rotations;
    uint64_t segments_prepared;
    uint64_t prepare_stalls; /* rotations that had to prepare a segment inline */
    uint64_t segments_deleted;
    uint64_t segments_recycled; /* spares made from deleted segment files (no zero-fill) */
    uint64_t write_errors;      /* failed or short writes rolled back */
    /* RLOG_SYNC_GROUP: rounds started as soon as the sync before them ended,
     * with what arrived during it (no gathering: docs/performance.md) */
    uint64_t pipelined;
} rlog_metrics;
RLOG_API void rlog_metrics_get(rlog_log *log, rlog_metrics *m);

/* Segment file name for a sequence number: "%016" PRIx64 ".seg". */
RLOG_API void rlog_segment_name(uint64_t seq, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_LOG_H */
