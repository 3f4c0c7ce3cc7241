/*
 * drive_join.c: what a path waits for: the event of a wait_event step
 * (buffered signals, taken oldest first), its pending timers and waits,
 * and the paths a join waits for, judged by the join's mode (all, any,
 * race), whose losers are cancelled.
 */
#include "drive_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A wait_event step: takes the oldest buffered event of its type. */
int evs__drive_try_consume(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           int64_t iter)
{
    const evs_replay *rp = x->rp;
    orch_path *op;
    evs__jbuf d = {.alloc = x->o->alloc};
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
    if ((op = evs__orch_path_get(x, pid, 0)) && op->wait_timer) {
        evs__orch_timer_cancel(op->wait_timer);
        op->wait_timer = NULL;
    }
    /* The payload's bytes move when the state grows: copy them first. */
    EVS__JB_LIT(&d, "{\"signal_seq\":");
    evs__jb_int(&d, (int64_t)seq);
    EVS__JB_LIT(&d, ",\"timed_out\":false}");
    {
        evs__jbuf out = {.alloc = x->o->alloc};
        evs__jb_json(&out, payload);
        if (evs__orch_emit(x, NULL, EVS_EV_WAIT_ENDED, pid,
                           evs_span_cstr(S->name), &d, NULL) == 0)
            evs__drive_complete_step(x, pid, S, iter,
                                     (evs_span){out.p, out.len});
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
    return evs_replay_find_path(
        rp, evs__orch_path_latest(rp, q->id, buf, sizeof(buf)));
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
        snprintf(why, sizeof(why),
                 "join \"%s\" on path \"%.*s\" "
                 "completed with path \"%.*s\"",
                 S->name, (int)pid.len, pid.ptr, (int)win->id.len, win->id.ptr);
    else if (win)
        snprintf(why, sizeof(why),
                 "join \"%s\" on path \"%.*s\" "
                 "failed: path \"%.*s\" failed first",
                 S->name, (int)pid.len, pid.ptr, (int)win->id.len, win->id.ptr);
    else
        snprintf(why, sizeof(why), "join \"%s\" on path \"%.*s\" failed",
                 S->name, (int)pid.len, pid.ptr);
    for (size_t i = 0; i < evs_replay_path_count(rp) && !rc; i++) {
        const evs_path_state *q = joined(rp, pid, S, i, &name);
        if (q && !q->ended_seq)
            rc = evs__drive_cancel_paths(x, evs_replay_path(rp, i)->id,
                                         evs_span_cstr(why));
    }
    return rc;
}

/* The paths `pid` branched that join S waits for, judged by its mode.
 * Returns 1 when it decided (and recorded the step's outcome). */
int evs__drive_check_join(orch_exec *x, evs_span pid, const evs_wf_step *S,
                          int64_t iter, uint32_t attempt)
{
    const evs_replay *rp = x->rp;
    const evs_path_state *win = NULL, *q;
    evs_span name, win_name = {0};
    size_t live = 0, done = 0, nkids = 0;
    evs__jbuf out = {.alloc = x->o->alloc};
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
            evs__jb_json(&out, evs__drive_last_output(rp, q->id));
        }
        decided = done == nkids ? 1 : -1;
    } else if (win && win->status == EVS_PATH_COMPLETED) {
        evs__jb_quote(&out, win_name);
        EVS__JB_LIT(&out, ":");
        evs__jb_json(&out, evs__drive_last_output(rp, win->id));
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
        evs__drive_complete_step(x, pid, S, iter, (evs_span){out.p, out.len});
    } else if (decided < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s join: %zu of %zu paths completed",
                 S->join_mode == EVS_JOIN_ALL   ? "all"
                 : S->join_mode == EVS_JOIN_ANY ? "any"
                                                : "race",
                 done, nkids);
        evs__drive_step_failure(x, pid, S, iter, attempt, "join_failed",
                                evs_span_cstr(msg), 0);
    }
    evs__jb_free(&out);
    return decided != 0;
}

int evs__drive_pending_timer(const evs_replay *rp, evs_span pid, evs_span step,
                             int64_t *due, name_buf *id)
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

const evs_wait_state *evs__drive_pending_wait(const evs_replay *rp,
                                              evs_span pid)
{
    for (size_t i = evs_replay_wait_count(rp); i-- > 0;) {
        const evs_wait_state *w = evs_replay_wait(rp, i);
        if (!w->ended_seq && spans_eq(w->path_id, pid))
            return w;
    }
    return NULL;
}
