/*
 * run_int.h: the durable-functions layer's insides (include/evstore/run.h).
 *
 * A run handle is the writer of one execution: its log (locked), a
 * recorder on it, and a full replayer that holds the state of every
 * event recorded, applied before it is recorded (as the orchestrator
 * does), so the state is always the log's plus what is buffered.
 *
 * The journal is the order in which the history first started its steps
 * on the root path: one command per step (a step, a sleep, a wait),
 * built while the history is replayed at open. The code's calls consume
 * it in order (next_cmd); each must ask for the command the history
 * holds there, or the call fails with EVS_ENONDET. Past its end the code
 * runs live.
 */
#ifndef EVS_RUN_INT_H
#define EVS_RUN_INT_H

#include "evstore/recorder.h"
#include "evstore/replay.h"
#include "evstore/run.h"
#include "evstore/workflow.h"
#include "formats_shared.h"
#include "takeover.h"
#include "hist_limits.h"

#include <pthread.h>
#include <stdatomic.h>

/* Step names: 1 to 64 bytes, plus "#<occurrence>". A branch's path is
 * its parent's id, "/" and its step name, at most EVS_ID_MAX bytes. */
#define RUN_NAME_MAX 64
#define RUN_STEP_MAX (RUN_NAME_MAX + 12)

/* What kind of command a step is: its `kind` in step_started. */
#define RUN_KIND_STEP "step"
#define RUN_KIND_SLEEP "sleep"
#define RUN_KIND_WAIT "wait_event"
#define RUN_KIND_BRANCH "branch"
#define RUN_KIND_JOIN "join"

typedef struct run_cmd {
    char *step;   /* the recorded step name ("llm#3"), NUL-terminated */
    char *kind;   /* its recorded kind */
    uint64_t seq; /* its first step_started (or the path_branched) */
} run_cmd;

/* The commands of one path, in the order the history first started
 * them. */
typedef struct run_journal {
    char *path;
    run_cmd *cmds;
    size_t n, cap;
} run_journal;

/* How many times each step name was asked for: open addressing. */
typedef struct run_occ {
    char *name;
    uint32_t count;
} run_occ;

/* What the handles of one run share: the writer and its state. Every
 * field is guarded by mu, which a call holds except while it waits
 * (naps, a step's body, a join). */
typedef struct run_core {
    evs_store *s;
    const evs_allocator *alloc;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a path ended, or the run did */
    char id[EVS_ID_MAX + 1];
    size_t id_len;
    char *workflow, *version, *inputs;
    char *host_version; /* the version the host opened it with */
    evs_log *log;
    evs_recorder *rec;
    evs_replay *rp;
    evs__jbuf wf_data; /* the snapshot's workflow_data */

    /* options */
    int suspend;
    int64_t poll_ms;
    evs_wf_def *policy_def; /* holds the default retry policy */
    evs_wf_limits own_limits; /* options.history_limits */

    /* History limits (run.c): those that hold, and whether the run is
     * being failed at its hard limit. */
    evs__limits lim;
    int limit_failing;
    char limit_why[160]; /* once failed at it: which limit, what size */

    run_journal *journals;
    size_t n_journals, cap_journals;
    size_t handles;        /* open handles: the root's and its branches' */
    size_t open_steps;     /* steps begun and not ended, on any handle */
    evs_inbox_watch watch; /* of the inbox, between calls */

    int broken; /* a write failed: every call returns broken_rc */
    int broken_rc;
    uint64_t snap_seq;    /* the last sequence a snapshot was saved at */
    int suspended;        /* EVS_ESUSPENDED was returned: every call returns it
                      again; the host closes the run and re-runs it */
    uint64_t rng;         /* retry jitter (xorshift64) */
    /* This handle's runner, and the takeover of a run another runner
     * wrote: recorded before the first event this one records
     * (evs__run_emit_on), at takeover_seq; from_seq is the log's last
     * sequence at open. */
    evs__runner me;
    int taking_over;
    uint64_t from_seq, takeover_seq;
    atomic_int interrupt; /* evs_run_interrupt asked (any thread, or a
                             signal handler) */

    /* The lease's renewal (run_lease.c), on a store of leases only: its
     * thread, and what stops it (lease_mu guards lease_stop). lease_lost
     * is set by the thread when another runner took the run over. */
    int renewing;
    pthread_t lease_thread;
    pthread_mutex_t lease_mu;
    pthread_cond_t lease_cv;
    int lease_stop;
    atomic_int lease_lost;
} run_core;

/* A handle: the root path's (evs_run_open) or a branch's
 * (evs_run_branch). Its own fields are used by one thread at a time. */
struct evs_run {
    run_core *c;
    evs_run *parent; /* NULL for the root */
    char path[EVS_ID_MAX + 1];
    size_t journal; /* index in c->journals */
    size_t next_cmd;
    run_occ *occ;
    size_t n_occ, cap_occ;

    /* the last command named (evs_run_step_name), and whether the
     * history answered it */
    char named[RUN_STEP_MAX + 1];
    int replayed;

    /* a command whose call was interrupted (-EINTR) after it was named:
     * the next call must be the same, and goes on with it */
    char pending[RUN_STEP_MAX + 1];
    char pending_base[RUN_NAME_MAX + 1];
    char pending_kind[16];

    /* the open step */
    int open;
    char step[RUN_STEP_MAX + 1];
    char key[EVS_ID_MAX * 2 + RUN_STEP_MAX + 8];
    uint32_t attempt;
    evs_wf_def *step_policy_def; /* its own policy, if it gave one */
    /* a step whose retry was scheduled and that has not begun again */
    char retrying[RUN_STEP_MAX + 1];
    char retrying_base[RUN_NAME_MAX + 1];

    /* what evs_step_fn gave */
    evs__jbuf fn_out, fn_type, fn_msg;
    int fn_has_out, fn_has_err, fn_retryable;
    int fn_oom; /* keeping what fn gave ran out of memory */

    /* borrowed strings the accessors return */
    evs__jbuf result, error, output;
};

/* The next command the history holds for r's path, or NULL past the end
 * of its journal (the code then runs live). */
static inline const run_cmd *evs__run_next_cmd(const evs_run *r)
{
    const run_journal *j = &r->c->journals[r->journal];

    return r->next_cmd < j->n ? &j->cmds[r->next_cmd] : NULL;
}

/* Appends what `x` holds to `d`, and x's failure with it: an event whose
 * data could not be built whole is never recorded (evs__run_emit). */
static inline void evs__run_jb_cat(evs__jbuf *d, const evs__jbuf *x)
{
    if (x->err)
        d->err = x->err;
    else
        evs__jb_raw(d, x->p, x->len);
}

/* run.c */
evs_run *evs__run_handle_new(run_core *c, evs_run *parent, const char *path);
int evs__run_journal(run_core *c, evs_span path, size_t *out);
int evs__run_emit_on(evs_run *r, const char *path, const char *req_id,
                     const char *type, const char *step, const evs__jbuf *data,
                     evs_error_info *err);
int evs__run_cancel_paths(evs_run *r, const char *why, int keep_root,
                          evs_error_info *err);
int evs__run_nap(evs_run *r, int64_t ms, evs_error_info *err);
int evs__run_interrupted(evs_run *r, int signalled, evs_error_info *err);
void evs__run_before_blocking(evs_run *r);
int evs__run_emit(evs_run *r, const char *req_id, const char *type,
                  const char *step, const evs__jbuf *data, evs_error_info *err);
int evs__run_flush(evs_run *r, evs_error_info *err);
/* The same with the flags of evs_recorder_flush_flags. */
int evs__run_flush_flags(evs_run *r, unsigned flags, evs_error_info *err);
/* Records the run's takeover if it is due (run_core.taking_over). */
int evs__run_note_takeover(evs_run *r, evs_error_info *err);
int evs__run_save_snapshot(evs_run *r);
int evs__run_set(evs__jbuf *b, evs_span json);
int evs__run_fail(evs_run *r, evs_error_info *err, int code, const char *kind,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The end of every public call: a failure without a message gets one. */
int evs__run_done(evs_run *r, int rc, evs_error_info *err);
int evs__run_usable(evs_run *r, evs_error_info *err);
int evs__run_broken(evs_run *r, int rc, evs_error_info *err, const char *what);
double evs__run_random(evs_run *r);
int evs__run_gate(evs_run *r, evs_error_info *err);
int evs__run_idle(evs_run *r, evs_error_info *err);
int evs__run_wait_until(evs_run *r, int64_t due_us, evs_error_info *err);
int evs__run_check_json(evs_run *r, const char *json, const char *what,
                        evs__jbuf *out, evs_error_info *err);

/* run_lease.c */
/* At open, after the log: renews the lease once, and starts the thread
 * that renews it if the store holds leases, not locks. */
int evs__run_lease_start(evs_run *r, evs_error_info *err);
/* Stops the thread, if any, and waits for it. Without the run's mutex. */
void evs__run_lease_stop(run_core *c);
/* Under the run's mutex: EVS_ELEASE (err filled, the handle broken) if
 * the renewal found the lease lost, else 0. */
int evs__run_lease_check(evs_run *r, evs_error_info *err);
/* Waits for a renewal in flight: one that found the lease lost has
 * said so (lease_lost) when this returns. */
void evs__run_lease_settle(run_core *c);
/* The handle is broken for good: its lease was lost. EVS_ELEASE. */
int evs__run_lease_lost(evs_run *r, evs_error_info *err);

/* run_continue.c */
void evs__run_forward_requests(evs_run *r, const char *succ);

/* run_step.c */
int evs__run_name_ok(const char *name);
int evs__run_command(evs_run *r, const char *name, const char *kind,
                     char step[RUN_STEP_MAX + 1], evs_error_info *err);
int evs__run_parse_retry(evs_run *r, evs_span json, evs_wf_def **out,
                         evs_error_info *err);
int evs__run_nondet(evs_run *r, const run_cmd *c, const char *asked,
                    evs_error_info *err);
const evs_step_state *evs__run_find_step(const evs_run *r, const char *step);

#endif /* EVS_RUN_INT_H */
