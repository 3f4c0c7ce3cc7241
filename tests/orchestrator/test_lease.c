/*
 * test_lease.c: an orchestrator that loses an execution's lease at
 * renewal gives the execution up and never writes it again
 * (orchestrator/orch_lease.c; eventstore/BACKENDS.md, "Leases and
 * fencing"). PostgreSQL only: registered for the `postgresql` suite
 * alone (tests/meson.build).
 *
 * An execution sleeps on a durable timer far off, under an orchestrator
 * whose store has a short lease. Then the host blocks the orchestrator's
 * loop (a script step on the loop that does not return: what a blocking
 * action or a stalled host would do), so no renewal is made, until a
 * second writer, on a store handle of its own, has claimed the
 * execution once the lease ran out and appended to it. When the loop
 * turns again, its next renewal is refused: the orchestrator must give
 * the execution up (its outcome an error, EVS_ELEASE; its log says the
 * lease was lost), and nothing it writes may follow the second writer's
 * first event.
 */
#include "harness.h"

#include <libpq-fe.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* The store's lease: renewed every 200 ms while the loop turns. */
#define LEASE_MS 600

/* The loop is blocked at most this long waiting for the second writer:
 * a bound on a failure, not a measure of a pass. */
#define BLOCK_MAX_MS 30000

static void setup(void)
{
    evs_store_opts so;

    harness_setup("orch-lease", NULL, EVS_SYNC_FULL);
    harness_store_opts(&so);
    so.lease_ms = LEASE_MS;
    harness_store_reopen(&so);
}

TestSuite(orch_lease, .init = setup, .fini = harness_teardown,
          .timeout = 120);

/* ---------------------------------------------------------------- */
/* The second writer, on a thread and a store handle of its own      */
/* ---------------------------------------------------------------- */

static pthread_t writer2;
static atomic_int w2_state; /* 1 claimed and wrote once, 2 wrote again,
                               -1 failed */
static atomic_int w2_go;    /* 1: write again; 2: let the execution go */
static int w2_rc;
static const char marker[] = "{\"signal\":\"writer2\",\"payload\":null}";

static void *writer2_main(void *arg)
{
    evs_store_opts so;
    evs_store *s = NULL;
    evs_log *l = NULL;
    evs_event ev = tu_event(EVS_EV_SIGNAL_RECEIVED, NULL, marker);
    int rc;

    (void)arg;
    evs_store_opts_init(&so);
    so.lease_ms = LEASE_MS;
    rc = evs_store_open(tu_loc(dir), &so, &s);
    /* Waits for the orchestrator's lease to run out. */
    if (rc == 0)
        rc = evs_log_open(s, sid, strlen(sid), EVS_LOG_WRITE | EVS_LOG_WAIT,
                          &l, NULL, NULL);
    if (rc == 0)
        rc = evs_log_append(l, &ev, 1, evs_log_last_seq(l), NULL);
    w2_rc = rc;
    atomic_store(&w2_state, rc == 0 ? 1 : -1);
    while (rc == 0 && atomic_load(&w2_go) < 1)
        tu_nap_ms(5);
    if (rc == 0)
        rc = evs_log_append(l, &ev, 1, evs_log_last_seq(l), NULL);
    w2_rc = rc;
    atomic_store(&w2_state, rc == 0 ? 2 : -1);
    /* Holds the execution until the orchestrator is gone, so that no
     * later claim of its own muddles what it wrote. */
    while (rc == 0 && atomic_load(&w2_go) < 2)
        tu_nap_ms(5);
    evs_log_close(l);
    evs_store_close(s);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* The script, on the loop                                           */
/* ---------------------------------------------------------------- */

static int blocked_ms;

/* The execution under test sleeps on its timer (made off the loop). */
static int sleeping(void)
{
    evlist ev;
    int waiting;

    if (!evs_exec_exists(st, sid, strlen(sid)))
        return 0;
    ev = events_of(sid);
    waiting = evf(&ev, EVS_EV_TIMER_STARTED, NULL, NULL, 0) != NULL;
    evlist_free(&ev);
    return waiting;
}

/* A sleep far off, then an action it never reaches. */
static const char *nap_def(void)
{
    return J("{'name':'nap','steps':["
             "{'name':'z','kind':'sleep','duration_ms':600000,"
             "'next':'after'},"
             "{'name':'after','kind':'action','action':'t_echo'}]}");
}

static int lose_the_lease(int step)
{
    switch (step) {
    case 0: /* the execution sleeps on its timer (made off the loop) */
        if (!sleeping())
            return 0;
        cr_assert_eq(pthread_create(&writer2, NULL, writer2_main, NULL), 0);
        return 1;
    case 1: /* the loop is blocked until the second writer has written */
        while (atomic_load(&w2_state) == 0 && blocked_ms < BLOCK_MAX_MS) {
            tu_nap_ms(10);
            blocked_ms += 10;
        }
        return 2;
    case 2: /* the loop turns again: the orchestrator must give it up */
        if (atomic_load(&w2_state) < 1 || !outcome_of(sid))
            return 2;
        atomic_store(&w2_go, 1);
        return 3;
    default: /* the second writer went on; the orchestrator is stopped */
        if (atomic_load(&w2_state) == 1)
            return 3;
        evs_orch_stop(orch, 0);
        return -1;
    }
}

Test(orch_lease, a_lease_lost_at_renewal_gives_the_execution_up)
{
    const outcome_rec *oc;
    evlist ev;
    size_t first = SIZE_MAX;

    if (!tu_backend_is_pg())
        cr_skip_test("PostgreSQL only: leases");
    run_scripted(0, nap_def(), "napper", lose_the_lease);
    atomic_store(&w2_go, 2);
    cr_assert_eq(pthread_join(writer2, NULL), 0);
    cr_assert_eq(w2_rc, 0, "the second writer: %s", evs_err_name(w2_rc));
    cr_assert_lt(blocked_ms, BLOCK_MAX_MS,
                 "the second writer never claimed the execution");
    /* Given up, for its lease, at renewal. */
    cr_assert_not_null(oc = outcome_of("napper"));
    cr_assert_eq(oc->oc, EVS_OUTCOME_ERROR, "outcome %s",
                 evs_outcome_name(oc->oc));
    cr_assert_eq(oc->err, EVS_ELEASE, "error %s", evs_err_name(oc->err));
    cr_assert_eq(oc->reports, 1);
    cr_assert(strstr(last_log, "lease was lost"), "the log said: %s",
              last_log);
    cr_assert_eq(count_calls("after"), 0);
    /* From the second writer's first event on, the log holds its two
     * events and nothing else. */
    ev = events_of("napper");
    for (size_t i = 0; i < ev.n && first == SIZE_MAX; i++)
        if (span_is(ev.v[i].ev.data, marker))
            first = i;
    cr_assert_neq(first, SIZE_MAX, "the second writer's event is missing");
    cr_assert_eq(ev.n - first, 2, "%zu events from the second writer's "
                                  "first on, where it wrote 2",
                 ev.n - first);
    for (size_t i = first; i < ev.n; i++)
        cr_assert(span_is(ev.v[i].ev.data, marker),
                  "event %llu (%.*s) was written after the second writer's "
                  "claim, not by it",
                  (unsigned long long)ev.v[i].ev.sequence,
                  (int)ev.v[i].ev.event_type.len, ev.v[i].ev.event_type.ptr);
    cr_assert(evf(&ev, EVS_EV_TIMER_STARTED, NULL, NULL, 0)->sequence <
                  ev.v[first].ev.sequence,
              "the timer was started after the claim");
    evlist_free(&ev);
}

/* ---------------------------------------------------------------- */
/* An execution deleted under its runner                             */
/* ---------------------------------------------------------------- */

/* Removes the execution's row behind the store's back (an operator's
 * DELETE; evs_exec_delete would wait for the lease) once it sleeps: its
 * next renewal finds no row, and the orchestrator gives it up. */
static int delete_under_it(int step)
{
    PGconn *c;
    PGresult *r;

    switch (step) {
    case 0:
        if (!sleeping())
            return 0;
        c = PQconnectdb(tu_loc(dir));
        cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
        r = PQexec(c, "DELETE FROM executions WHERE id = 'gone'");
        cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
                  PQresultErrorMessage(r));
        cr_assert_str_eq(PQcmdTuples(r), "1");
        PQclear(r);
        PQfinish(c);
        return 1;
    default:
        if (!outcome_of(sid))
            return 1;
        evs_orch_stop(orch, 0);
        return -1;
    }
}

Test(orch_lease, an_execution_deleted_under_its_runner_is_given_up)
{
    const outcome_rec *oc;

    if (!tu_backend_is_pg())
        cr_skip_test("PostgreSQL only: leases");
    run_scripted(0, nap_def(), "gone", delete_under_it);
    cr_assert_not_null(oc = outcome_of("gone"));
    cr_assert_eq(oc->oc, EVS_OUTCOME_ERROR, "outcome %s",
                 evs_outcome_name(oc->oc));
    cr_assert_eq(oc->err, -ENOENT, "error %s", evs_err_name(oc->err));
    cr_assert(strstr(last_log, "deleted from the store"), "the log said: %s",
              last_log);
    cr_assert_eq(count_calls("after"), 0);
    cr_assert(!evs_exec_exists(st, "gone", 4), "nothing wrote it back");
}
