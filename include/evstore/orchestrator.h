/*
 * evstore/orchestrator.h: running workflow definitions durably on libuv.
 *
 * An orchestrator owns executions of workflow definitions
 * (evstore/workflow.h) in one store. It runs their steps with the
 * host's actions, records every decision and outcome through a recorder,
 * and keeps each execution's replayed state (evstore/replay.h) current,
 * so that a crash at any moment is recovered by replaying the log.
 *
 * Guarantees:
 *  - An action runs at least once per attempt. Each call carries an
 *    idempotency key "<execution>/<path>/<step>/<iteration>", the same
 *    for every attempt of that step (as Temporal's activity id): an
 *    attempt that timed out after its side effect and the retry after it
 *    carry one key, so a host that deduplicates on it (a payment API, say)
 *    does the work once. The attempt comes beside it
 *    (evs_action_call.attempt). A call re-run after a crash carries the
 *    same key and attempt.
 *  - A step's outcome is durable (at the store's durability) before the
 *    next step of that path starts; the loop thread never waits on fsync
 *    (appends and snapshots run on the libuv threadpool).
 *  - Timers, retry backoffs and wait timeouts are recorded with the time
 *    they are due, and re-armed by recovery.
 *  - One runner per execution, across processes: owning an execution is
 *    holding its log's writer lock.
 *
 * Lifecycle: evs_orch_new -> evs_orch_register (actions) -> evs_orch_start
 * / evs_orch_resume / evs_orch_recover -> evs_orch_run (or run the host's
 * loop) -> evs_orch_free. Every call taking an evs_orch is made on the
 * loop's thread, except evs_action_complete / evs_action_fail, which any
 * thread may call. evs_orch_post, evs_exec_retry and
 * evs_orch_check_definition take no orchestrator: any process may call
 * them.
 *
 * Definitions with a loop (services) continue as new by themselves
 * (evs_orch_opts.continue_*; formats/WORKFLOWS.md §2.9); the orchestrator
 * then resumes the successor and reports the predecessor CONTINUED. Any
 * member's id serves for the whole chain: evs_orch_resume, evs_orch_send
 * (and pause, unpause, terminate) and evs_orch_post, given a member that
 * continued as new, follow the chain to the member that goes on.
 */
#ifndef EVSTORE_ORCHESTRATOR_H
#define EVSTORE_ORCHESTRATOR_H

/*
 * Compiling: this header includes <uv.h>, and libuv's headers use POSIX
 * types (pthread_rwlock_t among them) that the C library declares only
 * when POSIX is asked for. gcc and clang ask by default (-std=gnu11);
 * strict C11 (-std=c11, which defines __STRICT_ANSI__) does not, and
 * uv.h would then fail deep inside (as it does under an older POSIX
 * level asked for explicitly). So under strict C11 compile with
 * -D_POSIX_C_SOURCE=200809L (or _XOPEN_SOURCE=700, _DEFAULT_SOURCE or
 * _GNU_SOURCE) on the command line, where it precedes every #include;
 * without one, the check below stops the compile with that advice.
 * The store and replay API, <evstore.h>, needs none of this.
 */
#if (defined(__STRICT_ANSI__) || defined(_POSIX_C_SOURCE) ||                   \
     defined(_XOPEN_SOURCE)) &&                                                \
    !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) &&                      \
    !defined(_BSD_SOURCE) &&                                                   \
    !(defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE + 0 >= 200112L) &&           \
    !(defined(_XOPEN_SOURCE) && _XOPEN_SOURCE + 0 >= 500)
#error "evstore/orchestrator.h includes libuv, which needs POSIX: " \
       "under strict C11 compile with -D_POSIX_C_SOURCE=200809L"
#endif

#include "replay.h"
#include "store.h"
#include "workflow.h"

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_orch evs_orch;

/* ---------------------------------------------------------------- */
/* Actions                                                          */
/* ---------------------------------------------------------------- */

/** What an action is asked to do. Borrowed for the life of the call. */
typedef struct evs_action_call {
    evs_span execution_id;
    evs_span path_id;
    evs_span step;
    evs_span action;          /* the step's `action` */
    int64_t iteration;        /* -1 outside `each` */
    uint32_t attempt;         /* 1-based */
    evs_span input;           /* the rendered `params`, JSON */
    evs_span idempotency_key; /* "<execution>/<path>/<step>/<iteration>":
                                 stable across attempts (above) */
    int64_t timeout_ms;       /* 0: none */
} evs_action_call;

/** An action in flight; completed exactly once. */
typedef struct evs_action_req evs_action_req;

/**
 * What `req` asks for (never NULL). Borrowed from req: valid until req
 * is completed or failed. Any thread that holds req.
 */
EVS_EXTERN const evs_action_call *
evs_action_req_call(const evs_action_req *req);

/**
 * Completes an action with `output` (JSON; empty for null). Any thread.
 * After the call `req` is gone. A completion that comes after the
 * attempt timed out, or after the execution ended, is ignored.
 * Returns 0, -EINVAL (output is not JSON: the attempt fails with error
 * type "bad_output" instead; `req` is gone all the same), -ENOMEM.
 */
EVS_EXTERN int evs_action_complete(evs_action_req *req, evs_span output);

/**
 * Fails an action: error `type` (e.g. "timeout", "http_500"), a message,
 * and whether a retry may help (the step's retry policy decides; a type
 * in its non_retryable list is never retried). Any thread.
 * Returns 0 or -ENOMEM.
 */
EVS_EXTERN int evs_action_fail(evs_action_req *req, evs_span type,
                               evs_span message, int retryable);

/** An action: start the work and call evs_action_complete or _fail. */
typedef void (*evs_action_fn)(void *arg, evs_action_req *req);

enum {
    /** Run the callback on the libuv threadpool: it may block, and
     *  completes the request before it returns. */
    EVS_ACTION_BLOCKING = 1u << 0,
    /** The action completes at once, never fails and waits for nothing
     *  outside the runner, as the built-in `echo`. A definition with a
     *  loop made only of such steps (and other steps that never wait)
     *  is refused: nothing could ever slow it down or end it
     *  (formats/WORKFLOWS.md §2.9). */
    EVS_ACTION_INSTANT = 1u << 1,
};

/**
 * Parses definition `def` (JSON) as this orchestrator would run it:
 * evs_wf_parse, knowing the actions registered here (the built-ins among
 * them), so an action it does not have is refused, and a loop of its
 * EVS_ACTION_INSTANT actions too. *out (free it with evs_wf_free) is set
 * only on success; *err (may be NULL) as evs_wf_parse fills it: kind
 * "definition", the step and the reason.
 * Loop thread, like every call on `o`.
 * Returns what evs_wf_parse returns.
 */
EVS_EXTERN int evs_orch_parse(evs_orch *o, evs_span def, evs_wf_def **out,
                              evs_error_info *err);

/**
 * Registers action `name` (copied), with EVS_ACTION_* `flags`. Names
 * starting with "exec:" are reserved: such a step runs its command as a
 * subprocess (see orchestrator/README.md for the stdin/stdout protocol).
 * Returns 0, -EEXIST, -EINVAL (an empty or reserved name, no `fn`, an
 * unknown flag), -ENOMEM.
 */
EVS_EXTERN int evs_orch_register(evs_orch *o, const char *name,
                                 evs_action_fn fn, void *arg, unsigned flags);

/* ---------------------------------------------------------------- */
/* The orchestrator                                                 */
/* ---------------------------------------------------------------- */

/** What happened to an execution, for evs_orch_opts.on_outcome. */
typedef enum evs_outcome {
    EVS_OUTCOME_COMPLETED = 0,
    EVS_OUTCOME_FAILED,
    EVS_OUTCOME_TERMINATED,
    EVS_OUTCOME_CONTINUED,
    EVS_OUTCOME_SUSPENDED, /* waiting on an event, or paused */
    EVS_OUTCOME_ERROR      /* the runner gave it up (I/O error, a
                                 history it cannot continue); its log is
                                 intact and another run may resume it */
} evs_outcome;

/** Name of an outcome ("completed", ..., "error"); "unknown" for a value
 *  out of range, never NULL. Static; thread-safe. */
EVS_EXTERN const char *evs_outcome_name(evs_outcome o);

typedef void (*evs_outcome_fn)(void *arg, const char *execution_id,
                               evs_outcome outcome, int err);

typedef struct evs_orch_opts {
    size_t size;             /* sizeof, set by evs_orch_opts_init
                                   (common.h, options structs) */
    uv_loop_t *loop;         /* NULL: the orchestrator's own loop,
                                   run by evs_orch_run */
    uint64_t snapshot_every; /* events between snapshots; default 1000 */
    uint32_t inbox_poll_ms;  /* how often inboxes are polled besides
                                   file-change notifications (not while
                                   a PostgreSQL store's notifications
                                   are heard); default 500. The same
                                   timer renews a writer's lease on a
                                   PostgreSQL store a third of its
                                   lease_ms after its claim or last
                                   renewal (store.h, evs_log_renew) */
    int stop_when_idle;      /* evs_orch_run returns once no owned
                                   execution can go on by itself: each
                                   has ended, is paused, or waits for an
                                   event whose timeout (if any) is not
                                   due yet (the timeout is recorded, and
                                   the runner that resumes it honours
                                   it). Sleeps, retry backoffs, running
                                   actions and wait timeouts already due
                                   (one that passed while no runner owned
                                   the execution fires on resume) are
                                   waited for. Executions left are
                                   reported SUSPENDED and released.
                                   0 (default): runs until evs_orch_stop */
    uint32_t adopt_ms;       /* look for unfinished executions no
                                   runner owns this often and take up to
                                   64 of them (the work already owned,
                                   woken timers and events, runs first);
                                   0 (default): never. A long-lived runner
                                   sets it. */
    /* Continue-as-new of services (formats/WORKFLOWS.md §2.9): at a
     * loop, when nothing else runs and the log has passed one of these,
     * the execution continues as new. Temporal suggests 4,096 events or
     * 4 MiB. 0 turns a threshold off; all three 0: never. A definition's
     * `continue_as_new` member overrides them (§1). The age is the time
     * from the execution's start (execution_started's timestamp) to the
     * event being decided, both read from the history, so a runner
     * that resumes after a crash decides the same.
     * evs_orch_opts_service_profile sets the seed's service settings. */
    uint64_t continue_events;  /* default 4096 */
    uint64_t continue_bytes;   /* default 4 MiB */
    uint32_t continue_age_ms;  /* default 0 (off) */
    evs_outcome_fn on_outcome; /* may be NULL */
    void *arg;
    uint32_t schedule_ms; /* fire the store's schedules
                                   (evstore/schedule.h): look at them
                                   when a fire is due, and this often
                                   besides, to notice schedules added,
                                   paused or deleted; the looks run on
                                   the threadpool, and the executions
                                   they create are taken here. 0
                                   (default): fire none. A long-lived
                                   runner sets it. */
    /* For tests: the clock the events this orchestrator records are
     * stamped with (microseconds since the epoch), so that an age can
     * be reached without waiting. Timers still run on the wall clock.
     * NULL (default): evs_now_us. */
    int64_t (*clock_us)(void *clock_arg);
    void *clock_arg;
    /* The most executions adoption (adopt_ms, evs_orch_recover) lets
     * this orchestrator own at once, so that runners sharing a store
     * share its work instead of the first one taking it all; executions
     * started or resumed by name are not counted against it. 0
     * (default): no limit. */
    size_t max_owned;
} evs_orch_opts;

/**
 * Fills *o with the defaults given with each field above, and o->size
 * (common.h, EVS_OPTS_HAS). `o` must not be NULL. Thread-safe.
 */
EVS_EXTERN void evs_orch_opts_init(evs_orch_opts *o);

/** The "service" profile's thresholds: 1,000 events or 24 hours. */
#define EVS_SERVICE_CONTINUE_EVENTS 1000
#define EVS_SERVICE_CONTINUE_AGE_MS (24u * 60 * 60 * 1000)

/**
 * Sets the seed's settings for services on *o (already initialised):
 * continue as new after 1,000 events or 24 hours, whichever comes
 * first (continue_events and continue_age_ms; continue_bytes is left as
 * it is, 4 MiB by default). The same profile is available to one
 * definition as "continue_as_new": {"profile": "service"}
 * (formats/WORKFLOWS.md §1). Thread-safe.
 */
EVS_EXTERN void evs_orch_opts_service_profile(evs_orch_opts *o);

/**
 * Makes an orchestrator on `store` (which must outlive it). The built-in
 * actions are registered: "echo" (its input is its output), "fail"
 * (fails while attempt <= input.times, retryable unless input.fatal),
 * "sleep" (completes after input.ms milliseconds with its input).
 * The first orchestrator of a process that runs its own loop (opts.loop
 * NULL) has libuv's threadpool made here, by queuing a work that does
 * nothing, so that the first append of the first event it gets does not
 * wait for the threads (UV_THREADPOOL_SIZE is read then).
 * Returns 0, -ENOMEM, or a libuv error as -errno.
 */
EVS_EXTERN int evs_orch_new(evs_store *store, const evs_orch_opts *opts,
                            evs_orch **out);

/**
 * Creates an execution of definition `def` (JSON) with `inputs` (a JSON
 * object; empty for {}), and owns it. The definition is parsed and
 * checked first, then the inputs; a refusal fills *err (may be NULL) as
 * evs_wf_parse or evs_wf_check_inputs fill it (kind "definition" or
 * "inputs", the step, the reason) and creates nothing.
 * `id` may be empty for a new UUIDv7. The execution id is copied to
 * out_id (may be NULL). The execution runs as the loop turns.
 * The execution is created on the threadpool: an error then (such as
 * -EEXIST for an id that is taken) reaches opts.on_outcome as
 * EVS_OUTCOME_ERROR with that code, and nothing is created.
 * Returns 0, EVS_EPARSE (definition or inputs refused), EVS_EBADID,
 * -ECANCELED (stopping), -ENOMEM.
 */
EVS_EXTERN int evs_orch_start(evs_orch *o, evs_span def, evs_span inputs,
                              evs_span id, char out_id[EVS_ID_MAX + 1],
                              evs_error_info *err);

/**
 * Creates an execution of definition `def` with `inputs` as
 * evs_orch_start does (the same first events and snapshot, checked the
 * same way), but synchronously and without running it: a runner takes
 * it (evs_orch_resume, or a long-lived runner's adoption, as `evrun
 * start --detach` leaves one). Actions are not checked against any
 * orchestrator's: a step naming one that its runner lacks fails there.
 * For a caller off the loop, such as the HTTP API's threadpool work.
 * `id` may be empty for a new UUIDv7; out_id (may be NULL) receives
 * the id. Blocks on the store's syncs; thread-safe as the store is.
 * Returns 0, EVS_EPARSE (definition or inputs refused; err as
 * evs_orch_start's), EVS_EBADID, -EEXIST (the id is taken: nothing is
 * changed), -ENOMEM, or what evs_exec_create returns.
 */
EVS_EXTERN int evs_exec_start(evs_store *s, evs_span def, evs_span inputs,
                              evs_span id, char out_id[EVS_ID_MAX + 1],
                              evs_error_info *err);

/**
 * Takes over execution `id`: opens its log as the writer, replays it,
 * re-arms its timers (one already due, such as a wait's timeout that
 * passed while no runner owned it, fires as the loop turns) and re-runs
 * what was started and never finished.
 * A finished execution returns 0 and reports its outcome at once. One
 * that continued as new is reported CONTINUED at once, and its successor
 * is taken in its place, and so on along the chain: the member that does
 * not continue is resumed, or, if it has ended, reports how (so resuming
 * any member of an ended chain reports the chain's outcome).
 * Returns 0, EVS_ELOCKED (another runner owns it, or the member of its
 * chain it leads to), -EALREADY (this orchestrator owns it, or that
 * member), EVS_EHISTORY (its history breaks a rule, or its chain loops),
 * EVS_EPARSE (its recorded definition no longer parses), EVS_EVERSION (a
 * version decision it recorded lies outside the range of a `version`
 * step of its definition; evs_orch_resume_with says which),
 * EVS_ECONFLICT (a durable function's run, evstore/run.h: its host's code
 * runs it; evs_orch_recover passes such runs by), or what
 * evs_replay_open returns.
 */
EVS_EXTERN int evs_orch_resume(evs_orch *o, evs_span id);

/** A version decision the history recorded that a `version` step of the
 *  new definition does not allow. Borrowed for the call. */
typedef struct evs_version_conflict {
    const char *step; /* the version step */
    const char *change_id;
    int64_t version;  /* the recorded decision */
    int64_t min, max; /* the range the step allows */
    uint64_t seq;     /* the version_decision event */
} evs_version_conflict;

typedef enum evs_def_finding_kind {
    EVS_DEF_STEP = 0, /* a step the history ran differs: `diff` */
    EVS_DEF_VERSION   /* a decision out of range: `version` */
} evs_def_finding_kind;

/** One thing the check of a history against a definition found.
 *  Borrowed for the call. */
typedef struct evs_def_finding {
    evs_def_finding_kind kind;
    /* 0: allowed (a step difference a version step gates); otherwise the
     * refusal it makes: EVS_ENONDET (a step difference nothing gates, or
     * a step removed or of another kind) or EVS_EVERSION. */
    int code;
    const evs_step_diff *diff;           /* EVS_DEF_STEP; else NULL */
    const evs_version_conflict *version; /* EVS_DEF_VERSION; else NULL */
} evs_def_finding;

/** Hears each finding; return non-zero to stop the check. */
typedef int (*evs_def_finding_fn)(void *arg, const evs_def_finding *f);

/**
 * Writes a one-line description of `f` to buf (at most cap bytes, NUL
 * included, as snprintf): the step and what changed, and whether a
 * version step gates it; or the change, the recorded version, the range
 * and the version step. Returns what snprintf returns.
 */
EVS_EXTERN int evs_def_finding_describe(const evs_def_finding *f, char *buf,
                                        size_t cap);

/**
 * Decides whether the execution whose replayed history is `rp` may go on
 * under definition `def`. The rules, with an example, are
 * formats/WORKFLOWS.md §2.7.1: every step the history ran is unchanged
 * (evs_replay_check_definition) or changed in a way a version step gates
 * (that section says which), and every decision the history recorded for
 * the change_id of a `version` step of `def` lies in that step's
 * [min, max]. evs_orch_resume_with makes this very check, so its answer
 * is the one resume gives.
 *
 * fn (may be NULL) hears every finding, allowed ones too: the differing
 * steps in the order the history first ran them, then the decisions out
 * of range in the order of def's steps. *refusals (may be NULL) is set to
 * the number of findings with a non-zero code. info (may be NULL)
 * describes the first refusal: its code, the execution, the sequence of
 * the step_started or version_decision event, kind "step" or "version",
 * the step (the one that differs, or the version step) and msg as
 * evs_def_finding_describe writes it.
 * Returns 0 (it may go on), the first refusal's code (EVS_ENONDET or
 * EVS_EVERSION), the callback's non-zero value, or -ENOMEM.
 * Thread-safe for distinct rp.
 */
EVS_EXTERN int evs_orch_check_definition(const evs_replay *rp,
                                         const evs_wf_def *def,
                                         evs_def_finding_fn fn, void *arg,
                                         size_t *refusals,
                                         evs_error_info *info);

/**
 * Hears one execution of evs_orch_check_store: `checked` 1 with the
 * verdict in `rc` (0: it may go on; EVS_ENONDET or EVS_EVERSION: resume
 * under the definition would refuse it; another code: the check failed),
 * or 0 when it could not be replayed (rc says why; its workflow is then
 * unknown). Return non-zero to stop.
 */
typedef int (*evs_def_exec_fn)(void *arg, const char *execution_id,
                               int checked, int rc);

/**
 * Makes the check of evs_orch_check_definition on every unfinished
 * execution of store `s` whose workflow is def's (what `evrun check`
 * and the HTTP API's definitions check report), replaying each (compact,
 * from its snapshot) without a lock, in the listing's order. For each,
 * `on_finding` (may be NULL) hears its findings, then `on_exec` (not
 * NULL) its verdict; an execution that cannot be replayed is told to
 * on_exec alone, with checked 0. `arg` goes to both.
 * Returns 0, -EINVAL, what evs_exec_list returns, or the callbacks'
 * non-zero value. Thread-safe as the store is.
 */
EVS_EXTERN int evs_orch_check_store(evs_store *s, const evs_wf_def *def,
                                    evs_def_finding_fn on_finding,
                                    evs_def_exec_fn on_exec, void *arg);

/**
 * evs_orch_resume under a changed definition `def` (JSON; empty: the
 * recorded one), which applies to the member of the chain that is taken
 * (evs_orch_resume), if evs_orch_check_definition allows it (fn and arg
 * go to that check). When the definition differs from the recorded one,
 * the execution records definition_changed and runs under `def` from
 * then on. A refused execution is left as it was, and not owned.
 * info (may be NULL) describes a refusal (EVS_ENONDET, EVS_EVERSION),
 * naming the execution and the step or the change, the recorded version
 * and the allowed range. Without `def`, the recorded definition's
 * version steps are checked against the history's decisions all the
 * same (a decision made by evs_orch_get_version may lie outside them).
 * Returns what evs_orch_resume returns, EVS_EPARSE (def refused),
 * EVS_ENONDET, EVS_EVERSION.
 */
EVS_EXTERN int evs_orch_resume_with(evs_orch *o, evs_span id, evs_span def,
                                    evs_def_finding_fn fn, void *arg,
                                    evs_error_info *info);

/**
 * Resumes every unfinished execution of the store that no other process
 * owns; sets *count (may be NULL) to how many were taken.
 * Returns 0 or the first error other than EVS_ELOCKED.
 */
EVS_EXTERN int evs_orch_recover(evs_orch *o, size_t *count);

/**
 * Delivers an external event to an owned execution: recorded as
 * signal_received, buffered until a wait_event step takes it. An
 * execution that continued as new passes it on along its chain (as the
 * store shows it now) to the member that goes on, which must be owned
 * here. The same holds for pause, unpause and terminate.
 * Returns 0, -ENOENT (not owned here), EVS_EFINISHED (finished
 * executions, and chains whose last member has finished, take no
 * events), -EINVAL, -ENOMEM.
 */
EVS_EXTERN int evs_orch_send(evs_orch *o, evs_span id, evs_span type,
                             evs_span payload);

/**
 * Pauses owned execution `id` (or, as evs_orch_send, the member of its
 * chain that goes on): recorded as execution_paused with `reason` (JSON,
 * such as a string; empty: null); no step starts and no timer acts until
 * it is unpaused, and actions already running complete and are
 * recorded. Pausing a paused execution records nothing and succeeds.
 * Who asked is not recorded (`by` null): evs_orch_pause_by records it.
 * Loop thread. Returns 0, -ENOENT (not owned here), EVS_EFINISHED,
 * -EINVAL (reason is not JSON), -ENOMEM, or the error that made the
 * runner give the execution up while recording.
 */
EVS_EXTERN int evs_orch_pause(evs_orch *o, evs_span id, evs_span reason);

/**
 * Unpauses owned execution `id` (or the member of its chain that goes
 * on): recorded as execution_resumed (reason and `by` null;
 * evs_orch_unpause_by records them); it goes on from its state,
 * timers that fell due meanwhile acting at once. Unpausing one that is
 * not paused records nothing and succeeds. Loop thread.
 * Returns as evs_orch_pause.
 */
EVS_EXTERN int evs_orch_unpause(evs_orch *o, evs_span id);

/**
 * Terminates owned execution `id` (or the member of its chain that goes
 * on): every live path is cancelled (path_cancelled, its running steps
 * cancelled, running actions orphaned and `exec:` subprocesses killed),
 * then execution_terminated is recorded with `reason` (JSON; empty:
 * null; `by` null: evs_orch_terminate_by records who asked), and the
 * outcome is reported TERMINATED. Loop thread.
 * Returns as evs_orch_pause.
 */
EVS_EXTERN int evs_orch_terminate(evs_orch *o, evs_span id, evs_span reason);

/**
 * As evs_orch_pause, evs_orch_unpause and evs_orch_terminate, and records
 * who asked: `by` is free text, such as an operator's name (UTF-8, at
 * most EVS_BY_MAX bytes; empty: not recorded), and `reason` JSON, such as
 * a string (empty: null); an unpause records its reason too. The event's
 * `data` is {"reason","by"} (formats/FORMAT.md §6); the replayed state
 * keeps them (evs_exec_state's paused, resumed, terminated). Loop
 * thread. Returns as evs_orch_pause; -EINVAL also for a bad `by`.
 */
EVS_EXTERN int evs_orch_pause_by(evs_orch *o, evs_span id, evs_span by,
                                 evs_span reason);
/** See evs_orch_pause_by. */
EVS_EXTERN int evs_orch_unpause_by(evs_orch *o, evs_span id, evs_span by,
                                   evs_span reason);
/** See evs_orch_pause_by. */
EVS_EXTERN int evs_orch_terminate_by(evs_orch *o, evs_span id, evs_span by,
                                     evs_span reason);

/**
 * Posts a request to execution `id` from any process, through its inbox
 * (evs_request_post): `kind` is "event" (with `type` and `payload`),
 * "pause", "unpause" or "terminate" (with `reason` in `payload` as a
 * JSON string, or empty; who asked is not recorded: evs_orch_post_by
 * records it). The runner that owns it picks it up; with no
 * runner, the next one does. A request to an execution that continued as
 * new is forwarded along its chain: posted to the inbox of the member
 * that did not continue (formats/FORMAT.md §13). Refused with
 * EVS_EFINISHED if that member has ended (as its log shows now).
 * Returns 0, EVS_EBADID, EVS_EFINISHED, EVS_EHISTORY (the chain loops),
 * -ENOENT, -EINVAL, or what evs_request_post returns.
 */
EVS_EXTERN int evs_orch_post(evs_store *store, evs_span id, evs_span kind,
                             evs_span type, evs_span payload);

/**
 * As evs_orch_post, and records who asked a pause, unpause or
 * terminate: `by` (free text, UTF-8, at most EVS_BY_MAX bytes; empty:
 * not recorded). The same call as evs_exec_post_by (replay.h). Any
 * thread. Returns as evs_orch_post; -EINVAL also for an "event" with a
 * `by`, or a `by` that is not UTF-8 or is too long.
 */
EVS_EXTERN int evs_orch_post_by(evs_store *store, evs_span id, evs_span kind,
                                evs_span type, evs_span payload, evs_span by);

/* ---------------------------------------------------------------- */
/* Retrying an execution                                            */
/* ---------------------------------------------------------------- */

typedef enum evs_retry_strategy {
    EVS_RETRY_FROM_START = 0,  /* "from_start": same definition and
                                   inputs, from the beginning */
    EVS_RETRY_FROM_FAILURE,    /* "from_failure": the history up to the
                                   failure point; the failed step runs
                                   again with a fresh attempt count, and
                                   nothing that completed runs again */
    EVS_RETRY_WITH_NEW_INPUTS, /* "with_new_inputs": other inputs; with
                                   from_step, the history before that
                                   step first started is kept */
    EVS_RETRY_SKIP_FAILED,     /* "skip_failed": the failed step gets
                                   `output` (null if empty) and the run
                                   goes on after it */
    EVS_RETRY_FROM_SEQ         /* "from_seq": the history up to from_seq
                                   (a reset, as Temporal's) */
} evs_retry_strategy;

/** Name of a strategy ("from_start", ...); "unknown" for a value out of
 *  range, never NULL. Static; thread-safe. */
EVS_EXTERN const char *evs_retry_strategy_name(evs_retry_strategy s);
/** Sets *out to the strategy named `name` (NUL-terminated, not NULL).
 *  Returns 0, or -EINVAL for an unknown name (*out untouched).
 *  Thread-safe. */
EVS_EXTERN int evs_retry_strategy_parse(const char *name,
                                        evs_retry_strategy *out);

typedef struct evs_retry_opts {
    size_t size; /* sizeof, set by evs_retry_opts_init
                               (common.h, options structs) */
    evs_retry_strategy strategy;
    evs_span inputs;    /* WITH_NEW_INPUTS: a JSON object, checked
                               against the declared inputs */
    evs_span from_step; /* WITH_NEW_INPUTS: reuse the steps before it */
    evs_span output;    /* SKIP_FAILED: JSON; empty: null */
    uint64_t from_seq;  /* FROM_SEQ: the last event kept */
    evs_span new_id;    /* the successor's id; empty: a new UUIDv7 */
} evs_retry_opts;

/**
 * Fills *o with the defaults: FROM_START, no inputs, no step, a null
 * output, from_seq 0, a new id; and o->size (common.h, EVS_OPTS_HAS).
 * `o` must not be NULL. Thread-safe.
 */
EVS_EXTERN void evs_retry_opts_init(evs_retry_opts *o);

/**
 * Creates the successor of execution `id` (which must have completed,
 * failed or been terminated; formats/WORKFLOWS.md §4.1 says which
 * executions each strategy accepts, and what each refusal returns) by
 * the strategy in `o`, without running it:
 * evs_orch_resume (or `evrun resume`) runs it. The successor holds the
 * origin's events 1..N (their sequences and times kept), with its
 * execution_started naming the origin in `lineage` ({"retry_of", 
 * "strategy", "from_seq"}), then a `step_reset` (FROM_FAILURE) or a
 * `step_skipped` (SKIP_FAILED) of the failed step. It is replayed
 * strictly before it is created, and created atomically
 * (evs_exec_create): after a crash it exists whole and linked, or not at
 * all. The origin is not modified.
 *
 * out_id (may be NULL) receives the successor's id. *err (may be NULL;
 * common.h) says why a retry was refused, with the origin's id, the
 * step it is about (the failed step, from_step, or the definition's step
 * at fault) when there is one, and a one-line reason in `msg`; its kind
 * is "retry" when the strategy does not apply, "definition" or "inputs"
 * when the recorded definition or the new inputs are refused, and a
 * history rule's name (with its sequence) when the origin's history, or
 * the successor's, breaks one. Any other failure (no such execution, the
 * store's errors) sets only err->code, and leaves err->msg empty.
 * Returns 0, EVS_EBADID, -ENOENT, -EINVAL (the strategy does not apply:
 * not ended, no failed step, a step that never ran, a sequence out of
 * range, bad output JSON), EVS_EPARSE (inputs refused), -EEXIST,
 * EVS_EHISTORY, -ENOMEM, or what evs_exec_create returns.
 */
EVS_EXTERN int evs_exec_retry(evs_store *s, evs_span id,
                              const evs_retry_opts *o,
                              char out_id[EVS_ID_MAX + 1], evs_error_info *err);

/**
 * evs_exec_retry with its options as strings, for bindings (no struct to
 * mirror): `strategy` is a strategy's name ("from_failure", ...;
 * evs_retry_strategy_parse), `options` (NULL or "" for none) a JSON
 * object of the evs_retry_opts fields it needs: "inputs" (an object),
 * "from_step" (a string), "output" (any JSON), "from_seq" (an integer),
 * "new_id" (a string). Needs no orchestrator (and no libuv at run time).
 * Returns what evs_exec_retry returns, or -EINVAL (an unknown strategy
 * or option, or an option of the wrong type; err says which).
 */
EVS_EXTERN int evs_exec_retry_json(evs_store *s, const char *id,
                                   const char *strategy, const char *options,
                                   char out_id[EVS_ID_MAX + 1],
                                   evs_error_info *err);

/**
 * GetVersion(change_id, min, max) for an action written in C: the
 * version recorded for `change` in execution `id` (owned here), or, the
 * first time, `max`, recorded as a version_decision event. A recorded
 * value outside [min, max] gives up the execution (outcome ERROR) and
 * returns EVS_EVERSION, naming the change and the execution in the log
 * hook. Call it on the loop thread (e.g. before completing an action).
 * Returns 0, -ENOENT (not owned here), -EINVAL, EVS_EFINISHED,
 * EVS_EVERSION.
 */
EVS_EXTERN int evs_orch_get_version(evs_orch *o, evs_span id, evs_span change,
                                    int64_t min, int64_t max, int64_t *version);

/**
 * Continues execution `id` (owned here) as new by hand: a successor,
 * created atomically and linked (lineage continued_from), starts at step
 * `start_at` (empty: the first) with the variables and the events not
 * yet taken; then this execution ends with execution_continue_as_new,
 * and the orchestrator resumes the successor. Only when one path is
 * live and no action runs: otherwise -EBUSY (a definition's
 * continue_as_new step is the way from inside a run).
 * Returns 0, -ENOENT, EVS_EFINISHED, -EINVAL (no such step), -EBUSY.
 */
EVS_EXTERN int evs_orch_continue_as_new(evs_orch *o, evs_span id,
                                        evs_span start_at);

/** The replayed state of an owned execution, or NULL. Borrowed until the
 *  loop turns again. It is a compact replay (replay.h): the steps of
 *  ended paths, ended waits and timers and consumed signals are gone;
 *  replay the log in full mode to see them. */
EVS_EXTERN const evs_replay *evs_orch_state(const evs_orch *o, evs_span id);

/** The loop the orchestrator runs on (its own, or opts.loop). */
EVS_EXTERN uv_loop_t *evs_orch_loop(evs_orch *o);

/** Number of executions owned now. */
EVS_EXTERN size_t evs_orch_owned(const evs_orch *o);

/**
 * This runner's id: a UUIDv7 made by evs_orch_new, different for every
 * orchestrator. A history this runner takes over (evs_orch_resume, and
 * so evs_orch_recover and the adoption of a long-lived runner) records
 * it, with the host's name and the process id, in execution_taken_over
 * before anything else it records there (FORMAT.md §6). Borrowed: valid
 * until evs_orch_free. Any thread.
 */
EVS_EXTERN const char *evs_orch_runner(const evs_orch *o);

/**
 * Runs the orchestrator's own loop (opts.loop NULL) until evs_orch_stop,
 * or until idle with opts.stop_when_idle. With a host loop, run that
 * loop instead. Returns 0 or a libuv error.
 */
EVS_EXTERN int evs_orch_run(evs_orch *o);

/**
 * Stops gracefully: no new steps start; actions in flight are given
 * `grace_ms` to finish and their outcomes are recorded; everything is
 * flushed and every execution is released (its lock dropped), then the
 * loop handles close. A step still running at the deadline is re-run by
 * the next runner. Safe to call from a signal watcher on the loop.
 */
EVS_EXTERN void evs_orch_stop(evs_orch *o, uint32_t grace_ms);

/**
 * Frees an orchestrator. On its own loop, one that was never run (or not
 * to the end) is stopped first (evs_orch_stop with no grace, and its loop
 * run until that is done). On the host's loop (evs_orch_opts.loop), stop
 * it and run the loop until evs_orch_stop's work is done before freeing:
 * its handles live on that loop. Accepts NULL.
 */
EVS_EXTERN void evs_orch_free(evs_orch *o);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_ORCHESTRATOR_H */
