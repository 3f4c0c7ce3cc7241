/*
 * test_gc.c: the store's settings file (evstore/settings.h), retention
 * applied by evs_store_gc and the statistics (evstore/gc.h): each policy,
 * a dry run, archiving before deleting, writers and other processes' locks left
 * alone, lineage of kept executions kept, damaged settings refused.
 */
#include "evstore/archive.h"
#include "store_int.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DAY (86400LL * 1000000)
/* The test's "now": 2026-01-31. Every age is measured from it. */
static const int64_t NOW = 1769817600LL * 1000000;

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("gc", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

/* Creates execution `id` of workflow "wf" with `status`, ended `age`
 * before NOW (age < 0: not ended), whose first event names `origin`
 * (may be NULL) as what it continues. */
static void make(const char *id, const char *status, int64_t age,
                 const char *origin)
{
    char data[256];
    evs_event ev[2];
    evs_snapshot sn;

    if (origin)
        snprintf(data, sizeof(data),
                 "{\"workflow_name\":\"wf\",\"lineage\":"
                 "{\"continued_from\":\"%s\"}}",
                 origin);
    else
        snprintf(data, sizeof(data), "{\"workflow_name\":\"wf\"}");
    ev[0] = tu_event(EVS_EV_EXECUTION_STARTED, "", data);
    ev[1] = tu_event(EVS_EV_PATH_STARTED, "", "{}");
    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr("wf");
    sn.status = evs_span_cstr(status);
    sn.start_time_us = NOW - 400 * DAY;
    sn.end_time_us = age >= 0 ? NOW - age : 0;
    sn.created_at_us = 0;
    cr_assert_eq(evs_exec_create(st, id, strlen(id), &sn, ev, 2), 0, "%s", id);
}

static int exists(const char *id)
{
    return evs_exec_exists(st, id, strlen(id));
}

static void set(const char *key, const char *value)
{
    evs_settings *s;
    evs_error_info ei;

    cr_assert_eq(evs_settings_load(st, &s, &ei), 0, "%s", ei.msg);
    cr_assert_eq(evs_settings_set(s, key, value, &ei), 0, "%s", ei.msg);
    cr_assert_eq(evs_settings_save(st, s, &ei), 0, "%s", ei.msg);
    evs_settings_free(s);
}

/* What gc reported, as "id:action" lines. */
typedef struct seen {
    char text[4096];
} seen;

static void note_item(void *ctx, const evs_gc_item *it)
{
    seen *w = ctx;
    size_t n = strlen(w->text);

    snprintf(w->text + n, sizeof(w->text) - n, "%.*s:%d\n", (int)it->id.len,
             it->id.ptr, (int)it->action);
}

static int gc(int dry, evs_gc_result *res, seen *w)
{
    evs_gc_opts o;
    evs_error_info ei;

    evs_gc_opts_init(&o);
    o.now_us = NOW;
    o.dry_run = dry;
    o.on_item = w ? note_item : NULL;
    o.ctx = w;
    return evs_store_gc(st, &o, res, &ei);
}

/* ------------------------------------------------------------------ */
/* Settings                                                           */
/* ------------------------------------------------------------------ */

TestSuite(settings, .init = setup, .fini = teardown);

Test(settings, defaults_without_a_file)
{
    evs_settings *s;
    const char *v;
    int64_t us;
    uint64_t n;
    int set_ = 1;

    cr_assert_eq(evs_settings_load(st, &s, NULL), 0);
    cr_assert_eq(evs_settings_get(s, "gc.interval", &v, &set_, NULL), 0);
    cr_assert_str_eq(v, "1h");
    cr_assert_eq(set_, 0);
    cr_assert_eq(evs_settings_duration(s, "retention.failed", &us), 0);
    cr_assert_eq(us, EVS_DURATION_NEVER);
    cr_assert_eq(evs_settings_duration(s, "gc.interval", &us), 0);
    cr_assert_eq(us, 3600LL * 1000000);
    cr_assert_eq(evs_settings_count(s, "limits.max_events", &n), 0);
    cr_assert_eq(n, 51200);
    cr_assert_eq(evs_settings_count(s, "limits.warn_bytes", &n), 0);
    cr_assert_eq(n, 10u << 20);
    cr_assert_eq(evs_settings_count(s, "gc.interval", &n), -EINVAL);
    cr_assert_eq(evs_settings_duration(s, "nope", &us), -ENOENT);
    evs_settings_free(s);
}

Test(settings, set_get_unset_round_trip_through_the_file)
{
    evs_settings *s;
    const char *v;
    int64_t us;
    int is_set;

    set("retention.completed", "007d");
    set("gc.interval", "0");
    set("retention.archive", "/var/archive \"x\"");
    set("limits.warn_bytes", "1024");
    set("limits.max_bytes", "1048576");
    cr_assert_eq(evs_settings_load(st, &s, NULL), 0);
    cr_assert_eq(evs_settings_get(s, "retention.completed", &v, &is_set, NULL),
                 0);
    cr_assert_str_eq(v, "7d");
    cr_assert_eq(is_set, 1);
    cr_assert_eq(evs_settings_duration(s, "retention.completed", &us), 0);
    cr_assert_eq(us, 7 * DAY);
    cr_assert_eq(evs_settings_get(s, "gc.interval", &v, NULL, NULL), 0);
    cr_assert_str_eq(v, "off");
    cr_assert_eq(evs_settings_get(s, "retention.archive", &v, NULL, NULL), 0);
    cr_assert_str_eq(v, "/var/archive \"x\"");
    evs_settings_free(s);

    set("retention.completed", NULL);
    cr_assert_eq(evs_settings_load(st, &s, NULL), 0);
    cr_assert_eq(evs_settings_get(s, "retention.completed", &v, &is_set, NULL),
                 0);
    cr_assert_str_eq(v, "forever");
    cr_assert_eq(is_set, 0);
    evs_settings_free(s);
}

static const char *default_of(const char *key)
{
    const evs_setting_key *k;

    for (size_t i = 0; (k = evs_setting_key_at(i)) != NULL; i++)
        if (strcmp(k->name, key) == 0)
            return k->default_value;
    cr_assert_fail("no key %s", key);
    return NULL;
}

Test(settings, refuses_unknown_keys_and_bad_values_unchanged)
{
    static const char *const bad[][2] = {
        {"retention.completed", "7"},     {"retention.completed", "7y"},
        {"retention.completed", "-1d"},   {"retention.completed", "d"},
        {"retention.completed", "36501d"}, {"retention.failed", "1d "},
        {"gc.interval", "forever"},       {"limits.max_events", "1e3"},
        {"limits.max_events", "-5"},      {"limits.max_events", "012"},
        {"retention.archive", "relative"}, {"retention.archive", "/a\nb"},
        {"limits.warn_events", "60000"}, /* above the default max 51200 */
    };
    evs_settings *s;
    evs_error_info ei;
    const char *v;

    cr_assert_eq(evs_settings_new(NULL, &s), 0);
    cr_assert_eq(evs_settings_set(s, "retention.forever", "1d", &ei), -ENOENT);
    cr_assert(strstr(ei.msg, "retention.forever"));
    cr_assert_eq(evs_settings_get(s, "nope", &v, NULL, NULL), -ENOENT);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(evs_settings_set(s, bad[i][0], bad[i][1], &ei), -EINVAL,
                     "%s=%s", bad[i][0], bad[i][1]);
        cr_assert(ei.msg[0]);
        cr_assert_eq(evs_settings_get(s, bad[i][0], &v, NULL, NULL), 0);
        cr_assert_str_eq(v, default_of(bad[i][0]), "%s unchanged", bad[i][0]);
    }
    cr_assert_eq(evs_settings_get(s, "limits.warn_events", &v, NULL, NULL), 0);
    cr_assert_str_eq(v, "10240", "a refused value leaves the old one");
    evs_settings_free(s);
}

/* Writes `text` as the settings file, replacing it. */
static void put_file(const char *text)
{
    char *p = tu_join(dir, EVS_SETTINGS_FILE);

    cr_assert_eq(tu_write_file(p, text, strlen(text)), 0);
    free(p);
}

static char *file_text(void)
{
    char *p = tu_join(dir, EVS_SETTINGS_FILE), *t;
    size_t n;

    t = tu_read_file(p, &n);
    cr_assert(t);
    free(p);
    return t;
}

Test(settings, every_damaged_byte_of_the_file_is_refused)
{
    TU_FILE_ONLY("damages the settings file");
    evs_settings *s = NULL;
    evs_error_info ei;
    char *good;
    size_t len;
    int rc;

    set("retention.failed", "90d");
    good = file_text();
    len = strlen(good);
    for (size_t i = 0; i < len; i++) {
        char *t = strdup(good);
        t[i] ^= 0x01;
        put_file(t);
        rc = evs_settings_load(st, &s, &ei);
        cr_assert(rc == EVS_ECORRUPT || rc == EVS_EFORMAT,
                  "byte %zu flipped: %d", i, rc);
        cr_assert(ei.msg[0]);
        free(t);
    }
    for (size_t n = 0; n < len; n++) {
        char *t = strndup(good, n);
        put_file(t);
        cr_assert_eq(evs_settings_load(st, &s, &ei), EVS_ECORRUPT,
                     "cut to %zu bytes", n);
        free(t);
    }
    /* Two lines: the second is not ignored. */
    {
        size_t k;
        char *t = tu_replace(good, "\n", "\n\n", &k);
        cr_assert_eq(k, 1);
        put_file(t);
        cr_assert_eq(evs_settings_load(st, &s, NULL), EVS_ECORRUPT);
        free(t);
    }
    free(good);
}

/* A settings line with a valid checksum around `body` (which ends in a
 * comma). */
static void put_sealed(const char *body)
{
    char buf[1024];
    size_t n = strlen(body);

    memcpy(buf, body, n);
    n = evs__frame_seal(buf, n);
    buf[n] = '\0';
    put_file(buf);
}

Test(settings, a_newer_format_or_an_unknown_key_is_refused)
{
    TU_FILE_ONLY("writes the settings file by hand");
    evs_settings *s = NULL;
    evs_error_info ei;

    put_sealed("{\"v\":2,\"kind\":\"settings\",\"values\":{},");
    cr_assert_eq(evs_settings_load(st, &s, &ei), EVS_EFORMAT);
    cr_assert(strstr(ei.msg, "format 2"), "%s", ei.msg);
    put_sealed("{\"v\":1,\"kind\":\"settings\",\"values\":"
               "{\"retention.running\":\"1d\"},");
    cr_assert_eq(evs_settings_load(st, &s, &ei), EVS_EFORMAT);
    cr_assert(strstr(ei.msg, "retention.running"), "%s", ei.msg);
    put_sealed("{\"v\":1,\"kind\":\"settings\",\"values\":"
               "{\"retention.failed\":\"1d\",\"retention.failed\":\"2d\"},");
    cr_assert_eq(evs_settings_load(st, &s, &ei), EVS_ECORRUPT);
    put_sealed("{\"v\":1,\"kind\":\"settings\",\"values\":"
               "{\"limits.max_events\":\"12\"},");
    cr_assert_eq(evs_settings_load(st, &s, &ei), EVS_ECORRUPT);
    put_sealed("{\"v\":1,\"kind\":\"settings\",\"values\":"
               "{\"limits.max_events\":20000},");
    cr_assert_eq(evs_settings_load(st, &s, &ei), 0, "%s", ei.msg);
    evs_settings_free(s);
}

Test(settings, gc_refuses_a_damaged_file_and_deletes_nothing)
{
    TU_FILE_ONLY("damages the settings file");
    char *t;

    make("old", "completed", 30 * DAY, NULL);
    set("retention.completed", "1d");
    t = file_text();
    t[strlen(t) - 5] ^= 1; /* a checksum digit */
    put_file(t);
    free(t);
    cr_assert_eq(gc(0, NULL, NULL), EVS_ECORRUPT);
    cr_assert(exists("old"));
}

/* ------------------------------------------------------------------ */
/* Policies                                                           */
/* ------------------------------------------------------------------ */

TestSuite(gc, .init = setup, .fini = teardown);

Test(gc, keeps_everything_by_default)
{
    evs_gc_result r;

    make("a", "completed", 1000 * DAY, NULL);
    make("b", "failed", 1000 * DAY, NULL);
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.executions, 2);
    cr_assert_eq(r.expired, 0);
    cr_assert(exists("a") && exists("b"));
}

Test(gc, deletes_by_status_and_age)
{
    static const struct {
        const char *id, *status;
        int64_t age;
        int gone;
    } cases[] = {
        {"c-old", "completed", 8 * DAY, 1},
        {"c-edge", "completed", 7 * DAY, 1},
        {"c-young", "completed", 7 * DAY - 1, 0},
        {"f-old", "failed", 91 * DAY, 1},
        {"f-young", "failed", 30 * DAY, 0},
        {"t-old", "terminated", 13 * 3600LL * 1000000, 1},
        {"t-young", "terminated", 11 * 3600LL * 1000000, 0},
        {"k-old", "continued", 1000 * DAY, 0}, /* forever */
        {"r-old", "running", -1, 0},
        {"w-old", "waiting", -1, 0},
        {"p-old", "paused", -1, 0},
    };
    evs_gc_result r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        make(cases[i].id, cases[i].status, cases[i].age, NULL);
    set("retention.completed", "7d");
    set("retention.failed", "90d");
    set("retention.terminated", "12h");
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.expired, 4);
    cr_assert_eq(r.deleted, 4);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(exists(cases[i].id), !cases[i].gone, "%s", cases[i].id);
    TU_FILE_ONLY_REST();
    cr_assert_eq(tu_count_entries(dir), 7 + 1, "no trash left (+ settings)");
}

Test(gc, a_dry_run_reports_and_deletes_nothing)
{
    evs_gc_result r;
    seen w = {""};

    make("old", "completed", 10 * DAY, NULL);
    make("new", "completed", 1 * DAY, NULL);
    set("retention.completed", "7d");
    cr_assert_eq(gc(1, &r, &w), 0);
    cr_assert_eq(r.deleted, 1);
    cr_assert_str_eq(w.text, "old:0\n");
    cr_assert(exists("old") && exists("new"));
}

/* Appends the event that ends execution `id` (`type`) to its log: the
 * archive judges from the log whether an execution has ended. */
static void end_log(const char *id, const char *type)
{
    evs_event ev = tu_event(type, "", "{}");
    evs_log *w;

    cr_assert_eq(evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &w, NULL,
                              NULL),
                 0);
    cr_assert_eq(evs_log_append(w, &ev, 1, evs_log_last_seq(w), NULL), 0);
    evs_log_close(w);
}

Test(gc, refuses_an_archive_directory_that_is_not_there)
{
    evs_gc_result r;
    evs_error_info ei;
    evs_gc_opts o;

    make("old", "completed", 10 * DAY, NULL);
    set("retention.completed", "7d");
    set("retention.archive", "/nonexistent/archive");
    evs_gc_opts_init(&o);
    o.now_us = NOW;
    cr_assert_eq(evs_store_gc(st, &o, &r, &ei), -ENOENT);
    cr_assert(strstr(ei.msg, "retention.archive names /nonexistent/archive"),
              "%s", ei.msg);
    cr_assert(exists("old"));
    /* A dry run still says what would go. */
    cr_assert_eq(gc(1, &r, NULL), 0);
    cr_assert_eq(r.deleted, 1);
    cr_assert(exists("old"));
}

/* retention.archive: each expired execution is archived, then deleted;
 * a kept descendant's chain names it as archived; one that has not
 * ended by its log is not deleted. */
Test(gc, archives_before_it_deletes)
{
    TU_FILE_ONLY("archival is the file store's (evstore/archive.h)");
    char *arch = tu_tmpdir("gc-archive"), *bundle, *js = NULL;
    evs_gc_result r;
    seen w = {""};

    cr_assert_not_null(arch);
    make("a", "continued", 100 * DAY, NULL);
    end_log("a", EVS_EV_EXECUTION_CONTINUE_AS_NEW);
    make("b", "running", -1, "a");
    make("z", "completed", 100 * DAY, NULL); /* its log has not ended */
    set("retention.continued", "7d");
    set("retention.completed", "7d");
    set("retention.archive", arch);
    cr_assert_eq(gc(0, &r, &w), -EBUSY, "%s", w.text);
    cr_assert_eq(r.expired, 2);
    cr_assert_eq(r.kept_lineage, 0, "an archived ancestor is not kept");
    cr_assert_eq(r.deleted, 1, "%s", w.text);
    cr_assert_eq(r.failed, 1, "%s", w.text);
    cr_assert(!exists("a") && exists("b") && exists("z"));
    bundle = tu_join(arch, "a.evb");
    cr_assert_eq(access(bundle, F_OK), 0, "%s", bundle);
    cr_assert_eq(evs_bundle_verify(bundle, NULL, NULL), 0);
    cr_assert_eq(evs_inspect_chain(st, "b", &js, NULL), 0);
    cr_assert(strstr(js, "\"id\":\"a\"") && strstr(js, "a.evb"), "%s", js);
    evs_free(NULL, js);
    free(bundle);
    free(arch);
}

Test(gc, leaves_an_execution_a_writer_holds_and_gets_it_later)
{
    evs_gc_result r;
    evs_log *w;
    seen s = {""};

    make("held", "completed", 10 * DAY, NULL);
    make("free", "completed", 10 * DAY, NULL);
    set("retention.completed", "7d");
    cr_assert_eq(evs_log_open(st, "held", 4, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(gc(0, &r, &s), 0);
    cr_assert_eq(r.skipped, 1);
    cr_assert_eq(r.deleted, 1);
    cr_assert(strstr(s.text, "held:2\n"), "%s", s.text);
    cr_assert(exists("held") && !exists("free"));
    evs_log_close(w);
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.deleted, 1);
    cr_assert(!exists("held"));
}

Test(gc, leaves_an_execution_another_process_holds)
{
    int go[2], done[2];
    evs_gc_result r;
    pid_t pid;
    char c;

    make("held", "failed", 10 * DAY, NULL);
    set("retention.failed", "1d");
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(done), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        evs_store *cs = tu_open_store(dir, NULL);
        evs_log *w = NULL;
        int ok = cs && evs_log_open(cs, "held", 4, EVS_LOG_WRITE, &w, NULL,
                                    NULL) == 0;
        c = ok ? 'y' : 'n';
        if (write(go[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
            _exit(2);
        evs_log_close(w);
        evs_store_close(cs);
        _exit(0);
    }
    cr_assert_eq(read(go[0], &c, 1), 1);
    cr_assert_eq(c, 'y', "the child holds the lock");
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.skipped, 1);
    cr_assert(exists("held"));
    cr_assert_eq(tu_count_events(st, "held"), 2);
    cr_assert_eq(write(done[1], "x", 1), 1);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert(!exists("held"));
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

Test(gc, skips_one_whose_log_moved_past_its_snapshot)
{
    evs_gc_result r;
    evs_log *w;

    make("moved", "completed", 10 * DAY, NULL);
    set("retention.completed", "1d");
    cr_assert_eq(evs_log_open(st, "moved", 5, EVS_LOG_WRITE, &w, NULL, NULL),
                 0);
    cr_assert_eq(tu_append_n(w, 1), 0);
    evs_log_close(w);
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.skipped, 1);
    cr_assert(exists("moved"));
}

Test(gc, keeps_the_ancestors_of_a_kept_execution)
{
    evs_gc_result r;
    seen w = {""};
    char *js = NULL;

    /* a <- b <- c (running), and x <- y, both expired. */
    make("a", "continued", 100 * DAY, NULL);
    make("b", "continued", 90 * DAY, "a");
    make("c", "running", -1, "b");
    make("x", "continued", 100 * DAY, NULL);
    make("y", "completed", 90 * DAY, "x");
    set("retention.continued", "7d");
    set("retention.completed", "7d");
    cr_assert_eq(gc(0, &r, &w), 0);
    cr_assert_eq(r.expired, 4);
    cr_assert_eq(r.kept_lineage, 2, "%s", w.text);
    cr_assert_eq(r.deleted, 2);
    cr_assert(exists("a") && exists("b") && exists("c"));
    cr_assert(!exists("x") && !exists("y"));
    cr_assert_eq(evs_inspect_chain(st, "c", &js, NULL), 0);
    cr_assert(strstr(js, "\"id\":\"a\"") && strstr(js, "\"id\":\"b\""), "%s",
                 js);
    evs_free(NULL, js);
}

Test(gc, an_ancestor_of_one_left_alone_stays)
{
    evs_gc_result r;
    evs_log *w;

    make("a", "continued", 100 * DAY, NULL);
    make("b", "completed", 90 * DAY, "a");
    set("retention.continued", "7d");
    set("retention.completed", "7d");
    cr_assert_eq(evs_log_open(st, "b", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.skipped, 1);
    cr_assert_eq(r.kept_lineage, 1);
    cr_assert(exists("a") && exists("b"));
    evs_log_close(w);
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.deleted, 2);
    cr_assert(!exists("a") && !exists("b"));
}

Test(gc, deletes_more_than_one_batch)
{
    evs_gc_result r;
    char id[32];

    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof(id), "e%03d", i);
        make(id, i % 3 ? "completed" : "running", i % 3 ? 10 * DAY : -1, NULL);
    }
    set("retention.completed", "1d");
    cr_assert_eq(gc(0, &r, NULL), 0);
    cr_assert_eq(r.deleted, 400);
    TU_FILE_ONLY_REST();
    cr_assert_eq(tu_count_entries(dir), 200 + 1);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                         */
/* ------------------------------------------------------------------ */

TestSuite(stats, .init = setup, .fini = teardown);

Test(stats, counts_a_known_store_exactly)
{
    TU_FILE_ONLY("plants cut files and an archive record");
    evs_store_stats t;
    evs_log *w;
    char *p;
    uint64_t bytes_big;

    make("a", "completed", 1, NULL);
    make("b", "completed", 1, NULL);
    make("c", "failed", 1, NULL);
    make("d", "running", -1, NULL);
    cr_assert_eq(evs_log_open(st, "d", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(w, 8), 0); /* d: 10 events, snapshot at 2 */
    bytes_big = evs_log_size(w);
    evs_log_close(w);
    p = tu_path(dir, "a", "cut-100-0123456789abcdef.jsonl");
    cr_assert_eq(tu_write_file(p, "12345", 5), 0);
    free(p);
    p = tu_join(dir, ".archived");
    cr_assert_eq(mkdir(p, 0700), 0);
    free(p);
    p = tu_path(dir, ".archived", "x.json");
    cr_assert_eq(tu_write_file(p, "{}", 2), 0);
    free(p);

    cr_assert_eq(evs_store_stats_get(st, 2, &t), 0);
    cr_assert_eq(t.executions, 4);
    cr_assert_eq(t.n_status, 3);
    cr_assert(evs__span_eq_cstr(t.by_status[0].name, "completed"));
    cr_assert_eq(t.by_status[0].count, 2);
    cr_assert_eq(t.n_workflow, 1);
    cr_assert_eq(t.by_workflow[0].count, 4);
    cr_assert_eq(t.events, 2 + 2 + 2 + 10);
    cr_assert_eq(t.events_max, 10);
    cr_assert_eq(t.events_p50, 2);
    cr_assert_eq(t.events_p99, 10);
    cr_assert_eq(t.bytes_max, bytes_big);
    cr_assert_eq(t.n_largest, 2);
    cr_assert(evs__span_eq_cstr(t.largest[0].id, "d"));
    cr_assert_eq(t.largest[0].events, 10);
    cr_assert_eq(t.archived, 1);
    cr_assert_eq(t.cut_files, 1);
    cr_assert_eq(t.cut_bytes, 5);
    cr_assert_eq(t.cut_executions, 1);
    cr_assert_eq(t.stale_snapshots, 1);
    evs_store_stats_free(&t);
}

Test(stats, an_empty_store_has_no_archive_directory)
{
    evs_store_stats t;

    cr_assert_eq(evs_store_stats_get(st, 5, &t), 0);
    cr_assert_eq(t.executions, 0);
    cr_assert_eq(t.archived, -1);
    cr_assert_eq(t.n_largest, 0);
    evs_store_stats_free(&t);
    evs_store_stats_free(&t);
}
