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
