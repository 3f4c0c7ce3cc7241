/*
 * replay_apply.h: what the files that apply events share: the event as a
 * handler sees it (its `data` read once, its names interned), how a
 * history rule is checked, and the handlers of the event families.
 *
 *   replay.c       reading an event, the dispatch by type, applying
 *   replay_exec.c  the execution and its paths (start, branch, end,
 *                  cancel, pause), variables, definitions and versions
 *   replay_step.c  steps: start, completion, failure, retries, resets,
 *                  `each` progress, and the failure point
 *   replay_wait.c  signals, waits and timers
 */
#ifndef EVS_REPLAY_APPLY_H
#define EVS_REPLAY_APPLY_H

#include "replay_int.h"

/* What an event's `data` says, read in one pass over its members. */
typedef struct fields {
    evs_span workflow_name, inputs, definition, definition_hash, inputs_hash,
        lineage, parent, current_step, input, output, stored_variable, error,
        outputs, new_paths, name, value, signal, payload, timer_id, fire_at,
        timeout_at, change_id, successor, step_hash, kind, reason, runner, by;
    int64_t attempt, iteration, count, signal_seq, version, min, max, delay_ms,
        from_seq, takeover_seq;
    int has_iteration, has_count, has_signal_seq, has_version, has_min, has_max,
        has_delay, timed_out, has_attempt, has_from_seq, has_takeover_seq;
} fields;

/* One event being applied. */
typedef struct ctx {
    evs_replay *r;
    const evs_event *ev;
    evs_error_info *err; /* the caller's, may be NULL */
    fields f;
    evs_span path; /* the event's path, copied */
    evs_span step; /* its step name, copied */
    /* Where intern_names found them (-1: not there then). Paths are
     * never removed, and steps only when a path ends (compact mode),
     * after which the event looks at neither: a found position stays
     * right for the whole event; one not found is looked up again. */
    long path_i, step_i;
} ctx;

/* Reports a broken rule (FORMAT.md §6.1) of the event in c: in strict mode
 * returns EVS_EHISTORY, in tolerant mode what the violation hook returns
 * (0 when there is none). */
int evs__rp_violate(ctx *c, const char *rule, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Checks the rule; in strict mode a violation ends the apply. */
#define RULE(cond, c, rule, ...)                                               \
    do {                                                                       \
        if (!(cond)) {                                                         \
            int rc_ = evs__rp_violate((c), (rule), __VA_ARGS__);               \
            if (rc_ != 0)                                                      \
                return rc_;                                                    \
        }                                                                      \
    } while (0)

/* The text of a JSON string value, unescaped, for comparisons. A value
 * that is not a string gives the empty span. */
static inline int str_of(evs_replay *r, evs_span v, evs_span *out)
{
    if (v.len < 2 || v.ptr[0] != '"') {
        *out = (evs_span){"", 0};
        return 0;
    }
    return evs__rp_copy_str(r, v, out);
}

/* A JSON string value read as an RFC 3339 time (µs); 0 if it is not
 * one. */
static inline int64_t time_of(evs_span v)
{
    int64_t us;

    if (v.len < 2 || v.ptr[0] != '"' ||
        evs_time_parse(v.ptr + 1, v.len - 2, &us) != 0)
        return 0;
    return us;
}

/* Whether a path is still live (not ended). */
static inline int is_live(const evs_path_state *p)
{
    return p->status == EVS_PATH_ACTIVE || p->status == EVS_PATH_WAITING;
}

/* The event's path, or NULL. */
static inline evs_path_state *live_path(ctx *c)
{
    long i = c->path_i >= 0 ? c->path_i : evs__rp_path_pos(c->r, c->path);
    return i < 0 ? NULL : &c->r->paths.v[i];
}

/* The position of the event's step (path, name, iteration), or -1. */
static inline long step_pos(ctx *c)
{
    return c->step_i >= 0
               ? c->step_i
               : evs__rp_step_pos(c->r, c->path, c->step, c->f.iteration);
}

/* replay.c */
/* Checks that the event's path exists and is live; *out is it, or NULL
 * (tolerant mode). */
int evs__rp_need_path(ctx *c, evs_path_state **out);
/* Sets a variable. `held` says the value is already in the arena (a
 * step's output), so the variable can share it instead of copying it. */
int evs__rp_set_var(evs_replay *r, evs_span name, evs_span value, int held,
                    uint64_t seq);
/* Adds a live path. */
int evs__rp_new_path(evs_replay *r, evs_span id, evs_span parent, evs_span step,
                     uint64_t seq);

/* replay_step.c */
/* Every change of a step's status goes through here, which keeps count
 * of the steps failed for good. */
void evs__rp_set_step_status(evs_replay *r, evs_step_state *sp,
                             evs_step_status st);

/* The handlers, one per type or pair of types (FORMAT.md §6): each checks
 * the rules of its event before it changes anything. */
/* replay_exec.c */
int evs__rp_on_execution_started(ctx *c);
int evs__rp_on_path_started(ctx *c);
int evs__rp_on_path_branched(ctx *c);
int evs__rp_on_definition_changed(ctx *c);
int evs__rp_on_path_ended(ctx *c, int failed);
int evs__rp_on_path_cancelled(ctx *c);
int evs__rp_on_exec_ended(ctx *c, evs_exec_status st);
int evs__rp_on_pause(ctx *c, int pause);
int evs__rp_on_variable_set(ctx *c);
int evs__rp_on_history_warning(ctx *c);
int evs__rp_on_version_decision(ctx *c);
int evs__rp_on_taken_over(ctx *c);
/* replay_step.c */
int evs__rp_on_step_started(ctx *c);
int evs__rp_on_step_completed(ctx *c, int skipped);
int evs__rp_on_each_completed(ctx *c);
int evs__rp_on_step_failed(ctx *c);
int evs__rp_on_retry_scheduled(ctx *c);
int evs__rp_on_step_reset(ctx *c);
int evs__rp_on_step_redispatched(ctx *c);
/* replay_wait.c */
int evs__rp_on_signal_received(ctx *c);
int evs__rp_on_signal_consumed(ctx *c);
int evs__rp_on_wait_started(ctx *c);
int evs__rp_on_wait_ended(ctx *c);
int evs__rp_on_timer_started(ctx *c);
int evs__rp_on_timer_ended(ctx *c, int cancelled);

#endif /* EVS_REPLAY_APPLY_H */
