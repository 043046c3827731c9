/*
 * quickstart — the example of docs/api.md: open (or create) a log, append
 * synchronously and asynchronously, read back with rlog_get, an iterator
 * and rlog_replay, and close.
 *
 *   build/examples/quickstart [DIR]      (default: /tmp/rlog-quickstart)
 *
 * Running it again on the same directory appends after what is there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rlog/log.h"

#define TYPE_NOTE 16 /* our record type: RLOG_TYPE_USER_MIN .. RLOG_TYPE_MAX */

/* Completion of rlog_append_async: runs on the thread that does the I/O
 * (here: inside rlog_sync below). */
static void on_durable(void *data, int status, uint64_t first, uint64_t last)
{
    int *pending = data;
    printf("async: LSN %" PRIu64 "..%" PRIu64 " -> %s\n", first, last, rlog_errname(status));
    (*pending)--;
}

/* Called by rlog_replay for each record; rec->data is valid during the call. */
static int print_record(void *data, const rlog_record *rec)
{
    (void)data;
    printf("replay: LSN %" PRIu64 " type %u: %.*s\n", rec->lsn, rec->type, (int)rec->len,
           (const char *)rec->data);
    return 0; /* non-zero would stop the replay and be returned */
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp/rlog-quickstart";

    /* 1. Open, creating the log if the directory holds none. */
    rlog_options opts;
    rlog_options_init(&opts);
    opts.flags = RLOG_OPEN_CREATE;
    opts.sync = RLOG_SYNC_EACH;
    opts.segment_size = 1 << 20;
    rlog_log *log = NULL;
    rlog_open_report rep;
    int rv = rlog_open(dir, &opts, &log, &rep);
    if (rv) {
        fprintf(stderr, "open %s: %s: %s\n", dir, rlog_errname(rv), rep.message);
        return 1;
    }
    printf("open: %s\n", rep.message);

    /* 2. A synchronous append: two records, one unit, durable on return. */
    rlog_record recs[2] = {
        {.type = TYPE_NOTE, .len = 5, .data = "hello"},
        {.type = TYPE_NOTE, .len = 5, .data = "world"},
    };
    uint64_t first = 0;
    rv = rlog_append(log, recs, 2, &first);
    if (rv) {
        fprintf(stderr, "append: %s: %s\n", rlog_errname(rv), rlog_errmsg(log));
        rlog_close(log);
        return 1;
    }
    printf("append: LSN %" PRIu64 "..%" PRIu64 " durable\n", first, first + 1);

    /* 3. An asynchronous append: returns at once, the payload is copied; the
     * callback fires once it is durable. Without RLOG_OPEN_THREAD the log
     * makes progress only inside calls: rlog_sync (or rlog_step) drives it. */
    int pending = 1;
    char note[32];
    snprintf(note, sizeof note, "async note");
    rlog_record one = {.type = TYPE_NOTE, .len = (uint32_t)strlen(note), .data = note};
    uint64_t async_lsn = 0;
    rv = rlog_append_async(log, &one, 1, on_durable, &pending, &async_lsn);
    if (!rv)
        rv = rlog_sync(log);
    if (rv || pending != 0) {
        fprintf(stderr, "async append: %s: %s\n", rlog_errname(rv), rlog_errmsg(log));
        rlog_close(log);
        return 1;
    }

    /* 4. Random access: the payload is ours to free with rlog_free. */
    rlog_record got;
    void *payload = NULL;
    rv = rlog_get(log, first, 0, &got, &payload);
    if (rv == 0)
        printf("get: LSN %" PRIu64 ": %.*s\n", got.lsn, (int)got.len, (const char *)got.data);
    rlog_free(payload);

    /* 5. An iterator over what was appended in this run: rec.data is valid
     * until the next call on the iterator. */
    rlog_iter *it = NULL;
    if (rv == 0)
        rv = rlog_iter_open(log, first, 0, &it);
    if (rv == 0) {
        rlog_record rec;
        while ((rv = rlog_iter_next(it, &rec)) == RLOG_OK)
            printf("iter: LSN %" PRIu64 ": %.*s\n", rec.lsn, (int)rec.len, (const char *)rec.data);
        rlog_iter_close(it); /* before rlog_close */
        rv = rv == RLOG_EEND ? 0 : rv;
    }

    /* 6. Paginated replay: at most 2 records per call. */
    uint64_t next = first;
    while (rv == 0) {
        uint64_t from = next;
        rv = rlog_replay(log, from, 2, 0, 0, print_record, NULL, &next);
        if (next == from)
            break; /* nothing more */
    }
    if (rv)
        fprintf(stderr, "reading: %s: %s\n", rlog_errname(rv), rlog_errmsg(log));

    rlog_positions pos;
    rlog_positions_get(log, &pos);
    printf("positions: first=%" PRIu64 " appended=%" PRIu64 " written=%" PRIu64 " durable=%" PRIu64
           "\n",
           pos.first, pos.appended, pos.written, pos.durable);

    /* 7. Close: 0 only when everything appended is durable. */
    int crv = rlog_close(log);
    if (crv)
        fprintf(stderr, "close: %s\n", rlog_errname(crv));
    return rv || crv ? 1 : 0;
}
