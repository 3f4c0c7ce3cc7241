/*
 * common.h: what evdump, evreplay and evrun share, so that the three
 * tools behave and speak alike: the exit statuses they agree on,
 * one-line messages on stderr under the tool's name, one message for one
 * situation (no store, no execution, a refused file, a usage error),
 * opening a store, option parsing with getopt_long, command dispatch
 * with per-command --help and --version, reading a file argument, and
 * result output that ends quietly at a closed pipe.
 *
 * The tools use only the public API (evstore.h): they link the shared
 * library, which exports nothing else, so the linker checks it.
 */
#ifndef TOOLS_COMMON_H
#define TOOLS_COMMON_H

#include "evstore.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

/* The exit statuses every tool gives one meaning (README, "Exit
 * statuses"). Each tool names its own 1, and evrun its 4. */
enum {
    EXIT_OKAY = 0,  /* success (also when the reader of stdout went away) */
    EXIT_USAGE = 2, /* bad command line; only then is --help suggested */
    EXIT_ERROR = 3  /* anything else: not found, I/O, refused data, ... */
};

/* ------------------------------------------------------------------ */
/* Messages                                                           */
/* ------------------------------------------------------------------ */

/* The tool's name, which begins every message; set by tool_main (or by
 * main before anything is printed). */
extern const char *tool_name;

/* Prints `prefix` (NULL: "<tool>: ") and the message as one line on
 * stderr, line breaks in the message made blanks, after flushing the
 * result output, so that the two stay in order on a terminal. */
void vline(const char *prefix, const char *fmt, va_list ap);

/* A line on stderr that is not an error ("<tool>: <msg>"). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "<tool>: <msg>" and returns EXIT_ERROR. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "<tool>: <msg>: <evs_strerror(rc)> (<evs_err_name(rc)>)" and
 * returns EXIT_ERROR. */
int fail_rc(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "<tool>: <cmd>: <msg> (run '<tool> <cmd> --help')", or without
 * "<cmd>: " for NULL, and returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports a library error: prefers the detail in `info` (which names the
 * execution, sequence and offset) over the bare code, and puts `what`
 * first unless the detail already names the execution. Returns
 * EXIT_ERROR. */
int fail_evs(int rc, const evs_error_info *info, const char *what);

/* Reports an execution that cannot be had: "'ID' is not a valid
 * execution id", "no execution 'ID' in store STORE", or the library's
 * detail (fail_evs). Returns EXIT_ERROR. */
int fail_exec(int rc, const evs_error_info *info, const char *store,
              const char *id);

/* Opens the log of execution `id` read-only, only to learn whether it
 * can be: 0, or the error with *info saying more (which file was refused,
 * and why: a symbolic link, a FIFO, a second hard link). */
int probe_exec(evs_store *st, const char *id, evs_error_info *info);

/* Reports that `what` ("reading the log", "resume") failed on execution
 * `id` with rc, or, for rc 0, that it seemed not to be there: as
 * fail_exec when probe_exec finds it missing or its log refused, else
 * "ID: WHAT: <message> (<name>)". Returns EXIT_ERROR. */
int fail_on_exec(evs_store *st, const char *store, const char *id, int rc,
                 const char *what);

/* ------------------------------------------------------------------ */
/* Store and files                                                    */
/* ------------------------------------------------------------------ */

/* Set by --allow-unsafe-perms, which every tool takes. */
extern int tool_allow_unsafe;

/* Where the library's log records go: stderr, as --log-format (text,
 * logfmt or json; default text) and --log-level (error, warn, info or
 * debug; default warn) say. Every store the tools open logs here. */
extern evs_log_sink tool_log;

/* Takes --log-format or --log-level (opt, with its value val); returns 0,
 * or a usage error (EXIT_USAGE) for a value it does not know. */
int tool_log_option(const char *opt, const char *val);

/* The text of the two options, for the tools' help. */
#define TOOL_LOG_HELP                                                          \
    "Every command takes --log-format FMT (text, logfmt or json: how the\n"    \
    "library's log records are written to stderr; default text) and\n"        \
    "--log-level LVL (error, warn, info or debug; default warn).\n"

/* Opens the store at `path` with `o` (NULL: the defaults, without
 * creating it), --allow-unsafe-perms applied. On failure reports it in
 * one line ("no store at PATH (no such directory<missing>)", a directory
 * others may write to, ...) and returns EXIT_ERROR; `missing` (may be
 * NULL) says more about a missing store. Returns 0 with *out set. */
int open_store_opts(const char *path, evs_store_opts *o, const char *missing,
                    evs_store **out);

/* open_store_opts with the defaults: a typo must not create a store. */
int open_store(const char *path, evs_store **out);

/* Whether `path` names a bundle rather than a store: a regular file
 * (a store is a directory). Follows a symbolic link. */
int is_bundle_path(const char *path);

/* Opens the bundle at `path` (evstore/archive.h), checking it whole. On
 * failure reports it in one line ("BUNDLE: <what is wrong>") and returns
 * EXIT_ERROR. Returns 0 with *out set. */
int open_bundle(const char *path, evs_bundle **out);

/* Reads the whole file at `path`, or stdin for "-". Returns a buffer
 * (NUL-terminated, *len not counting the NUL) to free, or NULL with errno
 * set. */
char *read_file(const char *path, size_t *len);

/* ------------------------------------------------------------------ */
/* Commands and options                                               */
/* ------------------------------------------------------------------ */

typedef struct tool_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const char *summary;               /* one line, for the list */
    const char *help;                  /* its usage and options; NULL for
                                          "help", which has none */
} tool_command;

typedef struct tool_def {
    const char *name;
    const char *head;   /* the general help, up to "Commands:\n" */
    const char *common; /* what every command shares (options, notes) */
    const char *more;   /* after the commands, in the general help only;
                           may be NULL */
    const char *exit;   /* the exit statuses */
    const tool_command *commands;
    size_t ncommands;
} tool_def;

/*
 * The main of a tool with commands: takes --allow-unsafe-perms anywhere
 * before "--" out of argv, answers --help, -h, --version and "help
 * [CMD]", and runs the command named by argv[1] with getopt reset.
 * Returns the exit status, the result output finished (out_finish).
 */
int tool_main(const tool_def *t, int argc, char **argv);

/* The "help [CMD]" command, for a tool's command table. */
int tool_cmd_help(int argc, char **argv);

/* Prints the help of command `cmd` (its usage, then what all commands
 * share and the exit statuses), or the general help for NULL. */
void print_help(const char *cmd);

/* Prints "<tool> (evstore) <version of the library linked>". */
void print_version(void);

/*
 * Runs getopt_long over a command's arguments (argv[0] is the command
 * name). Returns the option, -1 at the end, or EXIT_USAGE negated after
 * reporting an unknown option or a missing argument. "--help" and "-h"
 * are reported as 'h'. A `shortopts` that begins with '+' stops at the
 * first argument that is not an option.
 */
int next_opt(const char *cmd, int argc, char **argv, const char *shortopts,
             const struct option *longopts);

/* Every command's option table ends with these. */
#define OPT_HELP                                                               \
    {                                                                          \
        "help", no_argument, NULL, 'h'                                         \
    }
#define OPT_END                                                                \
    {                                                                          \
        NULL, 0, NULL, 0                                                       \
    }

/*
 * Checks the arguments left after the options: at least `min`, at most
 * `max`. `names` names them, blank-separated ("STORE EXEC"), for the
 * message about missing ones. Returns 0 or a usage error (EXIT_USAGE).
 */
int positionals(const char *cmd, int argc, char **argv, int min, int max,
                const char *names);

/* Parses a decimal number into [min, max]; on failure reports a usage
 * error naming the option and returns EXIT_USAGE. */
int parse_num(const char *cmd, const char *opt, const char *arg, uint64_t min,
              uint64_t max, uint64_t *out);

/* ------------------------------------------------------------------ */
/* Result output                                                      */
/* ------------------------------------------------------------------ */

/*
 * Everything a command prints as its result goes through these, into a
 * buffered stream (stdout unless redirected with out_to). The first
 * failed write is remembered and every later one is skipped, so a
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

/* A JSON string literal, or null for a NULL span pointer. */
void out_json_str(evs_span s);
/* RFC 3339 time as a JSON string, null for 0. */
void out_json_time(int64_t us);

/*
 * Members of a JSON object, in the tools' one vocabulary (evdump ls
 * --json and snapshot --json, evrun --json): each writes `"key":` after
 * "{" (first) or ",", then the value. A string member is never null
 * ("" when empty); a JSON member embeds the library's compact, checked
 * JSON as it is, null when empty.
 */
void out_member_str(const char *key, evs_span v, int first);
void out_member_time(const char *key, int64_t us);
void out_member_json(const char *key, evs_span v);
void out_member_u64(const char *key, uint64_t v);

#endif /* TOOLS_COMMON_H */
