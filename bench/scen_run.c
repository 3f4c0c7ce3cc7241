/*
 * scen_run.c: P11, durable functions (include/evstore/run.h), reported as
 * Vercel's workflow benchmark reports code-first steps.
 *
 * Every repetition, once with a store in EVS_SYNC_FULL and once in
 * EVS_SYNC_NONE, runs p11_runs new runs of 100 sequential steps: each run
 * is opened with evs_run_open (which creates it), runs evs_run_step 100
 * times (every step named "step", recorded as "step" ... "step#100"),
 * whose body only gives the output {"ok":true}, then evs_run_complete and
 * evs_run_close. The body stamps when it is entered and when it returns.
 * From those stamps:
 *
 *  - time to first step: from the call of evs_run_open to the first body
 *    being entered (creating the run included);
 *  - step-to-step overhead: from one body returning to the next one being
 *    entered, 99 per run: the library's cost per step (the outcome made
 *    durable, the next step_started, the look at the inbox); p50, p90 and
 *    p99 over the repetition's runs;
 *  - overhead outside steps: the whole run (evs_run_open called to
 *    evs_run_close returned) less the time inside the bodies, per step.
 *
 * Beside them, in the same repetition and just before the runs, P1's
 * single-event appends (scen_append.c) of as many agent-like events as
 * the runs have steps, large outputs left out: the floor (write, then
 * fdatasync when durable, on a file opened O_APPEND) and evstore's own
 * (evs_log_append of one event per call). A step is designed as one
 * append of its two events (step_started with step_completed), so its
 * durable overhead is judged against one single-event append. There is no
 * SQLite peer.
 *
 * A warm-up run per durability, not measured, goes through an I/O table
 * that counts its system calls (scen_orch_floor.c), and is read back to
 * count the appends it made. The runs stay in the scenario's two stores
 * until it ends (scen_orch.c says why files are not removed between
 * repetitions).
 */
#include "evbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define P11_STEPS 100
#define P11_GAPS (P11_STEPS - 1)
/* The output every step's body gives. */
#define P11_OUTPUT "{\"ok\":true}"

/* When one run's bodies were entered and returned. */
typedef struct step_clock {
    uint64_t enter[P11_STEPS], leave[P11_STEPS];
    size_t n;
} step_clock;

/* What one run took, in µs: the time to its first step and its parts,
 * of which the scenario keeps the medians over each repetition's runs
 * (for the notes). */
enum {
    T_FIRST,      /* evs_run_open called -> first body entered */
    T_OPEN,       /* evs_run_open */
    T_AFTER_OPEN, /* evs_run_open returned -> first body entered */
    T_BODY,       /* inside a body, the mean over the run's steps */
    T_COMPLETE,   /* evs_run_complete */
    T_CLOSE,      /* evs_run_close */
    T_N
};

typedef struct run_times {
    double part[T_N];
    double whole;  /* evs_run_open called -> evs_run_close returned */
    double bodies; /* inside the bodies, in all */
} run_times;

/* The rows of one durability, in order. */
enum { R_FIRST, R_S50, R_S90, R_S99, R_OUTSIDE, R_APPEND, R_N };

static const char *const row_name[R_N] = {
    "time to first step (new run): p50",
    "step-to-step overhead: p50",
    "step-to-step overhead: p90",
    "step-to-step overhead: p99",
    "overhead outside steps, per step (floor: mean append)",
    "one event per evs_log_append: p50",
};

/* One durability's share of the scenario. */
typedef struct p11_mode {
    const char *name; /* in the rows: "durable", "no sync" */
    const char *tag;  /* of its ids */
    evs_durability d;
    int sync;
    evs_store *st;
    bench_row *row[R_N];
    double parts[T_N][BENCH_MAX_REPEAT];
    p9_log_count warm; /* the warm-up run read back */
    p9_io_counts io;   /* the system calls it made */
    double step_bytes; /* mean bytes of its step appends */
} p11_mode;

/* The buffers of a repetition. */
typedef struct p11_bufs {
    double *lat;  /* the floor's latencies, then evstore's: 2 x events */
    double *gaps; /* step-to-step times: runs x P11_GAPS */
    double *tmp;  /* runs */
    run_times *t; /* runs */
} p11_bufs;

static int body(void *arg, evs_run *r, const char *input)
{
    step_clock *k = arg;
    uint64_t t = bench_now_ns();
    int rc;

    (void)input;
    if (k->n == P11_STEPS)
        return -EOVERFLOW;
    k->enter[k->n] = t;
    rc = evs_run_step_output(r, P11_OUTPUT);
    k->leave[k->n++] = bench_now_ns();
    return rc;
}

static double us(uint64_t from, uint64_t to)
{
    return (double)(to - from) / 1e3;
}

/* Runs the new run `id` to its end; gaps[0..P11_GAPS) get its
 * step-to-step times, *t the rest. */
static int one_run(bench_ctx *c, evs_store *st, const char *id, double *gaps,
                   run_times *t)
{
    step_clock k;
    evs_error_info err;
    evs_run *r = NULL;
    uint64_t t0, t1, t2, t3, t4;
    int rc;

    k.n = 0;
    t0 = bench_now_ns();
    rc = evs_run_open(st, id, "p11", "1", NULL, NULL, &r, &err);
    t1 = bench_now_ns();
    if (rc != 0)
        return bench_fail(c, "evs_run_open %s: %s (%s)", id, err.msg,
                          evs_err_name(rc));
    for (size_t i = 0; i < P11_STEPS && rc == 0; i++)
        rc = evs_run_step(r, "step", NULL, NULL, body, &k, NULL, &err);
    t2 = bench_now_ns();
    if (rc == 0)
        rc = evs_run_complete(r, "{\"steps\":100}", &err);
    t3 = bench_now_ns();
    evs_run_close(r);
    t4 = bench_now_ns();
    if (rc != 0)
        return bench_fail(c, "run %s: %s (%s)", id, err.msg, evs_err_name(rc));
    if (k.n != P11_STEPS)
        return bench_fail(c, "run %s: %zu bodies ran for %d steps", id, k.n,
                          P11_STEPS);
    t->whole = us(t0, t4);
    t->bodies = 0;
    for (size_t i = 0; i < P11_STEPS; i++) {
        t->bodies += us(k.enter[i], k.leave[i]);
        if (i)
            gaps[i - 1] = us(k.leave[i - 1], k.enter[i]);
    }
    t->part[T_FIRST] = us(t0, k.enter[0]);
    t->part[T_OPEN] = us(t0, t1);
    t->part[T_AFTER_OPEN] = us(t1, k.enter[0]);
    t->part[T_BODY] = t->bodies / P11_STEPS;
    t->part[T_COMPLETE] = us(t2, t3);
    t->part[T_CLOSE] = us(t3, t4);
    return 0;
}

/* An unmeasured run in a store of its own, `dir`/<tag>-warm, whose I/O
 * table counts the system calls; then read back: its events and appends,
 * and the mean size of the appends of its steps (all but the first, the
 * creation, and the last, the completion). */
static int warm_up(bench_ctx *c, p11_mode *m, const char *dir)
{
    char id[32], path[4400];
    double gaps[P11_GAPS];
    p9_appends a = {0};
    evs_store *st = NULL;
    run_times t;
    int rc = -1;

    snprintf(id, sizeof(id), "%s-warm", m->tag);
    bench_path(path, sizeof(path), dir, id);
    if (p9_open_store(c, path, m->d, p9_io_counting(), &st) != 0)
        return -1;
    if (one_run(c, st, id, gaps, &t) != 0)
        goto out;
    p9_io_counted(&m->io);
    if (p9_count_log(c, st, id, NULL, &m->warm, &a) != 0)
        goto out;
    if (!m->warm.ended) {
        bench_fail(c, "%s: the log does not end with execution_completed", id);
        goto out;
    }
    if (a.n > 2)
        m->step_bytes = (double)(a.off[a.n - 1] - a.off[1]) / (double)(a.n - 2);
    rc = 0;
out:
    evs_store_close(st);
    free(a.buf);
    free(a.off);
    return rc;
}

static double sum(const double *v, size_t n)
{
    double s = 0;

    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

/* One repetition of one durability: the floor's and evstore's single
 * appends, then the runs. */
static int mode_rep(bench_ctx *c, p11_mode *m, bench_workload *w, int rep,
                    const p11_bufs *b)
{
    bench_append_job jf, je;
    size_t runs = c->sz.p11_runs, ng = runs * P11_GAPS;
    double *gaps = b->gaps, *tmp = b->tmp;
    run_times *t = b->t;
    char id[48];
    double whole = 0, bodies = 0;

    memset(&jf, 0, sizeof(jf));
    jf.w = w;
    jf.batch = 1;
    jf.sync = m->sync;
    jf.lat = b->lat;
    je = jf;
    je.lat = b->lat + w->n;
    bench_progress(c, 1, "p11 rep %d/%d, %s: floor", rep + 1, c->repeat,
                   m->name);
    snprintf(id, sizeof(id), "%s-r%02d.jsonl", m->tag, rep % 100);
    if (bench_floor_append(c, &jf, id) != 0)
        return -1;
    bench_progress(c, 1, "p11 rep %d/%d, %s: evs_log_append", rep + 1,
                   c->repeat, m->name);
    snprintf(id, sizeof(id), "%s-r%02d", m->tag, rep % 100);
    if (bench_evs_append(c, m->st, &je, id) != 0)
        return -1;
    for (size_t k = 0; k < runs; k++) {
        bench_progress(c, 0, "p11 rep %d/%d, %s: run %zu/%zu", rep + 1,
                       c->repeat, m->name, k + 1, runs);
        snprintf(id, sizeof(id), "%s-r%02d-%04zu", m->tag, rep % 100, k);
        if (one_run(c, m->st, id, gaps + k * P11_GAPS, &t[k]) != 0)
            return -1;
        whole += t[k].whole;
        bodies += t[k].bodies;
    }

    bench_row_push(m->row[R_APPEND], SYS_FLOOR,
                   bench_quantile(jf.lat, w->n, 0.5));
    bench_row_push(m->row[R_APPEND], SYS_EVSTORE,
                   bench_quantile(je.lat, w->n, 0.5));
    for (int q = 0; q < 3; q++) {
        static const double at[3] = {0.5, 0.9, 0.99};

        bench_row_push(m->row[R_S50 + q], SYS_FLOOR,
                       bench_quantile(jf.lat, w->n, at[q]));
        bench_row_push(m->row[R_S50 + q], SYS_EVSTORE,
                       bench_quantile(gaps, ng, at[q]));
    }
    bench_row_push(m->row[R_OUTSIDE], SYS_FLOOR,
                   sum(jf.lat, w->n) / (double)w->n);
    bench_row_push(m->row[R_OUTSIDE], SYS_EVSTORE,
                   (whole - bodies) / (double)(runs * P11_STEPS));

    for (int p = 0; p < T_N; p++) {
        for (size_t k = 0; k < runs; k++)
            tmp[k] = t[k].part[p];
        m->parts[p][rep] = bench_quantile(tmp, runs, 0.5);
    }
    bench_row_push(m->row[R_FIRST], SYS_EVSTORE, m->parts[T_FIRST][rep]);
    return 0;
}

/* The targets: a durable step costs about one single-event append (its
 * two events are one append); an unsynced one at most 10 µs. */
static void judge(p11_mode *d, p11_mode *n)
{
    static const int within_10us[] = {R_S50, R_OUTSIDE};
    double x = bench_row_median(d->row[R_S50], SYS_EVSTORE) /
               bench_row_median(d->row[R_APPEND], SYS_EVSTORE);

    bench_row_target(d->row[R_S50],
                     "≤ 1.2× one event per evs_log_append (p50): %.2f×", x);
    bench_row_judge(d->row[R_S50], x <= 1.2);
    for (size_t i = 0; i < sizeof(within_10us) / sizeof(int); i++) {
        bench_row *r = n->row[within_10us[i]];

        bench_row_target(r, "≤ 10 µs");
        bench_row_judge(r, bench_row_median(r, SYS_EVSTORE) <= 10);
    }
}

static void notes(bench_ctx *c, p11_mode *m, int nm, bench_workload *w)
{
    size_t p5, p50, p95;
    double med[T_N];

    bench_workload_line_sizes(w, &p5, &p50, &p95);
    bench_note(c,
               "P11: per repetition and durability, %zu new runs of %d "
               "steps (evs_run_step, all named \"step\", the body only "
               "gives the output %s), each completed and closed; before "
               "them %zu single-event appends by the floor and by "
               "evs_log_append (agent-like lines of %zu/%zu/%zu bytes, "
               "p5/p50/p95)",
               c->sz.p11_runs, P11_STEPS, P11_OUTPUT, w->n, p5, p50, p95);
    for (int i = 0; i < nm; i++) {
        for (int p = 0; p < T_N; p++)
            med[p] = bench_quantile(m[i].parts[p], (size_t)c->repeat, 0.5);
        bench_note(c,
                   "P11 %s, medians of the runs (µs): evs_run_open %.0f "
                   "(creating the run), from its return to the first body "
                   "%.1f, a body %.2f, evs_run_complete %.0f, "
                   "evs_run_close %.0f",
                   m[i].name, med[T_OPEN], med[T_AFTER_OPEN], med[T_BODY],
                   med[T_COMPLETE], med[T_CLOSE]);
        bench_note(c,
                   "P11 %s: step-to-step p50 %.2f× evs_log_append's "
                   "single-event p50; the warm-up run: %llu events in %llu "
                   "appends (a step's: %.0f bytes), %lu syncs, %lu writes, "
                   "%lu opens, %lu renames, %lu mkdirs",
                   m[i].name,
                   bench_row_median(m[i].row[R_S50], SYS_EVSTORE) /
                       bench_row_median(m[i].row[R_APPEND], SYS_EVSTORE),
                   (unsigned long long)m[i].warm.events,
                   (unsigned long long)m[i].warm.appends, m[i].step_bytes,
                   m[i].io.syncs, m[i].io.writes, m[i].io.opens,
                   m[i].io.renames, m[i].io.mkdirs);
    }
}

int scen_p11(bench_ctx *c)
{
    p11_mode m[2] = {
        {.name = "durable", .tag = "p11d", .d = EVS_SYNC_FULL, .sync = 1},
        {.name = "no sync", .tag = "p11n", .d = EVS_SYNC_NONE, .sync = 0},
    };
    size_t runs = c->sz.p11_runs, n = runs * P11_STEPS;
    bench_workload w = {0};
    bench_gen g;
    p11_bufs b = {0};
    char dir[4200], path[4400], metric[80];
    int rc = -1;

    bench_path(dir, sizeof(dir), c->root, "p11");
    if (mkdir(dir, 0700) != 0)
        return bench_fail(c, "mkdir %s: %s", dir, strerror(errno));
    /* A step's events are small: no large outputs. Encoded for the ids
     * of bench_evs_append below ("p11d-r00", "p11n-r01", ...). */
    bench_gen_init(&g, c->seed + 11);
    g.large_every = 0;
    if (bench_gen_fill(&g, &w, n) != 0 ||
        bench_workload_encode(&w, "p11d-r00", 1) != 0) {
        bench_fail(c, "generating events: out of memory");
        goto out;
    }
    b.lat = malloc(2 * n * sizeof(*b.lat));
    b.gaps = malloc(runs * P11_GAPS * sizeof(*b.gaps));
    b.tmp = malloc(runs * sizeof(*b.tmp));
    b.t = malloc(runs * sizeof(*b.t));
    if (!b.lat || !b.gaps || !b.tmp || !b.t) {
        bench_fail(c, "out of memory");
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        bench_path(path, sizeof(path), dir, m[i].tag);
        if (p9_open_store(c, path, m[i].d, NULL, &m[i].st) != 0)
            goto out;
        for (int r = 0; r < R_N; r++) {
            snprintf(metric, sizeof(metric), "%s: %s", m[i].name, row_name[r]);
            m[i].row[r] = bench_row_add(c, "P11", metric, "µs", 1);
        }
        bench_progress(c, 1, "p11: warm-up, %s", m[i].name);
        if (warm_up(c, &m[i], dir) != 0)
            goto out;
    }
    for (int rep = 0; rep < c->repeat; rep++)
        for (int i = 0; i < 2; i++)
            if (mode_rep(c, &m[i], &w, rep, &b) != 0)
                goto out;
    judge(&m[0], &m[1]);
    notes(c, m, 2, &w);
    rc = 0;
out:
    for (int i = 0; i < 2; i++)
        evs_store_close(m[i].st);
    if (!c->keep)
        floor_rm_rf(dir);
    bench_workload_free(&w);
    free(b.lat);
    free(b.gaps);
    free(b.tmp);
    free(b.t);
    return rc;
}
