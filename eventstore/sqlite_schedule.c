/*
 * sqlite_schedule.c: the SQLite backend's schedules (BACKENDS.md,
 * "Schedules"): each schedule's framed, checksummed line (SCHEDULES.md
 * §7, made and checked by schedule_api.c) in a row of the `schedules`
 * table, and its lock an OFD lock on one byte of the PATH-evslock file
 * that the executions' writers lock, at an offset of its own.
 *
 * Schedules are few and looked at every few seconds, so their statements
 * are prepared at each use rather than kept.
 */
#include "sqlite_int.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/*
 * A schedule's lock byte: 2^62 plus 61 bits of the XXH3-64 of its name.
 * The executions' bytes are their rids, counted from 1 and never near
 * 2^62, so the two never meet. The byte belongs to the name, as the file
 * backend's <name>.lock does: a schedule deleted and added again has the
 * same lock. Two names whose hashes agree would share a lock, which makes
 * a look wait or pass (EVS_ELOCKED), never two changes at once.
 */
#define SCHED_LOCK_BASE ((int64_t)1 << 62)

static int64_t lock_byte(const char *name)
{
    return SCHED_LOCK_BASE + (int64_t)(evs_checksum(name, strlen(name)) >> 3);
}

/* Prepares sql with ?1 the schedule's name; NULL with the error logged. */
static sqlite3_stmt *prep(evs_store *s, const char *sql, const char *name)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(evs__sq(s)->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        evs__sq_err(s, rc, sql);
        sqlite3_finalize(st);
        return NULL;
    }
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return st;
}

/* Runs a change (?1 name, ?2 line, ?3 updated_at) in one transaction,
 * synced unless EVS_SYNC_NONE, as the file's replacement is. Returns 0,
 * -ENOENT when it changed no row, -EEXIST (the name is taken) or an
 * error. */
static int change(evs_store *s, const char *sql, const char *name,
                  const char *line, size_t len, int64_t updated_us,
                  const char *what)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    int rc;

    pthread_mutex_lock(&q->mu);
    if ((rc = evs__sq_begin(s, SQ_SYNC_META(s))) == 0) {
        if (!(st = prep(s, sql, name))) {
            rc = -EIO;
        } else {
            if (line)
                sqlite3_bind_blob(st, 2, line, (int)len, SQLITE_STATIC);
            if (sqlite3_bind_parameter_count(st) >= 3)
                sqlite3_bind_int64(st, 3, updated_us);
            rc = evs__sq_done(s, st, what);
            sqlite3_finalize(st);
        }
        if (rc == 0 && sqlite3_changes(q->db) == 0)
            rc = -ENOENT;
        rc = evs__sq_end(s, rc);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int evs__sq_sched_create(evs_store *s, const char *name, const char *line,
                         size_t len, int64_t updated_us)
{
    /* The primary key refuses a name taken: -EEXIST. */
    return change(s,
                  "INSERT INTO schedules(name, body, updated_at)"
                  " VALUES(?1, ?2, ?3)",
                  name, line, len, updated_us, "adding a schedule");
}

int evs__sq_sched_open(evs_schedule *h, unsigned flags)
{
    int rc;

    if (!(flags & EVS_SCHEDULE_LOCK))
        return 0;
    rc = evs__sq_lock(h->s, lock_byte(h->name), flags & EVS_SCHEDULE_WAIT,
                      &h->lockfd);
    h->locked = rc == 0;
    return rc;
}

int evs__sq_sched_read(evs_schedule *h, char **out, size_t *len)
{
    evs_store *s = h->s;
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    const void *p;
    size_t n;
    int rc;

    pthread_mutex_lock(&q->mu);
    st = prep(s, "SELECT body FROM schedules WHERE name = ?1", h->name);
    if (!st) {
        rc = -EIO;
    } else if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        p = sqlite3_column_blob(st, 0);
        n = (size_t)sqlite3_column_bytes(st, 0);
        rc = n > EVS__SCHED_MAX ? EVS_ECORRUPT : 0;
        if (rc == 0 && !(*out = evs__malloc(s->alloc, n ? n : 1)))
            rc = -ENOMEM;
        if (rc == 0) {
            if (n)
                memcpy(*out, p, n);
            *len = n;
        }
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT
                               : evs__sq_err(s, rc, "reading a schedule");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int evs__sq_sched_write(evs_schedule *h, const char *line, size_t len,
                        int64_t updated_us)
{
    return change(h->s,
                  "UPDATE schedules SET body = ?2, updated_at = ?3"
                  " WHERE name = ?1",
                  h->name, line, len, updated_us, "saving a schedule");
}

int evs__sq_sched_remove(evs_schedule *h)
{
    return change(h->s, "DELETE FROM schedules WHERE name = ?1", h->name, NULL,
                  0, 0, "deleting a schedule");
}

void evs__sq_sched_close(evs_schedule *h)
{
    if (h->lockfd >= 0)
        close(h->lockfd);
    h->lockfd = -1;
    h->locked = 0;
}

int evs__sq_sched_list(evs_store *s,
                       int (*fn)(void *arg, const char *name, size_t len),
                       void *arg)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    int rc = 0, src = SQLITE_DONE;

    pthread_mutex_lock(&q->mu);
    if (!(st = prep(s, "SELECT name FROM schedules", NULL))) {
        rc = -EIO;
    } else {
        while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
            rc = fn(arg, (const char *)sqlite3_column_text(st, 0),
                    (size_t)sqlite3_column_bytes(st, 0));
        if (rc == 0 && src != SQLITE_DONE)
            rc = evs__sq_err(s, src, "listing the schedules");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->mu);
    return rc;
}
