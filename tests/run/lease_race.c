/*
 * lease_race.c: a run's lease renewal (run/run_lease.c) racing its own
 * calls, for ThreadSanitizer. Criterion cannot start under TSan (its
 * inheritable arena fails to map), so this is a plain program, run on a
 * private PostgreSQL server through scripts/pg-test-server (meson test
 * run_lease_race_pg, suite postgresql). Built with
 * -Db_sanitize=thread, a data race is reported and fails it.
 *
 * With a 300 ms lease, renewed every 100 ms from the run's thread, it
 * runs steps on the root and on a branch's thread at once, a durable
 * sleep, and then, while a wait for an event is blocked, another
 * runner's claim is made (the fencing token bumped in SQL, as a claim
 * does): the wait must end with EVS_ELEASE of kind "lease", the next
 * call too, and nothing may be written after the claim. Prints one line
 * and exits 1 on the first check that fails.
 */
#include "evstore.h"
#include "evstore/run.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_MS 300
#define STEPS 20

static const char *uri;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("lease_race: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int body(void *arg, evs_run *r, const char *input)
{
    (void)r;
    (void)input;
    ++*(int *)arg;
    return 0;
}

/* Runs STEPS steps named "<prefix><i>" on r, napping between them. */
static void steps(evs_run *r, const char *prefix, int *calls)
{
    evs_error_info e;
    char name[32];

    for (int i = 0; i < STEPS; i++) {
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        if (evs_run_step(r, name, NULL, NULL, body, calls, NULL, &e) != 0)
            fail("step %s: %s", name, e.msg);
        nap_ms(LEASE_MS / 10);
    }
}

static evs_run *branch;
static int branch_calls;

static void *branch_main(void *arg)
{
    evs_error_info e;

    (void)arg;
    steps(branch, "b", &branch_calls);
    if (evs_run_branch_end(branch, &e) != 0)
        fail("branch end: %s", e.msg);
    return NULL;
}

/* Another runner's claim of `id`, as its UPDATE makes it: a new token. */
static void *claim(void *arg)
{
    const char *id = arg;
    PGconn *c;
    PGresult *res;
    const char *params[1] = {id};

    nap_ms(2 * LEASE_MS);
    c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        fail("connecting: %s", PQerrorMessage(c));
    res = PQexecParams(c,
                       "UPDATE executions SET fence = fence + 1, owner = NULL,"
                       " lease_until = 0 WHERE id = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK ||
        strcmp(PQcmdTuples(res), "1") != 0)
        fail("the claim: %s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    return NULL;
}

static long count_events(evs_store *s, const char *id)
{
    evs_log *l = NULL;
    long n;

    if (evs_log_open(s, id, strlen(id), 0, &l, NULL, NULL) != 0)
        fail("opening %s to read", id);
    n = (long)evs_log_last_seq(l);
    evs_log_close(l);
    return n;
}

int main(void)
{
    evs_store_opts o;
    evs_store *s = NULL;
    evs_run *r = NULL;
    evs_error_info e;
    pthread_t t;
    int calls = 0, rc;
    long before;

    if (!(uri = getenv("EVS_TEST_PG_URI")))
        fail("EVS_TEST_PG_URI is not set: run through scripts/pg-test-server");
    evs_store_opts_init(&o);
    o.lease_ms = LEASE_MS;
    o.durability = EVS_SYNC_NONE;
    if ((rc = evs_store_open(uri, &o, &s)) != 0)
        fail("opening the store: %s", evs_strerror(rc));

    /* Steps on two threads and a sleep, renewals all the while. */
    if (evs_run_open(s, "race", "wf", "1", NULL, NULL, &r, &e) != 0 ||
        evs_run_branch(r, "br", &branch, &e) != 0)
        fail("opening the run: %s", e.msg);
    if (pthread_create(&t, NULL, branch_main, NULL) != 0)
        fail("starting the branch's thread");
    steps(r, "s", &calls);
    pthread_join(t, NULL);
    evs_run_close(branch);
    if (evs_run_sleep(r, 3 * LEASE_MS, &e) != 0)
        fail("sleeping thrice the lease: %s", e.msg);
    if (evs_run_complete(r, NULL, &e) != 0)
        fail("completing: %s", e.msg);
    evs_run_close(r);
    if (calls != STEPS || branch_calls != STEPS)
        fail("%d and %d step bodies ran, not %d each", calls, branch_calls,
             STEPS);

    /* Taken over while blocked in a wait. */
    if (evs_run_open(s, "taken", "wf", "1", NULL, NULL, &r, &e) != 0)
        fail("opening the second run: %s", e.msg);
    if (pthread_create(&t, NULL, claim, (void *)"taken") != 0)
        fail("starting the claim's thread");
    rc = evs_run_wait_event(r, "never", 0, &e);
    pthread_join(t, NULL);
    before = count_events(s, "taken");
    if (rc != EVS_ELEASE || strcmp(e.kind, "lease") != 0)
        fail("the wait returned %s (%s): %s", evs_err_name(rc), e.kind,
             e.msg);
    rc = evs_run_step(r, "after", NULL, NULL, body, &calls, NULL, &e);
    if (rc != EVS_ELEASE || strcmp(e.kind, "lease") != 0)
        fail("the call after returned %s (%s): %s", evs_err_name(rc), e.kind,
             e.msg);
    evs_run_close(r);
    if (count_events(s, "taken") != before)
        fail("the run wrote after it was taken over");
    if (calls != STEPS)
        fail("a step body ran after the run was taken over");
    evs_store_close(s);
    puts("lease_race: ok");
    return 0;
}
