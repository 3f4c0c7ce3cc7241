/*
 * sqlite_log.c: the SQLite backend's logs: opening (under the writer's
 * lock for a writer, with the log's last line checked), appends (one
 * BEGIN IMMEDIATE transaction each, at the synchronous level the
 * durability mode asks), syncs, cursors and scans. Every line read back
 * is checked as a file's line is: checksum, execution, sequence and
 * append framing.
 */
#include "sqlite_int.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Reading lines in chunks (db_rows.c checks them)                    */
/* ------------------------------------------------------------------ */

/* Reads the rows of execution rid from sequence `from` to `to`, at most
 * a chunk's worth, into r (replacing what it held). */
static int fetch(evs_store *s, int64_t rid, uint64_t from, uint64_t to,
                 evs__rows *r)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    int rc = 0, src;

    r->n = r->i = 0;
    r->used = 0;
    pthread_mutex_lock(&q->mu);
    if (!(st = evs__sq_stmt(s, SQ_EVENTS_GET))) {
        pthread_mutex_unlock(&q->mu);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)from);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(to > INT64_MAX ? INT64_MAX : to));
    sqlite3_bind_int(st, 4, EVS__CHUNK_ROWS);
    while (r->used < EVS__CHUNK_BYTES &&
           (src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = evs__rows_push(s, r, (uint64_t)sqlite3_column_int64(st, 0),
                            (uint64_t)sqlite3_column_int64(st, 1),
                            sqlite3_column_blob(st, 2),
                            (size_t)sqlite3_column_bytes(st, 2));
        if (rc != 0)
            break;
    }
    if (rc == 0 && r->used < EVS__CHUNK_BYTES && src != SQLITE_DONE)
        rc = evs__sq_err(s, src, "reading events");
    sqlite3_reset(st);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int evs__sq_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                        evs_cursor **out, evs_error_info *info)
{
    return evs__dbc_open(l, ((sq_log *)l)->rid, fetch, from, to, out, info);
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                */
/* ------------------------------------------------------------------ */

static void free_log(evs_store *s, sq_log *ql)
{
    if (ql->lock_fd >= 0)
        close(ql->lock_fd);
    evs__free(s->alloc, ql->wbuf);
    pthread_mutex_destroy(&ql->base.mu);
    evs__free(s->alloc, ql);
}

int evs__sq_log_open(evs_store *s, const char *id, size_t id_len,
                     unsigned flags, evs_log **out, evs_recovery_info *rec,
                     evs_error_info *info)
{
    sq_store *q = evs__sq(s);
    int wr = (flags & EVS_LOG_WRITE) != 0;
    int64_t rid = 0;
    sq_log *ql;
    int rc;

    if (!(ql = evs__calloc(s->alloc, sizeof(*ql))))
        return -ENOMEM;
    ql->lock_fd = -1;
    ql->base.ops = s->ops;
    ql->base.store = s;
    ql->base.flags = flags;
    memcpy(ql->base.id, id, id_len);
    ql->base.id[id_len] = '\0';
    ql->base.id_len = id_len;
    pthread_mutex_init(&ql->base.mu, NULL);
    evs__error_set_id(info, id, id_len);

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0 && wr) {
        rc = evs__sq_lock(s, rid, (flags & EVS_LOG_WAIT) != 0, &ql->lock_fd);
        if (rc == EVS_ELOCKED)
            evs__error_set(info, rc, "lock",
                           "execution %s is locked by another writer",
                           ql->base.id);
    }
    /* Read the end under the lock: another writer may have appended
     * between the look-up and the lock, or deleted the execution. */
    if (rc == 0) {
        pthread_mutex_lock(&q->mu);
        rc = evs__sq_exec_get(s, id, id_len, &ql->rid, &ql->base.last_seq,
                              &ql->base.end, NULL);
        pthread_mutex_unlock(&q->mu);
        if (rc == 0 && ql->rid != rid)
            rc = -ENOENT;
    }
    if (rc == 0 && wr &&
        (rc = evs__dbc_check_end(&ql->base, ql->rid, fetch, info)) != 0 &&
        info && info->code == 0)
        evs__error_set(info, rc, "sequence",
                       "%s: the log's last event (sequence %llu) does not "
                       "end it at byte %llu",
                       ql->base.id, (unsigned long long)ql->base.last_seq,
                       (unsigned long long)ql->base.end);
    if (rc != 0) {
        if (info && info->code == 0)
            evs__error_set(info, rc, "", "opening the log of %s: %s",
                           ql->base.id, evs_strerror(rc));
        free_log(s, ql);
        return rc;
    }
    evs__db_sync_open(&ql->sy, &ql->base);
    if (rec) {
        rec->last_seq = ql->base.last_seq;
        rec->end_offset = ql->base.end;
        rec->bad_offset = UINT64_MAX;
        rec->bad_kind = "";
    }
    *out = &ql->base;
    return 0;
}

/* Commits a write of nothing but the sync mark at synchronous=FULL: the
 * commit syncs the write-ahead log, and with it every commit before. */
static int sync_all(evs_store *s)
{
    sq_store *q = evs__sq(s);
    int rc;

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_begin(s, 1);
    if (rc == 0)
        rc = evs__sq_done(s, evs__sq_stmt(s, SQ_SYNC_MARK), "sync mark");
    rc = evs__sq_end(s, rc);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void evs__sq_log_close(evs_log *l)
{
    sq_log *ql = (sq_log *)l;
    evs_store *s = l->store;

    if (evs__db_close_unsynced(&ql->sy, l) && sync_all(s) != 0)
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = l->id),
                  "sync at close failed; appends since the last sync "
                  "may be lost on a power failure");
    /* Closing the lock's descriptor releases it. */
    free_log(s, ql);
}

/* ------------------------------------------------------------------ */
/* Appends                                                            */
/* ------------------------------------------------------------------ */

/* An append and, when `snap` is not NULL, the execution's snapshot in
 * the same transaction. */
static int append(evs_log *l, const evs_event *ev, size_t n, uint64_t expected,
                  unsigned flags, const evs_snapshot *snap, int *snap_rc,
                  evs_error_info *info)
{
    sq_log *ql = (sq_log *)l;
    evs_store *s = l->store;
    sq_store *q = evs__sq(s);
    size_t len, slen = 0;
    evs_snapshot sn;
    char *sbuf = NULL;
    int rc, sync;

    pthread_mutex_lock(&l->mu);
    rc = evs__append_prepare(l, ev, n, expected, flags, &ql->wbuf, &ql->wcap,
                             &len, info);
    if (rc != 0) {
        /* 1: a retried append, in the log already: its snapshot is
         * left to the caller (api.c). */
        rc = rc == 1 ? 0 : rc;
        goto out;
    }
    if (snap && (rc = evs__db_snap_encode(l, snap, &sn, &sbuf, &slen)) != 0)
        goto out;
    /* FULL syncs every commit; BATCH the commit that finds a batch's
     * worth of bytes or time since the last sync; NONE none. */
    sync = evs__db_sync_wanted(&ql->sy, s, flags, len);
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_begin(s, sync);
    if (rc == 0)
        rc = evs__sq_add_lines(s, ql->rid, l->last_seq, l->end, ql->wbuf, len,
                               n);
    if (rc == 0 && snap)
        rc = evs__sq_snapshot_write(s, ql->rid, &sn, sbuf, slen);
    rc = evs__sq_end(s, rc);
    pthread_mutex_unlock(&q->mu);
    if (rc != 0) {
        /* The transaction is rolled back: nothing of it is in the log.
         * The handle refuses further calls, as a file's does. */
        rc = evs__db_poison(l, rc);
        goto out;
    }
    evs__db_appended(&ql->sy, l, sync, expected, n, len);
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

int evs__sq_log_append(evs_log *l, const evs_event *ev, size_t n,
                       uint64_t expected, unsigned flags, evs_error_info *info)
{
    return append(l, ev, n, expected, flags, NULL, NULL, info);
}

int evs__sq_log_append_snap(evs_log *l, const evs_event *ev, size_t n,
                            uint64_t expected, unsigned flags,
                            const evs_snapshot *snap, unsigned snap_flags,
                            int *snap_rc, evs_error_info *info)
{
    /* Committed with the append, the snapshot is as durable as it is,
     * whatever snap_flags asked. */
    (void)snap_flags;
    return append(l, ev, n, expected, flags, snap, snap_rc, info);
}

int evs__sq_log_sync(evs_log *l)
{
    return evs__db_log_sync(l, &((sq_log *)l)->sy, sync_all);
}

/* The row and the log's end of execution id, under the store's mutex. */
static int lookup(evs_store *s, const char *id, size_t id_len, int64_t *rid,
                  uint64_t *last, uint64_t *end)
{
    pthread_mutex_t *mu = &evs__sq(s)->mu;
    int rc;

    pthread_mutex_lock(mu);
    rc = evs__sq_exec_get(s, id, id_len, rid, last, end, NULL);
    pthread_mutex_unlock(mu);
    return rc;
}

int evs__sq_log_refresh(evs_log *l)
{
    return evs__db_log_refresh(l, ((sq_log *)l)->rid, lookup);
}

/* ------------------------------------------------------------------ */
/* Scans                                                              */
/* ------------------------------------------------------------------ */

int evs__sq_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs_scan_fn fn, void *arg)
{
    return evs__db_log_scan(s, id, id_len, lookup, fetch, fn, arg);
}
