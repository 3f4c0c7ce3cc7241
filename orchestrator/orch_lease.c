/*
 * orch_lease.c: renewing the writers' leases of the executions an
 * orchestrator owns.
 *
 * On a PostgreSQL store a writer owns its execution by a lease, which
 * an append renews (once half of it has passed) and which runs out
 * lease_ms after the last renewal (eventstore/BACKENDS.md, "Leases and fencing"). An execution
 * that waits (a sleep, an event, a slow action) appends nothing, so the
 * poll timer renews, on the threadpool (a renewal is a round trip to the
 * server), the lease of each owned execution claimed or last renewed a
 * third of lease_ms ago or more. One that ends sooner is never renewed.
 * A renewal refused because another runner claimed the execution means
 * this one must stop writing it: the execution is given up here, and its
 * appends would be refused anyway (fencing). On the file and SQLite
 * backends a writer holds a lock for as long as its log is open:
 * evs_log_renew says so (an end of INT64_MAX), and renewal stops.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdlib.h>

typedef struct renew_job {
    uv_work_t w;
    evs_orch *o;
    uint64_t began_ms;
    size_t n;
    orch_exec **x;
    int *rc;
    int64_t *until;
} renew_job;

static void renew_work(uv_work_t *w)
{
    renew_job *j = w->data;

    for (size_t i = 0; i < j->n; i++)
        j->rc[i] = evs_log_renew(j->x[i]->log, &j->until[i]);
}

static void renew_done(uv_work_t *w, int status)
{
    renew_job *j = w->data;
    evs_orch *o = j->o;
    int locks = status == 0 && j->n > 0;

    for (size_t i = 0; i < j->n; i++) {
        orch_exec *x = j->x[i];
        int rc = status == 0 ? j->rc[i] : status;
        locks &= rc == 0 && j->until[i] == INT64_MAX;
        if (rc == 0)
            x->renewed_ms = j->began_ms;
        if (rc == EVS_ELEASE && !x->released)
            evs__orch_fail_exec(x, rc,
                                "its lease was lost: another runner took it "
                                "over");
        else if (rc == -ENOENT && !x->released)
            evs__orch_fail_exec(x, rc, "it was deleted from the store");
        /* EVS_EREADONLY: the lease went with the execution's last
         * append, which a flush made meanwhile; nothing to renew. */
        else if (rc != 0 && rc != EVS_EREADONLY && !x->released)
            evs__orch_logf(o, EVS_LOG_WARN,
                           EVS_LOG_FIELDS(.execution = x->id, .err = rc),
                           "lease not renewed (%s); it stands until it runs "
                           "out, and the next poll tries again",
                           evs_strerror(rc));
        evs__orch_exec_unref(x);
    }
    o->no_leases |= locks;
    o->renewing = 0;
    o->busy--;
    evs__free(o->alloc, j->x);
    evs__free(o->alloc, j->rc);
    evs__free(o->alloc, j->until);
    evs__free(o->alloc, j);
    evs__orch_check_idle(o);
}

static int renew_due(const orch_exec *x, uint64_t now, uint64_t every)
{
    return x->log && !x->released && !x->broken && now - x->renewed_ms >= every;
}

void evs__orch_renew_leases(evs_orch *o)
{
    const evs_store_opts *so = evs_store_get_opts(o->store);
    uint64_t now = uv_now(o->loop), every;
    renew_job *j;
    size_t n = 0;

    if (o->renewing || o->closing || o->no_leases || !o->execs || !so ||
        so->lease_ms == 0)
        return;
    every = so->lease_ms / 3;
    for (const orch_exec *x = o->execs; x; x = x->next)
        n += renew_due(x, now, every);
    if (n == 0)
        return;
    if (!(j = evs__calloc(o->alloc, sizeof(*j))) ||
        !(j->x = evs__calloc(o->alloc, n * sizeof(*j->x))) ||
        !(j->rc = evs__calloc(o->alloc, n * sizeof(*j->rc))) ||
        !(j->until = evs__calloc(o->alloc, n * sizeof(*j->until)))) {
        if (j) {
            evs__free(o->alloc, j->x);
            evs__free(o->alloc, j->rc);
            evs__free(o->alloc, j);
        }
        return; /* the next poll tries again */
    }
    j->o = o;
    j->began_ms = now;
    for (orch_exec *x = o->execs; x; x = x->next) {
        if (!renew_due(x, now, every))
            continue;
        x->refs++; /* the log stays open until the round is back */
        j->x[j->n++] = x;
    }
    j->w.data = j;
    if (uv_queue_work(o->loop, &j->w, renew_work, renew_done) != 0) {
        for (size_t i = 0; i < j->n; i++)
            evs__orch_exec_unref(j->x[i]);
        evs__free(o->alloc, j->x);
        evs__free(o->alloc, j->rc);
        evs__free(o->alloc, j->until);
        evs__free(o->alloc, j);
        return;
    }
    o->renewing = 1;
    o->busy++;
}
