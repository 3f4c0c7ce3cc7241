/*
 * inspect_status.c: the status view of an execution (evstore/inspect.h):
 * what `evrun status --json` prints and what the HTTP API answers for
 * one execution, written here and nowhere else.
 */
#include "inspect_int.h"

#include <errno.h>
#include <string.h>

/* What is still pending in an execution. */
typedef struct pending {
    size_t live_paths, waits, timers;
} pending;

static pending pending_of(const evs_replay *rp)
{
    pending p = {0, 0, 0};

    for (size_t i = 0; i < evs_replay_path_count(rp); i++)
        p.live_paths += evs_replay_path(rp, i)->ended_seq == 0;
    for (size_t i = 0; i < evs_replay_wait_count(rp); i++)
        p.waits += evs_replay_wait(rp, i)->ended_seq == 0;
    for (size_t i = 0; i < evs_replay_timer_count(rp); i++) {
        const evs_timer_state *t = evs_replay_timer(rp, i);
        p.timers += !t->fired_seq && !t->cancelled;
    }
    return p;
}

static void member_u64(evs__jbuf *b, const char *key, uint64_t v)
{
    EVS__JB_LIT(b, ",\"");
    evs__jb_str(b, key);
    EVS__JB_LIT(b, "\":");
    evs__jb_int(b, (int64_t)v);
}

static void member_key(evs__jbuf *b, const char *key)
{
    EVS__JB_LIT(b, ",\"");
    evs__jb_str(b, key);
    EVS__JB_LIT(b, "\":");
}

/* A string, or null when it is empty. */
static void str_or_null(evs__jbuf *b, evs_span v)
{
    if (v.len)
        evs__jb_quote(b, v);
    else
        EVS__JB_LIT(b, "null");
}

/* A pause, unpause or termination: {at, by, reason, step, seq}, or null
 * if none is recorded. `by` and `reason` are null when the history does
 * not record them (written before they were); `step` is a pause's. */
static void write_control(evs__jbuf *b, const char *key,
                          const evs_control_state *c)
{
    member_key(b, key);
    if (!c->seq) {
        EVS__JB_LIT(b, "null");
        return;
    }
    EVS__JB_LIT(b, "{\"at\":");
    evs__inspect_time(b, c->at_us);
    EVS__JB_LIT(b, ",\"by\":");
    str_or_null(b, c->by);
    EVS__JB_LIT(b, ",\"reason\":");
    evs__jb_json(b, c->reason);
    EVS__JB_LIT(b, ",\"step\":");
    str_or_null(b, c->step);
    member_u64(b, "seq", c->seq);
    EVS__JB_LIT(b, "}");
}

static void write_status(evs__jbuf *b, const evs_replay *rp)
{
    const evs_exec_state *x = evs_replay_exec(rp);
    pending p = pending_of(rp);

    EVS__JB_LIT(b, "{\"id\":");
    evs__jb_quote(b, x->execution_id);
    EVS__JB_LIT(b, ",\"status\":\"");
    evs__jb_str(b, evs_exec_status_name(x->status));
    EVS__JB_LIT(b, "\",\"workflow_name\":");
    evs__jb_quote(b, x->workflow_name);
    member_u64(b, "last_event_seq", x->last_seq);
    member_key(b, "start_time");
    evs__inspect_time(b, x->started_at_us);
    member_key(b, "end_time");
    evs__inspect_time(b, x->ended_at_us);
    member_u64(b, "live_paths", p.live_paths);
    member_u64(b, "pending_waits", p.waits);
    member_u64(b, "pending_timers", p.timers);
    member_key(b, "outputs");
    evs__jb_json(b, x->outputs);
    member_key(b, "error");
    evs__jb_json(b, x->error);
    member_key(b, "failed_at");
    if (x->failed_seq) {
        EVS__JB_LIT(b, "{\"path\":");
        evs__jb_quote(b, x->failed_path);
        EVS__JB_LIT(b, ",\"step\":");
        evs__jb_quote(b, x->failed_step);
        EVS__JB_LIT(b, ",\"iteration\":");
        evs__jb_int(b, x->failed_iteration);
        member_u64(b, "seq", x->failed_seq);
        EVS__JB_LIT(b, "}");
    } else {
        EVS__JB_LIT(b, "null");
    }
    member_key(b, "inputs");
    evs__jb_json(b, x->inputs);
    member_key(b, "lineage");
    evs__jb_json(b, x->lineage.len ? x->lineage : evs_span_cstr("{}"));
    member_key(b, "continued_as");
    str_or_null(b, x->continued_as);
    write_control(b, "paused", &x->paused);
    write_control(b, "resumed", &x->resumed);
    write_control(b, "terminated", &x->terminated);
    EVS__JB_LIT(b, "}");
}

int evs_replay_status_json(const evs_replay *r, const evs_allocator *alloc,
                           char **out, size_t *out_len)
{
    evs__jbuf b = {0};

    if (!r || !out)
        return -EINVAL;
    *out = NULL;
    b.alloc = alloc;
    write_status(&b, r);
    return evs__jb_finish(&b, out, out_len);
}

int evs_inspect_status(evs_store *s, const char *id, char **out,
                       evs_error_info *err)
{
    evs_replay_opts ro;
    evs_replay *r = NULL;
    evs__jbuf b = {0};
    int rc;

    if ((rc = evs__inspect_begin(s, id, 1, out, err)) != 0)
        return rc;
    b.alloc = evs_store_allocator(s);
    /* Compact: a status needs no step history, and the replay starts
     * from the snapshot a runner keeps. */
    evs_replay_opts_init(&ro);
    ro.alloc = b.alloc;
    ro.compact = 1;
    if ((rc = evs_replay_new(&ro, &r)) != 0 ||
        (rc = evs_replay_open(r, s, id, strlen(id), 0, NULL, err)) != 0)
        goto out;
    write_status(&b, r);
out:
    evs_replay_free(r);
    return evs__inspect_end(&b, rc, out, err, "replaying the execution");
}
