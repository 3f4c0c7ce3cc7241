/*
 * test_continue.c: loops and continue-as-new.
 *
 * A service (a definition with a loop) runs through 100,000 events: it
 * continues as new whenever another pass would take its log past the
 * threshold, so no execution's log passes it, and the chain ends in the
 * state one unbroken run (continue-as-new turned off) ends in.
 */
#include <criterion/criterion.h>

#include "evstore.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* incr: {"n":N} -> N+1, counting its calls. */
static long calls;

static void incr(void *arg, evs_action_req *req)
{
    const evs_action_call *c = evs_action_req_call(req);
    char in[64], out[32];
    long n = -1;

    (void)arg;
    calls++;
    snprintf(in, sizeof(in), "%.*s", (int)c->input.len, c->input.ptr);
    cr_assert_eq(sscanf(in, "{\"n\":%ld}", &n), 1, "input %s", in);
    snprintf(out, sizeof(out), "%ld", n + 1);
    cr_assert_eq(evs_action_complete(req, evs_span_cstr(out)), 0);
}

static char def[2048];

static void make_def(long passes)
{
    snprintf(def, sizeof(def),
             "{\"name\":\"counter\",\"steps\":["
             "{\"name\":\"init\",\"kind\":\"action\",\"action\":\"echo\","
             "\"params\":0,\"store\":\"n\",\"next\":\"tick\"},"
             "{\"name\":\"tick\",\"kind\":\"action\",\"action\":\"incr\","
             "\"params\":{\"n\":\"${vars.n}\"},\"store\":\"n\",\"next\":["
             "{\"to\":\"tick\",\"when\":{\"lt\":[\"${vars.n}\",%ld]}},"
             "{\"to\":\"done\",\"when\":{\"ge\":[\"${vars.n}\",%ld]}}]},"
             "{\"name\":\"done\",\"kind\":\"action\",\"action\":\"echo\","
             "\"params\":{\"n\":\"${vars.n}\"}}]}",
             passes, passes);
}

static int outcomes[8];
static char last_id[EVS_ID_MAX + 1];

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    (void)arg;
    cr_assert_eq(err, 0, "%s: %s", id, evs_strerror(err));
    outcomes[oc]++;
    snprintf(last_id, sizeof(last_id), "%s", id);
}

typedef struct run {
    char *dir;
    evs_store *st;
    long calls;
} run;

/* Runs the counter to `passes` with the given event threshold. */
static void run_counter(run *r, long passes, uint64_t threshold)
{
    evs_store_opts so;
    evs_orch_opts oo;
    evs_orch *o;
    evs_wf_error we;

    memset(outcomes, 0, sizeof(outcomes));
    calls = 0;
    r->dir = tu_tmpdir("continue");
    evs_store_opts_init(&so);
    so.durability = EVS_SYNC_NONE;
    cr_assert_eq(evs_store_open(r->dir, &so, &r->st), 0);
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    oo.continue_events = threshold;
    oo.continue_bytes = 0;
    cr_assert_eq(evs_orch_new(r->st, &oo, &o), 0);
    cr_assert_eq(evs_orch_register(o, "incr", incr, NULL, 0), 0);
    make_def(passes);
    cr_assert_eq(evs_orch_start(o, evs_span_cstr(def), (evs_span){0},
                                evs_span_cstr("svc"), NULL, &we),
                 0, "%s: %s", we.step, we.msg);
    cr_assert_eq(evs_orch_run(o), 0);
    evs_orch_free(o);
    r->calls = calls;
}

static int span_contains(evs_span s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, needle, n) == 0)
            return 1;
    return 0;
}

static evs_replay *open_replay(evs_store *st, const char *id)
{
    evs_replay *rp;
    evs_violation v;

    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    cr_assert_eq(evs_replay_open(rp, st, id, strlen(id), 0, NULL, &v, NULL),
                 0, "%s", id);
    return rp;
}

Test(cont, a_service_through_100000_events_stays_under_the_threshold)
{
    const long passes = 25500; /* 4 events a pass: > 100,000 events */
    run chain, whole;
    evs_exec_listing l;
    evs_replay *a, *b;
    const evs_var_state *va, *vb;
    uint64_t events = 0;
    size_t hops = 0;
    char id[EVS_ID_MAX + 1] = "svc";

    run_counter(&chain, passes, 4096);
    cr_assert_eq(outcomes[EVS_OUTCOME_COMPLETED], 1);
    cr_assert_gt(outcomes[EVS_OUTCOME_CONTINUED], 20);
    cr_assert_eq(outcomes[EVS_OUTCOME_ERROR], 0);
    cr_assert_eq(chain.calls, passes, "every pass ran its action once");

    /* Follow the chain: every log within the threshold, each successor
     * naming its predecessor, the last one completed. */
    cr_assert_eq(evs_exec_list(chain.st, NULL, &l), 0);
    for (;;) {
        evs_replay *rp = open_replay(chain.st, id);
        const evs_exec_state *x = evs_replay_exec(rp);
        cr_assert_leq(x->last_seq, 4096, "%s has %llu events", id,
                      (unsigned long long)x->last_seq);
        events += x->last_seq;
        if (x->status != EVS_STATUS_CONTINUED) {
            cr_assert_eq(x->status, EVS_STATUS_COMPLETED);
            evs_replay_free(rp);
            break;
        }
        cr_assert_gt(x->continued_as.len, 0);
        snprintf(id, sizeof(id), "%.*s", (int)x->continued_as.len,
                 x->continued_as.ptr);
        evs_replay_free(rp);
        {
            evs_replay *succ = open_replay(chain.st, id);
            cr_assert(span_contains(evs_replay_exec(succ)->lineage,
                                       "continued_from"));
            evs_replay_free(succ);
        }
        hops++;
    }
    cr_assert_eq(hops + 1, l.count, "one execution per link, no orphan");
    cr_assert_geq(events, 100000, "%llu events in all",
                  (unsigned long long)events);
    evs_exec_list_free(&l);

    /* The same service in one unbroken run ends in the same state. */
    run_counter(&whole, passes, 0);
    cr_assert_eq(outcomes[EVS_OUTCOME_CONTINUED], 0);
    cr_assert_eq(whole.calls, chain.calls);
    a = open_replay(chain.st, id);
    b = open_replay(whole.st, "svc");
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
    evs_replay_free(a);
    evs_replay_free(b);
    evs_store_close(chain.st);
    evs_store_close(whole.st);
    tu_rmtree_free(chain.dir);
    tu_rmtree_free(whole.dir);
}

Test(cont, a_continue_as_new_step_carries_only_the_variables_it_names)
{
    const char *d =
        "{\"name\":\"roll\",\"steps\":["
        "{\"name\":\"init\",\"kind\":\"action\",\"action\":\"echo\","
        "\"params\":0,\"store\":\"n\",\"next\":\"tick\"},"
        "{\"name\":\"tick\",\"kind\":\"action\",\"action\":\"incr\","
        "\"params\":{\"n\":\"${vars.n}\"},\"store\":\"n\",\"next\":\"junk\"},"
        "{\"name\":\"junk\",\"kind\":\"action\",\"action\":\"echo\","
        "\"params\":\"x\",\"store\":\"junk\",\"next\":["
        "{\"to\":\"again\",\"when\":{\"lt\":[\"${vars.n}\",5]}},"
        "{\"to\":\"done\",\"when\":{\"ge\":[\"${vars.n}\",5]}}]},"
        "{\"name\":\"again\",\"kind\":\"continue_as_new\","
        "\"start_at\":\"tick\",\"carry\":[\"n\"]},"
        "{\"name\":\"done\",\"kind\":\"action\",\"action\":\"echo\","
        "\"params\":{\"n\":\"${vars.n}\"}}]}";
    evs_store_opts so;
    evs_orch_opts oo;
    evs_orch *o;
    evs_wf_error we;
    evs_store *st;
    char *dir = tu_tmpdir("roll");
    const char *ids[] = {"r", "r.c2", "r.c3", "r.c4", "r.c5"};

    memset(outcomes, 0, sizeof(outcomes));
    calls = 0;
    evs_store_opts_init(&so);
    so.durability = EVS_SYNC_NONE;
    cr_assert_eq(evs_store_open(dir, &so, &st), 0);
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    cr_assert_eq(evs_orch_new(st, &oo, &o), 0);
    cr_assert_eq(evs_orch_register(o, "incr", incr, NULL, 0), 0);
    cr_assert_eq(evs_orch_start(o, evs_span_cstr(d), (evs_span){0},
                                evs_span_cstr("r"), NULL, &we),
                 0, "%s: %s", we.step, we.msg);
    cr_assert_eq(evs_orch_run(o), 0);
    evs_orch_free(o);
    cr_assert_eq(outcomes[EVS_OUTCOME_CONTINUED], 4);
    cr_assert_eq(outcomes[EVS_OUTCOME_COMPLETED], 1);
    cr_assert_eq(calls, 5, "one incr per run");
    for (size_t i = 0; i < 5; i++) {
        evs_replay *rp = open_replay(st, ids[i]);
        const evs_exec_state *x = evs_replay_exec(rp);
        if (i > 0) {
            /* Carried: n as the predecessor left it; not carried: junk,
             * until this run's own junk step sets it. */
            const evs_var_state *n = evs_replay_find_var(rp,
                                                         evs_span_cstr("n"));
            cr_assert_not_null(n);
            cr_assert(span_contains(x->lineage, ids[i - 1]));
            cr_assert_eq(x->status, i < 4 ? EVS_STATUS_CONTINUED
                                          : EVS_STATUS_COMPLETED);
        }
        if (i == 4)
            cr_assert_eq(x->outputs.len, 7, "%.*s", (int)x->outputs.len,
                         x->outputs.ptr); /* {"n":5} */
        evs_replay_free(rp);
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
        const char *evdump = getenv("EVDUMP");
        char cmd[4096], out[8192] = "";
        size_t n = 0;
        FILE *p;
        cr_assert_not_null(evdump, "EVDUMP is set by meson");
        snprintf(cmd, sizeof(cmd), "'%s' chain '%s' r.c3", evdump, dir);
        cr_assert_not_null(p = popen(cmd, "r"));
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        cr_assert_eq(pclose(p), 0, "%s", out);
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
    }
    evs_store_close(st);
    tu_rmtree_free(dir);
}

/* ------------------------------------------------------------------ */
/* Crashes during continue-as-new                                     */
/* ------------------------------------------------------------------ */

#include "fault_io.h"

#include <errno.h>
#include <limits.h>

/* Runs the counter on `dir` until it stops (done, or given up after an
 * I/O failure); `fio` may be NULL for the real disk. */
static void run_on(const char *dir, fault_io *fio, long passes,
                   int resume)
{
    evs_store_opts so;
    evs_orch_opts oo;
    evs_store *st;
    evs_orch *o;

    evs_store_opts_init(&so);
    so.durability = EVS_SYNC_NONE; /* failures, not power loss, here */
    if (fio)
        so.io = &fio->io;
    if (evs_store_open(dir, &so, &st) != 0) {
        cr_assert_not_null(fio, "the real disk opens");
        return; /* the disk failed at once */
    }
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = NULL;
    oo.continue_events = 60;
    oo.continue_bytes = 0;
    cr_assert_eq(evs_orch_new(st, &oo, &o), 0);
    cr_assert_eq(evs_orch_register(o, "incr", incr, NULL, 0), 0);
    if (resume) {
        cr_assert_eq(evs_orch_recover(o, NULL), 0);
    } else {
        make_def(passes);
        (void)evs_orch_start(o, evs_span_cstr(def), (evs_span){0},
                             evs_span_cstr("svc"), NULL, NULL);
    }
    evs_orch_run(o);
    evs_orch_free(o);
    evs_store_close(st);
}

Test(cont, a_crash_at_any_write_leaves_one_whole_linked_successor_each)
{
    const long passes = 40;
    fault_io fio;
    char *dir;
    long total;

    /* How many mutating calls a whole run makes. */
    dir = tu_tmpdir("cancrash");
    fault_io_init(&fio);
    fault_io_arm(&fio, FIO_MUTATING, LONG_MAX, -EIO, 0); /* counts only */
    run_on(dir, &fio, passes, 0);
    total = fio.calls;
    tu_rmtree_free(dir);
    cr_assert_gt(total, 50);

    for (long nth = 1; nth <= total; nth++) {
        evs_store *st;
        evs_exec_listing l;
        char id[EVS_ID_MAX + 1] = "svc";
        size_t links = 0;

        dir = tu_tmpdir("cancrash");
        /* From call nth on, every write fails: the disk is gone. */
        fault_io_init(&fio);
        fault_io_arm(&fio, FIO_MUTATING, nth, -EIO, 1);
        run_on(dir, &fio, passes, 0);
        /* A runner on a working disk takes over whatever is unfinished. */
        if (evs_store_open(dir, NULL, &st) == 0) {
            evs_store_close(st);
            run_on(dir, NULL, passes, 1);
        }
        cr_assert_eq(evs_store_open(dir, NULL, &st), 0);
        cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
        if (l.count == 0) { /* the crash came before the first creation */
            evs_exec_list_free(&l);
            evs_store_close(st);
            tu_rmtree_free(dir);
            continue;
        }
        /* Every execution listed exists, and each but the first
         * continues the one before it in the chain: no orphan, none made
         * twice. */
        for (size_t i = 0; i < l.count; i++)
            cr_assert(evs_exec_exists(st, l.items[i].id.ptr,
                                      l.items[i].id.len),
                      "nth %ld: %.*s is listed but has no log", nth,
                      (int)l.items[i].id.len, l.items[i].id.ptr);
        for (;;) {
            evs_replay *rp = open_replay(st, id);
            const evs_exec_state *x = evs_replay_exec(rp);
            links++;
            if (x->status != EVS_STATUS_CONTINUED) {
                cr_assert_eq(x->status, EVS_STATUS_COMPLETED,
                             "nth %ld: %s ends %s", nth, id,
                             evs_exec_status_name(x->status));
                cr_assert(span_contains(x->outputs, "40"),
                          "nth %ld: outputs %.*s", nth,
                          (int)x->outputs.len, x->outputs.ptr);
                evs_replay_free(rp);
                break;
            }
            snprintf(id, sizeof(id), "%.*s", (int)x->continued_as.len,
                     x->continued_as.ptr);
            evs_replay_free(rp);
            {
                evs_replay *succ = open_replay(st, id);
                cr_assert(span_contains(evs_replay_exec(succ)->lineage,
                                        "\"continued_from\""));
                evs_replay_free(succ);
            }
        }
        cr_assert_eq(links, l.count,
                     "nth %ld: %zu executions, %zu in the chain", nth,
                     l.count, links);
        evs_exec_list_free(&l);
        evs_store_close(st);
        tu_rmtree_free(dir);
    }
}
