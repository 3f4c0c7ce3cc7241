/*
 * orch.c: the orchestrator's lifecycle (new, register, run, stop, free)
 * and its loop: the async handle that brings actions' outcomes back to
 * the loop thread, the poll that reads inboxes and adopts executions,
 * and the check that stops a runner once it has nothing left to do.
 *
 * The rest of the orchestrator: orch_exec.c (an execution, its
 * references and timers), orch_flush.c (recording and flushing),
 * orch_inbox.c (requests), orch_own.c (starting, resuming and adopting
 * executions), evs__drive*.c (the step machine), actions.c, continue.c,
 * strategies.c, defchange.c.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    o->size = sizeof(*o);
    o->snapshot_every = 1000;
    o->inbox_poll_ms = 500;
    o->continue_events = 4096;
    o->continue_bytes = (uint64_t)4 << 20;
}

void evs_orch_opts_service_profile(evs_orch_opts *o)
{
    o->continue_events = EVS_SERVICE_CONTINUE_EVENTS;
    o->continue_age_ms = EVS_SERVICE_CONTINUE_AGE_MS;
}

int64_t evs__orch_now_us(const evs_orch *o)
{
    return o->opts.clock_us ? o->opts.clock_us(o->opts.clock_arg)
                            : evs_now_us();
}

static void store_vlog(evs_store *s, const char *component, evs_log_level lvl,
                       const evs_log_record *f, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void store_vlog(evs_store *s, const char *component, evs_log_level lvl,
                       const evs_log_record *f, const char *fmt, va_list ap)
{
    const evs_store_opts *so = evs_store_get_opts(s);

    evs__log_emit(so->log_fn, so->log_ctx, component, lvl, f, fmt, ap);
}

void evs__orch_logf(evs_orch *o, evs_log_level lvl, const evs_log_record *f,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    store_vlog(o->store, "orchestrator", lvl, f, fmt, ap);
    va_end(ap);
}

void evs__orch_log(evs_orch *o, evs_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    store_vlog(o->store, "orchestrator", lvl, NULL, fmt, ap);
    va_end(ap);
}

void evs__orch_store_log(evs_store *s, evs_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    store_vlog(s, "schedule", lvl, NULL, fmt, ap);
    va_end(ap);
}

char *evs__orch_strndup(const evs_allocator *a, const char *s, size_t n)
{
    char *p = evs__malloc(a, n + 1);

    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

const evs_allocator *evs__orch_store_alloc(evs_store *s)
{
    return evs_store_get_opts(s)->alloc;
}

double evs__orch_random(evs_orch *o)
{
    /* xorshift64*: jitter only needs to spread retries apart. */
    o->rnd ^= o->rnd >> 12;
    o->rnd ^= o->rnd << 25;
    o->rnd ^= o->rnd >> 27;
    return (double)((o->rnd * 2685821657736338717ULL) >> 11) /
           (double)(1ULL << 53);
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
        p = evs__orch_path_get(x, r->call.path_id, 0);
        if (p && p->req == r)
            p->req = NULL;
        if (r->timeout) {
            evs__orch_timer_cancel(r->timeout);
            r->timeout = NULL;
        }
        if (!r->stale && !x->released)
            evs__drive_outcome(x, r);
        evs__req_free(r);
    }
    evs__orch_check_idle(o);
}

static void poll_cb(uv_timer_t *h)
{
    evs_orch *o = h->data;
    uint64_t now = uv_now(o->loop);

    /* Inboxes with a working watch are read when it fires. A directory's
     * watch may miss a change (inotify's queue overflows), so every tenth
     * poll reads those anyway; the store's notifications miss none while
     * they last (orch_watch.c). */
    o->polls++;
    evs__orch_watch_store(o, 1);
    for (orch_exec *x = o->execs, *n; x && !o->watch; x = n) {
        n = x->next;
        if ((!x->watch && !x->stamp_poll) || o->polls % 10 == 0)
            evs__orch_inbox_pick(x);
    }
    evs__orch_renew_leases(o);
    if (o->opts.adopt_ms && !o->stopping &&
        now - o->last_adopt_ms >= o->opts.adopt_ms) {
        o->last_adopt_ms = now;
        (void)evs__orch_adopt(o, EVS__ORCH_ADOPT_BATCH, NULL);
    }
    evs__orch_check_idle(o);
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
    evs__orch_unwatch_store(o);
    uv_close((uv_handle_t *)&o->async, handle_closed);
    uv_close((uv_handle_t *)&o->poll, handle_closed);
    uv_close((uv_handle_t *)&o->grace, handle_closed);
    uv_close((uv_handle_t *)&o->sched, handle_closed);
}

static int exec_busy(const orch_exec *x)
{
    for (size_t i = 0; i < x->npaths; i++)
        if (x->paths[i].req)
            return 1;
    return x->flushing || evs_recorder_pending(x->rec);
}

static int all_suspended(const evs_orch *o)
{
    for (const orch_exec *x = o->execs; x; x = x->next)
        if (!evs__orch_is_suspended(x))
            return 0;
    return 1;
}

void evs__orch_check_idle(evs_orch *o)
{
    if (o->closing)
        return;
    if (o->stopping) {
        /* Each execution goes once its actions in flight are recorded. */
        for (orch_exec *x = o->execs, *n; x; x = n) {
            n = x->next;
            if (!exec_busy(x))
                evs__orch_release(x);
        }
    } else if (o->opts.stop_when_idle && o->busy == 0) {
        if (!all_suspended(o))
            return;
        /* A start that left its inbox to the store's notifications reads
         * it before it is reported waiting: a request posted before its
         * attach may not have been heard of yet. */
        for (orch_exec *x = o->execs, *n; x; x = n) {
            n = x->next;
            if (x->unread && !x->released)
                evs__orch_inbox_pick(x);
        }
        if (!all_suspended(o))
            return;
        for (orch_exec *x = o->execs, *n; x; x = n) {
            n = x->next;
            evs__orch_report(x, EVS_OUTCOME_SUSPENDED, 0);
            evs__orch_release(x);
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
        evs__orch_release(x);
    }
    evs__orch_check_idle(o);
}

void evs_orch_stop(evs_orch *o, uint32_t grace_ms)
{
    if (o->stopping || o->closing)
        return;
    o->stopping = 1;
    uv_timer_start(&o->grace, grace_cb, grace_ms, 0);
    evs__orch_check_idle(o);
}

int evs_orch_register(evs_orch *o, const char *name, evs_action_fn fn,
                      void *arg, unsigned flags)
{
    struct orch_action *a;

    if (!name || !*name || !fn || strncmp(name, "exec:", 5) == 0 ||
        (flags & ~(unsigned)(EVS_ACTION_BLOCKING | EVS_ACTION_INSTANT)))
        return -EINVAL;
    if (evs__actions_find(o, name))
        return -EEXIST;
    a = evs__calloc(o->alloc, sizeof(*a));
    if (!a || !(a->name = evs__orch_strndup(o->alloc, name, strlen(name)))) {
        evs__free(o->alloc, a);
        return -ENOMEM;
    }
    a->fn = fn;
    a->arg = arg;
    a->flags = flags;
    a->next = o->actions;
    o->actions = a;
    return 0;
}

/*
 * libuv makes its threadpool, every thread of it, when the first work of
 * the process is queued, on the thread that queues it, and waits for each
 * to start. An orchestrator's first work is an append, and for a runner
 * that has just taken executions over that is the record of the first
 * event one of them gets: the threads (16 as evrun runs) would be made on
 * that event's way to its step, which measured 5 to 50 ms on a loaded
 * machine. So the first orchestrator of a process that runs its own loop
 * queues a work that does nothing as it is made. Its own loop is run to
 * the end by evs_orch_free at the latest, so the request (static: the
 * process's one, no orchestrator's memory) always completes.
 */
static _Atomic long pool_warmed_by; /* the pid of the process */
static uv_work_t pool_warm;

static void warm_work(uv_work_t *w)
{
    (void)w;
}

static void warm_done(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

/* Once per process, by its pid: a child forked from a process that had
 * its threads has none (libuv makes them again there), and the pid tells
 * it so. */
static void warm_pool(uv_loop_t *loop)
{
    long me = (long)getpid();

    if (atomic_exchange(&pool_warmed_by, me) != me &&
        uv_queue_work(loop, &pool_warm, warm_work, warm_done) != 0)
        atomic_store(&pool_warmed_by, 0);
}

int evs_orch_new(evs_store *store, const evs_orch_opts *opts, evs_orch **out)
{
    const evs_allocator *alloc = evs__orch_store_alloc(store);
    evs_orch *o = evs__calloc(alloc, sizeof(*o));
    int rc;

    *out = NULL;
    if (!o)
        return -ENOMEM;
    o->store = store;
    o->alloc = alloc;
    evs_orch_opts_init(&o->opts);
    /* Only what the caller's size covers (common.h, options structs). */
    if (opts && evs__opts_read(&o->opts, sizeof(o->opts), opts,
                               EVS__OPTS_SIZE(evs_orch_opts, arg))) {
        free(o);
        return -EINVAL;
    }
    if (o->opts.inbox_poll_ms == 0)
        o->opts.inbox_poll_ms = 500;
    o->rnd = (uint64_t)evs_now_us() | 1;
    if ((rc = evs__runner_init(&o->me)) != 0) {
        evs__free(alloc, o);
        return rc;
    }
    if (o->opts.loop) {
        o->loop = o->opts.loop;
    } else {
        if ((rc = uv_loop_init(&o->own_loop)) != 0) {
            evs__free(alloc, o);
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
    uv_timer_init(o->loop, &o->sched);
    o->sched.data = o;
    if (o->opts.schedule_ms)
        uv_timer_start(&o->sched, evs__orch_sched_cb, 0, 0);
    uv_timer_start(&o->poll, poll_cb, o->opts.inbox_poll_ms,
                   o->opts.inbox_poll_ms);
    if ((rc = evs__actions_builtin(o)) != 0) {
        evs_orch_stop(o, 0);
        uv_run(o->loop, UV_RUN_DEFAULT);
        evs_orch_free(o);
        return rc;
    }
    if (o->own)
        warm_pool(o->loop);
    *out = o;
    return 0;
fail:
    if (o->own)
        uv_loop_close(&o->own_loop);
    evs__free(alloc, o);
    return rc;
}

int evs_orch_run(evs_orch *o)
{
    if (!o->own)
        return -EINVAL;
    /* An orchestrator with nothing to do and told to stop when idle
     * stops at once. */
    evs__orch_check_idle(o);
    return uv_run(o->loop, UV_RUN_DEFAULT);
}

void evs_orch_free(evs_orch *o)
{
    if (!o)
        return;
    /* Never run (or not to the end) on its own loop: stop it there, so
     * that its handles close and its loop's memory goes with it. */
    if (o->own && !o->closing) {
        evs_orch_stop(o, 0);
        evs_orch_run(o);
    }
    while (o->actions) {
        struct orch_action *a = o->actions;
        o->actions = a->next;
        evs__free(o->alloc, a->name);
        evs__free(o->alloc, a);
    }
    uv_mutex_destroy(&o->mu);
    if (o->own)
        uv_loop_close(&o->own_loop);
    evs__free(o->alloc, o->ix);
    evs__free(o->alloc, o);
}
