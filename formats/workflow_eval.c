/*
 * workflow_eval.c: the conditions on a definition's edges (see
 * formats/WORKFLOWS.md): evaluating a condition, and the comparisons of
 * JSON values it needs: strings by their unescaped bytes, numbers by
 * value, arrays and objects structurally.
 *
 * Everything works on JSON text, never on a parsed tree; operands with
 * references are rendered first (workflow_tmpl.c).
 */
#include "workflow_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------ */
/* Comparing JSON values                                              */
/* ------------------------------------------------------------------ */

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
    char t = evs__wf_jtype(a);
    int rc, ra, rb, cmp;

    if (t != evs__wf_jtype(b))
        return 0;
    switch (t) {
    case 'n':
        if ((rc = num_cmp(a, b, al, &cmp)) != 0)
            return rc;
        return cmp == 0;
    case 's': return ustr_cmp(evs__wf_str_body(a), evs__wf_str_body(b)) == 0;
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
    default: return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
    }
}

/* Orders two numbers or two strings: 0 and *cmp set, 1 when they do not
 * compare, or -ENOMEM. */
static int json_order(evs_span a, evs_span b, const evs_allocator *al, int *cmp)
{
    char t = evs__wf_jtype(a);

    if (t != evs__wf_jtype(b) || (t != 'n' && t != 's'))
        return 1;
    if (t == 's') {
        *cmp = ustr_cmp(evs__wf_str_body(a), evs__wf_str_body(b));
        return 0;
    }
    return num_cmp(a, b, al, cmp);
}

/* `in`: a is an element of the array b, or a substring of the string b. */
static int json_in(evs_span a, evs_span b, const evs_allocator *al)
{
    evs__jbuf x = {al, NULL, 0, 0, 0}, y = {al, NULL, 0, 0, 0};
    evs__jit it;
    evs_span v;
    int rc;

    if (evs__wf_jtype(b) == 'a') {
        evs__json_iter_begin(&it, b, '[');
        while (evs__json_arr_next(&it, &v) == 1)
            if ((rc = json_eq(a, v, al)) != 0)
                return rc;
        return 0;
    }
    if (evs__wf_jtype(b) != 's' || evs__wf_jtype(a) != 's')
        return 0;
    if ((rc = evs__jb_unescape(&x, evs__wf_str_body(a))) == 0 &&
        (rc = evs__jb_unescape(&y, evs__wf_str_body(b))) == 0)
        rc = x.len == 0 ||
             (y.len >= x.len && memmem(y.p, y.len, x.p, x.len) != NULL);
    evs__jb_free(&x);
    evs__jb_free(&y);
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
    case EVS__WF_TRUE: return 1;
    case EVS__WF_FALSE: return 0;
    case EVS__WF_AND:
    case EVS__WF_OR:
        for (i = 0; i < k->n_kids; i++) {
            rc = eval(&k->kids[i], c);
            if (rc < 0 || rc == (k->op == EVS__WF_OR))
                return rc;
        }
        return k->op == EVS__WF_AND;
    case EVS__WF_NOT: rc = eval(&k->kids[0], c); return rc < 0 ? rc : !rc;
    case EVS__WF_EXISTS:
        rc = operand(k, c, k->a, &ba, &a);
        evs__free(k->alloc, ba);
        return rc == -ENOENT ? 0 : rc == 0 ? 1 : rc;
    default: break;
    }
    if ((rc = operand(k, c, k->a, &ba, &a)) != 0 ||
        (rc = operand(k, c, k->b, &bb, &b)) != 0) {
        if (rc == -ENOENT)
            rc = 0;
        goto out;
    }
    switch (k->op) {
    case EVS__WF_EQ: rc = json_eq(a, b, k->alloc); break;
    case EVS__WF_NE:
        rc = json_eq(a, b, k->alloc);
        rc = rc < 0 ? rc : !rc;
        break;
    case EVS__WF_IN: rc = json_in(a, b, k->alloc); break;
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

int evs_wf_cond_eval(const evs_wf_cond *cond, const evs_wf_ctx *c, int *result)
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
