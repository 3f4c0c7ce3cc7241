/*
 * server.c: the HTTP server's life (start, stop, close), its connections
 * (accepted on the host's loop and handed to h2o), what every request
 * goes through before its route (header bound, token, authorize hook,
 * routing), and the console's static files. The answers and the jobs
 * that carry store work to the threadpool are job.c's.
 *
 * h2o parses HTTP/1.1 and writes the answers; a route either answers on
 * the loop at once (errors, /healthz, the console's files), queues a job
 * whose store work runs on the threadpool (the loop never waits on a
 * disk), or starts a stream (stream.c).
 */
#include "server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const evs__srv_route_names[SRV_ROUTE_COUNT] = {
#define X(n, s) s,
    EVS__ROUTES(X)
#undef X
};

const int evs__srv_codes[SRV_CODE_COUNT] = {
#define X(c) c,
    SRV_CODES(X)
#undef X
};

#define SRV_MAX_HEADER_CAP ((size_t)256 << 10)

void evs_server_opts_init(evs_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->address = "127.0.0.1";
    o->max_body = (size_t)1 << 20;
    o->max_header = (size_t)16 << 10;
    o->max_batch = 1000;
    o->page_max = 1000;
    o->follow_ms = 100;
}

uint16_t evs_server_port(const evs_server *sv)
{
    return sv && sv->listening ? sv->port : 0;
}

/* ------------------------------------------------------------------ */
/* Routing                                                            */
/* ------------------------------------------------------------------ */

/* Compares the token presented with the server's in time that depends
 * only on the server's token's length. */
static int token_ok(const evs_server *sv, evs_span given)
{
    volatile unsigned char acc = (unsigned char)(given.len != sv->token_len);

    for (size_t i = 0; i < sv->token_len; i++) {
        unsigned char g = i < given.len ? (unsigned char)given.ptr[i] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)sv->token[i]);
    }
    return acc == 0;
}

/* The client's address, in *ss; NULL if it cannot be had. */
static const struct sockaddr *peer_of(h2o_req_t *req,
                                      struct sockaddr_storage *ss)
{
    if (!req->conn->callbacks->get_peername(req->conn,
                                            (struct sockaddr *)ss))
        return NULL;
    return (const struct sockaddr *)ss;
}

/* Who asks, as a request records it when its body does not say (server/
 * README.md): "api:" and the client's address, "api" if that is not to
 * be had. */
static void caller_of(h2o_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = peer_of(req, &ss);
    char addr[INET6_ADDRSTRLEN] = "";

    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr,
                  sizeof(addr));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                  addr, sizeof(addr));
    snprintf(out, cap, "api%s%s", addr[0] ? ":" : "", addr);
}

/* The bearer token of the Authorization header; empty if none. */
static evs_span bearer_of(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v;

    if (i < 0)
        return (evs_span){0};
    v = req->headers.entries[i].value;
    if (v.len < 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
        return (evs_span){0};
    return (evs_span){v.base + 7, v.len - 7};
}

static size_t header_bytes(const h2o_req_t *req)
{
    size_t n = req->method.len + req->path.len + 12;

    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len +
             req->headers.entries[i].value.len + 4;
    return n;
}

/* What a path names: route, execution id, or a definition's name. */
typedef struct target {
    srv_route route;
    int post;       /* the method the route takes: 1 POST, 0 GET */
    int need_id;    /* the route names an execution in `id` */
    evs_span id;    /* as in the path (checked later) */
    evs_span name;  /* definitions.get's, the console's file */
    const char *kind; /* a request's kind ("pause", ...) */
} target;

static int seg_is(evs_span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Splits the path (without the query) into up to 5 segments. Returns
 * the count, or -1 for more. */
static int split(evs_span path, evs_span seg[5])
{
    size_t i = 1, n = 0;

    if (!path.len || path.ptr[0] != '/')
        return -1;
    while (i <= path.len) {
        size_t j = i;
        while (j < path.len && path.ptr[j] != '/')
            j++;
        if (n == 5)
            return -1;
        seg[n++] = (evs_span){path.ptr + i, j - i};
        i = j + 1;
    }
    return (int)n;
}

/* Finds the route of a path; route NONE if there is none. */
static target route_of(evs_span path)
{
    target t = {SRV_NONE, 0, 0, {0}, {0}, NULL};
    evs_span s[5];
    int n = split(path, s);

    if (n == 1 && seg_is(s[0], "healthz"))
        t.route = SRV_HEALTHZ;
    else if (n == 1 && seg_is(s[0], "metrics"))
        t.route = SRV_METRICS;
    else if (n == 2 && seg_is(s[0], "console")) {
        t.route = SRV_STATIC;
        t.name = s[1].len ? s[1] : evs_span_cstr("index.html");
    }
    if (t.route != SRV_NONE || n < 2 || !seg_is(s[0], "v1"))
        return t;
    if (seg_is(s[1], "executions")) {
        if (n == 2) {
            t.route = SRV_EXEC_LIST; /* POST: create (below) */
        } else if (n == 3 && seg_is(s[2], "batch")) {
            t.route = SRV_EXEC_BATCH;
            t.post = 1;
        } else if (n == 3) {
            t.route = SRV_EXEC_GET;
            t.need_id = 1;
            t.id = s[2];
        } else if (n == 4) {
            static const struct {
                const char *seg;
                srv_route r;
                int post;
                const char *kind;
            } sub[] = {
                {"pause", SRV_EXEC_PAUSE, 1, "pause"},
                {"unpause", SRV_EXEC_UNPAUSE, 1, "unpause"},
                {"terminate", SRV_EXEC_TERMINATE, 1, "terminate"},
                {"signal", SRV_EXEC_EVENT, 1, "event"},
                {"restart", SRV_EXEC_RESTART, 1, NULL},
                {"retry", SRV_EXEC_RETRY, 1, NULL},
                {"events", SRV_EXEC_EVENTS, 0, NULL},
                {"follow", SRV_EXEC_FOLLOW, 0, NULL},
                {"state", SRV_EXEC_STATE, 0, NULL},
                {"lineage", SRV_EXEC_LINEAGE, 0, NULL},
            };
            for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
                if (seg_is(s[3], sub[i].seg)) {
                    t.route = sub[i].r;
                    t.post = sub[i].post;
                    t.kind = sub[i].kind;
                    t.need_id = 1;
                    t.id = s[2];
                }
        }
    } else if (seg_is(s[1], "definitions")) {
        if (n == 2) {
            t.route = SRV_DEF_LIST;
        } else if (n == 3 && seg_is(s[2], "check")) {
            t.route = SRV_DEF_CHECK;
            t.post = 1;
        } else if (n == 3) {
            t.route = SRV_DEF_GET;
            t.name = s[2];
        }
    }
    return t;
}

static void serve_static(evs_server *sv, h2o_req_t *req, evs_span name);

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    evs_server *sv = *(evs_server **)(self + 1);
    evs_span path = {req->path_normalized.base, req->path_normalized.len};
    int is_get = h2o_memis(req->method.base, req->method.len,
                           H2O_STRLIT("GET")),
        is_post = h2o_memis(req->method.base, req->method.len,
                            H2O_STRLIT("POST"));
    evs_http_request_info info;
    target t;
    srv_job *j;
    void (*run)(srv_job *) = NULL;

    if (req->query_at != SIZE_MAX && path.len > req->query_at)
        path.len = req->query_at;
    t = route_of(path);
    sv->body_bytes_in += req->entity.len;
    if (header_bytes(req) > sv->opts.max_header)
        return evs__srv_error(sv, req, t.route, 431, "header_too_large",
                              "the request's line and headers pass %zu bytes",
                              sv->opts.max_header),
               0;
    if (t.route == SRV_NONE)
        return evs__srv_error(sv, req, t.route, 404, "not_found",
                              "no such route: %.*s", (int)path.len, path.ptr),
               0;
    if (t.route == SRV_EXEC_LIST && is_post) {
        t.route = SRV_EXEC_CREATE;
        t.post = 1;
    }
    if ((t.post && !is_post) || (!t.post && !is_get)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       t.post ? "POST" : "GET", t.post ? 4 : 3);
        return evs__srv_error(sv, req, t.route, 405, "method_not_allowed",
                              "%s takes %s",
                              evs__srv_route_names[t.route],
                              t.post ? "POST" : "GET"),
               0;
    }
    if (t.route == SRV_HEALTHZ) {
        evs__srv_send(sv, req, t.route, 200, NULL, "{\"ok\":true}\n", 12);
        return 0;
    }
    /* The token, then the host's hook. */
    memset(&info, 0, sizeof(info));
    info.method = (evs_span){req->method.base, req->method.len};
    info.path = path;
    if (req->query_at != SIZE_MAX)
        info.query = (evs_span){req->path.base + req->query_at + 1,
                                req->path.len - req->query_at - 1};
    info.route = evs_span_cstr(evs__srv_route_names[t.route]);
    info.execution_id = t.id;
    info.token = bearer_of(req);
    info.writes = t.post;
    /* The console's own files hold no secret, and a browser loading a
     * page cannot send a header: they are served without the token, and
     * the page asks for it before it calls the API. */
    if (sv->token_len && t.route != SRV_STATIC && !token_ok(sv, info.token))
        return evs__srv_error(sv, req, t.route, 401, "unauthorized",
                              "%s",
                              info.token.len ? "wrong token"
                                             : "a bearer token is required"),
               0;
    if (sv->opts.authorize) {
        struct sockaddr_storage ss;
        int rc;

        info.peer = peer_of(req, &ss);
        rc = sv->opts.authorize(sv->opts.authorize_arg, &info);
        if (rc == -EPERM)
            return evs__srv_error(sv, req, t.route, 401, "unauthorized",
                                  "refused by the host"),
                   0;
        if (rc != 0)
            return evs__srv_error(sv, req, t.route, 403, "forbidden",
                                  "refused by the host"),
                   0;
    }
    if (t.need_id && (t.id.len > EVS_ID_MAX || !evs_id_valid(t.id.ptr, t.id.len)))
        return evs__srv_error(sv, req, t.route, 400, "EBADID",
                              "not a valid execution id (one to 128 of "
                              "A-Z a-z 0-9 . _ -, beginning with a letter or "
                              "digit)"),
               0;
    if (sv->stopping)
        return evs__srv_error(sv, req, t.route, 503, "stopping",
                              "the server is stopping"),
               0;
    switch (t.route) {
    case SRV_STATIC: serve_static(sv, req, t.name); return 0;
    case SRV_EXEC_EVENTS:
    case SRV_EXEC_FOLLOW: {
        char id[EVS_ID_MAX + 1];
        memcpy(id, t.id.ptr, t.id.len);
        id[t.id.len] = '\0';
        evs__srv_stream_start(sv, req, t.route, id,
                              t.route == SRV_EXEC_FOLLOW);
        return 0;
    }
    case SRV_METRICS: run = evs__srv_metrics; break;
    case SRV_EXEC_LIST: run = evs__srv_exec_list; break;
    case SRV_EXEC_GET: run = evs__srv_exec_get; break;
    case SRV_EXEC_CREATE: run = evs__srv_exec_create; break;
    case SRV_EXEC_BATCH: run = evs__srv_exec_batch; break;
    case SRV_EXEC_PAUSE:
    case SRV_EXEC_UNPAUSE:
    case SRV_EXEC_TERMINATE:
    case SRV_EXEC_EVENT: run = evs__srv_exec_request; break;
    case SRV_EXEC_RESTART:
    case SRV_EXEC_RETRY: run = evs__srv_exec_retry; break;
    case SRV_EXEC_STATE: run = evs__srv_exec_state; break;
    case SRV_EXEC_LINEAGE: run = evs__srv_exec_lineage; break;
    case SRV_DEF_LIST: run = evs__srv_def_list; break;
    case SRV_DEF_GET: run = evs__srv_def_get; break;
    case SRV_DEF_CHECK: run = evs__srv_def_check; break;
    default: break;
    }
    if (!run || !(j = evs__srv_job_new(sv, req, t.route, run)))
        return evs__srv_error(sv, req, t.route, 500, "ENOMEM",
                              "out of memory"),
               0;
    if (t.need_id) {
        memcpy(j->id, t.id.ptr, t.id.len);
        j->id[t.id.len] = '\0';
    }
    if (run == evs__srv_exec_request)
        caller_of(req, j->caller, sizeof(j->caller));
    if (t.name.len) {
        if (t.name.len >= sizeof(j->name)) {
            evs__srv_job_free(j);
            return evs__srv_error(sv, req, t.route, 404, "not_found",
                                  "no such definition"),
                   0;
        }
        memcpy(j->name, t.name.ptr, t.name.len);
        j->name[t.name.len] = '\0';
    }
    if (t.kind)
        snprintf(j->name, sizeof(j->name), "%s", t.kind);
    if (t.route == SRV_EXEC_CREATE || t.route == SRV_EXEC_BATCH ||
        t.route == SRV_EXEC_RESTART || t.route == SRV_EXEC_RETRY)
        j->done = evs__srv_created_done;
    evs__srv_job_queue(j);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The console's files                                                */
/* ------------------------------------------------------------------ */

static const char *type_of(evs_span name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i].ext);
        if (name.len > n &&
            memcmp(name.ptr + name.len - n, types[i].ext, n) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* Small static files, read on the loop: the console is a handful of
 * files of a few KiB, in a directory the host chose. */
static void serve_static(evs_server *sv, h2o_req_t *req, evs_span name)
{
    char path[4096];
    struct stat st;
    char *buf = NULL;
    int fd = -1;
    ssize_t n;

    if (!sv->console_dir || name.len == 0 || name.len > 128 ||
        name.ptr[0] == '.')
        goto missing;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            goto missing;
    }
    snprintf(path, sizeof(path), "%s/%.*s", sv->console_dir, (int)name.len,
             name.ptr);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (off_t)(8 << 20))
        goto missing;
    if (!(buf = h2o_mem_alloc_pool(&req->pool, (size_t)st.st_size + 1)))
        goto missing;
    n = read(fd, buf, (size_t)st.st_size);
    close(fd);
    fd = -1;
    if (n != (ssize_t)st.st_size)
        goto missing;
    evs__srv_send(sv, req, SRV_STATIC, 200, type_of(name), buf, (size_t)n);
    return;
missing:
    if (fd >= 0)
        close(fd);
    evs__srv_error(sv, req, SRV_STATIC, 404, "not_found", "no such file");
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

/* A connection's handle, with the server it belongs to: h2o takes the
 * handle's data for its socket. */
typedef struct srv_conn {
    uv_tcp_t tcp;
    evs_server *sv;
} srv_conn;

static void conn_closed(uv_handle_t *h)
{
    srv_conn *c = (srv_conn *)h;
    evs_server *sv = c->sv;

    free(c);
    sv->conns--;
    evs__srv_maybe_finish(sv);
}

static void early_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *l, int status)
{
    evs_server *sv = l->data;
    srv_conn *c;
    h2o_socket_t *sock;

    if (status != 0 || sv->stopping || !(c = malloc(sizeof(*c))))
        return;
    if (uv_tcp_init(sv->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, early_closed);
        return;
    }
    c->sv = sv;
    sv->conns++;
    sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
    h2o_accept(&sv->accept, sock);
}

/* ------------------------------------------------------------------ */
/* Life                                                               */
/* ------------------------------------------------------------------ */

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 0, 0, 0, 0, 0, 0, 1};
        return memcmp(&a->sin6_addr, lo, 16) == 0;
    }
    return 0;
}

static char *dir_copy(const char *path, int *rc)
{
    struct stat st;
    char *p;

    if (!path)
        return NULL;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *rc = -EINVAL;
        return NULL;
    }
    if (!(p = strdup(path)))
        *rc = -ENOMEM;
    return p;
}

static void server_free(evs_server *sv)
{
    if (sv->token) {
        /* The token is a secret: not left in freed memory. */
        volatile char *t = sv->token;
        for (size_t i = 0; i < sv->token_len; i++)
            t[i] = 0;
    }
    free(sv->token);
    free(sv->defs_dir);
    free(sv->console_dir);
    free(sv);
}

int evs_server_start(uv_loop_t *loop, evs_store *s, const evs_server_opts *opts,
                     evs_server **out, evs_error_info *err)
{
    evs_server *sv;
    struct sockaddr_storage ss;
    h2o_hostconf_t *host;
    h2o_pathconf_t *pc;
    h2o_handler_t *h;
    int rc = 0, len;

    evs_error_info_clear(err);
    if (!loop || !s || !out) {
        evs__error_set(err, -EINVAL, "", "no loop, store or out given");
        return -EINVAL;
    }
    if (!(sv = calloc(1, sizeof(*sv))))
        return evs__error_rc(err, -ENOMEM);
    evs_server_opts_init(&sv->opts);
    if (opts && evs__opts_read(&sv->opts, sizeof(sv->opts), opts,
                               EVS__OPTS_SIZE(evs_server_opts, orch))) {
        evs__error_set(err, -EINVAL, "",
                       "options not filled in by evs_server_opts_init");
        rc = -EINVAL;
        goto fail;
    }
    sv->loop = loop;
    sv->store = s;
    sv->started_us = evs_now_us();
    if (!sv->opts.address)
        sv->opts.address = "127.0.0.1";
    if (sv->opts.max_header < 256 || sv->opts.max_header > SRV_MAX_HEADER_CAP ||
        sv->opts.max_body == 0 || sv->opts.max_batch == 0 ||
        sv->opts.page_max == 0) {
        evs__error_set(err, -EINVAL, "",
                       "max_header must lie in 256..%zu, and max_body, "
                       "max_batch and page_max must not be 0",
                       SRV_MAX_HEADER_CAP);
        rc = -EINVAL;
        goto fail;
    }
    if (sv->opts.follow_ms == 0)
        sv->opts.follow_ms = 100;
    if (uv_ip4_addr(sv->opts.address, sv->opts.port,
                    (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(sv->opts.address, sv->opts.port,
                    (struct sockaddr_in6 *)&ss) != 0) {
        evs__error_set(err, -EINVAL, "",
                       "'%s' is not an IPv4 or IPv6 address",
                       sv->opts.address);
        rc = -EINVAL;
        goto fail;
    }
    if (sv->opts.token.len) {
        for (size_t i = 0; i < sv->opts.token.len; i++) {
            unsigned char c = (unsigned char)sv->opts.token.ptr[i];
            if (c <= 0x20 || c >= 0x7f) {
                evs__error_set(err, -EINVAL, "",
                               "the token holds a byte a header cannot "
                               "carry (a blank, a control or a non-ASCII "
                               "byte)");
                rc = -EINVAL;
                goto fail;
            }
        }
        if (!(sv->token = malloc(sv->opts.token.len))) {
            rc = -ENOMEM;
            goto fail;
        }
        memcpy(sv->token, sv->opts.token.ptr, sv->opts.token.len);
        sv->token_len = sv->opts.token.len;
    }
    sv->opts.token = (evs_span){0};
    if (!sv->token_len && !is_loopback((struct sockaddr *)&ss)) {
        evs__error_set(err, EVS_EUNSAFE, "",
                       "refusing to listen on %s without a token: only a "
                       "loopback address may go without one",
                       sv->opts.address);
        rc = EVS_EUNSAFE;
        goto fail;
    }
    sv->defs_dir = dir_copy(sv->opts.definitions_dir, &rc);
    if (rc == 0)
        sv->console_dir = dir_copy(sv->opts.console_dir, &rc);
    if (rc != 0) {
        evs__error_set(err, rc, "", "%s is not a directory",
                       sv->defs_dir || !sv->opts.definitions_dir
                           ? sv->opts.console_dir
                           : sv->opts.definitions_dir);
        goto fail;
    }
    sv->opts.address = NULL;
    sv->opts.definitions_dir = sv->opts.console_dir = NULL;

    h2o_config_init(&sv->config);
    sv->config.max_request_entity_size = sv->opts.max_body;
    host = h2o_config_register_host(
        &sv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pc = h2o_config_register_path(host, "/", 0);
    h = h2o_create_handler(pc, sizeof(*h) + sizeof(evs_server *));
    *(evs_server **)(h + 1) = sv;
    h->on_req = on_req;
    h2o_context_init(&sv->ctx, loop, &sv->config);
    sv->ctx_ready = 1;
    sv->accept.ctx = &sv->ctx;
    sv->accept.hosts = sv->config.hosts;

    if ((rc = uv_tcp_init(loop, &sv->listener)) != 0)
        goto fail_ctx;
    sv->listener.data = sv;
    sv->listening = 1;
    if ((rc = uv_tcp_bind(&sv->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&sv->listener, 128, on_connection)) !=
            0) {
        evs__error_set(err, rc, "", "cannot listen on %s port %u: %s",
                       ss.ss_family == AF_INET6 ? "IPv6" : "IPv4",
                       (unsigned)sv->opts.port, uv_strerror(rc));
        goto fail_ctx;
    }
    len = sizeof(ss);
    if ((rc = uv_tcp_getsockname(&sv->listener, (struct sockaddr *)&ss,
                                 &len)) != 0)
        goto fail_ctx;
    sv->port = ntohs(ss.ss_family == AF_INET6
                         ? ((struct sockaddr_in6 *)&ss)->sin6_port
                         : ((struct sockaddr_in *)&ss)->sin_port);
    *out = sv;
    return 0;
fail_ctx:
    /* Closed through the normal path, so that h2o's and the listener's
     * handles are released on the loop's next turn; the caller gets
     * the error now and the memory goes when the loop runs. */
    evs__error_rc(err, rc);
    if (err && !err->msg[0])
        evs__error_set(err, rc, "", "cannot start: %s", evs_strerror(rc));
    evs_server_close(sv, NULL, NULL);
    return rc;
fail:
    server_free(sv);
    return evs__error_rc(err, rc);
}

static void listener_closed(uv_handle_t *h)
{
    evs_server *sv = h->data;

    sv->listening = 0;
    evs__srv_maybe_finish(sv);
}

void evs_server_stop(evs_server *sv)
{
    if (!sv || sv->stopping)
        return;
    sv->stopping = 1;
    if (sv->listening && !uv_is_closing((uv_handle_t *)&sv->listener))
        uv_close((uv_handle_t *)&sv->listener, listener_closed);
    evs__srv_streams_end(sv);
    if (sv->ctx_ready)
        h2o_context_request_shutdown(&sv->ctx);
}

/* The last turn of a close: h2o's timers, closed by h2o_context_dispose
 * without a callback, were finished on the turn the drain timer closed
 * on, so nothing of h2o's is left in the server's memory. */
static void closer2_closed(uv_handle_t *h)
{
    evs_server *sv = h->data;
    evs_server_close_cb cb = sv->close_cb;
    void *arg = sv->close_arg;

    /* server.h: sv is gone after the callback returns, not before. */
    if (cb)
        cb(sv, arg);
    h2o_config_dispose(&sv->config);
    server_free(sv);
}

static void closer1_closed(uv_handle_t *h)
{
    evs_server *sv = h->data;

    uv_close((uv_handle_t *)&sv->closer, closer2_closed);
}

/* Whether h2o has nothing left on its timeouts: the last connection's
 * close may leave entries that run on the loop's next turn, and
 * h2o_context_dispose requires them gone. */
static int h2o_quiet(h2o_context_t *c)
{
    h2o_timeout_t *t[] = {&c->zero_timeout,      &c->one_sec_timeout,
                          &c->hundred_ms_timeout, &c->handshake_timeout,
                          &c->http1.req_timeout,  &c->http2.idle_timeout,
                          &c->http2.graceful_shutdown_timeout,
                          &c->proxy.io_timeout};

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!h2o_linklist_is_empty(&t[i]->_entries))
            return 0;
    return 1;
}

static void drain_cb(uv_timer_t *t)
{
    evs_server *sv = t->data;

    if (sv->ctx_ready && !h2o_quiet(&sv->ctx)) {
        uv_timer_start(t, drain_cb, 5, 0);
        return;
    }
    if (sv->ctx_ready)
        h2o_context_dispose(&sv->ctx);
    uv_idle_init(sv->loop, &sv->closer);
    sv->closer.data = sv;
    uv_close((uv_handle_t *)&sv->drain, closer1_closed);
}

void evs__srv_maybe_finish(evs_server *sv)
{
    if (!sv->closing || sv->conns || sv->jobs || sv->streams ||
        sv->listening || sv->closing == 2)
        return;
    sv->closing = 2;
    uv_timer_init(sv->loop, &sv->drain);
    sv->drain.data = sv;
    uv_timer_start(&sv->drain, drain_cb, 0, 0);
}

void evs_server_close(evs_server *sv, evs_server_close_cb cb, void *arg)
{
    if (!sv || sv->closing)
        return;
    sv->close_cb = cb;
    sv->close_arg = arg;
    sv->closing = 1;
    /* A start that failed before listening has no listener to close. */
    if (sv->listening && !sv->stopping)
        evs_server_stop(sv);
    else if (!sv->stopping) {
        sv->stopping = 1;
        if (sv->ctx_ready)
            h2o_context_request_shutdown(&sv->ctx);
    }
    evs__srv_maybe_finish(sv);
}
