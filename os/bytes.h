/* Little-endian put/get: every on-disk and on-wire integer rlog encodes by
 * hand goes through these (one copy; the compiler turns them into plain
 * loads and stores on little-endian machines). And the 16 lowercase hex
 * digits ("%016" PRIx64) that file names carry (segments, snapshots). */
#ifndef RLG_OS_BYTES_H
#define RLG_OS_BYTES_H

#include <stdbool.h>
#include <stdint.h>

static inline void rlg_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void rlg_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rlg_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t rlg_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t rlg_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t rlg_get64(const uint8_t *p)
{
    return (uint64_t)rlg_get32(p) | ((uint64_t)rlg_get32(p + 4) << 32);
}

/* Reads 16 lowercase hex digits at p (as "%016" PRIx64 writes them) into
 * *v; false (and *v unchanged) when one is not a digit of that form. */
static inline bool rlg_get_hex16(const char *p, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        x = (x << 4) | d;
    }
    *v = x;
    return true;
}

#endif /* RLG_OS_BYTES_H */
