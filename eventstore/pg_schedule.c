/*
 * pg_schedule.c: the PostgreSQL backend's schedules (BACKENDS.md,
 * "Schedules"): each schedule's framed, checksummed line (SCHEDULES.md
 * §7, made and checked by schedule_api.c) in a row of the `schedules`
 * table, and its lock a lease with a fencing token, as a writer's on an
 * execution (pg_lease.c): claimed by one statement, renewed by every
 * save, and every save or delete refused unless the token is still the
 * holder's and its lease has not run out.
 *
 * A lease rather than a session's advisory lock: the store's one
 * connection is shared by its threads (two handles of one process would
 * both get a session lock, which is re-entrant) and is made again after
 * an error, which drops session locks without telling the holder; a
 * lease lives in the table, so a new connection keeps it and a holder
 * that lost it learns so at its next write (EVS_ELEASE).
 */
#include "pg_int.h"

#include <errno.h>
#include <time.h>

static const char *const sched_sql[PG_NSTMT - PG_SCHED0] = {
    [PG_SCHED_ADD - PG_SCHED0] = "INSERT INTO schedules(name, body, updated_at)"
                                 " VALUES($1::text, $2::bytea, $3::int8)",
    [PG_SCHED_GET - PG_SCHED0] =
        "SELECT body FROM schedules WHERE name = $1::text",
    [PG_SCHED_CLAIM - PG_SCHED0] =
        "UPDATE schedules SET owner = $2::text, fence = fence + 1,"
        " lease_until = " PG_NOW_US " + $3::int8"
        " WHERE name = $1::text AND (owner IS NULL OR"
        " lease_until < " PG_NOW_US ") RETURNING fence",
    /* Only while the claim holds; renews it. */
    [PG_SCHED_PUT - PG_SCHED0] =
        "UPDATE schedules SET body = $3::bytea, updated_at = $4::int8,"
        " lease_until = " PG_NOW_US " + $5::int8"
        " WHERE name = $1::text AND fence = $2::int8"
        " AND lease_until >= " PG_NOW_US,
    [PG_SCHED_DEL - PG_SCHED0] =
        "DELETE FROM schedules WHERE name = $1::text AND fence = $2::int8"
        " AND lease_until >= " PG_NOW_US,
    [PG_SCHED_RELEASE - PG_SCHED0] =
        "UPDATE schedules SET owner = NULL, lease_until = 0"
        " WHERE name = $1::text AND fence = $2::int8",
    [PG_SCHED_LIST - PG_SCHED0] = "SELECT name FROM schedules",
};

const char *evs__pg_sched_sql(int which)
{
    return sched_sql[which - PG_SCHED0];
}

int evs__pg_sched_create(evs_store *s, const char *name, const char *line,
                         size_t len, int64_t updated_us)
{
    pg_params p = {0};
    pg_conn *db;
    int rc;

    evs__pg_bytes(&p, name, strlen(name));
    evs__pg_bytes(&p, line, len);
    evs__pg_i64(&p, updated_us);
    db = evs__pg_get(s);
    /* The primary key refuses a name taken: -EEXIST. */
    rc = evs__pg_do(db, PG_SCHED_ADD, &p, PG_SYNC_META(s), "adding a schedule",
                    NULL);
    evs__pg_put(db);
    return rc;
}

/* Whether schedule `name` has a row: 0, -ENOENT or an error. */
static int sched_exists(pg_conn *db, const char *name)
{
    pg_params p = {0};
    PGresult *r;
    int rc;

    evs__pg_bytes(&p, name, strlen(name));
    r = evs__pg_run(db, PG_SCHED_GET, &p, -1, "reading a schedule", &rc);
    if (r && PQntuples(r) != 1)
        rc = -ENOENT;
    PQclear(r);
    return rc;
}

int evs__pg_sched_open(evs_schedule *h, unsigned flags)
{
    evs_store *s = h->s;
    pg_store *q = evs__pg(s);
    char owner[EVS_UUID_LEN + 1];
    pg_params p;
    PGresult *r;
    pg_conn *db;
    int rc;

    if (!(flags & EVS_SCHEDULE_LOCK))
        return 0;
    if ((rc = evs_uuid7(owner)) != 0)
        return rc;
    for (;;) {
        memset(&p, 0, sizeof(p));
        evs__pg_bytes(&p, h->name, strlen(h->name));
        evs__pg_bytes(&p, owner, EVS_UUID_LEN);
        evs__pg_i64(&p, q->lease_us);
        db = evs__pg_get(s);
        r = evs__pg_run(db, PG_SCHED_CLAIM, &p, 1, "claiming a schedule", &rc);
        if (r && PQntuples(r) == 1)
            h->fence = evs__pg_col_i64(r, 0, 0);
        else if (r && (rc = sched_exists(db, h->name)) == 0)
            rc = EVS_ELOCKED; /* another's lease holds */
        PQclear(r);
        evs__pg_put(db);
        if (rc != EVS_ELOCKED || !(flags & EVS_SCHEDULE_WAIT))
            break;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    h->locked = rc == 0;
    return rc;
}

int evs__pg_sched_read(evs_schedule *h, char **out, size_t *len)
{
    evs_store *s = h->s;
    pg_params p = {0};
    const char *b;
    PGresult *r;
    pg_conn *db;
    size_t n;
    int rc;

    evs__pg_bytes(&p, h->name, strlen(h->name));
    db = evs__pg_get(s);
    r = evs__pg_run(db, PG_SCHED_GET, &p, -1, "reading a schedule", &rc);
    if (r && PQntuples(r) != 1) {
        rc = -ENOENT;
    } else if (r) {
        b = evs__pg_col(r, 0, 0, &n);
        rc = n > EVS__SCHED_MAX ? EVS_ECORRUPT : 0;
        if (rc == 0 && !(*out = evs__malloc(s->alloc, n ? n : 1)))
            rc = -ENOMEM;
        if (rc == 0) {
            memcpy(*out, b, n);
            *len = n;
        }
    }
    PQclear(r);
    evs__pg_put(db);
    return rc;
}

/* A fenced change that changed nothing: the row is gone (-ENOENT), or
 * the lease ran out or another holder claimed it (EVS_ELEASE, logged). */
static int fenced_miss(pg_conn *db, evs_schedule *h)
{
    int rc = sched_exists(db, h->name);

    if (rc != 0)
        return rc;
    evs__logf(h->s, EVS_LOG_WARN, EVS_LOG_FIELDS(.err = EVS_ELEASE),
              "schedule %s: this handle's lease ran out or another claimed "
              "it; nothing written",
              h->name);
    return EVS_ELEASE;
}

/* A change fenced by the holder's token: PG_SCHED_PUT with line
 * (renewing the lease), or PG_SCHED_DEL when line is NULL. */
static int fenced(evs_schedule *h, int which, const char *line, size_t len,
                  int64_t updated_us, const char *what)
{
    evs_store *s = h->s;
    pg_store *q = evs__pg(s);
    pg_params p = {0};
    uint64_t n = 0;
    pg_conn *db;
    int rc;

    evs__pg_bytes(&p, h->name, strlen(h->name));
    evs__pg_i64(&p, h->fence);
    if (line) {
        evs__pg_bytes(&p, line, len);
        evs__pg_i64(&p, updated_us);
        evs__pg_i64(&p, q->lease_us);
    }
    db = evs__pg_get(s);
    rc = evs__pg_do(db, which, &p, PG_SYNC_META(s), what, &n);
    if (rc == 0 && n == 0)
        rc = fenced_miss(db, h);
    evs__pg_put(db);
    return rc;
}

int evs__pg_sched_write(evs_schedule *h, const char *line, size_t len,
                        int64_t updated_us)
{
    return fenced(h, PG_SCHED_PUT, line, len, updated_us, "saving a schedule");
}

int evs__pg_sched_remove(evs_schedule *h)
{
    return fenced(h, PG_SCHED_DEL, NULL, 0, 0, "deleting a schedule");
}

void evs__pg_sched_close(evs_schedule *h)
{
    pg_params p = {0};
    pg_conn *db;

    if (h->locked) {
        /* The next holder need not wait for the lease to run out. */
        evs__pg_bytes(&p, h->name, strlen(h->name));
        evs__pg_i64(&p, h->fence);
        db = evs__pg_get(h->s);
        (void)evs__pg_do(db, PG_SCHED_RELEASE, &p, 0, "releasing a schedule",
                         NULL);
        evs__pg_put(db);
    }
    h->locked = 0;
    h->fence = 0;
}

int evs__pg_sched_list(evs_store *s,
                       int (*fn)(void *arg, const char *name, size_t len),
                       void *arg)
{
    pg_conn *db = evs__pg_get(s);
    PGresult *r;
    size_t n;
    int rc;

    r = evs__pg_run(db, PG_SCHED_LIST, NULL, -1, "listing the schedules", &rc);
    evs__pg_put(db); /* fn may use the store */
    for (int i = 0; r && rc == 0 && i < PQntuples(r); i++) {
        const char *name = evs__pg_col(r, i, 0, &n);
        rc = fn(arg, name, n);
    }
    PQclear(r);
    return rc;
}
