/*
 * evdump_state.c: `evdump state`, the replayed state of one execution at
 * its end or as of a sequence: the execution first, then one aligned
 * table per kind of state (paths, steps, each, variables, signals,
 * versions, timers, waits), or the canonical state JSON.
 *
 * Replay runs in tolerant mode: an operator looking at a history that
 * breaks a rule needs its state most, so the state is shown anyway and
 * the violations are listed beside it (exit 1).
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_W 14
/* A preview keeps at least this many columns, however narrow the
 * terminal. */
#define DATA_MIN 16
/* Violations kept for the report; the rest are only counted. */
#define MAX_KEPT 1000

typedef struct violations {
    evs_error_info *v;
    size_t n, cap;
    uint64_t total;
} violations;

static int on_violation(void *arg, const evs_error_info *v)
{
    violations *vs = arg;

    vs->total++;
    if (vs->n == MAX_KEPT)
        return 0;
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 16;
        evs_error_info *nv = realloc(vs->v, cap * sizeof(*nv));

        if (!nv)
            return 0; /* only the count is lost, never the replay */
        vs->v = nv;
        vs->cap = cap;
    }
    vs->v[vs->n++] = *v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Cells                                                              */
/* ------------------------------------------------------------------ */

static const evs_span none = {"-", 1};

static evs_span or_none(evs_span s)
{
    return s.len ? s : none;
}

static evs_span num(uint64_t v, char tmp[64])
{
    if (v == 0)
        return none;
    snprintf(tmp, 64, "%" PRIu64, v);
    return evs_span_cstr(tmp);
}

static evs_span inum(int64_t v, char tmp[64])
{
    if (v < 0)
        return none;
    snprintf(tmp, 64, "%" PRId64, v);
    return evs_span_cstr(tmp);
}

static evs_span when(int64_t us, char tmp[64])
{
    fmt_time(us, 0, tmp);
    return evs_span_cstr(tmp);
}

static int span_is(evs_span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static const char *status_color(evs_span st)
{
    if (span_is(st, "completed") || span_is(st, "fired") ||
        span_is(st, "consumed") || span_is(st, "ended"))
        return c_green();
    if (span_is(st, "failed") || span_is(st, "terminated") ||
        span_is(st, "timed out"))
        return c_red();
    if (span_is(st, "running") || span_is(st, "active"))
        return c_cyan();
    return "";
}

/* ------------------------------------------------------------------ */
/* Tables                                                             */
/* ------------------------------------------------------------------ */

/* The text of one cell; numbers and times are formatted into `tmp`. */
typedef evs_span (*cell_fn)(const evs_replay *r, size_t row, int col,
                            char tmp[64]);

typedef struct table {
    const char *title;
    const char *const *head;
    int ncol;
    const char *right; /* 'r' for a right-aligned column, else 'l' */
    int status_col;    /* coloured by value; -1 for none */
    size_t rows;
    cell_fn cell;
} table;

/* Every column is as wide as its widest cell; the last one is a preview,
 * cut to the terminal's width when there is one and never padded. */
static void table_print(const evs_replay *r, const table *t)
{
    size_t w[16], used = 0, max = 0;
    char tmp[64];
    int last = t->ncol - 1;

    out_printf("\n%s%s (%zu)%s\n", c_bold(), t->title, t->rows, c_off());
    if (t->rows == 0)
        return;
    for (int c = 0; c < last; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t i = 0; i < t->rows; i++) {
            size_t n = text_cols(t->cell(r, i, c, tmp));
            if (n > w[c])
                w[c] = n;
        }
        used += w[c] + 2;
    }
    if (g_term.width)
        max = (size_t)g_term.width > used + DATA_MIN
                  ? (size_t)g_term.width - used
                  : DATA_MIN;
    out_printf("%s", c_bold());
    for (int c = 0; c < last; c++)
        out_printf(t->right[c] == 'r' ? "%*s  " : "%-*s  ", (int)w[c],
                   t->head[c]);
    out_printf("%s%s\n", t->head[last], c_off());
    for (size_t i = 0; i < t->rows && !out_broken(); i++) {
        for (int c = 0; c < last; c++) {
            evs_span v = t->cell(r, i, c, tmp);
            const char *on = c == t->status_col ? status_color(v) : "";
            size_t n = text_cols(v);

            for (; t->right[c] == 'r' && n < w[c]; n++)
                out_write(" ", 1);
            out_printf("%s", on);
            out_text(v, 0);
            out_printf("%s", *on ? c_off() : "");
            for (; n < w[c]; n++)
                out_write(" ", 1);
            out_write("  ", 2);
        }
        out_text(t->cell(r, i, last, tmp), max);
        out_write("\n", 1);
    }
}

static evs_span path_cell(const evs_replay *r, size_t i, int col, char tmp[64])
{
    const evs_path_state *p = evs_replay_path(r, i);

    switch (col) {
    case 0: return p->id;
    case 1: return or_none(p->parent);
    case 2: return evs_span_cstr(evs_path_status_name(p->status));
    case 3: return or_none(p->current_step);
    case 4: return num(p->started_seq, tmp);
    case 5: return num(p->ended_seq, tmp);
    default: return or_none(p->error);
    }
}

static evs_span step_cell(const evs_replay *r, size_t i, int col, char tmp[64])
{
    const evs_step_state *s = evs_replay_step(r, i);

    switch (col) {
    case 0: return s->path_id;
    case 1: return s->name;
    case 2: return inum(s->iteration, tmp);
    case 3: return evs_span_cstr(evs_step_status_name(s->status));
    case 4:
        /* An attempt handed out again after a takeover shows beside the
         * count (FORMAT.md §6, "Takeovers"). */
        if (s->dispatches > s->attempts) {
            snprintf(tmp, 64, "%" PRIu32 " (+%" PRIu32 " again)", s->attempts,
                     s->dispatches - s->attempts);
            return evs_span_cstr(tmp);
        }
        return num(s->attempts, tmp);
    case 5: return num(s->started_seq, tmp);
    case 6: return num(s->ended_seq, tmp);
    case 7: return or_none(s->stored_variable);
    default:
        /* What a failure left is what matters until the step succeeds. */
        if (s->status == EVS_STEP_FAILED || s->status == EVS_STEP_RETRYING)
            return or_none(s->error);
        return or_none(s->output);
    }
}

static evs_span each_cell(const evs_replay *r, size_t i, int col, char tmp[64])
{
    const evs_each_state *e = evs_replay_each(r, i);

    switch (col) {
    case 0: return e->path_id;
    case 1: return e->name;
    case 2: snprintf(tmp, 64, "%" PRId64, e->done); return evs_span_cstr(tmp);
    case 3:
        if (e->count < 0)
            return evs_span_cstr("?");
        snprintf(tmp, 64, "%" PRId64, e->count);
        return evs_span_cstr(tmp);
    case 4: return num(e->ended_seq, tmp);
    default: return or_none(e->output);
    }
}

static evs_span var_cell(const evs_replay *r, size_t i, int col, char tmp[64])
{
    const evs_var_state *v = evs_replay_var(r, i);

    switch (col) {
    case 0: return v->name;
    case 1: return num(v->set_seq, tmp);
    default: return or_none(v->value);
    }
}

static evs_span signal_cell(const evs_replay *r, size_t i, int col,
                            char tmp[64])
{
    const evs_signal_state *s = evs_replay_signal(r, i);

    switch (col) {
    case 0: return num(s->received_seq, tmp);
    case 1: return or_none(s->name);
    case 2: return evs_span_cstr(s->consumed_seq ? "consumed" : "buffered");
    case 3: return num(s->consumed_seq, tmp);
    case 4: return or_none(s->consumed_by_path);
    case 5: return or_none(s->consumed_by_step);
    default: return or_none(s->payload);
    }
}

static evs_span version_cell(const evs_replay *r, size_t i, int col,
                             char tmp[64])
{
    const evs_version_state *v = evs_replay_version(r, i);
    int64_t x = col == 1 ? v->version : col == 2 ? v->min : v->max;

    switch (col) {
    case 0: return v->change_id;
    case 1:
    case 2:
    case 3: snprintf(tmp, 64, "%" PRId64, x); return evs_span_cstr(tmp);
    default: return num(v->seq, tmp);
    }
}

static evs_span timer_cell(const evs_replay *r, size_t i, int col, char tmp[64])
{
    const evs_timer_state *t = evs_replay_timer(r, i);

    switch (col) {
    case 0: return t->timer_id;
    case 1: return t->path_id;
    case 2: return or_none(t->step);
    case 3:
        return evs_span_cstr(t->cancelled   ? "cancelled"
                             : t->fired_seq ? "fired"
                                            : "pending");
    case 4: return num(t->started_seq, tmp);
    case 5: return num(t->fired_seq, tmp);
    default: return when(t->fire_at_us, tmp);
    }
}

static evs_span wait_cell(const evs_replay *r, size_t i, int col, char tmp[64])
{
    const evs_wait_state *w = evs_replay_wait(r, i);

    switch (col) {
    case 0: return w->path_id;
    case 1: return or_none(w->step);
    case 2: return or_none(w->signal);
    case 3:
        return evs_span_cstr(!w->ended_seq  ? "pending"
                             : w->timed_out ? "timed out"
                                            : "ended");
    case 4: return num(w->started_seq, tmp);
    case 5: return num(w->ended_seq, tmp);
    case 6: return num(w->signal_seq, tmp);
    default: return when(w->timeout_at_us, tmp);
    }
}

static void print_tables(const evs_replay *r)
{
    static const char *const h_path[] = {"ID",      "PARENT", "STATUS", "STEP",
                                         "STARTED", "ENDED",  "ERROR"};
    static const char *const h_step[] = {
        "PATH",    "STEP",  "ITER",     "STATUS",        "ATTEMPTS",
        "STARTED", "ENDED", "VARIABLE", "OUTPUT / ERROR"};
    static const char *const h_each[] = {"PATH",  "STEP",  "DONE",
                                         "COUNT", "ENDED", "OUTPUT"};
    static const char *const h_var[] = {"NAME", "SET AT", "VALUE"};
    static const char *const h_sig[] = {
        "SEQ", "NAME", "STATUS", "CONSUMED", "BY PATH", "BY STEP", "PAYLOAD"};
    static const char *const h_ver[] = {"CHANGE", "VERSION", "MIN", "MAX",
                                        "SEQ"};
    static const char *const h_tim[] = {"ID",      "PATH",  "STEP",   "STATUS",
                                        "STARTED", "FIRED", "FIRE AT"};
    static const char *const h_wait[] = {"PATH",      "STEP",      "SIGNAL",
                                         "STATUS",    "STARTED",   "ENDED",
                                         "BY SIGNAL", "TIMEOUT AT"};
    const table tables[] = {
        {"Paths", h_path, 7, "llllrr", 2, evs_replay_path_count(r), path_cell},
        {"Steps", h_step, 9, "llrlrrrl", 3, evs_replay_step_count(r),
         step_cell},
        {"Each", h_each, 6, "llrrr", -1, evs_replay_each_count(r), each_cell},
        {"Variables", h_var, 3, "lr", -1, evs_replay_var_count(r), var_cell},
        {"Signals", h_sig, 7, "rllrll", 2, evs_replay_signal_count(r),
         signal_cell},
        {"Versions", h_ver, 5, "lrrr", -1, evs_replay_version_count(r),
         version_cell},
        {"Timers", h_tim, 7, "llllrr", 3, evs_replay_timer_count(r),
         timer_cell},
        {"Waits", h_wait, 8, "llllrrr", 3, evs_replay_wait_count(r), wait_cell},
    };

    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        table_print(r, &tables[i]);
}

/* ------------------------------------------------------------------ */
/* The execution                                                      */
/* ------------------------------------------------------------------ */

static void label(const char *name)
{
    out_printf("%s%-*s%s", c_bold(), LABEL_W, name, c_off());
}

/* A value line: previewed to the terminal's width, in full otherwise. */
static void field(const char *name, evs_span v)
{
    size_t max = 0;

    label(name);
    if (g_term.width)
        max = (size_t)g_term.width > LABEL_W + DATA_MIN
                  ? (size_t)g_term.width - LABEL_W
                  : DATA_MIN;
    out_text(or_none(v), max);
    out_write("\n", 1);
}

static void field_time(const char *name, int64_t us)
{
    char buf[40];

    fmt_time(us, 0, buf);
    label(name);
    out_printf("%s%s%s\n", c_dim(), buf, c_off());
}

/* Who paused, unpaused or terminated it, when, at which step and why;
 * nothing if the history records no such request. */
static void field_control(const char *name, const evs_control_state *c)
{
    char buf[40];

    if (!c->seq)
        return;
    fmt_time(c->at_us, 0, buf);
    label(name);
    out_printf("%s%s%s by ", c_dim(), buf, c_off());
    out_text(c->by.len ? c->by : evs_span_cstr("(not recorded)"), 0);
    if (c->step.len) {
        out_write(" at step ", 9);
        out_text(c->step, 0);
    }
    if (c->reason.len) {
        out_write(": ", 2);
        out_text(c->reason, 0);
    }
    out_printf(" (seq %" PRIu64 ")\n", c->seq);
}

static void print_exec(const evs_replay *r, int from_snapshot,
                       uint64_t snap_seq)
{
    const evs_exec_state *x = evs_replay_exec(r);
    evs_span st = evs_span_cstr(evs_exec_status_name(x->status));

    field("execution", x->execution_id);
    label("status");
    out_printf("%s", status_color(st));
    out_text(st, 0);
    out_printf("%s", *status_color(st) ? c_off() : "");
    if (x->status == EVS_STATUS_PAUSED)
        out_printf(" (was %s)", evs_exec_status_name(x->status_before_pause));
    out_write("\n", 1);
    field("workflow", x->workflow_name);
    label("last seq");
    out_printf("%" PRIu64 "\n", x->last_seq);
    field_time("started", x->started_at_us);
    field_time("ended", x->ended_at_us);
    label("failure");
    if (x->failed_seq) {
        out_printf("%s", c_red());
        out_text(x->failed_path, 0);
        out_write("/", 1);
        out_text(x->failed_step, 0);
        if (x->failed_iteration >= 0)
            out_printf("[%" PRId64 "]", x->failed_iteration);
        out_printf("%s at seq %" PRIu64 "\n", c_off(), x->failed_seq);
    } else {
        out_write("-\n", 2);
    }
    field("inputs", x->inputs);
    field("outputs", x->outputs);
    field("error", x->error);
    if (x->definition_hash.len)
        field("workflow hash", x->definition_hash);
    if (x->inputs_hash.len)
        field("inputs hash", x->inputs_hash);
    if (x->lineage.len)
        field("lineage", x->lineage);
    if (x->continued_as.len)
        field("continued as", x->continued_as);
    field_control("paused", &x->paused);
    field_control("unpaused", &x->resumed);
    field_control("terminated", &x->terminated);
    label("replayed");
    if (!from_snapshot)
        out_printf("from seq 1, %" PRIu64 " events\n", x->last_seq);
    else if (snap_seq <= x->last_seq)
        out_printf("from snapshot at seq %" PRIu64 ", then %" PRIu64
                   " events\n",
                   snap_seq, x->last_seq - snap_seq);
    else /* replaced since the replay read it */
        out_printf("from snapshot\n");
}

/* ------------------------------------------------------------------ */
/* The command                                                        */
/* ------------------------------------------------------------------ */

/* The sequence the used snapshot stood at; it is not part of the state
 * the replayer hands out. */
static uint64_t snapshot_seq(evs_store *st, const char *id)
{
    evs_snapshot *sn = NULL;
    uint64_t seq = 0;

    if (evs_snapshot_load(st, id, strlen(id), &sn, NULL) == 0)
        seq = sn->last_event_seq;
    evs_snapshot_free(sn);
    return seq;
}

static void report_violations(const char *id, const violations *vs)
{
    for (size_t i = 0; i < vs->n; i++)
        note("%s: seq %" PRIu64 ": %s: %s", id, vs->v[i].sequence,
             vs->v[i].kind, vs->v[i].msg);
    if (vs->total > vs->n)
        note("%s: %" PRIu64 " more violations not shown", id,
             vs->total - vs->n);
    note("%s: the history breaks %" PRIu64 " replay rule%s; the state "
         "shown was replayed tolerantly",
         id, vs->total, vs->total == 1 ? "" : "s");
}

/* Replays the events of bundle `b` up to `at` (0: all) into r. Returns
 * 0 or an exit status after reporting. */
static int replay_bundle(evs_replay *r, evs_bundle *b, const char *path,
                         uint64_t at)
{
    uint64_t pos = 0;
    evs_error_info info;
    evs_event ev;
    int rc;

    while ((rc = evs_bundle_next(b, &pos, &ev, NULL)) == 1 &&
           (at == 0 || ev.sequence <= at)) {
        evs_error_info_clear(&info);
        if ((rc = evs_replay_apply(r, &ev, &info)) != 0)
            return fail_evs(rc, &info, path);
    }
    if (rc < 0)
        return fail("%s: reading the log: %s (%s)", path, evs_strerror(rc),
                    evs_err_name(rc));
    return 0;
}

int cmd_state(int argc, char **argv)
{
    static const struct option lo[] = {{"at", required_argument, NULL, OPT_AT},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       OPT_HELP,
                                       OPT_END};
    violations vs;
    evs_replay_opts ro;
    evs_replay *r = NULL;
    evs_error_info info;
    evs_store *st = NULL;
    const char *store, *id;
    evs_bundle *b = NULL;
    char bid[EVS_ID_MAX + 1];
    uint64_t at = 0, last;
    char *js = NULL;
    size_t jlen;
    int c, json = 0, rc, fs = 0;

    memset(&vs, 0, sizeof(vs));
    while ((c = next_opt("state", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("state"); return EXIT_OKAY;
        case OPT_AT:
            if ((rc = parse_num("state", "--at", optarg, 1, UINT64_MAX, &at)))
                return rc;
            break;
        case OPT_JSON: json = 1; break;
        default: return -c;
        }
    }
    if (argc - optind == 1 && is_bundle_path(argv[optind])) {
        store = argv[optind];
        if ((rc = open_bundle(store, &b)) != 0)
            return rc;
        snprintf(bid, sizeof(bid), "%.*s",
                 (int)evs_bundle_info(b)->execution_id.len,
                 evs_bundle_info(b)->execution_id.ptr);
        id = bid;
    } else {
        if ((rc = positionals("state", argc, argv, 2, 2, "STORE EXEC")) != 0)
            return rc;
        store = argv[optind];
        id = argv[optind + 1];
        if ((rc = open_store(store, &st)) != 0)
            return rc;
    }
    evs_replay_opts_init(&ro);
    ro.tolerant = 1;
    ro.on_violation = on_violation;
    ro.arg = &vs;
    if (evs_replay_new(&ro, &r) != 0) {
        rc = fail("out of memory");
        goto out;
    }
    if (b) {
        if ((rc = replay_bundle(r, b, store, at)) != 0)
            goto out;
    } else if ((rc = evs_replay_open(r, st, id, strlen(id), at, &fs, &info)) !=
               0) {
        rc = fail_exec(rc, &info, store, id);
        goto out;
    }
    last = evs_replay_exec(r)->last_seq;
    if (at > last) {
        rc = usage_error("state",
                         "--at %" PRIu64 " is past the end of '%s' "
                         "(last sequence %" PRIu64 ")",
                         at, id, last);
        goto out;
    }
    if (json) {
        if (evs_replay_state_json(r, &js, &jlen) != 0) {
            rc = fail("out of memory");
            goto out;
        }
        out_write(js, jlen);
        out_write("\n", 1);
    } else {
        print_exec(r, fs, fs ? snapshot_seq(st, id) : 0);
        print_tables(r);
    }
    rc = EXIT_OKAY;
    if (vs.total) {
        out_flush();
        report_violations(id, &vs);
        rc = EXIT_DAMAGE;
    }
out:
    evs_free(NULL, js);
    free(vs.v);
    evs_replay_free(r);
    evs_bundle_close(b);
    evs_store_close(st);
    return rc;
}
