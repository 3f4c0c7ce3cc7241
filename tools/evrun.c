/*
 * evrun.c: runs workflow definitions from the command line.
 *
 * start and resume run one execution in the foreground until it
 * completes, fails or suspends; serve is a long-lived runner that takes
 * every unfinished execution no other runner owns; send, pause, unpause
 * and terminate hand a request to whichever runner owns the execution
 * (through its inbox), and status reads its state from the log.
 */
#include "evstore.h"
#include "evstore/orchestrator.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit statuses (also in --help and the README). */
enum {
    EX_COMPLETED = 0,
    EX_FAILED = 1,      /* failed or terminated; a request refused */
    EX_USAGE = 2,
    EX_ERROR = 3,
    EX_SUSPENDED = 4    /* waits for an event, or paused */
};

static const char usage_text[] =
    "usage: evrun COMMAND STORE ...\n"
    "\n"
    "  evrun start STORE DEF.json [--input JSON|@FILE] [--id ID]\n"
    "              [--detach] [--sync full|batch|none]\n"
    "      Creates an execution of the workflow in DEF.json and runs it in\n"
    "      the foreground until it completes, fails or suspends (it waits\n"
    "      for an event, or is paused). Sleeps and retry backoffs are\n"
    "      waited out. A wait for an event suspends, unless its timeout\n"
    "      is due by then: the timeout fires and fails the step. A timeout\n"
    "      still to come is recorded; the runner that resumes the\n"
    "      execution fires it once due (at once if it passed meanwhile).\n"
    "      With --detach it is only created, for a runner (evrun serve)\n"
    "      to take. Prints \"ID OUTCOME\", then the outputs (completed) or\n"
    "      the error (failed) as JSON. An execution that continues as new\n"
    "      goes on in its successor, and ID is the last of the chain.\n"
    "  evrun resume STORE EXEC [--definition NEW.json] [--sync MODE]\n"
    "      Takes over an unfinished execution (replays it, re-arms its\n"
    "      timers, fires those already due, re-runs what was started and\n"
    "      never finished) and runs it as start does; an execution that\n"
    "      has ended reports how. For one that continued as new, the last\n"
    "      of its chain is taken (or reports how the chain ended). With\n"
    "      --definition it goes on under NEW.json, if NEW.json is\n"
    "      compatible with its history: every step it ran is unchanged or\n"
    "      its change is gated by a version step, and every version it\n"
    "      decided lies in the range of NEW.json's version step for that\n"
    "      change (formats/WORKFLOWS.md 2.7.1). Each difference is named;\n"
    "      if one refuses it, exit 1.\n"
    "  evrun check STORE DEF.json\n"
    "      Makes the check of resume --definition on every unfinished\n"
    "      execution of the workflow DEF.json defines, without running\n"
    "      anything, and names each difference and refusal (exit 1 if\n"
    "      any execution would be refused).\n"
    "  evrun retry STORE EXEC --strategy S [--inputs JSON|@FILE]\n"
    "              [--from-step NAME] [--output JSON|@FILE] [--from-seq N]\n"
    "              [--id NEWID] [--detach]\n"
    "      Creates a successor of an execution that has ended, linked to it,\n"
    "      and runs it as resume does (not with --detach). Strategies:\n"
    "      from_start; from_failure (completed steps are not run again);\n"
    "      with_new_inputs --inputs J [--from-step NAME] (reuses the steps\n"
    "      before NAME); skip_failed [--output J] (the failed step gets J,\n"
    "      default null); from_seq --from-seq N (keeps events 1..N).\n"
    "  evrun serve STORE [--grace MS] [--adopt MS] [--sync MODE]\n"
    "      Runs every unfinished execution no other runner owns, and looks\n"
    "      for new ones every --adopt milliseconds (default 1000). Stops on\n"
    "      SIGINT or SIGTERM: no new steps start, actions in flight get\n"
    "      --grace milliseconds (default 10000) to finish, everything is\n"
    "      flushed, then it exits 0.\n"
    "  evrun send STORE EXEC TYPE [JSON]\n"
    "      Sends an event of TYPE with payload JSON (default null).\n"
    "  evrun pause STORE EXEC [REASON]\n"
    "  evrun unpause STORE EXEC\n"
    "  evrun terminate STORE EXEC [REASON]\n"
    "      Requests are durable when the command returns; the runner that\n"
    "      owns the execution, or the next one, records them. A request to\n"
    "      an execution that continued as new goes along its chain to the\n"
    "      last one, and is refused (exit 1) only if that one has ended.\n"
    "  evrun status STORE EXEC [--json]\n"
    "      Shows the status, as the log has it now.\n"
    "\n"
    "Built-in actions: echo (output = input), fail ({\"times\":N,\n"
    "\"fatal\":bool}: fails the first N attempts), sleep ({\"ms\":N}).\n"
    "An action \"exec:PROGRAM ARGS...\" (split on blanks), or\n"
    "\"exec\": [\"PROGRAM\", \"ARG\", ...] (each argument as written), runs\n"
    "PROGRAM: a relative path from the working directory, a bare name\n"
    "from PATH (see orchestrator/README.md for its stdin and stdout).\n"
    "\n"
    "Every command takes --allow-unsafe-perms: open a store directory\n"
    "that group or others may write to, which is refused otherwise.\n"
    "\n";

/* Apart, as one string would outgrow what C11 promises to hold. */
static const char exit_text[] =
    "Exit status (as evdump's and evreplay's):\n"
    "  0  completed (or request accepted)\n"
    "  1  failed or terminated; a request refused (the execution has\n"
    "     ended); check found an execution the definition would break\n"
    "  2  usage error: unknown command or option, a missing or malformed\n"
    "     argument (only then is --help suggested)\n"
    "  3  any other error: a definition, inputs or retry refused, store\n"
    "     or execution not found, I/O error\n"
    "  4  suspended: it waits for an event, or is paused\n";

static int g_outcome = -1;
static evs_store *g_store;
static int g_outcome_err;
static char g_exec[EVS_ID_MAX + 1];
static int g_allow_unsafe; /* --allow-unsafe-perms */

static int usage(const char *fmt, ...)
{
    va_list ap;

    fputs("evrun: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(evrun --help for usage)\n", stderr);
    return EX_USAGE;
}

static int fail(int rc, const char *fmt, ...)
{
    va_list ap;

    fputs("evrun: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (rc)
        fprintf(stderr, ": %s (%s)", evs_strerror(rc), evs_err_name(rc));
    fputc('\n', stderr);
    return EX_ERROR;
}

/* Reports that `what` failed on execution `id` with rc. When opening
 * the execution's log fails too, the library's detail says more than the
 * code (which file was refused, and why), and is shown instead. */
static int fail_exec(int rc, evs_store *s, const char *id, const char *what)
{
    evs_error_info info;
    evs_log *l = NULL;
    int orc;

    orc = evs_log_open(s, id, strlen(id), 0, &l, NULL, &info);
    evs_log_close(l);
    if (orc == rc && info.msg[0])
        return fail(0, "%s %s: %s (%s)", what, id, info.msg,
                    evs_err_name(rc));
    return fail(rc, "%s %s", what, id);
}

static void log_cb(void *ctx, evs_log_level lvl, const char *msg)
{
    (void)ctx;
    if (lvl <= EVS_LOG_WARN)
        fprintf(stderr, "evrun: %s\n", msg);
}

/* Reads a whole file (or stdin for "-"). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (!f)
        return NULL;
    do {
        if (n == cap) {
            char *nb = realloc(buf, cap ? cap * 2 : 65536);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

static int parse_sync(const char *v, evs_durability *d)
{
    if (strcmp(v, "full") == 0)
        *d = EVS_SYNC_FULL;
    else if (strcmp(v, "batch") == 0)
        *d = EVS_SYNC_BATCH;
    else if (strcmp(v, "none") == 0)
        *d = EVS_SYNC_NONE;
    else
        return -1;
    return 0;
}

static int open_store(const char *path, evs_durability d, int create,
                      evs_store **s)
{
    evs_store_opts so;
    int rc;

    evs_store_opts_init(&so);
    so.durability = d;
    so.create = create;
    so.log_fn = log_cb;
    so.allow_unsafe_perms = g_allow_unsafe;
    rc = evs_store_open(path, &so, s);
    if (rc == EVS_EUNSAFE)
        return fail(0, "refusing store %s: group or others may write to "
                       "it (--allow-unsafe-perms opens it anyway)", path);
    if (rc != 0)
        return fail(rc, "cannot open store %s", path);
    g_store = *s;
    return 0;
}

/* evrun reads only what a run can still use (status, outputs, live
 * paths, pending waits and timers, the definition check): a compact
 * replay starts from the orchestrator's snapshot instead of sequence 1. */
static int replay_new(evs_replay **rp)
{
    evs_replay_opts o;

    evs_replay_opts_init(&o);
    o.compact = 1;
    return evs_replay_new(&o, rp);
}

/* ---------------------------------------------------------------- */
/* Running                                                          */
/* ---------------------------------------------------------------- */

static evs_orch *g_orch;
static uint32_t g_grace_ms = 10000;

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    evs_replay *rp = NULL;
    evs_violation v;

    (void)arg;
    if (g_exec[0] && strcmp(id, g_exec) != 0)
        return;
    g_outcome = (int)oc;
    g_outcome_err = err;
    /* A service that continued as new goes on in its successor, which
     * the orchestrator resumes: follow it. */
    if (oc == EVS_OUTCOME_CONTINUED && g_store &&
        replay_new(&rp) == 0 &&
        evs_replay_open(rp, g_store, id, strlen(id), 0, NULL, &v, NULL) ==
            0) {
        evs_span next = evs_replay_exec(rp)->continued_as;
        if (next.len && next.len <= EVS_ID_MAX) {
            memcpy(g_exec, next.ptr, next.len);
            g_exec[next.len] = '\0';
            g_outcome = -1;
        }
    }
    evs_replay_free(rp);
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    evs_orch_stop(g_orch, g_grace_ms);
    uv_signal_stop(h);
}

static void signal_closed(uv_handle_t *h)
{
    (void)h;
}

/* Runs the orchestrator until it stops, with SIGINT/SIGTERM stopping it
 * gracefully. */
static int run_loop(evs_orch *o, uv_loop_t *loop)
{
    uv_signal_t si, st;
    int rc;

    g_orch = o;
    uv_signal_init(loop, &si);
    uv_signal_init(loop, &st);
    uv_signal_start(&si, on_signal, SIGINT);
    uv_signal_start(&st, on_signal, SIGTERM);
    /* The signal handles must not keep the loop alive once the
     * orchestrator has closed its own. */
    uv_unref((uv_handle_t *)&si);
    uv_unref((uv_handle_t *)&st);
    rc = evs_orch_run(o);
    uv_close((uv_handle_t *)&si, signal_closed);
    uv_close((uv_handle_t *)&st, signal_closed);
    uv_run(loop, UV_RUN_DEFAULT);
    return rc;
}

/* Prints the outcome of g_exec and maps it to an exit status. */
static int report(evs_store *s)
{
    evs_replay *rp = NULL;
    const evs_exec_state *x;
    evs_violation v;
    int rc, ex;

    switch (g_outcome) {
    case EVS_OUTCOME_COMPLETED: ex = EX_COMPLETED; break;
    case EVS_OUTCOME_FAILED:
    case EVS_OUTCOME_TERMINATED: ex = EX_FAILED; break;
    case EVS_OUTCOME_CONTINUED: ex = EX_COMPLETED; break;
    case EVS_OUTCOME_ERROR:
        return fail(g_outcome_err, "execution %s", g_exec);
    default:
        /* Stopped by a signal before it ended: as suspended. */
        g_outcome = EVS_OUTCOME_SUSPENDED;
        ex = EX_SUSPENDED;
        break;
    }
    printf("%s %s\n", g_exec, evs_outcome_name((evs_outcome)g_outcome));
    if (replay_new(&rp) == 0 &&
        (rc = evs_replay_open(rp, s, g_exec, strlen(g_exec), 0, NULL, &v,
                              NULL)) == 0) {
        x = evs_replay_exec(rp);
        if (g_outcome == EVS_OUTCOME_COMPLETED)
            printf("%.*s\n", (int)(x->outputs.len ? x->outputs.len : 4),
                   x->outputs.len ? x->outputs.ptr : "null");
        else if (x->error.len)
            printf("%.*s\n", (int)x->error.len, x->error.ptr);
    }
    evs_replay_free(rp);
    fflush(stdout);
    return ex;
}

static int cmd_start(int argc, char **argv)
{
    const char *store = NULL, *def = NULL, *input = NULL, *id = NULL;
    evs_durability d = EVS_SYNC_FULL;
    int detach = 0, ex;
    char *dbuf = NULL, *ibuf = NULL;
    size_t dlen = 0, ilen = 0;
    evs_store *s = NULL;
    evs_orch_opts oo;
    evs_wf_error we;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
            input = argv[++i];
        else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc)
            id = argv[++i];
        else if (strcmp(argv[i], "--detach") == 0)
            detach = 1;
        else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc) {
            if (parse_sync(argv[++i], &d) != 0)
                return usage("--sync takes full, batch or none");
        } else if (argv[i][0] == '-' && argv[i][1])
            return usage("start: unknown option %s", argv[i]);
        else if (!store)
            store = argv[i];
        else if (!def)
            def = argv[i];
        else
            return usage("start: too many arguments");
    }
    if (!store || !def)
        return usage("start needs STORE and DEF.json");
    /* An id given must be one: an empty --id would otherwise mean "make
     * one up". */
    if (id && !evs_id_valid(id, strlen(id)))
        return usage("start: '%s' is not a valid execution id", id);
    if (!(dbuf = slurp(def, &dlen)))
        return fail(-errno, "cannot read %s", def);
    if (input && input[0] == '@') {
        if (!(ibuf = slurp(input + 1, &ilen))) {
            free(dbuf);
            return fail(-errno, "cannot read %s", input + 1);
        }
    } else if (input) {
        ilen = strlen(input);
        ibuf = strdup(input);
    }
    if ((ex = open_store(store, d, 1, &s)) != 0)
        goto out;
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    if ((rc = evs_orch_new(s, &oo, &g_orch)) != 0) {
        ex = fail(rc, "cannot start the orchestrator");
        goto out;
    }
    rc = evs_orch_start(g_orch, (evs_span){dbuf, dlen},
                        (evs_span){ibuf, ilen}, evs_span_cstr(id), g_exec,
                        &we);
    if (rc != 0) {
        if (rc == EVS_EPARSE)
            fprintf(stderr, "evrun: %s: %s%s%s\n", def, we.step,
                    we.step[0] ? ": " : "", we.msg);
        else
            fail(rc, "cannot start an execution of %s", def);
        /* A refused definition or inputs is bad data, not bad usage. */
        ex = EX_ERROR;
        evs_orch_stop(g_orch, 0);
        evs_orch_run(g_orch);
        goto out;
    }
    if (detach) {
        /* Only the creation: stop once it is on disk. */
        evs_orch_stop(g_orch, 0);
    }
    run_loop(g_orch, evs_orch_loop(g_orch));
    if (detach) {
        ex = g_outcome == EVS_OUTCOME_ERROR
                 ? fail(g_outcome_err, "execution %s", g_exec)
                 : (printf("%s created\n", g_exec), EX_COMPLETED);
    } else {
        ex = report(s);
    }
out:
    evs_orch_free(g_orch);
    evs_store_close(s);
    free(dbuf);
    free(ibuf);
    return ex;
}

/* What the definition check found for one execution, held until its
 * verdict is known: a difference a version step gates is called allowed
 * only when nothing else refuses the definition. */
typedef struct findings {
    const char *id;
    struct {
        int code;
        char text[512];
    } *v;
    size_t n, cap;
} findings;

static int hold_finding(void *arg, const evs_def_finding *f)
{
    findings *fs = arg;

    if (fs->n == fs->cap) {
        size_t nc = fs->cap ? fs->cap * 2 : 8;
        void *nv = realloc(fs->v, nc * sizeof(*fs->v));
        if (!nv)
            return -ENOMEM;
        fs->v = nv;
        fs->cap = nc;
    }
    fs->v[fs->n].code = f->code;
    evs_def_finding_describe(f, fs->v[fs->n].text, sizeof(fs->v->text));
    fs->n++;
    return 0;
}

/* Prints the findings, refusals on stderr, and frees them; `accepted`:
 * the definition was allowed. */
static void print_findings(findings *fs, int accepted)
{
    for (size_t i = 0; i < fs->n; i++)
        if (fs->v[i].code)
            fprintf(stderr, "evrun: %s: %s\n", fs->id, fs->v[i].text);
        else
            printf("%s: %s%s\n", fs->id, fs->v[i].text,
                   accepted ? ": allowed" : "");
    free(fs->v);
    fs->v = NULL;
    fs->n = fs->cap = 0;
}

/* Takes over execution g_exec and runs it in the foreground, under
 * definition `def` when it is not empty. */
static int run_resume(evs_store *s, evs_span def)
{
    evs_orch_opts oo;
    evs_error_info info;
    findings fs = {g_exec, NULL, 0, 0};
    int rc, ex;

    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    if ((rc = evs_orch_new(s, &oo, &g_orch)) != 0)
        return fail(rc, "cannot start the orchestrator");
    rc = evs_orch_resume_with(g_orch, evs_span_cstr(g_exec), def,
                              hold_finding, &fs, &info);
    print_findings(&fs, rc == 0);
    if (rc != 0) {
        /* A refusal under a new definition was named above; one by the
         * recorded definition (a decision made from C) is named here. */
        ex = rc == EVS_ELOCKED
                 ? (fprintf(stderr, "evrun: execution %s is owned by "
                            "another runner\n", g_exec), EX_ERROR)
             : (rc == EVS_ENONDET || rc == EVS_EVERSION) && def.len
                 ? (fprintf(stderr, "evrun: %s: the new definition breaks "
                            "its history (above); not resumed (%s)\n",
                            g_exec, evs_err_name(rc)), EX_FAILED)
             : rc == EVS_EVERSION && info.code == rc
                 ? (fprintf(stderr, "evrun: cannot resume %s: %s (%s)\n",
                            g_exec, info.msg, evs_err_name(rc)), EX_FAILED)
                 : fail_exec(rc, s, g_exec, "cannot resume");
        evs_orch_stop(g_orch, 0);
    }
    run_loop(g_orch, evs_orch_loop(g_orch));
    if (rc == 0)
        ex = report(s);
    evs_orch_free(g_orch);
    g_orch = NULL;
    return ex;
}

static int cmd_resume(int argc, char **argv)
{
    const char *store = NULL, *id = NULL, *defpath = NULL;
    evs_durability d = EVS_SYNC_FULL;
    evs_store *s = NULL;
    char *dbuf = NULL;
    size_t dlen = 0;
    int ex;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--definition") == 0 && i + 1 < argc) {
            defpath = argv[++i];
        } else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc) {
            if (parse_sync(argv[++i], &d) != 0)
                return usage("--sync takes full, batch or none");
        } else if (argv[i][0] == '-' && argv[i][1])
            return usage("resume: unknown option %s", argv[i]);
        else if (!store)
            store = argv[i];
        else if (!id)
            id = argv[i];
        else
            return usage("resume: too many arguments");
    }
    if (!store || !id)
        return usage("resume needs STORE and EXEC");
    if (strlen(id) > EVS_ID_MAX)
        return usage("resume: %s is not an execution id", id);
    snprintf(g_exec, sizeof(g_exec), "%s", id);
    if (defpath && !(dbuf = slurp(defpath, &dlen)))
        return fail(-errno, "cannot read %s", defpath);
    if ((ex = open_store(store, d, 0, &s)) == 0)
        ex = run_resume(s, (evs_span){dbuf, dlen});
    evs_store_close(s);
    free(dbuf);
    return ex;
}

static int cmd_check(int argc, char **argv)
{
    evs_orch_opts oo;
    evs_orch *o = NULL;
    evs_store *s = NULL;
    evs_exec_listing l;
    evs_wf_def *def = NULL;
    evs_wf_error we;
    char *dbuf;
    size_t dlen, nbad = 0, nchecked = 0, nerr = 0;
    int ex, rc;

    if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-')
        return usage("check needs STORE and DEF.json");
    if (!(dbuf = slurp(argv[1], &dlen)))
        return fail(-errno, "cannot read %s", argv[1]);
    if ((ex = open_store(argv[0], EVS_SYNC_FULL, 0, &s)) != 0)
        goto out;
    /* Parsed as resume --definition parses it: with evrun's actions, so
     * an action it does not have is refused here too. */
    evs_orch_opts_init(&oo);
    if ((rc = evs_orch_new(s, &oo, &o)) != 0) {
        ex = fail(rc, "cannot start the orchestrator");
        goto out;
    }
    rc = evs_orch_parse(o, (evs_span){dbuf, dlen}, &def, &we);
    evs_orch_stop(o, 0);
    evs_orch_run(o);
    evs_orch_free(o);
    if (rc != 0) {
        ex = rc == EVS_EPARSE
                 ? (fprintf(stderr, "evrun: %s: %s%s%s\n", argv[1], we.step,
                            we.step[0] ? ": " : "", we.msg),
                    EX_ERROR)
                 : fail(rc, "cannot parse %s", argv[1]);
        goto out;
    }
    if ((rc = evs_exec_list(s, NULL, &l)) != 0) {
        ex = fail(rc, "cannot list %s", argv[0]);
        goto out;
    }
    for (size_t i = 0; i < l.count; i++) {
        const evs_exec_info *e = &l.items[i];
        evs_replay *rp = NULL;
        const evs_exec_state *x;
        evs_violation v;
        char id[EVS_ID_MAX + 1];

        snprintf(id, sizeof(id), "%.*s", (int)e->id.len, e->id.ptr);
        if (replay_new(&rp) != 0 ||
            evs_replay_open(rp, s, e->id.ptr, e->id.len, 0, NULL, &v,
                            NULL) != 0) {
            fprintf(stderr, "evrun: %s: cannot be replayed; skipped\n", id);
            evs_replay_free(rp);
            continue;
        }
        x = evs_replay_exec(rp);
        if (x->status < EVS_STATUS_COMPLETED &&
            x->workflow_name.len == strlen(def->name) &&
            memcmp(x->workflow_name.ptr, def->name, x->workflow_name.len) ==
                0) {
            findings fs = {id, NULL, 0, 0};

            nchecked++;
            /* The check resume --definition makes, to the letter. */
            rc = evs_orch_check_definition(rp, def, hold_finding, &fs, NULL,
                                           NULL);
            print_findings(&fs, rc == 0);
            if (rc == 0) {
                printf("%s: compatible\n", id);
            } else if (rc == EVS_ENONDET || rc == EVS_EVERSION) {
                fprintf(stderr, "evrun: %s: resume --definition would "
                        "refuse it (%s)\n", id, evs_err_name(rc));
                nbad++;
            } else {
                fail(rc, "%s: cannot be checked", id);
                nerr++;
            }
        }
        evs_replay_free(rp);
    }
    evs_exec_list_free(&l);
    printf("%zu unfinished executions of %s checked, %zu would break\n",
           nchecked, def->name, nbad);
    ex = nerr ? EX_ERROR : nbad ? EX_FAILED : EX_COMPLETED;
out:
    evs_store_close(s);
    evs_wf_free(def);
    free(dbuf);
    return ex;
}

/* Reads JSON from an argument: inline, or @FILE. *buf is owned. */
static int json_arg(const char *arg, char **buf, evs_span *out)
{
    size_t n;

    if (arg[0] == '@') {
        if (!(*buf = slurp(arg + 1, &n)))
            return -1;
        *out = (evs_span){*buf, n};
    } else {
        *out = evs_span_cstr(arg);
    }
    return 0;
}

static int cmd_retry(int argc, char **argv)
{
    const char *store = NULL, *id = NULL, *strategy = NULL;
    evs_durability d = EVS_SYNC_FULL;
    evs_retry_opts ro;
    evs_store *s = NULL;
    char *ibuf = NULL, *obuf = NULL, why[512];
    int detach = 0, ex, rc;

    evs_retry_opts_init(&ro);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--strategy") == 0 && val) {
            strategy = val;
            i++;
        } else if (strcmp(a, "--inputs") == 0 && val) {
            if (json_arg(val, &ibuf, &ro.inputs) != 0)
                return fail(-errno, "cannot read %s", val + 1);
            i++;
        } else if (strcmp(a, "--output") == 0 && val) {
            if (json_arg(val, &obuf, &ro.output) != 0)
                return fail(-errno, "cannot read %s", val + 1);
            i++;
        } else if (strcmp(a, "--from-step") == 0 && val) {
            ro.from_step = evs_span_cstr(val);
            i++;
        } else if (strcmp(a, "--from-seq") == 0 && val) {
            char *end;
            ro.from_seq = strtoull(val, &end, 10);
            if (*end || !*val || ro.from_seq == 0)
                return usage("--from-seq takes a sequence number");
            i++;
        } else if (strcmp(a, "--id") == 0 && val) {
            if (!evs_id_valid(val, strlen(val)))
                return usage("retry: --id '%s' is not a valid execution id",
                             val);
            ro.new_id = evs_span_cstr(val);
            i++;
        } else if (strcmp(a, "--detach") == 0) {
            detach = 1;
        } else if (strcmp(a, "--sync") == 0 && val) {
            if (parse_sync(val, &d) != 0)
                return usage("--sync takes full, batch or none");
            i++;
        } else if (a[0] == '-' && a[1]) {
            return usage("retry: unknown option %s", a);
        } else if (!store) {
            store = a;
        } else if (!id) {
            id = a;
        } else {
            return usage("retry: too many arguments");
        }
    }
    if (!store || !id)
        return usage("retry needs STORE and EXEC");
    if (ro.from_seq && !strategy)
        strategy = "from_seq";
    if (!strategy)
        return usage("retry needs --strategy (from_start, from_failure, "
                     "with_new_inputs, skip_failed) or --from-seq N");
    if (evs_retry_strategy_parse(strategy, &ro.strategy) != 0)
        return usage("retry: unknown strategy %s", strategy);
    if (ro.strategy == EVS_RETRY_WITH_NEW_INPUTS && !ro.inputs.len)
        return usage("with_new_inputs needs --inputs JSON");
    if (ro.strategy == EVS_RETRY_FROM_SEQ && !ro.from_seq)
        return usage("from_seq needs --from-seq N");
    if ((ro.inputs.len && ro.strategy != EVS_RETRY_WITH_NEW_INPUTS) ||
        (ro.from_step.len && ro.strategy != EVS_RETRY_WITH_NEW_INPUTS) ||
        (ro.output.len && ro.strategy != EVS_RETRY_SKIP_FAILED) ||
        (ro.from_seq && ro.strategy != EVS_RETRY_FROM_SEQ))
        return usage("retry: an option does not apply to %s", strategy);
    if ((ex = open_store(store, d, 0, &s)) != 0)
        goto out;
    rc = evs_exec_retry(s, evs_span_cstr(id), &ro, g_exec, why, sizeof(why));
    if (rc != 0) {
        ex = why[0] ? (fprintf(stderr, "evrun: retry of %s refused: %s\n",
                               id, why), EX_ERROR)
                    : fail_exec(rc, s, id, "cannot retry");
        goto out;
    }
    if (detach) {
        printf("%s created\n", g_exec);
        ex = EX_COMPLETED;
    } else {
        ex = run_resume(s, (evs_span){0});
    }
out:
    evs_store_close(s);
    free(ibuf);
    free(obuf);
    return ex;
}

static void serve_outcome(void *arg, const char *id, evs_outcome oc,
                          int err)
{
    (void)arg;
    if (oc == EVS_OUTCOME_ERROR)
        fprintf(stderr, "evrun: execution %s: given up: %s\n", id,
                evs_strerror(err));
}

static int cmd_serve(int argc, char **argv)
{
    const char *store = NULL;
    evs_durability d = EVS_SYNC_FULL;
    uint32_t adopt = 1000;
    evs_store *s = NULL;
    evs_orch_opts oo;
    int rc, ex;

    for (int i = 0; i < argc; i++) {
        char *end;
        if ((strcmp(argv[i], "--grace") == 0 ||
             strcmp(argv[i], "--adopt") == 0) && i + 1 < argc) {
            unsigned long v = strtoul(argv[i + 1], &end, 10);
            if (*end || !argv[i + 1][0] || v > 86400000UL)
                return usage("%s takes milliseconds", argv[i]);
            if (argv[i][2] == 'g')
                g_grace_ms = (uint32_t)v;
            else
                adopt = (uint32_t)(v ? v : 1);
            i++;
        } else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc) {
            if (parse_sync(argv[++i], &d) != 0)
                return usage("--sync takes full, batch or none");
        } else if (argv[i][0] == '-' && argv[i][1])
            return usage("serve: unknown option %s", argv[i]);
        else if (!store)
            store = argv[i];
        else
            return usage("serve: too many arguments");
    }
    if (!store)
        return usage("serve needs STORE");
    if ((ex = open_store(store, d, 1, &s)) != 0)
        return ex;
    evs_orch_opts_init(&oo);
    oo.adopt_ms = adopt;
    oo.on_outcome = serve_outcome;
    if ((rc = evs_orch_new(s, &oo, &g_orch)) != 0) {
        ex = fail(rc, "cannot start the orchestrator");
        goto out;
    }
    if ((rc = evs_orch_recover(g_orch, NULL)) != 0)
        fail(rc, "recovering %s (the rest goes on)", store);
    run_loop(g_orch, evs_orch_loop(g_orch));
    ex = 0;
out:
    evs_orch_free(g_orch);
    evs_store_close(s);
    return ex;
}

/* send / pause / unpause / terminate */
static int cmd_request(const char *kind, int argc, char **argv)
{
    const char *pos[4] = {0};
    int np = 0, maxp, ex;
    evs_store *s = NULL;
    evs_span type = {0}, payload = {0};
    char *reason = NULL;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] && np < 2)
            return usage("%s: unknown option %s", kind, argv[i]);
        if (np == 4)
            return usage("%s: too many arguments", kind);
        pos[np++] = argv[i];
    }
    maxp = strcmp(kind, "event") == 0 ? 4 : strcmp(kind, "unpause") == 0 ? 2 : 3;
    if (np < (strcmp(kind, "event") == 0 ? 3 : 2) || np > maxp)
        return usage("%s: expected STORE EXEC%s", kind,
                     strcmp(kind, "event") == 0 ? " TYPE [JSON]"
                     : strcmp(kind, "unpause") == 0 ? "" : " [REASON]");
    if (strcmp(kind, "event") == 0) {
        type = evs_span_cstr(pos[2]);
        payload = evs_span_cstr(np == 4 ? pos[3] : NULL);
        if (payload.len && evs_json_check(payload.ptr, payload.len, 0, NULL,
                                          NULL, NULL) != 0)
            return usage("send: the payload is not JSON: %s", pos[3]);
    } else if (np == 3) {
        size_t n = evs_json_quote(evs_span_cstr(pos[2]), NULL, 0);
        if (n == (size_t)-1 || !(reason = malloc(n)))
            return usage("%s: the reason is not UTF-8", kind);
        evs_json_quote(evs_span_cstr(pos[2]), reason, n);
        payload = (evs_span){reason, n};
    }
    if ((ex = open_store(pos[0], EVS_SYNC_FULL, 0, &s)) != 0) {
        free(reason);
        return ex;
    }
    rc = evs_orch_post(s, evs_span_cstr(pos[1]), evs_span_cstr(kind), type,
                       payload);
    if (rc == EVS_EFINISHED) {
        fprintf(stderr, "evrun: execution %s has ended; request refused\n",
                pos[1]);
        ex = EX_FAILED;
    } else if (rc != 0) {
        ex = fail_exec(rc, s, pos[1], "cannot send to");
    }
    free(reason);
    evs_store_close(s);
    return ex;
}

static int cmd_status(int argc, char **argv)
{
    const char *pos[2] = {0};
    int np = 0, json = 0, ex;
    evs_store *s = NULL;
    evs_replay *rp = NULL;
    const evs_exec_state *x;
    evs_violation v;
    evs_error_info info;
    size_t waits = 0, timers = 0, live = 0;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return usage("status: unknown option %s", argv[i]);
        else if (np == 2)
            return usage("status: too many arguments");
        else
            pos[np++] = argv[i];
    }
    if (np != 2)
        return usage("status needs STORE and EXEC");
    if ((ex = open_store(pos[0], EVS_SYNC_FULL, 0, &s)) != 0)
        return ex;
    evs_error_info_clear(&info);
    if ((rc = replay_new(&rp)) != 0 ||
        (rc = evs_replay_open(rp, s, pos[1], strlen(pos[1]), 0, NULL, &v,
                              &info)) != 0) {
        ex = rc == EVS_EHISTORY
                 ? fail(rc, "%s: sequence %llu breaks rule %s: %s", pos[1],
                        (unsigned long long)v.sequence, v.rule, v.msg)
                 : info.msg[0] ? fail(0, "cannot read %s: %s (%s)", pos[1],
                                      info.msg, evs_err_name(rc))
                               : fail(rc, "cannot read %s", pos[1]);
        goto out;
    }
    x = evs_replay_exec(rp);
    for (size_t i = 0; i < evs_replay_path_count(rp); i++)
        live += evs_replay_path(rp, i)->ended_seq == 0;
    for (size_t i = 0; i < evs_replay_wait_count(rp); i++)
        waits += evs_replay_wait(rp, i)->ended_seq == 0;
    for (size_t i = 0; i < evs_replay_timer_count(rp); i++) {
        const evs_timer_state *t = evs_replay_timer(rp, i);
        timers += !t->fired_seq && !t->cancelled;
    }
    if (json) {
        printf("{\"execution_id\":\"%s\",\"status\":\"%s\",\"workflow\":"
               "\"%.*s\",\"last_seq\":%llu,\"live_paths\":%zu,"
               "\"pending_waits\":%zu,\"pending_timers\":%zu,"
               "\"outputs\":%.*s,\"error\":%.*s,\"failed_at\":",
               pos[1], evs_exec_status_name(x->status),
               (int)x->workflow_name.len, x->workflow_name.ptr,
               (unsigned long long)x->last_seq, live, waits, timers,
               (int)(x->outputs.len ? x->outputs.len : 4),
               x->outputs.len ? x->outputs.ptr : "null",
               (int)(x->error.len ? x->error.len : 4),
               x->error.len ? x->error.ptr : "null");
        if (x->failed_seq)
            printf("{\"path\":\"%.*s\",\"step\":\"%.*s\",\"iteration\":"
                   "%lld,\"seq\":%llu}}\n", (int)x->failed_path.len,
                   x->failed_path.ptr, (int)x->failed_step.len,
                   x->failed_step.ptr, (long long)x->failed_iteration,
                   (unsigned long long)x->failed_seq);
        else
            printf("null}\n");
    } else {
        printf("execution  %s\nworkflow   %.*s\nstatus     %s\n"
               "events     %llu\npaths      %zu live\n"
               "waiting    %zu events, %zu timers\n",
               pos[1], (int)x->workflow_name.len, x->workflow_name.ptr,
               evs_exec_status_name(x->status),
               (unsigned long long)x->last_seq, live, waits, timers);
        if (x->outputs.len)
            printf("outputs    %.*s\n", (int)x->outputs.len, x->outputs.ptr);
        if (x->error.len)
            printf("error      %.*s\n", (int)x->error.len, x->error.ptr);
        if (x->failed_seq) {
            printf("failed at  path %.*s, step %.*s", (int)x->failed_path.len,
                   x->failed_path.ptr, (int)x->failed_step.len,
                   x->failed_step.ptr);
            if (x->failed_iteration >= 0)
                printf(", iteration %lld", (long long)x->failed_iteration);
            printf(", sequence %llu\n", (unsigned long long)x->failed_seq);
        }
    }
    ex = 0;
out:
    evs_replay_free(rp);
    evs_store_close(s);
    return ex;
}

int main(int argc, char **argv)
{
    const char *cmd;

    /* Appends and snapshots of executions run on the libuv threadpool,
     * and a durable run waits on fsync there: more threads than libuv's
     * default 4 let more executions sync at once. A value set by the
     * user wins. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    /* The one option every command takes, before or after the command,
     * out of the commands' way. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--allow-unsafe-perms") == 0) {
            g_allow_unsafe = 1;
            memmove(argv + i, argv + i + 1,
                    (size_t)(argc - i) * sizeof(*argv));
            argc--;
            i--;
        }
    }
    if (argc < 2)
        return usage("a command is needed");
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        fputs(exit_text, stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            fputs(exit_text, stdout);
            return 0;
        }
    argc -= 2;
    argv += 2;
    if (strcmp(cmd, "start") == 0)
        return cmd_start(argc, argv);
    if (strcmp(cmd, "resume") == 0)
        return cmd_resume(argc, argv);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc, argv);
    if (strcmp(cmd, "retry") == 0)
        return cmd_retry(argc, argv);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "send") == 0)
        return cmd_request("event", argc, argv);
    if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "unpause") == 0 ||
        strcmp(cmd, "terminate") == 0)
        return cmd_request(cmd, argc, argv);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc, argv);
    return usage("unknown command %s", cmd);
}
