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
 *        temporary file, synced, and renamed into place (one fdatasync and
 *        one directory fsync per segment, whatever the leader's sync
 *        pattern was);
 *      * bytes appended to the replica's active segment are written and
 *        synced in runs that keep every record's durability witness true on
 *        the replica's disk: a run never holds a record whose `durable`
 *        field (a checkpoint's lsn) reaches the run's first LSN;
 *      * a new active segment is prepared (created, zero-filled, synced,
 *        directory synced) before its header is written, and only after the
 *        predecessor's seal is durable.
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
 * Takes the log's lock briefly; any thread. */
int rlg_ship_view(rlog_log *l, rlg_ship_seg **segs, size_t *n, uint64_t *log_id);

/* The log's directory and vfs (for the side files shipping copies). */
const char *rlg_log_dir(const rlog_log *l);
rlog_vfs *rlg_log_vfs(const rlog_log *l);

/* Raw reads of one segment file with a handle of its own. */
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
    uint64_t end;           /* offset just past its last record (any type) */
    bool sealed;            /* it ends with a seal: the next bytes start seq + 1 */
    uint64_t last_rec_off;  /* offset of its last record (any type); 0: none */
    uint32_t last_rec_crc;  /* that record's crc field */
    uint64_t last_rec_lsn;  /* that record's lsn field */
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
 * RLOG_EFOREIGN if the replica already holds another log's segments. */
int rlg_replica_adopt(rlg_replica *r, uint64_t log_id, uint64_t file_size, uint64_t seq,
                      uint64_t first_lsn);

/* Bytes [off, off + len) of segment `seq` (whose header says first LSN
 * seg_first_lsn): whole records (any type). When off == 64 (a segment the
 * replica does not have yet) the replica prepares the file and writes the
 * header itself (it is determined by log id, seq and first LSN). Must continue exactly where the replica stands:
 * same seq at off == pos.end, or seq == pos.seq + 1 at off == 64 after a
 * sealed segment. Verified, written and synced (in witness-respecting runs)
 * before the call returns: on return pos.end has moved to off + len.
 * RLOG_EPROTO (message says why) for bytes that do not verify or do not
 * continue the replica; nothing is written then. RLOG_EIO/RLOG_ENOSPC from
 * the disk (what was written is rolled back as the log does). */
int rlg_replica_append(rlg_replica *r, uint64_t seq, uint64_t seg_first_lsn, uint64_t off,
                       const void *bytes, size_t len);

/* A whole sealed segment the replica does not hold yet (seq == pos.seq + 1
 * after a sealed pos.seq, or the first segment of an empty adopted
 * replica): begin, then feed its records in order (the first at offset 64),
 * then commit once the seal has been fed. The file is written under a
 * temporary name and renamed into place by commit (after fdatasync; then a
 * directory fsync). abort (or a crash) leaves the replica as it was. */
int rlg_replica_segment_begin(rlg_replica *r, uint64_t seq, uint64_t seg_first_lsn);
int rlg_replica_segment_write(rlg_replica *r, uint64_t off, const void *bytes, size_t len);
int rlg_replica_segment_commit(rlg_replica *r);
void rlg_replica_segment_abort(rlg_replica *r);

/* Drops every record with LSN >= lsn (divergence): later segments are
 * deleted (newest first, directory synced) and the cut inside the segment
 * that keeps records is zeroed and synced, so the replica recovers to LSNs
 * < lsn. The segment that then holds the last record becomes active again
 * (its seal, if any, is zeroed too). lsn <= first_lsn leaves the replica
 * without segments: it is empty and adopts again. */
int rlg_replica_truncate(rlg_replica *r, uint64_t lsn);

/* Deletes every segment (the replica is behind the leader's retained
 * prefix): afterwards it is empty and must adopt again. Side files stay. */
int rlg_replica_reset(rlg_replica *r);

/* Side files (snapshot files), streamed: begin creates a temporary file,
 * write puts bytes at any offset < size, commit checks that `size` bytes
 * were written and their CRC32C equals `crc`, fdatasyncs, renames to `name`
 * (a plain file name, no '/', not a segment or rlog.* name) and syncs the
 * directory. One side file at a time; abort (or a crash) leaves nothing. */
int rlg_replica_file_begin(rlg_replica *r, const char *name, uint64_t size);
int rlg_replica_file_write(rlg_replica *r, uint64_t off, const void *bytes, size_t len);
int rlg_replica_file_commit(rlg_replica *r, uint32_t crc);
void rlg_replica_file_abort(rlg_replica *r);
/* Removes a side file durably (ENOENT is not an error). */
int rlg_replica_remove_file(rlg_replica *r, const char *name);
/* Names of the side files present (not segments, not rlog.* files). */
int rlg_replica_list_files(rlg_replica *r, char ***names, size_t *count);

/* Releases the lock and frees the handle. */
void rlg_replica_close(rlg_replica *r);

#endif /* RLG_REPLICA_H */
