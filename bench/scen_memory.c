/*
 * scen_memory.c: P10, peak memory while reading a 1 GB log.
 *
 * Each read runs in a forked child, so that nothing the parent allocated
 * can hide in the figure: the child resets its high-water mark
 * (/proc/self/clear_refs), measures its resident set as the baseline,
 * reads the whole log, and reports ru_maxrss minus that baseline. evstore
 * reads with a cursor; the floor with read() into a 1 MiB page-aligned
 * buffer and memchr; SQLite with an ordered SELECT of every row of the
 * execution (default cache size, no mmap).
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define P10_ID "p10log"
#define P10_DB "p10.db"
#define READ_BUF ((size_t)1 << 20)

static const char select_all[] =
    "SELECT execution_id, sequence, id, path_id, timestamp, event_type,"
    " step_name, data FROM events WHERE execution_id = ?1"
    " ORDER BY sequence";

/* What a child sends back. */
typedef struct child_result {
    int ok;
    int hwm_reset;
    double peak_kib;
    double heap_peak; /* evstore: bytes, through the allocator hook */
    uint64_t events;
    double secs;
} child_result;

static int setup(bench_ctx *c, uint64_t *events, uint64_t *bytes)
{
    bench_workload w = {0};
    bench_gen g;
    evs_error_info info;
    evs_store *st = NULL;
    evs_log *l = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    uint64_t seq = 0;
    int rc = -1, err;

    if (bench_store_open(c, EVS_SYNC_NONE, &st) != 0)
        goto out;
    err = evs_exec_create(st, P10_ID, strlen(P10_ID), NULL, NULL, 0);
    if (err == 0)
        err = evs_log_open(st, P10_ID, strlen(P10_ID), EVS_LOG_WRITE, &l, NULL,
                           &info);
    if (err != 0) {
        bench_evs_fail(c, err, "creating the P10 log");
        goto out;
    }
    if (sq_open(c, P10_DB, "OFF", &db, &ins) != 0)
        goto out;
    bench_gen_init(&g, c->seed + 10);
    while (evs_log_size(l) < c->sz.p10_bytes) {
        bench_progress(c, 0, "p10 setup: %.0f/%.0f MiB",
                       (double)evs_log_size(l) / 1048576.0,
                       (double)c->sz.p10_bytes / 1048576.0);
        if (bench_gen_fill(&g, &w, 1000) != 0) {
            bench_fail(c, "generating events: out of memory");
            goto out;
        }
        err = evs_log_append(l, w.ev, w.n, seq, &info);
        if (err != 0) {
            bench_fail(c, "evs_log_append: %s", info.msg);
            goto out;
        }
        if (sq_exec(c, db, "BEGIN") != 0)
            goto out;
        for (size_t i = 0; i < w.n; i++)
            if (sq_insert(c, ins, P10_ID, seq + i + 1, &w.ev[i]) != 0)
                goto out;
        if (sq_exec(c, db, "COMMIT") != 0)
            goto out;
        seq += w.n;
    }
    if (sq_exec(c, db, "PRAGMA wal_checkpoint(TRUNCATE)") != 0)
        goto out;
    *events = evs_log_last_seq(l);
    *bytes = evs_log_size(l);
    rc = 0;
out:
    sq_close(c, db, P10_DB, 0);
    evs_log_close(l);
    evs_store_close(st);
    bench_workload_free(&w);
    return rc;
}

static double rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1024.0;
}

static int reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC), ok;

    if (fd < 0)
        return 0;
    ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

static int read_floor(bench_ctx *c, uint64_t *lines)
{
    char path[8300], *buf = floor_alloc_aligned(READ_BUF);
    uint64_t n = 0;
    ssize_t got;
    int fd;

    snprintf(path, sizeof(path), "%s/%s/events.jsonl", c->store, P10_ID);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !buf) {
        free(buf);
        return bench_fail(c, "floor: open %s: %s", path, strerror(errno));
    }
    while ((got = read(fd, buf, READ_BUF)) > 0) {
        const char *p = buf, *end = buf + got;

        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            n++;
            p++;
        }
    }
    close(fd);
    free(buf);
    if (got < 0)
        return bench_fail(c, "floor: read: %s", strerror(errno));
    *lines = n;
    return 0;
}

/* An allocator that counts, so that evstore's own heap peak can be told
 * apart from the process's resident set. */
typedef struct counting {
    size_t cur, peak;
} counting;

#define HDR 16 /* keeps malloc's alignment */

static void *count_realloc(void *ctx, void *p, size_t n)
{
    counting *a = ctx;
    char *h = p ? (char *)p - HDR : NULL, *nh;
    size_t old = 0;

    if (h)
        memcpy(&old, h, sizeof(old));
    nh = realloc(h, HDR + n);
    if (!nh)
        return NULL;
    memcpy(nh, &n, sizeof(n));
    a->cur = a->cur - old + n;
    if (a->cur > a->peak)
        a->peak = a->cur;
    return nh + HDR;
}

static void count_free(void *ctx, void *p)
{
    counting *a = ctx;
    size_t old;

    if (!p)
        return;
    memcpy(&old, (char *)p - HDR, sizeof(old));
    a->cur -= old;
    free((char *)p - HDR);
}

static int read_evstore(bench_ctx *c, uint64_t *events, double *heap_peak)
{
    counting cnt = {0, 0};
    evs_allocator alloc = {&cnt, count_realloc, count_free};
    evs_store_opts o;
    evs_error_info info;
    evs_store *st = NULL;
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    uint64_t n = 0;
    int rc;

    evs_store_opts_init(&o);
    o.alloc = &alloc;
    rc = evs_store_open(c->store, &o, &st);
    if (rc == 0)
        rc = evs_log_open(st, P10_ID, strlen(P10_ID), 0, &l, NULL, &info);
    if (rc == 0)
        rc = evs_cursor_open(l, 1, 0, &cur, &info);
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, NULL, &info)) == 1) {
        rc = 0;
        n++;
    }
    evs_cursor_close(cur);
    evs_log_close(l);
    evs_store_close(st);
    if (rc != 0)
        return bench_evs_fail(c, rc, "evstore read");
    *events = n;
    *heap_peak = (double)cnt.peak;
    return 0;
}

static int read_sqlite(bench_ctx *c, uint64_t *rows)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *sel = NULL;
    int rc = -1;

    if (sq_open(c, P10_DB, "FULL", &db, NULL) != 0 ||
        sq_prepare(c, db, select_all, &sel) != 0)
        goto out;
    sqlite3_bind_text(sel, 1, P10_ID, -1, SQLITE_STATIC);
    rc = sq_read_rows(c, sel, rows, NULL);
out:
    sq_close(c, db, NULL, 0);
    return rc;
}

/* Runs one system's read in a child and collects its result. */
static int run_child(bench_ctx *c, int sys, child_result *res)
{
    int fds[2], status;
    pid_t pid;
    ssize_t got;

    memset(res, 0, sizeof(*res));
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
        child_result r;
        struct rusage ru;
        double base;
        uint64_t t0;
        int rc;

        close(fds[0]);
        memset(&r, 0, sizeof(r));
        /* Give back the free heap inherited from the parent, so that the
         * read's allocations show up as new resident pages. */
        malloc_trim(0);
        r.hwm_reset = reset_hwm();
        base = rss_kib();
        t0 = bench_now_ns();
        if (sys == SYS_FLOOR)
            rc = read_floor(c, &r.events);
        else if (sys == SYS_EVSTORE)
            rc = read_evstore(c, &r.events, &r.heap_peak);
        else
            rc = read_sqlite(c, &r.events);
        r.secs = (double)(bench_now_ns() - t0) / 1e9;
        getrusage(RUSAGE_SELF, &ru);
        r.peak_kib = (double)ru.ru_maxrss - base;
        r.ok = rc == 0;
        if (write(fds[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(1);
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    got = read(fds[0], res, sizeof(*res));
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof(*res) || !res->ok || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return bench_fail(c, "the reading child of system %d failed", sys);
    return 0;
}

int scen_p10(bench_ctx *c)
{
    static const char *const names[SYS_N] = {"floor", "evstore", "SQLite"};
    child_result res;
    bench_row *r;
    uint64_t events = 0, bytes = 0;
    double secs[SYS_N] = {0, 0, 0}, heap = 0;
    int rc = -1, reset_ok = 1;
    evs_store *st;

    if (setup(c, &events, &bytes) != 0)
        goto out;
    r = bench_row_add(c, "P10", "peak RSS growth reading the whole log", "MiB",
                      1);
    for (int rep = 0; rep < c->repeat; rep++) {
        for (int s = 0; s < SYS_N; s++) {
            bench_progress(c, 1, "p10 rep %d/%d: %s", rep + 1, c->repeat,
                           names[s]);
            if (run_child(c, s, &res) != 0)
                goto out;
            if (res.events != events) {
                bench_fail(c, "%s read %llu events, not %llu", names[s],
                           (unsigned long long)res.events,
                           (unsigned long long)events);
                goto out;
            }
            reset_ok &= res.hwm_reset;
            secs[s] += res.secs;
            if (res.heap_peak > heap)
                heap = res.heap_peak;
            bench_row_push(r, s, res.peak_kib / 1024.0);
        }
    }
    bench_row_target(r, "≤ 64 MiB");
    bench_row_judge(r, bench_row_median(r, SYS_EVSTORE) <= 64);
    bench_note(c,
               "P10 log: %llu events, %.0f MiB; mean read time floor "
               "%.2f s, evstore %.2f s, SQLite %.2f s; evstore's own heap "
               "peak (allocator hook) %.2f MiB%s",
               (unsigned long long)events, (double)bytes / 1048576.0,
               secs[0] / c->repeat, secs[1] / c->repeat, secs[2] / c->repeat,
               heap / 1048576.0,
               reset_ok ? ""
                        : " (could not reset the high-water mark: "
                          "the baseline is the RSS at fork)");
    rc = 0;
out:
    if (!c->keep && bench_store_open(c, EVS_SYNC_NONE, &st) == 0) {
        evs_exec_delete(st, P10_ID, strlen(P10_ID));
        evs_store_close(st);
    }
    sq_close(c, NULL, P10_DB, !c->keep);
    return rc;
}
