/*
 * uuid_time.c: execution id validation, UUIDv7 event ids and the RFC 3339
 * timestamps of the line format.
 *
 * Dates are converted with Howard Hinnant's days-from-civil algorithms
 * rather than gmtime_r()/timegm(), so the results do not depend on the
 * C library, the time zone or the locale, and cover years 0000..9999.
 */
#include "formats_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#define US_PER_SEC INT64_C(1000000)
#define SEC_PER_DAY INT64_C(86400)

/* 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z in seconds. */
#define SEC_YEAR_0 INT64_C(-62167219200)
#define SEC_YEAR_10000 INT64_C(253402300800)

/* ------------------------------------------------------------------ */
/* Execution ids                                                      */
/* ------------------------------------------------------------------ */

static inline int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/*
 * The id becomes a file name, so the allowlist keeps out '/', NUL and
 * anything a shell or a file system treats specially; the alphanumeric
 * first byte rules out ".", ".." and names that look like options.
 */
bool evs_id_valid(const char *id, size_t len)
{
    const unsigned char *p = (const unsigned char *)id;
    size_t i;

    if (len == 0 || len > EVS_ID_MAX || id == NULL || !is_alnum(p[0]))
        return false;
    for (i = 1; i < len; i++) {
        if (!is_alnum(p[i]) && p[i] != '.' && p[i] != '_' && p[i] != '-')
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* UUIDv7                                                             */
/* ------------------------------------------------------------------ */

/*
 * The last (unix_ms << 12 | counter) handed out in this process. The
 * 12-bit rand_a field is a counter (RFC 9562, section 6.2, method 1):
 * ms and counter together only ever grow, so ids are strictly increasing
 * across threads even within one millisecond or when the clock steps
 * back. A counter overflow carries into the ms field, borrowing from the
 * next millisecond.
 */
static _Atomic uint64_t uuid_last;

static int getrandom_all(void *buf, size_t len)
{
    unsigned char *p = buf;
    ssize_t n;

    while (len > 0) {
        n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Random bytes come from a small per-thread pool refilled by getrandom():
 * one system call per ~25 ids instead of one per id (the call cost more
 * than everything else in an append without sync). A fork bumps the
 * generation, so a child never reuses its parent's pool bytes.
 */
static _Atomic unsigned rand_generation;
static pthread_once_t rand_once = PTHREAD_ONCE_INIT;

static void rand_after_fork(void)
{
    atomic_fetch_add(&rand_generation, 1);
}

static void rand_init(void)
{
    pthread_atfork(NULL, NULL, rand_after_fork);
}

static _Thread_local struct {
    unsigned char buf[256];
    size_t pos;
    unsigned generation;
} rand_pool = {{0}, 256, 0};

static int fill_random(void *buf, size_t len)
{
    unsigned gen;
    int rc;

    pthread_once(&rand_once, rand_init);
    gen = atomic_load(&rand_generation);
    if (len > sizeof(rand_pool.buf))
        return getrandom_all(buf, len);
    if (rand_pool.generation != gen ||
        sizeof(rand_pool.buf) - rand_pool.pos < len) {
        if ((rc = getrandom_all(rand_pool.buf, sizeof(rand_pool.buf))) != 0)
            return rc;
        rand_pool.pos = 0;
        rand_pool.generation = gen;
    }
    memcpy(buf, rand_pool.buf + rand_pool.pos, len);
    /* Never hand out the same bytes twice. */
    memset(rand_pool.buf + rand_pool.pos, 0, len);
    rand_pool.pos += len;
    return 0;
}

int evs_uuid7(char out[EVS_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[10], b[16];
    uint64_t now_ms, old, next, ms;
    unsigned seed, counter;
    int64_t now;
    int rc, i, o;

    if ((rc = fill_random(rnd, sizeof(rnd))) != 0)
        return rc;
    now = evs_now_us();
    now_ms = now > 0 ? (uint64_t)(now / 1000) & UINT64_C(0xFFFFFFFFFFFF) : 0;
    /* A new millisecond seeds the counter randomly, but with its top bit
     * clear, so that at least 2048 ids fit in it before it carries. */
    seed = ((unsigned)rnd[0] << 8 | rnd[1]) & 0x7FF;

    old = atomic_load(&uuid_last);
    do {
        if (now_ms > old >> 12)
            next = now_ms << 12 | seed;
        else
            next = old + 1;
    } while (!atomic_compare_exchange_weak(&uuid_last, &old, next));

    ms = next >> 12;
    counter = (unsigned)(next & 0xFFF);
    for (i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | counter >> 8); /* version 7 */
    b[7] = (unsigned char)counter;
    b[8] = (unsigned char)(0x80 | (rnd[2] & 0x3F)); /* variant 10 */
    memcpy(b + 9, rnd + 3, 7);

    for (i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ */
/* Time                                                               */
/* ------------------------------------------------------------------ */

int64_t evs_now_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t evs__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void evs__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int evs__is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

unsigned evs__days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};

    return m == 2 && evs__is_leap(y) ? 29 : dim[m - 1];
}

/* Writes v as exactly n decimal digits. */
static void put_dec(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

static _Thread_local struct {
    int64_t secs;
    char text[20]; /* "2026-11-22T10:15:30." */
    int valid;
} fmt_cache;

int evs_time_format(int64_t us, char out[EVS_TIME_LEN + 1])
{
    int64_t secs, days, rem, y;
    unsigned m, d, frac;

    if (us < SEC_YEAR_0 * US_PER_SEC || us >= SEC_YEAR_10000 * US_PER_SEC)
        return -EINVAL;
    /* Floor division, so times before 1970 get a positive fraction. */
    secs = us / US_PER_SEC;
    if (us % US_PER_SEC < 0)
        secs--;
    frac = (unsigned)(us - secs * US_PER_SEC);
    /* Events come in bursts within one second: reuse the date and time
     * formatted last time on this thread. */
    if (fmt_cache.valid && fmt_cache.secs == secs) {
        memcpy(out, fmt_cache.text, 20);
        put_dec(out + 20, frac, 6);
        out[26] = 'Z';
        out[27] = '\0';
        return 0;
    }
    days = secs / SEC_PER_DAY;
    rem = secs % SEC_PER_DAY;
    if (rem < 0) {
        rem += SEC_PER_DAY;
        days--;
    }
    evs__civil_from_days(days, &y, &m, &d);

    /* 2026-11-22T10:15:30.123456Z */
    put_dec(out, (unsigned)y, 4);
    out[4] = '-';
    put_dec(out + 5, m, 2);
    out[7] = '-';
    put_dec(out + 8, d, 2);
    out[10] = 'T';
    put_dec(out + 11, (unsigned)(rem / 3600), 2);
    out[13] = ':';
    put_dec(out + 14, (unsigned)(rem / 60 % 60), 2);
    out[16] = ':';
    put_dec(out + 17, (unsigned)(rem % 60), 2);
    out[19] = '.';
    put_dec(out + 20, frac, 6);
    out[26] = 'Z';
    out[27] = '\0';
    memcpy(fmt_cache.text, out, 20);
    fmt_cache.secs = secs;
    fmt_cache.valid = 1;
    return 0;
}

/* Reads exactly n digits at s[*i], advancing *i. Returns -1 if not. */
static int get_dec(const char *s, size_t len, size_t *i, int n, unsigned *v)
{
    unsigned r = 0;

    if (len - *i < (size_t)n)
        return -1;
    while (n-- > 0) {
        unsigned char c = (unsigned char)s[(*i)++];

        if (c < '0' || c > '9')
            return -1;
        r = r * 10 + (c - '0');
    }
    *v = r;
    return 0;
}

/* Expects the byte c at s[*i], advancing *i. */
static int get_ch(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

/*
 * A leap second (second 60) is accepted in any minute, as the RFC 3339
 * grammar does without a leap-second table, and read as 59.999999: the
 * time then still sorts after every earlier instant of that minute and
 * never collides with the following minute, which Unix time has no room
 * to tell apart anyway.
 */
int evs_time_parse(const char *s, size_t len, int64_t *us)
{
    unsigned y, mo, d, h, mi, sec, oh, om, frac = 0;
    int64_t days, t, off = 0;
    size_t i = 0;
    int nfrac = 0;
    char c;

    if (s == NULL)
        goto fail;
    if (get_dec(s, len, &i, 4, &y) || get_ch(s, len, &i, '-') ||
        get_dec(s, len, &i, 2, &mo) || get_ch(s, len, &i, '-') ||
        get_dec(s, len, &i, 2, &d))
        goto fail;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        goto fail;
    i++;
    if (get_dec(s, len, &i, 2, &h) || get_ch(s, len, &i, ':') ||
        get_dec(s, len, &i, 2, &mi) || get_ch(s, len, &i, ':') ||
        get_dec(s, len, &i, 2, &sec))
        goto fail;
    if (mo < 1 || mo > 12 || d < 1 || d > evs__days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 60)
        goto fail;

    if (i < len && s[i] == '.') {
        i++;
        /* Any number of digits, at least one; past µs they are dropped. */
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nfrac < 6)
                frac = frac * 10 + (unsigned)(s[i] - '0');
            nfrac++;
            i++;
        }
        if (nfrac == 0)
            goto fail;
        for (; nfrac < 6; nfrac++)
            frac *= 10;
    }
    if (sec == 60) {
        sec = 59;
        frac = 999999;
    }

    if (i >= len)
        goto fail;
    c = s[i++];
    if (c == '+' || c == '-') {
        if (get_dec(s, len, &i, 2, &oh) || get_ch(s, len, &i, ':') ||
            get_dec(s, len, &i, 2, &om) || oh > 23 || om > 59)
            goto fail;
        off = ((int64_t)oh * 60 + om) * 60;
        if (c == '-')
            off = -off;
    } else if (c != 'Z' && c != 'z') {
        goto fail;
    }
    if (i != len)
        goto fail;

    days = evs__days_from_civil(y, mo, d);
    t = days * SEC_PER_DAY + (int64_t)h * 3600 + mi * 60 + sec - off;
    *us = t * US_PER_SEC + frac;
    return 0;
fail:
    return EVS_EPARSE;
}
