/*
 * pg_store.c: the PostgreSQL backend's store: connecting (libpq, a
 * location "postgresql://..." or "postgres://..."), the schema and its
 * forward migrations, the statements and their binary parameters,
 * transactions at the synchronous_commit the durability mode asks, and
 * creating executions (pg_lease.c claims leases and deletes them).
 * eventstore/BACKENDS.md describes the schema and how each promise of
 * store.h is kept.
 */
#include "pg_int.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The statuses of executions that have ended: never claimed from the
 * queue. The queue's index and the statements that use it spell the
 * list the same way, so the planner matches them. */
#define UNFINISHED_NOT "('completed', 'failed', 'terminated', 'continued')"

/*
 * The schema, one step per version: migrations[v] takes a database at
 * version v to v + 1, in the transaction that records the new version.
 * A database of a later version than this list reaches is refused.
 * Text columns compared or ordered use the "C" collation: byte order,
 * the file backend's memcmp order, whatever the database's locale.
 */
static const char *const migrations[EVS__PG_SCHEMA] = {
    /* 0 -> 1 */
    "CREATE TABLE evs_schema(version integer NOT NULL);"
    "INSERT INTO evs_schema VALUES(0);"
    /* One row per execution: its listing header and snapshot, its log's
     * end, its inbox's change counter and its writer's lease. */
    "CREATE TABLE executions("
    " rid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " id text COLLATE \"C\" NOT NULL UNIQUE,"
    " last_seq bigint NOT NULL,"
    " bytes bigint NOT NULL,"
    " req_gen bigint NOT NULL DEFAULT 0,"
    " status text COLLATE \"C\" NOT NULL,"
    " workflow text COLLATE \"C\" NOT NULL,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL,"
    " start_time bigint NOT NULL,"
    " end_time bigint NOT NULL,"
    " snap_seq bigint NOT NULL,"
    " snapshot bytea NOT NULL,"
    " owner text,"
    " lease_until bigint NOT NULL DEFAULT 0,"
    " fence bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX executions_created ON executions(created_at, id)"
    " INCLUDE (status, workflow, start_time, end_time, updated_at,"
    " snap_seq);"
    "CREATE INDEX executions_status ON executions(status, created_at, id)"
    " INCLUDE (workflow, start_time, end_time, updated_at, snap_seq);"
    "CREATE INDEX executions_workflow ON executions(workflow, created_at, id)"
    " INCLUDE (status, start_time, end_time, updated_at, snap_seq);"
    "CREATE INDEX executions_final ON executions(status, updated_at);"
    /* The log: each line byte for byte, newline included, at the byte
     * offset it would have in events.jsonl. */
    "CREATE TABLE events(rid bigint NOT NULL, seq bigint NOT NULL,"
    " off bigint NOT NULL, line bytea NOT NULL, PRIMARY KEY(rid, seq));"
    "CREATE TABLE requests(rid bigint NOT NULL,"
    " req_id text COLLATE \"C\" NOT NULL, body bytea NOT NULL,"
    " PRIMARY KEY(rid, req_id));"
    "CREATE TABLE settings(k integer PRIMARY KEY CHECK(k = 0),"
    " body bytea NOT NULL);",
    /* 1 -> 2: the queue runners claim work from (evs_log_claim). `run`
     * marks a durable function's run, which its host runs, never a
     * runner: its first event, execution_started, names a code_version
     * (as evs_exec_code_version reads it). The partial index holds only
     * the executions a runner may take, ordered by when they became free
     * (lease_until: their creation, a lease's end, a release; rows of
     * version 1 have 0). */
    "ALTER TABLE executions ADD COLUMN run boolean NOT NULL DEFAULT false;"
    "UPDATE executions e SET run = true FROM events v"
    " WHERE v.rid = e.rid AND v.seq = 1"
    " AND convert_from(v.line, 'UTF8')::jsonb ->> 'event_type'"
    " = 'execution_started'"
    " AND jsonb_typeof(convert_from(v.line, 'UTF8')::jsonb -> 'data'"
    " -> 'code_version') = 'string';"
    "CREATE INDEX executions_queue ON executions(lease_until, rid)"
    " WHERE NOT run AND status NOT IN " UNFINISHED_NOT ";"
    /* Room in each page for an append's new row version beside the old,
     * so that it can be heap-only (above). */
    "ALTER TABLE executions SET (fillfactor = 70);",
    /* 2 -> 3: schedules (pg_schedule.c). body is the schedule's framed,
     * checksummed line (SCHEDULES.md §7) byte for byte; updated_at (µs)
     * is the line's, for a reader of the table. owner, lease_until and
     * fence are its lock: a lease with a fencing token, as a writer's. */
    "CREATE TABLE schedules(name text COLLATE \"C\" PRIMARY KEY,"
    " body bytea NOT NULL,"
    " updated_at bigint NOT NULL,"
    " owner text,"
    " lease_until bigint NOT NULL DEFAULT 0,"
    " fence bigint NOT NULL DEFAULT 0);",
    /* 3 -> 4: the columns that can be large are compressed with lz4
     * rather than the default pglz, several times cheaper for the
     * server: a snapshot is rewritten at every wait and end, and over
     * about 2 kB it is compressed each time. A server built without
     * lz4 keeps pglz (values already stored keep theirs either way). */
    "DO $$ BEGIN"
    " ALTER TABLE executions ALTER COLUMN snapshot SET COMPRESSION lz4;"
    " ALTER TABLE events ALTER COLUMN line SET COMPRESSION lz4;"
    " ALTER TABLE requests ALTER COLUMN body SET COMPRESSION lz4;"
    " EXCEPTION WHEN feature_not_supported THEN NULL;"
    " END $$;",
};

/* An append (PG_APPEND, PG_APPEND_SNAP): the update of the row, to
 * which PG_APPEND_SNAP adds the snapshot's columns, and the insert of
 * the lines; see PG_APPEND for why each condition. */
#define APPEND_HEAD                                                            \
    "WITH e AS (UPDATE executions SET last_seq = $3::int8,"                    \
    " bytes = $4::int8, lease_until = CASE WHEN lease_until < " PG_NOW_US     \
    " + $5::int8 / 2 THEN " PG_NOW_US " + $5::int8 ELSE lease_until END"
#define APPEND_TAIL                                                            \
    " WHERE rid = $1::int8 AND fence = $2::int8 AND last_seq = $6::int8"       \
    " AND lease_until >= " PG_NOW_US " RETURNING rid)"                         \
    " INSERT INTO events(rid, seq, off, line)"                                 \
    " SELECT e.rid, $6::int8 + o.n, o.off, o.line FROM e,"                     \
    " unnest($7::int8[], $8::bytea[]) WITH ORDINALITY AS o(off, line, n)"

static const char *const stmt_sql[PG_LIST0] = {
    [PG_EXEC_GET] = "SELECT rid, last_seq, bytes, req_gen FROM executions"
                    " WHERE id = $1::text",
    /* With an owner ($18 not empty), the creation is also a writer's
     * claim, the first (token 1). Owned or not, lease_until is when the
     * queue may offer it: a lease after now, or now (the queue's order
     * is the time each became free, so new work does not starve work a
     * dead runner left). */
    [PG_EXEC_ADD] =
        "WITH x AS (INSERT INTO executions(id, status, workflow, created_at,"
        " updated_at, start_time, end_time, snap_seq, snapshot, last_seq,"
        " bytes, run, lease_until, owner, fence) VALUES($1::text, $2::text,"
        " $3::text, $4::int8, $5::int8, $6::int8, $7::int8, $8::int8,"
        " $9::bytea, $10::int8, $11::int8, $14::bool,"
        " " PG_NOW_US " + CASE WHEN $15::bool THEN $16::int8 ELSE 0 END,"
        " NULLIF($18::text, ''), CASE WHEN $18::text = '' THEN 0 ELSE 1 END)"
        " RETURNING rid, id, status, run),"
        " l AS (INSERT INTO events(rid, seq, off, line)"
        " SELECT x.rid, o.n, o.off, o.line FROM x,"
        " unnest($12::int8[], $13::bytea[]) WITH ORDINALITY AS o(off, line, n)),"
        /* Runners are told of work they may claim now. */
        " t AS (SELECT pg_notify($17::text, 'f' || x.id) FROM x"
        " WHERE NOT $15::bool AND NOT x.run AND x.status NOT IN " UNFINISHED_NOT
        ") SELECT x.rid, (SELECT count(*) FROM t) FROM x",
    /* Only while the claim holds: the same token, the lease not run out
     * and the log where the writer left it; the update takes the row's
     * lock, so a claim and an append are ordered. The lease is renewed
     * only once half of it has passed: lease_until is a key of the
     * queue's index, and an update that leaves every indexed column as
     * it was can be a heap-only one (HOT), which writes no index entry;
     * most appends are. */
    [PG_APPEND] = APPEND_HEAD APPEND_TAIL,
    /* PG_APPEND that also replaces the snapshot and its listing
     * columns (as PG_SNAP_SET; a snapshot's updated_at and created_at
     * given), in the same update of the row: the end of a writer's
     * turn in one statement and one commit. With $17, the writer's last
     * append of an ended execution (EVS_APPEND_RELEASE), it gives the
     * lease up too, as PG_RELEASE does for an ended one (no notice,
     * lease_until left). */
    [PG_APPEND_SNAP] =
        APPEND_HEAD ", status = $9::text, workflow = $10::text,"
        " created_at = $11::int8, updated_at = $12::int8,"
        " start_time = $13::int8, end_time = $14::int8, snap_seq = $15::int8,"
        " snapshot = $16::bytea,"
        " owner = CASE WHEN $17::bool THEN NULL ELSE owner END" APPEND_TAIL,
    [PG_LEASE_GET] = "SELECT fence, (lease_until >= " PG_NOW_US ")::int::int8,"
                     " last_seq FROM executions WHERE rid = $1::int8",
    [PG_CLAIM] = "UPDATE executions SET owner = $2::text, fence = fence + 1,"
                 " lease_until = " PG_NOW_US " + $3::int8"
                 " WHERE id = $1::text AND (owner IS NULL OR"
                 " lease_until < " PG_NOW_US ")"
                 " RETURNING rid, fence, last_seq, bytes",
    /* The next execution of the queue no live lease holds, locked so
     * that two runners claiming at once take two (SKIP LOCKED), the one
     * free the longest first: created, its lease run out, or released,
     * longest ago. */
    [PG_CLAIM_NEXT] =
        "UPDATE executions SET owner = $1::text, fence = fence + 1,"
        " lease_until = " PG_NOW_US " + $2::int8"
        " WHERE rid = (SELECT rid FROM executions WHERE NOT run"
        " AND status NOT IN " UNFINISHED_NOT " AND lease_until < " PG_NOW_US
        " ORDER BY lease_until, rid LIMIT 1"
        " FOR UPDATE SKIP LOCKED)"
        " RETURNING rid, fence, last_seq, bytes, id",
    [PG_HOLDER] = "SELECT coalesce(owner, ''), lease_until - " PG_NOW_US
                  " FROM executions WHERE id = $1::text",
    [PG_RENEW] = "UPDATE executions SET lease_until = " PG_NOW_US " + $3::int8"
                 " WHERE rid = $1::int8 AND fence = $2::int8"
                 " RETURNING lease_until, " PG_COMMIT_OFF,
    /* An unfinished execution given up is work for the others; its
     * lease ends now, which puts it behind the work already waiting in
     * the queue (so one that fails whenever it is taken cannot keep the
     * others from being taken). Any other (ended, or a durable function's
     * run) is free once it has no owner: its lease_until, a key of the
     * queue's index, is left as it was, so the update can be heap-only. */
    [PG_RELEASE] =
        "WITH u AS (UPDATE executions SET owner = NULL,"
        " lease_until = CASE WHEN run OR status IN " UNFINISHED_NOT
        " THEN lease_until ELSE " PG_NOW_US " END"
        " WHERE rid = $1::int8 AND fence = $2::int8"
        " RETURNING id, status, run, " PG_COMMIT_OFF ")"
        " SELECT pg_notify($3::text, 'f' || id) FROM u"
        " WHERE NOT run AND status NOT IN " UNFINISHED_NOT,
    [PG_EXEC_DEL] =
        "WITH a AS (DELETE FROM events WHERE rid = $1::int8),"
        " b AS (DELETE FROM requests WHERE rid = $1::int8)"
        " DELETE FROM executions WHERE rid = $1::int8 AND fence = $2::int8",
    [PG_EVENTS_GET] = "SELECT seq, off, line FROM events WHERE rid = $1::int8"
                      " AND seq >= $2::int8 AND seq <= $3::int8"
                      " ORDER BY seq LIMIT $4::int8",
    [PG_SNAP_GET] = "SELECT snapshot, last_seq, created_at FROM executions"
                    " WHERE rid = $1::int8",
    /* Never ahead of the log: the guard and the write are one. $10 says
     * whether its commit waits for the WAL's flush: set for its own
     * transaction, so a snapshot that is a cache does not switch the
     * connection's setting and back around it. */
    [PG_SNAP_SET] = "UPDATE executions SET status = $2::text,"
                    " workflow = $3::text, created_at = $4::int8,"
                    " updated_at = $5::int8, start_time = $6::int8,"
                    " end_time = $7::int8, snap_seq = $8::int8,"
                    " snapshot = $9::bytea"
                    " WHERE id = $1::text AND last_seq >= $8::int8"
                    " RETURNING set_config('synchronous_commit',"
                    " CASE WHEN $10::bool THEN 'on' ELSE 'off' END, true)",
    /* Delivered at the commit, to the runners listening (evs_watch). */
    [PG_REQ_ADD] = "WITH g AS (UPDATE executions SET req_gen = req_gen + 1"
                   " WHERE id = $1::text RETURNING rid),"
                   " i AS (INSERT INTO requests(rid, req_id, body)"
                   " SELECT g.rid, $2::text, $3::bytea FROM g RETURNING rid)"
                   " SELECT pg_notify($4::text, 'r' || $1::text) FROM i",
    /* One round trip: no row, no execution; one row of NULLs, no
     * requests. */
    [PG_REQ_LIST] = "SELECT r.req_id, r.body FROM executions e"
                    " LEFT JOIN requests r ON r.rid = e.rid"
                    " WHERE e.id = $1::text ORDER BY r.req_id",
    [PG_REQ_DEL] = "WITH d AS (DELETE FROM requests WHERE rid = $1::int8"
                   " AND req_id = $2::text RETURNING rid)"
                   " UPDATE executions SET req_gen = req_gen + 1"
                   " WHERE rid IN (SELECT rid FROM d)",
    [PG_SET_GET] = "SELECT body FROM settings WHERE k = 0",
    [PG_SET_PUT] = "INSERT INTO settings(k, body) VALUES(0, $1::bytea)"
                   " ON CONFLICT (k) DO UPDATE SET body = excluded.body",
    [PG_FINAL_LIST] =
        "SELECT rid, id FROM executions WHERE status IN ('completed',"
        " 'failed', 'terminated', 'continued') AND updated_at < $1::int8",
    /* A transaction id makes a commit record; at synchronous_commit on
     * its commit waits for the WAL, with every commit before it, to be
     * flushed. */
    [PG_SYNC] = "SELECT txid_current()",
};

/* ------------------------------------------------------------------ */
/* Parameters and results                                             */
/* ------------------------------------------------------------------ */

void evs__pg_i64(pg_params *p, int64_t v)
{
    p->be[p->n] = htobe64((uint64_t)v);
    p->val[p->n] = (const char *)&p->be[p->n];
    p->len[p->n] = 8;
    p->fmt[p->n] = 1;
    p->n++;
}

void evs__pg_bool(pg_params *p, int v)
{
    static const char yes = 1, no = 0;

    p->val[p->n] = v ? &yes : &no;
    p->len[p->n] = 1;
    p->fmt[p->n] = 1;
    p->n++;
}

void evs__pg_bytes(pg_params *p, const void *b, size_t len)
{
    p->val[p->n] = len ? b : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

int64_t evs__pg_col_i64(const PGresult *r, int row, int col)
{
    uint64_t v = 0;

    if (PQgetlength(r, row, col) == 8)
        memcpy(&v, PQgetvalue(r, row, col), 8);
    return (int64_t)be64toh(v);
}

const char *evs__pg_col(const PGresult *r, int row, int col, size_t *len)
{
    *len = (size_t)PQgetlength(r, row, col);
    return PQgetvalue(r, row, col);
}

/* Writes the header of a one-dimensional array of n elements of type
 * `oid` in PostgreSQL's binary form at p; returns its length. An empty
 * array has no dimensions. */
static size_t array_header(char *p, uint32_t oid, size_t n)
{
    uint32_t h[5] = {htobe32(n ? 1 : 0), 0, htobe32(oid), htobe32((uint32_t)n),
                     htobe32(1)};

    memcpy(p, h, n ? 20 : 12);
    return n ? 20 : 12;
}

static size_t put_u32(char *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
    return 4;
}

/* ------------------------------------------------------------------ */
/* Errors, connections and statements                                 */
/* ------------------------------------------------------------------ */

int evs__pg_msg_len(const char *m)
{
    const char *nl = strchr(m, '\n');

    return nl ? (int)(nl - m) : (int)strlen(m);
}

/* A failed result's error as one of ours, logged with `what`. */
static int pg_err(pg_conn *db, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *m = res ? PQresultErrorMessage(res) : "";
    int rc;

    if (!m || !*m)
        m = PQerrorMessage(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK)
        rc = -ECONNRESET;
    else if (!state)
        rc = -EIO;
    else if (!strcmp(state, "23505"))
        rc = -EEXIST; /* unique_violation */
    else if (!strcmp(state, "53100"))
        rc = -ENOSPC; /* disk_full */
    else if (!strcmp(state, "53200"))
        rc = -ENOMEM; /* out_of_memory */
    else if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3))
        rc = -ECONNRESET; /* connection exception, operator intervention */
    else if (!strcmp(state, "42501"))
        rc = -EACCES; /* insufficient_privilege */
    else
        rc = -EIO;
    if (rc != -EEXIST)
        evs__logf(db->s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store %s: %s: %.*s", evs__pg(db->s)->where, what,
                  evs__pg_msg_len(m), m);
    return rc;
}

/* A simple command or commands (BEGIN, SET ...; rows, if any, are not
 * wanted): 0 or an error, logged with `what` (NULL: the SQL). */
static int simple_what(pg_conn *db, const char *sql, const char *what)
{
    PGresult *r = PQexec(db->conn, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ||
                     PQresultStatus(r) == PGRES_TUPLES_OK
                 ? 0
                 : pg_err(db, r, what ? what : sql);

    PQclear(r);
    return rc;
}

static int simple(pg_conn *db, const char *sql)
{
    return simple_what(db, sql, NULL);
}

/* Drops the connection, without telling the server when another
 * process (a fork's child) made it: the parent's session is not this
 * process's to end. */
static void drop_conn(pg_conn *db)
{
    if (!db->conn)
        return;
    if (db->pid != getpid() && PQsocket(db->conn) >= 0)
        close(PQsocket(db->conn));
    PQfinish(db->conn);
    db->conn = NULL;
}

/* Connects (again): 0, or -ECONNREFUSED with libpq's reason logged. */
static int connect_db(pg_conn *db)
{
    pg_store *q = evs__pg(db->s);
    int rc = 0;

    drop_conn(db);
    memset(db->prepared, 0, sizeof(db->prepared));
    db->sync = -1;
    db->pid = getpid();
    db->conn = PQconnectdb(q->conninfo);
    if (!db->conn)
        return -ENOMEM;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(db->conn);
        rc = -ECONNREFUSED;
        evs__logf(db->s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store %s: cannot connect: %.*s", q->where,
                  evs__pg_msg_len(m), m);
        return rc;
    }
    /* Errors are ours to report; the server's notices are not printed.
     * Every statement is prepared and looks rows up by key, where the
     * generic plan is the custom one: without the setting the server
     * plans each of a connection's first five executions of each
     * statement anew, and goes on doing so for those whose custom plans
     * it costs lower (the appends' arrays), planning at every call. */
    PQsetNoticeProcessor(db->conn, NULL, NULL);
    return simple(db, "SET client_min_messages = warning;"
                      " SET plan_cache_mode = force_generic_plan");
}

/* A connection to use: the one there is, or a new one when it was lost
 * or belongs to another process. */
static int ready(pg_conn *db)
{
    if (db->conn && db->pid == getpid() &&
        PQstatus(db->conn) == CONNECTION_OK &&
        (PQtransactionStatus(db->conn) == PQTRANS_IDLE ||
         PQtransactionStatus(db->conn) == PQTRANS_INTRANS))
        return 0; /* INTRANS: inside the caller's transaction */
    return connect_db(db);
}

pg_conn *evs__pg_get(evs_store *s)
{
    pg_store *q = evs__pg(s);
    pg_conn *db;

    pthread_mutex_lock(&q->mu);
    while (!q->idle)
        pthread_cond_wait(&q->cv, &q->mu);
    db = q->idle;
    q->idle = db->next;
    pthread_mutex_unlock(&q->mu);
    return db;
}

void evs__pg_put(pg_conn *db)
{
    pg_store *q = evs__pg(db->s);

    pthread_mutex_lock(&q->mu);
    db->next = q->idle;
    q->idle = db;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static const char *sql_of(int which, char *buf, size_t cap)
{
    if (which >= PG_SCHED0)
        return evs__pg_sched_sql(which);
    return which >= PG_LIST0
               ? evs__pg_list_sql((unsigned)(which - PG_LIST0), buf, cap)
               : stmt_sql[which];
}

static int prepare(pg_conn *db, int which, const char *name)
{
    char sql[1024];
    PGresult *r;
    int rc = 0;

    if (db->prepared[which])
        return 0;
    r = PQprepare(db->conn, name, sql_of(which, sql, sizeof(sql)), 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pg_err(db, r, "preparing a statement");
    else
        db->prepared[which] = 1;
    PQclear(r);
    return rc;
}

/* Sends `set` (a SET of synchronous_commit) and the prepared statement
 * in one pipeline, so that they go in one round trip, as one implicit
 * transaction whose commit is made at the setting the SET gives. The
 * statement's result, or NULL with *rc (the SET failed, or the
 * connection did). */
static PGresult *run_with_set(pg_conn *db, const char *set, const char *name,
                              const pg_params *p, const char *what, int *rc)
{
    PGresult *r, *out = NULL;
    int stage = 0; /* 0 the SET's result, 1 the statement's, 2 the sync */

    *rc = 0;
    if (!PQenterPipelineMode(db->conn) ||
        !PQsendQueryParams(db->conn, set, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryPrepared(db->conn, name, p ? p->n : 0, p ? p->val : NULL,
                             p ? p->len : NULL, p ? p->fmt : NULL, 1) ||
        !PQpipelineSync(db->conn)) {
        *rc = pg_err(db, NULL, what);
        drop_conn(db); /* mid-pipeline: connect again next time */
        return NULL;
    }
    while (stage < 3) {
        if (!(r = PQgetResult(db->conn))) {
            stage += stage < 2; /* the end of one query's results */
            if (PQstatus(db->conn) != CONNECTION_OK) {
                if (*rc == 0)
                    *rc = pg_err(db, NULL, what);
                break;
            }
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            stage = 3;
            break;
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
            if (stage == 1 && !out) {
                out = r;
                r = NULL;
            }
            break;
        case PGRES_PIPELINE_ABORTED:
            break; /* the SET's error says why */
        default:
            if (*rc == 0)
                *rc = pg_err(db, r, stage == 0 ? "setting synchronous_commit"
                                               : what);
            break;
        }
        PQclear(r);
    }
    if (PQstatus(db->conn) != CONNECTION_OK || !PQexitPipelineMode(db->conn)) {
        if (*rc == 0)
            *rc = -ECONNRESET;
        drop_conn(db);
    }
    if (*rc != 0) {
        PQclear(out);
        return NULL;
    }
    return out;
}

PGresult *evs__pg_run(pg_conn *db, int which, const pg_params *p, int sync,
                      const char *what, int *rc)
{
    char name[16];
    PGresult *r;
    ExecStatusType st;

    if ((*rc = ready(db)) != 0)
        return NULL;
    snprintf(name, sizeof(name), "evs%d", which);
    if ((*rc = prepare(db, which, name)) != 0)
        return NULL;
    /* A change of synchronous_commit goes with the statement. Inside a
     * transaction (evs__pg_begin set it) there is none. */
    if (sync >= 0 && db->sync != sync &&
        PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
        db->sync = -1; /* known again only once both went through */
        r = run_with_set(db,
                         sync ? "SET synchronous_commit = on"
                              : "SET synchronous_commit = off",
                         name, p, what, rc);
        if (r)
            db->sync = sync;
        return r;
    }
    r = PQexecPrepared(db->conn, name, p ? p->n : 0, p ? p->val : NULL,
                       p ? p->len : NULL, p ? p->fmt : NULL, 1);
    st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        *rc = pg_err(db, r, what);
        PQclear(r);
        return NULL;
    }
    *rc = 0;
    return r;
}

int evs__pg_do(pg_conn *db, int which, const pg_params *p, int sync,
               const char *what, uint64_t *changed)
{
    PGresult *r;
    int rc;

    if (!(r = evs__pg_run(db, which, p, sync, what, &rc)))
        return rc;
    if (changed)
        *changed = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

int evs__pg_begin(pg_conn *db, int sync)
{
    int rc = ready(db);

    if (rc == 0 && sync >= 0 && db->sync != sync) {
        db->sync = -1;
        rc = simple(db, sync ? "SET synchronous_commit = on"
                             : "SET synchronous_commit = off");
        if (rc == 0)
            db->sync = sync;
    }
    return rc == 0 ? simple(db, "BEGIN") : rc;
}

int evs__pg_end(pg_conn *db, int rc)
{
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
        return rc ? rc : -ECONNRESET;
    if (rc == 0) {
        rc = simple(db, "COMMIT");
        if (rc == 0)
            return 0;
    }
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        (void)simple(db, "ROLLBACK");
    return rc;
}

int evs__pg_exec_get(pg_conn *db, const char *id, size_t id_len, int64_t *rid,
                     uint64_t *last_seq, uint64_t *bytes, int64_t *req_gen)
{
    pg_params p = {0};
    PGresult *r;
    int rc;

    evs__pg_bytes(&p, id, id_len);
    if (!(r = evs__pg_run(db, PG_EXEC_GET, &p, -1, "looking up", &rc)))
        return rc;
    if (PQntuples(r) == 1) {
        if (rid)
            *rid = evs__pg_col_i64(r, 0, 0);
        if (last_seq)
            *last_seq = (uint64_t)evs__pg_col_i64(r, 0, 1);
        if (bytes)
            *bytes = (uint64_t)evs__pg_col_i64(r, 0, 2);
        if (req_gen)
            *req_gen = evs__pg_col_i64(r, 0, 3);
    } else {
        rc = -ENOENT;
    }
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Opening                                                            */
/* ------------------------------------------------------------------ */

/* Reads the schema version (0 for a database without evstore's tables),
 * in the caller's transaction. */
static int schema_version(pg_conn *db, int *v)
{
    PGresult *r;
    int rc = 0;

    r = PQexec(db->conn, "SELECT to_regclass('evs_schema') IS NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = pg_err(db, r, "reading the schema");
        PQclear(r);
        return rc;
    }
    if (PQgetvalue(r, 0, 0)[0] == 't') {
        PQclear(r);
        *v = 0;
        return 0;
    }
    PQclear(r);
    r = PQexec(db->conn, "SELECT version FROM evs_schema");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pg_err(db, r, "reading the schema");
    else if (PQntuples(r) != 1)
        rc = EVS_ECORRUPT; /* the table without its row */
    else
        *v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Brings the schema to EVS__PG_SCHEMA, refusing a newer one; without
 * `create`, a database without the schema is no store (-ENOENT). The
 * advisory lock orders two openers making the schema at once. */
static int migrate(pg_conn *db)
{
    evs_store *s = db->s;
    pg_store *q = evs__pg(s);
    char sql[64];
    int v = 0, rc;

    if ((rc = evs__pg_begin(db, 1)) != 0)
        return rc;
    rc = simple(db, "SELECT pg_advisory_xact_lock(7715829316152940)");
    if (rc == 0)
        rc = schema_version(db, &v);
    if (rc == 0 && v > EVS__PG_SCHEMA) {
        rc = EVS_EFORMAT;
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store %s: schema version %d is newer than this "
                  "library's %d; open it with a newer evstore",
                  q->where, v, EVS__PG_SCHEMA);
    }
    if (rc == 0 && v == 0 && !s->opts.create)
        rc = -ENOENT;
    for (; rc == 0 && v < EVS__PG_SCHEMA; v++) {
        rc = simple_what(db, migrations[v], "migrating the schema");
        snprintf(sql, sizeof(sql), "UPDATE evs_schema SET version = %d", v + 1);
        if (rc == 0)
            rc = simple(db, sql);
        if (rc == 0 && v > 0)
            evs__logf(s, EVS_LOG_INFO, NULL,
                      "store %s: schema migrated to version %d", q->where,
                      v + 1);
    }
    return evs__pg_end(db, rc);
}

/* The location with a password in it hidden, for messages. */
static char *hide_password(evs_store *s, const char *loc)
{
    size_t n = strlen(loc);
    const char *at = strchr(loc, '@'), *scheme = strstr(loc, "://");
    const char *colon, *pw;
    char *out = evs__malloc(s->alloc, n + 8);

    if (!out)
        return NULL;
    memcpy(out, loc, n + 1);
    if (scheme && at && at > scheme) {
        colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
        if (colon)
            snprintf(out + (colon - loc), n + 8 - (size_t)(colon - loc),
                     ":***%s", at);
    }
    if ((pw = strstr(out, "password=")) != NULL) {
        size_t keep = (size_t)(pw - out) + 9;
        const char *amp = strchr(pw, '&');
        char tail[256];

        snprintf(tail, sizeof(tail), "%s", amp ? amp : "");
        snprintf(out + keep, n + 8 - keep, "***%s", tail);
    }
    return out;
}

/* The store's notification channel: one per schema, so that stores
 * sharing a database hear only their own. A channel is an identifier of
 * at most 63 bytes, which a schema's name may not fit: its hash does. */
static int name_channel(pg_conn *db)
{
    pg_store *q = evs__pg(db->s);
    PGresult *r = PQexec(db->conn, "SELECT current_schema()");
    const char *name;
    int rc = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        PQgetisnull(r, 0, 0)) {
        rc = pg_err(db, r, "reading the schema's name");
    } else {
        name = PQgetvalue(r, 0, 0);
        snprintf(q->chan, sizeof(q->chan), "evs_%016llx",
                 (unsigned long long)evs_checksum(name, strlen(name)));
    }
    PQclear(r);
    return rc;
}

static void pg_close(evs_store *s)
{
    pg_store *q = evs__pg(s);

    if (!q)
        return;
    for (unsigned i = 0; q->conns && i < q->nconns; i++)
        drop_conn(&q->conns[i]);
    evs__free(s->alloc, q->conns);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    evs__free(s->alloc, q->where);
    evs__free(s->alloc, q->conninfo);
    evs__free(s->alloc, q);
    s->be = NULL;
}

static int pg_open(evs_store *s, const char *loc)
{
    PQconninfoOption *opts;
    char *err = NULL;
    size_t n = strlen(loc);
    pg_store *q;
    int rc;

    if (!(q = evs__calloc(s->alloc, sizeof(*q))))
        return -ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    s->be = q;
    q->lease_us = (int64_t)s->opts.lease_ms * 1000;
    q->where = hide_password(s, loc);
    q->conninfo = evs__malloc(s->alloc, n + 1);
    q->nconns = s->opts.connections;
    q->conns = evs__calloc(s->alloc, q->nconns * sizeof(*q->conns));
    if (!q->where || !q->conninfo || !q->conns) {
        rc = -ENOMEM;
        goto fail;
    }
    /* The idle list in order, so that the first is used most. */
    for (unsigned i = q->nconns; i-- > 0;) {
        q->conns[i].s = s;
        q->conns[i].sync = -1;
        q->conns[i].next = q->idle;
        q->idle = &q->conns[i];
    }
    memcpy(q->conninfo, loc, n + 1);
    /* A location libpq cannot read is bad input, said in one line. */
    if (!(opts = PQconninfoParse(loc, &err))) {
        rc = err ? -EINVAL : -ENOMEM;
        if (err)
            evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                      "store %s: not a PostgreSQL URI: %.*s", q->where,
                      evs__pg_msg_len(err), err);
        PQfreemem(err);
        goto fail;
    }
    PQconninfoFree(opts);
    /* The first connection now: a store that cannot be reached, or has a
     * schema this library cannot use, does not open. */
    if ((rc = connect_db(q->idle)) != 0 || (rc = migrate(q->idle)) != 0 ||
        (rc = name_channel(q->idle)) != 0)
        goto fail;
    return 0;
fail:
    pg_close(s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Executions                                                         */
/* ------------------------------------------------------------------ */

int evs__pg_line_arrays(evs_store *s, const char *lines, size_t len, size_t n,
                        uint64_t off, char **buf, size_t *cap, size_t *alen,
                        size_t *blen)
{
    size_t a = (n ? 20 : 12) + 12 * n, b = (n ? 20 : 12) + 4 * n + len;
    size_t pos = 0, w, i;
    char *p;

    if (EVS__GROW(s->alloc, buf, cap, a + b) != 0)
        return -ENOMEM;
    p = *buf;
    /* The offsets (int8[]), then the lines (bytea[]). */
    w = array_header(p, 20, n);
    for (i = 0; i < n && pos < len; i++) {
        const char *nl = memchr(lines + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (lines + pos)) + 1 : len - pos;
        uint64_t be = htobe64(off + pos);

        w += put_u32(p + w, 8);
        memcpy(p + w, &be, 8);
        w += 8;
        pos += ll;
    }
    if (i != n || pos != len)
        return -EINVAL; /* not n complete lines */
    w += array_header(p + w, 17, n);
    for (i = 0, pos = 0; i < n; i++) {
        const char *nl = memchr(lines + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (lines + pos)) + 1 : len - pos;

        w += put_u32(p + w, (uint32_t)ll);
        memcpy(p + w, lines + pos, ll);
        w += ll;
        pos += ll;
    }
    *alen = a;
    *blen = b;
    return 0;
}

/* EVS_SNAPSHOT_CACHE changes nothing here: the snapshot is written in
 * the statement that makes the log, whose flush it shares.
 * EVS_CREATE_OWNED keeps the queue from offering the execution for a
 * lease's time, while its creator claims it by id; without it the
 * runners are told of it at the commit. */
int evs__pg_exec_add(evs_store *s, const char *id, size_t id_len,
                     const evs_snapshot *snap, const evs_event *ev, size_t n,
                     unsigned flags, const char *owner, int64_t *rid,
                     uint64_t *bytes)
{
    pg_store *q = evs__pg(s);
    char *buf, *sbuf, *arr = NULL;
    size_t len, slen, acap = 0, alen = 0, blen = 0;
    evs_snapshot sn;
    pg_params p = {0};
    PGresult *r = NULL;
    pg_conn *db;
    int rc;

    /* Everything encoded before the statement: a bad event or snapshot
     * leaves nothing behind. */
    if ((rc = evs__create_encode(s, id, id_len, snap, ev, n, &sn, &buf, &len,
                                 &sbuf, &slen)) != 0)
        return rc;
    rc = evs__pg_line_arrays(s, buf, len, n, 0, &arr, &acap, &alen, &blen);
    if (rc == 0) {
        evs__pg_bytes(&p, id, id_len);
        evs__pg_snapshot_params(&p, &sn, sbuf, slen);
        evs__pg_i64(&p, (int64_t)n);
        evs__pg_i64(&p, (int64_t)len);
        evs__pg_bytes(&p, arr, alen);
        evs__pg_bytes(&p, arr + alen, blen);
        evs__pg_bool(&p, n > 0 && evs__is_run_start(&ev[0], NULL, 0));
        evs__pg_bool(&p, (flags & EVS_CREATE_OWNED) != 0);
        evs__pg_i64(&p, q->lease_us);
        evs__pg_bytes(&p, q->chan, strlen(q->chan));
        evs__pg_bytes(&p, owner, owner ? strlen(owner) : 0);
        db = evs__pg_get(s);
        r = evs__pg_run(db, PG_EXEC_ADD, &p, PG_SYNC_META(s),
                        "creating an execution", &rc);
        evs__pg_put(db);
    }
    if (r && PQntuples(r) == 1) {
        if (rid)
            *rid = evs__pg_col_i64(r, 0, 0);
        if (bytes)
            *bytes = len;
    } else if (r) {
        rc = -EIO; /* an insert that made no row */
    }
    PQclear(r);
    evs__free(s->alloc, arr);
    evs__free(s->alloc, buf);
    evs__free(s->alloc, sbuf);
    return rc;
}

static int pg_exec_create(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, const evs_event *ev,
                          size_t n, unsigned flags)
{
    return evs__pg_exec_add(s, id, id_len, snap, ev, n, flags, NULL, NULL,
                            NULL);
}

static int pg_exec_exists(evs_store *s, const char *id, size_t id_len)
{
    pg_conn *db = evs__pg_get(s);
    int rc = evs__pg_exec_get(db, id, id_len, NULL, NULL, NULL, NULL);

    evs__pg_put(db);
    return rc == 0;
}

const evs_backend_ops evs__pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec_create = pg_exec_create,
    .exec_create_open = evs__pg_exec_create_open,
    .exec_exists = pg_exec_exists,
    .exec_delete = evs__pg_exec_delete,
    .exec_list = evs__pg_exec_list,
    .exec_cleanup = evs__pg_exec_cleanup,
    .snapshot_save = evs__pg_snapshot_save,
    .snapshot_load = evs__pg_snapshot_load,
    .log_open = evs__pg_log_open,
    .log_close = evs__pg_log_close,
    .log_append = evs__pg_log_append,
    .log_append_snap = evs__pg_log_append_snap,
    .log_release = evs__pg_log_release,
    .log_sync = evs__pg_log_sync,
    .log_refresh = evs__pg_log_refresh,
    .log_renew = evs__pg_log_renew,
    .log_scan = evs__pg_log_scan,
    .cursor_open = evs__pg_cursor_open,
    .cursor_next = evs__dbc_next,
    .cursor_offset = evs__dbc_offset,
    .cursor_close = evs__dbc_close,
    .request_post = evs__pg_request_post,
    .request_list = evs__pg_request_list,
    .request_remove = evs__pg_request_remove,
    .request_dir = evs__db_request_dir,
    .request_stamp = evs__pg_request_stamp,
    .exec_trash = evs__pg_exec_trash,
    .trash_commit = evs__pg_trash_commit,
    .settings_load = evs__pg_settings_load,
    .settings_save = evs__pg_settings_save,
    .exec_usage = evs__pg_exec_usage,
    .archived_count = evs__db_archived_count,
    .log_claim = evs__pg_log_claim,
    .watch_open = evs__pg_watch_open,
    .watch_read = evs__pg_watch_read,
    .watch_close = evs__pg_watch_close,
    .sched_create = evs__pg_sched_create,
    .sched_open = evs__pg_sched_open,
    .sched_read = evs__pg_sched_read,
    .sched_write = evs__pg_sched_write,
    .sched_remove = evs__pg_sched_remove,
    .sched_close = evs__pg_sched_close,
    .sched_list = evs__pg_sched_list,
};
