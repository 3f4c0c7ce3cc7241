/*
 * pg_log.c: the PostgreSQL backend's logs: opening (a writer claims the
 * execution's lease, with a new fencing token, and checks the log's last
 * line), appends (one statement each that checks the claim still holds,
 * at the synchronous_commit the durability mode asks), lease renewals,
 * syncs, cursors and scans (db_rows.c checks every line read back).
 */
#include "pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads the rows of execution rid from sequence `from` to `to`, at most
 * a chunk's worth, into r (replacing what it held). */
static int fetch(evs_store *s, int64_t rid, uint64_t from, uint64_t to,
                 evs__rows *r)
{
    pg_params p = {0};
    PGresult *res;
    pg_conn *db;
    int rc;

    r->n = r->i = 0;
    r->used = 0;
    evs__pg_i64(&p, rid);
    evs__pg_i64(&p, (int64_t)from);
    evs__pg_i64(&p, to > INT64_MAX ? INT64_MAX : (int64_t)to);
    evs__pg_i64(&p, EVS__CHUNK_ROWS);
    db = evs__pg_get(s);
    res = evs__pg_run(db, PG_EVENTS_GET, &p, -1, "reading events", &rc);
    for (int i = 0; res && i < PQntuples(res) && r->used < EVS__CHUNK_BYTES;
         i++) {
        size_t len;
        const char *line = evs__pg_col(res, i, 2, &len);

        rc = evs__rows_push(s, r, (uint64_t)evs__pg_col_i64(res, i, 0),
                            (uint64_t)evs__pg_col_i64(res, i, 1), line, len);
        if (rc != 0)
            break;
    }
    PQclear(res);
    evs__pg_put(db);
    return rc;
}

int evs__pg_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                        evs_cursor **out, evs_error_info *info)
{
    return evs__dbc_open(l, ((pg_log *)l)->rid, fetch, from, to, out, info);
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                */
/* ------------------------------------------------------------------ */

static void free_log(evs_store *s, pg_log *pl)
{
    evs__free(s->alloc, pl->wbuf);
    evs__free(s->alloc, pl->abuf);
    pthread_mutex_destroy(&pl->base.mu);
    evs__free(s->alloc, pl);
}

static pg_log *log_new(evs_store *s, unsigned flags)
{
    pg_log *pl = evs__calloc(s->alloc, sizeof(*pl));

    if (!pl)
        return NULL;
    pl->base.ops = s->ops;
    pl->base.store = s;
    pl->base.flags = flags;
    pthread_mutex_init(&pl->base.mu, NULL);
    return pl;
}

static void log_name(pg_log *pl, const char *id, size_t id_len)
{
    memcpy(pl->base.id, id, id_len);
    pl->base.id[id_len] = '\0';
    pl->base.id_len = id_len;
}

/* The rest of an open, after the claim or the look-up (rc): a writer
 * checks the log's last line ends it. Frees pl on failure. */
static int log_opened(evs_store *s, pg_log *pl, int rc, evs_log **out,
                      evs_recovery_info *rec, evs_error_info *info)
{
    int wr = (pl->base.flags & EVS_LOG_WRITE) != 0;

    if (rc == 0 && wr &&
        (rc = evs__dbc_check_end(&pl->base, pl->rid, fetch, info)) != 0 &&
        info && info->code == 0)
        evs__error_set(info, rc, "sequence",
                       "%s: the log's last event (sequence %llu) does not "
                       "end it at byte %llu",
                       pl->base.id, (unsigned long long)pl->base.last_seq,
                       (unsigned long long)pl->base.end);
    if (rc != 0) {
        if (wr && pl->fence)
            evs__pg_release(s, pl->rid, pl->fence);
        if (info && info->code == 0)
            evs__error_set(info, rc, "", "opening the log of %s: %s",
                           pl->base.id, evs_strerror(rc));
        free_log(s, pl);
        return rc;
    }
    evs__db_sync_open(&pl->sy, &pl->base);
    if (rec) {
        rec->last_seq = pl->base.last_seq;
        rec->end_offset = pl->base.end;
        rec->bad_offset = UINT64_MAX;
        rec->bad_kind = "";
    }
    *out = &pl->base;
    return 0;
}

/* The row and the log's end of execution id. */
static int lookup(evs_store *s, const char *id, size_t id_len, int64_t *rid,
                  uint64_t *last, uint64_t *end)
{
    pg_conn *db = evs__pg_get(s);
    int rc = evs__pg_exec_get(db, id, id_len, rid, last, end, NULL);

    evs__pg_put(db);
    return rc;
}

int evs__pg_log_open(evs_store *s, const char *id, size_t id_len,
                     unsigned flags, evs_log **out, evs_recovery_info *rec,
                     evs_error_info *info)
{
    int64_t held_ms = 0;
    pg_log *pl;
    int rc;

    if (!(pl = log_new(s, flags)))
        return -ENOMEM;
    log_name(pl, id, id_len);
    evs__error_set_id(info, id, id_len);
    if (flags & EVS_LOG_WRITE) {
        /* The claim reads the log's end in the statement that takes the
         * lease: no append of another writer can come between. */
        rc = evs__pg_claim(s, id, id_len, (flags & EVS_LOG_WAIT) != 0, &pl->rid,
                           &pl->fence, &pl->base.last_seq, &pl->base.end,
                           &held_ms);
        if (rc == EVS_ELOCKED)
            evs__error_set(info, rc, "lock",
                           "execution %s is held by another writer's lease "
                           "(%lld ms left)",
                           pl->base.id, (long long)held_ms);
    } else {
        rc = lookup(s, id, id_len, &pl->rid, &pl->base.last_seq, &pl->base.end);
    }
    return log_opened(s, pl, rc, out, rec, info);
}

/* A writer's handle, before its claim, and the claim's owner. */
static int writer_new(evs_store *s, char owner[EVS_UUID_LEN + 1],
                      pg_log **out)
{
    int rc = evs_uuid7(owner);

    if (rc != 0)
        return rc;
    return (*out = log_new(s, EVS_LOG_WRITE)) ? 0 : -ENOMEM;
}

/* The queue's next execution (PG_CLAIM_NEXT), claimed as a writer's
 * open claims one by id. */
int evs__pg_log_claim(evs_store *s, evs_log **out, evs_error_info *info)
{
    pg_store *q = evs__pg(s);
    char owner[EVS_UUID_LEN + 1];
    pg_params p = {0};
    PGresult *r;
    pg_conn *db;
    pg_log *pl;
    int rc;

    if ((rc = writer_new(s, owner, &pl)) != 0)
        return rc;
    evs__pg_bytes(&p, owner, EVS_UUID_LEN);
    evs__pg_i64(&p, q->lease_us);
    db = evs__pg_get(s);
    /* At synchronous_commit on, as every claim: a claim a server crash
     * forgot would let two writers believe they hold one lease, though
     * fencing still refuses the older one's appends. */
    r = evs__pg_run(db, PG_CLAIM_NEXT, &p, 1, "claiming work", &rc);
    if (r && PQntuples(r) == 1) {
        size_t il;
        const char *id = evs__pg_col(r, 0, 4, &il);

        pl->rid = evs__pg_col_i64(r, 0, 0);
        pl->fence = evs__pg_col_i64(r, 0, 1);
        pl->base.last_seq = (uint64_t)evs__pg_col_i64(r, 0, 2);
        pl->base.end = (uint64_t)evs__pg_col_i64(r, 0, 3);
        if (il == 0 || il > EVS_ID_MAX || !evs_id_valid(id, il))
            rc = EVS_ECORRUPT; /* no id a store could have written */
        else
            log_name(pl, id, il);
    } else if (r) {
        rc = -ENOENT;
    }
    PQclear(r);
    evs__pg_put(db);
    if (!pl->fence) { /* nothing claimed: none to claim, or an error */
        free_log(s, pl);
        return rc;
    }
    evs__error_set_id(info, pl->base.id, pl->base.id_len);
    return log_opened(s, pl, rc, out, NULL, info);
}

/* The creation claims the lease in its statement, as the first writer
 * (token 1); the log ends where the creation's lines do, so it is not
 * read back. */
int evs__pg_exec_create_open(evs_store *s, const char *id, size_t id_len,
                             const evs_snapshot *snap, const evs_event *ev,
                             size_t n, unsigned flags, evs_log **out)
{
    char owner[EVS_UUID_LEN + 1];
    pg_log *pl;
    int rc;

    if ((rc = writer_new(s, owner, &pl)) != 0)
        return rc;
    log_name(pl, id, id_len);
    rc = evs__pg_exec_add(s, id, id_len, snap, ev, n, flags, owner, &pl->rid,
                          &pl->base.end);
    if (rc != 0) {
        free_log(s, pl);
        return rc;
    }
    pl->fence = 1;
    pl->base.last_seq = n;
    evs__db_sync_open(&pl->sy, &pl->base);
    *out = &pl->base;
    return 0;
}

/* Commits a transaction id at synchronous_commit on: its commit waits
 * for the WAL to be flushed up to it, with every commit before it. */
static int sync_all(evs_store *s)
{
    pg_conn *db = evs__pg_get(s);
    int rc = evs__pg_do(db, PG_SYNC, NULL, 1, "flushing", NULL);

    evs__pg_put(db);
    return rc;
}

void evs__pg_log_close(evs_log *l)
{
    pg_log *pl = (pg_log *)l;
    evs_store *s = l->store;

    if (evs__db_close_unsynced(&pl->sy, l) && sync_all(s) != 0)
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = l->id),
                  "sync at close failed; appends since the last sync "
                  "may be lost if the database server crashes");
    /* The lease ends now, so the next writer need not wait it out; a
     * poisoned handle gives it up too (a new connection is made when
     * the old one dropped). */
    if ((l->flags & EVS_LOG_WRITE) && !l->released)
        evs__pg_release(s, pl->rid, pl->fence);
    free_log(s, pl);
}

void evs__pg_log_release(evs_log *l)
{
    pg_log *pl = (pg_log *)l;

    evs__pg_release(l->store, pl->rid, pl->fence);
}

/* ------------------------------------------------------------------ */
/* Appends and leases                                                 */
/* ------------------------------------------------------------------ */

/* Why a fenced statement (`what`: "append" or "lease renewal") changed
 * nothing: EVS_ELEASE (another claim, or the lease ran out), EVS_ECONFLICT
 * (the log's end moved) or -ENOENT (the execution is gone). A lost lease
 * is logged, naming the statement refused. */
static int why_refused(pg_conn *db, pg_log *pl, const char *what,
                       evs_error_info *info)
{
    evs_store *s = pl->base.store;
    evs_error_info mine;
    pg_params p = {0};
    PGresult *r;
    int rc;

    if (!info)
        info = &mine;

    evs__pg_i64(&p, pl->rid);
    if (!(r = evs__pg_run(db, PG_LEASE_GET, &p, -1, "reading a lease", &rc)))
        return rc;
    if (PQntuples(r) != 1) {
        rc = -ENOENT;
        evs__error_set(info, rc, "lease", "%s was deleted under its writer",
                       pl->base.id);
    } else if (evs__pg_col_i64(r, 0, 0) != pl->fence) {
        rc = EVS_ELEASE;
        evs__error_set(info, rc, "lease",
                       "%s: another writer claimed the execution (token %lld, "
                       "this writer's %lld); %s refused",
                       pl->base.id, (long long)evs__pg_col_i64(r, 0, 0),
                       (long long)pl->fence, what);
    } else if (evs__pg_col_i64(r, 0, 1) == 0) {
        rc = EVS_ELEASE;
        evs__error_set(info, rc, "lease",
                       "%s: this writer's lease ran out; %s refused",
                       pl->base.id, what);
    } else {
        rc = EVS_ECONFLICT;
    }
    if (rc == EVS_ELEASE)
        evs__logf(s, EVS_LOG_ERROR,
                  EVS_LOG_FIELDS(.execution = pl->base.id, .err = rc), "%s",
                  info->msg);
    PQclear(r);
    return rc;
}

/* An append and, when `snap` is not NULL (its created_at known), the
 * execution's snapshot in the same statement (PG_APPEND_SNAP). */
static int append(evs_log *l, const evs_event *ev, size_t n, uint64_t expected,
                  unsigned flags, const evs_snapshot *snap, int *snap_rc,
                  evs_error_info *info)
{
    pg_log *pl = (pg_log *)l;
    evs_store *s = l->store;
    pg_store *q = evs__pg(s);
    size_t len, alen, blen, slen = 0;
    uint64_t added = 0;
    pg_params p = {0};
    evs_snapshot sn;
    char *sbuf = NULL;
    pg_conn *db;
    /* The lease given up in the statement: the last append of an ended
     * execution (EVS_APPEND_RELEASE; api.c releases any other after). */
    int rel = snap && (flags & EVS_APPEND_RELEASE) &&
              evs__status_final(snap->status);
    int rc, sync;

    pthread_mutex_lock(&l->mu);
    rc = evs__append_prepare(l, ev, n, expected, flags, &pl->wbuf, &pl->wcap,
                             &len, info);
    if (rc != 0) {
        /* 1: a retried append, in the log already: its snapshot is
         * left to the caller (api.c). */
        rc = rc == 1 ? 0 : rc;
        goto out;
    }
    rc = evs__pg_line_arrays(s, pl->wbuf, len, n, l->end, &pl->abuf, &pl->acap,
                             &alen, &blen);
    if (rc == 0 && snap)
        rc = evs__db_snap_encode(l, snap, &sn, &sbuf, &slen);
    if (rc != 0)
        goto out;
    /* FULL waits for every commit's flush; BATCH for the commit that
     * finds a batch's worth of bytes or time since the last; NONE for
     * none. */
    sync = evs__db_sync_wanted(&pl->sy, s, flags, len);
    evs__pg_i64(&p, pl->rid);
    evs__pg_i64(&p, pl->fence);
    evs__pg_i64(&p, (int64_t)(expected + n));
    evs__pg_i64(&p, (int64_t)(l->end + len));
    evs__pg_i64(&p, q->lease_us);
    evs__pg_i64(&p, (int64_t)expected);
    evs__pg_bytes(&p, pl->abuf, alen);
    evs__pg_bytes(&p, pl->abuf + alen, blen);
    if (snap) {
        evs__pg_snapshot_params(&p, &sn, sbuf, slen);
        evs__pg_bool(&p, rel);
    }
    db = evs__pg_get(s);
    rc = evs__pg_do(db, snap ? PG_APPEND_SNAP : PG_APPEND, &p, sync,
                    "appending", &added);
    if (rc == -EEXIST)
        rc = EVS_ECONFLICT; /* lines there already: another writer's */
    else if (rc == 0 && added != n)
        rc = why_refused(db, pl, "append", info);
    evs__pg_put(db);
    if (rc != 0) {
        /* Nothing of it is in the log, or (the connection dropped) it
         * is not known: the handle refuses further calls, as a file's
         * does, and a retry on a new handle settles it. */
        rc = evs__db_poison(l, rc);
        goto out;
    }
    evs__db_appended(&pl->sy, l, sync, expected, n, len);
    if (rel)
        l->released = 1;
    if (snap_rc)
        *snap_rc = 0;
out:
    if (rc != 0 && info && info->code == 0)
        evs__error_set(info, rc, "", "append to %s: %s", l->id,
                       evs_strerror(rc));
    pthread_mutex_unlock(&l->mu);
    evs__free(s->alloc, sbuf);
    return rc;
}

int evs__pg_log_append(evs_log *l, const evs_event *ev, size_t n,
                       uint64_t expected, unsigned flags, evs_error_info *info)
{
    return append(l, ev, n, expected, flags, NULL, NULL, info);
}

int evs__pg_log_append_snap(evs_log *l, const evs_event *ev, size_t n,
                            uint64_t expected, unsigned flags,
                            const evs_snapshot *snap, unsigned snap_flags,
                            int *snap_rc, evs_error_info *info)
{
    /* Committed with the append, the snapshot is as durable as it is,
     * whatever snap_flags asked. */
    (void)snap_flags;
    return append(l, ev, n, expected, flags, snap, snap_rc, info);
}

int evs__pg_log_renew(evs_log *l, int64_t *until_us)
{
    pg_log *pl = (pg_log *)l;
    evs_store *s = l->store;
    pg_store *q = evs__pg(s);
    pg_params p = {0};
    PGresult *r;
    pg_conn *db;
    int rc;

    pthread_mutex_lock(&l->mu);
    if (l->poisoned || l->released) {
        pthread_mutex_unlock(&l->mu);
        return l->poisoned ? EVS_EPOISONED : EVS_EREADONLY;
    }
    evs__pg_i64(&p, pl->rid);
    evs__pg_i64(&p, pl->fence);
    evs__pg_i64(&p, q->lease_us);
    db = evs__pg_get(s);
    r = evs__pg_run(db, PG_RENEW, &p, -1, "renewing a lease", &rc);
    if (r && PQntuples(r) == 1 && until_us) {
        *until_us = evs__pg_col_i64(r, 0, 0);
    } else if (r && PQntuples(r) != 1) {
        /* Another writer's token, or the execution gone: said and
         * logged as an append's refusal is. (The token still this
         * writer's would have matched; should it, the renewal is
         * taken as refused all the same.) */
        rc = why_refused(db, pl, "lease renewal", NULL);
        rc = rc == EVS_ECONFLICT ? EVS_ELEASE : rc;
    }
    PQclear(r);
    evs__pg_put(db);
    if (rc == EVS_ELEASE || rc == -ENOENT)
        rc = evs__db_poison(l, rc);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__pg_log_sync(evs_log *l)
{
    return evs__db_log_sync(l, &((pg_log *)l)->sy, sync_all);
}

int evs__pg_log_refresh(evs_log *l)
{
    return evs__db_log_refresh(l, ((pg_log *)l)->rid, lookup);
}

int evs__pg_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs_scan_fn fn, void *arg)
{
    return evs__db_log_scan(s, id, id_len, lookup, fetch, fn, arg);
}
