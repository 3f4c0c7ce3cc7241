/*
 * test_compact.c: the compact mode of the replayer, case by case. Each
 * hand-made history is replayed in both modes: what the compact mode
 * drops (the steps and `each` records of ended paths, failed steps
 * aside; ended waits, timers and consumed signals) must not change what
 * the run reads from the state: a path's last output, a step name's
 * output, the failure point, the definition check, whether a signal was
 * received. Its state must stay small however many paths ended, and a
 * store's snapshot of it is used only by a compact replayer.
 */
#include <criterion/criterion.h>

#include "histories.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(compact, .fini = hist_leak_check);

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static const char *const mode_name[2] = {"full", "compact"};

static evs_span sp(const char *s)
{
    return evs_span_cstr(s);
}

/* Replays the whole history strictly in mode `cm`. */
static evs_replay *replay(const hist *h, int cm)
{
    evs_replay *r = hist_replayer_mode(cm);
    evs_error_info v;

    memset(&v, 0, sizeof(v));
    cr_assert_eq(hist_apply(r, h, 0, h->n, &v), 0,
                 "[%s] sequence %llu broke %s: %s", mode_name[cm],
                 (unsigned long long)v.sequence, v.kind ? v.kind : "", v.msg);
    return r;
}

/* r's state through JSON into a fresh replayer of mode `cm`. */
static evs_replay *reloaded(const evs_replay *r, int cm)
{
    evs_replay *r2 = hist_replayer_mode(cm);
    size_t n;
    char *s = hist_state(r, &n);

    cr_assert_eq(evs_replay_load_state(r2, s, n), 0, "%s", s);
    free(s);
    return r2;
}

/* A path branched off main: {"new_paths":[{"id":...}]}. */
static void branch(hist *h, const char *from, const char *id)
{
    hist_add(h, "path_branched", from, NULL,
             "{\"new_paths\":[{\"id\":\"%s\"}]}", id);
}

static void run(hist *h, const char *path, const char *step, const char *kind,
                const char *output)
{
    if (kind)
        hist_add(h, "step_started", path, step, "{\"kind\":\"%s\"}", kind);
    else
        hist_add(h, "step_started", path, step, NULL);
    hist_add(h, "step_completed", path, step, "{\"output\":%s}", output);
}

static const evs_step_state *find_step(const evs_replay *r, const char *path,
                                       const char *name, int64_t it)
{
    return evs_replay_find_step(r, sp(path), sp(name), it);
}

static int span_is(evs_span s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static size_t steps_on(const evs_replay *r, const char *path)
{
    size_t n = 0;

    for (size_t i = 0; i < evs_replay_step_count(r); i++)
        n += span_is(evs_replay_step(r, i)->path_id, path);
    return n;
}

static const evs_stepname_state *name_rec(const evs_replay *r, const char *name)
{
    const evs_stepname_state *n = evs_replay_find_stepname(r, sp(name));

    cr_assert_not_null(n, "no record of step name %s", name);
    assert_span(n->name, name);
    return n;
}

static void assert_failure(const evs_replay *r, const char *path,
                           const char *step, int64_t it, uint64_t seq)
{
    const evs_exec_state *x = evs_replay_exec(r);

    cr_assert_eq(x->failed_seq, seq, "failure point at %llu, want %llu",
                 (unsigned long long)x->failed_seq, (unsigned long long)seq);
    assert_span(x->failed_path, path);
    assert_span(x->failed_step, step);
    cr_assert_eq(x->failed_iteration, it);
}

/* ------------------------------------------------------------------ */
/* What the run reads                                                 */
/* ------------------------------------------------------------------ */

/* A join reads the output of the last step of each branch, which stays
 * with the path when the path ends and its steps go. An `end` step only
 * ends the path: it has no output of its own. */
Test(compact, a_path_keeps_its_last_output_past_its_end_and_end_steps_skip)
{
    uint64_t a_seq, skip_seq, it_seq;
    hist h;

    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    branch(&h, NULL, "p");
    branch(&h, NULL, "q");
    branch(&h, NULL, "r");
    /* p: an action, then an `end` step with an output of its own. */
    run(&h, "p", "a", "action", "{\"from\":\"a\"}");
    a_seq = h.n;
    run(&h, "p", "fin", "end", "\"not a result\"");
    hist_add(&h, "path_completed", "p", NULL, NULL);
    /* q: a skipped step counts as done. */
    run(&h, "q", "b", NULL, "1");
    hist_add(&h, "step_skipped", "q", "c", "{\"output\":[2]}");
    skip_seq = h.n;
    hist_add(&h, "path_failed", "q", NULL, "{\"error\":\"x\"}");
    /* r: an `each` gives its output when it completes as a whole (the
     * array), not at each iteration. */
    hist_add(&h, "step_started", "r", "e", "{\"iteration\":0,\"count\":1}");
    hist_add(&h, "step_completed", "r", "e",
             "{\"iteration\":0,\"output\":\"it0\"}");
    hist_add(&h, "each_completed", "r", "e",
             "{\"output\":[\"it0\"],\"count\":1}");
    it_seq = h.n;
    hist_add(&h, "path_completed", "r", NULL, NULL);

    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = replay(&h, cm), *r2 = reloaded(r, cm);

        for (int k = 0; k < 2; k++) {
            const evs_replay *x = k ? r2 : r;
            const evs_path_state *p = evs_replay_find_path(x, sp("p"));
            const evs_path_state *q = evs_replay_find_path(x, sp("q"));
            const evs_path_state *rr = evs_replay_find_path(x, sp("r"));
            const evs_path_state *m = evs_replay_find_path(x, sp("main"));

            cr_log_info("%s mode%s", mode_name[cm], k ? ", reloaded" : "");
            assert_span(p->last_output, "{\"from\":\"a\"}");
            cr_assert_eq(p->last_output_seq, a_seq);
            assert_span(q->last_output, "[2]");
            cr_assert_eq(q->last_output_seq, skip_seq);
            assert_span(rr->last_output, "[\"it0\"]");
            cr_assert_eq(rr->last_output_seq, it_seq);
            assert_span(m->last_output, "");
            cr_assert_eq(m->last_output_seq, 0);
            /* The steps went with their paths in compact mode only. */
            cr_assert_eq(steps_on(x, "p"), cm ? 0 : 2);
            cr_assert_eq(steps_on(x, "q"), cm ? 0 : 2);
            cr_assert_eq(evs_replay_each_count(x), cm ? 0 : 1);
        }
        evs_replay_free(r);
        evs_replay_free(r2);
    }
    hist_free(&h);
}

/* What drive_eval.c's `${steps.NAME.output}` reads on a path that has not
 * run NAME itself: its own step when done, else the step-name record. */
static int read_output(const evs_replay *r, const char *path, const char *name,
                       evs_span *out)
{
    const evs_step_state *own = find_step(r, path, name, -1);
    const evs_stepname_state *n;

    if (own && (own->status == EVS_STEP_COMPLETED ||
                own->status == EVS_STEP_SKIPPED)) {
        *out = own->output;
        return 1;
    }
    n = evs_replay_find_stepname(r, sp(name));
    if (!n || !n->output_seq)
        return 0;
    *out = n->output;
    return 1;
}

Test(compact, a_branch_reads_a_step_name_output_from_its_record)
{
    uint64_t fetch_p1, x_plain, skip_seq;
    evs_replay *r[2];
    evs_span o;
    hist h;

    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    run(&h, NULL, "fetch", "action", "\"main's\"");
    branch(&h, NULL, "p1");
    branch(&h, NULL, "p2");
    branch(&h, NULL, "p3");
    /* p1 runs fetch again, later, and ends: its step goes. */
    run(&h, "p1", "fetch", "action", "\"p1's\"");
    fetch_p1 = h.n;
    hist_add(&h, "path_completed", "p1", NULL, NULL);
    /* x as a plain step on p2, then as an `each` on p3: iterations do
     * not count. */
    run(&h, "p2", "x", NULL, "\"plain\"");
    x_plain = h.n;
    hist_add(&h, "path_completed", "p2", NULL, NULL);
    hist_add(&h, "step_started", "p3", "x", "{\"iteration\":0,\"count\":2}");
    hist_add(&h, "step_completed", "p3", "x",
             "{\"iteration\":0,\"output\":\"iteration\"}");
    hist_add(&h, "step_skipped", "p3", "x",
             "{\"iteration\":1,\"output\":\"skipped iteration\"}");
    /* y only skipped, never started; z only started. */
    hist_add(&h, "step_skipped", "p3", "y", "{\"output\":{\"s\":1}}");
    skip_seq = h.n;
    hist_add(&h, "step_started", "p3", "z", "{\"kind\":\"sleep\"}");

    for (int cm = 0; cm < 2; cm++)
        r[cm] = replay(&h, cm);
    for (int cm = 0; cm < 2; cm++) {
        const evs_replay *x = r[cm];
        const evs_stepname_state *n;

        cr_log_info("%s mode", mode_name[cm]);
        n = name_rec(x, "fetch");
        assert_span(n->output, "\"p1's\"");
        cr_assert_eq(n->output_seq, fetch_p1);
        cr_assert_eq(n->started_seq, fetch_p1 - 1);
        assert_span(n->kind, "action");
        n = name_rec(x, "x");
        assert_span(n->output, "\"plain\"");
        cr_assert_eq(n->output_seq, x_plain);
        n = name_rec(x, "y");
        assert_span(n->output, "{\"s\":1}");
        cr_assert_eq(n->output_seq, skip_seq);
        cr_assert_eq(n->started_seq, 0, "only skipped");
        n = name_rec(x, "z");
        cr_assert_eq(n->output_seq, 0);
        assert_span(n->kind, "sleep");
        cr_assert_null(evs_replay_find_stepname(x, sp("never")));
        /* One record per name, in the order the names first appeared. */
        cr_assert_eq(evs_replay_stepname_count(x), 4);
        assert_span(evs_replay_stepname(x, 0)->name, "fetch");
        assert_span(evs_replay_stepname(x, 1)->name, "x");
        assert_span(evs_replay_stepname(x, 2)->name, "y");
        assert_span(evs_replay_stepname(x, 3)->name, "z");

        /* main reads its own fetch; p3, which ran none, the last one
         * anywhere, though its path ended; z has no output to read. */
        cr_assert(read_output(x, "main", "fetch", &o));
        assert_span(o, "\"main's\"");
        cr_assert(read_output(x, "p3", "fetch", &o));
        assert_span(o, "\"p1's\"");
        cr_assert(read_output(x, "main", "x", &o));
        assert_span(o, "\"plain\"");
        cr_assert(read_output(x, "main", "y", &o));
        assert_span(o, "{\"s\":1}");
        cr_assert_not(read_output(x, "main", "z", &o));
        cr_assert_not(read_output(x, "main", "never", &o));
        /* p1's own step is there only in full mode. */
        if (cm)
            cr_assert_null(find_step(x, "p1", "fetch", -1));
        else
            assert_span(find_step(x, "p1", "fetch", -1)->output, "\"p1's\"");
    }
    evs_replay_free(r[0]);
    evs_replay_free(r[1]);
    hist_free(&h);
}

/* A step failed for good on a path that then ended stays in compact
 * mode: when the later failure is retried, the failure point goes back
 * to it, as in full mode. */
Test(compact, the_failure_point_goes_back_to_a_failed_step_of_an_ended_path)
{
    uint64_t p_fail, main_fail;
    hist h;

    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    branch(&h, NULL, "p");
    run(&h, "p", "ok", NULL, "1");
    hist_add(&h, "step_started", "p", "bad", NULL);
    hist_add(&h, "step_failed", "p", "bad", "{\"error\":\"E1\"}");
    p_fail = h.n;
    hist_add(&h, "path_failed", "p", NULL, "{\"error\":\"E1\"}");
    hist_add(&h, "step_started", NULL, "later", NULL);
    hist_add(&h, "step_failed", NULL, "later", "{\"error\":\"E2\"}");
    main_fail = h.n;

    for (size_t upto = main_fail; upto <= main_fail + 3; upto++) {
        hist t;

        /* The later failure, its retry, its new start, its success. */
        hist_init(&t, 1);
        for (size_t i = 0; i < h.n; i++)
            hist_add(&t, h.ev[i].event_type.ptr, h.ev[i].path_id.ptr,
                     h.ev[i].step_name.len ? h.ev[i].step_name.ptr : NULL, "%s",
                     h.ev[i].data.ptr);
        if (upto > main_fail)
            hist_add(&t, "retry_scheduled", NULL, "later", "{\"delay_ms\":5}");
        if (upto > main_fail + 1)
            hist_add(&t, "step_started", NULL, "later", NULL);
        if (upto > main_fail + 2)
            hist_add(&t, "step_completed", NULL, "later", "{}");
        for (int cm = 0; cm < 2; cm++) {
            evs_replay *r = replay(&t, cm), *r2 = reloaded(r, cm);

            cr_log_info("%s mode, through %zu", mode_name[cm], upto);
            for (int k = 0; k < 2; k++) {
                const evs_replay *x = k ? r2 : r;
                if (upto == main_fail)
                    assert_failure(x, "main", "later", -1, main_fail);
                else
                    assert_failure(x, "p", "bad", -1, p_fail);
                cr_assert_not_null(find_step(x, "p", "bad", -1),
                                   "the failed step of p went");
                cr_assert_eq(find_step(x, "p", "bad", -1)->status,
                             EVS_STEP_FAILED);
                /* What did not fail went with the path. */
                cr_assert_eq(steps_on(x, "p"), cm ? 1 : 2);
            }
            evs_replay_free(r);
            evs_replay_free(r2);
        }
        hist_free(&t);
    }
    hist_free(&h);
}

/* ------------------------------------------------------------------ */
/* The definition check                                               */
/* ------------------------------------------------------------------ */

typedef struct diffs {
    char step[8][16];
    evs_step_change change[8];
    char old_kind[8][16], old_hash[8][24];
    uint64_t seq[8];
    size_t n;
} diffs;

static int collect(void *arg, const evs_step_diff *d)
{
    diffs *f = arg;

    cr_assert_lt(f->n, 8);
    snprintf(f->step[f->n], sizeof(f->step[0]), "%.*s", (int)d->step.len,
             d->step.ptr);
    snprintf(f->old_kind[f->n], sizeof(f->old_kind[0]), "%.*s",
             (int)d->old_kind.len, d->old_kind.ptr);
    snprintf(f->old_hash[f->n], sizeof(f->old_hash[0]), "%.*s",
             (int)d->old_hash.len, d->old_hash.ptr);
    f->change[f->n] = d->change;
    f->seq[f->n] = d->first_seq;
    f->n++;
    return 0;
}

static void check_def(const evs_replay *r, const char *def, diffs *f)
{
    size_t n = 99;

    memset(f, 0, sizeof(*f));
    cr_assert_eq(
        evs_replay_check_definition(r, def, strlen(def), collect, f, &n), 0);
    cr_assert_eq(n, f->n);
}

/* The hash of one step of a definition, as evs_replay_step_hash gives. */
static void hash_of(const char *step, char out[EVS_STEP_HASH_LEN + 1])
{
    cr_assert_eq(evs_replay_step_hash(step, strlen(step), out), 0);
}

#define PLAN_V1 "{\"name\":\"plan\",\"kind\":\"action\",\"params\":{\"t\":1}}"
#define PLAN_V2 "{\"name\":\"plan\",\"kind\":\"action\",\"params\":{\"t\":2}}"
#define NAP_SLEEP "{\"name\":\"nap\",\"kind\":\"sleep\"}"
#define NAP_WAIT "{\"name\":\"nap\",\"kind\":\"wait_event\"}"
#define GONE "{\"name\":\"gone\",\"kind\":\"action\"}"

/* Both modes give the same diffs, from each name's last start, though
 * the steps of the ended path that ran them went in compact mode. */
Test(compact, the_definition_check_is_the_same_in_both_modes_by_last_start)
{
    char h1[EVS_STEP_HASH_LEN + 1], h2[EVS_STEP_HASH_LEN + 1];
    uint64_t plan2, nap2, gone1;
    diffs d[2], none;
    hist h;

    hash_of(PLAN_V1, h1);
    hash_of(PLAN_V2, h2);
    cr_assert_str_neq(h1, h2);
    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    branch(&h, NULL, "w");
    /* The first runs, on w, which ends. */
    hist_add(&h, "step_started", "w", "plan",
             "{\"kind\":\"action\",\"step_hash\":\"%s\"}", h1);
    hist_add(&h, "step_completed", "w", "plan", "{}");
    hist_add(&h, "step_started", "w", "nap", "{\"kind\":\"sleep\"}");
    hist_add(&h, "step_completed", "w", "nap", "{}");
    hist_add(&h, "step_started", "w", "gone", "{\"kind\":\"action\"}");
    gone1 = h.n;
    hist_add(&h, "step_completed", "w", "gone", "{}");
    hist_add(&h, "path_completed", "w", NULL, NULL);
    /* The last ones, on main, under a changed definition. */
    hist_add(&h, "step_started", NULL, "plan",
             "{\"kind\":\"action\",\"step_hash\":\"%s\"}", h2);
    plan2 = h.n;
    hist_add(&h, "step_completed", NULL, "plan", "{}");
    hist_add(&h, "step_started", NULL, "nap", "{\"kind\":\"wait_event\"}");
    nap2 = h.n;

    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = replay(&h, cm);

        cr_log_info("%s mode", mode_name[cm]);
        /* The current definition: compatible, though w ran others. */
        check_def(r, "{\"steps\":[" PLAN_V2 "," NAP_WAIT "," GONE "]}", &none);
        cr_assert_eq(none.n, 0, "%zu diffs, first %s", none.n, none.step[0]);

        /* The first definition: plan and nap changed since, and gone,
         * which only w ran, is still checked. */
        check_def(r, "{\"steps\":[" PLAN_V1 "," NAP_SLEEP "]}", &d[cm]);
        cr_assert_eq(d[cm].n, 3);
        cr_assert_str_eq(d[cm].step[0], "plan");
        cr_assert_eq(d[cm].change[0], EVS_STEP_CHANGED);
        cr_assert_str_eq(d[cm].old_hash[0], h2);
        cr_assert_eq(d[cm].seq[0], plan2);
        cr_assert_str_eq(d[cm].step[1], "nap");
        cr_assert_eq(d[cm].change[1], EVS_STEP_KIND_CHANGED);
        cr_assert_str_eq(d[cm].old_kind[1], "wait_event");
        cr_assert_eq(d[cm].seq[1], nap2);
        cr_assert_str_eq(d[cm].step[2], "gone");
        cr_assert_eq(d[cm].change[2], EVS_STEP_REMOVED);
        cr_assert_eq(d[cm].seq[2], gone1);
        evs_replay_free(r);
    }
    cr_assert(memcmp(&d[0], &d[1], sizeof(d[0])) == 0);
    hist_free(&h);
}

/* ------------------------------------------------------------------ */
/* Signals                                                            */
/* ------------------------------------------------------------------ */

/* Whether a request was taken before a crash: a consumed signal leaves
 * its id in compact mode; a buffered one is found in both. */
Test(compact, a_received_signal_is_found_consumed_or_buffered)
{
    static const char *const ids[] = {"e2", "e3", "e4", "e5"};
    hist h;

    hist_init(&h, 1);
    hist_add(&h, "execution_started", NULL, NULL, "{}");
    hist_add(&h, "signal_received", NULL, NULL, "{\"signal\":\"a\"}"); /* 2 */
    hist_add(&h, "signal_received", NULL, NULL, "{\"signal\":\"b\"}"); /* 3 */
    hist_add(&h, "signal_received", NULL, NULL, "{\"signal\":\"c\"}"); /* 4 */
    hist_add(&h, "signal_received", NULL, NULL, "{\"signal\":\"d\"}"); /* 5 */
    /* Consumed out of the order received: 4, then 2 by a wait. */
    hist_add(&h, "signal_consumed", NULL, "taker", "{\"signal_seq\":4}");
    hist_add(&h, "wait_started", NULL, "gate", "{\"signal\":\"a\"}");
    hist_add(&h, "wait_ended", NULL, "gate", "{\"signal_seq\":2}");

    for (int cm = 0; cm < 2; cm++) {
        evs_replay *r = replay(&h, cm), *r2 = reloaded(r, cm);
        char *s;
        size_t n;
        const char *tail = cm ? "\"consumed_ids\":[\"e4\",\"e2\"],"
                                "\"compact\":true}"
                              : "\"consumed_ids\":[],\"compact\":false}";

        for (int k = 0; k < 2; k++) {
            const evs_replay *x = k ? r2 : r;

            cr_log_info("%s mode%s", mode_name[cm], k ? ", reloaded" : "");
            for (size_t i = 0; i < 4; i++) {
                uint64_t seq = 99;
                int consumed = i == 0 || i == 2;
                cr_assert(evs_replay_signal_received(x, sp(ids[i]), &seq), "%s",
                          ids[i]);
                /* Compact mode no longer knows a consumed one's seq. */
                cr_assert_eq(seq, cm && consumed ? 0 : i + 2, "%s: %llu",
                             ids[i], (unsigned long long)seq);
            }
            cr_assert(evs_replay_signal_received(x, sp("e3"), NULL));
            /* Events that are not signals, and no id at all. */
            cr_assert_not(evs_replay_signal_received(x, sp("e1"), NULL));
            cr_assert_not(evs_replay_signal_received(x, sp("e6"), NULL));
            cr_assert_not(evs_replay_signal_received(x, sp(""), NULL));
            cr_assert_eq(evs_replay_signal_count(x), cm ? 2 : 4);
            cr_assert_eq(evs_replay_wait_count(x), cm ? 0 : 1);
        }
        s = hist_state(r, &n);
        cr_assert(n > strlen(tail) && strcmp(s + n - strlen(tail), tail) == 0,
                  "%s", s);
        free(s);
        evs_replay_free(r);
        evs_replay_free(r2);
    }

    /* A full state loaded into a compact replayer: its consumed signals
     * leave their ids, in the order they were consumed. */
    {
        evs_replay *f = replay(&h, 0), *c = reloaded(f, 1),
                   *ref = replay(&h, 1);
        char *a = hist_state(c, NULL), *b = hist_state(ref, NULL);

        cr_assert_str_eq(a, b);
        cr_assert(evs_replay_signal_received(c, sp("e4"), NULL));
        free(a);
        free(b);
        evs_replay_free(f);
        evs_replay_free(c);
        evs_replay_free(ref);
    }
    hist_free(&h);
}

/* ------------------------------------------------------------------ */
/* Size                                                               */
/* ------------------------------------------------------------------ */

/* A run that forks `n` workers, each of which runs steps, sleeps on a
 * timer, waits (timing out) and ends. */
static void workers(hist *h, int n)
{
    hist_init(h, 1);
    hist_add(h, "execution_started", NULL, NULL, "{\"workflow_name\":\"fan\"}");
    run(h, NULL, "plan", "action", "{\"n\":1}");
    for (int i = 0; i < n; i++) {
        char id[16];

        snprintf(id, sizeof(id), "w%d", i);
        branch(h, NULL, id);
        run(h, id, "work", "action",
            "{\"result\":\"some output of a worker\"}");
        hist_add(h, "step_started", id, "each",
                 "{\"iteration\":0,\"count\":1}");
        hist_add(h, "step_completed", id, "each",
                 "{\"iteration\":0,\"output\":[1,2,3]}");
        hist_add(h, "timer_started", id, "nap",
                 "{\"timer_id\":\"nap-%s\",\"fire_at\":"
                 "\"2026-11-22T10:20:00.000000Z\"}",
                 id);
        hist_add(h, "timer_fired", id, "nap", "{\"timer_id\":\"nap-%s\"}", id);
        hist_add(h, "wait_started", id, "gate", "{\"signal\":\"go\"}");
        hist_add(h, "wait_ended", id, "gate", "{\"timed_out\":true}");
        hist_add(h, "path_completed", id, NULL, NULL);
    }
}

/* The JSON object that starts at s[0] ('{'): its length. */
static size_t object_len(const char *s)
{
    size_t i = 0;
    int depth = 0, in_str = 0;

    cr_assert_eq(s[0], '{');
    for (;; i++) {
        char c = s[i];
        cr_assert_neq(c, '\0');
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
}

/* The largest path record of the workers in state JSON s. */
static size_t worker_record_max(const char *s, int n)
{
    size_t max = 0;

    for (int i = 0; i < n; i++) {
        char key[32];
        const char *p;
        size_t len;

        snprintf(key, sizeof(key), "{\"id\":\"w%d\",", i);
        p = strstr(s, key);
        cr_assert_not_null(p, "no record of w%d", i);
        len = object_len(p);
        if (len > max)
            max = len;
    }
    return max;
}

/* A compact state holds one record per path, and nothing else of an
 * ended worker: from 10 to 200 workers it grows by at most 190 path
 * records (and their commas), where the full state grows by far more. */
Test(compact, the_compact_state_stays_small_however_many_paths_ended)
{
    enum { FEW = 10, MANY = 200 };
    size_t len[2][2], rec = 0;
    char *s;
    hist h;

    for (int k = 0; k < 2; k++) {
        int n = k ? MANY : FEW;

        workers(&h, n);
        for (int cm = 0; cm < 2; cm++) {
            evs_replay *r = replay(&h, cm);

            s = hist_state(r, &len[k][cm]);
            if (cm && k) {
                rec = worker_record_max(s, n);
                cr_assert_eq(evs_replay_step_count(r), 1, "main's plan");
                cr_assert_eq(evs_replay_each_count(r), 0);
                cr_assert_eq(evs_replay_timer_count(r), 0);
                cr_assert_eq(evs_replay_wait_count(r), 0);
                cr_assert_eq(evs_replay_stepname_count(r), 3,
                             "plan, work, each");
            }
            free(s);
            evs_replay_free(r);
        }
        hist_free(&h);
    }
    cr_log_info("state bytes: full %zu -> %zu, compact %zu -> %zu; a worker "
                "path's record is at most %zu bytes",
                len[0][0], len[1][0], len[0][1], len[1][1], rec);
    cr_assert_gt(len[1][1], len[0][1]);
    cr_assert_leq(len[1][1] - len[0][1], (MANY - FEW) * (rec + 1),
                  "the compact state grew by %zu bytes for %d more ended "
                  "paths of at most %zu bytes each",
                  len[1][1] - len[0][1], MANY - FEW, rec);
    /* The bound tells the modes apart: the full state keeps the rest. */
    cr_assert_gt(len[1][0] - len[0][0], 2 * (MANY - FEW) * (rec + 1));
}

/* ------------------------------------------------------------------ */
/* Memory                                                             */
/* ------------------------------------------------------------------ */

/* A long run of short branches, each with 16 KiB of input and errors
 * and a small output: what its steps copy is dropped again when its
 * path ends, except the output, which the path keeps for a join. */
static void big_workers(hist *h, int n, size_t *bytes)
{
    char *big = malloc(8192);

    cr_assert_not_null(big);
    memset(big, 'x', 8191);
    big[8191] = '\0';
    *bytes = 0;
    hist_init(h, 1);
    hist_add(h, "execution_started", NULL, NULL, "{\"workflow_name\":\"big\"}");
    for (int i = 0; i < n; i++) {
        char id[16];

        snprintf(id, sizeof(id), "w%d", i);
        branch(h, NULL, id);
        hist_add(h, "step_started", id, "work", "{\"input\":\"%s\"}", big);
        hist_add(h, "step_failed", id, "work", "{\"error\":\"%s\"}", big);
        hist_add(h, "retry_scheduled", id, "work", "{\"delay_ms\":1}");
        hist_add(h, "step_started", id, "work", "{\"input\":\"%s\"}", big);
        hist_add(h, "step_completed", id, "work", "{\"output\":%d}", i);
        hist_add(h, "path_completed", id, NULL, NULL);
        *bytes += 3 * 8192;
    }
    free(big);
}

/* A compact replayer's memory follows its state, not its history: what
 * the dropped steps copied is given back when the state moves to fresh
 * memory. The full replayer, which keeps every step, holds it all. */
Test(compact, a_compact_replayers_memory_follows_its_state)
{
    enum { N = 1000 };
    size_t bytes, out_len[2];
    char *out[2];
    hist h;

    /* 24 MiB of inputs and errors */
    big_workers(&h, N, &bytes);
    for (int cm = 0; cm < 2; cm++) {
        evs_replay_opts o;
        evs_replay *r = NULL;
        evs_error_info v;
        tu_alloc c;

        tu_alloc_init(&c);
        evs_replay_opts_init(&o);
        o.alloc = &c.a;
        o.compact = cm;
        cr_assert_eq(evs_replay_new(&o, &r), 0);
        cr_assert_eq(hist_apply(r, &h, 0, h.n, &v), 0, "%s", v.msg);
        cr_assert_eq(evs_replay_state_json(r, &out[cm], &out_len[cm]), 0);
        cr_log_info("%s: %zu bytes of inputs and errors, peak heap %zu, "
                    "state %zu",
                    mode_name[cm], bytes, c.peak, out_len[cm]);
        if (cm) {
            /* The arena is moved once it holds twice the state and
             * more than 1 MiB (the default): with its chunks, the
             * vectors and the state, a few MiB at most. */
            cr_assert_lt(c.peak, (size_t)4 << 20, "peak %zu of %zu bytes",
                         c.peak, bytes);
            cr_assert_lt(out_len[cm], (size_t)N * 256,
                         "a short record per path, nothing more");
        } else {
            cr_assert_gt(c.peak, bytes, "the full state keeps them all");
        }
        /* The state's text is the caller's, from the same allocator. */
        evs_free(&c.a, out[cm]);
        evs_replay_free(r);
        cr_assert_eq(c.bytes, 0, "%zu bytes not given back", c.bytes);
        cr_assert_eq(c.live, 0);
    }
    hist_free(&h);
}

/* ------------------------------------------------------------------ */
/* Snapshots in a store                                               */
/* ------------------------------------------------------------------ */

static char *dir;
static evs_store *st;

static void store_setup(void)
{
    tu_fresh_store("compact", &dir, &st);
}

static void store_teardown(void)
{
    tu_drop_store(&dir, &st);
    hist_leak_check();
}

static evs_replay *open_in(const char *id, int cm, int *fs)
{
    evs_replay *r = hist_replayer_mode(cm);
    evs_error_info v;
    int rc;

    memset(&v, 0, sizeof(v));
    *fs = -1;
    rc = evs_replay_open(r, st, id, strlen(id), 0, fs, &v);
    cr_assert_eq(rc, 0, "evs_replay_open: %s (%s: %s)", evs_err_name(rc),
                 v.kind ? v.kind : "", v.msg);
    return r;
}

/* The compact replayer's state is the full one compacted. */
static void assert_consistent(const evs_replay *full, const evs_replay *c)
{
    evs_replay *fc = reloaded(full, 1);
    char *a = hist_state(fc, NULL), *b = hist_state(c, NULL);

    cr_assert_str_eq(a, b);
    cr_assert_eq(evs_replay_exec(full)->last_seq, evs_replay_exec(c)->last_seq);
    free(a);
    free(b);
    evs_replay_free(fc);
}

/* The orchestrator's snapshots hold compact states: a compact replayer
 * starts from one; a full replayer (the tools) replays from sequence 1
 * instead, and ends where the compact one does. */
Test(compact, a_compact_snapshot_is_used_only_by_a_compact_replayer,
     .init = store_setup, .fini = store_teardown)
{
    evs_replay *c, *f, *hand;
    evs_log *log;
    size_t half;
    int fs;
    hist h;

    workers(&h, 6);
    /* Recorded: ids and times from the recorder. */
    {
        hist rec;
        hist_init(&rec, 0);
        for (size_t i = 0; i < h.n; i++)
            hist_add(&rec, h.ev[i].event_type.ptr, h.ev[i].path_id.ptr,
                     h.ev[i].step_name.len ? h.ev[i].step_name.ptr : NULL, "%s",
                     h.ev[i].data.ptr);
        hist_free(&h);
        h = rec;
    }
    half = h.n / 2;
    cr_assert_eq(hist_record(&h, st, "fan", 0, half), 0);
    c = open_in("fan", 1, &fs);
    cr_assert_eq(fs, 0, "no state in the creation snapshot");
    cr_assert_eq(evs_replay_snapshot(c, st, (evs_span){NULL, 0}), 0);
    evs_replay_free(c);
    cr_assert_eq(hist_record(&h, st, "fan", half, h.n), 0);

    c = open_in("fan", 1, &fs);
    cr_assert_eq(fs, 1, "a compact replayer uses the compact snapshot");
    cr_assert_eq(evs_replay_exec(c)->last_seq, h.n);
    f = open_in("fan", 0, &fs);
    cr_assert_eq(fs, 0, "a full replayer cannot use a compact snapshot");
    cr_assert_eq(evs_replay_exec(f)->last_seq, h.n);
    cr_assert_gt(evs_replay_step_count(f), evs_replay_step_count(c));
    assert_consistent(f, c);

    /* The compact snapshot plus its tail is a compact replay from 1. */
    hand = hist_replayer_mode(1);
    cr_assert_eq(evs_log_open(st, "fan", 3, 0, &log, NULL, NULL), 0);
    cr_assert_eq(evs_replay_run(hand, log, 0, NULL), 0);
    evs_log_close(log);
    {
        char *a = hist_state(hand, NULL), *b = hist_state(c, NULL);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    evs_replay_free(hand);
    evs_replay_free(c);

    /* A full snapshot serves both: compacted as a compact one loads it. */
    cr_assert_eq(evs_replay_snapshot(f, st, (evs_span){NULL, 0}), 0);
    c = open_in("fan", 1, &fs);
    cr_assert_eq(fs, 1);
    assert_consistent(f, c);
    evs_replay_free(c);
    evs_replay_free(f);
    f = open_in("fan", 0, &fs);
    cr_assert_eq(fs, 1);
    evs_replay_free(f);
    hist_free(&h);
}
