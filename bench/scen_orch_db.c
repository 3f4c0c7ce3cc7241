/*
 * scen_orch_db.c: P9's throughput on the SQLite and PostgreSQL backends.
 *
 * The workflows of P9 (three no-op actions in a row, all started at once,
 * run until the orchestrator is idle; scen_orch.c) in a fresh store of
 * each backend per repetition, durable (EVS_SYNC_FULL) and unsynced
 * (EVS_SYNC_NONE): on SQLite (sqlite:ROOT/p9/...), and on PostgreSQL (a
 * schema of the run's server) with one runner and, durable, with four:
 * four orchestrators, each with its own evs_store (its own connection),
 * its own loop and its own thread, sharing one store and each starting a
 * quarter of the workflows, timed from a common start to the end of the
 * last.
 *
 * The PostgreSQL rows are measured beside raw libpq doing the same
 * appends (their bytes as the logs were read back: one INSERT of one
 * append per transaction, at synchronous_commit on for the durable rows
 * and off otherwise), on as many connections and threads as the
 * backend's runners, as workflows/s: what the server allows for the
 * writes alone. The notes give the transactions and WAL flushes per
 * workflow the backend made (pg_stat_database, pg_stat_wal), where the
 * rest of its time goes, and the same raw floor made up to as many
 * statements per workflow as the backend's transactions (the extra ones
 * point SELECTs): what so many round trips allow.
 */
#include "evbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUNNERS 4

/* ------------------------------------------------------------------ */
/* Threads started together                                           */
/* ------------------------------------------------------------------ */

/* Where threads wait, once set up (connected, a store opened), for the
 * common start. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, open;
    /* Called (if not NULL) once every thread is ready, before the gate
     * opens and the clock starts. */
    void (*at_open)(void *arg);
    void *arg;
} gate;

static void gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->ready++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/*
 * Runs fn on n threads, the i-th with (char *)args + i * size, each of
 * which calls gate_wait(g) once set up; opens the gate when every thread
 * that started is there. Returns the seconds from the opening to the
 * last thread's end, or -1 when a thread could not be started (those
 * that were are still run and joined).
 */
static double run_gated(int n, void *(*fn)(void *), void *args, size_t size,
                        gate *g)
{
    pthread_t th[RUNNERS];
    uint64_t t0;
    int started = 0;

    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->ready = g->open = 0;
    for (; started < n && started < RUNNERS; started++)
        if (pthread_create(&th[started], NULL, fn,
                           (char *)args + (size_t)started * size) != 0)
            break;
    pthread_mutex_lock(&g->mu);
    while (g->ready < started)
        pthread_cond_wait(&g->cv, &g->mu);
    if (g->at_open)
        g->at_open(g->arg);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    t0 = bench_now_ns();
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    t0 = bench_now_ns() - t0;
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    return started < n ? -1 : (double)t0 / 1e9;
}

/* ------------------------------------------------------------------ */
/* The raw floor                                                      */
/* ------------------------------------------------------------------ */

typedef struct raw_floor {
    bench_ctx *c;
    const char *loc;
    const p9_appends *a;
    int sync;
    size_t workflows; /* each thread's */
    int64_t first;    /* its first workflow's number */
    size_t reads;     /* point SELECTs per workflow after its appends */
    gate *go;
    int rc;
} raw_floor;

static void *raw_floor_thread(void *arg)
{
    raw_floor *f = arg;
    pq_params p = {0};
    PGconn *db = NULL;
    int ok;

    f->rc = -1;
    ok = pq_open(f->c, f->loc, f->sync, &db) == 0 &&
         pq_prepare(f->c, db, "ins",
                    "INSERT INTO pq_appends(id, seq, line)"
                    " VALUES($1::int8, $2::int8, $3::bytea)") == 0 &&
         pq_prepare(f->c, db, "sel",
                    "SELECT line FROM pq_appends"
                    " WHERE id = $1::int8 AND seq = $2::int8") == 0;
    gate_wait(f->go);
    for (size_t w = 0; ok && w < f->workflows; w++)
        for (size_t i = 0; ok && i < f->a->n + f->reads; i++) {
            size_t k = i < f->a->n ? i : (i - f->a->n) % f->a->n;
            PGresult *r;

            pq_params_reset(&p);
            if (pq_param_i64(&p, f->first + (int64_t)w) != 0 ||
                pq_param_i64(&p, (int64_t)k) != 0 ||
                (i < f->a->n &&
                 pq_param_bytes(&p, f->a->buf + f->a->off[k],
                                f->a->off[k + 1] - f->a->off[k]) != 0)) {
                bench_fail(f->c, "out of memory");
                ok = 0;
                break;
            }
            pq_params_done(&p);
            if (!(r = pq_run(f->c, db, i < f->a->n ? "ins" : "sel", &p)))
                ok = 0;
            else if (i >= f->a->n && PQntuples(r) != 1)
                ok = bench_fail(f->c, "raw libpq: a line read back is "
                                      "missing") == 0;
            PQclear(r);
        }
    if (ok)
        f->rc = 0;
    pq_params_free(&p);
    PQfinish(db);
    return NULL;
}

/* `workflows` workflows' appends, each workflow's followed by `reads`
 * point SELECTs of its lines, by `conns` connections, each on its own
 * thread, in the schema at `loc`: workflows/s, or -1. */
static double raw_floor_rate(bench_ctx *c, const char *loc, const p9_appends *a,
                             int conns, int sync, size_t workflows,
                             size_t reads)
{
    raw_floor f[RUNNERS];
    gate go = {0};
    PGconn *db = NULL;
    double secs;
    int rc;

    if (pq_open(c, loc, 0, &db) != 0)
        return -1;
    rc = pq_exec(c, db,
                 "SET client_min_messages = warning;"
                 " DROP TABLE IF EXISTS pq_appends;"
                 " CREATE TABLE pq_appends(id bigint NOT NULL,"
                 " seq bigint NOT NULL, line bytea NOT NULL,"
                 " PRIMARY KEY(id, seq))");
    PQfinish(db);
    if (rc != 0)
        return -1;
    for (int i = 0; i < conns; i++)
        f[i] = (raw_floor){.c = c,
                           .loc = loc,
                           .a = a,
                           .sync = sync,
                           .workflows = workflows / (size_t)conns,
                           .first = (int64_t)i * (int64_t)workflows,
                           .reads = reads,
                           .go = &go};
    secs = run_gated(conns, raw_floor_thread, f, sizeof(f[0]), &go);
    if (secs < 0)
        return bench_fail(c, "pthread_create failed");
    for (int i = 0; i < conns; i++)
        if (f[i].rc != 0)
            return -1;
    return (double)(workflows / (size_t)conns * (size_t)conns) / secs;
}

/* ------------------------------------------------------------------ */
/* Runners                                                            */
/* ------------------------------------------------------------------ */

typedef struct pg_counts {
    double xacts, wal_syncs;
    double matched; /* the raw floor with as many statements, wf/s */
} pg_counts;

static int pg_counts_get(bench_ctx *c, pg_counts *out);

typedef struct runner {
    bench_ctx *c;
    const char *loc;
    evs_durability d;
    size_t n;
    p9_exec_id *ids;
    gate *go;
    int rc;
} runner;

/* Workflows each runner runs before the timed ones, not counted: a
 * long-lived runner's connections are made and its statements prepared
 * (on PostgreSQL, a process and a plan per connection). */
#define WARM_PER_RUNNER 16

static void *runner_thread(void *arg)
{
    runner *r = arg;
    evs_store *st = NULL;
    p9_exec_id warm[WARM_PER_RUNNER];
    double secs;
    int ok;

    r->rc = -1;
    ok = p9_open_store(r->c, r->loc, r->d, NULL, &st) == 0 &&
         p9_run_batch(r->c, st, p9_wf_three, WARM_PER_RUNNER,
                      EVS_OUTCOME_COMPLETED, warm, &secs) == 0;
    gate_wait(r->go);
    if (ok && p9_run_batch(r->c, st, p9_wf_three, r->n, EVS_OUTCOME_COMPLETED,
                           r->ids, &secs) == 0)
        r->rc = 0;
    evs_store_close(st);
    return NULL;
}

/* The server's counts as the gate opens (gate.at_open). */
typedef struct counting {
    bench_ctx *c;
    pg_counts n;
    int ok;
} counting;

static void counts_before(void *arg)
{
    counting *k = arg;

    k->ok = pg_counts_get(k->c, &k->n) == 0;
}

/*
 * n workflows on `runners` runners sharing the store at `loc`, each
 * warmed up first: the server's counts are read into *counts before and
 * after the timed run (and
 * counts->xacts set to -1 if they cannot be); then every log is checked
 * and *res filled, and `keep` with one workflow's appends.
 */
static int run_runners(bench_ctx *c, const char *loc, evs_durability d,
                       int runners, size_t n, p9_tp_result *res,
                       p9_appends *keep, pg_counts *counts)
{
    runner r[RUNNERS];
    gate go = {.at_open = counts_before};
    p9_exec_id *ids = calloc(n, sizeof(*ids));
    evs_store *st = NULL;
    uint64_t events, nappends;
    size_t per = n / (size_t)runners, done = 0;
    counting before = {.c = c};
    pg_counts after;
    p9_log_count lc;
    double secs;
    int rc = 0;

    if (!ids)
        return bench_fail(c, "out of memory");
    go.arg = &before;
    for (int i = 0; i < runners; i++) {
        r[i] = (runner){.c = c,
                        .loc = loc,
                        .d = d,
                        .n = i == runners - 1 ? n - done : per,
                        .ids = ids + done,
                        .go = &go};
        done += r[i].n;
    }
    secs = run_gated(runners, runner_thread, r, sizeof(r[0]), &go);
    if (secs < 0)
        rc = bench_fail(c, "pthread_create failed");
    for (int i = 0; i < runners; i++)
        rc |= r[i].rc;
    if (before.ok && pg_counts_get(c, &after) == 0) {
        counts->xacts = (after.xacts - before.n.xacts) / (double)n;
        counts->wal_syncs = (after.wal_syncs - before.n.wal_syncs) / (double)n;
    } else {
        counts->xacts = counts->wal_syncs = -1;
    }
    if (rc == 0 && p9_open_store(c, loc, d, NULL, &st) != 0)
        rc = -1;
    if (rc == 0 && p9_count_logs(c, st, ids, n, &events, &nappends) != 0)
        rc = -1;
    if (rc == 0 && keep && p9_count_log(c, st, ids[0], NULL, &lc, keep) != 0)
        rc = -1;
    if (rc == 0) {
        res->wf_s = (double)n / secs;
        res->events = (double)events / (double)n;
        res->appends = (double)nappends / (double)n;
    }
    evs_store_close(st);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The server's counters                                              */
/* ------------------------------------------------------------------ */

static int read_counts(PGconn *db, pg_counts *out)
{
    PGresult *r = PQexec(db, "SELECT (SELECT xact_commit + xact_rollback FROM "
                             "pg_stat_database WHERE datname = "
                             "current_database()), (SELECT wal_sync FROM "
                             "pg_stat_wal)");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

    if (ok) {
        out->xacts = strtod(PQgetvalue(r, 0, 0), NULL);
        out->wal_syncs = strtod(PQgetvalue(r, 0, 1), NULL);
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/*
 * The server's transaction and WAL-flush counters. A session reports
 * its counts when it ends, which its server process does a moment after
 * the client hung up: the counters are read until two readings 50 ms
 * apart agree (at most a second), so the figures are about right, not
 * exact.
 */
static int pg_counts_get(bench_ctx *c, pg_counts *out)
{
    pg_counts prev = {-1, -1, 0};
    PGconn *db = NULL;
    int rc = -1;

    if (pq_open(c, c->pg.uri, 0, &db) != 0)
        return -1;
    for (int i = 0; i < 20; i++) {
        PQclear(PQexec(db, "SELECT pg_stat_clear_snapshot()"));
        if (read_counts(db, out) != 0)
            break;
        if (out->xacts == prev.xacts && out->wal_syncs == prev.wal_syncs) {
            rc = 0;
            break;
        }
        prev = *out;
        usleep(50000);
    }
    if (rc != 0 && prev.xacts >= 0) {
        *out = prev;
        rc = 0;
    }
    PQfinish(db);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The rows                                                           */
/* ------------------------------------------------------------------ */

enum { R_QD, R_QN, R_GD, R_GN, R_G4, NROWS };

/* One PostgreSQL run: evstore (1 or RUNNERS runners, each a thread of
 * its own, so one runner is timed as four are) in a fresh schema,
 * then raw libpq with as many connections; pushes both into row, and the
 * server's counts per workflow into *per. */
static int pg_run(bench_ctx *c, const char *schema, evs_durability d,
                  int runners, size_t n, bench_row *row, pg_counts *per)
{
    char loc[2400];
    p9_tp_result res = {0};
    p9_appends a = {0};
    int rc = -1;
    double raw;

    if (bench_pg_loc(c, schema, loc, sizeof(loc)) != 0)
        return -1;
    if (run_runners(c, loc, d, runners, n, &res, &a, per) != 0)
        goto out;
    bench_progress(c, 1, "p9: raw libpq, %d connection%s", runners,
                   runners > 1 ? "s" : "");
    raw = raw_floor_rate(c, loc, &a, runners, d == EVS_SYNC_FULL, n, 0);
    if (raw < 0)
        goto out;
    /* The same, made up to as many statements per workflow as the
     * backend's transactions: the rest point reads, which flush
     * nothing. */
    per->matched = -1;
    if (per->xacts > (double)a.n) {
        bench_progress(c, 1, "p9: raw libpq, %.0f statements per workflow",
                       per->xacts);
        per->matched = raw_floor_rate(c, loc, &a, runners, d == EVS_SYNC_FULL,
                                      n, (size_t)(per->xacts + 0.5) - a.n);
        if (per->matched < 0)
            goto out;
    }
    bench_row_push(row, SYS_EVSTORE, res.wf_s);
    bench_row_push(row, SYS_SQLITE, raw);
    rc = 0;
out:
    free(a.buf);
    free(a.off);
    return rc;
}

int p9_backends(bench_ctx *c, size_t nd, size_t nn, size_t reps)
{
    bench_row *row[NROWS] = {0};
    pg_counts per[NROWS] = {0};
    p9_tp_result res = {0};
    char loc[4400];
    int pg = bench_pg_want(c) == 0;

    row[R_QD] = bench_row_add(c, "P9",
                              "3-step workflows, durable, evstore on its "
                              "SQLite backend",
                              "workflows/s", 0);
    row[R_QN] = bench_row_add(c, "P9",
                              "3-step workflows, no sync, evstore on its "
                              "SQLite backend",
                              "workflows/s", 0);
    if (pg) {
        row[R_GD] = bench_row_add(c, "P9",
                                  "3-step workflows, durable, evstore on "
                                  "PostgreSQL, 1 runner",
                                  "workflows/s", 0);
        row[R_GN] = bench_row_add(c, "P9",
                                  "3-step workflows, no sync, evstore on "
                                  "PostgreSQL, 1 runner",
                                  "workflows/s", 0);
        row[R_G4] = bench_row_add(c, "P9",
                                  "3-step workflows, durable, evstore on "
                                  "PostgreSQL, 4 runners",
                                  "workflows/s", 0);
        for (int k = R_GD; k <= R_G4; k++)
            row[k]->peer = "libpq";
    }
    for (size_t rep = 0; rep < reps; rep++) {
        int r1 = (int)rep + 1;

        bench_progress(c, 1, "p9 rep %d/%zu: SQLite backend", r1, reps);
        snprintf(loc, sizeof(loc), "sqlite:%s/p9/sqlite-durable-%d.db", c->root,
                 r1);
        if (p9_throughput_once(c, loc, EVS_SYNC_FULL, NULL, nd, &res, NULL,
                               NULL) != 0)
            return -1;
        bench_row_push(row[R_QD], SYS_EVSTORE, res.wf_s);
        snprintf(loc, sizeof(loc), "sqlite:%s/p9/sqlite-nosync-%d.db", c->root,
                 r1);
        if (p9_throughput_once(c, loc, EVS_SYNC_NONE, NULL, nn, &res, NULL,
                               NULL) != 0)
            return -1;
        bench_row_push(row[R_QN], SYS_EVSTORE, res.wf_s);
        if (!pg)
            continue;
        bench_progress(c, 1, "p9 rep %d/%zu: PostgreSQL, durable", r1, reps);
        if (pg_run(c, "p9d", EVS_SYNC_FULL, 1, nd, row[R_GD], &per[R_GD]) != 0)
            return -1;
        bench_progress(c, 1, "p9 rep %d/%zu: PostgreSQL, no sync", r1, reps);
        if (pg_run(c, "p9n", EVS_SYNC_NONE, 1, nn, row[R_GN], &per[R_GN]) != 0)
            return -1;
        bench_progress(c, 1, "p9 rep %d/%zu: PostgreSQL, 4 runners", r1, reps);
        if (pg_run(c, "p9r4", EVS_SYNC_FULL, RUNNERS, nd, row[R_G4],
                   &per[R_G4]) != 0)
            return -1;
    }
    if (!pg)
        return 0;
    /* Issue 18: at least 0.8x the raw engine; 4 runners >= 1,000/s. */
    for (int k = R_GD; k <= R_GN; k++) {
        bench_row_target(row[k], "≥ 0.8× libpq");
        bench_row_judge(row[k], bench_ratio(row[k], SYS_SQLITE) >= 0.8);
    }
    bench_row_target(row[R_G4], "≥ 1000 workflows/s and ≥ 0.8× libpq");
    bench_row_judge(row[R_G4],
                    bench_row_median(row[R_G4], SYS_EVSTORE) >= 1000 &&
                        bench_ratio(row[R_G4], SYS_SQLITE) >= 0.8);
    bench_note(c,
               "P9 on PostgreSQL: %zu durable, %zu unsynced workflows a "
               "repetition; 4 runners: 4 handles (connections), each "
               "with an orchestrator on its own loop and thread, a quarter "
               "each, from a common start to the last end; libpq: the "
               "workflow's appends read back, an INSERT per transaction, on "
               "as many connections",
               nd, nn);
    bench_note(c,
               "P9 on PostgreSQL, raw libpq made up to the backend's "
               "transactions per workflow (its appends, then point "
               "SELECTs; last repetition): durable 1 runner %.0f "
               "workflows/s, no sync %.0f, durable 4 runners %.0f",
               per[R_GD].matched, per[R_GN].matched, per[R_G4].matched);
    bench_note(c,
               "P9 on PostgreSQL, per workflow (last repetition; "
               "pg_stat_database, pg_stat_wal; about right, a session's "
               "counts arrive as it ends): durable 1 runner %.1f "
               "transactions, %.2f WAL flushes; no sync %.1f, %.2f; "
               "durable 4 runners %.1f, %.2f",
               per[R_GD].xacts, per[R_GD].wal_syncs, per[R_GN].xacts,
               per[R_GN].wal_syncs, per[R_G4].xacts, per[R_G4].wal_syncs);
    return 0;
}

int scen_p9db(bench_ctx *c)
{
    size_t reps = c->repeat < 3 ? (size_t)c->repeat : 3;

    /* As scen_p9: before the first use of the threadpool. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    return p9_backends(c, c->sz.p9_durable, c->sz.p9_nosync,
                       c->quick ? 1 : reps);
}
