/*
 * The wire codec's schema: every message type's fields in wire order
 * (docs/wire.md is the specification). transport/codec.c encodes, decodes,
 * compares and sizes a message from these tables alone.
 *
 * Every message is one msgpack array [type, version, fields...]; the number
 * of fields is fixed per (type, version). "uint" is any msgpack integer
 * format holding a non-negative value that fits the field; "bin" is
 * bin8/16/32; "str" is fixstr/str8/16/32; "bool" is true/false.
 *
 *   type                          fields after [type, 1, ...]
 *   1 hello                       server_id uint64, address str (<= 1024 bytes,
 *                                 no NUL), protocol_version uint32, role uint32,
 *                                 flags uint64
 *   2 request_vote                term, candidate_id, last_log_index,
 *                                 last_log_term (uint64), disrupt_leader bool,
 *                                 pre_vote bool
 *   3 request_vote_result         term uint64, vote_granted bool,
 *                                 pre_vote nil|bool (unknown|false/true)
 *   4 append_entries              term, prev_log_index, prev_log_term,
 *                                 leader_commit (uint64), entries array of
 *                                 [term uint64, type uint16, payload bin]
 *   5 append_entries_result       term, rejected, last_log_index (uint64)
 *   6 install_snapshot            term, last_index, last_term, conf_index
 *                                 (uint64), conf bin, total, offset (uint64),
 *                                 chunk bin, done bool
 *   7 install_snapshot_result     term, last_index, next_offset (uint64)
 *   8 timeout_now                 term, last_log_index, last_log_term (uint64)
 *   9 redirect                    address str (<= 1024 bytes, no NUL), token uint64
 *
 * Segment shipping (docs/shipping.md). "text" is a str of <= 1024 bytes
 * without NUL; "name" a str of 1..255 bytes without NUL or '/'; "files" an
 * array of [name, size uint64, crc uint32]; "peers" an array of [id uint64,
 * name text, state uint32, durable, sent, lag_records, lag_bytes,
 * bytes_sent (uint64), connected bool].
 *   16 ship_start                 nonce, log_id, file_size, first_lsn, last_lsn,
 *                                 seq, seg_first_lsn, end (uint64), sealed bool,
 *                                 last_rec_off uint64, last_rec_crc uint32,
 *                                 last_rec_lsn, window, max_message (uint64)
 *   17 ship_refuse                nonce uint64, code uint32, message text
 *   18 ship_truncate              nonce, lsn (uint64), message text
 *   19 ship_accept                nonce, log_id (uint64), adopt bool, file_size,
 *                                 seq, first_lsn, leader_durable, files_gen,
 *                                 files_upto (uint64), files
 *   20 ship_files                 nonce, gen, upto (uint64), files
 *   21 ship_files_ok              nonce, gen (uint64)
 *   22 ship_file_req              nonce uint64, name, offset, len (uint64)
 *   23 ship_file_data             nonce uint64, name, size uint64, crc uint32,
 *                                 offset uint64, data bin (offset + len <= size)
 *   24 ship_data                  nonce, seq, seg_first_lsn, file_size, off,
 *                                 seg_end, leader_durable, first_seq (uint64),
 *                                 bytes bin
 *                                 (off + len fits; seg_end 0 or >= off + len)
 *   25 ship_ack                   nonce, recv_seq, recv_off, durable_seq,
 *                                 durable_off, durable_lsn (uint64), flags uint32
 *   26 ship_restart               nonce uint64, message text
 *   27 ship_status_req            request_id uint64
 *   28 ship_status                request_id, log_id, first_lsn, durable_lsn,
 *                                 first_seq, last_seq (uint64), peers
 *
 * A decoded message makes at most one allocation: its one str field, or
 * its one array with the strings of its elements (codec.c asserts it).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "transport/codec_internal.h"

/* Each table below is written with BODY defined as the struct it
 * describes; a field's wire name is its member's name. */
/* clang-format off */
#define U64(f)       {.name = #f, .type = CODEC_U64, .off = offsetof(BODY, f)}
#define U32(f)       {.name = #f, .type = CODEC_U32, .off = offsetof(BODY, f)}
#define U16(f)       {.name = #f, .type = CODEC_U16, .off = offsetof(BODY, f)}
#define BOOL(f)      {.name = #f, .type = CODEC_BOOL, .off = offsetof(BODY, f)}
#define TRIBOOL(f)   {.name = #f, .type = CODEC_TRIBOOL, .off = offsetof(BODY, f)}
#define STR(f, kind) {.name = #f, .type = CODEC_STR, .str = (kind), .off = offsetof(BODY, f)}
/* A bin: its pointer member f, its size_t length member n. */
#define BIN(f, n)    {.name = #f, .type = CODEC_BIN, .off = offsetof(BODY, f), .len_off = offsetof(BODY, n)}
/* An array: its pointer member f, its uint32_t count member n, the codec_array a. */
#define ARRAY(f, n, a) \
    {.name = #f, .type = CODEC_ARRAY, .off = offsetof(BODY, f), .len_off = offsetof(BODY, n), .array = &(a)}
/* A bin that holds bytes [o, o + n) of something (`what`) of t bytes. */
#define PART(f, n, what, o, t) \
    {.name = #f, .type = CODEC_BIN, .off = offsetof(BODY, f), .len_off = offsetof(BODY, n), \
     .part = (what), .part_off = offsetof(BODY, o), .total_off = offsetof(BODY, t)}
/* A bin or a bool with a rule between it and the fields before it. */
#define BIN_RULE(f, n, r) \
    {.name = #f, .type = CODEC_BIN, .off = offsetof(BODY, f), .len_off = offsetof(BODY, n), .rule = (r)}
#define BOOL_RULE(f, r) {.name = #f, .type = CODEC_BOOL, .off = offsetof(BODY, f), .rule = (r)}
/* clang-format on */
#define COUNT(t) ((unsigned)(sizeof(t) / sizeof((t)[0])))
/* The elements of an array field: structs of type T described by `fields`. */
#define ELEMENTS(label, noun, plural, min_bytes, T, fields)                                        \
    {                                                                                              \
        (label), (noun), (plural), (min_bytes), sizeof(T), (fields), COUNT(fields)                 \
    }

/* ------------------------------------------------------------------------
 * Rules between fields
 * ---------------------------------------------------------------------- */

/* `done` says whether this chunk is the last (after the chunk's part
 * check held). */
static bool done_matches(const void *body, char *why, size_t cap)
{
    const rlog_msg_install_snapshot *s = body;
    if (s->done == (s->offset + s->chunk_len == s->total)) {
        return true;
    }
    snprintf(why, cap, "%s but the chunk ends at %" PRIu64 " of %" PRIu64,
             s->done ? "true" : "false", s->offset + s->chunk_len, s->total);
    return false;
}

static bool ship_bytes_fit(const void *body, char *why, size_t cap)
{
    const rlog_msg_ship_data *d = body;
    if (d->len > UINT64_MAX - d->off) {
        snprintf(why, cap, "offset %" PRIu64 " + %zu bytes overflow", d->off, d->len);
        return false;
    }
    if (d->seg_end != 0 && d->off + d->len > d->seg_end) {
        snprintf(why, cap, "offset %" PRIu64 " + %zu bytes run past the segment end %" PRIu64,
                 d->off, d->len, d->seg_end);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------
 * The elements of the array fields
 * ---------------------------------------------------------------------- */

#define BODY rlog_msg_entry
static const codec_field entry_fields[] = {U64(term),
                                           U16(type),
                                           {.name = "payload",
                                            .type = CODEC_BIN32,
                                            .off = offsetof(BODY, data),
                                            .len_off = offsetof(BODY, len)}};
#undef BODY
static const codec_array entry_array = ELEMENTS(
    "(entry)", "entry", "entries", RLOG_WIRE_ENTRY_MIN_BYTES, rlog_msg_entry, entry_fields);

#define BODY rlog_msg_ship_file
static const codec_field file_fields[] = {STR(name, STR_NAME), U64(size), U32(crc)};
#undef BODY
static const codec_array file_array =
    ELEMENTS("(element)", "element", "elements", RLOG_WIRE_SHIP_FILE_MIN_BYTES, rlog_msg_ship_file,
             file_fields);

#define BODY rlog_msg_ship_peer
static const codec_field peer_fields[] = {U64(id),        STR(name, STR_TEXT), U32(state),
                                          U64(durable),   U64(sent),           U64(lag_records),
                                          U64(lag_bytes), U64(bytes_sent),     BOOL(connected)};
#undef BODY
static const codec_array peer_array =
    ELEMENTS("(element)", "element", "elements", RLOG_WIRE_SHIP_PEER_MIN_BYTES, rlog_msg_ship_peer,
             peer_fields);

/* ------------------------------------------------------------------------
 * The messages
 * ---------------------------------------------------------------------- */

#define BODY rlog_msg_hello
static const codec_field hello[] = {U64(server_id), STR(address, STR_ADDRESS),
                                    U32(protocol_version), U32(role), U64(flags)};
#undef BODY

#define BODY rlog_msg_request_vote
static const codec_field request_vote[] = {
    U64(term),          U64(candidate_id),    U64(last_log_index),
    U64(last_log_term), BOOL(disrupt_leader), BOOL(pre_vote)};
#undef BODY

#define BODY rlog_msg_request_vote_result
static const codec_field request_vote_result[] = {U64(term), BOOL(vote_granted), TRIBOOL(pre_vote)};
#undef BODY

#define BODY rlog_msg_append_entries
static const codec_field append_entries[] = {U64(term), U64(prev_log_index), U64(prev_log_term),
                                             U64(leader_commit),
                                             ARRAY(entries, n_entries, entry_array)};
#undef BODY

#define BODY rlog_msg_append_entries_result
static const codec_field append_entries_result[] = {U64(term), U64(rejected), U64(last_log_index)};
#undef BODY

#define BODY rlog_msg_install_snapshot
static const codec_field install_snapshot[] = {U64(term),
                                               U64(last_index),
                                               U64(last_term),
                                               U64(conf_index),
                                               BIN(conf, conf_len),
                                               U64(total),
                                               U64(offset),
                                               PART(chunk, chunk_len, "snapshot", offset, total),
                                               BOOL_RULE(done, done_matches)};
#undef BODY

#define BODY rlog_msg_install_snapshot_result
static const codec_field install_snapshot_result[] = {U64(term), U64(last_index), U64(next_offset)};
#undef BODY

#define BODY rlog_msg_timeout_now
static const codec_field timeout_now[] = {U64(term), U64(last_log_index), U64(last_log_term)};
#undef BODY

#define BODY rlog_msg_redirect
static const codec_field redirect[] = {STR(address, STR_ADDRESS), U64(token)};
#undef BODY

#define BODY rlog_msg_ship_start
static const codec_field ship_start[] = {
    U64(nonce),        U64(log_id),        U64(file_size), U64(first_lsn),  U64(last_lsn),
    U64(seq),          U64(seg_first_lsn), U64(end),       BOOL(sealed),    U64(last_rec_off),
    U32(last_rec_crc), U64(last_rec_lsn),  U64(window),    U64(max_message)};
#undef BODY

#define BODY rlog_msg_ship_refuse
static const codec_field ship_refuse[] = {U64(nonce), U32(code), STR(message, STR_TEXT)};
#undef BODY

#define BODY rlog_msg_ship_truncate
static const codec_field ship_truncate[] = {U64(nonce), U64(lsn), STR(message, STR_TEXT)};
#undef BODY

#define BODY rlog_msg_ship_accept
static const codec_field ship_accept[] = {U64(nonce),
                                          U64(log_id),
                                          BOOL(adopt),
                                          U64(file_size),
                                          U64(seq),
                                          U64(first_lsn),
                                          U64(leader_durable),
                                          U64(files_gen),
                                          U64(files_upto),
                                          ARRAY(files, n_files, file_array)};
#undef BODY

#define BODY rlog_msg_ship_files
static const codec_field ship_files[] = {U64(nonce), U64(gen), U64(upto),
                                         ARRAY(files, n_files, file_array)};
#undef BODY

#define BODY rlog_msg_ship_files_ok
static const codec_field ship_files_ok[] = {U64(nonce), U64(gen)};
#undef BODY

#define BODY rlog_msg_ship_file_req
static const codec_field ship_file_req[] = {U64(nonce), STR(name, STR_NAME), U64(offset), U64(len)};
#undef BODY

#define BODY rlog_msg_ship_file_data
static const codec_field ship_file_data[] = {U64(nonce),  STR(name, STR_NAME),
                                             U64(size),   U32(crc),
                                             U64(offset), PART(data, len, "file", offset, size)};
#undef BODY

#define BODY rlog_msg_ship_data
static const codec_field ship_data[] = {
    U64(nonce),          U64(seq),       U64(seg_first_lsn),
    U64(file_size),      U64(off),       U64(seg_end),
    U64(leader_durable), U64(first_seq), BIN_RULE(bytes, len, ship_bytes_fit)};
#undef BODY

#define BODY rlog_msg_ship_ack
static const codec_field ship_ack[] = {U64(nonce),       U64(recv_seq),    U64(recv_off),
                                       U64(durable_seq), U64(durable_off), U64(durable_lsn),
                                       U32(flags)};
#undef BODY

#define BODY rlog_msg_ship_restart
static const codec_field ship_restart[] = {U64(nonce), STR(message, STR_TEXT)};
#undef BODY

#define BODY rlog_msg_ship_status_req
static const codec_field ship_status_req[] = {U64(request_id)};
#undef BODY

#define BODY rlog_msg_ship_status
static const codec_field ship_status[] = {U64(request_id),
                                          U64(log_id),
                                          U64(first_lsn),
                                          U64(durable_lsn),
                                          U64(first_seq),
                                          U64(last_seq),
                                          ARRAY(followers, n_followers, peer_array)};
#undef BODY

#define SCHEMA(type, t) [type] = {#t, t, COUNT(t)}
static const codec_schema schemas[] = {
    SCHEMA(RLOG_MSG_HELLO, hello),
    SCHEMA(RLOG_MSG_REQUEST_VOTE, request_vote),
    SCHEMA(RLOG_MSG_REQUEST_VOTE_RESULT, request_vote_result),
    SCHEMA(RLOG_MSG_APPEND_ENTRIES, append_entries),
    SCHEMA(RLOG_MSG_APPEND_ENTRIES_RESULT, append_entries_result),
    SCHEMA(RLOG_MSG_INSTALL_SNAPSHOT, install_snapshot),
    SCHEMA(RLOG_MSG_INSTALL_SNAPSHOT_RESULT, install_snapshot_result),
    SCHEMA(RLOG_MSG_TIMEOUT_NOW, timeout_now),
    SCHEMA(RLOG_MSG_REDIRECT, redirect),
    SCHEMA(RLOG_MSG_SHIP_START, ship_start),
    SCHEMA(RLOG_MSG_SHIP_REFUSE, ship_refuse),
    SCHEMA(RLOG_MSG_SHIP_TRUNCATE, ship_truncate),
    SCHEMA(RLOG_MSG_SHIP_ACCEPT, ship_accept),
    SCHEMA(RLOG_MSG_SHIP_FILES, ship_files),
    SCHEMA(RLOG_MSG_SHIP_FILES_OK, ship_files_ok),
    SCHEMA(RLOG_MSG_SHIP_FILE_REQ, ship_file_req),
    SCHEMA(RLOG_MSG_SHIP_FILE_DATA, ship_file_data),
    SCHEMA(RLOG_MSG_SHIP_DATA, ship_data),
    SCHEMA(RLOG_MSG_SHIP_ACK, ship_ack),
    SCHEMA(RLOG_MSG_SHIP_RESTART, ship_restart),
    SCHEMA(RLOG_MSG_SHIP_STATUS_REQ, ship_status_req),
    SCHEMA(RLOG_MSG_SHIP_STATUS, ship_status)};

const codec_schema *rlg_codec_schema(uint64_t type)
{
    if (type >= COUNT(schemas) || schemas[type].name == NULL) {
        return NULL;
    }
    return &schemas[type];
}

const char *rlog_msg_type_name(int type)
{
    const codec_schema *s = type < 0 ? NULL : rlg_codec_schema((uint64_t)type);
    return s != NULL ? s->name : "unknown";
}
