/*
 * evstore/io.h: the I/O vtable every file operation of the store goes
 * through.
 *
 * Only the POSIX implementation (eventstore/io_posix.c) makes raw file
 * system calls. Tests install their own table to inject faults and to
 * simulate power loss, as SQLite's test VFS does. A table must stay valid
 * and unchanged for as long as any store that uses it is open.
 *
 * Every function returns 0 or -errno and is called with the context
 * pointer `ctx`. File handles are plain integers owned by the table: the
 * store never passes them to anything but the table's own functions.
 */
#ifndef EVSTORE_IO_H
#define EVSTORE_IO_H

#include "common.h"

#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What the store needs to know about an open file. */
typedef struct evs_stat {
    uint64_t size;
    uint32_t mode; /* st_mode: type and permission bits */
    uint64_t nlink;
    int64_t mtime_us;
    uint64_t ino;
    int64_t ctime_ns; /* status change time, ns since the epoch */
} evs_stat;

/** Lock operations for `lock`. */
enum {
    EVS_LOCK_TRY = 0,  /* exclusive, fail with -EAGAIN if held elsewhere */
    EVS_LOCK_WAIT = 1, /* exclusive, wait until it is free */
    EVS_LOCK_UNLOCK = 2
};

/** Called once per directory entry by `listdir`; non-zero stops it, and
 *  listdir then returns that value. `name` is borrowed for the call. */
typedef int (*evs_dirent_fn)(void *arg, const char *name, size_t len);

typedef struct evs_io {
    void *ctx;

    /** openat(2). `flags` are O_* flags; the store always adds
     *  O_CLOEXEC and O_NOFOLLOW. Sets *fd. */
    int (*openat)(void *ctx, int dirfd, const char *name, int flags,
                  mode_t mode, int *fd);
    int (*close)(void *ctx, int fd);
    /** pread(2) that retries EINTR and short reads; *got < len only at
     *  end of file. */
    int (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off,
                 size_t *got);
    /** pwritev(2) of the whole iovec at `off`. A short write is an
     *  error: the implementation either writes everything or returns a
     *  negative code (-EIO for a short write it could not finish). */
    int (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt,
                   uint64_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, uint64_t len);
    int (*fstat)(void *ctx, int fd, evs_stat *st);
    int (*mkdirat)(void *ctx, int dirfd, const char *name, mode_t mode);
    /** renameat2(2); `flags` is 0 or RENAME_NOREPLACE. */
    int (*renameat)(void *ctx, int olddirfd, const char *oldname, int newdirfd,
                    const char *newname, unsigned flags);
    /** unlinkat(2); `flags` may be AT_REMOVEDIR. */
    int (*unlinkat)(void *ctx, int dirfd, const char *name, int flags);
    /** Open-file-description lock on the whole file (F_OFD_SETLK(W)). */
    int (*lock)(void *ctx, int fd, int op);
    /** Calls fn for every entry of the directory `dirfd` (not "." or
     *  ".."). Does not change or close `dirfd`. */
    int (*listdir)(void *ctx, int dirfd, evs_dirent_fn fn, void *arg);
    /** fstatat(2) with AT_SYMLINK_NOFOLLOW: metadata only, never opens.
     *  The one call that takes a relative path of two components
     *  ("<id>/snapshot.json"): listing uses it to check its index
     *  (FORMAT.md, "The listing index"). */
    int (*statat)(void *ctx, int dirfd, const char *path, evs_stat *st);
} evs_io;

/** The POSIX implementation. Never NULL; static; thread-safe. */
EVS_EXTERN const evs_io *evs_io_posix(void);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_IO_H */
