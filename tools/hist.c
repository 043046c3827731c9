/* A log-linear latency histogram: values below CLI_HIST_SUB ns are exact;
 * above, each power of two is split into CLI_HIST_SUB/2 linear buckets
 * (relative error under 2/CLI_HIST_SUB). */
#include <time.h>

#include "tools/cli.h"

static unsigned hist_index(uint64_t v)
{
    if (v < CLI_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
    unsigned shift = msb - 6;                          /* keep the top 7 bits */
    unsigned sub = (unsigned)(v >> shift);             /* 64 .. 127 */
    unsigned idx = shift * (CLI_HIST_SUB / 2) + sub;   /* 128 + ... */
    return idx < CLI_HIST_BUCKETS ? idx : CLI_HIST_BUCKETS - 1;
}

/* Largest value that maps to bucket idx. */
static uint64_t hist_upper(unsigned idx)
{
    if (idx < CLI_HIST_SUB)
        return idx;
    unsigned shift = idx / (CLI_HIST_SUB / 2) - 1;
    uint64_t sub = idx % (CLI_HIST_SUB / 2) + CLI_HIST_SUB / 2;
    return ((sub + 1) << shift) - 1;
}

void cli_hist_add(cli_hist *h, uint64_t ns)
{
    h->count++;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->buckets[hist_index(ns)]++;
}

void cli_hist_merge(cli_hist *into, const cli_hist *from)
{
    into->count += from->count;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    for (unsigned i = 0; i < CLI_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
}

uint64_t cli_hist_quantile(const cli_hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < CLI_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > rank) {
            uint64_t v = hist_upper(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
