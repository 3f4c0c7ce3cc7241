/*
 * workflow_inputs.c: the inputs of an execution (see formats/WORKFLOWS.md):
 * refusing duplicate member names in a JSON text, the declared input
 * types, and checking the inputs given against a definition's, with its
 * defaults filled in.
 */
#include "workflow_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG(buf, cap, ...) snprintf((buf), (cap), __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Duplicate members                                                  */
/* ------------------------------------------------------------------ */

typedef struct dupck {
    char *kbuf; /* the unescaped names of one object */
    evs_span *keys;
    char *msg;
    size_t cap;
} dupck;

static int span_cmp(const void *a, const void *b)
{
    const evs_span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;

    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Names are collected and sorted one object at a time; nested objects
 * are walked after, so they reuse the same room. */
static int dup_walk(dupck *d, evs_span v)
{
    evs__jit it;
    evs_span k, x;
    size_t n = 0, used = 0, m, i;

    if (evs__json_iter_begin(&it, v, '[') == 0) {
        while (evs__json_arr_next(&it, &x) == 1)
            if (dup_walk(d, x) != 0)
                return EVS_EPARSE;
        return 0;
    }
    if (evs__json_iter_begin(&it, v, '{') != 0)
        return 0;
    while (evs__json_obj_next(&it, &k, &x) == 1) {
        m = evs__json_unescape(k.ptr, k.len, d->kbuf + used);
        if (m == (size_t)-1)
            return EVS_EPARSE;
        d->keys[n].ptr = d->kbuf + used;
        d->keys[n++].len = m;
        used += m;
    }
    if (n > 1)
        qsort(d->keys, n, sizeof(*d->keys), span_cmp);
    for (i = 1; i < n; i++) {
        if (span_cmp(&d->keys[i - 1], &d->keys[i]) == 0) {
            MSG(d->msg, d->cap, "duplicate member \"%.*s\"",
                (int)(d->keys[i].len > 64 ? 64 : d->keys[i].len),
                d->keys[i].ptr);
            return EVS_EPARSE;
        }
    }
    evs__json_iter_begin(&it, v, '{');
    while (evs__json_obj_next(&it, &k, &x) == 1)
        if (dup_walk(d, x) != 0)
            return EVS_EPARSE;
    return 0;
}

int evs__wf_dup_check(evs_span json, const evs_allocator *a, char *msg,
                      size_t cap)
{
    /* A member takes at least four bytes ("":0), so an object of this
     * text has at most len / 4 + 1 of them. */
    size_t nkeys = json.len / 4 + 1;
    dupck d;
    int rc;

    d.keys = evs__malloc(a, nkeys * sizeof(evs_span) + json.len + 1);
    if (!d.keys)
        return -ENOMEM;
    d.kbuf = (char *)(d.keys + nkeys);
    d.msg = msg;
    d.cap = cap;
    rc = dup_walk(&d, json);
    evs__free(a, d.keys);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Inputs                                                             */
/* ------------------------------------------------------------------ */

int evs__wf_type_ok(const char *type, evs_span v)
{
    char t = evs__wf_jtype(v);

    if (strcmp(type, "any") == 0)
        return 1;
    if (strcmp(type, "string") == 0)
        return t == 's';
    if (strcmp(type, "number") == 0)
        return t == 'n';
    if (strcmp(type, "integer") == 0)
        return t == 'n' && !memchr(v.ptr, '.', v.len) &&
               !memchr(v.ptr, 'e', v.len) && !memchr(v.ptr, 'E', v.len);
    if (strcmp(type, "boolean") == 0)
        return t == 'b';
    if (strcmp(type, "object") == 0)
        return t == 'o';
    if (strcmp(type, "array") == 0)
        return t == 'a';
    return 0;
}

int evs_wf_check_inputs(const evs_wf_def *d, evs_span inputs,
                        const evs_allocator *alloc, char **out, size_t *out_len,
                        evs_error_info *err)
{
    evs__jbuf o = {alloc, NULL, 0, 0, 0};
    evs_span in = inputs, k, v;
    evs__jit it;
    char msg[256] = "";
    size_t i;
    int rc, found, members;

    evs_error_info_clear(err);
    if (in.len == 0)
        in = (evs_span){"{}", 2};
    if (evs_json_check(in.ptr, in.len, 0, NULL, NULL, NULL) != 0 ||
        evs__json_iter_begin(&it, in, '{') != 0) {
        MSG(msg, sizeof(msg), "the inputs are not a JSON object");
        rc = EVS_EPARSE;
        goto out;
    }
    if ((rc = evs__wf_dup_check(in, alloc, msg, sizeof(msg))) != 0)
        goto out;
    /* The inputs as given, compact, reopened for the defaults. */
    if ((rc = evs__jb_minify(&o, in)) != 0)
        goto out;
    o.len--;
    members = o.len > 1;
    while (d->strict_inputs && evs__json_obj_next(&it, &k, &v) == 1) {
        for (i = 0, found = 0; i < d->n_inputs && !found; i++)
            found =
                evs__wf_key_eq(k, d->inputs[i].name, strlen(d->inputs[i].name));
        if (!found) {
            MSG(msg, sizeof(msg),
                "input \"%.*s\" is not declared (the "
                "definition has strict_inputs)",
                (int)(k.len > 64 ? 64 : k.len), k.ptr);
            rc = EVS_EPARSE;
            goto out;
        }
    }
    for (i = 0; i < d->n_inputs; i++) {
        const evs_wf_input *di = &d->inputs[i];

        evs__json_iter_begin(&it, in, '{');
        found = 0;
        while (!found && evs__json_obj_next(&it, &k, &v) == 1)
            found = evs__wf_key_eq(k, di->name, strlen(di->name));
        if (found && !evs__wf_type_ok(di->type, v)) {
            MSG(msg, sizeof(msg), "input \"%s\" must be of type %s", di->name,
                di->type);
            rc = EVS_EPARSE;
            goto out;
        }
        if (found)
            continue;
        if (di->required) {
            MSG(msg, sizeof(msg), "input \"%s\" is required", di->name);
            rc = EVS_EPARSE;
            goto out;
        }
        if (!di->default_value.len)
            continue;
        if (members)
            EVS__JB_LIT(&o, ",");
        evs__jb_quote(&o, evs_span_cstr(di->name));
        EVS__JB_LIT(&o, ":");
        if ((rc = evs__jb_minify(&o, di->default_value)) != 0)
            goto out;
        members = 1;
    }
    EVS__JB_LIT(&o, "}");
    rc = evs__jb_finish(&o, out, out_len);
out:
    if (rc == -ENOMEM)
        MSG(msg, sizeof(msg), "out of memory");
    if (rc != 0)
        evs__error_set(err, rc, rc == -ENOMEM ? "" : "inputs", "%s", msg);
    evs__jb_free(&o);
    return rc;
}
