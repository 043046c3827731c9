/*
 * Segment shipping, what the leader (ship_leader.c), the follower
 * (ship_follower.c) and the status query (ship_status.c) share: positions,
 * defaults, logging, side-file names. docs/shipping.md is the protocol.
 */
#ifndef RLG_SHIP_INTERNAL_H
#define RLG_SHIP_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/format.h"
#include "rlog/ship.h"
#include "rlog/wire.h"

/* Defaults (docs/shipping.md, "Flow control"). */
#define RLG_SHIP_WINDOW_BYTES (8u << 20)
#define RLG_SHIP_WINDOW_MSGS  32u
#define RLG_SHIP_CHUNK_BYTES  (1u << 20)
#define RLG_SHIP_RESEND_MS    1000u
#define RLG_SHIP_HEARTBEAT_MS 250u
#define RLG_SHIP_SESSION_MS   3000u
#define RLG_SHIP_SIDE_SUFFIX  ".snap"
/* Bytes a data or file message takes beyond its payload (an upper bound:
 * the array, type, version, 7 uint64 and a bin32 header are 71). */
#define RLG_SHIP_MSG_OVERHEAD 128u
/* Disconnected followers kept in the leader's table for status. */
#define RLG_SHIP_GONE_KEEP 16u

/* A position in the log: byte `off` of segment `seq`. The position after
 * a sealed segment is (seq + 1, 64): both sides normalise to that form,
 * so positions compare as (seq, off) pairs. */
typedef struct rlg_ship_pos {
    uint64_t seq;
    uint64_t off;
} rlg_ship_pos;

static inline int rlg_ship_pos_cmp(rlg_ship_pos a, rlg_ship_pos b)
{
    if (a.seq != b.seq) {
        return a.seq < b.seq ? -1 : 1;
    }
    return a.off < b.off ? -1 : a.off > b.off;
}

/* Sends a message to the logger, printf-style (nothing when fn is NULL). */
void rlg_ship_logf(rlog_logger_fn fn, void *data, rlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* True when `name` is a plain side-file name ending with `suffix` (and
 * longer than it): 1..RLOG_WIRE_NAME_MAX bytes, no '/', not "." or "..". */
bool rlg_ship_side_name(const char *name, const char *suffix);

/* CRC32C of the whole file at path, read through vfs; *size receives its
 * size. RLOG_ENOTFOUND when it is gone, else an RLOG_E* from the vfs. */
int rlg_ship_file_crc(rlog_vfs *vfs, const char *path, uint64_t *size, uint32_t *crc);

#endif /* RLG_SHIP_INTERNAL_H */
