/*
 * test_uuid_time.c: execution id validation, UUIDv7 generation and the
 * RFC 3339 timestamps of formats/uuid_time.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evstore/format.h"

/* ------------------------------------------------------------------ */
/* Execution ids                                                      */
/* ------------------------------------------------------------------ */

static bool id_ok(const char *s)
{
    return evs_id_valid(s, strlen(s));
}

Test(id_valid, accepts_allowlist)
{
    cr_assert(id_ok("a"));
    cr_assert(id_ok("Z"));
    cr_assert(id_ok("0"));
    cr_assert(id_ok("order-1234"));
    cr_assert(id_ok("a.b_c-d"));
    cr_assert(id_ok("a.."));
    cr_assert(id_ok("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
}

Test(id_valid, refuses_paths_and_specials)
{
    cr_assert_not(id_ok(""));
    cr_assert_not(evs_id_valid(NULL, 0));
    cr_assert_not(id_ok("."));
    cr_assert_not(id_ok(".."));
    cr_assert_not(id_ok("a/b"));
    cr_assert_not(id_ok("/x"));
    cr_assert_not(id_ok("a\\b"));
    cr_assert_not(id_ok(".hidden"));
    cr_assert_not(id_ok("-rf"));
    cr_assert_not(id_ok("_x"));
    cr_assert_not(id_ok("a b"));
    cr_assert_not(id_ok("a\n"));
    cr_assert_not(id_ok("a:b"));
    cr_assert_not(id_ok("caf\xc3\xa9"));
    cr_assert_not(evs_id_valid("ab\0cd", 5));
    cr_assert_not(evs_id_valid("ab\0", 3));
    /* Only len bytes count: a valid prefix of a longer string is fine. */
    cr_assert(evs_id_valid("ab/c", 2));
}

Test(id_valid, length_limit)
{
    char buf[EVS_ID_MAX + 2];

    memset(buf, 'a', sizeof(buf));
    cr_assert(evs_id_valid(buf, EVS_ID_MAX));
    cr_assert_eq(EVS_ID_MAX, 128);
    cr_assert_not(evs_id_valid(buf, EVS_ID_MAX + 1));
    cr_assert_not(evs_id_valid(buf, EVS_ID_MAX + 2));
}

/* ------------------------------------------------------------------ */
/* UUIDv7                                                             */
/* ------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Asserts the 8-4-4-4-12 lower-case layout, version 7 and variant 10. */
static void check_uuid7(const char *u)
{
    int i;

    cr_assert_eq(strlen(u), EVS_UUID_LEN, "%s", u);
    for (i = 0; i < EVS_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(u[i], '-', "%s: '-' expected at %d", u, i);
        else
            cr_assert_geq(hexval(u[i]), 0, "%s: hex expected at %d", u, i);
    }
    cr_assert_eq(u[14], '7', "%s: version", u);
    cr_assert_eq(hexval(u[19]) >> 2, 2, "%s: variant", u);
}

Test(uuid7, format_version_variant)
{
    char u[EVS_UUID_LEN + 1];
    int i;

    for (i = 0; i < 1000; i++) {
        memset(u, 'X', sizeof(u));
        cr_assert_eq(evs_uuid7(u), 0);
        cr_assert_eq(u[EVS_UUID_LEN], '\0');
        check_uuid7(u);
    }
}

Test(uuid7, timestamp_is_now)
{
    char u[EVS_UUID_LEN + 1];
    uint64_t ms = 0;
    int64_t before, after;
    int i;

    before = evs_now_us() / 1000;
    cr_assert_eq(evs_uuid7(u), 0);
    after = evs_now_us() / 1000;
    for (i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        ms = ms << 4 | (uint64_t)hexval(u[i]);
    }
    /* The counter may borrow from the next milliseconds after earlier
     * tests; a little slack covers that. */
    cr_assert_geq((int64_t)ms, before, "%s", u);
    cr_assert_leq((int64_t)ms, after + 100, "%s", u);
}

Test(uuid7, strictly_increasing)
{
    enum { N = 100000 };
    char(*u)[EVS_UUID_LEN + 1] = malloc(N * sizeof(*u));
    int i;

    cr_assert_not_null(u);
    for (i = 0; i < N; i++)
        cr_assert_eq(evs_uuid7(u[i]), 0);
    for (i = 1; i < N; i++)
        cr_assert_lt(strcmp(u[i - 1], u[i]), 0, "%s !< %s", u[i - 1], u[i]);
    check_uuid7(u[N - 1]);
    free(u);
}

enum { NTHREADS = 4, PER_THREAD = 25000 };

typedef struct {
    char (*ids)[EVS_UUID_LEN + 1];
    int rc;
} uuid_job;

static void *uuid_worker(void *arg)
{
    uuid_job *j = arg;
    int i;

    for (i = 0; i < PER_THREAD; i++) {
        if ((j->rc = evs_uuid7(j->ids[i])) != 0)
            break;
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(uuid7, unique_and_increasing_across_threads)
{
    char(*all)[EVS_UUID_LEN + 1] = malloc(NTHREADS * PER_THREAD * sizeof(*all));
    pthread_t th[NTHREADS];
    uuid_job job[NTHREADS];
    int t, i;

    cr_assert_not_null(all);
    for (t = 0; t < NTHREADS; t++) {
        job[t].ids = all + t * PER_THREAD;
        job[t].rc = 0;
        cr_assert_eq(pthread_create(&th[t], NULL, uuid_worker, &job[t]), 0);
    }
    for (t = 0; t < NTHREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
        cr_assert_eq(job[t].rc, 0);
        /* Each thread sees its own ids strictly increasing. */
        for (i = 1; i < PER_THREAD; i++)
            cr_assert_lt(strcmp(job[t].ids[i - 1], job[t].ids[i]), 0);
    }
    qsort(all, NTHREADS * PER_THREAD, sizeof(*all), cmp_id);
    for (i = 1; i < NTHREADS * PER_THREAD; i++)
        cr_assert_neq(strcmp(all[i - 1], all[i]), 0, "duplicate %s", all[i]);
    free(all);
}

/* ------------------------------------------------------------------ */
/* Time                                                               */
/* ------------------------------------------------------------------ */

#define US INT64_C(1000000)
/* 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z. */
#define MIN_US (INT64_C(-62167219200) * US)
#define END_US (INT64_C(253402300800) * US)

static void fmt_eq(int64_t us, const char *want)
{
    char out[EVS_TIME_LEN + 1];

    memset(out, 'X', sizeof(out));
    cr_assert_eq(evs_time_format(us, out), 0, "%lld", (long long)us);
    cr_assert_eq(out[EVS_TIME_LEN], '\0');
    cr_assert_str_eq(out, want);
}

/* evs_time_parse of s from an exact-size copy, so ASan catches any read
 * past its length; *us starts as 0x7777. */
static int parse_exact(const char *s, int64_t *us)
{
    size_t len = strlen(s);
    char *c = malloc(len ? len : 1);
    int rc;

    cr_assert_not_null(c);
    memcpy(c, s, len);
    *us = 0x7777;
    rc = evs_time_parse(c, len, us);
    free(c);
    return rc;
}

static int64_t parse_ok(const char *s)
{
    int64_t us;

    cr_assert_eq(parse_exact(s, &us), 0, "refused \"%s\"", s);
    return us;
}

static void parse_bad(const char *s)
{
    int64_t us;

    cr_assert_eq(parse_exact(s, &us), EVS_EPARSE, "accepted \"%s\"", s);
    cr_assert_eq(us, 0x7777, "*us written on failure");
}

Test(time_format, known_vectors)
{
    fmt_eq(0, "1970-01-01T00:00:00.000000Z");
    fmt_eq(1, "1970-01-01T00:00:00.000001Z");
    fmt_eq(-1, "1969-12-31T23:59:59.999999Z");
    fmt_eq(-US, "1969-12-31T23:59:59.000000Z");
    fmt_eq(INT64_C(1795342530123456), "2026-11-22T10:15:30.123456Z");
    fmt_eq(INT64_C(1709208000000000), "2024-02-29T12:00:00.000000Z");
    fmt_eq(INT64_C(951782400) * US, "2000-02-29T00:00:00.000000Z");
    fmt_eq(INT64_C(-2208988800) * US, "1900-01-01T00:00:00.000000Z");
    fmt_eq(MIN_US, "0000-01-01T00:00:00.000000Z");
    fmt_eq(END_US - 1, "9999-12-31T23:59:59.999999Z");
}

Test(time_format, refuses_out_of_range)
{
    char out[EVS_TIME_LEN + 1];

    cr_assert_eq(evs_time_format(MIN_US - 1, out), -EINVAL);
    cr_assert_eq(evs_time_format(END_US, out), -EINVAL);
    cr_assert_eq(evs_time_format(INT64_MIN, out), -EINVAL);
    cr_assert_eq(evs_time_format(INT64_MAX, out), -EINVAL);
}

Test(time_parse, known_vectors)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.000000Z"), 0);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.123456Z"),
                 INT64_C(1795342530123456));
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.999999Z"), -1);
    cr_assert_eq(parse_ok("0000-01-01T00:00:00Z"), MIN_US);
    cr_assert_eq(parse_ok("9999-12-31T23:59:59.999999Z"), END_US - 1);
}

Test(time_parse, separators_and_case)
{
    int64_t want = INT64_C(1795342530123456);

    cr_assert_eq(parse_ok("2026-11-22t10:15:30.123456z"), want);
    cr_assert_eq(parse_ok("2026-11-22 10:15:30.123456Z"), want);
}

Test(time_parse, fractions)
{
    int64_t base = INT64_C(1795342530) * US;

    cr_assert_eq(parse_ok("2026-11-22T10:15:30Z"), base);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.1Z"), base + 100000);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.12Z"), base + 120000);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.000001Z"), base + 1);
    /* Past microseconds, digits are truncated, not rounded. */
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.123456789Z"), base + 123456);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.9999999Z"), base + 999999);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.12345600000000000000000001Z"),
                 base + 123456);
}

Test(time_parse, offsets)
{
    int64_t utc = parse_ok("2026-11-22T10:15:30.123456Z");

    cr_assert_eq(parse_ok("2026-11-22T15:45:30.123456+05:30"), utc);
    cr_assert_eq(parse_ok("2026-11-22T02:15:30.123456-08:00"), utc);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.123456+00:00"), utc);
    cr_assert_eq(parse_ok("2026-11-22T10:15:30.123456-00:00"), utc);
    /* Offsets may move the date across days and years. */
    cr_assert_eq(parse_ok("2027-01-01T05:00:00+05:00"),
                 parse_ok("2027-01-01T00:00:00Z"));
    cr_assert_eq(parse_ok("2026-12-31T23:30:00-00:45"),
                 parse_ok("2027-01-01T00:15:00Z"));
    cr_assert_eq(parse_ok("2000-01-01T00:00:00+23:59"),
                 parse_ok("1999-12-31T00:01:00Z"));
}

Test(time_parse, leap_days)
{
    cr_assert_eq(parse_ok("2024-02-29T12:00:00Z"), INT64_C(1709208000000000));
    cr_assert_eq(parse_ok("2000-02-29T00:00:00Z"), INT64_C(951782400) * US);
    parse_ok("0000-02-29T00:00:00Z"); /* year 0 is a leap year */
    parse_bad("2023-02-29T00:00:00Z");
    parse_bad("1900-02-29T00:00:00Z");
    parse_bad("2100-02-29T00:00:00Z");
    parse_bad("2024-02-30T00:00:00Z");
}

Test(time_parse, leap_second_reads_as_last_microsecond)
{
    cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"),
                 parse_ok("2016-12-31T23:59:59.999999Z"));
    cr_assert_eq(parse_ok("2016-12-31T23:59:60.5Z"),
                 parse_ok("2016-12-31T23:59:59.999999Z"));
    cr_assert_lt(parse_ok("2016-12-31T23:59:60Z"),
                 parse_ok("2017-01-01T00:00:00Z"));
}

Test(time_parse, refuses_out_of_range_fields)
{
    parse_bad("2026-00-10T00:00:00Z");
    parse_bad("2026-13-10T00:00:00Z");
    parse_bad("2026-01-00T00:00:00Z");
    parse_bad("2026-01-32T00:00:00Z");
    parse_bad("2026-04-31T00:00:00Z");
    parse_bad("2026-06-31T00:00:00Z");
    parse_bad("2026-01-01T24:00:00Z");
    parse_bad("2026-01-01T00:60:00Z");
    parse_bad("2026-01-01T00:00:61Z");
    parse_bad("2026-01-01T00:00:99Z");
    parse_bad("2026-01-01T00:00:00+24:00");
    parse_bad("2026-01-01T00:00:00+00:60");
}

Test(time_parse, refuses_malformed)
{
    parse_bad("");
    parse_bad("2026-01-01");
    parse_bad("2026-01-01T00:00:00");   /* no zone */
    parse_bad("2026-01-01T00:00:00.Z"); /* '.' without digits */
    parse_bad("2026-01-01T00:00:00.");
    parse_bad("2026-01-01T00:00:00ZZ");
    parse_bad("2026-01-01T00:00:00Z ");
    parse_bad(" 2026-01-01T00:00:00Z");
    parse_bad("2026-01-01X00:00:00Z");
    parse_bad("2026-01-01_00:00:00Z");
    parse_bad("2026-1-01T00:00:00Z");
    parse_bad("26-01-01T00:00:00Z");
    parse_bad("+2026-01-01T00:00:00Z");
    parse_bad("-2026-01-01T00:00:00Z");
    parse_bad("20260101T000000Z");
    parse_bad("2026-01-01T00:00Z");
    parse_bad("2026-01-01T0:00:00Z");
    parse_bad("2026/01/01T00:00:00Z");
    parse_bad("2026-01-01T00:00:00+0530");
    parse_bad("2026-01-01T00:00:00+05");
    parse_bad("2026-01-01T00:00:00+05:3");
    parse_bad("2026-01-01T00:00:00+");
    parse_bad("2026-01-01T00:00:00 +05:30");
    parse_bad("2026-01-01T00:00:00UTC");
    parse_bad("2026-01-01T00:00:00,5Z");
    parse_bad("2026-01-0aT00:00:00Z");
    parse_bad("2026-01-01T00:00:00.1a2Z");
}

Test(time_parse, refuses_embedded_nul)
{
    int64_t us = 0;

    cr_assert_eq(evs_time_parse("2026-01-01T00:00:00Z\0", 21, &us), EVS_EPARSE);
    cr_assert_eq(evs_time_parse("2026-01-01T00:00:00\0Z", 21, &us), EVS_EPARSE);
    cr_assert_eq(evs_time_parse("2026-01-01\0"
                                "00:00:00Z",
                                20, &us),
                 EVS_EPARSE);
}

Test(time_parse, every_prefix_refused_within_len)
{
    static const char *full[] = {"2026-11-22T10:15:30.123456789Z",
                                 "2026-11-22T15:45:30.123+05:30"};
    size_t i, n;
    int64_t us;

    for (i = 0; i < 2; i++) {
        size_t len = strlen(full[i]);

        for (n = 0; n < len; n++) {
            char *c = malloc(n ? n : 1);

            cr_assert_not_null(c);
            memcpy(c, full[i], n);
            /* The zone comes last, so no proper prefix is complete. */
            cr_assert_eq(evs_time_parse(c, n, &us), EVS_EPARSE,
                         "prefix %zu of %s", n, full[i]);
            free(c);
        }
        parse_ok(full[i]);
    }
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

Test(time_format, round_trips_full_range)
{
    char out[EVS_TIME_LEN + 1];
    uint64_t span = (uint64_t)(END_US - MIN_US);
    int64_t us, back;
    int i;

    for (i = 0; i < 200000; i++) {
        us = MIN_US + (int64_t)(rng() % span);
        if (i % 4 == 0) /* whole seconds and days are edge cases too */
            us -= us % US;
        if (i % 8 == 0)
            us -= us % (86400 * US);
        if (us < MIN_US)
            us = MIN_US;
        cr_assert_eq(evs_time_format(us, out), 0, "%lld", (long long)us);
        back = 0;
        cr_assert_eq(evs_time_parse(out, EVS_TIME_LEN, &back), 0, "%s", out);
        cr_assert_eq(back, us, "%s: %lld != %lld", out, (long long)back,
                     (long long)us);
    }
}

Test(time_format, agrees_with_gmtime)
{
    /* An independent check of the calendar over the range gmtime covers
     * here (time_t is 64-bit on the platforms evstore supports). */
    char out[EVS_TIME_LEN + 1], want[128];
    struct tm tm;
    time_t t;
    int i;

    cr_assert_eq(sizeof(time_t), 8);
    for (i = 0; i < 20000; i++) {
        t = (time_t)(-62167219200 + (int64_t)(rng() % 315537897600u));
        cr_assert_not_null(gmtime_r(&t, &tm));
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.000000Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        cr_assert_eq(evs_time_format((int64_t)t * US, out), 0);
        cr_assert_str_eq(out, want);
    }
}

static int64_t realtime_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US + ts.tv_nsec / 1000;
}

/* Bracketed by the same clock: time() reads a coarser clock that can lag
 * a few milliseconds behind, which made a second boundary fail this. */
Test(time_now, is_wall_clock_us)
{
    int64_t a = realtime_us();
    int64_t now = evs_now_us();
    int64_t b = realtime_us();

    cr_assert_geq(now, a);
    cr_assert_leq(now, b);
    cr_assert_gt(now, INT64_C(1700000000) * US); /* after Nov 2023 */
}
