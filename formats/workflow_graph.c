/*
 * workflow_graph.c: the checks that look at a definition's steps as a
 * graph (formats/WORKFLOWS.md §3): every step reachable from the first.
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

__attribute__((format(printf, 3, 4))) static int refuse(evs__wf_graph *g,
                                                        size_t at,
                                                        const char *fmt, ...)
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

/*
 * Where a path may go after step s, in slot k (0 .. s->n_next): edge k's
 * `to`; in the last slot its `then`, or a continue_as_new's `start_at`.
 * NONE: no move in that slot.
 */
static size_t succ_at(const evs__wf_graph *g, const evs_wf_step *s,
                      size_t k)
{
    if (k < s->n_next)
        return index_of(g, s->next[k].to);
    if (s->kind == EVS_WF_CONTINUE)
        return s->start_at ? index_of(g, s->start_at) : 0;
    if (s->then)
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
            t = succ_at(g, s, k);
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

int evs__wf_graph_check(evs__wf_graph *g)
{
    size_t *work = evs__malloc(g->alloc, g->n_steps * sizeof(*work));
    char *marks = evs__malloc(g->alloc, g->n_steps);
    int rc = -ENOMEM;

    if (work && marks)
        rc = check_reachable(g, work, marks);
    evs__free(g->alloc, work);
    evs__free(g->alloc, marks);
    return rc;
}
