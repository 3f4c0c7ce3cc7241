/*
 * evstore/workflow.h: workflow definitions.
 *
 * A definition is a JSON document (formats/WORKFLOWS.md): a name, a
 * version, declared inputs, optional outputs and a list of steps. This
 * header parses and checks one, and evaluates what a running step needs
 * from it: `${...}` substitution in parameters and the conditions on its
 * edges. It knows nothing of logs or loops; the orchestrator drives it.
 *
 * Lifecycle: evs_wf_parse -> read the evs_wf_def -> evs_wf_free. A parsed
 * definition is immutable and may be shared by threads.
 */
#ifndef EVSTORE_WORKFLOW_H
#define EVSTORE_WORKFLOW_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum evs_wf_kind {
    EVS_WF_ACTION = 0, /* "action" */
    EVS_WF_SLEEP,      /* "sleep" */
    EVS_WF_WAIT_EVENT, /* "wait_event" */
    EVS_WF_JOIN,       /* "join" */
    EVS_WF_END,        /* "end" */
    EVS_WF_VERSION,    /* "version": a version decision, as Temporal's
                            GetVersion(change_id, min, max) */
    EVS_WF_CONTINUE    /* "continue_as_new": end this run, go on in a
                            successor that carries the state */
} evs_wf_kind;

/** "action", "sleep", ...; never NULL. */
EVS_EXTERN const char *evs_wf_kind_name(evs_wf_kind k);

typedef enum evs_wf_join_mode {
    EVS_JOIN_ALL = 0, /* "all": every path completed (Task.all) */
    EVS_JOIN_ANY,     /* "any": the first path that completes */
    EVS_JOIN_RACE     /* "race": the first path that ends, either way */
} evs_wf_join_mode;

/**
 * A retry policy. With no `retry` member a step runs once (max_attempts
 * 1, the other fields at their defaults). A `retry` object takes
 * Temporal's defaults for what it leaves out.
 */
typedef struct evs_wf_retry {
    uint32_t max_attempts;            /* attempts in all; 0: unlimited
                                   (default 0 in a `retry` object, 1
                                   without one) */
    int64_t initial_ms;               /* default 1000 */
    double backoff;                   /* >= 1; default 2.0 */
    int64_t max_interval_ms;          /* default 100 x initial_ms */
    double jitter;                    /* 0..1: the delay is scaled by a random
                                   factor in [1 - jitter, 1]; default 0 */
    const char *const *non_retryable; /* error types never retried */
    size_t n_non_retryable;
} evs_wf_retry;

/**
 * The delay before attempt `attempt` + 1 after attempt `attempt` (1-based)
 * failed: initial * backoff^(attempt-1), capped at max_interval, then
 * jittered with `rnd` (a uniform number in [0,1)): multiplied by
 * 1 - jitter * rnd and rounded down. Attempt 0 counts as 1, `rnd` is
 * clamped to [0,1], a max_interval_ms <= 0 means 100 x initial_ms, a
 * backoff below 1 counts as 1. NULL gives 0. Pure; thread-safe.
 */
EVS_EXTERN int64_t evs_wf_retry_delay_ms(const evs_wf_retry *r,
                                         uint32_t attempt, double rnd);

/**
 * Whether a failure of type `type` after attempt `attempt` (1-based) is
 * retried: 1 when `retryable` is not 0, `type` is not one of
 * non_retryable (compared bytewise) and max_attempts is 0 (unlimited) or
 * above `attempt`; else 0. NULL gives 0. Pure; thread-safe.
 */
EVS_EXTERN int evs_wf_retry_allows(const evs_wf_retry *r, uint32_t attempt,
                                   evs_span type, int retryable);

typedef struct evs_wf_cond evs_wf_cond; /* a parsed condition */

/** An edge out of a step. */
typedef struct evs_wf_edge {
    const char *to;          /* the next step's name */
    const char *path;        /* name of the path a branch creates; NULL
                                   when the edge does not name one */
    const evs_wf_cond *when; /* NULL: always taken */
    int64_t max_passes;      /* `max_passes`: the edge is not taken once
                                   its `to` has run this many times on
                                   the path (continuations included); the
                                   path fails with error type
                                   "loop_bound". 0: no bound */
} evs_wf_edge;

/**
 * A step. Spans are slices of the definition's compact `json` (JSON text,
 * quotes included for strings); strings are unescaped and NUL-terminated.
 * Everything is borrowed from the definition.
 */
typedef struct evs_wf_step {
    const char *name;
    evs_wf_kind kind;
    size_t index; /* position in the definition */
    evs_span raw; /* the step object as written; hash it with
                                   evs_replay_step_hash */
    /* action */
    const char *action;      /* a registered name, or "exec:CMD ..."
                                   as written, or "exec:" for a step
                                   with an `exec` list */
    const char *const *argv; /* exec steps (action "exec:..."): the
                                   program and its arguments, NULL-
                                   terminated: the words of the string,
                                   or the `exec` list as written */
    size_t n_argv;           /* >= 1 for exec steps; else 0 */
    evs_span params;         /* JSON template; empty if none */
    /* sleep: one of the two */
    evs_span duration; /* integer ms (1500), or one reference
                                   ("${inputs.delay}") */
    evs_span until;    /* an RFC 3339 string, or a string
                                   template */
    /* wait_event */
    const char *event;  /* the event type it waits for */
    int64_t timeout_ms; /* per attempt, for actions and waits;
                                   0: none */
    /* version: the decision for change_id, in [version_min,
     * version_max]; a new execution gets version_max, a replay the
     * recorded value. Its output is the version. */
    const char *change_id;
    int64_t version_min, version_max;
    /* continue_as_new: where the successor starts (NULL: the first
     * step) and the variables it carries (carry_all: every one) */
    const char *start_at;
    const char *const *carry;
    size_t n_carry;
    int carry_all;
    /* join */
    evs_wf_join_mode join_mode;
    const char *const *join_paths; /* path names; {"*"} means every path
                                      this path branched */
    size_t n_join_paths;
    /* common */
    const char *store; /* variable to keep the output in, or NULL */
    evs_span each;     /* JSON array, or a template giving one;
                                   empty if not an `each` step */
    int has_retry;
    evs_wf_retry retry;
    const evs_wf_edge *next;
    size_t n_next;
    const char *then; /* where the path goes on after branching;
                                   NULL: it completes. Only with a list
                                   of edges. */
} evs_wf_step;

/** A declared input. */
typedef struct evs_wf_input {
    const char *name;
    const char *type; /* "string", "number", "integer",
                                   "boolean", "object", "array", "any" */
    int required;
    evs_span default_value; /* JSON; empty if none */
} evs_wf_input;

/** A definition's continue-as-new thresholds (`continue_as_new`,
 *  formats/WORKFLOWS.md §1): each -1 when not given (the runner's
 *  evs_orch_opts then decides), 0 for off. */
typedef struct evs_wf_continue {
    int64_t events;
    int64_t bytes;
    int64_t age_ms;
} evs_wf_continue;

/** A definition's history limits (`history_limits`,
 *  formats/WORKFLOWS.md §1; store.h, "History limits"): each -1 when not
 *  given (the store's then holds), else at least 1. The hard limits
 *  only lower the store's; a warning threshold may be anywhere up to the
 *  hard limit that holds. */
typedef struct evs_wf_limits {
    int64_t warn_events;
    int64_t warn_bytes;
    int64_t max_events;
    int64_t max_bytes;
} evs_wf_limits;

typedef struct evs_wf_def {
    const char *name;
    int64_t version;
    const evs_wf_input *inputs;
    size_t n_inputs;
    int strict_inputs; /* `strict_inputs`: only the declared
                                   inputs may be given or referenced */
    evs_span outputs;  /* JSON template of the execution's outputs;
                                   empty: the last output of the root path */
    const evs_wf_step *steps;
    size_t n_steps;       /* the first step is where a run starts */
    evs_span json;        /* the whole definition, compact, followed
                                   by a NUL */
    char hash[17];        /* XXH3-64 hex of the definition with
                                   members sorted (evs_json_hash) */
    evs_wf_continue cont; /* `continue_as_new` */
    evs_wf_limits limits; /* `history_limits` */
} evs_wf_def;

/**
 * Does the host have an action of this name (registered actions)? 0: no,
 * and the definition is refused. EVS_WF_ACTION_INSTANT: yes, and the
 * action completes at once, never fails and waits for nothing outside
 * the runner, as the orchestrator's built-in `echo`: a loop made only of
 * such steps is refused (formats/WORKFLOWS.md §2.9). Any other value:
 * yes, an action that may take its time or fail.
 */
typedef int (*evs_wf_has_action_fn)(void *arg, const char *name);

#define EVS_WF_ACTION_INSTANT 2

/**
 * Parses and checks a definition (formats/WORKFLOWS.md, which lists every
 * rule). Refuses with EVS_EPARSE, filling *err (may be NULL; common.h)
 * with code EVS_EPARSE, kind "definition", the step at fault in `step`
 * ("" for the document: its name, version, inputs, outputs) and the
 * reason in `msg`, when it finds:
 * malformed JSON (evs_json_check: invalid UTF-8, control characters...),
 * duplicate members at any depth, unknown or missing members, members of
 * the wrong type or not allowed in the step's kind, an unknown kind,
 * duplicate step names, an edge to an unknown step, unreachable steps, a
 * join naming a path no edge creates, a malformed condition or template,
 * a reference to an undeclared input under `strict_inputs`, a bad retry
 * policy, an `exec` that is not a list of strings naming a program, an
 * action that is neither an exec step nor known to `has_action` (NULL:
 * not checked, and no action counts as instant; called during the parse
 * only), and a loop that could never wait or end.
 * `alloc` may be NULL (the C library's); the definition keeps a copy of
 * it, so only its ctx must outlive the definition. On success *out is
 * owned by the caller: free it with evs_wf_free. *out is set only on
 * success. Returns 0, EVS_EPARSE (refused), -ENOMEM (err->msg "out of
 * memory", kind ""). Thread-safe.
 */
EVS_EXTERN int evs_wf_parse(const char *json, size_t len,
                            const evs_allocator *alloc,
                            evs_wf_has_action_fn has_action, void *arg,
                            evs_wf_def **out, evs_error_info *err);

/** The step of this name (borrowed from d), or NULL. d may be NULL. */
EVS_EXTERN const evs_wf_step *evs_wf_find_step(const evs_wf_def *d,
                                               evs_span name);

/** Frees a definition with the allocator it was parsed with. NULL: no-op. */
EVS_EXTERN void evs_wf_free(evs_wf_def *d);

/* ---------------------------------------------------------------- */
/* Evaluation                                                       */
/* ---------------------------------------------------------------- */

/**
 * Where `${...}` references are looked up:
 *   ${inputs.a.b}        the execution's inputs
 *   ${vars.name.a}       a variable (a step's `store`, or set globally)
 *   ${steps.s.output.a}  the output of step s on this path (or, failing
 *                        that, its last output on any path)
 *   ${item}, ${index}    the current `each` item and its index
 *   ${versions.CHANGE}   the version decided for change CHANGE, or -1
 *                        (Temporal's DEFAULT_VERSION) when none was: a
 *                        history that passed the gate before it existed
 *   ${schedule.time}     in a schedule's inputs only: the fire
 *                        (formats/SCHEDULES.md §2.1)
 * Resolvers set *value to compact JSON (borrowed until the call returns)
 * and return 0, or return -ENOENT when there is no such thing.
 */
typedef struct evs_wf_ctx {
    evs_span inputs; /* JSON object; empty means {} */
    evs_span item;   /* the `each` item; empty outside `each` */
    int64_t index;   /* its index; -1 outside `each` */
    int (*var)(void *arg, evs_span name, evs_span *value);
    int (*step_output)(void *arg, evs_span step, evs_span *value);
    /* Sets *version and returns 0, or -ENOENT when none was decided
     * (then ${versions...} is -1). May be NULL. */
    int (*version)(void *arg, evs_span change_id, int64_t *version);
    void *arg;
    /* ${schedule.time} and the rest: the fire a schedule's inputs are
     * rendered for (evstore/schedule.h), a JSON object; empty outside
     * them. A definition may not refer to it. */
    evs_span schedule;
} evs_wf_ctx;

/**
 * Renders a JSON template: a string that is exactly one "${ref}" becomes
 * the referenced JSON value; references inside longer strings are
 * replaced by their text (strings unquoted, other values as compact
 * JSON); "$${" is a literal "${". Member names are never substituted,
 * and strings without a reference are copied as written.
 * *out (compact JSON and a NUL, which *out_len does not count; allocated
 * with `alloc`, NULL: the C library) is owned by the caller and set only
 * on success: free it with evs_free(alloc, *out). An empty template
 * renders as `null`. *err (may be NULL; common.h) gets the code, kind
 * "template" ("" for -ENOMEM) and what went wrong in `msg`; `step` stays
 * "" (the template does not know its step).
 * Returns 0, -ENOENT (a reference to nothing; err->msg names it),
 * EVS_EPARSE (the template is not JSON, a reference is malformed, or a
 * resolver's value is not JSON), -ENOMEM, or a resolver's own error.
 */
EVS_EXTERN int evs_wf_render(const evs_wf_ctx *c, evs_span tmpl,
                             const evs_allocator *alloc, char **out,
                             size_t *out_len, evs_error_info *err);

/**
 * Evaluates a condition (an edge's `when`; NULL is true). A comparison
 * with a missing reference is false; `exists` tells whether a reference
 * resolves. Memory comes from the definition's allocator.
 * Returns 0 and sets *result to 0 or 1; or -ENOMEM, EVS_EPARSE (a
 * resolver's value is not JSON) or a resolver's own error (other than
 * -ENOENT), leaving *result alone.
 */
EVS_EXTERN int evs_wf_cond_eval(const evs_wf_cond *cond, const evs_wf_ctx *c,
                                int *result);

/**
 * Checks `inputs` (a JSON object, empty for {}) against the declared
 * inputs, filling in defaults: *out is the inputs to run with (compact
 * JSON and a NUL, allocated with `alloc`, owned by the caller, set only
 * on success; free it with evs_free(alloc, *out)): the members given, in
 * their order, then the defaults of the absent ones, in declaration
 * order. Undeclared members are kept, or, when the definition has
 * `strict_inputs`, refused. *err (may be NULL; common.h) gets the code,
 * kind "inputs" ("" for -ENOMEM) and the reason in `msg`.
 * Returns 0, EVS_EPARSE (not an object, a duplicate member, a required
 * input missing, a wrong type, an undeclared input under strict_inputs;
 * err->msg says which), -ENOMEM.
 */
EVS_EXTERN int evs_wf_check_inputs(const evs_wf_def *d, evs_span inputs,
                                   const evs_allocator *alloc, char **out,
                                   size_t *out_len, evs_error_info *err);

/**
 * Whether definition d is a service rather than a task (the seed's rule,
 * formats/WORKFLOWS.md §2.9): a task has every loop bounded (a cycle of
 * `next` and `then` moves passes an edge with `max_passes`), an end (a
 * step where a path can complete) and no wait_event step on a loop.
 * `a` may be NULL (malloc). Returns 1 (service), 0 (task) or -ENOMEM.
 * Thread-safe.
 */
EVS_EXTERN int evs_wf_is_service(const evs_allocator *a, const evs_wf_def *d);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_WORKFLOW_H */
