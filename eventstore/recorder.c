/*
 * recorder.c: buffered, sequenced event recording on a writer's log.
 *
 * Each event gets its id and timestamp when it is recorded, not when it is
 * flushed, so a flush that is retried after an error carries the same ids
 * and the log acknowledges it once (an idempotent append).
 */
#include "store_int.h"

#include <errno.h>

struct evs_recorder {
    evs_log *log;
    evs_recorder_opts opts;
    const evs_allocator *alloc;
    evs_event_owned *buf;
    evs_event *views; /* scratch for the append */
    char *line;       /* scratch for checking an event at record time */
    size_t line_cap;
    char *data;       /* scratch: an event's data, compacted */
    size_t data_cap;
    /* Copied from the log, which may be closed before set_log. */
    char id[EVS_ID_MAX + 1];
    size_t id_len;
    size_t max_line;
    size_t count, cap; /* of buf */
    size_t vcap;       /* of views, which is at least cap */
    size_t bytes;
    uint64_t flushed;  /* last sequence known to be in the log */
    size_t inflight;   /* events detached into a batch being appended */
    size_t inflight_bytes; /* and their lines' bytes */
    int64_t oldest_us; /* when the oldest buffered event was recorded */
    int replay;
};

void evs_recorder_opts_init(evs_recorder_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->batch_events = 64;
    o->batch_bytes = (size_t)1 << 20;
    o->interval_ms = 10;
}

int evs_recorder_open(evs_log *log, const evs_recorder_opts *opts,
                      evs_recorder **out)
{
    evs_recorder *r;
    const evs_allocator *a = log->store->alloc;

    if (!(log->flags & EVS_LOG_WRITE))
        return EVS_EREADONLY;
    r = evs__calloc(a, sizeof(*r));
    if (!r)
        return -ENOMEM;
    evs_recorder_opts_init(&r->opts);
    if (opts &&
        evs__opts_read(&r->opts, sizeof(r->opts), opts,
                       EVS__OPTS_SIZE(evs_recorder_opts, interval_ms)) != 0) {
        evs__free(a, r);
        return -EINVAL;
    }
    if (r->opts.batch_events == 0)
        r->opts.batch_events = 1;
    r->log = log;
    r->alloc = a;
    memcpy(r->id, log->id, log->id_len + 1);
    r->id_len = log->id_len;
    r->max_line = log->store->opts.max_line;
    r->flushed = evs_log_last_seq(log);
    *out = r;
    return 0;
}

int evs_recorder_set_log(evs_recorder *r, evs_log *log)
{
    if (!(log->flags & EVS_LOG_WRITE))
        return EVS_EREADONLY;
    /* The buffered events take their execution id from the log they
     * are flushed to, so another execution's log must be refused. */
    if (log->id_len != r->id_len || memcmp(log->id, r->id, r->id_len) != 0)
        return EVS_ECONFLICT;
    if (evs_log_last_seq(log) < r->flushed)
        return EVS_ECONFLICT; /* the new log lacks what was flushed */
    r->log = log;
    r->max_line = log->store->opts.max_line;
    return 0;
}

/* Frees the first k of n owned events and moves the rest to the front. */
static void drop_events(evs_event_owned *buf, size_t k, size_t n)
{
    for (size_t i = 0; i < k; i++)
        evs_event_free(&buf[i]);
    memmove(buf, buf + k, (n - k) * sizeof(*buf));
}

/* Forgets the first k buffered events, which are now in the log. */
static void drop_front(evs_recorder *r, size_t k)
{
    drop_events(r->buf, k, r->count);
    r->flushed += k;
    r->count -= k;
    if (r->count == 0) {
        r->bytes = 0;
        r->oldest_us = 0;
    }
}

/*
 * Appends ev[0..n), whose first sequence is flushed + 1, to `log`; sets
 * *done to how many of them the log now holds (all on success, possibly
 * some on failure). `views` is scratch for n events.
 *
 * A flush that failed after its bytes reached the disk left the log
 * ahead of us (after evs_recorder_set_log). Events recorded since then
 * follow it, so one append of them all would neither match the log nor
 * follow it: have the log acknowledge the part it holds (same ids,
 * nothing written), then append the rest.
 *
 * With `snap`, the last append carries the execution's snapshot too
 * (evs_log_append_snapshot, which sets *snap_rc), and `flags` may ask
 * for the lease's release with it (EVS_APPEND_RELEASE).
 */
static int append_events(evs_log *log, uint64_t flushed, evs_event_owned *ev,
                         evs_event *views, size_t n, unsigned flags,
                         const evs_snapshot *snap, unsigned snap_flags,
                         int *snap_rc, size_t *done)
{
    uint64_t last;
    size_t k = 0;
    int rc;

    *done = 0;
    for (size_t i = 0; i < n; i++)
        views[i] = ev[i].ev;
    /* Every event's data was checked and compacted when it was
     * recorded. */
    flags |= EVS__APPEND_DATA_COMPACT;
    last = evs_log_last_seq(log);
    if (last > flushed) {
        if (last - flushed > n)
            return EVS_ECONFLICT;
        /* A retry: the front of the batch is in the log already. */
        k = (size_t)(last - flushed);
        rc = k == n && snap ? evs__log_append_snapshot(
                                  log, views, k, flushed, flags, snap,
                                  snap_flags, snap_rc, NULL)
                            : evs__log_append_flags(log, views, k, flushed,
                                                    flags, NULL);
        if (rc != 0)
            return rc;
        *done = k;
        if (k == n)
            return 0;
    }
    rc = snap ? evs__log_append_snapshot(log, views + k, n - k, flushed + k,
                                         flags, snap, snap_flags, snap_rc,
                                         NULL)
              : evs__log_append_flags(log, views + k, n - k, flushed + k,
                                      flags, NULL);
    if (rc == 0)
        *done = n;
    return rc;
}

int evs_recorder_flush_flags(evs_recorder *r, unsigned flags)
{
    size_t done;
    int rc;

    if (flags & ~EVS_APPEND_NO_SYNC)
        return -EINVAL;
    if (r->inflight)
        return -EBUSY;
    if (r->count == 0)
        return 0;
    rc = append_events(r->log, r->flushed, r->buf, r->views, r->count, flags,
                       NULL, 0, NULL, &done);
    drop_front(r, done);
    return rc;
}

int evs_recorder_flush(evs_recorder *r)
{
    return evs_recorder_flush_flags(r, 0);
}

struct evs_recorder_batch {
    evs_log *log;
    uint64_t flushed;
    size_t n, done;
    int rc;
    evs_event_owned *ev;
    evs_event *views;
};

int evs_recorder_flush_begin(evs_recorder *r, evs_recorder_batch **out)
{
    evs_recorder_batch *b;

    *out = NULL;
    if (r->inflight)
        return -EBUSY;
    if (r->count == 0)
        return 0;
    b = evs__calloc(r->alloc, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->views = evs__malloc(r->alloc, r->count * sizeof(*b->views));
    if (!b->views) {
        evs__free(r->alloc, b);
        return -ENOMEM;
    }
    /* The buffer itself goes to the batch, so records made meanwhile
     * start a new one and never move memory the appender reads. */
    b->ev = r->buf;
    b->n = r->count;
    b->log = r->log;
    b->flushed = r->flushed;
    r->buf = NULL;
    r->cap = 0;
    r->inflight = r->count;
    r->inflight_bytes = r->bytes;
    r->count = 0;
    r->bytes = 0;
    r->oldest_us = 0;
    *out = b;
    return 0;
}

int evs_recorder_flush_run(evs_recorder_batch *b)
{
    b->rc = append_events(b->log, b->flushed, b->ev, b->views, b->n, 0, NULL,
                          0, NULL, &b->done);
    return b->rc;
}

int evs_recorder_flush_run_snapshot(evs_recorder_batch *b, unsigned flags,
                                    const evs_snapshot *snap,
                                    unsigned snap_flags, int *snap_rc)
{
    if (snap_rc)
        *snap_rc = 1;
    b->rc = flags & ~EVS_APPEND_RELEASE
                ? -EINVAL
                : append_events(b->log, b->flushed, b->ev, b->views, b->n,
                                flags, snap, snap_flags, snap_rc, &b->done);
    return b->rc;
}

/* Makes room for n buffered events, and for as many views: the views
 * grow to the events' capacity, so that they always hold the count. */
static int reserve(evs_recorder *r, size_t n)
{
    if (EVS__GROW(r->alloc, &r->buf, &r->cap, n) != 0 ||
        EVS__GROW(r->alloc, &r->views, &r->vcap, r->cap) != 0)
        return -ENOMEM;
    return 0;
}

int evs_recorder_flush_end(evs_recorder *r, evs_recorder_batch *b)
{
    size_t rest = b->n - b->done, ib = r->inflight_bytes;
    int rc = b->rc;

    drop_events(b->ev, b->done, b->n);
    r->flushed += b->done;
    r->inflight = 0;
    r->inflight_bytes = 0;
    if (rest) {
        /* Put what the log does not hold back in front of the events
         * recorded meanwhile: the next flush retries them in order. */
        if (reserve(r, rest + r->count) != 0)
            goto oom;
        memmove(r->buf + rest, r->buf, r->count * sizeof(*r->buf));
        memcpy(r->buf, b->ev, rest * sizeof(*r->buf));
        r->count += rest;
        r->bytes += ib; /* an upper bound, when some were written */
        if (r->oldest_us == 0)
            r->oldest_us = evs_now_us();
        rest = 0;
    }
out:
    for (size_t i = 0; i < rest; i++)
        evs_event_free(&b->ev[i]);
    evs__free(r->alloc, b->ev);
    evs__free(r->alloc, b->views);
    evs__free(r->alloc, b);
    return rc;
oom:
    evs__logf(r->log->store, EVS_LOG_ERROR,
              EVS_LOG_FIELDS(.execution = r->id, .err = -ENOMEM),
              "no memory to keep %zu events of a failed flush; they are lost",
              rest);
    rc = -ENOMEM;
    goto out;
}

/* Room for the "batch" field a line gets when it is flushed with
 * others: ,"batch":[F,C] with two numbers of up to 20 digits. */
#define BATCH_FIELD_MAX (sizeof(",\"batch\":[,]") - 1 + 2 * 20)

int evs_recorder_record(evs_recorder *r, const evs_event *ev, uint64_t *seq)
{
    char uuid[EVS_UUID_LEN + 1];
    evs_event e = *ev;
    size_t need, len;
    int rc;

    if (seq)
        *seq = 0;
    if (r->replay)
        return 0;
    if (r->count == r->cap && reserve(r, r->count + 1) != 0)
        return -ENOMEM;
    if (e.id.len == 0) {
        if ((rc = evs_uuid7(uuid)) != 0)
            return rc;
        e.id.ptr = uuid;
        e.id.len = EVS_UUID_LEN;
    }
    if (e.timestamp_us == 0)
        e.timestamp_us = evs_now_us();
    e.sequence = r->flushed + r->inflight + r->count + 1;
    e.execution_id.ptr = r->id;
    e.execution_id.len = r->id_len;
    e.batch_first = e.batch_count = 0;
    /* `data` is checked once, here, and kept in its compact form, which
     * is what the line holds: the flush copies it into the log's lines
     * without checking it again (EVS__APPEND_DATA_COMPACT). */
    if (e.data.len) {
        if (e.data.len > r->data_cap &&
            EVS__GROW(r->alloc, &r->data, &r->data_cap, e.data.len) != 0)
            return -ENOMEM;
        if (evs_json_check(e.data.ptr, e.data.len, EVS_JSON_MINIFY, r->data,
                           &len, NULL) != 0)
            return -EINVAL;
        e.data.ptr = r->data;
        e.data.len = len;
    }
    /* Encode it now, as the flush will: an event the log would refuse
     * must be refused here, or it would stay in the buffer and fail
     * every later flush. The exact size also feeds batch_bytes. */
    need = evs_line_encoded_max(&e);
    if (need > r->line_cap &&
        EVS__GROW(r->alloc, &r->line, &r->line_cap, need) != 0)
        return -ENOMEM;
    if (evs__line_encode_flags(&e, r->line, r->line_cap, &len,
                               EVS__LINE_DATA_COMPACT) != 0)
        return -EINVAL;
    if (len + BATCH_FIELD_MAX > r->max_line)
        return EVS_ETOOBIG;
    e.execution_id.ptr = NULL;
    e.execution_id.len = 0;
    if ((rc = evs_event_copy(&e, r->alloc, &r->buf[r->count])) != 0)
        return rc;
    if (r->count == 0)
        r->oldest_us = evs_now_us();
    r->count++;
    r->bytes += len;
    if (seq)
        *seq = e.sequence;
    if (!r->inflight &&
        (r->count >= r->opts.batch_events || r->bytes >= r->opts.batch_bytes))
        return evs_recorder_flush(r);
    return 0;
}

int evs_recorder_tick(evs_recorder *r, int64_t now_us)
{
    if (r->count == 0 || r->inflight)
        return 0;
    if (now_us == 0)
        now_us = evs_now_us();
    if (now_us - r->oldest_us < (int64_t)r->opts.interval_ms * 1000)
        return 0;
    return evs_recorder_flush(r);
}

void evs_recorder_set_replay(evs_recorder *r, int on)
{
    r->replay = on != 0;
}

int evs_recorder_replaying(const evs_recorder *r)
{
    return r->replay;
}

uint64_t evs_recorder_last_seq(const evs_recorder *r)
{
    return r->flushed + r->inflight + r->count;
}

uint64_t evs_recorder_flushed_seq(const evs_recorder *r)
{
    return r->flushed;
}

size_t evs_recorder_pending(const evs_recorder *r)
{
    return r->count;
}

uint64_t evs_recorder_pending_bytes(const evs_recorder *r)
{
    return (uint64_t)r->bytes + r->inflight_bytes +
           (uint64_t)(r->count + r->inflight) * BATCH_FIELD_MAX;
}

size_t evs_recorder_discard(evs_recorder *r)
{
    size_t n = r->count;

    for (size_t i = 0; i < r->count; i++)
        evs_event_free(&r->buf[i]);
    r->count = 0;
    r->bytes = 0;
    r->oldest_us = 0;
    return n;
}

void evs_recorder_close(evs_recorder *r)
{
    if (!r)
        return;
    if (r->count && evs_recorder_flush(r) != 0)
        evs__logf(r->log->store, EVS_LOG_ERROR,
                  EVS_LOG_FIELDS(.execution = r->id),
                  "recorder closed with %zu events that could not be "
                  "flushed; they are lost",
                  r->count);
    for (size_t i = 0; i < r->count; i++)
        evs_event_free(&r->buf[i]);
    evs__free(r->alloc, r->buf);
    evs__free(r->alloc, r->views);
    evs__free(r->alloc, r->line);
    evs__free(r->alloc, r->data);
    evs__free(r->alloc, r);
}
