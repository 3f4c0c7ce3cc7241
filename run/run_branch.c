/*
 * run_branch.c: parallel branches and their join. A branch is a path of
 * its own (path_branched on its parent, named by the branch's step name;
 * path_started), on which another thread runs steps while the parent and
 * the other branches go on; a join on the parent waits for some of them
 * by the seed's Task.all/any/race semantics (formats/WORKFLOWS.md §2.4),
 * cancels the losers, and records its outcome as a step of kind "join",
 * whose output maps each awaited branch's name to its last output.
 */
#include "run_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The name of branch b: its path after the parent's "<path>/". */
static const char *branch_name(const evs_run *b)
{
    return b->path + strlen(b->parent->path) + 1;
}

static int branch(evs_run *r, const char *name, evs_run **out,
                  evs_error_info *err)
{
    run_core *c = r->c;
    evs__jbuf d = {.alloc = c->alloc};
    char step[RUN_STEP_MAX + 1], path[EVS_ID_MAX + 2];
    evs_run *b;
    size_t j;
    int rc;

    if ((rc = evs__run_idle(r, err)) != 0)
        return rc;
    if ((rc = evs__run_command(r, name, RUN_KIND_BRANCH, step, err)) != 0)
        return rc;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", r->path, step) >
        EVS_ID_MAX)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "run %s: branch %s/%s: paths nest at most %d "
                             "bytes deep",
                             c->id, r->path, step, EVS_ID_MAX);
    if (!evs_replay_find_path(c->rp, evs_span_cstr(path))) {
        EVS__JB_LIT(&d, "{\"new_paths\":[{\"id\":");
        evs__jb_quote(&d, evs_span_cstr(path));
        EVS__JB_LIT(&d, "}]}");
        rc = evs__run_emit(r, NULL, EVS_EV_PATH_BRANCHED, step, &d, err);
        d.len = 0;
        EVS__JB_LIT(&d, "{\"parent\":");
        evs__jb_quote(&d, evs_span_cstr(r->path));
        EVS__JB_LIT(&d, "}");
        if (rc == 0)
            rc = evs__run_emit_on(r, path, NULL, EVS_EV_PATH_STARTED, "", &d,
                                  err);
        evs__jb_free(&d);
        if (rc != 0)
            return rc;
    }
    if (evs__run_journal(c, evs_span_cstr(path), &j) != 0 ||
        !(b = evs__run_handle_new(c, r, path)))
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    b->journal = j;
    *out = b;
    return 0;
}

int evs_run_branch(evs_run *r, const char *name, evs_run **out,
                   evs_error_info *err)
{
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    pthread_mutex_lock(&r->c->mu);
    rc = branch(r, name, out, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

/* A branch's own end: completed (fail 0) or failed. Once its path has
 * ended (replayed, or cancelled meanwhile) nothing is recorded. */
static int branch_end(evs_run *b, int fail, const char *type,
                      const char *message, evs_error_info *err)
{
    const evs_path_state *p;
    evs__jbuf d = {.alloc = b->c->alloc};
    int rc;

    if ((rc = evs__run_idle(b, err)) != 0)
        return rc;
    if (!b->parent)
        return evs__run_fail(b, err, -EINVAL, "argument",
                             "run %s: the root path ends with "
                             "evs_run_complete or evs_run_fail",
                             b->c->id);
    if (evs__run_next_cmd(b))
        return evs__run_nondet(b, evs__run_next_cmd(b), "ends the branch", err);
    p = evs_replay_find_path(b->c->rp, evs_span_cstr(b->path));
    if (p && p->ended_seq)
        return p->status == EVS_PATH_CANCELLED
                   ? evs__run_fail(b, err, -ECANCELED, "cancelled",
                                   "run %s: branch %s was cancelled", b->c->id,
                                   b->path)
                   : 0;
    if (!fail)
        return evs__run_emit(b, NULL, EVS_EV_PATH_COMPLETED, "", NULL, err);
    EVS__JB_LIT(&d, "{\"error\":{\"type\":");
    evs__jb_quote(&d, evs_span_cstr(type && *type ? type : "error"));
    EVS__JB_LIT(&d, ",\"message\":");
    evs__jb_quote(&d, evs_span_cstr(message ? message : ""));
    EVS__JB_LIT(&d, ",\"retryable\":false}}");
    rc = evs__run_emit(b, NULL, EVS_EV_PATH_FAILED, "", &d, err);
    evs__jb_free(&d);
    return rc;
}

int evs_run_branch_end(evs_run *b, evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&b->c->mu);
    rc = branch_end(b, 0, NULL, NULL, err);
    rc = evs__run_done(b, rc, err);
    pthread_mutex_unlock(&b->c->mu);
    return rc;
}

int evs_run_branch_fail(evs_run *b, const char *type, const char *message,
                        evs_error_info *err)
{
    int rc;

    pthread_mutex_lock(&b->c->mu);
    rc = branch_end(b, 1, type, message, err);
    rc = evs__run_done(b, rc, err);
    pthread_mutex_unlock(&b->c->mu);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Joins                                                            */
/* ---------------------------------------------------------------- */

static const evs_path_state *path_of(const evs_run *b)
{
    return evs_replay_find_path(b->c->rp, evs_span_cstr(b->path));
}

/* The join's decision, once there is one: 1 completed (*win the winner
 * for any and race, -1 for all), -1 failed (*win the branch at fault,
 * -1 if none), 0 not yet. */
static int decide(evs_wf_join_mode mode, evs_run *const *bs, size_t n,
                  long *win)
{
    const evs_path_state *p, *first = NULL, *first_ok = NULL;
    size_t ended = 0, i;
    long fi = -1, oi = -1;

    for (i = 0; i < n; i++) {
        p = path_of(bs[i]);
        if (!p || !p->ended_seq)
            continue;
        ended++;
        if (!first || p->ended_seq < first->ended_seq) {
            first = p;
            fi = (long)i;
        }
        if (p->status == EVS_PATH_COMPLETED &&
            (!first_ok || p->ended_seq < first_ok->ended_seq)) {
            first_ok = p;
            oi = (long)i;
        }
    }
    switch (mode) {
    case EVS_JOIN_ALL:
        /* A branch that did not complete fails the join at once. */
        for (i = 0; i < n; i++) {
            p = path_of(bs[i]);
            if (p && p->ended_seq && p->status != EVS_PATH_COMPLETED) {
                *win = (long)i;
                return -1;
            }
        }
        *win = -1;
        return ended == n ? 1 : 0;
    case EVS_JOIN_ANY:
        *win = oi >= 0 ? oi : -1;
        return oi >= 0 ? 1 : ended == n ? -1 : 0;
    case EVS_JOIN_RACE:
        *win = fi;
        if (n == 0)
            return -1;
        return !first ? 0 : first->status == EVS_PATH_COMPLETED ? 1 : -1;
    }
    return 0;
}

/* Cancels the live awaited branches and what they branched. */
static int cancel_losers(evs_run *r, evs_run *const *bs, size_t n,
                         const char *why, evs_error_info *err)
{
    const evs_path_state *p;
    evs__jbuf d = {.alloc = r->c->alloc};
    char path[EVS_ID_MAX + 1];
    int rc = 0;

    EVS__JB_LIT(&d, "{\"error\":{\"type\":\"cancelled\",\"message\":");
    evs__jb_quote(&d, evs_span_cstr(why));
    EVS__JB_LIT(&d, ",\"retryable\":false}}");
    for (size_t i = evs_replay_path_count(r->c->rp); i-- > 0 && rc == 0;) {
        p = evs_replay_path(r->c->rp, i);
        if (p->ended_seq || p->id.len > EVS_ID_MAX)
            continue;
        for (size_t k = 0; k < n; k++) {
            size_t bl = strlen(bs[k]->path);
            if (p->id.len >= bl && memcmp(p->id.ptr, bs[k]->path, bl) == 0 &&
                (p->id.len == bl || p->id.ptr[bl] == '/')) {
                memcpy(path, p->id.ptr, p->id.len);
                path[p->id.len] = '\0';
                rc = evs__run_emit_on(r, path, NULL, EVS_EV_PATH_CANCELLED, "",
                                      &d, err);
                break;
            }
        }
    }
    evs__jb_free(&d);
    return rc;
}

/* Records the decided join: losers cancelled, then its outcome. */
static int settle(evs_run *r, evs_wf_join_mode mode, evs_run *const *bs,
                  size_t n, int decision, long win, evs_error_info *err)
{
    evs__jbuf out = {.alloc = r->c->alloc}, d = {.alloc = r->c->alloc};
    char why[RUN_STEP_MAX * 2 + 64];
    const evs_path_state *p;
    int rc;

    if (decision > 0) {
        EVS__JB_LIT(&out, "{");
        for (size_t i = 0; i < n; i++) {
            if (mode != EVS_JOIN_ALL && (long)i != win)
                continue;
            if (out.len > 1)
                EVS__JB_LIT(&out, ",");
            evs__jb_quote(&out, evs_span_cstr(branch_name(bs[i])));
            EVS__JB_LIT(&out, ":");
            evs__jb_json(&out, path_of(bs[i])->last_output);
        }
        EVS__JB_LIT(&out, "}");
        snprintf(why, sizeof(why), "%s was decided by %s", r->step,
                 win >= 0 ? branch_name(bs[win]) : "every branch");
    } else {
        p = win >= 0 ? path_of(bs[win]) : NULL;
        EVS__JB_LIT(&out, "{\"type\":\"join_failed\",\"message\":");
        if (p) {
            snprintf(why, sizeof(why), "branch %s %s", branch_name(bs[win]),
                     evs_path_status_name(p->status));
            evs__jb_quote(&out, evs_span_cstr(why));
            EVS__JB_LIT(&out, ",\"cause\":");
            evs__jb_json(&out, p->error);
        } else {
            evs__jb_quote(&out, evs_span_cstr("no branch completed"));
        }
        EVS__JB_LIT(&out, ",\"retryable\":false}");
        snprintf(why, sizeof(why), "%s failed", r->step);
    }
    if (out.err) {
        evs__jb_free(&out);
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    }
    if ((rc = cancel_losers(r, bs, n, why, err)) != 0)
        goto out;
    evs__jb_str(&d, decision > 0 ? "{\"output\":" : "{\"error\":");
    evs__run_jb_cat(&d, &out);
    EVS__JB_LIT(&d, "}");
    if ((rc = evs__run_emit(
             r, NULL, decision > 0 ? EVS_EV_STEP_COMPLETED : EVS_EV_STEP_FAILED,
             r->step, &d, err)) != 0 ||
        (rc = evs__run_flush(r, err)) != 0)
        goto out;
    if (evs__run_set(decision > 0 ? &r->result : &r->error,
                     (evs_span){out.p, out.len}) != 0)
        rc = -ENOMEM;
    else if (decision < 0)
        rc = evs__run_fail(r, err, EVS_EFAILED, "join", "run %s: %s: %.*s",
                           r->c->id, r->step, (int)out.len, out.p);
out:
    evs__jb_free(&out);
    evs__jb_free(&d);
    return rc;
}

static int parse_mode(const char *mode, evs_wf_join_mode *out)
{
    if (!mode || strcmp(mode, "all") == 0)
        *out = EVS_JOIN_ALL;
    else if (strcmp(mode, "any") == 0)
        *out = EVS_JOIN_ANY;
    else if (strcmp(mode, "race") == 0)
        *out = EVS_JOIN_RACE;
    else
        return -EINVAL;
    return 0;
}

static int join(evs_run *r, const char *mode_name, evs_run *const *bs, size_t n,
                evs_error_info *err)
{
    run_core *c = r->c;
    const evs_step_state *sp;
    evs_wf_join_mode mode;
    evs__jbuf d = {.alloc = c->alloc};
    struct timespec ts;
    long win;
    int rc, decision;

    if (parse_mode(mode_name, &mode) != 0)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "a join's mode is \"all\", \"any\" or \"race\"");
    for (size_t i = 0; i < n; i++)
        if (!bs || !bs[i] || bs[i]->parent != r)
            return evs__run_fail(r, err, -EINVAL, "argument",
                                 "run %s: a join waits for branches of its "
                                 "own path (%s)",
                                 c->id, r->path);
    if ((rc = evs__run_idle(r, err)) != 0 ||
        (rc = evs__run_command(r, "join", RUN_KIND_JOIN, r->step, err)) != 0)
        return rc;
    sp = evs__run_find_step(r, r->step);
    if (sp && sp->status == EVS_STEP_COMPLETED)
        return evs__run_set(&r->result, sp->output) ? -ENOMEM : 0;
    if (sp && sp->status == EVS_STEP_FAILED)
        return evs__run_set(&r->error, sp->error)
                   ? -ENOMEM
                   : evs__run_fail(r, err, EVS_EFAILED, "join",
                                   "run %s: %s failed", c->id, r->step);
    if (sp && sp->status != EVS_STEP_RUNNING)
        return evs__run_fail(r, err, -ECANCELED, "cancelled",
                             "run %s: %s is %s", c->id, r->step,
                             evs_step_status_name(sp->status));
    if (!sp) {
        EVS__JB_LIT(&d, "{\"attempt\":1,\"input\":{\"mode\":\"");
        evs__jb_str(&d, mode_name ? mode_name : "all");
        EVS__JB_LIT(&d, "\",\"branches\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                EVS__JB_LIT(&d, ",");
            evs__jb_quote(&d, evs_span_cstr(branch_name(bs[i])));
        }
        EVS__JB_LIT(&d, "]},\"kind\":\"" RUN_KIND_JOIN "\"}");
        rc = evs__run_emit(r, NULL, EVS_EV_STEP_STARTED, r->step, &d, err);
        evs__jb_free(&d);
        if (rc != 0)
            return rc;
    }
    while ((decision = decide(mode, bs, n, &win)) == 0) {
        /* The branches' threads record their ends and signal `changed`;
         * the inbox is looked at every poll_ms meanwhile. */
        if ((rc = evs__run_gate(r, err)) != 0 ||
            (rc = evs__run_usable(r, err)) != 0)
            return rc;
        evs__run_before_blocking(r);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(c->poll_ms % 1000) * 1000000L;
        ts.tv_sec += (time_t)(c->poll_ms / 1000) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->changed, &c->mu, &ts);
        if ((rc = evs__run_interrupted(r, 0, err)) != 0)
            return rc;
    }
    return settle(r, mode, bs, n, decision, win, err);
}

int evs_run_join(evs_run *r, const char *mode, evs_run *const *branches,
                 size_t n, evs_error_info *err)
{
    int rc;

    if (err)
        evs_error_info_clear(err);
    pthread_mutex_lock(&r->c->mu);
    rc = join(r, mode, branches, n, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}
