/*
 * floor.c: the raw system calls the floor is made of. The floor is what
 * the hardware and the kernel allow for the same I/O with no store in
 * between, so it calls write, writev, fdatasync, read and pread itself,
 * with nothing on top but retrying short transfers and EINTR.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int floor_open(const char *dir, const char *name, int flags)
{
    char path[8192];
    int fd;

    bench_path(path, sizeof(path), dir, name);
    do
        fd = open(path, flags | O_CLOEXEC, 0600);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int floor_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int floor_writev_all(int fd, const struct iovec *iov, int n)
{
    struct iovec cur[IOV_MAX];
    int i = 0;

    while (i < n) {
        int cnt = n - i < IOV_MAX ? n - i : IOV_MAX;
        ssize_t got;

        memcpy(cur, iov + i, (size_t)cnt * sizeof(*cur));
        for (int k = 0; k < cnt;) {
            got = writev(fd, cur + k, cnt - k);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            /* Skip what was written, then finish a partial buffer. */
            while (k < cnt && (size_t)got >= cur[k].iov_len) {
                got -= (ssize_t)cur[k].iov_len;
                k++;
            }
            if (k < cnt && got > 0) {
                cur[k].iov_base = (char *)cur[k].iov_base + got;
                cur[k].iov_len -= (size_t)got;
            }
        }
        i += cnt;
    }
    return 0;
}

int floor_fdatasync(int fd)
{
    int rc;

    do
        rc = fdatasync(fd);
    while (rc != 0 && errno == EINTR);
    return rc != 0 ? -errno : 0;
}

void *floor_alloc_aligned(size_t len)
{
    void *p = NULL;

    if (posix_memalign(&p, 4096, len) != 0)
        return NULL;
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void floor_rm_rf(const char *path)
{
    nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

void floor_unlink(const char *dir, const char *name)
{
    char path[8192];

    bench_path(path, sizeof(path), dir, name);
    unlink(path);
}
