/*
 * run_gate.c: what a run does between its calls, and while a call waits:
 * taking the inbox's requests (events, pause, unpause, terminate),
 * waiting for time to pass or for an unpause, interrupts, and the checks
 * every call begins and ends with.
 */
#include "run_int.h"
#include "lineage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int body_str(evs_span body, const char *key, char *buf, size_t cap)
{
    evs_span v;
    size_t n;

    if (evs__json_get(body, key, &v) != 1 || v.len < 2 || v.ptr[0] != '"' ||
        v.len - 2 >= cap)
        return 0;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, buf);
    buf[n] = '\0';
    return strlen(buf) == n;
}

/* Cancels every live path, the root's too unless keep_root, the latest
 * first: the run ends. */
int evs__run_cancel_paths(evs_run *r, const char *why, int keep_root,
                          evs_error_info *err)
{
    const evs_path_state *p;
    evs__jbuf d = {.alloc = r->c->alloc};
    char path[EVS_ID_MAX + 1];
    int rc = 0;

    EVS__JB_LIT(&d, "{\"error\":{\"type\":\"cancelled\",\"message\":");
    evs__jb_quote(&d, evs_span_cstr(why));
    EVS__JB_LIT(&d, ",\"retryable\":false}}");
    for (size_t i = evs_replay_path_count(r->c->rp); i-- > 0 && rc == 0;) {
        p = evs_replay_path(r->c->rp, i);
        if (p->ended_seq || p->id.len > EVS_ID_MAX ||
            (keep_root && evs__span_eq_cstr(p->id, "main")))
            continue;
        memcpy(path, p->id.ptr, p->id.len);
        path[p->id.len] = '\0';
        rc =
            evs__run_emit_on(r, path, NULL, EVS_EV_PATH_CANCELLED, "", &d, err);
    }
    evs__jb_free(&d);
    return rc;
}

/* Records what one request asks, as the orchestrator does (FORMAT.md
 * §13). Returns 1 if it changed the status (a control request), 0 if
 * not, or an error. */
static int take_one(evs_run *r, const evs_request *q, int control_taken,
                    evs_error_info *err)
{
    const evs_exec_state *st = evs_replay_exec(r->c->rp);
    char kind[16], type[RUN_NAME_MAX * 4 + 1], req_id[EVS_UUID_LEN + 1];
    evs__jbuf d = {.alloc = r->c->alloc};
    evs_span payload;
    int rc = 0;

    memcpy(req_id, q->id.ptr, EVS_UUID_LEN);
    req_id[EVS_UUID_LEN] = '\0';
    if (st->status >= EVS_STATUS_COMPLETED)
        return 0;
    if (!body_str(q->body, "kind", kind, sizeof(kind)))
        return 0;
    if (evs__json_get(q->body, "payload", &payload) != 1)
        payload = (evs_span){0};
    if (strcmp(kind, "event") == 0) {
        if (!body_str(q->body, "type", type, sizeof(type)) ||
            evs_replay_signal_received(r->c->rp, q->id, NULL))
            return 0;
        EVS__JB_LIT(&d, "{\"signal\":");
        evs__jb_quote(&d, evs_span_cstr(type));
        EVS__JB_LIT(&d, ",\"payload\":");
        evs__jb_json(&d, payload);
        EVS__JB_LIT(&d, "}");
        rc = evs__run_emit_on(r, "main", req_id, EVS_EV_SIGNAL_RECEIVED, "", &d,
                              err);
    } else if (control_taken) {
        rc = 2; /* one control request per append: the next one later */
    } else if (strcmp(kind, "pause") == 0) {
        if (st->status != EVS_STATUS_PAUSED) {
            evs__request_control_data(&d, q->body);
            rc = evs__run_emit_on(r, "main", req_id, EVS_EV_EXECUTION_PAUSED,
                                  "", &d, err);
            rc = rc ? rc : 1;
        }
    } else if (strcmp(kind, "unpause") == 0) {
        if (st->status == EVS_STATUS_PAUSED) {
            evs__request_control_data(&d, q->body);
            rc = evs__run_emit_on(r, "main", req_id, EVS_EV_EXECUTION_RESUMED,
                                  "", &d, err);
            rc = rc ? rc : 1;
        }
    } else if (strcmp(kind, "terminate") == 0) {
        rc = evs__run_cancel_paths(r, "the execution was terminated", 0, err);
        evs__request_control_data(&d, q->body);
        if (rc == 0)
            rc = evs__run_emit_on(r, "main", req_id,
                                  EVS_EV_EXECUTION_TERMINATED, "", &d, err);
        rc = rc ? rc : 1;
    }
    evs__jb_free(&d);
    return rc;
}

/* Takes the inbox's requests: records them, makes them durable, then
 * removes them. At most one control request is taken per call. */
static int take_requests(evs_run *r, evs_error_info *err)
{
    evs_request_listing l = {0};
    size_t i, done = 0;
    int rc, control = 0;

    /* One metadata call when nothing was posted since the last look. */
    rc = evs_request_changed(r->c->s, r->c->id, r->c->id_len, &r->c->watch);
    if (rc <= 0)
        return rc == 0 ? 0
                       : evs__run_fail(r, err, rc, "inbox",
                                       "run %s: looking at its inbox: %s",
                                       r->c->id, evs_strerror(rc));
    rc = evs_request_list(r->c->s, r->c->id, r->c->id_len, &l);
    if (rc != 0) {
        evs_request_list_free(&l);
        return evs__run_fail(r, err, rc, "inbox",
                             "run %s: listing its inbox: %s", r->c->id,
                             evs_strerror(rc));
    }
    for (i = 0; i < l.count; i++, done++) {
        rc = take_one(r, &l.items[i], control, err);
        if (rc == 2)
            break;
        if (rc < 0)
            goto out;
        control |= rc;
    }
    rc = 0;
    if (done && (rc = evs__run_flush(r, err)) == 0)
        for (i = 0; i < done; i++)
            evs_request_remove(r->c->s, r->c->id, r->c->id_len,
                               l.items[i].id.ptr, l.items[i].id.len);
out:
    evs_request_list_free(&l);
    return rc;
}

/* About to wait: what is buffered is made durable, and the snapshot
 * brought up to date, so that listings show the run waiting. */
void evs__run_before_blocking(evs_run *r)
{
    run_core *c = r->c;

    if (!c->broken && evs_recorder_last_seq(c->rec) != c->snap_seq)
        evs__run_save_snapshot(r);
}

/* Sleeps `ms` without the run's lock, so that its other handles go on.
 * Returns -EINTR, with err filled, when evs_run_interrupt asked, or a
 * signal the process handles came meanwhile; else 0. */
int evs__run_nap(evs_run *r, int64_t ms, evs_error_info *err)
{
    struct timespec ts;
    int signalled = 0;

    if (ms > 0) {
        evs__run_before_blocking(r);
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        pthread_mutex_unlock(&r->c->mu);
        signalled = nanosleep(&ts, NULL) != 0 && errno == EINTR;
        pthread_mutex_lock(&r->c->mu);
    }
    return evs__run_interrupted(r, signalled, err);
}

/* -EINTR (err filled) if the wait must end: evs_run_interrupt asked (the
 * request is taken), or `signalled`; EVS_ELEASE if the run's lease was
 * found lost. */
int evs__run_interrupted(evs_run *r, int signalled, evs_error_info *err)
{
    int rc;

    /* A lease lost meanwhile ends the wait too: nothing it waits for
     * may be recorded by this handle any more. */
    if ((rc = evs__run_lease_check(r, err)) != 0)
        return rc;
    if (!atomic_exchange(&r->c->interrupt, 0) && !signalled)
        return 0;
    /* A command already named (a sleep, a wait, a join) is taken up by
     * the next call; a step's backoff is, by its retry. */
    if (r->step[0] && !r->open && !r->retrying[0])
        snprintf(r->pending, sizeof(r->pending), "%s", r->step);
    return evs__run_fail(r, err, -EINTR, "interrupted",
                         "run %s: the wait was interrupted; nothing is lost, "
                         "call again to go on",
                         r->c->id);
}

void evs_run_interrupt(evs_run *r)
{
    if (r)
        atomic_store(&r->c->interrupt, 1);
}

int evs__run_done(evs_run *r, int rc, evs_error_info *err)
{
    if (rc < 0 && err && !err->msg[0])
        evs__run_fail(r, err, rc, rc == -ENOMEM ? "memory" : "", "run %s: %s",
                      r->c->id, evs_strerror(rc));
    return rc;
}

int evs__run_usable(evs_run *r, evs_error_info *err)
{
    int rc;

    if ((rc = evs__run_lease_check(r, err)) != 0)
        return rc;
    if (r->c->broken && r->c->broken_rc == EVS_ELEASE)
        return evs__run_lease_lost(r, err);
    if (r->c->broken && r->c->broken_rc == EVS_ELIMIT)
        return evs__run_fail(r, err, EVS_ELIMIT, "limit",
                             "run %s failed: its %s", r->c->id,
                             r->c->limit_why);
    if (r->c->broken)
        return evs__run_fail(r, err, r->c->broken_rc, "store",
                             "run %s: an earlier write failed (%s); close "
                             "the run and run its code again",
                             r->c->id, evs_strerror(r->c->broken_rc));
    if (r->c->suspended)
        return evs__run_fail(r, err, EVS_ESUSPENDED, "suspended",
                             "run %s is suspended; close it and run its "
                             "code again when it is due",
                             r->c->id);
    return 0;
}

double evs__run_random(evs_run *r)
{
    r->c->rng ^= r->c->rng << 13;
    r->c->rng ^= r->c->rng >> 7;
    r->c->rng ^= r->c->rng << 17;
    return (double)(r->c->rng >> 11) / 9007199254740992.0;
}

static int suspend(evs_run *r, evs_error_info *err, const char *why,
                   const char *fmt_id)
{
    int rc;

    if ((rc = evs__run_flush(r, err)) != 0)
        return rc;
    evs__run_save_snapshot(r);
    r->c->suspended = 1;
    return evs__run_fail(r, err, EVS_ESUSPENDED, "suspended", "run %s %s",
                         fmt_id, why);
}

/* Takes the requests, then: 0 to go on; EVS_EFINISHED once the run has
 * ended (terminated); while it is paused, waits (block mode) or
 * suspends. */
int evs__run_gate(evs_run *r, evs_error_info *err)
{
    const evs_exec_state *st;
    int rc;

    for (;;) {
        if ((rc = take_requests(r, err)) != 0)
            return rc;
        st = evs_replay_exec(r->c->rp);
        if (st->status >= EVS_STATUS_COMPLETED)
            return evs__run_fail(
                r, err, EVS_EFINISHED, "status", "run %s has %s", r->c->id,
                st->status == EVS_STATUS_TERMINATED ? "been terminated"
                                                    : "ended");
        if (st->status != EVS_STATUS_PAUSED)
            return 0;
        if (r->c->suspend)
            return suspend(r, err, "is paused", r->c->id);
        if ((rc = evs__run_nap(r, r->c->poll_ms, err)) != 0)
            return rc;
    }
}

/* The start of every call that records: clears err; refuses a broken or
 * suspended handle, and an open step (or one whose retry is scheduled);
 * then takes the requests (evs__run_gate). */
int evs__run_idle(evs_run *r, evs_error_info *err)
{
    int rc;

    if (err)
        evs_error_info_clear(err);
    if ((rc = evs__run_usable(r, err)) != 0)
        return rc;
    if (!r->open)
        r->step[0] = '\0'; /* a new command: not named yet */
    if (r->open || r->retrying[0])
        return evs__run_fail(
            r, err, -EBUSY, "argument", "run %s: step \"%s\" is %s", r->c->id,
            r->open ? r->step : r->retrying,
            r->open ? "open" : "to be retried: begin it again first");
    return evs__run_gate(r, err);
}

/* Waits until due_us, taking requests meanwhile (a termination ends the
 * wait with EVS_EFINISHED). In suspend mode, returns EVS_ESUSPENDED if
 * it is not yet due. */
int evs__run_wait_until(evs_run *r, int64_t due_us, evs_error_info *err)
{
    int64_t now;
    int rc;

    for (;;) {
        if ((rc = evs__run_gate(r, err)) != 0)
            return rc;
        now = evs_now_us();
        if (now >= due_us)
            return 0;
        if (r->c->suspend)
            return suspend(r, err, "waits for its time", r->c->id);
        rc = evs__run_nap(r,
                          (due_us - now + 999) / 1000 < r->c->poll_ms
                              ? (due_us - now + 999) / 1000
                              : r->c->poll_ms,
                          err);
        if (rc != 0)
            return rc;
    }
}
