/*
 * sqlite_data.c: the SQLite backend's listing (from covering indexes on
 * the executions table, in the order of store.h), snapshots, inbox of
 * requests, settings and statistics.
 */
#include "sqlite_int.h"

#include <errno.h>
#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

static const char list_cols[] =
    "SELECT id, workflow, status, start_time, end_time, created_at,"
    " updated_at, snap_seq FROM executions";

/* The listing's statement for the filter's shape: bit 0 a status, bit 1
 * a workflow, bit 2 the count of matches rather than the rows. */
static sqlite3_stmt *list_stmt(evs_store *s, unsigned shape)
{
    sq_store *q = evs__sq(s);
    char sql[512];
    int rc;

    if (!q->list_st[shape]) {
        snprintf(sql, sizeof(sql),
                 "%s WHERE created_at >= ?3 AND created_at < ?4%s%s%s",
                 (shape & 4) ? "SELECT count(*) FROM executions" : list_cols,
                 (shape & 1) ? " AND status = ?1" : "",
                 (shape & 2) ? " AND workflow = ?2" : "",
                 (shape & 4) ? ""
                             : " ORDER BY created_at, id LIMIT ?5 OFFSET ?6");
        rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &q->list_st[shape], NULL);
        if (rc != SQLITE_OK) {
            evs__sq_err(s, rc, "preparing the listing");
            return NULL;
        }
    }
    sqlite3_reset(q->list_st[shape]);
    sqlite3_clear_bindings(q->list_st[shape]);
    return q->list_st[shape];
}

static void list_bind(sqlite3_stmt *st, unsigned shape,
                      const evs_list_filter *f)
{
    if (shape & 1)
        sqlite3_bind_text(st, 1, f->status.ptr, (int)f->status.len,
                          SQLITE_STATIC);
    if (shape & 2)
        sqlite3_bind_text(st, 2, f->workflow_name.ptr,
                          (int)f->workflow_name.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3,
                       f->created_after_us ? f->created_after_us : INT64_MIN);
    sqlite3_bind_int64(st, 4,
                       f->created_before_us ? f->created_before_us : INT64_MAX);
}

/* Copies column `col` into the arena at *used; the span holds its offset
 * until the arena stops moving. */
static int arena_col(evs_store *s, sqlite3_stmt *st, int col, char **mem,
                     size_t *cap, size_t *used, evs_span *out)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    if (EVS__GROW(s->alloc, mem, cap, *used + n + 1) != 0)
        return -ENOMEM;
    if (n)
        memcpy(*mem + *used, p, n);
    out->ptr = (const char *)(uintptr_t)*used;
    out->len = n;
    *used += n;
    return 0;
}

static void fix_span(evs_span *sp, const char *base)
{
    sp->ptr = sp->len ? base + (uintptr_t)sp->ptr : "";
}

int evs__sq_exec_list(evs_store *s, const evs_list_filter *f,
                      evs_exec_listing *out)
{
    sq_store *q = evs__sq(s);
    unsigned shape =
        (f->status.len ? 1u : 0u) | (f->workflow_name.len ? 2u : 0u);
    evs_exec_info *items = NULL;
    size_t count = 0, icap = 0, mcap = 0, used = 0;
    uint64_t total = 0;
    sqlite3_stmt *st;
    char *mem = NULL;
    int rc = 0, src;

    pthread_mutex_lock(&q->mu);
    if (!(st = list_stmt(s, shape))) {
        rc = -EIO;
        goto out;
    }
    list_bind(st, shape, f);
    sqlite3_bind_int64(st, 5, f->limit ? (sqlite3_int64)f->limit : -1);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)f->offset);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        evs_exec_info *it;

        if ((rc = EVS__GROW(s->alloc, &items, &icap, count + 1)) != 0)
            break;
        it = &items[count];
        memset(it, 0, sizeof(*it));
        if ((rc = arena_col(s, st, 0, &mem, &mcap, &used, &it->id)) != 0 ||
            (rc = arena_col(s, st, 1, &mem, &mcap, &used,
                            &it->workflow_name)) != 0 ||
            (rc = arena_col(s, st, 2, &mem, &mcap, &used, &it->status)) != 0)
            break;
        it->start_time_us = sqlite3_column_int64(st, 3);
        it->end_time_us = sqlite3_column_int64(st, 4);
        it->created_at_us = sqlite3_column_int64(st, 5);
        it->updated_at_us = sqlite3_column_int64(st, 6);
        it->last_event_seq = (uint64_t)sqlite3_column_int64(st, 7);
        it->snapshot_ok = 1; /* written in the transaction of its row */
        count++;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = evs__sq_err(s, src, "listing executions");
    sqlite3_reset(st);
    if (rc != 0)
        goto out;
    /* Matches before offset and limit: known from the rows unless they
     * were cut. */
    if (f->offset == 0 && (!f->limit || count < f->limit)) {
        total = count;
    } else if (!(st = list_stmt(s, shape | 4))) {
        rc = -EIO;
    } else {
        list_bind(st, shape, f);
        if ((src = sqlite3_step(st)) == SQLITE_ROW)
            total = (uint64_t)sqlite3_column_int64(st, 0);
        else
            rc = evs__sq_err(s, src, "counting executions");
        sqlite3_reset(st);
    }
out:
    pthread_mutex_unlock(&q->mu);
    if (rc != 0) {
        evs__free(s->alloc, items);
        evs__free(s->alloc, mem);
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        fix_span(&items[i].id, mem);
        fix_span(&items[i].workflow_name, mem);
        fix_span(&items[i].status, mem);
    }
    out->items = items;
    out->count = count;
    out->total = (size_t)total;
    out->mem_ = mem;
    out->alloc_ = s->alloc;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                          */
/* ------------------------------------------------------------------ */

static void bind_span(sqlite3_stmt *st, int col, evs_span sp)
{
    sqlite3_bind_text(st, col, sp.len ? sp.ptr : "", (int)sp.len,
                      SQLITE_STATIC);
}

void evs__sq_bind_snapshot(sqlite3_stmt *st, const evs_snapshot *sn,
                           const char *buf, size_t len)
{
    (void)buf;
    (void)len;
    bind_span(st, 2, sn->status);
    bind_span(st, 3, sn->workflow_name);
    sqlite3_bind_int64(st, 4, sn->created_at_us);
    sqlite3_bind_int64(st, 5, sn->updated_at_us);
    sqlite3_bind_int64(st, 6, sn->start_time_us);
    sqlite3_bind_int64(st, 7, sn->end_time_us);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)sn->last_event_seq);
}

int evs__sq_snapshot_write(evs_store *s, int64_t rid, const evs_snapshot *sn,
                           const char *buf, size_t len)
{
    sqlite3_stmt *st = evs__sq_stmt(s, SQ_SNAP_SET);
    int rc;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, rid);
    evs__sq_bind_snapshot(st, sn, buf, len);
    rc = evs__sq_done(s, st, "saving a snapshot");
    return rc == 0 ? evs__sq_put_snapshot(s, rid, buf, len) : rc;
}

/* Reads execution rid's snapshot bytes into a decoding buffer, its log's
 * last sequence and its created_at. Under q->mu. */
static int snap_get(evs_store *s, int64_t rid, char **buf, size_t *len,
                    uint64_t *last, int64_t *created)
{
    sqlite3_stmt *st = evs__sq_stmt(s, SQ_SNAP_GET);
    int rc;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, rid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);

        *last = (uint64_t)sqlite3_column_int64(st, 1);
        *created = sqlite3_column_int64(st, 2);
        rc = 0;
        if (buf && sqlite3_column_type(st, 0) == SQLITE_NULL) {
            rc = -ENOENT;
        } else if (buf) {
            if (!(*buf = evs__snapshot_buf(s->alloc, n))) {
                rc = -ENOMEM;
            } else {
                memcpy(*buf, p, n);
                evs__snapshot_buf_filled(*buf, n);
                *len = n;
            }
        }
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : evs__sq_err(s, rc, "snapshot");
    }
    sqlite3_reset(st);
    return rc;
}

int evs__sq_snapshot_save(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, unsigned flags)
{
    sq_store *q = evs__sq(s);
    evs_snapshot sn = *snap;
    char *buf = NULL;
    size_t len;
    uint64_t last;
    int64_t rid, created;
    int rc;

    sn.id.ptr = id;
    sn.id.len = id_len;
    if (sn.updated_at_us == 0)
        sn.updated_at_us = evs_now_us();
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    if (rc == 0)
        rc = snap_get(s, rid, NULL, NULL, &last, &created);
    if (rc == 0 && sn.last_event_seq > last)
        rc = EVS_ESTALE;
    /* created_at belongs to the execution, not to one snapshot. */
    if (rc == 0 && sn.created_at_us == 0)
        sn.created_at_us = created;
    if (rc == 0)
        rc = evs_snapshot_encode(&sn, s->alloc, &buf, &len);
    /* A cache of the log (EVS_SNAPSHOT_CACHE) is committed unsynced. */
    if (rc == 0 &&
        (rc = evs__sq_begin(s, SQ_SYNC_META(s) &&
                                   !(flags & EVS_SNAPSHOT_CACHE))) == 0)
        rc = evs__sq_end(s, evs__sq_snapshot_write(s, rid, &sn, buf, len));
    pthread_mutex_unlock(&q->mu);
    evs__free(s->alloc, buf);
    return rc;
}

int evs__sq_snapshot_load(evs_store *s, const char *id, size_t id_len,
                          unsigned flags, evs_snapshot **out,
                          evs_error_info *info)
{
    sq_store *q = evs__sq(s);
    char *buf = NULL;
    size_t len = 0;
    uint64_t last = 0;
    int64_t rid, created;
    int rc;

    evs__error_set_id(info, id, id_len);
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    if (rc == 0)
        rc = snap_get(s, rid, &buf, &len, &last, &created);
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        return rc;
    return evs__db_snapshot_decode(id, id_len, buf, len, last, flags, out,
                                   info);
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

/* Moves execution rid's inbox change counter (evs_request_changed). */
static int bump_gen(evs_store *s, int64_t rid)
{
    sqlite3_stmt *st = evs__sq_stmt(s, SQ_REQ_GEN);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, rid);
    return evs__sq_done(s, st, "inbox counter");
}

int evs__sq_request_post(evs_store *s, const char *id, size_t id_len,
                         const char *json, size_t len,
                         char out_id[EVS_REQUEST_ID_LEN + 1])
{
    sq_store *q = evs__sq(s);
    char uuid[EVS_UUID_LEN + 1];
    char *body = NULL;
    size_t blen;
    sqlite3_stmt *st;
    int64_t rid;
    int rc;

    if ((rc = evs__request_compact(s, json, len, &body, &blen)) != 0)
        return rc;
    if ((rc = evs_uuid7(uuid)) != 0)
        goto out;
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    /* Durable when this returns, whatever the durability mode. */
    if (rc == 0 && (rc = evs__sq_begin(s, 1)) == 0) {
        if (!(st = evs__sq_stmt(s, SQ_REQ_ADD))) {
            rc = -EIO;
        } else {
            sqlite3_bind_int64(st, 1, rid);
            sqlite3_bind_text(st, 2, uuid, EVS_REQUEST_ID_LEN, SQLITE_STATIC);
            sqlite3_bind_blob(st, 3, body, (int)blen, SQLITE_STATIC);
            rc = evs__sq_done(s, st, "posting a request");
        }
        if (rc == 0)
            rc = bump_gen(s, rid);
        rc = evs__sq_end(s, rc);
    }
    pthread_mutex_unlock(&q->mu);
    if (rc == 0 && out_id)
        memcpy(out_id, uuid, EVS_REQUEST_ID_LEN + 1);
out:
    evs__free(s->alloc, body);
    return rc;
}

int evs__sq_request_list(evs_store *s, const char *id, size_t id_len,
                         evs_request_listing *out)
{
    sq_store *q = evs__sq(s);
    evs__db_reqs b = {0};
    sqlite3_stmt *st;
    int64_t rid;
    int rc, src = SQLITE_DONE;

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    if (rc == 0 && !(st = evs__sq_stmt(s, SQ_REQ_LIST)))
        rc = -EIO;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, rid);
        while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
            rc = evs__db_req_add(
                s, &b, id, id_len, (const char *)sqlite3_column_text(st, 0),
                (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 1),
                (size_t)sqlite3_column_bytes(st, 1));
        if (rc == 0 && src != SQLITE_DONE)
            rc = evs__sq_err(s, src, "listing requests");
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->mu);
    return evs__db_req_done(s, &b, rc, out);
}

int evs__sq_request_remove(evs_store *s, const char *id, size_t id_len,
                           const char *req_id)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    int64_t rid;
    int rc;

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    if (rc == -ENOENT) {
        rc = 0; /* gone with its execution */
    } else if (rc == 0 && (rc = evs__sq_begin(s, 0)) == 0) {
        /* Not synced: a request that comes back after a crash is
         * recognised by its id (store.h). */
        if (!(st = evs__sq_stmt(s, SQ_REQ_DEL))) {
            rc = -EIO;
        } else {
            sqlite3_bind_int64(st, 1, rid);
            sqlite3_bind_text(st, 2, req_id, EVS_REQUEST_ID_LEN, SQLITE_STATIC);
            rc = evs__sq_done(s, st, "removing a request");
        }
        if (rc == 0 && sqlite3_changes(q->db) > 0)
            rc = bump_gen(s, rid);
        rc = evs__sq_end(s, rc);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int evs__sq_request_stamp(evs_store *s, const char *id, size_t id_len,
                          uint64_t *ino, int64_t *ctime_ns)
{
    sq_store *q = evs__sq(s);
    int64_t rid = 0, gen = 0;
    int rc;

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, &gen);
    pthread_mutex_unlock(&q->mu);
    return evs__db_request_stamp(rc, rid, gen, ino, ctime_ns);
}

/* ------------------------------------------------------------------ */
/* Settings and statistics                                            */
/* ------------------------------------------------------------------ */

int evs__sq_settings_load(evs_store *s, evs_settings **out, evs_error_info *ei)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    int rc, src;

    pthread_mutex_lock(&q->mu);
    if (!(st = evs__sq_stmt(s, SQ_SET_GET))) {
        rc = -EIO;
    } else if ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = evs__settings_decode(s->alloc, sqlite3_column_blob(st, 0),
                                  (size_t)sqlite3_column_bytes(st, 0), out, ei);
    } else if (src == SQLITE_DONE) {
        rc = evs_settings_new(s->alloc, out); /* every key's default */
    } else {
        rc = evs__sq_err(s, src, "reading the settings");
    }
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&q->mu);
    return evs__error_rc(ei, rc);
}

int evs__sq_settings_save(evs_store *s, const evs_settings *set,
                          evs_error_info *ei)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st;
    char *buf = NULL;
    size_t len;
    int rc;

    if ((rc = evs__settings_encode(set, s->alloc, &buf, &len)) != 0)
        return evs__error_rc(ei, rc);
    pthread_mutex_lock(&q->mu);
    /* Synced whatever the durability mode, as the file is. */
    if ((rc = evs__sq_begin(s, 1)) == 0) {
        if (!(st = evs__sq_stmt(s, SQ_SET_PUT))) {
            rc = -EIO;
        } else {
            sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
            rc = evs__sq_done(s, st, "saving the settings");
        }
        rc = evs__sq_end(s, rc);
    }
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        evs__error_set(ei, rc, "", "saving the settings: %s", evs_strerror(rc));
    evs__free(s->alloc, buf);
    return evs__error_rc(ei, rc);
}

int evs__sq_exec_usage(evs_store *s, const char *name, evs__usage *u)
{
    sq_store *q = evs__sq(s);
    int64_t rid;
    int rc;

    memset(u, 0, sizeof(*u));
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, name, strlen(name), &rid, &u->events, &u->bytes,
                          NULL);
    pthread_mutex_unlock(&q->mu);
    return rc;
}
