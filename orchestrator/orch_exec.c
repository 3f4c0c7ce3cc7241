/*
 * orch_exec.c: an execution this process owns: finding it, its
 * references, the paths it tracks, its timers, and letting it go.
 *
 * Executions are reference counted: handles, live action requests, armed
 * timers, the inbox watcher and a flush in flight each hold one, so a
 * released execution is freed only when nothing can call back into it.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void exec_free(orch_exec *x);

/* ---------------------------------------------------------------- */
/* Executions                                                       */
/* ---------------------------------------------------------------- */

/*
 * The index by id: linear probing in a table kept at most 3/4 full, and
 * deletion by moving the later members of the run back, so no slot is
 * ever a tombstone.
 */
static uint64_t id_hash(const char *id, size_t len)
{
    return evs_checksum(id, len); /* XXH3-64 */
}

static void ix_put(orch_exec **tab, size_t cap, orch_exec *x)
{
    size_t i = (size_t)x->id_hash & (cap - 1);

    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = x;
}

orch_exec *evs__orch_find_exec(const evs_orch *o, evs_span id)
{
    size_t i, mask = o->ix_cap - 1;
    uint64_t h;

    if (!o->ix)
        return NULL;
    h = id_hash(id.ptr, id.len);
    for (i = (size_t)h & mask; o->ix[i]; i = (i + 1) & mask) {
        const orch_exec *x = o->ix[i];
        if (x->id_hash == h && x->id_len == id.len &&
            memcmp(x->id, id.ptr, id.len) == 0)
            return o->ix[i];
    }
    return NULL;
}

int evs__orch_list_exec(evs_orch *o, orch_exec *x)
{
    if ((o->nexecs + 1) * 4 > o->ix_cap * 3) {
        size_t cap = o->ix_cap ? o->ix_cap * 2 : 64;
        orch_exec **tab = evs__calloc(o->alloc, cap * sizeof(*tab));

        if (!tab)
            return -ENOMEM;
        for (size_t i = 0; i < o->ix_cap; i++)
            if (o->ix[i])
                ix_put(tab, cap, o->ix[i]);
        evs__free(o->alloc, o->ix);
        o->ix = tab;
        o->ix_cap = cap;
    }
    x->id_hash = id_hash(x->id, x->id_len);
    ix_put(o->ix, o->ix_cap, x);
    x->next = o->execs;
    x->prev = NULL;
    if (o->execs)
        o->execs->prev = x;
    o->execs = x;
    x->listed = 1;
    o->nexecs++;
    return 0;
}

/* Takes x out of o->ix: the members of its run after it whose home slot
 * is not between its slot and theirs move back into the hole. */
static void ix_remove(evs_orch *o, const orch_exec *x)
{
    size_t mask = o->ix_cap - 1, i = (size_t)x->id_hash & mask, j, k;

    while (o->ix[i] != x)
        i = (i + 1) & mask;
    o->ix[i] = NULL;
    for (j = (i + 1) & mask; o->ix[j]; j = (j + 1) & mask) {
        k = (size_t)o->ix[j]->id_hash & mask;
        /* k cyclically in (i, j]: it stays where it is. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        o->ix[i] = o->ix[j];
        o->ix[j] = NULL;
        i = j;
    }
}

void evs__orch_exec_unref(orch_exec *x)
{
    if (--x->refs == 0)
        exec_free(x);
}

orch_path *evs__orch_path_get(orch_exec *x, evs_span id, int create)
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
        orch_path *np = evs__realloc(x->o->alloc, x->paths, nc * sizeof(*np));
        if (!np)
            return NULL;
        x->paths = np;
        x->cap_paths = nc;
    }
    p = &x->paths[x->npaths];
    memset(p, 0, sizeof(*p));
    p->id = evs__orch_strndup(x->o->alloc, id.ptr, id.len);
    if (!p->id)
        return NULL;
    x->npaths++;
    return p;
}

static void timer_closed(uv_handle_t *h)
{
    orch_timer *t = h->data;
    orch_exec *x = t->x;

    evs__free(x->o->alloc, t->path);
    evs__free(x->o->alloc, t->id);
    evs__free(x->o->alloc, t);
    evs__orch_exec_unref(x);
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
        evs__drive_timer(x, t);
    uv_close((uv_handle_t *)&t->h, timer_closed);
    evs__orch_check_idle(x->o);
}

orch_timer *evs__orch_timer_arm(orch_exec *x, timer_kind k, evs_span path,
                                evs_span id, int64_t due_us)
{
    const evs_allocator *a = x->o->alloc;
    orch_timer *t = evs__calloc(a, sizeof(*t));
    int64_t now = evs_now_us();
    uint64_t ms = due_us > now ? (uint64_t)((due_us - now + 999) / 1000) : 0;

    if (!t)
        return NULL;
    t->x = x;
    t->kind = k;
    t->due_us = due_us;
    t->path = evs__orch_strndup(a, path.ptr, path.len);
    t->id = evs__orch_strndup(a, id.ptr, id.len);
    if (!t->path || !t->id) {
        evs__free(a, t->path);
        evs__free(a, t->id);
        evs__free(a, t);
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

void evs__orch_timer_cancel(orch_timer *t)
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
int evs__orch_is_suspended(const orch_exec *x)
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

void evs__orch_report(orch_exec *x, evs_outcome oc, int err)
{
    evs_orch *o = x->o;

    if (x->reported)
        return;
    x->reported = 1;
    if (o->opts.on_outcome)
        o->opts.on_outcome(o->opts.arg, x->id, oc, err);
}

/* Stops driving x: its timers and watcher go, its actions in flight are
 * orphaned (their outcomes are ignored; a subprocess is killed). The log
 * stays open until the last reference goes, so a flush in flight ends. */
void evs__orch_release(orch_exec *x)
{
    evs_orch *o = x->o;

    if (x->released)
        return;
    x->released = 1;
    while (x->timers)
        evs__orch_timer_cancel(x->timers);
    evs__orch_unwatch(x);
    for (size_t i = 0; i < x->npaths; i++) {
        evs_action_req *r = x->paths[i].req;
        if (r) {
            r->stale = 1;
            evs__actions_kill(r);
            x->paths[i].req = NULL;
        }
    }
    while (x->waiting) {
        evs_action_req *r = x->waiting;
        x->waiting = r->next;
        evs__req_free(r);
    }
    /* Out of the list in constant time: a runner may own thousands. */
    if (x->listed) {
        ix_remove(o, x);
        if (x->prev)
            x->prev->next = x->next;
        else
            o->execs = x->next;
        if (x->next)
            x->next->prev = x->prev;
        x->listed = 0;
        o->nexecs--;
    }
    evs__orch_exec_unref(x);
}

static void exec_free(orch_exec *x)
{
    if (x->rec) {
        if (evs_recorder_pending(x->rec))
            evs__orch_logf(x->o, EVS_LOG_WARN, EVS_LOG_FIELDS(.execution = x->id),
                           "%zu events not written; the next run replays "
                           "from the log",
                           evs_recorder_pending(x->rec));
        evs_recorder_close(x->rec);
    }
    evs_log_close(x->log);
    evs_replay_free(x->rp);
    evs_wf_free(x->def);
    for (size_t i = 0; i < x->npaths; i++)
        evs__free(x->o->alloc, x->paths[i].id);
    evs__free(x->o->alloc, x->paths);
    while (x->taken) {
        taken_req *t = x->taken;
        x->taken = t->next;
        evs__free(x->o->alloc, t);
    }
    evs__free(x->o->alloc, x);
}

void evs__orch_fail_exec(orch_exec *x, int err, const char *why)
{
    if (x->broken)
        return;
    x->broken = 1;
    x->err = err;
    evs__orch_logf(x->o, EVS_LOG_ERROR,
                   EVS_LOG_FIELDS(.execution = x->id, .err = err),
                   "given up: %s", why ? why : evs_strerror(err));
    evs__orch_report(x, EVS_OUTCOME_ERROR, err);
    evs__orch_release(x);
}
