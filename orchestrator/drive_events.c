/*
 * drive_events.c: what reaches the step machine from outside the evs__drive
 * loop: an action's outcome (on the loop thread, from the async handle),
 * a timer that fired (a sleep, a retry's backoff, a wait's or an
 * attempt's timeout), and a request (an event, pause, unpause,
 * terminate) from the inbox or from this process.
 */
#include "drive_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void evs__drive_outcome(orch_exec *x, evs_action_req *req)
{
    const evs_step_state *st;
    const evs_wf_step *S;
    name_buf pb;
    evs_span pid = nb_set(&pb, req->call.path_id);

    S = evs_wf_find_step(x->def, req->call.step);
    st = evs_replay_find_step(x->rp, pid, req->call.step, req->call.iteration);
    if (!S || !st || st->status != EVS_STEP_RUNNING ||
        st->attempts != req->call.attempt ||
        evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return; /* superseded: timed out, or the execution ended */
    if (!req->failed) {
        evs_span out = {req->output, req->output_len};
        if (out.len &&
            evs_json_check(out.ptr, out.len, EVS_JSON_MINIFY, req->output,
                           &req->output_len, NULL) != 0) {
            evs__drive_step_failure(
                x, pid, S, req->call.iteration, req->call.attempt, "bad_output",
                evs_span_cstr("the action's output is not JSON"), 0);
        } else {
            out.len = req->output_len;
            evs__drive_complete_step(x, pid, S, req->call.iteration, out);
        }
    } else {
        evs__drive_step_failure(
            x, pid, S, req->call.iteration, req->call.attempt,
            req->etype ? req->etype : "error",
            evs_span_cstr(req->emsg ? req->emsg : ""), req->retryable);
    }
    evs__drive(x);
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
    op = evs__orch_path_get(x, pid, 0);
    if (!op || op->req != req)
        return;
    op->req = NULL;
    req->stale = 1;
    evs__actions_kill(req);
    S = evs_wf_find_step(x->def, req->call.step);
    if (!S || evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return;
    snprintf(msg, sizeof(msg), "attempt %u ran past its %lld ms timeout",
             req->call.attempt, (long long)req->call.timeout_ms);
    evs__drive_step_failure(x, pid, S, req->call.iteration, req->call.attempt,
                            "timeout", evs_span_cstr(msg), 1);
    evs__drive(x);
}

void evs__drive_timer(orch_exec *x, orch_timer *t)
{
    evs_span pid = evs_span_cstr(t->path);
    orch_path *op = evs__orch_path_get(x, pid, 0);
    const evs_path_state *ps = evs_replay_find_path(x->rp, pid);
    const evs_step_state *st;
    const evs_wf_step *S;
    const evs_each_state *e = NULL;
    name_buf sb;
    int64_t iter = -1;
    evs__jbuf d = {.alloc = x->o->alloc};

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
    /* Paused: the timer is re-armed by evs__drive() on resume, already due. */
    if (evs_replay_exec(x->rp)->status == EVS_STATUS_PAUSED || x->o->stopping)
        return;
    nb_set(&sb, ps->current_step);
    S = evs_wf_find_step(x->def, (evs_span){sb.s, sb.len});
    if (!S)
        return;
    if (S->each.len &&
        (e = evs_replay_find_each(x->rp, pid, evs_span_cstr(S->name))))
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
        if (evs__orch_emit(x, NULL, EVS_EV_TIMER_FIRED, pid,
                           evs_span_cstr(S->name), &d, NULL) == 0)
            evs__drive_complete_step(x, pid, S, iter, (evs_span){0});
        break;
    case TK_RETRY:
        if (st->status == EVS_STEP_RETRYING)
            evs__drive_enter_step(x, pid, S, st->attempts + 1, iter);
        break;
    case TK_WAIT_TIMEOUT: {
        char msg[200];
        if (st->status != EVS_STEP_RUNNING ||
            !evs__drive_pending_wait(x->rp, pid))
            break;
        EVS__JB_LIT(&d, "{\"timed_out\":true}");
        if (evs__orch_emit(x, NULL, EVS_EV_WAIT_ENDED, pid,
                           evs_span_cstr(S->name), &d, NULL) != 0)
            break;
        snprintf(msg, sizeof(msg), "no \"%s\" event within %lld ms", S->event,
                 (long long)S->timeout_ms);
        evs__drive_step_failure(x, pid, S, iter, st->attempts, "timeout",
                                evs_span_cstr(msg), 0);
        break;
    }
    case TK_ACTION_TIMEOUT:
        assert(!"an attempt's timeout is handled above");
        break;
    }
    evs__jb_free(&d);
    evs__drive(x);
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

int evs__drive_request(orch_exec *x, const char *req_id, evs_span body,
                       uint64_t *seq)
{
    const evs_exec_state *st = evs_replay_exec(x->rp);
    evs_span main_id = evs_span_cstr("main");
    name_buf kind, type;
    evs_span payload = {0};
    evs__jbuf d = {.alloc = x->o->alloc};
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
        evs__orch_emit(x, req_id, EVS_EV_SIGNAL_RECEIVED, main_id,
                       (evs_span){0}, &d, seq);
    } else if (span_eq((evs_span){kind.s, kind.len}, "pause")) {
        if (st->status != EVS_STATUS_PAUSED) {
            evs__request_control_data(&d, body);
            evs__orch_emit(x, req_id, EVS_EV_EXECUTION_PAUSED, main_id,
                           (evs_span){0}, &d, seq);
            control = 1;
        }
    } else if (span_eq((evs_span){kind.s, kind.len}, "unpause")) {
        if (st->status == EVS_STATUS_PAUSED) {
            evs__request_control_data(&d, body);
            evs__orch_emit(x, req_id, EVS_EV_EXECUTION_RESUMED, main_id,
                           (evs_span){0}, &d, seq);
            control = 1;
        }
    } else if (span_eq((evs_span){kind.s, kind.len}, "terminate")) {
        if (evs__drive_cancel_paths(
                x, (evs_span){0},
                evs_span_cstr("the execution was terminated")))
            goto out;
        evs__request_control_data(&d, body);
        evs__orch_emit(x, req_id, EVS_EV_EXECUTION_TERMINATED, main_id,
                       (evs_span){0}, &d, seq);
        control = 1;
    }
out:
    evs__jb_free(&d);
    return x->broken ? x->err : control;
}
