/*
 * The replica's internals, shared by its files (each calls only those
 * listed after it, never one before it):
 *   replica.c          open, close, adopt, positions (the overview comment)
 *   replica_cut.c      truncate, reset, prefix deletion
 *   replica_files.c    side files
 *   replica_segment.c  a whole sealed segment through a temporary file
 *   replica_append.c   bytes written in place; the run marker
 *   replica_spare.c    the zero spare files after the newest segment
 *   replica_verify.c   the verification cursor (rlg_rv)
 *   replica_common.c   errors, poisoning, paths, temporary files, where
 *                      bytes may go
 * Nothing outside log/ includes this.
 *
 * A replica is a log handle (rlog_log) that is never appended to: it lends
 * the replica its directory, vfs, lock, log id, segment index (segs: what
 * is on disk and durable), the active segment's file (wfile, open while
 * the newest segment is unsealed), the error message and the unsynced
 * marker. Bytes come from the leader instead of the encoder.
 */
#ifndef RLG_REPLICA_INTERNAL_H
#define RLG_REPLICA_INTERNAL_H

#include "os/install.h"
#include "log/log_internal.h"
#include "log/replica.h"
#include "log/handle.h"
#include "log/open.h"
#include "log/spare.h"
#include "log/unsynced.h"

/* A verification cursor over one segment's bytes, fed in any pieces. */
typedef struct rlg_rv {
    uint64_t seq;
    uint32_t salt;
    uint64_t off; /* file offset of the next byte */
    uint64_t e;   /* next user LSN expected */
    bool sealed;  /* a seal was accepted: nothing may follow */
    /* the record in progress */
    uint8_t hdr[RLG_REC_HEADER_SIZE];
    size_t hlen; /* header bytes held (0: between records) */
    rlg_rec_header h;
    uint64_t rec_off; /* where it starts */
    uint64_t left;    /* payload bytes still to come */
    uint32_t crc;     /* running CRC state */
} rlg_rv;

/* Called for each complete, verified record (c->h, c->rec_off; c->e is
 * already past it). Nonzero stops the feed with that error. */
typedef int (*rlg_rv_fn)(void *arg, const rlg_rv *c);

/* The segment being received whole (segment_begin .. commit). */
typedef struct rlg_rx {
    bool on;
    rlog_file *f; /* the temporary file */
    rlg_rv rv;
    rlg_segment seg; /* its index, built as records arrive */
    uint64_t last_off, last_lsn;
    uint32_t last_crc;
} rlg_rx;

/* The side file being received. */
typedef struct rlg_sfx {
    bool on;
    rlog_file *f;
    char name[256];
    uint64_t size;
    uint64_t (*iv)[2]; /* disjoint, sorted byte ranges written */
    size_t niv, capiv;
} rlg_sfx;

struct rlg_replica {
    rlog_log *l;
    uint64_t file_size; /* the size new segment files get */
    /* empty replica (no segment): where its first segment starts */
    bool adopted;
    uint64_t base_seq, base_lsn;
    /* the newest segment's last record (last_off 0: it holds none) */
    uint64_t last_off, last_lsn;
    uint32_t last_crc;
    /* the files after the newest segment up to spare_hi exist durably and
     * hold zeros (spare_hi <= newest seq: none known) */
    uint64_t spare_hi;
    /* a spare whose fdatasync failed (0: none): what the kernel holds of it
     * may never reach the disk, and a later fdatasync that succeeds does
     * not say otherwise; the next rlg_rp_spare_ensure of it installs a new
     * file in its place */
    uint64_t spare_suspect;
    /* segment zero_seq, written in place: zeros were written up to zero_to
     * ahead of its records (zero_ahead; zero_seq 0: none known) */
    uint64_t zero_seq, zero_to;
    int poisoned; /* 0, or RLOG_EPOISONED */
    /* the run marker (docs/format.md, "The run marker"): its file, open
     * once this handle wrote it (run_entry: its directory entry was synced
     * since); run_ok: `run` is what the file durably holds */
    rlog_file *runf;
    bool run_entry, run_ok;
    rlg_run_mark run;
    rlg_rx rx;
    rlg_sfx sf;
};

/* Sets the message (printf-style); returns err. */
int rlg_rp_fail(rlg_replica *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A failed sync (or zeroing): the handle is poisoned, the unsynced marker
 * left. Returns RLOG_EPOISONED. */
int rlg_rp_poison(rlg_replica *r, int e, const char *what, const char *path);
/* Refuses calls on a poisoned handle. */
int rlg_rp_check(rlg_replica *r);
/* "dir/name" of segment seq; "dir/name" of a plain file name. */
void rlg_rp_seg_path(const rlg_replica *r, uint64_t seq, char *buf, size_t cap);
void rlg_rp_path(const rlg_replica *r, const char *name, char *buf, size_t cap);
/* Reads the header of the record at off of segment file f: its crc, lsn
 * and end. */
int rlg_rp_rec_at(rlg_replica *r, rlog_file *f, uint64_t off, uint32_t *crc, uint64_t *lsn,
                  uint64_t *end);
/* Recomputes last_off/last_crc/last_lsn from the newest segment's file. */
int rlg_rp_load_last(rlg_replica *r);
/* Creates an empty temporary file (a leftover is replaced). */
int rlg_rp_temp_create(rlg_replica *r, const char *name, rlog_file **out);
/* Closes the active segment's file, if open. */
void rlg_rp_close_active(rlg_replica *r);
/* Unlinks dir/name and syncs the directory (ENOENT is fine). */
int rlg_rp_unlink_synced(rlg_replica *r, const char *path);
/* Reports a failed os/install.h call rv (RLG_OS_FAILED or _FATAL) on the
 * replica: FATAL poisons it, FAILED is a plain error. Returns the code. */
int rlg_rp_install_fail(rlg_replica *r, int rv, const rlg_os_fail *fail, const char *doing,
                        const char *path);
/* Unlinks every segment file of the directory (with temps, also the
 * names of rlg_is_temp_name: temporary files, the run marker; ENOENT is
 * fine), then, with sync, fsyncs the directory. `what` prefixes the error
 * message. */
int rlg_rp_remove_seg_files(rlg_replica *r, bool temps, bool sync, const char *what);
/* Closes and unlinks the run marker (truncate, reset: the positions it
 * names are about to change). No directory sync: one that reappears after a
 * crash names durable bytes only (conservative: witnesses in its range do
 * not count). */
void rlg_rp_run_drop(rlg_replica *r);
/* The name of segment seq (its 16 hex digits), in buf. */
const char *rlg_rp_seg_name(uint64_t seq, char buf[32]);
/* The newest segment; NULL when the replica holds none. */
rlg_segment *rlg_rp_newest(const rlg_replica *r);
/* Whether bytes for (seq, first_lsn) at off continue the replica: the
 * newest segment at its end, or the next segment at offset 64. */
int rlg_rp_continues(rlg_replica *r, uint64_t seq, uint64_t first_lsn, uint64_t off, bool *fresh);
/* Before the first segment of an empty replica: any segment file present
 * is a leftover (a zero spare of a reset that failed part-way, of a failed
 * first install, of a log the replica held before) and goes, so that it
 * cannot sit in a gap before the new segment (a gap in the run of segment
 * files is corruption, step 2 of recovery). None of them holds a valid
 * header, so the directory reads as "no log" meanwhile. The unlinks are made
 * durable by the directory fsync that precedes the rename bringing in the
 * first segment (first_segment; install, after rlg_rp_spare_ensure). */
int rlg_rp_clear_leftovers(rlg_replica *r);

/* ---- replica_verify.c: the verification cursor ---- */

void rlg_rv_init(rlg_rv *c, uint64_t log_id, uint64_t seq, uint64_t off, uint64_t e);
int rlg_rv_fail(rlg_replica *r, const rlg_rv *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Feeds len bytes (any split of the segment's records) into c. */
int rlg_rv_feed(rlg_replica *r, rlg_rv *c, const uint8_t *p, size_t len, rlg_rv_fn fn, void *arg);

/* ---- replica_spare.c: spare segment files ---- */

/* Makes sure the file of segment seq (at most spare_hi + 1) exists durably
 * and reads as file_size bytes of zeros, its size set without a sync (a
 * spare shorter than it should be, even empty, is still a valid spare).
 * `taken`: the segment is about to be written in place — the file is
 * opened even when it is known and synced, so that its size is durable
 * before its header is (recovery takes a segment file with a valid header
 * to have its full size); it is not pre-written: zeros go ahead of the
 * records as they come (replica_append.c, zero_ahead). A file already
 * there is one of ours (the log's writing rules leave zeros after the
 * newest segment). */
int rlg_rp_spare_ensure(rlg_replica *r, uint64_t seq, bool taken);
/* Creates the empty file of segment seq if it is missing, without a sync
 * (the caller's next directory fsync makes it durable). 0 or an errno. */
int rlg_rp_spare_ahead(rlg_replica *r, uint64_t seq);

#endif /* RLG_REPLICA_INTERNAL_H */
