/*
 * pg_server.c: the PostgreSQL server evbench's PostgreSQL rows run on.
 *
 * The server is, in this order: the URI given with --pg; libpq's
 * environment when PGHOST is set (the URI "postgresql://", which takes
 * PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD); else a private
 * server that evbench starts with `scripts/pg-test-server start
 * --durable` (fsync and full_page_writes on, so durable means a WAL
 * flush to the disk) and stops at the end, also after an error or a
 * signal. `--pg off` leaves the PostgreSQL rows out.
 *
 * Every scenario works in a schema of its own, evbench_<pid>_<name>,
 * reached by adding `options=-csearch_path=...` to the URI, so runs on
 * a shared server never meet; the schemas are dropped at the end unless
 * --keep (a private server goes with its data anyway).
 *
 * The server's settings that decide what "durable" means (fsync,
 * full_page_writes, synchronous_commit) are read back from the server and
 * written in the notes, whichever server it is.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EVBENCH_PG_SCRIPT
#define EVBENCH_PG_SCRIPT "scripts/pg-test-server"
#endif

/* The private server's directory, for the signal handler: a copy that
 * never moves. */
static char g_server_dir[1024];
static char g_script[1024];
/* The process that started it: a forked child (P9's runners) that gets a
 * signal leaves the server alone. */
static pid_t g_owner;

/* Runs `script stop dir` and waits for it; async-signal-safe (fork,
 * execv, waitpid), so the signal handler can call it. */
static void stop_server(const char *script, const char *dir)
{
    pid_t pid;
    int st;

    if (!dir[0])
        return;
    pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)script, (char *)"stop", (char *)dir, NULL};
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0)
            dup2(null, 1);
        execv(script, argv);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
}

/* A signal that ends evbench stops the private server first, then ends
 * evbench as that signal would have. */
static void on_signal(int sig)
{
    if (getpid() == g_owner) {
        stop_server(g_script, g_server_dir);
        g_server_dir[0] = '\0';
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Why the PostgreSQL rows do not run: the first line of `text`. */
static void not_run(bench_ctx *c, const char *fmt, const char *text)
{
    char line[200];

    snprintf(line, sizeof(line), "%s", text ? text : "");
    line[strcspn(line, "\n")] = '\0';
    snprintf(c->pg.why, sizeof(c->pg.why), fmt, line);
    c->pg.state = BENCH_PG_NOT_RUN;
}

/*
 * Starts the private server: bash runs the script's `start --durable`
 * and prints the two values it exported (the script quotes them for the
 * shell, so the shell unquotes them), one a line, on a pipe; the
 * script's standard error goes to a file in the data directory, whose
 * first line is the reason when it fails.
 */
static int start_private(bench_ctx *c)
{
    static const char prog[] =
        "out=$(\"$0\" start --durable) || exit $?; eval \"$out\" &&"
        " printf '%s\\n%s\\n' \"$EVS_TEST_PG_URI\" \"$EVS_TEST_PG_DIR\"";
    char errpath[4300], buf[4096], *nl;
    size_t got = 0;
    int fds[2], st = 0;
    ssize_t k;
    pid_t pid;
    FILE *f;

    snprintf(g_script, sizeof(g_script), "%s", EVBENCH_PG_SCRIPT);
    if (access(g_script, X_OK) != 0) {
        not_run(c, "the script to start a server is missing: %s",
                strerror(errno));
        return -1;
    }
    bench_path(errpath, sizeof(errpath), c->root, "pg-server.err");
    if (pipe(fds) != 0)
        return bench_fail(c, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)"bash", (char *)"-c", (char *)prog, g_script,
                        NULL};
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        dup2(fds[1], 1);
        if (e >= 0)
            dup2(e, 2);
        close(fds[0]);
        close(fds[1]);
        execvp("bash", argv);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return bench_fail(c, "fork: %s", strerror(errno));
    }
    while (got + 1 < sizeof(buf) &&
           ((k = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0 ||
            (k < 0 && errno == EINTR)))
        if (k > 0)
            got += (size_t)k;
    buf[got] = '\0';
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    nl = strchr(buf, '\n');
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !nl) {
        char err[512] = "";

        if ((f = fopen(errpath, "r")) != NULL) {
            if (!fgets(err, sizeof(err), f))
                err[0] = '\0';
            fclose(f);
        }
        not_run(c, "scripts/pg-test-server start --durable failed: %s",
                err[0] ? err : "(no message)");
        return -1;
    }
    *nl = '\0';
    snprintf(c->pg.uri, sizeof(c->pg.uri), "%.2000s", buf);
    snprintf(c->pg.dir, sizeof(c->pg.dir), "%.*s", (int)strcspn(nl + 1, "\n"),
             nl + 1);
    snprintf(g_server_dir, sizeof(g_server_dir), "%s", c->pg.dir);
    g_owner = getpid();
    catch_signals();
    /* The script stops the servers of runs whose recorded owner is gone:
     * recording evbench as the owner means a SIGKILLed evbench's server
     * is stopped by the next start. */
    {
        char owner[1200];

        snprintf(owner, sizeof(owner), "%s/owner", c->pg.dir);
        if ((f = fopen(owner, "w")) != NULL) {
            fprintf(f, "%ld\n", (long)getpid());
            fclose(f);
        }
    }
    unlink(errpath);
    snprintf(c->pg.server, sizeof(c->pg.server),
             "a private server started by evbench "
             "(scripts/pg-test-server start --durable)");
    return 0;
}

/* A single-row, single-column query's answer as text, "?" if none. */
static void show(PGconn *db, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(db, sql);

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    else
        snprintf(out, cap, "?");
    PQclear(r);
}

int bench_pg_ensure(bench_ctx *c)
{
    char fsync[16], fpw[16], scommit[16], ver[64];
    PGconn *db;

    if (c->pg.state == BENCH_PG_READY)
        return 0;
    if (c->pg.state == BENCH_PG_NOT_RUN)
        return -1;
    snprintf(c->pg.tag, sizeof(c->pg.tag), "evbench_%ld", (long)getpid());
    if (c->pg_opt && strcmp(c->pg_opt, "off") == 0) {
        not_run(c, "%s", "--pg off");
        return -1;
    }
    if (c->pg_opt) {
        snprintf(c->pg.uri, sizeof(c->pg.uri), "%s", c->pg_opt);
        snprintf(c->pg.server, sizeof(c->pg.server), "the server of --pg");
    } else if (getenv("PGHOST") && *getenv("PGHOST")) {
        snprintf(c->pg.uri, sizeof(c->pg.uri), "postgresql://");
        snprintf(c->pg.server, sizeof(c->pg.server),
                 "the server of PGHOST (libpq's environment)");
    } else {
        bench_progress(c, 1, "starting a PostgreSQL server");
        if (start_private(c) != 0) {
            if (c->pg.state != BENCH_PG_NOT_RUN)
                not_run(c, "%s", "the private server did not start");
            return -1;
        }
    }
    if (strstr(c->pg.uri, "options=")) {
        not_run(c, "%s",
                "the server URI sets options=, which evbench needs for "
                "each scenario's search_path");
        return -1;
    }
    db = PQconnectdb(c->pg.uri);
    if (!db || PQstatus(db) != CONNECTION_OK) {
        not_run(c, "cannot connect: %s",
                db ? PQerrorMessage(db) : "out of memory");
        PQfinish(db);
        return -1;
    }
    show(db, "SHOW fsync", fsync, sizeof(fsync));
    show(db, "SHOW full_page_writes", fpw, sizeof(fpw));
    show(db, "SHOW synchronous_commit", scommit, sizeof(scommit));
    show(db, "SHOW server_version", ver, sizeof(ver));
    PQfinish(db);
    c->pg.fsync_on = strcmp(fsync, "on") == 0;
    bench_note(c,
               "PostgreSQL %s: %s; fsync=%s, full_page_writes=%s, "
               "synchronous_commit=%s by default%s",
               ver, c->pg.server, fsync, fpw, scommit,
               c->pg.fsync_on ? ""
                              : ": NOT durable, the PostgreSQL durable rows "
                                "measure no disk flush");
    c->pg.state = BENCH_PG_READY;
    return 0;
}

int bench_pg_loc(bench_ctx *c, const char *name, char *out, size_t cap)
{
    char schema[64], sql[256];
    PGconn *db;
    PGresult *r;
    int ok;

    if (bench_pg_ensure(c) != 0)
        return -1;
    snprintf(schema, sizeof(schema), "%.31s_%.31s", c->pg.tag, name);
    db = PQconnectdb(c->pg.uri);
    if (!db || PQstatus(db) != CONNECTION_OK) {
        bench_fail(c, "PostgreSQL: cannot connect: %s",
                   db ? PQerrorMessage(db) : "out of memory");
        PQfinish(db);
        return -1;
    }
    /* Left from an earlier repetition of the same run: start afresh. */
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning;"
             " DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
             schema, schema);
    r = PQexec(db, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        bench_fail(c, "PostgreSQL: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    PQfinish(db);
    if (!ok)
        return -1;
    if (c->pg.nschemas < BENCH_PG_SCHEMAS) {
        int known = 0;

        for (size_t i = 0; i < c->pg.nschemas; i++)
            known |= strcmp(c->pg.schemas[i], schema) == 0;
        if (!known)
            snprintf(c->pg.schemas[c->pg.nschemas++], sizeof(c->pg.schemas[0]),
                     "%s", schema);
    }
    if ((size_t)snprintf(out, cap, "%s%soptions=-csearch_path%%3D%s", c->pg.uri,
                         strchr(c->pg.uri, '?') ? "&" : "?", schema) >= cap)
        return bench_fail(c, "PostgreSQL URI too long");
    return 0;
}

void bench_pg_finish(bench_ctx *c)
{
    if (c->pg.state == BENCH_PG_READY && !c->pg.dir[0] && !c->keep &&
        c->pg.nschemas) {
        PGconn *db = PQconnectdb(c->pg.uri);

        for (size_t i = 0;
             db && PQstatus(db) == CONNECTION_OK && i < c->pg.nschemas; i++) {
            char sql[200];

            snprintf(sql, sizeof(sql),
                     "SET client_min_messages = warning;"
                     " DROP SCHEMA IF EXISTS %s CASCADE",
                     c->pg.schemas[i]);
            PQclear(PQexec(db, sql));
        }
        PQfinish(db);
    }
    if (c->pg.dir[0]) {
        bench_progress(c, 1, "stopping the PostgreSQL server");
        stop_server(g_script, c->pg.dir);
        c->pg.dir[0] = g_server_dir[0] = '\0';
        bench_progress_clear(c);
    }
    if (c->pg.state == BENCH_PG_NOT_RUN && c->pg.wanted[0]) {
        bench_note(c, "PostgreSQL rows (%s) NOT RUN: %s", c->pg.wanted,
                   c->pg.why);
        fprintf(stderr, "evbench: PostgreSQL rows (%s) not run: %s\n",
                c->pg.wanted, c->pg.why);
    }
}

int bench_pg_want(bench_ctx *c)
{
    if (bench_pg_ensure(c) == 0)
        return 0;
    if (c->cur_scenario && !strstr(c->pg.wanted, c->cur_scenario))
        snprintf(c->pg.wanted + strlen(c->pg.wanted),
                 sizeof(c->pg.wanted) - strlen(c->pg.wanted), "%s%s",
                 c->pg.wanted[0] ? ", " : "", c->cur_scenario);
    return 1;
}

int bench_pg_open(bench_ctx *c, const char *name, evs_durability d, char *loc,
                  size_t cap, evs_store **out)
{
    *out = NULL;
    if (bench_pg_want(c) != 0)
        return 1;
    if (bench_pg_loc(c, name, loc, cap) != 0)
        return -1;
    return bench_store_open_at(c, loc, d, out);
}
