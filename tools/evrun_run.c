/*
 * evrun_run.c: the commands that run executions. start, resume and retry
 * run one in the foreground until it completes, fails or suspends, and
 * report how it ended; serve runs every unfinished execution of the
 * store until SIGINT or SIGTERM.
 */
#include "evrun.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The execution run in the foreground and how it ended, as on_outcome
 * heard it: it follows the execution along a continue-as-new chain. */
static char g_exec[EVS_ID_MAX + 1];
static int g_outcome = -1;
static int g_outcome_err;
static evs_store *g_store;
static evs_orch *g_orch;
static uint32_t g_grace_ms = 10000;

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    evs_replay *rp = NULL;

    (void)arg;
    if (g_exec[0] && strcmp(id, g_exec) != 0)
        return;
    g_outcome = (int)oc;
    g_outcome_err = err;
    /* A service that continued as new goes on in its successor, which
     * the orchestrator resumes: follow it. */
    if (oc == EVS_OUTCOME_CONTINUED && g_store && replay_new(&rp) == 0 &&
        evs_replay_open(rp, g_store, id, strlen(id), 0, NULL, NULL) == 0) {
        evs_span next = evs_replay_exec(rp)->continued_as;
        if (next.len && next.len <= EVS_ID_MAX) {
            memcpy(g_exec, next.ptr, next.len);
            g_exec[next.len] = '\0';
            g_outcome = -1;
        }
    }
    evs_replay_free(rp);
}

static evs_server *g_server;

static void on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    /* The HTTP server goes first: its followers end, its connections
     * close, and then nothing of it keeps the loop alive. */
    evs_server_close(g_server, NULL, NULL);
    g_server = NULL;
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

/* Prints execution g_exec as `outcome` (an outcome's name, or
 * "created"): "ID OUTCOME", then its outputs (completed) or its error as
 * JSON; with `json` one object instead, with the findings of a
 * definition check when `fs` is not NULL. */
static void print_result(evs_store *s, const char *outcome, int json,
                         const findings *fs)
{
    evs_replay *rp = NULL;

    if (replay_new(&rp) != 0 ||
        evs_replay_open(rp, s, g_exec, strlen(g_exec), 0, NULL, NULL) != 0) {
        evs_replay_free(rp);
        rp = NULL;
    }
    if (json) {
        exec_json_open(g_exec, outcome, rp);
        if (fs)
            findings_json(fs);
        out_write("}\n", 2);
    } else {
        out_printf("%s %s\n", g_exec, outcome);
        if (rp) {
            const evs_exec_state *x = evs_replay_exec(rp);

            if (strcmp(outcome, "completed") == 0)
                out_printf("%.*s\n", (int)(x->outputs.len ? x->outputs.len : 4),
                           x->outputs.len ? x->outputs.ptr : "null");
            else if (x->error.len)
                out_printf("%.*s\n", (int)x->error.len, x->error.ptr);
        }
    }
    evs_replay_free(rp);
}

/* Prints the outcome of g_exec and maps it to an exit status. */
static int report(evs_store *s, int json, const findings *fs)
{
    int ex;

    switch (g_outcome) {
    case EVS_OUTCOME_COMPLETED: ex = EXIT_OKAY; break;
    case EVS_OUTCOME_FAILED:
    case EVS_OUTCOME_TERMINATED: ex = EXIT_FAILED; break;
    case EVS_OUTCOME_CONTINUED: ex = EXIT_OKAY; break;
    case EVS_OUTCOME_ERROR:
        return fail_rc(g_outcome_err, "execution %s", g_exec);
    default:
        /* Stopped by a signal before it ended: as suspended. */
        g_outcome = EVS_OUTCOME_SUSPENDED;
        ex = EXIT_SUSPENDED;
        break;
    }
    print_result(s, evs_outcome_name((evs_outcome)g_outcome), json, fs);
    return ex;
}

/* Says what start refused: the definition, naming the step at fault, or
 * the inputs. */
static int start_refused(const char *path, const evs_error_info *we)
{
    if (strcmp(we->kind, "inputs") == 0)
        return fail("--input: %s", we->msg);
    return fail_definition(path, we);
}

int cmd_start(int argc, char **argv)
{
    static const struct option lo[] = {
        {"input", required_argument, NULL, OPT_INPUT},
        {"id", required_argument, NULL, OPT_ID},
        {"detach", no_argument, NULL, OPT_DETACH},
        OPT_SYNC_ENTRY,
        {"create", no_argument, NULL, OPT_CREATE},
        OPT_JSON_ENTRY,
        OPT_HELP,
        OPT_END};
    const char *input = NULL, *id = NULL, *def;
    evs_durability d = EVS_SYNC_FULL;
    int detach = 0, create = 0, json = 0, ex = 0, rc, c;
    char *dbuf = NULL, *ibuf = NULL;
    size_t dlen = 0;
    evs_span in = {0};
    evs_store *s = NULL;
    evs_orch_opts oo;
    evs_error_info we;

    while ((c = next_opt("start", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("start"); return EXIT_OKAY;
        case OPT_INPUT: input = optarg; break;
        case OPT_ID: id = optarg; break;
        case OPT_DETACH: detach = 1; break;
        case OPT_SYNC: ex = parse_sync("start", optarg, &d); break;
        case OPT_CREATE: create = 1; break;
        case OPT_JSON: json = 1; break;
        default: return -c;
        }
        if (ex)
            return ex;
    }
    if ((ex = positionals("start", argc, argv, 2, 2, "STORE DEF.json")) != 0)
        return ex;
    def = argv[optind + 1];
    /* An id given must be one: an empty --id would otherwise mean "make
     * one up". */
    if (id && !evs_id_valid(id, strlen(id)))
        return usage_error("start", "'%s' is not a valid execution id", id);
    if (input && (ex = json_arg("start", "--input", input, &ibuf, &in)) != 0)
        goto out;
    if (!(dbuf = read_file(def, &dlen))) {
        ex = fail_rc(-errno, "cannot read %s", def);
        goto out;
    }
    if ((ex = run_store_open(argv[optind], d, create, 1, &s)) != 0)
        goto out;
    g_store = s;
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    if ((rc = evs_orch_new(s, &oo, &g_orch)) != 0) {
        ex = fail_rc(rc, "cannot start the orchestrator");
        goto out;
    }
    rc = evs_orch_start(g_orch, (evs_span){dbuf, dlen}, in, evs_span_cstr(id),
                        g_exec, &we);
    if (rc != 0) {
        /* A refused definition or inputs is bad data, not bad usage. */
        ex = rc == EVS_EPARSE
                 ? start_refused(def, &we)
                 : fail_rc(rc, "cannot start an execution of %s", def);
        evs_orch_stop(g_orch, 0);
        evs_orch_run(g_orch);
        goto out;
    }
    if (detach) {
        /* Only the creation: stop once it is on disk. */
        evs_orch_stop(g_orch, 0);
    }
    run_loop(g_orch, evs_orch_loop(g_orch));
    if (detach && g_outcome == EVS_OUTCOME_ERROR) {
        ex = fail_rc(g_outcome_err, "execution %s", g_exec);
    } else if (detach) {
        print_result(s, "created", json, NULL);
        ex = EXIT_OKAY;
    } else {
        ex = report(s, json, NULL);
    }
out:
    evs_orch_free(g_orch);
    g_orch = NULL;
    evs_store_close(s);
    free(dbuf);
    free(ibuf);
    return ex;
}

/* Takes over execution g_exec and runs it in the foreground, under
 * definition `def` when it is not empty. */
static int run_resume(evs_store *s, const char *store, evs_span def, int json)
{
    evs_orch_opts oo;
    evs_error_info info;
    findings fs = {g_exec, NULL, 0, 0};
    int rc, ex = EXIT_ERROR;

    g_store = s;
    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    if ((rc = evs_orch_new(s, &oo, &g_orch)) != 0)
        return fail_rc(rc, "cannot start the orchestrator");
    rc = evs_orch_resume_with(g_orch, evs_span_cstr(g_exec), def, hold_finding,
                              &fs, &info);
    print_findings(&fs, rc == 0, json);
    if (rc == EVS_ELOCKED) {
        ex = fail("execution %s is owned by another runner", g_exec);
    } else if ((rc == EVS_ENONDET || rc == EVS_EVERSION) && def.len) {
        /* A refusal under a new definition was named above; one by the
         * recorded definition (a decision made from C) is named here. */
        note("%s: the new definition breaks its history (above); not "
             "resumed (%s)",
             g_exec, evs_err_name(rc));
        ex = EXIT_FAILED;
    } else if (rc == EVS_EVERSION && info.code == rc) {
        note("cannot resume %s: %s (%s)", g_exec, info.msg, evs_err_name(rc));
        ex = EXIT_FAILED;
    } else if (rc == EVS_ECONFLICT && info.code == rc) {
        /* A durable function's run: the orchestrator's log said so. */
        ex = EXIT_FAILED;
    } else if (rc != 0) {
        ex = fail_on_exec(s, store, g_exec, rc, "resume");
    }
    if (ex == EXIT_FAILED && json) {
        exec_json_open(g_exec, "refused", NULL);
        findings_json(&fs);
        out_write("}\n", 2);
    }
    if (rc != 0)
        evs_orch_stop(g_orch, 0);
    run_loop(g_orch, evs_orch_loop(g_orch));
    if (rc == 0)
        ex = report(s, json, def.len ? &fs : NULL);
    findings_free(&fs);
    evs_orch_free(g_orch);
    g_orch = NULL;
    return ex;
}

int cmd_resume(int argc, char **argv)
{
    static const struct option lo[] = {
        {"definition", required_argument, NULL, OPT_DEFINITION},
        OPT_SYNC_ENTRY,
        OPT_JSON_ENTRY,
        OPT_HELP,
        OPT_END};
    const char *defpath = NULL, *id;
    evs_durability d = EVS_SYNC_FULL;
    evs_store *s = NULL;
    char *dbuf = NULL;
    size_t dlen = 0;
    int json = 0, ex = 0, c;

    while ((c = next_opt("resume", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("resume"); return EXIT_OKAY;
        case OPT_DEFINITION: defpath = optarg; break;
        case OPT_SYNC: ex = parse_sync("resume", optarg, &d); break;
        case OPT_JSON: json = 1; break;
        default: return -c;
        }
        if (ex)
            return ex;
    }
    if ((ex = positionals("resume", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return ex;
    id = argv[optind + 1];
    if (strlen(id) > EVS_ID_MAX)
        return fail_exec(EVS_EBADID, NULL, argv[optind], id);
    snprintf(g_exec, sizeof(g_exec), "%s", id);
    if (defpath && !(dbuf = read_file(defpath, &dlen)))
        return fail_rc(-errno, "cannot read %s", defpath);
    if ((ex = run_store_open(argv[optind], d, 0, 0, &s)) == 0)
        ex = run_resume(s, argv[optind], (evs_span){dbuf, dlen}, json);
    evs_store_close(s);
    free(dbuf);
    return ex;
}

/* Checks that the options given apply to the strategy. */
static int retry_check(const char *strategy, evs_retry_opts *ro)
{
    if (ro->from_seq && !strategy)
        strategy = "from_seq";
    if (!strategy)
        return usage_error("retry", "needs --strategy (from_start, "
                                    "from_failure, with_new_inputs, "
                                    "skip_failed) or --from-seq N");
    if (evs_retry_strategy_parse(strategy, &ro->strategy) != 0)
        return usage_error("retry", "unknown strategy '%s'", strategy);
    if (ro->strategy == EVS_RETRY_WITH_NEW_INPUTS && !ro->inputs.len)
        return usage_error("retry", "with_new_inputs needs --inputs JSON");
    if (ro->strategy == EVS_RETRY_FROM_SEQ && !ro->from_seq)
        return usage_error("retry", "from_seq needs --from-seq N");
    if ((ro->inputs.len && ro->strategy != EVS_RETRY_WITH_NEW_INPUTS) ||
        (ro->from_step.len && ro->strategy != EVS_RETRY_WITH_NEW_INPUTS) ||
        (ro->output.len && ro->strategy != EVS_RETRY_SKIP_FAILED) ||
        (ro->from_seq && ro->strategy != EVS_RETRY_FROM_SEQ))
        return usage_error("retry", "an option does not apply to %s", strategy);
    return 0;
}

int cmd_retry(int argc, char **argv)
{
    static const struct option lo[] = {
        {"strategy", required_argument, NULL, OPT_STRATEGY},
        {"inputs", required_argument, NULL, OPT_INPUTS},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"from-step", required_argument, NULL, OPT_FROM_STEP},
        {"from-seq", required_argument, NULL, OPT_FROM_SEQ},
        {"id", required_argument, NULL, OPT_ID},
        {"detach", no_argument, NULL, OPT_DETACH},
        OPT_SYNC_ENTRY,
        OPT_JSON_ENTRY,
        OPT_HELP,
        OPT_END};
    const char *strategy = NULL, *id;
    evs_durability d = EVS_SYNC_FULL;
    evs_retry_opts ro;
    evs_store *s = NULL;
    char *ibuf = NULL, *obuf = NULL;
    evs_error_info why;
    int detach = 0, json = 0, ex = 0, rc, c;

    evs_retry_opts_init(&ro);
    while (!ex && (c = next_opt("retry", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("retry"); goto out;
        case OPT_STRATEGY: strategy = optarg; break;
        case OPT_INPUTS:
            free(ibuf);
            ibuf = NULL;
            ex = json_arg("retry", "--inputs", optarg, &ibuf, &ro.inputs);
            break;
        case OPT_OUTPUT:
            free(obuf);
            obuf = NULL;
            ex = json_arg("retry", "--output", optarg, &obuf, &ro.output);
            break;
        case OPT_FROM_STEP: ro.from_step = evs_span_cstr(optarg); break;
        case OPT_FROM_SEQ:
            ex = parse_num("retry", "--from-seq", optarg, 1, UINT64_MAX,
                           &ro.from_seq);
            break;
        case OPT_ID:
            if (!evs_id_valid(optarg, strlen(optarg)))
                ex = usage_error("retry",
                                 "--id '%s' is not a valid "
                                 "execution id",
                                 optarg);
            ro.new_id = evs_span_cstr(optarg);
            break;
        case OPT_DETACH: detach = 1; break;
        case OPT_SYNC: ex = parse_sync("retry", optarg, &d); break;
        case OPT_JSON: json = 1; break;
        default: ex = -c; break;
        }
    }
    if (ex ||
        (ex = positionals("retry", argc, argv, 2, 2, "STORE EXEC")) != 0 ||
        (ex = retry_check(strategy, &ro)) != 0)
        goto out;
    id = argv[optind + 1];
    if ((ex = run_store_open(argv[optind], d, 0, 0, &s)) != 0)
        goto out;
    rc = evs_exec_retry(s, evs_span_cstr(id), &ro, g_exec, &why);
    if (rc != 0 && why.msg[0]) {
        ex = fail("retry of %s refused: %s", id, why.msg);
    } else if (rc != 0) {
        ex = fail_on_exec(s, argv[optind], id, rc, "retry");
    } else if (detach) {
        print_result(s, "created", json, NULL);
        ex = EXIT_OKAY;
    } else if (evs_exec_code_version(s, id, strlen(id), NULL, 0) == 1) {
        /* A durable function's run is run by its host's code. */
        print_result(s, "created", json, NULL);
        note("%s is a durable function's run: run its host's code on %s "
             "(formats/RUNS.md)",
             id, g_exec);
        ex = EXIT_OKAY;
    } else {
        ex = run_resume(s, argv[optind], (evs_span){0}, json);
    }
out:
    evs_store_close(s);
    free(ibuf);
    free(obuf);
    return ex;
}

/*
 * serve --http ADDR:PORT [--token-file F]: splits ADDR:PORT ("[::1]:8080"
 * for IPv6) into `so`, and reads the token (the file's first line, blanks
 * around it cut) into *token (owned by the caller). Returns 0, a usage
 * error, or EXIT_ERROR for a token file that cannot be read or is empty.
 */
static int http_args(const char *http, const char *token_file,
                     evs_server_opts *so, char **token)
{
    static char addr[64];
    const char *colon = strrchr(http, ':'), *a = http;
    size_t alen;
    uint64_t port;
    int ex;

    if (!colon)
        return usage_error("serve", "--http takes ADDR:PORT, got '%s'", http);
    alen = (size_t)(colon - http);
    if (alen >= 2 && http[0] == '[' && http[alen - 1] == ']') {
        a = http + 1;
        alen -= 2;
    }
    if (alen == 0 || alen >= sizeof(addr))
        return usage_error("serve", "--http takes ADDR:PORT, got '%s'", http);
    memcpy(addr, a, alen);
    addr[alen] = '\0';
    if ((ex = parse_num("serve", "--http's port", colon + 1, 0, 65535,
                        &port)) != 0)
        return ex;
    so->address = addr;
    so->port = (uint16_t)port;
    if (token_file) {
        size_t len = 0, b = 0;
        char *t = read_file(token_file, &len);
        if (!t)
            return fail_rc(-errno, "--token-file: cannot read %s",
                           token_file);
        while (b < len && (t[b] == ' ' || t[b] == '\t'))
            b++;
        len = b + strcspn(t + b, "\r\n");
        while (len > b && (t[len - 1] == ' ' || t[len - 1] == '\t'))
            len--;
        if (len == b) {
            free(t);
            return fail("--token-file: %s holds no token", token_file);
        }
        memmove(t, t + b, len - b);
        t[len - b] = '\0';
        *token = t;
        so->token = evs_span_cstr(t);
    }
    return 0;
}

/* Starts the HTTP server on the runner's loop, beside it; says where it
 * listens on stderr. */
/* The console `meson install` put in the data directory, or NULL if it
 * is not there (a build tree's evrun that was never installed). */
static const char *installed_console(void)
{
#ifdef EVRUN_CONSOLE_DIR
    struct stat st;

    if (stat(EVRUN_CONSOLE_DIR "/index.html", &st) == 0 && S_ISREG(st.st_mode))
        return EVRUN_CONSOLE_DIR;
#endif
    return NULL;
}

static int http_start(evs_store *s, evs_server_opts *so)
{
    evs_error_info err;
    int rc;

    /* A client that goes away must not take the runner with it: writes
     * to its socket then fail with EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    so->orch = g_orch;
    rc = evs_server_start(evs_orch_loop(g_orch), s, so, &g_server, &err);
    if (rc != 0)
        return fail("--http: %s", err.msg[0] ? err.msg : evs_strerror(rc));
    note("serving the HTTP API on http://%s%s%s:%u/",
         strchr(so->address, ':') ? "[" : "", so->address,
         strchr(so->address, ':') ? "]" : "",
         (unsigned)evs_server_port(g_server));
    if (so->console_dir)
        note("the console: http://%s%s%s:%u/console/ (from %s)",
             strchr(so->address, ':') ? "[" : "", so->address,
             strchr(so->address, ':') ? "]" : "",
             (unsigned)evs_server_port(g_server), so->console_dir);
    return 0;
}

static void serve_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    (void)arg;
    if (oc == EVS_OUTCOME_ERROR)
        note("execution %s: given up: %s", id, evs_strerror(err));
}

int cmd_serve(int argc, char **argv)
{
    static const struct option lo[] = {
        {"grace", required_argument, NULL, OPT_GRACE},
        {"adopt", required_argument, NULL, OPT_ADOPT},
        {"schedules", required_argument, NULL, OPT_SCHEDULES},
        {"gc-first", required_argument, NULL, OPT_GC_FIRST},
        {"lease", required_argument, NULL, OPT_LEASE},
        {"max", required_argument, NULL, OPT_MAX},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"http", required_argument, NULL, OPT_HTTP},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"definitions", required_argument, NULL, OPT_DEFINITIONS},
        {"console", required_argument, NULL, OPT_CONSOLE},
        OPT_SYNC_ENTRY,
        {"create", no_argument, NULL, OPT_CREATE},
        OPT_HELP,
        OPT_END};
    const char *http = NULL, *token_file = NULL, *defs = NULL,
               *console = NULL;
    char *token = NULL;
    evs_durability d = EVS_SYNC_FULL;
    uint64_t adopt = 1000, grace = g_grace_ms, sched = 1000, gc_first = 1000;
    uint64_t lease = 0, max_owned = 0, conns = 0;
    evs_store *s = NULL;
    evs_orch_opts oo;
    evs_server_opts so;
    serve_gc gc;
    int create = 0, rc, ex = 0, c;

    memset(&gc, 0, sizeof(gc));
    evs_server_opts_init(&so);
    while ((c = next_opt("serve", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("serve"); return EXIT_OKAY;
        case OPT_GRACE:
            ex = parse_num("serve", "--grace", optarg, 0, 86400000, &grace);
            break;
        case OPT_ADOPT:
            ex = parse_num("serve", "--adopt", optarg, 0, 86400000, &adopt);
            break;
        case OPT_SCHEDULES:
            ex = parse_num("serve", "--schedules", optarg, 0, 86400000, &sched);
            break;
        case OPT_GC_FIRST:
            ex = parse_num("serve", "--gc-first", optarg, 0, 86400000,
                           &gc_first);
            break;
        case OPT_LEASE:
            ex = parse_num("serve", "--lease", optarg, 100, 86400000, &lease);
            break;
        case OPT_MAX:
            ex = parse_num("serve", "--max", optarg, 1, 100000000, &max_owned);
            break;
        case OPT_CONNECTIONS:
            ex = parse_num("serve", "--connections", optarg, 1, 64, &conns);
            break;
        case OPT_SYNC: ex = parse_sync("serve", optarg, &d); break;
        case OPT_CREATE: create = 1; break;
        case OPT_HTTP: http = optarg; break;
        case OPT_TOKEN_FILE: token_file = optarg; break;
        case OPT_DEFINITIONS: defs = optarg; break;
        case OPT_CONSOLE: console = optarg; break;
        default: return -c;
        }
        if (ex)
            return ex;
    }
    if ((ex = positionals("serve", argc, argv, 1, 1, "STORE")) != 0)
        return ex;
    if (!http && (token_file || defs || console))
        return usage_error("serve", "--token-file, --definitions and "
                                    "--console go with --http");
    if (http && (ex = http_args(http, token_file, &so, &token)) != 0)
        return ex;
    so.definitions_dir = defs;
    so.console_dir = console ? console : installed_console();
    g_grace_ms = (uint32_t)grace;
    g_lease_ms = (uint32_t)lease;
    g_connections = (uint32_t)conns;
    if ((ex = run_store_open(argv[optind], d, create, 1, &s)) != 0)
        return ex;
    g_store = s;
    evs_orch_opts_init(&oo);
    oo.adopt_ms = (uint32_t)(adopt ? adopt : 1);
    oo.schedule_ms = (uint32_t)sched;
    oo.max_owned = (size_t)max_owned;
    oo.on_outcome = serve_outcome;
    if ((rc = evs_orch_new(s, &oo, &g_orch)) != 0) {
        ex = fail_rc(rc, "cannot start the orchestrator");
        goto out;
    }
    if ((rc = evs_orch_recover(g_orch, NULL)) != 0)
        fail_rc(rc, "recovering %s (the rest goes on)", argv[optind]);
    if ((ex = serve_gc_start(evs_orch_loop(g_orch), s, gc_first, &gc)) != 0)
        goto out;
    if (http && (ex = http_start(s, &so)) != 0) {
        serve_gc_stop(&gc);
        evs_orch_stop(g_orch, 0);
        evs_orch_run(g_orch);
        goto out;
    }
    run_loop(g_orch, evs_orch_loop(g_orch));
    serve_gc_stop(&gc);
    uv_run(evs_orch_loop(g_orch), UV_RUN_DEFAULT);
    ex = 0;
out:
    evs_orch_free(g_orch);
    g_orch = NULL;
    evs_store_close(s);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    return ex;
}
