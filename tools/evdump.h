/*
 * evdump.h: what the files of evdump share: exit codes, the one-line error
 * reporting, buffered output that survives a closed pipe, terminal
 * handling, option parsing helpers and the command entry points.
 *
 * evdump uses only the public API (evstore.h); json-c is used where a
 * document has to be read rather than shown.
 */
#ifndef EVDUMP_H
#define EVDUMP_H

#include "evstore.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

/* Exit codes; the help text documents them. */
enum {
    EXIT_OKAY = 0,   /* success (also when the reader of stdout went away) */
    EXIT_DAMAGE = 1, /* verify or salvage found damage; state replayed a
                        history that breaks a replay rule */
    EXIT_USAGE = 2,  /* bad command line */
    EXIT_ERROR = 3   /* anything else: not found, I/O, corrupt data, ... */
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

/* Prints "evdump: <msg>" as one line on stderr and returns EXIT_ERROR. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "evdump: <cmd>: <msg> (run 'evdump <cmd> --help')" and returns
 * EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Checks the positional arguments after the options: STORE EXEC and at
 * most `max` in all. Returns 0 or a usage error (EXIT_USAGE). */
int positionals(const char *cmd, int argc, char **argv, int max);

/* A line on stderr that is not an error ("evdump: <msg>"). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a library error: prefers the detail in `info` (which names the
 * execution, sequence and offset) over the bare code, and puts `what`
 * first unless the detail already names the execution. Returns
 * EXIT_ERROR. */
int fail_evs(int rc, const evs_error_info *info, const char *what);

/*
 * Output. Everything a command prints as its result goes through these,
 * into a buffered stream (stdout unless redirected with out_to). The
 * first failed write is remembered and every later one is skipped, so a
 * command can stop as soon as out_broken() says so.
 */
void out_to(FILE *f, const char *name);
int out_write(const void *p, size_t n);
int out_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int out_flush(void);
int out_broken(void);
/* Flushes and closes the output; returns `status`, or EXIT_ERROR after
 * printing why when a write failed for any reason but a closed pipe. */
int out_finish(int status);

/* Writes text for a terminal: control characters (C0, DEL, C1) are shown
 * as \uXXXX so a history cannot drive the terminal. At most `max_cols`
 * columns are written (0: all); a cut is marked with an ellipsis.
 * Returns the columns written. */
size_t out_text(evs_span s, size_t max_cols);
/* Columns out_text would use for all of `s`. */
size_t text_cols(evs_span s);
/* Pretty-prints compact JSON, continuation lines indented by `indent`. */
void out_json_pretty(evs_span json, int indent);
/* A JSON string literal, or null for a NULL span pointer. */
void out_json_str(evs_span s);
/* RFC 3339 time as a JSON string, null for 0. */
void out_json_time(int64_t us);

/* Formats `us` (RFC 3339, µs) into buf, "-" for 0. `secs` drops the
 * fraction. */
void fmt_time(int64_t us, int secs, char buf[40]);

/* Opens the store read-write without creating it. Returns 0 or an exit
 * code after reporting the failure. */
int open_store(const char *path, evs_store **out);

/* Reports a missing execution or a failed open of its log; EXIT_ERROR. */
int fail_exec(int rc, const evs_error_info *info, const char *store,
              const char *id);

/* Opens the log of execution `id` read-only, only to learn whether it
 * can be: 0, or the error with *info saying more (which file was refused,
 * and why: a symbolic link, a FIFO, a second hard link). */
int probe_exec(evs_store *st, const char *id, evs_error_info *info);

/* Reports why execution `id` cannot be read: rc from reading its log,
 * or 0 when it seemed not to be there (probe_exec tells a refused file
 * from a missing execution). Returns EXIT_ERROR. */
int fail_unreadable(evs_store *st, const char *store, const char *id,
                    int rc);

/* Parses a decimal number into [min, max]; on failure reports a usage
 * error naming the option and returns EXIT_USAGE. */
int parse_num(const char *cmd, const char *opt, const char *arg,
              uint64_t min, uint64_t max, uint64_t *out);

/*
 * Runs getopt_long over a command's arguments (argv[0] is the command
 * name). Returns the option, -1 at the end, or EXIT_USAGE negated after
 * reporting an unknown option or a missing argument. "--help" is
 * reported as 'h'.
 */
int next_opt(const char *cmd, int argc, char **argv, const char *shortopts,
             const struct option *longopts);

/* Every command's option table ends with these. */
#define OPT_HELP {"help", no_argument, NULL, 'h'}
#define OPT_END {NULL, 0, NULL, 0}

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
    OPT_AT
};

/* Prints the help of one command (or of everything for NULL) to stdout. */
void print_help(const char *cmd);

/* Set by SIGINT/SIGTERM while following. */
extern volatile sig_atomic_t g_stop;

int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_salvage(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_state(int argc, char **argv);
int cmd_chain(int argc, char **argv);

#endif /* EVDUMP_H */
