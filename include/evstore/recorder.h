/*
 * evstore/recorder.h: buffered, sequenced recording of events.
 *
 * The recorder sits on a writer's log. It assigns each event its sequence,
 * id and timestamp, keeps events in a buffer, and appends the buffer as one
 * atomic append when asked, when the buffer is full, or when an interval
 * has passed (evs_recorder_tick, which the orchestrator drives from its
 * loop). It never drops an event: a failed flush keeps the buffer and
 * reports the error, and after a failed sync the log returns
 * EVS_EPOISONED until it is reopened.
 *
 * In replay mode it records nothing: record calls succeed and do nothing,
 * so code that re-runs a history does not write it twice.
 *
 * A recorder is not thread-safe; use it from one thread (the loop).
 *
 * What to record. The store takes any well-formed event in sequence; it
 * is replay that judges a history, by the rules of FORMAT.md §6.1, and a
 * history it refuses cannot be resumed, retried or shown as state. A
 * valid history:
 *  - begins with execution_started (give it to evs_exec_create, so that
 *    the execution never exists without it); its path_id is the root
 *    path ("main" when empty);
 *  - names on every event a path that exists and has not ended
 *    (path_branched or path_started create others);
 *  - starts a step (step_started) before it completes or fails, and
 *    never starts it again once it completed;
 *  - ends with at most one terminal event (execution_completed,
 *    _failed, _terminated or _continue_as_new), after which nothing is
 *    recorded.
 * FORMAT.md §6 gives each type's `data`; the EVS_EV_* names are in
 * evstore/format.h.
 *
 * The listing. evs_exec_list (and `evdump ls`) shows what each
 * execution's snapshot says: status, workflow, last sequence. The
 * recorder writes no snapshot, so after recording by hand the listing
 * stays as of the last one saved (for a new execution: "running", at the
 * sequence it was created with) until the caller saves another: replay
 * the log and call evs_replay_snapshot (which checks the history on the
 * way), or fill an evs_snapshot and call evs_snapshot_save. The
 * orchestrator does this by itself. examples/record.c shows the whole
 * path.
 */
#ifndef EVSTORE_RECORDER_H
#define EVSTORE_RECORDER_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_recorder evs_recorder;

typedef struct evs_recorder_opts {
    size_t size;          /* set by evs_recorder_opts_init (common.h,
                               "Options structs") */
    size_t batch_events;  /* flush when this many are buffered; default
                               64; 1 flushes every record */
    size_t batch_bytes;   /* or when the buffered lines reach this many
                               bytes; default 1 MiB */
    uint32_t interval_ms; /* evs_recorder_tick flushes events buffered
                               this long; default 10 */
} evs_recorder_opts;

/**
 * Fills *o with the defaults above and o->size with sizeof(*o). Always
 * call it before setting fields (common.h, "Options structs"). `o` must
 * not be NULL. Thread-safe.
 */
EVS_EXTERN void evs_recorder_opts_init(evs_recorder_opts *o);

/**
 * Makes a recorder on `log`, which must be open for writing and must
 * outlive the recorder. `opts` may be NULL (the defaults); it is copied
 * (up to opts->size, common.h). Sequences continue from the log's last
 * sequence.
 * Returns 0, EVS_EREADONLY, -EINVAL (opts not filled in by
 * evs_recorder_opts_init) or -ENOMEM.
 */
EVS_EXTERN int evs_recorder_open(evs_log *log, const evs_recorder_opts *opts,
                                 evs_recorder **out);

/**
 * Records one event: copies it into the buffer, giving it the next
 * sequence, a UUIDv7 id if `ev->id` is empty and the current time if
 * `ev->timestamp_us` is 0. `ev` is not modified and may be freed after
 * the call. Sets *seq (may be NULL) to the sequence given, or to 0 in
 * replay mode.
 *
 * If the buffer is then full it is flushed, and a failed flush is
 * returned (the event stays buffered, and will be written by a later
 * successful flush).
 *
 * The event is encoded here as the flush will encode it, so a bad event
 * is refused now rather than blocking a later flush: -EINVAL for a bad
 * field (`data` that is not one valid JSON value included), EVS_ETOOBIG
 * when its line (with room for the batch field, about 52 bytes) would
 * exceed the store's max_line. `data` is checked here only: the recorder
 * keeps its compact form, which the flush copies into the log's lines
 * without checking it again.
 *
 * Returns 0, -EINVAL (bad event), EVS_ETOOBIG, -ENOMEM, or what a flush
 * returns.
 */
EVS_EXTERN int evs_recorder_record(evs_recorder *r, const evs_event *ev,
                                   uint64_t *seq);

/**
 * Appends every buffered event in one atomic append. On failure the buffer
 * is kept for the next flush, and the error is returned; on EVS_EPOISONED
 * reopen the log and hand it over with evs_recorder_set_log().
 * Returns 0, -EBUSY (a batch of evs_recorder_flush_begin is out) or what
 * evs_log_append returns.
 */
EVS_EXTERN int evs_recorder_flush(evs_recorder *r);

/** evs_recorder_flush with the flags of evs_log_append_flags
 *  (EVS_APPEND_NO_SYNC: written, not synced). -EINVAL for an unknown
 *  flag. */
EVS_EXTERN int evs_recorder_flush_flags(evs_recorder *r, unsigned flags);

typedef struct evs_recorder_batch evs_recorder_batch;

/**
 * A flush in three parts, for an event loop whose thread must never wait
 * on fsync:
 *
 *  evs_recorder_flush_begin (the recorder's thread) detaches every
 *      buffered event into *out (NULL when nothing is buffered). Records
 *      go on meanwhile, into a fresh buffer, with the sequences after the
 *      batch's; they are not flushed by themselves (batch limits and
 *      ticks wait) until the batch has ended.
 *  evs_recorder_flush_run (any one thread, e.g. a threadpool worker)
 *      appends the batch, as evs_recorder_flush would, and returns the
 *      result.
 *  evs_recorder_flush_end (the recorder's thread again) takes the
 *      result back and frees the batch. What the log does not hold goes
 *      back in front of the buffer for the next flush, so nothing is
 *      dropped.
 *
 * One batch at a time: begin and evs_recorder_flush return -EBUSY while
 * one is out. Every batch begun must be ended before close.
 * begin returns 0 or -ENOMEM; run and end return what the append
 * returned (end: -ENOMEM if the unflushed events could not be kept).
 */
EVS_EXTERN int evs_recorder_flush_begin(evs_recorder *r,
                                        evs_recorder_batch **out);

/** Appends the batch `b` (from evs_recorder_flush_begin, not NULL) to
 *  its log, on any one thread, while the recorder goes on. Returns what
 *  the append returned (0, EVS_EPOISONED, ...), which end returns too. */
EVS_EXTERN int evs_recorder_flush_run(evs_recorder_batch *b);

/**
 * evs_recorder_flush_run, the batch's last append carrying the
 * execution's snapshot `snap` as evs_log_append_snapshot does (store.h):
 * on PostgreSQL one statement, on SQLite one transaction, on files the
 * append and then the save.
 * `flags`: 0, or EVS_APPEND_RELEASE when the batch is the writer's last
 * append (the lease given up with it; store.h), -EINVAL otherwise.
 * NULL `snap`: no snapshot. snap->last_event_seq must be at most the
 * batch's last sequence. Returns what the append returned; *snap_rc
 * (may be NULL) gets what the save returned, or 1 when the append
 * failed or no snapshot was given.
 */
EVS_EXTERN int evs_recorder_flush_run_snapshot(evs_recorder_batch *b,
                                               unsigned flags,
                                               const evs_snapshot *snap,
                                               unsigned snap_flags,
                                               int *snap_rc);

/** On the recorder's thread, after flush_run: takes the result of `b`
 *  back, keeps what the log does not hold for the next flush, and frees
 *  `b` (consumed, whatever is returned). Returns the append's result, or
 *  -ENOMEM when the unflushed events could not be kept (they are lost,
 *  and the log hook says so). */
EVS_EXTERN int evs_recorder_flush_end(evs_recorder *r, evs_recorder_batch *b);

/**
 * Moves the recorder, with its buffer, to `log`: a reopened writer of the
 * same execution, after the old handle was poisoned. The old handle still
 * holds the execution's lock, so: close the old log, open a new writer,
 * then call this. Nothing buffered is lost; a flush that reached the disk
 * before the failure is acknowledged by the new log without being written
 * twice (the ids are kept).
 * Returns 0, EVS_EREADONLY, or EVS_ECONFLICT if `log` belongs to another
 * execution or ends before what the recorder knows was flushed.
 */
EVS_EXTERN int evs_recorder_set_log(evs_recorder *r, evs_log *log);

/**
 * The interval hook: flushes if the oldest buffered event has waited at
 * least interval_ms as of `now_us` (0: now). Returns what a flush
 * returns, or 0 when nothing was due.
 */
EVS_EXTERN int evs_recorder_tick(evs_recorder *r, int64_t now_us);

/** Turns replay mode on (1) or off (0). In replay mode
 *  evs_recorder_record records nothing and returns 0 (with *seq 0): the
 *  events being replayed are already in the log. */
EVS_EXTERN void evs_recorder_set_replay(evs_recorder *r, int on);

/** 1 while replay mode is on (evs_recorder_set_replay), else 0. */
EVS_EXTERN int evs_recorder_replaying(const evs_recorder *r);

/** Sequence of the last recorded event, buffered or not. */
EVS_EXTERN uint64_t evs_recorder_last_seq(const evs_recorder *r);

/** Sequence of the last event appended to the log. */
EVS_EXTERN uint64_t evs_recorder_flushed_seq(const evs_recorder *r);

/** Number of events waiting in the buffer. */
EVS_EXTERN size_t evs_recorder_pending(const evs_recorder *r);

/**
 * At most how many bytes the events recorded and not yet known to be in
 * the log (buffered, or in a batch out with evs_recorder_flush_begin)
 * will add to it: their lines, with room for the batch field each. With
 * evs_log_size, what a writer compares with its history limits
 * (store.h, "History limits") before it records more.
 */
EVS_EXTERN uint64_t evs_recorder_pending_bytes(const evs_recorder *r);

/**
 * Drops every buffered event, unwritten: for a writer that gives up a
 * decision half recorded (an event of it could not be built or
 * recorded), so that no part of it reaches the log. A batch out with
 * evs_recorder_flush_begin is not touched. Sequences go on from the last
 * event flushed or in flight. Returns how many events were dropped.
 */
EVS_EXTERN size_t evs_recorder_discard(evs_recorder *r);

/**
 * Flushes what is still buffered, then frees the recorder. Call
 * evs_recorder_flush first to learn whether that succeeds: if the flush
 * made here fails, the events are lost and the log hook is told how many.
 * Accepts NULL.
 */
EVS_EXTERN void evs_recorder_close(evs_recorder *r);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_RECORDER_H */
