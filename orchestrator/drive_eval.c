/*
 * drive_eval.c: the step machine's view of the replayed state, for the
 * templates of a definition (`${vars.X}`, `${steps.NAME.output}`,
 * GetVersion): the evaluation context, and the templates a step renders
 * before it starts (a sleep's duration or time, an each's list).
 */
#include "drive_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The output of the last step completed on `path` (empty if none): the
 * replayer keeps it with the path, past the path's end. */
evs_span evs__drive_last_output(const evs_replay *rp, evs_span path)
{
    const evs_path_state *p = evs_replay_find_path(rp, path);

    return p ? p->last_output : (evs_span){0};
}

static int var_fn(void *arg, evs_span name, evs_span *value)
{
    rctx *r = arg;
    const evs_var_state *v = evs_replay_find_var(r->x->rp, name);

    if (!v)
        return -ENOENT;
    *value = v->value.len ? v->value : evs_span_cstr("null");
    return 0;
}

/* `${steps.NAME.output}`: this path's, else the last one completed
 * anywhere (a branch reads what its parent computed before the branch).
 * An `each` step's output is the array its completion recorded, never a
 * part of it: one still running on this path reads as not run here. */
static int step_output_fn(void *arg, evs_span name, evs_span *value)
{
    rctx *r = arg;
    const evs_replay *rp = r->x->rp;
    const evs_wf_step *S = evs_wf_find_step(r->x->def, name);
    const evs_stepname_state *n;
    int here;

    if (S && S->each.len) {
        const evs_each_state *e = evs_replay_find_each(rp, r->path, name);
        if ((here = e && e->ended_seq))
            *value = e->output;
    } else {
        const evs_step_state *s = evs_replay_find_step(rp, r->path, name, -1);
        if ((here = s && step_done(s)))
            *value = s->output;
    }
    if (!here) {
        n = evs_replay_find_stepname(rp, name);
        if (!n || !n->output_seq)
            return -ENOENT;
        *value = n->output;
    }
    if (!value->len)
        *value = evs_span_cstr("null");
    return 0;
}

static int version_fn(void *arg, evs_span change, int64_t *version)
{
    rctx *r = arg;
    const evs_version_state *v = evs_replay_find_version(r->x->rp, change);

    if (!v)
        return -ENOENT;
    *version = v->version;
    return 0;
}

void evs__drive_rctx_init(rctx *r, orch_exec *x, evs_span path)
{
    memset(r, 0, sizeof(*r));
    r->x = x;
    r->path = path;
    r->c.inputs = evs_replay_exec(x->rp)->inputs;
    r->c.index = -1;
    r->c.var = var_fn;
    r->c.step_output = step_output_fn;
    r->c.version = version_fn;
    r->c.arg = r;
}

/* ---------------------------------------------------------------- */
/* Outcomes                                                         */
/* ---------------------------------------------------------------- */

int64_t evs__drive_sleep_due(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             char *why, size_t cap)
{
    rctx r;
    char *v = NULL;
    size_t n = 0;
    int64_t due = 0, ms;
    evs_error_info e;
    int rc;

    evs__drive_rctx_init(&r, x, pid);
    rc = evs_wf_render(&r.c, S->duration.len ? S->duration : S->until,
                       x->o->alloc, &v, &n, &e);
    if (rc != 0) {
        snprintf(why, cap, "%s", e.msg[0] ? e.msg : evs_strerror(rc));
        return -1;
    }
    if (S->duration.len) {
        if (evs__json_int((evs_span){v, n}, &ms) != 0 || ms < 0) {
            snprintf(why, cap, "duration is not a count of milliseconds");
            due = -2;
        } else {
            due = evs_now_us() + ms * 1000;
        }
    } else if (n < 2 || v[0] != '"' ||
               evs_time_parse(v + 1, n - 2, &due) != 0) {
        snprintf(why, cap, "until is not an RFC 3339 time");
        due = -2;
    }
    evs__free(x->o->alloc, v);
    return due;
}

/* Renders an `each` step's list. Returns its items' count, or with `why`
 * set -1 (a reference to nothing) or -2 (not an array). *list is the
 * array (owned). */
int64_t evs__drive_each_list(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             char **list, size_t *len, char *why, size_t cap)
{
    rctx r;
    evs_error_info e;
    evs__jit it;
    evs_span v;
    int64_t n = 0;
    int rc;

    evs__drive_rctx_init(&r, x, pid);
    rc = evs_wf_render(&r.c, S->each, x->o->alloc, list, len, &e);
    if (rc != 0) {
        snprintf(why, cap, "each: %.200s", e.msg);
        return -1;
    }
    if (evs__json_iter_begin(&it, (evs_span){*list, *len}, '[') != 0) {
        snprintf(why, cap, "each: not an array");
        return -2;
    }
    while ((rc = evs__json_arr_next(&it, &v)) == 1)
        n++;
    return rc == 0 ? n : -1;
}

evs_span evs__drive_each_item(const char *list, size_t len, int64_t i)
{
    evs__jit it;
    evs_span v = {0};

    if (evs__json_iter_begin(&it, (evs_span){list, len}, '[') != 0)
        return v;
    while (evs__json_arr_next(&it, &v) == 1)
        if (i-- == 0)
            return v;
    return (evs_span){0};
}
