/*
 * orch_own.c: how an execution comes to be owned here: started
 * (evs_orch_start, created on the threadpool), resumed (evs_orch_resume,
 * following a chain of continuations to the member that goes on), or
 * adopted (evs_orch_recover, and the poll of a long-lived runner). Owning
 * is holding the log's writer lock.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* Owning an execution                                              */
/* ---------------------------------------------------------------- */

static int has_action(void *arg, const char *name)
{
    struct orch_action *a = evs__actions_find(arg, name);

    if (!a)
        return 0;
    return a->flags & EVS_ACTION_INSTANT ? EVS_WF_ACTION_INSTANT : 1;
}

int evs_orch_parse(evs_orch *o, evs_span def, evs_wf_def **out,
                   evs_error_info *err)
{
    return evs_wf_parse(def.ptr, def.len, o->alloc, has_action, o, out, err);
}

/* The timestamp of the log's last event (0 if none can be read): the
 * event an age threshold is decided on, the same after a crash. */
static int64_t last_event_at(evs_log *log)
{
    uint64_t last = evs_log_last_seq(log);
    evs_cursor *c;
    evs_event ev;
    int64_t at = 0;

    if (last && evs_cursor_open(log, last, last, &c, NULL) == 0) {
        if (evs_cursor_next(c, &ev, NULL, NULL) == 1)
            at = ev.timestamp_us;
        evs_cursor_close(c);
    }
    return at;
}

/* Whether the stored snapshot of an ended execution is behind its log:
 * its runner died between the last append and the snapshot. Listings
 * read snapshots, so the execution would be listed unfinished (and
 * offered to runners by a work queue) for ever. */
static int snapshot_lags(evs_store *s, const char *id, size_t id_len,
                         uint64_t last_seq)
{
    evs_snapshot *sn = NULL;
    int lags = evs_snapshot_load_flags(s, id, id_len, EVS_SNAPSHOT_STATE_RAW,
                                       &sn, NULL) != 0 ||
               sn->last_event_seq != last_seq;

    evs_snapshot_free(sn);
    return lags;
}

/* Takes over an open writer log and its replayed state; both are the
 * execution's from now on, even on failure. `newdef` (may be NULL; taken
 * over too) is a definition checked compatible with the history, which
 * the execution goes on under (recorded as definition_changed). `taken`:
 * the history is another runner's (resumed, not started here), and the
 * first event recorded says this runner took it over. `last_at`: the
 * timestamp of the log's last event when the caller knows it (a start:
 * its creation's, which is also its snapshot's created_at), else 0 (read
 * from the log). `claimed_ms`: the loop's time (uv_now) at or before the
 * claim of its lease. `pick`: its inbox may hold requests no notification
 * will tell of, so it is read now. info (may be NULL) describes a
 * refusal. */
static int attach(evs_orch *o, evs_log *log, evs_replay *rp, evs_wf_def *newdef,
                  int taken, int64_t last_at, uint64_t claimed_ms, int pick,
                  evs_error_info *info)
{
    const evs_exec_state *st = evs_replay_exec(rp);
    evs_recorder_opts ro;
    orch_exec *x;
    evs_error_info we, ei;
    int rc, changed = 0;

    x = evs__calloc(o->alloc, sizeof(*x));
    if (!x) {
        evs_log_close(log);
        evs_replay_free(rp);
        return -ENOMEM;
    }
    x->o = o;
    x->log = log;
    x->rp = rp;
    x->refs = 1;
    x->id_len = strlen(evs_log_id(log));
    memcpy(x->id, evs_log_id(log), x->id_len + 1);
    x->snap_seq = st->last_seq;
    if (taken && st->status >= EVS_STATUS_COMPLETED &&
        snapshot_lags(o->store, x->id, x->id_len, st->last_seq))
        x->snap_seq = 0; /* written before the end is reported */
    x->taking_over = taken;
    x->from_seq = st->last_seq;
    x->last_at_us = last_at ? last_at : last_event_at(log);
    /* A start's creation is stamped with the time of its events. */
    x->created_at_us = taken ? 0 : last_at;
    x->renewed_ms = claimed_ms;
    evs_recorder_opts_init(&ro);
    ro.batch_events = SIZE_MAX; /* flushed by evs__orch_kick only */
    ro.batch_bytes = SIZE_MAX;
    if ((rc = evs_recorder_open(log, &ro, &x->rec)) != 0)
        goto fail;
    if (newdef) {
        x->def = newdef;
        newdef = NULL;
        changed = 1;
        rc = 0;
    } else if (st->definition.len == 0) {
        rc = EVS_EPARSE;
        evs__orch_logf(o, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = x->id),
                       "no definition recorded");
        goto fail;
    } else {
        rc = evs_wf_parse(st->definition.ptr, st->definition.len, NULL,
                          has_action, o, &x->def, &we);
    }
    if (rc != 0) {
        evs__orch_logf(o, EVS_LOG_ERROR,
                       EVS_LOG_FIELDS(.execution = x->id,
                                      .step = we.step[0] ? we.step : NULL),
                       "its definition is refused: %s", we.msg);
        goto fail;
    }
    x->service = evs__orch_is_service(o->alloc, x->def);
    evs__limits_resolve(o->store, &x->def->limits, &x->lim);
    x->log_bytes = evs_log_size(log);
    /* GetVersion on replay: a decision the history holds must be one
     * this definition accepts. */
    if ((rc = evs__orch_check_versions(rp, x->def, &ei)) != 0) {
        evs__orch_logf(o, EVS_LOG_ERROR,
                       EVS_LOG_FIELDS(.execution = x->id, .err = ei.code),
                       "%s", ei.msg);
        if (info)
            *info = ei;
        goto fail;
    }
    if ((rc = evs__orch_list_exec(o, x)) != 0)
        goto fail;
    if (changed && (st->definition_hash.len != strlen(x->def->hash) ||
                    memcmp(st->definition_hash.ptr, x->def->hash,
                           st->definition_hash.len) != 0)) {
        evs__jbuf d = {.alloc = o->alloc};
        EVS__JB_LIT(&d, "{\"definition\":");
        evs__jb_json(&d, x->def->json);
        EVS__JB_LIT(&d, ",\"definition_hash\":");
        evs__jb_quote(&d, evs_span_cstr(x->def->hash));
        EVS__JB_LIT(&d, "}");
        evs__orch_emit(x, NULL, EVS_EV_DEFINITION_CHANGED,
                       evs_span_cstr("main"), (evs_span){0}, &d, NULL);
        evs__jb_free(&d);
        if (x->released)
            return x->err;
    }
    evs__orch_watch(x);
    x->unread = !pick;
    if (pick)
        evs__orch_inbox_pick(x);
    evs__drive(x);
    evs__orch_finish_if_done(x);
    return 0;
fail:
    if (x->rec)
        evs_recorder_close(x->rec);
    evs_log_close(x->log);
    evs_replay_free(x->rp);
    evs_wf_free(x->def);
    evs_wf_free(newdef);
    evs__free(o->alloc, x);
    return rc;
}

/* EVS_ECONFLICT for a durable function's run (formats/RUNS.md), which
 * the orchestrator has no definition to run; else 0. */
static int refuse_run(evs_orch *o, evs_span id, evs_error_info *info)
{
    char version[129];

    if (evs_exec_code_version(o->store, id.ptr, id.len, version,
                              sizeof(version)) != 1)
        return 0; /* not a run, or no such log: the open below says */
    evs__orch_log(o, EVS_LOG_ERROR,
                  "execution %.*s is a durable function's run (code version "
                  "\"%s\"): its host's code runs it (evstore/run.h), not a "
                  "definition",
                  (int)id.len, id.ptr, version);
    if (info) {
        evs_error_info_clear(info);
        info->code = EVS_ECONFLICT;
        info->kind = "run";
        snprintf(info->execution_id, sizeof(info->execution_id), "%.*s",
                 (int)id.len, id.ptr);
        snprintf(info->msg, sizeof(info->msg),
                 "a durable function's run (code version \"%s\"): run its "
                 "host's code to resume it",
                 version);
    }
    return EVS_ECONFLICT;
}

int evs_orch_resume(evs_orch *o, evs_span id)
{
    return evs_orch_resume_with(o, id, (evs_span){0}, NULL, NULL, NULL);
}

/* Takes execution `id` over, or, with `claimed` (a writer's log of id
 * the store's work queue gave, taken over even on failure), that one. */
static int resume(evs_orch *o, evs_span id, evs_log *claimed, evs_span def,
                  evs_def_finding_fn fn, void *arg, evs_error_info *info)
{
    evs_log *log = NULL;
    evs_replay *rp = NULL;
    evs_wf_def *nd = NULL;
    evs_error_info ve, we;
    evs__chain c;
    int rc;

    evs_error_info_clear(info);
    if ((rc = evs__chain_init(&c, id)) != 0) {
        evs_log_close(claimed);
        return rc;
    }
    /* An execution that continued as new goes on in its successor: each
     * member that continued is reported so, and the walk goes on to the
     * next, until one that has not (which is taken, or reports how it
     * ended). */
    for (;;) {
        id = (evs_span){c.id, c.id_len};
        rc = evs__orch_find_exec(o, id) ? -EALREADY
             : o->stopping              ? -ECANCELED
             /* A durable function's run is run by its host's code (the
              * queue never offers one). */
             : claimed ? 0
                       : refuse_run(o, id, info);
        if (rc != 0) {
            evs_log_close(claimed);
            return rc;
        }
        /* The lock (or lease) first: it is what owning means. */
        if (claimed) {
            log = claimed;
            claimed = NULL;
        } else if ((rc = evs_log_open(o->store, id.ptr, id.len, EVS_LOG_WRITE,
                                      &log, NULL, NULL)) != 0) {
            return rc;
        }
        if ((rc = evs__orch_replay_new(o->alloc, &rp)) != 0)
            goto fail;
        rc = evs_replay_open(rp, o->store, id.ptr, id.len, 0, NULL, &ve);
        if (rc != 0) {
            if (rc == EVS_EHISTORY)
                evs__orch_logf(o, EVS_LOG_ERROR,
                               EVS_LOG_FIELDS(.execution = evs_log_id(log),
                                              .sequence = ve.sequence,
                                              .err = rc),
                               "%s: %s", ve.kind, ve.msg);
            goto fail;
        }
        if ((rc = evs__chain_next(&c, rp)) == 0)
            break;
        evs_replay_free(rp);
        evs_log_close(log);
        rp = NULL;
        log = NULL;
        if (rc < 0) {
            evs__orch_logf(o, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = c.id),
                           "its chain of continuations loops here, or names "
                           "a successor that is not an id");
            return rc;
        }
        if (o->opts.on_outcome)
            o->opts.on_outcome(o->opts.arg, c.prev, EVS_OUTCOME_CONTINUED, 0);
    }
    if (def.len) {
        rc = evs_wf_parse(def.ptr, def.len, o->alloc, has_action, o, &nd, &we);
        if (rc != 0) {
            evs__orch_log(o, EVS_LOG_ERROR,
                          "the new definition is refused: %s%s%s", we.step,
                          we.step[0] ? ": " : "", we.msg);
            goto fail;
        }
        rc = evs__orch_check_definition(o->alloc, rp, nd, fn, arg, info);
        if (rc != 0)
            goto fail;
    }
    /* The claim was made in this loop iteration, after its time. */
    return attach(o, log, rp, nd, 1, 0, uv_now(o->loop), 1, info);
fail:
    evs_wf_free(nd);
    evs_replay_free(rp);
    evs_log_close(log);
    return rc;
}

int evs_orch_resume_with(evs_orch *o, evs_span id, evs_span def,
                         evs_def_finding_fn fn, void *arg, evs_error_info *info)
{
    return resume(o, id, NULL, def, fn, arg, info);
}

static int is_unfinished(evs_span status)
{
    static const char *const done[] = {"completed", "failed", "terminated",
                                       "continued"};

    for (size_t i = 0; i < sizeof(done) / sizeof(*done); i++)
        if (status.len == strlen(done[i]) &&
            memcmp(status.ptr, done[i], status.len) == 0)
            return 0;
    return 1;
}

/* Claims up to `max` (0: any number) executions from the store's work
 * queue: -ENOTSUP when it has none. */
static int adopt_queued(evs_orch *o, size_t max, size_t *n)
{
    evs_error_info info;
    evs_log *log;
    int rc = 0;

    if (evs__orch_backed_off(o))
        return 0;
    while (!o->stopping && (!max || *n < max)) {
        rc = evs_log_claim(o->store, 0, &log, &info);
        evs__orch_reachable(o, rc == -ENOENT ? 0 : rc);
        if (rc == -ENOENT)
            return 0; /* no more for now */
        if (rc != 0) {
            /* An unreachable store was said by the store, once per
             * back-off. */
            if (rc != -ENOTSUP && rc != -ECONNREFUSED)
                evs__orch_logf(
                    o, EVS_LOG_ERROR,
                    EVS_LOG_FIELDS(.execution = info.execution_id[0]
                                                    ? info.execution_id
                                                    : NULL,
                                   .err = rc),
                    "claiming work: %s",
                    info.msg[0] ? info.msg : evs_strerror(rc));
            return rc;
        }
        rc = resume(o, evs_span_cstr(evs_log_id(log)), log, (evs_span){0}, NULL,
                    NULL, NULL);
        if (rc == 0)
            (*n)++;
        else if (rc != -EALREADY)
            return rc; /* logged where it failed */
    }
    return 0;
}

/* Takes up to `max` (0: any number) unfinished executions no runner owns. */
int evs__orch_adopt(evs_orch *o, size_t max, size_t *count)
{
    evs_exec_listing l;
    size_t n = 0;
    int rc, first = 0;

    if (count)
        *count = 0;
    if (o->opts.max_owned) {
        size_t room =
            o->nexecs < o->opts.max_owned ? o->opts.max_owned - o->nexecs : 0;
        if (room == 0)
            return 0;
        if (!max || max > room)
            max = room;
    }
    if (!o->no_queue) {
        rc = adopt_queued(o, max, &n);
        if (count)
            *count = n;
        if (rc != -ENOTSUP)
            return rc;
        o->no_queue = 1;
    }
    if ((rc = evs_exec_list(o->store, NULL, &l)) != 0)
        return rc;
    for (size_t i = 0; i < l.count && !o->stopping && (!max || n < max); i++) {
        const evs_exec_info *e = &l.items[i];
        /* A snapshot may lag its log, so "finished" is believed only
         * from a snapshot; a damaged one is checked by replaying. */
        if (e->snapshot_ok && !is_unfinished(e->status))
            continue;
        if (evs__orch_find_exec(o, e->id))
            continue;
        /* Durable functions' runs belong to their hosts. */
        if (evs_exec_code_version(o->store, e->id.ptr, e->id.len, NULL, 0) == 1)
            continue;
        rc = evs_orch_resume(o, e->id);
        if (rc == 0)
            n++;
        else if (rc != EVS_ELOCKED && rc != -EALREADY && !first)
            first = rc;
    }
    evs_exec_list_free(&l);
    if (count)
        *count = n;
    return first;
}

int evs_orch_recover(evs_orch *o, size_t *count)
{
    return evs__orch_adopt(o, 0, count);
}

/* ---------------------------------------------------------------- */
/* Starting an execution                                            */
/* ---------------------------------------------------------------- */

typedef struct start_job {
    uv_work_t work;
    evs_orch *o;
    evs__creation c;
    evs_log *log;
    evs_replay *rp;
    int rc;
    /* The listen epoch before the creation began (0: none listened
     * yet), and o->note_gen when the start was queued. */
    uint64_t epoch;
    uint64_t note_gen;
    uint64_t queued_ms; /* uv_now when queued, before the claim */
} start_job;

static void start_work(uv_work_t *w)
{
    start_job *j = w->data;
    evs__creation *c = &j->c;

    /* Before the creation: a watch listening by now hears every request
     * to the execution, all of them posted after the creation commits. */
    j->epoch = atomic_load(&j->o->listen_epoch);
    /* Created and opened as its writer in one step (one statement on
     * PostgreSQL); owned: no other runner is offered it meanwhile. */
    j->rc = evs_exec_create_open(j->o->store, c->id, c->id_len, &c->snap,
                                 c->ev, 2, EVS_SNAPSHOT_CACHE, &j->log, NULL);
    if (j->rc == 0)
        j->rc = evs__orch_replay_new(j->o->alloc, &j->rp);
    /* The log holds just the creation's events: replayed from here, with
     * the fields the store gave their lines, instead of read back. */
    for (size_t i = 0; i < 2 && j->rc == 0; i++) {
        evs_event e = c->ev[i];
        e.execution_id = (evs_span){c->id, c->id_len};
        e.batch_first = 1;
        e.batch_count = 2;
        j->rc = evs_replay_apply(j->rp, &e, NULL);
    }
}

static void start_done(uv_work_t *w, int status)
{
    start_job *j = w->data;
    evs_orch *o = j->o;
    int rc = j->rc;

    (void)status;
    o->busy--;
    if (rc == 0) {
        /* Its inbox is read unless the watch attached now listened
         * before its creation began (so every request to it was heard
         * of) and none of what it heard since the start was queued was
         * to an execution not owned here: a request posted before its
         * attach can only be one of those. The definition parsed to
         * start it serves the run too. */
        int pick = !o->watch || j->epoch == 0 || j->epoch != o->watch_epoch ||
                   o->note_gen != j->note_gen;
        rc = attach(o, j->log, j->rp, j->c.def, 0, j->c.ev[1].timestamp_us,
                    j->queued_ms, pick, NULL);
        j->log = NULL;
        j->rp = NULL;
        j->c.def = NULL;
    }
    if (rc != 0) {
        evs__orch_logf(o, EVS_LOG_ERROR,
                       EVS_LOG_FIELDS(.execution = j->c.id, .err = rc),
                       "not started: %s", evs_strerror(rc));
        if (o->opts.on_outcome)
            o->opts.on_outcome(o->opts.arg, j->c.id, EVS_OUTCOME_ERROR, rc);
    }
    evs_log_close(j->log);
    evs_replay_free(j->rp);
    evs__creation_free(&j->c, o->alloc);
    evs__free(o->alloc, j);
    evs__orch_check_idle(o);
}

int evs__creation_make(evs__creation *c, const evs_allocator *a, evs_wf_def *d,
                       evs_span inputs, evs_span id, int64_t now,
                       evs_error_info *err)
{
    uint64_t h;
    int rc;

    memset(c, 0, sizeof(*c));
    c->def = d;
    c->d0.alloc = c->d1.alloc = a;
    rc = evs_wf_check_inputs(d, inputs, a, &c->inputs, &c->inputs_len, err);
    if (rc != 0)
        return rc;
    if (id.len) {
        memcpy(c->id, id.ptr, id.len);
        c->id_len = id.len;
    } else {
        if ((rc = evs_uuid7(c->id)) != 0)
            return rc;
        c->id_len = EVS_UUID_LEN;
    }
    if ((rc = evs_json_hash(c->inputs, c->inputs_len, NULL, &h)) != 0)
        return rc;
    snprintf(c->ihash, sizeof(c->ihash), "%016llx", (unsigned long long)h);

    EVS__JB_LIT(&c->d0, "{\"workflow_name\":");
    evs__jb_quote(&c->d0, evs_span_cstr(d->name));
    EVS__JB_LIT(&c->d0, ",\"inputs\":");
    evs__jb_json(&c->d0, (evs_span){c->inputs, c->inputs_len});
    EVS__JB_LIT(&c->d0, ",\"definition\":");
    evs__jb_json(&c->d0, d->json);
    EVS__JB_LIT(&c->d0, ",\"definition_hash\":\"");
    evs__jb_str(&c->d0, d->hash);
    EVS__JB_LIT(&c->d0, "\",\"inputs_hash\":\"");
    evs__jb_str(&c->d0, c->ihash);
    EVS__JB_LIT(&c->d0, "\",\"lineage\":{}}");
    EVS__JB_LIT(&c->d1, "{\"parent\":null,\"current_step\":");
    evs__jb_quote(&c->d1, evs_span_cstr(d->steps[0].name));
    EVS__JB_LIT(&c->d1, "}");
    if (c->d0.err || c->d1.err)
        return -ENOMEM;
    for (int i = 0; i < 2; i++) {
        if ((rc = evs_uuid7(c->uuid[i])) != 0)
            return rc;
        c->ev[i].id = (evs_span){c->uuid[i], EVS_UUID_LEN};
        c->ev[i].path_id = evs_span_cstr("main");
        c->ev[i].sequence = (uint64_t)i + 1;
        c->ev[i].timestamp_us = now;
    }
    c->ev[0].event_type = evs_span_cstr(EVS_EV_EXECUTION_STARTED);
    c->ev[0].data = (evs_span){c->d0.p, c->d0.len};
    c->ev[1].event_type = evs_span_cstr(EVS_EV_PATH_STARTED);
    c->ev[1].data = (evs_span){c->d1.p, c->d1.len};
    /* The first snapshot: enough for listings; replay starts from the
     * log, which is two events long. */
    c->snap.workflow_name = evs_span_cstr(d->name);
    c->snap.workflow_hash = evs_span_cstr(d->hash);
    c->snap.inputs_hash = evs_span_cstr(c->ihash);
    c->snap.status = evs_span_cstr("running");
    c->snap.start_time_us = now;
    c->snap.created_at_us = now;
    c->snap.inputs = (evs_span){c->inputs, c->inputs_len};
    c->snap.workflow_data = d->json;
    return 0;
}

void evs__creation_free(evs__creation *c, const evs_allocator *a)
{
    evs_wf_free(c->def);
    evs__jb_free(&c->d0);
    evs__jb_free(&c->d1);
    evs__free(a, c->inputs);
    memset(c, 0, sizeof(*c));
}

static int start(evs_orch *o, evs_span def, evs_span inputs, evs_span id,
                 char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    evs_wf_def *d = NULL;
    start_job *j;
    int rc;

    if (o->stopping)
        return -ECANCELED;
    if (id.len && (id.len > EVS_ID_MAX || !evs_id_valid(id.ptr, id.len)))
        return EVS_EBADID;
    rc = evs_wf_parse(def.ptr, def.len, o->alloc, has_action, o, &d, err);
    if (rc != 0)
        return rc;
    j = evs__calloc(o->alloc, sizeof(*j));
    if (!j) {
        evs_wf_free(d);
        return -ENOMEM;
    }
    j->o = o;
    /* The snapshot's spans point into the definition, which j->c owns. */
    rc = evs__creation_make(&j->c, o->alloc, d, inputs, id, evs__orch_now_us(o),
                            err);
    if (rc != 0)
        goto fail;
    if (out_id) {
        memcpy(out_id, j->c.id, j->c.id_len);
        out_id[j->c.id_len] = '\0';
    }
    j->work.data = j;
    evs__orch_watch_store(o, 0);
    j->note_gen = o->note_gen;
    j->queued_ms = uv_now(o->loop);
    o->busy++;
    if ((rc = uv_queue_work(o->loop, &j->work, start_work, start_done)) != 0) {
        o->busy--;
        goto fail;
    }
    return 0;
fail:
    evs__creation_free(&j->c, o->alloc);
    evs__free(o->alloc, j);
    return rc;
}

int evs_orch_start(evs_orch *o, evs_span def, evs_span inputs, evs_span id,
                   char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    evs_error_info_clear(err);
    return evs__error_rc(err, start(o, def, inputs, id, out_id, err));
}

int evs_exec_start(evs_store *s, evs_span def, evs_span inputs, evs_span id,
                   char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    const evs_allocator *a = evs_store_allocator(s);
    evs__creation c;
    evs_wf_def *d = NULL;
    int rc;

    evs_error_info_clear(err);
    memset(&c, 0, sizeof(c));
    if (id.len && (id.len > EVS_ID_MAX || !evs_id_valid(id.ptr, id.len)))
        return evs__error_rc(err, EVS_EBADID);
    rc = evs_wf_parse(def.ptr, def.len, a, NULL, NULL, &d, err);
    if (rc != 0)
        return evs__error_rc(err, rc);
    /* d is the creation's from here, even on failure. */
    rc = evs__creation_make(&c, a, d, inputs, id, evs_now_us(), err);
    if (rc == 0)
        rc = evs_exec_create_flags(s, c.id, c.id_len, &c.snap, c.ev, 2,
                                   EVS_SNAPSHOT_CACHE);
    if (rc == 0 && out_id) {
        memcpy(out_id, c.id, c.id_len);
        out_id[c.id_len] = '\0';
    }
    evs__creation_free(&c, a);
    return evs__error_rc(err, rc);
}
