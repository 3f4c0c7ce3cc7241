/*
 * state_json.c: the replayed state as canonical JSON (FORMAT.md, "Replay
 * state"), and back. Snapshots carry it, so that opening a long execution
 * costs only the events after its snapshot.
 *
 * The writer emits every field, in a fixed order, with JSON values copied
 * byte for byte; equal states therefore give equal bytes, which is what
 * the snapshot-plus-tail property test compares. The reader walks the
 * text with the formats layer's iterator, so JSON values come back
 * byte for byte too (json-c would reformat numbers).
 */
#include "replay_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#define STATE_VERSION 1

typedef evs__jbuf wbuf;

#define LIT(b, s) EVS__JB_LIT(b, s)

/* ,"key": (the comma unless first) */
static void key(wbuf *b, const char *k, int first)
{
    if (!first)
        LIT(b, ",");
    LIT(b, "\"");
    evs__jb_str(b, k);
    LIT(b, "\":");
}

static void str(wbuf *b, const char *k, int first, evs_span s)
{
    key(b, k, first);
    evs__jb_quote(b, s);
}

static void json(wbuf *b, const char *k, int first, evs_span v)
{
    key(b, k, first);
    evs__jb_json(b, v);
}

static void num(wbuf *b, const char *k, int first, int64_t v)
{
    key(b, k, first);
    evs__jb_int(b, v);
}

static void boolean(wbuf *b, const char *k, int first, int v)
{
    key(b, k, first);
    if (v)
        LIT(b, "true");
    else
        LIT(b, "false");
}

static void name(wbuf *b, const char *k, int first, const char *v)
{
    str(b, k, first, evs_span_cstr(v));
}

int evs_replay_state_json(const evs_replay *r, char **out, size_t *out_len)
{
    const evs_exec_state *x = &r->exec;
    wbuf b = {r->alloc, NULL, 0, 0, 0};
    size_t i;

    LIT(&b, "{");
    num(&b, "v", 1, STATE_VERSION);
    name(&b, "status", 0, evs_exec_status_name(x->status));
    name(&b, "status_before_pause", 0,
         evs_exec_status_name(x->status_before_pause));
    str(&b, "execution_id", 0, x->execution_id);
    str(&b, "workflow_name", 0, x->workflow_name);
    json(&b, "inputs", 0, x->inputs);
    json(&b, "outputs", 0, x->outputs);
    json(&b, "error", 0, x->error);
    json(&b, "definition", 0, x->definition);
    str(&b, "definition_hash", 0, x->definition_hash);
    str(&b, "inputs_hash", 0, x->inputs_hash);
    json(&b, "lineage", 0, x->lineage);
    str(&b, "continued_as", 0, x->continued_as);
    num(&b, "started_at", 0, x->started_at_us);
    num(&b, "ended_at", 0, x->ended_at_us);
    num(&b, "last_seq", 0, (int64_t)x->last_seq);
    boolean(&b, "terminal", 0, r->terminal);
    key(&b, "failed", 0);
    LIT(&b, "{");
    str(&b, "path", 1, x->failed_path);
    str(&b, "step", 0, x->failed_step);
    num(&b, "iteration", 0, x->failed_iteration);
    num(&b, "seq", 0, (int64_t)x->failed_seq);
    LIT(&b, "}");

    key(&b, "paths", 0);
    LIT(&b, "[");
    for (i = 0; i < r->paths.n; i++) {
        const evs_path_state *p = &r->paths.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "id", 1, p->id);
        str(&b, "parent", 0, p->parent);
        name(&b, "status", 0, evs_path_status_name(p->status));
        num(&b, "pending", 0, p->pending);
        str(&b, "current_step", 0, p->current_step);
        json(&b, "error", 0, p->error);
        num(&b, "started_seq", 0, (int64_t)p->started_seq);
        num(&b, "ended_seq", 0, (int64_t)p->ended_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "steps", 0);
    LIT(&b, "[");
    for (i = 0; i < r->steps.n; i++) {
        const evs_step_state *s = &r->steps.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "path", 1, s->path_id);
        str(&b, "name", 0, s->name);
        num(&b, "iteration", 0, s->iteration);
        name(&b, "status", 0, evs_step_status_name(s->status));
        num(&b, "attempts", 0, s->attempts);
        json(&b, "input", 0, s->input);
        json(&b, "output", 0, s->output);
        json(&b, "error", 0, s->error);
        str(&b, "stored_variable", 0, s->stored_variable);
        str(&b, "step_hash", 0, s->step_hash);
        str(&b, "kind", 0, s->kind);
        num(&b, "retry_at", 0, s->retry_at_us);
        num(&b, "started_seq", 0, (int64_t)s->started_seq);
        num(&b, "ended_seq", 0, (int64_t)s->ended_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "each", 0);
    LIT(&b, "[");
    for (i = 0; i < r->eaches.n; i++) {
        const evs_each_state *e = &r->eaches.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "path", 1, e->path_id);
        str(&b, "name", 0, e->name);
        num(&b, "count", 0, e->count);
        num(&b, "done", 0, e->done);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "variables", 0);
    LIT(&b, "[");
    for (i = 0; i < r->vars.n; i++) {
        const evs_var_state *v = &r->vars.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "name", 1, v->name);
        json(&b, "value", 0, v->value);
        num(&b, "set_seq", 0, (int64_t)v->set_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "signals", 0);
    LIT(&b, "[");
    for (i = 0; i < r->signals.n; i++) {
        const evs_signal_state *s = &r->signals.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "id", 1, s->id);
        str(&b, "name", 0, s->name);
        json(&b, "payload", 0, s->payload);
        num(&b, "received_seq", 0, (int64_t)s->received_seq);
        num(&b, "consumed_seq", 0, (int64_t)s->consumed_seq);
        str(&b, "path", 0, s->consumed_by_path);
        str(&b, "step", 0, s->consumed_by_step);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "versions", 0);
    LIT(&b, "[");
    for (i = 0; i < r->versions.n; i++) {
        const evs_version_state *v = &r->versions.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "change_id", 1, v->change_id);
        num(&b, "version", 0, v->version);
        num(&b, "min", 0, v->min);
        num(&b, "max", 0, v->max);
        num(&b, "seq", 0, (int64_t)v->seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "timers", 0);
    LIT(&b, "[");
    for (i = 0; i < r->timers.n; i++) {
        const evs_timer_state *t = &r->timers.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "id", 1, t->timer_id);
        str(&b, "path", 0, t->path_id);
        str(&b, "step", 0, t->step);
        num(&b, "fire_at", 0, t->fire_at_us);
        num(&b, "started_seq", 0, (int64_t)t->started_seq);
        num(&b, "fired_seq", 0, (int64_t)t->fired_seq);
        boolean(&b, "cancelled", 0, t->cancelled);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "waits", 0);
    LIT(&b, "[");
    for (i = 0; i < r->waits.n; i++) {
        const evs_wait_state *w = &r->waits.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "path", 1, w->path_id);
        str(&b, "step", 0, w->step);
        str(&b, "signal", 0, w->signal);
        num(&b, "timeout_at", 0, w->timeout_at_us);
        num(&b, "started_seq", 0, (int64_t)w->started_seq);
        num(&b, "ended_seq", 0, (int64_t)w->ended_seq);
        boolean(&b, "timed_out", 0, w->timed_out);
        num(&b, "signal_seq", 0, (int64_t)w->signal_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]}");
    if (b.err) {
        evs__free(r->alloc, b.p);
        return b.err;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reading a state back                                               */
/* ------------------------------------------------------------------ */

#define K(k) (k_.len == sizeof(k) - 1 && memcmp(k_.ptr, k, k_.len) == 0)

/* Each getter leaves its target alone when the member is absent. */
static int g_str(evs_replay *r, evs_span v, evs_span *out)
{
    if (evs__json_is_null(v)) {
        out->ptr = "";
        out->len = 0;
        return 0;
    }
    return evs__rp_copy_str(r, v, out);
}

static int g_json(evs_replay *r, evs_span v, evs_span *out)
{
    if (evs__json_is_null(v)) {
        out->ptr = "";
        out->len = 0;
        return 0;
    }
    return evs__rp_copy(r, v, out);
}

static int g_i64(evs_span v, int64_t *out)
{
    return evs__json_int(v, out) == 0 ? 0 : EVS_EPARSE;
}

static int g_u64(evs_span v, uint64_t *out)
{
    int64_t x;

    if (evs__json_int(v, &x) != 0 || x < 0)
        return EVS_EPARSE;
    *out = (uint64_t)x;
    return 0;
}

static int g_bool(evs_span v, int *out)
{
    *out = v.len == 4 && memcmp(v.ptr, "true", 4) == 0;
    return 0;
}

static int g_enum(evs_span v, const char *(*name)(int), int n, int *out)
{
    for (int i = 0; i < n; i++) {
        const char *s = name(i);
        size_t l = strlen(s);
        if (v.len == l + 2 && memcmp(v.ptr + 1, s, l) == 0) {
            *out = i;
            return 0;
        }
    }
    return EVS_EPARSE;
}

static const char *exec_name(int i)
{
    return evs_exec_status_name((evs_exec_status)i);
}

static const char *path_name(int i)
{
    return evs_path_status_name((evs_path_status)i);
}

static const char *step_name(int i)
{
    return evs_step_status_name((evs_step_status)i);
}

/* Calls fn for every object in the array v. */
static int each_obj(evs_replay *r, evs_span v,
                    int (*fn)(evs_replay *r, evs_span obj))
{
    evs__jit it;
    evs_span el;
    int rc;

    if (evs__json_iter_begin(&it, v, '[') != 0)
        return EVS_EPARSE;
    while ((rc = evs__json_arr_next(&it, &el)) == 1)
        if ((rc = fn(r, el)) != 0)
            return rc;
    return rc < 0 ? EVS_EPARSE : 0;
}

#define MEMBERS(obj)                                                          \
    evs__jit it_;                                                             \
    evs_span k_, v;                                                           \
    int rc = 0, more_;                                                        \
    if (evs__json_iter_begin(&it_, (obj), '{') != 0)                          \
        return EVS_EPARSE;                                                    \
    while (rc == 0 && (more_ = evs__json_obj_next(&it_, &k_, &v)) == 1)

#define END_MEMBERS                                                           \
    if (rc == 0 && more_ < 0)                                                 \
        rc = EVS_EPARSE

static int load_path(evs_replay *r, evs_span obj)
{
    evs_path_state p;
    int st = 0;

    memset(&p, 0, sizeof(p));
    {
        MEMBERS(obj)
        {
            if (K("id")) rc = g_str(r, v, &p.id);
            else if (K("parent")) rc = g_str(r, v, &p.parent);
            else if (K("status")) rc = g_enum(v, path_name, 4, &st);
            else if (K("pending")) {
                int64_t n = 0;
                rc = g_i64(v, &n);
                p.pending = (uint32_t)n;
            }
            else if (K("current_step")) rc = g_str(r, v, &p.current_step);
            else if (K("error")) rc = g_json(r, v, &p.error);
            else if (K("started_seq")) rc = g_u64(v, &p.started_seq);
            else if (K("ended_seq")) rc = g_u64(v, &p.ended_seq);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    p.status = (evs_path_status)st;
    return evs__rp_add_path(r, &p);
}

static int load_step(evs_replay *r, evs_span obj)
{
    evs_step_state s;
    int st = 0;
    int64_t att = 0;

    memset(&s, 0, sizeof(s));
    s.iteration = -1;
    {
        MEMBERS(obj)
        {
            if (K("path")) rc = g_str(r, v, &s.path_id);
            else if (K("name")) rc = g_str(r, v, &s.name);
            else if (K("iteration")) rc = g_i64(v, &s.iteration);
            else if (K("status")) rc = g_enum(v, step_name, 5, &st);
            else if (K("attempts")) rc = g_i64(v, &att);
            else if (K("input")) rc = g_json(r, v, &s.input);
            else if (K("output")) rc = g_json(r, v, &s.output);
            else if (K("error")) rc = g_json(r, v, &s.error);
            else if (K("stored_variable"))
                rc = g_str(r, v, &s.stored_variable);
            else if (K("step_hash")) rc = g_str(r, v, &s.step_hash);
            else if (K("kind")) rc = g_str(r, v, &s.kind);
            else if (K("retry_at")) rc = g_i64(v, &s.retry_at_us);
            else if (K("started_seq")) rc = g_u64(v, &s.started_seq);
            else if (K("ended_seq")) rc = g_u64(v, &s.ended_seq);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    s.status = (evs_step_status)st;
    s.attempts = (uint32_t)att;
    if (s.status == EVS_STEP_FAILED)
        r->nfailed++;
    return evs__rp_add_step(r, &s);
}

static int load_each(evs_replay *r, evs_span obj)
{
    evs_each_state e;

    memset(&e, 0, sizeof(e));
    {
        MEMBERS(obj)
        {
            if (K("path")) rc = g_str(r, v, &e.path_id);
            else if (K("name")) rc = g_str(r, v, &e.name);
            else if (K("count")) rc = g_i64(v, &e.count);
            else if (K("done")) rc = g_i64(v, &e.done);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    return evs__rp_add_each(r, &e);
}

static int load_var(evs_replay *r, evs_span obj)
{
    evs_var_state x;

    memset(&x, 0, sizeof(x));
    {
        MEMBERS(obj)
        {
            if (K("name")) rc = g_str(r, v, &x.name);
            else if (K("value")) rc = g_json(r, v, &x.value);
            else if (K("set_seq")) rc = g_u64(v, &x.set_seq);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    return evs__rp_add_var(r, &x);
}

static int load_signal(evs_replay *r, evs_span obj)
{
    evs_signal_state s;

    memset(&s, 0, sizeof(s));
    {
        MEMBERS(obj)
        {
            if (K("id")) rc = g_str(r, v, &s.id);
            else if (K("name")) rc = g_str(r, v, &s.name);
            else if (K("payload")) rc = g_json(r, v, &s.payload);
            else if (K("received_seq")) rc = g_u64(v, &s.received_seq);
            else if (K("consumed_seq")) rc = g_u64(v, &s.consumed_seq);
            else if (K("path")) rc = g_str(r, v, &s.consumed_by_path);
            else if (K("step")) rc = g_str(r, v, &s.consumed_by_step);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    if (!evs__rp_grow(r, (void **)&r->signals.v, &r->signals.cap,
                      r->signals.n, sizeof(s)))
        return -ENOMEM;
    r->signals.v[r->signals.n++] = s;
    return 0;
}

static int load_version(evs_replay *r, evs_span obj)
{
    evs_version_state x;

    memset(&x, 0, sizeof(x));
    {
        MEMBERS(obj)
        {
            if (K("change_id")) rc = g_str(r, v, &x.change_id);
            else if (K("version")) rc = g_i64(v, &x.version);
            else if (K("min")) rc = g_i64(v, &x.min);
            else if (K("max")) rc = g_i64(v, &x.max);
            else if (K("seq")) rc = g_u64(v, &x.seq);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    return evs__rp_add_version(r, &x);
}

static int load_timer(evs_replay *r, evs_span obj)
{
    evs_timer_state t;

    memset(&t, 0, sizeof(t));
    {
        MEMBERS(obj)
        {
            if (K("id")) rc = g_str(r, v, &t.timer_id);
            else if (K("path")) rc = g_str(r, v, &t.path_id);
            else if (K("step")) rc = g_str(r, v, &t.step);
            else if (K("fire_at")) rc = g_i64(v, &t.fire_at_us);
            else if (K("started_seq")) rc = g_u64(v, &t.started_seq);
            else if (K("fired_seq")) rc = g_u64(v, &t.fired_seq);
            else if (K("cancelled")) rc = g_bool(v, &t.cancelled);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    return evs__rp_add_timer(r, &t);
}

static int load_wait(evs_replay *r, evs_span obj)
{
    evs_wait_state w;

    memset(&w, 0, sizeof(w));
    {
        MEMBERS(obj)
        {
            if (K("path")) rc = g_str(r, v, &w.path_id);
            else if (K("step")) rc = g_str(r, v, &w.step);
            else if (K("signal")) rc = g_str(r, v, &w.signal);
            else if (K("timeout_at")) rc = g_i64(v, &w.timeout_at_us);
            else if (K("started_seq")) rc = g_u64(v, &w.started_seq);
            else if (K("ended_seq")) rc = g_u64(v, &w.ended_seq);
            else if (K("timed_out")) rc = g_bool(v, &w.timed_out);
            else if (K("signal_seq")) rc = g_u64(v, &w.signal_seq);
        }
        END_MEMBERS;
        if (rc != 0)
            return rc;
    }
    if (!evs__rp_grow(r, (void **)&r->waits.v, &r->waits.cap, r->waits.n,
                      sizeof(w)))
        return -ENOMEM;
    r->waits.v[r->waits.n++] = w;
    return w.ended_seq ? 0 : evs__rp_note_pending(r, r->waits.n - 1);
}

static int load_failed(evs_replay *r, evs_span obj)
{
    evs_exec_state *x = &r->exec;

    MEMBERS(obj)
    {
        if (K("path")) rc = g_str(r, v, &x->failed_path);
        else if (K("step")) rc = g_str(r, v, &x->failed_step);
        else if (K("iteration")) rc = g_i64(v, &x->failed_iteration);
        else if (K("seq")) rc = g_u64(v, &x->failed_seq);
    }
    END_MEMBERS;
    return rc;
}

static int load_all(evs_replay *r, evs_span doc)
{
    evs_exec_state *x = &r->exec;
    int64_t ver = -1;
    int st = 0, stp = 0;

    MEMBERS(doc)
    {
        if (K("v")) {
            rc = g_i64(v, &ver);
            if (rc == 0 && ver != STATE_VERSION)
                rc = EVS_EFORMAT;
        }
        else if (K("status")) rc = g_enum(v, exec_name, 8, &st);
        else if (K("status_before_pause"))
            rc = g_enum(v, exec_name, 8, &stp);
        else if (K("execution_id")) rc = g_str(r, v, &x->execution_id);
        else if (K("workflow_name")) rc = g_str(r, v, &x->workflow_name);
        else if (K("inputs")) rc = g_json(r, v, &x->inputs);
        else if (K("outputs")) rc = g_json(r, v, &x->outputs);
        else if (K("error")) rc = g_json(r, v, &x->error);
        else if (K("definition")) rc = g_json(r, v, &x->definition);
        else if (K("definition_hash")) rc = g_str(r, v, &x->definition_hash);
        else if (K("inputs_hash")) rc = g_str(r, v, &x->inputs_hash);
        else if (K("lineage")) rc = g_json(r, v, &x->lineage);
        else if (K("continued_as")) rc = g_str(r, v, &x->continued_as);
        else if (K("started_at")) rc = g_i64(v, &x->started_at_us);
        else if (K("ended_at")) rc = g_i64(v, &x->ended_at_us);
        else if (K("last_seq")) rc = g_u64(v, &x->last_seq);
        else if (K("terminal")) rc = g_bool(v, &r->terminal);
        else if (K("failed")) rc = load_failed(r, v);
        else if (K("paths")) rc = each_obj(r, v, load_path);
        else if (K("steps")) rc = each_obj(r, v, load_step);
        else if (K("each")) rc = each_obj(r, v, load_each);
        else if (K("variables")) rc = each_obj(r, v, load_var);
        else if (K("signals")) rc = each_obj(r, v, load_signal);
        else if (K("versions")) rc = each_obj(r, v, load_version);
        else if (K("timers")) rc = each_obj(r, v, load_timer);
        else if (K("waits")) rc = each_obj(r, v, load_wait);
    }
    END_MEMBERS;
    if (rc == 0 && ver < 0)
        rc = EVS_EPARSE;
    x->status = (evs_exec_status)st;
    x->status_before_pause = (evs_exec_status)stp;
    return rc;
}

int evs_replay_load_state(evs_replay *r, const char *json, size_t len)
{
    evs_span doc = {json, len};
    int rc;

    evs__rp_reset(r);
    /* The iterator trusts its input to be JSON; a state may come from a
     * file, so check that first. */
    if (evs_json_check(json, len, 0, NULL, NULL, NULL) != 0)
        return EVS_EPARSE;
    rc = load_all(r, doc);
    if (rc != 0)
        evs__rp_reset(r);
    return rc;
}
