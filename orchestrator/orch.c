/*
 * orch.c: the orchestrator's lifecycle, its executions, and the path from
 * a decision to the disk.
 *
 * Every decision is an event: orch_emit applies it to the execution's
 * replayer first (so a decision that would break a history rule is never
 * written) and then hands it to the recorder. Nothing is written on the
 * loop thread: orch_kick detaches what the recorder holds and appends it
 * on the threadpool, one batch per execution at a time, with a snapshot
 * when one is due. Actions wait in x->waiting until the batch holding
 * their step_started is durable, which is what makes "a step's outcome is
 * durable before the next step runs" true.
 *
 * Executions are reference counted: handles, live action requests and a
 * flush in flight each hold one, so a released execution is freed only
 * when nothing can call back into it.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void exec_free(orch_exec *x);
static void inbox_pick(orch_exec *x);
static void dispatch_durable(orch_exec *x);

const char *evs_outcome_name(evs_outcome o)
{
    switch (o) {
    case EVS_OUTCOME_COMPLETED: return "completed";
    case EVS_OUTCOME_FAILED: return "failed";
    case EVS_OUTCOME_TERMINATED: return "terminated";
    case EVS_OUTCOME_CONTINUED: return "continued";
    case EVS_OUTCOME_SUSPENDED: return "suspended";
    case EVS_OUTCOME_ERROR: return "error";
    }
    return "unknown";
}

void evs_orch_opts_init(evs_orch_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->snapshot_every = 1000;
    o->inbox_poll_ms = 500;
    o->continue_events = 4096;
    o->continue_bytes = (uint64_t)4 << 20;
}

static void olog(evs_orch *o, evs_log_level lvl, const char *fmt, ...)
{
    const evs_store_opts *so = evs_store_get_opts(o->store);
    char msg[512];
    va_list ap;

    if (!so->log_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    so->log_fn(so->log_ctx, lvl, msg);
}

double orch_random(evs_orch *o)
{
    /* xorshift64*: jitter only needs to spread retries apart. */
    o->rnd ^= o->rnd >> 12;
    o->rnd ^= o->rnd << 25;
    o->rnd ^= o->rnd >> 27;
    return (double)((o->rnd * 2685821657736338717ULL) >> 11) /
           (double)(1ULL << 53);
}

/* ---------------------------------------------------------------- */
/* Executions                                                       */
/* ---------------------------------------------------------------- */

orch_exec *orch_find_exec(const evs_orch *o, evs_span id)
{
    for (orch_exec *x = o->execs; x; x = x->next)
        if (!x->released && x->id_len == id.len &&
            memcmp(x->id, id.ptr, id.len) == 0)
            return x;
    return NULL;
}

void orch_exec_unref(orch_exec *x)
{
    if (--x->refs == 0)
        exec_free(x);
}

orch_path *orch_path_get(orch_exec *x, evs_span id, int create)
{
    orch_path *p;

    for (size_t i = 0; i < x->npaths; i++)
        if (strlen(x->paths[i].id) == id.len &&
            memcmp(x->paths[i].id, id.ptr, id.len) == 0)
            return &x->paths[i];
    if (!create)
        return NULL;
    if (x->npaths == x->cap_paths) {
        size_t nc = x->cap_paths ? x->cap_paths * 2 : 8;
        orch_path *np = realloc(x->paths, nc * sizeof(*np));
        if (!np)
            return NULL;
        x->paths = np;
        x->cap_paths = nc;
    }
    p = &x->paths[x->npaths];
    memset(p, 0, sizeof(*p));
    p->id = strndup(id.ptr, id.len);
    if (!p->id)
        return NULL;
    x->npaths++;
    return p;
}

static void timer_closed(uv_handle_t *h)
{
    orch_timer *t = h->data;
    orch_exec *x = t->x;

    free(t->path);
    free(t->id);
    free(t);
    orch_exec_unref(x);
}

static void timer_fired(uv_timer_t *h)
{
    orch_timer *t = h->data;
    orch_exec *x = t->x;
    orch_timer **pp;
    int64_t now = evs_now_us();

    /* libuv counts from its cached loop time, in whole milliseconds: a
     * timer may come a little before the recorded time it is due. */
    if (now < t->due_us) {
        uv_timer_start(&t->h, timer_fired,
                       (uint64_t)((t->due_us - now + 999) / 1000), 0);
        return;
    }
    for (pp = &x->timers; *pp && *pp != t; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = t->next;
    t->next = NULL;
    if (!x->released)
        drive_timer(x, t);
    uv_close((uv_handle_t *)&t->h, timer_closed);
    orch_check_idle(x->o);
}

orch_timer *orch_timer_arm(orch_exec *x, timer_kind k, evs_span path,
                           evs_span id, int64_t due_us)
{
    orch_timer *t = calloc(1, sizeof(*t));
    int64_t now = evs_now_us();
    uint64_t ms = due_us > now ? (uint64_t)((due_us - now + 999) / 1000) : 0;

    if (!t)
        return NULL;
    t->x = x;
    t->kind = k;
    t->due_us = due_us;
    t->path = strndup(path.ptr ? path.ptr : "", path.len);
    t->id = strndup(id.ptr ? id.ptr : "", id.len);
    if (!t->path || !t->id) {
        free(t->path);
        free(t->id);
        free(t);
        return NULL;
    }
    uv_timer_init(x->o->loop, &t->h);
    t->h.data = t;
    x->refs++;
    uv_timer_start(&t->h, timer_fired, ms, 0);
    t->next = x->timers;
    x->timers = t;
    return t;
}

void orch_timer_cancel(orch_timer *t)
{
    orch_exec *x = t->x;
    orch_timer **pp;

    for (pp = &x->timers; *pp && *pp != t; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = t->next;
    uv_timer_stop(&t->h);
    uv_close((uv_handle_t *)&t->h, timer_closed);
}

/* Whether the execution cannot go on by itself. It can while actions run
 * or wait to run, events wait to be written, or a timer is armed: a
 * sleep or a retry backoff is waited out, and a wait's timeout that is
 * due fires (a timeout that passed while no runner owned it fires as
 * soon as one resumes it). A wait for an event whose timeout is not due
 * yet, and a pause, need the outside world. */
int orch_is_suspended(const orch_exec *x)
{
    const evs_exec_state *st = evs_replay_exec(x->rp);
    int64_t now = evs_now_us();

    if (x->flushing || x->waiting || evs_recorder_pending(x->rec) ||
        x->want_snap)
        return 0;
    for (size_t i = 0; i < x->npaths; i++)
        if (x->paths[i].req)
            return 0;
    if (st->status == EVS_STATUS_PAUSED)
        return 1;
    for (const orch_timer *t = x->timers; t; t = t->next)
        if (t->kind != TK_WAIT_TIMEOUT || t->due_us <= now)
            return 0;
    return st->status == EVS_STATUS_WAITING;
}

static void report(orch_exec *x, evs_outcome oc, int err)
{
    evs_orch *o = x->o;

    if (x->reported)
        return;
    x->reported = 1;
    if (o->opts.on_outcome)
        o->opts.on_outcome(o->opts.arg, x->id, oc, err);
}

static void watch_closed(uv_handle_t *h)
{
    orch_exec *x = h->data;

    free(h);
    orch_exec_unref(x);
}

/* Stops driving x: its timers and watcher go, its actions in flight are
 * orphaned (their outcomes are ignored; a subprocess is killed). The log
 * stays open until the last reference goes, so a flush in flight ends. */
static void release(orch_exec *x)
{
    evs_orch *o = x->o;
    orch_exec **pp;

    if (x->released)
        return;
    x->released = 1;
    while (x->timers)
        orch_timer_cancel(x->timers);
    if (x->watch) {
        uv_fs_event_stop(x->watch);
        uv_close((uv_handle_t *)x->watch, watch_closed);
        x->watch = NULL;
    }
    for (size_t i = 0; i < x->npaths; i++) {
        evs_action_req *r = x->paths[i].req;
        if (r) {
            r->stale = 1;
            actions_kill(r);
            x->paths[i].req = NULL;
        }
    }
    while (x->waiting) {
        evs_action_req *r = x->waiting;
        x->waiting = r->next;
        req_free(r);
    }
    for (pp = &o->execs; *pp && *pp != x; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = x->next;
    o->nexecs--;
    orch_exec_unref(x);
}

static void exec_free(orch_exec *x)
{
    if (x->rec) {
        if (evs_recorder_pending(x->rec))
            olog(x->o, EVS_LOG_WARN,
                 "execution %s: %zu events not written; the next run "
                 "replays from the log", x->id,
                 evs_recorder_pending(x->rec));
        evs_recorder_close(x->rec);
    }
    evs_log_close(x->log);
    evs_replay_free(x->rp);
    evs_wf_free(x->def);
    for (size_t i = 0; i < x->npaths; i++)
        free(x->paths[i].id);
    free(x->paths);
    while (x->taken) {
        taken_req *t = x->taken;
        x->taken = t->next;
        free(t);
    }
    free(x);
}

void orch_fail_exec(orch_exec *x, int err, const char *why)
{
    if (x->broken)
        return;
    x->broken = 1;
    x->err = err;
    olog(x->o, EVS_LOG_ERROR, "execution %s: given up (%s): %s", x->id,
         evs_err_name(err), why ? why : evs_strerror(err));
    report(x, EVS_OUTCOME_ERROR, err);
    release(x);
}

/* ---------------------------------------------------------------- */
/* Recording and flushing                                           */
/* ---------------------------------------------------------------- */

int orch_replay_new(evs_replay **out)
{
    evs_replay_opts ro;

    evs_replay_opts_init(&ro);
    ro.compact = 1;
    return evs_replay_new(&ro, out);
}

int orch_emit(orch_exec *x, const char *id, const char *type, evs_span path,
              evs_span step, const evs__jbuf *data, uint64_t *seq)
{
    char uuid[EVS_UUID_LEN + 1];
    evs_violation v;
    evs_event ev;
    int rc;

    if (seq)
        *seq = 0;
    if (x->broken || x->released)
        return x->err ? x->err : -ECANCELED;
    if (data && data->err) {
        orch_fail_exec(x, -ENOMEM, "building an event");
        return -ENOMEM;
    }
    if (id)
        memcpy(uuid, id, EVS_UUID_LEN);
    else if ((rc = evs_uuid7(uuid)) != 0) {
        orch_fail_exec(x, rc, "making an event id");
        return rc;
    }
    memset(&ev, 0, sizeof(ev));
    ev.id = (evs_span){uuid, EVS_UUID_LEN};
    ev.execution_id = (evs_span){x->id, x->id_len};
    ev.path_id = path;
    ev.sequence = evs_recorder_last_seq(x->rec) + 1;
    ev.timestamp_us = evs_now_us();
    ev.event_type = evs_span_cstr(type);
    ev.step_name = step;
    ev.data = data && data->len ? (evs_span){data->p, data->len}
                                : evs_span_cstr("{}");
    /* The replayer first: a decision that breaks a history rule is a bug
     * here, and must not reach the log. */
    if ((rc = evs_replay_apply(x->rp, &ev, &v)) != 0) {
        orch_fail_exec(x, rc, rc == EVS_EHISTORY ? v.msg : NULL);
        return rc;
    }
    if ((rc = evs_recorder_record(x->rec, &ev, seq)) != 0) {
        orch_fail_exec(x, rc, "recording an event");
        return rc;
    }
    if (x->o->opts.snapshot_every &&
        ev.sequence - x->snap_seq >= x->o->opts.snapshot_every)
        x->want_snap = 1;
    return 0;
}

int orch_version(orch_exec *x, evs_span pid, evs_span change, int64_t min,
                 int64_t max, int64_t *version)
{
    const evs_version_state *v = evs_replay_find_version(x->rp, change);
    evs__jbuf d = {0};
    int rc;

    if (v) {
        if (v->version < min || v->version > max) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "execution %s, change \"%.*s\": recorded version "
                     "%lld is outside [%lld, %lld]", x->id,
                     (int)change.len, change.ptr, (long long)v->version,
                     (long long)min, (long long)max);
            orch_fail_exec(x, EVS_EVERSION, msg);
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
    rc = orch_emit(x, NULL, "version_decision", pid, (evs_span){0}, &d,
                   NULL);
    evs__jb_free(&d);
    if (rc == 0)
        *version = max;
    return rc;
}

int evs_orch_get_version(evs_orch *o, evs_span id, evs_span change,
                         int64_t min, int64_t max, int64_t *version)
{
    orch_exec *x = orch_find_exec(o, id);
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
    rc = orch_version(x, pid, change, min, max, version);
    if (!x->released)
        drive(x);
    return rc;
}

static void flush_work(uv_work_t *w)
{
    orch_exec *x = w->data;

    x->flush_rc = 0;
    x->snap_rc = 0;
    if (x->batch)
        x->flush_rc = evs_recorder_flush_run(x->batch);
    if (x->flush_rc == 0 && x->snap)
        x->snap_rc = evs_snapshot_save(x->o->store, x->id, x->id_len,
                                       x->snap);
}

static void take_done_requests(orch_exec *x)
{
    uint64_t durable = evs_recorder_flushed_seq(x->rec);
    taken_req **pp = &x->taken;

    while (*pp) {
        taken_req *t = *pp;
        if (t->seq <= durable && t->seq != UINT64_MAX) {
            int rc = evs_request_remove(x->o->store, x->id, x->id_len,
                                        t->id, strlen(t->id));
            if (rc != 0)
                olog(x->o, EVS_LOG_WARN,
                     "execution %s: request %s recorded but not removed "
                     "(%s); it will be recognised and skipped", x->id,
                     t->id, evs_err_name(rc));
            /* Keep the id while the file may still be listed. */
            t->seq = UINT64_MAX;
        }
        pp = &t->next;
    }
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
                req_free(r);
                continue;
            }
            if (x->o->stopping) {
                /* Not started: the next runner re-runs the step. */
                orch_path *p = orch_path_get(x, r->call.path_id, 0);
                if (p && p->req == r)
                    p->req = NULL;
                req_free(r);
                continue;
            }
            r->dispatched = 1;
            actions_dispatch(r);
        } else {
            pp = &r->next;
        }
    }
}

static void finish_if_done(orch_exec *x)
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
    report(x, oc, 0);
    release(x);
    /* A service goes on in its successor, here. */
    if (oc == EVS_OUTCOME_CONTINUED && x->successor[0] && !x->o->stopping) {
        int rc = evs_orch_resume(x->o, evs_span_cstr(x->successor));
        if (rc != 0 && rc != EVS_ELOCKED && rc != -EALREADY)
            olog(x->o, EVS_LOG_ERROR, "execution %s: successor %s not "
                 "resumed: %s", x->id, x->successor, evs_strerror(rc));
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
    if (x->snap) {
        if (x->snap_rc != 0 && rc == 0)
            olog(x->o, EVS_LOG_WARN,
                 "execution %s: snapshot not saved (%s); the log is "
                 "intact", x->id, evs_err_name(x->snap_rc));
        evs_snapshot_free(x->snap);
        x->snap = NULL;
    }
    if (rc != 0 && !x->released)
        orch_fail_exec(x, rc, "appending to the log");
    if (!x->released) {
        dispatch_durable(x);
        take_done_requests(x);
        if (x->inbox_dirty)
            inbox_pick(x);
        drive(x);
        finish_if_done(x);
    }
    {
        evs_orch *o = x->o; /* x may go with its last reference */
        orch_exec_unref(x);
        orch_check_idle(o);
    }
}

static int status_wants_snapshot(evs_exec_status s)
{
    return s == EVS_STATUS_WAITING || s == EVS_STATUS_PAUSED ||
           s >= EVS_STATUS_COMPLETED;
}

void orch_kick(orch_exec *x)
{
    const evs_exec_state *st;
    int rc;

    if (x->flushing || x->broken || x->released)
        return;
    st = evs_replay_exec(x->rp);
    /* Snapshots at the states a reader looks for: waits, pauses and the
     * end (and every snapshot_every events, set by orch_emit). */
    if (status_wants_snapshot(st->status) && st->last_seq != x->snap_seq)
        x->want_snap = 1;
    if (evs_recorder_pending(x->rec) == 0 && !x->want_snap) {
        /* Nothing to write: what waits for durability (a step re-run
         * after recovery) may go now. */
        dispatch_durable(x);
        return;
    }
    if ((rc = evs_recorder_flush_begin(x->rec, &x->batch)) != 0) {
        orch_fail_exec(x, rc, "starting a flush");
        return;
    }
    if (x->want_snap) {
        x->want_snap = 0;
        x->snap_seq = st->last_seq;
        if (evs_replay_snapshot_prepare(x->rp, (evs_span){0}, &x->snap))
            x->snap = NULL; /* only a cache: skipped */
    }
    x->flushing = 1;
    x->refs++;
    x->work.data = x;
    rc = uv_queue_work(x->o->loop, &x->work, flush_work, flush_done);
    if (rc != 0) {
        x->flushing = 0;
        x->refs--;
        orch_fail_exec(x, rc, "queueing a flush");
    }
}

/* ---------------------------------------------------------------- */
/* The inbox                                                        */
/* ---------------------------------------------------------------- */

static int is_taken(const orch_exec *x, evs_span id)
{
    for (const taken_req *t = x->taken; t; t = t->next)
        if (strlen(t->id) == id.len && memcmp(t->id, id.ptr, id.len) == 0)
            return 1;
    return 0;
}

/* Forgets the requests that were removed and are no longer listed, so
 * that a long-lived execution's list of taken requests stays short. */
static void forget_removed(orch_exec *x, const evs_request_listing *l)
{
    taken_req **pp = &x->taken;

    while (*pp) {
        taken_req *t = *pp;
        int listed = 0;
        for (size_t i = 0; i < l->count && !listed; i++)
            listed = l->items[i].id.len == strlen(t->id) &&
                     memcmp(l->items[i].id.ptr, t->id, strlen(t->id)) == 0;
        if (t->seq == UINT64_MAX && !listed) {
            *pp = t->next;
            free(t);
        } else {
            pp = &t->next;
        }
    }
}

static void inbox_pick(orch_exec *x)
{
    evs_request_listing l;
    int rc;

    x->inbox_dirty = 0;
    if (x->released || x->broken)
        return;
    if (x->flushing) {
        x->inbox_dirty = 1; /* after the flush: one control request per
                               batch keeps their re-reading idempotent */
        return;
    }
    rc = evs_request_list(x->o->store, x->id, x->id_len, &l);
    if (rc != 0) {
        olog(x->o, EVS_LOG_WARN, "execution %s: inbox not read: %s", x->id,
             evs_strerror(rc));
        return;
    }
    forget_removed(x, &l);
    for (size_t i = 0; i < l.count && !x->released; i++) {
        const evs_request *q = &l.items[i];
        taken_req *t;
        uint64_t seq = 0;
        int control;

        if (q->id.len > EVS_REQUEST_ID_LEN || is_taken(x, q->id))
            continue;
        control = drive_request(x, q->id.ptr, q->body, &seq);
        if (x->released)
            break;
        t = calloc(1, sizeof(*t));
        if (!t)
            break;
        memcpy(t->id, q->id.ptr, q->id.len);
        t->seq = seq ? seq : evs_recorder_last_seq(x->rec);
        t->next = x->taken;
        x->taken = t;
        if (control > 0) {
            /* The rest after this one's event is durable. */
            x->inbox_dirty = 1;
            break;
        }
    }
    evs_request_list_free(&l);
    if (!x->released) {
        take_done_requests(x);
        drive(x);
    }
}

static void watch_cb(uv_fs_event_t *h, const char *name, int events,
                     int status)
{
    orch_exec *x = h->data;

    (void)events;
    (void)status;
    if (x->watch_parent) {
        /* Watching the execution's directory until the first request
         * makes its inbox; our own appends to the log land here too. */
        if (!name || strcmp(name, "inbox") != 0)
            return;
        uv_fs_event_stop(h);
        x->watch_parent = 0;
        if (uv_fs_event_start(h, watch_cb, x->inbox_path, 0) != 0)
            x->watch_parent = 1; /* the poll still finds requests */
    }
    inbox_pick(x);
    orch_check_idle(x->o);
}

/* Watches the inbox of x, or its directory while it has no inbox: no
 * inbox is made here, since making one is a sync. */
static void watch_inbox(orch_exec *x)
{
    evs_orch *o = x->o;
    char parent[sizeof(x->inbox_path)];
    int rc;

    rc = evs_request_dir_peek(o->store, x->id, x->id_len, x->inbox_path,
                              sizeof(x->inbox_path));
    if (rc != 0 && rc != -ENOENT)
        return;
    if (!(x->watch = malloc(sizeof(*x->watch))))
        return;
    uv_fs_event_init(o->loop, x->watch);
    x->watch->data = x;
    x->refs++;
    x->watch_parent = rc == -ENOENT;
    snprintf(parent, sizeof(parent), "%s", x->inbox_path);
    if (x->watch_parent)
        *strrchr(parent, '/') = '\0';
    if (uv_fs_event_start(x->watch, watch_cb,
                          x->watch_parent ? parent : x->inbox_path, 0) != 0) {
        uv_close((uv_handle_t *)x->watch, watch_closed);
        x->watch = NULL;
    }
}

/* ---------------------------------------------------------------- */
/* Owning an execution                                              */
/* ---------------------------------------------------------------- */

static int has_action(void *arg, const char *name)
{
    struct orch_action *a = actions_find(arg, name);

    if (!a)
        return 0;
    return a->flags & EVS_ACTION_INSTANT ? EVS_WF_ACTION_INSTANT : 1;
}

int evs_orch_parse(evs_orch *o, evs_span def, evs_wf_def **out,
                   evs_wf_error *err)
{
    return evs_wf_parse(def.ptr, def.len, NULL, has_action, o, out, err);
}

/* Takes over an open writer log and its replayed state; both are the
 * execution's from now on, even on failure. `newdef` (may be NULL; taken
 * over too) is a definition checked compatible with the history, which
 * the execution goes on under (recorded as definition_changed). info
 * (may be NULL) describes a refusal. */
static int attach(evs_orch *o, evs_log *log, evs_replay *rp,
                  evs_wf_def *newdef, evs_error_info *info)
{
    const evs_exec_state *st = evs_replay_exec(rp);
    evs_recorder_opts ro;
    orch_exec *x;
    evs_wf_error we;
    evs_error_info ei;
    int rc, changed = 0;

    x = calloc(1, sizeof(*x));
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
    evs_recorder_opts_init(&ro);
    ro.batch_events = SIZE_MAX; /* flushed by orch_kick only */
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
        olog(o, EVS_LOG_ERROR, "execution %s: no definition recorded",
             x->id);
        goto fail;
    } else {
        rc = evs_wf_parse(st->definition.ptr, st->definition.len, NULL,
                          has_action, o, &x->def, &we);
    }
    if (rc != 0) {
        olog(o, EVS_LOG_ERROR, "execution %s: its definition is refused: "
             "%s%s%s", x->id, we.step, we.step[0] ? ": " : "", we.msg);
        goto fail;
    }
    x->service = orch_is_service(x->def);
    /* GetVersion on replay: a decision the history holds must be one
     * this definition accepts. */
    if ((rc = orch_check_versions(rp, x->def, &ei)) != 0) {
        olog(o, EVS_LOG_ERROR, "execution %s: %s", x->id, ei.msg);
        if (info)
            *info = ei;
        goto fail;
    }
    x->next = o->execs;
    o->execs = x;
    o->nexecs++;
    if (changed && (st->definition_hash.len != strlen(x->def->hash) ||
                    memcmp(st->definition_hash.ptr, x->def->hash,
                           st->definition_hash.len) != 0)) {
        evs__jbuf d = {0};
        EVS__JB_LIT(&d, "{\"definition\":");
        evs__jb_json(&d, x->def->json);
        EVS__JB_LIT(&d, ",\"definition_hash\":");
        evs__jb_quote(&d, evs_span_cstr(x->def->hash));
        EVS__JB_LIT(&d, "}");
        orch_emit(x, NULL, "definition_changed", evs_span_cstr("main"),
                  (evs_span){0}, &d, NULL);
        evs__jb_free(&d);
        if (x->released)
            return x->err;
    }
    watch_inbox(x);
    inbox_pick(x);
    drive(x);
    finish_if_done(x);
    return 0;
fail:
    if (x->rec)
        evs_recorder_close(x->rec);
    evs_log_close(x->log);
    evs_replay_free(x->rp);
    evs_wf_free(x->def);
    evs_wf_free(newdef);
    free(x);
    return rc;
}

int evs_orch_resume(evs_orch *o, evs_span id)
{
    return evs_orch_resume_with(o, id, (evs_span){0}, NULL, NULL, NULL);
}

int evs_orch_resume_with(evs_orch *o, evs_span id, evs_span def,
                         evs_def_finding_fn fn, void *arg,
                         evs_error_info *info)
{
    evs_log *log = NULL;
    evs_replay *rp = NULL;
    evs_wf_def *nd = NULL;
    evs_violation v;
    evs_wf_error we;
    orch_chain c;
    int rc;

    evs_error_info_clear(info);
    if ((rc = orch_chain_init(&c, id)) != 0)
        return rc;
    /* An execution that continued as new goes on in its successor: each
     * member that continued is reported so, and the walk goes on to the
     * next, until one that has not (which is taken, or reports how it
     * ended). */
    for (;;) {
        id = (evs_span){c.id, c.id_len};
        if (orch_find_exec(o, id))
            return -EALREADY;
        if (o->stopping)
            return -ECANCELED;
        /* The lock first: it is what owning means. */
        rc = evs_log_open(o->store, id.ptr, id.len, EVS_LOG_WRITE, &log,
                          NULL, NULL);
        if (rc != 0)
            return rc;
        if ((rc = orch_replay_new(&rp)) != 0)
            goto fail;
        rc = evs_replay_open(rp, o->store, id.ptr, id.len, 0, NULL, &v,
                             NULL);
        if (rc != 0) {
            if (rc == EVS_EHISTORY)
                olog(o, EVS_LOG_ERROR, "execution %.*s: seq %llu: %s: %s",
                     (int)id.len, id.ptr, (unsigned long long)v.sequence,
                     v.rule, v.msg);
            goto fail;
        }
        if ((rc = orch_chain_next(&c, rp)) == 0)
            break;
        evs_replay_free(rp);
        evs_log_close(log);
        rp = NULL;
        log = NULL;
        if (rc < 0) {
            olog(o, EVS_LOG_ERROR, "execution %s: its chain of "
                 "continuations loops here, or names a successor that is "
                 "not an id", c.id);
            return rc;
        }
        if (o->opts.on_outcome)
            o->opts.on_outcome(o->opts.arg, c.prev, EVS_OUTCOME_CONTINUED,
                               0);
    }
    if (def.len) {
        rc = evs_wf_parse(def.ptr, def.len, NULL, has_action, o, &nd, &we);
        if (rc != 0) {
            olog(o, EVS_LOG_ERROR, "the new definition is refused: %s%s%s",
                 we.step, we.step[0] ? ": " : "", we.msg);
            goto fail;
        }
        rc = evs_orch_check_definition(rp, nd, fn, arg, NULL, info);
        if (rc != 0)
            goto fail;
    }
    return attach(o, log, rp, nd, info);
fail:
    evs_wf_free(nd);
    evs_replay_free(rp);
    evs_log_close(log);
    return rc;
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

/* Takes up to `max` (0: any number) unfinished executions no runner owns. */
static int adopt(evs_orch *o, size_t max, size_t *count)
{
    evs_exec_listing l;
    size_t n = 0;
    int rc, first = 0;

    if (count)
        *count = 0;
    if ((rc = evs_exec_list(o->store, NULL, &l)) != 0)
        return rc;
    for (size_t i = 0; i < l.count && !o->stopping && (!max || n < max);
         i++) {
        const evs_exec_info *e = &l.items[i];
        /* A snapshot may lag its log, so "finished" is believed only
         * from a snapshot; a damaged one is checked by replaying. */
        if (e->snapshot_ok && !is_unfinished(e->status))
            continue;
        if (orch_find_exec(o, e->id))
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
    return adopt(o, 0, count);
}

/* A long-lived runner takes new executions a few at a time, after the
 * loop has run the work it owns (due timers run before this poll), so
 * resumed work goes first. */
#define ADOPT_BATCH 64

/* ---------------------------------------------------------------- */
/* Starting an execution                                            */
/* ---------------------------------------------------------------- */

typedef struct start_job {
    uv_work_t work;
    evs_orch *o;
    char id[EVS_ID_MAX + 1];
    size_t id_len;
    evs_event ev[2];
    char uuid[2][EVS_UUID_LEN + 1];
    evs__jbuf d0, d1;
    evs_snapshot snap;
    char *inputs;
    size_t inputs_len;
    char ihash[17];
    evs_wf_def *def;
    evs_log *log;
    evs_replay *rp;
    int rc;
} start_job;

static void start_work(uv_work_t *w)
{
    start_job *j = w->data;
    evs_violation v;

    j->rc = evs_exec_create(j->o->store, j->id, j->id_len, &j->snap, j->ev,
                            2);
    if (j->rc == 0)
        j->rc = evs_log_open(j->o->store, j->id, j->id_len, EVS_LOG_WRITE,
                             &j->log, NULL, NULL);
    if (j->rc == 0)
        j->rc = orch_replay_new(&j->rp);
    if (j->rc == 0)
        j->rc = evs_replay_run(j->rp, j->log, 0, &v, NULL);
}

static void start_done(uv_work_t *w, int status)
{
    start_job *j = w->data;
    evs_orch *o = j->o;
    int rc = j->rc;

    (void)status;
    o->busy--;
    if (rc == 0) {
        /* The definition parsed to start it serves the run too. */
        rc = attach(o, j->log, j->rp, j->def, NULL);
        j->log = NULL;
        j->rp = NULL;
        j->def = NULL;
    }
    if (rc != 0) {
        olog(o, EVS_LOG_ERROR, "execution %s: not started: %s", j->id,
             evs_strerror(rc));
        if (o->opts.on_outcome)
            o->opts.on_outcome(o->opts.arg, j->id, EVS_OUTCOME_ERROR, rc);
    }
    evs_log_close(j->log);
    evs_replay_free(j->rp);
    evs_wf_free(j->def);
    evs__jb_free(&j->d0);
    evs__jb_free(&j->d1);
    free(j->inputs);
    free(j);
    orch_check_idle(o);
}

int evs_orch_start(evs_orch *o, evs_span def, evs_span inputs, evs_span id,
                   char out_id[EVS_ID_MAX + 1], evs_wf_error *err)
{
    evs_wf_error we;
    evs_wf_def *d = NULL;
    start_job *j;
    uint64_t h;
    int64_t now = evs_now_us();
    int rc;

    if (!err)
        err = &we;
    memset(err, 0, sizeof(*err));
    if (o->stopping)
        return -ECANCELED;
    if (id.len && (id.len > EVS_ID_MAX || !evs_id_valid(id.ptr, id.len)))
        return EVS_EBADID;
    rc = evs_wf_parse(def.ptr, def.len, NULL, has_action, o, &d, err);
    if (rc != 0)
        return rc;
    j = calloc(1, sizeof(*j));
    if (!j) {
        evs_wf_free(d);
        return -ENOMEM;
    }
    j->o = o;
    rc = evs_wf_check_inputs(d, inputs, NULL, &j->inputs, &j->inputs_len,
                             err);
    if (rc != 0)
        goto fail;
    if (id.len) {
        memcpy(j->id, id.ptr, id.len);
        j->id_len = id.len;
    } else {
        if ((rc = evs_uuid7(j->id)) != 0)
            goto fail;
        j->id_len = EVS_UUID_LEN;
    }
    if ((rc = evs_json_hash(j->inputs, j->inputs_len, NULL, &h)) != 0)
        goto fail;
    snprintf(j->ihash, sizeof(j->ihash), "%016llx", (unsigned long long)h);

    EVS__JB_LIT(&j->d0, "{\"workflow_name\":");
    evs__jb_quote(&j->d0, evs_span_cstr(d->name));
    EVS__JB_LIT(&j->d0, ",\"inputs\":");
    evs__jb_json(&j->d0, (evs_span){j->inputs, j->inputs_len});
    EVS__JB_LIT(&j->d0, ",\"definition\":");
    evs__jb_json(&j->d0, d->json);
    EVS__JB_LIT(&j->d0, ",\"definition_hash\":\"");
    evs__jb_str(&j->d0, d->hash);
    EVS__JB_LIT(&j->d0, "\",\"inputs_hash\":\"");
    evs__jb_str(&j->d0, j->ihash);
    EVS__JB_LIT(&j->d0, "\",\"lineage\":{}}");
    EVS__JB_LIT(&j->d1, "{\"parent\":null,\"current_step\":");
    evs__jb_quote(&j->d1, evs_span_cstr(d->steps[0].name));
    EVS__JB_LIT(&j->d1, "}");
    rc = -ENOMEM;
    if (j->d0.err || j->d1.err)
        goto fail;
    for (int i = 0; i < 2; i++) {
        if ((rc = evs_uuid7(j->uuid[i])) != 0)
            goto fail;
        j->ev[i].id = (evs_span){j->uuid[i], EVS_UUID_LEN};
        j->ev[i].path_id = evs_span_cstr("main");
        j->ev[i].sequence = (uint64_t)i + 1;
        j->ev[i].timestamp_us = now;
    }
    j->ev[0].event_type = evs_span_cstr("execution_started");
    j->ev[0].data = (evs_span){j->d0.p, j->d0.len};
    j->ev[1].event_type = evs_span_cstr("path_started");
    j->ev[1].data = (evs_span){j->d1.p, j->d1.len};
    /* The first snapshot: enough for listings; replay starts from the
     * log, which is two events long. */
    j->snap.workflow_name = evs_span_cstr(d->name);
    j->snap.workflow_hash = evs_span_cstr(d->hash);
    j->snap.inputs_hash = evs_span_cstr(j->ihash);
    j->snap.status = evs_span_cstr("running");
    j->snap.start_time_us = now;
    j->snap.inputs = (evs_span){j->inputs, j->inputs_len};
    j->snap.workflow_data = d->json;
    j->def = d; /* the snapshot's spans point into it */
    if (out_id) {
        memcpy(out_id, j->id, j->id_len);
        out_id[j->id_len] = '\0';
    }
    d = NULL;
    j->work.data = j;
    o->busy++;
    if ((rc = uv_queue_work(o->loop, &j->work, start_work, start_done)) !=
        0) {
        o->busy--;
        goto fail;
    }
    return 0;
fail:
    evs_wf_free(d);
    evs_wf_free(j->def);
    evs__jb_free(&j->d0);
    evs__jb_free(&j->d1);
    free(j->inputs);
    free(j);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Requests from this process                                       */
/* ---------------------------------------------------------------- */

/* Builds a request body: {"kind":K[,"type":T][,"payload":P]}. */
static int request_body(evs__jbuf *b, evs_span kind, evs_span type,
                        evs_span payload)
{
    if (payload.len && evs_json_check(payload.ptr, payload.len, 0, NULL,
                                      NULL, NULL) != 0)
        return -EINVAL;
    EVS__JB_LIT(b, "{\"kind\":");
    evs__jb_quote(b, kind);
    if (type.len) {
        EVS__JB_LIT(b, ",\"type\":");
        evs__jb_quote(b, type);
    }
    if (payload.len) {
        EVS__JB_LIT(b, ",\"payload\":");
        evs__jb_json(b, payload);
    }
    EVS__JB_LIT(b, "}");
    return b->err ? -ENOMEM : 0;
}

/* The owned execution a request to `id` is for: `id`, or, once it has
 * continued as new, the last member of its chain (as the store shows it
 * now). Returns 0, EVS_EFINISHED (it, or its chain, has ended), -ENOENT
 * (not owned here). */
static int request_target(evs_orch *o, evs_span id, orch_exec **out)
{
    orch_exec *x = orch_find_exec(o, id);
    evs_replay *rp = NULL;
    orch_chain c;
    int ended;

    if (!x || evs_replay_exec(x->rp)->status == EVS_STATUS_CONTINUED) {
        if (orch_chain_init(&c, id) != 0 ||
            orch_chain_last(o->store, &c, &rp) != 0)
            return x ? EVS_EFINISHED : -ENOENT;
        ended = evs_replay_exec(rp)->status >= EVS_STATUS_COMPLETED;
        evs_replay_free(rp);
        if (!(x = orch_find_exec(o, (evs_span){c.id, c.id_len})))
            return ended ? EVS_EFINISHED : -ENOENT;
    }
    if (evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return EVS_EFINISHED;
    *out = x;
    return 0;
}

static int local_request(evs_orch *o, evs_span id, const char *kind,
                         evs_span type, evs_span payload)
{
    orch_exec *x;
    evs__jbuf b = {0};
    uint64_t seq;
    int rc;

    if ((rc = request_target(o, id, &x)) != 0)
        return rc;
    if ((rc = request_body(&b, evs_span_cstr(kind), type, payload)) == 0) {
        rc = drive_request(x, NULL, (evs_span){b.p, b.len}, &seq);
        rc = rc < 0 ? rc : 0;
        if (!x->released)
            drive(x);
    }
    evs__jb_free(&b);
    orch_check_idle(o);
    return rc;
}

int evs_orch_send(evs_orch *o, evs_span id, evs_span type, evs_span payload)
{
    if (type.len == 0)
        return -EINVAL;
    return local_request(o, id, "event", type, payload);
}

int evs_orch_pause(evs_orch *o, evs_span id, evs_span reason)
{
    return local_request(o, id, "pause", (evs_span){0}, reason);
}

int evs_orch_unpause(evs_orch *o, evs_span id)
{
    return local_request(o, id, "unpause", (evs_span){0}, (evs_span){0});
}

int evs_orch_terminate(evs_orch *o, evs_span id, evs_span reason)
{
    return local_request(o, id, "terminate", (evs_span){0}, reason);
}

int evs_orch_post(evs_store *store, evs_span id, evs_span kind,
                  evs_span type, evs_span payload)
{
    static const char *const kinds[] = {"event", "pause", "unpause",
                                        "terminate"};
    evs_replay *rp = NULL;
    evs__jbuf b = {0};
    orch_chain c;
    size_t k;
    int rc, ended;

    for (k = 0; k < sizeof(kinds) / sizeof(*kinds); k++)
        if (kind.len == strlen(kinds[k]) &&
            memcmp(kind.ptr, kinds[k], kind.len) == 0)
            break;
    if (k == sizeof(kinds) / sizeof(*kinds) || (k == 0 && type.len == 0))
        return -EINVAL;
    if ((rc = orch_chain_init(&c, id)) != 0)
        return rc;
    /* An execution that continued as new is reached through its chain:
     * the request goes to the member that goes on. Refused once that has
     * ended, as the log shows now; a runner that ends it before taking
     * the request drops it. */
    if ((rc = orch_chain_last(store, &c, &rp)) != 0)
        return rc;
    ended = evs_replay_exec(rp)->status >= EVS_STATUS_COMPLETED;
    evs_replay_free(rp);
    if (ended)
        return EVS_EFINISHED;
    if ((rc = request_body(&b, kind, type, payload)) == 0)
        rc = evs_request_post(store, c.id, c.id_len, b.p, b.len, NULL);
    evs__jb_free(&b);
    return rc;
}

const evs_replay *evs_orch_state(const evs_orch *o, evs_span id)
{
    orch_exec *x = orch_find_exec(o, id);

    return x ? x->rp : NULL;
}

uv_loop_t *evs_orch_loop(evs_orch *o)
{
    return o->loop;
}

size_t evs_orch_owned(const evs_orch *o)
{
    return o->nexecs;
}

/* ---------------------------------------------------------------- */
/* The loop                                                         */
/* ---------------------------------------------------------------- */

static void async_cb(uv_async_t *h)
{
    evs_orch *o = h->data;
    evs_action_req *list, *rev = NULL;

    uv_mutex_lock(&o->mu);
    list = o->done;
    o->done = NULL;
    uv_mutex_unlock(&o->mu);
    while (list) { /* oldest first */
        evs_action_req *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        evs_action_req *r = rev;
        orch_exec *x = r->x;
        orch_path *p;

        rev = r->next;
        r->next = NULL;
        p = orch_path_get(x, r->call.path_id, 0);
        if (p && p->req == r)
            p->req = NULL;
        if (r->timeout) {
            orch_timer_cancel(r->timeout);
            r->timeout = NULL;
        }
        if (!r->stale && !x->released)
            drive_outcome(x, r);
        req_free(r);
    }
    orch_check_idle(o);
}

static void poll_cb(uv_timer_t *h)
{
    evs_orch *o = h->data;
    uint64_t now = uv_now(o->loop);

    /* Inboxes with a working watch are read when it fires; every tenth
     * poll reads them all anyway, in case a notification was lost. */
    o->polls++;
    for (orch_exec *x = o->execs, *n; x; x = n) {
        n = x->next;
        if (!x->watch || o->polls % 10 == 0)
            inbox_pick(x);
    }
    if (o->opts.adopt_ms && !o->stopping &&
        now - o->last_adopt_ms >= o->opts.adopt_ms) {
        o->last_adopt_ms = now;
        (void)adopt(o, ADOPT_BATCH, NULL);
    }
    orch_check_idle(o);
}

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_handles(evs_orch *o)
{
    if (o->closing)
        return;
    o->closing = 1;
    uv_close((uv_handle_t *)&o->async, handle_closed);
    uv_close((uv_handle_t *)&o->poll, handle_closed);
    uv_close((uv_handle_t *)&o->grace, handle_closed);
}

static int exec_busy(const orch_exec *x)
{
    for (size_t i = 0; i < x->npaths; i++)
        if (x->paths[i].req)
            return 1;
    return x->flushing || evs_recorder_pending(x->rec);
}

void orch_check_idle(evs_orch *o)
{
    if (o->closing)
        return;
    if (o->stopping) {
        /* Each execution goes once its actions in flight are recorded. */
        for (orch_exec *x = o->execs, *n; x; x = n) {
            n = x->next;
            if (!exec_busy(x))
                release(x);
        }
    } else if (o->opts.stop_when_idle && o->busy == 0) {
        for (const orch_exec *x = o->execs; x; x = x->next)
            if (!orch_is_suspended(x))
                return;
        for (orch_exec *x = o->execs, *n; x; x = n) {
            n = x->next;
            report(x, EVS_OUTCOME_SUSPENDED, 0);
            release(x);
        }
    } else {
        return;
    }
    /* Callbacks may still complete late requests: the async handle they
     * wake must stay open until the last one is in. */
    if (o->nexecs == 0 && o->busy == 0 && o->live_reqs == 0)
        close_handles(o);
}

static void grace_cb(uv_timer_t *h)
{
    evs_orch *o = h->data;

    /* The deadline: what still runs is re-run by the next runner. */
    for (orch_exec *x = o->execs, *n; x; x = n) {
        n = x->next;
        release(x);
    }
    orch_check_idle(o);
}

void evs_orch_stop(evs_orch *o, uint32_t grace_ms)
{
    if (o->stopping || o->closing)
        return;
    o->stopping = 1;
    uv_timer_start(&o->grace, grace_cb, grace_ms, 0);
    orch_check_idle(o);
}

int evs_orch_register(evs_orch *o, const char *name, evs_action_fn fn,
                      void *arg, unsigned flags)
{
    struct orch_action *a;

    if (!name || !*name || !fn || strncmp(name, "exec:", 5) == 0 ||
        (flags & ~(unsigned)(EVS_ACTION_BLOCKING | EVS_ACTION_INSTANT)))
        return -EINVAL;
    if (actions_find(o, name))
        return -EEXIST;
    a = calloc(1, sizeof(*a));
    if (!a || !(a->name = strdup(name))) {
        free(a);
        return -ENOMEM;
    }
    a->fn = fn;
    a->arg = arg;
    a->flags = flags;
    a->next = o->actions;
    o->actions = a;
    return 0;
}

int evs_orch_new(evs_store *store, const evs_orch_opts *opts, evs_orch **out)
{
    evs_orch *o = calloc(1, sizeof(*o));
    int rc;

    *out = NULL;
    if (!o)
        return -ENOMEM;
    o->store = store;
    if (opts)
        o->opts = *opts;
    else
        evs_orch_opts_init(&o->opts);
    if (o->opts.inbox_poll_ms == 0)
        o->opts.inbox_poll_ms = 500;
    o->rnd = (uint64_t)evs_now_us() | 1;
    if (o->opts.loop) {
        o->loop = o->opts.loop;
    } else {
        if ((rc = uv_loop_init(&o->own_loop)) != 0) {
            free(o);
            return rc;
        }
        o->own = 1;
        o->loop = &o->own_loop;
    }
    if ((rc = uv_mutex_init(&o->mu)) != 0)
        goto fail;
    uv_async_init(o->loop, &o->async, async_cb);
    o->async.data = o;
    uv_timer_init(o->loop, &o->poll);
    o->poll.data = o;
    uv_timer_init(o->loop, &o->grace);
    o->grace.data = o;
    uv_timer_start(&o->poll, poll_cb, o->opts.inbox_poll_ms,
                   o->opts.inbox_poll_ms);
    if ((rc = actions_builtin(o)) != 0) {
        evs_orch_stop(o, 0);
        uv_run(o->loop, UV_RUN_DEFAULT);
        evs_orch_free(o);
        return rc;
    }
    *out = o;
    return 0;
fail:
    if (o->own)
        uv_loop_close(&o->own_loop);
    free(o);
    return rc;
}

int evs_orch_run(evs_orch *o)
{
    if (!o->own)
        return -EINVAL;
    /* An orchestrator with nothing to do and told to stop when idle
     * stops at once. */
    orch_check_idle(o);
    return uv_run(o->loop, UV_RUN_DEFAULT);
}

void evs_orch_free(evs_orch *o)
{
    if (!o)
        return;
    while (o->actions) {
        struct orch_action *a = o->actions;
        o->actions = a->next;
        free(a->name);
        free(a);
    }
    uv_mutex_destroy(&o->mu);
    if (o->own)
        uv_loop_close(&o->own_loop);
    free(o);
}
