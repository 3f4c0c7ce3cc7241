/*
 * pg_lease.c: the PostgreSQL backend's claims (BACKENDS.md, "Leases and
 * fencing"): a writer's lease with its fencing token, claimed, waited
 * for and given up, and the deletes (exec_delete, gc's trash, cleanup)
 * that claim an execution's lease as a writer does before removing its
 * rows.
 */
#include "pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

/* evs__pg_claim's own: a lease that ran out as it was looked at. */
#define CLAIM_AGAIN 1

int evs__pg_claim(evs_store *s, const char *id, size_t id_len, int wait,
                  int64_t *rid, int64_t *fence, uint64_t *last_seq,
                  uint64_t *bytes, int64_t *held_ms)
{
    pg_store *q = evs__pg(s);
    char owner[EVS_UUID_LEN + 1];
    pg_params p;
    PGresult *r;
    pg_conn *db;
    int rc, tries = 0;

    /* Each claim its own owner: the token orders them, the owner names
     * the holder for an operator. */
    if ((rc = evs_uuid7(owner)) != 0)
        return rc;
    for (;;) {
        memset(&p, 0, sizeof(p));
        evs__pg_bytes(&p, id, id_len);
        evs__pg_bytes(&p, owner, EVS_UUID_LEN);
        evs__pg_i64(&p, q->lease_us);
        db = evs__pg_get(s);
        r = evs__pg_run(db, PG_CLAIM, &p, 1, "claiming a lease", &rc);
        if (r && PQntuples(r) == 1) {
            *rid = evs__pg_col_i64(r, 0, 0);
            *fence = evs__pg_col_i64(r, 0, 1);
            *last_seq = (uint64_t)evs__pg_col_i64(r, 0, 2);
            *bytes = (uint64_t)evs__pg_col_i64(r, 0, 3);
        } else if (r) {
            /* Not claimed: missing, or someone else's lease holds. */
            PQclear(r);
            memset(&p, 0, sizeof(p));
            evs__pg_bytes(&p, id, id_len);
            r = evs__pg_run(db, PG_HOLDER, &p, -1, "reading a lease", &rc);
            if (r && PQntuples(r) == 1) {
                int64_t left = evs__pg_col_i64(r, 0, 1);
                /* Ran out between the claim and this look: try again. */
                rc = left < 0 && tries++ < 3 ? CLAIM_AGAIN : EVS_ELOCKED;
                if (held_ms)
                    *held_ms = left > 0 ? (left + 999) / 1000 : 0;
            } else if (r) {
                rc = -ENOENT;
            }
        }
        PQclear(r);
        evs__pg_put(db);
        if (rc == CLAIM_AGAIN)
            continue;
        if (rc != EVS_ELOCKED || !wait)
            return rc;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
}

void evs__pg_release(evs_store *s, int64_t rid, int64_t fence)
{
    pg_store *q = evs__pg(s);
    pg_params p = {0};
    pg_conn *db;

    evs__pg_i64(&p, rid);
    evs__pg_i64(&p, fence);
    evs__pg_bytes(&p, q->chan, strlen(q->chan));
    db = evs__pg_get(s);
    (void)evs__pg_do(db, PG_RELEASE, &p, -1, "releasing a lease", NULL);
    evs__pg_put(db);
}

/* ------------------------------------------------------------------ */
/* Deletes                                                            */
/* ------------------------------------------------------------------ */

/*
 * The first half of a delete: claims execution `name`'s lease (refused
 * with EVS_ELOCKED while a writer's holds), so no writer appends until
 * trash_commit deletes its rows, fenced by the claim's token.
 */
int evs__pg_exec_trash(evs_store *s, const char *name, uint64_t expect_seq,
                       evs__trashed *t)
{
    uint64_t last = 0, bytes = 0;
    int rc;

    t->lock_fd = -1;
    t->dir_fd = -1;
    t->row = 0;
    t->token = 0;
    t->name[0] = '\0';
    rc = evs__pg_claim(s, name, strlen(name), 0, &t->row, &t->token, &last,
                       &bytes, NULL);
    if (rc != 0)
        return rc;
    if (expect_seq != UINT64_MAX && last != expect_seq) {
        evs__pg_release(s, t->row, t->token);
        return EVS_ESTALE;
    }
    snprintf(t->name, sizeof(t->name), "%s", name);
    return 0;
}

int evs__pg_trash_commit(evs_store *s, evs__trashed *t, size_t n)
{
    pg_store *q = evs__pg(s);
    pg_conn *db;
    int rc;

    if (n == 0)
        return 0;
    db = evs__pg_get(s);
    rc = evs__pg_begin(db, 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        pg_params p = {0};
        uint64_t gone = 0;
        evs__pg_i64(&p, t[i].row);
        evs__pg_i64(&p, t[i].token);
        rc = evs__pg_do(db, PG_EXEC_DEL, &p, -1, "deleting an execution",
                        &gone);
        /* The fence matched no row: another writer claimed the
         * execution after this delete's claim ran out. Nothing of the
         * batch is deleted, and the caller is told. */
        if (rc == 0 && gone != 1) {
            rc = EVS_ELEASE;
            evs__logf(s, EVS_LOG_WARN,
                      EVS_LOG_FIELDS(.execution = t[i].name, .err = rc),
                      "store %s: not deleted: another writer claimed %s "
                      "after this delete's claim ran out",
                      q->where, t[i].name);
        }
    }
    rc = evs__pg_end(db, rc);
    evs__pg_put(db);
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            evs__pg_release(s, t[i].row, t[i].token);
    return rc;
}

int evs__pg_exec_delete(evs_store *s, const char *id, size_t id_len)
{
    char name[EVS_ID_MAX + 1];
    evs__trashed t;
    int rc;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    if ((rc = evs__pg_exec_trash(s, name, UINT64_MAX, &t)) != 0)
        return rc;
    return evs__pg_trash_commit(s, &t, 1);
}

/* Deletes finished executions last updated before the cutoff, each
 * under a claim of its lease (skipped while a writer's holds). */
int evs__pg_exec_cleanup(evs_store *s, int64_t older_than_us, size_t *deleted)
{
    evs__trashed *t = NULL;
    size_t n = 0, cap = 0;
    pg_params p = {0};
    PGresult *r;
    pg_conn *db;
    int rc = 0;

    *deleted = 0;
    evs__pg_i64(&p, older_than_us);
    db = evs__pg_get(s);
    r = evs__pg_run(db, PG_FINAL_LIST, &p, -1, "listing finished executions",
                    &rc);
    for (int i = 0; r && i < PQntuples(r); i++) {
        size_t il;
        const char *id = evs__pg_col(r, i, 1, &il);
        if ((rc = EVS__GROW(s->alloc, &t, &cap, n + 1)) != 0)
            break;
        t[n].row = evs__pg_col_i64(r, i, 0);
        snprintf(t[n].name, sizeof(t[n].name), "%.*s", (int)il, id);
        n++;
    }
    PQclear(r);
    evs__pg_put(db);
    for (size_t i = 0; i < n && rc == 0; i++) {
        evs__trashed one;
        int e = evs__pg_exec_trash(s, t[i].name, UINT64_MAX, &one);
        if (e == EVS_ELOCKED || e == -ENOENT)
            continue; /* a writer has it, or it went meanwhile */
        if (e == 0 && one.row != t[i].row) {
            evs__pg_release(s, one.row, one.token);
            continue; /* another execution of that name */
        }
        if (e == 0)
            e = evs__pg_trash_commit(s, &one, 1);
        if (e == 0)
            (*deleted)++;
        else
            rc = e;
    }
    evs__free(s->alloc, t);
    return rc;
}
