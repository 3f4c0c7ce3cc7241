/*
 * evrun.h: what the files of evrun share beyond what the three tools
 * share (common.h): its exit statuses 1 and 4, its option values, the
 * store and JSON arguments as a run takes them, the findings of a
 * definition check, the JSON object that describes an execution, and the
 * command entry points.
 *
 * evrun uses only the public API (evstore.h and evstore/orchestrator.h)
 * and libuv.
 */
#ifndef EVRUN_H
#define EVRUN_H

#include "common.h"
#include "evstore/orchestrator.h"
#include "evstore/server.h"

/* evrun's own exit statuses; the others are common.h's. */
enum {
    EXIT_FAILED = 1,   /* failed or terminated; a request refused; check
                          found an execution the definition would break */
    EXIT_SUSPENDED = 4 /* waits for an event, or is paused */
};

/* Values for options that have no short form. */
enum {
    OPT_JSON = 256,
    OPT_SYNC,
    OPT_CREATE,
    OPT_INPUT,
    OPT_ID,
    OPT_DETACH,
    OPT_DEFINITION,
    OPT_STRATEGY,
    OPT_INPUTS,
    OPT_OUTPUT,
    OPT_FROM_STEP,
    OPT_FROM_SEQ,
    OPT_GRACE,
    OPT_ADOPT,
    OPT_SCHEDULES,
    OPT_NEXT,
    OPT_OVERLAP,
    OPT_GC_FIRST,
    OPT_HTTP,
    OPT_TOKEN_FILE,
    OPT_DEFINITIONS,
    OPT_CONSOLE,
    OPT_BY,
    OPT_REASON,
    OPT_LEASE,
    OPT_MAX,
    OPT_CONNECTIONS
};

#define OPT_JSON_ENTRY                                                         \
    {                                                                          \
        "json", no_argument, NULL, OPT_JSON                                    \
    }
#define OPT_SYNC_ENTRY                                                         \
    {                                                                          \
        "sync", required_argument, NULL, OPT_SYNC                              \
    }

/* Parses --sync's value; a usage error (EXIT_USAGE) if it is none of
 * full, batch and none. */
int parse_sync(const char *cmd, const char *v, evs_durability *d);

/*
 * Opens the store as a run does: with durability `d`, warnings of the
 * library on stderr, and created (mode 0700, its parent must exist) only
 * if `create` (--create); a missing one is otherwise refused, with a
 * pointer to --create when `can_create`. Returns 0 or EXIT_ERROR after
 * saying why.
 */
int run_store_open(const char *path, evs_durability d, int create,
                   int can_create, evs_store **s);

/* The writers' lease run_store_open asks of a PostgreSQL store
 * (evs_store_opts.lease_ms; 0: the library's default): serve's --lease. */
extern uint32_t g_lease_ms;
/* The most connections it asks of a PostgreSQL store
 * (evs_store_opts.connections; 0: the library's default): serve's
 * --connections. */
extern uint32_t g_connections;

/*
 * Takes a JSON argument of option `opt`: inline, or "@FILE" (FILE "-":
 * stdin) read into *buf (owned by the caller, free it). *out is the
 * text. Text that is not JSON is a usage error blamed on the option,
 * with the byte offset at which it goes wrong; a file that cannot be
 * read is EXIT_ERROR. An empty text is taken as it is (no value).
 */
int json_arg(const char *cmd, const char *opt, const char *arg, char **buf,
             evs_span *out);

/* Reports a refused definition: "PATH: STEP: MESSAGE", without STEP for
 * the document as a whole. Returns EXIT_ERROR. */
int fail_definition(const char *path, const evs_error_info *we);

/* A replayer as evrun needs it: compact (evrun reads only what a run
 * can still use, so replay starts from the orchestrator's snapshot). */
int replay_new(evs_replay **rp);

/* The findings of a definition check (resume --definition, check), held
 * until its verdict is known: a difference a version step gates is
 * called allowed only when nothing else refuses the definition. */
typedef struct finding {
    int code;    /* 0: allowed; else the refusal (EVS_ENONDET, EVS_EVERSION) */
    int version; /* a version decision out of range; else a step */
    char text[512];
} finding;

typedef struct findings {
    const char *id;
    finding *v;
    size_t n, cap;
} findings;

/* An evs_def_finding_fn that holds each finding in `arg`, a findings. */
int hold_finding(void *arg, const evs_def_finding *f);

/* Prints the findings, refusals as "evrun: ID: TEXT" on stderr and, unless
 * `json`, the others as "ID: TEXT[: allowed]" on stdout; `accepted`:
 * the definition was allowed. */
void print_findings(const findings *fs, int accepted, int json);

/* Writes `,"findings":[...]`: {"kind": "step" or "version", "refusal":
 * the code's name or null, "text"} each. */
void findings_json(const findings *fs);

void findings_free(findings *fs);

/*
 * Writes the JSON object (without its closing brace) that describes
 * execution `id` as `rp` replayed it: id, outcome (when not NULL), then
 * status, workflow_name, last_event_seq, start_time, end_time,
 * live_paths, pending_waits, pending_timers, outputs, error and
 * failed_at. rp may be NULL: only id and outcome.
 */
void exec_json_open(const char *id, const char *outcome, const evs_replay *rp);

int cmd_start(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_unpause(int argc, char **argv);
int cmd_terminate(int argc, char **argv);
int cmd_schedule(int argc, char **argv);

/*
 * The retention policy applied by serve (evrun_gc.c): every gc.interval
 * of the store's settings, the first time `first_ms` after the start,
 * evs_store_gc on the threadpool; what it did (when it did anything) or
 * why it failed is noted on stderr. Nothing is started when gc.interval
 * is off. Settings that cannot be read are noted, and gc runs at the
 * default interval (each gc refusing until they are mended): runners do
 * not wait on them. serve_gc_start returns 0. serve_gc_stop closes the
 * timer; a gc in flight ends on the loop's next run.
 */
typedef struct serve_gc {
    uv_timer_t timer;
    uv_work_t work;
    evs_store *s;
    int started, busy, rc;
    evs_gc_result res;
    evs_error_info ei;
} serve_gc;

int serve_gc_start(uv_loop_t *loop, evs_store *s, uint64_t first_ms,
                   serve_gc *g);
void serve_gc_stop(serve_gc *g);

#endif /* EVRUN_H */
