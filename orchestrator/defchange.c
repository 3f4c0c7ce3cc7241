/*
 * defchange.c: may an execution go on under a changed definition?
 *
 * One check, made by evs_orch_resume_with and by any host that asks
 * first (evrun check), so the two cannot disagree. The rules are
 * formats/WORKFLOWS.md §2.7.1. The replay layer finds the steps the
 * history ran that the new definition removed, gave another kind, or
 * changed (by the hash each step_started recorded). A change is harmless
 * when it is gated by a version decision, the way Temporal's GetVersion
 * guards changed code: a changed step that is itself a `version` step,
 * that leads straight to one (the usual edit: an edge now goes through a
 * new gate), or that can only be reached through one. A removed step, or
 * one of another kind, is never gated: the history ran it as it was.
 * And a decision the history recorded must lie in the range of every
 * version step of the definition that decides its change.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdio.h>
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
        const evs_wf_step *t =
            to ? evs_wf_find_step(d, evs_span_cstr(to)) : NULL;
        if (t)
            reach(d, t->index, seen);
    }
}

int evs_def_finding_describe(const evs_def_finding *f, char *buf, size_t cap)
{
    const evs_version_conflict *v = f->version;
    const evs_step_diff *d = f->diff;

    if (f->kind == EVS_DEF_VERSION)
        return snprintf(buf, cap,
                        "change \"%s\": recorded version %lld is outside "
                        "[%lld, %lld], the range of version step \"%s\"",
                        v->change_id, (long long)v->version, (long long)v->min,
                        (long long)v->max, v->step);
    if (d->change == EVS_STEP_REMOVED)
        return snprintf(buf, cap, "step \"%.*s\" removed", (int)d->step.len,
                        d->step.ptr);
    if (d->change == EVS_STEP_KIND_CHANGED)
        return snprintf(buf, cap, "step \"%.*s\" changed kind (%.*s to %.*s)",
                        (int)d->step.len, d->step.ptr, (int)d->old_kind.len,
                        d->old_kind.ptr, (int)d->new_kind.len, d->new_kind.ptr);
    return snprintf(buf, cap, "step \"%.*s\" changed, gated by %s",
                    (int)d->step.len, d->step.ptr,
                    f->code ? "no version step" : "a version step");
}

typedef struct check {
    const evs_replay *rp;
    const evs_wf_def *def;
    const char *open; /* steps reachable around every version gate */
    evs_def_finding_fn fn;
    void *arg;
    size_t refusals;
    int first; /* the first refusal's code, 0 if none */
    evs_error_info *info;
} check;

/* Counts a finding, keeps the first refusal in info, and passes it on. */
static int found(check *c, const evs_def_finding *f, uint64_t seq)
{
    if (f->code && c->refusals++ == 0) {
        evs_span id = evs_replay_exec(c->rp)->execution_id;

        c->first = f->code;
        if (c->info) {
            c->info->code = f->code;
            c->info->kind = f->kind == EVS_DEF_VERSION ? "version" : "step";
            c->info->sequence = seq;
            evs__error_set_id(c->info, id.ptr, id.len);
            evs__error_set_step(c->info, f->kind == EVS_DEF_VERSION
                                             ? evs_span_cstr(f->version->step)
                                             : f->diff->step);
            evs_def_finding_describe(f, c->info->msg, sizeof(c->info->msg));
        }
    }
    return c->fn ? c->fn(c->arg, f) : 0;
}

static int on_diff(void *arg, const evs_step_diff *d)
{
    check *c = arg;
    const evs_wf_step *s = evs_wf_find_step(c->def, d->step);
    evs_def_finding f;
    int gated = 0;

    if (d->change == EVS_STEP_CHANGED && s)
        gated = s->kind == EVS_WF_VERSION || leads_to_version(c->def, s) ||
                !c->open[s->index];
    memset(&f, 0, sizeof(f));
    f.kind = EVS_DEF_STEP;
    f.code = gated ? 0 : EVS_ENONDET;
    f.diff = d;
    return found(c, &f, d->first_seq);
}

static int check_versions(check *c)
{
    for (size_t i = 0; i < c->def->n_steps; i++) {
        const evs_wf_step *S = &c->def->steps[i];
        const evs_version_state *v;
        evs_version_conflict vc;
        evs_def_finding f;
        int rc;

        if (S->kind != EVS_WF_VERSION)
            continue;
        v = evs_replay_find_version(c->rp, evs_span_cstr(S->change_id));
        if (!v ||
            (v->version >= S->version_min && v->version <= S->version_max))
            continue;
        vc.step = S->name;
        vc.change_id = S->change_id;
        vc.version = v->version;
        vc.min = S->version_min;
        vc.max = S->version_max;
        vc.seq = v->seq;
        memset(&f, 0, sizeof(f));
        f.kind = EVS_DEF_VERSION;
        f.code = EVS_EVERSION;
        f.version = &vc;
        if ((rc = found(c, &f, v->seq)) != 0)
            return rc;
    }
    return 0;
}

/* The check, of the steps too when `steps` is set: without, only the
 * decisions against the version steps (a definition the history ran
 * under all along, whose steps it cannot contradict). */
static int check_def(const evs_allocator *a, const evs_replay *rp,
                     const evs_wf_def *def, int steps, evs_def_finding_fn fn,
                     void *arg, size_t *refusals, evs_error_info *info)
{
    check c;
    char *open = NULL;
    int rc = 0;

    if (refusals)
        *refusals = 0;
    evs_error_info_clear(info);
    memset(&c, 0, sizeof(c));
    c.rp = rp;
    c.def = def;
    c.fn = fn;
    c.arg = arg;
    c.info = info;
    if (steps) {
        if (!(open = evs__calloc(a, def->n_steps ? def->n_steps : 1)))
            return -ENOMEM;
        reach(def, 0, open);
        c.open = open;
        rc = evs_replay_check_definition(rp, def->json.ptr, def->json.len,
                                         on_diff, &c, NULL);
    }
    if (rc == 0)
        rc = check_versions(&c);
    evs__free(a, open);
    if (refusals)
        *refusals = c.refusals;
    if (rc == -ENOMEM)
        evs__error_rc(info, rc);
    return rc ? rc : c.first;
}

int evs_orch_check_definition(const evs_replay *rp, const evs_wf_def *def,
                              evs_def_finding_fn fn, void *arg,
                              size_t *refusals, evs_error_info *info)
{
    return check_def(NULL, rp, def, 1, fn, arg, refusals, info);
}

int evs__orch_check_definition(const evs_allocator *a, const evs_replay *rp,
                               const evs_wf_def *def, evs_def_finding_fn fn,
                               void *arg, evs_error_info *info)
{
    return check_def(a, rp, def, 1, fn, arg, NULL, info);
}

int evs__orch_check_versions(const evs_replay *rp, const evs_wf_def *def,
                             evs_error_info *info)
{
    return check_def(NULL, rp, def, 0, NULL, NULL, NULL, info);
}

/* ---------------------------------------------------------------- */
/* The check of every unfinished execution (evrun check, the API)   */
/* ---------------------------------------------------------------- */

int evs_orch_check_store(evs_store *s, const evs_wf_def *def,
                         evs_def_finding_fn on_finding,
                         evs_def_exec_fn on_exec, void *arg)
{
    const evs_allocator *a;
    evs_exec_listing l;
    size_t nlen;
    int rc;

    if (!s || !def || !on_exec)
        return -EINVAL;
    a = evs_store_allocator(s);
    nlen = strlen(def->name);
    if ((rc = evs_exec_list(s, NULL, &l)) != 0)
        return rc;
    for (size_t i = 0; i < l.count && rc == 0; i++) {
        const evs_exec_info *e = &l.items[i];
        evs_replay_opts ro;
        evs_replay *rp = NULL;
        const evs_exec_state *x;
        char id[EVS_ID_MAX + 1];
        int vrc;

        if (e->id.len > EVS_ID_MAX)
            continue;
        memcpy(id, e->id.ptr, e->id.len);
        id[e->id.len] = '\0';
        /* Compact: what a runner replays, from the snapshot it keeps. */
        evs_replay_opts_init(&ro);
        ro.alloc = a;
        ro.compact = 1;
        if ((vrc = evs_replay_new(&ro, &rp)) != 0 ||
            (vrc = evs_replay_open(rp, s, e->id.ptr, e->id.len, 0, NULL,
                                   NULL)) != 0) {
            evs_replay_free(rp);
            rc = on_exec(arg, id, 0, vrc);
            continue;
        }
        x = evs_replay_exec(rp);
        if (x->status < EVS_STATUS_COMPLETED && x->workflow_name.len == nlen &&
            memcmp(x->workflow_name.ptr, def->name, nlen) == 0) {
            vrc = evs_orch_check_definition(rp, def, on_finding, arg, NULL,
                                            NULL);
            rc = on_exec(arg, id, 1, vrc);
        }
        evs_replay_free(rp);
    }
    evs_exec_list_free(&l);
    return rc;
}
