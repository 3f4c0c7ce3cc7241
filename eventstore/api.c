/*
 * api.c: the public store API. Checks arguments that do not depend on the
 * backend (ids, options, handle modes) and dispatches through the backend
 * vtable.
 */
#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

void evs_store_opts_init(evs_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->durability = EVS_SYNC_FULL;
    o->sync_bytes = 1u << 20;
    o->sync_interval_ms = 100;
    o->max_line = EVS_LINE_MAX_DEFAULT;
    o->recovery = EVS_RECOVER_TAIL;
    o->create = 1;
    o->allow_unsafe_perms = 0;
    o->alloc = NULL;
    o->log_fn = NULL;
    o->log_ctx = NULL;
    o->io = NULL;
    o->warn_events = 0; /* the store's settings, else the default */
    o->warn_bytes = 0;
    o->max_events = 0;
    o->max_bytes = 0;
    o->lease_ms = EVS__LEASE_MS_DEFAULT;
    o->connections = EVS__CONNECTIONS_DEFAULT;
}

/*
 * The history limits the caller left at 0 (also a caller of older
 * headers, through evs__opts_read) come from the store's settings file
 * (limits.*, where 0 is "none"), else from the defaults. A settings file
 * that cannot be read does not keep the store from opening (`evdump
 * config` must open it to mend the file): its limits are then the
 * defaults, and the log hook says so.
 */
static void settings_limits(evs_store *s)
{
    static const char *const keys[4] = {
        EVS_SET_LIMITS_WARN_EVENTS, EVS_SET_LIMITS_WARN_BYTES,
        EVS_SET_LIMITS_MAX_EVENTS, EVS_SET_LIMITS_MAX_BYTES};
    static const uint64_t dflt[4] = {
        EVS_LIMIT_WARN_EVENTS_DEFAULT, EVS_LIMIT_WARN_BYTES_DEFAULT,
        EVS_LIMIT_MAX_EVENTS_DEFAULT, EVS_LIMIT_MAX_BYTES_DEFAULT};
    uint64_t *v[4] = {&s->opts.warn_events, &s->opts.warn_bytes,
                      &s->opts.max_events, &s->opts.max_bytes};
    evs_settings *st = NULL;
    evs_error_info ei;
    int rc = 0, loaded = 0;

    for (size_t k = 0; k < 4; k++) {
        const char *text;
        int is_set = 0;
        uint64_t n;

        if (*v[k])
            continue;
        if (!loaded) {
            loaded = 1;
            rc = evs_settings_load(s, &st, &ei);
            if (rc != 0)
                evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                          "the settings file cannot be read, so the "
                          "default history limits hold: %s",
                          ei.msg);
        }
        *v[k] = dflt[k];
        if (rc == 0 && evs_settings_get(st, keys[k], &text, &is_set, NULL) == 0 &&
            is_set && evs_settings_count(st, keys[k], &n) == 0)
            *v[k] = n ? n : EVS_LIMIT_NONE;
    }
    evs_settings_free(st);
}

void evs__logf(evs_store *s, evs_log_level lvl, const evs_log_record *f,
               const char *fmt, ...)
{
    va_list ap;

    if (!s || !s->opts.log_fn)
        return;
    va_start(ap, fmt);
    evs__log_emit(s->opts.log_fn, s->opts.log_ctx, "store", lvl, f, fmt, ap);
    va_end(ap);
}

void evs__log(evs_store *s, evs_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    if (!s || !s->opts.log_fn)
        return;
    va_start(ap, fmt);
    evs__log_emit(s->opts.log_fn, s->opts.log_ctx, "store", lvl, NULL, fmt,
                  ap);
    va_end(ap);
}

/*
 * The backend a location names (store.h, evs_store_open): "sqlite:PATH",
 * a PostgreSQL URI (libpq reads it whole), else a directory. *arg is
 * what the backend opens.
 */
static int pick_backend(const char *loc, const evs_backend_ops **ops,
                        const char **arg)
{
    static const char sq[] = "sqlite:";

    *ops = &evs__file_backend;
    *arg = loc;
    if (strncmp(loc, sq, sizeof(sq) - 1) == 0) {
        *ops = &evs__sqlite_backend;
        *arg = loc + sizeof(sq) - 1;
        return **arg ? 0 : -EINVAL;
    }
    if (strncmp(loc, "postgresql://", 13) == 0 ||
        strncmp(loc, "postgres://", 11) == 0)
        *ops = &evs__pg_backend;
    return 0;
}

int evs_store_open(const char *path, const evs_store_opts *opts,
                   evs_store **out)
{
    const evs_backend_ops *ops;
    const char *arg;
    evs_store_opts o;
    evs_store *s;
    int rc;

    if (!path || !*path || !out)
        return -EINVAL;
    evs_store_opts_init(&o);
    if (opts && evs__opts_read(&o, sizeof(o), opts,
                               EVS__OPTS_SIZE(evs_store_opts, io)) != 0)
        return -EINVAL;
    if (o.durability > EVS_SYNC_NONE || o.recovery > EVS_RECOVER_POINT_IN_TIME)
        return -EINVAL;
    if (o.max_line == 0)
        o.max_line = EVS_LINE_MAX_DEFAULT;
    if (o.max_line < 256 || o.max_line > EVS_LINE_MAX_LIMIT)
        return -EINVAL;
    if (o.lease_ms == 0)
        o.lease_ms = EVS__LEASE_MS_DEFAULT;
    if (o.connections == 0)
        o.connections = EVS__CONNECTIONS_DEFAULT;
    if (o.connections > EVS__CONNECTIONS_MAX)
        return -EINVAL;
    if (!o.io)
        o.io = evs_io_posix();
    if (!o.alloc)
        o.alloc = evs_default_allocator();
    s = evs__calloc(o.alloc, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->opts = o;
    s->io = o.io;
    s->alloc = o.alloc;
    s->dirfd = -1;
    rc = pick_backend(path, &ops, &arg);
    s->ops = ops;
    if (rc == 0)
        rc = s->ops->open(s, arg);
    if (rc != 0) {
        evs__free(o.alloc, s);
        return rc;
    }
    settings_limits(s);
    *out = s;
    return 0;
}

const evs_store_opts *evs_store_get_opts(const evs_store *s)
{
    return &s->opts;
}

const evs_allocator *evs_store_allocator(const evs_store *s)
{
    const evs_allocator *a = evs_store_get_opts(s)->alloc;

    return a ? a : evs_default_allocator();
}

void evs_store_close(evs_store *s)
{
    if (!s)
        return;
    s->ops->close(s);
    evs__free(s->alloc, s);
}

#define CHECK_ID(id, len)                                                      \
    do {                                                                       \
        if (!(id) || !evs_id_valid((id), (len)))                               \
            return EVS_EBADID;                                                 \
    } while (0)

int evs_exec_create(evs_store *s, const char *id, size_t id_len,
                    const evs_snapshot *snap, const evs_event *events, size_t n)
{
    return evs_exec_create_flags(s, id, id_len, snap, events, n, 0);
}

/* Whether a creation's events and flags go together (store.h). */
static int create_args_ok(const evs_event *events, size_t n, unsigned flags)
{
    return !(n && !events) &&
           !(flags & ~(unsigned)(EVS_SNAPSHOT_CACHE | EVS_CREATE_OWNED)) &&
           !((flags & EVS_SNAPSHOT_CACHE) && n == 0);
}

int evs_exec_create_flags(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, const evs_event *events,
                          size_t n, unsigned flags)
{
    CHECK_ID(id, id_len);
    if (!create_args_ok(events, n, flags))
        return -EINVAL;
    return s->ops->exec_create(s, id, id_len, snap, events, n, flags);
}

int evs_exec_create_open(evs_store *s, const char *id, size_t id_len,
                         const evs_snapshot *snap, const evs_event *events,
                         size_t n, unsigned flags, evs_log **out,
                         evs_error_info *info)
{
    int rc;

    evs_error_info_clear(info);
    CHECK_ID(id, id_len);
    if (!out)
        return -EINVAL;
    *out = NULL;
    flags |= EVS_CREATE_OWNED;
    if (!s->ops->exec_create_open) {
        rc = evs_exec_create_flags(s, id, id_len, snap, events, n, flags);
        return rc ? rc
                  : evs_log_open(s, id, id_len, EVS_LOG_WRITE, out, NULL, info);
    }
    if (!create_args_ok(events, n, flags))
        return -EINVAL;
    return s->ops->exec_create_open(s, id, id_len, snap, events, n, flags, out);
}

int evs_exec_exists(evs_store *s, const char *id, size_t id_len)
{
    if (!id || !evs_id_valid(id, id_len))
        return 0;
    return s->ops->exec_exists(s, id, id_len);
}

int evs_exec_delete(evs_store *s, const char *id, size_t id_len)
{
    CHECK_ID(id, id_len);
    return s->ops->exec_delete(s, id, id_len);
}

int evs_exec_list(evs_store *s, const evs_list_filter *f, evs_exec_listing *out)
{
    evs_list_filter none;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!f) {
        memset(&none, 0, sizeof(none));
        f = &none;
    }
    return s->ops->exec_list(s, f, out);
}

void evs_exec_list_free(evs_exec_listing *l)
{
    if (!l)
        return;
    evs__free(l->alloc_, l->items);
    evs__free(l->alloc_, l->mem_);
    memset(l, 0, sizeof(*l));
}

int evs_exec_cleanup(evs_store *s, int64_t older_than_us, size_t *deleted)
{
    size_t dummy;

    return s->ops->exec_cleanup(s, older_than_us, deleted ? deleted : &dummy);
}

int evs_snapshot_save(evs_store *s, const char *id, size_t id_len,
                      const evs_snapshot *snap)
{
    return evs_snapshot_save_flags(s, id, id_len, snap, 0);
}

int evs_snapshot_save_flags(evs_store *s, const char *id, size_t id_len,
                            const evs_snapshot *snap, unsigned flags)
{
    CHECK_ID(id, id_len);
    if (!snap || (flags & ~(unsigned)EVS_SNAPSHOT_CACHE))
        return -EINVAL;
    return s->ops->snapshot_save(s, id, id_len, snap, flags);
}

int evs_snapshot_load(evs_store *s, const char *id, size_t id_len,
                      evs_snapshot **out, evs_error_info *info)
{
    return evs_snapshot_load_flags(s, id, id_len, 0, out, info);
}

int evs_snapshot_load_flags(evs_store *s, const char *id, size_t id_len,
                            unsigned flags, evs_snapshot **out,
                            evs_error_info *info)
{
    evs_error_info_clear(info);
    CHECK_ID(id, id_len);
    if (!out || (flags & ~(unsigned)EVS_SNAPSHOT_STATE_RAW))
        return -EINVAL;
    return s->ops->snapshot_load(s, id, id_len, flags, out, info);
}

int evs_log_open(evs_store *s, const char *id, size_t id_len, unsigned flags,
                 evs_log **out, evs_recovery_info *rec, evs_error_info *info)
{
    evs_error_info_clear(info);
    if (rec)
        memset(rec, 0, sizeof(*rec));
    CHECK_ID(id, id_len);
    if (!out || (flags & ~(unsigned)(EVS_LOG_WRITE | EVS_LOG_WAIT)))
        return -EINVAL;
    return s->ops->log_open(s, id, id_len, flags, out, rec, info);
}

const char *evs_log_id(const evs_log *l)
{
    return l->id;
}

/* Reads one field of the log under its mutex: appends from other threads
 * change them together. */
static uint64_t locked_read(evs_log *l, const uint64_t *field)
{
    uint64_t v;

    pthread_mutex_lock(&l->mu);
    v = *field;
    pthread_mutex_unlock(&l->mu);
    return v;
}

uint64_t evs_log_last_seq(evs_log *l)
{
    return locked_read(l, &l->last_seq);
}

uint64_t evs_log_durable_seq(evs_log *l)
{
    return locked_read(l, &l->durable_seq);
}

uint64_t evs_log_size(evs_log *l)
{
    return locked_read(l, &l->end);
}

#define APPEND_FLAGS (EVS_APPEND_NO_SYNC | EVS_APPEND_RELEASE)

/* After an append with EVS_APPEND_RELEASE: the lease given up, unless
 * the backend's statement did it already, and the handle a writer's no
 * more. */
static void release_after(evs_log *l)
{
    int done;

    pthread_mutex_lock(&l->mu);
    done = l->released;
    pthread_mutex_unlock(&l->mu);
    if (!done && l->ops->log_release)
        l->ops->log_release(l);
    pthread_mutex_lock(&l->mu);
    l->released = 1;
    pthread_mutex_unlock(&l->mu);
}

int evs_log_append_flags(evs_log *l, const evs_event *events, size_t n,
                         uint64_t expected_last_seq, unsigned flags,
                         evs_error_info *info)
{
    evs_error_info_clear(info);
    if (flags & ~APPEND_FLAGS)
        return -EINVAL;
    return evs__log_append_flags(l, events, n, expected_last_seq, flags, info);
}

int evs__log_append_flags(evs_log *l, const evs_event *events, size_t n,
                          uint64_t expected_last_seq, unsigned flags,
                          evs_error_info *info)
{
    int rc;

    evs_error_info_clear(info);
    if (!l || (n && !events))
        return -EINVAL;
    if (n == 0)
        return 0;
    if (!(l->flags & EVS_LOG_WRITE))
        return EVS_EREADONLY;
    rc = l->ops->log_append(l, events, n, expected_last_seq, flags, info);
    if (rc == 0 && (flags & EVS_APPEND_RELEASE))
        release_after(l);
    return rc;
}

int evs_log_append_snapshot(evs_log *l, const evs_event *events, size_t n,
                            uint64_t expected_last_seq, unsigned flags,
                            const evs_snapshot *snap, unsigned snap_flags,
                            int *snap_rc, evs_error_info *info)
{
    evs_error_info_clear(info);
    if (snap_rc)
        *snap_rc = 1;
    if (flags & ~APPEND_FLAGS)
        return -EINVAL;
    return evs__log_append_snapshot(l, events, n, expected_last_seq, flags,
                                    snap, snap_flags, snap_rc, info);
}

int evs__log_append_snapshot(evs_log *l, const evs_event *events, size_t n,
                             uint64_t expected_last_seq, unsigned flags,
                             const evs_snapshot *snap, unsigned snap_flags,
                             int *snap_rc, evs_error_info *info)
{
    int rc, src;

    evs_error_info_clear(info);
    if (snap_rc)
        *snap_rc = 1;
    if (!l || (n && !events) || !snap ||
        (snap_flags & ~(unsigned)EVS_SNAPSHOT_CACHE))
        return -EINVAL;
    if (snap->last_event_seq > expected_last_seq + n) {
        evs__error_set(info, -EINVAL, "snapshot",
                       "%s: a snapshot at sequence %llu after an append "
                       "ending at %llu",
                       l->id, (unsigned long long)snap->last_event_seq,
                       (unsigned long long)(expected_last_seq + n));
        return -EINVAL;
    }
    if (!(l->flags & EVS_LOG_WRITE))
        return EVS_EREADONLY;
    if (n && l->ops->log_append_snap && snap->created_at_us != 0) {
        src = 1;
        rc = l->ops->log_append_snap(l, events, n, expected_last_seq, flags,
                                     snap, snap_flags, &src, info);
        /* A retried append, in the log already, wrote no snapshot. */
        if (rc == 0 && src == 1)
            src = l->ops->snapshot_save(l->store, l->id, l->id_len, snap,
                                        snap_flags);
        if (snap_rc)
            *snap_rc = src;
    } else {
        /* The release, if asked, after the snapshot. */
        rc = evs__log_append_flags(l, events, n, expected_last_seq,
                                   flags & ~EVS_APPEND_RELEASE, info);
        if (rc != 0)
            return rc;
        src = l->ops->snapshot_save(l->store, l->id, l->id_len, snap,
                                    snap_flags);
        if (snap_rc)
            *snap_rc = src;
    }
    if (rc == 0 && (flags & EVS_APPEND_RELEASE))
        release_after(l);
    return rc;
}

int evs_log_append(evs_log *l, const evs_event *events, size_t n,
                   uint64_t expected_last_seq, evs_error_info *info)
{
    return evs_log_append_flags(l, events, n, expected_last_seq, 0, info);
}

int evs_log_sync(evs_log *l)
{
    if (!(l->flags & EVS_LOG_WRITE))
        return 0;
    return l->ops->log_sync(l);
}

int evs_log_renew(evs_log *l, int64_t *until_us)
{
    if (!(l->flags & EVS_LOG_WRITE))
        return EVS_EREADONLY;
    if (!l->ops->log_renew) {
        /* A lock, held while the handle is open, poisoned or not (an
         * append says so): nothing to renew, and nothing read that
         * another thread's append may be writing. */
        if (until_us)
            *until_us = INT64_MAX;
        return 0;
    }
    return l->ops->log_renew(l, until_us);
}

int evs_log_refresh(evs_log *l)
{
    return l->ops->log_refresh(l);
}

void evs_log_close(evs_log *l)
{
    if (!l)
        return;
    l->ops->log_close(l);
}

int evs_cursor_open(evs_log *l, uint64_t from, uint64_t to, evs_cursor **out,
                    evs_error_info *info)
{
    int rc;

    evs_error_info_clear(info);
    if (!l || !out || from == 0)
        return -EINVAL;
    /* The cursor takes the log's end as of now; appends from another
     * thread change it under the mutex. */
    pthread_mutex_lock(&l->mu);
    rc = l->ops->cursor_open(l, from, to, out, info);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int evs_cursor_next(evs_cursor *c, evs_event *ev, evs_span *raw,
                    evs_error_info *info)
{
    /* Called once per event: `info` is filled in only on failure (every
     * field), rather than cleared on every call. */
    return c->ops->cursor_next(c, ev, raw, info);
}

uint64_t evs_cursor_offset(const evs_cursor *c)
{
    return c->ops->cursor_offset(c);
}

void evs_cursor_close(evs_cursor *c)
{
    if (!c)
        return;
    c->ops->cursor_close(c);
}

/* True for a UUIDv7 as evs_uuid7 writes it: lower-case hex, dashes at
 * 8, 13, 18 and 23, version 7, variant 10. */
int evs__request_id_valid(const char *p, size_t len)
{
    if (!p || len != EVS_REQUEST_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return p[14] == '7' &&
           (p[19] == '8' || p[19] == '9' || p[19] == 'a' || p[19] == 'b');
}

int evs_request_post(evs_store *s, const char *id, size_t id_len,
                     const char *json, size_t len,
                     char out_id[EVS_REQUEST_ID_LEN + 1])
{
    CHECK_ID(id, id_len);
    if (!json)
        return -EINVAL;
    return s->ops->request_post(s, id, id_len, json, len, out_id);
}

int evs_request_list(evs_store *s, const char *id, size_t id_len,
                     evs_request_listing *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    CHECK_ID(id, id_len);
    return s->ops->request_list(s, id, id_len, out);
}

void evs_request_list_free(evs_request_listing *l)
{
    if (!l)
        return;
    evs__free(l->alloc_, l->items);
    evs__free(l->alloc_, l->mem_);
    memset(l, 0, sizeof(*l));
}

int evs_request_remove(evs_store *s, const char *id, size_t id_len,
                       const char *req_id, size_t req_len)
{
    CHECK_ID(id, id_len);
    if (!evs__request_id_valid(req_id, req_len))
        return -EINVAL;
    return s->ops->request_remove(s, id, id_len, req_id);
}

static int request_dir(evs_store *s, const char *id, size_t id_len, char *buf,
                       size_t cap, int create)
{
    CHECK_ID(id, id_len);
    if (!buf)
        return -EINVAL;
    return s->ops->request_dir(s, id, id_len, buf, cap, create);
}

int evs_request_dir(evs_store *s, const char *id, size_t id_len, char *buf,
                    size_t cap)
{
    return request_dir(s, id, id_len, buf, cap, 1);
}

int evs_request_dir_peek(evs_store *s, const char *id, size_t id_len, char *buf,
                         size_t cap)
{
    return request_dir(s, id, id_len, buf, cap, 0);
}

int evs_log_claim(evs_store *s, unsigned flags, evs_log **out,
                  evs_error_info *info)
{
    evs_error_info_clear(info);
    if (!s || !out || flags)
        return -EINVAL;
    *out = NULL;
    if (!s->ops->log_claim)
        return -ENOTSUP;
    return s->ops->log_claim(s, out, info);
}

int evs_watch_open(evs_store *s, evs_watch **out)
{
    if (!s || !out)
        return -EINVAL;
    *out = NULL;
    if (!s->ops->watch_open)
        return -ENOTSUP;
    return s->ops->watch_open(s, out);
}

int evs_watch_fd(const evs_watch *w)
{
    return w ? w->fd : -1;
}

int evs_watch_read(evs_watch *w, evs_watch_fn fn, void *arg)
{
    if (!w || !fn)
        return -EINVAL;
    return w->store->ops->watch_read(w, fn, arg);
}

void evs_watch_close(evs_watch *w)
{
    if (w)
        w->store->ops->watch_close(w);
}

int evs__is_run_start(const evs_event *ev, char *version, size_t cap)
{
    evs_span v;
    size_t n;
    int rc;

    rc = evs__span_eq_cstr(ev->event_type, EVS_EV_EXECUTION_STARTED) &&
         evs__json_get(ev->data, "code_version", &v) == 1 && v.len >= 2 &&
         v.ptr[0] == '"';
    if (rc && version && cap) {
        char buf[EVS_ID_MAX * 2];
        n = v.len - 2 < sizeof(buf) ? v.len - 2 : sizeof(buf) - 1;
        n = evs__json_unescape(v.ptr + 1, n, buf);
        if (n == (size_t)-1)
            n = 0;
        n = n < cap ? n : cap - 1;
        memcpy(version, buf, n);
        version[n] = '\0';
    }
    return rc;
}

int evs_exec_code_version(evs_store *s, const char *id, size_t id_len,
                          char *version, size_t cap)
{
    evs_cursor *cur = NULL;
    evs_log *log = NULL;
    evs_event ev;
    int rc;

    if (version && cap)
        version[0] = '\0';
    if ((rc = evs_log_open(s, id, id_len, 0, &log, NULL, NULL)) != 0)
        return rc;
    if ((rc = evs_cursor_open(log, 1, 1, &cur, NULL)) == 0 &&
        (rc = evs_cursor_next(cur, &ev, NULL, NULL)) == 1)
        rc = evs__is_run_start(&ev, version, cap);
    evs_cursor_close(cur);
    evs_log_close(log);
    return rc;
}

/* How long a status-change time stays too recent to trust: longer than
 * a tick of the kernel's coarse clock, which stamps directories. */
#define STAMP_SLACK_US 50000

int evs_request_changed(evs_store *s, const char *id, size_t id_len,
                        evs_inbox_watch *w)
{
    uint64_t ino;
    int64_t ctime_ns, now = evs_now_us();
    int rc;

    CHECK_ID(id, id_len);
    if (!w)
        return -EINVAL;
    if ((rc = s->ops->request_stamp(s, id, id_len, &ino, &ctime_ns)) < 0)
        return rc;
    /* Unchanged, and old enough that a post since the last listing
     * could not have left the same time behind; a change counter
     * (EVS__STAMP_EXACT) is trusted as it is. */
    if (w->checked_us && ino == w->ino && ctime_ns == w->ctime_ns &&
        (rc == EVS__STAMP_EXACT ||
         ctime_ns / 1000 < w->checked_us - STAMP_SLACK_US))
        return 0;
    w->ino = ino;
    w->ctime_ns = ctime_ns;
    w->checked_us = now;
    return 1;
}

int evs_log_scan(evs_store *s, const char *id, size_t id_len, evs_scan_fn fn,
                 void *arg)
{
    CHECK_ID(id, id_len);
    if (!fn)
        return -EINVAL;
    return s->ops->log_scan(s, id, id_len, fn, arg);
}

int evs_settings_load(evs_store *s, evs_settings **out, evs_error_info *ei)
{
    evs_error_info_clear(ei);
    if (!s || !out)
        return -EINVAL;
    return s->ops->settings_load(s, out, ei);
}

int evs_settings_save(evs_store *s, const evs_settings *st, evs_error_info *ei)
{
    evs_error_info_clear(ei);
    if (!s || !st)
        return -EINVAL;
    return s->ops->settings_save(s, st, ei);
}

int evs__file_only(evs_store *s, const char *what, evs_error_info *ei)
{
    if (s->ops == &evs__file_backend)
        return 0;
    evs__error_set(ei, -ENOTSUP, "backend",
                   "%s needs a store of files; this one is %s", what,
                   s->ops->name);
    return -ENOTSUP;
}
