/*
 * continue.c: loops, and continue-as-new.
 *
 * The history rules name a step by (path, name, iteration), so a path
 * runs a step once. A loop (an edge back to a step the path already ran)
 * therefore goes on in a continuation path: "main" wraps into "main~2",
 * then "main~3", each started with the old one as its parent, the old one
 * completing. A join or the execution's outputs follow a path to its
 * latest continuation.
 *
 * A workflow with an unbounded loop is a service (evs_wf_is_service,
 * WORKFLOWS.md §2.9); its history may grow forever,
 * so at a wrap where nothing else runs, once the log passes the
 * orchestrator's thresholds (events, bytes, age), the execution continues
 * as new: a successor execution is created, atomically, holding what
 * must carry over (inputs, definition, variables, buffered events, the
 * loop's generation) and starting at the loop's step; then the
 * predecessor records execution_continue_as_new and ends. The
 * successor's id is derived from the predecessor's ("run.c2", "run.c3"),
 * so a runner that crashed between the two finds the successor it made
 * (same lineage) instead of making a second one.
 *
 * The predecessors stay, ended, and their ids keep meaning the chain:
 * evs__chain_* walk from any member to the one that goes on, which is
 * what a resume or a request addressed to a predecessor reaches.
 */
#include "orch_int.h"
#include "lineage.h"
#include "formats_shared.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* Continuation paths                                               */
/* ---------------------------------------------------------------- */

/* The generation of a path id ("x~3" is 3, "x" is 1) and its base. */
static uint64_t gen_of(evs_span id, size_t *base_len)
{
    size_t i = id.len;
    uint64_t g = 0, mul = 1;

    while (i > 0 && id.ptr[i - 1] >= '0' && id.ptr[i - 1] <= '9' &&
           id.len - i < 9) {
        g += (uint64_t)(id.ptr[i - 1] - '0') * mul;
        mul *= 10;
        i--;
    }
    if (i > 0 && i < id.len && id.ptr[i - 1] == '~' && g >= 2) {
        *base_len = i - 1;
        return g;
    }
    *base_len = id.len;
    return 1;
}

evs_span evs__orch_path_base(evs_span id)
{
    size_t base;

    gen_of(id, &base);
    id.len = base;
    return id;
}

static void next_gen(evs_span id, char *out, size_t cap)
{
    size_t base;
    uint64_t g = gen_of(id, &base);

    snprintf(out, cap, "%.*s~%llu", (int)base, id.ptr,
             (unsigned long long)(g + 1));
}

evs_span evs__orch_path_latest(const evs_replay *rp, evs_span id, char *buf,
                               size_t cap)
{
    const evs_path_state *p;
    char next[512];

    if (id.len >= cap)
        return id;
    memcpy(buf, id.ptr, id.len);
    buf[id.len] = '\0';
    id.ptr = buf;
    for (;;) {
        next_gen(id, next, sizeof(next));
        p = evs_replay_find_path(rp, evs_span_cstr(next));
        if (!p || strlen(next) >= cap)
            return id;
        memcpy(buf, next, strlen(next) + 1);
        id.len = strlen(next);
    }
}

/* Whether step T ran (or runs) on path `path`. */
static int ran_on(const evs_replay *rp, evs_span path, const evs_wf_step *T)
{
    evs_span name = evs_span_cstr(T->name);

    if (T->each.len)
        return evs_replay_find_each(rp, path, name) != NULL ||
               evs_replay_find_step(rp, path, name, 0) != NULL;
    return evs_replay_find_step(rp, path, name, -1) != NULL;
}

int64_t evs__orch_loop_passes(const orch_exec *x, evs_span pid,
                              const evs_wf_step *S, const evs_wf_step *T)
{
    const evs_replay *rp = x->rp;
    const evs_path_state *p;
    char prev[512];
    size_t base;
    uint64_t g = gen_of(pid, &base);
    int64_t n;

    /* The steps of ended paths may be gone from a compact state; their
     * path states, where each ended, stay. */
    if (!ran_on(rp, pid, T))
        return 0;
    for (n = 1; g >= 2; g--, n++) {
        /* Generation g-1 went round from S. */
        if (g - 1 == 1)
            snprintf(prev, sizeof(prev), "%.*s", (int)base, pid.ptr);
        else
            snprintf(prev, sizeof(prev), "%.*s~%llu", (int)base, pid.ptr,
                     (unsigned long long)(g - 1));
        p = evs_replay_find_path(rp, evs_span_cstr(prev));
        if (!p || !evs__span_eq_cstr(p->current_step, S->name))
            break;
    }
    return n;
}

/* ---------------------------------------------------------------- */
/* Continue-as-new                                                  */
/* ---------------------------------------------------------------- */

typedef struct can_job {
    uv_work_t work;
    orch_exec *x;
    char succ[EVS_ID_MAX + 1];
    evs_event_owned *ev;
    size_t n;
    evs_snapshot *snap;
    int rc;
} can_job;

static void can_work(uv_work_t *w)
{
    can_job *j = w->data;
    evs_event *views = evs__malloc(j->x->o->alloc, j->n * sizeof(*views));

    if (!views) {
        j->rc = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < j->n; i++)
        views[i] = j->ev[i].ev;
    j->rc = evs_exec_create_flags(j->x->o->store, j->succ, strlen(j->succ),
                                  j->snap, views, j->n, EVS_SNAPSHOT_CACHE);
    if (j->rc == -EEXIST &&
        evs__is_successor_of(j->x->o->store, j->succ, j->x->id))
        j->rc = 0;
    evs__free(j->x->o->alloc, views);
}

static void can_done(uv_work_t *w, int status)
{
    can_job *j = w->data;
    orch_exec *x = j->x;
    evs__jbuf d = {.alloc = x->o->alloc};

    (void)status;
    x->continuing = 0;
    if (j->rc != 0) {
        char msg[EVS_ID_MAX + 32];
        snprintf(msg, sizeof(msg), "creating successor %s", j->succ);
        if (!x->released)
            evs__orch_fail_exec(x, j->rc, msg);
    } else if (!x->released) {
        EVS__JB_LIT(&d, "{\"successor\":");
        evs__jb_quote(&d, evs_span_cstr(j->succ));
        EVS__JB_LIT(&d, "}");
        if (evs__orch_emit(x, NULL, EVS_EV_EXECUTION_CONTINUE_AS_NEW,
                           evs_span_cstr("main"), (evs_span){0}, &d, NULL) == 0)
            snprintf(x->successor, sizeof(x->successor), "%s", j->succ);
        evs__jb_free(&d);
        evs__drive(x);
    }
    for (size_t i = 0; i < j->n; i++)
        evs_event_free(&j->ev[i]);
    evs__free(x->o->alloc, j->ev);
    evs_snapshot_free(j->snap);
    evs__free(x->o->alloc, j);
    {
        evs_orch *o = x->o; /* x may go with its last reference */
        evs__orch_exec_unref(x);
        evs__orch_check_idle(o);
    }
}

static int add_event(can_job *j, size_t *cap, const char *type, evs_span path,
                     evs_span id, const evs__jbuf *data)
{
    char uuid[EVS_UUID_LEN + 1];
    evs_event ev;

    if (data->err)
        return -ENOMEM;
    if (j->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        evs_event_owned *nv =
            evs__realloc(j->x->o->alloc, j->ev, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        j->ev = nv;
        *cap = nc;
    }
    if (!id.len) {
        if (evs_uuid7(uuid) != 0)
            return -EIO;
        id = (evs_span){uuid, EVS_UUID_LEN};
    }
    memset(&ev, 0, sizeof(ev));
    ev.id = id;
    ev.path_id = path;
    ev.sequence = j->n + 1;
    ev.timestamp_us = evs__orch_now_us(j->x->o);
    ev.event_type = evs_span_cstr(type);
    ev.data = (evs_span){data->p, data->len};
    if (evs_event_copy(&ev, j->x->o->alloc, &j->ev[j->n]) != 0)
        return -ENOMEM;
    j->n++;
    return 0;
}

/* The successor's first events: its start, linked to x; the root path at
 * step `at`; the variables; the events not yet taken. */
static int carried(const evs_wf_step *S, evs_span name)
{
    if (!S || S->carry_all)
        return 1;
    for (size_t i = 0; i < S->n_carry; i++)
        if (strlen(S->carry[i]) == name.len &&
            memcmp(S->carry[i], name.ptr, name.len) == 0)
            return 1;
    return 0;
}

static int build_successor(orch_exec *x, can_job *j, const char *at,
                           uint64_t generation, const evs_wf_step *S)
{
    const evs_replay *rp = x->rp;
    const evs_exec_state *st = evs_replay_exec(rp);
    evs_span main_id = evs_span_cstr("main");
    size_t cap = 0;
    evs__jbuf d = {.alloc = x->o->alloc};
    int rc;

    EVS__JB_LIT(&d, "{\"workflow_name\":");
    evs__jb_quote(&d, st->workflow_name);
    EVS__JB_LIT(&d, ",\"inputs\":");
    evs__jb_json(&d, st->inputs);
    EVS__JB_LIT(&d, ",\"definition\":");
    evs__jb_json(&d, x->def->json);
    EVS__JB_LIT(&d, ",\"definition_hash\":");
    evs__jb_quote(&d, evs_span_cstr(x->def->hash));
    EVS__JB_LIT(&d, ",\"inputs_hash\":");
    evs__jb_quote(&d, st->inputs_hash);
    EVS__JB_LIT(&d, ",\"lineage\":{\"continued_from\":");
    evs__jb_quote(&d, (evs_span){x->id, x->id_len});
    EVS__JB_LIT(&d, ",\"generation\":");
    evs__jb_int(&d, (int64_t)generation);
    EVS__JB_LIT(&d, "}}");
    rc = add_event(j, &cap, EVS_EV_EXECUTION_STARTED, main_id, (evs_span){0},
                   &d);
    d.len = 0;
    EVS__JB_LIT(&d, "{\"parent\":null,\"current_step\":");
    evs__jb_quote(&d, evs_span_cstr(at));
    EVS__JB_LIT(&d, "}");
    if (rc == 0)
        rc =
            add_event(j, &cap, EVS_EV_PATH_STARTED, main_id, (evs_span){0}, &d);
    for (size_t i = 0; rc == 0 && i < evs_replay_var_count(rp); i++) {
        const evs_var_state *v = evs_replay_var(rp, i);
        if (!carried(S, v->name))
            continue;
        d.len = 0;
        EVS__JB_LIT(&d, "{\"name\":");
        evs__jb_quote(&d, v->name);
        EVS__JB_LIT(&d, ",\"value\":");
        evs__jb_json(&d, v->value);
        EVS__JB_LIT(&d, "}");
        rc =
            add_event(j, &cap, EVS_EV_VARIABLE_SET, main_id, (evs_span){0}, &d);
    }
    /* Buffered events keep their ids: a request taken but not yet
     * removed is still recognised in the successor. */
    for (size_t i = 0; rc == 0 && i < evs_replay_signal_count(rp); i++) {
        const evs_signal_state *s = evs_replay_signal(rp, i);
        if (s->consumed_seq)
            continue;
        d.len = 0;
        EVS__JB_LIT(&d, "{\"signal\":");
        evs__jb_quote(&d, s->name);
        EVS__JB_LIT(&d, ",\"payload\":");
        evs__jb_json(&d, s->payload);
        EVS__JB_LIT(&d, "}");
        rc = add_event(j, &cap, EVS_EV_SIGNAL_RECEIVED, main_id, s->id, &d);
    }
    evs__jb_free(&d);
    return rc;
}

int evs__orch_continue_as_new(orch_exec *x, const char *at, uint64_t generation,
                              const evs_wf_step *S)
{
    evs_replay *nrp = NULL;
    can_job *j;
    int rc;

    if (x->continuing || x->released)
        return 0;
    if (!(j = evs__calloc(x->o->alloc, sizeof(*j))))
        return -ENOMEM;
    j->x = x;
    evs__successor_id(x->id, j->succ);
    if ((rc = build_successor(x, j, at, generation, S)) != 0)
        goto fail;
    /* Replayed strictly before it exists, which also gives its
     * snapshot. */
    if ((rc = evs__orch_replay_new(x->o->alloc, &nrp)) != 0)
        goto fail;
    for (size_t i = 0; i < j->n; i++) {
        evs_event e = j->ev[i].ev;
        e.execution_id = evs_span_cstr(j->succ);
        if ((rc = evs_replay_apply(nrp, &e, NULL)) != 0)
            goto fail;
    }
    if ((rc = evs_replay_snapshot_prepare(nrp, (evs_span){0}, &j->snap)))
        goto fail;
    evs_replay_free(nrp);
    nrp = NULL;
    x->continuing = 1;
    x->refs++;
    j->work.data = j;
    if ((rc = uv_queue_work(x->o->loop, &j->work, can_work, can_done)) != 0) {
        x->continuing = 0;
        x->refs--;
        goto fail;
    }
    return 0;
fail:
    evs_replay_free(nrp);
    for (size_t i = 0; i < j->n; i++)
        evs_event_free(&j->ev[i]);
    evs__free(x->o->alloc, j->ev);
    evs_snapshot_free(j->snap);
    evs__free(x->o->alloc, j);
    evs__orch_fail_exec(x, rc, "continuing as new");
    return rc;
}

/* A threshold: the definition's where it gives one, else the runner's. */
static uint64_t threshold(int64_t def, uint64_t opt)
{
    return def >= 0 ? (uint64_t)def : opt;
}

/* Whether another pass of the loop on `pid`, as long as this one, would
 * take x's log past a continue-as-new threshold: the log then ends
 * within it. The pass is measured from the state (where this
 * continuation path started), and the age from the history (the
 * execution's start to the last event, the one being decided), so the
 * same history decides the same way after a crash. The byte threshold
 * depends on the log's encoding too; a runner that crashed after making
 * a successor takes that one (continue.c's top comment). */
static int past_threshold(orch_exec *x, evs_span pid)
{
    const evs_orch_opts *o = &x->o->opts;
    const evs_wf_continue *dc = &x->def->cont;
    const evs_exec_state *st = evs_replay_exec(x->rp);
    const evs_path_state *cur = evs_replay_find_path(x->rp, pid);
    uint64_t seq = st->last_seq, bytes = evs_log_size(x->log);
    uint64_t pass = cur && cur->started_seq ? seq - cur->started_seq + 1 : seq;
    uint64_t events = threshold(dc->events, o->continue_events);
    uint64_t max_bytes = threshold(dc->bytes, o->continue_bytes);
    uint64_t age_ms = threshold(dc->age_ms, o->continue_age_ms);

    /* +1: the predecessor's last event, execution_continue_as_new. The
     * bytes of a pass are estimated from the log's average event. */
    return (events && seq + pass + 1 >= events) ||
           (max_bytes && seq &&
            bytes + 2 * pass * (bytes / seq) >= max_bytes) ||
           (age_ms && st->started_at_us && x->last_at_us &&
            x->last_at_us - st->started_at_us >= (int64_t)age_ms * 1000);
}

/* The loop generation the successor starts from. */
uint64_t evs__orch_generation(orch_exec *x, evs_span pid)
{
    evs_span lin = evs_replay_exec(x->rp)->lineage, gv;
    int64_t before = 0;
    size_t base;

    if (lin.len && evs__json_get(lin, "generation", &gv) == 1)
        evs__json_int(gv, &before);
    return (uint64_t)before + gen_of(pid, &base);
}

/* The one live path, or an empty span if there are several. */
static evs_span only_live_path(const evs_replay *rp)
{
    evs_span id = {0};

    for (size_t i = 0; i < evs_replay_path_count(rp); i++)
        if (!evs_replay_path(rp, i)->ended_seq) {
            if (id.len)
                return (evs_span){0};
            id = evs_replay_path(rp, i)->id;
        }
    return id;
}

int evs_orch_continue_as_new(evs_orch *o, evs_span id, evs_span start_at)
{
    orch_exec *x = evs__orch_find_exec(o, id);
    const evs_wf_step *T;
    evs_span pid;
    char at[256];

    if (!x)
        return -ENOENT;
    if (evs_replay_exec(x->rp)->status >= EVS_STATUS_COMPLETED)
        return EVS_EFINISHED;
    T = start_at.len ? evs_wf_find_step(x->def, start_at) : &x->def->steps[0];
    if (!T)
        return -EINVAL;
    pid = only_live_path(x->rp);
    if (!pid.len || x->waiting || x->continuing)
        return -EBUSY;
    for (size_t i = 0; i < x->npaths; i++)
        if (x->paths[i].req)
            return -EBUSY;
    snprintf(at, sizeof(at), "%s", T->name);
    return evs__orch_continue_as_new(x, at, evs__orch_generation(x, pid), NULL);
}

void evs__orch_wrap(orch_exec *x, evs_span pid, const evs_wf_step *T)
{
    const evs_replay *rp = x->rp;
    size_t live = 0;
    char next[512];
    evs__jbuf d = {.alloc = x->o->alloc};

    for (size_t i = 0; i < evs_replay_path_count(rp); i++)
        live += evs_replay_path(rp, i)->ended_seq == 0;
    /* A service continues as new at a loop where nothing else runs (a
     * bounded loop's passes are counted in one execution: it goes
     * round here). */
    if (x->service && live == 1 && !x->waiting && !x->bounded_move &&
        past_threshold(x, pid)) {
        evs__orch_continue_as_new(x, T->name, evs__orch_generation(x, pid),
                                  NULL);
        return;
    }
    next_gen(pid, next, sizeof(next));
    EVS__JB_LIT(&d, "{\"parent\":");
    evs__jb_quote(&d, pid);
    EVS__JB_LIT(&d, ",\"current_step\":");
    evs__jb_quote(&d, evs_span_cstr(T->name));
    EVS__JB_LIT(&d, "}");
    if (evs__orch_emit(x, NULL, EVS_EV_PATH_STARTED, evs_span_cstr(next),
                       (evs_span){0}, &d, NULL) == 0)
        evs__orch_emit(x, NULL, EVS_EV_PATH_COMPLETED, pid, (evs_span){0}, NULL,
                       NULL);
    evs__jb_free(&d);
}

int evs__orch_is_service(const evs_allocator *a, const evs_wf_def *d)
{
    return evs_wf_is_service(a, d) == 1;
}

/* A continue_as_new step on pid: the successor starts at its start_at
 * with the variables it names. Every other path must have ended. */
void evs__orch_continue_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             int64_t iter, uint32_t attempt,
                             void (*failure)(orch_exec *, evs_span,
                                             const evs_wf_step *, int64_t,
                                             uint32_t, const char *, evs_span,
                                             int))
{
    evs_span only = only_live_path(x->rp);

    if (only.len != pid.len || memcmp(only.ptr, pid.ptr, pid.len) != 0) {
        failure(x, pid, S, iter, attempt, "busy",
                evs_span_cstr("continue_as_new needs every other path to "
                              "have ended"),
                0);
        return;
    }
    evs__orch_continue_as_new(x,
                              S->start_at ? S->start_at : x->def->steps[0].name,
                              evs__orch_generation(x, pid), S);
}
