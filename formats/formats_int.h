/*
 * formats_int.h: internals shared by the files of formats/ only (and by
 * formats' tests). The layers above include formats_shared.h, which this
 * header includes, and nothing of this one.
 */
#ifndef EVS_FORMATS_INT_H
#define EVS_FORMATS_INT_H

#include "formats_shared.h"

/* Number of decimal digits of v. */
static inline size_t evs__u64_digits(uint64_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Writes v in decimal at p and returns the end (at most 20 bytes). */
char *evs__put_u64(char *p, uint64_t v);

/* Parses exactly 16 lower-case hex digits. Returns 0 or -1. */
int evs__unhex64(const char *s, uint64_t *v);

/* Proleptic Gregorian dates (uuid_time.c), without the C library's
 * time zone or locale: days since 1970-01-01 of y-m-d, and back. */
int64_t evs__days_from_civil(int64_t y, unsigned m, unsigned d);
void evs__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
int evs__is_leap(int64_t y);
unsigned evs__days_in_month(int64_t y, unsigned m);

/* The offset of zone z (NULL: UTC) at t, seconds since the epoch, and
 * the span [*from, *to) around t over which it holds: from the change
 * before (INT64_MIN: none) to the next (INT64_MAX: none) (tz.c). */
struct evs_tz;
int32_t evs__tz_segment(const struct evs_tz *z, int64_t t, int64_t *from,
                        int64_t *to);

/* Skips one value at p (leading whitespace allowed); returns the byte
 * after it, or NULL if it runs past end. */
const char *evs__json_skip(const char *p, const char *end);

/* The line decoder's scratch (line.c), and the decoding of foreign lines
 * (line_foreign.c), which keeps json-c state in d->priv. */
int evs__decoder_reserve(evs_decoder *d, size_t n);
void evs__decoder_foreign_free(evs_decoder *d);
int evs__line_decode_foreign(evs_decoder *d, const char *line, size_t len,
                             evs_event *ev, evs_error_info *info);

#endif /* EVS_FORMATS_INT_H */
