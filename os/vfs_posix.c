/* The posix vfs: the only place in rlog that makes file-system system calls
 * (see include/rlog/vfs.h for the contract every function here keeps).
 *
 * Linux/glibc. Every function returns 0 or a positive errno. Every
 * descriptor is opened O_CLOEXEC. The table is an immutable process-wide
 * singleton, so it is safe from any thread; pread/pwrite use positioned I/O
 * and never touch a shared file offset.
 *
 * EINTR is retried everywhere it can occur. fsync/fdatasync retry EINTR and
 * nothing else: after EIO the kernel may already have dropped the dirty pages,
 * so a retry could report success for data that is gone. Callers poison their
 * handle instead. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "os/array.h"
#include "rlog/vfs.h"

/* Owned by the posix vfs; freed by posix_close() / posix_unlock(). */
struct rlog_file {
    int fd;
};

/* Largest offset pread/pwrite/ftruncate can take (off_t is 64-bit signed). */
#define POSIX_OFF_MAX ((uint64_t)INT64_MAX)

/* Bytes per pread/pwrite call: Linux moves at most ~2 GiB per call anyway. */
#define POSIX_IO_CHUNK ((size_t)1 << 30)

static int posix_open(rlog_vfs *vfs, const char *path, unsigned flags, rlog_file **out)
{
    (void)vfs;
    *out = NULL;
    unsigned known = RLOG_VFS_RDONLY | RLOG_VFS_RDWR | RLOG_VFS_CREATE | RLOG_VFS_EXCL;
    if ((flags & ~known) != 0)
        return EINVAL;
    /* Exactly one access mode; EXCL only means something with CREATE. */
    if (!(flags & RLOG_VFS_RDONLY) == !(flags & RLOG_VFS_RDWR))
        return EINVAL;
    if ((flags & RLOG_VFS_EXCL) && !(flags & RLOG_VFS_CREATE))
        return EINVAL;

    int oflags = O_CLOEXEC | ((flags & RLOG_VFS_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & RLOG_VFS_CREATE)
        oflags |= O_CREAT;
    if (flags & RLOG_VFS_EXCL)
        oflags |= O_EXCL;

    rlog_file *f = malloc(sizeof *f);
    if (f == NULL)
        return ENOMEM;
    int fd;
    do {
        fd = open(path, oflags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int err = errno;
        free(f);
        return err;
    }
    f->fd = fd;
    *out = f;
    return 0;
}

/* Releases the descriptor and the handle. Linux frees the descriptor even
 * when close() fails, so it is never retried; EINTR is not an error here. */
static int posix_release(rlog_file *f)
{
    int err = 0;
    if (close(f->fd) != 0 && errno != EINTR)
        err = errno;
    free(f);
    return err;
}

static int posix_close(rlog_vfs *vfs, rlog_file *f)
{
    (void)vfs;
    return posix_release(f);
}

/* Reads into rd, or writes wr, len bytes at off: chunks of at most
 * POSIX_IO_CHUNK, EINTR and short transfers retried. A read stops short
 * (with 0) at end of file; a write that moves nothing (not expected of a
 * regular file) fails with EIO rather than spin. *done: the bytes moved. */
static int posix_io(rlog_file *f, char *rd, const char *wr, size_t len, uint64_t off, size_t *done)
{
    *done = 0;
    if (off > POSIX_OFF_MAX || len > POSIX_OFF_MAX - off)
        return EINVAL;
    size_t moved = 0;
    while (moved < len) {
        size_t want = len - moved < POSIX_IO_CHUNK ? len - moved : POSIX_IO_CHUNK;
        off_t at = (off_t)(off + moved);
        ssize_t n = rd ? pread(f->fd, rd + moved, want, at) : pwrite(f->fd, wr + moved, want, at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *done = moved;
            return errno;
        }
        if (n == 0) {
            *done = moved;
            return rd ? 0 : EIO;
        }
        moved += (size_t)n;
    }
    *done = moved;
    return 0;
}

static int posix_pread(rlog_vfs *vfs, rlog_file *f, void *buf, size_t len, uint64_t off,
                       size_t *done)
{
    (void)vfs;
    return posix_io(f, buf, NULL, len, off, done);
}

static int posix_pwrite(rlog_vfs *vfs, rlog_file *f, const void *buf, size_t len, uint64_t off,
                        size_t *done)
{
    (void)vfs;
    return posix_io(f, NULL, buf, len, off, done);
}

/* sync_fn(fd) — fdatasync(2) or fsync(2) — retried on EINTR; 0 or the errno. */
static int posix_sync(int fd, int (*sync_fn)(int))
{
    int rc;
    do {
        rc = sync_fn(fd);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
}

static int posix_fdatasync(rlog_vfs *vfs, rlog_file *f)
{
    (void)vfs;
    return posix_sync(f->fd, fdatasync);
}

static int posix_fsync(rlog_vfs *vfs, rlog_file *f)
{
    (void)vfs;
    return posix_sync(f->fd, fsync);
}

static int posix_truncate(rlog_vfs *vfs, rlog_file *f, uint64_t size)
{
    (void)vfs;
    if (size > POSIX_OFF_MAX)
        return EINVAL;
    int rc;
    do {
        rc = ftruncate(f->fd, (off_t)size);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
}

/* len == 0 reserves nothing and succeeds (fallocate itself says EINVAL). */
static int posix_allocate(rlog_vfs *vfs, rlog_file *f, uint64_t off, uint64_t len)
{
    (void)vfs;
    if (off > POSIX_OFF_MAX || len > POSIX_OFF_MAX - off)
        return EINVAL;
    if (len == 0)
        return 0;
    int rc;
    do {
        rc = fallocate(f->fd, 0, (off_t)off, (off_t)len);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
}

static int posix_size(rlog_vfs *vfs, rlog_file *f, uint64_t *size)
{
    (void)vfs;
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_rename(rlog_vfs *vfs, const char *from, const char *to)
{
    (void)vfs;
    return rename(from, to) == 0 ? 0 : errno;
}

static int posix_unlink(rlog_vfs *vfs, const char *path)
{
    (void)vfs;
    return unlink(path) == 0 ? 0 : errno;
}

static int posix_mkdir(rlog_vfs *vfs, const char *path)
{
    (void)vfs;
    return mkdir(path, 0755) == 0 ? 0 : errno;
}

void rlog_vfs_free_names(char **names, size_t count)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Appends a copy of name to *names (capacity *cap, length *count). */
static int list_push(char ***names, size_t *count, size_t *cap, const char *name)
{
    if (rlg_array_grow(names, cap, *count + 1, sizeof **names, 16) != 0)
        return ENOMEM;
    char *copy = strdup(name);
    if (copy == NULL)
        return ENOMEM;
    (*names)[(*count)++] = copy;
    return 0;
}

static int posix_list(rlog_vfs *vfs, const char *dir, char ***names, size_t *count)
{
    (void)vfs;
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno;

    char **out = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            err = errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        err = list_push(&out, &n, &cap, e->d_name);
        if (err != 0)
            break;
    }
    closedir(d);
    if (err != 0) {
        rlog_vfs_free_names(out, n);
        return err;
    }
    *names = out;
    *count = n;
    return 0;
}

/* Opens a directory for fsync or flock. Returns the fd or -errno. */
static int posix_open_dir(const char *dir)
{
    int fd;
    do {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int posix_sync_dir(rlog_vfs *vfs, const char *dir)
{
    (void)vfs;
    int fd = posix_open_dir(dir);
    if (fd < 0)
        return -fd;
    int err = posix_sync(fd, fsync);
    close(fd);
    return err;
}

/* flock() locks belong to the open file description, so two lock() calls in
 * one process conflict just as two processes do; the lock goes away with
 * the descriptor (unlock or process death). */
static int posix_lock(rlog_vfs *vfs, const char *dir, rlog_file **lock)
{
    (void)vfs;
    *lock = NULL;
    rlog_file *f = malloc(sizeof *f);
    if (f == NULL)
        return ENOMEM;
    int fd = posix_open_dir(dir);
    if (fd < 0) {
        free(f);
        return -fd;
    }
    int rc;
    do {
        rc = flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int err = errno == EWOULDBLOCK ? EBUSY : errno;
        close(fd);
        free(f);
        return err;
    }
    f->fd = fd;
    *lock = f;
    return 0;
}

static int posix_unlock(rlog_vfs *vfs, rlog_file *lock)
{
    (void)vfs;
    return posix_release(lock);
}

static void posix_destroy(rlog_vfs *vfs)
{
    (void)vfs; /* a static singleton */
}

static rlog_vfs posix_vfs = {
    .impl = NULL,
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .fdatasync = posix_fdatasync,
    .fsync = posix_fsync,
    .truncate = posix_truncate,
    .allocate = posix_allocate,
    .size = posix_size,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .mkdir = posix_mkdir,
    .list = posix_list,
    .sync_dir = posix_sync_dir,
    .lock = posix_lock,
    .unlock = posix_unlock,
    .destroy = posix_destroy,
};

rlog_vfs *rlog_vfs_posix(void)
{
    return &posix_vfs;
}
