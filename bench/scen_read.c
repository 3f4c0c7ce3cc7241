/*
 * scen_read.c: the read scenarios over one log of 1 M events, built once
 * per run and shared.
 *
 *  P4  read + verify of the whole log: GB/s and events/s. evstore runs a
 *      cursor over every event (checksum, sequence and framing checked);
 *      the floor read()s the same file into a page-aligned buffer and
 *      splits it into lines with memchr; SQLite steps an ordered SELECT
 *      of every row of the execution, taking every column.
 *  P6  the last 100 events: latency of one read. evstore includes
 *      opening the log as a reader (evs_log_open finds the end from the
 *      last bytes); the floor opens the file and preads the bytes that
 *      hold the last 100 lines; SQLite runs a prepared SELECT ... WHERE
 *      execution_id=? AND sequence>? ORDER BY sequence on an open
 *      connection.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_ID "p4log"
#define LOG_DB "log.db"
#define READ_BUF ((size_t)1 << 20)

static const char select_all[] =
    "SELECT execution_id, sequence, id, path_id, timestamp, event_type,"
    " step_name, data FROM events WHERE execution_id = ?1"
    " ORDER BY sequence";
static const char select_tail[] =
    "SELECT execution_id, sequence, id, path_id, timestamp, event_type,"
    " step_name, data FROM events WHERE execution_id = ?1"
    " AND sequence > ?2 ORDER BY sequence";

static void log_file(bench_ctx *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/events.jsonl", c->store, LOG_ID);
}

int bench_log_ensure(bench_ctx *c)
{
    bench_workload w = {0};
    bench_gen g;
    evs_error_info info;
    evs_store *st = NULL;
    evs_log *l = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    uint64_t t0 = bench_now_ns(), seq = 0;
    size_t total = c->sz.log_events, large = 0;
    int rc = -1, err;

    if (c->log_ready)
        return 0;
    /* The fastest honest path: no sync, big appends, one pass. */
    if (bench_store_open(c, EVS_SYNC_NONE, &st) != 0)
        goto out;
    err = evs_exec_create(st, LOG_ID, strlen(LOG_ID), NULL, NULL, 0);
    if (err == 0)
        err = evs_log_open(st, LOG_ID, strlen(LOG_ID), EVS_LOG_WRITE, &l, NULL,
                           &info);
    if (err != 0) {
        bench_evs_fail(c, err, "creating the 1 M-event log");
        goto out;
    }
    if (sq_open(c, LOG_DB, "OFF", &db, &ins) != 0)
        goto out;
    bench_gen_init(&g, c->seed + 4);
    while (seq < total) {
        size_t n = total - seq < 1000 ? (size_t)(total - seq) : 1000;

        bench_progress(c, 0, "%s setup: %llu/%zu events", c->cur_scenario,
                       (unsigned long long)seq, total);
        if (bench_gen_fill(&g, &w, n) != 0) {
            bench_fail(c, "generating events: out of memory");
            goto out;
        }
        err = evs_log_append(l, w.ev, n, seq, &info);
        if (err != 0) {
            bench_fail(c, "evs_log_append: %s", info.msg);
            goto out;
        }
        if (sq_exec(c, db, "BEGIN") != 0)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (sq_insert(c, ins, LOG_ID, seq + i + 1, &w.ev[i]) != 0)
                goto out;
        if (sq_exec(c, db, "COMMIT") != 0)
            goto out;
        seq += n;
        large += w.large;
    }
    c->log_last_seq = evs_log_last_seq(l);
    c->log_bytes = evs_log_size(l);
    /* Readers should find the rows in the database, not in its WAL. */
    if (sq_exec(c, db, "PRAGMA wal_checkpoint(TRUNCATE)") != 0)
        goto out;
    c->log_ready = 1;
    c->log_setup_s = (double)(bench_now_ns() - t0) / 1e9;
    bench_note(c,
               "P4/P6 log: %llu events (%zu large outputs), %.1f MiB, "
               "mean line %.0f bytes, written in 1000-event appends; "
               "setup (evstore + SQLite) %.1f s",
               (unsigned long long)c->log_last_seq, large,
               (double)c->log_bytes / 1048576.0,
               (double)c->log_bytes / (double)c->log_last_seq, c->log_setup_s);
    rc = 0;
out:
    sq_close(c, db, LOG_DB, 0);
    evs_log_close(l);
    evs_store_close(st);
    bench_workload_free(&w);
    return rc;
}

void bench_log_drop(bench_ctx *c)
{
    evs_store *st;

    if (!c->log_ready || c->keep)
        return;
    if (bench_store_open(c, EVS_SYNC_NONE, &st) == 0) {
        evs_exec_delete(st, LOG_ID, strlen(LOG_ID));
        evs_store_close(st);
    }
    sq_close(c, NULL, LOG_DB, 1);
    c->log_ready = 0;
}

/* ------------------------------------------------------------------ */
/* P4                                                                 */
/* ------------------------------------------------------------------ */

static int p4_floor(bench_ctx *c, char *buf, uint64_t *lines)
{
    char path[8300];
    uint64_t n = 0;
    ssize_t got;
    int fd;

    log_file(c, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bench_fail(c, "floor: open %s: %s", path, strerror(errno));
    while ((got = read(fd, buf, READ_BUF)) != 0) {
        const char *p = buf, *end;

        if (got < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return bench_fail(c, "floor: read: %s", strerror(errno));
        }
        end = buf + got;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            n++;
            p++;
        }
    }
    close(fd);
    *lines = n;
    return 0;
}

int bench_read_all(bench_ctx *c, evs_store *st, const char *id,
                   const char *what, uint64_t *events)
{
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    uint64_t n = 0;
    int rc;

    rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, &info);
    if (rc == 0)
        rc = evs_cursor_open(l, 1, 0, &cur, &info);
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, NULL, &info)) == 1) {
        rc = 0;
        n++;
    }
    evs_cursor_close(cur);
    evs_log_close(l);
    if (rc != 0)
        return bench_fail(c, "%s read: %s", what, info.msg);
    *events = n;
    return 0;
}

int scen_p4(bench_ctx *c)
{
    evs_store *st = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *sel = NULL;
    bench_row *rg, *re;
    char *buf = NULL;
    uint64_t t0, got[SYS_N];
    double secs[SYS_N];
    int rc = -1;

    if (bench_log_ensure(c) != 0)
        goto out;
    buf = floor_alloc_aligned(READ_BUF);
    if (!buf) {
        bench_fail(c, "out of memory");
        goto out;
    }
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0)
        goto out;
    if (sq_open(c, LOG_DB, "FULL", &db, NULL) != 0 ||
        sq_prepare(c, db, select_all, &sel) != 0)
        goto out;
    sqlite3_bind_text(sel, 1, LOG_ID, -1, SQLITE_STATIC);
    rg = bench_row_add(c, "P4", "read + verify whole log", "GB/s", 0);
    re = bench_row_add(c, "P4", "read + verify whole log", "events/s", 0);
    for (int rep = 0; rep < c->repeat; rep++) {
        bench_progress(c, 1, "p4 rep %d/%d: floor", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (p4_floor(c, buf, &got[SYS_FLOOR]) != 0)
            goto out;
        secs[SYS_FLOOR] = (double)(bench_now_ns() - t0) / 1e9;
        bench_progress(c, 1, "p4 rep %d/%d: evstore", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (bench_read_all(c, st, LOG_ID, "evstore", &got[SYS_EVSTORE]) != 0)
            goto out;
        secs[SYS_EVSTORE] = (double)(bench_now_ns() - t0) / 1e9;
        bench_progress(c, 1, "p4 rep %d/%d: SQLite", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (sq_read_rows(c, sel, &got[SYS_SQLITE], NULL) != 0)
            goto out;
        secs[SYS_SQLITE] = (double)(bench_now_ns() - t0) / 1e9;
        for (int s = 0; s < SYS_N; s++) {
            if (got[s] != c->log_last_seq) {
                bench_fail(c, "system %d read %llu events, not %llu", s,
                           (unsigned long long)got[s],
                           (unsigned long long)c->log_last_seq);
                goto out;
            }
            /* Bytes are the log's for all three: the same events. */
            bench_row_push(rg, s, (double)c->log_bytes / secs[s] / 1e9);
            bench_row_push(re, s, (double)got[s] / secs[s]);
        }
    }
    bench_row_target(rg, "≥ 1.5 GB/s");
    bench_row_judge(rg, bench_row_median(rg, SYS_EVSTORE) >= 1.5);
    bench_row_target(re, "≥ 1.5× SQLite");
    bench_row_judge(re, bench_ratio(re, SYS_SQLITE) >= 1.5);
    bench_note(c, "P4: GB/s counts the JSONL log's bytes for all three "
                  "systems (the same events); evstore's figure includes "
                  "evs_log_open");
    rc = 0;
out:
    sq_close(c, db, NULL, 0);
    evs_store_close(st);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* P6                                                                 */
/* ------------------------------------------------------------------ */

/* Bytes at the end of the log that hold its last `lines` lines. */
static int tail_bytes(bench_ctx *c, size_t lines, size_t *out)
{
    char path[8300], *buf = NULL;
    size_t want = 1 << 16, found;
    struct stat sb;
    int fd, rc = -1;

    log_file(c, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        bench_fail(c, "open %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        size_t n = (uint64_t)sb.st_size < want ? (size_t)sb.st_size : want;
        char *p;

        free(buf);
        buf = malloc(n ? n : 1);
        if (!buf || pread(fd, buf, n, sb.st_size - (off_t)n) != (ssize_t)n) {
            bench_fail(c, "reading the tail of %s", path);
            goto out;
        }
        /* The last byte is the last line's newline. */
        found = 0;
        for (p = buf + n - 1; p > buf; p--) {
            if (p[-1] == '\n' && ++found == lines) {
                *out = (size_t)(buf + n - p);
                rc = 0;
                goto out;
            }
        }
        if (n == (size_t)sb.st_size) {
            *out = n;
            rc = 0;
            goto out;
        }
        want *= 4;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int p6_floor(bench_ctx *c, const char *path, char *buf, size_t k,
                    size_t *lines)
{
    struct stat sb;
    size_t n = 0;
    const char *p, *end;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bench_fail(c, "floor: open: %s", strerror(errno));
    if (fstat(fd, &sb) != 0 ||
        pread(fd, buf, k, sb.st_size - (off_t)k) != (ssize_t)k) {
        close(fd);
        return bench_fail(c, "floor: pread: %s", strerror(errno));
    }
    close(fd);
    for (p = buf, end = buf + k; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        n++;
    *lines = n;
    return 0;
}

static int p6_evstore(bench_ctx *c, evs_store *st, size_t *events)
{
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    uint64_t last;
    size_t n = 0;
    int rc;

    rc = evs_log_open(st, LOG_ID, strlen(LOG_ID), 0, &l, NULL, &info);
    if (rc == 0) {
        last = evs_log_last_seq(l);
        rc = evs_cursor_open(l, last > 100 ? last - 99 : 1, 0, &cur, &info);
    }
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, NULL, &info)) == 1) {
        rc = 0;
        n++;
    }
    evs_cursor_close(cur);
    evs_log_close(l);
    if (rc != 0)
        return bench_fail(c, "evstore tail read: %s", info.msg);
    *events = n;
    return 0;
}

/* What one round of P6 needs. */
typedef struct p6_round {
    evs_store *st;
    sqlite3_stmt *sel;
    char path[8300];
    char *buf;
    size_t k; /* bytes holding the last 100 lines */
    size_t iters;
    double *lat; /* SYS_N * iters */
} p6_round;

/* Measures every repetition of one round into two new rows. */
static int p6_run(bench_ctx *c, p6_round *p, const char *what)
{
    bench_row *r50, *r99;
    char metric[80];
    size_t got;
    uint64_t t0, rows;

    snprintf(metric, sizeof(metric), "last 100 events, log %s: p50", what);
    r50 = bench_row_add(c, "P6", metric, "µs", 1);
    snprintf(metric, sizeof(metric), "last 100 events, log %s: p99", what);
    r99 = bench_row_add(c, "P6", metric, "µs", 1);
    sqlite3_bind_int64(p->sel, 2, (sqlite3_int64)(c->log_last_seq - 100));
    for (int rep = 0; rep < c->repeat; rep++) {
        double *lf = p->lat, *le = lf + p->iters, *ls = le + p->iters;

        bench_progress(c, 1, "p6 (%s) rep %d/%d", what, rep + 1, c->repeat);
        for (size_t i = 0; i < p->iters; i++) {
            t0 = bench_now_ns();
            if (p6_floor(c, p->path, p->buf, p->k, &got) != 0)
                return -1;
            lf[i] = (double)(bench_now_ns() - t0) / 1e3;
            if (got != 100)
                return bench_fail(c, "floor read %zu lines, not 100", got);
        }
        for (size_t i = 0; i < p->iters; i++) {
            t0 = bench_now_ns();
            if (p6_evstore(c, p->st, &got) != 0)
                return -1;
            le[i] = (double)(bench_now_ns() - t0) / 1e3;
            if (got != 100)
                return bench_fail(c, "evstore read %zu events, not 100", got);
        }
        for (size_t i = 0; i < p->iters; i++) {
            t0 = bench_now_ns();
            if (sq_read_rows(c, p->sel, &rows, NULL) != 0)
                return -1;
            ls[i] = (double)(bench_now_ns() - t0) / 1e3;
            if (rows != 100)
                return bench_fail(c, "SQLite read %llu rows, not 100",
                                  (unsigned long long)rows);
        }
        for (int s = 0; s < SYS_N; s++) {
            double *v = p->lat + (size_t)s * p->iters;

            bench_row_push(r50, s, bench_quantile(v, p->iters, 0.50));
            bench_row_push(r99, s, bench_quantile(v, p->iters, 0.99));
        }
    }
    bench_row_target(r50, "≤ 1000 µs");
    bench_row_judge(r50, bench_row_median(r50, SYS_EVSTORE) <= 1000);
    return 0;
}

/*
 * Appends one event alone to the shared log (and its row to SQLite), so
 * that the log no longer ends in a 1000-event append: a reader's open
 * then has one line to check at the end instead of a whole append.
 */
static int append_single(bench_ctx *c, sqlite3 *db)
{
    bench_workload w = {0};
    evs_error_info info;
    evs_store *st = NULL;
    evs_log *l = NULL;
    sqlite3_stmt *ins = NULL;
    int rc = -1, err;

    if (bench_workload_make(&w, c->seed + 6, 1) != 0) {
        bench_fail(c, "generating events: out of memory");
        goto out;
    }
    /* Never a large output: the tail should stay comparable. */
    if (w.large) {
        w.ev[0].data = evs_span_cstr("{\"current_step\":\"review\"}");
        w.ev[0].event_type = evs_span_cstr(EVS_EV_PATH_STARTED);
    }
    if (bench_store_open(c, EVS_SYNC_NONE, &st) != 0)
        goto out;
    err = evs_log_open(st, LOG_ID, strlen(LOG_ID), EVS_LOG_WRITE, &l, NULL,
                       &info);
    if (err == 0)
        err = evs_log_append(l, w.ev, 1, c->log_last_seq, &info);
    if (err != 0) {
        bench_fail(c, "appending one event: %s", info.msg);
        goto out;
    }
    if (sq_prepare(c, db,
                   "INSERT INTO events(execution_id, sequence, id, path_id,"
                   " timestamp, event_type, step_name, data)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   &ins) != 0 ||
        sq_insert(c, ins, LOG_ID, c->log_last_seq + 1, &w.ev[0]) != 0)
        goto out;
    c->log_last_seq = evs_log_last_seq(l);
    c->log_bytes = evs_log_size(l);
    rc = 0;
out:
    sqlite3_finalize(ins);
    evs_log_close(l);
    evs_store_close(st);
    bench_workload_free(&w);
    return rc;
}

int scen_p6(bench_ctx *c)
{
    p6_round p;
    sqlite3 *db = NULL;
    size_t k1 = 0;
    int rc = -1;

    memset(&p, 0, sizeof(p));
    p.iters = c->sz.p6_iters;
    if (bench_log_ensure(c) != 0 || tail_bytes(c, 100, &p.k) != 0)
        goto out;
    log_file(c, p.path, sizeof(p.path));
    p.buf = floor_alloc_aligned(p.k + 65536);
    p.lat = malloc(SYS_N * p.iters * sizeof(*p.lat));
    if (!p.buf || !p.lat) {
        bench_fail(c, "out of memory");
        goto out;
    }
    if (bench_store_open(c, EVS_SYNC_FULL, &p.st) != 0)
        goto out;
    if (sq_open(c, LOG_DB, "FULL", &db, NULL) != 0 ||
        sq_prepare(c, db, select_tail, &p.sel) != 0)
        goto out;
    sqlite3_bind_text(p.sel, 1, LOG_ID, -1, SQLITE_STATIC);
    if (p6_run(c, &p, "ends in a 1000-event append") != 0)
        goto out;
    k1 = p.k;
    if (append_single(c, db) != 0 || tail_bytes(c, 100, &p.k) != 0)
        goto out;
    if (p.k > k1 + 65536) {
        bench_fail(c, "the last 100 lines grew to %zu bytes", p.k);
        goto out;
    }
    if (p6_run(c, &p, "ends in a 1-event append") != 0)
        goto out;
    bench_note(c,
               "P6: %zu reads per repetition and system; the floor "
               "opens the file and preads the last %zu bytes; SQLite "
               "keeps its connection and prepared statement open; the "
               "second pair of rows is after one more event was appended "
               "alone",
               p.iters, k1);
    rc = 0;
out:
    sq_close(c, db, NULL, 0);
    evs_store_close(p.st);
    free(p.buf);
    free(p.lat);
    return rc;
}
