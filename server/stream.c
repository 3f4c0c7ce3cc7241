/*
 * stream.c: answers that are sent in pieces. A history
 * (GET /v1/executions/ID/events) is read in chunks on the threadpool and
 * sent as one JSON document, each chunk once h2o has taken the last, so
 * memory stays bounded by a chunk whatever the log's length. A follower
 * (GET /v1/executions/ID/follow) is the same reader kept open: the
 * events are sent as Server-Sent Events, new ones picked up every
 * follow_ms, until the execution ends (its terminal event is sent, then
 * an `end` event) or the client or the server goes.
 */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_EVENTS 512
#define CHUNK_BYTES ((size_t)256 << 10)
#define KEEPALIVE_MS 15000

struct srv_stream {
    h2o_generator_t gen;
    evs_server *sv;
    h2o_req_t *req; /* NULL once the client is gone */
    srv_stream *next;
    srv_route route;
    int follow;
    char id[EVS_ID_MAX + 1];
    char type[512]; /* event types, comma-separated; "" for any */
    char path[256]; /* a path id; "" for any */
    uint64_t next_seq, to, limit, sent, counted;
    evs_log *log; /* the reader, used by one piece of work at a time */
    uv_work_t work;
    uv_timer_t timer;
    evs__jbuf chunk;   /* written by the work */
    evs__jbuf sending; /* handed to h2o, until it proceeds */
    uint64_t last_send_ms; /* loop time of the last piece sent */
    int working, sending_now, started, finished, ending, terminal, read_all;
    int rc;
    evs_error_info err;
};

srv_stream *evs__srv_stream_next(srv_stream *s)
{
    return s->next;
}

static int type_matches(const srv_stream *s, evs_span t)
{
    const char *p = s->type;

    if (!p[0])
        return 1;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == t.len && memcmp(p, t.ptr, n) == 0)
            return 1;
        p = e ? e + 1 : p + n;
    }
    return 0;
}

/* The threadpool half: reads the next chunk into s->chunk. */
static void read_work(uv_work_t *w)
{
    srv_stream *s = w->data;
    evs_store *st = s->sv->store;
    evs_cursor *c = NULL;
    evs_event ev;
    evs_span raw;
    size_t n = 0;
    int rc;

    s->chunk.len = 0;
    if (!s->log) {
        rc = evs_log_open(st, s->id, strlen(s->id), 0, &s->log, NULL, &s->err);
        if (rc != 0) {
            s->rc = rc;
            return;
        }
    } else if (s->follow && (rc = evs_log_refresh(s->log)) != 0) {
        s->rc = rc;
        return;
    }
    if (s->next_seq > evs_log_last_seq(s->log) ||
        (s->to && s->next_seq > s->to)) {
        s->read_all = !s->follow || s->terminal;
        return;
    }
    if ((rc = evs_cursor_open(s->log, s->next_seq, s->to, &c, &s->err)) != 0) {
        s->rc = rc;
        return;
    }
    while (n < CHUNK_EVENTS && s->chunk.len < CHUNK_BYTES &&
           (!s->limit || s->sent < s->limit) &&
           (rc = evs_cursor_next(c, &ev, &raw, &s->err)) == 1) {
        s->next_seq = ev.sequence + 1;
        if (evs_event_type_is_terminal(ev.event_type))
            s->terminal = 1;
        if (!type_matches(s, ev.event_type) ||
            (s->path[0] &&
             !evs__span_eq(ev.path_id, evs_span_cstr(s->path))))
            continue;
        if (s->follow) {
            EVS__JB_LIT(&s->chunk, "id: ");
            evs__jb_int(&s->chunk, (int64_t)ev.sequence);
            EVS__JB_LIT(&s->chunk, "\ndata: ");
            evs__jb_raw(&s->chunk, raw.ptr, raw.len - 1);
            EVS__JB_LIT(&s->chunk, "\n\n");
        } else {
            if (s->sent)
                EVS__JB_LIT(&s->chunk, ",");
            evs__jb_raw(&s->chunk, raw.ptr, raw.len - 1);
        }
        s->sent++;
        n++;
    }
    evs_cursor_close(c);
    if (rc < 0) {
        s->rc = rc;
        return;
    }
    if (s->limit && s->sent >= s->limit)
        s->read_all = 1;
    else if (rc == 0 && !s->follow)
        s->read_all = 1; /* the end as of this read */
    else if (rc == 0 && s->terminal)
        s->read_all = 1;
    if (s->to && s->next_seq > s->to)
        s->read_all = 1;
}

static void stream_free_now(uv_handle_t *h)
{
    srv_stream *s = h->data;
    evs_server *sv = s->sv;
    srv_stream **pp;

    for (pp = &sv->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    evs_log_close(s->log);
    evs__jb_free(&s->chunk);
    evs__jb_free(&s->sending);
    free(s);
    evs__srv_maybe_finish(sv);
}

/* Frees s once nothing of it is in flight. */
static void stream_release(srv_stream *s)
{
    if (s->working || s->finished == 2)
        return;
    s->finished = 2;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, stream_free_now);
}

static void read_after(uv_work_t *w, int status);
static void pump(srv_stream *s);

/* Queues the next read. Returns 0 or a libuv error (s->rc is then set,
 * which the work alone writes otherwise). */
static int read_queue(srv_stream *s)
{
    int rc;

    s->working = 1;
    s->sv->jobs++;
    if ((rc = uv_queue_work(s->sv->loop, &s->work, read_work, read_after))) {
        s->working = 0;
        s->sv->jobs--;
        s->rc = -EIO;
    }
    return rc;
}

static void timer_cb(uv_timer_t *t)
{
    srv_stream *s = t->data;

    if (s->req && !s->working && !s->sending_now && !s->finished &&
        read_queue(s) != 0)
        pump(s);
}

/* Sends what the last read gave, and the end when it is the end. */
static void pump(srv_stream *s)
{
    h2o_req_t *req = s->req;
    h2o_iovec_t iov;
    int last = s->read_all || s->ending || s->rc != 0;

    if (!req || s->sending_now || s->finished)
        return;
    if (last) {
        if (s->follow) {
            EVS__JB_LIT(&s->chunk, "event: end\ndata: {\"reason\":\"");
            evs__jb_str(&s->chunk, s->rc ? "error"
                                   : s->terminal ? "ended"
                                   : s->read_all ? "limit"
                                                 : "server_stopping");
            EVS__JB_LIT(&s->chunk, "\",\"next_from\":");
            evs__jb_int(&s->chunk, (int64_t)s->next_seq);
            EVS__JB_LIT(&s->chunk, "}\n\n");
        } else {
            EVS__JB_LIT(&s->chunk, "],\"next_from\":");
            if (s->limit && s->sent >= s->limit)
                evs__jb_int(&s->chunk, (int64_t)s->next_seq);
            else
                EVS__JB_LIT(&s->chunk, "null");
            /* A read that failed half-way cannot change the status
             * already sent: the document says so instead. */
            if (s->rc) {
                EVS__JB_LIT(&s->chunk, ",\"error\":{\"code\":");
                evs__jb_quote(&s->chunk,
                              evs_span_cstr(evs__srv_code_name(s->rc)));
                EVS__JB_LIT(&s->chunk, ",\"message\":");
                evs__jb_quote(&s->chunk, evs_span_cstr(
                                             s->err.msg[0]
                                                 ? s->err.msg
                                                 : evs_strerror(s->rc)));
                EVS__JB_LIT(&s->chunk, "}");
            }
            EVS__JB_LIT(&s->chunk, "}\n");
        }
    }
    if (s->chunk.err) {
        /* Out of memory: the answer is cut short. */
        s->chunk.len = 0;
        last = 1;
    }
    if (!last && s->follow && s->chunk.len == 0 &&
        uv_now(s->sv->loop) - s->last_send_ms >= KEEPALIVE_MS)
        /* A comment now and then, so that what stands between the
         * follower and the server does not take it for a dead line. */
        EVS__JB_LIT(&s->chunk, ": keepalive\n\n");
    if (!last && s->chunk.len == 0) {
        /* Nothing new: a follower looks again later. */
        uv_timer_start(&s->timer, timer_cb, s->sv->opts.follow_ms, 0);
        return;
    }
    s->last_send_ms = uv_now(s->sv->loop);
    s->sv->bytes_out += s->chunk.len;
    if (last) {
        /* h2o holds the last buffer until the request goes: the pool's. */
        iov.base = h2o_mem_alloc_pool(&req->pool, s->chunk.len + 1);
        memcpy(iov.base, s->chunk.p ? s->chunk.p : "", s->chunk.len);
        iov.len = s->chunk.len;
        s->chunk.len = 0;
        s->finished = 1;
        s->req = NULL;
        evs__srv_count(s->sv, s->route, 200, req);
        /* A server that stops lets the connection go with the answer. */
        if (s->sv->stopping)
            req->http1_is_persistent = 0;
        h2o_send(req, &iov, 1, H2O_SEND_STATE_FINAL);
        stream_release(s);
        return;
    }
    /* The chunk is h2o's until it proceeds. */
    {
        evs__jbuf t = s->sending;
        s->sending = s->chunk;
        s->chunk = t;
        s->chunk.len = 0;
    }
    iov = h2o_iovec_init(s->sending.p, s->sending.len);
    s->sending_now = 1;
    h2o_send(req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    srv_stream *s = (srv_stream *)g;

    (void)req;
    s->sending_now = 0;
    s->sending.len = 0;
    if (!s->req || s->finished)
        return;
    if (s->ending || s->rc || read_queue(s) != 0)
        pump(s);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    srv_stream *s = (srv_stream *)g;

    s->req = NULL;
    s->sending_now = 0;
    if (!s->finished) {
        s->finished = 1;
        evs__srv_count(s->sv, s->route, 200, req);
    }
    stream_release(s);
}

static void read_after(uv_work_t *w, int status)
{
    srv_stream *s = w->data;
    h2o_req_t *req = s->req;

    (void)status;
    s->working = 0;
    s->sv->jobs--;
    if (!req || s->finished) {
        stream_release(s);
        return;
    }
    if (!s->started) {
        if (s->rc) {
            /* Nothing sent yet: a plain error answer. */
            int st = s->rc == -ENOENT       ? 404
                     : s->rc == EVS_EBADID ? 400
                                           : 500;
            evs__srv_error(s->sv, req, s->route, st,
                           st == 404 ? "not_found"
                                     : evs__srv_code_name(s->rc),
                           "%s", s->err.msg[0] ? s->err.msg
                                               : evs_strerror(s->rc));
            s->req = NULL;
            s->finished = 1;
            stream_release(s);
            return;
        }
        s->started = 1;
        req->res.status = 200;
        req->res.reason = "OK";
        if (s->follow) {
            h2o_add_header(&req->pool, &req->res.headers,
                           H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("text/event-stream"));
        } else {
            h2o_add_header(&req->pool, &req->res.headers,
                           H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("application/json"));
        }
        h2o_add_header(&req->pool, &req->res.headers,
                       H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
        h2o_start_response(req, &s->gen);
        /* What comes before the first event. */
        {
            evs__jbuf head = {0};
            if (s->follow) {
                EVS__JB_LIT(&head, ": following ");
                evs__jb_str(&head, s->id);
                EVS__JB_LIT(&head, "\n\n");
            } else {
                EVS__JB_LIT(&head, "{\"id\":");
                evs__jb_quote(&head, evs_span_cstr(s->id));
                EVS__JB_LIT(&head, ",\"events\":[");
            }
            evs__jb_raw(&head, s->chunk.p ? s->chunk.p : "", s->chunk.len);
            evs__jb_free(&s->chunk);
            s->chunk = head;
        }
    }
    s->sv->events_streamed += s->sent - s->counted;
    s->counted = s->sent;
    pump(s);
}

void evs__srv_stream_start(evs_server *sv, h2o_req_t *req, srv_route route,
                           const char *id, int follow)
{
    srv_stream *s = calloc(1, sizeof(*s));
    const char *q = req->query_at == SIZE_MAX
                        ? ""
                        : NULL;
    char qbuf[2048];
    uint64_t from = 1;
    ssize_t h;

    if (!s) {
        evs__srv_error(sv, req, route, 500, "ENOMEM", "out of memory");
        return;
    }
    if (!q) {
        size_t n = req->path.len - req->query_at - 1;
        if (n >= sizeof(qbuf)) {
            free(s);
            evs__srv_error(sv, req, route, 400, "EINVAL",
                           "the query is too long");
            return;
        }
        memcpy(qbuf, req->path.base + req->query_at + 1, n);
        qbuf[n] = '\0';
        q = qbuf;
    }
    /* A follower that reconnects says where it was (Last-Event-ID). */
    h = h2o_find_header_by_str(&req->headers, H2O_STRLIT("last-event-id"),
                               -1);
    if (follow && h >= 0) {
        h2o_iovec_t v = req->headers.entries[h].value;
        char b[24];
        if (v.len && v.len < sizeof(b)) {
            char *end;
            memcpy(b, v.base, v.len);
            b[v.len] = '\0';
            from = strtoull(b, &end, 10) + 1;
            if (*end)
                from = 1;
        }
    }
    if (evs__srv_query_u64(q, "from", &from) != 0 ||
        evs__srv_query_u64(q, "to", &s->to) != 0 ||
        evs__srv_query_u64(q, "limit", &s->limit) != 0 ||
        evs__srv_query(q, "type", s->type, sizeof(s->type)) < 0 ||
        evs__srv_query(q, "path", s->path, sizeof(s->path)) < 0) {
        free(s);
        evs__srv_error(sv, req, route, 400, "EINVAL",
                       "bad from, to, limit, type or path");
        return;
    }
    if (s->to && from > s->to) {
        free(s);
        evs__srv_error(sv, req, route, 400, "EINVAL",
                       "from is after to");
        return;
    }
    s->next_seq = from ? from : 1;
    s->sv = sv;
    s->req = req;
    s->route = route;
    s->follow = follow;
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    s->work.data = s;
    uv_timer_init(sv->loop, &s->timer);
    s->timer.data = s;
    s->next = sv->streams;
    sv->streams = s;
    if (follow)
        sv->followers++;
    if (read_queue(s) != 0) {
        evs__srv_error(sv, req, route, 500, "EIO", "cannot queue the work");
        s->req = NULL;
        s->finished = 1;
        stream_release(s);
    }
}

void evs__srv_streams_end(evs_server *sv)
{
    for (srv_stream *s = sv->streams; s; s = s->next) {
        s->ending = 1;
        uv_timer_stop(&s->timer);
        if (s->started && !s->working)
            pump(s);
    }
}
