/*
 * server_int.h: what the files of the HTTP server share: the server, a
 * request's work on the threadpool (a job), a stream (history in chunks,
 * or a follower's Server-Sent Events), the answers, and the counters
 * /metrics shows.
 */
#ifndef EVS_SERVER_INT_H
#define EVS_SERVER_INT_H

#include "evstore/gc.h"
#include "evstore/inspect.h"
#include "evstore/server.h"
#include "formats_shared.h" /* evs__jbuf, evs__opts_read */

#include <h2o.h>

/* The routes, each with its name as /metrics counts it. */
#define EVS__ROUTES(X)                                                        \
    X(HEALTHZ, "healthz")                                                     \
    X(METRICS, "metrics")                                                     \
    X(EXEC_LIST, "executions.list")                                           \
    X(EXEC_GET, "executions.get")                                             \
    X(EXEC_CREATE, "executions.create")                                       \
    X(EXEC_BATCH, "executions.batch")                                         \
    X(EXEC_PAUSE, "executions.pause")                                         \
    X(EXEC_UNPAUSE, "executions.unpause")                                     \
    X(EXEC_TERMINATE, "executions.terminate")                                 \
    X(EXEC_EVENT, "executions.event")                                         \
    X(EXEC_RESTART, "executions.restart")                                     \
    X(EXEC_RETRY, "executions.retry")                                         \
    X(EXEC_EVENTS, "executions.events")                                       \
    X(EXEC_FOLLOW, "executions.follow")                                       \
    X(EXEC_STATE, "executions.state")                                         \
    X(EXEC_LINEAGE, "executions.lineage")                                     \
    X(DEF_LIST, "definitions.list")                                           \
    X(DEF_GET, "definitions.get")                                             \
    X(DEF_CHECK, "definitions.check")                                         \
    X(STATIC, "static")                                                       \
    X(NONE, "none")

typedef enum srv_route {
#define X(n, s) SRV_##n,
    EVS__ROUTES(X)
#undef X
        SRV_ROUTE_COUNT
} srv_route;

extern const char *const evs__srv_route_names[SRV_ROUTE_COUNT];

/* The status codes /metrics counts requests by. */
#define SRV_CODES(X)                                                          \
    X(200) X(201) X(400) X(401) X(403) X(404) X(405) X(409) X(413) X(431)     \
        X(500) X(503)
enum { SRV_CODE_COUNT = 12 };
extern const int evs__srv_codes[SRV_CODE_COUNT];
/* The upper bounds of the request duration histogram, in seconds; one
 * more bucket counts what passes the last. */
enum { SRV_BUCKETS = 14 };
extern const double evs__srv_buckets[SRV_BUCKETS];

typedef struct srv_stream srv_stream;
typedef struct srv_job srv_job;

struct evs_server {
    uv_loop_t *loop;
    evs_store *store;
    evs_server_opts opts;
    char *token;
    size_t token_len;
    char *defs_dir, *console_dir;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    uv_tcp_t listener;
    int listening, ctx_ready, stopping, closing;
    uint16_t port;
    size_t conns, jobs; /* open connections; work on the threadpool */
    srv_stream *streams; /* live streams, a list */
    uv_timer_t drain;    /* waits for h2o's timeouts to empty (server.c) */
    uv_idle_t closer;    /* the last turn of a close (server.c) */
    evs_server_close_cb close_cb;
    void *close_arg;
    /* Counters for /metrics (loop thread only). */
    uint64_t served[SRV_ROUTE_COUNT][SRV_CODE_COUNT];
    uint64_t latency[SRV_ROUTE_COUNT][SRV_BUCKETS + 1];
    double latency_sum[SRV_ROUTE_COUNT];
    uint64_t body_bytes_in, bytes_out, followers, events_streamed;
    int64_t started_us;
};

/*
 * One request's work on the threadpool. Everything the work reads is
 * copied in before it is queued (the request may go while it runs), and
 * the answer is written to `out` with `status`; the loop thread sends it
 * if the request is still there. A job is freed by the server once it
 * is answered (or its request is gone).
 */
struct srv_job {
    uv_work_t work;
    evs_server *sv;
    h2o_req_t *req;        /* NULL once the request is gone */
    struct srv_guard *guard;
    srv_route route;
    void (*run)(srv_job *j);  /* on the threadpool */
    void (*done)(srv_job *j); /* on the loop before the answer; may be NULL */
    char id[EVS_ID_MAX + 1];  /* the execution the path names */
    char name[256];           /* a definition's name, a kind */
    /* Who asks, for pause, unpause and terminate when the body does not
     * say: "api:" and the client's address ("api" if unknown). */
    char caller[64];
    char *body;               /* the request's body, NUL-terminated */
    size_t body_len;
    char *query; /* the query string, NUL-terminated */
    int status;
    const char *content_type; /* NULL: application/json */
    evs__jbuf out;
    /* For done: executions created, to take at once (evs_orch_resume). */
    char **created;
    size_t n_created;
};

/* Frees a job that was not queued (a queued one frees itself). */
void evs__srv_job_free(srv_job *j);
/* Queues j (run on the threadpool, then answered). Takes j over. */
void evs__srv_job_queue(srv_job *j);
/* A new job for req, its body and query copied; NULL on ENOMEM (the
 * request is then answered 500). */
srv_job *evs__srv_job_new(evs_server *sv, h2o_req_t *req, srv_route route,
                          void (*run)(srv_job *));

/* Answers a request at once, from the loop thread. `body` is JSON. */
void evs__srv_send(evs_server *sv, h2o_req_t *req, srv_route route, int status,
                   const char *ctype, const char *body, size_t len);
/* Answers {"error":{"code":CODE,"message":MSG}} with `status`. */
void evs__srv_error(evs_server *sv, h2o_req_t *req, srv_route route,
                    int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Writes the error document into j->out and sets j->status. */
void evs__srv_job_error(srv_job *j, int status, const char *code,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes the error document for a library error rc, with err's message
 * when it has one: 404 for -ENOENT, 400 for a bad id or bad input, 409
 * for conflicts (-EEXIST, EVS_EFINISHED, EVS_ELOCKED), else 500. */
void evs__srv_job_fail(srv_job *j, int rc, const evs_error_info *err);
/* The code an error document names for a library error: evs_err_name's
 * without its "EVS_" ("EPARSE", "ENOENT"). */
const char *evs__srv_code_name(int rc);
/* Counts one answer for /metrics, and its duration when req is given
 * (h2o's processed_at to now). */
void evs__srv_count(evs_server *sv, srv_route route, int status,
                    h2o_req_t *req);

/* Reads query parameter `key` (decoded into buf, NUL-terminated):
 * 1 found, 0 absent, -1 bad (too long, bad escape). */
int evs__srv_query(const char *query, const char *key, char *buf, size_t cap);
/* A query parameter as an unsigned integer: 0 ok (absent leaves *v),
 * -1 bad. */
int evs__srv_query_u64(const char *query, const char *key, uint64_t *v);

/* The routes (routes.c, routes_def.c, stream.c, metrics.c). */
void evs__srv_exec_list(srv_job *j);
void evs__srv_exec_get(srv_job *j);
void evs__srv_exec_create(srv_job *j);
void evs__srv_exec_batch(srv_job *j);
void evs__srv_exec_request(srv_job *j);
void evs__srv_exec_retry(srv_job *j);
void evs__srv_exec_state(srv_job *j);
void evs__srv_exec_lineage(srv_job *j);
void evs__srv_def_list(srv_job *j);
void evs__srv_def_get(srv_job *j);
void evs__srv_def_check(srv_job *j);
void evs__srv_metrics(srv_job *j);
void evs__srv_metrics_done(srv_job *j);
void evs__srv_created_done(srv_job *j);

/* History (follow = 0) or a follower (1), streamed from the loop. */
void evs__srv_stream_start(evs_server *sv, h2o_req_t *req, srv_route route,
                           const char *id, int follow);
/* The stream after s in the server's list. */
srv_stream *evs__srv_stream_next(srv_stream *s);
/* Ends every stream (the server stops). */
void evs__srv_streams_end(evs_server *sv);

/* A definitions directory's file for workflow `name` (its file stem):
 * read into *text (malloc'd). 0, -ENOENT, EVS_EBADID (a bad name) or
 * -errno. */
int evs__srv_def_read(evs_server *sv, const char *name, char **text,
                      size_t *len);

/* Called when the last connection, job or stream is gone while closing. */
void evs__srv_maybe_finish(evs_server *sv);

#endif /* EVS_SERVER_INT_H */
