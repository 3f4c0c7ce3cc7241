/*
 * workflow.c: parsing and checking workflow definitions
 * (formats/WORKFLOWS.md): the definition's arena, the parser's helpers,
 * the document and its inputs (each step is parsed by workflow_step.c),
 * retry policies, and finding steps.
 *
 * The document is checked strictly (evs_json_check, then duplicate
 * members at any depth) and minified once into the definition's arena.
 * Every span a definition hands out (a step's raw object, its params, its
 * `each`) is a slice of that compact text, so a step hashes the same
 * however the file was formatted. Names are unescaped into the arena.
 *
 * json-c is not used here: it keeps the last of duplicate members,
 * rewrites numbers and allocates outside the allocator hook, while a walk
 * over text that evs_json_check() accepted does none of that.
 */
#include "workflow_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The arena                                                          */
/* ------------------------------------------------------------------ */

/*
 * A definition is a chain of blocks from the caller's allocator. The
 * first block holds the holder (the public evs_wf_def first, so the
 * pointer the caller gets is the holder's) and is sized for a typical
 * definition, so most definitions are one allocation.
 */
#define ALIGN ((size_t)16)
#define ROUND(n) (((n) + ALIGN - 1) & ~(ALIGN - 1))

typedef struct wf_block {
    struct wf_block *next;
    size_t used, cap;
} wf_block;

#define BLOCK_HDR ROUND(sizeof(wf_block))

typedef struct wf_holder {
    evs_wf_def def;
    evs_allocator alloc; /* a copy: the caller's may go away */
    wf_block *blocks;
} wf_holder;

static wf_holder *holder_new(const evs_allocator *a, size_t hint)
{
    size_t cap = ROUND(sizeof(wf_holder)) + ROUND(hint);
    wf_block *b;
    wf_holder *h;

    if (!a)
        a = evs_default_allocator();
    if (!(b = evs__malloc(a, BLOCK_HDR + cap)))
        return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = ROUND(sizeof(wf_holder));
    h = (wf_holder *)(void *)((char *)b + BLOCK_HDR);
    memset(h, 0, sizeof(*h));
    h->alloc = *a;
    h->blocks = b;
    return h;
}

void *evs__wf_alloc(struct wf_holder *h, size_t n)
{
    wf_block *b = h->blocks;
    void *p;

    n = n ? ROUND(n) : ALIGN;
    if (b->cap - b->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        wf_block *nb = evs__malloc(&h->alloc, BLOCK_HDR + cap);

        if (!nb)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        h->blocks = b = nb;
    }
    p = (char *)b + BLOCK_HDR + b->used;
    b->used += n;
    return p;
}

void evs_wf_free(evs_wf_def *d)
{
    wf_holder *h = (wf_holder *)d;
    evs_allocator a;
    wf_block *b, *next;

    if (!d)
        return;
    a = h->alloc;
    for (b = h->blocks; b; b = next) {
        next = b->next;
        evs__free(&a, b);
    }
}

/* ------------------------------------------------------------------ */
/* Parsing helpers                                                    */
/* ------------------------------------------------------------------ */

int evs__wf_fail(evs__wf_parser *p, const char *fmt, ...)
{
    va_list ap;

    evs__error_set_step(p->err, evs_span_cstr(p->step));
    va_start(ap, fmt);
    evs__error_vset(p->err, EVS_EPARSE, "definition", fmt, ap);
    va_end(ap);
    return EVS_EPARSE;
}

/* [A-Za-z0-9_-], and '.' if `dots`, 1 to 64 bytes. */
int evs__wf_name_ok(const char *s, int dots)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              (dots && c == '.')))
            return 0;
    }
    return 1;
}

/* Unescapes the JSON string v into the arena, NUL-terminated. */
int evs__wf_take_str(evs__wf_parser *p, evs_span v, const char *what,
                     const char **out)
{
    char *s;
    size_t n;

    if (v.ptr[0] != '"')
        return evs__wf_fail(p, "\"%s\" must be a string", what);
    if (!(s = evs__wf_alloc(p->h, v.len - 1)))
        return -ENOMEM;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, s);
    if (n == (size_t)-1 || memchr(s, '\0', n))
        return evs__wf_fail(p, "\"%s\" holds a NUL character", what);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* Unescapes the JSON string v into the scratch buffer. */
size_t evs__wf_scratch_str(evs__wf_parser *p, evs_span v)
{
    return evs__json_unescape(v.ptr + 1, v.len - 2, p->scratch);
}

int evs__wf_take_int(evs__wf_parser *p, evs_span v, const char *what,
                     int64_t min, int64_t max, int64_t *out)
{
    int64_t x;

    if (evs__json_int(v, &x) != 0 || x < min || x > max) {
        if (max == INT64_MAX)
            return evs__wf_fail(p, "\"%s\" must be an integer >= %lld", what,
                                (long long)min);
        return evs__wf_fail(p, "\"%s\" must be an integer from %lld to %lld",
                            what, (long long)min, (long long)max);
    }
    *out = x;
    return 0;
}

int evs__wf_is_bool(evs_span v)
{
    return evs__span_eq_cstr(v, "true") || evs__span_eq_cstr(v, "false");
}

int evs__wf_take_num(evs__wf_parser *p, evs_span v, const char *what,
                     double *out)
{
    if (v.ptr[0] != '-' && (v.ptr[0] < '0' || v.ptr[0] > '9'))
        return evs__wf_fail(p, "\"%s\" must be a number", what);
    memcpy(p->scratch, v.ptr, v.len);
    p->scratch[v.len] = '\0';
    *out = strtod(p->scratch, NULL);
    if (!isfinite(*out))
        return evs__wf_fail(p, "\"%s\" is out of range", what);
    return 0;
}

/*
 * Collects the members of the object `obj` named in names[0..n) into
 * vals (a member absent stays an empty span), refusing any other.
 */
int evs__wf_take_members(evs__wf_parser *p, evs_span obj, const char *what,
                         const char *const *names, size_t n, evs_span *vals)
{
    evs__jit it;
    evs_span k, v;
    size_t i;

    if (evs__json_iter_begin(&it, obj, '{') != 0)
        return evs__wf_fail(p, "%s must be an object", what);
    memset(vals, 0, n * sizeof(*vals));
    while (evs__json_obj_next(&it, &k, &v) == 1) {
        for (i = 0; i < n; i++)
            if (evs__wf_key_eq(k, names[i], strlen(names[i])))
                break;
        if (i == n)
            return evs__wf_fail(p, "unknown member \"%.*s\" in %s",
                                (int)(k.len > 64 ? 64 : k.len), k.ptr, what);
        vals[i] = v;
    }
    return 0;
}

/* Checks the references of a template; `what` names it in errors. */
int evs__wf_check_tmpl(evs__wf_parser *p, evs_span t, int allow_item,
                       const char *what)
{
    char msg[200];
    evs__wf_refck ck;

    memset(&ck, 0, sizeof(ck));
    ck.allow_item = allow_item;
    ck.steps = p->steps;
    ck.n_steps = p->n_steps;
    ck.strict_inputs = p->d->strict_inputs;
    ck.inputs = p->d->inputs;
    ck.n_inputs = p->d->n_inputs;
    ck.scratch = p->scratch;
    ck.msg = msg;
    ck.cap = sizeof(msg);
    if (evs__wf_tmpl_check(&ck, t) != 0)
        return evs__wf_fail(p, "%s: %s", what, msg);
    return 0;
}

evs_wf_step *evs__wf_step_named(evs__wf_parser *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_steps; i++)
        if (strcmp(p->steps[i].name, name) == 0)
            return &p->steps[i];
    return NULL;
}

/* Counts the elements of the array v. */
size_t evs__wf_arr_count(evs_span v)
{
    evs__jit it;
    evs_span x;
    size_t n = 0;

    if (evs__json_iter_begin(&it, v, '[') != 0)
        return 0;
    while (evs__json_arr_next(&it, &x) == 1)
        n++;
    return n;
}

/* The steps' names first, so that edges and references can be checked. */
static int name_steps(evs__wf_parser *p, evs_span steps)
{
    evs__jit it;
    evs_span el, k, v, name;
    size_t i, j;
    int rc;

    p->n_steps = evs__wf_arr_count(steps);
    if (steps.ptr[0] != '[' || p->n_steps == 0)
        return evs__wf_fail(p, "\"steps\" must be a non-empty list");
    p->steps = evs__wf_alloc(p->h, p->n_steps * sizeof(*p->steps));
    p->listy = evs__wf_alloc(p->h, p->n_steps);
    p->instant = evs__wf_alloc(p->h, p->n_steps);
    if (!p->steps || !p->listy || !p->instant)
        return -ENOMEM;
    memset(p->steps, 0, p->n_steps * sizeof(*p->steps));
    memset(p->listy, 0, p->n_steps);
    memset(p->instant, 0, p->n_steps);
    evs__json_iter_begin(&it, steps, '[');
    for (i = 0; evs__json_arr_next(&it, &el) == 1; i++) {
        evs__jit mi;
        evs_wf_step *s = &p->steps[i];

        s->index = i;
        s->raw = el;
        name.len = 0;
        if (evs__json_iter_begin(&mi, el, '{') != 0)
            return evs__wf_fail(p, "the step at index %zu is not an object", i);
        while (evs__json_obj_next(&mi, &k, &v) == 1)
            if (evs__wf_key_eq(k, "name", 4))
                name = v;
        if (!name.len)
            return evs__wf_fail(p, "the step at index %zu has no \"name\"", i);
        if ((rc = evs__wf_take_str(p, name, "name", &s->name)) != 0)
            return rc;
        p->step = s->name;
        if (!evs__wf_name_ok(s->name, 1))
            return evs__wf_fail(p,
                                "invalid step name (1 to 64 of A-Z a-z 0-9 _ . "
                                "-)");
        for (j = 0; j < i; j++)
            if (strcmp(p->steps[j].name, s->name) == 0)
                return evs__wf_fail(p, "duplicate step name");
        p->step = NULL;
    }
    return 0;
}

static const char *const input_types[] = {
    "string", "number", "integer", "boolean", "object", "array", "any",
};

static int parse_inputs(evs__wf_parser *p, evs_span v)
{
    static const char *const names[] = {"type", "required", "default"};
    evs_span k, x, m[3], key;
    evs_wf_input *in;
    evs__jit it;
    size_t n = 0, i, t;
    int rc;

    if (evs__json_iter_begin(&it, v, '{') != 0)
        return evs__wf_fail(p, "\"inputs\" must be an object");
    while (evs__json_obj_next(&it, &k, &x) == 1)
        n++;
    if (!(in = evs__wf_alloc(p->h, n * sizeof(*in))))
        return -ENOMEM;
    memset(in, 0, n * sizeof(*in));
    p->d->inputs = in;
    p->d->n_inputs = n;
    evs__json_iter_begin(&it, v, '{');
    for (i = 0; evs__json_obj_next(&it, &k, &x) == 1; i++) {
        key.ptr = k.ptr - 1;
        key.len = k.len + 2;
        if ((rc = evs__wf_take_str(p, key, "input name", &in[i].name)) != 0)
            return rc;
        if (!evs__wf_name_ok(in[i].name, 0))
            return evs__wf_fail(p,
                                "input name \"%.64s\" is invalid (1 to 64 of "
                                "A-Z a-z 0-9 _ -)",
                                in[i].name);
        if ((rc = evs__wf_take_members(p, x, "an input", names, 3, m)) != 0)
            return rc;
        in[i].type = "any";
        if (m[0].len &&
            (rc = evs__wf_take_str(p, m[0], "type", &in[i].type)) != 0)
            return rc;
        for (t = 0; t < 7 && strcmp(in[i].type, input_types[t]) != 0; t++)
            ;
        if (t == 7)
            return evs__wf_fail(p, "input \"%s\" has an unknown type \"%.32s\"",
                                in[i].name, in[i].type);
        if (m[1].len) {
            if (!evs__wf_is_bool(m[1]))
                return evs__wf_fail(p,
                                    "input \"%s\": \"required\" must be a "
                                    "boolean",
                                    in[i].name);
            in[i].required = m[1].ptr[0] == 't';
        }
        if (m[2].len) {
            if (in[i].required)
                return evs__wf_fail(
                    p, "input \"%s\" is required and has a default",
                    in[i].name);
            if (!evs__wf_type_ok(in[i].type, m[2]))
                return evs__wf_fail(
                    p,
                    "the default of input \"%s\" is not of type "
                    "%s",
                    in[i].name, in[i].type);
            in[i].default_value = m[2];
        }
    }
    return 0;
}

/* The checks of evs__wf_graph_check, refusals named after their step. */
static int check_graph(evs__wf_parser *p)
{
    char msg[256];
    evs__wf_graph g;
    int rc;

    memset(&g, 0, sizeof(g));
    g.steps = p->steps;
    g.n_steps = p->n_steps;
    g.instant = p->instant;
    g.alloc = &p->h->alloc;
    g.msg = msg;
    g.cap = sizeof(msg);
    if ((rc = evs__wf_graph_check(&g)) == EVS_EPARSE) {
        p->step = p->steps[g.at].name;
        return evs__wf_fail(p, "%s", msg);
    }
    return rc;
}

/* `continue_as_new`: {"profile": "service", "events": N, "bytes": N,
 * "age_ms": N}; a member given wins over the profile. */
static int parse_continue(evs__wf_parser *p, evs_span v, evs_wf_continue *c)
{
    static const char *const names[] = {"profile", "events", "bytes", "age_ms"};
    evs_span m[4];
    const char *profile;
    int rc;

    if (v.ptr[0] != '{')
        return evs__wf_fail(p, "\"continue_as_new\" must be an object");
    if ((rc = evs__wf_take_members(p, v, "continue_as_new", names, 4, m)) != 0)
        return rc;
    if (m[0].len) {
        if ((rc = evs__wf_take_str(p, m[0], "continue_as_new.profile",
                                   &profile)) != 0)
            return rc;
        if (strcmp(profile, "service") != 0)
            return evs__wf_fail(p,
                                "continue_as_new.profile \"%.64s\" is not "
                                "known (\"service\")",
                                profile);
        c->events = 1000;
        c->age_ms = (int64_t)24 * 60 * 60 * 1000;
    }
    if (m[1].len && (rc = evs__wf_take_int(p, m[1], "continue_as_new.events", 0,
                                           INT64_MAX, &c->events)) != 0)
        return rc;
    if (m[2].len && (rc = evs__wf_take_int(p, m[2], "continue_as_new.bytes", 0,
                                           INT64_MAX, &c->bytes)) != 0)
        return rc;
    if (m[3].len && (rc = evs__wf_take_int(p, m[3], "continue_as_new.age_ms", 0,
                                           INT64_MAX, &c->age_ms)) != 0)
        return rc;
    return 0;
}

int evs__wf_limits_parse(evs_span v, const char *what, evs_wf_limits *out,
                         char *msg, size_t cap)
{
    static const char *const names[] = {"warn_events", "warn_bytes",
                                        "max_events", "max_bytes"};
    int64_t *slot[4] = {&out->warn_events, &out->warn_bytes,
                        &out->max_events, &out->max_bytes};
    evs_span key, val;
    evs__jit it;
    size_t k;
    int rc;

    out->warn_events = out->warn_bytes = -1;
    out->max_events = out->max_bytes = -1;
    if (evs__json_iter_begin(&it, v, '{') != 0) {
        snprintf(msg, cap, "\"%s\" must be an object", what);
        return EVS_EPARSE;
    }
    while ((rc = evs__json_obj_next(&it, &key, &val)) == 1) {
        for (k = 0; k < 4 && !evs__span_eq_cstr(key, names[k]); k++)
            ;
        if (k == 4) {
            snprintf(msg, cap, "unknown member \"%.*s\" in \"%s\"",
                     (int)(key.len > 64 ? 64 : key.len), key.ptr, what);
            return EVS_EPARSE;
        }
        if (evs__json_int(val, slot[k]) != 0 || *slot[k] < 1) {
            snprintf(msg, cap, "\"%s.%s\" must be an integer >= 1", what,
                     names[k]);
            return EVS_EPARSE;
        }
    }
    if (rc < 0) {
        snprintf(msg, cap, "\"%s\" must be an object", what);
        return EVS_EPARSE;
    }
    for (k = 0; k < 2; k++)
        if (*slot[k] > 0 && *slot[k + 2] > 0 && *slot[k] > *slot[k + 2]) {
            snprintf(msg, cap, "\"%s.%s\" exceeds \"%s.%s\"", what,
                     names[k], what, names[k + 2]);
            return EVS_EPARSE;
        }
    return 0;
}

static int parse_doc(evs__wf_parser *p)
{
    static const char *const names[] = {
        "name",          "version",         "inputs",        "outputs",
        "steps",         "strict_inputs",   "continue_as_new",
        "history_limits"};
    evs_wf_def *d = p->d;
    evs_span m[8];
    char msg[256];
    size_t i;
    int rc;

    d->cont.events = d->cont.bytes = d->cont.age_ms = -1;
    d->limits.warn_events = d->limits.warn_bytes = -1;
    d->limits.max_events = d->limits.max_bytes = -1;
    if (d->json.ptr[0] != '{')
        return evs__wf_fail(p, "a definition is a JSON object");
    if ((rc = evs__wf_take_members(p, d->json, "the definition", names, 8,
                                   m)) != 0)
        return rc;
    if (m[6].len && (rc = parse_continue(p, m[6], &d->cont)) != 0)
        return rc;
    if (m[7].len && evs__wf_limits_parse(m[7], "history_limits", &d->limits,
                                         msg, sizeof(msg)) != 0)
        return evs__wf_fail(p, "%s", msg);
    if (!m[0].len)
        return evs__wf_fail(p, "missing member \"name\"");
    if ((rc = evs__wf_take_str(p, m[0], "name", &d->name)) != 0)
        return rc;
    if (!d->name[0])
        return evs__wf_fail(p, "\"name\" is empty");
    d->version = 1;
    if (m[1].len && (rc = evs__wf_take_int(p, m[1], "version", 1, INT64_MAX,
                                           &d->version)) != 0)
        return rc;
    if (m[5].len) {
        if (!evs__wf_is_bool(m[5]))
            return evs__wf_fail(p, "\"strict_inputs\" must be a boolean");
        d->strict_inputs = m[5].ptr[0] == 't';
    }
    /* The inputs before the templates that strict_inputs checks. */
    if (m[2].len && (rc = parse_inputs(p, m[2])) != 0)
        return rc;
    if (!m[4].len)
        return evs__wf_fail(p, "missing member \"steps\"");
    if ((rc = name_steps(p, m[4])) != 0)
        return rc;
    d->steps = p->steps;
    d->n_steps = p->n_steps;
    for (i = 0; i < p->n_steps; i++)
        if ((rc = evs__wf_parse_step(p, &p->steps[i])) != 0)
            return rc;
    p->step = NULL;
    if (m[3].len) {
        d->outputs = m[3];
        if ((rc = evs__wf_check_tmpl(p, m[3], 0, "outputs")) != 0)
            return rc;
    }
    if ((rc = check_graph(p)) != 0)
        return rc;
    return evs__wf_check_joins(p);
}

/* After a duplicate member was found in the document: names the step
 * that holds it, if a step does. */
static void blame_step(evs__wf_parser *p, char *msg, size_t cap)
{
    evs_span steps, el, k, v;
    evs__jit it, mi;
    size_t n;

    if (evs__json_get(p->d->json, "steps", &steps) != 1 ||
        evs__json_iter_begin(&it, steps, '[') != 0)
        return;
    while (evs__json_arr_next(&it, &el) == 1) {
        if (evs__wf_dup_check(el, &p->h->alloc, msg, cap) != EVS_EPARSE ||
            evs__json_iter_begin(&mi, el, '{') != 0)
            continue;
        while (evs__json_obj_next(&mi, &k, &v) == 1) {
            if (evs__wf_key_eq(k, "name", 4) && v.ptr[0] == '"') {
                n = evs__wf_scratch_str(p, v);
                if (n != (size_t)-1 && n < p->scratch_len) {
                    p->scratch[n] = '\0';
                    p->step = p->scratch;
                }
                return;
            }
        }
        return;
    }
}

int evs_wf_parse(const char *json, size_t len, const evs_allocator *alloc,
                 evs_wf_has_action_fn has_action, void *arg, evs_wf_def **out,
                 evs_error_info *err)
{
    wf_holder *h = NULL;
    evs__wf_parser P;
    char msg[200], *doc;
    size_t off = 0, n;
    uint64_t hash;
    int rc;

    evs_error_info_clear(err);
    memset(&P, 0, sizeof(P));
    P.err = err;
    P.has_action = has_action;
    P.arg = arg;
    if (!json || evs_json_check(json, len, 0, NULL, NULL, &off) != 0)
        return evs__wf_fail(&P, "not valid JSON (at byte %zu)", off);
    /* Room for the compact text and what is parsed out of it. */
    if (!(h = holder_new(alloc, 2 * len + 2048))) {
        rc = -ENOMEM;
        goto out;
    }
    P.h = h;
    P.alloc = &h->alloc;
    P.d = &h->def;
    if (!(doc = evs__wf_alloc(h, len + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    evs_json_check(json, len, EVS_JSON_MINIFY, doc, &n, NULL);
    doc[n] = '\0';
    h->def.json.ptr = doc;
    h->def.json.len = n;
    if (!(P.scratch = evs__malloc(&h->alloc, n + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    P.scratch_len = n + 1;
    rc = evs__wf_dup_check(h->def.json, &h->alloc, msg, sizeof(msg));
    if (rc == EVS_EPARSE) {
        blame_step(&P, msg, sizeof(msg));
        rc = evs__wf_fail(&P, "%s", msg);
    }
    if (rc == 0)
        rc = parse_doc(&P);
    if (rc == 0)
        rc = evs_json_hash(doc, n, &h->alloc, &hash);
    if (rc == 0) {
        evs__hex64(hash, h->def.hash);
        h->def.hash[16] = '\0';
    }
out:
    if (rc == -ENOMEM) {
        evs_error_info_clear(err);
        evs__error_set(err, rc, "", "out of memory");
    }
    evs__error_rc(err, rc);
    if (h)
        evs__free(&h->alloc, P.scratch);
    if (rc != 0)
        evs_wf_free(h ? &h->def : NULL);
    else
        *out = &h->def;
    return rc;
}

const evs_wf_step *evs_wf_find_step(const evs_wf_def *d, evs_span name)
{
    size_t i;

    if (!d)
        return NULL;
    for (i = 0; i < d->n_steps; i++)
        if (evs__span_eq_cstr(name, d->steps[i].name))
            return &d->steps[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Retry policies                                                     */
/* ------------------------------------------------------------------ */

/* b^e by squaring: exact enough, and it spares linking libm. */
static double pow_u(double b, uint32_t e)
{
    double r = 1.0;

    while (e) {
        if (e & 1)
            r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

int64_t evs_wf_retry_delay_ms(const evs_wf_retry *r, uint32_t attempt,
                              double rnd)
{
    double d, cap, b;
    int64_t max;

    if (!r || r->initial_ms <= 0)
        return 0;
    max = r->max_interval_ms > 0            ? r->max_interval_ms
          : r->initial_ms > INT64_MAX / 100 ? INT64_MAX
                                            : r->initial_ms * 100;
    b = r->backoff >= 1.0 ? r->backoff : 1.0;
    cap = (double)max;
    d = (double)r->initial_ms * pow_u(b, attempt > 1 ? attempt - 1 : 0);
    if (!(d < cap))
        d = cap;
    if (r->jitter > 0.0) {
        if (!(rnd >= 0.0))
            rnd = 0.0;
        if (rnd >= 1.0)
            rnd = 1.0;
        d *= 1.0 - (r->jitter > 1.0 ? 1.0 : r->jitter) * rnd;
    }
    if (d >= 9.2e18)
        return max;
    return (int64_t)d;
}

int evs_wf_retry_allows(const evs_wf_retry *r, uint32_t attempt, evs_span type,
                        int retryable)
{
    size_t i;

    if (!r || !retryable)
        return 0;
    if (r->max_attempts != 0 && attempt >= r->max_attempts)
        return 0;
    for (i = 0; i < r->n_non_retryable; i++)
        if (evs__span_eq_cstr(type, r->non_retryable[i]))
            return 0;
    return 1;
}
