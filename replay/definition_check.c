/*
 * definition_check.c: checking a history against a workflow definition.
 *
 * Each step_started event may record the step's kind and a hash of the
 * step as the definition had it (evs_replay_step_hash). A new definition
 * is compatible with a history when every step the history ran still
 * exists with the same kind and the same hash; the orchestrator uses
 * this before resuming an execution under a changed definition.
 */
#include "replay_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int evs_replay_step_hash(const char *step, size_t len,
                         char out[EVS_STEP_HASH_LEN + 1])
{
    uint64_t h;
    int rc = evs_json_hash(step, len, NULL, &h);

    if (rc != 0)
        return rc;
    evs__hex64(h, out);
    out[EVS_STEP_HASH_LEN] = '\0';
    return 0;
}

/* One step of the definition, by name. */
typedef struct defstep {
    evs_span name, kind;
    char hash[EVS_STEP_HASH_LEN + 1];
} defstep;

static int str_value(evs_span v, char *buf, size_t cap, evs_span *out)
{
    size_t n;

    if (v.len < 2 || v.ptr[0] != '"' || v.len - 2 > cap)
        return -1;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, buf);
    if (n == (size_t)-1)
        return -1;
    out->ptr = buf;
    out->len = n;
    return 0;
}

int evs_replay_check_definition(const evs_replay *r, const char *def,
                                size_t len, evs_step_diff_fn fn, void *arg,
                                size_t *count)
{
    evs_span doc = {def, len}, steps, el, v;
    defstep *ds = NULL;
    char *names = NULL;
    size_t n = 0, cap = 0, found = 0, used = 0;
    evs__jit it;
    int rc = 0;

    if (count)
        *count = 0;
    if (evs_json_check(def, len, 0, NULL, NULL, NULL) != 0 ||
        evs__json_get(doc, "steps", &steps) != 1 ||
        evs__json_iter_begin(&it, steps, '[') != 0)
        return EVS_EPARSE;
    /* Names and kinds are unescaped into one buffer as long as the
     * definition, so they never need more. */
    names = evs__malloc(r->alloc, len);
    if (!names)
        return -ENOMEM;
    while ((rc = evs__json_arr_next(&it, &el)) == 1) {
        defstep d;
        memset(&d, 0, sizeof(d));
        if (evs__json_get(el, "name", &v) != 1 ||
            str_value(v, names + used, len - used, &d.name) != 0) {
            rc = EVS_EPARSE;
            goto out;
        }
        used += d.name.len;
        if (evs__json_get(el, "kind", &v) == 1 &&
            str_value(v, names + used, len - used, &d.kind) == 0)
            used += d.kind.len;
        if ((rc = evs_replay_step_hash(el.ptr, el.len, d.hash)) != 0)
            goto out;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            defstep *nd = evs__realloc(r->alloc, ds, nc * sizeof(*nd));
            if (!nd) {
                rc = -ENOMEM;
                goto out;
            }
            ds = nd;
            cap = nc;
        }
        ds[n++] = d;
    }
    if (rc < 0) {
        rc = EVS_EPARSE;
        goto out;
    }
    rc = 0;
    /* Each step name the history ran, once, in the order first run,
     * with the kind and hash of its last start. */
    for (size_t i = 0; i < r->names.n && rc == 0; i++) {
        const evs_stepname_state *s = &r->names.v[i];
        const defstep *d = NULL;
        evs_step_diff diff;

        for (size_t j = 0; j < n && !d; j++)
            if (evs__span_eq(ds[j].name, s->name))
                d = &ds[j];
        memset(&diff, 0, sizeof(diff));
        diff.step = s->name;
        diff.first_seq = s->started_seq;
        diff.old_kind = s->kind;
        diff.old_hash = s->step_hash;
        if (!d) {
            diff.change = EVS_STEP_REMOVED;
        } else {
            diff.new_kind = d->kind;
            diff.new_hash.ptr = d->hash;
            diff.new_hash.len = EVS_STEP_HASH_LEN;
            if (s->kind.len && !evs__span_eq(s->kind, d->kind))
                diff.change = EVS_STEP_KIND_CHANGED;
            else if (s->step_hash.len &&
                     !evs__span_eq(s->step_hash, diff.new_hash))
                diff.change = EVS_STEP_CHANGED;
            else
                continue;
        }
        found++;
        if (fn)
            rc = fn(arg, &diff);
    }
out:
    if (count)
        *count = found;
    evs__free(r->alloc, ds);
    evs__free(r->alloc, names);
    return rc;
}
