/*
 * test_server.c: the embeddable HTTP server (evstore/server.h) as a host
 * uses it: options refused, a server on the host's loop (run here on a
 * thread of its own), the authorize hook deciding each request, the
 * token, and close calling back once everything is gone. The routes
 * themselves are tests/server/test_http_api.py's.
 */
#include "evstore/server.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *g_dir;
static evs_store *g_st;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    tu_fresh_store("server", &g_dir, &g_st);
}

static void teardown(void)
{
    tu_drop_store(&g_dir, &g_st);
}

TestSuite(server, .init = setup, .fini = teardown);

/* A loop on a thread of its own, with an async handle to stop it. */
typedef struct host {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    evs_server *sv;
    int closed;
    /* What the hook saw last, and what it answers. */
    char route[64], id[EVS_ID_MAX + 1], token[64];
    int writes, answer, calls;
} host;

static void closed_cb(evs_server *sv, void *arg)
{
    host *h = arg;

    (void)sv;
    h->closed++;
}

static void stop_cb(uv_async_t *a)
{
    host *h = a->data;

    evs_server_close(h->sv, closed_cb, h);
    uv_close((uv_handle_t *)a, NULL);
}

static void *run(void *arg)
{
    host *h = arg;

    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int authorize(void *arg, const evs_http_request_info *r)
{
    host *h = arg;

    h->calls++;
    snprintf(h->route, sizeof(h->route), "%.*s", (int)r->route.len,
             r->route.ptr);
    snprintf(h->id, sizeof(h->id), "%.*s", (int)r->execution_id.len,
             r->execution_id.ptr);
    snprintf(h->token, sizeof(h->token), "%.*s", (int)r->token.len,
             r->token.ptr);
    h->writes = r->writes;
    cr_assert_not_null(r->peer);
    return h->answer;
}

static void host_start(host *h, evs_server_opts *o)
{
    evs_error_info err;

    memset(h, 0, sizeof(*h));
    cr_assert_eq(uv_loop_init(&h->loop), 0);
    cr_assert_eq(uv_async_init(&h->loop, &h->stop, stop_cb), 0);
    h->stop.data = h;
    cr_assert_eq(evs_server_start(&h->loop, g_st, o, &h->sv, &err), 0, "%s",
                 err.msg);
    cr_assert_neq(evs_server_port(h->sv), 0);
    cr_assert_eq(pthread_create(&h->thread, NULL, run, h), 0);
}

static void host_stop(host *h)
{
    uv_async_send(&h->stop);
    cr_assert_eq(pthread_join(h->thread, NULL), 0);
    /* The loop ran dry: the server closed everything it had. */
    cr_assert_eq(h->closed, 1);
    cr_assert_eq(uv_loop_close(&h->loop), 0);
}

/* Sends one request and returns the status of the answer; the body,
 * NUL-terminated, in buf. */
static int request(uint16_t port, const char *req, char *buf, size_t cap)
{
    struct sockaddr_in a;
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

    cr_assert_geq(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    sscanf(buf, "HTTP/1.1 %d", &status);
    return status;
}

Test(server, refuses_bad_options)
{
    uv_loop_t loop;
    evs_server_opts o;
    evs_server *sv = NULL;
    evs_error_info err;

    cr_assert_eq(uv_loop_init(&loop), 0);
    evs_server_opts_init(&o);
    o.address = "0.0.0.0";
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), EVS_EUNSAFE);
    cr_assert(strstr(err.msg, "without a token"), "%s", err.msg);
    o.address = "::";
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), EVS_EUNSAFE);
    o.address = "localhost"; /* not an IP literal */
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), -EINVAL);
    o.address = "127.0.0.1";
    o.token = evs_span_cstr("has space");
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), -EINVAL);
    o.token = (evs_span){0};
    o.max_header = 10;
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), -EINVAL);
    o.max_header = 16384;
    o.definitions_dir = "/nonexistent/defs";
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), -EINVAL);
    o.definitions_dir = NULL;
    o.size = 8; /* not filled in by evs_server_opts_init */
    cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err), -EINVAL);
    cr_assert_null(sv);
    /* Nothing was left on the loop. */
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(server, non_loopback_with_a_token_starts)
{
    evs_server_opts o;
    host h;

    evs_server_opts_init(&o);
    o.address = "0.0.0.0";
    o.token = evs_span_cstr("tok");
    host_start(&h, &o);
    host_stop(&h);
}

Test(server, a_port_in_use_is_refused)
{
    evs_server_opts o;
    evs_error_info err;
    evs_server *sv = NULL;
    host h;

    evs_server_opts_init(&o);
    host_start(&h, &o);
    o.port = evs_server_port(h.sv);
    {
        uv_loop_t loop;
        cr_assert_eq(uv_loop_init(&loop), 0);
        cr_assert_eq(evs_server_start(&loop, g_st, &o, &sv, &err),
                     -EADDRINUSE);
        cr_assert_null(sv);
        cr_assert(strstr(err.msg, "cannot listen"), "%s", err.msg);
        /* The half-started server is freed as the loop turns. */
        cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
        cr_assert_eq(uv_loop_close(&loop), 0);
    }
    host_stop(&h);
}

Test(server, authorize_hook_decides_each_request)
{
    evs_server_opts o;
    char buf[8192];
    host h;
    int st;

    evs_server_opts_init(&o);
    o.token = evs_span_cstr("tok");
    o.authorize = authorize;
    o.authorize_arg = &h;
    host_start(&h, &o);
    o.authorize_arg = NULL; /* the server copied the options */
    h.answer = 0;
    st = request(evs_server_port(h.sv),
                 "GET /v1/executions/abc HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer tok\r\nConnection: close\r\n\r\n",
                 buf, sizeof(buf));
    cr_assert_eq(st, 404, "%s", buf); /* allowed; there is no abc */
    cr_assert_str_eq(h.route, "executions.get");
    cr_assert_str_eq(h.id, "abc");
    cr_assert_str_eq(h.token, "tok");
    cr_assert_eq(h.writes, 0);
    h.answer = -EACCES;
    st = request(evs_server_port(h.sv),
                 "POST /v1/executions/abc/pause HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer tok\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 buf, sizeof(buf));
    cr_assert_eq(st, 403, "%s", buf);
    cr_assert(strstr(buf, "\"code\":\"forbidden\""), "%s", buf);
    cr_assert_str_eq(h.route, "executions.pause");
    cr_assert_eq(h.writes, 1);
    h.answer = -EPERM;
    st = request(evs_server_port(h.sv),
                 "GET /v1/executions HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer tok\r\nConnection: close\r\n\r\n",
                 buf, sizeof(buf));
    cr_assert_eq(st, 401, "%s", buf);
    /* The token is checked first: a wrong one never reaches the hook,
     * and /healthz asks neither. */
    h.calls = 0;
    h.answer = 0;
    st = request(evs_server_port(h.sv),
                 "GET /v1/executions HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer tol\r\nConnection: close\r\n\r\n",
                 buf, sizeof(buf));
    cr_assert_eq(st, 401, "%s", buf);
    st = request(evs_server_port(h.sv),
                 "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                 "Connection: close\r\n\r\n",
                 buf, sizeof(buf));
    cr_assert_eq(st, 200, "%s", buf);
    cr_assert_eq(h.calls, 0);
    st = request(evs_server_port(h.sv),
                 "GET /v1/executions HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer tok\r\nConnection: close\r\n\r\n",
                 buf, sizeof(buf));
    cr_assert_eq(st, 200, "%s", buf);
    cr_assert_eq(h.calls, 1);
    host_stop(&h);
}

Test(server, close_waits_for_a_follower_and_ends_it)
{
    evs_server_opts o;
    struct sockaddr_in a;
    char buf[8192];
    size_t got = 0;
    ssize_t n;
    host h;
    int fd;

    cr_assert_eq(tu_make_exec(g_st, "live", 3), 0);
    evs_server_opts_init(&o);
    host_start(&h, &o);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(evs_server_port(h.sv));
    a.sin_addr.s_addr = htonl(0x7f000001);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    {
        const char *req = "GET /v1/executions/live/follow HTTP/1.1\r\n"
                          "Host: x\r\n\r\n";
        cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    }
    /* Its four events (the execution never ends), then the close. */
    while (!strstr(buf, "id: 4\n") &&
           (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
        got += (size_t)n;
        buf[got] = '\0';
    }
    cr_assert(strstr(buf, "text/event-stream"), "%s", buf);
    uv_async_send(&h.stop);
    while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    cr_assert(strstr(buf, "event: end\ndata: {\"reason\":\"server_stopping\""),
              "%s", buf);
    close(fd);
    cr_assert_eq(pthread_join(h.thread, NULL), 0);
    cr_assert_eq(h.closed, 1);
    cr_assert_eq(uv_loop_close(&h.loop), 0);
}
