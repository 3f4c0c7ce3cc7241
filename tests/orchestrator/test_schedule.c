/*
 * test_schedule.c: schedules fired in process with the clock given to
 * each look (evs_sched_fire_due's now_us), so that hours pass in no time
 * (formats/SCHEDULES.md §5): one execution per fire, named by its time;
 * a look repeated after a crash that lost the state starts nothing twice;
 * the catch-up window after a runner was down; each overlap policy;
 * pause, trigger and delete; what evs_sched_add refuses.
 *
 * No runner runs the executions: a test ends one by appending its end,
 * which is what "the previous fire's execution has ended" reads.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("sched", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

TestSuite(schedule, .init = setup, .fini = teardown, .timeout = 60);

static const char def[] =
    "{\"name\":\"report\",\"inputs\":{\"at\":{\"type\":\"string\","
    "\"required\":true}},\"steps\":[{\"name\":\"a\",\"kind\":\"action\","
    "\"action\":\"echo\",\"params\":{\"at\":\"${inputs.at}\"}}]}";

static int64_t at(const char *t)
{
    int64_t us;

    cr_assert_eq(evs_time_parse(t, strlen(t), &us), 0, "%s", t);
    return us;
}

/* 10:00:00.5 on 7 December 2026, when the schedules are added. */
#define T0 at("2026-12-07T10:00:00.500000Z")
#define MIN INT64_C(60000000)

/* Adds schedule `name`, every minute, with the members in `extra`
 * (each followed by a comma). */
static void add(const char *name, const char *extra)
{
    char doc[2048];
    evs_error_info err;
    int rc;

    snprintf(doc, sizeof(doc),
             "{\"name\":\"%s\",\"interval_ms\":60000,%s\"definition\":%s,"
             "\"inputs\":{\"at\":\"${schedule.time}\","
             "\"manual\":\"${schedule.manual}\"}}",
             name, extra, def);
    rc = evs_sched_add(st, evs_span_cstr(doc), T0, &err);
    cr_assert_eq(rc, 0, "add: %s", err.msg);
}

/* One look at `name` at T0 + minutes; returns how many it started. */
static size_t look(const char *name, double minutes)
{
    evs_sched_fired f;
    evs_error_info err;
    int rc;

    memset(&f, 0, sizeof(f));
    rc = evs_sched_fire_due(st, name, T0 + (int64_t)(minutes * (double)MIN), &f,
                            &err);
    cr_assert_eq(rc, 0, "look at %s: %s (%s)", name, err.msg, evs_err_name(rc));
    return f.started;
}

/* The id of the fire of `name` at minute m after 10:00. */
static const char *fire_id(const char *name, int m, int manual)
{
    static char id[4][EVS_ID_MAX + 1];
    static int k;
    char *p = id[k++ % 4];

    cr_assert_eq(evs_sched_exec_id(name, at("2026-12-07T10:00:00Z") + m * MIN,
                                   manual, p),
                 0);
    return p;
}

static int fired(const char *name, int m)
{
    const char *id = fire_id(name, m, 0);
    return evs_exec_exists(st, id, strlen(id));
}

static size_t count_execs(void)
{
    evs_exec_listing l;
    size_t n;

    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    n = l.count;
    evs_exec_list_free(&l);
    return n;
}

/* Ends execution id, as its runner would have. */
static void end_exec(const char *id, const char *type)
{
    evs_log *log = NULL;
    evs_event e = tu_event(type, "", "{}");

    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &log, NULL, NULL), 0,
        "%s", id);
    cr_assert_eq(evs_log_append(log, &e, 1, evs_log_last_seq(log), NULL), 0);
    evs_log_close(log);
}

static size_t requests(const char *id)
{
    evs_request_listing l;
    char by[64];
    size_t n;

    cr_assert_eq(evs_request_list(st, id, strlen(id), &l), 0);
    n = l.count;
    /* A terminate, which names the schedule as who asked ("c-..."). */
    snprintf(by, sizeof(by), "\"by\":\"schedule:%.*s\"",
             (int)strcspn(id, "-"), id);
    for (size_t i = 0; i < n; i++) {
        cr_expect(memmem(l.items[i].body.ptr, l.items[i].body.len, "terminate",
                         9) != NULL);
        cr_expect(memmem(l.items[i].body.ptr, l.items[i].body.len, by,
                         strlen(by)) != NULL,
                  "%.*s", (int)l.items[i].body.len, l.items[i].body.ptr);
    }
    evs_request_list_free(&l);
    return n;
}

static evs_sched_state state_of(const char *name)
{
    evs_schedule *h = NULL;
    evs_sched_state s;

    cr_assert_eq(evs_schedule_open(st, name, 0, &h), 0);
    cr_assert_eq(evs_sched_state_parse(evs_schedule_state(h), &s), 0);
    evs_schedule_close(h);
    return s;
}

Test(schedule, each_fire_starts_one_execution_named_by_its_time)
{
    evs_snapshot *sn = NULL;
    const char *id = fire_id("tick", 1, 0);

    add("tick", "\"overlap\":\"allow_all\",");
    cr_expect_eq(look("tick", 0.9), 0, "nothing is due before 10:01");
    cr_expect_eq(look("tick", 1.0), 1);
    cr_expect_eq(look("tick", 1.5), 0, "a second look starts nothing");
    cr_expect_str_eq(id, "tick-20261207T100100Z");
    cr_assert_eq(evs_snapshot_load(st, id, strlen(id), &sn, NULL), 0);
    cr_expect(memmem(sn->inputs.ptr, sn->inputs.len,
                     "\"at\":\"2026-12-07T10:01:00.000000Z\"", 33) != NULL,
              "the fire time reaches the inputs: %.*s", (int)sn->inputs.len,
              sn->inputs.ptr);
    evs_snapshot_free(sn);
    cr_expect_eq(look("tick", 3.2), 2);
    cr_expect(fired("tick", 2) && fired("tick", 3));
    cr_expect_eq(count_execs(), 3);
    cr_expect_eq(state_of("tick").started, 3);
}

Test(schedule, a_look_that_lost_its_state_in_a_crash_starts_nothing_twice)
{
    evs_schedule *h = NULL;
    char *before;
    evs_span was;
    evs_sched_state s;

    add("tick", "\"overlap\":\"allow_all\",");
    cr_assert_eq(evs_schedule_open(st, "tick", 0, &h), 0);
    was = evs_schedule_state(h);
    cr_assert_not_null(before = strndup(was.ptr, was.len));
    evs_schedule_close(h);
    cr_expect_eq(look("tick", 2.0), 2);
    /* The runner died after creating the executions, before its state
     * was saved: the schedule is as it was before the look. */
    cr_assert_eq(evs_schedule_open(st, "tick", EVS_SCHEDULE_LOCK, &h), 0);
    cr_assert_eq(evs_schedule_save(h, evs_span_cstr(before)), 0);
    evs_schedule_close(h);
    cr_expect_eq(look("tick", 2.0), 0, "nothing is created again");
    cr_expect_eq(count_execs(), 2);
    s = state_of("tick");
    cr_expect_eq(s.nrecent, 2);
    cr_expect_eq(s.recent[0].result, EVS_FIRE_EXISTED);
    cr_expect_eq(s.recent[1].result, EVS_FIRE_EXISTED);
    cr_expect_str_eq(s.last_exec, fire_id("tick", 2, 0));
    free(before);
}

/* The lock every change takes (SCHEDULES.md §7), on every backend: one
 * handle holds it at a time, within one process as between processes; a
 * reader needs none and may not change; the lock goes with its handle. */
Test(schedule, one_handle_at_a_time_holds_the_lock_and_changes)
{
    evs_schedule *a = NULL, *b = NULL, *r = NULL;
    evs_schedule_listing l;
    evs_sched_state s;
    char *state;
    size_t len;

    add("tick", "");
    add("tock", "");
    cr_assert_eq(evs_schedule_open(st, "tick", EVS_SCHEDULE_LOCK, &a), 0);
    cr_expect_eq(evs_schedule_open(st, "tick", EVS_SCHEDULE_LOCK, &b),
                 EVS_ELOCKED);
    cr_expect_null(b);
    /* Another schedule's lock is its own. */
    cr_assert_eq(evs_schedule_open(st, "tock", EVS_SCHEDULE_LOCK, &b), 0);
    evs_schedule_close(b);
    b = NULL;
    cr_assert_eq(evs_schedule_open(st, "tick", 0, &r), 0);
    cr_expect_eq(evs_schedule_save(r, evs_span_cstr("{}")), EVS_EREADONLY);
    cr_expect_eq(evs_schedule_remove(r), EVS_EREADONLY);

    /* A save is read back by the holder and by a new reader. */
    s = state_of("tick");
    s.paused = 1;
    snprintf(s.note, sizeof(s.note), "held");
    cr_assert_eq(evs_sched_state_write(&s, NULL, &state, &len), 0);
    cr_assert_eq(evs_schedule_save(a, (evs_span){state, len}), 0);
    evs_free(NULL, state);
    cr_expect(evs_sched_state_parse(evs_schedule_state(a), &s) == 0 &&
              s.paused && strcmp(s.note, "held") == 0);
    s = state_of("tick");
    cr_expect(s.paused && strcmp(s.note, "held") == 0);
    evs_schedule_close(r);

    evs_schedule_close(a);
    cr_assert_eq(evs_schedule_open(st, "tick", EVS_SCHEDULE_LOCK, &b), 0,
                 "the lock went with its handle");
    cr_assert_eq(evs_schedule_remove(b), 0);
    evs_schedule_close(b);
    cr_expect_eq(evs_schedule_open(st, "tick", 0, &r), -ENOENT);
    cr_expect_eq(evs_schedule_open(st, "tick", EVS_SCHEDULE_LOCK, &r), -ENOENT);
    cr_assert_eq(evs_schedule_list(st, &l), 0);
    cr_expect_eq(l.count, 1);
    cr_expect(l.count == 1 && strcmp(l.names[0], "tock") == 0);
    evs_schedule_list_free(&l);
    /* The name is free again. */
    add("tick", "");
    cr_assert_eq(evs_schedule_list(st, &l), 0);
    cr_expect_eq(l.count, 2);
    cr_expect(l.count == 2 && strcmp(l.names[0], "tick") == 0 &&
              strcmp(l.names[1], "tock") == 0);
    evs_schedule_list_free(&l);
}

Test(schedule, fires_missed_while_no_runner_ran_are_caught_up_within_the_window)
{
    evs_sched_state s;

    add("tick", "\"overlap\":\"allow_all\",\"catchup_window_ms\":150000,");
    cr_expect_eq(look("tick", 1.0), 1);
    /* No runner from 10:01 to 10:10:00.5: the window reaches back to
     * 10:07:30.5, so 10:08, 10:09 and 10:10 start, 10:02..10:07 do not. */
    cr_expect_eq(look("tick", 10.0), 3);
    for (int m = 2; m <= 7; m++)
        cr_expect(!fired("tick", m), "10:%02d is older than the window", m);
    for (int m = 8; m <= 10; m++)
        cr_expect(fired("tick", m), "10:%02d is within the window", m);
    s = state_of("tick");
    cr_expect_eq(s.missed, 6);
    cr_expect_eq(s.started, 4);
    cr_expect_eq(look("tick", 10.5), 0);
}

Test(schedule, skip_skips_a_fire_while_the_previous_one_runs)
{
    add("s", "\"overlap\":\"skip\",");
    cr_expect_eq(look("s", 1.0), 1);
    cr_expect_eq(look("s", 2.0), 0, "10:01 still runs: 10:02 is skipped");
    end_exec(fire_id("s", 1, 0), EVS_EV_EXECUTION_COMPLETED);
    cr_expect_eq(look("s", 3.0), 1);
    cr_expect(!fired("s", 2) && fired("s", 3));
    cr_expect_eq(state_of("s").skipped, 1);
}

Test(schedule, buffer_one_starts_one_waiting_fire_once_the_previous_ends)
{
    evs_sched_state s;

    add("b", "\"overlap\":\"buffer_one\",");
    cr_expect_eq(look("b", 1.0), 1);
    cr_expect_eq(look("b", 3.0), 0, "10:02 waits, 10:03 is dropped");
    s = state_of("b");
    cr_expect_eq(s.buffered_us, at("2026-12-07T10:02:00Z"));
    cr_expect_eq(s.recent[s.nrecent - 1].result, EVS_FIRE_DROPPED);
    end_exec(fire_id("b", 1, 0), EVS_EV_EXECUTION_FAILED);
    cr_expect_eq(look("b", 3.5), 1, "the buffered fire starts");
    cr_expect(fired("b", 2) && !fired("b", 3));
    cr_expect_eq(state_of("b").buffered_us, 0);
}

Test(schedule, allow_all_starts_every_fire_whatever_runs)
{
    add("a", "\"overlap\":\"allow_all\",");
    cr_expect_eq(look("a", 1.0), 1);
    cr_expect_eq(look("a", 2.0), 1);
    cr_expect_eq(requests(fire_id("a", 1, 0)), 0, "nothing is asked to end");
}

Test(schedule, cancel_other_asks_the_previous_to_end_and_starts_after_it)
{
    add("c", "\"overlap\":\"cancel_other\",");
    cr_expect_eq(look("c", 1.0), 1);
    cr_expect_eq(look("c", 2.0), 0, "10:02 waits for 10:01 to end");
    cr_expect_eq(requests(fire_id("c", 1, 0)), 1, "10:01 is asked to end");
    cr_expect_eq(look("c", 2.5), 0, "still running");
    end_exec(fire_id("c", 1, 0), EVS_EV_EXECUTION_TERMINATED);
    cr_expect_eq(look("c", 2.6), 1);
    cr_expect(fired("c", 2));
}

Test(schedule, terminate_other_asks_the_previous_to_end_and_starts_at_once)
{
    add("t", "\"overlap\":\"terminate_other\",");
    cr_expect_eq(look("t", 1.0), 1);
    cr_expect_eq(look("t", 2.0), 1);
    cr_expect_eq(requests(fire_id("t", 1, 0)), 1);
    cr_expect(fired("t", 2));
}

Test(schedule, a_paused_schedule_fires_nothing_and_does_not_catch_up)
{
    add("p", "\"overlap\":\"allow_all\",");
    cr_assert_eq(evs_sched_pause(st, "p", 1, "maintenance", T0), 0);
    cr_expect_str_eq(state_of("p").note, "maintenance");
    cr_expect_eq(look("p", 5.0), 0);
    cr_assert_eq(evs_sched_pause(st, "p", 0, NULL, T0 + 5 * MIN), 0);
    cr_expect_eq(look("p", 5.2), 0, "what fell due in the pause is gone");
    cr_expect_eq(look("p", 6.0), 1);
    cr_expect(fired("p", 6));
    cr_expect_eq(count_execs(), 1);
}

Test(schedule, a_paused_document_adds_a_paused_schedule)
{
    add("q", "\"paused\":true,");
    cr_expect(state_of("q").paused);
    cr_expect_eq(look("q", 3.0), 0);
}

Test(schedule, trigger_fires_now_by_hand_under_the_overlap_policy)
{
    char id[EVS_ID_MAX + 1];
    evs_fire_result r;
    evs_snapshot *sn = NULL;

    add("m", "\"overlap\":\"skip\",");
    cr_assert_eq(evs_sched_trigger(st, "m", T0, -1, &r, id, NULL), 0);
    cr_expect_eq(r, EVS_FIRE_STARTED);
    cr_expect_str_eq(id, "m-20261207T100000Z-manual");
    cr_assert_eq(evs_snapshot_load(st, id, strlen(id), &sn, NULL), 0);
    cr_expect(memmem(sn->inputs.ptr, sn->inputs.len, "\"manual\":true", 13));
    evs_snapshot_free(sn);
    /* The same second again (its overlap policy allowing it), and the
     * scheduled fire while it runs. */
    cr_expect_eq(evs_sched_trigger(st, "m", T0 + 1000, EVS_OVERLAP_ALLOW_ALL,
                                   &r, id, NULL),
                 -EEXIST);
    cr_expect_eq(look("m", 1.0), 0, "skipped: the manual fire runs");
    cr_assert_eq(evs_sched_trigger(st, "m", T0 + 2000000, -1, &r, id, NULL), 0);
    cr_expect_eq(r, EVS_FIRE_SKIPPED);
    cr_assert_eq(evs_sched_trigger(st, "m", T0 + 3000000, EVS_OVERLAP_ALLOW_ALL,
                                   &r, id, NULL),
                 0);
    cr_expect_eq(r, EVS_FIRE_STARTED);
    cr_expect_eq(count_execs(), 2);
}

Test(schedule, a_deleted_schedule_fires_no_more)
{
    evs_schedule_listing l;

    add("d", "\"overlap\":\"allow_all\",");
    add("e", "\"overlap\":\"allow_all\",");
    cr_expect_eq(look("d", 1.0), 1);
    cr_assert_eq(evs_sched_delete(st, "d"), 0);
    cr_expect_eq(evs_sched_fire_due(st, "d", T0 + 5 * MIN, NULL, NULL),
                 -ENOENT);
    cr_assert_eq(evs_schedule_list(st, &l), 0);
    cr_expect_eq(l.count, 1);
    cr_expect_str_eq(l.names[0], "e");
    evs_schedule_list_free(&l);
    cr_expect_eq(count_execs(), 1, "its execution stays");
    cr_expect_eq(evs_sched_delete(st, "d"), -ENOENT);
    /* The name is free again. */
    add("d", "");
}

Test(schedule, jitter_delays_each_fire_the_same_way_for_every_look)
{
    evs_sched_spec sp;
    evs_schedule *h = NULL;
    int64_t j, f = at("2026-12-07T10:01:00Z");

    add("j", "\"jitter_ms\":30000,");
    cr_assert_eq(evs_schedule_open(st, "j", 0, &h), 0);
    cr_assert_eq(evs_sched_spec_parse(evs_schedule_spec(h), &sp, NULL), 0);
    j = evs_sched_jitter_ms(&sp, f);
    cr_expect(j >= 0 && j < 30000);
    cr_expect_eq(evs_sched_jitter_ms(&sp, f), j);
    /* T0 is half a second past the minute. */
    cr_expect_eq(look("j", 1.0 + (double)(j - 501) / 60000.0), 0,
                 "not before its jitter (%lld ms)", (long long)j);
    cr_expect_eq(look("j", 1.0 + (double)(j - 499) / 60000.0), 1);
    evs_schedule_close(h);
}

Test(schedule, a_cron_schedule_fires_at_local_times_across_a_change)
{
    char doc[2048];
    evs_sched_fired f;
    evs_error_info err;
    const char *id = "nightly-20260329T010000Z";

    snprintf(
        doc, sizeof(doc),
        "{\"name\":\"nightly\",\"cron\":\"30 2 * * *\","
        "\"timezone\":\"Europe/Berlin\",\"overlap\":\"allow_all\","
        "\"definition\":%s,\"inputs\":{\"at\":\"${schedule.local_time}\"}}",
        def);
    cr_assert_eq(
        evs_sched_add(st, evs_span_cstr(doc), at("2026-03-28T12:00:00Z"), &err),
        0, "%s", err.msg);
    memset(&f, 0, sizeof(f));
    cr_assert_eq(
        evs_sched_fire_due(st, "nightly", at("2026-03-29T01:00:05Z"), &f, NULL),
        0);
    cr_expect_eq(f.started, 1);
    cr_expect(evs_exec_exists(st, id, strlen(id)),
              "02:30 does not exist that night: it fires at 03:00 CEST");
    cr_expect_eq(f.next_due_us, at("2026-03-30T00:30:00Z"));
}

Test(schedule, add_refuses_a_bad_document_and_says_why)
{
    static const struct {
        const char *doc, *kind, *msg;
        int rc;
        uint64_t offset;
    } bad[] = {
        {"{\"name\":\"x\",\"cron\":\"0 0 * * * *\",\"definition\":{}}", "cron",
         "more than five fields", EVS_EPARSE, 10},
        {"{\"name\":\"x\",\"cron\":\"@daily\",\"interval_ms\":1000,"
         "\"definition\":{}}",
         "schedule", "exactly one of", EVS_EPARSE, UINT64_MAX},
        {"{\"name\":\"x\",\"interval_ms\":1500,\"definition\":{}}", "schedule",
         "whole number of seconds", EVS_EPARSE, UINT64_MAX},
        {"{\"name\":\"x\",\"interval_ms\":1000,\"definiton\":{}}", "schedule",
         "unknown member \"definiton\"", EVS_EPARSE, UINT64_MAX},
        {"{\"name\":\"../x\",\"interval_ms\":1000,\"definition\":{}}",
         "schedule", "\"name\"", EVS_EPARSE, UINT64_MAX},
        {"{\"name\":\"x\",\"cron\":\"@daily\",\"timezone\":\"Mars/Olympus\","
         "\"definition\":{}}",
         "timezone", "no zone", -ENOENT, UINT64_MAX},
        {"{\"name\":\"x\",\"interval_ms\":1000,\"overlap\":\"sometimes\","
         "\"definition\":{}}",
         "schedule", "\"overlap\"", EVS_EPARSE, UINT64_MAX},
        {"{\"name\":\"x\",\"interval_ms\":1000,\"definition\":{\"name\":\"w\"}"
         "}",
         "definition", "", EVS_EPARSE, UINT64_MAX},
    };
    char doc[1024];
    evs_error_info err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        cr_expect_eq(evs_sched_add(st, evs_span_cstr(bad[i].doc), T0, &err),
                     bad[i].rc, "%s: %s", bad[i].doc, err.msg);
        cr_expect_str_eq(err.kind, bad[i].kind, "%s: %s", bad[i].doc, err.msg);
        cr_expect(strstr(err.msg, bad[i].msg) != NULL, "%s: %s", bad[i].doc,
                  err.msg);
        if (bad[i].offset != UINT64_MAX)
            cr_expect_eq(err.offset, bad[i].offset, "%s", bad[i].doc);
    }
    /* Inputs the definition refuses, and a reference that is not the
     * schedule's. */
    snprintf(doc, sizeof(doc),
             "{\"name\":\"x\",\"interval_ms\":1000,\"definition\":%s}", def);
    cr_expect_eq(evs_sched_add(st, evs_span_cstr(doc), T0, &err), EVS_EPARSE);
    cr_expect_str_eq(err.kind, "inputs");
    snprintf(doc, sizeof(doc),
             "{\"name\":\"x\",\"interval_ms\":1000,\"definition\":%s,"
             "\"inputs\":{\"at\":\"${inputs.at}\"}}",
             def);
    cr_expect_eq(evs_sched_add(st, evs_span_cstr(doc), T0, &err), EVS_EPARSE);
    cr_expect_str_eq(err.kind, "template");
    add("x", "");
    cr_expect_eq(evs_sched_add(st, evs_span_cstr(doc), T0, NULL), EVS_EPARSE);
    snprintf(doc, sizeof(doc),
             "{\"name\":\"x\",\"interval_ms\":1000,\"definition\":%s,"
             "\"inputs\":{\"at\":\"now\"}}",
             def);
    cr_expect_eq(evs_sched_add(st, evs_span_cstr(doc), T0, NULL), -EEXIST);
    cr_expect_eq(count_execs(), 0);
}
