/*
 * peer_sqlite.c: the SQLite peer, set up as an embedded event store
 * would use it: WAL mode, one table of events with primary key
 * (execution_id, sequence), every field of the event in its own column,
 * prepared statements, and the `synchronous` level that matches the
 * durability evstore is measured at.
 */
#include "evbench.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char schema[] = "CREATE TABLE IF NOT EXISTS events("
                             " execution_id TEXT NOT NULL,"
                             " sequence INTEGER NOT NULL,"
                             " id TEXT NOT NULL,"
                             " path_id TEXT NOT NULL,"
                             " timestamp INTEGER NOT NULL,"
                             " event_type TEXT NOT NULL,"
                             " step_name TEXT NOT NULL,"
                             " data TEXT NOT NULL,"
                             " PRIMARY KEY (execution_id, sequence))";

static const char insert_sql[] =
    "INSERT INTO events(execution_id, sequence, id, path_id, timestamp,"
    " event_type, step_name, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static int sq_fail(bench_ctx *c, sqlite3 *db, const char *what)
{
    return bench_fail(c, "SQLite: %s: %s", what,
                      db ? sqlite3_errmsg(db) : "out of memory");
}

/*
 * Retries a busy lock after a short sleep. sqlite3_busy_timeout() backs
 * off to sleeps of up to 100 ms, which with many writer threads measures
 * its sleep schedule rather than SQLite (about 60 events/s at 64
 * threads); this measures what the locks allow. Gives up after a few
 * minutes.
 */
static int busy_retry(void *arg, int count)
{
    (void)arg;
    if (count > 2000000)
        return 0;
    usleep(count < 16 ? 10 : 100);
    return 1;
}

int sq_exec(bench_ctx *c, sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

    if (rc != SQLITE_OK) {
        bench_fail(c, "SQLite: %s: %s", sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int sq_prepare(bench_ctx *c, sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return sq_fail(c, db, sql);
    return 0;
}

int sq_open(bench_ctx *c, const char *name, const char *sync, sqlite3 **out,
            sqlite3_stmt **ins)
{
    char path[8192], sql[64];
    sqlite3 *db = NULL;
    int rc = -1;

    bench_path(path, sizeof(path), c->sql, name);
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        sq_fail(c, db, "open");
        goto out;
    }
    /* Writers of other connections wait instead of failing. */
    sqlite3_busy_handler(db, busy_retry, NULL);
    snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s", sync);
    if (sq_exec(c, db, "PRAGMA journal_mode=WAL") != 0 ||
        sq_exec(c, db, sql) != 0 || sq_exec(c, db, schema) != 0)
        goto out;
    if (ins && sq_prepare(c, db, insert_sql, ins) != 0)
        goto out;
    *out = db;
    rc = 0;
out:
    if (rc != 0)
        sqlite3_close_v2(db);
    return rc;
}

static int bind_span(sqlite3_stmt *st, int col, evs_span s)
{
    return sqlite3_bind_text(st, col, s.len ? s.ptr : "", (int)s.len,
                             SQLITE_STATIC);
}

int sq_insert(bench_ctx *c, sqlite3_stmt *ins, const char *exec_id,
              uint64_t seq, const evs_event *ev)
{
    int rc;

    sqlite3_bind_text(ins, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)seq);
    bind_span(ins, 3, ev->id);
    bind_span(ins, 4, ev->path_id);
    sqlite3_bind_int64(ins, 5, ev->timestamp_us);
    bind_span(ins, 6, ev->event_type);
    bind_span(ins, 7, ev->step_name);
    bind_span(ins, 8, ev->data);
    rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE)
        return sq_fail(c, sqlite3_db_handle(ins), "insert");
    return 0;
}

int sq_read_rows(bench_ctx *c, sqlite3_stmt *st, uint64_t *rows,
                 uint64_t *bytes)
{
    uint64_t n = 0, b = 0;
    int rc, ncol = sqlite3_column_count(st);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Take every column, as a reader of the events would. */
        for (int i = 0; i < ncol; i++) {
            if (sqlite3_column_type(st, i) == SQLITE_INTEGER) {
                b += (uint64_t)sqlite3_column_int64(st, i) & 1;
            } else {
                const unsigned char *t = sqlite3_column_text(st, i);
                b += (uint64_t)sqlite3_column_bytes(st, i) + (t ? 0 : 1);
            }
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c, sqlite3_db_handle(st), "select");
    *rows = n;
    if (bytes)
        *bytes = b;
    return 0;
}

void sq_close(bench_ctx *c, sqlite3 *db, const char *name, int drop)
{
    sqlite3_stmt *st;
    char file[512];

    if (db) {
        while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
            sqlite3_finalize(st);
        sqlite3_close(db);
    }
    if (drop && name) {
        floor_unlink(c->sql, name);
        snprintf(file, sizeof(file), "%s-wal", name);
        floor_unlink(c->sql, file);
        snprintf(file, sizeof(file), "%s-shm", name);
        floor_unlink(c->sql, file);
    }
}
