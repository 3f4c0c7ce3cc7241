/*
 * lineage.h: chains of executions that continued as new, the ids of
 * successors, and posting a request along a chain. Published by the
 * replay layer to the two engines above it (orchestrator/ and run/),
 * which both continue executions as new and take requests.
 */
#ifndef EVS_LINEAGE_H
#define EVS_LINEAGE_H

#include "evstore/replay.h"
#include "formats_shared.h"

/* A walk along a chain: from a member to its successor, and so on, with
 * Brent's loop check. */
typedef struct evs__chain {
    char id[EVS_ID_MAX + 1]; /* the member reached */
    size_t id_len;
    char prev[EVS_ID_MAX + 1]; /* the one before it, once it moved */
    char mark[EVS_ID_MAX + 1]; /* a member passed, to meet again */
    uint64_t power, steps;
} evs__chain;

/* A compact replayer on the store's allocator: what reading an
 * execution's own record needs (a walk along a chain, a lineage). Returns
 * 0 or -ENOMEM. */
int evs__compact_replayer(evs_store *s, evs_replay **out);

/* Starts at `id`. Returns 0 or EVS_EBADID. */
int evs__chain_init(evs__chain *c, evs_span id);

/* Moves c to the successor of the member reached, whose replayed state
 * is rp. Returns 1 (moved), 0 (it has not continued as new, or names no
 * successor), EVS_EHISTORY (the successor is not a valid id, or the
 * chain loops). */
int evs__chain_next(evs__chain *c, const evs_replay *rp);

/* Follows c to the first member that has not continued as new, reading
 * each from store s without owning it; *rp (owned, compact, with the
 * store's allocator) gets that member's replayed state. Returns 0,
 * EVS_EHISTORY, or what evs_replay_open returns (such as -ENOENT). */
int evs__chain_last(evs_store *s, evs__chain *c, evs_replay **rp);

/* The successor of `id`: "id.c2", or "base.c<n+1>" for "base.c<n>".
 * When that would pass EVS_ID_MAX, the base is cut and followed by
 * "-<16 hex>", the checksum of the whole base, which keeps successors
 * of different long ids apart. Deterministic: a writer that crashed
 * between creating the successor and ending finds the same one. */
void evs__successor_id(const char *id, char out[EVS_ID_MAX + 1]);

/* Whether execution `succ` exists and continued from `pred` (its
 * lineage's continued_from): a successor made before a crash. */
int evs__is_successor_of(evs_store *s, const char *succ, const char *pred);

/* A request body: {"kind":K[,"type":T][,"payload":P][,"by":B]}
 * (FORMAT.md §13). Returns 0, -EINVAL (payload is not JSON, by is not
 * UTF-8 or longer than EVS_BY_MAX) or -ENOMEM. */
int evs__request_body(evs__jbuf *b, evs_span kind, evs_span type,
                      evs_span payload, evs_span by);

/* Appends to d the `data` of the event a control request's body (pause,
 * unpause, terminate) is recorded as, for both engines alike:
 * {"reason":P,"by":B}, each null when the body has none (FORMAT.md §6).
 * A failed allocation is left in d->err. */
void evs__request_control_data(evs__jbuf *d, evs_span body);

#endif /* EVS_LINEAGE_H */
