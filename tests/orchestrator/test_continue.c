/*
 * test_continue.c: loops and continue-as-new.
 *
 * A service (a definition with a loop) runs through 100,000 events: it
 * continues as new whenever another pass would take its log past the
 * threshold, so no execution's log passes it, and the chain ends in the
 * state one unbroken run (continue-as-new turned off) ends in.
 */
#include <criterion/criterion.h>

#include "fault_io.h"
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* incr: {"n":N} -> N+1, counting its calls (too many to record). */
static long incr_calls;

static void incr(void *arg, evs_action_req *req)
{
    const evs_action_call *c = evs_action_req_call(req);
    char in[64], out[32];
    long n = -1;

    (void)arg;
    incr_calls++;
    snprintf(in, sizeof(in), "%.*s", (int)c->input.len, c->input.ptr);
    cr_assert_eq(sscanf(in, "{\"n\":%ld}", &n), 1, "input %s", in);
    snprintf(out, sizeof(out), "%ld", n + 1);
    cr_assert_eq(evs_action_complete(req, evs_span_cstr(out)), 0);
}

static void register_actions(evs_orch *o)
{
    cr_assert_eq(evs_orch_register(o, "incr", incr, NULL, 0), 0);
}

static void setup(void)
{
    /* Loops and failures, not power loss, here: no syncs. */
    harness_setup("continue", register_actions, EVS_SYNC_NONE);
    incr_calls = 0;
}

TestSuite(cont, .init = setup, .fini = harness_teardown);

/* The counter: init stores 0, tick adds 1 until n is `passes`. */
static const char *counter_def(long passes)
{
    char b[1024];

    snprintf(b, sizeof(b),
             "{'name':'counter','steps':["
             "{'name':'init','kind':'action','action':'echo',"
             "'params':0,'store':'n','next':'tick'},"
             "{'name':'tick','kind':'action','action':'incr',"
             "'params':{'n':'${vars.n}'},'store':'n','next':["
             "{'to':'tick','when':{'lt':['${vars.n}',%ld]}},"
             "{'to':'done','when':{'ge':['${vars.n}',%ld]}}]},"
             "{'name':'done','kind':'action','action':'echo',"
             "'params':{'n':'${vars.n}'}}]}",
             passes, passes);
    return J(b);
}

/* Runs the counter to `passes` as `id` with the given event threshold
 * (0: never continues as new), its outcomes and calls counted afresh. */
static void run_counter(const char *id, long passes, uint64_t threshold)
{
    evs_orch_opts oo;

    nouts = 0;
    incr_calls = 0;
    orch_opts_init(&oo, 1);
    oo.continue_events = threshold;
    oo.continue_bytes = 0;
    mk_orch_with(&oo);
    start(counter_def(passes), "", id);
    run_orch();
}

/* Execution `id` (in s, state x) continued as another: it names one,
 * which says it continued from `id`. Its id replaces id. */
static void next_link(evs_store *s, const evs_exec_state *x, char *id)
{
    char from[EVS_ID_MAX + 3];
    evs_replay *succ;

    cr_assert_gt(x->continued_as.len, 0, "%s continued as nothing", id);
    snprintf(from, sizeof(from), "\"%s\"", id);
    snprintf(id, EVS_ID_MAX + 1, "%.*s", (int)x->continued_as.len,
             x->continued_as.ptr);
    succ = replay_in(s, id);
    expect_span(jget(evs_replay_exec(succ)->lineage, "continued_from"), from);
    rp_free(succ);
}

/* The long service's passes (4 events each): 25,500 (over 100,000
 * events) on files; on the database backends 6,000, to keep their suites
 * short in CI (EVS_CONTINUE_PASSES=25500 meson test -C build
 * continue_sqlite continue_pg runs them at the full size). */
static long service_passes(void)
{
    const char *e = getenv("EVS_CONTINUE_PASSES");

    if (e && atol(e) > 0)
        return atol(e);
    return tu_backend_is_file() ? 25500 : 6000;
}

Test(cont, a_long_service_stays_under_the_threshold)
{
    const long passes = service_passes();
    long chain_calls;
    evs_replay *a, *b;
    const evs_var_state *va, *vb;
    uint64_t events = 0;
    size_t hops = 0;
    char id[EVS_ID_MAX + 1] = "svc";

    run_counter("svc", passes, 4096);
    cr_assert_eq(outcome_count(EVS_OUTCOME_COMPLETED), 1);
    cr_assert_geq(outcome_count(EVS_OUTCOME_CONTINUED),
                  (size_t)(passes * 4 / 4096) - 1);
    cr_assert_eq(outcome_count(EVS_OUTCOME_ERROR), 0);
    cr_assert_eq(incr_calls, passes, "every pass ran its action once");
    chain_calls = incr_calls;

    /* Follow the chain: every log within the threshold, each successor
     * naming its predecessor, the last one completed. */
    for (;;) {
        evs_replay *rp = replay_of(id);
        const evs_exec_state *x = evs_replay_exec(rp);
        cr_assert_leq(x->last_seq, 4096, "%s has %llu events", id,
                      (unsigned long long)x->last_seq);
        events += x->last_seq;
        if (x->status != EVS_STATUS_CONTINUED) {
            cr_assert_eq(x->status, EVS_STATUS_COMPLETED);
            rp_free(rp);
            break;
        }
        next_link(st, x, id);
        rp_free(rp);
        hops++;
    }
    expect_outcome(id, EVS_OUTCOME_COMPLETED);
    cr_assert_eq(hops + 1, exec_count(), "one execution per link, no orphan");
    cr_assert_geq(events, (uint64_t)passes * 4, "%llu events in all",
                  (unsigned long long)events);

    /* The same service in one unbroken run ends in the same state
     * (without the store's history limits, which it passes). */
    harness_store_limits(EVS_LIMIT_NONE, EVS_LIMIT_NONE, EVS_LIMIT_NONE,
                         EVS_LIMIT_NONE);
    run_counter("whole", passes, 0);
    expect_outcome("whole", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(outcome_count(EVS_OUTCOME_CONTINUED), 0);
    cr_assert_eq(incr_calls, chain_calls);
    a = replay_of(id);
    b = replay_of("whole");
    cr_assert_eq(evs_replay_exec(a)->outputs.len,
                 evs_replay_exec(b)->outputs.len);
    cr_assert_eq(memcmp(evs_replay_exec(a)->outputs.ptr,
                        evs_replay_exec(b)->outputs.ptr,
                        evs_replay_exec(b)->outputs.len),
                 0, "outputs %.*s", (int)evs_replay_exec(a)->outputs.len,
                 evs_replay_exec(a)->outputs.ptr);
    cr_assert_eq(evs_replay_var_count(a), evs_replay_var_count(b));
    for (size_t i = 0; i < evs_replay_var_count(b); i++) {
        vb = evs_replay_var(b, i);
        va = evs_replay_find_var(a, vb->name);
        cr_assert_not_null(va, "variable %.*s", (int)vb->name.len,
                           vb->name.ptr);
        cr_assert_eq(va->value.len, vb->value.len);
        cr_assert_eq(memcmp(va->value.ptr, vb->value.ptr, vb->value.len), 0);
    }
    rp_free(a);
    rp_free(b);
}

Test(cont, a_continue_as_new_step_carries_only_the_variables_it_names)
{
    const char *d = J("{'name':'roll','steps':["
                      "{'name':'init','kind':'action','action':'echo',"
                      "'params':0,'store':'n','next':'tick'},"
                      "{'name':'tick','kind':'action','action':'incr',"
                      "'params':{'n':'${vars.n}'},'store':'n','next':'junk'},"
                      "{'name':'junk','kind':'action','action':'echo',"
                      "'params':'x','store':'junk','next':["
                      "{'to':'again','when':{'lt':['${vars.n}',5]}},"
                      "{'to':'done','when':{'ge':['${vars.n}',5]}}]},"
                      "{'name':'again','kind':'continue_as_new',"
                      "'start_at':'tick','carry':['n']},"
                      "{'name':'done','kind':'action','action':'echo',"
                      "'params':{'n':'${vars.n}'}}]}");
    const char *ids[] = {"r", "r.c2", "r.c3", "r.c4", "r.c5"};

    run_new(d, "", "r", EVS_OUTCOME_CONTINUED);
    cr_assert_eq(outcome_count(EVS_OUTCOME_CONTINUED), 4);
    cr_assert_eq(outcome_count(EVS_OUTCOME_COMPLETED), 1);
    cr_assert_eq(nouts, 5, "one outcome per run");
    cr_assert_eq(incr_calls, 5, "one incr per run");
    for (size_t i = 0; i < 5; i++) {
        evs_replay *rp = replay_of(ids[i]);
        const evs_exec_state *x = evs_replay_exec(rp);
        if (i > 0) {
            /* Carried: n as the predecessor left it; not carried: junk,
             * until this run's own junk step sets it. */
            const evs_var_state *n =
                evs_replay_find_var(rp, evs_span_cstr("n"));
            cr_assert_not_null(n);
            cr_assert(span_contains(x->lineage, ids[i - 1]));
            cr_assert_eq(x->status,
                         i < 4 ? EVS_STATUS_CONTINUED : EVS_STATUS_COMPLETED);
        }
        if (i == 4)
            cr_assert_eq(x->outputs.len, 7, "%.*s", (int)x->outputs.len,
                         x->outputs.ptr); /* {"n":5} */
        rp_free(rp);
    }
    {
        /* The successor's first events: start, root path, n only. */
        evs_log *l;
        evs_cursor *c;
        evs_event ev;
        int vars = 0;
        cr_assert_eq(evs_log_open(st, "r.c3", 4, 0, &l, NULL, NULL), 0);
        cr_assert_eq(evs_cursor_open(l, 1, 4, &c, NULL), 0);
        while (evs_cursor_next(c, &ev, NULL, NULL) == 1)
            if (ev.event_type.len == 12 &&
                memcmp(ev.event_type.ptr, "variable_set", 12) == 0) {
                vars++;
                cr_assert(span_contains(ev.data, "\"name\":\"n\""));
            }
        cr_assert_eq(vars, 1);
        evs_cursor_close(c);
        evs_log_close(l);
    }
    {
        /* evdump chain, asked about the middle, shows all five in order,
         * from the first. */
        char *io = tu_tmpdir("cont-io");
        tu_result r;
        const char *out;

        cr_assert_not_null(io);
        r = tu_run_tool("EVDUMP", io, "chain",
                        (const char *const[]){"chain", tu_loc(dir), "r.c3", NULL});
        out = r.out;
        cr_assert_eq(r.status, 0, "%s%s", out, r.err);
        for (size_t i = 0; i < 5; i++) {
            char *at = strstr(out, ids[i]);
            cr_assert_not_null(at, "%s missing from:\n%s", ids[i], out);
            if (i > 0)
                cr_assert(strstr(out, ids[i - 1]) < at);
        }
        cr_assert_not_null(strstr(out, "(continued)"));
        cr_assert_not_null(strstr(out, "r.c3") &&
                               strstr(strstr(out, "r.c3"), "<-"),
                           "the one asked about is marked:\n%s", out);
        tu_result_free(&r);
        tu_rmtree_free(io);
    }
}

/* Runs the roll-over definition (three continuations) as `id`; fills
 * ids[0..3] with the chain, which must be whole, each id valid. */
static void roll_chain(const char *id, char ids[4][EVS_ID_MAX + 1])
{
    const char *d = J("{'name':'roll','steps':["
                      "{'name':'init','kind':'action','action':'echo',"
                      "'params':0,'store':'n','next':'tick'},"
                      "{'name':'tick','kind':'action','action':'incr',"
                      "'params':{'n':'${vars.n}'},'store':'n','next':["
                      "{'to':'again','when':{'lt':['${vars.n}',4]}},"
                      "{'to':'done','when':{'ge':['${vars.n}',4]}}]},"
                      "{'name':'again','kind':'continue_as_new',"
                      "'start_at':'tick','carry':['n']},"
                      "{'name':'done','kind':'action','action':'echo',"
                      "'params':{'n':'${vars.n}'}}]}");

    nouts = 0;
    run_new(d, "", id, EVS_OUTCOME_CONTINUED);
    cr_assert_eq(outcome_count(EVS_OUTCOME_CONTINUED), 3);
    cr_assert_eq(outcome_count(EVS_OUTCOME_COMPLETED), 1);
    snprintf(ids[0], EVS_ID_MAX + 1, "%s", id);
    for (size_t i = 0; i < 3; i++) {
        evs_replay *rp = replay_of(ids[i]);

        memcpy(ids[i + 1], ids[i], sizeof(ids[i]));
        next_link(st, evs_replay_exec(rp), ids[i + 1]);
        cr_assert(evs_id_valid(ids[i + 1], strlen(ids[i + 1])), "%s",
                  ids[i + 1]);
        rp_free(rp);
    }
}

/* An id of the longest length has no room for ".c2": its successors'
 * ids are cut and told apart by a hash of the whole id (it used to fail
 * on every resume). */
Test(cont, an_id_of_the_longest_length_continues_as_new)
{
    char a[EVS_ID_MAX + 1], b[EVS_ID_MAX + 1];
    char ca[4][EVS_ID_MAX + 1], cb[4][EVS_ID_MAX + 1];

    memset(a, 'x', EVS_ID_MAX);
    a[EVS_ID_MAX] = '\0';
    memcpy(b, a, sizeof(b));
    b[EVS_ID_MAX - 1] = 'y'; /* differs only past the cut */
    roll_chain(a, ca);
    roll_chain(b, cb);
    for (size_t i = 1; i < 4; i++) {
        cr_assert_eq(strlen(ca[i]), EVS_ID_MAX, "%s", ca[i]);
        cr_assert_str_neq(ca[i], cb[i]);
        cr_assert_str_neq(ca[i], ca[i - 1]);
    }
    cr_assert_eq(strncmp(ca[1], a, 100), 0, "the start of the id is kept");
    cr_assert(strstr(ca[3], ".c4"), "%s", ca[3]);
    /* Short ids keep the plain form. */
    roll_chain("short", ca);
    cr_assert_str_eq(ca[3], "short.c4");
}

/* ------------------------------------------------------------------ */
/* Resuming and reaching a chain through any of its members           */
/* ------------------------------------------------------------------ */

/* Counts to 2 in two runs (the first continues as new at 1), then runs
 * step `last` (JSON, named "last"). */
static const char *two_run_def(const char *last)
{
    char b[1024];

    snprintf(b, sizeof(b),
             "{'name':'two','steps':["
             "{'name':'init','kind':'action','action':'echo',"
             "'params':0,'store':'n','next':'tick'},"
             "{'name':'tick','kind':'action','action':'incr',"
             "'params':{'n':'${vars.n}'},'store':'n','next':["
             "{'to':'again','when':{'lt':['${vars.n}',2]}},"
             "{'to':'last','when':{'ge':['${vars.n}',2]}}]},"
             "{'name':'again','kind':'continue_as_new',"
             "'start_at':'tick','carry':['n']},"
             "%s]}",
             last);
    return J(b);
}

/* Resumes `id` (a member of a chain that ends in `last`) and expects
 * every member from `id` on to report CONTINUED, then `last` to report
 * `oc`, with nothing written to any of them. */
static void resume_member(const char *id, const char *last, evs_outcome oc)
{
    uint64_t seq = last_seq_of(last);
    int rc;

    nouts = 0;
    mk_orch(1);
    rc = evs_orch_resume(orch, S(id));
    cr_assert_eq(rc, 0, "resume %s: %s (%s)", id, evs_err_name(rc), last_log);
    run_orch();
    if (strcmp(id, last) != 0) {
        expect_outcome(id, EVS_OUTCOME_CONTINUED);
        cr_assert_eq(nouts, 2, "%s, then %s", id, last);
    }
    expect_outcome(last, oc);
    cr_assert_eq(last_seq_of(last), seq, "%s was written to", last);
}

Test(cont, resuming_any_member_of_an_ended_chain_reports_how_it_ended)
{
    evs_replay *rp;

    run_new(two_run_def("{'name':'last','kind':'action','action':'echo',"
                        "'params':{'n':'${vars.n}'}}"),
            "", "ok", EVS_OUTCOME_CONTINUED);
    expect_outcome("ok.c2", EVS_OUTCOME_COMPLETED);
    resume_member("ok", "ok.c2", EVS_OUTCOME_COMPLETED);
    resume_member("ok.c2", "ok.c2", EVS_OUTCOME_COMPLETED);
    rp = replay_of("ok.c2");
    expect_span(evs_replay_exec(rp)->outputs, "{\"n\":2}");
    rp_free(rp);

    run_new(two_run_def("{'name':'last','kind':'action','action':'fail',"
                        "'params':{'times':1,'fatal':true}}"),
            "", "bad", EVS_OUTCOME_CONTINUED);
    expect_outcome("bad.c2", EVS_OUTCOME_FAILED);
    resume_member("bad", "bad.c2", EVS_OUTCOME_FAILED);
    rp = replay_of("bad.c2");
    expect_span(jget(evs_replay_exec(rp)->error, "type"), "\"fatal\"");
    rp_free(rp);
}

static const char *waiting_last =
    "{'name':'last','kind':'wait_event','event':'go','store':'g',"
    "'next':'out'},"
    "{'name':'out','kind':'action','action':'echo',"
    "'params':{'n':'${vars.n}','g':'${vars.g}'}}";

Test(cont, a_chain_is_resumed_and_takes_requests_through_its_first_member)
{
    evs_replay *rp;

    run_new(two_run_def(waiting_last), "", "lw", EVS_OUTCOME_CONTINUED);
    expect_outcome("lw.c2", EVS_OUTCOME_SUSPENDED);
    /* A request to the first member goes to the one that goes on. */
    cr_assert_eq(evs_orch_post(st, S("lw"), S("event"), S("go"), S("7")), 0);
    cr_assert_eq(inbox_count("lw.c2", NULL), 1);
    cr_assert_eq(inbox_count("lw", NULL), 0);
    /* Resuming the first member resumes the last, which takes it. */
    nouts = 0;
    run_resume("lw", EVS_OUTCOME_CONTINUED);
    expect_outcome("lw.c2", EVS_OUTCOME_COMPLETED);
    rp = replay_of("lw.c2");
    expect_span(evs_replay_exec(rp)->outputs, "{\"n\":2,\"g\":7}");
    rp_free(rp);
    /* Ended, the chain takes no more. */
    cr_assert_eq(evs_orch_post(st, S("lw"), S("event"), S("go"), S("8")),
                 EVS_EFINISHED);
    cr_assert_eq(inbox_count("lw.c2", NULL), 0);
}

static int send_rc;

/* Once the successor waits, sends to the first member by its id. */
static int script_send_to_first(int step)
{
    const evs_replay *r = evs_orch_state(orch, S("sf.c2"));

    switch (step) {
    case 0:
        if (!r || evs_replay_exec(r)->status != EVS_STATUS_WAITING)
            return 0;
        send_rc = evs_orch_send(orch, S("sf"), S("go"), S("9"));
        return 1;
    default:
        if (send_rc == 0 && !outcome_of("sf.c2"))
            return 1;
        evs_orch_stop(orch, 0);
        return -1;
    }
}

Test(cont, an_event_sent_to_a_member_that_continued_reaches_its_successor)
{
    evs_replay *rp;

    send_rc = 99;
    run_scripted(0, two_run_def(waiting_last), "sf", script_send_to_first);
    cr_assert_eq(send_rc, 0, "send: %s", evs_err_name(send_rc));
    expect_outcome("sf", EVS_OUTCOME_CONTINUED);
    expect_outcome("sf.c2", EVS_OUTCOME_COMPLETED);
    rp = replay_of("sf.c2");
    expect_span(evs_replay_exec(rp)->outputs, "{\"n\":2,\"g\":9}");
    rp_free(rp);
}

/* Makes execution `id`, ended by continuing as new as `next`. */
static void continued_as(const char *id, const char *next)
{
    char data[EVS_ID_MAX + 32];
    evs_event e;
    evs_log *l;

    snprintf(data, sizeof(data), "{\"successor\":\"%s\"}", next);
    e = tu_event("execution_continue_as_new", NULL, data);
    cr_assert_eq(tu_create(st, id), 0);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l, &e, 1, 1, NULL), 0);
    evs_log_close(l);
}

Test(cont, a_chain_that_loops_is_refused_not_followed_for_ever)
{
    continued_as("a", "b");
    continued_as("b", "c");
    continued_as("c", "b");
    cr_assert_eq(evs_orch_post(st, S("a"), S("event"), S("go"), S("1")),
                 EVS_EHISTORY);
    mk_orch(1);
    cr_assert_eq(evs_orch_resume(orch, S("a")), EVS_EHISTORY);
    cr_assert(strstr(last_log, "loops"), "log: %s", last_log);
    run_orch();
}

/* ------------------------------------------------------------------ */
/* Crashes during continue-as-new                                     */
/* ------------------------------------------------------------------ */

/* Runs `def` (the counter) as "svc" on the store in `d`, or with resume
 * takes over what is unfinished there, until it stops (done, or given up
 * after an I/O failure); `fio` may be NULL for the real disk. */
static void run_on(const char *d, fault_io *fio, const char *def, int resume)
{
    evs_store_opts so;
    evs_orch_opts oo;
    evs_store *s;
    evs_orch *o;

    evs_store_opts_init(&so);
    so.durability = EVS_SYNC_NONE; /* failures, not power loss, here */
    if (fio)
        so.io = &fio->io;
    if (evs_store_open(tu_loc(d), &so, &s) != 0) {
        cr_assert_not_null(fio, "the real disk opens");
        return; /* the disk failed at once */
    }
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.continue_events = 60;
    oo.continue_bytes = 0;
    o = orch_new_on(s, &oo);
    if (resume)
        cr_assert_eq(evs_orch_recover(o, NULL), 0);
    else
        (void)evs_orch_start(o, S(def), S(""), S("svc"), NULL, NULL);
    evs_orch_run(o);
    evs_orch_free(o);
    evs_store_close(s);
}

Test(cont, a_crash_at_any_write_leaves_one_whole_linked_successor_each)
{
    TU_FILE_ONLY("faults injected through evs_io");
    const char *def = counter_def(40);
    fault_io fio;
    char *cdir;
    long total;

    /* How many mutating calls a whole run makes. */
    cdir = tu_tmpdir("cancrash");
    fault_io_init(&fio);
    fault_io_arm(&fio, FIO_MUTATING, LONG_MAX, -EIO, 0); /* counts only */
    run_on(cdir, &fio, def, 0);
    total = fio.calls;
    tu_rmtree_free(cdir);
    cr_assert_gt(total, 50);

    for (long nth = 1; nth <= total; nth++) {
        evs_store *s;
        evs_exec_listing l;
        char id[EVS_ID_MAX + 1] = "svc";
        size_t links = 0;

        cdir = tu_tmpdir("cancrash");
        /* From call nth on, every write fails: the disk is gone. */
        fault_io_init(&fio);
        fault_io_arm(&fio, FIO_MUTATING, nth, -EIO, 1);
        run_on(cdir, &fio, def, 0);
        /* A runner on a working disk takes over whatever is unfinished. */
        if (evs_store_open(tu_loc(cdir), NULL, &s) == 0) {
            evs_store_close(s);
            run_on(cdir, NULL, def, 1);
        }
        cr_assert_eq(evs_store_open(tu_loc(cdir), NULL, &s), 0);
        cr_assert_eq(evs_exec_list(s, NULL, &l), 0);
        if (l.count == 0) { /* the crash came before the first creation */
            evs_exec_list_free(&l);
            evs_store_close(s);
            tu_rmtree_free(cdir);
            continue;
        }
        /* Every execution listed exists, and each but the first
         * continues the one before it in the chain: no orphan, none made
         * twice. */
        for (size_t i = 0; i < l.count; i++)
            cr_assert(evs_exec_exists(s, l.items[i].id.ptr, l.items[i].id.len),
                      "nth %ld: %.*s is listed but has no log", nth,
                      (int)l.items[i].id.len, l.items[i].id.ptr);
        for (;;) {
            evs_replay *rp = replay_in(s, id);
            const evs_exec_state *x = evs_replay_exec(rp);
            links++;
            if (x->status != EVS_STATUS_CONTINUED) {
                cr_assert_eq(x->status, EVS_STATUS_COMPLETED,
                             "nth %ld: %s ends %s", nth, id,
                             evs_exec_status_name(x->status));
                cr_assert(span_contains(x->outputs, "40"),
                          "nth %ld: outputs %.*s", nth, (int)x->outputs.len,
                          x->outputs.ptr);
                rp_free(rp);
                break;
            }
            next_link(s, x, id);
            rp_free(rp);
        }
        cr_assert_eq(links, l.count,
                     "nth %ld: %zu executions, %zu in the chain", nth, l.count,
                     links);
        evs_exec_list_free(&l);
        evs_store_close(s);
        tu_rmtree_free(cdir);
    }
}

/* A loop that could never wait or end is refused at start: one of the
 * built-in echo, and one of a host action registered with
 * EVS_ACTION_INSTANT (WORKFLOWS.md §2.9). An unknown flag is refused. */
Test(cont, a_loop_of_instant_actions_is_refused_at_start)
{
    const char *defs[] = {
        J("{'name':'spin','steps':[{'name':'a','kind':'action',"
          "'action':'echo','next':'a'}]}"),
        J("{'name':'spin','steps':[{'name':'a','kind':'action',"
          "'action':'incr','params':{'n':1},'next':'b'},"
          "{'name':'b','kind':'action','action':'tock','next':'b'}]}"),
    };
    char id[EVS_ID_MAX + 1];
    evs_error_info e;

    mk_orch(1);
    cr_assert_eq(evs_orch_register(orch, "tock", t_echo, NULL,
                                   EVS_ACTION_INSTANT | EVS_ACTION_BLOCKING),
                 0);
    cr_assert_eq(evs_orch_register(orch, "tick", t_echo, NULL, 1u << 7),
                 -EINVAL);
    cr_assert_eq(evs_orch_start(orch, S(defs[0]), S(""), S("s1"), id, &e),
                 EVS_EPARSE);
    cr_assert_str_eq(e.step, "a");
    cr_assert(strstr(e.msg, "this loop can never wait or end: a -> a"), "%s",
              e.msg);
    cr_assert_eq(evs_orch_start(orch, S(defs[1]), S(""), S("s2"), id, &e),
                 EVS_EPARSE);
    cr_assert_str_eq(e.step, "b");
    cr_assert(strstr(e.msg, "loop can never wait or end: b -> b"), "%s", e.msg);
    /* Freed at teardown without having run: evs_orch_free stops it, so
     * its loop's memory goes too (LeakSanitizer saw it stay). */
}

/* The clock the orchestrator stamps events with: each event `tick_us`
 * after the one before. */
static int64_t fake_now, tick_us;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    fake_now += tick_us;
    return fake_now;
}

/* Runs the counter to `passes` as `id` on the fake clock, with only the
 * age threshold `age_ms` (0: the options' defaults, with `def` given a
 * `continue_as_new` member `cont`). Returns the number of executions in
 * its chain, each checked to stay within `max_events`. */
static size_t run_aged(const char *id, long passes, uint32_t age_ms,
                       const char *cont, uint64_t max_events)
{
    char def[2048], id2[EVS_ID_MAX + 1];
    const char *base = counter_def(passes);
    evs_orch_opts oo;
    size_t n = 1;

    nouts = 0;
    fake_now = 1700000000000000;
    orch_opts_init(&oo, 1);
    if (age_ms) {
        oo.continue_events = 0;
        oo.continue_bytes = 0;
        oo.continue_age_ms = age_ms;
    }
    oo.clock_us = fake_clock;
    mk_orch_with(&oo);
    cr_assert_eq(strncmp(base, "{\"name\":\"counter\",", 18), 0);
    snprintf(def, sizeof(def), "{\"name\":\"counter\",%s%s%s", cont ? cont : "",
             cont ? "," : "", base + 18);
    start(def, "", id);
    run_orch();
    cr_assert_eq(outcome_count(EVS_OUTCOME_ERROR), 0);
    snprintf(id2, sizeof(id2), "%s", id);
    for (;;) {
        evs_replay *rp = replay_of(id2);
        const evs_exec_state *x = evs_replay_exec(rp);
        cr_assert_leq(x->last_seq, max_events, "%s has %llu events", id2,
                      (unsigned long long)x->last_seq);
        if (x->status != EVS_STATUS_CONTINUED) {
            char want[32];
            cr_assert_eq(x->status, EVS_STATUS_COMPLETED);
            snprintf(want, sizeof(want), "{\"n\":%ld}", passes);
            expect_span(x->outputs, want);
            rp_free(rp);
            break;
        }
        next_link(st, x, id2);
        rp_free(rp);
        n++;
    }
    expect_outcome(id2, EVS_OUTCOME_COMPLETED);
    return n;
}

Test(cont, a_service_continues_as_new_by_age_on_the_clock_of_its_history)
{
    /* A minute an event, an hour at most: about 60 events each (a pass
     * of 4 may start just under the hour). */
    tick_us = 60 * 1000000LL;
    cr_assert_geq(run_aged("aged", 60, 3600 * 1000, NULL, 64 + 4), 3);
}

Test(cont, the_age_is_read_from_the_history_not_the_wall_clock)
{
    /* Every event stamped with the same time: however long the run
     * takes on the wall clock, the history says no time passed. */
    tick_us = 0;
    cr_assert_eq(run_aged("still", 300, 1, NULL, 100000), 1);
}

Test(cont, a_definition_takes_the_service_profile_one_day_or_1000_events)
{
    /* An hour an event: 24 hours after about 24 events. */
    tick_us = 3600 * 1000000LL;
    cr_assert_geq(run_aged("daily", 30, 0,
                           "\"continue_as_new\":{\"profile\":\"service\"}",
                           24 + 8),
                  4);
    /* A minute an event: 1,000 events come before a day. */
    tick_us = 60 * 1000000LL;
    cr_assert_geq(run_aged("busy", 300, 0,
                           "\"continue_as_new\":{\"profile\":\"service\"}",
                           1000),
                  2);
    /* A member given wins over the profile. */
    cr_assert_eq(
        run_aged("off", 300, 0,
                 "\"continue_as_new\":{\"profile\":\"service\",\"events\":0,"
                 "\"age_ms\":0}",
                 100000),
        1);
}

Test(cont, the_service_profile_sets_1000_events_and_24_hours)
{
    evs_orch_opts oo;

    evs_orch_opts_init(&oo);
    evs_orch_opts_service_profile(&oo);
    cr_assert_eq(oo.continue_events, 1000);
    cr_assert_eq(oo.continue_age_ms, 24u * 3600 * 1000);
    cr_assert_eq(oo.continue_bytes, (uint64_t)4 << 20);
}

/* ---------------------------------------------------------------- */
/* Loop bounds (formats/WORKFLOWS.md §2.9)                          */
/* ---------------------------------------------------------------- */

/* The error of execution `id` names type "loop_bound". */
static void expect_loop_bound(const char *id)
{
    evs_replay *rp = replay_of(id);
    const evs_exec_state *x = evs_replay_exec(rp);

    cr_assert_eq(x->status, EVS_STATUS_FAILED);
    cr_assert(span_contains(x->error, "\"loop_bound\""), "error %.*s",
              (int)x->error.len, x->error.ptr);
    cr_assert(span_contains(x->error, "max_passes"));
    rp_free(rp);
}

/* The counter with `edges` out of tick (and `more` steps after it). */
static const char *bounded_def(const char *edges, const char *more)
{
    char b[1024];

    snprintf(b, sizeof(b),
             "{'name':'b','steps':["
             "{'name':'init','kind':'action','action':'echo',"
             "'params':0,'store':'n','next':'tick'},"
             "{'name':'tick','kind':'action','action':'incr',"
             "'params':{'n':'${vars.n}'},'store':'n','next':[%s]}%s]}",
             edges, more);
    return J(b);
}

Test(cont, a_loop_within_its_bound_ends)
{
    /* The counter's edge back allows 5 passes: 5 are all it needs. */
    evs_replay *rp;

    run_new(bounded_def("{'to':'tick','max_passes':5,"
                        "'when':{'lt':['${vars.n}',5]}},"
                        "{'to':'done','when':{'ge':['${vars.n}',5]}}",
                        ",{'name':'done','kind':'end'}"),
            "", "within", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(incr_calls, 5);
    rp = replay_of("within");
    cr_assert_not_null(evs_replay_find_path(rp, S("main~5")));
    rp_free(rp);
}

Test(cont, a_loop_past_its_bound_fails_loop_bound)
{
    /* Round for ever, but for the bound. */
    run_new(bounded_def("{'to':'tick','max_passes':3}", ""), "", "past",
            EVS_OUTCOME_FAILED);
    cr_assert_eq(incr_calls, 3, "tick ran %ld times", incr_calls);
    expect_loop_bound("past");
}

Test(cont, the_passes_of_a_bounded_loop_are_counted_from_the_history)
{
    /* Each pass waits for an event; each event is taken by a new
     * runner, which knows the passes made only from the log. */
    const char *d = J("{'name':'w','steps':["
                      "{'name':'init','kind':'action','action':'echo',"
                      "'params':0,'store':'n','next':'tick'},"
                      "{'name':'tick','kind':'action','action':'incr',"
                      "'params':{'n':'${vars.n}'},'store':'n','next':'w'},"
                      "{'name':'w','kind':'wait_event','event':'go',"
                      "'next':[{'to':'tick','max_passes':3}]}]}");

    run_new(d, "", "lb", EVS_OUTCOME_SUSPENDED);
    for (int i = 1; i <= 3; i++) {
        nouts = 0;
        cr_assert_eq(evs_orch_post(st, S("lb"), S("event"), S("go"), S("1")),
                     0);
        run_resume("lb", i < 3 ? EVS_OUTCOME_SUSPENDED : EVS_OUTCOME_FAILED);
    }
    cr_assert_eq(incr_calls, 3);
    expect_loop_bound("lb");
}

Test(cont, an_inner_bounded_loop_counts_afresh_on_each_pass_of_the_outer)
{
    /* Outer: m goes 1, 2, 3; inner: k goes 1, 2 on each (its bound). */
    const char *d = J("{'name':'nest','steps':["
                      "{'name':'init','kind':'action','action':'echo',"
                      "'params':0,'store':'m','next':'tick'},"
                      "{'name':'tick','kind':'action','action':'incr',"
                      "'params':{'n':'${vars.m}'},'store':'m','next':'reset'},"
                      "{'name':'reset','kind':'action','action':'echo',"
                      "'params':0,'store':'k','next':'in'},"
                      "{'name':'in','kind':'action','action':'incr',"
                      "'params':{'n':'${vars.k}'},'store':'k','next':["
                      "{'to':'in','max_passes':2,"
                      "'when':{'lt':['${vars.k}',2]}},"
                      "{'to':'tick','when':{'and':["
                      "{'ge':['${vars.k}',2]},"
                      "{'lt':['${vars.m}',3]}]}}]}]}");

    run_new(d, "", "nest", EVS_OUTCOME_COMPLETED);
    cr_assert_eq(incr_calls, 3 + 6);
}
