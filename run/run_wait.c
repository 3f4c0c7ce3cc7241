/*
 * run_wait.c: durable sleeps, waits for external events, version
 * decisions (patched), and the end of a run.
 */
#include "run_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Begins a command that is not a step the host runs: takes the
 * requests, names it and checks it against the journal. */
static int begin_command(evs_run *r, const char *name, const char *kind,
                         evs_error_info *err)
{
    int rc = evs__run_idle(r, err);

    return rc ? rc : evs__run_command(r, name, kind, r->step, err);
}

/* step_started of a sleep or a wait: one attempt, its kind, its input. */
static int start_command(evs_run *r, const char *kind, const evs__jbuf *input,
                         evs_error_info *err)
{
    evs__jbuf d = {.alloc = r->c->alloc};
    int rc;

    EVS__JB_LIT(&d, "{\"attempt\":1,\"input\":");
    evs__run_jb_cat(&d, input);
    EVS__JB_LIT(&d, ",\"kind\":\"");
    evs__jb_str(&d, kind);
    EVS__JB_LIT(&d, "\"}");
    rc = evs__run_emit(r, NULL, EVS_EV_STEP_STARTED, r->step, &d, err);
    evs__jb_free(&d);
    return rc;
}

static int complete_command(evs_run *r, evs_span output, evs_error_info *err)
{
    evs__jbuf d = {.alloc = r->c->alloc};
    int rc;

    EVS__JB_LIT(&d, "{\"output\":");
    evs__jb_json(&d, output);
    EVS__JB_LIT(&d, "}");
    if ((rc = evs__run_emit(r, NULL, EVS_EV_STEP_COMPLETED, r->step, &d,
                            err)) == 0 &&
        (rc = evs__run_flush(r, err)) == 0)
        rc = evs__run_set(&r->result, output) ? -ENOMEM : 0;
    evs__jb_free(&d);
    return rc;
}

static const evs_timer_state *pending_timer(const evs_run *r, evs_span tid)
{
    for (size_t i = evs_replay_timer_count(r->c->rp); i-- > 0;) {
        const evs_timer_state *t = evs_replay_timer(r->c->rp, i);
        if (!t->fired_seq && !t->cancelled && evs__span_eq(t->timer_id, tid))
            return t;
    }
    return NULL;
}

static int sleep_until(evs_run *r, int64_t at_us, evs_error_info *err)
{
    const evs_step_state *sp;
    const evs_timer_state *t;
    evs__jbuf d = {.alloc = r->c->alloc}, tid = {.alloc = r->c->alloc};
    int64_t due = at_us;
    int rc;

    if ((rc = begin_command(r, "sleep", RUN_KIND_SLEEP, err)) != 0)
        return rc;
    evs__jb_str(&tid, r->path);
    EVS__JB_LIT(&tid, "/");
    evs__jb_str(&tid, r->step);
    if (tid.err) {
        rc = -ENOMEM;
        goto out;
    }
    sp = evs__run_find_step(r, r->step);
    if (sp &&
        (sp->status == EVS_STEP_COMPLETED || sp->status == EVS_STEP_SKIPPED)) {
        rc = evs__run_set(&r->result, sp->output) ? -ENOMEM : 0;
        goto out;
    }
    if (sp && sp->status != EVS_STEP_RUNNING) {
        rc = evs__run_fail(r, err, -ECANCELED, "step",
                           "run %s: sleep \"%s\" is %s", r->c->id, r->step,
                           evs_step_status_name(sp->status));
        goto out;
    }
    if (!sp) {
        EVS__JB_LIT(&d, "{\"until\":");
        evs__jb_time(&d, due);
        EVS__JB_LIT(&d, "}");
        if ((rc = start_command(r, RUN_KIND_SLEEP, &d, err)) != 0)
            goto out;
        d.len = 0;
        EVS__JB_LIT(&d, "{\"timer_id\":");
        evs__jb_quote(&d, (evs_span){tid.p, tid.len});
        EVS__JB_LIT(&d, ",\"fire_at\":");
        evs__jb_time(&d, due);
        EVS__JB_LIT(&d, "}");
        if ((rc = evs__run_emit(r, NULL, EVS_EV_TIMER_STARTED, r->step, &d,
                                err)) != 0 ||
            (rc = evs__run_flush(r, err)) != 0)
            goto out;
    } else if ((t = pending_timer(r, (evs_span){tid.p, tid.len})) != NULL) {
        due = t->fire_at_us;
    }
    if ((rc = evs__run_wait_until(r, due, err)) != 0)
        goto out;
    if (pending_timer(r, (evs_span){tid.p, tid.len})) {
        d.len = 0;
        EVS__JB_LIT(&d, "{\"timer_id\":");
        evs__jb_quote(&d, (evs_span){tid.p, tid.len});
        EVS__JB_LIT(&d, "}");
        if ((rc = evs__run_emit(r, NULL, EVS_EV_TIMER_FIRED, r->step, &d,
                                err)) != 0)
            goto out;
    }
    rc = complete_command(r, (evs_span){0}, err);
out:
    evs__jb_free(&d);
    evs__jb_free(&tid);
    if (rc == -ENOMEM)
        evs__run_fail(r, err, rc, "memory", "out of memory");
    return rc;
}

int evs_run_sleep_until(evs_run *r, int64_t at_us, evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = sleep_until(r, at_us, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

int evs_run_sleep(evs_run *r, int64_t ms, evs_error_info *err)
{
    if (ms < 0)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "a sleep cannot be negative");
    return evs_run_sleep_until(r, evs_now_us() + ms * 1000, err);
}

/* The oldest buffered signal named `event`, or NULL. */
static const evs_signal_state *buffered(const evs_run *r, const char *event)
{
    for (size_t i = 0; i < evs_replay_signal_count(r->c->rp); i++) {
        const evs_signal_state *s = evs_replay_signal(r->c->rp, i);
        if (!s->consumed_seq && evs__span_eq_cstr(s->name, event))
            return s;
    }
    return NULL;
}

static const evs_wait_state *pending_wait(const evs_run *r)
{
    for (size_t i = evs_replay_wait_count(r->c->rp); i-- > 0;) {
        const evs_wait_state *w = evs_replay_wait(r->c->rp, i);
        if (!w->ended_seq && evs__span_eq_cstr(w->path_id, r->path) &&
            evs__span_eq_cstr(w->step, r->step))
            return w;
    }
    return NULL;
}

static int wait_event(evs_run *r, const char *event, int64_t timeout_ms,
                      evs_error_info *err)
{
    const evs_step_state *sp;
    const evs_signal_state *sig;
    const evs_wait_state *w;
    evs__jbuf d = {.alloc = r->c->alloc}, payload = {.alloc = r->c->alloc};
    int64_t timeout_at = 0, now;
    int rc;

    if (timeout_ms < 0)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "a timeout cannot be negative");
    if ((rc = begin_command(r, event, RUN_KIND_WAIT, err)) != 0)
        return rc;
    sp = evs__run_find_step(r, r->step);
    if (sp && sp->status == EVS_STEP_COMPLETED) {
        rc = evs__run_set(&r->result, sp->output) ? -ENOMEM : 0;
        goto out;
    }
    if (sp && sp->status == EVS_STEP_FAILED) {
        rc = evs__run_set(&r->error, sp->error)
                 ? -ENOMEM
                 : evs__run_fail(r, err, -ETIMEDOUT, "timeout",
                                 "run %s: the wait for \"%s\" timed out",
                                 r->c->id, event);
        goto out;
    }
    if (sp && sp->status != EVS_STEP_RUNNING) {
        rc = evs__run_fail(r, err, -ECANCELED, "step",
                           "run %s: wait \"%s\" is %s", r->c->id, r->step,
                           evs_step_status_name(sp->status));
        goto out;
    }
    if (!sp) {
        if (timeout_ms)
            timeout_at = evs_now_us() + timeout_ms * 1000;
        EVS__JB_LIT(&d, "{\"event\":");
        evs__jb_quote(&d, evs_span_cstr(event));
        EVS__JB_LIT(&d, "}");
        if ((rc = start_command(r, RUN_KIND_WAIT, &d, err)) != 0)
            goto out;
        d.len = 0;
        EVS__JB_LIT(&d, "{\"signal\":");
        evs__jb_quote(&d, evs_span_cstr(event));
        if (timeout_at) {
            EVS__JB_LIT(&d, ",\"timeout_at\":");
            evs__jb_time(&d, timeout_at);
        }
        EVS__JB_LIT(&d, "}");
        if ((rc = evs__run_emit(r, NULL, EVS_EV_WAIT_STARTED, r->step, &d,
                                err)) != 0 ||
            (rc = evs__run_flush(r, err)) != 0)
            goto out;
    } else if ((w = pending_wait(r)) != NULL) {
        timeout_at = w->timeout_at_us;
    }
    for (;;) {
        if ((rc = evs__run_gate(r, err)) != 0)
            goto out;
        if ((sig = buffered(r, event)) != NULL) {
            /* The payload moves when the state grows: copy it first. */
            payload.len = 0;
            evs__jb_json(&payload, sig->payload);
            if (payload.err) {
                rc = -ENOMEM; /* nothing recorded: the wait goes on */
                goto out;
            }
            d.len = 0;
            EVS__JB_LIT(&d, "{\"signal_seq\":");
            evs__jb_int(&d, (int64_t)sig->received_seq);
            EVS__JB_LIT(&d, ",\"timed_out\":false}");
            if ((rc = evs__run_emit(r, NULL, EVS_EV_WAIT_ENDED, r->step, &d,
                                    err)) == 0)
                rc = complete_command(r, (evs_span){payload.p, payload.len},
                                      err);
            goto out;
        }
        now = evs_now_us();
        if (timeout_at && now >= timeout_at) {
            d.len = 0;
            EVS__JB_LIT(&d, "{\"timed_out\":true}");
            if ((rc = evs__run_emit(r, NULL, EVS_EV_WAIT_ENDED, r->step, &d,
                                    err)) != 0)
                goto out;
            d.len = 0;
            EVS__JB_LIT(&d, "{\"error\":{\"type\":\"timeout\",\"message\":"
                            "\"no event came in time\","
                            "\"retryable\":false}}");
            if ((rc = evs__run_emit(r, NULL, EVS_EV_STEP_FAILED, r->step, &d,
                                    err)) != 0 ||
                (rc = evs__run_flush(r, err)) != 0)
                goto out;
            evs__run_set(&r->error, (evs_span){d.p + 9, d.len - 10});
            rc = evs__run_fail(r, err, -ETIMEDOUT, "timeout",
                               "run %s: the wait for \"%s\" timed out",
                               r->c->id, event);
            goto out;
        }
        if ((rc = evs__run_wait_until(r,
                                      timeout_at && timeout_at - now <
                                                        r->c->poll_ms * 1000
                                          ? timeout_at
                                          : now + r->c->poll_ms * 1000,
                                      err)) != 0)
            goto out;
    }
out:
    evs__jb_free(&d);
    evs__jb_free(&payload);
    if (rc == -ENOMEM)
        evs__run_fail(r, err, rc, "memory", "out of memory");
    return rc;
}

int evs_run_wait_event(evs_run *r, const char *event, int64_t timeout_ms,
                       evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = wait_event(r, event, timeout_ms, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

static int patched(evs_run *r, const char *change_id, evs_error_info *err)
{
    const evs_version_state *v;
    evs__jbuf d = {.alloc = r->c->alloc};
    int rc;

    if (err)
        evs_error_info_clear(err);
    if ((rc = evs__run_usable(r, err)) != 0)
        return rc;
    if (!evs__run_name_ok(change_id))
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "a change id is 1 to %d bytes of "
                             "[A-Za-z0-9_.:-]",
                             RUN_NAME_MAX);
    if ((v = evs_replay_find_version(r->c->rp, evs_span_cstr(change_id))))
        return v->version >= 1;
    /* The history went past this point without asking: old code. */
    if (evs__run_next_cmd(r))
        return 0;
    if (evs_replay_exec(r->c->rp)->status >= EVS_STATUS_COMPLETED)
        return evs__run_fail(r, err, EVS_EFINISHED, "status",
                             "run %s has ended", r->c->id);
    /* Made durable with the next append: a crash before it leaves no
     * decision, and the re-run decides the same. */
    EVS__JB_LIT(&d, "{\"change_id\":");
    evs__jb_quote(&d, evs_span_cstr(change_id));
    EVS__JB_LIT(&d, ",\"version\":1,\"min\":0,\"max\":1}");
    rc = evs__run_emit(r, NULL, EVS_EV_VERSION_DECISION, "", &d, err);
    evs__jb_free(&d);
    return rc ? rc : 1;
}

int evs_run_patched(evs_run *r, const char *change_id, evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = patched(r, change_id, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Ending                                                           */
/* ---------------------------------------------------------------- */

static int end_run(evs_run *r, int ok, const char *output, const char *type,
                   const char *message, evs_error_info *err)
{
    evs__jbuf d = {.alloc = r->c->alloc}, v = {.alloc = r->c->alloc};
    int rc;

    if ((rc = evs__run_idle(r, err)) != 0)
        return rc;
    if (r->parent)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "run %s: a branch ends with evs_run_branch_end",
                             r->c->id);
    if (evs__run_next_cmd(r))
        return evs__run_nondet(r, evs__run_next_cmd(r), "ends the run", err);
    if (ok) {
        if ((rc = evs__run_check_json(r, output, "the run's output", &v, err)))
            goto out;
        EVS__JB_LIT(&d, "{\"outputs\":");
        evs__run_jb_cat(&d, &v);
        EVS__JB_LIT(&d, "}");
        if ((rc = evs__run_cancel_paths(r, "the run completed", 1, err)) == 0 &&
            (rc = evs__run_emit(r, NULL, EVS_EV_PATH_COMPLETED, "", NULL,
                                err)) == 0)
            rc =
                evs__run_emit(r, NULL, EVS_EV_EXECUTION_COMPLETED, "", &d, err);
    } else {
        EVS__JB_LIT(&v, "{\"type\":");
        evs__jb_quote(&v, evs_span_cstr(type && *type ? type : "error"));
        EVS__JB_LIT(&v, ",\"message\":");
        evs__jb_quote(&v, evs_span_cstr(message ? message : ""));
        EVS__JB_LIT(&v, ",\"retryable\":false}");
        EVS__JB_LIT(&d, "{\"error\":");
        evs__run_jb_cat(&d, &v);
        EVS__JB_LIT(&d, "}");
        if ((rc = evs__run_cancel_paths(r, "the run failed", 1, err)) == 0 &&
            (rc = evs__run_emit(r, NULL, EVS_EV_PATH_FAILED, "", &d, err)) == 0)
            rc = evs__run_emit(r, NULL, EVS_EV_EXECUTION_FAILED, "", &d, err);
    }
    if (rc == 0 && (rc = evs__run_flush(r, err)) == 0) {
        evs__run_save_snapshot(r);
        if (evs__run_set(ok ? &r->output : &r->error, (evs_span){v.p, v.len}))
            rc = -ENOMEM;
    }
out:
    evs__jb_free(&d);
    evs__jb_free(&v);
    return rc;
}

int evs_run_complete(evs_run *r, const char *output, evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = end_run(r, 1, output, NULL, NULL, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

int evs_run_fail(evs_run *r, const char *type, const char *message,
                 evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = end_run(r, 0, NULL, type, message, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}
