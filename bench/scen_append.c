/*
 * scen_append.c: the append scenarios.
 *
 *  P1  durable append of one event per call: latency p50 and p99.
 *  P2  durable append of 1000 events per call: events/s.
 *  P3  append without sync, one event per call: events/s.
 *
 * Each repetition writes the same events three times, one system after
 * the other: the floor (write or writev, then fdatasync, on a file opened
 * O_APPEND), evstore (evs_log_append on a fresh execution) and SQLite (a
 * fresh WAL database, one transaction per call). Every repetition starts
 * from fresh files, which are removed after it, so the repetitions see
 * the same file sizes and disk use stays small.
 *
 * P1 and P2 also run evstore on its SQLite backend (sqlite:PATH) after
 * each repetition, as rows of their own beside the same repetition's
 * floor and raw SQLite: the backend against the engine it is built on.
 * Then evstore on its PostgreSQL backend (a schema of the run's server,
 * pg_server.c, at synchronous_commit on) and the raw libpq peer
 * (peer_pg.c) inserting the same lines, one transaction per call: rows
 * of their own, beside the same repetition's floor, with libpq in the
 * SQLite column.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bench_floor_append(bench_ctx *c, bench_append_job *j, const char *name)
{
    struct iovec *iov = NULL;
    bench_workload *w = j->w;
    uint64_t t0, t1, start;
    int fd, rc = -1;

    fd = floor_open(c->floor, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    if (fd < 0)
        return bench_fail(c, "floor: open %s: %s", name, strerror(-fd));
    iov = calloc(j->batch, sizeof(*iov));
    if (!iov) {
        bench_fail(c, "out of memory");
        goto out;
    }
    start = bench_now_ns();
    for (size_t i = 0, k = 0; i < w->n; i += j->batch, k++) {
        size_t cnt = w->n - i < j->batch ? w->n - i : j->batch;
        int err;

        t0 = bench_now_ns();
        if (cnt == 1) {
            err =
                floor_write_all(fd, w->lines + w->line_off[i], w->line_len[i]);
        } else {
            for (size_t e = 0; e < cnt; e++) {
                iov[e].iov_base = w->lines + w->line_off[i + e];
                iov[e].iov_len = w->line_len[i + e];
            }
            err = floor_writev_all(fd, iov, (int)cnt);
        }
        if (err == 0 && j->sync)
            err = floor_fdatasync(fd);
        t1 = bench_now_ns();
        if (err != 0) {
            bench_fail(c, "floor: write %s: %s", name, strerror(-err));
            goto out;
        }
        if (j->lat)
            j->lat[k] = (double)(t1 - t0) / 1e3;
    }
    j->secs = (double)(bench_now_ns() - start) / 1e9;
    rc = 0;
out:
    free(iov);
    close(fd);
    floor_unlink(c->floor, name);
    return rc;
}

int bench_evs_append(bench_ctx *c, evs_store *st, bench_append_job *j,
                     const char *id)
{
    bench_workload *w = j->w;
    evs_error_info info;
    evs_log *l = NULL;
    uint64_t t0, t1, start;
    size_t len = strlen(id);
    int rc;

    rc = evs_exec_create(st, id, len, NULL, NULL, 0);
    if (rc != 0)
        return bench_evs_fail(c, rc, "evs_exec_create");
    rc = evs_log_open(st, id, len, EVS_LOG_WRITE, &l, NULL, &info);
    if (rc != 0) {
        bench_fail(c, "evs_log_open: %s", info.msg);
        goto out;
    }
    start = bench_now_ns();
    for (size_t i = 0, k = 0; i < w->n; i += j->batch, k++) {
        size_t cnt = w->n - i < j->batch ? w->n - i : j->batch;

        t0 = bench_now_ns();
        rc = evs_log_append(l, w->ev + i, cnt, i, &info);
        t1 = bench_now_ns();
        if (rc != 0) {
            bench_fail(c, "evs_log_append: %s", info.msg);
            goto out;
        }
        if (j->lat)
            j->lat[k] = (double)(t1 - t0) / 1e3;
    }
    j->secs = (double)(bench_now_ns() - start) / 1e9;
out:
    evs_log_close(l);
    evs_exec_delete(st, id, len);
    return rc != 0 ? -1 : 0;
}

static int sqlite_append(bench_ctx *c, bench_append_job *j, const char *name,
                         const char *exec_id)
{
    bench_workload *w = j->w;
    sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
    sqlite3 *db = NULL;
    uint64_t t0, t1, start;
    int rc = -1;

    if (sq_open(c, name, j->sync ? "FULL" : "OFF", &db, &ins) != 0)
        goto out;
    if (sq_prepare(c, db, "BEGIN", &begin) != 0 ||
        sq_prepare(c, db, "COMMIT", &commit) != 0)
        goto out;
    start = bench_now_ns();
    for (size_t i = 0, k = 0; i < w->n; i += j->batch, k++) {
        size_t cnt = w->n - i < j->batch ? w->n - i : j->batch;
        int err = 0;

        t0 = bench_now_ns();
        if (cnt > 1) {
            if (sqlite3_step(begin) != SQLITE_DONE) {
                bench_fail(c, "SQLite: BEGIN: %s", sqlite3_errmsg(db));
                err = -1;
            }
            sqlite3_reset(begin);
        }
        for (size_t e = 0; e < cnt && err == 0; e++)
            err = sq_insert(c, ins, exec_id, i + e + 1, &w->ev[i + e]);
        if (cnt > 1 && err == 0) {
            if (sqlite3_step(commit) != SQLITE_DONE) {
                bench_fail(c, "SQLite: COMMIT: %s", sqlite3_errmsg(db));
                err = -1;
            }
            sqlite3_reset(commit);
        }
        t1 = bench_now_ns();
        if (err != 0)
            goto out;
        if (j->lat)
            j->lat[k] = (double)(t1 - t0) / 1e3;
    }
    j->secs = (double)(bench_now_ns() - start) / 1e9;
    rc = 0;
out:
    sq_close(c, db, name, 1);
    return rc;
}

/* Runs one repetition on the three systems, one after the other, and
 * leaves their results in j[SYS_*]. */
static int run_rep(bench_ctx *c, evs_store *st, bench_append_job *j,
                   const char *tag, int rep)
{
    char name[64], id[32];

    snprintf(id, sizeof(id), "%.8s-r%02d", tag, rep % 100);
    bench_progress(c, 1, "%s rep %d/%d: floor", c->cur_scenario, rep + 1,
                   c->repeat);
    snprintf(name, sizeof(name), "%s.jsonl", id);
    if (bench_floor_append(c, &j[SYS_FLOOR], name) != 0)
        return -1;
    bench_progress(c, 1, "%s rep %d/%d: evstore", c->cur_scenario, rep + 1,
                   c->repeat);
    if (bench_evs_append(c, st, &j[SYS_EVSTORE], id) != 0)
        return -1;
    bench_progress(c, 1, "%s rep %d/%d: SQLite", c->cur_scenario, rep + 1,
                   c->repeat);
    snprintf(name, sizeof(name), "%s.db", id);
    return sqlite_append(c, &j[SYS_SQLITE], name, id);
}

static void job_init(bench_append_job *j, bench_workload *w, size_t batch,
                     int sync, double *lat)
{
    for (int s = 0; s < SYS_N; s++) {
        memset(&j[s], 0, sizeof(j[s]));
        j[s].w = w;
        j[s].batch = batch;
        j[s].sync = sync;
        j[s].lat = lat ? lat + (size_t)s * w->n : NULL;
    }
}

static void note_workload(bench_ctx *c, const char *sc, bench_workload *w)
{
    size_t p5, p50, p95;

    bench_workload_line_sizes(w, &p5, &p50, &p95);
    bench_note(c,
               "%s: %zu events, %zu of them large outputs (64 KiB-1 "
               "MiB); other lines %zu/%zu/%zu bytes (p5/p50/p95); mean "
               "line %.0f bytes, %.1f MiB per repetition and system",
               sc, w->n, w->large, p5, p50, p95,
               (double)w->line_bytes / (double)w->n,
               (double)w->line_bytes / 1048576.0);
}

/* The PostgreSQL backend's and raw libpq's runs of a repetition: jp[0]
 * evstore on PostgreSQL (the store stp), jp[1] raw libpq at `loc`. */
static int run_pg(bench_ctx *c, evs_store *stp, const char *loc,
                  bench_append_job *jp, const char *tag, int rep)
{
    char id[32];

    snprintf(id, sizeof(id), "%.8s-g%02d", tag, rep % 100);
    bench_progress(c, 1, "%s rep %d/%d: evstore on PostgreSQL", c->cur_scenario,
                   rep + 1, c->repeat);
    if (bench_evs_append(c, stp, &jp[0], id) != 0)
        return -1;
    bench_progress(c, 1, "%s rep %d/%d: raw libpq", c->cur_scenario, rep + 1,
                   c->repeat);
    return pq_append(c, loc, &jp[1], rep + 1);
}

/* A row of evstore on PostgreSQL beside raw libpq. */
static bench_row *pg_row(bench_ctx *c, const char *sc, const char *metric,
                         const char *unit, int lower_better)
{
    bench_row *r = bench_row_add(c, sc, metric, unit, lower_better);

    r->peer = "libpq";
    return r;
}

/* The SQLite backend's run of a repetition (after run_rep), into *jb. */
static int run_backend(bench_ctx *c, evs_store *stq, bench_append_job *jb,
                       const char *tag, int rep)
{
    char id[32];

    snprintf(id, sizeof(id), "%.8s-q%02d", tag, rep % 100);
    bench_progress(c, 1, "%s rep %d/%d: evstore on SQLite", c->cur_scenario,
                   rep + 1, c->repeat);
    return bench_evs_append(c, stq, jb, id);
}

int scen_p1(bench_ctx *c)
{
    bench_workload w = {0};
    bench_append_job j[SYS_N], jb, jp[2];
    evs_store *st = NULL, *stq = NULL, *stp = NULL;
    double *lat = NULL;
    bench_row *r50, *r99, *q50, *q99, *g50 = NULL, *g99 = NULL;
    size_t n = c->sz.p1_events;
    char pgloc[2400];
    int rc = -1, pg = 1;

    if (bench_workload_make(&w, c->seed + 1, n) != 0 ||
        bench_workload_encode(&w, "p1-r00", 1) != 0) {
        bench_fail(c, "generating events: out of memory");
        goto out;
    }
    lat = malloc((SYS_N + 3) * n * sizeof(*lat));
    if (!lat) {
        bench_fail(c, "out of memory");
        goto out;
    }
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0 ||
        bench_sqlite_store_open(c, EVS_SYNC_FULL, &stq) != 0 ||
        (pg = bench_pg_open(c, "p1", EVS_SYNC_FULL, pgloc, sizeof(pgloc),
                            &stp)) < 0)
        goto out;
    r50 = bench_row_add(c, "P1", "durable append, 1 event/call: p50", "µs", 1);
    r99 = bench_row_add(c, "P1", "durable append, 1 event/call: p99", "µs", 1);
    q50 = bench_row_add(c, "P1",
                        "durable append, 1 event/call: p50, evstore on "
                        "its SQLite backend",
                        "µs", 1);
    q99 = bench_row_add(c, "P1",
                        "durable append, 1 event/call: p99, evstore on "
                        "its SQLite backend",
                        "µs", 1);
    if (pg == 0) {
        g50 = pg_row(c, "P1",
                     "durable append, 1 event/call: p50, evstore on "
                     "PostgreSQL",
                     "µs", 1);
        g99 = pg_row(c, "P1",
                     "durable append, 1 event/call: p99, evstore on "
                     "PostgreSQL",
                     "µs", 1);
    }
    job_init(j, &w, 1, 1, lat);
    jb = j[SYS_EVSTORE];
    jb.lat = lat + (size_t)SYS_N * n;
    jp[0] = jp[1] = jb;
    jp[0].lat = lat + (size_t)(SYS_N + 1) * n;
    jp[1].lat = lat + (size_t)(SYS_N + 2) * n;
    for (int rep = 0; rep < c->repeat; rep++) {
        if (run_rep(c, st, j, "p1", rep) != 0 ||
            run_backend(c, stq, &jb, "p1", rep) != 0 ||
            (stp && run_pg(c, stp, pgloc, jp, "p1", rep) != 0))
            goto out;
        for (int s = 0; s < SYS_N; s++) {
            const bench_append_job *js = s == SYS_EVSTORE ? &jb : &j[s];
            const bench_append_job *jg = s == SYS_FLOOR     ? &j[s]
                                         : s == SYS_EVSTORE ? &jp[0]
                                                            : &jp[1];
            bench_row_push(r50, s, bench_quantile(j[s].lat, n, 0.50));
            bench_row_push(r99, s, bench_quantile(j[s].lat, n, 0.99));
            bench_row_push(q50, s, bench_quantile(js->lat, n, 0.50));
            bench_row_push(q99, s, bench_quantile(js->lat, n, 0.99));
            bench_row_push(g50, s, bench_quantile(jg->lat, n, 0.50));
            bench_row_push(g99, s, bench_quantile(jg->lat, n, 0.99));
        }
    }
    bench_row_target(r50, "≤ 1.15× floor and ≤ SQLite");
    bench_row_judge(r50, bench_ratio(r50, SYS_FLOOR) <= 1.15 &&
                             bench_ratio(r50, SYS_SQLITE) <= 1.0);
    /* Issue 18: each backend at least 0.8x its raw engine's speed, so a
     * latency at most 1.25x. */
    bench_row_target(q50, "≥ 0.8× SQLite's speed (≤ 1.25× its time)");
    bench_row_judge(q50, bench_ratio(q50, SYS_SQLITE) <= 1.25);
    if (g50) {
        bench_row_target(g50, "≥ 0.8× libpq's speed (≤ 1.25× its time)");
        bench_row_judge(g50, bench_ratio(g50, SYS_SQLITE) <= 1.25);
    }
    note_workload(c, "P1", &w);
    rc = 0;
out:
    evs_store_close(st);
    evs_store_close(stq);
    evs_store_close(stp);
    free(lat);
    bench_workload_free(&w);
    return rc;
}

int scen_p2(bench_ctx *c)
{
    bench_workload w = {0};
    bench_append_job j[SYS_N], jb, jp[2];
    evs_store *st = NULL, *stq = NULL, *stp = NULL;
    bench_row *r, *q, *g = NULL;
    size_t n = c->sz.p2_batches * 1000;
    char pgloc[2400];
    int rc = -1, pg = 1;

    if (bench_workload_make(&w, c->seed + 2, n) != 0 ||
        bench_workload_encode(&w, "p2-r00", 1000) != 0) {
        bench_fail(c, "generating events: out of memory");
        goto out;
    }
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0 ||
        bench_sqlite_store_open(c, EVS_SYNC_FULL, &stq) != 0 ||
        (pg = bench_pg_open(c, "p2", EVS_SYNC_FULL, pgloc, sizeof(pgloc),
                            &stp)) < 0)
        goto out;
    r = bench_row_add(c, "P2", "durable append, 1000 events/call", "events/s",
                      0);
    q = bench_row_add(c, "P2",
                      "durable append, 1000 events/call, evstore on its "
                      "SQLite backend",
                      "events/s", 0);
    if (pg == 0)
        g = pg_row(c, "P2",
                   "durable append, 1000 events/call, evstore on "
                   "PostgreSQL",
                   "events/s", 0);
    job_init(j, &w, 1000, 1, NULL);
    jb = j[SYS_EVSTORE];
    jp[0] = jp[1] = jb;
    for (int rep = 0; rep < c->repeat; rep++) {
        if (run_rep(c, st, j, "p2", rep) != 0 ||
            run_backend(c, stq, &jb, "p2", rep) != 0 ||
            (stp && run_pg(c, stp, pgloc, jp, "p2", rep) != 0))
            goto out;
        for (int s = 0; s < SYS_N; s++) {
            bench_row_push(r, s, (double)n / j[s].secs);
            bench_row_push(q, s,
                           (double)n / (s == SYS_EVSTORE ? jb : j[s]).secs);
            bench_row_push(g, s,
                           (double)n / (s == SYS_FLOOR     ? j[s]
                                        : s == SYS_EVSTORE ? jp[0]
                                                           : jp[1])
                                           .secs);
        }
    }
    bench_row_target(r, "≥ 0.8× floor and ≥ 1.5× SQLite");
    bench_row_judge(r, bench_ratio(r, SYS_FLOOR) >= 0.8 &&
                           bench_ratio(r, SYS_SQLITE) >= 1.5);
    /* Issue 18: each backend at least 0.8x its raw engine. */
    bench_row_target(q, "≥ 0.8× SQLite");
    bench_row_judge(q, bench_ratio(q, SYS_SQLITE) >= 0.8);
    if (g) {
        bench_row_target(g, "≥ 0.8× libpq");
        bench_row_judge(g, bench_ratio(g, SYS_SQLITE) >= 0.8);
    }
    note_workload(c, "P2", &w);
    rc = 0;
out:
    evs_store_close(st);
    evs_store_close(stq);
    evs_store_close(stp);
    bench_workload_free(&w);
    return rc;
}

int scen_p3(bench_ctx *c)
{
    bench_workload w = {0}, wc = {0};
    bench_append_job j[SYS_N], jb, jc[SYS_N];
    evs_store *st = NULL;
    bench_row *r, *rb, *rc100;
    size_t n = c->sz.p3_events;
    char name[64];
    int rc = -1;

    /* The batched row gets its own copy of the events, encoded with the
     * batch field, so that the floor writes exactly evstore's bytes. */
    if (bench_workload_make(&w, c->seed + 3, n) != 0 ||
        bench_workload_encode(&w, "p3-r00", 1) != 0 ||
        bench_workload_make(&wc, c->seed + 3, n) != 0 ||
        bench_workload_encode(&wc, "p3c-r00", 100) != 0) {
        bench_fail(c, "generating events: out of memory");
        goto out;
    }
    if (bench_store_open(c, EVS_SYNC_NONE, &st) != 0)
        goto out;
    r = bench_row_add(c, "P3",
                      "append, no sync, 1 event/call "
                      "(SQLite: 1 event/txn)",
                      "events/s", 0);
    rb = bench_row_add(c, "P3",
                       "append, no sync, 1 event/call "
                       "(SQLite: 1000 events/txn)",
                       "events/s", 0);
    rc100 = bench_row_add(c, "P3",
                          "append, no sync, 100 events/call "
                          "(floor: writev; SQLite: 100 events/txn)",
                          "events/s", 0);
    job_init(j, &w, 1, 0, NULL);
    job_init(jc, &wc, 100, 0, NULL);
    memset(&jb, 0, sizeof(jb));
    jb.w = &w;
    jb.batch = 1000;
    for (int rep = 0; rep < c->repeat; rep++) {
        if (run_rep(c, st, j, "p3", rep) != 0)
            goto out;
        bench_progress(c, 1, "P3 rep %d/%d: SQLite batched", rep + 1,
                       c->repeat);
        snprintf(name, sizeof(name), "p3b-r%02d.db", rep);
        if (sqlite_append(c, &jb, name, "p3b") != 0)
            goto out;
        for (int s = 0; s < SYS_N; s++)
            bench_row_push(r, s, (double)n / j[s].secs);
        bench_row_push(rb, SYS_FLOOR, (double)n / j[SYS_FLOOR].secs);
        bench_row_push(rb, SYS_EVSTORE, (double)n / j[SYS_EVSTORE].secs);
        bench_row_push(rb, SYS_SQLITE, (double)n / jb.secs);
        if (run_rep(c, st, jc, "p3c", rep) != 0)
            goto out;
        for (int s = 0; s < SYS_N; s++)
            bench_row_push(rc100, s, (double)n / jc[s].secs);
    }
    bench_row_target(r, "≥ 2 M events/s");
    bench_row_judge(r, bench_row_median(r, SYS_EVSTORE) >= 2e6);
    bench_row_target(rb, "≥ 2 M events/s");
    bench_row_judge(rb, bench_row_median(rb, SYS_EVSTORE) >= 2e6);
    bench_row_target(rc100, "≥ 2 M events/s");
    bench_row_judge(rc100, bench_row_median(rc100, SYS_EVSTORE) >= 2e6);
    note_workload(c, "P3", &w);
    rc = 0;
out:
    evs_store_close(st);
    bench_workload_free(&w);
    bench_workload_free(&wc);
    return rc;
}
