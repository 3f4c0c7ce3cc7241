/*
 * test_evreplay.c: drives the real evreplay binary (path in $EVREPLAY)
 * over histories recorded with the library: linear, branched, failing
 * with a retry, signalled, with a version decision and with a broken
 * rule. Scripts come from -c, -x files, a pipe and a pseudo-terminal;
 * the output is matched line by line.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static char *dir; /* the store */
static char *io;  /* scratch: the child's output, scripts */
static evs_store *st;

static void setup(void)
{
    cr_assert_not_null(getenv("EVREPLAY"), "EVREPLAY must name the binary");
    dir = tu_tmpdir("evreplay");
    io = tu_tmpdir("evreplay-io");
    cr_assert_not_null(dir);
    cr_assert_not_null(io);
    st = tu_open_store(dir, NULL);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    evs_store_close(st);
    tu_rmtree_free(dir);
    tu_rmtree_free(io);
}

TestSuite(evreplay, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------------ */
/* Building histories                                                 */
/* ------------------------------------------------------------------ */

typedef struct spec {
    const char *type, *path, *step, *data;
} spec;

static evs_event ev_of(const spec *s)
{
    evs_event e = tu_event(s->type, s->step, s->data ? s->data : "{}");

    e.path_id = evs_span_cstr(s->path ? s->path : "main");
    return e;
}

/* Creates `id` empty and records the events with a recorder. */
static void record(const char *id, const spec *sp, size_t n)
{
    evs_recorder *rec;
    evs_log *l;
    uint64_t seq;

    cr_assert_eq(evs_exec_create(st, id, strlen(id), NULL, NULL, 0), 0);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_recorder_open(l, NULL, &rec), 0);
    for (size_t i = 0; i < n; i++) {
        evs_event e = ev_of(&sp[i]);
        cr_assert_eq(evs_recorder_record(rec, &e, &seq), 0, "event %zu", i);
        cr_assert_eq(seq, i + 1);
    }
    cr_assert_eq(evs_recorder_flush(rec), 0);
    evs_recorder_close(rec);
    evs_log_close(l);
}

#define RECORD(id, arr) record(id, arr, sizeof(arr) / sizeof(arr[0]))

#define STARTED(wf)                                                            \
    {                                                                          \
        "execution_started", NULL, NULL,                                       \
            "{\"workflow_name\":\"" wf "\",\"inputs\":{\"topic\":\"cats\"}}"   \
    }

static const spec linear[] = {
    STARTED("linear"),
    {"step_started", NULL, "fetch", "{\"attempt\":1}"},
    {"step_completed", NULL, "fetch",
     "{\"output\":{\"pages\":3},\"stored_variable\":\"doc\"}"},
    {"step_started", NULL, "summarize",
     "{\"attempt\":1,\"input\":{\"pages\":3}}"},
    {"step_completed", NULL, "summarize",
     "{\"output\":\"cats are nice\",\"stored_variable\":\"summary\"}"},
    {"step_started", NULL, "publish", "{\"attempt\":1}"},
    {"step_completed", NULL, "publish", "{\"output\":true}"},
    {"path_completed", NULL, NULL, NULL},
    {"execution_completed", NULL, NULL, "{\"outputs\":{\"ok\":true}}"},
};

static const spec branched[] = {
    STARTED("branched"),
    {"step_started", NULL, "plan", "{\"attempt\":1}"},
    {"step_completed", NULL, "plan",
     "{\"output\":[1,2],\"stored_variable\":\"plan\"}"},
    {"path_branched", NULL, "plan",
     "{\"new_paths\":[{\"id\":\"left\",\"current_step\":\"a\"},"
     "{\"id\":\"right\",\"current_step\":\"b\"}]}"},
    {"path_started", "left", NULL,
     "{\"parent\":\"main\",\"current_step\":\"a\"}"},
    {"path_started", "right", NULL,
     "{\"parent\":\"main\",\"current_step\":\"b\"}"},
    {"step_started", "left", "a", "{\"attempt\":1}"},
    {"step_started", "right", "b", "{\"attempt\":1}"},
    {"step_completed", "right", "b", "{\"output\":\"R\"}"},
    {"step_completed", "left", "a", "{\"output\":\"L\"}"},
    {"path_completed", "left", NULL, NULL},
    {"path_completed", "right", NULL, NULL},
    {"execution_completed", NULL, NULL, "{}"},
};

static const spec retried[] = {
    STARTED("retried"),
    {"step_started", NULL, "call", "{\"attempt\":1}"},
    {"step_failed", NULL, "call",
     "{\"error\":{\"type\":\"Timeout\",\"message\":\"upstream timed out\","
     "\"retryable\":true}}"},
    {"retry_scheduled", NULL, "call", "{\"delay_ms\":1000,\"attempt\":2}"},
    {"step_started", NULL, "call", "{\"attempt\":2}"},
    {"step_failed", NULL, "call",
     "{\"error\":{\"type\":\"Timeout\",\"message\":\"again\"}}"},
    {"path_failed", NULL, NULL, "{\"error\":\"call failed\"}"},
    {"execution_failed", NULL, NULL,
     "{\"error\":{\"type\":\"Timeout\",\"message\":\"again\"}}"},
};

static const spec signalled[] = {
    STARTED("signalled"),
    {"step_started", NULL, "approve", "{\"attempt\":1,\"kind\":\"wait\"}"},
    {"wait_started", NULL, "approve",
     "{\"signal\":\"approval\",\"timeout_at\":\"2030-01-01T00:00:00Z\"}"},
    {"timer_started", NULL, "approve",
     "{\"timer_id\":\"t-approve\",\"fire_at\":\"2030-01-01T00:00:00Z\"}"},
    {"signal_received", NULL, "approve",
     "{\"signal\":\"approval\",\"payload\":{\"by\":\"ann\"}}"},
    {"wait_ended", NULL, "approve", "{\"signal_seq\":5}"},
    {"timer_cancelled", NULL, "approve", "{\"timer_id\":\"t-approve\"}"},
    {"step_completed", NULL, "approve",
     "{\"output\":{\"by\":\"ann\"},\"stored_variable\":\"approval\"}"},
    {"execution_completed", NULL, NULL, "{}"},
};

static const spec versioned[] = {
    STARTED("versioned"),
    {"version_decision", NULL, "draft",
     "{\"change_id\":\"new-prompt\",\"version\":2,\"min\":1,\"max\":3}"},
    {"step_started", NULL, "draft", "{\"attempt\":1}"},
    {"step_completed", NULL, "draft", "{\"output\":\"v2\"}"},
    {"execution_completed", NULL, NULL, "{}"},
};

static const spec controlled[] = {
    STARTED("controlled"),
    {"step_started", NULL, "draft", "{\"attempt\":1}"},
    {"execution_paused", NULL, NULL,
     "{\"reason\":\"maint\",\"by\":\"ann\"}"},
    {"execution_resumed", NULL, NULL, NULL},
    {"execution_terminated", NULL, NULL,
     "{\"reason\":{\"ticket\":9},\"by\":\"bo\\u001b[2J\"}"},
};

/* A history that breaks a rule, written with evs_log_append (the
 * recorder would write it just the same: nothing checks rules on the
 * way in). */
static void make_broken(const char *id)
{
    static const spec rest[] = {
        {"step_started", NULL, "a", "{\"attempt\":1}"},
        {"step_completed", NULL, "ghost", "{\"output\":1}"},
        {"step_completed", NULL, "a", "{\"output\":2}"},
        {"execution_completed", NULL, NULL, "{}"},
    };
    evs_log *l;

    cr_assert_eq(tu_create(st, id), 0);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    for (size_t i = 0; i < 4; i++) {
        evs_event e = ev_of(&rest[i]);
        cr_assert_eq(evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL), 0);
    }
    evs_log_close(l);
}

/* ------------------------------------------------------------------ */
/* Running the binary                                                 */
/* ------------------------------------------------------------------ */

typedef struct result {
    int status;
    char *out;
    char *err;
} result;

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

static char *io_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];

    snprintf(p, 512, "%s/%s", io, name);
    return p;
}

/*
 * Runs evreplay with `args` (NULL-terminated, without the program name).
 * stdin is a pipe fed with `input` (NULL: /dev/null); stdout and stderr
 * go to files.
 */
static result run_args(const char *input, const char *const *args)
{
    char out[512], err[512];
    tu_spawn_io sio = {.input = input, .out = out, .err = err};
    size_t len;
    result r;

    snprintf(out, sizeof(out), "%s/out", io);
    snprintf(err, sizeof(err), "%s/err", io);
    r.status = tu_wait_exit(tu_spawn("EVREPLAY", &sio, args));
    r.out = tu_read_file(out, &len);
    r.err = tu_read_file(err, &len);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

#define EVREPLAY_IN(in, ...)                                                   \
    run_args(in, (const char *const[]){__VA_ARGS__, NULL})
#define EVREPLAY(...) EVREPLAY_IN(NULL, __VA_ARGS__)

/* Runs a -c script over execution `id`. */
static result script(const char *id, const char *cmds)
{
    return EVREPLAY(dir, id, "-c", cmds);
}

/* The line of `out` whose first word is `first` (the n-th such line,
 * 0-based), with runs of blanks collapsed to one space; heap memory, or
 * NULL. */
static char *row_n(const char *out, const char *first, int nth)
{
    const char *p = out;

    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, len), *norm = malloc(len + 1), *q = norm;
        const char *s = line;
        size_t fl = strlen(first);

        while (*s == ' ')
            s++;
        for (; *s; s++)
            if (*s != ' ' || (q > norm && q[-1] != ' '))
                *q++ = *s;
        while (q > norm && q[-1] == ' ')
            q--;
        *q = '\0';
        free(line);
        if (strncmp(norm, first, fl) == 0 &&
            (norm[fl] == ' ' || norm[fl] == '\0') && nth-- == 0)
            return norm;
        free(norm);
        if (!e)
            break;
        p = e + 1;
    }
    return NULL;
}

static char *row(const char *out, const char *first)
{
    return row_n(out, first, 0);
}

#define assert_row(out, first, expected)                                       \
    do {                                                                       \
        char *r_ = row(out, first);                                            \
        cr_assert_not_null(r_, "no line starting with '%s' in:\n%s", first,    \
                           out);                                               \
        cr_assert_str_eq(r_, expected, "in:\n%s", out);                        \
        free(r_);                                                              \
    } while (0)

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/*
 * A line a test expects in stdout: the nth (from 0) whose first word is
 * `first`, blanks collapsed (row_n), is `line`; a `line` that ends in '*'
 * need only start with what comes before the '*'. NULL: there is none.
 */
typedef struct want_row {
    const char *first;
    int nth;
    const char *line;
} want_row;

/*
 * A script run over execution `id` and what it must show: its exit
 * status, its whole stderr (NULL: not checked), lines of stdout, text
 * stdout contains, stdout's count of lines (0: not checked) and all of
 * stdout. The lists end at their first empty entry.
 */
typedef struct run_case {
    const char *id, *cmds;
    int status;
    const char *err;
    want_row rows[16];
    const char *has[8];
    size_t lines;
    const char *out; /* the whole stdout, NULL: not checked */
} run_case;

static void assert_want_row(const char *out, const want_row *w)
{
    char *got = row_n(out, w->first, w->nth);
    size_t n = w->line ? strlen(w->line) : 0;

    if (!w->line) {
        cr_assert_null(got, "unexpected line '%s' in:\n%s", got, out);
        return;
    }
    cr_assert_not_null(got, "no line %d starting with '%s' in:\n%s", w->nth,
                       w->first, out);
    if (n && w->line[n - 1] == '*')
        cr_assert_eq(strncmp(got, w->line, n - 1), 0, "'%s' in:\n%s", got, out);
    else
        cr_assert_str_eq(got, w->line, "in:\n%s", out);
    free(got);
}

/* Runs c's script and checks what c says; the result is the caller's,
 * for more checks. */
static result run_case_check(const run_case *c)
{
    result r = script(c->id, c->cmds);

    cr_assert_eq(r.status, c->status, "%s: exit %d\nstdout: %s\nstderr: %s",
                 c->cmds, r.status, r.out, r.err);
    if (c->err)
        cr_assert_str_eq(r.err, c->err, "%s", c->cmds);
    for (size_t i = 0; i < 16 && c->rows[i].first; i++)
        assert_want_row(r.out, &c->rows[i]);
    for (size_t i = 0; i < 8 && c->has[i]; i++)
        cr_assert_not_null(strstr(r.out, c->has[i]), "%s: no '%s' in:\n%s",
                           c->cmds, c->has[i], r.out);
    if (c->lines)
        cr_assert_eq(count_lines(r.out), c->lines, "%s", r.out);
    if (c->out)
        cr_assert_str_eq(r.out, c->out, "%s", c->cmds);
    return r;
}

static void run_cases(const run_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        result r = run_case_check(&c[i]);
        result_free(&r);
    }
}

#define RUN_CASES(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

/* ------------------------------------------------------------------ */
/* Moving                                                             */
/* ------------------------------------------------------------------ */

Test(evreplay, goto_then_print_paths_shows_the_branched_paths)
{
    static const run_case cases[] = {
        {"br", "goto 5; print paths", 0, .err = "",
         .rows = {{"=>", 0,
                   "=> 5 path_started left - {\"parent\":\"main\","
                   "\"current_step\":\"a\"}"},
                  {"ID", 0, "ID STATUS PARENT STEP STARTED ENDED"},
                  {"main", 0, "main active - plan 1 -"},
                  {"left", 0, "left active main a 4 -"},
                  {"right", 0, "right active main b 4 -"}},
         .lines = 5},
        /* Before the branch there is only main. */
        {"br", "goto 3; print paths", 0,
         .rows = {{"main", 0, "main active - plan 1 -"}, {"left", 0, NULL}}},
    };

    RECORD("br", branched);
    RUN_CASES(cases);
}

Test(evreplay, step_and_back_move_and_where_reports_the_event)
{
    static const run_case cases[] = {
        {"lin", "step 3; where; back 2; where", 0,
         .rows = {{"=>", 0,
                   "=> 3 step_completed main fetch "
                   "{\"output\":{\"pages\":3},"
                   "\"stored_variable\":\"doc\"}"},
                  {"seq", 0, "seq 3 of 9"},
                  {"event", 0, "event step_completed"},
                  {"path", 0, "path main"},
                  {"step", 0, "step fetch"},
                  {"status", 0, "status running"},
                  {"seq", 1, "seq 1 of 9"},
                  {"event", 1, "event execution_started"}}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, where_at_the_start_says_no_event_was_applied)
{
    static const run_case cases[] = {
        {"lin", "where", 0,
         .rows = {{"seq", 0, "seq 0 of 9 (start: no event applied)"},
                  {"status", 0, "status pending"}}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, next_skips_the_events_of_other_paths)
{
    static const run_case cases[] = {
        /* At 7 the current path is left; 8 and 9 are right's. */
        {"br", "goto 7; next; where", 0,
         .rows = {{"seq", 0, "seq 10 of 13"}, {"path", 0, "path left"}}},
    };

    RECORD("br", branched);
    RUN_CASES(cases);
}

Test(evreplay, an_empty_line_on_stdin_repeats_the_last_move)
{
    result r;

    RECORD("lin", linear);
    r = EVREPLAY_IN("step 2\n\n\nprint state\nwhere\n", dir, "lin");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    assert_row(r.out, "seq", "seq 6 of 9");
    result_free(&r);
}

Test(evreplay, back_and_goto_give_the_same_state_with_and_without_checkpoints)
{
    result a, b, c;
    const char *cmds = "goto 13; back 4; print json; goto 2; print json; "
                       "goto 11; print json; diff 1 12";

    RECORD("br", branched);
    a = EVREPLAY(dir, "br", "--checkpoint-every", "0", "-c", cmds);
    b = EVREPLAY(dir, "br", "--checkpoint-every", "2", "-c", cmds);
    /* A budget of one byte drops every checkpoint as soon as taken. */
    c = EVREPLAY(dir, "br", "--checkpoint-every", "1", "--checkpoint-budget",
                 "1", "-c", cmds);
    cr_assert_eq(a.status, 0, "stderr: %s", a.err);
    cr_assert_eq(b.status, 0, "stderr: %s", b.err);
    cr_assert_eq(c.status, 0, "stderr: %s", c.err);
    cr_assert_str_eq(a.out, b.out);
    cr_assert_str_eq(a.out, c.out);
    /* And the state at 9 reached going back equals the one going forward
     * from the start. */
    cr_assert_not_null(strstr(a.out, "\"last_seq\": 9,"), "%s", a.out);
    result_free(&a);
    result_free(&b);
    result_free(&c);
    a = EVREPLAY(dir, "br", "--checkpoint-every", "3", "-c",
                 "goto 13; back 4; print json");
    b = EVREPLAY(dir, "br", "--checkpoint-every", "0", "-c",
                 "step 9; print json");
    cr_assert_str_eq(strstr(a.out, "{\n"), strstr(b.out, "{\n"));
    result_free(&a);
    result_free(&b);
}

Test(evreplay, run_and_reset_go_back_to_the_start)
{
    static const run_case cases[] = {
        {"lin", "goto 6; run; where; goto 4; reset; where", 0,
         .rows = {{"seq", 0, "seq 0 of 9 (start: no event applied)"},
                  {"seq", 1, "seq 0 of 9 (start: no event applied)"}}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, moving_past_either_end_is_an_error)
{
    static const run_case cases[] = {
        {"lin", "back", 1, .err = "error: at the start of the history\n"},
        {"lin", "goto 9; step", 1,
         .err = "error: at the end of the history (seq 9)\n"},
        /* Stepping past the end stops at the end. */
        {"lin", "goto 7; step 5; where", 0, .rows = {{"seq", 0, "seq 9 of 9"}},
         .has = {"end of history\n"}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

/* ------------------------------------------------------------------ */
/* Breakpoints                                                        */
/* ------------------------------------------------------------------ */

Test(evreplay, break_type_stops_continue_at_the_failure)
{
    static const run_case cases[] = {
        {"re",
         "break type step_failed; continue; where; print state; "
         "continue; where",
         0,
         .rows = {{"breakpoint", 0, "breakpoint 1: type step_failed"},
                  {"seq", 0, "seq 3 of 8"},
                  {"event", 0, "event step_failed"},
                  {"failure", 0, "failure main/call at seq 3"},
                  {"seq", 1, "seq 6 of 8"}}},
    };

    RECORD("re", retried);
    RUN_CASES(cases);
}

Test(evreplay, a_retry_shows_in_the_step_and_clears_the_failure_point)
{
    static const run_case cases[] = {
        {"re", "goto 4; print step call; print state", 0,
         .rows = {{"step", 0, "step main/call"},
                  {"status", 0, "status retrying"},
                  {"attempts", 0, "attempts 1"},
                  {"failure", 0, "failure none"}},
         .has = {"\"message\": \"upstream timed out\""}},
        {"re", "goto 8; print step call; print state", 0,
         .rows = {{"attempts", 0, "attempts 2"},
                  {"failure", 0, "failure main/call at seq 6"},
                  {"status", 1, "status failed"}}},
    };

    RECORD("re", retried);
    RUN_CASES(cases);
}

Test(evreplay, break_step_stops_at_every_event_of_that_step)
{
    static const run_case cases[] = {
        {"lin",
         "break step summarize; continue; continue; continue; "
         "info breakpoints",
         0,
         .rows = {{"=>", 0,
                   "=> 4 step_started main summarize "
                   "{\"attempt\":1,\"input\":{\"pages\":3}}"},
                  {"=>", 1, "=> 5 step_completed main summarize*"},
                  {"=>", 2, "=> 9 execution_completed*"},
                  {"1", 0, "1 step summarize 2"}},
         .has = {"end of history\n"}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, break_status_stops_when_the_execution_completes)
{
    static const run_case cases[] = {
        {"sg", "break status completed; continue; where", 0,
         .rows = {{"seq", 0, "seq 9 of 9"}, {"status", 0, "status completed"}}},
        /* Any change: running at 1, waiting at 3 (the only path waits),
         * running again at 7: the wait ends at 6, but its timeout timer
         * holds the path until it is cancelled at 7. */
        {"sg",
         "break status; continue; where; continue; where; "
         "continue; where",
         0,
         .rows = {{"seq", 0, "seq 1 of 9"},
                  {"seq", 1, "seq 3 of 9"},
                  {"status", 1, "status waiting"},
                  {"seq", 2, "seq 7 of 9"}}},
    };

    RECORD("sg", signalled);
    RUN_CASES(cases);
}

Test(evreplay, break_path_and_seq_and_delete)
{
    static const run_case cases[] = {
        {"br",
         "break path right; break seq 12; info breakpoints; "
         "continue; delete 1; continue; info breakpoints; "
         "delete; info breakpoints",
         0,
         .rows = {{"NUM", 0, "NUM WHAT HITS"},
                  {"1", 0, "1 path right 0"},
                  {"2", 0, "2 seq 12 0"},
                  {"=>", 0,
                   "=> 6 path_started right - "
                   "{\"parent\":\"main\",\"current_step\":\"b\"}"},
                  {"=>", 1, "=> 12 path_completed right*"},
                  {"2", 1, "2 seq 12 1"},
                  {"deleted", 0, "deleted breakpoint 1"}},
         .has = {"deleted 1 breakpoint\n", "no breakpoints\n"}},
    };

    RECORD("br", branched);
    RUN_CASES(cases);
}

Test(evreplay, bad_breakpoints_are_errors)
{
    static const run_case c = {
        "lin",
        "break status done; break seq 99; break; break colour red; "
        "delete 7; info breakpoints",
        1, .out = "no breakpoints\n"};
    result r;

    RECORD("lin", linear);
    r = run_case_check(&c);
    cr_assert_eq(count_lines(r.err), 5, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "error: unknown status 'done'"));
    cr_assert_not_null(strstr(r.err, "error: seq 99 is out of range (1..9)"));
    cr_assert_not_null(strstr(r.err, "error: no breakpoint number 7"));
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* Inspecting                                                         */
/* ------------------------------------------------------------------ */

Test(evreplay, diff_names_the_step_completed_and_the_variable_set)
{
    static const run_case cases[] = {
        {"lin", "diff 3 8", 0,
         .out = "diff seq 3 -> seq 8\n"
                "~ path main: status active -> completed; "
                "step fetch -> publish; ended - -> 8\n"
                "+ step main/summarize: completed, attempts 1\n"
                "+ step main/publish: completed, attempts 1\n"
                "+ var summary = \"cats are nice\"\n"
                "4 changes\n"},
        /* A step that was running at the first point shows as changed. */
        {"lin", "diff 4 5; diff 5 5", 0,
         .has = {"~ step main/summarize: status running -> completed; "
                 "output - -> \"cats are nice\"; variable - -> summary; "
                 "ended - -> 5\n",
                 "no difference\n"}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, diff_covers_status_signals_timers_and_waits)
{
    static const run_case cases[] = {
        {"sg", "diff 3 7", 0,
         .has = {"+ signal approval (seq 5): consumed at 6 by main/approve\n",
                 "+ timer t-approve (main/approve): cancelled\n",
                 "~ wait main/approve on approval (seq 3): pending -> "
                 "ended at 6\n"}},
        {"sg", "diff 9 0", 0,
         .has = {"~ status: completed -> pending\n",
                 "- var approval = {\"by\":\"ann\"}\n"}},
    };

    RECORD("sg", signalled);
    RUN_CASES(cases);
}

Test(evreplay, signals_timers_and_waits_are_printed_as_they_change)
{
    static const run_case cases[] = {
        {"sg",
         "goto 4; print waits; print timers; print signals; "
         "goto 5; print signals; goto 7; print signals; "
         "print waits; print timers",
         0,
         .rows = {{"PATH", 0, "PATH STEP SIGNAL TIMEOUT STARTED STATUS"},
                  {"main", 0,
                   "main approve approval "
                   "2030-01-01T00:00:00.000000Z 3 pending"},
                  {"t-approve", 0,
                   "t-approve main approve "
                   "2030-01-01T00:00:00.000000Z 4 pending"},
                  {"5", 0, "5 approval buffered - {\"by\":\"ann\"}"},
                  {"5", 1,
                   "5 approval consumed at 6 main/approve "
                   "{\"by\":\"ann\"}"},
                  {"main", 1,
                   "main approve approval "
                   "2030-01-01T00:00:00.000000Z 3 ended at 6 by "
                   "signal 5"},
                  {"t-approve", 1,
                   "t-approve main approve "
                   "2030-01-01T00:00:00.000000Z 4 cancelled"}},
         .has = {"no signals\n"}},
    };

    RECORD("sg", signalled);
    RUN_CASES(cases);
}

Test(evreplay, print_state_says_who_paused_unpaused_and_terminated)
{
    static const run_case cases[] = {
        {"ct", "goto 3; print state", 0,
         .has = {" by ann at step draft: \"maint\" (seq 3)\n"}},
        /* Written without who: said so; a control byte is not passed
         * to the terminal. */
        {"ct", "goto 5; print state", 0,
         .has = {"unpaused", " by (not recorded) (seq 4)\n",
                 " by bo\\u001b[2J: {\"ticket\":9} (seq 5)\n"}},
    };

    RECORD("ct", controlled);
    RUN_CASES(cases);
}

Test(evreplay, print_versions_shows_the_decision)
{
    static const run_case cases[] = {
        {"vd", "goto 1; print versions; goto 2; print versions", 0,
         .rows = {{"CHANGE", 0, "CHANGE VERSION MIN MAX SEQ"},
                  {"new-prompt", 0, "new-prompt 2 1 3 2"}},
         .has = {"no versions\n"}},
    };

    RECORD("vd", versioned);
    RUN_CASES(cases);
}

Test(evreplay, print_var_and_vars_show_values_and_where_they_were_set)
{
    static const run_case cases[] = {
        /* The first lines starting with doc are print var's. */
        {"lin", "goto 5; print var doc; print vars; print var summary", 0,
         .rows = {{"NAME", 0, "NAME SET AT VALUE"},
                  {"doc", 1, "doc 3 {\"pages\":3}"},
                  {"summary", 0, "summary 5 \"cats are nice\""}},
         .has = {"doc = {\n  \"pages\": 3\n}\n(set at seq 3)\n",
                 "summary = \"cats are nice\"\n(set at seq 5)\n"}},
        {"lin", "goto 4; print var summary", 1,
         .err = "error: no variable 'summary' at seq 4\n"},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, print_state_steps_and_path_describe_the_execution)
{
    static const run_case cases[] = {
        {"lin", "goto 9; print state; print steps; print path main", 0,
         .rows = {{"execution", 0, "execution lin"},
                  {"workflow", 0, "workflow linear"},
                  {"status", 0, "status completed"},
                  {"last", 0, "last seq 9 of 9"},
                  {"failure", 0, "failure none"},
                  {"paths", 0, "paths 1"},
                  {"steps", 0, "steps 3"},
                  {"variables", 0, "variables 2"},
                  {"outputs", 0, "outputs {\"ok\":true}"},
                  {"inputs", 0, "inputs {\"topic\":\"cats\"}"},
                  {"PATH", 0,
                   "PATH STEP ITER STATUS ATTEMPTS STARTED ENDED "
                   "VARIABLE"},
                  {"main", 0, "main fetch - completed 1 2 3 doc"},
                  {"path", 0, "path main"},
                  /* The path's own table repeats its steps. */
                  {"main", 3, "main fetch - completed 1 2 3 doc"}}},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, print_step_with_a_path_and_an_unknown_step)
{
    static const run_case cases[] = {
        {"br", "goto 10; print step a left; print step a right", 1,
         .err = "error: no step 'a' on path right at seq 10\n",
         .rows = {{"step", 0, "step left/a"}, {"output", 0, "output \"L\""}}},
    };

    RECORD("br", branched);
    RUN_CASES(cases);
}

Test(evreplay, print_json_is_the_canonical_state_pretty_printed)
{
    evs_replay *rp;
    char *js;
    size_t len;
    result r;

    RECORD("lin", linear);
    r = script("lin", "goto 5; print json");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    /* The same state, made here by the library, has the same members in
     * the same order. */
    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    cr_assert_eq(evs_replay_open(rp, st, "lin", 3, 5, NULL, NULL), 0);
    cr_assert_eq(evs_replay_state_json(rp, &js, &len), 0);
    {
        /* Strip the pretty printer's whitespace outside strings and
         * compare. */
        char *flat = malloc(strlen(r.out) + 1), *q = flat;
        int in_str = 0;
        const char *json = strchr(r.out, '\n') + 1; /* after goto's line */
        for (const char *p = json; *p; p++) {
            if (*p == '"' && (p == json || p[-1] != '\\'))
                in_str = !in_str;
            if (!in_str && (*p == ' ' || *p == '\n'))
                continue;
            *q++ = *p;
        }
        *q = '\0';
        /* The library's JSON is (pointer, length), not a C string. */
        cr_assert_eq(strlen(flat), len, "%s", flat);
        cr_assert_eq(memcmp(flat, js, len), 0, "%s", flat);
        free(flat);
    }
    free(js);
    evs_replay_free(rp);
    result_free(&r);
}

Test(evreplay, list_marks_the_current_event)
{
    static const run_case cases[] = {
        /* 2..12 around 7, 11 lines after the line of goto. */
        {"br", "goto 7; list", 0,
         .rows = {{"2", 0, "2 step_started main plan*"},
                  {"=>", 1, "=> 7 step_started left a*"},
                  {"1", 0, NULL},
                  {"13", 0, NULL}},
         .lines = 12},
        /* At 0, outside the window, nothing is marked. */
        {"br", "list 13", 0,
         .rows = {{"13", 0, "13*"},
                  {"3", 0, "3*"},
                  {"2", 0, NULL},
                  {"=>", 0, NULL}}},
        {"br", "list", 0,
         .rows = {{"=>", 0, "=> 0 (start: no event applied)"}}},
    };

    RECORD("br", branched);
    RUN_CASES(cases);
}

Test(evreplay, event_prints_every_field_and_the_data)
{
    static const run_case cases[] = {
        {"lin", "event 4", 0,
         .rows = {{"seq", 0, "seq 4"},
                  {"type", 0, "type step_started"},
                  {"path", 0, "path main"},
                  {"step", 0, "step summarize"},
                  {"append", 0, "append 9 events from seq 1"}},
         .has = {"data       {\n"
                 "             \"attempt\": 1,\n"
                 "             \"input\": {\n"
                 "               \"pages\": 3\n"
                 "             }\n"
                 "           }\n"}},
        {"lin", "event", 1,
         .err = "error: no event applied yet (at seq 0); give a SEQ\n"},
    };

    RECORD("lin", linear);
    RUN_CASES(cases);
}

Test(evreplay, search_finds_text_and_types_without_moving)
{
    static const run_case cases[] = {
        {"re",
         "goto 2; search timed out; search type step_failed; "
         "search nothing-like-this; where",
         0,
         /* The data preview is cut to 60 columns. */
         .rows = {{"3", 0,
                   "3 step_failed main call {\"error\":{\"type\":"
                   "\"Timeout\",\"message\":\"upstream timed "
                   "out\"..."},
                  {"6", 0, "6 step_failed main call*"},
                  {"seq", 0, "seq 2 of 8"}},
         .has = {"1 event matches\n", "2 events match\n",
                 "no event matches\n"}},
    };

    RECORD("re", retried);
    RUN_CASES(cases);
}

/* ------------------------------------------------------------------ */
/* Damaged histories                                                  */
/* ------------------------------------------------------------------ */

Test(evreplay, a_violation_is_shown_when_stepped_over_and_replay_goes_on)
{
    static const run_case cases[] = {
        {"bad", "step 3; print steps; info violations", 0,
         .rows = {{"violation", 0,
                   "violation at seq 3: step-not-started: "
                   "outcome of step \"ghost\" that is not "
                   "running"},
                  {"main", 0, "main a - running 1 2 - -"}},
         .has = {"1 violation\n"}},
        {"bad", "break violation; continue; where; continue; print state", 0,
         .rows = {{"seq", 0, "seq 3 of 5"},
                  {"status", 0, "status running"},
                  {"status", 1, "status completed"},
                  {"steps", 0, "steps 1"}}},
        /* Going back over it and forward again shows it again. */
        {"bad", "goto 4; back 3; goto 5", 0, .has = {"violation at seq 3:"}},
    };

    make_broken("bad");
    RUN_CASES(cases);
}

Test(evreplay, a_damaged_log_is_loaded_up_to_the_damage)
{
    char *p, *buf;
    const char *l6;
    size_t len;
    evs_log *l;
    result r;

    /* One event per append, so appends follow the damaged one and it is
     * damage, not a torn tail. */
    cr_assert_eq(tu_create(st, "dmg"), 0);
    cr_assert_eq(evs_log_open(st, "dmg", 3, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    for (size_t i = 1; i < 9; i++) {
        evs_event e = ev_of(&linear[i]);
        cr_assert_eq(evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL), 0);
    }
    evs_log_close(l);
    p = tu_path(dir, "dmg", "events.jsonl");
    buf = tu_read_file(p, &len);
    cr_assert_not_null(buf);
    l6 = buf;
    for (int i = 0; i < 5; i++)
        l6 = strchr(l6, '\n') + 1;
    /* A bit inside line 6: its checksum no longer matches. */
    cr_assert_eq(tu_flip_bit(p, (long long)(l6 - buf) + 70, 1), 0);
    free(buf);
    free(p);
    r = script("dmg", "goto 5; where; goto 6");
    cr_assert_eq(r.status, 1, "out: %s\nerr: %s", r.out, r.err);
    cr_assert_not_null(strstr(r.err, "evreplay: warning: the log of 'dmg' "
                                     "is damaged at seq 6"),
                       "%s", r.err);
    cr_assert_not_null(strstr(r.err, "only events 1..5 are loaded"));
    cr_assert_not_null(strstr(r.err, "error: seq 6 is out of range (0..5)"));
    assert_row(r.out, "seq", "seq 5 of 5");
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* Scripts, errors and the command line                               */
/* ------------------------------------------------------------------ */

Test(evreplay, help_lists_every_command_with_an_example)
{
    static const char *const usages[] = {
        "step [N]",
        "next [N]",
        "back [N]",
        "goto SEQ",
        "continue",
        "run",
        "reset",
        "break step NAME",
        "break type TYPE",
        "break path ID",
        "break seq N",
        "break status [STATUS]",
        "break violation",
        "info breakpoints",
        "delete [N...]",
        "print state",
        "print paths",
        "print path ID",
        "print steps",
        "print step NAME [PATH] [ITER]",
        "print vars",
        "print var NAME",
        "print signals",
        "print timers",
        "print waits",
        "print versions",
        "print each",
        "print json",
        "where",
        "list [SEQ]",
        "event [SEQ]",
        "diff SEQ1 SEQ2",
        "search TEXT",
        "search type|path|step NAME",
        "info violations",
        "help [CMD]",
        "quit",
        "exit",
    };
    result r;

    RECORD("lin", linear);
    r = script("lin", "help");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
        char key[64];
        const char *at, *nl;
        snprintf(key, sizeof(key), "\n  %s  ", usages[i]);
        at = strstr(r.out, key);
        cr_assert_not_null(at, "help lacks '%s':\n%s", usages[i], r.out);
        nl = strchr(at + 1, '\n');
        cr_assert_not_null(nl);
        /* The example is on the next line. */
        cr_assert_eq(strncmp(nl + 1 + strspn(nl + 1, " "), "e.g. ", 5), 0,
                     "no example for '%s'", usages[i]);
    }
    result_free(&r);
    r = script("lin", "help diff; help s; help nonsense");
    cr_assert_eq(r.status, 1);
    cr_assert_not_null(strstr(r.out, "diff SEQ1 SEQ2\n"));
    cr_assert_not_null(strstr(r.out, "e.g. diff 3 8\n"));
    cr_assert_not_null(strstr(r.out, "step [N]\n"));
    cr_assert_not_null(strstr(r.out, "Short name: s\n"));
    cr_assert_str_eq(r.err, "error: unknown command 'nonsense' (try "
                            "'help')\n");
    result_free(&r);
}

Test(evreplay, a_script_file_runs_with_comments_and_blank_lines)
{
    const char *text = "# where the summary is made\n"
                       "goto 5\n"
                       "\n"
                       "where; print var summary\n";
    result r;

    RECORD("lin", linear);
    cr_assert_eq(tu_write_file(io_path("s.evr"), text, strlen(text)), 0);
    r = EVREPLAY(dir, "lin", "-x", io_path("s.evr"));
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    /* The blank line repeats nothing in a file. */
    assert_row(r.out, "seq", "seq 5 of 9");
    cr_assert_not_null(strstr(r.out, "summary = \"cats are nice\"\n"));
    result_free(&r);
    r = EVREPLAY(dir, "lin", "-x", io_path("missing.evr"));
    cr_assert_eq(r.status, 1);
    cr_assert_eq(strncmp(r.err, "error: cannot open script ", 26), 0);
    result_free(&r);
}

Test(evreplay, commands_from_a_pipe_run_in_order)
{
    result r;

    RECORD("lin", linear);
    r = EVREPLAY_IN("goto 5\nback\nwhere\n", dir, "lin");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    assert_row(r.out, "seq", "seq 4 of 9");
    /* No prompt when stdin is not a terminal. */
    cr_assert_null(strstr(r.out, "(evreplay"));
    result_free(&r);
}

Test(evreplay, dash_c_and_dash_x_run_in_the_order_given)
{
    const char *text = "step 2\n";
    result r;

    RECORD("lin", linear);
    cr_assert_eq(tu_write_file(io_path("two.evr"), text, strlen(text)), 0);
    r = EVREPLAY(dir, "lin", "-c", "goto 4", "-x", io_path("two.evr"), "-c",
                 "where");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    assert_row(r.out, "seq", "seq 6 of 9");
    result_free(&r);
}

Test(evreplay, an_error_exits_1_and_batch_stops_at_it)
{
    result r;

    RECORD("lin", linear);
    r = script("lin", "goto 999; where");
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "error: seq 999 is out of range (0..9)\n");
    assert_row(r.out, "seq", "seq 0 of 9 (start: no event applied)");
    result_free(&r);
    r = EVREPLAY(dir, "lin", "--batch", "-c", "goto 999; where");
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.out, "");
    result_free(&r);
    r = EVREPLAY_IN("frobnicate\nstep 0\nstep x\nwhere\n", dir, "lin");
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "error: unknown command 'frobnicate' (try "
                            "'help')\n"
                            "error: count must be at least 1\n"
                            "error: count must be a whole number, not 'x'\n");
    assert_row(r.out, "seq", "seq 0 of 9 (start: no event applied)");
    result_free(&r);
    r = script("lin", "where; quit; where");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 2, "%s", r.out);
    result_free(&r);
}

Test(evreplay, usage_errors_exit_2_and_a_missing_execution_exits_3)
{
    result r;

    RECORD("lin", linear);
    r = EVREPLAY(dir);
    cr_assert_eq(r.status, 2);
    cr_assert_eq(strncmp(r.err, "evreplay: ", 10), 0);
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    result_free(&r);
    r = EVREPLAY(dir, "lin", "--frob");
    cr_assert_eq(r.status, 2);
    result_free(&r);
    r = EVREPLAY(dir, "lin", "-c");
    cr_assert_eq(r.status, 2);
    result_free(&r);
    r = EVREPLAY(dir, "lin", "--checkpoint-every", "x");
    cr_assert_eq(r.status, 2);
    result_free(&r);
    r = EVREPLAY(dir, "nope", "-c", "where");
    cr_assert_eq(r.status, 3);
    cr_assert_str_eq(r.out, "");
    cr_assert_not_null(strstr(r.err, "no execution 'nope'"), "%s", r.err);
    result_free(&r);
    r = EVREPLAY(dir, "../x", "-c", "where");
    cr_assert_eq(r.status, 3);
    result_free(&r);
    r = EVREPLAY(io_path("no-store"), "lin", "-c", "where");
    cr_assert_eq(r.status, 3);
    cr_assert_not_null(strstr(r.err, "no store at"), "%s", r.err);
    result_free(&r);
    r = EVREPLAY("--help");
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "Usage: evreplay STORE EXEC"));
    cr_assert_not_null(strstr(r.out, "Exit status:"));
    result_free(&r);
}

Test(evreplay, an_empty_execution_can_be_opened)
{
    result r;

    cr_assert_eq(evs_exec_create(st, "empty", 5, NULL, NULL, 0), 0);
    r = script("empty", "where; list; step");
    cr_assert_eq(r.status, 1);
    assert_row(r.out, "seq", "seq 0 of 0 (start: no event applied)");
    cr_assert_str_eq(r.err, "error: at the end of the history (seq 0)\n");
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* Interactive                                                        */
/* ------------------------------------------------------------------ */

/* Reads from `fd` into *buf until `want` appears (NULL: until the end),
 * waiting at most 20 s. Returns 1 if found (or the end was reached). */
static int read_until(int fd, char **buf, size_t *len, const char *want)
{
    for (int waited = 0; waited < 200;) {
        struct pollfd p = {fd, POLLIN, 0};
        char tmp[4096];
        ssize_t n;

        if (want && *buf && strstr(*buf, want))
            return 1;
        if (poll(&p, 1, 100) == 0) {
            waited++;
            continue;
        }
        n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            return want == NULL; /* EIO once the child closed the tty */
        *buf = realloc(*buf, *len + (size_t)n + 1);
        memcpy(*buf + *len, tmp, (size_t)n);
        *len += (size_t)n;
        (*buf)[*len] = '\0';
    }
    return 0;
}

Test(evreplay, the_interactive_prompt_appears_on_a_terminal_and_quit_exits_0)
{
    char *buf = NULL;
    size_t len = 0;
    int master, ws;
    pid_t pid;

    RECORD("lin", linear);
    pid = tu_spawn("EVREPLAY", &(tu_spawn_io){.tty = &master},
                   (const char *const[]){dir, "lin", NULL});
    cr_assert(read_until(master, &buf, &len, "(evreplay 0/9) "),
              "no prompt: %s", buf ? buf : "");
    cr_assert_not_null(strstr(buf, "evreplay: execution lin: 9 events"));
    cr_assert_eq(write(master, "step 2\n", 7), 7);
    cr_assert(read_until(master, &buf, &len, "(evreplay 2/9) "),
              "after step: %s", buf);
    /* An empty line repeats the step. */
    cr_assert_eq(write(master, "\n", 1), 1);
    cr_assert(read_until(master, &buf, &len, "(evreplay 4/9) "),
              "after repeat: %s", buf);
    cr_assert_eq(write(master, "quit\n", 5), 5);
    read_until(master, &buf, &len, NULL);
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(WIFEXITED(ws), "%s", buf);
    cr_assert_eq(WEXITSTATUS(ws), 0, "%s", buf);
    free(buf);
    close(master);
}

/* An each step's record shows when it completed as a whole and its
 * output, the array; diff says it completed. */
Test(evreplay, print_each_and_diff_show_an_each_completed)
{
    static const spec eached[] = {
        STARTED("eached"),
        {"step_started", NULL, "e", "{\"iteration\":0,\"count\":2}"},
        {"step_completed", NULL, "e", "{\"iteration\":0,\"output\":\"x\"}"},
        {"step_started", NULL, "e", "{\"iteration\":1,\"count\":2}"},
        {"step_completed", NULL, "e", "{\"iteration\":1,\"output\":\"y\"}"},
        {"each_completed", NULL, "e", "{\"output\":[\"x\",\"y\"],\"count\":2}"},
    };
    result r;

    RECORD("ea", eached);
    r = script("ea", "goto 6; print each; diff 5 6");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "DONE  COUNT  ENDED  OUTPUT\n"), "%s", r.out);
    cr_assert(strstr(r.out, "2     2      6      [\"x\",\"y\"]\n"), "%s",
              r.out);
    cr_assert(strstr(r.out, "~ each main/e: done 2 -> 2 of 2, completed\n"),
              "%s", r.out);
    result_free(&r);
}

/* The command line is parsed as evdump's and evrun's are (tools/common.c):
 * the same getopt_long forms, the same words for a bad number, missing
 * arguments and an execution that is not there. */
Test(evreplay, the_command_line_speaks_as_evdump_and_evrun_do)
{
    char want[1024];
    result r;

    RECORD("lin", linear);
    r = EVREPLAY(dir, "lin", "--checkpoint-every=x", "-c", "where");
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "evreplay: --checkpoint-every needs a "
                            "non-negative whole number, got 'x' (run "
                            "'evreplay --help')\n");
    result_free(&r);
    r = EVREPLAY(dir);
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "evreplay: missing EXEC (run 'evreplay "
                            "--help')\n");
    result_free(&r);
    r = EVREPLAY("--command=where", "--checkpoint-every=2", dir, "lin");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "seq      0 of"), "%s", r.out);
    result_free(&r);
    r = EVREPLAY(dir, "nope", "-c", "where");
    snprintf(want, sizeof(want),
             "evreplay: no execution 'nope' in store "
             "%s\n",
             dir);
    cr_assert_str_eq(r.err, want);
    result_free(&r);
}
