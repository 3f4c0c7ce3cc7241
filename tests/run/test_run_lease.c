/*
 * test_run_lease.c: a durable function's run keeps its lease on a store
 * of leases (PostgreSQL; eventstore/BACKENDS.md, "Leases and fencing";
 * run/run_lease.c), and loses it cleanly to another runner.
 *
 * The store's lease is short (LEASE_MS). A run whose host waits three
 * times as long between two steps, or sleeps as long in a blocked call,
 * keeps its lease throughout (a second store handle's claims are refused
 * the whole time) and completes. A run whose process is stopped
 * (SIGSTOP, as a paused VM or a debugger would) until its lease ran out
 * and another runner took it over gets EVS_ELEASE, of kind "lease", at
 * its next call, or in the wait it was blocked in, and writes nothing.
 * On a store of locks (files, SQLite) no renewal thread is started. The
 * suite runs on every backend (tests/meson.build: sqlite_suites); the
 * takeovers, which need a lease to run out, only on PostgreSQL.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The store's lease: long enough that a renewal every third of it is
 * never late on a loaded machine, short enough to wait out thrice. */
#define LEASE_MS 600

/* How long the parent waits for the stopped child's verdict before it
 * calls the run stuck: a bound on a failure, not a measure of a pass. */
#define VERDICT_WAIT_MS 30000

static char *dir;
static pid_t child; /* runner 1, while it lives */

static void setup(void)
{
    dir = tu_tmpdir("run-lease");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    /* A test cut short leaves no stopped child behind. */
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = 0;
    }
    tu_rmtree_free(dir);
    dir = NULL;
}

TestSuite(run_lease, .init = setup, .fini = teardown, .timeout = 120);

#define PG_ONLY()                                                              \
    do {                                                                       \
        if (!tu_backend_is_pg())                                               \
            cr_skip_test("PostgreSQL only: leases");                           \
    } while (0)

/* A store handle of its own (a connection of its own on PostgreSQL),
 * with the short lease. */
static evs_store *open_store(void)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.lease_ms = LEASE_MS;
    if (evs_store_open(tu_loc(dir), &o, &s) != 0)
        return NULL;
    return s;
}

/* A step body that counts its calls. */
static int count_fn(void *arg, evs_run *r, const char *input)
{
    (void)r;
    (void)input;
    ++*(int *)arg;
    return 0;
}

/* What a second writer's claim of `id` gets now, without waiting: 0
 * (then the claim is let go at once) or EVS_ELOCKED. */
static int claim_now(evs_store *other, const char *id)
{
    evs_log *l = NULL;
    int rc = evs_log_open(other, id, strlen(id), EVS_LOG_WRITE, &l, NULL,
                          NULL);

    evs_log_close(l);
    return rc;
}

/* The status of run `id`, replayed strictly from its log by `s`. */
static evs_exec_status replayed_status(evs_store *s, const char *id)
{
    evs_replay *rp = NULL;
    evs_error_info e;
    evs_exec_status status;
    int rc;

    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    rc = evs_replay_open(rp, s, id, strlen(id), 0, NULL, &e);
    cr_assert_eq(rc, 0, "replay of %s: %s (%s)", id, evs_err_name(rc), e.msg);
    status = evs_replay_exec(rp)->status;
    evs_replay_free(rp);
    return status;
}

/* Run `id` waits thrice its lease between two steps: in its host's own
 * code (sleeping 0), while a second store handle's claims are refused
 * all the while, or in a blocked durable sleep (sleeping 1), which
 * appends nothing while it waits; then it goes on and completes. On
 * every backend: on files and SQLite the run's lock holds as long. */
static void wait_thrice_the_lease(const char *id, int sleeping)
{
    evs_store *s, *other;
    evs_error_info e;
    evs_run *r = NULL;
    int calls = 0;

    cr_assert_not_null(s = open_store());
    cr_assert_not_null(other = open_store());
    cr_assert_eq(evs_run_open(s, id, "wf", "1", NULL, NULL, &r, &e), 0, "%s",
                 e.msg);
    cr_assert_eq(evs_run_step(r, "a", NULL, NULL, count_fn, &calls, NULL, &e),
                 0, "%s", e.msg);
    if (sleeping)
        cr_assert_eq(evs_run_sleep(r, 3 * LEASE_MS, &e), 0, "%s", e.msg);
    for (int i = 0; !sleeping && i < 6; i++) {
        tu_nap_ms(LEASE_MS / 2);
        cr_assert_eq(claim_now(other, id), EVS_ELOCKED,
                     "another writer claimed the run %d ms into the wait",
                     (i + 1) * LEASE_MS / 2);
    }
    cr_assert_eq(evs_run_step(r, "b", NULL, NULL, count_fn, &calls, NULL, &e),
                 0, "the step after the wait: %s", e.msg);
    cr_assert_eq(evs_run_complete(r, "{\"ok\":true}", &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(calls, 2);
    cr_assert_eq(replayed_status(other, id), EVS_STATUS_COMPLETED);
    evs_store_close(other);
    evs_store_close(s);
}

Test(run_lease, a_run_waiting_thrice_its_lease_between_steps_keeps_it)
{
    wait_thrice_the_lease("slow-host", 0);
}

Test(run_lease, a_run_sleeping_thrice_its_lease_keeps_it)
{
    wait_thrice_the_lease("sleeper", 1);
}

/* On PostgreSQL a run has one thread of renewal while it is open, and
 * none after; on a store of locks it has none. */
Test(run_lease, a_renewal_thread_only_where_writers_hold_leases)
{
    evs_store *s;
    evs_error_info e;
    evs_run *r = NULL;
    int before, open;

    cr_assert_not_null(s = open_store());
    before = tu_thread_count();
    cr_assert_eq(evs_run_open(s, "threads", "wf", "1", NULL, NULL, &r, &e), 0,
                 "%s", e.msg);
    open = tu_thread_count();
    cr_assert_eq(evs_run_complete(r, NULL, &e), 0, "%s", e.msg);
    evs_run_close(r);
    cr_assert_eq(open, before + (tu_backend_is_pg() ? 1 : 0),
                 "%d threads before the run, %d while open (backend %s)",
                 before, open, tu_backend());
    cr_assert_eq(tu_thread_count(), before, "the run's thread outlived it");
    evs_store_close(s);
}

/* ---------------------------------------------------------------- */
/* Taken over while stopped                                         */
/* ---------------------------------------------------------------- */

static void say(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(int fd, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && write(fd, line, (size_t)n) != n)
        _exit(3);
}

/* The stopped runner, in a child process: opens run `id` on a store of
 * its own, runs step "a", says "ready", then either waits (its host's
 * own wait) for the parent's word and runs step "b", or blocks in a
 * wait for an event nobody sends; then says what its call returned:
 * "<rc> <kind> <calls of b's body> <message>". Never returns. */
static void runner1(const char *id, int blocked, int up, int down)
{
    evs_store *s = open_store();
    evs_error_info e;
    evs_run *r = NULL;
    int rc, calls = 0;
    char go;

    if (!s || evs_run_open(s, id, "wf", "1", NULL, NULL, &r, &e) != 0 ||
        evs_run_step(r, "a", NULL, NULL, count_fn, &calls, NULL, &e) != 0)
        _exit(2);
    calls = 0;
    say(up, "ready\n");
    if (!blocked) {
        while (read(down, &go, 1) < 0 && errno == EINTR)
            ;
        rc = evs_run_step(r, "b", NULL, NULL, count_fn, &calls, NULL, &e);
    } else {
        /* An interrupted wait goes on when called again (run.h); being
         * stopped and continued may interrupt a nap. */
        while ((rc = evs_run_wait_event(r, "approval", 0, &e)) == -EINTR)
            ;
    }
    say(up, "%d %s %d %s\n", rc, e.kind[0] ? e.kind : "-", calls, e.msg);
    evs_run_close(r);
    evs_store_close(s);
    _exit(0);
}

/* Reads one line from fd into buf, waiting at most VERDICT_WAIT_MS.
 * Returns 1 with a line, 0 without. */
static int hear(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t k;
        if (poll(&p, 1, VERDICT_WAIT_MS) <= 0)
            return 0;
        if ((k = read(fd, buf + n, 1)) <= 0)
            return 0;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return n > 0;
}

/* Whether `id`'s log holds a step_started of step `step`. */
static int log_has_step(evs_store *s, const char *id, const char *step)
{
    char want[96];
    size_t len;
    char *lines = tu_log_lines(s, id, &len);
    int has;

    snprintf(want, sizeof(want), "\"step_name\":\"%s\"", step);
    has = strstr(lines, want) != NULL;
    free(lines);
    return has;
}

static void taken_over_while_stopped(const char *id, int blocked)
{
    int up[2], down[2], status, rc, calls;
    char line[600], kind[32], msg[512];
    evs_store *s;
    evs_error_info e;
    evs_log *l = NULL;
    evs_run *r2 = NULL;
    long events;
    pid_t pid;

    PG_ONLY();
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    /* Before this process has a connection or a thread of its own. */
    pid = child = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        runner1(id, blocked, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    cr_assert(hear(up[0], line, sizeof(line)) && strcmp(line, "ready\n") == 0,
              "runner 1 did not start");
    cr_assert_not_null(s = open_store());
    /* A blocked runner is stopped in its wait: what it recorded before
     * blocking is durable by then (run.h). */
    for (int i = 0; blocked && !log_has_step(s, id, "approval"); i++) {
        cr_assert_lt(i, VERDICT_WAIT_MS / 10, "runner 1 never waited");
        tu_nap_ms(10);
    }
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(status));
    /* Runner 2 claims the run once runner 1's lease has run out (the
     * claim waits for it), then runs it on: its first event says it took
     * the run over. */
    cr_assert_eq(evs_log_open(s, id, strlen(id), EVS_LOG_WRITE | EVS_LOG_WAIT,
                              &l, NULL, NULL),
                 0);
    evs_log_close(l);
    cr_assert_eq(evs_run_open(s, id, NULL, "2", NULL, NULL, &r2, &e), 0, "%s",
                 e.msg);
    calls = 0;
    cr_assert_eq(evs_run_step(r2, "a", NULL, NULL, count_fn, &calls, NULL, &e),
                 0, "%s", e.msg);
    cr_assert_eq(calls, 0, "step a ran again: it was replayed");
    if (!blocked) {
        cr_assert_eq(evs_run_step(r2, "b", NULL, NULL, count_fn, &calls, NULL,
                                  &e),
                     0, "%s", e.msg);
    } else {
        cr_assert_eq(evs_run_send(s, id, "approval", "{\"by\":\"r2\"}", &e),
                     0, "%s", e.msg);
        cr_assert_eq(evs_run_wait_event(r2, "approval", 0, &e), 0, "%s",
                     e.msg);
    }
    events = tu_count_events(s, id);
    cr_assert_gt(events, 0);
    /* Runner 1 goes on. */
    cr_assert_eq(kill(pid, SIGCONT), 0);
    if (!blocked)
        cr_assert_eq(write(down[1], "g", 1), 1);
    cr_assert(hear(up[0], line, sizeof(line)),
              "runner 1 said nothing %d ms after it went on: its %s",
              VERDICT_WAIT_MS,
              blocked ? "wait went on though its lease was lost"
                      : "step hangs");
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    child = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "runner 1 ended with status %d", status);
    msg[0] = '\0';
    cr_assert_geq(sscanf(line, "%d %31s %d %511[^\n]", &rc, kind, &calls, msg),
                  3, "runner 1 said: %s", line);
    cr_assert_eq(rc, EVS_ELEASE, "runner 1's call returned %s: %s",
                 evs_err_name(rc), msg);
    cr_assert_str_eq(kind, "lease", "%s", msg);
    cr_assert(strstr(msg, "lease was lost"), "%s", msg);
    cr_assert_eq(calls, 0, "runner 1 ran step b's body after losing the run");
    /* Nothing of runner 1's after runner 2's claim: the log is as runner
     * 2 left it. */
    cr_assert_eq(tu_count_events(s, id), events,
                 "runner 1 wrote after runner 2 took the run over");
    /* Runner 2 ends the run. */
    cr_assert_eq(evs_run_complete(r2, NULL, &e), 0, "%s", e.msg);
    evs_run_close(r2);
    cr_assert_eq(replayed_status(s, id), EVS_STATUS_COMPLETED);
    close(up[0]);
    close(down[1]);
    evs_store_close(s);
}

Test(run_lease, a_run_taken_over_between_steps_gets_elease_and_writes_nothing)
{
    taken_over_while_stopped("between", 0);
}

Test(run_lease, a_run_taken_over_in_a_wait_gets_elease_and_writes_nothing)
{
    taken_over_while_stopped("in-wait", 1);
}
