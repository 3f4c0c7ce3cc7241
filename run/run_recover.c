/*
 * run_recover.c: finding the runs to run again. After a crash, and for
 * runs suspended by their host, a host lists the runs that have not
 * ended and that no process owns (no writer holds the log's lock), and
 * learns which are due now: a timer, a retry or a wait's timeout has
 * come, a request waits in the inbox, or the run was cut off while
 * running.
 */
#include "run_int.h"

#include <errno.h>
#include <string.h>

typedef struct due_info {
    int due;
    int64_t wake_at; /* 0: no time set */
} due_info;

static void wake(due_info *d, int64_t at, int64_t now)
{
    if (at <= 0)
        return;
    if (at <= now)
        d->due = 1;
    if (!d->wake_at || at < d->wake_at)
        d->wake_at = at;
}

/* When the replayed run can go on: now (due), at wake_at, or when an
 * event or a request comes. */
static due_info when_due(const evs_replay *rp, int has_requests)
{
    const evs_exec_state *x = evs_replay_exec(rp);
    due_info d = {.due = has_requests};
    int64_t now = evs_now_us();
    size_t i, k;

    if (x->status == EVS_STATUS_RUNNING)
        d.due = 1; /* cut off while running */
    if (x->status == EVS_STATUS_PAUSED)
        return d;
    for (i = 0; i < evs_replay_timer_count(rp); i++) {
        const evs_timer_state *t = evs_replay_timer(rp, i);
        if (!t->fired_seq && !t->cancelled)
            wake(&d, t->fire_at_us, now);
    }
    for (i = 0; i < evs_replay_step_count(rp); i++) {
        const evs_step_state *s = evs_replay_step(rp, i);
        if (s->status == EVS_STEP_RETRYING)
            wake(&d, s->retry_at_us ? s->retry_at_us : now, now);
    }
    for (i = 0; i < evs_replay_wait_count(rp); i++) {
        const evs_wait_state *w = evs_replay_wait(rp, i);
        if (w->ended_seq)
            continue;
        wake(&d, w->timeout_at_us, now);
        for (k = 0; k < evs_replay_signal_count(rp); k++) {
            const evs_signal_state *s = evs_replay_signal(rp, k);
            if (!s->consumed_seq && evs__span_eq(s->name, w->signal))
                d.due = 1;
        }
    }
    return d;
}

/* One listed execution: appended to `out` if it is a run that has not
 * ended and that no one owns. */
static int consider(evs_store *s, const evs_exec_info *it, evs__jbuf *out)
{
    const evs_allocator *alloc = evs_store_get_opts(s)->alloc;
    evs_request_listing reqs = {0};
    const evs_exec_state *x;
    evs_replay_opts po;
    evs_replay *rp = NULL;
    evs_log *log = NULL;
    char version[256];
    due_info d;
    int rc;

    /* The writer's lock, held while we look: an owned run is skipped. */
    rc = evs_log_open(s, it->id.ptr, it->id.len, EVS_LOG_WRITE, &log, NULL,
                      NULL);
    if (rc == EVS_ELOCKED || rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    if ((rc = evs_exec_code_version(s, it->id.ptr, it->id.len, version,
                                    sizeof(version))) != 1)
        goto out; /* 0: not a run */
    evs_replay_opts_init(&po);
    po.alloc = alloc;
    if ((rc = evs_replay_new(&po, &rp)) != 0 ||
        (rc = evs_replay_open(rp, s, it->id.ptr, it->id.len, 0, NULL, NULL)) !=
            0)
        goto out;
    x = evs_replay_exec(rp);
    if (x->status >= EVS_STATUS_COMPLETED)
        goto out;
    if ((rc = evs_request_list(s, it->id.ptr, it->id.len, &reqs)) != 0)
        goto out;
    d = when_due(rp, reqs.count > 0);
    if (out->len > 1)
        EVS__JB_LIT(out, ",");
    EVS__JB_LIT(out, "{\"id\":");
    evs__jb_quote(out, it->id);
    EVS__JB_LIT(out, ",\"workflow\":");
    evs__jb_quote(out, x->workflow_name);
    EVS__JB_LIT(out, ",\"version\":");
    evs__jb_quote(out, evs_span_cstr(version));
    EVS__JB_LIT(out, ",\"status\":\"");
    evs__jb_str(out, evs_exec_status_name(x->status));
    EVS__JB_LIT(out, "\",\"due\":");
    evs__jb_str(out, d.due ? "true" : "false");
    EVS__JB_LIT(out, ",\"wake_at\":");
    if (d.wake_at)
        evs__jb_time(out, d.wake_at);
    else
        EVS__JB_LIT(out, "null");
    EVS__JB_LIT(out, "}");
    rc = out->err ? -ENOMEM : 0;
out:
    evs_request_list_free(&reqs);
    evs_replay_free(rp);
    evs_log_close(log);
    return rc;
}

int evs_run_recoverable(evs_store *s, const char *workflow, char **out,
                        evs_error_info *err)
{
    const evs_allocator *alloc;
    evs_exec_listing l = {0};
    evs_list_filter f;
    evs__jbuf b;
    size_t len;
    int rc = 0;

    if (err)
        evs_error_info_clear(err);
    if (!s || !out)
        return -EINVAL;
    *out = NULL;
    alloc = evs_store_get_opts(s)->alloc;
    b = (evs__jbuf){.alloc = alloc};
    memset(&f, 0, sizeof(f));
    f.workflow_name = evs_span_cstr(workflow);
    if ((rc = evs_exec_list(s, &f, &l)) != 0) {
        evs__error_set(err, rc, "store", "listing the store: %s",
                       evs_strerror(rc));
        return rc;
    }
    EVS__JB_LIT(&b, "[");
    for (size_t i = 0; i < l.count && rc == 0; i++) {
        const evs_exec_info *it = &l.items[i];
        /* The listing may lag (a crash before the last snapshot), so
         * only an ended status is believed; the replay decides. */
        if (it->snapshot_ok && (evs__span_eq_cstr(it->status, "completed") ||
                                evs__span_eq_cstr(it->status, "failed") ||
                                evs__span_eq_cstr(it->status, "terminated") ||
                                evs__span_eq_cstr(it->status, "continued")))
            continue;
        rc = consider(s, it, &b);
        if (rc != 0) {
            evs__error_set(err, rc, "store", "looking at %.*s: %s",
                           (int)it->id.len, it->id.ptr, evs_strerror(rc));
            evs__error_set_id(err, it->id.ptr, it->id.len);
        }
    }
    EVS__JB_LIT(&b, "]");
    evs_exec_list_free(&l);
    if (rc == 0 && (rc = evs__jb_finish(&b, out, &len)) != 0)
        evs__error_set(err, rc, "memory", "out of memory");
    evs__jb_free(&b);
    return rc;
}
