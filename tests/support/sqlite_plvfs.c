/*
 * sqlite_plvfs.c: the recording SQLite VFS of sqlite_plvfs.h, a shim
 * over "unix" that logs what reaches the recorded database's files.
 */
#include "sqlite_plvfs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A file opened through the shim: "unix"'s own file object follows it
 * in the same allocation (szOsFile). */
typedef struct spl_file {
    sqlite3_file base;
    int file;      /* SPL_DB... when recorded, else -1 */
    uint32_t node; /* its identity when recorded */
    int dirsync;   /* "unix" fsyncs the directory at its first sync */
    sqlite3_file *real;
} spl_file;

static struct {
    pthread_mutex_t mu;
    sqlite3_vfs *orig;
    sqlite3_vfs shim;
    int installed, on;
    char path[SPL_NFILES][PATH_MAX + 16];
    const char *name[SPL_NFILES]; /* the last component of path[] */
    uint32_t cur[SPL_NFILES];     /* the node each name names, or 0 */
    uint32_t nnodes;
    uint64_t *size; /* by node: the real file's size */
    size_t size_cap;
    spl_op *ops;
    size_t nops, cap;
    unsigned char *arena;
    size_t alen, acap;
    int drop_syncs;
    int sync_enospc; /* syncs left to fail */
    uint64_t calls;  /* writes, truncates and syncs recorded or refused */
    uint64_t fail_at;
    int fail_forever, fail_full;
    int64_t limit;   /* growth allowed, or -1 */
    uint64_t grown, full;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER, .limit = -1};

static const char *const suffix[SPL_NFILES] = {"", "-wal", "-journal"};

/* Appends an operation (under R.mu); the bytes of a write are copied
 * into the arena. Allocation failure aborts: a log with a hole would
 * make every later image wrong. */
static void add_op(int kind, int file, uint32_t node, uint64_t off,
                   uint64_t len, const void *bytes)
{
    spl_op *op;

    if (R.nops == R.cap) {
        R.cap = R.cap ? R.cap * 2 : 1024;
        R.ops = realloc(R.ops, R.cap * sizeof(*R.ops));
        if (!R.ops)
            abort();
    }
    op = &R.ops[R.nops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->file = file;
    op->node = node;
    op->off = off;
    op->len = len;
    if (kind == SPL_WRITE) {
        if (R.alen + len > R.acap) {
            while (R.alen + len > R.acap)
                R.acap = R.acap ? R.acap * 2 : (size_t)1 << 20;
            R.arena = realloc(R.arena, R.acap);
            if (!R.arena)
                abort();
        }
        memcpy(R.arena + R.alen, bytes, len);
        op->data = R.alen;
        R.alen += len;
    }
}

static uint64_t *node_size(uint32_t node)
{
    if (node >= R.size_cap) {
        size_t n = R.size_cap ? R.size_cap : 64;
        while (n <= node)
            n *= 2;
        R.size = realloc(R.size, n * sizeof(*R.size));
        if (!R.size)
            abort();
        memset(R.size + R.size_cap, 0, (n - R.size_cap) * sizeof(*R.size));
        R.size_cap = n;
    }
    return &R.size[node];
}

/* The recorded file `zName` names, or -1. */
static int which_file(const char *zName)
{
    if (!R.on || !zName)
        return -1;
    for (int f = 0; f < SPL_NFILES; f++)
        if (strcmp(zName, R.path[f]) == 0)
            return f;
    return -1;
}

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((spl_file *)f)->real;
}

/* Whether a call on f is to be recorded (under R.mu). */
static int recorded(const spl_file *sf)
{
    return R.on && sf->file >= 0 && R.cur[sf->file] == sf->node;
}

/* Counts a write, truncate or sync of a recorded file (under R.mu), and
 * returns the error the fault sweep makes it fail with, or SQLITE_OK. */
static int sweep(const spl_file *sf, int io_err)
{
    if (!recorded(sf))
        return SQLITE_OK;
    R.calls++;
    if (!R.fail_at || R.calls < R.fail_at ||
        (R.calls > R.fail_at && !R.fail_forever))
        return SQLITE_OK;
    R.full++;
    return io_err == SQLITE_IOERR_WRITE && R.fail_full ? SQLITE_FULL : io_err;
}

/* ------------------------------------------------------------------ */
/* The file methods                                                   */
/* ------------------------------------------------------------------ */

static int x_close(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int x_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xRead(r, buf, amt, off);
}

static int x_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    spl_file *sf = (spl_file *)f;
    sqlite3_file *r = sf->real;
    uint64_t end = (uint64_t)off + (uint64_t)amt, grow = 0;
    int rc;

    pthread_mutex_lock(&R.mu);
    if ((rc = sweep(sf, SQLITE_IOERR_WRITE)) != SQLITE_OK) {
        pthread_mutex_unlock(&R.mu);
        return rc;
    }
    if (recorded(sf)) {
        uint64_t *sz = node_size(sf->node);
        grow = end > *sz ? end - *sz : 0;
        if (R.limit >= 0 && grow && R.grown + grow > (uint64_t)R.limit) {
            R.full++;
            pthread_mutex_unlock(&R.mu);
            return SQLITE_FULL;
        }
    }
    rc = r->pMethods->xWrite(r, buf, amt, off);
    if (rc == SQLITE_OK && recorded(sf)) {
        uint64_t *sz = node_size(sf->node);
        R.grown += grow;
        if (end > *sz)
            *sz = end;
        add_op(SPL_WRITE, sf->file, sf->node, (uint64_t)off, (uint64_t)amt,
               buf);
    }
    pthread_mutex_unlock(&R.mu);
    return rc;
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    spl_file *sf = (spl_file *)f;
    int rc;

    pthread_mutex_lock(&R.mu);
    rc = sweep(sf, SQLITE_IOERR_TRUNCATE);
    pthread_mutex_unlock(&R.mu);
    if (rc != SQLITE_OK)
        return rc;
    rc = sf->real->pMethods->xTruncate(sf->real, size);
    pthread_mutex_lock(&R.mu);
    if (rc == SQLITE_OK && recorded(sf)) {
        *node_size(sf->node) = (uint64_t)size;
        add_op(SPL_TRUNC, sf->file, sf->node, 0, (uint64_t)size, NULL);
    }
    pthread_mutex_unlock(&R.mu);
    return rc;
}

static int x_sync(sqlite3_file *f, int flags)
{
    spl_file *sf = (spl_file *)f;
    int rc;

    pthread_mutex_lock(&R.mu);
    if (R.drop_syncs && recorded(sf)) {
        pthread_mutex_unlock(&R.mu);
        return SQLITE_OK;
    }
    if ((rc = sweep(sf, SQLITE_IOERR_FSYNC)) != SQLITE_OK) {
        pthread_mutex_unlock(&R.mu);
        return rc;
    }
    if (R.sync_enospc > 0 && recorded(sf)) {
        R.sync_enospc--;
        R.full++;
        pthread_mutex_unlock(&R.mu);
        errno = ENOSPC; /* what "unix"'s xGetLastError reports */
        return SQLITE_IOERR_FSYNC;
    }
    pthread_mutex_unlock(&R.mu);
    rc = sf->real->pMethods->xSync(sf->real, flags);
    pthread_mutex_lock(&R.mu);
    if (rc == SQLITE_OK && recorded(sf)) {
        add_op(SPL_SYNC, sf->file, sf->node, 0, 0, NULL);
        if (sf->dirsync)
            add_op(SPL_DIRSYNC, sf->file, sf->node, 0, 0, NULL);
    }
    if (rc == SQLITE_OK)
        sf->dirsync = 0;
    pthread_mutex_unlock(&R.mu);
    return rc;
}

static int x_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileSize(r, size);
}

static int x_lock(sqlite3_file *f, int lk)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xLock(r, lk);
}

static int x_unlock(sqlite3_file *f, int lk)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xUnlock(r, lk);
}

static int x_check_reserved(sqlite3_file *f, int *out)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xCheckReservedLock(r, out);
}

static int x_file_control(sqlite3_file *f, int op, void *arg)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileControl(r, op, arg);
}

static int x_sector_size(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xSectorSize(r);
}

static int x_device_chars(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xDeviceCharacteristics(r);
}

static int x_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                     void volatile **pp)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmMap(r, pg, pgsz, extend, pp);
}

static int x_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmLock(r, off, n, flags);
}

static void x_shm_barrier(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    r->pMethods->xShmBarrier(r);
}

static int x_shm_unmap(sqlite3_file *f, int del)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmUnmap(r, del);
}

static int x_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFetch(r, off, amt, pp);
}

static int x_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xUnfetch(r, off, p);
}

static const sqlite3_io_methods spl_methods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved,
    x_file_control,
    x_sector_size,
    x_device_chars,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

/* ------------------------------------------------------------------ */
/* The VFS                                                            */
/* ------------------------------------------------------------------ */

static int v_open(sqlite3_vfs *vfs, sqlite3_filename zName, sqlite3_file *f,
                  int flags, int *out_flags)
{
    spl_file *sf = (spl_file *)f;
    int type = flags & 0x0FFFFF00, rc;

    (void)vfs;
    memset(sf, 0, sizeof(*sf));
    sf->real = (sqlite3_file *)(sf + 1);
    sf->file = -1;
    rc = R.orig->xOpen(R.orig, zName, sf->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        /* "unix" may have set pMethods for a failed open: close it. */
        if (sf->real->pMethods)
            sf->real->pMethods->xClose(sf->real);
        return rc;
    }
    sf->base.pMethods = &spl_methods;
    pthread_mutex_lock(&R.mu);
    sf->file = which_file(zName);
    if (sf->file >= 0) {
        sqlite3_int64 size = 0;
        if (!R.cur[sf->file]) {
            /* A new name (the directory was empty when recording began,
             * and this name was deleted since if it ever was). */
            R.cur[sf->file] = ++R.nnodes;
            add_op(SPL_CREATE, sf->file, R.nnodes, 0, 0, NULL);
            sf->real->pMethods->xFileSize(sf->real, &size);
            *node_size(R.nnodes) = (uint64_t)size;
        }
        sf->node = R.cur[sf->file];
        /* As os_unix.c's unixOpen: a journal or WAL opened to be
         * created has its directory fsynced at its first sync. */
        sf->dirsync = (flags & SQLITE_OPEN_CREATE) &&
                      (type & (SQLITE_OPEN_MAIN_JOURNAL |
                               SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL));
    }
    pthread_mutex_unlock(&R.mu);
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *zName, int sync_dir)
{
    int rc, f;

    (void)vfs;
    rc = R.orig->xDelete(R.orig, zName, sync_dir);
    pthread_mutex_lock(&R.mu);
    f = which_file(zName);
    if (rc == SQLITE_OK && f >= 0 && R.cur[f]) {
        add_op(SPL_DELETE, f, R.cur[f], 0, 0, NULL);
        R.cur[f] = 0;
        if (sync_dir)
            add_op(SPL_DIRSYNC, f, 0, 0, 0, NULL);
    }
    pthread_mutex_unlock(&R.mu);
    return rc;
}

int spl_install(void)
{
    int rc = 0;

    pthread_mutex_lock(&R.mu);
    if (!R.installed) {
        R.orig = sqlite3_vfs_find("unix");
        if (!R.orig) {
            rc = -1;
        } else {
            /* Everything but opening and deleting is "unix"'s own, which
             * reads nothing of the VFS object it is given but pAppData,
             * copied here too. */
            R.shim = *R.orig;
            R.shim.pNext = NULL;
            R.shim.zName = "evs_plvfs";
            R.shim.szOsFile = (int)sizeof(spl_file) + R.orig->szOsFile;
            R.shim.xOpen = v_open;
            R.shim.xDelete = v_delete;
            if (sqlite3_vfs_register(&R.shim, 1) != SQLITE_OK)
                rc = -1;
            else
                R.installed = 1;
        }
    }
    pthread_mutex_unlock(&R.mu);
    return rc;
}

int spl_record(const char *db_path)
{
    char full[PATH_MAX + 1];
    int rc = 0;

    if (!R.installed ||
        R.orig->xFullPathname(R.orig, db_path, (int)sizeof(full), full) !=
            SQLITE_OK ||
        strlen(full) >= PATH_MAX)
        return -1;
    pthread_mutex_lock(&R.mu);
    R.on = 1;
    for (int f = 0; f < SPL_NFILES; f++) {
        const char *slash;
        snprintf(R.path[f], sizeof(R.path[f]), "%s%s", full, suffix[f]);
        slash = strrchr(R.path[f], '/');
        R.name[f] = slash ? slash + 1 : R.path[f];
        R.cur[f] = 0;
    }
    R.nnodes = 0;
    R.nops = 0;
    R.alen = 0;
    R.drop_syncs = 0;
    R.sync_enospc = 0;
    R.calls = R.fail_at = 0;
    R.limit = -1;
    R.grown = R.full = 0;
    pthread_mutex_unlock(&R.mu);
    return rc;
}

void spl_stop(void)
{
    pthread_mutex_lock(&R.mu);
    R.on = 0;
    R.drop_syncs = 0;
    R.sync_enospc = 0;
    R.fail_at = 0;
    R.limit = -1;
    pthread_mutex_unlock(&R.mu);
}

size_t spl_nops(void)
{
    return R.nops;
}

const spl_op *spl_op_at(size_t i)
{
    return i < R.nops ? &R.ops[i] : NULL;
}

const unsigned char *spl_bytes(const spl_op *op)
{
    return R.arena + op->data;
}

const char *spl_file_name(int file)
{
    return file >= 0 && file < SPL_NFILES ? R.name[file] : NULL;
}

void spl_drop_syncs(int on)
{
    pthread_mutex_lock(&R.mu);
    R.drop_syncs = on;
    pthread_mutex_unlock(&R.mu);
}

void spl_disk_limit(int64_t bytes)
{
    pthread_mutex_lock(&R.mu);
    R.limit = bytes < 0 ? -1 : bytes;
    R.grown = 0;
    pthread_mutex_unlock(&R.mu);
}

uint64_t spl_full_count(void)
{
    return R.full;
}

void spl_sync_enospc(int n)
{
    pthread_mutex_lock(&R.mu);
    R.sync_enospc = n;
    pthread_mutex_unlock(&R.mu);
}

void spl_fail(uint64_t at, int forever, int full)
{
    pthread_mutex_lock(&R.mu);
    R.fail_at = at;
    R.fail_forever = forever;
    R.fail_full = full;
    pthread_mutex_unlock(&R.mu);
}

uint64_t spl_calls(void)
{
    return R.calls;
}
