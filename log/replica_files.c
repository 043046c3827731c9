/*
 * A replica's side files (the layers above keep files beside the segments:
 * the Raft storage's snapshots). Received like a segment: into a temporary
 * file (RLG_RECEIVE_FILE_TMP), checked (every byte written once, CRC32C of
 * the whole), fdatasync'ed, renamed to its name, directory synced. A crash
 * before the rename leaves only the temporary file, which the next open
 * removes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/replica_internal.h"
#include "os/array.h"

/* A plain file name that is not the log's: no '/', not "." or "..", not a
 * segment name, not rlog.*. */
static bool side_name_ok(const char *name)
{
    uint64_t seq;
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n < sizeof((rlg_sfx *)0)->name && !strchr(name, '/') && strcmp(name, ".") &&
           strcmp(name, "..") && !rlg_seg_parse_name(name, &seq) && strncmp(name, "rlog.", 5);
}

static int bad_name(rlg_replica *r, const char *what, const char *name)
{
    return rlg_rp_fail(r, RLOG_EPROTO, "%s: '%.200s' is not a valid side file name", what,
                       name ? name : "(null)");
}

void rlg_replica_file_abort(rlg_replica *r)
{
    rlg_sfx *sf = &r->sf;
    if (!sf->on)
        return;
    char tmp[4096];
    rlg_rp_path(r, RLG_RECEIVE_FILE_TMP, tmp, sizeof tmp);
    if (sf->f)
        r->l->vfs->close(r->l->vfs, sf->f);
    r->l->vfs->unlink(r->l->vfs, tmp);
    free(sf->iv);
    memset(sf, 0, sizeof *sf);
}

int rlg_replica_file_begin(rlg_replica *r, const char *name, uint64_t size)
{
    int rv = rlg_rp_check(r);
    if (rv)
        return rv;
    if (r->sf.on)
        return rlg_rp_fail(r, RLOG_EINVAL, "file_begin: side file '%s' is being received",
                           r->sf.name);
    if (!side_name_ok(name))
        return bad_name(r, "file_begin", name);
    rlg_sfx *sf = &r->sf;
    rv = rlg_rp_temp_create(r, RLG_RECEIVE_FILE_TMP, &sf->f);
    if (rv)
        return rv;
    sf->on = true;
    snprintf(sf->name, sizeof sf->name, "%s", name);
    sf->size = size;
    int e = r->l->vfs->truncate(r->l->vfs, sf->f, size);
    if (e) {
        rlg_replica_file_abort(r);
        return rlg_rp_fail(r, rlog_from_errno(e), "file_begin: sizing '%s' to %" PRIu64 ": %s",
                           name, size, strerror(e));
    }
    return 0;
}

/* Adds [a, b) to the ranges written (merging). */
static int cover(rlg_sfx *sf, uint64_t a, uint64_t b)
{
    size_t i = 0;
    while (i < sf->niv && sf->iv[i][1] < a)
        i++;
    size_t j = i;
    while (j < sf->niv && sf->iv[j][0] <= b) { /* overlapping or touching: merge */
        if (sf->iv[j][0] < a)
            a = sf->iv[j][0];
        if (sf->iv[j][1] > b)
            b = sf->iv[j][1];
        j++;
    }
    if (i == j) { /* insert at i */
        if (rlg_array_grow(&sf->iv, &sf->capiv, sf->niv + 1, sizeof *sf->iv, 8))
            return RLOG_ENOMEM;
        memmove(&sf->iv[i + 1], &sf->iv[i], (sf->niv - i) * sizeof *sf->iv);
        sf->niv++;
    } else if (j > i + 1) {
        memmove(&sf->iv[i + 1], &sf->iv[j], (sf->niv - j) * sizeof *sf->iv);
        sf->niv -= j - i - 1;
    }
    sf->iv[i][0] = a;
    sf->iv[i][1] = b;
    return 0;
}

int rlg_replica_file_write(rlg_replica *r, uint64_t off, const void *bytes, size_t len)
{
    rlg_sfx *sf = &r->sf;
    if (!sf->on)
        return rlg_rp_fail(r, RLOG_EINVAL, "file_write: no side file is being received");
    if (off > sf->size || len > sf->size - off)
        return rlg_rp_fail(r, RLOG_EPROTO,
                           "side file '%s': %zu bytes at offset %" PRIu64
                           " run past its size (%" PRIu64 ")",
                           sf->name, len, off, sf->size);
    if (len == 0)
        return 0;
    size_t done = 0;
    int e = r->l->vfs->pwrite(r->l->vfs, sf->f, bytes, len, off, &done);
    if (!e && done != len)
        e = EIO;
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "side file '%s': write at offset %" PRIu64 ": %s",
                           sf->name, off, strerror(e));
    if (cover(sf, off, off + len))
        return rlg_rp_fail(r, RLOG_ENOMEM, "side file '%s': out of memory", sf->name);
    return 0;
}

/* CRC32C of the whole temporary file, read back. */
static int file_crc(rlg_replica *r, uint32_t *crc)
{
    rlg_sfx *sf = &r->sf;
    uint8_t *buf = malloc(RLG_ZERO_CHUNK);
    if (!buf)
        return ENOMEM;
    uint32_t st = 0xffffffffu;
    int e = 0;
    for (uint64_t off = 0; !e && off < sf->size;) {
        size_t n = sf->size - off < RLG_ZERO_CHUNK ? (size_t)(sf->size - off) : RLG_ZERO_CHUNK;
        size_t got = 0;
        e = r->l->vfs->pread(r->l->vfs, sf->f, buf, n, off, &got);
        if (!e && got != n)
            e = EIO;
        if (!e)
            st = rlg_crc32c_update(st, buf, n);
        off += n;
    }
    free(buf);
    *crc = ~st;
    return e;
}

bool rlg_sabotage_side_nosync;

int rlg_replica_file_commit(rlg_replica *r, uint32_t crc)
{
    rlg_sfx *sf = &r->sf;
    if (!sf->on)
        return rlg_rp_fail(r, RLOG_EINVAL, "file_commit: no side file is being received");
    int rv = rlg_rp_check(r);
    uint64_t have = 0;
    for (size_t i = 0; i < sf->niv; i++)
        have += sf->iv[i][1] - sf->iv[i][0];
    if (!rv && have != sf->size)
        rv = rlg_rp_fail(r, RLOG_EPROTO,
                         "side file '%s': %" PRIu64 " of its %" PRIu64
                         " bytes were received; not committed",
                         sf->name, have, sf->size);
    uint32_t got = 0;
    rlog_vfs *v = r->l->vfs;
    int e = rv ? 0 : file_crc(r, &got);
    if (!rv && !e && got != crc)
        rv = rlg_rp_fail(r, RLOG_EPROTO,
                         "side file '%s': CRC32C %08" PRIx32 " of the %" PRIu64
                         " bytes received, expected %08" PRIx32 "; not committed",
                         sf->name, got, sf->size, crc);
    char tmp[4096], path[4096];
    rlg_rp_path(r, RLG_RECEIVE_FILE_TMP, tmp, sizeof tmp);
    rlg_rp_path(r, sf->name, path, sizeof path);
    if (!rv && e)
        rv = rlg_rp_fail(r, rlog_from_errno(e), "side file '%s': %s", sf->name, strerror(e));
    if (rv) {
        rlg_replica_file_abort(r);
        return rv;
    }
    rlog_file *f = sf->f;
    free(sf->iv);
    memset(sf, 0, sizeof *sf);
    rlg_os_fail fail;
    rv = rlg_install(v, r->l->dir, f, tmp, path, rlg_sabotage_side_nosync ? RLG_INSTALL_NOSYNC : 0,
                     &fail);
    return rv ? rlg_rp_install_fail(r, rv, &fail, "side file", path) : 0;
}

int rlg_replica_remove_file(rlg_replica *r, const char *name)
{
    int rv = rlg_rp_check(r);
    if (rv)
        return rv;
    if (!side_name_ok(name))
        return bad_name(r, "remove_file", name);
    char path[4096];
    rlg_rp_path(r, name, path, sizeof path);
    return rlg_rp_unlink_synced(r, path);
}

int rlg_replica_list_files(rlg_replica *r, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    char **all = NULL;
    size_t n = 0;
    int e = r->l->vfs->list(r->l->vfs, r->l->dir, &all, &n);
    if (e)
        return rlg_rp_fail(r, rlog_from_errno(e), "listing '%s': %s", r->l->dir, strerror(e));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (side_name_ok(all[i]))
            all[k++] = all[i];
        else
            free(all[i]);
    }
    *names = all;
    *count = k;
    return 0;
}
