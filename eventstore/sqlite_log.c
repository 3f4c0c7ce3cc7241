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
/* Reading lines in chunks                                            */
/* ------------------------------------------------------------------ */

/* A chunk of rows of the events table, copied out so that no statement
 * stays active between calls (the connection is shared). */
typedef struct sq_row {
    uint64_t seq, off;
    size_t pos, len; /* in sq_rows.buf */
} sq_row;

typedef struct sq_rows {
    char *buf;
    size_t cap, used;
    sq_row *row;
    size_t rcap, n, i;
} sq_rows;

#define CHUNK_ROWS 256
#define CHUNK_BYTES ((size_t)1 << 20)

/* Reads the rows of execution rid from sequence `from` to `to`, at most
 * a chunk's worth, into r (replacing what it held). */
static int fetch(evs_store *s, int64_t rid, uint64_t from, uint64_t to,
                 sq_rows *r)
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
    sqlite3_bind_int(st, 4, CHUNK_ROWS);
    while (r->used < CHUNK_BYTES && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        sq_row *w;

        if ((rc = EVS__GROW(s->alloc, &r->buf, &r->cap, r->used + len + 1)) ||
            (rc = EVS__GROW(s->alloc, &r->row, &r->rcap, r->n + 1)))
            break;
        w = &r->row[r->n++];
        w->seq = (uint64_t)sqlite3_column_int64(st, 0);
        w->off = (uint64_t)sqlite3_column_int64(st, 1);
        w->pos = r->used;
        w->len = len;
        if (len)
            memcpy(r->buf + r->used, p, len);
        r->used += len;
    }
    if (rc == 0 && r->used < CHUNK_BYTES && src != SQLITE_DONE)
        rc = evs__sq_err(s, src, "reading events");
    sqlite3_reset(st);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static void rows_free(evs_store *s, sq_rows *r)
{
    evs__free(s->alloc, r->buf);
    evs__free(s->alloc, r->row);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ */
/* Cursors                                                            */
/* ------------------------------------------------------------------ */

typedef struct sq_cursor {
    struct evs_cursor base;
    sq_rows rows;
    uint64_t next_seq, to, next_off;
    uint64_t grp_first, grp_end; /* the append being read; grp_end 0: none */
    int mid_group_ok;            /* the first line may be inside an append */
    evs_decoder dec;
} sq_cursor;

static int set_damage(evs_error_info *info, const sq_cursor *c, int code,
                      const char *kind, uint64_t off, const char *what)
{
    evs__error_set(info, code, kind,
                   "%s: %s at sequence %llu, byte offset %llu", c->base.log->id,
                   what, (unsigned long long)c->next_seq,
                   (unsigned long long)off);
    if (info) {
        evs__error_set_id(info, c->base.log->id, c->base.log->id_len);
        info->sequence = c->next_seq;
        info->offset = off;
    }
    return code;
}

int evs__sq_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                        evs_cursor **out, evs_error_info *info)
{
    sq_log *ql = (sq_log *)l;
    evs_store *s = l->store;
    sq_cursor *c;
    int rc;

    if (!(c = evs__calloc(s->alloc, sizeof(*c))))
        return -ENOMEM;
    c->base.ops = l->ops;
    c->base.log = l;
    c->next_seq = from;
    c->to = to == 0 || to > l->last_seq ? l->last_seq : to;
    c->mid_group_ok = from > 1;
    c->next_off = l->end;
    evs_decoder_init(&c->dec, s->alloc);
    if (from <= c->to) {
        rc = fetch(s, ql->rid, from, c->to, &c->rows);
        if (rc == 0 && c->rows.n && c->rows.row[0].seq == from)
            c->next_off = c->rows.row[0].off;
        else if (rc == 0)
            rc = set_damage(info, c, EVS_ECORRUPT, "sequence", l->end,
                            "log ends before the sequence expected");
        if (rc != 0) {
            evs__sq_cursor_close(&c->base);
            return rc;
        }
    }
    *out = &c->base;
    return 0;
}

int evs__sq_cursor_next(evs_cursor *cur, evs_event *ev, evs_span *raw,
                        evs_error_info *info)
{
    sq_cursor *c = (sq_cursor *)cur;
    evs_log *l = cur->log;
    evs_store *s = l->store;
    const sq_row *w;
    const char *line;
    int rc;

    if (c->next_seq > c->to)
        return 0;
    if (c->rows.i == c->rows.n) {
        rc = fetch(s, ((sq_log *)l)->rid, c->next_seq, c->to, &c->rows);
        if (rc != 0)
            return set_damage(info, c, rc, "", c->next_off, evs_strerror(rc));
    }
    if (c->rows.i == c->rows.n)
        return set_damage(info, c, EVS_ECORRUPT, "sequence", c->next_off,
                          "log ends before the sequence expected");
    w = &c->rows.row[c->rows.i];
    line = c->rows.buf + w->pos;
    if (w->seq != c->next_seq || w->off != c->next_off)
        return set_damage(info, c, EVS_ECORRUPT, "sequence", c->next_off,
                          "an event is missing");
    rc = evs_line_decode(&c->dec, line, w->len, 0, ev, NULL);
    if (rc == -ENOMEM) {
        evs__error_set(info, rc, "", "out of memory");
        return rc;
    }
    if (rc != 0 || w->len == 0 || line[w->len - 1] != '\n')
        return set_damage(info, c, rc == EVS_EFORMAT ? rc : EVS_ECORRUPT,
                          rc == EVS_ECORRUPT  ? "checksum"
                          : rc == EVS_EFORMAT ? "format"
                                              : "syntax",
                          w->off,
                          rc == EVS_ECORRUPT  ? "checksum mismatch"
                          : rc == EVS_EFORMAT ? "newer format version"
                                              : "malformed line");
    if (!evs__span_eq(ev->execution_id, (evs_span){l->id, l->id_len}))
        return set_damage(info, c, EVS_ECORRUPT, "execution", w->off,
                          "line of another execution");
    if (ev->sequence != c->next_seq)
        return set_damage(info, c, EVS_ECORRUPT, "sequence", w->off,
                          "sequence out of order");
    if (c->grp_end >= ev->sequence) {
        if (ev->batch_first != c->grp_first)
            return set_damage(info, c, EVS_ECORRUPT, "framing", w->off,
                              "append cut short before this line");
    } else if (ev->batch_first != ev->sequence && !c->mid_group_ok) {
        return set_damage(info, c, EVS_ECORRUPT, "framing", w->off,
                          "line of an append whose start is missing");
    }
    c->mid_group_ok = 0;
    if (ev->batch_count > 1) {
        c->grp_first = ev->batch_first;
        c->grp_end = ev->batch_first + ev->batch_count - 1;
    }
    if (raw) {
        raw->ptr = line;
        raw->len = w->len;
    }
    c->rows.i++;
    c->next_seq++;
    c->next_off = w->off + w->len;
    return 1;
}

uint64_t evs__sq_cursor_offset(const evs_cursor *cur)
{
    return ((const sq_cursor *)cur)->next_off;
}

void evs__sq_cursor_close(evs_cursor *cur)
{
    sq_cursor *c = (sq_cursor *)cur;
    evs_store *s = cur->log->store;

    rows_free(s, &c->rows);
    evs_decoder_free(&c->dec);
    evs__free(s->alloc, c);
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

/* A writer's check of the log's end: its last line is there, checks out
 * and ends where the row says the log ends. Damage is never accepted. */
static int check_end(sq_log *ql, evs_error_info *info)
{
    evs_log *l = &ql->base;
    evs_cursor *c = NULL;
    evs_event ev;
    int rc;

    if (l->last_seq == 0)
        return l->end == 0 ? 0 : EVS_ECORRUPT;
    rc = evs__sq_cursor_open(l, l->last_seq, l->last_seq, &c, info);
    if (rc == 0) {
        /* The last line may be inside an append: framing is the
         * cursor's to check over the whole log, not here. */
        rc = evs__sq_cursor_next(c, &ev, NULL, info);
        if (rc == 1)
            rc = evs__sq_cursor_offset(c) == l->end ? 0 : EVS_ECORRUPT;
        else if (rc == 0)
            rc = EVS_ECORRUPT;
        evs__sq_cursor_close(c);
    }
    return rc;
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
    if (rc == 0 && wr && (rc = check_end(ql, info)) != 0 && info &&
        info->code == 0)
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
    /* A writer's first sync covers what the log held at open, as with
     * files (store.h, evs_log_durable_seq). */
    ql->base.durable_seq = wr ? 0 : ql->base.last_seq;
    ql->unsynced = wr && ql->base.end > 0;
    ql->last_sync_us = evs_now_us();
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

    if ((l->flags & EVS_LOG_WRITE) && !l->poisoned &&
        s->opts.durability == EVS_SYNC_BATCH && ql->unsynced &&
        sync_all(s) != 0)
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = l->id),
                  "sync at close failed; appends since the last sync "
                  "may be lost on a power failure");
    /* Closing the lock's descriptor releases it. */
    free_log(s, ql);
}

/* ------------------------------------------------------------------ */
/* Appends                                                            */
/* ------------------------------------------------------------------ */

static int poison(sq_log *ql, int rc)
{
    ql->base.poisoned = rc;
    evs__logf(ql->base.store, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = ql->base.id, .err = rc),
              "%s; the log refuses every call until it is reopened",
              evs_strerror(rc));
    return rc;
}

int evs__sq_log_append(evs_log *l, const evs_event *ev, size_t n,
                       uint64_t expected, unsigned flags, evs_error_info *info)
{
    sq_log *ql = (sq_log *)l;
    evs_store *s = l->store;
    sq_store *q = evs__sq(s);
    size_t len;
    int rc, sync;

    pthread_mutex_lock(&l->mu);
    rc = evs__append_prepare(l, ev, n, expected, flags, &ql->wbuf, &ql->wcap,
                             &len, info);
    if (rc != 0) {
        rc = rc == 1 ? 0 : rc;
        goto out;
    }
    /* FULL syncs every commit; BATCH the commit that finds a batch's
     * worth of bytes or time since the last sync; NONE none. */
    sync = !(flags & EVS_APPEND_NO_SYNC) &&
           (s->opts.durability == EVS_SYNC_FULL ||
            (s->opts.durability == EVS_SYNC_BATCH &&
             (ql->unsynced + len >= s->opts.sync_bytes ||
              evs_now_us() - ql->last_sync_us >=
                  (int64_t)s->opts.sync_interval_ms * 1000)));
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_begin(s, sync);
    if (rc == 0)
        rc = evs__sq_add_lines(s, ql->rid, l->last_seq, l->end, ql->wbuf, len,
                               n);
    rc = evs__sq_end(s, rc);
    pthread_mutex_unlock(&q->mu);
    if (rc != 0) {
        /* The transaction is rolled back: nothing of it is in the log.
         * The handle refuses further calls, as a file's does. */
        rc = poison(ql, rc);
        goto out;
    }
    l->end += len;
    l->last_seq = expected + n;
    if (sync) {
        ql->unsynced = 0;
        ql->last_sync_us = evs_now_us();
        l->durable_seq = l->last_seq;
    } else {
        ql->unsynced += len;
    }
out:
    if (rc != 0 && info && info->code == 0)
        evs__error_set(info, rc, "", "append to %s: %s", l->id,
                       evs_strerror(rc));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__sq_log_sync(evs_log *l)
{
    sq_log *ql = (sq_log *)l;
    int rc = 0;

    pthread_mutex_lock(&l->mu);
    if (l->poisoned) {
        rc = EVS_EPOISONED;
    } else if (ql->unsynced || l->durable_seq != l->last_seq) {
        rc = sync_all(l->store);
        if (rc != 0) {
            rc = poison(ql, rc);
        } else {
            ql->unsynced = 0;
            ql->last_sync_us = evs_now_us();
            l->durable_seq = l->last_seq;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__sq_log_refresh(evs_log *l)
{
    sq_log *ql = (sq_log *)l;
    evs_store *s = l->store;
    sq_store *q = evs__sq(s);
    uint64_t last, end;
    int64_t rid;
    int rc;

    if (l->flags & EVS_LOG_WRITE)
        return 0; /* a writer always knows its end */
    pthread_mutex_lock(&l->mu);
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, l->id, l->id_len, &rid, &last, &end, NULL);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0 && (rid != ql->rid || last < l->last_seq || end < l->end))
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

/* ------------------------------------------------------------------ */
/* Scans                                                              */
/* ------------------------------------------------------------------ */

/* Reports one line that does not check out. */
static int scan_problem(evs_scan_fn fn, void *arg, int code, const char *kind,
                        const sq_row *w, uint64_t seq, const char *msg)
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

int evs__sq_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs_scan_fn fn, void *arg)
{
    sq_store *q = evs__sq(s);
    evs_decoder dec;
    sq_rows rows;
    uint64_t last, want = 1;
    int64_t rid;
    int rc;

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, &last, NULL, NULL);
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        return rc;
    memset(&rows, 0, sizeof(rows));
    evs_decoder_init(&dec, s->alloc);
    while (rc == 0 && want <= last) {
        if ((rc = fetch(s, rid, want, last, &rows)) != 0 || rows.n == 0)
            break;
        for (size_t i = 0; i < rows.n && rc == 0; i++) {
            const sq_row *w = &rows.row[i];
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
                rc = scan_problem(fn, arg, EVS_ECORRUPT, "execution", w,
                                  w->seq, "the line is of another place");
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
    rows_free(s, &rows);
    evs_decoder_free(&dec);
    return rc;
}
