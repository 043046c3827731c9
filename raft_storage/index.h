/*
 * The compact in-memory index of the Raft log: which entries exist
 * (first..last), the term of each (runs of equal terms), and which batch
 * record (LSN) holds each entry.
 *
 * Terms: an array of runs {index, term}: entries from runs[k].index up to
 * runs[k+1].index - 1 have runs[k].term. One run per term change.
 *
 * Batches: consecutive batch records are contiguous in index (batch k+1
 * starts where batch k ends), so each batch is stored in a byte stream as
 * varints: its entry count and its LSN minus the previous batch's LSN, the
 * latter only when it is not 1 (index.c, put_batch). Every RLG_INDEX_GROUP
 * batches a checkpoint {first index, LSN, stream offset} starts a group. A
 * lookup binary searches the checkpoints and decodes at most one group.
 * Cost: ~1 byte per batch + 24 bytes per group + 16 bytes per term change.
 *
 * Dropping a prefix moves head positions forward and compacts the arrays
 * once the dead part is more than half. Batches that hold some entries
 * below `first` stay until their whole group is below it.
 */
#ifndef RLG_RS_INDEX_H
#define RLG_RS_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft_storage/codec.h"

#define RLG_INDEX_GROUP 64u

typedef struct rlg_run {
    uint64_t index, term;
} rlg_run;

typedef struct rlg_ckpt {
    uint64_t index; /* first index of the group's first batch */
    uint64_t lsn;   /* its LSN */
    uint64_t off;   /* its offset in the stream */
} rlg_ckpt;

/* A batch found in the index. */
typedef struct rlg_bpos {
    size_t ck;      /* its group */
    uint64_t off;   /* stream offset of its varints */
    size_t len;     /* bytes of its varints */
    unsigned k;     /* ordinal within the group */
    uint64_t index; /* first index */
    uint32_t count;
    uint64_t lsn;
} rlg_bpos;

typedef struct rlg_index {
    uint64_t first, last; /* entries first..last; empty: last = first - 1 */
    rlg_run *runs;
    size_t rh, rn, rcap; /* live runs [rh, rn) */
    rlg_ckpt *ck;
    size_t ch, cn, ccap; /* live groups [ch, cn) */
    uint8_t *s;
    size_t sn, scap;  /* stream bytes [ck[ch].off, sn) are live */
    rlg_bpos tail;    /* the last batch (valid when not empty) */
    uint64_t batches; /* batch records indexed (live groups) */
} rlg_index;

void rlg_index_init(rlg_index *ix, uint64_t first);
void rlg_index_free(rlg_index *ix);
/* Empties the index: first = `first`, last = first - 1. Keeps memory. */
void rlg_index_reset(rlg_index *ix, uint64_t first);
static inline bool rlg_index_empty(const rlg_index *ix)
{
    return ix->last < ix->first;
}
/* Adds batch record `lsn` holding b (b->first_index must be last + 1). On
 * RLOG_ENOMEM the index is unchanged. */
int rlg_index_add(rlg_index *ix, const rlg_batch_view *b, uint64_t lsn);
/* Removes entries from i on (first <= i <= last + 1). */
void rlg_index_truncate(rlg_index *ix, uint64_t i);
/* Removes entries below new_first (new_first > first); beyond last empties
 * the index at new_first. */
void rlg_index_drop_prefix(rlg_index *ix, uint64_t new_first);
/* Term of entry i, 0 outside first..last. */
uint64_t rlg_index_term(const rlg_index *ix, uint64_t i);
/* The batch holding entry i (first <= i <= last). */
void rlg_index_locate(const rlg_index *ix, uint64_t i, rlg_bpos *p);
/* Advances p to the next batch; false after the last. */
bool rlg_index_next(const rlg_index *ix, rlg_bpos *p);
/* Heap bytes allocated. */
uint64_t rlg_index_bytes(const rlg_index *ix);
static inline size_t rlg_index_runs(const rlg_index *ix)
{
    return ix->rn - ix->rh;
}

#endif /* RLG_RS_INDEX_H */
