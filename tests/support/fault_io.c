/*
 * fault_io.c: the fault-injecting I/O vtable for tests (see fault_io.h).
 */
#include "fault_io.h"

#include <errno.h>
#include <string.h>

/* Returns 0 to go ahead, or the error to inject. */
static int hit(fault_io *f, unsigned kind)
{
    if (!(f->mask & kind) || f->nth == 0)
        return 0;
    f->calls++;
    if (f->calls == f->nth || (f->persist && f->calls > f->nth)) {
        f->fired++;
        return f->err;
    }
    return 0;
}

#define F(ctx) ((fault_io *)(ctx))
#define ERRNO_OF(e) ((e) == FIO_SHORT ? -EIO : (e))

static int f_openat(void *ctx, int dirfd, const char *name, int flags,
                    mode_t mode, int *fd)
{
    int e = hit(F(ctx), FIO_OPEN);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->openat(F(ctx)->base->ctx, dirfd, name, flags, mode,
                                fd);
}

static int f_close(void *ctx, int fd)
{
    int e = hit(F(ctx), FIO_CLOSE);
    int rc = F(ctx)->base->close(F(ctx)->base->ctx, fd);
    return e ? ERRNO_OF(e) : rc;
}

static int f_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off,
                   size_t *got)
{
    int e = hit(F(ctx), FIO_READ), rc;
    if (e)
        return ERRNO_OF(e);
    rc = F(ctx)->base->pread(F(ctx)->base->ctx, fd, buf, len, off, got);
    if (rc == 0)
        F(ctx)->read_bytes += (long long)*got;
    return rc;
}

static int f_pwritev(void *ctx, int fd, const struct iovec *iov, int cnt,
                     uint64_t off)
{
    int e = hit(F(ctx), FIO_WRITE);
    size_t total = 0, half, done = 0;

    if (e != FIO_SHORT) {
        if (e)
            return e;
        return F(ctx)->base->pwritev(F(ctx)->base->ctx, fd, iov, cnt, off);
    }
    /* A torn write: the first half of the bytes reach the file. */
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    half = total / 2;
    for (int i = 0; i < cnt && done < half; i++) {
        struct iovec one = iov[i];
        if (one.iov_len > half - done)
            one.iov_len = half - done;
        if (F(ctx)->base->pwritev(F(ctx)->base->ctx, fd, &one, 1, off + done) !=
            0)
            break;
        done += one.iov_len;
    }
    return -EIO;
}

static int f_fdatasync(void *ctx, int fd)
{
    int e = hit(F(ctx), FIO_FDATASYNC);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->fdatasync(F(ctx)->base->ctx, fd);
}

static int f_fsync(void *ctx, int fd)
{
    int e = hit(F(ctx), FIO_FSYNC);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->fsync(F(ctx)->base->ctx, fd);
}

static int f_ftruncate(void *ctx, int fd, uint64_t len)
{
    int e = hit(F(ctx), FIO_TRUNCATE);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->ftruncate(F(ctx)->base->ctx, fd, len);
}

static int f_fstat(void *ctx, int fd, evs_stat *st)
{
    int e = hit(F(ctx), FIO_STAT);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->fstat(F(ctx)->base->ctx, fd, st);
}

static int f_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    int e = hit(F(ctx), FIO_MKDIR);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->mkdirat(F(ctx)->base->ctx, dirfd, name, mode);
}

static int f_renameat(void *ctx, int od, const char *on, int nd, const char *nn,
                      unsigned flags)
{
    int e = hit(F(ctx), FIO_RENAME);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->renameat(F(ctx)->base->ctx, od, on, nd, nn, flags);
}

static int f_unlinkat(void *ctx, int dirfd, const char *name, int flags)
{
    int e = hit(F(ctx), FIO_UNLINK);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->unlinkat(F(ctx)->base->ctx, dirfd, name, flags);
}

static int f_lock(void *ctx, int fd, int op)
{
    int e = hit(F(ctx), FIO_LOCK);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->lock(F(ctx)->base->ctx, fd, op);
}

static int f_listdir(void *ctx, int dirfd, evs_dirent_fn fn, void *arg)
{
    int e = hit(F(ctx), FIO_LISTDIR);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->listdir(F(ctx)->base->ctx, dirfd, fn, arg);
}

static int f_statat(void *ctx, int dirfd, const char *path, evs_stat *st)
{
    int e = hit(F(ctx), FIO_STAT);
    if (e)
        return ERRNO_OF(e);
    return F(ctx)->base->statat(F(ctx)->base->ctx, dirfd, path, st);
}

void fault_io_init(fault_io *f)
{
    memset(f, 0, sizeof(*f));
    f->base = evs_io_posix();
    f->io.ctx = f;
    f->io.openat = f_openat;
    f->io.close = f_close;
    f->io.pread = f_pread;
    f->io.pwritev = f_pwritev;
    f->io.fdatasync = f_fdatasync;
    f->io.fsync = f_fsync;
    f->io.ftruncate = f_ftruncate;
    f->io.fstat = f_fstat;
    f->io.mkdirat = f_mkdirat;
    f->io.renameat = f_renameat;
    f->io.unlinkat = f_unlinkat;
    f->io.lock = f_lock;
    f->io.listdir = f_listdir;
    f->io.statat = f_statat;
}

void fault_io_arm(fault_io *f, unsigned mask, long nth, int err, int persist)
{
    f->mask = mask;
    f->nth = nth;
    f->err = err;
    f->persist = persist;
    f->calls = 0;
    f->fired = 0;
}

void fault_io_disarm(fault_io *f)
{
    f->nth = 0;
}
