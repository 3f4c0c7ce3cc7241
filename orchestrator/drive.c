/*
 * drive.c: the step machine's driver.
 *
 * What a path does next is decided from the replayed state alone, so the
 * same code runs a fresh execution and one recovered after a crash:
 * evs__drive() looks at every live path and, by the status of its
 * current step, starts it, re-runs an attempt that was started and never
 * finished, arms the timer it waits on, checks its join, or follows the
 * step's edges. Every decision is recorded (evs__orch_emit) before
 * anything acts on it, and evs__drive() repeats until a pass changes
 * nothing. The rest of the step machine is in drive_*.c (drive_int.h).
 *
 * A step is identified by (path, name, iteration), as in the history
 * rules (FORMAT.md §6.1), so a step runs once per path: `each` is the way
 * to repeat one.
 */
#include "drive_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    op = evs__orch_path_get(x, pid, 1);
    if (!op) {
        evs__orch_fail_exec(x, -ENOMEM, "tracking a path");
        return 0;
    }
    if (op->req || op->timer)
        return 0;
    S = evs_wf_find_step(x->def, cur);
    if (!S) {
        char msg[NAME_MAX_ + 64];
        snprintf(msg, sizeof(msg), "the definition has no step \"%s\"",
                 cur.ptr);
        evs__orch_fail_exec(x, EVS_EPARSE, msg);
        return 0;
    }
    if (S->each.len) {
        const evs_each_state *e = evs_replay_find_each(rp, pid, cur);
        iter = e ? e->done : 0;
        count = e ? e->count : -1;
        if (e && e->ended_seq) {
            evs__drive_advance(x, pid, S); /* its completion is recorded */
            goto done;
        }
        if (e && count >= 0 && iter >= count) {
            st = evs_replay_find_step(rp, pid, cur, iter - 1);
            if (!st || step_done(st))
                evs__drive_advance(x, pid, S);
            goto done;
        }
    }
    st = evs_replay_find_step(rp, pid, cur, iter);
    if (!st) {
        /* A path made by a branch, or the first step of the run. */
        if (iter > 0 || !S->each.len)
            evs__drive_enter_step(x, pid, S, 1, iter);
        else
            evs__drive_enter_step(x, pid, S, 1, 0);
        goto done;
    }
    switch (st->status) {
    case EVS_STEP_RUNNING:
        switch (S->kind) {
        case EVS_WF_ACTION:
            /* Started and never finished: run the same attempt again,
             * with the same input and idempotency key. */
            evs__drive_redispatch(x, pid, S, iter, st);
            break;
        case EVS_WF_SLEEP: {
            name_buf tid;
            int64_t due;
            if (evs__drive_pending_timer(rp, pid, cur, &due, &tid))
                evs__drive_arm(x, pid, TK_SLEEP, (evs_span){tid.s, tid.len},
                               due);
            else
                evs__drive_complete_step(x, pid, S, iter, (evs_span){0});
            break;
        }
        case EVS_WF_WAIT_EVENT: {
            const evs_wait_state *w = evs__drive_pending_wait(rp, pid);
            int64_t due = w ? w->timeout_at_us : 0;
            if (!w)
                break;
            if (!evs__drive_try_consume(x, pid, S, iter) && due &&
                !op->wait_timer)
                evs__drive_arm(x, pid, TK_WAIT_TIMEOUT, (evs_span){0}, due);
            break;
        }
        case EVS_WF_JOIN:
        case EVS_WF_END:
        case EVS_WF_VERSION:
        case EVS_WF_CONTINUE:
            /* Decided from the state alone, so deciding again after a
             * crash gives the same (a successor made before the crash is
             * found again, not made twice). */
            evs__drive_settle_step(x, pid, S, iter, st->attempts);
            break;
        }
        break;
    case EVS_STEP_RETRYING:
        evs__drive_arm(x, pid, TK_RETRY, (evs_span){0}, st->retry_at_us);
        break;
    case EVS_STEP_FAILED:
        /* Its path fails with it (recorded together, unless the history
         * was cut between them). */
        {
            evs__jbuf e = {.alloc = x->o->alloc};
            evs__jb_json(&e, st->error);
            evs__drive_fail_path(x, pid, (evs_span){e.p, e.len});
            evs__jb_free(&e);
        }
        break;
    case EVS_STEP_CANCELLED: break; /* its path has ended: not driven */
    case EVS_STEP_COMPLETED:
    case EVS_STEP_SKIPPED:
        if (iter >= 0)
            break; /* counted in its each's progress above */
        evs__drive_advance(x, pid, S);
        break;
    }
done:
    return evs_replay_exec(rp)->last_seq != seq0;
}

static void exec_outputs(orch_exec *x)
{
    char latest[NAME_MAX_];
    /* The root path, or the continuation its loop went on in. */
    evs_span main_id = evs__orch_path_latest(x->rp,
                                             evs_replay_path_count(x->rp)
                                                 ? evs_replay_path(x->rp, 0)->id
                                                 : evs_span_cstr("main"),
                                             latest, sizeof(latest));
    evs__jbuf d = {.alloc = x->o->alloc};
    char *out = NULL;
    size_t n = 0;

    if (x->def->outputs.len) {
        rctx r;
        evs_error_info e;
        name_buf pb;
        int rc;
        evs__drive_rctx_init(&r, x, nb_set(&pb, main_id));
        rc = evs_wf_render(&r.c, x->def->outputs, x->o->alloc, &out, &n, &e);
        if (rc != 0) {
            evs__jbuf err = {.alloc = x->o->alloc};
            evs__drive_error_json(&err, "template", evs_span_cstr(e.msg), 0);
            EVS__JB_LIT(&d, "{\"error\":");
            evs__jb_raw(&d, err.p, err.len);
            EVS__JB_LIT(&d, "}");
            evs__jb_free(&err);
            evs__orch_emit(x, NULL, EVS_EV_EXECUTION_FAILED, main_id,
                           (evs_span){0}, &d, NULL);
            evs__jb_free(&d);
            return;
        }
        EVS__JB_LIT(&d, "{\"outputs\":");
        evs__jb_raw(&d, out, n);
        EVS__JB_LIT(&d, "}");
        evs__free(x->o->alloc, out);
    } else {
        EVS__JB_LIT(&d, "{\"outputs\":");
        evs__jb_json(&d, evs__drive_last_output(x->rp, main_id));
        EVS__JB_LIT(&d, "}");
    }
    evs__orch_emit(x, NULL, EVS_EV_EXECUTION_COMPLETED, main_id, (evs_span){0},
                   &d, NULL);
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
        evs__free(x->o->alloc, p->id);
        x->paths[i] = x->paths[--x->npaths];
    }
}

void evs__drive(orch_exec *x)
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
        for (size_t i = x->first_live; i < evs_replay_path_count(x->rp); i++)
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
        evs__orch_kick(x);
    }
}

/* ---------------------------------------------------------------- */
/* Events from outside                                              */
/* ---------------------------------------------------------------- */
