/*
 * test_recorder.c: the recorder: sequences, ids and timestamps given at
 * record time, the flush triggers (count, bytes, interval), replay mode,
 * flushing at close, and never losing or doubling an event when a flush
 * fails and the log is reopened.
 */
#include <criterion/criterion.h>

#include "fault_io.h"
#include "store_int.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;
static evs_store *st;
static fault_io fio;
static evs_log *wl;

/* What the log hook saw. */
static int hook_errors;
static char hook_msg[1024];   /* the last error, as text */
static char hook_exec[160];   /* its execution field */
static char hook_comp[32];    /* its component */

static void hook(void *ctx, const evs_log_record *r)
{
    (void)ctx;
    if (r->level == EVS_LOG_ERROR) {
        hook_errors++;
        cr_assert_geq(evs_log_format(r, EVS_LOG_TEXT, hook_msg,
                                     sizeof(hook_msg)),
                      0);
        snprintf(hook_exec, sizeof(hook_exec), "%s",
                 r->execution ? r->execution : "(none)");
        snprintf(hook_comp, sizeof(hook_comp), "%s",
                 r->component ? r->component : "(none)");
    }
}

static void open_store(size_t max_line)
{
    evs_store_opts o;

    evs_store_opts_init(&o);
    o.io = &fio.io;
    o.log_fn = hook;
    if (max_line)
        o.max_line = max_line;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &st), 0);
}

/* A store on the fault-injecting I/O, execution "x" with one event, and
 * a writer on it. */
static void setup(void)
{
    dir = tu_tmpdir("rec");
    cr_assert_not_null(dir);
    fault_io_init(&fio);
    hook_errors = 0;
    hook_msg[0] = '\0';
    open_store(0);
    cr_assert_eq(tu_create(st, "x"), 0);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &wl, NULL, NULL), 0);
}

static void teardown(void)
{
    evs_log_close(wl);
    evs_store_close(st);
    tu_rmtree_free(dir);
}

TestSuite(rec, .init = setup, .fini = teardown);

static evs_recorder *rec_open(size_t events, size_t bytes, uint32_t ms)
{
    evs_recorder_opts o;
    evs_recorder *r = NULL;

    evs_recorder_opts_init(&o);
    if (events)
        o.batch_events = events;
    if (bytes)
        o.batch_bytes = bytes;
    if (ms)
        o.interval_ms = ms;
    cr_assert_eq(evs_recorder_open(wl, &o, &r), 0);
    cr_assert_not_null(r);
    return r;
}

/* Records a step event tagged with `n` in its data; returns its seq. */
static uint64_t rec_n(evs_recorder *r, int n)
{
    char data[64];
    evs_event e;
    uint64_t seq = 99;

    snprintf(data, sizeof(data), "{\"n\":%d}", n);
    e = tu_event(EVS_EV_STEP_COMPLETED, "s", data);
    cr_assert_eq(evs_recorder_record(r, &e, &seq), 0);
    return seq;
}

static void expect_state(evs_recorder *r, uint64_t flushed, uint64_t last,
                         size_t pending)
{
    cr_assert_eq(evs_recorder_flushed_seq(r), flushed, "flushed %llu",
                 (unsigned long long)evs_recorder_flushed_seq(r));
    cr_assert_eq(evs_recorder_last_seq(r), last, "last %llu",
                 (unsigned long long)evs_recorder_last_seq(r));
    cr_assert_eq(evs_recorder_pending(r), pending, "pending %zu",
                 evs_recorder_pending(r));
}

/* What a fresh reader sees: how many events, and that the events after
 * the first carry the tags 0, 1, 2, ... in order, each once. */
static uint64_t reader_last(void)
{
    evs_log *l;
    uint64_t v;

    cr_assert_eq(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), 0);
    v = evs_log_last_seq(l);
    evs_log_close(l);
    return v;
}

static void expect_tags(int count)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    uint64_t seq = 0;
    int n, rc;

    cr_assert_eq(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 1 + (uint64_t)count);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1) {
        cr_assert_eq(ev.sequence, ++seq);
        if (seq == 1)
            continue;
        cr_assert_eq(sscanf(ev.data.ptr, "{\"n\":%d}", &n), 1);
        cr_assert_eq(n, (int)seq - 2, "sequence %llu holds tag %d",
                     (unsigned long long)seq, n);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(seq, 1 + (uint64_t)count);
    evs_cursor_close(c);
    evs_log_close(l);
}

/* ------------------------------------------------------------------ */
/* Sequences, ids, timestamps                                         */
/* ------------------------------------------------------------------ */

/* Options are read up to their size (common.h, "Options structs"). */
Test(rec, options_not_filled_in_by_opts_init_are_refused)
{
    evs_recorder_opts o;
    evs_recorder *r = NULL;

    memset(&o, 0, sizeof(o));
    o.batch_events = 1;
    cr_assert_eq(evs_recorder_open(wl, &o, &r), -EINVAL);
    cr_assert_null(r);
    evs_recorder_opts_init(&o);
    cr_assert_eq(o.size, sizeof(o));
    cr_assert_eq(evs_recorder_open(wl, &o, &r), 0);
    evs_recorder_close(r);
}

Test(rec, sequences_continue_the_log)
{
    evs_recorder *r;

    cr_assert_eq(tu_append_n(wl, 4), 0); /* the log ends at 5 */
    r = rec_open(0, 0, 0);
    expect_state(r, 5, 5, 0);
    cr_assert_eq(rec_n(r, 0), 6);
    cr_assert_eq(rec_n(r, 1), 7);
    expect_state(r, 5, 7, 2);
    cr_assert_eq(reader_last(), 5, "nothing written before a flush");
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 7, 7, 0);
    cr_assert_eq(evs_log_last_seq(wl), 7);
    cr_assert_eq(reader_last(), 7);
    cr_assert_eq(evs_recorder_flush(r), 0, "an empty flush is a no-op");
    cr_assert_eq(rec_n(r, 2), 8);
    expect_state(r, 7, 8, 1);
    evs_recorder_close(r);
    cr_assert_eq(reader_last(), 8);
}

Test(rec, ids_and_timestamps_are_given_at_record_time)
{
    evs_recorder *r = rec_open(0, 0, 0);
    evs_event e1 = tu_event("step_started", "a", "{}");
    evs_event e2 = tu_event("step_started", "b", "{}");
    evs_event e3 = tu_event("step_started", "c", "{}");
    evs_log *l;
    evs_cursor *c;
    evs_event got;
    int64_t before, after;
    char id1[EVS_UUID_LEN + 1] = "";

    e2.id = evs_span_cstr("caller-id");
    e2.timestamp_us = 1700000000123456LL;
    before = evs_now_us();
    cr_assert_eq(evs_recorder_record(r, &e1, NULL), 0);
    after = evs_now_us();
    cr_assert_eq(evs_recorder_record(r, &e2, NULL), 0);
    cr_assert_eq(evs_recorder_record(r, &e3, NULL), 0);
    /* Let the clock move on, so a timestamp given at flush time would
     * fall outside [before, after]. */
    usleep(2000);
    cr_assert_eq(evs_recorder_flush(r), 0);

    cr_assert_eq(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 2, 0, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 1);
    cr_assert(evs__span_eq_cstr(got.step_name, "a"));
    cr_assert_geq(got.timestamp_us, before);
    cr_assert_leq(got.timestamp_us, after);
    cr_assert_eq(got.id.len, EVS_UUID_LEN);
    cr_assert_eq(got.id.ptr[14], '7');
    memcpy(id1, got.id.ptr, EVS_UUID_LEN);
    cr_assert_eq(got.batch_first, 2);
    cr_assert_eq(got.batch_count, 3, "one flush is one append");
    cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 1);
    cr_assert(evs__span_eq_cstr(got.id, "caller-id"));
    cr_assert_eq(got.timestamp_us, 1700000000123456LL);
    cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 1);
    cr_assert_eq(got.id.len, EVS_UUID_LEN);
    cr_assert_neq(memcmp(got.id.ptr, id1, EVS_UUID_LEN), 0);
    cr_assert(evs__span_eq_cstr(got.execution_id, "x"));
    cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 0);
    evs_cursor_close(c);
    evs_log_close(l);
    evs_recorder_close(r);
}

Test(rec, the_caller_event_may_be_freed_after_record)
{
    evs_recorder *r = rec_open(0, 0, 0);
    char type[32], step[32], data[32];
    evs_event e;

    strcpy(type, "step_started");
    strcpy(step, "kept");
    strcpy(data, "{\"n\":0}");
    e = tu_event(type, step, data);
    cr_assert_eq(evs_recorder_record(r, &e, NULL), 0);
    memset(type, 'z', sizeof(type) - 1);
    memset(step, 'z', sizeof(step) - 1);
    memset(data, 'z', sizeof(data) - 1);
    cr_assert_eq(evs_recorder_flush(r), 0);
    evs_recorder_close(r);
    expect_tags(1);
}

Test(rec, bad_events_are_refused_at_record_time)
{
    evs_recorder *r = rec_open(0, 0, 0);
    evs_event e;
    uint64_t seq = 99;

    e = tu_event("", "s", "{}");
    cr_assert_eq(evs_recorder_record(r, &e, &seq), -EINVAL);
    e = tu_event("step_started", "s", "{\"a\":");
    cr_assert_eq(evs_recorder_record(r, &e, &seq), -EINVAL);
    e = tu_event("step_started", "bad \xc3\x28 utf-8", "{}");
    cr_assert_eq(evs_recorder_record(r, &e, &seq), -EINVAL);
    e = tu_event("step_started", "s", "{}");
    e.path_id = evs_span_cstr("\xff");
    cr_assert_eq(evs_recorder_record(r, &e, &seq), -EINVAL);
    e = tu_event("step_started", "s", "{}");
    e.timestamp_us = 400000000000000000LL; /* year 14645 */
    cr_assert_eq(evs_recorder_record(r, &e, &seq), -EINVAL);
    expect_state(r, 1, 1, 0);
    /* A refused event takes no sequence, and the buffer still flushes. */
    cr_assert_eq(rec_n(r, 0), 2);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 2, 2, 0);
    evs_recorder_close(r);
    expect_tags(1);
}

Test(rec, a_line_over_max_line_is_too_big_at_record_time)
{
    evs_recorder *r;
    evs_event e;
    char *big = malloc(6000);

    cr_assert_not_null(big);
    evs_log_close(wl);
    evs_store_close(st);
    open_store(4096);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &wl, NULL, NULL), 0);
    r = rec_open(0, 0, 0);
    memset(big, 'a', 6000);
    big[0] = '"';
    big[5998] = '"';
    big[5999] = '\0';
    e = tu_event("step_started", "s", big);
    cr_assert_eq(evs_recorder_record(r, &e, NULL), EVS_ETOOBIG);
    expect_state(r, 1, 1, 0);
    cr_assert_eq(rec_n(r, 0), 2);
    cr_assert_eq(evs_recorder_flush(r), 0);
    evs_recorder_close(r);
    expect_tags(1);
    free(big);
}

/* ------------------------------------------------------------------ */
/* Flush triggers                                                     */
/* ------------------------------------------------------------------ */

Test(rec, flushes_when_batch_events_are_buffered)
{
    evs_recorder *r = rec_open(4, 0, 0);

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    expect_state(r, 1, 4, 3);
    cr_assert_eq(reader_last(), 1);
    cr_assert_eq(rec_n(r, 3), 5);
    expect_state(r, 5, 5, 0);
    cr_assert_eq(reader_last(), 5);
    for (int i = 4; i < 11; i++)
        rec_n(r, i);
    expect_state(r, 9, 12, 3);
    cr_assert_eq(reader_last(), 9);
    evs_recorder_close(r);
    expect_tags(11);
}

Test(rec, batch_events_of_one_flushes_every_record)
{
    evs_recorder *r = rec_open(1, 0, 0);

    for (int i = 0; i < 5; i++) {
        cr_assert_eq(rec_n(r, i), 2 + (uint64_t)i);
        expect_state(r, 2 + (uint64_t)i, 2 + (uint64_t)i, 0);
    }
    evs_recorder_close(r);
    expect_tags(5);
}

/* Records an event with `n` in a data of exactly 1000 bytes. */
static void rec_kilo(evs_recorder *r, int n)
{
    char data[1001];
    evs_event e;
    int k = snprintf(data, sizeof(data), "{\"n\":%d,\"pad\":\"", n);

    memset(data + k, 'p', sizeof(data) - 1 - (size_t)k - 2);
    memcpy(data + sizeof(data) - 3, "\"}", 3);
    cr_assert_eq(strlen(data), 1000);
    e = tu_event(EVS_EV_STEP_COMPLETED, "s", data);
    cr_assert_eq(evs_recorder_record(r, &e, NULL), 0);
}

Test(rec, flushes_when_batch_bytes_are_buffered)
{
    /* Lines of 1000 bytes of data plus an envelope of less than 500:
     * two stay under 3000 bytes, three reach it. */
    evs_recorder *r = rec_open(0, 3000, 0);

    rec_kilo(r, 0);
    rec_kilo(r, 1);
    expect_state(r, 1, 3, 2);
    rec_kilo(r, 2);
    expect_state(r, 4, 4, 0);
    rec_kilo(r, 3);
    rec_kilo(r, 4);
    expect_state(r, 4, 6, 2);
    rec_kilo(r, 5);
    expect_state(r, 7, 7, 0);
    evs_recorder_close(r);
    expect_tags(6);
}

Test(rec, tick_flushes_only_after_the_interval)
{
    evs_recorder *r = rec_open(0, 0, 50);
    const int64_t iv = 50 * 1000;
    int64_t before, after;

    cr_assert_eq(evs_recorder_tick(r, evs_now_us() + 10 * iv), 0,
                 "nothing buffered, nothing to do");
    before = evs_now_us();
    rec_n(r, 0);
    after = evs_now_us();
    rec_n(r, 1);
    /* The oldest event was recorded at or after `before`. */
    cr_assert_eq(evs_recorder_tick(r, before + iv - 1), 0);
    expect_state(r, 1, 3, 2);
    /* ... and at or before `after`: the interval has passed for it, and
     * the newer event goes with it. */
    cr_assert_eq(evs_recorder_tick(r, after + iv), 0);
    expect_state(r, 3, 3, 0);
    cr_assert_eq(reader_last(), 3);

    /* The interval counts from the oldest event of the new buffer. */
    before = evs_now_us();
    rec_n(r, 2);
    cr_assert_eq(evs_recorder_tick(r, before + iv - 1), 0);
    expect_state(r, 3, 4, 1);
    cr_assert_eq(evs_recorder_tick(r, evs_now_us() + iv), 0);
    expect_state(r, 4, 4, 0);
    evs_recorder_close(r);
    expect_tags(3);
}

/* ------------------------------------------------------------------ */
/* Replay mode and close                                              */
/* ------------------------------------------------------------------ */

Test(rec, replay_mode_records_nothing)
{
    evs_recorder *r = rec_open(1, 0, 0);
    evs_event e = tu_event("step_started", "s", "{}");
    uint64_t seq = 99;

    cr_assert_eq(evs_recorder_replaying(r), 0);
    evs_recorder_set_replay(r, 1);
    cr_assert_eq(evs_recorder_replaying(r), 1);
    for (int i = 0; i < 3; i++) {
        seq = 99;
        cr_assert_eq(evs_recorder_record(r, &e, &seq), 0);
        cr_assert_eq(seq, 0);
    }
    expect_state(r, 1, 1, 0);
    cr_assert_eq(evs_recorder_flush(r), 0);
    cr_assert_eq(evs_recorder_tick(r, evs_now_us() + 1000000000), 0);
    cr_assert_eq(reader_last(), 1);
    evs_recorder_set_replay(r, 0);
    cr_assert_eq(evs_recorder_replaying(r), 0);
    cr_assert_eq(rec_n(r, 0), 2);
    evs_recorder_close(r);
    expect_tags(1);
}

Test(rec, close_flushes_what_is_buffered)
{
    evs_recorder *r = rec_open(0, 0, 0);

    for (int i = 0; i < 5; i++)
        rec_n(r, i);
    expect_state(r, 1, 6, 5);
    cr_assert_eq(reader_last(), 1);
    evs_recorder_close(r);
    cr_assert_eq(evs_log_last_seq(wl), 6);
    cr_assert_eq(hook_errors, 0);
    expect_tags(5);
}

Test(rec, a_failed_flush_at_close_is_reported_to_the_log_hook)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    fault_io_arm(&fio, FIO_WRITE, 1, -EIO, 1);
    evs_recorder_close(r);
    fault_io_disarm(&fio);
    cr_assert_geq(hook_errors, 1);
    cr_assert_not_null(strstr(hook_msg, "3 events"), "hook said: %s", hook_msg);
    cr_assert_str_eq(hook_exec, "x", "the record names the execution");
    cr_assert_str_eq(hook_comp, "store");
    cr_assert_eq(reader_last(), 1);
}

Test(rec, open_and_set_log_need_a_writer)
{
    evs_recorder *r = NULL;
    evs_log *ro;

    cr_assert_eq(evs_log_open(st, "x", 1, 0, &ro, NULL, NULL), 0);
    cr_assert_eq(evs_recorder_open(ro, NULL, &r), EVS_EREADONLY);
    cr_assert_null(r);
    cr_assert_eq(evs_recorder_open(wl, NULL, &r), 0);
    cr_assert_eq(evs_recorder_set_log(r, ro), EVS_EREADONLY);
    evs_recorder_close(r);
    evs_log_close(ro);
}

/* ------------------------------------------------------------------ */
/* Failed flushes                                                     */
/* ------------------------------------------------------------------ */

/* Closes the poisoned writer (it holds the lock) and opens a new one. */
static void reopen_writer(evs_recorder *r)
{
    evs_log *old = wl;

    evs_log_close(old);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &wl, NULL, NULL), 0);
    cr_assert_eq(evs_recorder_set_log(r, wl), 0);
}

Test(rec, a_failed_write_keeps_the_events_for_the_next_log)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    fault_io_arm(&fio, FIO_WRITE, 1, -EIO, 0);
    cr_assert_eq(evs_recorder_flush(r), -EIO);
    cr_assert_eq(fio.fired, 1);
    expect_state(r, 1, 4, 3);
    cr_assert_eq(evs_recorder_flush(r), EVS_EPOISONED);
    expect_state(r, 1, 4, 3);
    cr_assert_eq(rec_n(r, 3), 5, "recording goes on meanwhile");
    expect_state(r, 1, 5, 4);
    cr_assert_eq(reader_last(), 1);
    {
        /* The poisoned handle keeps the lock until it is closed. */
        evs_log *l2 = NULL;
        cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l2, NULL, NULL),
                     EVS_ELOCKED);
    }

    /* Between closing the old writer and handing over the new one, the
     * recorder keeps recording without touching the closed log. */
    evs_log_close(wl);
    wl = NULL;
    cr_assert_eq(rec_n(r, 4), 6);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &wl, NULL, NULL), 0);
    cr_assert_eq(evs_recorder_set_log(r, wl), 0);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 6, 6, 0);
    evs_recorder_close(r);
    expect_tags(5);
}

Test(rec, a_torn_write_keeps_the_events_for_the_next_log)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    fault_io_arm(&fio, FIO_WRITE, 1, FIO_SHORT, 0);
    cr_assert_lt(evs_recorder_flush(r), 0);
    expect_state(r, 1, 4, 3);
    reopen_writer(r);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 4, 4, 0);
    evs_recorder_close(r);
    expect_tags(3);
}

/* The write reached the file, the sync failed, and so did the truncate
 * that should have taken it back: the events are in the log although the
 * flush failed. */
static void fail_after_write(evs_recorder *r)
{
    fault_io_arm(&fio, FIO_FDATASYNC | FIO_TRUNCATE, 1, -EIO, 1);
    cr_assert_eq(evs_recorder_flush(r), -EIO);
    cr_assert_geq(fio.fired, 2, "the sync and the truncate failed");
    fault_io_disarm(&fio);
}

Test(rec, a_flush_that_reached_the_log_is_not_written_twice)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    fail_after_write(r);
    expect_state(r, 1, 4, 3);
    cr_assert_eq(reader_last(), 4, "the bytes are in the file");
    reopen_writer(r);
    cr_assert_eq(evs_log_last_seq(wl), 4);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 4, 4, 0);
    cr_assert_eq(evs_log_last_seq(wl), 4);
    evs_recorder_close(r);
    expect_tags(3);
}

Test(rec, events_recorded_after_a_flush_that_reached_the_log_are_added)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    fail_after_write(r);
    cr_assert_eq(rec_n(r, 3), 5);
    cr_assert_eq(rec_n(r, 4), 6);
    expect_state(r, 1, 6, 5);
    reopen_writer(r);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 6, 6, 0);
    cr_assert_eq(evs_log_last_seq(wl), 6);
    evs_recorder_close(r);
    expect_tags(5);
}

Test(rec, set_log_refuses_a_log_that_lacks_flushed_events)
{
    evs_recorder *r = rec_open(0, 0, 0);
    evs_log *y;

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    cr_assert_eq(evs_recorder_flush(r), 0);
    cr_assert_eq(tu_create(st, "y"), 0);
    cr_assert_eq(evs_log_open(st, "y", 1, EVS_LOG_WRITE, &y, NULL, NULL), 0);
    cr_assert_eq(evs_recorder_set_log(r, y), EVS_ECONFLICT);
    /* Another execution's log is refused even when it is long enough:
     * the events would land in the wrong execution. */
    cr_assert_eq(tu_append_n(y, 5), 0);
    cr_assert_eq(evs_recorder_set_log(r, y), EVS_ECONFLICT);
    cr_assert_eq(evs_log_last_seq(y), 6);
    rec_n(r, 3);
    cr_assert_eq(evs_recorder_flush(r), 0, "still on the first log");
    evs_log_close(y);
    evs_recorder_close(r);
    expect_tags(4);
}

Test(rec, events_of_another_writer_are_a_conflict_not_an_overwrite)
{
    evs_recorder *r = rec_open(0, 0, 0);
    evs_event other = tu_event("signal_received", "", "{\"other\":1}");

    for (int i = 0; i < 2; i++)
        rec_n(r, i);
    /* The writer changes hands and someone else appends first. */
    evs_log_close(wl);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &wl, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(wl, &other, 1, 1, NULL), 0);
    cr_assert_eq(evs_recorder_set_log(r, wl), 0);
    cr_assert_eq(evs_recorder_flush(r), EVS_ECONFLICT);
    expect_state(r, 1, 3, 2);
    cr_assert_eq(evs_log_last_seq(wl), 2);
    cr_assert_eq(reader_last(), 2);
    evs_recorder_close(r);
    cr_assert_geq(hook_errors, 1, "close reports what it could not flush");
    cr_assert_eq(reader_last(), 2, "close never overwrote the other event");
}

/* ------------------------------------------------------------------ */
/* The three-part flush (begin / run / end)                           */
/* ------------------------------------------------------------------ */

typedef struct runner_arg {
    evs_recorder_batch *b;
    int rc;
} runner_arg;

static void *run_batch(void *p)
{
    runner_arg *a = p;

    a->rc = evs_recorder_flush_run(a->b);
    return NULL;
}

Test(rec, a_batch_is_appended_by_another_thread_while_records_go_on)
{
    evs_recorder *r = rec_open(2, 0, 0); /* would flush every 2 records */
    evs_recorder_batch *b = NULL;
    runner_arg a;
    pthread_t t;

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    /* batch_events 2: the first two flushed by themselves, one buffered */
    expect_state(r, 3, 4, 1);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    cr_assert_not_null(b);
    expect_state(r, 3, 4, 0);
    {
        evs_recorder_batch *b2 = NULL;
        cr_assert_eq(evs_recorder_flush_begin(r, &b2), -EBUSY);
        cr_assert_null(b2);
    }
    cr_assert_eq(evs_recorder_flush(r), -EBUSY);
    /* Records made while the batch is out follow it, and neither the
     * batch limit nor a tick flushes them meanwhile. */
    cr_assert_eq(rec_n(r, 3), 5);
    cr_assert_eq(rec_n(r, 4), 6);
    cr_assert_eq(rec_n(r, 5), 7);
    cr_assert_eq(evs_recorder_tick(r, evs_now_us() + 3600 * 1000000LL), 0);
    expect_state(r, 3, 7, 3);
    cr_assert_eq(reader_last(), 3);
    a.b = b;
    cr_assert_eq(pthread_create(&t, NULL, run_batch, &a), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(a.rc, 0);
    cr_assert_eq(reader_last(), 4, "the batch is in the log");
    cr_assert_eq(evs_recorder_flush_end(r, b), 0);
    expect_state(r, 4, 7, 3);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 7, 7, 0);
    evs_recorder_close(r);
    expect_tags(6);
}

Test(rec, an_empty_buffer_begins_no_batch)
{
    evs_recorder *r = rec_open(0, 0, 0);
    evs_recorder_batch *b = (evs_recorder_batch *)&b;

    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    cr_assert_null(b);
    cr_assert_eq(evs_recorder_flush(r), 0, "nothing is out");
    evs_recorder_close(r);
}

Test(rec, a_failed_batch_puts_its_events_back_before_the_newer_ones)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);
    evs_recorder_batch *b = NULL;

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    cr_assert_eq(rec_n(r, 3), 5);
    fault_io_arm(&fio, FIO_WRITE, 1, -EIO, 0);
    cr_assert_eq(evs_recorder_flush_run(b), -EIO);
    cr_assert_eq(evs_recorder_flush_end(r, b), -EIO);
    expect_state(r, 1, 5, 4);
    cr_assert_eq(reader_last(), 1);
    reopen_writer(r);
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 5, 5, 0);
    evs_recorder_close(r);
    expect_tags(4);
}

Test(rec, a_batch_that_reached_the_log_before_failing_is_not_written_twice)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);
    evs_recorder_batch *b = NULL;

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    rec_n(r, 3);
    fault_io_arm(&fio, FIO_FDATASYNC | FIO_TRUNCATE, 1, -EIO, 1);
    cr_assert_eq(evs_recorder_flush_run(b), -EIO);
    fault_io_disarm(&fio);
    cr_assert_eq(evs_recorder_flush_end(r, b), -EIO);
    expect_state(r, 1, 5, 4);
    cr_assert_eq(reader_last(), 4, "the bytes are in the file");
    reopen_writer(r);
    /* The same three (same ids) are acknowledged, then the fourth
     * appended: one copy of each. */
    cr_assert_eq(evs_recorder_flush(r), 0);
    expect_state(r, 5, 5, 0);
    evs_recorder_close(r);
    expect_tags(4);
}

static void expect_snapshot(uint64_t seq, const char *status)
{
    evs_snapshot *got = NULL;

    cr_assert_eq(evs_snapshot_load(st, "x", 1, &got, NULL), 0);
    cr_assert_eq(got->last_event_seq, seq);
    cr_assert(evs__span_eq_cstr(got->status, status), "%.*s",
              (int)got->status.len, got->status.ptr);
    evs_snapshot_free(got);
}

Test(rec, a_batch_carries_the_snapshot_of_its_end)
{
    evs_recorder *r = rec_open(0, 0, 0);
    evs_recorder_batch *b = NULL;
    evs_snapshot sn = tu_snapshot_at(4, "completed");
    int src = -1;

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    cr_assert_eq(evs_recorder_flush_run_snapshot(b, 0, &sn, EVS_SNAPSHOT_CACHE,
                                                 &src),
                 0);
    cr_assert_eq(src, 0);
    cr_assert_eq(evs_recorder_flush_end(r, b), 0);
    expect_state(r, 4, 4, 0);
    expect_snapshot(4, "completed");
    /* Without a snapshot it is flush_run. */
    rec_n(r, 3);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    cr_assert_eq(evs_recorder_flush_run_snapshot(b, 0, NULL, 0, &src), 0);
    cr_assert_eq(src, 1, "no snapshot");
    cr_assert_eq(evs_recorder_flush_end(r, b), 0);
    expect_snapshot(4, "completed");
    evs_recorder_close(r);
    expect_tags(4);
}

Test(rec, a_batch_retried_whole_still_saves_its_snapshot)
{
    TU_FILE_ONLY("faults injected through evs_io");
    evs_recorder *r = rec_open(0, 0, 0);
    evs_recorder_batch *b = NULL;
    evs_snapshot sn = tu_snapshot_at(4, "failed");
    int src = -1;

    for (int i = 0; i < 3; i++)
        rec_n(r, i);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    /* The bytes reach the file, the sync fails: the snapshot is not
     * tried. */
    fault_io_arm(&fio, FIO_FDATASYNC | FIO_TRUNCATE, 1, -EIO, 1);
    cr_assert_eq(evs_recorder_flush_run_snapshot(b, 0, &sn, 0, &src), -EIO);
    fault_io_disarm(&fio);
    cr_assert_eq(src, 1);
    cr_assert_eq(evs_recorder_flush_end(r, b), -EIO);
    cr_assert_eq(reader_last(), 4, "the bytes are in the file");
    expect_snapshot(1, "running");
    /* The retry finds every event in the log: none written twice, and
     * the snapshot saved. */
    reopen_writer(r);
    cr_assert_eq(evs_recorder_flush_begin(r, &b), 0);
    cr_assert_eq(evs_recorder_flush_run_snapshot(b, 0, &sn, 0, &src), 0);
    cr_assert_eq(src, 0);
    cr_assert_eq(evs_recorder_flush_end(r, b), 0);
    expect_snapshot(4, "failed");
    evs_recorder_close(r);
    expect_tags(3);
}

/* ------------------------------------------------------------------ */
/* data checked once, at record time                                  */
/* ------------------------------------------------------------------ */

/* Events whose data is valid but not compact, so that the recorder's
 * compacted copy and the log's own compacting could differ. */
static const char *const loose_data[] = {
    "{ \"a\" : 1 }",
    "\n[1, 2 ,{\"b\":\t\"x y\"} ]\r\n",
    "{\"s\":\"tab\\t q\\\" bs\\\\ \\u00e9 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
    "  \"just a string\"  ",
    "-12.5e+3",
    "{\"deep\":[[[[{\"k\":[true, false, null]}]]]]}",
};
#define NLOOSE (sizeof(loose_data) / sizeof(loose_data[0]))

static evs_event loose_event(size_t i, char id[EVS_UUID_LEN + 1])
{
    evs_event e = tu_event(EVS_EV_STEP_COMPLETED, "s", loose_data[i]);

    snprintf(id, EVS_UUID_LEN + 1, "01a25000-0000-7000-8000-%012zx", i);
    e.id = (evs_span){id, EVS_UUID_LEN};
    e.timestamp_us = 1800000000000000LL + (int64_t)i;
    return e;
}

/* The bytes of execution x's log in `d` after its first line. */
static char *lines_after_first(const char *d, size_t *len)
{
    char *p = tu_path(d, "x", "events.jsonl");
    size_t n = 0;
    char *all = tu_read_file(p, &n), *nl;

    cr_assert_not_null(all);
    free(p);
    nl = memchr(all, '\n', n);
    cr_assert_not_null(nl);
    *len = n - (size_t)(nl + 1 - all);
    memmove(all, nl + 1, *len);
    return all;
}

Test(rec, lines_are_those_of_a_direct_append_of_the_same_events)
{
    evs_recorder *r = rec_open(NLOOSE, 0, 0);
    char ids[NLOOSE][EVS_UUID_LEN + 1], *d2, *a, *b;
    evs_event ev[NLOOSE];
    evs_store *s2;
    evs_log *l2;
    size_t alen, blen;
    TU_FILE_ONLY("compares the log files' bytes");

    /* Through the recorder, which checks data once and keeps it
     * compacted... */
    for (size_t i = 0; i < NLOOSE; i++) {
        ev[i] = loose_event(i, ids[i]);
        cr_assert_eq(evs_recorder_record(r, &ev[i], NULL), 0, "event %zu", i);
    }
    expect_state(r, 1 + NLOOSE, 1 + NLOOSE, 0);
    evs_recorder_close(r);
    /* ...and the same events in one direct append in another store,
     * whose log compacts them itself: the same bytes. */
    d2 = tu_tmpdir("rec2");
    cr_assert_not_null(d2);
    cr_assert_eq(evs_store_open(d2, NULL, &s2), 0);
    cr_assert_eq(tu_create(s2, "x"), 0);
    cr_assert_eq(evs_log_open(s2, "x", 1, EVS_LOG_WRITE, &l2, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l2, ev, NLOOSE, 1, NULL), 0);
    evs_log_close(l2);
    evs_store_close(s2);
    a = lines_after_first(dir, &alen);
    b = lines_after_first(d2, &blen);
    cr_assert_eq(alen, blen);
    cr_assert_eq(memcmp(a, b, alen), 0, "recorder:\n%.*s\ndirect:\n%.*s",
                 (int)alen, a, (int)blen, b);
    cr_assert_not_null(strstr(a, "{\"a\":1}"), "data is compact");
    free(a);
    free(b);
    tu_rmtree_free(d2);
    cr_assert_eq(reader_last(), 1 + NLOOSE);
}

Test(rec, data_that_is_not_json_is_refused_and_never_reaches_the_log)
{
    static const char *const bad[] = {
        "{\"a\":1} x",          /* trailing garbage */
        "{\"s\":\"\x01\"}",     /* a control byte in a string */
        "{\"s\":\"\xc3\x28\"}", /* invalid UTF-8 */
        "{\"s\":\"\\q\"}",      /* a bad escape */
        "{\"s\":\"\\u12\"}",    /* a short \u escape */
        "[1,]",
        "{\"a\" 1}",
        "01",
        "\"open",
    };
    evs_recorder *r = rec_open(0, 0, 0);
    evs_event e;
    uint64_t seq = 99;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = tu_event(EVS_EV_STEP_COMPLETED, "s", bad[i]);
        cr_assert_eq(evs_recorder_record(r, &e, &seq), -EINVAL, "bad[%zu]",
                     i);
        cr_assert_eq(seq, 0);
    }
    expect_state(r, 1, 1, 0);
    cr_assert_eq(rec_n(r, 0), 2);
    cr_assert_eq(evs_recorder_flush(r), 0);
    evs_recorder_close(r);
    expect_tags(1);
}

Test(rec, the_checked_data_flag_is_refused_from_outside)
{
    evs_event e = tu_event(EVS_EV_STEP_COMPLETED, "s", "{\"a\":");

    /* The flag the recorder passes to skip the second check is not one
     * a caller of the public append may pass: unchecked data would
     * reach the log. */
    cr_assert_eq(evs_log_append_flags(wl, &e, 1, 1, EVS__APPEND_DATA_COMPACT,
                                      NULL),
                 -EINVAL);
    cr_assert_eq(evs_log_append_flags(wl, &e, 1, 1,
                                      EVS__APPEND_DATA_COMPACT |
                                          EVS_APPEND_NO_SYNC,
                                      NULL),
                 -EINVAL);
    cr_assert_eq(evs_log_last_seq(wl), 1);
    expect_tags(0);
}
