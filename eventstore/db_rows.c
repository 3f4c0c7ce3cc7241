/*
 * db_rows.c: what the database backends (SQLite, PostgreSQL) share to
 * read a log back: chunks of rows of (sequence, offset, line) copied out
 * of the database, and the cursor and scan that check every line as a
 * file's line is checked: checksum, execution, sequence, byte offset and
 * append framing. Each backend brings its own fetch (evs__fetch_fn).
 * Also what they share beside: a snapshot's checks after decoding, a
 * request row's, and what a database has no part of (an inbox directory,
 * an archive).
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>

int evs__rows_push(evs_store *s, evs__rows *r, uint64_t seq, uint64_t off,
                   const void *p, size_t len)
{
    evs__row *w;
    int rc;

    if ((rc = EVS__GROW(s->alloc, &r->buf, &r->cap, r->used + len + 1)) ||
        (rc = EVS__GROW(s->alloc, &r->row, &r->rcap, r->n + 1)))
        return rc;
    w = &r->row[r->n++];
    w->seq = seq;
    w->off = off;
    w->pos = r->used;
    w->len = len;
    if (len)
        memcpy(r->buf + r->used, p, len);
    r->used += len;
    return 0;
}

void evs__rows_free(evs_store *s, evs__rows *r)
{
    evs__free(s->alloc, r->buf);
    evs__free(s->alloc, r->row);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ */
/* Cursors                                                            */
/* ------------------------------------------------------------------ */

typedef struct db_cursor {
    struct evs_cursor base;
    int64_t rid;
    evs__fetch_fn fetch;
    evs__rows rows;
    uint64_t to, next_off;
    evs__linecheck k;
} db_cursor;

static int set_damage(evs_error_info *info, const db_cursor *c, int code,
                      const char *kind, uint64_t off, const char *what)
{
    return evs__cursor_damage(info, c->base.log, c->k.next_seq, code, kind,
                              off, what);
}

int evs__dbc_open(evs_log *l, int64_t rid, evs__fetch_fn fetch, uint64_t from,
                  uint64_t to, evs_cursor **out, evs_error_info *info)
{
    evs_store *s = l->store;
    db_cursor *c;
    int rc;

    if (!(c = evs__calloc(s->alloc, sizeof(*c))))
        return -ENOMEM;
    c->base.ops = l->ops;
    c->base.log = l;
    c->rid = rid;
    c->fetch = fetch;
    c->to = to == 0 || to > l->last_seq ? l->last_seq : to;
    c->next_off = l->end;
    evs__linecheck_init(&c->k, s->alloc, from, from > 1);
    if (from <= c->to) {
        rc = fetch(s, rid, from, c->to, &c->rows);
        if (rc == 0 && c->rows.n && c->rows.row[0].seq == from)
            c->next_off = c->rows.row[0].off;
        else if (rc == 0)
            rc = set_damage(info, c, EVS_ECORRUPT, "sequence", l->end,
                            "log ends before the sequence expected");
        if (rc != 0) {
            evs__dbc_close(&c->base);
            return rc;
        }
    }
    *out = &c->base;
    return 0;
}

int evs__dbc_next(evs_cursor *cur, evs_event *ev, evs_span *raw,
                  evs_error_info *info)
{
    db_cursor *c = (db_cursor *)cur;
    const evs__row *w;
    const char *line;
    int rc;

    if (c->k.next_seq > c->to)
        return 0;
    if (c->rows.i == c->rows.n) {
        rc = c->fetch(cur->log->store, c->rid, c->k.next_seq, c->to,
                      &c->rows);
        if (rc != 0)
            return set_damage(info, c, rc, "", c->next_off, evs_strerror(rc));
    }
    if (c->rows.i == c->rows.n)
        return set_damage(info, c, EVS_ECORRUPT, "sequence", c->next_off,
                          "log ends before the sequence expected");
    w = &c->rows.row[c->rows.i];
    line = c->rows.buf + w->pos;
    if (w->seq != c->k.next_seq || w->off != c->next_off)
        return set_damage(info, c, EVS_ECORRUPT, "sequence", c->next_off,
                          "an event is missing");
    if ((rc = evs__linecheck_next(&c->k, cur->log, line, w->len, w->off, ev,
                                  info)) != 0)
        return rc;
    if (raw) {
        raw->ptr = line;
        raw->len = w->len;
    }
    c->rows.i++;
    c->next_off = w->off + w->len;
    return 1;
}

uint64_t evs__dbc_offset(const evs_cursor *cur)
{
    return ((const db_cursor *)cur)->next_off;
}

void evs__dbc_close(evs_cursor *cur)
{
    db_cursor *c = (db_cursor *)cur;
    evs_store *s = cur->log->store;

    evs__rows_free(s, &c->rows);
    evs__linecheck_free(&c->k);
    evs__free(s->alloc, c);
}

int evs__dbc_check_end(evs_log *l, int64_t rid, evs__fetch_fn fetch,
                       evs_error_info *info)
{
    evs_cursor *c = NULL;
    evs_event ev;
    int rc;

    if (l->last_seq == 0)
        return l->end == 0 ? 0 : EVS_ECORRUPT;
    rc = evs__dbc_open(l, rid, fetch, l->last_seq, l->last_seq, &c, info);
    if (rc == 0) {
        /* The last line may be inside an append: framing is the
         * cursor's to check over the whole log, not here. */
        rc = evs__dbc_next(c, &ev, NULL, info);
        if (rc == 1)
            rc = evs__dbc_offset(c) == l->end ? 0 : EVS_ECORRUPT;
        else if (rc == 0)
            rc = EVS_ECORRUPT;
        evs__dbc_close(c);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Scans                                                              */
/* ------------------------------------------------------------------ */

/* Reports one line that does not check out. */
static int scan_problem(evs_scan_fn fn, void *arg, int code, const char *kind,
                        const evs__row *w, uint64_t seq, const char *msg)
{
    evs_scan_item it;

    memset(&it, 0, sizeof(it));
    it.is_problem = 1;
    it.code = code;
    it.kind = kind;
    it.sequence = seq;
    it.offset = w->off;
    it.length = w->len;
    it.msg = msg;
    return fn(arg, &it);
}

int evs__db_scan(evs_store *s, const char *id, size_t id_len, int64_t rid,
                 uint64_t last, evs__fetch_fn fetch, evs_scan_fn fn, void *arg)
{
    evs_decoder dec;
    evs__rows rows;
    uint64_t want = 1;
    int rc = 0;

    memset(&rows, 0, sizeof(rows));
    evs_decoder_init(&dec, s->alloc);
    while (rc == 0 && want <= last) {
        if ((rc = fetch(s, rid, want, last, &rows)) != 0 || rows.n == 0)
            break;
        for (size_t i = 0; i < rows.n && rc == 0; i++) {
            const evs__row *w = &rows.row[i];
            const char *line = rows.buf + w->pos;
            evs_scan_item it;
            evs_event ev;
            int d;

            if (w->seq != want) {
                rc = scan_problem(fn, arg, EVS_ECORRUPT, "sequence", w, want,
                                  "events are missing before this one");
                want = w->seq;
                if (rc != 0)
                    break;
            }
            want++;
            d = evs_line_decode(&dec, line, w->len, 0, &ev, NULL);
            if (d == -ENOMEM) {
                rc = d;
                break;
            }
            if (d != 0) {
                rc = scan_problem(fn, arg, d == EVS_EFORMAT ? d : EVS_ECORRUPT,
                                  d == EVS_ECORRUPT  ? "checksum"
                                  : d == EVS_EFORMAT ? "format"
                                                     : "syntax",
                                  w, w->seq, "the line does not check out");
                continue;
            }
            if (!evs__span_eq(ev.execution_id, (evs_span){id, id_len}) ||
                ev.sequence != w->seq) {
                rc = scan_problem(fn, arg, EVS_ECORRUPT, "execution", w, w->seq,
                                  "the line is of another place");
                continue;
            }
            memset(&it, 0, sizeof(it));
            it.ev = &ev;
            it.raw.ptr = line;
            it.raw.len = w->len;
            it.sequence = w->seq;
            it.offset = w->off;
            it.length = w->len;
            rc = fn(arg, &it);
        }
    }
    evs__rows_free(s, &rows);
    evs_decoder_free(&dec);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Snapshots, requests, what a database has none of                   */
/* ------------------------------------------------------------------ */

int evs__db_snapshot_decode(const char *id, size_t id_len, char *buf,
                            size_t len, uint64_t last, unsigned flags,
                            evs_snapshot **out, evs_error_info *info)
{
    evs_snapshot *sn = NULL;
    int rc = evs__snapshot_decode_buf(buf, len, flags, &sn, info);

    if (rc != 0) {
        evs__snapshot_buf_free(buf);
        return rc;
    }
    if (!(flags & EVS_SNAPSHOT_STATE_RAW) && sn->state.len &&
        evs_json_check(sn->state.ptr, sn->state.len, 0, NULL, NULL, NULL) !=
            0) {
        rc = EVS_EPARSE;
        evs__error_set(info, rc, "syntax", "snapshot state is not JSON");
    } else if (!evs__span_eq(sn->id, (evs_span){id, id_len})) {
        rc = EVS_ECORRUPT;
        evs__error_set(info, rc, "execution",
                       "snapshot of %.*s names another execution", (int)id_len,
                       id);
    } else if (sn->last_event_seq > last) {
        rc = EVS_ESTALE;
        evs__error_set(info, rc, "stale",
                       "snapshot of %.*s is at sequence %llu but the log "
                       "ends at %llu; rebuild it from the log",
                       (int)id_len, id, (unsigned long long)sn->last_event_seq,
                       (unsigned long long)last);
        if (info)
            info->sequence = sn->last_event_seq;
    }
    if (rc != 0) {
        evs_snapshot_free(sn);
        return rc;
    }
    *out = sn;
    return 0;
}

int evs__db_request_ok(evs_store *s, const char *id, size_t id_len,
                       const char *rq, size_t rl, const char *b, size_t bl)
{
    /* Only what a post wrote is a request; anything else is damage,
     * said and never handed on. */
    if (rq && evs__request_id_valid(rq, rl) && bl > 0 && b[0] == '{' &&
        bl <= EVS__REQUEST_MAX &&
        evs_json_check(b, bl, 0, NULL, NULL, NULL) == 0)
        return 1;
    evs__logf(s, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = id, .err = EVS_ECORRUPT),
              "request %.*s of %.*s is not a request; left in place and not "
              "listed",
              (int)(rl < 64 ? rl : 64), rq ? rq : "", (int)id_len, id);
    return 0;
}

int evs__db_req_add(evs_store *s, evs__db_reqs *b, const char *id,
                    size_t id_len, const char *rq, size_t rl, const char *body,
                    size_t bl)
{
    evs_request *it;

    if (!evs__db_request_ok(s, id, id_len, rq, rl, body, bl))
        return 0;
    if (EVS__GROW(s->alloc, &b->items, &b->icap, b->count + 1) != 0 ||
        EVS__GROW(s->alloc, &b->mem, &b->mcap, b->used + rl + bl) != 0)
        return -ENOMEM;
    it = &b->items[b->count++];
    memcpy(b->mem + b->used, rq, rl);
    memcpy(b->mem + b->used + rl, body, bl);
    /* Offsets until the memory stops moving (evs__db_req_done). */
    it->id.ptr = (const char *)(uintptr_t)b->used;
    it->id.len = rl;
    it->body.ptr = (const char *)(uintptr_t)(b->used + rl);
    it->body.len = bl;
    it->posted_us = evs__request_time_us(rq);
    b->used += rl + bl;
    return 0;
}

int evs__db_req_done(evs_store *s, evs__db_reqs *b, int rc,
                     evs_request_listing *out)
{
    if (rc != 0) {
        evs__free(s->alloc, b->items);
        evs__free(s->alloc, b->mem);
        return rc;
    }
    for (size_t i = 0; i < b->count; i++) {
        b->items[i].id.ptr = b->mem + (uintptr_t)b->items[i].id.ptr;
        b->items[i].body.ptr = b->mem + (uintptr_t)b->items[i].body.ptr;
    }
    out->items = b->items;
    out->count = b->count;
    out->mem_ = b->mem;
    out->alloc_ = s->alloc;
    return 0;
}

int evs__db_request_dir(evs_store *s, const char *id, size_t id_len, char *buf,
                        size_t cap, int create)
{
    (void)s;
    (void)id;
    (void)id_len;
    (void)create;
    if (cap)
        buf[0] = '\0';
    return -ENOTSUP; /* no directory to watch: poll evs_request_changed */
}

int evs__db_archived_count(evs_store *s, int64_t *n)
{
    (void)s;
    *n = -1; /* archival is the file store's (evstore/archive.h) */
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writers' flushes, refreshes                                        */
/* ------------------------------------------------------------------ */

void evs__db_sync_open(evs__db_sync *y, evs_log *l)
{
    int wr = (l->flags & EVS_LOG_WRITE) != 0;

    l->durable_seq = wr ? 0 : l->last_seq;
    y->unsynced = wr && l->end > 0;
    y->last_sync_us = evs_now_us();
}

int evs__db_sync_wanted(const evs__db_sync *y, evs_store *s, unsigned flags,
                        size_t len)
{
    return !(flags & EVS_APPEND_NO_SYNC) &&
           (s->opts.durability == EVS_SYNC_FULL ||
            (s->opts.durability == EVS_SYNC_BATCH &&
             (y->unsynced + len >= s->opts.sync_bytes ||
              evs_now_us() - y->last_sync_us >=
                  (int64_t)s->opts.sync_interval_ms * 1000)));
}

static void flushed(evs__db_sync *y, evs_log *l)
{
    y->unsynced = 0;
    y->last_sync_us = evs_now_us();
    l->durable_seq = l->last_seq;
}

void evs__db_appended(evs__db_sync *y, evs_log *l, int sync, uint64_t expected,
                      size_t n, size_t len)
{
    l->end += len;
    l->last_seq = expected + n;
    if (sync)
        flushed(y, l);
    else
        y->unsynced += len;
}

int evs__db_close_unsynced(const evs__db_sync *y, evs_log *l)
{
    return (l->flags & EVS_LOG_WRITE) && !l->poisoned &&
           l->store->opts.durability == EVS_SYNC_BATCH && y->unsynced;
}

int evs__db_poison(evs_log *l, int rc)
{
    l->poisoned = rc;
    evs__logf(l->store, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = l->id, .err = rc),
              "%s; the log refuses every call until it is reopened",
              evs_strerror(rc));
    return rc;
}

int evs__db_snap_encode(evs_log *l, const evs_snapshot *snap,
                        evs_snapshot *sn, char **buf, size_t *len)
{
    *sn = *snap;
    sn->id.ptr = l->id;
    sn->id.len = l->id_len;
    if (sn->updated_at_us == 0)
        sn->updated_at_us = evs_now_us();
    return evs_snapshot_encode(sn, l->store->alloc, buf, len);
}

int evs__db_log_sync(evs_log *l, evs__db_sync *y, int (*flush)(evs_store *))
{
    int rc = 0;

    pthread_mutex_lock(&l->mu);
    if (l->poisoned) {
        rc = EVS_EPOISONED;
    } else if (y->unsynced || l->durable_seq != l->last_seq) {
        rc = flush(l->store);
        if (rc != 0)
            rc = evs__db_poison(l, rc);
        else
            flushed(y, l);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__db_log_refresh(evs_log *l, int64_t rid, evs__db_lookup_fn lookup)
{
    uint64_t last, end;
    int64_t r;
    int rc;

    if (l->flags & EVS_LOG_WRITE)
        return 0; /* a writer always knows its end */
    pthread_mutex_lock(&l->mu);
    rc = lookup(l->store, l->id, l->id_len, &r, &last, &end);
    if (rc == 0 && (r != rid || last < l->last_seq || end < l->end))
        rc = EVS_ECORRUPT; /* complete appends vanished */
    else if (rc == -ENOENT)
        rc = EVS_ECORRUPT; /* deleted under the reader */
    if (rc == 0) {
        l->last_seq = last;
        l->end = end;
        l->durable_seq = last;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__db_request_stamp(int rc, int64_t rid, int64_t gen, uint64_t *ino,
                          int64_t *ctime_ns)
{
    if (rc != 0 && rc != -ENOENT)
        return rc;
    /* The row and its counter: a deleted and re-created execution has
     * another row. */
    *ino = rc == 0 ? (uint64_t)rid : 0;
    *ctime_ns = rc == 0 ? gen : 0;
    return EVS__STAMP_EXACT;
}

int evs__db_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs__db_lookup_fn lookup, evs__fetch_fn fetch,
                     evs_scan_fn fn, void *arg)
{
    uint64_t last, end;
    int64_t rid;
    int rc = lookup(s, id, id_len, &rid, &last, &end);

    return rc != 0 ? rc
                   : evs__db_scan(s, id, id_len, rid, last, fetch, fn, arg);
}
