/*
 * test_limits.c: the store's history limits (store.h, "History limits";
 * FORMAT.md §3.1): the defaults and "no limit" in the options, an append
 * past the hard limit refused with EVS_ELIMIT naming the execution and
 * writing nothing, an append that ends the execution let through within
 * the reserve, and the recorder's flush refused the same way.
 */
#include <criterion/criterion.h>

#include "store_int.h"
#include "evstore/settings.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static char *dir;
static evs_store *st;
static char logged[1024];

static void log_hook(void *ctx, const evs_log_record *r)
{
    (void)ctx;
    if (r->level == EVS_LOG_ERROR)
        (void)evs_log_format(r, EVS_LOG_TEXT, logged, sizeof(logged));
}

/* The suite's store, with these hard limits (0: the default). */
static void open_with(uint64_t max_events, uint64_t max_bytes)
{
    evs_store_opts o;

    evs_store_close(st);
    evs_store_opts_init(&o);
    o.max_events = max_events;
    o.max_bytes = max_bytes;
    o.log_fn = log_hook;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &st), 0);
}

static void setup(void)
{
    tu_fresh_store("limits", &dir, &st);
    logged[0] = '\0';
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

TestSuite(limits, .init = setup, .fini = teardown);

/* The size of id's log: its file's on disk, or what a reader says (the
 * same bytes on every backend). */
static long long file_size(const char *id)
{
    char path[1024];
    struct stat sb;
    evs_log *l;
    long long n;

    if (!tu_backend_is_file()) {
        cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, NULL, NULL), 0);
        n = (long long)evs_log_size(l);
        evs_log_close(l);
        return n;
    }
    snprintf(path, sizeof(path), "%s/%s/events.jsonl", dir, id);
    cr_assert_eq(stat(path, &sb), 0, "%s", path);
    return (long long)sb.st_size;
}

static evs_log *writer(const char *id)
{
    evs_log *l;

    cr_assert_eq(evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL,
                              NULL),
                 0);
    return l;
}

Test(limits, the_options_default_to_temporals_limits_and_take_none)
{
    const evs_store_opts *o = evs_store_get_opts(st);
    evs_store_opts mine;

    cr_assert_eq(o->warn_events, 10240);
    cr_assert_eq(o->warn_bytes, 10u << 20);
    cr_assert_eq(o->max_events, 51200);
    cr_assert_eq(o->max_bytes, 50u << 20);
    /* 0 is the default, as from a caller of older headers. */
    evs_store_opts_init(&mine);
    mine.warn_events = 0;
    mine.max_bytes = 0;
    evs_store_close(st);
    cr_assert_eq(evs_store_open(tu_loc(dir), &mine, &st), 0);
    o = evs_store_get_opts(st);
    cr_assert_eq(o->warn_events, EVS_LIMIT_WARN_EVENTS_DEFAULT);
    cr_assert_eq(o->max_bytes, EVS_LIMIT_MAX_BYTES_DEFAULT);
    open_with(EVS_LIMIT_NONE, 7);
    o = evs_store_get_opts(st);
    cr_assert_eq(o->max_events, EVS_LIMIT_NONE);
    cr_assert_eq(o->max_bytes, 7);
    cr_assert_str_eq(evs_err_name(EVS_ELIMIT), "EVS_ELIMIT");
}

/* The store's settings file gives the limits the options leave at 0
 * (0 there is "none"); the options win where they are set; a settings
 * file that cannot be read leaves the defaults, and the hook says so. */
Test(limits, the_settings_file_gives_the_limits_the_options_leave)
{
    evs_settings *set;
    const evs_store_opts *o;
    evs_log *l;
    char *path;

    cr_assert_eq(evs_settings_new(NULL, &set), 0);
    cr_assert_eq(evs_settings_set(set, EVS_SET_LIMITS_WARN_EVENTS, "0", NULL),
                 0);
    cr_assert_eq(evs_settings_set(set, EVS_SET_LIMITS_MAX_EVENTS, "5", NULL),
                 0);
    cr_assert_eq(evs_settings_save(st, set, NULL), 0);
    evs_settings_free(set);
    open_with(0, 0);
    o = evs_store_get_opts(st);
    cr_assert_eq(o->max_events, 5);
    cr_assert_eq(o->warn_events, EVS_LIMIT_NONE);
    cr_assert_eq(o->max_bytes, EVS_LIMIT_MAX_BYTES_DEFAULT, "unset: default");
    cr_assert_eq(tu_create(st, "s"), 0);
    l = writer("s");
    cr_assert_eq(tu_append_n(l, 4), 0); /* 5 events */
    cr_assert_eq(tu_append_n(l, 1), EVS_ELIMIT);
    evs_log_close(l);

    open_with(9, 0); /* the options win */
    cr_assert_eq(evs_store_get_opts(st)->max_events, 9);

    TU_FILE_ONLY_REST(); /* damages the settings file */
    path = tu_join(dir, EVS_SETTINGS_FILE);
    cr_assert_eq(tu_flip_bit(path, 3, 1), 0);
    logged[0] = '\0';
    open_with(0, 0);
    o = evs_store_get_opts(st);
    cr_assert_eq(o->max_events, EVS_LIMIT_MAX_EVENTS_DEFAULT);
    cr_assert_eq(o->warn_events, EVS_LIMIT_WARN_EVENTS_DEFAULT);
    cr_assert(strstr(logged, "settings file cannot be read"), "logged: %s",
              logged);
    free(path);
}

Test(limits, an_append_past_max_events_is_refused_naming_the_execution)
{
    evs_log *l;
    evs_error_info info;
    evs_event e[3];
    long long size;

    open_with(10, 0);
    cr_assert_eq(tu_create(st, "run-e"), 0);
    l = writer("run-e");
    cr_assert_eq(tu_append_n(l, 7), 0); /* 8 events */
    size = file_size("run-e");
    for (int i = 0; i < 3; i++)
        e[i] = tu_event(EVS_EV_STEP_COMPLETED, "work", "{}");
    cr_assert_eq(evs_log_append(l, e, 3, 8, &info), EVS_ELIMIT);
    cr_assert_eq(info.code, EVS_ELIMIT);
    cr_assert_str_eq(info.execution_id, "run-e");
    cr_assert_str_eq(info.kind, "limit");
    cr_assert_eq(info.sequence, 9);
    cr_assert(strstr(info.msg, "run-e") && strstr(info.msg, "11 events") &&
                  strstr(info.msg, "limit of 10"),
              "%s", info.msg);
    cr_assert(strstr(logged, "run-e"), "logged: %s", logged);
    /* Nothing was written, and the handle is not poisoned: an append
     * that fits still goes in, up to the limit exactly. */
    cr_assert_eq(evs_log_last_seq(l), 8);
    cr_assert_eq(file_size("run-e"), size);
    cr_assert_eq(evs_log_append(l, e, 2, 8, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 10);
    cr_assert_eq(evs_log_append(l, e, 1, 10, NULL), EVS_ELIMIT);
    evs_log_close(l);
}

Test(limits, an_append_past_max_bytes_is_refused)
{
    evs_log *l;
    evs_error_info info;
    evs_event e;
    uint64_t end;

    open_with(0, 4096);
    cr_assert_eq(tu_create(st, "run-b"), 0);
    l = writer("run-b");
    e = tu_event(EVS_EV_STEP_COMPLETED, "work",
                 "{\"pad\":\"................................................"
                 "............................................\"}");
    while (evs_log_append(l, &e, 1, evs_log_last_seq(l), &info) == 0)
        cr_assert_leq(evs_log_size(l), 4096);
    cr_assert_eq(info.code, EVS_ELIMIT);
    cr_assert_str_eq(info.execution_id, "run-b");
    cr_assert(strstr(info.msg, "bytes") && strstr(info.msg, "limit of 4096"),
              "%s", info.msg);
    end = evs_log_size(l);
    cr_assert_leq(end, 4096);
    cr_assert_eq((long long)end, file_size("run-b"));
    evs_log_close(l);
}

Test(limits, an_append_that_ends_the_execution_may_pass_within_the_reserve)
{
    evs_log *l;
    evs_event e[EVS_LIMIT_RESERVE_EVENTS + 2];
    uint64_t last;

    open_with(5, 0);
    cr_assert_eq(tu_create(st, "run-t"), 0);
    l = writer("run-t");
    cr_assert_eq(tu_append_n(l, 4), 0); /* at the limit: 5 */
    /* Not ending it: refused. */
    e[0] = tu_event(EVS_EV_PATH_CANCELLED, NULL, "{}");
    cr_assert_eq(evs_log_append(l, e, 1, 5, NULL), EVS_ELIMIT);
    /* More than the reserve, even ending it: refused. */
    for (size_t i = 0; i < EVS_LIMIT_RESERVE_EVENTS + 1; i++)
        e[i] = tu_event(EVS_EV_PATH_CANCELLED, NULL, "{}");
    e[EVS_LIMIT_RESERVE_EVENTS] =
        tu_event(EVS_EV_EXECUTION_FAILED, NULL, "{\"error\":null}");
    cr_assert_eq(evs_log_append(l, e, EVS_LIMIT_RESERVE_EVENTS + 1, 5, NULL),
                 EVS_ELIMIT);
    /* Its cancelled paths and its end, within the reserve: in. */
    e[2] = e[EVS_LIMIT_RESERVE_EVENTS];
    cr_assert_eq(evs_log_append(l, e, 3, 5, NULL), 0);
    last = evs_log_last_seq(l);
    cr_assert_eq(last, 8);
    evs_log_close(l);
}

Test(limits, a_retried_append_is_acknowledged_at_the_limit)
{
    evs_log *l;
    evs_event e[2];

    open_with(3, 0);
    cr_assert_eq(tu_create(st, "run-r"), 0);
    l = writer("run-r");
    e[0] = tu_event(EVS_EV_STEP_COMPLETED, "a", "{}");
    e[1] = tu_event(EVS_EV_STEP_COMPLETED, "b", "{}");
    e[0].id = evs_span_cstr("0190f2a0-0000-7000-8000-000000000001");
    e[1].id = evs_span_cstr("0190f2a0-0000-7000-8000-000000000002");
    cr_assert_eq(evs_log_append(l, e, 2, 1, NULL), 0);
    /* The same append again, as after a lost acknowledgement. */
    cr_assert_eq(evs_log_append(l, e, 2, 1, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 3);
    evs_log_close(l);
}

Test(limits, the_recorders_flush_is_refused_and_keeps_its_events)
{
    evs_log *l;
    evs_recorder *r;
    evs_recorder_opts ro;
    evs_event e = tu_event(EVS_EV_STEP_COMPLETED, "work", "{}");

    open_with(4, 0);
    cr_assert_eq(tu_create(st, "run-c"), 0);
    l = writer("run-c");
    evs_recorder_opts_init(&ro);
    ro.batch_events = SIZE_MAX;
    cr_assert_eq(evs_recorder_open(l, &ro, &r), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(evs_recorder_record(r, &e, NULL), 0);
    cr_assert_geq(evs_recorder_pending_bytes(r), 5 * 60);
    cr_assert_eq(evs_recorder_flush(r), EVS_ELIMIT);
    cr_assert(strstr(logged, "run-c") && strstr(logged, "history limit"),
              "logged: %s", logged);
    cr_assert_eq(evs_recorder_pending(r), 5, "nothing dropped");
    cr_assert_eq(evs_log_last_seq(l), 1);
    cr_assert_eq(evs_recorder_discard(r), 5);
    cr_assert_eq(evs_recorder_pending_bytes(r), 0);
    evs_recorder_close(r);
    evs_log_close(l);
}
