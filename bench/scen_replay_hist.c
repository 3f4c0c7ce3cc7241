/*
 * scen_replay_hist.c: the agent-like history that P5 and P7 replay (in
 * scen_replay.c), made once per run, in the bench's store and in SQLite,
 * and shared; and its strict replay, checked against what was written.
 *
 * The history follows FORMAT.md §6: a root path that plans and then
 * fans out to worker paths (path_branched) every ~10 k events; workers
 * run `each` iterations of search, fetch and summarize steps with
 * outputs kept in variables; some fetches fail and are retried
 * (step_failed + retry_scheduled); approvals are waits ended by signals;
 * pauses between items are timers; the root consumes buffered user
 * signals, records version decisions and sets variables.
 */
#include "evbench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPEND_N 1000
#define HBUF ((size_t)4 << 20)
/* A batch is flushed before its buffer could overflow. */
#define EVENT_MAX ((size_t)80 << 10)
#define WORKERS 3
#define FANOUT_EVENTS 10000
/* 2026-11-22T10:15:30Z, as data.c. */
#define T0_US INT64_C(1795342530000000)

bench_hist g_hist;

/* ------------------------------------------------------------------ */
/* The generator                                                      */
/* ------------------------------------------------------------------ */

/* Words of JSON string text (escaped where needed). */
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
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char *const errors[] = {"timeout", "rate_limited", "tool_error",
                                     "http_503"};

typedef struct worker {
    char path[32];
    uint64_t signal_seq; /* a received approval not yet ended, or 0 */
    int waiting;         /* 1: approval wait, 2: timer */
    uint64_t timer;
} worker;

typedef struct hist {
    bench_ctx *c;
    bench_rng rng;
    evs_log *log;
    sqlite3 *db;
    sqlite3_stmt *ins;
    evs_event ev[APPEND_N];
    size_t n;
    char *buf;
    size_t used;
    uint64_t seq;      /* the last sequence emitted */
    uint64_t appended; /* the last sequence appended */
    uint64_t total;
    int64_t t_us;
    uint64_t bytes;
    bench_hist_counts want;
    uint64_t failures, large;
    uint64_t user_signal; /* a buffered signal on the root, or 0 */
    int err;
    /* scratch for one event's data */
    char data[EVENT_MAX];
    size_t dlen;
} hist;

static uint64_t between(bench_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + bench_rng_below(r, hi - lo + 1);
}

/* Appends about `len` bytes of words to the data scratch. */
static void text(hist *h, size_t len)
{
    size_t start = h->dlen;

    while (h->dlen - start < len && h->dlen + 64 < EVENT_MAX) {
        const char *w = words[bench_rng_below(&h->rng, NWORDS)];
        size_t wl = strlen(w);

        if (h->dlen != start) {
            if (bench_rng_below(&h->rng, 16) == 0) {
                memcpy(h->data + h->dlen, "\\n", 2);
                h->dlen += 2;
            } else {
                h->data[h->dlen++] = ' ';
            }
        }
        memcpy(h->data + h->dlen, w, wl);
        h->dlen += wl;
    }
}

static void put(hist *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(hist *h, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(h->data + h->dlen, EVENT_MAX - h->dlen, fmt, ap);
    va_end(ap);
    if (n > 0)
        h->dlen += (size_t)n < EVENT_MAX - h->dlen ? (size_t)n
                                                   : EVENT_MAX - h->dlen - 1;
}

static void clear(hist *h)
{
    h->dlen = 0;
}

static evs_span keep(hist *h, const char *s, size_t n)
{
    char *p = h->buf + h->used;

    memcpy(p, s, n);
    h->used += n;
    return (evs_span){p, n};
}

/* Appends the events emitted so far, to evstore and to SQLite. */
static int flush(hist *h)
{
    evs_error_info info;
    bench_ctx *c = h->c;
    int rc;

    if (h->n == 0 || h->err)
        return h->err;
    bench_progress(c, 0, "%s setup: %llu/%llu events", c->cur_scenario,
                   (unsigned long long)h->appended,
                   (unsigned long long)h->total);
    rc = evs_log_append(h->log, h->ev, h->n, h->appended, &info);
    if (rc != 0)
        return h->err = bench_fail(c, "evs_log_append: %s", info.msg);
    if (sq_exec(c, h->db, "BEGIN") != 0)
        return h->err = -1;
    for (size_t i = 0; i < h->n; i++)
        if (sq_insert(c, h->ins, BENCH_HIST_ID, h->appended + i + 1, &h->ev[i]))
            return h->err = -1;
    if (sq_exec(c, h->db, "COMMIT") != 0)
        return h->err = -1;
    h->appended += h->n;
    h->n = 0;
    h->used = 0;
    return 0;
}

/* Emits one event with the data scratch; returns its sequence. */
static uint64_t emit(hist *h, const char *type, const char *path,
                     const char *step)
{
    bench_rng *r = &h->rng;
    char id[EVS_UUID_LEN + 1];
    evs_event *ev;
    uint64_t a, b, ms;

    if (h->n == APPEND_N || HBUF - h->used < EVENT_MAX + 256)
        flush(h);
    if (h->err)
        return ++h->seq;
    ev = &h->ev[h->n++];
    memset(ev, 0, sizeof(*ev));
    h->t_us += (int64_t)between(r, 200, 6000);
    ev->timestamp_us = h->t_us;
    /* UUIDv7-shaped, from the stream: the same bytes for every system. */
    a = bench_rng_next(r);
    b = bench_rng_next(r);
    ms = (uint64_t)(h->t_us / 1000);
    snprintf(id, sizeof(id), "%08llx-%04llx-7%03llx-%04llx-%012llx",
             (unsigned long long)((ms >> 16) & 0xffffffffu),
             (unsigned long long)(ms & 0xffff), (unsigned long long)(a & 0xfff),
             (unsigned long long)(0x8000 | ((a >> 12) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffull));
    ev->id = keep(h, id, EVS_UUID_LEN);
    ev->event_type = evs_span_cstr(type);
    ev->path_id = keep(h, path, strlen(path));
    ev->step_name = keep(h, step, strlen(step));
    ev->data = keep(h, h->data, h->dlen);
    h->bytes += h->dlen;
    return ++h->seq;
}

static void step_started(hist *h, const char *path, const char *step, long iter,
                         long count, int attempt)
{
    clear(h);
    put(h, "{\"attempt\":%d,\"iteration\":%ld,", attempt, iter);
    if (count > 0)
        put(h, "\"count\":%ld,", count);
    put(h, "\"kind\":\"action\",\"input\":{\"query\":\"");
    text(h, (size_t)between(&h->rng, 10, 60));
    put(h, "\",\"max_results\":%u}}", (unsigned)between(&h->rng, 3, 20));
    emit(h, EVS_EV_STEP_STARTED, path, step);
    if (attempt == 1)
        h->want.steps++;
}

/* step_completed with a text output kept in `var`. */
static void step_done(hist *h, const char *path, const char *step, long iter,
                      size_t len, const char *var)
{
    clear(h);
    put(h, "{\"iteration\":%ld,\"output\":\"", iter);
    text(h, len);
    put(h,
        "\",\"stored_variable\":\"%s\",\"tokens\":{\"prompt\":%u,"
        "\"completion\":%u}}",
        var, (unsigned)between(&h->rng, 200, 9000),
        (unsigned)between(&h->rng, 20, 900));
    emit(h, EVS_EV_STEP_COMPLETED, path, step);
}

/* One item of a worker: search, fetch (maybe failing once), summarize;
 * then, sometimes, an approval wait or a pause on a timer. */
static void item(hist *h, worker *w, long i, long count)
{
    bench_rng *r = &h->rng;
    size_t page;

    step_started(h, w->path, "search", i, count, 1);
    clear(h);
    put(h,
        "{\"iteration\":%ld,\"output\":{\"tool\":\"web_search\","
        "\"results\":[\"",
        i);
    text(h, (size_t)between(r, 20, 60));
    put(h, "\",\"");
    text(h, (size_t)between(r, 20, 60));
    put(h, "\"],\"result_count\":%u},\"stored_variable\":\"results\"}",
        (unsigned)between(r, 1, 50));
    emit(h, EVS_EV_STEP_COMPLETED, w->path, "search");

    step_started(h, w->path, "fetch", i, count, 1);
    if (bench_rng_below(r, 100) < 8) {
        clear(h);
        put(h,
            "{\"iteration\":%ld,\"error\":{\"type\":\"%s\",\"message\":"
            "\"",
            i, errors[bench_rng_below(r, 4)]);
        text(h, (size_t)between(r, 10, 40));
        put(h, "\",\"retryable\":true}}");
        emit(h, EVS_EV_STEP_FAILED, w->path, "fetch");
        clear(h);
        put(h, "{\"iteration\":%ld,\"attempt\":2,\"delay_ms\":%u}", i,
            (unsigned)between(r, 100, 4000));
        emit(h, "retry_scheduled", w->path, "fetch");
        step_started(h, w->path, "fetch", i, count, 2);
        h->failures++;
    }
    /* About one page in 500 is long (16-64 KiB). */
    page = (size_t)between(r, 200, 800);
    if (bench_rng_below(r, 500) == 0) {
        page = (size_t)between(r, 16 << 10, 64 << 10);
        h->large++;
    }
    step_done(h, w->path, "fetch", i, page, "page");

    step_started(h, w->path, "summarize", i, count, 1);
    step_done(h, w->path, "summarize", i, (size_t)between(r, 100, 300),
              "summary");

    if (bench_rng_below(r, 100) < 5) {
        clear(h);
        put(h, "{\"signal\":\"approval\",\"timeout_at\":\"");
        evs_time_format(h->t_us + INT64_C(3600000000), h->data + h->dlen);
        h->dlen += EVS_TIME_LEN;
        put(h, "\"}");
        emit(h, "wait_started", w->path, "approve");
        h->want.waits++;
        w->waiting = 1;
    } else if (bench_rng_below(r, 100) < 3) {
        clear(h);
        w->timer = h->seq + 1;
        put(h, "{\"timer_id\":\"t%llu\",\"fire_at\":\"",
            (unsigned long long)w->timer);
        evs_time_format(h->t_us + INT64_C(30000000), h->data + h->dlen);
        h->dlen += EVS_TIME_LEN;
        put(h, "\"}");
        emit(h, "timer_started", w->path, "pause");
        h->want.timers++;
        w->waiting = 2;
    }
}

/* A waiting worker's turn: the approval arrives, or the timer fires. */
static void resume(hist *h, worker *w)
{
    if (w->waiting == 1 && !w->signal_seq) {
        clear(h);
        put(h,
            "{\"signal\":\"approval\",\"payload\":{\"approved\":true,"
            "\"by\":\"reviewer-%u\",\"comment\":\"",
            (unsigned)bench_rng_below(&h->rng, 40));
        text(h, (size_t)between(&h->rng, 10, 80));
        put(h, "\"}}");
        w->signal_seq = emit(h, EVS_EV_SIGNAL_RECEIVED, w->path, "approve");
        h->want.signals++;
        return; /* the wait ends on the worker's next turn */
    }
    clear(h);
    if (w->waiting == 1) {
        put(h, "{\"signal_seq\":%llu}", (unsigned long long)w->signal_seq);
        emit(h, "wait_ended", w->path, "approve");
        w->signal_seq = 0;
    } else {
        put(h, "{\"timer_id\":\"t%llu\"}", (unsigned long long)w->timer);
        emit(h, "timer_fired", w->path, "pause");
    }
    w->waiting = 0;
}

/* The root's occasional work between worker turns: a user message that
 * is buffered, then consumed a little later. */
static void root_turn(hist *h)
{
    bench_rng *r = &h->rng;

    if (h->user_signal && bench_rng_below(r, 4) == 0) {
        clear(h);
        put(h, "{\"signal_seq\":%llu}", (unsigned long long)h->user_signal);
        emit(h, "signal_consumed", "main", "plan");
        h->user_signal = 0;
    } else if (!h->user_signal && bench_rng_below(r, 200) == 0) {
        clear(h);
        put(h, "{\"signal\":\"user_message\",\"payload\":{\"text\":\"");
        text(h, (size_t)between(r, 20, 200));
        put(h, "\"}}");
        h->user_signal = emit(h, EVS_EV_SIGNAL_RECEIVED, "main", "");
        h->want.signals++;
    }
}

/* One fan-out: plan on the root, branch workers, run their items round
 * robin within `budget` events, then complete them and join. */
static void fanout(hist *h, long b, uint64_t budget)
{
    worker w[WORKERS];
    uint64_t start = h->seq;
    /* ~20 events per round of all workers */
    long count = (long)(budget / (WORKERS * 7)), i = 0;

    memset(w, 0, sizeof(w));
    step_started(h, "main", "plan", b, 0, 1);
    clear(h);
    put(h, "{\"iteration\":%ld,\"output\":{\"subtasks\":%d,\"outline\":\"", b,
        WORKERS);
    text(h, (size_t)between(&h->rng, 80, 300));
    put(h, "\"},\"stored_variable\":\"plan\"}");
    emit(h, EVS_EV_STEP_COMPLETED, "main", "plan");
    clear(h);
    put(h, "{\"new_paths\":[");
    for (int k = 0; k < WORKERS; k++) {
        snprintf(w[k].path, sizeof(w[k].path), "b%ld.w%d", b, k);
        put(h, "%s{\"id\":\"%s\",\"current_step\":\"search\"}", k ? "," : "",
            w[k].path);
    }
    put(h, "]}");
    emit(h, EVS_EV_PATH_BRANCHED, "main", "plan");
    h->want.paths += WORKERS;
    h->want.eaches += 3 * WORKERS;
    for (int k = 0; k < WORKERS; k++) {
        clear(h);
        put(h, "{\"parent\":\"main\",\"current_step\":\"search\"}");
        emit(h, EVS_EV_PATH_STARTED, w[k].path, "");
    }
    if (b % 10 == 0) {
        clear(h);
        put(h,
            "{\"change_id\":\"fanout-%ld-policy\",\"version\":2,"
            "\"min\":1,\"max\":3}",
            b);
        emit(h, EVS_EV_VERSION_DECISION, "main", "plan");
        h->want.versions++;
    }
    /* Leave room for the round in progress and the closing events. */
    while (h->seq - start + 40 + 3 * WORKERS < budget && i < count) {
        for (int k = 0; k < WORKERS; k++) {
            if (w[k].waiting)
                resume(h, &w[k]);
            else if (i < count)
                item(h, &w[k], i, count);
        }
        root_turn(h);
        i++;
    }
    for (int k = 0; k < WORKERS; k++) {
        while (w[k].waiting)
            resume(h, &w[k]);
        clear(h);
        put(h, "{}");
        emit(h, EVS_EV_PATH_COMPLETED, w[k].path, "");
    }
    step_started(h, "main", "join", b, 0, 1);
    step_done(h, "main", "join", b, (size_t)between(&h->rng, 200, 600),
              "report");
    clear(h);
    put(h, "{\"name\":\"fanouts_done\",\"value\":%ld}", b + 1);
    emit(h, "variable_set", "main", "");
}

/* Writes the whole history: `total` events, the last one completing the
 * execution. */
static int generate(hist *h)
{
    long b = 0;

    clear(h);
    put(h, "{\"workflow_name\":\"research_agent\",\"inputs\":{\"topic\":\"");
    text(h, 60);
    put(h, "\",\"depth\":3},\"definition_hash\":\"sha256:4f2a9c\","
           "\"inputs_hash\":\"sha256:77b1e0\"}");
    emit(h, EVS_EV_EXECUTION_STARTED, "main", "");
    h->want.paths = 1;
    clear(h);
    put(h, "{\"change_id\":\"planner-v2\",\"version\":2,\"min\":1,"
           "\"max\":2}");
    emit(h, EVS_EV_VERSION_DECISION, "main", "");
    h->want.versions = 1;
    while (h->total - h->seq > FANOUT_EVENTS / 4 && !h->err) {
        uint64_t left = h->total - h->seq - 1;
        fanout(h, b++, left < FANOUT_EVENTS ? left : FANOUT_EVENTS);
    }
    if (b > 0) {
        h->want.eaches += 2; /* plan and join on the root */
        /* plan, results, page, summary, report, fanouts_done */
        h->want.vars += 6;
    }
    /* Progress notes up to the end, then the completion. */
    if (h->seq + 1 < h->total)
        h->want.vars++;
    while (h->seq + 1 < h->total && !h->err) {
        clear(h);
        put(h, "{\"name\":\"progress\",\"value\":{\"events\":%llu}}",
            (unsigned long long)h->seq);
        emit(h, "variable_set", "main", "");
    }
    clear(h);
    put(h, "{\"outputs\":{\"report\":\"");
    text(h, 200);
    put(h, "\"}}");
    emit(h, EVS_EV_EXECUTION_COMPLETED, "main", "");
    return flush(h);
}

int bench_hist_ensure(bench_ctx *c)
{
    evs_error_info info;
    evs_store *st = NULL;
    hist *h;
    uint64_t t0 = bench_now_ns();
    int rc = -1, err;

    if (g_hist.ready)
        return 0;
    h = calloc(1, sizeof(*h));
    if (h)
        h->buf = malloc(HBUF);
    if (!h || !h->buf) {
        bench_fail(c, "out of memory");
        goto out;
    }
    h->c = c;
    h->total = c->sz.log_events;
    h->t_us = T0_US;
    bench_rng_seed(&h->rng, c->seed + 5);
    if (bench_store_open(c, EVS_SYNC_NONE, &st) != 0)
        goto out;
    err = evs_exec_create(st, BENCH_HIST_ID, strlen(BENCH_HIST_ID), NULL, NULL,
                          0);
    if (err == 0)
        err = evs_log_open(st, BENCH_HIST_ID, strlen(BENCH_HIST_ID),
                           EVS_LOG_WRITE, &h->log, NULL, &info);
    if (err != 0) {
        bench_evs_fail(c, err, "creating the replay history");
        goto out;
    }
    if (sq_open(c, BENCH_HIST_DB, "OFF", &h->db, &h->ins) != 0)
        goto out;
    if (generate(h) != 0)
        goto out;
    if (sq_exec(c, h->db, "PRAGMA wal_checkpoint(TRUNCATE)") != 0)
        goto out;
    g_hist.events = evs_log_last_seq(h->log);
    g_hist.bytes = evs_log_size(h->log);
    g_hist.want = h->want;
    g_hist.failures = h->failures;
    g_hist.large = h->large;
    g_hist.setup_s = (double)(bench_now_ns() - t0) / 1e9;
    g_hist.ready = 1;
    bench_note(
        c,
        "P5/P7 history: %llu events in %llu fan-outs to %d "
        "worker paths (%llu paths, %llu steps, %llu fetch "
        "failures retried, %llu long pages, %llu signals, %llu "
        "waits, %llu timers), %.1f MiB, mean line %.0f bytes, "
        "written in %d-event appends; setup (evstore + SQLite) "
        "%.1f s",
        (unsigned long long)g_hist.events,
        (unsigned long long)((h->want.paths - 1) / WORKERS), WORKERS,
        (unsigned long long)h->want.paths, (unsigned long long)h->want.steps,
        (unsigned long long)h->failures, (unsigned long long)h->large,
        (unsigned long long)h->want.signals, (unsigned long long)h->want.waits,
        (unsigned long long)h->want.timers, (double)g_hist.bytes / 1048576.0,
        (double)g_hist.bytes / (double)g_hist.events, APPEND_N, g_hist.setup_s);
    rc = 0;
out:
    if (h) {
        sq_close(c, h->db, BENCH_HIST_DB, 0);
        evs_log_close(h->log);
        free(h->buf);
        free(h);
    }
    evs_store_close(st);
    return rc;
}

void bench_hist_drop(bench_ctx *c, evs_store *st)
{
    if (!g_hist.ready || c->keep)
        return;
    if (st)
        evs_exec_delete(st, BENCH_HIST_ID, strlen(BENCH_HIST_ID));
    sq_close(c, NULL, BENCH_HIST_DB, 1);
    evs_free(NULL, g_hist.state);
    memset(&g_hist, 0, sizeof(g_hist));
}

/* ------------------------------------------------------------------ */
/* Replaying                                                          */
/* ------------------------------------------------------------------ */

int bench_hist_replay(bench_ctx *c, evs_store *st, int want_snapshot,
                      int compact, evs_replay **out)
{
    evs_replay_opts o;
    evs_error_info info;
    evs_replay *r;
    int rc, fs = -1;

    evs_replay_opts_init(&o);
    o.compact = compact;
    if ((rc = evs_replay_new(&o, &r)) != 0)
        return bench_evs_fail(c, rc, "evs_replay_new");
    evs_error_info_clear(&info);
    rc = evs_replay_open(r, st, BENCH_HIST_ID, strlen(BENCH_HIST_ID), 0, &fs,
                         &info);
    *out = r;
    if (rc == EVS_EHISTORY)
        return bench_fail(c,
                          "the history breaks rule %s at sequence %llu: "
                          "%s",
                          info.kind, (unsigned long long)info.sequence,
                          info.msg);
    if (rc != 0)
        return bench_fail(c, "evs_replay_open: %s (%s)",
                          info.msg[0] ? info.msg : evs_strerror(rc),
                          evs_err_name(rc));
    if (fs != want_snapshot)
        return bench_fail(c, "evs_replay_open %s the snapshot",
                          fs ? "started from" : "did not start from");
    return 0;
}

/* A compact replay keeps every path, variable and version, and of the
 * rest only what is still live: at the end every worker path has ended
 * and every wait, timer and signal is over, so only the root's steps and
 * `each` records stay. */
int bench_hist_check(bench_ctx *c, const evs_replay *r, int compact)
{
    const bench_hist_counts *w = &g_hist.want;
    const evs_exec_state *x = evs_replay_exec(r);
    uint64_t fanouts = (w->paths - 1) / WORKERS;
    struct {
        const char *what;
        uint64_t got, want;
    } k[] = {
        {"events", x->last_seq, g_hist.events},
        {"paths", evs_replay_path_count(r), w->paths},
        {"steps", evs_replay_step_count(r), compact ? 2 * fanouts : w->steps},
        {"each", evs_replay_each_count(r),
         compact ? (fanouts ? 2 : 0) : w->eaches},
        {"variables", evs_replay_var_count(r), w->vars},
        {"signals", evs_replay_signal_count(r), compact ? 0 : w->signals},
        {"versions", evs_replay_version_count(r), w->versions},
        {"timers", evs_replay_timer_count(r), compact ? 0 : w->timers},
        {"waits", evs_replay_wait_count(r), compact ? 0 : w->waits},
    };

    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (k[i].got != k[i].want)
            return bench_fail(c,
                              "replay found %llu %s, the history has "
                              "%llu",
                              (unsigned long long)k[i].got, k[i].what,
                              (unsigned long long)k[i].want);
    if (x->status != EVS_STATUS_COMPLETED)
        return bench_fail(c, "replayed status %s, not completed",
                          evs_exec_status_name(x->status));
    return 0;
}
