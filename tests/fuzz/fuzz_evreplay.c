/*
 * fuzz_evreplay.c: fuzz target for evreplay's commands.
 *
 * The function that parses one command line, run_line() with
 * split_words() and command_len(), is static in tools/evreplay.c next to
 * main(), so no test can call it without building the whole tool. This
 * target fuzzes the next layer down instead, the smallest one a test can
 * call: the command functions declared in tools/evreplay.h (cmd_step,
 * cmd_break, cmd_print, ...), which parse their own words (parse_u64 and
 * the argument checks of each command) and then act on a session. The
 * input is split into commands at newlines and ';', and into words at
 * blanks and NUL bytes (no quoting); the first word picks the command by
 * its name or short name, as evreplay's table does.
 *
 * The session is a history with branches, a retry, a signal, a timer, a
 * wait, a version decision and a broken rule, loaded afresh for every
 * input (so an input's outcome never depends on the one before), with a
 * checkpoint every 4 events so that back and goto go through them. A
 * command must return CMD_OK, CMD_ERROR or CMD_QUIT, never crash, and
 * leave the position within the history.
 */
#include "fuzz.h"

#include "evreplay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC "fz"
#define MAX_CMDS 64
#define MAX_WORDS 32

static char *root;
static evs_store *store;

typedef struct spec {
    const char *type, *path, *step, *data;
} spec;

static const spec history[] = {
    {"execution_started", "main", "",
     "{\"workflow_name\":\"fuzz\",\"inputs\":{\"topic\":\"cats\"}}"},
    {"version_decision", "main", "plan",
     "{\"change_id\":\"new-prompt\",\"version\":2,\"min\":1,\"max\":3}"},
    {"step_started", "main", "plan", "{\"attempt\":1}"},
    {"step_failed", "main", "plan",
     "{\"error\":{\"type\":\"Timeout\",\"message\":\"slow\","
     "\"retryable\":true}}"},
    {"retry_scheduled", "main", "plan", "{\"delay_ms\":1000,\"attempt\":2}"},
    {"step_started", "main", "plan", "{\"attempt\":2}"},
    {"step_completed", "main", "plan",
     "{\"output\":[1,2],\"stored_variable\":\"plan\"}"},
    {"path_branched", "main", "plan",
     "{\"new_paths\":[{\"id\":\"left\",\"current_step\":\"a\"},"
     "{\"id\":\"right\",\"current_step\":\"b\"}]}"},
    {"path_started", "left", "",
     "{\"parent\":\"main\",\"current_step\":\"a\"}"},
    {"path_started", "right", "",
     "{\"parent\":\"main\",\"current_step\":\"b\"}"},
    {"step_started", "left", "a", "{\"attempt\":1}"},
    {"step_started", "right", "b", "{\"attempt\":1}"},
    {"step_completed", "right", "b", "{\"output\":\"R\"}"},
    {"step_completed", "left", "ghost", "{\"output\":1}"},
    {"step_completed", "left", "a", "{\"output\":\"L\\u0007\\n\"}"},
    {"path_completed", "left", "", "{}"},
    {"path_completed", "right", "", "{}"},
    {"step_started", "main", "approve", "{\"attempt\":1,\"kind\":\"wait\"}"},
    {"wait_started", "main", "approve",
     "{\"signal\":\"approval\",\"timeout_at\":\"2030-01-01T00:00:00Z\"}"},
    {"timer_started", "main", "approve",
     "{\"timer_id\":\"t-approve\",\"fire_at\":\"2030-01-01T00:00:00Z\"}"},
    {"signal_received", "main", "approve",
     "{\"signal\":\"approval\",\"payload\":{\"by\":\"ann\"}}"},
    {"wait_ended", "main", "approve", "{\"signal_seq\":21}"},
    {"timer_cancelled", "main", "approve", "{\"timer_id\":\"t-approve\"}"},
    {"step_completed", "main", "approve",
     "{\"output\":{\"by\":\"ann\"},\"stored_variable\":\"approval\"}"},
    {"path_completed", "main", "", "{}"},
    {"execution_completed", "main", "", "{\"outputs\":{\"ok\":true}}"},
};

#define N_HISTORY (sizeof(history) / sizeof(history[0]))

static void setup(void)
{
    evs_event ev[N_HISTORY];
    evs_store_opts o;
    int rc;

    if (store)
        return;
#ifdef EVS_FUZZING
    atexit(fuzz_evreplay_done);
#endif
    root = tu_tmpdir("fuzz-evreplay");
    FUZZ_CHECK(root != NULL, "cannot make a temporary store");
    evs_store_opts_init(&o);
    o.durability = EVS_SYNC_NONE;
    o.io = fuzz_io_nosync();
    FUZZ_CHECK(evs_store_open(root, &o, &store) == 0, "cannot open store");
    memset(ev, 0, sizeof(ev));
    for (size_t i = 0; i < N_HISTORY; i++) {
        ev[i].event_type = evs_span_cstr(history[i].type);
        ev[i].path_id = evs_span_cstr(history[i].path);
        ev[i].step_name = evs_span_cstr(history[i].step);
        ev[i].data = evs_span_cstr(history[i].data);
        ev[i].timestamp_us = 1795000000000000 + (int64_t)i * 1500000;
    }
    rc = evs_exec_create(store, EXEC, strlen(EXEC), NULL, ev, N_HISTORY);
    FUZZ_CHECK(rc == 0, "cannot record the history");
}

void fuzz_evreplay_done(void)
{
    evs_store_close(store);
    store = NULL;
    tu_rmtree_free(root);
    root = NULL;
}

/* `info` is static in evreplay.c; this is its dispatch. */
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

typedef struct command {
    const char *word, *alias;
    int (*run)(session *s, int argc, char **argv);
} command;

/* The commands of evreplay's table that evreplay.h exposes. */
static const command commands[] = {
    {"step", "s", cmd_step},         {"next", "n", cmd_next},
    {"back", NULL, cmd_back},        {"goto", NULL, cmd_goto},
    {"continue", "c", cmd_continue}, {"run", NULL, cmd_run},
    {"reset", NULL, cmd_run},        {"break", "b", cmd_break},
    {"delete", "d", cmd_delete},     {"print", "p", cmd_print},
    {"where", NULL, cmd_where},      {"list", "l", cmd_list},
    {"event", NULL, cmd_event},      {"diff", NULL, cmd_diff},
    {"search", NULL, cmd_search},    {"info", NULL, cmd_info},
};

static const command *find_command(const char *w)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(w, commands[i].word) == 0 ||
            (commands[i].alias && strcmp(w, commands[i].alias) == 0))
            return &commands[i];
    return NULL;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\0';
}

/* Runs the command text[0..len): splits it into words in place. */
static int run_one(session *s, char *text, size_t len)
{
    char *argv[MAX_WORDS + 1];
    const command *c;
    size_t i = 0;
    int argc = 0, rc;

    while (i < len && argc < MAX_WORDS) {
        while (i < len && is_blank(text[i]))
            i++;
        if (i == len)
            break;
        argv[argc++] = text + i;
        while (i < len && !is_blank(text[i]))
            i++;
        if (i < len)
            text[i++] = '\0';
    }
    argv[argc] = NULL;
    if (argc == 0 || !(c = find_command(argv[0])))
        return 0;
    rc = c->run(s, argc, argv);
    FUZZ_CHECK(rc == CMD_OK || rc == CMD_ERROR || rc == CMD_QUIT,
               "a command returned an unknown status");
    FUZZ_CHECK(s->pos <= s->n, "a command moved past the history");
    return rc == CMD_QUIT;
}

FUZZ_ENTRY(evreplay)
{
    session s;
    char *buf;
    size_t i = 0, ncmd = 0;
    int rc;

    setup();
    /* Room for a NUL after the last word. */
    buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, data, size);
    buf[size] = '\0';

    fuzz_quiet();
    rc = session_load(&s, store, NULL, EXEC, 4, (size_t)64 << 10, "fuzz");
    fuzz_unquiet();
    FUZZ_CHECK(rc == 0 && s.n == N_HISTORY, "cannot load the history");
    fuzz_quiet();
    while (i < size && ncmd++ < MAX_CMDS) {
        size_t n = 0;
        while (i + n < size && buf[i + n] != '\n' && buf[i + n] != ';')
            n++;
        buf[i + n] = '\0';
        if (run_one(&s, buf + i, n))
            break;
        i += n + 1;
    }
    fuzz_unquiet();
    session_free(&s);
    free(buf);
    return 0;
}
