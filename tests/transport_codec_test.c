/* The wire codec (include/rlog/wire.h, docs/wire.md):
 *  - every message type round-trips (field values, byte fields by content),
 *    including an empty and a 10,000-entry AppendEntries, extreme integer
 *    values and non-canonical but valid encodings; decoded byte fields point
 *    into the input buffer (zero copy);
 *  - hostile input is rejected with RLOG_EPROTO and a message naming the
 *    field and offset, never a crash, never a large allocation: every
 *    truncation of every message, every wrong type in every field, array
 *    headers claiming 2^32-1 and 2^28 elements, str/bin lengths past the
 *    end, unknown types and versions, trailing bytes, integer overflow,
 *    messages above max_bytes;
 *  - the shipping messages (types 16..28) round-trip and their own checks
 *    hold: side-file names and texts, chunk bounds, array counts, every
 *    wrong type in every field of a side file or status follower, every
 *    uint32 field refusing 2^32; every known type has a sample and a schema;
 *  - 20,000 deterministic random mutations never crash (run under ASan to
 *    catch any read outside the exact-size input copies), and whatever
 *    decodes re-encodes to an equal message.
 * Input copies are malloc'd at their exact size so ASan sees any over-read.
 * Under ASan, allocations above 256 MiB fail (see __asan_default_options),
 * and without ASan the hostile cases run in a child under RLIMIT_AS, so an
 * allocation driven by a claimed count shows up as RLOG_ENOMEM. */
#include "util/testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "rlog/wire.h"
#include "transport/codec.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=256:allocator_may_return_null=1";
}

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* A malloc'd copy of exactly len bytes (len 0 gets 1 byte, never read). */
static uint8_t *dup_exact(const void *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    assert_non_null(d);
    if (len) {
        memcpy(d, p, len);
    }
    return d;
}

/* Decodes an exact-size copy; expects RLOG_EPROTO and a message that names
 * `field` (when not NULL) and an offset. */
static void expect_reject(const void *buf, size_t len, size_t max, const char *field)
{
    uint8_t *copy = dup_exact(buf, len);
    rlog_msg m;
    char err[256];
    int rc = rlog_msg_decode(copy, len, max, &m, err, sizeof err);
    if (rc != RLOG_EPROTO || (field && !strstr(err, field)) || !strstr(err, "offset")) {
        fail_msg("len %zu: rc %d (%s), err '%s', wanted field '%s'", len, rc, rlog_errname(rc), err,
                 field ? field : "");
    }
    assert_null(m.alloc_);
    rlog_msg_free(&m);
    free(copy);
}

static void encode_ok(const rlog_msg *m, void **buf, size_t *len)
{
    assert_int_equal(rlog_msg_encode(m, buf, len), 0);
    assert_non_null(*buf);
    assert_true(*len > 0);
}

/* Decodes and checks equality with `want`, and that byte fields point into
 * the input (zero copy). */
static void roundtrip(const rlog_msg *want)
{
    void *buf;
    size_t len;
    char err[256];
    encode_ok(want, &buf, &len);
    uint8_t *copy = dup_exact(buf, len);
    rlog_msg got;
    int rc = rlog_msg_decode(copy, len, 0, &got, err, sizeof err);
    if (rc != 0) {
        fail_msg("%s: %s", rlog_msg_type_name(want->type), err);
    }
    assert_true(rlg_msg_equal(want, &got));
    if (got.type == RLOG_MSG_APPEND_ENTRIES) {
        for (uint32_t i = 0; i < got.u.append_entries.n_entries; i++) {
            const rlog_msg_entry *e = &got.u.append_entries.entries[i];
            if (e->len) {
                assert_true((const uint8_t *)e->data >= copy);
                assert_true((const uint8_t *)e->data + e->len <= copy + len);
            }
        }
    }
    if (got.type == RLOG_MSG_INSTALL_SNAPSHOT && got.u.install_snapshot.chunk_len) {
        assert_true((const uint8_t *)got.u.install_snapshot.chunk >= copy);
    }
    if (got.type == RLOG_MSG_SHIP_DATA && got.u.ship_data.len) {
        assert_true((const uint8_t *)got.u.ship_data.bytes >= copy);
        assert_true((const uint8_t *)got.u.ship_data.bytes + got.u.ship_data.len <= copy + len);
    }
    if (got.type == RLOG_MSG_SHIP_FILE_DATA && got.u.ship_file_data.len) {
        assert_true((const uint8_t *)got.u.ship_file_data.data >= copy);
        assert_true((const uint8_t *)got.u.ship_file_data.data + got.u.ship_file_data.len <=
                    copy + len);
    }
    rlog_msg_free(&got);
    rlog_msg_free(&got); /* twice is allowed */
    free(copy);
    rlog_free(buf);
}

/* ---- sample messages -------------------------------------------------- */

static char long_address[RLOG_WIRE_ADDRESS_MAX + 1];
static const rlog_msg_entry sample_entries[3] = {
    {1, 1, 5, "hello"}, {1, 2, 0, NULL}, {UINT64_MAX, UINT16_MAX, 3, "\0\xff\x01"}};
static char long_name[RLOG_WIRE_NAME_MAX + 1];
static rlog_msg_ship_file sample_files[3] = {
    {"snapshot-0000000000000010-0000000000000002.snap", 4096, 0xdeadbeef},
    {"x", 0, 0},
    {long_name, UINT64_MAX, UINT32_MAX}};
static rlog_msg_ship_peer sample_peers[2] = {
    {7, "tcp://127.0.0.1:9100", 3, 100, 120, 20, 4096, 1u << 30, true},
    {UINT64_MAX, "", UINT32_MAX, 0, 0, UINT64_MAX, UINT64_MAX, UINT64_MAX, false}};
static const uint8_t sample_bytes[5] = {0x01, 0x00, 0xff, 0x7f, 0x80};

#define N_SAMPLES 45

/* The shipping messages (types 16..28): every type, edge values. */
static int ship_samples(rlog_msg *s, int i)
{
    memset(long_name, 'n', RLOG_WIRE_NAME_MAX);
    long_name[RLOG_WIRE_NAME_MAX] = '\0';
    s[i].type = RLOG_MSG_SHIP_START; /* an empty follower */
    s[i++].u.ship_start = (rlog_msg_ship_start){.nonce = 1, .window = 8u << 20};
    s[i].type = RLOG_MSG_SHIP_START;
    s[i++].u.ship_start = (rlog_msg_ship_start){UINT64_MAX, 0x1234567890abcdefull,
                                                1u << 26,   1,
                                                5000,       12,
                                                4900,       65536,
                                                true,       65508,
                                                UINT32_MAX, 5000,
                                                0,          UINT64_MAX};
    s[i].type = RLOG_MSG_SHIP_REFUSE;
    s[i++].u.ship_refuse = (rlog_msg_ship_refuse){9, RLOG_EFOREIGN, "log id a != b"};
    s[i].type = RLOG_MSG_SHIP_REFUSE;
    s[i++].u.ship_refuse = (rlog_msg_ship_refuse){0, UINT32_MAX, long_address};
    s[i].type = RLOG_MSG_SHIP_TRUNCATE;
    s[i++].u.ship_truncate = (rlog_msg_ship_truncate){9, 4900, "diverged"};
    s[i].type = RLOG_MSG_SHIP_TRUNCATE;
    s[i++].u.ship_truncate = (rlog_msg_ship_truncate){9, UINT64_MAX, ""};
    s[i].type = RLOG_MSG_SHIP_ACCEPT;
    s[i++].u.ship_accept =
        (rlog_msg_ship_accept){9, 77, true, 1u << 20, 3, 100, 250, 2, 250, 3, sample_files};
    s[i].type = RLOG_MSG_SHIP_ACCEPT;
    s[i++].u.ship_accept = (rlog_msg_ship_accept){UINT64_MAX, 77, false, 0, 0, 0, 0, 0, 0, 0, NULL};
    s[i].type = RLOG_MSG_SHIP_FILES;
    s[i++].u.ship_files = (rlog_msg_ship_files){9, 3, 400, 2, sample_files};
    s[i].type = RLOG_MSG_SHIP_FILES;
    s[i++].u.ship_files = (rlog_msg_ship_files){9, UINT64_MAX, UINT64_MAX, 0, NULL};
    s[i].type = RLOG_MSG_SHIP_FILES_OK;
    s[i++].u.ship_files_ok = (rlog_msg_ship_files_ok){9, 3};
    s[i].type = RLOG_MSG_SHIP_FILE_REQ;
    s[i++].u.ship_file_req = (rlog_msg_ship_file_req){9, "a.snap", 1u << 20, 8u << 20};
    s[i].type = RLOG_MSG_SHIP_FILE_REQ;
    s[i++].u.ship_file_req = (rlog_msg_ship_file_req){9, long_name, UINT64_MAX, UINT64_MAX};
    s[i].type = RLOG_MSG_SHIP_FILE_DATA;
    s[i++].u.ship_file_data =
        (rlog_msg_ship_file_data){9, "a.snap", 10, 0xabcdef01u, 5, 5, sample_bytes};
    s[i].type = RLOG_MSG_SHIP_FILE_DATA; /* an empty file */
    s[i++].u.ship_file_data = (rlog_msg_ship_file_data){9, "e.snap", 0, 0, 0, 0, NULL};
    s[i].type = RLOG_MSG_SHIP_DATA;
    s[i++].u.ship_data = (rlog_msg_ship_data){9, 4, 300, 1u << 20, 64, 69, 310, 2, 5, sample_bytes};
    s[i].type = RLOG_MSG_SHIP_DATA; /* a heartbeat */
    s[i++].u.ship_data = (rlog_msg_ship_data){9, 5, 0, 0, 64, 0, 310, 0, 0, NULL};
    s[i].type = RLOG_MSG_SHIP_DATA; /* at the top of the offset range */
    s[i++].u.ship_data = (rlog_msg_ship_data){9, 5,          0,          0, UINT64_MAX - 5,
                                              0, UINT64_MAX, UINT64_MAX, 5, sample_bytes};
    s[i].type = RLOG_MSG_SHIP_ACK;
    s[i++].u.ship_ack = (rlog_msg_ship_ack){9, 4, 4096, 4, 2048, 310, 0};
    s[i].type = RLOG_MSG_SHIP_ACK;
    s[i++].u.ship_ack = (rlog_msg_ship_ack){9, UINT64_MAX, UINT64_MAX, 0, 0, 0, UINT32_MAX};
    s[i].type = RLOG_MSG_SHIP_RESTART;
    s[i++].u.ship_restart = (rlog_msg_ship_restart){9, "segment 3 was deleted"};
    s[i].type = RLOG_MSG_SHIP_STATUS_REQ;
    s[i++].u.ship_status_req = (rlog_msg_ship_status_req){UINT64_MAX};
    s[i].type = RLOG_MSG_SHIP_STATUS;
    s[i++].u.ship_status = (rlog_msg_ship_status){1, 77, 1, 310, 1, 5, 2, sample_peers};
    s[i].type = RLOG_MSG_SHIP_STATUS;
    s[i++].u.ship_status = (rlog_msg_ship_status){0, 0, 0, 0, 0, 0, 0, NULL};
    return i;
}

/* Fills s[] with N_SAMPLES messages covering every type and edge values. */
static void samples(rlog_msg *s)
{
    memset(long_address, 'a', RLOG_WIRE_ADDRESS_MAX);
    long_address[RLOG_WIRE_ADDRESS_MAX] = '\0';
    memset(s, 0, N_SAMPLES * sizeof *s);
    int i = 0;
    s[i].type = RLOG_MSG_HELLO;
    s[i++].u.hello =
        (rlog_msg_hello){7, "tcp://127.0.0.1:9001", RLOG_WIRE_PROTOCOL, RLOG_ROLE_RAFT, 0};
    s[i].type = RLOG_MSG_HELLO;
    s[i++].u.hello = (rlog_msg_hello){UINT64_MAX, "", UINT32_MAX, UINT32_MAX, UINT64_MAX};
    s[i].type = RLOG_MSG_HELLO;
    s[i++].u.hello = (rlog_msg_hello){0, long_address, 1, RLOG_ROLE_SHIP_FOLLOWER, 1};
    s[i].type = RLOG_MSG_REQUEST_VOTE;
    s[i++].u.request_vote = (rlog_msg_request_vote){5, 2, 100, 4, false, true};
    s[i].type = RLOG_MSG_REQUEST_VOTE;
    s[i++].u.request_vote =
        (rlog_msg_request_vote){UINT64_MAX, UINT64_MAX, 1ull << 32, 255, true, false};
    for (int t = 0; t < 3; t++) {
        s[i].type = RLOG_MSG_REQUEST_VOTE_RESULT;
        s[i++].u.request_vote_result =
            (rlog_msg_request_vote_result){(uint64_t)t * 1000, t == 1, (rlog_msg_tribool)t};
    }
    s[i].type = RLOG_MSG_APPEND_ENTRIES;
    s[i++].u.append_entries = (rlog_msg_append_entries){9, 0, 0, 0, 0, NULL};
    s[i].type = RLOG_MSG_APPEND_ENTRIES;
    s[i++].u.append_entries = (rlog_msg_append_entries){9, 41, 8, 40, 3, sample_entries};
    s[i].type = RLOG_MSG_APPEND_ENTRIES_RESULT;
    s[i++].u.append_entries_result = (rlog_msg_append_entries_result){9, 0, 44};
    s[i].type = RLOG_MSG_APPEND_ENTRIES_RESULT;
    s[i++].u.append_entries_result = (rlog_msg_append_entries_result){9, 42, UINT64_MAX};
    s[i].type = RLOG_MSG_INSTALL_SNAPSHOT; /* first chunk */
    s[i++].u.install_snapshot =
        (rlog_msg_install_snapshot){9, 1000, 8, 990, 4, "conf", 10, 0, 6, "abcdef", false};
    s[i].type = RLOG_MSG_INSTALL_SNAPSHOT; /* last chunk */
    s[i++].u.install_snapshot =
        (rlog_msg_install_snapshot){9, 1000, 8, 990, 4, "conf", 10, 6, 4, "ghij", true};
    s[i].type = RLOG_MSG_INSTALL_SNAPSHOT; /* empty snapshot */
    s[i++].u.install_snapshot =
        (rlog_msg_install_snapshot){1, 1, 1, 1, 0, NULL, 0, 0, 0, NULL, true};
    s[i].type = RLOG_MSG_INSTALL_SNAPSHOT; /* chunk at the top of the u64 range */
    s[i++].u.install_snapshot =
        (rlog_msg_install_snapshot){1, 1, 1, 1, 0, NULL, UINT64_MAX, UINT64_MAX - 2, 2, "zz", true};
    s[i].type = RLOG_MSG_INSTALL_SNAPSHOT_RESULT;
    s[i++].u.install_snapshot_result = (rlog_msg_install_snapshot_result){9, 1000, 6};
    s[i].type = RLOG_MSG_TIMEOUT_NOW;
    s[i++].u.timeout_now = (rlog_msg_timeout_now){9, 44, 9};
    s[i].type = RLOG_MSG_TIMEOUT_NOW;
    s[i++].u.timeout_now = (rlog_msg_timeout_now){0, 0, 0};
    s[i].type = RLOG_MSG_REDIRECT;
    s[i++].u.redirect = (rlog_msg_redirect){"tcp://127.0.0.1:40000", UINT64_MAX};
    s[i].type = RLOG_MSG_REDIRECT;
    s[i++].u.redirect = (rlog_msg_redirect){"", 0};
    i = ship_samples(s, i);
    assert_int_equal(i, N_SAMPLES);
}

/* Writes every sample to $RLOG_WIRE_CORPUS/sample-NN (a libFuzzer seed
 * corpus) when that variable is set. */
static void write_corpus(const rlog_msg *s)
{
    const char *dir = getenv("RLOG_WIRE_CORPUS");
    if (dir == NULL) {
        return;
    }
    mkdir(dir, 0755);
    for (int i = 0; i < N_SAMPLES; i++) {
        void *buf;
        size_t len;
        encode_ok(&s[i], &buf, &len);
        char path[4096];
        snprintf(path, sizeof path, "%s/sample-%02d", dir, i);
        tu_write_file(path, buf, len);
        rlog_free(buf);
    }
}

/* ---- round trips -------------------------------------------------------- */

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    rlog_msg s[N_SAMPLES];
    samples(s);
    write_corpus(s);
    for (int i = 0; i < N_SAMPLES; i++) {
        roundtrip(&s[i]);
    }
    /* Every type the codec knows has a sample (a new type needs one). */
    for (int t = 0; t < 64; t++) {
        bool sampled = false;
        for (int i = 0; i < N_SAMPLES; i++) {
            sampled |= (int)s[i].type == t;
        }
        if (sampled != (strcmp(rlog_msg_type_name(t), "unknown") != 0)) {
            fail_msg("type %d (%s) has no sample", t, rlog_msg_type_name(t));
        }
    }
    for (int t = RLOG_MSG_HELLO; t <= RLOG_MSG_REDIRECT; t++) {
        assert_string_not_equal(rlog_msg_type_name(t), "unknown");
    }
    for (int t = RLOG_MSG_SHIP_START; t <= RLOG_MSG_SHIP_STATUS; t++) {
        assert_string_not_equal(rlog_msg_type_name(t), "unknown");
    }
    assert_string_equal(rlog_msg_type_name(RLOG_MSG_SHIP_DATA), "ship_data");
    assert_string_equal(rlog_msg_type_name(0), "unknown");
    assert_string_equal(rlog_msg_type_name(15), "unknown");
    assert_string_equal(rlog_msg_type_name(29), "unknown");
}

/* A message of 10,000 entries with payloads of 0..199 bytes. */
static rlog_msg big_append(rlog_msg_entry **entries, uint8_t **data)
{
    enum { N = 10000 };
    *entries = calloc(N, sizeof **entries);
    *data = malloc(200);
    assert_non_null(*entries);
    assert_non_null(*data);
    for (int i = 0; i < 200; i++) {
        (*data)[i] = (uint8_t)(i * 7);
    }
    for (uint32_t i = 0; i < N; i++) {
        (*entries)[i] = (rlog_msg_entry){1 + i / 100, (uint16_t)(i % 3), i % 200, *data};
    }
    rlog_msg m = {.type = RLOG_MSG_APPEND_ENTRIES};
    m.u.append_entries = (rlog_msg_append_entries){77, 5000, 3, 4999, N, *entries};
    return m;
}

static void test_roundtrip_large_append(void **state)
{
    (void)state;
    rlog_msg_entry *entries;
    uint8_t *data;
    rlog_msg m = big_append(&entries, &data);
    roundtrip(&m);

    /* Cuts at a stride and near both ends (every cut would be quadratic). */
    void *buf;
    size_t len;
    encode_ok(&m, &buf, &len);
    for (size_t cut = 0; cut < len; cut += (cut < 64 || cut > len - 64) ? 1 : 997) {
        expect_reject(buf, cut, 0, NULL);
    }
    /* The limit: one byte under the size is refused, the size passes. */
    expect_reject(buf, len, len - 1, "exceed the limit");
    rlog_msg got;
    assert_int_equal(rlog_msg_decode(buf, len, len, &got, NULL, 0), 0);
    assert_int_equal(got.u.append_entries.n_entries, 10000);
    rlog_msg_free(&got);
    rlog_free(buf);
    free(entries);
    free(data);
}

/* Integers in wider formats than needed, signed formats holding
 * non-negative values, str8 and bin32 for short strings: all accepted. */
static void test_non_canonical_accepted(void **state)
{
    (void)state;
    // clang-format off
    static const uint8_t raw[] = {
        0xdc, 0x00, 0x07,                                     /* array16 of 7 */
        0xcf, 0, 0, 0, 0, 0, 0, 0, 0x01,                      /* type 1 as uint64 */
        0xd0, 0x01,                                           /* version 1 as int8 */
        0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05,                      /* server_id 5 as int64 */
        0xd9, 0x03, 'a', 'b', 'c',                            /* address as str8 */
        0xcd, 0x00, 0x01,                                     /* protocol as uint16 */
        0xce, 0, 0, 0, 0x02,                                  /* role as uint32 */
        0x00};                                                /* flags */
    // clang-format on
    rlog_msg m;
    char err[256];
    assert_int_equal(rlog_msg_decode(raw, sizeof raw, 0, &m, err, sizeof err), 0);
    assert_int_equal(m.type, RLOG_MSG_HELLO);
    assert_int_equal(m.u.hello.server_id, 5);
    assert_string_equal(m.u.hello.address, "abc");
    assert_int_equal(m.u.hello.role, 2);
    rlog_msg_free(&m);

    static const uint8_t ae[] = {0x97, 0x04, 0x01, 1, 2, 3, 4, 0x91, 0x93,
                                 0x05, 0x06, 0xc6, 0, 0, 0, 2, 'h',  'i'};
    assert_int_equal(rlog_msg_decode(ae, sizeof ae, 0, &m, err, sizeof err), 0);
    assert_int_equal(m.u.append_entries.n_entries, 1);
    assert_int_equal(m.u.append_entries.entries[0].len, 2);
    assert_memory_equal(m.u.append_entries.entries[0].data, "hi", 2);
    rlog_msg_free(&m);
}

/* ---- rejection ---------------------------------------------------------- */

static void test_every_truncation(void **state)
{
    (void)state;
    rlog_msg s[N_SAMPLES];
    samples(s);
    for (int i = 0; i < N_SAMPLES; i++) {
        void *buf;
        size_t len;
        encode_ok(&s[i], &buf, &len);
        for (size_t cut = 0; cut < len; cut++) {
            expect_reject(buf, cut, 0, NULL);
        }
        /* And every extension by one byte: trailing bytes. */
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0x00;
        expect_reject(longer, len + 1, 0, "trailing");
        free(longer);
        rlog_free(buf);
    }
}

/* Test-side schema: field kinds per type ('u' uint64, 'w' uint32, 's' str,
 * 'b' bool, 't' nil|bool, 'B' bin, 'e' entries, 'f' side files, 'p' status
 * followers) and their names. */
typedef struct schema {
    int type;
    const char *kinds;
    const char *names[14];
} schema;

static const schema schemas[] = {
    {RLOG_MSG_HELLO, "uswwu", {"server_id", "address", "protocol_version", "role", "flags"}},
    {RLOG_MSG_REQUEST_VOTE,
     "uuuubb",
     {"term", "candidate_id", "last_log_index", "last_log_term", "disrupt_leader", "pre_vote"}},
    {RLOG_MSG_REQUEST_VOTE_RESULT, "ubt", {"term", "vote_granted", "pre_vote"}},
    {RLOG_MSG_APPEND_ENTRIES,
     "uuuue",
     {"term", "prev_log_index", "prev_log_term", "leader_commit", "entries"}},
    {RLOG_MSG_APPEND_ENTRIES_RESULT, "uuu", {"term", "rejected", "last_log_index"}},
    {RLOG_MSG_INSTALL_SNAPSHOT,
     "uuuuBuuBb",
     {"term", "last_index", "last_term", "conf_index", "conf", "total", "offset", "chunk", "done"}},
    {RLOG_MSG_INSTALL_SNAPSHOT_RESULT, "uuu", {"term", "last_index", "next_offset"}},
    {RLOG_MSG_TIMEOUT_NOW, "uuu", {"term", "last_log_index", "last_log_term"}},
    {RLOG_MSG_REDIRECT, "su", {"address", "token"}},
    {RLOG_MSG_SHIP_START,
     "uuuuuuuubuwuuu",
     {"nonce", "log_id", "file_size", "first_lsn", "last_lsn", "seq", "seg_first_lsn", "end",
      "sealed", "last_rec_off", "last_rec_crc", "last_rec_lsn", "window", "max_message"}},
    {RLOG_MSG_SHIP_REFUSE, "uws", {"nonce", "code", "message"}},
    {RLOG_MSG_SHIP_TRUNCATE, "uus", {"nonce", "lsn", "message"}},
    {RLOG_MSG_SHIP_ACCEPT,
     "uubuuuuuuf",
     {"nonce", "log_id", "adopt", "file_size", "seq", "first_lsn", "leader_durable", "files_gen",
      "files_upto", "files"}},
    {RLOG_MSG_SHIP_FILES, "uuuf", {"nonce", "gen", "upto", "files"}},
    {RLOG_MSG_SHIP_FILES_OK, "uu", {"nonce", "gen"}},
    {RLOG_MSG_SHIP_FILE_REQ, "usuu", {"nonce", "name", "offset", "len"}},
    {RLOG_MSG_SHIP_FILE_DATA, "usuwuB", {"nonce", "name", "size", "crc", "offset", "data"}},
    {RLOG_MSG_SHIP_DATA,
     "uuuuuuuuB",
     {"nonce", "seq", "seg_first_lsn", "file_size", "off", "seg_end", "leader_durable", "first_seq",
      "bytes"}},
    {RLOG_MSG_SHIP_ACK,
     "uuuuuuw",
     {"nonce", "recv_seq", "recv_off", "durable_seq", "durable_off", "durable_lsn", "flags"}},
    {RLOG_MSG_SHIP_RESTART, "us", {"nonce", "message"}},
    {RLOG_MSG_SHIP_STATUS_REQ, "u", {"request_id"}},
    {RLOG_MSG_SHIP_STATUS,
     "uuuuuup",
     {"request_id", "log_id", "first_lsn", "durable_lsn", "first_seq", "last_seq", "followers"}},
};

/* Bad values: each is wrong for some kinds. */
enum {
    BAD_STR,
    BAD_BIN,
    BAD_NIL,
    BAD_TRUE,
    BAD_FLOAT,
    BAD_MAP,
    BAD_ARRAY,
    BAD_NEG,
    BAD_EXT,
    BAD_U32, /* 2^32: fits a uint64 field only */
    BAD_N
};

static bool bad_is_valid(char kind, int bad)
{
    return (kind == 'u' && bad == BAD_U32) || (kind == 's' && bad == BAD_STR) ||
           (kind == 'B' && bad == BAD_BIN) || (kind == 'b' && bad == BAD_TRUE) ||
           (kind == 't' && (bad == BAD_NIL || bad == BAD_TRUE)) ||
           ((kind == 'e' || kind == 'f' || kind == 'p') && bad == BAD_ARRAY);
}

static void pack_bad(msgpack_packer *pk, int bad)
{
    switch (bad) {
    case BAD_STR:
        msgpack_pack_str_with_body(pk, "x", 1);
        break;
    case BAD_BIN:
        msgpack_pack_bin_with_body(pk, "x", 1);
        break;
    case BAD_NIL:
        msgpack_pack_nil(pk);
        break;
    case BAD_TRUE:
        msgpack_pack_true(pk);
        break;
    case BAD_FLOAT:
        msgpack_pack_double(pk, 1.0);
        break;
    case BAD_MAP:
        msgpack_pack_map(pk, 0);
        break;
    case BAD_ARRAY:
        msgpack_pack_array(pk, 0);
        break;
    case BAD_NEG:
        msgpack_pack_int64(pk, -1);
        break;
    case BAD_U32:
        msgpack_pack_uint64(pk, (uint64_t)UINT32_MAX + 1);
        break;
    default:
        msgpack_pack_ext_with_body(pk, "x", 1, 5);
        break;
    }
}

/* A good value of each kind (chosen so install_snapshot stays consistent:
 * total 0, offset 0, empty chunk, done true). */
static void pack_good(msgpack_packer *pk, char kind)
{
    switch (kind) {
    case 'u':
    case 'w':
        msgpack_pack_uint64(pk, 0);
        break;
    case 's':
        msgpack_pack_str_with_body(pk, "a", 1);
        break;
    case 'b':
    case 't':
        msgpack_pack_true(pk);
        break;
    case 'B':
        msgpack_pack_bin(pk, 0);
        break;
    case 'f': /* one side file ["a", 0, 0] */
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 3);
        msgpack_pack_str_with_body(pk, "a", 1);
        msgpack_pack_uint64(pk, 0);
        msgpack_pack_uint64(pk, 0);
        break;
    case 'p': /* one follower [0, "a", 0, 0, 0, 0, 0, 0, true] */
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 9);
        msgpack_pack_uint64(pk, 0);
        msgpack_pack_str_with_body(pk, "a", 1);
        for (int k = 0; k < 6; k++) {
            msgpack_pack_uint64(pk, 0);
        }
        msgpack_pack_true(pk);
        break;
    default: /* one entry [1, 1, bin ""] */
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, 1);
        msgpack_pack_uint64(pk, 1);
        msgpack_pack_bin(pk, 0);
        break;
    }
}

/* Packs a message of schema `sc`, with field `bad_field` (or none if < 0)
 * replaced by bad value `bad`. */
static void pack_msg(msgpack_sbuffer *sb, const schema *sc, int bad_field, int bad)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t n = strlen(sc->kinds);
    msgpack_pack_array(&pk, n + 2);
    msgpack_pack_uint64(&pk, (uint64_t)sc->type);
    msgpack_pack_uint64(&pk, 1);
    for (size_t f = 0; f < n; f++) {
        if ((int)f == bad_field) {
            pack_bad(&pk, bad);
        } else {
            pack_good(&pk, sc->kinds[f]);
        }
    }
}

/* Every field of every type refuses each value of another kind (a uint32
 * field also refuses 2^32) with an error that names the field; the schema
 * table covers every type the codec knows. */
static void test_wrong_types(void **state)
{
    (void)state;
    for (int t = 0; t < 64; t++) {
        bool known = strcmp(rlog_msg_type_name(t), "unknown") != 0;
        bool listed = false;
        for (size_t s = 0; s < sizeof schemas / sizeof schemas[0]; s++) {
            listed |= schemas[s].type == t;
        }
        if (known != listed) {
            fail_msg("type %d (%s): known %d, in schemas %d", t, rlog_msg_type_name(t), known,
                     listed);
        }
    }
    for (size_t s = 0; s < sizeof schemas / sizeof schemas[0]; s++) {
        const schema *sc = &schemas[s];
        msgpack_sbuffer sb;
        pack_msg(&sb, sc, -1, 0);
        rlog_msg m;
        char err[256];
        int rc = rlog_msg_decode(sb.data, sb.size, 0, &m, err, sizeof err);
        if (rc != 0) {
            fail_msg("good %s: %s", rlog_msg_type_name(sc->type), err);
        }
        rlog_msg_free(&m);
        msgpack_sbuffer_destroy(&sb);
        for (int f = 0; sc->kinds[f]; f++) {
            for (int bad = 0; bad < BAD_N; bad++) {
                if (bad_is_valid(sc->kinds[f], bad)) {
                    continue;
                }
                pack_msg(&sb, sc, f, bad);
                expect_reject(sb.data, sb.size, 0, sc->names[f]);
                msgpack_sbuffer_destroy(&sb);
            }
        }
    }
}

/* Packs [SHIP_FILES, 1, 9, 1, 1, [ELEM]] (files) or [SHIP_STATUS, 1, 0 x6,
 * [ELEM]] (followers) where ELEM has the element kinds `kinds`, field
 * `bad_field` replaced by `bad` (none if < 0), and `extra` more uint
 * fields (-1: the last field left out); then 32 zero bytes when `pad` (so the count check, which
 * wants 5 or 10 bytes per element, lets a short bad element be read). */
static void pack_elem_msg(msgpack_sbuffer *sb, bool files, const char *kinds, int bad_field,
                          int bad, int extra, bool pad)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int before = files ? 3 : 6;
    msgpack_pack_array(&pk, (size_t)before + 3);
    msgpack_pack_uint64(&pk, files ? RLOG_MSG_SHIP_FILES : RLOG_MSG_SHIP_STATUS);
    msgpack_pack_uint64(&pk, 1);
    for (int k = 0; k < before; k++) {
        msgpack_pack_uint64(&pk, files && k == 0 ? 9 : 0);
    }
    int n = (int)strlen(kinds);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, (size_t)(n + extra));
    for (int f = 0; f < n + extra; f++) {
        if (f == bad_field) {
            pack_bad(&pk, bad);
        } else if (f < n) {
            pack_good(&pk, kinds[f]);
        } else {
            msgpack_pack_uint64(&pk, 0);
        }
    }
    if (pad) {
        static const char zeros[32];
        msgpack_sbuffer_write(sb, zeros, sizeof zeros);
    }
}

/* Inside a side file and a status follower, every field refuses each value
 * of another kind, and an element with one field too few or too many is
 * refused; each error names the array, the element's index and the field. */
static void test_wrong_element_fields(void **state)
{
    (void)state;
    static const struct {
        bool files;
        const char *kinds;
        const char *prefix;
        const char *names[9];
    } elems[] = {
        {true, "suw", "ship_files.files[0].", {"name", "size", "crc"}},
        {false,
         "uswuuuuub",
         "ship_status.followers[0].",
         {"id", "name", "state", "durable", "sent", "lag_records", "lag_bytes", "bytes_sent",
          "connected"}},
    };
    for (size_t e = 0; e < sizeof elems / sizeof elems[0]; e++) {
        msgpack_sbuffer sb;
        rlog_msg m;
        char err[256];
        char want[128];
        pack_elem_msg(&sb, elems[e].files, elems[e].kinds, -1, 0, 0, false);
        if (rlog_msg_decode(sb.data, sb.size, 0, &m, err, sizeof err) != 0) {
            fail_msg("good %s: %s", elems[e].prefix, err);
        }
        rlog_msg_free(&m);
        msgpack_sbuffer_destroy(&sb);
        for (int f = 0; elems[e].kinds[f]; f++) {
            snprintf(want, sizeof want, "%s%s at offset", elems[e].prefix, elems[e].names[f]);
            for (int bad = 0; bad < BAD_N; bad++) {
                if (bad_is_valid(elems[e].kinds[f], bad)) {
                    continue;
                }
                pack_elem_msg(&sb, elems[e].files, elems[e].kinds, f, bad, 0, true);
                expect_reject(sb.data, sb.size, 0, want);
                msgpack_sbuffer_destroy(&sb);
            }
        }
        snprintf(want, sizeof want, "%s(element)", elems[e].prefix);
        for (int extra = -1; extra <= 1; extra += 2) { /* one field too few, too many */
            pack_elem_msg(&sb, elems[e].files, elems[e].kinds, -1, 0, extra, true);
            expect_reject(sb.data, sb.size, 0, want);
            msgpack_sbuffer_destroy(&sb);
        }
    }
}

/* Wrong types and shapes inside an AppendEntries entry. */
static void test_wrong_entry_fields(void **state)
{
    (void)state;
    /* [4, 1, 0, 0, 0, 0, [ENTRY]] with ENTRY spelled out below. */
    static const struct {
        const char *field;
        uint8_t bytes[8];
        size_t len;
    } cases[] = {
        {"(entry)", {0x01}, 1},                                           /* not an array */
        {"(entry)", {0x92, 0x01, 0x01}, 3},                               /* 2 elements */
        {"(entry)", {0x94, 0x01, 0x01, 0xc4, 0, 0x01}, 6},                /* 4 elements */
        {"term", {0x93, 0xa1, 'x', 0x01, 0xc4, 0}, 6},                    /* term is a str */
        {"term", {0x93, 0xff, 0x01, 0xc4, 0}, 5},                         /* term negative */
        {"type", {0x93, 0x01, 0xc0, 0xc4, 0}, 5},                         /* type nil */
        {"type", {0x93, 0x01, 0xce, 0, 1, 0, 0, 0xc4}, 8},                /* type 65536 */
        {"payload", {0x93, 0x01, 0x01, 0xa1, 'x'}, 5},                    /* payload is a str */
        {"payload", {0x93, 0x01, 0x01, 0xc0}, 4},                         /* payload nil */
        {"payload", {0x93, 0x01, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff}, 8}, /* past the end */
        {"payload", {0x93, 0x01, 0x01, 0xc5, 0x00}, 5},                   /* length cut */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Zero padding up to 5 bytes so that the entry count check (one
         * entry needs at least 5 bytes) lets the entry itself be read. */
        uint8_t buf[32] = {0x97, 0x04, 0x01, 0, 0, 0, 0, 0x91};
        memcpy(buf + 8, cases[i].bytes, cases[i].len);
        size_t len = cases[i].len < 5 ? 5 : cases[i].len;
        expect_reject(buf, 8 + len, 0, cases[i].field);
    }
    /* The error names the entry's position. */
    uint8_t two[] = {0x97, 0x04, 0x01, 0, 0, 0, 0, 0x92, 0x93, 1, 1, 0xc4, 0, 0x93, 1, 1, 0xc0, 0};
    expect_reject(two, sizeof two, 0, "append_entries.entries[1].payload at offset 16");
}

/* Array headers and str/bin lengths that claim far more than there is. */
static void test_huge_counts_and_lengths(void **state)
{
    (void)state;
    static const uint8_t a1[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t a2[] = {0xdd, 0x10, 0x00, 0x00, 0x00};
    static const uint8_t a3[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x04, 0x01};
    static const uint8_t a4[] = {0xdc, 0xff, 0xff, 0x04, 0x01, 0, 0, 0, 0};
    static const uint8_t a5[] = {0xdd, 0xff};
    expect_reject(a1, sizeof a1, 0, "type");
    expect_reject(a2, sizeof a2, 0, "type");
    expect_reject(a3, sizeof a3, 0, "(array)");
    expect_reject(a4, sizeof a4, 0, "(array)");
    expect_reject(a5, sizeof a5, 0, "(array)");
    /* Entries claiming 2^32-1 and 2^28, with ten real 6-byte entries behind
     * (60 bytes: room for at most 12 minimal entries). */
    uint8_t ae[80] = {0x97, 0x04, 0x01, 0, 0, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff};
    for (int i = 0; i < 10; i++) {
        memcpy(ae + 12 + 6 * i, "\x93\x01\x01\xc4\x01x", 6);
    }
    expect_reject(ae, 72, 0, "entries");
    ae[8] = 0x10, ae[9] = ae[10] = ae[11] = 0;
    expect_reject(ae, 72, 0, "count 268435456 exceeds");
    /* 13 claimed: more than 60 bytes can hold. */
    ae[8] = ae[9] = ae[10] = 0, ae[11] = 13;
    expect_reject(ae, 72, 0, "count 13 exceeds the 12 entries");
    /* 11 claimed, 10 present: passes the count check, fails at the end. */
    ae[11] = 11;
    expect_reject(ae, 72, 0, "entries[10]");
    ae[11] = 10;
    rlog_msg m;
    assert_int_equal(rlog_msg_decode(ae, 72, 0, &m, NULL, 0), 0);
    assert_int_equal(m.u.append_entries.n_entries, 10);
    rlog_msg_free(&m);
    /* str and bin lengths past the end. */
    static const uint8_t h1[] = {0x97, 0x01, 0x01, 0x07, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t h2[] = {0x97, 0x01, 0x01, 0x07, 0xa5, 'a', 'b'};
    static const uint8_t h3[] = {0x97, 0x01, 0x01, 0x07, 0xda, 0x00};
    static const uint8_t s1[] = {0x9b, 0x06, 0x01, 1, 1, 1, 1, 0xc6, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t s2[] = {0x9b, 0x06, 0x01, 1, 1, 1, 1, 0xc4, 0x00, 5, 0, 0xc5, 0x01, 0x00};
    expect_reject(h1, sizeof h1, 0, "address");
    expect_reject(h2, sizeof h2, 0, "address");
    expect_reject(h3, sizeof h3, 0, "address");
    expect_reject(s1, sizeof s1, 0, "conf");
    expect_reject(s2, sizeof s2, 0, "chunk");
}

static void test_unknown_type_version_trailing(void **state)
{
    (void)state;
    static const uint64_t types[] = {0, 10, 15, 29, 31, 99, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint64(&pk, types[i]);
        msgpack_pack_uint64(&pk, 1);
        for (int f = 0; f < 3; f++) {
            msgpack_pack_uint64(&pk, 0);
        }
        expect_reject(sb.data, sb.size, 0, "unknown message type");
        msgpack_sbuffer_destroy(&sb);
    }
    static const uint8_t v0[] = {0x95, 0x08, 0x00, 0, 0, 0};
    static const uint8_t v2[] = {0x95, 0x08, 0x02, 0, 0, 0};
    static const uint8_t vbig[] = {0x95, 0x08, 0xcf, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    static const uint8_t vneg[] = {0x95, 0x08, 0xff, 0, 0, 0};
    expect_reject(v0, sizeof v0, 0, "unsupported version 0");
    expect_reject(v2, sizeof v2, 0, "unsupported version 2");
    expect_reject(vbig, sizeof vbig, 0, "version");
    expect_reject(vneg, sizeof vneg, 0, "negative");
    /* Field count that does not match the type. */
    static const uint8_t few[] = {0x94, 0x08, 0x01, 0, 0};
    static const uint8_t many[] = {0x96, 0x08, 0x01, 0, 0, 0, 0};
    static const uint8_t one[] = {0x91, 0x08};
    static const uint8_t notarr[] = {0x81, 0x08, 0x01};
    expect_reject(few, sizeof few, 0, "version 1 has 5");
    expect_reject(many, sizeof many, 0, "version 1 has 5");
    expect_reject(one, sizeof one, 0, "at least 2");
    expect_reject(notarr, sizeof notarr, 0, "found map");
    /* Trailing bytes after a complete message. */
    static const uint8_t trail[] = {0x95, 0x08, 0x01, 0, 0, 0, 0x95, 0x08, 0x01, 0, 0, 0};
    expect_reject(trail, sizeof trail, 0, "6 trailing bytes");
    rlog_msg m;
    assert_int_equal(rlog_msg_decode(trail, 6, 0, &m, NULL, 0), 0);
    assert_int_equal(m.type, RLOG_MSG_TIMEOUT_NOW);
}

static void test_integer_overflow(void **state)
{
    (void)state;
    /* protocol_version and role one above UINT32_MAX. */
    static const uint8_t h1[] = {0x97, 0x01, 0x01, 0x07, 0xa0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    static const uint8_t h2[] = {0x97, 0x01, 0x01, 0x07, 0xa0, 0x01, 0xcf, 0,
                                 0,    0,    1,    0,    0,    0,    0,    0};
    expect_reject(h1, sizeof h1, 0, "protocol_version");
    expect_reject(h2, sizeof h2, 0, "role");
    /* Negative int64 where a u64 is expected (would wrap to 2^64-1). */
    static const uint8_t neg[] = {0x95, 0x05, 0x01, 0xd3, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0,    0};
    expect_reject(neg, sizeof neg, 0, "term");
    /* install_snapshot: offset + chunk wraps past 2^64; offset > total;
     * done disagreeing with the chunk's end (both ways). */
    rlog_msg m = {.type = RLOG_MSG_INSTALL_SNAPSHOT};
    m.u.install_snapshot =
        (rlog_msg_install_snapshot){1, 1, 1, 1, 0, NULL, 10, 0, 4, "abcd", false};
    void *buf;
    size_t len;
    encode_ok(&m, &buf, &len);
    uint8_t *b = buf;
    /* Layout: 9b 06 01 01 01 01 01 c4 00 0a 00 c4 04 a b c d c2 */
    assert_int_equal(len, 18);
    b[9] = 0x02; /* total 2 < chunk */
    expect_reject(b, len, 0, "run past the snapshot size");
    b[9] = 0x0a, b[10] = 0x0b; /* offset 11 > total 10 */
    expect_reject(b, len, 0, "chunk");
    b[10] = 0x06; /* ends at 10 but done false */
    expect_reject(b, len, 0, "done");
    b[10] = 0x00, b[17] = 0xc3; /* ends at 4 but done true */
    expect_reject(b, len, 0, "done");
    rlog_free(buf);
    /* offset near 2^64 with a chunk that would wrap. */
    m.u.install_snapshot =
        (rlog_msg_install_snapshot){1, 1, 1, 1, 0, NULL, UINT64_MAX, UINT64_MAX - 1, 1, "a", true};
    encode_ok(&m, &buf, &len);
    b = buf;
    assert_int_equal(b[len - 3], 0x01); /* chunk bin8 length */
    b[len - 3] = 0x02, b[len - 2] = 0x01, b[len - 1] = 'x';
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0xc3; /* offset 2^64-2 + 2 bytes: wraps to 0 */
    expect_reject(longer, len + 1, 0, "run past");
    free(longer);
    rlog_free(buf);
}

static void test_max_bytes(void **state)
{
    (void)state;
    rlog_msg s[N_SAMPLES];
    samples(s);
    void *buf;
    size_t len;
    encode_ok(&s[0], &buf, &len);
    expect_reject(buf, len, len - 1, "exceed the limit");
    expect_reject(buf, len, 1, "exceed the limit");
    rlog_msg m;
    assert_int_equal(rlog_msg_decode(buf, len, len, &m, NULL, 0), 0);
    rlog_msg_free(&m);
    rlog_free(buf);
    /* A buffer over the default limit is refused before it is read. */
    size_t big = (size_t)RLOG_WIRE_MAX_BYTES_DEFAULT + 1;
    uint8_t *p = calloc(1, big);
    assert_non_null(p);
    expect_reject(p, big, 0, "exceed the limit");
    free(p);
}

static void test_encode_invalid(void **state)
{
    (void)state;
    void *buf = (void *)1;
    size_t len = 1;
    rlog_msg m = {.type = 0};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL);
    assert_null(buf);
    assert_int_equal(len, 0);
    m.type = 99;
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL);
    m.type = RLOG_MSG_HELLO;
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL); /* NULL address */
    char addr[RLOG_WIRE_ADDRESS_MAX + 2];
    memset(addr, 'x', sizeof addr - 1);
    addr[sizeof addr - 1] = '\0';
    m.u.hello.address = addr;
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL); /* too long */
    m.type = RLOG_MSG_APPEND_ENTRIES;
    m.u.append_entries = (rlog_msg_append_entries){1, 0, 0, 0, 2, NULL};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL);
    rlog_msg_entry e = {1, 1, 3, NULL};
    m.u.append_entries = (rlog_msg_append_entries){1, 0, 0, 0, 1, &e};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL);
    m.type = RLOG_MSG_REQUEST_VOTE_RESULT;
    m.u.request_vote_result = (rlog_msg_request_vote_result){1, true, (rlog_msg_tribool)3};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL);
    m.type = RLOG_MSG_INSTALL_SNAPSHOT;
    m.u.install_snapshot = (rlog_msg_install_snapshot){1, 1, 1, 1, 0, NULL, 3, 2, 2, "ab", true};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL); /* past total */
    m.u.install_snapshot = (rlog_msg_install_snapshot){1, 1, 1, 1, 0, NULL, 4, 2, 2, "ab", false};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL); /* done disagrees */
    m.u.install_snapshot = (rlog_msg_install_snapshot){1, 1, 1, 1, 2, NULL, 4, 2, 2, "ab", true};
    assert_int_equal(rlog_msg_encode(&m, &buf, &len), RLOG_EINVAL); /* NULL conf */
    assert_int_equal(rlog_msg_encode(NULL, &buf, &len), RLOG_EINVAL);
    assert_int_equal(rlog_msg_decode(NULL, 1, 0, &m, NULL, 0), RLOG_EINVAL);
    /* A NUL inside a decoded address is refused. */
    static const uint8_t nul[] = {0x97, 0x01, 0x01, 0x07, 0xa3, 'a', 0, 'b', 1, 1, 0};
    expect_reject(nul, sizeof nul, 0, "NUL");
    static const uint8_t empty[1] = {0};
    assert_int_equal(rlog_msg_decode(empty, 0, 0, &m, NULL, 0), RLOG_EPROTO);
}

/* ---- segment shipping: checks beyond the field kinds ---------------------- */

/* Packs [type, 1, nonce 9, gen 1, upto 1, files] where files holds `n`
 * elements [name, 0, 0] with the given names. */
static void pack_files_msg(msgpack_sbuffer *sb, const char *const *names, const size_t *lens, int n)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, RLOG_MSG_SHIP_FILES);
    msgpack_pack_uint64(&pk, 1);
    for (int k = 0; k < 3; k++) {
        msgpack_pack_uint64(&pk, k == 0 ? 9 : 1);
    }
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_str_with_body(&pk, names[i], lens[i]);
        msgpack_pack_uint64(&pk, 0);
        msgpack_pack_uint64(&pk, 0);
    }
}

/* Side-file names: empty, with '/', with NUL, one byte too long are
 * refused, and the error names the element's index; texts over 1024 bytes
 * are refused; a file chunk past the file's size, segment bytes past the
 * sealed end or overflowing the offset range are refused; the shipping
 * arrays' counts are checked against the remaining bytes before anything
 * is allocated. The encoder refuses each of these too. */
static void test_ship_rejections(void **state)
{
    (void)state;
    char toolong[RLOG_WIRE_NAME_MAX + 1];
    memset(toolong, 'x', sizeof toolong);
    const char *good = "snapshot-1.snap";
    const struct {
        const char *name;
        size_t len;
        const char *want;
    } bad[] = {{"", 0, "empty name"},
               {"../x", 4, "contains '/'"},
               {"a\0b", 3, "NUL"},
               {toolong, sizeof toolong, "exceed the maximum 255"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *names[2] = {good, bad[i].name};
        size_t lens[2] = {strlen(good), bad[i].len};
        msgpack_sbuffer sb;
        pack_files_msg(&sb, names, lens, 2);
        expect_reject(sb.data, sb.size, 0, "ship_files.files[1].name");
        expect_reject(sb.data, sb.size, 0, bad[i].want);
        msgpack_sbuffer_destroy(&sb);
    }
    /* The longest name passes. */
    const char *names[1] = {toolong};
    size_t lens[1] = {RLOG_WIRE_NAME_MAX};
    msgpack_sbuffer sb;
    pack_files_msg(&sb, names, lens, 1);
    rlog_msg m;
    assert_int_equal(rlog_msg_decode(sb.data, sb.size, 0, &m, NULL, 0), 0);
    assert_int_equal(strlen(m.u.ship_files.files[0].name), RLOG_WIRE_NAME_MAX);
    rlog_msg_free(&m);
    msgpack_sbuffer_destroy(&sb);

    /* An element of the wrong length. */
    static const uint8_t elem2[] = {0x96, 0x14, 0x01, 9, 1, 1, 0x91, 0x92, 0xa1, 'a', 0, 0, 0};
    expect_reject(elem2, sizeof elem2, 0, "ship_files.files[0].(element) at offset 7");
    /* Counts far beyond the bytes: 2^32-1 files, 2^28 followers. */
    static const uint8_t files_huge[] = {0x96, 0x14, 0x01, 9,    1,    1,   0xdd, 0xff,
                                         0xff, 0xff, 0xff, 0x93, 0xa1, 'a', 0,    0};
    expect_reject(files_huge, sizeof files_huge, 0, "count 4294967295 exceeds");
    static const uint8_t peers_huge[] = {0x99, 0x1c, 0x01, 0, 0,    0, 0, 0, 0, 0xdd, 0x10, 0,
                                         0,    0,    0x99, 0, 0xa0, 0, 0, 0, 0, 0,    0,    0xc3};
    expect_reject(peers_huge, sizeof peers_huge, 0, "followers at offset 9: count 268435456");

    /* A text one byte over the limit, in every message that has one. */
    char text[RLOG_WIRE_TEXT_MAX + 2];
    memset(text, 't', sizeof text);
    text[RLOG_WIRE_TEXT_MAX + 1] = '\0';
    static const int text_types[] = {RLOG_MSG_SHIP_REFUSE, RLOG_MSG_SHIP_TRUNCATE,
                                     RLOG_MSG_SHIP_RESTART};
    for (size_t i = 0; i < 3; i++) {
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        bool two = text_types[i] == RLOG_MSG_SHIP_RESTART;
        msgpack_pack_array(&pk, two ? 4 : 5);
        msgpack_pack_uint64(&pk, (uint64_t)text_types[i]);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 9);
        if (!two) {
            msgpack_pack_uint64(&pk, 1);
        }
        msgpack_pack_str_with_body(&pk, text, RLOG_WIRE_TEXT_MAX + 1);
        expect_reject(sb.data, sb.size, 0, "message");
        msgpack_sbuffer_destroy(&sb);
        rlog_msg e = {.type = text_types[i]};
        e.u.ship_refuse.message = text; /* same place in refuse, truncate */
        e.u.ship_truncate.message = text;
        e.u.ship_restart.message = text;
        void *buf;
        size_t len;
        assert_int_equal(rlog_msg_encode(&e, &buf, &len), RLOG_EINVAL);
    }

    /* ship_file_data: 5 bytes at offset 6 of a 10-byte file. */
    rlog_msg fd = {.type = RLOG_MSG_SHIP_FILE_DATA};
    fd.u.ship_file_data = (rlog_msg_ship_file_data){9, "a", 11, 1, 6, 5, sample_bytes};
    void *buf;
    size_t len;
    encode_ok(&fd, &buf, &len);
    /* Layout: 98 17 01 09 a1 'a' 0b 01 06 c4 05 <5 bytes> */
    assert_int_equal(len, 16);
    uint8_t *b = buf;
    b[6] = 10; /* size 10 < 6 + 5 */
    expect_reject(b, len, 0, "run past the file size 10");
    b[6] = 5, b[8] = 0; /* offset 0 but size 5: fits */
    assert_int_equal(rlog_msg_decode(b, len, 0, &m, NULL, 0), 0);
    rlog_msg_free(&m);
    b[8] = 6; /* offset 6 > size 5 */
    expect_reject(b, len, 0, "data");
    rlog_free(buf);
    fd.u.ship_file_data.size = 10;
    assert_int_equal(rlog_msg_encode(&fd, &buf, &len), RLOG_EINVAL);
    fd.u.ship_file_data = (rlog_msg_ship_file_data){9, "a/b", 11, 1, 6, 5, sample_bytes};
    assert_int_equal(rlog_msg_encode(&fd, &buf, &len), RLOG_EINVAL);
    fd.u.ship_file_data = (rlog_msg_ship_file_data){9, "a", 11, 1, 6, 5, NULL};
    assert_int_equal(rlog_msg_encode(&fd, &buf, &len), RLOG_EINVAL);

    /* ship_data: 5 bytes at 64 of a segment sealed at 69. */
    rlog_msg d = {.type = RLOG_MSG_SHIP_DATA};
    d.u.ship_data = (rlog_msg_ship_data){9, 4, 300, 4096, 64, 69, 310, 1, 5, sample_bytes};
    encode_ok(&d, &buf, &len);
    /* Layout: 9b 18 01 09 04 cd 01 2c cd 10 00 40 45 cd 01 36 01 c4 05 <5> */
    assert_int_equal(len, 24);
    b = buf;
    assert_int_equal(b[12], 69);
    b[12] = 68;
    expect_reject(b, len, 0, "run past the segment end 68");
    rlog_free(buf);
    d.u.ship_data.seg_end = 68;
    assert_int_equal(rlog_msg_encode(&d, &buf, &len), RLOG_EINVAL);
    d.u.ship_data.seg_end = 0;
    d.u.ship_data.off = UINT64_MAX - 4; /* 5 bytes from there wrap */
    assert_int_equal(rlog_msg_encode(&d, &buf, &len), RLOG_EINVAL);
    d.u.ship_data.off = UINT64_MAX - 5;
    encode_ok(&d, &buf, &len);
    b = buf;
    /* off is a uint64 (cf ff .. fa) at index 11..19: make it 2^64-2. */
    assert_int_equal(b[11], 0xcf);
    b[19] = 0xfe;
    expect_reject(b, len, 0, "overflow");
    rlog_free(buf);

    /* Encoder: files and followers arrays without elements, bad names. */
    rlog_msg f = {.type = RLOG_MSG_SHIP_FILES};
    f.u.ship_files = (rlog_msg_ship_files){9, 1, 1, 2, NULL};
    assert_int_equal(rlog_msg_encode(&f, &buf, &len), RLOG_EINVAL);
    rlog_msg_ship_file bad_file = {"", 0, 0};
    f.u.ship_files = (rlog_msg_ship_files){9, 1, 1, 1, &bad_file};
    assert_int_equal(rlog_msg_encode(&f, &buf, &len), RLOG_EINVAL);
    bad_file.name = NULL;
    assert_int_equal(rlog_msg_encode(&f, &buf, &len), RLOG_EINVAL);
    rlog_msg st = {.type = RLOG_MSG_SHIP_STATUS};
    st.u.ship_status = (rlog_msg_ship_status){1, 1, 1, 1, 1, 1, 1, NULL};
    assert_int_equal(rlog_msg_encode(&st, &buf, &len), RLOG_EINVAL);
    rlog_msg_ship_peer bad_peer = {1, text, 0, 0, 0, 0, 0, 0, true};
    st.u.ship_status = (rlog_msg_ship_status){1, 1, 1, 1, 1, 1, 1, &bad_peer};
    assert_int_equal(rlog_msg_encode(&st, &buf, &len), RLOG_EINVAL);
    rlog_msg q = {.type = RLOG_MSG_SHIP_FILE_REQ};
    q.u.ship_file_req = (rlog_msg_ship_file_req){9, "", 0, 1};
    assert_int_equal(rlog_msg_encode(&q, &buf, &len), RLOG_EINVAL);
}

/* ---- random mutations ----------------------------------------------------- */

static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
                                      0xc3, 0xc4, 0xc5, 0xc6, 0xcc, 0xcd, 0xce, 0xcf, 0xd0,
                                      0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xe0, 0xff};

/* Applies 1..4 random edits to buf (capacity cap), returns the new length. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    int edits = 1 + (int)(rng() % 4);
    for (int k = 0; k < edits; k++) {
        size_t at = len ? (size_t)(rng() % len) : 0;
        switch (rng() % 6) {
        case 0:
            if (len) {
                buf[at] ^= (uint8_t)(1u << (rng() % 8));
            }
            break;
        case 1:
            if (len) {
                buf[at] = (uint8_t)rng();
            }
            break;
        case 2:
            if (len) {
                buf[at] = interesting[rng() % sizeof interesting];
            }
            break;
        case 3: /* insert a byte */
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rng();
                len++;
            }
            break;
        case 4: /* delete a byte */
            if (len) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        default: /* truncate */
            len = len ? (size_t)(rng() % len) : 0;
            break;
        }
    }
    return len;
}

/* Decodes an exact-size copy; when it decodes, re-encodes and decodes again
 * and checks equality. Returns whether it decoded. */
static bool check_input(const uint8_t *data, size_t len)
{
    uint8_t *copy = dup_exact(data, len);
    rlog_msg m;
    char err[256];
    int rc = rlog_msg_decode(copy, len, 0, &m, err, sizeof err);
    if (rc != 0) {
        assert_int_equal(rc, RLOG_EPROTO);
        assert_true(strlen(err) > 0);
        free(copy);
        return false;
    }
    void *buf;
    size_t blen;
    encode_ok(&m, &buf, &blen);
    rlog_msg again;
    assert_int_equal(rlog_msg_decode(buf, blen, 0, &again, NULL, 0), 0);
    assert_true(rlg_msg_equal(&m, &again));
    rlog_msg_free(&again);
    rlog_free(buf);
    rlog_msg_free(&m);
    free(copy);
    return true;
}

static void test_random_mutations(void **state)
{
    (void)state;
    rlog_msg s[N_SAMPLES];
    samples(s);
    void *enc[N_SAMPLES];
    size_t enc_len[N_SAMPLES];
    for (int i = 0; i < N_SAMPLES; i++) {
        encode_ok(&s[i], &enc[i], &enc_len[i]);
    }
    rng_state = 0x5eed0fc0dec0ffeeull;
    unsigned decoded = 0;
    enum { N = 20000 };
    uint8_t work[2048];
    for (unsigned it = 0; it < N; it++) {
        int i = (int)(rng() % N_SAMPLES);
        assert_true(enc_len[i] + 8 <= sizeof work);
        memcpy(work, enc[i], enc_len[i]);
        size_t len = mutate(work, enc_len[i], enc_len[i] + 8);
        decoded += check_input(work, len);
    }
    /* Most mutations must be rejected, some must survive (e.g. a changed
     * value), otherwise the loop is not exercising anything. */
    print_message("%u of %u mutated messages decoded\n", decoded, (unsigned)N);
    assert_true(decoded > 0 && decoded < N);
    for (int i = 0; i < N_SAMPLES; i++) {
        rlog_free(enc[i]);
    }
}

/* Decodes headers that claim 2^28 and 2^32-1 elements; returns 0 when each
 * is refused with RLOG_EPROTO, else 10 + the index of the first that is not
 * (RLOG_ENOMEM means the decoder tried to allocate for the claim). */
static int decode_hostile_headers(void)
{
    static const uint8_t hdr[][12] = {{0x97, 0x04, 0x01, 0, 0, 0, 0, 0xdd, 0x10, 0x00, 0x00, 0x00},
                                      {0x97, 0x04, 0x01, 0, 0, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff},
                                      {0x97, 0x04, 0x01, 0, 0, 0, 0, 0xdc, 0xff, 0xff, 0x93, 0x01},
                                      {0xdd, 0x10, 0x00, 0x00, 0x00, 0x04, 0x01, 0, 0, 0, 0, 0x90}};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        rlog_msg m;
        if (rlog_msg_decode(hdr[i], sizeof hdr[i], 0, &m, NULL, 0) != RLOG_EPROTO) {
            return 10 + (int)i;
        }
    }
    return 0;
}

/* The hostile headers with allocations capped: under ASan by
 * max_allocation_size_mb (see __asan_default_options), otherwise in a child
 * whose address space is capped at its current size + 128 MiB. An
 * allocation driven by a claimed count then fails and shows up as
 * RLOG_ENOMEM instead of RLOG_EPROTO. */
static void test_bounded_memory(void **state)
{
    (void)state;
    if (TEST_ASAN) {
        assert_int_equal(decode_hostile_headers(), 0);
        return;
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f == NULL || fscanf(f, "%ld", &pages) != 1) {
            _exit(2);
        }
        fclose(f);
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (128u << 20);
        struct rlimit rl = {cap, cap};
        if (setrlimit(RLIMIT_AS, &rl) != 0) {
            _exit(3);
        }
        _exit(decode_hostile_headers());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_roundtrip_large_append),
        cmocka_unit_test(test_non_canonical_accepted),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_wrong_entry_fields),
        cmocka_unit_test(test_wrong_element_fields),
        cmocka_unit_test(test_huge_counts_and_lengths),
        cmocka_unit_test(test_unknown_type_version_trailing),
        cmocka_unit_test(test_integer_overflow),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_encode_invalid),
        cmocka_unit_test(test_ship_rejections),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_bounded_memory),
    };
    return TU_RUN("transport_codec", tests, NULL, NULL);
}
