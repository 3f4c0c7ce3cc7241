/*
 * workflow_graph.c: the checks that look at a definition's steps as a
 * graph (formats/WORKFLOWS.md §2.9, §3): every step reachable from the
 * first, and no loop that could never wait or end.
 *
 * A step leads to the `to` of each of its edges, to its `then`, and, for
 * a continue_as_new step, to its `start_at` (the first step by default),
 * where its successor starts.
 */
#include "workflow_int.h"
#include "formats_shared.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NONE ((size_t)-1)

__attribute__((format(printf, 3, 4))) static int
refuse(evs__wf_graph *g, size_t at, const char *fmt, ...)
{
    va_list ap;

    g->at = at;
    va_start(ap, fmt);
    vsnprintf(g->msg, g->cap, fmt, ap);
    va_end(ap);
    return EVS_EPARSE;
}

/* Names in edges were checked by the parser: every one is a step's. */
static size_t index_of(const evs__wf_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_steps; i++)
        if (strcmp(g->steps[i].name, name) == 0)
            return i;
    return NONE;
}

/* Whether an edge is taken whenever its step completes: it has no
 * `when`, or the literal true. */
static int edge_sure(const evs_wf_edge *e)
{
    return !e->when || e->when->op == EVS__WF_TRUE;
}

/* Whether a step branches whenever it completes (§3): an edge always
 * taken creates a path, or two edges are always taken. Its `then` is
 * then always taken too. */
static int always_branches(const evs_wf_step *s)
{
    size_t sure = 0;

    for (size_t i = 0; i < s->n_next; i++) {
        if (!edge_sure(&s->next[i]))
            continue;
        if (s->next[i].path)
            return 1;
        sure++;
    }
    return sure >= 2;
}

/*
 * Where a path may go after step s, in slot k (0 .. s->n_next): edge k's
 * `to`; in the last slot its `then`, or a continue_as_new's `start_at`.
 * With `sure`, only a move made whenever s completes. NONE: no move in
 * that slot.
 */
static size_t succ_at(const evs__wf_graph *g, const evs_wf_step *s, size_t k,
                      int sure)
{
    if (k < s->n_next)
        return !sure || edge_sure(&s->next[k]) ? index_of(g, s->next[k].to)
                                               : NONE;
    if (s->kind == EVS_WF_CONTINUE)
        return s->start_at ? index_of(g, s->start_at) : 0;
    if (s->then && (!sure || always_branches(s)))
        return index_of(g, s->then);
    return NONE;
}

/* Every step must be reachable from the first. */
static int check_reachable(evs__wf_graph *g, size_t *work, char *seen)
{
    size_t n = 0, i, k, t;

    memset(seen, 0, g->n_steps);
    seen[0] = 1;
    work[n++] = 0;
    while (n > 0) {
        const evs_wf_step *s = &g->steps[work[--n]];

        for (k = 0; k <= s->n_next; k++) {
            t = succ_at(g, s, k, 0);
            if (t != NONE && !seen[t]) {
                seen[t] = 1;
                work[n++] = t;
            }
        }
    }
    for (i = 0; i < g->n_steps; i++)
        if (!seen[i])
            return refuse(g, i, "not reachable from the first step \"%s\"",
                          g->steps[0].name);
    return 0;
}

/* Refuses the loop stack[from..depth) back to its first step. */
static int refuse_loop(evs__wf_graph *g, const size_t *stack, size_t from,
                       size_t depth)
{
    char loop[200];
    size_t len = 0, j;

    for (j = from; j <= depth && len < sizeof(loop); j++) {
        const char *name = g->steps[stack[j < depth ? j : from]].name;
        int n = snprintf(loop + len, sizeof(loop) - len, "%s%s",
                         j > from ? " -> " : "", name);

        len += n > 0 ? (size_t)n : 0;
    }
    return refuse(g, stack[from],
                  "this loop can never wait or end: %s (its steps are "
                  "instant and its edges always taken; pace it with a "
                  "sleep or a wait_event, or put a condition on an edge)",
                  loop);
}

/*
 * No cycle of instant steps joined by moves that are always made
 * (§2.9): a path on it would go round at full speed for ever. A
 * depth-first search over those steps and moves alone, without
 * recursion (a definition may have many steps); `stack` holds the steps
 * on the way and `slot` the next move to try from each.
 */
static int check_loops(evs__wf_graph *g, size_t *stack, size_t *slot,
                       char *color)
{
    size_t i, depth, k, t, from;

    memset(color, 0, g->n_steps); /* 0: unseen, 1: on the way, 2: done */
    for (i = 0; i < g->n_steps; i++) {
        if (color[i] || !g->instant[i])
            continue;
        color[i] = 1;
        stack[0] = i;
        slot[0] = 0;
        depth = 1;
        while (depth > 0) {
            const evs_wf_step *s = &g->steps[stack[depth - 1]];

            if ((k = slot[depth - 1]++) > s->n_next) {
                color[stack[--depth]] = 2;
                continue;
            }
            t = succ_at(g, s, k, 1);
            if (t == NONE || !g->instant[t] || color[t] == 2)
                continue;
            if (color[t] == 1) {
                for (from = 0; stack[from] != t; from++)
                    ;
                return refuse_loop(g, stack, from, depth);
            }
            color[t] = 1;
            stack[depth] = t;
            slot[depth++] = 0;
        }
    }
    return 0;
}

int evs__wf_graph_check(evs__wf_graph *g)
{
    size_t *work = evs__malloc(g->alloc, 2 * g->n_steps * sizeof(*work));
    char *marks = evs__malloc(g->alloc, g->n_steps);
    int rc = -ENOMEM;

    if (work && marks && (rc = check_reachable(g, work, marks)) == 0)
        rc = check_loops(g, work, work + g->n_steps, marks);
    evs__free(g->alloc, work);
    evs__free(g->alloc, marks);
    return rc;
}

/*
 * Task or service (formats/WORKFLOWS.md §2.9, the seed's rule): a
 * definition is a task when every loop is bounded (has an edge with
 * max_passes), it has an end (a step where a path can complete), and
 * no wait_event step is on a loop; otherwise a service. A loop here is
 * a cycle of `next` and `then` moves.
 */

/* The step the move in slot k of s leads to (k = n_next: its `then`),
 * or NULL; *bounded set when the move carries max_passes. */
static const evs_wf_step *move_to(const evs_wf_def *d, const evs_wf_step *s,
                                  size_t k, int *bounded)
{
    const char *to = k < s->n_next ? s->next[k].to : s->then;

    *bounded = k < s->n_next && s->next[k].max_passes > 0;
    return to ? evs_wf_find_step(d, evs_span_cstr(to)) : NULL;
}

/* Whether a cycle passes through step i by moves without max_passes
 * (all of them when `all`). state: 0 unseen, 1 on the way, 2 done. */
static int cycle_from(const evs_wf_def *d, size_t i, char *state, int all)
{
    const evs_wf_step *s = &d->steps[i], *t;
    int bounded;

    if (state[i] == 1)
        return 1;
    if (state[i] == 2)
        return 0;
    state[i] = 1;
    for (size_t k = 0; k <= s->n_next; k++)
        if ((t = move_to(d, s, k, &bounded)) && (all || !bounded) &&
            cycle_from(d, t->index, state, all))
            return 1;
    state[i] = 2;
    return 0;
}

/* Whether step `to` can be reached from step i by one move or more. */
static int reaches(const evs_wf_def *d, size_t i, size_t to, char *seen)
{
    const evs_wf_step *s = &d->steps[i], *t;
    int bounded;

    for (size_t k = 0; k <= s->n_next; k++) {
        if (!(t = move_to(d, s, k, &bounded)))
            continue;
        if (t->index == to)
            return 1;
        if (seen[t->index])
            continue;
        seen[t->index] = 1;
        if (reaches(d, t->index, to, seen))
            return 1;
    }
    return 0;
}

/* Whether a path can complete at s: an `end` step, a step without
 * `next` (a continue_as_new goes on elsewhere), one none of whose edges
 * is sure to be taken, or one that always branches and has no `then`. */
static int can_end_at(const evs_wf_step *s)
{
    size_t sure = 0;

    if (s->kind == EVS_WF_END)
        return 1;
    if (s->kind == EVS_WF_CONTINUE)
        return 0;
    if (!s->n_next)
        return 1;
    for (size_t k = 0; k < s->n_next; k++)
        sure += edge_sure(&s->next[k]);
    return !sure || (always_branches(s) && !s->then);
}

int evs_wf_is_service(const evs_allocator *a, const evs_wf_def *d)
{
    size_t n = d->n_steps ? d->n_steps : 1;
    char *state = evs__calloc(a, n);
    int service = 0, ends = 0;

    if (!state)
        return -ENOMEM;
    /* An unbounded loop. */
    for (size_t i = 0; i < d->n_steps && !service; i++)
        service = cycle_from(d, i, state, 0);
    /* A wait for an event inside a loop, bounded or not. */
    for (size_t i = 0; i < d->n_steps && !service; i++) {
        if (d->steps[i].kind != EVS_WF_WAIT_EVENT)
            continue;
        memset(state, 0, n);
        service = reaches(d, i, i, state);
    }
    /* No end. */
    for (size_t i = 0; i < d->n_steps && !ends; i++)
        ends = can_end_at(&d->steps[i]);
    evs__free(a, state);
    return service || !ends;
}
