/*
 * scen_api.c: the api scenario: the HTTP API (evstore/server.h) beside
 * the same calls made through the C API, in the same process on the
 * same store handle, interleaved call by call.
 *
 *  - the first page (50) of a listing of P8's executions (100 k, about
 *    one in ten "failed") filtered on status "failed": GET
 *    /v1/executions?status=failed&limit=50 beside evs_exec_list with the
 *    same filter and limit;
 *  - the last 100 events of an execution with a long history: GET
 *    /v1/executions/ID/events?from=N-99 beside what the server does for
 *    it, evs_log_open and a cursor from N-99, each raw line copied out.
 *
 * The server runs embedded: evs_server_start on a libuv loop that the
 * scenario's own thread runs, as a host does, and a client thread speaks
 * HTTP/1.1 to it over one keep-alive loopback connection
 * (http_client.c) and makes the C API calls too. In-process rather than
 * a child `evrun serve`: both sides then share the store handle (and its
 * listing index) and the machine's noise, and nothing else runs. The
 * loop stays on the scenario's thread, which outlives the server, so
 * h2o's per-thread caches stay reachable (evstore/server.h, "Memory").
 *
 * Every answer is checked against the C API's (the ids of the page in
 * order and the total; the events' bytes and sequences), so a broken
 * server fails the scenario instead of looking fast. Checks are made
 * after the clock stops.
 *
 * Rows put the C API in the floor column, so ×floor is the API's cost
 * over the library's; the target is the issue's: ≤ 2× the C API plus
 * 200 µs, at p50 and at p99.
 */
#include "evbench.h"

#include <evstore/inspect.h>
#include <evstore/server.h>

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_PAGE 50
#define API_TAIL 100
#define API_LONG 4  /* executions with a long history */
#define API_WARM 10 /* calls of each kind before the first measured */

enum {
    OP_C_LIST,
    OP_API_LIST,
    OP_C_TAIL,
    OP_API_TAIL,
    OP_INSPECT,
    OP_HEALTHZ,
    OP_N
};

typedef struct api_long {
    char id[32];
    uint64_t last; /* its last sequence */
    char *want;    /* the last 100 raw lines, without newlines, joined
                       by commas: the C API's answer */
    size_t want_len;
    char *want_api; /* "events":[ + want + ] as the API must send it */
} api_long;

typedef struct api_run {
    bench_ctx *c;
    evs_store *st;
    uv_loop_t loop;
    uv_async_t done;
    evs_server *sv;
    int closed;
    uint16_t port;
    int rc; /* the client's result */
    size_t made, nfailed;
    /* the expected first page */
    char want_ids[API_PAGE][EVS_ID_MAX + 1];
    size_t want_n, want_total;
    api_long lg[API_LONG];
    uint64_t tail_bytes;
    bench_http http;
    char *buf; /* the C API's tail, as it is copied out */
    size_t buf_len, buf_cap;
    double *lat[OP_N];
} api_run;

/* ------------------------------------------------------------------ */
/* Setup                                                              */
/* ------------------------------------------------------------------ */

/* An agent-like history of `n` events in appends of 1 to 8 events, as an
 * orchestrator writes them (not in bulk: the tail read then starts at
 * the end of a small append, as in P6's second round). No large outputs,
 * so the figure is the API's and not the copying of a MiB. */
static int make_long(api_run *a, api_long *lg, size_t n, uint64_t seed)
{
    bench_ctx *c = a->c;
    bench_workload w = {0};
    bench_gen g;
    bench_rng r;
    evs_error_info info;
    evs_log *l = NULL;
    uint64_t seq = 0;
    int rc = -1, err;

    err = evs_exec_create(a->st, lg->id, strlen(lg->id), NULL, NULL, 0);
    if (err == 0)
        err = evs_log_open(a->st, lg->id, strlen(lg->id), EVS_LOG_WRITE, &l,
                           NULL, &info);
    if (err != 0) {
        bench_evs_fail(c, err, "creating a long history");
        goto out;
    }
    bench_gen_init(&g, seed);
    g.large_every = 0;
    bench_rng_seed(&r, seed ^ 0x5eed);
    while (seq < n) {
        size_t k = 1 + (size_t)bench_rng_below(&r, 8);

        if (k > n - seq)
            k = (size_t)(n - seq);
        if (bench_gen_fill(&g, &w, k) != 0) {
            bench_fail(c, "generating events: out of memory");
            goto out;
        }
        if ((err = evs_log_append(l, w.ev, k, seq, &info)) != 0) {
            bench_fail(c, "evs_log_append: %s", info.msg);
            goto out;
        }
        seq += k;
    }
    lg->last = evs_log_last_seq(l);
    rc = 0;
out:
    evs_log_close(l);
    bench_workload_free(&w);
    return rc;
}

static int buf_add(api_run *a, const void *p, size_t n)
{
    if (a->buf_len + n > a->buf_cap) {
        size_t cap = a->buf_cap ? a->buf_cap : 65536;
        char *q;

        while (cap < a->buf_len + n)
            cap *= 2;
        if (!(q = realloc(a->buf, cap)))
            return -ENOMEM;
        a->buf = q;
        a->buf_cap = cap;
    }
    memcpy(a->buf + a->buf_len, p, n);
    a->buf_len += n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The calls, each timed and then checked                             */
/* ------------------------------------------------------------------ */

static double since_us(uint64_t t0)
{
    return (double)(bench_now_ns() - t0) / 1e3;
}

static int page_check(api_run *a, const evs_exec_listing *li, const char *who)
{
    if (li->count != a->want_n || li->total != a->want_total)
        return bench_fail(a->c, "%s: a page of %zu of %zu, not %zu of %zu", who,
                          li->count, li->total, a->want_n, a->want_total);
    for (size_t i = 0; i < li->count; i++)
        if (li->items[i].id.len != strlen(a->want_ids[i]) ||
            memcmp(li->items[i].id.ptr, a->want_ids[i], li->items[i].id.len) !=
                0)
            return bench_fail(a->c, "%s: row %zu is %.*s, not %s", who, i,
                              (int)li->items[i].id.len, li->items[i].id.ptr,
                              a->want_ids[i]);
    return 0;
}

static int op_c_list(api_run *a, double *us)
{
    evs_list_filter f;
    evs_exec_listing li;
    uint64_t t0;
    int err;

    memset(&f, 0, sizeof(f));
    f.status = evs_span_cstr("failed");
    f.limit = API_PAGE;
    t0 = bench_now_ns();
    err = evs_exec_list(a->st, &f, &li);
    *us = since_us(t0);
    if (err != 0)
        return bench_evs_fail(a->c, err, "evs_exec_list");
    err = page_check(a, &li, "evs_exec_list");
    evs_exec_list_free(&li);
    return err;
}

/* The member `name` of object o, of type t, or NULL. */
static json_object *member(json_object *o, const char *name, json_type t)
{
    json_object *v = NULL;

    if (!o || !json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, t))
        return NULL;
    return v;
}

/* Sends GET target; the answer must be 200 and JSON. *doc is owned. */
static int api_get(api_run *a, const char *target, double *us,
                   json_object **doc)
{
    uint64_t t0 = bench_now_ns();
    int err = bench_http_get(&a->http, target);

    *us = since_us(t0);
    *doc = NULL;
    if (err != 0)
        return bench_fail(a->c, "GET %s: %s", target, a->http.err);
    if (a->http.status != 200)
        return bench_fail(a->c, "GET %s: status %d: %.200s", target,
                          a->http.status, a->http.body);
    *doc = json_tokener_parse(a->http.body);
    if (!*doc || !json_object_is_type(*doc, json_type_object)) {
        json_object_put(*doc);
        *doc = NULL;
        return bench_fail(a->c, "GET %s: the answer is not a JSON object",
                          target);
    }
    return 0;
}

static int op_api_list(api_run *a, double *us)
{
    static const char target[] = "/v1/executions?status=failed&limit=50";
    json_object *doc, *items, *total, *next;
    int rc = -1;

    if (api_get(a, target, us, &doc) != 0)
        return -1;
    items = member(doc, "items", json_type_array);
    total = member(doc, "total", json_type_int);
    next = member(doc, "next_cursor", json_type_string);
    if (!items || !total || json_object_array_length(items) != a->want_n ||
        (size_t)json_object_get_int64(total) != a->want_total) {
        bench_fail(a->c, "GET %s: not a page of %zu of %zu: %.200s", target,
                   a->want_n, a->want_total, a->http.body);
        goto out;
    }
    if (!next != !(a->want_total > a->want_n)) {
        bench_fail(a->c, "GET %s: next_cursor is %s with %zu of %zu", target,
                   next ? "set" : "not set", a->want_n, a->want_total);
        goto out;
    }
    for (size_t i = 0; i < a->want_n; i++) {
        json_object *it = json_object_array_get_idx(items, i);
        json_object *id = member(it, "id", json_type_string);
        json_object *st = member(it, "status", json_type_string);

        if (!id || strcmp(json_object_get_string(id), a->want_ids[i]) != 0 ||
            !st || strcmp(json_object_get_string(st), "failed") != 0) {
            bench_fail(a->c, "GET %s: item %zu is not %s, failed", target, i,
                       a->want_ids[i]);
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(doc);
    return rc;
}

/* The JSON view the server's listing calls, with the limit it asks for
 * (one more than the page, to know whether there is a next one). */
static int op_inspect(api_run *a, double *us)
{
    char *text = NULL;
    evs_error_info err;
    json_object *doc, *items;
    uint64_t t0 = bench_now_ns();
    int rc = evs_inspect_list(a->st, "{\"status\":\"failed\",\"limit\":51}",
                              &text, &err);
    size_t want = a->want_total < API_PAGE + 1 ? a->want_total : API_PAGE + 1;

    *us = since_us(t0);
    if (rc != 0)
        return bench_fail(a->c, "evs_inspect_list: %s", err.msg);
    doc = json_tokener_parse(text);
    evs_free(evs_store_allocator(a->st), text);
    items = member(doc, "items", json_type_array);
    rc = items && json_object_array_length(items) == want ? 0 : -1;
    json_object_put(doc);
    if (rc != 0)
        return bench_fail(a->c, "evs_inspect_list: not %zu items", want);
    return 0;
}

/* What the server's history route does for one chunk (server/stream.c):
 * open a reader, a cursor from `from`, each line copied out. */
static int op_c_tail(api_run *a, api_long *lg, double *us)
{
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    evs_span raw;
    uint64_t from = lg->last - (API_TAIL - 1), t0;
    size_t n = 0;
    int rc, bad = 0;

    a->buf_len = 0;
    t0 = bench_now_ns();
    rc = evs_log_open(a->st, lg->id, strlen(lg->id), 0, &l, NULL, &info);
    if (rc == 0)
        rc = evs_cursor_open(l, from, 0, &cur, &info);
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, &raw, &info)) == 1) {
        bad |= ev.sequence != from + n;
        if ((n && buf_add(a, ",", 1) != 0) ||
            buf_add(a, raw.ptr, raw.len - 1) != 0) {
            rc = -ENOMEM;
            break;
        }
        n++;
        rc = 0;
    }
    evs_cursor_close(cur);
    evs_log_close(l);
    *us = since_us(t0);
    if (rc != 0)
        return bench_fail(a->c, "evstore tail read of %s: %s", lg->id,
                          rc == -ENOMEM ? "out of memory" : info.msg);
    if (n != API_TAIL || bad)
        return bench_fail(a->c, "evstore tail read of %s: %zu events%s", lg->id,
                          n, bad ? ", out of sequence" : "");
    if (lg->want && (a->buf_len != lg->want_len ||
                     memcmp(a->buf, lg->want, a->buf_len) != 0))
        return bench_fail(a->c, "evstore tail read of %s changed", lg->id);
    return 0;
}

static int op_api_tail(api_run *a, api_long *lg, double *us)
{
    char target[128];
    json_object *doc, *evs, *id;
    uint64_t from = lg->last - (API_TAIL - 1);
    int rc = -1;

    snprintf(target, sizeof(target), "/v1/executions/%s/events?from=%llu",
             lg->id, (unsigned long long)from);
    if (api_get(a, target, us, &doc) != 0)
        return -1;
    /* The lines, byte for byte, as the log holds them. */
    if (!memmem(a->http.body, a->http.body_len, lg->want_api,
                strlen(lg->want_api))) {
        bench_fail(a->c, "GET %s: the events are not the log's lines", target);
        goto out;
    }
    evs = member(doc, "events", json_type_array);
    id = member(doc, "id", json_type_string);
    if (!evs || json_object_array_length(evs) != API_TAIL || !id ||
        strcmp(json_object_get_string(id), lg->id) != 0 ||
        member(doc, "next_from", json_type_int) ||
        member(doc, "error", json_type_object)) {
        bench_fail(a->c, "GET %s: not %d events of %s to the end", target,
                   API_TAIL, lg->id);
        goto out;
    }
    for (size_t i = 0; i < API_TAIL; i++) {
        json_object *s = member(json_object_array_get_idx(evs, i), "sequence",
                                json_type_int);

        if (!s || (uint64_t)json_object_get_int64(s) != from + i) {
            bench_fail(a->c, "GET %s: event %zu is not sequence %llu", target,
                       i, (unsigned long long)(from + i));
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(doc);
    return rc;
}

/* A round trip with no store work: what HTTP alone costs here. */
static int op_healthz(api_run *a, double *us)
{
    json_object *doc;

    if (api_get(a, "/healthz", us, &doc) != 0)
        return -1;
    json_object_put(doc);
    return 0;
}

static int op_run(api_run *a, int op, size_t i, double *us)
{
    api_long *lg = &a->lg[i % API_LONG];

    switch (op) {
    case OP_C_LIST: return op_c_list(a, us);
    case OP_API_LIST: return op_api_list(a, us);
    case OP_C_TAIL: return op_c_tail(a, lg, us);
    case OP_API_TAIL: return op_api_tail(a, lg, us);
    case OP_INSPECT: return op_inspect(a, us);
    default: return op_healthz(a, us);
    }
}

/* ------------------------------------------------------------------ */
/* The client thread                                                  */
/* ------------------------------------------------------------------ */

/* The first page and the tails as the C API gives them: what every
 * later answer, of either API, must be. */
static int expect(api_run *a)
{
    evs_list_filter f;
    evs_exec_listing li;
    size_t want = a->nfailed < API_PAGE ? a->nfailed : API_PAGE;
    double us;
    int err;

    memset(&f, 0, sizeof(f));
    f.status = evs_span_cstr("failed");
    f.limit = API_PAGE;
    if ((err = evs_exec_list(a->st, &f, &li)) != 0)
        return bench_evs_fail(a->c, err, "evs_exec_list");
    if (li.count != want || li.total != a->nfailed) {
        bench_fail(a->c, "evs_exec_list: a page of %zu of %zu, not %zu of %zu",
                   li.count, li.total, want, a->nfailed);
        evs_exec_list_free(&li);
        return -1;
    }
    for (size_t i = 0; i < li.count; i++)
        snprintf(a->want_ids[i], sizeof(a->want_ids[i]), "%.*s",
                 (int)li.items[i].id.len, li.items[i].id.ptr);
    a->want_n = li.count;
    a->want_total = li.total;
    evs_exec_list_free(&li);
    for (int k = 0; k < API_LONG; k++) {
        api_long *lg = &a->lg[k];

        if (op_c_tail(a, lg, &us) != 0)
            return -1;
        lg->want = malloc(a->buf_len + 1);
        lg->want_api = malloc(a->buf_len + 16);
        if (!lg->want || !lg->want_api)
            return bench_fail(a->c, "out of memory");
        memcpy(lg->want, a->buf, a->buf_len);
        lg->want[a->buf_len] = '\0';
        lg->want_len = a->buf_len;
        snprintf(lg->want_api, a->buf_len + 16, "\"events\":[%s]", lg->want);
        a->tail_bytes = a->buf_len;
    }
    return 0;
}

/* A whole history through the API, once: answers sent in many chunks
 * (server/stream.c reads at most 512 events at a time), which the timed
 * calls, one chunk each, do not reach. Every event, in order, and the
 * end of its last line where the C API has it. */
static int check_whole(api_run *a)
{
    api_long *lg = &a->lg[0];
    char target[128];
    json_object *doc, *evs;
    const char *end;
    double us;
    size_t n;
    int rc = -1;

    snprintf(target, sizeof(target), "/v1/executions/%s/events", lg->id);
    if (api_get(a, target, &us, &doc) != 0)
        return -1;
    evs = member(doc, "events", json_type_array);
    n = evs ? json_object_array_length(evs) : 0;
    /* want_api past "events":[ is the tail and the array's end. */
    end = lg->want_api + strlen("\"events\":[");
    if (n != lg->last ||
        !memmem(a->http.body, a->http.body_len, end, strlen(end))) {
        bench_fail(a->c, "GET %s: %zu events, not the %llu of the log", target,
                   n, (unsigned long long)lg->last);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *s = member(json_object_array_get_idx(evs, i), "sequence",
                                json_type_int);

        if (!s || (uint64_t)json_object_get_int64(s) != i + 1) {
            bench_fail(a->c, "GET %s: event %zu is not sequence %zu", target, i,
                       i + 1);
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(doc);
    return rc;
}

static int measure(api_run *a)
{
    bench_ctx *c = a->c;
    size_t iters = c->sz.api_iters;
    bench_row *row[4], *ri;
    double hz[BENCH_MAX_REPEAT], hz99[BENCH_MAX_REPEAT];
    char metric[80];
    int rc = -1;

    if (expect(a) != 0)
        return -1;
    if (bench_http_connect(&a->http, a->port) != 0)
        return bench_fail(c, "%s", a->http.err);
    if (check_whole(a) != 0)
        goto out;
    for (int op = 0; op < OP_N; op++)
        if (!(a->lat[op] = calloc(iters, sizeof(double)))) {
            bench_fail(c, "out of memory");
            goto out;
        }
    snprintf(metric, sizeof(metric),
             "first page (%d) of %zu executions, status filter: p50", API_PAGE,
             a->made);
    row[0] = bench_row_add(c, "API", metric, "µs", 1);
    metric[strlen(metric) - 2] = '9';
    metric[strlen(metric) - 1] = '9';
    row[1] = bench_row_add(c, "API", metric, "µs", 1);
    snprintf(metric, sizeof(metric),
             "last %d events of a %llu-event execution: p50", API_TAIL,
             (unsigned long long)a->lg[0].last);
    row[2] = bench_row_add(c, "API", metric, "µs", 1);
    metric[strlen(metric) - 2] = '9';
    metric[strlen(metric) - 1] = '9';
    row[3] = bench_row_add(c, "API", metric, "µs", 1);
    ri = bench_row_add(c, "API",
                       "first page: evs_inspect_list, the JSON view the "
                       "server calls: p50",
                       "µs", 1);
    for (int rep = 0; rep < c->repeat; rep++) {
        size_t warm = rep == 0 ? API_WARM : 0;

        for (size_t i = 0; i < warm + iters; i++) {
            bench_progress(c, 0, "api rep %d/%d: call %zu/%zu", rep + 1,
                           c->repeat, i + 1, warm + iters);
            for (int op = 0; op < OP_N; op++) {
                /* C and API in turn, the first of the pair alternating,
                 * so that neither always runs on a warmer cache. */
                int o = (i & 1) && op < OP_INSPECT ? op ^ 1 : op;
                double us;

                if (op_run(a, o, i, &us) != 0)
                    goto out;
                if (i >= warm)
                    a->lat[o][i - warm] = us;
            }
        }
        for (int k = 0; k < 2; k++) {
            double q[2] = {0.5, 0.99};

            for (int p = 0; p < 2; p++) {
                bench_row *r = row[k * 2 + p];
                int cop = k ? OP_C_TAIL : OP_C_LIST;

                bench_row_push(r, SYS_FLOOR,
                               bench_quantile(a->lat[cop], iters, q[p]));
                bench_row_push(r, SYS_EVSTORE,
                               bench_quantile(a->lat[cop + 1], iters, q[p]));
            }
        }
        bench_row_push(ri, SYS_FLOOR,
                       bench_quantile(a->lat[OP_C_LIST], iters, 0.5));
        bench_row_push(ri, SYS_EVSTORE,
                       bench_quantile(a->lat[OP_INSPECT], iters, 0.5));
        hz[rep] = bench_quantile(a->lat[OP_HEALTHZ], iters, 0.5);
        hz99[rep] = bench_quantile(a->lat[OP_HEALTHZ], iters, 0.99);
    }
    for (int k = 0; k < 4; k++) {
        double api = bench_row_median(row[k], SYS_EVSTORE);
        double capi = bench_row_median(row[k], SYS_FLOOR);

        bench_row_target(row[k], "≤ 2× C API + 200 µs (%.0f µs)",
                         2 * capi + 200);
        bench_row_judge(row[k], api <= 2 * capi + 200);
    }
    bench_note(c,
               "API rows: the floor column is the same call through the C "
               "API on the same store handle (evs_exec_list; evs_log_open + "
               "a cursor from N-99), made in turn with the HTTP call; "
               "%zu calls of each per repetition",
               iters);
    bench_note(c,
               "API: server embedded (evs_server_start) on a libuv loop in "
               "the bench's process, client over one keep-alive loopback "
               "connection; GET /healthz (no store work) p50 %.0f µs, p99 "
               "%.0f µs (medians of repetitions); tail of 100 events %.1f "
               "KiB; %lu reconnects",
               bench_quantile(hz, (size_t)c->repeat, 0.5),
               bench_quantile(hz99, (size_t)c->repeat, 0.5),
               (double)a->tail_bytes / 1024.0, a->http.reconnects);
    rc = 0;
out:
    bench_http_close(&a->http);
    for (int op = 0; op < OP_N; op++)
        free(a->lat[op]);
    return rc;
}

static void closed_cb(evs_server *sv, void *arg)
{
    api_run *a = arg;

    (void)sv;
    a->closed = 1;
}

/* On the loop: the client is done; close the server, and the loop runs
 * dry. */
static void done_cb(uv_async_t *h)
{
    api_run *a = h->data;

    evs_server_close(a->sv, closed_cb, a);
    uv_close((uv_handle_t *)h, NULL);
}

static void *client_main(void *arg)
{
    api_run *a = arg;

    a->rc = measure(a);
    uv_async_send(&a->done);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The scenario                                                       */
/* ------------------------------------------------------------------ */

static int serve_and_measure(api_run *a)
{
    bench_ctx *c = a->c;
    evs_server_opts o;
    evs_error_info err;
    pthread_t th;
    int rc, started = 0;

    if ((rc = uv_loop_init(&a->loop)) != 0)
        return bench_fail(c, "uv_loop_init: %s", uv_strerror(rc));
    if ((rc = uv_async_init(&a->loop, &a->done, done_cb)) != 0) {
        uv_loop_close(&a->loop);
        return bench_fail(c, "uv_async_init: %s", uv_strerror(rc));
    }
    a->done.data = a;
    evs_server_opts_init(&o); /* 127.0.0.1, a free port, no token */
    rc = evs_server_start(&a->loop, a->st, &o, &a->sv, &err);
    if (rc == 0) {
        a->port = evs_server_port(a->sv);
        if ((rc = pthread_create(&th, NULL, client_main, a)) == 0) {
            started = 1;
        } else {
            bench_fail(c, "pthread_create: %s", strerror(rc));
            evs_server_close(a->sv, closed_cb, a);
            uv_close((uv_handle_t *)&a->done, NULL);
            a->rc = -1;
        }
    } else {
        bench_fail(c, "evs_server_start: %s", err.msg);
        uv_close((uv_handle_t *)&a->done, NULL);
        a->rc = -1;
    }
    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (started)
        pthread_join(th, NULL);
    if (a->sv && !a->closed)
        a->rc = bench_fail(c, "the server did not close");
    if ((rc = uv_loop_close(&a->loop)) != 0)
        a->rc = bench_fail(c, "uv_loop_close: %s", uv_strerror(rc));
    return a->rc;
}

int scen_api(bench_ctx *c)
{
    static api_run run; /* the expected page is large for a stack */
    api_run *a = &run;
    char dir[4300];
    void (*old_pipe)(int);
    double budget, setup_s;
    size_t want;
    uint64_t t0;
    int rc = -1, shared;

    /* As evrun serve does, before the first use of the threadpool. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    memset(a, 0, sizeof(*a));
    a->c = c;
    want = c->p8_execs_forced ? c->p8_execs_forced : c->sz.p8_execs;
    budget = c->p8_execs_forced ? 0 : c->sz.p8_budget_s;
    /* P8's executions, if P8 left them; else the same made here. */
    shared = c->list_ready;
    bench_path(dir, sizeof(dir), c->root, shared ? BENCH_LIST_DIR : "apistore");
    if (bench_store_open_at(c, dir, EVS_SYNC_NONE, &a->st) != 0)
        goto out;
    t0 = bench_now_ns();
    if (shared) {
        a->made = c->list_made;
        a->nfailed = c->list_failed;
        c->list_ready = 0; /* removed below */
    } else if (bench_list_populate(c, a->st, NULL, NULL, NULL, NULL, want, budget,
                                   &a->made,
                                   &a->nfailed) != 0) {
        goto out;
    }
    for (int k = 0; k < API_LONG; k++) {
        snprintf(a->lg[k].id, sizeof(a->lg[k].id), "api-long-%d", k);
        bench_progress(c, 1, "api setup: long history %d/%d", k + 1, API_LONG);
        if (make_long(a, &a->lg[k], c->sz.api_events, c->seed + 40 + k) != 0)
            goto out;
    }
    setup_s = (double)(bench_now_ns() - t0) / 1e9;
    bench_note(c,
               "API setup: %zu executions (%zu failed), %s, and %d of "
               "%zu events in appends of 1-8, in %.1f s",
               a->made, a->nfailed, shared ? "P8's own" : "made as P8's",
               API_LONG, c->sz.api_events, setup_s);
    if (a->made < want)
        bench_note(c,
                   "API ran with %zu executions, not %zu: setup stopped at "
                   "its %.0f s limit (use --p8-execs N to force a size)",
                   a->made, want, budget);
    /* The host's part (evstore/server.h, "Signals"). */
    old_pipe = signal(SIGPIPE, SIG_IGN);
    rc = serve_and_measure(a);
    signal(SIGPIPE, old_pipe);
out:
    for (int k = 0; k < API_LONG; k++) {
        free(a->lg[k].want);
        free(a->lg[k].want_api);
    }
    free(a->buf);
    evs_store_close(a->st);
    if (!c->keep)
        floor_rm_rf(dir);
    return rc;
}
