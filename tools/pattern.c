/* The payload pattern: see pattern.h for the definition. */
#include "tools/pattern.h"

#include <string.h>

#define PATTERN_GAMMA 0x9e3779b97f4a7c15ull

static uint64_t pattern_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void pattern_word(uint64_t key, uint64_t j, uint8_t out[8])
{
    uint64_t w = pattern_mix(key + (j + 1) * PATTERN_GAMMA);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(w >> (8 * i));
}

void cli_pattern_fill(uint64_t seed, uint64_t lsn, void *buf, size_t len)
{
    uint64_t key = pattern_mix(seed ^ pattern_mix(lsn));
    uint8_t *p = buf;
    uint8_t w[8];
    size_t j = 0;
    for (; len >= 8; len -= 8, p += 8, j++) {
        pattern_word(key, j, w);
        memcpy(p, w, 8);
    }
    if (len) {
        pattern_word(key, j, w);
        memcpy(p, w, len);
    }
}

size_t cli_pattern_check(uint64_t seed, uint64_t lsn, const void *buf, size_t len)
{
    uint64_t key = pattern_mix(seed ^ pattern_mix(lsn));
    const uint8_t *p = buf;
    uint8_t w[8];
    for (size_t off = 0; off < len; off += 8) {
        pattern_word(key, off / 8, w);
        size_t n = len - off < 8 ? len - off : 8;
        for (size_t i = 0; i < n; i++)
            if (p[off + i] != w[i])
                return off + i;
    }
    return len;
}
