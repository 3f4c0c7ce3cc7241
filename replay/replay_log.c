/*
 * replay_log.c: replaying from a store: over a log with a cursor, from a
 * snapshot plus its tail, and writing snapshots that carry the state.
 */
#include "replay_int.h"

#include <errno.h>

int evs_replay_run(evs_replay *r, evs_log *log, uint64_t to,
                   evs_error_info *err)
{
    uint64_t from = r->exec.last_seq + 1, last = evs_log_last_seq(log);
    evs_cursor *c;
    evs_event ev;
    int rc;

    if (to == 0 || to > last)
        to = last;
    if (from > to)
        return 0;
    if ((rc = evs_cursor_open(log, from, to, &c, err)) != 0)
        return rc;
    while ((rc = evs_cursor_next(c, &ev, NULL, err)) == 1)
        if ((rc = evs_replay_apply(r, &ev, err)) != 0)
            break;
    evs_cursor_close(c);
    return rc < 0 ? rc : rc == 1 ? 0 : rc;
}

int evs_replay_open(evs_replay *r, evs_store *s, const char *id, size_t id_len,
                    uint64_t at, int *from_snapshot, evs_error_info *err)
{
    evs_snapshot *sn = NULL;
    evs_log *log = NULL;
    uint64_t seq;
    int rc, used = 0;

    if (from_snapshot)
        *from_snapshot = 0;
    /* A snapshot is only a cache: any problem with it means replaying
     * from the start, never failing. The replayer takes the snapshot
     * over, so that the state's strings and values stay where the file
     * was read instead of being copied. */
    if (evs_snapshot_load_flags(s, id, id_len, EVS_SNAPSHOT_STATE_RAW, &sn,
                                NULL) == 0 &&
        sn->state.len && (at == 0 || sn->last_event_seq <= at)) {
        seq = sn->last_event_seq;
        if (evs__rp_load_state_snapshot(r, sn) == 0 && r->exec.last_seq == seq)
            used = 1;
        else
            evs__rp_reset(r);
        sn = NULL; /* the replayer's now, or freed */
    }
    evs_snapshot_free(sn);
    rc = evs_log_open(s, id, id_len, 0, &log, NULL, err);
    if (rc == 0)
        rc = evs_replay_run(r, log, at, err);
    evs_log_close(log);
    if (rc == 0 && from_snapshot)
        *from_snapshot = used;
    return rc;
}

/* Fills *sn from the replayed state, with `state` as its state JSON. */
static void fill_snapshot(const evs_replay *r, evs_span workflow_data,
                          evs_span state, evs_snapshot *sn)
{
    const evs_exec_state *x = &r->exec;

    memset(sn, 0, sizeof(*sn));
    sn->id = x->execution_id;
    sn->workflow_name = x->workflow_name;
    sn->workflow_hash = x->definition_hash;
    sn->inputs_hash = x->inputs_hash;
    sn->status = evs_span_cstr(evs_exec_status_name(x->status));
    sn->start_time_us = x->started_at_us;
    sn->end_time_us = x->ended_at_us;
    sn->last_event_seq = x->last_seq;
    sn->workflow_data = workflow_data.len ? workflow_data : x->definition;
    sn->inputs = x->inputs;
    sn->outputs = x->outputs;
    sn->error = x->error;
    sn->lineage = x->lineage;
    sn->state = state;
}

int evs_replay_snapshot_prepare(const evs_replay *r, evs_span workflow_data,
                                evs_snapshot **out)
{
    evs_snapshot sn;
    char *state = NULL;
    size_t len;
    int rc;

    if (!r->exec.execution_id.len)
        return -EINVAL;
    if ((rc = evs_replay_state_json(r, &state, &len)) != 0)
        return rc;
    fill_snapshot(r, workflow_data, (evs_span){state, len}, &sn);
    rc = evs_snapshot_copy(&sn, r->alloc, out);
    evs__free(r->alloc, state);
    return rc;
}

int evs_replay_snapshot(const evs_replay *r, evs_store *s,
                        evs_span workflow_data)
{
    const evs_exec_state *x = &r->exec;
    evs_snapshot sn;
    char *state = NULL;
    size_t len;
    int rc;

    if (!x->execution_id.len)
        return -EINVAL;
    if ((rc = evs_replay_state_json(r, &state, &len)) != 0)
        return rc;
    fill_snapshot(r, workflow_data, (evs_span){state, len}, &sn);
    /* Made from the log, so the log rebuilds it: a cache. */
    rc = evs_snapshot_save_flags(s, x->execution_id.ptr, x->execution_id.len,
                                 &sn, EVS_SNAPSHOT_CACHE);
    evs__free(r->alloc, state);
    return rc;
}
