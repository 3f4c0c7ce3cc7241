/*
 * evstore/inspect.h: read-only views of a store as JSON text, for
 * bindings that read a store without mirroring the C structs (a Python
 * SDK through ctypes, an HTTP API): every argument is a NUL-terminated
 * string or an integer, and every result is one JSON document.
 *
 * The views are the tools' own: a listing row is what `evdump ls --json`
 * prints for it, an event is its log line as `evdump show --json` prints
 * it, a state is evs_replay_state_json's, and a chain is what `evdump
 * chain` shows. evdump prints the listing and the chain through these
 * functions, so each view is written in one place.
 *
 * What every function here shares:
 *  - `s` is an open store and `out` is not NULL (else -EINVAL). On
 *    success *out is a NUL-terminated, compact JSON document, owned by
 *    the caller, allocated with the store's allocator: free it with
 *    evs_free(evs_store_allocator(s), *out). On failure *out is NULL.
 *  - `err` (may be NULL) is cleared on entry and, on failure, filled as
 *    common.h says: the code returned, a one-line message, and what it
 *    is about (the execution, the sequence and byte offset of damage).
 *  - A time is an RFC 3339 string with microseconds
 *    ("2026-11-22T10:15:30.123456Z"), or null when unset (0).
 *  - None takes a lock or writes to an execution, so any thread or
 *    process may call them while a writer appends; a call sees the log
 *    as it was when it opened it. Thread-safe as the store is.
 */
#ifndef EVSTORE_INSPECT_H
#define EVSTORE_INSPECT_H

#include "replay.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Lists the executions of the store, in evs_exec_list's order (by
 * creation time, then id), as
 *
 *     {"total":N,"items":[ITEM,...]}
 *
 * `total` counting the matches before `offset` and `limit`. An ITEM is
 * the object `evdump ls --json` prints for a row, these members in this
 * order:
 *
 *     {"id":S,"status":S,"workflow_name":S,"created_at":T,
 *      "updated_at":T,"start_time":T,"end_time":T,"last_event_seq":N,
 *      "snapshot_ok":true}
 *
 * and, for an execution whose snapshot is missing or damaged (listed
 * only when the filter has no status, workflow or time condition), the
 * same members all null but the id, and "snapshot_ok":false.
 *
 * `filter_json` (NULL or "" for none) is a JSON object whose members
 * are all optional (null is the same as absent):
 *   "status"          a status string ("running", "completed", ...)
 *   "workflow"        a workflow name
 *   "created_after"   created at or after: µs since the epoch (an
 *                     integer) or an RFC 3339 string
 *   "created_before"  created before: likewise
 *   "offset", "limit" non-negative integers: rows to skip, and at most
 *                     how many to give (0: no limit)
 * An empty string and a time of 0 set no condition (evs_list_filter).
 * Anything else is refused with EVS_EPARSE and err->kind "filter": text
 * that is not JSON, not an object, a member of the wrong type, a member
 * given twice, and any other member, which the message names.
 *
 * Returns 0, -EINVAL, EVS_EPARSE, -ENOMEM or what evs_exec_list returns.
 */
EVS_EXTERN int evs_inspect_list(evs_store *s, const char *filter_json,
                                char **out, evs_error_info *err);

/**
 * The events `from` through `to` of execution `id` (from 0: 1; to 0 or
 * past the end: the last) as one JSON array, in sequence order, whose
 * elements are the log's lines as `evdump show --json` prints them (each
 * line without its newline: an object with the members of FORMAT.md §2,
 * in that order, checksum included). A `from` past the end gives [].
 * Every line is verified as it is read; damage fails the whole call
 * with EVS_ECORRUPT, err giving its sequence, byte offset and kind, and
 * is never skipped. The array is built in memory: page through a long
 * log with from and to.
 * Returns 0, -EINVAL (to before from), EVS_EBADID, -ENOENT,
 * EVS_ECORRUPT, EVS_EFORMAT, -ENOMEM or what evs_log_open returns.
 */
EVS_EXTERN int evs_inspect_events(evs_store *s, const char *id, uint64_t from,
                                  uint64_t to, char **out, evs_error_info *err);

/**
 * The replayed state of execution `id` as of sequence `at` (0: its
 * end), as the canonical state JSON of evs_replay_state_json (FORMAT.md
 * §6.2). The replay is strict and in full mode, and starts from the
 * execution's snapshot when evs_replay_open can use it (a snapshot a
 * full replayer can load, not past `at`), else from sequence 1.
 * Returns 0, -EINVAL (`at` past the end; the message gives the last
 * sequence), EVS_EBADID, -ENOENT, EVS_EHISTORY (a broken history rule:
 * err names the rule and the sequence), EVS_ECORRUPT, -ENOMEM or what
 * evs_replay_open returns.
 */
EVS_EXTERN int evs_inspect_state(evs_store *s, const char *id, uint64_t at,
                                 char **out, evs_error_info *err);

/**
 * The lineage of execution `id` as `evdump chain` shows it: from the
 * first execution its lineage reaches (each names the one it continues
 * or retries in execution_started's `lineage`), down through everything
 * that continues or retries any of them, as a JSON array in the order
 * of a depth-first walk (an execution, then what continues or retries
 * it, each in the listing's order):
 *
 *     [{"id":S,"status":S,"started_at":T,"last_event_seq":N,
 *       "depth":N,"origin":S,"link":S,"archived":S},...]
 *
 * `depth` is 0 for the first and one more for each link below it;
 * `origin` is the execution it continues or retries (null for none: a
 * first element with an origin continues or retries one that is not in
 * the store); `link` is "continued", the retry's strategy, or "retry"
 * when the lineage names none (null for none); `archived` is the file
 * name of the bundle an execution was archived to and deleted from the
 * store (evstore/archive.h), read from the store's record of it, null
 * for one that is in the store. An archived execution is followed like
 * the others, `id` itself included. A lineage that loops
 * (damage) is cut: nothing deeper than depth 1001 is given.
 *
 * Retries are not recorded with their origin, so this replays every
 * execution of the store (from its snapshot where it can): it costs a
 * listing and one replay per execution. Executions that cannot be read
 * are left out, but `id` itself must be: its failure is the call's.
 * Returns 0, -EINVAL, EVS_EBADID, -ENOENT, -ENOMEM, or what
 * evs_exec_list or evs_replay_open return for `id`.
 */
EVS_EXTERN int evs_inspect_chain(evs_store *s, const char *id, char **out,
                                 evs_error_info *err);

/**
 * The status of execution `id` as its log has it now, as `evrun status
 * --json` prints it, these members in this order:
 *
 *     {"id":S,"status":S,"workflow_name":S,"last_event_seq":N,
 *      "start_time":T,"end_time":T,"live_paths":N,"pending_waits":N,
 *      "pending_timers":N,"outputs":J,"error":J,
 *      "failed_at":{"path":S,"step":S,"iteration":N,"seq":N} or null,
 *      "inputs":J,"lineage":{...},"continued_as":S or null,
 *      "paused":C,"resumed":C,"terminated":C}
 *
 * J being JSON or null; `iteration` is -1 when the failed step is not
 * an `each` iteration; `lineage` is execution_started's (FORMAT.md: its
 * continued_from, retry_of, strategy...), {} when it has none. Each C is
 * {"at":T,"by":S or null,"reason":J,"step":S or null,"seq":N} or null:
 * the last pause (kept after its unpause; `step` is the step it was at),
 * the last unpause and the termination, with who asked and why (null
 * when the history does not record it, evstore/replay.h's
 * evs_control_state). The
 * replay is compact and starts from the snapshot when it can.
 * Returns 0, -EINVAL, EVS_EBADID, -ENOENT, EVS_EHISTORY (err names the
 * rule and the sequence), EVS_ECORRUPT, -ENOMEM or what evs_replay_open
 * returns.
 */
EVS_EXTERN int evs_inspect_status(evs_store *s, const char *id, char **out,
                                  evs_error_info *err);

/**
 * The object of evs_inspect_status for an execution a replayer holds
 * (replayed in either mode, to any sequence). *out (NUL-terminated, the
 * NUL not counted in *out_len, which may be NULL) is allocated with
 * `alloc` (NULL: the C library's) and owned by the caller: free it with
 * evs_free(alloc, *out). Returns 0, -EINVAL (r or out NULL) or -ENOMEM.
 */
EVS_EXTERN int evs_replay_status_json(const evs_replay *r,
                                      const evs_allocator *alloc, char **out,
                                      size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_INSPECT_H */
