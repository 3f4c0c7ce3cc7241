/*
 * replay_step.c: applying the events of steps: step_started,
 * step_completed, step_skipped, each_completed, step_failed,
 * retry_scheduled and step_reset; and keeping the failure point (the
 * step an execution failed at, which a retry starts from).
 */
#include "replay_apply.h"

#include <errno.h>
#include <stdio.h>

static const evs_span nospan = {"", 0};

static int each_count(ctx *c, int64_t count)
{
    evs_replay *r = c->r;
    long i = evs__rp_each_pos(r, c->path, c->step);
    evs_each_state e;

    if (i >= 0) {
        if (count >= 0)
            r->eaches.v[i].count = count;
        return 0;
    }
    memset(&e, 0, sizeof(e));
    e.path_id = c->path;
    e.name = c->step;
    e.count = count;
    return evs__rp_add_each(r, &e);
}

static void each_done(evs_replay *r, evs_span path, evs_span step)
{
    long i = evs__rp_each_pos(r, path, step);

    if (i >= 0)
        r->eaches.v[i].done++;
}

static int is_failure_point(const evs_replay *r, const evs_step_state *sp)
{
    return r->exec.failed_seq && sp->status == EVS_STEP_FAILED &&
           sp->ended_seq == r->exec.failed_seq;
}

/* Every change of a step's status goes through here, which keeps count
 * of the steps failed for good. */
void evs__rp_set_step_status(evs_replay *r, evs_step_state *sp,
                             evs_step_status st)
{
    if (sp->status == EVS_STEP_FAILED)
        r->nfailed--;
    sp->status = st;
    if (st == EVS_STEP_FAILED)
        r->nfailed++;
    /* Only a running attempt is run again with its input; the next
     * attempt records its own. */
    if (r->opts.compact && st != EVS_STEP_RUNNING)
        sp->input = nospan;
}

/* The failure point is the step that last failed for good. When that step
 * stops being failed (a retry is scheduled, it is skipped or started
 * again), it goes back to the last step still failed, if any: a scan,
 * but only while some other step is still failed, which is rare. */
static void find_failure(evs_replay *r)
{
    const evs_step_state *last = NULL;
    evs_exec_state *x = &r->exec;

    for (size_t i = 0; r->nfailed && i < r->steps.n; i++) {
        const evs_step_state *s = &r->steps.v[i];
        if (s->status == EVS_STEP_FAILED &&
            (!last || s->ended_seq > last->ended_seq))
            last = s;
    }
    x->failed_path = last ? last->path_id : nospan;
    x->failed_step = last ? last->name : nospan;
    x->failed_iteration = last ? last->iteration : -1;
    x->failed_seq = last ? last->ended_seq : 0;
}

/* The record of the event's step name, made when first seen. */
static evs_stepname_state *stepname(ctx *c)
{
    evs_replay *r = c->r;
    long i = evs__rp_stepname_pos(r, c->step);
    evs_stepname_state n;

    if (i >= 0)
        return &r->names.v[i];
    memset(&n, 0, sizeof(n));
    n.name = c->step;
    if (evs__rp_add_stepname(r, &n) != 0)
        return NULL;
    return &r->names.v[r->names.n - 1];
}

int evs__rp_on_step_started(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    evs_path_state *p;
    evs_step_state s, *sp;
    evs_stepname_state *n;
    long i;
    int rc, was_failure, was_retrying;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
        return rc;
    RULE(c->step.len, c, "data", "step_started without a step_name");
    i = step_pos(c);
    sp = i >= 0 ? &r->steps.v[i] : NULL;
    RULE(!sp || sp->status == EVS_STEP_RETRYING ||
             sp->status == EVS_STEP_FAILED || sp->status == EVS_STEP_RUNNING,
         c, "step-restarted", "step \"%.*s\" started again after it %s",
         (int)c->step.len, c->step.ptr,
         sp ? evs_step_status_name(sp->status) : "");
    if (!sp) {
        memset(&s, 0, sizeof(s));
        s.path_id = c->path;
        s.name = c->step;
        s.iteration = f->iteration;
        if ((rc = evs__rp_add_step(r, &s)) != 0)
            return rc;
        sp = &r->steps.v[r->steps.n - 1];
    }
    was_failure = is_failure_point(r, sp);
    was_retrying = sp->status == EVS_STEP_RETRYING;
    evs__rp_set_step_status(r, sp, EVS_STEP_RUNNING);
    sp->attempts++;
    sp->dispatches++;
    sp->started_seq = c->ev->sequence;
    sp->ended_seq = 0;
    sp->retry_at_us = 0;
    if (was_failure)
        find_failure(r);
    if ((rc = evs__rp_copy(r, f->input, &sp->input)) ||
        (f->step_hash.len && (rc = str_of(r, f->step_hash, &sp->step_hash))) ||
        (f->kind.len && (rc = str_of(r, f->kind, &sp->kind))))
        return rc;
    if (!(n = stepname(c)))
        return -ENOMEM;
    n->kind = sp->kind;
    n->step_hash = sp->step_hash;
    n->started_seq = c->ev->sequence;
    if (f->has_iteration || f->has_count)
        if ((rc = each_count(c, f->has_count ? f->count : -1)) != 0)
            return rc;
    if (p) {
        p->current_step = c->step;
        /* The retry that held the path is now being run. */
        if (was_retrying)
            evs__rp_hold(r, p, -1);
    }
    return 0;
}

/* The running (or, for retries, failed) step an outcome refers to. */
static int outcome_step(ctx *c, evs_step_state **out, int want_failed)
{
    evs_replay *r = c->r;
    long i = step_pos(c);
    evs_step_state *sp = i >= 0 ? &r->steps.v[i] : NULL;
    evs_path_state *p;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
        return rc;
    if (want_failed)
        RULE(sp && sp->status == EVS_STEP_FAILED, c, "retry-not-failed",
             "retry of step \"%.*s\" that has not failed", (int)c->step.len,
             c->step.ptr);
    else
        RULE(sp && sp->status == EVS_STEP_RUNNING, c, "step-not-started",
             "outcome of step \"%.*s\" that is not running", (int)c->step.len,
             c->step.ptr);
    *out = sp;
    return 0;
}

/* What later steps read of a step that completed or was skipped: the
 * path's last output (not of an `end` step, which only ends its path),
 * and the last output of a step of its name. Both outlive the step,
 * which compact mode drops when its path ends. One iteration of an
 * `each` sets neither: the step's output is the array of all of them,
 * which each_completed brings. */
static int note_output(ctx *c, evs_span output, int of_path)
{
    long pi = of_path ? evs__rp_path_pos(c->r, c->path) : -1;
    evs_stepname_state *n;

    if (pi >= 0) {
        c->r->paths.v[pi].last_output = output;
        c->r->paths.v[pi].last_output_seq = c->ev->sequence;
    }
    if (!(n = stepname(c)))
        return -ENOMEM;
    n->output = output;
    n->output_seq = c->ev->sequence;
    return 0;
}

int evs__rp_on_step_completed(ctx *c, int skipped)
{
    evs_replay *r = c->r;
    evs_step_state *sp = NULL;
    evs_span var;
    int rc, was_failure, was_done;

    if (!skipped && (rc = outcome_step(c, &sp, 0)) != 0)
        return rc;
    if (skipped) {
        long i;
        evs_path_state *p;
        if ((rc = evs__rp_need_path(c, &p)) != 0)
            return rc;
        i = step_pos(c);
        if (i < 0) {
            evs_step_state s;
            memset(&s, 0, sizeof(s));
            s.path_id = c->path;
            s.name = c->step;
            s.iteration = c->f.iteration;
            if ((rc = evs__rp_add_step(r, &s)) != 0)
                return rc;
            i = (long)r->steps.n - 1;
        }
        sp = &r->steps.v[i];
    }
    if (!sp)
        return 0;
    if ((rc = str_of(r, c->f.stored_variable, &var)) ||
        (rc = evs__rp_copy(r, c->f.output, &sp->output)))
        return rc;
    /* A skipped step no longer marks the failure point, and an iteration
     * skipped after it completed is not done twice. */
    was_failure = is_failure_point(r, sp);
    was_done =
        sp->status == EVS_STEP_COMPLETED || sp->status == EVS_STEP_SKIPPED;
    if (sp->status == EVS_STEP_RETRYING) {
        /* Skipped instead of retried: the retry no longer holds it. */
        long pi = evs__rp_path_pos(r, sp->path_id);
        if (pi >= 0)
            evs__rp_hold(r, &r->paths.v[pi], -1);
    }
    evs__rp_set_step_status(r, sp,
                            skipped ? EVS_STEP_SKIPPED : EVS_STEP_COMPLETED);
    sp->stored_variable = var;
    sp->ended_seq = c->ev->sequence;
    if (was_failure)
        find_failure(r);
    if (var.len &&
        (rc = evs__rp_set_var(r, var, sp->output, 1, c->ev->sequence)) != 0)
        return rc;
    if (sp->iteration >= 0) {
        if (!was_done)
            each_done(r, c->path, c->step);
        return stepname(c) ? 0 : -ENOMEM;
    }
    return note_output(
        c, sp->output,
        !(sp->kind.len == 3 && memcmp(sp->kind.ptr, "end", 3) == 0));
}

/* An `each` step completed as a whole, every iteration done (an empty
 * list has none, and no record before this event): its output is the
 * array of their outputs. */
int evs__rp_on_each_completed(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    evs_path_state *p;
    evs_each_state *e, ne;
    evs_span var;
    long i;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
        return rc;
    RULE(c->step.len && f->has_count && f->count >= 0, c, "data",
         "each_completed without a step_name and a count");
    if (!c->step.len || !f->has_count || f->count < 0)
        return 0;
    i = evs__rp_each_pos(r, c->path, c->step);
    e = i >= 0 ? &r->eaches.v[i] : NULL;
    RULE(!e || !e->ended_seq, c, "each-completed-twice",
         "step \"%.*s\" completed its each again", (int)c->step.len,
         c->step.ptr);
    RULE(e ? e->done == f->count : f->count == 0, c, "each-not-done",
         "each_completed of step \"%.*s\" for %lld items after %lld "
         "iterations",
         (int)c->step.len, c->step.ptr, (long long)f->count,
         e ? (long long)e->done : 0LL);
    if (e && e->ended_seq)
        return 0;
    if (!e) {
        memset(&ne, 0, sizeof(ne));
        ne.path_id = c->path;
        ne.name = c->step;
        ne.count = f->count;
        if ((rc = evs__rp_add_each(r, &ne)) != 0)
            return rc;
        i = (long)r->eaches.n - 1;
    }
    e = &r->eaches.v[i];
    if ((rc = str_of(r, f->stored_variable, &var)) ||
        (rc = evs__rp_copy(r, f->output, &e->output)))
        return rc;
    e->ended_seq = c->ev->sequence;
    if (p)
        p->current_step = c->step;
    if (var.len &&
        (rc = evs__rp_set_var(r, var, e->output, 1, c->ev->sequence)))
        return rc;
    return note_output(c, e->output, 1);
}

int evs__rp_on_step_failed(ctx *c)
{
    evs_replay *r = c->r;
    evs_step_state *sp;
    int rc;

    if ((rc = outcome_step(c, &sp, 0)) != 0)
        return rc;
    if (!sp)
        return 0;
    if ((rc = evs__rp_copy(r, c->f.error, &sp->error)) != 0)
        return rc;
    evs__rp_set_step_status(r, sp, EVS_STEP_FAILED);
    sp->ended_seq = c->ev->sequence;
    r->exec.failed_path = sp->path_id;
    r->exec.failed_step = sp->name;
    r->exec.failed_iteration = sp->iteration;
    r->exec.failed_seq = c->ev->sequence;
    return 0;
}

int evs__rp_on_retry_scheduled(ctx *c)
{
    evs_replay *r = c->r;
    evs_step_state *sp;
    evs_path_state *p;
    int rc, was_failure;

    if ((rc = outcome_step(c, &sp, 1)) != 0)
        return rc;
    if (!sp)
        return 0;
    /* Not a failure for good after all. */
    was_failure = is_failure_point(r, sp);
    evs__rp_set_step_status(r, sp, EVS_STEP_RETRYING);
    sp->retry_at_us = time_of(c->f.fire_at);
    if (!sp->retry_at_us && c->f.has_delay)
        sp->retry_at_us = c->ev->timestamp_us + c->f.delay_ms * 1000;
    if (was_failure)
        find_failure(r);
    if ((p = live_path(c)) != NULL)
        evs__rp_hold(r, p, 1);
    return 0;
}

/* A retry of the execution starts a step over: its attempts count from
 * zero again, and it is due at once (a retrying step that holds its
 * path until it starts). */
int evs__rp_on_step_reset(ctx *c)
{
    evs_replay *r = c->r;
    long i = step_pos(c);
    evs_step_state *sp = i >= 0 ? &r->steps.v[i] : NULL;
    evs_path_state *p;
    int rc, was_failure;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
        return rc;
    RULE(sp && sp->status != EVS_STEP_COMPLETED &&
             sp->status != EVS_STEP_SKIPPED,
         c, "reset-done", "reset of step \"%.*s\" that %s", (int)c->step.len,
         c->step.ptr, sp ? "has completed" : "never started");
    if (!sp || sp->status == EVS_STEP_COMPLETED ||
        sp->status == EVS_STEP_SKIPPED)
        return 0;
    was_failure = is_failure_point(r, sp);
    if (sp->status != EVS_STEP_RETRYING && p)
        evs__rp_hold(r, p, 1);
    evs__rp_set_step_status(r, sp, EVS_STEP_RETRYING);
    sp->attempts = 0;
    sp->retry_at_us = c->ev->timestamp_us;
    if (was_failure)
        find_failure(r);
    return 0;
}

/* The last sequence in a step's redispatched_by ([41,97]: 97), 0 if
 * none. */
static uint64_t last_redispatch(const evs_step_state *sp)
{
    const char *p = sp->redispatched_by.ptr;
    size_t n = sp->redispatched_by.len;
    uint64_t v = 0, m = 1;

    if (n < 3)
        return 0;
    for (n -= 2; n > 0 && p[n] >= '0' && p[n] <= '9'; n--, m *= 10)
        v += (uint64_t)(p[n] - '0') * m;
    return v;
}

/* An attempt in flight when its runner died, handed out again by the
 * runner that took over: same attempt, same idempotency key. */
int evs__rp_on_step_redispatched(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    long i = step_pos(c);
    evs_step_state *sp = i >= 0 ? &r->steps.v[i] : NULL;
    evs_path_state *p;
    evs__jbuf b = {.alloc = r->alloc};
    uint64_t take = (uint64_t)f->takeover_seq;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
        return rc;
    RULE(f->has_attempt && f->has_takeover_seq && f->takeover_seq > 0, c,
         "data", "step_redispatched without attempt and takeover_seq");
    RULE(sp && sp->status == EVS_STEP_RUNNING, c, "redispatch-not-running",
         "re-dispatch of step \"%.*s\" that %s", (int)c->step.len,
         c->step.ptr, sp ? evs_step_status_name(sp->status) : "never started");
    if (!sp || sp->status != EVS_STEP_RUNNING)
        return 0;
    RULE(!f->has_attempt || f->attempt == (int64_t)sp->attempts, c,
         "redispatch-attempt",
         "re-dispatch of attempt %lld of step \"%.*s\", whose attempt in "
         "flight is %u",
         (long long)f->attempt, (int)c->step.len, c->step.ptr, sp->attempts);
    RULE(!f->has_takeover_seq ||
             (take == r->exec.takeover_seq && sp->started_seq < take &&
              last_redispatch(sp) != take),
         c, "redispatch-takeover",
         "re-dispatch of step \"%.*s\" by takeover %lld: not the last "
         "takeover (%llu), or the step started after it or was already "
         "re-dispatched by it",
         (int)c->step.len, c->step.ptr, (long long)f->takeover_seq,
         (unsigned long long)r->exec.takeover_seq);
    sp->dispatches++;
    if (sp->redispatched_by.len > 2) {
        evs__jb_raw(&b, sp->redispatched_by.ptr, sp->redispatched_by.len - 1);
        EVS__JB_LIT(&b, ",");
    } else {
        EVS__JB_LIT(&b, "[");
    }
    evs__jb_int(&b, f->takeover_seq);
    EVS__JB_LIT(&b, "]");
    rc = b.err ? -ENOMEM
               : evs__rp_copy(r, (evs_span){b.p, b.len}, &sp->redispatched_by);
    evs__jb_free(&b);
    return rc;
}
