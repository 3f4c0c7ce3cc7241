/*
 * test_strategies.c: retrying executions, version decisions and
 * definition changes (issue 6), end to end. Workflows run on the
 * orchestrator's own loop with C actions that count their calls per
 * (execution, step, iteration); a successor made by evs_exec_retry is then
 * resumed, and the counters show what ran again, while its log, replayed,
 * shows what it kept: the origin's prefix, the lineage, step_reset /
 * step_skipped. A fault-injecting store shows that a retry interrupted at
 * any I/O call leaves no half-made successor. Where the command line is
 * the contract (evrun resume --definition, evrun check), the real binary
 * ($EVRUN) runs.
 */
#include <criterion/criterion.h>

#include "fault_io.h"
#include "formats_shared.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *xdir; /* scratch for the command-line tests */

/* ---------------------------------------------------------------- */
/* This suite's actions (t_hold comes with the harness)             */
/* ---------------------------------------------------------------- */

/* Failure rules of t_act: attempts 1..upto of (step, iteration) fail with
 * type "boom", retryable unless fatal. */
typedef struct rule {
    const char *step;
    int64_t iter;
    uint32_t upto;
    int fatal;
} rule;

static rule rules[8];
static size_t nrules;

static void fail_rule(const char *step, int64_t iter, uint32_t upto, int fatal)
{
    cr_assert_lt(nrules, sizeof(rules) / sizeof(*rules));
    rules[nrules++] = (rule){step, iter, upto, fatal};
}

/* Output = input, unless a rule makes the attempt fail. */
static void t_act(void *arg, evs_action_req *req)
{
    const evs_action_call *c = evs_action_req_call(req);

    (void)arg;
    record_call(req);
    for (size_t i = 0; i < nrules; i++)
        if (span_is(c->step, rules[i].step) &&
            (rules[i].iter == ANY_ITER || rules[i].iter == c->iteration) &&
            c->attempt <= rules[i].upto) {
            evs_action_fail(req, S("boom"), S("failed as the test asked"),
                            !rules[i].fatal);
            return;
        }
    evs_action_complete(req, c->input);
}

/* GetVersion from C: asks for change "cfeat" in [ver_min, ver_max], then
 * again with a higher max; the answers go to ver_log. Held while
 * hold_mode is set; else completes with {"v":first,"again":second}. */
static int64_t ver_min, ver_max = 3;
static struct {
    int rc1, rc2;
    int64_t v1, v2;
} ver_log[8];
static size_t nver;
static int ver_enoent = 1, ver_einval = 1;

static void t_ver(void *arg, evs_action_req *req)
{
    const evs_action_call *c = evs_action_req_call(req);
    char id[EVS_ID_MAX + 1], out[96];
    int64_t v1 = -9, v2 = -9, dummy = -9;
    int rc1, rc2;

    (void)arg;
    record_call(req);
    cpy(id, sizeof(id), c->execution_id);
    ver_enoent =
        evs_orch_get_version(orch, S("no-such-exec"), S("cfeat"), 0, 1, &dummy);
    ver_einval = evs_orch_get_version(orch, S(id), S("cfeat"), 5, 1, &dummy);
    rc1 = evs_orch_get_version(orch, S(id), S("cfeat"), ver_min, ver_max, &v1);
    rc2 = rc1 ? rc1
              : evs_orch_get_version(orch, S(id), S("cfeat"), ver_min,
                                     ver_max + 2, &v2);
    cr_assert_lt(nver, sizeof(ver_log) / sizeof(*ver_log));
    ver_log[nver].rc1 = rc1;
    ver_log[nver].rc2 = rc2;
    ver_log[nver].v1 = v1;
    ver_log[nver].v2 = v2;
    nver++;
    if (rc1 || rc2) {
        evs_action_fail(req, S("version"), S("no version"), 0);
        return;
    }
    if (hold_mode) {
        hold(req);
        return;
    }
    snprintf(out, sizeof(out), "{\"v\":%lld,\"again\":%lld}", (long long)v1,
             (long long)v2);
    evs_action_complete(req, S(out));
}

static void register_actions(evs_orch *o)
{
    cr_assert_eq(evs_orch_register(o, "t_act", t_act, NULL, 0), 0);
    cr_assert_eq(evs_orch_register(o, "t_ver", t_ver, NULL, 0), 0);
}

/* ---------------------------------------------------------------- */
/* Reading histories                                                */
/* ---------------------------------------------------------------- */

/* An execution's files, byte for byte (freed at teardown). */
typedef struct files {
    char *log, *snap;
    size_t nlog, nsnap;
} files;

/* The same through the store, on a backend without files: the log's
 * lines as a reader returns them, and the snapshot encoded again. */
static files files_in_store(const char *id)
{
    evs_snapshot *sn = NULL;
    evs_cursor *c = NULL;
    evs_log *l = NULL;
    evs_event ev;
    evs_span raw;
    char *enc;
    size_t cap = 0;
    files f;
    int rc;

    memset(&f, 0, sizeof(f));
    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, &raw, NULL)) == 1) {
        if (f.nlog + raw.len + 1 > cap) {
            cap = (f.nlog + raw.len + 1) * 2;
            f.log = realloc(f.log, cap);
            cr_assert_not_null(f.log);
        }
        memcpy(f.log + f.nlog, raw.ptr, raw.len);
        f.nlog += raw.len;
    }
    cr_assert_eq(rc, 0);
    evs_cursor_close(c);
    evs_log_close(l);
    f.log = pooled(f.log ? f.log : strdup(""));
    cr_assert_eq(evs_snapshot_load(st, id, strlen(id), &sn, NULL), 0);
    cr_assert_eq(evs_snapshot_encode(sn, NULL, &enc, &f.nsnap), 0);
    f.snap = pooled(malloc(f.nsnap + 1));
    memcpy(f.snap, enc, f.nsnap);
    evs_free(NULL, enc);
    evs_snapshot_free(sn);
    return f;
}

static files files_of(const char *id)
{
    char *p;
    files f;

    if (!tu_backend_is_file())
        return files_in_store(id);
    p = tu_path(dir, id, "events.jsonl");
    f.log = pooled(tu_read_file(p, &f.nlog));
    free(p);
    p = tu_path(dir, id, "snapshot.json");
    f.snap = pooled(tu_read_file(p, &f.nsnap));
    free(p);
    return f;
}

static void expect_files_unchanged(const char *id, const files *was)
{
    files now = files_of(id);

    cr_assert_eq(now.nlog, was->nlog, "%s: its log changed size", id);
    cr_assert(memcmp(now.log, was->log, now.nlog) == 0,
              "%s: its log "
              "changed",
              id);
    cr_assert_eq(now.nsnap, was->nsnap, "%s: its snapshot changed", id);
    cr_assert(memcmp(now.snap, was->snap, now.nsnap) == 0,
              "%s: its snapshot changed", id);
}

/* execution_started's data in a successor: every member of the origin's
 * but its lineage (and `inputs` and `inputs_hash` when new_inputs) with
 * the same value, plus `lineage`, and nothing else. */
static void expect_start_data(evs_span orig, evs_span succ, int new_inputs)
{
    evs__jit it;
    evs_span k, v, w;
    char key[64];

    cr_assert_eq(evs__json_iter_begin(&it, orig, '{'), 0);
    while (evs__json_obj_next(&it, &k, &v) == 1) {
        cr_assert_lt(k.len, sizeof(key));
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        if (strcmp(key, "lineage") == 0)
            continue;
        cr_assert_eq(evs__json_get(succ, key, &w), 1,
                     "the successor's execution_started lost %s: %.*s", key,
                     (int)succ.len, succ.ptr);
        if (new_inputs &&
            (strcmp(key, "inputs") == 0 || strcmp(key, "inputs_hash") == 0))
            continue;
        cr_assert(spans_equal(v, w),
                  "execution_started's %s: %.*s, "
                  "origin's %.*s",
                  key, (int)w.len, w.ptr, (int)v.len, v.ptr);
    }
    cr_assert_eq(evs__json_iter_begin(&it, succ, '{'), 0);
    while (evs__json_obj_next(&it, &k, &v) == 1) {
        cr_assert_lt(k.len, sizeof(key));
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        if (strcmp(key, "lineage") != 0)
            cr_assert_eq(evs__json_get(orig, key, &w), 1,
                         "the successor's execution_started adds %s", key);
    }
}

/* Events 1..n of succ are the origin's: type, path, step, data and time,
 * with new ids and the successor's execution id; execution_started's
 * data differs only by the lineage (and, for new inputs, the inputs). */
static void expect_prefix(const char *origin, const char *succ, uint64_t n,
                          int new_inputs)
{
    evlist a = events_of(origin), b = events_of(succ);

    cr_assert_geq(a.n, n);
    cr_assert_geq(b.n, n);
    for (uint64_t i = 0; i < n; i++) {
        const evs_event *x = &a.v[i].ev, *y = &b.v[i].ev;
        cr_assert_eq(y->sequence, i + 1);
        cr_assert(spans_equal(x->event_type, y->event_type),
                  "seq %llu: %.*s, origin's %.*s", (unsigned long long)i + 1,
                  (int)y->event_type.len, y->event_type.ptr,
                  (int)x->event_type.len, x->event_type.ptr);
        cr_assert(spans_equal(x->path_id, y->path_id), "seq %llu: path",
                  (unsigned long long)i + 1);
        cr_assert(spans_equal(x->step_name, y->step_name), "seq %llu: step",
                  (unsigned long long)i + 1);
        cr_assert_eq(x->timestamp_us, y->timestamp_us, "seq %llu: time",
                     (unsigned long long)i + 1);
        cr_assert(!spans_equal(x->id, y->id), "seq %llu: same event id",
                  (unsigned long long)i + 1);
        expect_span(y->execution_id, succ);
        if (i == 0)
            expect_start_data(x->data, y->data, new_inputs);
        else
            cr_assert(spans_equal(x->data, y->data),
                      "seq %llu: data %.*s, origin's %.*s",
                      (unsigned long long)i + 1, (int)y->data.len, y->data.ptr,
                      (int)x->data.len, x->data.ptr);
    }
    evlist_free(&a);
    evlist_free(&b);
}

/* The successor names its origin, the strategy and the last event kept,
 * in execution_started and in its replayed state. */
static void expect_lineage(const char *succ, const char *origin,
                           const char *strategy, uint64_t from_seq)
{
    evlist b = events_of(succ);
    const evs_event *e = evf(&b, "execution_started", NULL, NULL, 0);
    char want[128];
    evs_span lin;
    evs_replay *r;

    cr_assert_not_null(e);
    cr_assert_eq(e->sequence, 1);
    lin = dget(e, "lineage");
    snprintf(want, sizeof(want), "\"%s\"", origin);
    expect_span(jget(lin, "retry_of"), want);
    snprintf(want, sizeof(want), "\"%s\"", strategy);
    expect_span(jget(lin, "strategy"), want);
    cr_assert_eq(jint(jget(lin, "from_seq")), (int64_t)from_seq);
    evlist_free(&b);
    r = replay_of(succ);
    lin = evs_replay_exec(r)->lineage;
    snprintf(want, sizeof(want), "\"%s\"", origin);
    expect_span(jget(lin, "retry_of"), want);
    rp_free(r);
}

/* The failure point of an ended execution. */
static uint64_t failed_seq_of(const char *id)
{
    evs_replay *r = replay_of(id);
    uint64_t n = evs_replay_exec(r)->failed_seq;

    cr_assert_gt(n, 0, "%s has no failure point", id);
    rp_free(r);
    return n;
}

/* ---------------------------------------------------------------- */
/* Retrying                                                         */
/* ---------------------------------------------------------------- */

/* What the last retry() said; "x" until the library fills it. */
static evs_error_info why;

/* evs_exec_retry of origin into new_id; checks out_id on success, and on
 * failure that why.code is the code returned. */
static int retry(const char *origin, evs_retry_opts *o, const char *new_id)
{
    char out[EVS_ID_MAX + 1] = "untouched";
    int rc;

    o->new_id = S(new_id);
    memset(&why, 0, sizeof(why));
    snprintf(why.msg, sizeof(why.msg), "x");
    snprintf(why.step, sizeof(why.step), "x");
    rc = evs_exec_retry(st, S(origin), o, out, &why);
    if (rc == 0) {
        cr_assert_str_eq(out, new_id);
    } else {
        cr_assert_str_eq(out, "untouched", "a refused retry set out_id");
        cr_assert_eq(why.code, rc, "err->code %s, returned %s",
                     evs_err_name(why.code), evs_err_name(rc));
        cr_assert_not_null(why.kind);
    }
    return rc;
}

static void retry_ok(const char *origin, evs_retry_opts *o, const char *new_id)
{
    int rc = retry(origin, o, new_id);

    cr_assert_eq(rc, 0, "retry of %s (%s): %s: %s", origin,
                 evs_retry_strategy_name(o->strategy), evs_err_name(rc),
                 why.msg);
}

static void retry_opts(evs_retry_opts *o, evs_retry_strategy s)
{
    evs_retry_opts_init(o);
    o->strategy = s;
}

/* A refusal says why: kind "retry", the step it is about ("" when
 * none), a message holding `needle`, the origin's id. */
static void expect_refused(const char *origin, evs_retry_opts *o,
                           const char *new_id, int want, const char *step,
                           const char *needle)
{
    size_t before = exec_count();
    int rc = retry(origin, o, new_id);

    cr_assert_eq(rc, want, "%s (%s): %s, expected %s: %s", origin,
                 evs_retry_strategy_name(o->strategy), evs_err_name(rc),
                 evs_err_name(want), why.msg);
    cr_assert_neq(why.msg[0], '\0');
    cr_assert(strcmp(why.msg, "x") != 0, "no reason given");
    cr_assert_str_eq(why.kind, "retry");
    cr_assert_str_eq(why.step, step, "step \"%s\", want \"%s\" (%s)", why.step,
                     step, why.msg);
    cr_assert_str_eq(why.execution_id, origin);
    if (needle)
        cr_assert_not_null(strstr(why.msg, needle), "reason: %s", why.msg);
    cr_assert(!evs_exec_exists(st, new_id, strlen(new_id)));
    cr_assert_eq(exec_count(), before);
}

/* A failure that is not a refusal sets only the code (orchestrator.h). */
static void expect_failed(const char *origin, evs_retry_opts *o,
                          const char *new_id, int want)
{
    cr_assert_eq(retry(origin, o, new_id), want, "%s", why.msg);
    cr_assert_str_eq(why.msg, "");
    cr_assert_str_eq(why.step, "");
}

/* ---------------------------------------------------------------- */
/* Fixture                                                          */
/* ---------------------------------------------------------------- */

static void setup(void)
{
    harness_setup("strat", register_actions, EVS_SYNC_FULL);
    nrules = 0;
    nver = 0;
    ver_min = 0;
    ver_max = 3;
}

static void teardown(void)
{
    if (xdir)
        tu_rmtree_free(xdir);
    xdir = NULL;
    harness_teardown();
}

TestSuite(strategies, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- */
/* from_failure                                                     */
/* ---------------------------------------------------------------- */

static const char *linear_def(void)
{
    return J("{'name':'lin','inputs':{'x':{'type':'integer','default':1}},"
             "'outputs':{'c':'${steps.c.output}'},'steps':["
             "{'name':'a','kind':'action','action':'t_act',"
             "'params':{'n':'a','x':'${inputs.x}'},'next':'b'},"
             "{'name':'b','kind':'action','action':'t_act',"
             "'params':{'n':'b','a':'${steps.a.output}'},"
             "'retry':{'max_attempts':2,'initial_interval_ms':10},"
             "'next':'c'},"
             "{'name':'c','kind':'action','action':'t_act',"
             "'params':{'n':'c','b':'${steps.b.output.n}'}}]}");
}

Test(strategies, from_failure_runs_only_the_failed_step_and_the_steps_after)
{
    evs_retry_opts o;
    files was;
    uint64_t fseq;
    evs_replay *r;
    const evs_step_state *b;
    evlist ev;
    const call_rec *c;

    fail_rule("b", ANY_ITER, 99, 0);
    run_new(linear_def(), "{\"x\":7}", "lin", EVS_OUTCOME_FAILED);
    cr_assert_eq(count("lin", "a", ANY_ITER), 1);
    cr_assert_eq(count("lin", "b", ANY_ITER), 2);
    cr_assert_eq(count("lin", "c", ANY_ITER), 0);
    fseq = failed_seq_of("lin");
    was = files_of("lin");

    retry_opts(&o, EVS_RETRY_FROM_FAILURE);
    retry_ok("lin", &o, "lin-r");
    expect_lineage("lin-r", "lin", "from_failure", fseq - 1);
    expect_prefix("lin", "lin-r", fseq - 1, 0);
    ev = events_of("lin-r");
    cr_assert_eq(ev.n, fseq, "the prefix and one step_reset");
    expect_span(ev.v[fseq - 1].ev.event_type, "step_reset");
    expect_span(ev.v[fseq - 1].ev.step_name, "b");
    expect_span(ev.v[fseq - 1].ev.path_id, "main");
    evlist_free(&ev);
    r = replay_of("lin-r");
    cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_WAITING);
    cr_assert_eq(evs_replay_exec(r)->failed_seq, 0);
    b = step_of(r, "main", "b", -1);
    cr_assert_not_null(b);
    cr_assert_eq(b->status, EVS_STEP_RETRYING);
    cr_assert_eq(b->attempts, 0, "the retry budget starts afresh");
    rp_free(r);

    /* Attempt 1 of the successor fails too, attempt 2 succeeds: with
     * max_attempts 2 that needs a fresh budget (the origin spent both). */
    nrules = 0;
    fail_rule("b", ANY_ITER, 1, 0);
    run_resume("lin-r", EVS_OUTCOME_COMPLETED);
    expect_path("lin-r", "b", "main");
    expect_path("lin-r", "c", "main");
    cr_assert_eq(count("lin-r", "a", ANY_ITER), 0);
    cr_assert_eq(count("lin-r", "b", ANY_ITER), 2);
    cr_assert_eq(count("lin-r", "c", ANY_ITER), 1);
    c = call_of("lin-r", "b", -1, 0);
    cr_assert_eq(c->attempt, 1);
    cr_assert_str_eq(c->key, "lin-r/main/b/-1");
    cr_assert_str_eq(c->input, "{\"n\":\"b\",\"a\":{\"n\":\"a\",\"x\":7}}",
                     "b sees a's recorded output");
    cr_assert_eq(call_of("lin-r", "b", -1, 1)->attempt, 2);
    expect_input("lin-r", "c", -1, 0, "{\"n\":\"c\",\"b\":\"b\"}");
    r = replay_of("lin-r");
    expect_span(evs_replay_exec(r)->outputs,
                "{\"c\":{\"n\":\"c\",\"b\":\"b\"}}");
    b = step_of(r, "main", "b", -1);
    cr_assert_eq(b->attempts, 2);
    cr_assert_eq(b->status, EVS_STEP_COMPLETED);
    cr_assert_eq(step_of(r, "main", "a", -1)->attempts, 1);
    rp_free(r);
    expect_files_unchanged("lin", &was);
}

/* main runs plan, then branches: left (l1, l2) completes; slow holds its
 * action; right waits for "go" (sent once left is done), then r1 fails
 * for good. */
static const char *branch_def(void)
{
    return J("{'name':'br','steps':["
             "{'name':'plan','kind':'action','action':'t_act',"
             "'params':'plan','next':["
             "{'to':'l1','path':'left'},{'to':'r0','path':'right'},"
             "{'to':'s1','path':'slow'}],'then':'gather'},"
             "{'name':'l1','kind':'action','action':'t_act','params':'l1',"
             "'next':'l2'},"
             "{'name':'l2','kind':'action','action':'t_act','params':'l2'},"
             "{'name':'r0','kind':'wait_event','event':'go','next':'r1'},"
             "{'name':'r1','kind':'action','action':'t_act','params':'r1'},"
             "{'name':'s1','kind':'action','action':'t_hold','params':'s1'},"
             "{'name':'gather','kind':'join','paths':'*','next':'final'},"
             "{'name':'final','kind':'action','action':'t_act',"
             "'params':{'j':'${steps.gather.output}'}}]}");
}

static int script_branch(int step)
{
    const evs_replay *r;
    const evs_step_state *l2;
    const evs_path_state *left;

    switch (step) {
    case 0:
        r = evs_orch_state(orch, S("br"));
        if (!r || held_count() != 1)
            return 0;
        /* l2 is the left branch's last step: once the branch ends, the
         * runner's compact state no longer holds it. */
        l2 = step_of(r, "main.left", "l2", -1);
        left = evs_replay_find_path(r, S("main.left"));
        if ((!l2 || l2->status != EVS_STEP_COMPLETED) &&
            (!left || left->status != EVS_PATH_COMPLETED))
            return 0;
        cr_assert_eq(evs_orch_send(orch, S("br"), S("go"), S("1")), 0);
        return 1;
    default:
        /* Once the execution has failed (or after a second, if the
         * runner waits for actions in flight first), the held action
         * answers: too late for the execution, or the last step. */
        if (!outcome_of("br") && step < 200)
            return step + 1;
        complete_held("\"s1-late\"");
        return -1;
    }
}

Test(strategies, from_failure_on_branches_keeps_the_completed_branch_steps)
{
    evs_retry_opts o;
    files was;
    uint64_t fseq, s1_done;
    evs_replay *r;
    evlist ev;
    const evs_event *e;

    fail_rule("r1", ANY_ITER, 99, 1);
    mk_orch(1);
    start(branch_def(), "", "br");
    script_start(script_branch);
    run_orch();
    cr_assert(!script_gave_up);
    expect_outcome("br", EVS_OUTCOME_FAILED);
    cr_assert_eq(count("br", "plan", -1), 1);
    cr_assert_eq(count("br", "l1", -1), 1);
    cr_assert_eq(count("br", "l2", -1), 1);
    cr_assert_eq(count("br", "r1", -1), 1);
    cr_assert_eq(count("br", "s1", -1), 1);
    cr_assert_eq(count("br", "final", -1), 0);
    fseq = failed_seq_of("br");
    ev = events_of("br");
    e = evf(&ev, "step_completed", "s1", NULL, 0);
    s1_done = e ? e->sequence : 0;
    cr_assert(evf(&ev, "step_completed", "l2", "main.left", 0)->sequence <
              fseq);
    evlist_free(&ev);
    was = files_of("br");

    retry_opts(&o, EVS_RETRY_FROM_FAILURE);
    retry_ok("br", &o, "br-r");
    expect_lineage("br-r", "br", "from_failure", fseq - 1);
    expect_prefix("br", "br-r", fseq - 1, 0);
    ev = events_of("br-r");
    e = evf(&ev, "step_reset", NULL, NULL, 0);
    cr_assert_not_null(e);
    cr_assert_eq(e->sequence, fseq);
    expect_span(e->step_name, "r1");
    expect_span(e->path_id, "main.right");
    evlist_free(&ev);

    nrules = 0;
    hold_mode = 0;
    run_resume("br-r", EVS_OUTCOME_COMPLETED);
    expect_path("br-r", "r1", "main.right");
    expect_path("br-r", "final", "main");
    cr_assert_eq(count("br-r", "plan", -1), 0);
    cr_assert_eq(count("br-r", "l1", -1), 0);
    cr_assert_eq(count("br-r", "l2", -1), 0);
    cr_assert_eq(count("br-r", "r1", -1), 1);
    cr_assert_eq(count("br-r", "final", -1), 1);
    /* In flight when r1 failed: run again (once); done before: not. */
    cr_assert_eq(count("br-r", "s1", -1), s1_done && s1_done < fseq ? 0u : 1u);
    if (count("br-r", "s1", -1))
        cr_assert_str_eq(call_of("br-r", "s1", -1, 0)->key,
                         "br-r/main.slow/s1/-1");
    expect_input("br-r", "final", -1, 0,
                 "{\"j\":{\"left\":\"l2\",\"right\":\"r1\",\"slow\":\"s1\"}}");
    r = replay_of("br-r");
    cr_assert_eq(step_of(r, "main.left", "l1", -1)->attempts, 1);
    cr_assert_eq(step_of(r, "main.right", "r1", -1)->attempts, 1);
    cr_assert_eq(step_of(r, "main.right", "r1", -1)->status,
                 EVS_STEP_COMPLETED);
    rp_free(r);
    expect_files_unchanged("br", &was);
}

static const char *each_def(void)
{
    return J("{'name':'ea','inputs':{'list':{'type':'array'}},'steps':["
             "{'name':'items','kind':'action','action':'t_act',"
             "'each':'${inputs.list}','params':{'i':'${index}','v':'${item}'},"
             "'retry':{'max_attempts':2,'initial_interval_ms':10},"
             "'store':'all','next':'after'},"
             "{'name':'after','kind':'action','action':'t_act',"
             "'params':{'all':'${vars.all}'}}]}");
}

Test(strategies, from_failure_in_each_reruns_the_failed_iteration_afresh)
{
    evs_retry_opts o;
    files was;
    uint64_t fseq;
    evs_replay *r;
    evlist ev;
    const evs_event *e;
    const evs_step_state *it2;

    fail_rule("items", 2, 99, 0);
    run_new(each_def(), "{\"list\":[\"a\",\"b\",\"c\",\"d\"]}", "ea",
            EVS_OUTCOME_FAILED);
    cr_assert_eq(count("ea", "items", 0), 1);
    cr_assert_eq(count("ea", "items", 1), 1);
    cr_assert_eq(count("ea", "items", 2), 2);
    cr_assert_eq(count("ea", "items", 3), 0);
    fseq = failed_seq_of("ea");
    was = files_of("ea");

    retry_opts(&o, EVS_RETRY_FROM_FAILURE);
    retry_ok("ea", &o, "ea-r");
    expect_lineage("ea-r", "ea", "from_failure", fseq - 1);
    expect_prefix("ea", "ea-r", fseq - 1, 0);
    ev = events_of("ea-r");
    e = evf(&ev, "step_reset", "items", "main", 0);
    cr_assert_not_null(e);
    cr_assert_eq(jint(dget(e, "iteration")), 2);
    evlist_free(&ev);
    r = replay_of("ea-r");
    it2 = step_of(r, "main", "items", 2);
    cr_assert_not_null(it2);
    cr_assert_eq(it2->attempts, 0);
    cr_assert_eq(it2->status, EVS_STEP_RETRYING);
    cr_assert_eq(step_of(r, "main", "items", 1)->status, EVS_STEP_COMPLETED);
    rp_free(r);

    nrules = 0;
    fail_rule("items", 2, 1, 0);
    run_resume("ea-r", EVS_OUTCOME_COMPLETED);
    expect_path("ea-r", "items", "main");
    cr_assert_eq(count("ea-r", "items", 0), 0);
    cr_assert_eq(count("ea-r", "items", 1), 0);
    cr_assert_eq(count("ea-r", "items", 2), 2);
    cr_assert_eq(call_of("ea-r", "items", 2, 0)->attempt, 1);
    cr_assert_eq(call_of("ea-r", "items", 2, 1)->attempt, 2);
    cr_assert_str_eq(call_of("ea-r", "items", 2, 0)->key, "ea-r/main/items/2");
    cr_assert_eq(count("ea-r", "items", 3), 1);
    cr_assert_eq(count("ea-r", "after", -1), 1);
    expect_input("ea-r", "after", -1, 0,
                 "{\"all\":[{\"i\":0,\"v\":\"a\"},{\"i\":1,\"v\":\"b\"},"
                 "{\"i\":2,\"v\":\"c\"},{\"i\":3,\"v\":\"d\"}]}");
    r = replay_of("ea-r");
    cr_assert_eq(step_of(r, "main", "items", 2)->attempts, 2);
    cr_assert_eq(step_of(r, "main", "items", 0)->attempts, 1);
    rp_free(r);
    expect_files_unchanged("ea", &was);
}

/* ---------------------------------------------------------------- */
/* with_new_inputs                                                  */
/* ---------------------------------------------------------------- */

static const char *inputs_def(void)
{
    return J("{'name':'ni','inputs':{'x':{'type':'integer','required':true},"
             "'y':{'type':'integer','default':5}},'steps':["
             "{'name':'a','kind':'action','action':'t_act',"
             "'params':{'x':'${inputs.x}'},'next':'b'},"
             "{'name':'b','kind':'action','action':'t_act',"
             "'params':{'x':'${inputs.x}','a':'${steps.a.output}'},"
             "'next':'c'},"
             "{'name':'c','kind':'action','action':'t_act',"
             "'params':{'x':'${inputs.x}','y':'${inputs.y}'}}]}");
}

Test(strategies, with_new_inputs_runs_every_step_again_with_the_new_inputs)
{
    evs_retry_opts o;
    files was;
    evs_replay *r;

    run_new(inputs_def(), "{\"x\":1}", "ni", EVS_OUTCOME_COMPLETED);
    was = files_of("ni");
    retry_opts(&o, EVS_RETRY_WITH_NEW_INPUTS);
    o.inputs = S("{\"x\":2}");
    retry_ok("ni", &o, "ni-r");
    expect_lineage("ni-r", "ni", "with_new_inputs", 2);
    expect_prefix("ni", "ni-r", 2, 1);
    r = replay_of("ni-r");
    expect_span(evs_replay_exec(r)->inputs, "{\"x\":2,\"y\":5}");
    rp_free(r);

    run_resume("ni-r", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("ni-r", "a", -1), 1);
    cr_assert_eq(count("ni-r", "b", -1), 1);
    cr_assert_eq(count("ni-r", "c", -1), 1);
    expect_input("ni-r", "a", -1, 0, "{\"x\":2}");
    expect_input("ni-r", "b", -1, 0, "{\"x\":2,\"a\":{\"x\":2}}");
    expect_input("ni-r", "c", -1, 0, "{\"x\":2,\"y\":5}");
    expect_files_unchanged("ni", &was);
}

Test(strategies, with_new_inputs_from_a_step_reuses_only_the_steps_before_it)
{
    evs_retry_opts o;
    files was;
    uint64_t b_start;
    evlist ev;
    evs_replay *r;

    run_new(inputs_def(), "{\"x\":1}", "nf", EVS_OUTCOME_COMPLETED);
    ev = events_of("nf");
    b_start = evf(&ev, "step_started", "b", NULL, 0)->sequence;
    evlist_free(&ev);
    was = files_of("nf");

    retry_opts(&o, EVS_RETRY_WITH_NEW_INPUTS);
    o.inputs = S("{\"x\":2,\"y\":6}");
    o.from_step = S("b");
    retry_ok("nf", &o, "nf-r");
    expect_lineage("nf-r", "nf", "with_new_inputs", b_start - 1);
    expect_prefix("nf", "nf-r", b_start - 1, 1);
    ev = events_of("nf-r");
    cr_assert_eq(ev.n, b_start - 1);
    cr_assert_null(evf(&ev, "step_started", "b", NULL, 0));
    evlist_free(&ev);

    run_resume("nf-r", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("nf-r", "a", -1), 0, "a is reused");
    cr_assert_eq(count("nf-r", "b", -1), 1);
    cr_assert_eq(count("nf-r", "c", -1), 1);
    /* b runs with the new inputs and a's recorded output (old inputs). */
    expect_input("nf-r", "b", -1, 0, "{\"x\":2,\"a\":{\"x\":1}}");
    expect_input("nf-r", "c", -1, 0, "{\"x\":2,\"y\":6}");
    r = replay_of("nf-r");
    expect_span(evs_replay_exec(r)->inputs, "{\"x\":2,\"y\":6}");
    expect_span(step_of(r, "main", "a", -1)->output, "{\"x\":1}");
    rp_free(r);
    expect_files_unchanged("nf", &was);
}

Test(strategies, with_new_inputs_refuses_bad_inputs_and_creates_nothing)
{
    static const char *const bad[] = {"{\"x\":\"two\"}",
                                      "{}",
                                      "{\"x\":1.5}",
                                      "[1]",
                                      "{\"x\":",
                                      "{\"x\":1,\"x\":2}",
                                      "{\"x\":1,\"y\":\"no\"}"};
    evs_retry_opts o;
    size_t before;
    files was;

    run_new(inputs_def(), "{\"x\":1}", "nb", EVS_OUTCOME_COMPLETED);
    before = exec_count();
    was = files_of("nb");
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char id[16];
        snprintf(id, sizeof(id), "nb-%zu", i);
        retry_opts(&o, EVS_RETRY_WITH_NEW_INPUTS);
        o.inputs = S(bad[i]);
        cr_assert_eq(retry("nb", &o, id), EVS_EPARSE, "inputs %s", bad[i]);
        cr_assert_neq(why.msg[0], '\0');
        cr_assert(strcmp(why.msg, "x") != 0, "no reason given for %s", bad[i]);
        cr_assert_str_eq(why.kind, "inputs");
        cr_assert_str_eq(why.step, "");
        cr_assert_str_eq(why.execution_id, "nb");
        cr_assert(!evs_exec_exists(st, id, strlen(id)));
    }
    cr_assert_eq(exec_count(), before);
    expect_files_unchanged("nb", &was);
}

/* ---------------------------------------------------------------- */
/* skip_failed                                                      */
/* ---------------------------------------------------------------- */

static const char *skip_def(void)
{
    return J("{'name':'sk','steps':["
             "{'name':'a','kind':'action','action':'t_act','params':'A',"
             "'next':'b'},"
             "{'name':'b','kind':'action','action':'t_act','params':'B',"
             "'store':'bv','next':'c'},"
             "{'name':'c','kind':'action','action':'t_act',"
             "'params':{'got':'${steps.b.output}','var':'${vars.bv}'}}]}");
}

static void expect_skipped(const char *succ, uint64_t fseq, const char *output)
{
    evlist ev = events_of(succ);
    const evs_event *e;
    evs_replay *r;

    cr_assert_eq(ev.n, fseq);
    e = &ev.v[fseq - 1].ev;
    expect_span(e->event_type, "step_skipped");
    expect_span(e->step_name, "b");
    expect_span(dget(e, "output"), output);
    expect_span(dget(e, "stored_variable"), "\"bv\"");
    evlist_free(&ev);
    /* The replayed state keeps null as no value (empty). */
    if (strcmp(output, "null") == 0)
        output = "";
    r = replay_of(succ);
    cr_assert_eq(step_of(r, "main", "b", -1)->status, EVS_STEP_SKIPPED);
    expect_span(step_of(r, "main", "b", -1)->output, output);
    cr_assert_not_null(evs_replay_find_var(r, S("bv")));
    expect_span(evs_replay_find_var(r, S("bv"))->value, output);
    rp_free(r);
}

Test(strategies, skip_failed_continues_with_the_supplied_output_or_null)
{
    evs_retry_opts o;
    files was;
    uint64_t fseq;
    evs_replay *r;

    fail_rule("b", ANY_ITER, 99, 1);
    run_new(skip_def(), "", "sk", EVS_OUTCOME_FAILED);
    fseq = failed_seq_of("sk");
    was = files_of("sk");
    nrules = 0;

    retry_opts(&o, EVS_RETRY_SKIP_FAILED);
    o.output = S("{\"manual\":true}");
    retry_ok("sk", &o, "sk-out");
    expect_lineage("sk-out", "sk", "skip_failed", fseq - 1);
    expect_prefix("sk", "sk-out", fseq - 1, 0);
    expect_skipped("sk-out", fseq, "{\"manual\":true}");
    run_resume("sk-out", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("sk-out", "a", -1), 0);
    cr_assert_eq(count("sk-out", "b", -1), 0);
    cr_assert_eq(count("sk-out", "c", -1), 1);
    expect_input("sk-out", "c", -1, 0,
                 "{\"got\":{\"manual\":true},\"var\":{\"manual\":true}}");

    retry_opts(&o, EVS_RETRY_SKIP_FAILED);
    retry_ok("sk", &o, "sk-null");
    expect_skipped("sk-null", fseq, "null");
    run_resume("sk-null", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("sk-null", "b", -1), 0);
    expect_input("sk-null", "c", -1, 0, "{\"got\":null,\"var\":null}");
    r = replay_of("sk-null");
    expect_span(evs_replay_exec(r)->outputs, "{\"got\":null,\"var\":null}");
    rp_free(r);

    /* An output that is not JSON is refused. */
    retry_opts(&o, EVS_RETRY_SKIP_FAILED);
    o.output = S("{oops");
    expect_refused("sk", &o, "sk-bad", -EINVAL, "b", "not JSON");
    expect_files_unchanged("sk", &was);
}

/* ---------------------------------------------------------------- */
/* from_seq and from_start                                          */
/* ---------------------------------------------------------------- */

Test(strategies, from_seq_resets_exactly_to_every_point_of_the_history)
{
    evs_replay *r;
    evlist ev;
    uint64_t last, done[3];
    const char *steps[3] = {"a", "b", "c"};
    files was;
    char outputs[256];

    run_new(linear_def(), "{\"x\":3}", "fs", EVS_OUTCOME_COMPLETED);
    ev = events_of("fs");
    last = ev.n;
    for (int k = 0; k < 3; k++)
        done[k] = evf(&ev, "step_completed", steps[k], NULL, 0)->sequence;
    evlist_free(&ev);
    r = replay_of("fs");
    snprintf(outputs, sizeof(outputs), "%.*s",
             (int)evs_replay_exec(r)->outputs.len,
             evs_replay_exec(r)->outputs.ptr);
    rp_free(r);
    was = files_of("fs");
    cr_assert_geq(last, 9);

    for (uint64_t n = 2; n < last; n++) {
        evs_retry_opts o;
        char id[32];

        snprintf(id, sizeof(id), "fs-%llu", (unsigned long long)n);
        retry_opts(&o, EVS_RETRY_FROM_SEQ);
        o.from_seq = n;
        retry_ok("fs", &o, id);
        expect_lineage(id, "fs", "from_seq", n);
        cr_assert_eq(last_seq_of(id), n, "%s: exactly events 1..%llu", id,
                     (unsigned long long)n);
        expect_prefix("fs", id, n, 0);
        nouts = 0;
        run_resume(id, EVS_OUTCOME_COMPLETED);
        /* A step that completed by n is not run again; one started by n
         * and not completed is re-run; the others run once. */
        for (int k = 0; k < 3; k++)
            cr_assert_eq(count(id, steps[k], -1), done[k] <= n ? 0u : 1u,
                         "%s: %s ran %zu times", id, steps[k],
                         count(id, steps[k], -1));
        r = replay_of(id);
        expect_span(evs_replay_exec(r)->outputs, outputs);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(step_of(r, "main", steps[k], -1)->attempts, 1);
        rp_free(r);
    }
    expect_files_unchanged("fs", &was);
}

Test(strategies, from_start_runs_every_step_again)
{
    evs_retry_opts o;
    files was;
    evlist ev;

    fail_rule("c", ANY_ITER, 99, 1);
    run_new(linear_def(), "{\"x\":4}", "st", EVS_OUTCOME_FAILED);
    was = files_of("st");
    nrules = 0;
    retry_opts(&o, EVS_RETRY_FROM_START);
    retry_ok("st", &o, "st-r");
    expect_lineage("st-r", "st", "from_start", 2);
    expect_prefix("st", "st-r", 2, 0);
    ev = events_of("st-r");
    cr_assert_eq(ev.n, 2);
    evlist_free(&ev);
    run_resume("st-r", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("st-r", "a", -1), 1);
    cr_assert_eq(count("st-r", "b", -1), 1);
    cr_assert_eq(count("st-r", "c", -1), 1);
    expect_input("st-r", "a", -1, 0, "{\"n\":\"a\",\"x\":4}");
    expect_files_unchanged("st", &was);
}

/* evs_retry_opts are read as common.h's rule says: a size below the
 * struct's first version is refused, and a larger struct that sets a
 * field this library does not know; left zero, such fields are fine. */
Test(strategies, retry_opts_are_read_only_as_far_as_their_size_goes)
{
    struct {
        evs_retry_opts o;
        unsigned char newer[16];
    } big;
    char out[EVS_ID_MAX + 1] = "";

    fail_rule("c", ANY_ITER, 99, 1);
    run_new(linear_def(), "{\"x\":4}", "sz", EVS_OUTCOME_FAILED);
    memset(&big, 0, sizeof(big));
    retry_opts(&big.o, EVS_RETRY_FROM_START);
    cr_assert_eq(big.o.size, sizeof(big.o));
    big.o.new_id = S("sz-r");
    big.o.size = offsetof(evs_retry_opts, new_id);
    cr_assert_eq(evs_exec_retry(st, S("sz"), &big.o, out, &why), -EINVAL);
    big.o.size = sizeof(big);
    big.newer[5] = 1;
    cr_assert_eq(evs_exec_retry(st, S("sz"), &big.o, out, &why), -EINVAL);
    cr_assert(!evs_exec_exists(st, "sz-r", 4));
    big.newer[5] = 0;
    cr_assert_eq(evs_exec_retry(st, S("sz"), &big.o, out, &why), 0, "%s",
                 why.msg);
    cr_assert_str_eq(out, "sz-r");
}

/* ---------------------------------------------------------------- */
/* Refusals                                                         */
/* ---------------------------------------------------------------- */

Test(strategies, retries_that_do_not_apply_are_refused_with_a_reason)
{
    const char *waiter = J("{'name':'wt','steps':["
                           "{'name':'a','kind':'action','action':'t_act',"
                           "'params':1,'next':'w'},"
                           "{'name':'w','kind':'wait_event','event':'go'}]}");
    evs_retry_opts o;
    uint64_t last;

    /* Running: created and never run. */
    mk_orch(1);
    start(waiter, "", "run");
    evs_orch_stop(orch, 0);
    run_orch();
    {
        evs_replay *r = replay_of("run");
        cr_assert_eq(evs_replay_exec(r)->status, EVS_STATUS_RUNNING);
        rp_free(r);
    }
    retry_opts(&o, EVS_RETRY_FROM_START);
    expect_refused("run", &o, "run-r", -EINVAL, "", "running");
    /* Waiting for an event. */
    run_new(waiter, "", "wait", EVS_OUTCOME_SUSPENDED);
    retry_opts(&o, EVS_RETRY_FROM_START);
    expect_refused("wait", &o, "wait-r", -EINVAL, "", "waiting");
    retry_opts(&o, EVS_RETRY_SKIP_FAILED);
    expect_refused("wait", &o, "wait-r", -EINVAL, "", "waiting");
    /* Completed: nothing failed. */
    run_new(linear_def(), "", "done", EVS_OUTCOME_COMPLETED);
    last = last_seq_of("done");
    retry_opts(&o, EVS_RETRY_FROM_FAILURE);
    expect_refused("done", &o, "done-r", -EINVAL, "", "no failed step");
    retry_opts(&o, EVS_RETRY_SKIP_FAILED);
    expect_refused("done", &o, "done-r", -EINVAL, "", "no failed step");
    /* Sequences out of range. */
    {
        const uint64_t seqs[] = {0, 1, last, last + 1, UINT64_MAX};
        for (size_t i = 0; i < sizeof(seqs) / sizeof(*seqs); i++) {
            retry_opts(&o, EVS_RETRY_FROM_SEQ);
            o.from_seq = seqs[i];
            expect_refused("done", &o, "done-r", -EINVAL, "", "sequence");
        }
    }
    /* from_step: not in the definition, or never run. */
    retry_opts(&o, EVS_RETRY_WITH_NEW_INPUTS);
    o.inputs = S("{\"x\":2}");
    o.from_step = S("nosuch");
    expect_refused("done", &o, "done-r", -EINVAL, "nosuch", "nosuch");
    fail_rule("b", ANY_ITER, 99, 1);
    run_new(linear_def(), "", "part", EVS_OUTCOME_FAILED);
    retry_opts(&o, EVS_RETRY_WITH_NEW_INPUTS);
    o.inputs = S("{\"x\":2}");
    o.from_step = S("c");
    expect_refused("part", &o, "part-r", -EINVAL, "c", "never ran");
    /* No such origin, bad ids. */
    retry_opts(&o, EVS_RETRY_FROM_START);
    expect_failed("ghost", &o, "ghost-r", -ENOENT);
    expect_failed("bad id", &o, "x-r", EVS_EBADID);
    expect_failed("done", &o, "bad id", EVS_EBADID);
    /* A successor id that is taken. */
    expect_failed("done", &o, "part", -EEXIST);
    cr_assert_eq(exec_count(), 4);
}

/* ---------------------------------------------------------------- */
/* Atomicity                                                        */
/* ---------------------------------------------------------------- */

/* A successor that exists is whole: it replays strictly, names its
 * origin, ends with the step_reset, and its snapshot loads and equals
 * its replayed state. */
static void expect_whole(const char *id, uint64_t fseq)
{
    evs_snapshot *sn = NULL;
    evs_replay *r, *l;
    evlist ev;

    expect_lineage(id, "at", "from_failure", fseq - 1);
    ev = events_of(id);
    cr_assert_eq(ev.n, fseq, "%s: %zu events", id, ev.n);
    expect_span(ev.v[fseq - 1].ev.event_type, "step_reset");
    evlist_free(&ev);
    cr_assert_eq(evs_snapshot_load(st, id, strlen(id), &sn, NULL), 0, "%s", id);
    cr_assert_eq(sn->last_event_seq, fseq);
    /* The reset step holds its path until it starts again. */
    expect_span(sn->status, "waiting");
    r = compact_replay_of(id);
    l = snapshot_replay(sn);
    expect_same_state(r, l, id);
    rp_free(l);
    rp_free(r);
    evs_snapshot_free(sn);
}

Test(strategies, a_retry_cut_at_any_io_call_leaves_nothing_or_a_whole_successor)
{
    TU_FILE_ONLY("faults injected through evs_io");
    static const struct {
        unsigned mask;
        int err, persist;
    } modes[] = {
        {FIO_ALL, -EIO, 0},
        {FIO_ALL, -ENOSPC, 1},
        {FIO_WRITE, FIO_SHORT, 0},
    };
    evs_retry_opts o;
    files was;
    uint64_t fseq;
    size_t existing = 0, absent = 0, present_on_error = 0;
    DIR *d;
    struct dirent *de;

    fail_rule("b", ANY_ITER, 99, 0);
    run_new(linear_def(), "", "at", EVS_OUTCOME_FAILED);
    fseq = failed_seq_of("at");
    was = files_of("at");

    for (size_t m = 0; m < sizeof(modes) / sizeof(*modes); m++) {
        for (long nth = 1;; nth++) {
            char nid[32], out[EVS_ID_MAX + 1];
            evs_store_opts so;
            evs_store *fs = NULL;
            fault_io f;
            long fired;
            int rc, exists;

            cr_assert_lt(nth, 2000, "the retry never ran to its end");
            snprintf(nid, sizeof(nid), "at-%zu-%ld", m, nth);
            fault_io_init(&f);
            evs_store_opts_init(&so);
            so.io = &f.io;
            cr_assert_eq(evs_store_open(tu_loc(dir), &so, &fs), 0);
            fault_io_arm(&f, modes[m].mask, nth, modes[m].err,
                         modes[m].persist);
            retry_opts(&o, EVS_RETRY_FROM_FAILURE);
            o.new_id = S(nid);
            rc = evs_exec_retry(fs, S("at"), &o, out, NULL);
            fired = f.fired;
            fault_io_disarm(&f);
            evs_store_close(fs);

            exists = evs_exec_exists(st, nid, strlen(nid));
            if (rc == 0)
                cr_assert(exists, "%s: retry said 0, nothing there", nid);
            if (exists) {
                existing++;
                present_on_error += rc != 0;
                expect_whole(nid, fseq);
                /* The id is taken: a retry into it is refused. */
                retry_opts(&o, EVS_RETRY_FROM_FAILURE);
                cr_assert_eq(retry("at", &o, nid), -EEXIST);
            } else {
                evs_log *l = NULL;
                evs_snapshot *sn = NULL;
                absent++;
                cr_assert_eq(
                    evs_log_open(st, nid, strlen(nid), 0, &l, NULL, NULL),
                    -ENOENT);
                cr_assert_eq(evs_snapshot_load(st, nid, strlen(nid), &sn, NULL),
                             -ENOENT);
                /* Nothing in the way of a fresh retry. */
                retry_opts(&o, EVS_RETRY_FROM_FAILURE);
                retry_ok("at", &o, nid);
                expect_whole(nid, fseq);
            }
            if (fired == 0)
                break; /* the retry ran without a fault: every N done */
        }
    }
    cr_log_info("cut retries: %zu left nothing, %zu a whole successor "
                "(%zu of them despite an error)",
                absent, existing, present_on_error);
    cr_assert_gt(absent, 10, "faults never stopped a retry?");
    cr_assert_gt(present_on_error, 0, "no fault came after the rename");
    /* Every entry of the store that is not hidden is a whole execution:
     * the origin or a successor. */
    d = opendir(dir);
    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (strcmp(de->d_name, "at") == 0)
            continue;
        cr_assert_eq(strncmp(de->d_name, "at-", 3), 0, "stray %s", de->d_name);
        expect_whole(de->d_name, fseq);
    }
    closedir(d);
    cr_assert_eq(exec_count(), 1 + existing + absent);
    expect_files_unchanged("at", &was);
}

/* ---------------------------------------------------------------- */
/* Version decisions                                                */
/* ---------------------------------------------------------------- */

Test(strategies, a_new_execution_decides_the_max_version_and_routes_on_it)
{
    const char *def =
        J("{'name':'vn','steps':["
          "{'name':'a','kind':'action','action':'t_act','params':'a',"
          "'next':'g'},"
          "{'name':'g','kind':'version','change_id':'ranker','min':-1,"
          "'max':2,'next':["
          "{'to':'rank_v2','when':{'ge':['${versions.ranker}',2]}},"
          "{'to':'rank_v1','when':{'lt':['${versions.ranker}',2]}}]},"
          "{'name':'rank_v1','kind':'action','action':'t_act',"
          "'params':{'v':'${versions.ranker}'}},"
          "{'name':'rank_v2','kind':'action','action':'t_act',"
          "'params':{'v':'${versions.ranker}','out':'${steps.g.output}'}}]}");
    evlist ev;
    const evs_event *e;
    evs_replay *r;
    const evs_version_state *vs;

    run_new(def, "", "vn", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("vn", "rank_v1", -1), 0);
    cr_assert_eq(count("vn", "rank_v2", -1), 1);
    expect_input("vn", "rank_v2", -1, 0, "{\"v\":2,\"out\":2}");
    ev = events_of("vn");
    cr_assert_eq(evcount(&ev, "version_decision", NULL, NULL), 1);
    e = evf(&ev, "version_decision", NULL, NULL, 0);
    expect_span(dget(e, "change_id"), "\"ranker\"");
    cr_assert_eq(jint(dget(e, "version")), 2);
    cr_assert_eq(jint(dget(e, "min")), -1);
    cr_assert_eq(jint(dget(e, "max")), 2);
    cr_assert_lt(e->sequence,
                 evf(&ev, "step_started", "rank_v2", NULL, 0)->sequence);
    evlist_free(&ev);
    r = replay_of("vn");
    vs = evs_replay_find_version(r, S("ranker"));
    cr_assert_not_null(vs);
    cr_assert_eq(vs->version, 2);
    expect_span(step_of(r, "main", "g", -1)->output, "2");
    rp_free(r);
}

/* v1 has no gate: a, then a wait for "go", then c. */
static const char *gate_v1(void)
{
    return J("{'name':'vg','steps':["
             "{'name':'a','kind':'action','action':'t_act','params':'a',"
             "'next':'w'},"
             "{'name':'w','kind':'wait_event','event':'go','next':'c'},"
             "{'name':'c','kind':'action','action':'t_act','params':'c'}]}");
}

/* v2 adds gate g for change "chg" behind the wait (between a and w), or
 * ahead of it (between w and c); a new step c_new is taken when the
 * decision is at least 1. */
static const char *gate_v2(int ahead)
{
    static const char *const route =
        "[{'to':'c_new','when':{'ge':['${versions.chg}',1]}},"
        "{'to':'c','when':{'lt':['${versions.chg}',1]}}]";
    static const char *const cs =
        "{'name':'c','kind':'action','action':'t_act',"
        "'params':{'s':'c','v':'${versions.chg}'}},"
        "{'name':'c_new','kind':'action','action':'t_act',"
        "'params':{'s':'c_new','v':'${versions.chg}'}}]}";
    char buf[2048];

    if (ahead)
        snprintf(buf, sizeof(buf),
                 "{'name':'vg','steps':["
                 "{'name':'a','kind':'action','action':'t_act','params':'a',"
                 "'next':'w'},"
                 "{'name':'w','kind':'wait_event','event':'go','next':'g'},"
                 "{'name':'g','kind':'version','change_id':'chg','min':-1,"
                 "'max':1,'next':%s},%s",
                 route, cs);
    else
        snprintf(buf, sizeof(buf),
                 "{'name':'vg','steps':["
                 "{'name':'a','kind':'action','action':'t_act','params':'a',"
                 "'next':'g'},"
                 "{'name':'g','kind':'version','change_id':'chg','min':-1,"
                 "'max':1,'next':'w'},"
                 "{'name':'w','kind':'wait_event','event':'go','next':%s},"
                 "%s",
                 route, cs);
    return J(buf);
}

/* Findings heard by a evs_def_finding_fn. */
typedef struct diff_rec {
    evs_def_finding_kind kind;
    char step[64]; /* for EVS_DEF_VERSION, the version step */
    evs_step_change change;
    int gated;
    int code;
    char text[512]; /* as evs_def_finding_describe has it */
} diff_rec;

static diff_rec diffs[16];
static size_t ndiffs;

static int on_diff(void *arg, const evs_def_finding *f)
{
    diff_rec *d = &diffs[ndiffs];

    (void)arg;
    cr_assert_lt(ndiffs, sizeof(diffs) / sizeof(*diffs));
    memset(d, 0, sizeof(*d));
    d->kind = f->kind;
    d->code = f->code;
    d->gated = f->code == 0;
    if (f->kind == EVS_DEF_STEP) {
        cr_assert_not_null(f->diff);
        cr_assert_null(f->version);
        cpy(d->step, sizeof(d->step), f->diff->step);
        d->change = f->diff->change;
    } else {
        cr_assert_not_null(f->version);
        cr_assert_null(f->diff);
        snprintf(d->step, sizeof(d->step), "%s", f->version->step);
    }
    evs_def_finding_describe(f, d->text, sizeof(d->text));
    ndiffs++;
    return 0;
}

/* The finding of a step that differs, or NULL. */
static const diff_rec *diff_of(const char *step)
{
    for (size_t i = 0; i < ndiffs; i++)
        if (diffs[i].kind == EVS_DEF_STEP && strcmp(diffs[i].step, step) == 0)
            return &diffs[i];
    return NULL;
}

/* The detail of the last refusal of resume_and_go. */
static evs_error_info resume_info;

/* Forgets the outcomes so far, resumes id (under definition def, if not
 * NULL), sends it "go" if that worked, and runs it. Returns what the
 * resume returned. */
static int resume_and_go(const char *id, const char *def)
{
    int rc;

    nouts = 0;
    ndiffs = 0;
    mk_orch(1);
    rc = def ? evs_orch_resume_with(orch, S(id), S(def), on_diff, NULL,
                                    &resume_info)
             : evs_orch_resume(orch, S(id));
    if (rc == 0)
        cr_assert_eq(evs_orch_send(orch, S(id), S("go"), S("1")), 0);
    run_orch();
    return rc;
}

/* resume_and_go, which must resume id and see it complete. */
static void resume_and_go_ok(const char *id, const char *def)
{
    int rc = resume_and_go(id, def);

    cr_assert_eq(rc, 0, "resume %s: %s (%s)", id, evs_err_name(rc), last_log);
    expect_outcome(id, EVS_OUTCOME_COMPLETED);
}

Test(strategies, a_history_that_passed_a_new_gate_gets_version_minus_one)
{
    evlist ev;
    evs_replay *r;

    /* Both start under v1 and wait for "go" after a. */
    run_new(gate_v1(), "", "behind", EVS_OUTCOME_SUSPENDED);
    run_new(gate_v1(), "", "ahead", EVS_OUTCOME_SUSPENDED);

    /* The gate behind the wait: never reached, so no decision; the route
     * after the wait sees -1 and keeps the old way (c). */
    resume_and_go_ok("behind", gate_v2(0));
    /* a now leads to the gate, and w is only reached through it. */
    cr_assert_eq(ndiffs, 2);
    cr_assert(diff_of("a") && diff_of("a")->gated);
    cr_assert(diff_of("w") && diff_of("w")->gated);
    cr_assert_eq(count("behind", "c", -1), 1);
    cr_assert_eq(count("behind", "c_new", -1), 0);
    expect_input("behind", "c", -1, 0, "{\"s\":\"c\",\"v\":-1}");
    ev = events_of("behind");
    cr_assert_eq(evcount(&ev, "version_decision", NULL, NULL), 0);
    cr_assert_eq(evcount(&ev, "definition_changed", NULL, NULL), 1);
    cr_assert_eq(evcount(&ev, "step_started", "g", NULL), 0);
    evlist_free(&ev);
    r = replay_of("behind");
    cr_assert_null(evs_replay_find_version(r, S("chg")));
    rp_free(r);

    /* The gate ahead of the wait: reached for the first time, so the
     * execution decides the max and takes the new way. */
    resume_and_go_ok("ahead", gate_v2(1));
    cr_assert_eq(ndiffs, 1);
    cr_assert(diff_of("w") && diff_of("w")->gated);
    cr_assert_eq(count("ahead", "c", -1), 0);
    cr_assert_eq(count("ahead", "c_new", -1), 1);
    expect_input("ahead", "c_new", -1, 0, "{\"s\":\"c_new\",\"v\":1}");
    ev = events_of("ahead");
    cr_assert_eq(evcount(&ev, "version_decision", NULL, NULL), 1);
    cr_assert_eq(
        jint(dget(evf(&ev, "version_decision", NULL, NULL, 0), "version")), 1);
    evlist_free(&ev);

    /* A new execution under v2 (gate behind) decides 1 and goes c_new. */
    run_new(gate_v2(0), "", "fresh", EVS_OUTCOME_SUSPENDED);
    resume_and_go_ok("fresh", NULL);
    cr_assert_eq(count("fresh", "c_new", -1), 1);
    cr_assert_eq(count("fresh", "c", -1), 0);
    expect_input("fresh", "c_new", -1, 0, "{\"s\":\"c_new\",\"v\":1}");
}

/* g decides "rk" before the wait, in [min, max]. */
static const char *range_def(int min, int max)
{
    char buf[1024];

    snprintf(buf, sizeof(buf),
             "{'name':'vr','steps':["
             "{'name':'a','kind':'action','action':'t_act','params':'a',"
             "'next':'g'},"
             "{'name':'g','kind':'version','change_id':'rk','min':%d,"
             "'max':%d,'next':'w'},"
             "{'name':'w','kind':'wait_event','event':'go','next':'c'},"
             "{'name':'c','kind':'action','action':'t_act',"
             "'params':{'v':'${versions.rk}'}}]}",
             min, max);
    return J(buf);
}

Test(strategies, a_decision_outside_a_changed_range_is_refused_at_resume)
{
    static const int ranges[][2] = {{3, 3}, {-1, 1}};
    files was;
    uint64_t last, decided;
    evs_replay *r;
    evlist ev;
    int rc;

    run_new(range_def(-1, 2), "", "vr", EVS_OUTCOME_SUSPENDED);
    r = replay_of("vr");
    cr_assert_eq(evs_replay_find_version(r, S("rk"))->version, 2);
    decided = evs_replay_find_version(r, S("rk"))->seq;
    rp_free(r);
    last = last_seq_of("vr");
    was = files_of("vr");

    for (size_t i = 0; i < sizeof(ranges) / sizeof(*ranges); i++) {
        char range[32];

        rc = resume_and_go("vr", range_def(ranges[i][0], ranges[i][1]));
        cr_assert_eq(rc, EVS_EVERSION, "[%d, %d]: %s", ranges[i][0],
                     ranges[i][1], evs_err_name(rc));
        /* The refusal names the change, the execution, the recorded
         * version and the range. */
        snprintf(range, sizeof(range), "[%d, %d]", ranges[i][0], ranges[i][1]);
        cr_assert_eq(resume_info.code, EVS_EVERSION);
        cr_assert_str_eq(resume_info.execution_id, "vr");
        cr_assert_str_eq(resume_info.kind, "version");
        cr_assert_not_null(strstr(resume_info.msg, "change \"rk\""), "%s",
                           resume_info.msg);
        cr_assert_not_null(strstr(resume_info.msg, "recorded version 2 "), "%s",
                           resume_info.msg);
        cr_assert_not_null(strstr(resume_info.msg, range), "%s",
                           resume_info.msg);
        cr_assert_eq(resume_info.sequence, decided);
        cr_assert_eq(last_seq_of("vr"), last);
    }
    cr_assert_eq(count("vr", "c", -1), 0);
    expect_files_unchanged("vr", &was);

    /* A range that holds the decision: resumed, 2 kept. */
    resume_and_go_ok("vr", range_def(0, 5));
    expect_input("vr", "c", -1, 0, "{\"v\":2}");
    ev = events_of("vr");
    cr_assert_eq(evcount(&ev, "version_decision", NULL, NULL), 1);
    cr_assert_eq(evcount(&ev, "definition_changed", NULL, NULL), 1);
    evlist_free(&ev);
}

static const char *ver_def(void)
{
    return J("{'name':'gv','steps':["
             "{'name':'a','kind':'action','action':'t_ver','params':{},"
             "'next':'b'},"
             "{'name':'b','kind':'action','action':'t_act',"
             "'params':{'v':'${versions.cfeat}','a':'${steps.a.output}'}}"
             "]}");
}

/* Runs gv until t_ver holds its request, then stops the runner (as a
 * crash would leave it: the step started, no outcome). */
static void ver_until_held(void)
{
    mk_orch(0);
    start(ver_def(), "", "gv");
    script_start(script_stop_inflight);
    run_orch();
    cr_assert(!script_gave_up);
    cr_assert_null(outcome_of("gv"));
    cr_assert_eq(nver, 1);
    cr_assert_eq(ver_enoent, -ENOENT);
    cr_assert_eq(ver_einval, -EINVAL);
    cr_assert_eq(ver_log[0].rc1, 0);
    cr_assert_eq(ver_log[0].v1, 3, "the first call decides the max");
    cr_assert_eq(ver_log[0].rc2, 0);
    cr_assert_eq(ver_log[0].v2, 3,
                 "the second call returns the decision, "
                 "not its own max");
}

static void expect_one_decision(const char *id, int64_t v)
{
    evlist ev = events_of(id);
    const evs_event *e = evf(&ev, "version_decision", NULL, NULL, 0);

    cr_assert_eq(evcount(&ev, "version_decision", NULL, NULL), 1);
    expect_span(dget(e, "change_id"), "\"cfeat\"");
    cr_assert_eq(jint(dget(e, "version")), v);
    evlist_free(&ev);
}

Test(strategies, get_version_in_c_keeps_its_decision_across_calls_and_resume)
{
    evs_replay *r;

    ver_until_held();
    expect_one_decision("gv", 3);

    hold_mode = 0;
    ver_max = 7;
    run_resume("gv", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(count("gv", "a", -1), 2);
    cr_assert_str_eq(call_of("gv", "a", -1, 1)->key, "gv/main/a/-1");
    cr_assert_eq(nver, 2);
    cr_assert_eq(ver_log[1].rc1, 0);
    cr_assert_eq(ver_log[1].v1, 3);
    cr_assert_eq(ver_log[1].v2, 3);
    expect_one_decision("gv", 3);
    /* The definition's ${versions.cfeat} sees the C action's decision. */
    expect_input("gv", "b", -1, 0, "{\"v\":3,\"a\":{\"v\":3,\"again\":3}}");
    r = replay_of("gv");
    cr_assert_eq(evs_replay_find_version(r, S("cfeat"))->version, 3);
    rp_free(r);
}

Test(strategies, get_version_in_c_out_of_range_gives_up_with_eversion)
{
    uint64_t last;

    ver_until_held();
    last = last_seq_of("gv");
    hold_mode = 0;
    ver_min = 5;
    ver_max = 9;
    last_log[0] = '\0';
    run_resume("gv", EVS_OUTCOME_ERROR);
    cr_assert_eq(outcome_of("gv")->err, EVS_EVERSION, "%s",
                 evs_err_name(outcome_of("gv")->err));
    cr_assert_eq(ver_log[1].rc1, EVS_EVERSION);
    cr_assert_not_null(strstr(last_log, "cfeat"), "log: %s", last_log);
    cr_assert_not_null(strstr(last_log, "gv"), "log: %s", last_log);
    /* Only that it was taken over, and the held step dispatched again. */
    cr_assert_eq(last_seq_of("gv"), last + 2);
    {
        evlist ev = events_of("gv");
        cr_assert_eq(evf(&ev, "execution_taken_over", NULL, NULL, 0)->sequence,
                     last + 1);
        cr_assert_eq(evcount(&ev, "step_redispatched", NULL, NULL), 1);
    }
    expect_one_decision("gv", 3);

    /* Within the range again, it goes on with 3. */
    nouts = 0;
    ver_min = 0;
    run_resume("gv", EVS_OUTCOME_COMPLETED);
    expect_input("gv", "b", -1, 0, "{\"v\":3,\"a\":{\"v\":3,\"again\":3}}");
}

Test(strategies, a_c_decision_its_version_step_refuses_is_named_at_resume)
{
    /* t_ver decides 3 for cfeat from C; the gate after it allows [0, 1]. */
    const char *def = J("{'name':'gc','steps':["
                        "{'name':'a','kind':'action','action':'t_ver',"
                        "'params':{},'next':'g'},"
                        "{'name':'g','kind':'version','change_id':'cfeat',"
                        "'min':0,'max':1,'next':'b'},"
                        "{'name':'b','kind':'action','action':'t_act',"
                        "'params':'b'}]}");
    evs_error_info info;
    evs_wf_def *d = NULL;
    evs_replay *r;
    size_t refusals;
    uint64_t last;

    hold_mode = 0;
    run_new(def, "", "gc", EVS_OUTCOME_ERROR);
    cr_assert_eq(outcome_of("gc")->err, EVS_EVERSION);
    last = last_seq_of("gc");

    /* Under its own definition: refused, and said why. */
    mk_orch(1);
    cr_assert_eq(
        evs_orch_resume_with(orch, S("gc"), (evs_span){0}, NULL, NULL, &info),
        EVS_EVERSION);
    cr_assert_eq(evs_orch_owned(orch), 0);
    cr_assert_eq(info.code, EVS_EVERSION);
    cr_assert_str_eq(info.execution_id, "gc");
    cr_assert_str_eq(info.step, "g");
    cr_assert_str_eq(info.msg, "change \"cfeat\": recorded version 3 is "
                               "outside [0, 1], the range of version step "
                               "\"g\"");
    run_orch();
    cr_assert_eq(last_seq_of("gc"), last);

    /* The check says the same of that definition. */
    cr_assert_eq(evs_wf_parse(def, strlen(def), NULL, NULL, NULL, &d, NULL), 0);
    r = compact_replay_of("gc");
    cr_assert_eq(evs_orch_check_definition(r, d, NULL, NULL, &refusals, &info),
                 EVS_EVERSION);
    cr_assert_eq(refusals, 1);
    cr_assert_str_eq(info.kind, "version");
    cr_assert_str_eq(info.step, "g");
    cr_assert_eq(info.sequence, evs_replay_find_version(r, S("cfeat"))->seq);
    rp_free(r);
    evs_wf_free(d);
}

/* ---------------------------------------------------------------- */
/* Definition changes                                               */
/* ---------------------------------------------------------------- */

/* a (with a_params), then a wait for `event` (going on at w_next), then
 * b, then the `extra` steps: the variants of one definition. */
static const char *dc_def(const char *a_params, const char *event,
                          const char *w_next, const char *extra)
{
    char buf[2048];

    snprintf(buf, sizeof(buf),
             "{'name':'dc','steps':["
             "{'name':'a','kind':'action','action':'t_act','params':%s,"
             "'next':'w'},"
             "{'name':'w','kind':'wait_event','event':'%s','next':%s},"
             "{'name':'b','kind':'action','action':'t_act','params':'b'}"
             "%s]}",
             a_params, event, w_next, extra);
    return J(buf);
}

static const char *dc_v1(void)
{
    return dc_def("'a'", "go", "'b'", "");
}

static const char *dc_gated(void)
{
    return dc_def("'a'", "go", "'gate'",
                  ",{'name':'gate','kind':'version','change_id':'dc-b2',"
                  "'min':-1,'max':1,'next':["
                  "{'to':'b2','when':{'ge':['${versions.dc-b2}',1]}},"
                  "{'to':'b','when':{'lt':['${versions.dc-b2}',1]}}]},"
                  "{'name':'b2','kind':'action','action':'t_act',"
                  "'params':'b2'}");
}

/* evs_orch_check_definition of r against def: returns the number of
 * refusals, each finding in diffs, the code in check_rc and the detail
 * in check_info. */
static int check_rc;
static evs_error_info check_info;

static size_t check(const evs_replay *r, const char *def)
{
    evs_wf_def *d = NULL;
    evs_error_info e;
    size_t refusals = 99;

    cr_assert_eq(evs_wf_parse(def, strlen(def), NULL, NULL, NULL, &d, &e), 0,
                 "%s: %s", e.step, e.msg);
    ndiffs = 0;
    check_rc =
        evs_orch_check_definition(r, d, on_diff, NULL, &refusals, &check_info);
    cr_assert(check_rc == 0 || check_rc == EVS_ENONDET ||
                  check_rc == EVS_EVERSION,
              "%s", evs_err_name(check_rc));
    cr_assert_eq(check_rc != 0, refusals != 0);
    evs_wf_free(d);
    return refusals;
}

Test(strategies, check_definition_reports_changed_steps_and_allows_gated_ones)
{
    evs_replay *r;
    const diff_rec *dr;
    /* The same definition, reformatted and with members reordered. */
    const char *same =
        J("{ 'steps': [ {'kind':'action', 'name':'a', 'next':'w', "
          "'params':'a', 'action':'t_act'},\n"
          "{'name':'w','next':'b','kind':'wait_event','event':'go'},"
          "{'name':'b','kind':'action','action':'t_act','params':'b'}],"
          " 'name': 'dc' }");

    run_new(dc_v1(), "", "dc", EVS_OUTCOME_SUSPENDED);
    r = replay_of("dc");

    cr_assert_eq(check(r, same), 0);
    cr_assert_eq(ndiffs, 0);
    /* b never ran: changing it breaks nothing. */
    cr_assert_eq(check(r, J("{'name':'dc','steps':["
                            "{'name':'a','kind':'action','action':'t_act',"
                            "'params':'a','next':'w'},"
                            "{'name':'w','kind':'wait_event','event':'go',"
                            "'next':'b'},"
                            "{'name':'b','kind':'action','action':'t_act',"
                            "'params':'B!'}]}")),
                 0);
    cr_assert_eq(ndiffs, 0);

    cr_assert_eq(check(r, dc_def("'A'", "go", "'b'", "")), 1);
    cr_assert_eq(ndiffs, 1);
    dr = diff_of("a");
    cr_assert_not_null(dr);
    cr_assert_eq(dr->change, EVS_STEP_CHANGED);
    cr_assert_eq(dr->gated, 0);

    cr_assert_eq(check(r, dc_def("'A'", "go2", "'b'", "")), 2);
    cr_assert_eq(ndiffs, 2);
    cr_assert_not_null(diff_of("a"));
    cr_assert_not_null(diff_of("w"));
    cr_assert_eq(diff_of("w")->gated, 0);

    /* a removed (w first now), and a of another kind. */
    cr_assert_eq(check(r, J("{'name':'dc','steps':["
                            "{'name':'w','kind':'wait_event','event':'go',"
                            "'next':'b'},"
                            "{'name':'b','kind':'action','action':'t_act',"
                            "'params':'b'}]}")),
                 1);
    cr_assert_eq(diff_of("a")->change, EVS_STEP_REMOVED);
    cr_assert_eq(diff_of("a")->gated, 0);
    cr_assert_eq(check(r, J("{'name':'dc','steps':["
                            "{'name':'a','kind':'sleep','duration_ms':1,"
                            "'next':'w'},"
                            "{'name':'w','kind':'wait_event','event':'go',"
                            "'next':'b'},"
                            "{'name':'b','kind':'action','action':'t_act',"
                            "'params':'b'}]}")),
                 1);
    cr_assert_eq(diff_of("a")->change, EVS_STEP_KIND_CHANGED);
    cr_assert_eq(diff_of("a")->gated, 0);

    /* w now leads to a version gate: a difference, gated. */
    cr_assert_eq(check(r, dc_gated()), 0);
    cr_assert_eq(ndiffs, 1);
    cr_assert_eq(diff_of("w")->change, EVS_STEP_CHANGED);
    cr_assert_eq(diff_of("w")->gated, 1);
    /* A gate does not excuse another, ungated change. */
    cr_assert_eq(check(r, dc_def("'A'", "go", "'gate'",
                                 ",{'name':'gate','kind':'version',"
                                 "'change_id':'x','min':-1,'max':1,"
                                 "'next':'b'}")),
                 1);
    cr_assert_eq(diff_of("a")->gated, 0);
    cr_assert_eq(diff_of("w")->gated, 1);
    rp_free(r);
}

/* a (leading to b), then b, then the gate g deciding "rk" in [min, max],
 * then a wait for "go" going on at w_next, then c, then the `extra`
 * steps. */
static const char *ag_def(const char *a, int min, int max, const char *w_next,
                          const char *extra)
{
    char buf[2048];

    snprintf(buf, sizeof(buf),
             "{'name':'ag','steps':[%s"
             "{'name':'b','kind':'action','action':'t_act','params':'b',"
             "'next':'g'},"
             "{'name':'g','kind':'version','change_id':'rk','min':%d,"
             "'max':%d,'next':'w'},"
             "{'name':'w','kind':'wait_event','event':'go','next':%s},"
             "{'name':'c','kind':'action','action':'t_act','params':'c'}"
             "%s]}",
             a, min, max, w_next, extra);
    return J(buf);
}

#define AG_A                                                                   \
    "{'name':'a','kind':'action','action':'t_act','params':'a',"               \
    "'next':'b'},"

Test(strategies, check_definition_and_resume_with_agree)
{
    static const char gate2[] =
        ",{'name':'g2','kind':'version','change_id':'c2','min':-1,"
        "'max':1,'next':[{'to':'c2','when':{'ge':['${versions.c2}',1]}},"
        "{'to':'c','when':{'lt':['${versions.c2}',1]}}]},"
        "{'name':'c2','kind':'action','action':'t_act','params':'c2'}";
    static const char a_changed[] =
        "{'name':'a','kind':'action','action':'t_act','params':'A',"
        "'next':'b'},";
    static const char a_sleeps[] =
        "{'name':'a','kind':'sleep','duration_ms':1,'next':'b'},";
    const struct {
        const char *name, *def;
        int code;
        size_t findings, refusals;
        const char *detail; /* in the first refusal's message */
    } cases[] = {
        {"the same", ag_def(AG_A, -1, 1, "'c'", ""), 0, 0, 0, NULL},
        {"a changed, not gated", ag_def(a_changed, -1, 1, "'c'", ""),
         EVS_ENONDET, 1, 1, "step \"a\" changed, gated by no version"},
        {"a of another kind", ag_def(a_sleeps, -1, 1, "'c'", ""), EVS_ENONDET,
         1, 1, "step \"a\" changed kind (action to sleep)"},
        {"a removed", ag_def("", -1, 1, "'c'", ""), EVS_ENONDET, 1, 1,
         "step \"a\" removed"},
        {"w leads to a new gate", ag_def(AG_A, -1, 1, "'g2'", gate2), 0, 1, 0,
         NULL},
        {"range widened", ag_def(AG_A, 0, 5, "'c'", ""), 0, 1, 0, NULL},
        {"recorded version above max", ag_def(AG_A, -1, 0, "'c'", ""),
         EVS_EVERSION, 2, 1,
         "change \"rk\": recorded version 1 is outside [-1, 0], the range "
         "of version step \"g\""},
        {"recorded version below min", ag_def(AG_A, 2, 3, "'c'", ""),
         EVS_EVERSION, 2, 1, "recorded version 1 is outside [2, 3]"},
        {"both", ag_def(a_changed, 2, 3, "'c'", ""), EVS_ENONDET, 3, 2,
         "step \"a\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        diff_rec heard[16];
        evs_error_info info;
        size_t n, refusals;
        char id[16];
        uint64_t last;
        evs_replay *r;
        int code, rc;

        /* Each case on an execution of its own that decided 1 for rk
         * and waits for "go" after the gate. */
        snprintf(id, sizeof(id), "ag%zu", i);
        run_new(ag_def(AG_A, -1, 1, "'c'", ""), "", id, EVS_OUTCOME_SUSPENDED);
        last = last_seq_of(id);

        r = compact_replay_of(id);
        refusals = check(r, cases[i].def);
        rp_free(r);
        code = check_rc;
        info = check_info;
        n = ndiffs;
        memcpy(heard, diffs, sizeof(heard));
        cr_assert_eq(code, cases[i].code, "%s: check: %s", cases[i].name,
                     evs_err_name(code));
        cr_assert_eq(n, cases[i].findings, "%s", cases[i].name);
        cr_assert_eq(refusals, cases[i].refusals, "%s", cases[i].name);
        if (cases[i].detail) {
            cr_assert_not_null(strstr(info.msg, cases[i].detail), "%s: %s",
                               cases[i].name, info.msg);
            cr_assert_str_eq(info.execution_id, id);
            cr_assert_eq(info.code, code);
            /* The step at fault: a, which differs, or the gate g. */
            cr_assert_str_eq(info.step, code == EVS_EVERSION ? "g" : "a", "%s",
                             cases[i].name);
        }

        rc = resume_and_go(id, cases[i].def);
        cr_assert_eq(rc, code, "%s: resume %s, check %s", cases[i].name,
                     evs_err_name(rc), evs_err_name(code));
        cr_assert_eq(ndiffs, n, "%s", cases[i].name);
        for (size_t k = 0; k < n; k++) {
            cr_assert_str_eq(diffs[k].text, heard[k].text, "%s", cases[i].name);
            cr_assert_eq(diffs[k].code, heard[k].code, "%s: %s", cases[i].name,
                         heard[k].text);
        }
        if (code) {
            cr_assert_eq(resume_info.code, info.code, "%s", cases[i].name);
            cr_assert_str_eq(resume_info.kind, info.kind);
            cr_assert_str_eq(resume_info.step, info.step);
            cr_assert_eq(resume_info.sequence, info.sequence);
            cr_assert_str_eq(resume_info.execution_id, id);
            cr_assert_str_eq(resume_info.msg, info.msg);
            cr_assert_eq(last_seq_of(id), last, "%s: nothing recorded",
                         cases[i].name);
        } else {
            expect_outcome(id, EVS_OUTCOME_COMPLETED);
        }
    }
}

Test(strategies, resume_with_refuses_breaking_changes_and_follows_gated_ones)
{
    evs_wf_def *d = NULL;
    evs_error_info e;
    files was;
    uint64_t last;
    evlist ev;
    const evs_event *dc;
    evs_replay *r;
    int rc;

    run_new(dc_v1(), "", "rw", EVS_OUTCOME_SUSPENDED);
    last = last_seq_of("rw");
    was = files_of("rw");

    rc = resume_and_go("rw", dc_def("'A'", "go2", "'b'", ""));
    cr_assert_eq(rc, EVS_ENONDET, "%s", evs_err_name(rc));
    cr_assert_eq(ndiffs, 2, "each differing step is heard");
    cr_assert_not_null(diff_of("a"));
    cr_assert_not_null(diff_of("w"));
    cr_assert_eq(nouts, 0);
    cr_assert_eq(last_seq_of("rw"), last);
    expect_files_unchanged("rw", &was);
    /* Not half-owned either: it can be taken at once. */
    mk_orch(1);
    cr_assert_eq(evs_orch_resume(orch, S("rw")), 0);
    cr_assert_eq(evs_orch_owned(orch), 1);
    run_orch();
    cr_assert_eq(last_seq_of("rw"), last);
    cr_assert_eq(ncalls, 1);

    resume_and_go_ok("rw", dc_gated());
    cr_assert_eq(ndiffs, 1);
    cr_assert(diff_of("w")->gated);
    cr_assert_eq(count("rw", "a", -1), 1);
    cr_assert_eq(count("rw", "b", -1), 0);
    cr_assert_eq(count("rw", "b2", -1), 1);
    cr_assert_eq(
        evs_wf_parse(dc_gated(), strlen(dc_gated()), NULL, NULL, NULL, &d, &e),
        0);
    ev = events_of("rw");
    cr_assert_eq(evcount(&ev, "definition_changed", NULL, NULL), 1);
    dc = evf(&ev, "definition_changed", NULL, NULL, 0);
    /* Before anything else but the takeover, which says who resumed. */
    cr_assert_eq(evf(&ev, "execution_taken_over", NULL, NULL, 0)->sequence,
                 last + 1);
    cr_assert_eq(dc->sequence, last + 2, "recorded before anything else");
    cr_assert(spans_equal(dget(dc, "definition"), d->json));
    {
        char hq[24];
        snprintf(hq, sizeof(hq), "\"%s\"", d->hash);
        expect_span(dget(dc, "definition_hash"), hq);
    }
    cr_assert_eq(evcount(&ev, "version_decision", NULL, NULL), 1);
    evlist_free(&ev);
    r = replay_of("rw");
    cr_assert(spans_equal(evs_replay_exec(r)->definition, d->json));
    expect_span(evs_replay_exec(r)->definition_hash, d->hash);
    rp_free(r);
    evs_wf_free(d);
}

/* ---------------------------------------------------------------- */
/* evrun resume --definition and evrun check                        */
/* ---------------------------------------------------------------- */

/* The scratch directory of the command-line tests, made when first
 * needed. */
static const char *x_dir(void)
{
    if (!xdir) {
        xdir = tu_tmpdir("strat-x");
        cr_assert_not_null(xdir);
    }
    return xdir;
}

static const char *in_xdir(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];

    snprintf(p, 1024, "%s/%s", x_dir(), name);
    return p;
}

static tu_result run_evrun(const char *const *args)
{
    return tu_run_tool("EVRUN", x_dir(), "run", args);
}

#define EVRUN(...) run_evrun((const char *const[]){__VA_ARGS__, NULL})

/* Writes a definition for evrun (built-in actions only). */
static const char *def_file(const char *name, const char *json)
{
    const char *p = in_xdir(name);

    cr_assert_eq(tu_write_file(p, json, strlen(json)), 0);
    return pooled(strdup(p));
}

/* A definition with evrun's built-in echo for t_act. */
static const char *echo_of(const char *def)
{
    char *p = malloc(strlen(def) + 1), *o = p;

    cr_assert_not_null(p);
    while (*def)
        if (strncmp(def, "\"t_act\"", 7) == 0) {
            memcpy(o, "\"echo\"", 6);
            o += 6;
            def += 7;
        } else {
            *o++ = *def++;
        }
    *o = '\0';
    return pooled(p);
}

Test(strategies, evrun_resume_definition_names_each_differing_step_or_runs)
{
    const char *bad =
        def_file("bad.json", echo_of(dc_def("'A'", "go2", "'b'", "")));
    const char *gated = def_file("gated.json", echo_of(dc_gated()));
    files was;
    tu_result res;
    evlist ev;

    mk_orch(1);
    start(echo_of(dc_v1()), "", "cli");
    run_orch();
    expect_outcome("cli", EVS_OUTCOME_SUSPENDED);
    was = files_of("cli");

    res = EVRUN("resume", tu_loc(dir), "cli", "--definition", bad);
    cr_assert_eq(res.status, 1, "exit %d\n%s%s", res.status, res.out, res.err);
    cr_assert_not_null(strstr(res.err, "cli: step \"a\" changed"), "%s",
                       res.err);
    cr_assert_not_null(strstr(res.err, "cli: step \"w\" changed"), "%s",
                       res.err);
    cr_assert_null(strstr(res.err, "step \"b\""), "%s", res.err);
    cr_assert_not_null(strstr(res.err, "not resumed"), "%s", res.err);
    tu_result_free(&res);
    expect_files_unchanged("cli", &was);

    cr_assert_eq(evs_orch_post(st, S("cli"), S("event"), S("go"), S("1")), 0);
    res = EVRUN("resume", tu_loc(dir), "cli", "--definition", gated);
    cr_assert_eq(res.status, 0, "exit %d\n%s%s", res.status, res.out, res.err);
    cr_assert_not_null(strstr(res.out, "cli: step \"w\" changed, gated by "
                                       "a version step: allowed"),
                       "%s", res.out);
    cr_assert_not_null(strstr(res.out, "cli completed"), "%s", res.out);
    cr_assert_not_null(strstr(res.out, "\"b2\""), "%s", res.out);
    tu_result_free(&res);
    ev = events_of("cli");
    cr_assert_eq(evcount(&ev, "definition_changed", NULL, NULL), 1);
    cr_assert_eq(evcount(&ev, "step_started", "b2", NULL), 1);
    cr_assert_eq(evcount(&ev, "step_started", "b", NULL), 0);
    evlist_free(&ev);
}

Test(strategies, evrun_check_names_the_unfinished_executions_it_breaks)
{
    const char *bad =
        def_file("bad.json", echo_of(dc_def("'A'", "go", "'b'", "")));
    const char *gated = def_file("gated.json", echo_of(dc_gated()));
    const char *other = J("{'name':'other','steps':["
                          "{'name':'a','kind':'action','action':'echo',"
                          "'params':'x','next':'w'},"
                          "{'name':'w','kind':'wait_event','event':'go'}]}");
    tu_result res;

    mk_orch(1);
    start(echo_of(dc_v1()), "", "k1");
    start(echo_of(dc_v1()), "", "k2");
    start(echo_of(dc_v1()), "", "k3");
    start(other, "", "o1");
    run_orch();
    expect_outcome("k3", EVS_OUTCOME_SUSPENDED);
    resume_and_go_ok("k3", NULL);

    res = EVRUN("check", tu_loc(dir), bad);
    cr_assert_eq(res.status, 1, "exit %d\n%s%s", res.status, res.out, res.err);
    cr_assert_not_null(strstr(res.err, "k1: step \"a\" changed"), "%s",
                       res.err);
    cr_assert_not_null(strstr(res.err, "k2: step \"a\" changed"), "%s",
                       res.err);
    cr_assert_null(strstr(res.err, "k3"), "a finished one: %s", res.err);
    cr_assert_null(strstr(res.err, "o1"), "another workflow: %s", res.err);
    cr_assert_not_null(strstr(res.out, "2 unfinished executions of dc "
                                       "checked, 2 would break"),
                       "%s", res.out);
    tu_result_free(&res);

    res = EVRUN("check", tu_loc(dir), gated);
    cr_assert_eq(res.status, 0, "exit %d\n%s%s", res.status, res.out, res.err);
    cr_assert_not_null(strstr(res.out, "k1: step \"w\" changed, gated"), "%s",
                       res.out);
    cr_assert_not_null(strstr(res.out, "k1: compatible"), "%s", res.out);
    cr_assert_not_null(strstr(res.out, "k2: compatible"), "%s", res.out);
    cr_assert_not_null(strstr(res.out, "2 unfinished executions of dc "
                                       "checked, 0 would break"),
                       "%s", res.out);
    cr_assert_eq(res.err[0], '\0', "%s", res.err);
    tu_result_free(&res);
    /* Nothing ran. */
    cr_assert_eq(last_seq_of("k1"), last_seq_of("k2"));
    {
        evlist ev = events_of("k1");
        cr_assert_eq(evcount(&ev, "definition_changed", NULL, NULL), 0);
        evlist_free(&ev);
    }
}

/* Runs evrun check and evrun resume --definition with `def`, which must
 * refuse execution id (the one unfinished execution of its workflow):
 * both, each output naming every needle, and nothing recorded. */
static void expect_check_and_resume_refuse(const char *id, const char *def,
                                           const char *const *needles)
{
    uint64_t last = last_seq_of(id);
    tu_result chk = EVRUN("check", tu_loc(dir), def);
    tu_result res = EVRUN("resume", tu_loc(dir), id, "--definition", def);

    cr_assert_eq(res.status, 1, "resume: exit %d\n%s%s", res.status, res.out,
                 res.err);
    cr_assert_eq(chk.status, 1, "check: exit %d\n%s%s", chk.status, chk.out,
                 chk.err);
    cr_assert_not_null(strstr(chk.out, "1 would break"), "%s", chk.out);
    for (const char *const *n = needles; *n; n++) {
        cr_assert_not_null(strstr(res.err, *n), "resume: no %s in\n%s", *n,
                           res.err);
        cr_assert_not_null(strstr(chk.err, *n), "check: no %s in\n%s", *n,
                           chk.err);
    }
    /* A gated difference is not called allowed when the definition is
     * refused all the same. */
    cr_assert_null(strstr(res.out, "allowed"), "%s", res.out);
    cr_assert_null(strstr(chk.out, "allowed"), "%s", chk.out);
    cr_assert_null(strstr(chk.out, "compatible"), "%s", chk.out);
    cr_assert_eq(last_seq_of(id), last, "nothing recorded");
    tu_result_free(&chk);
    tu_result_free(&res);
}

Test(strategies, evrun_check_and_resume_name_a_recorded_version_out_of_range)
{
    const char *below = def_file("below.json", echo_of(range_def(2, 2)));
    const char *above = def_file("above.json", echo_of(range_def(-1, 0)));
    const char *wider = def_file("wider.json", echo_of(range_def(0, 5)));
    tu_result res;

    /* e3 decides 1 for "rk" and waits for "go". */
    mk_orch(1);
    start(echo_of(range_def(1, 1)), "", "e3");
    run_orch();
    expect_outcome("e3", EVS_OUTCOME_SUSPENDED);

    expect_check_and_resume_refuse(
        "e3", below,
        (const char *const[]){"e3", "change \"rk\"", "recorded version 1",
                              "[2, 2]", "step \"g\"", "EVS_EVERSION", NULL});
    expect_check_and_resume_refuse(
        "e3", above,
        (const char *const[]){"e3", "change \"rk\"", "recorded version 1",
                              "[-1, 0]", "EVS_EVERSION", NULL});

    /* A range that holds 1: the changed gate is allowed, by both. */
    res = EVRUN("check", tu_loc(dir), wider);
    cr_assert_eq(res.status, 0, "exit %d\n%s%s", res.status, res.out, res.err);
    cr_assert_not_null(strstr(res.out, "e3: step \"g\" changed"), "%s",
                       res.out);
    cr_assert_not_null(strstr(res.out, "allowed"), "%s", res.out);
    cr_assert_not_null(strstr(res.out, "e3: compatible"), "%s", res.out);
    tu_result_free(&res);
    cr_assert_eq(evs_orch_post(st, S("e3"), S("event"), S("go"), S("1")), 0);
    res = EVRUN("resume", tu_loc(dir), "e3", "--definition", wider);
    cr_assert_eq(res.status, 0, "exit %d\n%s%s", res.status, res.out, res.err);
    cr_assert_not_null(strstr(res.out, "allowed"), "%s", res.out);
    cr_assert_not_null(strstr(res.out, "e3 completed"), "%s", res.out);
    tu_result_free(&res);
}
