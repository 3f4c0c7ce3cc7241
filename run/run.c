/*
 * run.c: opening, replaying and closing a run; recording its events;
 * reading it. What happens between calls and while a call waits is in
 * run_gate.c.
 */
#include "run_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS_DEFAULT 50

int evs__run_set(evs__jbuf *b, evs_span json)
{
    b->len = 0;
    b->err = 0;
    evs__jb_raw(b, json.ptr, json.len);
    if (!json.len)
        EVS__JB_LIT(b, "null");
    evs__jb_raw(b, "", 1); /* the NUL */
    if (b->err)
        return -ENOMEM;
    b->len--;
    return 0;
}

int evs__run_fail(evs_run *r, evs_error_info *err, int code, const char *kind,
                  const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    evs_error_info_clear(err);
    err->code = code;
    err->kind = kind ? kind : "";
    evs__error_set_id(err, r->c->id, r->c->id_len);
    err->sequence = r->c->rec ? evs_recorder_last_seq(r->c->rec) : 0;
    /* The command the call is about, once it is named. */
    snprintf(err->step, sizeof(err->step), "%s", r->step);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

/* A failed write leaves the replayer ahead of the log: nothing more may
 * be recorded through this handle. */
int evs__run_broken(evs_run *r, int rc, evs_error_info *err, const char *what)
{
    /* Refused for the lease (the append's fencing found another runner's
     * claim, or the renewal did first and the log is poisoned). */
    if (rc == EVS_EPOISONED)
        evs__run_lease_settle(r->c);
    if (rc == EVS_ELEASE ||
        (rc == EVS_EPOISONED && atomic_load(&r->c->lease_lost)))
        return evs__run_lease_lost(r, err);
    if (!r->c->broken) {
        r->c->broken = 1;
        r->c->broken_rc = rc;
    }
    /* What is buffered was never acknowledged, and may be half of a
     * decision: none of it may reach the log. */
    if (r->c->rec)
        evs_recorder_discard(r->c->rec);
    return evs__run_fail(r, err, rc, rc == -ENOMEM ? "memory" : "store",
                         "run %s: %s failed (%s); close the run and run its "
                         "code again",
                         r->c->id, what, evs_strerror(rc));
}

/*
 * History limits (FORMAT.md §3.1, RUNS.md §5). Before an event is
 * recorded: would the history, with what is buffered and this event,
 * pass the hard limit? Then the run fails instead, as evs_run_fail
 * would fail it, with the error type "history_limit", in one append
 * that ends it (which the store lets pass its limit by a reserve), and
 * every later call on the handle returns EVS_ELIMIT.
 */
static int limit_reached(evs_run *r, const evs_event *ev, evs_error_info *err)
{
    run_core *c = r->c;
    evs__limits l = c->lim;
    evs__jbuf e = {.alloc = c->alloc}, d = {.alloc = c->alloc};
    char why[160];
    int rc;

    if (c->limit_failing)
        return 0;
    if (evs_event_type_is_terminal(ev->event_type)) {
        l.max_events += l.max_events < EVS_LIMIT_NONE - EVS_LIMIT_RESERVE_EVENTS
                            ? EVS_LIMIT_RESERVE_EVENTS
                            : 0;
        l.max_bytes += l.max_bytes < EVS_LIMIT_NONE - EVS_LIMIT_RESERVE_BYTES
                           ? EVS_LIMIT_RESERVE_BYTES
                           : 0;
    }
    if (!evs__limits_past(&l, ev->sequence,
                          evs_log_size(c->log) +
                              evs_recorder_pending_bytes(c->rec) +
                              evs_line_encoded_max(ev),
                          why, sizeof(why)))
        return 0;
    evs__limits_log(c->s, EVS_LOG_ERROR, c->id, "run failed: its %s", why);
    c->limit_failing = 1;
    evs__limits_error(&e, why);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__run_jb_cat(&d, &e);
    EVS__JB_LIT(&d, "}");
    if ((rc = evs__run_cancel_paths(r, why, 1, err)) == 0 &&
        (rc = evs__run_emit_on(r, "main", NULL, EVS_EV_PATH_FAILED, "", &d,
                               err)) == 0 &&
        (rc = evs__run_emit_on(r, "main", NULL, EVS_EV_EXECUTION_FAILED, "",
                               &d, err)) == 0 &&
        (rc = evs__run_flush(r, err)) == 0) {
        evs__run_save_snapshot(r);
        evs__run_set(&r->error, (evs_span){e.p, e.len});
    }
    evs__jb_free(&e);
    evs__jb_free(&d);
    c->limit_failing = 0;
    if (rc != 0)
        return rc;
    /* Ended: nothing more may be recorded through this handle. */
    c->broken = 1;
    c->broken_rc = EVS_ELIMIT;
    snprintf(c->limit_why, sizeof(c->limit_why), "%s", why);
    pthread_cond_broadcast(&c->changed);
    return evs__run_fail(r, err, EVS_ELIMIT, "limit", "run %s failed: its %s",
                         c->id, why);
}

/* After an event is recorded: the history_warning, once (the state says
 * whether it was recorded, so a re-run does not record it again). */
static void limit_warn(evs_run *r)
{
    run_core *c = r->c;
    const evs_exec_state *st = evs_replay_exec(c->rp);
    evs__jbuf d = {.alloc = c->alloc};
    char msg[256];

    if (!c->limit_failing && st->status < EVS_STATUS_COMPLETED &&
        evs__limits_warning(
            &c->lim, st, st->last_seq,
            evs_log_size(c->log) + evs_recorder_pending_bytes(c->rec), &d,
            msg, sizeof(msg))) {
        evs__limits_log(c->s, EVS_LOG_WARN, c->id, "%s", msg);
        evs__run_emit_on(r, "main", NULL, EVS_EV_HISTORY_WARNING, "", &d,
                         NULL);
    }
    evs__jb_free(&d);
}

int evs__run_emit_on(evs_run *r, const char *path, const char *req_id,
                     const char *type, const char *step, const evs__jbuf *data,
                     evs_error_info *err)
{
    run_core *c = r->c;
    const evs_path_state *p;
    char uuid[EVS_UUID_LEN + 1];
    evs_error_info v;
    evs_event ev;
    int rc;

    if (c->broken)
        return c->broken_rc == EVS_ELEASE ? evs__run_lease_lost(r, err)
                                          : c->broken_rc;
    if (data && data->err)
        return evs__run_broken(r, -ENOMEM, err, "building an event");
    if (c->taking_over && (rc = evs__run_note_takeover(r, err)) != 0)
        return rc;
    /* A branch cancelled under its thread (a join was decided, the run
     * ended): what it would record now is dropped. */
    p = evs_replay_find_path(c->rp, evs_span_cstr(path));
    if (p && p->ended_seq && strncmp(type, "execution_", 10) != 0)
        return evs__run_fail(r, err, -ECANCELED, "cancelled",
                             "run %s: path %s has %s", c->id, path,
                             evs_path_status_name(p->status));
    if (req_id)
        memcpy(uuid, req_id, EVS_UUID_LEN);
    else if ((rc = evs_uuid7(uuid)) != 0)
        return evs__run_broken(r, rc, err, "making an event id");
    memset(&ev, 0, sizeof(ev));
    ev.id = (evs_span){uuid, EVS_UUID_LEN};
    ev.execution_id = (evs_span){c->id, c->id_len};
    ev.path_id = evs_span_cstr(path);
    ev.sequence = evs_recorder_last_seq(c->rec) + 1;
    ev.timestamp_us = evs_now_us();
    ev.event_type = evs_span_cstr(type);
    ev.step_name = evs_span_cstr(step);
    ev.data = data && data->len ? (evs_span){data->p, data->len}
                                : evs_span_cstr("{}");
    if ((rc = limit_reached(r, &ev, err)) != 0)
        return rc;
    /* The replayer first: an event that breaks a history rule is a bug
     * here and must not reach the log. */
    if ((rc = evs_replay_apply(c->rp, &ev, &v)) != 0) {
        evs__run_broken(r, rc, err, "applying an event");
        if (rc == EVS_EHISTORY)
            evs__run_fail(r, err, rc, v.kind, "run %s: %s", c->id, v.msg);
        return rc;
    }
    if ((rc = evs_recorder_record(c->rec, &ev, NULL)) != 0)
        return evs__run_broken(r, rc, err, "recording an event");
    limit_warn(r);
    if (evs__span_eq_cstr(ev.event_type, EVS_EV_PATH_COMPLETED) ||
        evs__span_eq_cstr(ev.event_type, EVS_EV_PATH_FAILED) ||
        evs__span_eq_cstr(ev.event_type, EVS_EV_PATH_CANCELLED) ||
        evs_replay_exec(c->rp)->status >= EVS_STATUS_COMPLETED)
        pthread_cond_broadcast(&c->changed);
    return 0;
}

int evs__run_note_takeover(evs_run *r, evs_error_info *err)
{
    run_core *c = r->c;
    evs__jbuf d = {.alloc = c->alloc};
    int rc;

    if (!c->taking_over)
        return 0;
    c->taking_over = 0;
    evs__takeover_data(&d, &c->me, evs_replay_exec(c->rp), c->from_seq);
    rc = evs__run_emit_on(r, "main", NULL, EVS_EV_EXECUTION_TAKEN_OVER, "", &d,
                          err);
    evs__jb_free(&d);
    if (rc == 0)
        c->takeover_seq = evs_replay_exec(c->rp)->last_seq;
    return rc;
}

int evs__run_emit(evs_run *r, const char *req_id, const char *type,
                  const char *step, const evs__jbuf *data, evs_error_info *err)
{
    r->replayed = 0;
    return evs__run_emit_on(r, r->path, req_id, type, step, data, err);
}

int evs__run_flush_flags(evs_run *r, unsigned flags, evs_error_info *err)
{
    int rc;

    if (r->c->broken)
        return r->c->broken_rc == EVS_ELEASE ? evs__run_lease_lost(r, err)
                                             : r->c->broken_rc;
    if ((rc = evs_recorder_flush_flags(r->c->rec, flags)) != 0)
        return evs__run_broken(r, rc, err, "appending to the log");
    return 0;
}

int evs__run_flush(evs_run *r, evs_error_info *err)
{
    return evs__run_flush_flags(r, 0, err);
}

/* The snapshot, after what is buffered (it may not run ahead of the
 * log). A failed flush breaks the handle; a failed save does not: the
 * snapshot is a cache, and the next one replaces it. */
int evs__run_save_snapshot(evs_run *r)
{
    int rc;

    if ((rc = evs__run_flush(r, NULL)) != 0)
        return rc;
    rc = evs_replay_snapshot(r->c->rp, r->c->s,
                             (evs_span){r->c->wf_data.p, r->c->wf_data.len});
    if (rc == 0)
        r->c->snap_seq = evs_replay_exec(r->c->rp)->last_seq;
    return rc;
}

int evs__run_check_json(evs_run *r, const char *json, const char *what,
                        evs__jbuf *out, evs_error_info *err)
{
    size_t off = 0;
    int rc;

    out->len = 0;
    out->err = 0;
    if (!json || !*json) {
        EVS__JB_LIT(out, "null");
        return out->err
                   ? evs__run_fail(r, err, -ENOMEM, "memory", "out of memory")
                   : 0;
    }
    if ((rc = evs__jb_minify(out, evs_span_cstr(json))) == EVS_EPARSE) {
        evs_json_check(json, strlen(json), 0, NULL, NULL, &off);
        return evs__run_fail(r, err, EVS_EPARSE, "json",
                             "%s is not valid JSON (at byte %zu)", what, off);
    }
    if (rc == 0)
        evs__jb_raw(out, "", 1); /* a NUL after it */
    if (rc != 0 || out->err)
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    out->len--;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Opening                                                          */
/* ---------------------------------------------------------------- */

static int parse_options(evs_run *r, const char *options, evs_error_info *err)
{
    evs_span key, val;
    evs__jit it;
    int64_t n;
    int rc;

    r->c->poll_ms = POLL_MS_DEFAULT;
    r->c->own_limits = (evs_wf_limits){-1, -1, -1, -1};
    if (!options || !*options)
        return 0;
    if (evs_json_check(options, strlen(options), 0, NULL, NULL, NULL) != 0 ||
        evs__json_iter_begin(&it, evs_span_cstr(options), '{') != 0)
        return evs__run_fail(r, err, EVS_EPARSE, "options",
                             "options must be a JSON object");
    while ((rc = evs__json_obj_next(&it, &key, &val)) == 1) {
        if (evs__span_eq_cstr(key, "mode")) {
            if (evs__span_eq_cstr(val, "\"block\""))
                r->c->suspend = 0;
            else if (evs__span_eq_cstr(val, "\"suspend\""))
                r->c->suspend = 1;
            else
                return evs__run_fail(r, err, EVS_EPARSE, "options",
                                     "options.mode must be \"block\" or "
                                     "\"suspend\"");
        } else if (evs__span_eq_cstr(key, "poll_ms")) {
            if (evs__json_int(val, &n) != 0 || n < 1 || n > 60000)
                return evs__run_fail(r, err, EVS_EPARSE, "options",
                                     "options.poll_ms must be an integer "
                                     "from 1 to 60000");
            r->c->poll_ms = n;
        } else if (evs__span_eq_cstr(key, "history_limits")) {
            char msg[200];
            if (evs__wf_limits_parse(val, "options.history_limits",
                                     &r->c->own_limits, msg, sizeof(msg)))
                return evs__run_fail(r, err, EVS_EPARSE, "options", "%s", msg);
        } else if (evs__span_eq_cstr(key, "retry")) {
            if ((rc = evs__run_parse_retry(r, val, &r->c->policy_def, err)) !=
                0)
                return rc;
        } else {
            return evs__run_fail(r, err, EVS_EPARSE, "options",
                                 "unknown option \"%.*s\"", (int)key.len,
                                 key.ptr);
        }
    }
    return rc < 0 ? evs__run_fail(r, err, EVS_EPARSE, "options",
                                  "options must be a JSON object")
                  : 0;
}

static int hash_inputs(const char *inputs, size_t len, char out[17])
{
    uint64_t h;
    int rc = evs_json_hash(inputs, len, NULL, &h);

    if (rc == 0) {
        evs__hex64(h, out);
        out[16] = '\0';
    }
    return rc;
}

/* The snapshot's workflow_data: the code version. */
static int wf_data(run_core *c)
{
    c->wf_data.len = 0;
    EVS__JB_LIT(&c->wf_data, "{\"code_version\":");
    evs__jb_quote(&c->wf_data, evs_span_cstr(c->version));
    EVS__JB_LIT(&c->wf_data, "}");
    return c->wf_data.err ? -ENOMEM : 0;
}

/* Creates the run: execution_started (the workflow name, the inputs and
 * their hash, the code version: the member that marks a run) and the
 * root path, with a first snapshot. */
static int create(evs_run *r, const char *ihash, evs_error_info *err)
{
    evs__jbuf d0 = {.alloc = r->c->alloc};
    evs_event ev[2];
    evs_snapshot snap;
    int64_t now = evs_now_us();
    int rc;

    EVS__JB_LIT(&d0, "{\"workflow_name\":");
    evs__jb_quote(&d0, evs_span_cstr(r->c->workflow));
    EVS__JB_LIT(&d0, ",\"inputs\":");
    evs__jb_raw(&d0, r->c->inputs, strlen(r->c->inputs));
    EVS__JB_LIT(&d0, ",\"inputs_hash\":\"");
    evs__jb_str(&d0, ihash);
    EVS__JB_LIT(&d0, "\",\"code_version\":");
    evs__jb_quote(&d0, evs_span_cstr(r->c->version));
    EVS__JB_LIT(&d0, ",\"lineage\":{}}");
    if (d0.err) {
        evs__jb_free(&d0);
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    }
    memset(ev, 0, sizeof(ev));
    for (int i = 0; i < 2; i++) {
        ev[i].path_id = evs_span_cstr("main");
        ev[i].sequence = (uint64_t)i + 1;
        ev[i].timestamp_us = now;
    }
    ev[0].event_type = evs_span_cstr(EVS_EV_EXECUTION_STARTED);
    ev[0].data = (evs_span){d0.p, d0.len};
    ev[1].event_type = evs_span_cstr(EVS_EV_PATH_STARTED);
    ev[1].data = evs_span_cstr("{\"parent\":null}");
    memset(&snap, 0, sizeof(snap));
    snap.workflow_name = evs_span_cstr(r->c->workflow);
    snap.inputs_hash = evs_span_cstr(ihash);
    snap.status = evs_span_cstr("running");
    snap.start_time_us = now;
    snap.inputs = evs_span_cstr(r->c->inputs);
    snap.workflow_data = (evs_span){r->c->wf_data.p, r->c->wf_data.len};
    rc = evs_exec_create_flags(r->c->s, r->c->id, r->c->id_len, &snap, ev,
                               2, EVS_SNAPSHOT_CACHE);
    evs__jb_free(&d0);
    return rc;
}

/* The journal of `path`, made if it has none yet: its index. */
int evs__run_journal(run_core *c, evs_span path, size_t *out)
{
    run_journal *j;

    for (size_t i = 0; i < c->n_journals; i++)
        if (evs__span_eq_cstr(path, c->journals[i].path)) {
            *out = i;
            return 0;
        }
    if (EVS__GROW(c->alloc, &c->journals, &c->cap_journals,
                  c->n_journals + 1) != 0)
        return -ENOMEM;
    j = &c->journals[c->n_journals];
    memset(j, 0, sizeof(*j));
    if (!(j->path = evs__malloc(c->alloc, path.len + 1)))
        return -ENOMEM;
    memcpy(j->path, path.ptr, path.len);
    j->path[path.len] = '\0';
    *out = c->n_journals++;
    return 0;
}

/* The journals: one command per step a path first started, and per
 * branch it made (path_branched, named by its step), in order. */
static int journal_add(run_core *c, const evs_event *ev)
{
    const evs_step_state *sp = NULL;
    evs_span kind = evs_span_cstr(RUN_KIND_BRANCH);
    run_journal *j;
    run_cmd *cmd;
    size_t i;
    char *step;

    if (!ev->step_name.len)
        return 0;
    if (!evs__span_eq_cstr(ev->event_type, EVS_EV_PATH_BRANCHED)) {
        if (!evs__span_eq_cstr(ev->event_type, EVS_EV_STEP_STARTED))
            return 0;
        sp = evs_replay_find_step(c->rp, ev->path_id, ev->step_name, -1);
        if (!sp || sp->attempts != 1 || sp->started_seq != ev->sequence)
            return 0;
        kind = sp->kind;
    }
    if (evs__run_journal(c, ev->path_id, &i) != 0)
        return -ENOMEM;
    j = &c->journals[i];
    if (EVS__GROW(c->alloc, &j->cmds, &j->cap, j->n + 1) != 0)
        return -ENOMEM;
    cmd = &j->cmds[j->n];
    memset(cmd, 0, sizeof(*cmd));
    step = evs__malloc(c->alloc, ev->step_name.len + kind.len + 2);
    if (!step)
        return -ENOMEM;
    memcpy(step, ev->step_name.ptr, ev->step_name.len);
    step[ev->step_name.len] = '\0';
    cmd->step = step;
    cmd->kind = step + ev->step_name.len + 1;
    memcpy(cmd->kind, kind.ptr, kind.len);
    cmd->kind[kind.len] = '\0';
    cmd->seq = ev->sequence;
    j->n++;
    return 0;
}

/* A JSON string's text, unescaped into fresh memory. */
static char *unquote(const evs_allocator *a, evs_span v)
{
    size_t n;
    char *p;

    if (v.len < 2 || v.ptr[0] != '"' || !(p = evs__malloc(a, v.len)))
        return NULL;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, p);
    p[n == (size_t)-1 ? 0 : n] = '\0';
    return p;
}

/* The run's first event: it must be a run's execution_started (it
 * records a code_version), of the workflow and inputs asked for; those
 * not asked for (NULL) are taken from it, and so is the version. */
static int check_start(evs_run *r, const evs_event *ev, const char *ihash,
                       evs_error_info *err)
{
    run_core *c = r->c;
    evs__jbuf q = {.alloc = c->alloc};
    evs_span val, ver, wf, in;
    int same;

    if (!evs__span_eq_cstr(ev->event_type, EVS_EV_EXECUTION_STARTED))
        return 0; /* the replay refuses it: first-event */
    if (evs__json_get(ev->data, "code_version", &ver) != 1)
        return evs__run_fail(r, err, EVS_ECONFLICT, "run",
                             "execution %s runs a definition, not code", c->id);
    if (evs__json_get(ev->data, "workflow_name", &wf) != 1)
        wf = (evs_span){0};
    if (c->workflow) {
        evs__jb_quote(&q, evs_span_cstr(c->workflow));
        same = evs__span_eq(wf, (evs_span){q.p, q.len});
        if (q.err) {
            evs__jb_free(&q);
            return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
        }
        evs__jb_free(&q);
        if (!same)
            return evs__run_fail(r, err, EVS_ECONFLICT, "run",
                                 "run %s exists as a run of workflow %.*s",
                                 c->id, (int)wf.len, wf.ptr);
    } else if (!(c->workflow = unquote(c->alloc, wf))) {
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    }
    if (c->inputs) {
        if (evs__json_get(ev->data, "inputs_hash", &val) != 1 ||
            val.len != 18 || memcmp(val.ptr + 1, ihash, 16) != 0)
            return evs__run_fail(r, err, EVS_ECONFLICT, "run",
                                 "run %s exists with other inputs", c->id);
    } else {
        if (evs__json_get(ev->data, "inputs", &in) != 1)
            in = evs_span_cstr("{}");
        if (!(c->inputs = evs__malloc(c->alloc, in.len + 1)))
            return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
        memcpy(c->inputs, in.ptr, in.len);
        c->inputs[in.len] = '\0';
    }
    evs__free(c->alloc, c->version);
    if (!(c->version = unquote(c->alloc, ver)))
        return evs__run_fail(r, err, -ENOMEM, "memory", "out of memory");
    return 0;
}

/* Replays the whole log (strictly), building the journals, after
 * checking its first event (check_start). */
static int replay_log(evs_run *r, const char *ihash, evs_error_info *err)
{
    evs_cursor *cur = NULL;
    evs_event ev;
    int rc;

    if (evs_log_last_seq(r->c->log) == 0)
        return evs__run_fail(r, err, EVS_EHISTORY, "first-event",
                             "run %s has an empty log", r->c->id);
    rc = evs_cursor_open(r->c->log, 1, 0, &cur, err);
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, NULL, err)) == 1) {
        if (ev.sequence == 1 && (rc = check_start(r, &ev, ihash, err)) != 0)
            break;
        if ((rc = evs_replay_apply(r->c->rp, &ev, err)) != 0)
            break;
        if ((rc = journal_add(r->c, &ev)) != 0)
            break;
    }
    evs_cursor_close(cur);
    if (rc == -ENOMEM)
        evs__run_fail(r, err, rc, "memory", "out of memory");
    return rc;
}

static void core_free(run_core *c);

static char *dup_str(const evs_allocator *a, const char *s, size_t n)
{
    char *p = evs__malloc(a, n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int check_name(evs_run *r, const char *s, size_t max, int empty_ok,
                      const char *what, evs_error_info *err)
{
    size_t n = s ? strlen(s) : 0;

    if ((!s && !empty_ok) || (!n && !empty_ok) || n > max ||
        !evs__utf8_valid(s ? s : "", n))
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "%s must be 1 to %zu bytes of UTF-8", what, max);
    return 0;
}

int evs_run_open(evs_store *s, const char *id, const char *workflow,
                 const char *version, const char *inputs, const char *options,
                 evs_run **out, evs_error_info *err)
{
    const evs_store_opts *so;
    evs_recorder_opts ro;
    evs_replay_opts po;
    run_core *c;
    evs_run *r;
    evs__jbuf in;
    char ihash[17];
    int rc, created = 0;

    if (err)
        evs_error_info_clear(err);
    if (!s || !out)
        return -EINVAL;
    *out = NULL;
    so = evs_store_get_opts(s);
    if (!(c = evs__calloc(so->alloc, sizeof(*c)))) {
        evs__error_set(err, -ENOMEM, "memory", "opening a run: out of memory");
        return -ENOMEM;
    }
    c->s = s;
    c->alloc = so->alloc;
    c->rng =
        (uint64_t)evs_now_us() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
    c->wf_data.alloc = c->alloc;
    if ((rc = evs__runner_init(&c->me)) != 0) {
        evs__free(so->alloc, c);
        evs__error_set(err, rc, "", "opening a run: %s", evs_strerror(rc));
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->changed, NULL);
    if (!(r = evs__run_handle_new(c, NULL, "main"))) {
        core_free(c);
        evs__error_set(err, -ENOMEM, "memory", "opening a run: out of memory");
        return -ENOMEM;
    }
    in.alloc = r->c->alloc;
    in.p = NULL;
    in.len = in.cap = 0;
    in.err = 0;
    if (id && *id) {
        r->c->id_len = strlen(id);
        if (r->c->id_len > EVS_ID_MAX || !evs_id_valid(id, r->c->id_len)) {
            rc =
                evs__run_fail(r, err, EVS_EBADID, "argument",
                              "\"%.*s\" is not a valid execution id",
                              (int)(r->c->id_len > 64 ? 64 : r->c->id_len), id);
            goto fail;
        }
        memcpy(r->c->id, id, r->c->id_len);
    } else {
        if ((rc = evs_uuid7(r->c->id)) != 0)
            goto fail;
        r->c->id_len = EVS_UUID_LEN;
    }
    if ((workflow &&
         (rc = check_name(r, workflow, 128, 0, "the workflow name", err))) ||
        (rc = check_name(r, version, 128, 1, "the code version", err)) ||
        (rc = parse_options(r, options, err)))
        goto fail;
    evs__limits_resolve(s, &c->own_limits, &c->lim);
    if (inputs) {
        if ((rc = evs__run_check_json(r, *inputs ? inputs : "{}", "the inputs",
                                      &in, err)) != 0)
            goto fail;
        if (in.p[0] != '{') {
            rc = evs__run_fail(r, err, EVS_EPARSE, "json",
                               "the inputs must be a JSON object");
            goto fail;
        }
    }
    rc = -ENOMEM;
    if ((workflow &&
         !(c->workflow = dup_str(c->alloc, workflow, strlen(workflow)))) ||
        !(c->version = dup_str(c->alloc, version ? version : "",
                               version ? strlen(version) : 0)) ||
        !(c->host_version =
              dup_str(c->alloc, c->version, strlen(c->version))) ||
        (inputs && !(c->inputs = dup_str(c->alloc, in.p, in.len))))
        goto fail;
    if (c->inputs && (rc = hash_inputs(c->inputs, strlen(c->inputs), ihash)))
        goto fail;
    if (!evs_exec_exists(s, c->id, c->id_len)) {
        if (!c->workflow) {
            rc = evs__run_fail(r, err, -EINVAL, "argument",
                               "run %s does not exist, and a new run needs a "
                               "workflow name",
                               c->id);
            goto fail;
        }
        rc = -ENOMEM;
        if (!c->inputs && (!(c->inputs = dup_str(c->alloc, "{}", 2)) ||
                           (rc = hash_inputs(c->inputs, 2, ihash)) != 0))
            goto fail;
        if ((rc = wf_data(c)) != 0)
            goto fail;
        if ((rc = create(r, ihash, err)) != 0 && rc != -EEXIST) {
            evs__run_fail(r, err, rc, "store", "creating run %s: %s", c->id,
                          evs_strerror(rc));
            goto fail;
        }
        if (rc == 0) {
            c->snap_seq = 2; /* created with its snapshot */
            created = 1;
        }
    }
    rc = evs_log_open(s, r->c->id, r->c->id_len, EVS_LOG_WRITE, &r->c->log,
                      NULL, err);
    if (rc != 0) {
        if (rc == EVS_ELOCKED)
            evs__run_fail(r, err, rc, "lock",
                          "run %s is run by another handle or process",
                          r->c->id);
        goto fail;
    }
    /* Before the replay, which may take a while on a long history. */
    if ((rc = evs__run_lease_start(r, err)) != 0)
        goto fail;
    evs_recorder_opts_init(&ro);
    ro.batch_events = SIZE_MAX;
    ro.batch_bytes = SIZE_MAX;
    evs_replay_opts_init(&po);
    po.alloc = r->c->alloc;
    if ((rc = evs_recorder_open(r->c->log, &ro, &r->c->rec)) != 0 ||
        (rc = evs_replay_new(&po, &r->c->rp)) != 0 ||
        (rc = replay_log(r, ihash, err)) != 0 ||
        (rc = evs__run_journal(c, evs_span_cstr("main"), &r->journal)) != 0 ||
        (rc = wf_data(c)) != 0)
        goto fail;
    evs__jb_free(&in);
    *out = r;
    /* Another runner's run (this one did not create it) that goes on:
     * its first event here says it was taken over. */
    c->taking_over = !created && evs_replay_exec(c->rp)->status <
                                     EVS_STATUS_COMPLETED;
    c->from_seq = evs_replay_exec(c->rp)->last_seq;
    if (evs_replay_exec(r->c->rp)->status == EVS_STATUS_CONTINUED) {
        /* Requests that came after it continued belong to its chain. */
        const evs_span succ = evs_replay_exec(r->c->rp)->continued_as;
        char sid[EVS_ID_MAX + 1];
        if (succ.len && succ.len <= EVS_ID_MAX) {
            memcpy(sid, succ.ptr, succ.len);
            sid[succ.len] = '\0';
            evs__run_forward_requests(r, sid);
        }
    }
    if (evs_replay_exec(r->c->rp)->status >= EVS_STATUS_COMPLETED) {
        evs__run_set(&r->output, evs_replay_exec(r->c->rp)->outputs);
        evs__run_set(&r->error, evs_replay_exec(r->c->rp)->error);
        return evs__run_fail(
            r, err, EVS_EFINISHED, "status", "run %s has ended (%s)", r->c->id,
            evs_exec_status_name(evs_replay_exec(r->c->rp)->status));
    }
    return 0;
fail:
    evs__jb_free(&in);
    if (err && !err->msg[0])
        evs__run_fail(r, err, rc, "", "opening run %s: %s", r->c->id,
                      evs_strerror(rc));
    r->c->broken = 1; /* nothing to save */
    evs_run_close(r);
    return rc;
}

evs_run *evs__run_handle_new(run_core *c, evs_run *parent, const char *path)
{
    evs_run *r = evs__calloc(c->alloc, sizeof(*r));

    if (!r)
        return NULL;
    r->c = c;
    r->parent = parent;
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->result.alloc = r->error.alloc = r->output.alloc = r->fn_out.alloc =
        r->fn_type.alloc = r->fn_msg.alloc = c->alloc;
    c->handles++;
    return r;
}

static void core_free(run_core *c)
{
    /* No renewal once the run is let go; a lease found lost means
     * nothing more may be written, not even the snapshot. */
    evs__run_lease_stop(c);
    if (atomic_load(&c->lease_lost))
        c->broken = 1;
    /* A step left open leaves no trace, as after a kill: its start was
     * never made durable, and nothing buffered was acknowledged. */
    if (c->rec && c->open_steps)
        evs_recorder_discard(c->rec);
    /* The snapshot, unless the last one saved is current. */
    if (c->rec && c->rp && !c->broken && evs_recorder_flush(c->rec) == 0 &&
        evs_replay_exec(c->rp)->last_seq &&
        evs_replay_exec(c->rp)->last_seq != c->snap_seq)
        evs_replay_snapshot(c->rp, c->s,
                            (evs_span){c->wf_data.p, c->wf_data.len});
    evs_recorder_close(c->rec);
    evs_log_close(c->log);
    evs_replay_free(c->rp);
    for (size_t i = 0; i < c->n_journals; i++) {
        for (size_t k = 0; k < c->journals[i].n; k++)
            evs__free(c->alloc, c->journals[i].cmds[k].step);
        evs__free(c->alloc, c->journals[i].cmds);
        evs__free(c->alloc, c->journals[i].path);
    }
    evs__free(c->alloc, c->journals);
    evs_wf_free(c->policy_def);
    evs__free(c->alloc, c->workflow);
    evs__free(c->alloc, c->version);
    evs__free(c->alloc, c->host_version);
    evs__free(c->alloc, c->inputs);
    evs__jb_free(&c->wf_data);
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->mu);
    evs__free(c->alloc, c);
}

void evs_run_close(evs_run *r)
{
    run_core *c;
    int last;

    if (!r)
        return;
    c = r->c;
    pthread_mutex_lock(&c->mu);
    last = --c->handles == 0;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < r->cap_occ; i++)
        evs__free(c->alloc, r->occ[i].name);
    evs__free(c->alloc, r->occ);
    evs_wf_free(r->step_policy_def);
    evs__jb_free(&r->fn_out);
    evs__jb_free(&r->fn_type);
    evs__jb_free(&r->fn_msg);
    evs__jb_free(&r->result);
    evs__jb_free(&r->error);
    evs__jb_free(&r->output);
    evs__free(c->alloc, r);
    /* The last handle closes the run: the snapshot, the lock. */
    if (last)
        core_free(c);
}

/* ---------------------------------------------------------------- */
/* Reading                                                          */
/* ---------------------------------------------------------------- */

const char *evs_run_id(evs_run *r)
{
    return r->c->id;
}

const char *evs_run_runner(evs_run *r)
{
    return r->c->me.id;
}

const char *evs_run_workflow(evs_run *r)
{
    return r->c->workflow;
}

const char *evs_run_version(evs_run *r)
{
    return r->c->version;
}

const char *evs_run_inputs(evs_run *r)
{
    return r->c->inputs;
}

const char *evs_run_status(evs_run *r)
{
    const char *s;

    pthread_mutex_lock(&r->c->mu);
    s = evs_exec_status_name(evs_replay_exec(r->c->rp)->status);
    pthread_mutex_unlock(&r->c->mu);
    return s;
}

static const char *buf_or_null(const evs__jbuf *b)
{
    return b->p && b->len ? b->p : "null";
}

const char *evs_run_output(evs_run *r)
{
    return buf_or_null(&r->output);
}

const char *evs_run_result(evs_run *r)
{
    return buf_or_null(&r->result);
}

const char *evs_run_error(evs_run *r)
{
    return buf_or_null(&r->error);
}

int evs_run_replaying(evs_run *r)
{
    int on;

    pthread_mutex_lock(&r->c->mu);
    on = evs__run_next_cmd(r) != NULL;
    pthread_mutex_unlock(&r->c->mu);
    return on;
}
