/*
 * evdump.c: the operator's inspection tool: command dispatch, help, and
 * the helpers every command shares (errors, output that stops quietly at
 * a closed pipe, terminal-safe text, option parsing).
 *
 * Every command reaches the store only through the public API, so evdump
 * sees exactly what any other client of the library sees.
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

dump_term g_term;
volatile sig_atomic_t g_stop;

static FILE *g_out;
static const char *g_out_name = "stdout";
static int g_out_err;
static int g_allow_unsafe; /* --allow-unsafe-perms */

/* ------------------------------------------------------------------ */
/* Help                                                               */
/* ------------------------------------------------------------------ */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *help;
} command;

static const char help_ls[] =
    "evdump ls STORE [--status S] [--workflow W] [--limit N] [--offset N]\n"
    "          [--json]\n"
    "  Lists executions by creation time, then id: id, status, workflow,\n"
    "  created, updated and last sequence, as recorded in each snapshot.\n"
    "  An execution whose snapshot is missing or damaged shows \"?\" and is\n"
    "  listed only when neither --status nor --workflow is given.\n"
    "  --status S     only executions whose status is S\n"
    "  --workflow W   only executions of workflow W\n"
    "  --limit N      at most N executions (0, the default: all)\n"
    "  --offset N     skip the first N matching executions\n"
    "  --json         one JSON object per line and execution, with id,\n"
    "                 status, workflow_name, created_at, updated_at,\n"
    "                 start_time, end_time (RFC 3339 strings or null),\n"
    "                 last_event_seq and snapshot_ok\n";

static const char help_show[] =
    "evdump show STORE EXEC [--from SEQ] [--to SEQ] [--type T] [--path P]\n"
    "          [--json]\n"
    "  Shows the events of EXEC in order, one row each: sequence, time,\n"
    "  type, path, step and data. On a terminal the data is cut to the\n"
    "  terminal's width; otherwise it is printed in full. Every line read\n"
    "  is verified: damage stops the output with an error (exit 3).\n"
    "  --from SEQ     start at sequence SEQ (default 1)\n"
    "  --to SEQ       stop after sequence SEQ (default: the last)\n"
    "  --type T       only events of type T; repeat for any of several\n"
    "  --path P       only events of path P; repeat for any of several\n"
    "  --json         print each event's line exactly as stored in the\n"
    "                 log (canonical, with its checksum)\n";

static const char help_tail[] =
    "evdump tail STORE EXEC [-n N] [-f] [--json]\n"
    "  Shows the last N events of EXEC, in the format of show, without\n"
    "  reading the whole log.\n"
    "  -n, --lines N  how many events (default 10; 0: none)\n"
    "  -f, --follow   then keep printing events as they are appended\n"
    "                 (checked every 100 ms) until SIGINT or SIGTERM,\n"
    "                 which end it with exit status 0\n"
    "  --json         print each event's line exactly as stored\n";

static const char help_verify[] =
    "evdump verify STORE [EXEC...]\n"
    "  Checks every line of each log (checksum, sequence, append framing,\n"
    "  execution id, format version) and each snapshot (checksums,\n"
    "  format, last_event_seq not past the end of the log); without EXEC,\n"
    "  every execution in the store. Logs and snapshots are only read\n"
    "  (listing the store may rewrite its .index cache). Prints one line\n"
    "  per problem on stdout:\n"
    "    EXEC: seq SEQ at byte OFFSET: KIND: message\n"
    "  with KIND checksum, syntax, sequence, framing, execution, format or\n"
    "  torn (an unfinished append at the end, which the next writer cuts\n"
    "  back); a snapshot problem reads\n"
    "    EXEC: snapshot: KIND: message\n"
    "  with KIND missing, checksum, binding, syntax, version, execution or\n"
    "  stale. Ends with \"N executions, M events, K problems\".\n"
    "  Exit 1 if there is any problem.\n";

static const char help_snapshot[] =
    "evdump snapshot STORE EXEC [--json]\n"
    "  Shows the snapshot of EXEC after checking its checksums and that it\n"
    "  is not ahead of the log: one field per line, JSON fields\n"
    "  pretty-printed, \"-\" for what is not set.\n"
    "  --json         one JSON object with every field: times as RFC 3339\n"
    "                 strings or null, JSON fields embedded as JSON (null\n"
    "                 when empty)\n";

static const char help_import[] =
    "evdump import STORE EXEC [FILE|-]\n"
    "  Appends the JSON Lines events of FILE (default, or \"-\": stdin) to\n"
    "  EXEC. Lines may be evstore's or Dive's (id, execution_id, path_id,\n"
    "  sequence, timestamp, event_type, step_name, data), with or without a\n"
    "  checksum; a checksum that is present must match. Blank lines are\n"
    "  skipped and CRLF line endings accepted. The sequences must continue\n"
    "  the log (the first one is its last sequence + 1) with no gap or\n"
    "  duplicate, and execution_id must be empty or EXEC. Ids, times and\n"
    "  data are kept; the lines written are canonical evstore lines.\n"
    "  If EXEC does not exist it is created (the first event must then be\n"
    "  sequence 1) with status \"running\" and, when the first event is an\n"
    "  execution_started with data.workflow_name, that workflow name.\n"
    "  The log is opened as its writer: a torn tail is cut back first (the\n"
    "  cut bytes are saved beside the log) and reported on stderr, and the\n"
    "  import fails if another writer holds the execution.\n"
    "  Events are written in atomic appends of up to 1000 events. At the\n"
    "  first bad line it reports \"line N: reason\" and exits 3: appends\n"
    "  written before that line stay in the log; none of the events of the\n"
    "  append the bad line belongs to is written.\n"
    "  Prints \"imported N events (seq A..B)\" at the end.\n";

static const char help_salvage[] =
    "evdump salvage STORE EXEC [--out FILE]\n"
    "  Exports every line of EXEC's log that can still be read, byte for\n"
    "  byte, and reports each problem on stderr in the form of verify.\n"
    "  Lines with a bad checksum, bad syntax, another execution's id or a\n"
    "  newer format are left out; lines that are only out of sequence or\n"
    "  of a damaged append are exported. A torn tail (an unfinished last\n"
    "  append) is left out whole, so nothing uncommitted is exported. The\n"
    "  log is only read.\n"
    "  --out FILE     write to FILE (created with mode 0600, replacing it)\n"
    "                 instead of stdout\n"
    "  Exit 1 if anything was skipped, 0 if the log was clean.\n";

static const char help_state[] =
    "evdump state STORE EXEC [--at SEQ] [--json]\n"
    "  Replays EXEC and shows its state: the execution (status, workflow,\n"
    "  last sequence, start and end, failure point, inputs, outputs,\n"
    "  error, and whether replay began at the snapshot: \"from snapshot at\n"
    "  seq N\"), then tables of its paths, steps (status, attempts, output\n"
    "  or error), each progress, variables, signals, version decisions,\n"
    "  timers and waits. On a terminal JSON values are cut to its width;\n"
    "  otherwise they are printed in full. Replay starts from the snapshot\n"
    "  when it is valid, not past SEQ and holds the full state, else from\n"
    "  sequence 1 (the snapshots of the orchestrator, evrun among them, hold\n"
    "  compact states). Every line read is verified: damage stops it with\n"
    "  an error (exit 3).\n"
    "  A history that breaks a replay rule (FORMAT.md, \"History rules\") is\n"
    "  replayed tolerantly: the state is shown anyway, each violation is\n"
    "  reported on stderr as \"EXEC: seq SEQ: RULE: message\", and the exit\n"
    "  status is 1. Only the events replayed are checked: when replay\n"
    "  starts from the snapshot, those before it are not.\n"
    "  --at SEQ       the state as of sequence SEQ (1 up to the last;\n"
    "                 default: the last)\n"
    "  --json         print the canonical state JSON (FORMAT.md 6.2), in\n"
    "                 full, exactly, on one line\n";

static const char help_chain[] =
    "evdump chain STORE EXEC\n"
    "  Shows the lineage of EXEC in both directions: back to the first\n"
    "  execution it continues or retries, then, as a tree, every\n"
    "  continuation (continue-as-new) and every retry (with its strategy)\n"
    "  made from it, with status, start time and number of events. Reads\n"
    "  the lineage of every execution in the store.\n";

static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"ls", cmd_ls, "list executions", help_ls},
    {"show", cmd_show, "show the events of an execution", help_show},
    {"tail", cmd_tail, "show the last events, and follow new ones",
     help_tail},
    {"verify", cmd_verify, "check logs and snapshots for damage",
     help_verify},
    {"snapshot", cmd_snapshot, "show an execution's snapshot",
     help_snapshot},
    {"state", cmd_state, "replay an execution and show its state",
     help_state},
    {"chain", cmd_chain, "show the lineage: continuations and retries",
     help_chain},
    {"import", cmd_import, "append JSONL events (evstore's or Dive's)",
     help_import},
    {"salvage", cmd_salvage, "export every event that can still be read",
     help_salvage},
    {"help", cmd_help, "show this help, or a command's", NULL},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char help_exit[] =
    "Exit status:\n"
    "  0  success (also when the reader of the output goes away)\n"
    "  1  verify or salvage found damage; state replayed a history that\n"
    "     breaks a replay rule\n"
    "  2  usage error: unknown command or option, missing or bad argument\n"
    "  3  any other error: store or execution not found, I/O error, damage\n"
    "     met by show, tail or state, a bad line in an import\n"
    "Errors are one line on stderr beginning with \"evdump: \".\n";

static const char help_head[] =
    "Usage: evdump COMMAND ARGS... [OPTIONS]\n"
    "\n"
    "Inspects, verifies, imports and salvages the executions of an evstore\n"
    "store. STORE is the store's directory; evdump never creates it.\n"
    "\n"
    "Commands:\n";

static const char help_common[] =
    "Options may come before or after the arguments; \"--\" ends them.\n"
    "Every command takes -h, --help.\n"
    "Every command takes --allow-unsafe-perms: open a store directory that\n"
    "group or others may write to, which is refused otherwise (exit 3).\n"
    "Colour is used only when stdout is a terminal and NO_COLOR is unset\n"
    "or empty. Data previews are cut to the terminal's width only when\n"
    "stdout is a terminal.\n";

void print_help(const char *cmd)
{
    for (size_t i = 0; cmd && i < NCOMMANDS; i++) {
        if (strcmp(cmd, commands[i].name) != 0 || !commands[i].help)
            continue;
        out_printf("Usage: %s\n%s\n%s", commands[i].help, help_common,
                   help_exit);
        return;
    }
    out_printf("%s", help_head);
    for (size_t i = 0; i < NCOMMANDS; i++)
        out_printf("  %-9s %s\n", commands[i].name, commands[i].summary);
    out_printf("\n%s\n", help_common);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].help)
            out_printf("%s\n", commands[i].help);
    out_printf("%s", help_exit);
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return usage_error("help", "too many arguments");
    if (argc == 2) {
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (strcmp(argv[1], commands[i].name) == 0) {
                print_help(argv[1]);
                return EXIT_OKAY;
            }
        return usage_error("help", "unknown command '%s'", argv[1]);
    }
    print_help(NULL);
    return EXIT_OKAY;
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

static void vline(const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One line, whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fflush(stdout);
    fprintf(stderr, "evdump: %s\n", msg);
}

int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
    return EXIT_ERROR;
}

void note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cmd)
        fail("%s: %s (run 'evdump %s --help')", cmd, msg, cmd);
    else
        fail("%s (run 'evdump --help')", msg);
    return EXIT_USAGE;
}

int positionals(const char *cmd, int argc, char **argv, int max)
{
    if (argc - optind < 2)
        return usage_error(cmd, "missing %s",
                           argc == optind ? "STORE and EXEC" : "EXEC");
    if (argc - optind > max)
        return usage_error(cmd, "unexpected argument '%s'",
                           argv[optind + max]);
    return 0;
}

int fail_evs(int rc, const evs_error_info *info, const char *what)
{
    if (info && info->code != 0 && info->msg[0]) {
        if (info->execution_id[0] && strstr(info->msg, info->execution_id))
            return fail("%s (%s)", info->msg, evs_err_name(rc));
        return fail("%s: %s (%s)", what, info->msg, evs_err_name(rc));
    }
    return fail("%s: %s (%s)", what, evs_strerror(rc), evs_err_name(rc));
}

int fail_exec(int rc, const evs_error_info *info, const char *store,
              const char *id)
{
    if (rc == EVS_EBADID)
        return fail("'%s' is not a valid execution id", id);
    if (rc == -ENOENT)
        return fail("no execution '%s' in store %s", id, store);
    return fail_evs(rc, info, id);
}

int probe_exec(evs_store *st, const char *id, evs_error_info *info)
{
    evs_log *l = NULL;
    int rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, info);

    evs_log_close(l);
    return rc;
}

int fail_unreadable(evs_store *st, const char *store, const char *id,
                    int rc)
{
    evs_error_info info;
    int orc = probe_exec(st, id, &info);

    if (orc != 0 && (rc == 0 || orc == rc))
        return fail_exec(orc, &info, store, id);
    if (rc == 0)
        return fail_exec(-ENOENT, NULL, store, id);
    return fail("%s: reading the log: %s (%s)", id, evs_strerror(rc),
                evs_err_name(rc));
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

void out_to(FILE *f, const char *name)
{
    g_out = f;
    g_out_name = name;
}

int out_broken(void)
{
    return g_out_err != 0;
}

int out_write(const void *p, size_t n)
{
    if (g_out_err)
        return -1;
    if (n && fwrite(p, 1, n, g_out) != n) {
        g_out_err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int out_printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    if (g_out_err)
        return -1;
    va_start(ap, fmt);
    n = vfprintf(g_out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        g_out_err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int out_flush(void)
{
    if (g_out_err)
        return -1;
    if (fflush(g_out) != 0) {
        g_out_err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int out_finish(int status)
{
    out_flush();
    if (g_out != stdout && fclose(g_out) != 0 && !g_out_err)
        g_out_err = errno ? errno : EIO;
    g_out = stdout;
    if (!g_out_err)
        return status;
    if (g_out_err == EPIPE)
        return EXIT_OKAY; /* the reader went away, as with `| head` */
    return fail("writing %s: %s", g_out_name, strerror(g_out_err));
}

/* Length of the UTF-8 sequence starting with byte c, or 1 for a byte
 * that cannot start one (shown as is: the terminal shows a replacement). */
static size_t u8len(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    if (c >= 0xe0)
        return c <= 0xef ? 3 : 1;
    if (c >= 0xc2)
        return 2;
    return 1;
}

/* Walks `s` one displayed unit at a time: a control character becomes a
 * six-column \uXXXX escape, anything else one column per code point. */
static size_t text_walk(evs_span s, size_t max_cols, int emit)
{
    static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */
    size_t cols = 0, i = 0;

    if (max_cols && text_cols(s) <= max_cols)
        max_cols = 0;
    while (i < s.len) {
        unsigned char c = (unsigned char)s.ptr[i];
        size_t n = u8len(c), w;
        unsigned cp = 0;
        int ctl = 0;

        if (i + n > s.len)
            n = 1;
        if (c < 0x20 || c == 0x7f) {
            ctl = 1;
            cp = c;
        } else if (c == 0xc2 && n == 2 &&
                   (unsigned char)s.ptr[i + 1] < 0xa0) {
            ctl = 1;
            cp = (unsigned char)s.ptr[i + 1] & 0x3f;
            cp |= 0x80;
        }
        w = ctl ? 6 : 1;
        if (max_cols && cols + w > max_cols - 1) {
            if (emit)
                out_write(ell, sizeof(ell) - 1);
            return cols + 1;
        }
        if (emit) {
            if (ctl)
                out_printf("\\u%04x", cp);
            else
                out_write(s.ptr + i, n);
        }
        cols += w;
        i += n;
    }
    return cols;
}

size_t text_cols(evs_span s)
{
    return text_walk(s, 0, 0);
}

size_t out_text(evs_span s, size_t max_cols)
{
    return text_walk(s, max_cols, 1);
}

static void indent_to(int n)
{
    out_write("\n", 1);
    for (int i = 0; i < n; i++)
        out_write(" ", 1);
}

/* The input is compact JSON from the library, so strings are the only
 * thing to step over; whitespace outside them is dropped. */
void out_json_pretty(evs_span js, int indent)
{
    int depth = 0;
    size_t i = 0;

    while (i < js.len) {
        char c = js.ptr[i];

        if (c == '"') {
            size_t j = i + 1;
            while (j < js.len && js.ptr[j] != '"')
                j += js.ptr[j] == '\\' ? 2 : 1;
            if (j >= js.len)
                j = js.len - 1; /* unterminated: never read past it */
            out_text((evs_span){js.ptr + i, j + 1 - i}, 0);
            i = j + 1;
            continue;
        }
        if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            out_write(&c, 1);
            if (i + 1 < js.len && js.ptr[i + 1] == close) {
                out_write(&close, 1);
                i += 2;
                continue;
            }
            depth++;
            indent_to(indent + 2 * depth);
        } else if (c == '}' || c == ']') {
            depth--;
            indent_to(indent + 2 * (depth > 0 ? depth : 0));
            out_write(&c, 1);
        } else if (c == ',') {
            out_write(",", 1);
            indent_to(indent + 2 * depth);
        } else if (c == ':') {
            out_write(": ", 2);
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            out_write(&c, 1);
        }
        i++;
    }
}

void out_json_str(evs_span s)
{
    char small[256];
    size_t n;

    if (!s.ptr) {
        out_write("null", 4);
        return;
    }
    n = evs_json_quote(s, small, sizeof(small));
    if (n == (size_t)-1) {
        /* Not UTF-8; the library never hands such text out, but stay
         * valid JSON whatever happens. */
        out_write("null", 4);
    } else if (n <= sizeof(small)) {
        out_write(small, n);
    } else {
        char *big = malloc(n);
        if (!big) {
            out_write("null", 4);
            return;
        }
        evs_json_quote(s, big, n);
        out_write(big, n);
        free(big);
    }
}

void fmt_time(int64_t us, int secs, char buf[40])
{
    if (us == 0 || evs_time_format(us, buf) != 0) {
        snprintf(buf, 40, us == 0 ? "-" : "%" PRId64 "us", us);
        return;
    }
    if (secs)
        memcpy(buf + 19, "Z", 2);
}

void out_json_time(int64_t us)
{
    char buf[EVS_TIME_LEN + 1];

    if (us == 0 || evs_time_format(us, buf) != 0)
        out_write("null", 4);
    else
        out_printf("\"%s\"", buf);
}

const char *c_dim(void)
{
    return g_term.color ? "\033[2m" : "";
}

const char *c_red(void)
{
    return g_term.color ? "\033[31m" : "";
}

const char *c_green(void)
{
    return g_term.color ? "\033[32m" : "";
}

const char *c_cyan(void)
{
    return g_term.color ? "\033[36m" : "";
}

const char *c_bold(void)
{
    return g_term.color ? "\033[1m" : "";
}

const char *c_off(void)
{
    return g_term.color ? "\033[0m" : "";
}

/* ------------------------------------------------------------------ */
/* Store and arguments                                                */
/* ------------------------------------------------------------------ */

int open_store(const char *path, evs_store **out)
{
    evs_store_opts o;
    int rc;

    evs_store_opts_init(&o);
    o.create = 0; /* a typo must not create a directory */
    o.allow_unsafe_perms = g_allow_unsafe;
    rc = evs_store_open(path, &o, out);
    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        return fail("no store at %s (no such directory)", path);
    if (rc == EVS_EUNSAFE)
        return fail("refusing store %s: group or others may write to it "
                    "(--allow-unsafe-perms opens it anyway)", path);
    return fail("cannot open store %s: %s (%s)", path, evs_strerror(rc),
                evs_err_name(rc));
}

int parse_num(const char *cmd, const char *opt, const char *arg,
              uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = arg;

    if (!*p)
        return usage_error(cmd, "%s needs a number, got ''", opt);
    for (; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (*p < '0' || *p > '9')
            return usage_error(cmd, "%s needs a non-negative whole number, "
                                    "got '%s'", opt, arg);
        if (v > (UINT64_MAX - d) / 10)
            return usage_error(cmd, "%s: '%s' is too large", opt, arg);
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return usage_error(cmd, "%s must be between %" PRIu64 " and %" PRIu64
                                ", got '%s'", opt, min, max, arg);
    *out = v;
    return 0;
}

int next_opt(const char *cmd, int argc, char **argv, const char *shortopts,
             const struct option *longopts)
{
    char sopts[64];
    int c;

    /* A leading ':' makes a missing argument ':' rather than '?'. */
    snprintf(sopts, sizeof(sopts), ":%sh", shortopts);
    c = getopt_long(argc, argv, sopts, longopts, NULL);
    if (c == '?' || c == ':') {
        const char *arg = argv[optind - 1];
        char shown[64];

        /* For a long option the word is shown without its "=value". */
        if (arg[0] == '-' && arg[1] == '-')
            snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(arg, "="),
                     arg);
        else
            snprintf(shown, sizeof(shown), "-%c", optopt ? optopt : '?');
        if (c == '?')
            return -usage_error(cmd, "unknown option '%s'", shown);
        return -usage_error(cmd, "option '%s' needs an argument", shown);
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static void setup_terminal(void)
{
    const char *nc = getenv("NO_COLOR");
    struct winsize ws;

    memset(&g_term, 0, sizeof(g_term));
    if (!isatty(STDOUT_FILENO))
        return;
    g_term.color = !(nc && *nc);
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        g_term.width = ws.ws_col;
    else
        g_term.width = 80;
}

int main(int argc, char **argv)
{
    static char outbuf[1 << 16];
    const char *name;
    int status, n = 1;

    /* A closed pipe shows up as EPIPE on a write, which ends the output
     * quietly (out_finish). */
    signal(SIGPIPE, SIG_IGN);
    setup_terminal();
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    out_to(stdout, "stdout");
    opterr = 0;

    /* The one option every command takes is taken out here, before the
     * command's own parsing; "--" ends options, so not after it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[n++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], "--allow-unsafe-perms") == 0)
            g_allow_unsafe = 1;
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    argc = n;
    if (argc < 2)
        return usage_error(NULL, "no command given");
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_help(NULL);
        return out_finish(EXIT_OKAY);
    }
    if (strcmp(name, "--version") == 0) {
        out_printf("evdump (evstore) %s\n", EVS_VERSION_STRING);
        return out_finish(EXIT_OKAY);
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(name, commands[i].name) != 0)
            continue;
        optind = 0; /* full reinitialisation of GNU getopt */
        status = commands[i].run(argc - 1, argv + 1);
        return out_finish(status);
    }
    if (name[0] == '-')
        return usage_error(NULL, "expected a command before '%s'", name);
    return usage_error(NULL, "unknown command '%s'", name);
}
