/*
 * pg_data.c: the PostgreSQL backend's listing (from the indexes on the
 * executions table, in the order of store.h), snapshots, inbox of
 * requests, settings and statistics.
 */
#include "pg_int.h"

#include <errno.h>
#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

/* The listing's statement for the filter's shape: bit 0 a status, bit 1
 * a workflow, bit 2 the count of matches rather than the rows. Its
 * parameters are always $1 status, $2 workflow, $3 and $4 the creation
 * bounds, $5 limit and $6 offset (the count's only the first four). */
const char *evs__pg_list_sql(unsigned shape, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "%s WHERE created_at >= $3::int8 AND created_at < $4::int8"
             " AND ($1::text IS NOT NULL OR true)"
             " AND ($2::text IS NOT NULL OR true)%s%s%s",
             (shape & 4) ? "SELECT count(*)::int8 FROM executions"
                         : "SELECT id, workflow, status, start_time, end_time,"
                           " created_at, updated_at, snap_seq FROM executions",
             (shape & 1) ? " AND status = $1::text" : "",
             (shape & 2) ? " AND workflow = $2::text" : "",
             (shape & 4) ? ""
                         : " ORDER BY created_at, id LIMIT $5::int8"
                           " OFFSET $6::int8");
    return buf;
}

static void list_params(pg_params *p, const evs_list_filter *f)
{
    evs__pg_bytes(p, f->status.ptr, f->status.len);
    evs__pg_bytes(p, f->workflow_name.ptr, f->workflow_name.len);
    evs__pg_i64(p, f->created_after_us ? f->created_after_us : INT64_MIN);
    evs__pg_i64(p, f->created_before_us ? f->created_before_us : INT64_MAX);
}

int evs__pg_exec_list(evs_store *s, const evs_list_filter *f,
                      evs_exec_listing *out)
{
    pg_conn *db;
    unsigned shape =
        (f->status.len ? 1u : 0u) | (f->workflow_name.len ? 2u : 0u);
    evs_exec_info *items = NULL;
    size_t count = 0, used = 0;
    uint64_t total = 0;
    pg_params p = {0};
    PGresult *r;
    char *mem = NULL;
    int rc = 0, nt;

    list_params(&p, f);
    evs__pg_i64(&p, f->limit ? (int64_t)f->limit : INT64_MAX);
    evs__pg_i64(&p, (int64_t)f->offset);
    db = evs__pg_get(s);
    r = evs__pg_run(db, PG_LIST0 + (int)shape, &p, -1, "listing executions",
                    &rc);
    if (!r)
        goto out;
    nt = PQntuples(r);
    for (int i = 0; i < nt; i++)
        for (int c = 0; c < 3; c++)
            used += (size_t)PQgetlength(r, i, c);
    if ((nt && !(items = evs__calloc(s->alloc, (size_t)nt * sizeof(*items)))) ||
        !(mem = evs__malloc(s->alloc, used + 1))) {
        rc = -ENOMEM;
        PQclear(r);
        goto out;
    }
    used = 0;
    for (int i = 0; i < nt; i++) {
        evs_exec_info *it = &items[count++];
        evs_span *sp[3] = {&it->id, &it->workflow_name, &it->status};

        for (int c = 0; c < 3; c++) {
            size_t n;
            const char *v = evs__pg_col(r, i, c, &n);
            memcpy(mem + used, v, n);
            sp[c]->ptr = n ? mem + used : "";
            sp[c]->len = n;
            used += n;
        }
        it->start_time_us = evs__pg_col_i64(r, i, 3);
        it->end_time_us = evs__pg_col_i64(r, i, 4);
        it->created_at_us = evs__pg_col_i64(r, i, 5);
        it->updated_at_us = evs__pg_col_i64(r, i, 6);
        it->last_event_seq = (uint64_t)evs__pg_col_i64(r, i, 7);
        it->snapshot_ok = 1; /* written in the statement of its row */
    }
    PQclear(r);
    /* Matches before offset and limit: known from the rows unless they
     * were cut. */
    if (f->offset == 0 && (!f->limit || count < f->limit)) {
        total = count;
    } else {
        pg_params c = {0};
        list_params(&c, f);
        r = evs__pg_run(db, PG_LIST0 + (int)(shape | 4), &c, -1,
                        "counting executions", &rc);
        if (r && PQntuples(r) == 1)
            total = (uint64_t)evs__pg_col_i64(r, 0, 0);
        PQclear(r);
    }
out:
    evs__pg_put(db);
    if (rc != 0) {
        evs__free(s->alloc, items);
        evs__free(s->alloc, mem);
        return rc;
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

void evs__pg_snapshot_params(pg_params *p, const evs_snapshot *sn,
                             const char *buf, size_t len)
{
    evs__pg_bytes(p, sn->status.ptr, sn->status.len);
    evs__pg_bytes(p, sn->workflow_name.ptr, sn->workflow_name.len);
    evs__pg_i64(p, sn->created_at_us);
    evs__pg_i64(p, sn->updated_at_us);
    evs__pg_i64(p, sn->start_time_us);
    evs__pg_i64(p, sn->end_time_us);
    evs__pg_i64(p, (int64_t)sn->last_event_seq);
    evs__pg_bytes(p, buf, len);
}

/* Reads execution rid's snapshot bytes into a decoding buffer (when buf
 * is not NULL), its log's last sequence and its created_at. */
static int snap_get(pg_conn *db, int64_t rid, char **buf, size_t *len,
                    uint64_t *last, int64_t *created)
{
    evs_store *s = db->s;
    pg_params p = {0};
    PGresult *r;
    int rc;

    evs__pg_i64(&p, rid);
    if (!(r = evs__pg_run(db, PG_SNAP_GET, &p, -1, "reading a snapshot", &rc)))
        return rc;
    if (PQntuples(r) != 1) {
        rc = -ENOENT;
    } else {
        size_t n;
        const char *v = evs__pg_col(r, 0, 0, &n);

        *last = (uint64_t)evs__pg_col_i64(r, 0, 1);
        *created = evs__pg_col_i64(r, 0, 2);
        if (buf) {
            if (!(*buf = evs__snapshot_buf(s->alloc, n))) {
                rc = -ENOMEM;
            } else {
                memcpy(*buf, v, n);
                evs__snapshot_buf_filled(*buf, n);
                *len = n;
            }
        }
    }
    PQclear(r);
    return rc;
}

int evs__pg_snapshot_save(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, unsigned flags)
{
    evs_snapshot sn = *snap;
    char *buf = NULL;
    size_t len;
    uint64_t last, changed = 0;
    int64_t rid, created;
    pg_params p = {0};
    pg_conn *db;
    int rc = 0;

    sn.id.ptr = id;
    sn.id.len = id_len;
    if (sn.updated_at_us == 0)
        sn.updated_at_us = evs_now_us();
    db = evs__pg_get(s);
    /* created_at belongs to the execution, not to one snapshot: one saved
     * without it takes the row's (two more round trips). */
    if (sn.created_at_us == 0) {
        rc = evs__pg_exec_get(db, id, id_len, &rid, NULL, NULL, NULL);
        if (rc == 0)
            rc = snap_get(db, rid, NULL, NULL, &last, &created);
        if (rc == 0)
            sn.created_at_us = created;
    }
    if (rc == 0)
        rc = evs_snapshot_encode(&sn, s->alloc, &buf, &len);
    if (rc == 0) {
        evs__pg_bytes(&p, id, id_len);
        evs__pg_snapshot_params(&p, &sn, buf, len);
        /* A cache of the log (EVS_SNAPSHOT_CACHE) is not waited for. */
        evs__pg_bool(&p, PG_SYNC_META(s) && !(flags & EVS_SNAPSHOT_CACHE));
        rc = evs__pg_do(db, PG_SNAP_SET, &p, -1, "saving a snapshot", &changed);
        /* Nothing changed: no such execution (the log never shrinks, so
         * it was deleted), or a snapshot ahead of its log. */
        if (rc == 0 && changed != 1 &&
            (rc = evs__pg_exec_get(db, id, id_len, NULL, &last, NULL, NULL)) ==
                0)
            rc = EVS_ESTALE;
    }
    evs__pg_put(db);
    evs__free(s->alloc, buf);
    return rc;
}

int evs__pg_snapshot_load(evs_store *s, const char *id, size_t id_len,
                          unsigned flags, evs_snapshot **out,
                          evs_error_info *info)
{
    pg_conn *db;
    char *buf = NULL;
    size_t len = 0;
    uint64_t last = 0;
    int64_t rid, created;
    int rc;

    evs__error_set_id(info, id, id_len);
    db = evs__pg_get(s);
    rc = evs__pg_exec_get(db, id, id_len, &rid, NULL, NULL, NULL);
    if (rc == 0)
        rc = snap_get(db, rid, &buf, &len, &last, &created);
    evs__pg_put(db);
    if (rc != 0)
        return rc;
    return evs__db_snapshot_decode(id, id_len, buf, len, last, flags, out,
                                   info);
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

int evs__pg_request_post(evs_store *s, const char *id, size_t id_len,
                         const char *json, size_t len,
                         char out_id[EVS_REQUEST_ID_LEN + 1])
{
    pg_store *q = evs__pg(s);
    pg_conn *db;
    char uuid[EVS_UUID_LEN + 1];
    char *body = NULL;
    uint64_t added = 0;
    pg_params p = {0};
    size_t blen;
    int rc;

    if ((rc = evs__request_compact(s, json, len, &body, &blen)) != 0)
        return rc;
    if ((rc = evs_uuid7(uuid)) != 0)
        goto out;
    evs__pg_bytes(&p, id, id_len);
    evs__pg_bytes(&p, uuid, EVS_REQUEST_ID_LEN);
    evs__pg_bytes(&p, body, blen);
    evs__pg_bytes(&p, q->chan, strlen(q->chan));
    db = evs__pg_get(s);
    /* Durable when this returns, whatever the durability mode. */
    rc = evs__pg_do(db, PG_REQ_ADD, &p, 1, "posting a request", &added);
    evs__pg_put(db);
    if (rc == 0 && added != 1)
        rc = -ENOENT;
    if (rc == 0 && out_id)
        memcpy(out_id, uuid, EVS_REQUEST_ID_LEN + 1);
out:
    evs__free(s->alloc, body);
    return rc;
}

int evs__pg_request_list(evs_store *s, const char *id, size_t id_len,
                         evs_request_listing *out)
{
    pg_conn *db;
    evs__db_reqs b = {0};
    pg_params p = {0};
    PGresult *r;
    int rc;

    db = evs__pg_get(s);
    evs__pg_bytes(&p, id, id_len);
    r = evs__pg_run(db, PG_REQ_LIST, &p, -1, "listing requests", &rc);
    if (r && PQntuples(r) == 0)
        rc = -ENOENT;
    for (int i = 0; r && rc == 0 && i < PQntuples(r); i++) {
        size_t rl, bl;
        const char *rq = evs__pg_col(r, i, 0, &rl);
        const char *body = evs__pg_col(r, i, 1, &bl);

        if (PQgetisnull(r, i, 0))
            continue; /* the execution, without requests */
        rc = evs__db_req_add(s, &b, id, id_len, rq, rl, body, bl);
    }
    PQclear(r);
    evs__pg_put(db);
    return evs__db_req_done(s, &b, rc, out);
}

int evs__pg_request_remove(evs_store *s, const char *id, size_t id_len,
                           const char *req_id)
{
    pg_conn *db;
    pg_params p = {0};
    int64_t rid;
    int rc;

    db = evs__pg_get(s);
    rc = evs__pg_exec_get(db, id, id_len, &rid, NULL, NULL, NULL);
    if (rc == -ENOENT) {
        rc = 0; /* gone with its execution */
    } else if (rc == 0) {
        evs__pg_i64(&p, rid);
        evs__pg_bytes(&p, req_id, EVS_REQUEST_ID_LEN);
        /* Not waited for: a request that comes back after a crash is
         * recognised by its id (store.h). */
        rc = evs__pg_do(db, PG_REQ_DEL, &p, 0, "removing a request", NULL);
    }
    evs__pg_put(db);
    return rc;
}

int evs__pg_request_stamp(evs_store *s, const char *id, size_t id_len,
                          uint64_t *ino, int64_t *ctime_ns)
{
    pg_conn *db;
    int64_t rid = 0, gen = 0;
    int rc;

    db = evs__pg_get(s);
    rc = evs__pg_exec_get(db, id, id_len, &rid, NULL, NULL, &gen);
    evs__pg_put(db);
    return evs__db_request_stamp(rc, rid, gen, ino, ctime_ns);
}

/* ------------------------------------------------------------------ */
/* Settings and statistics                                            */
/* ------------------------------------------------------------------ */

int evs__pg_settings_load(evs_store *s, evs_settings **out, evs_error_info *ei)
{
    pg_conn *db;
    PGresult *r;
    int rc;

    db = evs__pg_get(s);
    r = evs__pg_run(db, PG_SET_GET, NULL, -1, "reading the settings", &rc);
    if (r && PQntuples(r) == 1) {
        size_t n;
        const char *v = evs__pg_col(r, 0, 0, &n);
        rc = evs__settings_decode(s->alloc, v, n, out, ei);
    } else if (r) {
        rc = evs_settings_new(s->alloc, out); /* every key's default */
    }
    PQclear(r);
    evs__pg_put(db);
    return evs__error_rc(ei, rc);
}

int evs__pg_settings_save(evs_store *s, const evs_settings *set,
                          evs_error_info *ei)
{
    pg_conn *db;
    pg_params p = {0};
    char *buf = NULL;
    size_t len;
    int rc;

    if ((rc = evs__settings_encode(set, s->alloc, &buf, &len)) != 0)
        return evs__error_rc(ei, rc);
    evs__pg_bytes(&p, buf, len);
    db = evs__pg_get(s);
    /* Waited for whatever the durability mode, as the file is synced. */
    rc = evs__pg_do(db, PG_SET_PUT, &p, 1, "saving the settings", NULL);
    evs__pg_put(db);
    if (rc != 0)
        evs__error_set(ei, rc, "", "saving the settings: %s", evs_strerror(rc));
    evs__free(s->alloc, buf);
    return evs__error_rc(ei, rc);
}

int evs__pg_exec_usage(evs_store *s, const char *name, evs__usage *u)
{
    pg_conn *db;
    int rc;

    memset(u, 0, sizeof(*u));
    db = evs__pg_get(s);
    rc = evs__pg_exec_get(db, name, strlen(name), NULL, &u->events, &u->bytes,
                          NULL);
    evs__pg_put(db);
    return rc;
}
