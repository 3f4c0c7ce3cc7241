/*
 * evdump.h: what the files of evdump share beyond what the three tools
 * share (common.h): its exit status 1, terminal handling, the option
 * values and the command entry points.
 *
 * evdump uses only the public API (evstore.h); json-c is used where a
 * document has to be read rather than shown.
 */
#ifndef EVDUMP_H
#define EVDUMP_H

#include "common.h"

#include <signal.h>

/* evdump's exit status 1; the others are common.h's. */
enum {
    EXIT_DAMAGE = 1 /* verify or salvage found damage; show or tail found
                       a damaged append after the end; state replayed a
                       history that breaks a replay rule */
};

/* How stdout is shown: colour and the width data previews are cut to
 * (0: never cut). Set once by main. */
typedef struct dump_term {
    int color;
    int width;
} dump_term;

extern dump_term g_term;

/* ANSI sequences, or "" when colour is off. */
const char *c_dim(void);
const char *c_red(void);
const char *c_green(void);
const char *c_cyan(void);
const char *c_bold(void);
const char *c_off(void);

/* Writes text for a terminal: control characters (C0, DEL, C1) are shown
 * as \uXXXX so a history cannot drive the terminal. At most `max_cols`
 * columns are written (0: all); a cut is marked with an ellipsis.
 * Returns the columns written. */
size_t out_text(evs_span s, size_t max_cols);
/* Columns out_text would use for all of `s`. */
size_t text_cols(evs_span s);
/* Pretty-prints compact JSON, continuation lines indented by `indent`. */
void out_json_pretty(evs_span json, int indent);
/* Formats `us` (RFC 3339, µs) into buf, "-" for 0. `secs` drops the
 * fraction. */
void fmt_time(int64_t us, int secs, char buf[40]);

/* Members of a json-c object (evdump_chain.c): a string's text, or ""
 * when it is absent, null or not a string; an integer, or 0. */
struct json_object;
const char *dump_member(struct json_object *o, const char *key);
int64_t dump_member_int(struct json_object *o, const char *key);

/* Values for options that have no short form. */
enum {
    OPT_JSON = 256,
    OPT_STATUS,
    OPT_WORKFLOW,
    OPT_LIMIT,
    OPT_OFFSET,
    OPT_FROM,
    OPT_TO,
    OPT_TYPE,
    OPT_PATH,
    OPT_OUT,
    OPT_AT,
    OPT_DELETE,
    OPT_FORCE,
    OPT_LEVEL,
    OPT_ENDED_BEFORE,
    OPT_UNSET,
    OPT_DRY_RUN,
    OPT_NOW
};

/* Set by SIGINT/SIGTERM while following. */
extern volatile sig_atomic_t g_stop;

int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_salvage(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_state(int argc, char **argv);
int cmd_chain(int argc, char **argv);
int cmd_archive(int argc, char **argv);
int cmd_restore(int argc, char **argv);
/* `evdump verify BUNDLE...`: checks each of argv[first..argc) as a
 * bundle, one line each. Returns the exit status. */
int verify_bundles(int argc, char **argv, int first);
int cmd_config(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif /* EVDUMP_H */
