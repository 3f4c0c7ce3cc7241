/*
 * agent_loop.c: a tool-using agent as a durable function: the README's
 * "Durable functions", whole (include/evstore/run.h is the reference).
 *
 * Each turn the "model" is asked, inside a step, which tools to call;
 * each tool ("search", "fetch", "calc") runs inside a step of its own.
 * When the model asks for no more tools, the run waits for a human's
 * "approval" event, then completes with the answer. The model is a
 * stand-in: scripted replies by turn, no network.
 *
 * Killed at any moment and started again with the same RUN_ID, the
 * program replays the run's history: the steps that completed give back
 * their recorded outputs without running again, a step that was running
 * when the process died runs again with the same idempotency key, and
 * the code goes on live from there. A run that has completed is only
 * reported.
 *
 * The part between the README markers is the README's snippet, byte for
 * byte (scripts/check-readme compares them); it needs only <evstore.h>.
 * The tool log around it uses POSIX.
 *
 * Usage: agent_loop STORE RUN_ID [--tool-log FILE]
 * Exits 0 once the run has completed (now or before), 1 on an error,
 * 2 on a usage error. With --tool-log, each step body first appends
 * "START <idempotency key> <attempt>" to FILE, synced, and the program
 * appends "DONE <key>", synced, once a step it ran has completed
 * durably: so no START of a key may ever follow its DONE
 * (tests/run/test_run_kill.c checks it, killing the program at random).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The tool log: NULL without --tool-log. */
static const char *tool_log;

/* Appends a line to the tool log and syncs it. Returns 0, or -errno
 * after saying why on stderr. */
static int note(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int fd, n, rc = 0;

    if (!tool_log)
        return 0;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fd = open(tool_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || n < 0 || (size_t)n >= sizeof(line) ||
        write(fd, line, (size_t)n) != n || fsync(fd) != 0)
        rc = errno ? -errno : -EIO;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        fprintf(stderr, "agent_loop: %s: %s\n", tool_log, strerror(-rc));
    return rc;
}

/* The work of a step body: a few milliseconds, so that kills land in
 * it. */
static void work_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* README: agent_loop: begin */
#include <evstore.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Defined above: note() appends a line to the tool log (--tool-log) and
 * syncs it; work_ms() sleeps, standing in for a body's work. */
static int note(const char *fmt, ...);
static void work_ms(long ms);

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The run's inputs: what the user asked. */
static const char inputs[] = "{\"question\":\"How do runs survive?\"}";

/* What the stand-in model answers at each turn: the tools to call. A
 * real model answers differently from one call to the next, which is why
 * it runs in a step: a re-run gets the recorded reply, and the code acts
 * on that reply alone. */
static const char *const script[] = {"search", "fetch calc", "search", ""};

/* A step body gives its output as JSON (evs_run_step_output). */
static int model(void *arg, evs_run *r, const char *prompt)
{
    size_t turn = *(const size_t *)arg, last = COUNT(script) - 1;
    char out[64];

    (void)prompt; /* the turn and the last tool results, as JSON */
    work_ms(10);
    snprintf(out, sizeof(out), "\"%s\"", script[turn < last ? turn : last]);
    return evs_run_step_output(r, out);
}

/* The tools, and what each finds. "fetch" fails its first attempt, as a
 * flaky network does; its retry policy tries again after a durable
 * backoff. */
static const struct tool {
    const char *name, *result, *options;
} tools[] = {
    {"search", "[\"Durable functions, 2019\"]", NULL},
    {"fetch", "\"(the paper)\"",
     "{\"retry\":{\"max_attempts\":3,\"initial_interval_ms\":20}}"},
    {"calc", "42", NULL},
};

/* A tool's body. A real tool hands evs_run_step_key(r) to what it calls:
 * the key is the same when the step runs again after a crash, so the
 * other side can tell a repeat. */
static int tool(void *arg, evs_run *r, const char *input)
{
    const struct tool *t = arg;
    char out[256];

    (void)input;
    work_ms(20);
    if (strcmp(t->name, "fetch") == 0 && evs_run_step_attempt(r) == 1) {
        evs_run_step_error(r, "unavailable", "no answer", 1);
        return -1; /* a failure, as the error above says */
    }
    snprintf(out, sizeof(out), "{\"tool\":\"%s\",\"result\":%s}", t->name,
             t->result);
    return evs_run_step_output(r, out);
}

/* evs_run_step with the tool log: a body that runs here notes "START
 * key attempt" first, and a step it ran notes "DONE key" once its
 * completion is durable, i.e. once evs_run_step returned 0. */
struct logged {
    evs_step_fn fn;
    const void *arg;
    char key[256]; /* set when the body ran here */
};

static int logged_body(void *arg, evs_run *r, const char *input)
{
    struct logged *l = arg;

    snprintf(l->key, sizeof(l->key), "%s", evs_run_step_key(r));
    if (note("START %s %u\n", l->key, evs_run_step_attempt(r)) != 0) {
        evs_run_step_error(r, "tool_log", "unwritable", 0); /* for good */
        return -1;
    }
    return l->fn((void *)l->arg, r, input);
}

static int step(evs_run *r, const char *name, const char *input,
                const char *options, evs_step_fn fn, const void *arg,
                const char **out, evs_error_info *err)
{
    struct logged l = {fn, arg, ""};
    int rc = evs_run_step(r, name, input, options, logged_body, &l, out, err);

    if (rc == 0 && l.key[0])
        rc = note("DONE %s\n", l.key);
    return rc;
}

/* The run's code. Every side effect is in a step; what the code decides
 * depends only on the inputs and on the steps' outputs, so a re-run
 * takes the same path through the replayed steps. */
static int agent(evs_run *r, evs_error_info *err)
{
    char prompt[1024], results[768] = "", reply[64], *name, answer[1024];
    const char *out; /* a step's output, borrowed until the next call */
    int rc;

    for (size_t turn = 0;; turn++) {
        snprintf(prompt, sizeof(prompt), "{\"turn\":%zu,\"results\":[%s]}",
                 turn, results);
        /* "model" the first time, then "model#2", "model#3"... */
        if ((rc = step(r, "model", prompt, NULL, model, &turn, &out, err)))
            return rc;
        reply[0] = '\0';
        sscanf(out, "\"%63[a-z ]", reply);
        if (!reply[0])
            break; /* no tool asked for: the answer is ready */
        results[0] = '\0';
        for (name = strtok(reply, " "); name; name = strtok(NULL, " ")) {
            size_t i = 0, n = strlen(results);

            while (i < COUNT(tools) && strcmp(tools[i].name, name) != 0)
                i++;
            if (i == COUNT(tools))
                return -EINVAL; /* the model named an unknown tool */
            if ((rc = step(r, name, inputs, tools[i].options, tool, &tools[i],
                           &out, err)))
                return rc;
            snprintf(results + n, sizeof(results) - n, "%s%s", n ? "," : "",
                     out);
        }
        /* The model's rate limit: a durable sleep (a re-run waits only
         * for what is left of it). */
        if ((rc = evs_run_sleep(r, 20, err)) != 0)
            return rc;
    }

    /* A human approves the answer: `evrun send STORE ID approval JSON`
     * from anywhere, before or during the wait. */
    printf("%s: waiting for the approval event\n", evs_run_id(r));
    fflush(stdout);
    if ((rc = evs_run_wait_event(r, "approval", 0, err)) != 0)
        return rc;
    snprintf(answer, sizeof(answer), "{\"answer\":[%s],\"approval\":%s}",
             results, evs_run_result(r));
    return evs_run_complete(r, answer, err);
}

/* Runs the agent as run `id`: a new run, or the rest of one a crash
 * interrupted (its history replayed), or none if it has ended. */
static int run_agent(evs_store *st, const char *id, evs_error_info *err)
{
    evs_run *r = NULL;
    int rc = evs_run_open(st, id, "agent", "1", inputs, NULL, &r, err);

    if (rc == 0)
        rc = agent(r, err);
    if (rc == EVS_EFAILED) /* a step failed for good: so does the run */
        evs_run_fail(r, "step_failed", evs_run_error(r), NULL);
    else if (rc == EVS_EFINISHED && strcmp(evs_run_status(r), "completed") == 0)
        rc = 0; /* completed before: nothing runs again */
    if (rc == 0)
        printf("%s completed: %s\n", id, evs_run_output(r));
    evs_run_close(r); /* the run's lock goes; a re-run may take it */
    return rc;
}
/* README: agent_loop: end */

int main(int argc, char **argv)
{
    evs_error_info err;
    evs_store *st = NULL;
    int rc;

    if (argc == 5 && strcmp(argv[3], "--tool-log") == 0) {
        tool_log = argv[4];
    } else if (argc != 3) {
        fprintf(stderr, "usage: agent_loop STORE RUN_ID [--tool-log FILE]\n");
        return 2;
    }
    evs_error_info_clear(&err);
    if ((rc = evs_store_open(argv[1], NULL, &st)) != 0) {
        fprintf(stderr, "agent_loop: opening the store %s: %s (%s)\n", argv[1],
                evs_strerror(rc), evs_err_name(rc));
        return 1;
    }
    rc = run_agent(st, argv[2], &err);
    evs_store_close(st);
    if (rc != 0) {
        fprintf(stderr, "agent_loop: run %s: %s (%s)%s%s\n", argv[2],
                evs_strerror(rc), evs_err_name(rc), err.msg[0] ? ": " : "",
                err.msg);
        return 1;
    }
    return 0;
}
