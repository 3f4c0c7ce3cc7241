/*
 * orch_flush.c: the path from a decision to the disk.
 *
 * Every decision is an event: evs__orch_emit applies it to the
 * execution's replayer first (so a decision that would break a history
 * rule is never written) and then hands it to the recorder. Nothing is
 * written on the loop thread: evs__orch_kick detaches what the recorder
 * holds and appends it on the threadpool, one batch per execution at a
 * time, with a snapshot when one is due. Actions wait in x->waiting until
 * the batch holding their step_started is durable, which is what makes
 * "a step's outcome is durable before the next step runs" true.
 */
#include "drive_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* Recording and flushing                                           */
/* ---------------------------------------------------------------- */

int evs__orch_replay_new(const evs_allocator *a, evs_replay **out)
{
    evs_replay_opts ro;

    evs_replay_opts_init(&ro);
    ro.alloc = a;
    ro.compact = 1;
    return evs_replay_new(&ro, out);
}

int evs__orch_note_takeover(orch_exec *x)
{
    evs__jbuf t = {.alloc = x->o->alloc};
    int rc;

    if (!x->taking_over)
        return 0;
    x->taking_over = 0;
    evs__takeover_data(&t, &x->o->me, evs_replay_exec(x->rp), x->from_seq);
    rc = evs__orch_emit(x, NULL, EVS_EV_EXECUTION_TAKEN_OVER,
                        evs_span_cstr("main"), (evs_span){0}, &t,
                        &x->takeover_seq);
    evs__jb_free(&t);
    if (rc == 0)
        evs__orch_logf(x->o, EVS_LOG_INFO,
                       EVS_LOG_FIELDS(.execution = x->id,
                                      .sequence = x->takeover_seq),
                       "taken over by runner %s (pid %ld) after sequence "
                       "%llu",
                       x->o->me.id, x->o->me.pid,
                       (unsigned long long)x->from_seq);
    return rc;
}

/*
 * History limits (FORMAT.md §3.1). Before an event is recorded: would
 * the history, with what is recorded and not yet written and this event
 * (both counted at their largest), pass the hard limit? Then the
 * execution fails instead, its paths cancelled, with the error type
 * "history_limit": one append ending in execution_failed, which the
 * store lets pass its limit by a reserve. An event that ends the
 * execution is held to that reserve.
 */
static int limit_reached(orch_exec *x, const evs_event *ev)
{
    evs__limits l = x->lim;
    uint64_t bytes = x->log_bytes + evs_recorder_pending_bytes(x->rec) +
                     evs_line_encoded_max(ev);
    char why[160];
    evs__jbuf e = {.alloc = x->o->alloc}, d = {.alloc = x->o->alloc};

    if (x->limit_failing)
        return 0;
    if (x->limit_hit)
        return EVS_ELIMIT;
    if (evs_event_type_is_terminal(ev->event_type)) {
        l.max_events += l.max_events < EVS_LIMIT_NONE - EVS_LIMIT_RESERVE_EVENTS
                            ? EVS_LIMIT_RESERVE_EVENTS
                            : 0;
        l.max_bytes += l.max_bytes < EVS_LIMIT_NONE - EVS_LIMIT_RESERVE_BYTES
                           ? EVS_LIMIT_RESERVE_BYTES
                           : 0;
    }
    if (!evs__limits_past(&l, ev->sequence, bytes, why, sizeof(why)))
        return 0;
    evs__orch_logf(x->o, EVS_LOG_ERROR,
                   EVS_LOG_FIELDS(.execution = x->id, .err = EVS_ELIMIT),
                   "failed: its %s", why);
    x->limit_failing = 1;
    evs__limits_error(&e, why);
    EVS__JB_LIT(&d, "{\"error\":");
    evs__jb_raw(&d, e.p, e.len);
    EVS__JB_LIT(&d, "}");
    if (e.err)
        d.err = e.err;
    if (evs__drive_cancel_paths(x, (evs_span){0}, evs_span_cstr(why)) == 0)
        evs__orch_emit(x, NULL, EVS_EV_EXECUTION_FAILED, evs_span_cstr("main"),
                       (evs_span){0}, &d, NULL);
    evs__jb_free(&e);
    evs__jb_free(&d);
    x->limit_failing = 0;
    x->limit_hit = 1;
    return EVS_ELIMIT;
}

/* After an event is recorded: the history_warning, once, when the
 * history has reached a warning threshold (the state says whether it
 * was recorded, so a recovered execution does not record it again). */
static void limit_warn(orch_exec *x)
{
    const evs_exec_state *st = evs_replay_exec(x->rp);
    evs__jbuf d = {.alloc = x->o->alloc};
    char msg[256];

    if (x->limit_failing || st->status >= EVS_STATUS_COMPLETED ||
        !evs__limits_warning(
            &x->lim, st, st->last_seq,
            x->log_bytes + evs_recorder_pending_bytes(x->rec), &d, msg,
            sizeof(msg))) {
        evs__jb_free(&d);
        return;
    }
    evs__orch_logf(x->o, EVS_LOG_WARN, EVS_LOG_FIELDS(.execution = x->id),
                   "%s", msg);
    evs__orch_emit(x, NULL, EVS_EV_HISTORY_WARNING, evs_span_cstr("main"),
                   (evs_span){0}, &d, NULL);
    evs__jb_free(&d);
}

int evs__orch_emit(orch_exec *x, const char *id, const char *type,
                   evs_span path, evs_span step, const evs__jbuf *data,
                   uint64_t *seq)
{
    char uuid[EVS_UUID_LEN + 1];
    evs_error_info v;
    evs_event ev;
    int rc;

    if (seq)
        *seq = 0;
    if (x->broken || x->released)
        return x->err ? x->err : -ECANCELED;
    if (data && data->err) {
        evs__orch_fail_exec(x, -ENOMEM, "building an event");
        return -ENOMEM;
    }
    if (x->taking_over && (rc = evs__orch_note_takeover(x)) != 0)
        return rc;
    if (id)
        memcpy(uuid, id, EVS_UUID_LEN);
    else if ((rc = evs_uuid7(uuid)) != 0) {
        evs__orch_fail_exec(x, rc, "making an event id");
        return rc;
    }
    memset(&ev, 0, sizeof(ev));
    ev.id = (evs_span){uuid, EVS_UUID_LEN};
    ev.execution_id = (evs_span){x->id, x->id_len};
    ev.path_id = path;
    ev.sequence = evs_recorder_last_seq(x->rec) + 1;
    ev.timestamp_us = evs__orch_now_us(x->o);
    ev.event_type = evs_span_cstr(type);
    ev.step_name = step;
    ev.data = data && data->len ? (evs_span){data->p, data->len}
                                : evs_span_cstr("{}");
    if ((rc = limit_reached(x, &ev)) != 0)
        return rc;
    /* The replayer first: a decision that breaks a history rule is a bug
     * here, and must not reach the log. */
    if ((rc = evs_replay_apply(x->rp, &ev, &v)) != 0) {
        evs__orch_fail_exec(x, rc, rc == EVS_EHISTORY ? v.msg : NULL);
        return rc;
    }
    if ((rc = evs_recorder_record(x->rec, &ev, seq)) != 0) {
        evs__orch_fail_exec(x, rc, "recording an event");
        return rc;
    }
    x->last_at_us = ev.timestamp_us;
    if (x->o->opts.snapshot_every &&
        ev.sequence - x->snap_seq >= x->o->opts.snapshot_every)
        x->want_snap = 1;
    limit_warn(x);
    return 0;
}

int evs__orch_version(orch_exec *x, evs_span pid, evs_span change, int64_t min,
                      int64_t max, int64_t *version)
{
    const evs_version_state *v = evs_replay_find_version(x->rp, change);
    evs__jbuf d = {.alloc = x->o->alloc};
    int rc;

    if (v) {
        if (v->version < min || v->version > max) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "execution %s, change \"%.*s\": recorded version "
                     "%lld is outside [%lld, %lld]",
                     x->id, (int)change.len, change.ptr, (long long)v->version,
                     (long long)min, (long long)max);
            evs__orch_fail_exec(x, EVS_EVERSION, msg);
            return EVS_EVERSION;
        }
        *version = v->version;
        return 0;
    }
    EVS__JB_LIT(&d, "{\"change_id\":");
    evs__jb_quote(&d, change);
    EVS__JB_LIT(&d, ",\"version\":");
    evs__jb_int(&d, max);
    EVS__JB_LIT(&d, ",\"min\":");
    evs__jb_int(&d, min);
    EVS__JB_LIT(&d, ",\"max\":");
    evs__jb_int(&d, max);
    EVS__JB_LIT(&d, "}");
    rc = evs__orch_emit(x, NULL, EVS_EV_VERSION_DECISION, pid, (evs_span){0},
                        &d, NULL);
    evs__jb_free(&d);
    if (rc == 0)
        *version = max;
    return rc;
}

int evs_orch_get_version(evs_orch *o, evs_span id, evs_span change, int64_t min,
                         int64_t max, int64_t *version)
{
    orch_exec *x = evs__orch_find_exec(o, id);
    evs_span pid = {0};
    int rc;

    if (!x)
        return -ENOENT;
    if (change.len == 0 || min > max)
        return -EINVAL;
    if (evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return EVS_EFINISHED;
    /* Recorded on a live path (the decision belongs to the execution). */
    for (size_t i = 0; i < evs_replay_path_count(x->rp) && !pid.len; i++)
        if (!evs_replay_path(x->rp, i)->ended_seq)
            pid = evs_replay_path(x->rp, i)->id;
    rc = evs__orch_version(x, pid, change, min, max, version);
    if (!x->released)
        evs__drive(x);
    return rc;
}

static void flush_work(uv_work_t *w)
{
    orch_exec *x = w->data;

    x->flush_rc = 0;
    x->snap_rc = 0;
    /* The snapshot rides on the batch's append when there is one (one
     * statement on PostgreSQL), and the batch that ends the execution
     * gives its lease up too: nothing is appended after it, and the
     * close then sends nothing (it runs on the loop thread). */
    if (x->batch)
        x->flush_rc = evs_recorder_flush_run_snapshot(
            x->batch, x->snap_final ? EVS_APPEND_RELEASE : 0, x->snap,
            EVS_SNAPSHOT_CACHE, &x->snap_rc);
    else if (x->snap)
        x->snap_rc = evs_snapshot_save_flags(x->o->store, x->id, x->id_len,
                                             x->snap, EVS_SNAPSHOT_CACHE);
}

static void dispatch_durable(orch_exec *x)
{
    uint64_t durable = evs_recorder_flushed_seq(x->rec);
    evs_action_req **pp = &x->waiting;

    while (*pp) {
        evs_action_req *r = *pp;
        if (r->need_seq <= durable) {
            *pp = r->next;
            r->next = NULL;
            if (r->stale) { /* its path was cancelled meanwhile */
                evs__req_free(r);
                continue;
            }
            if (x->o->stopping) {
                /* Not started: the next runner re-runs the step. */
                orch_path *p = evs__orch_path_get(x, r->call.path_id, 0);
                if (p && p->req == r)
                    p->req = NULL;
                evs__req_free(r);
                continue;
            }
            r->dispatched = 1;
            evs__actions_dispatch(r);
        } else {
            pp = &r->next;
        }
    }
}

void evs__orch_finish_if_done(orch_exec *x)
{
    const evs_exec_state *st = evs_replay_exec(x->rp);
    evs_outcome oc;

    if (x->released || x->flushing || evs_recorder_pending(x->rec) ||
        x->want_snap)
        return;
    switch (st->status) {
    case EVS_STATUS_COMPLETED: oc = EVS_OUTCOME_COMPLETED; break;
    case EVS_STATUS_FAILED: oc = EVS_OUTCOME_FAILED; break;
    case EVS_STATUS_TERMINATED: oc = EVS_OUTCOME_TERMINATED; break;
    case EVS_STATUS_CONTINUED: oc = EVS_OUTCOME_CONTINUED; break;
    default: return;
    }
    evs__orch_report(x, oc, 0);
    evs__orch_release(x);
    /* A service goes on in its successor, here. */
    if (oc == EVS_OUTCOME_CONTINUED && x->successor[0] && !x->o->stopping) {
        int rc = evs_orch_resume(x->o, evs_span_cstr(x->successor));
        if (rc != 0 && rc != EVS_ELOCKED && rc != -EALREADY)
            evs__orch_logf(x->o, EVS_LOG_ERROR,
                           EVS_LOG_FIELDS(.execution = x->id, .err = rc),
                           "successor %s not resumed: %s", x->successor,
                           evs_strerror(rc));
    }
}

static void flush_done(uv_work_t *w, int status)
{
    orch_exec *x = w->data;
    int rc;

    (void)status;
    x->flushing = 0;
    rc = x->batch ? evs_recorder_flush_end(x->rec, x->batch) : 0;
    x->batch = NULL;
    x->log_bytes = evs_log_size(x->log); /* no flush is out: no wait */
    if (x->snap) {
        if (x->snap_rc != 0 && rc == 0)
            evs__orch_logf(x->o, EVS_LOG_WARN,
                           EVS_LOG_FIELDS(.execution = x->id,
                                          .err = x->snap_rc),
                           "snapshot not saved; the log is intact");
        evs_snapshot_free(x->snap);
        x->snap = NULL;
    }
    if (rc != 0 && !x->released)
        evs__orch_fail_exec(x, rc, "appending to the log");
    if (!x->released) {
        dispatch_durable(x);
        evs__orch_take_done(x);
        if (x->inbox_dirty)
            evs__orch_inbox_pick(x);
        evs__drive(x);
        evs__orch_finish_if_done(x);
    }
    {
        evs_orch *o = x->o; /* x may go with its last reference */
        evs__orch_exec_unref(x);
        evs__orch_check_idle(o);
    }
}

static int status_wants_snapshot(evs_exec_status s)
{
    return s == EVS_STATUS_WAITING || s == EVS_STATUS_PAUSED ||
           s >= EVS_STATUS_COMPLETED;
}

void evs__orch_kick(orch_exec *x)
{
    const evs_exec_state *st;
    int rc;

    if (x->flushing || x->broken || x->released)
        return;
    st = evs_replay_exec(x->rp);
    /* Snapshots at the states a reader looks for: waits, pauses and the
     * end (and every snapshot_every events, set by evs__orch_emit). */
    if (status_wants_snapshot(st->status) && st->last_seq != x->snap_seq)
        x->want_snap = 1;
    if (evs_recorder_pending(x->rec) == 0 && !x->want_snap) {
        /* Nothing to write: what waits for durability (a step re-run
         * after recovery) may go now. */
        dispatch_durable(x);
        return;
    }
    if ((rc = evs_recorder_flush_begin(x->rec, &x->batch)) != 0) {
        evs__orch_fail_exec(x, rc, "starting a flush");
        return;
    }
    x->snap_final = 0;
    if (x->want_snap) {
        x->want_snap = 0;
        x->snap_seq = st->last_seq;
        x->snap_final = st->status >= EVS_STATUS_COMPLETED;
        if (evs_replay_snapshot_prepare(x->rp, (evs_span){0}, &x->snap))
            x->snap = NULL; /* only a cache: skipped */
        else /* when known, the store need not look it up */
            x->snap->created_at_us = x->created_at_us;
    }
    x->flushing = 1;
    x->refs++;
    x->work.data = x;
    rc = uv_queue_work(x->o->loop, &x->work, flush_work, flush_done);
    if (rc != 0) {
        x->flushing = 0;
        x->refs--;
        evs__orch_fail_exec(x, rc, "queueing a flush");
    }
}
