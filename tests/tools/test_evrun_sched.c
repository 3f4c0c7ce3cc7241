/*
 * test_evrun_sched.c: `evrun schedule` and schedules fired by real
 * `evrun serve` processes (path in $EVRUN): two runners on one store,
 * both killed with SIGKILL and started again, one killed for good, fire
 * a one-second schedule; every second from the first fire to the last
 * has exactly one execution, which ran once (formats/SCHEDULES.md §5).
 * The store is tu_loc's, so the suite runs on every backend (suites
 * sqlite and postgresql, tests/meson.build).
 *
 * How long: EVS_SCHED_FIRES seconds of fires (default 6, some 10 s in
 * all). The full size, a few hundred fires:
 *   EVS_SCHED_FIRES=300 meson test -C build evrun_sched
 * (the suite's timeout is the test's own: give meson test
 * --timeout-multiplier for long runs).
 */
#include <criterion/criterion.h>

#include "testutil.h"
#include "tu_file.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir, *store, *loc; /* loc: the store's location (tu_loc) */

static void setup(void)
{
    evs_store *st;

    cr_assert_not_null(getenv("EVRUN"), "EVRUN must name the binary");
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1", 0);
    dir = tu_tmpdir("evrun_sched");
    cr_assert_not_null(dir);
    store = tu_join(dir, "store");
    cr_assert_eq(mkdir(store, 0700), 0);
    /* evrun makes no store without --create: the database's is made
     * here (a directory is a file store already). */
    st = tu_open_store(store, NULL);
    cr_assert_not_null(st, "the store in %s", store);
    evs_store_close(st);
    loc = strdup(tu_loc(store));
    cr_assert_not_null(loc);
}

static void teardown(void)
{
    free(loc);
    free(store);
    tu_rmtree_free(dir);
}

TestSuite(evrun_sched, .init = setup, .fini = teardown, .timeout = 900);

#define EVRUN(...)                                                             \
    tu_run_tool("EVRUN", dir, "run", (const char *const[]){__VA_ARGS__, NULL})

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Writes dir/NAME.json: schedule NAME, the given members, an echo of its
 * fire time. Returns its path (heap). */
static char *sched_file(const char *name, const char *members)
{
    char doc[1024], file[128], *path;

    snprintf(doc, sizeof(doc),
             "{\"name\":\"%s\",%s,\"definition\":{\"name\":\"w\",\"steps\":"
             "[{\"name\":\"a\",\"kind\":\"action\",\"action\":\"echo\","
             "\"params\":{\"at\":\"${inputs.at}\"}}]},"
             "\"inputs\":{\"at\":\"${schedule.time}\"}}",
             name, members);
    snprintf(file, sizeof(file), "%s.json", name);
    path = tu_join(dir, file);
    cr_assert_eq(tu_write_file(path, doc, strlen(doc)), 0);
    return path;
}

/* A runner. Its lease (PostgreSQL's hold on an execution and on a
 * schedule, which a killed runner keeps until it runs out) is 3 s, so
 * the survivors take over within the test. */
static pid_t serve(const char *tag)
{
    return tu_spawn_tool("EVRUN", dir, tag,
                         (const char *const[]){"serve", loc, "--schedules",
                                               "200", "--adopt", "200",
                                               "--lease", "3000", NULL});
}

static void kill9(pid_t pid)
{
    kill(pid, SIGKILL);
    cr_assert_eq(tu_wait_exit(pid), 128 + SIGKILL);
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    cr_assert_eq(tu_wait_exit(pid), 0, "serve exits 0 on SIGTERM");
}

/* The seconds since the epoch in "tick-YYYYMMDDTHHMMSSZ". */
static int64_t fire_of(const char *id)
{
    char t[32];

    cr_assert(strlen(id) == 21 && strncmp(id, "tick-", 5) == 0, "%s", id);
    snprintf(t, sizeof(t), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", id + 5, id + 9,
             id + 11, id + 14, id + 16, id + 18);
    int64_t us;
    cr_assert_eq(evs_time_parse(t, strlen(t), &us), 0, "%s", t);
    return us / 1000000;
}

/* How many times `what` occurs in `text` (NULL: none). */
static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;

    for (const char *p = text; p && (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Test(evrun_sched, two_runners_killed_and_restarted_fire_each_second_once)
{
    long fires = tu_env_long("EVS_SCHED_FIRES", 6);
    char *file = sched_file("tick", "\"interval_ms\":1000,"
                                    "\"overlap\":\"allow_all\"");
    evs_store *st;
    evs_exec_listing l;
    int64_t *t;
    tu_result r;
    pid_t a, b;

    r = EVRUN("schedule", loc, "add", file);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "tick added\n");
    tu_result_free(&r);
    a = serve("a");
    b = serve("b");
    sleep_ms(fires * 500);
    /* Both runners die at once, and no runner is up for two seconds:
     * the fires meanwhile are caught up (the window is an hour). */
    kill9(a);
    kill9(b);
    sleep_ms(2000);
    a = serve("a2");
    b = serve("b2");
    sleep_ms(fires * 250);
    kill9(a); /* one for good: the other goes on alone */
    sleep_ms(fires * 250);
    r = EVRUN("schedule", loc, "pause", "tick", "checking");
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_result_free(&r);
    stop(b);

    st = tu_open_store(store, NULL);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    cr_assert_geq(l.count, (size_t)fires, "%zu fires in %ld s", l.count,
                  fires + 2);
    t = calloc(l.count, sizeof(*t));
    cr_assert_not_null(t);
    for (size_t i = 0; i < l.count; i++) {
        char id[EVS_ID_MAX + 1];
        evs_snapshot *sn = NULL;

        snprintf(id, sizeof(id), "%.*s", (int)l.items[i].id.len,
                 l.items[i].id.ptr);
        t[i] = fire_of(id);
        /* One the runners left unfinished is finished here. */
        if (evs_snapshot_load(st, id, strlen(id), &sn, NULL) == 0 &&
            (sn->status.len != 9 || memcmp(sn->status.ptr, "completed", 9))) {
            tu_result rr = EVRUN("resume", loc, id);
            cr_expect_eq(rr.status, 0, "%s: %s", id, rr.err);
            tu_result_free(&rr);
        }
        evs_snapshot_free(sn);
        /* It ran once: started, path, step started and completed, path
         * and execution completed; and, when the runner that ran it did
         * not create it, its takeover before them. Never a re-dispatch. */
        {
            size_t n;
            char *log = tu_log_lines(st, id, &n);
            size_t took = count_of(log, "\"event_type\":\"execution_taken_over\"");

            cr_expect_eq(count_of(log, "\"event_type\":\"step_started\""), 1,
                         "%s ran once", id);
            cr_expect_eq(count_of(log, "\"event_type\":\"step_redispatched\""),
                         0, "%s ran once", id);
            cr_expect_leq(took, 1, "%s", id);
            cr_expect_eq(tu_count_events(st, id), 6 + took, "%s ran once", id);
            free(log);
        }
    }
    qsort(t, l.count, sizeof(*t), cmp64);
    for (size_t i = 1; i < l.count; i++)
        cr_expect_eq(t[i] - t[i - 1], 1, "fires %zu and %zu: %lld s apart",
                     i - 1, i, (long long)(t[i] - t[i - 1]));
    free(t);
    evs_exec_list_free(&l);
    evs_store_close(st);
    free(file);
}

Test(evrun_sched, schedule_manages_schedules_and_refuses_a_bad_expression)
{
    char *bad = sched_file("bad", "\"cron\":\"0 0 31 2 *\""),
         *typo = sched_file("typo", "\"cron\":\"0 24 * * *\""),
         *ok = sched_file("tick", "\"cron\":\"@daily\",\"timezone\":"
                                  "\"America/New_York\"");
    tu_result r;

    r = EVRUN("schedule", loc, "add", typo);
    cr_expect_eq(r.status, 3);
    cr_expect(strstr(r.err, "at byte 2: hour 24 is out of range 0-23"), "%s",
              r.err);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "add", bad);
    cr_expect_eq(r.status, 3);
    cr_expect(strstr(r.err, "never fires"), "%s", r.err);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "add", ok);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "add", ok);
    cr_expect_eq(r.status, 3, "a name is added once");
    tu_result_free(&r);

    r = EVRUN("schedule", loc, "list");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "tick ") && strstr(r.out, "active") &&
                  strstr(r.out, "@daily"),
              "%s", r.out);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "trigger", "tick");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "-manual started\n"), "%s", r.out);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "describe", "tick", "--next", "3");
    cr_expect_eq(r.status, 0, "%s", r.err);
    /* New York's midnight, in UTC, and the manual fire with its
     * execution, which no runner ran: still running. */
    cr_expect(strstr(r.out, "T05:00:00.000000Z") ||
                  strstr(r.out, "T04:00:00.000000Z"),
              "%s", r.out);
    cr_expect(strstr(r.out, "started  (manual) tick-") &&
                  strstr(r.out, "-manual running"),
              "%s", r.out);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "pause", "tick", "for a while");
    cr_expect_eq(r.status, 0);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "describe", "tick", "--json");
    cr_expect(strstr(r.out, "\"state\":\"paused\",\"note\":\"for a while\""),
              "%s", r.out);
    cr_expect(strstr(r.out, "\"next\":[]"), "%s", r.out);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "unpause", "tick");
    cr_expect_eq(r.status, 0);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "delete", "tick");
    cr_expect_eq(r.status, 0);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "describe", "tick");
    cr_expect_eq(r.status, 3);
    cr_expect(strstr(r.err, "no schedule 'tick'"), "%s", r.err);
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "list");
    cr_expect_str_eq(r.out, "");
    tu_result_free(&r);
    r = EVRUN("schedule", loc, "frobnicate", "tick");
    cr_expect_eq(r.status, 2);
    tu_result_free(&r);
    free(bad);
    free(typo);
    free(ok);
}
