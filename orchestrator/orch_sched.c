/*
 * orch_sched.c: a runner's schedules (evs_orch_opts.schedule_ms). A
 * timer on the loop starts a look at every schedule of the store on the
 * libuv threadpool, so that the fsyncs of creating executions and saving
 * states never hold up the loop; back on the loop, the executions the
 * look created are resumed here at once (another runner may take them
 * first: any runner runs them), and the timer is armed for the next fire
 * due, or schedule_ms at the latest, which is how added, paused and
 * deleted schedules are noticed.
 */
#include "orch_int.h"
#include "evstore/schedule.h"

#include <string.h>

typedef struct sched_look {
    uv_work_t work;
    evs_orch *o;
    char (*ids)[EVS_ID_MAX + 1]; /* executions created */
    size_t n, cap;
    int64_t next_due_us; /* 0: none */
    int none;            /* the backend keeps no schedules */
} sched_look;

static void started(void *arg, const char *id)
{
    sched_look *k = arg;

    /* Out of memory: adoption takes it up instead. */
    if (EVS__GROW(k->o->alloc, &k->ids, &k->cap, k->n + 1) == 0)
        memcpy(k->ids[k->n++], id, strlen(id) + 1);
}

static void look_work(uv_work_t *w)
{
    sched_look *k = w->data;
    evs_orch *o = k->o;
    evs_schedule_listing l;
    int rc;

    if ((rc = evs_schedule_list(o->store, &l)) != 0) {
        /* A backend without schedules is said once, and not looked at
         * again. */
        k->none = rc == -ENOTSUP;
        evs__orch_log(o, k->none ? EVS_LOG_INFO : EVS_LOG_WARN,
                      "schedules: cannot list them: %s%s", evs_strerror(rc),
                      k->none ? "; this store's backend keeps none, and "
                                "none are fired"
                              : "");
        return;
    }
    for (size_t i = 0; i < l.count && !o->stopping; i++) {
        evs_sched_fired f;
        evs_error_info err;

        memset(&f, 0, sizeof(f));
        f.on_start = started;
        f.arg = k;
        rc = evs_sched_fire_due(o->store, l.names[i], evs_now_us(), &f, &err);
        if (rc != 0 && rc != EVS_ELOCKED && rc != -ENOENT)
            evs__orch_log(o, EVS_LOG_WARN, "schedule %s: %s", l.names[i],
                          err.msg[0] ? err.msg : evs_strerror(rc));
        if (f.next_due_us &&
            (!k->next_due_us || f.next_due_us < k->next_due_us))
            k->next_due_us = f.next_due_us;
    }
    evs_schedule_list_free(&l);
}

static void look_done(uv_work_t *w, int status)
{
    sched_look *k = w->data;
    evs_orch *o = k->o;
    uint64_t wait = o->opts.schedule_ms;

    (void)status;
    o->busy--;
    o->sched_busy = 0;
    for (size_t i = 0; i < k->n && !o->stopping; i++)
        (void)evs_orch_resume(o, evs_span_cstr(k->ids[i]));
    if (k->next_due_us) {
        int64_t in = (k->next_due_us - evs_now_us()) / 1000 + 1;
        if (in < 0)
            in = 0;
        if ((uint64_t)in < wait)
            wait = (uint64_t)in;
    }
    if (!o->stopping && !o->closing && !k->none)
        uv_timer_start(&o->sched, evs__orch_sched_cb, wait, 0);
    evs__free(o->alloc, k->ids);
    evs__free(o->alloc, k);
    evs__orch_check_idle(o);
}

void evs__orch_sched_cb(uv_timer_t *h)
{
    evs_orch *o = h->data;
    sched_look *k;

    if (o->stopping || o->sched_busy)
        return;
    if (!(k = evs__calloc(o->alloc, sizeof(*k)))) {
        uv_timer_start(&o->sched, evs__orch_sched_cb, o->opts.schedule_ms, 0);
        return;
    }
    k->o = o;
    k->work.data = k;
    o->busy++;
    o->sched_busy = 1;
    if (uv_queue_work(o->loop, &k->work, look_work, look_done) != 0) {
        o->busy--;
        o->sched_busy = 0;
        evs__free(o->alloc, k);
        uv_timer_start(&o->sched, evs__orch_sched_cb, o->opts.schedule_ms, 0);
    }
}
