/*
 * run_step.c: steps. Naming them (name and occurrence), checking each
 * against the journal, beginning, ending and failing them, their retry
 * policies, and the one-call form for C.
 */
#include "run_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int evs__run_name_ok(const char *name)
{
    size_t n = 0;

    if (!name)
        return 0;
    for (; name[n]; n++) {
        unsigned char c = (unsigned char)name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-'))
            return 0;
    }
    return n >= 1 && n <= RUN_NAME_MAX;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of `name` in the occurrence table, growing it first. */
static run_occ *occ_slot(evs_run *r, const char *name)
{
    size_t i, mask;

    if ((r->n_occ + 1) * 2 > r->cap_occ) {
        size_t cap = r->cap_occ ? r->cap_occ * 2 : 16;
        run_occ *t = evs__calloc(r->c->alloc, cap * sizeof(*t));
        if (!t)
            return NULL;
        for (i = 0; i < r->cap_occ; i++) {
            if (!r->occ[i].name)
                continue;
            size_t j = name_hash(r->occ[i].name) & (cap - 1);
            while (t[j].name)
                j = (j + 1) & (cap - 1);
            t[j] = r->occ[i];
        }
        evs__free(r->c->alloc, r->occ);
        r->occ = t;
        r->cap_occ = cap;
    }
    mask = r->cap_occ - 1;
    for (i = name_hash(name) & mask; r->occ[i].name; i = (i + 1) & mask)
        if (strcmp(r->occ[i].name, name) == 0)
            return &r->occ[i];
    if (!(r->occ[i].name = evs__malloc(r->c->alloc, strlen(name) + 1)))
        return NULL;
    strcpy(r->occ[i].name, name);
    r->n_occ++;
    return &r->occ[i];
}

/* The next command of the code: names it (`name`, then "name#2", ...)
 * and checks it against the journal. */
int evs__run_command(evs_run *r, const char *name, const char *kind,
                     char step[RUN_STEP_MAX + 1], evs_error_info *err)
{
    run_occ *o;
    const run_cmd *c;

    if (!evs__run_name_ok(name))
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "a step name is 1 to %d bytes of "
                             "[A-Za-z0-9_.:-]",
                             RUN_NAME_MAX);
    /* The command an interrupted call left: asked for again, it goes on
     * (it is already named, and past its place in the journal). */
    if (r->pending[0]) {
        if (strcmp(name, r->pending_base) != 0 ||
            strcmp(kind, r->pending_kind) != 0)
            return evs__run_fail(r, err, -EBUSY, "argument",
                                 "run %s: the interrupted %s \"%s\" must be "
                                 "called again first",
                                 r->c->id, r->pending_kind, r->pending);
        snprintf(step, RUN_STEP_MAX + 1, "%s", r->pending);
        r->pending[0] = '\0';
        return 0;
    }
    if (!(o = occ_slot(r, name)))
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    if (o->count == 0)
        snprintf(step, RUN_STEP_MAX + 1, "%s", name);
    else
        snprintf(step, RUN_STEP_MAX + 1, "%s#%u", name, o->count + 1);
    if ((c = evs__run_next_cmd(r)) != NULL) {
        if (strcmp(c->step, step) != 0 || strcmp(c->kind, kind) != 0) {
            char asked[RUN_STEP_MAX + 48];
            snprintf(asked, sizeof(asked), "asks for %s \"%s\"", kind, step);
            return evs__run_nondet(r, c, asked, err);
        }
        r->next_cmd++;
    }
    o->count++;
    snprintf(r->named, sizeof(r->named), "%s", step);
    snprintf(r->pending_base, sizeof(r->pending_base), "%s", name);
    snprintf(r->pending_kind, sizeof(r->pending_kind), "%s", kind);
    snprintf(r->key, sizeof(r->key), "%s/%s/%s", r->c->id, r->path, step);
    /* Answered by the history unless something is recorded for it. */
    r->replayed = c != NULL;
    return 0;
}

int evs__run_nondet(evs_run *r, const run_cmd *c, const char *asked,
                    evs_error_info *err)
{
    evs__run_fail(r, err, EVS_ENONDET, "nondeterminism",
                  "run %s: at sequence %llu the history holds %s \"%s\", "
                  "the code %s",
                  r->c->id, (unsigned long long)c->seq, c->kind, c->step,
                  asked);
    if (err) {
        err->sequence = c->seq;
        snprintf(err->step, sizeof(err->step), "%s", c->step);
    }
    return EVS_ENONDET;
}

const evs_step_state *evs__run_find_step(const evs_run *r, const char *step)
{
    return evs_replay_find_step(r->c->rp, evs_span_cstr(r->path),
                                evs_span_cstr(step), -1);
}

/* A retry policy as a definition step's `retry` (WORKFLOWS.md §2.6),
 * parsed by the definitions' own parser: the policy is the retry of a
 * one-step definition, which holds its memory. */
int evs__run_parse_retry(evs_run *r, evs_span json, evs_wf_def **out,
                         evs_error_info *err)
{
    static const char head[] = "{\"name\":\"policy\",\"steps\":[{\"name\":"
                               "\"step\",\"kind\":\"action\",\"action\":"
                               "\"step\",\"retry\":";
    evs__jbuf d = {.alloc = r->c->alloc};
    evs_error_info we;
    int rc;

    if (evs_json_check(json.ptr, json.len, 0, NULL, NULL, NULL) != 0 ||
        json.ptr[0] != '{')
        return evs__run_fail(r, err, EVS_EPARSE, "options",
                             "retry must be a JSON object");
    evs__jb_raw(&d, head, sizeof(head) - 1);
    evs__jb_raw(&d, json.ptr, json.len);
    EVS__JB_LIT(&d, "}]}");
    if (d.err)
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    evs_wf_free(*out);
    *out = NULL;
    rc = evs_wf_parse(d.p, d.len, r->c->alloc, NULL, NULL, out, &we);
    evs__jb_free(&d);
    if (rc != 0)
        return evs__run_fail(r, err, rc, "options", "%s", we.msg);
    return 0;
}

static const evs_wf_retry *policy_of(const evs_wf_def *d)
{
    return d ? &d->steps[0].retry : NULL;
}

/* The policy of the open step: its own, the run's, or one attempt. */
static const evs_wf_retry *step_policy(const evs_run *r)
{
    static const evs_wf_retry once = {.max_attempts = 1};

    if (r->step_policy_def)
        return policy_of(r->step_policy_def);
    if (r->c->policy_def)
        return policy_of(r->c->policy_def);
    return &once;
}

static int parse_step_options(evs_run *r, const char *options,
                              evs_error_info *err)
{
    evs_span key, val;
    evs__jit it;
    int rc;

    evs_wf_free(r->step_policy_def);
    r->step_policy_def = NULL;
    if (!options || !*options)
        return 0;
    if (evs_json_check(options, strlen(options), 0, NULL, NULL, NULL) != 0 ||
        evs__json_iter_begin(&it, evs_span_cstr(options), '{') != 0)
        return evs__run_fail(r, err, EVS_EPARSE, "options",
                             "step options must be a JSON object");
    while ((rc = evs__json_obj_next(&it, &key, &val)) == 1) {
        if (!evs__span_eq_cstr(key, "retry"))
            return evs__run_fail(r, err, EVS_EPARSE, "options",
                                 "unknown step option \"%.*s\"", (int)key.len,
                                 key.ptr);
        if ((rc = evs__run_parse_retry(r, val, &r->step_policy_def, err)) != 0)
            return rc;
    }
    return 0;
}

/* Records an attempt of r->step: step_started, written before the body
 * runs but not synced (EVS_APPEND_NO_SYNC), so that a process that dies
 * in the body leaves it for the runner that takes over, which then
 * records the attempt's re-dispatch (RUNS.md §6); it is made durable
 * with the outcome, and a power loss that loses it loses the outcome
 * too. */
static int start_attempt(evs_run *r, uint32_t attempt, const evs__jbuf *input,
                         evs_error_info *err)
{
    evs__jbuf d = {.alloc = r->c->alloc};
    int rc;

    EVS__JB_LIT(&d, "{\"attempt\":");
    evs__jb_int(&d, attempt);
    if (input->len) {
        EVS__JB_LIT(&d, ",\"input\":");
        evs__run_jb_cat(&d, input);
    }
    EVS__JB_LIT(&d, ",\"kind\":\"" RUN_KIND_STEP "\"}");
    rc = evs__run_emit(r, NULL, EVS_EV_STEP_STARTED, r->step, &d, err);
    evs__jb_free(&d);
    if (rc != 0 || (rc = evs__run_flush_flags(r, EVS_APPEND_NO_SYNC, err)) != 0)
        return rc;
    r->open = 1;
    r->c->open_steps++;
    r->attempt = attempt;
    r->replayed = 0;
    return EVS_STEP_RUN;
}

/* Hands out attempt `attempt` of r->step again after a takeover:
 * step_redispatched, durable before the body runs, so that the history
 * shows every dispatch whose body may have run. */
static int redispatch(evs_run *r, uint32_t attempt, evs_error_info *err)
{
    evs__jbuf d = {.alloc = r->c->alloc};
    int rc;

    if ((rc = evs__run_note_takeover(r, err)) != 0)
        return rc;
    evs__redispatch_data(&d, attempt, -1, evs_span_cstr(r->key),
                         r->c->takeover_seq);
    rc = evs__run_emit(r, NULL, EVS_EV_STEP_REDISPATCHED, r->step, &d, err);
    evs__jb_free(&d);
    if (rc != 0 || (rc = evs__run_flush(r, err)) != 0)
        return rc;
    r->open = 1;
    r->c->open_steps++;
    r->attempt = attempt;
    r->replayed = 0;
    return EVS_STEP_RUN;
}

static int step_begin(evs_run *r, const char *name, const char *input,
                      const char *options, evs_error_info *err)
{
    const evs_step_state *sp;
    evs__jbuf in = {.alloc = r->c->alloc};
    int rc;

    if (r->retrying[0] && name && strcmp(name, r->retrying_base) == 0) {
        /* The step whose retry was scheduled, begun again. */
        if ((rc = evs__run_usable(r, err)) != 0 ||
            (rc = evs__run_gate(r, err)) != 0)
            return rc;
    } else if ((rc = evs__run_idle(r, err)) != 0) {
        return rc;
    }
    if ((rc = evs__run_check_json(r, input, "the step's input", &in, err)) ||
        (rc = parse_step_options(r, options, err)))
        goto out;
    if (!input || !*input)
        in.len = 0;
    if (r->retrying[0]) {
        snprintf(r->step, sizeof(r->step), "%s", r->retrying);
    } else if ((rc = evs__run_command(r, name, RUN_KIND_STEP, r->step, err)) !=
               0) {
        goto out;
    }
    sp = evs__run_find_step(r, r->step);
    if (!sp) {
        rc = start_attempt(r, 1, &in, err);
        goto out;
    }
    switch (sp->status) {
    case EVS_STEP_COMPLETED:
    case EVS_STEP_SKIPPED:
        rc = evs__run_set(&r->result, sp->output) ? -ENOMEM : EVS_STEP_REPLAYED;
        break;
    case EVS_STEP_FAILED:
        if (evs__run_set(&r->error, sp->error) != 0)
            rc = -ENOMEM;
        else
            rc = evs__run_fail(r, err, EVS_EFAILED, "step",
                               "run %s: step \"%s\" failed: %s", r->c->id,
                               r->step, r->error.p);
        break;
    case EVS_STEP_CANCELLED:
        rc = evs__run_fail(r, err, -ECANCELED, "step",
                           "run %s: step \"%s\" was cancelled", r->c->id,
                           r->step);
        break;
    case EVS_STEP_RETRYING:
        /* Remembered, so that a suspended begin is begun again. */
        snprintf(r->retrying, sizeof(r->retrying), "%s", r->step);
        snprintf(r->retrying_base, sizeof(r->retrying_base), "%s", name);
        if ((rc = evs__run_wait_until(r, sp->retry_at_us, err)) != 0)
            break;
        sp = evs__run_find_step(r, r->step);
        r->retrying[0] = '\0';
        rc = start_attempt(r, sp->attempts + 1, &in, err);
        break;
    case EVS_STEP_RUNNING:
        /* Begun by the runner this one took over from, its start durable
         * and its outcome not: the same attempt runs again, recorded
         * (and made durable) first. Otherwise (a close in between) it
         * runs again as a new attempt. */
        if (r->c->taking_over ||
            (r->c->takeover_seq && sp->started_seq <= r->c->from_seq))
            rc = redispatch(r, sp->attempts, err);
        else
            rc = start_attempt(r, sp->attempts + 1, &in, err);
        break;
    }
out:
    evs__jb_free(&in);
    if (rc == -ENOMEM)
        evs__run_fail(r, err, rc, "memory", "out of memory");
    return rc;
}

int evs_run_step_begin(evs_run *r, const char *name, const char *input,
                       const char *options, evs_error_info *err)
{
    int rc;

    if (err)
        evs_error_info_clear(err);
    pthread_mutex_lock(&r->c->mu);
    rc = step_begin(r, name, input, options, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

static int step_end(evs_run *r, const char *output, evs_error_info *err)
{
    evs__jbuf out = {.alloc = r->c->alloc}, d = {.alloc = r->c->alloc};
    int rc;

    if ((rc = evs__run_usable(r, err)) != 0)
        return rc;
    if (!r->open)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "run %s: no step is open", r->c->id);
    if ((rc = evs__run_check_json(r, output, "the step's output", &out, err)))
        goto out;
    EVS__JB_LIT(&d, "{\"output\":");
    evs__run_jb_cat(&d, &out);
    EVS__JB_LIT(&d, "}");
    r->open = 0;
    r->c->open_steps--;
    if ((rc = evs__run_emit(r, NULL, EVS_EV_STEP_COMPLETED, r->step, &d,
                            err)) == 0 &&
        (rc = evs__run_flush(r, err)) == 0 &&
        evs__run_set(&r->result, (evs_span){out.p, out.len}) != 0)
        rc = evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
out:
    evs__jb_free(&out);
    evs__jb_free(&d);
    return rc;
}

int evs_run_step_end(evs_run *r, const char *output, evs_error_info *err)
{
    int rc;

    if (err)
        evs_error_info_clear(err);
    pthread_mutex_lock(&r->c->mu);
    rc = step_end(r, output, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

static int step_fail(evs_run *r, const char *type, const char *message,
                     int retryable, evs_error_info *err)
{
    const evs_wf_retry *pol = step_policy(r);
    evs__jbuf e = {.alloc = r->c->alloc}, d = {.alloc = r->c->alloc};
    int64_t delay_ms, fire_at;
    int rc, again;

    if ((rc = evs__run_usable(r, err)) != 0)
        return rc;
    if (!r->open)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "run %s: no step is open", r->c->id);
    if (!type || !*type)
        type = "error";
    if (!message)
        message = "";
    EVS__JB_LIT(&e, "{\"type\":");
    evs__jb_quote(&e, evs_span_cstr(type));
    EVS__JB_LIT(&e, ",\"message\":");
    evs__jb_quote(&e, evs_span_cstr(message));
    EVS__JB_LIT(&e, ",\"retryable\":");
    evs__jb_str(&e, retryable ? "true" : "false");
    EVS__JB_LIT(&e, "}");
    EVS__JB_LIT(&d, "{\"error\":");
    evs__run_jb_cat(&d, &e);
    EVS__JB_LIT(&d, "}");
    r->open = 0;
    r->c->open_steps--;
    again =
        evs_wf_retry_allows(pol, r->attempt, evs_span_cstr(type), retryable);
    if ((rc = evs__run_emit(r, NULL, EVS_EV_STEP_FAILED, r->step, &d, err)))
        goto out;
    if (again) {
        delay_ms = evs_wf_retry_delay_ms(pol, r->attempt, evs__run_random(r));
        fire_at = evs_now_us() + delay_ms * 1000;
        d.len = 0;
        EVS__JB_LIT(&d, "{\"attempt\":");
        evs__jb_int(&d, r->attempt);
        EVS__JB_LIT(&d, ",\"fire_at\":");
        evs__jb_time(&d, fire_at);
        EVS__JB_LIT(&d, ",\"delay_ms\":");
        evs__jb_int(&d, delay_ms);
        EVS__JB_LIT(&d, "}");
        if ((rc = evs__run_emit(r, NULL, EVS_EV_RETRY_SCHEDULED, r->step, &d,
                                err)) != 0)
            goto out;
    }
    if ((rc = evs__run_flush(r, err)) != 0)
        goto out;
    if (evs__run_set(&r->error, (evs_span){e.p, e.len}) != 0) {
        rc = evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
        goto out;
    }
    if (again) {
        char *hash = strrchr(r->step, '#');
        snprintf(r->retrying, sizeof(r->retrying), "%s", r->step);
        snprintf(r->retrying_base, sizeof(r->retrying_base), "%.*s",
                 (int)(hash ? (size_t)(hash - r->step) : strlen(r->step)),
                 r->step);
        rc = EVS_STEP_RETRY;
    } else {
        rc = evs__run_fail(r, err, EVS_EFAILED, "step",
                           "run %s: step \"%s\" failed: %s: %s", r->c->id,
                           r->step, type, message);
    }
out:
    evs__jb_free(&e);
    evs__jb_free(&d);
    return rc;
}

int evs_run_step_fail(evs_run *r, const char *type, const char *message,
                      int retryable, evs_error_info *err)
{
    int rc;

    if (err)
        evs_error_info_clear(err);
    pthread_mutex_lock(&r->c->mu);
    rc = step_fail(r, type, message, retryable, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

uint32_t evs_run_step_attempt(evs_run *r)
{
    uint32_t a;

    pthread_mutex_lock(&r->c->mu);
    a = r->open ? r->attempt : 0;
    pthread_mutex_unlock(&r->c->mu);
    return a;
}

const char *evs_run_step_key(evs_run *r)
{
    return r->named[0] ? r->key : "";
}

const char *evs_run_step_name(evs_run *r)
{
    return r->named;
}

int evs_run_step_replayed(evs_run *r)
{
    return r->named[0] && r->replayed;
}
int evs_run_step_output(evs_run *r, const char *output)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = evs__run_check_json(r, output, "the step's output", &r->fn_out, NULL);
    r->fn_has_out = rc == 0;
    r->fn_oom |= rc == -ENOMEM;
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

int evs_run_step_error(evs_run *r, const char *type, const char *message,
                       int retryable)
{
    int rc;

    pthread_mutex_lock(&r->c->mu);
    rc = evs__run_set(&r->fn_type,
                      evs_span_cstr(type && *type ? type : "error")) ||
                 evs__run_set(&r->fn_msg, evs_span_cstr(message ? message : ""))
             ? -ENOMEM
             : 0;
    r->fn_has_err = rc == 0;
    r->fn_oom |= rc == -ENOMEM;
    r->fn_retryable = retryable;
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

int evs_run_step(evs_run *r, const char *name, const char *input,
                 const char *options, evs_step_fn fn, void *arg,
                 const char **output, evs_error_info *err)
{
    int rc, frc;

    if (output)
        *output = NULL;
    for (;;) {
        rc = evs_run_step_begin(r, name, input, options, err);
        if (rc == EVS_STEP_REPLAYED)
            break;
        if (rc != EVS_STEP_RUN)
            return rc;
        pthread_mutex_lock(&r->c->mu);
        r->fn_has_out = r->fn_has_err = r->fn_oom = 0;
        pthread_mutex_unlock(&r->c->mu);
        frc = fn(arg, r, input);
        if (r->fn_oom) {
            /* Not the step's outcome: the library could not keep it. The
             * step stays unrecorded, and runs again on a re-run. */
            pthread_mutex_lock(&r->c->mu);
            rc = evs__run_broken(r, -ENOMEM, err, "keeping a step's outcome");
            pthread_mutex_unlock(&r->c->mu);
            return rc;
        }
        if (frc == 0) {
            rc = evs_run_step_end(r, r->fn_has_out ? r->fn_out.p : NULL, err);
            if (rc != 0)
                return rc;
            break;
        }
        if (r->fn_has_err)
            rc = evs_run_step_fail(r, r->fn_type.p, r->fn_msg.p,
                                   r->fn_retryable, err);
        else
            rc = evs_run_step_fail(r, "error", evs_strerror(frc), 1, err);
        if (rc != EVS_STEP_RETRY)
            return rc;
    }
    if (output)
        *output = evs_run_result(r);
    return 0;
}
