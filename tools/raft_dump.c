/*
 * Raft records in `rlog dump`: the structured JSON fields (per entry: index,
 * term, type, len; the hard state; truncations; snapshot markers), the
 * index range of a batch record (--from-index/--to-index), and --decode
 * for entries (each entry's payload piped to the user's command). Decoding
 * uses the Raft layer's codec (raft_storage/codec.h); docs/cli.md,
 * "rlog dump", has the JSON fields.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_storage/codec.h"
#include "tools/cli.h"

static bool raft_decode(const rlog_record *rec, rlg_rec *r)
{
    char why[200];
    return rlg_rec_decode(rec->type, rec->data, rec->len, r, why, sizeof why) == 0;
}

bool cli_raft_entry_range(const rlog_record *rec, uint64_t *first, uint64_t *last)
{
    rlg_rec r;
    if (rec->type != RLOG_RS_TYPE_ENTRIES || !raft_decode(rec, &r) || r.u.batch.count == 0)
        return false;
    *first = r.u.batch.first_index;
    *last = r.u.batch.first_index + r.u.batch.count - 1;
    return true;
}

void cli_raft_json_fields(const rlog_record *rec, FILE *out)
{
    rlg_rec r;
    if (!raft_decode(rec, &r))
        return;
    switch (rec->type) {
    case RLOG_RS_TYPE_HARD_STATE:
        fprintf(out,
                ",\"hard_state\":{\"term\":%" PRIu64 ",\"vote\":%" PRIu64 ",\"commit\":%" PRIu64
                "}",
                r.u.hs.term, r.u.hs.vote, r.u.hs.commit);
        break;
    case RLOG_RS_TYPE_ENTRIES:
        fputs(",\"entries\":[", out);
        for (uint32_t k = 0; k < r.u.batch.count; k++) {
            rlog_rs_entry e;
            rlg_batch_entry(&r.u.batch, k, &e);
            fprintf(out, "%s{\"index\":%" PRIu64 ",\"term\":%" PRIu64 ",\"type\":%u,\"len\":%u}",
                    k ? "," : "", r.u.batch.first_index + k, e.term, e.type, e.len);
        }
        fputc(']', out);
        break;
    case RLOG_RS_TYPE_TRUNCATE:
        fprintf(out, ",\"truncate_from\":%" PRIu64, r.u.trunc);
        break;
    case RLOG_RS_TYPE_SNAPSHOT:
        fprintf(out,
                ",\"snapshot\":{\"index\":%" PRIu64 ",\"term\":%" PRIu64 ",\"conf_index\":%" PRIu64
                ",\"conf_len\":%u,\"file\":\"%.*s\",\"size\":%" PRIu64 ",\"crc\":\"%08" PRIx32
                "\",\"trailing\":%u,\"replace\":%s}",
                r.u.snap.index, r.u.snap.term, r.u.snap.conf_index, r.u.snap.conf_len,
                (int)r.u.snap.name_len, r.u.snap.name, r.u.snap.size, r.u.snap.crc,
                r.u.snap.trailing, (r.u.snap.flags & RLG_SNAP_REPLACE) ? "true" : "false");
        break;
    default:
        break;
    }
}

/* Runs cmd with data on its stdin and the variables set; its output goes
 * where ours does. */
static int decode_run(const char *cmd, const void *data, size_t len, const char *vars[][2],
                      size_t nvars)
{
    fflush(stdout);
    for (size_t i = 0; i < nvars; i++)
        setenv(vars[i][0], vars[i][1], 1);
    FILE *p = popen(cmd, "w");
    if (!p)
        return -1;
    size_t put = len ? fwrite(data, 1, len, p) : 0;
    int st = pclose(p);
    return put == len ? st : -1;
}

int cli_decode_record(const rlog_record *rec, bool raft, uint64_t lo, uint64_t hi, const char *cmd)
{
    char lsn[24], type[8], len[16];
    snprintf(lsn, sizeof lsn, "%" PRIu64, rec->lsn);
    snprintf(type, sizeof type, "%u", rec->type);
    rlg_rec r;
    if (!raft || rec->type != RLOG_RS_TYPE_ENTRIES || !raft_decode(rec, &r)) {
        snprintf(len, sizeof len, "%u", rec->len);
        const char *vars[][2] = {{"RLOG_LSN", lsn}, {"RLOG_TYPE", type}, {"RLOG_LEN", len}};
        return decode_run(cmd, rec->data, rec->len, vars, 3);
    }
    for (uint32_t k = 0; k < r.u.batch.count; k++) {
        uint64_t index = r.u.batch.first_index + k;
        if (index < lo || index > hi)
            continue;
        rlog_rs_entry e;
        rlg_batch_entry(&r.u.batch, k, &e);
        char ix[24], term[24], etype[8];
        snprintf(ix, sizeof ix, "%" PRIu64, index);
        snprintf(term, sizeof term, "%" PRIu64, e.term);
        snprintf(etype, sizeof etype, "%u", e.type);
        snprintf(len, sizeof len, "%u", e.len);
        const char *vars[][2] = {{"RLOG_LSN", lsn},          {"RLOG_TYPE", type},
                                 {"RLOG_INDEX", ix},         {"RLOG_TERM", term},
                                 {"RLOG_ENTRY_TYPE", etype}, {"RLOG_LEN", len}};
        int rv = decode_run(cmd, e.data, e.len, vars, 6);
        if (rv)
            return rv;
    }
    return 0;
}
