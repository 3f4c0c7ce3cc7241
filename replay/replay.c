/*
 * replay.c: applying events to the replayed state, one at a time, and
 * checking the history rules of FORMAT.md ("History rules") as it goes:
 * the replayer's lifecycle, the names of its statuses, reading an
 * event's `data` once, and the dispatch by event type to the handlers of
 * replay_exec.c, replay_step.c and replay_wait.c (replay_apply.h).
 *
 * Every rule is checked before anything changes, so in strict mode an
 * event that breaks one leaves the state exactly as it was.
 */
#include "replay_apply.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const exec_names[] = {
    "pending",   "running", "waiting",    "paused",
    "completed", "failed",  "terminated", "continued",
};
static const char *const path_names[] = {"active", "waiting", "completed",
                                         "failed", "cancelled"};
static const char *const step_names[] = {"running",  "completed", "failed",
                                         "retrying", "skipped",   "cancelled"};

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
    o->size = sizeof(*o);
}

int evs_replay_new(const evs_replay_opts *opts, evs_replay **out)
{
    evs_replay_opts o;
    evs_replay *r;

    evs_replay_opts_init(&o);
    /* Only what the caller's size covers (common.h, options structs). */
    if (opts && evs__opts_read(&o, sizeof(o), opts,
                               EVS__OPTS_SIZE(evs_replay_opts, gc_min)))
        return -EINVAL;
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

/* The length is a constant in the memcmp, so that the compiler compares
 * a few words in place instead of calling memcmp for every member. */
#define KEY(k)                                                                 \
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
        if (KEY("output"))
            f->output = val;
        else if (KEY("stored_variable"))
            f->stored_variable = val;
        else if (KEY("attempt"))
            f->has_attempt = evs__json_int(val, &f->attempt) == 0;
        else if (KEY("iteration"))
            f->has_iteration = evs__json_int(val, &f->iteration) == 0;
        else if (KEY("error"))
            f->error = val;
        else if (KEY("input"))
            f->input = val;
        else if (KEY("count"))
            f->has_count = evs__json_int(val, &f->count) == 0;
        else if (KEY("step_hash"))
            f->step_hash = val;
        else if (KEY("kind"))
            f->kind = val;
        else if (KEY("current_step"))
            f->current_step = val;
        else if (KEY("parent"))
            f->parent = val;
        else if (KEY("new_paths"))
            f->new_paths = val;
        else if (KEY("workflow_name"))
            f->workflow_name = val;
        else if (KEY("inputs"))
            f->inputs = val;
        else if (KEY("outputs"))
            f->outputs = val;
        else if (KEY("definition"))
            f->definition = val;
        else if (KEY("definition_hash"))
            f->definition_hash = val;
        else if (KEY("inputs_hash"))
            f->inputs_hash = val;
        else if (KEY("lineage"))
            f->lineage = val;
        else if (KEY("name"))
            f->name = val;
        else if (KEY("value"))
            f->value = val;
        else if (KEY("signal"))
            f->signal = val;
        else if (KEY("payload"))
            f->payload = val;
        else if (KEY("signal_seq"))
            f->has_signal_seq = evs__json_int(val, &f->signal_seq) == 0;
        else if (KEY("timer_id"))
            f->timer_id = val;
        else if (KEY("fire_at"))
            f->fire_at = val;
        else if (KEY("timeout_at"))
            f->timeout_at = val;
        else if (KEY("delay_ms"))
            f->has_delay = evs__json_int(val, &f->delay_ms) == 0;
        else if (KEY("timed_out"))
            f->timed_out = val.len == 4 && memcmp(val.ptr, "true", 4) == 0;
        else if (KEY("change_id"))
            f->change_id = val;
        else if (KEY("version"))
            f->has_version = evs__json_int(val, &f->version) == 0;
        else if (KEY("min"))
            f->has_min = evs__json_int(val, &f->min) == 0;
        else if (KEY("max"))
            f->has_max = evs__json_int(val, &f->max) == 0;
        else if (KEY("successor"))
            f->successor = val;
        else if (KEY("reason"))
            f->reason = val;
        else if (KEY("runner"))
            f->runner = val;
        else if (KEY("by"))
            f->by = val;
        else if (KEY("from_seq"))
            f->has_from_seq = evs__json_int(val, &f->from_seq) == 0;
        else if (KEY("takeover_seq"))
            f->has_takeover_seq = evs__json_int(val, &f->takeover_seq) == 0;
    }
    return rc < 0 ? -1 : 0;
}

int evs__rp_violate(ctx *c, const char *rule, const char *fmt, ...)
{
    int tolerant = c->r->opts.tolerant;
    evs_error_info tmp, *v = tolerant ? &tmp : c->err;
    evs_span id = c->ev->execution_id;
    va_list ap;

    /* Strict mode fills the caller's detail; tolerant mode hands its own
     * to the hook and leaves the caller's alone (replay.h). */
    if (!v || (tolerant && !c->r->opts.on_violation))
        return tolerant ? 0 : EVS_EHISTORY;
    if (!id.len)
        id = c->r->exec.execution_id;
    evs_error_info_clear(v);
    evs__error_set_id(v, id.ptr, id.len);
    v->sequence = c->ev->sequence;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    v->code = EVS_EHISTORY;
    v->kind = rule;
    if (!tolerant)
        return EVS_EHISTORY;
    return c->r->opts.on_violation(c->r->opts.arg, v);
}

/* Checks that the event's path exists and is live. */
int evs__rp_need_path(ctx *c, evs_path_state **out)
{
    evs_path_state *p = live_path(c);

    RULE(p != NULL, c, "unknown-path", "path \"%.*s\" does not exist",
         (int)c->path.len, c->path.ptr);
    RULE(!p || is_live(p), c, "path-ended",
         "path \"%.*s\" has already ended (%s)", (int)c->path.len, c->path.ptr,
         p ? evs_path_status_name(p->status) : "");
    *out = p;
    return 0;
}

/* Sets a variable. `held` says the value is already in the arena (a
 * step's output), so the variable can share it instead of copying it. */
int evs__rp_set_var(evs_replay *r, evs_span name, evs_span value, int held,
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

int evs__rp_new_path(evs_replay *r, evs_span id, evs_span parent, evs_span step,
                     uint64_t seq)
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

void evs__rp_settle(evs_replay *r)
{
    if (r->exec.status != EVS_STATUS_RUNNING &&
        r->exec.status != EVS_STATUS_WAITING)
        return;
    r->exec.status =
        !r->nactive && r->nwaiting ? EVS_STATUS_WAITING : EVS_STATUS_RUNNING;
}

/* The types of FORMAT.md ("Event types"), found once per event. Any
 * other type is counted and otherwise ignored, its `data` included: only
 * its writer knows what that should hold. The dispatch below has no
 * default, so a type added to the list and not handled fails the build
 * (-Wswitch). */
#define KIND(name, dive) K_##name,
enum ev_kind { K_UNKNOWN = 0, EVS_EVENT_TYPE_MAP(KIND) };
#undef KIND

#define KIND(name, dive) {EVS_EV_##name, sizeof(EVS_EV_##name) - 1, K_##name},
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
    case K_EXECUTION_STARTED: return evs__rp_on_execution_started(c);
    case K_PATH_STARTED: return evs__rp_on_path_started(c);
    case K_PATH_BRANCHED: return evs__rp_on_path_branched(c);
    case K_STEP_STARTED: return evs__rp_on_step_started(c);
    case K_STEP_COMPLETED: return evs__rp_on_step_completed(c, 0);
    case K_STEP_FAILED: return evs__rp_on_step_failed(c);
    case K_RETRY_SCHEDULED: return evs__rp_on_retry_scheduled(c);
    case K_STEP_SKIPPED: return evs__rp_on_step_completed(c, 1);
    case K_PATH_COMPLETED: return evs__rp_on_path_ended(c, 0);
    case K_PATH_FAILED: return evs__rp_on_path_ended(c, 1);
    case K_EXECUTION_COMPLETED:
        return evs__rp_on_exec_ended(c, EVS_STATUS_COMPLETED);
    case K_EXECUTION_FAILED: return evs__rp_on_exec_ended(c, EVS_STATUS_FAILED);
    case K_EXECUTION_TERMINATED:
        return evs__rp_on_exec_ended(c, EVS_STATUS_TERMINATED);
    case K_EXECUTION_CONTINUE_AS_NEW:
        return evs__rp_on_exec_ended(c, EVS_STATUS_CONTINUED);
    case K_EXECUTION_PAUSED: return evs__rp_on_pause(c, 1);
    case K_EXECUTION_RESUMED: return evs__rp_on_pause(c, 0);
    case K_VARIABLE_SET: return evs__rp_on_variable_set(c);
    case K_SIGNAL_RECEIVED: return evs__rp_on_signal_received(c);
    case K_SIGNAL_CONSUMED: return evs__rp_on_signal_consumed(c);
    case K_WAIT_STARTED: return evs__rp_on_wait_started(c);
    case K_WAIT_ENDED: return evs__rp_on_wait_ended(c);
    case K_TIMER_STARTED: return evs__rp_on_timer_started(c);
    case K_TIMER_FIRED: return evs__rp_on_timer_ended(c, 0);
    case K_TIMER_CANCELLED: return evs__rp_on_timer_ended(c, 1);
    case K_VERSION_DECISION: return evs__rp_on_version_decision(c);
    case K_STEP_RESET: return evs__rp_on_step_reset(c);
    case K_DEFINITION_CHANGED: return evs__rp_on_definition_changed(c);
    case K_EACH_COMPLETED: return evs__rp_on_each_completed(c);
    case K_PATH_CANCELLED: return evs__rp_on_path_cancelled(c);
    case K_EXECUTION_TAKEN_OVER: return evs__rp_on_taken_over(c);
    case K_STEP_REDISPATCHED: return evs__rp_on_step_redispatched(c);
    case K_HISTORY_WARNING: return evs__rp_on_history_warning(c);
    case K_UNKNOWN: break;
    }
    return 0;
}

static int apply(evs_replay *r, const evs_event *ev, evs_error_info *err)
{
    enum ev_kind k = kind_of(ev->event_type);
    ctx c;
    int rc = 0;

    /* c.f is cleared by read_fields, and only read after it. */
    c.path = c.step = nospan;
    c.path_i = c.step_i = -1;
    c.r = r;
    c.ev = ev;
    c.err = err;
    if (ev->sequence != r->exec.last_seq + 1) {
        rc = evs__rp_violate(&c, "sequence", "sequence %llu after %llu",
                             (unsigned long long)ev->sequence,
                             (unsigned long long)r->exec.last_seq);
        if (rc != 0)
            return rc;
    }
    if (r->exec.last_seq == 0 && k != K_EXECUTION_STARTED) {
        rc = evs__rp_violate(
            &c, "first-event",
            "the first event is %.*s, not " EVS_EV_EXECUTION_STARTED,
            (int)ev->event_type.len, ev->event_type.ptr);
        if (rc != 0)
            return rc;
    }
    if (r->terminal) {
        rc = evs__rp_violate(&c, "after-terminal",
                             "%.*s after the execution "
                             "ended (%s)",
                             (int)ev->event_type.len, ev->event_type.ptr,
                             evs_exec_status_name(r->exec.status));
        if (rc != 0)
            return rc;
    }
    if (k != K_UNKNOWN) {
        if (read_fields(ev->data, &c.f) != 0 &&
            (rc = evs__rp_violate(&c, "data", "data is not a JSON object")) !=
                0)
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

int evs_replay_apply(evs_replay *r, const evs_event *ev, evs_error_info *err)
{
    int rc = apply(r, ev, err);

    if (rc == -ENOMEM && err) {
        evs_error_info_clear(err);
        evs__error_set(err, rc, "", "out of memory");
    }
    return rc;
}
