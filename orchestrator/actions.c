/*
 * actions.c: running actions.
 *
 * Three ways: a callback on the loop thread that completes whenever it
 * likes; a blocking callback run on the libuv threadpool; and `exec:`, a
 * subprocess spawned with uv_spawn that reads a JSON request on stdin and
 * answers on stdout (orchestrator/README.md). However an action ends, its
 * outcome reaches the loop through one mutex-guarded list and a uv_async
 * wake-up, so evs_action_complete may be called from any thread.
 */
#include "orch_int.h"
#include "formats_shared.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_OUT_MAX ((size_t)16 << 20)
#define EXEC_ERR_MAX ((size_t)4 << 10)

struct orch_action *evs__actions_find(evs_orch *o, const char *name)
{
    for (struct orch_action *a = o->actions; a; a = a->next)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

const evs_action_call *evs_action_req_call(const evs_action_req *req)
{
    return &req->call;
}

void evs__req_free(evs_action_req *req)
{
    orch_exec *x = req->x;

    evs__free(x->o->alloc, req->mem);
    evs__free(x->o->alloc, req->output);
    evs__free(x->o->alloc, req->etype);
    evs__free(x->o->alloc, req->emsg);
    evs__free(x->o->alloc, req);
    x->nreqs--;
    x->o->live_reqs--;
    evs__orch_exec_unref(x);
}

/* Hands a finished request to the loop. In a threadpool job the loop
 * takes it when the job ends (its uv_work_t must outlive the job). */
static void post_done(evs_action_req *req)
{
    evs_orch *o = req->o;

    if (req->in_work) {
        req->finished = 1;
        return;
    }
    uv_mutex_lock(&o->mu);
    req->next = o->done;
    o->done = req;
    uv_mutex_unlock(&o->mu);
    uv_async_send(&o->async);
}

/* Sets the error of a failed attempt (a NULL type or message, out of
 * memory, reads as "error" or ""). */
static void set_error(evs_action_req *req, const char *type, const char *msg)
{
    req->etype = evs__orch_strndup(req->o->alloc, type, strlen(type));
    req->emsg = evs__orch_strndup(req->o->alloc, msg, strlen(msg));
}

int evs_action_complete(evs_action_req *req, evs_span output)
{
    int rc = 0;

    if (output.len &&
        evs_json_check(output.ptr, output.len, 0, NULL, NULL, NULL) != 0) {
        req->failed = 1;
        set_error(req, "bad_output", "the action's output is not JSON");
        post_done(req);
        return -EINVAL;
    }
    if (output.len) {
        req->output = evs__malloc(req->o->alloc, output.len);
        if (req->output) {
            memcpy(req->output, output.ptr, output.len);
            req->output_len = output.len;
        } else {
            req->failed = 1; /* reported as a retryable "error" */
            req->retryable = 1;
            rc = -ENOMEM;
        }
    }
    post_done(req);
    return rc;
}

int evs_action_fail(evs_action_req *req, evs_span type, evs_span message,
                    int retryable)
{
    req->failed = 1;
    req->retryable = retryable != 0;
    req->etype = evs__orch_strndup(req->o->alloc, type.len ? type.ptr : "error",
                                   type.len ? type.len : 5);
    req->emsg = evs__orch_strndup(req->o->alloc, message.ptr, message.len);
    post_done(req);
    return req->etype && req->emsg ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- */
/* Blocking callbacks                                               */
/* ---------------------------------------------------------------- */

static void blocking_work(uv_work_t *w)
{
    evs_action_req *req = w->data;

    req->fn(req->fn_arg, req);
}

static void blocking_done(uv_work_t *w, int status)
{
    evs_action_req *req = w->data;

    (void)status;
    req->in_work = 0;
    if (!req->finished) {
        /* The callback returned without an outcome. */
        req->failed = 1;
        req->retryable = 1;
        set_error(req, "no_outcome",
                  "a blocking action returned without completing its "
                  "request");
    }
    post_done(req);
}

/* ---------------------------------------------------------------- */
/* exec: subprocesses                                               */
/* ---------------------------------------------------------------- */

typedef struct exec_proc {
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_write_t wr;
    uv_shutdown_t sd;
    evs_action_req *req;
    const evs_allocator *alloc; /* the orchestrator's, which frees p */
    evs__jbuf request, sout, serr;
    int64_t exit_status;
    int term_signal;
    int pending; /* exit + two EOFs before the outcome */
    int handles; /* open handles; freed at 0 */
    int spawned;
    int killed;
} exec_proc;

static void proc_handle_closed(uv_handle_t *h)
{
    exec_proc *p = h->data;

    if (--p->handles == 0) {
        evs__jb_free(&p->request);
        evs__jb_free(&p->sout);
        evs__jb_free(&p->serr);
        evs__free(p->alloc, p);
    }
}

/* Closes every handle that was initialized (the process handle is not
 * when uv_spawn failed early; p is zeroed, so its type is unknown). */
static void proc_close_all(exec_proc *p)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->in,
                         (uv_handle_t *)&p->out, (uv_handle_t *)&p->err};

    for (size_t i = 0; i < sizeof(hs) / sizeof(*hs); i++)
        if (uv_handle_get_type(hs[i]) != UV_UNKNOWN_HANDLE &&
            !uv_is_closing(hs[i]))
            uv_close(hs[i], proc_handle_closed);
}

/* The outcome, from the exit status and what the process wrote. */
static void proc_finish(exec_proc *p)
{
    evs_action_req *req = p->req;
    evs_span out = {p->sout.p, p->sout.len}, err;
    char msg[EXEC_ERR_MAX + 128];

    /* Trim whitespace around stdout. */
    while (out.len && strchr(" \t\r\n", out.ptr[0])) {
        out.ptr++;
        out.len--;
    }
    while (out.len && strchr(" \t\r\n", out.ptr[out.len - 1]))
        out.len--;
    p->req = NULL;
    req->exec_state = NULL;
    if (p->sout.err || p->serr.err) {
        evs_action_fail(req, evs_span_cstr("no_memory"),
                        evs_span_cstr("out of memory reading the output"), 1);
    } else if (p->term_signal) {
        snprintf(msg, sizeof(msg), "killed by signal %d%s%.*s", p->term_signal,
                 p->serr.len ? ": " : "", (int)p->serr.len,
                 p->serr.p ? p->serr.p : "");
        evs_action_fail(req, evs_span_cstr("killed"), evs_span_cstr(msg), 1);
    } else if (p->exit_status != 0) {
        snprintf(msg, sizeof(msg), "exit status %lld%s%.*s",
                 (long long)p->exit_status, p->serr.len ? ": " : "",
                 (int)p->serr.len, p->serr.p ? p->serr.p : "");
        evs_action_fail(req, evs_span_cstr("exit"), evs_span_cstr(msg), 1);
    } else if (out.len && out.ptr[0] == '{' &&
               evs_json_check(out.ptr, out.len, 0, NULL, NULL, NULL) == 0 &&
               evs__json_get(out, "error", &err) == 1) {
        /* {"error":{"type":..,"message":..,"retryable":..}} or a string */
        evs_span t = {0}, m = err, r;
        char type[128] = "error", text[2048] = "";
        int retryable = 1;
        if (err.len && err.ptr[0] == '{') {
            if (evs__json_get(err, "type", &t) == 1 && t.len >= 2 &&
                t.ptr[0] == '"' && t.len - 2 < sizeof(type))
                type[evs__json_unescape(t.ptr + 1, t.len - 2, type)] = '\0';
            if (evs__json_get(err, "retryable", &r) == 1)
                retryable = !(r.len == 5 && memcmp(r.ptr, "false", 5) == 0);
            if (evs__json_get(err, "message", &m) != 1)
                m = (evs_span){0};
        }
        if (m.len >= 2 && m.ptr[0] == '"' && m.len - 2 < sizeof(text))
            text[evs__json_unescape(m.ptr + 1, m.len - 2, text)] = '\0';
        else if (m.len && m.len < sizeof(text))
            memcpy(text, m.ptr, m.len);
        evs_action_fail(req, evs_span_cstr(type), evs_span_cstr(text),
                        retryable);
    } else if (out.len &&
               evs_json_check(out.ptr, out.len, 0, NULL, NULL, NULL) != 0) {
        snprintf(msg, sizeof(msg), "stdout is not JSON%s%.*s",
                 p->serr.len ? "; stderr: " : "", (int)p->serr.len,
                 p->serr.p ? p->serr.p : "");
        evs_action_fail(req, evs_span_cstr("bad_output"), evs_span_cstr(msg),
                        0);
    } else {
        evs_action_complete(req, out);
    }
    proc_close_all(p);
}

static void proc_step(exec_proc *p)
{
    if (--p->pending == 0 && p->req)
        proc_finish(p);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    exec_proc *p = h->data;

    p->exit_status = status;
    p->term_signal = sig;
    proc_step(p);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char scratch[65536];

    (void)h;
    (void)hint;
    /* Reads are copied out at once, on the loop thread. */
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    exec_proc *p = s->data;
    int is_out = s == (uv_stream_t *)&p->out;
    evs__jbuf *b = is_out ? &p->sout : &p->serr;

    if (n > 0) {
        if (is_out && b->len + (size_t)n > EXEC_OUT_MAX) {
            b->err = 1; /* too big: reported as a failure */
        } else if (!is_out && b->len + (size_t)n > EXEC_ERR_MAX) {
            /* Keep the last half of stderr: its last words matter most. */
            size_t keep = EXEC_ERR_MAX / 2;
            if ((size_t)n >= keep) {
                b->len = 0;
                evs__jb_raw(b, buf->base + n - keep, keep);
            } else {
                size_t old = keep - (size_t)n;
                if (b->len > old) {
                    memmove(b->p, b->p + b->len - old, old);
                    b->len = old;
                }
                evs__jb_raw(b, buf->base, (size_t)n);
            }
        } else {
            evs__jb_raw(b, buf->base, (size_t)n);
        }
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        proc_step(p);
    }
}

static void write_cb(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* a process that does not read stdin is its business */
}

static void shutdown_cb(uv_shutdown_t *sd, int status)
{
    exec_proc *p = sd->data;

    (void)status;
    if (!uv_is_closing((uv_handle_t *)&p->in))
        uv_close((uv_handle_t *)&p->in, proc_handle_closed);
}

/* Why an exec step's program could not be started, with where a
 * program given without a directory, or with a relative one, was looked
 * for: a relative path is the runner's working directory's. */
static void spawn_failed(const char *prog, int rc, char *msg, size_t cap)
{
    char cwd[1024];
    size_t n = sizeof(cwd);

    if (!strchr(prog, '/'))
        snprintf(msg, cap, "cannot run \"%s\" (looked up in PATH): %s", prog,
                 uv_strerror(rc));
    else if (prog[0] != '/' && uv_cwd(cwd, &n) == 0)
        snprintf(msg, cap,
                 "cannot run \"%s\" (relative to the runner's "
                 "working directory %s): %s",
                 prog, cwd, uv_strerror(rc));
    else
        snprintf(msg, cap, "cannot run \"%s\": %s", prog, uv_strerror(rc));
}

static void exec_dispatch(evs_action_req *req)
{
    orch_exec *x = req->x;
    const evs_wf_step *S = evs_wf_find_step(x->def, req->call.step);
    exec_proc *p = NULL;
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    char **argv = NULL;
    uv_buf_t b;
    int rc;

    if (!S || !S->n_argv) {
        evs_action_fail(req, evs_span_cstr("bad_command"),
                        evs_span_cstr("the step has no program to run"), 0);
        return;
    }
    if (!(p = evs__calloc(x->o->alloc, sizeof(*p))) ||
        !(argv = evs__calloc(x->o->alloc, (S->n_argv + 1) * sizeof(*argv)))) {
        evs__free(x->o->alloc, p);
        evs_action_fail(req, evs_span_cstr("no_memory"),
                        evs_span_cstr("out of memory spawning"), 1);
        return;
    }
    /* uv_spawn's argv is not const, but it is only read. */
    for (size_t i = 0; i < S->n_argv; i++)
        argv[i] = (char *)(uintptr_t)S->argv[i];
    p->req = req;
    p->alloc = p->request.alloc = p->sout.alloc = p->serr.alloc = x->o->alloc;
    EVS__JB_LIT(&p->request, "{\"params\":");
    evs__jb_json(&p->request, req->call.input);
    EVS__JB_LIT(&p->request, ",\"inputs\":");
    evs__jb_json(&p->request, evs_replay_exec(x->rp)->inputs);
    EVS__JB_LIT(&p->request, ",\"idempotency_key\":");
    evs__jb_quote(&p->request, req->call.idempotency_key);
    EVS__JB_LIT(&p->request, ",\"attempt\":");
    evs__jb_int(&p->request, req->call.attempt);
    EVS__JB_LIT(&p->request, ",\"execution_id\":");
    evs__jb_quote(&p->request, req->call.execution_id);
    EVS__JB_LIT(&p->request, ",\"path_id\":");
    evs__jb_quote(&p->request, req->call.path_id);
    EVS__JB_LIT(&p->request, ",\"step\":");
    evs__jb_quote(&p->request, req->call.step);
    EVS__JB_LIT(&p->request, ",\"iteration\":");
    evs__jb_int(&p->request, req->call.iteration);
    EVS__JB_LIT(&p->request, "}\n");

    uv_pipe_init(x->o->loop, &p->in, 0);
    uv_pipe_init(x->o->loop, &p->out, 0);
    uv_pipe_init(x->o->loop, &p->err, 0);
    p->in.data = p->out.data = p->err.data = p->proc.data = p;
    p->sd.data = p;
    p->handles = 3;
    memset(&po, 0, sizeof(po));
    io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    io[0].data.stream = (uv_stream_t *)&p->in;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&p->out;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].data.stream = (uv_stream_t *)&p->err;
    po.file = argv[0];
    po.args = argv;
    po.exit_cb = on_exit_cb;
    /* Its own process group, so that a timeout ends whatever the
     * command started too, not just the command. */
    po.flags = UV_PROCESS_DETACHED;
    po.stdio = io;
    po.stdio_count = 3;
    rc = uv_spawn(x->o->loop, &p->proc, &po);
    evs__free(x->o->alloc, argv);
    if (rc != 0 || p->request.err) {
        char msg[1400];
        if (rc)
            spawn_failed(S->argv[0], rc, msg, sizeof(msg));
        else
            snprintf(msg, sizeof(msg), "out of memory starting \"%s\"",
                     S->argv[0]);
        p->req = NULL;
        if (rc == 0)
            uv_process_kill(&p->proc, SIGKILL);
        /* A failed uv_spawn may have initialized the process handle
         * (libuv 1.44 does): then it is closed and counted too. */
        p->handles += uv_handle_get_type((uv_handle_t *)&p->proc) == UV_PROCESS;
        proc_close_all(p);
        evs_action_fail(req, evs_span_cstr("spawn"), evs_span_cstr(msg), 1);
        return;
    }
    p->handles = 4;
    p->spawned = 1;
    p->pending = 3;
    req->exec_state = p;
    uv_read_start((uv_stream_t *)&p->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&p->err, alloc_cb, read_cb);
    b = uv_buf_init(p->request.p, (unsigned)p->request.len);
    uv_write(&p->wr, (uv_stream_t *)&p->in, &b, 1, write_cb);
    uv_shutdown(&p->sd, (uv_stream_t *)&p->in, shutdown_cb);
}

void evs__actions_kill(evs_action_req *req)
{
    exec_proc *p = req->exec_state;

    if (p && p->spawned && !p->killed) {
        p->killed = 1;
        /* The whole group; the command itself if that fails. */
        if (uv_kill(-p->proc.pid, SIGKILL) != 0)
            uv_process_kill(&p->proc, SIGKILL);
    }
}

/* ---------------------------------------------------------------- */
/* Dispatch                                                         */
/* ---------------------------------------------------------------- */

void evs__actions_dispatch(evs_action_req *req)
{
    orch_exec *x = req->x;
    int rc;

    if (req->call.timeout_ms > 0) {
        req->timeout = evs__orch_timer_arm(
            x, TK_ACTION_TIMEOUT, req->call.path_id, (evs_span){0},
            evs_now_us() + req->call.timeout_ms * 1000);
        if (req->timeout)
            req->timeout->req = req;
    }
    if (!req->fn) {
        exec_dispatch(req);
        return;
    }
    if (req->flags & EVS_ACTION_BLOCKING) {
        req->in_work = 1;
        req->work.data = req;
        rc =
            uv_queue_work(x->o->loop, &req->work, blocking_work, blocking_done);
        if (rc != 0) {
            req->in_work = 0;
            evs_action_fail(req, evs_span_cstr("queue"),
                            evs_span_cstr(uv_strerror(rc)), 1);
        }
        return;
    }
    req->fn(req->fn_arg, req);
}

/* ---------------------------------------------------------------- */
/* Built-in actions                                                 */
/* ---------------------------------------------------------------- */

static void builtin_echo(void *arg, evs_action_req *req)
{
    (void)arg;
    evs_action_complete(req, req->call.input);
}

static int64_t member_int(evs_span obj, const char *key, int64_t dflt)
{
    evs_span v;
    int64_t n;

    if (obj.len && obj.ptr[0] == '{' && evs__json_get(obj, key, &v) == 1 &&
        evs__json_int(v, &n) == 0)
        return n;
    return dflt;
}

static void builtin_fail(void *arg, evs_action_req *req)
{
    evs_span in = req->call.input, v;
    int64_t times = member_int(in, "times", INT64_MAX);
    int fatal = in.len && in.ptr[0] == '{' &&
                evs__json_get(in, "fatal", &v) == 1 && v.len == 4 &&
                memcmp(v.ptr, "true", 4) == 0;
    char msg[96];

    (void)arg;
    if ((int64_t)req->call.attempt > times) {
        evs_action_complete(req, in);
        return;
    }
    snprintf(msg, sizeof(msg), "failing attempt %u as asked",
             req->call.attempt);
    evs_action_fail(req, evs_span_cstr(fatal ? "fatal" : "injected"),
                    evs_span_cstr(msg), !fatal);
}

/* The built-in sleep's timer; it outlives its request. */
typedef struct sleep_timer {
    uv_timer_t t;
    evs_orch *o;
    evs_action_req *req;
} sleep_timer;

static void sleep_closed(uv_handle_t *h)
{
    sleep_timer *s = h->data;

    evs__free(s->o->alloc, s);
}

static void sleep_fired(uv_timer_t *t)
{
    sleep_timer *s = t->data;

    evs_action_complete(s->req, s->req->call.input);
    uv_close((uv_handle_t *)t, sleep_closed);
}

static void builtin_sleep(void *arg, evs_action_req *req)
{
    evs_orch *o = arg;
    sleep_timer *s = evs__malloc(o->alloc, sizeof(*s));
    int64_t ms = member_int(req->call.input, "ms", 0);

    if (!s) {
        evs_action_fail(req, evs_span_cstr("no_memory"), (evs_span){0}, 1);
        return;
    }
    s->o = o;
    s->req = req;
    uv_timer_init(o->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, sleep_fired, ms > 0 ? (uint64_t)ms : 0, 0);
}

int evs__actions_builtin(evs_orch *o)
{
    int rc;

    if ((rc = evs_orch_register(o, "echo", builtin_echo, o,
                                EVS_ACTION_INSTANT)) ||
        (rc = evs_orch_register(o, "fail", builtin_fail, o, 0)) ||
        (rc = evs_orch_register(o, "sleep", builtin_sleep, o, 0)))
        return rc;
    return 0;
}
