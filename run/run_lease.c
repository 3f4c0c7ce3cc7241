/*
 * run_lease.c: keeping a run's lease on a store whose writers hold
 * leases (PostgreSQL; eventstore/BACKENDS.md, "Leases and fencing").
 *
 * A run's host code is synchronous and may go a long time between two
 * calls (a model's answer, a person's), and a blocked call (a sleep, a
 * wait, a join) appends nothing while it waits. So each run that holds
 * a lease has a thread of its own that renews it every third of the
 * store's lease_ms for as long as the run is open, whatever its host
 * does; nothing is left for the host to remember. On a store of locks
 * (files, SQLite) the first renewal, made at open, says so (an end of
 * INT64_MAX) and no thread is started.
 *
 * The thread touches nothing of the run but its log, whose calls are
 * serialised by the log's own mutex (store.h, "Threads"), and the
 * lease's own fields (lease_mu, lease_lost): never the run's mutex,
 * which a call may hold for long. A renewal refused because another runner claimed the run
 * (EVS_ELEASE) ends the thread and marks the lease lost: the run's next
 * call, or the wait a call is blocked in, returns EVS_ELEASE, and
 * nothing more is written through the handle (the store refuses it
 * anyway: fencing). Any other failure (the server out of reach) is
 * reported through the log hook and tried again a third of the lease
 * later, while the lease stands.
 */
#include "run_int.h"

#include <errno.h>
#include <time.h>

/* The lease's period of renewal: a third of it, as the orchestrator's. */
static int64_t renew_every_ms(const run_core *c)
{
    int64_t ms = (int64_t)evs_store_get_opts(c->s)->lease_ms / 3;

    return ms > 0 ? ms : 1;
}

static void *renewer(void *arg)
{
    run_core *c = arg;
    int64_t every = renew_every_ms(c), until;
    struct timespec due;
    int rc;

    pthread_mutex_lock(&c->lease_mu);
    clock_gettime(CLOCK_MONOTONIC, &due);
    while (!c->lease_stop) {
        due.tv_sec += (time_t)(every / 1000);
        due.tv_nsec += (long)(every % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        while (!c->lease_stop &&
               pthread_cond_timedwait(&c->lease_cv, &c->lease_mu, &due) !=
                   ETIMEDOUT)
            ;
        if (c->lease_stop)
            break;
        /* Under lease_mu, so that a call that finds the log poisoned
         * by this renewal can wait for its verdict (lease_settle). */
        rc = evs_log_renew(c->log, &until);
        if (rc == EVS_ELEASE) {
            atomic_store(&c->lease_lost, 1);
            evs__limits_log(c->s, EVS_LOG_ERROR, c->id,
                            "run lease lost: another runner took the run "
                            "over; this handle writes nothing more");
            break;
        }
        if (rc == EVS_EPOISONED)
            break; /* an append failed: the run's calls report it */
        if (rc != 0)
            evs__limits_log(c->s, EVS_LOG_WARN, c->id,
                            "run lease not renewed (%s); it stands until "
                            "it runs out, and renewal is tried again",
                            evs_strerror(rc));
        /* Late (the round trip, a stopped process): the next one is a
         * period from now, not from when this one was due. */
        clock_gettime(CLOCK_MONOTONIC, &due);
    }
    pthread_mutex_unlock(&c->lease_mu);
    return NULL;
}

int evs__run_lease_start(evs_run *r, evs_error_info *err)
{
    run_core *c = r->c;
    pthread_condattr_t ca;
    int64_t until = 0;
    int rc;

    rc = evs_log_renew(c->log, &until);
    if (rc == EVS_ELEASE) {
        atomic_store(&c->lease_lost, 1);
        return evs__run_lease_lost(r, err);
    }
    if (rc != 0)
        return evs__run_fail(r, err, rc, "lease",
                             "run %s: renewing its lease: %s", c->id,
                             evs_strerror(rc));
    if (until == INT64_MAX)
        return 0; /* a lock, held while the log is open */
    pthread_mutex_init(&c->lease_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->lease_cv, &ca);
    pthread_condattr_destroy(&ca);
    c->lease_stop = 0;
    if ((rc = pthread_create(&c->lease_thread, NULL, renewer, c)) != 0) {
        pthread_cond_destroy(&c->lease_cv);
        pthread_mutex_destroy(&c->lease_mu);
        return evs__run_fail(r, err, -rc, "lease",
                             "run %s: starting its lease's renewal: %s",
                             c->id, evs_strerror(-rc));
    }
    c->renewing = 1;
    return 0;
}

void evs__run_lease_stop(run_core *c)
{
    if (!c->renewing)
        return;
    pthread_mutex_lock(&c->lease_mu);
    c->lease_stop = 1;
    pthread_cond_signal(&c->lease_cv);
    pthread_mutex_unlock(&c->lease_mu);
    pthread_join(c->lease_thread, NULL);
    pthread_cond_destroy(&c->lease_cv);
    pthread_mutex_destroy(&c->lease_mu);
    c->renewing = 0;
}

void evs__run_lease_settle(run_core *c)
{
    if (!c->renewing)
        return;
    pthread_mutex_lock(&c->lease_mu);
    pthread_mutex_unlock(&c->lease_mu);
}

int evs__run_lease_lost(evs_run *r, evs_error_info *err)
{
    run_core *c = r->c;

    c->broken = 1;
    c->broken_rc = EVS_ELEASE;
    if (c->rec)
        evs_recorder_discard(c->rec); /* never to be written */
    return evs__run_fail(r, err, EVS_ELEASE, "lease",
                         "run %s: its lease was lost: another runner took "
                         "the run over, and this handle writes nothing "
                         "more; close it",
                         c->id);
}

int evs__run_lease_check(evs_run *r, evs_error_info *err)
{
    if (!atomic_load(&r->c->lease_lost))
        return 0;
    return evs__run_lease_lost(r, err);
}
