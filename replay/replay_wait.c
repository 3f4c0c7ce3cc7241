/*
 * replay_wait.c: applying the events of signals, waits and timers:
 * signal_received, signal_consumed, wait_started, wait_ended,
 * timer_started, timer_fired and timer_cancelled. A pending wait or timer
 * holds its path (WAITING).
 */
#include "replay_apply.h"

#include <errno.h>
#include <stdio.h>

int evs__rp_on_signal_received(ctx *c)
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
         s                    ? "was already consumed"
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

int evs__rp_on_signal_consumed(ctx *c)
{
    RULE(c->f.has_signal_seq, c, "data",
         "signal_consumed without "
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

int evs__rp_on_wait_started(ctx *c)
{
    evs_replay *r = c->r;
    evs_path_state *p;
    evs_wait_state w;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
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

int evs__rp_on_wait_ended(ctx *c)
{
    evs_replay *r = c->r;
    size_t k = 0;
    evs_wait_state *w = pending_wait(r, c->path, &k);
    evs_path_state *p;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
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

int evs__rp_on_timer_started(ctx *c)
{
    evs_replay *r = c->r;
    evs_path_state *p;
    evs_timer_state t;
    int rc;

    if ((rc = evs__rp_need_path(c, &p)) != 0)
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

int evs__rp_on_timer_ended(ctx *c, int cancelled)
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
    RULE(i >= 0 && !r->timers.v[i].fired_seq && !r->timers.v[i].cancelled, c,
         "timer-unknown", "timer \"%.*s\" is not pending", (int)id.len, id.ptr);
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
