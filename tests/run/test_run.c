/*
 * test_run.c: durable functions (include/evstore/run.h): steps journaled
 * and replayed, the determinism check, retries with durable backoff,
 * sleeps and waits (blocking and suspending), patched, requests (events,
 * pause, terminate), completion, and the history each leaves, which must
 * replay strictly.
 */
#include "testutil.h"
#include "evstore/orchestrator.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int span_is(evs_span s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

static char *dir;
static evs_store *st;

/* Frees what a call on the store returned (its allocator). */
static void free_store_buf(char *p)
{
    evs_free(evs_store_allocator(st), p);
}

static void setup(void)
{
    tu_fresh_store("run", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

TestSuite(run, .init = setup, .fini = teardown);

/* A step body that counts its calls and echoes its input (or "null"). */
typedef struct counter {
    int calls;
    int fail_first; /* fail this many calls first */
    const char *fail_type;
} counter;

static int count_fn(void *arg, evs_run *r, const char *input)
{
    counter *c = arg;

    c->calls++;
    if (c->fail_first > 0) {
        c->fail_first--;
        evs_run_step_error(r, c->fail_type ? c->fail_type : "flaky",
                           "not this time", 1);
        return -EIO;
    }
    return evs_run_step_output(r, input ? input : "null");
}

static evs_run *open_run(const char *id, const char *inputs,
                         const char *options, int want)
{
    evs_error_info e;
    evs_run *r = NULL;
    int rc = evs_run_open(st, id, "wf", "1", inputs, options, &r, &e);

    cr_assert_eq(rc, want, "open %s: %s (%s)", id, evs_err_name(rc), e.msg);
    if (want == 0 || want == EVS_EFINISHED)
        cr_assert_not_null(r);
    return r;
}

static void step_ok(evs_run *r, const char *name, const char *input, counter *c,
                    const char *want_out)
{
    evs_error_info e;
    const char *out = NULL;
    int rc = evs_run_step(r, name, input, NULL, count_fn, c, &out, &e);

    cr_assert_eq(rc, 0, "step %s: %s (%s)", name, evs_err_name(rc), e.msg);
    cr_assert_str_eq(out, want_out, "step %s", name);
}

/* The history of `id` replayed strictly from sequence 1: its status. */
static evs_exec_status replay_status(const char *id, evs_replay **keep)
{
    evs_replay *rp;
    evs_error_info e;
    evs_exec_status s;
    int rc;

    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    rc = evs_replay_open(rp, st, id, strlen(id), 0, NULL, &e);
    cr_assert_eq(rc, 0, "replay of %s: %s (%s)", id, evs_err_name(rc), e.msg);
    s = evs_replay_exec(rp)->status;
    if (keep)
        *keep = rp;
    else
        evs_replay_free(rp);
    return s;
}

static const evs_step_state *find_step(evs_replay *rp, const char *name)
{
    return evs_replay_find_step(rp, evs_span_cstr("main"), evs_span_cstr(name),
                                -1);
}

Test(run, a_new_run_runs_its_steps_and_completes)
{
    counter a = {0}, b = {0};
    evs_error_info e;
    evs_run *r = open_run("r1", "{\"topic\":\"x\"}", NULL, 0);
    evs_exec_listing l = {0};

    cr_assert_str_eq(evs_run_id(r), "r1");
    cr_assert_str_eq(evs_run_workflow(r), "wf");
    cr_assert_str_eq(evs_run_version(r), "1");
    cr_assert_str_eq(evs_run_inputs(r), "{\"topic\":\"x\"}");
    cr_assert_str_eq(evs_run_status(r), "running");
    step_ok(r, "plan", "{\"q\":[1, 2]}", &a, "{\"q\":[1,2]}");
    step_ok(r, "search", "\"x\"", &b, "\"x\"");
    cr_assert_eq(evs_run_complete(r, "{\"ok\":true}", &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_status(r), "completed");
    cr_assert_str_eq(evs_run_output(r), "{\"ok\":true}");
    evs_run_close(r);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(replay_status("r1", NULL), EVS_STATUS_COMPLETED);
    /* The listing shows the real status. */
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].status, "completed"));
    cr_assert(span_is(l.items[0].workflow_name, "wf"));
    evs_exec_list_free(&l);
    /* Opened again: it has ended, and tells its output. */
    r = open_run("r1", "{\"topic\":\"x\"}", NULL, EVS_EFINISHED);
    cr_assert_str_eq(evs_run_status(r), "completed");
    cr_assert_str_eq(evs_run_output(r), "{\"ok\":true}");
    evs_run_close(r);
}

Test(run, a_rerun_replays_recorded_steps_without_calling_them)
{
    counter a = {0}, b = {0}, c = {0};
    evs_error_info e;
    evs_run *r = open_run("r2", NULL, NULL, 0);

    step_ok(r, "a", "1", &a, "1");
    step_ok(r, "b", "2", &b, "2");
    cr_assert_eq(evs_run_replaying(r), 0);
    evs_run_close(r); /* as if the process died here */

    r = open_run("r2", NULL, NULL, 0);
    cr_assert_eq(evs_run_replaying(r), 1);
    step_ok(r, "a", "1", &a, "1");
    step_ok(r, "b", "2", &b, "2");
    cr_assert_eq(evs_run_replaying(r), 0);
    cr_assert_eq(evs_run_step_replayed(r), 1, "b was replayed");
    cr_assert_str_eq(evs_run_step_name(r), "b");
    cr_assert_str_eq(evs_run_step_key(r), "r2/main/b");
    step_ok(r, "c", "3", &c, "3");
    cr_assert_eq(evs_run_step_replayed(r), 0, "c ran");
    cr_assert_str_eq(evs_run_step_key(r), "r2/main/c");
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(a.calls, 1, "a ran again");
    cr_assert_eq(b.calls, 1, "b ran again");
    cr_assert_eq(c.calls, 1);
}

Test(run, a_step_begun_and_never_ended_runs_again_with_the_same_key)
{
    evs_error_info e;
    evs_replay *rp;
    char key[256];
    evs_run *r = open_run("r3", NULL, NULL, 0);

    cr_assert_eq(evs_run_step_begin(r, "pay", "{\"amount\":5}", NULL, &e),
                 EVS_STEP_RUN, "%s", e.msg);
    cr_assert_eq(evs_run_step_attempt(r), 1);
    snprintf(key, sizeof(key), "%s", evs_run_step_key(r));
    cr_assert_str_eq(key, "r3/main/pay");
    evs_run_close(r); /* died inside the step */

    r = open_run("r3", NULL, NULL, 0);
    cr_assert_eq(evs_run_step_begin(r, "pay", "{\"amount\":5}", NULL, &e),
                 EVS_STEP_RUN, "%s", e.msg);
    cr_assert_str_eq(evs_run_step_key(r), key);
    cr_assert_eq(evs_run_step_end(r, "\"paid\"", &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "\"paid\"");
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("r3", &rp), EVS_STATUS_COMPLETED);
    /* The first attempt's step_started was made durable only with an
     * outcome, and a close with the step open drops it, as a kill would:
     * the history holds the second attempt alone. */
    cr_assert_eq(find_step(rp, "pay")->status, EVS_STEP_COMPLETED);
    cr_assert_eq(find_step(rp, "pay")->attempts, 1);
    evs_replay_free(rp);
}

Test(run, loops_name_each_occurrence)
{
    counter c = {0};
    evs_error_info e;
    evs_replay *rp;
    evs_run *r = open_run("r4", NULL, NULL, 0);

    for (int i = 0; i < 3; i++) {
        char in[16];
        snprintf(in, sizeof(in), "%d", i);
        step_ok(r, "llm", in, &c, in);
    }
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("r4", &rp), EVS_STATUS_COMPLETED);
    cr_assert_not_null(find_step(rp, "llm"));
    cr_assert_not_null(find_step(rp, "llm#2"));
    cr_assert_not_null(find_step(rp, "llm#3"));
    cr_assert(span_is(find_step(rp, "llm#3")->output, "2"));
    evs_replay_free(rp);

    /* Re-running the loop replays the three without calling them. */
    r = open_run("r4", NULL, NULL, EVS_EFINISHED);
    evs_run_close(r);
    cr_assert_eq(c.calls, 3);
}

static off_t log_size(const char *id)
{
    char *d, *p;
    struct stat sb;
    evs_log *l;
    off_t n;

    /* Its bytes, the same on every backend; on files its file's size. */
    if (!tu_backend_is_file()) {
        cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, NULL, NULL), 0);
        n = (off_t)evs_log_size(l);
        evs_log_close(l);
        return n;
    }
    d = tu_join(dir, id);
    p = tu_join(d, "events.jsonl");
    cr_assert_eq(stat(p, &sb), 0);
    free(d);
    free(p);
    return sb.st_size;
}

Test(run, another_step_order_is_nondeterminism_and_leaves_the_log)
{
    counter c = {0};
    evs_error_info e;
    off_t size;
    int rc;
    evs_run *r = open_run("r5", NULL, NULL, 0);

    step_ok(r, "a", "1", &c, "1");
    step_ok(r, "b", "2", &c, "2");
    evs_run_close(r);
    size = log_size("r5");

    r = open_run("r5", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    rc = evs_run_step(r, "c", "3", NULL, count_fn, &c, NULL, &e);
    cr_assert_eq(rc, EVS_ENONDET, "%s", evs_err_name(rc));
    cr_assert_eq(e.code, EVS_ENONDET);
    cr_assert_neq(e.sequence, 0);
    cr_assert_str_eq(e.step, "b", "the recorded step");
    cr_assert_str_eq(e.kind, "nondeterminism");
    cr_assert(strstr(e.msg, "\"b\"") && strstr(e.msg, "\"c\""), "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(c.calls, 2);
    cr_assert_eq(log_size("r5"), size, "the log changed");

    /* Ending the run while the history holds more is refused too. */
    r = open_run("r5", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    rc = evs_run_complete(r, NULL, &e);
    cr_assert_eq(rc, EVS_ENONDET, "%s", evs_err_name(rc));
    evs_run_close(r);
    cr_assert_eq(log_size("r5"), size, "the log changed");
}

Test(run, the_same_id_with_other_inputs_or_workflow_is_refused)
{
    evs_error_info e;
    evs_run *r = open_run("r6", "{\"a\":1}", NULL, 0);
    int rc;

    evs_run_close(r);
    /* Same inputs, written otherwise: the same run. */
    r = open_run("r6", "{ \"a\" : 1 }", NULL, 0);
    evs_run_close(r);
    open_run("r6", "{\"a\":2}", NULL, EVS_ECONFLICT);
    rc = evs_run_open(st, "r6", "other", "1", "{\"a\":1}", NULL, &r, &e);
    cr_assert_eq(rc, EVS_ECONFLICT, "%s", evs_err_name(rc));
    cr_assert_null(r);
    cr_assert(strstr(e.msg, "workflow"), "%s", e.msg);
    /* Another code version is found and replayed; the recorded one is
     * told. */
    rc = evs_run_open(st, "r6", "wf", "2", "{\"a\":1}", NULL, &r, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_version(r), "1");
    evs_run_close(r);
}

Test(run, a_second_handle_on_a_run_is_refused)
{
    evs_error_info e;
    evs_run *r = open_run("r7", NULL, NULL, 0), *r2 = NULL;
    int rc = evs_run_open(st, "r7", "wf", "1", NULL, NULL, &r2, &e);

    cr_assert_eq(rc, EVS_ELOCKED, "%s", evs_err_name(rc));
    cr_assert_null(r2);
    evs_run_close(r);
}

Test(run, bad_arguments_get_clear_errors)
{
    evs_error_info e;
    evs_run *r = NULL;

    cr_assert_eq(evs_run_open(st, "../x", "wf", "1", NULL, NULL, &r, &e),
                 EVS_EBADID);
    cr_assert_eq(evs_run_open(st, "x", "", "1", NULL, NULL, &r, &e), -EINVAL);
    cr_assert_eq(evs_run_open(st, "x", "wf", "1", "[1]", NULL, &r, &e),
                 EVS_EPARSE);
    cr_assert_eq(evs_run_open(st, "x", "wf", "1", "{", NULL, &r, &e),
                 EVS_EPARSE);
    cr_assert_eq(
        evs_run_open(st, "x", "wf", "1", NULL, "{\"mode\":\"later\"}", &r, &e),
        EVS_EPARSE);
    cr_assert(strstr(e.msg, "mode"), "%s", e.msg);
    cr_assert_eq(
        evs_run_open(st, "x", "wf", "1", NULL, "{\"colour\":1}", &r, &e),
        EVS_EPARSE);
    cr_assert_eq(evs_run_open(st, "x", "wf", "1", NULL,
                              "{\"retry\":{\"jitter\":3}}", &r, &e),
                 EVS_EPARSE);
    cr_assert(strstr(e.msg, "jitter"), "%s", e.msg);
    cr_assert_null(r);
    cr_assert_eq(evs_exec_exists(st, "x", 1), 0, "a refused open created it");

    r = open_run("x", NULL, NULL, 0);
    cr_assert_eq(evs_run_step_begin(r, "a b", NULL, NULL, &e), -EINVAL);
    cr_assert_eq(evs_run_step_begin(r, "a", "{nope", NULL, &e), EVS_EPARSE);
    cr_assert_eq(evs_run_step_end(r, "1", &e), -EINVAL, "no step is open");
    cr_assert_eq(evs_run_step_begin(r, "a", NULL, NULL, &e), EVS_STEP_RUN);
    cr_assert_eq(evs_run_step_begin(r, "b", NULL, NULL, &e), -EBUSY);
    cr_assert_eq(evs_run_complete(r, NULL, &e), -EBUSY);
    cr_assert_eq(evs_run_step_end(r, "{bad", &e), EVS_EPARSE);
    cr_assert_eq(evs_run_step_end(r, "1", &e), 0, "%s", e.msg);
    evs_run_close(r);
}

Test(run, retries_wait_their_backoff_and_survive_a_reopen)
{
    counter c = {.fail_first = 2};
    evs_error_info e;
    evs_replay *rp;
    const char *out;
    const char *opts = "{\"retry\":{\"max_attempts\":3,"
                       "\"initial_interval_ms\":20}}";
    evs_run *r = open_run("r8", NULL, NULL, 0);
    int64_t t0 = evs_now_us();
    int rc;

    rc = evs_run_step(r, "flaky", "1", opts, count_fn, &c, &out, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_assert_eq(c.calls, 3);
    /* 20 ms, then 40 ms of backoff at least. */
    cr_assert_geq(evs_now_us() - t0, 60000);
    cr_assert_eq(evs_run_complete(r, out, &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("r8", &rp), EVS_STATUS_COMPLETED);
    cr_assert_eq(find_step(rp, "flaky")->attempts, 3);
    evs_replay_free(rp);

    /* A failure that is not retryable fails the step at once. */
    r = open_run("r8b", NULL, NULL, 0);
    c = (counter){.fail_first = 5, .fail_type = "fatal"};
    rc = evs_run_step(r, "x", NULL,
                      "{\"retry\":{\"max_attempts\":5,"
                      "\"non_retryable\":[\"fatal\"]}}",
                      count_fn, &c, NULL, &e);
    cr_assert_eq(rc, EVS_EFAILED, "%s", evs_err_name(rc));
    cr_assert_str_eq(e.step, "x");
    cr_assert_eq(c.calls, 1);
    cr_assert(strstr(evs_run_error(r), "\"fatal\""), "%s", evs_run_error(r));
    /* The code may catch it and go on. */
    cr_assert_eq(evs_run_fail(r, "fatal", "gave up", &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("r8b", NULL), EVS_STATUS_FAILED);
    r = open_run("r8b", NULL, NULL, EVS_EFINISHED);
    cr_assert(strstr(evs_run_error(r), "gave up"), "%s", evs_run_error(r));
    evs_run_close(r);
}

Test(run, a_backoff_is_durable_across_a_crash)
{
    evs_error_info e;
    evs_run *r = open_run("r9", NULL, NULL, 0);
    const char *opts = "{\"retry\":{\"initial_interval_ms\":300}}";
    int64_t t0;
    int rc;

    cr_assert_eq(evs_run_step_begin(r, "s", NULL, opts, &e), EVS_STEP_RUN);
    t0 = evs_now_us();
    rc = evs_run_step_fail(r, "flaky", "no", 1, &e);
    cr_assert_eq(rc, EVS_STEP_RETRY, "%s", evs_err_name(rc));
    /* Another step before the retry is refused. */
    cr_assert_eq(evs_run_step_begin(r, "t", NULL, NULL, &e), -EBUSY);
    evs_run_close(r); /* died during the backoff */

    r = open_run("r9", NULL, NULL, 0);
    cr_assert_eq(evs_run_step_begin(r, "s", NULL, opts, &e), EVS_STEP_RUN, "%s",
                 e.msg);
    cr_assert_geq(evs_now_us() - t0, 300000, "the backoff was not waited");
    cr_assert_eq(evs_run_step_attempt(r), 2);
    cr_assert_eq(evs_run_step_end(r, "1", &e), 0);
    evs_run_close(r);
}

Test(run, suspend_mode_returns_instead_of_waiting)
{
    evs_error_info e;
    evs_run *r = open_run("r10", NULL, "{\"mode\":\"suspend\"}", 0);
    evs_exec_listing l = {0};
    int rc;

    rc = evs_run_sleep(r, 200, &e);
    cr_assert_eq(rc, EVS_ESUSPENDED, "%s", evs_err_name(rc));
    /* Every later call says so too, until the run is opened again. */
    cr_assert_eq(evs_run_step_begin(r, "a", NULL, NULL, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    cr_assert(span_is(l.items[0].status, "waiting"));
    evs_exec_list_free(&l);

    /* Not yet due. */
    r = open_run("r10", NULL, "{\"mode\":\"suspend\"}", 0);
    cr_assert_eq(evs_run_sleep(r, 200, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    /* Due: blocking mode finishes what is left. */
    r = open_run("r10", NULL, NULL, 0);
    cr_assert_eq(evs_run_sleep(r, 200, &e), 0, "%s", e.msg);
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0);
    evs_run_close(r);
    cr_assert_eq(replay_status("r10", NULL), EVS_STATUS_COMPLETED);
}

Test(run, a_blocking_sleep_waits_only_for_what_is_left)
{
    evs_error_info e;
    evs_run *r = open_run("r11", NULL, "{\"mode\":\"suspend\"}", 0);
    int64_t t0 = evs_now_us();

    cr_assert_eq(evs_run_sleep(r, 300, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    r = open_run("r11", NULL, NULL, 0);
    /* Asked for 10 s now: the recorded timer rules. */
    cr_assert_eq(evs_run_sleep(r, 10000, &e), 0, "%s", e.msg);
    cr_assert_geq(evs_now_us() - t0, 300000);
    cr_assert_lt(evs_now_us() - t0, 9000000);
    evs_run_close(r);
}

static void post(const char *id, const char *kind, const char *type,
                 const char *payload)
{
    int rc = evs_orch_post(st, evs_span_cstr(id), evs_span_cstr(kind),
                           evs_span_cstr(type), evs_span_cstr(payload));
    cr_assert_eq(rc, 0, "post %s: %s", kind, evs_err_name(rc));
}

Test(run, an_event_sent_before_the_wait_is_consumed_once)
{
    evs_error_info e;
    evs_replay *rp;
    evs_run *r = open_run("r12", NULL, NULL, 0);

    post("r12", "event", "approval", "{\"by\":\"alice\"}");
    cr_assert_eq(evs_run_wait_event(r, "approval", 0, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "{\"by\":\"alice\"}");
    /* A second wait does not get the same event. */
    cr_assert_eq(evs_run_wait_event(r, "approval", 100, &e), -ETIMEDOUT, "%s",
                 e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("r12", &rp), EVS_STATUS_RUNNING);
    cr_assert_eq(evs_replay_signal_count(rp), 1);
    cr_assert_neq(evs_replay_signal(rp, 0)->consumed_seq, 0);
    cr_assert_eq(find_step(rp, "approval#2")->status, EVS_STEP_FAILED);
    evs_replay_free(rp);

    /* Replayed: the same payload, and the same timeout, at once. */
    r = open_run("r12", NULL, NULL, 0);
    cr_assert_eq(evs_run_wait_event(r, "approval", 0, &e), 0);
    cr_assert_str_eq(evs_run_result(r), "{\"by\":\"alice\"}");
    cr_assert_eq(evs_run_wait_event(r, "approval", 100, &e), -ETIMEDOUT);
    evs_run_close(r);
}

/* While the run waits, the listing shows it waiting; then the event
 * comes. */
static void *send_later(void *arg)
{
    struct timespec ts = {0, 100 * 1000000L};
    evs_exec_listing l = {0};

    nanosleep(&ts, NULL);
    if (evs_exec_list(st, NULL, &l) == 0 && l.count == 1)
        *(int *)arg = span_is(l.items[0].status, "waiting");
    evs_exec_list_free(&l);
    post("r13", "event", "go", "42");
    return NULL;
}

Test(run, a_blocking_wait_gets_an_event_sent_while_it_waits)
{
    evs_error_info e;
    pthread_t t;
    int listed_waiting = 0;
    evs_run *r = open_run("r13", NULL, "{\"poll_ms\":5}", 0);

    cr_assert_eq(pthread_create(&t, NULL, send_later, &listed_waiting), 0);
    cr_assert_eq(evs_run_wait_event(r, "go", 0, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_step_name(r), "go");
    cr_assert_str_eq(evs_run_result(r), "42");
    pthread_join(t, NULL);
    cr_assert(listed_waiting, "the listing did not show the run waiting");
    evs_run_close(r);
}

Test(run, a_suspended_wait_is_due_once_its_event_arrives)
{
    evs_error_info e;
    evs_run *r = open_run("r14", NULL, "{\"mode\":\"suspend\"}", 0);

    cr_assert_eq(evs_run_wait_event(r, "go", 0, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    post("r14", "event", "go", "\"now\"");
    r = open_run("r14", NULL, "{\"mode\":\"suspend\"}", 0);
    cr_assert_eq(evs_run_wait_event(r, "go", 0, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "\"now\"");
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0);
    evs_run_close(r);
    cr_assert_eq(replay_status("r14", NULL), EVS_STATUS_COMPLETED);
}

Test(run, patched_is_false_for_runs_past_it_and_true_for_new_ones)
{
    counter c = {0};
    evs_error_info e;
    evs_replay *rp;
    evs_run *r = open_run("old", NULL, NULL, 0);

    /* Old code: a, b. */
    step_ok(r, "a", "1", &c, "1");
    step_ok(r, "b", "2", &c, "2");
    evs_run_close(r);
    /* New code: a, then patched("v2") before b. */
    r = open_run("old", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    cr_assert_eq(evs_run_patched(r, "v2", &e), 0, "%s", e.msg);
    step_ok(r, "b", "2", &c, "2");
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0);
    evs_run_close(r);

    r = open_run("new", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    cr_assert_eq(evs_run_patched(r, "v2", &e), 1, "%s", e.msg);
    step_ok(r, "b2", "2", &c, "2");
    evs_run_close(r);
    r = open_run("new", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    cr_assert_eq(evs_run_patched(r, "v2", &e), 1, "the recorded answer");
    step_ok(r, "b2", "2", &c, "2");
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0);
    evs_run_close(r);
    cr_assert_eq(replay_status("new", &rp), EVS_STATUS_COMPLETED);
    cr_assert_eq(evs_replay_find_version(rp, evs_span_cstr("v2"))->version, 1);
    evs_replay_free(rp);
    cr_assert_eq(replay_status("old", &rp), EVS_STATUS_COMPLETED);
    cr_assert_null(evs_replay_find_version(rp, evs_span_cstr("v2")));
    evs_replay_free(rp);
}

Test(run, terminate_and_pause_are_seen_at_the_next_step)
{
    counter c = {0};
    evs_error_info e;
    evs_run *r = open_run("r15", NULL, "{\"mode\":\"suspend\"}", 0);
    int rc;

    step_ok(r, "a", "1", &c, "1");
    post("r15", "pause", "", "\"lunch\"");
    rc = evs_run_step(r, "b", "2", NULL, count_fn, &c, NULL, &e);
    cr_assert_eq(rc, EVS_ESUSPENDED, "%s", evs_err_name(rc));
    evs_run_close(r);
    cr_assert_eq(c.calls, 1, "a step ran while paused");

    post("r15", "unpause", "", "");
    r = open_run("r15", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    step_ok(r, "b", "2", &c, "2");
    post("r15", "terminate", "", "\"enough\"");
    rc = evs_run_step(r, "c", "3", NULL, count_fn, &c, NULL, &e);
    cr_assert_eq(rc, EVS_EFINISHED, "%s", evs_err_name(rc));
    cr_assert_str_eq(evs_run_status(r), "terminated");
    evs_run_close(r);
    cr_assert_eq(c.calls, 2);
    cr_assert_eq(replay_status("r15", NULL), EVS_STATUS_TERMINATED);
}

typedef struct thread_arg {
    evs_run *r;
    const char *id;
    int rc;
} thread_arg;

static void *run_many(void *arg)
{
    thread_arg *t = arg;
    counter c = {0};
    evs_error_info e;
    evs_run *r = NULL;

    t->rc = evs_run_open(st, t->id, "wf", "1", NULL, NULL, &r, &e);
    for (int i = 0; i < 20 && t->rc == 0; i++)
        t->rc = evs_run_step(r, "s", NULL, NULL, count_fn, &c, NULL, &e);
    if (t->rc == 0)
        t->rc = evs_run_complete(r, NULL, &e);
    evs_run_close(r);
    return NULL;
}

Test(run, threads_run_different_runs_at_once)
{
    thread_arg a[4] = {{.id = "t0"}, {.id = "t1"}, {.id = "t2"}, {.id = "t3"}};
    pthread_t t[4];

    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, run_many, &a[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].rc, 0, "%s: %s", a[i].id, evs_err_name(a[i].rc));
        cr_assert_eq(replay_status(a[i].id, NULL), EVS_STATUS_COMPLETED);
    }
}

static void *begin_in_thread(void *arg)
{
    thread_arg *t = arg;
    evs_error_info e;

    t->rc = evs_run_step_begin(t->r, "other", NULL, NULL, &e);
    return NULL;
}

Test(run, a_second_thread_on_a_run_with_an_open_step_is_refused)
{
    evs_error_info e;
    thread_arg a = {0};
    pthread_t t;

    a.r = open_run("r16", NULL, NULL, 0);
    cr_assert_eq(evs_run_step_begin(a.r, "mine", NULL, NULL, &e), EVS_STEP_RUN);
    cr_assert_eq(pthread_create(&t, NULL, begin_in_thread, &a), 0);
    pthread_join(t, NULL);
    cr_assert_eq(a.rc, -EBUSY, "%s", evs_err_name(a.rc));
    cr_assert_eq(evs_run_step_end(a.r, "1", &e), 0);
    evs_run_close(a.r);
}

/* A branch's thread: one step "work" that naps `ms` first, then ends
 * the branch (or fails it). */
typedef struct worker {
    evs_run *b;
    int ms;
    int fail;
    int calls;
    int rc; /* of the step, then of the end */
    char out[32];
    struct worker *after; /* its body ends only once this branch ended */
    struct worker *begun; /* its body ends only once this one's began */
    atomic_int ended, began;
} worker;

static int work_fn(void *arg, evs_run *r, const char *input)
{
    worker *w = arg;
    struct timespec ts = {w->ms / 1000, (long)(w->ms % 1000) * 1000000L};
    struct timespec tick = {0, 1000000L};

    (void)input;
    w->calls++;
    atomic_store(&w->began, 1);
    nanosleep(&ts, NULL);
    /* The order the test means, whatever the machine's load. */
    while ((w->after && !atomic_load(&w->after->ended)) ||
           (w->begun && !atomic_load(&w->begun->began)))
        nanosleep(&tick, NULL);
    return evs_run_step_output(r, w->out);
}

static void *work_thread(void *arg)
{
    worker *w = arg;
    evs_error_info e;

    w->rc = evs_run_step(w->b, "work", NULL, NULL, work_fn, w, NULL, &e);
    if (w->rc == 0)
        w->rc = w->fail ? evs_run_branch_fail(w->b, "bad", "it broke", &e)
                        : evs_run_branch_end(w->b, &e);
    atomic_store(&w->ended, 1);
    return NULL;
}

/* Runs a join of branches x, y, z (naps and failures as given) on run
 * `id`: returns the join's code; the workers' state is left in w. */
static int run_join(const char *id, const char *mode, worker w[3],
                    const int ms[3], const int fail[3], char *result,
                    size_t cap)
{
    static const char *const names[] = {"x", "y", "z"};
    evs_run *r = open_run(id, NULL, NULL, 0), *bs[3];
    evs_error_info e;
    pthread_t t[3];
    int rc;

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(evs_run_branch(r, names[i], &bs[i], &e), 0, "%s", e.msg);
        w[i].b = bs[i];
        w[i].ms = ms[i];
        w[i].fail = fail[i];
        snprintf(w[i].out, sizeof(w[i].out), "\"%s\"", names[i]);
        cr_assert_eq(pthread_create(&t[i], NULL, work_thread, &w[i]), 0);
    }
    rc = evs_run_join(r, mode, bs, 3, &e);
    snprintf(result, cap, "%s", rc == 0 ? evs_run_result(r) : evs_run_error(r));
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        evs_run_close(bs[i]);
    }
    if (rc == 0 || rc == EVS_EFAILED)
        cr_assert_eq(evs_run_complete(r, result, &e), 0, "%s", e.msg);
    evs_run_close(r);
    return rc;
}

Test(run, join_all_waits_for_every_branch)
{
    worker w[3] = {0};
    const int ms[3] = {30, 10, 20}, ok[3] = {0, 0, 0};
    char res[256];
    evs_replay *rp;

    cr_assert_eq(run_join("j1", "all", w, ms, ok, res, sizeof(res)), 0, "%s",
                 res);
    cr_assert_str_eq(res, "{\"x\":\"x\",\"y\":\"y\",\"z\":\"z\"}");
    cr_assert_eq(replay_status("j1", &rp), EVS_STATUS_COMPLETED);
    cr_assert_eq(evs_replay_find_path(rp, evs_span_cstr("main/y"))->status,
                 EVS_PATH_COMPLETED);
    cr_assert_not_null(evs_replay_find_step(rp, evs_span_cstr("main/x"),
                                            evs_span_cstr("work"), -1));
    evs_replay_free(rp);
    /* The replay of a join: a_rerun_replays_branches_and_their_join. */
}

Test(run, join_any_takes_the_first_completed_and_cancels_the_rest)
{
    worker w[3] = {0};
    const int ms[3] = {0, 0, 1500}, fail[3] = {1, 0, 0};
    char res[256];
    evs_replay *rp;

    w[1].after = &w[0]; /* x fails first, then y completes */
    w[1].begun = &w[2]; /* once z's step began (step_started recorded) */
    w[2].after = &w[1];

    cr_assert_eq(run_join("j2", "any", w, ms, fail, res, sizeof(res)), 0, "%s",
                 res);
    cr_assert_str_eq(res, "{\"y\":\"y\"}");
    /* z was cancelled: its step's late output was not recorded. */
    cr_assert_eq(w[2].rc, -ECANCELED, "%s", evs_err_name(w[2].rc));
    cr_assert_eq(replay_status("j2", &rp), EVS_STATUS_COMPLETED);
    cr_assert_eq(evs_replay_find_path(rp, evs_span_cstr("main/z"))->status,
                 EVS_PATH_CANCELLED);
    cr_assert_eq(evs_replay_find_path(rp, evs_span_cstr("main/x"))->status,
                 EVS_PATH_FAILED);
    {
        const evs_step_state *z = evs_replay_find_step(
            rp, evs_span_cstr("main/z"), evs_span_cstr("work"), -1);
        cr_assert_not_null(z, "z's step began before the join ended");
        cr_assert_eq(z->status, EVS_STEP_CANCELLED);
    }
    evs_replay_free(rp);
}

Test(run, join_race_fails_when_the_first_to_end_failed)
{
    worker w[3] = {0};
    const int ms[3] = {0, 0, 0}, fail[3] = {0, 1, 0};
    char res[512];

    w[0].after = w[2].after = &w[1]; /* y ends first, failed */

    cr_assert_eq(run_join("j3", "race", w, ms, fail, res, sizeof(res)),
                 EVS_EFAILED, "%s", res);
    cr_assert(strstr(res, "\"join_failed\"") && strstr(res, "it broke"), "%s",
              res);
    cr_assert_eq(replay_status("j3", NULL), EVS_STATUS_COMPLETED);
}

Test(run, a_rerun_replays_branches_and_their_join)
{
    static const char *const names[] = {"x", "y"};
    worker w[2] = {0};
    evs_error_info e;
    evs_run *r, *bs[2];
    pthread_t t[2];
    int pass;

    for (pass = 0; pass < 2; pass++) {
        r = open_run("j4", NULL, NULL, 0);
        for (int i = 0; i < 2; i++) {
            cr_assert_eq(evs_run_branch(r, names[i], &bs[i], &e), 0, "%s",
                         e.msg);
            w[i].b = bs[i];
            w[i].ms = 5;
            snprintf(w[i].out, sizeof(w[i].out), "%d", i);
            cr_assert_eq(pthread_create(&t[i], NULL, work_thread, &w[i]), 0);
        }
        cr_assert_eq(evs_run_join(r, "all", bs, 2, &e), 0, "%s", e.msg);
        cr_assert_str_eq(evs_run_result(r), "{\"x\":0,\"y\":1}");
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            cr_assert_eq(w[i].rc, 0, "%s", evs_err_name(w[i].rc));
            evs_run_close(bs[i]);
        }
        evs_run_close(r); /* not completed: the second pass replays */
    }
    cr_assert_eq(w[0].calls, 1, "branch x's step ran again");
    cr_assert_eq(w[1].calls, 1, "branch y's step ran again");
}

Test(run, an_existing_run_opens_with_what_it_recorded)
{
    evs_error_info e;
    evs_run *r = open_run("rec", "{\"n\":7}", NULL, 0);
    int rc;

    evs_run_close(r);
    /* A host recovering runs knows neither their workflow nor their
     * inputs: NULL takes the recorded ones. */
    rc = evs_run_open(st, "rec", NULL, NULL, NULL, NULL, &r, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_workflow(r), "wf");
    cr_assert_str_eq(evs_run_inputs(r), "{\"n\":7}");
    cr_assert_str_eq(evs_run_version(r), "1");
    evs_run_close(r);
    /* A new run needs a workflow name. */
    rc = evs_run_open(st, "fresh", NULL, "1", NULL, NULL, &r, &e);
    cr_assert_eq(rc, -EINVAL, "%s", evs_err_name(rc));
    cr_assert(strstr(e.msg, "workflow"), "%s", e.msg);
    cr_assert_eq(evs_exec_exists(st, "fresh", 5), 0);
}

Test(run, recovery_lists_unowned_unfinished_runs_and_when_they_are_due)
{
    counter c = {0};
    evs_error_info e;
    evs_run *r, *held;
    char *json = NULL;
    int rc;

    /* crashed: cut off after a step (due now) */
    r = open_run("crashed", NULL, NULL, 0);
    step_ok(r, "a", "1", &c, "1");
    evs_run_close(r);
    /* sleeper: suspended until a minute from now (not due) */
    r = open_run("sleeper", NULL, "{\"mode\":\"suspend\"}", 0);
    cr_assert_eq(evs_run_sleep(r, 60000, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    /* waiter: suspended on an event that has since come (due) */
    r = open_run("waiter", NULL, "{\"mode\":\"suspend\"}", 0);
    cr_assert_eq(evs_run_wait_event(r, "go", 0, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    post("waiter", "event", "go", "1");
    /* done: completed; held: owned by a handle open now; other: another
     * workflow */
    r = open_run("done", NULL, NULL, 0);
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0);
    evs_run_close(r);
    held = open_run("held", NULL, NULL, 0);
    cr_assert_eq(evs_run_open(st, "other", "wf2", "9", NULL, NULL, &r, &e), 0);
    evs_run_close(r);

    rc = evs_run_recoverable(st, "wf", &json, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_assert(strstr(json, "{\"id\":\"crashed\",\"workflow\":\"wf\","
                           "\"version\":\"1\",\"status\":\"running\","
                           "\"due\":true,\"wake_at\":null}"),
              "%s", json);
    cr_assert(strstr(json, "\"id\":\"sleeper\",\"workflow\":\"wf\","
                           "\"version\":\"1\",\"status\":\"waiting\","
                           "\"due\":false,\"wake_at\":\"20"),
              "%s", json);
    cr_assert(strstr(json, "\"id\":\"waiter\",\"workflow\":\"wf\","
                           "\"version\":\"1\",\"status\":\"waiting\","
                           "\"due\":true"),
              "%s", json);
    cr_assert_null(strstr(json, "\"done\""), "%s", json);
    cr_assert_null(strstr(json, "\"held\""), "%s", json);
    cr_assert_null(strstr(json, "\"other\""), "%s", json);
    free_store_buf(json);
    /* Every workflow, and the version is not a filter. */
    cr_assert_eq(evs_run_recoverable(st, NULL, &json, &e), 0);
    cr_assert(strstr(json, "\"id\":\"other\",\"workflow\":\"wf2\","
                           "\"version\":\"9\""),
              "%s", json);
    free_store_buf(json);
    evs_run_close(held);
}

/* A run that failed at step "b": "a" completed, "b" failed for good,
 * and the code failed the run. */
static void failed_run(const char *id, counter *a, counter *b)
{
    evs_error_info e;
    evs_run *r = open_run(id, "{\"n\":1}", NULL, 0);

    step_ok(r, "a", "1", a, "1");
    *b = (counter){.fail_first = 1, .fail_type = "fatal"};
    cr_assert_eq(evs_run_step(r, "b", "2",
                              "{\"retry\":{\"non_retryable\":"
                              "[\"fatal\"]}}",
                              count_fn, b, NULL, &e),
                 EVS_EFAILED);
    cr_assert_eq(evs_run_fail(r, "fatal", "b broke", &e), 0, "%s", e.msg);
    evs_run_close(r);
}

static char *retry_run(const char *id, evs_retry_strategy how,
                       const char *inputs, const char *output)
{
    static char out[EVS_ID_MAX + 1];
    evs_retry_opts o;
    evs_error_info e;
    int rc;

    evs_retry_opts_init(&o);
    o.strategy = how;
    o.inputs = evs_span_cstr(inputs);
    o.output = evs_span_cstr(output);
    rc = evs_exec_retry(st, evs_span_cstr(id), &o, out, &e);
    cr_assert_eq(rc, 0, "retry of %s: %s (%s)", id, evs_err_name(rc), e.msg);
    return out;
}

/* Runs the code of the failed run again on `id`: a, then b (its body
 * `b` counter), then completes. Returns b's output. */
static void rerun(const char *id, counter *a, counter *b, char *bout,
                  size_t cap)
{
    evs_error_info e;
    evs_run *r = NULL;
    const char *out;
    int rc = evs_run_open(st, id, NULL, NULL, NULL, NULL, &r, &e);

    cr_assert_eq(rc, 0, "open %s: %s", id, e.msg);
    step_ok(r, "a", "1", a, "1");
    rc = evs_run_step(r, "b", "2", NULL, count_fn, b, &out, &e);
    cr_assert_eq(rc, 0, "b: %s", e.msg);
    snprintf(bout, cap, "%s", out);
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status(id, NULL), EVS_STATUS_COMPLETED);
}

Test(run, retry_from_failure_reruns_only_the_failed_step)
{
    counter a = {0}, b;
    char out[64], *succ;
    evs_replay *rp;

    failed_run("f1", &a, &b);
    succ = retry_run("f1", EVS_RETRY_FROM_FAILURE, NULL, NULL);
    rerun(succ, &a, &b, out, sizeof(out));
    cr_assert_eq(a.calls, 1, "a ran again");
    cr_assert_eq(b.calls, 2, "b did not run again");
    cr_assert_str_eq(out, "2");
    cr_assert_eq(replay_status(succ, &rp), EVS_STATUS_COMPLETED);
    cr_assert(strstr(evs_replay_exec(rp)->lineage.ptr, "\"retry_of\":\"f1\""));
    evs_replay_free(rp);
}

Test(run, skip_failed_gives_the_failed_step_an_output)
{
    counter a = {0}, b;
    char out[64], *succ;

    failed_run("f2", &a, &b);
    succ = retry_run("f2", EVS_RETRY_SKIP_FAILED, NULL, "\"skipped\"");
    rerun(succ, &a, &b, out, sizeof(out));
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 1, "b ran though it was skipped");
    cr_assert_str_eq(out, "\"skipped\"");
}

Test(run, retry_from_start_and_with_new_inputs_run_everything_again)
{
    counter a = {0}, b;
    char out[64], *succ;
    evs_error_info e;
    evs_run *r;

    failed_run("f3", &a, &b);
    succ = retry_run("f3", EVS_RETRY_FROM_START, NULL, NULL);
    rerun(succ, &a, &b, out, sizeof(out));
    cr_assert_eq(a.calls, 2);

    failed_run("f4", &a, &b);
    succ = retry_run("f4", EVS_RETRY_WITH_NEW_INPUTS, "{\"n\":2}", NULL);
    cr_assert_eq(evs_run_open(st, succ, NULL, NULL, NULL, NULL, &r, &e), 0,
                 "%s", e.msg);
    cr_assert_str_eq(evs_run_inputs(r), "{\"n\":2}");
    evs_run_close(r);
    /* A run's new inputs must be an object. */
    {
        evs_retry_opts o;
        evs_retry_opts_init(&o);
        o.strategy = EVS_RETRY_WITH_NEW_INPUTS;
        o.inputs = evs_span_cstr("[1]");
        cr_assert_eq(evs_exec_retry(st, evs_span_cstr("f4"), &o, NULL, &e),
                     EVS_EPARSE, "%s", e.msg);
    }
}

Test(run, the_orchestrator_leaves_runs_to_their_hosts)
{
    char version[16];
    evs_run *r = open_run("mine", NULL, NULL, 0);

    evs_run_close(r);
    cr_assert_eq(evs_exec_code_version(st, "mine", 4, version, sizeof(version)),
                 1);
    cr_assert_str_eq(version, "1");
    cr_assert_eq(tu_create(st, "hand"), 0);
    cr_assert_eq(evs_exec_code_version(st, "hand", 4, NULL, 0), 0);
    cr_assert_eq(evs_exec_code_version(st, "none", 4, NULL, 0), -ENOENT);
}

Test(run, continue_as_new_hands_the_run_to_a_linked_successor)
{
    counter c = {0};
    evs_error_info e;
    evs_replay *rp;
    char succ[EVS_ID_MAX + 1];
    evs_run *r = open_run("ca", "{\"n\":1}", NULL, 0);

    step_ok(r, "poll", "1", &c, "1");
    /* An event received and not taken goes on in the successor. */
    cr_assert_eq(evs_run_send(st, "ca", "mail", "{\"from\":\"bob\"}", &e), 0,
                 "%s", e.msg);
    cr_assert_eq(evs_run_continue_as_new(r, "{\"n\":2}", succ, &e), 0, "%s",
                 e.msg);
    cr_assert_str_eq(succ, "ca.c2");
    cr_assert_str_eq(evs_run_status(r), "continued");
    cr_assert_str_eq(evs_run_continued_as(r), "ca.c2");
    cr_assert_eq(evs_run_step_begin(r, "more", NULL, NULL, &e), EVS_EFINISHED);
    evs_run_close(r);
    cr_assert_eq(replay_status("ca", NULL), EVS_STATUS_CONTINUED);

    /* Sent to the first member, an event reaches the last. */
    cr_assert_eq(evs_run_send(st, "ca", "mail", "2", &e), 0, "%s", e.msg);
    cr_assert_eq(evs_run_open(st, "ca.c2", NULL, NULL, NULL, NULL, &r, &e), 0,
                 "%s", e.msg);
    cr_assert_str_eq(evs_run_inputs(r), "{\"n\":2}");
    cr_assert_str_eq(evs_run_workflow(r), "wf");
    cr_assert_eq(evs_run_wait_event(r, "mail", 100, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "{\"from\":\"bob\"}");
    cr_assert_eq(evs_run_wait_event(r, "mail", 100, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "2");
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0);
    evs_run_close(r);
    cr_assert_eq(replay_status("ca.c2", &rp), EVS_STATUS_COMPLETED);
    cr_assert(
        strstr(evs_replay_exec(rp)->lineage.ptr, "\"continued_from\":\"ca\""));
    evs_replay_free(rp);
    /* The chain has ended: a send is refused. */
    cr_assert_eq(evs_run_send(st, "ca", "mail", "3", &e), EVS_EFINISHED);
    cr_assert_neq(e.msg[0], '\0');
}

Test(run, requests_from_the_host_api)
{
    evs_error_info e;
    evs_run *r = open_run("rq", NULL, "{\"mode\":\"suspend\"}", 0);

    cr_assert_eq(evs_run_request(st, "rq", "pause", "a break", &e), 0, "%s",
                 e.msg);
    cr_assert_eq(evs_run_step_begin(r, "a", NULL, NULL, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    cr_assert_eq(evs_run_request(st, "rq", "terminate", NULL, &e), 0);
    r = open_run("rq", NULL, NULL, 0);
    cr_assert_eq(evs_run_step_begin(r, "a", NULL, NULL, &e), EVS_EFINISHED);
    evs_run_close(r);
    cr_assert_eq(replay_status("rq", NULL), EVS_STATUS_TERMINATED);
    cr_assert_eq(evs_run_request(st, "rq", "stop", NULL, &e), -EINVAL);
    cr_assert_eq(evs_run_send(st, "rq", "", NULL, &e), -EINVAL);
    cr_assert_eq(evs_run_send(st, "nope", "x", NULL, &e), -ENOENT);
    cr_assert_eq(evs_run_send(st, "rq", "x", "{bad", &e), -EINVAL);
}

/* A run's pause, unpause and termination go through the same path as an
 * orchestrator's: who asked and why land in the events and the state. */
Test(run, requests_record_who_asked_and_why)
{
    evs_error_info e;
    evs_replay *rp;
    const evs_exec_state *x;
    evs_run *r = open_run("rb", NULL, "{\"mode\":\"suspend\"}", 0);

    cr_assert_eq(evs_run_request_by(st, "rb", "pause", "alice", "a break",
                                    &e),
                 0, "%s", e.msg);
    cr_assert_eq(evs_run_step_begin(r, "b", NULL, NULL, &e), EVS_ESUSPENDED);
    evs_run_close(r);
    cr_assert_eq(replay_status("rb", &rp), EVS_STATUS_PAUSED);
    x = evs_replay_exec(rp);
    cr_assert(x->paused.seq > 0);
    cr_assert_eq(x->paused.by.len, 5);
    cr_assert(memcmp(x->paused.by.ptr, "alice", 5) == 0);
    cr_assert_eq(x->paused.reason.len, 9);
    cr_assert(memcmp(x->paused.reason.ptr, "\"a break\"", 9) == 0);
    evs_replay_free(rp);
    cr_assert_eq(evs_run_request_by(st, "rb", "unpause", "bob", NULL, &e), 0);
    r = open_run("rb", NULL, NULL, 0);
    cr_assert_eq(evs_run_step_begin(r, "b", NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(evs_run_step_end(r, "1", &e), 0, "%s", e.msg);
    cr_assert_eq(evs_run_request_by(st, "rb", "terminate", "carol", "done",
                                    &e),
                 0);
    cr_assert_eq(evs_run_step_begin(r, "c", NULL, NULL, &e), EVS_EFINISHED);
    evs_run_close(r);
    cr_assert_eq(replay_status("rb", &rp), EVS_STATUS_TERMINATED);
    x = evs_replay_exec(rp);
    cr_assert(x->resumed.seq > x->paused.seq);
    cr_assert(x->resumed.by.len == 3 &&
              memcmp(x->resumed.by.ptr, "bob", 3) == 0);
    cr_assert_eq(x->resumed.reason.len, 0);
    cr_assert(x->terminated.seq > x->resumed.seq);
    cr_assert(x->terminated.by.len == 5 &&
              memcmp(x->terminated.by.ptr, "carol", 5) == 0);
    cr_assert(x->terminated.reason.len == 6 &&
              memcmp(x->terminated.reason.ptr, "\"done\"", 6) == 0);
    evs_replay_free(rp);
    /* A `by` that is not UTF-8 is refused before anything is posted. */
    cr_assert_eq(evs_run_request_by(st, "rb", "pause", "\xff", NULL, &e),
                 -EINVAL);
}

static void *interrupt_later(void *arg)
{
    struct timespec ts = {0, 50 * 1000000L};

    nanosleep(&ts, NULL);
    evs_run_interrupt(arg);
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
}

typedef struct signaller {
    pthread_t target;
    atomic_int stop;
} signaller;

/* Signals the target every 20 ms until told to stop: one of them finds
 * it napping, however late it gets there. */
static void *signal_later(void *arg)
{
    signaller *g = arg;
    struct timespec ts = {0, 20 * 1000000L};

    while (!atomic_load(&g->stop)) {
        nanosleep(&ts, NULL);
        pthread_kill(g->target, SIGUSR1);
    }
    return NULL;
}

Test(run, a_blocking_wait_can_be_interrupted_and_goes_on_after)
{
    evs_error_info e;
    struct sigaction sa;
    evs_replay *rp;
    pthread_t t, self = pthread_self();
    signaller g;
    evs_run *r = open_run("intr", NULL, "{\"poll_ms\":5}", 0);
    int64_t t0 = evs_now_us();
    int rc;

    cr_assert_eq(pthread_create(&t, NULL, interrupt_later, r), 0);
    cr_assert_eq(evs_run_wait_event(r, "go", 0, &e), -EINTR, "%s", e.msg);
    pthread_join(t, NULL);
    cr_assert_lt(evs_now_us() - t0, 5000000);
    /* Nothing was lost: the interrupted call goes on where it was (the
     * same wait, not a second one), and no other may come first. */
    cr_assert_eq(evs_run_sleep(r, 1, &e), -EBUSY, "%s", e.msg);
    post("intr", "event", "go", "7");
    cr_assert_eq(evs_run_wait_event(r, "go", 0, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "7");
    cr_assert_str_eq(evs_run_step_name(r), "go");
    /* A signal the process handles ends a wait too (as read(2)). */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    g.target = self;
    atomic_init(&g.stop, 0);
    cr_assert_eq(pthread_create(&t, NULL, signal_later, &g), 0);
    rc = evs_run_sleep(r, 10000, &e);
    atomic_store(&g.stop, 1);
    pthread_join(t, NULL);
    cr_assert_eq(rc, -EINTR, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("intr", &rp), EVS_STATUS_WAITING);
    cr_assert_eq(find_step(rp, "go")->status, EVS_STEP_COMPLETED);
    cr_assert_null(find_step(rp, "go#2"));
    evs_replay_free(rp);
}

Test(run, retry_from_a_sequence_keeps_the_history_up_to_it)
{
    counter a = {0}, b;
    char out[64];
    evs_retry_opts o;
    evs_error_info e;
    char succ[EVS_ID_MAX + 1];

    failed_run("f5", &a, &b);
    evs_retry_opts_init(&o);
    o.strategy = EVS_RETRY_FROM_SEQ;
    o.from_seq = 4; /* started, path, a started, a completed */
    cr_assert_eq(evs_exec_retry(st, evs_span_cstr("f5"), &o, succ, &e), 0, "%s",
                 e.msg);
    rerun(succ, &a, &b, out, sizeof(out));
    cr_assert_eq(a.calls, 1, "a ran again");
    cr_assert_eq(b.calls, 2);
}

Test(run, the_tools_show_runs_and_leave_running_them_to_their_hosts)
{
    counter c = {0};
    evs_error_info e;
    tu_result t;
    evs_run *r = open_run("tools", NULL, NULL, 0);

    step_ok(r, "a", "1", &c, "1");
    cr_assert_eq(evs_run_fail(r, "boom", "it broke", &e), 0);
    evs_run_close(r);
    t = tu_run_tool("EVRUN", dir, "resume",
                    (const char *const[]){"resume", tu_loc(dir), "tools", NULL});
    cr_assert_eq(t.status, 1, "evrun resume of a run: %d: %s", t.status, t.err);
    cr_assert(strstr(t.err, "durable function's run"), "%s", t.err);
    tu_result_free(&t);
    t = tu_run_tool("EVRUN", dir, "status",
                    (const char *const[]){"status", tu_loc(dir), "tools", NULL});
    cr_assert(strstr(t.out, "failed"), "%s", t.out);
    tu_result_free(&t);
    t = tu_run_tool("EVDUMP", dir, "state",
                    (const char *const[]){"state", tu_loc(dir), "tools", NULL});
    cr_assert_eq(t.status, 0, "%s", t.err);
    tu_result_free(&t);
    t = tu_run_tool("EVRUN", dir, "retry",
                    (const char *const[]){"retry", tu_loc(dir), "tools", "--strategy",
                                          "from_start", NULL});
    cr_assert_eq(t.status, 0, "evrun retry of a run: %s", t.err);
    cr_assert(strstr(t.err, "run its host's code"), "%s", t.err);
    tu_result_free(&t);
}

Test(run, a_request_left_with_a_run_that_continued_goes_on_to_its_successor)
{
    evs_error_info e;
    char succ[EVS_ID_MAX + 1];
    static const char body[] = "{\"kind\":\"event\",\"type\":\"late\","
                               "\"payload\":5}";
    evs_run *r = open_run("fw", NULL, NULL, 0);

    cr_assert_eq(evs_run_continue_as_new(r, NULL, succ, &e), 0, "%s", e.msg);
    evs_run_close(r);
    /* A poster that looked before the run continued, and wrote after:
     * its request lands in the ended run's inbox. */
    cr_assert_eq(evs_request_post(st, "fw", 2, body, strlen(body), NULL), 0);
    r = open_run("fw", NULL, NULL, EVS_EFINISHED);
    cr_assert_str_eq(evs_run_continued_as(r), succ);
    evs_run_close(r);
    r = open_run(succ, NULL, NULL, 0);
    cr_assert_eq(evs_run_wait_event(r, "late", 100, &e), 0, "%s", e.msg);
    cr_assert_str_eq(evs_run_result(r), "5");
    evs_run_close(r);
    cr_assert_str_eq(evs_err_name(-ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(evs_err_name(-ECANCELED), "ECANCELED");
    cr_assert_str_eq(evs_err_name(-E2BIG), "E2BIG");
}

Test(run, a_retry_takes_its_options_as_json)
{
    counter a = {0}, b;
    char out[64], succ[EVS_ID_MAX + 1];
    evs_error_info e;

    failed_run("fj", &a, &b);
    cr_assert_eq(evs_exec_retry_json(
                     st, "fj", "skip_failed",
                     "{\"output\":\"given\",\"new_id\":\"fj2\"}", succ, &e),
                 0, "%s", e.msg);
    cr_assert_str_eq(succ, "fj2");
    rerun(succ, &a, &b, out, sizeof(out));
    cr_assert_str_eq(out, "\"given\"");
    cr_assert_eq(evs_exec_retry_json(st, "fj", "sideways", NULL, succ, &e),
                 -EINVAL);
    cr_assert(strstr(e.msg, "strategy"), "%s", e.msg);
    cr_assert_eq(
        evs_exec_retry_json(st, "fj", "from_start", "{\"colour\":1}", succ, &e),
        -EINVAL);
    cr_assert(strstr(e.msg, "option"), "%s", e.msg);
    cr_assert_eq(evs_exec_retry_json(st, "fj", "from_seq",
                                     "{\"from_seq\":\"x\"}", succ, &e),
                 -EINVAL);
    cr_assert_eq(evs_exec_retry_json(st, "fj", "from_start", "[1]", succ, &e),
                 -EINVAL);
}

/* A step whose start was made durable (by another handle's append) and
 * whose outcome was not: the handle that opens the run next takes it
 * over, and dispatches that attempt again with its key, recorded
 * before the body runs. */
Test(run, a_step_in_flight_when_its_runner_went_is_dispatched_again)
{
    evs_error_info e;
    evs_run *r, *b;
    evs_replay *rp;
    const evs_step_state *sp;
    counter m = {0};
    char key[128], first[64], second[64], want[32];
    uint64_t last;
    int rc;

    r = open_run("tk", "{}", NULL, 0);
    snprintf(first, sizeof(first), "%s", evs_run_runner(r));
    cr_assert_eq(strlen(first), 36);
    cr_assert_eq(evs_run_branch(r, "side", &b, &e), 0, "%s", e.msg);
    cr_assert_eq(evs_run_step_begin(b, "x", "{\"n\":1}", NULL, &e),
                 EVS_STEP_RUN, "%s", e.msg);
    snprintf(key, sizeof(key), "%s", evs_run_step_key(b));
    cr_assert_str_eq(key, "tk/main/side/x");
    step_ok(r, "m", "1", &m, "1"); /* its append holds x's start */
    evs_run_close(b);              /* x never ends: as after a kill */
    evs_run_close(r);
    cr_assert_eq(replay_status("tk", &rp), EVS_STATUS_RUNNING);
    sp = evs_replay_find_step(rp, evs_span_cstr("main/side"),
                              evs_span_cstr("x"), -1);
    cr_assert_not_null(sp, "x's start is durable");
    cr_assert_eq(sp->status, EVS_STEP_RUNNING);
    cr_assert_eq(evs_replay_exec(rp)->takeovers, 0, "created, not taken");
    last = evs_replay_exec(rp)->last_seq;
    evs_replay_free(rp);

    r = open_run("tk", "{}", NULL, 0);
    snprintf(second, sizeof(second), "%s", evs_run_runner(r));
    cr_assert_str_neq(second, first);
    cr_assert_eq(evs_run_branch(r, "side", &b, &e), 0, "%s", e.msg);
    rc = evs_run_step_begin(b, "x", "{\"n\":1}", NULL, &e);
    cr_assert_eq(rc, EVS_STEP_RUN, "%s: %s", evs_err_name(rc), e.msg);
    cr_assert_str_eq(evs_run_step_key(b), key, "the same key");
    cr_assert_eq(evs_run_step_attempt(b), 1, "the same attempt");
    /* Durable before the body runs. */
    cr_assert_eq(replay_status("tk", &rp), EVS_STATUS_RUNNING);
    cr_assert_eq(evs_replay_exec(rp)->takeovers, 1);
    cr_assert_eq(evs_replay_exec(rp)->takeover_seq, last + 1);
    cr_assert(span_is(evs_replay_exec(rp)->runner, second));
    sp = evs_replay_find_step(rp, evs_span_cstr("main/side"),
                              evs_span_cstr("x"), -1);
    cr_assert_eq(sp->dispatches, 2);
    cr_assert_eq(sp->attempts, 1);
    snprintf(want, sizeof(want), "[%llu]", (unsigned long long)(last + 1));
    cr_assert(span_is(sp->redispatched_by, want), "%.*s",
              (int)sp->redispatched_by.len, sp->redispatched_by.ptr);
    evs_replay_free(rp);
    step_ok(r, "m", "1", &m, "1"); /* replayed */
    cr_assert_eq(m.calls, 1);
    cr_assert_eq(evs_run_step_end(b, "2", &e), 0, "%s", e.msg);
    cr_assert_eq(evs_run_branch_end(b, &e), 0, "%s", e.msg);
    evs_run_close(b);
    cr_assert_eq(evs_run_complete(r, "{}", &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("tk", NULL), EVS_STATUS_COMPLETED);
}

Test(run, a_reopened_run_that_records_nothing_is_left_as_it_was)
{
    evs_run *r;
    counter a = {0};
    evs_replay *rp;
    uint64_t last;

    r = open_run("quiet", "{}", NULL, 0);
    step_ok(r, "a", "1", &a, "1");
    evs_run_close(r);
    cr_assert_eq(replay_status("quiet", &rp), EVS_STATUS_RUNNING);
    last = evs_replay_exec(rp)->last_seq;
    evs_replay_free(rp);
    r = open_run("quiet", "{}", NULL, 0);
    step_ok(r, "a", "1", &a, "1"); /* replayed */
    evs_run_close(r);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(replay_status("quiet", &rp), EVS_STATUS_RUNNING);
    cr_assert_eq(evs_replay_exec(rp)->last_seq, last, "no takeover recorded");
    evs_replay_free(rp);
}
/* ---------------------------------------------------------------- */
/* History limits                                                   */
/* ---------------------------------------------------------------- */

/* Steps of a run until one fails; returns that step's code and how many
 * succeeded. */
static int steps_until_refused(evs_run *r, counter *c, int max, int *done,
                               evs_error_info *e)
{
    const char *out;
    char name[16];
    int rc = 0;

    for (*done = 0; *done < max; (*done)++) {
        snprintf(name, sizeof(name), "s%d", *done);
        if ((rc = evs_run_step(r, name, "1", NULL, count_fn, c, &out, e)) != 0)
            break;
    }
    return rc;
}

Test(run, a_run_at_its_history_limit_fails_with_history_limit)
{
    counter c = {0};
    evs_error_info e;
    evs_replay *rp;
    const evs_exec_state *x;
    int done;
    evs_run *r = open_run("lim", NULL,
                          "{\"history_limits\":{\"max_events\":20,"
                          "\"warn_events\":8}}",
                          0);

    /* 2 events a step, after the first two. */
    cr_assert_eq(steps_until_refused(r, &c, 100, &done, &e), EVS_ELIMIT);
    cr_assert_lt(done, 10);
    cr_assert_str_eq(e.kind, "limit");
    cr_assert_str_eq(e.execution_id, "lim");
    cr_assert(strstr(e.msg, "limit of 20 events"), "%s", e.msg);
    cr_assert_str_eq(evs_run_status(r), "failed");
    /* Every later call says so too. */
    cr_assert_eq(evs_run_complete(r, "1", &e), EVS_ELIMIT);
    evs_run_close(r);
    cr_assert_eq(replay_status("lim", &rp), EVS_STATUS_FAILED);
    x = evs_replay_exec(rp);
    cr_assert(strstr(x->error.ptr, "\"type\":\"history_limit\""), "%.*s",
              (int)x->error.len, x->error.ptr);
    cr_assert_leq(x->last_seq, 20 + EVS_LIMIT_RESERVE_EVENTS);
    cr_assert_eq(x->history_warning_seq, 9);
    evs_replay_free(rp);
    /* Opened again, it has ended. */
    r = open_run("lim", NULL, NULL, EVS_EFINISHED);
    cr_assert_str_eq(evs_run_status(r), "failed");
    evs_run_close(r);
}

Test(run, the_warning_is_recorded_once_across_reruns)
{
    counter c = {0};
    evs_error_info e;
    evs_replay *rp;
    evs_event ev;
    evs_log *l;
    evs_cursor *cur;
    int done, warnings = 0;
    const char *opts = "{\"history_limits\":{\"warn_events\":6}}";
    evs_run *r = open_run("warn", NULL, opts, 0);

    cr_assert_eq(steps_until_refused(r, &c, 5, &done, &e), 0);
    evs_run_close(r);
    /* The code runs again: its steps replay, then go on. */
    r = open_run("warn", NULL, opts, 0);
    cr_assert_eq(steps_until_refused(r, &c, 8, &done, &e), 0);
    cr_assert_eq(evs_run_complete(r, "1", &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(c.calls, 8);
    cr_assert_eq(evs_log_open(st, "warn", 4, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &cur, NULL), 0);
    while (evs_cursor_next(cur, &ev, NULL, NULL) == 1)
        if (span_is(ev.event_type, EVS_EV_HISTORY_WARNING)) {
            warnings++;
            cr_assert_eq(ev.sequence, 7);
        }
    evs_cursor_close(cur);
    evs_log_close(l);
    cr_assert_eq(warnings, 1);
    cr_assert_eq(replay_status("warn", &rp), EVS_STATUS_COMPLETED);
    cr_assert_eq(evs_replay_exec(rp)->history_warning_seq, 7);
    evs_replay_free(rp);
}

Test(run, the_stores_limits_apply_and_bad_history_limits_are_refused)
{
    static const char *const bad[] = {
        "{\"history_limits\":{\"max_events\":0}}",
        "{\"history_limits\":{\"max\":5}}",
        "{\"history_limits\":5}",
        "{\"history_limits\":{\"warn_bytes\":9,\"max_bytes\":8}}",
    };
    evs_store_opts o;
    evs_error_info e;
    counter c = {0};
    evs_run *r = NULL;
    int done;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        cr_assert_eq(evs_run_open(st, "bad", "wf", "1", NULL, bad[i], &r, &e),
                     EVS_EPARSE, "accepted %s", bad[i]);
        cr_assert_str_eq(e.kind, "options");
        cr_assert(strstr(e.msg, "history_limits"), "%s", e.msg);
    }
    evs_store_close(st);
    evs_store_opts_init(&o);
    o.max_bytes = 3000;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &st), 0);
    /* A run's own limit may not raise the store's. */
    r = open_run("bytes", NULL, "{\"history_limits\":{\"max_bytes\":99999}}",
                 0);
    cr_assert_eq(steps_until_refused(r, &c, 100, &done, &e), EVS_ELIMIT);
    cr_assert(strstr(e.msg, "limit of 3000 bytes"), "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(replay_status("bytes", NULL), EVS_STATUS_FAILED);
}
