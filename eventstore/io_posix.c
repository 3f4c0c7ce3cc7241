/*
 * io_posix.c: the POSIX implementation of the I/O vtable. This is the only
 * file in evstore that makes raw file system calls.
 */
#include "evstore/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int px_openat(void *ctx, int dirfd, const char *name, int flags,
                     mode_t mode, int *fd)
{
    int r;

    (void)ctx;
    do
        r = openat(dirfd, name, flags, mode);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    *fd = r;
    return 0;
}

static int px_close(void *ctx, int fd)
{
    (void)ctx;
    /* Linux releases the descriptor even when close fails with EINTR, so
     * it must not be retried. */
    if (close(fd) != 0 && errno != EINTR)
        return -errno;
    return 0;
}

static int px_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off,
                    size_t *got)
{
    size_t done = 0;

    (void)ctx;
    while (done < len) {
        ssize_t n =
            pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

/* Writes buf[0..len) at off, finishing short writes. */
static int write_all(int fd, const char *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int px_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt,
                      uint64_t off)
{
    size_t want = 0, done;
    ssize_t n;
    int i, rc;

    (void)ctx;
    for (i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    if (iovcnt <= IOV_MAX) {
        do
            n = pwritev(fd, iov, iovcnt, (off_t)off);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        if ((size_t)n == want)
            return 0;
        done = (size_t)n;
    } else {
        done = 0;
    }
    /* A short write (or a very long vector): finish piece by piece,
     * never modifying the caller's array. */
    for (i = 0; i < iovcnt; i++) {
        size_t l = iov[i].iov_len;
        if (done >= l) {
            done -= l;
            off += l;
            continue;
        }
        rc = write_all(fd, (const char *)iov[i].iov_base + done, l - done,
                       off + done);
        if (rc != 0)
            return rc;
        off += l;
        done = 0;
    }
    return 0;
}

static int px_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    /* Never retried: after a failed sync the kernel may have dropped the
     * dirty pages, so a second call could wrongly succeed. */
    return fdatasync(fd) == 0 ? 0 : -errno;
}

static int px_fsync(void *ctx, int fd)
{
    (void)ctx;
    return fsync(fd) == 0 ? 0 : -errno;
}

static int px_ftruncate(void *ctx, int fd, uint64_t len)
{
    int r;

    (void)ctx;
    do
        r = ftruncate(fd, (off_t)len);
    while (r < 0 && errno == EINTR);
    return r == 0 ? 0 : -errno;
}

static void fill_stat(const struct stat *sb, evs_stat *st)
{
    st->size = (uint64_t)sb->st_size;
    st->mode = (uint32_t)sb->st_mode;
    st->nlink = (uint64_t)sb->st_nlink;
    st->mtime_us =
        (int64_t)sb->st_mtim.tv_sec * 1000000 + sb->st_mtim.tv_nsec / 1000;
    st->ino = (uint64_t)sb->st_ino;
    st->ctime_ns =
        (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

static int px_fstat(void *ctx, int fd, evs_stat *st)
{
    struct stat sb;

    (void)ctx;
    if (fstat(fd, &sb) != 0)
        return -errno;
    fill_stat(&sb, st);
    return 0;
}

static int px_statat(void *ctx, int dirfd, const char *path, evs_stat *st)
{
    struct stat sb;

    (void)ctx;
    if (fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    fill_stat(&sb, st);
    return 0;
}

static int px_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    (void)ctx;
    return mkdirat(dirfd, name, mode) == 0 ? 0 : -errno;
}

static int px_renameat(void *ctx, int olddirfd, const char *oldname,
                       int newdirfd, const char *newname, unsigned flags)
{
    (void)ctx;
    return renameat2(olddirfd, oldname, newdirfd, newname, flags) == 0 ? 0
                                                                       : -errno;
}

static int px_unlinkat(void *ctx, int dirfd, const char *name, int flags)
{
    (void)ctx;
    return unlinkat(dirfd, name, flags) == 0 ? 0 : -errno;
}

static int px_lock(void *ctx, int fd, int op)
{
    struct flock fl;
    int cmd = op == EVS_LOCK_WAIT ? F_OFD_SETLKW : F_OFD_SETLK;
    int r;

    (void)ctx;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = op == EVS_LOCK_UNLOCK ? F_UNLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    do
        r = fcntl(fd, cmd, &fl);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EACCES ? -EAGAIN : -errno;
    return 0;
}

static int px_listdir(void *ctx, int dirfd, evs_dirent_fn fn, void *arg)
{
    DIR *d;
    struct dirent *e;
    int fd, rc = 0;

    (void)ctx;
    /* fdopendir takes over its fd, so give it a copy. */
    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' &&
            (e->d_name[1] == '\0' ||
             (e->d_name[1] == '.' && e->d_name[2] == '\0')))
            continue;
        rc = fn(arg, e->d_name, strlen(e->d_name));
        if (rc != 0)
            break;
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    return rc;
}

static const evs_io posix_io = {
    NULL,         px_openat,   px_close,     px_pread,   px_pwritev,
    px_fdatasync, px_fsync,    px_ftruncate, px_fstat,   px_mkdirat,
    px_renameat,  px_unlinkat, px_lock,      px_listdir, px_statat,
};

const evs_io *evs_io_posix(void)
{
    return &posix_io;
}
