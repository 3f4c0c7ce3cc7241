/*
 * peer_pg.c: the raw libpq peer, set up as evstore's PostgreSQL backend
 * uses the server (eventstore/BACKENDS.md) so that the comparison is of
 * the backend's own work: statements prepared once, parameters and
 * results in binary, one statement per transaction, an append of many
 * lines as one INSERT from an unnest of arrays, and synchronous_commit
 * on for what is durable and off for what is not. What it does not do
 * is the backend's bookkeeping (the execution's row, its lease and its
 * end), which is the cost the ratios show.
 */
#include "evbench.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The element type of the binary arrays (pg_type.oid of bytea). */
#define OID_BYTEA 17

int pq_exec(bench_ctx *c, PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        bench_fail(c, "PostgreSQL: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    return ok ? 0 : -1;
}

int pq_open(bench_ctx *c, const char *loc, int sync, PGconn **out)
{
    PGconn *db = PQconnectdb(loc);

    *out = NULL;
    if (!db || PQstatus(db) != CONNECTION_OK) {
        bench_fail(c, "PostgreSQL: cannot connect: %s",
                   db ? PQerrorMessage(db) : "out of memory");
        PQfinish(db);
        return -1;
    }
    PQsetNoticeProcessor(db, NULL, NULL);
    if (pq_exec(c, db,
                sync ? "SET synchronous_commit = on"
                     : "SET synchronous_commit = off") != 0) {
        PQfinish(db);
        return -1;
    }
    *out = db;
    return 0;
}

int pq_prepare(bench_ctx *c, PGconn *db, const char *name, const char *sql)
{
    PGresult *r = PQprepare(db, name, sql, 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        bench_fail(c, "PostgreSQL: preparing %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Binary parameters                                                  */
/* ------------------------------------------------------------------ */

void pq_params_reset(pq_params *p)
{
    p->n = 0;
    p->used = 0;
}

void pq_params_free(pq_params *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

/* Room for `len` more bytes; the buffer may move (pq_params_done points
 * into it once it is whole). */
static int room(pq_params *p, size_t len)
{
    if (p->used + len > p->cap) {
        size_t nc = p->cap ? p->cap : 4096;
        char *nb;

        while (nc < p->used + len)
            nc *= 2;
        if (!(nb = realloc(p->buf, nc)))
            return -ENOMEM;
        p->buf = nb;
        p->cap = nc;
    }
    return 0;
}

static void put(pq_params *p, const void *b, size_t len)
{
    if (len)
        memcpy(p->buf + p->used, b, len);
    p->used += len;
}

static void put_i32(pq_params *p, int32_t v)
{
    uint32_t be = htobe32((uint32_t)v);

    put(p, &be, 4);
}

static void put_i64(pq_params *p, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);

    put(p, &be, 8);
}

/* Opens parameter n: it starts at the buffer's end. */
static int begin(pq_params *p, size_t need)
{
    if (p->n == (int)(sizeof(p->val) / sizeof(p->val[0])) || room(p, need) != 0)
        return -ENOMEM;
    p->off[p->n] = p->used;
    p->fmt[p->n] = 1;
    return 0;
}

static void end(pq_params *p)
{
    p->len[p->n] = (int)(p->used - p->off[p->n]);
    p->n++;
}

int pq_param_i64(pq_params *p, int64_t v)
{
    if (begin(p, 8) != 0)
        return -ENOMEM;
    put_i64(p, v);
    end(p);
    return 0;
}

int pq_param_bytes(pq_params *p, const void *b, size_t len)
{
    if (begin(p, len) != 0)
        return -ENOMEM;
    put(p, b, len);
    end(p);
    return 0;
}

/* A one-dimensional array's header in the binary format: dimensions,
 * no nulls, the element type, then the length and lower bound (1). */
static void array_head(pq_params *p, uint32_t elem, size_t n)
{
    put_i32(p, 1);
    put_i32(p, 0);
    put_i32(p, (int32_t)elem);
    put_i32(p, (int32_t)n);
    put_i32(p, 1);
}

int pq_param_bytea_array(pq_params *p, const char *base, const size_t *off,
                         const size_t *len, size_t n)
{
    size_t need = 20;

    for (size_t i = 0; i < n; i++)
        need += 4 + len[i];
    if (begin(p, need) != 0)
        return -ENOMEM;
    array_head(p, OID_BYTEA, n);
    for (size_t i = 0; i < n; i++) {
        put_i32(p, (int32_t)len[i]);
        put(p, base + off[i], len[i]);
    }
    end(p);
    return 0;
}

void pq_params_done(pq_params *p)
{
    for (int i = 0; i < p->n; i++)
        p->val[i] = p->buf + p->off[i];
}

PGresult *pq_run(bench_ctx *c, PGconn *db, const char *name, const pq_params *p)
{
    PGresult *r = PQexecPrepared(db, name, p ? p->n : 0, p ? p->val : NULL,
                                 p ? p->len : NULL, p ? p->fmt : NULL, 1);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        bench_fail(c, "PostgreSQL: %s: %s", name, PQerrorMessage(db));
        PQclear(r);
        return NULL;
    }
    return r;
}

uint64_t pq_read_rows(const PGresult *r, uint64_t *bytes)
{
    int rows = PQntuples(r), cols = PQnfields(r);
    uint64_t b = 0;

    for (int i = 0; i < rows; i++)
        for (int k = 0; k < cols; k++) {
            const char *v = PQgetvalue(r, i, k);
            int len = PQgetlength(r, i, k);

            /* Touch the value, as a reader decoding it would. */
            b += (uint64_t)len + (len ? (unsigned char)v[len - 1] & 1 : 0);
        }
    if (bytes)
        *bytes = b;
    return (uint64_t)rows;
}

/* ------------------------------------------------------------------ */
/* P1 and P2: appends                                                 */
/* ------------------------------------------------------------------ */

static const char events_sql[] =
    "SET client_min_messages = warning;"
    " CREATE TABLE IF NOT EXISTS pq_events(id bigint NOT NULL,"
    " seq bigint NOT NULL, line bytea NOT NULL, PRIMARY KEY(id, seq))";

int pq_append(bench_ctx *c, const char *loc, bench_append_job *j,
              int64_t exec_no)
{
    bench_workload *w = j->w;
    pq_params p = {0};
    PGconn *db = NULL;
    PGresult *r;
    uint64_t t0, t1, start;
    char sql[64];
    int rc = -1;

    if (pq_open(c, loc, j->sync, &db) != 0)
        return -1;
    if (pq_exec(c, db, events_sql) != 0 ||
        pq_prepare(c, db, "ins1",
                   "INSERT INTO pq_events(id, seq, line)"
                   " VALUES($1::int8, $2::int8, $3::bytea)") != 0 ||
        pq_prepare(c, db, "insn",
                   "INSERT INTO pq_events(id, seq, line)"
                   " SELECT $1::int8, $2::int8 + o.n, o.line"
                   " FROM unnest($3::bytea[]) WITH ORDINALITY"
                   " AS o(line, n)") != 0)
        goto out;
    start = bench_now_ns();
    for (size_t i = 0, k = 0; i < w->n; i += j->batch, k++) {
        size_t cnt = w->n - i < j->batch ? w->n - i : j->batch;
        int err;

        /* The parameters are built inside the timed call, as the
         * backend builds its own. */
        t0 = bench_now_ns();
        pq_params_reset(&p);
        err = pq_param_i64(&p, exec_no);
        if (cnt == 1)
            err = err ? err : pq_param_i64(&p, (int64_t)i + 1);
        else
            err = err ? err : pq_param_i64(&p, (int64_t)i);
        if (err == 0 && cnt == 1)
            err = pq_param_bytes(&p, w->lines + w->line_off[i], w->line_len[i]);
        else if (err == 0)
            err = pq_param_bytea_array(&p, w->lines, w->line_off + i,
                                       w->line_len + i, cnt);
        if (err != 0) {
            bench_fail(c, "out of memory");
            goto out;
        }
        pq_params_done(&p);
        r = pq_run(c, db, cnt == 1 ? "ins1" : "insn", &p);
        t1 = bench_now_ns();
        if (!r)
            goto out;
        if (strtoull(PQcmdTuples(r), NULL, 10) != cnt) {
            bench_fail(c, "PostgreSQL: inserted %s lines, not %zu",
                       PQcmdTuples(r), cnt);
            PQclear(r);
            goto out;
        }
        PQclear(r);
        if (j->lat)
            j->lat[k] = (double)(t1 - t0) / 1e3;
    }
    j->secs = (double)(bench_now_ns() - start) / 1e9;
    rc = 0;
out:
    /* As evstore deletes its execution after each repetition. */
    snprintf(sql, sizeof(sql), "DELETE FROM pq_events WHERE id = %lld",
             (long long)exec_no);
    if (db && PQstatus(db) == CONNECTION_OK && pq_exec(c, db, sql) != 0)
        rc = -1;
    pq_params_free(&p);
    PQfinish(db);
    return rc;
}
