/*
 * test_limits.c: history limits in the orchestrator (FORMAT.md §3.1,
 * WORKFLOWS.md §1 `history_limits`): the history_warning recorded once
 * (and logged), across resumes too; an execution that reaches its hard
 * limit failed with the error type "history_limit" instead of growing,
 * its non-terminal events all within the limit; the store's limits and
 * a definition's own, which may lower the store's hard limit but not
 * raise it.
 */
#include <criterion/criterion.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long bumps;

/* bump: {"n":N} -> N+1. */
static void bump(void *arg, evs_action_req *req)
{
    const evs_action_call *c = evs_action_req_call(req);
    char in[64], out[32];
    long n = -1;

    (void)arg;
    bumps++;
    snprintf(in, sizeof(in), "%.*s", (int)c->input.len, c->input.ptr);
    cr_assert_eq(sscanf(in, "{\"n\":%ld}", &n), 1, "input %s", in);
    snprintf(out, sizeof(out), "%ld", n + 1);
    cr_assert_eq(evs_action_complete(req, evs_span_cstr(out)), 0);
}

static void register_actions(evs_orch *o)
{
    cr_assert_eq(evs_orch_register(o, "bump", bump, NULL, 0), 0);
}

static void setup(void)
{
    harness_setup("limits", register_actions, EVS_SYNC_NONE);
    bumps = 0;
}

TestSuite(limits, .init = setup, .fini = harness_teardown);

/* A counter to `passes` (4 events a pass), with `limits` (a JSON
 * object, or NULL) as its history_limits. */
static const char *counter(long passes, const char *limits)
{
    char b[1024], lm[256] = "";

    if (limits)
        snprintf(lm, sizeof(lm), "'history_limits':%s,", limits);
    snprintf(b, sizeof(b),
             "{'name':'counter',%s'steps':["
             "{'name':'init','kind':'action','action':'echo',"
             "'params':0,'store':'n','next':'tick'},"
             "{'name':'tick','kind':'action','action':'bump',"
             "'params':{'n':'${vars.n}'},'store':'n','next':["
             "{'to':'tick','when':{'lt':['${vars.n}',%ld]}},"
             "{'to':'done','when':{'ge':['${vars.n}',%ld]}}]},"
             "{'name':'done','kind':'action','action':'echo',"
             "'params':{'n':'${vars.n}'}}]}",
             lm, passes, passes);
    return J(b);
}

/* Runs def as id until it ends, never continuing as new. */
static void run_plain(const char *def, const char *id, evs_outcome oc)
{
    evs_orch_opts oo;

    nouts = 0;
    orch_opts_init(&oo, 1);
    oo.continue_events = 0;
    oo.continue_bytes = 0;
    oo.continue_age_ms = 0;
    mk_orch_with(&oo);
    start(def, "", id);
    run_orch();
    expect_outcome(id, oc);
}

/* id failed at its hard limit: the error says so and names `limit`;
 * every event after `max` is one of those that end it (its paths
 * cancelled, its failure), all in its last append. */
static void expect_failed_at_limit(const char *id, uint64_t max,
                                   const char *limit)
{
    evlist l = events_of(id);
    const evs_event *f = evf(&l, EVS_EV_EXECUTION_FAILED, NULL, NULL, 0);
    evs_span err;

    cr_assert_not_null(f, "%s did not fail", id);
    err = dget(f, "error");
    expect_span(jget(err, "type"), "\"history_limit\"");
    cr_assert(span_contains(jget(err, "message"), limit), "message %.*s",
              (int)err.len, err.ptr);
    expect_span(jget(err, "retryable"), "false");
    for (size_t i = 0; i < l.n; i++) {
        const evs_event *e = &l.v[i].ev;
        if (e->sequence <= max)
            continue;
        cr_assert(span_is(e->event_type, EVS_EV_PATH_CANCELLED) ||
                      span_is(e->event_type, EVS_EV_EXECUTION_FAILED),
                  "event %llu past the limit is %.*s",
                  (unsigned long long)e->sequence, (int)e->event_type.len,
                  e->event_type.ptr);
        cr_assert(e->batch_count == 0 ||
                      e->batch_first + e->batch_count - 1 == l.n,
                  "event %llu is not in the last append",
                  (unsigned long long)e->sequence);
    }
    cr_assert(strstr(last_log, id) && strstr(last_log, limit), "logged: %s",
              last_log);
    evlist_free(&l);
}

Test(limits, the_warning_is_recorded_once_and_logged)
{
    evlist l;
    const evs_event *w;
    evs_replay *rp;
    char *json;

    harness_store_limits(10, 0, 0, 0);
    run_plain(counter(20, NULL), "warned", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(bumps, 20);
    l = events_of("warned");
    cr_assert_eq(evcount(&l, EVS_EV_HISTORY_WARNING, NULL, NULL), 1);
    w = evf(&l, EVS_EV_HISTORY_WARNING, NULL, NULL, 0);
    /* Right after the tenth event, which reached the threshold. */
    cr_assert_eq(w->sequence, 11);
    expect_span(dget(w, "threshold"), "\"events\"");
    cr_assert_eq(dint(w, "events"), 10);
    cr_assert_eq(dint(w, "limit"), 10);
    cr_assert_eq(dint(w, "max_events"), EVS_LIMIT_MAX_EVENTS_DEFAULT);
    cr_assert(strstr(last_warn, "warned") &&
                  strstr(last_warn, "warning threshold of 10 events"),
              "logged: %s", last_warn);
    /* The state shows it. */
    rp = replay_of("warned");
    cr_assert_eq(evs_replay_exec(rp)->history_warning_seq, 11);
    cr_assert_eq(evs_replay_state_json(rp, &json, NULL), 0);
    cr_assert(strstr(json, "\"history_warning\":11,"), "%s", json);
    free(json);
    evlist_free(&l);
}

Test(limits, the_warning_is_not_recorded_again_after_a_resume)
{
    TU_FILE_ONLY("removes a snapshot file");
    /* Each pass waits for an event, taken by a new runner, which knows
     * of the warning only from the history: once from the snapshot,
     * once (the snapshot gone) from the log. */
    const char *d = J("{'name':'w','history_limits':{'warn_events':6},"
                      "'steps':["
                      "{'name':'init','kind':'action','action':'echo',"
                      "'params':0,'store':'n','next':'tick'},"
                      "{'name':'tick','kind':'action','action':'bump',"
                      "'params':{'n':'${vars.n}'},'store':'n','next':'w'},"
                      "{'name':'w','kind':'wait_event','event':'go',"
                      "'next':[{'to':'tick','max_passes':4}]}]}");
    char snap[1024];
    evlist l;

    run_new(d, "", "rw", EVS_OUTCOME_SUSPENDED);
    for (int i = 1; i <= 4; i++) {
        nouts = 0;
        if (i == 2) {
            snprintf(snap, sizeof(snap), "%s/rw/snapshot.json", dir);
            cr_assert_eq(unlink(snap), 0);
        }
        cr_assert_eq(evs_orch_post(st, S("rw"), S("event"), S("go"), S("1")),
                     0);
        run_resume("rw", i < 4 ? EVS_OUTCOME_SUSPENDED : EVS_OUTCOME_FAILED);
    }
    cr_assert_eq(bumps, 4);
    l = events_of("rw");
    cr_assert_gt(l.n, 20);
    cr_assert_eq(evcount(&l, EVS_EV_HISTORY_WARNING, NULL, NULL), 1);
    cr_assert_eq(evf(&l, EVS_EV_HISTORY_WARNING, NULL, NULL, 0)->sequence, 7);
    evlist_free(&l);
}

Test(limits, an_execution_at_the_store_limit_fails_with_history_limit)
{
    harness_store_limits(0, 0, 30, 0);
    run_plain(counter(100, NULL), "capped", EVS_OUTCOME_FAILED);
    cr_assert_lt(bumps, 10, "bump ran %ld times", bumps);
    expect_failed_at_limit("capped", 30, "limit of 30 events");
    cr_assert_eq(outcome_count(EVS_OUTCOME_ERROR), 0);
}

Test(limits, an_execution_at_the_byte_limit_fails_with_history_limit)
{
    evlist l;
    uint64_t bytes = 0;
    evs_log *lg;
    evs_cursor *c;
    evs_event ev;
    evs_span raw;

    harness_store_limits(0, 0, 0, 6000);
    run_plain(counter(1000, NULL), "bytes", EVS_OUTCOME_FAILED);
    l = events_of("bytes");
    expect_failed_at_limit("bytes", l.n, "limit of 6000 bytes");
    evlist_free(&l);
    /* What came before its end fits in the limit. */
    cr_assert_eq(evs_log_open(st, "bytes", 5, 0, &lg, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(lg, 1, 0, &c, NULL), 0);
    while (evs_cursor_next(c, &ev, &raw, NULL) == 1)
        if (!span_is(ev.event_type, EVS_EV_PATH_CANCELLED) &&
            !span_is(ev.event_type, EVS_EV_EXECUTION_FAILED))
            bytes += raw.len;
    evs_cursor_close(c);
    evs_log_close(lg);
    cr_assert_leq(bytes, 6000);
    cr_assert_gt(bytes, 5000, "stopped at %llu bytes, well before the limit",
                 (unsigned long long)bytes);
}

Test(limits, a_definitions_own_limits_apply)
{
    evlist l;

    run_plain(counter(100, "{'warn_events':5,'max_events':25}"), "own",
              EVS_OUTCOME_FAILED);
    expect_failed_at_limit("own", 25, "limit of 25 events");
    l = events_of("own");
    cr_assert_eq(evcount(&l, EVS_EV_HISTORY_WARNING, NULL, NULL), 1);
    cr_assert_eq(evf(&l, EVS_EV_HISTORY_WARNING, NULL, NULL, 0)->sequence, 6);
    evlist_free(&l);
}

Test(limits, a_definition_does_not_raise_the_stores_hard_limit)
{
    harness_store_limits(0, 0, 30, 0);
    run_plain(counter(100, "{'max_events':1000}"), "raised",
              EVS_OUTCOME_FAILED);
    expect_failed_at_limit("raised", 30, "limit of 30 events");
}

Test(limits, no_limit_lets_a_history_grow)
{
    evlist l;

    harness_store_limits(EVS_LIMIT_NONE, EVS_LIMIT_NONE, EVS_LIMIT_NONE,
                         EVS_LIMIT_NONE);
    run_plain(counter(50, NULL), "free", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(bumps, 50);
    l = events_of("free");
    cr_assert_gt(l.n, 200);
    cr_assert_eq(evcount(&l, EVS_EV_HISTORY_WARNING, NULL, NULL), 0);
    evlist_free(&l);
}
