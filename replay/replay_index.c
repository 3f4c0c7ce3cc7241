/*
 * replay_index.c: finding and adding the elements of the replayed state
 * (paths, steps, each records, variables, versions, timers) through their
 * hash indexes, and the public accessors.
 */
#include "replay_int.h"

#include <errno.h>

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

static int timer_eq(const void *ctx, size_t pos)
{
    const key3 *k = ctx;
    return evs__span_eq(k->r->timers.v[pos].timer_id, k->a);
}


long evs__rp_path_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->path_ix, evs__rp_hash(id, nospan, 0), path_eq,
                        &k);
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
    return evs__rp_find(&r->each_ix, evs__rp_hash(path, name, -2), each_eq,
                        &k);
}

long evs__rp_var_pos(const evs_replay *r, evs_span name)
{
    key3 k = {r, name, nospan, 0};
    return evs__rp_find(&r->var_ix, evs__rp_hash(name, nospan, 1), var_eq,
                        &k);
}

long evs__rp_version_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->version_ix, evs__rp_hash(id, nospan, 2),
                        version_eq, &k);
}

long evs__rp_timer_pos(const evs_replay *r, evs_span id)
{
    key3 k = {r, id, nospan, 0};
    return evs__rp_find(&r->timer_ix, evs__rp_hash(id, nospan, 3), timer_eq,
                        &k);
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

/* ------------------------------------------------------------------ */
/* Accessors                                                          */
/* ------------------------------------------------------------------ */

const evs_exec_state *evs_replay_exec(const evs_replay *r)
{
    return &r->exec;
}

#define ACCESSORS(name, vec, type)                                            \
    size_t evs_replay_##name##_count(const evs_replay *r)                     \
    {                                                                         \
        return r->vec.n;                                                      \
    }                                                                         \
    const type *evs_replay_##name(const evs_replay *r, size_t i)              \
    {                                                                         \
        return i < r->vec.n ? &r->vec.v[i] : NULL;                            \
    }

ACCESSORS(path, paths, evs_path_state)
ACCESSORS(step, steps, evs_step_state)
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

const evs_step_state *evs_replay_find_step(const evs_replay *r,
                                           evs_span path, evs_span name,
                                           int64_t iteration)
{
    long i = evs__rp_step_pos(r, path, name, iteration);
    return i < 0 ? NULL : &r->steps.v[i];
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
        evs__rp_set_path_status(r, p, p->pending ? EVS_PATH_WAITING
                                                 : EVS_PATH_ACTIVE);
}
