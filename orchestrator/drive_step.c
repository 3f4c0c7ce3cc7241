/*
 * drive_step.c: starting a step. Its start is recorded first
 * (step_started, with the attempt, the rendered input and the step's
 * hash); then an action is queued to run once that is durable, a sleep
 * arms its timer, a wait_event looks for its event, and the kinds that
 * settle from the state alone (join, end, version, continue_as_new)
 * settle.
 */
#include "drive_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends the idempotency key of a step to b: the same for every
 * attempt and every dispatch of it (README, "Actions"). */
static void step_key(const orch_exec *x, evs__jbuf *b, evs_span pid,
                     const evs_wf_step *S, int64_t iter)
{
    evs__jb_raw(b, x->id, x->id_len);
    EVS__JB_LIT(b, "/");
    evs__jb_raw(b, pid.ptr, pid.len);
    EVS__JB_LIT(b, "/");
    evs__jb_str(b, S->name);
    EVS__JB_LIT(b, "/");
    evs__jb_int(b, iter);
}

static evs_action_req *make_req(orch_exec *x, evs_span pid,
                                const evs_wf_step *S, int64_t iter,
                                uint32_t attempt, evs_span input,
                                uint64_t need_seq)
{
    struct orch_action *a = NULL;
    evs_action_req *r;
    evs__jbuf m = {.alloc = x->o->alloc};
    size_t o_pid, o_step, o_act, o_in, o_key;

    if (strncmp(S->action, "exec:", 5) != 0 &&
        !(a = evs__actions_find(x->o, S->action)))
        return NULL;
    r = evs__calloc(x->o->alloc, sizeof(*r));
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
    step_key(x, &m, pid, S, iter);
    if (m.err) {
        evs__jb_free(&m);
        evs__free(x->o->alloc, r);
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
void evs__drive_queue_action(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             int64_t iter, uint32_t attempt, evs_span input,
                             uint64_t need_seq)
{
    orch_path *op = evs__orch_path_get(x, pid, 1);
    evs_action_req *r;

    if (!op) {
        evs__orch_fail_exec(x, -ENOMEM, "tracking a path");
        return;
    }
    r = make_req(x, pid, S, iter, attempt, input, need_seq);
    if (!r) {
        evs__orch_fail_exec(x, -ENOMEM, "making an action request");
        return;
    }
    op->req = r;
    r->next = x->waiting;
    x->waiting = r;
}

void evs__drive_redispatch(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           int64_t iter, const evs_step_state *st)
{
    evs__jbuf in = {.alloc = x->o->alloc}, key = {.alloc = x->o->alloc},
              d = {.alloc = x->o->alloc};
    uint32_t attempt = st->attempts;
    uint64_t need = st->started_seq;

    /* Copied first: recording an event may move the state's memory. */
    evs__jb_raw(&in, st->input.ptr, st->input.len);
    step_key(x, &key, pid, S, iter);
    if (in.err || key.err) {
        evs__orch_fail_exec(x, -ENOMEM, "re-dispatching a step");
        goto out;
    }
    /* Started before this runner took the history over: the dispatch of
     * its previous owner may have run, so this one is recorded, and the
     * action runs once that is durable. */
    if (x->taking_over || (x->takeover_seq && need <= x->from_seq)) {
        if (evs__orch_note_takeover(x) != 0)
            goto out;
        evs__redispatch_data(&d, attempt, iter, (evs_span){key.p, key.len},
                             x->takeover_seq);
        if (evs__orch_emit(x, NULL, EVS_EV_STEP_REDISPATCHED, pid,
                           evs_span_cstr(S->name), &d, &need) != 0)
            goto out;
        char path[160];

        snprintf(path, sizeof(path), "%.*s", (int)pid.len, pid.ptr);
        evs__orch_logf(x->o, EVS_LOG_WARN,
                       EVS_LOG_FIELDS(.execution = x->id, .path = path,
                                      .step = S->name, .sequence = need),
                       "attempt %u was in flight when its runner stopped: "
                       "dispatched again (key %.*s)",
                       attempt, (int)key.len, key.p);
    }
    evs__drive_queue_action(x, pid, S, iter, attempt,
                            (evs_span){in.p, in.len}, need);
out:
    evs__jb_free(&in);
    evs__jb_free(&key);
    evs__jb_free(&d);
}

void evs__drive_arm(orch_exec *x, evs_span pid, timer_kind k, evs_span id,
                    int64_t due)
{
    orch_path *op = evs__orch_path_get(x, pid, 1);
    orch_timer *t;

    if (!op) {
        evs__orch_fail_exec(x, -ENOMEM, "tracking a path");
        return;
    }
    t = evs__orch_timer_arm(x, k, pid, id, due);
    if (!t) {
        evs__orch_fail_exec(x, -ENOMEM, "arming a timer");
        return;
    }
    if (k == TK_WAIT_TIMEOUT)
        op->wait_timer = t;
    else
        op->timer = t;
}

/* A version step: the recorded decision, else the newest version. */
static void decide_version(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           int64_t iter)
{
    int64_t v;
    char out[24];
    int rc = evs__orch_version(x, pid, evs_span_cstr(S->change_id),
                               S->version_min, S->version_max, &v);

    if (rc != 0)
        return; /* the execution was given up */
    snprintf(out, sizeof(out), "%lld", (long long)v);
    evs__drive_complete_step(x, pid, S, iter, evs_span_cstr(out));
}

/* The kinds that settle at once from the state: a join checks its
 * paths, an end ends its path, a version decides, a continue_as_new
 * makes the successor. */
void evs__drive_settle_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                            int64_t iter, uint32_t attempt)
{
    switch (S->kind) {
    case EVS_WF_JOIN: evs__drive_check_join(x, pid, S, iter, attempt); break;
    case EVS_WF_END:
        evs__drive_complete_step(x, pid, S, iter, (evs_span){0});
        evs__orch_emit(x, NULL, EVS_EV_PATH_COMPLETED, pid, (evs_span){0}, NULL,
                       NULL);
        break;
    case EVS_WF_VERSION: decide_version(x, pid, S, iter); break;
    case EVS_WF_CONTINUE:
        evs__orch_continue_step(x, pid, S, iter, attempt,
                                evs__drive_step_failure);
        break;
    default:
        /* Callers pass only the kinds above. */
        assert(!"a step kind that does not settle at once");
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
    evs__jbuf d = {.alloc = x->o->alloc};
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
        evs_error_info e;
        evs__drive_rctx_init(&r, x, pid);
        r.c.item = item;
        r.c.index = iter;
        if (evs_wf_render(&r.c, S->params, x->o->alloc, &input, &in_len, &e) !=
            0) {
            snprintf(why, sizeof(why), "params: %.200s", e.msg);
            bad = 1;
        }
    } else if (S->kind == EVS_WF_SLEEP) {
        if ((due = evs__drive_sleep_due(x, pid, S, why, sizeof(why))) < 0) {
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
    if (evs__orch_emit(x, NULL, EVS_EV_STEP_STARTED, pid,
                       evs_span_cstr(S->name), &d, &seq) != 0)
        goto out;
    if (bad) {
        evs__drive_step_failure(x, pid, S, iter, attempt, bad_type,
                                evs_span_cstr(why), 0);
        goto out;
    }
    switch (S->kind) {
    case EVS_WF_ACTION:
        evs__drive_queue_action(x, pid, S, iter, attempt,
                                (evs_span){input, in_len}, seq);
        break;
    case EVS_WF_SLEEP: {
        evs__jbuf t = {.alloc = x->o->alloc};
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
        if (!t.err && evs__orch_emit(x, NULL, EVS_EV_TIMER_STARTED, pid,
                                     evs_span_cstr(S->name), &d, NULL) == 0)
            evs__drive_arm(x, pid, TK_SLEEP, (evs_span){t.p, t.len}, due);
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
        if (evs__orch_emit(x, NULL, EVS_EV_WAIT_STARTED, pid,
                           evs_span_cstr(S->name), &d, NULL) != 0)
            break;
        if (!evs__drive_try_consume(x, pid, S, iter) && S->timeout_ms > 0)
            evs__drive_arm(x, pid, TK_WAIT_TIMEOUT, (evs_span){0}, due);
        break;
    case EVS_WF_JOIN:
    case EVS_WF_END:
    case EVS_WF_VERSION:
    case EVS_WF_CONTINUE:
        evs__drive_settle_step(x, pid, S, iter, attempt);
        break;
    }
out:
    evs__free(x->o->alloc, input);
    evs__jb_free(&d);
}

void evs__drive_enter_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           uint32_t attempt, int64_t iter)
{
    const evs_step_state *st;
    const evs_each_state *e;
    char *list = NULL, why[256];
    size_t len = 0;
    int64_t n = -1;

    if (!S) {
        evs__orch_fail_exec(x, EVS_EPARSE, "an edge names no step");
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
        evs__orch_wrap(x, pid, S);
        return;
    }
    if (!S->each.len) {
        start_step(x, pid, S, -1, -1, (evs_span){0}, attempt, NULL, NULL);
        return;
    }
    if (iter < 0)
        iter = 0;
    n = evs__drive_each_list(x, pid, S, &list, &len, why, sizeof(why));
    if (n < 0) {
        /* Recorded as a failed first iteration: the reason is kept. */
        start_step(x, pid, S, iter, 0, (evs_span){0}, attempt,
                   n == -2 ? "bad_input" : "template", why);
    } else if (iter >= n) {
        evs__drive_advance(x, pid, S); /* an empty list, or every item done */
    } else {
        start_step(x, pid, S, iter, n, evs__drive_each_item(list, len, iter),
                   attempt, NULL, NULL);
    }
    evs__free(x->o->alloc, list);
}

/* ---------------------------------------------------------------- */
/* evs__drive                                                            */
/* ---------------------------------------------------------------- */
