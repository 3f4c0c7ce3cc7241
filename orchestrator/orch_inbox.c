/*
 * orch_inbox.c: requests to an execution (events, pause, unpause,
 * terminate): those other processes leave in its inbox, which is watched
 * (or, on a backend whose inbox is no directory, its change counter
 * polled often) and polled, and those made in this process (evs_orch_send and the
 * rest), which take the same way to the step machine. A request's file
 * is removed once its event is durable.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* The inbox                                                        */
/* ---------------------------------------------------------------- */

/* Removes the requests whose events are durable. */
void evs__orch_take_done(orch_exec *x)
{
    uint64_t durable = evs_recorder_flushed_seq(x->rec);
    taken_req **pp = &x->taken;

    while (*pp) {
        taken_req *t = *pp;
        if (t->seq <= durable && t->seq != UINT64_MAX) {
            int rc = evs_request_remove(x->o->store, x->id, x->id_len, t->id,
                                        strlen(t->id));
            if (rc != 0)
                evs__orch_logf(x->o, EVS_LOG_WARN,
                               EVS_LOG_FIELDS(.execution = x->id, .err = rc),
                               "request %s recorded but not removed; it will "
                               "be recognised and skipped",
                               t->id);
            /* Keep the id while the file may still be listed. */
            t->seq = UINT64_MAX;
        }
        pp = &t->next;
    }
}

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
            evs__free(x->o->alloc, t);
        } else {
            pp = &t->next;
        }
    }
}

void evs__orch_inbox_pick(orch_exec *x)
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
    x->unread = 0;
    rc = evs_request_list(x->o->store, x->id, x->id_len, &l);
    if (rc != 0) {
        evs__orch_logf(x->o, EVS_LOG_WARN,
                       EVS_LOG_FIELDS(.execution = x->id, .err = rc),
                       "inbox not read: %s", evs_strerror(rc));
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
        control = evs__drive_request(x, q->id.ptr, q->body, &seq);
        if (x->released)
            break;
        t = evs__calloc(x->o->alloc, sizeof(*t));
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
        evs__orch_take_done(x);
        evs__drive(x);
    }
}

static void watch_cb(uv_fs_event_t *h, const char *name, int events, int status)
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
    evs__orch_inbox_pick(x);
    evs__orch_check_idle(x->o);
}

static void watch_closed(uv_handle_t *h)
{
    orch_exec *x = h->data;

    evs__free(x->o->alloc, h);
    evs__orch_exec_unref(x);
}

/* How often an inbox without a directory to watch is looked at: one
 * indexed read of its change counter (evs_request_changed). */
#define STAMP_POLL_MS 50

static void stamp_cb(uv_timer_t *h)
{
    orch_exec *x = h->data;

    if (evs_request_changed(x->o->store, x->id, x->id_len, &x->stamp) == 1) {
        evs__orch_inbox_pick(x);
        evs__orch_check_idle(x->o);
    }
}

/* The fallback for a backend whose inbox is no directory. */
static void poll_stamp(orch_exec *x)
{
    if (!(x->stamp_poll = evs__malloc(x->o->alloc, sizeof(*x->stamp_poll))))
        return;
    memset(&x->stamp, 0, sizeof(x->stamp));
    uv_timer_init(x->o->loop, x->stamp_poll);
    x->stamp_poll->data = x;
    x->refs++;
    uv_timer_start(x->stamp_poll, stamp_cb, STAMP_POLL_MS, STAMP_POLL_MS);
}

/* Watches the inbox of x, or its directory while it has no inbox: no
 * inbox is made here, since making one is a sync. */
void evs__orch_watch(orch_exec *x)
{
    evs_orch *o = x->o;
    char parent[sizeof(x->inbox_path)];
    int rc;

    rc = evs_request_dir_peek(o->store, x->id, x->id_len, x->inbox_path,
                              sizeof(x->inbox_path));
    if (rc == -ENOTSUP) {
        /* The store's notifications, when it has them, tell of this
         * inbox too (orch_watch.c). */
        if (!o->watch)
            poll_stamp(x);
        return;
    }
    if (rc != 0 && rc != -ENOENT)
        return;
    if (!(x->watch = evs__malloc(x->o->alloc, sizeof(*x->watch))))
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

void evs__orch_unwatch(orch_exec *x)
{
    if (x->stamp_poll) {
        uv_timer_stop(x->stamp_poll);
        uv_close((uv_handle_t *)x->stamp_poll, watch_closed);
        x->stamp_poll = NULL;
    }
    if (x->watch) {
        uv_fs_event_stop(x->watch);
        uv_close((uv_handle_t *)x->watch, watch_closed);
        x->watch = NULL;
    }
}

/* ---------------------------------------------------------------- */
/* Requests from this process                                       */
/* ---------------------------------------------------------------- */

/* The owned execution a request to `id` is for: `id`, or, once it has
 * continued as new, the last member of its chain (as the store shows it
 * now). Returns 0, EVS_EFINISHED (it, or its chain, has ended), -ENOENT
 * (not owned here). */
static int request_target(evs_orch *o, evs_span id, orch_exec **out)
{
    orch_exec *x = evs__orch_find_exec(o, id);
    evs_replay *rp = NULL;
    evs__chain c;
    int ended;

    if (!x || evs_replay_exec(x->rp)->status == EVS_STATUS_CONTINUED) {
        if (evs__chain_init(&c, id) != 0 ||
            evs__chain_last(o->store, &c, &rp) != 0)
            return x ? EVS_EFINISHED : -ENOENT;
        ended = evs_replay_exec(rp)->status >= EVS_STATUS_COMPLETED;
        evs_replay_free(rp);
        if (!(x = evs__orch_find_exec(o, (evs_span){c.id, c.id_len})))
            return ended ? EVS_EFINISHED : -ENOENT;
    }
    if (evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return EVS_EFINISHED;
    *out = x;
    return 0;
}

static int local_request(evs_orch *o, evs_span id, const char *kind,
                         evs_span type, evs_span payload, evs_span by)
{
    orch_exec *x;
    evs__jbuf b = {.alloc = o->alloc};
    uint64_t seq;
    int rc;

    if ((rc = request_target(o, id, &x)) != 0)
        return rc;
    rc = evs__request_body(&b, evs_span_cstr(kind), type, payload, by);
    if (rc == 0) {
        rc = evs__drive_request(x, NULL, (evs_span){b.p, b.len}, &seq);
        rc = rc < 0 ? rc : 0;
        if (!x->released)
            evs__drive(x);
    }
    evs__jb_free(&b);
    evs__orch_check_idle(o);
    return rc;
}

int evs_orch_send(evs_orch *o, evs_span id, evs_span type, evs_span payload)
{
    if (type.len == 0)
        return -EINVAL;
    return local_request(o, id, "event", type, payload, (evs_span){0});
}

int evs_orch_pause(evs_orch *o, evs_span id, evs_span reason)
{
    return local_request(o, id, "pause", (evs_span){0}, reason, (evs_span){0});
}

int evs_orch_unpause(evs_orch *o, evs_span id)
{
    return local_request(o, id, "unpause", (evs_span){0}, (evs_span){0},
                         (evs_span){0});
}

int evs_orch_terminate(evs_orch *o, evs_span id, evs_span reason)
{
    return local_request(o, id, "terminate", (evs_span){0}, reason,
                         (evs_span){0});
}

int evs_orch_pause_by(evs_orch *o, evs_span id, evs_span by, evs_span reason)
{
    return local_request(o, id, "pause", (evs_span){0}, reason, by);
}

int evs_orch_unpause_by(evs_orch *o, evs_span id, evs_span by,
                        evs_span reason)
{
    return local_request(o, id, "unpause", (evs_span){0}, reason, by);
}

int evs_orch_terminate_by(evs_orch *o, evs_span id, evs_span by,
                          evs_span reason)
{
    return local_request(o, id, "terminate", (evs_span){0}, reason, by);
}

int evs_orch_post(evs_store *store, evs_span id, evs_span kind, evs_span type,
                  evs_span payload)
{
    return evs_exec_post(store, id, kind, type, payload);
}

int evs_orch_post_by(evs_store *store, evs_span id, evs_span kind,
                     evs_span type, evs_span payload, evs_span by)
{
    return evs_exec_post_by(store, id, kind, type, payload, by);
}

const evs_replay *evs_orch_state(const evs_orch *o, evs_span id)
{
    orch_exec *x = evs__orch_find_exec(o, id);

    return x ? x->rp : NULL;
}

const char *evs_orch_runner(const evs_orch *o)
{
    return o->me.id;
}

uv_loop_t *evs_orch_loop(evs_orch *o)
{
    return o->loop;
}

size_t evs_orch_owned(const evs_orch *o)
{
    return o->nexecs;
}
