/*
 * strategies.c: retrying an execution that has ended.
 *
 * Every strategy makes a successor from a prefix of the origin's history:
 * its events 1..N, copied with their sequences and times (new ids, the
 * successor's execution id), with `execution_started` rebuilt to link to
 * the origin (and, for new inputs, to carry them), then at most one event
 * that says what changes (`step_reset`, `step_skipped`). The successor's
 * replayed state is then exactly the origin's at N, plus that change, so
 * running it re-runs nothing that had completed: outputs, branches and
 * `each` progress are all in the copied prefix. The new history is
 * replayed strictly before it is written, and the successor is created
 * with evs_exec_create: it appears whole, linked and with its snapshot,
 * or not at all.
 */
#include "orch_int.h"
#include "formats_shared.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const strategy_names[] = {
    "from_start", "from_failure", "with_new_inputs", "skip_failed", "from_seq"};

const char *evs_retry_strategy_name(evs_retry_strategy s)
{
    return (unsigned)s < sizeof(strategy_names) / sizeof(*strategy_names)
               ? strategy_names[s]
               : "unknown";
}

int evs_retry_strategy_parse(const char *name, evs_retry_strategy *out)
{
    for (size_t i = 0; i < sizeof(strategy_names) / sizeof(*strategy_names);
         i++)
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (evs_retry_strategy)i;
            return 0;
        }
    return -EINVAL;
}

void evs_retry_opts_init(evs_retry_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
}

typedef struct copy {
    const evs_allocator *alloc; /* the store's */
    evs_event_owned *ev;
    size_t n, cap;
    evs__jbuf start;     /* execution_started's new data */
    evs_span origin;     /* the execution retried */
    evs_error_info *err; /* the caller's, may be NULL */
} copy;

static int why(copy *c, int rc, const char *kind, evs_span step,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Says why the retry is refused (orchestrator.h: kind "retry" when the
 * strategy does not apply, the step it is about) and returns rc. */
static int why(copy *c, int rc, const char *kind, evs_span step,
               const char *fmt, ...)
{
    va_list ap;

    if (!c->err)
        return rc;
    evs_error_info_clear(c->err);
    evs__error_set_id(c->err, c->origin.ptr, c->origin.len);
    evs__error_set_step(c->err, step);
    va_start(ap, fmt);
    evs__error_vset(c->err, rc, kind, fmt, ap);
    va_end(ap);
    return rc;
}

/* why() for a history that breaks a rule, as `v` describes it: the
 * origin's, or the successor's that was about to be created. */
static int why_history(copy *c, const evs_error_info *v, int successor)
{
    unsigned long long seq = v->sequence;

    if (successor)
        why(c, v->code, v->kind, (evs_span){0},
            "the new history breaks rule %s at sequence %llu: %s", v->kind, seq,
            v->msg);
    else
        why(c, v->code, v->kind, (evs_span){0},
            "sequence %llu breaks rule %s: %s", seq, v->kind, v->msg);
    if (c->err)
        c->err->sequence = v->sequence;
    return v->code;
}

static int push(copy *c, const evs_event *ev)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        evs_event_owned *nv = evs__realloc(c->alloc, c->ev, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        c->ev = nv;
        c->cap = nc;
    }
    if (evs_event_copy(ev, c->alloc, &c->ev[c->n]) != 0)
        return -ENOMEM;
    c->n++;
    return 0;
}

/* The sequence of the first step_started of `step`, or 0. */
static int first_start(evs_log *log, evs_span step, uint64_t *seq)
{
    evs_cursor *cur;
    evs_event ev;
    int rc;

    *seq = 0;
    if ((rc = evs_cursor_open(log, 1, 0, &cur, NULL)) != 0)
        return rc;
    while ((rc = evs_cursor_next(cur, &ev, NULL, NULL)) == 1)
        if (ev.step_name.len == step.len &&
            memcmp(ev.step_name.ptr, step.ptr, step.len) == 0 &&
            evs__span_eq_cstr(ev.event_type, EVS_EV_STEP_STARTED)) {
            *seq = ev.sequence;
            break;
        }
    evs_cursor_close(cur);
    return rc < 0 ? rc : 0;
}

/* Rebuilds execution_started: the origin's workflow and definition, the
 * inputs (new ones, when given) and a lineage naming the origin. */
static int start_data(copy *c, const evs_event *ev, evs_span origin,
                      const evs_retry_opts *o, uint64_t n, evs_span inputs)
{
    static const char *const keep[] = {"workflow_name", "definition",
                                       "definition_hash", "code_version"};
    evs_span v;
    uint64_t h;
    evs__jbuf *b = &c->start;

    EVS__JB_LIT(b, "{");
    for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++) {
        if (evs__json_get(ev->data, keep[i], &v) != 1)
            continue;
        if (b->len > 1)
            EVS__JB_LIT(b, ",");
        evs__jb_quote(b, evs_span_cstr(keep[i]));
        EVS__JB_LIT(b, ":");
        evs__jb_raw(b, v.ptr, v.len);
    }
    if (!inputs.len && evs__json_get(ev->data, "inputs", &v) == 1)
        inputs = v;
    EVS__JB_LIT(b, ",\"inputs\":");
    evs__jb_json(b, inputs);
    if (inputs.len && evs_json_hash(inputs.ptr, inputs.len, NULL, &h) == 0) {
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
        EVS__JB_LIT(b, ",\"inputs_hash\":");
        evs__jb_quote(b, evs_span_cstr(hex));
    }
    EVS__JB_LIT(b, ",\"lineage\":{\"retry_of\":");
    evs__jb_quote(b, origin);
    EVS__JB_LIT(b, ",\"strategy\":");
    evs__jb_quote(b, evs_span_cstr(evs_retry_strategy_name(o->strategy)));
    EVS__JB_LIT(b, ",\"from_seq\":");
    evs__jb_int(b, (int64_t)n);
    EVS__JB_LIT(b, "}}");
    return b->err ? -ENOMEM : 0;
}

/* Events 1..n of `log`, execution_started rebuilt, into c. */
static int copy_prefix(copy *c, evs_log *log, uint64_t n, evs_span origin,
                       const evs_retry_opts *o, evs_span inputs)
{
    char uuid[EVS_UUID_LEN + 1];
    evs_cursor *cur;
    evs_event ev;
    int rc;

    if ((rc = evs_cursor_open(log, 1, n, &cur, NULL)) != 0)
        return rc;
    while ((rc = evs_cursor_next(cur, &ev, NULL, NULL)) == 1) {
        if ((rc = evs_uuid7(uuid)) != 0)
            break;
        ev.id = (evs_span){uuid, EVS_UUID_LEN};
        ev.execution_id = (evs_span){0};
        ev.batch_first = ev.batch_count = 0;
        if (ev.sequence == 1) {
            if ((rc = start_data(c, &ev, origin, o, n, inputs)) != 0)
                break;
            ev.data = (evs_span){c->start.p, c->start.len};
        }
        if ((rc = push(c, &ev)) != 0)
            break;
    }
    evs_cursor_close(cur);
    return rc < 0 ? rc : 0;
}

/* Appends the event that says what the strategy changes. */
static int push_change(copy *c, const char *type, const evs_exec_state *x,
                       const evs__jbuf *data)
{
    char uuid[EVS_UUID_LEN + 1];
    evs_event ev;
    int rc;

    if ((rc = evs_uuid7(uuid)) != 0)
        return rc;
    memset(&ev, 0, sizeof(ev));
    ev.id = (evs_span){uuid, EVS_UUID_LEN};
    ev.path_id = x->failed_path;
    ev.step_name = x->failed_step;
    ev.sequence = c->n + 1;
    ev.timestamp_us = evs_now_us();
    ev.event_type = evs_span_cstr(type);
    ev.data = (evs_span){data->p, data->len};
    return data->err ? -ENOMEM : push(c, &ev);
}

/* A run's new inputs: any JSON object, compacted (a run declares no
 * inputs to check them against). */
static int run_inputs(evs_span in, const evs_allocator *alloc, char **out,
                      size_t *out_len, evs_error_info *e)
{
    evs__jbuf b = {.alloc = alloc};
    int rc;

    evs_error_info_clear(e);
    if (!in.len)
        in = evs_span_cstr("{}");
    rc = evs__jb_minify(&b, in);
    if (rc == 0 && b.p[0] != '{')
        rc = EVS_EPARSE;
    if (rc == 0)
        rc = evs__jb_finish(&b, out, out_len);
    evs__jb_free(&b);
    if (rc == EVS_EPARSE) {
        e->code = rc;
        e->kind = "inputs";
        snprintf(e->msg, sizeof(e->msg), "a run's inputs are a JSON object");
    }
    return rc;
}

static int retry(evs_store *s, evs_span id, const evs_retry_opts *opts,
                 char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    evs_retry_opts ro, *o = &ro;
    evs_replay *rp = NULL, *nrp = NULL;
    evs_log *log = NULL;
    evs_wf_def *def = NULL;
    evs_snapshot *snap = NULL;
    const evs_exec_state *x;
    evs_error_info ve;
    copy c;
    evs__jbuf d = {.alloc = evs__orch_store_alloc(s)};
    char nid[EVS_ID_MAX + 1], *inputs = NULL;
    size_t inputs_len = 0;
    evs_event *views = NULL;
    uint64_t n = 0;
    int rc, code;

    evs_retry_opts_init(&ro);
    /* Only what the caller's size covers (common.h, options structs). */
    if (evs__opts_read(&ro, sizeof(ro), opts,
                       EVS__OPTS_SIZE(evs_retry_opts, new_id)))
        return -EINVAL;
    memset(&c, 0, sizeof(c));
    c.alloc = c.start.alloc = d.alloc;
    c.origin = id;
    c.err = err;
    if (id.len == 0 || id.len > EVS_ID_MAX || !evs_id_valid(id.ptr, id.len))
        return EVS_EBADID;
    if (o->new_id.len && (o->new_id.len > EVS_ID_MAX ||
                          !evs_id_valid(o->new_id.ptr, o->new_id.len)))
        return EVS_EBADID;
    if ((rc = evs__orch_replay_new(c.alloc, &rp)) != 0)
        goto out;
    /* Only a broken rule is a refusal to explain; the log's own failures
     * leave err->msg empty (orchestrator.h). */
    rc = evs_replay_open(rp, s, id.ptr, id.len, 0, NULL, &ve);
    if (rc == EVS_EHISTORY)
        why_history(&c, &ve, 0);
    if (rc != 0)
        goto out;
    x = evs_replay_exec(rp);
    if (x->status != EVS_STATUS_COMPLETED && x->status != EVS_STATUS_FAILED &&
        x->status != EVS_STATUS_TERMINATED) {
        rc = why(&c, -EINVAL, "retry", (evs_span){0},
                 "execution %.*s is %s: only an execution "
                 "that completed, failed or was terminated is retried",
                 (int)id.len, id.ptr, evs_exec_status_name(x->status));
        goto out;
    }
    /* A durable function's run has no definition: its host's code runs
     * the successor (formats/RUNS.md). */
    code = evs_exec_code_version(s, id.ptr, id.len, NULL, 0);
    if (code < 0) {
        rc = code;
        goto out;
    }
    rc = code ? 0
              : evs_wf_parse(x->definition.ptr, x->definition.len, NULL, NULL,
                             NULL, &def, &ve);
    if (rc != 0) {
        why(&c, rc, ve.kind, evs_span_cstr(ve.step), "its definition: %s%s%s",
            ve.step, ve.step[0] ? ": " : "", ve.msg);
        goto out;
    }
    switch (o->strategy) {
    case EVS_RETRY_FROM_START:
        n = 2; /* execution_started, and the root path's start */
        break;
    case EVS_RETRY_WITH_NEW_INPUTS:
        rc = def ? evs_wf_check_inputs(def, o->inputs, c.alloc, &inputs,
                                       &inputs_len, &ve)
                 : run_inputs(o->inputs, c.alloc, &inputs, &inputs_len, &ve);
        if (rc != 0) {
            why(&c, rc, ve.kind, (evs_span){0}, "inputs: %s", ve.msg);
            goto out;
        }
        n = 2;
        break;
    case EVS_RETRY_FROM_FAILURE:
    case EVS_RETRY_SKIP_FAILED:
        if (x->failed_seq < 2) {
            rc = why(&c, -EINVAL, "retry", (evs_span){0},
                     "execution %.*s has no failed step", (int)id.len, id.ptr);
            goto out;
        }
        n = x->failed_seq - 1;
        break;
    case EVS_RETRY_FROM_SEQ: n = o->from_seq; break;
    default: rc = -EINVAL; goto out;
    }
    if ((rc = evs_log_open(s, id.ptr, id.len, 0, &log, NULL, NULL)) != 0)
        goto out;
    if (o->strategy == EVS_RETRY_WITH_NEW_INPUTS && o->from_step.len) {
        uint64_t first;
        if (def && !evs_wf_find_step(def, o->from_step)) {
            rc = why(&c, -EINVAL, "retry", o->from_step,
                     "the definition has no step \"%.*s\"",
                     (int)o->from_step.len, o->from_step.ptr);
            goto out;
        }
        if ((rc = first_start(log, o->from_step, &first)) != 0)
            goto out;
        if (first == 0) {
            rc = why(&c, -EINVAL, "retry", o->from_step,
                     "step \"%.*s\" never ran", (int)o->from_step.len,
                     o->from_step.ptr);
            goto out;
        }
        n = first - 1;
    }
    if (n < 2 || n >= x->last_seq) {
        rc = why(&c, -EINVAL, "retry", (evs_span){0},
                 "the history to keep must end at a sequence "
                 "from 2 to %llu (before the end)",
                 (unsigned long long)(x->last_seq ? x->last_seq - 1 : 0));
        goto out;
    }
    rc = copy_prefix(&c, log, n, id, o, (evs_span){inputs, inputs_len});
    if (rc != 0)
        goto out;
    if (o->strategy == EVS_RETRY_FROM_FAILURE ||
        o->strategy == EVS_RETRY_SKIP_FAILED) {
        const evs_wf_step *S = evs_wf_find_step(def, x->failed_step);
        EVS__JB_LIT(&d, "{");
        if (o->strategy == EVS_RETRY_SKIP_FAILED) {
            if (o->output.len && evs_json_check(o->output.ptr, o->output.len, 0,
                                                NULL, NULL, NULL) != 0) {
                rc = why(&c, -EINVAL, "retry", x->failed_step,
                         "the output is not JSON");
                goto out;
            }
            EVS__JB_LIT(&d, "\"output\":");
            evs__jb_json(&d, o->output);
            if (S && S->store && x->failed_iteration < 0) {
                EVS__JB_LIT(&d, ",\"stored_variable\":");
                evs__jb_quote(&d, evs_span_cstr(S->store));
            }
        }
        if (x->failed_iteration >= 0) {
            if (d.len > 1)
                EVS__JB_LIT(&d, ",");
            EVS__JB_LIT(&d, "\"iteration\":");
            evs__jb_int(&d, x->failed_iteration);
        }
        EVS__JB_LIT(&d, "}");
        rc = push_change(&c,
                         o->strategy == EVS_RETRY_SKIP_FAILED
                             ? EVS_EV_STEP_SKIPPED
                             : EVS_EV_STEP_RESET,
                         x, &d);
        if (rc != 0)
            goto out;
    }
    /* The successor's history is replayed strictly before it exists. */
    if (o->new_id.len) {
        memcpy(nid, o->new_id.ptr, o->new_id.len);
        nid[o->new_id.len] = '\0';
    } else if ((rc = evs_uuid7(nid)) != 0) {
        goto out;
    }
    if ((rc = evs__orch_replay_new(c.alloc, &nrp)) != 0)
        goto out;
    if (!(views = evs__malloc(c.alloc, c.n * sizeof(*views)))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        views[i] = c.ev[i].ev;
        views[i].execution_id = evs_span_cstr(nid);
        if ((rc = evs_replay_apply(nrp, &views[i], &ve)) != 0) {
            if (rc == EVS_EHISTORY)
                why_history(&c, &ve, 1);
            goto out;
        }
    }
    if ((rc = evs_replay_snapshot_prepare(nrp, (evs_span){0}, &snap)) != 0)
        goto out;
    rc = evs_exec_create_flags(s, nid, strlen(nid), snap, views, c.n,
                               EVS_SNAPSHOT_CACHE);
    if (rc == 0 && out_id)
        memcpy(out_id, nid, strlen(nid) + 1);
out:
    for (size_t i = 0; i < c.n; i++)
        evs_event_free(&c.ev[i]);
    evs__free(c.alloc, c.ev);
    evs__free(c.alloc, views);
    evs__jb_free(&c.start);
    evs__jb_free(&d);
    evs__free(c.alloc, inputs);
    evs_snapshot_free(snap);
    evs_log_close(log);
    evs_wf_free(def);
    evs_replay_free(rp);
    evs_replay_free(nrp);
    return rc;
}

int evs_exec_retry(evs_store *s, evs_span id, const evs_retry_opts *opts,
                   char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    evs_error_info_clear(err);
    return evs__error_rc(err, retry(s, id, opts, out_id, err));
}

/* -EINVAL for bad arguments of evs_exec_retry_json, saying which. */
static int why_arg(evs_error_info *err, const char *what)
{
    evs__error_set(err, -EINVAL, "retry", "retry: %s", what);
    return -EINVAL;
}

/* A string member of the options: unescaped into buf. 0 absent, 1 set,
 * -1 not a string or too long. */
static int opt_str(evs_span obj, const char *key, char *buf, size_t cap,
                   evs_span *out)
{
    evs_span v;
    size_t n;

    if (evs__json_get(obj, key, &v) != 1 || evs__json_is_null(v))
        return 0;
    if (v.len < 2 || v.ptr[0] != '"' || v.len - 2 >= cap)
        return -1;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, buf);
    if (n == (size_t)-1 || memchr(buf, '\0', n))
        return -1;
    *out = (evs_span){buf, n};
    return 1;
}

int evs_exec_retry_json(evs_store *s, const char *id, const char *strategy,
                        const char *options, char out_id[EVS_ID_MAX + 1],
                        evs_error_info *err)
{
    static const char *const known[] = {"inputs", "from_step", "output",
                                        "from_seq", "new_id"};
    char step[256], nid[EVS_ID_MAX + 1];
    evs_retry_opts o;
    evs_span obj, key, val;
    evs__jit it;
    int64_t seq;
    int rc;

    evs_error_info_clear(err);
    evs_retry_opts_init(&o);
    if (!s || !id || !strategy ||
        evs_retry_strategy_parse(strategy, &o.strategy))
        return why_arg(err, "an unknown strategy, or a missing argument");
    obj = evs_span_cstr(options && *options ? options : "{}");
    if (evs_json_check(obj.ptr, obj.len, 0, NULL, NULL, NULL) != 0 ||
        evs__json_iter_begin(&it, obj, '{') != 0)
        return why_arg(err, "the options are not a JSON object");
    while ((rc = evs__json_obj_next(&it, &key, &val)) == 1) {
        size_t k = 0;
        while (k < sizeof(known) / sizeof(*known) &&
               !evs__span_eq_cstr(key, known[k]))
            k++;
        if (k == sizeof(known) / sizeof(*known))
            return why_arg(err, "an unknown option");
    }
    if (evs__json_get(obj, "inputs", &val) == 1 && !evs__json_is_null(val))
        o.inputs = val;
    if (evs__json_get(obj, "output", &val) == 1)
        o.output = val;
    if (evs__json_get(obj, "from_seq", &val) == 1) {
        if (evs__json_int(val, &seq) != 0 || seq < 0)
            return why_arg(err, "from_seq must be a sequence");
        o.from_seq = (uint64_t)seq;
    }
    if (opt_str(obj, "from_step", step, sizeof(step), &o.from_step) < 0 ||
        opt_str(obj, "new_id", nid, sizeof(nid), &o.new_id) < 0)
        return why_arg(err, "from_step and new_id must be strings");
    return evs_exec_retry(s, evs_span_cstr(id), &o, out_id, err);
}
