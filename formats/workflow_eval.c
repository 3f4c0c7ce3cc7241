/*
 * workflow_eval.c: what a running step needs from its definition (see
 * formats/WORKFLOWS.md): `${...}` references in templates, checked when a
 * definition is parsed and resolved at run time; rendering of templates;
 * the conditions on edges; and the checking of an execution's inputs.
 *
 * Everything works on JSON text, never on a parsed tree. Values are
 * copied as they were written (minified), so a number keeps its exact
 * text through a template, and the only memory used is a few buffers
 * from the caller's allocator.
 */
#include "workflow_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG(buf, cap, ...) snprintf((buf), (cap), __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Strings as their unescaped bytes                                   */
/* ------------------------------------------------------------------ */

/* Reads the body of a JSON string (still escaped) one unescaped byte at
 * a time, so that names and strings compare without a copy, with the
 * decoder of evs__json_unescape(). */
typedef struct ustr {
    const char *p, *end;
    char pend[4];
    int np, ip;
} ustr;

static void ustr_init(ustr *u, evs_span raw)
{
    u->p = raw.ptr;
    u->end = raw.ptr + raw.len;
    u->np = u->ip = 0;
}

/* The next byte, or -1 at the end (or at a bad escape, which checked
 * text never has). */
static int ustr_next(ustr *u)
{
    int n;

    if (u->ip < u->np)
        return (unsigned char)u->pend[u->ip++];
    if (u->p >= u->end)
        return -1;
    if (*u->p != '\\')
        return (unsigned char)*u->p++;
    if ((n = evs__json_unescape_one(&u->p, u->end, u->pend)) < 0) {
        u->p = u->end;
        return -1;
    }
    u->np = n;
    u->ip = 1;
    return (unsigned char)u->pend[0];
}

/* Compares two raw string bodies by their unescaped bytes. */
static int ustr_cmp(evs_span a, evs_span b)
{
    ustr x, y;
    int c, d;

    ustr_init(&x, a);
    ustr_init(&y, b);
    do {
        c = ustr_next(&x);
        d = ustr_next(&y);
    } while (c == d && c >= 0);
    return c < d ? -1 : c > d;
}

int evs__wf_key_eq(evs_span raw, const char *s, size_t n)
{
    ustr u;
    size_t i;

    ustr_init(&u, raw);
    for (i = 0; i < n; i++)
        if (ustr_next(&u) != (unsigned char)s[i])
            return 0;
    return ustr_next(&u) < 0;
}

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

/* The body of a JSON string value (without its quotes). */
static evs_span str_body(evs_span v)
{
    evs_span b = {v.ptr + 1, v.len - 2};
    return b;
}

/* ------------------------------------------------------------------ */
/* Output buffers                                                     */
/* ------------------------------------------------------------------ */

typedef struct obuf {
    const evs_allocator *a;
    char *p;
    size_t len, cap;
} obuf;

/* Room for n more bytes at p + len, or NULL. */
static char *ob_reserve(obuf *o, size_t n)
{
    if (!o->p || o->cap - o->len < n) {
        size_t nc = o->cap ? o->cap : 64;
        char *np;

        while (nc - o->len < n)
            nc *= 2;
        np = evs__realloc(o->a, o->p, nc);
        if (!np)
            return NULL;
        o->p = np;
        o->cap = nc;
    }
    return o->p + o->len;
}

static int ob_put(obuf *o, const char *s, size_t n)
{
    char *w = ob_reserve(o, n);

    if (!w)
        return -ENOMEM;
    if (n)
        memcpy(w, s, n);
    o->len += n;
    return 0;
}

/* Appends the valid JSON value v, minified. */
static int ob_json(obuf *o, evs_span v)
{
    char *w = ob_reserve(o, v.len);
    size_t n;

    if (!w)
        return -ENOMEM;
    if (evs_json_check(v.ptr, v.len, EVS_JSON_MINIFY, w, &n, NULL) != 0)
        return EVS_EPARSE;
    o->len += n;
    return 0;
}

/* Appends the unescaped bytes of a raw string body. */
static int ob_unescape(obuf *o, evs_span raw)
{
    char *w = ob_reserve(o, raw.len);
    size_t n;

    if (!w)
        return -ENOMEM;
    n = evs__json_unescape(raw.ptr, raw.len, w);
    if (n == (size_t)-1)
        return EVS_EPARSE;
    o->len += n;
    return 0;
}

/* Appends s as a JSON string literal. */
static int ob_quote(obuf *o, evs_span s)
{
    size_t need = evs_json_quote(s, NULL, 0);
    char *w;

    if (need == (size_t)-1)
        return EVS_EPARSE;
    if (!(w = ob_reserve(o, need)))
        return -ENOMEM;
    o->len += evs_json_quote(s, w, need);
    return 0;
}

/* NUL-terminates the buffer and hands it over. */
static int ob_finish(obuf *o, char **out, size_t *out_len)
{
    if (ob_put(o, "", 1) != 0)
        return -ENOMEM;
    *out = o->p;
    if (out_len)
        *out_len = o->len - 1;
    o->p = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* References                                                         */
/* ------------------------------------------------------------------ */

enum { REF_INPUTS, REF_VARS, REF_STEPS, REF_ITEM, REF_INDEX, REF_VERSIONS };

typedef struct ref {
    int root;
    evs_span name;          /* vars: the variable; steps: the step */
    const char *seg, *end;  /* the path that follows: "a.b.0", or empty */
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
        *why = "an unknown root (inputs, vars, steps, versions, item or "
               "index)";
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
        if ((r.root == REF_ITEM || r.root == REF_INDEX) && !ck->allow_item) {
            MSG(ck->msg, ck->cap, "\"${%.*s}\" used outside the params of "
                "an `each` step", (int)(pc.n > 64 ? 64 : pc.n), pc.p);
            return -1;
        }
        if (r.root == REF_STEPS && ck->steps) {
            for (i = 0, found = 0; i < ck->n_steps && !found; i++)
                found = evs__span_eq_cstr(r.name, ck->steps[i].name);
            if (!found) {
                MSG(ck->msg, ck->cap, "\"${%.*s}\" names no step of the "
                    "definition", (int)(pc.n > 64 ? 64 : pc.n), pc.p);
                return -1;
            }
        }
        if (r.root == REF_INPUTS && ck->strict_inputs && r.seg < r.end) {
            evs_span in = seg_next(&r.seg, r.end);

            for (i = 0, found = 0; i < ck->n_inputs && !found; i++)
                found = evs__span_eq_cstr(in, ck->inputs[i].name);
            if (!found) {
                MSG(ck->msg, ck->cap, "\"${%.*s}\" names no declared input "
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
        return check_string(ck, str_body(v));
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
static int resolve(const evs_wf_ctx *c, const char *s, size_t n,
                   char ibuf[24], evs_span *out, evs_wf_error *err)
{
    const char *why;
    evs_span v = {"{}", 2};
    ref r;
    int rc = 0;

    if (ref_parse(s, n, &r, &why) != 0) {
        if (err)
            MSG(err->msg, sizeof(err->msg), "malformed reference "
                "\"${%.*s}\": %s", (int)(n > 64 ? 64 : n), s, why);
        return EVS_EPARSE;
    }
    switch (r.root) {
    case REF_INPUTS:
        if (c->inputs.len)
            v = c->inputs;
        break;
    case REF_VARS:
        rc = c->var ? c->var(c->arg, r.name, &v) : -ENOENT;
        break;
    case REF_STEPS:
        rc = c->step_output ? c->step_output(c->arg, r.name, &v) : -ENOENT;
        break;
    case REF_ITEM:
        v = c->item;
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
            MSG(err->msg, sizeof(err->msg), "the value behind \"${%.*s}\" "
                "is not valid JSON", (int)(n > 64 ? 64 : n), s);
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
    evs_wf_error *err;
    char *scratch;  /* an unescaped template string */
    obuf str;       /* an interpolated string, before it is quoted */
} render;

static int render_string(render *R, obuf *o, evs_span raw)
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
        if ((rc = ob_put(o, "\"", 1)) || (rc = ob_put(o, raw.ptr, raw.len)))
            return rc;
        return ob_put(o, "\"", 1);
    }
    if (evs__wf_is_one_ref(p, n)) {
        if ((rc = resolve(R->c, p + 2, n - 3, ibuf, &v, R->err)) != 0)
            return rc;
        return ob_json(o, v);
    }
    R->str.len = 0;
    while ((rc = piece_next(&p, end, &pc)) == 1) {
        if (!pc.is_ref) {
            rc = ob_put(&R->str, pc.p, pc.n);
        } else if ((rc = resolve(R->c, pc.p, pc.n, ibuf, &v, R->err)) == 0) {
            rc = v.ptr[0] == '"' ? ob_unescape(&R->str, str_body(v))
                                 : ob_json(&R->str, v);
        }
        if (rc != 0)
            return rc;
    }
    if (rc < 0)
        return EVS_EPARSE;
    return ob_quote(o, (evs_span){R->str.p, R->str.len});
}

static int render_value(render *R, obuf *o, evs_span v)
{
    evs__jit it;
    evs_span k, x;
    int rc = 0, first = 1;

    if (v.ptr[0] == '"')
        return render_string(R, o, str_body(v));
    if (evs__json_iter_begin(&it, v, '{') == 0) {
        if ((rc = ob_put(o, "{", 1)) != 0)
            return rc;
        while (evs__json_obj_next(&it, &k, &x) == 1) {
            if ((!first && (rc = ob_put(o, ",", 1))) ||
                (rc = ob_put(o, "\"", 1)) || (rc = ob_put(o, k.ptr, k.len)) ||
                (rc = ob_put(o, "\":", 2)) || (rc = render_value(R, o, x)))
                return rc;
            first = 0;
        }
        return ob_put(o, "}", 1);
    }
    if (evs__json_iter_begin(&it, v, '[') == 0) {
        if ((rc = ob_put(o, "[", 1)) != 0)
            return rc;
        while (evs__json_arr_next(&it, &x) == 1) {
            if ((!first && (rc = ob_put(o, ",", 1))) ||
                (rc = render_value(R, o, x)))
                return rc;
            first = 0;
        }
        return ob_put(o, "]", 1);
    }
    return ob_put(o, v.ptr, v.len);
}

int evs_wf_render(const evs_wf_ctx *c, evs_span tmpl,
                  const evs_allocator *alloc, char **out, size_t *out_len,
                  evs_wf_error *err)
{
    obuf o = {alloc, NULL, 0, 0};
    render R = {c, err, NULL, {alloc, NULL, 0, 0}};
    evs__wf_refck ck;
    char *tmp = NULL, msg[256];
    size_t n;
    int rc;

    if (err)
        memset(err, 0, sizeof(*err));
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
        (rc = ob_finish(&o, out, out_len)) != 0)
        goto out;
out:
    if (rc == -ENOMEM && err)
        MSG(err->msg, sizeof(err->msg), "out of memory");
    evs__free(alloc, o.p);
    evs__free(alloc, R.str.p);
    evs__free(alloc, tmp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Comparing JSON values                                              */
/* ------------------------------------------------------------------ */

/* 's'tring, 'o'bject, 'a'rray, 'b'oolean, 'z' null or 'n'umber. */
static char jtype(evs_span v)
{
    switch (v.ptr[0]) {
    case '"': return 's';
    case '{': return 'o';
    case '[': return 'a';
    case 't': case 'f': return 'b';
    case 'n': return 'z';
    default: return 'n';
    }
}

typedef struct num {
    int is_int;
    int64_t i;
    double d;
} num;

static int num_get(evs_span v, const evs_allocator *a, num *x)
{
    char sbuf[64], *buf = sbuf;

    x->is_int = !memchr(v.ptr, '.', v.len) && !memchr(v.ptr, 'e', v.len) &&
                !memchr(v.ptr, 'E', v.len) && evs__json_int(v, &x->i) == 0;
    if (v.len >= sizeof(sbuf) && !(buf = evs__malloc(a, v.len + 1)))
        return -ENOMEM;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    x->d = strtod(buf, NULL);
    if (buf != sbuf)
        evs__free(a, buf);
    return 0;
}

/* Orders two numbers: -1, 0 or 1 in *cmp. */
static int num_cmp(evs_span a, evs_span b, const evs_allocator *al, int *cmp)
{
    num x, y;
    int rc;

    if ((rc = num_get(a, al, &x)) != 0 || (rc = num_get(b, al, &y)) != 0)
        return rc;
    if (x.is_int && y.is_int)
        *cmp = x.i < y.i ? -1 : x.i > y.i;
    else
        *cmp = x.d < y.d ? -1 : x.d > y.d;
    return 0;
}

/* Structural equality of two valid, compact values: 1, 0 or -ENOMEM. */
static int json_eq(evs_span a, evs_span b, const evs_allocator *al)
{
    evs__jit ia, ib;
    evs_span ka, va, kb, vb;
    size_t na = 0, nb = 0;
    char t = jtype(a);
    int rc, ra, rb, cmp;

    if (t != jtype(b))
        return 0;
    switch (t) {
    case 'n':
        if ((rc = num_cmp(a, b, al, &cmp)) != 0)
            return rc;
        return cmp == 0;
    case 's':
        return ustr_cmp(str_body(a), str_body(b)) == 0;
    case 'a':
        evs__json_iter_begin(&ia, a, '[');
        evs__json_iter_begin(&ib, b, '[');
        for (;;) {
            ra = evs__json_arr_next(&ia, &va);
            rb = evs__json_arr_next(&ib, &vb);
            if (ra != 1 || rb != 1)
                return ra == rb;
            if ((rc = json_eq(va, vb, al)) != 1)
                return rc;
        }
    case 'o':
        evs__json_iter_begin(&ib, b, '{');
        while (evs__json_obj_next(&ib, &kb, &vb) == 1)
            nb++;
        evs__json_iter_begin(&ia, a, '{');
        while (evs__json_obj_next(&ia, &ka, &va) == 1) {
            na++;
            evs__json_iter_begin(&ib, b, '{');
            while ((rb = evs__json_obj_next(&ib, &kb, &vb)) == 1)
                if (ustr_cmp(ka, kb) == 0)
                    break;
            if (rb != 1)
                return 0;
            if ((rc = json_eq(va, vb, al)) != 1)
                return rc;
        }
        return na == nb;
    default:
        return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
    }
}

/* Orders two numbers or two strings: 0 and *cmp set, 1 when they do not
 * compare, or -ENOMEM. */
static int json_order(evs_span a, evs_span b, const evs_allocator *al,
                      int *cmp)
{
    char t = jtype(a);

    if (t != jtype(b) || (t != 'n' && t != 's'))
        return 1;
    if (t == 's') {
        *cmp = ustr_cmp(str_body(a), str_body(b));
        return 0;
    }
    return num_cmp(a, b, al, cmp);
}

/* `in`: a is an element of the array b, or a substring of the string b. */
static int json_in(evs_span a, evs_span b, const evs_allocator *al)
{
    obuf x = {al, NULL, 0, 0}, y = {al, NULL, 0, 0};
    evs__jit it;
    evs_span v;
    int rc;

    if (jtype(b) == 'a') {
        evs__json_iter_begin(&it, b, '[');
        while (evs__json_arr_next(&it, &v) == 1)
            if ((rc = json_eq(a, v, al)) != 0)
                return rc;
        return 0;
    }
    if (jtype(b) != 's' || jtype(a) != 's')
        return 0;
    if ((rc = ob_unescape(&x, str_body(a))) == 0 &&
        (rc = ob_unescape(&y, str_body(b))) == 0)
        rc = x.len == 0 || (y.len >= x.len &&
                            memmem(y.p, y.len, x.p, x.len) != NULL);
    evs__free(al, x.p);
    evs__free(al, y.p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Conditions                                                         */
/* ------------------------------------------------------------------ */

/* Renders an operand into *buf (or borrows a literal one). */
static int operand(const evs_wf_cond *k, const evs_wf_ctx *c, evs_span t,
                   char **buf, evs_span *v)
{
    size_t n;
    int rc;

    *buf = NULL;
    if (!memchr(t.ptr, '$', t.len) && !memchr(t.ptr, '\\', t.len)) {
        *v = t;
        return 0;
    }
    rc = evs_wf_render(c, t, k->alloc, buf, &n, NULL);
    if (rc == 0) {
        v->ptr = *buf;
        v->len = n;
    }
    return rc;
}

/* 1 true, 0 false, or an error. */
static int eval(const evs_wf_cond *k, const evs_wf_ctx *c)
{
    char *ba = NULL, *bb = NULL;
    evs_span a, b;
    size_t i;
    int rc, cmp;

    switch (k->op) {
    case EVS__WF_TRUE:
        return 1;
    case EVS__WF_FALSE:
        return 0;
    case EVS__WF_AND:
    case EVS__WF_OR:
        for (i = 0; i < k->n_kids; i++) {
            rc = eval(&k->kids[i], c);
            if (rc < 0 || rc == (k->op == EVS__WF_OR))
                return rc;
        }
        return k->op == EVS__WF_AND;
    case EVS__WF_NOT:
        rc = eval(&k->kids[0], c);
        return rc < 0 ? rc : !rc;
    case EVS__WF_EXISTS:
        rc = operand(k, c, k->a, &ba, &a);
        evs__free(k->alloc, ba);
        return rc == -ENOENT ? 0 : rc == 0 ? 1 : rc;
    default:
        break;
    }
    if ((rc = operand(k, c, k->a, &ba, &a)) != 0 ||
        (rc = operand(k, c, k->b, &bb, &b)) != 0) {
        if (rc == -ENOENT)
            rc = 0;
        goto out;
    }
    switch (k->op) {
    case EVS__WF_EQ:
        rc = json_eq(a, b, k->alloc);
        break;
    case EVS__WF_NE:
        rc = json_eq(a, b, k->alloc);
        rc = rc < 0 ? rc : !rc;
        break;
    case EVS__WF_IN:
        rc = json_in(a, b, k->alloc);
        break;
    default:
        rc = json_order(a, b, k->alloc, &cmp);
        if (rc == 1) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        rc = k->op == EVS__WF_LT   ? cmp < 0
             : k->op == EVS__WF_LE ? cmp <= 0
             : k->op == EVS__WF_GT ? cmp > 0
                                   : cmp >= 0;
        break;
    }
out:
    evs__free(k->alloc, ba);
    evs__free(k->alloc, bb);
    return rc;
}

int evs_wf_cond_eval(const evs_wf_cond *cond, const evs_wf_ctx *c,
                     int *result)
{
    int rc;

    if (!cond) {
        *result = 1;
        return 0;
    }
    rc = eval(cond, c);
    if (rc < 0)
        return rc;
    *result = rc;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Duplicate members                                                  */
/* ------------------------------------------------------------------ */

typedef struct dupck {
    char *kbuf;      /* the unescaped names of one object */
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
    char t = jtype(v);

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
                        const evs_allocator *alloc, char **out,
                        size_t *out_len, evs_wf_error *err)
{
    obuf o = {alloc, NULL, 0, 0};
    evs_span in = inputs, k, v;
    evs__jit it;
    char msg[256] = "";
    size_t i;
    int rc, found, members;

    if (err)
        memset(err, 0, sizeof(*err));
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
    if ((rc = ob_json(&o, in)) != 0)
        goto out;
    o.len--;
    members = o.len > 1;
    while (d->strict_inputs && evs__json_obj_next(&it, &k, &v) == 1) {
        for (i = 0, found = 0; i < d->n_inputs && !found; i++)
            found = evs__wf_key_eq(k, d->inputs[i].name,
                                   strlen(d->inputs[i].name));
        if (!found) {
            MSG(msg, sizeof(msg), "input \"%.*s\" is not declared (the "
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
            MSG(msg, sizeof(msg), "input \"%s\" must be of type %s",
                di->name, di->type);
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
        if ((members && (rc = ob_put(&o, ",", 1))) ||
            (rc = ob_quote(&o, evs_span_cstr(di->name))) ||
            (rc = ob_put(&o, ":", 1)) ||
            (rc = ob_json(&o, di->default_value)))
            goto out;
        members = 1;
    }
    if ((rc = ob_put(&o, "}", 1)) != 0 ||
        (rc = ob_finish(&o, out, out_len)) != 0)
        goto out;
out:
    if (rc == -ENOMEM)
        MSG(msg, sizeof(msg), "out of memory");
    if (rc != 0 && err)
        MSG(err->msg, sizeof(err->msg), "%s", msg);
    evs__free(alloc, o.p);
    return rc;
}
