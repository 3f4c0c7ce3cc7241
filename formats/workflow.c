/*
 * workflow.c: parsing and checking workflow definitions
 * (formats/WORKFLOWS.md), retry policies, and finding steps.
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

static void *arena_alloc(wf_holder *h, size_t n)
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

typedef struct parser {
    wf_holder *h;
    evs_wf_def *d;
    evs_wf_step *steps;
    size_t n_steps;
    char *listy;          /* per step: its `next` is a list of edges */
    char *instant;        /* per step: it never waits and never fails by
                             itself (WORKFLOWS.md §2.9) */
    evs_wf_error *err;
    const char *step;     /* the step being read, for errors; NULL: none */
    char *scratch;        /* room to unescape any string of the document */
    size_t scratch_len;
    evs_wf_has_action_fn has_action;
    void *arg;
} parser;

__attribute__((format(printf, 2, 3))) static int fail(parser *p,
                                                      const char *fmt, ...)
{
    va_list ap;

    if (!p->err)
        return EVS_EPARSE;
    snprintf(p->err->step, sizeof(p->err->step), "%s",
             p->step ? p->step : "");
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    return EVS_EPARSE;
}

/* [A-Za-z0-9_-], and '.' if `dots`, 1 to 64 bytes. */
static int name_ok(const char *s, int dots)
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
static int take_str(parser *p, evs_span v, const char *what,
                    const char **out)
{
    char *s;
    size_t n;

    if (v.ptr[0] != '"')
        return fail(p, "\"%s\" must be a string", what);
    if (!(s = arena_alloc(p->h, v.len - 1)))
        return -ENOMEM;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, s);
    if (n == (size_t)-1 || memchr(s, '\0', n))
        return fail(p, "\"%s\" holds a NUL character", what);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* Unescapes the JSON string v into the scratch buffer. */
static size_t scratch_str(parser *p, evs_span v)
{
    return evs__json_unescape(v.ptr + 1, v.len - 2, p->scratch);
}

static int take_int(parser *p, evs_span v, const char *what, int64_t min,
                    int64_t max, int64_t *out)
{
    int64_t x;

    if (evs__json_int(v, &x) != 0 || x < min || x > max) {
        if (max == INT64_MAX)
            return fail(p, "\"%s\" must be an integer >= %lld", what,
                        (long long)min);
        return fail(p, "\"%s\" must be an integer from %lld to %lld", what,
                    (long long)min, (long long)max);
    }
    *out = x;
    return 0;
}

static int is_bool(evs_span v)
{
    return evs__span_eq_cstr(v, "true") || evs__span_eq_cstr(v, "false");
}

static int take_num(parser *p, evs_span v, const char *what, double *out)
{
    if (v.ptr[0] != '-' && (v.ptr[0] < '0' || v.ptr[0] > '9'))
        return fail(p, "\"%s\" must be a number", what);
    memcpy(p->scratch, v.ptr, v.len);
    p->scratch[v.len] = '\0';
    *out = strtod(p->scratch, NULL);
    if (!isfinite(*out))
        return fail(p, "\"%s\" is out of range", what);
    return 0;
}

/*
 * Collects the members of the object `obj` named in names[0..n) into
 * vals (a member absent stays an empty span), refusing any other.
 */
static int take_members(parser *p, evs_span obj, const char *what,
                        const char *const *names, size_t n, evs_span *vals)
{
    evs__jit it;
    evs_span k, v;
    size_t i;

    if (evs__json_iter_begin(&it, obj, '{') != 0)
        return fail(p, "%s must be an object", what);
    memset(vals, 0, n * sizeof(*vals));
    while (evs__json_obj_next(&it, &k, &v) == 1) {
        for (i = 0; i < n; i++)
            if (evs__wf_key_eq(k, names[i], strlen(names[i])))
                break;
        if (i == n)
            return fail(p, "unknown member \"%.*s\" in %s",
                        (int)(k.len > 64 ? 64 : k.len), k.ptr, what);
        vals[i] = v;
    }
    return 0;
}

/* Checks the references of a template; `what` names it in errors. */
static int check_tmpl(parser *p, evs_span t, int allow_item,
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
        return fail(p, "%s: %s", what, msg);
    return 0;
}

static evs_wf_step *step_named(parser *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_steps; i++)
        if (strcmp(p->steps[i].name, name) == 0)
            return &p->steps[i];
    return NULL;
}

/* Counts the elements of the array v. */
static size_t arr_count(evs_span v)
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

/* ------------------------------------------------------------------ */
/* Conditions                                                         */
/* ------------------------------------------------------------------ */

static const char *const cond_ops[] = {
    [EVS__WF_EQ] = "eq", [EVS__WF_NE] = "ne", [EVS__WF_LT] = "lt",
    [EVS__WF_LE] = "le", [EVS__WF_GT] = "gt", [EVS__WF_GE] = "ge",
    [EVS__WF_IN] = "in", [EVS__WF_EXISTS] = "exists",
    [EVS__WF_AND] = "and", [EVS__WF_OR] = "or", [EVS__WF_NOT] = "not",
};

static int parse_cond(parser *p, evs_span v, evs_wf_cond *c)
{
    evs__jit it;
    evs_span k, x, ops[2];
    evs_wf_cond *kids;
    size_t n = 0, i;
    int op = -1, rc;

    memset(c, 0, sizeof(*c));
    c->alloc = &p->h->alloc;
    if (evs__span_eq_cstr(v, "true") || evs__span_eq_cstr(v, "false")) {
        c->op = v.ptr[0] == 't' ? EVS__WF_TRUE : EVS__WF_FALSE;
        return 0;
    }
    if (evs__json_iter_begin(&it, v, '{') != 0 ||
        evs__json_obj_next(&it, &k, &x) != 1 ||
        evs__json_obj_next(&it, &k, &x) != 0)
        return fail(p, "a condition is true, false or an object with one "
                       "operator");
    evs__json_iter_begin(&it, v, '{');
    evs__json_obj_next(&it, &k, &x);
    for (i = EVS__WF_EQ; i <= EVS__WF_NOT; i++)
        if (evs__wf_key_eq(k, cond_ops[i], strlen(cond_ops[i])))
            op = (int)i;
    if (op < 0)
        return fail(p, "unknown condition operator \"%.*s\"",
                    (int)(k.len > 32 ? 32 : k.len), k.ptr);
    c->op = op;
    if (op <= EVS__WF_IN) {
        if (evs__json_iter_begin(&it, x, '[') != 0)
            goto two;
        while (n < 3 && evs__json_arr_next(&it, &ops[n < 2 ? n : 1]) == 1)
            n++;
        if (n != 2)
            goto two;
        c->a = ops[0];
        c->b = ops[1];
        if ((rc = check_tmpl(p, c->a, 0, "condition")) != 0 ||
            (rc = check_tmpl(p, c->b, 0, "condition")) != 0)
            return rc;
        return 0;
    }
    if (op == EVS__WF_EXISTS) {
        if (x.ptr[0] != '"' || !evs__wf_is_one_ref(p->scratch,
                                                    scratch_str(p, x)))
            return fail(p, "\"exists\" takes one \"${...}\" reference");
        c->a = x;
        return check_tmpl(p, x, 0, "condition");
    }
    n = op == EVS__WF_NOT ? 1 : arr_count(x);
    if (op != EVS__WF_NOT && (x.ptr[0] != '[' || n == 0))
        return fail(p, "\"%s\" takes a non-empty array of conditions",
                    cond_ops[op]);
    if (!(kids = arena_alloc(p->h, n * sizeof(*kids))))
        return -ENOMEM;
    c->kids = kids;
    c->n_kids = n;
    if (op == EVS__WF_NOT)
        return parse_cond(p, x, kids);
    evs__json_iter_begin(&it, x, '[');
    for (i = 0; evs__json_arr_next(&it, &k) == 1; i++)
        if ((rc = parse_cond(p, k, &kids[i])) != 0)
            return rc;
    return 0;
two:
    return fail(p, "\"%s\" takes an array of two operands", cond_ops[op]);
}

/* ------------------------------------------------------------------ */
/* Steps                                                              */
/* ------------------------------------------------------------------ */

enum {
    M_NAME, M_KIND, M_ACTION, M_PARAMS, M_TIMEOUT, M_DURATION, M_UNTIL,
    M_EVENT, M_PATHS, M_MODE, M_STORE, M_EACH, M_RETRY, M_NEXT, M_THEN,
    M_CHANGE, M_MIN, M_MAX, M_START_AT, M_CARRY, M_EXEC, N_MEMBERS
};

#define K(k) (1u << (k))
#define K_ALL 0x7fu

static const char *const step_members[N_MEMBERS] = {
    "name", "kind", "action", "params", "timeout_ms", "duration_ms",
    "until", "event", "paths", "mode", "store", "each", "retry", "next",
    "then", "change_id", "min", "max", "start_at", "carry", "exec",
};

/* The kinds each member is allowed in. */
static const unsigned member_kinds[N_MEMBERS] = {
    [M_NAME] = K_ALL,
    [M_KIND] = K_ALL,
    [M_ACTION] = K(EVS_WF_ACTION),
    [M_PARAMS] = K(EVS_WF_ACTION),
    [M_TIMEOUT] = K(EVS_WF_ACTION) | K(EVS_WF_WAIT_EVENT),
    [M_DURATION] = K(EVS_WF_SLEEP),
    [M_UNTIL] = K(EVS_WF_SLEEP),
    [M_EVENT] = K(EVS_WF_WAIT_EVENT),
    [M_PATHS] = K(EVS_WF_JOIN),
    [M_MODE] = K(EVS_WF_JOIN),
    [M_STORE] = K(EVS_WF_ACTION) | K(EVS_WF_WAIT_EVENT) | K(EVS_WF_JOIN) |
                K(EVS_WF_VERSION),
    [M_EACH] = K(EVS_WF_ACTION),
    [M_RETRY] = K(EVS_WF_ACTION),
    [M_NEXT] = K_ALL & ~K(EVS_WF_END) & ~K(EVS_WF_CONTINUE),
    [M_THEN] = K_ALL & ~K(EVS_WF_END) & ~K(EVS_WF_CONTINUE),
    [M_CHANGE] = K(EVS_WF_VERSION),
    [M_MIN] = K(EVS_WF_VERSION),
    [M_MAX] = K(EVS_WF_VERSION),
    [M_START_AT] = K(EVS_WF_CONTINUE),
    [M_CARRY] = K(EVS_WF_CONTINUE),
    [M_EXEC] = K(EVS_WF_ACTION),
};

static const char *const kind_names[] = {
    "action", "sleep", "wait_event", "join", "end", "version",
    "continue_as_new",
};

const char *evs_wf_kind_name(evs_wf_kind k)
{
    if ((unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]))
        return kind_names[k];
    return "unknown";
}

static const char *const join_all[] = {"*"};

static int parse_retry(parser *p, evs_wf_retry *r, evs_span v)
{
    static const char *const names[] = {
        "max_attempts", "max_interval_ms", "initial_interval_ms",
        "backoff_coefficient", "jitter", "non_retryable",
    };
    evs_span m[6], x;
    const char **types;
    int64_t i64;
    evs__jit it;
    size_t i;
    int rc;

    if ((rc = take_members(p, v, "\"retry\"", names, 6, m)) != 0)
        return rc;
    r->max_attempts = 0;
    if (m[0].len) {
        if ((rc = take_int(p, m[0], "retry.max_attempts", 0, UINT32_MAX,
                           &i64)) != 0)
            return rc;
        r->max_attempts = (uint32_t)i64;
    }
    if (m[2].len) {
        if (evs__json_int(m[2], &i64) == 0 && i64 < 0)
            return fail(p, "retry.initial_interval_ms must not be negative");
        if ((rc = take_int(p, m[2], "retry.initial_interval_ms", 0,
                           INT64_MAX, &r->initial_ms)) != 0)
            return rc;
    }
    r->max_interval_ms = r->initial_ms > INT64_MAX / 100 ? INT64_MAX
                                                         : r->initial_ms * 100;
    if (m[1].len) {
        if (evs__json_int(m[1], &i64) == 0 && i64 < 0)
            return fail(p, "retry.max_interval_ms must not be negative");
        if ((rc = take_int(p, m[1], "retry.max_interval_ms", 0, INT64_MAX,
                           &r->max_interval_ms)) != 0)
            return rc;
        if (r->max_interval_ms < r->initial_ms)
            return fail(p, "retry.max_interval_ms is below "
                           "initial_interval_ms");
    }
    if (m[3].len) {
        if ((rc = take_num(p, m[3], "retry.backoff_coefficient",
                           &r->backoff)) != 0)
            return rc;
        if (r->backoff < 1.0)
            return fail(p, "retry.backoff_coefficient must be at least 1");
    }
    if (m[4].len) {
        if ((rc = take_num(p, m[4], "retry.jitter", &r->jitter)) != 0)
            return rc;
        if (r->jitter < 0.0 || r->jitter > 1.0)
            return fail(p, "retry.jitter must be between 0 and 1");
    }
    if (m[5].len) {
        if (m[5].ptr[0] != '[')
            return fail(p, "retry.non_retryable must be a list of error "
                           "types");
        r->n_non_retryable = arr_count(m[5]);
        types = arena_alloc(p->h, r->n_non_retryable * sizeof(*types));
        if (!types)
            return -ENOMEM;
        evs__json_iter_begin(&it, m[5], '[');
        for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
            if ((rc = take_str(p, x, "retry.non_retryable", &types[i])) != 0)
                return rc;
            if (!types[i][0])
                return fail(p, "retry.non_retryable holds an empty type");
        }
        r->non_retryable = types;
    }
    return 0;
}

static int parse_next(parser *p, evs_wf_step *s, evs_span v)
{
    static const char *const names[] = {"to", "when", "path"};
    evs_span m[3], x;
    evs_wf_edge *e;
    evs_wf_cond *c;
    const char *bi, *bj;
    evs__jit it;
    size_t i, j;
    int rc;

    if (v.ptr[0] != '"' && (v.ptr[0] != '[' || arr_count(v) == 0))
        return fail(p, "\"next\" must be a step name or a non-empty list "
                       "of edges");
    s->n_next = v.ptr[0] == '"' ? 1 : arr_count(v);
    if (!(e = arena_alloc(p->h, s->n_next * sizeof(*e))))
        return -ENOMEM;
    memset(e, 0, s->n_next * sizeof(*e));
    s->next = e;
    if (v.ptr[0] == '"') {
        if ((rc = take_str(p, v, "next", &e->to)) != 0)
            return rc;
        if (!step_named(p, e->to))
            return fail(p, "\"next\" names no step \"%s\"", e->to);
        e->to = step_named(p, e->to)->name;
        return 0;
    }
    p->listy[s->index] = 1;
    evs__json_iter_begin(&it, v, '[');
    for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
        if ((rc = take_members(p, x, "an edge", names, 3, m)) != 0)
            return rc;
        if (!m[0].len)
            return fail(p, "an edge needs \"to\"");
        if ((rc = take_str(p, m[0], "to", &e[i].to)) != 0)
            return rc;
        if (!step_named(p, e[i].to))
            return fail(p, "an edge goes to no step \"%s\"", e[i].to);
        e[i].to = step_named(p, e[i].to)->name;
        if (m[2].len) {
            if ((rc = take_str(p, m[2], "path", &e[i].path)) != 0)
                return rc;
            if (!name_ok(e[i].path, 1))
                return fail(p, "path name \"%.64s\" is invalid (1 to 64 "
                               "of A-Z a-z 0-9 _ . -)", e[i].path);
        }
        if (m[1].len) {
            if (!(c = arena_alloc(p->h, sizeof(*c))))
                return -ENOMEM;
            if ((rc = parse_cond(p, m[1], c)) != 0)
                return rc;
            e[i].when = c;
        }
        bi = e[i].path ? e[i].path : e[i].to;
        for (j = 0; j < i; j++) {
            bj = e[j].path ? e[j].path : e[j].to;
            if (strcmp(bi, bj) == 0)
                return fail(p, "two edges create the branch \"%s\"", bi);
        }
    }
    return 0;
}

static int parse_join(parser *p, evs_wf_step *s, const evs_span *m)
{
    const char **paths;
    const char *mode;
    evs__jit it;
    evs_span x;
    size_t i, j, n;
    int rc;

    if (!m[M_PATHS].len)
        return fail(p, "a join step needs \"paths\"");
    if (evs__span_eq_cstr(m[M_PATHS], "\"*\"")) {
        s->join_paths = join_all;
        s->n_join_paths = 1;
    } else {
        n = arr_count(m[M_PATHS]);
        if (m[M_PATHS].ptr[0] != '[' || n == 0)
            return fail(p, "\"paths\" must be \"*\" or a non-empty list of "
                           "path names");
        if (!(paths = arena_alloc(p->h, n * sizeof(*paths))))
            return -ENOMEM;
        evs__json_iter_begin(&it, m[M_PATHS], '[');
        for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
            if ((rc = take_str(p, x, "paths", &paths[i])) != 0)
                return rc;
            for (j = 0; j < i; j++)
                if (strcmp(paths[i], paths[j]) == 0)
                    return fail(p, "\"paths\" names \"%s\" twice", paths[i]);
        }
        s->join_paths = paths;
        s->n_join_paths = n;
    }
    if (m[M_MODE].len) {
        if ((rc = take_str(p, m[M_MODE], "mode", &mode)) != 0)
            return rc;
        if (strcmp(mode, "all") == 0)
            s->join_mode = EVS_JOIN_ALL;
        else if (strcmp(mode, "any") == 0)
            s->join_mode = EVS_JOIN_ANY;
        else if (strcmp(mode, "race") == 0)
            s->join_mode = EVS_JOIN_RACE;
        else
            return fail(p, "unknown join mode \"%s\" (all, any or race)",
                        mode);
    }
    return 0;
}

/* The next word of an "exec:" string at *w, and its length; NULL at
 * the end. Words are separated by blanks (spaces and tabs). */
static const char *next_word(const char **w, size_t *len)
{
    const char *start = *w + strspn(*w, " \t");

    *len = strcspn(start, " \t");
    *w = start + *len;
    return *len ? start : NULL;
}

/*
 * The program and arguments of an exec step: the words of the string
 * after "exec:" (no quoting), or the strings of an `exec` array (`arr`),
 * taken as written. Either way the program comes first and is not empty.
 */
static int parse_argv(parser *p, evs_wf_step *s, evs_span arr)
{
    const char **argv, *w = s->action + 5, *word;
    evs__jit it;
    evs_span x;
    size_t n = 0, i, len;
    int rc;

    if (arr.len && (arr.ptr[0] != '[' || (n = arr_count(arr)) == 0))
        return fail(p, "\"exec\" must be a non-empty list of strings");
    while (!arr.len && next_word(&w, &len))
        n++;
    if (n == 0)
        return fail(p, "\"exec:\" names no program");
    if (!(argv = arena_alloc(p->h, (n + 1) * sizeof(*argv))))
        return -ENOMEM;
    w = s->action + 5;
    if (arr.len)
        evs__json_iter_begin(&it, arr, '[');
    for (i = 0; i < n; i++) {
        if (!arr.len) {
            char *copy;

            word = next_word(&w, &len);
            if (!(copy = arena_alloc(p->h, len + 1)))
                return -ENOMEM;
            memcpy(copy, word, len);
            copy[len] = '\0';
            argv[i] = copy;
            continue;
        }
        evs__json_arr_next(&it, &x);
        if (x.ptr[0] != '"')
            return fail(p, "\"exec\" must be a non-empty list of strings");
        if ((rc = take_str(p, x, "exec", &argv[i])) != 0)
            return rc;
    }
    argv[n] = NULL;
    if (!argv[0][0])
        return fail(p, "\"exec\" must start with a program");
    s->argv = argv;
    s->n_argv = n;
    return 0;
}

static int parse_action(parser *p, evs_wf_step *s, const evs_span *m)
{
    int rc, known;

    if (!m[M_ACTION].len == !m[M_EXEC].len)
        return fail(p, "an action step needs exactly one of \"action\" "
                       "and \"exec\"");
    if (m[M_EXEC].len) {
        s->action = "exec:";
        if ((rc = parse_argv(p, s, m[M_EXEC])) != 0)
            return rc;
    } else if ((rc = take_str(p, m[M_ACTION], "action", &s->action)) != 0) {
        return rc;
    } else if (strncmp(s->action, "exec:", 5) == 0) {
        if ((rc = parse_argv(p, s, (evs_span){0})) != 0)
            return rc;
    } else if (!s->action[0]) {
        return fail(p, "\"action\" is empty");
    } else if (p->has_action) {
        if (!(known = p->has_action(p->arg, s->action)))
            return fail(p, "unknown action \"%.64s\"", s->action);
        p->instant[s->index] = known == EVS_WF_ACTION_INSTANT;
    }
    if (m[M_PARAMS].len) {
        s->params = m[M_PARAMS];
        if ((rc = check_tmpl(p, s->params, m[M_EACH].len > 0, "params")))
            return rc;
    }
    return 0;
}

static int parse_sleep(parser *p, evs_wf_step *s, const evs_span *m)
{
    evs_span d = m[M_DURATION], u = m[M_UNTIL];
    int64_t x;
    size_t n;
    int rc;

    if (!d.len == !u.len)
        return fail(p, "a sleep step needs exactly one of \"duration_ms\" "
                       "and \"until\"");
    if (d.len) {
        if (d.ptr[0] == '"') {
            if (!evs__wf_is_one_ref(p->scratch, scratch_str(p, d)))
                return fail(p, "\"duration_ms\" must be an integer or one "
                               "\"${...}\" reference");
            s->duration = d;
            return check_tmpl(p, d, 0, "duration_ms");
        }
        s->duration = d;
        if ((rc = take_int(p, d, "duration_ms", 0, INT64_MAX, &x)) != 0)
            return rc;
        p->instant[s->index] = x == 0; /* a sleep that never waits */
        return 0;
    }
    if (u.ptr[0] != '"')
        return fail(p, "\"until\" must be a string");
    s->until = u;
    n = scratch_str(p, u);
    if (evs__wf_has_ref(p->scratch, n))
        return check_tmpl(p, u, 0, "until");
    if (evs_time_parse(p->scratch, n, &x) != 0)
        return fail(p, "\"until\" is not an RFC 3339 time");
    return 0;
}

/* continue_as_new: "start_at" (a step; default the first), "carry" (a
 * list of variable names; default every variable). */
static int parse_continue(parser *p, evs_wf_step *s, const evs_span *m)
{
    const char **names = NULL;
    evs__jit it;
    evs_span x;
    size_t i, n;
    int rc;

    if (m[M_START_AT].len) {
        if ((rc = take_str(p, m[M_START_AT], "start_at", &s->start_at)))
            return rc;
        if (!step_named(p, s->start_at))
            return fail(p, "\"start_at\" names no step \"%.64s\"",
                        s->start_at);
        s->start_at = step_named(p, s->start_at)->name;
    }
    if (!m[M_CARRY].len) {
        s->carry_all = 1;
        return 0;
    }
    if (m[M_CARRY].ptr[0] != '[')
        return fail(p, "\"carry\" must be a list of variable names");
    n = arr_count(m[M_CARRY]);
    if (n && !(names = arena_alloc(p->h, n * sizeof(*names))))
        return -ENOMEM;
    evs__json_iter_begin(&it, m[M_CARRY], '[');
    for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
        if ((rc = take_str(p, x, "carry", &names[i])) != 0)
            return rc;
        if (!name_ok(names[i], 0))
            return fail(p, "variable name \"%.64s\" is invalid", names[i]);
    }
    s->carry = n ? names : NULL;
    s->n_carry = n;
    return 0;
}

static int parse_step(parser *p, evs_wf_step *s)
{
    evs_span m[N_MEMBERS];
    const char *kind;
    size_t i;
    int rc;

    p->step = s->name;
    if ((rc = take_members(p, s->raw, "a step", step_members, N_MEMBERS,
                           m)) != 0)
        return rc;
    if (!m[M_KIND].len)
        return fail(p, "missing member \"kind\"");
    if ((rc = take_str(p, m[M_KIND], "kind", &kind)) != 0)
        return rc;
    for (i = 0; i < 7 && strcmp(kind, kind_names[i]) != 0; i++)
        ;
    if (i == 7)
        return fail(p, "unknown kind \"%.64s\"", kind);
    s->kind = (evs_wf_kind)i;
    /* Neither waits; nor fails by itself, but for a continue_as_new
     * that finds other paths running, which the loop check does not
     * count on (WORKFLOWS.md §2.9). */
    p->instant[s->index] = s->kind == EVS_WF_VERSION ||
                           s->kind == EVS_WF_CONTINUE;
    for (i = 0; i < N_MEMBERS; i++)
        if (m[i].len && !(member_kinds[i] & K(s->kind)))
            return fail(p, "member \"%s\" is not allowed in a step of "
                           "kind %s",
                        step_members[i], kind_names[s->kind]);
    s->retry.max_attempts = 1; /* no `retry`: the step runs once */
    s->retry.initial_ms = 1000;
    s->retry.backoff = 2.0;
    s->retry.max_interval_ms = 100000;
    switch (s->kind) {
    case EVS_WF_ACTION:
        rc = parse_action(p, s, m);
        break;
    case EVS_WF_SLEEP:
        rc = parse_sleep(p, s, m);
        break;
    case EVS_WF_WAIT_EVENT:
        if (!m[M_EVENT].len)
            return fail(p, "a wait_event step needs \"event\"");
        if ((rc = take_str(p, m[M_EVENT], "event", &s->event)) == 0 &&
            !s->event[0])
            return fail(p, "\"event\" is empty");
        break;
    case EVS_WF_JOIN:
        rc = parse_join(p, s, m);
        break;
    case EVS_WF_CONTINUE:
        rc = parse_continue(p, s, m);
        break;
    case EVS_WF_VERSION:
        if (!m[M_CHANGE].len || !m[M_MIN].len || !m[M_MAX].len)
            return fail(p, "a version step needs \"change_id\", \"min\" "
                           "and \"max\"");
        if ((rc = take_str(p, m[M_CHANGE], "change_id", &s->change_id)) ||
            (rc = take_int(p, m[M_MIN], "min", -1, INT32_MAX,
                           &s->version_min)) ||
            (rc = take_int(p, m[M_MAX], "max", -1, INT32_MAX,
                           &s->version_max)))
            return rc;
        if (!name_ok(s->change_id, 0))
            return fail(p, "change_id \"%.64s\" is invalid (1 to 64 of "
                           "A-Z a-z 0-9 _ -)", s->change_id);
        if (s->version_min > s->version_max)
            return fail(p, "\"min\" is greater than \"max\"");
        break;
    default:
        break;
    }
    if (rc != 0)
        return rc;
    if (m[M_TIMEOUT].len && (rc = take_int(p, m[M_TIMEOUT], "timeout_ms", 0,
                                           INT64_MAX, &s->timeout_ms)) != 0)
        return rc;
    if (m[M_STORE].len) {
        if ((rc = take_str(p, m[M_STORE], "store", &s->store)) != 0)
            return rc;
        if (!name_ok(s->store, 0))
            return fail(p, "variable name \"%.64s\" is invalid (1 to 64 of "
                           "A-Z a-z 0-9 _ -)", s->store);
    }
    if (m[M_EACH].len) {
        if (m[M_EACH].ptr[0] != '[' &&
            (m[M_EACH].ptr[0] != '"' ||
             !evs__wf_is_one_ref(p->scratch, scratch_str(p, m[M_EACH]))))
            return fail(p, "\"each\" must be an array or one \"${...}\" "
                           "reference");
        s->each = m[M_EACH];
        if ((rc = check_tmpl(p, s->each, 0, "each")) != 0)
            return rc;
    }
    if (m[M_RETRY].len) {
        s->has_retry = 1;
        s->retry.max_interval_ms = -1;
        s->retry.initial_ms = 1000;
        if ((rc = parse_retry(p, &s->retry, m[M_RETRY])) != 0)
            return rc;
    }
    if (m[M_NEXT].len && (rc = parse_next(p, s, m[M_NEXT])) != 0)
        return rc;
    if (m[M_THEN].len) {
        if (!p->listy[s->index])
            return fail(p, "\"then\" needs \"next\" to be a list of edges");
        if ((rc = take_str(p, m[M_THEN], "then", &s->then)) != 0)
            return rc;
        if (!step_named(p, s->then))
            return fail(p, "\"then\" names no step \"%s\"", s->then);
        s->then = step_named(p, s->then)->name;
    }
    return 0;
}

/* The steps' names first, so that edges and references can be checked. */
static int name_steps(parser *p, evs_span steps)
{
    evs__jit it;
    evs_span el, k, v, name;
    size_t i, j;
    int rc;

    p->n_steps = arr_count(steps);
    if (steps.ptr[0] != '[' || p->n_steps == 0)
        return fail(p, "\"steps\" must be a non-empty list");
    p->steps = arena_alloc(p->h, p->n_steps * sizeof(*p->steps));
    p->listy = arena_alloc(p->h, p->n_steps);
    p->instant = arena_alloc(p->h, p->n_steps);
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
            return fail(p, "the step at index %zu is not an object", i);
        while (evs__json_obj_next(&mi, &k, &v) == 1)
            if (evs__wf_key_eq(k, "name", 4))
                name = v;
        if (!name.len)
            return fail(p, "the step at index %zu has no \"name\"", i);
        if ((rc = take_str(p, name, "name", &s->name)) != 0)
            return rc;
        p->step = s->name;
        if (!name_ok(s->name, 1))
            return fail(p, "invalid step name (1 to 64 of A-Z a-z 0-9 _ . "
                           "-)");
        for (j = 0; j < i; j++)
            if (strcmp(p->steps[j].name, s->name) == 0)
                return fail(p, "duplicate step name");
        p->step = NULL;
    }
    return 0;
}

/* A join may only name paths that some edge list of the definition
 * creates: an edge's `path`, or the `to` of an edge without one. */
static int check_joins(parser *p)
{
    size_t i, j, k, e;
    int found;

    for (i = 0; i < p->n_steps; i++) {
        const evs_wf_step *s = &p->steps[i];

        if (s->kind != EVS_WF_JOIN || s->join_paths == join_all)
            continue;
        for (j = 0; j < s->n_join_paths; j++) {
            const char *want = s->join_paths[j];

            found = 0;
            for (k = 0; k < p->n_steps && !found; k++) {
                if (!p->listy[k])
                    continue;
                for (e = 0; e < p->steps[k].n_next && !found; e++) {
                    const evs_wf_edge *ed = &p->steps[k].next[e];
                    found = strcmp(ed->path ? ed->path : ed->to, want) == 0;
                }
            }
            if (!found) {
                p->step = s->name;
                return fail(p, "joins the path \"%s\", which no edge "
                               "creates", want);
            }
        }
    }
    return 0;
}

static const char *const input_types[] = {
    "string", "number", "integer", "boolean", "object", "array", "any",
};

static int parse_inputs(parser *p, evs_span v)
{
    static const char *const names[] = {"type", "required", "default"};
    evs_span k, x, m[3], key;
    evs_wf_input *in;
    evs__jit it;
    size_t n = 0, i, t;
    int rc;

    if (evs__json_iter_begin(&it, v, '{') != 0)
        return fail(p, "\"inputs\" must be an object");
    while (evs__json_obj_next(&it, &k, &x) == 1)
        n++;
    if (!(in = arena_alloc(p->h, n * sizeof(*in))))
        return -ENOMEM;
    memset(in, 0, n * sizeof(*in));
    p->d->inputs = in;
    p->d->n_inputs = n;
    evs__json_iter_begin(&it, v, '{');
    for (i = 0; evs__json_obj_next(&it, &k, &x) == 1; i++) {
        key.ptr = k.ptr - 1;
        key.len = k.len + 2;
        if ((rc = take_str(p, key, "input name", &in[i].name)) != 0)
            return rc;
        if (!name_ok(in[i].name, 0))
            return fail(p, "input name \"%.64s\" is invalid (1 to 64 of "
                           "A-Z a-z 0-9 _ -)", in[i].name);
        if ((rc = take_members(p, x, "an input", names, 3, m)) != 0)
            return rc;
        in[i].type = "any";
        if (m[0].len && (rc = take_str(p, m[0], "type", &in[i].type)) != 0)
            return rc;
        for (t = 0; t < 7 && strcmp(in[i].type, input_types[t]) != 0; t++)
            ;
        if (t == 7)
            return fail(p, "input \"%s\" has an unknown type \"%.32s\"",
                        in[i].name, in[i].type);
        if (m[1].len) {
            if (!is_bool(m[1]))
                return fail(p, "input \"%s\": \"required\" must be a "
                               "boolean", in[i].name);
            in[i].required = m[1].ptr[0] == 't';
        }
        if (m[2].len) {
            if (in[i].required)
                return fail(p, "input \"%s\" is required and has a default",
                            in[i].name);
            if (!evs__wf_type_ok(in[i].type, m[2]))
                return fail(p, "the default of input \"%s\" is not of type "
                               "%s", in[i].name, in[i].type);
            in[i].default_value = m[2];
        }
    }
    return 0;
}

/* The checks of evs__wf_graph_check, refusals named after their step. */
static int check_graph(parser *p)
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
        return fail(p, "%s", msg);
    }
    return rc;
}

static int parse_doc(parser *p)
{
    static const char *const names[] = {"name", "version", "inputs",
                                        "outputs", "steps", "strict_inputs"};
    evs_wf_def *d = p->d;
    evs_span m[6];
    size_t i;
    int rc;

    if (d->json.ptr[0] != '{')
        return fail(p, "a definition is a JSON object");
    if ((rc = take_members(p, d->json, "the definition", names, 6, m)) != 0)
        return rc;
    if (!m[0].len)
        return fail(p, "missing member \"name\"");
    if ((rc = take_str(p, m[0], "name", &d->name)) != 0)
        return rc;
    if (!d->name[0])
        return fail(p, "\"name\" is empty");
    d->version = 1;
    if (m[1].len &&
        (rc = take_int(p, m[1], "version", 1, INT64_MAX, &d->version)) != 0)
        return rc;
    if (m[5].len) {
        if (!is_bool(m[5]))
            return fail(p, "\"strict_inputs\" must be a boolean");
        d->strict_inputs = m[5].ptr[0] == 't';
    }
    /* The inputs before the templates that strict_inputs checks. */
    if (m[2].len && (rc = parse_inputs(p, m[2])) != 0)
        return rc;
    if (!m[4].len)
        return fail(p, "missing member \"steps\"");
    if ((rc = name_steps(p, m[4])) != 0)
        return rc;
    d->steps = p->steps;
    d->n_steps = p->n_steps;
    for (i = 0; i < p->n_steps; i++)
        if ((rc = parse_step(p, &p->steps[i])) != 0)
            return rc;
    p->step = NULL;
    if (m[3].len) {
        d->outputs = m[3];
        if ((rc = check_tmpl(p, m[3], 0, "outputs")) != 0)
            return rc;
    }
    if ((rc = check_graph(p)) != 0)
        return rc;
    return check_joins(p);
}

/* After a duplicate member was found in the document: names the step
 * that holds it, if a step does. */
static void blame_step(parser *p, char *msg, size_t cap)
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
                n = scratch_str(p, v);
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
                 evs_wf_has_action_fn has_action, void *arg,
                 evs_wf_def **out, evs_wf_error *err)
{
    wf_holder *h = NULL;
    parser P;
    char msg[200], *doc;
    size_t off = 0, n;
    uint64_t hash;
    int rc;

    if (err)
        memset(err, 0, sizeof(*err));
    memset(&P, 0, sizeof(P));
    P.err = err;
    P.has_action = has_action;
    P.arg = arg;
    if (!json || evs_json_check(json, len, 0, NULL, NULL, &off) != 0)
        return fail(&P, "not valid JSON (at byte %zu)", off);
    /* Room for the compact text and what is parsed out of it. */
    if (!(h = holder_new(alloc, 2 * len + 2048))) {
        rc = -ENOMEM;
        goto out;
    }
    P.h = h;
    P.d = &h->def;
    if (!(doc = arena_alloc(h, len + 1))) {
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
        rc = fail(&P, "%s", msg);
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
    if (rc == -ENOMEM && err) {
        err->step[0] = '\0';
        snprintf(err->msg, sizeof(err->msg), "out of memory");
    }
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
    max = r->max_interval_ms > 0 ? r->max_interval_ms
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

int evs_wf_retry_allows(const evs_wf_retry *r, uint32_t attempt,
                        evs_span type, int retryable)
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
