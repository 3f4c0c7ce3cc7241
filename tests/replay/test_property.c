/*
 * test_property.c: snapshot plus tail equals a full replay. A generator
 * of random valid histories, from fixed seeds, models the state machine
 * (paths and branches, steps with failures, retries and skips, `each`
 * iterations, waits and signals in either order, timers, version
 * decisions, variables, pause and resume, and maybe a terminal event).
 * For every history:
 *  1. a strict replay of the whole history breaks no rule;
 *  2. for several cut points k, the state after events 1..k written as
 *     JSON, loaded into a fresh replayer and given events k+1..n, gives
 *     exactly the bytes of the full replay's state;
 *  3. the state after every prefix round-trips through JSON unchanged
 *     (every prefix of one history in PREFIX_EVERY, and for the others
 *     the cut points and a few random prefixes, to keep the run short;
 *     EVS_PROPERTY_ALL=1 in the environment checks every prefix of
 *     every history).
 */
#include <criterion/criterion.h>

#include "histories.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(property, .fini = hist_leak_check);

/* ------------------------------------------------------------------ */
/* Randomness                                                         */
/* ------------------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t next(rng *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int below(rng *g, int n)
{
    return (int)(next(g) % (uint64_t)n);
}

static int chance(rng *g, int pct)
{
    return below(g, 100) < pct;
}

/* ------------------------------------------------------------------ */
/* JSON text                                                          */
/* ------------------------------------------------------------------ */

typedef struct buf {
    char p[8192];
    size_t n;
} buf;

static void put(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(b->p + b->n, sizeof(b->p) - b->n, fmt, ap);
    va_end(ap);
    cr_assert(k >= 0 && (size_t)k < sizeof(b->p) - b->n, "buffer full");
    b->n += (size_t)k;
}

/* A JSON string literal of s. */
static void put_str(buf *b, const char *s)
{
    put(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            put(b, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            put(b, "\\u%04x", *s);
        else
            put(b, "%c", *s);
    }
    put(b, "\"");
}

/* A random JSON value: numbers in several spellings, strings with
 * escapes, literals, and small arrays and objects. */
static void put_value(rng *g, buf *b, int depth)
{
    switch (below(g, depth > 1 ? 4 : 6)) {
    case 0:
        put(b, "%d", below(g, 2001) - 1000);
        break;
    case 1: {
        static const char *const nums[] = {"1.5e3", "-0.25", "0", "2E-7",
                                           "123456789012345678"};
        put(b, "%s", nums[below(g, 5)]);
        break;
    }
    case 2: {
        static const char *const strs[] = {
            "\"plain\"", "\"q \\\"x\\\" \\\\ y\"", "\"\\u00e9t\\u00e9\"",
            "\"line\\nbreak\\ttab\"", "\"caf\xc3\xa9\"", "\"\""};
        put(b, "%s", strs[below(g, 6)]);
        break;
    }
    case 3: {
        static const char *const lits[] = {"true", "false", "null"};
        put(b, "%s", lits[below(g, 3)]);
        break;
    }
    case 4: {
        int n = below(g, 4);
        put(b, "[");
        for (int i = 0; i < n; i++) {
            if (i)
                put(b, ",");
            put_value(g, b, depth + 1);
        }
        put(b, "]");
        break;
    }
    default: {
        int n = below(g, 3);
        put(b, "{");
        for (int i = 0; i < n; i++) {
            put(b, "%s\"k%d\":", i ? "," : "", i);
            put_value(g, b, depth + 1);
        }
        put(b, "}");
        break;
    }
    }
}

/* A random RFC 3339 time in 2026-11-22. */
static void put_time(rng *g, buf *b)
{
    put(b, "\"2026-11-22T%02d:%02d:%02d.%06dZ\"", below(g, 24), below(g, 60),
        below(g, 60), below(g, 1000000));
}

/* ------------------------------------------------------------------ */
/* The model                                                          */
/* ------------------------------------------------------------------ */

enum { S_NONE = 0, S_RUNNING, S_COMPLETED, S_FAILED, S_RETRYING, S_SKIPPED };

#define MAXP 16
#define NPLAIN 4
#define MAXIT 6
#define MAXT 320

static const char *const plain_names[NPLAIN] = {"fetch", "s\xc3\xa9nd",
                                                "q\"uote", "back\\slash"};
static const char *const each_name = "items";

typedef struct mpath {
    char id[32];
    int live;
    int wait;   /* a wait is pending */
    int timers; /* pending timers */
    unsigned char plain[NPLAIN];
    int count;  /* items of its `each`, 0 until first started */
    unsigned char it[MAXIT];
} mpath;

typedef struct model {
    rng *g;
    hist *h;
    mpath p[MAXP];
    int np, next_path;
    struct {
        char id[16];
        int path, pending;
    } t[MAXT];
    int nt;
    struct {
        uint64_t seq;
        int consumed;
    } s[MAXT];
    int ns;
    int versions, paused;
} model;

static void path_id(char *out, size_t cap, int k)
{
    switch (k % 4) {
    case 2:
        snprintf(out, cap, "p%d-\xc3\xa9\"x", k);
        break;
    case 3:
        snprintf(out, cap, "p%d\\y", k);
        break;
    default:
        snprintf(out, cap, "p%d", k);
        break;
    }
}

static int live_paths(const model *m, int *out)
{
    int n = 0;

    for (int i = 0; i < m->np; i++)
        if (m->p[i].live)
            out[n++] = i;
    return n;
}

static int any_live(model *m)
{
    int l[MAXP], n = live_paths(m, l);

    return n ? l[below(m->g, n)] : -1;
}

/* The path execution-level events name: a live one, else the root. */
static const char *some_path(model *m)
{
    int i = any_live(m);

    return m->p[i < 0 ? 0 : i].id;
}

static void emit(model *m, const char *type, const char *path,
                 const char *step, const buf *data)
{
    hist_add(m->h, type, path, step, "%.*s", (int)data->n, data->p);
}

/* Adds a new path to the model; returns its index or -1 if full. */
static int add_path(model *m)
{
    mpath *p;

    if (m->np == MAXP)
        return -1;
    p = &m->p[m->np];
    memset(p, 0, sizeof(*p));
    path_id(p->id, sizeof(p->id), ++m->next_path);
    p->live = 1;
    return m->np++;
}

static int gen_branch(model *m)
{
    int src = any_live(m), n;
    buf d = {.n = 0};

    if (src < 0 || m->np >= MAXP - 1)
        return 0;
    n = 1 + below(m->g, 3);
    put(&d, "{\"new_paths\":[");
    for (int i = 0; i < n; i++) {
        int k = add_path(m);
        if (k < 0)
            break;
        put(&d, "%s{\"id\":", i ? "," : "");
        put_str(&d, m->p[k].id);
        if (chance(m->g, 70)) {
            put(&d, ",\"current_step\":");
            put_str(&d, plain_names[below(m->g, NPLAIN)]);
        }
        put(&d, "}");
    }
    put(&d, "]}");
    emit(m, "path_branched", m->p[src].id, NULL, &d);
    return 1;
}

static int gen_path_started(model *m)
{
    buf d = {.n = 0};
    int i;

    if (chance(m->g, 50)) {
        /* Confirms a live path. */
        if ((i = any_live(m)) < 0)
            return 0;
        put(&d, "{\"current_step\":");
        put_str(&d, plain_names[below(m->g, NPLAIN)]);
        put(&d, "}");
        emit(m, "path_started", m->p[i].id, NULL, &d);
        return 1;
    }
    /* A new path under any existing one, or with no parent. */
    {
        int parent = below(m->g, m->np);
        if ((i = add_path(m)) < 0)
            return 0;
        put(&d, "{");
        if (chance(m->g, 80)) {
            put(&d, "\"parent\":");
            put_str(&d, m->p[parent].id);
        }
        put(&d, "}");
        emit(m, "path_started", m->p[i].id, NULL, &d);
        return 1;
    }
}

/* A step of path pi: plain step k (0..NPLAIN-1) or iteration k-NPLAIN. */
static unsigned char *step_status(mpath *p, int k)
{
    return k < NPLAIN ? &p->plain[k] : &p->it[k - NPLAIN];
}

static const char *step_name(int k)
{
    return k < NPLAIN ? plain_names[k] : each_name;
}

/* Picks a step of a live path whose status is in `mask`; -1 if none. */
static int pick_step(model *m, int *pi, unsigned mask, int allow_new_each)
{
    int l[MAXP], nl = live_paths(m, l);
    int cand_p[MAXP * (NPLAIN + MAXIT)], cand_k[MAXP * (NPLAIN + MAXIT)];
    int n = 0;

    for (int a = 0; a < nl; a++) {
        mpath *p = &m->p[l[a]];
        int nk = NPLAIN + (p->count ? p->count : allow_new_each ? 1 : 0);
        for (int k = 0; k < nk; k++)
            if (mask & (1u << *step_status(p, k))) {
                cand_p[n] = l[a];
                cand_k[n] = k;
                n++;
            }
    }
    if (!n)
        return -1;
    n = below(m->g, n);
    *pi = cand_p[n];
    return cand_k[n];
}

static void put_iteration(buf *d, int k, int first)
{
    if (k >= NPLAIN)
        put(d, "%s\"iteration\":%d", first ? "" : ",", k - NPLAIN);
}

static int gen_step_started(model *m)
{
    unsigned mask = 1u << S_NONE | 1u << S_RUNNING | 1u << S_FAILED |
                    1u << S_RETRYING;
    buf d = {.n = 0};
    mpath *p;
    int pi, k = pick_step(m, &pi, mask, 1);

    if (k < 0)
        return 0;
    p = &m->p[pi];
    if (k >= NPLAIN && !p->count) {
        /* The first start of the `each`: any of its items. */
        p->count = 1 + below(m->g, MAXIT);
        k = NPLAIN + below(m->g, p->count);
    }
    put(&d, "{\"attempt\":%d", 1 + below(m->g, 3));
    put_iteration(&d, k, 0);
    if (k >= NPLAIN && chance(m->g, 80))
        put(&d, ",\"count\":%d", p->count);
    if (chance(m->g, 40)) {
        put(&d, ",\"input\":");
        put_value(m->g, &d, 0);
    }
    if (chance(m->g, 30))
        put(&d, ",\"step_hash\":\"h%d\",\"kind\":\"action\"",
            below(m->g, 100));
    put(&d, "}");
    *step_status(p, k) = S_RUNNING;
    emit(m, "step_started", p->id, step_name(k), &d);
    return 1;
}

static int gen_step_outcome(model *m, int failed)
{
    buf d = {.n = 0};
    mpath *p;
    int pi, k = pick_step(m, &pi, 1u << S_RUNNING, 0);

    if (k < 0)
        return 0;
    p = &m->p[pi];
    put(&d, "{");
    if (failed) {
        put(&d, "\"error\":{\"type\":\"E%d\",\"message\":", below(m->g, 5));
        put_value(m->g, &d, 2);
        put(&d, ",\"retryable\":%s}", chance(m->g, 50) ? "true" : "false");
    } else {
        if (chance(m->g, 85)) {
            put(&d, "\"output\":");
            put_value(m->g, &d, 0);
        }
        if (chance(m->g, 40))
            put(&d, "%s\"stored_variable\":\"v%d\"", d.n > 1 ? "," : "",
                below(m->g, 6));
    }
    put_iteration(&d, k, d.n == 1);
    put(&d, "}");
    *step_status(p, k) = failed ? S_FAILED : S_COMPLETED;
    emit(m, failed ? "step_failed" : "step_completed", p->id, step_name(k),
         &d);
    return 1;
}

static int gen_retry(model *m)
{
    buf d = {.n = 0};
    mpath *p;
    int pi, k = pick_step(m, &pi, 1u << S_FAILED, 0);

    if (k < 0)
        return 0;
    p = &m->p[pi];
    put(&d, "{\"attempt\":%d,", 2 + below(m->g, 3));
    if (chance(m->g, 50)) {
        put(&d, "\"fire_at\":");
        put_time(m->g, &d);
    } else {
        put(&d, "\"delay_ms\":%d", below(m->g, 100000));
    }
    put_iteration(&d, k, 0);
    put(&d, "}");
    *step_status(p, k) = S_RETRYING;
    emit(m, "retry_scheduled", p->id, step_name(k), &d);
    return 1;
}

/* Skips any step: one never started, running, failed, retrying, or even
 * one already done (the rules allow it). */
static int gen_skip(model *m)
{
    buf d = {.n = 0};
    mpath *p;
    int pi, k = pick_step(m, &pi, 0x3f, 0);

    if (k < 0)
        return 0;
    p = &m->p[pi];
    put(&d, "{\"output\":");
    put_value(m->g, &d, 1);
    if (chance(m->g, 30))
        put(&d, ",\"stored_variable\":\"v%d\"", below(m->g, 6));
    put_iteration(&d, k, 0);
    put(&d, "}");
    *step_status(p, k) = S_SKIPPED;
    emit(m, "step_skipped", p->id, step_name(k), &d);
    return 1;
}

/* Ends a live path that holds no wait and no timer. */
static int gen_path_end(model *m)
{
    int l[MAXP], nl = live_paths(m, l), c[MAXP], n = 0;
    buf d = {.n = 0};
    mpath *p;

    for (int i = 0; i < nl; i++)
        if (!m->p[l[i]].wait && !m->p[l[i]].timers)
            c[n++] = l[i];
    if (!n)
        return 0;
    p = &m->p[c[below(m->g, n)]];
    p->live = 0;
    if (chance(m->g, 30)) {
        put(&d, "{\"error\":");
        put_value(m->g, &d, 1);
        put(&d, "}");
        emit(m, "path_failed", p->id, NULL, &d);
    } else {
        put(&d, "{}");
        emit(m, "path_completed", p->id, NULL, &d);
    }
    return 1;
}

static int gen_variable(model *m)
{
    buf d = {.n = 0};

    put(&d, "{\"name\":\"v%d\"", below(m->g, 6));
    if (chance(m->g, 85)) {
        put(&d, ",\"value\":");
        put_value(m->g, &d, 0);
    }
    put(&d, "}");
    emit(m, "variable_set", some_path(m), NULL, &d);
    return 1;
}

static int gen_signal(model *m)
{
    buf d = {.n = 0};
    const char *step = NULL;

    if (m->ns == MAXT)
        return 0;
    switch (below(m->g, 3)) {
    case 0:
        put(&d, "{\"signal\":\"sig%d\",\"payload\":", below(m->g, 4));
        put_value(m->g, &d, 0);
        put(&d, "}");
        break;
    case 1:
        put(&d, "{\"name\":\"n%d\"}", below(m->g, 4));
        break;
    default:
        put(&d, "{}");
        step = "hook";
        break;
    }
    m->s[m->ns].seq = m->h->n + 1;
    m->s[m->ns].consumed = 0;
    m->ns++;
    emit(m, "signal_received", some_path(m), step, &d);
    return 1;
}

/* An unconsumed signal, marked consumed; -1 if none. */
static int take_signal(model *m)
{
    int c[MAXT], n = 0;

    for (int i = 0; i < m->ns; i++)
        if (!m->s[i].consumed)
            c[n++] = i;
    if (!n)
        return -1;
    n = c[below(m->g, n)];
    m->s[n].consumed = 1;
    return n;
}

static int gen_consume(model *m)
{
    buf d = {.n = 0};
    int i = take_signal(m);

    if (i < 0)
        return 0;
    put(&d, "{\"signal_seq\":%" PRIu64 "}", m->s[i].seq);
    emit(m, "signal_consumed", some_path(m), "taker", &d);
    return 1;
}

static int gen_wait(model *m)
{
    int l[MAXP], nl = live_paths(m, l), c[MAXP], n = 0;
    buf d = {.n = 0};
    mpath *p;

    for (int i = 0; i < nl; i++)
        if (!m->p[l[i]].wait)
            c[n++] = l[i];
    if (!n)
        return 0;
    p = &m->p[c[below(m->g, n)]];
    p->wait = 1;
    put(&d, "{\"signal\":\"sig%d\"", below(m->g, 4));
    if (chance(m->g, 60)) {
        put(&d, ",\"timeout_at\":");
        put_time(m->g, &d);
    }
    put(&d, "}");
    emit(m, "wait_started", p->id, "gate", &d);
    return 1;
}

static int gen_wait_end(model *m)
{
    int c[MAXP], n = 0, sig;
    buf d = {.n = 0};
    mpath *p;

    for (int i = 0; i < m->np; i++)
        if (m->p[i].wait)
            c[n++] = i;
    if (!n)
        return 0;
    p = &m->p[c[below(m->g, n)]];
    p->wait = 0;
    if (chance(m->g, 60) && (sig = take_signal(m)) >= 0)
        put(&d, "{\"signal_seq\":%" PRIu64 "}", m->s[sig].seq);
    else if (chance(m->g, 70))
        put(&d, "{\"timed_out\":true}");
    else
        put(&d, "{\"timed_out\":false}");
    emit(m, "wait_ended", p->id, "gate", &d);
    return 1;
}

static int gen_timer(model *m)
{
    int i = any_live(m);
    buf d = {.n = 0};

    if (i < 0 || m->nt == MAXT)
        return 0;
    snprintf(m->t[m->nt].id, sizeof(m->t[m->nt].id), "t%d", m->nt);
    m->t[m->nt].path = i;
    m->t[m->nt].pending = 1;
    put(&d, "{\"timer_id\":\"%s\"", m->t[m->nt].id);
    if (chance(m->g, 80)) {
        put(&d, ",\"fire_at\":");
        put_time(m->g, &d);
    }
    put(&d, "}");
    m->nt++;
    m->p[i].timers++;
    emit(m, "timer_started", m->p[i].id, "nap", &d);
    return 1;
}

static int gen_timer_end(model *m)
{
    int c[MAXT], n = 0, cancel = chance(m->g, 30);
    buf d = {.n = 0};

    for (int i = 0; i < m->nt; i++)
        if (m->t[i].pending)
            c[n++] = i;
    if (!n)
        return 0;
    n = c[below(m->g, n)];
    m->t[n].pending = 0;
    m->p[m->t[n].path].timers--;
    put(&d, "{\"timer_id\":\"%s\"}", m->t[n].id);
    emit(m, cancel ? "timer_cancelled" : "timer_fired",
         m->p[m->t[n].path].id, "nap", &d);
    return 1;
}

static int gen_version(model *m)
{
    buf d = {.n = 0};
    int lo = below(m->g, 3), hi = lo + below(m->g, 3);
    int v = lo + below(m->g, hi - lo + 1);

    put(&d, "{\"change_id\":\"change-%d\",\"version\":%d", m->versions++, v);
    if (chance(m->g, 70))
        put(&d, ",\"min\":%d,\"max\":%d", lo, hi);
    put(&d, "}");
    emit(m, "version_decision", some_path(m), NULL, &d);
    return 1;
}

static int gen_pause(model *m)
{
    buf d = {.n = 0};

    put(&d, m->paused ? "{}" : "{\"reason\":\"ops\"}");
    emit(m, m->paused ? "execution_resumed" : "execution_paused",
         some_path(m), NULL, &d);
    m->paused = !m->paused;
    return 1;
}

static int gen_unknown(model *m)
{
    buf d = {.n = 0};

    put_value(m->g, &d, 0);
    emit(m, below(m->g, 2) ? "x_custom_event" : "future_thing",
         some_path(m), NULL, &d);
    return 1;
}

static void gen_terminal(model *m)
{
    static const char *const types[] = {
        "execution_completed", "execution_failed", "execution_terminated",
        "execution_continue_as_new"};
    static const char *const keys[] = {"outputs", "error", "reason",
                                       "successor"};
    int t = below(m->g, 4);
    buf d = {.n = 0};

    put(&d, "{\"%s\":", keys[t]);
    if (t == 3)
        put(&d, "\"next-%d\"", below(m->g, 1000));
    else
        put_value(m->g, &d, 0);
    put(&d, "}");
    emit(m, types[t], m->p[0].id, NULL, &d);
}

typedef int (*gen_fn)(model *m);

static int gen_completed(model *m)
{
    return gen_step_outcome(m, 0);
}

static int gen_failed(model *m)
{
    return gen_step_outcome(m, 1);
}

static const struct {
    gen_fn fn;
    int weight;
} gens[] = {
    {gen_branch, 3},     {gen_path_started, 2}, {gen_step_started, 12},
    {gen_completed, 10}, {gen_failed, 4},       {gen_retry, 4},
    {gen_skip, 2},       {gen_path_end, 2},     {gen_variable, 3},
    {gen_signal, 3},     {gen_consume, 2},      {gen_wait, 3},
    {gen_wait_end, 3},   {gen_timer, 3},        {gen_timer_end, 3},
    {gen_version, 2},    {gen_pause, 2},        {gen_unknown, 1},
};

/* Builds a random valid history of 20..300 events. */
static void generate(rng *g, hist *h)
{
    int total = 0, target = 20 + below(g, 281), term = chance(g, 60);
    buf d = {.n = 0};
    model *m = calloc(1, sizeof(*m));

    cr_assert_not_null(m);
    for (size_t i = 0; i < sizeof(gens) / sizeof(gens[0]); i++)
        total += gens[i].weight;
    m->g = g;
    m->h = h;
    hist_init(h, 1);
    m->np = 1;
    snprintf(m->p[0].id, sizeof(m->p[0].id), "%s",
             chance(g, 80) ? "main" : "r\xc3\xb6\xc3\xb6t");
    m->p[0].live = 1;
    put(&d, "{\"workflow_name\":\"prop\",\"inputs\":");
    put_value(g, &d, 0);
    if (chance(g, 50))
        put(&d, ",\"definition\":{\"steps\":[]},\"definition_hash\":\"dh\","
                "\"inputs_hash\":\"ih\",\"lineage\":{\"retry_of\":\"r0\"}");
    put(&d, "}");
    emit(m, "execution_started", m->p[0].id, NULL, &d);
    while ((int)h->n < target - term) {
        int w = below(g, total);
        size_t i = 0;
        while (w >= gens[i].weight)
            w -= gens[i++].weight;
        if (!gens[i].fn(m))
            gen_variable(m); /* always possible */
    }
    if (term)
        gen_terminal(m);
    free(m);
}

/* ------------------------------------------------------------------ */
/* The checks                                                         */
/* ------------------------------------------------------------------ */

static void dump(const hist *h, size_t upto)
{
    for (size_t i = 0; i < h->n && i <= upto; i++) {
        const evs_event *e = &h->ev[i];
        fprintf(stderr, "%4" PRIu64 " %-26.*s %-12.*s %-12.*s %.*s\n",
                e->sequence, (int)e->event_type.len, e->event_type.ptr,
                (int)e->path_id.len, e->path_id.ptr, (int)e->step_name.len,
                e->step_name.ptr, (int)e->data.len, e->data.ptr);
    }
}

typedef struct totals {
    size_t histories, events, prefixes, cuts, terminal;
} totals;

static char *state_of(const evs_replay *r, size_t *len)
{
    char *s = NULL;

    cr_assert_eq(evs_replay_state_json(r, &s, len), 0);
    return s;
}

static void check_history(const hist *h, rng *g, evs_replay *scratch,
                          totals *t, uint64_t seed, int every_prefix)
{
    enum { NCUT = 4, NSAMPLE = 8 };
    size_t cut[NCUT], sample[NSAMPLE], nfinal;
    char *at_cut[NCUT] = {NULL}, *final;
    size_t at_cut_len[NCUT];
    evs_replay *r = hist_replayer();
    evs_violation v;

    for (int i = 0; i < NCUT; i++)
        cut[i] = 1 + (size_t)below(g, (int)h->n);
    for (int i = 0; i < NSAMPLE; i++)
        sample[i] = 1 + (size_t)below(g, (int)h->n);

    for (size_t i = 0; i < h->n; i++) {
        char *a, *b;
        size_t la, lb;
        int rc, check = every_prefix;

        memset(&v, 0, sizeof(v));
        rc = evs_replay_apply(r, &h->ev[i], &v);
        if (rc != 0) {
            dump(h, i);
            cr_assert_fail("seed %" PRIu64 ": sequence %" PRIu64
                           " broke %s: %s",
                           seed, v.sequence, v.rule ? v.rule : "?", v.msg);
        }
        for (int k = 0; k < NCUT; k++)
            check |= cut[k] == i + 1;
        for (int k = 0; k < NSAMPLE; k++)
            check |= sample[k] == i + 1;
        if (!check)
            continue;
        /* 3: the prefix round-trips. */
        a = state_of(r, &la);
        cr_assert_eq(evs_replay_load_state(scratch, a, la), 0,
                     "seed %" PRIu64 " at %zu: %s", seed, i + 1, a);
        b = state_of(scratch, &lb);
        if (la != lb || memcmp(a, b, la) != 0) {
            dump(h, i);
            cr_assert_fail("seed %" PRIu64 " at %zu: state changed by a "
                           "round trip:\n%.*s\n%.*s",
                           seed, i + 1, (int)la, a, (int)lb, b);
        }
        free(b);
        t->prefixes++;
        for (int k = 0; k < NCUT; k++)
            if (cut[k] == i + 1 && !at_cut[k]) {
                at_cut[k] = a;
                at_cut_len[k] = la;
                a = NULL;
            }
        free(a);
    }
    final = state_of(r, &nfinal);
    t->terminal += memmem(final, nfinal, "\"terminal\":true", 15) != NULL;

    /* 2: the state at k plus events k+1..n gives the full replay's. */
    for (int k = 0; k < NCUT; k++) {
        evs_replay *rk;
        char *s;
        size_t ls;
        int rc;

        if (!at_cut[k])
            continue;
        rk = hist_replayer();
        cr_assert_eq(evs_replay_load_state(rk, at_cut[k], at_cut_len[k]), 0);
        memset(&v, 0, sizeof(v));
        rc = hist_apply(rk, h, cut[k], h->n, &v);
        if (rc != 0) {
            dump(h, h->n);
            cr_assert_fail("seed %" PRIu64 ", cut at %zu: sequence %" PRIu64
                           " broke %s after a load: %s",
                           seed, cut[k], v.sequence, v.rule ? v.rule : "?",
                           v.msg);
        }
        s = state_of(rk, &ls);
        if (ls != nfinal || memcmp(s, final, ls) != 0) {
            dump(h, h->n);
            cr_assert_fail("seed %" PRIu64 ", cut at %zu: snapshot plus "
                           "tail differs:\n%.*s\n%.*s",
                           seed, cut[k], (int)ls, s, (int)nfinal, final);
        }
        free(s);
        free(at_cut[k]);
        evs_replay_free(rk);
        t->cuts++;
    }
    free(final);
    evs_replay_free(r);
    t->histories++;
    t->events += h->n;
}

Test(property, snapshot_plus_tail_equals_a_full_replay)
{
    enum { HISTORIES = 3000, PREFIX_EVERY = 5 };
    const char *all = getenv("EVS_PROPERTY_ALL");
    evs_replay *scratch = hist_replayer();
    totals t;

    memset(&t, 0, sizeof(t));
    for (uint64_t seed = 1; seed <= HISTORIES; seed++) {
        rng g = {seed * 0x2545f4914f6cdd1dull};
        hist h;

        generate(&g, &h);
        check_history(&h, &g, scratch, &t, seed,
                      seed % PREFIX_EVERY == 0 || (all && *all == '1'));
        hist_free(&h);
    }
    evs_replay_free(scratch);
    cr_assert_eq(t.histories, HISTORIES);
    cr_assert_gt(t.terminal, HISTORIES / 3);
    cr_log_info("%zu histories, %zu events, %zu prefix round trips, "
                "%zu cut points (%zu ended by a terminal event)",
                t.histories, t.events, t.prefixes, t.cuts, t.terminal);
}

/* The generator is only useful if it reaches every kind of event. */
Test(property, the_generator_reaches_every_event_type)
{
    static const char *const types[] = {
        "execution_started", "path_started", "path_branched",
        "step_started", "step_completed", "step_failed", "retry_scheduled",
        "step_skipped", "path_completed", "path_failed",
        "execution_completed", "execution_failed", "execution_terminated",
        "execution_continue_as_new", "execution_paused", "execution_resumed",
        "variable_set", "signal_received", "signal_consumed", "wait_started",
        "wait_ended", "timer_started", "timer_fired", "timer_cancelled",
        "version_decision", "x_custom_event", "future_thing",
    };
    enum { NT = sizeof(types) / sizeof(types[0]) };
    size_t seen[NT] = {0}, waits_with_signal = 0;

    for (uint64_t seed = 1; seed <= 200; seed++) {
        rng g = {seed * 0x2545f4914f6cdd1dull};
        hist h;

        generate(&g, &h);
        cr_assert_geq(h.n, 20);
        cr_assert_leq(h.n, 300);
        for (size_t i = 0; i < h.n; i++) {
            for (size_t k = 0; k < NT; k++)
                if (h.ev[i].event_type.len == strlen(types[k]) &&
                    memcmp(h.ev[i].event_type.ptr, types[k],
                           h.ev[i].event_type.len) == 0)
                    seen[k]++;
            if (memcmp(h.ev[i].event_type.ptr, "wait_ended", 10) == 0 &&
                memmem(h.ev[i].data.ptr, h.ev[i].data.len, "signal_seq",
                       10))
                waits_with_signal++;
        }
        hist_free(&h);
    }
    for (size_t k = 0; k < NT; k++)
        cr_expect_gt(seen[k], 0, "no %s generated", types[k]);
    cr_expect_gt(waits_with_signal, 0);
}
