/*
 * takeover.h: what a runner records when it takes over an execution
 * another runner wrote (FORMAT.md §6, execution_taken_over and
 * step_redispatched). Published by the replay layer, which checks these
 * events, to the two engines above it (orchestrator/ and run/), which
 * both take executions over after a crash.
 */
#ifndef EVS_TAKEOVER_H
#define EVS_TAKEOVER_H

#include "evstore/replay.h"
#include "formats_shared.h"

/* Who a runner is: an id made when its handle is made (a UUIDv7, so
 * two runners never share one, even on two hosts or after a pid is
 * reused), its host's name and its process id. */
typedef struct evs__runner {
    char id[EVS_UUID_LEN + 1];
    char host[65]; /* empty if the host has no name */
    long pid;
} evs__runner;

/* Makes this process's runner identity for a new handle. Returns 0 or
 * what evs_uuid7 returns. */
int evs__runner_init(evs__runner *me);

/* Appends the data of execution_taken_over to d: runner `me` takes over
 * a log whose last sequence is from_seq, replayed into st (whose runner,
 * if any, is named as the previous one). Failures stay in d->err. */
void evs__takeover_data(evs__jbuf *d, const evs__runner *me,
                        const evs_exec_state *st, uint64_t from_seq);

/* Appends the data of step_redispatched to d: attempt `attempt` of a
 * step (iteration -1 outside `each`) handed out again with idempotency
 * key `key` by the takeover recorded at takeover_seq. */
void evs__redispatch_data(evs__jbuf *d, uint32_t attempt, int64_t iteration,
                          evs_span key, uint64_t takeover_seq);

#endif /* EVS_TAKEOVER_H */
