/*
 * test_security_tools.c: the security contract of the command-line tools
 * (tests/RELIABILITY.md §6), driving the real evdump, evreplay and evrun
 * (paths in $EVDUMP, $EVREPLAY, $EVRUN):
 *  - every command and option that takes an execution id refuses one
 *    that could name anything but an execution, with one clear line on
 *    stderr and a non-zero exit, and creates nothing anywhere;
 *  - a store directory that group or others may write to is refused by
 *    every tool, and opened with --allow-unsafe-perms;
 *  - a log or an inbox planted as a link or a FIFO fails every tool
 *    promptly, says which file was refused, and nothing is read or
 *    written through it;
 *  - what the tools create is private under umask 000.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *base;  /* private scratch: everything below */
static char *store; /* base/store: "good" (completed), "w" (waiting) */
static char *odir;  /* base/outside, with the victim file */
static char *victim;
static char *iodir; /* base/io: the tools' stdout and stderr */
static char *def;   /* base/def.json: one echo step */
static char *wdef;  /* base/wait.json: waits for event "go" */
static char *imp;   /* base/imp.jsonl: events to import */

#define VICTIM_TEXT "outside the store\n"

static void put(const char *path, const char *text)
{
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0, "%s", path);
}

/* ------------------------------------------------------------------ */
/* Running a tool                                                     */
/* ------------------------------------------------------------------ */

typedef struct result {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
} result;

/* No tool call here takes long; one that is still running after this is
 * stuck (on a FIFO, say), and is killed and reported. A guard, not a
 * measurement. */
#define DEADLINE_S 60

static char *slurp(const char *path)
{
    size_t n;
    char *s = tu_read_file(path, &n);

    return s ? s : strdup("");
}

static result run_tool(const char *env, const char *const *args)
{
    static int seq;
    struct timespec pause = {0, 2 * 1000 * 1000};
    char tag[32], path[1024];
    result r;
    pid_t pid;
    long waited_ms = 0;
    int ws;

    snprintf(tag, sizeof(tag), "t%d", seq++);
    pid = tu_spawn_tool(env, iodir, tag, args);
    for (;;) {
        pid_t got = waitpid(pid, &ws, WNOHANG);
        cr_assert_geq(got, 0, "waitpid: %s", strerror(errno));
        if (got == pid)
            break;
        if (waited_ms >= DEADLINE_S * 1000L) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
            cr_assert_fail("%s %s %s ...: still running after %d s", env,
                           args[0], args[1] ? args[1] : "", DEADLINE_S);
        }
        nanosleep(&pause, NULL);
        waited_ms += 2;
    }
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    snprintf(path, sizeof(path), "%s/%s.out", iodir, tag);
    r.out = slurp(path);
    snprintf(path, sizeof(path), "%s/%s.err", iodir, tag);
    r.err = slurp(path);
    return r;
}

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

#define RUN(env, ...) run_tool(env, (const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------------ */
/* What "nothing changed" compares                                    */
/* ------------------------------------------------------------------ */

/* Every name below `path` (recursively, depth first, sorted), with its
 * type, mode and, for files, size: a picture of a tree. */
static void picture_into(const char *path, const char *rel, char **out,
                         size_t *len)
{
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);

    cr_assert_geq(n, 0, "scandir %s: %s", path, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            char *p = tu_join(path, nm), *r = tu_join(rel, nm), line[1024];
            struct stat sb;
            int l;

            cr_assert_eq(lstat(p, &sb), 0);
            l = snprintf(line, sizeof(line), "%s %o %lld\n", r,
                         (unsigned)sb.st_mode,
                         S_ISREG(sb.st_mode) ? (long long)sb.st_size : 0LL);
            *out = realloc(*out, *len + (size_t)l + 1);
            cr_assert_not_null(*out);
            memcpy(*out + *len, line, (size_t)l + 1);
            *len += (size_t)l;
            if (S_ISDIR(sb.st_mode))
                picture_into(p, r, out, len);
            free(p);
            free(r);
        }
        free(names[i]);
    }
    free(names);
}

static char *picture(const char *path)
{
    char *out = calloc(1, 1);
    size_t len = 0;

    cr_assert_not_null(out);
    picture_into(path, ".", &out, &len);
    return out;
}

/* The entries of the base, the trees of the store and of the outside
 * directory, and the victim's bytes (the tools' own output goes to
 * base/io, which changes with every run, and is left out). */
static char *snapshot_of_world(void)
{
    char *s = picture(store), *o = picture(odir), *v = slurp(victim);
    char *names = calloc(1, 1), *all;
    struct dirent **ents;
    int n = scandir(base, &ents, NULL, alphasort);
    size_t len;

    cr_assert_geq(n, 0);
    cr_assert_not_null(names);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names);
        names = realloc(names, l + strlen(ents[i]->d_name) + 2);
        cr_assert_not_null(names);
        sprintf(names + l, "%s|", ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    len = strlen(names) + strlen(s) + strlen(o) + strlen(v) + 16;
    all = malloc(len);
    cr_assert_not_null(all);
    snprintf(all, len, "%s\n--\n%s\n--\n%s\n--\n%s", names, s, o, v);
    free(s);
    free(o);
    free(v);
    free(names);
    return all;
}

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

static const char echo_def[] =
    "{\"name\":\"e\",\"steps\":[{\"name\":\"a\",\"kind\":\"action\","
    "\"action\":\"echo\",\"params\":1}]}";
static const char wait_def[] =
    "{\"name\":\"w\",\"steps\":[{\"name\":\"w\",\"kind\":\"wait_event\","
    "\"event\":\"go\"}]}";
static const char imp_events[] =
    "{\"id\":\"i1\",\"execution_id\":\"imp\",\"sequence\":1,"
    "\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":"
    "\"execution_started\",\"data\":{\"workflow_name\":\"i\"}}\n";

static void setup(void)
{
    result r;

    base = tu_tmpdir("sectools");
    cr_assert_not_null(base);
    store = tu_join(base, "store");
    odir = tu_join(base, "outside");
    victim = tu_join(odir, "victim");
    iodir = tu_join(base, "io");
    def = tu_join(base, "def.json");
    wdef = tu_join(base, "wait.json");
    imp = tu_join(base, "imp.jsonl");
    cr_assert_eq(mkdir(odir, 0700), 0);
    cr_assert_eq(mkdir(iodir, 0700), 0);
    put(victim, VICTIM_TEXT);
    put(def, echo_def);
    put(wdef, wait_def);
    put(imp, imp_events);
    r = RUN("EVRUN", "start", store, def, "--id", "good", "--create");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "start", store, wdef, "--id", "w");
    cr_assert_eq(r.status, 4, "suspended: %s", r.err);
    result_free(&r);
}

static void teardown(void)
{
    free(store);
    free(odir);
    free(victim);
    free(iodir);
    free(def);
    free(wdef);
    free(imp);
    tu_rmtree_free(base);
}

TestSuite(sectools, .init = setup, .fini = teardown, .timeout = 600);

/* ------------------------------------------------------------------ */
/* Execution ids                                                      */
/* ------------------------------------------------------------------ */

/* One command: the tool, and its arguments with "@" where the id goes. */
typedef struct command {
    const char *env;
    const char *args[10];
} command;

#define S "$STORE"

static const command id_commands[] = {
    {"EVDUMP", {"show", S, "@"}},
    {"EVDUMP", {"tail", S, "@"}},
    {"EVDUMP", {"verify", S, "@"}},
    {"EVDUMP", {"verify", S, "good", "@"}},
    {"EVDUMP", {"snapshot", S, "@"}},
    {"EVDUMP", {"state", S, "@"}},
    {"EVDUMP", {"chain", S, "@"}},
    {"EVDUMP", {"import", S, "@", "$IMP"}},
    {"EVDUMP", {"salvage", S, "@"}},
    {"EVDUMP", {"salvage", S, "@", "--out", "$OUT"}},
    {"EVREPLAY", {S, "@", "-c", "quit"}},
    {"EVRUN", {"resume", S, "@"}},
    {"EVRUN", {"status", S, "@"}},
    {"EVRUN", {"send", S, "@", "go"}},
    {"EVRUN", {"pause", S, "@"}},
    {"EVRUN", {"unpause", S, "@"}},
    {"EVRUN", {"terminate", S, "@"}},
    {"EVRUN", {"retry", S, "@", "--strategy", "from_start"}},
    /* Options whose value becomes an execution's name. */
    {"EVRUN", {"retry", S, "good", "--strategy", "from_start", "--id", "@"}},
    {"EVRUN", {"start", S, "$DEF", "--id", "@"}},
};

static char long_id[EVS_ID_MAX + 2];

/* Fills argv from a command, with `id` for "@". */
static void expand(const command *c, const char *id, const char **argv,
                   char *outpath)
{
    size_t i;

    for (i = 0; c->args[i]; i++) {
        const char *a = c->args[i];
        argv[i] = strcmp(a, "@") == 0      ? id
                  : strcmp(a, S) == 0      ? store
                  : strcmp(a, "$IMP") == 0 ? imp
                  : strcmp(a, "$DEF") == 0 ? def
                  : strcmp(a, "$OUT") == 0 ? outpath
                                           : a;
    }
    argv[i] = NULL;
}

static int says_bad_id(const char *err)
{
    return strstr(err, "not a valid execution id") ||
           strstr(err, "invalid execution id") ||
           strstr(err, "is not an execution id");
}

Test(sectools, every_command_that_takes_an_id_refuses_a_bad_one)
{
    const char *bad[] = {"..",     ".",        "",        "../outside/victim",
                         "/abs",   "a/b",      "good/..", "good/",
                         "./good", "a\\b",     "x\ny",    ".hidden",
                         "_x",     "\xc3\xa9", "good\r",  "~good",
                         long_id};
    char *out = tu_join(odir, "salvaged");
    char *before = snapshot_of_world();

    memset(long_id, 'g', EVS_ID_MAX + 1);
    for (size_t c = 0; c < sizeof(id_commands) / sizeof(id_commands[0]); c++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            const char *argv[12];
            const char *tool = id_commands[c].env;
            result r;

            expand(&id_commands[c], bad[i], argv, out);
            r = run_tool(tool, argv);
            cr_assert(r.status != 0 && r.status < 128, "%s %s '%s': exit %d",
                      tool, argv[0], bad[i], r.status);
            cr_assert(says_bad_id(r.err), "%s %s '%s': stderr: %s", tool,
                      argv[0], bad[i], r.err);
            result_free(&r);
        }
    }
    {
        char *after = snapshot_of_world();
        cr_assert_str_eq(before, after, "something was created or changed");
        free(after);
    }
    free(before);
    free(out);
}

Test(sectools, an_id_that_looks_like_an_option_is_refused_too)
{
    char *before = snapshot_of_world(), *after;
    result r;

    /* evdump: after "--" it is an argument, and a bad id. */
    r = RUN("EVDUMP", "show", store, "--", "-x");
    cr_assert_eq(r.status, 3);
    cr_assert(says_bad_id(r.err), "%s", r.err);
    result_free(&r);
    r = RUN("EVDUMP", "import", store, "--", "-x", imp);
    cr_assert_eq(r.status, 3);
    cr_assert(says_bad_id(r.err), "%s", r.err);
    result_free(&r);
    /* evrun and evreplay: an unknown option. */
    r = RUN("EVRUN", "send", store, "-x", "go");
    cr_assert_eq(r.status, 2, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "start", store, def, "--id", "-x");
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(says_bad_id(r.err), "%s", r.err);
    result_free(&r);
    r = RUN("EVREPLAY", store, "-x");
    cr_assert_eq(r.status, 2, "%s", r.err);
    result_free(&r);
    after = snapshot_of_world();
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
}

Test(sectools, good_ids_at_the_edges_of_the_alphabet_work)
{
    /* The control for the refusals above: 128 bytes, dots, dashes and
     * underscores after the first byte. */
    char id[EVS_ID_MAX + 1];
    result r;

    memset(id, 'z', EVS_ID_MAX);
    id[EVS_ID_MAX] = '\0';
    memcpy(id, "Z9.-_..", 7);
    r = RUN("EVRUN", "start", store, def, "--id", id);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVDUMP", "show", store, id);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "retry", store, id, "--strategy", "from_start", "--id",
            "a..", "--detach");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "a.. created\n");
    result_free(&r);
    {
        char *p = tu_join(store, "a..");
        struct stat sb;
        cr_assert_eq(lstat(p, &sb), 0, "a.. is a name in the store");
        cr_assert(S_ISDIR(sb.st_mode));
        free(p);
    }
}

Test(sectools, a_continuation_id_too_long_for_a_suffix_is_cut_and_hashed)
{
    /* A continue_as_new step names its successor "<id>.c2": an id of 125
     * bytes gives one of 128, the most an id may have. One of 126 bytes
     * would give 129: its successor is cut to 108 bytes of it, a '-' and
     * 16 hex digits of a hash of the whole id, then ".c2" (128 in all),
     * and names its predecessor in its lineage. */
    static const char can_def[] =
        "{\"name\":\"c\",\"steps\":["
        "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"echo\","
        "\"params\":1,\"next\":[{\"to\":\"roll\",\"when\":{\"lt\":[0,1]}},"
        "{\"to\":\"fin\",\"when\":{\"ge\":[0,1]}}]},"
        "{\"name\":\"roll\",\"kind\":\"continue_as_new\","
        "\"start_at\":\"fin\"},"
        "{\"name\":\"fin\",\"kind\":\"action\",\"action\":\"echo\","
        "\"params\":2}]}";
    char *cdef = tu_join(base, "can.json");
    char fits[126], over[127], succ[129], *nl;
    const char *got;
    result r;

    put(cdef, can_def);
    memset(fits, 'c', 125);
    fits[125] = '\0';
    memset(over, 'd', 126);
    over[126] = '\0';
    snprintf(succ, sizeof(succ), "%s.c2", fits);

    r = RUN("EVRUN", "start", store, cdef, "--id", fits);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, succ), "followed to its successor: %s", r.out);
    result_free(&r);
    r = RUN("EVDUMP", "show", store, succ);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);

    r = RUN("EVRUN", "start", store, cdef, "--id", over);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    /* The one successor: 108 d's, '-', 16 hex digits, ".c2". */
    {
        DIR *d = opendir(store);
        struct dirent *e;
        int n = 0;

        cr_assert_not_null(d);
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != 'd' || strcmp(e->d_name, over) == 0)
                continue;
            n++;
            cr_assert_eq(strlen(e->d_name), 128, "%s", e->d_name);
            cr_assert_eq(strspn(e->d_name, "d"), 108, "%s", e->d_name);
            cr_assert_eq(e->d_name[108], '-', "%s", e->d_name);
            cr_assert_eq(strspn(e->d_name + 109, "0123456789abcdef"), 16, "%s",
                         e->d_name);
            cr_assert_str_eq(e->d_name + 125, ".c2");
            memcpy(succ, e->d_name, sizeof(succ)); /* 128 and a NUL */
        }
        closedir(d);
        cr_assert_eq(n, 1, "one successor of d...");
    }
    r = RUN("EVDUMP", "chain", store, succ);
    cr_assert_eq(r.status, 0, "%s", r.err);
    got = strstr(r.out, over);
    cr_assert(got && strstr(got, succ), "the chain runs from %s to %s:\n%s",
              over, succ, r.out);
    nl = strchr(r.out, '\n');
    cr_assert(nl && memmem(r.out, (size_t)(nl - r.out), over, 126),
              "the first of the chain is the long id:\n%s", r.out);
    result_free(&r);
    free(cdef);
}

/* ------------------------------------------------------------------ */
/* A store directory others may write to                              */
/* ------------------------------------------------------------------ */

static const command root_commands[] = {
    {"EVDUMP", {"ls", S}},
    {"EVDUMP", {"show", S, "good"}},
    {"EVDUMP", {"verify", S}},
    {"EVDUMP", {"import", S, "imp", "$IMP"}},
    {"EVREPLAY", {S, "good", "-c", "quit"}},
    {"EVRUN", {"status", S, "good"}},
    {"EVRUN", {"send", S, "w", "go"}},
    {"EVRUN", {"start", S, "$DEF", "--id", "new"}},
};

/* The same command, with --allow-unsafe-perms added at the end or at
 * the front: every tool takes it anywhere before "--". */
static result run_allowed(const command *c, int front)
{
    const char *argv[14];
    size_t n;

    if (front) {
        argv[0] = "--allow-unsafe-perms";
        expand(c, NULL, argv + 1, NULL);
    } else {
        expand(c, NULL, argv, NULL);
        for (n = 0; argv[n]; n++)
            ;
        argv[n] = "--allow-unsafe-perms";
        argv[n + 1] = NULL;
    }
    return run_tool(c->env, argv);
}

Test(sectools, a_store_others_may_write_is_refused_unless_allowed)
{
    static const mode_t modes[] = {0777, 0770, 0757, 0702};
    const size_t ncmd = sizeof(root_commands) / sizeof(root_commands[0]);

    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        char *before, *after;
        struct stat sb;

        cr_assert_eq(chmod(store, modes[m]), 0);
        before = snapshot_of_world();
        for (size_t c = 0; c < ncmd; c++) {
            const char *argv[12];
            result r;

            expand(&root_commands[c], NULL, argv, NULL);
            r = run_tool(root_commands[c].env, argv);
            cr_assert_eq(r.status, 3, "%04o %s %s: exit %d: %s",
                         (unsigned)modes[m], root_commands[c].env, argv[0],
                         r.status, r.err);
            cr_assert(strstr(r.err, "group or others may write to it") &&
                          strstr(r.err, "--allow-unsafe-perms"),
                      "%s %s: %s", root_commands[c].env, argv[0], r.err);
            cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1,
                         "one line: %s", r.err);
            result_free(&r);
        }
        /* The commands that take no execution refuse it as well (with
         * the opt-out, serve would run until stopped). */
        {
            result r = RUN("EVRUN", "serve", store);
            cr_assert_eq(r.status, 3, "serve: %s", r.err);
            cr_assert(strstr(r.err, "--allow-unsafe-perms"), "%s", r.err);
            result_free(&r);
            r = RUN("EVRUN", "check", store, def);
            cr_assert_eq(r.status, 3, "check: %s", r.err);
            cr_assert(strstr(r.err, "--allow-unsafe-perms"), "%s", r.err);
            result_free(&r);
        }
        after = snapshot_of_world();
        cr_assert_str_eq(before, after, "%04o: a refusal changed something",
                         (unsigned)modes[m]);
        free(before);
        free(after);
        cr_assert_eq(stat(store, &sb), 0);
        cr_assert_eq(sb.st_mode & 07777, modes[m]);
    }

    /* With the opt-out, every command does its work (and the next one
     * sees it: the import, the request and the new execution). */
    cr_assert_eq(chmod(store, 0777), 0);
    for (size_t c = 0; c < ncmd; c++) {
        result r = run_allowed(&root_commands[c], c % 2);

        cr_assert_eq(r.status, 0, "%s %s --allow-unsafe-perms: %d: %s",
                     root_commands[c].env, root_commands[c].args[0], r.status,
                     r.err);
        result_free(&r);
    }
    {
        char *p = tu_join(store, "new"), *q = tu_join(store, "imp");
        char *ib = tu_join(store, "w/inbox");
        struct stat sb;
        cr_assert_eq(lstat(p, &sb), 0, "start created new");
        cr_assert_eq(lstat(q, &sb), 0, "import created imp");
        cr_assert_eq(lstat(ib, &sb), 0, "send posted to w");
        free(p);
        free(q);
        free(ib);
    }
    cr_assert_eq(chmod(store, 0700), 0);
}

Test(sectools, every_tools_help_documents_the_opt_out)
{
    static const char *const tools[] = {"EVDUMP", "EVREPLAY", "EVRUN"};

    for (size_t i = 0; i < 3; i++) {
        result r = RUN(tools[i], "--help");
        cr_assert_eq(r.status, 0);
        cr_assert(strstr(r.out, "--allow-unsafe-perms"),
                  "%s --help does not mention --allow-unsafe-perms", tools[i]);
        result_free(&r);
    }
}

/* ------------------------------------------------------------------ */
/* Planted files                                                      */
/* ------------------------------------------------------------------ */

enum { PL_SYMLINK, PL_FIFO, PL_HARDLINK, PL_KINDS };
static const char *const pl_name[PL_KINDS] = {"symbolic link", "FIFO",
                                              "hard link"};
static const char *const pl_says[PL_KINDS] = {"is a symbolic link",
                                              "is not a regular file",
                                              "has more than one hard link"};

/* Every command that reads or writes good's log. */
static const command log_commands[] = {
    {"EVDUMP", {"show", S, "good"}},
    {"EVDUMP", {"tail", S, "good"}},
    {"EVDUMP", {"verify", S, "good"}},
    {"EVDUMP", {"verify", S}},
    {"EVDUMP", {"snapshot", S, "good"}},
    {"EVDUMP", {"state", S, "good"}},
    {"EVDUMP", {"chain", S, "good"}},
    {"EVDUMP", {"salvage", S, "good"}},
    {"EVDUMP", {"import", S, "good", "$IMP"}},
    {"EVREPLAY", {S, "good", "-c", "quit"}},
    {"EVRUN", {"status", S, "good"}},
    {"EVRUN", {"resume", S, "good"}},
    {"EVRUN", {"send", S, "good", "go"}},
    {"EVRUN", {"retry", S, "good", "--strategy", "from_start", "--id", "r1"}},
};

Test(sectools, a_planted_log_fails_every_tool_promptly_and_by_name)
{
    char *lp = tu_join(store, "good/events.jsonl");
    char *copy = tu_join(odir, "copy.jsonl");
    size_t len;
    char *log = tu_read_file(lp, &len);

    cr_assert_not_null(log);
    for (int k = 0; k < PL_KINDS; k++) {
        char *before, *after;

        /* Outside: a copy of the log, which following would accept. */
        cr_assert_eq(tu_write_file(copy, log, len), 0);
        cr_assert_eq(unlink(lp), 0);
        if (k == PL_SYMLINK)
            cr_assert_eq(symlink(copy, lp), 0);
        else if (k == PL_FIFO)
            cr_assert_eq(mkfifo(lp, 0600), 0);
        else
            cr_assert_eq(link(copy, lp), 0);
        before = snapshot_of_world();
        for (size_t c = 0; c < sizeof(log_commands) / sizeof(log_commands[0]);
             c++) {
            const char *argv[12];
            result r;

            expand(&log_commands[c], NULL, argv, NULL);
            r = run_tool(log_commands[c].env, argv);
            cr_assert(r.status != 0 && r.status < 128, "%s: %s %s: exit %d",
                      pl_name[k], log_commands[c].env, argv[0], r.status);
            cr_assert(strstr(r.err, "good/events.jsonl") &&
                          strstr(r.err, pl_says[k]),
                      "%s: %s %s: stderr: %s", pl_name[k], log_commands[c].env,
                      argv[0], r.err);
            result_free(&r);
        }
        after = snapshot_of_world();
        cr_assert_str_eq(before, after, "%s: something changed", pl_name[k]);
        free(before);
        free(after);
        cr_assert_eq(unlink(lp), 0);
        cr_assert_eq(tu_write_file(lp, log, len), 0);
        cr_assert_eq(unlink(copy), 0);
    }
    free(log);
    free(lp);
    free(copy);
}

Test(sectools, a_planted_inbox_fails_requests_promptly)
{
    char *ib = tu_join(store, "w/inbox");
    static const char *const kinds[] = {"link", "fifo", "file"};

    for (size_t k = 0; k < 3; k++) {
        char *before, *after;
        result r;

        if (k == 0)
            cr_assert_eq(symlink(odir, ib), 0);
        else if (k == 1)
            cr_assert_eq(mkfifo(ib, 0600), 0);
        else
            cr_assert_eq(link(victim, ib), 0);
        before = snapshot_of_world();
        r = RUN("EVRUN", "send", store, "w", "go");
        cr_assert_eq(r.status, 3, "%s: %d: %s", kinds[k], r.status, r.err);
        cr_assert(strstr(r.err, "ENOTDIR"), "%s: %s", kinds[k], r.err);
        result_free(&r);
        r = RUN("EVRUN", "pause", store, "w", "now");
        cr_assert_eq(r.status, 3, "%s: %d: %s", kinds[k], r.status, r.err);
        result_free(&r);
        after = snapshot_of_world();
        cr_assert_str_eq(before, after, "%s: something changed", kinds[k]);
        free(before);
        free(after);
        cr_assert_eq(unlink(ib), 0);
    }
    free(ib);
}

/* ------------------------------------------------------------------ */
/* Modes under umask 000                                              */
/* ------------------------------------------------------------------ */

Test(sectools, what_the_tools_create_is_private_under_umask_0)
{
    char *s2 = tu_join(base, "s2"), *out = tu_join(base, "salvaged.jsonl");
    struct stat sb;
    int files = 0, dirs = 0;
    result r;

    umask(0); /* inherited by every tool started from here */
    r = RUN("EVRUN", "start", s2, def, "--id", "a", "--create");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "start", s2, wdef, "--id", "w");
    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "send", s2, "w", "go");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "pause", s2, "w", "later");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVRUN", "retry", s2, "a", "--strategy", "from_start", "--id", "a2",
            "--detach");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVDUMP", "import", s2, "imp", imp);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = RUN("EVDUMP", "salvage", s2, "a", "--out", out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);

    /* An existing, readable file given to --out is closed up too: the
     * history in it is as private as the log. */
    {
        char *old = tu_join(base, "old.jsonl");
        int fd = open(old, O_WRONLY | O_CREAT, 0644);
        cr_assert_geq(fd, 0);
        close(fd);
        r = RUN("EVDUMP", "salvage", s2, "a", "--out", old);
        cr_assert_eq(r.status, 0, "%s", r.err);
        result_free(&r);
        cr_assert_eq(stat(old, &sb), 0);
        cr_assert_eq(sb.st_mode & 07777, 0600, "salvage --out, replaced");
        cr_assert_gt(sb.st_size, 0);
        free(old);
    }
    cr_assert_eq(stat(s2, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0700, "the store evrun made");
    cr_assert_eq(stat(out, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0600, "salvage --out");
    tu_assert_private_tree(s2, &files, &dirs);
    cr_assert_geq(dirs, 5, "a, w, its inbox, a2, imp: %d", dirs);
    cr_assert_geq(files, 11, "index, 4 logs, 4 snapshots, 2 requests: %d",
                  files);
    free(s2);
    free(out);
}
