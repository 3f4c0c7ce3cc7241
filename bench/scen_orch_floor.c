/*
 * scen_orch_floor.c: P9's system calls (scen_orch.c): the I/O table that
 * counts those the store makes in the warm-up, and the floors, which make
 * the same writes, syncs and layout raw, on as many threads as the
 * orchestrator's threadpool has.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* An I/O table that counts                                           */
/* ------------------------------------------------------------------ */

/* The POSIX table with counters in front, for the warm-up. Static: a
 * table must outlive the stores that use it. */
static struct io_count {
    evs_io io;
    pthread_t loop; /* the orchestrator's thread */
    atomic_ulong syncs, loop_syncs, loop_calls, opens, mkdirs, renames, writes;
} ioc;

static const evs_io *px(void)
{
    return evs_io_posix();
}

static void count_call(atomic_ulong *n)
{
    atomic_fetch_add(n, 1);
    if (pthread_equal(pthread_self(), ioc.loop))
        atomic_fetch_add(&ioc.loop_calls, 1);
}

static void count_sync(void)
{
    count_call(&ioc.syncs);
    if (pthread_equal(pthread_self(), ioc.loop))
        atomic_fetch_add(&ioc.loop_syncs, 1);
}

static int ioc_openat(void *ctx, int dirfd, const char *name, int flags,
                      mode_t mode, int *fd)
{
    (void)ctx;
    count_call(&ioc.opens);
    return px()->openat(px()->ctx, dirfd, name, flags, mode, fd);
}

static int ioc_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt,
                       uint64_t off)
{
    (void)ctx;
    count_call(&ioc.writes);
    return px()->pwritev(px()->ctx, fd, iov, iovcnt, off);
}

static int ioc_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    count_sync();
    return px()->fdatasync(px()->ctx, fd);
}

static int ioc_fsync(void *ctx, int fd)
{
    (void)ctx;
    count_sync();
    return px()->fsync(px()->ctx, fd);
}

static int ioc_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    (void)ctx;
    count_call(&ioc.mkdirs);
    return px()->mkdirat(px()->ctx, dirfd, name, mode);
}

static int ioc_renameat(void *ctx, int odir, const char *oname, int ndir,
                        const char *nname, unsigned flags)
{
    (void)ctx;
    count_call(&ioc.renames);
    return px()->renameat(px()->ctx, odir, oname, ndir, nname, flags);
}

const evs_io *p9_io_counting(void)
{
    ioc.io = *px();
    ioc.io.ctx = &ioc;
    ioc.io.openat = ioc_openat;
    ioc.io.pwritev = ioc_pwritev;
    ioc.io.fdatasync = ioc_fdatasync;
    ioc.io.fsync = ioc_fsync;
    ioc.io.mkdirat = ioc_mkdirat;
    ioc.io.renameat = ioc_renameat;
    ioc.loop = pthread_self();
    atomic_store(&ioc.syncs, 0);
    atomic_store(&ioc.loop_syncs, 0);
    atomic_store(&ioc.loop_calls, 0);
    atomic_store(&ioc.opens, 0);
    atomic_store(&ioc.mkdirs, 0);
    atomic_store(&ioc.renames, 0);
    atomic_store(&ioc.writes, 0);
    return &ioc.io;
}

void p9_io_counted(p9_io_counts *out)
{
    out->syncs = atomic_load(&ioc.syncs);
    out->loop_syncs = atomic_load(&ioc.loop_syncs);
    out->loop_calls = atomic_load(&ioc.loop_calls);
    out->opens = atomic_load(&ioc.opens);
    out->mkdirs = atomic_load(&ioc.mkdirs);
    out->renames = atomic_load(&ioc.renames);
    out->writes = atomic_load(&ioc.writes);
}

/* ------------------------------------------------------------------ */
/* The floors                                                         */
/* ------------------------------------------------------------------ */

typedef struct floor_thread {
    p9_floor_run *run;
    int tid;
    pthread_t th;
    int err; /* errno */
} floor_thread;

static int sys_rc(int rc)
{
    return rc < 0 ? -errno : 0;
}

/* A new file dir/name holding buf[0..len), synced with `sync`; returns
 * 0 or -errno, with the file open in *fd. */
static int layout_file(int dir, const char *name, const void *buf, size_t len,
                       int sync, int *fd)
{
    int rc;

    *fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
                 0600);
    if (*fd < 0)
        return -errno;
    rc = floor_write_all(*fd, buf, len);
    if (rc == 0 && sync)
        rc = sys_rc(fsync(*fd));
    return rc;
}

/* A line noted in the store's listing index (FORMAT.md §12): one write
 * with O_APPEND to the shared file, opened for it. */
static int layout_note(int root, const char *line, size_t len)
{
    int fd = openat(root, "index", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                    0600), rc;

    if (fd < 0)
        return -errno;
    rc = floor_write_all(fd, line, len);
    close(fd);
    return rc;
}

/* What evstore's layout asks of the file system for one workflow, with
 * the raw calls: a temporary directory holding the log (first append)
 * and a snapshot by rename, renamed into place; the other appends; a
 * final snapshot by rename; each snapshot noted in the listing index.
 * With `sync`, the syncs that make each step durable: 7 (the log, the
 * new directory and the store directory at creation, then each append;
 * snapshots are a cache of the log, written without syncs). No inbox:
 * nothing posts to these executions. */
static int layout_one(p9_floor_run *r, int root, int tid, size_t i)
{
    const p9_appends *a = r->a;
    char tmp[64], fin[64];
    int dir = -1, log = -1, snap = -1, rc;
    size_t note = r->snap_len < 512 ? r->snap_len : 512;

    snprintf(tmp, sizeof(tmp), ".tmp-%d-%zu", tid, i);
    snprintf(fin, sizeof(fin), "w-%d-%zu", tid, i);
    if ((rc = sys_rc(mkdirat(root, tmp, 0700))) != 0)
        return rc;
    dir = openat(root, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    rc = layout_file(dir, "events.jsonl", a->buf, a->off[1], r->sync, &log);
    if (rc == 0)
        rc = layout_file(dir, ".tmp-snap", r->snap, r->snap_len, 0, &snap);
    if (rc == 0)
        rc = sys_rc(renameat(dir, ".tmp-snap", dir, "snapshot.json"));
    if (rc == 0 && r->sync)
        rc = sys_rc(fsync(dir));
    if (rc == 0)
        rc = sys_rc(renameat(root, tmp, root, fin));
    if (rc == 0 && r->sync)
        rc = sys_rc(fsync(root));
    if (rc == 0)
        rc = layout_note(root, r->snap, note);
    for (size_t k = 1; k < a->n && rc == 0; k++) {
        rc =
            floor_write_all(log, a->buf + a->off[k], a->off[k + 1] - a->off[k]);
        if (rc == 0 && r->sync)
            rc = floor_fdatasync(log);
    }
    if (snap >= 0)
        close(snap);
    snap = -1;
    if (rc == 0)
        rc = layout_file(dir, ".tmp-snap", r->snap, r->snap_len, 0, &snap);
    if (rc == 0)
        rc = sys_rc(renameat(dir, ".tmp-snap", dir, "snapshot.json"));
    if (rc == 0)
        rc = layout_note(root, r->snap, note);
    if (snap >= 0)
        close(snap);
    if (log >= 0)
        close(log);
    close(dir);
    return rc;
}

static void *floor_main(void *arg)
{
    floor_thread *t = arg;
    p9_floor_run *r = t->run;
    char name[32];
    int fd;

    if (r->layout) {
        fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        snprintf(name, sizeof(name), "p9-%d.jsonl", t->tid);
        fd = floor_open(r->c->floor, name,
                        O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    }
    if (fd < 0)
        t->err = errno;
    pthread_barrier_wait(&r->start);
    for (size_t i = 0; i < r->per_thread && !t->err; i++) {
        int rc;

        if (r->layout) {
            rc = layout_one(r, fd, t->tid, i);
        } else {
            /* One workflow's appends in order, over and over, as the
             * orchestrator's flushes write them. */
            size_t k = i % r->a->n;

            rc = floor_write_all(fd, r->a->buf + r->a->off[k],
                                 r->a->off[k + 1] - r->a->off[k]);
            if (rc == 0 && r->sync)
                rc = floor_fdatasync(fd);
        }
        t->err = -rc;
    }
    if (fd >= 0)
        close(fd);
    if (!r->layout)
        floor_unlink(r->c->floor, name);
    return NULL;
}

double p9_floor_rate(bench_ctx *c, p9_floor_run *r, size_t total)
{
    floor_thread th[P9_FLOOR_THREADS];
    uint64_t t0;
    int err = 0;

    if (r->layout && mkdir(r->dir, 0700) != 0) {
        bench_fail(c, "floor: mkdir %s: %s", r->dir, strerror(errno));
        return -1;
    }
    r->c = c;
    r->per_thread = (total + P9_FLOOR_THREADS - 1) / P9_FLOOR_THREADS;
    pthread_barrier_init(&r->start, NULL, P9_FLOOR_THREADS + 1);
    for (int i = 0; i < P9_FLOOR_THREADS; i++) {
        th[i].run = r;
        th[i].tid = i;
        th[i].err = 0;
        if (pthread_create(&th[i].th, NULL, floor_main, &th[i]) != 0) {
            /* The barrier cannot be met without every thread. */
            fprintf(stderr, "evbench: pthread_create failed\n");
            exit(1);
        }
    }
    /* No thread starts before this one reaches the barrier. */
    t0 = bench_now_ns();
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < P9_FLOOR_THREADS; i++) {
        pthread_join(th[i].th, NULL);
        if (th[i].err && !err)
            err = th[i].err;
    }
    t0 = bench_now_ns() - t0;
    pthread_barrier_destroy(&r->start);
    if (err) {
        bench_fail(c, "floor: %s", strerror(err));
        return -1;
    }
    return (double)(r->per_thread * P9_FLOOR_THREADS) / ((double)t0 / 1e9);
}
