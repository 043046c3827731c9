/* kv_fsm: see kv_fsm.h for the command and snapshot layouts. */
#include "kv_fsm.h"

#include <stdlib.h>
#include <string.h>

#define KV_CMD_HEADER  9u /* op + key length + value length */
#define KV_PAIR_HEADER 8u /* key length + value length */
#define KV_SNAP_MAGIC  "KVS1"
#define KV_SNAP_HEADER 12u /* magic + pair count */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME  1099511628211ull

static uint64_t fnv1a(uint64_t h, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)p[i]) * FNV_PRIME;
    return h;
}

static uint64_t hash_key(const char *key, size_t len)
{
    return fnv1a(FNV_OFFSET, key, len);
}

static struct kv_pair **map_slot(const struct kv_map *m, const char *key, size_t key_len)
{
    if (m->n_buckets == 0)
        return NULL;
    struct kv_pair **slot = &m->buckets[hash_key(key, key_len) & (m->n_buckets - 1)];
    while (*slot && !((*slot)->key_len == key_len && memcmp((*slot)->key, key, key_len) == 0))
        slot = &(*slot)->next;
    return slot;
}

const struct kv_pair *kv_map_get(const struct kv_map *m, const char *key, size_t key_len)
{
    struct kv_pair **slot = map_slot(m, key, key_len);
    return slot ? *slot : NULL;
}

uint64_t kv_map_digest(const struct kv_map *m)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < m->n_buckets; i++) {
        for (const struct kv_pair *p = m->buckets[i]; p; p = p->next) {
            /* key, its length (so "ab"+"c" differs from "a"+"bc"), value */
            uint64_t h = fnv1a(FNV_OFFSET, p->key, p->key_len);
            h = fnv1a(h, (const char *)&p->key_len, sizeof p->key_len);
            sum += fnv1a(h, p->value, p->value_len);
        }
    }
    return sum;
}

static void pair_free(struct kv_pair *p)
{
    free(p->key);
    free(p->value);
    free(p);
}

static void map_clear(struct kv_map *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct kv_pair *p = m->buckets[i];
        while (p) {
            struct kv_pair *next = p->next;
            pair_free(p);
            p = next;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof *m);
}

static int map_grow(struct kv_map *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 64;
    struct kv_pair **b = calloc(n, sizeof *b);
    if (!b)
        return RAFT_NOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct kv_pair *p = m->buckets[i];
        while (p) {
            struct kv_pair *next = p->next;
            size_t j = hash_key(p->key, p->key_len) & (n - 1);
            p->next = b[j];
            b[j] = p;
            p = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
    return 0;
}

static char *copy_bytes(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

static int map_put(struct kv_map *m, const uint8_t *key, uint32_t key_len, const uint8_t *value,
                   uint32_t value_len)
{
    if (m->n_pairs >= m->n_buckets && map_grow(m) != 0)
        return RAFT_NOMEM;
    char *v = copy_bytes(value, value_len);
    if (!v)
        return RAFT_NOMEM;
    struct kv_pair **slot = map_slot(m, (const char *)key, key_len);
    if (*slot) {
        free((*slot)->value);
        (*slot)->value = v;
        (*slot)->value_len = value_len;
        return 0;
    }
    struct kv_pair *p = calloc(1, sizeof *p);
    if (!p || !(p->key = copy_bytes(key, key_len))) {
        free(p);
        free(v);
        return RAFT_NOMEM;
    }
    p->key_len = key_len;
    p->value = v;
    p->value_len = value_len;
    *slot = p;
    m->n_pairs++;
    return 0;
}

static void map_del(struct kv_map *m, const uint8_t *key, uint32_t key_len)
{
    struct kv_pair **slot = map_slot(m, (const char *)key, key_len);
    if (slot && *slot) {
        struct kv_pair *p = *slot;
        *slot = p->next;
        pair_free(p);
        m->n_pairs--;
    }
}

int kv_command_encode(int op, const char *key, size_t key_len, const char *value, size_t value_len,
                      struct raft_buffer *buf)
{
    /* raft_uv (libraft 0.15) cannot load entries whose length is not a
     * multiple of 8 (canonical/raft issue #304): pad with zeros. */
    buf->len = (KV_CMD_HEADER + key_len + value_len + 7) & ~(size_t)7;
    uint8_t *p = raft_calloc(1, buf->len);
    if (!p)
        return RAFT_NOMEM;
    p[0] = (uint8_t)op;
    put_u32(p + 1, (uint32_t)key_len);
    put_u32(p + 5, (uint32_t)value_len);
    memcpy(p + KV_CMD_HEADER, key, key_len);
    if (value_len)
        memcpy(p + KV_CMD_HEADER + key_len, value, value_len);
    buf->base = p;
    return 0;
}

/* Checks that a pair of lengths at p (KV_PAIR_HEADER bytes) fits in the
 * remaining bytes; sets *size to the whole pair's size. */
static int pair_size(const uint8_t *p, size_t remaining, size_t *size)
{
    if (remaining < KV_PAIR_HEADER)
        return RAFT_MALFORMED;
    uint64_t n = (uint64_t)KV_PAIR_HEADER + get_u32(p) + get_u32(p + 4);
    if (n > remaining)
        return RAFT_MALFORMED;
    *size = (size_t)n;
    return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct kv_fsm *f = fsm->data;
    const uint8_t *p = buf->base;
    size_t size;
    *result = NULL;
    if (buf->len < 1 || pair_size(p + 1, buf->len - 1, &size) != 0 || buf->len - (1 + size) >= 8)
        return RAFT_MALFORMED; /* (up to 7 bytes of padding) */
    uint32_t key_len = get_u32(p + 1);
    const uint8_t *key = p + KV_CMD_HEADER;
    int rv = 0;
    if (p[0] == KV_OP_PUT)
        rv = map_put(&f->map, key, key_len, key + key_len, get_u32(p + 5));
    else if (p[0] == KV_OP_DEL)
        map_del(&f->map, key, key_len);
    else
        rv = RAFT_MALFORMED;
    if (rv == 0)
        f->applied++;
    return rv;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct kv_fsm *f = fsm->data;
    const struct kv_map *m = &f->map;
    size_t len = KV_SNAP_HEADER;
    for (size_t i = 0; i < m->n_buckets; i++)
        for (const struct kv_pair *p = m->buckets[i]; p; p = p->next)
            len += KV_PAIR_HEADER + p->key_len + p->value_len;
    struct raft_buffer *b = raft_malloc(sizeof *b);
    uint8_t *out = raft_malloc(len);
    if (!b || !out) {
        raft_free(b);
        raft_free(out);
        return RAFT_NOMEM;
    }
    memcpy(out, KV_SNAP_MAGIC, 4);
    put_u32(out + 4, (uint32_t)m->n_pairs);
    put_u32(out + 8, (uint32_t)((uint64_t)m->n_pairs >> 32));
    uint8_t *w = out + KV_SNAP_HEADER;
    for (size_t i = 0; i < m->n_buckets; i++) {
        for (const struct kv_pair *p = m->buckets[i]; p; p = p->next) {
            put_u32(w, p->key_len);
            put_u32(w + 4, p->value_len);
            memcpy(w + KV_PAIR_HEADER, p->key, p->key_len);
            memcpy(w + KV_PAIR_HEADER + p->key_len, p->value, p->value_len);
            w += KV_PAIR_HEADER + p->key_len + p->value_len;
        }
    }
    b->base = out;
    b->len = len;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

/* On success takes ownership of buf->base (raft_free'd here), as libraft
 * expects; on failure libraft still owns it and frees it with the snapshot.
 * The map is replaced only when the whole snapshot decodes. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct kv_fsm *f = fsm->data;
    const uint8_t *p = buf->base;
    size_t left = buf->len;
    struct kv_map m = {0};
    int rv = RAFT_MALFORMED;
    if (left < KV_SNAP_HEADER || memcmp(p, KV_SNAP_MAGIC, 4) != 0)
        goto out;
    uint64_t count = get_u32(p + 4) | (uint64_t)get_u32(p + 8) << 32;
    p += KV_SNAP_HEADER;
    left -= KV_SNAP_HEADER;
    for (uint64_t i = 0; i < count; i++) {
        size_t size;
        if ((rv = pair_size(p, left, &size)) != 0)
            goto out;
        uint32_t key_len = get_u32(p);
        rv = map_put(&m, p + KV_PAIR_HEADER, key_len, p + KV_PAIR_HEADER + key_len, get_u32(p + 4));
        if (rv != 0)
            goto out;
        p += size;
        left -= size;
    }
    rv = left == 0 ? 0 : RAFT_MALFORMED;
out:
    if (rv == 0) {
        map_clear(&f->map);
        f->map = m;
        f->restores++;
        raft_free(buf->base);
    } else {
        map_clear(&m);
    }
    return rv;
}

void kv_fsm_init(struct kv_fsm *f)
{
    memset(f, 0, sizeof *f);
    f->fsm.version = 1;
    f->fsm.data = f;
    f->fsm.apply = fsm_apply;
    f->fsm.snapshot = fsm_snapshot;
    f->fsm.restore = fsm_restore;
}

void kv_fsm_close(struct kv_fsm *f)
{
    map_clear(&f->map);
}
