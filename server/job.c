/*
 * job.c: what every route answers with: a whole answer sent at once, the
 * JSON error document (and the status a library error maps to), the
 * counters /metrics shows of them; the jobs that carry a request's store
 * work to the threadpool and its answer back; and query strings.
 */
#include "server_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ------------------------------------------------------------------ */
/* Answers                                                            */
/* ------------------------------------------------------------------ */

const double evs__srv_buckets[SRV_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void evs__srv_count(evs_server *sv, srv_route route, int status,
                    h2o_req_t *req)
{
    for (int i = 0; i < SRV_CODE_COUNT; i++)
        if (evs__srv_codes[i] == status) {
            sv->served[route][i]++;
            break;
        }
    if (req) {
        /* From when h2o had the request whole to the answer's end (its
         * last piece handed over, for a stream). */
        struct timeval now;
        double s;
        int b = 0;

        gettimeofday(&now, NULL);
        s = (double)(now.tv_sec - req->processed_at.at.tv_sec) +
            (double)(now.tv_usec - req->processed_at.at.tv_usec) / 1e6;
        if (s < 0)
            s = 0;
        while (b < SRV_BUCKETS && s > evs__srv_buckets[b])
            b++;
        sv->latency[route][b]++;
        sv->latency_sum[route] += s;
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

void evs__srv_send(evs_server *sv, h2o_req_t *req, srv_route route, int status,
                   const char *ctype, const char *body, size_t len)
{
    if (!ctype)
        ctype = "application/json";
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   ctype, strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers,
                       H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"evstore\""));
    if (sv->stopping)
        req->http1_is_persistent = 0;
    evs__srv_count(sv, route, status, req);
    sv->bytes_out += len;
    h2o_send_inline(req, body, len);
}

/* Writes {"error":{"code":CODE,"message":MSG}} to b. */
static void error_doc(evs__jbuf *b, const char *code, const char *fmt,
                      va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    EVS__JB_LIT(b, "{\"error\":{\"code\":");
    evs__jb_quote(b, evs_span_cstr(code));
    EVS__JB_LIT(b, ",\"message\":");
    /* A message may quote what a client sent, which need not be UTF-8:
     * such a message is replaced rather than sent as bad JSON. */
    if (evs_json_quote(evs_span_cstr(msg), NULL, 0) == (size_t)-1)
        evs__jb_quote(b, evs_span_cstr("(message not UTF-8)"));
    else
        evs__jb_quote(b, evs_span_cstr(msg));
    EVS__JB_LIT(b, "}}\n");
}

void evs__srv_error(evs_server *sv, h2o_req_t *req, srv_route route,
                    int status, const char *code, const char *fmt, ...)
{
    evs__jbuf b = {0};
    va_list ap;

    va_start(ap, fmt);
    error_doc(&b, code, fmt, ap);
    va_end(ap);
    if (b.err)
        evs__srv_send(sv, req, route, 500, NULL, "", 0);
    else
        evs__srv_send(sv, req, route, status, NULL, b.p, b.len);
    evs__jb_free(&b);
}

void evs__srv_job_error(srv_job *j, int status, const char *code,
                        const char *fmt, ...)
{
    va_list ap;

    j->out.len = 0;
    j->content_type = NULL;
    j->status = status;
    va_start(ap, fmt);
    error_doc(&j->out, code, fmt, ap);
    va_end(ap);
}

const char *evs__srv_code_name(int rc)
{
    const char *n = evs_err_name(rc);

    return strncmp(n, "EVS_", 4) == 0 ? n + 4 : n;
}

void evs__srv_job_fail(srv_job *j, int rc, const evs_error_info *err)
{
    const char *msg = err && err->msg[0] ? err->msg : evs_strerror(rc);
    const char *name = evs__srv_code_name(rc);
    int status;

    switch (rc) {
    case -ENOENT: status = 404; name = "not_found"; break;
    case EVS_EBADID:
    case -EINVAL:
    case EVS_EPARSE: status = 400; break;
    case -EEXIST:
    case EVS_EFINISHED:
    case EVS_ELOCKED:
    case EVS_ECONFLICT: status = 409; break;
    default: status = 500; break;
    }
    evs__srv_job_error(j, status, name, "%s", msg);
}

/* ------------------------------------------------------------------ */
/* Jobs                                                               */
/* ------------------------------------------------------------------ */

/* Lives in the request's pool: its dispose tells the job the request is
 * gone (the client left while the work ran). */
struct srv_guard {
    srv_job *job;
};

static void guard_dispose(void *p)
{
    struct srv_guard *g = p;

    if (g->job) {
        g->job->req = NULL;
        g->job->guard = NULL;
    }
}

void evs__srv_job_free(srv_job *j)
{
    for (size_t i = 0; i < j->n_created; i++)
        free(j->created[i]);
    free(j->created);
    free(j->body);
    free(j->query);
    evs__jb_free(&j->out);
    free(j);
}

srv_job *evs__srv_job_new(evs_server *sv, h2o_req_t *req, srv_route route,
                          void (*run)(srv_job *))
{
    srv_job *j = calloc(1, sizeof(*j));
    struct srv_guard *g;

    if (!j)
        return NULL;
    j->sv = sv;
    j->req = req;
    j->route = route;
    j->run = run;
    j->status = 200;
    j->body = malloc(req->entity.len + 1);
    j->query = malloc(req->query_at == SIZE_MAX
                          ? 1
                          : req->path.len - req->query_at);
    if (!j->body || !j->query) {
        evs__srv_job_free(j);
        return NULL;
    }
    if (req->entity.len)
        memcpy(j->body, req->entity.base, req->entity.len);
    j->body[req->entity.len] = '\0';
    j->body_len = req->entity.len;
    if (req->query_at == SIZE_MAX) {
        j->query[0] = '\0';
    } else {
        size_t n = req->path.len - req->query_at - 1;
        memcpy(j->query, req->path.base + req->query_at + 1, n);
        j->query[n] = '\0';
    }
    g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), guard_dispose);
    g->job = j;
    j->guard = g;
    return j;
}

static void job_work(uv_work_t *w)
{
    srv_job *j = w->data;

    j->run(j);
}

static void job_after(uv_work_t *w, int status)
{
    srv_job *j = w->data;
    evs_server *sv = j->sv;
    h2o_req_t *req = j->req;

    (void)status;
    sv->jobs--;
    if (j->done)
        j->done(j);
    if (j->guard)
        j->guard->job = NULL;
    if (req) {
        if (j->out.err)
            evs__srv_error(sv, req, j->route, 500, "ENOMEM", "out of memory");
        else
            evs__srv_send(sv, req, j->route, j->status, j->content_type,
                          j->out.p ? j->out.p : "", j->out.len);
    }
    evs__srv_job_free(j);
    evs__srv_maybe_finish(sv);
}

void evs__srv_job_queue(srv_job *j)
{
    evs_server *sv = j->sv;

    j->work.data = j;
    sv->jobs++;
    if (uv_queue_work(sv->loop, &j->work, job_work, job_after) != 0) {
        sv->jobs--;
        if (j->guard)
            j->guard->job = NULL;
        if (j->req)
            evs__srv_error(sv, j->req, j->route, 500, "EIO",
                           "cannot queue the work");
        evs__srv_job_free(j);
    }
}

/* ------------------------------------------------------------------ */
/* Query strings                                                      */
/* ------------------------------------------------------------------ */

int evs__srv_query(const char *query, const char *key, char *buf, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = query;

    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t o = 0;
            for (size_t i = klen + 1; i < n; i++) {
                int c = (unsigned char)p[i];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int h, l;
                    if (i + 2 >= n)
                        return -1;
                    if ((h = evs__hex_val((unsigned char)p[i + 1])) < 0 ||
                        (l = evs__hex_val((unsigned char)p[i + 2])) < 0)
                        return -1;
                    c = h * 16 + l;
                    i += 2;
                }
                if (c == 0 || o + 1 >= cap)
                    return -1;
                buf[o++] = (char)c;
            }
            buf[o] = '\0';
            return 1;
        }
        if (n == klen && strncmp(p, key, klen) == 0) {
            buf[0] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int evs__srv_query_u64(const char *query, const char *key, uint64_t *v)
{
    char buf[32], *end;
    unsigned long long x;
    int rc = evs__srv_query(query, key, buf, sizeof(buf));

    if (rc <= 0)
        return rc;
    if (buf[0] < '0' || buf[0] > '9')
        return -1;
    errno = 0;
    x = strtoull(buf, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

