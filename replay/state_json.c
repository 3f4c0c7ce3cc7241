/*
 * state_json.c: the replayed state as canonical JSON (FORMAT.md, "Replay
 * state"), and back. Snapshots carry it, so that opening a long execution
 * costs only the events after its snapshot.
 *
 * The writer emits every field, in a fixed order, with JSON values copied
 * byte for byte; equal states therefore give equal bytes, which is what
 * the snapshot-plus-tail property test compares. The reader takes JSON
 * values back byte for byte too (json-c would reformat numbers).
 */
#include "replay_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#define STATE_VERSION 3

typedef evs__jbuf wbuf;

#define LIT(b, s) EVS__JB_LIT(b, s)

/* ,"key": (the comma unless first) */
static void key(wbuf *b, const char *k, int first)
{
    if (!first)
        LIT(b, ",");
    LIT(b, "\"");
    evs__jb_str(b, k);
    LIT(b, "\":");
}

static void str(wbuf *b, const char *k, int first, evs_span s)
{
    key(b, k, first);
    evs__jb_quote(b, s);
}

static void json(wbuf *b, const char *k, int first, evs_span v)
{
    key(b, k, first);
    evs__jb_json(b, v);
}

static void num(wbuf *b, const char *k, int first, int64_t v)
{
    key(b, k, first);
    evs__jb_int(b, v);
}

static void boolean(wbuf *b, const char *k, int first, int v)
{
    key(b, k, first);
    if (v)
        LIT(b, "true");
    else
        LIT(b, "false");
}

static void name(wbuf *b, const char *k, int first, const char *v)
{
    str(b, k, first, evs_span_cstr(v));
}

int evs_replay_state_json(const evs_replay *r, char **out, size_t *out_len)
{
    const evs_exec_state *x = &r->exec;
    wbuf b = {r->alloc, NULL, 0, 0, 0};
    size_t i;

    LIT(&b, "{");
    num(&b, "v", 1, STATE_VERSION);
    name(&b, "status", 0, evs_exec_status_name(x->status));
    name(&b, "status_before_pause", 0,
         evs_exec_status_name(x->status_before_pause));
    str(&b, "execution_id", 0, x->execution_id);
    str(&b, "workflow_name", 0, x->workflow_name);
    json(&b, "inputs", 0, x->inputs);
    json(&b, "outputs", 0, x->outputs);
    json(&b, "error", 0, x->error);
    json(&b, "definition", 0, x->definition);
    str(&b, "definition_hash", 0, x->definition_hash);
    str(&b, "inputs_hash", 0, x->inputs_hash);
    json(&b, "lineage", 0, x->lineage);
    str(&b, "continued_as", 0, x->continued_as);
    num(&b, "started_at", 0, x->started_at_us);
    num(&b, "ended_at", 0, x->ended_at_us);
    num(&b, "last_seq", 0, (int64_t)x->last_seq);
    boolean(&b, "terminal", 0, r->terminal);
    key(&b, "failed", 0);
    LIT(&b, "{");
    str(&b, "path", 1, x->failed_path);
    str(&b, "step", 0, x->failed_step);
    num(&b, "iteration", 0, x->failed_iteration);
    num(&b, "seq", 0, (int64_t)x->failed_seq);
    LIT(&b, "}");

    key(&b, "paths", 0);
    LIT(&b, "[");
    for (i = 0; i < r->paths.n; i++) {
        const evs_path_state *p = &r->paths.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "id", 1, p->id);
        str(&b, "parent", 0, p->parent);
        name(&b, "status", 0, evs_path_status_name(p->status));
        num(&b, "pending", 0, p->pending);
        str(&b, "current_step", 0, p->current_step);
        json(&b, "error", 0, p->error);
        num(&b, "started_seq", 0, (int64_t)p->started_seq);
        num(&b, "ended_seq", 0, (int64_t)p->ended_seq);
        json(&b, "last_output", 0, p->last_output);
        num(&b, "last_output_seq", 0, (int64_t)p->last_output_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "steps", 0);
    LIT(&b, "[");
    for (i = 0; i < r->steps.n; i++) {
        const evs_step_state *s = &r->steps.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "path", 1, s->path_id);
        str(&b, "name", 0, s->name);
        num(&b, "iteration", 0, s->iteration);
        name(&b, "status", 0, evs_step_status_name(s->status));
        num(&b, "attempts", 0, s->attempts);
        json(&b, "input", 0, s->input);
        json(&b, "output", 0, s->output);
        json(&b, "error", 0, s->error);
        str(&b, "stored_variable", 0, s->stored_variable);
        str(&b, "step_hash", 0, s->step_hash);
        str(&b, "kind", 0, s->kind);
        num(&b, "retry_at", 0, s->retry_at_us);
        num(&b, "started_seq", 0, (int64_t)s->started_seq);
        num(&b, "ended_seq", 0, (int64_t)s->ended_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "each", 0);
    LIT(&b, "[");
    for (i = 0; i < r->eaches.n; i++) {
        const evs_each_state *e = &r->eaches.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "path", 1, e->path_id);
        str(&b, "name", 0, e->name);
        num(&b, "count", 0, e->count);
        num(&b, "done", 0, e->done);
        json(&b, "output", 0, e->output);
        num(&b, "ended_seq", 0, (int64_t)e->ended_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "variables", 0);
    LIT(&b, "[");
    for (i = 0; i < r->vars.n; i++) {
        const evs_var_state *v = &r->vars.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "name", 1, v->name);
        json(&b, "value", 0, v->value);
        num(&b, "set_seq", 0, (int64_t)v->set_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "signals", 0);
    LIT(&b, "[");
    for (i = 0; i < r->signals.n; i++) {
        const evs_signal_state *s = &r->signals.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "id", 1, s->id);
        str(&b, "name", 0, s->name);
        json(&b, "payload", 0, s->payload);
        num(&b, "received_seq", 0, (int64_t)s->received_seq);
        num(&b, "consumed_seq", 0, (int64_t)s->consumed_seq);
        str(&b, "path", 0, s->consumed_by_path);
        str(&b, "step", 0, s->consumed_by_step);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "versions", 0);
    LIT(&b, "[");
    for (i = 0; i < r->versions.n; i++) {
        const evs_version_state *v = &r->versions.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "change_id", 1, v->change_id);
        num(&b, "version", 0, v->version);
        num(&b, "min", 0, v->min);
        num(&b, "max", 0, v->max);
        num(&b, "seq", 0, (int64_t)v->seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "timers", 0);
    LIT(&b, "[");
    for (i = 0; i < r->timers.n; i++) {
        const evs_timer_state *t = &r->timers.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "id", 1, t->timer_id);
        str(&b, "path", 0, t->path_id);
        str(&b, "step", 0, t->step);
        num(&b, "fire_at", 0, t->fire_at_us);
        num(&b, "started_seq", 0, (int64_t)t->started_seq);
        num(&b, "fired_seq", 0, (int64_t)t->fired_seq);
        boolean(&b, "cancelled", 0, t->cancelled);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "waits", 0);
    LIT(&b, "[");
    for (i = 0; i < r->waits.n; i++) {
        const evs_wait_state *w = &r->waits.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "path", 1, w->path_id);
        str(&b, "step", 0, w->step);
        str(&b, "signal", 0, w->signal);
        num(&b, "timeout_at", 0, w->timeout_at_us);
        num(&b, "started_seq", 0, (int64_t)w->started_seq);
        num(&b, "ended_seq", 0, (int64_t)w->ended_seq);
        boolean(&b, "timed_out", 0, w->timed_out);
        num(&b, "signal_seq", 0, (int64_t)w->signal_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "names", 0);
    LIT(&b, "[");
    for (i = 0; i < r->names.n; i++) {
        const evs_stepname_state *n = &r->names.v[i];
        if (i)
            LIT(&b, ",");
        LIT(&b, "{");
        str(&b, "name", 1, n->name);
        str(&b, "kind", 0, n->kind);
        str(&b, "step_hash", 0, n->step_hash);
        num(&b, "started_seq", 0, (int64_t)n->started_seq);
        json(&b, "output", 0, n->output);
        num(&b, "output_seq", 0, (int64_t)n->output_seq);
        LIT(&b, "}");
    }
    LIT(&b, "]");

    key(&b, "consumed_ids", 0);
    LIT(&b, "[");
    for (i = 0; i < r->gone.n; i++) {
        if (i)
            LIT(&b, ",");
        evs__jb_quote(&b, r->gone.v[i]);
    }
    LIT(&b, "]");
    boolean(&b, "compact", 0, r->opts.compact);
    LIT(&b, "}");
    if (b.err) {
        evs__free(r->alloc, b.p);
        return b.err;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reading a state back                                               */
/* ------------------------------------------------------------------ */

/*
 * A state is read in one pass that checks its JSON as it goes, exactly as
 * strictly as evs_json_check() (the same scanners; nested values go
 * through evs__json_check_value), and fills the state from it. Nothing is
 * copied: the replayer owns the text (the snapshot it was read from, or
 * one copy of the caller's text), its spans point into it, and strings
 * with escapes are unescaped where they stand (unescaping never grows).
 *
 * A state of a million events is hundreds of MiB, most of it the steps'
 * JSON values, so the pass does little per byte: keys are looked up in
 * their canonical order first (one comparison when the writer wrote
 * them), values the state keeps as JSON are checked and pointed at.
 *
 * Errors keep the meaning of "check the text, then read it": a syntax
 * error anywhere makes the load EVS_EPARSE, whatever came before it. A
 * well-formed value the state cannot use (a string where a number must
 * be, an unknown status, a newer version, no memory) is remembered, the
 * first one only, and the rest of the text is still checked, but no
 * longer applied; that error is the result if the text turns out to be
 * JSON.
 */

/* What the readers return on a syntax error: no error code is this. */
#define SYNTAX INT_MIN

typedef struct rd {
    evs_replay *r;
    char *p, *end;
    int err; /* the first error of meaning; 0 while the state applies */
} rd;

/* A key as the writer writes it, "key": (n is its length plus 3). */
typedef struct mkey {
    const char *s;
    size_t n;
} mkey;

#define KEY(k) {"\"" k "\":", sizeof(k) + 2}

static const evs_span empty = {"", 0};

static void ws(rd *d)
{
    while (d->p < d->end && (unsigned char)*d->p <= ' ' &&
           (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' ||
            *d->p == '\t'))
        d->p++;
}

/* The next byte is c (no whitespace skipped). */
static int at(const rd *d, char c)
{
    return d->p < d->end && *d->p == c;
}

/*
 * Checks the value at d->p, which sits `depth` containers deep, moves
 * past it and sets *v to its text. Strings, numbers and literals are
 * scanned here; objects and arrays by the formats layer's checker.
 */
static int value(rd *d, size_t depth, evs_span *v)
{
    const unsigned char *p = (const unsigned char *)d->p;
    const unsigned char *end = (const unsigned char *)d->end;
    const char *q;
    int bad;

    if (p == end)
        return SYNTAX;
    switch (*p) {
    case '"':
        bad = evs__json_scan_string(&p, end);
        break;
    case '{':
    case '[':
        q = evs__json_check_value(d->p, d->end, depth);
        bad = q == NULL;
        p = (const unsigned char *)q;
        break;
    case 't':
        bad = evs__json_scan_lit(&p, end, "true", 4);
        break;
    case 'f':
        bad = evs__json_scan_lit(&p, end, "false", 5);
        break;
    case 'n':
        bad = evs__json_scan_lit(&p, end, "null", 4);
        break;
    default:
        if (*p != '-' && !evs__is_digit(*p))
            return SYNTAX;
        bad = evs__json_scan_number(&p, end);
        break;
    }
    if (bad)
        return SYNTAX;
    v->ptr = d->p;
    v->len = (size_t)((const char *)p - d->p);
    d->p = (char *)p;
    return 0;
}

/* Whether p[0..n) is q[0..n), for 4 <= n (a key's text): a few word
 * compares instead of a call. */
static inline int same(const char *p, const char *q, size_t n)
{
    uint64_t a, b;
    uint32_t x, y, z, w;
    size_t i;

    if (n < 8) {
        memcpy(&x, p, 4);
        memcpy(&y, q, 4);
        memcpy(&z, p + n - 4, 4);
        memcpy(&w, q + n - 4, 4);
        return x == y && z == w;
    }
    for (i = 0; i + 8 < n; i += 8) {
        memcpy(&a, p + i, 8);
        memcpy(&b, q + i, 8);
        if (a != b)
            return 0;
    }
    memcpy(&a, p + n - 8, 8);
    memcpy(&b, q + n - 8, 8);
    return a == b;
}

/*
 * Which of keys[0..n) k (a key's raw text, still escaped, as the writer's
 * plain keys are compared) is, or -1; *next as for member().
 */
static int lookup(const mkey *keys, int n, evs_span k, int *next)
{
    for (int i = 0; i < n; i++)
        if (keys[i].n - 3 == k.len &&
            memcmp(keys[i].s + 1, k.ptr, k.len) == 0) {
            *next = i + 1;
            return i;
        }
    return -1;
}

/* member() past its quick cases: a key read as a string and looked up
 * in the whole table. */
static int __attribute__((noinline))
member_key(rd *d, const mkey *keys, int n, int *next, int *idx)
{
    const unsigned char *p;
    evs_span k;

    ws(d);
    p = (const unsigned char *)d->p;
    if (!at(d, '"') ||
        evs__json_scan_string(&p, (const unsigned char *)d->end) != 0)
        return SYNTAX;
    k.ptr = d->p + 1;
    k.len = (size_t)((const char *)p - d->p) - 2;
    d->p = (char *)p;
    ws(d);
    if (!at(d, ':'))
        return SYNTAX;
    d->p++;
    ws(d);
    *idx = lookup(keys, n, k, next);
    return 1;
}

/*
 * The next member of an object whose '{' has been read: 1 with *idx the
 * index of its key in keys[0..n) (-1 for a key not there) and d->p on its
 * value; 0 past the closing '}'. *first is set for the first call.
 *
 * Writers put every member in one order, so the key after the last one
 * found (*next) is tried first, as the exact text "key": (the keys are
 * plain ASCII, so that text is a valid string and its colon); anything
 * else takes the general way.
 */
static inline int member(rd *d, int *first, const mkey *keys, int n,
                         int *next, int *idx)
{
    int i = *next;

    ws(d);
    if (at(d, '}')) {
        d->p++;
        return 0;
    }
    if (!*first) {
        if (!at(d, ','))
            return SYNTAX;
        d->p++; /* whitespace after it fails the quick way: no loss */
    }
    *first = 0;
    if (i < n && (size_t)(d->end - d->p) >= keys[i].n &&
        same(d->p, keys[i].s, keys[i].n)) {
        d->p += keys[i].n;
        *next = i + 1;
        *idx = i;
        ws(d);
        return 1;
    }
    return member_key(d, keys, n, next, idx);
}

/* The next element of an array whose '[' has been read, as member(). */
static int element(rd *d, int *first)
{
    ws(d);
    if (at(d, ']')) {
        d->p++;
        return 0;
    }
    if (!*first) {
        if (!at(d, ','))
            return SYNTAX;
        d->p++;
        ws(d);
    }
    *first = 0;
    return 1;
}

static int is_null(evs_span v)
{
    return v.len == 4 && memcmp(v.ptr, "null", 4) == 0;
}

/* Notes an error of meaning (the first one only). */
static void fail(rd *d, int rc)
{
    if (d->err == 0)
        d->err = rc;
}

/* Each getter checks the value and, while the state applies, sets its
 * target; a member that is absent leaves its target alone. */

/* A string, unescaped, or null (empty). */
static int g_str(rd *d, size_t depth, evs_span *out)
{
    evs_span v;
    char *s;
    size_t n;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (d->err)
        return 0;
    if (is_null(v)) {
        *out = empty;
        return 0;
    }
    if (v.ptr[0] != '"') {
        fail(d, EVS_EPARSE);
        return 0;
    }
    s = (char *)v.ptr + 1;
    n = v.len - 2;
    if (n == 0) {
        *out = empty;
        return 0;
    }
    /* The scan accepted every escape, so unescaping cannot fail. */
    if (memchr(s, '\\', n) != NULL)
        n = evs__json_unescape(s, n, s);
    out->ptr = s;
    out->len = n;
    return 0;
}

/* Any JSON value, as it is written; null is empty. */
static int g_json(rd *d, size_t depth, evs_span *out)
{
    evs_span v;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (!d->err)
        *out = is_null(v) ? empty : v;
    return 0;
}

/*
 * An integer. The common case, a JSON integer of at most 18 digits (which
 * cannot overflow), is read as it is scanned; anything else (a fraction,
 * an exponent, a longer number, another value) takes the general way:
 * checked by value(), read by evs__json_int() (which refuses all but
 * integers that fit int64). `nonneg` refuses negative numbers.
 */
static int g_int(rd *d, size_t depth, int64_t *out, int nonneg)
{
    const char *p = d->p, *s;
    uint64_t x = 0;
    int neg = 0;
    evs_span v;
    int64_t y;

    if (p < d->end && *p == '-') {
        neg = 1;
        p++;
    }
    s = p;
    if (p < d->end && *p == '0')
        p++; /* no leading zeros: what follows is not part of it */
    else
        while (p < d->end && evs__is_digit((unsigned char)*p))
            x = x * 10 + (uint64_t)(*p++ - '0'); /* wraps past 19 digits */
    if (p == s || p - s > 18 ||
        (p < d->end && (*p == '.' || *p == 'e' || *p == 'E'))) {
        if (value(d, depth, &v) != 0)
            return SYNTAX;
        if (d->err)
            return 0;
        if (evs__json_int(v, &y) != 0 || (nonneg && y < 0))
            fail(d, EVS_EPARSE);
        else
            *out = y;
        return 0;
    }
    d->p = (char *)p;
    if (d->err)
        return 0;
    y = neg ? -(int64_t)x : (int64_t)x;
    if (nonneg && y < 0)
        fail(d, EVS_EPARSE);
    else
        *out = y;
    return 0;
}

static int g_i64(rd *d, size_t depth, int64_t *out)
{
    return g_int(d, depth, out, 0);
}

static int g_u64(rd *d, size_t depth, uint64_t *out)
{
    int64_t x;
    int rc;

    if ((rc = g_int(d, depth, &x, 1)) == 0 && !d->err)
        *out = (uint64_t)x;
    return rc;
}

/* true is 1, any other value 0. */
static int g_bool(rd *d, size_t depth, int *out)
{
    evs_span v;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (d->err)
        return 0;
    if (v.len == 4 && memcmp(v.ptr, "true", 4) == 0)
        *out = 1;
    else if (v.len == 5 && memcmp(v.ptr, "false", 5) == 0)
        *out = 0;
    else
        fail(d, EVS_EPARSE);
    return 0;
}

static int g_enum(rd *d, size_t depth, const char *(*name)(int), int n,
                  int *out)
{
    evs_span v;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (d->err)
        return 0;
    for (int i = 0; i < n; i++) {
        const char *s = name(i);
        size_t l = strlen(s);
        if (v.len == l + 2 && memcmp(v.ptr + 1, s, l) == 0) {
            *out = i;
            return 0;
        }
    }
    fail(d, EVS_EPARSE);
    return 0;
}

/* A member the state does not know: checked, and skipped. */
static int g_skip(rd *d, size_t depth)
{
    evs_span v;

    return value(d, depth, &v);
}

static const char *exec_name(int i)
{
    return evs_exec_status_name((evs_exec_status)i);
}

static const char *path_name(int i)
{
    return evs_path_status_name((evs_path_status)i);
}

static const char *step_name(int i)
{
    return evs_step_status_name((evs_step_status)i);
}

/*
 * Starts reading an object that sits `depth` containers deep: 1 when the
 * value at d->p is one (its '{' is read), 0 when it is some other value
 * (checked, skipped, and an error of meaning).
 */
static int open_obj(rd *d, size_t depth)
{
    if (at(d, '{')) {
        d->p++;
        return 1;
    }
    if (g_skip(d, depth) != 0)
        return SYNTAX;
    fail(d, EVS_EPARSE);
    return 0;
}

/*
 * Reads the array at d->p (a member of the state, one container deep):
 * fn reads each element. With `objects`, an element must be an object,
 * whose '{' is read before fn reads its members (three deep); otherwise
 * fn reads the element itself (two deep).
 */
static int each_elem(rd *d, int (*fn)(rd *d), int objects)
{
    int first = 1, rc;

    if (!at(d, '[')) {
        if (g_skip(d, 1) != 0)
            return SYNTAX;
        fail(d, EVS_EPARSE);
        return 0;
    }
    d->p++;
    while ((rc = element(d, &first)) == 1) {
        if (objects && (rc = open_obj(d, 2)) < 0)
            return rc;
        if ((!objects || rc == 1) && (rc = fn(d)) != 0)
            return rc;
    }
    return rc;
}

static int each_obj(rd *d, int (*fn)(rd *d))
{
    return each_elem(d, fn, 1);
}

/* Reads the members of the object whose '{' was just read, the switch
 * that follows taking each one's value by its key's index; rc (0 to
 * start with) ends the loop on a syntax error. */
#define MEMBERS(keys)                                                         \
    int first_ = 1, next_ = 0, more_ = 0, i_ = -1;                            \
    while (rc == 0 &&                                                         \
           (more_ = member(d, &first_, keys,                                  \
                           (int)(sizeof(keys) / sizeof(keys[0])), &next_,     \
                           &i_)) == 1)                                        \
        switch (i_)

#define END_MEMBERS                                                           \
    if (rc == 0 && more_ < 0)                                                 \
        rc = SYNTAX;                                                          \
    if (rc != 0)                                                              \
        return rc

#define D 3 /* the depth of an element's members */

static const mkey path_keys[] = {
    KEY("id"), KEY("parent"), KEY("status"), KEY("pending"),
    KEY("current_step"), KEY("error"), KEY("started_seq"), KEY("ended_seq"),
    KEY("last_output"), KEY("last_output_seq"),
};

static int load_path(rd *d)
{
    evs_path_state p;
    int64_t pending = 0;
    int st = 0, rc = 0;

    memset(&p, 0, sizeof(p));
    MEMBERS(path_keys)
    {
    case 0: rc = g_str(d, D, &p.id); break;
    case 1: rc = g_str(d, D, &p.parent); break;
    case 2: rc = g_enum(d, D, path_name, EVS_PATH_CANCELLED + 1, &st); break;
    case 3: rc = g_i64(d, D, &pending); break;
    case 4: rc = g_str(d, D, &p.current_step); break;
    case 5: rc = g_json(d, D, &p.error); break;
    case 6: rc = g_u64(d, D, &p.started_seq); break;
    case 7: rc = g_u64(d, D, &p.ended_seq); break;
    case 8: rc = g_json(d, D, &p.last_output); break;
    case 9: rc = g_u64(d, D, &p.last_output_seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (d->err)
        return 0;
    if (pending < 0 || pending > UINT32_MAX) {
        fail(d, EVS_EPARSE); /* no replay counts that far */
        return 0;
    }
    p.status = (evs_path_status)st;
    p.pending = (uint32_t)pending;
    if ((rc = evs__rp_add_path(d->r, &p)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey step_keys[] = {
    KEY("path"),        KEY("name"),      KEY("iteration"),
    KEY("status"),      KEY("attempts"),  KEY("input"),
    KEY("output"),      KEY("error"),     KEY("stored_variable"),
    KEY("step_hash"),   KEY("kind"),      KEY("retry_at"),
    KEY("started_seq"), KEY("ended_seq"),
};

static int load_step(rd *d)
{
    evs_step_state s;
    int64_t att = 0;
    int st = 0, rc = 0;

    memset(&s, 0, sizeof(s));
    s.iteration = -1;
    MEMBERS(step_keys)
    {
    case 0: rc = g_str(d, D, &s.path_id); break;
    case 1: rc = g_str(d, D, &s.name); break;
    case 2: rc = g_i64(d, D, &s.iteration); break;
    case 3: rc = g_enum(d, D, step_name, EVS_STEP_CANCELLED + 1, &st); break;
    case 4: rc = g_i64(d, D, &att); break;
    case 5: rc = g_json(d, D, &s.input); break;
    case 6: rc = g_json(d, D, &s.output); break;
    case 7: rc = g_json(d, D, &s.error); break;
    case 8: rc = g_str(d, D, &s.stored_variable); break;
    case 9: rc = g_str(d, D, &s.step_hash); break;
    case 10: rc = g_str(d, D, &s.kind); break;
    case 11: rc = g_i64(d, D, &s.retry_at_us); break;
    case 12: rc = g_u64(d, D, &s.started_seq); break;
    case 13: rc = g_u64(d, D, &s.ended_seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (d->err)
        return 0;
    if (att < 0 || att > UINT32_MAX) {
        fail(d, EVS_EPARSE);
        return 0;
    }
    s.status = (evs_step_status)st;
    s.attempts = (uint32_t)att;
    if (s.status == EVS_STEP_FAILED)
        d->r->nfailed++;
    if ((rc = evs__rp_add_step(d->r, &s)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey each_keys[] = {
    KEY("path"), KEY("name"), KEY("count"), KEY("done"), KEY("output"),
    KEY("ended_seq"),
};

static int load_each(rd *d)
{
    evs_each_state e;
    int rc = 0;

    memset(&e, 0, sizeof(e));
    MEMBERS(each_keys)
    {
    case 0: rc = g_str(d, D, &e.path_id); break;
    case 1: rc = g_str(d, D, &e.name); break;
    case 2: rc = g_i64(d, D, &e.count); break;
    case 3: rc = g_i64(d, D, &e.done); break;
    case 4: rc = g_json(d, D, &e.output); break;
    case 5: rc = g_u64(d, D, &e.ended_seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (!d->err && (rc = evs__rp_add_each(d->r, &e)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey var_keys[] = {
    KEY("name"), KEY("value"), KEY("set_seq"),
};

static int load_var(rd *d)
{
    evs_var_state x;
    int rc = 0;

    memset(&x, 0, sizeof(x));
    MEMBERS(var_keys)
    {
    case 0: rc = g_str(d, D, &x.name); break;
    case 1: rc = g_json(d, D, &x.value); break;
    case 2: rc = g_u64(d, D, &x.set_seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (!d->err && (rc = evs__rp_add_var(d->r, &x)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey signal_keys[] = {
    KEY("id"),           KEY("name"), KEY("payload"), KEY("received_seq"),
    KEY("consumed_seq"), KEY("path"), KEY("step"),
};

static int load_signal(rd *d)
{
    evs_replay *r = d->r;
    evs_signal_state s;
    int rc = 0;

    memset(&s, 0, sizeof(s));
    MEMBERS(signal_keys)
    {
    case 0: rc = g_str(d, D, &s.id); break;
    case 1: rc = g_str(d, D, &s.name); break;
    case 2: rc = g_json(d, D, &s.payload); break;
    case 3: rc = g_u64(d, D, &s.received_seq); break;
    case 4: rc = g_u64(d, D, &s.consumed_seq); break;
    case 5: rc = g_str(d, D, &s.consumed_by_path); break;
    case 6: rc = g_str(d, D, &s.consumed_by_step); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (d->err)
        return 0;
    if (!evs__rp_grow(r, (void **)&r->signals.v, &r->signals.cap,
                      r->signals.n, sizeof(s))) {
        fail(d, -ENOMEM);
        return 0;
    }
    r->signals.v[r->signals.n++] = s;
    return 0;
}

static const mkey version_keys[] = {
    KEY("change_id"), KEY("version"), KEY("min"), KEY("max"), KEY("seq"),
};

static int load_version(rd *d)
{
    evs_version_state x;
    int rc = 0;

    memset(&x, 0, sizeof(x));
    MEMBERS(version_keys)
    {
    case 0: rc = g_str(d, D, &x.change_id); break;
    case 1: rc = g_i64(d, D, &x.version); break;
    case 2: rc = g_i64(d, D, &x.min); break;
    case 3: rc = g_i64(d, D, &x.max); break;
    case 4: rc = g_u64(d, D, &x.seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (!d->err && (rc = evs__rp_add_version(d->r, &x)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey timer_keys[] = {
    KEY("id"),          KEY("path"),      KEY("step"),      KEY("fire_at"),
    KEY("started_seq"), KEY("fired_seq"), KEY("cancelled"),
};

static int load_timer(rd *d)
{
    evs_timer_state t;
    int rc = 0;

    memset(&t, 0, sizeof(t));
    MEMBERS(timer_keys)
    {
    case 0: rc = g_str(d, D, &t.timer_id); break;
    case 1: rc = g_str(d, D, &t.path_id); break;
    case 2: rc = g_str(d, D, &t.step); break;
    case 3: rc = g_i64(d, D, &t.fire_at_us); break;
    case 4: rc = g_u64(d, D, &t.started_seq); break;
    case 5: rc = g_u64(d, D, &t.fired_seq); break;
    case 6: rc = g_bool(d, D, &t.cancelled); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (!d->err && (rc = evs__rp_add_timer(d->r, &t)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey wait_keys[] = {
    KEY("path"),        KEY("step"),      KEY("signal"),
    KEY("timeout_at"),  KEY("started_seq"), KEY("ended_seq"),
    KEY("timed_out"),   KEY("signal_seq"),
};

static int load_wait(rd *d)
{
    evs_replay *r = d->r;
    evs_wait_state w;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    MEMBERS(wait_keys)
    {
    case 0: rc = g_str(d, D, &w.path_id); break;
    case 1: rc = g_str(d, D, &w.step); break;
    case 2: rc = g_str(d, D, &w.signal); break;
    case 3: rc = g_i64(d, D, &w.timeout_at_us); break;
    case 4: rc = g_u64(d, D, &w.started_seq); break;
    case 5: rc = g_u64(d, D, &w.ended_seq); break;
    case 6: rc = g_bool(d, D, &w.timed_out); break;
    case 7: rc = g_u64(d, D, &w.signal_seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (d->err)
        return 0;
    if (!evs__rp_grow(r, (void **)&r->waits.v, &r->waits.cap, r->waits.n,
                      sizeof(w))) {
        fail(d, -ENOMEM);
        return 0;
    }
    r->waits.v[r->waits.n++] = w;
    if (!w.ended_seq && (rc = evs__rp_note_pending(r, r->waits.n - 1)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey name_keys[] = {
    KEY("name"), KEY("kind"), KEY("step_hash"), KEY("started_seq"),
    KEY("output"), KEY("output_seq"),
};

static int load_name(rd *d)
{
    evs_stepname_state n;
    int rc = 0;

    memset(&n, 0, sizeof(n));
    MEMBERS(name_keys)
    {
    case 0: rc = g_str(d, D, &n.name); break;
    case 1: rc = g_str(d, D, &n.kind); break;
    case 2: rc = g_str(d, D, &n.step_hash); break;
    case 3: rc = g_u64(d, D, &n.started_seq); break;
    case 4: rc = g_json(d, D, &n.output); break;
    case 5: rc = g_u64(d, D, &n.output_seq); break;
    default: rc = g_skip(d, D); break;
    }
    END_MEMBERS;
    if (!d->err && (rc = evs__rp_add_stepname(d->r, &n)) != 0)
        fail(d, rc);
    return 0;
}

#undef D

/* One string of `consumed_ids`. */
static int load_gone(rd *d)
{
    evs_span id;
    int rc;

    if ((rc = g_str(d, 2, &id)) != 0)
        return rc;
    if (!d->err && (rc = evs__rp_add_gone(d->r, id)) != 0)
        fail(d, rc);
    return 0;
}

static const mkey failed_keys[] = {
    KEY("path"), KEY("step"), KEY("iteration"), KEY("seq"),
};

/* `failed`, whose members sit two deep. */
static int load_failed(rd *d)
{
    evs_exec_state *x = &d->r->exec;
    int rc;

    if ((rc = open_obj(d, 1)) <= 0)
        return rc;
    rc = 0;
    MEMBERS(failed_keys)
    {
    case 0: rc = g_str(d, 2, &x->failed_path); break;
    case 1: rc = g_str(d, 2, &x->failed_step); break;
    case 2: rc = g_i64(d, 2, &x->failed_iteration); break;
    case 3: rc = g_u64(d, 2, &x->failed_seq); break;
    default: rc = g_skip(d, 2); break;
    }
    END_MEMBERS;
    return 0;
}

/*
 * The smallest step the writer writes; the steps are most of a large
 * state, so the text left when they start, divided by this, bounds their
 * number: the vector is sized once (the bound is seldom more than three
 * times the count, and what is not used is only address space) instead
 * of being copied at every doubling, which for 464k steps cost an eighth
 * of the load. Only large states bother.
 */
#define STEP_TEXT_MIN                                                         \
    (sizeof("{\"path\":\"\",\"name\":\"\",\"iteration\":0,"                   \
            "\"status\":\"failed\",\"attempts\":0,\"input\":null,"            \
            "\"output\":null,\"error\":null,"                                 \
            "\"stored_variable\":\"\",\"step_hash\":\"\","                    \
            "\"kind\":\"\",\"retry_at\":0,\"started_seq\":0,"                 \
            "\"ended_seq\":0},") -                                            \
     1)
#define RESERVE_MIN ((size_t)1 << 20)

static void reserve_steps(rd *d)
{
    evs_replay *r = d->r;
    size_t left = (size_t)(d->end - d->p);

    if (left >= RESERVE_MIN && !d->err)
        evs__rp_reserve(r, (void **)&r->steps.v, &r->steps.cap,
                        r->steps.n + left / STEP_TEXT_MIN,
                        sizeof(*r->steps.v));
}

static const mkey state_keys[] = {
    KEY("v"),          KEY("status"),          KEY("status_before_pause"),
    KEY("execution_id"), KEY("workflow_name"), KEY("inputs"),
    KEY("outputs"),    KEY("error"),           KEY("definition"),
    KEY("definition_hash"), KEY("inputs_hash"), KEY("lineage"),
    KEY("continued_as"), KEY("started_at"),    KEY("ended_at"),
    KEY("last_seq"),   KEY("terminal"),        KEY("failed"),
    KEY("paths"),      KEY("steps"),           KEY("each"),
    KEY("variables"),  KEY("signals"),         KEY("versions"),
    KEY("timers"),     KEY("waits"),           KEY("names"),
    KEY("consumed_ids"), KEY("compact"),
};

/* The whole state: an object, then only whitespace. */
static int load_all(rd *d)
{
    evs_exec_state *x = &d->r->exec;
    int64_t ver = -1;
    int st = 0, stp = 0, compact = 0, rc = 0;

    ws(d);
    if (!at(d, '{'))
        return SYNTAX; /* JSON or not, it is no state */
    d->p++;
    MEMBERS(state_keys)
    {
    case 0:
        if ((rc = g_i64(d, 1, &ver)) == 0 && !d->err && ver != STATE_VERSION)
            fail(d, EVS_EFORMAT);
        break;
    case 1: rc = g_enum(d, 1, exec_name, 8, &st); break;
    case 2: rc = g_enum(d, 1, exec_name, 8, &stp); break;
    case 3: rc = g_str(d, 1, &x->execution_id); break;
    case 4: rc = g_str(d, 1, &x->workflow_name); break;
    case 5: rc = g_json(d, 1, &x->inputs); break;
    case 6: rc = g_json(d, 1, &x->outputs); break;
    case 7: rc = g_json(d, 1, &x->error); break;
    case 8: rc = g_json(d, 1, &x->definition); break;
    case 9: rc = g_str(d, 1, &x->definition_hash); break;
    case 10: rc = g_str(d, 1, &x->inputs_hash); break;
    case 11: rc = g_json(d, 1, &x->lineage); break;
    case 12: rc = g_str(d, 1, &x->continued_as); break;
    case 13: rc = g_i64(d, 1, &x->started_at_us); break;
    case 14: rc = g_i64(d, 1, &x->ended_at_us); break;
    case 15: rc = g_u64(d, 1, &x->last_seq); break;
    case 16: rc = g_bool(d, 1, &d->r->terminal); break;
    case 17: rc = load_failed(d); break;
    case 18: rc = each_obj(d, load_path); break;
    case 19:
        reserve_steps(d);
        rc = each_obj(d, load_step);
        break;
    case 20: rc = each_obj(d, load_each); break;
    case 21: rc = each_obj(d, load_var); break;
    case 22: rc = each_obj(d, load_signal); break;
    case 23: rc = each_obj(d, load_version); break;
    case 24: rc = each_obj(d, load_timer); break;
    case 25: rc = each_obj(d, load_wait); break;
    case 26: rc = each_obj(d, load_name); break;
    case 27: rc = each_elem(d, load_gone, 0); break;
    case 28: rc = g_bool(d, 1, &compact); break;
    default: rc = g_skip(d, 1); break;
    }
    END_MEMBERS;
    ws(d);
    if (d->p != d->end)
        return SYNTAX;
    if (d->err)
        return d->err;
    x->status = (evs_exec_status)st;
    x->status_before_pause = (evs_exec_status)stp;
    if (ver < 0)
        return EVS_EPARSE;
    /* A full replayer cannot have back what a compact state dropped; a
     * compact one drops from a full state what it would have dropped
     * while replaying it. */
    if (compact && !d->r->opts.compact)
        return EVS_EFORMAT;
    if (!compact && d->r->opts.compact)
        return evs__rp_drop(d->r, EVS__DROP_ALL);
    return 0;
}

/* Loads the state from text[0..len), which the replayer already owns
 * and which the load may change (escapes are undone in place). */
static int load_owned(evs_replay *r, char *text, size_t len)
{
    rd d = {r, text, text + len, 0};
    int rc = load_all(&d);

    if (rc == SYNTAX)
        rc = EVS_EPARSE;
    if (rc != 0)
        evs__rp_reset(r);
    return rc;
}

int evs_replay_load_state(evs_replay *r, const char *json, size_t len)
{
    evs_span text;
    int rc;

    evs__rp_reset(r);
    if (len == 0)
        return EVS_EPARSE;
    /* One copy, into the arena, which the state's spans then point
     * into: it lives as long as they do. */
    if ((rc = evs__rp_copy(r, (evs_span){json, len}, &text)) != 0)
        return rc;
    return load_owned(r, (char *)text.ptr, len);
}

int evs__rp_load_state_snapshot(evs_replay *r, evs_snapshot *sn)
{
    int rc;

    /* Kept only when both sides use the C library's memory: a replayer
     * with an allocator of its own has all its memory from it, and one
     * does not come to depend on the store's allocator (whose context
     * may end with the store). */
    if ((r->alloc != NULL && r->alloc != evs_default_allocator()) ||
        !evs__snapshot_libc(sn)) {
        rc = evs_replay_load_state(r, sn->state.ptr, sn->state.len);
        evs_snapshot_free(sn);
        return rc;
    }
    evs__rp_reset(r);
    r->snapshot = sn;
    if (sn->state.len == 0) {
        evs__rp_reset(r);
        return EVS_EPARSE;
    }
    return load_owned(r, (char *)sn->state.ptr, sn->state.len);
}
