/*
 * tu_file.c: files and directories for tests, without Criterion (see
 * tu_file.h).
 */
#include "tu_file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("EVS_TEST_TMP");
    char *path;
    size_t n;

    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    n = strlen(base) + strlen(tag) + 32;
    path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/evs-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void tu_rmtree_free(char *path)
{
    if (!path)
        return;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

char *tu_path(const char *dir, const char *exec, const char *name)
{
    size_t n = strlen(dir) + strlen(exec) + strlen(name) + 3;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s/%s", dir, exec, name);
    return p;
}

char *tu_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || !(buf = malloc((size_t)sb.st_size + 1)))
        goto out;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
out:
    close(fd);
    return buf;
}

int tu_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t done = 0;
    int rc = 0;

    if (fd < 0)
        return -errno;
    while (done < len) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)w;
    }
    close(fd);
    return rc;
}

long long tu_file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int tu_truncate(const char *path, long long len)
{
    return truncate(path, (off_t)len) == 0 ? 0 : -errno;
}

int tu_flip_bit(const char *path, long long off, int bit)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    int rc = -EIO;

    if (fd < 0)
        return -errno;
    if (pread(fd, &c, 1, off) == 1) {
        c ^= (unsigned char)(1u << bit);
        if (pwrite(fd, &c, 1, off) == 1)
            rc = 0;
    }
    close(fd);
    return rc;
}
