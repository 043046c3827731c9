/*
 * rlog — Raft storage: the persistent state of one Raft server (hard state,
 * log entries, snapshots) kept as typed records in an rlog log.
 *
 * Records (user types of the log; docs/raft_storage.md and
 * docs/format.md ("Raft storage records") give the byte layout):
 *   RLOG_RS_TYPE_HARD_STATE  term, vote, commit           (sticky slot 1)
 *   RLOG_RS_TYPE_ENTRIES     a batch of contiguous entries
 *   RLOG_RS_TYPE_TRUNCATE    "entries from index i on are gone"
 *   RLOG_RS_TYPE_SNAPSHOT    snapshot marker: index, term, configuration,
 *                            snapshot file name, size, CRC32C, trailing
 *                                                          (sticky slot 2)
 * Opening replays every record in LSN order (see docs/raft_storage.md for
 * the rules) and keeps a compact in-memory index: runs of equal terms and,
 * per batch record, its first index and LSN packed as varints — a few bytes
 * per entry at most. Payloads are read from the segments on demand.
 *
 * Threads. A handle is used from one thread at a time (the Raft loop). The
 * only exception is the completion callback of rlog_rs_append_async, which
 * runs on the log's I/O thread (the background thread with
 * RLOG_OPEN_THREAD, otherwise whichever thread calls rlog_rs_step,
 * rlog_rs_sync or another append). It must not call the blocking functions
 * of this handle; hand the completion to the Raft loop instead.
 *
 * Errors: 0 or an RLOG_E* code; rlog_rs_errmsg() has the message. After an
 * asynchronous append failed, or a record was made durable but the
 * in-memory index could not follow (out of memory), the handle is failed:
 * every later call that writes returns RLOG_EPOISONED; close and reopen.
 */
#ifndef RLOG_RAFT_STORAGE_H
#define RLOG_RAFT_STORAGE_H

#include "rlog/common.h"
#include "rlog/log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log record types used by this layer. */
#define RLOG_RS_TYPE_HARD_STATE 16u
#define RLOG_RS_TYPE_ENTRIES    17u
#define RLOG_RS_TYPE_TRUNCATE   18u
#define RLOG_RS_TYPE_SNAPSHOT   19u
/* Sticky slots used by this layer. */
#define RLOG_RS_SLOT_HARD_STATE 1u
#define RLOG_RS_SLOT_SNAPSHOT   2u
/* Bytes an entries record adds to its payloads: one batch header, and one
 * entry header per entry (docs/raft_storage.md). A batch whose record
 * would exceed the log's record limit is split where these say. */
#define RLOG_RS_BATCH_OVERHEAD 16u
#define RLOG_RS_ENTRY_OVERHEAD 16u

typedef struct rlog_rs rlog_rs;

typedef struct rlog_rs_options {
    /* Passed to rlog_open (vfs, env, segment size, sync mode, flags).
     * RLOG_OPEN_CREATE creates an empty store. With RLOG_SYNC_NONE this
     * layer still syncs hard state and markers before returning. The vfs
     * is used for the snapshot files too. */
    rlog_options log;
    /* Snapshot files kept (the current one and the newest older ones);
     * 0 = 2. */
    unsigned snapshots_keep;
} rlog_rs_options;

/* Fills defaults (all zero means defaults). */
RLOG_API void rlog_rs_options_init(rlog_rs_options *opts);

typedef struct rlog_rs_open_report {
    rlog_open_report log;       /* what the log layer reported (tail cut, corruption) */
    uint64_t records;           /* Raft records replayed */
    uint64_t corrupt_lsn;       /* LSN of a record that broke the rules (0 = none) */
    uint64_t temp_removed;      /* leftover snapshot temp files removed */
    uint64_t snapshots_removed; /* orphaned or surplus snapshot files removed */
    char message[512];          /* one line: what went wrong, or a summary */
} rlog_rs_open_report;

/*
 * Opens (recovers) the Raft store in `dir`. `opts` may be NULL (defaults;
 * then the store must exist); `report` may be NULL and is filled on success
 * and on failure. On success *out is a handle to close with rlog_rs_close.
 * Errors: everything rlog_open returns (RLOG_ECORRUPT with the log's
 * report), RLOG_ENOTRAFT when the log's first record is not a Raft record
 * (a log of another kind: nothing is changed), RLOG_ECORRUPT when a later
 * record that passed the log's checksum does not decode or breaks the
 * replay rules (report->corrupt_lsn says which), RLOG_ECORRUPT when the
 * current snapshot's file is missing, has another size or fails its CRC32C
 * (the message names the file; corrupt_lsn is the marker's LSN) — open
 * reads the snapshot file once to check it, read-only too —,
 * RLOG_ENOMEM, RLOG_EIO, RLOG_ENOSPC. A writable open may append (copies
 * of the hard state and the snapshot marker ahead of the log's head); when
 * that append's sync fails the open returns RLOG_EIO, never
 * RLOG_EPOISONED: the handle is gone, the log left its unsynced marker,
 * and opening again recovers.
 */
RLOG_API int rlog_rs_open(const char *dir, const rlog_rs_options *opts, rlog_rs **out,
                          rlog_rs_open_report *report);

/* Closes the log (pending asynchronous appends complete or fail with
 * RLOG_ECLOSED first) and frees the handle. Returns 0 only when everything
 * acknowledged is durable and nothing failed part-way: otherwise the first
 * error met (RLOG_EPOISONED for a store that failed). The handle is freed
 * regardless. */
RLOG_API int rlog_rs_close(rlog_rs *rs);
/* Frees the handle as if its process had died (rlog_abandon on its log):
 * nothing more is written or synced and no callback of a pending
 * rlog_rs_append_async fires (the data passed to those is not freed). For
 * simulators and crash tests. */
RLOG_API void rlog_rs_abandon(rlog_rs *rs);

/* Message of the last error ("" if none). Valid until the next call. */
RLOG_API const char *rlog_rs_errmsg(rlog_rs *rs);

/* The underlying log, borrowed: valid until rlog_rs_close. For observing
 * (rlog_positions_get, rlog_metrics_get, iterators); do not append to it. */
RLOG_API rlog_log *rlog_rs_log(rlog_rs *rs);

/* ---- Hard state ---- */

typedef struct rlog_rs_hard_state {
    uint64_t term;   /* current term; 0 before the first */
    uint64_t vote;   /* server voted for in `term`; 0 = none */
    uint64_t commit; /* commit index as last stored */
} rlog_rs_hard_state;

/* Stores a new hard state, durable before the call returns. Rules (a
 * violation changes nothing): the term never goes back (RLOG_ETERM); within
 * a term the vote may only go from 0 to a server, never change or be
 * cleared (RLOG_EVOTE); commit never goes back (RLOG_ESTALE). Storing the
 * current value again is allowed. */
RLOG_API int rlog_rs_set_hard_state(rlog_rs *rs, const rlog_rs_hard_state *hs);
/* Shorthands for libraft's set_term (term, vote 0) and set_vote. */
RLOG_API int rlog_rs_set_term(rlog_rs *rs, uint64_t term);
RLOG_API int rlog_rs_set_vote(rlog_rs *rs, uint64_t vote);
RLOG_API void rlog_rs_hard_state_get(rlog_rs *rs, rlog_rs_hard_state *hs);

/* ---- Entries ---- */

typedef struct rlog_rs_entry {
    uint64_t term;    /* >= 1; not below the previous entry's term */
    uint16_t type;    /* opaque to rlog (libraft: command, barrier, change) */
    uint32_t len;     /* payload bytes */
    const void *data; /* payload */
    /* Output only (rlog_rs_entries_read): the buffer that `data` points
     * into, shared by the entries of one batch record. Owned by the
     * rlog_rs_entries result. */
    void *batch;
} rlog_rs_entry;

/*
 * Appends n >= 1 entries at indexes first_index .. first_index+n-1,
 * durable before the call returns. `e` and the payloads are borrowed for
 * the call. Errors (nothing changed): RLOG_ENONCONTIG when first_index is
 * not last index + 1; RLOG_ETERM when a term is 0 or below the previous
 * entry's (or the snapshot's) term; RLOG_ETOOBIG for an entry larger than
 * a record may be; RLOG_EIO/RLOG_ENOSPC from the write (rolled back).
 */
RLOG_API int rlog_rs_append(rlog_rs *rs, uint64_t first_index, const rlog_rs_entry *e, size_t n);

/* Completion of an asynchronous append: status 0 once entries
 * first_index..last_index are durable, or the error that lost them (the
 * handle is then failed; reopen). Runs on the log's I/O thread (see the
 * top of this file), in index order. */
typedef void (*rlog_rs_append_cb)(void *data, int status, uint64_t first_index,
                                  uint64_t last_index);

/* Like rlog_rs_append, but returns once the entries are queued (payloads
 * copied: `e` and the payloads may be freed on return); the index already
 * includes them (the next append starts after them, reads wait for them to
 * be written). cb fires once they are durable. Input errors are returned
 * directly and cb is not called. */
RLOG_API int rlog_rs_append_async(rlog_rs *rs, uint64_t first_index, const rlog_rs_entry *e,
                                  size_t n, rlog_rs_append_cb cb, void *data);

/* Removes entries from `index` on: one truncation record, durable before
 * the call returns. Requires snapshot index < index <= last index + 1 and
 * index > commit (RLOG_ESTALE otherwise), index >= 1 (RLOG_EINVAL). The next
 * append starts at `index`, with any term not below the entry before it. */
RLOG_API int rlog_rs_truncate(rlog_rs *rs, uint64_t index);

/* Entries read: v[0..n) hold indexes first .. first+n-1. All memory
 * (v, and the batch buffers the entries point into) belongs to the result
 * and is freed by rlog_rs_entries_free; it stays valid whatever the handle
 * does meanwhile (even after close). */
typedef struct rlog_rs_entries {
    uint64_t first;
    size_t n;
    rlog_rs_entry *v;
    void **bufs; /* the batch buffers (internal) */
    size_t nbufs;
} rlog_rs_entries;

/*
 * Reads entries lo .. min(hi, last index), stopping before the entry that
 * would take the payload total over max_bytes (0 = no limit; at least one
 * entry is always returned). RLOG_ENOTFOUND when lo < first index (compacted)
 * or lo > last index. Entries whose asynchronous append is still in flight
 * are waited for (rlog_sync). RLOG_ECORRUPT if a record fails its checksum.
 * On error *out is empty.
 */
RLOG_API int rlog_rs_entries_read(rlog_rs *rs, uint64_t lo, uint64_t hi, size_t max_bytes,
                                  rlog_rs_entries *out);
RLOG_API void rlog_rs_entries_free(rlog_rs_entries *e);

/*
 * Reads entries lo .. min(hi, last index) without copying them: calls
 * cb(data, e, n) for the entries of each batch record in index order, e[k]
 * holding index (previous calls' total + k + lo). e and the payloads point
 * into the reader's buffer and are valid only during the call (e[k].batch
 * is NULL): copy what must stay. Every record is checked against its
 * checksum as by rlog_rs_entries_read (RLOG_ECORRUPT naming the segment
 * file and offset). A non-zero return of cb stops the scan and is
 * returned. RLOG_ENOTFOUND when lo is outside first .. last index.
 */
typedef int (*rlog_rs_scan_cb)(void *data, const rlog_rs_entry *e, size_t n);
RLOG_API int rlog_rs_entries_scan(rlog_rs *rs, uint64_t lo, uint64_t hi, rlog_rs_scan_cb cb,
                                  void *data);

/* Term of entry `index`: known for first..last index and for the snapshot
 * index; 0 otherwise. */
RLOG_API uint64_t rlog_rs_term(rlog_rs *rs, uint64_t index);
/* First and last index held. Empty log: first = last + 1 (last = the
 * snapshot index, or 0). */
RLOG_API uint64_t rlog_rs_first_index(rlog_rs *rs);
RLOG_API uint64_t rlog_rs_last_index(rlog_rs *rs);

/* Makes every queued append durable (fires their callbacks). */
RLOG_API int rlog_rs_sync(rlog_rs *rs);
/* Single-threaded progress for a log opened without RLOG_OPEN_THREAD (see
 * rlog_step). */
RLOG_API int rlog_rs_step(rlog_rs *rs, int *more);

/* ---- Snapshots ---- */

typedef struct rlog_rs_buf {
    const void *base;
    size_t len;
} rlog_rs_buf;

/* A snapshot to store. Everything is borrowed for the call. */
typedef struct rlog_rs_snapshot_desc {
    uint64_t index;      /* last index included */
    uint64_t term;       /* its term */
    uint64_t conf_index; /* index of the configuration below */
    const void *conf;    /* configuration, opaque (libraft: encoded) */
    uint32_t conf_len;
    const rlog_rs_buf *bufs; /* the snapshot data, concatenated */
    unsigned n_bufs;
    /* Entries to keep at and before `index` (libraft's `trailing`): entries
     * up to index - trailing are dropped. 0 = the snapshot replaces the whole
     * log (install): the log ends empty, first = last + 1 = index + 1. The
     * same happens when index is beyond the last entry or the entry at index
     * has another term. */
    unsigned trailing;
} rlog_rs_snapshot_desc;

/*
 * Stores a snapshot: writes the data to its own file (temp name, fsync,
 * rename, directory fsync; CRC32C over the whole file), appends the marker
 * (durable), drops the entries it covers from the index and deletes the log
 * segments that hold only dropped records, then removes snapshot files
 * beyond snapshots_keep. RLOG_ESTALE (nothing changed) when index is not
 * above the current snapshot's. A crash anywhere leaves either the old or
 * the new state (docs/raft_storage.md).
 */
RLOG_API int rlog_rs_snapshot_put(rlog_rs *rs, const rlog_rs_snapshot_desc *d);

/*
 * Gives back the space of entries the current snapshot covers (the ones a
 * snapshot with `trailing` kept, e.g. once no follower needs them): deletes
 * the oldest log segments that hold only records before the batch of entry
 * `index` (before the snapshot marker when the store holds no entry from
 * `index` on). Whole segments only, oldest first, each durably, never the
 * active one (rlog_delete_prefix): entries below `index` that share a
 * segment with later records stay, so afterwards the first index is at
 * most `index` — the same first index a reopen finds. Only covered entries
 * may go: RLOG_EINVAL, nothing changed, when index is 0, there is no
 * snapshot or index > snapshot index + 1 (entries above the snapshot are
 * Raft's to truncate, never to drop). *deleted (may be NULL) gets the
 * number of segments deleted. RLOG_ENOTSUP read-only; a failed deletion
 * returns the log's error (the segments already deleted stay deleted). The
 * snapshot put deletes up to the first entry it keeps by itself.
 */
RLOG_API int rlog_rs_purge_before(rlog_rs *rs, uint64_t index, uint64_t *deleted);

/* A snapshot read back. Every pointer is owned by the struct; free with
 * rlog_rs_snapshot_release. */
typedef struct rlog_rs_snapshot {
    uint64_t index, term, conf_index;
    void *conf;
    uint32_t conf_len;
    void *data;    /* the whole file */
    uint64_t size; /* bytes of data */
    uint32_t crc;  /* CRC32C of data */
    uint32_t trailing;
    char file[64]; /* file name inside the store's directory */
} rlog_rs_snapshot;

/* Reads the current snapshot and verifies it against its marker:
 * RLOG_ENOTFOUND when there is none; RLOG_ECORRUPT when the file is missing,
 * has another size or fails its checksum (the message names the file). */
RLOG_API int rlog_rs_snapshot_get(rlog_rs *rs, rlog_rs_snapshot *out);
RLOG_API void rlog_rs_snapshot_release(rlog_rs_snapshot *s);

/*
 * The same put and get in steps, for a caller that does the file I/O on
 * another thread (librlog-raft: the loop's work pool). Only the steps
 * marked "any thread" may run away from the handle's thread; they touch
 * the job and the vfs, never the handle, so the handle may be used (and
 * even closed) meanwhile.
 *
 * put:  rlog_rs_snapshot_prepare (handle's thread: checks the descriptor
 *       as rlog_rs_snapshot_put does and copies it; the data buffers stay
 *       borrowed until rlog_rs_snapshot_write returns), then
 *       rlog_rs_snapshot_write (any thread: the file, temp → fsync →
 *       rename → directory fsync), then rlog_rs_snapshot_commit with the
 *       write's status (handle's thread: checks again, marker, compaction,
 *       cleanup; frees the job). A job not committed is given to
 *       rlog_rs_snapshot_job_free, which removes the file it wrote.
 * get:  rlog_rs_snapshot_open (handle's thread: RLOG_ENOTFOUND when there
 *       is no snapshot; opens the current file, so a newer snapshot's
 *       cleanup cannot take it away), rlog_rs_snapshot_load (any thread:
 *       reads and verifies it as rlog_rs_snapshot_get does), then
 *       rlog_rs_snapshot_job_free.
 * A step's error message is rlog_rs_snapshot_job_errmsg (the "any
 * thread" steps) or rlog_rs_errmsg (the others).
 */
typedef struct rlog_rs_snap_job rlog_rs_snap_job;
RLOG_API int rlog_rs_snapshot_prepare(rlog_rs *rs, const rlog_rs_snapshot_desc *d,
                                      rlog_rs_snap_job **out);
RLOG_API int rlog_rs_snapshot_write(rlog_rs_snap_job *j);
RLOG_API int rlog_rs_snapshot_commit(rlog_rs *rs, rlog_rs_snap_job *j, int write_status);
RLOG_API int rlog_rs_snapshot_open(rlog_rs *rs, rlog_rs_snap_job **out);
RLOG_API int rlog_rs_snapshot_load(rlog_rs_snap_job *j, rlog_rs_snapshot *out);
RLOG_API const char *rlog_rs_snapshot_job_errmsg(const rlog_rs_snap_job *j);
RLOG_API void rlog_rs_snapshot_job_free(rlog_rs_snap_job *j);

/* ---- Observing ---- */

typedef struct rlog_rs_stats {
    rlog_rs_hard_state hs;
    uint64_t first_index, last_index;
    int has_snapshot;
    uint64_t snap_index, snap_term, snap_conf_index, snap_size;
    uint32_t snap_conf_len, snap_crc, snap_trailing;
    char snap_file[64];
    uint64_t batches;     /* batch records indexed */
    uint64_t term_runs;   /* runs of equal terms */
    uint64_t index_bytes; /* heap bytes of the in-memory index (allocated) */
} rlog_rs_stats;
RLOG_API void rlog_rs_stats_get(rlog_rs *rs, rlog_rs_stats *st);

/* Bytes allocated by the in-memory index (terms and batch positions). */
RLOG_API uint64_t rlog_rs_index_bytes(rlog_rs *rs);

/*
 * Formats one Raft record as a single human-readable line (for `rlog dump`),
 * e.g. "entries 120..183 (64) terms 3..4 bytes 6656". Always NUL-terminates
 * buf (truncating). Returns 0; RLOG_ENOTFOUND when `type` is not a Raft
 * record type (buf gets a short note); RLOG_ECORRUPT when the payload does
 * not decode (buf says why).
 */
RLOG_API int rlog_rs_format_record(uint16_t type, const void *payload, size_t len, char *buf,
                                   size_t cap);

/* Summarises the Raft state (hard state, index range, term runs, snapshot,
 * index memory) as a few lines for `rlog stat`. NUL-terminates buf. */
RLOG_API void rlog_rs_summary(rlog_rs *rs, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* RLOG_RAFT_STORAGE_H */
