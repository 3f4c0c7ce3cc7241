/*
 * test_cron.c: cron expressions and time zones (formats/SCHEDULES.md §3,
 * §4): a table of expressions, a zone, a start and the fires expected
 * after it, the changes of daylight-saving time in Europe/Berlin and
 * America/New_York among them; and the expressions refused, with the
 * byte where each goes wrong.
 *
 * The expected times were worked out by hand from the calendar (2026:
 * Berlin goes to summer time on 29 March at 01:00 UTC and back on 25
 * October at 01:00 UTC; New York on 8 March at 07:00 UTC and back on 1
 * November at 06:00 UTC), not from the code.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Zone `name` from the system's tzdata (read here, parsed by the
 * library), or UTC. */
static evs_tz *zone(const char *name)
{
    const char *dir = getenv("TZDIR");
    char path[512], *buf = NULL;
    size_t len = 0;
    evs_tz *z = NULL;
    evs_error_info err;
    int rc;

    if (strcmp(name, "UTC") != 0) {
        snprintf(path, sizeof(path), "%s/%s",
                 dir && *dir ? dir : "/usr/share/zoneinfo", name);
        buf = tu_read_file(path, &len);
        cr_assert_not_null(buf, "tzdata has no %s (install tzdata)", path);
    }
    rc = evs_tz_parse(name, (evs_span){buf, len}, NULL, &z, &err);
    cr_assert_eq(rc, 0, "zone %s: %s", name, err.msg);
    free(buf);
    return z;
}

static int64_t at(const char *rfc3339)
{
    int64_t us;

    cr_assert_eq(evs_time_parse(rfc3339, strlen(rfc3339), &us), 0, "%s",
                 rfc3339);
    return us / 1000000;
}

static const struct {
    const char *expr, *zone, *start;
    const char *next[4];
} table[] = {
    /* Berlin, spring: 02:30 does not exist on 29 March; it fires once,
     * as the clock comes out of the gap (03:00 CEST = 01:00Z). */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-03-27T12:00:00Z",
     {"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
    /* Every 30 minutes of hour 2: both fall in the gap, one fire. */
    {"*/30 2 * * *",
     "Europe/Berlin",
     "2026-03-28T12:00:00Z",
     {"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"}},
    /* Hourly across the gap: 02:00 and 03:00 are one instant. */
    {"0 * * * *",
     "Europe/Berlin",
     "2026-03-28T23:30:00Z",
     {"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
    /* Berlin, autumn: 02:30 comes twice on 25 October; it fires at the
     * first (CEST), not again an hour later. */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-10-24T12:00:00Z",
     {"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
    /* ... and a start inside the repeated hour does not fire it again. */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-10-25T01:10:00Z",
     {"2026-10-26T01:30:00Z"}},
    /* Hourly (hour field '*') fires in both 02:00s: every real hour. */
    {"0 * * * *",
     "Europe/Berlin",
     "2026-10-24T23:30:00Z",
     {"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
    /* New York, spring: 02:30 on 8 March does not exist. */
    {"30 2 * * *",
     "America/New_York",
     "2026-03-07T12:00:00Z",
     {"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
    {"@hourly",
     "America/New_York",
     "2026-03-08T06:30:00Z",
     {"2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
    /* New York, autumn: 01:30 on 1 November comes twice. */
    {"30 1 * * *",
     "America/New_York",
     "2026-10-31T12:00:00Z",
     {"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
    {"*/20 * * * *",
     "America/New_York",
     "2026-11-01T05:50:00Z",
     {"2026-11-01T06:00:00Z", "2026-11-01T06:20:00Z", "2026-11-01T06:40:00Z",
      "2026-11-01T07:00:00Z"}},
    /* A daily fire in New York keeps its local time across the change. */
    {"0 9 * * *",
     "America/New_York",
     "2026-03-07T15:00:00Z",
     {"2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"}},
    /* UTC, and the calendar. 7 December 2026 is a Monday. */
    {"@weekly",
     "UTC",
     "2026-12-07T10:00:00Z",
     {"2026-12-13T00:00:00Z", "2026-12-20T00:00:00Z"}},
    {"0 0 * * 7", "UTC", "2026-12-07T10:00:00Z", {"2026-12-13T00:00:00Z"}},
    {"0 0 29 2 *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
    /* Both day fields given: the 13th or a Friday. */
    {"0 12 13 * 5",
     "UTC",
     "2026-02-01T00:00:00Z",
     {"2026-02-06T12:00:00Z", "2026-02-13T12:00:00Z", "2026-02-20T12:00:00Z"}},
    /* Day of month with '*' in the weekday: only the 1st. */
    {"15 14 1 * *",
     "UTC",
     "2026-05-31T23:00:00Z",
     {"2026-06-01T14:15:00Z", "2026-07-01T14:15:00Z"}},
    {"0 9-17/4 * * mon-fri",
     "UTC",
     "2026-12-07T10:00:00Z",
     {"2026-12-07T13:00:00Z", "2026-12-07T17:00:00Z", "2026-12-08T09:00:00Z"}},
    {"@yearly",
     "UTC",
     "2026-12-07T10:00:00Z",
     {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
    {"@monthly",
     "Europe/Berlin",
     "2026-12-07T10:00:00Z",
     {"2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z"}},
    {"5,10 3 * JAN,jul SUN",
     "UTC",
     "2026-12-07T10:00:00Z",
     {"2027-01-03T03:05:00Z", "2027-01-03T03:10:00Z", "2027-01-10T03:05:00Z"}},
    /* Far past the zone file's last transition: the footer's rule. */
    {"30 2 * * *",
     "Europe/Berlin",
     "2061-03-26T12:00:00Z",
     {"2061-03-27T01:00:00Z", "2061-03-28T00:30:00Z"}},
};

Test(cron, the_table_of_expressions_fires_when_expected)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
        evs_tz *z = zone(table[i].zone);
        evs_cron c;
        evs_error_info err;
        int64_t t = at(table[i].start), next;

        cr_assert_eq(evs_cron_parse(evs_span_cstr(table[i].expr), &c, &err), 0,
                     "%s: %s", table[i].expr, err.msg);
        for (size_t k = 0; k < 4 && table[i].next[k]; k++) {
            char got[EVS_TIME_LEN + 1];

            cr_assert_eq(evs_cron_next(&c, z, t, &next), 0, "%s",
                         table[i].expr);
            evs_time_format(next * 1000000, got);
            cr_expect_eq(next, at(table[i].next[k]),
                         "\"%s\" in %s after %s: fire %zu is %s, not %s",
                         table[i].expr, table[i].zone, table[i].start, k + 1,
                         got, table[i].next[k]);
            t = next;
        }
        evs_tz_free(z);
    }
}

Test(cron, a_zone_gives_its_offset_on_either_side_of_a_change)
{
    evs_tz *b = zone("Europe/Berlin"), *u = zone("UTC");

    cr_expect_eq(evs_tz_offset(b, at("2026-03-29T00:59:59Z")), 3600);
    cr_expect_eq(evs_tz_offset(b, at("2026-03-29T01:00:00Z")), 7200);
    cr_expect_eq(evs_tz_offset(b, at("2026-10-25T00:59:59Z")), 7200);
    cr_expect_eq(evs_tz_offset(b, at("2026-10-25T01:00:00Z")), 3600);
    cr_expect_eq(evs_tz_offset(b, at("2090-07-01T00:00:00Z")), 7200);
    cr_expect_eq(evs_tz_offset(u, at("2026-07-01T00:00:00Z")), 0);
    cr_expect_str_eq(evs_tz_name(b), "Europe/Berlin");
    evs_tz_free(b);
    evs_tz_free(u);
}

Test(cron, bytes_that_are_no_tzif_file_are_refused)
{
    evs_tz *z = NULL;
    evs_error_info err;

    cr_expect_eq(
        evs_tz_parse("X/Y", evs_span_cstr("TZif2 but no more"), NULL, &z, &err),
        EVS_EPARSE);
    cr_expect_str_eq(err.kind, "timezone");
    cr_expect_null(z);
    /* UTC needs no file; another zone does. */
    cr_expect_eq(evs_tz_parse("Europe/Paris", (evs_span){0}, NULL, &z, &err),
                 EVS_EPARSE);
}

static const struct {
    const char *expr;
    uint64_t offset;
    const char *msg;
} refused[] = {
    {"60 * * * *", 0, "minute 60 is out of range 0-59"},
    {"* 24 * * *", 2, "hour 24 is out of range 0-23"},
    {"0 0 0 * *", 4, "day of month 0 is out of range 1-31"},
    {"* * * 13 *", 6, "month 13 is out of range 1-12"},
    {"* * * * 8", 8, "day of week 8 is out of range 0-7"},
    {"* * * *", 7, "day of week: missing"},
    {"* * * * * *", 10, "more than five fields"},
    {"*/0 * * * *", 2, "a step must be 1-60"},
    {"5-2 * * * *", 0, "the range 5-2 runs backwards"},
    {"* * 30 2 *", 0, "it never fires"},
    {"@sometimes", 0, "unknown shorthand"},
    {"@daily 5", 7, "nothing may follow @daily"},
    {"* * * foo *", 6, "'f' is not a value here"},
    {"1,,2 * * * *", 2, "a value is missing"},
    {"1 2 3 4 5x", 9, "unexpected 'x'"},
    {"", 0, "minute: missing"},
};

Test(cron, a_bad_expression_is_refused_with_the_position_of_the_error)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
        evs_cron c;
        evs_error_info err;

        cr_expect_eq(evs_cron_parse(evs_span_cstr(refused[i].expr), &c, &err),
                     EVS_EPARSE, "\"%s\" is refused", refused[i].expr);
        cr_expect_eq(err.offset, refused[i].offset,
                     "\"%s\": at byte %llu, not %llu (%s)", refused[i].expr,
                     (unsigned long long)err.offset,
                     (unsigned long long)refused[i].offset, err.msg);
        cr_expect(strstr(err.msg, refused[i].msg) != NULL,
                  "\"%s\": \"%s\" says \"%s\"", refused[i].expr, err.msg,
                  refused[i].msg);
        cr_expect_str_eq(err.kind, "cron");
    }
}
