/*
 * inspect.c: the JSON views of evstore/inspect.h (the listing, a range
 * of events, a replayed state) and what every view shares; the lineage
 * chain is inspect_chain.c's.
 *
 * Each view is written here and nowhere else: evdump prints its listing
 * through evs_inspect_list, so a binding and the tool see the same rows.
 */
#include "inspect_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int evs__inspect_begin(evs_store *s, const char *id, int need_id, char **out,
                       evs_error_info *err)
{
    evs_error_info_clear(err);
    if (out)
        *out = NULL;
    if (!s || !out) {
        evs__error_set(err, -EINVAL, "", "no %s given",
                       s ? "output pointer" : "store");
        return -EINVAL;
    }
    if (!id && !need_id)
        return 0;
    /* The id is not echoed: it may be anything a caller was handed. */
    if (!id || !evs_id_valid(id, strlen(id))) {
        evs__error_set(err, EVS_EBADID, "",
                       "not a valid execution id (one to 128 of "
                       "A-Z a-z 0-9 . _ -, beginning with a letter or "
                       "digit)");
        return EVS_EBADID;
    }
    evs__error_set_id(err, id, strlen(id));
    return 0;
}

int evs__inspect_end(evs__jbuf *b, int rc, char **out, evs_error_info *err,
                     const char *what)
{
    if (rc == 0 && b)
        rc = evs__jb_finish(b, out, NULL);
    if (rc == 0)
        return 0;
    if (b)
        evs__jb_free(b);
    if (err && !err->msg[0])
        evs__error_set(err, rc, "", "%s: %s", what, evs_strerror(rc));
    return evs__error_rc(err, rc);
}

void evs__inspect_time(evs__jbuf *b, int64_t us)
{
    if (us == 0)
        EVS__JB_LIT(b, "null");
    else
        evs__jb_time(b, us);
}

/* ------------------------------------------------------------------ */
/* The listing                                                        */
/* ------------------------------------------------------------------ */

enum { F_STATUS, F_WORKFLOW, F_AFTER, F_BEFORE, F_OFFSET, F_LIMIT, F_N };

static const char *const filter_names[F_N] = {
    "status", "workflow", "created_after", "created_before", "offset", "limit"};

static int filter_error(evs_error_info *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int filter_error(evs_error_info *err, const char *fmt, ...)
{
    va_list ap;
    char msg[200];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    evs__error_set(err, EVS_EPARSE, "filter", "filter: %s", msg);
    return EVS_EPARSE;
}

/* Which filter member the raw (still escaped) key names, or -1. */
static int filter_member(evs_span key)
{
    char name[32];
    size_t n;

    if (key.len >= sizeof(name) ||
        (n = evs__json_unescape(key.ptr, key.len, name)) == (size_t)-1)
        return -1;
    for (int i = 0; i < F_N; i++)
        if (strlen(filter_names[i]) == n &&
            memcmp(filter_names[i], name, n) == 0)
            return i;
    return -1;
}

/* The body of the JSON string v unescaped at *text, which moves past
 * it. Returns 0, or -1 when v is not a string. */
static int filter_str(evs_span v, char **text, evs_span *out)
{
    size_t n;

    if (v.len < 2 || v.ptr[0] != '"' ||
        (n = evs__json_unescape(v.ptr + 1, v.len - 2, *text)) == (size_t)-1)
        return -1;
    out->ptr = *text;
    out->len = n;
    *text += n;
    return 0;
}

/* A time member: µs since the epoch, or an RFC 3339 string. */
static int filter_time(evs_span v, char **text, int64_t *us)
{
    evs_span s;

    if (evs__json_int(v, us) == 0)
        return 0;
    if (filter_str(v, text, &s) != 0)
        return -1;
    return evs_time_parse(s.ptr, s.len, us) == 0 ? 0 : -1;
}

/*
 * Reads filter_json into *f. The strings of status and workflow are
 * unescaped into `text`, which has room for the whole filter (unescaping
 * never grows), and f points into it.
 */
static int read_filter(const char *json, evs_list_filter *f, char *text,
                       evs_error_info *err)
{
    evs_span doc = evs_span_cstr(json), key, v;
    unsigned seen = 0;
    size_t off = 0;
    evs__jit it;
    int64_t n;
    int m, rc;

    memset(f, 0, sizeof(*f));
    if (doc.len == 0)
        return 0;
    if (evs_json_check(doc.ptr, doc.len, 0, NULL, NULL, &off) != 0)
        return filter_error(err, "not JSON (at byte %zu)", off);
    if (evs__json_iter_begin(&it, doc, '{') != 0)
        return filter_error(err, "not a JSON object");
    while ((rc = evs__json_obj_next(&it, &key, &v)) == 1) {
        if ((m = filter_member(key)) < 0)
            return filter_error(err, "unknown member \"%.*s\"",
                                (int)(key.len < 64 ? key.len : 64), key.ptr);
        if (seen & (1u << m))
            return filter_error(err, "member \"%s\" given twice",
                                filter_names[m]);
        seen |= 1u << m;
        if (evs__json_is_null(v))
            continue;
        switch (m) {
        case F_STATUS:
        case F_WORKFLOW:
            if (filter_str(v, &text,
                           m == F_STATUS ? &f->status : &f->workflow_name))
                return filter_error(err, "\"%s\" must be a string",
                                    filter_names[m]);
            break;
        case F_AFTER:
        case F_BEFORE:
            if (filter_time(v, &text,
                            m == F_AFTER ? &f->created_after_us
                                         : &f->created_before_us))
                return filter_error(err,
                                    "\"%s\" must be microseconds since the "
                                    "epoch or an RFC 3339 string",
                                    filter_names[m]);
            break;
        default:
            if (evs__json_int(v, &n) != 0 || n < 0)
                return filter_error(err,
                                    "\"%s\" must be a non-negative integer",
                                    filter_names[m]);
            if (m == F_OFFSET)
                f->offset = (size_t)n;
            else
                f->limit = (size_t)n;
        }
    }
    return rc == 0 ? 0 : filter_error(err, "not a JSON object");
}

/* A time member of a row: `key` (with its comma and colon), then the
 * time or null. */
static void row_time(evs__jbuf *b, const char *key, int64_t us)
{
    evs__jb_str(b, key);
    evs__inspect_time(b, us);
}

/* One row, as `evdump ls --json` prints it (inspect.h). */
static void write_row(evs__jbuf *b, const evs_exec_info *it)
{
    EVS__JB_LIT(b, "{\"id\":");
    evs__jb_quote(b, it->id);
    if (!it->snapshot_ok) {
        EVS__JB_LIT(b, ",\"status\":null,\"workflow_name\":null,"
                       "\"created_at\":null,\"updated_at\":null,"
                       "\"start_time\":null,\"end_time\":null,"
                       "\"last_event_seq\":null,\"snapshot_ok\":false}");
        return;
    }
    EVS__JB_LIT(b, ",\"status\":");
    evs__jb_quote(b, it->status);
    EVS__JB_LIT(b, ",\"workflow_name\":");
    evs__jb_quote(b, it->workflow_name);
    row_time(b, ",\"created_at\":", it->created_at_us);
    row_time(b, ",\"updated_at\":", it->updated_at_us);
    row_time(b, ",\"start_time\":", it->start_time_us);
    row_time(b, ",\"end_time\":", it->end_time_us);
    EVS__JB_LIT(b, ",\"last_event_seq\":");
    evs__jb_int(b, (int64_t)it->last_event_seq);
    EVS__JB_LIT(b, ",\"snapshot_ok\":true}");
}

int evs_inspect_list(evs_store *s, const char *filter_json, char **out,
                     evs_error_info *err)
{
    evs__jbuf b = {0};
    evs_exec_listing l;
    evs_list_filter f;
    char *text = NULL;
    int rc;

    memset(&l, 0, sizeof(l));
    if ((rc = evs__inspect_begin(s, NULL, 0, out, err)) != 0)
        return rc;
    b.alloc = evs_store_allocator(s);
    if (filter_json && filter_json[0] &&
        !(text = evs__malloc(b.alloc, strlen(filter_json)))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = read_filter(filter_json ? filter_json : "", &f, text, err)) ||
        (rc = evs_exec_list(s, &f, &l)) != 0)
        goto out;
    EVS__JB_LIT(&b, "{\"total\":");
    evs__jb_int(&b, (int64_t)l.total);
    EVS__JB_LIT(&b, ",\"items\":[");
    for (size_t i = 0; i < l.count; i++) {
        if (i)
            EVS__JB_LIT(&b, ",");
        write_row(&b, &l.items[i]);
    }
    EVS__JB_LIT(&b, "]}");
out:
    evs_exec_list_free(&l);
    evs__free(b.alloc, text);
    return evs__inspect_end(&b, rc, out, err, "listing the store");
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

int evs_inspect_events(evs_store *s, const char *id, uint64_t from, uint64_t to,
                       char **out, evs_error_info *err)
{
    evs__jbuf b = {0};
    evs_log *l = NULL;
    evs_cursor *c = NULL;
    evs_event ev;
    evs_span raw;
    size_t n = 0;
    int rc;

    if ((rc = evs__inspect_begin(s, id, 1, out, err)) != 0)
        return rc;
    b.alloc = evs_store_allocator(s);
    if (from == 0)
        from = 1;
    if (to && to < from) {
        evs__error_set(err, -EINVAL, "",
                       "%s: events to %llu is before from %llu", id,
                       (unsigned long long)to, (unsigned long long)from);
        rc = -EINVAL;
        goto out;
    }
    if ((rc = evs_log_open(s, id, strlen(id), 0, &l, NULL, err)) != 0)
        goto out;
    EVS__JB_LIT(&b, "[");
    if (from <= evs_log_last_seq(l)) {
        if ((rc = evs_cursor_open(l, from, to, &c, err)) != 0)
            goto out;
        /* Each verified line as it is, without its newline. */
        while ((rc = evs_cursor_next(c, &ev, &raw, err)) == 1) {
            if (n++)
                EVS__JB_LIT(&b, ",");
            evs__jb_raw(&b, raw.ptr, raw.len - 1);
        }
        if (rc < 0)
            goto out;
        rc = 0;
    }
    EVS__JB_LIT(&b, "]");
out:
    evs_cursor_close(c);
    evs_log_close(l);
    return evs__inspect_end(&b, rc, out, err, "reading the log");
}

/* ------------------------------------------------------------------ */
/* State                                                              */
/* ------------------------------------------------------------------ */

int evs_inspect_state(evs_store *s, const char *id, uint64_t at, char **out,
                      evs_error_info *err)
{
    evs_replay_opts ro;
    evs_replay *r = NULL;
    uint64_t last;
    size_t len;
    int rc;

    if ((rc = evs__inspect_begin(s, id, 1, out, err)) != 0)
        return rc;
    evs_replay_opts_init(&ro);
    ro.alloc = evs_store_allocator(s);
    if ((rc = evs_replay_new(&ro, &r)) != 0 ||
        (rc = evs_replay_open(r, s, id, strlen(id), at, NULL, err)) != 0)
        goto out;
    last = evs_replay_exec(r)->last_seq;
    if (at > last) {
        evs__error_set(err, -EINVAL, "",
                       "%s: state at %llu is past the end (last sequence "
                       "%llu)",
                       id, (unsigned long long)at, (unsigned long long)last);
        evs__error_set_id(err, id, strlen(id));
        rc = -EINVAL;
        goto out;
    }
    /* Allocated with the store's allocator, and NUL-terminated. */
    rc = evs_replay_state_json(r, out, &len);
out:
    evs_replay_free(r);
    return evs__inspect_end(NULL, rc, out, err, "replaying the execution");
}
