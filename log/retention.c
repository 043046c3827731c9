/* Retention: deleting a prefix of sealed segments (rlog_delete_prefix),
 * oldest first, each unlinked or renamed into the recycling pool
 * (log/spare.c takes files from the pool) and made durable before the
 * next (docs/format.md, writing rule 7). */
#include <errno.h>
#include <string.h>

#include "log/spare.h"
#include "log/writer.h"
#include "os/install.h"

int rlog_delete_prefix(rlog_log *l, uint64_t lsn, uint64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (l->readonly)
        return RLOG_EINVAL;
    pthread_mutex_lock(&l->mu);
    while (l->io_busy) /* no rotation while we look at the oldest segments */
        pthread_cond_wait(&l->cond, &l->mu);
    int rv = l->poisoned;
    if (rv) {
        pthread_mutex_unlock(&l->mu);
        return rv;
    }
    l->io_busy = true;
    /* an earlier deletion whose directory fsync failed is made durable
     * before the next unlink: two unsynced unlinks could come back from a
     * power loss as "the later kept, the earlier lost", a gap */
    int e0 = rlg_dir_settle(l);
    if (e0)
        rv = rlg_fail(l, rlog_from_errno(e0),
                      "delete prefix: directory fsync (an earlier deletion is not durable): %s",
                      strerror(e0));
    while (!rv && l->nsegs > 1) {
        rlg_segment *s = &l->segs[0];
        /* the successor's header must be durable before its predecessor
         * goes (else a power loss could leave no segment with a valid
         * header): a durable record past this segment proves it */
        if (!s->sealed || s->seq >= l->disk_last_seq || s->last_lsn >= lsn ||
            s->last_lsn >= l->durable)
            break;
        /* a file of the segment size waits to become a later segment
         * (log/spare.c) instead of being unlinked, while there is room */
        bool recycle = !l->replica && !(l->opts.flags & RLOG_OPEN_NO_RECYCLE) &&
                       l->npool < RLG_RECYCLE_MAX && s->size == l->opts.segment_size;
        bool unsynced = l->dir_unsynced;
        uint64_t seq = s->seq;
        char path[4096], name[32], pool[4096];
        rlg_seg_path(l, seq, path, sizeof path);
        rlg_seg_name(seq, name, sizeof name);
        rlg_pool_path(l, seq, pool, sizeof pool);
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_lock(&l->dir_mu);
        /* one directory operation unsynced at a time: an earlier deletion
         * whose fsync failed is made durable before the next one (two
         * unsynced removals could come back after a power loss as a gap) */
        rlg_os_fail fail = {0};
        int os = unsynced ? rlg_sync_dir(l->vfs, l->dir, &fail) : RLG_OS_OK;
        bool pre_failed = os != RLG_OS_OK, gone = false;
        if (!pre_failed) {
            os = recycle ? rlg_rename_synced(l->vfs, l->dir, path, pool, &fail)
                         : rlg_unlink_synced(l->vfs, l->dir, path, &fail);
            /* (a segment already missing is gone too, but not pooled) */
            gone = os != RLG_OS_FAILED || fail.err == ENOENT;
        }
        pthread_mutex_unlock(&l->dir_mu);
        pthread_mutex_lock(&l->mu);
        l->dir_unsynced = pre_failed || os == RLG_OS_FATAL;
        if (gone) { /* gone from the namespace: gone from the index too */
            rlg_segment_free(s);
            memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof *l->segs);
            l->nsegs--;
            l->first = l->segs[0].first_lsn;
            l->m.segments_deleted++;
            if (deleted)
                (*deleted)++;
            /* only a durable rename pools the file (one whose fsync failed
             * is left to the next open) */
            if (recycle && os == RLG_OS_OK) {
                l->pool[l->npool++] = seq;
                pthread_cond_signal(&l->prep_cond);
            }
        }
        if (pre_failed || os == RLG_OS_FATAL || !gone) {
            /* an unsynced removal may or may not survive a crash; recovery
             * accepts both (the files left are still a contiguous run) */
            rv = rlg_fail(l, rlog_from_errno(fail.err), "delete prefix: %s%s %s: %s", fail.what,
                          pre_failed ? " (an earlier deletion) before removing" : "", name,
                          strerror(fail.err));
            break;
        }
    }
    rlg_io_release(l, NULL);
    pthread_mutex_unlock(&l->mu);
    return rv;
}
