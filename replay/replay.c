/*
 * replay.c: applying events to the replayed state, one at a time, and
 * checking the history rules of FORMAT.md ("History rules") as it goes.
 *
 * Every rule is checked before anything changes, so in strict mode an
 * event that breaks one leaves the state exactly as it was.
 */
#include "replay_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const exec_names[] = {
    "pending", "running",    "waiting",  "paused",
    "completed", "failed", "terminated", "continued",
};
static const char *const path_names[] = {"active", "waiting", "completed",
                                         "failed", "cancelled"};
static const char *const step_names[] = {"running", "completed", "failed",
                                         "retrying", "skipped", "cancelled"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *evs_exec_status_name(evs_exec_status s)
{
    return (unsigned)s < NELEM(exec_names) ? exec_names[s] : "unknown";
}

const char *evs_path_status_name(evs_path_status s)
{
    return (unsigned)s < NELEM(path_names) ? path_names[s] : "unknown";
}

const char *evs_step_status_name(evs_step_status s)
{
    return (unsigned)s < NELEM(step_names) ? step_names[s] : "unknown";
}

void evs_replay_opts_init(evs_replay_opts *o)
{
    memset(o, 0, sizeof(*o));
}

int evs_replay_new(const evs_replay_opts *opts, evs_replay **out)
{
    evs_replay_opts o;
    evs_replay *r;

    if (opts)
        o = *opts;
    else
        evs_replay_opts_init(&o);
    r = evs__calloc(o.alloc, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->opts = o;
    r->alloc = o.alloc;
    r->exec.failed_iteration = -1;
    *out = r;
    return 0;
}

void evs_replay_free(evs_replay *r)
{
    if (!r)
        return;
    evs__rp_reset(r);
    evs__free(r->alloc, r);
}

static const evs_span nospan = {"", 0};

/* ------------------------------------------------------------------ */
/* Applying                                                           */
/* ------------------------------------------------------------------ */

/* What an event's `data` says, read in one pass over its members. */
typedef struct fields {
    evs_span workflow_name, inputs, definition, definition_hash, inputs_hash,
        lineage, parent, current_step, input, output, stored_variable, error,
        outputs, new_paths, name, value, signal, payload, timer_id, fire_at,
        timeout_at, change_id, successor, step_hash, kind, reason;
    int64_t attempt, iteration, count, signal_seq, version, min, max,
        delay_ms;
    int has_iteration, has_count, has_signal_seq, has_version, has_min,
        has_max, has_delay, timed_out;
} fields;

/* The length is a constant in the memcmp, so that the compiler compares
 * a few words in place instead of calling memcmp for every member. */
#define KEY(k)                                                                \
    (key.len == sizeof(k) - 1 && memcmp(key.ptr, k, sizeof(k) - 1) == 0)

static int read_fields(evs_span data, fields *f)
{
    evs__jit it;
    evs_span key, val;
    int rc;

    memset(f, 0, sizeof(*f));
    f->iteration = -1;
    if (evs__json_iter_begin(&it, data, '{') != 0)
        return -1;
    while ((rc = evs__json_obj_next(&it, &key, &val)) == 1) {
        if (evs__json_is_null(val))
            continue;
        if (KEY("output")) f->output = val;
        else if (KEY("stored_variable")) f->stored_variable = val;
        else if (KEY("attempt")) evs__json_int(val, &f->attempt);
        else if (KEY("iteration"))
            f->has_iteration = evs__json_int(val, &f->iteration) == 0;
        else if (KEY("error")) f->error = val;
        else if (KEY("input")) f->input = val;
        else if (KEY("count"))
            f->has_count = evs__json_int(val, &f->count) == 0;
        else if (KEY("step_hash")) f->step_hash = val;
        else if (KEY("kind")) f->kind = val;
        else if (KEY("current_step")) f->current_step = val;
        else if (KEY("parent")) f->parent = val;
        else if (KEY("new_paths")) f->new_paths = val;
        else if (KEY("workflow_name")) f->workflow_name = val;
        else if (KEY("inputs")) f->inputs = val;
        else if (KEY("outputs")) f->outputs = val;
        else if (KEY("definition")) f->definition = val;
        else if (KEY("definition_hash")) f->definition_hash = val;
        else if (KEY("inputs_hash")) f->inputs_hash = val;
        else if (KEY("lineage")) f->lineage = val;
        else if (KEY("name")) f->name = val;
        else if (KEY("value")) f->value = val;
        else if (KEY("signal")) f->signal = val;
        else if (KEY("payload")) f->payload = val;
        else if (KEY("signal_seq"))
            f->has_signal_seq = evs__json_int(val, &f->signal_seq) == 0;
        else if (KEY("timer_id")) f->timer_id = val;
        else if (KEY("fire_at")) f->fire_at = val;
        else if (KEY("timeout_at")) f->timeout_at = val;
        else if (KEY("delay_ms"))
            f->has_delay = evs__json_int(val, &f->delay_ms) == 0;
        else if (KEY("timed_out"))
            f->timed_out = val.len == 4 && memcmp(val.ptr, "true", 4) == 0;
        else if (KEY("change_id")) f->change_id = val;
        else if (KEY("version"))
            f->has_version = evs__json_int(val, &f->version) == 0;
        else if (KEY("min")) f->has_min = evs__json_int(val, &f->min) == 0;
        else if (KEY("max")) f->has_max = evs__json_int(val, &f->max) == 0;
        else if (KEY("successor")) f->successor = val;
        else if (KEY("reason")) f->reason = val;
    }
    return rc < 0 ? -1 : 0;
}

/* The text of a JSON string value, unescaped, for comparisons. A value
 * that is not a string gives the empty span. */
static int str_of(evs_replay *r, evs_span v, evs_span *out)
{
    if (v.len < 2 || v.ptr[0] != '"') {
        *out = nospan;
        return 0;
    }
    return evs__rp_copy_str(r, v, out);
}

static int64_t time_of(evs_span v)
{
    int64_t us;

    if (v.len < 2 || v.ptr[0] != '"' ||
        evs_time_parse(v.ptr + 1, v.len - 2, &us) != 0)
        return 0;
    return us;
}

typedef struct ctx {
    evs_replay *r;
    const evs_event *ev;
    evs_violation *v;
    fields f;
    evs_span path;     /* the event's path, copied */
    evs_span step;     /* its step name, copied */
    /* Where intern_names found them (-1: not there then). Paths are
     * never removed, and steps only when a path ends (compact mode),
     * after which the event looks at neither: a found position stays
     * right for the whole event; one not found is looked up again. */
    long path_i, step_i;
} ctx;

static int violate(ctx *c, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int violate(ctx *c, const char *rule, const char *fmt, ...)
{
    evs_violation tmp, *v = c->v ? c->v : &tmp;
    va_list ap;

    v->sequence = c->ev->sequence;
    v->rule = rule;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    if (!c->r->opts.tolerant)
        return EVS_EHISTORY;
    if (c->r->opts.on_violation)
        return c->r->opts.on_violation(c->r->opts.arg, v);
    return 0;
}

/* Checks the rule; in strict mode a violation ends the apply. */
#define RULE(cond, c, rule, ...)                                              \
    do {                                                                      \
        if (!(cond)) {                                                        \
            int rc_ = violate((c), (rule), __VA_ARGS__);                      \
            if (rc_ != 0)                                                     \
                return rc_;                                                   \
        }                                                                     \
    } while (0)

static int is_live(const evs_path_state *p)
{
    return p->status == EVS_PATH_ACTIVE || p->status == EVS_PATH_WAITING;
}

static evs_path_state *live_path(ctx *c)
{
    long i = c->path_i >= 0 ? c->path_i : evs__rp_path_pos(c->r, c->path);
    return i < 0 ? NULL : &c->r->paths.v[i];
}

/* The position of the event's step (path, name, iteration), or -1. */
static long step_pos(ctx *c)
{
    return c->step_i >= 0
               ? c->step_i
               : evs__rp_step_pos(c->r, c->path, c->step, c->f.iteration);
}

/* Checks that the event's path exists and is live. */
static int need_path(ctx *c, evs_path_state **out)
{
    evs_path_state *p = live_path(c);

    RULE(p != NULL, c, "unknown-path", "path \"%.*s\" does not exist",
         (int)c->path.len, c->path.ptr);
    RULE(!p || is_live(p), c, "path-ended",
         "path \"%.*s\" has already ended (%s)", (int)c->path.len,
         c->path.ptr, p ? evs_path_status_name(p->status) : "");
    *out = p;
    return 0;
}

/* Sets a variable. `held` says the value is already in the arena (a
 * step's output), so the variable can share it instead of copying it. */
static int set_var(evs_replay *r, evs_span name, evs_span value, int held,
                   uint64_t seq)
{
    long i = evs__rp_var_pos(r, name);
    evs_var_state v, *vp = i >= 0 ? &r->vars.v[i] : &v;
    int rc;

    if (i < 0) {
        memset(&v, 0, sizeof(v));
        v.name = name;
    }
    vp->set_seq = seq;
    if (held)
        vp->value = value;
    else if ((rc = evs__rp_copy(r, value, &vp->value)) != 0)
        return rc;
    return i >= 0 ? 0 : evs__rp_add_var(r, &v);
}

static int new_path(evs_replay *r, evs_span id, evs_span parent,
                    evs_span step, uint64_t seq)
{
    evs_path_state p;

    memset(&p, 0, sizeof(p));
    p.id = id;
    p.parent = parent;
    p.current_step = step;
    p.status = EVS_PATH_ACTIVE;
    p.started_seq = seq;
    return evs__rp_add_path(r, &p);
}

static int on_execution_started(ctx *c)
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
    return new_path(r, c->path.len ? c->path : evs_span_cstr("main"), nospan,
                    nospan, c->ev->sequence);
}

static int on_path_started(ctx *c)
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
    return new_path(r, c->path, parent, step, c->ev->sequence);
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

static int on_path_branched(ctx *c)
{
    evs_replay *r = c->r;
    evs_path_state *p;
    new_path_ref *refs = NULL;
    index_map seen;
    size_t n = 0, cap = 0;
    evs__jit it;
    evs_span el, v;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    if (evs__json_iter_begin(&it, c->f.new_paths, '[') != 0)
        return violate(c, "data", "path_branched without a new_paths array");
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
            if ((rc = violate(c, "data", "a new path without an id")) != 0)
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
            rc = violate(c, "duplicate-path", "path \"%.*s\" already exists",
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
        if (!refs[i].skip && (rc = new_path(r, refs[i].id, c->path,
                                            refs[i].step,
                                            c->ev->sequence)) != 0)
            goto out;
    rc = 0;
out:
    evs__rp_map_free(r, &seen);
    evs__free(r->alloc, refs);
    return rc;
}

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
static void set_step_status(evs_replay *r, evs_step_state *sp,
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

static int on_step_started(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    evs_path_state *p;
    evs_step_state s, *sp;
    evs_stepname_state *n;
    long i;
    int rc, was_failure, was_retrying;

    if ((rc = need_path(c, &p)) != 0)
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
    set_step_status(r, sp, EVS_STEP_RUNNING);
    sp->attempts++;
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

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    if (want_failed)
        RULE(sp && sp->status == EVS_STEP_FAILED, c, "retry-not-failed",
             "retry of step \"%.*s\" that has not failed", (int)c->step.len,
             c->step.ptr);
    else
        RULE(sp && sp->status == EVS_STEP_RUNNING, c, "step-not-started",
             "outcome of step \"%.*s\" that is not running",
             (int)c->step.len, c->step.ptr);
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

static int on_step_completed(ctx *c, int skipped)
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
        if ((rc = need_path(c, &p)) != 0)
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
    was_done = sp->status == EVS_STEP_COMPLETED ||
               sp->status == EVS_STEP_SKIPPED;
    if (sp->status == EVS_STEP_RETRYING) {
        /* Skipped instead of retried: the retry no longer holds it. */
        long pi = evs__rp_path_pos(r, sp->path_id);
        if (pi >= 0)
            evs__rp_hold(r, &r->paths.v[pi], -1);
    }
    set_step_status(r, sp,
                    skipped ? EVS_STEP_SKIPPED : EVS_STEP_COMPLETED);
    sp->stored_variable = var;
    sp->ended_seq = c->ev->sequence;
    if (was_failure)
        find_failure(r);
    if (var.len &&
        (rc = set_var(r, var, sp->output, 1, c->ev->sequence)) != 0)
        return rc;
    if (sp->iteration >= 0) {
        if (!was_done)
            each_done(r, c->path, c->step);
        return stepname(c) ? 0 : -ENOMEM;
    }
    return note_output(c, sp->output,
                       !(sp->kind.len == 3 &&
                         memcmp(sp->kind.ptr, "end", 3) == 0));
}

/* An `each` step completed as a whole, every iteration done (an empty
 * list has none, and no record before this event): its output is the
 * array of their outputs. */
static int on_each_completed(ctx *c)
{
    evs_replay *r = c->r;
    fields *f = &c->f;
    evs_path_state *p;
    evs_each_state *e, ne;
    evs_span var;
    long i;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
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
         "iterations", (int)c->step.len, c->step.ptr, (long long)f->count,
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
    if (var.len && (rc = set_var(r, var, e->output, 1, c->ev->sequence)))
        return rc;
    return note_output(c, e->output, 1);
}

static int on_step_failed(ctx *c)
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
    set_step_status(r, sp, EVS_STEP_FAILED);
    sp->ended_seq = c->ev->sequence;
    r->exec.failed_path = sp->path_id;
    r->exec.failed_step = sp->name;
    r->exec.failed_iteration = sp->iteration;
    r->exec.failed_seq = c->ev->sequence;
    return 0;
}

static int on_retry_scheduled(ctx *c)
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
    set_step_status(r, sp, EVS_STEP_RETRYING);
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
static int on_step_reset(ctx *c)
{
    evs_replay *r = c->r;
    long i = step_pos(c);
    evs_step_state *sp = i >= 0 ? &r->steps.v[i] : NULL;
    evs_path_state *p;
    int rc, was_failure;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    RULE(sp && sp->status != EVS_STEP_COMPLETED &&
             sp->status != EVS_STEP_SKIPPED,
         c, "reset-done", "reset of step \"%.*s\" that %s",
         (int)c->step.len, c->step.ptr,
         sp ? "has completed" : "never started");
    if (!sp || sp->status == EVS_STEP_COMPLETED ||
        sp->status == EVS_STEP_SKIPPED)
        return 0;
    was_failure = is_failure_point(r, sp);
    if (sp->status != EVS_STEP_RETRYING && p)
        evs__rp_hold(r, p, 1);
    set_step_status(r, sp, EVS_STEP_RETRYING);
    sp->attempts = 0;
    sp->retry_at_us = c->ev->timestamp_us;
    if (was_failure)
        find_failure(r);
    return 0;
}

/* The execution goes on under a changed definition. */
static int on_definition_changed(ctx *c)
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

static int on_path_ended(ctx *c, int failed)
{
    evs_path_state *p;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    if (!p)
        return 0;
    if (failed && (rc = evs__rp_copy(c->r, c->f.error, &p->error)) != 0)
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
static int on_path_cancelled(ctx *c)
{
    evs_replay *r = c->r;
    uint64_t seq = c->ev->sequence;
    evs_path_state *p;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    if (!p)
        return 0;
    if ((rc = evs__rp_copy(r, c->f.error, &p->error)) != 0)
        return rc;
    for (size_t i = 0; i < r->steps.n; i++) {
        evs_step_state *s = &r->steps.v[i];
        if ((s->status != EVS_STEP_RUNNING &&
             s->status != EVS_STEP_RETRYING) ||
            !evs__span_eq(s->path_id, c->path))
            continue;
        set_step_status(r, s, EVS_STEP_CANCELLED);
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
        if (!t->fired_seq && !t->cancelled &&
            evs__span_eq(t->path_id, c->path))
            t->cancelled = 1;
    }
    p->pending = 0;
    evs__rp_set_path_status(r, p, EVS_PATH_CANCELLED);
    p->ended_seq = seq;
    return r->opts.compact
               ? evs__rp_drop(r, EVS__DROP_STEPS | EVS__DROP_WAITS |
                                     EVS__DROP_TIMERS)
               : 0;
}

static int on_exec_ended(ctx *c, evs_exec_status st)
{
    evs_replay *r = c->r;
    int rc;

    if (st == EVS_STATUS_COMPLETED &&
        (rc = evs__rp_copy(r, c->f.outputs, &r->exec.outputs)) != 0)
        return rc;
    if (st == EVS_STATUS_FAILED &&
        (rc = evs__rp_copy(r, c->f.error, &r->exec.error)) != 0)
        return rc;
    if (st == EVS_STATUS_TERMINATED && c->f.reason.len &&
        (rc = evs__rp_copy(r, c->f.reason, &r->exec.error)) != 0)
        return rc;
    if (st == EVS_STATUS_CONTINUED &&
        (rc = str_of(r, c->f.successor, &r->exec.continued_as)) != 0)
        return rc;
    r->exec.status = st;
    r->exec.ended_at_us = c->ev->timestamp_us;
    r->terminal = 1;
    return 0;
}

static int on_pause(ctx *c, int pause)
{
    evs_replay *r = c->r;

    if (pause) {
        RULE(r->exec.status != EVS_STATUS_PAUSED, c, "already-paused",
             "paused while paused");
        if (r->exec.status != EVS_STATUS_PAUSED) {
            r->exec.status_before_pause = r->exec.status;
            r->exec.status = EVS_STATUS_PAUSED;
        }
    } else {
        RULE(r->exec.status == EVS_STATUS_PAUSED, c, "not-paused",
             "resumed while not paused");
        if (r->exec.status == EVS_STATUS_PAUSED)
            r->exec.status = EVS_STATUS_RUNNING;
    }
    return 0;
}

static int on_variable_set(ctx *c)
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
    return set_var(c->r, name, c->f.value, 0, c->ev->sequence);
}

static int on_signal_received(ctx *c)
{
    evs_replay *r = c->r;
    evs_signal_state s;
    evs_span name = c->f.signal.len ? c->f.signal : c->f.name;
    int rc;

    memset(&s, 0, sizeof(s));
    if ((rc = evs__rp_copy(r, c->ev->id, &s.id)) ||
        (rc = str_of(r, name, &s.name)) ||
        (rc = evs__rp_copy(r, c->f.payload, &s.payload)))
        return rc;
    if (!s.name.len)
        s.name = c->step; /* Dive names signals by step */
    s.received_seq = c->ev->sequence;
    ADD(r, signals, &s, (index_map *)NULL, 0);
    return 0;
}

/* Signals are kept in the order received, so their sequences are sorted
 * and a binary search finds one. */
static evs_signal_state *signal_at(evs_replay *r, uint64_t seq)
{
    size_t lo = 0, hi = r->signals.n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->signals.v[mid].received_seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->signals.n && r->signals.v[lo].received_seq == seq
               ? &r->signals.v[lo]
               : NULL;
}

static int consume(ctx *c, int64_t seq)
{
    evs_signal_state *s = seq > 0 ? signal_at(c->r, (uint64_t)seq) : NULL;

    RULE(s && !s->consumed_seq, c, "signal-not-received",
         "consumes signal at sequence %lld, which %s", (long long)seq,
         s                   ? "was already consumed"
         : c->r->opts.compact ? "is not buffered (not received, or "
                               "consumed already)"
                             : "was not received");
    if (s && !s->consumed_seq) {
        s->consumed_seq = c->ev->sequence;
        s->consumed_by_path = c->path;
        s->consumed_by_step = c->step;
        if (c->r->opts.compact)
            return evs__rp_drop(c->r, EVS__DROP_SIGNALS);
    }
    return 0;
}

static int on_signal_consumed(ctx *c)
{
    RULE(c->f.has_signal_seq, c, "data", "signal_consumed without "
                                         "signal_seq");
    if (!c->f.has_signal_seq)
        return 0;
    return consume(c, c->f.signal_seq);
}

/* The pending waits are few (one per waiting path at most), so they are
 * kept in a short list of their positions rather than searched for among
 * every wait of the history. */
static evs_wait_state *pending_wait(evs_replay *r, evs_span path, size_t *k)
{
    for (size_t i = 0; i < r->pend.n; i++) {
        evs_wait_state *w = &r->waits.v[r->pend.v[i]];
        if (evs__span_eq(w->path_id, path)) {
            if (k)
                *k = i;
            return w;
        }
    }
    return NULL;
}

int evs__rp_note_pending(evs_replay *r, size_t pos)
{
    if (!evs__rp_grow(r, (void **)&r->pend.v, &r->pend.cap, r->pend.n,
                      sizeof(*r->pend.v)))
        return -ENOMEM;
    r->pend.v[r->pend.n++] = pos;
    return 0;
}

static int on_wait_started(ctx *c)
{
    evs_replay *r = c->r;
    evs_path_state *p;
    evs_wait_state w;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    RULE(!pending_wait(r, c->path, NULL), c, "wait-pending",
         "path \"%.*s\" already waits", (int)c->path.len, c->path.ptr);
    memset(&w, 0, sizeof(w));
    w.path_id = c->path;
    w.step = c->step;
    if ((rc = str_of(r, c->f.signal, &w.signal)) != 0)
        return rc;
    w.timeout_at_us = time_of(c->f.timeout_at);
    w.started_seq = c->ev->sequence;
    if (!evs__rp_grow(r, (void **)&r->pend.v, &r->pend.cap, r->pend.n,
                      sizeof(*r->pend.v)))
        return -ENOMEM;
    ADD(r, waits, &w, (index_map *)NULL, 0);
    r->pend.v[r->pend.n++] = r->waits.n - 1;
    if (p)
        evs__rp_hold(c->r, p, 1);
    return 0;
}

static int on_wait_ended(ctx *c)
{
    evs_replay *r = c->r;
    size_t k = 0;
    evs_wait_state *w = pending_wait(r, c->path, &k);
    evs_path_state *p;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    RULE(w != NULL, c, "wait-not-started", "path \"%.*s\" does not wait",
         (int)c->path.len, c->path.ptr);
    if (c->f.has_signal_seq && c->f.signal_seq > 0 &&
        (rc = consume(c, c->f.signal_seq)) != 0)
        return rc;
    if (w) {
        r->pend.v[k] = r->pend.v[--r->pend.n];
        w->ended_seq = c->ev->sequence;
        w->timed_out = c->f.timed_out;
        w->signal_seq = c->f.has_signal_seq && c->f.signal_seq > 0
                            ? (uint64_t)c->f.signal_seq
                            : 0;
        if (r->opts.compact && (rc = evs__rp_drop(r, EVS__DROP_WAITS)))
            return rc;
    }
    if (p)
        evs__rp_hold(c->r, p, -1);
    return 0;
}

static int on_timer_started(ctx *c)
{
    evs_replay *r = c->r;
    evs_path_state *p;
    evs_timer_state t;
    int rc;

    if ((rc = need_path(c, &p)) != 0)
        return rc;
    memset(&t, 0, sizeof(t));
    if ((rc = str_of(r, c->f.timer_id, &t.timer_id)) != 0)
        return rc;
    RULE(t.timer_id.len, c, "data", "timer_started without a timer_id");
    RULE(!t.timer_id.len || evs__rp_timer_pos(r, t.timer_id) < 0, c,
         "duplicate-timer", "timer \"%.*s\" is already pending",
         (int)t.timer_id.len, t.timer_id.ptr);
    if (!t.timer_id.len || evs__rp_timer_pos(r, t.timer_id) >= 0)
        return 0;
    t.path_id = c->path;
    t.step = c->step;
    t.fire_at_us = time_of(c->f.fire_at);
    t.started_seq = c->ev->sequence;
    if ((rc = evs__rp_add_timer(r, &t)) != 0)
        return rc;
    if (p)
        evs__rp_hold(c->r, p, 1);
    return 0;
}

static int on_timer_ended(ctx *c, int cancelled)
{
    evs_replay *r = c->r;
    evs_span id;
    long i;
    int rc;

    if ((rc = str_of(r, c->f.timer_id, &id)) != 0)
        return rc;
    RULE(id.len, c, "data", "%s without a timer_id",
         cancelled ? EVS_EV_TIMER_CANCELLED : EVS_EV_TIMER_FIRED);
    if (!id.len)
        return 0;
    i = evs__rp_timer_pos(r, id);
    RULE(i >= 0 && !r->timers.v[i].fired_seq && !r->timers.v[i].cancelled,
         c, "timer-unknown", "timer \"%.*s\" is not pending", (int)id.len,
         id.ptr);
    if (i < 0 || r->timers.v[i].fired_seq || r->timers.v[i].cancelled)
        return 0;
    if (cancelled)
        r->timers.v[i].cancelled = 1;
    else
        r->timers.v[i].fired_seq = c->ev->sequence;
    /* The path the timer held goes on. */
    i = evs__rp_path_pos(r, r->timers.v[i].path_id);
    if (i >= 0)
        evs__rp_hold(r, &r->paths.v[i], -1);
    return r->opts.compact ? evs__rp_drop(r, EVS__DROP_TIMERS) : 0;
}

static int on_version_decision(ctx *c)
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

void evs__rp_settle(evs_replay *r)
{
    if (r->exec.status != EVS_STATUS_RUNNING &&
        r->exec.status != EVS_STATUS_WAITING)
        return;
    r->exec.status = !r->nactive && r->nwaiting ? EVS_STATUS_WAITING
                                                : EVS_STATUS_RUNNING;
}

/* The types of FORMAT.md ("Event types"), found once per event. Any
 * other type is counted and otherwise ignored, its `data` included: only
 * its writer knows what that should hold. The dispatch below has no
 * default, so a type added to the list and not handled fails the build
 * (-Wswitch). */
#define KIND(name, dive) K_##name,
enum ev_kind { K_UNKNOWN = 0, EVS_EVENT_TYPE_MAP(KIND) };
#undef KIND

#define KIND(name, dive)                                                      \
    {EVS_EV_##name, sizeof(EVS_EV_##name) - 1, K_##name},
static const struct {
    const char *name;
    size_t len;
    enum ev_kind kind;
} kinds[] = {EVS_EVENT_TYPE_MAP(KIND)};
#undef KIND

static enum ev_kind kind_of(evs_span type)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (type.len == kinds[i].len &&
            memcmp(type.ptr, kinds[i].name, type.len) == 0)
            return kinds[i].kind;
    return K_UNKNOWN;
}

static int intern_names(evs_replay *r, const evs_event *ev, ctx *c)
{
    evs_span path = ev->path_id.len ? ev->path_id : evs_span_cstr("main");
    long i = evs__rp_path_pos(r, path);
    int rc;

    c->path_i = i;
    c->step_i = -1;
    if (i >= 0)
        c->path = r->paths.v[i].id;
    else if (!ev->path_id.len)
        c->path = path; /* a static string */
    else if ((rc = evs__rp_copy(r, path, &c->path)) != 0)
        return rc;
    i = ev->step_name.len
            ? evs__rp_step_pos(r, c->path, ev->step_name, c->f.iteration)
            : -1;
    if (i >= 0) {
        c->step = r->steps.v[i].name;
        c->step_i = i;
        return 0;
    }
    return evs__rp_copy(r, ev->step_name, &c->step);
}

static int dispatch(ctx *c, enum ev_kind k)
{
    switch (k) {
    case K_EXECUTION_STARTED: return on_execution_started(c);
    case K_PATH_STARTED: return on_path_started(c);
    case K_PATH_BRANCHED: return on_path_branched(c);
    case K_STEP_STARTED: return on_step_started(c);
    case K_STEP_COMPLETED: return on_step_completed(c, 0);
    case K_STEP_FAILED: return on_step_failed(c);
    case K_RETRY_SCHEDULED: return on_retry_scheduled(c);
    case K_STEP_SKIPPED: return on_step_completed(c, 1);
    case K_PATH_COMPLETED: return on_path_ended(c, 0);
    case K_PATH_FAILED: return on_path_ended(c, 1);
    case K_EXECUTION_COMPLETED:
        return on_exec_ended(c, EVS_STATUS_COMPLETED);
    case K_EXECUTION_FAILED: return on_exec_ended(c, EVS_STATUS_FAILED);
    case K_EXECUTION_TERMINATED:
        return on_exec_ended(c, EVS_STATUS_TERMINATED);
    case K_EXECUTION_CONTINUE_AS_NEW:
        return on_exec_ended(c, EVS_STATUS_CONTINUED);
    case K_EXECUTION_PAUSED: return on_pause(c, 1);
    case K_EXECUTION_RESUMED: return on_pause(c, 0);
    case K_VARIABLE_SET: return on_variable_set(c);
    case K_SIGNAL_RECEIVED: return on_signal_received(c);
    case K_SIGNAL_CONSUMED: return on_signal_consumed(c);
    case K_WAIT_STARTED: return on_wait_started(c);
    case K_WAIT_ENDED: return on_wait_ended(c);
    case K_TIMER_STARTED: return on_timer_started(c);
    case K_TIMER_FIRED: return on_timer_ended(c, 0);
    case K_TIMER_CANCELLED: return on_timer_ended(c, 1);
    case K_VERSION_DECISION: return on_version_decision(c);
    case K_STEP_RESET: return on_step_reset(c);
    case K_DEFINITION_CHANGED: return on_definition_changed(c);
    case K_EACH_COMPLETED: return on_each_completed(c);
    case K_PATH_CANCELLED: return on_path_cancelled(c);
    case K_UNKNOWN: break;
    }
    return 0;
}

int evs_replay_apply(evs_replay *r, const evs_event *ev, evs_violation *v)
{
    enum ev_kind k = kind_of(ev->event_type);
    ctx c;
    int rc = 0;

    /* c.f is cleared by read_fields, and only read after it. */
    c.path = c.step = nospan;
    c.path_i = c.step_i = -1;
    c.r = r;
    c.ev = ev;
    c.v = v;
    if (ev->sequence != r->exec.last_seq + 1) {
        rc = violate(&c, "sequence", "sequence %llu after %llu",
                     (unsigned long long)ev->sequence,
                     (unsigned long long)r->exec.last_seq);
        if (rc != 0)
            return rc;
    }
    if (r->exec.last_seq == 0 && k != K_EXECUTION_STARTED) {
        rc = violate(&c, "first-event", "the first event is %.*s, not "
                     EVS_EV_EXECUTION_STARTED, (int)ev->event_type.len,
                     ev->event_type.ptr);
        if (rc != 0)
            return rc;
    }
    if (r->terminal) {
        rc = violate(&c, "after-terminal", "%.*s after the execution "
                     "ended (%s)", (int)ev->event_type.len,
                     ev->event_type.ptr,
                     evs_exec_status_name(r->exec.status));
        if (rc != 0)
            return rc;
    }
    if (k != K_UNKNOWN) {
        if (read_fields(ev->data, &c.f) != 0 &&
            (rc = violate(&c, "data", "data is not a JSON object")) != 0)
            return rc;
        /* Names outlive the event. A path or step the state already
         * holds lends its copy; only new names are copied, so memory
         * follows the state, not the number of events. */
        if ((rc = intern_names(r, ev, &c)) != 0)
            return rc;
        if ((rc = dispatch(&c, k)) != 0)
            return rc;
    }
    r->exec.last_seq = ev->sequence;
    evs__rp_settle(r);
    /* Between events nothing points into the arena but the state. */
    evs__rp_gc_maybe(r);
    return 0;
}
