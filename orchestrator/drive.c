/*
 * drive.c: the step machine.
 *
 * What a path does next is decided from the replayed state alone, so the
 * same code runs a fresh execution and one recovered after a crash:
 * drive() looks at every live path and, by the status of its current
 * step, starts it, re-runs an attempt that was started and never
 * finished, arms the timer it waits on, checks its join, or follows the
 * step's edges. Every decision is recorded (orch_emit) before anything
 * acts on it, and drive() repeats until a pass changes nothing.
 *
 * A step is identified by (path, name, iteration), as in the history
 * rules (FORMAT.md §6.1), so a step runs once per path: `each` is the way
 * to repeat one.
 */
#include "orch_int.h"
#include "formats_shared.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_ 512

/* A copy of a span, NUL-terminated, that survives later emits. */
typedef struct name_buf {
    char s[NAME_MAX_];
    size_t len;
} name_buf;

static evs_span nb_set(name_buf *b, evs_span v)
{
    b->len = v.len < NAME_MAX_ - 1 ? v.len : NAME_MAX_ - 1;
    if (b->len)
        memcpy(b->s, v.ptr, b->len);
    b->s[b->len] = '\0';
    return (evs_span){b->s, b->len};
}

static int span_eq(evs_span a, const char *b)
{
    return b && a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static int spans_eq(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---------------------------------------------------------------- */
/* Looking things up in the state                                   */
/* ---------------------------------------------------------------- */

static int step_done(const evs_step_state *s)
{
    return s->status == EVS_STEP_COMPLETED || s->status == EVS_STEP_SKIPPED;
}

/* The output of the last step completed on `path` (empty if none): the
 * replayer keeps it with the path, past the path's end. */
static evs_span last_output(const evs_replay *rp, evs_span path)
{
    const evs_path_state *p = evs_replay_find_path(rp, path);

    return p ? p->last_output : (evs_span){0};
}

/* Outputs of an `each` step's iterations on `path`, as a JSON array: the
 * output each_completed records for the step as a whole. */
static void each_outputs(const evs_replay *rp, evs_span path, evs_span name,
                         evs__jbuf *b)
{
    const evs_each_state *e = evs_replay_find_each(rp, path, name);
    int64_t n = e ? e->done : 0;

    EVS__JB_LIT(b, "[");
    for (int64_t i = 0; i < n; i++) {
        const evs_step_state *s = evs_replay_find_step(rp, path, name, i);
        if (i)
            EVS__JB_LIT(b, ",");
        evs__jb_json(b, s ? s->output : (evs_span){0});
    }
    EVS__JB_LIT(b, "]");
}

/* ---------------------------------------------------------------- */
/* Evaluation context                                               */
/* ---------------------------------------------------------------- */

typedef struct rctx {
    orch_exec *x;
    evs_span path;
    evs_wf_ctx c;
} rctx;

static int var_fn(void *arg, evs_span name, evs_span *value)
{
    rctx *r = arg;
    const evs_var_state *v = evs_replay_find_var(r->x->rp, name);

    if (!v)
        return -ENOENT;
    *value = v->value.len ? v->value : evs_span_cstr("null");
    return 0;
}

/* `${steps.NAME.output}`: this path's, else the last one completed
 * anywhere (a branch reads what its parent computed before the branch).
 * An `each` step's output is the array its completion recorded, never a
 * part of it: one still running on this path reads as not run here. */
static int step_output_fn(void *arg, evs_span name, evs_span *value)
{
    rctx *r = arg;
    const evs_replay *rp = r->x->rp;
    const evs_wf_step *S = evs_wf_find_step(r->x->def, name);
    const evs_stepname_state *n;
    int here;

    if (S && S->each.len) {
        const evs_each_state *e = evs_replay_find_each(rp, r->path, name);
        if ((here = e && e->ended_seq))
            *value = e->output;
    } else {
        const evs_step_state *s = evs_replay_find_step(rp, r->path, name, -1);
        if ((here = s && step_done(s)))
            *value = s->output;
    }
    if (!here) {
        n = evs_replay_find_stepname(rp, name);
        if (!n || !n->output_seq)
            return -ENOENT;
        *value = n->output;
    }
    if (!value->len)
        *value = evs_span_cstr("null");
    return 0;
}

static int version_fn(void *arg, evs_span change, int64_t *version)
{
    rctx *r = arg;
    const evs_version_state *v = evs_replay_find_version(r->x->rp, change);

    if (!v)
        return -ENOENT;
    *version = v->version;
    return 0;
}

static void rctx_init(rctx *r, orch_exec *x, evs_span path)
{
    memset(r, 0, sizeof(*r));
    r->x = x;
    r->path = path;
    r->c.inputs = evs_replay_exec(x->rp)->inputs;
    r->c.index = -1;
    r->c.var = var_fn;
    r->c.step_output = step_output_fn;
    r->c.version = version_fn;
    r->c.arg = r;
}

/* ---------------------------------------------------------------- */
/* Outcomes                                                         */
/* ---------------------------------------------------------------- */

static void error_json(evs__jbuf *b, const char *type, evs_span msg,
                       int retryable)
{
    EVS__JB_LIT(b, "{\"type\":");
    evs__jb_quote(b, evs_span_cstr(type));
    EVS__JB_LIT(b, ",\"message\":");
    evs__jb_quote(b, msg);
    EVS__JB_LIT(b, ",\"retryable\":");
    evs__jb_str(b, retryable ? "true" : "false");
    EVS__JB_LIT(b, "}");
}

/* Whether a join of mode any/race may wait for path `pid`, so that its
 * failure is the join's to judge rather than the execution's. */
static int failure_tolerated(orch_exec *x, evs_span pid)
{
    const evs_path_state *p;
    evs_span name;

    pid = orch_path_base(pid); /* a branch's loop fails the branch */
    p = evs_replay_find_path(x->rp, pid);

    if (!p || p->parent.len == 0 || pid.len <= p->parent.len + 1)
        return 0;
    name.ptr = pid.ptr + p->parent.len + 1;
    name.len = pid.len - p->parent.len - 1;
    for (size_t i = 0; i < x->def->n_steps; i++) {
        const evs_wf_step *S = &x->def->steps[i];
        if (S->kind != EVS_WF_JOIN || S->join_mode == EVS_JOIN_ALL)
            continue;
        for (size_t k = 0; k < S->n_join_paths; k++)
            if (span_eq(name, S->join_paths[k]) ||
                strcmp(S->join_paths[k], "*") == 0)
                return 1;
    }
    return 0;
}

/* Whether path `id` is `root` or descends from it: a branch of it, or a
 * continuation (whose parent is the generation before), at any depth. */
static int descends(const evs_replay *rp, evs_span id, evs_span root)
{
    const evs_path_state *p;

    while (!spans_eq(id, root)) {
        if (!(p = evs_replay_find_path(rp, id)) || !p->parent.len)
            return 0;
        id = p->parent;
    }
    return 1;
}

/* Stops what this process does for a path that has ended: its action is
 * killed (its outcome, when it comes, is ignored; one not yet dispatched
 * never is) and its timers disarmed. */
static void stop_path(orch_exec *x, evs_span pid)
{
    orch_path *op = orch_path_get(x, pid, 0);

    if (!op)
        return;
    if (op->req) {
        op->req->stale = 1;
        actions_kill(op->req);
        op->req = NULL;
    }
    if (op->timer) {
        orch_timer_cancel(op->timer);
        op->timer = NULL;
    }
    if (op->wait_timer) {
        orch_timer_cancel(op->wait_timer);
        op->wait_timer = NULL;
    }
}

/* Records the cancellation of every live path of the tree rooted at
 * `root` (of every live path, when root is empty), with an error of type
 * `cancelled` saying why: a path that lost a join, or outlived the
 * execution, must show that it ended and why. Returns 0, or what
 * recording returned. */
static int cancel_paths(orch_exec *x, evs_span root, evs_span why)
{
    const evs_replay *rp = x->rp;
    evs__jbuf d = {0}, err = {0};
    name_buf rb, pb;
    int rc = 0;

    root = nb_set(&rb, root); /* the state's bytes move as it grows */
    error_json(&err, "cancelled", why, 0);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_raw(&d, err.p, err.len);
    EVS__JB_LIT(&d, "}");
    for (size_t i = x->first_live; i < evs_replay_path_count(rp) && !rc;
         i++) {
        const evs_path_state *p = evs_replay_path(rp, i);
        evs_span pid;
        if (p->ended_seq || (root.len && !descends(rp, p->id, root)))
            continue;
        pid = nb_set(&pb, p->id);
        stop_path(x, pid);
        rc = orch_emit(x, NULL, "path_cancelled", pid, (evs_span){0}, &d,
                       NULL);
    }
    evs__jb_free(&d);
    evs__jb_free(&err);
    return rc;
}

static void fail_path(orch_exec *x, evs_span pid, evs_span error)
{
    evs__jbuf d = {0};
    char why[NAME_MAX_ + 64];
    name_buf pb;

    pid = nb_set(&pb, pid);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_json(&d, error);
    EVS__JB_LIT(&d, "}");
    if (orch_emit(x, NULL, "path_failed", pid, (evs_span){0}, &d, NULL) !=
            0 ||
        failure_tolerated(x, pid))
        goto out;
    /* The execution ends: nothing of it may stay live. */
    snprintf(why, sizeof(why), "the execution failed: path \"%s\" failed",
             pb.s);
    if (cancel_paths(x, (evs_span){0}, evs_span_cstr(why)) == 0)
        orch_emit(x, NULL, "execution_failed", pid, (evs_span){0}, &d,
                  NULL);
out:
    evs__jb_free(&d);
}

/* Records a failed attempt, then a retry or the path's failure. */
static void step_failure(orch_exec *x, evs_span pid, const evs_wf_step *S,
                         int64_t iter, uint32_t attempt, const char *type,
                         evs_span msg, int retryable)
{
    evs__jbuf d = {0}, err = {0};
    int64_t delay, now = evs_now_us();

    error_json(&err, type, msg, retryable);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_raw(&d, err.p, err.len);
    if (iter >= 0) {
        EVS__JB_LIT(&d, ",\"iteration\":");
        evs__jb_int(&d, iter);
    }
    EVS__JB_LIT(&d, "}");
    if (orch_emit(x, NULL, "step_failed", pid, evs_span_cstr(S->name), &d,
                  NULL) != 0)
        goto out;
    if (evs_wf_retry_allows(&S->retry, attempt, evs_span_cstr(type),
                            retryable)) {
        delay = evs_wf_retry_delay_ms(&S->retry, attempt,
                                      orch_random(x->o));
        d.len = 0;
        EVS__JB_LIT(&d, "{\"fire_at\":");
        evs__jb_time(&d, now + delay * 1000);
        EVS__JB_LIT(&d, ",\"delay_ms\":");
        evs__jb_int(&d, delay);
        EVS__JB_LIT(&d, ",\"attempt\":");
        evs__jb_int(&d, attempt);
        if (iter >= 0) {
            EVS__JB_LIT(&d, ",\"iteration\":");
            evs__jb_int(&d, iter);
        }
        EVS__JB_LIT(&d, "}");
        orch_emit(x, NULL, "retry_scheduled", pid, evs_span_cstr(S->name),
                  &d, NULL);
    } else {
        fail_path(x, pid, (evs_span){err.p, err.len});
    }
out:
    evs__jb_free(&d);
    evs__jb_free(&err);
}

static void complete_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                          int64_t iter, evs_span output)
{
    evs__jbuf d = {0};

    EVS__JB_LIT(&d, "{\"output\":");
    evs__jb_json(&d, output);
    /* An `each` step stores the array of its outputs when it ends. */
    if (S->store && iter < 0) {
        EVS__JB_LIT(&d, ",\"stored_variable\":");
        evs__jb_quote(&d, evs_span_cstr(S->store));
    }
    if (iter >= 0) {
        EVS__JB_LIT(&d, ",\"iteration\":");
        evs__jb_int(&d, iter);
    }
    EVS__JB_LIT(&d, "}");
    orch_emit(x, NULL, "step_completed", pid, evs_span_cstr(S->name), &d,
              NULL);
    evs__jb_free(&d);
}

/* ---------------------------------------------------------------- */
/* Steps                                                            */
/* ---------------------------------------------------------------- */

static evs_action_req *make_req(orch_exec *x, evs_span pid,
                                const evs_wf_step *S, int64_t iter,
                                uint32_t attempt, evs_span input,
                                uint64_t need_seq)
{
    struct orch_action *a = NULL;
    evs_action_req *r;
    evs__jbuf m = {0};
    size_t o_pid, o_step, o_act, o_in, o_key;

    if (strncmp(S->action, "exec:", 5) != 0 &&
        !(a = actions_find(x->o, S->action)))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    /* Every span of the call in one buffer. */
    o_pid = m.len;
    evs__jb_raw(&m, pid.ptr, pid.len);
    o_step = m.len;
    evs__jb_str(&m, S->name);
    o_act = m.len;
    evs__jb_str(&m, S->action);
    o_in = m.len;
    evs__jb_json(&m, input);
    o_key = m.len;
    evs__jb_raw(&m, x->id, x->id_len);
    EVS__JB_LIT(&m, "/");
    evs__jb_raw(&m, pid.ptr, pid.len);
    EVS__JB_LIT(&m, "/");
    evs__jb_str(&m, S->name);
    EVS__JB_LIT(&m, "/");
    evs__jb_int(&m, iter);
    if (m.err) {
        evs__jb_free(&m);
        free(r);
        return NULL;
    }
    r->mem = m.p;
    r->o = x->o;
    r->x = x;
    r->call.execution_id = (evs_span){x->id, x->id_len};
    r->call.path_id = (evs_span){m.p + o_pid, o_step - o_pid};
    r->call.step = (evs_span){m.p + o_step, o_act - o_step};
    r->call.action = (evs_span){m.p + o_act, o_in - o_act};
    r->call.input = (evs_span){m.p + o_in, o_key - o_in};
    r->call.idempotency_key = (evs_span){m.p + o_key, m.len - o_key};
    r->call.iteration = iter;
    r->call.attempt = attempt;
    r->call.timeout_ms = S->timeout_ms;
    r->need_seq = need_seq;
    if (a) {
        r->fn = a->fn;
        r->fn_arg = a->arg;
        r->flags = a->flags;
    }
    x->nreqs++;
    x->refs++;
    x->o->live_reqs++;
    return r;
}

/* Queues an attempt of an action step to run once need_seq is durable. */
static void queue_action(orch_exec *x, evs_span pid, const evs_wf_step *S,
                         int64_t iter, uint32_t attempt, evs_span input,
                         uint64_t need_seq)
{
    orch_path *op = orch_path_get(x, pid, 1);
    evs_action_req *r;

    if (!op) {
        orch_fail_exec(x, -ENOMEM, "tracking a path");
        return;
    }
    r = make_req(x, pid, S, iter, attempt, input, need_seq);
    if (!r) {
        orch_fail_exec(x, -ENOMEM, "making an action request");
        return;
    }
    op->req = r;
    r->next = x->waiting;
    x->waiting = r;
}

static int64_t sleep_due(orch_exec *x, evs_span pid, const evs_wf_step *S,
                         char *why, size_t cap)
{
    rctx r;
    char *v = NULL;
    size_t n = 0;
    int64_t due = 0, ms;
    evs_wf_error e;
    int rc;

    rctx_init(&r, x, pid);
    rc = evs_wf_render(&r.c, S->duration.len ? S->duration : S->until, NULL,
                       &v, &n, &e);
    if (rc != 0) {
        snprintf(why, cap, "%s", e.msg[0] ? e.msg : evs_strerror(rc));
        return -1;
    }
    if (S->duration.len) {
        if (evs__json_int((evs_span){v, n}, &ms) != 0 || ms < 0) {
            snprintf(why, cap, "duration is not a count of milliseconds");
            due = -2;
        } else {
            due = evs_now_us() + ms * 1000;
        }
    } else if (n < 2 || v[0] != '"' ||
               evs_time_parse(v + 1, n - 2, &due) != 0) {
        snprintf(why, cap, "until is not an RFC 3339 time");
        due = -2;
    }
    free(v);
    return due;
}

static void arm(orch_exec *x, evs_span pid, timer_kind k, evs_span id,
                int64_t due)
{
    orch_path *op = orch_path_get(x, pid, 1);
    orch_timer *t;

    if (!op) {
        orch_fail_exec(x, -ENOMEM, "tracking a path");
        return;
    }
    t = orch_timer_arm(x, k, pid, id, due);
    if (!t) {
        orch_fail_exec(x, -ENOMEM, "arming a timer");
        return;
    }
    if (k == TK_WAIT_TIMEOUT)
        op->wait_timer = t;
    else
        op->timer = t;
}

/* A wait_event step: takes the oldest buffered event of its type. */
static int try_consume(orch_exec *x, evs_span pid, const evs_wf_step *S,
                       int64_t iter)
{
    const evs_replay *rp = x->rp;
    orch_path *op;
    evs__jbuf d = {0};
    evs_span payload;
    uint64_t seq = 0;

    for (size_t i = 0; i < evs_replay_signal_count(rp); i++) {
        const evs_signal_state *s = evs_replay_signal(rp, i);
        if (s->consumed_seq == 0 && span_eq(s->name, S->event)) {
            seq = s->received_seq;
            payload = s->payload;
            break;
        }
    }
    if (!seq)
        return 0;
    if ((op = orch_path_get(x, pid, 0)) && op->wait_timer) {
        orch_timer_cancel(op->wait_timer);
        op->wait_timer = NULL;
    }
    /* The payload's bytes move when the state grows: copy them first. */
    EVS__JB_LIT(&d, "{\"signal_seq\":");
    evs__jb_int(&d, (int64_t)seq);
    EVS__JB_LIT(&d, ",\"timed_out\":false}");
    {
        evs__jbuf out = {0};
        evs__jb_json(&out, payload);
        if (orch_emit(x, NULL, "wait_ended", pid, evs_span_cstr(S->name), &d,
                      NULL) == 0)
            complete_step(x, pid, S, iter, (evs_span){out.p, out.len});
        evs__jb_free(&out);
    }
    evs__jb_free(&d);
    return 1;
}

/* Whether path i is one that `pid` branched and join S names; then its
 * name, and the state of its latest continuation (a branch that loops
 * goes on in "name~2", ...). */
static const evs_path_state *joined(const evs_replay *rp, evs_span pid,
                                    const evs_wf_step *S, size_t i,
                                    evs_span *name)
{
    const evs_path_state *q = evs_replay_path(rp, i);
    char buf[NAME_MAX_];
    int named = 0;

    if (!spans_eq(q->parent, pid) || q->id.len <= pid.len + 1)
        return NULL;
    *name = (evs_span){q->id.ptr + pid.len + 1, q->id.len - pid.len - 1};
    for (size_t k = 0; k < S->n_join_paths && !named; k++)
        named = span_eq(*name, S->join_paths[k]) ||
                strcmp(S->join_paths[k], "*") == 0;
    if (!named)
        return NULL;
    return evs_replay_find_path(rp,
                                orch_path_latest(rp, q->id, buf, sizeof(buf)));
}

/* Cancels the live paths join S on pid waits for (and what they
 * branched): the join was decided, by `win` (NULL when it failed with no
 * path ended first). */
static int cancel_losers(orch_exec *x, evs_span pid, const evs_wf_step *S,
                         const evs_path_state *win, int decided)
{
    const evs_replay *rp = x->rp;
    char why[3 * NAME_MAX_];
    evs_span name;
    int rc = 0;

    if (decided > 0)
        snprintf(why, sizeof(why), "join \"%s\" on path \"%.*s\" "
                 "completed with path \"%.*s\"", S->name, (int)pid.len,
                 pid.ptr, (int)win->id.len, win->id.ptr);
    else if (win)
        snprintf(why, sizeof(why), "join \"%s\" on path \"%.*s\" "
                 "failed: path \"%.*s\" failed first", S->name,
                 (int)pid.len, pid.ptr, (int)win->id.len, win->id.ptr);
    else
        snprintf(why, sizeof(why), "join \"%s\" on path \"%.*s\" failed",
                 S->name, (int)pid.len, pid.ptr);
    for (size_t i = 0; i < evs_replay_path_count(rp) && !rc; i++) {
        const evs_path_state *q = joined(rp, pid, S, i, &name);
        if (q && !q->ended_seq)
            rc = cancel_paths(x, evs_replay_path(rp, i)->id,
                              evs_span_cstr(why));
    }
    return rc;
}

/* The paths `pid` branched that join S waits for, judged by its mode.
 * Returns 1 when it decided (and recorded the step's outcome). */
static int check_join(orch_exec *x, evs_span pid, const evs_wf_step *S,
                      int64_t iter, uint32_t attempt)
{
    const evs_replay *rp = x->rp;
    const evs_path_state *win = NULL, *q;
    evs_span name, win_name = {0};
    size_t live = 0, done = 0, nkids = 0;
    evs__jbuf out = {0};
    int decided = 0;

    for (size_t i = 0; i < evs_replay_path_count(rp); i++) {
        if (!(q = joined(rp, pid, S, i, &name)))
            continue;
        nkids++;
        if (q->ended_seq == 0) {
            live++;
            continue;
        }
        if (q->status == EVS_PATH_COMPLETED)
            done++;
        if (S->join_mode == EVS_JOIN_RACE ||
            (S->join_mode == EVS_JOIN_ANY && q->status == EVS_PATH_COMPLETED))
            if (!win || q->ended_seq < win->ended_seq) {
                win = q;
                win_name = name;
            }
    }
    EVS__JB_LIT(&out, "{");
    if (S->join_mode == EVS_JOIN_ALL && live == 0) {
        size_t n = 0;
        for (size_t i = 0; i < evs_replay_path_count(rp); i++) {
            if (!(q = joined(rp, pid, S, i, &name)))
                continue;
            if (n++)
                EVS__JB_LIT(&out, ",");
            evs__jb_quote(&out, name);
            EVS__JB_LIT(&out, ":");
            evs__jb_json(&out, last_output(rp, q->id));
        }
        decided = done == nkids ? 1 : -1;
    } else if (win && win->status == EVS_PATH_COMPLETED) {
        evs__jb_quote(&out, win_name);
        EVS__JB_LIT(&out, ":");
        evs__jb_json(&out, last_output(rp, win->id));
        decided = 1;
    } else if (win || (live == 0 && S->join_mode != EVS_JOIN_ALL)) {
        decided = -1;
    }
    EVS__JB_LIT(&out, "}");
    /* The paths an `any` or a `race` no longer waits for end with it,
     * before its outcome: deciding again after a crash in between finds
     * the same winner (it ended first) and cancels the rest. */
    if (decided != 0 && S->join_mode != EVS_JOIN_ALL &&
        cancel_losers(x, pid, S, win, decided) != 0)
        decided = 0;
    if (decided > 0) {
        complete_step(x, pid, S, iter, (evs_span){out.p, out.len});
    } else if (decided < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s join: %zu of %zu paths completed",
                 S->join_mode == EVS_JOIN_ALL   ? "all"
                 : S->join_mode == EVS_JOIN_ANY ? "any"
                                                : "race",
                 done, nkids);
        step_failure(x, pid, S, iter, attempt, "join_failed",
                     evs_span_cstr(msg), 0);
    }
    evs__jb_free(&out);
    return decided != 0;
}

/* A version step: the recorded decision, else the newest version. */
static void decide_version(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           int64_t iter)
{
    int64_t v;
    char out[24];
    int rc = orch_version(x, pid, evs_span_cstr(S->change_id),
                          S->version_min, S->version_max, &v);

    if (rc != 0)
        return; /* the execution was given up */
    snprintf(out, sizeof(out), "%lld", (long long)v);
    complete_step(x, pid, S, iter, evs_span_cstr(out));
}

/* The kinds that settle at once from the state: a join checks its
 * paths, an end ends its path, a version decides, a continue_as_new
 * makes the successor. */
static void settle_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                        int64_t iter, uint32_t attempt)
{
    switch (S->kind) {
    case EVS_WF_JOIN:
        check_join(x, pid, S, iter, attempt);
        break;
    case EVS_WF_END:
        complete_step(x, pid, S, iter, (evs_span){0});
        orch_emit(x, NULL, "path_completed", pid, (evs_span){0}, NULL,
                  NULL);
        break;
    case EVS_WF_VERSION:
        decide_version(x, pid, S, iter);
        break;
    case EVS_WF_CONTINUE:
        orch_continue_step(x, pid, S, iter, attempt, step_failure);
        break;
    default:
        break;
    }
}

/* Records the start of attempt `attempt` of S on pid and sets it going. */
/* `fail_type` non-NULL: the step cannot run (its `each` list is not
 * one); it is recorded as started, then failed with that error type and
 * `fail_why`. */
static void start_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                       int64_t iter, int64_t count, evs_span item,
                       uint32_t attempt, const char *fail_type,
                       const char *fail_why)
{
    char hash[EVS_STEP_HASH_LEN + 1], why[256] = "";
    const char *bad_type = fail_type ? fail_type : "template";
    evs__jbuf d = {0};
    char *input = NULL;
    size_t in_len = 0;
    int64_t due = 0;
    uint64_t seq;
    int bad = 0;

    if (fail_type) {
        snprintf(why, sizeof(why), "%s", fail_why);
        bad = 1;
    } else if (S->kind == EVS_WF_ACTION) {
        rctx r;
        evs_wf_error e;
        rctx_init(&r, x, pid);
        r.c.item = item;
        r.c.index = iter;
        if (evs_wf_render(&r.c, S->params, NULL, &input, &in_len, &e) != 0) {
            snprintf(why, sizeof(why), "params: %.200s", e.msg);
            bad = 1;
        }
    } else if (S->kind == EVS_WF_SLEEP) {
        if ((due = sleep_due(x, pid, S, why, sizeof(why))) < 0) {
            bad = 1;
            if (due == -2)
                bad_type = "bad_input";
        }
    }
    if (evs_replay_step_hash(S->raw.ptr, S->raw.len, hash) != 0)
        hash[0] = '\0';
    EVS__JB_LIT(&d, "{\"attempt\":");
    evs__jb_int(&d, attempt);
    if (iter >= 0) {
        EVS__JB_LIT(&d, ",\"iteration\":");
        evs__jb_int(&d, iter);
        EVS__JB_LIT(&d, ",\"count\":");
        evs__jb_int(&d, count);
    }
    if (input) {
        EVS__JB_LIT(&d, ",\"input\":");
        evs__jb_raw(&d, input, in_len);
    }
    EVS__JB_LIT(&d, ",\"step_hash\":");
    evs__jb_quote(&d, evs_span_cstr(hash));
    EVS__JB_LIT(&d, ",\"kind\":");
    evs__jb_quote(&d, evs_span_cstr(evs_wf_kind_name(S->kind)));
    EVS__JB_LIT(&d, "}");
    if (orch_emit(x, NULL, "step_started", pid, evs_span_cstr(S->name), &d,
                  &seq) != 0)
        goto out;
    if (bad) {
        step_failure(x, pid, S, iter, attempt, bad_type, evs_span_cstr(why),
                     0);
        goto out;
    }
    switch (S->kind) {
    case EVS_WF_ACTION:
        queue_action(x, pid, S, iter, attempt, (evs_span){input, in_len},
                     seq);
        break;
    case EVS_WF_SLEEP: {
        evs__jbuf t = {0};
        evs__jb_raw(&t, pid.ptr, pid.len);
        EVS__JB_LIT(&t, "/");
        evs__jb_str(&t, S->name);
        EVS__JB_LIT(&t, "/");
        evs__jb_int(&t, iter);
        EVS__JB_LIT(&t, "/");
        evs__jb_int(&t, attempt);
        d.len = 0;
        EVS__JB_LIT(&d, "{\"timer_id\":");
        evs__jb_quote(&d, (evs_span){t.p, t.len});
        EVS__JB_LIT(&d, ",\"fire_at\":");
        evs__jb_time(&d, due);
        EVS__JB_LIT(&d, "}");
        if (!t.err && orch_emit(x, NULL, "timer_started", pid,
                                evs_span_cstr(S->name), &d, NULL) == 0)
            arm(x, pid, TK_SLEEP, (evs_span){t.p, t.len}, due);
        evs__jb_free(&t);
        break;
    }
    case EVS_WF_WAIT_EVENT:
        d.len = 0;
        EVS__JB_LIT(&d, "{\"signal\":");
        evs__jb_quote(&d, evs_span_cstr(S->event));
        if (S->timeout_ms > 0) {
            due = evs_now_us() + S->timeout_ms * 1000;
            EVS__JB_LIT(&d, ",\"timeout_at\":");
            evs__jb_time(&d, due);
        }
        EVS__JB_LIT(&d, "}");
        if (orch_emit(x, NULL, "wait_started", pid, evs_span_cstr(S->name),
                      &d, NULL) != 0)
            break;
        if (!try_consume(x, pid, S, iter) && S->timeout_ms > 0)
            arm(x, pid, TK_WAIT_TIMEOUT, (evs_span){0}, due);
        break;
    case EVS_WF_JOIN:
    case EVS_WF_END:
    case EVS_WF_VERSION:
    case EVS_WF_CONTINUE:
        settle_step(x, pid, S, iter, attempt);
        break;
    }
out:
    free(input);
    evs__jb_free(&d);
}

/* Renders an `each` step's list. Returns its items' count, or with `why`
 * set -1 (a reference to nothing) or -2 (not an array). *list is the
 * array (owned). */
static int64_t each_list(orch_exec *x, evs_span pid, const evs_wf_step *S,
                         char **list, size_t *len, char *why, size_t cap)
{
    rctx r;
    evs_wf_error e;
    evs__jit it;
    evs_span v;
    int64_t n = 0;
    int rc;

    rctx_init(&r, x, pid);
    rc = evs_wf_render(&r.c, S->each, NULL, list, len, &e);
    if (rc != 0) {
        snprintf(why, cap, "each: %.200s", e.msg);
        return -1;
    }
    if (evs__json_iter_begin(&it, (evs_span){*list, *len}, '[') != 0) {
        snprintf(why, cap, "each: not an array");
        return -2;
    }
    while ((rc = evs__json_arr_next(&it, &v)) == 1)
        n++;
    return rc == 0 ? n : -1;
}

static evs_span each_item(const char *list, size_t len, int64_t i)
{
    evs__jit it;
    evs_span v = {0};

    if (evs__json_iter_begin(&it, (evs_span){list, len}, '[') != 0)
        return v;
    while (evs__json_arr_next(&it, &v) == 1)
        if (i-- == 0)
            return v;
    return (evs_span){0};
}

/* Starts the step named `name` (iteration 0 if `each`) on pid. */
static void enter_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                       uint32_t attempt, int64_t iter);

/* Forks one new path per matching edge m[0..nm) of S from pid. A path
 * that exists and was made after S started is this branch's own, made
 * before a crash (a branch is written in one append); one made earlier
 * means a second branch of the same name on this path, a conflict.
 * Returns 0, or -1 when the path failed or the execution was given up. */
static int branch(orch_exec *x, evs_span pid, const evs_wf_step *S,
                  const evs_wf_edge **m, size_t nm)
{
    const evs_step_state *st = evs_replay_find_step(
        x->rp, pid, evs_span_cstr(S->name), S->each.len ? 0 : -1);
    uint64_t since = st ? st->started_seq : 0;
    evs__jbuf *ids = calloc(nm, sizeof(*ids)), d = {0};
    char *fresh = calloc(nm, 1);
    size_t n = 0;
    int rc = -1;

    if (!ids || !fresh) {
        orch_fail_exec(x, -ENOMEM, "branching");
        goto out;
    }
    EVS__JB_LIT(&d, "{\"new_paths\":[");
    for (size_t i = 0; i < nm; i++) {
        const evs_path_state *q;
        evs__jb_raw(&ids[i], pid.ptr, pid.len);
        EVS__JB_LIT(&ids[i], ".");
        evs__jb_str(&ids[i], m[i]->path ? m[i]->path : m[i]->to);
        if (ids[i].err) {
            orch_fail_exec(x, -ENOMEM, "branching");
            goto out;
        }
        q = evs_replay_find_path(x->rp, (evs_span){ids[i].p, ids[i].len});
        if (q && q->started_seq < since) {
            evs__jbuf e = {0};
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "step \"%s\" branches path \"%.*s\", which an earlier "
                     "branch of this path made", S->name, (int)ids[i].len,
                     ids[i].p);
            error_json(&e, "branch_conflict", evs_span_cstr(msg), 0);
            fail_path(x, pid, (evs_span){e.p, e.len});
            evs__jb_free(&e);
            goto out;
        }
        if (q)
            continue;
        fresh[i] = 1;
        if (n++)
            EVS__JB_LIT(&d, ",");
        EVS__JB_LIT(&d, "{\"id\":");
        evs__jb_quote(&d, (evs_span){ids[i].p, ids[i].len});
        EVS__JB_LIT(&d, ",\"current_step\":");
        evs__jb_quote(&d, evs_span_cstr(m[i]->to));
        EVS__JB_LIT(&d, "}");
    }
    EVS__JB_LIT(&d, "]}");
    if (n && orch_emit(x, NULL, "path_branched", pid, evs_span_cstr(S->name),
                       &d, NULL) != 0)
        goto out;
    for (size_t i = 0; i < nm && !x->broken; i++) {
        if (!fresh[i])
            continue;
        d.len = 0;
        EVS__JB_LIT(&d, "{\"parent\":");
        evs__jb_quote(&d, pid);
        EVS__JB_LIT(&d, ",\"current_step\":");
        evs__jb_quote(&d, evs_span_cstr(m[i]->to));
        EVS__JB_LIT(&d, "}");
        orch_emit(x, NULL, "path_started", (evs_span){ids[i].p, ids[i].len},
                  (evs_span){0}, &d, NULL);
    }
    rc = x->broken ? -1 : 0;
out:
    for (size_t i = 0; ids && i < nm; i++)
        evs__jb_free(&ids[i]);
    free(ids);
    free(fresh);
    evs__jb_free(&d);
    return rc;
}

/* An `each` step whose iterations are all done completes as a whole,
 * with the array of their outputs (stored, when it has `store`), once:
 * after a crash between this and the edges, it is found completed. */
static int complete_each(orch_exec *x, evs_span pid, const evs_wf_step *S)
{
    evs_span name = evs_span_cstr(S->name);
    const evs_each_state *e = evs_replay_find_each(x->rp, pid, name);
    evs__jbuf d = {0};
    int rc;

    if (e && e->ended_seq)
        return 0;
    EVS__JB_LIT(&d, "{\"output\":");
    each_outputs(x->rp, pid, name, &d);
    if (S->store) {
        EVS__JB_LIT(&d, ",\"stored_variable\":");
        evs__jb_quote(&d, evs_span_cstr(S->store));
    }
    EVS__JB_LIT(&d, ",\"count\":");
    evs__jb_int(&d, e ? e->done : 0);
    EVS__JB_LIT(&d, "}");
    rc = orch_emit(x, NULL, "each_completed", pid, name, &d, NULL);
    evs__jb_free(&d);
    return rc;
}

/* Follows S's edges from pid, which has finished it. */
static void advance(orch_exec *x, evs_span pid, const evs_wf_step *S)
{
    const evs_wf_edge **m = NULL;
    size_t nm = 0;
    rctx r;

    if (S->each.len && complete_each(x, pid, S) != 0)
        goto out;
    if (S->n_next && !(m = malloc(S->n_next * sizeof(*m)))) {
        orch_fail_exec(x, -ENOMEM, "following edges");
        goto out;
    }
    rctx_init(&r, x, pid);
    for (size_t i = 0; i < S->n_next; i++) {
        int ok = 1;
        if (S->next[i].when && evs_wf_cond_eval(S->next[i].when, &r.c, &ok))
            ok = 0;
        if (ok)
            m[nm++] = &S->next[i];
    }
    if (nm == 1 && !m[0]->path) {
        enter_step(x, pid, evs_wf_find_step(x->def, evs_span_cstr(m[0]->to)),
                   1, -1);
    } else if (nm == 0) {
        orch_emit(x, NULL, "path_completed", pid, (evs_span){0}, NULL, NULL);
    } else if (branch(x, pid, S, m, nm) == 0) {
        if (S->then)
            enter_step(x, pid,
                       evs_wf_find_step(x->def, evs_span_cstr(S->then)), 1,
                       -1);
        else
            orch_emit(x, NULL, "path_completed", pid, (evs_span){0}, NULL,
                      NULL);
    }
out:
    free(m);
}

static void enter_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                       uint32_t attempt, int64_t iter)
{
    const evs_step_state *st;
    const evs_each_state *e;
    char *list = NULL, why[256];
    size_t len = 0;
    int64_t n = -1;

    if (!S) {
        orch_fail_exec(x, EVS_EPARSE, "an edge names no step");
        return;
    }
    st = evs_replay_find_step(x->rp, pid, evs_span_cstr(S->name),
                              S->each.len ? (iter < 0 ? 0 : iter) : -1);
    e = S->each.len && iter <= 0
            ? evs_replay_find_each(x->rp, pid, evs_span_cstr(S->name))
            : NULL;
    if (((st && step_done(st)) || (e && e->ended_seq)) && attempt == 1) {
        /* A loop: the history rules name a step by (path, name,
         * iteration), so the path goes on in a continuation. (A step
         * reset by a retry of the execution is not done: it runs here
         * again.) */
        orch_wrap(x, pid, S);
        return;
    }
    if (!S->each.len) {
        start_step(x, pid, S, -1, -1, (evs_span){0}, attempt, NULL, NULL);
        return;
    }
    if (iter < 0)
        iter = 0;
    n = each_list(x, pid, S, &list, &len, why, sizeof(why));
    if (n < 0) {
        /* Recorded as a failed first iteration: the reason is kept. */
        start_step(x, pid, S, iter, 0, (evs_span){0}, attempt,
                   n == -2 ? "bad_input" : "template", why);
    } else if (iter >= n) {
        advance(x, pid, S); /* an empty list, or every item done */
    } else {
        start_step(x, pid, S, iter, n, each_item(list, len, iter), attempt,
                   NULL, NULL);
    }
    free(list);
}

/* ---------------------------------------------------------------- */
/* drive                                                            */
/* ---------------------------------------------------------------- */

static int find_pending_timer(const evs_replay *rp, evs_span pid,
                              evs_span step, int64_t *due, name_buf *id)
{
    for (size_t i = evs_replay_timer_count(rp); i-- > 0;) {
        const evs_timer_state *t = evs_replay_timer(rp, i);
        if (!t->fired_seq && !t->cancelled && spans_eq(t->path_id, pid) &&
            spans_eq(t->step, step)) {
            *due = t->fire_at_us;
            nb_set(id, t->timer_id);
            return 1;
        }
    }
    return 0;
}

static const evs_wait_state *pending_wait(const evs_replay *rp, evs_span pid)
{
    for (size_t i = evs_replay_wait_count(rp); i-- > 0;) {
        const evs_wait_state *w = evs_replay_wait(rp, i);
        if (!w->ended_seq && spans_eq(w->path_id, pid))
            return w;
    }
    return NULL;
}

/* One live path. Returns 1 if it recorded something. */
static int drive_path(orch_exec *x, size_t i)
{
    const evs_replay *rp = x->rp;
    const evs_path_state *ps = evs_replay_path(rp, i);
    const evs_step_state *st;
    const evs_wf_step *S;
    orch_path *op;
    name_buf pb, sb;
    evs_span pid, cur;
    int64_t iter = -1, count = -1;
    uint64_t seq0 = evs_replay_exec(rp)->last_seq;

    if (ps->ended_seq)
        return 0;
    pid = nb_set(&pb, ps->id);
    cur = nb_set(&sb, ps->current_step);
    op = orch_path_get(x, pid, 1);
    if (!op) {
        orch_fail_exec(x, -ENOMEM, "tracking a path");
        return 0;
    }
    if (op->req || op->timer)
        return 0;
    S = evs_wf_find_step(x->def, cur);
    if (!S) {
        char msg[NAME_MAX_ + 64];
        snprintf(msg, sizeof(msg), "the definition has no step \"%s\"",
                 cur.ptr);
        orch_fail_exec(x, EVS_EPARSE, msg);
        return 0;
    }
    if (S->each.len) {
        const evs_each_state *e = evs_replay_find_each(rp, pid, cur);
        iter = e ? e->done : 0;
        count = e ? e->count : -1;
        if (e && e->ended_seq) {
            advance(x, pid, S); /* its completion is recorded */
            goto done;
        }
        if (e && count >= 0 && iter >= count) {
            st = evs_replay_find_step(rp, pid, cur, iter - 1);
            if (!st || step_done(st))
                advance(x, pid, S);
            goto done;
        }
    }
    st = evs_replay_find_step(rp, pid, cur, iter);
    if (!st) {
        /* A path made by a branch, or the first step of the run. */
        if (iter > 0 || !S->each.len)
            enter_step(x, pid, S, 1, iter);
        else
            enter_step(x, pid, S, 1, 0);
        goto done;
    }
    switch (st->status) {
    case EVS_STEP_RUNNING:
        switch (S->kind) {
        case EVS_WF_ACTION:
            /* Started and never finished: run the same attempt again,
             * with the same input and idempotency key. */
            queue_action(x, pid, S, iter, st->attempts, st->input,
                         st->started_seq);
            break;
        case EVS_WF_SLEEP: {
            name_buf tid;
            int64_t due;
            if (find_pending_timer(rp, pid, cur, &due, &tid))
                arm(x, pid, TK_SLEEP, (evs_span){tid.s, tid.len}, due);
            else
                complete_step(x, pid, S, iter, (evs_span){0});
            break;
        }
        case EVS_WF_WAIT_EVENT: {
            const evs_wait_state *w = pending_wait(rp, pid);
            int64_t due = w ? w->timeout_at_us : 0;
            if (!w)
                break;
            if (!try_consume(x, pid, S, iter) && due && !op->wait_timer)
                arm(x, pid, TK_WAIT_TIMEOUT, (evs_span){0}, due);
            break;
        }
        case EVS_WF_JOIN:
        case EVS_WF_END:
        case EVS_WF_VERSION:
        case EVS_WF_CONTINUE:
            /* Decided from the state alone, so deciding again after a
             * crash gives the same (a successor made before the crash is
             * found again, not made twice). */
            settle_step(x, pid, S, iter, st->attempts);
            break;
        }
        break;
    case EVS_STEP_RETRYING:
        arm(x, pid, TK_RETRY, (evs_span){0}, st->retry_at_us);
        break;
    case EVS_STEP_FAILED:
        /* Its path fails with it (recorded together, unless the history
         * was cut between them). */
        {
            evs__jbuf e = {0};
            evs__jb_json(&e, st->error);
            fail_path(x, pid, (evs_span){e.p, e.len});
            evs__jb_free(&e);
        }
        break;
    case EVS_STEP_CANCELLED:
        break; /* its path has ended: not driven */
    case EVS_STEP_COMPLETED:
    case EVS_STEP_SKIPPED:
        if (iter >= 0)
            break; /* counted in its each's progress above */
        advance(x, pid, S);
        break;
    }
done:
    return evs_replay_exec(rp)->last_seq != seq0;
}

static void exec_outputs(orch_exec *x)
{
    char latest[NAME_MAX_];
    /* The root path, or the continuation its loop went on in. */
    evs_span main_id = orch_path_latest(
        x->rp,
        evs_replay_path_count(x->rp) ? evs_replay_path(x->rp, 0)->id
                                     : evs_span_cstr("main"),
        latest, sizeof(latest));
    evs__jbuf d = {0};
    char *out = NULL;
    size_t n = 0;

    if (x->def->outputs.len) {
        rctx r;
        evs_wf_error e;
        name_buf pb;
        int rc;
        rctx_init(&r, x, nb_set(&pb, main_id));
        rc = evs_wf_render(&r.c, x->def->outputs, NULL, &out, &n, &e);
        if (rc != 0) {
            evs__jbuf err = {0};
            error_json(&err, "template", evs_span_cstr(e.msg), 0);
            EVS__JB_LIT(&d, "{\"error\":");
            evs__jb_raw(&d, err.p, err.len);
            EVS__JB_LIT(&d, "}");
            evs__jb_free(&err);
            orch_emit(x, NULL, "execution_failed", main_id, (evs_span){0},
                      &d, NULL);
            evs__jb_free(&d);
            return;
        }
        EVS__JB_LIT(&d, "{\"outputs\":");
        evs__jb_raw(&d, out, n);
        EVS__JB_LIT(&d, "}");
        free(out);
    } else {
        EVS__JB_LIT(&d, "{\"outputs\":");
        evs__jb_json(&d, last_output(x->rp, main_id));
        EVS__JB_LIT(&d, "}");
    }
    orch_emit(x, NULL, "execution_completed", main_id, (evs_span){0}, &d,
              NULL);
    evs__jb_free(&d);
}

/* Forgets what this process tracked for paths that have ended and have
 * nothing in flight: a service's loop makes a path per pass. */
static void prune_paths(orch_exec *x)
{
    for (size_t i = 0; i < x->npaths;) {
        orch_path *p = &x->paths[i];
        const evs_path_state *ps;
        if (p->req || p->timer || p->wait_timer ||
            !(ps = evs_replay_find_path(x->rp, evs_span_cstr(p->id))) ||
            !ps->ended_seq) {
            i++;
            continue;
        }
        free(p->id);
        x->paths[i] = x->paths[--x->npaths];
    }
}

void drive(orch_exec *x)
{
    int changed;

    if (x->released || x->broken || x->driving || x->continuing)
        return;
    x->driving = 1;
    do {
        const evs_exec_state *st = evs_replay_exec(x->rp);
        size_t n, live = 0;

        changed = 0;
        if (st->status >= EVS_STATUS_COMPLETED ||
            st->status == EVS_STATUS_PAUSED || x->o->stopping)
            break;
        /* Paths before the first live one have all ended: a loop's
         * passes leave a trail of them, not looked at again. */
        n = evs_replay_path_count(x->rp);
        while (x->first_live < n &&
               evs_replay_path(x->rp, x->first_live)->ended_seq)
            x->first_live++;
        for (size_t i = x->first_live;
             i < evs_replay_path_count(x->rp) && !x->broken; i++)
            changed |= drive_path(x, i);
        if (x->broken || x->released)
            break;
        st = evs_replay_exec(x->rp);
        if (st->status >= EVS_STATUS_COMPLETED)
            break;
        for (size_t i = x->first_live; i < evs_replay_path_count(x->rp);
             i++)
            if (!evs_replay_path(x->rp, i)->ended_seq)
                live++;
        if (live == 0) {
            exec_outputs(x);
            changed = 0;
        }
    } while (changed && !x->broken && !x->released);
    x->driving = 0;
    if (!x->released) {
        prune_paths(x);
        orch_kick(x);
    }
}

/* ---------------------------------------------------------------- */
/* Events from outside                                              */
/* ---------------------------------------------------------------- */

void drive_outcome(orch_exec *x, evs_action_req *req)
{
    const evs_step_state *st;
    const evs_wf_step *S;
    name_buf pb;
    evs_span pid = nb_set(&pb, req->call.path_id);

    S = evs_wf_find_step(x->def, req->call.step);
    st = evs_replay_find_step(x->rp, pid, req->call.step,
                              req->call.iteration);
    if (!S || !st || st->status != EVS_STEP_RUNNING ||
        st->attempts != req->call.attempt ||
        evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return; /* superseded: timed out, or the execution ended */
    if (!req->failed) {
        evs_span out = {req->output, req->output_len};
        if (out.len && evs_json_check(out.ptr, out.len, EVS_JSON_MINIFY,
                                      req->output, &req->output_len,
                                      NULL) != 0) {
            step_failure(x, pid, S, req->call.iteration, req->call.attempt,
                         "bad_output",
                         evs_span_cstr("the action's output is not JSON"),
                         0);
        } else {
            out.len = req->output_len;
            complete_step(x, pid, S, req->call.iteration, out);
        }
    } else {
        step_failure(x, pid, S, req->call.iteration, req->call.attempt,
                     req->etype ? req->etype : "error",
                     evs_span_cstr(req->emsg ? req->emsg : ""),
                     req->retryable);
    }
    drive(x);
}

/* An attempt ran out of time: its late outcome will be ignored. */
static void action_timed_out(orch_exec *x, evs_action_req *req)
{
    orch_path *op;
    const evs_wf_step *S;
    char msg[128];
    name_buf pb;
    evs_span pid;

    if (!req || req->stale)
        return;
    req->timeout = NULL;
    pid = nb_set(&pb, req->call.path_id);
    op = orch_path_get(x, pid, 0);
    if (!op || op->req != req)
        return;
    op->req = NULL;
    req->stale = 1;
    actions_kill(req);
    S = evs_wf_find_step(x->def, req->call.step);
    if (!S || evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return;
    snprintf(msg, sizeof(msg), "attempt %u ran past its %lld ms timeout",
             req->call.attempt, (long long)req->call.timeout_ms);
    step_failure(x, pid, S, req->call.iteration, req->call.attempt,
                 "timeout", evs_span_cstr(msg), 1);
    drive(x);
}

void drive_timer(orch_exec *x, orch_timer *t)
{
    evs_span pid = evs_span_cstr(t->path);
    orch_path *op = orch_path_get(x, pid, 0);
    const evs_path_state *ps = evs_replay_find_path(x->rp, pid);
    const evs_step_state *st;
    const evs_wf_step *S;
    const evs_each_state *e = NULL;
    name_buf sb;
    int64_t iter = -1;
    evs__jbuf d = {0};

    if (op && op->timer == t)
        op->timer = NULL;
    if (op && op->wait_timer == t)
        op->wait_timer = NULL;
    if (t->kind == TK_ACTION_TIMEOUT) {
        action_timed_out(x, t->req);
        return;
    }
    if (!ps || ps->ended_seq)
        return;
    /* Paused: the timer is re-armed by drive() on resume, already due. */
    if (evs_replay_exec(x->rp)->status == EVS_STATUS_PAUSED ||
        x->o->stopping)
        return;
    nb_set(&sb, ps->current_step);
    S = evs_wf_find_step(x->def, (evs_span){sb.s, sb.len});
    if (!S)
        return;
    if (S->each.len && (e = evs_replay_find_each(x->rp, pid, evs_span_cstr(S->name))))
        iter = e->done;
    st = evs_replay_find_step(x->rp, pid, evs_span_cstr(S->name), iter);
    if (!st)
        return;
    switch (t->kind) {
    case TK_SLEEP:
        if (st->status != EVS_STEP_RUNNING)
            break;
        EVS__JB_LIT(&d, "{\"timer_id\":");
        evs__jb_quote(&d, evs_span_cstr(t->id));
        EVS__JB_LIT(&d, "}");
        if (orch_emit(x, NULL, "timer_fired", pid, evs_span_cstr(S->name),
                      &d, NULL) == 0)
            complete_step(x, pid, S, iter, (evs_span){0});
        break;
    case TK_RETRY:
        if (st->status == EVS_STEP_RETRYING)
            enter_step(x, pid, S, st->attempts + 1, iter);
        break;
    case TK_WAIT_TIMEOUT: {
        char msg[200];
        if (st->status != EVS_STEP_RUNNING || !pending_wait(x->rp, pid))
            break;
        EVS__JB_LIT(&d, "{\"timed_out\":true}");
        if (orch_emit(x, NULL, "wait_ended", pid, evs_span_cstr(S->name), &d,
                      NULL) != 0)
            break;
        snprintf(msg, sizeof(msg), "no \"%s\" event within %lld ms",
                 S->event, (long long)S->timeout_ms);
        step_failure(x, pid, S, iter, st->attempts, "timeout",
                     evs_span_cstr(msg), 0);
        break;
    }
    case TK_ACTION_TIMEOUT:
        break;
    }
    evs__jb_free(&d);
    drive(x);
}

static int get_str(evs_span body, const char *key, name_buf *out)
{
    evs_span v;

    if (evs__json_get(body, key, &v) != 1 || v.len < 2 || v.ptr[0] != '"' ||
        v.len - 2 >= NAME_MAX_)
        return 0;
    out->len = evs__json_unescape(v.ptr + 1, v.len - 2, out->s);
    out->s[out->len] = '\0';
    return 1;
}

int drive_request(orch_exec *x, const char *req_id, evs_span body,
                  uint64_t *seq)
{
    const evs_exec_state *st = evs_replay_exec(x->rp);
    evs_span main_id = evs_span_cstr("main");
    name_buf kind, type;
    evs_span payload = {0};
    evs__jbuf d = {0};
    int control = 0;

    *seq = 0;
    if (!get_str(body, "kind", &kind))
        kind.len = 0;
    if (st->status >= EVS_STATUS_COMPLETED)
        return 0; /* finished meanwhile: nothing takes it */
    if (evs__json_get(body, "payload", &payload) != 1)
        payload = (evs_span){0};
    if (span_eq((evs_span){kind.s, kind.len}, "event")) {
        if (!get_str(body, "type", &type))
            return 0;
        /* Taken before a crash. A compact state no longer knows the
         * sequence of a consumed signal (*seq 0): the caller then waits
         * for the last one before it removes the request. */
        if (req_id && evs_replay_signal_received(
                          x->rp, (evs_span){req_id, EVS_UUID_LEN}, seq))
            return 0;
        EVS__JB_LIT(&d, "{\"signal\":");
        evs__jb_quote(&d, (evs_span){type.s, type.len});
        EVS__JB_LIT(&d, ",\"payload\":");
        evs__jb_json(&d, payload);
        EVS__JB_LIT(&d, "}");
        orch_emit(x, req_id, "signal_received", main_id, (evs_span){0}, &d,
                  seq);
    } else if (span_eq((evs_span){kind.s, kind.len}, "pause")) {
        if (st->status != EVS_STATUS_PAUSED) {
            EVS__JB_LIT(&d, "{\"reason\":");
            evs__jb_json(&d, payload);
            EVS__JB_LIT(&d, "}");
            orch_emit(x, req_id, "execution_paused", main_id, (evs_span){0},
                      &d, seq);
            control = 1;
        }
    } else if (span_eq((evs_span){kind.s, kind.len}, "unpause")) {
        if (st->status == EVS_STATUS_PAUSED) {
            orch_emit(x, req_id, "execution_resumed", main_id,
                      (evs_span){0}, NULL, seq);
            control = 1;
        }
    } else if (span_eq((evs_span){kind.s, kind.len}, "terminate")) {
        if (cancel_paths(x, (evs_span){0},
                         evs_span_cstr("the execution was terminated")))
            goto out;
        EVS__JB_LIT(&d, "{\"reason\":");
        evs__jb_json(&d, payload);
        EVS__JB_LIT(&d, "}");
        orch_emit(x, req_id, "execution_terminated", main_id, (evs_span){0},
                  &d, seq);
        control = 1;
    }
out:
    evs__jb_free(&d);
    return x->broken ? x->err : control;
}
