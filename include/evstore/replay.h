/*
 * evstore/replay.h: rebuilding an execution's state from its events.
 *
 * A replayer applies events one at a time, in sequence order, and keeps
 * the state they describe: the execution's status, inputs and outputs;
 * its paths; each step's attempts, outputs and errors (the failure point
 * among them); variables; `each` iterations; signals received and
 * consumed; version decisions; pending timers, waits and retries; and the
 * lineage. It checks every event against the history rules of FORMAT.md
 * ("History rules") as it goes.
 *
 * The state can be written as canonical JSON and read back, which is what
 * snapshots hold: replaying a snapshot's state plus the events after it
 * gives exactly the state of a replay from sequence 1.
 *
 * Two modes (evs_replay_opts.compact). The full mode, the default, keeps
 * the state of the whole history, for the tools that show it. The
 * compact mode keeps only what the run can still use, so that its state,
 * and the snapshot that holds it, stop growing with the history:
 *  - the steps of an ended path go, except those failed for good (the
 *    failure point may still move back to one); what later steps read
 *    from them stays in the path's `last_output` and in the step-name
 *    records (evs_replay_stepname);
 *  - the `each` records of an ended path go;
 *  - an ended wait, a fired or cancelled timer and a consumed signal go;
 *    of a consumed signal only its id stays, so that a request taken
 *    twice is still recognised (evs_replay_signal_received);
 *  - a step that is not running keeps no input (only a running attempt
 *    is run again with it).
 * Both modes check the same rules, so a history is valid in one exactly
 * when it is valid in the other (in tolerant mode, past a first
 * violation, they may judge later events differently: an event on an
 * ended path finds its step in the full state only). A compact state
 * can only be loaded by a compact replayer; a full state loaded by a
 * compact replayer is compacted as it loads. The orchestrator replays in
 * compact mode.
 *
 * Lifecycle: evs_replay_new -> evs_replay_apply (or evs_replay_run over a
 * log) -> accessors -> evs_replay_free. A replayer is not thread-safe.
 * Everything an accessor returns is borrowed: valid until the next apply,
 * load or free on that replayer.
 */
#ifndef EVSTORE_REPLAY_H
#define EVSTORE_REPLAY_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_replay evs_replay;

/** Execution status. The names are the snapshot's `status` strings. */
typedef enum evs_exec_status {
    EVS_STATUS_PENDING = 0, /* "pending": nothing applied yet */
    EVS_STATUS_RUNNING,     /* "running" */
    EVS_STATUS_WAITING,     /* "waiting": every live path waits on an
                                event, a timer or a retry */
    EVS_STATUS_PAUSED,      /* "paused" */
    EVS_STATUS_COMPLETED,   /* "completed" */
    EVS_STATUS_FAILED,      /* "failed" */
    EVS_STATUS_TERMINATED,  /* "terminated" */
    EVS_STATUS_CONTINUED    /* "continued": continued as new */
} evs_exec_status;

/** Name of a status ("running", ...); never NULL. */
EVS_EXTERN const char *evs_exec_status_name(evs_exec_status s);

/* A path that branches goes on (it forks the new paths; a `join` step
 * on it may then wait for them), so branching is not a status. */
typedef enum evs_path_status {
    EVS_PATH_ACTIVE = 0, /* "active" */
    EVS_PATH_WAITING,    /* "waiting" */
    EVS_PATH_COMPLETED,  /* "completed" */
    EVS_PATH_FAILED,     /* "failed" */
    EVS_PATH_CANCELLED   /* "cancelled": ended by another path's outcome
                            (it lost an `any` or `race` join, or the
                            execution failed or was terminated) */
} evs_path_status;

/** Name of a path status ("active", ...); "unknown" for a value out of
 *  range, never NULL. Static; thread-safe. */
EVS_EXTERN const char *evs_path_status_name(evs_path_status s);

typedef enum evs_step_status {
    EVS_STEP_RUNNING = 0, /* "running": started, no outcome yet */
    EVS_STEP_COMPLETED,   /* "completed" */
    EVS_STEP_FAILED,      /* "failed": for good (no retry scheduled) */
    EVS_STEP_RETRYING,    /* "retrying": failed, a retry is scheduled */
    EVS_STEP_SKIPPED,     /* "skipped": given an output without running */
    EVS_STEP_CANCELLED    /* "cancelled": running or retrying when its
                             path was cancelled; never run again */
} evs_step_status;

/** Name of a step status ("running", ...); "unknown" for a value out of
 *  range, never NULL. Static; thread-safe. */
EVS_EXTERN const char *evs_step_status_name(evs_step_status s);

/**
 * One control request as the history records it: a pause
 * (execution_paused), an unpause (execution_resumed) or a termination
 * (execution_terminated), FORMAT.md §6. Spans are borrowed from the
 * replayer, as every span of the state.
 */
typedef struct evs_control_state {
    uint64_t seq;    /* the event's sequence; 0: none recorded */
    int64_t at_us;   /* the event's timestamp (µs since the epoch) */
    evs_span by;     /* who asked (free text); empty if not recorded */
    evs_span reason; /* why: compact JSON (often a string); empty if none */
    evs_span step;   /* a pause: the step its execution was at (the
                        current step of the first live path); empty
                        otherwise, or if no path had one */
} evs_control_state;

/** The execution as a whole. JSON spans are compact JSON, empty if none. */
typedef struct evs_exec_state {
    evs_exec_status status;
    evs_exec_status status_before_pause; /* meaningful while PAUSED */
    evs_span execution_id;
    evs_span workflow_name;
    evs_span inputs;
    evs_span outputs;
    evs_span error;
    evs_span definition; /* the definition it runs, if recorded */
    evs_span definition_hash;
    evs_span inputs_hash;
    evs_span lineage;      /* {"continued_from":..,"retry_of":..,..} */
    evs_span continued_as; /* successor, once continued as new */
    int64_t started_at_us;
    int64_t ended_at_us;
    uint64_t last_seq; /* last event applied */
    /* The failure point: the last step that failed for good. */
    evs_span failed_path;
    evs_span failed_step;
    int64_t failed_iteration; /* -1 if none or not an `each` step */
    uint64_t failed_seq;      /* 0 if nothing failed */
    /* Takeovers (execution_taken_over, FORMAT.md §6): how many the
     * history records, the last one's sequence (0 if none) and the
     * runner it names, the execution's owner since then (empty if no
     * takeover is recorded: the runner that started it). */
    uint64_t takeovers;
    uint64_t takeover_seq;
    evs_span runner;
    /* The sequence of the first history_warning (FORMAT.md §3.1): the
     * history passed a warning threshold; 0 if none. */
    uint64_t history_warning_seq;
    /* Who paused, unpaused and terminated it, and why: the last
     * execution_paused, the last execution_resumed and the
     * execution_terminated (seq 0 if none). The last pause is kept after
     * its unpause. */
    evs_control_state paused;
    evs_control_state resumed;
    evs_control_state terminated;
} evs_exec_state;

typedef struct evs_path_state {
    evs_span id;
    evs_span parent;        /* empty for a root path */
    evs_path_status status; /* WAITING while `pending` > 0 */
    uint32_t pending;       /* waits, timers and scheduled retries
                                 holding the path */
    evs_span current_step;
    evs_span error;
    uint64_t started_seq;
    uint64_t ended_seq; /* 0 while live */
    /* The output of the last step completed or skipped on the path (an
     * `end` step aside: it has no output of its own; an `each` step's is
     * the array of its iterations' outputs, set when the whole step
     * completes, not by each iteration), and the sequence of that event;
     * 0 if none. A join reads its branches' outputs here. */
    evs_span last_output;
    uint64_t last_output_seq;
} evs_path_state;

/** One step on one path, or one iteration of an `each` step. */
typedef struct evs_step_state {
    evs_span path_id;
    evs_span name;
    int64_t iteration; /* -1 if not an `each` iteration */
    evs_step_status status;
    uint32_t attempts; /* step_started events seen */
    evs_span input;    /* of the last attempt, if recorded */
    evs_span output;   /* of the completion */
    evs_span error;    /* of the last failure */
    evs_span stored_variable;
    evs_span step_hash;   /* recorded definition hash of the step */
    evs_span kind;        /* recorded step kind */
    int64_t retry_at_us;  /* RETRYING: when the next attempt is due */
    uint64_t started_seq; /* of the last attempt */
    uint64_t ended_seq;   /* of the outcome; 0 while running */
    /* How many times its action was handed out: once per step_started,
     * and once more per step_redispatched (an attempt in flight when its
     * runner died, run again by the runner that took over). */
    uint32_t dispatches;
    /* The sequences of the takeovers that re-dispatched it, as a JSON
     * array ([41,97]); empty if none did. */
    evs_span redispatched_by;
} evs_step_state;

/** `each` progress of a step on a path. */
typedef struct evs_each_state {
    evs_span path_id;
    evs_span name;
    int64_t count; /* items; -1 if not recorded */
    int64_t done;  /* iterations completed or skipped */
    /* Once the step as a whole completed (`each_completed`): the array
     * of its iterations' outputs, and that event's sequence (0 before). */
    evs_span output;
    uint64_t ended_seq;
} evs_each_state;

/**
 * What the history ran under one step name, on any path: kept in both
 * modes, in the order the names first appeared, one record per name, so
 * it stays as small as the definition.
 */
typedef struct evs_stepname_state {
    evs_span name;
    evs_span kind;        /* recorded at its last start */
    evs_span step_hash;   /* recorded at its last start */
    uint64_t started_seq; /* its last start; 0 if only skipped */
    /* The output of the last completion or skip of a plain step of this
     * name, or of the completion of an `each` step of this name as a
     * whole (the array; never one iteration's), on any path, and its
     * sequence (0 if none): what `${steps.NAME.output}` falls back to on
     * a path that has not run the step itself. */
    evs_span output;
    uint64_t output_seq;
} evs_stepname_state;

typedef struct evs_var_state {
    evs_span name;
    evs_span value; /* JSON */
    uint64_t set_seq;
} evs_var_state;

/** An external event or signal, from its receipt on. */
typedef struct evs_signal_state {
    evs_span id;      /* the receiving event's id */
    evs_span name;    /* signal / event type */
    evs_span payload; /* JSON */
    uint64_t received_seq;
    uint64_t consumed_seq; /* 0 while buffered */
    evs_span consumed_by_path;
    evs_span consumed_by_step;
} evs_signal_state;

typedef struct evs_version_state {
    evs_span change_id;
    int64_t version;
    int64_t min, max; /* the range recorded with it */
    uint64_t seq;
} evs_version_state;

typedef struct evs_timer_state {
    evs_span timer_id;
    evs_span path_id;
    evs_span step;
    int64_t fire_at_us;
    uint64_t started_seq;
    uint64_t fired_seq; /* 0 while pending */
    int cancelled;
} evs_timer_state;

typedef struct evs_wait_state {
    evs_span path_id;
    evs_span step;
    evs_span signal;       /* what it waits for */
    int64_t timeout_at_us; /* 0: no timeout */
    uint64_t started_seq;
    uint64_t ended_seq; /* 0 while pending */
    int timed_out;
    uint64_t signal_seq; /* the signal that ended it, 0 if none */
} evs_wait_state;

/**
 * Called for each broken history rule in tolerant mode, with `v` (borrowed
 * for the call) filled as a strict replay fills its evs_error_info: code
 * EVS_EHISTORY, the event's sequence, the rule's name in `kind`
 * ("first-event", "sequence", "after-terminal", "step-not-started",
 * "unknown-path", ...: formats/FORMAT.md §6.1) and a message. Return
 * non-zero to stop.
 */
typedef int (*evs_violation_fn)(void *arg, const evs_error_info *v);

typedef struct evs_replay_opts {
    size_t size;                   /* sizeof, set by evs_replay_opts_init
                                   (common.h, options structs) */
    const evs_allocator *alloc;    /* NULL: the C library */
    int tolerant;                  /* 0 (default): strict */
    evs_violation_fn on_violation; /* tolerant mode's report; may be NULL */
    void *arg;
    int compact; /* 0 (default): the full state; 1: only
                                   what the run can still use (above) */
    /* Compact mode: what is dropped from the state leaves its bytes in
     * the replayer's memory until the state is moved to fresh memory,
     * which happens once that memory holds more than twice what the
     * state held after the last move, and more than gc_min bytes (0:
     * 1 MiB). So a long run's replayer holds about its state, not its
     * history. Tests set it small to move the state often. */
    size_t gc_min;
} evs_replay_opts;

/**
 * Fills *o with the defaults: strict, full mode, the C library's
 * allocator, no violation hook; and o->size (common.h, EVS_OPTS_HAS).
 * `o` must not be NULL. Thread-safe.
 */
EVS_EXTERN void evs_replay_opts_init(evs_replay_opts *o);

/**
 * Makes an empty replayer. `opts` may be NULL (strict, default
 * allocator). Returns 0, -ENOMEM.
 */
EVS_EXTERN int evs_replay_new(const evs_replay_opts *opts, evs_replay **out);

/**
 * Applies one event: its sequence must be last_seq + 1.
 *
 * Strict mode: an event that breaks a history rule is not applied; the
 * call returns EVS_EHISTORY and fills *err (may be NULL): code
 * EVS_EHISTORY, the event's execution id and sequence, the rule's name in
 * `kind` (formats/FORMAT.md §6.1) and a message. Tolerant mode: the
 * violation, described the same way, goes to opts.on_violation, the event
 * is applied as far as it makes sense, and the call returns 0 (or the
 * callback's non-zero value, with *err left alone).
 *
 * Unknown event types are kept in the count (last_seq) and otherwise
 * ignored, so histories of newer writers replay. `data` that is not a
 * JSON object where the type needs one is a violation ("data").
 * Returns 0, EVS_EHISTORY, -ENOMEM (err->msg "out of memory", kind "").
 * After -ENOMEM the event may be partly applied: free the replayer, or
 * reset it by loading a state.
 */
EVS_EXTERN int evs_replay_apply(evs_replay *r, const evs_event *ev,
                                evs_error_info *err);

/**
 * Applies the events of `log` from last_seq + 1 through `to` (0: the
 * end), reading them with a cursor. *err (may be NULL) describes either
 * failure: a broken history rule as evs_replay_apply describes it, or a
 * failure of the log itself as evs_cursor_next does (the kind of damage,
 * the sequence and byte offset where it was found).
 * Returns 0, EVS_EHISTORY, EVS_ECORRUPT, -ENOMEM or -errno.
 */
EVS_EXTERN int evs_replay_run(evs_replay *r, evs_log *log, uint64_t to,
                              evs_error_info *err);

/**
 * Opens execution `id` at sequence `at` (0 or past the end: its end):
 * starts from its snapshot when the snapshot is valid, not stale, not
 * past `at` and loadable in the replayer's mode (a full replayer cannot
 * use a compact state, which the orchestrator writes), else from
 * sequence 1, then applies the tail. *from_snapshot (may be NULL)
 * tells which. The replayer must be empty (new). *err (may be NULL) as
 * evs_log_open and evs_replay_run fill it.
 * Returns what evs_log_open and evs_replay_run return.
 */
EVS_EXTERN int evs_replay_open(evs_replay *r, evs_store *s, const char *id,
                               size_t id_len, uint64_t at, int *from_snapshot,
                               evs_error_info *err);

/* ---------------------------------------------------------------- */
/* State                                                            */
/* ---------------------------------------------------------------- */

/*
 * The accessors below read the state. Each takes a replayer that is not
 * NULL; what they return is borrowed from it (valid until the next
 * apply, load or free on it). A record's index i must be below the count
 * of its kind; the order of each kind is said at its count. Finding by
 * key returns NULL when the state holds no such record. Several threads
 * may read one replayer at once, but none while another applies or
 * loads.
 */

/** The execution as a whole (never NULL). */
EVS_EXTERN const evs_exec_state *evs_replay_exec(const evs_replay *r);

/** The number of paths held (every path created; none is dropped). */
EVS_EXTERN size_t evs_replay_path_count(const evs_replay *r);
/** The i-th path, in the order the paths were created. */
EVS_EXTERN const evs_path_state *evs_replay_path(const evs_replay *r, size_t i);
/** The path with this id, or NULL. */
EVS_EXTERN const evs_path_state *evs_replay_find_path(const evs_replay *r,
                                                      evs_span id);

/** The number of steps held: every (path, name, iteration) started or
 *  skipped (full mode), or those not dropped with their ended path
 *  (compact mode). */
EVS_EXTERN size_t evs_replay_step_count(const evs_replay *r);
/** The i-th step held, in the order the steps were first started. */
EVS_EXTERN const evs_step_state *evs_replay_step(const evs_replay *r, size_t i);
/** A step by path, name and iteration (-1 for a plain step), or NULL. */
EVS_EXTERN const evs_step_state *evs_replay_find_step(const evs_replay *r,
                                                      evs_span path,
                                                      evs_span name,
                                                      int64_t iteration);

/** The number of step names the history ran or skipped (one record per
 *  name, kept in both modes). */
EVS_EXTERN size_t evs_replay_stepname_count(const evs_replay *r);
/** The i-th step name, in the order the names first appeared. */
EVS_EXTERN const evs_stepname_state *evs_replay_stepname(const evs_replay *r,
                                                         size_t i);
/** The record of step name `name`, or NULL if the history never ran it. */
EVS_EXTERN const evs_stepname_state *
evs_replay_find_stepname(const evs_replay *r, evs_span name);

/** The number of `each` records held (one per `each` step and path that
 *  started one; compact mode drops those of ended paths). */
EVS_EXTERN size_t evs_replay_each_count(const evs_replay *r);
/** The i-th `each` record, in the order they were started. */
EVS_EXTERN const evs_each_state *evs_replay_each(const evs_replay *r, size_t i);
/** The `each` record of step `name` on `path`, or NULL (none started, or
 *  dropped with its ended path in compact mode). */
EVS_EXTERN const evs_each_state *
evs_replay_find_each(const evs_replay *r, evs_span path, evs_span name);

/** The number of variables set (kept in both modes). */
EVS_EXTERN size_t evs_replay_var_count(const evs_replay *r);
/** The i-th variable, in the order they were first set. */
EVS_EXTERN const evs_var_state *evs_replay_var(const evs_replay *r, size_t i);
/** The variable `name`, or NULL if none was set. */
EVS_EXTERN const evs_var_state *evs_replay_find_var(const evs_replay *r,
                                                    evs_span name);

/** The number of signals held: every one received (full mode), or those
 *  still buffered (compact mode). */
EVS_EXTERN size_t evs_replay_signal_count(const evs_replay *r);
/** The i-th signal held, in the order received. */
EVS_EXTERN const evs_signal_state *evs_replay_signal(const evs_replay *r,
                                                     size_t i);
/**
 * Whether a signal_received event with this event id was applied, in
 * either mode, consumed or not. *seq (may be NULL) gets its sequence
 * when the state still holds the signal, else 0 (a compact state keeps
 * only the ids of consumed signals). The orchestrator asks this of each
 * request it takes, so that one taken before a crash is not taken twice.
 */
EVS_EXTERN int evs_replay_signal_received(const evs_replay *r, evs_span id,
                                          uint64_t *seq);

/** The number of version decisions (one per change id; kept in both
 *  modes). */
EVS_EXTERN size_t evs_replay_version_count(const evs_replay *r);
/** The i-th version decision, in the order they were made. */
EVS_EXTERN const evs_version_state *evs_replay_version(const evs_replay *r,
                                                       size_t i);
/** The decision recorded for `change_id`, or NULL if none was. */
EVS_EXTERN const evs_version_state *evs_replay_find_version(const evs_replay *r,
                                                            evs_span change_id);

/** The number of timers held: every one (full mode), or only the pending
 *  ones (compact mode). */
EVS_EXTERN size_t evs_replay_timer_count(const evs_replay *r);
/** The i-th timer held, in the order started. */
EVS_EXTERN const evs_timer_state *evs_replay_timer(const evs_replay *r,
                                                   size_t i);

/** The number of waits held: every one (full mode), or only the pending
 *  ones (compact mode). */
EVS_EXTERN size_t evs_replay_wait_count(const evs_replay *r);
/** The i-th wait held, in the order started. */
EVS_EXTERN const evs_wait_state *evs_replay_wait(const evs_replay *r, size_t i);

/* ---------------------------------------------------------------- */
/* State as JSON, and snapshots                                     */
/* ---------------------------------------------------------------- */

/**
 * Writes the whole state as one canonical, compact JSON object (the
 * `state` of a snapshot; FORMAT.md, "Replay state"). Equal states give
 * equal bytes. *out (NUL-terminated, the NUL not counted in *out_len) is
 * allocated with the replayer's allocator (evs_replay_opts.alloc) and
 * owned by the caller: free it with evs_free(alloc, *out), `alloc` being
 * that one.
 * Returns 0 or -ENOMEM.
 */
EVS_EXTERN int evs_replay_state_json(const evs_replay *r, char **out,
                                     size_t *out_len);

/**
 * Replaces the state of an empty replayer with one written by
 * evs_replay_state_json. The text is checked as strictly as
 * evs_json_check() while it is read, in one pass; the replayer keeps one
 * copy of it, into which the state's strings and values point (`json`
 * may go as soon as the call returns). A compact replayer compacts a
 * full state as it loads it. Returns 0, EVS_EPARSE (not JSON, or not
 * such a state), EVS_EFORMAT (another state version, or a compact state
 * given to a full replayer) or -ENOMEM.
 */
EVS_EXTERN int evs_replay_load_state(evs_replay *r, const char *json,
                                     size_t len);

/**
 * Saves a snapshot of the execution with the replayed state: the Dive
 * fields (status, times, inputs, outputs, error, workflow), the lineage
 * and `state`, as of last_seq. `workflow_data` (may be empty) is stored
 * as given. The orchestrator calls this at creation, pauses, waits,
 * terminal states and every N events. Everything in it comes from the
 * log, so it is saved as a cache (EVS_SNAPSHOT_CACHE: without fsyncs;
 * a power loss may leave an older or damaged one, which
 * evs_replay_open notices and replays past).
 * Returns what evs_snapshot_save_flags returns, or -ENOMEM.
 */
EVS_EXTERN int evs_replay_snapshot(const evs_replay *r, evs_store *s,
                                   evs_span workflow_data);

/**
 * The snapshot evs_replay_snapshot would save, as one allocation that no
 * longer depends on the replayer (free it with evs_snapshot_free): the
 * replayer's thread prepares it, and another thread may save it with
 * evs_snapshot_save while this one goes on applying events.
 * Returns 0, -EINVAL (nothing applied yet) or -ENOMEM.
 */
EVS_EXTERN int evs_replay_snapshot_prepare(const evs_replay *r,
                                           evs_span workflow_data,
                                           evs_snapshot **out);

/* ---------------------------------------------------------------- */
/* Checking a history against a definition                          */
/* ---------------------------------------------------------------- */

/** Length of a step hash: 16 lower-case hex digits. */
#define EVS_STEP_HASH_LEN 16

/**
 * The hash of one step of a workflow definition (a JSON object): XXH3-64
 * of the step with its members sorted by key (evs_json_hash), so that
 * reformatting a definition changes no hash. The orchestrator records it
 * in step_started's `step_hash`. Returns 0, EVS_EPARSE or -ENOMEM.
 */
EVS_EXTERN int evs_replay_step_hash(const char *step, size_t len,
                                    char out[EVS_STEP_HASH_LEN + 1]);

typedef enum evs_step_change {
    EVS_STEP_REMOVED = 0,  /* the definition no longer has the step */
    EVS_STEP_KIND_CHANGED, /* it has a step of that name, of another kind */
    EVS_STEP_CHANGED       /* same kind, other parameters (hash) */
} evs_step_change;

/** One step that a history ran and a definition changed. Borrowed. */
typedef struct evs_step_diff {
    evs_span step; /* the step's name */
    evs_step_change change;
    evs_span old_kind, new_kind;
    evs_span old_hash, new_hash;
    uint64_t first_seq; /* where the history last started it */
} evs_step_diff;

typedef int (*evs_step_diff_fn)(void *arg, const evs_step_diff *d);

/**
 * Compares the steps the replayed history ran with definition `def` (a
 * JSON object whose `steps` array holds objects with `name` and `kind`).
 * Calls fn (may be NULL) once for every step name that was removed,
 * changed kind, or changed parameters (by the kind and step_hash recorded
 * at the name's last start, evs_replay_stepname; a step recorded without
 * a hash is only checked for existence and kind). Both modes give the
 * same answer. Sets *count (may be NULL) to how many differ: 0 means the
 * definition is compatible with the history.
 * Returns 0, the callback's non-zero value, EVS_EPARSE (not such a
 * definition) or -ENOMEM.
 */
EVS_EXTERN int evs_replay_check_definition(const evs_replay *r, const char *def,
                                           size_t len, evs_step_diff_fn fn,
                                           void *arg, size_t *count);

/* ---------------------------------------------------------------- */
/* Requests along a chain                                           */
/* ---------------------------------------------------------------- */

/**
 * Posts a request to execution `id` from any thread or process, through
 * its inbox (evs_request_post), for whatever runs it (an orchestrator,
 * or a durable function's host, evstore/run.h): `kind` is "event" (with
 * `type` and `payload`, any JSON), "pause", "unpause" or "terminate"
 * (with a reason in `payload` as a JSON string, or empty; who asked is
 * not recorded: evs_exec_post_by records it). A request to
 * an execution that continued as new is forwarded along its chain:
 * posted to the inbox of the member that did not continue (formats/
 * FORMAT.md §13). Refused with EVS_EFINISHED if that member has ended
 * (as its log shows now). evs_orch_post is the same call.
 * Returns 0, EVS_EBADID, EVS_EFINISHED, EVS_EHISTORY (the chain loops),
 * -ENOENT, -EINVAL (an unknown kind, an event without a type, a payload
 * that is not JSON), or what evs_request_post returns.
 */
EVS_EXTERN int evs_exec_post(evs_store *store, evs_span id, evs_span kind,
                             evs_span type, evs_span payload);

/** The longest `by` (who asked) a request may carry, in bytes. */
#define EVS_BY_MAX 256

/**
 * As evs_exec_post, and records who asked: `by`, free text such as an
 * operator's name or "api:127.0.0.1" (UTF-8, at most EVS_BY_MAX bytes;
 * empty: not recorded, as evs_exec_post). Only a "pause", "unpause" or
 * "terminate" takes one: its event's `data` then holds {"reason",
 * "by"} (formats/FORMAT.md §6), which the replayed state keeps
 * (evs_exec_state's paused, resumed and terminated). `by` is what the
 * poster says, not an identity checked here. Thread-safe as
 * evs_exec_post. Returns as evs_exec_post; -EINVAL also for an "event"
 * with a `by`, or a `by` that is not UTF-8 or is too long.
 */
EVS_EXTERN int evs_exec_post_by(evs_store *store, evs_span id, evs_span kind,
                                evs_span type, evs_span payload, evs_span by);

/**
 * Frees the replayer and everything it holds (every span the accessors
 * returned, and the snapshot it was opened from). NULL: no-op. No other
 * call may be using it.
 */
EVS_EXTERN void evs_replay_free(evs_replay *r);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_REPLAY_H */
