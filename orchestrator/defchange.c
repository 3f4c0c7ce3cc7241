/*
 * defchange.c: may an execution go on under a changed definition?
 *
 * The replay layer finds the steps the history ran that the new
 * definition removed, gave another kind, or changed (by the hash each
 * step_started recorded). A difference is harmless when it is gated by a
 * version decision, the way Temporal's GetVersion guards changed code:
 * a changed step that is itself a `version` step, that leads straight to
 * one (the usual edit: an edge now goes through a new gate), or that can
 * only be reached through one. A removed step, or one of another kind,
 * is never gated: the history ran it as it was.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int leads_to_version(const evs_wf_def *d, const evs_wf_step *s)
{
    const evs_wf_step *t;

    for (size_t i = 0; i < s->n_next; i++)
        if ((t = evs_wf_find_step(d, evs_span_cstr(s->next[i].to))) &&
            t->kind == EVS_WF_VERSION)
            return 1;
    return s->then && (t = evs_wf_find_step(d, evs_span_cstr(s->then))) &&
           t->kind == EVS_WF_VERSION;
}

/* Marks the steps reachable from the first without entering a version
 * step. */
static void reach(const evs_wf_def *d, size_t i, char *seen)
{
    const evs_wf_step *s = &d->steps[i];

    if (seen[i] || s->kind == EVS_WF_VERSION)
        return;
    seen[i] = 1;
    for (size_t k = 0; k <= s->n_next; k++) {
        const char *to = k < s->n_next ? s->next[k].to : s->then;
        const evs_wf_step *t = to ? evs_wf_find_step(d, evs_span_cstr(to))
                                  : NULL;
        if (t)
            reach(d, t->index, seen);
    }
}

typedef struct check {
    const evs_wf_def *def;
    const char *open;       /* steps reachable around every version gate */
    evs_def_change_fn fn;
    void *arg;
    size_t breaking;
} check;

static int on_diff(void *arg, const evs_step_diff *d)
{
    check *c = arg;
    const evs_wf_step *s = evs_wf_find_step(c->def, d->step);
    int gated = 0;

    if (d->change == EVS_STEP_CHANGED && s)
        gated = s->kind == EVS_WF_VERSION || leads_to_version(c->def, s) ||
                !c->open[s->index];
    if (!gated)
        c->breaking++;
    return c->fn ? c->fn(c->arg, d, gated) : 0;
}

int evs_orch_check_definition(const evs_replay *rp, const evs_wf_def *def,
                              evs_def_change_fn fn, void *arg,
                              size_t *breaking)
{
    check c;
    char *open = calloc(def->n_steps ? def->n_steps : 1, 1);
    int rc;

    if (breaking)
        *breaking = 0;
    if (!open)
        return -ENOMEM;
    reach(def, 0, open);
    memset(&c, 0, sizeof(c));
    c.def = def;
    c.open = open;
    c.fn = fn;
    c.arg = arg;
    rc = evs_replay_check_definition(rp, def->json.ptr, def->json.len,
                                     on_diff, &c, NULL);
    free(open);
    if (breaking)
        *breaking = c.breaking;
    return rc;
}
