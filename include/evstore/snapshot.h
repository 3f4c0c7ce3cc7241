/*
 * evstore/snapshot.h: the snapshot record and its codec.
 *
 * A snapshot is a cache of an execution's state as of `last_event_seq`.
 * The log stays the truth; a missing, damaged or stale snapshot is rebuilt
 * from it. FORMAT.md, "The snapshot file", gives the exact bytes: a header
 * line with the small fields (what listing reads) and a body line with the
 * large ones, each with its own checksum.
 */
#ifndef EVSTORE_SNAPSHOT_H
#define EVSTORE_SNAPSHOT_H

#include "format.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The fields of a snapshot. Spans are borrowed (encoding) or point into
 * the owning allocation (decoding). Times are µs since the epoch, UTC; 0
 * means "not set" and is written as null. The JSON fields hold compact
 * JSON text; an empty span is written as null.
 *
 * The field names are Dive's, plus `lineage` (links to the executions
 * this one continues or retries) and `state` (the replayed state, owned
 * by the replay layer). `status` is free text to this layer; the upper
 * layers use "running", "waiting", "paused", "completed", "failed",
 * "terminated" and "continued".
 */
typedef struct evs_snapshot {
    evs_span id;
    evs_span workflow_name;
    evs_span workflow_hash;
    evs_span inputs_hash;
    evs_span status;
    int64_t start_time_us;
    int64_t end_time_us;
    int64_t created_at_us;
    int64_t updated_at_us;
    uint64_t last_event_seq;
    evs_span workflow_data;
    evs_span inputs;
    evs_span outputs;
    evs_span error;
    evs_span lineage;
    evs_span state;
} evs_snapshot;

/** The header line (the small fields) is at most this many bytes. */
#define EVS_SNAPSHOT_HEADER_MAX ((size_t)64 << 10)

/**
 * Encodes `s` into a newly allocated buffer (*out, *out_len), allocated
 * with `alloc` (NULL: the C library's) and owned by the caller: free it
 * with evs_free(alloc, *out) (common.h). Thread-safe.
 * Returns 0, -EINVAL (an id that fails evs_id_valid(), invalid UTF-8, a
 * JSON field that is not valid JSON, a time out of range, a header line
 * longer than EVS_SNAPSHOT_HEADER_MAX) or -ENOMEM;
 * *out and *out_len are then untouched.
 */
EVS_EXTERN int evs_snapshot_encode(const evs_snapshot *s,
                                   const evs_allocator *alloc, char **out,
                                   size_t *out_len);

enum {
    /** Decode and check only the header line; the JSON fields of the
     *  body are left empty. */
    EVS_SNAPSHOT_HEADER_ONLY = 1u << 0,
    /** Hand the `state` field (the body's last) on as the rest of the
     *  body's checksummed part without looking into it: for a caller that
     *  checks the state as it parses it, as the replay layer does
     *  (evs_replay_load_state refuses what is not a state). It saves a
     *  pass over what is most of a large snapshot. Both checksums are
     *  verified all the same, and the other fields are decoded as
     *  without the flag; only a body whose checksums match but whose
     *  state is not one JSON value (a writer's bug) gets through. */
    EVS_SNAPSHOT_STATE_RAW = 1u << 1,
    /** For evs_snapshot_save_flags and evs_exec_create_flags (store.h):
     *  the snapshot is a cache that its log can rebuild (as every
     *  snapshot the orchestrator and durable functions write is: the
     *  replayer makes it from the log), so it is written without a sync
     *  of its own. A power loss may then leave the previous snapshot or
     *  a damaged one; a reader detects the damage (checksums) and
     *  rebuilds from the log. Nothing in the log is weakened. */
    EVS_SNAPSHOT_CACHE = 1u << 2,
};

/**
 * Decodes a snapshot file's bytes. Checks both checksums, the binding of
 * the body to the header and the version. On success *out is a single
 * allocation (free it with evs_snapshot_free) whose spans point into
 * itself.
 *
 * With EVS_SNAPSHOT_HEADER_ONLY the buffer may end anywhere after the
 * header line. A JSON field whose text is `null` reads back as an empty
 * span. The allocator struct is copied; only its `ctx` must outlive the
 * snapshot.
 *
 * Returns 0, EVS_ECORRUPT (info->kind "checksum", or "binding" when the
 * body is not the one the header names), EVS_EPARSE (malformed, kind
 * "syntax"), EVS_EFORMAT (newer version, kind "version"), -EINVAL (NULL
 * out) or -ENOMEM. info->offset is 0 for a header problem and the
 * header's length for a body problem.
 */
EVS_EXTERN int evs_snapshot_decode(const char *buf, size_t len, unsigned flags,
                                   const evs_allocator *alloc,
                                   evs_snapshot **out, evs_error_info *info);

/**
 * Copies `src` and every byte its spans point to into one allocation,
 * freed with evs_snapshot_free: a snapshot that no longer depends on the
 * memory it was built from (to save it from another thread).
 * Returns 0 or -ENOMEM.
 */
EVS_EXTERN int evs_snapshot_copy(const evs_snapshot *src,
                                 const evs_allocator *alloc,
                                 evs_snapshot **out);

/** Frees a decoded or copied snapshot (with the allocator it was made
 *  with).
 *  Accepts NULL. */
EVS_EXTERN void evs_snapshot_free(evs_snapshot *s);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_SNAPSHOT_H */
