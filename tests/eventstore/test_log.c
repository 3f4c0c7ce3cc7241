/*
 * test_log.c: appends, reads, seeks, conflicts and idempotent retries on
 * one execution's log.
 */
#include <criterion/criterion.h>

#include "store_int.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("log", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, append_then_read_back_in_order)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    char want[64];
    uint64_t seq = 0;

    cr_assert_eq(tu_create(st, "run-1"), 0);
    cr_assert_eq(evs_log_open(st, "run-1", 5, EVS_LOG_WRITE, &l, NULL, NULL),
                 0);
    cr_assert_eq(evs_log_last_seq(l), 1);
    cr_assert_eq(tu_append_n(l, 50), 0);
    cr_assert_eq(evs_log_last_seq(l), 51);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while (evs_cursor_next(c, &ev, NULL, NULL) == 1) {
        seq++;
        cr_assert_eq(ev.sequence, seq);
        cr_assert(evs__span_eq_cstr(ev.execution_id, "run-1"));
        if (seq > 1) {
            snprintf(
                want, sizeof(want), "{\"output\":\"step %llu\",\"n\":%llu}",
                (unsigned long long)(seq - 2), (unsigned long long)(seq - 2));
            cr_assert(evs__span_eq_cstr(ev.data, want), "data %.*s",
                      (int)ev.data.len, ev.data.ptr);
            cr_assert(evs__span_eq_cstr(ev.event_type, "step_completed"));
        }
    }
    cr_assert_eq(seq, 51);
    evs_cursor_close(c);
    evs_log_close(l);
}

Test(log, seek_lands_on_every_sequence)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    evs_event batch[100];

    cr_assert_eq(tu_create(st, "seek"), 0);
    cr_assert_eq(evs_log_open(st, "seek", 4, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    /* Mixed single and batched appends, enough bytes for the binary
     * search to run. */
    for (int i = 0; i < 100; i++)
        batch[i] =
            tu_event("step_completed", "s",
                     "{\"output\":"
                     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
    for (int r = 0; r < 20; r++) {
        cr_assert_eq(evs_log_append(l, batch, 100, evs_log_last_seq(l), NULL),
                     0);
        cr_assert_eq(tu_append_n(l, 3), 0);
    }
    uint64_t last = evs_log_last_seq(l);
    cr_assert_eq(last, 1 + 20 * 103);
    cr_assert_gt(evs_log_size(l), 3 * 65536);
    for (uint64_t from = 1; from <= last; from += 7) {
        cr_assert_eq(evs_cursor_open(l, from, from + 2, &c, NULL), 0);
        for (uint64_t k = from; k <= from + 2 && k <= last; k++) {
            cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
            cr_assert_eq(ev.sequence, k);
        }
        if (from + 2 <= last)
            cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 0);
        evs_cursor_close(c);
    }
    /* Past the end: nothing, no error. */
    cr_assert_eq(evs_cursor_open(l, last + 1, 0, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 0);
    evs_cursor_close(c);
    evs_log_close(l);
}

Test(log, conflicting_append_is_refused)
{
    evs_log *l;
    evs_event e = tu_event("step_started", "a", "{}");
    evs_error_info info;

    cr_assert_eq(tu_create(st, "c"), 0);
    cr_assert_eq(evs_log_open(st, "c", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l, &e, 1, 5, &info), EVS_ECONFLICT);
    cr_assert_eq(info.code, EVS_ECONFLICT);
    cr_assert_eq(evs_log_append(l, &e, 1, 0, &info), EVS_ECONFLICT);
    cr_assert_eq(evs_log_last_seq(l), 1);
    evs_log_close(l);
}

Test(log, retried_append_with_same_ids_is_written_once)
{
    evs_log *l;
    evs_event ev[3];
    const char *ids[3] = {"id-a", "id-b", "id-c"};

    cr_assert_eq(tu_create(st, "r"), 0);
    cr_assert_eq(evs_log_open(st, "r", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        ev[i] = tu_event("step_completed", "x", "{\"v\":1}");
        ev[i].id = evs_span_cstr(ids[i]);
    }
    cr_assert_eq(evs_log_append(l, ev, 3, 1, NULL), 0);
    cr_assert_eq(evs_log_append(l, ev, 3, 1, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 4);
    /* Same position, different ids: a conflict. */
    ev[1].id = evs_span_cstr("other");
    cr_assert_eq(evs_log_append(l, ev, 3, 1, NULL), EVS_ECONFLICT);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(st, "r"), 4);
}

Test(log, second_writer_is_locked_out)
{
    evs_log *a, *b;
    evs_error_info info;

    cr_assert_eq(tu_create(st, "lk"), 0);
    cr_assert_eq(evs_log_open(st, "lk", 2, EVS_LOG_WRITE, &a, NULL, NULL), 0);
    cr_assert_eq(evs_log_open(st, "lk", 2, EVS_LOG_WRITE, &b, NULL, &info),
                 EVS_ELOCKED);
    cr_assert_str_eq(info.execution_id, "lk");
    /* Readers take no lock. */
    cr_assert_eq(evs_log_open(st, "lk", 2, 0, &b, NULL, NULL), 0);
    evs_log_close(b);
    evs_log_close(a);
    cr_assert_eq(evs_log_open(st, "lk", 2, EVS_LOG_WRITE, &b, NULL, NULL), 0);
    evs_log_close(b);
}

Test(log, reader_refresh_sees_new_appends)
{
    evs_log *w, *r;

    cr_assert_eq(tu_create(st, "rf"), 0);
    cr_assert_eq(evs_log_open(st, "rf", 2, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(evs_log_open(st, "rf", 2, 0, &r, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(w, 10), 0);
    cr_assert_eq(evs_log_last_seq(r), 1);
    cr_assert_eq(evs_log_refresh(r), 0);
    cr_assert_eq(evs_log_last_seq(r), 11);
    cr_assert_eq(evs_log_append(r, NULL, 0, 0, NULL), 0);
    evs_event e = tu_event("x", NULL, "{}");
    cr_assert_eq(evs_log_append(r, &e, 1, 11, NULL), EVS_EREADONLY);
    evs_log_close(r);
    evs_log_close(w);
}

Test(log, bad_events_are_refused_with_a_reason)
{
    evs_log *l;
    evs_error_info info;
    evs_event e;

    cr_assert_eq(tu_create(st, "bad"), 0);
    cr_assert_eq(evs_log_open(st, "bad", 3, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    e = tu_event("step_completed", "s", "{\"a\":");
    cr_assert_eq(evs_log_append(l, &e, 1, 1, &info), -EINVAL);
    cr_assert(strstr(info.msg, "JSON") != NULL, "%s", info.msg);
    e = tu_event("", "s", "{}");
    cr_assert_eq(evs_log_append(l, &e, 1, 1, &info), -EINVAL);
    e = tu_event("step_completed", "\xff\xfe", "{}");
    cr_assert_eq(evs_log_append(l, &e, 1, 1, &info), -EINVAL);
    e = tu_event("step_completed", "s", "{}");
    e.execution_id = evs_span_cstr("someone-else");
    cr_assert_eq(evs_log_append(l, &e, 1, 1, &info), -EINVAL);
    /* Whitespace in data is minified, not refused. */
    e = tu_event("step_completed", "s", "{ \"a\" :\n [1, 2] }");
    cr_assert_eq(evs_log_append(l, &e, 1, 1, &info), 0);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(st, "bad"), 2);
}

Test(log, seek_far_from_the_end_uses_the_binary_search)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev, batch[500];

    cr_assert_eq(tu_create(st, "far"), 0);
    cr_assert_eq(evs_log_open(st, "far", 3, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    for (int i = 0; i < 500; i++)
        batch[i] = tu_event("step_completed", "s", "{\"output\":\"abc\"}");
    for (int r = 0; r < 20; r++)
        cr_assert_eq(evs_log_append(l, batch, 500, evs_log_last_seq(l), NULL),
                     0);
    cr_assert_eq(evs_log_last_seq(l), 10001);
    /* More than 4096 lines before the end: binary search; fewer: the
     * count back from the end. Both must land exactly. */
    for (uint64_t from = 2; from <= 10001; from += 331) {
        cr_assert_eq(evs_cursor_open(l, from, 0, &c, NULL), 0);
        cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
        cr_assert_eq(ev.sequence, from);
        evs_cursor_close(c);
    }
    evs_log_close(l);
}
