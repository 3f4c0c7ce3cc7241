/*
 * replay_gc.c: the memory of a compact replayer.
 *
 * The arena only grows: the names, inputs and outputs of every event are
 * copied into it, and what compact mode drops from the state stays behind
 * in it (a loaded state points into the snapshot's text, which stays
 * too). A replayer that runs a long execution would so hold its whole
 * history. Once the arena holds more than twice what the state held after
 * the last collection (and at least opts.gc_min), the state's strings and
 * values are copied into a fresh arena and the old one is freed: memory
 * follows the state, not the history, at an amortized cost of one copy of
 * each byte.
 *
 * Spans that shared bytes before (a step's path id is the path's own
 * copy; a variable, a path's last output and a step name's output are the
 * step's output) share them after: every span goes through a table from
 * its old bytes to their new copy. Nothing else changes, so the state's
 * JSON is the same bytes before and after.
 */
#include "replay_int.h"

#include <errno.h>
#include <stdint.h>

#define GC_MIN_DEFAULT ((size_t)1 << 20)

/* Old bytes (pointer and length) to their new copy. */
typedef struct moved {
    const char *old;
    size_t len;
    const char *now;
} moved;

DEFINE_VEC(moved_vec, moved);

typedef struct gc {
    evs_replay *r;
    moved_vec v;
    index_map ix;
    const moved *key;
    int err;
} gc;

static int moved_eq(const void *ctx, size_t pos)
{
    const gc *g = ctx;
    return g->v.v[pos].old == g->key->old && g->v.v[pos].len == g->key->len;
}

static uint64_t ptr_hash(const char *p, size_t len)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;

    h ^= (uint64_t)len * 0xff51afd7ed558ccdull;
    return h ? h : 1;
}

/* Points *s at a copy of its bytes in the new arena: the same copy for
 * the same old bytes. After an error nothing more is moved (the old
 * arena is kept, so what was not moved stays valid). */
static void mv(gc *g, evs_span *s)
{
    moved m = {s->ptr, s->len, NULL};
    uint64_t h;
    evs_span out;
    long i;

    if (g->err || s->len == 0)
        return;
    h = ptr_hash(s->ptr, s->len);
    g->key = &m;
    if ((i = evs__rp_find(&g->ix, h, moved_eq, g)) >= 0) {
        s->ptr = g->v.v[i].now;
        return;
    }
    if ((g->err = evs__rp_copy(g->r, *s, &out)) != 0)
        return;
    m.now = out.ptr;
    if (!evs__rp_grow(g->r, (void **)&g->v.v, &g->v.cap, g->v.n, sizeof(m)) ||
        evs__rp_insert(g->r, &g->ix, h, g->v.n) != 0) {
        g->err = -ENOMEM;
        return;
    }
    g->v.v[g->v.n++] = m;
    *s = out;
}

static void move_control(gc *g, evs_control_state *c)
{
    mv(g, &c->by);
    mv(g, &c->reason);
    mv(g, &c->step);
}

static void move_state(gc *g)
{
    evs_replay *r = g->r;
    evs_exec_state *x = &r->exec;
    size_t i;

    /* Paths and step names first: most other spans share their bytes. */
    for (i = 0; i < r->paths.n; i++)
        mv(g, &r->paths.v[i].id);
    for (i = 0; i < r->names.n; i++)
        mv(g, &r->names.v[i].name);
    mv(g, &x->execution_id);
    mv(g, &x->workflow_name);
    mv(g, &x->inputs);
    mv(g, &x->outputs);
    mv(g, &x->error);
    mv(g, &x->definition);
    mv(g, &x->definition_hash);
    mv(g, &x->inputs_hash);
    mv(g, &x->lineage);
    mv(g, &x->continued_as);
    mv(g, &x->failed_path);
    mv(g, &x->failed_step);
    mv(g, &x->runner);
    move_control(g, &x->paused);
    move_control(g, &x->resumed);
    move_control(g, &x->terminated);
    for (i = 0; i < r->paths.n; i++) {
        evs_path_state *p = &r->paths.v[i];
        mv(g, &p->parent);
        mv(g, &p->current_step);
        mv(g, &p->error);
        mv(g, &p->last_output);
    }
    for (i = 0; i < r->steps.n; i++) {
        evs_step_state *s = &r->steps.v[i];
        mv(g, &s->path_id);
        mv(g, &s->name);
        mv(g, &s->input);
        mv(g, &s->output);
        mv(g, &s->error);
        mv(g, &s->stored_variable);
        mv(g, &s->step_hash);
        mv(g, &s->kind);
        mv(g, &s->redispatched_by);
    }
    for (i = 0; i < r->names.n; i++) {
        evs_stepname_state *n = &r->names.v[i];
        mv(g, &n->kind);
        mv(g, &n->step_hash);
        mv(g, &n->output);
    }
    for (i = 0; i < r->eaches.n; i++) {
        mv(g, &r->eaches.v[i].path_id);
        mv(g, &r->eaches.v[i].name);
        mv(g, &r->eaches.v[i].output);
    }
    for (i = 0; i < r->groups.n; i++) {
        mv(g, &r->groups.v[i].path_id);
        mv(g, &r->groups.v[i].name);
    }
    for (i = 0; i < r->vars.n; i++) {
        mv(g, &r->vars.v[i].name);
        mv(g, &r->vars.v[i].value);
    }
    for (i = 0; i < r->signals.n; i++) {
        evs_signal_state *s = &r->signals.v[i];
        mv(g, &s->id);
        mv(g, &s->name);
        mv(g, &s->payload);
        mv(g, &s->consumed_by_path);
        mv(g, &s->consumed_by_step);
    }
    for (i = 0; i < r->versions.n; i++)
        mv(g, &r->versions.v[i].change_id);
    for (i = 0; i < r->timers.n; i++) {
        mv(g, &r->timers.v[i].timer_id);
        mv(g, &r->timers.v[i].path_id);
        mv(g, &r->timers.v[i].step);
    }
    for (i = 0; i < r->waits.n; i++) {
        mv(g, &r->waits.v[i].path_id);
        mv(g, &r->waits.v[i].step);
        mv(g, &r->waits.v[i].signal);
    }
    for (i = 0; i < r->gone.n; i++)
        mv(g, &r->gone.v[i]);
}

static void free_chunks(evs_replay *r, arena_chunk *c)
{
    arena_chunk *next;

    for (; c; c = next) {
        next = c->next;
        evs__free(r->alloc, c);
    }
}

int evs__rp_gc(evs_replay *r)
{
    arena_chunk *old = r->arena, *last;
    evs_snapshot *old_snap = r->snapshot;
    size_t old_bytes = r->arena_bytes;
    size_t min = r->opts.gc_min ? r->opts.gc_min : GC_MIN_DEFAULT;
    gc g;

    memset(&g, 0, sizeof(g));
    g.r = r;
    r->arena = NULL;
    r->arena_bytes = 0;
    move_state(&g);
    evs__free(r->alloc, g.v.v);
    evs__rp_map_free(r, &g.ix);
    if (g.err) {
        /* Some spans moved, the others did not: keep both arenas (and
         * the snapshot), so that every span stays valid. */
        for (last = r->arena; last && last->next; last = last->next)
            ;
        if (last)
            last->next = old;
        else
            r->arena = old;
        r->arena_bytes += old_bytes;
        r->gc_next = r->arena_bytes * 2 > min ? r->arena_bytes * 2 : min;
        return g.err;
    }
    free_chunks(r, old);
    evs_snapshot_free(old_snap);
    r->snapshot = NULL;
    r->gc_next = r->arena_bytes * 2 > min ? r->arena_bytes * 2 : min;
    return 0;
}

void evs__rp_gc_maybe(evs_replay *r)
{
    size_t min = r->opts.gc_min ? r->opts.gc_min : GC_MIN_DEFAULT;
    size_t held = r->arena_bytes + (r->snapshot ? r->snapshot->state.len : 0);

    /* Only a cache of memory: a collection that fails leaves the state as
     * it was, to be tried again once the arena has grown further. */
    if (r->opts.compact && held > (r->gc_next > min ? r->gc_next : min))
        (void)evs__rp_gc(r);
}
