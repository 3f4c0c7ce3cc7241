/*
 * replay_index.c: finding and adding the elements of the replayed state
 * (paths, steps, each records, variables, versions, timers) through their
 * hash indexes, and the public accessors.
 */
#include "replay_int.h"

#include <errno.h>
#include <stdlib.h>

static const evs_span nospan = {"", 0};

/* ------------------------------------------------------------------ */
/* Lookups                                                            */
/* ------------------------------------------------------------------ */

typedef struct key3 {
    const evs_replay *r;
    evs_span a, b;
    int64_t n;
} key3;

static int path_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    return evs__span_eq(k->r->paths.v[pos].id, k->a);
}

static int step_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    const evs_step_state *s = &k->r->steps.v[pos];
    /* The path is most often the state's own copy: same pointer. */
    return s->iteration == k->n &&
           (s->path_id.ptr == k->a.ptr ? s->path_id.len == k->a.len
                                       : evs__span_eq(s->path_id, k->a)) &&
           evs__span_eq(s->name, k->b);
}

static int each_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    const evs_each_state *e = &k->r->eaches.v[pos];
    return evs__span_eq(e->path_id, k->a) && evs__span_eq(e->name, k->b);
}

static int var_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    return evs__span_eq(k->r->vars.v[pos].name, k->a);
}

static int version_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    return evs__span_eq(k->r->versions.v[pos].change_id, k->a);
}

/* Only a pending timer is found by its id: one that fired or was
 * cancelled leaves its id free for another (FORMAT.md, duplicate-timer). */
static int timer_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    const evs_timer_state *t = &k->r->timers.v[pos];
    return !t->fired_seq && !t->cancelled && evs__span_eq(t->timer_id, k->a);
}

static int stepname_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    return evs__span_eq(k->r->names.v[pos].name, k->a);
}

static int gone_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    return evs__span_eq(k->r->gone.v[pos], k->a);
}

long evs__rp_path_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->path_ix, evs__rp_hash(id, nospan, 0), path_eq, &k);
}

static int group_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    const iter_group *g = &k->r->groups.v[pos];
    return (g->path_id.ptr == k->a.ptr ? g->path_id.len == k->a.len
                                       : evs__span_eq(g->path_id, k->a)) &&
           evs__span_eq(g->name, k->b);
}

static long group_pos(const evs_replay *r, evs_span path, evs_span name)
{
    key3 k = {r, path, name, 0};
    return evs__rp_find(&r->group_ix, evs__rp_hash(path, name, -3), group_eq,
                        &k);
}

static int dense(int64_t iter)
{
    return iter >= 0 && iter < EVS__ITER_DENSE;
}

long evs__rp_step_pos(const evs_replay *r, evs_span path, evs_span name,
                      int64_t iter)
{
    key3 k = {r, path, name, iter};
    long g;

    if (dense(iter)) {
        const iter_group *ig;
        if ((g = group_pos(r, path, name)) < 0)
            return -1;
        ig = &r->groups.v[g];
        return (size_t)iter < ig->n ? (long)ig->pos[iter] - 1 : -1;
    }
    return evs__rp_find(&r->step_ix, evs__rp_hash(path, name, iter), step_eq,
                        &k);
}

long evs__rp_each_pos(const evs_replay *r, evs_span path, evs_span name)
{
    key3 k = {r, path, name, 0};
    return evs__rp_find(&r->each_ix, evs__rp_hash(path, name, -2), each_eq, &k);
}

long evs__rp_var_pos(const evs_replay *r, evs_span name)
{
    key3 k = {r, name, nospan, 0};
    return evs__rp_find(&r->var_ix, evs__rp_hash(name, nospan, 1), var_eq, &k);
}

long evs__rp_version_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->version_ix, evs__rp_hash(id, nospan, 2), version_eq,
                        &k);
}

long evs__rp_timer_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->timer_ix, evs__rp_hash(id, nospan, 3), timer_eq,
                        &k);
}

long evs__rp_stepname_pos(const evs_replay *r, evs_span name)
{
    key3 k = {r, name, nospan, 0};
    return evs__rp_find(&r->name_ix, evs__rp_hash(name, nospan, 4), stepname_eq,
                        &k);
}

static long gone_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->gone_ix, evs__rp_hash(id, nospan, 5), gone_eq, &k);
}

static void count_path(evs_replay *r, evs_path_status st, int d)
{
    if (st == EVS_PATH_ACTIVE)
        r->nactive += (size_t)d;
    else if (st == EVS_PATH_WAITING)
        r->nwaiting += (size_t)d;
}

int evs__rp_add_path(evs_replay *r, const evs_path_state *p)
{
    ADD(r, paths, p, &r->path_ix, evs__rp_hash(p->id, nospan, 0));
    count_path(r, p->status, 1);
    return 0;
}

/* Every change of a path's status goes through here, which keeps count
 * of the live paths by status: the execution's status follows them. */
void evs__rp_set_path_status(evs_replay *r, evs_path_state *p,
                             evs_path_status st)
{
    count_path(r, p->status, -1);
    p->status = st;
    count_path(r, st, 1);
}

/* Records that iteration `iter` of (path, name) is steps.v[pos]. */
static int add_iteration(evs_replay *r, const evs_step_state *s, size_t pos)
{
    long g = group_pos(r, s->path_id, s->name);
    size_t it = (size_t)s->iteration;
    iter_group *ig;

    if (g < 0) {
        iter_group ng;
        memset(&ng, 0, sizeof(ng));
        ng.path_id = s->path_id;
        ng.name = s->name;
        ADD(r, groups, &ng, &r->group_ix,
            evs__rp_hash(s->path_id, s->name, -3));
        g = (long)r->groups.n - 1;
    }
    ig = &r->groups.v[g];
    if (it >= ig->cap) {
        size_t cap = ig->cap ? ig->cap : 16;
        uint32_t *np;
        while (cap <= it)
            cap *= 2;
        if (!(np = evs__realloc(r->alloc, ig->pos, cap * sizeof(*np))))
            return -ENOMEM;
        ig->pos = np;
        ig->cap = cap;
    }
    if (it >= ig->n) {
        memset(ig->pos + ig->n, 0, (it + 1 - ig->n) * sizeof(*ig->pos));
        ig->n = it + 1;
    }
    ig->pos[it] = (uint32_t)pos + 1;
    return 0;
}

int evs__rp_add_step(evs_replay *r, const evs_step_state *s)
{
    int rc;

    if (!dense(s->iteration)) {
        ADD(r, steps, s, &r->step_ix,
            evs__rp_hash(s->path_id, s->name, s->iteration));
        return 0;
    }
    /* Room first, so that a failure leaves the two in step. */
    if (!evs__rp_grow(r, (void **)&r->steps.v, &r->steps.cap, r->steps.n,
                      sizeof(*r->steps.v)))
        return -ENOMEM;
    if ((rc = add_iteration(r, s, r->steps.n)) != 0)
        return rc;
    r->steps.v[r->steps.n++] = *s;
    return 0;
}

int evs__rp_add_each(evs_replay *r, const evs_each_state *e)
{
    ADD(r, eaches, e, &r->each_ix, evs__rp_hash(e->path_id, e->name, -2));
    return 0;
}

int evs__rp_add_var(evs_replay *r, const evs_var_state *v)
{
    ADD(r, vars, v, &r->var_ix, evs__rp_hash(v->name, nospan, 1));
    return 0;
}

int evs__rp_add_version(evs_replay *r, const evs_version_state *v)
{
    ADD(r, versions, v, &r->version_ix, evs__rp_hash(v->change_id, nospan, 2));
    return 0;
}

int evs__rp_add_timer(evs_replay *r, const evs_timer_state *t)
{
    ADD(r, timers, t, &r->timer_ix, evs__rp_hash(t->timer_id, nospan, 3));
    return 0;
}

int evs__rp_add_stepname(evs_replay *r, const evs_stepname_state *n)
{
    ADD(r, names, n, &r->name_ix, evs__rp_hash(n->name, nospan, 4));
    return 0;
}

int evs__rp_add_gone(evs_replay *r, evs_span id)
{
    ADD(r, gone, &id, &r->gone_ix, evs__rp_hash(id, nospan, 5));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Compact mode: dropping what has ended                              */
/* ------------------------------------------------------------------ */

static int path_live(const evs_replay *r, evs_span id)
{
    long i = evs__rp_path_pos(r, id);
    /* A step of a path the state does not know (only tolerant mode
     * makes one) is kept: nothing says it ended. */
    return i < 0 || r->paths.v[i].status == EVS_PATH_ACTIVE ||
           r->paths.v[i].status == EVS_PATH_WAITING;
}

static int drop_steps(evs_replay *r)
{
    size_t j = 0, k = 0;
    int rc;

    for (size_t i = 0; i < r->steps.n; i++) {
        evs_step_state *s = &r->steps.v[i];
        /* Only a running attempt is run again with its input. */
        if (s->status != EVS_STEP_RUNNING)
            s->input = nospan;
        if (s->status == EVS_STEP_FAILED || path_live(r, s->path_id))
            r->steps.v[j++] = *s;
    }
    for (size_t i = 0; i < r->eaches.n; i++)
        if (path_live(r, r->eaches.v[i].path_id))
            r->eaches.v[k++] = r->eaches.v[i];
    if (j == r->steps.n && k == r->eaches.n)
        return 0;
    /* The indexes are made again over what stays. */
    r->steps.n = j;
    r->eaches.n = k;
    for (size_t i = 0; i < r->groups.n; i++)
        evs__free(r->alloc, r->groups.v[i].pos);
    r->groups.n = 0;
    evs__rp_map_free(r, &r->group_ix);
    evs__rp_map_free(r, &r->step_ix);
    evs__rp_map_free(r, &r->each_ix);
    for (size_t i = 0; i < j; i++) {
        const evs_step_state *s = &r->steps.v[i];
        rc = dense(s->iteration)
                 ? add_iteration(r, s, i)
                 : evs__rp_insert(
                       r, &r->step_ix,
                       evs__rp_hash(s->path_id, s->name, s->iteration), i);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < k; i++) {
        const evs_each_state *e = &r->eaches.v[i];
        if ((rc = evs__rp_insert(r, &r->each_ix,
                                 evs__rp_hash(e->path_id, e->name, -2), i)))
            return rc;
    }
    return 0;
}

static int drop_waits(evs_replay *r)
{
    size_t j = 0;
    int rc;

    for (size_t i = 0; i < r->waits.n; i++)
        if (!r->waits.v[i].ended_seq)
            r->waits.v[j++] = r->waits.v[i];
    /* Every wait left is pending. */
    r->waits.n = j;
    r->pend.n = 0;
    for (size_t i = 0; i < j; i++)
        if ((rc = evs__rp_note_pending(r, i)) != 0)
            return rc;
    return 0;
}

static int drop_timers(evs_replay *r)
{
    size_t j = 0;
    int rc;

    for (size_t i = 0; i < r->timers.n; i++)
        if (!r->timers.v[i].fired_seq && !r->timers.v[i].cancelled)
            r->timers.v[j++] = r->timers.v[i];
    if (j == r->timers.n)
        return 0;
    r->timers.n = j;
    evs__rp_map_free(r, &r->timer_ix);
    for (size_t i = 0; i < j; i++)
        if ((rc = evs__rp_insert(
                 r, &r->timer_ix,
                 evs__rp_hash(r->timers.v[i].timer_id, nospan, 3), i)) != 0)
            return rc;
    return 0;
}

/* Consumed signals leave their ids, in the order they were consumed
 * (then received: only a tolerant replay consumes two at once). */
static int by_consumed(const void *a, const void *b)
{
    const evs_signal_state *x = a, *y = b;

    if (x->consumed_seq != y->consumed_seq)
        return x->consumed_seq < y->consumed_seq ? -1 : 1;
    return x->received_seq < y->received_seq   ? -1
           : x->received_seq > y->received_seq ? 1
                                               : 0;
}

static int drop_signals(evs_replay *r)
{
    evs_signal_state *tmp;
    size_t j = 0, n = 0;
    int rc = 0;

    for (size_t i = 0; i < r->signals.n; i++)
        n += r->signals.v[i].consumed_seq != 0;
    if (n == 0)
        return 0;
    if (!(tmp = evs__malloc(r->alloc, n * sizeof(*tmp))))
        return -ENOMEM;
    n = 0;
    for (size_t i = 0; i < r->signals.n; i++) {
        if (r->signals.v[i].consumed_seq)
            tmp[n++] = r->signals.v[i];
        else
            r->signals.v[j++] = r->signals.v[i];
    }
    r->signals.n = j;
    qsort(tmp, n, sizeof(*tmp), by_consumed);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = evs__rp_add_gone(r, tmp[i].id);
    evs__free(r->alloc, tmp);
    return rc;
}

int evs__rp_drop(evs_replay *r, int what)
{
    int rc = 0;

    if ((what & EVS__DROP_STEPS) && (rc = drop_steps(r)) != 0)
        return rc;
    if ((what & EVS__DROP_WAITS) && (rc = drop_waits(r)) != 0)
        return rc;
    if ((what & EVS__DROP_TIMERS) && (rc = drop_timers(r)) != 0)
        return rc;
    if (what & EVS__DROP_SIGNALS)
        rc = drop_signals(r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                          */
/* ------------------------------------------------------------------ */

const evs_exec_state *evs_replay_exec(const evs_replay *r)
{
    return &r->exec;
}

#define ACCESSORS(name, vec, type)                                             \
    size_t evs_replay_##name##_count(const evs_replay *r)                      \
    {                                                                          \
        return r->vec.n;                                                       \
    }                                                                          \
    const type *evs_replay_##name(const evs_replay *r, size_t i)               \
    {                                                                          \
        return i < r->vec.n ? &r->vec.v[i] : NULL;                             \
    }

ACCESSORS(path, paths, evs_path_state)
ACCESSORS(step, steps, evs_step_state)
ACCESSORS(stepname, names, evs_stepname_state)
ACCESSORS(each, eaches, evs_each_state)
ACCESSORS(var, vars, evs_var_state)
ACCESSORS(signal, signals, evs_signal_state)
ACCESSORS(version, versions, evs_version_state)
ACCESSORS(timer, timers, evs_timer_state)
ACCESSORS(wait, waits, evs_wait_state)

const evs_path_state *evs_replay_find_path(const evs_replay *r, evs_span id)
{
    long i = evs__rp_path_pos(r, id);
    return i < 0 ? NULL : &r->paths.v[i];
}

const evs_step_state *evs_replay_find_step(const evs_replay *r, evs_span path,
                                           evs_span name, int64_t iteration)
{
    long i = evs__rp_step_pos(r, path, name, iteration);
    return i < 0 ? NULL : &r->steps.v[i];
}

const evs_each_state *evs_replay_find_each(const evs_replay *r, evs_span path,
                                           evs_span name)
{
    long i = evs__rp_each_pos(r, path, name);
    return i < 0 ? NULL : &r->eaches.v[i];
}

const evs_stepname_state *evs_replay_find_stepname(const evs_replay *r,
                                                   evs_span name)
{
    long i = evs__rp_stepname_pos(r, name);
    return i < 0 ? NULL : &r->names.v[i];
}

int evs_replay_signal_received(const evs_replay *r, evs_span id, uint64_t *seq)
{
    if (seq)
        *seq = 0;
    if (!id.len)
        return 0;
    for (size_t i = 0; i < r->signals.n; i++)
        if (evs__span_eq(r->signals.v[i].id, id)) {
            if (seq)
                *seq = r->signals.v[i].received_seq;
            return 1;
        }
    return gone_pos(r, id) >= 0;
}

const evs_var_state *evs_replay_find_var(const evs_replay *r, evs_span name)
{
    long i = evs__rp_var_pos(r, name);
    return i < 0 ? NULL : &r->vars.v[i];
}

const evs_version_state *evs_replay_find_version(const evs_replay *r,
                                                 evs_span change_id)
{
    long i = evs__rp_version_pos(r, change_id);
    return i < 0 ? NULL : &r->versions.v[i];
}

void evs__rp_hold(evs_replay *r, evs_path_state *p, int delta)
{
    if (delta < 0 && p->pending == 0)
        return; /* tolerant mode past a broken rule: never wrap */
    p->pending = (uint32_t)((int64_t)p->pending + delta);
    if (p->status == EVS_PATH_ACTIVE || p->status == EVS_PATH_WAITING)
        evs__rp_set_path_status(
            r, p, p->pending ? EVS_PATH_WAITING : EVS_PATH_ACTIVE);
}
