/*
 * The payload pattern of `rlog write` and `rlog verify --seed`: the bytes
 * of a record are a function of (seed, LSN) alone, so any record can be
 * checked knowing only where it sits in the log. docs/cli.md carries the
 * same definition for other programs.
 *
 *   mix(z)  = splitmix64's finalizer:
 *             z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
 *             z = (z ^ (z >> 27)) * 0x94d049bb133111eb
 *             z ^ (z >> 31)
 *   key     = mix(seed ^ mix(lsn))
 *   word[j] = mix(key + (j + 1) * 0x9e3779b97f4a7c15)        j = 0, 1, ...
 *   byte[i] = byte (i % 8) of word[i / 8], little-endian
 *
 * A payload of length n is byte[0 .. n-1]: a prefix of one endless stream
 * per (seed, LSN), so records of any size (0 included) follow the same
 * rule and a log extended with another --size still checks.
 */
#ifndef RLOG_CLI_PATTERN_H
#define RLOG_CLI_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf[0..len) with the pattern of (seed, lsn). */
void cli_pattern_fill(uint64_t seed, uint64_t lsn, void *buf, size_t len);

/* Checks buf[0..len) against the pattern of (seed, lsn). Returns the
 * offset of the first byte that differs, or len when all match. */
size_t cli_pattern_check(uint64_t seed, uint64_t lsn, const void *buf, size_t len);

#endif
