/*
 * harness.h: what the orchestrator suites (test_orch.c, test_strategies.c,
 * test_continue.c) share: a store in a fresh directory for each test, an
 * orchestrator on its own loop with C actions that record their calls,
 * the outcomes it reports, scripts that drive the loop from a timer, and
 * readers and assertions over what an execution recorded.
 *
 * Everything a test allocates through these helpers (definitions,
 * replayers, event lists) is freed at teardown even when an assertion
 * cuts the test short, so the sanitizer reports only real leaks.
 */
#ifndef EVS_TEST_ORCH_HARNESS_H
#define EVS_TEST_ORCH_HARNESS_H

#include <criterion/criterion.h>

#include "evstore.h"
#include "evstore/orchestrator.h"
#include "testutil.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- */
/* Fixture                                                          */
/* ---------------------------------------------------------------- */

/* The test's store (in `dir`) and its orchestrator (NULL between runs). */
extern char *dir;
extern evs_store *st;
extern evs_orch *orch;

/* Registers a suite's own actions on an orchestrator. */
typedef void (*harness_actions_fn)(evs_orch *o);

/* Opens a store with `durability` in a fresh directory named after
 * `tag`, and resets every recorder; every orchestrator made later gets
 * t_echo and t_hold, then the actions `actions` (may be NULL) registers.
 * A suite's .init calls it. */
void harness_setup(const char *tag, harness_actions_fn actions,
                   evs_durability durability);

/* Reopens `st` with these history limits (store.h, "History limits":
 * 0 the default, EVS_LIMIT_NONE none), between runs. */
void harness_store_limits(uint64_t warn_events, uint64_t warn_bytes,
                          uint64_t max_events, uint64_t max_bytes);

/* The options `st` was opened with (the suite's durability, the log
 * hook below), for a caller to change some and reopen it with
 * harness_store_reopen, between runs. */
void harness_store_opts(evs_store_opts *so);
void harness_store_reopen(const evs_store_opts *so);

/* Frees what the test left: replayers, event lists, definitions, the
 * orchestrator, the store and its directory. A suite's .fini. */
void harness_teardown(void);

/* ---------------------------------------------------------------- */
/* Spans and definitions                                            */
/* ---------------------------------------------------------------- */

evs_span S(const char *s);
int spans_equal(evs_span a, evs_span b);
int span_is(evs_span s, const char *lit);
int span_contains(evs_span s, const char *needle);

/* Copies s into dst as a C string, cut to cap - 1 bytes. */
void cpy(char *dst, size_t cap, evs_span s);

#define expect_span(sp, want)                                                  \
    do {                                                                       \
        evs_span s_ = (sp);                                                    \
        cr_assert(span_is(s_, (want)), "%s: got '%.*s', expected '%s'", #sp,   \
                  (int)s_.len, s_.ptr ? s_.ptr : "", (want));                  \
    } while (0)

/* A copy of s with every ' turned into ", freed at teardown: definitions
 * are written with ' for ". */
const char *J(const char *s);

/* Takes heap memory p (asserted not NULL) to free at teardown. */
char *pooled(char *p);

/* ---------------------------------------------------------------- */
/* Outcomes and the log hook                                        */
/* ---------------------------------------------------------------- */

typedef struct outcome_rec {
    char id[EVS_ID_MAX + 1];
    evs_outcome oc;
    int err;
    int reports;
} outcome_rec;

/* The last outcome reported for each execution, in the order of their
 * first reports; nouts = 0 forgets them. */
extern outcome_rec outs[128];
extern size_t nouts;

/* Called (may be NULL) after each outcome is recorded. */
extern void (*outcome_hook)(const char *id, evs_outcome oc);

/* The last error the store's log hook saw: the orchestrator says there
 * why it refused or gave up an execution. */
extern char last_log[1024];
/* And the last warning it saw (a history_warning says so there). */
extern char last_warn[1024];

/* The record of `id`, or NULL if none was reported. */
const outcome_rec *outcome_of(const char *id);

/* `id` was reported once, with outcome oc and (but for
 * EVS_OUTCOME_ERROR) no error. */
void expect_outcome(const char *id, evs_outcome oc);

/* How many executions ended with outcome oc, each checked to have been
 * reported once and (but for EVS_OUTCOME_ERROR) with no error. */
size_t outcome_count(evs_outcome oc);

/* ---------------------------------------------------------------- */
/* Actions that record their calls                                  */
/* ---------------------------------------------------------------- */

typedef struct call_rec {
    char exec[EVS_ID_MAX + 1];
    char action[32];
    char path[64];
    char step[64];
    char key[256];
    char input[512];
    uint32_t attempt;
    int64_t iteration;
    int64_t timeout_ms;
    pthread_t thread;
} call_rec;

#define MAX_CALLS 1024
#define ANY_ITER (-2)

/* Every action call, in the order they were made (any thread). */
extern call_rec calls[MAX_CALLS];
extern size_t ncalls;

void record_call(evs_action_req *req);

/* Calls of `step` in execution `exec` (NULL: any) in iteration `iter`
 * (or ANY_ITER). */
size_t count(const char *exec, const char *step, int64_t iter);

/* Calls of `step`, in any execution and iteration. */
size_t count_calls(const char *step);

/* Calls with idempotency key `key`. */
size_t count_key(const char *key);

/* The nth (0-based) call of `step` in `exec` and `iter`, or NULL. */
const call_rec *call_of(const char *exec, const char *step, int64_t iter,
                        size_t nth);

/* Call nth of step in exec (and iter) was made, with input `want`. */
void expect_input(const char *exec, const char *step, int64_t iter, size_t nth,
                  const char *want);

/* Every call of `step` in exec ran on `path` (a reset step goes on
 * where it was, not in a new path). */
void expect_path(const char *exec, const char *step, const char *path);

/* t_hold holds its requests while hold_mode is set (1 at setup), for the
 * test to complete; else its output is its input. */
extern int hold_mode;

void hold(evs_action_req *req);
size_t held_count(void);

/* Completes every held request with `out`: 0 is asserted, as a late
 * answer is ignored, not refused. */
void complete_held(const char *out);

/* Output = input. */
void t_echo(void *arg, evs_action_req *req);

/* Held (see hold_mode). */
void t_hold(void *arg, evs_action_req *req);

/* ---------------------------------------------------------------- */
/* The orchestrator                                                 */
/* ---------------------------------------------------------------- */

/* The options every suite starts from: outcomes recorded, inboxes polled
 * every 50 ms. */
void orch_opts_init(evs_orch_opts *o, int stop_when_idle);

/* An orchestrator on store s, with the actions (see harness_setup). */
evs_orch *orch_new_on(evs_store *s, const evs_orch_opts *o);

/* Makes `orch` on `st`: with options o, or as orch_opts_init says. */
void mk_orch_with(const evs_orch_opts *o);
void mk_orch(int stop_when_idle);

void start(const char *def, const char *inputs, const char *id);

/* Runs `orch` until it returns, then frees it. */
void run_orch(void);

/* Starts an execution and runs it until it ends (or suspends), expecting
 * outcome oc. */
void run_new(const char *def, const char *inputs, const char *id,
             evs_outcome oc);

/* Resumes an execution (a successor, say) and runs it, expecting oc. */
void run_resume(const char *id, evs_outcome oc);

/* A script: called on the loop every 5 ms with its step; returns the
 * next step, or -1 when done. Gives up (and stops the orchestrator)
 * after 20 s, so a hang fails the test instead of blocking it. */
typedef int (*script_fn)(int step);

extern int script_ticks, script_gave_up;

/* The execution a script works on. */
extern const char *sid;

void script_start(script_fn fn);

/* Starts `def` (no inputs) as `id` (now sid) and runs it with script fn
 * until the orchestrator returns; the script must not have given up. */
void run_scripted(int stop_when_idle, const char *def, const char *id,
                  script_fn fn);

/* Set (NULL at setup), script_stop_inflight also waits for this
 * execution's outcome. */
extern const char *wait_for;

/* Stops the orchestrator once an action is held (and `wait_for` has an
 * outcome), then answers the held action after its execution was
 * released: a runner that goes away with a step in flight, whose late
 * answer must be ignored. */
int script_stop_inflight(int step);

/* ---------------------------------------------------------------- */
/* Reading the history                                              */
/* ---------------------------------------------------------------- */

/* A new replayer, freed at teardown unless rp_free frees it first: in
 * the full mode, or in the compact mode the orchestrator replays in. */
evs_replay *rp_new(void);
evs_replay *rp_new_compact(void);
void rp_free(evs_replay *r);

/* Execution `id` of store s (or st) replayed strictly from sequence 1,
 * not from its snapshot; every rule checked. compact_replay_of replays
 * in compact mode, which is what the orchestrator's snapshots hold. */
evs_replay *replay_in(evs_store *s, const char *id);
evs_replay *replay_of(const char *id);
evs_replay *compact_replay_of(const char *id);

/* A compact replayer loaded from the state in snapshot sn (the
 * orchestrator writes compact states). */
evs_replay *snapshot_replay(const evs_snapshot *sn);

/* Two replayers hold the same state, byte for byte as state JSON. */
void expect_same_state(const evs_replay *a, const evs_replay *b,
                       const char *what);

const evs_step_state *step_of(const evs_replay *r, const char *path,
                              const char *name, int64_t iter);

typedef struct evlist {
    evs_event_owned *v;
    size_t n;
} evlist;

/* Every event of `id`, read with a cursor. */
evlist events_of(const char *id);
void evlist_free(evlist *l);

/* The nth (0-based) event of this type (and step and path, if not NULL),
 * or NULL. */
const evs_event *evf(const evlist *l, const char *type, const char *step,
                     const char *path, size_t nth);
size_t evcount(const evlist *l, const char *type, const char *step,
               const char *path);

/* The events (each asserted found) were recorded in the order given:
 * expect_in_order(started, paused, fired). */
#define expect_in_order(...)                                                   \
    expect_order((const evs_event *const[]){__VA_ARGS__},                      \
                 sizeof((const evs_event *const[]){__VA_ARGS__}) /             \
                     sizeof(const evs_event *))
void expect_order(const evs_event *const *e, size_t n);

/* Members of a JSON object (asserted present) and their values. */
evs_span jget(evs_span obj, const char *key);
int64_t jint(evs_span v);

/* Members of an event's data (e asserted not NULL): as they are, as an
 * integer, as a time in microseconds. */
evs_span dget(const evs_event *e, const char *key);
int64_t dint(const evs_event *e, const char *key);
int64_t dtime(const evs_event *e, const char *key);

/* The number of executions in the store. */
size_t exec_count(void);

/* The number of requests in the inbox of `id`; the oldest one's id is
 * copied to first_id (may be NULL; EVS_REQUEST_ID_LEN + 1 bytes). */
size_t inbox_count(const char *id, char *first_id);

/* The last sequence of `id` (asserted > 0). */
uint64_t last_seq_of(const char *id);

#endif
