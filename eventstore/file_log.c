/*
 * file_log.c: the file backend's log: opening (finding the end of the log
 * from its last bytes, and cutting back a torn tail for a writer, but not
 * a damaged one: FORMAT.md §4, "The tail"), locking, atomic appends with
 * their durability, and refresh for readers.
 *
 * An append is one pwritev of complete lines. Every line of a multi-event
 * append carries "batch":[first,count], so whoever reads the log can tell
 * a complete append from one cut short by a crash (FORMAT.md, "Atomic
 * appends").
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/*
 * Reading a log backwards, line by line, through one buffer that holds
 * the file bytes [lo, hi): the last append of a log is checked with a
 * few large reads rather than one read per line.
 */
typedef struct backbuf {
    char *buf;
    size_t cap;
    uint64_t lo, hi;
} backbuf;

#define BACK_WINDOW ((size_t)64 << 10)

/*
 * Finds the line that ends at `end` (the byte at end-1 is its newline, or
 * the last byte of a fragment): *line and *start are its first byte, in
 * the buffer and in the file. Returns 0, EVS_ETOOBIG when there is no
 * newline within max_line bytes before `end`, or -errno.
 */
static int line_back(evs_store *s, int fd, backbuf *bb, uint64_t end,
                     const char **line, uint64_t *start)
{
    size_t want = BACK_WINDOW, got, n;
    uint64_t lo;
    int rc;

    for (;;) {
        if (bb->lo < end && end <= bb->hi) {
            size_t span = (size_t)(end - bb->lo);
            const char *nl = span > 1 ? memrchr(bb->buf, '\n', span - 1) : NULL;
            if (nl || bb->lo == 0) {
                *start = nl ? bb->lo + (uint64_t)(nl - bb->buf) + 1 : 0;
                *line = bb->buf + (*start - bb->lo);
                return 0;
            }
            if (span > s->opts.max_line)
                return EVS_ETOOBIG;
            if (want < 2 * span)
                want = 2 * span;
        }
        /* Read a window that ends at `end`, larger than before. */
        lo = end > want ? end - want : 0;
        n = (size_t)(end - lo);
        if ((rc = EVS__GROW(s->alloc, &bb->buf, &bb->cap, n)) != 0)
            return rc;
        rc = IO(s)->pread(CTX(s), fd, bb->buf, n, lo, &got);
        if (rc != 0)
            return rc;
        if (got != n)
            return -EIO; /* the file shrank under us */
        bb->lo = lo;
        bb->hi = end;
    }
}

int evs__find_tail(evs_store *s, int fd, uint64_t size, const char *id,
                   size_t id_len, evs__tail *t, evs_error_info *info)
{
    backbuf bb = {NULL, 0, 0, 0};
    const char *line;
    uint64_t e = size, ls, gs, ge;
    size_t skip;
    evs__line_pos pk, gp;
    int rc = 0, complete;

    memset(t, 0, sizeof(*t));
    while (e > 0) {
        rc = line_back(s, fd, &bb, e, &line, &ls);
        if (rc == EVS_ETOOBIG) {
            /* No newline within max_line: garbage, never a line. Step
             * back past it and keep looking. */
            e = e > s->opts.max_line ? e - s->opts.max_line : 0;
            rc = 0;
            continue;
        }
        if (rc != 0)
            goto out;
        if (line[e - ls - 1] != '\n') {
            e = ls; /* an unterminated fragment */
            continue;
        }
        rc =
            evs__line_peek_back(line, (size_t)(e - ls), id, id_len, &pk, &skip);
        if (rc == EVS_EFORMAT) {
            evs__error_set(info, rc, "format",
                           "log written in a newer format at offset %llu",
                           (unsigned long long)ls);
            if (info)
                info->offset = ls;
            goto out;
        }
        if (rc != 0) {
            rc = 0;
            e = ls;
            continue;
        }
        if (pk.seq != pk.first + pk.count - 1) {
            e = ls; /* part of an append that did not finish */
            continue;
        }
        /* A commit line: the append is complete if all its lines are. */
        complete = 1;
        ge = ls + skip;
        for (uint64_t want = pk.seq; want-- > pk.first;) {
            if (ge == 0) {
                complete = 0;
                break;
            }
            rc = line_back(s, fd, &bb, ge, &line, &gs);
            if (rc < 0 && rc != EVS_ETOOBIG)
                goto out;
            if (rc == 0 && line[ge - gs - 1] == '\n')
                rc = evs__line_peek_back(line, (size_t)(ge - gs), id, id_len,
                                         &gp, &skip);
            else
                rc = 1;
            if (rc != 0 || gp.seq != want || gp.first != pk.first ||
                gp.count != pk.count) {
                complete = 0;
                break;
            }
            ge = gs + skip;
        }
        rc = 0;
        if (complete) {
            if (ge == 0 && pk.first != 1) {
                rc = EVS_ECORRUPT;
                evs__error_set(info, rc, "sequence",
                               "log begins at sequence %llu, not 1",
                               (unsigned long long)pk.first);
                if (info)
                    info->offset = 0;
                goto out;
            }
            t->end = e;
            t->last_seq = pk.seq;
            break;
        }
        e = ls;
    }
    /* What follows the end, read forwards: torn or damaged (§4). */
    rc = evs__walk_tail(s, fd, size, id, id_len, t, NULL, NULL);
out:
    evs__free(s->alloc, bb.buf);
    return rc;
}

int evs__encode_append(evs_store *s, const char *id, size_t id_len,
                       const evs_event *events, size_t n, uint64_t first,
                       char **buf, size_t *cap, size_t *len,
                       evs_error_info *info)
{
    return evs__encode_append_flags(s, id, id_len, events, n, first, 0, buf,
                                    cap, len, info);
}

int evs__encode_append_flags(evs_store *s, const char *id, size_t id_len,
                             const evs_event *events, size_t n, uint64_t first,
                             unsigned line_flags, char **buf, size_t *cap,
                             size_t *len, evs_error_info *info)
{
    char uuid[EVS_UUID_LEN + 1];
    int64_t now = 0;
    size_t off = 0, ll, eoff;
    int rc;

    for (size_t i = 0; i < n; i++) {
        evs_event e = events[i];

        if (e.execution_id.len &&
            (e.execution_id.len != id_len ||
             memcmp(e.execution_id.ptr, id, id_len) != 0)) {
            evs__error_set(info, -EINVAL, "event",
                           "event %zu: execution_id is not this log's", i);
            return -EINVAL;
        }
        if (e.sequence && e.sequence != first + i) {
            evs__error_set(info, -EINVAL, "event",
                           "event %zu: sequence %llu, expected %llu", i,
                           (unsigned long long)e.sequence,
                           (unsigned long long)(first + i));
            return -EINVAL;
        }
        e.execution_id.ptr = id;
        e.execution_id.len = id_len;
        e.sequence = first + i;
        e.batch_first = n > 1 ? first : 0;
        e.batch_count = n > 1 ? n : 0;
        if (e.id.len == 0) {
            if ((rc = evs_uuid7(uuid)) != 0)
                return rc;
            e.id.ptr = uuid;
            e.id.len = EVS_UUID_LEN;
        }
        if (e.timestamp_us == 0) {
            if (!now)
                now = evs_now_us();
            e.timestamp_us = now;
        }
        rc = EVS__GROW(s->alloc, buf, cap, off + evs_line_encoded_max(&e));
        if (rc != 0)
            return rc;
        rc = evs__line_encode_flags(&e, *buf + off, *cap - off, &ll,
                                    line_flags);
        if (rc != 0) {
            /* Say why: the encoder only knows that something is off. */
            const char *why = "bad field";
            if (e.event_type.len == 0)
                why = "event_type is empty";
            else if (e.id.len == 0)
                why = "id is empty";
            else if (evs_json_check(e.data.ptr, e.data.len, 0, NULL, NULL,
                                    &eoff) != 0 &&
                     e.data.len)
                why = "data is not valid JSON";
            else if (evs_time_format(e.timestamp_us, uuid) != 0)
                why = "timestamp out of range";
            else
                why = "a string field is not valid UTF-8";
            evs__error_set(info, -EINVAL, "event", "event %zu: %s", i, why);
            return -EINVAL;
        }
        if (ll > s->opts.max_line) {
            evs__error_set(info, EVS_ETOOBIG, "event",
                           "event %zu: line of %zu bytes exceeds the "
                           "maximum of %zu",
                           i, ll, s->opts.max_line);
            return EVS_ETOOBIG;
        }
        off += ll;
    }
    *len = off;
    return 0;
}

/* Saves the bytes [from, size) of the log to a file beside it before they
 * are cut, so recovery never destroys anything. */
static int save_cut(evs_store *s, file_log *fl, uint64_t from, uint64_t size,
                    char *name, size_t name_cap)
{
    char sfx[17];
    char *buf = NULL;
    size_t cap = 0, got, n = (size_t)(size - from);
    struct iovec iov;
    int fd = -1, rc;

    if ((rc = evs__rand_suffix(sfx)) != 0)
        return rc;
    snprintf(name, name_cap, "cut-%llu-%.8s.jsonl", (unsigned long long)from,
             sfx);
    if ((rc = EVS__GROW(s->alloc, &buf, &cap, n)) != 0)
        return rc;
    rc = IO(s)->pread(CTX(s), fl->fd, buf, n, from, &got);
    if (rc == 0 && got != n)
        rc = -EIO;
    if (rc == 0)
        rc = IO(s)->openat(CTX(s), fl->dirfd, name,
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0600, &fd);
    if (rc == 0) {
        iov.iov_base = buf;
        iov.iov_len = n;
        rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0);
        if (rc == 0)
            rc = IO(s)->fsync(CTX(s), fd);
        IO(s)->close(CTX(s), fd);
        if (rc != 0)
            IO(s)->unlinkat(CTX(s), fl->dirfd, name, 0);
    }
    if (rc == 0)
        rc = IO(s)->fsync(CTX(s), fl->dirfd);
    evs__free(s->alloc, buf);
    return rc;
}

int evs__scan_prefix(evs_store *s, int fd, uint64_t size, const char *id,
                     size_t id_len, evs__tail *t);

/* Copies what follows the end of the log into the caller's report. */
static void report_tail(const evs__tail *t, evs_recovery_info *rec)
{
    if (!rec)
        return;
    rec->last_seq = t->last_seq;
    rec->end_offset = t->end;
    rec->tail_bytes = t->size > t->end ? t->size - t->end : 0;
    rec->tail_first = rec->tail_bytes ? t->app_first : 0;
    rec->tail_count = rec->tail_bytes ? t->app_count : 0;
    rec->tail_lines = t->lines_after;
    rec->tail_damaged = t->damaged;
    rec->bad_sequence = t->bad_seq;
    rec->bad_offset = t->bad_offset;
    rec->bad_kind = t->bad_kind;
}

/*
 * A damaged last append is not cut by the default recovery: no crash
 * leaves such bytes, so they may be an acknowledged append that was
 * damaged later (FORMAT.md §4, "The tail"). Says where and returns
 * EVS_ECORRUPT.
 */
static int refuse_damaged(evs_store *s, const char *id, const evs__tail *t,
                          evs_error_info *info)
{
    int rc = EVS_ECORRUPT;

    evs__error_set(info, rc, t->bad_kind,
                   "%s: the last append (%llu events from sequence %llu) "
                   "is damaged at sequence %llu, byte offset %llu (%s): "
                   "not a torn write, so it is not cut; point-in-time "
                   "recovery cuts it",
                   id, (unsigned long long)t->app_count,
                   (unsigned long long)t->app_first,
                   (unsigned long long)t->bad_seq,
                   (unsigned long long)t->bad_offset, t->bad_kind);
    if (info) {
        info->sequence = t->bad_seq;
        info->offset = t->bad_offset;
    }
    evs__logf(s, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = id, .sequence = t->bad_seq,
                             .err = rc),
              "the last append (sequences %llu..%llu) is damaged at "
              "sequence %llu, byte offset %llu (%s); it is not a torn "
              "write and is left in place",
              (unsigned long long)t->app_first,
              (unsigned long long)(t->app_first + t->app_count - 1),
              (unsigned long long)t->bad_seq,
              (unsigned long long)t->bad_offset, t->bad_kind);
    return rc;
}

static void free_log(evs_store *s, file_log *fl)
{
    if (fl->fd >= 0)
        IO(s)->close(CTX(s), fl->fd);
    if (fl->dirfd >= 0)
        IO(s)->close(CTX(s), fl->dirfd);
    evs_decoder_free(&fl->dec);
    evs__free(s->alloc, fl->wbuf);
    evs__free(s->alloc, fl->rbuf);
    pthread_mutex_destroy(&fl->base.mu);
    evs__free(s->alloc, fl);
}

int evs__file_log_open(evs_store *s, const char *id, size_t id_len,
                       unsigned flags, evs_log **out, evs_recovery_info *rec,
                       evs_error_info *info)
{
    file_log *fl;
    evs_stat st;
    evs__tail t;
    int rc, wr = (flags & EVS_LOG_WRITE) != 0;

    fl = evs__calloc(s->alloc, sizeof(*fl));
    if (!fl)
        return -ENOMEM;
    fl->fd = -1;
    fl->dirfd = -1;
    fl->base.ops = s->ops;
    fl->base.store = s;
    fl->base.flags = flags;
    memcpy(fl->base.id, id, id_len);
    fl->base.id[id_len] = '\0';
    fl->base.id_len = id_len;
    pthread_mutex_init(&fl->base.mu, NULL);
    evs_decoder_init(&fl->dec, s->alloc);
    evs__error_set_id(info, id, id_len);

    if ((rc = evs__open_exec_dir(s, fl->base.id, &fl->dirfd)) != 0)
        goto fail;
    rc = evs__open_regular(s, fl->dirfd, EVS__LOG_NAME, wr ? O_RDWR : O_RDONLY,
                           0, &fl->fd, &st);
    if (rc != 0) {
        evs__error_refused(info, rc, fl->base.id, EVS__LOG_NAME);
        goto fail;
    }
    if (wr) {
        rc = IO(s)->lock(CTX(s), fl->fd,
                         (flags & EVS_LOG_WAIT) ? EVS_LOCK_WAIT : EVS_LOCK_TRY);
        if (rc == -EAGAIN) {
            rc = EVS_ELOCKED;
            evs__error_set(info, rc, "lock",
                           "execution %s is locked by another writer",
                           fl->base.id);
        }
        if (rc != 0)
            goto fail;
    }
    /* A writer's size is read again under the lock: another writer may
     * have appended between the open and the lock. */
    if (wr && (rc = IO(s)->fstat(CTX(s), fl->fd, &st)) != 0)
        goto fail;
    if (wr && s->opts.recovery == EVS_RECOVER_POINT_IN_TIME)
        rc = evs__scan_prefix(s, fl->fd, st.size, id, id_len, &t);
    else
        rc = evs__find_tail(s, fl->fd, st.size, id, id_len, &t, info);
    if (rc != 0)
        goto fail;
    report_tail(&t, rec);
    if (wr && t.damaged && s->opts.recovery != EVS_RECOVER_POINT_IN_TIME) {
        rc = refuse_damaged(s, fl->base.id, &t, info);
        goto fail;
    }
    if (wr && t.end < st.size) {
        char name[64];
        rc = save_cut(s, fl, t.end, st.size, name, sizeof(name));
        if (rc == 0)
            rc = IO(s)->ftruncate(CTX(s), fl->fd, t.end);
        if (rc == 0)
            rc = IO(s)->fdatasync(CTX(s), fl->fd);
        if (rc != 0)
            goto fail;
        evs__logf(s, EVS_LOG_WARN,
                  EVS_LOG_FIELDS(.execution = fl->base.id,
                                 .sequence = t.app_first),
                  "cut %s tail of %llu bytes at offset %llu, removing "
                  "sequences %llu..%llu (an unfinished append of %llu "
                  "events, %llu of its lines complete); saved as %s",
                  t.damaged ? "a damaged" : "a torn",
                  (unsigned long long)(st.size - t.end),
                  (unsigned long long)t.end, (unsigned long long)t.app_first,
                  (unsigned long long)(t.app_first + t.app_count - 1),
                  (unsigned long long)t.app_count,
                  (unsigned long long)t.lines_after, name);
        if (rec) {
            rec->cut_bytes = st.size - t.end;
            rec->cut_offset = t.end;
            rec->cut_events = t.lines_after;
            snprintf(rec->saved_as, sizeof(rec->saved_as), "%s", name);
        }
    }
    fl->tail = t;
    fl->base.end = t.end;
    fl->base.last_seq = t.last_seq;
    /* What the log holds at open was written by someone else, maybe
     * without a sync (EVS_SYNC_NONE, or a writer killed between its
     * write and its fdatasync): a writer's first sync covers it, and the
     * directory entries too (a creation without syncs). Until then it is
     * not called durable. */
    if (wr) {
        fl->unsynced = t.end > 0;
        fl->names_unsynced = 1;
        fl->base.durable_seq = 0;
    } else {
        fl->base.durable_seq = t.last_seq;
    }
    fl->last_sync_us = evs_now_us();
    if (rec) {
        rec->last_seq = t.last_seq;
        rec->end_offset = t.end;
    }
    *out = &fl->base;
    return 0;
fail:
    if (info && info->code == 0)
        evs__error_set(info, rc, "", "opening the log of %s: %s", fl->base.id,
                       evs_strerror(rc));
    free_log(s, fl);
    return rc;
}

void evs__file_log_close(evs_log *l)
{
    file_log *fl = (file_log *)l;
    evs_store *s = l->store;

    if ((l->flags & EVS_LOG_WRITE) && !l->poisoned &&
        s->opts.durability == EVS_SYNC_BATCH && fl->unsynced) {
        if (IO(s)->fdatasync(CTX(s), fl->fd) != 0)
            evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = l->id),
                      "sync at close failed; appends since the last sync "
                      "may be lost on a power failure");
    }
    /* Closing the descriptor releases the OFD lock. */
    free_log(s, fl);
}

/* Marks the log failed and takes back bytes no caller was told about. */
static int poison(file_log *fl, int rc)
{
    evs_store *s = fl->base.store;

    fl->base.poisoned = rc;
    IO(s)->ftruncate(CTX(s), fl->fd, fl->base.end);
    evs__logf(s, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = fl->base.id, .err = rc),
              "%s; the log refuses every call until it is reopened",
              evs_strerror(rc));
    return rc;
}

/* A retried append: do the events already in the log carry these ids?
 * Through the backend's own cursor, so that every backend shares it. */
static int same_ids(evs_log *l, const evs_event *ev, size_t n, uint64_t first)
{
    evs_cursor *c;
    evs_event got;
    int rc, same = 1;

    for (size_t i = 0; i < n; i++)
        if (ev[i].id.len == 0)
            return 0;
    if (l->ops->cursor_open(l, first, first + n - 1, &c, NULL))
        return 0;
    for (size_t i = 0; i < n && same; i++) {
        rc = l->ops->cursor_next(c, &got, NULL, NULL);
        same = rc == 1 && evs__span_eq(got.id, ev[i].id);
    }
    l->ops->cursor_close(c);
    return same;
}

int evs__append_prepare(evs_log *l, const evs_event *ev, size_t n,
                        uint64_t expected, unsigned flags, char **buf,
                        size_t *cap, size_t *len, evs_error_info *info)
{
    evs_store *s = l->store;
    int rc;

    evs__error_set_id(info, l->id, l->id_len);
    if (l->poisoned)
        return EVS_EPOISONED;
    if (l->released) {
        evs__error_set(info, EVS_EREADONLY, "lease",
                       "%s: this writer gave the execution up with its last "
                       "append",
                       l->id);
        return EVS_EREADONLY;
    }
    if (expected != l->last_seq) {
        if (expected < l->last_seq && l->last_seq - expected >= n &&
            same_ids(l, ev, n, expected + 1))
            return 1; /* already written by an earlier try */
        evs__error_set(info, EVS_ECONFLICT, "sequence",
                       "append expects last sequence %llu but the log "
                       "ends at %llu",
                       (unsigned long long)expected,
                       (unsigned long long)l->last_seq);
        if (info)
            info->sequence = expected + 1;
        return EVS_ECONFLICT;
    }
    /* The recorder's data is checked already (EVS__APPEND_DATA_COMPACT). */
    rc = evs__encode_append_flags(
        s, l->id, l->id_len, ev, n, expected + 1,
        flags & EVS__APPEND_DATA_COMPACT ? EVS__LINE_DATA_COMPACT : 0, buf,
        cap, len, info);
    if (rc != 0)
        return rc;
    /* Two comparisons on the hot path; the rest only past the limit. */
    if (l->last_seq + n > s->opts.max_events ||
        l->end + *len > s->opts.max_bytes)
        return evs__past_limit(l, ev, n, *len, info);
    return 0;
}

/* a + b, at most UINT64_MAX (a limit of EVS_LIMIT_NONE plus the
 * reserve stays none). */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * The hard limit (store.h, "History limits"), once the quick comparison
 * in the append found the append past it: refused with EVS_ELIMIT unless
 * its last event ends the execution and it stays within the reserve.
 */
int evs__past_limit(evs_log *l, const evs_event *ev, size_t n, size_t len,
                    evs_error_info *info)
{
    const evs_store_opts *o = &l->store->opts;
    uint64_t events = l->last_seq + n, bytes = l->end + len;
    uint64_t max_ev = o->max_events, max_b = o->max_bytes;

    if (evs_event_type_is_terminal(ev[n - 1].event_type)) {
        max_ev = add_sat(max_ev, EVS_LIMIT_RESERVE_EVENTS);
        max_b = add_sat(max_b, EVS_LIMIT_RESERVE_BYTES);
    }
    if (events > max_ev)
        evs__error_set(info, EVS_ELIMIT, "limit",
                       "execution %s: an append of %zu events would take its "
                       "history to %llu events, past its limit of %llu",
                       l->id, n, (unsigned long long)events,
                       (unsigned long long)o->max_events);
    else if (bytes > max_b)
        evs__error_set(info, EVS_ELIMIT, "limit",
                       "execution %s: an append of %zu bytes would take its "
                       "history to %llu bytes, past its limit of %llu",
                       l->id, len, (unsigned long long)bytes,
                       (unsigned long long)o->max_bytes);
    else
        return 0;
    if (info)
        info->sequence = l->last_seq + 1;
    /* Said to the log hook too, for the recorder's callers, whose flush
     * returns only the code. */
    evs__logf(l->store, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = l->id, .sequence = l->last_seq + 1,
                             .err = EVS_ELIMIT),
              "append refused at its history limit (%llu events, %llu "
              "bytes)",
              (unsigned long long)o->max_events,
              (unsigned long long)o->max_bytes);
    return EVS_ELIMIT;
}

int evs__file_log_append(evs_log *l, const evs_event *ev, size_t n,
                         uint64_t expected, unsigned flags,
                         evs_error_info *info)
{
    file_log *fl = (file_log *)l;
    evs_store *s = l->store;
    struct iovec iov;
    size_t len;
    int rc;

    pthread_mutex_lock(&l->mu);
    rc = evs__append_prepare(l, ev, n, expected, flags, &fl->wbuf, &fl->wcap,
                             &len, info);
    if (rc != 0) {
        rc = rc == 1 ? 0 : rc;
        goto out;
    }
    iov.iov_base = fl->wbuf;
    iov.iov_len = len;
    rc = IO(s)->pwritev(CTX(s), fl->fd, &iov, 1, l->end);
    if (rc != 0) {
        rc = poison(fl, rc);
        goto out;
    }
    fl->unsynced += len;
    /* EVS_APPEND_NO_SYNC: durable with the next synced append or
     * evs_log_sync. */
    if (!(flags & EVS_APPEND_NO_SYNC) &&
        (s->opts.durability == EVS_SYNC_FULL ||
         (s->opts.durability == EVS_SYNC_BATCH &&
          (fl->unsynced >= s->opts.sync_bytes ||
           evs_now_us() - fl->last_sync_us >=
               (int64_t)s->opts.sync_interval_ms * 1000)))) {
        rc = IO(s)->fdatasync(CTX(s), fl->fd);
        if (rc != 0) {
            rc = poison(fl, rc);
            goto out;
        }
        fl->unsynced = 0;
        fl->last_sync_us = evs_now_us();
        l->durable_seq = expected + n;
    }
    l->end += len;
    l->last_seq = expected + n;
out:
    if (rc != 0 && info && info->code == 0)
        evs__error_set(info, rc, "", "append to %s: %s", l->id,
                       evs_strerror(rc));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__file_log_sync(evs_log *l)
{
    file_log *fl = (file_log *)l;
    evs_store *s = l->store;
    int rc = 0;

    pthread_mutex_lock(&l->mu);
    if (l->poisoned) {
        rc = EVS_EPOISONED;
    } else if (fl->unsynced || fl->names_unsynced) {
        rc = IO(s)->fdatasync(CTX(s), fl->fd);
        /* The first explicit sync also makes the names durable: the
         * execution's entry in the store and the log's in it. */
        if (rc == 0 && fl->names_unsynced &&
            (rc = IO(s)->fsync(CTX(s), fl->dirfd)) == 0 &&
            (rc = IO(s)->fsync(CTX(s), s->dirfd)) == 0)
            fl->names_unsynced = 0;
        if (rc != 0) {
            rc = poison(fl, rc);
        } else {
            fl->unsynced = 0;
            fl->last_sync_us = evs_now_us();
            l->durable_seq = l->last_seq;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__file_log_refresh(evs_log *l)
{
    file_log *fl = (file_log *)l;
    evs_store *s = l->store;
    evs_stat st;
    evs__tail t;
    int rc;

    if (l->flags & EVS_LOG_WRITE)
        return 0; /* a writer always knows its end */
    pthread_mutex_lock(&l->mu);
    rc = IO(s)->fstat(CTX(s), fl->fd, &st);
    if (rc == 0 && st.size != l->end) {
        rc = evs__find_tail(s, fl->fd, st.size, l->id, l->id_len, &t, NULL);
        if (rc == 0 && t.end < l->end)
            rc = EVS_ECORRUPT; /* complete appends vanished */
        if (rc == 0) {
            fl->tail = t;
            l->end = t.end;
            l->last_seq = t.last_seq;
            l->durable_seq = t.last_seq;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs__log_peek_last(evs_store *s, const char *id, size_t id_len,
                       uint64_t *last_seq)
{
    evs_log *l;
    int rc = evs__file_log_open(s, id, id_len, 0, &l, NULL, NULL);

    if (rc != 0)
        return rc;
    *last_seq = l->last_seq;
    evs__file_log_close(l);
    return 0;
}
