/*
 * cron.c: cron expressions (formats/SCHEDULES.md §3) and their next fire
 * time in a time zone, across its changes of offset (§4).
 *
 * Debian packages no C library for cron expressions (its cron parsers are
 * Go, Perl, Python and Ruby modules; cron itself is a daemon, not a
 * library), and none of them computes fires in a zone other than the
 * process's, so this file is the parser.
 *
 * The next fire is searched zone segment by segment: between two changes
 * of its offset a zone's local time runs with UTC, so within a segment
 * the first local time that matches gives the first instant. At a
 * segment's start the gap or the repeat the change made is handled by
 * the rules of §4.
 */
#include "formats_int.h"
#include "evstore/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Parsing                                                            */
/* ------------------------------------------------------------------ */

typedef struct field {
    const char *what;
    int lo, hi;
    const char *const *names; /* for lo, lo+1, ...; NULL: none */
} field;

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat", "sun"};

static const field fields[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day of week", 0, 7, day_names},
};

typedef struct cparse {
    const char *s, *p, *end;
    evs_error_info *err;
} cparse;

static int cfail(cparse *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cfail(cparse *c, const char *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evs__error_vset(c->err, EVS_EPARSE, "cron", fmt, ap);
    va_end(ap);
    if (c->err)
        c->err->offset = (uint64_t)(at - c->s);
    return EVS_EPARSE;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* A value of field f at c->p: a number or, where f has them, a name. */
static int take_value(cparse *c, const field *f, int *v)
{
    const char *at = c->p;
    long n = 0;

    if (c->p < c->end && evs__is_digit((unsigned char)*c->p)) {
        while (c->p < c->end && evs__is_digit((unsigned char)*c->p) && n < 1000)
            n = n * 10 + (*c->p++ - '0');
        if (n < f->lo || n > f->hi)
            return cfail(c, at, "%s %ld is out of range %d-%d", f->what, n,
                         f->lo, f->hi);
        *v = (int)n;
        return 0;
    }
    if (f->names && c->end - c->p >= 3) {
        for (int i = 0; i <= f->hi - f->lo; i++) {
            const char *nm = f->names[i];
            if (((c->p[0] | 0x20) == nm[0]) && ((c->p[1] | 0x20) == nm[1]) &&
                ((c->p[2] | 0x20) == nm[2])) {
                c->p += 3;
                *v = f->lo + i;
                return 0;
            }
        }
    }
    if (c->p == c->end || is_blank(*c->p) || *c->p == ',')
        return cfail(c, at, "%s: a value is missing", f->what);
    return cfail(c, at, "%s: '%c' is not a value here", f->what, *c->p);
}

/* One field at c->p into *bits; *star: it began with '*'. */
static int take_field(cparse *c, const field *f, uint64_t *bits, int *star)
{
    *bits = 0;
    *star = c->p < c->end && *c->p == '*';
    for (;;) {
        const char *at = c->p;
        int a = f->lo, b = f->hi, step = 1, rc;

        if (c->p < c->end && *c->p == '*') {
            c->p++;
        } else {
            if ((rc = take_value(c, f, &a)) != 0)
                return rc;
            b = a;
            if (c->p < c->end && *c->p == '-') {
                c->p++;
                if ((rc = take_value(c, f, &b)) != 0)
                    return rc;
                if (b < a)
                    return cfail(c, at, "%s: the range %d-%d runs backwards",
                                 f->what, a, b);
            } else if (c->p < c->end && *c->p == '/') {
                b = f->hi; /* N/S: from N to the end */
            }
        }
        if (c->p < c->end && *c->p == '/') {
            const char *sat = ++c->p;
            long n = 0;

            while (c->p < c->end && evs__is_digit((unsigned char)*c->p) &&
                   n < 1000)
                n = n * 10 + (*c->p++ - '0');
            if (c->p == sat || n < 1 || n > f->hi - f->lo + 1)
                return cfail(c, sat, "%s: a step must be 1-%d", f->what,
                             f->hi - f->lo + 1);
            step = (int)n;
        }
        for (int v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << v;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && !is_blank(*c->p))
            return cfail(c, c->p, "%s: unexpected '%c'", f->what, *c->p);
        return 0;
    }
}

static const struct {
    const char *name, *expr;
} shorthands[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Whether some allowed day of some allowed month exists. */
static int can_fire(const evs_cron *c)
{
    static const int longest[13] = {0,  31, 29, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};

    if (!(c->flags & EVS_CRON_DOM_STAR) && !(c->flags & EVS_CRON_DOW_STAR))
        return 1; /* either field may match, and every weekday comes */
    for (int m = 1; m <= 12; m++)
        if ((c->months >> m & 1) &&
            (c->days & (((uint32_t)2 << longest[m]) - 2)))
            return 1;
    return 0;
}

static int parse_fields(cparse *c, evs_cron *out)
{
    uint64_t bits[5];
    int star[5], rc, hour_star = 0;

    for (int i = 0; i < 5; i++) {
        const char *at;

        while (c->p < c->end && is_blank(*c->p))
            c->p++;
        at = c->p;
        if (c->p == c->end)
            return cfail(c, c->p,
                         "%s: missing (an expression has five fields: "
                         "minute hour day-of-month month day-of-week)",
                         fields[i].what);
        if ((rc = take_field(c, &fields[i], &bits[i], &star[i])) != 0)
            return rc;
        if (i == 1)
            hour_star = c->p - at == 1 && *at == '*';
    }
    while (c->p < c->end && is_blank(*c->p))
        c->p++;
    if (c->p != c->end)
        return cfail(c, c->p, "more than five fields");
    memset(out, 0, sizeof(*out));
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->days = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    /* 7 is Sunday too. */
    out->weekdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f);
    out->flags = (uint8_t)((star[2] ? EVS_CRON_DOM_STAR : 0) |
                           (star[4] ? EVS_CRON_DOW_STAR : 0));
    if (hour_star)
        out->flags |= EVS_CRON_HOUR_STAR;
    return 0;
}

int evs_cron_parse(evs_span expr, evs_cron *out, evs_error_info *err)
{
    cparse c = {expr.ptr, expr.ptr, expr.ptr + expr.len, err};
    evs_cron v;
    int rc;

    evs_error_info_clear(err);
    while (c.p < c.end && is_blank(*c.p))
        c.p++;
    if (c.p < c.end && *c.p == '@') {
        const char *at = c.p, *e = c.p;
        size_t n;

        while (e < c.end && !is_blank(*e))
            e++;
        n = (size_t)(e - at);
        for (size_t i = 0; i < sizeof(shorthands) / sizeof(*shorthands); i++) {
            const char *nm = shorthands[i].name;
            if (strlen(nm) == n && strncasecmp(at, nm, n) == 0) {
                cparse s = {shorthands[i].expr, shorthands[i].expr,
                            shorthands[i].expr + strlen(shorthands[i].expr),
                            NULL};
                while (e < c.end && is_blank(*e))
                    e++;
                if (e != c.end)
                    return cfail(&c, e, "nothing may follow %s", nm);
                parse_fields(&s, out);
                return 0;
            }
        }
        return cfail(&c, at,
                     "unknown shorthand '%.*s' (@yearly, @annually, "
                     "@monthly, @weekly, @daily, @midnight, @hourly)",
                     (int)(n > 32 ? 32 : n), at);
    }
    if ((rc = parse_fields(&c, &v)) != 0)
        return rc;
    if (!can_fire(&v))
        return cfail(&c, c.s,
                     "no allowed month has an allowed day: it never fires");
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Next fire                                                          */
/* ------------------------------------------------------------------ */

/* The first set bit of `bits` at or after `from`, or -1. */
static int next_bit(uint64_t bits, int from)
{
    if (from > 63)
        return -1;
    bits &= ~(uint64_t)0 << from;
    return bits ? __builtin_ctzll(bits) : -1;
}

static int day_matches(const evs_cron *c, int64_t days, unsigned d)
{
    int wd = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int dom = c->days >> d & 1, dow = c->weekdays >> wd & 1;

    if (c->flags & (EVS_CRON_DOM_STAR | EVS_CRON_DOW_STAR))
        return dom && dow;
    return dom || dow;
}

/* Local midnight of 9999-12-31 + 1 day, in seconds: the search's end. */
#define CIVIL_END INT64_C(253402300800)

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The first local time (seconds on the zone's clock) in [lo, hi) at
 * which c fires, or INT64_MAX. */
static int64_t first_match(const evs_cron *c, int64_t lo, int64_t hi)
{
    int64_t t = floor_div(lo + 59, 60) * 60;

    if (hi > CIVIL_END)
        hi = CIVIL_END;
    while (t < hi) {
        int64_t days = floor_div(t, 86400), y;
        int64_t secs = t - days * 86400;
        unsigned m, d;
        int h, mi, nh, nm;

        evs__civil_from_days(days, &y, &m, &d);
        if (!(c->months >> m & 1)) {
            t = (m == 12 ? evs__days_from_civil(y + 1, 1, 1)
                         : evs__days_from_civil(y, m + 1, 1)) *
                86400;
            continue;
        }
        if (!day_matches(c, days, d)) {
            t = (days + 1) * 86400;
            continue;
        }
        h = (int)(secs / 3600);
        mi = (int)(secs % 3600 / 60);
        if ((nh = next_bit(c->hours, h)) < 0) {
            t = (days + 1) * 86400;
            continue;
        }
        if (nh > h) {
            t = days * 86400 + nh * 3600;
            continue;
        }
        if ((nm = next_bit(c->minutes, mi)) < 0) {
            t = days * 86400 + (h + 1) * 3600;
            continue;
        }
        return days * 86400 + h * 3600 + nm * 60;
    }
    return INT64_MAX;
}

int evs_cron_next(const evs_cron *c, const evs_tz *z, int64_t after_s,
                  int64_t *next_s)
{
    int64_t t = after_s + 1;

    while (t < CIVIL_END) {
        int64_t from, to, lo, hi, hit;
        int32_t off = evs__tz_segment(z, t, &from, &to), prev = off;

        lo = t + off;
        if (from != INT64_MIN) {
            int64_t f2, t2;
            prev = evs__tz_segment(z, from - 1, &f2, &t2);
        }
        if (from != INT64_MIN && from > after_s && off > prev &&
            first_match(c, from + prev, from + off) != INT64_MAX) {
            /* A local time the clock skipped fires once, as it
             * comes out of the gap. */
            *next_s = from;
            return 0;
        }
        if (from != INT64_MIN && off < prev &&
            !(c->flags & EVS_CRON_HOUR_STAR) && lo < from + prev)
            lo = from + prev; /* a repeated time fired the first time */
        hi = to == INT64_MAX ? CIVIL_END : to + off;
        if ((hit = first_match(c, lo, hi)) != INT64_MAX) {
            *next_s = hit - off;
            return 0;
        }
        if (to == INT64_MAX)
            break;
        t = to;
    }
    return -ERANGE;
}
