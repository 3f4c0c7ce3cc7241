/*
 * orch_watch.c: hearing of work instead of looking for it, on a store
 * that tells (evs_watch, store.h: PostgreSQL's LISTEN/NOTIFY).
 *
 * Without notifications a runner watches each owned execution's inbox
 * directory (files) or polls its change counter every 50 ms (SQLite),
 * and looks for new work every adopt_ms. With them, one connection hears
 * of every request posted to the store and of every execution offered
 * to runners, as each commits: a request reads that execution's inbox if
 * it is owned here, and offered work claims from the queue at once.
 *
 * The watch's connection is made on the threadpool: a server slow to
 * answer (or a network that drops the packets, up to libpq's
 * connect_timeout) must not stop the loop, which drives every owned
 * execution and renews their leases. Executions attached meanwhile poll
 * as without a watch, and a start queued meanwhile reads its inbox.
 *
 * A notification goes, at its transaction's commit, to every session
 * listening then, so none is missed while the watch's connection lives;
 * inboxes are not polled meanwhile. The queue still is, every adopt_ms.
 * When the connection drops (the server restarted), the runner polls
 * every inbox until a new watch is open, and that one reads every inbox
 * and the queue once, for what was sent before it listened. A request
 * to an execution being started here, posted before its attach, is
 * caught by the start's own read of its inbox (note_gen, orch_own.c).
 */
#include "orch_int.h"

#include <errno.h>
#include <string.h>

static void note_cb(void *arg, int kind, const char *id, size_t id_len)
{
    evs_orch *o = arg;
    orch_exec *x;

    if (kind == EVS_WATCH_FREE) {
        o->adopt_due = 1;
        return;
    }
    x = evs__orch_find_exec(o, (evs_span){id, id_len});
    if (x && !x->released)
        evs__orch_inbox_pick(x);
    else
        o->note_gen++; /* perhaps one being started here */
}

/* The poll of a watch's descriptor, and what its close frees. */
typedef struct watch_poll {
    uv_poll_t h;
    evs_orch *o;
    evs_watch *w;
} watch_poll;

static void poll_closed(uv_handle_t *h)
{
    watch_poll *wp = h->data;

    evs_watch_close(wp->w);
    evs__free(wp->o->alloc, wp);
}

void evs__orch_unwatch_store(evs_orch *o)
{
    watch_poll *wp = (watch_poll *)o->watch_poll;

    if (!wp)
        return;
    uv_poll_stop(&wp->h);
    uv_close((uv_handle_t *)&wp->h, poll_closed);
    o->watch = NULL;
    o->watch_poll = NULL;
    o->note_gen++;
}

static void adopt_now(evs_orch *o)
{
    if (o->adopt_due && o->opts.adopt_ms && !o->stopping && !o->closing) {
        o->adopt_due = 0;
        o->last_adopt_ms = uv_now(o->loop);
        (void)evs__orch_adopt(o, EVS__ORCH_ADOPT_BATCH, NULL);
    }
    o->adopt_due = 0;
}

static void watch_cb(uv_poll_t *h, int status, int events)
{
    watch_poll *wp = h->data;
    evs_orch *o = wp->o;
    int n;

    (void)events;
    n = status < 0 ? status : evs_watch_read(wp->w, note_cb, o);
    if (n < 0) {
        evs__orch_logf(o, EVS_LOG_WARN, EVS_LOG_FIELDS(.err = n),
                       "the store's notifications were lost (%s); polling "
                       "until they are back",
                       evs_strerror(n));
        evs__orch_unwatch_store(o);
    }
    adopt_now(o);
    evs__orch_check_idle(o);
}

/* The longest back-off while the store cannot be reached. */
#define RETRY_MAX_MS 10000

void evs__orch_reachable(evs_orch *o, int rc)
{
    if (rc == 0) {
        o->retry_ms = 0;
    } else if (rc == -ECONNREFUSED || rc == -ECONNRESET) {
        o->retry_ms = o->retry_ms ? o->retry_ms * 2 : o->opts.inbox_poll_ms;
        if (o->retry_ms > RETRY_MAX_MS)
            o->retry_ms = RETRY_MAX_MS;
        o->retry_at_ms = uv_now(o->loop) + o->retry_ms;
    }
}

int evs__orch_backed_off(const evs_orch *o)
{
    return o->retry_ms && uv_now(o->loop) < o->retry_at_ms;
}

/* An open of the store's watch, on the threadpool: it connects to the
 * server, which may take as long as the network does (libpq's
 * connect_timeout), and the loop must not wait for it. */
typedef struct watch_open {
    uv_work_t w;
    evs_orch *o;
    evs_watch *watch;
    int rc;
    int adopt;
    uint64_t epoch;
} watch_open;

static void open_work(uv_work_t *w)
{
    watch_open *j = w->data;

    j->rc = evs_watch_open(j->o->store, &j->watch);
    /* Listening from now on: a creation that begins after this is
     * heard of from its commit on. */
    if (j->rc == 0)
        j->epoch = atomic_fetch_add(&j->o->listen_epoch, 1) + 1;
}

/* Starts listening on an open watch: every inbox is read and the queue
 * looked at, for what was sent before it listened. */
static void watch_attach(evs_orch *o, evs_watch *w, uint64_t epoch,
                         int adopt)
{
    watch_poll *wp;

    if (!(wp = evs__calloc(o->alloc, sizeof(*wp)))) {
        evs_watch_close(w);
        return;
    }
    if (uv_poll_init(o->loop, &wp->h, evs_watch_fd(w)) != 0) {
        evs__free(o->alloc, wp);
        evs_watch_close(w);
        return;
    }
    wp->o = o;
    wp->w = w;
    wp->h.data = wp;
    o->watch = w;
    o->watch_poll = &wp->h;
    o->watch_epoch = epoch;
    uv_poll_start(&wp->h, UV_READABLE, watch_cb);
    /* The executions polled one by one until now need not be. */
    for (orch_exec *x = o->execs, *n; x; x = n) {
        n = x->next;
        if (x->stamp_poll)
            evs__orch_unwatch(x);
        if (!x->released)
            evs__orch_inbox_pick(x);
    }
    o->adopt_due = 1;
    if (adopt)
        adopt_now(o);
}

static void open_done(uv_work_t *w, int status)
{
    watch_open *j = w->data;
    evs_orch *o = j->o;
    int rc = status == 0 ? j->rc : status;

    o->watch_opening = 0;
    o->busy--;
    if (rc == -ENOTSUP) {
        o->no_watch = 1;
    } else if (status == 0) {
        evs__orch_reachable(o, rc);
        /* A failure was logged by the store; tried again after the
         * back-off. */
        if (rc == 0 && (o->closing || o->stopping))
            evs_watch_close(j->watch);
        else if (rc == 0)
            watch_attach(o, j->watch, j->epoch, j->adopt);
    }
    evs__free(o->alloc, j);
    evs__orch_check_idle(o);
}

void evs__orch_watch_store(evs_orch *o, int adopt)
{
    watch_open *j;

    if (o->watch || o->watch_opening || o->no_watch || o->closing ||
        o->stopping || evs__orch_backed_off(o))
        return;
    if (!(j = evs__calloc(o->alloc, sizeof(*j))))
        return; /* the next poll tries again */
    j->o = o;
    j->adopt = adopt;
    j->w.data = j;
    if (uv_queue_work(o->loop, &j->w, open_work, open_done) != 0) {
        evs__free(o->alloc, j);
        return;
    }
    o->watch_opening = 1;
    o->busy++;
}
