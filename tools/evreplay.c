/*
 * evreplay.c: a debugger for one execution's history, as gdb is for a
 * program: the command line, where commands come from (an interactive
 * prompt with line editing, -c, -x files or a pipe), how a line is split
 * into commands and words, the command table with its help, and exit
 * statuses.
 *
 * The history is loaded once (evreplay_session.c); commands move through
 * it (evreplay_move.c) and look at the state or the events
 * (evreplay_print.c, evreplay_diff.c).
 */
#include "evreplay.h"

#ifdef EVREPLAY_LIBEDIT
#include <editline/readline.h>
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Checkpoints: every this many events by default, and at most this many
 * bytes of state JSON before they are thinned out. */
#define CK_EVERY_DEFAULT 1000
#define CK_BUDGET ((size_t)64 << 20)

/* ------------------------------------------------------------------ */
/* Commands and help                                                  */
/* ------------------------------------------------------------------ */

static int cmd_info(session *s, int argc, char **argv);
static int cmd_help(session *s, int argc, char **argv);
static int cmd_quit(session *s, int argc, char **argv);

/*
 * One row of help per form of a command. Rows of one command are
 * adjacent; the first row of a word carries its function. `moves` marks
 * the commands an empty line repeats.
 */
typedef struct command {
    const char *group; /* set on the first row of a group */
    const char *word;  /* the command's name */
    const char *alias; /* a short name, or NULL */
    const char *usage;
    const char *summary; /* one line */
    const char *example;
    const char *detail; /* for `help WORD`, or NULL */
    int (*run)(session *s, int argc, char **argv);
    int moves;
} command;

static const command commands[] = {
    {"Moving", "step", "s", "step [N]", "apply the next N events (default 1)",
     "step 3",
     "Applies events one at a time. Stops early at a breakpoint or at the\n"
     "end of the history. Prints the violations of the events applied, the\n"
     "breakpoints hit, and the event it stopped at, marked \"=>\".",
     cmd_step, 1},
    {NULL, "next", "n", "next [N]", "apply events until N of the current path",
     "next",
     "The current path is the path of the event just applied (at seq 0, of\n"
     "the first event). Events of other paths are applied on the way\n"
     "without counting. Stops early at a breakpoint or at the end.",
     cmd_next, 1},
    {NULL, "back", NULL, "back [N]", "go back N events (default 1)", "back 2",
     "Rebuilds the state N events earlier, from the nearest checkpoint.\n"
     "Breakpoints do not stop it.",
     cmd_back, 1},
    {NULL, "goto", NULL, "goto SEQ", "go to the state after event SEQ",
     "goto 5",
     "SEQ is 0 (before the first event) to the last sequence. Breakpoints\n"
     "do not stop it; violations passed going forward are shown.",
     cmd_goto, 0},
    {NULL, "continue", "c", "continue",
     "apply events until a breakpoint or the end", "continue", NULL,
     cmd_continue, 1},
    {NULL, "run", NULL, "run", "go back to seq 0, before any event", "run",
     "Same as reset.", cmd_run, 0},
    {NULL, "reset", NULL, "reset", "same as run", "reset", NULL, cmd_run, 0},

    {"Breakpoints", "break", "b", "break step NAME",
     "stop at events of step NAME", "break step fetch",
     "A breakpoint is checked after each event that step, next and\n"
     "continue apply; the move stops at the first event that hits one.\n"
     "Breakpoints are numbered from 1 and numbers are not reused.",
     cmd_break, 0},
    {NULL, "break", NULL, "break type TYPE", "stop at events of type TYPE",
     "break type step_failed", NULL, NULL, 0},
    {NULL, "break", NULL, "break path ID", "stop at events of path ID",
     "break path main", NULL, NULL, 0},
    {NULL, "break", NULL, "break seq N", "stop at event N", "break seq 12",
     NULL, NULL, 0},
    {NULL, "break", NULL, "break status [STATUS]",
     "stop when the status changes (to STATUS)", "break status completed",
     "STATUS is pending, running, waiting, paused, completed, failed,\n"
     "terminated or continued; without it any change stops.",
     NULL, 0},
    {NULL, "break", NULL, "break violation", "stop at events that break a rule",
     "break violation", NULL, NULL, 0},
    {NULL, "info", NULL, "info breakpoints", "list breakpoints and their hits",
     "info breakpoints", NULL, cmd_info, 0},
    {NULL, "delete", "d", "delete [N...]", "delete breakpoints N..., or all",
     "delete 1", NULL, cmd_delete, 0},

    {"Inspecting", "print", "p", "print state",
     "status, last seq, failure point, counts, who paused, unpaused or "
     "terminated it and why", "print state",
     "Everything print shows is the state after the current event.\n"
     "JSON values are cut to 60 columns in tables; print var, print step\n"
     "and print json show them whole.",
     cmd_print, 0},
    {NULL, "print", NULL, "print paths", "every path, one per line",
     "print paths", NULL, NULL, 0},
    {NULL, "print", NULL, "print path ID", "one path and its steps",
     "print path main", NULL, NULL, 0},
    {NULL, "print", NULL, "print steps", "every step, one per line",
     "print steps", NULL, NULL, 0},
    {NULL, "print", NULL, "print step NAME [PATH] [ITER]",
     "one step in full (every match)", "print step fetch main",
     "ITER is the iteration of an `each` step, -1 for a plain step.", NULL, 0},
    {NULL, "print", NULL, "print vars", "every variable and its value",
     "print vars", NULL, NULL, 0},
    {NULL, "print", NULL, "print var NAME", "one variable, pretty-printed",
     "print var summary", NULL, NULL, 0},
    {NULL, "print", NULL, "print signals",
     "signals received, buffered or consumed", "print signals", NULL, NULL, 0},
    {NULL, "print", NULL, "print timers", "timers, pending or fired",
     "print timers", NULL, NULL, 0},
    {NULL, "print", NULL, "print waits", "waits, pending or ended",
     "print waits", NULL, NULL, 0},
    {NULL, "print", NULL, "print versions", "version decisions",
     "print versions", NULL, NULL, 0},
    {NULL, "print", NULL, "print each", "progress of `each` steps",
     "print each", NULL, NULL, 0},
    {NULL, "print", NULL, "print json", "the canonical state JSON, pretty",
     "print json", NULL, NULL, 0},
    {NULL, "where", NULL, "where", "seq, event just applied, its path, step",
     "where", NULL, cmd_where, 0},
    {NULL, "list", "l", "list [SEQ]",
     "events around SEQ (default: current, =>)", "list 10",
     "Shows up to 11 events: SEQ and five either side.", cmd_list, 0},
    {NULL, "event", NULL, "event [SEQ]", "one event in full (default: current)",
     "event 4", NULL, cmd_event, 0},
    {NULL, "diff", NULL, "diff SEQ1 SEQ2",
     "what changed in the state between them", "diff 3 8",
     "One line per item: \"+\" added, \"-\" removed, \"~\" changed, with\n"
     "\"field old -> new\" for each field that differs. Covers the\n"
     "execution's fields, paths, steps, each, variables, signals,\n"
     "versions, timers and waits. Does not move.",
     cmd_diff, 0},
    {NULL, "search", NULL, "search TEXT",
     "events whose type/path/step/data has TEXT", "search timeout",
     "Matching is exact and case-sensitive; the words of TEXT are joined\n"
     "by single spaces. `search text WORDS` searches for WORDS even when\n"
     "the first is type, path or step. Does not move.",
     cmd_search, 0},
    {NULL, "search", NULL, "search type|path|step NAME",
     "events whose type/path/step is NAME", "search type step_failed", NULL,
     NULL, 0},
    {NULL, "info", NULL, "info violations", "every broken history rule",
     "info violations", NULL, NULL, 0},

    {"Other", "help", "h", "help [CMD]", "list commands, or explain one",
     "help break", NULL, cmd_help, 0},
    {NULL, "quit", "q", "quit", "leave evreplay", "quit", NULL, cmd_quit, 0},
    {NULL, "exit", NULL, "exit", "leave evreplay (same as quit)", "exit", NULL,
     cmd_quit, 0},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command *find_command(const char *word)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].run &&
            (strcmp(word, commands[i].word) == 0 ||
             (commands[i].alias && strcmp(word, commands[i].alias) == 0)))
            return &commands[i];
    return NULL;
}

static void help_all(void)
{
    size_t wu = 0;

    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strlen(commands[i].usage) > wu)
            wu = strlen(commands[i].usage);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const command *c = &commands[i];
        if (c->group)
            printf("%s%s:\n", i ? "\n" : "", c->group);
        printf("  %-*s  %s\n  %-*s    e.g. %s\n", (int)wu, c->usage, c->summary,
               (int)wu, "", c->example);
    }
    printf("\nShort names: s step, n next, c continue, b break, d delete,\n"
           "p print, l list, h help, q quit. An empty line repeats the last\n"
           "step, next, back or continue. Several commands can share a line,\n"
           "separated by ';'. 'help CMD' explains one command.\n");
}

static int cmd_help(session *s, int argc, char **argv)
{
    const command *c;
    const char *word;

    (void)s;
    if (argc > 2)
        return cmd_error("usage: help [CMD]");
    if (argc == 1) {
        help_all();
        return CMD_OK;
    }
    if (!(c = find_command(argv[1])))
        return cmd_error("unknown command '%s' (try 'help')", argv[1]);
    word = c->word;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        c = &commands[i];
        if (strcmp(c->word, word) != 0)
            continue;
        printf("%s\n  %s\n  e.g. %s\n", c->usage, c->summary, c->example);
        if (c->detail) {
            const char *p = c->detail;
            while (*p) {
                size_t n = strcspn(p, "\n");
                printf("  %.*s\n", (int)n, p);
                p += n + (p[n] == '\n');
            }
        }
        if (c->alias)
            printf("  Short name: %s\n", c->alias);
    }
    return CMD_OK;
}

static int cmd_info(session *s, int argc, char **argv)
{
    if (argc != 2)
        return cmd_error("usage: info breakpoints | info violations");
    if (strcmp(argv[1], "breakpoints") == 0 || strcmp(argv[1], "break") == 0 ||
        strcmp(argv[1], "b") == 0)
        return info_breakpoints(s);
    if (strcmp(argv[1], "violations") == 0)
        return info_violations(s);
    return cmd_error("unknown info '%s' (breakpoints, violations)", argv[1]);
}

static int cmd_quit(session *s, int argc, char **argv)
{
    (void)s;
    if (argc > 1)
        return cmd_error("%s takes no argument", argv[0]);
    return CMD_QUIT;
}

/* ------------------------------------------------------------------ */
/* Splitting input                                                    */
/* ------------------------------------------------------------------ */

/*
 * Splits one command into words: blanks separate them; "..." and '...'
 * group; a backslash outside single quotes takes the next character as
 * is. Returns the word count (argv is a heap array of heap strings,
 * NULL-terminated), or -1 for an unterminated quote.
 */
static int split_words(const char *p, char ***out)
{
    char **argv = NULL, *w;
    size_t argc = 0, cap = 0, n;
    int quote;

    w = xmalloc(strlen(p) + 1);
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (!*p)
            break;
        n = 0;
        quote = 0;
        while (*p && (quote ||
                      (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n'))) {
            if (quote && *p == quote) {
                quote = 0;
            } else if (!quote && (*p == '"' || *p == '\'')) {
                quote = *p;
            } else if (*p == '\\' && quote != '\'' && p[1]) {
                w[n++] = *++p;
            } else {
                w[n++] = *p;
            }
            p++;
        }
        if (quote) {
            for (size_t i = 0; i < argc; i++)
                free(argv[i]);
            free(argv);
            free(w);
            return -1;
        }
        grow((void **)&argv, &cap, argc + 1, sizeof(*argv));
        argv[argc++] = xstrndup(w, n);
    }
    grow((void **)&argv, &cap, argc, sizeof(*argv));
    argv[argc] = NULL;
    free(w);
    *out = argv;
    return (int)argc;
}

/* Length of the next command of a line: up to an unquoted ';' or the
 * end. */
static size_t command_len(const char *p)
{
    size_t i = 0;
    int quote = 0;

    for (; p[i]; i++) {
        if (quote) {
            if (p[i] == quote)
                quote = 0;
            else if (p[i] == '\\' && quote == '"' && p[i + 1])
                i++;
        } else if (p[i] == '"' || p[i] == '\'') {
            quote = p[i];
        } else if (p[i] == '\\' && p[i + 1]) {
            i++;
        } else if (p[i] == ';') {
            break;
        }
    }
    return i;
}

/* ------------------------------------------------------------------ */
/* Running commands                                                   */
/* ------------------------------------------------------------------ */

typedef struct runner {
    session *s;
    int script; /* errors make the exit status 1 */
    int batch;  /* stop at the first error */
    int errors;
    int stop;        /* quit, or an error in batch mode */
    char *last_move; /* what an empty line repeats */
} runner;

static void run_command(runner *u, const char *text, size_t len)
{
    char *cmd = xstrndup(text, len), **argv;
    const command *c;
    int argc, rc;

    argc = split_words(cmd, &argv);
    if (argc < 0) {
        rc = cmd_error("unterminated quote");
        goto done;
    }
    if (argc == 0 || argv[0][0] == '#') {
        rc = CMD_OK;
        goto free_words;
    }
    if (!(c = find_command(argv[0]))) {
        rc = cmd_error("unknown command '%s' (try 'help')", argv[0]);
        goto free_words;
    }
    rc = c->run(u->s, argc, argv);
    if (c->moves) {
        free(u->last_move);
        u->last_move = xstrdup(cmd);
    }
free_words:
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
done:
    free(cmd);
    if (rc == CMD_QUIT)
        u->stop = 1;
    if (rc == CMD_ERROR) {
        u->errors++;
        if (u->batch)
            u->stop = 1;
    }
}

/* Runs one line: its commands, separated by ';'. A blank line repeats the
 * last move when `repeat` is set. */
static void run_line(runner *u, const char *line, int repeat)
{
    const char *p = line;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '\n' || *p == '\r') {
        if (repeat && u->last_move) {
            char *m = xstrdup(u->last_move);
            run_command(u, m, strlen(m));
            free(m);
        }
        return;
    }
    if (*p == '#')
        return;
    while (!u->stop) {
        size_t n = command_len(p);
        run_command(u, p, n);
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
}

/* Runs a script: lines separated by newlines. */
static void run_text(runner *u, const char *text)
{
    const char *p = text;

    while (!u->stop && *p) {
        size_t n = strcspn(p, "\n");
        char *line = xstrndup(p, n);
        run_line(u, line, 0);
        free(line);
        p += n + (p[n] == '\n');
    }
}

static int run_file(runner *u, const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0, k;

    if (!f) {
        cmd_error("cannot open script %s: %s", path, strerror(errno));
        u->errors++;
        if (u->batch)
            u->stop = 1;
        return -1;
    }
    do {
        grow((void **)&text, &cap, len + 4096, 1);
        k = fread(text + len, 1, cap - len - 1, f);
        len += k;
    } while (k > 0);
    text[len] = '\0';
    fclose(f);
    run_text(u, text);
    free(text);
    return 0;
}

/* Commands from a stream that is not a terminal, read as they come. */
static void run_stream(runner *u, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    while (!u->stop && (n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[n - 1] = '\0';
        run_line(u, line, 1);
        fflush(stdout);
    }
    free(line);
}

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

#ifdef EVREPLAY_LIBEDIT
#define EDITING ", line editing and history"
#else
#define EDITING " (this build has no line editing)"

/* Built without libedit: a plain prompt, without line editing or
 * history. A ^C (its handler does not restart the read) drops the line
 * as readline's does. */
static char *readline(const char *prompt)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    fputs(prompt, stdout);
    fflush(stdout);
    n = getline(&line, &cap, stdin);
    if (n < 0) {
        clearerr(stdin);
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

static void using_history(void)
{
}

static void add_history(const char *line)
{
    (void)line;
}
#endif

static void run_interactive(runner *u)
{
    const session *s = u->s;
    char prompt[96], *line;

    printf("evreplay: execution %s: %zu events", s->exec_id, s->n);
    if (s->nviol)
        printf(", %zu history violation%s (info violations)", s->nviol,
               s->nviol == 1 ? "" : "s");
    printf("\nType 'help' for the commands, 'quit' to leave.\n");
    using_history();
    while (!u->stop) {
        snprintf(prompt, sizeof(prompt), "(evreplay %" PRIu64 "/%zu) ", s->pos,
                 s->n);
        fflush(stdout);
        g_interrupted = 0;
        line = readline(prompt);
        if (!line && g_interrupted) {
            putchar('\n'); /* ^C drops the line, as in a shell */
            continue;
        }
        if (!line) {
            putchar('\n'); /* end of input (^D) */
            break;
        }
        if (line[strspn(line, " \t")] != '\0')
            add_history(line);
        run_line(u, line, 1);
        free(line);
    }
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static const char usage_text[] =
    "Usage: evreplay STORE EXEC [-c CMDS]... [-x FILE]... [--batch]\n"
    "                [--checkpoint-every N] [--checkpoint-budget BYTES]\n"
    "                [--allow-unsafe-perms] [--log-format FMT]\n"
    "                [--log-level LVL]\n"
    "       evreplay BUNDLE [OPTIONS]\n"
    "\n"
    "Steps through the history of execution EXEC of the evstore store\n"
    "STORE, as gdb steps through a program: move forward and back over its\n"
    "events, stop at breakpoints, and look at the replayed state (paths,\n"
    "steps, variables, signals, timers, waits, versions) at any point.\n"
    "The store is only read. Given a bundle (a file written by evdump\n"
    "archive), steps through the history it holds, which is checked whole\n"
    "first.\n"
    "\n"
    "The history is replayed tolerantly: an event that breaks a history\n"
    "rule is applied as far as it makes sense and the violation is shown\n"
    "when a move passes it. A damaged log is read up to the damage, with a\n"
    "warning.\n"
    "\n"
    "Options:\n"
    "  -c, --command CMDS   run CMDS (separated by ';' or newlines); may be\n"
    "                       repeated\n"
    "  -x, --script FILE    run the commands in FILE; may be repeated\n"
    "  --batch              never prompt: read commands from stdin even if\n"
    "                       it is a terminal (unless -c or -x is given), and\n"
    "                       stop at the first command that fails\n"
    "  --checkpoint-every N keep the state at most every N events (default\n"
    "                       1000; 0: never), and less often while it is big\n"
    "                       next to the events since the last one kept, so\n"
    "                       loading stays linear; back and goto replay from\n"
    "                       the nearest state kept\n"
    "  --checkpoint-budget BYTES\n"
    "                       at most this much memory for kept states\n"
    "                       (default 64 MiB); past it, every other one is\n"
    "                       dropped and the interval doubles\n"
    "  --allow-unsafe-perms open STORE even if group or others may write\n"
    "                       to it (refused otherwise, exit 3)\n"
    "  --log-format FMT     how the library's log records are written to\n"
    "                       stderr: text (default), logfmt or json\n"
    "  --log-level LVL      error, warn (default), info or debug\n"
    "  -h, --help           show this help\n"
    "  --version            show the version\n"
    "\n"
    "Where commands come from: -c and -x run in the order given, then\n"
    "evreplay exits. Without them, commands are read from stdin: with a\n"
    "prompt \"(evreplay SEQ/LAST) \"" EDITING "\n"
    "when stdin is a terminal, as a script otherwise. An empty line\n"
    "repeats the last step, next, back or continue (except in -c and -x\n"
    "scripts, where empty lines are skipped). Lines starting with '#' are\n"
    "comments. Words are separated by blanks; a word that holds blanks or\n"
    "';' can be quoted with \"...\" or '...'.\n"
    "\n"
    "A command that fails prints one line \"error: ...\" on stderr. In a\n"
    "script (-c, -x or stdin that is not a terminal) the remaining commands\n"
    "still run, unless --batch is given, and the exit status is 1.\n"
    "\n"
    "Exit status:\n"
    "  0  every command succeeded (always, after an interactive session)\n"
    "  1  a command failed in a script\n"
    "  2  usage error\n"
    "  3  the store or the execution cannot be opened, or a fatal error\n";

enum {
    OPT_BATCH = 256,
    OPT_CKPT,
    OPT_BUDGET,
    OPT_VERSION,
    OPT_UNSAFE,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL
};

typedef struct source {
    int file; /* 0: -c text, 1: -x file */
    const char *arg;
} source;

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"command", required_argument, NULL, 'c'},
        {"script", required_argument, NULL, 'x'},
        {"batch", no_argument, NULL, OPT_BATCH},
        {"checkpoint-every", required_argument, NULL, OPT_CKPT},
        {"checkpoint-budget", required_argument, NULL, OPT_BUDGET},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"allow-unsafe-perms", no_argument, NULL, OPT_UNSAFE},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {NULL, 0, NULL, 0},
    };
    source *src = NULL;
    size_t nsrc = 0, src_cap = 0;
    uint64_t ck_every = CK_EVERY_DEFAULT;
    size_t ck_budget = CK_BUDGET;
    int batch = 0, c, status, interactive;
    evs_store *st = NULL;
    evs_bundle *b = NULL;
    char bid[EVS_ID_MAX + 1];
    session s;
    runner u;

    tool_name = "evreplay";
    (void)tool_log_option("--log-format", "text"); /* sets the prefix */
    out_to(stdout, "stdout");
    opterr = 0;
    while ((c = next_opt(NULL, argc, argv, "c:x:", longopts)) != -1) {
        switch (c) {
        case 'c':
        case 'x':
            grow((void **)&src, &src_cap, nsrc, sizeof(*src));
            src[nsrc].file = c == 'x';
            src[nsrc++].arg = optarg;
            break;
        case OPT_BATCH: batch = 1; break;
        case OPT_UNSAFE: tool_allow_unsafe = 1; break;
        case OPT_LOG_FORMAT:
        case OPT_LOG_LEVEL:
            if ((status = tool_log_option(c == OPT_LOG_FORMAT ? "--log-format"
                                                               : "--log-level",
                                          optarg)) != 0)
                goto usage;
            break;
        case OPT_CKPT:
            if ((status = parse_num(NULL, "--checkpoint-every", optarg, 0,
                                    UINT64_MAX, &ck_every)) != 0)
                goto usage;
            break;
        case OPT_BUDGET: {
            uint64_t v;
            if ((status = parse_num(NULL, "--checkpoint-budget", optarg, 0,
                                    SIZE_MAX, &v)) != 0)
                goto usage;
            ck_budget = (size_t)v;
            break;
        }
        case 'h':
            printf("%s\nCommands (the same list as 'help' at the prompt):\n\n",
                   usage_text);
            help_all();
            free(src);
            return EXIT_OKAY;
        case OPT_VERSION:
            print_version();
            free(src);
            return out_finish(EXIT_OKAY);
        default: status = -c; goto usage;
        }
    }
    if (argc - optind == 1 && is_bundle_path(argv[optind])) {
        /* A bundle (evdump archive): its history, from memory. */
        if (open_bundle(argv[optind], &b) != 0) {
            free(src);
            return EXIT_OPEN;
        }
        snprintf(bid, sizeof(bid), "%.*s",
                 (int)evs_bundle_info(b)->execution_id.len,
                 evs_bundle_info(b)->execution_id.ptr);
    } else {
        if ((status = positionals(NULL, argc, argv, 2, 2, "STORE EXEC")) != 0)
            goto usage;
        if ((status = open_store(argv[optind], &st)) != 0) {
            free(src);
            return EXIT_OPEN;
        }
    }
    if ((status = session_load(&s, st, b, b ? bid : argv[optind + 1],
                               ck_every, ck_budget, argv[optind])) != 0) {
        session_free(&s);
        evs_bundle_close(b);
        evs_store_close(st);
        free(src);
        return status;
    }

    memset(&u, 0, sizeof(u));
    u.s = &s;
    u.batch = batch;
    interactive = nsrc == 0 && !batch && isatty(STDIN_FILENO);
    u.script = !interactive;
    if (interactive) {
        /* ^C stops a long move or drops the line being typed; in a
         * script it ends evreplay as usual. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        run_interactive(&u);
    } else if (nsrc == 0) {
        run_stream(&u, stdin);
    } else {
        for (size_t i = 0; i < nsrc && !u.stop; i++) {
            if (src[i].file)
                run_file(&u, src[i].arg);
            else
                run_text(&u, src[i].arg);
        }
    }
    fflush(stdout);
    status = u.script && u.errors ? EXIT_FAILED : EXIT_OKAY;
    free(u.last_move);
    free(src);
    session_free(&s);
    evs_bundle_close(b);
    evs_store_close(st);
    return status;

usage:
    free(src);
    return status;
}
