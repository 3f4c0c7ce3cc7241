/*
 * test_replay.c: replaying the store's own executions gives the right
 * state. Each history is written by the recorder into a real store and
 * replayed with evs_replay_open; the state is checked field by field
 * through the accessors: statuses, attempts, outputs byte for byte,
 * variables, `each` progress, signals, waits, timers, versions, the
 * failure point and the sequences. Also: the state JSON round trip,
 * snapshots (used, damaged, stale, ignored for an earlier `at`) and
 * allocation failures.
 */
#include <criterion/criterion.h>

#include "formats_int.h"
#include "histories.h"
#include "testutil.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("replay", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
    hist_leak_check();
}

TestSuite(replay, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static evs_span sp(const char *s)
{
    return evs_span_cstr(s);
}

static int64_t ts(const char *rfc3339)
{
    int64_t us = 0;

    cr_assert_eq(evs_time_parse(rfc3339, strlen(rfc3339), &us), 0);
    return us;
}

static void start(hist *h, const char *data)
{
    hist_init(h, 0);
    hist_add(h, "execution_started", NULL, NULL, "%s", data);
}

static void record(const hist *h, const char *id)
{
    cr_assert_eq(hist_record(h, st, id, 0, h->n), 0);
}

/* Opens execution `id` at `at` into a new replayer. */
static evs_replay *open_at(const char *id, uint64_t at, int *from_snapshot)
{
    evs_replay *r = hist_replayer();
    evs_error_info info;
    int fs = -1, rc;

    rc = evs_replay_open(r, st, id, strlen(id), at, &fs, &info);
    cr_assert_eq(rc, 0, "evs_replay_open(%s, %llu): %s (%s at %llu: %s)", id,
                 (unsigned long long)at, evs_err_name(rc), info.kind,
                 (unsigned long long)info.sequence, info.msg);
    cr_assert(fs == 0 || fs == 1);
    if (from_snapshot)
        *from_snapshot = fs;
    cr_assert_eq(evs_replay_exec(r)->last_seq,
                 at ? at : (uint64_t)tu_count_events(st, id));
    return r;
}

static const evs_path_state *path(const evs_replay *r, const char *id)
{
    const evs_path_state *p = evs_replay_find_path(r, sp(id));

    cr_assert_not_null(p, "no path %s", id);
    assert_span(p->id, id);
    return p;
}

static const evs_step_state *step(const evs_replay *r, const char *pathid,
                                  const char *name, int64_t it)
{
    const evs_step_state *s = evs_replay_find_step(r, sp(pathid), sp(name), it);

    cr_assert_not_null(s, "no step %s/%s[%lld]", pathid, name, (long long)it);
    assert_span(s->path_id, pathid);
    assert_span(s->name, name);
    cr_assert_eq(s->iteration, it);
    return s;
}

static const evs_var_state *var(const evs_replay *r, const char *name)
{
    const evs_var_state *v = evs_replay_find_var(r, sp(name));

    cr_assert_not_null(v, "no variable %s", name);
    return v;
}

static const evs_each_state *each_of(const evs_replay *r, const char *pathid,
                                     const char *name)
{
    for (size_t i = 0; i < evs_replay_each_count(r); i++) {
        const evs_each_state *e = evs_replay_each(r, i);
        if (evs_span_cstr(pathid).len == e->path_id.len &&
            memcmp(e->path_id.ptr, pathid, e->path_id.len) == 0 &&
            strlen(name) == e->name.len &&
            memcmp(e->name.ptr, name, e->name.len) == 0)
            return e;
    }
    return NULL;
}

/* The failure point as "PATH/STEP@SEQ", with "[IT]" after STEP for an
 * iteration; "" when there is none. In buf[cap]. */
static const char *failure_point(const evs_replay *r, char *buf, size_t cap)
{
    const evs_exec_state *x = evs_replay_exec(r);
    int n;

    buf[0] = '\0';
    if (x->failed_seq == 0 && x->failed_path.len == 0 &&
        x->failed_step.len == 0 && x->failed_iteration == -1)
        return buf;
    n = snprintf(buf, cap, "%.*s/%.*s", (int)x->failed_path.len,
                 x->failed_path.ptr, (int)x->failed_step.len,
                 x->failed_step.ptr);
    if (x->failed_iteration != -1)
        n += snprintf(buf + n, cap - (size_t)n, "[%lld]",
                      (long long)x->failed_iteration);
    snprintf(buf + n, cap - (size_t)n, "@%llu",
             (unsigned long long)x->failed_seq);
    return buf;
}

/* The failure point is `want`, as failure_point writes it. */
static void assert_failure(const evs_replay *r, const char *want)
{
    char got[256];

    cr_assert_str_eq(failure_point(r, got, sizeof(got)), want,
                     "failure point \"%s\", want \"%s\"", got, want);
}

/*
 * What the replay of a recorded execution shows after `at` of its
 * events (0: all of them). A NULL field is not checked.
 */
typedef struct point {
    uint64_t at;
    const char *status;  /* the execution's status, by name */
    const char *path;    /* "ID=STATUS": path ID's status, by name */
    const char *failure; /* the failure point, as failure_point writes it */
} point;

/* Opens execution `id` at p->at and checks what p says; the replayer is
 * the caller's, for more checks. */
static evs_replay *open_check(const char *id, const point *p)
{
    evs_replay *r = open_at(id, p->at, NULL);

    if (p->status)
        cr_assert_str_eq(evs_exec_status_name(evs_replay_exec(r)->status),
                         p->status, "%s at %llu", id,
                         (unsigned long long)p->at);
    if (p->path) {
        const char *eq = strchr(p->path, '=');
        char pid[64];

        cr_assert(eq && (size_t)(eq - p->path) < sizeof(pid));
        snprintf(pid, sizeof(pid), "%.*s", (int)(eq - p->path), p->path);
        cr_assert_str_eq(evs_path_status_name(path(r, pid)->status), eq + 1,
                         "%s at %llu: path %s", id, (unsigned long long)p->at,
                         pid);
    }
    if (p->failure)
        assert_failure(r, p->failure);
    return r;
}

static void check_points(const char *id, const point *pts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        evs_replay_free(open_check(id, &pts[i]));
}

#define CHECK_POINTS(id, pts)                                                  \
    check_points(id, pts, sizeof(pts) / sizeof(pts[0]))

/* Both replayers are in the same state, as the state JSON shows it. */
static void assert_same_state(const evs_replay *a, const evs_replay *b)
{
    char *x = hist_state(a, NULL), *y = hist_state(b, NULL);

    cr_assert_str_eq(x, y);
    free(x);
    free(y);
}

/* Signal i of r, every field but the id in one line, is `want`:
 * "NAME PAYLOAD received R, consumed C by PATH/STEP". */
static void assert_signal(const evs_replay *r, size_t i, const char *want)
{
    const evs_signal_state *g = evs_replay_signal(r, i);
    char got[512];

    cr_assert_not_null(g, "no signal %zu", i);
    snprintf(got, sizeof(got),
             "%.*s %.*s received %llu, consumed %llu by "
             "%.*s/%.*s",
             (int)g->name.len, g->name.ptr, (int)g->payload.len, g->payload.ptr,
             (unsigned long long)g->received_seq,
             (unsigned long long)g->consumed_seq, (int)g->consumed_by_path.len,
             g->consumed_by_path.ptr, (int)g->consumed_by_step.len,
             g->consumed_by_step.ptr);
    cr_assert_str_eq(got, want, "signal %zu", i);
}

/* Timestamp of event `seq` of `id`, as the recorder gave it. */
static int64_t event_time(const char *id, uint64_t seq)
{
    evs_log *log;
    evs_cursor *c;
    evs_event ev;
    int64_t t;

    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &log, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(log, seq, seq, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
    t = ev.timestamp_us;
    evs_cursor_close(c);
    evs_log_close(log);
    return t;
}

/* ------------------------------------------------------------------ */
/* Histories                                                          */
/* ------------------------------------------------------------------ */

Test(replay, a_linear_run_gives_its_outputs_variables_and_sequences)
{
    const evs_exec_state *x;
    const evs_step_state *s;
    const evs_path_state *p;
    evs_replay *r;
    int fs;
    hist h;

    start(&h, "{\"workflow_name\":\"linear\","
              "\"inputs\":{\"n\":1,\"s\":\"x\"}}");
    hist_add(&h, "step_started", NULL, "a",
             "{\"attempt\":1,\"input\":{\"x\":1},\"step_hash\":\"ha\","
             "\"kind\":\"action\"}");
    hist_add(&h, "step_completed", NULL, "a",
             "{\"output\":{\"r\":\"A\",\"list\":[1,2]},"
             "\"stored_variable\":\"va\"}");
    hist_add(&h, "step_started", NULL, "b", "{\"attempt\":1}");
    hist_add(&h, "step_completed", NULL, "b",
             "{\"output\":[1,2.5,-3e2],\"stored_variable\":\"vb\"}");
    hist_add(&h, "step_started", NULL, "c", NULL);
    hist_add(&h, "step_completed", NULL, "c",
             "{\"output\":\"d\\u00e9j\\u00e0 \\\"vu\\\"\","
             "\"stored_variable\":\"vc\"}");
    hist_add(&h, "path_completed", NULL, NULL, NULL);
    hist_add(&h, "execution_completed", NULL, NULL,
             "{\"outputs\":{\"result\":\"ok\",\"n\":3}}");
    record(&h, "lin");

    r = open_at("lin", 0, &fs);
    cr_assert_eq(fs, 0, "the creation snapshot holds no state");
    x = evs_replay_exec(r);
    cr_assert_eq(x->status, EVS_STATUS_COMPLETED);
    cr_assert_str_eq(evs_exec_status_name(x->status), "completed");
    cr_assert_eq(x->last_seq, 9);
    assert_span(x->execution_id, "lin");
    assert_span(x->workflow_name, "linear");
    assert_span(x->inputs, "{\"n\":1,\"s\":\"x\"}");
    assert_span(x->outputs, "{\"result\":\"ok\",\"n\":3}");
    assert_span(x->error, "");
    assert_span(x->continued_as, "");
    cr_assert_eq(x->started_at_us, event_time("lin", 1));
    cr_assert_eq(x->ended_at_us, event_time("lin", 9));
    assert_failure(r, "");

    cr_assert_eq(evs_replay_var_count(r), 3);
    assert_span(evs_replay_var(r, 0)->name, "va");
    assert_span(evs_replay_var(r, 1)->name, "vb");
    assert_span(evs_replay_var(r, 2)->name, "vc");
    assert_span(var(r, "va")->value, "{\"r\":\"A\",\"list\":[1,2]}");
    cr_assert_eq(var(r, "va")->set_seq, 3);
    assert_span(var(r, "vb")->value, "[1,2.5,-3e2]");
    cr_assert_eq(var(r, "vb")->set_seq, 5);
    assert_span(var(r, "vc")->value, "\"d\\u00e9j\\u00e0 \\\"vu\\\"\"");
    cr_assert_eq(var(r, "vc")->set_seq, 7);
    cr_assert_null(evs_replay_find_var(r, sp("vd")));

    cr_assert_eq(evs_replay_step_count(r), 3);
    s = step(r, "main", "a", -1);
    cr_assert_eq(s, evs_replay_step(r, 0));
    cr_assert_eq(s->status, EVS_STEP_COMPLETED);
    cr_assert_eq(s->attempts, 1);
    assert_span(s->input, "{\"x\":1}");
    assert_span(s->output, "{\"r\":\"A\",\"list\":[1,2]}");
    assert_span(s->error, "");
    assert_span(s->stored_variable, "va");
    assert_span(s->step_hash, "ha");
    assert_span(s->kind, "action");
    cr_assert_eq(s->started_seq, 2);
    cr_assert_eq(s->ended_seq, 3);
    s = step(r, "main", "c", -1);
    cr_assert_eq(s, evs_replay_step(r, 2));
    assert_span(s->input, "");
    assert_span(s->kind, "");
    cr_assert_eq(s->started_seq, 6);
    cr_assert_eq(s->ended_seq, 7);
    cr_assert_null(evs_replay_find_step(r, sp("main"), sp("a"), 0));
    cr_assert_null(evs_replay_step(r, 3));

    cr_assert_eq(evs_replay_path_count(r), 1);
    p = path(r, "main");
    cr_assert_eq(p, evs_replay_path(r, 0));
    cr_assert_eq(p->status, EVS_PATH_COMPLETED);
    assert_span(p->parent, "");
    assert_span(p->current_step, "c");
    cr_assert_eq(p->started_seq, 1);
    cr_assert_eq(p->ended_seq, 8);
    cr_assert_eq(evs_replay_each_count(r), 0);
    cr_assert_eq(evs_replay_signal_count(r), 0);
    cr_assert_eq(evs_replay_timer_count(r), 0);
    cr_assert_eq(evs_replay_wait_count(r), 0);
    cr_assert_eq(evs_replay_version_count(r), 0);
    evs_replay_free(r);

    /* Stopped after step b: running, two variables. */
    r = open_at("lin", 5, NULL);
    x = evs_replay_exec(r);
    cr_assert_eq(x->status, EVS_STATUS_RUNNING);
    cr_assert_eq(x->last_seq, 5);
    assert_span(x->outputs, "");
    cr_assert_eq(x->ended_at_us, 0);
    cr_assert_eq(evs_replay_var_count(r), 2);
    cr_assert_eq(path(r, "main")->status, EVS_PATH_ACTIVE);
    assert_span(path(r, "main")->current_step, "b");
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, branching_creates_paths_with_parents_and_the_brancher_goes_on)
{
    static const char *const ids[] = {"main", "p1", "p2", "p3"};
    const evs_path_state *p;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"fan\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "fan", NULL);
    hist_add(&h, "step_completed", NULL, "fan", "{\"output\":3}");
    hist_add(&h, "path_branched", NULL, "fan",
             "{\"new_paths\":[{\"id\":\"p1\",\"current_step\":\"s1\"},"
             "{\"id\":\"p2\",\"current_step\":\"s2\"},"
             "{\"id\":\"p3\",\"current_step\":\"s3\"}]}");
    hist_add(&h, "path_started", "p1", NULL,
             "{\"parent\":\"main\",\"current_step\":\"s1\"}");
    hist_add(&h, "step_started", "p1", "s1", NULL); /* 6 */
    hist_add(&h, "step_completed", "p1", "s1", "{\"output\":1}");
    hist_add(&h, "step_started", "p2", "s2", NULL); /* 8 */
    hist_add(&h, "step_failed", "p2", "s2",
             "{\"error\":{\"type\":\"E\",\"message\":\"m\"}}");
    hist_add(&h, "path_failed", "p2", NULL, "{\"error\":{\"type\":\"E\"}}");
    hist_add(&h, "step_started", "p3", "s3", NULL); /* 11 */
    hist_add(&h, "path_completed", "p1", NULL, NULL);
    hist_add(&h, "step_started", NULL, "join", "{\"kind\":\"join\"}");
    record(&h, "fan");

    /* Right after the branch: every new path active at its first step. */
    r = open_at("fan", 4, NULL);
    cr_assert_eq(evs_replay_path_count(r), 4);
    for (size_t i = 0; i < 4; i++)
        assert_span(evs_replay_path(r, i)->id, ids[i]);
    for (size_t i = 1; i < 4; i++) {
        char want[4];
        p = evs_replay_path(r, i);
        snprintf(want, sizeof(want), "s%zu", i);
        assert_span(p->parent, "main");
        assert_span(p->current_step, want);
        cr_assert_eq(p->status, EVS_PATH_ACTIVE);
        cr_assert_eq(p->started_seq, 4);
        cr_assert_eq(p->ended_seq, 0);
    }
    assert_span(path(r, "main")->current_step, "fan");
    cr_assert_eq(path(r, "main")->status, EVS_PATH_ACTIVE);
    evs_replay_free(r);

    r = open_at("fan", 0, NULL);
    cr_assert_eq(evs_replay_path_count(r), 4);
    p = path(r, "main");
    cr_assert_eq(p->status, EVS_PATH_ACTIVE);
    assert_span(p->current_step, "join");
    assert_span(p->parent, "");
    p = path(r, "p1");
    cr_assert_eq(p->status, EVS_PATH_COMPLETED);
    assert_span(p->current_step, "s1");
    cr_assert_eq(p->started_seq, 4, "path_started only confirms the path");
    cr_assert_eq(p->ended_seq, 12);
    p = path(r, "p2");
    cr_assert_eq(p->status, EVS_PATH_FAILED);
    assert_span(p->error, "{\"type\":\"E\"}");
    assert_span(p->current_step, "s2");
    cr_assert_eq(p->ended_seq, 10);
    p = path(r, "p3");
    cr_assert_eq(p->status, EVS_PATH_ACTIVE);
    assert_span(p->current_step, "s3");
    cr_assert_eq(p->ended_seq, 0);
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_RUNNING);
    assert_failure(r, "p2/s2@9");
    assert_span(step(r, "p2", "s2", -1)->error,
                "{\"type\":\"E\",\"message\":\"m\"}");
    cr_assert_eq(step(r, "p2", "s2", -1)->status, EVS_STEP_FAILED);
    cr_assert_eq(step(r, "p3", "s3", -1)->status, EVS_STEP_RUNNING);
    cr_assert_eq(step(r, "main", "join", -1)->status, EVS_STEP_RUNNING);
    assert_span(step(r, "main", "join", -1)->kind, "join");
    cr_assert_null(evs_replay_find_path(r, sp("p4")));
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, a_branch_into_two_hundred_paths_keeps_every_path_right)
{
    enum { N = 200 };
    char *data = malloc(N * 48 + 32), name[16], out[32];
    const evs_path_state *p;
    const evs_step_state *s;
    size_t len = 0;
    evs_replay *r;
    hist h;

    cr_assert_not_null(data);
    start(&h, "{\"workflow_name\":\"wide\",\"inputs\":{}}");
    len += (size_t)sprintf(data + len, "{\"new_paths\":[");
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(data + len,
                               "%s{\"id\":\"b%03d\",\"current_step\":\"w\"}",
                               i ? "," : "", i);
    sprintf(data + len, "]}");
    hist_add(&h, "path_branched", NULL, "split", "%s", data);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "b%03d", i);
        hist_add(&h, "step_started", name, "w", NULL);
        hist_add(&h, "step_completed", name, "w", "{\"output\":%d}", i);
        if (i % 3 != 2)
            hist_add(&h, "path_completed", name, NULL, NULL);
    }
    hist_add(&h, "step_started", NULL, "join", "{\"kind\":\"join\"}");
    hist_add(&h, "step_completed", NULL, "join", "{\"output\":%d}", N);
    record(&h, "wide");

    r = open_at("wide", 0, NULL);
    cr_assert_eq(evs_replay_path_count(r), N + 1);
    cr_assert_eq(evs_replay_step_count(r), N + 1);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "b%03d", i);
        p = path(r, name);
        cr_assert_eq(p, evs_replay_path(r, (size_t)i + 1));
        assert_span(p->parent, "main");
        assert_span(p->current_step, "w");
        cr_assert_eq(p->started_seq, 2);
        cr_assert_eq(p->status,
                     i % 3 != 2 ? EVS_PATH_COMPLETED : EVS_PATH_ACTIVE,
                     "path %s", name);
        s = step(r, name, "w", -1);
        cr_assert_eq(s->status, EVS_STEP_COMPLETED);
        snprintf(out, sizeof(out), "%d", i);
        assert_span(s->output, out);
    }
    p = path(r, "main");
    cr_assert_eq(p->status, EVS_PATH_ACTIVE);
    assert_span(p->current_step, "join");
    assert_span(step(r, "main", "join", -1)->output, "200");
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_RUNNING);
    evs_replay_free(r);
    free(data);
    hist_free(&h);
}

/* Each progress after each event of the `each` history below. */
static void check_each_at(uint64_t n, int64_t done, const char *running)
{
    evs_replay *r = open_at("each", n, NULL);
    const evs_each_state *e = each_of(r, "main", "fanout");

    cr_assert_not_null(e, "at %llu: no each progress", (unsigned long long)n);
    cr_assert_eq(e->count, 5);
    cr_assert_eq(e->done, done, "at %llu: done %lld, want %lld",
                 (unsigned long long)n, (long long)e->done, (long long)done);
    cr_assert_eq(evs_replay_each_count(r), 1);
    for (int64_t i = 0; i < 5; i++) {
        const evs_step_state *s =
            evs_replay_find_step(r, sp("main"), sp("fanout"), i);
        if (running[i] == '-') {
            cr_assert_null(s, "at %llu: iteration %lld exists",
                           (unsigned long long)n, (long long)i);
            continue;
        }
        cr_assert_not_null(s, "at %llu: no iteration %lld",
                           (unsigned long long)n, (long long)i);
        cr_assert_eq(s->status,
                     running[i] == 'r'   ? EVS_STEP_RUNNING
                     : running[i] == 'c' ? EVS_STEP_COMPLETED
                     : running[i] == 'f' ? EVS_STEP_FAILED
                                         : EVS_STEP_SKIPPED,
                     "at %llu: iteration %lld is %s", (unsigned long long)n,
                     (long long)i, evs_step_status_name(s->status));
    }
    evs_replay_free(r);
}

Test(replay, each_iterations_count_their_progress_at_every_point)
{
    const evs_replay *rr;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"each\","
              "\"inputs\":{\"items\":[1,2,3,4,5]}}");
    hist_add(&h, "step_started", NULL, "fanout",
             "{\"iteration\":0,\"count\":5}"); /* 2 */
    hist_add(&h, "step_started", NULL, "fanout",
             "{\"iteration\":1,\"count\":5}"); /* 3 */
    hist_add(&h, "step_completed", NULL, "fanout",
             "{\"iteration\":0,\"output\":\"r0\"}"); /* 4 */
    hist_add(&h, "step_started", NULL, "fanout",
             "{\"iteration\":2,\"count\":5}"); /* 5 */
    hist_add(&h, "step_completed", NULL, "fanout",
             "{\"iteration\":1,\"output\":\"r1\"}"); /* 6 */
    hist_add(&h, "step_failed", NULL, "fanout",
             "{\"iteration\":2,\"error\":\"bad item\"}"); /* 7 */
    hist_add(&h, "step_started", NULL, "fanout",
             "{\"iteration\":3,\"count\":5}"); /* 8 */
    hist_add(&h, "step_completed", NULL, "fanout",
             "{\"iteration\":3,\"output\":\"r3\"}"); /* 9 */
    hist_add(&h, "step_started", NULL, "fanout",
             "{\"iteration\":4,\"count\":5}"); /* 10 */
    hist_add(&h, "step_skipped", NULL, "fanout",
             "{\"iteration\":2,\"output\":\"default\"}"); /* 11 */
    hist_add(&h, "step_completed", NULL, "fanout",
             "{\"iteration\":4,\"output\":\"r4\"}"); /* 12 */
    record(&h, "each");

    r = open_at("each", 1, NULL);
    cr_assert_eq(evs_replay_each_count(r), 0);
    evs_replay_free(r);
    check_each_at(2, 0, "r----");
    check_each_at(3, 0, "rr---");
    check_each_at(4, 1, "cr---");
    check_each_at(6, 2, "ccr--");
    check_each_at(7, 2, "ccf--");
    check_each_at(8, 2, "ccfr-");
    check_each_at(9, 3, "ccfc-");
    check_each_at(11, 4, "ccscr");
    check_each_at(12, 5, "ccscc");

    r = open_at("each", 7, NULL);
    assert_failure(r, "main/fanout[2]@7");
    assert_span(step(r, "main", "fanout", 2)->error, "\"bad item\"");
    evs_replay_free(r);

    r = open_at("each", 0, NULL);
    rr = r;
    assert_failure(rr, "");
    assert_span(step(rr, "main", "fanout", 0)->output, "\"r0\"");
    assert_span(step(rr, "main", "fanout", 2)->output, "\"default\"");
    assert_span(step(rr, "main", "fanout", 2)->error, "\"bad item\"");
    cr_assert_eq(step(rr, "main", "fanout", 2)->ended_seq, 11);
    cr_assert_null(evs_replay_find_step(rr, sp("main"), sp("fanout"), -1));
    cr_assert_null(evs_replay_find_step(rr, sp("main"), sp("fanout"), 5));
    cr_assert_eq(evs_replay_step_count(rr), 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(evs_replay_step(rr, i)->iteration, (int64_t)i);
    assert_span(path(rr, "main")->current_step, "fanout");
    evs_replay_free(r);
    hist_free(&h);
}

/* Iterations below 65536 are found through a per-step array, larger
 * ones through the step index (replay_int.h): both, sparse, out of
 * order, on two paths with the same step name, and after a round trip
 * through the state JSON. */
Test(replay, sparse_and_huge_iteration_numbers_are_all_found)
{
    static const int64_t its[] = {
        3, 70000, 0, 65535, 65536, INT64_C(4000000000), 1};
    const size_t nits = sizeof(its) / sizeof(its[0]);
    evs_replay *r = hist_replayer(), *r2 = hist_replayer();
    evs_error_info v;
    char *json;
    size_t len;
    hist h;

    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    hist_add(&h, "path_branched", NULL, NULL,
             "{\"new_paths\":[{\"id\":\"b\"}]}");
    for (size_t i = 0; i < nits; i++) {
        hist_add(&h, "step_started", NULL, "fan", "{\"iteration\":%lld}",
                 (long long)its[i]);
        hist_add(&h, "step_completed", NULL, "fan",
                 "{\"iteration\":%lld,\"output\":%zu}", (long long)its[i], i);
        hist_add(&h, "step_started", "b", "fan", "{\"iteration\":%lld}",
                 (long long)its[i]);
    }
    cr_assert_eq(hist_apply(r, &h, 0, h.n, &v), 0, "%s", v.msg);
    json = hist_state(r, &len);
    cr_assert_eq(evs_replay_load_state(r2, json, len), 0);
    for (int k = 0; k < 2; k++) {
        const evs_replay *x = k ? r2 : r;
        cr_assert_eq(evs_replay_step_count(x), 2 * nits);
        for (size_t i = 0; i < nits; i++) {
            char out[24];
            const evs_step_state *m = step(x, "main", "fan", its[i]);
            const evs_step_state *b = step(x, "b", "fan", its[i]);
            snprintf(out, sizeof(out), "%zu", i);
            assert_span(m->output, out);
            cr_assert_eq(m->status, EVS_STEP_COMPLETED);
            cr_assert_eq(b->status, EVS_STEP_RUNNING);
        }
        for (int64_t it = 2; it < 8; it++)
            cr_assert_null(evs_replay_find_step(x, sp("main"), sp("fan"),
                                                it == 3 ? 69999 : it));
        cr_assert_null(evs_replay_find_step(x, sp("main"), sp("fan"),
                                            INT64_C(3999999999)));
        cr_assert_null(evs_replay_find_step(x, sp("main"), sp("fan"), -1));
        cr_assert_null(evs_replay_find_step(x, sp("c"), sp("fan"), 0));
    }
    /* A step restarted after it completed is refused at any iteration. */
    hist_add(&h, "step_started", NULL, "fan", "{\"iteration\":70000}");
    cr_assert_eq(hist_apply(r, &h, h.n - 1, h.n, &v), EVS_EHISTORY);
    cr_assert_str_eq(v.kind, "step-restarted");
    free(json);
    evs_replay_free(r);
    evs_replay_free(r2);
    hist_free(&h);
}

Test(replay, a_step_that_fails_after_a_retry_is_the_failure_point)
{
    const evs_exec_state *x;
    const evs_step_state *s;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"flaky\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "call", "{\"attempt\":1}");
    hist_add(&h, "step_failed", NULL, "call",
             "{\"error\":{\"type\":\"Timeout\",\"message\":\"slow\","
             "\"retryable\":true}}");
    hist_add(&h, "retry_scheduled", NULL, "call",
             "{\"fire_at\":\"2026-11-22T10:15:31.000000Z\",\"attempt\":2}");
    hist_add(&h, "step_started", NULL, "call", "{\"attempt\":2}");
    hist_add(&h, "step_failed", NULL, "call",
             "{\"error\":{\"type\":\"Fatal\",\"message\":\"no\","
             "\"retryable\":false}}");
    hist_add(&h, "path_failed", NULL, NULL, "{\"error\":{\"type\":\"Fatal\"}}");
    hist_add(&h, "execution_failed", NULL, NULL,
             "{\"error\":{\"type\":\"Fatal\",\"message\":\"no\"}}");
    record(&h, "flaky");

    r = open_check("flaky", &(point){3, NULL, NULL, "main/call@3"});
    s = step(r, "main", "call", -1);
    cr_assert_eq(s->status, EVS_STEP_FAILED);
    cr_assert_eq(s->attempts, 1);
    assert_span(s->error, "{\"type\":\"Timeout\",\"message\":\"slow\","
                          "\"retryable\":true}");
    cr_assert_eq(s->ended_seq, 3);
    evs_replay_free(r);

    /* Waiting: every live path waits. */
    r = open_check("flaky", &(point){4, "waiting", "main=waiting", ""});
    s = step(r, "main", "call", -1);
    cr_assert_eq(s->status, EVS_STEP_RETRYING);
    cr_assert_eq(s->retry_at_us, ts("2026-11-22T10:15:31.000000Z"));
    evs_replay_free(r);

    r = open_check("flaky", &(point){5, "running", "main=active", NULL});
    s = step(r, "main", "call", -1);
    cr_assert_eq(s->status, EVS_STEP_RUNNING);
    cr_assert_eq(s->attempts, 2);
    cr_assert_eq(s->retry_at_us, 0);
    cr_assert_eq(s->started_seq, 5);
    cr_assert_eq(s->ended_seq, 0);
    evs_replay_free(r);

    r = open_check("flaky", &(point){6, "running", NULL, "main/call@6"});
    cr_assert_eq(step(r, "main", "call", -1)->attempts, 2);
    assert_span(step(r, "main", "call", -1)->error,
                "{\"type\":\"Fatal\",\"message\":\"no\",\"retryable\":false}");
    evs_replay_free(r);

    r = open_check("flaky",
                   &(point){0, "failed", "main=failed", "main/call@6"});
    x = evs_replay_exec(r);
    assert_span(x->error, "{\"type\":\"Fatal\",\"message\":\"no\"}");
    cr_assert_eq(x->ended_at_us, event_time("flaky", 8));
    assert_span(path(r, "main")->error, "{\"type\":\"Fatal\"}");
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, a_retry_that_succeeds_clears_the_failure_point)
{
    const evs_step_state *s;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"ok\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "call", NULL);
    hist_add(&h, "step_failed", NULL, "call", "{\"error\":\"E\"}");
    hist_add(&h, "retry_scheduled", NULL, "call", "{\"delay_ms\":1500}");
    hist_add(&h, "step_started", NULL, "call", NULL);
    hist_add(&h, "step_completed", NULL, "call", "{\"output\":\"ok\"}");
    hist_add(&h, "execution_completed", NULL, NULL, "{\"outputs\":\"ok\"}");
    record(&h, "ok");

    r = open_at("ok", 4, NULL);
    s = step(r, "main", "call", -1);
    cr_assert_eq(s->status, EVS_STEP_RETRYING);
    cr_assert_eq(s->retry_at_us, event_time("ok", 4) + 1500000,
                 "delay_ms counts from the retry_scheduled event");
    assert_failure(r, "");
    evs_replay_free(r);

    r = open_at("ok", 0, NULL);
    s = step(r, "main", "call", -1);
    cr_assert_eq(s->status, EVS_STEP_COMPLETED);
    cr_assert_eq(s->attempts, 2);
    assert_span(s->output, "\"ok\"");
    assert_span(s->error, "\"E\""); /* the last failure's */
    assert_failure(r, "");
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_COMPLETED);
    assert_span(evs_replay_exec(r)->outputs, "\"ok\"");
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, the_failure_point_goes_back_to_an_earlier_failure_still_standing)
{
    static const point points[] = {
        {6, NULL, NULL, "b/y@6"},      {7, NULL, NULL, "main/x@4"},
        {9, NULL, NULL, "main/x@4"},   {10, NULL, NULL, ""},
        {12, NULL, NULL, "main/x@12"},
    };
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"two\",\"inputs\":{}}");
    hist_add(&h, "path_branched", NULL, NULL,
             "{\"new_paths\":[{\"id\":\"b\"}]}");
    hist_add(&h, "step_started", NULL, "x", NULL);                   /* 3 */
    hist_add(&h, "step_failed", NULL, "x", "{\"error\":\"E1\"}");    /* 4 */
    hist_add(&h, "step_started", "b", "y", NULL);                    /* 5 */
    hist_add(&h, "step_failed", "b", "y", "{\"error\":\"E2\"}");     /* 6 */
    hist_add(&h, "retry_scheduled", "b", "y", "{\"delay_ms\":10}");  /* 7 */
    hist_add(&h, "step_started", "b", "y", NULL);                    /* 8 */
    hist_add(&h, "step_completed", "b", "y", NULL);                  /* 9 */
    hist_add(&h, "retry_scheduled", NULL, "x", "{\"delay_ms\":10}"); /* 10 */
    hist_add(&h, "step_started", NULL, "x", NULL);                   /* 11 */
    hist_add(&h, "step_failed", NULL, "x", "{\"error\":\"E3\"}");    /* 12 */
    hist_add(&h, "step_started", NULL, "x", NULL);                   /* 13 */
    record(&h, "two");

    CHECK_POINTS("two", points);
    /* Started again without a retry: no longer failed. */
    r = open_check("two", &(point){13, NULL, NULL, ""});
    cr_assert_eq(step(r, "main", "x", -1)->attempts, 3);
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, skipping_another_iteration_keeps_the_failure_point)
{
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"skip\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "e", "{\"iteration\":0,\"count\":2}");
    hist_add(&h, "step_failed", NULL, "e",
             "{\"iteration\":0,\"error\":\"E\"}"); /* 3 */
    hist_add(&h, "step_skipped", NULL, "e",
             "{\"iteration\":1,\"output\":null}"); /* 4 */
    hist_add(&h, "step_skipped", NULL, "e",
             "{\"iteration\":0,\"output\":\"d\"}"); /* 5 */
    hist_add(&h, "step_skipped", NULL, "e",
             "{\"iteration\":1,\"output\":\"again\"}"); /* 6 */
    record(&h, "skip");

    r = open_at("skip", 4, NULL);
    assert_failure(r, "main/e[0]@3");
    cr_assert_eq(step(r, "main", "e", 1)->status, EVS_STEP_SKIPPED);
    assert_span(step(r, "main", "e", 1)->output, "");
    cr_assert_eq(each_of(r, "main", "e")->done, 1);
    evs_replay_free(r);
    r = open_at("skip", 5, NULL);
    assert_failure(r, "");
    cr_assert_eq(each_of(r, "main", "e")->done, 2);
    evs_replay_free(r);
    /* Skipping an iteration already skipped does not count it twice. */
    r = open_at("skip", 6, NULL);
    cr_assert_eq(each_of(r, "main", "e")->done, 2);
    cr_assert_eq(each_of(r, "main", "e")->count, 2);
    assert_span(step(r, "main", "e", 1)->output, "\"again\"");
    cr_assert_eq(step(r, "main", "e", 1)->ended_seq, 6);
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, signals_are_buffered_then_consumed_by_the_wait_that_takes_them)
{
    const evs_wait_state *w;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"sig\",\"inputs\":{}}");
    hist_add(&h, "signal_received", NULL, NULL,
             "{\"signal\":\"approve\","
             "\"payload\":{\"ok\":true,\"by\":\"ann\"}}");
    hist_add(&h, "step_started", NULL, "gate", "{\"kind\":\"wait_event\"}");
    hist_add(&h, "wait_started", NULL, "gate",
             "{\"signal\":\"approve\","
             "\"timeout_at\":\"2026-11-22T11:00:00.000000Z\"}");    /* 4 */
    hist_add(&h, "wait_ended", NULL, "gate", "{\"signal_seq\":2}"); /* 5 */
    hist_add(&h, "step_completed", NULL, "gate", "{\"output\":{\"ok\":true}}");
    hist_add(&h, "step_started", NULL, "gate2", NULL);
    hist_add(&h, "wait_started", NULL, "gate2",
             "{\"signal\":\"second\","
             "\"timeout_at\":\"2026-11-22T11:05:00.000000Z\"}"); /* 8 */
    hist_add(&h, "wait_ended", NULL, "gate2", "{\"timed_out\":true}");
    hist_add(&h, "signal_received", NULL, NULL,
             "{\"name\":\"late\",\"payload\":1}");       /* 10 */
    hist_add(&h, "signal_received", NULL, "hook", NULL); /* 11 */
    hist_add(&h, "signal_consumed", NULL, "after", "{\"signal_seq\":10}");
    record(&h, "sig");

    r = open_at("sig", 2, NULL);
    cr_assert_eq(evs_replay_signal_count(r), 1);
    assert_signal(r, 0,
                  "approve {\"ok\":true,\"by\":\"ann\"} received 2, "
                  "consumed 0 by /");
    cr_assert_eq(evs_replay_signal(r, 0)->id.len, EVS_UUID_LEN,
                 "the receiving event's id");
    evs_replay_free(r);

    r = open_check("sig", &(point){4, "waiting", "main=waiting", NULL});
    /* Still buffered while waited for. */
    assert_signal(r, 0,
                  "approve {\"ok\":true,\"by\":\"ann\"} received 2, "
                  "consumed 0 by /");
    cr_assert_eq(evs_replay_wait_count(r), 1);
    w = evs_replay_wait(r, 0);
    assert_span(w->path_id, "main");
    assert_span(w->step, "gate");
    assert_span(w->signal, "approve");
    cr_assert_eq(w->timeout_at_us, ts("2026-11-22T11:00:00.000000Z"));
    cr_assert_eq(w->started_seq, 4);
    cr_assert_eq(w->ended_seq, 0);
    evs_replay_free(r);

    r = open_check("sig", &(point){5, "running", "main=active", NULL});
    assert_signal(r, 0,
                  "approve {\"ok\":true,\"by\":\"ann\"} received 2, "
                  "consumed 5 by main/gate");
    w = evs_replay_wait(r, 0);
    cr_assert_eq(w->ended_seq, 5);
    cr_assert_eq(w->signal_seq, 2);
    cr_assert_eq(w->timed_out, 0);
    evs_replay_free(r);

    r = open_at("sig", 0, NULL);
    cr_assert_eq(evs_replay_wait_count(r), 2);
    w = evs_replay_wait(r, 1);
    assert_span(w->step, "gate2");
    assert_span(w->signal, "second");
    cr_assert_eq(w->timed_out, 1);
    cr_assert_eq(w->signal_seq, 0);
    cr_assert_eq(w->started_seq, 8);
    cr_assert_eq(w->ended_seq, 9);
    cr_assert_eq(evs_replay_signal_count(r), 3);
    assert_signal(r, 1, "late 1 received 10, consumed 12 by main/after");
    /* No name: the step's. */
    assert_signal(r, 2, "hook  received 11, consumed 0 by /");
    cr_assert_eq(path(r, "main")->status, EVS_PATH_ACTIVE);
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, timers_hold_their_path_until_they_fire_or_are_cancelled)
{
    static const point points[] = {
        /* One path waits, one does not: running. */
        {7, "running", "p1=waiting", NULL},
        {7, "running", "main=active", NULL},
        {8, "waiting", "main=waiting", NULL},
    };
    const evs_timer_state *t;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"nap\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "nap", "{\"kind\":\"sleep\"}");
    hist_add(&h, "timer_started", NULL, "nap",
             "{\"timer_id\":\"t1\","
             "\"fire_at\":\"2026-11-22T10:20:00.000000Z\"}"); /* 3 */
    hist_add(&h, "timer_fired", NULL, "nap", "{\"timer_id\":\"t1\"}");
    hist_add(&h, "step_completed", NULL, "nap", NULL);
    hist_add(&h, "path_branched", NULL, NULL,
             "{\"new_paths\":[{\"id\":\"p1\",\"current_step\":\"s\"}]}");
    hist_add(&h, "timer_started", "p1", "s",
             "{\"timer_id\":\"t2\","
             "\"fire_at\":\"2026-11-22T10:30:00.000000Z\"}"); /* 7 */
    hist_add(&h, "timer_started", NULL, "s2",
             "{\"timer_id\":\"t3\","
             "\"fire_at\":\"2026-11-22T10:40:00.000000Z\"}"); /* 8 */
    hist_add(&h, "timer_cancelled", NULL, "s2", "{\"timer_id\":\"t3\"}");
    record(&h, "nap");

    r = open_check("nap", &(point){3, "waiting", "main=waiting", NULL});
    cr_assert_eq(evs_replay_timer_count(r), 1);
    t = evs_replay_timer(r, 0);
    assert_span(t->timer_id, "t1");
    assert_span(t->path_id, "main");
    assert_span(t->step, "nap");
    cr_assert_eq(t->fire_at_us, ts("2026-11-22T10:20:00.000000Z"));
    cr_assert_eq(t->started_seq, 3);
    cr_assert_eq(t->fired_seq, 0);
    cr_assert_eq(t->cancelled, 0);
    evs_replay_free(r);
    r = open_check("nap", &(point){4, "running", "main=active", NULL});
    cr_assert_eq(evs_replay_timer(r, 0)->fired_seq, 4);
    evs_replay_free(r);
    CHECK_POINTS("nap", points);

    r = open_check("nap", &(point){0, "running", "p1=waiting", NULL});
    cr_assert_eq(evs_replay_timer_count(r), 3);
    t = evs_replay_timer(r, 2);
    assert_span(t->timer_id, "t3");
    cr_assert_eq(t->cancelled, 1);
    cr_assert_eq(t->fired_seq, 0);
    t = evs_replay_timer(r, 1);
    assert_span(t->timer_id, "t2");
    assert_span(t->path_id, "p1");
    cr_assert_eq(t->cancelled, 0);
    cr_assert_eq(t->fired_seq, 0);
    cr_assert_eq(t->fire_at_us, ts("2026-11-22T10:30:00.000000Z"));
    cr_assert_eq(path(r, "main")->status, EVS_PATH_ACTIVE);
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, version_decisions_are_found_by_change_id)
{
    const evs_version_state *v;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"ver\",\"inputs\":{}}");
    hist_add(&h, "version_decision", NULL, NULL,
             "{\"change_id\":\"fix-1\",\"version\":2,\"min\":1,\"max\":3}");
    hist_add(&h, "step_started", NULL, "a", NULL);
    hist_add(&h, "version_decision", NULL, NULL,
             "{\"change_id\":\"c2\",\"version\":0}");
    record(&h, "ver");

    r = open_at("ver", 0, NULL);
    cr_assert_eq(evs_replay_version_count(r), 2);
    v = evs_replay_find_version(r, sp("fix-1"));
    cr_assert_not_null(v);
    cr_assert_eq(v, evs_replay_version(r, 0));
    assert_span(v->change_id, "fix-1");
    cr_assert_eq(v->version, 2);
    cr_assert_eq(v->min, 1);
    cr_assert_eq(v->max, 3);
    cr_assert_eq(v->seq, 2);
    v = evs_replay_find_version(r, sp("c2"));
    cr_assert_not_null(v);
    cr_assert_eq(v->version, 0);
    cr_assert_eq(v->min, 0);
    cr_assert_eq(v->max, 0);
    cr_assert_eq(v->seq, 4);
    cr_assert_null(evs_replay_find_version(r, sp("fix-2")));
    cr_assert_null(evs_replay_find_version(r, sp("fix")));
    evs_replay_free(r);
    hist_free(&h);
}

Test(replay, pause_resume_and_terminate_move_the_status)
{
    static const point points[] = {
        {4, "running", NULL, NULL},
        {5, "waiting", NULL, NULL},
        /* A timer that fires while paused frees its path; still paused. */
        {7, "paused", "main=active", NULL},
        {8, "running", NULL, NULL},
    };
    const evs_exec_state *x;
    evs_replay *r;
    hist h;

    start(&h, "{\"workflow_name\":\"ops\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "a", NULL);
    hist_add(&h, "execution_paused", NULL, NULL, "{\"reason\":\"ops\"}");
    hist_add(&h, "execution_resumed", NULL, NULL, NULL);
    hist_add(&h, "timer_started", NULL, "a", "{\"timer_id\":\"t\"}"); /* 5 */
    hist_add(&h, "execution_paused", NULL, NULL, NULL);               /* 6 */
    hist_add(&h, "timer_fired", NULL, "a", "{\"timer_id\":\"t\"}");   /* 7 */
    hist_add(&h, "execution_resumed", NULL, NULL, NULL);              /* 8 */
    hist_add(&h, "execution_terminated", NULL, NULL,
             "{\"reason\":\"stopped by operator\"}");
    record(&h, "ops");

    r = open_at("ops", 3, NULL);
    x = evs_replay_exec(r);
    cr_assert_eq(x->status, EVS_STATUS_PAUSED);
    cr_assert_str_eq(evs_exec_status_name(x->status), "paused");
    cr_assert_eq(x->status_before_pause, EVS_STATUS_RUNNING);
    /* Written before `by` was: the reason and the step, no one. */
    cr_assert_eq(x->paused.seq, 3);
    cr_assert_eq(x->paused.at_us, event_time("ops", 3));
    assert_span(x->paused.reason, "\"ops\"");
    assert_span(x->paused.step, "a");
    cr_assert_eq(x->paused.by.len, 0);
    cr_assert_eq(x->resumed.seq, 0);
    evs_replay_free(r);
    r = open_check("ops", &(point){6, "paused", NULL, NULL});
    cr_assert_eq(evs_replay_exec(r)->status_before_pause, EVS_STATUS_WAITING);
    evs_replay_free(r);
    CHECK_POINTS("ops", points);
    r = open_at("ops", 0, NULL);
    x = evs_replay_exec(r);
    cr_assert_eq(x->status, EVS_STATUS_TERMINATED);
    assert_span(x->error, "\"stopped by operator\"");
    cr_assert_eq(x->ended_at_us, event_time("ops", 9));
    /* The last pause and unpause, with no data at all, and the end. */
    cr_assert_eq(x->paused.seq, 6);
    cr_assert_eq(x->paused.reason.len, 0);
    cr_assert_eq(x->resumed.seq, 8);
    cr_assert_eq(x->resumed.by.len, 0);
    cr_assert_eq(x->terminated.seq, 9);
    assert_span(x->terminated.reason, "\"stopped by operator\"");
    evs_replay_free(r);
    hist_free(&h);

    /* Written with who asked: kept, the last of each. */
    start(&h, "{\"workflow_name\":\"who\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "a", NULL);
    hist_add(&h, "execution_paused", NULL, NULL,
             "{\"reason\":\"one\",\"by\":\"ann\"}"); /* 3 */
    hist_add(&h, "execution_resumed", NULL, NULL,
             "{\"reason\":null,\"by\":\"bo\\u0062\"}"); /* 4 */
    hist_add(&h, "execution_paused", NULL, NULL,
             "{\"reason\":{\"k\":[1]},\"by\":\"cy\"}"); /* 5 */
    hist_add(&h, "execution_terminated", NULL, NULL,
             "{\"reason\":\"end\",\"by\":null}"); /* 6 */
    record(&h, "who");
    r = open_at("who", 0, NULL);
    x = evs_replay_exec(r);
    cr_assert_eq(x->paused.seq, 5);
    assert_span(x->paused.by, "cy");
    assert_span(x->paused.reason, "{\"k\":[1]}");
    assert_span(x->paused.step, "a");
    cr_assert_eq(x->resumed.seq, 4);
    assert_span(x->resumed.by, "bob"); /* unescaped */
    cr_assert_eq(x->resumed.reason.len, 0);
    cr_assert_eq(x->resumed.step.len, 0);
    cr_assert_eq(x->terminated.seq, 6);
    cr_assert_eq(x->terminated.at_us, event_time("who", 6));
    cr_assert_eq(x->terminated.by.len, 0);
    assert_span(x->terminated.reason, "\"end\"");
    evs_replay_free(r);
    hist_free(&h);

    /* Resumed while still waiting: waiting again; then continued. */
    start(&h, "{\"workflow_name\":\"can\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "a", NULL);
    hist_add(&h, "timer_started", NULL, "a", "{\"timer_id\":\"t\"}");
    hist_add(&h, "execution_paused", NULL, NULL, NULL);
    hist_add(&h, "execution_resumed", NULL, NULL, NULL); /* 5 */
    hist_add(&h, "execution_continue_as_new", NULL, NULL,
             "{\"successor\":\"can-2\"}");
    record(&h, "can");
    check_points("can", &(point){5, "waiting", NULL, NULL}, 1);
    r = open_at("can", 0, NULL);
    x = evs_replay_exec(r);
    cr_assert_eq(x->status, EVS_STATUS_CONTINUED);
    cr_assert_str_eq(evs_exec_status_name(x->status), "continued");
    assert_span(x->continued_as, "can-2");
    cr_assert_eq(x->ended_at_us, event_time("can", 6));
    evs_replay_free(r);
    hist_free(&h);
}

/* The failing history, applied one event at a time from a cursor. */
Test(replay, applying_one_event_at_a_time_shows_each_step_of_the_way)
{
    evs_replay *r = hist_replayer(), *all;
    evs_log *log;
    evs_cursor *c;
    evs_event ev;
    evs_error_info v;
    int rc;
    hist h;

    start(&h, "{\"workflow_name\":\"step\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "call", NULL);
    hist_add(&h, "step_failed", NULL, "call", "{\"error\":\"E\"}");
    hist_add(&h, "retry_scheduled", NULL, "call", "{\"delay_ms\":5}");
    hist_add(&h, "step_started", NULL, "call", NULL);
    hist_add(&h, "step_completed", NULL, "call", "{\"output\":1}");
    hist_add(&h, "execution_completed", NULL, NULL, NULL);
    record(&h, "step");

    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_PENDING);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 0);
    cr_assert_eq(evs_replay_path_count(r), 0);
    cr_assert_eq(evs_log_open(st, "step", 4, 0, &log, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(log, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1) {
        const evs_exec_state *x;
        cr_assert_eq(evs_replay_apply(r, &ev, &v), 0);
        x = evs_replay_exec(r);
        cr_assert_eq(x->last_seq, ev.sequence);
        switch (ev.sequence) {
        case 1:
            cr_assert_eq(x->status, EVS_STATUS_RUNNING);
            cr_assert_eq(evs_replay_path_count(r), 1);
            cr_assert_eq(evs_replay_step_count(r), 0);
            break;
        case 2:
            cr_assert_eq(step(r, "main", "call", -1)->status, EVS_STEP_RUNNING);
            break;
        case 3: assert_failure(r, "main/call@3"); break;
        case 4:
            cr_assert_eq(x->status, EVS_STATUS_WAITING);
            assert_failure(r, "");
            break;
        case 5:
            cr_assert_eq(x->status, EVS_STATUS_RUNNING);
            cr_assert_eq(step(r, "main", "call", -1)->attempts, 2);
            break;
        case 7: cr_assert_eq(x->status, EVS_STATUS_COMPLETED); break;
        }
    }
    cr_assert_eq(rc, 0);
    evs_cursor_close(c);
    evs_log_close(log);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 7);

    all = open_at("step", 0, NULL);
    assert_same_state(r, all);
    evs_replay_free(r);
    evs_replay_free(all);
    hist_free(&h);
}

Test(replay, evs_replay_run_goes_on_from_where_the_replayer_stopped)
{
    evs_replay *r = hist_replayer(), *all;
    evs_log *log;
    evs_error_info v;
    hist h;

    start(&h, "{\"workflow_name\":\"run\",\"inputs\":{}}");
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof(name), "s%d", i);
        hist_add(&h, "step_started", NULL, name, NULL);
        hist_add(&h, "step_completed", NULL, name, "{\"output\":%d}", i);
    }
    record(&h, "run");
    cr_assert_eq(evs_log_open(st, "run", 3, 0, &log, NULL, NULL), 0);
    cr_assert_eq(evs_replay_run(r, log, 4, &v), 0);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 4);
    cr_assert_eq(evs_replay_run(r, log, 4, &v), 0, "nothing to do");
    cr_assert_eq(evs_replay_run(r, log, 2, &v), 0, "nothing to do");
    cr_assert_eq(evs_replay_exec(r)->last_seq, 4);
    cr_assert_eq(evs_replay_run(r, log, 15, &v), 0);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 15);
    cr_assert_eq(evs_replay_run(r, log, 0, &v), 0);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 21);
    evs_log_close(log);
    all = open_at("run", 0, NULL);
    assert_same_state(r, all);
    evs_replay_free(r);
    evs_replay_free(all);
    hist_free(&h);
}

/* Whatever stops a strict open, a broken history rule or a damaged log,
 * is described in the one evs_error_info, with code the value returned;
 * each call clears what the one before left. */
Test(replay, one_error_info_tells_a_broken_rule_and_a_damaged_log_apart)
{
    char *path, *buf, *hit;
    evs_replay *r;
    evs_error_info err;
    size_t len;
    hist h;
    int rc;

    /* s1 completes, then s2 completes without having started. */
    start(&h, "{\"workflow_name\":\"e\",\"inputs\":{}}");
    hist_add(&h, "step_started", NULL, "s1", NULL);
    hist_add(&h, "step_completed", NULL, "s1", "{\"output\":\"marker\"}");
    hist_add(&h, "step_completed", NULL, "s2", "{\"output\":2}");
    record(&h, "bad");
    r = hist_replayer();
    memset(&err, 'x', sizeof(err));
    cr_assert_eq(evs_replay_open(r, st, "bad", 3, 0, NULL, &err), EVS_EHISTORY);
    cr_assert_eq(err.code, EVS_EHISTORY);
    cr_assert_str_eq(err.kind, "step-not-started");
    cr_assert_eq(err.sequence, 4);
    cr_assert_str_eq(err.execution_id, "bad");
    cr_assert_eq(err.offset, UINT64_MAX);
    cr_assert_str_eq(err.step, "");
    cr_assert_not_null(strstr(err.msg, "s2"), "%s", err.msg);
    evs_replay_free(r);

    /* A valid history in two appends, with a bit flipped in the data of
     * its third line ('m' of "marker" becomes 'l': still JSON, so only
     * the checksum can tell). Damage in the last append would be a torn
     * tail, which a reader leaves out; this is in the one before. */
    h.n = 3;
    hist_add(&h, "step_started", NULL, "s2", NULL);
    cr_assert_eq(hist_record(&h, st, "dmg", 0, 3), 0);
    cr_assert_eq(hist_record(&h, st, "dmg", 3, 4), 0);
    path = tu_path(dir, "dmg", "events.jsonl");
    buf = tu_read_file(path, &len);
    cr_assert_not_null(buf);
    hit = memmem(buf, len, "marker", 6);
    cr_assert_not_null(hit);
    cr_assert_eq(tu_flip_bit(path, (long long)(hit - buf), 0), 0);
    r = hist_replayer();
    rc = evs_replay_open(r, st, "dmg", 3, 0, NULL, &err);
    cr_assert_eq(rc, EVS_ECORRUPT, "%s: %s", evs_err_name(rc), err.msg);
    cr_assert_eq(err.code, EVS_ECORRUPT);
    cr_assert_str_eq(err.kind, "checksum");
    cr_assert_neq(err.offset, UINT64_MAX);
    cr_assert_leq(err.offset, (uint64_t)(hit - buf));
    cr_assert_gt(err.offset, 0);
    cr_assert_eq(buf[err.offset - 1], '\n', "offset %llu is no line's start",
                 (unsigned long long)err.offset);
    cr_assert_str_eq(err.execution_id, "dmg");
    cr_assert_str_eq(err.step, "");
    cr_assert_neq(err.msg[0], '\0');
    evs_replay_free(r);
    free(buf);
    free(path);
    hist_free(&h);
}

/* Replaces the first occurrence of `from` in s (heap) with `to`. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    char *out;

    cr_assert_not_null(p, "'%s' not in '%s'", from, s);
    out = malloc(strlen(s) + strlen(to) + 1);
    cr_assert_not_null(out);
    memcpy(out, s, (size_t)(p - s));
    strcpy(out + (p - s), to);
    strcat(out, p + strlen(from));
    return out;
}

Test(replay, unknown_event_types_are_counted_and_otherwise_ignored)
{
    evs_replay *r1, *r2, *r;
    char *a, *b, *want;
    hist h;

    start(&h, "{\"workflow_name\":\"new\",\"inputs\":{}}");
    hist_add(&h, "custom_thing", NULL, NULL, "{\"a\":1}");
    hist_add(&h, "step_started", NULL, "a", NULL);
    hist_add(&h, "another_new_type", "nowhere", "a", "[1,2]");
    hist_add(&h, "step_completed", NULL, "a", NULL);
    record(&h, "new");

    r1 = open_at("new", 1, NULL);
    r2 = open_at("new", 2, NULL);
    a = hist_state(r1, NULL);
    b = hist_state(r2, NULL);
    want = replace(a, "\"last_seq\":1,", "\"last_seq\":2,");
    cr_assert_str_eq(b, want);
    free(a);
    free(b);
    free(want);
    evs_replay_free(r1);
    evs_replay_free(r2);

    r = open_at("new", 0, NULL);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 5);
    cr_assert_eq(evs_replay_path_count(r), 1);
    cr_assert_null(evs_replay_find_path(r, sp("nowhere")));
    cr_assert_eq(evs_replay_step_count(r), 1);
    cr_assert_eq(step(r, "main", "a", -1)->status, EVS_STEP_COMPLETED);
    cr_assert_eq(step(r, "main", "a", -1)->started_seq, 3);
    cr_assert_eq(step(r, "main", "a", -1)->ended_seq, 5);
    evs_replay_free(r);
    hist_free(&h);
}

/* ------------------------------------------------------------------ */
/* State JSON                                                         */
/* ------------------------------------------------------------------ */

#define PE "p\xc3\xa9" /* "pé" */

/* A history touching every part of the state, recorded as `id`; n1
 * events (returned) make it a running execution, and the rest finish
 * it. */
static size_t rich(hist *h)
{
    size_t n1;

    start(h, "{\"workflow_name\":\"rich\",\"inputs\":{\"q\":\"\\u00fcber\"},"
             "\"definition\":{\"name\":\"rich\",\"steps\":[{\"name\":\"a\"}]},"
             "\"definition_hash\":\"dh1\",\"inputs_hash\":\"ih1\","
             "\"lineage\":{\"retry_of\":\"old\","
             "\"strategy\":\"from_failure\"}}");
    hist_add(h, "step_started", NULL, "a",
             "{\"attempt\":1,\"input\":{\"k\":\"v\\n\"},\"step_hash\":\"sha\","
             "\"kind\":\"action\"}");
    hist_add(h, "step_failed", NULL, "a",
             "{\"error\":{\"type\":\"E\",\"message\":\"boom\","
             "\"retryable\":true}}");
    hist_add(h, "retry_scheduled", NULL, "a",
             "{\"fire_at\":\"2026-11-22T10:15:31.000000Z\",\"attempt\":2}");
    hist_add(h, "step_started", NULL, "a", "{\"attempt\":2}");
    hist_add(h, "step_completed", NULL, "a",
             "{\"output\":{\"text\":\"tab\\there \\\"q\\\"\"},"
             "\"stored_variable\":\"va\"}");
    hist_add(h, "path_branched", NULL, "a",
             "{\"new_paths\":[{\"id\":\"p1\",\"current_step\":\"e\"},"
             "{\"id\":\"p\\u00e9\",\"current_step\":\"w\"}]}");
    hist_add(h, "step_started", "p1", "e", "{\"iteration\":0,\"count\":3}");
    hist_add(h, "step_completed", "p1", "e", "{\"iteration\":0,\"output\":0}");
    hist_add(h, "step_started", "p1", "e", "{\"iteration\":1,\"count\":3}");
    hist_add(h, "signal_received", NULL, NULL,
             "{\"signal\":\"go\",\"payload\":[1,{\"a\":null}]}"); /* 11 */
    hist_add(h, "wait_started", PE, "w",
             "{\"signal\":\"go\","
             "\"timeout_at\":\"2026-11-22T12:00:00.000000Z\"}");
    hist_add(h, "wait_ended", PE, "w", "{\"signal_seq\":11}");
    hist_add(h, "timer_started", PE, "w",
             "{\"timer_id\":\"t1\","
             "\"fire_at\":\"2026-11-22T10:20:00.000000Z\"}");
    hist_add(h, "version_decision", NULL, NULL,
             "{\"change_id\":\"c1\",\"version\":1,\"min\":0,\"max\":2}");
    hist_add(h, "variable_set", NULL, NULL,
             "{\"name\":\"v2\",\"value\":{\"deep\":[true,false,null]}}");
    hist_add(h, "variable_set", NULL, NULL, "{\"name\":\"vnull\"}");
    hist_add(h, "execution_paused", NULL, NULL, "{\"reason\":\"r\"}");
    hist_add(h, "some_future_event", NULL, NULL, NULL);
    hist_add(h, "execution_resumed", NULL, NULL, NULL);
    hist_add(h, "step_failed", "p1", "e", "{\"iteration\":1,\"error\":\"E2\"}");
    hist_add(h, "signal_received", NULL, NULL, "{\"signal\":\"later\"}");
    n1 = h->n;
    hist_add(h, "retry_scheduled", "p1", "e",
             "{\"iteration\":1,\"delay_ms\":5}");
    hist_add(h, "step_started", "p1", "e", "{\"iteration\":1,\"count\":3}");
    hist_add(h, "step_completed", "p1", "e",
             "{\"iteration\":1,\"output\":1,\"stored_variable\":\"v2\"}");
    hist_add(h, "step_started", "p1", "e", "{\"iteration\":2,\"count\":3}");
    hist_add(h, "step_completed", "p1", "e", "{\"iteration\":2,\"output\":2}");
    hist_add(h, "each_completed", "p1", "e",
             "{\"output\":[0,1,2],\"count\":3,\"stored_variable\":\"ve\"}");
    hist_add(h, "timer_fired", PE, "w", "{\"timer_id\":\"t1\"}");
    hist_add(h, "path_completed", PE, NULL, NULL);
    hist_add(h, "path_completed", "p1", NULL, NULL);
    hist_add(h, "execution_completed", NULL, NULL, "{\"outputs\":[\"x\"]}");
    return n1;
}

/* state_json -> load_state -> state_json gives the same bytes. */
static void assert_round_trip(const evs_replay *r)
{
    evs_replay *r2 = hist_replayer();
    char *a, *b;
    size_t la, lb;

    a = hist_state(r, &la);
    cr_assert_eq(evs_replay_load_state(r2, a, la), 0, "%s", a);
    b = hist_state(r2, &lb);
    cr_assert_eq(lb, la);
    cr_assert_str_eq(b, a);
    free(a);
    free(b);
    evs_replay_free(r2);
}

Test(replay, the_state_json_round_trips_at_every_point_of_a_rich_history)
{
    const evs_replay *r2c;
    evs_replay *r, *r2;
    char *a;
    size_t la;
    hist h;

    rich(&h);
    record(&h, "rich");
    for (uint64_t k = 1; k <= h.n; k++) {
        r = open_at("rich", k, NULL);
        assert_round_trip(r);
        evs_replay_free(r);
    }

    /* What the accessors give after a load equals the original. */
    r = open_at("rich", 22, NULL);
    a = hist_state(r, &la);
    cr_assert(strncmp(a, "{\"v\":5,\"status\":\"running\",", 26) == 0, "%s", a);
    /* Version 2 ends with the step names, the consumed ids and the
     * mode, in that order. */
    cr_assert_not_null(strstr(a, "],\"names\":[{\"name\":\"a\","), "%s", a);
    {
        static const char tail[] = "],\"consumed_ids\":[],\"compact\":false}";
        cr_assert(la > sizeof(tail) - 1 &&
                      strcmp(a + la - (sizeof(tail) - 1), tail) == 0,
                  "%s", a);
    }
    r2 = hist_replayer();
    cr_assert_eq(evs_replay_load_state(r2, a, la), 0);
    r2c = r2;
    cr_assert_eq(evs_replay_exec(r2c)->last_seq, 22);
    cr_assert_eq(evs_replay_exec(r2c)->status, EVS_STATUS_RUNNING);
    assert_span(evs_replay_exec(r2c)->inputs, "{\"q\":\"\\u00fcber\"}");
    assert_span(evs_replay_exec(r2c)->lineage,
                "{\"retry_of\":\"old\",\"strategy\":\"from_failure\"}");
    assert_span(evs_replay_exec(r2c)->definition_hash, "dh1");
    assert_failure(r2c, "p1/e[1]@21");
    cr_assert_eq(evs_replay_path_count(r2c), 3);
    assert_span(path(r2c, PE)->parent, "main");
    /* The input of the last attempt, which recorded none. */
    assert_span(step(r2c, "main", "a", -1)->input, "");
    assert_span(step(r2c, "main", "a", -1)->step_hash, "sha");
    assert_span(step(r2c, "main", "a", -1)->output,
                "{\"text\":\"tab\\there \\\"q\\\"\"}");
    cr_assert_eq(step(r2c, "main", "a", -1)->attempts, 2);
    cr_assert_eq(each_of(r2c, "p1", "e")->count, 3);
    cr_assert_eq(each_of(r2c, "p1", "e")->done, 1);
    assert_span(var(r2c, "v2")->value, "{\"deep\":[true,false,null]}");
    /* A null value is the empty span, before and after a load. */
    assert_span(var(r, "vnull")->value, "");
    assert_span(var(r2c, "vnull")->value, "");
    cr_assert_eq(evs_replay_signal(r2c, 0)->consumed_seq, 13);
    assert_span(evs_replay_signal(r2c, 0)->consumed_by_path, PE);
    cr_assert_eq(evs_replay_signal(r2c, 0)->id.len, EVS_UUID_LEN);
    cr_assert(memcmp(evs_replay_signal(r2c, 0)->id.ptr,
                     evs_replay_signal(r, 0)->id.ptr, EVS_UUID_LEN) == 0);
    cr_assert_eq(evs_replay_find_version(r2c, sp("c1"))->max, 2);
    cr_assert_eq(evs_replay_timer(r2c, 0)->fire_at_us,
                 ts("2026-11-22T10:20:00.000000Z"));
    cr_assert_eq(evs_replay_wait(r2c, 0)->signal_seq, 11);
    /* Version 2's members: the last output of each path, and one record
     * per step name (an `each` step's iterations give it no output). */
    assert_span(path(r2c, "main")->last_output,
                "{\"text\":\"tab\\there \\\"q\\\"\"}");
    cr_assert_eq(path(r2c, "main")->last_output_seq, 6);
    /* An iteration is not the step: p1 has no output before the
     * each_completed at the end. */
    assert_span(path(r2c, "p1")->last_output, "");
    cr_assert_eq(path(r2c, "p1")->last_output_seq, 0);
    assert_span(path(r2c, PE)->last_output, "");
    cr_assert_eq(path(r2c, PE)->last_output_seq, 0);
    cr_assert_eq(evs_replay_stepname_count(r2c), 2);
    {
        const evs_stepname_state *na = evs_replay_stepname(r2c, 0);
        const evs_stepname_state *ne = evs_replay_stepname(r2c, 1);

        cr_assert_eq(evs_replay_find_stepname(r2c, sp("a")), na);
        cr_assert_eq(evs_replay_find_stepname(r2c, sp("e")), ne);
        cr_assert_null(evs_replay_find_stepname(r2c, sp("w")));
        assert_span(na->name, "a");
        assert_span(na->kind, "action");
        assert_span(na->step_hash, "sha");
        cr_assert_eq(na->started_seq, 5);
        assert_span(na->output, "{\"text\":\"tab\\there \\\"q\\\"\"}");
        cr_assert_eq(na->output_seq, 6);
        assert_span(ne->name, "e");
        cr_assert_eq(ne->started_seq, 10);
        assert_span(ne->output, "");
        cr_assert_eq(ne->output_seq, 0);
    }
    {
        uint64_t seq = 99;
        cr_assert(
            evs_replay_signal_received(r2c, evs_replay_signal(r, 0)->id, &seq));
        cr_assert_eq(seq, 11);
        cr_assert_not(evs_replay_signal_received(r2c, sp("nope"), &seq));
        cr_assert_eq(seq, 0);
    }
    free(a);
    evs_replay_free(r2);
    evs_replay_free(r);
    hist_free(&h);
}

/* The replayer holds nothing: what evs_replay_new gives. */
static void assert_empty(const evs_replay *r)
{
    evs_replay *fresh = hist_replayer();
    char *a = hist_state(r, NULL), *b = hist_state(fresh, NULL);

    cr_assert_str_eq(a, b);
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_PENDING);
    cr_assert_eq(evs_replay_exec(r)->last_seq, 0);
    cr_assert_eq(evs_replay_exec(r)->failed_iteration, -1);
    cr_assert_eq(evs_replay_path_count(r), 0);
    cr_assert_eq(evs_replay_step_count(r), 0);
    cr_assert_null(evs_replay_find_path(r, sp("main")));
    free(a);
    free(b);
    evs_replay_free(fresh);
}

Test(replay, another_state_version_is_refused_and_garbage_leaves_it_empty)
{
    static const char *const bad[] = {
        "",
        "hello",
        "{\"v\":5,\"status\":",
        "[1,2]",
        "{\"status\":\"running\",\"last_seq\":3}",
        "{\"v\":5,\"paths\":7}",
        "{\"v\":5,\"status\":\"sleeping\"}",
        "{\"v\":5,\"last_seq\":-4}",
        "{\"v\":5,\"steps\":[{\"name\":\"a\",\"attempts\":\"x\"}]}",
        "{\"v\":\"2\"}",
        "{\"v\":5,\"paths\":[{\"id\":\"p\"}]} trailing",
        "{\"v\":5,\"names\":[{\"name\":\"a\",\"output_seq\":\"x\"}]}",
        "{\"v\":5,\"names\":{}}",
        "{\"v\":5,\"consumed_ids\":[1]}",
        "{\"v\":5,\"consumed_ids\":\"a\"}",
        "{\"v\":5,\"paths\":[{\"id\":\"p\",\"last_output_seq\":-1}]}",
    };
    /* Another version, older or newer, is refused as such: version 1
     * (before the step names and the compact mode) as written then,
     * the current state relabelled as version 2 (before each records
     * held their step's output), and a version to come. */
    static const char v1_as_written[] =
        "{\"v\":1,\"status\":\"running\",\"last_seq\":2,"
        "\"paths\":[{\"id\":\"main\",\"status\":\"active\"}],"
        "\"waits\":[]}";
    evs_replay *r, *full;
    char *a, *v2, *v5;
    size_t la;
    hist h;

    rich(&h);
    record(&h, "rich");
    full = open_at("rich", 0, NULL);
    a = hist_state(full, &la);

    v2 = replace(a, "{\"v\":5,", "{\"v\":2,");
    v5 = replace(a, "{\"v\":5,", "{\"v\":6,");
    r = hist_replayer();
    cr_assert_eq(evs_replay_load_state(r, v5, strlen(v5)), EVS_EFORMAT);
    assert_empty(r);
    cr_assert_eq(evs_replay_load_state(r, a, la), 0);
    cr_assert_eq(evs_replay_load_state(r, v2, strlen(v2)), EVS_EFORMAT);
    assert_empty(r);
    cr_assert_eq(evs_replay_load_state(r, a, la), 0);
    cr_assert_eq(evs_replay_load_state(r, v1_as_written, strlen(v1_as_written)),
                 EVS_EFORMAT);
    assert_empty(r);
    free(v2);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* Also over a loaded state: a failed load leaves it empty. */
        cr_assert_eq(evs_replay_load_state(r, a, la), 0);
        cr_assert_eq(evs_replay_exec(r)->last_seq, h.n);
        cr_assert_eq(evs_replay_load_state(r, bad[i], strlen(bad[i])),
                     EVS_EPARSE, "'%s'", bad[i]);
        assert_empty(r);
    }
    /* A state cut short anywhere is refused, never half loaded. */
    for (size_t n = 0; n < la; n += 7) {
        int rc = evs_replay_load_state(r, a, n);
        cr_assert(rc == EVS_EPARSE, "%zu bytes: %d", n, rc);
        assert_empty(r);
    }
    evs_replay_free(r);
    evs_replay_free(full);
    free(a);
    free(v5);
    hist_free(&h);
}

/*
 * Damage of every kind at every place: whatever is not JSON is refused
 * with EVS_EPARSE and leaves the replayer empty, as when the whole text
 * was checked before it was read; what is loaded writes back as JSON
 * (a value taken unchecked would show there).
 */
Test(replay, a_state_that_is_not_json_is_refused_wherever_the_damage_is)
{
    static const char alphabet[] = "{}[]\",:\\u0n1-.eE t\x01\x80\xff";
    evs_replay *full, *r;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    char *a, *m;
    size_t la, refused = 0, loaded = 0;
    hist h;

    rich(&h);
    record(&h, "rich");
    full = open_at("rich", 0, NULL);
    a = hist_state(full, &la);
    m = malloc(la + 2);
    cr_assert_not_null(m);
    r = hist_replayer();
    for (int iter = 0; iter < 6000; iter++) {
        size_t n = la, at;
        int rc;

        memcpy(m, a, la);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        at = (size_t)(rng >> 9) % la;
        if (iter % 3 == 2) {
            /* An inserted byte rather than a replaced one. */
            memmove(m + at + 1, m + at, la - at);
            n++;
        }
        m[at] = alphabet[rng % (sizeof(alphabet) - 1)];
        rc = evs_replay_load_state(r, m, n);
        if (evs_json_check(m, n, 0, NULL, NULL, NULL) != 0) {
            cr_assert_eq(rc, EVS_EPARSE, "byte %zu '%c' of: %.*s", at, m[at],
                         (int)n, m);
            cr_assert_eq(evs_replay_exec(r)->last_seq, 0);
            cr_assert_eq(evs_replay_step_count(r), 0);
            refused++;
            continue;
        }
        cr_assert(rc == 0 || rc == EVS_EPARSE || rc == EVS_EFORMAT, "%d", rc);
        if (rc == 0) {
            char *back = hist_state(r, &n);
            cr_assert_eq(evs_json_check(back, n, 0, NULL, NULL, NULL), 0, "%s",
                         back);
            free(back);
            loaded++;
        }
    }
    cr_assert_gt(refused, 1000);
    cr_assert_gt(loaded, 100);
    evs_replay_free(r);
    evs_replay_free(full);
    free(m);
    free(a);
    hist_free(&h);
}

/* JSON with whitespace everywhere it may be (outside strings). */
static char *spread(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(4 * n + 8), *p = o;
    int in_str = 0;

    cr_assert_not_null(o);
    *p++ = '\n';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            *p++ = c;
            if (c == '\\')
                *p++ = s[++i];
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '}' || c == ']')
            *p++ = ' ';
        *p++ = c;
        if (c == '"')
            in_str = 1;
        else if (c == '{' || c == '[' || c == ',' || c == ':') {
            *p++ = '\t';
            *p++ = '\r';
        }
    }
    *p++ = ' ';
    *p++ = '\n';
    *p = '\0';
    return o;
}

/* The state JSON, without insignificant whitespace. */
static char *minified_state(const evs_replay *r)
{
    size_t n, m;
    char *s = hist_state(r, &n);

    cr_assert_eq(evs_json_check(s, n, EVS_JSON_MINIFY, s, &m, NULL), 0);
    s[m] = '\0';
    return s;
}

Test(replay, a_state_with_whitespace_or_another_member_order_loads_the_same)
{
    /* A step's members in another order, an unknown member (an object,
     * skipped), a key spelled with an escape (not the same key: ignored,
     * as keys are compared as written), a member given twice (the last
     * one counts). */
    static const char canon[] =
        "{\"v\":5,\"status\":\"running\",\"execution_id\":\"x\","
        "\"last_seq\":2,\"paths\":[{\"id\":\"main\",\"status\":\"active\","
        "\"last_output\":{\"k\":[1,2]},\"last_output_seq\":2}],"
        "\"steps\":[{\"path\":\"main\",\"name\":\"a\",\"iteration\":-1,"
        "\"status\":\"completed\",\"attempts\":1,\"output\":{\"k\":[1,2]},"
        "\"started_seq\":1,\"ended_seq\":2}],"
        "\"names\":[{\"name\":\"a\",\"kind\":\"action\",\"step_hash\":\"h\","
        "\"started_seq\":1,\"output\":{\"k\":[1,2]},\"output_seq\":2}],"
        "\"consumed_ids\":[],\"compact\":false}";
    /* Version 2's members too: the mode first, a step name's members
     * backwards, a path's last output before its id. */
    static const char other[] =
        "{\"compact\":false,\"consumed_ids\":[],"
        "\"names\":[{\"output_seq\":2,\"output\":{\"k\":[1,2]},"
        "\"x-later\":[1],\"started_seq\":1,\"step_hash\":\"h\","
        "\"kind\":\"action\",\"name\":\"a\"}],"
        "\"steps\":[{\"ended_seq\":2,\"started_seq\":1,"
        "\"output\":{\"k\":[1,2]},\"attempts\":1,\"status\":\"running\","
        "\"iteration\":-1,\"x-later\":{\"deep\":[{}]},\"name\":\"a\","
        "\"p\\u0061th\":\"elsewhere\",\"path\":\"main\","
        "\"status\":\"completed\"}],\"paths\":[{\"last_output_seq\":2,"
        "\"last_output\":{\"k\":[1,2]},\"status\":\"active\","
        "\"id\":\"main\"}],\"last_seq\":2,\"execution_id\":\"x\","
        "\"status\":\"running\",\"v\":5}";
    evs_replay *full, *r = hist_replayer();
    char *want, *got, *a, *wide;
    size_t la;
    hist h;

    cr_assert_eq(evs_replay_load_state(r, canon, strlen(canon)), 0);
    want = hist_state(r, NULL);
    cr_assert_not_null(strstr(want, "\"last_output\":{\"k\":[1,2]},"
                                    "\"last_output_seq\":2}"),
                       "%s", want);
    cr_assert_not_null(strstr(want, "\"names\":[{\"name\":\"a\","
                                    "\"kind\":\"action\",\"step_hash\":\"h\","
                                    "\"started_seq\":1,"
                                    "\"output\":{\"k\":[1,2]},"
                                    "\"output_seq\":2}],"
                                    "\"consumed_ids\":[],\"compact\":false}"),
                       "%s", want);
    cr_assert_eq(evs_replay_load_state(r, other, strlen(other)), 0);
    got = hist_state(r, NULL);
    cr_assert_str_eq(got, want);
    assert_span(step(r, "main", "a", -1)->output, "{\"k\":[1,2]}");
    assert_span(path(r, "main")->last_output, "{\"k\":[1,2]}");
    cr_assert_eq(path(r, "main")->last_output_seq, 2);
    cr_assert_eq(evs_replay_stepname_count(r), 1);
    assert_span(evs_replay_find_stepname(r, sp("a"))->step_hash, "h");
    cr_assert_eq(evs_replay_find_stepname(r, sp("a"))->output_seq, 2);
    free(got);

    /* Whitespace everywhere: JSON values keep theirs (they are kept
     * byte for byte), so the state written back is the same once
     * minified. */
    wide = spread(canon);
    cr_assert_eq(evs_replay_load_state(r, wide, strlen(wide)), 0, "%s", wide);
    got = minified_state(r);
    cr_assert_str_eq(got, want);
    cr_assert_neq(evs_replay_step(r, 0)->output.len, strlen("{\"k\":[1,2]}"));
    free(got);
    free(wide);
    free(want);

    /* The whole rich state, spread out. */
    rich(&h);
    record(&h, "rich");
    full = open_at("rich", 0, NULL);
    a = hist_state(full, &la);
    wide = spread(a);
    cr_assert_gt(strlen(wide), la);
    cr_assert_eq(evs_replay_load_state(r, wide, strlen(wide)), 0);
    got = minified_state(r);
    cr_assert_str_eq(got, a);
    free(got);
    free(wide);
    free(a);
    evs_replay_free(full);
    evs_replay_free(r);
    hist_free(&h);
}

/* A state of several MiB, whose step vector is sized from the text left
 * when the steps start, loads and writes back the same. */
Test(replay, a_large_state_loads_whole)
{
    const size_t n = 9000;
    size_t cap = n * 420 + 256, len = 0;
    char *s = malloc(cap), *back, *again;
    evs_replay *r = hist_replayer();

    cr_assert_not_null(s);
    len += (size_t)sprintf(s + len,
                           "{\"v\":5,\"last_seq\":0,\"paths\":[{\"id\":"
                           "\"main\",\"status\":\"active\"}],\"steps\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(
            s + len,
            "%s{\"path\":\"main\",\"name\":\"s%zu\",\"iteration\":%zd,"
            "\"status\":\"completed\",\"attempts\":1,\"input\":{\"i\":%zu},"
            "\"output\":\"%0200zu\",\"started_seq\":%zu,\"ended_seq\":%zu}",
            i ? "," : "", i % 7, (ssize_t)(i / 7) - 1, i, i, i + 1, i + 2);
    len += (size_t)sprintf(s + len, "]}");
    cr_assert_lt(len, cap);
    cr_assert_gt(len, (size_t)2 << 20);
    cr_assert_eq(evs_replay_load_state(r, s, len), 0);
    cr_assert_eq(evs_replay_step_count(r), n);
    cr_assert_eq(evs_replay_find_step(r, sp("main"), sp("s3"), 5)->started_seq,
                 5 * 7 + 3 + 7 + 1);
    back = hist_state(r, NULL);
    cr_assert_eq(evs_replay_load_state(r, back, strlen(back)), 0);
    again = hist_state(r, NULL);
    cr_assert_str_eq(again, back);
    free(again);
    free(back);

    /* Steps far smaller than the writer's: more than the guess, which
     * the vector then grows past. */
    len = (size_t)sprintf(s, "{\"v\":5,\"steps\":[");
    for (size_t i = 0; i < 5 * n; i++)
        len += (size_t)sprintf(s + len, "%s{\"name\":\"m\",\"iteration\":%zu}",
                               i ? "," : "", i);
    len += (size_t)sprintf(s + len, "]}");
    cr_assert_gt(len, (size_t)1 << 20);
    cr_assert_gt(5 * n, len / 196);
    cr_assert_eq(evs_replay_load_state(r, s, len), 0);
    cr_assert_eq(evs_replay_step_count(r), 5 * n);
    cr_assert_eq(evs_replay_find_step(r, sp(""), sp("m"), 5 * n - 1)->iteration,
                 (int64_t)(5 * n - 1));
    free(s);
    evs_replay_free(r);
}

/* A state whose values nest `depth` deep at member `where` (which sits
 * `outer` containers deep). */
static char *nested_state(const char *where, int outer, int depth)
{
    size_t n = (size_t)depth * 2 + 512;
    char *s = malloc(n), *p;

    cr_assert_not_null(s);
    p = s + sprintf(s, "%s", where);
    for (int i = 0; i < depth - outer; i++)
        *p++ = '[';
    for (int i = 0; i < depth - outer; i++)
        *p++ = ']';
    strcpy(p, outer == 1 ? ",\"v\":5}" : "}]}");
    return s;
}

/* The nesting limit counts from the top of the state, as when the whole
 * text was checked at once. */
Test(replay, the_nesting_limit_counts_the_whole_state)
{
    static const struct {
        const char *where;
        int outer;
    } at[] = {
        {"{\"inputs\":", 1},
        {"{\"v\":5,\"variables\":[{\"name\":\"n\",\"value\":", 3},
        {"{\"v\":5,\"steps\":[{\"name\":\"n\",\"input\":", 3},
        {"{\"v\":5,\"steps\":[{\"name\":\"n\",\"x-unknown\":", 3},
    };
    evs_replay *r = hist_replayer();

    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        char *ok = nested_state(at[i].where, at[i].outer, EVS_JSON_DEPTH_MAX);
        char *deep =
            nested_state(at[i].where, at[i].outer, EVS_JSON_DEPTH_MAX + 1);

        cr_assert_eq(evs_json_check(ok, strlen(ok), 0, NULL, NULL, NULL), 0);
        cr_assert_neq(evs_json_check(deep, strlen(deep), 0, NULL, NULL, NULL),
                      0);
        cr_assert_eq(evs_replay_load_state(r, ok, strlen(ok)), 0, "case %zu",
                     i);
        cr_assert_eq(evs_replay_load_state(r, deep, strlen(deep)), EVS_EPARSE,
                     "case %zu", i);
        free(ok);
        free(deep);
    }
    evs_replay_free(r);
}

/* Numbers the state reads as integers, at the edges of what it takes. */
Test(replay, integers_in_a_state_are_read_as_json_integers)
{
    static const struct {
        const char *v;
        int rc;
        int64_t want;
    } cases[] = {
        {"0", 0, 0},
        {"-0", 0, 0},
        {"123456789012345678", 0, INT64_C(123456789012345678)},
        {"-123456789012345678", 0, -INT64_C(123456789012345678)},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", EVS_EPARSE, 0},
        {"1.0", EVS_EPARSE, 0},
        {"1e3", EVS_EPARSE, 0},
        {"\"7\"", EVS_EPARSE, 0},
        {"null", EVS_EPARSE, 0},
        {"01", EVS_EPARSE, 0},
        {"-", EVS_EPARSE, 0},
        {"+1", EVS_EPARSE, 0},
        {"1.", EVS_EPARSE, 0},
    };
    evs_replay *r = hist_replayer();
    char buf[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;

        snprintf(buf, sizeof(buf), "{\"v\":5,\"started_at\":%s}", cases[i].v);
        rc = evs_replay_load_state(r, buf, strlen(buf));
        cr_assert_eq(rc, cases[i].rc, "%s: %d", cases[i].v, rc);
        if (rc == 0)
            cr_assert_eq(evs_replay_exec(r)->started_at_us, cases[i].want, "%s",
                         cases[i].v);
        /* The same inside an element. */
        snprintf(buf, sizeof(buf),
                 "{\"v\":5,\"steps\":[{\"name\":\"s\",\"retry_at\":%s}]}",
                 cases[i].v);
        rc = evs_replay_load_state(r, buf, strlen(buf));
        cr_assert_eq(rc, cases[i].rc, "%s: %d", cases[i].v, rc);
        if (rc == 0)
            cr_assert_eq(evs_replay_step(r, 0)->retry_at_us, cases[i].want,
                         "%s", cases[i].v);
    }
    /* Sequences are not negative. */
    snprintf(buf, sizeof(buf), "{\"v\":5,\"last_seq\":-1}");
    cr_assert_eq(evs_replay_load_state(r, buf, strlen(buf)), EVS_EPARSE);
    snprintf(buf, sizeof(buf), "{\"v\":5,\"last_seq\":-0}");
    cr_assert_eq(evs_replay_load_state(r, buf, strlen(buf)), 0);
    evs_replay_free(r);
}

/* A value the state cannot use is refused with its own error only when
 * the rest of the text is JSON: a syntax error after it wins. */
Test(replay, a_syntax_error_anywhere_wins_over_a_bad_value)
{
    static const char v6[] = "{\"v\":6,\"status\":\"running\"}";
    static const char v6_bad[] = "{\"v\":6,\"status\":\"running\"";
    static const char v6_bad_esc[] =
        "{\"v\":6,\"steps\":[{\"output\":\"\\q\"}]}";
    static const char compact[] = "{\"v\":6,\"compact\":true}";
    static const char compact_bad[] =
        "{\"v\":6,\"compact\":true,\"steps\":[{\"output\":\"\\q\"}]}";
    evs_replay *r = hist_replayer();

    cr_assert_eq(evs_replay_load_state(r, v6, strlen(v6)), EVS_EFORMAT);
    cr_assert_eq(evs_replay_load_state(r, v6_bad, strlen(v6_bad)), EVS_EPARSE);
    cr_assert_eq(evs_replay_load_state(r, v6_bad_esc, strlen(v6_bad_esc)),
                 EVS_EPARSE);
    /* The same for a compact state, which a full replayer refuses. */
    cr_assert_eq(evs_replay_load_state(r, compact, strlen(compact)),
                 EVS_EFORMAT);
    cr_assert_eq(evs_replay_load_state(r, compact_bad, strlen(compact_bad)),
                 EVS_EPARSE);
    evs_replay_free(r);
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                          */
/* ------------------------------------------------------------------ */

static void snapshot(const evs_replay *r)
{
    cr_assert_eq(evs_replay_snapshot(r, st, (evs_span){NULL, 0}), 0);
}

Test(replay, a_snapshot_opens_to_the_state_of_a_replay_from_the_start)
{
    evs_replay *r1, *r2, *hand;
    evs_snapshot *sn;
    size_t n1;
    int fs;
    hist h;

    n1 = rich(&h);
    cr_assert_eq(hist_record(&h, st, "rich", 0, n1), 0);
    r1 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    snapshot(r1);
    cr_assert_eq(evs_snapshot_load(st, "rich", 4, &sn, NULL), 0);
    cr_assert_eq(sn->last_event_seq, n1);
    assert_span(sn->status, "running");
    assert_span(sn->workflow_name, "rich");
    assert_span(sn->workflow_hash, "dh1");
    assert_span(sn->inputs_hash, "ih1");
    assert_span(sn->workflow_data,
                "{\"name\":\"rich\",\"steps\":[{\"name\":\"a\"}]}");
    assert_span(sn->lineage,
                "{\"retry_of\":\"old\",\"strategy\":\"from_failure\"}");
    evs_snapshot_free(sn);

    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 1);
    assert_same_state(r1, r2);
    evs_replay_free(r2);

    /* More events: the snapshot plus the tail. */
    cr_assert_eq(hist_record(&h, st, "rich", n1, h.n), 0);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 1);
    hand = hist_replay_by_hand(st, "rich", 0);
    assert_same_state(r2, hand);
    cr_assert_eq(evs_replay_exec(r2)->status, EVS_STATUS_COMPLETED);
    assert_span(evs_replay_exec(r2)->outputs, "[\"x\"]");
    cr_assert_eq(each_of(r2, "p1", "e")->done, 3);
    assert_span(each_of(r2, "p1", "e")->output, "[0,1,2]");
    cr_assert_neq(each_of(r2, "p1", "e")->ended_seq, 0);
    assert_span(var(r2, "v2")->value, "1");
    assert_span(var(r2, "ve")->value, "[0,1,2]");
    assert_span(path(r2, "p1")->last_output, "[0,1,2]");
    assert_span(evs_replay_find_stepname(r2, sp("e"))->output, "[0,1,2]");

    /* A snapshot of the finished run opens to the same state again. */
    snapshot(r2);
    evs_replay_free(r1);
    r1 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 1);
    assert_same_state(r1, hand);
    cr_assert_eq(evs_snapshot_load(st, "rich", 4, &sn, NULL), 0);
    assert_span(sn->status, "completed");
    assert_span(sn->outputs, "[\"x\"]");
    cr_assert_neq(sn->end_time_us, 0);
    evs_snapshot_free(sn);
    evs_replay_free(r1);
    evs_replay_free(r2);
    evs_replay_free(hand);
    hist_free(&h);
}

Test(replay, a_damaged_snapshot_falls_back_to_a_replay_from_the_start)
{
    evs_replay *r1, *r2;
    char *snap = tu_path(dir, "rich", "snapshot.json");
    long long size;
    int fs;
    hist h;

    rich(&h);
    record(&h, "rich");
    r1 = open_at("rich", 0, NULL);
    snapshot(r1);
    size = tu_file_size(snap);
    cr_assert_gt(size, 100);

    /* A flipped bit in the body (the state). */
    cr_assert_eq(tu_flip_bit(snap, size - 200, 3), 0);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    assert_same_state(r1, r2);
    evs_replay_free(r2);

    /* Cut short. */
    snapshot(r1);
    cr_assert_eq(tu_truncate(snap, tu_file_size(snap) / 2), 0);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    assert_same_state(r1, r2);
    evs_replay_free(r2);

    /* Gone. */
    cr_assert_eq(unlink(snap), 0);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    assert_same_state(r1, r2);
    evs_replay_free(r2);
    evs_replay_free(r1);
    free(snap);
    hist_free(&h);
}

/* A snapshot saved whole but holding a state that does not fit it. */
static void save_state(const char *id, uint64_t seq, const char *state)
{
    evs_snapshot sn;

    memset(&sn, 0, sizeof(sn));
    sn.status = sp("running");
    sn.last_event_seq = seq;
    sn.state = sp(state);
    cr_assert_eq(evs_snapshot_save(st, id, strlen(id), &sn), 0);
}

Test(replay, a_snapshot_whose_state_cannot_be_used_is_rebuilt_from_the_log)
{
    evs_replay *r1, *r5, *r2;
    char *s5, *bad;
    int fs;
    hist h;

    rich(&h);
    record(&h, "rich");
    r1 = open_at("rich", 0, NULL);
    r5 = open_at("rich", 5, NULL);
    s5 = hist_state(r5, NULL);

    /* The state is of sequence 5, the header says the end. */
    save_state("rich", h.n, s5);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    assert_same_state(r1, r2);
    evs_replay_free(r2);

    /* A newer state version. */
    bad = replace(s5, "{\"v\":5,", "{\"v\":6,");
    save_state("rich", 5, bad);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    assert_same_state(r1, r2);
    evs_replay_free(r2);
    free(bad);

    /* Not a state at all. */
    save_state("rich", 5, "{\"v\":5,\"paths\":3}");
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    assert_same_state(r1, r2);
    evs_replay_free(r2);

    /* And the right state for 5 is used. */
    save_state("rich", 5, s5);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 1);
    assert_same_state(r1, r2);
    evs_replay_free(r2);
    free(s5);
    evs_replay_free(r1);
    evs_replay_free(r5);
    hist_free(&h);
}

/*
 * Writes a snapshot of execution `id` at sequence `seq` whose state is
 * `state` byte for byte, with checksums that match: what a buggy writer
 * could leave. The store hands such a state on unlooked-into, so the
 * replay's one parse is all that stands between it and the state.
 */
static void forge_state(const char *id, uint64_t seq, const char *state)
{
    size_t n = strlen(state), len, hl;
    char *ph = malloc(n + 1), *buf, *at, *q;
    char *path = tu_path(dir, id, "snapshot.json");
    evs_snapshot sn;

    /* A valid stand-in of the same length, replaced once encoded. */
    cr_assert_not_null(ph);
    cr_assert_geq(n, 2);
    memset(ph, 'z', n);
    ph[0] = ph[n - 1] = '"';
    ph[n] = '\0';
    memset(&sn, 0, sizeof(sn));
    sn.id = sp(id);
    sn.status = sp("running");
    sn.last_event_seq = seq;
    sn.state = sp(ph);
    cr_assert_eq(evs_snapshot_encode(&sn, NULL, &buf, &len), 0);
    hl = (size_t)((char *)memchr(buf, '\n', len) - buf) + 1;
    at = memmem(buf + hl, len - hl, ph, n);
    cr_assert_not_null(at);
    memcpy(at, state, n);
    evs__frame_seal(buf + hl, len - hl - EVS__CKSUM_TAIL_LEN);
    q = memmem(buf, hl, "\"body_checksum\":\"", 17);
    cr_assert_not_null(q);
    evs__hex64(evs_checksum(buf + hl, len - hl), q + 17);
    evs__frame_seal(buf, hl - EVS__CKSUM_TAIL_LEN);
    cr_assert_eq(tu_write_file(path, buf, len), 0);
    free(buf);
    free(ph);
    free(path);
}

Test(replay, a_checksummed_snapshot_with_a_malformed_state_is_not_used)
{
    evs_replay *r1, *r2, *r;
    evs_snapshot *sn;
    char *s2, *bad;
    size_t i;
    int fs;
    hist h;

    rich(&h);
    record(&h, "rich");
    r1 = open_at("rich", 0, NULL);
    r = open_at("rich", 2, NULL);
    s2 = hist_state(r, NULL);
    evs_replay_free(r);

    /* The forged file itself is good: the right state opens from it. */
    forge_state("rich", 2, s2);
    r2 = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 1);
    assert_same_state(r1, r2);
    evs_replay_free(r2);

    const struct {
        const char *from, *to;
    } damage[] = {
        /* A bad escape, a raw control byte and bad UTF-8 inside a step's
         * input, a value the state keeps as JSON. */
        {"\"k\":\"v\\n\"", "\"k\":\"v\\q\""},
        {"\"k\":\"v\\n\"", "\"k\":\"v\n\""},
        {"\"k\":\"v\\n\"", "\"k\":\"v\xc3\x28\""},
        /* A number with a leading zero; a literal cut short. */
        {"\"last_seq\":2", "\"last_seq\":02"},
        {"\"error\":null", "\"error\":nul "},
        /* Brackets that do not match. */
        {"\"input\":{\"k\"", "\"input\":[\"k\""},
        /* Text after the state's object. */
        {NULL, " x"},
    };
    for (i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
        if (damage[i].from) {
            cr_assert_not_null(strstr(s2, damage[i].from), "%s",
                               damage[i].from);
            bad = replace(s2, damage[i].from, damage[i].to);
        } else {
            bad = malloc(strlen(s2) + strlen(damage[i].to) + 1);
            cr_assert_not_null(bad);
            strcpy(bad, s2);
            strcat(bad, damage[i].to);
        }
        cr_assert_neq(evs_json_check(bad, strlen(bad), 0, NULL, NULL, NULL), 0,
                      "case %zu", i);
        forge_state("rich", 2, bad);
        /* The store's plain load refuses it; asked for the raw state (as
         * evs_replay_open asks), it hands it on, and the replay refuses
         * it. */
        sn = NULL;
        cr_assert_eq(evs_snapshot_load(st, "rich", 4, &sn, NULL), EVS_EPARSE,
                     "case %zu", i);
        cr_assert_null(sn);
        cr_assert_eq(evs_snapshot_load_flags(st, "rich", 4,
                                             EVS_SNAPSHOT_STATE_RAW, &sn, NULL),
                     0);
        cr_assert_eq(sn->state.len, strlen(bad));
        r = hist_replayer();
        cr_assert_eq(evs_replay_load_state(r, sn->state.ptr, sn->state.len),
                     EVS_EPARSE, "case %zu", i);
        evs_replay_free(r);
        evs_snapshot_free(sn);
        /* Opening rebuilds from the log instead. */
        r2 = open_at("rich", 0, &fs);
        cr_assert_eq(fs, 0, "case %zu", i);
        assert_same_state(r1, r2);
        evs_replay_free(r2);
        free(bad);
    }
    free(s2);
    evs_replay_free(r1);
    hist_free(&h);
}

/*
 * Names with escapes (quotes, backslashes, control characters, \u
 * escapes of every length) are unescaped where they stand in the
 * snapshot the replayer keeps, and still work as keys for the events
 * after the snapshot.
 */
Test(replay, escaped_names_survive_a_snapshot_and_its_tail)
{
    static const char *const names[] = {
        "q\\\"uote",       "back\\\\slash",        "tab\\tnl\\n",
        "\\u00e9t\\u00e9", "\\ud83d\\ude00 smile", "\\u0001ctl",
        "plain",
    };
    const size_t nn = sizeof(names) / sizeof(names[0]);
    evs_replay *r1, *r2, *hand;
    size_t mid;
    int fs;
    hist h;

    /* Variables, signals, versions and timers are named by `data`. */
    start(&h, "{\"workflow_name\":\"esc\"}");
    for (size_t i = 0; i < nn; i++) {
        hist_add(&h, "variable_set", NULL, NULL,
                 "{\"name\":\"%s\",\"value\":{\"i\":%zu}}", names[i], i);
        hist_add(&h, "signal_received", NULL, NULL,
                 "{\"signal\":\"%s\",\"payload\":%zu}", names[i], i);
        hist_add(&h, "version_decision", NULL, NULL,
                 "{\"change_id\":\"%s\",\"version\":1,\"min\":0,"
                 "\"max\":2}",
                 names[i]);
        hist_add(&h, "timer_started", NULL, "w",
                 "{\"timer_id\":\"%s\","
                 "\"fire_at\":\"2026-11-22T10:20:00.000000Z\"}",
                 names[i]);
    }
    mid = h.n;
    for (size_t i = 0; i < nn; i++) {
        hist_add(&h, "variable_set", NULL, NULL,
                 "{\"name\":\"%s\",\"value\":[%zu]}", names[i], i);
        hist_add(&h, "timer_fired", NULL, "w", "{\"timer_id\":\"%s\"}",
                 names[i]);
    }
    cr_assert_eq(hist_record(&h, st, "esc", 0, mid), 0);
    r1 = open_at("esc", 0, &fs);
    cr_assert_eq(fs, 0);
    snapshot(r1);
    r2 = open_at("esc", 0, &fs);
    cr_assert_eq(fs, 1);
    assert_same_state(r1, r2);
    cr_assert_not_null(evs_replay_find_var(r2, sp("q\"uote")));
    cr_assert_not_null(evs_replay_find_var(r2, sp("\xf0\x9f\x98\x80 smile")));
    cr_assert_not_null(evs_replay_find_version(r2, sp("back\\slash")));
    evs_replay_free(r2);

    /* The tail finds what the snapshot holds. */
    cr_assert_eq(hist_record(&h, st, "esc", mid, h.n), 0);
    r2 = open_at("esc", 0, &fs);
    cr_assert_eq(fs, 1);
    hand = hist_replay_by_hand(st, "esc", 0);
    assert_same_state(r2, hand);
    assert_span(evs_replay_find_var(r2, sp("tab\tnl\n"))->value, "[2]");
    assert_span(evs_replay_find_var(r2, sp("\x01"
                                           "ctl"))
                    ->value,
                "[5]");
    for (size_t i = 0; i < evs_replay_timer_count(r2); i++)
        cr_assert_neq(evs_replay_timer(r2, i)->fired_seq, 0);
    evs_replay_free(r1);
    evs_replay_free(r2);
    evs_replay_free(hand);
    hist_free(&h);
}

Test(replay, a_stale_snapshot_past_the_log_end_is_not_used)
{
    char *log = tu_path(dir, "rich", "events.jsonl");
    evs_replay *r, *hand, *at;
    long long size1;
    size_t n1;
    int fs;
    hist h;

    n1 = rich(&h);
    cr_assert_eq(hist_record(&h, st, "rich", 0, n1), 0);
    size1 = tu_file_size(log);
    cr_assert_gt(size1, 0);
    cr_assert_eq(hist_record(&h, st, "rich", n1, h.n), 0);
    at = open_at("rich", n1, NULL);
    r = open_at("rich", 0, NULL);
    snapshot(r);
    evs_replay_free(r);

    /* As if the appends after n1 were lost in a crash. */
    cr_assert_eq(tu_truncate(log, size1), 0);
    cr_assert_eq(tu_count_events(st, "rich"), (long)n1);
    r = open_at("rich", 0, &fs);
    cr_assert_eq(fs, 0);
    cr_assert_eq(evs_replay_exec(r)->last_seq, n1);
    hand = hist_replay_by_hand(st, "rich", 0);
    assert_same_state(r, hand);
    assert_same_state(r, at);
    evs_replay_free(r);
    evs_replay_free(hand);
    evs_replay_free(at);
    free(log);
    hist_free(&h);
}

Test(replay, an_at_before_the_snapshot_ignores_it_and_one_after_uses_it)
{
    evs_replay *r, *hand;
    size_t n1;
    int fs;
    hist h;

    n1 = rich(&h);
    cr_assert_eq(hist_record(&h, st, "rich", 0, n1), 0);
    r = open_at("rich", 0, NULL);
    snapshot(r);
    evs_replay_free(r);
    cr_assert_eq(hist_record(&h, st, "rich", n1, h.n), 0);

    for (uint64_t at = n1 - 3; at <= h.n; at++) {
        r = open_at("rich", at, &fs);
        cr_assert_eq(fs, at >= n1, "at %llu: from_snapshot %d",
                     (unsigned long long)at, fs);
        hand = hist_replay_by_hand(st, "rich", at);
        assert_same_state(r, hand);
        evs_replay_free(r);
        evs_replay_free(hand);
    }
    hist_free(&h);
}

/* ------------------------------------------------------------------ */
/* Allocation failures                                                */
/* ------------------------------------------------------------------ */

static evs_replay *fa_replayer(tu_alloc *f)
{
    evs_replay_opts o;
    evs_replay *r = NULL;

    evs_replay_opts_init(&o);
    o.alloc = &f->a;
    tu_alloc_stop(f);
    cr_assert_eq(evs_replay_new(&o, &r), 0);
    return r;
}

static char *fa_state(tu_alloc *f, const evs_replay *r)
{
    char *s = NULL, *out;
    size_t n;

    tu_alloc_stop(f);
    cr_assert_eq(evs_replay_state_json(r, &s, &n), 0);
    out = strndup(s, n);
    evs_free(&f->a, s);
    return out;
}

/* evs_replay_open with allocation N failing, for N = 1.. until it
 * succeeds without a failure: each run ends in success with the right
 * state or in -ENOMEM, and frees everything. A compact replayer moves
 * its state to fresh memory at every chance (gc_min 1): a move that
 * fails must leave the state whole, since the replay goes on. */
static void open_loop(const char *id, const char *want, int sticky, int compact)
{
    tu_alloc f;
    long n, successes = 0, enomem = 0, injected = 0;

    tu_alloc_init(&f);
    for (n = 1; n < 100000; n++) {
        evs_replay_opts o;
        evs_replay *r = (evs_replay *)&f; /* must stay untouched */
        int rc, fs = -1;

        evs_replay_opts_init(&o);
        o.alloc = &f.a;
        o.compact = compact;
        o.gc_min = (size_t)compact;
        tu_alloc_fail(&f, n, sticky ? TU_FAIL_FROM : TU_FAIL_ONCE);
        rc = evs_replay_new(&o, &r);
        if (rc != 0) {
            cr_assert_eq(rc, -ENOMEM);
            cr_assert_eq(r, (evs_replay *)&f, "*out set on failure");
            cr_assert_eq(f.live, 0);
            enomem++;
            continue;
        }
        rc = evs_replay_open(r, st, id, strlen(id), 0, &fs, NULL);
        cr_assert(rc == 0 || rc == -ENOMEM, "allocation %ld: %s", n,
                  evs_err_name(rc));
        injected += f.failed > 0;
        if (rc == 0) {
            char *got = fa_state(&f, r);
            cr_assert_str_eq(got, want, "allocation %ld", n);
            free(got);
            successes++;
        } else {
            cr_assert_gt(f.failed, 0);
            enomem++;
        }
        evs_replay_free(r);
        cr_assert_eq(f.live, 0, "allocation %ld: %ld blocks leaked", n, f.live);
        if (rc == 0 && f.failed == 0)
            break;
    }
    cr_assert_lt(n, 100000);
    cr_assert_gt(injected, 5, "only %ld runs failed an allocation", injected);
    cr_log_info("%s, %s, %s: %ld runs, %ld ENOMEM, %ld successes", id,
                compact ? "compact" : "full", sticky ? "sticky" : "once", n,
                enomem, successes);
}

Test(replay, open_under_allocation_failures_succeeds_or_fails_cleanly)
{
    evs_replay *r;
    char *want;
    hist h;

    evs_replay *rc;
    char *want_c;

    rich(&h);
    record(&h, "rich");
    r = open_at("rich", 0, NULL);
    want = hist_state(r, NULL);
    rc = hist_replayer_mode(1);
    cr_assert_eq(evs_replay_open(rc, st, "rich", 4, 0, NULL, NULL), 0);
    want_c = hist_state(rc, NULL);
    open_loop("rich", want, 1, 0);
    open_loop("rich", want, 0, 0);
    /* Compact, from the log: drops and moves of the state fail too. */
    open_loop("rich", want_c, 1, 1);
    open_loop("rich", want_c, 0, 1);
    /* From the snapshot: a failed load falls back to the log. */
    snapshot(r);
    open_loop("rich", want, 1, 0);
    open_loop("rich", want, 0, 0);
    /* A full snapshot, compacted as it loads. */
    open_loop("rich", want_c, 1, 1);
    open_loop("rich", want_c, 0, 1);
    free(want);
    free(want_c);
    evs_replay_free(r);
    evs_replay_free(rc);
    hist_free(&h);
}

/*
 * The replayer keeps the snapshot it opened from only when it and the
 * snapshot both use the C library's memory: a store's allocator may end
 * with the store, and a replayer's own allocator sees all its memory.
 */
Test(replay, a_replayer_outlives_the_store_it_opened_and_its_allocator)
{
    evs_store_opts o;
    evs_store *s2;
    evs_replay *full, *r;
    tu_alloc sa, ra;
    char *want, *got;
    int fs = -1;
    hist h;

    rich(&h);
    record(&h, "rich");
    full = open_at("rich", 0, NULL);
    snapshot(full);
    want = hist_state(full, NULL);

    /* A store with its own allocator, closed before the replayer. */
    tu_alloc_init(&sa);
    evs_store_opts_init(&o);
    o.alloc = &sa.a;
    cr_assert_eq(evs_store_open(dir, &o, &s2), 0);
    r = hist_replayer();
    cr_assert_eq(evs_replay_open(r, s2, "rich", 4, 0, &fs, NULL), 0);
    cr_assert_eq(fs, 1);
    evs_store_close(s2);
    cr_assert_eq(sa.live, 0,
                 "the replayer holds %ld blocks of the store's "
                 "allocator",
                 sa.live);
    got = hist_state(r, NULL);
    cr_assert_str_eq(got, want);
    free(got);
    evs_replay_free(r);

    /* A replayer with its own allocator has all its memory from it. */
    tu_alloc_init(&ra);
    r = fa_replayer(&ra);
    fs = -1;
    cr_assert_eq(evs_replay_open(r, st, "rich", 4, 0, &fs, NULL), 0);
    cr_assert_eq(fs, 1);
    cr_assert_gt(ra.live, 0);
    got = fa_state(&ra, r);
    cr_assert_str_eq(got, want);
    free(got);
    evs_replay_free(r);
    cr_assert_eq(ra.live, 0);

    free(want);
    evs_replay_free(full);
    hist_free(&h);
}

Test(replay, state_json_and_load_under_allocation_failures)
{
    evs_replay *full, *r;
    tu_alloc f;
    char *want;
    size_t len;
    long n;
    hist h;

    rich(&h);
    record(&h, "rich");
    full = open_at("rich", 0, NULL);
    want = hist_state(full, &len);
    tu_alloc_init(&f);

    /* Loading. */
    for (n = 1; n < 100000; n++) {
        int rc;
        r = fa_replayer(&f);
        tu_alloc_fail(&f, n, TU_FAIL_FROM);
        rc = evs_replay_load_state(r, want, len);
        cr_assert(rc == 0 || rc == -ENOMEM, "allocation %ld: %d", n, rc);
        if (rc == 0) {
            char *got = fa_state(&f, r);
            cr_assert_str_eq(got, want);
            free(got);
        } else {
            evs_replay *fresh = hist_replayer();
            char *got = fa_state(&f, r), *empty = hist_state(fresh, NULL);
            cr_assert_str_eq(got, empty, "a failed load leaves it empty");
            cr_assert_eq(evs_replay_path_count(r), 0);
            free(got);
            free(empty);
            evs_replay_free(fresh);
        }
        evs_replay_free(r);
        cr_assert_eq(f.live, 0, "allocation %ld: %ld blocks leaked", n, f.live);
        if (rc == 0 && f.failed == 0)
            break;
    }
    cr_assert_gt(n, 5);
    cr_assert_lt(n, 100000);

    /* Writing. */
    r = fa_replayer(&f);
    cr_assert_eq(evs_replay_load_state(r, want, len), 0);
    for (n = 1; n < 100000; n++) {
        char *out = NULL;
        size_t olen = 12345;
        int rc;
        tu_alloc_fail(&f, n, TU_FAIL_ONCE);
        rc = evs_replay_state_json(r, &out, &olen);
        tu_alloc_stop(&f);
        if (rc == 0) {
            cr_assert_eq(olen, len);
            cr_assert(memcmp(out, want, len) == 0);
            evs_free(&f.a, out);
            if (f.failed == 0)
                break;
        } else {
            cr_assert_eq(rc, -ENOMEM);
            cr_assert_null(out);
            cr_assert_eq(olen, 12345);
        }
    }
    cr_assert_lt(n, 100000);

    /* Saving a snapshot. */
    for (n = 1; n < 100000; n++) {
        int rc;
        tu_alloc_fail(&f, n, TU_FAIL_FROM);
        rc = evs_replay_snapshot(r, st, (evs_span){NULL, 0});
        tu_alloc_stop(&f);
        cr_assert(rc == 0 || rc == -ENOMEM, "%d", rc);
        if (rc == 0 && f.failed == 0)
            break;
    }
    cr_assert_lt(n, 100000);
    evs_replay_free(r);
    cr_assert_eq(f.live, 0);
    {
        int fs;
        evs_replay *back = open_at("rich", 0, &fs);
        char *got = hist_state(back, NULL);
        cr_assert_eq(fs, 1);
        cr_assert_str_eq(got, want);
        free(got);
        evs_replay_free(back);
    }
    free(want);
    evs_replay_free(full);
    hist_free(&h);
}

/* Whether a new replayer made from o is compact, by its state JSON. */
static int made_compact(const evs_replay_opts *o)
{
    evs_replay *r = NULL;
    char *s = NULL;
    size_t n;
    int compact;

    cr_assert_eq(evs_replay_new(o, &r), 0);
    cr_assert_eq(evs_replay_state_json(r, &s, &n), 0);
    compact = n >= 15 && memcmp(s + n - 15, "\"compact\":true}", 15) == 0;
    free(s);
    evs_replay_free(r);
    return compact;
}

/* Options are read as common.h's rule for options structs says: a size
 * below the struct's first version (a struct not filled in by
 * evs_replay_opts_init) is refused, and so is a larger struct (a caller
 * built against newer headers) that sets a field this library does not
 * know; left zero, such fields are fine. */
Test(replay, opts_are_read_only_as_far_as_their_size_goes)
{
    struct {
        evs_replay_opts o;
        unsigned char newer[16];
    } big;
    evs_replay *r = NULL;

    memset(&big, 0, sizeof(big));
    evs_replay_opts_init(&big.o);
    cr_assert_eq(big.o.size, sizeof(big.o));
    big.o.compact = 1;
    cr_assert(made_compact(&big.o));
    big.o.size = offsetof(evs_replay_opts, compact);
    cr_assert_eq(evs_replay_new(&big.o, &r), -EINVAL);
    big.o.size = 0;
    cr_assert_eq(evs_replay_new(&big.o, &r), -EINVAL);
    big.o.size = sizeof(big);
    cr_assert(made_compact(&big.o), "unknown fields left zero are fine");
    big.newer[3] = 1;
    cr_assert_eq(evs_replay_new(&big.o, &r), -EINVAL);
    cr_assert_null(r);
}

Test(replay, history_warning_keeps_its_first_sequence_in_the_state)
{
    hist h;
    evs_replay *r = hist_replayer(), *back = hist_replayer();
    char *json, *again, *old;
    size_t len, len2;
    evs_error_info v;

    start(&h, "{\"workflow_name\":\"w\"}");
    hist_add(&h, "path_started", NULL, NULL, "{\"parent\":null}");
    hist_add(&h, "history_warning", NULL, NULL,
             "{\"threshold\":\"events\",\"events\":2,\"bytes\":400,"
             "\"limit\":2,\"max_events\":10,\"max_bytes\":null}");
    /* A second is allowed (old writers never wrote one), and changes
     * nothing. */
    hist_add(&h, "history_warning", NULL, NULL, "{}");
    cr_assert_eq(hist_apply(r, &h, 0, h.n, &v), 0, "%s", v.msg);
    cr_assert_eq(evs_replay_exec(r)->history_warning_seq, 3);
    json = hist_state(r, &len);
    cr_assert(strstr(json, "\"last_seq\":4,\"history_warning\":3,"), "%s",
              json);
    /* The state reads back the same; one written before the member
     * existed reads as none. */
    cr_assert_eq(evs_replay_load_state(back, json, len), 0);
    cr_assert_eq(evs_replay_exec(back)->history_warning_seq, 3);
    again = hist_state(back, &len2);
    cr_assert_str_eq(again, json);
    old = strdup(json);
    {
        char *p = strstr(old, "\"history_warning\":3,");
        memmove(p, p + strlen("\"history_warning\":3,"),
                strlen(p + strlen("\"history_warning\":3,")) + 1);
    }
    evs_replay_free(back);
    back = hist_replayer();
    cr_assert_eq(evs_replay_load_state(back, old, strlen(old)), 0);
    cr_assert_eq(evs_replay_exec(back)->history_warning_seq, 0);
    free(old);
    free(again);
    free(json);
    evs_replay_free(back);
    evs_replay_free(r);
    hist_free(&h);
}
