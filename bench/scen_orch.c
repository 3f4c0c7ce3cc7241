/*
 * scen_orch.c: P9, the orchestrator.
 *
 * Throughput: N executions of a linear 3-step workflow (three `action`
 * steps calling "noop", a C action that completes at once with its input)
 * are started together on one orchestrator with its own loop and
 * stop_when_idle, and run to completion: workflows/s from the first
 * evs_orch_start to the return of evs_orch_run, once with a store in
 * EVS_SYNC_FULL and once in EVS_SYNC_NONE.
 *
 * Durable, the floor is the raw I/O of the same appends: after each run
 * the logs are read back to count the appends (batches) the orchestrator
 * really made per workflow, and 16 threads (the libuv threadpool's size
 * here, set as evrun sets it: all the parallelism the orchestrator's
 * writes get) each
 * write those appends' bytes to a file of their own with fdatasync after
 * each; floor workflows/s is that append rate divided by the appends per
 * workflow. Without sync, appends alone cost nothing next to creating
 * files, so the floor is the layout's: 16 threads making, per workflow,
 * the directories, files and renames of an execution (a temporary
 * directory with the log and a snapshot, renamed into place; the
 * appends; the final snapshot by rename), with the raw system calls.
 * The same layout floor with every sync is in the notes. There is no
 * SQLite peer.
 *
 * A warm-up run goes through an I/O table that counts the store's system
 * calls per workflow (and the syncs made on the loop thread), for the
 * notes. Every store of the scenario is kept until it ends: on this
 * machine's ext4 (no journal), inode allocation steps over recently freed
 * inodes one at a time, so removing a repetition's files would slow the
 * next one down.
 *
 * Latency: executions of `wait_event` -> `action` are started and left
 * waiting. For each, a forked child takes it over (evs_orch_resume) and
 * runs it, and this process posts the event through the inbox
 * (evs_orch_post). The latency is the timestamp of the action step's
 * step_started in the log minus the wall-clock time just before the post;
 * the notes split it at the return of the post and at the timestamp of
 * signal_received.
 */
#include "evbench.h"

#include <evstore/orchestrator.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The threadpool size the scenario runs the orchestrator with (as evrun
 * does), and the floor's threads to match. */
#define FLOOR_THREADS 16
#define WARM_WORKFLOWS 8

static const char wf_three[] =
    "{\"name\":\"p9\",\"steps\":["
    "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":1},\"next\":\"b\"},"
    "{\"name\":\"b\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":2},\"next\":\"c\"},"
    "{\"name\":\"c\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":3}}]}";

static const char wf_wait[] =
    "{\"name\":\"p9-wait\",\"steps\":["
    "{\"name\":\"wait\",\"kind\":\"wait_event\",\"event\":\"go\","
    "\"next\":\"act\"},"
    "{\"name\":\"act\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":2}}]}";

typedef char exec_id[EVS_ID_MAX + 1];

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

static const evs_io *ioc_table(void)
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

/* ------------------------------------------------------------------ */
/* Running workflows                                                  */
/* ------------------------------------------------------------------ */

/* What on_outcome saw during one evs_orch_run. */
typedef struct outcomes {
    size_t completed, suspended, other;
    char first_bad[EVS_ID_MAX + 64];
    evs_orch *stop; /* stop this orchestrator when one ends */
} outcomes;

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    outcomes *r = arg;

    if (oc == EVS_OUTCOME_COMPLETED)
        r->completed++;
    else if (oc == EVS_OUTCOME_SUSPENDED)
        r->suspended++;
    else if (r->other++ == 0)
        snprintf(r->first_bad, sizeof(r->first_bad), "%s: %s (%s)", id,
                 evs_outcome_name(oc), evs_err_name(err));
    if (r->stop && oc != EVS_OUTCOME_SUSPENDED)
        evs_orch_stop(r->stop, 0);
}

/* The no-op action: done at once, on the loop thread, with its input. */
static void noop_action(void *arg, evs_action_req *req)
{
    (void)arg;
    evs_action_complete(req, evs_action_req_call(req)->input);
}

static int open_store(bench_ctx *c, const char *path, evs_durability d,
                      const evs_io *io, evs_store **out)
{
    evs_store_opts o;
    int rc;

    evs_store_opts_init(&o);
    o.durability = d;
    if (io)
        o.io = io;
    rc = evs_store_open(path, &o, out);
    if (rc != 0)
        return bench_evs_fail(c, rc, "evs_store_open");
    return 0;
}

static int orch_make(evs_store *st, outcomes *oc, int stop_when_idle,
                     evs_orch **out)
{
    evs_orch_opts oo;
    int rc;

    evs_orch_opts_init(&oo);
    oo.stop_when_idle = stop_when_idle;
    oo.on_outcome = on_outcome;
    oo.arg = oc;
    rc = evs_orch_new(st, &oo, out);
    if (rc == 0 &&
        (rc = evs_orch_register(*out, "noop", noop_action, NULL, 0)) != 0) {
        evs_orch_free(*out);
        *out = NULL;
    }
    return rc;
}

/* Starts n executions of `def` and runs the orchestrator until it is
 * idle; *secs is the time from the first start to the end of the run.
 * Every execution must end as `want`. */
static int run_batch(bench_ctx *c, evs_store *st, const char *def, size_t n,
                     evs_outcome want, exec_id *ids, double *secs)
{
    evs_orch *o = NULL;
    outcomes oc;
    evs_wf_error we;
    uint64_t t0;
    size_t started = 0, got;
    int rc = -1, err;

    memset(&oc, 0, sizeof(oc));
    if ((err = orch_make(st, &oc, 1, &o)) != 0)
        return bench_evs_fail(c, err, "evs_orch_new");
    t0 = bench_now_ns();
    for (; started < n; started++) {
        err = evs_orch_start(o, evs_span_cstr(def), (evs_span){0},
                             (evs_span){0}, ids[started], &we);
        if (err != 0) {
            bench_fail(c, "evs_orch_start: %s (%s) %s", evs_strerror(err),
                       evs_err_name(err), we.msg);
            break;
        }
    }
    /* With a failed start, still run what was started, so that it is
     * released. */
    err = evs_orch_run(o);
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    if (err != 0) {
        bench_fail(c, "evs_orch_run: %s", evs_strerror(err));
        goto out;
    }
    if (started < n)
        goto out;
    if (oc.other) {
        bench_fail(c,
                   "%zu executions did not end as expected; the first: "
                   "%s",
                   oc.other, oc.first_bad);
        goto out;
    }
    got = want == EVS_OUTCOME_COMPLETED ? oc.completed : oc.suspended;
    if (got != n) {
        bench_fail(c, "%zu of %zu executions ended as %s", got, n,
                   evs_outcome_name(want));
        goto out;
    }
    rc = 0;
out:
    evs_orch_free(o);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading the logs back                                              */
/* ------------------------------------------------------------------ */

/* The appends of one log: their bytes, for the floor. */
typedef struct appends {
    char *buf;
    size_t len, cap;
    size_t *off; /* append i is buf[off[i] .. off[i + 1]) */
    size_t n, ncap;
} appends;

static int appends_add(appends *a, evs_span raw, int new_append)
{
    if (new_append) {
        if (a->n + 2 > a->ncap) {
            size_t nc = a->ncap ? a->ncap * 2 : 16;
            size_t *no = realloc(a->off, nc * sizeof(*no));

            if (!no)
                return -ENOMEM;
            a->off = no;
            a->ncap = nc;
        }
        a->off[a->n++] = a->len;
    }
    if (a->len + raw.len > a->cap) {
        size_t nc = (a->len + raw.len) * 2;
        char *nb = realloc(a->buf, nc);

        if (!nb)
            return -ENOMEM;
        a->buf = nb;
        a->cap = nc;
    }
    memcpy(a->buf + a->len, raw.ptr, raw.len);
    a->len += raw.len;
    a->off[a->n] = a->len;
    return 0;
}

static void appends_free(appends *a)
{
    free(a->buf);
    free(a->off);
    memset(a, 0, sizeof(*a));
}

/* What reading one log back found. */
typedef struct log_count {
    uint64_t events, appends;
    int ended;               /* the last event is execution_completed */
    int64_t signal_us;       /* of the first signal_received, or 0 */
    int64_t step_started_us; /* of the step asked for, or 0 */
} log_count;

static int span_is(evs_span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Reads execution `id` back: its events and appends (an append of n > 1
 * events carries "batch":[first, n] on each line), whether it completed,
 * and when step `step` (may be NULL) started. With `keep`, the appends'
 * bytes are added to it. */
static int count_log(bench_ctx *c, evs_store *st, const char *id,
                     const char *step, log_count *lc, appends *keep)
{
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    evs_span raw;
    int rc;

    memset(lc, 0, sizeof(*lc));
    memset(&info, 0, sizeof(info));
    rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, &info);
    if (rc == 0)
        rc = evs_cursor_open(l, 1, 0, &cur, &info);
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, &raw, &info)) == 1) {
        int first = ev.batch_count <= 1 || ev.sequence == ev.batch_first;

        rc = 0;
        lc->events++;
        lc->appends += (uint64_t)first;
        lc->ended = span_is(ev.event_type, "execution_completed");
        if (!lc->signal_us && span_is(ev.event_type, "signal_received"))
            lc->signal_us = ev.timestamp_us;
        if (step && span_is(ev.step_name, step) &&
            span_is(ev.event_type, "step_started"))
            lc->step_started_us = ev.timestamp_us;
        if (keep && appends_add(keep, raw, first) != 0) {
            rc = -ENOMEM;
            snprintf(info.msg, sizeof(info.msg), "out of memory");
        }
    }
    evs_cursor_close(cur);
    evs_log_close(l);
    if (rc != 0)
        return bench_fail(c, "reading %s back: %s (%s)", id,
                          info.msg[0] ? info.msg : evs_strerror(rc),
                          evs_err_name(rc));
    return 0;
}

/* Sums the events and appends of the logs ids[0..n), which must all have
 * completed. */
static int count_logs(bench_ctx *c, evs_store *st, exec_id *ids, size_t n,
                      uint64_t *events, uint64_t *nappends)
{
    log_count lc;

    *events = *nappends = 0;
    for (size_t i = 0; i < n; i++) {
        if (count_log(c, st, ids[i], NULL, &lc, NULL) != 0)
            return -1;
        if (!lc.ended)
            return bench_fail(c,
                              "%s: the log does not end with "
                              "execution_completed",
                              ids[i]);
        *events += lc.events;
        *nappends += lc.appends;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The floors                                                         */
/* ------------------------------------------------------------------ */

typedef struct floor_run {
    bench_ctx *c;
    const appends *a;
    size_t snap_len; /* bytes of a snapshot (layout floor) */
    const char *snap;
    char dir[4400];    /* where the layout floor makes its files */
    size_t per_thread; /* appends, or workflows, per thread */
    int layout;        /* 0: appends alone; 1: the layout */
    int sync;
    pthread_barrier_t start;
} floor_run;

typedef struct floor_thread {
    floor_run *run;
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

/* What evstore's layout asks of the file system for one workflow, with
 * the raw calls: a temporary directory holding the log (first append)
 * and a snapshot by rename, renamed into place; the other appends; a
 * final snapshot by rename. With `sync`, the syncs that make each step
 * durable: 10. No inbox: nothing posts to these executions. */
static int layout_one(floor_run *r, int root, int tid, size_t i)
{
    const appends *a = r->a;
    char tmp[64], fin[64];
    int dir = -1, log = -1, snap = -1, rc;

    snprintf(tmp, sizeof(tmp), ".tmp-%d-%zu", tid, i);
    snprintf(fin, sizeof(fin), "w-%d-%zu", tid, i);
    if ((rc = sys_rc(mkdirat(root, tmp, 0700))) != 0)
        return rc;
    dir = openat(root, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    rc = layout_file(dir, "events.jsonl", a->buf, a->off[1], r->sync, &log);
    if (rc == 0)
        rc =
            layout_file(dir, ".tmp-snap", r->snap, r->snap_len, r->sync, &snap);
    if (rc == 0)
        rc = sys_rc(renameat(dir, ".tmp-snap", dir, "snapshot.json"));
    if (rc == 0 && r->sync)
        rc = sys_rc(fsync(dir));
    if (rc == 0)
        rc = sys_rc(renameat(root, tmp, root, fin));
    if (rc == 0 && r->sync)
        rc = sys_rc(fsync(root));
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
        rc =
            layout_file(dir, ".tmp-snap", r->snap, r->snap_len, r->sync, &snap);
    if (rc == 0)
        rc = sys_rc(renameat(dir, ".tmp-snap", dir, "snapshot.json"));
    if (rc == 0 && r->sync)
        rc = sys_rc(fsync(dir));
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
    floor_run *r = t->run;
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

/*
 * Runs a floor on FLOOR_THREADS threads, `total` units (appends, or
 * workflows for the layout) shared among them, and returns units/s, or a
 * negative value on error. The layout floor works in `dir`, which it
 * creates.
 */
static double floor_rate(bench_ctx *c, floor_run *r, size_t total)
{
    floor_thread th[FLOOR_THREADS];
    uint64_t t0;
    int err = 0;

    if (r->layout && mkdir(r->dir, 0700) != 0) {
        bench_fail(c, "floor: mkdir %s: %s", r->dir, strerror(errno));
        return -1;
    }
    r->c = c;
    r->per_thread = (total + FLOOR_THREADS - 1) / FLOOR_THREADS;
    pthread_barrier_init(&r->start, NULL, FLOOR_THREADS + 1);
    for (int i = 0; i < FLOOR_THREADS; i++) {
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
    for (int i = 0; i < FLOOR_THREADS; i++) {
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
    return (double)(r->per_thread * FLOOR_THREADS) / ((double)t0 / 1e9);
}

/* ------------------------------------------------------------------ */
/* Throughput                                                         */
/* ------------------------------------------------------------------ */

typedef struct tp_result {
    double wf_s;            /* workflows/s */
    double events, appends; /* per workflow */
} tp_result;

/* One throughput run of n workflows in a fresh store at `path`. With
 * `keep`, the first execution's appends are added to it and the size of
 * its last snapshot goes to *snap_len. */
static int throughput_once(bench_ctx *c, const char *path, evs_durability d,
                           const evs_io *io, size_t n, tp_result *res,
                           appends *keep, size_t *snap_len)
{
    char spath[4600];
    evs_store *st = NULL;
    exec_id *ids;
    uint64_t events, nappends;
    struct stat sb;
    log_count lc;
    double secs;
    int rc = -1;

    ids = calloc(n, sizeof(*ids));
    if (!ids)
        return bench_fail(c, "out of memory");
    if (open_store(c, path, d, io, &st) != 0)
        goto out;
    if (run_batch(c, st, wf_three, n, EVS_OUTCOME_COMPLETED, ids, &secs) != 0)
        goto out;
    if (count_logs(c, st, ids, n, &events, &nappends) != 0)
        goto out;
    if (keep) {
        if (count_log(c, st, ids[0], NULL, &lc, keep) != 0)
            goto out;
        /* STORE/<id>/snapshot.json (formats/FORMAT.md §1) */
        snprintf(spath, sizeof(spath), "%s/%s/snapshot.json", path, ids[0]);
        *snap_len = stat(spath, &sb) == 0 ? (size_t)sb.st_size : 2048;
    }
    res->wf_s = (double)n / secs;
    res->events = (double)events / (double)n;
    res->appends = (double)nappends / (double)n;
    rc = 0;
out:
    evs_store_close(st);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Latency of an event from another process                           */
/* ------------------------------------------------------------------ */

typedef struct ready_timer {
    uv_timer_t h;
    int fd;
} ready_timer;

static void ready_closed(uv_handle_t *h)
{
    (void)h;
}

/* Fires on the child's first loop iteration: the runner owns the
 * execution and watches its inbox, so the parent may post now. */
static void ready_cb(uv_timer_t *h)
{
    ready_timer *r = h->data;
    char b = 'r';

    if (write(r->fd, &b, 1) != 1)
        _exit(5);
    close(r->fd);
    uv_close((uv_handle_t *)h, ready_closed);
}

/* The child: runs execution `id` until it ends. Never returns. */
static void runner_child(const char *store_path, const char *id, int fd)
{
    evs_store *st = NULL;
    evs_orch *o = NULL;
    outcomes oc;
    ready_timer rt;
    int rc;

    /* A runner that hangs must not hang the benchmark. */
    alarm(30);
    memset(&oc, 0, sizeof(oc));
    if (evs_store_open(store_path, NULL, &st) != 0 ||
        orch_make(st, &oc, 0, &o) != 0)
        _exit(2);
    oc.stop = o;
    if (evs_orch_resume(o, evs_span_cstr(id)) != 0)
        _exit(3);
    rt.fd = fd;
    uv_timer_init(evs_orch_loop(o), &rt.h);
    rt.h.data = &rt;
    uv_timer_start(&rt.h, ready_cb, 0, 0);
    rc = evs_orch_run(o);
    evs_orch_free(o);
    evs_store_close(st);
    _exit(rc == 0 && oc.completed == 1 && oc.other == 0 ? 0 : 4);
}

/* Has execution `id` taken over by a child and posts its event; *t_post
 * is the wall-clock time just before the post, *t_done just after. */
static int latency_once(bench_ctx *c, evs_store *st, const char *path,
                        const char *id, int64_t *t_post, int64_t *t_done)
{
    int fds[2], status = 0, rc = -1;
    pid_t pid;
    char b;
    ssize_t got;

    if (pipe(fds) != 0)
        return bench_fail(c, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return bench_fail(c, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        runner_child(path, id, fds[1]);
    }
    close(fds[1]);
    do
        got = read(fds[0], &b, 1);
    while (got < 0 && errno == EINTR);
    close(fds[0]);
    if (got != 1) {
        bench_fail(c, "the runner of %s did not start", id);
        kill(pid, SIGKILL);
        goto wait;
    }
    *t_post = evs_now_us();
    rc = evs_orch_post(st, evs_span_cstr(id), evs_span_cstr("event"),
                       evs_span_cstr("go"), evs_span_cstr("{\"ok\":true}"));
    *t_done = evs_now_us();
    if (rc != 0) {
        bench_evs_fail(c, rc, "evs_orch_post");
        rc = -1;
        kill(pid, SIGKILL);
    }
wait:
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = bench_fail(c, "the runner of %s failed (status 0x%x)", id,
                        (unsigned)status);
    return rc;
}

/* Latencies of an event from another process, in µs: lat[0..n) in
 * total; post[], pick[] and step[] its parts (the post call; from its
 * start to signal_received; from there to step_started). */
typedef struct lat_run {
    double *lat, *post, *pick, *step;
} lat_run;

/* n waiting executions in a fresh store at `path`, each run by a child
 * after its event is posted. */
static int latency_run(bench_ctx *c, const char *path, size_t n, lat_run *out)
{
    evs_store *st = NULL;
    exec_id *ids;
    int64_t *t_post = NULL, *t_done = NULL;
    log_count lc;
    double secs;
    int rc = -1;

    ids = calloc(n, sizeof(*ids));
    t_post = calloc(n, sizeof(*t_post));
    t_done = calloc(n, sizeof(*t_done));
    if (!ids || !t_post || !t_done) {
        bench_fail(c, "out of memory");
        goto out;
    }
    if (open_store(c, path, EVS_SYNC_FULL, NULL, &st) != 0)
        goto out;
    if (run_batch(c, st, wf_wait, n, EVS_OUTCOME_SUSPENDED, ids, &secs) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        bench_progress(c, 0, "p9: latency %zu/%zu", i + 1, n);
        if (latency_once(c, st, path, ids[i], &t_post[i], &t_done[i]) != 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (count_log(c, st, ids[i], "act", &lc, NULL) != 0)
            goto out;
        if (!lc.ended || !lc.step_started_us || !lc.signal_us) {
            bench_fail(c,
                       "%s: no signal_received or step_started of "
                       "'act', or not completed",
                       ids[i]);
            goto out;
        }
        out->lat[i] = (double)(lc.step_started_us - t_post[i]);
        out->post[i] = (double)(t_done[i] - t_post[i]);
        out->pick[i] = (double)(lc.signal_us - t_post[i]);
        out->step[i] = (double)(lc.step_started_us - lc.signal_us);
    }
    rc = 0;
out:
    evs_store_close(st);
    free(ids);
    free(t_post);
    free(t_done);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The scenario                                                       */
/* ------------------------------------------------------------------ */

static double median(double *v, size_t n)
{
    return bench_quantile(v, n, 0.5);
}

/* Every execution an orchestrator owns holds two descriptors (its log
 * and its directory), and one being created a few more: n workflows at
 * once need about 3n. Raises the soft limit to the hard one, and lowers
 * n to what fits. */
static size_t fit_fds(bench_ctx *c, size_t n)
{
    struct rlimit rl;
    size_t fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return n;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;

        want.rlim_cur =
            rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    fit = rl.rlim_cur > 512 ? (size_t)(rl.rlim_cur - 256) / 3 : 64;
    if (n > fit) {
        bench_note(c,
                   "P9: %zu workflows at once lowered to %zu to fit "
                   "RLIMIT_NOFILE (%llu)",
                   n, fit, (unsigned long long)rl.rlim_cur);
        n = fit;
    }
    return n;
}

int scen_p9(bench_ctx *c)
{
    /* Before the first use of the threadpool in this process. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    enum { AP_D, LAY_D, LAY_N, NFLOOR };
    size_t nd = c->sz.p9_durable, nn = c->sz.p9_nosync;
    size_t nl = c->sz.p9_latency;
    /* Each repetition leaves thousands of files until the end, and
     * removing files is slow on this machine (ext4 mounted with
     * discard): three repetitions at most, as for conc. */
    size_t reps = c->repeat < 3 ? (size_t)c->repeat : 3;
    bench_row *rd, *rn, *re, *r50, *r99;
    char dir[4200], path[4400];
    appends a = {0};
    char *snap = NULL;
    size_t snap_len = 0;
    tp_result warm, d_last = {0}, n_last = {0};
    double ap_d[BENCH_MAX_REPEAT], ap_n[BENCH_MAX_REPEAT];
    double fl[NFLOOR][BENCH_MAX_REPEAT];
    double warm_io[7], apw;
    lat_run L = {0}, one;
    floor_run fr;
    int rc = -1;

    bench_path(dir, sizeof(dir), c->root, "p9");
    if (mkdir(dir, 0700) != 0)
        return bench_fail(c, "mkdir %s: %s", dir, strerror(errno));
    nd = fit_fds(c, nd);
    nn = fit_fds(c, nn);
    L.lat = calloc(nl * reps, sizeof(double));
    L.post = calloc(nl * reps, sizeof(double));
    L.pick = calloc(nl * reps, sizeof(double));
    L.step = calloc(nl * reps, sizeof(double));
    if (!L.lat || !L.post || !L.pick || !L.step) {
        bench_fail(c, "out of memory");
        goto out;
    }

    /* The warm-up: a few durable workflows through the counting table;
     * it also gives the floors one workflow's appends and snapshot. */
    bench_progress(c, 1, "p9: warm-up");
    bench_path(path, sizeof(path), dir, "warm");
    if (throughput_once(c, path, EVS_SYNC_FULL, ioc_table(), WARM_WORKFLOWS,
                        &warm, &a, &snap_len) != 0)
        goto out;
    warm_io[0] = (double)atomic_load(&ioc.syncs);
    warm_io[1] = (double)atomic_load(&ioc.loop_syncs);
    warm_io[2] = (double)atomic_load(&ioc.opens);
    warm_io[3] = (double)atomic_load(&ioc.mkdirs);
    warm_io[4] = (double)atomic_load(&ioc.renames);
    warm_io[5] = (double)atomic_load(&ioc.writes);
    warm_io[6] = (double)atomic_load(&ioc.loop_calls);
    for (int k = 0; k < 7; k++)
        warm_io[k] /= WARM_WORKFLOWS;
    if (a.n < 2 || !(snap = malloc(snap_len))) {
        bench_fail(c, "warm-up: %zu appends read back", a.n);
        goto out;
    }
    memset(snap, 'x', snap_len);

    rd = bench_row_add(c, "P9", "3-step workflows, durable", "workflows/s", 0);
    rn = bench_row_add(c, "P9", "3-step workflows, no sync", "workflows/s", 0);
    re = bench_row_add(c, "P9", "3-step workflows, no sync", "events/s", 0);
    r50 = bench_row_add(c, "P9",
                        "event from another process to the next "
                        "step_started: p50",
                        "µs", 1);
    r99 = bench_row_add(c, "P9",
                        "event from another process to the next "
                        "step_started: p99",
                        "µs", 1);
    memset(&fr, 0, sizeof(fr));
    fr.a = &a;
    fr.snap = snap;
    fr.snap_len = snap_len;
    for (size_t rep = 0; rep < reps; rep++) {
        int r1 = (int)rep + 1;

        /* Durable: the floors, then evstore. */
        bench_progress(c, 1, "p9 rep %d/%zu: floors, durable", r1, reps);
        fr.layout = 0;
        fr.sync = 1;
        if ((fl[AP_D][rep] = floor_rate(c, &fr, nd * a.n)) < 0)
            goto out;
        fr.layout = 1;
        snprintf(fr.dir, sizeof(fr.dir), "%s/floor-durable-%d", dir, r1);
        if ((fl[LAY_D][rep] = floor_rate(c, &fr, nd)) < 0)
            goto out;
        bench_progress(c, 1, "p9 rep %d/%zu: %zu durable workflows", r1, reps,
                       nd);
        snprintf(path, sizeof(path), "%s/durable-%d", dir, r1);
        if (throughput_once(c, path, EVS_SYNC_FULL, NULL, nd, &d_last, NULL,
                            NULL) != 0)
            goto out;
        ap_d[rep] = d_last.appends;
        bench_row_push(rd, SYS_EVSTORE, d_last.wf_s);

        /* No sync: the layout floor, then evstore. */
        bench_progress(c, 1, "p9 rep %d/%zu: floor, no sync", r1, reps);
        fr.sync = 0;
        snprintf(fr.dir, sizeof(fr.dir), "%s/floor-nosync-%d", dir, r1);
        if ((fl[LAY_N][rep] = floor_rate(c, &fr, nn)) < 0)
            goto out;
        bench_progress(c, 1, "p9 rep %d/%zu: %zu workflows, no sync", r1, reps,
                       nn);
        snprintf(path, sizeof(path), "%s/nosync-%d", dir, r1);
        if (throughput_once(c, path, EVS_SYNC_NONE, NULL, nn, &n_last, NULL,
                            NULL) != 0)
            goto out;
        ap_n[rep] = n_last.appends;
        bench_row_push(rn, SYS_EVSTORE, n_last.wf_s);
        bench_row_push(re, SYS_EVSTORE, n_last.wf_s * n_last.events);
        bench_row_push(rn, SYS_FLOOR, fl[LAY_N][rep]);
        bench_row_push(re, SYS_FLOOR, fl[LAY_N][rep] * n_last.events);

        /* Latency. */
        bench_progress(c, 1, "p9 rep %d/%zu: latency", r1, reps);
        snprintf(path, sizeof(path), "%s/latency-%d", dir, r1);
        one.lat = L.lat + rep * nl;
        one.post = L.post + rep * nl;
        one.pick = L.pick + rep * nl;
        one.step = L.step + rep * nl;
        if (latency_run(c, path, nl, &one) != 0)
            goto out;
        bench_row_push(r50, SYS_EVSTORE, bench_quantile(one.lat, nl, 0.5));
        bench_row_push(r99, SYS_EVSTORE, bench_quantile(one.lat, nl, 0.99));
    }
    /* The durable floor in workflows: the append rate over the appends a
     * workflow really took. */
    apw = median(ap_d, reps);
    for (size_t rep = 0; rep < reps; rep++)
        bench_row_push(rd, SYS_FLOOR, fl[AP_D][rep] / apw);
    bench_row_target(rd, "≥ 1000 workflows/s");
    bench_row_judge(rd, bench_row_median(rd, SYS_EVSTORE) >= 1000);
    bench_row_target(rn, "≥ 30000 workflows/s");
    bench_row_judge(rn, bench_row_median(rn, SYS_EVSTORE) >= 30000);

    bench_note(c,
               "P9: %zu durable and %zu unsynced 3-step workflows "
               "started at once per repetition (%zu repetitions) on one "
               "orchestrator (own loop, stop_when_idle), a no-op C action "
               "completing on the loop thread; from the first "
               "evs_orch_start to the end of evs_orch_run",
               nd, nn, reps);
    bench_note(c,
               "P9: read back from the logs, per workflow: %.2f appends "
               "(%.1f events) durable, %.2f appends (%.1f events) no sync, "
               "the creation's included; one workflow's appends are %zu "
               "bytes",
               apw, d_last.events, median(ap_n, reps), n_last.events, a.len);
    bench_note(c,
               "P9 warm-up through a counting I/O table, per durable "
               "workflow: %.1f syncs (fsync+fdatasync), %.1f of them on the "
               "loop thread; %.1f opens, %.1f mkdirs, %.1f renames, %.1f "
               "writes; %.1f of these calls on the loop thread",
               warm_io[0], warm_io[1], warm_io[2], warm_io[3], warm_io[4],
               warm_io[5], warm_io[6]);
    bench_note(c,
               "P9 durable floor: %d threads (the threadpool size the "
               "orchestrator runs with here) each writing one workflow's "
               "appends in turn with "
               "fdatasync after each, %.0f appends/s, divided by %.2f "
               "appends per workflow",
               FLOOR_THREADS, median(fl[AP_D], reps), apw);
    bench_note(c,
               "P9 layout floor (%d threads, raw calls: temp directory "
               "with log and snapshot by rename, renamed into place; the "
               "other appends; final snapshot by rename): "
               "%.0f workflows/s with its 10 syncs, %.0f without (the "
               "no-sync rows' floor)",
               FLOOR_THREADS, median(fl[LAY_D], reps), median(fl[LAY_N], reps));
    bench_note(c,
               "P9 latency: %zu executions per repetition wait on an "
               "event; a forked runner (evs_orch_resume, EVS_SYNC_FULL) "
               "takes each over, then this process calls evs_orch_post; "
               "medians over all: evs_orch_post returns after %.0f µs, "
               "signal_received is stamped at %.0f µs, step_started %.0f "
               "µs after it",
               nl, median(L.post, nl * reps), median(L.pick, nl * reps),
               median(L.step, nl * reps));
    rc = 0;
out:
    if (!c->keep)
        floor_rm_rf(dir);
    appends_free(&a);
    free(snap);
    free(L.lat);
    free(L.post);
    free(L.pick);
    free(L.step);
    return rc;
}
