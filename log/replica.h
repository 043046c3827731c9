/*
 * Segment shipping, the log's side (internal; transport/ship_*.c is the only
 * user). Two halves:
 *
 *  - Source (leader): a view of what may be shipped — every segment's durable
 *    extent, in bytes — and raw reads of segment files. Only durable bytes
 *    are ever in the view, so a follower never holds a record the leader
 *    could still lose.
 *
 *  - Replica (follower): a directory that receives the leader's bytes and
 *    stays, at every instant, a valid rlog directory that recovers to a
 *    prefix of the leader's log, with every sealed segment byte-identical to
 *    the leader's (header, records, seal, zero fill, file size). It obeys the
 *    writing rules of docs/format.md ("Writing rules") on its own disk:
 *      * a sealed segment the replica lacks entirely is received into a
 *        temporary file, synced, and renamed into place (one fdatasync and,
 *        while catching up, one directory fsync per segment, whatever the
 *        leader's sync pattern was: the successor's empty spare file is
 *        created one segment ahead, made durable by the previous rename's
 *        directory fsync);
 *      * bytes appended to the replica's active segment keep every
 *        record's durability witness (which describes the leader's disk)
 *        from proving an unsynced record on the replica's disk: a call
 *        whose records form one run (none has a `durable` field, or a
 *        checkpoint's lsn, reaching the run's first LSN) is written and
 *        synced; a call of many runs is a batch — the run marker
 *        (rlog.replica-run, made durable first when the one on disk does
 *        not cover it yet) tells recovery that witnesses from the batch's
 *        start on prove nothing there, then all the bytes are written and
 *        synced once;
 *      * a new active segment is prepared (created, zero-filled, synced,
 *        directory synced) before its header is written, and only after the
 *        predecessor's seal is durable; the successor's file exists before
 *        a seal is written; the first segment of an empty replica is built
 *        under the temporary name and renamed in with a durable header.
 *    docs/format.md, "Replicas (segment shipping)", has the whole story.
 *    Every byte is verified before it is written: record CRC under (log id,
 *    segment seq), LSN continuity, header fields, the seal/checkpoint rules.
 *
 * Threads: a replica handle is used by one thread at a time.
 */
#ifndef RLG_REPLICA_H
#define RLG_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlog/log.h"

/* ---- source (leader) ---- */

typedef struct rlg_ship_seg {
    uint64_t seq;
    uint64_t first_lsn; /* from the header */
    uint64_t last_lsn;  /* last durable LSN in it (first_lsn - 1 if none) */
    uint64_t end;       /* offset just past the last durable byte (records of
                           any type, the seal included): [0, end) never changes */
    uint64_t file_size; /* size of the file (the segment size) */
    bool sealed;        /* the seal is durable: end is final */
} rlg_ship_seg;

/* The durable view of l's segments, oldest first: *segs (free with free())
 * holds *n entries. Segments whose header is not durable yet are left out.
 * `end` advances when an fdatasync covering the bytes returns 0 (a round's
 * sync, a rotation's seal, the close's checkpoint; a writable open makes
 * all it recovered durable). A read-only handle cannot know what a dead
 * writer left only in the page cache: it shows every segment but the last,
 * and in the last the records that later records' witnesses prove (not its
 * own seal, nor a trailing checkpoint) — serve from a writable handle.
 * log_id may be NULL. Takes the log's lock briefly; any thread. */
int rlg_ship_view(rlog_log *l, rlg_ship_seg **segs, size_t *n, uint64_t *log_id);

/* The log's directory and vfs (for the side files shipping copies). */
const char *rlg_log_dir(const rlog_log *l);
rlog_vfs *rlg_log_vfs(const rlog_log *l);

/* Raw reads of one segment file with a handle of its own (any thread; the
 * log must outlive it). */
typedef struct rlg_seg_reader rlg_seg_reader;
/* RLOG_ENOTFOUND when the segment was deleted. */
int rlg_seg_reader_open(rlog_log *l, uint64_t seq, rlg_seg_reader **out);
/* Reads exactly len bytes at off (RLOG_EIO on a short read). */
int rlg_seg_reader_read(rlg_seg_reader *r, uint64_t off, void *buf, size_t len);
void rlg_seg_reader_close(rlg_seg_reader *r);

/* ---- replica (follower) ---- */

typedef struct rlg_replica rlg_replica;

/* Where the replica stands. Everything it reports is durable. */
typedef struct rlg_replica_pos {
    uint64_t log_id;    /* 0: empty (no segment yet) */
    uint64_t file_size; /* segment file size (0 when empty) */
    uint64_t first_lsn; /* first LSN held (with last_lsn = first_lsn - 1 when none) */
    uint64_t last_lsn;  /* last LSN held durably */
    uint64_t seq;       /* newest segment (0 when empty) */
    uint64_t seg_first_lsn;
    uint64_t end;          /* offset just past its last record (any type) */
    bool sealed;           /* it ends with a seal: the next bytes start seq + 1 */
    uint64_t last_rec_off; /* offset of its last record (any type); 0: none */
    uint32_t last_rec_crc; /* that record's crc field */
    uint64_t last_rec_lsn; /* that record's lsn field */
} rlg_replica_pos;

/* Opens (creating the directory when missing) a replica directory: an
 * empty directory, or one holding an rlog log (recovered as rlog_open
 * would, torn tail cut) and side files. Takes the directory lock
 * (RLOG_EBUSY when a writer or another replica holds it). err receives a
 * message naming what and where. */
int rlg_replica_open(const char *dir, rlog_vfs *vfs, rlog_env *env, rlg_replica **out, char *err,
                     size_t errcap);
void rlg_replica_pos_get(const rlg_replica *r, rlg_replica_pos *pos);
const char *rlg_replica_errmsg(const rlg_replica *r);

/* An empty replica adopts the leader's identity: segments then start at
 * `seq` with first LSN `first_lsn` (the leader's oldest retained segment).
 * Until the first segment is written, pos reads as if segment seq - 1 were
 * sealed there: pos.seq = seq - 1, pos.sealed, pos.end = 0, pos.last_lsn =
 * first_lsn - 1. Nothing is written (a crash before the first segment
 * leaves the replica empty again). RLOG_EFOREIGN if the replica already
 * holds another log's segments; RLOG_EINVAL if it holds this log's (truncate
 * or reset first) or for a zero id/seq/LSN or a file size outside
 * 92 .. 4 GiB - 1. */
int rlg_replica_adopt(rlg_replica *r, uint64_t log_id, uint64_t file_size, uint64_t seq,
                      uint64_t first_lsn);

/* The size of the segment files the replica starts from now on (adopt sets
 * it; an open replica takes its newest segment's). Segments of a leader
 * that changed its segment size differ in size (rlg_ship_seg.file_size):
 * call this before a segment whose file_size differs from pos.file_size so
 * that its copy is byte-identical, size included. RLOG_EINVAL out of range. */
int rlg_replica_set_file_size(rlg_replica *r, uint64_t file_size);

/* Zeros a replica writes ahead of the records of a segment it writes in
 * place, at most this many bytes per call (the file is not pre-written
 * whole when the segment starts: docs/format.md, "Spares"). */
#define RLG_REPLICA_ZERO_AHEAD (256u << 10)

/* Bytes [off, off + len) of segment `seq` (whose header says first LSN
 * seg_first_lsn): whole records (any type; len may be 0). When off == 64 (a
 * segment the replica does not have yet) the replica makes sure its file
 * exists with its size durable and writes the header itself (it is
 * determined by log id, seq and first LSN); zeros go ahead of the records,
 * RLG_REPLICA_ZERO_AHEAD at a time. Must continue exactly where the replica
 * stands: same seq at off == pos.end, or seq == pos.seq + 1 at off == 64
 * after a sealed segment. Verified, written and synced (one run: one
 * fdatasync; a batch of many runs: the run marker's fdatasync when it does
 * not cover the batch yet, then one fdatasync) before the call returns: on
 * return pos.end has moved to off + len. RLOG_EPROTO (message says why) for
 * bytes that do not verify or do not continue the replica (a record cut
 * short at the end included); nothing is written then. RLOG_EINVAL on an
 * empty (not adopted) replica or during a segment receive.
 * RLOG_EIO/RLOG_ENOSPC from the disk: the failed write is rolled back as
 * the log does (nothing of the call stays; pos says where the replica
 * stands). RLOG_EPOISONED after a failed fdatasync (and for every later
 * call: close and reopen, which recovers). */
int rlg_replica_append(rlg_replica *r, uint64_t seq, uint64_t seg_first_lsn, uint64_t off,
                       const void *bytes, size_t len);

/* A whole sealed segment the replica does not hold yet (seq == pos.seq + 1
 * after a sealed pos.seq, or the first segment of an empty adopted
 * replica): begin, then feed its bytes in order from offset 64 (split
 * anywhere: a record may straddle two writes), then commit once the seal
 * has been fed. The file is written under a temporary name (sized to
 * pos.file_size, header written by begin) and renamed into place by commit
 * (after fdatasync, and after the successor's empty spare file exists;
 * then a directory fsync). Each write is verified before it is written; a
 * write that fails (RLOG_EPROTO for bytes that do not verify or do not
 * continue at the next offset) aborts the receive, and so does a failed
 * commit (RLOG_EPROTO when no seal was fed). abort (or a crash) leaves the
 * replica as it was. */
int rlg_replica_segment_begin(rlg_replica *r, uint64_t seq, uint64_t seg_first_lsn);
int rlg_replica_segment_write(rlg_replica *r, uint64_t off, const void *bytes, size_t len);
int rlg_replica_segment_commit(rlg_replica *r);
void rlg_replica_segment_abort(rlg_replica *r);

/* Drops every record with LSN >= lsn (divergence), and the log records
 * (checkpoints, seal) after record lsn - 1, so that the replica ends just
 * past record lsn - 1 (then pos.last_rec_* describe it), wherever the
 * leader's next bytes differ from its own: later segments are dropped (newest
 * first: each is replaced by an empty spare file, directory synced, then
 * the surplus spares are unlinked) and the segment that keeps records is
 * rewritten up to just past record lsn - 1 (through a temporary file, one
 * fdatasync, renamed into place), so the replica recovers to LSNs < lsn at
 * every step. That segment becomes active again (unsealed). lsn >
 * pos.last_lsn + 1: nothing to do. lsn <= first_lsn: as rlg_replica_reset. */
int rlg_replica_truncate(rlg_replica *r, uint64_t lsn);

/* The leader deleted its segments before `seq` (prefix deletion): deletes,
 * oldest first and each followed by a directory fsync, the replica's
 * segments with a sequence number below `seq`, never the newest one (every
 * other one is sealed and followed by a segment with a durable header), so
 * that a copy does not grow without bound. A crash leaves a contiguous run
 * of segments, a valid log. *deleted (may be NULL) receives the count. A
 * failure leaves the segments not yet deleted (a failed directory fsync
 * poisons the replica). */
int rlg_replica_delete_prefix(rlg_replica *r, uint64_t seq, uint64_t *deleted);

/* Deletes every segment (the replica is behind the leader's retained
 * prefix), oldest first, each followed by a directory fsync (a crash leaves
 * a suffix of the segments, a valid log), then the spare files and the run
 * marker: afterwards it is empty (log id 0) and must adopt again. Side
 * files stay. (Whatever segment files a failed reset leaves, the first
 * segment of an adopted replica removes them first.) */
int rlg_replica_reset(rlg_replica *r);

/* Side files (snapshot files), streamed: begin creates a temporary file,
 * write puts bytes at any offset < size (RLOG_EPROTO past it), commit
 * checks that `size` bytes were written and their CRC32C equals `crc`,
 * fdatasyncs, renames to `name` (a plain file name under 256 bytes, no '/',
 * not "." or "..", not a segment or rlog.* name: RLOG_EPROTO otherwise) and
 * syncs the directory. A failed check (RLOG_EPROTO) aborts. One side file
 * at a time (RLOG_EINVAL); abort (or a crash) leaves nothing. */
int rlg_replica_file_begin(rlg_replica *r, const char *name, uint64_t size);
int rlg_replica_file_write(rlg_replica *r, uint64_t off, const void *bytes, size_t len);
int rlg_replica_file_commit(rlg_replica *r, uint32_t crc);
void rlg_replica_file_abort(rlg_replica *r);
/* Test only (tests/sim_ship_raft_test.c proves its oracle has teeth): when
 * set, a committed side file is renamed into place WITHOUT its fdatasync,
 * as a follower that acknowledged a snapshot it never made durable would.
 * Internal (hidden), never set by the library. */
extern bool rlg_sabotage_side_nosync;
/* Removes a side file durably (ENOENT is not an error). */
int rlg_replica_remove_file(rlg_replica *r, const char *name);
/* Names of the side files present (not segments, not rlog.* files); free
 * with rlog_vfs_free_names(*names, *count). */
int rlg_replica_list_files(rlg_replica *r, char ***names, size_t *count);

/* Releases the lock and frees the handle. */
void rlg_replica_close(rlg_replica *r);

#endif /* RLG_REPLICA_H */
