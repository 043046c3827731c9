/*
 * Deterministic PRNG for the simulator: xoshiro256** (Blackman and Vigna),
 * its state seeded by splitmix64 from (seed, stream). Only integer
 * arithmetic: the same numbers on every platform and build type.
 */
#include "rlog/sim.h"

static uint64_t prng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t prng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void rlog_sim_rng_init(rlog_sim_rng *rng, uint64_t seed, uint64_t stream)
{
    /* Mix the stream number in first so that (seed, stream) pairs do not
     * alias as seed + stream would. */
    uint64_t x = stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull;
    x = prng_splitmix(&x) ^ seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = prng_splitmix(&x);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = 1; /* the all-zero state is a fixed point */
}

uint64_t rlog_sim_rng_next(rlog_sim_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = prng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = prng_rotl(s[3], 45);
    return result;
}

uint64_t rlog_sim_rng_below(rlog_sim_rng *rng, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Rejection sampling: no modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rlog_sim_rng_next(rng);
    } while (x >= limit);
    return x % n;
}

int rlog_sim_rng_chance(rlog_sim_rng *rng, uint32_t ppm)
{
    if (ppm == 0)
        return 0;
    if (ppm >= 1000000u)
        return 1;
    return rlog_sim_rng_below(rng, 1000000u) < ppm;
}
