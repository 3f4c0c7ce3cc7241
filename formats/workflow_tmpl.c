/*
 * workflow_tmpl.c: templates of a definition (see formats/WORKFLOWS.md):
 * the `${...}` references in their strings, checked when a definition is
 * parsed and resolved at run time, and the rendering of a template into
 * the JSON a step is given.
 *
 * Values are copied as they were written (minified), so a number keeps
 * its exact text through a template, and the only memory used is a few
 * buffers from the caller's allocator.
 */
#include "workflow_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG(buf, cap, ...) snprintf((buf), (cap), __VA_ARGS__)

static evs_span trim(evs_span v)
{
    while (v.len && (*v.ptr == ' ' || *v.ptr == '\t' || *v.ptr == '\n' ||
                     *v.ptr == '\r')) {
        v.ptr++;
        v.len--;
    }
    while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t' ||
                     v.ptr[v.len - 1] == '\n' || v.ptr[v.len - 1] == '\r'))
        v.len--;
    return v;
}

/* ------------------------------------------------------------------ */
/* References                                                         */
/* ------------------------------------------------------------------ */

enum {
    REF_INPUTS,
    REF_VARS,
    REF_STEPS,
    REF_ITEM,
    REF_INDEX,
    REF_VERSIONS,
    REF_SCHEDULE
};

typedef struct ref {
    int root;
    evs_span name;         /* vars: the variable; steps: the step */
    const char *seg, *end; /* the path that follows: "a.b.0", or empty */
} ref;

/* The next segment of a dotted path at *p; moves past it and its dot. */
static evs_span seg_next(const char **p, const char *end)
{
    const char *q = memchr(*p, '.', (size_t)(end - *p));
    evs_span s;

    if (!q)
        q = end;
    s.ptr = *p;
    s.len = (size_t)(q - *p);
    *p = q < end ? q + 1 : end;
    return s;
}

/* Parses the body of "${...}". Returns 0, or -1 with *why set. */
static int ref_parse(const char *s, size_t n, ref *r, const char **why)
{
    const char *p = s, *end = s + n;
    evs_span root, out = {s, 0};
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '{' || s[i] == '$') {
            *why = "'{' or '$' inside a reference";
            return -1;
        }
        if (s[i] == '.' && (i == 0 || i + 1 == n || s[i + 1] == '.')) {
            *why = "an empty segment";
            return -1;
        }
    }
    if (n == 0) {
        *why = "an empty reference";
        return -1;
    }
    root = seg_next(&p, end);
    r->name.ptr = NULL;
    r->name.len = 0;
    if (evs__span_eq_cstr(root, "inputs")) {
        r->root = REF_INPUTS;
    } else if (evs__span_eq_cstr(root, "item")) {
        r->root = REF_ITEM;
    } else if (evs__span_eq_cstr(root, "index")) {
        r->root = REF_INDEX;
        if (p < end) {
            *why = "${index} takes no path";
            return -1;
        }
    } else if (evs__span_eq_cstr(root, "vars")) {
        r->root = REF_VARS;
        if (p >= end) {
            *why = "${vars.NAME} needs a variable name";
            return -1;
        }
        r->name = seg_next(&p, end);
    } else if (evs__span_eq_cstr(root, "versions")) {
        r->root = REF_VERSIONS;
        if (p >= end) {
            *why = "${versions.CHANGE} needs a change id";
            return -1;
        }
        r->name = seg_next(&p, end);
        if (p < end) {
            *why = "${versions.CHANGE} takes no path";
            return -1;
        }
    } else if (evs__span_eq_cstr(root, "schedule")) {
        r->root = REF_SCHEDULE;
    } else if (evs__span_eq_cstr(root, "steps")) {
        r->root = REF_STEPS;
        if (p < end)
            r->name = seg_next(&p, end);
        if (p < end)
            out = seg_next(&p, end);
        if (!r->name.len || !evs__span_eq_cstr(out, "output")) {
            *why = "a step reference reads ${steps.NAME.output...}";
            return -1;
        }
    } else {
        *why = "an unknown root (inputs, vars, steps, versions, item, "
               "index or schedule)";
        return -1;
    }
    r->seg = p;
    r->end = end;
    return 0;
}

/* One piece of a template string: literal text or a reference body. */
typedef struct piece {
    int is_ref;
    const char *p;
    size_t n;
} piece;

/* Returns 1 and the next piece, 0 at the end, -1 at an unterminated
 * "${". "$${" is a literal "${". */
static int piece_next(const char **pp, const char *end, piece *pc)
{
    const char *s = *pp, *q;

    if (s >= end)
        return 0;
    if (end - s >= 3 && s[0] == '$' && s[1] == '$' && s[2] == '{') {
        pc->is_ref = 0;
        pc->p = s + 1;
        pc->n = 2;
        *pp = s + 3;
        return 1;
    }
    if (end - s >= 2 && s[0] == '$' && s[1] == '{') {
        q = memchr(s + 2, '}', (size_t)(end - s - 2));
        if (!q)
            return -1;
        pc->is_ref = 1;
        pc->p = s + 2;
        pc->n = (size_t)(q - s - 2);
        *pp = q + 1;
        return 1;
    }
    for (q = s + 1; q < end; q++) {
        if (*q != '$')
            continue;
        if ((end - q >= 2 && q[1] == '{') ||
            (end - q >= 3 && q[1] == '$' && q[2] == '{'))
            break;
    }
    pc->is_ref = 0;
    pc->p = s;
    pc->n = (size_t)(q - s);
    *pp = q;
    return 1;
}

int evs__wf_is_one_ref(const char *s, size_t n)
{
    return n >= 3 && s[0] == '$' && s[1] == '{' &&
           memchr(s + 2, '}', n - 2) == s + n - 1;
}

int evs__wf_has_ref(const char *s, size_t n)
{
    const char *p = s;
    piece pc;
    int rc;

    while ((rc = piece_next(&p, s + n, &pc)) == 1)
        if (pc.is_ref)
            return 1;
    return rc < 0;
}

static int check_string(const evs__wf_refck *ck, evs_span raw)
{
    size_t n = evs__json_unescape(raw.ptr, raw.len, ck->scratch), i;
    const char *p = ck->scratch, *end, *why;
    piece pc;
    ref r;
    int rc, found;

    if (n == (size_t)-1) {
        MSG(ck->msg, ck->cap, "bad escape in a string");
        return -1;
    }
    end = p + n;
    while ((rc = piece_next(&p, end, &pc)) == 1) {
        if (!pc.is_ref)
            continue;
        if (ref_parse(pc.p, pc.n, &r, &why) != 0) {
            MSG(ck->msg, ck->cap, "malformed reference \"${%.*s}\": %s",
                (int)(pc.n > 64 ? 64 : pc.n), pc.p, why);
            return -1;
        }
        if ((r.root == REF_SCHEDULE) !=
                (ck->schedule == EVS__REF_SCHEDULE_ONLY) &&
            ck->schedule != EVS__REF_SCHEDULE_TOO) {
            MSG(ck->msg, ck->cap,
                r.root == REF_SCHEDULE
                    ? "\"${%.*s}\" is for a schedule's inputs only "
                      "(formats/SCHEDULES.md)"
                    : "\"${%.*s}\": a schedule's inputs may use only "
                      "${schedule...}",
                (int)(pc.n > 64 ? 64 : pc.n), pc.p);
            return -1;
        }
        if ((r.root == REF_ITEM || r.root == REF_INDEX) && !ck->allow_item) {
            MSG(ck->msg, ck->cap,
                "\"${%.*s}\" used outside the params of "
                "an `each` step",
                (int)(pc.n > 64 ? 64 : pc.n), pc.p);
            return -1;
        }
        if (r.root == REF_STEPS && ck->steps) {
            for (i = 0, found = 0; i < ck->n_steps && !found; i++)
                found = evs__span_eq_cstr(r.name, ck->steps[i].name);
            if (!found) {
                MSG(ck->msg, ck->cap,
                    "\"${%.*s}\" names no step of the "
                    "definition",
                    (int)(pc.n > 64 ? 64 : pc.n), pc.p);
                return -1;
            }
        }
        if (r.root == REF_INPUTS && ck->strict_inputs && r.seg < r.end) {
            evs_span in = seg_next(&r.seg, r.end);

            for (i = 0, found = 0; i < ck->n_inputs && !found; i++)
                found = evs__span_eq_cstr(in, ck->inputs[i].name);
            if (!found) {
                MSG(ck->msg, ck->cap,
                    "\"${%.*s}\" names no declared input "
                    "(the definition has strict_inputs)",
                    (int)(pc.n > 64 ? 64 : pc.n), pc.p);
                return -1;
            }
        }
    }
    if (rc < 0) {
        MSG(ck->msg, ck->cap, "unterminated \"${\" in \"%.*s\"",
            (int)(n > 64 ? 64 : n), ck->scratch);
        return -1;
    }
    return 0;
}

int evs__wf_tmpl_check(const evs__wf_refck *ck, evs_span v)
{
    evs__jit it;
    evs_span k, x;

    v = trim(v);
    if (v.len && v.ptr[0] == '"')
        return check_string(ck, evs__wf_str_body(v));
    if (evs__json_iter_begin(&it, v, '{') == 0) {
        while (evs__json_obj_next(&it, &k, &x) == 1)
            if (evs__wf_tmpl_check(ck, x) != 0)
                return -1;
        return 0;
    }
    if (evs__json_iter_begin(&it, v, '[') == 0) {
        while (evs__json_arr_next(&it, &x) == 1)
            if (evs__wf_tmpl_check(ck, x) != 0)
                return -1;
    }
    return 0;
}

/* Is seg a canonical array index? */
static int seg_index(evs_span seg, size_t *idx)
{
    size_t i, v = 0;

    if (!seg.len || seg.len > 18 || (seg.ptr[0] == '0' && seg.len > 1))
        return 0;
    for (i = 0; i < seg.len; i++) {
        if (seg.ptr[i] < '0' || seg.ptr[i] > '9')
            return 0;
        v = v * 10 + (size_t)(seg.ptr[i] - '0');
    }
    *idx = v;
    return 1;
}

/* Follows the path r->seg..r->end down from the valid value *v. */
static int navigate(evs_span *v, const ref *r)
{
    const char *p = r->seg;
    evs__jit it;
    evs_span seg, k, x;
    size_t idx, i;
    int rc;

    while (p < r->end) {
        seg = seg_next(&p, r->end);
        if (evs__json_iter_begin(&it, *v, '{') == 0) {
            while ((rc = evs__json_obj_next(&it, &k, &x)) == 1)
                if (evs__wf_key_eq(k, seg.ptr, seg.len))
                    break;
        } else if (evs__json_iter_begin(&it, *v, '[') == 0 &&
                   seg_index(seg, &idx)) {
            for (i = 0; (rc = evs__json_arr_next(&it, &x)) == 1; i++)
                if (i == idx)
                    break;
        } else {
            return -ENOENT;
        }
        if (rc != 1)
            return -ENOENT;
        *v = x;
    }
    return 0;
}

/* Resolves the reference body s[0..n) to a valid JSON value, trimmed.
 * `ibuf` holds the text of ${index}. Returns 0, -ENOENT, EVS_EPARSE (a
 * malformed reference or a resolver's value that is not JSON) or a
 * resolver's error. */
static int resolve(const evs_wf_ctx *c, const char *s, size_t n, char ibuf[24],
                   evs_span *out, evs_error_info *err)
{
    const char *why;
    evs_span v = {"{}", 2};
    ref r;
    int rc = 0;

    if (ref_parse(s, n, &r, &why) != 0) {
        if (err)
            MSG(err->msg, sizeof(err->msg),
                "malformed reference "
                "\"${%.*s}\": %s",
                (int)(n > 64 ? 64 : n), s, why);
        return EVS_EPARSE;
    }
    switch (r.root) {
    case REF_INPUTS:
        if (c->inputs.len)
            v = c->inputs;
        break;
    case REF_VARS: rc = c->var ? c->var(c->arg, r.name, &v) : -ENOENT; break;
    case REF_STEPS:
        rc = c->step_output ? c->step_output(c->arg, r.name, &v) : -ENOENT;
        break;
    case REF_ITEM:
        v = c->item;
        rc = v.len ? 0 : -ENOENT;
        break;
    case REF_SCHEDULE:
        v = c->schedule;
        rc = v.len ? 0 : -ENOENT;
        break;
    case REF_VERSIONS: {
        int64_t ver = -1; /* DEFAULT_VERSION: decided before the gate */
        if (c->version && (rc = c->version(c->arg, r.name, &ver)) == -ENOENT)
            rc = 0, ver = -1;
        v.ptr = ibuf;
        v.len = (size_t)snprintf(ibuf, 24, "%lld", (long long)ver);
        break;
    }
    default:
        if (c->index < 0) {
            rc = -ENOENT;
            break;
        }
        v.ptr = ibuf;
        v.len = (size_t)snprintf(ibuf, 24, "%lld", (long long)c->index);
        break;
    }
    if (rc == 0 && evs_json_check(v.ptr, v.len, 0, NULL, NULL, NULL) != 0) {
        if (err)
            MSG(err->msg, sizeof(err->msg),
                "the value behind \"${%.*s}\" "
                "is not valid JSON",
                (int)(n > 64 ? 64 : n), s);
        return EVS_EPARSE;
    }
    if (rc == 0) {
        v = trim(v);
        rc = navigate(&v, &r);
    }
    if (rc == -ENOENT && err)
        MSG(err->msg, sizeof(err->msg), "no value for \"${%.*s}\"",
            (int)(n > 96 ? 96 : n), s);
    if (rc == 0)
        *out = v;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                          */
/* ------------------------------------------------------------------ */

typedef struct render {
    const evs_wf_ctx *c;
    evs_error_info *err;
    char *scratch; /* an unescaped template string */
    evs__jbuf str; /* an interpolated string, before it is quoted */
} render;

static int render_string(render *R, evs__jbuf *o, evs_span raw)
{
    size_t n = evs__json_unescape(raw.ptr, raw.len, R->scratch);
    const char *p = R->scratch, *end;
    char ibuf[24];
    evs_span v;
    piece pc;
    int rc;

    if (n == (size_t)-1)
        return EVS_EPARSE;
    end = p + n;
    if (!memchr(p, '$', n)) {
        EVS__JB_LIT(o, "\"");
        evs__jb_raw(o, raw.ptr, raw.len);
        EVS__JB_LIT(o, "\"");
        return o->err;
    }
    if (evs__wf_is_one_ref(p, n)) {
        if ((rc = resolve(R->c, p + 2, n - 3, ibuf, &v, R->err)) != 0)
            return rc;
        return evs__jb_minify(o, v);
    }
    R->str.len = 0;
    while ((rc = piece_next(&p, end, &pc)) == 1) {
        if (!pc.is_ref) {
            evs__jb_raw(&R->str, pc.p, pc.n);
            rc = R->str.err;
        } else if ((rc = resolve(R->c, pc.p, pc.n, ibuf, &v, R->err)) == 0) {
            rc = v.ptr[0] == '"'
                     ? evs__jb_unescape(&R->str, evs__wf_str_body(v))
                     : evs__jb_minify(&R->str, v);
        }
        if (rc != 0)
            return rc;
    }
    if (rc < 0)
        return EVS_EPARSE;
    /* Unescaped strings and JSON text: valid UTF-8, so it quotes. */
    evs__jb_quote(o, (evs_span){R->str.p, R->str.len});
    return o->err;
}

/* Appends the rendering of the template value v. Returns 0, a
 * resolver's error, EVS_EPARSE, or -ENOMEM (which o->err then holds). */
static int render_value(render *R, evs__jbuf *o, evs_span v)
{
    evs__jit it;
    evs_span k, x;
    int rc = 0, first = 1;

    if (v.ptr[0] == '"')
        return render_string(R, o, evs__wf_str_body(v));
    if (evs__json_iter_begin(&it, v, '{') == 0) {
        EVS__JB_LIT(o, "{");
        while (rc == 0 && evs__json_obj_next(&it, &k, &x) == 1) {
            if (!first)
                EVS__JB_LIT(o, ",");
            EVS__JB_LIT(o, "\"");
            evs__jb_raw(o, k.ptr, k.len);
            EVS__JB_LIT(o, "\":");
            rc = render_value(R, o, x);
            first = 0;
        }
        EVS__JB_LIT(o, "}");
    } else if (evs__json_iter_begin(&it, v, '[') == 0) {
        EVS__JB_LIT(o, "[");
        while (rc == 0 && evs__json_arr_next(&it, &x) == 1) {
            if (!first)
                EVS__JB_LIT(o, ",");
            rc = render_value(R, o, x);
            first = 0;
        }
        EVS__JB_LIT(o, "]");
    } else {
        evs__jb_raw(o, v.ptr, v.len);
    }
    return rc ? rc : o->err;
}

int evs_wf_render(const evs_wf_ctx *c, evs_span tmpl,
                  const evs_allocator *alloc, char **out, size_t *out_len,
                  evs_error_info *err)
{
    evs__jbuf o = {alloc, NULL, 0, 0, 0};
    render R = {c, err, NULL, {alloc, NULL, 0, 0, 0}};
    evs__wf_refck ck;
    char *tmp = NULL, msg[256];
    size_t n;
    int rc;

    evs_error_info_clear(err);
    if (tmpl.len == 0) {
        tmpl.ptr = "null";
        tmpl.len = 4;
    }
    /* The compact template, then room to unescape any of its strings. */
    if (!(tmp = evs__malloc(alloc, tmpl.len * 2))) {
        rc = -ENOMEM;
        goto out;
    }
    if (evs_json_check(tmpl.ptr, tmpl.len, EVS_JSON_MINIFY, tmp, &n, NULL)) {
        if (err)
            MSG(err->msg, sizeof(err->msg), "the template is not valid JSON");
        rc = EVS_EPARSE;
        goto out;
    }
    memset(&ck, 0, sizeof(ck));
    ck.allow_item = 1;
    ck.schedule = EVS__REF_SCHEDULE_TOO;
    ck.scratch = tmp + tmpl.len;
    ck.msg = msg;
    ck.cap = sizeof(msg);
    if (evs__wf_tmpl_check(&ck, (evs_span){tmp, n}) != 0) {
        if (err)
            MSG(err->msg, sizeof(err->msg), "%s", msg);
        rc = EVS_EPARSE;
        goto out;
    }
    R.scratch = tmp + tmpl.len;
    if ((rc = render_value(&R, &o, (evs_span){tmp, n})) != 0 ||
        (rc = evs__jb_finish(&o, out, out_len)) != 0)
        goto out;
out:
    if (rc == -ENOMEM)
        evs__error_set(err, rc, "", "out of memory");
    else if (rc != 0 && err)
        err->kind = "template";
    evs__error_rc(err, rc);
    evs__jb_free(&o);
    evs__jb_free(&R.str);
    evs__free(alloc, tmp);
    return rc;
}
