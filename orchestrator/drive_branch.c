/*
 * drive_branch.c: how a step ends and where its path goes next: a step's
 * completion or failure (with a retry, or the path's failure, and the
 * execution's), the completion of an `each` as a whole, its edges
 * followed to the next step or branched into new paths, and the
 * cancellation of paths that lost a join or outlived the execution.
 */
#include "drive_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void evs__drive_error_json(evs__jbuf *b, const char *type, evs_span msg,
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

    pid = evs__orch_path_base(pid); /* a branch's loop fails the branch */
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
    orch_path *op = evs__orch_path_get(x, pid, 0);

    if (!op)
        return;
    if (op->req) {
        op->req->stale = 1;
        evs__actions_kill(op->req);
        op->req = NULL;
    }
    if (op->timer) {
        evs__orch_timer_cancel(op->timer);
        op->timer = NULL;
    }
    if (op->wait_timer) {
        evs__orch_timer_cancel(op->wait_timer);
        op->wait_timer = NULL;
    }
}

/* Records the cancellation of every live path of the tree rooted at
 * `root` (of every live path, when root is empty), with an error of type
 * `cancelled` saying why: a path that lost a join, or outlived the
 * execution, must show that it ended and why. Returns 0, or what
 * recording returned. */
int evs__drive_cancel_paths(orch_exec *x, evs_span root, evs_span why)
{
    const evs_replay *rp = x->rp;
    evs__jbuf d = {.alloc = x->o->alloc}, err = {.alloc = x->o->alloc};
    name_buf rb, pb;
    int rc = 0;

    root = nb_set(&rb, root); /* the state's bytes move as it grows */
    evs__drive_error_json(&err, "cancelled", why, 0);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_raw(&d, err.p, err.len);
    EVS__JB_LIT(&d, "}");
    for (size_t i = x->first_live; i < evs_replay_path_count(rp) && !rc; i++) {
        const evs_path_state *p = evs_replay_path(rp, i);
        evs_span pid;
        if (p->ended_seq || (root.len && !descends(rp, p->id, root)))
            continue;
        pid = nb_set(&pb, p->id);
        stop_path(x, pid);
        rc = evs__orch_emit(x, NULL, EVS_EV_PATH_CANCELLED, pid, (evs_span){0},
                            &d, NULL);
    }
    evs__jb_free(&d);
    evs__jb_free(&err);
    return rc;
}

void evs__drive_fail_path(orch_exec *x, evs_span pid, evs_span error)
{
    evs__jbuf d = {.alloc = x->o->alloc};
    char why[NAME_MAX_ + 64];
    name_buf pb;

    pid = nb_set(&pb, pid);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_json(&d, error);
    EVS__JB_LIT(&d, "}");
    if (evs__orch_emit(x, NULL, EVS_EV_PATH_FAILED, pid, (evs_span){0}, &d,
                       NULL) != 0 ||
        failure_tolerated(x, pid))
        goto out;
    /* The execution ends: nothing of it may stay live. */
    snprintf(why, sizeof(why), "the execution failed: path \"%s\" failed",
             pb.s);
    if (evs__drive_cancel_paths(x, (evs_span){0}, evs_span_cstr(why)) == 0)
        evs__orch_emit(x, NULL, EVS_EV_EXECUTION_FAILED, pid, (evs_span){0}, &d,
                       NULL);
out:
    evs__jb_free(&d);
}

/* Records a failed attempt, then a retry or the path's failure. */
void evs__drive_step_failure(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             int64_t iter, uint32_t attempt, const char *type,
                             evs_span msg, int retryable)
{
    evs__jbuf d = {.alloc = x->o->alloc}, err = {.alloc = x->o->alloc};
    int64_t delay, now = evs_now_us();

    evs__drive_error_json(&err, type, msg, retryable);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_raw(&d, err.p, err.len);
    if (iter >= 0) {
        EVS__JB_LIT(&d, ",\"iteration\":");
        evs__jb_int(&d, iter);
    }
    EVS__JB_LIT(&d, "}");
    if (evs__orch_emit(x, NULL, EVS_EV_STEP_FAILED, pid, evs_span_cstr(S->name),
                       &d, NULL) != 0)
        goto out;
    if (evs_wf_retry_allows(&S->retry, attempt, evs_span_cstr(type),
                            retryable)) {
        delay =
            evs_wf_retry_delay_ms(&S->retry, attempt, evs__orch_random(x->o));
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
        evs__orch_emit(x, NULL, EVS_EV_RETRY_SCHEDULED, pid,
                       evs_span_cstr(S->name), &d, NULL);
    } else {
        evs__drive_fail_path(x, pid, (evs_span){err.p, err.len});
    }
out:
    evs__jb_free(&d);
    evs__jb_free(&err);
}

void evs__drive_complete_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                              int64_t iter, evs_span output)
{
    evs__jbuf d = {.alloc = x->o->alloc};

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
    evs__orch_emit(x, NULL, EVS_EV_STEP_COMPLETED, pid, evs_span_cstr(S->name),
                   &d, NULL);
    evs__jb_free(&d);
}

/* ---------------------------------------------------------------- */
/* Steps                                                            */
/* ---------------------------------------------------------------- */

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

/* An `each` step whose iterations are all done completes as a whole,
 * with the array of their outputs (stored, when it has `store`), once:
 * after a crash between this and the edges, it is found completed. */
static int complete_each(orch_exec *x, evs_span pid, const evs_wf_step *S)
{
    evs_span name = evs_span_cstr(S->name);
    const evs_each_state *e = evs_replay_find_each(x->rp, pid, name);
    evs__jbuf d = {.alloc = x->o->alloc};
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
    rc = evs__orch_emit(x, NULL, EVS_EV_EACH_COMPLETED, pid, name, &d, NULL);
    evs__jb_free(&d);
    return rc;
}

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
    evs__jbuf *ids = evs__calloc(x->o->alloc, nm * sizeof(*ids));
    evs__jbuf d = {.alloc = x->o->alloc};
    char *fresh = evs__calloc(x->o->alloc, nm);
    size_t n = 0;
    int rc = -1;

    if (!ids || !fresh) {
        evs__orch_fail_exec(x, -ENOMEM, "branching");
        goto out;
    }
    EVS__JB_LIT(&d, "{\"new_paths\":[");
    for (size_t i = 0; i < nm; i++) {
        const evs_path_state *q;
        ids[i].alloc = x->o->alloc;
        evs__jb_raw(&ids[i], pid.ptr, pid.len);
        EVS__JB_LIT(&ids[i], ".");
        evs__jb_str(&ids[i], m[i]->path ? m[i]->path : m[i]->to);
        if (ids[i].err) {
            evs__orch_fail_exec(x, -ENOMEM, "branching");
            goto out;
        }
        q = evs_replay_find_path(x->rp, (evs_span){ids[i].p, ids[i].len});
        if (q && q->started_seq < since) {
            evs__jbuf e = {.alloc = x->o->alloc};
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "step \"%s\" branches path \"%.*s\", which an earlier "
                     "branch of this path made",
                     S->name, (int)ids[i].len, ids[i].p);
            evs__drive_error_json(&e, "branch_conflict", evs_span_cstr(msg), 0);
            evs__drive_fail_path(x, pid, (evs_span){e.p, e.len});
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
    if (n && evs__orch_emit(x, NULL, EVS_EV_PATH_BRANCHED, pid,
                            evs_span_cstr(S->name), &d, NULL) != 0)
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
        evs__orch_emit(x, NULL, EVS_EV_PATH_STARTED,
                       (evs_span){ids[i].p, ids[i].len}, (evs_span){0}, &d,
                       NULL);
    }
    rc = x->broken ? -1 : 0;
out:
    for (size_t i = 0; ids && i < nm; i++)
        evs__jb_free(&ids[i]);
    evs__free(x->o->alloc, ids);
    evs__free(x->o->alloc, fresh);
    evs__jb_free(&d);
    return rc;
}

/* Follows S's edges from pid, which has finished it. */
void evs__drive_advance(orch_exec *x, evs_span pid, const evs_wf_step *S)
{
    const evs_wf_edge **m = NULL;
    size_t nm = 0;
    rctx r;

    if (S->each.len && complete_each(x, pid, S) != 0)
        goto out;
    if (S->n_next && !(m = evs__malloc(x->o->alloc, S->n_next * sizeof(*m)))) {
        evs__orch_fail_exec(x, -ENOMEM, "following edges");
        goto out;
    }
    evs__drive_rctx_init(&r, x, pid);
    for (size_t i = 0; i < S->n_next; i++) {
        int ok = 1;
        if (S->next[i].when && evs_wf_cond_eval(S->next[i].when, &r.c, &ok))
            ok = 0;
        if (ok)
            m[nm++] = &S->next[i];
    }
    if (nm == 1 && !m[0]->path) {
        const evs_wf_step *T =
            evs_wf_find_step(x->def, evs_span_cstr(m[0]->to));
        if (m[0]->max_passes && T &&
            evs__orch_loop_passes(x, pid, S, T) >= m[0]->max_passes) {
            evs__jbuf e = {.alloc = x->o->alloc};
            char msg[NAME_MAX_ * 2 + 96];
            snprintf(msg, sizeof(msg),
                     "the loop from \"%s\" back to \"%s\" has made its "
                     "%lld passes (max_passes)",
                     S->name, T->name, (long long)m[0]->max_passes);
            evs__drive_error_json(&e, "loop_bound", evs_span_cstr(msg), 0);
            evs__drive_fail_path(x, pid, (evs_span){e.p, e.len});
            evs__jb_free(&e);
            goto out;
        }
        x->bounded_move = m[0]->max_passes != 0;
        evs__drive_enter_step(x, pid, T, 1, -1);
        x->bounded_move = 0;
    } else if (nm == 0) {
        evs__orch_emit(x, NULL, EVS_EV_PATH_COMPLETED, pid, (evs_span){0}, NULL,
                       NULL);
    } else if (branch(x, pid, S, m, nm) == 0) {
        if (S->then)
            evs__drive_enter_step(
                x, pid, evs_wf_find_step(x->def, evs_span_cstr(S->then)), 1,
                -1);
        else
            evs__orch_emit(x, NULL, EVS_EV_PATH_COMPLETED, pid, (evs_span){0},
                           NULL, NULL);
    }
out:
    evs__free(x->o->alloc, m);
}
