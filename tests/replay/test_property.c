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
 * The same histories in compact mode (check_compact): it breaks no rule
 * either, its snapshots plus tails (from a compact or a full state) give
 * exactly its own replay's bytes, and at the cut points its state holds
 * what the full one does of what the run can still use.
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
    case 0: put(b, "%d", below(g, 2001) - 1000); break;
    case 1: {
        static const char *const nums[] = {"1.5e3", "-0.25", "0", "2E-7",
                                           "123456789012345678"};
        put(b, "%s", nums[below(g, 5)]);
        break;
    }
    case 2: {
        static const char *const strs[] = {
            "\"plain\"",           "\"q \\\"x\\\" \\\\ y\"",
            "\"\\u00e9t\\u00e9\"", "\"line\\nbreak\\ttab\"",
            "\"caf\xc3\xa9\"",     "\"\""};
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
    int count; /* items of its `each`, 0 until first started */
    unsigned char it[MAXIT];
    int each_done; /* each_completed recorded: no more iterations */
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
    case 2: snprintf(out, cap, "p%d-\xc3\xa9\"x", k); break;
    case 3: snprintf(out, cap, "p%d\\y", k); break;
    default: snprintf(out, cap, "p%d", k); break;
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

static void emit(model *m, const char *type, const char *path, const char *step,
                 const buf *data)
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
        int nk = NPLAIN + (p->each_done     ? 0
                           : p->count       ? p->count
                           : allow_new_each ? 1
                                            : 0);
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
    unsigned mask =
        1u << S_NONE | 1u << S_RUNNING | 1u << S_FAILED | 1u << S_RETRYING;
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
    if (chance(m->g, 30)) {
        /* An `end` step's output is not its path's last output. */
        static const char *const kinds[] = {"action", "end", "sleep"};
        put(&d, ",\"step_hash\":\"h%d\",\"kind\":\"%s\"", below(m->g, 100),
            kinds[below(m->g, 3)]);
    }
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
    emit(m, failed ? "step_failed" : "step_completed", p->id, step_name(k), &d);
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

/* Completes the `each` of a live path whose iterations are all done (or
 * none started: an empty list). */
static int gen_each_completed(model *m)
{
    int l[MAXP], nl = live_paths(m, l), c[MAXP], n = 0;
    buf d = {.n = 0};
    mpath *p;

    for (int i = 0; i < nl; i++) {
        mpath *q = &m->p[l[i]];
        int all = !q->each_done;
        for (int k = 0; all && k < q->count; k++)
            all = q->it[k] == S_COMPLETED || q->it[k] == S_SKIPPED;
        if (all)
            c[n++] = l[i];
    }
    if (!n)
        return 0;
    p = &m->p[c[below(m->g, n)]];
    p->each_done = 1;
    put(&d, "{\"output\":[");
    for (int k = 0; k < p->count; k++) {
        if (k)
            put(&d, ",");
        put_value(m->g, &d, 1);
    }
    put(&d, "],\"count\":%d", p->count);
    if (chance(m->g, 40))
        put(&d, ",\"stored_variable\":\"v%d\"", below(m->g, 6));
    put(&d, "}");
    emit(m, "each_completed", p->id, each_name, &d);
    return 1;
}

/* Cancels any live path, whatever holds it. */
static int gen_path_cancel(model *m)
{
    int l[MAXP], nl = live_paths(m, l);
    buf d = {.n = 0};
    mpath *p;
    int pi;

    if (!nl)
        return 0;
    pi = l[below(m->g, nl)];
    p = &m->p[pi];
    p->live = 0;
    p->wait = 0;
    p->timers = 0;
    for (int i = 0; i < m->nt; i++)
        if (m->t[i].path == pi)
            m->t[i].pending = 0;
    put(&d, "{\"error\":{\"type\":\"cancelled\",\"message\":");
    put_value(m->g, &d, 2);
    put(&d, "}}");
    emit(m, "path_cancelled", p->id, NULL, &d);
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
    case 1: put(&d, "{\"name\":\"n%d\"}", below(m->g, 4)); break;
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
    if (chance(m->g, 30)) {
        /* The id of a timer that fired or was cancelled is free again,
         * unless another timer pending holds it. */
        int c[MAXT], n = 0;
        for (int a = 0; a < m->nt; a++) {
            int taken = 0;
            for (int b = 0; b < m->nt && !taken; b++)
                taken = m->t[b].pending && strcmp(m->t[b].id, m->t[a].id) == 0;
            if (!taken)
                c[n++] = a;
        }
        if (n)
            memcpy(m->t[m->nt].id, m->t[c[below(m->g, n)]].id,
                   sizeof(m->t[m->nt].id));
    }
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
    emit(m, cancel ? "timer_cancelled" : "timer_fired", m->p[m->t[n].path].id,
         "nap", &d);
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

    /* As written before `by` was, and with it (escapes, a JSON reason,
     * nulls), which the state keeps. */
    switch (below(m->g, 4)) {
    case 0: put(&d, m->paused ? "{}" : "{\"reason\":\"ops\"}"); break;
    case 1: put(&d, "{\"reason\":null,\"by\":null}"); break;
    case 2:
        put(&d, "{\"reason\":{\"t\":[1,\"x\"]},"
                "\"by\":\"an\\u00e9 \\\"o\\\"\"}");
        break;
    default: put(&d, "{\"reason\":\"why\",\"by\":\"op\"}"); break;
    }
    emit(m, m->paused ? "execution_resumed" : "execution_paused", some_path(m),
         NULL, &d);
    m->paused = !m->paused;
    return 1;
}

static int gen_unknown(model *m)
{
    buf d = {.n = 0};

    put_value(m->g, &d, 0);
    emit(m, below(m->g, 2) ? "x_custom_event" : "future_thing", some_path(m),
         NULL, &d);
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
    {gen_branch, 3},         {gen_path_started, 2}, {gen_step_started, 12},
    {gen_completed, 10},     {gen_failed, 4},       {gen_retry, 4},
    {gen_skip, 2},           {gen_path_end, 2},     {gen_variable, 3},
    {gen_signal, 3},         {gen_consume, 2},      {gen_wait, 3},
    {gen_wait_end, 3},       {gen_timer, 3},        {gen_timer_end, 3},
    {gen_version, 2},        {gen_pause, 2},        {gen_unknown, 1},
    {gen_each_completed, 2}, {gen_path_cancel, 1},
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

static void check_history(const hist *h, rng *g, evs_replay *scratch, totals *t,
                          uint64_t seed, int every_prefix)
{
    enum { NCUT = 4, NSAMPLE = 8 };
    size_t cut[NCUT], sample[NSAMPLE], nfinal;
    char *at_cut[NCUT] = {NULL}, *final;
    size_t at_cut_len[NCUT];
    evs_replay *r = hist_replayer();
    evs_error_info v;

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
                           seed, v.sequence, v.kind ? v.kind : "?", v.msg);
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
                           seed, cut[k], v.sequence, v.kind ? v.kind : "?",
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

/* ------------------------------------------------------------------ */
/* The compact mode                                                   */
/* ------------------------------------------------------------------ */

/* With gc_min at 1, the state moves to fresh memory whenever the arena
 * holds twice what it held after the last move: often, and at other
 * points in each of the replays compared. */
static evs_replay *compact_replayer(void)
{
    evs_replay_opts o;
    evs_replay *r = NULL;

    evs_replay_opts_init(&o);
    o.compact = 1;
    o.gc_min = 1;
    cr_assert_eq(evs_replay_new(&o, &r), 0);
    return r;
}

/* Where a comparison of the two modes stands, for its messages. */
typedef struct at {
    uint64_t seed;
    size_t seq;
    const char *what;
    size_t i;
} at;

static int span_same(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#define SAME_SPAN(w, f, c, field)                                              \
    cr_assert(span_same((f)->field, (c)->field),                               \
              "seed %" PRIu64 " at %zu: %s %zu: " #field " is '%.*s' in "      \
              "full mode, '%.*s' in compact mode",                             \
              (w)->seed, (w)->seq, (w)->what, (w)->i, (int)(f)->field.len,     \
              (f)->field.ptr ? (f)->field.ptr : "", (int)(c)->field.len,       \
              (c)->field.ptr ? (c)->field.ptr : "")
#define SAME_NUM(w, f, c, field)                                               \
    cr_assert((f)->field == (c)->field,                                        \
              "seed %" PRIu64 " at %zu: %s %zu: " #field " is %lld in full "   \
              "mode, %lld in compact mode",                                    \
              (w)->seed, (w)->seq, (w)->what, (w)->i, (long long)(f)->field,   \
              (long long)(c)->field)
#define SAME_COUNT(w, nf, nc)                                                  \
    cr_assert((nf) == (nc),                                                    \
              "seed %" PRIu64 " at %zu: %zu %s in full mode (as filtered), "   \
              "%zu in compact mode",                                           \
              (w)->seed, (w)->seq, (size_t)(nf), (w)->what, (size_t)(nc))

static void same_exec(at *w, const evs_exec_state *f, const evs_exec_state *c)
{
    SAME_NUM(w, f, c, status);
    SAME_NUM(w, f, c, status_before_pause);
    SAME_SPAN(w, f, c, execution_id);
    SAME_SPAN(w, f, c, workflow_name);
    SAME_SPAN(w, f, c, inputs);
    SAME_SPAN(w, f, c, outputs);
    SAME_SPAN(w, f, c, error);
    SAME_SPAN(w, f, c, definition);
    SAME_SPAN(w, f, c, definition_hash);
    SAME_SPAN(w, f, c, inputs_hash);
    SAME_SPAN(w, f, c, lineage);
    SAME_SPAN(w, f, c, continued_as);
    SAME_NUM(w, f, c, started_at_us);
    SAME_NUM(w, f, c, ended_at_us);
    SAME_NUM(w, f, c, last_seq);
    SAME_SPAN(w, f, c, failed_path);
    SAME_SPAN(w, f, c, failed_step);
    SAME_NUM(w, f, c, failed_iteration);
    SAME_NUM(w, f, c, failed_seq);
}

static void same_path(at *w, const evs_path_state *f, const evs_path_state *c)
{
    SAME_SPAN(w, f, c, id);
    SAME_SPAN(w, f, c, parent);
    SAME_NUM(w, f, c, status);
    SAME_NUM(w, f, c, pending);
    SAME_SPAN(w, f, c, current_step);
    SAME_SPAN(w, f, c, error);
    SAME_NUM(w, f, c, started_seq);
    SAME_NUM(w, f, c, ended_seq);
    SAME_SPAN(w, f, c, last_output);
    SAME_NUM(w, f, c, last_output_seq);
}

static void same_step(at *w, const evs_step_state *f, const evs_step_state *c)
{
    SAME_SPAN(w, f, c, path_id);
    SAME_SPAN(w, f, c, name);
    SAME_NUM(w, f, c, iteration);
    SAME_NUM(w, f, c, status);
    SAME_NUM(w, f, c, attempts);
    /* Compact mode keeps the input of a running attempt only: it is the
     * one an attempt is run again with. */
    if (f->status == EVS_STEP_RUNNING)
        SAME_SPAN(w, f, c, input);
    else
        cr_assert_eq(c->input.len, 0,
                     "seed %" PRIu64 " at %zu: a %s step keeps its input "
                     "in compact mode",
                     w->seed, w->seq, evs_step_status_name(f->status));
    SAME_SPAN(w, f, c, output);
    SAME_SPAN(w, f, c, error);
    SAME_SPAN(w, f, c, stored_variable);
    SAME_SPAN(w, f, c, step_hash);
    SAME_SPAN(w, f, c, kind);
    SAME_NUM(w, f, c, retry_at_us);
    SAME_NUM(w, f, c, started_seq);
    SAME_NUM(w, f, c, ended_seq);
}

static void same_each(at *w, const evs_each_state *f, const evs_each_state *c)
{
    SAME_SPAN(w, f, c, path_id);
    SAME_SPAN(w, f, c, name);
    SAME_NUM(w, f, c, count);
    SAME_NUM(w, f, c, done);
    SAME_SPAN(w, f, c, output);
    SAME_NUM(w, f, c, ended_seq);
}

static void same_var(at *w, const evs_var_state *f, const evs_var_state *c)
{
    SAME_SPAN(w, f, c, name);
    SAME_SPAN(w, f, c, value);
    SAME_NUM(w, f, c, set_seq);
}

static void same_version(at *w, const evs_version_state *f,
                         const evs_version_state *c)
{
    SAME_SPAN(w, f, c, change_id);
    SAME_NUM(w, f, c, version);
    SAME_NUM(w, f, c, min);
    SAME_NUM(w, f, c, max);
    SAME_NUM(w, f, c, seq);
}

static void same_name(at *w, const evs_stepname_state *f,
                      const evs_stepname_state *c)
{
    SAME_SPAN(w, f, c, name);
    SAME_SPAN(w, f, c, kind);
    SAME_SPAN(w, f, c, step_hash);
    SAME_NUM(w, f, c, started_seq);
    SAME_SPAN(w, f, c, output);
    SAME_NUM(w, f, c, output_seq);
}

static void same_signal(at *w, const evs_signal_state *f,
                        const evs_signal_state *c)
{
    SAME_SPAN(w, f, c, id);
    SAME_SPAN(w, f, c, name);
    SAME_SPAN(w, f, c, payload);
    SAME_NUM(w, f, c, received_seq);
    SAME_NUM(w, f, c, consumed_seq);
    SAME_SPAN(w, f, c, consumed_by_path);
    SAME_SPAN(w, f, c, consumed_by_step);
}

static void same_timer(at *w, const evs_timer_state *f,
                       const evs_timer_state *c)
{
    SAME_SPAN(w, f, c, timer_id);
    SAME_SPAN(w, f, c, path_id);
    SAME_SPAN(w, f, c, step);
    SAME_NUM(w, f, c, fire_at_us);
    SAME_NUM(w, f, c, started_seq);
    SAME_NUM(w, f, c, fired_seq);
    SAME_NUM(w, f, c, cancelled);
}

static void same_wait(at *w, const evs_wait_state *f, const evs_wait_state *c)
{
    SAME_SPAN(w, f, c, path_id);
    SAME_SPAN(w, f, c, step);
    SAME_SPAN(w, f, c, signal);
    SAME_NUM(w, f, c, timeout_at_us);
    SAME_NUM(w, f, c, started_seq);
    SAME_NUM(w, f, c, ended_seq);
    SAME_NUM(w, f, c, timed_out);
    SAME_NUM(w, f, c, signal_seq);
}

/* Whether the full state holds path `id` live (a path it does not know
 * counts as live: nothing says it ended). */
static int live_in(const evs_replay *r, evs_span id)
{
    const evs_path_state *p = evs_replay_find_path(r, id);

    return !p || p->status == EVS_PATH_ACTIVE || p->status == EVS_PATH_WAITING;
}

/*
 * What the full state's steps and `each` records say the step-name
 * records and the paths' last outputs must be (the orchestrator found
 * them so, by a scan of the steps, before the replayer kept them): for a
 * name, the kind and hash of the step started last under it and the
 * output of the plain step done, or the `each` completed, last; for a
 * path, the output of its plain step done or `each` completed last, `end`
 * steps aside. One iteration is never an output.
 */
static int step_done(const evs_step_state *s)
{
    return s->status == EVS_STEP_COMPLETED || s->status == EVS_STEP_SKIPPED;
}

/* An output and the sequence that gave it: the latest one wins. */
typedef struct out_at {
    uint64_t seq;
    evs_span out;
} out_at;

static void newer(out_at *o, uint64_t seq, evs_span out)
{
    if (seq > o->seq) {
        o->seq = seq;
        o->out = out;
    }
}

static void assert_out(const out_at *o, uint64_t seq, evs_span out,
                       uint64_t seed, size_t upto, evs_span what)
{
    cr_assert_eq(seq, o->seq, "seed %" PRIu64 " at %zu: %.*s", seed, upto,
                 (int)what.len, what.ptr);
    cr_assert(span_same(out, o->out), "seed %" PRIu64 " at %zu: %.*s", seed,
              upto, (int)what.len, what.ptr);
}

static void names_and_outputs_from_steps(const evs_replay *f, uint64_t seed,
                                         size_t upto)
{
    for (size_t i = 0; i < evs_replay_stepname_count(f); i++) {
        const evs_stepname_state *n = evs_replay_stepname(f, i);
        const evs_step_state *started = NULL;
        out_at done = {0, {"", 0}};

        for (size_t j = 0; j < evs_replay_step_count(f); j++) {
            const evs_step_state *s = evs_replay_step(f, j);
            if (!span_same(s->name, n->name))
                continue;
            if (s->started_seq &&
                (!started || s->started_seq > started->started_seq))
                started = s;
            if (step_done(s) && s->iteration < 0)
                newer(&done, s->ended_seq, s->output);
        }
        for (size_t j = 0; j < evs_replay_each_count(f); j++) {
            const evs_each_state *e = evs_replay_each(f, j);
            if (e->ended_seq && span_same(e->name, n->name))
                newer(&done, e->ended_seq, e->output);
        }
        cr_assert_eq(n->started_seq, started ? started->started_seq : 0,
                     "seed %" PRIu64 " at %zu: name %.*s", seed, upto,
                     (int)n->name.len, n->name.ptr);
        cr_assert(
            span_same(n->kind, started ? started->kind : (evs_span){"", 0}) &&
                span_same(n->step_hash,
                          started ? started->step_hash : (evs_span){"", 0}),
            "seed %" PRIu64 " at %zu: name %.*s: kind or hash", seed, upto,
            (int)n->name.len, n->name.ptr);
        assert_out(&done, n->output_seq, n->output, seed, upto, n->name);
    }
    /* Every step's name has its record. */
    for (size_t j = 0; j < evs_replay_step_count(f); j++)
        cr_assert_not_null(
            evs_replay_find_stepname(f, evs_replay_step(f, j)->name));
    for (size_t i = 0; i < evs_replay_path_count(f); i++) {
        const evs_path_state *p = evs_replay_path(f, i);
        out_at last = {0, {"", 0}};

        for (size_t j = 0; j < evs_replay_step_count(f); j++) {
            const evs_step_state *s = evs_replay_step(f, j);
            if (step_done(s) && s->iteration < 0 &&
                span_same(s->path_id, p->id) &&
                !span_same(s->kind, evs_span_cstr("end")))
                newer(&last, s->ended_seq, s->output);
        }
        for (size_t j = 0; j < evs_replay_each_count(f); j++) {
            const evs_each_state *e = evs_replay_each(f, j);
            if (e->ended_seq && span_same(e->path_id, p->id))
                newer(&last, e->ended_seq, e->output);
        }
        assert_out(&last, p->last_output_seq, p->last_output, seed, upto,
                   p->id);
    }
}

/* Signals of the full state by the sequence that consumed them. */
static int by_consumed_seq(const void *a, const void *b)
{
    const evs_signal_state *x = *(const evs_signal_state *const *)a;
    const evs_signal_state *y = *(const evs_signal_state *const *)b;

    return x->consumed_seq < y->consumed_seq   ? -1
           : x->consumed_seq > y->consumed_seq ? 1
                                               : 0;
}

/*
 * The compact state `c` holds what the full state `f` holds of what the
 * run can still use, and nothing else, in the same order: its steps are
 * the full ones on live paths or failed, its `each` records those of
 * live paths, its signals the buffered ones, its timers and waits the
 * pending ones; the rest is the same. `cjson` is c's state JSON, whose
 * consumed ids are the full state's consumed signals, in the order they
 * were consumed (not checked if NULL). `h` and `upto` (events applied)
 * give ids that are no signals, which neither mode knows.
 */
static void same_meaning(const evs_replay *f, const evs_replay *c,
                         const char *cjson, size_t cjson_len, const hist *h,
                         size_t upto, uint64_t seed)
{
    at w = {seed, upto, "", 0};
    size_t j, n;

    names_and_outputs_from_steps(f, seed, upto);
    w.what = "exec";
    same_exec(&w, evs_replay_exec(f), evs_replay_exec(c));

#define SAME_ALL(label, count_fn, get_fn, same_fn)                             \
    do {                                                                       \
        w.what = label;                                                        \
        SAME_COUNT(&w, count_fn(f), count_fn(c));                              \
        for (w.i = 0; w.i < count_fn(f); w.i++)                                \
            same_fn(&w, get_fn(f, w.i), get_fn(c, w.i));                       \
    } while (0)
    SAME_ALL("paths", evs_replay_path_count, evs_replay_path, same_path);
    SAME_ALL("variables", evs_replay_var_count, evs_replay_var, same_var);
    SAME_ALL("versions", evs_replay_version_count, evs_replay_version,
             same_version);
    SAME_ALL("step names", evs_replay_stepname_count, evs_replay_stepname,
             same_name);
#undef SAME_ALL

    /* The others, filtered. */
#define SAME_KEPT(label, type, count_fn, get_fn, same_fn, keep)                \
    do {                                                                       \
        w.what = label;                                                        \
        for (j = 0, n = 0; j < count_fn(f); j++) {                             \
            const type *x = get_fn(f, j);                                      \
            if (!(keep))                                                       \
                continue;                                                      \
            w.i = n;                                                           \
            cr_assert_lt(n, count_fn(c),                                       \
                         "seed %" PRIu64 " at %zu: %s %zu is missing in "      \
                         "compact mode",                                       \
                         seed, upto, label, n);                                \
            same_fn(&w, x, get_fn(c, n));                                      \
            n++;                                                               \
        }                                                                      \
        SAME_COUNT(&w, n, count_fn(c));                                        \
    } while (0)
    SAME_KEPT("steps", evs_step_state, evs_replay_step_count, evs_replay_step,
              same_step,
              x->status == EVS_STEP_FAILED || live_in(f, x->path_id));
    SAME_KEPT("each records", evs_each_state, evs_replay_each_count,
              evs_replay_each, same_each, live_in(f, x->path_id));
    SAME_KEPT("signals", evs_signal_state, evs_replay_signal_count,
              evs_replay_signal, same_signal, x->consumed_seq == 0);
    SAME_KEPT("timers", evs_timer_state, evs_replay_timer_count,
              evs_replay_timer, same_timer, !x->fired_seq && !x->cancelled);
    SAME_KEPT("waits", evs_wait_state, evs_replay_wait_count, evs_replay_wait,
              same_wait, x->ended_seq == 0);
#undef SAME_KEPT

    /* Every signal received (the full state holds them all) is known to
     * both, with its sequence while the compact state still holds it. */
    for (j = 0; j < evs_replay_signal_count(f); j++) {
        const evs_signal_state *x = evs_replay_signal(f, j);
        uint64_t sf = 1, sc = 1;

        cr_assert(evs_replay_signal_received(f, x->id, &sf));
        cr_assert_eq(sf, x->received_seq);
        cr_assert(evs_replay_signal_received(c, x->id, &sc),
                  "seed %" PRIu64 " at %zu: signal %" PRIu64 " unknown in "
                  "compact mode",
                  seed, upto, x->received_seq);
        cr_assert_eq(sc, x->consumed_seq ? 0 : x->received_seq,
                     "seed %" PRIu64 " at %zu: signal %" PRIu64, seed, upto,
                     x->received_seq);
    }
    /* Events that are no signals, and one never applied (the ids are
     * "e<seq>"), are unknown to both. */
    for (size_t i = 0; i < upto; i += 1 + upto / 8) {
        const evs_event *e = &h->ev[i];
        uint64_t sc = 1;

        if (span_same(e->event_type, evs_span_cstr("signal_received")))
            continue;
        cr_assert_not(evs_replay_signal_received(f, e->id, NULL));
        cr_assert_not(evs_replay_signal_received(c, e->id, &sc));
        cr_assert_eq(sc, 0);
    }
    cr_assert_not(evs_replay_signal_received(c, evs_span_cstr("e0"), NULL));
    cr_assert_not(evs_replay_signal_received(f, evs_span_cstr("e0"), NULL));

    /* The consumed ids, in the order consumed, end the compact state. */
    if (cjson) {
        const evs_signal_state **gone;
        buf want = {.n = 0};
        size_t ng = 0;

        gone = calloc(evs_replay_signal_count(f) + 1, sizeof(*gone));
        cr_assert_not_null(gone);
        for (j = 0; j < evs_replay_signal_count(f); j++)
            if (evs_replay_signal(f, j)->consumed_seq)
                gone[ng++] = evs_replay_signal(f, j);
        qsort(gone, ng, sizeof(*gone), by_consumed_seq);
        put(&want, "\"consumed_ids\":[");
        for (j = 0; j < ng; j++)
            put(&want, "%s\"%.*s\"", j ? "," : "", (int)gone[j]->id.len,
                gone[j]->id.ptr);
        put(&want, "],\"compact\":true}");
        free(gone);
        cr_assert(cjson_len >= want.n &&
                      memcmp(cjson + cjson_len - want.n, want.p, want.n) == 0,
                  "seed %" PRIu64 " at %zu: the compact state ends\n%.*s\n"
                  "not\n%.*s",
                  seed, upto, (int)(cjson_len < want.n ? cjson_len : want.n),
                  cjson + (cjson_len < want.n ? 0 : cjson_len - want.n),
                  (int)want.n, want.p);
    }
}

typedef struct ctotals {
    size_t histories, events, points, cuts, dropped_steps, kept_failed,
        gone_signals, reused_timers;
} ctotals;

/*
 * For one history, replayed in both modes side by side:
 *  a. the compact replay breaks no rule either;
 *  b. for the cut points k, the compact state after 1..k, through JSON
 *     into a fresh compact replayer, plus events k+1..n gives exactly
 *     the bytes of the compact replay's state;
 *  c. so does the FULL state after 1..k loaded into a compact replayer
 *     (compacted as it loads) plus the same tail; at k itself it is the
 *     compact state already;
 *  d. at the cut points and a few more, the compact state means what
 *     the full one does (same_meaning); at the cut points it round-trips
 *     through JSON;
 *  e. a compact state is refused by a full replayer (EVS_EFORMAT).
 */
static void check_compact(const hist *h, rng *g, evs_replay *sc_full,
                          evs_replay *sc_compact, ctotals *t, uint64_t seed)
{
    enum { NCUT = 4, NSAMPLE = 8 };
    size_t cut[NCUT], sample[NSAMPLE], nfinal;
    char *cstate[NCUT] = {NULL}, *fstate[NCUT] = {NULL}, *final;
    size_t cstate_len[NCUT], fstate_len[NCUT];
    evs_replay *rf = hist_replayer(), *rc = compact_replayer();
    evs_error_info v;

    /* The same draws as check_history: the same cut points. */
    for (int i = 0; i < NCUT; i++)
        cut[i] = 1 + (size_t)below(g, (int)h->n);
    for (int i = 0; i < NSAMPLE; i++)
        sample[i] = 1 + (size_t)below(g, (int)h->n);

    for (size_t i = 0; i < h->n; i++) {
        char *c, *f, *b;
        size_t lc, lf, lb;
        int rv, check = 0, is_cut = 0;

        memset(&v, 0, sizeof(v));
        cr_assert_eq(evs_replay_apply(rf, &h->ev[i], &v), 0,
                     "seed %" PRIu64 ": sequence %" PRIu64 " broke %s in "
                     "full mode: %s",
                     seed, v.sequence, v.kind ? v.kind : "?", v.msg);
        memset(&v, 0, sizeof(v));
        rv = evs_replay_apply(rc, &h->ev[i], &v);
        if (rv != 0) {
            dump(h, i);
            cr_assert_fail("seed %" PRIu64 ": sequence %" PRIu64
                           " broke %s in compact mode: %s",
                           seed, v.sequence, v.kind ? v.kind : "?", v.msg);
        }
        for (int k = 0; k < NCUT; k++)
            is_cut |= cut[k] == i + 1;
        check = is_cut;
        for (int k = 0; k < NSAMPLE; k++)
            check |= sample[k] == i + 1;
        if (!check)
            continue;
        if (!is_cut) {
            same_meaning(rf, rc, NULL, 0, h, i + 1, seed);
            t->points++;
            continue;
        }
        c = state_of(rc, &lc);
        f = state_of(rf, &lf);
        same_meaning(rf, rc, c, lc, h, i + 1, seed);
        /* The compact state round-trips; the full one, loaded into a
         * compact replayer, gives it too. */
        cr_assert_eq(evs_replay_load_state(sc_compact, c, lc), 0);
        b = state_of(sc_compact, &lb);
        cr_assert(lb == lc && memcmp(b, c, lc) == 0,
                  "seed %" PRIu64 " at %zu: compact round trip:\n%.*s\n%.*s",
                  seed, i + 1, (int)lc, c, (int)lb, b);
        free(b);
        cr_assert_eq(evs_replay_load_state(sc_compact, f, lf), 0);
        b = state_of(sc_compact, &lb);
        if (lb != lc || memcmp(b, c, lc) != 0) {
            dump(h, i);
            cr_assert_fail("seed %" PRIu64 " at %zu: the full state "
                           "compacted as it loads is not the compact "
                           "state:\n%.*s\n%.*s",
                           seed, i + 1, (int)lb, b, (int)lc, c);
        }
        free(b);
        /* e: a full replayer cannot have back what went. */
        cr_assert_eq(evs_replay_load_state(sc_full, c, lc), EVS_EFORMAT,
                     "seed %" PRIu64 " at %zu", seed, i + 1);
        t->points++;
        for (int k = 0; k < NCUT; k++)
            if (cut[k] == i + 1 && !cstate[k]) {
                cstate[k] = c;
                cstate_len[k] = lc;
                fstate[k] = f;
                fstate_len[k] = lf;
                c = f = NULL;
            }
        free(c);
        free(f);
    }
    final = state_of(rc, &nfinal);
    t->dropped_steps += evs_replay_step_count(rf) - evs_replay_step_count(rc);
    for (size_t i = 0; i < evs_replay_step_count(rc); i++)
        t->kept_failed += !live_in(rc, evs_replay_step(rc, i)->path_id);
    for (size_t i = 0; i < evs_replay_signal_count(rf); i++)
        t->gone_signals += evs_replay_signal(rf, i)->consumed_seq != 0;
    {
        int reused = 0;
        for (size_t i = 0; i < evs_replay_timer_count(rf) && !reused; i++)
            for (size_t k = 0; k < i && !reused; k++)
                reused = span_same(evs_replay_timer(rf, i)->timer_id,
                                   evs_replay_timer(rf, k)->timer_id);
        t->reused_timers += reused;
    }

    /* b and c: a state at k, of either mode, plus the tail. */
    for (int k = 0; k < NCUT; k++) {
        for (int from_full = 0; from_full < 2 && cstate[k]; from_full++) {
            evs_replay *rk = compact_replayer();
            const char *st = from_full ? fstate[k] : cstate[k];
            size_t lst = from_full ? fstate_len[k] : cstate_len[k];
            char *s;
            size_t ls;
            int rv;

            cr_assert_eq(evs_replay_load_state(rk, st, lst), 0);
            memset(&v, 0, sizeof(v));
            rv = hist_apply(rk, h, cut[k], h->n, &v);
            if (rv != 0) {
                dump(h, h->n);
                cr_assert_fail("seed %" PRIu64 ", cut at %zu (%s state): "
                               "sequence %" PRIu64 " broke %s after a "
                               "load: %s",
                               seed, cut[k], from_full ? "full" : "compact",
                               v.sequence, v.kind ? v.kind : "?", v.msg);
            }
            s = state_of(rk, &ls);
            if (ls != nfinal || memcmp(s, final, ls) != 0) {
                dump(h, h->n);
                cr_assert_fail("seed %" PRIu64 ", cut at %zu: %s state "
                               "plus tail differs from the compact "
                               "replay:\n%.*s\n%.*s",
                               seed, cut[k], from_full ? "full" : "compact",
                               (int)ls, s, (int)nfinal, final);
            }
            free(s);
            evs_replay_free(rk);
            t->cuts++;
        }
        free(cstate[k]);
        free(fstate[k]);
    }
    free(final);
    evs_replay_free(rf);
    evs_replay_free(rc);
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

/* The same histories as above, in compact mode (check_compact). */
Test(property, compact_replay_keeps_what_the_run_can_still_use)
{
    enum { HISTORIES = 3000 };
    evs_replay *sc_full = hist_replayer(), *sc_compact = compact_replayer();
    ctotals t;

    memset(&t, 0, sizeof(t));
    for (uint64_t seed = 1; seed <= HISTORIES; seed++) {
        rng g = {seed * 0x2545f4914f6cdd1dull};
        hist h;

        generate(&g, &h);
        check_compact(&h, &g, sc_full, sc_compact, &t, seed);
        hist_free(&h);
    }
    evs_replay_free(sc_full);
    evs_replay_free(sc_compact);
    cr_assert_eq(t.histories, HISTORIES);
    /* The histories give the compact mode something to drop and keep. */
    cr_assert_gt(t.dropped_steps, HISTORIES);
    cr_assert_gt(t.kept_failed, 0);
    cr_assert_gt(t.gone_signals, HISTORIES / 2);
    cr_assert_gt(t.reused_timers, HISTORIES / 10);
    cr_log_info("%zu histories, %zu events, %zu points compared, %zu cut "
                "loads; %zu steps dropped, %zu failed ones kept, %zu "
                "signals consumed, %zu histories reusing a timer id",
                t.histories, t.events, t.points, t.cuts, t.dropped_steps,
                t.kept_failed, t.gone_signals, t.reused_timers);
}

/* The generator is only useful if it reaches every kind of event. */
Test(property, the_generator_reaches_every_event_type)
{
    static const char *const types[] = {
        "execution_started",    "path_started",
        "path_branched",        "step_started",
        "step_completed",       "step_failed",
        "retry_scheduled",      "step_skipped",
        "path_completed",       "path_failed",
        "execution_completed",  "execution_failed",
        "execution_terminated", "execution_continue_as_new",
        "execution_paused",     "execution_resumed",
        "variable_set",         "signal_received",
        "signal_consumed",      "wait_started",
        "wait_ended",           "timer_started",
        "timer_fired",          "timer_cancelled",
        "version_decision",     "x_custom_event",
        "future_thing",
    };
    enum { NT = sizeof(types) / sizeof(types[0]) };
    size_t seen[NT] = {0}, waits_with_signal = 0, end_steps = 0,
           reused_timer_ids = 0;

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
                memmem(h.ev[i].data.ptr, h.ev[i].data.len, "signal_seq", 10))
                waits_with_signal++;
            if (span_same(h.ev[i].event_type, evs_span_cstr("step_started")) &&
                memmem(h.ev[i].data.ptr, h.ev[i].data.len, "\"kind\":\"end\"",
                       12))
                end_steps++;
            /* A timer id started before, in the same history. */
            if (span_same(h.ev[i].event_type, evs_span_cstr("timer_started")))
                for (size_t k = 0; k < i; k++)
                    if (span_same(h.ev[k].event_type,
                                  evs_span_cstr("timer_started")) &&
                        strcspn(h.ev[k].data.ptr, ",}") ==
                            strcspn(h.ev[i].data.ptr, ",}") &&
                        memcmp(h.ev[k].data.ptr, h.ev[i].data.ptr,
                               strcspn(h.ev[i].data.ptr, ",}")) == 0) {
                        reused_timer_ids++;
                        break;
                    }
        }
        hist_free(&h);
    }
    for (size_t k = 0; k < NT; k++)
        cr_expect_gt(seen[k], 0, "no %s generated", types[k]);
    cr_expect_gt(waits_with_signal, 0);
    cr_expect_gt(end_steps, 0);
    cr_expect_gt(reused_timer_ids, 0);
}
