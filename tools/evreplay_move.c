/*
 * evreplay_move.c: moving through the history (step, next, back, goto,
 * continue, run) and the breakpoints that stop a forward move.
 *
 * Every move ends by printing the violations of the events it applied,
 * the breakpoints that stopped it, and the summary of the event it
 * stopped at, marked "=>", so a transcript reads like a gdb session.
 */
#include "evreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A move shows at most this many violations; `info violations` has all. */
#define SHOW_VIOLATIONS 10

volatile sig_atomic_t g_interrupted;

static int parse_count(int argc, char **argv, uint64_t *n)
{
    *n = 1;
    if (argc > 2)
        return cmd_error("%s takes at most one count", argv[0]);
    if (argc == 2) {
        if (parse_u64("count", argv[1], n) != 0)
            return CMD_ERROR;
        if (*n == 0)
            return cmd_error("count must be at least 1");
    }
    return 0;
}

/* Prints the violations of events (from, to]. */
static void show_violations(const session *s, uint64_t from, uint64_t to)
{
    size_t i, shown = 0;

    session_violations_at(s, from + 1, &i);
    for (; i < s->nviol && s->viol[i].seq <= to; i++) {
        if (shown++ == SHOW_VIOLATIONS)
            break;
        out_violation(&s->viol[i]);
    }
    if (shown > SHOW_VIOLATIONS) {
        size_t more = 0;
        for (; i < s->nviol && s->viol[i].seq <= to; i++)
            more++;
        printf("... and %zu more violations (see 'info violations')\n", more);
    }
}

static int apply_failed(const session *s, int rc)
{
    return cmd_error("cannot apply seq %" PRIu64 ": %s (%s)", s->pos + 1,
                     evs_strerror(rc), evs_err_name(rc));
}

/* ------------------------------------------------------------------ */
/* Breakpoints                                                        */
/* ------------------------------------------------------------------ */

static void bp_desc(const breakpoint *b, char *buf, size_t cap)
{
    switch (b->kind) {
    case BP_STEP: snprintf(buf, cap, "step %s", b->arg); break;
    case BP_TYPE: snprintf(buf, cap, "type %s", b->arg); break;
    case BP_PATH: snprintf(buf, cap, "path %s", b->arg); break;
    case BP_SEQ: snprintf(buf, cap, "seq %" PRIu64, b->seq); break;
    case BP_STATUS:
        if (b->status < 0)
            snprintf(buf, cap, "status (any change)");
        else
            snprintf(buf, cap, "status %s",
                     evs_exec_status_name((evs_exec_status)b->status));
        break;
    case BP_VIOLATION: snprintf(buf, cap, "violation"); break;
    }
}

static int bp_matches(const session *s, const breakpoint *b, const evs_event *e,
                      evs_exec_status before)
{
    evs_exec_status now = evs_replay_exec(s->r)->status;
    size_t first;

    switch (b->kind) {
    case BP_STEP: return span_is(e->step_name, b->arg);
    case BP_TYPE: return span_is(e->event_type, b->arg);
    case BP_PATH: return span_is(event_path(e), b->arg);
    case BP_SEQ: return e->sequence == b->seq;
    case BP_STATUS:
        return now != before && (b->status < 0 || (int)now == b->status);
    case BP_VIOLATION: return session_violations_at(s, e->sequence, &first) > 0;
    }
    return 0;
}

/* Marks the breakpoints event `e` hits; returns how many. */
static size_t hit_breakpoints(session *s, const evs_event *e,
                              evs_exec_status before, char *hit)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nbp; i++) {
        hit[i] = (char)bp_matches(s, &s->bp[i], e, before);
        if (hit[i]) {
            s->bp[i].hits++;
            n++;
        }
    }
    return n;
}

static void add_bp(session *s, bp_kind kind, const char *arg, uint64_t seq,
                   int status)
{
    breakpoint *b;
    char desc[300];

    grow((void **)&s->bp, &s->bp_cap, s->nbp, sizeof(*s->bp));
    b = &s->bp[s->nbp++];
    memset(b, 0, sizeof(*b));
    b->num = s->bp_next++;
    b->kind = kind;
    b->arg = arg ? xstrdup(arg) : NULL;
    b->seq = seq;
    b->status = status;
    bp_desc(b, desc, sizeof(desc));
    printf("breakpoint %d: %s\n", b->num, desc);
}

static int status_by_name(const char *name)
{
    for (int i = EVS_STATUS_PENDING; i <= EVS_STATUS_CONTINUED; i++)
        if (strcmp(name, evs_exec_status_name((evs_exec_status)i)) == 0)
            return i;
    return -1;
}

int cmd_break(session *s, int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    uint64_t seq;
    int st;

    if (argc < 2)
        return cmd_error("break needs a kind: step NAME, type TYPE, path ID, "
                         "seq N, status [STATUS] or violation");
    if (strcmp(what, "step") == 0 || strcmp(what, "type") == 0 ||
        strcmp(what, "path") == 0) {
        if (argc != 3)
            return cmd_error("usage: break %s %s", what,
                             what[0] == 's'   ? "NAME"
                             : what[0] == 't' ? "TYPE"
                                              : "ID");
        add_bp(s,
               what[0] == 's'   ? BP_STEP
               : what[0] == 't' ? BP_TYPE
                                : BP_PATH,
               argv[2], 0, 0);
        return CMD_OK;
    }
    if (strcmp(what, "seq") == 0) {
        if (argc != 3)
            return cmd_error("usage: break seq N");
        if (parse_u64("seq", argv[2], &seq) != 0)
            return CMD_ERROR;
        if (seq == 0 || seq > s->n)
            return cmd_error("seq %" PRIu64 " is out of range (1..%zu)", seq,
                             s->n);
        add_bp(s, BP_SEQ, NULL, seq, 0);
        return CMD_OK;
    }
    if (strcmp(what, "status") == 0) {
        if (argc > 3)
            return cmd_error("usage: break status [STATUS]");
        st = -1;
        if (argc == 3 && (st = status_by_name(argv[2])) < 0)
            return cmd_error("unknown status '%s' (pending, running, "
                             "waiting, paused, completed, failed, "
                             "terminated, continued)",
                             argv[2]);
        add_bp(s, BP_STATUS, NULL, 0, st);
        return CMD_OK;
    }
    if (strcmp(what, "violation") == 0) {
        if (argc != 2)
            return cmd_error("usage: break violation");
        add_bp(s, BP_VIOLATION, NULL, 0, 0);
        return CMD_OK;
    }
    return cmd_error("unknown breakpoint kind '%s' (step, type, path, seq, "
                     "status, violation)",
                     what);
}

static void bp_free(breakpoint *b)
{
    free(b->arg);
}

int cmd_delete(session *s, int argc, char **argv)
{
    uint64_t num;

    if (argc == 1) {
        if (s->nbp == 0) {
            printf("no breakpoints\n");
            return CMD_OK;
        }
        printf("deleted %zu breakpoint%s\n", s->nbp, s->nbp == 1 ? "" : "s");
        breakpoints_free(s);
        return CMD_OK;
    }
    /* Check every number before deleting any. */
    for (int a = 1; a < argc; a++) {
        size_t i = 0;
        if (parse_u64("breakpoint number", argv[a], &num) != 0)
            return CMD_ERROR;
        while (i < s->nbp && (uint64_t)s->bp[i].num != num)
            i++;
        if (i == s->nbp)
            return cmd_error("no breakpoint number %" PRIu64, num);
    }
    for (int a = 1; a < argc; a++) {
        num = strtoull(argv[a], NULL, 10);
        for (size_t i = 0; i < s->nbp; i++) {
            if ((uint64_t)s->bp[i].num != num)
                continue;
            printf("deleted breakpoint %d\n", s->bp[i].num);
            bp_free(&s->bp[i]);
            memmove(&s->bp[i], &s->bp[i + 1],
                    (s->nbp - i - 1) * sizeof(*s->bp));
            s->nbp--;
            break;
        }
    }
    return CMD_OK;
}

int info_breakpoints(session *s)
{
    static const char *const head[] = {"NUM", "WHAT", "HITS"};
    table t;

    if (s->nbp == 0) {
        printf("no breakpoints\n");
        return CMD_OK;
    }
    table_init(&t, 3, head);
    for (size_t i = 0; i < s->nbp; i++) {
        char num[24], hits[24], desc[300], *safe;
        const char *row[3];
        snprintf(num, sizeof(num), "%d", s->bp[i].num);
        snprintf(hits, sizeof(hits), "%" PRIu64, s->bp[i].hits);
        bp_desc(&s->bp[i], desc, sizeof(desc));
        safe = text_dup(evs_span_cstr(desc), 0);
        row[0] = num;
        row[1] = safe;
        row[2] = hits;
        table_row(&t, row);
        free(safe);
    }
    table_print(&t);
    return CMD_OK;
}

void breakpoints_free(session *s)
{
    for (size_t i = 0; i < s->nbp; i++)
        bp_free(&s->bp[i]);
    free(s->bp);
    s->bp = NULL;
    s->nbp = s->bp_cap = 0;
}

/* ------------------------------------------------------------------ */
/* Moving                                                             */
/* ------------------------------------------------------------------ */

typedef enum run_mode { RUN_STEP, RUN_NEXT, RUN_CONTINUE } run_mode;

/*
 * Applies events forward until `count` events have been counted (every
 * event for RUN_STEP; those on `path` for RUN_NEXT; never for
 * RUN_CONTINUE), a breakpoint is hit, the end is reached or SIGINT
 * arrives.
 */
static int run_forward(session *s, run_mode mode, uint64_t count, evs_span path)
{
    uint64_t start = s->pos, done = 0;
    char *hit = s->nbp ? xmalloc(s->nbp) : NULL;
    size_t nhit = 0;
    int rc, status = CMD_OK, interrupted = 0;

    if (s->pos >= s->n) {
        free(hit);
        return cmd_error("at the end of the history (seq %zu)", s->n);
    }
    g_interrupted = 0;
    while (s->pos < s->n) {
        evs_exec_status before = evs_replay_exec(s->r)->status;
        const evs_event *e;

        if ((rc = session_apply_next(s)) != 0) {
            status = apply_failed(s, rc);
            break;
        }
        e = session_event(s, s->pos);
        if (s->nbp && (nhit = hit_breakpoints(s, e, before, hit)) > 0)
            break;
        if (mode == RUN_STEP ||
            (mode == RUN_NEXT && span_eq(event_path(e), path)))
            done++;
        if (mode != RUN_CONTINUE && done >= count)
            break;
        if (g_interrupted) {
            interrupted = 1;
            break;
        }
    }
    show_violations(s, start, s->pos);
    for (size_t i = 0; nhit && i < s->nbp; i++) {
        char desc[300], *safe;
        if (!hit[i])
            continue;
        bp_desc(&s->bp[i], desc, sizeof(desc));
        safe = text_dup(evs_span_cstr(desc), 0);
        printf("breakpoint %d: %s\n", s->bp[i].num, safe);
        free(safe);
    }
    if (interrupted)
        printf("interrupted\n");
    else if (!nhit && s->pos == s->n && status == CMD_OK &&
             (mode == RUN_CONTINUE || done < count))
        printf("end of history\n");
    out_summary(s, s->pos, 1);
    free(hit);
    return status;
}

int cmd_step(session *s, int argc, char **argv)
{
    uint64_t n;

    if (parse_count(argc, argv, &n) != 0)
        return CMD_ERROR;
    return run_forward(s, RUN_STEP, n, evs_span_cstr(""));
}

int cmd_next(session *s, int argc, char **argv)
{
    const evs_event *e;
    uint64_t n;

    if (parse_count(argc, argv, &n) != 0)
        return CMD_ERROR;
    /* The path of the event just applied, or of the first one. */
    e = session_event(s, s->pos ? s->pos : 1);
    return run_forward(s, RUN_NEXT, n, e ? event_path(e) : evs_span_cstr(""));
}

int cmd_continue(session *s, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cmd_error("continue takes no argument");
    return run_forward(s, RUN_CONTINUE, 0, evs_span_cstr(""));
}

static int seek_and_show(session *s, uint64_t seq)
{
    uint64_t from = s->pos;
    int rc;

    if ((rc = session_seek(s, seq)) != 0)
        return cmd_error("cannot replay to seq %" PRIu64 ": %s (%s)", seq,
                         evs_strerror(rc), evs_err_name(rc));
    if (seq > from)
        show_violations(s, from, seq);
    out_summary(s, s->pos, 1);
    return CMD_OK;
}

int cmd_back(session *s, int argc, char **argv)
{
    uint64_t n;

    if (parse_count(argc, argv, &n) != 0)
        return CMD_ERROR;
    if (s->pos == 0)
        return cmd_error("at the start of the history");
    return seek_and_show(s, s->pos > n ? s->pos - n : 0);
}

int cmd_goto(session *s, int argc, char **argv)
{
    uint64_t seq;

    if (argc != 2)
        return cmd_error("usage: goto SEQ");
    if (parse_u64("seq", argv[1], &seq) != 0)
        return CMD_ERROR;
    if (seq > s->n)
        return cmd_error("seq %" PRIu64 " is out of range (0..%zu)", seq, s->n);
    return seek_and_show(s, seq);
}

int cmd_run(session *s, int argc, char **argv)
{
    if (argc > 1)
        return cmd_error("%s takes no argument", argv[0]);
    return seek_and_show(s, 0);
}
