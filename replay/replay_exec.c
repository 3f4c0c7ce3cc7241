/*
 * replay_exec.c: applying the events of the execution and its paths:
 * execution_started, path_started, path_branched, path_completed,
 * path_failed, path_cancelled, the terminal events, pause and resume,
 * variable_set, definition_changed, version_decision and
 * history_warning.
 */
#include "replay_apply.h"

#include <errno.h>
#include <stdio.h>

static const evs_span nospan = {"", 0};

int evs__rp_on_execution_started(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    int rc;

    /* Whether it started before, not the sequence, says it is a second
     * start: in tolerant mode the first start may come late. */
    RULE(r->exec.status == EVS_STATUS_PENDING, c, "duplicate-start",
         "execution_started again at sequence %llu",
         (unsigned long long)c->ev->sequence);
    if (r->exec.status != EVS_STATUS_PENDING)
        return 0;
    if ((rc = evs__rp_copy(r, c->ev->execution_id, &r->exec.execution_id)) ||
        (rc = str_of(r, f->workflow_name, &r->exec.workflow_name)) ||
        (rc = evs__rp_copy(r, f->inputs, &r->exec.inputs)) ||
        (rc = evs__rp_copy(r, f->definition, &r->exec.definition)) ||
        (rc = str_of(r, f->definition_hash, &r->exec.definition_hash)) ||
        (rc = str_of(r, f->inputs_hash, &r->exec.inputs_hash)) ||
        (rc = evs__rp_copy(r, f->lineage, &r->exec.lineage)))
        return rc;
    r->exec.status = EVS_STATUS_RUNNING;
    r->exec.started_at_us = c->ev->timestamp_us;
    return evs__rp_new_path(r, c->path.len ? c->path : evs_span_cstr("main"),
                            nospan, nospan, c->ev->sequence);
}

int evs__rp_on_path_started(ctx *c)
{
    evs_replay *r = c->r;
    evs_span parent, step;
    long i = evs__rp_path_pos(r, c->path);
    int rc;

    if (i >= 0) {
        /* Made by a branch, or the root: this only confirms it. */
        RULE(is_live(&r->paths.v[i]), c, "path-ended",
             "path \"%.*s\" started after it ended", (int)c->path.len,
             c->path.ptr);
        if (c->f.current_step.len &&
            (rc = str_of(r, c->f.current_step, &r->paths.v[i].current_step)))
            return rc;
        return 0;
    }
    if ((rc = str_of(r, c->f.parent, &parent)) ||
        (rc = str_of(r, c->f.current_step, &step)))
        return rc;
    RULE(!parent.len || evs__rp_path_pos(r, parent) >= 0, c, "branch-parent",
         "parent path \"%.*s\" does not exist", (int)parent.len, parent.ptr);
    return evs__rp_new_path(r, c->path, parent, step, c->ev->sequence);
}

/* A path a branch creates, checked before any is created. */
typedef struct new_path_ref {
    evs_span id, step;
    int skip; /* exists already, or twice in the branch */
} new_path_ref;

typedef struct branch_key {
    const new_path_ref *refs;
    evs_span id;
} branch_key;

static int branch_eq(const void *ctx, size_t pos)
{
    const branch_key *k = ctx;
    return evs__span_eq(k->refs[pos].id, k->id);
}

int evs__rp_on_path_branched(ctx *c)
{
    evs_replay *r = c->r;
    evs_path_state *p;
    new_path_ref *refs = NULL;
    index_map seen;
    size_t n = 0, cap = 0;
    evs__jit it;
    evs_span el, v;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
        return rc;
    if (evs__json_iter_begin(&it, c->f.new_paths, '[') != 0)
        return evs__rp_violate(c, "data",
                               "path_branched without a new_paths array");
    memset(&seen, 0, sizeof(seen));
    /* Check every new path before creating any. */
    while (evs__json_arr_next(&it, &el) == 1) {
        new_path_ref ref;
        branch_key k;
        uint64_t h;

        memset(&ref, 0, sizeof(ref));
        if (evs__json_get(el, "id", &v) == 1 &&
            (rc = str_of(r, v, &ref.id)) != 0)
            goto out;
        if (!ref.id.len) {
            if ((rc = evs__rp_violate(c, "data", "a new path without an id")) !=
                0)
                goto out;
            continue;
        }
        if (evs__json_get(el, "current_step", &v) == 1 &&
            (rc = str_of(r, v, &ref.step)) != 0)
            goto out;
        k.refs = refs;
        k.id = ref.id;
        h = evs__rp_hash(ref.id, nospan, 0);
        if (evs__rp_path_pos(r, ref.id) >= 0 ||
            evs__rp_find(&seen, h, branch_eq, &k) >= 0) {
            ref.skip = 1;
            rc = evs__rp_violate(c, "duplicate-path",
                                 "path \"%.*s\" already exists",
                                 (int)ref.id.len, ref.id.ptr);
            if (rc != 0)
                goto out;
        } else if ((rc = evs__rp_insert(r, &seen, h, n)) != 0) {
            goto out;
        }
        if (!evs__rp_grow(r, (void **)&refs, &cap, n, sizeof(*refs))) {
            rc = -ENOMEM;
            goto out;
        }
        refs[n++] = ref;
    }
    for (size_t i = 0; i < n; i++)
        if (!refs[i].skip &&
            (rc = evs__rp_new_path(r, refs[i].id, c->path, refs[i].step,
                                   c->ev->sequence)) != 0)
            goto out;
    rc = 0;
out:
    evs__rp_map_free(r, &seen);
    evs__free(r->alloc, refs);
    return rc;
}

/* The execution goes on under a changed definition. */
int evs__rp_on_definition_changed(ctx *c)
{
    evs_replay *r = c->r;
    int rc;

    RULE(c->f.definition.len, c, "data",
         "definition_changed without a definition");
    if (!c->f.definition.len)
        return 0;
    if ((rc = evs__rp_copy(r, c->f.definition, &r->exec.definition)) ||
        (rc = str_of(r, c->f.definition_hash, &r->exec.definition_hash)))
        return rc;
    return 0;
}

/* The live path an ending event names, in *out (NULL, and 0, in
 * tolerant mode past a broken rule), its error taken from the event's
 * `error` when `with_error`. */
static int ending_path(ctx *c, int with_error, evs_path_state **out)
{
    int rc;

    if ((rc = evs__rp_need_path(c, out)) != 0 || !*out)
        return rc;
    return with_error ? evs__rp_copy(c->r, c->f.error, &(*out)->error) : 0;
}

int evs__rp_on_path_ended(ctx *c, int failed)
{
    evs_path_state *p = NULL;
    int rc;

    if ((rc = ending_path(c, failed, &p)) != 0 || !p)
        return rc;
    evs__rp_set_path_status(c->r, p,
                            failed ? EVS_PATH_FAILED : EVS_PATH_COMPLETED);
    p->ended_seq = c->ev->sequence;
    /* No step event is valid on an ended path any more. */
    return c->r->opts.compact ? evs__rp_drop(c->r, EVS__DROP_STEPS) : 0;
}

/* A path ended by another's outcome: what held it ends with it (its
 * running or retrying steps are cancelled, its timers cancelled, its
 * wait ended), so the state shows nothing of it as pending. */
int evs__rp_on_path_cancelled(ctx *c)
{
    evs_replay *r = c->r;
    uint64_t seq = c->ev->sequence;
    evs_path_state *p = NULL;
    int rc;

    if ((rc = ending_path(c, 1, &p)) != 0 || !p)
        return rc;
    for (size_t i = 0; i < r->steps.n; i++) {
        evs_step_state *s = &r->steps.v[i];
        if ((s->status != EVS_STEP_RUNNING && s->status != EVS_STEP_RETRYING) ||
            !evs__span_eq(s->path_id, c->path))
            continue;
        evs__rp_set_step_status(r, s, EVS_STEP_CANCELLED);
        s->error = p->error;
        s->retry_at_us = 0;
        s->ended_seq = seq;
    }
    for (size_t k = 0; k < r->pend.n;) {
        evs_wait_state *w = &r->waits.v[r->pend.v[k]];
        if (!evs__span_eq(w->path_id, c->path)) {
            k++;
            continue;
        }
        w->ended_seq = seq;
        r->pend.v[k] = r->pend.v[--r->pend.n];
    }
    for (size_t i = 0; i < r->timers.n; i++) {
        evs_timer_state *t = &r->timers.v[i];
        if (!t->fired_seq && !t->cancelled && evs__span_eq(t->path_id, c->path))
            t->cancelled = 1;
    }
    p->pending = 0;
    evs__rp_set_path_status(r, p, EVS_PATH_CANCELLED);
    p->ended_seq = seq;
    return r->opts.compact ? evs__rp_drop(r, EVS__DROP_STEPS | EVS__DROP_WAITS |
                                                 EVS__DROP_TIMERS)
                           : 0;
}

/*
 * Who asked for a pause, an unpause or a termination, and why (FORMAT.md
 * §6): `by`, a string when present, and `reason`, any JSON; both may be
 * missing (histories written before they were recorded). A pause also
 * keeps the step its execution was at.
 */
static int control_of(ctx *c, evs_control_state *o, int pause)
{
    evs_replay *r = c->r;
    evs_control_state n = {c->ev->sequence, c->ev->timestamp_us, nospan,
                           nospan, nospan};
    int rc;

    if ((rc = str_of(r, c->f.by, &n.by)) != 0 ||
        (rc = evs__rp_copy(r, c->f.reason, &n.reason)) != 0)
        return rc;
    for (size_t i = 0; pause && i < r->paths.n && !n.step.len; i++)
        if (is_live(&r->paths.v[i]))
            n.step = r->paths.v[i].current_step;
    *o = n;
    return 0;
}

/* Checked before anything changes: a `by` is a string (or null). */
#define CHECK_BY(c)                                                            \
    RULE(!(c)->f.by.len || (c)->f.by.ptr[0] == '"', (c), "data",               \
         "%.*s: \"by\" is not a string", (int)(c)->ev->event_type.len,        \
         (c)->ev->event_type.ptr)

int evs__rp_on_exec_ended(ctx *c, evs_exec_status st)
{
    evs_replay *r = c->r;
    int rc;

    if (st == EVS_STATUS_TERMINATED)
        CHECK_BY(c);
    if (st == EVS_STATUS_COMPLETED &&
        (rc = evs__rp_copy(r, c->f.outputs, &r->exec.outputs)) != 0)
        return rc;
    if (st == EVS_STATUS_FAILED &&
        (rc = evs__rp_copy(r, c->f.error, &r->exec.error)) != 0)
        return rc;
    if (st == EVS_STATUS_TERMINATED &&
        ((c->f.reason.len &&
          (rc = evs__rp_copy(r, c->f.reason, &r->exec.error)) != 0) ||
         (rc = control_of(c, &r->exec.terminated, 0)) != 0))
        return rc;
    if (st == EVS_STATUS_CONTINUED &&
        (rc = str_of(r, c->f.successor, &r->exec.continued_as)) != 0)
        return rc;
    r->exec.status = st;
    r->exec.ended_at_us = c->ev->timestamp_us;
    r->terminal = 1;
    return 0;
}

int evs__rp_on_pause(ctx *c, int pause)
{
    evs_replay *r = c->r;
    int rc;

    /* Who asked is read first: out of memory, nothing has changed. */
    CHECK_BY(c);
    if (pause) {
        RULE(r->exec.status != EVS_STATUS_PAUSED, c, "already-paused",
             "paused while paused");
        if (r->exec.status != EVS_STATUS_PAUSED) {
            if ((rc = control_of(c, &r->exec.paused, 1)) != 0)
                return rc;
            r->exec.status_before_pause = r->exec.status;
            r->exec.status = EVS_STATUS_PAUSED;
        }
    } else {
        RULE(r->exec.status == EVS_STATUS_PAUSED, c, "not-paused",
             "resumed while not paused");
        if (r->exec.status == EVS_STATUS_PAUSED) {
            if ((rc = control_of(c, &r->exec.resumed, 0)) != 0)
                return rc;
            r->exec.status = EVS_STATUS_RUNNING;
        }
    }
    return 0;
}

int evs__rp_on_variable_set(ctx *c)
{
    evs_span name;
    int rc;

    if ((rc = str_of(c->r, c->f.name, &name)) != 0)
        return rc;
    RULE(name.len, c, "data", "variable_set without a name");
    if (!name.len)
        return 0;
    /* A null value is kept as the empty span, as everywhere in the state
     * (and as a loaded state gives it back). */
    return evs__rp_set_var(c->r, name, c->f.value, 0, c->ev->sequence);
}

/* The first warning is the one the state keeps: its writer records one
 * (FORMAT.md §3.1), and a second changes nothing. */
int evs__rp_on_history_warning(ctx *c)
{
    if (!c->r->exec.history_warning_seq)
        c->r->exec.history_warning_seq = c->ev->sequence;
    return 0;
}

int evs__rp_on_version_decision(ctx *c)
{
    evs_replay *r = c->r;
    evs_version_state v;
    fields *f = &c->f;
    int rc;

    memset(&v, 0, sizeof(v));
    if ((rc = str_of(r, f->change_id, &v.change_id)) != 0)
        return rc;
    RULE(v.change_id.len && f->has_version, c, "data",
         "version_decision without change_id and version");
    RULE(!v.change_id.len || evs__rp_version_pos(r, v.change_id) < 0, c,
         "version-duplicate", "a second decision for change \"%.*s\"",
         (int)v.change_id.len, v.change_id.ptr);
    v.version = f->version;
    v.min = f->has_min ? f->min : f->version;
    v.max = f->has_max ? f->max : f->version;
    RULE(v.version >= v.min && v.version <= v.max, c, "version-range",
         "version %lld of change \"%.*s\" is outside [%lld, %lld]",
         (long long)v.version, (int)v.change_id.len, v.change_id.ptr,
         (long long)v.min, (long long)v.max);
    if (!v.change_id.len || evs__rp_version_pos(r, v.change_id) >= 0)
        return 0;
    v.seq = c->ev->sequence;
    return evs__rp_add_version(r, &v);
}

/* A runner took the execution over (FORMAT.md §6): from then on it is
 * the owner the state names. */
int evs__rp_on_taken_over(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    evs_span runner;
    int rc;

    if ((rc = str_of(r, f->runner, &runner)) != 0)
        return rc;
    RULE(runner.len && f->has_from_seq, c, "data",
         "execution_taken_over without runner and from_seq");
    RULE(!f->has_from_seq || (uint64_t)f->from_seq + 1 == c->ev->sequence, c,
         "takeover-from",
         "a takeover from sequence %lld recorded at sequence %llu",
         (long long)f->from_seq, (unsigned long long)c->ev->sequence);
    r->exec.takeovers++;
    r->exec.takeover_seq = c->ev->sequence;
    r->exec.runner = runner;
    return 0;
}
