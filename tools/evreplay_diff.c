/*
 * evreplay_diff.c: `diff SEQ1 SEQ2`, the difference between the states
 * at two points of the history.
 *
 * Both states are rebuilt from checkpoints (the current position does not
 * move) and compared accessor by accessor: the execution's fields, then
 * each path, step, each-progress, variable, signal, version, timer and
 * wait, matched by its key. One line per item: "+" added, "-" removed,
 * "~" changed with "field old -> new" for every field that differs.
 */
#include "evreplay.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* JSON values in a diff are cut to this many columns. */
#define DIFF_COLS 40

/* The fields that differ in one item, "; "-separated, and the number of
 * lines printed so far. */
typedef struct delta {
    char *p;
    size_t n, cap;
    size_t lines;
} delta;

static void d_add(delta *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void d_add(delta *d, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if (d->n + (size_t)k + 3 > d->cap) {
        d->cap = (d->n + (size_t)k + 3) * 2;
        d->p = xrealloc(d->p, d->cap);
    }
    if (d->n) {
        memcpy(d->p + d->n, "; ", 2);
        d->n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(d->p + d->n, d->cap - d->n, fmt, ap);
    va_end(ap);
    d->n += (size_t)k;
}

/* Prints "~ WHAT: fields" if any field differed, and resets. */
static void d_flush(delta *d, const char *what)
{
    if (d->n) {
        printf("~ %s: %.*s\n", what, (int)d->n, d->p);
        d->lines++;
    }
    d->n = 0;
}

static void d_line(delta *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void d_line(delta *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    d->lines++;
}

/* "label old -> new"; a NULL label gives "old -> new", for the fields
 * of the execution, which are lines of their own. */
static void d_pair(delta *d, const char *label, const char *x, const char *y)
{
    if (label)
        d_add(d, "%s %s -> %s", label, x, y);
    else
        d_add(d, "%s -> %s", x, y);
}

static void f_text(delta *d, const char *label, evs_span a, evs_span b,
                   size_t cols)
{
    char *x, *y;

    if (span_eq(a, b))
        return;
    x = text_dup(a.len ? a : evs_span_cstr("-"), cols);
    y = text_dup(b.len ? b : evs_span_cstr("-"), cols);
    d_pair(d, label, x, y);
    free(x);
    free(y);
}

static void f_seq(delta *d, const char *label, uint64_t a, uint64_t b)
{
    char x[24] = "-", y[24] = "-";

    if (a == b)
        return;
    if (a)
        snprintf(x, sizeof(x), "%" PRIu64, a);
    if (b)
        snprintf(y, sizeof(y), "%" PRIu64, b);
    d_pair(d, label, x, y);
}

static void f_int(delta *d, const char *label, int64_t a, int64_t b)
{
    char x[24], y[24];

    if (a == b)
        return;
    snprintf(x, sizeof(x), "%" PRId64, a);
    snprintf(y, sizeof(y), "%" PRId64, b);
    d_pair(d, label, x, y);
}

static void f_name(delta *d, const char *label, const char *a, const char *b)
{
    if (strcmp(a, b) != 0)
        d_pair(d, label, a, b);
}

static void f_time(delta *d, const char *label, int64_t a, int64_t b)
{
    char x[40], y[40];

    if (a == b)
        return;
    fmt_time(a, x);
    fmt_time(b, y);
    d_pair(d, label, x, y);
}

/* ------------------------------------------------------------------ */
/* The execution                                                      */
/* ------------------------------------------------------------------ */

static char *failure_of(const evs_exec_state *x)
{
    char *l, *out;
    size_t cap;

    if (!x->failed_seq)
        return xstrdup("none");
    l = step_label(x->failed_path, x->failed_step, x->failed_iteration);
    cap = strlen(l) + 40;
    out = xmalloc(cap);
    snprintf(out, cap, "%s at seq %" PRIu64, l, x->failed_seq);
    free(l);
    return out;
}

/* Each field of the execution that changed is a line of its own. */
static void diff_exec(delta *d, const evs_replay *ra, const evs_replay *rb)
{
    const evs_exec_state *a = evs_replay_exec(ra), *b = evs_replay_exec(rb);
    char *fa, *fb;

    f_name(d, NULL, evs_exec_status_name(a->status),
           evs_exec_status_name(b->status));
    d_flush(d, "status");
    f_text(d, NULL, a->workflow_name, b->workflow_name, 0);
    d_flush(d, "workflow");
    f_text(d, NULL, a->inputs, b->inputs, DIFF_COLS);
    d_flush(d, "inputs");
    f_text(d, NULL, a->outputs, b->outputs, DIFF_COLS);
    d_flush(d, "outputs");
    f_text(d, NULL, a->error, b->error, DIFF_COLS);
    d_flush(d, "error");
    f_text(d, NULL, a->lineage, b->lineage, DIFF_COLS);
    d_flush(d, "lineage");
    f_text(d, NULL, a->continued_as, b->continued_as, 0);
    d_flush(d, "continued as");
    f_time(d, NULL, a->started_at_us, b->started_at_us);
    d_flush(d, "started");
    f_time(d, NULL, a->ended_at_us, b->ended_at_us);
    d_flush(d, "ended");
    fa = failure_of(a);
    fb = failure_of(b);
    f_name(d, NULL, fa, fb);
    d_flush(d, "failure");
    free(fa);
    free(fb);
}

/* ------------------------------------------------------------------ */
/* Items found by key                                                 */
/* ------------------------------------------------------------------ */

static void path_line(delta *d, char op, const evs_path_state *p)
{
    char *id = text_dup(p->id, 0), *par = text_dup(p->parent, 0),
         *st = text_dup(p->current_step, 0);

    d_line(d, "%c path %s: %s, parent %s, step %s", op, id,
           evs_path_status_name(p->status), *par ? par : "-", *st ? st : "-");
    free(id);
    free(par);
    free(st);
}

static void diff_paths(delta *d, const evs_replay *a, const evs_replay *b)
{
    for (size_t i = 0; i < evs_replay_path_count(a); i++) {
        const evs_path_state *p = evs_replay_path(a, i);
        if (!evs_replay_find_path(b, p->id))
            path_line(d, '-', p);
    }
    for (size_t i = 0; i < evs_replay_path_count(b); i++) {
        const evs_path_state *q = evs_replay_path(b, i);
        const evs_path_state *p = evs_replay_find_path(a, q->id);
        char *what;
        if (!p) {
            path_line(d, '+', q);
            continue;
        }
        f_name(d, "status", evs_path_status_name(p->status),
               evs_path_status_name(q->status));
        f_text(d, "step", p->current_step, q->current_step, 0);
        f_text(d, "parent", p->parent, q->parent, 0);
        f_text(d, "error", p->error, q->error, DIFF_COLS);
        f_seq(d, "ended", p->ended_seq, q->ended_seq);
        what = text_dup(q->id, 0);
        {
            size_t cap = strlen(what) + 8;
            char *w = xmalloc(cap);
            snprintf(w, cap, "path %s", what);
            d_flush(d, w);
            free(w);
        }
        free(what);
    }
}

static void step_line(delta *d, char op, const evs_step_state *s)
{
    char *l = step_label(s->path_id, s->name, s->iteration);

    d_line(d, "%c step %s: %s, attempts %" PRIu32, op, l,
           evs_step_status_name(s->status), s->attempts);
    free(l);
}

static void diff_steps(delta *d, const evs_replay *a, const evs_replay *b)
{
    for (size_t i = 0; i < evs_replay_step_count(a); i++) {
        const evs_step_state *s = evs_replay_step(a, i);
        if (!evs_replay_find_step(b, s->path_id, s->name, s->iteration))
            step_line(d, '-', s);
    }
    for (size_t i = 0; i < evs_replay_step_count(b); i++) {
        const evs_step_state *t = evs_replay_step(b, i);
        const evs_step_state *s =
            evs_replay_find_step(a, t->path_id, t->name, t->iteration);
        char *l, *w;
        size_t cap;
        if (!s) {
            step_line(d, '+', t);
            continue;
        }
        f_name(d, "status", evs_step_status_name(s->status),
               evs_step_status_name(t->status));
        f_int(d, "attempts", s->attempts, t->attempts);
        f_int(d, "dispatches", s->dispatches, t->dispatches);
        f_text(d, "input", s->input, t->input, DIFF_COLS);
        f_text(d, "output", s->output, t->output, DIFF_COLS);
        f_text(d, "error", s->error, t->error, DIFF_COLS);
        f_text(d, "variable", s->stored_variable, t->stored_variable, 0);
        f_time(d, "retry at", s->retry_at_us, t->retry_at_us);
        f_seq(d, "started", s->started_seq, t->started_seq);
        f_seq(d, "ended", s->ended_seq, t->ended_seq);
        l = step_label(t->path_id, t->name, t->iteration);
        cap = strlen(l) + 8;
        w = xmalloc(cap);
        snprintf(w, cap, "step %s", l);
        d_flush(d, w);
        free(w);
        free(l);
    }
}

static void var_line(delta *d, char op, const evs_var_state *v)
{
    char *n = text_dup(v->name, 0), *val = text_dup(v->value, DIFF_COLS);

    d_line(d, "%c var %s = %s", op, n, val);
    free(n);
    free(val);
}

static void diff_vars(delta *d, const evs_replay *a, const evs_replay *b)
{
    for (size_t i = 0; i < evs_replay_var_count(a); i++) {
        const evs_var_state *v = evs_replay_var(a, i);
        if (!evs_replay_find_var(b, v->name))
            var_line(d, '-', v);
    }
    for (size_t i = 0; i < evs_replay_var_count(b); i++) {
        const evs_var_state *w = evs_replay_var(b, i);
        const evs_var_state *v = evs_replay_find_var(a, w->name);
        char *n, *x, *y;
        if (!v) {
            var_line(d, '+', w);
            continue;
        }
        if (span_eq(v->value, w->value) && v->set_seq == w->set_seq)
            continue;
        n = text_dup(w->name, 0);
        if (span_eq(v->value, w->value)) {
            d_line(d, "~ var %s: set again at seq %" PRIu64 ", same value", n,
                   w->set_seq);
            free(n);
            continue;
        }
        x = text_dup(v->value, DIFF_COLS);
        y = text_dup(w->value, DIFF_COLS);
        d_line(d, "~ var %s: %s -> %s (set at seq %" PRIu64 ")", n, x, y,
               w->set_seq);
        free(n);
        free(x);
        free(y);
    }
}

static void version_line(delta *d, char op, const evs_version_state *v)
{
    char *c = text_dup(v->change_id, 0);

    d_line(d, "%c version %s = %" PRId64 " [%" PRId64 ", %" PRId64 "]", op, c,
           v->version, v->min, v->max);
    free(c);
}

static void diff_versions(delta *d, const evs_replay *a, const evs_replay *b)
{
    for (size_t i = 0; i < evs_replay_version_count(a); i++) {
        const evs_version_state *v = evs_replay_version(a, i);
        if (!evs_replay_find_version(b, v->change_id))
            version_line(d, '-', v);
    }
    for (size_t i = 0; i < evs_replay_version_count(b); i++) {
        const evs_version_state *w = evs_replay_version(b, i);
        const evs_version_state *v = evs_replay_find_version(a, w->change_id);
        if (!v)
            version_line(d, '+', w);
        else if (v->version != w->version || v->min != w->min ||
                 v->max != w->max)
            version_line(d, '~', w);
    }
}

/* ------------------------------------------------------------------ */
/* Items in creation order                                            */
/* ------------------------------------------------------------------ */

/*
 * Signals, timers, waits and each-progress have no lookup by key in the
 * API, but every array of the state grows only at its end, in the order
 * of the events: the earlier state's elements are the first elements of
 * the later state's. They are compared index by index; should the keys
 * ever disagree, the pair shows as removed and added.
 */

static char *signal_status(const evs_signal_state *g)
{
    char buf[64], *by, *out;
    size_t cap;

    if (!g->consumed_seq)
        return xstrdup("buffered");
    by = step_label(g->consumed_by_path, g->consumed_by_step, -1);
    snprintf(buf, sizeof(buf), "consumed at %" PRIu64 " by ", g->consumed_seq);
    cap = strlen(buf) + strlen(by) + 1;
    out = xmalloc(cap);
    snprintf(out, cap, "%s%s", buf, by);
    free(by);
    return out;
}

static void signal_line(delta *d, char op, const evs_signal_state *g,
                        const evs_signal_state *old)
{
    char *n = text_dup(g->name, 0), *st = signal_status(g), *was = NULL;

    if (old)
        was = signal_status(old);
    if (was)
        d_line(d, "%c signal %s (seq %" PRIu64 "): %s -> %s", op, n,
               g->received_seq, was, st);
    else
        d_line(d, "%c signal %s (seq %" PRIu64 "): %s", op, n, g->received_seq,
               st);
    free(n);
    free(st);
    free(was);
}

static void diff_signals(delta *d, const evs_replay *a, const evs_replay *b)
{
    size_t na = evs_replay_signal_count(a), nb = evs_replay_signal_count(b);

    for (size_t i = 0; i < na || i < nb; i++) {
        const evs_signal_state *g = i < na ? evs_replay_signal(a, i) : NULL;
        const evs_signal_state *h = i < nb ? evs_replay_signal(b, i) : NULL;
        if (g && h && g->received_seq == h->received_seq) {
            if (g->consumed_seq != h->consumed_seq)
                signal_line(d, '~', h, g);
            continue;
        }
        if (g)
            signal_line(d, '-', g, NULL);
        if (h)
            signal_line(d, '+', h, NULL);
    }
}

static const char *timer_status(const evs_timer_state *t, char buf[48])
{
    if (t->cancelled)
        return "cancelled";
    if (t->fired_seq) {
        snprintf(buf, 48, "fired at %" PRIu64, t->fired_seq);
        return buf;
    }
    return "pending";
}

static void timer_line(delta *d, char op, const evs_timer_state *t,
                       const evs_timer_state *old)
{
    char *id = text_dup(t->timer_id, 0), b1[48], b2[48];
    char *l = step_label(t->path_id, t->step, -1);

    if (old)
        d_line(d, "%c timer %s (%s): %s -> %s", op, id, l,
               timer_status(old, b1), timer_status(t, b2));
    else
        d_line(d, "%c timer %s (%s): %s", op, id, l, timer_status(t, b2));
    free(id);
    free(l);
}

static void diff_timers(delta *d, const evs_replay *a, const evs_replay *b)
{
    size_t na = evs_replay_timer_count(a), nb = evs_replay_timer_count(b);

    for (size_t i = 0; i < na || i < nb; i++) {
        const evs_timer_state *g = i < na ? evs_replay_timer(a, i) : NULL;
        const evs_timer_state *h = i < nb ? evs_replay_timer(b, i) : NULL;
        if (g && h && span_eq(g->timer_id, h->timer_id)) {
            if (g->fired_seq != h->fired_seq || g->cancelled != h->cancelled)
                timer_line(d, '~', h, g);
            continue;
        }
        if (g)
            timer_line(d, '-', g, NULL);
        if (h)
            timer_line(d, '+', h, NULL);
    }
}

static const char *wait_status(const evs_wait_state *w, char buf[64])
{
    if (!w->ended_seq)
        return "pending";
    if (w->timed_out)
        snprintf(buf, 64, "timed out at %" PRIu64, w->ended_seq);
    else
        snprintf(buf, 64, "ended at %" PRIu64, w->ended_seq);
    return buf;
}

static void wait_line(delta *d, char op, const evs_wait_state *w,
                      const evs_wait_state *old)
{
    char *l = step_label(w->path_id, w->step, -1), b1[64], b2[64];
    char *sig = text_dup(w->signal.len ? w->signal : evs_span_cstr("-"), 0);

    if (old)
        d_line(d, "%c wait %s on %s (seq %" PRIu64 "): %s -> %s", op, l, sig,
               w->started_seq, wait_status(old, b1), wait_status(w, b2));
    else
        d_line(d, "%c wait %s on %s (seq %" PRIu64 "): %s", op, l, sig,
               w->started_seq, wait_status(w, b2));
    free(l);
    free(sig);
}

static void diff_waits(delta *d, const evs_replay *a, const evs_replay *b)
{
    size_t na = evs_replay_wait_count(a), nb = evs_replay_wait_count(b);

    for (size_t i = 0; i < na || i < nb; i++) {
        const evs_wait_state *g = i < na ? evs_replay_wait(a, i) : NULL;
        const evs_wait_state *h = i < nb ? evs_replay_wait(b, i) : NULL;
        if (g && h && g->started_seq == h->started_seq &&
            span_eq(g->path_id, h->path_id)) {
            if (g->ended_seq != h->ended_seq || g->timed_out != h->timed_out)
                wait_line(d, '~', h, g);
            continue;
        }
        if (g)
            wait_line(d, '-', g, NULL);
        if (h)
            wait_line(d, '+', h, NULL);
    }
}

static void each_line(delta *d, char op, const evs_each_state *e,
                      const evs_each_state *old)
{
    char *l = step_label(e->path_id, e->name, -1), c[24] = "?";

    if (e->count >= 0)
        snprintf(c, sizeof(c), "%" PRId64, e->count);
    if (old)
        d_line(d, "%c each %s: done %" PRId64 " -> %" PRId64 " of %s%s", op, l,
               old->done, e->done, c,
               e->ended_seq && !old->ended_seq ? ", completed" : "");
    else
        d_line(d, "%c each %s: done %" PRId64 " of %s%s", op, l, e->done, c,
               e->ended_seq ? ", completed" : "");
    free(l);
}

static void diff_each(delta *d, const evs_replay *a, const evs_replay *b)
{
    size_t na = evs_replay_each_count(a), nb = evs_replay_each_count(b);

    for (size_t i = 0; i < na || i < nb; i++) {
        const evs_each_state *g = i < na ? evs_replay_each(a, i) : NULL;
        const evs_each_state *h = i < nb ? evs_replay_each(b, i) : NULL;
        if (g && h && span_eq(g->path_id, h->path_id) &&
            span_eq(g->name, h->name)) {
            if (g->done != h->done || g->count != h->count ||
                g->ended_seq != h->ended_seq)
                each_line(d, '~', h, g);
            continue;
        }
        if (g)
            each_line(d, '-', g, NULL);
        if (h)
            each_line(d, '+', h, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* The command                                                        */
/* ------------------------------------------------------------------ */

int cmd_diff(session *s, int argc, char **argv)
{
    evs_replay *a = NULL, *b = NULL;
    uint64_t x, y;
    delta d;
    int rc;

    if (argc != 3)
        return cmd_error("usage: diff SEQ1 SEQ2");
    if (parse_u64("seq", argv[1], &x) != 0 ||
        parse_u64("seq", argv[2], &y) != 0)
        return CMD_ERROR;
    if (x > s->n || y > s->n)
        return cmd_error("seq %" PRIu64 " is out of range (0..%zu)",
                         x > s->n ? x : y, s->n);
    if ((rc = session_state_at(s, x, &a)) != 0 ||
        (rc = session_state_at(s, y, &b)) != 0) {
        evs_replay_free(a);
        return cmd_error("cannot replay: %s (%s)", evs_strerror(rc),
                         evs_err_name(rc));
    }
    memset(&d, 0, sizeof(d));
    printf("diff seq %" PRIu64 " -> seq %" PRIu64 "\n", x, y);
    diff_exec(&d, a, b);
    diff_paths(&d, a, b);
    diff_steps(&d, a, b);
    diff_each(&d, a, b);
    diff_vars(&d, a, b);
    diff_signals(&d, a, b);
    diff_versions(&d, a, b);
    diff_timers(&d, a, b);
    diff_waits(&d, a, b);
    if (d.lines == 0)
        printf("no difference\n");
    else
        printf("%zu change%s\n", d.lines, d.lines == 1 ? "" : "s");
    free(d.p);
    evs_replay_free(a);
    evs_replay_free(b);
    return CMD_OK;
}
