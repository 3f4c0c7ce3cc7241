/*
 * test_run_kill.c: durable functions (include/evstore/run.h) under
 * SIGKILL. examples/agent_loop (path in $AGENT_LOOP) runs a tool-using
 * agent as a run; each run is started, killed at random moments, started
 * again, and at last let finish once its approval event is sent. Its
 * tool log (--tool-log) holds "START <key> <attempt>" written by each
 * step body before its work, and "DONE <key>" written once a step it ran
 * had completed durably. For every run the test checks:
 *
 *   - no step body began once its completion was durable: no START of a
 *     key after its DONE;
 *   - each START's key is "<run id>/main/<step>" for a step the history
 *     holds; a step ran again only right where a killed process left it,
 *     with the same key, and with an attempt that never went back; the
 *     last attempt begun is the one the history completed;
 *   - the run completed with the approval's payload, its history replays
 *     strictly from sequence 1, and the replay from its snapshot (the
 *     run layer writes full ones) gives the same state.
 *
 * EVS_RUN_KILLS sets the number of runs (default 100; the crash suite
 * runs 50, the slow suite's run_kill_slow 1,000: tests/meson.build), and
 * EVS_RUN_KILL_SEED repeats a schedule. tests/RELIABILITY.md section 2
 * has the figures.
 */
#include <criterion/criterion.h>

#include "testutil.h"
#include "evstore/orchestrator.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Kills land within this long of a start: a run takes some 300 ms to
 * reach its wait, a re-run less. */
#define KILL_WINDOW_MS 350
#define MAX_KILLS 3

static char *dir;   /* scratch: tool logs, the program's output */
static char *store; /* dir/store */
static char *out;   /* the last process's stdout, dir/agent.out */
static char *err;   /* and its stderr, dir/agent.err */
static evs_store *st;

static const char approval[] = "{\"by\":\"alice\"}";

static void setup(void)
{
    cr_assert_not_null(getenv("AGENT_LOOP"), "AGENT_LOOP must name it");
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1", 0);
    dir = tu_tmpdir("run-kill");
    cr_assert_not_null(dir);
    store = tu_join(dir, "store");
    out = tu_join(dir, "agent.out");
    err = tu_join(dir, "agent.err");
    st = tu_open_store(store, NULL);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    evs_store_close(st);
    free(store);
    free(out);
    free(err);
    tu_rmtree_free(dir);
}

TestSuite(run_kill, .init = setup, .fini = teardown, .timeout = 600);

/* splitmix64: the schedule of kills follows from the seed alone. */
static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* What the kills did, over all runs. */
typedef struct tally {
    unsigned kills;    /* processes killed */
    unsigned reruns;   /* step bodies begun again, same attempt, after a
                          kill */
    unsigned retries;  /* later attempts (fetch's scripted failure) */
    unsigned undone;   /* completions a kill kept from being noted */
    unsigned early;    /* approvals sent while no process ran */
    unsigned finished; /* processes that completed before their kill */
    unsigned redispatches; /* step_redispatched in the histories */
} tally;

static pid_t start(const char *id, const char *log)
{
    const char *const args[] = {store, id, "--tool-log", log, NULL};

    return tu_spawn_tool("AGENT_LOOP", dir, "agent", args);
}

static void approve(const char *id)
{
    int rc = evs_orch_post(st, evs_span_cstr(id), evs_span_cstr("event"),
                           evs_span_cstr("approval"), evs_span_cstr(approval));

    cr_assert_eq(rc, 0, "%s: posting the approval: %s", id, evs_err_name(rc));
}

static int exists(const char *id)
{
    return evs_exec_exists(st, id, strlen(id)) == 1;
}

/* Asserts that the last process exited `want`, else shows its stderr. */
static void expect_exit(const char *id, int ex, int want)
{
    char *text;

    if (ex == want)
        return;
    text = tu_read_or_empty(err);
    cr_assert_eq(ex, want, "%s: agent_loop exited %d: %s", id, ex, text);
    free(text);
}

/* Drives run `id` to its end: killed 1 to MAX_KILLS times at random,
 * its approval sent at a random point (before a start, or while the last
 * process runs), then let finish. */
static void drive(const char *id, const char *log, tally *t)
{
    uint32_t kills = 1 + rnd(MAX_KILLS), approve_at = rnd(kills + 1);
    int approved = 0, ex;
    char *text;
    pid_t pid;

    for (uint32_t k = 0; k < kills; k++) {
        if (k == approve_at && exists(id)) {
            approve(id);
            approved = 1;
            t->early++;
        }
        pid = start(id, log);
        sleep_ms(rnd(KILL_WINDOW_MS));
        kill(pid, SIGKILL);
        ex = tu_wait_exit(pid);
        if (ex == 0) { /* approved early, it completed first */
            t->finished++;
            return;
        }
        expect_exit(id, ex, 128 + SIGKILL);
        t->kills++;
    }
    pid = start(id, log);
    if (!approved) {
        /* While it runs: once the run exists, the inbox does. */
        for (int i = 0; !exists(id); i++) {
            cr_assert_lt(i, 10000, "%s was never created", id);
            sleep_ms(1);
        }
        approve(id);
    }
    expect_exit(id, tu_wait_exit(pid), 0);
    text = tu_read_or_empty(out);
    cr_assert(strstr(text, " completed: "), "%s printed: %s", id, text);
    free(text);
}

/* The steps the history of `id` holds that run a body (kind "step"), in
 * the order they first started: names and attempts. */
typedef struct steps {
    char name[32][80];
    uint32_t attempts[32];
    uint32_t dispatches[32]; /* step_started + step_redispatched */
    uint32_t redispatched[32];
    int n;
} steps;

static int step_index(const steps *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return i;
    return -1;
}

/* Replays `id` strictly from sequence 1 (into *full, kept), and from its
 * snapshot: the run completed with the approval, both give the same
 * state. Fills *s. */
static void check_history(const char *id, evs_replay **full, steps *s)
{
    evs_replay *a, *b;
    evs_error_info e;
    evs_log *l = NULL;
    const evs_exec_state *x;
    char *ja = NULL, *jb = NULL;
    size_t la = 0, lb = 0;
    int rc, from_snapshot = 0;

    cr_assert_eq(evs_replay_new(NULL, &a), 0);
    rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, &e);
    cr_assert_eq(rc, 0, "%s: %s", id, evs_err_name(rc));
    rc = evs_replay_run(a, l, 0, &e);
    evs_log_close(l);
    cr_assert_eq(rc, 0, "%s does not replay: %s at sequence %llu (%s)", id,
                 evs_err_name(rc), (unsigned long long)e.sequence, e.msg);
    x = evs_replay_exec(a);
    cr_assert_eq(x->status, EVS_STATUS_COMPLETED, "%s is %s", id,
                 evs_exec_status_name(x->status));
    cr_assert(
        memmem(x->outputs.ptr, x->outputs.len, approval, strlen(approval)),
        "%s outputs %.*s", id, (int)x->outputs.len, x->outputs.ptr);

    cr_assert_eq(evs_replay_new(NULL, &b), 0);
    rc = evs_replay_open(b, st, id, strlen(id), 0, &from_snapshot, &e);
    cr_assert_eq(rc, 0, "%s: %s", id, evs_err_name(rc));
    cr_assert(from_snapshot, "%s: its snapshot was not used", id);
    cr_assert_eq(evs_replay_state_json(a, &ja, &la), 0);
    cr_assert_eq(evs_replay_state_json(b, &jb, &lb), 0);
    cr_assert(la == lb && memcmp(ja, jb, la) == 0,
              "%s: the replay from its snapshot differs from the replay "
              "from sequence 1:\n%.*s\n%.*s",
              id, (int)lb, jb, (int)la, ja);
    evs_free(NULL, ja);
    evs_free(NULL, jb);
    evs_replay_free(b);

    s->n = 0;
    for (size_t i = 0; i < evs_replay_step_count(a); i++) {
        const evs_step_state *sp = evs_replay_step(a, i);

        if (sp->kind.len != 4 || memcmp(sp->kind.ptr, "step", 4) != 0)
            continue; /* a sleep or a wait: no body */
        cr_assert_lt(s->n, 32, "%s: too many steps", id);
        cr_assert_lt(sp->name.len, sizeof(s->name[0]));
        memcpy(s->name[s->n], sp->name.ptr, sp->name.len);
        s->name[s->n][sp->name.len] = '\0';
        s->attempts[s->n] = sp->attempts;
        s->dispatches[s->n] = sp->dispatches;
        /* The re-dispatches: dispatches past one per attempt. */
        s->redispatched[s->n] = sp->dispatches - sp->attempts;
        s->n++;
    }
    *full = a;
}

/* The tool log of `id` against its history's steps. */
static void check_tool_log(const char *id, const char *log, const steps *s,
                           tally *t)
{
    char *text = tu_read_or_empty(log), *save = NULL, prefix[96];
    int starts[32] = {0}, done[32] = {0}, last = -1;
    uint32_t last_attempt[32] = {0};
    size_t plen;

    snprintf(prefix, sizeof(prefix), "%s/main/", id);
    plen = strlen(prefix);
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char word[8], key[128];
        unsigned attempt = 0;
        int i, n = sscanf(line, "%7s %127s %u", word, key, &attempt);

        cr_assert(n >= 2, "%s: bad tool log line: %s", id, line);
        cr_assert_eq(strncmp(key, prefix, plen), 0,
                     "%s: a key not of the form <run id>/main/<step>: %s", id,
                     line);
        i = step_index(s, key + plen);
        cr_assert_geq(i, 0, "%s: %s: the history holds no such step", id, line);
        if (strcmp(word, "DONE") == 0) {
            cr_assert_eq(i, last, "%s: %s: not the step begun last", id, line);
            cr_assert_eq(done[i]++, 0, "%s: %s twice", id, line);
            continue;
        }
        cr_assert(strcmp(word, "START") == 0 && n == 3, "%s: bad line: %s", id,
                  line);
        cr_assert_eq(done[i], 0,
                     "%s: %s: the step began again after its completion "
                     "was durable (DONE)",
                     id, line);
        cr_assert_geq(i, last,
                      "%s: %s: began after a later step (%s) had begun", id,
                      line, last >= 0 ? s->name[last] : "-");
        if (i != last) {
            cr_assert_eq(attempt, 1, "%s: %s: a step's first start", id, line);
        } else {
            /* Again, right after: re-run after a kill, or retried. */
            cr_assert_geq(attempt, last_attempt[i], "%s: %s: went back", id,
                          line);
            if (attempt == last_attempt[i])
                t->reruns++;
            else
                t->retries++;
        }
        last_attempt[i] = attempt;
        starts[i]++;
        last = i;
    }
    for (int i = 0; i < s->n; i++) {
        cr_assert_geq(starts[i], 1, "%s: step %s never began", id, s->name[i]);
        t->undone += done[i] == 0;
        cr_assert_eq(last_attempt[i], s->attempts[i],
                     "%s: step %s: attempt %u began last, the history "
                     "completed attempt %u",
                     id, s->name[i], last_attempt[i], s->attempts[i]);
        /* Every body that began was recorded first (step_started, or
         * step_redispatched after a takeover), so "did it run twice?"
         * is answered by the history: a kill between the record and
         * the body makes one more record than bodies, never fewer. */
        cr_assert_geq(s->dispatches[i], (uint32_t)starts[i],
                      "%s: step %s: its body began %d times, the history "
                      "records %u dispatches",
                      id, s->name[i], starts[i], s->dispatches[i]);
        t->redispatches += s->redispatched[i];
    }
    free(text);
}

Test(run_kill, killed_runs_never_rerun_a_durable_step_and_complete)
{
    long runs = tu_env_long("EVS_RUN_KILLS", 100);
    tally t = {0};

    rng = tu_seed("EVS_RUN_KILL_SEED", "run_kill");
    cr_assert_gt(runs, 0);
    for (long n = 0; n < runs; n++) {
        char id[32], name[48], *log;
        evs_replay *full;
        steps s;

        snprintf(id, sizeof(id), "run%ld", n);
        snprintf(name, sizeof(name), "%s.log", id);
        log = tu_join(dir, name);
        drive(id, log, &t);
        check_history(id, &full, &s);
        check_tool_log(id, log, &s, &t);
        evs_replay_free(full);
        free(log);
    }
    fprintf(stderr,
            "run_kill: %ld runs, %u kills, %u step bodies run again after a "
            "kill, %u retries, %u completions a kill kept from the tool "
            "log, %u approvals sent between processes, %u processes done "
            "before their kill, %u re-dispatches recorded\n",
            runs, t.kills, t.reruns, t.retries, t.undone, t.early, t.finished,
            t.redispatches);
}
