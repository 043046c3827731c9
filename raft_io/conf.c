/*
 * libraft's configuration encoding, decoded here because libraft 0.15
 * exports only the encoder (raft_configuration_encode). Layout (format 1,
 * integers little-endian):
 *
 *   u8   format (1)
 *   u64  n, the number of servers
 *   n x { u64 id; address bytes; NUL; u8 role }
 *   zero padding (the encoder rounds the size up to 8 bytes)
 *
 * The bytes come from disk (snapshot markers) and from peers
 * (InstallSnapshot), so every length is checked before it is used.
 */
#include <stdio.h>
#include <string.h>

#include "os/bytes.h"
#include "raft_io/rio.h"

#define CONF_FORMAT 1u

int rlg_rio_conf_decode(const void *buf, size_t len, struct raft_configuration *c, char *err,
                        size_t errcap)
{
    const uint8_t *p = buf;
    size_t off = 0;
    if (buf == NULL || len < 9) {
        snprintf(err, errcap, "configuration: %zu bytes, shorter than its header", len);
        return RAFT_MALFORMED;
    }
    if (p[0] != CONF_FORMAT) {
        snprintf(err, errcap, "configuration: unknown format %u at offset 0", p[0]);
        return RAFT_MALFORMED;
    }
    uint64_t n = rlg_get64(p + 1);
    off = 9;
    /* Each server takes at least 10 bytes (id, NUL, role). */
    if (n > (len - off) / 10) {
        snprintf(err, errcap, "configuration: %llu servers do not fit in %zu bytes (offset 1)",
                 (unsigned long long)n, len);
        return RAFT_MALFORMED;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (len - off < 10) {
            snprintf(err, errcap, "configuration: server %llu cut short at offset %zu",
                     (unsigned long long)i, off);
            return RAFT_MALFORMED;
        }
        uint64_t id = rlg_get64(p + off);
        off += 8;
        const uint8_t *nul = memchr(p + off, 0, len - off);
        if (nul == NULL || (size_t)(nul - p) + 1 >= len) {
            snprintf(err, errcap,
                     "configuration: address of server %llu unterminated at offset %zu",
                     (unsigned long long)i, off);
            return RAFT_MALFORMED;
        }
        const char *address = (const char *)(p + off);
        off = (size_t)(nul - p) + 1;
        int role = p[off++];
        if (id == 0 || (role != RAFT_VOTER && role != RAFT_STANDBY && role != RAFT_SPARE)) {
            snprintf(err, errcap, "configuration: server %llu has id %llu, role %d (offset %zu)",
                     (unsigned long long)i, (unsigned long long)id, role, off - 1);
            return RAFT_MALFORMED;
        }
        int rv = raft_configuration_add(c, id, address, role);
        if (rv != 0) {
            snprintf(err, errcap, "configuration: server %llu (id %llu, %s): %s",
                     (unsigned long long)i, (unsigned long long)id, address, raft_strerror(rv));
            return rv == RAFT_NOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
        }
    }
    return 0;
}
