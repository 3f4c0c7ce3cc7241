/*
 * hist_limits.h: an execution's history limits (store.h, "History limits";
 * FORMAT.md §3.1) as its writer applies them: the store's, lowered by
 * the execution's own (a definition's `history_limits`, a run's
 * option). Published by the replay layer to the two engines above it
 * (orchestrator/ and run/), which both record history_warning and fail
 * an execution at its limit.
 */
#ifndef EVS_HIST_LIMITS_H
#define EVS_HIST_LIMITS_H

#include "evstore/replay.h"
#include "evstore/workflow.h"
#include "formats_shared.h"

/* The limits that hold for one execution; EVS_LIMIT_NONE for none. */
typedef struct evs__limits {
    uint64_t warn_events, warn_bytes;
    uint64_t max_events, max_bytes;
} evs__limits;

/* The limits of an execution of store s whose own are `own` (NULL: none
 * of its own): a hard limit of its own only lowers the store's; a
 * warning threshold of its own replaces the store's. */
void evs__limits_resolve(const evs_store *s, const evs_wf_limits *own,
                         evs__limits *out);

/* Whether a history of `events` events and `bytes` bytes is past the hard
 * limit: 1 with the reason in msg[0..cap) ("history of N events would
 * pass the limit of M events"), else 0. */
int evs__limits_past(const evs__limits *l, uint64_t events, uint64_t bytes,
                     char *msg, size_t cap);

/* Whether the warning is due for a history of `events` events and
 * `bytes` bytes whose state is `st` (none recorded yet, a threshold
 * reached): 1 with the event's data in *d (appended) and the line to log
 * in msg[0..cap), else 0. */
int evs__limits_warning(const evs__limits *l, const evs_exec_state *st,
                        uint64_t events, uint64_t bytes, evs__jbuf *d,
                        char *msg, size_t cap);

/* The error of an execution failed at its limit, {type, message,
 * retryable}, appended to d. */
void evs__limits_error(evs__jbuf *d, const char *msg);

/* Logs through store s's log hook (store.h) as component "run", naming
 * `execution`, for the layers that have no hook of their own (run/). */
void evs__limits_log(evs_store *s, evs_log_level lvl, const char *execution,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The error type of that failure. */
#define EVS__LIMIT_ERROR_TYPE "history_limit"

#endif /* EVS_HIST_LIMITS_H */
