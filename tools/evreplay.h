/*
 * evreplay.h: what the files of evreplay share: the session (the history
 * held in memory, the replayer at the current position, the checkpoints
 * that make going back cheap, the violations and the breakpoints), the
 * output helpers and the command entry points.
 *
 * evreplay uses only the public API (evstore.h).
 */
#ifndef EVREPLAY_H
#define EVREPLAY_H

#include "common.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* evreplay's own exit statuses; --help documents them, and the others
 * are common.h's. */
enum {
    EXIT_FAILED = 1,       /* a command failed (script and batch modes) */
    EXIT_OPEN = EXIT_ERROR /* cannot open the store or the execution, or
                               a fatal error (out of memory, unreadable
                               log) */
};

/* What a command returns. */
enum {
    CMD_OK = 0,
    CMD_ERROR = -1, /* it printed "error: ..." */
    CMD_QUIT = 1
};

/* A broken history rule, found once when the history is loaded. */
typedef struct violation_rec {
    uint64_t seq;
    const char *rule; /* static */
    char *msg;
} violation_rec;

/* The state after event `seq`, as canonical JSON. */
typedef struct checkpoint {
    uint64_t seq;
    char *json;
    size_t len;
} checkpoint;

typedef enum bp_kind {
    BP_STEP,
    BP_TYPE,
    BP_PATH,
    BP_SEQ,
    BP_STATUS,
    BP_VIOLATION
} bp_kind;

typedef struct breakpoint {
    int num;
    bp_kind kind;
    char *arg;    /* step, type or path; NULL otherwise */
    uint64_t seq; /* BP_SEQ */
    int status;   /* BP_STATUS: an evs_exec_status, or -1 for any change */
    uint64_t hits;
} breakpoint;

typedef struct session {
    evs_store *store;   /* where the history comes from: a store, */
    evs_bundle *bundle; /* or a bundle (evdump archive) */
    char *exec_id;
    /* The history: ev[i] has sequence i + 1. */
    evs_event_owned *ev;
    size_t n, ev_cap;
    /* The replayer holds the state after event `pos` (0: none). */
    evs_replay *r;
    uint64_t pos;
    /* Checkpoints, in sequence order, every `ck_every` events; when they
     * outgrow `ck_budget` bytes every other one is dropped and the
     * interval doubles, so memory stays bounded whatever the history. */
    checkpoint *ck;
    size_t nck, ck_cap;
    uint64_t ck_every;
    size_t ck_bytes, ck_budget;
    /* Violations, in sequence order. */
    violation_rec *viol;
    size_t nviol, viol_cap;
    /* Breakpoints, numbered from 1 as in gdb; numbers are not reused. */
    breakpoint *bp;
    size_t nbp, bp_cap;
    int bp_next;
    /* Column widths of one-line event summaries, fixed at load. */
    int w_seq, w_type, w_path, w_step;
} session;

/* ------------------------------------------------------------------ */
/* Session (evreplay_session.c)                                       */
/* ------------------------------------------------------------------ */

/* Loads every readable event of execution `id` of store `st`, or of the
 * bundle `b` (st NULL; id is then the bundle's), replays them once to
 * find the violations and take the checkpoints (every `ck_every` events,
 * 0: none), and positions at 0. `store_desc` names the store or bundle
 * in messages. Reports failures on stderr; returns 0 or an exit code. */
int session_load(session *s, evs_store *st, evs_bundle *b, const char *id,
                 uint64_t ck_every, size_t ck_budget, const char *store_desc);

void session_free(session *s);

/* The event of sequence `seq` (1..n). */
const evs_event *session_event(const session *s, uint64_t seq);

/* An event's path: its path_id, or "main" when empty (as replay does). */
evs_span event_path(const evs_event *e);

/* Makes a new replayer holding the state after event `seq` (0..n),
 * from the nearest checkpoint. Returns 0 or a negative error. */
int session_state_at(const session *s, uint64_t seq, evs_replay **out);

/* Applies event pos + 1 to the current replayer. Returns 0 or a negative
 * error. */
int session_apply_next(session *s);

/* Moves the current replayer to `seq` (0..n): forward by applying
 * events, backward by rebuilding from a checkpoint. */
int session_seek(session *s, uint64_t seq);

/* The violations of event `seq`: *first gets the index of the first;
 * returns how many. */
size_t session_violations_at(const session *s, uint64_t seq, size_t *first);

/* ------------------------------------------------------------------ */
/* Output (evreplay_out.c)                                            */
/* ------------------------------------------------------------------ */

/* Prints "error: <msg>" as one line on stderr (stdout is flushed first,
 * so a transcript stays in order) and returns CMD_ERROR. */
int cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that cannot fail: an exhausted heap ends the tool with
 * EXIT_OPEN after saying so. */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Grows *v (elements of `size` bytes) to hold at least n + 1. */
void grow(void **v, size_t *cap, size_t n, size_t size);

/* Text made safe for a terminal: control characters (C0, DEL, C1) are
 * shown as \uXXXX. At most `max_cols` columns (0: all); a cut ends with
 * "...". Heap string. */
char *text_dup(evs_span s, size_t max_cols);
/* Columns of a string made by text_dup (one per code point). */
size_t text_width(const char *s);
/* Writes text_dup(s, 0) to stdout. */
void out_text(evs_span s);
/* Pretty-prints compact JSON, continuation lines indented by `indent`;
 * "-" for an empty span. */
void out_json_pretty(evs_span json, int indent);
/* Formats `us` as RFC 3339 with microseconds, "-" for 0. */
void fmt_time(int64_t us, char buf[40]);
/* Span equality with a C string. */
int span_is(evs_span s, const char *c);
int span_eq(evs_span a, evs_span b);

/* Prints `key` padded to `width`, then the value, as one line. */
void out_kv(int width, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with a span made safe for a terminal ("-" when empty). */
void out_kv_text(int width, const char *key, evs_span v);
/* Same, with JSON pretty-printed under the value's column. */
void out_kv_json(int width, const char *key, evs_span v);

/* An aligned table: cells are copied; columns are separated by two
 * spaces; the last column is not padded. */
typedef struct table {
    size_t ncols, nrows, cap;
    char **cells;
} table;

void table_init(table *t, size_t ncols, const char *const *headers);
/* Adds a row of `ncols` cells already made safe (NULL or "" shows "-"). */
void table_row(table *t, const char *const *cells);
/* Prints and frees the table. */
void table_print(table *t);
/* Frees the table without printing it. */
void table_free(table *t);

/* "violation at seq N: RULE: message", one line. */
void out_violation(const violation_rec *v);

/* The one-line summary of event `seq` (0: the start), marked "=>" when
 * `current`: sequence, type, path, step and a data preview. */
void out_summary(const session *s, uint64_t seq, int current);

/* "path/step", with "[ITER]" for an `each` iteration. Heap string, made
 * safe for a terminal. */
char *step_label(evs_span path, evs_span name, int64_t iteration);

/* Parses a decimal sequence or count. Returns 0 or CMD_ERROR after
 * reporting what was wrong with `arg` (named `what`). */
int parse_u64(const char *what, const char *arg, uint64_t *out);

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

/* evreplay_move.c: moving and breakpoints. SIGINT sets g_interrupted,
 * which stops a forward move. */
extern volatile sig_atomic_t g_interrupted;
int cmd_step(session *s, int argc, char **argv);
int cmd_next(session *s, int argc, char **argv);
int cmd_back(session *s, int argc, char **argv);
int cmd_goto(session *s, int argc, char **argv);
int cmd_continue(session *s, int argc, char **argv);
int cmd_run(session *s, int argc, char **argv);
int cmd_break(session *s, int argc, char **argv);
int cmd_delete(session *s, int argc, char **argv);
int info_breakpoints(session *s);
void breakpoints_free(session *s);

/* evreplay_print.c: inspecting */
int cmd_print(session *s, int argc, char **argv);
int cmd_where(session *s, int argc, char **argv);
int cmd_list(session *s, int argc, char **argv);
int cmd_event(session *s, int argc, char **argv);
int cmd_search(session *s, int argc, char **argv);
int info_violations(session *s);

/* evreplay_diff.c */
int cmd_diff(session *s, int argc, char **argv);

#endif /* EVREPLAY_H */
