/*
 * scen_replay.c: the replay scenarios, over the agent-like history of
 * scen_replay_hist.c, made once per run and shared.
 *
 *  P5  replay to state without a snapshot: events/s of evs_replay_open
 *      (strict: the history must break no rule). The floor is evstore's
 *      own cursor reading and verifying the same log with no replay, so
 *      the ratio is replay's own cost; SQLite steps an ordered SELECT of
 *      the same events (it builds no state: the fair analogue is reading
 *      the events back).
 *  P7  open + replay with a fresh snapshot: latency of evs_replay_new +
 *      evs_replay_open, which must start from the snapshot. The floor
 *      opens the snapshot file, preads all of it and closes it; SQLite
 *      reads one row holding the same state JSON by primary key on an
 *      open connection.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char select_all[] =
    "SELECT execution_id, sequence, id, path_id, timestamp, event_type,"
    " step_name, data FROM events WHERE execution_id = ?1"
    " ORDER BY sequence";
static const char snap_schema[] =
    "CREATE TABLE IF NOT EXISTS snapshots("
    " execution_id TEXT PRIMARY KEY, state BLOB NOT NULL)";
static const char select_snap[] =
    "SELECT state FROM snapshots WHERE execution_id = ?1";

/* ------------------------------------------------------------------ */
/* P5                                                                 */
/* ------------------------------------------------------------------ */

int scen_p5(bench_ctx *c)
{
    evs_store *st = NULL;
    evs_replay *r = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *sel = NULL;
    bench_row *re;
    uint64_t t0, got[SYS_N];
    double secs[SYS_N];
    int rc = -1;

    if (bench_hist_ensure(c) != 0)
        goto out;
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0)
        goto out;
    if (sq_open(c, BENCH_HIST_DB, "FULL", &db, NULL) != 0 ||
        sq_prepare(c, db, select_all, &sel) != 0)
        goto out;
    sqlite3_bind_text(sel, 1, BENCH_HIST_ID, -1, SQLITE_STATIC);
    re = bench_row_add(c, "P5",
                       "replay to state, agent history, no "
                       "snapshot",
                       "events/s", 0);
    for (int rep = 0; rep < c->repeat; rep++) {
        bench_progress(c, 1, "p5 rep %d/%d: floor", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (bench_read_all(c, st, BENCH_HIST_ID, "floor (cursor)",
                           &got[SYS_FLOOR]) != 0)
            goto out;
        secs[SYS_FLOOR] = (double)(bench_now_ns() - t0) / 1e9;
        bench_progress(c, 1, "p5 rep %d/%d: evstore", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (bench_hist_replay(c, st, 0, 0, &r) != 0)
            goto out;
        secs[SYS_EVSTORE] = (double)(bench_now_ns() - t0) / 1e9;
        got[SYS_EVSTORE] = evs_replay_exec(r)->last_seq;
        if (bench_hist_check(c, r, 0) != 0)
            goto out;
        evs_replay_free(r);
        r = NULL;
        bench_progress(c, 1, "p5 rep %d/%d: SQLite", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (sq_read_rows(c, sel, &got[SYS_SQLITE], NULL) != 0)
            goto out;
        secs[SYS_SQLITE] = (double)(bench_now_ns() - t0) / 1e9;
        for (int s = 0; s < SYS_N; s++) {
            if (got[s] != g_hist.events) {
                bench_fail(c, "system %d read %llu events, not %llu", s,
                           (unsigned long long)got[s],
                           (unsigned long long)g_hist.events);
                goto out;
            }
            bench_row_push(re, s, (double)got[s] / secs[s]);
        }
    }
    bench_row_target(re, "≥ 1 M events/s");
    bench_row_judge(re, bench_row_median(re, SYS_EVSTORE) >= 1e6);
    bench_note(c, "P5: evstore is evs_replay_new + evs_replay_open, strict, "
                  "no snapshot with state (checked); the floor is evstore's "
                  "cursor alone over the same log (open, read, verify: no "
                  "replay); SQLite reads the same events back in order (it "
                  "builds no state)");
    rc = 0;
out:
    evs_replay_free(r);
    sq_close(c, db, NULL, 0);
    if (!(c->scenarios & SC_P7))
        bench_hist_drop(c, st);
    evs_store_close(st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* P7                                                                 */
/* ------------------------------------------------------------------ */

static void snap_file(bench_ctx *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/snapshot.json", c->store, BENCH_HIST_ID);
}

/* Writes the snapshot at the end of the history, as the orchestrator
 * would (compact), and the same state into SQLite's snapshots table. */
static int snap_ensure(bench_ctx *c, evs_store *st, sqlite3 *db)
{
    sqlite3_stmt *ins = NULL;
    evs_replay *r = NULL;
    char path[8300], *js = NULL;
    struct stat sb;
    size_t len;
    int rc = -1, err;

    if (g_hist.snap_ready)
        return 0;
    bench_progress(c, 1, "p7 setup: snapshot");
    if (bench_hist_replay(c, st, 0, 1, &r) != 0 ||
        bench_hist_check(c, r, 1) != 0)
        goto out;
    if ((err = evs_replay_snapshot(r, st, (evs_span){NULL, 0})) != 0) {
        bench_evs_fail(c, err, "evs_replay_snapshot");
        goto out;
    }
    if ((err = evs_replay_state_json(r, &js, &len)) != 0) {
        bench_evs_fail(c, err, "evs_replay_state_json");
        goto out;
    }
    snap_file(c, path, sizeof(path));
    if (stat(path, &sb) != 0) {
        bench_fail(c, "stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (sq_exec(c, db, snap_schema) != 0 ||
        sq_prepare(c, db,
                   "INSERT OR REPLACE INTO snapshots(execution_id, state)"
                   " VALUES (?1, ?2)",
                   &ins) != 0)
        goto out;
    sqlite3_bind_text(ins, 1, BENCH_HIST_ID, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(ins, 2, js, len, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) {
        bench_fail(c, "SQLite: insert of the state: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (sq_exec(c, db, "PRAGMA wal_checkpoint(TRUNCATE)") != 0)
        goto out;
    g_hist.state_len = len;
    g_hist.snap_bytes = (uint64_t)sb.st_size;
    g_hist.snap_ready = 1;
    evs_free(NULL, g_hist.state);
    g_hist.state = js;
    js = NULL;
    rc = 0;
out:
    sqlite3_finalize(ins);
    evs_free(NULL, js);
    evs_replay_free(r);
    return rc;
}

/* An open from the snapshot gives the state of the replay from 1. */
static int same_state(bench_ctx *c, const evs_replay *r)
{
    char *js = NULL;
    size_t len = 0;
    int rc = evs_replay_state_json(r, &js, &len);

    if (rc != 0)
        return bench_evs_fail(c, rc, "evs_replay_state_json");
    rc = len == g_hist.state_len && memcmp(js, g_hist.state, len) == 0;
    evs_free(NULL, js);
    return rc ? 0
              : bench_fail(c, "the state opened from the snapshot "
                              "differs from the replay from sequence 1");
}

static int p7_floor(bench_ctx *c, const char *path, char *buf, size_t cap)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return bench_fail(c, "floor: open %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size > cap ||
        pread(fd, buf, (size_t)sb.st_size, 0) != (ssize_t)sb.st_size) {
        close(fd);
        return bench_fail(c, "floor: reading %s", path);
    }
    close(fd);
    return 0;
}

static int p7_sqlite(bench_ctx *c, sqlite3_stmt *sel, size_t *len)
{
    int rc = sqlite3_step(sel);

    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(sel, 0);
        *len = p ? (size_t)sqlite3_column_bytes(sel, 0) : 0;
        rc = sqlite3_step(sel);
    }
    sqlite3_reset(sel);
    if (rc != SQLITE_DONE)
        return bench_fail(c, "SQLite: select of the state: %s",
                          sqlite3_errmsg(sqlite3_db_handle(sel)));
    return 0;
}

/* One open of each system, timed, into lat[sys * iters + i]. */
static int p7_once(bench_ctx *c, evs_store *st, sqlite3_stmt *sel,
                   const char *path, char *buf, double *lat, size_t iters,
                   size_t i)
{
    evs_replay *r = NULL;
    uint64_t t0;
    size_t len = 0;
    int rc;

    t0 = bench_now_ns();
    if (p7_floor(c, path, buf, g_hist.snap_bytes) != 0)
        return -1;
    lat[SYS_FLOOR * iters + i] = (double)(bench_now_ns() - t0) / 1e3;
    t0 = bench_now_ns();
    rc = bench_hist_replay(c, st, 1, 1, &r);
    lat[SYS_EVSTORE * iters + i] = (double)(bench_now_ns() - t0) / 1e3;
    if (rc == 0 && evs_replay_exec(r)->last_seq != g_hist.events)
        rc = bench_fail(c, "replayed to %llu, not %llu",
                        (unsigned long long)evs_replay_exec(r)->last_seq,
                        (unsigned long long)g_hist.events);
    evs_replay_free(r);
    if (rc != 0)
        return -1;
    t0 = bench_now_ns();
    if (p7_sqlite(c, sel, &len) != 0)
        return -1;
    lat[SYS_SQLITE * iters + i] = (double)(bench_now_ns() - t0) / 1e3;
    if (len != g_hist.state_len)
        return bench_fail(c, "SQLite returned %zu bytes of state, not %zu", len,
                          g_hist.state_len);
    return 0;
}

/* Where the time of one open goes, through the public API: the
 * snapshot's load and check, the state's parse, the log's open. */
static void p7_breakdown(bench_ctx *c, evs_store *st)
{
    double load[5], parse[5], logo[5];
    evs_replay_opts o;
    evs_snapshot *sn = NULL;
    evs_replay *r = NULL;
    evs_log *l = NULL;
    uint64_t t0;
    size_t n = 0;

    evs_replay_opts_init(&o);
    o.compact = 1;
    for (; n < 5; n++) {
        t0 = bench_now_ns();
        /* As evs_replay_open loads it: the state is checked once, by
         * the replay's parse. */
        if (evs_snapshot_load_flags(st, BENCH_HIST_ID, strlen(BENCH_HIST_ID),
                                    EVS_SNAPSHOT_STATE_RAW, &sn, NULL) != 0)
            break;
        load[n] = (double)(bench_now_ns() - t0) / 1e6;
        if (evs_replay_new(&o, &r) != 0)
            break;
        t0 = bench_now_ns();
        if (evs_replay_load_state(r, sn->state.ptr, sn->state.len) != 0)
            break;
        parse[n] = (double)(bench_now_ns() - t0) / 1e6;
        t0 = bench_now_ns();
        if (evs_log_open(st, BENCH_HIST_ID, strlen(BENCH_HIST_ID), 0, &l, NULL,
                         NULL))
            break;
        logo[n] = (double)(bench_now_ns() - t0) / 1e6;
        evs_log_close(l);
        l = NULL;
        evs_replay_free(r);
        r = NULL;
        evs_snapshot_free(sn);
        sn = NULL;
    }
    evs_log_close(l);
    evs_replay_free(r);
    evs_snapshot_free(sn);
    if (n == 5)
        bench_note(c,
                   "P7 breakdown (median of 5, ms): evs_snapshot_load "
                   "(state unchecked) %.2f, evs_replay_load_state (with "
                   "its copy of the text) %.2f, evs_log_open %.2f",
                   bench_quantile(load, 5, 0.5), bench_quantile(parse, 5, 0.5),
                   bench_quantile(logo, 5, 0.5));
}

int scen_p7(bench_ctx *c)
{
    evs_store *st = NULL;
    evs_replay *r = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *sel = NULL;
    bench_row *r50, *r99;
    char path[8300], *buf = NULL;
    double *lat = NULL, one;
    size_t iters, max_iters = c->quick ? 30 : 200;
    uint64_t t0;
    int rc = -1;

    if (bench_hist_ensure(c) != 0)
        goto out;
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0)
        goto out;
    if (sq_open(c, BENCH_HIST_DB, "FULL", &db, NULL) != 0 ||
        snap_ensure(c, st, db) != 0 ||
        sq_prepare(c, db, select_snap, &sel) != 0)
        goto out;
    sqlite3_bind_text(sel, 1, BENCH_HIST_ID, -1, SQLITE_STATIC);
    snap_file(c, path, sizeof(path));
    buf = floor_alloc_aligned(g_hist.snap_bytes + 4096);
    if (!buf) {
        bench_fail(c, "out of memory");
        goto out;
    }
    /* As many opens as fit in about a second per system and repetition,
     * so that a slow open still leaves time for the repetitions. */
    t0 = bench_now_ns();
    if (bench_hist_replay(c, st, 1, 1, &r) != 0 ||
        bench_hist_check(c, r, 1) != 0 || same_state(c, r) != 0)
        goto out;
    one = (double)(bench_now_ns() - t0) / 1e9;
    evs_replay_free(r);
    r = NULL;
    iters = one > 0 ? (size_t)(1.0 / one) : max_iters;
    iters = iters < 10 ? 10 : iters > max_iters ? max_iters : iters;
    lat = malloc(SYS_N * iters * sizeof(*lat));
    if (!lat) {
        bench_fail(c, "out of memory");
        goto out;
    }
    r50 = bench_row_add(c, "P7", "open + replay, fresh snapshot: p50", "µs", 1);
    r99 = bench_row_add(c, "P7", "open + replay, fresh snapshot: p99", "µs", 1);
    for (int rep = 0; rep < c->repeat; rep++) {
        bench_progress(c, 1, "p7 rep %d/%d", rep + 1, c->repeat);
        for (size_t i = 0; i < iters; i++)
            if (p7_once(c, st, sel, path, buf, lat, iters, i) != 0)
                goto out;
        for (int s = 0; s < SYS_N; s++) {
            double *v = lat + (size_t)s * iters;

            bench_row_push(r50, s, bench_quantile(v, iters, 0.50));
            bench_row_push(r99, s, bench_quantile(v, iters, 0.99));
        }
    }
    bench_row_target(r50, "≤ 5000 µs");
    bench_row_judge(r50, bench_row_median(r50, SYS_EVSTORE) <= 5000);
    p7_breakdown(c, st);
    bench_note(c,
               "P7: %zu opens per repetition and system; snapshot "
               "%.1f KiB, compact state JSON %.1f KiB (the orchestrator's "
               "mode; it equals the compact replay from sequence 1, "
               "checked); evstore is evs_replay_new + evs_replay_open, "
               "which starts from the snapshot (checked), no events after "
               "it; the floor opens, preads and closes the snapshot file; "
               "SQLite selects the same state by primary key on an open "
               "connection",
               iters, (double)g_hist.snap_bytes / 1024.0,
               (double)g_hist.state_len / 1024.0);
    rc = 0;
out:
    evs_replay_free(r);
    sq_close(c, db, NULL, 0);
    bench_hist_drop(c, st);
    evs_store_close(st);
    free(buf);
    free(lat);
    return rc;
}
