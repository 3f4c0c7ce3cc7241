/*
 * drive_int.h: what the files of the step machine (evs__drive*.c) share.
 *
 *   drive.c         the path driver: what each live path does next
 *   drive_eval.c    looking things up in the state, and templates
 *   drive_step.c    starting steps, and the kinds that settle at once
 *   drive_join.c    waits for events, timers, and joins
 *   drive_branch.c  outcomes, edges, branching and cancellation
 *   drive_events.c  what comes from outside: outcomes of actions, timers
 *                   and requests
 */
#ifndef EVS_DRIVE_INT_H
#define EVS_DRIVE_INT_H

#include "orch_int.h"

#include <string.h>

#define NAME_MAX_ 512

/* A copy of a span, NUL-terminated, that survives later emits. */
typedef struct name_buf {
    char s[NAME_MAX_];
    size_t len;
} name_buf;

static inline evs_span nb_set(name_buf *b, evs_span v)
{
    b->len = v.len < NAME_MAX_ - 1 ? v.len : NAME_MAX_ - 1;
    if (b->len)
        memcpy(b->s, v.ptr, b->len);
    b->s[b->len] = '\0';
    return (evs_span){b->s, b->len};
}

static inline int span_eq(evs_span a, const char *b)
{
    return b && a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static inline int spans_eq(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---------------------------------------------------------------- */
/* Looking things up in the state                                   */
/* ---------------------------------------------------------------- */

/* A step that completed or was skipped. */
static inline int step_done(const evs_step_state *s)
{
    return s->status == EVS_STEP_COMPLETED || s->status == EVS_STEP_SKIPPED;
}

/* What a template sees: the execution's state, on path `path`. */
typedef struct rctx {
    orch_exec *x;
    evs_span path;
    evs_wf_ctx c;
} rctx;

/* drive_eval.c */
/* The output of the last step completed on `path` (empty if none). */
evs_span evs__drive_last_output(const evs_replay *rp, evs_span path);
void evs__drive_rctx_init(rctx *r, orch_exec *x, evs_span path);
/* When a sleep step on pid is due (µs), or with `why` set -1 (its
 * template failed) or -2 (not a duration or a time). */
int64_t evs__drive_sleep_due(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             char *why, size_t cap);
/* Renders an `each` step's list. Returns its items' count, or with `why`
 * set -1 (a reference to nothing) or -2 (not an array). *list is the
 * array (owned). */
int64_t evs__drive_each_list(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             char **list, size_t *len, char *why, size_t cap);
/* Item i of the JSON array list[0..len) (empty if none). */
evs_span evs__drive_each_item(const char *list, size_t len, int64_t i);

/* drive_step.c */
/* Starts step S (iteration `iter`, 0 for an `each` not begun) on pid, at
 * attempt `attempt`. S NULL (an edge to no step) gives the execution
 * up. */
void evs__drive_enter_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           uint32_t attempt, int64_t iter);
/* Queues an attempt of an action step to run once need_seq is durable. */
/* Runs again an attempt of an action step that was started and never
 * finished (same attempt, input and idempotency key); one started
 * before this runner took the history over is recorded first as
 * step_redispatched. */
void evs__drive_redispatch(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           int64_t iter, const evs_step_state *st);
void evs__drive_queue_action(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             int64_t iter, uint32_t attempt, evs_span input,
                             uint64_t need_seq);
/* Arms a timer of kind k for pid, due at `due` (µs). */
void evs__drive_arm(orch_exec *x, evs_span pid, timer_kind k, evs_span id,
                    int64_t due);
/* The kinds that settle at once from the state (join, end, version,
 * continue_as_new). */
void evs__drive_settle_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                            int64_t iter, uint32_t attempt);

/* drive_join.c */
/* A wait_event step: takes the oldest buffered event of its type.
 * Returns 1 if it did. */
int evs__drive_try_consume(orch_exec *x, evs_span pid, const evs_wf_step *S,
                           int64_t iter);
/* Judges join S on pid by its mode; returns 1 when it decided. */
int evs__drive_check_join(orch_exec *x, evs_span pid, const evs_wf_step *S,
                          int64_t iter, uint32_t attempt);
/* The pending timer of step `step` on pid: 1 with its due time and id. */
int evs__drive_pending_timer(const evs_replay *rp, evs_span pid, evs_span step,
                             int64_t *due, name_buf *id);
/* The pending wait of pid, or NULL. */
const evs_wait_state *evs__drive_pending_wait(const evs_replay *rp,
                                              evs_span pid);

/* drive_branch.c */
/* Writes {"type":..,"message":..,"retryable":..} to b. */
void evs__drive_error_json(evs__jbuf *b, const char *type, evs_span msg,
                           int retryable);
/* Records the cancellation of every live path of the tree rooted at
 * `root` (of every live path, when root is empty), with an error of type
 * `cancelled` saying why. Returns 0, or what recording returned. */
int evs__drive_cancel_paths(orch_exec *x, evs_span root, evs_span why);
/* Records pid's failure with `error` (JSON), and the execution's unless
 * a join may judge it. */
void evs__drive_fail_path(orch_exec *x, evs_span pid, evs_span error);
/* Records a failed attempt, then a retry or the path's failure. */
void evs__drive_step_failure(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             int64_t iter, uint32_t attempt, const char *type,
                             evs_span msg, int retryable);
/* Records step S's completion on pid with `output`. */
void evs__drive_complete_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                              int64_t iter, evs_span output);
/* Follows S's edges from pid, which has finished it. */
void evs__drive_advance(orch_exec *x, evs_span pid, const evs_wf_step *S);

#endif /* EVS_DRIVE_INT_H */
