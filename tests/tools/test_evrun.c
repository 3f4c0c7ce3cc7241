/*
 * test_evrun.c: drives the real evrun binary (path in $EVRUN) through its
 * command-line contract: what start, resume, send, status, pause, unpause,
 * terminate and serve print and exit with, the exec: protocol (stdin,
 * stdout errors, exit statuses, stderr, timeouts) and a retry backoff
 * that outlives a killed runner.
 *
 * Actions are small sh scripts written into the test's directory at run
 * time. Each run appends "STEP KEY ATTEMPT" to a side-effect file (and its
 * stdin to FILE.in), which is how the tests see what ran, and how often.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char *dir;   /* scratch: scripts, definitions, outputs */
static char *store; /* the store, dir/store */
static char *fx;    /* the side-effect file, dir/fx */
static pid_t serve_pid = -1;
static char *defs[16]; /* paths of the definitions written */
static size_t ndefs;

/* act.sh FX NAME MODE [N]: one workflow step. Records the run, then:
 * ok answers {"step","attempt","params"}; flaky exits 3 (with a line on
 * stderr) while the attempt is at most N; fatal answers a non-retryable
 * error; noisy writes FX.noise to stderr and exits 5; slow writes its pid
 * to FX.pid and sleeps; parent starts a sleep (its pid in FX.child) and
 * waits for it. */
static const char act_sh[] =
    "#!/bin/sh\n"
    "in=$(cat)\n"
    "key=$(printf '%s\\n' \"$in\" |"
    " sed -n 's/.*\"idempotency_key\":\"\\([^\"]*\\)\".*/\\1/p')\n"
    "att=$(printf '%s\\n' \"$in\" |"
    " sed -n 's/.*\"attempt\":\\([0-9]*\\).*/\\1/p')\n"
    "params=$(printf '%s\\n' \"$in\" |"
    " sed -n 's/^{\"params\":\\(.*\\),\"inputs\":.*/\\1/p')\n"
    "printf '%s\\n' \"$in\" >> \"$1.in\"\n"
    "printf '%s %s %s\\n' \"$2\" \"$key\" \"$att\" >> \"$1\"\n"
    "case \"$3\" in\n"
    "flaky)\n"
    "    if [ \"$att\" -le \"$4\" ]; then\n"
    "        echo \"$2: attempt $att refuses\" >&2\n"
    "        exit 3\n"
    "    fi ;;\n"
    "fatal)\n"
    "    printf '{\"error\":{\"type\":\"denied\",\"message\":\"%s says no\","
    "\"retryable\":false}}\\n' \"$2\"\n"
    "    exit 0 ;;\n"
    "noisy)\n"
    "    cat \"$1.noise\" >&2\n"
    "    exit 5 ;;\n"
    "slow)\n"
    "    echo $$ > \"$1.pid\"\n"
    "    exec sleep 120 ;;\n"
    "parent)\n"
    "    sleep 120 </dev/null >/dev/null 2>&1 &\n"
    "    echo $! > \"$1.child\"\n"
    "    wait\n"
    "    exit 0 ;;\n"
    "esac\n"
    "printf '{\"step\":\"%s\",\"attempt\":%s,\"params\":%s}\\n'"
    " \"$2\" \"$att\" \"$params\"\n";

/* ------------------------------------------------------------------ */
/* Files                                                              */
/* ------------------------------------------------------------------ */

/* dir/name, in one of a few rotating static buffers. */
static const char *in_dir(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];

    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

static char *slurp_or_empty(const char *path)
{
    size_t n;
    char *s = tu_read_file(path, &n);

    return s ? s : strdup("");
}

/* Writes a definition to dir/NAME.json, with every "@ACT@" replaced by
 * the exec: action of act.sh and the side-effect file; returns its path,
 * valid until the test ends. */
static const char *def_file(const char *name, const char *text)
{
    char act[1024], *buf, fname[128];
    const char *p, *q, *path;
    size_t cap, n = 0;

    snprintf(act, sizeof(act), "exec:%s %s", in_dir("act.sh"), fx);
    cap = strlen(text) * 2 + 16 * strlen(act) + 1;
    buf = malloc(cap);
    cr_assert_not_null(buf);
    for (p = text; (q = strstr(p, "@ACT@")); p = q + 5) {
        cr_assert_lt(n + (size_t)(q - p) + strlen(act), cap);
        memcpy(buf + n, p, (size_t)(q - p));
        n += (size_t)(q - p);
        memcpy(buf + n, act, strlen(act));
        n += strlen(act);
    }
    cr_assert_lt(n + strlen(p), cap);
    memcpy(buf + n, p, strlen(p) + 1);
    snprintf(fname, sizeof(fname), "%s.json", name);
    cr_assert_lt(ndefs, sizeof(defs) / sizeof(*defs));
    path = defs[ndefs++] = strdup(in_dir(fname));
    cr_assert_eq(tu_write_file(path, buf, strlen(buf)), 0);
    free(buf);
    return path;
}

/* def_file with the text made by printf from fmt. */
static const char *def_filef(const char *name, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(text));
    return def_file(name, text);
}

static int exec_exists(const char *id)
{
    char *p = tu_path(store, id, "events.jsonl");
    int ok = access(p, F_OK) == 0;

    free(p);
    return ok;
}

/* The side-effect file's lines, sorted, as one string (concurrent steps
 * append in any order). */
static char *fx_sorted(void)
{
    char *s = slurp_or_empty(fx), *lines[64], *out, *save = NULL;
    size_t n = 0, len = strlen(s);

    for (char *t = strtok_r(s, "\n", &save); t && n < 64;
         t = strtok_r(NULL, "\n", &save))
        lines[n++] = t;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *x = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = x;
        }
    out = calloc(1, len + n + 1);
    cr_assert_not_null(out);
    len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(out + len, "%s\n", lines[i]);
    free(s);
    return out;
}

static void setup(void)
{
    char *noise;
    FILE *f;

    cr_assert_not_null(getenv("EVRUN"), "EVRUN must name the binary");
    cr_assert_not_null(getenv("EVDUMP"), "EVDUMP must name the binary");
    /* Under the sanitizers, undefined behaviour in a tool is an exit
     * status, not a line nobody reads. */
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1", 0);
    dir = tu_tmpdir("evrun");
    cr_assert_not_null(dir);
    store = strdup(in_dir("store"));
    /* evrun start and serve create no store without --create. */
    cr_assert_eq(mkdir(store, 0700), 0);
    fx = strdup(in_dir("fx"));
    f = fopen(in_dir("act.sh"), "w");
    cr_assert_not_null(f);
    fputs(act_sh, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(in_dir("act.sh"), 0755), 0);
    /* 10 KiB of stderr, its first and last words marked. */
    noise = malloc(10240 + 1);
    cr_assert_not_null(noise);
    memset(noise, 'n', 10240);
    memcpy(noise, "HEAD-MARK ", 10);
    memcpy(noise + 10240 - 11, " TAIL-MARK\n", 11);
    noise[10240] = '\0';
    cr_assert_eq(tu_write_file(in_dir("fx.noise"), noise, 10240), 0);
    free(noise);
}

static void teardown(void)
{
    if (serve_pid > 0) {
        kill(serve_pid, SIGKILL);
        waitpid(serve_pid, NULL, 0);
        serve_pid = -1;
    }
    while (ndefs > 0)
        free(defs[--ndefs]);
    free(store);
    free(fx);
    tu_rmtree_free(dir);
}

TestSuite(evrun, .init = setup, .fini = teardown, .timeout = 90);

/* ------------------------------------------------------------------ */
/* Running the binaries                                               */
/* ------------------------------------------------------------------ */

typedef struct result {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
} result;

static result collect(const char *tag, int status)
{
    char name[64];
    result r;

    r.status = status;
    snprintf(name, sizeof(name), "%s.out", tag);
    r.out = slurp_or_empty(in_dir(name));
    snprintf(name, sizeof(name), "%s.err", tag);
    r.err = slurp_or_empty(in_dir(name));
    return r;
}

static result run_tool(const char *bin, const char *const *args)
{
    return collect("run", tu_wait_exit(tu_spawn_tool(bin, dir, "run", args)));
}

#define EVRUN(...) run_tool("EVRUN", (const char *const[]){__VA_ARGS__, NULL})
#define EVDUMP(...) run_tool("EVDUMP", (const char *const[]){__VA_ARGS__, NULL})
#define EVREPLAY(...)                                                          \
    run_tool("EVREPLAY", (const char *const[]){__VA_ARGS__, NULL})

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The n-th line (0-based) of s, heap memory, without its newline. */
static char *nth_line(const char *s, size_t n)
{
    const char *e;

    while (n-- > 0) {
        s = strchr(s, '\n');
        cr_assert_not_null(s);
        s++;
    }
    e = strchr(s, '\n');
    if (!e)
        e = s + strlen(s);
    return strndup(s, (size_t)(e - s));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether a process has ended: gone, or a zombie nobody reaped yet. */
static int process_ended(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "r")))
        return 1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* Waits up to 10 s for a process to end (a SIGKILL is not instant);
 * kills it if it does not, and says whether it had ended. */
static int await_ended(pid_t pid)
{
    double deadline = now_s() + 10;

    while (!process_ended(pid) && now_s() < deadline)
        sleep_ms(10);
    if (process_ended(pid))
        return 1;
    kill(pid, SIGKILL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */
/* ------------------------------------------------------------------ */

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);

    cr_assert_not_null(o, "not JSON: %s", text);
    return o;
}

/* Asserts that `text` is JSON equal to `want` (members in any order). */
static void assert_json_eq(const char *text, const char *want)
{
    json_object *a = parse(text), *b = parse(want);

    cr_assert(json_object_equal(a, b), "got %s\nexpected %s", text, want);
    json_object_put(a);
    json_object_put(b);
}

/* A member of a parsed object, as compact JSON text (heap memory). */
static char *member(json_object *o, const char *name)
{
    json_object *m;

    cr_assert(json_object_object_get_ex(o, name, &m), "no member %s in %s",
              name, json_object_to_json_string(o));
    return strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
}

/* A string member of a parsed object (heap memory). */
static char *str_member(json_object *o, const char *name)
{
    json_object *m;

    cr_assert(json_object_object_get_ex(o, name, &m), "no member %s in %s",
              name, json_object_to_json_string(o));
    cr_assert(json_object_is_type(m, json_type_string), "%s is not a string",
              name);
    return strdup(json_object_get_string(m));
}

/* `evrun status STORE ID --json`, parsed. */
static json_object *status_json(const char *id)
{
    result r = EVRUN("status", store, id, "--json");
    json_object *o;

    cr_assert_eq(r.status, 0, "status %s: %s", id, r.err);
    cr_assert_eq(count_lines(r.out), 1, "status output: %s", r.out);
    o = parse(r.out);
    result_free(&r);
    return o;
}

/* The status string of an execution (heap memory). */
static char *status_of(const char *id)
{
    json_object *o = status_json(id), *m;
    char *s;

    cr_assert(json_object_object_get_ex(o, "status", &m));
    s = strdup(json_object_get_string(m));
    json_object_put(o);
    return s;
}

/* Polls status --json until the execution has status `want`, for at most
 * 30 s; asserts that it got there. */
static void await_status(const char *id, const char *want)
{
    double deadline = now_s() + 30;
    char *s = NULL;

    for (;;) {
        free(s);
        s = status_of(id);
        if (strcmp(s, want) == 0 || now_s() > deadline)
            break;
        sleep_ms(20);
    }
    cr_assert_str_eq(s, want, "%s never became %s", id, want);
    free(s);
}

/* How many events of `type` the log of `id` holds (via evdump show). */
static size_t count_events(const char *id, const char *type)
{
    result r = EVDUMP("show", store, id, "--type", type, "--json");
    size_t n;

    cr_assert_eq(r.status, 0, "evdump show %s: %s", id, r.err);
    n = count_lines(r.out);
    result_free(&r);
    return n;
}

/* The n-th (0-based) event of `type` in the log of `id`, parsed. */
static json_object *event_of(const char *id, const char *type, size_t n)
{
    result r = EVDUMP("show", store, id, "--type", type, "--json");
    json_object *o;
    char *line;

    cr_assert_eq(r.status, 0, "evdump show %s: %s", id, r.err);
    cr_assert_gt(count_lines(r.out), n, "%s has no %s #%zu", id, type, n);
    line = nth_line(r.out, n);
    o = parse(line);
    free(line);
    result_free(&r);
    return o;
}

/* Asserts a run exited with `status` and printed "ID OUTCOME" then one
 * JSON line equal to `json`. */
static void assert_outcome(const result *r, int status, const char *id,
                           const char *outcome, const char *json)
{
    char *first, want[256];

    cr_assert_eq(r->status, status, "exit %d, stdout:\n%s\nstderr:\n%s",
                 r->status, r->out, r->err);
    cr_assert_eq(count_lines(r->out), 2, "stdout:\n%s", r->out);
    first = nth_line(r->out, 0);
    snprintf(want, sizeof(want), "%s %s", id, outcome);
    cr_assert_str_eq(first, want);
    free(first);
    first = nth_line(r->out, 1);
    assert_json_eq(first, json);
    free(first);
}

/* ------------------------------------------------------------------ */
/* start: workflows that complete                                     */
/* ------------------------------------------------------------------ */

/* Without --id the execution gets a new UUIDv7, and evrun runs it to
 * its end as with one (it once looked the id up as a string it was not
 * given). */
Test(evrun, start_without_an_id_runs_under_a_new_one)
{
    const char *def =
        def_file("noid", "{\"name\":\"noid\",\"steps\":[{\"name\":\"a\","
                         "\"kind\":\"action\",\"action\":\"echo\"}]}");
    result r = EVRUN("start", store, def);

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_eq(strlen(r.out) > EVS_UUID_LEN, 1, "%s", r.out);
    cr_assert_str_eq(r.out + EVS_UUID_LEN, " completed\nnull\n", "%s", r.out);
    cr_assert_str_eq(r.err, "");
    result_free(&r);
}

Test(evrun, start_of_a_linear_workflow_prints_completed_and_its_outputs)
{
    const char *def = def_file(
        "linear",
        "{\"name\":\"linear\","
        " \"inputs\":{\"who\":{\"type\":\"string\",\"default\":\"ana\"}},"
        " \"outputs\":{\"first\":\"${steps.a.output}\",\"last\":\"${vars.c}\"},"
        " \"steps\":["
        "  {\"name\":\"a\",\"kind\":\"action\",\"action\":\"@ACT@ a ok\","
        "   \"params\":{\"who\":\"${inputs.who}\"},\"next\":\"b\"},"
        "  {\"name\":\"b\",\"kind\":\"action\",\"action\":\"@ACT@ b ok\","
        "   \"next\":\"c\"},"
        "  {\"name\":\"c\",\"kind\":\"action\",\"action\":\"@ACT@ c ok\","
        "   \"store\":\"c\"}]}");
    result r = EVRUN("start", store, def, "--id", "lin1");
    char *effects;

    /* Exact bytes: the outputs are the rendered template, compact. */
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "lin1 completed\n"
                            "{\"first\":{\"step\":\"a\",\"attempt\":1,"
                            "\"params\":{\"who\":\"ana\"}},"
                            "\"last\":{\"step\":\"c\",\"attempt\":1,"
                            "\"params\":null}}\n");
    cr_assert_str_eq(r.err, "");
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "a lin1/main/a/-1 1\n"
                              "b lin1/main/b/-1 1\n"
                              "c lin1/main/c/-1 1\n");
    free(effects);
    result_free(&r);
}

Test(evrun, start_of_a_branching_workflow_joins_both_paths_then_goes_on)
{
    const char *def = def_file(
        "fanout",
        "{\"name\":\"fanout\",\"outputs\":{\"both\":\"${vars.both}\","
        " \"after\":\"${steps.after.output.step}\"},"
        " \"steps\":["
        "  {\"name\":\"plan\",\"kind\":\"action\",\"action\":\"echo\","
        "   \"next\":[{\"to\":\"left\",\"path\":\"l\"},"
        "            {\"to\":\"right\",\"path\":\"r\"}],\"then\":\"j\"},"
        "  {\"name\":\"left\",\"kind\":\"action\",\"action\":\"@ACT@ left ok\","
        "   \"params\":\"L\"},"
        "  {\"name\":\"right\",\"kind\":\"action\","
        "   \"action\":\"@ACT@ right ok\",\"params\":\"R\"},"
        "  {\"name\":\"j\",\"kind\":\"join\",\"paths\":[\"l\",\"r\"],"
        "   \"store\":\"both\",\"next\":\"after\"},"
        "  {\"name\":\"after\",\"kind\":\"action\","
        "   \"action\":\"@ACT@ after ok\"}]}");
    result r = EVRUN("start", store, def, "--id", "br1");
    char *effects, *last;

    assert_outcome(&r, 0, "br1", "completed",
                   "{\"both\":{\"l\":{\"step\":\"left\",\"attempt\":1,"
                   "\"params\":\"L\"},\"r\":{\"step\":\"right\","
                   "\"attempt\":1,\"params\":\"R\"}},\"after\":\"after\"}");
    effects = fx_sorted();
    cr_assert_str_eq(effects, "after br1/main/after/-1 1\n"
                              "left br1/main.l/left/-1 1\n"
                              "right br1/main.r/right/-1 1\n");
    free(effects);
    /* The step after the join ran after both branches. */
    effects = slurp_or_empty(fx);
    last = nth_line(effects, 2);
    cr_assert_str_eq(last, "after br1/main/after/-1 1");
    free(last);
    free(effects);
    cr_assert_eq(count_events("br1", "path_branched"), 1);
    result_free(&r);
}

Test(evrun, start_of_an_each_step_runs_every_item_and_outputs_in_item_order)
{
    const char *def = def_file(
        "each",
        "{\"name\":\"per_item\","
        " \"inputs\":{\"items\":{\"type\":\"array\",\"required\":true}},"
        " \"outputs\":\"${vars.all}\","
        " \"steps\":["
        "  {\"name\":\"t\",\"kind\":\"action\",\"action\":\"@ACT@ t ok\","
        "   \"each\":\"${inputs.items}\","
        "   \"params\":{\"x\":\"${item}\",\"i\":\"${index}\"},"
        "   \"store\":\"all\"}]}");
    result r = EVRUN("start", store, def, "--id", "ea1", "--input",
                     "{\"items\":[\"p\",\"q\",\"r\"]}");
    char *effects;

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "ea1 completed\n"
                            "[{\"step\":\"t\",\"attempt\":1,"
                            "\"params\":{\"x\":\"p\",\"i\":0}},"
                            "{\"step\":\"t\",\"attempt\":1,"
                            "\"params\":{\"x\":\"q\",\"i\":1}},"
                            "{\"step\":\"t\",\"attempt\":1,"
                            "\"params\":{\"x\":\"r\",\"i\":2}}]\n");
    effects = fx_sorted();
    cr_assert_str_eq(effects, "t ea1/main/t/0 1\n"
                              "t ea1/main/t/1 1\n"
                              "t ea1/main/t/2 1\n");
    free(effects);
    result_free(&r);
}

static const char cond_def[] =
    "{\"name\":\"cond\","
    " \"inputs\":{\"n\":{\"type\":\"integer\",\"required\":true}},"
    " \"steps\":["
    "  {\"name\":\"measure\",\"kind\":\"action\",\"action\":\"echo\","
    "   \"params\":{\"n\":\"${inputs.n}\"},\"store\":\"m\","
    "   \"next\":[{\"to\":\"big\",\"when\":{\"gt\":[\"${vars.m.n}\",10]}},"
    "            {\"to\":\"small\","
    "             \"when\":{\"not\":{\"gt\":[\"${vars.m.n}\",10]}}}]},"
    "  {\"name\":\"big\",\"kind\":\"action\",\"action\":\"@ACT@ big ok\","
    "   \"params\":{\"n\":\"${vars.m.n}\"}},"
    "  {\"name\":\"small\",\"kind\":\"action\",\"action\":\"@ACT@ small ok\","
    "   \"params\":{\"n\":\"${vars.m.n}\"}}]}";

Test(evrun, start_of_a_conditional_workflow_takes_the_edge_that_holds)
{
    const char *def = def_file("cond", cond_def);
    result r =
        EVRUN("start", store, def, "--id", "c1", "--input", "{\"n\":50}");
    char *effects;

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "c1 completed\n"
                            "{\"step\":\"big\",\"attempt\":1,"
                            "\"params\":{\"n\":50}}\n");
    result_free(&r);
    r = EVRUN("start", store, def, "--id", "c2", "--input", "{\"n\":3}");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "c2 completed\n"
                            "{\"step\":\"small\",\"attempt\":1,"
                            "\"params\":{\"n\":3}}\n");
    /* One matching edge without a path moves on: no branch, path main. */
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "big c1/main/big/-1 1\n"
                              "small c2/main/small/-1 1\n");
    free(effects);
    cr_assert_eq(count_events("c1", "path_branched"), 0);
    cr_assert_eq(count_events("c2", "path_branched"), 0);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* start: failures and refusals                                       */
/* ------------------------------------------------------------------ */

Test(evrun, start_of_a_failing_workflow_exits_1_with_the_error_json)
{
    const char *def = def_file(
        "doomed",
        "{\"name\":\"doomed\",\"steps\":["
        "  {\"name\":\"first\",\"kind\":\"action\",\"action\":\"echo\","
        "   \"next\":\"boom\"},"
        "  {\"name\":\"boom\",\"kind\":\"action\",\"action\":\"fail\","
        "   \"params\":{\"times\":3,\"fatal\":true}}]}");
    result r = EVRUN("start", store, def, "--id", "f1");
    json_object *o, *st;
    char *line, *err;

    cr_assert_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_eq(count_lines(r.out), 2, "stdout: %s", r.out);
    line = nth_line(r.out, 0);
    cr_assert_str_eq(line, "f1 failed");
    free(line);
    line = nth_line(r.out, 1);
    o = parse(line);
    err = member(o, "type");
    cr_assert_str_eq(err, "\"fatal\"");
    free(err);
    err = member(o, "retryable");
    cr_assert_str_eq(err, "false");
    free(err);
    json_object_put(o);
    /* status shows the same error. */
    st = status_json("f1");
    err = member(st, "status");
    cr_assert_str_eq(err, "\"failed\"");
    free(err);
    err = member(st, "error");
    assert_json_eq(err, line);
    free(err);
    json_object_put(st);
    free(line);
    result_free(&r);
}

/* A refused definition is bad data, not bad usage: exit 3 (2 before),
 * the step named, no pointer to --help. */
Test(evrun, start_of_a_bad_definition_exits_3_naming_the_step)
{
    static const struct {
        const char *text, *step;
    } bad[] = {
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"first\",\"kind\":\"action\","
         "\"action\":\"echo\",\"next\":\"second\"},{\"name\":\"second\","
         "\"kind\":\"action\",\"action\":\"echo\",\"colour\":\"red\"}]}",
         "second"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"lost\",\"kind\":\"action\","
         "\"action\":\"echo\",\"next\":\"nowhere\"}]}",
         "lost"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"first\",\"kind\":\"action\","
         "\"action\":\"echo\",\"next\":\"tpl\"},{\"name\":\"tpl\","
         "\"kind\":\"action\",\"action\":\"echo\","
         "\"params\":\"${steps.ghost.output}\"}]}",
         "tpl"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"retry_me\","
         "\"kind\":\"action\",\"action\":\"echo\","
         "\"retry\":{\"backoff_coefficient\":0.5}}]}",
         "retry_me"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char id[16], want[96];
        const char *def = def_file("bad", bad[i].text);
        result r;

        snprintf(id, sizeof(id), "bad%zu", i);
        r = EVRUN("start", store, def, "--id", id);
        snprintf(want, sizeof(want), ": %s: ", bad[i].step);
        cr_assert_eq(r.status, 3, "case %zu: exit %d, stderr %s", i, r.status,
                     r.err);
        cr_assert_null(strstr(r.err, "--help"), "case %zu: %s", i, r.err);
        cr_assert_not_null(strstr(r.err, want), "case %zu: stderr %s", i,
                           r.err);
        cr_assert_str_eq(r.out, "");
        cr_assert(!exec_exists(id), "case %zu created %s", i, id);
        result_free(&r);
    }
}

/* Writes an executable script into the test's directory; returns its
 * path (in_dir's rotating buffers). */
static const char *script_file(const char *name, const char *text)
{
    const char *path = in_dir(name);

    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    cr_assert_eq(chmod(path, 0755), 0);
    return path;
}

/* Issue 14, defect 8: an echo that leads back to itself went round at
 * full speed for ever. `start` refuses it, naming the step and why, and
 * creates nothing. (--detach: if it were accepted, the test fails at
 * once instead of spinning.) */
Test(evrun, start_refuses_a_loop_that_can_never_wait_or_end)
{
    const char *def = def_file(
        "spin",
        "{\"name\":\"spin\",\"steps\":[{\"name\":\"a\",\"kind\":\"action\","
        "\"action\":\"echo\",\"next\":\"a\"}]}");
    result r = EVRUN("start", store, def, "--id", "spin1", "--detach");
    char want[1024];

    cr_assert_eq(r.status, 3, "exit %d, stdout %s, stderr %s", r.status, r.out,
                 r.err);
    snprintf(want, sizeof(want),
             "evrun: %s: a: this loop can never wait or "
             "end: a -> a (",
             def);
    cr_assert(strstr(r.err, want) == r.err, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert(!exec_exists("spin1"));
    result_free(&r);
}

/* A step that only a continue_as_new's start_at leads to was refused as
 * unreachable; it is where the successor starts. */
Test(evrun, a_step_reached_through_start_at_runs_in_the_successor)
{
    const char *def = def_file(
        "roll", "{\"name\":\"roll\",\"steps\":["
                "  {\"name\":\"first\",\"kind\":\"action\","
                "   \"action\":\"@ACT@ first ok\",\"next\":\"roll\"},"
                "  {\"name\":\"roll\",\"kind\":\"continue_as_new\","
                "   \"start_at\":\"later\"},"
                "  {\"name\":\"later\",\"kind\":\"action\","
                "   \"action\":\"@ACT@ later ok\",\"params\":\"L\"}]}");
    result r = EVRUN("start", store, def, "--id", "ro1");
    char *effects;

    assert_outcome(&r, 0, "ro1.c2", "completed",
                   "{\"step\":\"later\",\"attempt\":1,\"params\":\"L\"}");
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "first ro1/main/first/-1 1\n"
                              "later ro1.c2/main/later/-1 1\n");
    free(effects);
    cr_assert_eq(count_events("ro1", "execution_continue_as_new"), 1);
    result_free(&r);
}

/* count.sh FILE: adds a line to FILE and answers how many it has. */
static const char count_sh[] = "#!/bin/sh\n"
                               "cat >/dev/null\n"
                               "echo x >> \"$1\"\n"
                               "wc -l < \"$1\"\n";

/* An edge back to a step the path already ran does not fail the path
 * (WORKFLOWS.md §3 said error type `loop`): the path completes and a
 * continuation path, main~2 then main~3, goes on at that step. */
Test(evrun, a_loop_goes_on_in_continuation_paths)
{
    char text[1024], *effects;
    const char *def;
    json_object *ev, *data;
    result r;

    snprintf(text, sizeof(text),
             "{\"name\":\"loop\",\"outputs\":\"${vars.n}\",\"steps\":["
             " {\"name\":\"tick\",\"kind\":\"action\","
             "  \"action\":\"exec:%s %s\",\"store\":\"n\","
             "  \"next\":[{\"to\":\"tick\","
             "            \"when\":{\"lt\":[\"${vars.n}\",3]}}]}]}",
             script_file("count.sh", count_sh), in_dir("ticks"));
    def = def_file("loop", text);
    r = EVRUN("start", store, def, "--id", "lp1");
    assert_outcome(&r, 0, "lp1", "completed", "3");
    result_free(&r);
    effects = slurp_or_empty(in_dir("ticks"));
    cr_assert_str_eq(effects, "x\nx\nx\n");
    free(effects);
    cr_assert_eq(count_events("lp1", "step_failed"), 0);
    /* main, then its continuations. */
    cr_assert_eq(count_events("lp1", "path_started"), 3);
    for (size_t i = 0; i < 2; i++) {
        char *m;

        ev = event_of("lp1", "path_started", i + 1);
        m = str_member(ev, "path_id");
        cr_assert_str_eq(m, i == 0 ? "main~2" : "main~3");
        free(m);
        cr_assert(json_object_object_get_ex(ev, "data", &data));
        m = str_member(data, "parent");
        cr_assert_str_eq(m, i == 0 ? "main" : "main~2");
        free(m);
        m = str_member(data, "current_step");
        cr_assert_str_eq(m, "tick");
        free(m);
        json_object_put(ev);
    }
}

/* With strict_inputs, start refuses an input the definition does not
 * declare (a typo would otherwise surface only where it is used), and a
 * reference to one, naming its step. */
Test(evrun, start_with_strict_inputs_refuses_undeclared_ones)
{
    const char *def = def_file(
        "strict",
        "{\"name\":\"strict\",\"strict_inputs\":true,"
        " \"inputs\":{\"url\":{\"type\":\"string\",\"required\":true}},"
        " \"steps\":[{\"name\":\"get\",\"kind\":\"action\",\"action\":\"echo\","
        "  \"params\":{\"u\":\"${inputs.url}\"}}]}");
    result r = EVRUN("start", store, def, "--id", "st1", "--input",
                     "{\"url\":\"x\",\"urll\":\"y\"}");
    char want[1024];

    /* The inputs are at fault, not the definition: blamed on --input. */
    cr_assert_eq(r.status, 3, "exit %d, stderr %s", r.status, r.err);
    cr_assert_str_eq(r.err, "evrun: --input: input \"urll\" is not declared "
                            "(the definition has strict_inputs)\n");
    cr_assert(!exec_exists("st1"));
    result_free(&r);
    r = EVRUN("start", store, def, "--id", "st2", "--input", "{\"url\":\"x\"}");
    assert_outcome(&r, 0, "st2", "completed", "{\"u\":\"x\"}");
    result_free(&r);

    def = def_file(
        "strict_ref",
        "{\"name\":\"strict\",\"strict_inputs\":true,"
        " \"inputs\":{\"url\":{\"type\":\"string\",\"required\":true}},"
        " \"steps\":[{\"name\":\"get\",\"kind\":\"action\",\"action\":\"echo\","
        "  \"params\":{\"u\":\"${inputs.uri}\"}}]}");
    r = EVRUN("start", store, def, "--id", "st3", "--input", "{\"url\":\"x\"}");
    cr_assert_eq(r.status, 3, "exit %d, stderr %s", r.status, r.err);
    snprintf(want, sizeof(want),
             "evrun: %s: get: params: \"${inputs.uri}\" "
             "names no declared input",
             def);
    cr_assert(strstr(r.err, want) == r.err, "stderr: %s", r.err);
    cr_assert(!exec_exists("st3"));
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* Waiting for an event                                               */
/* ------------------------------------------------------------------ */

static const char gate_def[] =
    "{\"name\":\"gate\",\"steps\":["
    "  {\"name\":\"w\",\"kind\":\"wait_event\",\"event\":\"go\","
    "   \"store\":\"g\",\"next\":\"after\"},"
    "  {\"name\":\"after\",\"kind\":\"action\",\"action\":\"@ACT@ after ok\","
    "   \"params\":{\"g\":\"${vars.g}\"}}]}";

Test(evrun, a_waiting_workflow_suspends_then_send_and_resume_complete_it)
{
    const char *def = def_file("gate", gate_def);
    result r = EVRUN("start", store, def, "--id", "w1");
    json_object *st;
    char *m, *effects;

    cr_assert_eq(r.status, 4, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_str_eq(r.out, "w1 suspended\n");
    result_free(&r);
    st = status_json("w1");
    m = member(st, "status");
    cr_assert_str_eq(m, "\"waiting\"");
    free(m);
    m = member(st, "pending_waits");
    cr_assert_str_eq(m, "1");
    free(m);
    json_object_put(st);

    r = EVRUN("send", store, "w1", "go", "{\"ok\":true}");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    /* Nobody owns it: the event waits in the inbox. */
    m = status_of("w1");
    cr_assert_str_eq(m, "waiting");
    free(m);

    r = EVRUN("resume", store, "w1");
    cr_assert_eq(r.status, 0, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_str_eq(r.out, "w1 completed\n"
                            "{\"step\":\"after\",\"attempt\":1,"
                            "\"params\":{\"g\":{\"ok\":true}}}\n");
    result_free(&r);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "after w1/main/after/-1 1\n");
    free(effects);
    m = status_of("w1");
    cr_assert_str_eq(m, "completed");
    free(m);
}

/* Appends half a line to the log at `path`: a torn tail. */
static void tear(const char *path)
{
    const char torn[] = "{\"v\":1,\"id\":\"half";
    FILE *f = fopen(path, "ab");

    cr_assert_not_null(f);
    cr_assert_eq(fwrite(torn, 1, sizeof(torn) - 1, f), sizeof(torn) - 1);
    cr_assert_eq(fclose(f), 0);
}

/* The library's log records reach stderr as --log-format says: a torn
 * tail that resume cuts back is one JSON object naming the execution,
 * and in the default text form a sentence with the tool's name. */
Test(evrun, log_records_go_to_stderr_in_the_format_asked)
{
    const char *def = def_file("gate", gate_def);
    result r = EVRUN("start", store, def, "--id", "t1");
    char *log = tu_path(store, "t1", "events.jsonl");
    json_object *o, *v;

    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    result_free(&r);
    tear(log);

    r = EVRUN("resume", store, "t1", "--log-format", "json");
    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    o = json_tokener_parse(r.err);
    cr_assert_not_null(o, "not JSON: %s", r.err);
    cr_assert(json_object_object_get_ex(o, "level", &v));
    cr_assert_str_eq(json_object_get_string(v), "warn");
    cr_assert(json_object_object_get_ex(o, "component", &v));
    cr_assert_str_eq(json_object_get_string(v), "store");
    cr_assert(json_object_object_get_ex(o, "execution", &v), "%s", r.err);
    cr_assert_str_eq(json_object_get_string(v), "t1");
    cr_assert(json_object_object_get_ex(o, "msg", &v));
    cr_assert_not_null(strstr(json_object_get_string(v), "torn tail"), "%s",
                       r.err);
    json_object_put(o);
    result_free(&r);

    /* Nothing left to cut: nothing logged; then text, at the default
     * level, after another tear. */
    r = EVRUN("resume", store, "t1", "--log-format=logfmt");
    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    cr_assert_str_eq(r.err, "");
    result_free(&r);
    tear(log);
    r = EVRUN("resume", store, "t1");
    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    cr_assert_eq(strncmp(r.err, "evrun: warning: execution t1: ", 30), 0, "%s",
                 r.err);
    result_free(&r);
    /* --log-level error hides the warning. */
    tear(log);
    r = EVRUN("resume", store, "t1", "--log-level", "error");
    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    cr_assert_str_eq(r.err, "");
    result_free(&r);

    r = EVRUN("resume", store, "t1", "--log-format", "xml");
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err, "--log-format takes text, logfmt or json"),
                       "%s", r.err);
    result_free(&r);
    free(log);
}

/* gate_def with a timeout of `ms` on its wait. */
static const char *timed_gate_def(const char *name, const char *ms)
{
    return def_filef(
        name,
        "{\"name\":\"timed\",\"steps\":["
        "  {\"name\":\"w\",\"kind\":\"wait_event\",\"event\":\"go\","
        "   \"timeout_ms\":%s,\"store\":\"g\",\"next\":\"after\"},"
        "  {\"name\":\"after\",\"kind\":\"action\","
        "   \"action\":\"@ACT@ after ok\"}]}",
        ms);
}

Test(evrun, resume_fires_a_wait_timeout_that_passed_while_suspended)
{
    const char *far = timed_gate_def("far", "600000");
    const char *near = timed_gate_def("near", "300");
    result r;
    char *effects;

    /* A timeout not yet due: start and resume suspend. */
    r = EVRUN("start", store, far, "--id", "far");
    cr_assert_eq(r.status, 4, "stdout: %s\nstderr: %s", r.out, r.err);
    result_free(&r);
    r = EVRUN("resume", store, "far");
    cr_assert_eq(r.status, 4, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_str_eq(r.out, "far suspended\n");
    result_free(&r);

    /* A timeout that passed while no runner owned the execution fires as
     * resume takes it (a slow start may have fired it already). */
    r = EVRUN("start", store, near, "--id", "near");
    cr_assert(r.status == 4 || r.status == 1, "stdout: %s\nstderr: %s", r.out,
              r.err);
    result_free(&r);
    sleep_ms(400); /* the wait started before start returned */
    r = EVRUN("resume", store, "near");
    assert_outcome(&r, 1, "near", "failed",
                   "{\"type\":\"timeout\",\"message\":\"no \\\"go\\\" event "
                   "within 300 ms\",\"retryable\":false}");
    result_free(&r);
    cr_assert_eq(count_events("near", "wait_ended"), 1);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "", "after ran: %s", effects);
    free(effects);
}

/* Sets n to 1, continues as new at "b" carrying n, where n is 2 and the
 * run goes on to `last` (JSON: a step named "last"). */
static const char *rolled_def(const char *name, const char *last)
{
    return def_filef(name,
                     "{\"name\":\"rolled\",\"steps\":["
                     "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"echo\","
                     "\"params\":1,\"store\":\"n\",\"next\":\"b\"},"
                     "{\"name\":\"b\",\"kind\":\"action\",\"action\":\"echo\","
                     "\"params\":\"${vars.n}\",\"next\":["
                     "{\"to\":\"c\",\"when\":{\"eq\":[\"${vars.n}\",1]}},"
                     "{\"to\":\"last\",\"when\":{\"eq\":[\"${vars.n}\",2]}}]},"
                     "{\"name\":\"c\",\"kind\":\"action\",\"action\":\"echo\","
                     "\"params\":2,\"store\":\"n\",\"next\":\"roll\"},"
                     "{\"name\":\"roll\",\"kind\":\"continue_as_new\","
                     "\"start_at\":\"b\",\"carry\":[\"n\"]},"
                     "%s]}",
                     last);
}

Test(evrun, resume_of_a_chain_that_completed_reports_its_last_outcome)
{
    const char *def = rolled_def(
        "rolled", "{\"name\":\"last\",\"kind\":\"action\",\"action\":\"echo\","
                  "\"params\":{\"r\":\"ok\"}}");
    result r;

    r = EVRUN("start", store, def, "--id", "m");
    assert_outcome(&r, 0, "m.c2", "completed", "{\"r\":\"ok\"}");
    result_free(&r);
    /* Any member: the chain's outcome, its outputs and exit 0. */
    r = EVRUN("resume", store, "m");
    assert_outcome(&r, 0, "m.c2", "completed", "{\"r\":\"ok\"}");
    result_free(&r);
    r = EVRUN("resume", store, "m.c2");
    assert_outcome(&r, 0, "m.c2", "completed", "{\"r\":\"ok\"}");
    result_free(&r);
}

Test(evrun, requests_to_a_member_that_continued_reach_the_last_one)
{
    const char *def = rolled_def(
        "rolledwait",
        "{\"name\":\"last\",\"kind\":\"wait_event\",\"event\":\"go\","
        "\"store\":\"g\",\"next\":\"out\"},"
        "{\"name\":\"out\",\"kind\":\"action\",\"action\":\"echo\","
        "\"params\":{\"got\":\"${vars.g}\"}}");
    result r;
    char *m;

    r = EVRUN("start", store, def, "--id", "k");
    cr_assert_eq(r.status, 4, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_str_eq(r.out, "k.c2 suspended\n");
    result_free(&r);
    r = EVRUN("resume", store, "k");
    cr_assert_eq(r.status, 4, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_str_eq(r.out, "k.c2 suspended\n");
    result_free(&r);
    /* An event sent to the first member waits for the last one. */
    r = EVRUN("send", store, "k", "go", "{\"x\":1}");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "k");
    assert_outcome(&r, 0, "k.c2", "completed", "{\"got\":{\"x\":1}}");
    result_free(&r);
    r = EVRUN("send", store, "k", "go", "2");
    cr_assert_eq(r.status, 1, "the chain has ended; stderr: %s", r.err);
    result_free(&r);

    /* A terminate the same way: resume then reports it, exit 1. */
    r = EVRUN("start", store, def, "--id", "t");
    cr_assert_eq(r.status, 4, "stdout: %s\nstderr: %s", r.out, r.err);
    result_free(&r);
    r = EVRUN("terminate", store, "t", "enough");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "t");
    assert_outcome(&r, 1, "t.c2", "terminated", "\"enough\"");
    result_free(&r);
    m = status_of("t");
    cr_assert_str_eq(m, "continued");
    free(m);
}

Test(evrun, send_to_a_finished_execution_is_refused_with_exit_1)
{
    const char *def = def_file(
        "linear1",
        "{\"name\":\"one\",\"steps\":[{\"name\":\"a\",\"kind\":\"action\","
        "\"action\":\"echo\"}]}");
    result r = EVRUN("start", store, def, "--id", "done1");
    char *inbox;
    struct stat sb;

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    r = EVRUN("send", store, "done1", "go", "1");
    cr_assert_eq(r.status, 1, "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "done1"), "stderr: %s", r.err);
    result_free(&r);
    /* Nothing was left in the inbox. */
    inbox = tu_path(store, "done1", "inbox");
    if (stat(inbox, &sb) == 0)
        cr_assert_eq(rmdir(inbox), 0, "a request reached done1's inbox");
    free(inbox);
    r = EVRUN("pause", store, "done1");
    cr_assert_eq(r.status, 1, "stderr: %s", r.err);
    result_free(&r);
    r = EVRUN("terminate", store, "done1", "late");
    cr_assert_eq(r.status, 1, "stderr: %s", r.err);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* serve, pause, unpause, terminate                                   */
/* ------------------------------------------------------------------ */

Test(evrun, serve_takes_requests_to_pause_unpause_and_terminate)
{
    const char *def = def_file("gate", gate_def);
    result r;
    json_object *st;
    char *m, *effects;
    int ex;

    /* p1 exists before the runner starts; p2 is created while it runs. */
    r = EVRUN("start", store, def, "--id", "p1", "--detach");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "p1 created\n");
    result_free(&r);
    serve_pid = tu_spawn_tool(
        "EVRUN", dir, "serve",
        (const char *const[]){"serve", store, "--adopt", "50", NULL});
    await_status("p1", "waiting");

    r = EVRUN("pause", store, "p1", "maintenance");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    await_status("p1", "paused");

    /* An event while paused is recorded, but the step after it waits. */
    r = EVRUN("send", store, "p1", "go", "{\"n\":1}");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    for (double deadline = now_s() + 30;
         count_events("p1", "signal_received") == 0 && now_s() < deadline;)
        sleep_ms(20);
    cr_assert_eq(count_events("p1", "signal_received"), 1);
    m = status_of("p1");
    cr_assert_str_eq(m, "paused");
    free(m);
    cr_assert_eq(count_events("p1", "step_completed"), 0);
    cr_assert_eq(access(fx, F_OK), -1, "a step ran while paused");

    r = EVRUN("unpause", store, "p1");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    await_status("p1", "completed");
    st = status_json("p1");
    m = member(st, "outputs");
    assert_json_eq(m, "{\"step\":\"after\",\"attempt\":1,"
                      "\"params\":{\"g\":{\"n\":1}}}");
    free(m);
    json_object_put(st);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "after p1/main/after/-1 1\n");
    free(effects);

    r = EVRUN("start", store, def, "--id", "p2", "--detach");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    await_status("p2", "waiting");
    r = EVRUN("terminate", store, "p2", "enough");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    await_status("p2", "terminated");
    st = status_json("p2");
    m = member(st, "error");
    cr_assert_str_eq(m, "\"enough\"");
    free(m);
    json_object_put(st);
    r = EVRUN("send", store, "p2", "go");
    cr_assert_eq(r.status, 1, "stderr: %s", r.err);
    result_free(&r);

    cr_assert_eq(kill(serve_pid, SIGTERM), 0);
    ex = tu_wait_exit(serve_pid);
    serve_pid = -1;
    r = collect("serve", ex);
    cr_assert_eq(ex, 0, "serve exited %d; stderr: %s", ex, r.err);
    result_free(&r);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "after p1/main/after/-1 1\n");
    free(effects);
}

Test(evrun, serve_applies_the_retention_policy_beside_its_runners)
{
    const char *two = def_file(
        "two",
        "{\"name\":\"two\",\"steps\":["
        "  {\"name\":\"a\",\"kind\":\"action\",\"action\":\"@ACT@ a ok\"}]}");
    const char *gate = def_file("gate", gate_def);
    char *d1 = tu_join(store, "d1");
    result r;
    int ex;

    r = EVRUN("start", store, two, "--id", "d1");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    r = EVRUN("start", store, gate, "--id", "p1", "--detach");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    r = EVDUMP("config", store, "retention.completed", "1s");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    /* d1 ended before this; one second on it has expired. */
    sleep_ms(1100);
    serve_pid = tu_spawn_tool("EVRUN", dir, "serve",
                              (const char *const[]){"serve", store, "--adopt",
                                                    "50", "--gc-first", "0",
                                                    NULL});
    for (double deadline = now_s() + 30;
         access(d1, F_OK) == 0 && now_s() < deadline;)
        sleep_ms(20);
    cr_assert_eq(access(d1, F_OK), -1, "gc did not delete d1");
    /* What the runner owns goes on; it has not ended, so it stays. */
    await_status("p1", "waiting");
    r = EVRUN("terminate", store, "p1", "enough");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    result_free(&r);
    await_status("p1", "terminated");
    cr_assert_eq(kill(serve_pid, SIGTERM), 0);
    ex = tu_wait_exit(serve_pid);
    serve_pid = -1;
    r = collect("serve", ex);
    cr_assert_eq(ex, 0, "serve exited %d; stderr: %s", ex, r.err);
    cr_assert(strstr(r.err, "gc: 1 expired: 1 deleted"), "stderr: %s", r.err);
    result_free(&r);
    free(d1);
}

Test(evrun, start_detach_creates_the_execution_without_running_it)
{
    const char *def = def_file(
        "two",
        "{\"name\":\"two\",\"steps\":["
        "  {\"name\":\"a\",\"kind\":\"action\",\"action\":\"@ACT@ a ok\","
        "   \"next\":\"b\"},"
        "  {\"name\":\"b\",\"kind\":\"action\",\"action\":\"@ACT@ b ok\"}]}");
    result r = EVRUN("start", store, def, "--id", "d1", "--detach");
    json_object *st;
    char *m, *effects;

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "d1 created\n");
    result_free(&r);
    st = status_json("d1");
    m = member(st, "status");
    cr_assert_str_eq(m, "\"running\"");
    free(m);
    json_object_put(st);
    cr_assert_eq(count_events("d1", "step_started"), 0);
    cr_assert_eq(access(fx, F_OK), -1, "a step ran");

    r = EVRUN("resume", store, "d1");
    assert_outcome(&r, 0, "d1", "completed",
                   "{\"step\":\"b\",\"attempt\":1,\"params\":null}");
    result_free(&r);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "a d1/main/a/-1 1\nb d1/main/b/-1 1\n");
    free(effects);
}

/* ------------------------------------------------------------------ */
/* Usage                                                              */
/* ------------------------------------------------------------------ */

Test(evrun, usage_errors_exit_2_with_a_message_and_change_nothing)
{
    const char *def = def_file("gate", gate_def);
    const char *const *cases[] = {
        (const char *const[]){NULL},
        (const char *const[]){"frobnicate", store, NULL},
        (const char *const[]){"start", store, NULL},
        (const char *const[]){"start", NULL},
        (const char *const[]){"start", store, def, "--sync", "sometimes", NULL},
        (const char *const[]){"start", store, def, "--bogus", NULL},
        (const char *const[]){"start", store, def, "extra", NULL},
        (const char *const[]){"resume", store, NULL},
        (const char *const[]){"resume", store, "g1", "--sync", "fast", NULL},
        (const char *const[]){"serve", NULL},
        (const char *const[]){"serve", store, "--sync", "maybe", NULL},
        (const char *const[]){"serve", store, "--grace", "soon", NULL},
        (const char *const[]){"send", store, "g1", NULL},
        (const char *const[]){"send", store, "g1", "go", "{bad", NULL},
        (const char *const[]){"send", store, "g1", "go", "1", "2", NULL},
        (const char *const[]){"pause", store, NULL},
        (const char *const[]){"unpause", store, "g1", "why", NULL},
        (const char *const[]){"terminate", store, NULL},
        (const char *const[]){"status", store, NULL},
        (const char *const[]){"status", store, "g1", "--yaml", NULL},
    };
    result r = EVRUN("start", store, def, "--id", "g1");
    char *inbox;
    struct stat sb;

    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    result_free(&r);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        r = run_tool("EVRUN", cases[i]);
        cr_assert_eq(r.status, 2, "case %zu: exit %d, stderr %s", i, r.status,
                     r.err);
        cr_assert_eq(strncmp(r.err, "evrun: ", 7), 0, "case %zu: %s", i, r.err);
        cr_assert_str_eq(r.out, "", "case %zu", i);
        result_free(&r);
    }
    /* None of it reached g1: no request in its inbox, still waiting. */
    inbox = tu_path(store, "g1", "inbox");
    if (stat(inbox, &sb) == 0)
        cr_assert_eq(rmdir(inbox), 0, "a request reached g1's inbox");
    free(inbox);
    r = EVRUN("status", store, "g1", "--json");
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "\"status\":\"waiting\""), "%s", r.out);
    result_free(&r);
}

Test(evrun, help_exits_0_and_names_every_command_and_exit_status)
{
    static const char *const words[] = {
        "evrun start",     "evrun resume",
        "evrun serve",     "evrun send",
        "evrun pause",     "evrun unpause",
        "evrun terminate", "evrun status",
        "--detach",        "--sync",
        "--input",         "--id",
        "--json",          "--grace",
        "--adopt",         "exec:",
        "0  completed",    "1  failed",
        "2  usage",        "3  any other error",
        "4  suspended",
    };
    result r = EVRUN("--help");
    result r2 = EVRUN("start", "--help");

    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.err, "");
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
        cr_assert_not_null(strstr(r.out, words[i]), "--help lacks \"%s\"",
                           words[i]);
    result_free(&r);
    cr_assert_eq(r2.status, 0);
    cr_assert_not_null(strstr(r2.out, "evrun start"));
    result_free(&r2);
}

/* ------------------------------------------------------------------ */
/* One parser, one vocabulary, one set of messages (issue 15)         */
/* ------------------------------------------------------------------ */

static const char *const commands[] = {
    "start", "resume",  "retry",     "serve",  "send",
    "pause", "unpause", "terminate", "status", "check",
};
#define NCOMMANDS (sizeof(commands) / sizeof(*commands))

/* `evrun CMD --help`, `evrun CMD -h` and `evrun help CMD` print that
 * command's usage and options only, not the whole manual. */
Test(evrun, each_command_help_prints_its_own_usage_only)
{
    result all = EVRUN("--help");

    cr_assert_eq(all.status, 0);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *forms[][2] = {{commands[i], "--help"},
                                  {commands[i], "-h"},
                                  {"help", commands[i]}};
        char want[64];
        result first = {0, NULL, NULL};

        snprintf(want, sizeof(want), "Usage: evrun %s STORE", commands[i]);
        for (size_t f = 0; f < 3; f++) {
            result r = EVRUN(forms[f][0], forms[f][1]);

            cr_assert_eq(r.status, 0, "%s %s: %s", forms[f][0], forms[f][1],
                         r.err);
            cr_assert_str_eq(r.err, "");
            cr_assert_eq(strncmp(r.out, want, strlen(want)), 0, "%s", r.out);
            cr_assert_not_null(strstr(r.out, "Exit status"), "%s", r.out);
            for (size_t j = 0; j < NCOMMANDS; j++) {
                char other[64];

                snprintf(other, sizeof(other), "evrun %s STORE", commands[j]);
                cr_assert_eq(strstr(r.out, other) != NULL, i == j,
                             "%s help and \"%s\": %s", commands[i], other,
                             r.out);
            }
            if (f == 0) {
                first = r;
                continue;
            }
            cr_assert_str_eq(r.out, first.out);
            result_free(&r);
        }
        /* The general help holds each command's help whole. */
        {
            const char *h = first.out + strlen("Usage: ");
            char *own = strndup(h, (size_t)(strstr(h, "\n\n") - h));

            cr_assert_not_null(strstr(all.out, own), "%s", commands[i]);
            free(own);
        }
        result_free(&first);
    }
    result_free(&all);
}

/* Every option a command's help lists (its usage lines and its option
 * list) is one the command takes: --help tells the truth. */
Test(evrun, every_option_a_command_help_lists_is_taken)
{
    size_t tried = 0;

    for (size_t i = 0; i < NCOMMANDS; i++) {
        result h = EVRUN(commands[i], "--help");
        const char *line = h.out;

        cr_assert_eq(h.status, 0);
        /* Every option of the usage lines, and the one that begins each
         * entry of the option list (its description may name other
         * commands' options in passing). */
        for (int k = 0; *line; k++) {
            const char *end = strchr(line, '\n'), *p = line;
            int usage = k == 0 || strncmp(line, "          [", 11) == 0;

            if (!end)
                end = line + strlen(line);
            if (!usage && strncmp(line, "  --", 4) != 0)
                p = end;
            while ((p = strstr(p, "--")) != NULL && p < end) {
                char opt[64], want[96];
                size_t w = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
                result r;

                snprintf(opt, sizeof(opt), "%.*s", (int)(w + 2), p);
                r = EVRUN(commands[i], opt);
                snprintf(want, sizeof(want), "unknown option '%s'", opt);
                cr_assert_null(strstr(r.err, want), "%s: %s", commands[i],
                               r.err);
                result_free(&r);
                tried++;
                p = usage ? p + w + 2 : end;
            }
            line = *end ? end + 1 : end;
        }
        result_free(&h);
    }
    cr_assert_gt(tried, 40, "only %zu options found in the helps", tried);
}

/* getopt_long's forms work in evrun as in evdump: --opt=value, options
 * before, between or after the arguments, and "--". */
Test(evrun, options_take_every_getopt_form_anywhere)
{
    const char *def = def_file(
        "forms", "{\"name\":\"forms\",\"inputs\":{\"x\":{\"type\":\"number\"}},"
                 " \"outputs\":\"${inputs.x}\",\"steps\":[{\"name\":\"a\","
                 " \"kind\":\"action\",\"action\":\"echo\"}]}");
    result r = EVRUN("start", "--id=o1", "--input={\"x\":1}", store, def,
                     "--sync=none");

    assert_outcome(&r, 0, "o1", "completed", "1");
    result_free(&r);
    r = EVRUN("start", store, "--input", "{\"x\":2}", def, "--id", "o2");
    assert_outcome(&r, 0, "o2", "completed", "2");
    result_free(&r);
    r = EVRUN("start", "--id=o3", "--input={\"x\":3}", "--", store, def);
    assert_outcome(&r, 0, "o3", "completed", "3");
    result_free(&r);
    r = EVRUN("status", "--json", store, "o3");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\"outputs\":3"), "%s", r.out);
    result_free(&r);
    r = EVRUN("start", store, def, "--id=o4", "--input={\"x\":4}",
              "--allow-unsafe-perms");
    assert_outcome(&r, 0, "o4", "completed", "4");
    result_free(&r);
    /* An option whose value is missing, and one that takes none. */
    r = EVRUN("start", store, def, "--id");
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "evrun: start: option '--id' needs an argument "
                            "(run 'evrun start --help')\n");
    result_free(&r);
    r = EVRUN("status", store, "o1", "--json=yes");
    cr_assert_eq(r.status, 2, "%s", r.err);
    result_free(&r);
}

/* Parses `text` as exactly one JSON object on one line, the whole of
 * stdout. */
static json_object *only_object(const char *text)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    size_t len = strlen(text);

    cr_assert_gt(len, 0, "nothing on stdout");
    cr_assert_eq(count_lines(text), 1, "stdout: %s", text);
    cr_assert_eq(text[len - 1], '\n');
    o = json_tokener_parse_ex(tok, text, (int)len - 1);
    cr_assert_not_null(o, "not JSON: %s", text);
    cr_assert_eq(json_tokener_get_parse_end(tok), len - 1,
                 "more than one value: %s", text);
    cr_assert(json_object_is_type(o, json_type_object), "%s", text);
    json_tokener_free(tok);
    return o;
}

/* The members every execution object has, named as evdump's ls --json
 * and snapshot --json name them; checked against evdump's listing. */
static void assert_exec_object(json_object *o, const char *id,
                               const char *outcome, const char *status)
{
    static const char *const names[] = {
        "id",
        "status",
        "workflow_name",
        "last_event_seq",
        "start_time",
        "end_time",
        "live_paths",
        "pending_waits",
        "pending_timers",
        "outputs",
        "error",
        "failed_at",
    };
    result ls = EVDUMP("ls", store, "--json");
    char *m, want[128];

    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        cr_assert(json_object_object_get_ex(o, names[i], NULL), "no %s: %s",
                  names[i], json_object_to_json_string(o));
    cr_assert(!json_object_object_get_ex(o, "workflow", NULL));
    cr_assert(!json_object_object_get_ex(o, "last_seq", NULL));
    cr_assert(!json_object_object_get_ex(o, "execution_id", NULL));
    m = str_member(o, "id");
    cr_assert_str_eq(m, id);
    free(m);
    m = str_member(o, "status");
    cr_assert_str_eq(m, status);
    free(m);
    if (outcome) {
        m = str_member(o, "outcome");
        cr_assert_str_eq(m, outcome);
        free(m);
    }
    /* evdump says the same of it, in the same words. */
    cr_assert_eq(ls.status, 0, "%s", ls.err);
    m = str_member(o, "workflow_name");
    snprintf(want, sizeof(want),
             "{\"id\":\"%s\",\"status\":\"%s\","
             "\"workflow_name\":\"%s\"",
             id, status, m);
    free(m);
    cr_assert_not_null(strstr(ls.out, want), "%s not in %s", want, ls.out);
    result_free(&ls);
    /* last_event_seq is the log's last sequence. */
    ls = EVDUMP("show", store, id, "--json");
    cr_assert_eq(ls.status, 0, "%s", ls.err);
    m = member(o, "last_event_seq");
    snprintf(want, sizeof(want), "%zu", count_lines(ls.out));
    cr_assert_str_eq(m, want);
    free(m);
    result_free(&ls);
}

/* --json prints one JSON object and nothing else on stdout, whatever
 * the command and however it ends, so that `evrun ... --json | jq`
 * works. */
Test(evrun, json_prints_one_object_and_nothing_else_on_stdout)
{
    const char *ok =
        def_file("jok", "{\"name\":\"jok\",\"outputs\":\"${steps.a.output}\","
                        " \"steps\":[{\"name\":\"a\",\"kind\":\"action\","
                        " \"action\":\"echo\",\"params\":{\"v\":1}}]}");
    const char *bad =
        def_file("jbad", "{\"name\":\"jbad\",\"steps\":[{\"name\":\"b\","
                         " \"kind\":\"action\",\"action\":\"fail\","
                         " \"params\":{\"times\":9,\"fatal\":true}}]}");
    const char *gate = def_file("gate", gate_def);
    json_object *o, *m;
    char *v;
    result r;

    r = EVRUN("start", store, ok, "--id", "j1", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j1", "completed", "completed");
    v = member(o, "outputs");
    assert_json_eq(v, "{\"v\":1}");
    free(v);
    json_object_put(o);
    result_free(&r);

    r = EVRUN("start", store, bad, "--id", "j2", "--json");
    cr_assert_eq(r.status, 1, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j2", "failed", "failed");
    cr_assert(json_object_object_get_ex(o, "failed_at", &m));
    cr_assert(json_object_is_type(m, json_type_object));
    json_object_put(o);
    result_free(&r);

    r = EVRUN("start", store, gate, "--id", "j3", "--json");
    cr_assert_eq(r.status, 4, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j3", "suspended", "waiting");
    v = member(o, "pending_waits");
    cr_assert_str_eq(v, "1");
    free(v);
    json_object_put(o);
    result_free(&r);

    r = EVRUN("resume", store, "j3", "--json");
    cr_assert_eq(r.status, 4, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j3", "suspended", "waiting");
    json_object_put(o);
    result_free(&r);

    r = EVRUN("start", store, ok, "--id", "j4", "--detach", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j4", "created", "running");
    json_object_put(o);
    result_free(&r);

    r = EVRUN("retry", store, "j2", "--strategy", "from_start", "--id", "j5",
              "--json");
    cr_assert_eq(r.status, 1, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j5", "failed", "failed");
    json_object_put(o);
    result_free(&r);

    r = EVRUN("status", store, "j1", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    o = only_object(r.out);
    assert_exec_object(o, "j1", NULL, "completed");
    json_object_put(o);
    result_free(&r);

    r = EVRUN("check", store, gate, "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    o = only_object(r.out);
    v = member(o, "checked");
    cr_assert_str_eq(v, "1");
    free(v);
    v = member(o, "executions");
    assert_json_eq(v, "[{\"id\":\"j3\",\"verdict\":\"compatible\","
                      "\"findings\":[]}]");
    free(v);
    json_object_put(o);
    result_free(&r);
}

/* resume --definition --json and check --json carry the findings of the
 * definition check: each difference, allowed or refusing. */
Test(evrun, json_of_a_definition_check_names_each_finding)
{
    const char *w = def_file(
        "v1", "{\"name\":\"v\",\"steps\":["
              "  {\"name\":\"a\",\"kind\":\"action\",\"action\":\"echo\","
              "   \"params\":{\"n\":1},\"next\":\"w\"},"
              "  {\"name\":\"w\",\"kind\":\"wait_event\",\"event\":\"go\"}]}");
    const char *w2 = def_file(
        "v2", "{\"name\":\"v\",\"steps\":["
              "  {\"name\":\"a\",\"kind\":\"action\",\"action\":\"echo\","
              "   \"params\":{\"n\":2},\"next\":\"w\"},"
              "  {\"name\":\"w\",\"kind\":\"wait_event\",\"event\":\"go\"}]}");
    result r = EVRUN("start", store, w, "--id", "v1");
    json_object *o, *f, *e;
    char *s;

    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    r = EVRUN("check", store, w2, "--json");
    cr_assert_eq(r.status, 1, "%s", r.err);
    o = only_object(r.out);
    s = member(o, "would_break");
    cr_assert_str_eq(s, "1");
    free(s);
    cr_assert(json_object_object_get_ex(o, "executions", &e));
    e = json_object_array_get_idx(e, 0);
    s = str_member(e, "verdict");
    cr_assert_str_eq(s, "refused");
    free(s);
    cr_assert(json_object_object_get_ex(e, "findings", &f));
    cr_assert_eq(json_object_array_length(f), 1);
    f = json_object_array_get_idx(f, 0);
    s = str_member(f, "refusal");
    cr_assert_str_eq(s, "EVS_ENONDET");
    free(s);
    s = str_member(f, "kind");
    cr_assert_str_eq(s, "step");
    free(s);
    json_object_put(o);
    cr_assert_not_null(strstr(r.err, "v1: "), "%s", r.err);
    result_free(&r);

    r = EVRUN("resume", store, "v1", "--definition", w2, "--json");
    cr_assert_eq(r.status, 1, "%s", r.err);
    o = only_object(r.out);
    s = str_member(o, "outcome");
    cr_assert_str_eq(s, "refused");
    free(s);
    cr_assert(json_object_object_get_ex(o, "findings", &f));
    cr_assert_eq(json_object_array_length(f), 1);
    json_object_put(o);
    result_free(&r);
}

/* An execution that is not there gets one message from every command of
 * every tool: evdump's. */
Test(evrun, an_unknown_execution_gets_the_same_message_from_every_tool)
{
    const char *const evrun_cmds[][6] = {
        {"status", store, "nope"},
        {"resume", store, "nope"},
        {"send", store, "nope", "go"},
        {"pause", store, "nope"},
        {"unpause", store, "nope"},
        {"terminate", store, "nope", "why"},
        {"retry", store, "nope", "--strategy", "from_start"},
    };
    char want[1024];
    result r;

    cr_assert_not_null(getenv("EVREPLAY"), "EVREPLAY must name the binary");
    for (size_t i = 0; i < sizeof(evrun_cmds) / sizeof(*evrun_cmds); i++) {
        r = run_tool("EVRUN", evrun_cmds[i]);
        snprintf(want, sizeof(want),
                 "evrun: no execution 'nope' in store "
                 "%s\n",
                 store);
        cr_assert_eq(r.status, 3, "%s: %s", evrun_cmds[i][0], r.err);
        cr_assert_str_eq(r.err, want, "%s", evrun_cmds[i][0]);
        cr_assert_str_eq(r.out, "");
        result_free(&r);
    }
    r = EVDUMP("show", store, "nope");
    snprintf(want, sizeof(want), "evdump: no execution 'nope' in store %s\n",
             store);
    cr_assert_eq(r.status, 3);
    cr_assert_str_eq(r.err, want);
    result_free(&r);
    r = EVREPLAY(store, "nope", "-c", "quit");
    snprintf(want, sizeof(want),
             "evreplay: no execution 'nope' in store "
             "%s\n",
             store);
    cr_assert_eq(r.status, 3);
    cr_assert_str_eq(r.err, want);
    result_free(&r);
}

/* start and serve create the store only with --create: a mistyped path
 * is refused, naming --create; every other command never creates it. */
Test(evrun, a_store_is_created_only_with_create)
{
    const char *def = def_file(
        "mk", "{\"name\":\"mk\",\"outputs\":{\"ok\":1},\"steps\":[{\"name\":"
              "\"a\",\"kind\":\"action\",\"action\":\"echo\"}]}");
    char *typo = strdup(in_dir("stor")), *deep = strdup(in_dir("no/such"));
    const char *const others[][6] = {
        {"status", typo, "x"},
        {"resume", typo, "x"},
        {"send", typo, "x", "go"},
        {"retry", typo, "x", "--strategy", "from_start"},
        {"check", typo, def},
    };
    char want[1024];
    struct stat sb;
    result r;

    r = EVRUN("start", typo, def, "--id", "m1");
    snprintf(want, sizeof(want),
             "evrun: no store at %s (no such directory; "
             "--create makes it)\n",
             typo);
    cr_assert_eq(r.status, 3, "%s", r.err);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(stat(typo, &sb), -1, "start created %s", typo);
    result_free(&r);
    r = EVRUN("serve", typo);
    cr_assert_eq(r.status, 3, "%s", r.err);
    cr_assert_str_eq(r.err, want);
    cr_assert_eq(stat(typo, &sb), -1, "serve created %s", typo);
    result_free(&r);
    snprintf(want, sizeof(want),
             "evrun: no store at %s (no such "
             "directory)\n",
             typo);
    for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
        r = run_tool("EVRUN", others[i]);
        cr_assert_eq(r.status, 3, "%s: %s", others[i][0], r.err);
        cr_assert_str_eq(r.err, want, "%s", others[i][0]);
        cr_assert_eq(stat(typo, &sb), -1, "%s created it", others[i][0]);
        result_free(&r);
    }
    /* Only the store itself is made, never its parents. */
    r = EVRUN("start", deep, def, "--id", "m1", "--create");
    cr_assert_eq(r.status, 3, "%s", r.err);
    cr_assert_eq(stat(in_dir("no"), &sb), -1);
    result_free(&r);
    r = EVRUN("start", typo, def, "--id", "m1", "--create");
    assert_outcome(&r, 0, "m1", "completed", "{\"ok\":1}");
    cr_assert_eq(stat(typo, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    cr_assert_eq(sb.st_mode & 0777, 0700);
    result_free(&r);
    /* --create on a store that exists is no error. */
    r = EVRUN("start", typo, def, "--id", "m2", "--create");
    assert_outcome(&r, 0, "m2", "completed", "{\"ok\":1}");
    result_free(&r);
    free(typo);
    free(deep);
}

/* --version prints the version of the library the tool runs with, in
 * every tool. */
Test(evrun, version_prints_the_library_version_in_every_tool)
{
    static const char *const tools[] = {"EVRUN", "EVDUMP", "EVREPLAY"};
    static const char *const names[] = {"evrun", "evdump", "evreplay"};

    for (size_t i = 0; i < 3; i++) {
        result r = run_tool(tools[i], (const char *const[]){"--version", NULL});
        char want[128];

        snprintf(want, sizeof(want), "%s (evstore) %s\n", names[i],
                 evs_version());
        cr_assert_eq(r.status, 0, "%s: %s", names[i], r.err);
        cr_assert_str_eq(r.out, want);
        cr_assert_str_eq(r.err, "");
        result_free(&r);
    }
    cr_assert_str_eq(evs_version(), EVS_VERSION_STRING);
    cr_assert_eq(evs_version_number(), EVS_VERSION_NUMBER);
}

/* Inputs that are not JSON are a usage error that says where they go
 * wrong; inputs the definition refuses are blamed on --input, not on the
 * definition file. JSON arguments of retry and send alike. */
Test(evrun, a_bad_input_is_blamed_on_the_input_with_its_offset)
{
    const char *def = def_file(
        "typed", "{\"name\":\"typed\",\"inputs\":{\"n\":{\"type\":\"number\","
                 " \"required\":true}},\"outputs\":\"${inputs.n}\","
                 " \"steps\":[{\"name\":\"a\","
                 " \"kind\":\"action\",\"action\":\"echo\"}]}");
    const char *bad = "{\"n\":\n  tru}";
    char *file = strdup(in_dir("in.json"));
    char arg[1100], want[2048];
    result r;

    r = EVRUN("start", store, def, "--input", "{\"n\":1,}", "--id", "b1");
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert_str_eq(r.err, "evrun: start: --input is not JSON (at byte 7) "
                            "(run 'evrun start --help')\n");
    cr_assert(!exec_exists("b1"));
    result_free(&r);

    cr_assert_eq(tu_write_file(file, bad, strlen(bad)), 0);
    snprintf(arg, sizeof(arg), "--input=@%s", file);
    r = EVRUN("start", store, def, arg, "--id", "b1");
    snprintf(want, sizeof(want),
             "evrun: start: --input @%s is not JSON (at "
             "byte 11) (run 'evrun start --help')\n",
             file);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert_str_eq(r.err, want);
    result_free(&r);

    r = EVRUN("start", store, def, "--input", "{\"n\":\"one\"}", "--id", "b1");
    cr_assert_eq(r.status, 3, "%s", r.err);
    cr_assert_eq(strncmp(r.err, "evrun: --input: ", 16), 0, "%s", r.err);
    cr_assert_null(strstr(r.err, def), "blamed on the definition: %s", r.err);
    cr_assert(!exec_exists("b1"));
    result_free(&r);

    r = EVRUN("start", store, def, "--input", "{\"n\":1}", "--id", "b1");
    assert_outcome(&r, 0, "b1", "completed", "1");
    result_free(&r);
    r = EVRUN("retry", store, "b1", "--strategy", "with_new_inputs", "--inputs",
              "[1 2]");
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert_str_eq(r.err, "evrun: retry: --inputs is not JSON (at byte 3) "
                            "(run 'evrun retry --help')\n");
    result_free(&r);
    free(file);
}

/* Member `key` of o is `want` (JSON text). */
static void expect_member(json_object *o, const char *key, const char *want)
{
    char *m = member(o, key);

    cr_assert_str_eq(m, want, "%s", key);
    free(m);
}

/* The data of the first `type` event of `id`, as JSON text. */
static char *event_data(const char *id, const char *type)
{
    json_object *ev = event_of(id, type, 0);
    char *d = member(ev, "data");

    json_object_put(ev);
    return d;
}

/* pause, unpause and terminate record who asked (--by, by default the
 * user) and why (--reason, or the REASON word), and status shows them. */
Test(evrun, requests_record_who_asked_and_why_and_status_shows_them)
{
    const char *def = def_file("gate", gate_def);
    const struct passwd *pw = getpwuid(geteuid());
    char want[512], *m;
    json_object *st, *c;
    result r;

    cr_assert(pw && pw->pw_name);
    r = EVRUN("start", store, def, "--id", "w1");
    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    /* Options after EXEC, in either order. */
    r = EVRUN("pause", store, "w1", "--reason", "maint window", "--by",
              "alice");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "w1");
    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    m = event_data("w1", "execution_paused");
    assert_json_eq(m, "{\"reason\":\"maint window\",\"by\":\"alice\"}");
    free(m);
    st = status_json("w1");
    cr_assert(json_object_object_get_ex(st, "paused", &c));
    expect_member(c, "by", "\"alice\"");
    expect_member(c, "reason", "\"maint window\"");
    expect_member(c, "step", "\"w\"");
    expect_member(st, "resumed", "null");
    json_object_put(st);
    r = EVRUN("status", store, "w1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, " by alice at step w: \"maint window\""), "%s",
              r.out);
    cr_assert(strstr(r.out, "paused     "), "%s", r.out);
    result_free(&r);
    r = EVDUMP("state", store, "w1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, " by alice at step w: \"maint window\""), "%s",
              r.out);
    result_free(&r);

    /* No --by: the user's name. */
    r = EVRUN("unpause", store, "w1", "--reason", "done");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "w1");
    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    m = event_data("w1", "execution_resumed");
    snprintf(want, sizeof(want), "{\"reason\":\"done\",\"by\":\"%s\"}",
             pw->pw_name);
    assert_json_eq(m, want);
    free(m);

    /* A REASON after "--" may begin with '-'; --by before it. */
    r = EVRUN("terminate", store, "w1", "--by", "bob", "--", "-stop");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "w1");
    cr_assert_eq(r.status, 1, "%s", r.err);
    result_free(&r);
    st = status_json("w1");
    cr_assert(json_object_object_get_ex(st, "terminated", &c));
    expect_member(c, "by", "\"bob\"");
    expect_member(c, "reason", "\"-stop\"");
    json_object_put(st);
    r = EVRUN("status", store, "w1");
    cr_assert(strstr(r.out, "terminated ") && strstr(r.out, " by bob: "),
              "%s", r.out);
    snprintf(want, sizeof(want), " by %s: \"done\"", pw->pw_name);
    cr_assert(strstr(r.out, want), "%s", r.out);
    result_free(&r);

    /* Usage errors: a reason twice, a --by too long; send takes no --by. */
    r = EVRUN("pause", store, "w1", "why", "--reason", "why");
    cr_assert_eq(r.status, 2, "%s", r.err);
    result_free(&r);
    memset(want, 'x', 300);
    want[300] = '\0';
    r = EVRUN("pause", store, "w1", "--by", want);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--by is longer than 256 bytes"), "%s", r.err);
    result_free(&r);
    r = EVRUN("send", store, "w1", "--by", "x", "go");
    cr_assert_eq(r.status, 2, "%s", r.err);
    result_free(&r);
}

/* send, pause and terminate take options up to EXEC only: a payload or
 * reason may begin with '-'. send reads a payload from @FILE as --input
 * does. */
Test(evrun, send_takes_a_payload_that_begins_with_a_dash_or_from_a_file)
{
    const char *def = def_file("gate", gate_def);
    const char *payload = "{\"from\": 1}\n";
    char *file = strdup(in_dir("payload.json"));
    char arg[1100];
    result r;

    r = EVRUN("start", store, def, "--id", "p1");
    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    r = EVRUN("send", store, "p1", "go", "-5");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "p1");
    assert_outcome(&r, 0, "p1", "completed",
                   "{\"step\":\"after\",\"attempt\":1,"
                   "\"params\":{\"g\":-5}}");
    result_free(&r);

    r = EVRUN("start", store, def, "--id", "p2");
    cr_assert_eq(r.status, 4, "%s", r.err);
    result_free(&r);
    cr_assert_eq(tu_write_file(file, payload, strlen(payload)), 0);
    snprintf(arg, sizeof(arg), "@%s", file);
    r = EVRUN("send", store, "p2", "go", "{\"a\":}");
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert_str_eq(r.err, "evrun: send: the payload is not JSON (at byte "
                            "5) (run 'evrun send --help')\n");
    result_free(&r);
    r = EVRUN("send", store, "p2", "go", arg);
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "p2");
    assert_outcome(&r, 0, "p2", "completed",
                   "{\"step\":\"after\",\"attempt\":1,"
                   "\"params\":{\"g\":{\"from\":1}}}");
    result_free(&r);
    /* A reason that looks like an option is the reason: the request
     * reaches p2, which has ended (1), rather than a usage error (2). */
    r = EVRUN("pause", store, "p2", "--not-an-option");
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert_str_eq(r.err, "evrun: execution p2 has ended; request "
                            "refused\n");
    result_free(&r);
    r = EVRUN("pause", "--bogus", store, "p2");
    cr_assert_eq(r.status, 2, "%s", r.err);
    result_free(&r);
    free(file);
}

/* ------------------------------------------------------------------ */
/* The exec: protocol                                                 */
/* ------------------------------------------------------------------ */

Test(evrun, exec_stdin_carries_params_inputs_idempotency_key_and_attempt)
{
    const char *def = def_file(
        "proto",
        "{\"name\":\"proto\","
        " \"inputs\":{\"q\":{\"type\":\"string\",\"required\":true},"
        "            \"k\":{\"type\":\"integer\",\"default\":7}},"
        " \"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "   \"action\":\"@ACT@ s flaky 1\","
        "   \"params\":{\"q\":\"${inputs.q}\",\"n\":2},"
        "   \"retry\":{\"max_attempts\":3,\"initial_interval_ms\":10}}]}");
    result r = EVRUN("start", store, def, "--id", "io1", "--input",
                     "{\"q\":\"hello\"}");
    char path[1024], *in;

    assert_outcome(&r, 0, "io1", "completed",
                   "{\"step\":\"s\",\"attempt\":2,"
                   "\"params\":{\"q\":\"hello\",\"n\":2}}");
    result_free(&r);
    snprintf(path, sizeof(path), "%s.in", fx);
    in = slurp_or_empty(path);
    cr_assert_eq(count_lines(in), 2, "stdin seen:\n%s", in);
    for (int a = 1; a <= 2; a++) {
        char *line = nth_line(in, (size_t)a - 1), *m, want[64];
        json_object *o = parse(line);

        m = member(o, "params");
        assert_json_eq(m, "{\"q\":\"hello\",\"n\":2}");
        free(m);
        m = member(o, "inputs");
        assert_json_eq(m, "{\"q\":\"hello\",\"k\":7}");
        free(m);
        m = str_member(o, "idempotency_key");
        cr_assert_str_eq(m, "io1/main/s/-1"); /* every attempt's */
        free(m);
        m = member(o, "attempt");
        snprintf(want, sizeof(want), "%d", a);
        cr_assert_str_eq(m, want);
        free(m);
        m = member(o, "execution_id");
        cr_assert_str_eq(m, "\"io1\"");
        free(m);
        m = member(o, "path_id");
        cr_assert_str_eq(m, "\"main\"");
        free(m);
        m = member(o, "step");
        cr_assert_str_eq(m, "\"s\"");
        free(m);
        m = member(o, "iteration");
        cr_assert_str_eq(m, "-1");
        free(m);
        json_object_put(o);
        free(line);
    }
    free(in);
}

Test(evrun, exec_error_json_on_stdout_fails_the_step_without_retry)
{
    const char *def = def_file(
        "denied",
        "{\"name\":\"denied\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"action\":\"@ACT@ s fatal\","
        "  \"retry\":{\"max_attempts\":5,\"initial_interval_ms\":10}}]}");
    result r = EVRUN("start", store, def, "--id", "e1");
    char *effects;

    assert_outcome(&r, 1, "e1", "failed",
                   "{\"type\":\"denied\",\"message\":\"s says no\","
                   "\"retryable\":false}");
    result_free(&r);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "s e1/main/s/-1 1\n");
    free(effects);
    cr_assert_eq(count_events("e1", "retry_scheduled"), 0);
}

Test(evrun, exec_nonzero_exit_is_retried_per_policy_with_stderr_in_message)
{
    const char *def = def_file(
        "stubborn",
        "{\"name\":\"stubborn\",\"steps\":[{\"name\":\"s\","
        "  \"kind\":\"action\",\"action\":\"@ACT@ s flaky 99\","
        "  \"retry\":{\"max_attempts\":3,\"initial_interval_ms\":10}}]}");
    result r = EVRUN("start", store, def, "--id", "x1");
    json_object *o;
    char *line, *m, *effects;

    cr_assert_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
    line = nth_line(r.out, 0);
    cr_assert_str_eq(line, "x1 failed");
    free(line);
    line = nth_line(r.out, 1);
    o = parse(line);
    m = member(o, "type");
    cr_assert_str_eq(m, "\"exit\"");
    free(m);
    m = str_member(o, "message");
    cr_assert_not_null(strstr(m, "exit status 3"), "message %s", m);
    cr_assert_not_null(strstr(m, "s: attempt 3 refuses"), "message %s", m);
    free(m);
    json_object_put(o);
    free(line);
    result_free(&r);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "s x1/main/s/-1 1\n"
                              "s x1/main/s/-1 2\n"
                              "s x1/main/s/-1 3\n");
    free(effects);
    cr_assert_eq(count_events("x1", "retry_scheduled"), 2);
    cr_assert_eq(count_events("x1", "step_started"), 3);
}

Test(evrun, exec_error_message_keeps_the_tail_of_a_long_stderr)
{
    const char *def = def_file(
        "noisy",
        "{\"name\":\"noisy\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"action\":\"@ACT@ s noisy\"}]}");
    result r = EVRUN("start", store, def, "--id", "n1");
    json_object *o;
    char *line, *m;

    cr_assert_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
    line = nth_line(r.out, 1);
    o = parse(line);
    m = str_member(o, "message");
    cr_assert_not_null(strstr(m, "exit status 5"), "message %.200s", m);
    /* 10 KiB of stderr: the last 4 KiB are kept, so the end is there and
     * the beginning is not. */
    cr_assert_not_null(strstr(m, "TAIL-MARK"),
                       "the end of stderr is missing: %.120s...", m);
    cr_assert_null(strstr(m, "HEAD-MARK"), "message %.120s...", m);
    free(m);
    json_object_put(o);
    free(line);
    result_free(&r);
}

/* The timeouts below leave a loaded machine time to start the script
 * and let it write its pid files before the timeout ends it: with 300 ms
 * a busy CI host sometimes killed the shell before its first line. */
Test(evrun, exec_timeout_kills_a_slow_script_and_fails_with_type_timeout)
{
    const char *def = def_file(
        "slow",
        "{\"name\":\"slow\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"action\":\"@ACT@ s slow\",\"timeout_ms\":1500}]}");
    result r = EVRUN("start", store, def, "--id", "t1");
    json_object *o;
    char *line, *m, path[1024], *pidtext;
    long pid;

    cr_assert_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
    line = nth_line(r.out, 1);
    o = parse(line);
    m = member(o, "type");
    cr_assert_str_eq(m, "\"timeout\"");
    free(m);
    json_object_put(o);
    free(line);
    result_free(&r);
    /* The script (exec'd into sleep 120) is gone. */
    snprintf(path, sizeof(path), "%s.pid", fx);
    pidtext = slurp_or_empty(path);
    pid = strtol(pidtext, NULL, 10);
    cr_assert_gt(pid, 1, "pid file: %s", pidtext);
    free(pidtext);
    cr_assert(await_ended((pid_t)pid), "the slow script still runs");
}

Test(evrun, exec_timeout_also_ends_the_processes_the_script_started)
{
    const char *def = def_file(
        "parent",
        "{\"name\":\"parent\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"action\":\"@ACT@ s parent\",\"timeout_ms\":1500}]}");
    result r = EVRUN("start", store, def, "--id", "t2");
    char path[1024], *pidtext;
    long pid;

    cr_assert_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "\"type\":\"timeout\""), "%s", r.out);
    result_free(&r);
    /* The attempt is over, so what it started must not go on working
     * beside the next attempt. */
    snprintf(path, sizeof(path), "%s.child", fx);
    pidtext = slurp_or_empty(path);
    pid = strtol(pidtext, NULL, 10);
    free(pidtext);
    cr_assert_gt(pid, 1);
    cr_assert(await_ended((pid_t)pid),
              "the script's child %ld outlived the timeout", pid);
}

/* Asserts a run printed "ID failed" and exited 1; sets *type and *msg
 * (heap memory) to its error's. */
static void failed_with(const result *r, const char *id, char **type,
                        char **msg)
{
    char *line, want[256];
    json_object *o;

    cr_assert_eq(r->status, 1, "exit %d, stdout %s, stderr %s", r->status,
                 r->out, r->err);
    line = nth_line(r->out, 0);
    snprintf(want, sizeof(want), "%s failed", id);
    cr_assert_str_eq(line, want);
    free(line);
    line = nth_line(r->out, 1);
    o = parse(line);
    *type = str_member(o, "type");
    *msg = str_member(o, "message");
    json_object_put(o);
    free(line);
}

/* A program that cannot be started fails the step with type spawn (the
 * runner used to abort on libuv's assertion: it closed the process
 * handle, which the failed uv_spawn had initialized, without counting
 * it, and freed it before its close callback ran). */
Test(evrun, exec_program_that_cannot_start_fails_the_step_with_type_spawn)
{
    const char *def = def_file(
        "missing",
        "{\"name\":\"missing\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"action\":\"exec:/nonexistent/prog a\"}]}");
    result r = EVRUN("start", store, def, "--id", "sp1");
    char *type, *msg;

    failed_with(&r, "sp1", &type, &msg);
    cr_assert_str_eq(type, "spawn");
    cr_assert(strstr(msg, "cannot run \"/nonexistent/prog") == msg, "%s", msg);
    cr_assert(strstr(msg, "no such file or directory"), "%s", msg);
    free(type);
    free(msg);
    result_free(&r);
}

/* args.sh: answers with its arguments (at most two shown). */
static const char args_sh[] =
    "#!/bin/sh\n"
    "cat >/dev/null\n"
    "printf '{\"n\":%d,\"first\":\"%s\",\"second\":\"%s\"}\\n'"
    " $# \"$1\" \"$2\"\n";

/* Runs `def` as `id` from the working directory `cwd`: the runner's,
 * which a relative program path is resolved against. */
static result start_in(const char *cwd, const char *def, const char *id)
{
    char here[1024];
    result r;

    cr_assert_not_null(getcwd(here, sizeof(here)));
    cr_assert_eq(chdir(cwd), 0);
    r = EVRUN("start", store, def, "--id", id);
    cr_assert_eq(chdir(here), 0);
    return r;
}

/* The `exec` list passes each argument as it is, blanks included, where
 * the string form splits on blanks; "./args.sh" is found from the
 * runner's working directory. */
Test(evrun, exec_list_passes_arguments_with_blanks_from_the_working_dir)
{
    const char *def = def_file(
        "argv",
        "{\"name\":\"argv\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"exec\":[\"./args.sh\",\"a b\",\"\"]}]}");
    result r;

    script_file("args.sh", args_sh);
    r = start_in(dir, def, "av1");
    assert_outcome(&r, 0, "av1", "completed",
                   "{\"n\":2,\"first\":\"a b\",\"second\":\"\"}");
    result_free(&r);
    def = def_file(
        "words",
        "{\"name\":\"words\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"action\":\"exec:./args.sh a b\"}]}");
    r = start_in(dir, def, "av2");
    assert_outcome(&r, 0, "av2", "completed",
                   "{\"n\":2,\"first\":\"a\",\"second\":\"b\"}");
    result_free(&r);
}

/* From another working directory "./args.sh" is not there: the step
 * fails with type spawn, saying where the path was looked for. */
Test(evrun, exec_relative_program_is_looked_for_in_the_working_dir)
{
    const char *def = def_file(
        "argv",
        "{\"name\":\"argv\",\"steps\":[{\"name\":\"s\",\"kind\":\"action\","
        "  \"exec\":[\"./args.sh\",\"a b\"]}]}");
    const char *elsewhere = in_dir("elsewhere");
    char *type, *msg;
    result r;

    script_file("args.sh", args_sh);
    cr_assert_eq(mkdir(elsewhere, 0700), 0);
    r = start_in(elsewhere, def, "av3");
    failed_with(&r, "av3", &type, &msg);
    cr_assert_str_eq(type, "spawn");
    cr_assert(strstr(msg, "cannot run \"./args.sh\" (relative to the "
                          "runner's working directory "),
              "%s", msg);
    cr_assert(strstr(msg, "/elsewhere)"), "%s", msg);
    free(type);
    free(msg);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* A retry backoff outlives its runner                                */
/* ------------------------------------------------------------------ */

Test(evrun, a_retry_backoff_survives_a_killed_runner_and_runs_once_more)
{
    const char *def = def_file(
        "backoff",
        "{\"name\":\"backoff\",\"steps\":[{\"name\":\"s\","
        "  \"kind\":\"action\",\"action\":\"@ACT@ s flaky 1\","
        "  \"retry\":{\"max_attempts\":3,\"initial_interval_ms\":1500}}]}");
    pid_t pid = tu_spawn_tool(
        "EVRUN", dir, "runner",
        (const char *const[]){"start", store, def, "--id", "bo1", NULL});
    double deadline = now_s() + 30;
    json_object *ev, *data;
    char *effects, *fire_at, *started;
    result r;
    int ex;

    /* Kill it during the backoff: once retry_scheduled is in the log. */
    while (
        !(exec_exists("bo1") && count_events("bo1", "retry_scheduled") == 1) &&
        now_s() < deadline)
        sleep_ms(10);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    ex = tu_wait_exit(pid);
    cr_assert_eq(ex, 128 + SIGKILL, "the runner exited %d first", ex);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "s bo1/main/s/-1 1\n");
    free(effects);

    r = EVRUN("resume", store, "bo1");
    assert_outcome(&r, 0, "bo1", "completed",
                   "{\"step\":\"s\",\"attempt\":2,\"params\":null}");
    result_free(&r);
    effects = slurp_or_empty(fx);
    cr_assert_str_eq(effects, "s bo1/main/s/-1 1\n"
                              "s bo1/main/s/-1 2\n");
    free(effects);
    cr_assert_eq(count_events("bo1", "retry_scheduled"), 1);
    cr_assert_eq(count_events("bo1", "step_started"), 2);
    /* The new runner waited for the recorded time: both are RFC 3339 UTC
     * with microseconds, so they compare as strings. */
    ev = event_of("bo1", "retry_scheduled", 0);
    cr_assert(json_object_object_get_ex(ev, "data", &data));
    fire_at = str_member(data, "fire_at");
    json_object_put(ev);
    ev = event_of("bo1", "step_started", 1);
    started = str_member(ev, "timestamp");
    json_object_put(ev);
    cr_assert_eq(strlen(fire_at), strlen(started));
    cr_assert_geq(strcmp(started, fire_at), 0,
                  "attempt 2 started at %s, before %s", started, fire_at);
    free(fire_at);
    free(started);
}

/* A race lost by a slow exec: program (a failing path ends it first):
 * the runner kills the program and records the losing path cancelled,
 * so status shows no live path of the failed execution and says where
 * it failed; under serve too. */
Test(evrun, a_lost_race_cancels_the_slow_path_and_status_says_where_it_failed)
{
    const char *def = def_file(
        "race",
        "{\"name\":\"race\",\"steps\":["
        "  {\"name\":\"fork\",\"kind\":\"action\",\"action\":\"echo\","
        "   "
        "\"next\":[{\"to\":\"a\",\"path\":\"A\"},{\"to\":\"b\",\"path\":\"B\"}]"
        ","
        "   \"then\":\"meet\"},"
        "  {\"name\":\"a\",\"kind\":\"action\",\"action\":\"fail\","
        "   \"params\":{\"times\":1,\"fatal\":true}},"
        "  {\"name\":\"b\",\"kind\":\"action\",\"action\":\"exec:sleep 600\"},"
        "  {\"name\":\"meet\",\"kind\":\"join\",\"paths\":[\"A\",\"B\"],"
        "   \"mode\":\"race\"}]}");
    const char *ids[2] = {"r1", "r2"};

    for (int k = 0; k < 2; k++) {
        json_object *st;
        char *v, want[96];
        result r;

        if (k == 0) {
            r = EVRUN("start", store, def, "--id", ids[k]);
            cr_assert_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
            result_free(&r);
        } else {
            r = EVRUN("start", store, def, "--id", ids[k], "--detach");
            cr_assert_eq(r.status, 0, "stderr: %s", r.err);
            result_free(&r);
            serve_pid = tu_spawn_tool(
                "EVRUN", dir, "serve",
                (const char *const[]){"serve", store, "--adopt", "50", NULL});
            await_status(ids[k], "failed");
            cr_assert_eq(kill(serve_pid, SIGTERM), 0);
            cr_assert_eq(tu_wait_exit(serve_pid), 0);
            serve_pid = -1;
        }
        st = status_json(ids[k]);
        v = member(st, "live_paths");
        cr_assert_str_eq(v, "0", "%s", ids[k]);
        free(v);
        v = member(st, "pending_timers");
        cr_assert_str_eq(v, "0");
        free(v);
        /* A detached start is run by the serve that adopts it, which
         * records its takeover first: one event more. */
        snprintf(want, sizeof(want),
                 "{\"path\":\"main\",\"step\":\"meet\","
                 "\"iteration\":-1,\"seq\":%d}",
                 14 + k);
        v = member(st, "failed_at");
        assert_json_eq(v, want);
        free(v);
        json_object_put(st);
        r = EVRUN("status", store, ids[k]);
        snprintf(want, sizeof(want),
                 "failed at  path main, step meet, sequence %d\n", 14 + k);
        cr_assert(strstr(r.out, want), "%s", r.out);
        result_free(&r);
        r = EVDUMP("show", store, ids[k]);
        cr_assert_eq(strstr(r.out, "execution_taken_over") != NULL, k == 1,
                     "%s", r.out);
        result_free(&r);
        r = EVDUMP("show", store, ids[k]);
        cr_assert(strstr(r.out, "path_cancelled"), "%s", r.out);
        result_free(&r);
    }
    /* The program did not outlive its cancelled step (its group was
     * killed; polled, as its exit is asynchronous). */
    for (double deadline = now_s() + 30;
         system("pgrep -f '^sleep 600$' >/dev/null") == 0 &&
         now_s() < deadline;)
        sleep_ms(20);
    cr_assert_neq(system("pgrep -f '^sleep 600$' >/dev/null"), 0);
}

/* The library's errors reach stderr: a new definition that is refused
 * says why, not only that resume failed. */
Test(evrun, resume_and_check_say_why_a_new_definition_is_refused)
{
    const char *w = def_file(
        "w1", "{\"name\":\"w\",\"steps\":["
              "  {\"name\":\"a\",\"kind\":\"wait_event\",\"event\":\"go\","
              "   \"next\":\"b\"},"
              "  {\"name\":\"b\",\"kind\":\"action\",\"action\":\"echo\"}]}");
    const char *w2 = def_file(
        "w2", "{\"name\":\"w\",\"steps\":["
              "  {\"name\":\"a\",\"kind\":\"wait_event\",\"event\":\"go\","
              "   \"next\":\"b\"},"
              "  {\"name\":\"b\",\"kind\":\"action\",\"action\":\"nope\"}]}");
    result r = EVRUN("start", store, w, "--id", "wx");

    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    result_free(&r);
    r = EVRUN("resume", store, "wx", "--definition", w2);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "b: unknown action \"nope\""), "%s", r.err);
    result_free(&r);
    /* check refuses what resume refuses (it called it compatible). */
    r = EVRUN("check", store, w2);
    cr_assert_eq(r.status, 3, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert(strstr(r.err, "b: unknown action \"nope\""), "%s", r.err);
    cr_assert_str_eq(r.out, "");
    result_free(&r);
}
