/*
 * Internal helpers of the wire codec (transport/codec.c); the public API is
 * include/rlog/wire.h.
 */
#ifndef RLG_TRANSPORT_CODEC_H
#define RLG_TRANSPORT_CODEC_H

#include <stdbool.h>

#include "rlog/wire.h"

/* True when a and b carry the same message: same type and field values,
 * byte fields compared by content (not by pointer), the address by string.
 * Used by the round-trip tests and the fuzz target. */
bool rlg_msg_equal(const rlog_msg *a, const rlog_msg *b);

#endif
