/*
 * evrun_gc.c: the retention policy applied by `evrun serve` every
 * gc.interval (evstore/settings.h). The gc runs on libuv's threadpool,
 * never on the loop thread, so runners go on while it deletes; and it
 * never touches what this runner owns, since a runner holds the writer
 * lock of every execution it runs and gc leaves locked ones alone
 * (evstore/gc.h).
 */
#include "evrun.h"

#include <string.h>

static void gc_work(uv_work_t *w)
{
    serve_gc *g = w->data;

    memset(&g->res, 0, sizeof(g->res));
    g->rc = evs_store_gc(g->s, NULL, &g->res, &g->ei);
}

static void gc_done(uv_work_t *w, int status)
{
    serve_gc *g = w->data;

    g->busy = 0;
    if (status != 0)
        return; /* cancelled: the loop is closing */
    if (g->rc != 0)
        note("gc: %s (%s); nothing more is deleted until the next gc",
             g->ei.msg[0] ? g->ei.msg : evs_strerror(g->rc),
             evs_err_name(g->rc));
    else if (g->res.deleted || g->res.skipped || g->res.kept_lineage)
        note("gc: %zu expired: %zu deleted, %zu kept for lineage, %zu "
             "skipped",
             g->res.expired, g->res.deleted, g->res.kept_lineage,
             g->res.skipped);
}

static void gc_tick(uv_timer_t *t)
{
    serve_gc *g = t->data;

    if (g->busy)
        return; /* the last one is still at work */
    g->busy = 1;
    g->work.data = g;
    if (uv_queue_work(t->loop, &g->work, gc_work, gc_done) != 0)
        g->busy = 0;
}

int serve_gc_start(uv_loop_t *loop, evs_store *s, uint64_t first_ms,
                   serve_gc *g)
{
    evs_settings *st = NULL;
    evs_error_info ei;
    int64_t us;
    int rc;

    memset(g, 0, sizeof(*g));
    g->s = s;
    /* Runners do not wait on a settings file: one that cannot be read
     * leaves gc at the default interval, each gc then refusing (and
     * saying so) until it is mended. */
    if ((rc = evs_settings_load(s, &st, &ei)) != 0) {
        note("gc: %s (%s); gc deletes nothing until it is mended",
             ei.msg[0] ? ei.msg : evs_strerror(rc), evs_err_name(rc));
        rc = evs_settings_new(NULL, &st);
    }
    if (rc == 0)
        rc = evs_settings_duration(st, EVS_SET_GC_INTERVAL, &us);
    evs_settings_free(st);
    if (rc != 0 || us == EVS_DURATION_NEVER)
        return 0; /* gc.interval off */
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    /* Only the orchestrator keeps the loop alive. */
    uv_unref((uv_handle_t *)&g->timer);
    uv_timer_start(&g->timer, gc_tick, first_ms,
                   (uint64_t)(us / 1000 > 0 ? us / 1000 : 1));
    g->started = 1;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

void serve_gc_stop(serve_gc *g)
{
    if (!g->started)
        return;
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, timer_closed);
    g->started = 0;
}
