/*
 * workflow_int.h: what the files of workflow definitions share: the
 * parser (workflow.c), templates (workflow_tmpl.c), conditions
 * (workflow_eval.c), inputs (workflow_inputs.c) and the graph checks
 * (workflow_graph.c).
 */
#ifndef EVS_WORKFLOW_INT_H
#define EVS_WORKFLOW_INT_H

#include "evstore/workflow.h"
#include "formats_int.h"

enum {
    EVS__WF_TRUE,
    EVS__WF_FALSE,
    EVS__WF_EQ,
    EVS__WF_NE,
    EVS__WF_LT,
    EVS__WF_LE,
    EVS__WF_GT,
    EVS__WF_GE,
    EVS__WF_IN,
    EVS__WF_EXISTS,
    EVS__WF_AND,
    EVS__WF_OR,
    EVS__WF_NOT
};

/* A condition as parsed; it lives in its definition's arena. */
struct evs_wf_cond {
    int op;
    evs_span a, b;           /* operands: compact JSON templates; for
                                    EVS__WF_EXISTS, a is the "${ref}"
                                    string */
    const evs_wf_cond *kids; /* and, or, not */
    size_t n_kids;
    const evs_allocator *alloc; /* the definition's, for evaluation */
};

/* How the references of a template are checked. */
enum {
    EVS__REF_SCHEDULE_NOT = 0, /* ${schedule...} refused (definitions) */
    EVS__REF_SCHEDULE_TOO,     /* allowed beside the others */
    EVS__REF_SCHEDULE_ONLY     /* the only root (a schedule's inputs) */
};

typedef struct evs__wf_refck {
    int allow_item;           /* ${item} and ${index} may be used */
    int schedule;             /* EVS__REF_SCHEDULE_* */
    const evs_wf_step *steps; /* ${steps.NAME...} must name one of
                                    these; NULL: not checked */
    size_t n_steps;
    int strict_inputs;          /* ${inputs.NAME...} must name one of */
    const evs_wf_input *inputs; /* these (strict_inputs, §9) */
    size_t n_inputs;
    char *scratch; /* room to unescape any string of the
                                    template (its length will do) */
    char *msg;     /* why, on failure */
    size_t cap;
} evs__wf_refck;

/*
 * The state of one parse (workflow.c), and the helpers that the parser of
 * the document (workflow.c) and that of each step (workflow_step.c)
 * share. Every helper that refuses something says why through
 * evs__wf_fail and returns EVS_EPARSE; others return -ENOMEM.
 */
struct wf_holder;

typedef struct evs__wf_parser {
    struct wf_holder *h;        /* the arena (evs__wf_alloc) */
    const evs_allocator *alloc; /* the definition's */
    evs_wf_def *d;
    evs_wf_step *steps;
    size_t n_steps;
    char *listy;   /* per step: its `next` is a list of edges */
    char *instant; /* per step: it never waits and never fails by
                             itself (WORKFLOWS.md §2.9) */
    evs_error_info *err;
    const char *step; /* the step being read, for errors; NULL: none */
    char *scratch;    /* room to unescape any string of the document */
    size_t scratch_len;
    evs_wf_has_action_fn has_action;
    void *arg;
} evs__wf_parser;

/* Fills p->err (if set: code EVS_EPARSE, kind "definition", the step
 * being read and the message) and returns EVS_EPARSE. */
int evs__wf_fail(evs__wf_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* n bytes (16-aligned) from the definition's arena, or NULL. */
void *evs__wf_alloc(struct wf_holder *h, size_t n);

/* [A-Za-z0-9_-], and '.' if `dots`, 1 to 64 bytes. */
int evs__wf_name_ok(const char *s, int dots);

/* Unescapes the JSON string v into the arena, NUL-terminated; `what`
 * names it in errors. */
int evs__wf_take_str(evs__wf_parser *p, evs_span v, const char *what,
                     const char **out);

/* Unescapes the JSON string v into p->scratch; returns its length. */
size_t evs__wf_scratch_str(evs__wf_parser *p, evs_span v);

/* An integer from min to max. */
int evs__wf_take_int(evs__wf_parser *p, evs_span v, const char *what,
                     int64_t min, int64_t max, int64_t *out);

/* True for the literals true and false. */
int evs__wf_is_bool(evs_span v);

/* A finite number. */
int evs__wf_take_num(evs__wf_parser *p, evs_span v, const char *what,
                     double *out);

/* Collects the members of the object `obj` named in names[0..n) into
 * vals (a member absent stays an empty span), refusing any other. */
int evs__wf_take_members(evs__wf_parser *p, evs_span obj, const char *what,
                         const char *const *names, size_t n, evs_span *vals);

/* Checks the references of a template; `what` names it in errors. */
int evs__wf_check_tmpl(evs__wf_parser *p, evs_span t, int allow_item,
                       const char *what);

/* The step called `name`, or NULL. */
evs_wf_step *evs__wf_step_named(evs__wf_parser *p, const char *name);

/* The number of elements of the array v (0 if it is not one). */
size_t evs__wf_arr_count(evs_span v);

/* Parses step s (its name and raw object already set) (workflow_step.c). */
int evs__wf_parse_step(evs__wf_parser *p, evs_wf_step *s);

/* Refuses a join of a path that no edge list creates (workflow_step.c). */
int evs__wf_check_joins(evs__wf_parser *p);

/* Checks every string of tmpl (valid, compact JSON) for malformed or
 * disallowed references. Returns 0, or -1 with ck->msg set. */
int evs__wf_tmpl_check(const evs__wf_refck *ck, evs_span tmpl);

/* True when the unescaped string s[0..n) is exactly one "${ref}". */
int evs__wf_is_one_ref(const char *s, size_t n);

/* True when the unescaped string s[0..n) holds a reference (or an
 * unterminated "${", which evs__wf_tmpl_check refuses). */
int evs__wf_has_ref(const char *s, size_t n);

/* The body of a JSON string value v (without its quotes). */
static inline evs_span evs__wf_str_body(evs_span v)
{
    evs_span b = {v.ptr + 1, v.len - 2};
    return b;
}

/* The type of the valid JSON value v: 's'tring, 'o'bject, 'a'rray,
 * 'b'oolean, 'z' null or 'n'umber. */
static inline char evs__wf_jtype(evs_span v)
{
    switch (v.ptr[0]) {
    case '"': return 's';
    case '{': return 'o';
    case '[': return 'a';
    case 't':
    case 'f': return 'b';
    case 'n': return 'z';
    default: return 'n';
    }
}

/* True when the raw (still escaped) JSON string body equals s[0..n). */
int evs__wf_key_eq(evs_span raw, const char *s, size_t n);

/* Does the valid JSON value v have the declared input type `type`? */
int evs__wf_type_ok(const char *type, evs_span v);

/* A definition's steps as a graph, for evs__wf_graph_check. */
typedef struct evs__wf_graph {
    const evs_wf_step *steps; /* parsed, their edges checked */
    size_t n_steps;
    const char *instant; /* per step: it never waits and never
                                    fails by itself (WORKFLOWS.md §2.9) */
    const evs_allocator *alloc;
    size_t at; /* on refusal: the step at fault */
    char *msg; /* on refusal: why */
    size_t cap;
} evs__wf_graph;

/* Refuses a step unreachable from the first and a loop that could never
 * wait or end (WORKFLOWS.md §2.9, §3). Returns 0, EVS_EPARSE (g->at and
 * g->msg say where and why) or -ENOMEM. */
int evs__wf_graph_check(evs__wf_graph *g);

/* Refuses objects with duplicate member names anywhere in json (valid
 * JSON). Returns 0, EVS_EPARSE (msg names the member) or -ENOMEM. */
int evs__wf_dup_check(evs_span json, const evs_allocator *a, char *msg,
                      size_t cap);

#endif /* EVS_WORKFLOW_INT_H */
