/*
 * evbench.c: the evbench program: options, the data directory, the order
 * the scenarios run in, progress on a terminal and the final report.
 *
 * Exit status: 0 when every selected scenario ran, 1 when one failed,
 * 2 for a usage error. A missed target never changes it: targets are
 * shown for information, because a shared machine makes any threshold
 * flaky.
 */
#include "evbench.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EVBENCH_BUILDTYPE
#define EVBENCH_BUILDTYPE "unknown"
#endif

typedef struct scenario {
    const char *name; /* for --scenario */
    unsigned bit;
    const char *what;
    int (*run)(bench_ctx *c);
} scenario;

static const scenario scenarios[] = {
    {"p1", SC_P1, "durable append, 1 event per call (latency)", scen_p1},
    {"p2", SC_P2, "durable append, 1000 events per call", scen_p2},
    {"p3", SC_P3, "append without sync", scen_p3},
    {"p4", SC_P4, "read + verify of a 1 M-event log", scen_p4},
    {"p6", SC_P6, "last 100 events of a 1 M-event log", scen_p6},
    {"p5", SC_P5, "replay to state of a 1 M-event agent history", scen_p5},
    {"p7", SC_P7, "open + replay of 1 M events with a fresh snapshot", scen_p7},
    {"p8", SC_P8, "listing 100 k executions with a status filter", scen_p8},
    {"api", SC_API,
     "HTTP API beside the C API: a listing's first page, last 100 events",
     scen_api},
    {"gc", SC_GC, "gc of 100 k ended executions (retention)", scen_gc},
    {"p9", SC_P9, "orchestrator: 3-step workflows/s, event latency", scen_p9},
    {"p9db", SC_P9DB,
     "p9's rows on the SQLite and PostgreSQL backends alone (p9 has them;"
     " not in all)",
     scen_p9db},
    {"p11", SC_P11, "durable functions: first step, step-to-step overhead",
     scen_p11},
    {"arch", SC_ARCH, "archive and restore beside the zstd command",
     scen_arch},
    {"p10", SC_P10, "peak memory while reading a 1 GB log", scen_p10},
    {"conc", SC_CONC, "64 executions x durable appends by 1-64 threads",
     scen_conc},
};
#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static const bench_sizes full_sizes = {
    .p1_events = 2000,
    .p2_batches = 100,
    .p3_events = 200000,
    .log_events = 1000000,
    .p6_iters = 200,
    .p8_execs = 100000,
    .p8_budget_s = 120,
    .p10_bytes = (uint64_t)1 << 30,
    .conc_per_exec = 100,
    .conc_one = 1000,
    .p9_durable = 500,
    .p9_nosync = 1000,
    .p9_latency = 30,
    .p11_runs = 20,
    .arch_execs = 64,
    .arch_events = 4000,
    .api_events = 10000,
    .api_iters = 200,
};

static const bench_sizes quick_sizes = {
    .p1_events = 100,
    .p2_batches = 5,
    .p3_events = 10000,
    .log_events = 20000,
    .p6_iters = 30,
    .p8_execs = 500,
    .p8_budget_s = 20,
    .p10_bytes = (uint64_t)16 << 20,
    .conc_per_exec = 2,
    .conc_one = 128,
    .p9_durable = 50,
    .p9_nosync = 300,
    .p9_latency = 5,
    .p11_runs = 3,
    .arch_execs = 8,
    .arch_events = 300,
    .api_events = 1000,
    .api_iters = 30,
};

/* ------------------------------------------------------------------ */
/* Context helpers                                                    */
/* ------------------------------------------------------------------ */

int bench_fail(bench_ctx *c, const char *fmt, ...)
{
    va_list ap;

    bench_progress_clear(c);
    fprintf(stderr,
            "evbench: %s: ", c->cur_scenario ? c->cur_scenario : "setup");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

int bench_evs_fail(bench_ctx *c, int rc, const char *what)
{
    return bench_fail(c, "%s: %s (%s)", what, evs_strerror(rc),
                      evs_err_name(rc));
}

void bench_progress(bench_ctx *c, int force, const char *fmt, ...)
{
    static uint64_t last;
    uint64_t now;
    va_list ap;

    if (!c->progress)
        return;
    now = bench_now_ns();
    if (!force && now - last < 100000000u)
        return;
    last = now;
    fputs("\r\033[K  evbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

void bench_progress_clear(bench_ctx *c)
{
    if (c->progress) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

void bench_note(bench_ctx *c, const char *fmt, ...)
{
    va_list ap;

    if (c->nnotes == BENCH_MAX_NOTES)
        return;
    va_start(ap, fmt);
    vsnprintf(c->notes[c->nnotes++], sizeof(c->notes[0]), fmt, ap);
    va_end(ap);
}

void bench_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

int bench_store_open_at(bench_ctx *c, const char *where, evs_durability d,
                        evs_store **out)
{
    evs_store_opts o;
    int rc;

    evs_store_opts_init(&o);
    o.durability = d;
    /* The scenarios' histories (100,000 events, a million, a GB) are
     * past the default history limits on purpose; with none, every
     * append still makes the limits' comparisons. */
    o.max_events = o.max_bytes = EVS_LIMIT_NONE;
    o.warn_events = o.warn_bytes = EVS_LIMIT_NONE;
    rc = evs_store_open(where, &o, out);
    if (rc != 0)
        return bench_evs_fail(c, rc, "evs_store_open");
    return 0;
}

int bench_store_open(bench_ctx *c, evs_durability d, evs_store **out)
{
    return bench_store_open_at(c, c->store, d, out);
}

int bench_sqlite_store_open(bench_ctx *c, evs_durability d, evs_store **out)
{
    char where[4300];

    snprintf(where, sizeof(where), "sqlite:%s/evs-sqlite.db", c->root);
    return bench_store_open_at(c, where, d, out);
}

/* ------------------------------------------------------------------ */
/* Options                                                            */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: evbench [OPTION]...\n"
        "Measures evstore beside the physical floor (raw system calls doing "
        "the\n"
        "same I/O) and beside SQLite (WAL mode, primary key (execution_id,\n"
        "sequence), same events, same durability), interleaved in every\n"
        "repetition: floor, then evstore, then SQLite. p1, p2, p8 and p9 "
        "also\n"
        "measure evstore on its SQLite backend beside raw SQLite (p9 "
        "without a\n"
        "raw peer) and on its PostgreSQL backend beside raw libpq doing "
        "the\n"
        "same work (prepared, binary, one transaction per append, same\n"
        "synchronous_commit); p9 also with 4 runners on one PostgreSQL "
        "store.\n"
        "\n"
        "Options:\n"
        "  --quick              small sizes (a 20 k-event log instead of 1 M, "
        "500\n"
        "                       executions instead of 100 k, a 16 MiB log\n"
        "                       instead of 1 GiB, ...), so that the whole set\n"
        "                       runs in well under a minute (what CI runs; no\n"
        "                       thresholds)\n"
        "  --scenario NAME[,NAME]...\n"
        "                       run only these scenarios (default: all, which\n"
        "                       leaves out p9db: p9 has its rows)\n"
        "  --repeat N           repetitions per scenario, 1..%d\n"
        "                       (default 5, or 3 with --quick; conc and p9\n"
        "                       run at most 3, p9's database backends once\n"
        "                       with --quick)\n"
        "  --dir DIR            put the data in a fresh directory inside DIR,\n"
        "                       created if missing (default: inside $TMPDIR "
        "if\n"
        "                       set, else inside the directory that holds "
        "this\n"
        "                       program, e.g. the build directory's bench/; "
        "the\n"
        "                       current directory if it was found through "
        "PATH)\n"
        "  --keep               keep the data directory with the data sets "
        "(the\n"
        "                       logs of P4/P6 and P10, the P8 store, ...; the\n"
        "                       files of each repetition are removed as it\n"
        "                       ends). Default: everything is removed, also\n"
        "                       after an error\n"
        "  --json FILE          also write the results as JSON to FILE ('-' "
        "for\n"
        "                       standard output, which then gets no table)\n"
        "  --seed N             seed of the event generator (default 1)\n"
        "  --p8-execs N         executions to create for P8, without the "
        "setup\n"
        "                       time limit (default %zu, or %zu with --quick;\n"
        "                       setup then stops after %.0f s, or %.0f s with\n"
        "                       --quick, and P8 lists what was made); also\n"
        "                       the executions gc deletes and api lists\n"
        "  --pg URI|off         the PostgreSQL server of the PostgreSQL rows\n"
        "                       (p1, p2, p8, p9: evstore on its PostgreSQL\n"
        "                       backend beside raw libpq), each scenario in a\n"
        "                       schema of its own, dropped at the end unless\n"
        "                       --keep; 'off' leaves those rows out.\n"
        "                       Default: the server of libpq's environment\n"
        "                       if PGHOST is set, else a private server\n"
        "                       started with\n"
        "                       scripts/pg-test-server start --durable (fsync\n"
        "                       on) and stopped at the end. When the server\n"
        "                       cannot be had, the rows are noted as not run\n"
        "                       and the exit status is 1\n"
        "  --list               list the scenarios and exit\n"
        "  --help               show this help and exit\n"
        "  --version            print the version of the evstore library and "
        "exit\n"
        "\n"
        "Scenarios:\n",
        BENCH_MAX_REPEAT, full_sizes.p8_execs, quick_sizes.p8_execs,
        full_sizes.p8_budget_s, quick_sizes.p8_budget_s);
    for (size_t i = 0; i < NSCEN; i++)
        fprintf(f, "  %-5s %s\n", scenarios[i].name, scenarios[i].what);
    fprintf(
        f,
        "\n"
        "Every figure is the median [minimum-maximum] over the repetitions;\n"
        "x floor and x SQLite divide evstore's median by theirs; a row "
        "whose\n"
        "SQLite column names another peer (libpq) divides by that peer's. "
        "In api's\n"
        "rows the floor is the same call made through the C API, and evstore\n"
        "the HTTP API (a server embedded in evbench, on a loopback port).\n"
        "Targets (see bench/RESULTS.md) are shown for information only.\n"
        "Standard error gets a line per finished scenario and, when it is a\n"
        "terminal, a progress line.\n"
        "\n"
        "Exit status: 0 if every scenario ran, 1 on an error, 2 on bad usage.\n"
        "A missed target is not an error.\n");
}

static int parse_scenarios(const char *arg, unsigned *mask)
{
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", arg);
    *mask = 0;
    for (tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t i;

        if (strcasecmp(tok, "all") == 0) {
            *mask = ~(unsigned)SC_P9DB;
            continue;
        }
        for (i = 0; i < NSCEN; i++)
            if (strcasecmp(tok, scenarios[i].name) == 0)
                break;
        if (i == NSCEN) {
            fprintf(stderr, "evbench: unknown scenario '%s' (try --list)\n",
                    tok);
            return -1;
        }
        *mask |= scenarios[i].bit;
    }
    return *mask ? 0 : -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_args(bench_ctx *c, int argc, char **argv, const char **dir)
{
    uint64_t v;
    int repeat = 0;

    /* All but p9db, whose rows p9 has. */
    c->scenarios = ~(unsigned)SC_P9DB;
    c->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("evbench (evstore) %s\n", evs_version());
            return 1;
        } else if (strcmp(a, "--list") == 0) {
            for (size_t k = 0; k < NSCEN; k++)
                printf("%-5s %s\n", scenarios[k].name, scenarios[k].what);
            return 1;
        } else if (strcmp(a, "--quick") == 0) {
            c->quick = 1;
        } else if (strcmp(a, "--keep") == 0) {
            c->keep = 1;
        } else if (!val) {
            fprintf(stderr,
                    "evbench: unknown option or missing value: "
                    "%s (try --help)\n",
                    a);
            return 2;
        } else if (strcmp(a, "--scenario") == 0) {
            if (parse_scenarios(val, &c->scenarios) != 0)
                return 2;
            i++;
        } else if (strcmp(a, "--repeat") == 0) {
            if (parse_u64(val, &v) != 0 || v < 1 || v > BENCH_MAX_REPEAT) {
                fprintf(stderr, "evbench: --repeat wants 1..%d\n",
                        BENCH_MAX_REPEAT);
                return 2;
            }
            repeat = (int)v;
            i++;
        } else if (strcmp(a, "--dir") == 0) {
            *dir = val;
            i++;
        } else if (strcmp(a, "--json") == 0) {
            c->json_path = val;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(val, &c->seed) != 0) {
                fprintf(stderr, "evbench: --seed wants a number\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--pg") == 0) {
            if (strcmp(val, "off") != 0 &&
                strncmp(val, "postgresql://", 13) != 0 &&
                strncmp(val, "postgres://", 11) != 0) {
                fprintf(stderr,
                        "evbench: --pg wants a postgresql:// URI or "
                        "'off', not '%s'\n",
                        val);
                return 2;
            }
            c->pg_opt = val;
            i++;
        } else if (strcmp(a, "--p8-execs") == 0) {
            if (parse_u64(val, &v) != 0 || v < 10 || v > 10000000) {
                fprintf(stderr, "evbench: --p8-execs wants 10..10000000\n");
                return 2;
            }
            c->p8_execs_forced = (size_t)v;
            i++;
        } else {
            fprintf(stderr, "evbench: unknown option %s (try --help)\n", a);
            return 2;
        }
    }
    c->sz = c->quick ? quick_sizes : full_sizes;
    c->repeat = repeat ? repeat : c->quick ? 3 : 5;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The data directory                                                 */
/* ------------------------------------------------------------------ */

static int make_dirs(bench_ctx *c, const char *parent, const char *argv0)
{
    char base[4096];
    const char *slash;

    if (!parent)
        parent = getenv("TMPDIR");
    if (!parent || !*parent) {
        /* Beside the program: in a build, the build directory. */
        slash = strrchr(argv0, '/');
        if (slash && slash != argv0)
            snprintf(base, sizeof(base), "%.*s", (int)(slash - argv0), argv0);
        else
            snprintf(base, sizeof(base), ".");
        parent = base;
    }
    if (mkdir(parent, 0700) != 0 && errno != EEXIST)
        return bench_fail(c, "mkdir %s: %s", parent, strerror(errno));
    if ((size_t)snprintf(c->root, sizeof(c->root), "%s/evbench-XXXXXX",
                         parent) >= sizeof(c->root))
        return bench_fail(c, "--dir path too long");
    if (!mkdtemp(c->root))
        return bench_fail(c, "mkdtemp %s: %s", c->root, strerror(errno));
    bench_path(c->store, sizeof(c->store), c->root, "store");
    bench_path(c->floor, sizeof(c->floor), c->root, "floor");
    bench_path(c->sql, sizeof(c->sql), c->root, "sqlite");
    if (mkdir(c->floor, 0700) != 0 || mkdir(c->sql, 0700) != 0)
        return bench_fail(c, "mkdir in %s: %s", c->root, strerror(errno));
    return 0;
}

/* The command line, for the report. */
static void join_args(char *out, size_t cap, int argc, char **argv)
{
    size_t off = 0;

    out[0] = '\0';
    for (int i = 0; i < argc && off + 1 < cap; i++) {
        const char *a = argv[i];

        if (i == 0) {
            const char *s = strrchr(a, '/');
            a = s ? s + 1 : a;
        }
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? " " : "", a);
    }
}

int main(int argc, char **argv)
{
    static bench_ctx ctx;
    bench_ctx *c = &ctx;
    const char *dir = NULL;
    char cmdline[1024];
    uint64_t t0;
    int rc, failed = 0;

    rc = parse_args(c, argc, argv, &dir);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    c->progress = isatty(2);
    join_args(cmdline, sizeof(cmdline), argc, argv);
    if (make_dirs(c, dir, argv[0]) != 0)
        return 1;
    if (strcmp(EVBENCH_BUILDTYPE, "release") != 0)
        bench_note(c,
                   "built as '%s', not release: figures are not "
                   "representative",
                   EVBENCH_BUILDTYPE);
    t0 = bench_now_ns();
    for (size_t i = 0; i < NSCEN; i++) {
        unsigned later = 0;
        uint64_t s0;

        if (!(c->scenarios & scenarios[i].bit))
            continue;
        c->cur_scenario = scenarios[i].name;
        s0 = bench_now_ns();
        bench_progress(c, 1, "%s: starting", scenarios[i].name);
        /* A failed scenario does not stop the others: the run still
         * tells what works, and exits 1 at the end. */
        rc = scenarios[i].run(c);
        failed |= rc != 0;
        if (rc != 0)
            bench_note(c,
                       "%s FAILED (see standard error); its rows, if "
                       "any, are incomplete",
                       scenarios[i].name);
        bench_progress_clear(c);
        fprintf(stderr, "evbench: %s %s in %.1f s\n", scenarios[i].name,
                rc != 0 ? "FAILED" : "done",
                (double)(bench_now_ns() - s0) / 1e9);
        for (size_t k = i + 1; k < NSCEN; k++)
            later |= c->scenarios & scenarios[k].bit;
        if (!(later & (SC_P4 | SC_P6)))
            bench_log_drop(c); /* no later scenario needs the 1 M log */
    }
    c->cur_scenario = NULL;
    bench_log_drop(c);
    bench_pg_finish(c);
    /* PostgreSQL rows that could not run are a scenario not fully run,
     * unless asked for with --pg off. */
    if (c->pg.state == BENCH_PG_NOT_RUN && c->pg.wanted[0] &&
        !(c->pg_opt && strcmp(c->pg_opt, "off") == 0))
        failed = 1;
    bench_note(c, "whole run: %.0f s", (double)(bench_now_ns() - t0) / 1e9);
    if (!c->json_path || strcmp(c->json_path, "-") != 0)
        bench_report_table(c, cmdline);
    if (c->json_path && bench_report_json(c, c->json_path, cmdline) != 0)
        failed = 1;
    if (c->keep)
        fprintf(stderr, "evbench: data kept in %s\n", c->root);
    else
        floor_rm_rf(c->root);
    return failed ? 1 : 0;
}
