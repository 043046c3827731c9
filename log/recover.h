/*
 * Recovery: reads a log directory through the vfs and decides what the log
 * holds — which segments, which records, where the tail ends — or that it is
 * corrupt. It never writes: the decision is returned and the caller (the
 * writer, when opening for writing) applies the cut. See docs/format.md,
 * "Recovery".
 */
#ifndef RLG_RECOVER_H
#define RLG_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "log/format.h"
#include "rlog/log.h"
#include "rlog/vfs.h"

/* One segment of the log as recovered (and then as maintained by the
 * writer). LSN-bearing records only are indexed: the log's own records
 * (seal, checkpoint) take no LSN. */
typedef struct rlg_segment {
    uint64_t seq;
    uint64_t first_lsn; /* from the header */
    uint64_t last_lsn;  /* first_lsn - 1 when the segment holds no record */
    uint64_t end;       /* offset just past the last valid record (any type) */
    uint32_t *offs;     /* offs[i]: file offset of record first_lsn + i */
    size_t noffs, capoffs;
    bool sealed; /* ends with a valid seal record */
    /* Size of the file (recovery: as found; the writer: the spare's size,
     * grown by any write past it). */
    uint64_t size;
    /* Not set by recovery; kept by the writer for segment shipping
     * (log/replica.h): [0, dend) is durable (0: not even the header is), and
     * dsealed says the seal is. */
    uint64_t dend;
    bool dsealed;
} rlg_segment;

typedef struct rlg_recovery {
    uint64_t log_id;
    rlg_segment *segs; /* in sequence order; segs[nsegs-1] is the last (active or sealed) */
    size_t nsegs;
    /* Spare files after the last segment (headers zero or unproven torn
     * starts, no valid record): sequence numbers, ascending. The writer may
     * reuse them (after zeroing what needs it: see cut below). */
    uint64_t *spares;
    size_t nspares;
    uint64_t proven_durable;
    /* Highest LSN proven durable by evidence that implies a successful sync:
     * record witnesses, checkpoints, and the seals of segments before the
     * last. The last segment's own seal is NOT counted: after a failed sync
     * the page cache may show bytes (even a seal) that never reached the
     * disk, so the writer rewrites and syncs everything after this. */
    uint64_t witnessed;
    /* The cut to apply when opening for writing: zero bytes [cut_off,
     * cut_end) of segment cut_seq (which may be a spare whose torn start was
     * dropped) and sync. cut = false when nothing needs zeroing. */
    bool cut;
    uint64_t cut_seq, cut_off, cut_end;
    /* Repair only (0 otherwise): the segment files with seq >=
     * delete_from_seq are dropped from the log; the writer deletes them,
     * highest seq first (so that the remaining run stays contiguous), before
     * applying the cut. None of them is in segs or spares. */
    uint64_t delete_from_seq;
    /* A replica's run marker was honoured (docs/format.md, "The run
     * marker"): witnesses in its range did not count. A writable open
     * removes the marker once everything it keeps is durable. */
    bool run_marker;
    bool run_file; /* the directory holds a run marker file (valid or not) */
} rlg_recovery;

/*
 * Recovers the log in dir. Returns 0 and fills *out (free with
 * rlg_recovery_free), or an error with report->message naming segment,
 * offset and LSN:
 *   RLOG_ENOTLOG (no segment files; a directory that does not exist),
 *   RLOG_ECORRUPT, RLOG_EFOREIGN, RLOG_EVERSION, RLOG_EIO, RLOG_ENOMEM.
 * mode RLG_RECOVER_REPAIR: cut at the first damage instead of failing with
 * RLOG_ECORRUPT (report->status stays RLOG_TAIL_CORRUPT and says what was
 * lost); with RLG_RECOVER_READONLY too, the message says what a repair
 * would do (nothing is changed by anyone).
 * The report (never NULL) is filled in all cases.
 */
#define RLG_RECOVER_REPAIR   0x1u
#define RLG_RECOVER_READONLY 0x2u
int rlg_recover(rlog_vfs *vfs, const char *dir, unsigned mode, rlg_recovery *out,
                rlog_open_report *report);
void rlg_recovery_free(rlg_recovery *r);

/* Appends an offset to a segment's index; RLOG_ENOMEM on failure. */
int rlg_segment_push(rlg_segment *s, uint32_t off);
/* Reads and decodes (no validation) the record header at off of f. 0 or
 * an errno (EIO for a short read). */
int rlg_read_rec_header(rlog_vfs *vfs, rlog_file *f, uint64_t off, rlg_rec_header *h);
/* Makes room for `more` offsets (pushes that then cannot fail). */
int rlg_segment_reserve(rlg_segment *s, size_t more);
void rlg_segment_free(rlg_segment *s);

#endif /* RLG_RECOVER_H */
