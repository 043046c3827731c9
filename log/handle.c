/* A log handle: its lifetime (made, released) and the small helpers and
 * accessors every file of the log uses on it (error message, logger,
 * segment paths, the segment index). Opening and closing are log/open.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/handle.h"
#include "os/array.h"
#include "os/log.h"

int rlg_fail(rlog_log *l, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errmsg, sizeof l->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

void rlg_logf(const rlog_log *l, rlog_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rlg_os_vlogf(l->opts.logger, l->opts.logger_data, level, "", fmt, ap);
    va_end(ap);
}

void rlg_seg_path(const rlog_log *l, uint64_t seq, char *buf, size_t cap)
{
    char name[32];
    rlg_seg_name(seq, name, sizeof name);
    snprintf(buf, cap, "%s/%s", l->dir, name);
}

int rlg_segs_reserve(rlog_log *l)
{
    return rlg_array_grow(&l->segs, &l->capsegs, l->nsegs + 1, sizeof *l->segs, 8);
}

long rlg_find_segment(const rlog_log *l, uint64_t lsn)
{
    size_t lo = 0, hi = l->nsegs;
    while (lo < hi) { /* first segment whose first_lsn > lsn */
        size_t mid = (lo + hi) / 2;
        if (l->segs[mid].first_lsn <= lsn)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* segments that hold no record share first_lsn with their successor:
     * step back to the one that holds lsn */
    while (lo > 0) {
        const rlg_segment *s = &l->segs[lo - 1];
        if (lsn >= s->first_lsn && lsn <= s->last_lsn)
            return (long)(lo - 1);
        if (lsn > s->last_lsn)
            return -1;
        lo--;
    }
    return -1;
}

size_t rlg_find_segment_seq(const rlog_log *l, uint64_t seq)
{
    size_t i = (size_t)(seq - l->segs[0].seq);
    return i < l->nsegs ? i : l->nsegs - 1;
}

const char *rlog_errmsg(rlog_log *l)
{
    return l->errmsg;
}

void rlog_positions_get(rlog_log *l, rlog_positions *p)
{
    pthread_mutex_lock(&l->mu);
    p->first = l->first;
    p->appended = l->appended;
    p->written = l->written;
    p->durable = l->durable;
    p->poisoned = l->poisoned;
    pthread_mutex_unlock(&l->mu);
}

void rlog_metrics_get(rlog_log *l, rlog_metrics *m)
{
    pthread_mutex_lock(&l->mu);
    *m = l->m;
    pthread_mutex_unlock(&l->mu);
}

rlog_log *rlg_log_new(const char *dir, const rlog_options *o)
{
    rlog_log *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->dir = strdup(dir);
    if (!l->dir) {
        free(l);
        return NULL;
    }
    l->opts = *o;
    l->vfs = o->vfs ? o->vfs : rlog_vfs_posix();
    l->env = o->env ? o->env : rlog_env_posix();
    l->readonly = (o->flags & RLOG_OPEN_READONLY) != 0;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    pthread_cond_init(&l->bg_cond, NULL);
    pthread_cond_init(&l->prep_cond, NULL);
    pthread_mutex_init(&l->dir_mu, NULL);
    return l;
}

static void log_free(rlog_log *l)
{
    for (size_t i = 0; i < l->nsegs; i++)
        rlg_segment_free(&l->segs[i]);
    free(l->segs);
    for (unsigned i = 0; i < RLOG_STICKY_SLOTS; i++) {
        free(l->sticky_enc[i].data);
        free(l->sticky_wr[i].data);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    pthread_cond_destroy(&l->bg_cond);
    pthread_cond_destroy(&l->prep_cond);
    pthread_mutex_destroy(&l->dir_mu);
    free(l->dir);
    free(l);
}

void rlg_log_release(rlog_log *l)
{
    if (l->wfile)
        l->vfs->close(l->vfs, l->wfile);
    if (l->spare_file)
        l->vfs->close(l->vfs, l->spare_file);
    if (l->lockf)
        l->vfs->unlock(l->vfs, l->lockf);
    log_free(l);
}
