/*
 * evreplay_print.c: looking at the state and the history without moving:
 * print (the execution, its paths, steps, variables, signals, timers,
 * waits, versions, each progress and the state JSON), where, list, event,
 * search and info violations.
 *
 * Everything printed about the state comes from the replay accessors at
 * the current position; everything about events from the history held
 * in memory.
 */
#include "evreplay.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* JSON values shown in tables and one-line fields are cut to this. */
#define VALUE_COLS 60

/* Heap strings for table cells. */
static char *num_cell(int64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return xstrdup(buf);
}

/* A sequence, "-" when 0 (not yet). */
static char *seq_cell(uint64_t v)
{
    char buf[32];

    if (v == 0)
        return xstrdup("-");
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return xstrdup(buf);
}

static char *time_cell(int64_t us)
{
    char buf[40];

    fmt_time(us, buf);
    return xstrdup(buf);
}

static char *span_cell(evs_span v, size_t max_cols)
{
    return text_dup(v, max_cols);
}

static void row_free(table *t, char **c)
{
    table_row(t, (const char *const *)c);
    for (size_t i = 0; i < t->ncols; i++)
        free(c[i]);
}

/* ------------------------------------------------------------------ */
/* print                                                              */
/* ------------------------------------------------------------------ */

/* Who paused, unpaused or terminated it, when and why, if anyone did. */
static void print_control(int w, const char *key, const evs_control_state *c)
{
    char t[40], *by, *step, *why;

    if (!c->seq)
        return;
    fmt_time(c->at_us, t);
    by = text_dup(c->by.len ? c->by : evs_span_cstr("(not recorded)"), 0);
    step = text_dup(c->step, 0);
    why = text_dup(c->reason, VALUE_COLS);
    out_kv(w, key, "%s by %s%s%s%s%s (seq %" PRIu64 ")", t, by,
           *step ? " at step " : "", step, *why ? ": " : "", why, c->seq);
    free(by);
    free(step);
    free(why);
}

static int print_state(session *s)
{
    const evs_exec_state *x = evs_replay_exec(s->r);
    size_t buffered = 0, pending_t = 0, pending_w = 0;
    char t[40];
    const int w = 12;

    for (size_t i = 0; i < evs_replay_signal_count(s->r); i++)
        buffered += evs_replay_signal(s->r, i)->consumed_seq == 0;
    for (size_t i = 0; i < evs_replay_timer_count(s->r); i++) {
        const evs_timer_state *tm = evs_replay_timer(s->r, i);
        pending_t += !tm->fired_seq && !tm->cancelled;
    }
    for (size_t i = 0; i < evs_replay_wait_count(s->r); i++)
        pending_w += evs_replay_wait(s->r, i)->ended_seq == 0;

    out_kv_text(w, "execution",
                x->execution_id.len ? x->execution_id
                                    : evs_span_cstr(s->exec_id));
    out_kv_text(w, "workflow", x->workflow_name);
    if (x->status == EVS_STATUS_PAUSED)
        out_kv(w, "status", "paused (was %s)",
               evs_exec_status_name(x->status_before_pause));
    else
        out_kv(w, "status", "%s", evs_exec_status_name(x->status));
    out_kv(w, "last seq", "%" PRIu64 " of %zu", x->last_seq, s->n);
    fmt_time(x->started_at_us, t);
    out_kv(w, "started", "%s", t);
    fmt_time(x->ended_at_us, t);
    out_kv(w, "ended", "%s", t);
    if (x->failed_seq) {
        char *l =
            step_label(x->failed_path, x->failed_step, x->failed_iteration);
        out_kv(w, "failure", "%s at seq %" PRIu64, l, x->failed_seq);
        free(l);
    } else {
        out_kv(w, "failure", "none");
    }
    out_kv(w, "paths", "%zu", evs_replay_path_count(s->r));
    out_kv(w, "steps", "%zu", evs_replay_step_count(s->r));
    out_kv(w, "each", "%zu", evs_replay_each_count(s->r));
    out_kv(w, "variables", "%zu", evs_replay_var_count(s->r));
    out_kv(w, "signals", "%zu (%zu buffered)", evs_replay_signal_count(s->r),
           buffered);
    out_kv(w, "versions", "%zu", evs_replay_version_count(s->r));
    out_kv(w, "timers", "%zu (%zu pending)", evs_replay_timer_count(s->r),
           pending_t);
    out_kv(w, "waits", "%zu (%zu pending)", evs_replay_wait_count(s->r),
           pending_w);
    {
        static const char *const keys[] = {"inputs", "outputs", "error",
                                           "lineage"};
        evs_span vals[4];
        vals[0] = x->inputs;
        vals[1] = x->outputs;
        vals[2] = x->error;
        vals[3] = x->lineage;
        for (size_t i = 0; i < 4; i++) {
            char *v = text_dup(vals[i], VALUE_COLS);
            out_kv(w, keys[i], "%s", *v ? v : "-");
            free(v);
        }
    }
    out_kv_text(w, "continued as", x->continued_as);
    print_control(w, "paused", &x->paused);
    print_control(w, "unpaused", &x->resumed);
    print_control(w, "terminated", &x->terminated);
    return CMD_OK;
}

static int print_paths(session *s)
{
    static const char *const head[] = {"ID",   "STATUS",  "PARENT",
                                       "STEP", "STARTED", "ENDED"};
    size_t n = evs_replay_path_count(s->r);
    table t;

    if (n == 0) {
        printf("no paths\n");
        return CMD_OK;
    }
    table_init(&t, 6, head);
    for (size_t i = 0; i < n; i++) {
        const evs_path_state *p = evs_replay_path(s->r, i);
        char *c[6];
        c[0] = span_cell(p->id, 0);
        c[1] = xstrdup(evs_path_status_name(p->status));
        c[2] = span_cell(p->parent, 0);
        c[3] = span_cell(p->current_step, 0);
        c[4] = seq_cell(p->started_seq);
        c[5] = seq_cell(p->ended_seq);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static void steps_table(session *s, const evs_span *only_path)
{
    static const char *const head[] = {"PATH",   "STEP",     "ITER",
                                       "STATUS", "ATTEMPTS", "STARTED",
                                       "ENDED",  "VARIABLE"};
    size_t n = evs_replay_step_count(s->r), shown = 0;
    table t;

    table_init(&t, 8, head);
    for (size_t i = 0; i < n; i++) {
        const evs_step_state *st = evs_replay_step(s->r, i);
        char *c[8];
        if (only_path && !span_eq(st->path_id, *only_path))
            continue;
        c[0] = span_cell(st->path_id, 0);
        c[1] = span_cell(st->name, 0);
        c[2] = st->iteration >= 0 ? num_cell(st->iteration) : xstrdup("-");
        c[3] = xstrdup(evs_step_status_name(st->status));
        c[4] = num_cell(st->attempts);
        c[5] = seq_cell(st->started_seq);
        c[6] = seq_cell(st->ended_seq);
        c[7] = span_cell(st->stored_variable, 0);
        row_free(&t, c);
        shown++;
    }
    if (shown) {
        table_print(&t);
    } else {
        printf("no steps\n");
        table_free(&t);
    }
}

static int print_path(session *s, const char *id)
{
    const evs_path_state *p = evs_replay_find_path(s->r, evs_span_cstr(id));
    const int w = 8;

    if (!p)
        return cmd_error("no path '%s' at seq %" PRIu64, id, s->pos);
    out_kv_text(w, "path", p->id);
    out_kv(w, "status", "%s", evs_path_status_name(p->status));
    out_kv_text(w, "parent", p->parent);
    out_kv_text(w, "step", p->current_step);
    out_kv(w, "started", "seq %" PRIu64, p->started_seq);
    if (p->ended_seq)
        out_kv(w, "ended", "seq %" PRIu64, p->ended_seq);
    else
        out_kv(w, "ended", "-");
    out_kv_json(w, "error", p->error);
    steps_table(s, &p->id);
    return CMD_OK;
}

static void print_one_step(const evs_step_state *st)
{
    const int w = 8;
    char *l = step_label(st->path_id, st->name, st->iteration), t[40];

    out_kv(w, "step", "%s", l);
    free(l);
    out_kv(w, "status", "%s", evs_step_status_name(st->status));
    out_kv(w, "attempts", "%" PRIu32, st->attempts);
    if (st->dispatches > st->attempts)
        out_kv(w, "dispatched", "%" PRIu32 " times, again by takeovers %.*s",
               st->dispatches, (int)st->redispatched_by.len,
               st->redispatched_by.ptr);
    out_kv_text(w, "kind", st->kind);
    out_kv_text(w, "hash", st->step_hash);
    out_kv(w, "started", "seq %" PRIu64, st->started_seq);
    if (st->ended_seq)
        out_kv(w, "ended", "seq %" PRIu64, st->ended_seq);
    else
        out_kv(w, "ended", "-");
    fmt_time(st->retry_at_us, t);
    out_kv(w, "retry at", "%s", t);
    out_kv_text(w, "variable", st->stored_variable);
    out_kv_json(w, "input", st->input);
    out_kv_json(w, "output", st->output);
    out_kv_json(w, "error", st->error);
}

/* ITER: a whole number, or -1 for a step outside `each`. */
static int parse_iter(const char *arg, int64_t *out)
{
    uint64_t v;

    if (strcmp(arg, "-1") == 0) {
        *out = -1;
        return 0;
    }
    if (parse_u64("iteration", arg, &v) != 0)
        return CMD_ERROR;
    if (v > INT64_MAX)
        return cmd_error("iteration '%s' is too large", arg);
    *out = (int64_t)v;
    return 0;
}

static int print_step(session *s, int argc, char **argv)
{
    evs_span name, path = {NULL, 0};
    int64_t iter = 0;
    int has_iter = 0;
    size_t found = 0;

    if (argc < 3 || argc > 5)
        return cmd_error("usage: print step NAME [PATH] [ITER]");
    name = evs_span_cstr(argv[2]);
    if (argc >= 4)
        path = evs_span_cstr(argv[3]);
    if (argc == 5) {
        if (parse_iter(argv[4], &iter) != 0)
            return CMD_ERROR;
        has_iter = 1;
    }
    for (size_t i = 0; i < evs_replay_step_count(s->r); i++) {
        const evs_step_state *st = evs_replay_step(s->r, i);
        if (!span_eq(st->name, name) ||
            (path.ptr && !span_eq(st->path_id, path)) ||
            (has_iter && st->iteration != iter))
            continue;
        if (found++)
            putchar('\n');
        print_one_step(st);
    }
    if (!found)
        return cmd_error("no step '%s'%s%s at seq %" PRIu64, argv[2],
                         path.ptr ? " on path " : "", path.ptr ? argv[3] : "",
                         s->pos);
    return CMD_OK;
}

static int print_vars(session *s)
{
    static const char *const head[] = {"NAME", "SET AT", "VALUE"};
    size_t n = evs_replay_var_count(s->r);
    table t;

    if (n == 0) {
        printf("no variables\n");
        return CMD_OK;
    }
    table_init(&t, 3, head);
    for (size_t i = 0; i < n; i++) {
        const evs_var_state *v = evs_replay_var(s->r, i);
        char *c[3];
        c[0] = span_cell(v->name, 0);
        c[1] = seq_cell(v->set_seq);
        c[2] = span_cell(v->value, VALUE_COLS);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static int print_var(session *s, const char *name)
{
    const evs_var_state *v = evs_replay_find_var(s->r, evs_span_cstr(name));
    char *n;

    if (!v)
        return cmd_error("no variable '%s' at seq %" PRIu64, name, s->pos);
    n = text_dup(v->name, 0);
    printf("%s = ", n);
    out_json_pretty(v->value, 0);
    printf("\n(set at seq %" PRIu64 ")\n", v->set_seq);
    free(n);
    return CMD_OK;
}

static int print_signals(session *s)
{
    static const char *const head[] = {"SEQ", "NAME", "STATUS", "BY",
                                       "PAYLOAD"};
    size_t n = evs_replay_signal_count(s->r);
    table t;

    if (n == 0) {
        printf("no signals\n");
        return CMD_OK;
    }
    table_init(&t, 5, head);
    for (size_t i = 0; i < n; i++) {
        const evs_signal_state *g = evs_replay_signal(s->r, i);
        char *c[5], buf[48];
        c[0] = seq_cell(g->received_seq);
        c[1] = span_cell(g->name, 0);
        if (g->consumed_seq) {
            snprintf(buf, sizeof(buf), "consumed at %" PRIu64, g->consumed_seq);
            c[2] = xstrdup(buf);
            c[3] = step_label(g->consumed_by_path, g->consumed_by_step, -1);
        } else {
            c[2] = xstrdup("buffered");
            c[3] = xstrdup("-");
        }
        c[4] = span_cell(g->payload, VALUE_COLS);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static int print_timers(session *s)
{
    static const char *const head[] = {"ID",      "PATH",    "STEP",
                                       "FIRE AT", "STARTED", "STATUS"};
    size_t n = evs_replay_timer_count(s->r);
    table t;

    if (n == 0) {
        printf("no timers\n");
        return CMD_OK;
    }
    table_init(&t, 6, head);
    for (size_t i = 0; i < n; i++) {
        const evs_timer_state *tm = evs_replay_timer(s->r, i);
        char *c[6], buf[48];
        c[0] = span_cell(tm->timer_id, 0);
        c[1] = span_cell(tm->path_id, 0);
        c[2] = span_cell(tm->step, 0);
        c[3] = time_cell(tm->fire_at_us);
        c[4] = seq_cell(tm->started_seq);
        if (tm->cancelled)
            snprintf(buf, sizeof(buf), "cancelled");
        else if (tm->fired_seq)
            snprintf(buf, sizeof(buf), "fired at %" PRIu64, tm->fired_seq);
        else
            snprintf(buf, sizeof(buf), "pending");
        c[5] = xstrdup(buf);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static int print_waits(session *s)
{
    static const char *const head[] = {"PATH",    "STEP",    "SIGNAL",
                                       "TIMEOUT", "STARTED", "STATUS"};
    size_t n = evs_replay_wait_count(s->r);
    table t;

    if (n == 0) {
        printf("no waits\n");
        return CMD_OK;
    }
    table_init(&t, 6, head);
    for (size_t i = 0; i < n; i++) {
        const evs_wait_state *wt = evs_replay_wait(s->r, i);
        char *c[6], buf[96];
        c[0] = span_cell(wt->path_id, 0);
        c[1] = span_cell(wt->step, 0);
        c[2] = span_cell(wt->signal, 0);
        c[3] = time_cell(wt->timeout_at_us);
        c[4] = seq_cell(wt->started_seq);
        if (!wt->ended_seq)
            snprintf(buf, sizeof(buf), "pending");
        else if (wt->timed_out)
            snprintf(buf, sizeof(buf), "timed out at %" PRIu64, wt->ended_seq);
        else if (wt->signal_seq)
            snprintf(buf, sizeof(buf),
                     "ended at %" PRIu64 " by signal %" PRIu64, wt->ended_seq,
                     wt->signal_seq);
        else
            snprintf(buf, sizeof(buf), "ended at %" PRIu64, wt->ended_seq);
        c[5] = xstrdup(buf);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static int print_versions(session *s)
{
    static const char *const head[] = {"CHANGE", "VERSION", "MIN", "MAX",
                                       "SEQ"};
    size_t n = evs_replay_version_count(s->r);
    table t;

    if (n == 0) {
        printf("no versions\n");
        return CMD_OK;
    }
    table_init(&t, 5, head);
    for (size_t i = 0; i < n; i++) {
        const evs_version_state *v = evs_replay_version(s->r, i);
        char *c[5];
        c[0] = span_cell(v->change_id, 0);
        c[1] = num_cell(v->version);
        c[2] = num_cell(v->min);
        c[3] = num_cell(v->max);
        c[4] = seq_cell(v->seq);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static int print_each(session *s)
{
    static const char *const head[] = {"PATH",  "STEP",  "DONE",
                                       "COUNT", "ENDED", "OUTPUT"};
    size_t n = evs_replay_each_count(s->r);
    table t;

    if (n == 0) {
        printf("no each steps\n");
        return CMD_OK;
    }
    table_init(&t, 6, head);
    for (size_t i = 0; i < n; i++) {
        const evs_each_state *e = evs_replay_each(s->r, i);
        char *c[6];
        c[0] = span_cell(e->path_id, 0);
        c[1] = span_cell(e->name, 0);
        c[2] = num_cell(e->done);
        c[3] = e->count >= 0 ? num_cell(e->count) : xstrdup("-");
        c[4] = seq_cell(e->ended_seq);
        c[5] = span_cell(e->output, 60);
        row_free(&t, c);
    }
    table_print(&t);
    return CMD_OK;
}

static int print_json(session *s)
{
    char *js;
    size_t len;
    int rc;

    if ((rc = evs_replay_state_json(s->r, &js, &len)) != 0)
        return cmd_error("cannot write the state: %s", evs_strerror(rc));
    out_json_pretty((evs_span){js, len}, 0);
    putchar('\n');
    evs_free(NULL, js);
    return CMD_OK;
}

int cmd_print(session *s, int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";

    if (argc < 2)
        return cmd_error("print what? (state, paths, path ID, steps, step "
                         "NAME, vars, var NAME, signals, timers, waits, "
                         "versions, each, json)");
    if (strcmp(what, "path") == 0 || strcmp(what, "var") == 0) {
        if (argc != 3)
            return cmd_error("usage: print %s %s", what,
                             what[0] == 'p' ? "ID" : "NAME");
        return what[0] == 'p' ? print_path(s, argv[2]) : print_var(s, argv[2]);
    }
    if (strcmp(what, "step") == 0)
        return print_step(s, argc, argv);
    if (argc != 2)
        return cmd_error("print %s takes no argument", what);
    if (strcmp(what, "state") == 0)
        return print_state(s);
    if (strcmp(what, "paths") == 0)
        return print_paths(s);
    if (strcmp(what, "steps") == 0) {
        steps_table(s, NULL);
        return CMD_OK;
    }
    if (strcmp(what, "vars") == 0)
        return print_vars(s);
    if (strcmp(what, "signals") == 0)
        return print_signals(s);
    if (strcmp(what, "timers") == 0)
        return print_timers(s);
    if (strcmp(what, "waits") == 0)
        return print_waits(s);
    if (strcmp(what, "versions") == 0)
        return print_versions(s);
    if (strcmp(what, "each") == 0)
        return print_each(s);
    if (strcmp(what, "json") == 0)
        return print_json(s);
    return cmd_error("cannot print '%s' (state, paths, path ID, steps, step "
                     "NAME, vars, var NAME, signals, timers, waits, "
                     "versions, each, json)",
                     what);
}

/* ------------------------------------------------------------------ */
/* where, list, event                                                 */
/* ------------------------------------------------------------------ */

int cmd_where(session *s, int argc, char **argv)
{
    const evs_event *e = session_event(s, s->pos);
    const int w = 7;
    char t[40];

    (void)argv;
    if (argc > 1)
        return cmd_error("where takes no argument");
    if (!e) {
        out_kv(w, "seq", "0 of %zu (start: no event applied)", s->n);
    } else {
        out_kv(w, "seq", "%" PRIu64 " of %zu", s->pos, s->n);
        out_kv_text(w, "event", e->event_type);
        out_kv_text(w, "path", event_path(e));
        out_kv_text(w, "step", e->step_name);
        fmt_time(e->timestamp_us, t);
        out_kv(w, "time", "%s", t);
    }
    out_kv(w, "status", "%s",
           evs_exec_status_name(evs_replay_exec(s->r)->status));
    return CMD_OK;
}

/* Events shown by list: the current one and five either side. */
#define LIST_AROUND 5

int cmd_list(session *s, int argc, char **argv)
{
    uint64_t center = s->pos, first, last;

    if (argc > 2)
        return cmd_error("usage: list [SEQ]");
    if (argc == 2) {
        if (parse_u64("seq", argv[1], &center) != 0)
            return CMD_ERROR;
        if (center > s->n)
            return cmd_error("seq %" PRIu64 " is out of range (0..%zu)", center,
                             s->n);
    }
    if (s->n == 0) {
        out_summary(s, 0, 1);
        return CMD_OK;
    }
    first = center > LIST_AROUND ? center - LIST_AROUND : 1;
    last = first + 2 * LIST_AROUND;
    if (last > s->n) {
        last = s->n;
        first = last > 2 * LIST_AROUND ? last - 2 * LIST_AROUND : 1;
    }
    if (first == 1 && s->pos == 0)
        out_summary(s, 0, 1);
    for (uint64_t q = first; q <= last; q++)
        out_summary(s, q, q == s->pos);
    return CMD_OK;
}

int cmd_event(session *s, int argc, char **argv)
{
    uint64_t seq = s->pos;
    const evs_event *e;
    size_t first, nv;
    const int w = 9;
    char t[40];

    if (argc > 2)
        return cmd_error("usage: event [SEQ]");
    if (argc == 2 && parse_u64("seq", argv[1], &seq) != 0)
        return CMD_ERROR;
    if (argc == 1 && seq == 0)
        return cmd_error("no event applied yet (at seq 0); give a SEQ");
    if (seq == 0 || seq > s->n)
        return cmd_error("seq %" PRIu64 " is out of range (1..%zu)", seq, s->n);
    e = session_event(s, seq);
    out_kv(w, "seq", "%" PRIu64, e->sequence);
    out_kv_text(w, "id", e->id);
    out_kv_text(w, "type", e->event_type);
    out_kv_text(w, "path", event_path(e));
    out_kv_text(w, "step", e->step_name);
    fmt_time(e->timestamp_us, t);
    out_kv(w, "time", "%s", t);
    if (e->batch_count > 1)
        out_kv(w, "append", "%" PRIu64 " events from seq %" PRIu64,
               e->batch_count, e->batch_first);
    else
        out_kv(w, "append", "alone");
    out_kv_json(w, "data", e->data);
    nv = session_violations_at(s, seq, &first);
    for (size_t i = first; i < first + nv; i++) {
        char *m = text_dup(evs_span_cstr(s->viol[i].msg), 0);
        out_kv(w, "violation", "%s: %s", s->viol[i].rule, m);
        free(m);
    }
    return CMD_OK;
}

/* ------------------------------------------------------------------ */
/* search                                                             */
/* ------------------------------------------------------------------ */

static int span_contains(evs_span hay, const char *needle, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i + n <= hay.len; i++)
        if (hay.ptr[i] == needle[0] && memcmp(hay.ptr + i, needle, n) == 0)
            return 1;
    return 0;
}

int cmd_search(session *s, int argc, char **argv)
{
    enum { BY_TEXT, BY_TYPE, BY_PATH, BY_STEP } by = BY_TEXT;
    char *text;
    size_t len = 0, found = 0;
    int a = 1;

    if (argc < 2)
        return cmd_error("usage: search TEXT | search type|path|step NAME");
    if (argc == 3) {
        if (strcmp(argv[1], "type") == 0)
            by = BY_TYPE;
        else if (strcmp(argv[1], "path") == 0)
            by = BY_PATH;
        else if (strcmp(argv[1], "step") == 0)
            by = BY_STEP;
        if (by != BY_TEXT)
            a = 2;
    }
    if (by == BY_TEXT && strcmp(argv[1], "text") == 0 && argc > 2)
        a = 2;
    /* The words of TEXT, joined by single spaces. */
    for (int i = a; i < argc; i++)
        len += strlen(argv[i]) + 1;
    text = xmalloc(len + 1);
    text[0] = '\0';
    for (int i = a; i < argc; i++) {
        if (i > a)
            strcat(text, " ");
        strcat(text, argv[i]);
    }
    len = strlen(text);
    for (uint64_t q = 1; q <= s->n; q++) {
        const evs_event *e = session_event(s, q);
        int m;
        switch (by) {
        case BY_TYPE: m = span_is(e->event_type, text); break;
        case BY_PATH: m = span_is(event_path(e), text); break;
        case BY_STEP: m = span_is(e->step_name, text); break;
        default:
            m = span_contains(e->event_type, text, len) ||
                span_contains(e->step_name, text, len) ||
                span_contains(event_path(e), text, len) ||
                span_contains(e->data, text, len);
        }
        if (!m)
            continue;
        out_summary(s, q, q == s->pos);
        found++;
    }
    if (found == 0)
        printf("no event matches\n");
    else
        printf("%zu event%s match%s\n", found, found == 1 ? "" : "s",
               found == 1 ? "es" : "");
    free(text);
    return CMD_OK;
}

int info_violations(session *s)
{
    if (s->nviol == 0) {
        printf("no violations\n");
        return CMD_OK;
    }
    for (size_t i = 0; i < s->nviol; i++)
        out_violation(&s->viol[i]);
    printf("%zu violation%s\n", s->nviol, s->nviol == 1 ? "" : "s");
    return CMD_OK;
}
