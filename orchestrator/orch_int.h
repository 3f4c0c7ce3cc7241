/*
 * orch_int.h: the orchestrator's internals, shared by its files.
 *
 *   orch.c        lifecycle and the loop's handles
 *   orch_exec.c   an execution: references, paths, timers, release
 *   orch_flush.c  recording events and flushing them on the threadpool
 *   orch_inbox.c  requests: the inbox, and those of this process
 *   orch_own.c    starting, resuming and adopting executions
 *   drive*.c      the step machine: what each path does next
 *                 (drive_int.h)
 *   actions.c     running actions: callbacks, the threadpool, `exec:`
 *   continue.c    loops (continuation paths) and continue-as-new
 *   strategies.c  retrying an execution that has ended
 *   defchange.c   checking a history against a changed definition
 */
#ifndef EVS_ORCH_INT_H
#define EVS_ORCH_INT_H

#include "evstore/orchestrator.h"
#include "evstore/recorder.h"
#include "formats_shared.h" /* evs__jbuf, to build event data */
#include "hist_limits.h"    /* history limits */
#include "lineage.h"        /* chains of continuations */
#include "takeover.h"       /* runners, and what a takeover records */

#include <stdatomic.h>
#include <stdbool.h>

typedef struct orch_exec orch_exec;
typedef struct orch_timer orch_timer;

/* What an armed timer does when it fires. */
typedef enum timer_kind {
    TK_SLEEP = 0,     /* a sleep step's durable timer */
    TK_RETRY,         /* a retry's backoff */
    TK_WAIT_TIMEOUT,  /* a wait_event step's timeout */
    TK_ACTION_TIMEOUT /* one attempt's timeout (not durable) */
} timer_kind;

struct orch_timer {
    uv_timer_t h;
    orch_exec *x;
    timer_kind kind;
    int64_t due_us;      /* wall-clock time it is due */
    char *path;          /* owned */
    char *id;            /* TK_SLEEP: the timer id; owned */
    evs_action_req *req; /* TK_ACTION_TIMEOUT */
    orch_timer *next;    /* in x->timers */
};

/* Per live path, what this process is doing for it. */
typedef struct orch_path {
    char *id;
    evs_action_req *req;    /* the action in flight */
    orch_timer *timer;      /* a sleep or retry timer armed for it */
    orch_timer *wait_timer; /* its wait's timeout */
} orch_path;

struct evs_action_req {
    evs_orch *o;
    orch_exec *x;
    evs_action_call call;
    char *mem;         /* the call's spans */
    uint64_t need_seq; /* dispatch once this is durable */
    int dispatched;
    int in_work;  /* EVS_ACTION_BLOCKING job running */
    int finished; /* ... and it has its outcome */
    int stale;    /* timed out or orphaned: outcome ignored */
    unsigned flags;
    evs_action_fn fn;
    void *fn_arg;
    orch_timer *timeout;
    /* The outcome, filled by any thread. */
    int failed;
    char *output;
    size_t output_len;
    char *etype, *emsg;
    int retryable;
    evs_action_req *next; /* in o->done / x->waiting_dispatch */
    uv_work_t work;       /* EVS_ACTION_BLOCKING */
    void *exec_state;     /* exec: the subprocess */
};

/* A request picked up from the inbox, removed once its event is durable. */
typedef struct taken_req {
    char id[EVS_REQUEST_ID_LEN + 1];
    uint64_t seq;
    struct taken_req *next;
} taken_req;

struct orch_exec {
    evs_orch *o;
    char id[EVS_ID_MAX + 1];
    size_t id_len;
    evs_log *log;
    evs_recorder *rec;
    evs_replay *rp;
    evs_wf_def *def;
    orch_path *paths; /* live paths this process tracks */
    size_t npaths, cap_paths;
    size_t first_live; /* replay paths before it have ended */
    orch_timer *timers;
    evs_action_req *waiting; /* built, not yet durable */
    size_t nreqs;            /* requests alive (in flight or waiting) */
    taken_req *taken;
    /* Flushing on the threadpool. */
    uv_work_t work;
    int flushing;
    evs_recorder_batch *batch;
    evs_snapshot *snap;
    int snap_final; /* the batch ends the execution: the writer's last */
    int flush_rc, snap_rc;
    uint64_t snap_seq; /* last_seq of the last snapshot */
    int want_snap;
    /* Inbox. */
    uv_fs_event_t *watch;
    int watch_parent; /* watching the directory: no inbox yet */
    /* A backend with no inbox directory to watch (evs_request_dir gives
     * -ENOTSUP, as SQLite's does): its change counter is polled. */
    uv_timer_t *stamp_poll;
    evs_inbox_watch stamp;
    char inbox_path[1024];
    int inbox_dirty;
    /* Lifecycle. */
    int broken; /* gave up: see err */
    int err;
    int released; /* no longer driven; freed when idle */
    int reported;
    int driving;
    int continuing;     /* its successor is being created */
    int service;        /* evs__orch_is_service */
    int64_t last_at_us; /* the last event's timestamp */
    int64_t created_at_us; /* its creation's time, if started here;
                              else 0 (not known) */
    int unread; /* started without reading its inbox (orch_own.c) */
    uint64_t renewed_ms; /* when its lease was claimed or last renewed
                            (uv_now, taken before the round trip) */
    int bounded_move;   /* the path moves by an edge with max_passes */
    char successor[EVS_ID_MAX + 1]; /* once continued as new */
    /* Taken over from another runner (resumed, not started here): its
     * takeover is recorded before the first event this runner records
     * (evs__orch_emit), at takeover_seq; from_seq is the log's last
     * sequence when it was taken. */
    int taking_over;
    uint64_t from_seq, takeover_seq;
    /* History limits (orch_flush.c): those that hold, and whether the
     * execution is being failed, or was, at the hard limit. */
    evs__limits lim;
    uint64_t log_bytes; /* the log's size as of the last flush: read
                           on the loop only when no flush is out, so
                           that it never waits for one */
    int limit_failing;
    int limit_hit;
    int refs;
    orch_exec *next, *prev; /* in o->execs, when listed */
    int listed;
    uint64_t id_hash; /* its slot in o->ix */
};

struct orch_action {
    char *name;
    evs_action_fn fn;
    void *arg;
    unsigned flags;
    struct orch_action *next;
};

struct evs_orch {
    evs_store *store;
    /* Every allocation of the orchestrator goes through its store's
     * allocator (evs_store_opts.alloc; NULL: the C library's), from the
     * loop thread and, for actions' outcomes and flushes, from others
     * (common.h). libuv's own allocations do not (uv_replace_allocator
     * is libuv's, and process-wide). */
    const evs_allocator *alloc;
    evs__runner me; /* this runner, as takeovers name it */
    uv_loop_t *loop;
    uv_loop_t own_loop;
    int own;
    evs_orch_opts opts;
    struct orch_action *actions;
    orch_exec *execs;
    size_t nexecs;
    /* The listed executions by id (orch_exec.c): an open-addressing
     * table of ix_cap slots (a power of two, at most 3/4 full), so that
     * finding one by id costs the same with ten thousand as with ten. */
    orch_exec **ix;
    size_t ix_cap;
    uv_async_t async;
    uv_mutex_t mu;
    evs_action_req *done; /* completed, under mu */
    uv_timer_t poll;
    uv_timer_t grace;
    uv_timer_t sched; /* the next look at the schedules */
    int sched_busy;   /* a look is on the threadpool */
    uint64_t last_adopt_ms;
    uint64_t polls;
    int closing;
    int stopping;
    int stopped;
    int busy;         /* jobs on the threadpool (creations) */
    size_t live_reqs; /* action requests not yet freed */
    uint64_t rnd;     /* xorshift state for jitter */
    /* Lease renewal (orch_lease.c): a round is on the threadpool; when
     * the last began; 1 once the store was seen to hold locks, not
     * leases. */
    int renewing;
    int no_leases;
    /* Work discovery (orch_watch.c): the store's notifications and the
     * poll of their descriptor (heap: closed with the watch), or NULL;
     * no_watch once the backend was seen to have none; no_queue once
     * evs_log_claim said the backend has no work queue. */
    evs_watch *watch;
    uv_poll_t *watch_poll;
    int watch_opening; /* an open is on the threadpool (it connects) */
    /* Each watch that began to listen takes the next epoch, published
     * by the thread that opened it as soon as it listens; watch_epoch is
     * that of the watch attached (o->watch). A start that read the
     * epoch before its creation and finds it the attached watch's at its
     * attach was heard of from its creation on (orch_own.c). */
    _Atomic uint64_t listen_epoch;
    uint64_t watch_epoch;
    int no_watch;
    int no_queue;
    int adopt_due; /* a notification told of work to claim */
    /* Counts what may have told of a request that no owned execution
     * heard: a request to an execution not (yet) owned here, a watch
     * lost. A start that saw it unchanged from before its creation to
     * its attach, under a watch that listened before the creation began
     * (listen_epoch), need not read its new inbox. */
    uint64_t note_gen;
    /* The store could not be reached: the watch and the queue are not
     * tried again before retry_at_ms; retry_ms doubles up to 10 s, and
     * is 0 again after a success. */
    uint64_t retry_at_ms;
    uint64_t retry_ms;
};

/* The store was found unreachable (rc: -ECONNREFUSED, -ECONNRESET) or
 * reachable (rc 0): backs the watch's opening and the queue's claims
 * off, or ends the back-off. Other errors change nothing. (orch_watch.c) */
void evs__orch_reachable(evs_orch *o, int rc);
/* Whether the watch and the queue are backed off now. */
int evs__orch_backed_off(const evs_orch *o);

/* orch_watch.c */
/* From the poll timer, and before a start: opens the store's
 * notifications when there are none (a backend that has them:
 * PostgreSQL), on the threadpool since it connects, and then polls
 * their descriptor on the loop. A request posted to an owned execution
 * reads its inbox at once; work to claim adopts. A new watch reads
 * every inbox once, for what was posted before it listened, and
 * (`adopt`, from the poll timer) claims from the queue. */
void evs__orch_watch_store(evs_orch *o, int adopt);
/* Stops and closes the watch (at close, or when its connection was
 * lost). */
void evs__orch_unwatch_store(evs_orch *o);

/* orch_lease.c */
/* From the poll timer: renews, on the threadpool, the writers' leases of
 * the executions this orchestrator owns, each once a third of the
 * store's lease_ms has passed since its claim or its last renewal (a
 * PostgreSQL store; on the others a writer holds a lock and this stops
 * after its first round). An execution whose lease was lost (another
 * runner took it over) is given up. */
void evs__orch_renew_leases(evs_orch *o);

/* orch.c */
/* Reports a noteworthy thing through the store's log hook, if any, as
 * component "orchestrator"; evs__orch_logf with the record's typed fields
 * (EVS_LOG_FIELDS, formats_shared.h; may be NULL). */
void evs__orch_logf(evs_orch *o, evs_log_level lvl, const evs_log_record *f,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void evs__orch_log(evs_orch *o, evs_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The same through store s's log hook, for what runs without an
 * orchestrator (a schedule's fire), as component "schedule". */
void evs__orch_store_log(evs_store *s, evs_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A copy of s[0..n) and a NUL, from allocator a (NULL when out of
 * memory). */
char *evs__orch_strndup(const evs_allocator *a, const char *s, size_t n);
/* The allocator of store s, which whatever runs without an
 * orchestrator (evs_exec_retry, evs_orch_post, ...) allocates from. */
const evs_allocator *evs__orch_store_alloc(evs_store *s);
/* A number in [0, 1) for jitter (xorshift; not for secrets). */
double evs__orch_random(evs_orch *o);
/* Stops the runner once it has nothing left to do (stop_when_idle) or
 * once stopping lets it; each callback that may have changed that calls
 * it last. */
void evs__orch_check_idle(evs_orch *o);

/* orch_sched.c */
/* Looks at the store's schedules on the threadpool (schedule_ms). */
void evs__orch_sched_cb(uv_timer_t *h);

/* orch_exec.c */
/* The execution `id` this process owns (not released), or NULL. */
orch_exec *evs__orch_find_exec(const evs_orch *o, evs_span id);
/* Lists x among the owned executions (o->execs and o->ix); 0 or -ENOMEM
 * (nothing listed). evs__orch_release unlists it. */
int evs__orch_list_exec(evs_orch *o, orch_exec *x);
/* Drops a reference; the last one frees x. */
void evs__orch_exec_unref(orch_exec *x);
/* What this process tracks for path `id`; made when `create` (NULL when
 * it cannot be: no memory). */
orch_path *evs__orch_path_get(orch_exec *x, evs_span id, int create);
/* Arms a timer due at due_us (wall clock), which holds a reference to x
 * until it is closed. NULL when out of memory. */
orch_timer *evs__orch_timer_arm(orch_exec *x, timer_kind k, evs_span path,
                                evs_span id, int64_t due_us);
/* Disarms and closes t (freed once libuv has closed it). */
void evs__orch_timer_cancel(orch_timer *t);
/* Whether x cannot go on by itself (it waits for the outside world). */
int evs__orch_is_suspended(const orch_exec *x);
/* Reports x's outcome to on_outcome, once. */
void evs__orch_report(orch_exec *x, evs_outcome oc, int err);
/* Stops driving x and drops the orchestrator's reference (idempotent). */
void evs__orch_release(orch_exec *x);
/* Gives x up with err (logged with `why`, NULL: evs_strerror(err)). */
void evs__orch_fail_exec(orch_exec *x, int err, const char *why);

/* orch_flush.c */
/* A replayer in compact mode: the orchestrator only needs what a run can
 * still use, and its snapshots then stay small (replay.h). */
int evs__orch_replay_new(const evs_allocator *a, evs_replay **out);
/* Records one event (id: a request's id, or NULL for a new one) of
 * `type` (an EVS_EV_* string) on path and step, with data (NULL: {}),
 * setting *seq (may be NULL) to its sequence. On failure the execution is
 * given up (evs__orch_fail_exec) and the error returned. */
/* The time events are stamped with: opts.clock_us, or the wall clock. */
int64_t evs__orch_now_us(const evs_orch *o);

int evs__orch_emit(orch_exec *x, const char *id, const char *type,
                   evs_span path, evs_span step, const evs__jbuf *data,
                   uint64_t *seq);
/* Records, if x was taken over from another runner and has not said so
 * yet, execution_taken_over (setting x->takeover_seq). evs__orch_emit
 * calls it before the first event of such a runner. Returns 0 or what
 * evs__orch_emit returns. */
int evs__orch_note_takeover(orch_exec *x);
/* GetVersion: the recorded decision for `change`, checked against
 * [min, max] (outside: the execution is given up with EVS_EVERSION), or
 * a new decision of `max`, recorded on path `pid`. */
int evs__orch_version(orch_exec *x, evs_span pid, evs_span change, int64_t min,
                      int64_t max, int64_t *version);
/* Starts writing what x has recorded (and a snapshot when one is due) on
 * the threadpool, unless a flush is in flight. */
void evs__orch_kick(orch_exec *x);
/* Reports and releases x once it has ended and everything is written. */
void evs__orch_finish_if_done(orch_exec *x);

/* orch_inbox.c */
/* Takes the requests in x's inbox it has not taken yet. */
void evs__orch_inbox_pick(orch_exec *x);
/* Removes the requests whose events are durable. */
void evs__orch_take_done(orch_exec *x);
/* Watches x's inbox (or its directory, until it has one). */
void evs__orch_watch(orch_exec *x);
/* Stops watching (the watcher's reference goes once it is closed). */
void evs__orch_unwatch(orch_exec *x);

/* orch_own.c */
/* An execution of a definition to create (evs_exec_create): its first
 * two events (execution_started, path_started) and its first snapshot,
 * as evs_orch_start and a schedule's fire make it. */
typedef struct evs__creation {
    char id[EVS_ID_MAX + 1];
    size_t id_len;
    evs_event ev[2];
    char uuid[2][EVS_UUID_LEN + 1];
    evs__jbuf d0, d1;
    evs_snapshot snap;
    char *inputs;
    size_t inputs_len;
    char ihash[17];
    evs_wf_def *def; /* owned: the snapshot's spans point into it */
} evs__creation;
/* Builds the creation of execution `id` (empty: a new UUIDv7) of
 * definition d (taken over, even on failure: free c) with `inputs`,
 * checked against its declared inputs (a refusal fills err). Returns 0,
 * EVS_EPARSE (inputs), -ENOMEM. */
int evs__creation_make(evs__creation *c, const evs_allocator *a, evs_wf_def *d,
                       evs_span inputs, evs_span id, int64_t now,
                       evs_error_info *err);
void evs__creation_free(evs__creation *c, const evs_allocator *a);
/* A long-lived runner takes new executions a few at a time, from its
 * poll or when told of work, after the loop has run the work it owns
 * (due timers run before the poll), so resumed work goes first. */
#define EVS__ORCH_ADOPT_BATCH 64

/* Takes up to `max` (0: any number) unfinished executions no runner
 * owns; *count (may be NULL) gets how many. Returns 0 or the first error
 * other than "owned elsewhere". */
int evs__orch_adopt(evs_orch *o, size_t max, size_t *count);

/* continue.c */
/* Walking a chain of executions that continued as new, from any member
 * to the one that goes on (or ended otherwise). A chain that comes back
 * to a member it passed (only a damaged store can hold one) is found
 * after at most twice its length, by Brent's method. */
void evs__orch_wrap(orch_exec *x, evs_span pid, const evs_wf_step *T);
/* The first generation of a continuation path ("x~3" -> "x"). */
evs_span evs__orch_path_base(evs_span id);
evs_span evs__orch_path_latest(const evs_replay *rp, evs_span id, char *buf,
                               size_t cap);
/* How many passes in a row the loop by edge S -> T has made on pid, as
 * the history says: 0 if T has not run on pid, else 1 and one more for
 * each continuation before it, in a row, that ended at S (went round
 * from S). */
int64_t evs__orch_loop_passes(const orch_exec *x, evs_span pid,
                              const evs_wf_step *S, const evs_wf_step *T);

/* Whether d is a service (evs_wf_is_service). Out of memory (from a)
 * reads as no. */
int evs__orch_is_service(const evs_allocator *a, const evs_wf_def *d);
int evs__orch_continue_as_new(orch_exec *x, const char *at, uint64_t generation,
                              const evs_wf_step *carry);
uint64_t evs__orch_generation(orch_exec *x, evs_span pid);
void evs__orch_continue_step(orch_exec *x, evs_span pid, const evs_wf_step *S,
                             int64_t iter, uint32_t attempt,
                             void (*failure)(orch_exec *, evs_span,
                                             const evs_wf_step *, int64_t,
                                             uint32_t, const char *, evs_span,
                                             int));

/* defchange.c */
/* The part of evs_orch_check_definition a definition the history ran
 * under all along needs: the decisions recorded against its version
 * steps' ranges. Returns 0 or EVS_EVERSION, described in info (may be
 * NULL). */
int evs__orch_check_versions(const evs_replay *rp, const evs_wf_def *def,
                             evs_error_info *info);
/* evs_orch_check_definition (without a count of refusals), with its
 * memory from `a` (evs_orch_check_definition's is the C library's). */
int evs__orch_check_definition(const evs_allocator *a, const evs_replay *rp,
                               const evs_wf_def *def, evs_def_finding_fn fn,
                               void *arg, evs_error_info *info);

/* drive.c: the step machine (its files share drive_int.h) */
/* Decides and records what every live path of x does next, until a pass
 * changes nothing, then flushes (evs__orch_kick). */
void evs__drive(orch_exec *x);
/* drive_events.c */
/* The outcome of an action request, on the loop thread. */
void evs__drive_outcome(orch_exec *x, evs_action_req *req);
/* Timer t of x fired. */
void evs__drive_timer(orch_exec *x, orch_timer *t);
/* Takes one request: req_id (EVS_UUID_LEN bytes, not NUL-terminated;
 * NULL for a local one) becomes its event's id. Returns 1 for a control
 * request (pause, unpause, terminate) that was recorded, 0, or an error
 * that gave the execution up. */
int evs__drive_request(orch_exec *x, const char *req_id, evs_span body,
                       uint64_t *seq);

/* actions.c */
/* The registered action `name`, or NULL. */
struct orch_action *evs__actions_find(evs_orch *o, const char *name);
/* Registers the built-in actions. */
int evs__actions_builtin(evs_orch *o);
/* Runs a request whose step_started is durable: a callback on the loop
 * thread, a blocking one on the threadpool, or an `exec:` subprocess. */
void evs__actions_dispatch(evs_action_req *req);
/* Orphans a request in flight (a subprocess is killed). */
void evs__actions_kill(evs_action_req *req);
/* Frees a request and drops what it holds. */
void evs__req_free(evs_action_req *req);

#endif /* EVS_ORCH_INT_H */
