/*
 * data.c: evbench's event generator: a fixed-seed stream of events that
 * look like an agent's (step inputs and outputs with text, tool calls
 * with arguments, small numbers, failures, signals), with about one large
 * output of 64 KiB..1 MiB in a thousand, so that every run and every
 * system is fed the same, realistic bytes. Also the snapshots that the
 * listing scenario creates.
 */
#include "evbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLK ((size_t)1 << 20)
#define LARGE_MIN ((size_t)64 << 10)
#define LARGE_MAX ((size_t)1 << 20)
/* 2026-11-22T10:15:30Z: runs are comparable only if the bytes are. */
#define T0_US INT64_C(1795342530000000)

struct bench_arena_blk {
    bench_arena_blk *next;
    size_t used, cap;
    char mem[];
};

void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    r->s = seed;
}

/* splitmix64: small, fast and good enough to pick words. */
uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t bench_rng_below(bench_rng *r, uint64_t n)
{
    return n ? bench_rng_next(r) % n : 0;
}

static uint64_t between(bench_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + bench_rng_below(r, hi - lo + 1);
}

/* Words of JSON string text (already escaped where needed). */
static const char *const words[] = {
    "the",
    "agent",
    "called",
    "search",
    "results",
    "for",
    "quarterly",
    "revenue",
    "summary",
    "of",
    "and",
    "to",
    "in",
    "a",
    "report",
    "found",
    "three",
    "sources",
    "café",
    "naïve",
    "über",
    "latency",
    "p99",
    "budget",
    "draft",
    "review",
    "approved",
    "citation",
    "table",
    "chart",
    "2026",
    "Q3",
    "growth",
    "12.5%",
    "customers",
    "churn",
    "model",
    "tokens",
    "context",
    "window",
    "retry",
    "timeout",
    "tool",
    "fetched",
    "page",
    "https://example.com/docs/api",
    "parsed",
    "JSON",
    "bytes",
    "rows",
    "\\\"quoted\\\"",
    "—",
    "step",
    "plan",
    "wrote",
    "done",
    "is",
    "within",
    "week",
    "compared",
    "with",
    "last",
    "month",
    "ok",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char *const steps[] = {"plan",      "search",       "fetch",
                                    "summarize", "write_report", "review",
                                    "approve"};
static const char *const tools[] = {"web_search", "fetch_url", "run_sql",
                                    "read_file"};
static const char *const vars[] = {"summary", "results", "plan",
                                   "draft",   "report",  "answer"};
static const char *const errors[] = {"timeout", "rate_limited", "tool_error",
                                     "invalid_output"};

#define PICK(r, a) ((a)[bench_rng_below((r), sizeof(a) / sizeof((a)[0]))])

/* Appends words to p until about `len` bytes (never more than `max`).
 * Returns the end. The result is valid inside a JSON string. */
static char *put_text(bench_rng *r, char *p, size_t len, size_t max)
{
    char *start = p;

    while ((size_t)(p - start) < len) {
        const char *w = words[bench_rng_below(r, NWORDS)];
        size_t wl = strlen(w), sep = 0;

        if (p != start)
            sep = bench_rng_below(r, 16) == 0 ? 2 : 1;
        if ((size_t)(p - start) + sep + wl > max)
            break;
        if (sep == 2) {
            /* a newline inside a string is written escaped */
            *p++ = '\\';
            *p++ = 'n';
        } else if (sep == 1) {
            *p++ = ' ';
        }
        memcpy(p, w, wl);
        p += wl;
    }
    return p;
}

/* The 1 MiB of text large outputs are cut from, made once. */
static char *large_text;

static int large_text_init(void)
{
    bench_rng r;
    char *p;

    if (large_text)
        return 0;
    large_text = malloc(LARGE_MAX + 512);
    if (!large_text)
        return -ENOMEM;
    bench_rng_seed(&r, 0x1a2b3c4d);
    p = put_text(&r, large_text, LARGE_MAX + 256, LARGE_MAX + 256);
    *p = '\0';
    return 0;
}

static char *arena_get(bench_workload *w, size_t n)
{
    bench_arena_blk *b = w->blocks;
    char *p;

    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLK ? n : ARENA_BLK;

        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = w->blocks;
        b->used = 0;
        b->cap = cap;
        w->blocks = b;
    }
    p = b->mem + b->used;
    b->used += n;
    return p;
}

static evs_span arena_span(bench_workload *w, const char *s, size_t n)
{
    evs_span sp = {NULL, 0};
    char *p = arena_get(w, n ? n : 1);

    if (p) {
        memcpy(p, s, n);
        sp.ptr = p;
        sp.len = n;
    }
    return sp;
}

void bench_gen_init(bench_gen *g, uint64_t seed)
{
    bench_rng_seed(&g->rng, seed);
    g->count = 0;
    g->t_us = T0_US;
    g->large_every = 1000;
}

/* Writes the data of a small event into buf and sets its type. */
static size_t small_data(bench_rng *r, char *buf, size_t cap, const char **type)
{
    unsigned k = (unsigned)bench_rng_below(r, 100);
    char text[512], *e;
    int n;

    if (k < 22) {
        *type = EVS_EV_STEP_STARTED;
        e = put_text(r, text, between(r, 10, 50), 200);
        n = snprintf(buf, cap,
                     "{\"attempt\":%u,\"input\":{\"query\":\"%.*s\","
                     "\"max_results\":%u}}",
                     (unsigned)between(r, 1, 3), (int)(e - text), text,
                     (unsigned)between(r, 3, 20));
    } else if (k < 52) {
        *type = EVS_EV_STEP_COMPLETED;
        e = put_text(r, text, between(r, 20, 110), 300);
        n = snprintf(buf, cap,
                     "{\"output\":\"%.*s\",\"stored_variable\":\"%s\","
                     "\"tokens\":{\"prompt\":%u,\"completion\":%u}}",
                     (int)(e - text), text, PICK(r, vars),
                     (unsigned)between(r, 200, 9000),
                     (unsigned)between(r, 20, 900));
    } else if (k < 70) {
        *type = EVS_EV_STEP_COMPLETED;
        e = put_text(r, text, between(r, 8, 40), 200);
        n = snprintf(buf, cap,
                     "{\"output\":{\"tool\":\"%s\",\"arguments\":"
                     "{\"query\":\"%.*s\",\"limit\":%u},\"result_count\":"
                     "%u},\"stored_variable\":\"%s\"}",
                     PICK(r, tools), (int)(e - text), text,
                     (unsigned)between(r, 1, 50), (unsigned)between(r, 0, 50),
                     PICK(r, vars));
    } else if (k < 78) {
        *type = EVS_EV_PATH_STARTED;
        n = snprintf(buf, cap, "{\"current_step\":\"%s\"}", PICK(r, steps));
    } else if (k < 84) {
        *type = EVS_EV_PATH_COMPLETED;
        n = snprintf(buf, cap, "{\"steps\":%u,\"duration_ms\":%u}",
                     (unsigned)between(r, 1, 12),
                     (unsigned)between(r, 5, 90000));
    } else if (k < 90) {
        *type = EVS_EV_STEP_FAILED;
        e = put_text(r, text, between(r, 15, 70), 200);
        n = snprintf(buf, cap,
                     "{\"error\":{\"type\":\"%s\",\"message\":\"%.*s\","
                     "\"retryable\":%s},\"attempt\":%u}",
                     PICK(r, errors), (int)(e - text), text,
                     bench_rng_below(r, 2) ? "true" : "false",
                     (unsigned)between(r, 1, 5));
    } else if (k < 95) {
        *type = EVS_EV_SIGNAL_RECEIVED;
        e = put_text(r, text, between(r, 0, 40), 100);
        n = snprintf(buf, cap,
                     "{\"name\":\"approval\",\"payload\":{\"approved\":%s,"
                     "\"by\":\"%s\",\"comment\":\"%.*s\"}}",
                     bench_rng_below(r, 5) ? "true" : "false", PICK(r, words),
                     (int)(e - text), text);
    } else {
        *type = EVS_EV_VERSION_DECISION;
        n = snprintf(buf, cap,
                     "{\"change_id\":\"use-new-summarizer\",\"version\":%u,"
                     "\"min\":1,\"max\":2}",
                     (unsigned)between(r, 1, 2));
    }
    return n < 0 ? 0 : (size_t)n;
}

/* Makes one event of the stream into w's arena. */
static int gen_one(bench_gen *g, bench_workload *w, evs_event *ev)
{
    static const char pre[] = "{\"output\":\"";
    static const char post[] = "\",\"stored_variable\":\"report\"}";
    bench_rng *r = &g->rng;
    char idbuf[EVS_UUID_LEN + 1], data[1024];
    const char *type, *path;
    uint64_t a, b, ms;
    size_t dl;
    char *p;

    memset(ev, 0, sizeof(*ev));
    g->t_us += (int64_t)between(r, 200, 6000);
    ev->timestamp_us = g->t_us;
    /* A UUIDv7-shaped id from the stream, so every system gets the same
     * ids and none pays for getrandom(). */
    a = bench_rng_next(r);
    b = bench_rng_next(r);
    ms = (uint64_t)(g->t_us / 1000);
    snprintf(idbuf, sizeof(idbuf), "%08llx-%04llx-7%03llx-%04llx-%012llx",
             (unsigned long long)((ms >> 16) & 0xffffffffu),
             (unsigned long long)(ms & 0xffff), (unsigned long long)(a & 0xfff),
             (unsigned long long)(0x8000 | ((a >> 12) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffull));
    ev->id = arena_span(w, idbuf, EVS_UUID_LEN);
    path = bench_rng_below(r, 100) < 85 ? "main"
           : bench_rng_below(r, 2)      ? "research-1"
                                        : "research-2";
    ev->path_id = evs_span_cstr(path);
    ev->step_name = evs_span_cstr(PICK(r, steps));
    if (g->large_every && bench_rng_below(r, g->large_every) == 0) {
        size_t tl = (size_t)between(r, LARGE_MIN, LARGE_MAX);

        /* Never cut a UTF-8 sequence or an escape in two. */
        while ((large_text[tl] & 0xc0) == 0x80)
            tl--;
        if (large_text[tl - 1] == '\\')
            tl--;
        dl = sizeof(pre) - 1 + tl + sizeof(post) - 1;
        p = arena_get(w, dl);
        if (!p)
            return -ENOMEM;
        memcpy(p, pre, sizeof(pre) - 1);
        memcpy(p + sizeof(pre) - 1, large_text, tl);
        memcpy(p + sizeof(pre) - 1 + tl, post, sizeof(post) - 1);
        ev->data.ptr = p;
        ev->data.len = dl;
        ev->event_type = evs_span_cstr(EVS_EV_STEP_COMPLETED);
        w->large++;
    } else {
        dl = small_data(r, data, sizeof(data), &type);
        ev->data = arena_span(w, data, dl);
        ev->event_type = evs_span_cstr(type);
    }
    if (!ev->id.ptr || !ev->data.ptr)
        return -ENOMEM;
    w->data_bytes += ev->data.len;
    g->count++;
    return 0;
}

static void blocks_free(bench_workload *w)
{
    while (w->blocks) {
        bench_arena_blk *b = w->blocks;

        w->blocks = b->next;
        free(b);
    }
}

static void lines_free(bench_workload *w)
{
    free(w->lines);
    free(w->line_off);
    free(w->line_len);
    w->lines = NULL;
    w->line_off = w->line_len = NULL;
    w->line_bytes = 0;
}

int bench_gen_fill(bench_gen *g, bench_workload *w, size_t n)
{
    int rc;

    if ((rc = large_text_init()) != 0)
        return rc;
    blocks_free(w);
    lines_free(w);
    free(w->ev);
    w->n = 0;
    w->data_bytes = 0;
    w->large = 0;
    w->ev = calloc(n ? n : 1, sizeof(*w->ev));
    if (!w->ev)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((rc = gen_one(g, w, &w->ev[i])) != 0)
            return rc;
        w->n++;
    }
    return 0;
}

int bench_workload_make(bench_workload *w, uint64_t seed, size_t n)
{
    bench_gen g;

    bench_gen_init(&g, seed);
    return bench_gen_fill(&g, w, n);
}

int bench_workload_encode(bench_workload *w, const char *exec_id, size_t batch)
{
    size_t cap = 0, off = 0, len;
    evs_event e;
    int rc;

    lines_free(w);
    if (batch == 0)
        batch = 1;
    for (size_t i = 0; i < w->n; i++) {
        e = w->ev[i];
        e.execution_id = evs_span_cstr(exec_id);
        e.sequence = i + 1;
        e.batch_first = e.batch_count = 1;
        cap += evs_line_encoded_max(&e);
    }
    w->lines = floor_alloc_aligned(cap ? cap : 1);
    w->line_off = calloc(w->n ? w->n : 1, sizeof(size_t));
    w->line_len = calloc(w->n ? w->n : 1, sizeof(size_t));
    if (!w->lines || !w->line_off || !w->line_len) {
        lines_free(w);
        return -ENOMEM;
    }
    for (size_t i = 0; i < w->n; i++) {
        size_t first = i / batch * batch;
        size_t count = w->n - first < batch ? w->n - first : batch;

        e = w->ev[i];
        e.execution_id = evs_span_cstr(exec_id);
        e.sequence = i + 1;
        /* evstore marks every line of a multi-event append */
        e.batch_first = count > 1 ? first + 1 : 0;
        e.batch_count = count > 1 ? count : 0;
        rc = evs_line_encode(&e, w->lines + off, cap - off, &len);
        if (rc != 0) {
            lines_free(w);
            return rc;
        }
        w->line_off[i] = off;
        w->line_len[i] = len;
        off += len;
    }
    w->line_bytes = off;
    return 0;
}

void bench_workload_line_sizes(const bench_workload *w, size_t *p5, size_t *p50,
                               size_t *p95)
{
    double *v = malloc((w->n ? w->n : 1) * sizeof(*v));
    size_t n = 0;

    *p5 = *p50 = *p95 = 0;
    if (!v || !w->line_len) {
        free(v);
        return;
    }
    for (size_t i = 0; i < w->n; i++)
        if (w->line_len[i] < LARGE_MIN)
            v[n++] = (double)w->line_len[i];
    *p5 = (size_t)bench_quantile(v, n, 0.05);
    *p50 = (size_t)bench_quantile(v, n, 0.50);
    *p95 = (size_t)bench_quantile(v, n, 0.95);
    free(v);
}

void bench_workload_free(bench_workload *w)
{
    if (!w)
        return;
    blocks_free(w);
    lines_free(w);
    free(w->ev);
    memset(w, 0, sizeof(*w));
}

/* ------------------------------------------------------------------ */
/* Snapshots for listing                                              */
/* ------------------------------------------------------------------ */

static const char *const workflows[] = {"research_report", "triage_ticket",
                                        "code_review",     "customer_reply",
                                        "data_cleanup",    "weekly_digest"};

/* Copies s into the caller's buffer and returns its span. */
static evs_span bput(char **p, char *end, const char *s, size_t n)
{
    evs_span sp = {*p, 0};

    if (n > (size_t)(end - *p))
        n = (size_t)(end - *p);
    memcpy(*p, s, n);
    *p += n;
    sp.len = n;
    return sp;
}

const char *bench_gen_snapshot(bench_rng *r, evs_snapshot *sn, char *buf,
                               size_t cap, int64_t created_us)
{
    char *p = buf, *end = buf + cap, tmp[512], text[256], *e;
    unsigned k = (unsigned)bench_rng_below(r, 100);
    const char *status;
    int n;

    memset(sn, 0, sizeof(*sn));
    /* About 10% failed: what the listing filter looks for. */
    status = k < 10   ? "failed"
             : k < 65 ? "completed"
             : k < 90 ? "running"
             : k < 95 ? "waiting"
                      : "paused";
    sn->status = evs_span_cstr(status);
    sn->workflow_name = evs_span_cstr(PICK(r, workflows));
    n = snprintf(tmp, sizeof(tmp), "%016llx",
                 (unsigned long long)bench_rng_next(r));
    sn->workflow_hash = bput(&p, end, tmp, (size_t)n);
    n = snprintf(tmp, sizeof(tmp), "%016llx",
                 (unsigned long long)bench_rng_next(r));
    sn->inputs_hash = bput(&p, end, tmp, (size_t)n);
    sn->created_at_us = created_us;
    sn->start_time_us = created_us + (int64_t)between(r, 100, 5000);
    sn->updated_at_us =
        sn->start_time_us + (int64_t)between(r, 1000, 900000000);
    if (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0)
        sn->end_time_us = sn->updated_at_us;
    e = put_text(r, text, between(r, 20, 120), sizeof(text) - 1);
    n = snprintf(tmp, sizeof(tmp), "{\"prompt\":\"%.*s\",\"max_steps\":%u}",
                 (int)(e - text), text, (unsigned)between(r, 4, 40));
    sn->inputs = bput(&p, end, tmp, (size_t)n);
    if (strcmp(status, "failed") == 0) {
        e = put_text(r, text, between(r, 20, 80), sizeof(text) - 1);
        n = snprintf(tmp, sizeof(tmp), "{\"type\":\"%s\",\"message\":\"%.*s\"}",
                     PICK(r, errors), (int)(e - text), text);
        sn->error = bput(&p, end, tmp, (size_t)n);
    } else if (strcmp(status, "completed") == 0) {
        e = put_text(r, text, between(r, 40, 200), sizeof(text) - 1);
        n = snprintf(tmp, sizeof(tmp), "{\"summary\":\"%.*s\"}",
                     (int)(e - text), text);
        sn->outputs = bput(&p, end, tmp, (size_t)n);
    }
    n = snprintf(tmp, sizeof(tmp),
                 "{\"paths\":{\"main\":{\"step\":\"%s\",\"status\":\"%s\"}},"
                 "\"vars\":{\"%s\":%u}}",
                 PICK(r, steps), status, PICK(r, vars),
                 (unsigned)between(r, 0, 1000));
    sn->state = bput(&p, end, tmp, (size_t)n);
    return status;
}
