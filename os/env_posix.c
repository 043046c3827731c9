/* The posix env: the monotonic clock and the kernel's random numbers. With
 * the posix vfs, the only place rlog makes clock or randomness system calls.
 * A stateless process-wide singleton, safe from any thread. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "rlog/vfs.h"

static uint64_t env_now_ns(rlog_env *env)
{
    (void)env;
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64's finalizer: spreads every input bit over the output. */
static uint64_t env_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

/* Only for kernels without getrandom (before 3.17): not cryptographic, but
 * distinct across processes, calls and threads, which is all log ids and
 * jitter need. */
static uint64_t env_random_fallback(void)
{
    static atomic_uint_fast64_t counter;
    uint64_t n = (uint64_t)atomic_fetch_add(&counter, 1);
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t x = env_mix64((uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec);
    x = env_mix64(x ^ ((uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec));
    x = env_mix64(x ^ (uint64_t)getpid() ^ ((uint64_t)(uintptr_t)&rt << 16));
    return env_mix64(x ^ (n * 0x9e3779b97f4a7c15u));
}

static uint64_t env_random(rlog_env *env)
{
    (void)env;
    uint64_t v = 0;
    unsigned char *p = (unsigned char *)&v;
    size_t got = 0;
    while (got < sizeof v) {
        ssize_t n = getrandom(p + got, sizeof v - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* ENOSYS (old kernel) or anything unexpected: never fail here. */
        return v ^ env_random_fallback();
    }
    return v;
}

static void env_destroy(rlog_env *env)
{
    (void)env; /* a static singleton */
}

static rlog_env posix_env = {
    .impl = NULL,
    .now_ns = env_now_ns,
    .random = env_random,
    .destroy = env_destroy,
};

rlog_env *rlog_env_posix(void)
{
    return &posix_env;
}
