/*
 * workflow_step.c: parsing one step of a workflow definition
 * (formats/WORKFLOWS.md §2): the members each kind allows, the step's
 * edges and their conditions, retry policies, joins, argument lists, and
 * the checks of joins against the edges that create paths. The document
 * around the steps, and the helpers used here, are in workflow.c.
 */
#include "workflow_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Conditions                                                         */
/* ------------------------------------------------------------------ */

static const char *const cond_ops[] = {
    [EVS__WF_EQ] = "eq", [EVS__WF_NE] = "ne",         [EVS__WF_LT] = "lt",
    [EVS__WF_LE] = "le", [EVS__WF_GT] = "gt",         [EVS__WF_GE] = "ge",
    [EVS__WF_IN] = "in", [EVS__WF_EXISTS] = "exists", [EVS__WF_AND] = "and",
    [EVS__WF_OR] = "or", [EVS__WF_NOT] = "not",
};

static int parse_cond(evs__wf_parser *p, evs_span v, evs_wf_cond *c)
{
    evs__jit it;
    evs_span k, x, ops[2];
    evs_wf_cond *kids;
    size_t n = 0, i;
    int op = -1, rc;

    memset(c, 0, sizeof(*c));
    c->alloc = p->alloc;
    if (evs__span_eq_cstr(v, "true") || evs__span_eq_cstr(v, "false")) {
        c->op = v.ptr[0] == 't' ? EVS__WF_TRUE : EVS__WF_FALSE;
        return 0;
    }
    if (evs__json_iter_begin(&it, v, '{') != 0 ||
        evs__json_obj_next(&it, &k, &x) != 1 ||
        evs__json_obj_next(&it, &k, &x) != 0)
        return evs__wf_fail(p,
                            "a condition is true, false or an object with one "
                            "operator");
    evs__json_iter_begin(&it, v, '{');
    evs__json_obj_next(&it, &k, &x);
    for (i = EVS__WF_EQ; i <= EVS__WF_NOT; i++)
        if (evs__wf_key_eq(k, cond_ops[i], strlen(cond_ops[i])))
            op = (int)i;
    if (op < 0)
        return evs__wf_fail(p, "unknown condition operator \"%.*s\"",
                            (int)(k.len > 32 ? 32 : k.len), k.ptr);
    c->op = op;
    if (op <= EVS__WF_IN) {
        if (evs__json_iter_begin(&it, x, '[') != 0)
            goto two;
        while (n < 3 && evs__json_arr_next(&it, &ops[n < 2 ? n : 1]) == 1)
            n++;
        if (n != 2)
            goto two;
        c->a = ops[0];
        c->b = ops[1];
        if ((rc = evs__wf_check_tmpl(p, c->a, 0, "condition")) != 0 ||
            (rc = evs__wf_check_tmpl(p, c->b, 0, "condition")) != 0)
            return rc;
        return 0;
    }
    if (op == EVS__WF_EXISTS) {
        if (x.ptr[0] != '"' ||
            !evs__wf_is_one_ref(p->scratch, evs__wf_scratch_str(p, x)))
            return evs__wf_fail(p, "\"exists\" takes one \"${...}\" reference");
        c->a = x;
        return evs__wf_check_tmpl(p, x, 0, "condition");
    }
    n = op == EVS__WF_NOT ? 1 : evs__wf_arr_count(x);
    if (op != EVS__WF_NOT && (x.ptr[0] != '[' || n == 0))
        return evs__wf_fail(p, "\"%s\" takes a non-empty array of conditions",
                            cond_ops[op]);
    if (!(kids = evs__wf_alloc(p->h, n * sizeof(*kids))))
        return -ENOMEM;
    c->kids = kids;
    c->n_kids = n;
    if (op == EVS__WF_NOT)
        return parse_cond(p, x, kids);
    evs__json_iter_begin(&it, x, '[');
    for (i = 0; evs__json_arr_next(&it, &k) == 1; i++)
        if ((rc = parse_cond(p, k, &kids[i])) != 0)
            return rc;
    return 0;
two:
    return evs__wf_fail(p, "\"%s\" takes an array of two operands",
                        cond_ops[op]);
}

/* ------------------------------------------------------------------ */
/* Steps                                                              */
/* ------------------------------------------------------------------ */

enum {
    M_NAME,
    M_KIND,
    M_ACTION,
    M_PARAMS,
    M_TIMEOUT,
    M_DURATION,
    M_UNTIL,
    M_EVENT,
    M_PATHS,
    M_MODE,
    M_STORE,
    M_EACH,
    M_RETRY,
    M_NEXT,
    M_THEN,
    M_CHANGE,
    M_MIN,
    M_MAX,
    M_START_AT,
    M_CARRY,
    M_EXEC,
    N_MEMBERS
};

#define K(k) (1u << (k))
#define K_ALL 0x7fu

static const char *const step_members[N_MEMBERS] = {
    "name",     "kind",  "action", "params",    "timeout_ms", "duration_ms",
    "until",    "event", "paths",  "mode",      "store",      "each",
    "retry",    "next",  "then",   "change_id", "min",        "max",
    "start_at", "carry", "exec",
};

/* The kinds each member is allowed in. */
static const unsigned member_kinds[N_MEMBERS] = {
    [M_NAME] = K_ALL,
    [M_KIND] = K_ALL,
    [M_ACTION] = K(EVS_WF_ACTION),
    [M_PARAMS] = K(EVS_WF_ACTION),
    [M_TIMEOUT] = K(EVS_WF_ACTION) | K(EVS_WF_WAIT_EVENT),
    [M_DURATION] = K(EVS_WF_SLEEP),
    [M_UNTIL] = K(EVS_WF_SLEEP),
    [M_EVENT] = K(EVS_WF_WAIT_EVENT),
    [M_PATHS] = K(EVS_WF_JOIN),
    [M_MODE] = K(EVS_WF_JOIN),
    [M_STORE] = K(EVS_WF_ACTION) | K(EVS_WF_WAIT_EVENT) | K(EVS_WF_JOIN) |
                K(EVS_WF_VERSION),
    [M_EACH] = K(EVS_WF_ACTION),
    [M_RETRY] = K(EVS_WF_ACTION),
    [M_NEXT] = K_ALL & ~K(EVS_WF_END) & ~K(EVS_WF_CONTINUE),
    [M_THEN] = K_ALL & ~K(EVS_WF_END) & ~K(EVS_WF_CONTINUE),
    [M_CHANGE] = K(EVS_WF_VERSION),
    [M_MIN] = K(EVS_WF_VERSION),
    [M_MAX] = K(EVS_WF_VERSION),
    [M_START_AT] = K(EVS_WF_CONTINUE),
    [M_CARRY] = K(EVS_WF_CONTINUE),
    [M_EXEC] = K(EVS_WF_ACTION),
};

static const char *const kind_names[] = {
    "action", "sleep",   "wait_event",      "join",
    "end",    "version", "continue_as_new",
};

const char *evs_wf_kind_name(evs_wf_kind k)
{
    if ((unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]))
        return kind_names[k];
    return "unknown";
}

static const char *const join_all[] = {"*"};

static int parse_retry(evs__wf_parser *p, evs_wf_retry *r, evs_span v)
{
    static const char *const names[] = {
        "max_attempts",        "max_interval_ms", "initial_interval_ms",
        "backoff_coefficient", "jitter",          "non_retryable",
    };
    evs_span m[6], x;
    const char **types;
    int64_t i64;
    evs__jit it;
    size_t i;
    int rc;

    if ((rc = evs__wf_take_members(p, v, "\"retry\"", names, 6, m)) != 0)
        return rc;
    r->max_attempts = 0;
    if (m[0].len) {
        if ((rc = evs__wf_take_int(p, m[0], "retry.max_attempts", 0, UINT32_MAX,
                                   &i64)) != 0)
            return rc;
        r->max_attempts = (uint32_t)i64;
    }
    if (m[2].len) {
        if (evs__json_int(m[2], &i64) == 0 && i64 < 0)
            return evs__wf_fail(
                p, "retry.initial_interval_ms must not be negative");
        if ((rc = evs__wf_take_int(p, m[2], "retry.initial_interval_ms", 0,
                                   INT64_MAX, &r->initial_ms)) != 0)
            return rc;
    }
    r->max_interval_ms =
        r->initial_ms > INT64_MAX / 100 ? INT64_MAX : r->initial_ms * 100;
    if (m[1].len) {
        if (evs__json_int(m[1], &i64) == 0 && i64 < 0)
            return evs__wf_fail(p,
                                "retry.max_interval_ms must not be negative");
        if ((rc = evs__wf_take_int(p, m[1], "retry.max_interval_ms", 0,
                                   INT64_MAX, &r->max_interval_ms)) != 0)
            return rc;
        if (r->max_interval_ms < r->initial_ms)
            return evs__wf_fail(p, "retry.max_interval_ms is below "
                                   "initial_interval_ms");
    }
    if (m[3].len) {
        if ((rc = evs__wf_take_num(p, m[3], "retry.backoff_coefficient",
                                   &r->backoff)) != 0)
            return rc;
        if (r->backoff < 1.0)
            return evs__wf_fail(p,
                                "retry.backoff_coefficient must be at least 1");
    }
    if (m[4].len) {
        if ((rc = evs__wf_take_num(p, m[4], "retry.jitter", &r->jitter)) != 0)
            return rc;
        if (r->jitter < 0.0 || r->jitter > 1.0)
            return evs__wf_fail(p, "retry.jitter must be between 0 and 1");
    }
    if (m[5].len) {
        if (m[5].ptr[0] != '[')
            return evs__wf_fail(p,
                                "retry.non_retryable must be a list of error "
                                "types");
        r->n_non_retryable = evs__wf_arr_count(m[5]);
        types = evs__wf_alloc(p->h, r->n_non_retryable * sizeof(*types));
        if (!types)
            return -ENOMEM;
        evs__json_iter_begin(&it, m[5], '[');
        for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
            if ((rc = evs__wf_take_str(p, x, "retry.non_retryable",
                                       &types[i])) != 0)
                return rc;
            if (!types[i][0])
                return evs__wf_fail(p,
                                    "retry.non_retryable holds an empty type");
        }
        r->non_retryable = types;
    }
    return 0;
}

static int parse_next(evs__wf_parser *p, evs_wf_step *s, evs_span v)
{
    static const char *const names[] = {"to", "when", "path", "max_passes"};
    evs_span m[4], x;
    evs_wf_edge *e;
    evs_wf_cond *c;
    const char *bi, *bj;
    evs__jit it;
    size_t i, j;
    int rc;

    if (v.ptr[0] != '"' && (v.ptr[0] != '[' || evs__wf_arr_count(v) == 0))
        return evs__wf_fail(p,
                            "\"next\" must be a step name or a non-empty list "
                            "of edges");
    s->n_next = v.ptr[0] == '"' ? 1 : evs__wf_arr_count(v);
    if (!(e = evs__wf_alloc(p->h, s->n_next * sizeof(*e))))
        return -ENOMEM;
    memset(e, 0, s->n_next * sizeof(*e));
    s->next = e;
    if (v.ptr[0] == '"') {
        if ((rc = evs__wf_take_str(p, v, "next", &e->to)) != 0)
            return rc;
        if (!evs__wf_step_named(p, e->to))
            return evs__wf_fail(p, "\"next\" names no step \"%s\"", e->to);
        e->to = evs__wf_step_named(p, e->to)->name;
        return 0;
    }
    p->listy[s->index] = 1;
    evs__json_iter_begin(&it, v, '[');
    for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
        if ((rc = evs__wf_take_members(p, x, "an edge", names, 4, m)) != 0)
            return rc;
        if (!m[0].len)
            return evs__wf_fail(p, "an edge needs \"to\"");
        if ((rc = evs__wf_take_str(p, m[0], "to", &e[i].to)) != 0)
            return rc;
        if (!evs__wf_step_named(p, e[i].to))
            return evs__wf_fail(p, "an edge goes to no step \"%s\"", e[i].to);
        e[i].to = evs__wf_step_named(p, e[i].to)->name;
        if (m[2].len) {
            if ((rc = evs__wf_take_str(p, m[2], "path", &e[i].path)) != 0)
                return rc;
            if (!evs__wf_name_ok(e[i].path, 1))
                return evs__wf_fail(p,
                                    "path name \"%.64s\" is invalid (1 to 64 "
                                    "of A-Z a-z 0-9 _ . -)",
                                    e[i].path);
        }
        if (m[3].len) {
            if ((rc = evs__wf_take_int(p, m[3], "max_passes", 1, INT64_MAX,
                                       &e[i].max_passes)) != 0)
                return rc;
            if (e[i].path)
                return evs__wf_fail(p, "an edge with \"path\" branches, never "
                                       "loops: \"max_passes\" is for an edge "
                                       "that moves the path");
        }
        if (m[1].len) {
            if (!(c = evs__wf_alloc(p->h, sizeof(*c))))
                return -ENOMEM;
            if ((rc = parse_cond(p, m[1], c)) != 0)
                return rc;
            e[i].when = c;
        }
        bi = e[i].path ? e[i].path : e[i].to;
        for (j = 0; j < i; j++) {
            bj = e[j].path ? e[j].path : e[j].to;
            if (strcmp(bi, bj) == 0)
                return evs__wf_fail(p, "two edges create the branch \"%s\"",
                                    bi);
        }
    }
    return 0;
}

static int parse_join(evs__wf_parser *p, evs_wf_step *s, const evs_span *m)
{
    const char **paths;
    const char *mode;
    evs__jit it;
    evs_span x;
    size_t i, j, n;
    int rc;

    if (!m[M_PATHS].len)
        return evs__wf_fail(p, "a join step needs \"paths\"");
    if (evs__span_eq_cstr(m[M_PATHS], "\"*\"")) {
        s->join_paths = join_all;
        s->n_join_paths = 1;
    } else {
        n = evs__wf_arr_count(m[M_PATHS]);
        if (m[M_PATHS].ptr[0] != '[' || n == 0)
            return evs__wf_fail(
                p, "\"paths\" must be \"*\" or a non-empty list of "
                   "path names");
        if (!(paths = evs__wf_alloc(p->h, n * sizeof(*paths))))
            return -ENOMEM;
        evs__json_iter_begin(&it, m[M_PATHS], '[');
        for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
            if ((rc = evs__wf_take_str(p, x, "paths", &paths[i])) != 0)
                return rc;
            for (j = 0; j < i; j++)
                if (strcmp(paths[i], paths[j]) == 0)
                    return evs__wf_fail(p, "\"paths\" names \"%s\" twice",
                                        paths[i]);
        }
        s->join_paths = paths;
        s->n_join_paths = n;
    }
    if (m[M_MODE].len) {
        if ((rc = evs__wf_take_str(p, m[M_MODE], "mode", &mode)) != 0)
            return rc;
        if (strcmp(mode, "all") == 0)
            s->join_mode = EVS_JOIN_ALL;
        else if (strcmp(mode, "any") == 0)
            s->join_mode = EVS_JOIN_ANY;
        else if (strcmp(mode, "race") == 0)
            s->join_mode = EVS_JOIN_RACE;
        else
            return evs__wf_fail(
                p, "unknown join mode \"%s\" (all, any or race)", mode);
    }
    return 0;
}

/* The next word of an "exec:" string at *w, and its length; NULL at
 * the end. Words are separated by blanks (spaces and tabs). */
static const char *next_word(const char **w, size_t *len)
{
    const char *start = *w + strspn(*w, " \t");

    *len = strcspn(start, " \t");
    *w = start + *len;
    return *len ? start : NULL;
}

/*
 * The program and arguments of an exec step: the words of the string
 * after "exec:" (no quoting), or the strings of an `exec` array (`arr`),
 * taken as written. Either way the program comes first and is not empty.
 */
static int parse_argv(evs__wf_parser *p, evs_wf_step *s, evs_span arr)
{
    const char **argv, *w = s->action + 5, *word;
    evs__jit it;
    evs_span x;
    size_t n = 0, i, len;
    int rc;

    if (arr.len && (arr.ptr[0] != '[' || (n = evs__wf_arr_count(arr)) == 0))
        return evs__wf_fail(p, "\"exec\" must be a non-empty list of strings");
    while (!arr.len && next_word(&w, &len))
        n++;
    if (n == 0)
        return evs__wf_fail(p, "\"exec:\" names no program");
    if (!(argv = evs__wf_alloc(p->h, (n + 1) * sizeof(*argv))))
        return -ENOMEM;
    w = s->action + 5;
    if (arr.len)
        evs__json_iter_begin(&it, arr, '[');
    for (i = 0; i < n; i++) {
        if (!arr.len) {
            char *copy;

            word = next_word(&w, &len);
            if (!(copy = evs__wf_alloc(p->h, len + 1)))
                return -ENOMEM;
            memcpy(copy, word, len);
            copy[len] = '\0';
            argv[i] = copy;
            continue;
        }
        evs__json_arr_next(&it, &x);
        if (x.ptr[0] != '"')
            return evs__wf_fail(p,
                                "\"exec\" must be a non-empty list of strings");
        if ((rc = evs__wf_take_str(p, x, "exec", &argv[i])) != 0)
            return rc;
    }
    argv[n] = NULL;
    if (!argv[0][0])
        return evs__wf_fail(p, "\"exec\" must start with a program");
    s->argv = argv;
    s->n_argv = n;
    return 0;
}

static int parse_action(evs__wf_parser *p, evs_wf_step *s, const evs_span *m)
{
    int rc, known;

    if (!m[M_ACTION].len == !m[M_EXEC].len)
        return evs__wf_fail(p, "an action step needs exactly one of \"action\" "
                               "and \"exec\"");
    if (m[M_EXEC].len) {
        s->action = "exec:";
        if ((rc = parse_argv(p, s, m[M_EXEC])) != 0)
            return rc;
    } else if ((rc = evs__wf_take_str(p, m[M_ACTION], "action", &s->action)) !=
               0) {
        return rc;
    } else if (strncmp(s->action, "exec:", 5) == 0) {
        if ((rc = parse_argv(p, s, (evs_span){0})) != 0)
            return rc;
    } else if (!s->action[0]) {
        return evs__wf_fail(p, "\"action\" is empty");
    } else if (p->has_action) {
        if (!(known = p->has_action(p->arg, s->action)))
            return evs__wf_fail(p, "unknown action \"%.64s\"", s->action);
        p->instant[s->index] = known == EVS_WF_ACTION_INSTANT;
    }
    if (m[M_PARAMS].len) {
        s->params = m[M_PARAMS];
        if ((rc =
                 evs__wf_check_tmpl(p, s->params, m[M_EACH].len > 0, "params")))
            return rc;
    }
    return 0;
}

static int parse_sleep(evs__wf_parser *p, evs_wf_step *s, const evs_span *m)
{
    evs_span d = m[M_DURATION], u = m[M_UNTIL];
    int64_t x;
    size_t n;
    int rc;

    if (!d.len == !u.len)
        return evs__wf_fail(p,
                            "a sleep step needs exactly one of \"duration_ms\" "
                            "and \"until\"");
    if (d.len) {
        if (d.ptr[0] == '"') {
            if (!evs__wf_is_one_ref(p->scratch, evs__wf_scratch_str(p, d)))
                return evs__wf_fail(p,
                                    "\"duration_ms\" must be an integer or one "
                                    "\"${...}\" reference");
            s->duration = d;
            return evs__wf_check_tmpl(p, d, 0, "duration_ms");
        }
        s->duration = d;
        if ((rc = evs__wf_take_int(p, d, "duration_ms", 0, INT64_MAX, &x)) != 0)
            return rc;
        p->instant[s->index] = x == 0; /* a sleep that never waits */
        return 0;
    }
    if (u.ptr[0] != '"')
        return evs__wf_fail(p, "\"until\" must be a string");
    s->until = u;
    n = evs__wf_scratch_str(p, u);
    if (evs__wf_has_ref(p->scratch, n))
        return evs__wf_check_tmpl(p, u, 0, "until");
    if (evs_time_parse(p->scratch, n, &x) != 0)
        return evs__wf_fail(p, "\"until\" is not an RFC 3339 time");
    return 0;
}

/* continue_as_new: "start_at" (a step; default the first), "carry" (a
 * list of variable names; default every variable). */
static int parse_continue(evs__wf_parser *p, evs_wf_step *s, const evs_span *m)
{
    const char **names = NULL;
    evs__jit it;
    evs_span x;
    size_t i, n;
    int rc;

    if (m[M_START_AT].len) {
        if ((rc = evs__wf_take_str(p, m[M_START_AT], "start_at", &s->start_at)))
            return rc;
        if (!evs__wf_step_named(p, s->start_at))
            return evs__wf_fail(p, "\"start_at\" names no step \"%.64s\"",
                                s->start_at);
        s->start_at = evs__wf_step_named(p, s->start_at)->name;
    }
    if (!m[M_CARRY].len) {
        s->carry_all = 1;
        return 0;
    }
    if (m[M_CARRY].ptr[0] != '[')
        return evs__wf_fail(p, "\"carry\" must be a list of variable names");
    n = evs__wf_arr_count(m[M_CARRY]);
    if (n && !(names = evs__wf_alloc(p->h, n * sizeof(*names))))
        return -ENOMEM;
    evs__json_iter_begin(&it, m[M_CARRY], '[');
    for (i = 0; evs__json_arr_next(&it, &x) == 1; i++) {
        if ((rc = evs__wf_take_str(p, x, "carry", &names[i])) != 0)
            return rc;
        if (!evs__wf_name_ok(names[i], 0))
            return evs__wf_fail(p, "variable name \"%.64s\" is invalid",
                                names[i]);
    }
    s->carry = n ? names : NULL;
    s->n_carry = n;
    return 0;
}

int evs__wf_parse_step(evs__wf_parser *p, evs_wf_step *s)
{
    evs_span m[N_MEMBERS];
    const char *kind;
    size_t i;
    int rc;

    p->step = s->name;
    if ((rc = evs__wf_take_members(p, s->raw, "a step", step_members, N_MEMBERS,
                                   m)) != 0)
        return rc;
    if (!m[M_KIND].len)
        return evs__wf_fail(p, "missing member \"kind\"");
    if ((rc = evs__wf_take_str(p, m[M_KIND], "kind", &kind)) != 0)
        return rc;
    for (i = 0; i < 7 && strcmp(kind, kind_names[i]) != 0; i++)
        ;
    if (i == 7)
        return evs__wf_fail(p, "unknown kind \"%.64s\"", kind);
    s->kind = (evs_wf_kind)i;
    /* Neither waits; nor fails by itself, but for a continue_as_new
     * that finds other paths running, which the loop check does not
     * count on (WORKFLOWS.md §2.9). */
    p->instant[s->index] =
        s->kind == EVS_WF_VERSION || s->kind == EVS_WF_CONTINUE;
    for (i = 0; i < N_MEMBERS; i++)
        if (m[i].len && !(member_kinds[i] & K(s->kind)))
            return evs__wf_fail(p,
                                "member \"%s\" is not allowed in a step of "
                                "kind %s",
                                step_members[i], kind_names[s->kind]);
    s->retry.max_attempts = 1; /* no `retry`: the step runs once */
    s->retry.initial_ms = 1000;
    s->retry.backoff = 2.0;
    s->retry.max_interval_ms = 100000;
    switch (s->kind) {
    case EVS_WF_ACTION: rc = parse_action(p, s, m); break;
    case EVS_WF_SLEEP: rc = parse_sleep(p, s, m); break;
    case EVS_WF_WAIT_EVENT:
        if (!m[M_EVENT].len)
            return evs__wf_fail(p, "a wait_event step needs \"event\"");
        if ((rc = evs__wf_take_str(p, m[M_EVENT], "event", &s->event)) == 0 &&
            !s->event[0])
            return evs__wf_fail(p, "\"event\" is empty");
        break;
    case EVS_WF_JOIN: rc = parse_join(p, s, m); break;
    case EVS_WF_CONTINUE: rc = parse_continue(p, s, m); break;
    case EVS_WF_VERSION:
        if (!m[M_CHANGE].len || !m[M_MIN].len || !m[M_MAX].len)
            return evs__wf_fail(p,
                                "a version step needs \"change_id\", \"min\" "
                                "and \"max\"");
        if ((rc = evs__wf_take_str(p, m[M_CHANGE], "change_id",
                                   &s->change_id)) ||
            (rc = evs__wf_take_int(p, m[M_MIN], "min", -1, INT32_MAX,
                                   &s->version_min)) ||
            (rc = evs__wf_take_int(p, m[M_MAX], "max", -1, INT32_MAX,
                                   &s->version_max)))
            return rc;
        if (!evs__wf_name_ok(s->change_id, 0))
            return evs__wf_fail(p,
                                "change_id \"%.64s\" is invalid (1 to 64 of "
                                "A-Z a-z 0-9 _ -)",
                                s->change_id);
        if (s->version_min > s->version_max)
            return evs__wf_fail(p, "\"min\" is greater than \"max\"");
        break;
    default: break;
    }
    if (rc != 0)
        return rc;
    if (m[M_TIMEOUT].len &&
        (rc = evs__wf_take_int(p, m[M_TIMEOUT], "timeout_ms", 0, INT64_MAX,
                               &s->timeout_ms)) != 0)
        return rc;
    if (m[M_STORE].len) {
        if ((rc = evs__wf_take_str(p, m[M_STORE], "store", &s->store)) != 0)
            return rc;
        if (!evs__wf_name_ok(s->store, 0))
            return evs__wf_fail(
                p,
                "variable name \"%.64s\" is invalid (1 to 64 of "
                "A-Z a-z 0-9 _ -)",
                s->store);
    }
    if (m[M_EACH].len) {
        if (m[M_EACH].ptr[0] != '[' &&
            (m[M_EACH].ptr[0] != '"' ||
             !evs__wf_is_one_ref(p->scratch,
                                 evs__wf_scratch_str(p, m[M_EACH]))))
            return evs__wf_fail(p,
                                "\"each\" must be an array or one \"${...}\" "
                                "reference");
        s->each = m[M_EACH];
        if ((rc = evs__wf_check_tmpl(p, s->each, 0, "each")) != 0)
            return rc;
    }
    if (m[M_RETRY].len) {
        s->has_retry = 1;
        s->retry.max_interval_ms = -1;
        s->retry.initial_ms = 1000;
        if ((rc = parse_retry(p, &s->retry, m[M_RETRY])) != 0)
            return rc;
    }
    if (m[M_NEXT].len && (rc = parse_next(p, s, m[M_NEXT])) != 0)
        return rc;
    if (m[M_THEN].len) {
        if (!p->listy[s->index])
            return evs__wf_fail(
                p, "\"then\" needs \"next\" to be a list of edges");
        if ((rc = evs__wf_take_str(p, m[M_THEN], "then", &s->then)) != 0)
            return rc;
        if (!evs__wf_step_named(p, s->then))
            return evs__wf_fail(p, "\"then\" names no step \"%s\"", s->then);
        s->then = evs__wf_step_named(p, s->then)->name;
    }
    return 0;
}

/* A join may only name paths that some edge list of the definition
 * creates: an edge's `path`, or the `to` of an edge without one. */
int evs__wf_check_joins(evs__wf_parser *p)
{
    size_t i, j, k, e;
    int found;

    for (i = 0; i < p->n_steps; i++) {
        const evs_wf_step *s = &p->steps[i];

        if (s->kind != EVS_WF_JOIN || s->join_paths == join_all)
            continue;
        for (j = 0; j < s->n_join_paths; j++) {
            const char *want = s->join_paths[j];

            found = 0;
            for (k = 0; k < p->n_steps && !found; k++) {
                if (!p->listy[k])
                    continue;
                for (e = 0; e < p->steps[k].n_next && !found; e++) {
                    const evs_wf_edge *ed = &p->steps[k].next[e];
                    found = strcmp(ed->path ? ed->path : ed->to, want) == 0;
                }
            }
            if (!found) {
                p->step = s->name;
                return evs__wf_fail(p,
                                    "joins the path \"%s\", which no edge "
                                    "creates",
                                    want);
            }
        }
    }
    return 0;
}
