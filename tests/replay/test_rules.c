/*
 * test_rules.c: history validation. For every rule of FORMAT.md ("History
 * rules") a minimal hand-made history breaks exactly that rule at a known
 * sequence: strict mode refuses the event with EVS_EHISTORY, the sequence
 * and the rule's name, and leaves the state as it was; tolerant mode
 * applies everything and reports each violation, in order.
 */
#include <criterion/criterion.h>

#include "histories.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(rules, .fini = hist_leak_check);

/* One event of a case: type, path (NULL: main), step, data (NULL: {}). */
typedef struct spec {
    const char *type, *path, *step, *data;
} spec;

#define START                                                                  \
    {                                                                          \
        "execution_started", NULL, NULL, "{\"workflow_name\":\"w\"}"           \
    }
#define END                                                                    \
    {                                                                          \
        NULL, NULL, NULL, NULL                                                 \
    }
#define BRANCH_P "{\"new_paths\":[{\"id\":\"p\"}]}"

static void build(hist *h, const spec *s)
{
    hist_init(h, 1);
    for (; s->type; s++)
        hist_add(h, s->type, s->path, s->step, "%s", s->data ? s->data : "{}");
}

/* What tolerant mode reported. */
typedef struct seen {
    size_t n;
    uint64_t seq[32];
    const char *rule[32];
    int stop_at; /* return non-zero at this violation (1-based), 0: never */
} seen;

static int collect(void *arg, const evs_error_info *v)
{
    seen *s = arg;

    cr_assert_lt(s->n, 32);
    cr_assert_eq(v->code, EVS_EHISTORY);
    cr_assert_not_null(v->kind);
    cr_assert_neq(v->msg[0], '\0', "a violation without a message");
    s->seq[s->n] = v->sequence;
    s->rule[s->n] = v->kind;
    s->n++;
    return s->stop_at && (int)s->n == s->stop_at ? 7 : 0;
}

/* Both modes check the same rules: every case runs in the full mode and
 * in the compact one (which drops what has ended as it goes), and must
 * give the same verdict in each. */
static const char *const mode_name[2] = {"full", "compact"};

static evs_replay *tolerant(seen *s, int compact)
{
    evs_replay_opts o;
    evs_replay *r = NULL;

    memset(s, 0, sizeof(*s));
    evs_replay_opts_init(&o);
    o.tolerant = 1;
    o.on_violation = collect;
    o.arg = s;
    o.compact = compact;
    cr_assert_eq(evs_replay_new(&o, &r), 0);
    return r;
}

/*
 * The last event of the history breaks `rule`, in either mode. Strict:
 * the events before it apply, it is refused with the rule and its
 * sequence, and the state JSON is unchanged. Tolerant: the whole history
 * applies and the first violation reported is that one, at that event.
 */
static void expect_mode(hist *h, const char *rule, int cm, seen *out)
{
    const evs_event *last = &h->ev[h->n - 1];
    const char *mode = mode_name[cm];
    evs_replay *r = hist_replayer_mode(cm);
    evs_error_info v;
    seen s;
    char *before, *after;
    int rc;

    memset(&v, 0, sizeof(v));
    rc = hist_apply(r, h, 0, h->n - 1, &v);
    cr_assert_eq(rc, 0,
                 "[%s, %s] the events before the offending one are "
                 "valid, but %llu broke %s: %s",
                 rule, mode, (unsigned long long)v.sequence, v.kind, v.msg);
    before = hist_state(r, NULL);
    memset(&v, 0, sizeof(v));
    rc = evs_replay_apply(r, last, &v);
    cr_assert_eq(rc, EVS_EHISTORY, "[%s, %s] strict apply returned %d (%s)",
                 rule, mode, rc, evs_err_name(rc));
    cr_assert_eq(v.sequence, last->sequence,
                 "[%s, %s] sequence %llu, want %llu", rule, mode,
                 (unsigned long long)v.sequence,
                 (unsigned long long)last->sequence);
    cr_assert_eq(v.code, EVS_EHISTORY, "[%s, %s] code %s", rule, mode,
                 evs_err_name(v.code));
    cr_assert_not_null(v.kind);
    cr_assert_str_eq(v.kind, rule, "[%s] rule \"%s\", want \"%s\" (%s)", mode,
                     v.kind, rule, v.msg);
    cr_assert_neq(v.msg[0], '\0');
    /* One struct for every failure: what is not about a rule is empty. */
    cr_assert_eq(v.offset, UINT64_MAX);
    cr_assert_str_eq(v.step, "");
    {
        evs_span id = last->execution_id;
        if (!id.len)
            id = evs_replay_exec(r)->execution_id;
        cr_assert_eq(strlen(v.execution_id), id.len);
        cr_assert(memcmp(v.execution_id, id.ptr, id.len) == 0);
    }
    after = hist_state(r, NULL);
    cr_assert_str_eq(after, before,
                     "[%s, %s] the refused event changed "
                     "the state",
                     rule, mode);
    free(before);
    free(after);
    evs_replay_free(r);

    /* Tolerant: the hook hears it, the caller's detail is left alone. */
    r = tolerant(&s, cm);
    evs_error_info_clear(&v);
    v.code = 12345;
    cr_assert_eq(hist_apply(r, h, 0, h->n, &v), 0);
    cr_assert_eq(v.code, 12345);
    cr_assert_str_eq(v.msg, "");
    cr_assert_eq(evs_replay_exec(r)->last_seq, last->sequence,
                 "[%s, %s] tolerant mode applies the offending event", rule,
                 mode);
    cr_assert_geq(s.n, 1, "[%s, %s] tolerant mode reported nothing", rule,
                  mode);
    cr_assert_eq(s.seq[0], last->sequence);
    cr_assert_str_eq(s.rule[0], rule, "[%s]", mode);
    for (size_t i = 1; i < s.n; i++)
        cr_assert_eq(s.seq[i], last->sequence);
    evs_replay_free(r);
    *out = s;
}

/*
 * As expect_mode in both modes: the same verdict in each. *out (may be
 * NULL) gets what each mode's tolerant replay reported.
 *
 * Past the first violation the two tolerant reports may differ: an
 * event on a step of an ended path also finds no step in compact mode
 * (it went with the path), where the full mode still has it.
 */
static void expect_both(hist *h, const char *rule, seen out[2])
{
    seen s[2];

    for (int cm = 0; cm < 2; cm++)
        expect_mode(h, rule, cm, &s[cm]);
    if (out) {
        out[0] = s[0];
        out[1] = s[1];
    }
}

static void expect_h(hist *h, const char *rule)
{
    expect_both(h, rule, NULL);
}

static void expect(const spec *sp, const char *rule)
{
    hist h;

    build(&h, sp);
    expect_h(&h, rule);
    hist_free(&h);
}

/* As expect, and the tolerant report is exactly that one violation, in
 * both modes. */
static void expect_only(const spec *sp, const char *rule)
{
    hist h;
    seen s[2];

    build(&h, sp);
    expect_both(&h, rule, s);
    for (int cm = 0; cm < 2; cm++)
        cr_assert_eq(s[cm].n, 1,
                     "[%s, %s] %zu violations reported, want 1 "
                     "(second: %s)",
                     rule, mode_name[cm], s[cm].n,
                     s[cm].n > 1 ? s[cm].rule[1] : "");
    hist_free(&h);
}

/* Applies the whole history strictly, in both modes: no rule broken. */
static void expect_valid(const spec *sp)
{
    evs_error_info v;
    hist h;

    build(&h, sp);
    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = hist_replayer_mode(cm);
        memset(&v, 0, sizeof(v));
        cr_assert_eq(hist_apply(r, &h, 0, h.n, &v), 0,
                     "[%s] sequence %llu broke %s: %s", mode_name[cm],
                     (unsigned long long)v.sequence, v.kind, v.msg);
        cr_assert_eq(evs_replay_exec(r)->last_seq, h.n);
        evs_replay_free(r);
    }
    hist_free(&h);
}

Test(rules, sequence_is_broken_by_a_gap_or_a_repeat)
{
    spec s[] = {START, {"step_started", NULL, "a", NULL}, END};
    hist h;

    build(&h, s);
    h.ev[1].sequence = 3;
    expect_h(&h, "sequence");
    h.ev[1].sequence = 1;
    expect_h(&h, "sequence");
    hist_free(&h);
}

Test(rules, first_event_must_be_execution_started)
{
    spec a[] = {{"variable_set", NULL, NULL, "{\"name\":\"v\"}"}, END};
    spec b[] = {{"step_started", NULL, "a", NULL}, END};
    spec c[] = {{"path_started", NULL, NULL, NULL}, END};

    expect_only(a, "first-event");
    expect(b, "first-event");
    expect(c, "first-event");
}

Test(rules, duplicate_start_is_a_second_execution_started)
{
    spec a[] = {START, START, END};
    spec b[] = {START, {"step_started", NULL, "a", NULL}, START, END};

    expect_only(a, "duplicate-start");
    expect_only(b, "duplicate-start");
}

Test(rules, after_terminal_is_any_event_after_the_end)
{
    spec a[] = {START,
                {"execution_completed", NULL, NULL, NULL},
                {"step_started", NULL, "a", NULL},
                END};
    spec b[] = {START,
                {"execution_failed", NULL, NULL, "{\"error\":1}"},
                {"execution_completed", NULL, NULL, NULL},
                END};
    spec c[] = {START,
                {"execution_terminated", NULL, NULL, NULL},
                {"variable_set", NULL, NULL, "{\"name\":\"v\"}"},
                END};
    spec d[] = {
        START,
        {"execution_continue_as_new", NULL, NULL, "{\"successor\":\"y\"}"},
        {"something_new", NULL, NULL, NULL},
        END};

    expect_only(a, "after-terminal");
    expect(b, "after-terminal");
    expect_only(c, "after-terminal");
    expect_only(d, "after-terminal");
}

Test(rules, data_is_broken_by_a_non_object_or_a_missing_member)
{
    spec cases[][4] = {
        {START, {"step_started", NULL, "a", "[1]"}, END},
        {START, {"step_started", NULL, "a", "\"text\""}, END},
        {START, {"step_started", NULL, NULL, NULL}, END},
        {START, {"path_branched", NULL, NULL, NULL}, END},
        {START, {"path_branched", NULL, NULL, "{\"new_paths\":5}"}, END},
        {START,
         {"path_branched", NULL, NULL,
          "{\"new_paths\":[{\"current_step\":\"x\"}]}"},
         END},
        {START, {"variable_set", NULL, NULL, "{\"value\":1}"}, END},
        {START, {"signal_consumed", NULL, NULL, NULL}, END},
        {START, {"timer_started", NULL, "t", "{\"fire_at\":null}"}, END},
        {START, {"timer_fired", NULL, NULL, NULL}, END},
        {START, {"timer_cancelled", NULL, NULL, NULL}, END},
        {START, {"version_decision", NULL, NULL, "{\"change_id\":\"c\"}"}, END},
        {START, {"version_decision", NULL, NULL, "{\"version\":1}"}, END},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_only(cases[i], "data");
}

Test(rules, unknown_path_is_an_event_on_a_path_that_does_not_exist)
{
    spec cases[][4] = {
        {START, {"step_started", "ghost", "a", NULL}, END},
        {START, {"step_completed", "ghost", "a", NULL}, END},
        {START, {"step_failed", "ghost", "a", NULL}, END},
        {START, {"retry_scheduled", "ghost", "a", NULL}, END},
        {START, {"step_skipped", "ghost", "a", NULL}, END},
        {START, {"path_completed", "ghost", NULL, NULL}, END},
        {START, {"path_failed", "ghost", NULL, NULL}, END},
        {START,
         {"path_branched", "ghost", NULL, "{\"new_paths\":[{\"id\":\"p\"}]}"},
         END},
        {START, {"wait_started", "ghost", "w", NULL}, END},
        {START, {"wait_ended", "ghost", "w", NULL}, END},
        {START, {"timer_started", "ghost", "t", "{\"timer_id\":\"t\"}"}, END},
    };
    spec root[] = {{"execution_started", "root", NULL, NULL},
                   {"step_started", NULL, "a", NULL},
                   END};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect(cases[i], "unknown-path");
    /* The root path is the one execution_started names, not "main". */
    expect(root, "unknown-path");
}

Test(rules, path_ended_is_an_event_on_a_completed_or_failed_path)
{
    spec a[] = {START,
                {"path_completed", NULL, NULL, NULL},
                {"step_started", NULL, "a", NULL},
                END};
    spec b[] = {START,
                {"path_failed", NULL, NULL, "{\"error\":\"x\"}"},
                {"path_completed", NULL, NULL, NULL},
                END};
    spec c[] = {START,
                {"path_branched", NULL, NULL, BRANCH_P},
                {"path_completed", "p", NULL, NULL},
                {"path_started", "p", NULL, NULL},
                END};
    spec d[] = {START,
                {"step_started", NULL, "w", NULL},
                {"path_completed", NULL, NULL, NULL},
                {"step_completed", NULL, "w", NULL},
                END};
    spec e[] = {START,
                {"path_completed", NULL, NULL, NULL},
                {"timer_started", NULL, "t", "{\"timer_id\":\"t\"}"},
                END};
    spec f[] = {START,
                {"path_completed", NULL, NULL, NULL},
                {"wait_started", NULL, "w", NULL},
                END};

    expect_only(a, "path-ended");
    expect_only(b, "path-ended");
    expect_only(c, "path-ended");
    expect(d, "path-ended");
    expect_only(e, "path-ended");
    expect_only(f, "path-ended");
}

Test(rules, duplicate_path_is_a_branch_to_an_existing_path)
{
    spec a[] = {
        START,
        {"path_branched", NULL, NULL, "{\"new_paths\":[{\"id\":\"main\"}]}"},
        END};
    spec b[] = {START,
                {"path_branched", NULL, NULL, BRANCH_P},
                {"path_branched", NULL, NULL,
                 "{\"new_paths\":[{\"id\":\"q\"},{\"id\":\"p\"}]}"},
                END};
    /* Twice in one branch: the second would create a path that exists. */
    spec c[] = {START,
                {"path_branched", NULL, NULL,
                 "{\"new_paths\":[{\"id\":\"q\"},{\"id\":\"q\"}]}"},
                END};

    expect_only(a, "duplicate-path");
    expect_only(b, "duplicate-path");
    expect_only(c, "duplicate-path");
}

Test(rules, branch_parent_is_a_path_started_under_a_missing_parent)
{
    spec a[] = {
        START, {"path_started", "p", NULL, "{\"parent\":\"ghost\"}"}, END};

    expect_only(a, "branch-parent");
}

Test(rules, step_restarted_is_a_start_after_completion_or_skip)
{
    spec a[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_completed", NULL, "a", NULL},
                {"step_started", NULL, "a", NULL},
                END};
    spec b[] = {START,
                {"step_skipped", NULL, "a", NULL},
                {"step_started", NULL, "a", NULL},
                END};
    spec c[] = {START,
                {"step_started", NULL, "e", "{\"iteration\":2}"},
                {"step_completed", NULL, "e", "{\"iteration\":2}"},
                {"step_started", NULL, "e", "{\"iteration\":2}"},
                END};

    expect_only(a, "step-restarted");
    expect_only(b, "step-restarted");
    expect_only(c, "step-restarted");
}

Test(rules, step_not_started_is_an_outcome_of_a_step_not_running)
{
    spec a[] = {START, {"step_completed", NULL, "a", NULL}, END};
    spec b[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_completed", NULL, "a", NULL},
                {"step_failed", NULL, "a", NULL},
                END};
    spec c[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_failed", NULL, "a", NULL},
                {"step_completed", NULL, "a", NULL},
                END};
    spec d[] = {START,
                {"step_started", NULL, "e", "{\"iteration\":0}"},
                {"step_completed", NULL, "e", "{\"iteration\":1}"},
                END};
    spec e[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_started", "main", "b", NULL},
                {"step_failed", NULL, "a", NULL},
                {"retry_scheduled", NULL, "a", NULL},
                {"step_failed", NULL, "a", NULL},
                END};

    expect_only(a, "step-not-started");
    expect_only(b, "step-not-started");
    expect_only(c, "step-not-started");
    expect_only(d, "step-not-started");
    expect_only(e, "step-not-started");
}

Test(rules, retry_not_failed_is_a_retry_of_a_step_that_did_not_fail)
{
    spec a[] = {START,
                {"step_started", NULL, "a", NULL},
                {"retry_scheduled", NULL, "a", NULL},
                END};
    spec b[] = {START, {"retry_scheduled", NULL, "a", NULL}, END};
    spec c[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_completed", NULL, "a", NULL},
                {"retry_scheduled", NULL, "a", NULL},
                END};
    spec d[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_failed", NULL, "a", NULL},
                {"retry_scheduled", NULL, "a", NULL},
                {"retry_scheduled", NULL, "a", NULL},
                END};

    expect_only(a, "retry-not-failed");
    expect_only(b, "retry-not-failed");
    expect_only(c, "retry-not-failed");
    expect_only(d, "retry-not-failed");
}

Test(rules, signal_not_received_is_consuming_a_missing_or_used_signal)
{
    spec a[] = {
        START, {"signal_consumed", NULL, NULL, "{\"signal_seq\":9}"}, END};
    spec b[] = {START,
                {"step_started", NULL, "a", NULL},
                {"signal_consumed", NULL, NULL, "{\"signal_seq\":2}"},
                END};
    spec c[] = {START,
                {"signal_received", NULL, NULL, "{\"signal\":\"s\"}"},
                {"signal_consumed", NULL, NULL, "{\"signal_seq\":2}"},
                {"signal_consumed", NULL, NULL, "{\"signal_seq\":2}"},
                END};
    spec d[] = {START,
                {"wait_started", NULL, "w", NULL},
                {"wait_ended", NULL, "w", "{\"signal_seq\":99}"},
                END};
    spec e[] = {START,
                {"signal_received", NULL, NULL, "{\"signal\":\"s\"}"},
                {"signal_consumed", NULL, NULL, "{\"signal_seq\":2}"},
                {"wait_started", NULL, "w", NULL},
                {"wait_ended", NULL, "w", "{\"signal_seq\":2}"},
                END};

    expect_only(a, "signal-not-received");
    expect_only(b, "signal-not-received");
    expect_only(c, "signal-not-received");
    expect_only(d, "signal-not-received");
    expect_only(e, "signal-not-received");
}

Test(rules, wait_pending_is_a_second_wait_on_a_waiting_path)
{
    spec a[] = {START,
                {"wait_started", NULL, "w", NULL},
                {"wait_started", NULL, "w2", NULL},
                END};

    expect_only(a, "wait-pending");
}

Test(rules, wait_not_started_is_ending_a_wait_that_is_not_there)
{
    spec a[] = {START, {"wait_ended", NULL, "w", NULL}, END};
    spec b[] = {START,
                {"wait_started", NULL, "w", NULL},
                {"wait_ended", NULL, "w", "{\"timed_out\":true}"},
                {"wait_ended", NULL, "w", NULL},
                END};
    spec c[] = {START,
                {"path_branched", NULL, NULL, BRANCH_P},
                {"wait_started", "p", "w", NULL},
                {"wait_ended", NULL, "w", NULL},
                END};

    expect_only(a, "wait-not-started");
    expect_only(b, "wait-not-started");
    expect_only(c, "wait-not-started");
}

#define TSTART(id)                                                             \
    {                                                                          \
        "timer_started", NULL, "t", "{\"timer_id\":\"" id "\"}"                \
    }
#define TFIRED(id)                                                             \
    {                                                                          \
        "timer_fired", NULL, "t", "{\"timer_id\":\"" id "\"}"                  \
    }
#define TCANCEL(id)                                                            \
    {                                                                          \
        "timer_cancelled", NULL, "t", "{\"timer_id\":\"" id "\"}"              \
    }

/* Only a pending timer's id is taken: one that fired or was cancelled
 * leaves its id free for a new timer. */
Test(rules, duplicate_timer_is_a_second_start_of_a_pending_timer_id)
{
    /* Started twice while pending. */
    spec a[] = {START, TSTART("t1"), TSTART("t1"), END};
    /* Pending again after a reuse, started once more. */
    spec b[] = {START,        TSTART("t1"), TFIRED("t1"),
                TSTART("t1"), TSTART("t1"), END};
    spec c[] = {START,        TSTART("t1"), TCANCEL("t1"),
                TSTART("t1"), TSTART("t1"), END};
    /* Another timer pending under the id, on another path. */
    spec d[] = {START,
                {"path_branched", NULL, NULL, BRANCH_P},
                {"timer_started", "p", "t", "{\"timer_id\":\"t1\"}"},
                TSTART("t1"),
                END};
    /* Reused after it fired, after it was cancelled, several times; the
     * reused timer fires and is cancelled like any other. */
    spec ok_fired[] = {START,        TSTART("t1"), TFIRED("t1"),
                       TSTART("t1"), TFIRED("t1"), END};
    spec ok_cancelled[] = {START,        TSTART("t1"),  TCANCEL("t1"),
                           TSTART("t1"), TCANCEL("t1"), TSTART("t1"),
                           TFIRED("t1"), TSTART("t1"),  END};
    /* A reused timer ends once: a second end is of no pending timer. */
    spec e[] = {START,        TSTART("t1"), TFIRED("t1"), TSTART("t1"),
                TFIRED("t1"), TFIRED("t1"), END};

    expect_only(a, "duplicate-timer");
    expect_only(b, "duplicate-timer");
    expect_only(c, "duplicate-timer");
    expect_only(d, "duplicate-timer");
    expect_valid(ok_fired);
    expect_valid(ok_cancelled);
    expect_only(e, "timer-unknown");

    /* The full state keeps each timer, the compact one only the pending
     * one; the path is held by the pending one alone. */
    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = hist_replayer_mode(cm);
        const evs_timer_state *t;
        hist h;

        build(&h, ok_cancelled);
        cr_assert_eq(hist_apply(r, &h, 0, h.n, NULL), 0);
        cr_assert_eq(evs_replay_timer_count(r), cm ? 1 : 4, "[%s] %zu",
                     mode_name[cm], evs_replay_timer_count(r));
        t = evs_replay_timer(r, evs_replay_timer_count(r) - 1);
        cr_assert_eq(t->started_seq, h.n);
        cr_assert_eq(t->fired_seq, 0);
        cr_assert_not(t->cancelled);
        if (!cm) {
            cr_assert(evs_replay_timer(r, 0)->cancelled);
            cr_assert(evs_replay_timer(r, 1)->cancelled);
            cr_assert_eq(evs_replay_timer(r, 2)->fired_seq, 7);
        }
        cr_assert_eq(evs_replay_find_path(r, evs_span_cstr("main"))->pending,
                     1);
        cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_WAITING);
        evs_replay_free(r);
        hist_free(&h);
    }
}

Test(rules, timer_unknown_is_firing_or_cancelling_a_timer_not_pending)
{
    spec a[] = {
        START, {"timer_fired", NULL, NULL, "{\"timer_id\":\"t9\"}"}, END};
    spec b[] = {START,
                {"timer_started", NULL, "t", "{\"timer_id\":\"t1\"}"},
                {"timer_fired", NULL, "t", "{\"timer_id\":\"t1\"}"},
                {"timer_fired", NULL, "t", "{\"timer_id\":\"t1\"}"},
                END};
    spec c[] = {START,
                {"timer_started", NULL, "t", "{\"timer_id\":\"t1\"}"},
                {"timer_fired", NULL, "t", "{\"timer_id\":\"t1\"}"},
                {"timer_cancelled", NULL, "t", "{\"timer_id\":\"t1\"}"},
                END};
    spec d[] = {START,
                {"timer_started", NULL, "t", "{\"timer_id\":\"t1\"}"},
                {"timer_cancelled", NULL, "t", "{\"timer_id\":\"t1\"}"},
                {"timer_fired", NULL, "t", "{\"timer_id\":\"t1\"}"},
                END};

    expect_only(a, "timer-unknown");
    expect_only(b, "timer-unknown");
    expect_only(c, "timer-unknown");
    expect_only(d, "timer-unknown");
}

Test(rules, version_duplicate_is_a_second_decision_for_a_change)
{
    spec a[] = {
        START,
        {"version_decision", NULL, NULL, "{\"change_id\":\"c\",\"version\":1}"},
        {"version_decision", NULL, NULL, "{\"change_id\":\"c\",\"version\":1}"},
        END};

    expect_only(a, "version-duplicate");
}

Test(rules, version_range_is_a_version_outside_min_and_max)
{
    spec a[] = {START,
                {"version_decision", NULL, NULL,
                 "{\"change_id\":\"c\",\"version\":5,\"min\":1,\"max\":3}"},
                END};
    spec b[] = {START,
                {"version_decision", NULL, NULL,
                 "{\"change_id\":\"c\",\"version\":0,\"min\":1}"},
                END};
    spec c[] = {START,
                {"version_decision", NULL, NULL,
                 "{\"change_id\":\"c\",\"version\":-1,\"max\":3,\"min\":0}"},
                END};

    expect_only(a, "version-range");
    expect_only(b, "version-range");
    expect_only(c, "version-range");
}

Test(rules, already_paused_is_a_pause_while_paused)
{
    spec a[] = {START,
                {"execution_paused", NULL, NULL, NULL},
                {"execution_paused", NULL, NULL, NULL},
                END};

    expect_only(a, "already-paused");
}

Test(rules, not_paused_is_a_resume_while_not_paused)
{
    spec a[] = {START, {"execution_resumed", NULL, NULL, NULL}, END};
    spec b[] = {START,
                {"execution_paused", NULL, NULL, NULL},
                {"execution_resumed", NULL, NULL, NULL},
                {"execution_resumed", NULL, NULL, NULL},
                END};

    expect_only(a, "not-paused");
    expect_only(b, "not-paused");
}

Test(rules, data_holds_a_by_that_is_not_a_string)
{
    spec a[] = {START,
                {"execution_paused", NULL, NULL, "{\"by\":7}"},
                END};
    spec b[] = {START,
                {"execution_paused", NULL, NULL, "{\"by\":\"ann\"}"},
                {"execution_resumed", NULL, NULL, "{\"by\":[\"x\"]}"},
                END};
    spec c[] = {START,
                {"execution_terminated", NULL, NULL,
                 "{\"reason\":\"r\",\"by\":{}}"},
                END};

    expect_only(a, "data");
    expect_only(b, "data");
    expect_only(c, "data");
}

/* A test run once in each mode, `cm` (0: full, 1: compact). */
#define IN_BOTH_MODES(name)                                                    \
    static void name##_in(int cm);                                             \
    Test(rules, name)                                                          \
    {                                                                          \
        for (int cm = 0; cm < 2; cm++) {                                       \
            cr_log_info("%s mode", mode_name[cm]);                             \
            name##_in(cm);                                                     \
        }                                                                      \
    }                                                                          \
    static void name##_in(int cm)

/* A history with one violation of several rules, in tolerant mode. */
static const spec mixed[] = {
    START,                                               /* 1 */
    {"step_started", NULL, "a", NULL},                   /* 2 */
    {"step_completed", NULL, "b", NULL},                 /* 3 */
    {"execution_resumed", NULL, NULL, NULL},             /* 4 */
    {"timer_fired", NULL, NULL, "{\"timer_id\":\"t\"}"}, /* 5 */
    {"path_branched", NULL, NULL,
     "{\"new_paths\":[{\"id\":\"main\"},{\"id\":\"p1\"}]}"}, /* 6 */
    {"step_started", "p1", "s", NULL},                       /* 7 */
    {"version_decision", NULL, NULL,
     "{\"change_id\":\"c\",\"version\":9,\"min\":1,\"max\":3}"},  /* 8 */
    {"step_started", "ghost", "x", NULL},                         /* 9 */
    {"variable_set", NULL, NULL, "{\"name\":\"v\",\"value\":3}"}, /* 12 */
    {"execution_completed", NULL, NULL, "{\"outputs\":1}"},       /* 13 */
    {"step_started", NULL, "a", NULL},                            /* 14 */
    END,
};

IN_BOTH_MODES(tolerant_mode_applies_everything_and_reports_each_violation)
{
    static const uint64_t want_seq[] = {3, 4, 5, 6, 8, 9, 12, 14};
    static const char *const want_rule[] = {
        "step-not-started", "not-paused",   "timer-unknown", "duplicate-path",
        "version-range",    "unknown-path", "sequence",      "after-terminal",
    };
    const evs_exec_state *x;
    const evs_step_state *st;
    evs_replay *r;
    hist h;
    seen s;

    build(&h, mixed);
    for (size_t i = 9; i < h.n; i++)
        h.ev[i].sequence += 2;
    r = tolerant(&s, cm);
    cr_assert_eq(hist_apply(r, &h, 0, h.n, NULL), 0);
    cr_assert_eq(s.n, 8, "%zu violations", s.n);
    for (size_t i = 0; i < s.n; i++) {
        cr_expect_eq(s.seq[i], want_seq[i], "violation %zu at %llu", i,
                     (unsigned long long)s.seq[i]);
        cr_expect_str_eq(s.rule[i], want_rule[i], "violation %zu", i);
    }
    /* Applied as far as it makes sense. */
    x = evs_replay_exec(r);
    cr_assert_eq(x->last_seq, 14);
    cr_assert_eq(x->status, EVS_STATUS_COMPLETED);
    cr_assert_not_null(evs_replay_find_path(r, evs_span_cstr("p1")));
    st = evs_replay_find_step(r, evs_span_cstr("p1"), evs_span_cstr("s"), -1);
    cr_assert_not_null(st);
    cr_assert_eq(st->status, EVS_STEP_RUNNING);
    cr_assert_not_null(evs_replay_find_var(r, evs_span_cstr("v")));
    cr_assert_null(evs_replay_find_path(r, evs_span_cstr("ghost")));
    evs_replay_free(r);

    /* The same history in strict mode stops at the first one. */
    {
        evs_error_info v;
        r = hist_replayer_mode(cm);
        cr_assert_eq(hist_apply(r, &h, 0, h.n, &v), EVS_EHISTORY);
        cr_assert_eq(v.sequence, 3);
        cr_assert_str_eq(v.kind, "step-not-started");
        cr_assert_eq(evs_replay_exec(r)->last_seq, 2);
        evs_replay_free(r);
    }
    hist_free(&h);
}

IN_BOTH_MODES(tolerant_callback_that_returns_non_zero_stops_the_apply)
{
    evs_replay *r;
    hist h;
    seen s;
    char *before, *after;

    build(&h, mixed);
    r = tolerant(&s, cm);
    s.stop_at = 2; /* the resume at 4 */
    cr_assert_eq(hist_apply(r, &h, 0, 3, NULL), 0);
    before = hist_state(r, NULL);
    cr_assert_eq(evs_replay_apply(r, &h.ev[3], NULL), 7);
    after = hist_state(r, NULL);
    cr_assert_str_eq(after, before);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 3);
    cr_assert_eq(s.n, 2);
    free(before);
    free(after);
    evs_replay_free(r);

    /* Without a callback, tolerant mode just goes on. */
    {
        evs_replay_opts o;
        evs_replay_opts_init(&o);
        o.tolerant = 1;
        o.compact = cm;
        cr_assert_eq(evs_replay_new(&o, &r), 0);
        cr_assert_eq(hist_apply(r, &h, 0, 9, NULL), 0);
        cr_assert_eq(evs_replay_exec(r)->last_seq, 9);
        evs_replay_free(r);
    }
    hist_free(&h);
}

IN_BOTH_MODES(a_valid_history_of_every_event_type_breaks_no_rule)
{
    static const spec all[] = {
        {"execution_started", NULL, NULL,
         "{\"workflow_name\":\"w\",\"inputs\":{\"a\":1},"
         "\"definition\":{\"steps\":[]},\"definition_hash\":\"dh\","
         "\"inputs_hash\":\"ih\",\"lineage\":{\"continued_from\":\"old\"}}"},
        {"path_started", NULL, NULL, "{\"current_step\":\"a\"}"},
        {"step_started", NULL, "a",
         "{\"attempt\":1,\"input\":{},\"step_hash\":\"h\","
         "\"kind\":\"action\"}"},
        {"step_failed", NULL, "a", "{\"error\":{\"type\":\"E\"}}"},
        {"retry_scheduled", NULL, "a", "{\"delay_ms\":10,\"attempt\":2}"},
        {"step_started", NULL, "a", "{\"attempt\":2}"},
        {"step_completed", NULL, "a",
         "{\"output\":1,\"stored_variable\":\"va\"}"},
        {"step_started", NULL, "e", "{\"iteration\":0,\"count\":2}"},
        {"step_completed", NULL, "e", "{\"iteration\":0,\"output\":0}"},
        {"step_skipped", NULL, "e", "{\"iteration\":1,\"output\":null}"},
        {"path_branched", NULL, NULL,
         "{\"new_paths\":[{\"id\":\"p1\",\"current_step\":\"s\"}]}"},
        {"path_started", "p1", NULL, "{\"parent\":\"main\"}"},
        {"variable_set", NULL, NULL, "{\"name\":\"x\",\"value\":[1]}"},
        {"signal_received", NULL, NULL, "{\"signal\":\"go\",\"payload\":{}}"},
        {"signal_consumed", NULL, NULL, "{\"signal_seq\":14}"},
        {"signal_received", NULL, NULL, "{\"name\":\"go2\"}"},
        {"wait_started", "p1", "s", "{\"signal\":\"go2\"}"},
        {"wait_ended", "p1", "s", "{\"signal_seq\":16}"},
        {"timer_started", "p1", "s",
         "{\"timer_id\":\"t1\",\"fire_at\":\"2026-11-22T10:20:00.000000Z\"}"},
        {"timer_fired", "p1", "s", "{\"timer_id\":\"t1\"}"},
        {"timer_started", NULL, "a", "{\"timer_id\":\"t2\"}"},
        {"timer_cancelled", NULL, "a", "{\"timer_id\":\"t2\"}"},
        {"version_decision", NULL, NULL,
         "{\"change_id\":\"c\",\"version\":1,\"min\":0,\"max\":2}"},
        {"execution_paused", NULL, NULL, "{\"reason\":\"r\"}"},
        {"execution_resumed", NULL, NULL, NULL},
        {"path_failed", "p1", NULL, "{\"error\":\"x\"}"},
        {"path_completed", NULL, NULL, NULL},
        {"some_future_type", "anywhere", "x", "[\"not checked\"]"},
        {"execution_completed", NULL, NULL, "{\"outputs\":{}}"},
        END,
    };
    static const char *const ends[] = {"execution_failed",
                                       "execution_terminated",
                                       "execution_continue_as_new"};
    evs_error_info v;
    evs_replay *r = hist_replayer_mode(cm);
    seen s;
    hist h;
    int rc;

    build(&h, all);
    memset(&v, 0, sizeof(v));
    rc = hist_apply(r, &h, 0, h.n, &v);
    cr_assert_eq(rc, 0, "sequence %llu broke %s: %s",
                 (unsigned long long)v.sequence, v.kind, v.msg);
    cr_assert_eq(evs_replay_exec(r)->last_seq, h.n);
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_COMPLETED);
    evs_replay_free(r);
    r = tolerant(&s, cm);
    cr_assert_eq(hist_apply(r, &h, 0, h.n, NULL), 0);
    cr_assert_eq(s.n, 0, "tolerant mode reported %s at %llu",
                 s.n ? s.rule[0] : "", (unsigned long long)s.seq[0]);
    evs_replay_free(r);
    hist_free(&h);

    for (size_t i = 0; i < 3; i++) {
        spec e[] = {START, {ends[i], NULL, NULL, NULL}, END};
        build(&h, e);
        r = hist_replayer_mode(cm);
        cr_assert_eq(hist_apply(r, &h, 0, h.n, &v), 0, "%s", ends[i]);
        cr_assert_eq(evs_replay_exec(r)->last_seq, 2);
        evs_replay_free(r);
        hist_free(&h);
    }
}

IN_BOTH_MODES(a_refused_event_can_be_followed_by_the_right_one)
{
    spec a[] = {START,
                {"step_completed", NULL, "a", NULL},
                {"step_started", NULL, "a", NULL},
                END};
    evs_replay *r = hist_replayer_mode(cm);
    evs_error_info v;
    hist h;

    build(&h, a);
    cr_assert_eq(hist_apply(r, &h, 0, 1, &v), 0);
    cr_assert_eq(evs_replay_apply(r, &h.ev[1], &v), EVS_EHISTORY);
    /* The refused event's sequence is free again. */
    h.ev[2].sequence = 2;
    cr_assert_eq(evs_replay_apply(r, &h.ev[2], &v), 0);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 2);
    cr_assert_eq(evs_replay_step_count(r), 1);
    evs_replay_free(r);
    hist_free(&h);
}

IN_BOTH_MODES(tolerant_mode_takes_a_late_first_start_as_the_start)
{
    static const spec late[] = {
        {"step_started", NULL, "a", NULL}, /* 1: first-event, unknown-path */
        START,                             /* 2: the start, not a second */
        {"step_started", NULL, "a", NULL}, /* 3 */
        START,                             /* 4: duplicate-start */
        END,
    };
    evs_replay *r;
    hist h;
    seen s;

    build(&h, late);
    r = tolerant(&s, cm);
    cr_assert_eq(hist_apply(r, &h, 0, h.n, NULL), 0);
    cr_assert_eq(s.n, 3, "%zu violations", s.n);
    cr_assert_eq(s.seq[0], 1);
    cr_assert_str_eq(s.rule[0], "first-event");
    cr_assert_eq(s.seq[1], 1);
    cr_assert_str_eq(s.rule[1], "unknown-path");
    cr_assert_eq(s.seq[2], 4);
    cr_assert_str_eq(s.rule[2], "duplicate-start");
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_RUNNING);
    cr_assert_not_null(evs_replay_find_path(r, evs_span_cstr("main")));
    cr_assert_eq(evs_replay_exec(r)->started_at_us, h.ev[1].timestamp_us);
    evs_replay_free(r);
    hist_free(&h);
}

/* A path is waiting while anything holds it: a wait, a timer, a
 * scheduled retry. Ending one of two does not make it active. */
IN_BOTH_MODES(a_path_waits_until_everything_holding_it_ends)
{
    const evs_path_state *p;
    evs_replay *r = hist_replayer_mode(cm);
    hist h;

    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    hist_add(&h, "wait_started", NULL, "ok", "{\"signal\":\"go\"}");
    hist_add(&h, "timer_started", NULL, "ok", "{\"timer_id\":\"t\"}");
    hist_add(&h, "signal_received", NULL, NULL, "{\"signal\":\"go\"}");
    hist_add(&h, "wait_ended", NULL, "ok", "{\"signal_seq\":4}");
    hist_add(&h, "timer_cancelled", NULL, "ok", "{\"timer_id\":\"t\"}");
    hist_add(&h, "step_started", NULL, "s", "{}");
    hist_add(&h, "step_failed", NULL, "s", "{\"error\":{}}");
    hist_add(&h, "retry_scheduled", NULL, "s", "{\"delay_ms\":10}");
    hist_add(&h, "step_started", NULL, "s", "{}");

    cr_assert_eq(hist_apply(r, &h, 0, 3, NULL), 0);
    p = evs_replay_find_path(r, evs_span_cstr("main"));
    cr_assert_eq(p->status, EVS_PATH_WAITING);
    cr_assert_eq(p->pending, 2);
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_WAITING);
    cr_assert_eq(hist_apply(r, &h, 3, 5, NULL), 0);
    p = evs_replay_find_path(r, evs_span_cstr("main"));
    cr_assert_eq(p->status, EVS_PATH_WAITING, "the timer still holds it");
    cr_assert_eq(p->pending, 1);
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_WAITING);
    cr_assert_eq(hist_apply(r, &h, 5, 6, NULL), 0);
    p = evs_replay_find_path(r, evs_span_cstr("main"));
    cr_assert_eq(p->status, EVS_PATH_ACTIVE);
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_RUNNING);
    cr_assert_eq(hist_apply(r, &h, 6, 9, NULL), 0);
    p = evs_replay_find_path(r, evs_span_cstr("main"));
    cr_assert_eq(p->status, EVS_PATH_WAITING, "a scheduled retry holds it");
    cr_assert_eq(hist_apply(r, &h, 9, 10, NULL), 0);
    p = evs_replay_find_path(r, evs_span_cstr("main"));
    cr_assert_eq(p->status, EVS_PATH_ACTIVE);
    cr_assert_eq(p->pending, 0);
    evs_replay_free(r);
    hist_free(&h);
}

#define EACH_ITER(i, n)                                                        \
    {"step_started", NULL, "e", "{\"iteration\":" #i ",\"count\":" #n "}"},    \
    {                                                                          \
        "step_completed", NULL, "e",                                           \
            "{\"iteration\":" #i ",\"output\":" #i "}"                         \
    }

Test(rules, each_not_done_is_a_completion_before_every_iteration)
{
    /* One of two iterations done; a count that is not the iterations
     * done; items claimed for an each that never started. */
    spec a[] = {START,
                EACH_ITER(0, 2),
                {"each_completed", NULL, "e", "{\"output\":[0],\"count\":2}"},
                END};
    spec b[] = {START,
                EACH_ITER(0, 2),
                EACH_ITER(1, 2),
                {"each_completed", NULL, "e", "{\"output\":[0,1],\"count\":3}"},
                END};
    spec c[] = {START,
                {"each_completed", NULL, "e", "{\"output\":[1],\"count\":1}"},
                END};
    spec ok[] = {
        START,
        EACH_ITER(0, 2),
        EACH_ITER(1, 2),
        {"each_completed", NULL, "e", "{\"output\":[0,1],\"count\":2}"},
        {"each_completed", NULL, "none", "{\"output\":[],\"count\":0}"},
        END};

    expect_only(a, "each-not-done");
    expect_only(b, "each-not-done");
    expect_only(c, "each-not-done");
    expect_valid(ok);
}

Test(rules, each_completed_twice_and_without_a_count)
{
    spec a[] = {START,
                {"each_completed", NULL, "e", "{\"output\":[],\"count\":0}"},
                {"each_completed", NULL, "e", "{\"output\":[],\"count\":0}"},
                END};
    spec b[] = {START, {"each_completed", NULL, "e", "{\"output\":[]}"}, END};
    spec c[] = {START, {"each_completed", NULL, NULL, "{\"count\":0}"}, END};
    spec d[] = {START,
                {"path_completed", NULL, NULL, NULL},
                {"each_completed", NULL, "e", "{\"count\":0}"},
                END};

    expect_only(a, "each-completed-twice");
    expect_only(b, "data");
    expect_only(c, "data");
    expect_only(d, "path-ended");
}

/* An each's output is the array each_completed brings: its iterations
 * set neither the path's last output nor the name's, and the completion
 * sets both, the variable it names, and the path's current step. */
Test(rules, each_completed_gives_the_step_its_output)
{
    spec s[] = {START,
                {"step_started", NULL, "before", NULL},
                {"step_completed", NULL, "before", "{\"output\":\"b\"}"},
                EACH_ITER(0, 2),
                EACH_ITER(1, 2),
                {"each_completed", NULL, "e",
                 "{\"output\":[0,1],\"count\":2,\"stored_variable\":\"v\"}"},
                END};

    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = hist_replayer_mode(cm);
        const evs_path_state *p;
        const evs_each_state *e;
        hist h;

        build(&h, s);
        cr_assert_eq(hist_apply(r, &h, 0, h.n - 1, NULL), 0);
        p = evs_replay_find_path(r, evs_span_cstr("main"));
        assert_span(p->last_output, "\"b\"");
        cr_assert_eq(p->last_output_seq, 3);
        cr_assert_eq(
            evs_replay_find_stepname(r, evs_span_cstr("e"))->output_seq, 0);
        cr_assert_eq(hist_apply(r, &h, h.n - 1, h.n, NULL), 0);
        p = evs_replay_find_path(r, evs_span_cstr("main"));
        assert_span(p->last_output, "[0,1]");
        cr_assert_eq(p->last_output_seq, h.n);
        assert_span(p->current_step, "e");
        assert_span(evs_replay_find_stepname(r, evs_span_cstr("e"))->output,
                    "[0,1]");
        assert_span(evs_replay_find_var(r, evs_span_cstr("v"))->value, "[0,1]");
        e = evs_replay_find_each(r, evs_span_cstr("main"), evs_span_cstr("e"));
        cr_assert_not_null(e);
        assert_span(e->output, "[0,1]");
        cr_assert_eq(e->ended_seq, h.n);
        cr_assert_eq(e->done, 2);
        evs_replay_free(r);
        hist_free(&h);
    }
}

/* A cancelled path has ended: nothing more happens on it, and what held
 * it (a running step, a retry, a timer, a wait) ended with it. */
Test(rules, a_cancelled_path_has_ended_with_all_it_held)
{
    spec after[] = {START,
                    {"path_branched", NULL, NULL, BRANCH_P},
                    {"path_cancelled", "p", NULL, "{\"error\":\"x\"}"},
                    {"step_started", "p", "a", NULL},
                    END};
    spec twice[] = {START,
                    {"path_branched", NULL, NULL, BRANCH_P},
                    {"path_cancelled", "p", NULL, NULL},
                    {"path_cancelled", "p", NULL, NULL},
                    END};
    spec late[] = {START,
                   {"path_branched", NULL, NULL, BRANCH_P},
                   {"step_started", "p", "a", NULL},
                   {"path_cancelled", "p", NULL, NULL},
                   {"step_completed", "p", "a", NULL},
                   END};
    spec fire[] = {START,
                   {"path_branched", NULL, NULL, BRANCH_P},
                   {"timer_started", "p", "t", "{\"timer_id\":\"t\"}"},
                   {"path_cancelled", "p", NULL, NULL},
                   {"timer_fired", "p", "t", "{\"timer_id\":\"t\"}"},
                   END};
    spec held[] = {
        START,
        {"path_branched", NULL, NULL, BRANCH_P},
        {"path_branched", NULL, NULL, "{\"new_paths\":[{\"id\":\"q\"}]}"},
        {"step_started", "p", "a", NULL},
        {"step_started", "q", "r", NULL},
        {"step_failed", "q", "r", "{\"error\":{}}"},
        {"retry_scheduled", "q", "r", "{\"delay_ms\":9}"},
        {"timer_started", "p", "t", "{\"timer_id\":\"t\"}"},
        {"wait_started", "q", "w", NULL},
        {"path_cancelled", "p", NULL, "{\"error\":{\"type\":\"cancelled\"}}"},
        {"path_cancelled", "q", NULL, NULL},
        {"timer_started", NULL, "t", "{\"timer_id\":\"t\"}"},
        END};

    expect_only(after, "path-ended");
    expect_only(twice, "path-ended");
    expect(late, "path-ended");
    expect_only(fire, "timer-unknown"); /* cancelled with its path */
    expect_valid(held);
    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = hist_replayer_mode(cm);
        const evs_path_state *p;
        hist h;

        build(&h, held);
        cr_assert_eq(hist_apply(r, &h, 0, h.n - 1, NULL), 0);
        p = evs_replay_find_path(r, evs_span_cstr("p"));
        cr_assert_eq(p->status, EVS_PATH_CANCELLED);
        cr_assert_eq(p->ended_seq, 10);
        cr_assert_eq(p->pending, 0);
        assert_span(p->error, "{\"type\":\"cancelled\"}");
        p = evs_replay_find_path(r, evs_span_cstr("q"));
        cr_assert_eq(p->status, EVS_PATH_CANCELLED);
        cr_assert_eq(p->pending, 0);
        cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_RUNNING,
                     "main alone is live, and active");
        for (size_t i = 0; i < evs_replay_timer_count(r); i++)
            cr_assert(evs_replay_timer(r, i)->cancelled);
        for (size_t i = 0; i < evs_replay_wait_count(r); i++)
            cr_assert_eq(evs_replay_wait(r, i)->ended_seq, 11);
        if (!cm) {
            const evs_step_state *a = evs_replay_find_step(
                r, evs_span_cstr("p"), evs_span_cstr("a"), -1);
            const evs_step_state *q = evs_replay_find_step(
                r, evs_span_cstr("q"), evs_span_cstr("r"), -1);
            cr_assert_eq(a->status, EVS_STEP_CANCELLED);
            cr_assert_eq(a->ended_seq, 10);
            assert_span(a->error, "{\"type\":\"cancelled\"}");
            cr_assert_eq(q->status, EVS_STEP_CANCELLED);
            cr_assert_eq(q->retry_at_us, 0);
        } else {
            cr_assert_eq(evs_replay_step_count(r), 0,
                         "compact: gone with their paths");
            cr_assert_eq(evs_replay_timer_count(r), 0);
            cr_assert_eq(evs_replay_wait_count(r), 0);
        }
        /* The timer's id is free again: it was cancelled. */
        cr_assert_eq(hist_apply(r, &h, h.n - 1, h.n, NULL), 0);
        evs_replay_free(r);
        hist_free(&h);
    }
}

/* A takeover (seq 3 here) and the re-dispatch of the step in flight. */
#define TAKE(from)                                                             \
    {                                                                          \
        "execution_taken_over", NULL, NULL,                                    \
            "{\"runner\":\"r2\",\"host\":\"h\",\"pid\":7,\"from_seq\":" from  \
            "}"                                                                \
    }
#define REDISPATCH(attempt, take)                                              \
    {                                                                          \
        "step_redispatched", NULL, "a",                                        \
            "{\"attempt\":" attempt ",\"idempotency_key\":\"x/main/a/-1\","    \
            "\"takeover_seq\":" take "}"                                       \
    }

Test(rules, takeovers_and_redispatches_of_steps_in_flight_are_valid)
{
    spec a[] = {START,
                {"step_started", NULL, "a", "{\"attempt\":1}"},
                TAKE("2"),
                REDISPATCH("1", "3"),
                TAKE("4"),
                REDISPATCH("1", "5"),
                {"step_completed", NULL, "a", NULL},
                END};
    /* A takeover with nothing in flight, and a history without any. */
    spec b[] = {START, TAKE("1"), {"step_started", NULL, "a", NULL}, END};

    expect_valid(a);
    expect_valid(b);
}

Test(rules, takeover_from_is_a_from_seq_other_than_the_one_before)
{
    spec a[] = {START, {"step_started", NULL, "a", NULL}, TAKE("1"), END};
    spec b[] = {START, TAKE("5"), END};

    expect_only(a, "takeover-from");
    expect_only(b, "takeover-from");
}

Test(rules, a_takeover_or_redispatch_without_its_members_breaks_data)
{
    spec a[] = {START,
                {"execution_taken_over", NULL, NULL, "{\"from_seq\":1}"},
                END};
    spec b[] = {START,
                {"execution_taken_over", NULL, NULL, "{\"runner\":\"r\"}"},
                END};
    spec c[] = {START,
                {"step_started", NULL, "a", NULL},
                TAKE("2"),
                {"step_redispatched", NULL, "a", "{\"attempt\":1}"},
                END};

    expect_only(a, "data");
    expect_only(b, "data");
    expect(c, "data");
}

Test(rules, redispatch_not_running_is_a_redispatch_of_a_step_not_in_flight)
{
    spec a[] = {START, TAKE("1"), REDISPATCH("1", "2"), END};
    spec b[] = {START,
                {"step_started", NULL, "a", NULL},
                {"step_completed", NULL, "a", NULL},
                TAKE("3"),
                REDISPATCH("1", "4"),
                END};

    expect_only(a, "redispatch-not-running");
    expect_only(b, "redispatch-not-running");
}

Test(rules, redispatch_attempt_is_another_attempt_than_the_one_in_flight)
{
    spec a[] = {START,
                {"step_started", NULL, "a", "{\"attempt\":1}"},
                TAKE("2"),
                REDISPATCH("2", "3"),
                END};

    expect_only(a, "redispatch-attempt");
}

Test(rules, redispatch_takeover_names_the_last_takeover_once_after_the_start)
{
    /* No takeover at all. */
    spec a[] = {START,
                {"step_started", NULL, "a", NULL},
                REDISPATCH("1", "2"),
                END};
    /* Not the last takeover. */
    spec b[] = {START,
                {"step_started", NULL, "a", NULL},
                TAKE("2"),
                TAKE("3"),
                REDISPATCH("1", "3"),
                END};
    /* Twice by one takeover. */
    spec c[] = {START,
                {"step_started", NULL, "a", NULL},
                TAKE("2"),
                REDISPATCH("1", "3"),
                REDISPATCH("1", "3"),
                END};
    /* A step started after the takeover. */
    spec d[] = {START,
                TAKE("1"),
                {"step_started", NULL, "a", NULL},
                REDISPATCH("1", "2"),
                END};

    expect_only(a, "redispatch-takeover");
    expect_only(b, "redispatch-takeover");
    expect_only(c, "redispatch-takeover");
    expect_only(d, "redispatch-takeover");
}

Test(rules, the_state_counts_dispatches_and_names_the_takeovers)
{
    spec a[] = {START,
                {"step_started", NULL, "a", "{\"attempt\":1}"},
                TAKE("2"),
                REDISPATCH("1", "3"),
                TAKE("4"),
                REDISPATCH("1", "5"),
                END};
    hist h;

    build(&h, a);
    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = hist_replayer_mode(cm);
        const evs_step_state *s;
        const evs_exec_state *x;
        char *json;

        cr_assert_eq(hist_apply(r, &h, 0, h.n, NULL), 0);
        s = evs_replay_find_step(r, evs_span_cstr("main"), evs_span_cstr("a"),
                                 -1);
        cr_assert_not_null(s);
        cr_assert_eq(s->attempts, 1);
        cr_assert_eq(s->dispatches, 3);
        cr_assert(s->redispatched_by.len == 5 &&
                      memcmp(s->redispatched_by.ptr, "[3,5]", 5) == 0,
                  "%.*s", (int)s->redispatched_by.len, s->redispatched_by.ptr);
        x = evs_replay_exec(r);
        cr_assert_eq(x->takeovers, 2);
        cr_assert_eq(x->takeover_seq, 5);
        cr_assert(x->runner.len == 2 && memcmp(x->runner.ptr, "r2", 2) == 0);
        json = hist_state(r, NULL);
        cr_assert_not_null(strstr(json, "\"takeovers\":2,\"takeover_seq\":5,"
                                        "\"runner\":\"r2\""),
                           "%s", json);
        cr_assert_not_null(
            strstr(json, "\"dispatches\":3,\"redispatched_by\":[3,5]"), "%s",
            json);
        /* The state loads back to the same bytes. */
        {
            evs_replay *b = hist_replayer_mode(cm);
            char *again;
            cr_assert_eq(evs_replay_load_state(b, json, strlen(json)), 0);
            again = hist_state(b, NULL);
            cr_assert_str_eq(again, json);
            free(again);
            evs_replay_free(b);
        }
        free(json);
        evs_replay_free(r);
    }
    hist_free(&h);
}
