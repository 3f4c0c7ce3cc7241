/*
 * test_run_faults.c: a run's calls under I/O faults and allocation
 * failures (include/evstore/run.h), as SQLite's I/O-error and
 * malloc-failure loops do (docs/STYLE.md, Tests).
 *
 * One fixed script of run calls: open a new run with inputs; steps "a",
 * "b" (whose first attempt fails and is retried after a 1 ms backoff)
 * and "c" (by evs_run_step_begin and evs_run_step_end); evs_run_patched;
 * a short sleep; an event posted to the run and waited for; completion.
 * For every N, the Nth call of one I/O kind fails (once, or from then
 * on), or the Nth allocation, until a pass meets no fault. The call that
 * fails must fail cleanly: the injected code, a message, nothing leaked
 * once the run and the store are closed (the store allocates through a
 * counting tu_alloc), no hang. Then the store is reopened without faults
 * and the whole script runs again on the same run id, as a durable
 * function's host re-runs its code: it must complete; no step whose end
 * was acknowledged may run its body again or return another output; an
 * acknowledged retry and an acknowledged event may not be lost; the
 * history must replay strictly from sequence 1.
 *
 * The sweeps arm their fault from the first call of the script; the
 * narrower ones arm it just before one call and stop the faulted pass
 * after it (the open, a step, the sleep, the wait, the completion): the
 * smallest reproducer of a failure there. A case that breaks a rule is
 * counted and printed with its fault, and the sweep goes on, so that a
 * test lists every case it failed; it fails at its end. Every sweep
 * prints its figures to stderr.
 */
#include "evstore/orchestrator.h"
#include "fault_io.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INPUTS "{\"topic\":\"faults\"}"
#define B_OPTS "{\"retry\":{\"max_attempts\":3,\"initial_interval_ms\":1}}"
#define EVENT "go"
#define PAYLOAD "{\"by\":\"alice\"}"
#define OUTPUT "{\"ok\":true}"
#define SLEEP_MS 3
/* Guards against a hang, not measurements: a wait for an event that was
 * lost ends with -ETIMEDOUT; a call that hangs all the same is ended by
 * a termination the watchdog posts. A case takes some 20 ms. */
#define WAIT_MS 20000
#define WATCHDOG_S 10

/* The script's calls, in order. */
enum {
    C_OPEN,
    C_STEP_A,
    C_STEP_B,
    C_STEP_C,
    C_PATCHED,
    C_SLEEP,
    C_POST,
    C_WAIT,
    C_COMPLETE,
    N_CALLS
};

static const char *const call_name[N_CALLS] = {
    "evs_run_open",  "evs_run_step(a)",    "evs_run_step(b)",
    "step c",        "evs_run_patched",    "evs_run_sleep",
    "evs_orch_post", "evs_run_wait_event", "evs_run_complete"};

/* The name of call i, which may be N_CALLS: no call, all succeeded. */
static const char *call_of(int i)
{
    return i < N_CALLS ? call_name[i] : "(none)";
}

/* The steps that have a body. */
enum { S_A, S_B, S_C, N_STEPS };
static const char *const step_name[N_STEPS] = {"a", "b", "c"};
static const char *const step_input[N_STEPS] = {"{\"n\":1}", "{\"n\":2}",
                                                "{\"n\":3}"};

#define OUT_MAX 96

/* One pass of the script: it stops at the first call that fails. */
typedef struct pass {
    int done; /* calls that succeeded: the acknowledged ones */
    int rc;   /* the code of call `done`, which failed; 0 if none */
    char msg[256];
    int finished;               /* evs_run_open said EVS_EFINISHED */
    char out[N_STEPS][OUT_MAX]; /* each step's output as returned */
} pass;

/* What to inject: the Nth call of kinds `io` (0: the Nth allocation),
 * counted from call `from` of the script; the faulted pass stops after
 * call `upto`. */
typedef struct fault {
    unsigned io;
    const char *kind;
    int err;     /* a -errno, or FIO_SHORT */
    int persist; /* the Nth and every later one */
    int from, upto;
} fault;

/* Posts a termination to a run that hangs (WATCHDOG_S). */
typedef struct watchdog {
    pthread_t t;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *id;
    int done, fired;
} watchdog;

/* One case: the faulted pass and the re-run, on one run id. */
typedef struct runcase {
    evs_store *s;
    char id[48];
    char where[96]; /* the fault, for messages */
    fault_io fio;
    tu_alloc ta;
    const fault *f;
    long nth;
    int armed;     /* the fault is armed */
    int fired;     /* the fault was injected */
    long counted;  /* calls of its kind while it was armed */
    char bad[320]; /* the first rule the case broke, "" if none */
    pass p[2];
    int cur; /* the pass running */
    /* Body calls of each step over both passes, and in the first. */
    int calls[N_STEPS], calls_first[N_STEPS];
    char last_out[N_STEPS][OUT_MAX]; /* the last output a body gave */
    long serial;                     /* makes every body's output unique */
    int b_second_seen; /* b's body met attempt 2: attempt 1 is recorded */
    int b_first_again; /* and met attempt 1 after that */
    watchdog wd;
} runcase;

/* A sweep's figures. */
typedef struct totals {
    long cases, fired, absorbed, count, violations;
    char first[512]; /* the first violation */
    long failed_at[N_CALLS];
    long bodies_rerun; /* steps not acknowledged whose body ran again */
    long left;         /* requests recorded, and left in an ended run's inbox */
} totals;

static char *dir;

static void setup(void)
{
    dir = tu_scratch_dir("EVS_RUN_FAULTS_TMP", "runfaults");
}

static void teardown(void)
{
    tu_rmtree_free(dir);
    dir = NULL;
}

TestSuite(run_faults, .init = setup, .fini = teardown, .timeout = 600);

/* A rule of case c: 1 if cond holds; else records the first rule the
 * case broke (the printf-like message) and returns 0. */
static int ok(runcase *c, int cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ok(runcase *c, int cond, const char *fmt, ...)
{
    va_list ap;

    if (cond)
        return 1;
    if (!c->bad[0]) {
        va_start(ap, fmt);
        vsnprintf(c->bad, sizeof(c->bad), fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The watchdog                                                       */
/* ------------------------------------------------------------------ */

static void *watch(void *arg)
{
    watchdog *w = arg;
    struct timespec until;
    evs_store *s;
    int timed_out = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WATCHDOG_S;
    pthread_mutex_lock(&w->mu);
    while (!w->done && !timed_out)
        timed_out = pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0;
    w->fired = !w->done;
    pthread_mutex_unlock(&w->mu);
    if (w->fired && (s = tu_open_store(dir, NULL)) != NULL) {
        evs_orch_post(s, evs_span_cstr(w->id), evs_span_cstr("terminate"),
                      evs_span_cstr(""), evs_span_cstr("\"hung\""));
        evs_store_close(s);
    }
    return NULL;
}

static void watch_start(watchdog *w, const char *id)
{
    w->id = id;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    cr_assert_eq(pthread_create(&w->t, NULL, watch, w), 0);
}

/* Whether it has terminated the run, which hung. */
static int watch_fired(watchdog *w)
{
    int fired;

    pthread_mutex_lock(&w->mu);
    fired = w->fired;
    pthread_mutex_unlock(&w->mu);
    return fired;
}

/* Stops it; returns whether it had to terminate the run. */
static int watch_stop(watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->t, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return w->fired;
}

/* ------------------------------------------------------------------ */
/* The script                                                         */
/* ------------------------------------------------------------------ */

typedef struct body {
    runcase *c;
    int step;
} body;

/* A step's output, unique to the call: c->last_out[step]. */
static const char *make_output(runcase *c, int step, uint32_t attempt)
{
    c->calls[step]++;
    snprintf(c->last_out[step], OUT_MAX,
             "{\"step\":\"%s\",\"attempt\":%u,\"call\":%ld}", step_name[step],
             attempt, ++c->serial);
    return c->last_out[step];
}

/* The body of steps a and b (b's first attempt fails). It hands on what
 * evs_run_step_output returns, as a host would. */
static int body_fn(void *arg, evs_run *r, const char *input)
{
    body *b = arg;
    runcase *c = b->c;
    uint32_t attempt = evs_run_step_attempt(r);

    (void)input;
    if (b->step == S_B && attempt == 1) {
        c->calls[S_B]++;
        if (c->b_second_seen)
            c->b_first_again = 1;
        if (evs_run_step_error(r, "flaky", "the first attempt fails", 1))
            return -ENOMEM;
        return -EAGAIN;
    }
    if (b->step == S_B)
        c->b_second_seen = 1;
    return evs_run_step_output(r, make_output(c, b->step, attempt));
}

static void arm(runcase *c)
{
    const fault *f = c->f;

    c->armed = 1;
    if (f->io)
        fault_io_arm(&c->fio, f->io, c->nth, f->err, f->persist);
    else
        tu_alloc_fail(&c->ta, c->nth, f->persist ? TU_FAIL_FROM : TU_FAIL_ONCE);
}

/* Ends the fault: from here on nothing fails. */
static void disarm(runcase *c)
{
    if (!c->armed)
        return;
    c->armed = 0;
    c->counted = c->f->io ? c->fio.calls : c->ta.calls;
    if (c->f->io) {
        c->fired |= c->fio.fired > 0;
        fault_io_disarm(&c->fio);
    } else {
        c->fired |= c->ta.failed > 0;
        tu_alloc_stop(&c->ta);
    }
}

/* The result of a call: 1 if it succeeded (the script goes on; the fault
 * is armed before call f->from of the faulted pass), 0 if it failed,
 * which ends the pass (the fault is disarmed at once). */
static int went(runcase *c, int rc, const evs_error_info *e)
{
    pass *p = &c->p[c->cur];

    if (rc != 0) {
        p->rc = rc;
        snprintf(p->msg, sizeof(p->msg), "%s", e ? e->msg : "(no message)");
        disarm(c);
        return 0;
    }
    if (++p->done == c->f->from && c->cur == 0)
        arm(c);
    return p->done < (c->cur == 0 ? c->f->upto : N_CALLS);
}

/* Keeps a step's output; replayed or live, it must be the last one a
 * body gave. Returns 0 if it is not. */
static int copy_out(runcase *c, int s, const char *out)
{
    snprintf(c->p[c->cur].out[s], OUT_MAX, "%s", out ? out : "(none)");
    return ok(c, out && strcmp(out, c->last_out[s]) == 0,
              "pass %d: step %s returned %s, its body gave %s", c->cur + 1,
              step_name[s], out ? out : "(none)", c->last_out[s]);
}

/* Step c, by evs_run_step_begin and evs_run_step_end. */
static int step_c(runcase *c, evs_run *r, evs_error_info *e)
{
    int rc = evs_run_step_begin(r, "c", step_input[S_C], NULL, e);

    if (rc == EVS_STEP_REPLAYED)
        rc = 0;
    else if (rc == EVS_STEP_RUN)
        rc = evs_run_step_end(r, make_output(c, S_C, evs_run_step_attempt(r)),
                              e);
    else if (!ok(c, rc < 0, "beginning c returned %d", rc))
        rc = -EINVAL;
    if (rc == 0 && !copy_out(c, S_C, evs_run_result(r)))
        rc = -EINVAL;
    return rc;
}

/* Runs the script on run c->id until a call fails (or, in the faulted
 * pass, until call f->upto) or breaks a rule. */
static void run_script(runcase *c)
{
    pass *p = &c->p[c->cur];
    evs_error_info e;
    evs_run *r = NULL;
    const char *out;
    int rc, n = c->cur + 1;

    memset(p, 0, sizeof(*p));
    if (c->cur == 0 && c->f->from == 0)
        arm(c);
    rc = evs_run_open(c->s, c->id, "wf", "1", INPUTS, NULL, &r, &e);
    if (rc == EVS_EFINISHED) {
        p->finished = 1;
        p->done = N_CALLS;
        ok(c,
           strcmp(evs_run_status(r), "completed") == 0 &&
               strcmp(evs_run_output(r), OUTPUT) == 0,
           "pass %d: the run has ended %s with %s", n, evs_run_status(r),
           evs_run_output(r));
        goto out;
    }
    if (!went(c, rc, &e))
        goto out;
    /* A re-run may find it waiting for its sleep or its event. */
    if (!ok(c,
            strcmp(evs_run_status(r), "running") == 0 ||
                (n == 2 && strcmp(evs_run_status(r), "waiting") == 0),
            "pass %d opened a run that is %s", n, evs_run_status(r)) ||
        !ok(c, strcmp(evs_run_inputs(r), INPUTS) == 0,
            "pass %d: the inputs are %s", n, evs_run_inputs(r)))
        goto out;
    for (int s = S_A; s <= S_B; s++) {
        body b = {c, s};
        rc = evs_run_step(r, step_name[s], step_input[s],
                          s == S_B ? B_OPTS : NULL, body_fn, &b, &out, &e);
        if ((rc == 0 && !copy_out(c, s, out)) || !went(c, rc, &e))
            goto out;
    }
    if (!went(c, step_c(c, r, &e), &e))
        goto out;
    rc = evs_run_patched(r, "v2", &e);
    if (!ok(c, rc != 0, "pass %d: patched said 0 on a new run", n) ||
        !went(c, rc == 1 ? 0 : rc, &e))
        goto out;
    if (!went(c, evs_run_sleep(r, SLEEP_MS, &e), &e))
        goto out;
    /* An acknowledged post is not made again: the run must have it. */
    rc = 0;
    if (n == 1 || c->p[0].done <= C_POST)
        rc = evs_orch_post(c->s, evs_span_cstr(c->id), evs_span_cstr("event"),
                           evs_span_cstr(EVENT), evs_span_cstr(PAYLOAD));
    if (!went(c, rc, NULL))
        goto out;
    rc = evs_run_wait_event(r, EVENT, WAIT_MS, &e);
    if (!ok(c, rc != -ETIMEDOUT, "pass %d: the event was lost", n) ||
        !ok(c, rc != 0 || strcmp(evs_run_result(r), PAYLOAD) == 0,
            "pass %d: the wait returned 0 and the payload %s", n,
            evs_run_result(r)) ||
        !went(c, rc, &e))
        goto out;
    rc = evs_run_complete(r, OUTPUT, &e);
    if (ok(c,
           rc != 0 || (strcmp(evs_run_status(r), "completed") == 0 &&
                       strcmp(evs_run_output(r), OUTPUT) == 0),
           "pass %d: completed, the run is %s with %s", n, evs_run_status(r),
           evs_run_output(r)))
        went(c, rc, &e);
out:
    disarm(c);
    evs_run_close(r);
}

/* ------------------------------------------------------------------ */
/* The checks                                                         */
/* ------------------------------------------------------------------ */

/* The faulted pass failed cleanly (the injected code and a message), or
 * met no fault it could not absorb. */
static void check_first_pass(runcase *c, totals *t)
{
    const pass *p = &c->p[0];
    int want = !c->f->io ? -ENOMEM : c->f->err == FIO_SHORT ? -EIO : c->f->err;
    const char *call = call_of(p->done);

    if (c->bad[0])
        return;
    if (p->done == c->f->upto) {
        /* Nothing failed: a fault that fired was absorbed (a snapshot,
         * a request's removal). */
        t->absorbed += c->fired;
        return;
    }
    t->failed_at[p->done]++;
    if (ok(c, c->fired, "%s failed with no fault: %s (%s)", call,
           evs_err_name(p->rc), p->msg) &&
        ok(c, p->rc == want, "%s returned %s, not %s (%s)", call,
           evs_err_name(p->rc), evs_err_name(want), p->msg))
        ok(c, p->done == C_POST || p->msg[0], /* no evs_error_info there */
           "%s returned %s with no message", call, evs_err_name(p->rc));
}

/* A failed open left no run, or one whose history replays. */
static void check_failed_open(runcase *c)
{
    evs_replay *rp;
    evs_error_info v;
    int rc;

    if (c->bad[0] || c->p[0].done != C_OPEN || !c->p[0].rc ||
        !evs_exec_exists(c->s, c->id, strlen(c->id)))
        return;
    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    rc = evs_replay_open(rp, c->s, c->id, strlen(c->id), 0, NULL, &v);
    ok(c, rc == 0, "a failed open left a run that does not replay: %s (%s)",
       evs_err_name(rc), v.msg);
    evs_replay_free(rp);
}

static int span_is(evs_span s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

/* The run's history strictly from sequence 1, which must end completed,
 * where evs_replay_open (from the snapshot when it can) ends too.
 * Returns the strict replayer, or NULL after a broken rule. */
static evs_replay *replay_both(runcase *c)
{
    evs_replay *rp, *strict;
    evs_error_info e;
    evs_log *l = NULL;
    int rc, good;

    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    cr_assert_eq(evs_replay_new(NULL, &strict), 0);
    rc = evs_replay_open(rp, c->s, c->id, strlen(c->id), 0, NULL, &e);
    good = ok(c, rc == 0, "replay: %s (%s)", evs_err_name(rc), e.msg);
    rc = evs_log_open(c->s, c->id, strlen(c->id), 0, &l, NULL, &e);
    good = good && ok(c, rc == 0, "reading the log: %s", e.msg);
    if (good)
        rc = evs_replay_run(strict, l, 0, &e);
    evs_log_close(l);
    good = good &&
           ok(c, rc == 0, "strict replay: %s (%s)", evs_err_name(rc), e.msg) &&
           ok(c, evs_replay_exec(strict)->status == EVS_STATUS_COMPLETED,
              "the history ends %s",
              evs_exec_status_name(evs_replay_exec(strict)->status)) &&
           ok(c,
              evs_replay_exec(rp)->status == EVS_STATUS_COMPLETED &&
                  evs_replay_exec(rp)->last_seq ==
                      evs_replay_exec(strict)->last_seq,
              "replayed from the snapshot, the run is %s at %llu",
              evs_exec_status_name(evs_replay_exec(rp)->status),
              (unsigned long long)evs_replay_exec(rp)->last_seq);
    evs_replay_free(rp);
    if (!good) {
        evs_replay_free(strict);
        return NULL;
    }
    return strict;
}

/* Step `name` completed with output `want`. */
static int step_done(runcase *c, evs_replay *rp, const char *name,
                     const char *want)
{
    const evs_step_state *sp = evs_replay_find_step(rp, evs_span_cstr("main"),
                                                    evs_span_cstr(name), -1);

    if (!ok(c, sp != NULL, "no step %s", name) ||
        !ok(c, sp->status == EVS_STEP_COMPLETED, "step %s is %s", name,
            evs_step_status_name(sp->status)))
        return 0;
    /* The replayer keeps a null output as an empty span. */
    return ok(c,
              span_is(sp->output, want) ||
                  (!sp->output.len && strcmp(want, "null") == 0),
              "step %s recorded %.*s, not %s", name, (int)sp->output.len,
              sp->output.ptr, want);
}

/* What the history holds (every step's output the last its body gave,
 * one event consumed, the patched decision), what listings show, and
 * what is left in the inbox: only requests the history recorded, which
 * stay in an ended run's inbox when their removal failed. */
static void check_history(runcase *c, evs_replay *rp, totals *t)
{
    const evs_version_state *ver;
    evs_request_listing q = {0};
    evs_snapshot *snap = NULL;
    size_t consumed = 0, unknown = 0;
    int good = 1, rc;

    for (int s = 0; s < N_STEPS && good; s++)
        good = step_done(c, rp, step_name[s], c->last_out[s]);
    if (!good || !step_done(c, rp, "sleep", "null") ||
        !step_done(c, rp, EVENT, PAYLOAD))
        return;
    for (size_t i = 0; i < evs_replay_signal_count(rp); i++)
        consumed += evs_replay_signal(rp, i)->consumed_seq != 0;
    ver = evs_replay_find_version(rp, evs_span_cstr("v2"));
    if (!ok(c, consumed == 1, "%zu events consumed", consumed) ||
        !ok(c, ver && ver->version == 1, "no patched decision"))
        return;
    rc = evs_snapshot_load(c->s, c->id, strlen(c->id), &snap, NULL);
    good = ok(c, rc == 0, "the snapshot: %s", evs_err_name(rc)) &&
           ok(c,
              span_is(snap->status, "completed") &&
                  snap->last_event_seq == evs_replay_exec(rp)->last_seq,
              "the snapshot says %.*s at %llu", (int)snap->status.len,
              snap->status.ptr, (unsigned long long)snap->last_event_seq);
    evs_snapshot_free(snap);
    if (!good)
        return;
    cr_assert_eq(evs_request_list(c->s, c->id, strlen(c->id), &q), 0);
    for (size_t i = 0; i < q.count; i++)
        unknown += !evs_replay_signal_received(rp, q.items[i].id, NULL);
    ok(c, unknown == 0, "%zu requests in the inbox were never recorded",
       unknown);
    t->left += (long)q.count;
    evs_request_list_free(&q);
}

/* The re-run completed and lost nothing the faulted pass acknowledged. */
static void check_rerun(runcase *c, totals *t)
{
    const pass *p1 = &c->p[0], *p2 = &c->p[1];
    evs_replay *rp;

    if (c->bad[0] ||
        !ok(c, p2->done == N_CALLS, "the re-run failed at %s: %s (%s)",
            call_of(p2->done), evs_err_name(p2->rc), p2->msg) ||
        !ok(c, !p2->finished || p1->done >= C_COMPLETE,
            "the run had ended before the re-run"))
        return;
    for (int s = 0; s < N_STEPS; s++) {
        int again = c->calls[s] - c->calls_first[s];
        t->bodies_rerun += again > 0 && c->calls_first[s] > 0;
        if (p1->done <= C_STEP_A + s)
            continue;
        if (!ok(c, again == 0,
                "step %s was acknowledged, and its body ran again",
                step_name[s]) ||
            !ok(c, p2->finished || strcmp(p2->out[s], p1->out[s]) == 0,
                "step %s was acknowledged with %s, the re-run got %s",
                step_name[s], p1->out[s], p2->out[s]))
            return;
    }
    if (!ok(c, !c->b_first_again,
            "b's body ran attempt 2, then attempt 1 again") ||
        !(rp = replay_both(c)))
        return;
    check_history(c, rp, t);
    evs_replay_free(rp);
}

/* ------------------------------------------------------------------ */
/* The loops                                                          */
/* ------------------------------------------------------------------ */

static evs_store *open_store(runcase *c, const evs_io *io)
{
    evs_store_opts o;
    evs_store *s = NULL;
    int rc;

    evs_store_opts_init(&o);
    o.io = io;
    o.alloc = &c->ta.a;
    rc = evs_store_open(dir, &o, &s);
    cr_assert_eq(rc, 0, "%s: the store: %s", c->where, evs_err_name(rc));
    return s;
}

static void close_store(runcase *c, const char *when)
{
    evs_store_close(c->s);
    c->s = NULL;
    ok(c, c->ta.live == 0, "%ld blocks leaked %s", c->ta.live, when);
}

/* The script under fault f at its nth call, then the whole script again
 * without faults. Returns how many calls of f's kind the faulted pass
 * made while the fault was armed. */
static long one_case(const fault *f, long nth, totals *t)
{
    runcase *c = calloc(1, sizeof(*c));
    long counted;

    cr_assert_not_null(c);
    c->f = f;
    c->nth = nth;
    snprintf(c->id, sizeof(c->id), "%s-%d-%d-%d-%ld", f->kind, -f->err,
             f->persist, f->from, nth);
    snprintf(c->where, sizeof(c->where), "%s #%ld from %s (%s, %s)", f->kind,
             nth, call_name[f->from],
             f->io ? (f->err == FIO_SHORT ? "short" : evs_err_name(f->err))
                   : "ENOMEM",
             f->persist ? "from then on" : "once");
    tu_alloc_init(&c->ta);
    fault_io_init(&c->fio);
    watch_start(&c->wd, c->id);
    c->s = open_store(c, &c->fio.io);
    run_script(c);
    ok(c, !watch_fired(&c->wd), "a call of the faulted pass hung for %d s",
       WATCHDOG_S);
    check_first_pass(c, t);
    check_failed_open(c);
    memcpy(c->calls_first, c->calls, sizeof(c->calls));
    close_store(c, "after the faulted pass");

    c->s = open_store(c, NULL);
    c->cur = 1;
    run_script(c);
    ok(c, !watch_stop(&c->wd), "a call of the re-run hung for %d s",
       WATCHDOG_S);
    check_rerun(c, t);
    close_store(c, "after the re-run");

    t->cases++;
    t->fired += c->fired;
    if (c->bad[0] && t->violations++ < 30)
        fprintf(stderr, "run_faults: VIOLATION %s: %s\n", c->where, c->bad);
    if (c->bad[0] && !t->first[0])
        snprintf(t->first, sizeof(t->first), "%s: %s", c->where, c->bad);
    counted = c->counted;
    free(c);
    return counted;
}

/* For N = 1, 2, ...: one case with f at its Nth call, until one meets
 * no fault. */
static void sweep(const fault *f, totals *t)
{
    long count = one_case(f, LONG_MAX, t); /* counts, faults nothing */

    t->count += count;
    for (long nth = 1;; nth++) {
        long before = t->fired;
        cr_assert_leq(nth, 2 * count + 20, "%s: the loop does not end",
                      f->kind);
        one_case(f, nth, t);
        if (t->fired == before)
            break;
    }
}

/* Prints the figures; fails the test if a case broke a rule. */
static void report(const char *what, const totals *t)
{
    char calls[512] = "";
    size_t n = 0;

    for (int i = 0; i < N_CALLS; i++)
        if (t->failed_at[i] && n < sizeof(calls))
            n += (size_t)snprintf(calls + n, sizeof(calls) - n, " %s %ld",
                                  call_name[i], t->failed_at[i]);
    fprintf(stderr,
            "run_faults %s: %ld calls of the kind while armed, %ld cases, "
            "%ld faults fired, %ld absorbed; the call that failed:%s; "
            "bodies run again (not acknowledged) %ld; recorded requests "
            "left in an ended run's inbox %ld; cases that broke a rule "
            "%ld\n",
            what, t->count, t->cases, t->fired, t->absorbed, calls,
            t->bodies_rerun, t->left, t->violations);
    cr_assert_eq(t->violations, 0, "%s: %ld cases broke a rule; the first: %s",
                 what, t->violations, t->first);
}

/* Every kind of `kinds` in turn, once and from then on, with -EIO and,
 * for writes, cut short too; counted from call `from`, the faulted pass
 * stopping after call `upto`. */
static void sweep_io(const char *what, const unsigned *kinds,
                     const char *const *names, size_t n, int from, int upto)
{
    static const int errs[] = {-EIO, FIO_SHORT};
    totals t = {0};

    for (size_t k = 0; k < n; k++)
        for (int persist = 0; persist < 2; persist++)
            for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
                fault f = {kinds[k], names[k], errs[e], persist, from, upto};
                if (errs[e] == FIO_SHORT && kinds[k] != FIO_WRITE)
                    continue;
                sweep(&f, &t);
            }
    report(what, &t);
}

/* Every allocation in turn, once and from then on. */
static void sweep_alloc(const char *what, int from, int upto)
{
    totals t = {0};

    for (int persist = 0; persist < 2; persist++) {
        fault f = {0, "alloc", -ENOMEM, persist, from, upto};
        sweep(&f, &t);
    }
    report(what, &t);
}

#define KIND(k, name) (const unsigned[]){k}, (const char *[]){name}, 1

Test(run_faults, every_failed_write_is_clean_and_the_rerun_completes)
{
    sweep_io("write", KIND(FIO_WRITE, "write"), C_OPEN, N_CALLS);
}

Test(run_faults, every_failed_fdatasync_is_clean_and_the_rerun_completes)
{
    sweep_io("fdatasync", KIND(FIO_FDATASYNC, "fdatasync"), C_OPEN, N_CALLS);
}

Test(run_faults, every_failed_fsync_is_clean_and_the_rerun_completes)
{
    sweep_io("fsync", KIND(FIO_FSYNC, "fsync"), C_OPEN, N_CALLS);
}

Test(run_faults, every_failed_rename_is_clean_and_the_rerun_completes)
{
    sweep_io("rename", KIND(FIO_RENAME, "rename"), C_OPEN, N_CALLS);
}

Test(run_faults, every_failed_open_is_clean_and_the_rerun_completes)
{
    sweep_io("open", KIND(FIO_OPEN, "open"), C_OPEN, N_CALLS);
}

static const unsigned all_kinds[] = {
    FIO_WRITE,   FIO_FDATASYNC, FIO_FSYNC,    FIO_RENAME, FIO_OPEN,
    FIO_MKDIR,   FIO_UNLINK,    FIO_TRUNCATE, FIO_READ,   FIO_STAT,
    FIO_LISTDIR, FIO_LOCK,      FIO_CLOSE};
static const char *const all_names[] = {
    "write",    "fdatasync", "fsync", "rename",  "open", "mkdir", "unlink",
    "truncate", "read",      "stat",  "listdir", "lock", "close"};
#define N_KINDS (sizeof(all_kinds) / sizeof(all_kinds[0]))
#define N_MAIN 5 /* the kinds above with a test of their own */

Test(run_faults, every_other_failed_call_is_clean_and_the_rerun_completes)
{
    sweep_io("mkdir, unlink, truncate, read, stat, listdir, lock, close",
             all_kinds + N_MAIN, all_names + N_MAIN, N_KINDS - N_MAIN, C_OPEN,
             N_CALLS);
}

Test(run_faults, every_failed_allocation_is_clean_and_the_rerun_completes)
{
    sweep_alloc("alloc", C_OPEN, N_CALLS);
}

Test(run_faults, a_failed_open_leaves_no_run_or_one_a_clean_open_resumes)
{
    sweep_io("open alone", all_kinds, all_names, N_KINDS, C_OPEN, C_OPEN + 1);
    sweep_alloc("open alone, alloc", C_OPEN, C_OPEN + 1);
}

/* One call under allocation failures, the calls before it clean: the
 * smallest reproducers of what the whole script's allocation sweep finds
 * in that call. */

Test(run_faults, an_allocation_failure_in_a_step_body_is_clean)
{
    sweep_alloc("step a alone, alloc", C_STEP_A, C_STEP_A + 1);
}

Test(run_faults, an_allocation_failure_in_a_retried_step_is_clean)
{
    sweep_alloc("step b alone, alloc", C_STEP_B, C_STEP_B + 1);
}

Test(run_faults, an_allocation_failure_in_a_sleep_is_clean)
{
    sweep_alloc("sleep alone, alloc", C_SLEEP, C_SLEEP + 1);
}

Test(run_faults, an_allocation_failure_in_a_wait_is_clean)
{
    sweep_alloc("wait alone, alloc", C_WAIT, C_WAIT + 1);
}

Test(run_faults, an_allocation_failure_in_the_completion_is_clean)
{
    sweep_alloc("completion alone, alloc", C_COMPLETE, C_COMPLETE + 1);
}
