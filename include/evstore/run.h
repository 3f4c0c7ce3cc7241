/*
 * evstore/run.h: durable functions, the code-first way in.
 *
 * A run is an execution whose control flow is the host's own code. Each
 * side effect runs inside a named step, whose outcome is journaled in the
 * run's event log before the step call returns. When the code runs again
 * after a crash (or a suspension), the same calls replay: each step
 * returns its recorded output without running again, and the code goes
 * on live from where the history ends. Sleeps, waits for external
 * events, retries with durable backoff and version decisions are
 * journaled the same way. The journal is the store's ordinary log
 * (formats/FORMAT.md), so evdump, evreplay, `evrun status|send|pause|
 * unpause|terminate` and the retry strategies work on runs as on
 * definitions' executions. formats/RUNS.md gives the events each
 * call records.
 *
 * No event loop is needed: the calls block (or suspend, below) the
 * calling thread.
 *
 *     evs_run *r;
 *     int rc = evs_run_open(store, "r-42", "research", "1",
 *                           "{\"topic\":\"x\"}", NULL, &r, &err);
 *     if (rc == 0) {
 *         const char *plan;
 *         rc = evs_run_step(r, "plan", NULL, NULL, plan_fn, NULL, &plan,
 *                           &err);
 *         ...
 *         rc = evs_run_complete(r, "{\"ok\":true}", &err);
 *     }
 *     evs_run_close(r);
 *
 * Identity of a step. A step is named by the host (1 to 64 bytes of
 * [A-Za-z0-9_.:-]) and identified by its name and its occurrence on its
 * path (the root's, "main", or a branch's): the first "llm" step is
 * recorded as step "llm", the third as "llm#3". Sleeps are steps named
 * "sleep", waits steps named after the event they wait for, joins steps
 * named "join". The idempotency key of a step (evs_run_step_key) is
 * "<run id>/<path>/<step>", the same for every attempt and every
 * re-run.
 *
 * Determinism. Replaying code must ask for the same steps, in the same
 * order, as the history holds: a call that asks for another name or
 * another kind of step than the history's next one, or a completion
 * while the history holds more, fails with EVS_ENONDET, names the
 * sequence, the recorded step and the requested one in `err`, and
 * leaves the log untouched. A change to the code that must alter what
 * running runs do is guarded with evs_run_patched. The code version
 * given to evs_run_open is recorded and shown, never used to refuse or
 * to filter recovery: a run begun under another version is found and
 * replayed all the same (evs_run_version tells the host which one, so it
 * may route or refuse it).
 *
 * Blocking and suspending (the "mode" option). In "block" mode (the
 * default) a sleep, a wait for an event, a retry's backoff and a pause
 * wait in the calling thread, polling the run's inbox every poll_ms; a
 * crash in the meantime loses nothing, and the re-run waits only for
 * what is left. Before a call waits, what it recorded is made durable
 * and the run's snapshot saved, so that listings show it waiting. A
 * waiting call ends early with -EINTR on evs_run_interrupt or a caught
 * signal. In "suspend" mode such a call returns EVS_ESUSPENDED instead
 * of waiting: the run's snapshot is saved, every later call on the run
 * returns EVS_ESUSPENDED too, and the host closes the handle and re-runs
 * the code later, when evs_run_recoverable says the run is due.
 *
 * Options. evs_run_open takes its options as a JSON object (NULL or ""
 * for the defaults), so that no structure layout is part of the API:
 *   "mode":    "block" (default) or "suspend";
 *   "poll_ms": how often a blocked call looks at the inbox; default 50,
 *              1 to 60000;
 *   "retry":   the retry policy of steps that give none: an object as a
 *              definition step's `retry` (formats/WORKFLOWS.md §6:
 *              max_attempts, initial_interval_ms, backoff_coefficient,
 *              max_interval_ms, jitter, non_retryable). Without it a
 *              step runs once;
 *   "history_limits": the run's own history limits (formats/RUNS.md §8:
 *              warn_events, warn_bytes, max_events, max_bytes, each an
 *              integer >= 1; a hard limit only lowers the store's). A
 *              call whose event would pass the hard limit fails the run
 *              (error type "history_limit") and returns EVS_ELIMIT, as
 *              does every later call.
 * A step's options (evs_run_step_begin, evs_run_step) are an object with
 * a "retry" member likewise. An unknown member is refused (EVS_EPARSE).
 *
 * Requests. Other threads and processes reach a run through its inbox
 * (evs_run_send, evs_run_request, `evrun send|pause|unpause|terminate`;
 * FORMAT.md §13): the run takes them at each call. An event is buffered until a wait
 * takes it (oldest first), so one sent before the wait is reached is
 * consumed once. A pause is observed at the next call (in block mode the
 * call waits for the unpause; in suspend mode it returns
 * EVS_ESUSPENDED), a termination at the next call too, which returns
 * EVS_EFINISHED: the code must then stop.
 *
 * Threads and ownership. An evs_run is the run's writer: it holds the
 * log's lock (FORMAT.md §7; on PostgreSQL its lease, "Leases" below),
 * so a second handle on the same run, in this process or another, is
 * refused with EVS_ELOCKED, and a run whose process died is free to be
 * taken (evs_run_recoverable lists it). The
 * functions may be called from any thread; calls on one run are
 * serialised by its mutex, which a call lets go while it waits (a nap,
 * a step's body in evs_run_step, a join), so that branches run at once.
 * A step is open between evs_run_step_begin and its end; another call on
 * the same handle that records (a step, a sleep, a completion) while one
 * is open is refused with -EBUSY.
 *
 * Leases. On a store whose writers hold leases rather than locks
 * (PostgreSQL: store.h's lease_ms, eventstore/BACKENDS.md), an open run
 * keeps its lease by itself: evs_run_open starts a thread that renews
 * it (evs_log_renew) every third of lease_ms until the run's last
 * handle is closed, however long the host's code takes between two
 * calls and however long a call waits; the host has nothing to call.
 * On the file and SQLite backends the run holds a lock and no thread is
 * started. A run whose lease was lost all the same (its process was
 * stopped, or cut off from the server, for longer than lease_ms, and
 * another runner took the run over) writes nothing more: its next call,
 * or the wait a call is blocked in, returns EVS_ELEASE with `err`'s kind
 * "lease", as does every later call; the host stops the code and closes
 * the run, and the run's new owner goes on with it. The store's log
 * hook hears of the loss, and of a renewal that could not reach the
 * server, from the renewal thread.
 *
 * Strings. Every string argument is NUL-terminated UTF-8; JSON
 * arguments are checked (EVS_EPARSE) and stored compact. The strings the
 * accessors return are borrowed from the handle and stay valid until the
 * next call on it.
 *
 * Errors. Every function returns 0 or a code of common.h; `err` (may be
 * NULL) then holds the detail: the execution id, the sequence and the
 * step involved, and a one-line message.
 */
#ifndef EVSTORE_RUN_H
#define EVSTORE_RUN_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_run evs_run;

/** What evs_run_step_begin asks of its caller. */
enum {
    EVS_STEP_RUN = 0,      /* run the step now, then end it */
    EVS_STEP_REPLAYED = 1, /* the history holds its output
                              (evs_run_result): do not run it */
    EVS_STEP_RETRY = 2     /* evs_run_step_fail: an attempt is scheduled;
                              call evs_run_step_begin for it again */
};

/**
 * Starts run `id` (NULL or "": a new UUIDv7), or resumes it if it
 * exists: its history is replayed (checked strictly) and the code goes
 * on from it. `workflow` (1 to 128 bytes) names the code, `version`
 * (0 to 128 bytes; NULL is "") is the host's code version, `inputs` a
 * JSON object (NULL: {} for a new run), `options` as above. For a run
 * that exists, a NULL workflow or inputs means "as recorded", so that
 * a host recovering runs (evs_run_recoverable) opens them by id alone
 * and reads evs_run_workflow to know which code to run.
 * A new run is created atomically with its first events and snapshot.
 * An existing one must have been started with the same workflow name
 * and inputs (compared by their canonical hash), else EVS_ECONFLICT;
 * its recorded version may differ (evs_run_version gives it).
 * *out is set on 0 and on EVS_EFINISHED: a run that has ended
 * (completed, failed, terminated, continued as new) is opened for its
 * status and output, and the code must not run.
 * Returns 0, EVS_EFINISHED, EVS_EBADID, EVS_ECONFLICT (another workflow
 * or other inputs, or an execution that is not a run: one of a
 * definition), EVS_ELOCKED (another handle or process runs it),
 * EVS_ELEASE (on PostgreSQL: lost as it was opened),
 * EVS_EPARSE (inputs or options), -EINVAL (a bad workflow or version,
 * or no workflow for a new run), EVS_EHISTORY, EVS_ECORRUPT, -ENOMEM, or what the store's
 * calls return.
 */
EVS_EXTERN int evs_run_open(evs_store *s, const char *id, const char *workflow,
                            const char *version, const char *inputs,
                            const char *options, evs_run **out,
                            evs_error_info *err);

/**
 * Frees the handle, the root's or a branch's. When the last handle of a
 * run is closed, the run's snapshot is saved (so that listings show its
 * status and last sequence; not once its lease was lost, when nothing is
 * written), its lease's renewal stopped and its lock (or lease)
 * released. Everything a call returned is durable by then. A step left
 * open leaves no trace, as after a kill (what the run had buffered since
 * its last append is dropped: none of it was acknowledged), and runs
 * again, as the same attempt, when the code is re-run. Accepts NULL.
 */
EVS_EXTERN void evs_run_close(evs_run *r);

/* ---------------------------------------------------------------- */
/* Steps                                                            */
/* ---------------------------------------------------------------- */

/**
 * Begins step `name` with `input` (JSON, or NULL for none) and
 * `options` (JSON, or NULL). Takes the inbox's requests first.
 * Returns:
 *  EVS_STEP_RUN: the caller runs the step now and ends it with
 *      evs_run_step_end or evs_run_step_fail. step_started is written
 *      to the log before this returns, not synced (a process that dies
 *      in the body leaves it, and the run that takes over records the
 *      re-dispatch), and made durable with the outcome.
 *  EVS_STEP_REPLAYED: the history holds the step's output, which
 *      evs_run_result gives; the step must not run.
 *  EVS_EFAILED: the history holds the step failed for good; evs_run_error
 *      gives the error ({"type","message","retryable"}).
 * or EVS_ENONDET (not the history's next step), EVS_ESUSPENDED (suspend
 * mode: a backoff not yet due, or paused), EVS_EFINISHED (terminated),
 * -ECANCELED (the step, or the branch it is on, was cancelled: a join
 * was decided without it), -EINTR (a backoff or a pause was interrupted:
 * begin the same step again), -EBUSY (a step is open), -EINVAL (bad
 * name), EVS_EPARSE (input or options), EVS_ELEASE (the run's lease was
 * lost to another runner: "Leases" above), or a store error (the handle
 * is then broken: close it and re-run the code).
 */
EVS_EXTERN int evs_run_step_begin(evs_run *r, const char *name,
                                  const char *input, const char *options,
                                  evs_error_info *err);

/**
 * Ends the open step with `output` (JSON; NULL or "" is null): records
 * step_completed durably. Returns 0, -EINVAL (no step open), EVS_EPARSE
 * (output is not JSON; the step stays open), or a store error.
 */
EVS_EXTERN int evs_run_step_end(evs_run *r, const char *output,
                                evs_error_info *err);

/**
 * Ends the open step with a failure of `type` (NULL: "error") and
 * `message` (NULL: ""). If the step's retry policy allows another
 * attempt (`retryable` not 0, the type not non-retryable, attempts
 * left), records the failure and the retry with its fire time
 * (retry_scheduled: the durable backoff) and returns EVS_STEP_RETRY: call
 * evs_run_step_begin with the same name again, which waits for the
 * backoff (or suspends). Else records the failure and returns EVS_EFAILED.
 * Returns also -EINVAL (no step open) or a store error.
 */
EVS_EXTERN int evs_run_step_fail(evs_run *r, const char *type,
                                 const char *message, int retryable,
                                 evs_error_info *err);

/** The open step's attempt, 1 for the first; 0 when none is open. */
EVS_EXTERN uint32_t evs_run_step_attempt(evs_run *r);

/** The idempotency key ("<run id>/<path>/<step>") of the open step, or
 *  else of the last command the handle made (a step, sleep, wait,
 *  branch or join); "" before any. Borrowed. */
EVS_EXTERN const char *evs_run_step_key(evs_run *r);

/** The recorded name ("model#2") of the open step, or else of the last
 *  command the handle made; "" before any. Borrowed. */
EVS_EXTERN const char *evs_run_step_name(evs_run *r);

/** 1 when the last command was answered by the history (a step's body
 *  did not run, nothing was recorded for it), 0 when it ran live. */
EVS_EXTERN int evs_run_step_replayed(evs_run *r);

/**
 * A step as one call, for C hosts: runs `fn` as the step's body.
 * fn returns 0 for success, with the output it gave to
 * evs_run_step_output (null if none); non-zero for a failure, with the
 * error it gave to evs_run_step_error (else type "error" and the
 * message of evs_strerror(rc), retryable). `input` is the step's input
 * (NULL if none). fn may call only evs_run_step_output,
 * evs_run_step_error, evs_run_step_attempt and evs_run_step_key on `r`.
 */
typedef int (*evs_step_fn)(void *arg, evs_run *r, const char *input);

/** Sets the output (JSON) of the step fn runs. Returns 0, EVS_EPARSE or
 *  -ENOMEM; after -ENOMEM (here or in evs_run_step_error) evs_run_step
 *  records no outcome, whatever fn returns: it returns -ENOMEM, the
 *  handle is broken, and the step runs again when the code is re-run. */
EVS_EXTERN int evs_run_step_output(evs_run *r, const char *output);

/** Sets the error of the step fn runs. Returns 0 or -ENOMEM. */
EVS_EXTERN int evs_run_step_error(evs_run *r, const char *type,
                                  const char *message, int retryable);

/**
 * Runs step `name`: evs_run_step_begin, then (unless replayed) fn and
 * its end, retrying by the policy until it completes or fails for good.
 * *output (may be NULL) gets the output, borrowed.
 * Returns 0, EVS_EFAILED (evs_run_error tells why), or what
 * evs_run_step_begin returns.
 */
EVS_EXTERN int evs_run_step(evs_run *r, const char *name, const char *input,
                            const char *options, evs_step_fn fn, void *arg,
                            const char **output, evs_error_info *err);

/* ---------------------------------------------------------------- */
/* Time, events, versions                                           */
/* ---------------------------------------------------------------- */

/**
 * Durable sleep: a step "sleep" with a timer, fired after `ms`
 * milliseconds (>= 0) from its first run; a re-run waits only for what
 * is left. Returns 0, EVS_ESUSPENDED (suspend mode, not yet due), or as
 * evs_run_step_begin.
 */
EVS_EXTERN int evs_run_sleep(evs_run *r, int64_t ms, evs_error_info *err);

/** As evs_run_sleep, until `at_us` (µs since the epoch). */
EVS_EXTERN int evs_run_sleep_until(evs_run *r, int64_t at_us,
                                   evs_error_info *err);

/**
 * Waits for an external event of type `event` (1 to 64 bytes, as a step
 * name), taking the oldest one buffered: its payload is then
 * evs_run_result. `timeout_ms` 0 waits for ever; otherwise the wait ends
 * after that long from its first run, and returns -ETIMEDOUT (recorded
 * as a failure of type "timeout"). Returns 0, -ETIMEDOUT,
 * EVS_ESUSPENDED (suspend mode, nothing yet), or as evs_run_step_begin.
 */
EVS_EXTERN int evs_run_wait_event(evs_run *r, const char *event,
                                  int64_t timeout_ms, evs_error_info *err);

/**
 * Whether the run takes the patched path of change `change_id` (as a
 * step name): 1 for a run that reaches this point first on code that
 * has the patch (recorded as version_decision 1), 0 for a run whose
 * history had already gone past it without one (nothing recorded), and
 * the recorded answer ever after. Returns 1, 0, or a negative code.
 */
EVS_EXTERN int evs_run_patched(evs_run *r, const char *change_id,
                               evs_error_info *err);

/* ---------------------------------------------------------------- */
/* Parallel branches                                                */
/* ---------------------------------------------------------------- */

/**
 * Opens branch `name` (a step name; numbered by occurrence as steps are)
 * of the path of `r`: a path of its own, "<r's path>/<name>", recorded
 * as path_branched and path_started, so that evdump and evreplay show it
 * as they show a definition's branches. *out is a handle on it: give it
 * to another thread, which runs steps, sleeps and waits on it while `r`
 * and the other branches go on, then ends it with evs_run_branch_end (or
 * _fail), and closes it with evs_run_close. A branch may branch in turn.
 * On a re-run the same call opens the recorded branch, whose calls
 * replay. Returns 0, or as evs_run_step_begin.
 */
EVS_EXTERN int evs_run_branch(evs_run *r, const char *name, evs_run **out,
                              evs_error_info *err);

/**
 * Ends branch `b`: its path completes, and its output (what a join
 * gives for it) is the output of its last step. Returns 0, -ECANCELED
 * (the branch was cancelled: a join was decided without it, or the run
 * ended), EVS_ENONDET (the history holds more on the branch), -EINVAL
 * (not a branch), or a store error.
 */
EVS_EXTERN int evs_run_branch_end(evs_run *b, evs_error_info *err);

/** Ends branch `b` failed, with an error of `type` and `message`.
 *  Returns as evs_run_branch_end. */
EVS_EXTERN int evs_run_branch_fail(evs_run *b, const char *type,
                                   const char *message, evs_error_info *err);

/**
 * Waits for branches[0..n) of r's path (Task.all, .any, .race), as a
 * step of kind "join", named "join" (numbered by occurrence):
 *  "all"  (NULL too) completes when every branch has completed; fails as
 *         soon as one fails or is cancelled;
 *  "any"  completes when the first branch completes; fails when every
 *         one has failed;
 *  "race" ends with the first branch to end, either way.
 * When it is decided, the branches still live are cancelled (path_
 * cancelled; their threads' next calls return -ECANCELED, and a step
 * they were running is not recorded). Its result (evs_run_result) is a
 * JSON object mapping each branch's name to its output: every branch's
 * for "all", the winner's for "any" and "race". A failure's error
 * (evs_run_error) has type "join_failed" and the failed branch's error
 * as "cause". The branches' threads must be running: the join blocks
 * until they end (or, in suspend mode, returns EVS_ESUSPENDED once one
 * of them suspended the run). On a re-run it returns the recorded
 * outcome. Returns 0, EVS_EFAILED, -EINVAL (a bad mode, or a handle that
 * is not a branch of r's path), or as evs_run_step_begin.
 */
EVS_EXTERN int evs_run_join(evs_run *r, const char *mode,
                            evs_run *const *branches, size_t n,
                            evs_error_info *err);

/* ---------------------------------------------------------------- */
/* Ending                                                           */
/* ---------------------------------------------------------------- */

/**
 * Completes the run with `output` (JSON; NULL is null): its outputs.
 * Branches still live are cancelled first. Durable; the snapshot is
 * saved. Only on the root handle (a branch: -EINVAL). Returns 0, EVS_ENONDET (the history
 * holds more steps), EVS_EFINISHED, -EBUSY, EVS_EPARSE, or a store
 * error.
 */
EVS_EXTERN int evs_run_complete(evs_run *r, const char *output,
                                evs_error_info *err);

/**
 * Fails the run with an error of `type` (NULL: "error") and `message`:
 * the run ends failed, and the retry strategies may retry it. Returns as
 * evs_run_complete.
 */
EVS_EXTERN int evs_run_fail(evs_run *r, const char *type, const char *message,
                            evs_error_info *err);

/**
 * Continues the run as new: a successor run is created atomically with
 * `inputs` (a JSON object; NULL: the run's own), the events it received
 * and no wait has taken (with their ids), and the code version this
 * handle was opened with, linked to this run (lineage continued_from);
 * then this run ends `continued`, naming it (branches still live are
 * cancelled). The successor's id, derived from this one's ("id.c2",
 * then "id.c3"...; a crash between the two finds the same one again), is
 * written to out_id (may be NULL): the host opens it (evs_run_open with
 * NULL workflow and inputs) and runs its code from the start. Requests
 * posted to any member of the chain reach the last (evs_run_send).
 * Returns 0, EVS_ENONDET, -EBUSY, -EINVAL (a branch), EVS_EPARSE, -E2BIG
 * (more than 62 events wait to be taken), or a store error.
 */
EVS_EXTERN int evs_run_continue_as_new(evs_run *r, const char *inputs,
                                       char out_id[EVS_ID_MAX + 1],
                                       evs_error_info *err);

/** The successor of a run that continued as new, "" otherwise.
 *  Borrowed. */
EVS_EXTERN const char *evs_run_continued_as(evs_run *r);

/* ---------------------------------------------------------------- */
/* Requests                                                         */
/* ---------------------------------------------------------------- */

/**
 * Sends event `event` with `payload` (JSON; NULL: null) to run `id`,
 * from any thread or process, through its inbox: a wait for `event`
 * takes it, now or when it comes to one (events are buffered). A run
 * that continued as new gets it in the last member of its chain.
 * Durable when it returns 0. evs_exec_post (replay.h) is the general
 * form. Returns 0, EVS_EBADID, -ENOENT, EVS_EFINISHED (the run has
 * ended), -EINVAL (no event type, or a payload that is not JSON), or a
 * store error.
 */
EVS_EXTERN int evs_run_send(evs_store *s, const char *id, const char *event,
                            const char *payload, evs_error_info *err);

/**
 * Asks run `id` to "pause", "unpause" or "terminate", with `reason` (a
 * string, may be NULL), as `evrun pause|unpause|terminate` does: the run
 * sees it at its next call. Who asked is not recorded
 * (evs_run_request_by records it). Returns as evs_run_send.
 */
EVS_EXTERN int evs_run_request(evs_store *s, const char *id, const char *kind,
                               const char *reason, evs_error_info *err);

/**
 * As evs_run_request, and records who asked: `by` (free text, UTF-8, at
 * most EVS_BY_MAX bytes; NULL or "": not recorded), kept with the reason
 * in the event's `data` and in the run's replayed state (evs_exec_state's
 * paused, resumed, terminated). Returns as evs_run_request; -EINVAL also
 * for a bad `by`.
 */
EVS_EXTERN int evs_run_request_by(evs_store *s, const char *id,
                                  const char *kind, const char *by,
                                  const char *reason, evs_error_info *err);

/* ---------------------------------------------------------------- */
/* Recovery                                                         */
/* ---------------------------------------------------------------- */

/**
 * Lists the runs of `workflow` (NULL: of every workflow) that have not
 * ended and that no process owns (no handle holds the run's lock: its
 * process died, or closed it suspended), as a JSON array, oldest first:
 *   [{"id", "workflow", "version", "status", "due", "wake_at"}, ...]
 * `version` is the code version the run was started under (any: a run
 * is never hidden for its version), `status` its replayed status
 * ("running", "waiting" or "paused"), `due` true when it can go on now
 * (it was cut off while running, a timer, a retry or a wait's timeout
 * has come, an event it waits for or a request is in its inbox), and
 * `wake_at` the earliest time it waits for (RFC 3339), or null. A host
 * re-runs each due run's code (evs_run_open by id, with NULL workflow
 * and inputs), and looks again at wake_at, or when it posts an event.
 * Each run is replayed to judge it, under its lock for that moment.
 * *out (NUL-terminated) is the caller's: free it with
 * evs_free(evs_store_allocator(s), *out).
 * Returns 0, -EINVAL, -ENOMEM, or what listing, opening and replaying
 * return (EVS_ECORRUPT, EVS_EHISTORY...: err names the run).
 */
EVS_EXTERN int evs_run_recoverable(evs_store *s, const char *workflow,
                                   char **out, evs_error_info *err);

/**
 * Ends the wait of a blocking call on run r (a sleep, a wait for an
 * event, a backoff, a pause, a join), on any of its handles, within
 * poll_ms: that call returns -EINTR, and nothing is lost (the wait stays
 * recorded; calling again goes on with what is left). Callable from any
 * thread and from a signal handler (it only sets an atomic flag). A
 * signal the process catches while a call naps ends the call likewise,
 * as it ends read(2): a binding's Ctrl-C handler then runs at once.
 * Accepts NULL.
 */
EVS_EXTERN void evs_run_interrupt(evs_run *r);

/* ---------------------------------------------------------------- */
/* Reading a run                                                    */
/* ---------------------------------------------------------------- */

/** The run's id. Borrowed. */
EVS_EXTERN const char *evs_run_id(evs_run *r);
/**
 * This handle's runner id: a UUIDv7 made by evs_run_open, different for
 * every open. When the run was not created by this open and has not
 * ended, the first event the handle records is execution_taken_over,
 * naming it with the host's name and the process id (formats/RUNS.md
 * §6). Borrowed, valid until the last handle of the run is closed.
 */
EVS_EXTERN const char *evs_run_runner(evs_run *r);
/** The workflow name it was started with. Borrowed. */
EVS_EXTERN const char *evs_run_workflow(evs_run *r);
/** The code version it was started with ("" if none). Borrowed. */
EVS_EXTERN const char *evs_run_version(evs_run *r);
/** Its inputs, compact JSON. Borrowed. */
EVS_EXTERN const char *evs_run_inputs(evs_run *r);
/** Its status: "running", "waiting", "paused", "completed", "failed",
 *  "terminated" or "continued". Static. */
EVS_EXTERN const char *evs_run_status(evs_run *r);
/** Its outputs once completed, else "null". Borrowed. */
EVS_EXTERN const char *evs_run_output(evs_run *r);
/** The result of the last step, sleep or wait call (JSON; "null" if
 *  none). Borrowed. */
EVS_EXTERN const char *evs_run_result(evs_run *r);
/** The error of the last failed step, or of the run once failed:
 *  {"type","message","retryable"}; "null" if none. Borrowed. */
EVS_EXTERN const char *evs_run_error(evs_run *r);
/** 1 while the code is behind the history (its calls replay), else 0. */
EVS_EXTERN int evs_run_replaying(evs_run *r);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_RUN_H */
