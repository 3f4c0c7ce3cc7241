/*
 * evstore/server.h: the HTTP API, served on the host's libuv loop.
 *
 * An evs_server answers HTTP/1.1 requests for one store: JSON in and
 * out under versioned paths (/v1/...), errors as
 * {"error":{"code":NAME,"message":TEXT}}, history streamed, a live
 * execution followed with Server-Sent Events, /metrics in Prometheus'
 * text format and /healthz. server/README.md lists every route with its
 * parameters and answers; `evrun serve STORE --http ADDR:PORT` serves
 * one beside the runners.
 *
 * Lifecycle: evs_server_opts_init -> evs_server_start (binds and
 * listens) -> the host runs its loop -> evs_server_stop (no new
 * connections; optional) -> evs_server_close (asynchronous, as
 * uv_close: its callback runs on a later turn of the loop, after which
 * the loop may be closed).
 *
 * Threads: every call here is made on the loop's thread. The store's
 * work (reads, replays, requests posted to an inbox, creations) runs on
 * libuv's threadpool, so the loop never waits on a disk or an fsync;
 * the store must be one that threads may share (evstore/store.h).
 *
 * Security: a bearer token (opts.token) is compared in constant time on
 * every route but /healthz and the console's static files (which hold no
 * secret; the page asks for the token before it calls the API); a server asked to listen on an address that
 * is not loopback without a token is refused (EVS_EUNSAFE). Request
 * bodies and headers are bounded; ids are checked as everywhere
 * (evs_id_valid). The authorize hook lets a host decide each request
 * itself, after the token check.
 *
 * Signals: a client that closes its connection while an answer is being
 * written makes the write raise SIGPIPE, which kills a process that has
 * not set it aside. The library does not change the process's signal
 * dispositions: the host ignores SIGPIPE (signal(SIGPIPE, SIG_IGN)), as
 * libuv's servers must; `evrun serve --http` does.
 *
 * Memory: h2o keeps per-thread caches of the buffers it frees, which
 * stay with the thread: a host that runs the loop on a thread that then
 * ends leaves some KiB behind (LeakSanitizer reports them under
 * h2o_mem_alloc_recycle).
 *
 * This header needs libuv's, and so, under strict C11, a POSIX feature
 * macro (evstore/orchestrator.h says which).
 */
#ifndef EVSTORE_SERVER_H
#define EVSTORE_SERVER_H

#include "orchestrator.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_server evs_server;

/**
 * What the authorize hook is told of one request. Every span is
 * borrowed for the call (it points into the request).
 */
typedef struct evs_http_request_info {
    evs_span method;       /* "GET", "POST", ... */
    evs_span path;         /* without the query: "/v1/executions/ID" */
    evs_span query;        /* after '?', empty if none */
    evs_span route;        /* the route's name, as /metrics counts it:
                              "executions.list", "executions.pause", ...;
                              "static" for the console's files */
    evs_span execution_id; /* the execution the path names; empty if none */
    evs_span token;        /* the bearer token presented; empty if none */
    int writes;            /* 1 if the route changes the store (POST) */
    const struct sockaddr *peer; /* the client's address; may be NULL */
} evs_http_request_info;

/**
 * Decides one request, after the server's own token check passed. Return
 * 0 to serve it, -EACCES to refuse it with 403 Forbidden, or -EPERM to
 * refuse it with 401 Unauthorized. Called on the loop thread; it must not
 * block. It is not called for /healthz.
 */
typedef int (*evs_http_authorize_fn)(void *arg,
                                     const evs_http_request_info *req);

typedef struct evs_server_opts {
    size_t size;         /* set by evs_server_opts_init (common.h,
                            "Options structs") */
    const char *address; /* IPv4 or IPv6 literal; default "127.0.0.1" */
    uint16_t port;       /* 0 (default): a free port, which
                            evs_server_port tells */
    /* The bearer token every route but /healthz and /console/ requires (the
     * "Authorization: Bearer TOKEN" header), compared in constant time;
     * copied. Empty (default): none, which only a loopback address
     * accepts. */
    evs_span token;
    evs_http_authorize_fn authorize; /* may be NULL: token only */
    void *authorize_arg;
    /* A directory of workflow definitions (*.json), read at each request
     * that needs one, so that a definition added later is served: create
     * takes its `workflow` from there, and /v1/definitions lists them.
     * NULL (default): none (create is refused with 404). Copied. */
    const char *definitions_dir;
    /* A directory of static files served under /console/ (GET only;
     * names of [A-Za-z0-9._-] only, no subdirectories). NULL (default):
     * none. Copied. */
    const char *console_dir;
    size_t max_body;   /* bytes of a request body; default 1 MiB;
                          over it: 413 */
    size_t max_header; /* bytes of the request line and headers together;
                          default 16 KiB, at most 256 KiB; over it: 431 */
    size_t max_batch;  /* executions one batch may create; default 1000 */
    size_t page_max;   /* items one page of a listing or history may
                          hold; default 1000 */
    uint32_t follow_ms; /* how often a follower looks for new events;
                           default 100 */
    /* The host's orchestrator on the same loop, if it runs executions
     * here (evrun serve): a created execution, or a retry's successor, is
     * taken at once (evs_orch_resume) instead of at its next adoption
     * poll. NULL (default): they wait for a runner. Borrowed: it must
     * outlive the server. */
    evs_orch *orch;
} evs_server_opts;

/**
 * Fills *o with the defaults above and o->size. `o` must not be NULL.
 * Thread-safe.
 */
EVS_EXTERN void evs_server_opts_init(evs_server_opts *o);

/**
 * Serves store `s` on `loop`: binds opts->address:opts->port and listens.
 * `s` and `loop` are borrowed and must outlive the server (until
 * evs_server_close's callback). `opts` may be NULL for the defaults; it
 * is copied.
 *
 * `err` (may be NULL) says why a start was refused, in one line.
 * Returns 0 and sets *out, or EVS_EUNSAFE (a non-loopback address
 * without a token), -EINVAL (bad options: an address that is not an IP
 * literal, a token with bytes a header cannot carry, a max_header out of
 * range, a directory that is not one), -EADDRINUSE, -ENOMEM, or another
 * libuv error as -errno.
 */
EVS_EXTERN int evs_server_start(uv_loop_t *loop, evs_store *s,
                                const evs_server_opts *opts, evs_server **out,
                                evs_error_info *err);

/** The port the server listens on (the one the system chose for port 0);
 *  0 after evs_server_stop. */
EVS_EXTERN uint16_t evs_server_port(const evs_server *sv);

/**
 * Stops accepting connections; requests under way are answered, idle
 * connections are closed, and followers (Server-Sent Events) end. Safe to
 * call twice. Accepts NULL.
 */
EVS_EXTERN void evs_server_stop(evs_server *sv);

typedef void (*evs_server_close_cb)(evs_server *sv, void *arg);

/**
 * Stops the server (evs_server_stop) and frees it once every connection
 * has closed and every piece of work on the threadpool has come back:
 * `cb` (may be NULL) is called then, on the loop thread, and `sv` is
 * gone after it returns. The loop must run for that to happen. A client
 * that holds a connection half-way through a request is waited for up
 * to h2o's request timeout (10 s). Accepts NULL (cb is then not called).
 */
EVS_EXTERN void evs_server_close(evs_server *sv, evs_server_close_cb cb,
                                 void *arg);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_SERVER_H */
