/*
 * The linearizability checker of the cluster workload: one register, a
 * Wing-Gong search over the history with Lowe's memoisation of
 * (linearized set, register value) pairs already explored. Operations that
 * never completed have no return entry: they may be linearized at any point
 * after their invocation, or never.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/sim_cluster.h"

typedef struct lin_entry {
    struct lin_entry *prev, *next;
    struct lin_entry *match; /* call -> its return (NULL: never returned) */
    size_t op;
    bool call;
    uint64_t t;
} lin_entry;

typedef struct lin_seen {
    uint64_t *keys; /* nwords + 1 words each (bits, value) */
    size_t cap, count, nwords;
} lin_seen;

static uint64_t lin_hash(const uint64_t *k, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        h ^= k[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

/* Inserts key (nwords bits + value); false when it was there already. */
static bool seen_add(lin_seen *s, const uint64_t *key)
{
    size_t w = s->nwords + 1;
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *nk = calloc(ncap * (w + 1), sizeof *nk);
        if (nk == NULL)
            return false; /* out of memory: treat as seen (prunes, may give up) */
        for (size_t i = 0; i < s->cap; i++) {
            uint64_t *e = s->keys + i * (w + 1);
            if (!e[0])
                continue;
            size_t j = lin_hash(e + 1, w) & (ncap - 1);
            while (nk[j * (w + 1)])
                j = (j + 1) & (ncap - 1);
            memcpy(nk + j * (w + 1), e, (w + 1) * sizeof *e);
        }
        free(s->keys);
        s->keys = nk;
        s->cap = ncap;
    }
    size_t j = lin_hash(key, w) & (s->cap - 1);
    for (;;) {
        uint64_t *e = s->keys + j * (w + 1);
        if (!e[0]) {
            e[0] = 1;
            memcpy(e + 1, key, w * sizeof *key);
            s->count++;
            return true;
        }
        if (!memcmp(e + 1, key, w * sizeof *key))
            return false;
        j = (j + 1) & (s->cap - 1);
    }
}

static int entry_cmp(const void *a, const void *b)
{
    const lin_entry *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->call != y->call) /* at equal times calls first: concurrent */
        return x->call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static void lift(lin_entry *e)
{
    e->prev->next = e->next;
    if (e->next)
        e->next->prev = e->prev;
    if (e->match) {
        e->match->prev->next = e->match->next;
        if (e->match->next)
            e->match->next->prev = e->match->prev;
    }
}

static void unlift(lin_entry *e)
{
    if (e->match) {
        e->match->prev->next = e->match;
        if (e->match->next)
            e->match->next->prev = e->match;
    }
    e->prev->next = e;
    if (e->next)
        e->next->prev = e;
}

int rlog_sim_lin_check(const rlog_sim_lin_op *ops, size_t n, uint64_t initial, uint64_t budget)
{
    size_t ne = 0;
    for (size_t i = 0; i < n; i++)
        ne += ops[i].complete == UINT64_MAX ? 1 : 2;
    lin_entry *v = calloc(ne + 1, sizeof *v);
    size_t nwords = n / 64 + 1;
    uint64_t *key = calloc(nwords + 1, sizeof *key);
    struct frame {
        lin_entry *e;
        uint64_t state;
    } *stack = calloc(n + 1, sizeof *stack);
    lin_seen seen = {.nwords = nwords};
    int verdict = -1;
    if (v == NULL || key == NULL || stack == NULL)
        goto out;
    size_t k = 1, finite = 0;
    for (size_t i = 0; i < n; i++) {
        v[k++] = (lin_entry){.op = i, .call = true, .t = ops[i].invoke};
        if (ops[i].complete != UINT64_MAX) {
            v[k++] = (lin_entry){.op = i, .call = false, .t = ops[i].complete};
            finite++;
        }
    }
    qsort(v + 1, ne, sizeof *v, entry_cmp);
    /* v[0] is the head sentinel; link and match calls to returns */
    size_t *ret_of = calloc(n + 1, sizeof *ret_of);
    if (ret_of == NULL)
        goto out;
    for (size_t i = 1; i <= ne; i++) {
        v[i].prev = &v[i - 1];
        v[i - 1].next = &v[i];
        if (!v[i].call)
            ret_of[v[i].op] = i;
    }
    for (size_t i = 1; i <= ne; i++)
        if (v[i].call && ret_of[v[i].op])
            v[i].match = &v[ret_of[v[i].op]];
    free(ret_of);

    uint64_t state = initial;
    size_t depth = 0, left = finite;
    lin_entry *e = v[0].next;
    for (uint64_t steps = 0; steps < budget; steps++) {
        if (left == 0) {
            verdict = 1;
            goto out;
        }
        if (e == NULL) /* only unreturned calls left, none fits: backtrack */
            goto backtrack;
        if (e->call) {
            const rlog_sim_lin_op *o = &ops[e->op];
            bool ok = o->write || o->value == state;
            uint64_t ns = o->write ? o->value : state;
            if (ok) {
                key[e->op / 64] |= 1ull << (e->op % 64);
                key[nwords] = ns;
                if (seen_add(&seen, key)) {
                    stack[depth++] = (struct frame){e, state};
                    state = ns;
                    if (e->match)
                        left--;
                    lift(e);
                    e = v[0].next;
                    continue;
                }
                key[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
            continue;
        }
    backtrack:
        if (depth == 0) {
            verdict = 0;
            goto out;
        }
        depth--;
        e = stack[depth].e;
        state = stack[depth].state;
        key[e->op / 64] &= ~(1ull << (e->op % 64));
        if (e->match)
            left++;
        unlift(e);
        e = e->next;
    }
out:
    free(v);
    free(key);
    free(stack);
    free(seen.keys);
    return verdict;
}
