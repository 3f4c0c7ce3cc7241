/*
 * run_continue.c: continuing a run as new, and sending a run requests.
 *
 * A run that would grow for ever (an agent that loops on a mailbox)
 * ends its history in a successor: a new run, created atomically with
 * what it carries (its inputs, and the events received but not yet
 * taken), linked to it (lineage continued_from), whose id is derived
 * from the run's (replay/lineage.h), so that a host that crashed between
 * creating it and ending the run finds it again. The run then ends
 * `continued`, naming its successor, and the host runs its code on the
 * successor from the start.
 */
#include "run_int.h"
#include "lineage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct succ_events {
    evs_event ev[64];
    evs__jbuf data[64];
    size_t n;
} succ_events;

static int add(succ_events *e, const char *type, evs_span id,
               const evs__jbuf *data)
{
    evs_event *ev;

    if (e->n == sizeof(e->ev) / sizeof(e->ev[0]))
        return -E2BIG;
    if (data->err)
        return -ENOMEM;
    ev = &e->ev[e->n++];
    memset(ev, 0, sizeof(*ev));
    ev->id = id;
    ev->path_id = evs_span_cstr("main");
    ev->sequence = e->n;
    ev->event_type = evs_span_cstr(type);
    ev->data = (evs_span){data->p, data->len};
    return 0;
}

/* Creates the successor `succ` of r with `inputs` (compact JSON). */
static int create_successor(evs_run *r, const char *succ, const evs__jbuf *in,
                            evs_error_info *err)
{
    run_core *c = r->c;
    succ_events *e = evs__calloc(c->alloc, sizeof(*e));
    evs__jbuf wf = {.alloc = c->alloc};
    evs_snapshot snap;
    char ihash[17];
    uint64_t h;
    size_t i;
    int rc;

    if (!e)
        return -ENOMEM;
    for (i = 0; i < sizeof(e->data) / sizeof(e->data[0]); i++)
        e->data[i].alloc = c->alloc;
    if ((rc = evs_json_hash(in->p, in->len, c->alloc, &h)) != 0)
        goto out;
    evs__hex64(h, ihash);
    ihash[16] = '\0';
    EVS__JB_LIT(&e->data[0], "{\"workflow_name\":");
    evs__jb_quote(&e->data[0], evs_span_cstr(c->workflow));
    EVS__JB_LIT(&e->data[0], ",\"inputs\":");
    evs__run_jb_cat(&e->data[0], in);
    EVS__JB_LIT(&e->data[0], ",\"inputs_hash\":\"");
    evs__jb_str(&e->data[0], ihash);
    EVS__JB_LIT(&e->data[0], "\",\"code_version\":");
    evs__jb_quote(&e->data[0], evs_span_cstr(c->host_version));
    EVS__JB_LIT(&e->data[0], ",\"lineage\":{\"continued_from\":");
    evs__jb_quote(&e->data[0], (evs_span){c->id, c->id_len});
    EVS__JB_LIT(&e->data[0], "}}");
    EVS__JB_LIT(&e->data[1], "{\"parent\":null}");
    if ((rc = add(e, EVS_EV_EXECUTION_STARTED, (evs_span){0}, &e->data[0])) ||
        (rc = add(e, EVS_EV_PATH_STARTED, (evs_span){0}, &e->data[1])))
        goto out;
    /* Events received and not taken go on in the successor, with their
     * ids: a request found again after a crash is still recognised. */
    for (i = 0; i < evs_replay_signal_count(c->rp) && rc == 0; i++) {
        const evs_signal_state *s = evs_replay_signal(c->rp, i);
        evs__jbuf *d = &e->data[e->n];
        if (s->consumed_seq)
            continue;
        if (e->n == sizeof(e->ev) / sizeof(e->ev[0])) {
            rc = evs__run_fail(r, err, -E2BIG, "argument",
                               "run %s: more than %zu events wait to be "
                               "taken; take them before continuing as new",
                               c->id, e->n - 2);
            goto out;
        }
        EVS__JB_LIT(d, "{\"signal\":");
        evs__jb_quote(d, s->name);
        EVS__JB_LIT(d, ",\"payload\":");
        evs__jb_json(d, s->payload);
        EVS__JB_LIT(d, "}");
        rc = add(e, EVS_EV_SIGNAL_RECEIVED, s->id, d);
    }
    if (rc != 0)
        goto out;
    EVS__JB_LIT(&wf, "{\"code_version\":");
    evs__jb_quote(&wf, evs_span_cstr(c->host_version));
    EVS__JB_LIT(&wf, "}");
    if (wf.err) {
        rc = -ENOMEM;
        goto out;
    }
    memset(&snap, 0, sizeof(snap));
    snap.workflow_name = evs_span_cstr(c->workflow);
    snap.inputs_hash = evs_span_cstr(ihash);
    snap.status = evs_span_cstr("running");
    snap.start_time_us = evs_now_us();
    snap.inputs = (evs_span){in->p, in->len};
    snap.lineage = evs_span_cstr("{}");
    snap.workflow_data = (evs_span){wf.p, wf.len};
    rc = evs_exec_create_flags(c->s, succ, strlen(succ), &snap, e->ev, e->n,
                               EVS_SNAPSHOT_CACHE);
    /* Made before a crash, by this run: it is the one. */
    if (rc == -EEXIST && evs__is_successor_of(c->s, succ, c->id))
        rc = 0;
out:
    for (i = 0; i < sizeof(e->data) / sizeof(e->data[0]); i++)
        evs__jb_free(&e->data[i]);
    evs__free(c->alloc, e);
    evs__jb_free(&wf);
    return rc;
}

/* Hands the requests left in this run's inbox on to its successor
 * `succ` (FORMAT.md §13): those posted while it was continuing as new,
 * which nothing here will take. One already recorded here went on with
 * the events carried, and is only removed. A crash between the post and
 * the removal hands it on twice (a second event with another id). */
void evs__run_forward_requests(evs_run *r, const char *succ)
{
    run_core *c = r->c;
    evs_request_listing l = {0};

    if (evs_request_list(c->s, c->id, c->id_len, &l) != 0) {
        evs_request_list_free(&l);
        return;
    }
    for (size_t i = 0; i < l.count; i++) {
        const evs_request *q = &l.items[i];
        if (!evs_replay_signal_received(c->rp, q->id, NULL) &&
            evs_request_post(c->s, succ, strlen(succ), q->body.ptr, q->body.len,
                             NULL) != 0)
            continue; /* left for a later open to hand on */
        evs_request_remove(c->s, c->id, c->id_len, q->id.ptr, q->id.len);
    }
    evs_request_list_free(&l);
}

static int continue_as_new(evs_run *r, const char *inputs,
                           char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    run_core *c = r->c;
    evs__jbuf in = {.alloc = c->alloc}, d = {.alloc = c->alloc};
    char succ[EVS_ID_MAX + 1];
    int rc;

    if ((rc = evs__run_idle(r, err)) != 0)
        return rc;
    if (r->parent)
        return evs__run_fail(r, err, -EINVAL, "argument",
                             "run %s: only the root continues as new", c->id);
    if (evs__run_next_cmd(r))
        return evs__run_nondet(r, evs__run_next_cmd(r), "continues as new",
                               err);
    if ((rc = evs__run_check_json(r, inputs ? inputs : c->inputs,
                                  "the successor's inputs", &in, err)))
        goto out;
    if (in.p[0] != '{') {
        rc = evs__run_fail(r, err, EVS_EPARSE, "json",
                           "the successor's inputs must be a JSON object");
        goto out;
    }
    evs__successor_id(c->id, succ);
    if ((rc = evs__run_flush(r, err)) != 0)
        goto out;
    if ((rc = create_successor(r, succ, &in, err)) != 0) {
        if (!err || !err->msg[0])
            evs__run_fail(r, err, rc, "store", "run %s: creating %s: %s", c->id,
                          succ, evs_strerror(rc));
        goto out;
    }
    EVS__JB_LIT(&d, "{\"successor\":");
    evs__jb_quote(&d, evs_span_cstr(succ));
    EVS__JB_LIT(&d, "}");
    if ((rc = evs__run_cancel_paths(r, "the run continued as new", 1, err)) ||
        (rc = evs__run_emit(r, NULL, EVS_EV_PATH_COMPLETED, "", NULL, err)) ||
        (rc = evs__run_emit(r, NULL, EVS_EV_EXECUTION_CONTINUE_AS_NEW, "", &d,
                            err)) ||
        (rc = evs__run_flush(r, err)))
        goto out;
    evs__run_save_snapshot(r);
    evs__run_forward_requests(r, succ);
    if (out_id)
        snprintf(out_id, EVS_ID_MAX + 1, "%s", succ);
out:
    evs__jb_free(&in);
    evs__jb_free(&d);
    return rc;
}

int evs_run_continue_as_new(evs_run *r, const char *inputs,
                            char out_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    int rc;

    if (out_id)
        out_id[0] = '\0';
    pthread_mutex_lock(&r->c->mu);
    rc = continue_as_new(r, inputs, out_id, err);
    rc = evs__run_done(r, rc, err);
    pthread_mutex_unlock(&r->c->mu);
    return rc;
}

const char *evs_run_continued_as(evs_run *r)
{
    const char *s = "";

    pthread_mutex_lock(&r->c->mu);
    if (evs_replay_exec(r->c->rp)->continued_as.len &&
        evs__run_set(&r->output, evs_replay_exec(r->c->rp)->continued_as) == 0)
        s = r->output.p;
    pthread_mutex_unlock(&r->c->mu);
    return s;
}

/* ---------------------------------------------------------------- */
/* Requests                                                         */
/* ---------------------------------------------------------------- */

static int post(evs_store *s, const char *id, const char *kind,
                const char *type, evs_span payload, const char *by,
                evs_error_info *err)
{
    int rc;

    if (err)
        evs_error_info_clear(err);
    if (!s || !id)
        return -EINVAL;
    rc = evs_exec_post_by(s, evs_span_cstr(id), evs_span_cstr(kind),
                          evs_span_cstr(type), payload,
                          evs_span_cstr(by ? by : ""));
    if (rc != 0 && err) {
        evs__error_set(err, rc, "request", "%s to %s: %s", kind, id,
                       rc == -EINVAL ? "not a JSON payload, a bad kind, or "
                                       "a `by` that is not UTF-8 or is "
                                       "too long"
                                     : evs_strerror(rc));
        evs__error_set_id(err, id, strlen(id));
    }
    return rc;
}

int evs_run_send(evs_store *s, const char *id, const char *event,
                 const char *payload, evs_error_info *err)
{
    if (!event || !*event) {
        evs__error_set(err, -EINVAL, "argument", "an event needs a type");
        return -EINVAL;
    }
    return post(s, id, "event", event,
                evs_span_cstr(payload && *payload ? payload : "null"), NULL,
                err);
}

int evs_run_request(evs_store *s, const char *id, const char *kind,
                    const char *reason, evs_error_info *err)
{
    return evs_run_request_by(s, id, kind, NULL, reason, err);
}

int evs_run_request_by(evs_store *s, const char *id, const char *kind,
                       const char *by, const char *reason,
                       evs_error_info *err)
{
    evs__jbuf q = {.alloc = evs_store_allocator(s)};
    int rc;

    if (!kind || (strcmp(kind, "pause") && strcmp(kind, "unpause") &&
                  strcmp(kind, "terminate"))) {
        evs__error_set(err, -EINVAL, "argument",
                       "a request is \"pause\", \"unpause\" or \"terminate\"");
        return -EINVAL;
    }
    if (reason && *reason)
        evs__jb_quote(&q, evs_span_cstr(reason));
    if (q.err) {
        evs__jb_free(&q);
        return -ENOMEM;
    }
    rc = post(s, id, kind, "", (evs_span){q.p, q.len}, by, err);
    evs__jb_free(&q);
    return rc;
}
