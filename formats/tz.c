/*
 * tz.c: time zones read from the bytes of a TZif file (RFC 8536), with
 * the POSIX TZ rule of its footer for the times after its last
 * transition (formats/SCHEDULES.md §4).
 *
 * The C library's zones (TZ, localtime_r) are process-wide state that
 * one thread changing TZ corrupts for the others, so a schedule reads
 * the zone it names itself: the eventstore layer reads the file
 * (evs_tz_load) and this file makes sense of its bytes, for any number
 * of zones at once. UTC needs no file.
 */
#include "formats_int.h"
#include "evstore/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A POSIX TZ rule: standard time, and the daylight time it changes to
 * between two dates of each year. Offsets are seconds east of UTC. */
typedef struct tz_date {
    char kind; /* 'J': day 1..365 without 29 February; 'n': day 0..365;
                  'M': day `d` of week `w` (5: last) of month `m` */
    int m, w, d, n;
    int32_t time; /* seconds after local midnight; may be negative */
} tz_date;

typedef struct tz_rule {
    int32_t std_off, dst_off;
    int has_dst;
    tz_date start, end;
} tz_rule;

struct evs_tz {
    const evs_allocator *alloc;
    char name[EVS_TZ_NAME_MAX + 1];
    size_t n;     /* transitions */
    int64_t *at;  /* their times, ascending */
    int32_t *off; /* the offset from each on */
    int32_t off0; /* the offset before the first */
    int has_rule; /* the footer's rule, after the last transition */
    tz_rule rule;
};

static int is_utc_name(const char *name)
{
    return strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 ||
           strcmp(name, "Z") == 0;
}

/* ------------------------------------------------------------------ */
/* The footer's POSIX TZ rule                                          */
/* ------------------------------------------------------------------ */

/* A zone abbreviation: letters, or <...> quoted. */
static int rule_abbr(const char **pp, const char *end)
{
    const char *p = *pp;

    if (p < end && *p == '<') {
        while (++p < end && *p != '>')
            ;
        if (p == end)
            return -1;
        *pp = p + 1;
        return 0;
    }
    while (p < end && ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
        p++;
    if (p - *pp < 3)
        return -1;
    *pp = p;
    return 0;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536's extension). */
static int rule_time(const char **pp, const char *end, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, part = 0;
    int32_t v[3] = {0, 0, 0};

    if (p < end && (*p == '+' || *p == '-'))
        sign = *p++ == '-' ? -1 : 1;
    for (;;) {
        int digits = 0;

        while (p < end && evs__is_digit((unsigned char)*p) && digits < 3) {
            v[part] = v[part] * 10 + (*p++ - '0');
            digits++;
        }
        if (!digits || (part == 0 && v[0] > 167) || (part && v[part] > 59))
            return -1;
        if (part == 2 || p == end || *p != ':')
            break;
        p++;
        part++;
    }
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    *pp = p;
    return 0;
}

static int rule_num(const char **pp, const char *end, int lo, int hi, int *out)
{
    const char *p = *pp;
    int v = 0;

    if (p == end || !evs__is_digit((unsigned char)*p))
        return -1;
    while (p < end && evs__is_digit((unsigned char)*p) && v <= hi)
        v = v * 10 + (*p++ - '0');
    if (v < lo || v > hi)
        return -1;
    *out = v;
    *pp = p;
    return 0;
}

static int rule_date(const char **pp, const char *end, tz_date *d)
{
    const char *p = *pp;

    memset(d, 0, sizeof(*d));
    d->time = 7200; /* 02:00 by default */
    if (p < end && *p == 'M') {
        p++;
        d->kind = 'M';
        if (rule_num(&p, end, 1, 12, &d->m) || p == end || *p++ != '.' ||
            rule_num(&p, end, 1, 5, &d->w) || p == end || *p++ != '.' ||
            rule_num(&p, end, 0, 6, &d->d))
            return -1;
    } else if (p < end && *p == 'J') {
        p++;
        d->kind = 'J';
        if (rule_num(&p, end, 1, 365, &d->n))
            return -1;
    } else {
        d->kind = 'n';
        if (rule_num(&p, end, 0, 365, &d->n))
            return -1;
    }
    if (p < end && *p == '/') {
        p++;
        if (rule_time(&p, end, &d->time))
            return -1;
    }
    *pp = p;
    return 0;
}

/* Parses "STDoffset[DST[offset][,start[/time],end[/time]]]". */
static int rule_parse(const char *p, const char *end, tz_rule *r)
{
    int32_t t;

    memset(r, 0, sizeof(*r));
    if (rule_abbr(&p, end) || rule_time(&p, end, &t))
        return -1;
    r->std_off = -t; /* POSIX counts hours west */
    if (p == end)
        return 0;
    if (rule_abbr(&p, end))
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (p < end && *p != ',') {
        if (rule_time(&p, end, &t))
            return -1;
        r->dst_off = -t;
    }
    if (p == end || *p++ != ',' || rule_date(&p, end, &r->start) || p == end ||
        *p++ != ',' || rule_date(&p, end, &r->end) || p != end)
        return -1;
    return 0;
}

/* Seconds since the epoch of local midnight of the rule date in year y. */
static int64_t rule_day(const tz_date *d, int64_t y)
{
    int64_t day;

    if (d->kind == 'J') {
        day = evs__days_from_civil(y, 1, 1) + d->n - 1 +
              (evs__is_leap(y) && d->n >= 60);
    } else if (d->kind == 'n') {
        day = evs__days_from_civil(y, 1, 1) + d->n;
    } else {
        int64_t first = evs__days_from_civil(y, (unsigned)d->m, 1);
        int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01: Thu */
        unsigned dim = evs__days_in_month(y, (unsigned)d->m);

        day = first + (d->d - wd + 7) % 7 + (int64_t)(d->w - 1) * 7;
        while (day - first >= (int64_t)dim)
            day -= 7;
    }
    return day * 86400;
}

/* The two changes of year y, in UTC: to daylight time and back. */
static void rule_changes(const tz_rule *r, int64_t y, int64_t at[2])
{
    at[0] = rule_day(&r->start, y) + r->start.time - r->std_off;
    at[1] = rule_day(&r->end, y) + r->end.time - r->dst_off;
}

/* The offset of the rule at t, and the changes around it (INT64_MIN /
 * INT64_MAX when there is none). */
static int32_t rule_segment(const tz_rule *r, int64_t t, int64_t *from,
                            int64_t *to)
{
    int64_t at[6], y, d;
    int32_t off[6], cur;
    unsigned m, dd;

    if (!r->has_dst) {
        *from = INT64_MIN;
        *to = INT64_MAX;
        return r->std_off;
    }
    d = (t >= 0 ? t : t - 86399) / 86400;
    evs__civil_from_days(d, &y, &m, &dd);
    for (int i = 0; i < 3; i++) {
        rule_changes(r, y - 1 + i, &at[2 * i]);
        off[2 * i] = r->dst_off;
        off[2 * i + 1] = r->std_off;
    }
    /* Sorted by time (the two changes of a southern year are in the
     * other order), then the last one at or before t. */
    for (int i = 1; i < 6; i++)
        for (int j = i; j > 0 && at[j - 1] > at[j]; j--) {
            int64_t ta = at[j];
            int32_t to_ = off[j];
            at[j] = at[j - 1];
            off[j] = off[j - 1];
            at[j - 1] = ta;
            off[j - 1] = to_;
        }
    cur = off[5] == r->dst_off ? r->std_off : r->dst_off;
    *from = INT64_MIN;
    *to = INT64_MAX;
    for (int i = 0; i < 6; i++) {
        if (at[i] <= t) {
            cur = off[i];
            *from = at[i];
        } else {
            *to = at[i];
            break;
        }
    }
    return cur;
}

/* ------------------------------------------------------------------ */
/* TZif                                                                */
/* ------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_hdr {
    int version;
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_hdr;

static int hdr_read(const unsigned char *p, size_t n, tzif_hdr *h)
{
    if (n < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    h->version = p[4] ? p[4] - '0' : 1;
    h->isut = be32(p + 20);
    h->isstd = be32(p + 24);
    h->leap = be32(p + 28);
    h->time = be32(p + 32);
    h->type = be32(p + 36);
    h->chars = be32(p + 40);
    if (h->version < 1 || h->version > 9 || h->type == 0 || h->type > 256 ||
        h->time > 1000000 || h->leap > 100000 || h->chars > 100000 ||
        (h->isut && h->isut != h->type) || (h->isstd && h->isstd != h->type))
        return -1;
    return 0;
}

/* Bytes of a data block whose times take `tb` bytes. */
static size_t block_len(const tzif_hdr *h, size_t tb)
{
    return (size_t)h->time * (tb + 1) + (size_t)h->type * 6 + h->chars +
           (size_t)h->leap * (tb + 4) + h->isstd + h->isut;
}

static int tz_fail(evs_error_info *err, const char *name, const char *why)
{
    evs__error_set(err, EVS_EPARSE, "timezone", "zone %s: %s", name, why);
    return EVS_EPARSE;
}

/* Reads the data block at p (times of tb bytes) into z. */
static int block_read(evs_tz *z, const tzif_hdr *h, const unsigned char *p,
                      size_t tb)
{
    const unsigned char *idx = p + (size_t)h->time * tb;
    const unsigned char *types = idx + h->time;

    z->n = h->time;
    if (z->n) {
        z->at = evs__malloc(z->alloc, z->n * sizeof(*z->at));
        z->off = evs__malloc(z->alloc, z->n * sizeof(*z->off));
        if (!z->at || !z->off)
            return -ENOMEM;
    }
    for (size_t i = 0; i < z->n; i++) {
        z->at[i] = tb == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        if (idx[i] >= h->type || (i && z->at[i] <= z->at[i - 1]))
            return -1;
        z->off[i] = (int32_t)be32(types + idx[i] * 6);
    }
    z->off0 = (int32_t)be32(types);
    return 0;
}

int evs_tz_parse(const char *name, evs_span tzif, const evs_allocator *alloc,
                 evs_tz **out, evs_error_info *err)
{
    const unsigned char *p = (const unsigned char *)tzif.ptr;
    size_t n = tzif.len, tb = 4, len;
    tzif_hdr h;
    evs_tz *z;
    int rc = 0;

    evs_error_info_clear(err);
    if (!name || !*name || strlen(name) > EVS_TZ_NAME_MAX)
        return evs__error_rc(err, -EINVAL);
    if (!(z = evs__calloc(alloc, sizeof(*z))))
        return evs__error_rc(err, -ENOMEM);
    z->alloc = alloc;
    snprintf(z->name, sizeof(z->name), "%s", name);
    if (n == 0 && is_utc_name(name)) {
        *out = z;
        return 0;
    }
    if (hdr_read(p, n, &h) != 0) {
        rc = tz_fail(err, name, "not a TZif file");
        goto fail;
    }
    len = 44 + block_len(&h, 4);
    if (h.version >= 2) {
        /* The 32-bit block is there for old readers only. */
        if (n < len || hdr_read(p + len, n - len, &h) != 0) {
            rc = tz_fail(err, name, "its second header is damaged");
            goto fail;
        }
        p += len;
        n -= len;
        tb = 8;
        len = 44 + block_len(&h, 8);
    }
    if (n < len) {
        rc = tz_fail(err, name, "the file is cut short");
        goto fail;
    }
    if ((rc = block_read(z, &h, p + 44, tb)) != 0) {
        if (rc != -ENOMEM)
            rc = tz_fail(err, name, "its transitions are out of order");
        goto fail;
    }
    if (tb == 8 && n > len + 1 && p[len] == '\n') {
        const char *f = (const char *)p + len + 1;
        const char *e = memchr(f, '\n', n - len - 1);

        if (!e) {
            rc = tz_fail(err, name, "its footer is not terminated");
            goto fail;
        }
        if (e > f) {
            if (rule_parse(f, e, &z->rule) != 0) {
                rc = tz_fail(err, name,
                             "its footer's TZ rule is not one "
                             "this library reads");
                goto fail;
            }
            z->has_rule = 1;
        }
    }
    *out = z;
    return 0;
fail:
    evs_tz_free(z);
    return evs__error_rc(err, rc);
}

const char *evs_tz_name(const evs_tz *z)
{
    return z->name;
}

int32_t evs__tz_segment(const evs_tz *z, int64_t t, int64_t *from, int64_t *to)
{
    size_t lo = 0, hi;

    *from = INT64_MIN;
    *to = INT64_MAX;
    if (!z)
        return 0;
    if (z->n == 0 || t >= z->at[z->n - 1]) {
        if (z->has_rule) {
            int32_t off = rule_segment(&z->rule, t, from, to);
            /* The table rules up to its last transition. */
            if (z->n && *from < z->at[z->n - 1])
                *from = z->at[z->n - 1];
            return off;
        }
        if (z->n == 0)
            return z->off0;
        *from = z->at[z->n - 1];
        return z->off[z->n - 1];
    }
    if (t < z->at[0]) {
        *to = z->at[0];
        return z->off0;
    }
    /* The last transition at or before t. */
    hi = z->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    *from = z->at[lo];
    *to = z->at[lo + 1];
    return z->off[lo];
}

int32_t evs_tz_offset(const evs_tz *z, int64_t t_s)
{
    int64_t from, to;

    return evs__tz_segment(z, t_s, &from, &to);
}

void evs_tz_free(evs_tz *z)
{
    if (!z)
        return;
    evs__free(z->alloc, z->at);
    evs__free(z->alloc, z->off);
    evs__free(z->alloc, z);
}
