/*
 * test_line.c: the event line codec of formats/line.c and
 * formats/line_foreign.c (canonical writer, verified decoder, foreign
 * lines), and owned event copies of formats/event.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evstore/format.h"
#include "formats_int.h"
#include "tu_alloc.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* 2026-11-22T10:15:30.123456Z */
#define T_CANON INT64_C(1795342530123456)
#define T_CANON_S "2026-11-22T10:15:30.123456Z"

/* A growable string. */
typedef struct sb {
    char *p;
    size_t len, cap;
} sb;

static void sb_putn(sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_putc(sb *b, char c)
{
    sb_putn(b, &c, 1);
}

static void sb_printf(sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(tmp));
    sb_putn(b, tmp, (size_t)n);
}

static void sb_free(sb *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Deterministic xorshift64*, so a failure can be reproduced. */
static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s ? s : 1;
}

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(rng() % n);
}

static evs_span sp(const char *s)
{
    return evs_span_cstr(s);
}

static evs_span spn(const char *s, size_t n)
{
    evs_span r = {s, n};
    return r;
}

#define assert_span_eq(got, want, what)                                        \
    do {                                                                       \
        evs_span g_ = (got), w_ = (want);                                      \
        cr_assert(evs__span_eq(g_, w_),                                        \
                  "%s: got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"",       \
                  (what), g_.len, (int)(g_.len > 200 ? 200 : g_.len),          \
                  g_.len ? g_.ptr : "", w_.len,                                \
                  (int)(w_.len > 200 ? 200 : w_.len), w_.len ? w_.ptr : "");   \
    } while (0)

#define assert_span_str(got, s, what) assert_span_eq((got), sp(s), (what))

/* Compares every field; `want_data` is what data must read back as. */
static void assert_event_eq(const evs_event *got, const evs_event *want,
                            evs_span want_data)
{
    uint64_t first = want->batch_count > 1 ? want->batch_first : want->sequence;
    uint64_t count = want->batch_count > 1 ? want->batch_count : 1;

    assert_span_eq(got->id, want->id, "id");
    assert_span_eq(got->execution_id, want->execution_id, "execution_id");
    assert_span_eq(got->path_id, want->path_id, "path_id");
    cr_assert_eq(got->sequence, want->sequence);
    cr_assert_eq(got->timestamp_us, want->timestamp_us, "ts %lld want %lld",
                 (long long)got->timestamp_us, (long long)want->timestamp_us);
    assert_span_eq(got->event_type, want->event_type, "event_type");
    assert_span_eq(got->step_name, want->step_name, "step_name");
    assert_span_eq(got->data, want_data, "data");
    cr_assert_eq(got->batch_first, first);
    cr_assert_eq(got->batch_count, count);
}

/* The hand-written event whose exact line test_canonical_bytes knows. */
static evs_event dive_like_event(void)
{
    evs_event e;

    memset(&e, 0, sizeof(e));
    e.id = sp("0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
    e.execution_id = sp("exec-1");
    e.path_id = sp("main");
    e.sequence = 7;
    e.timestamp_us = T_CANON;
    e.event_type = sp("step_completed");
    e.step_name = sp("summarize");
    e.data = sp("{\"output\":\"a <b>\",\"stored_variable\":\"summary\"}");
    return e;
}

static const char DIVE_LIKE_LINE[] =
    "{\"v\":1,\"id\":\"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b\","
    "\"execution_id\":\"exec-1\",\"path_id\":\"main\",\"sequence\":7,"
    "\"timestamp\":\"2026-11-22T10:15:30.123456Z\","
    "\"event_type\":\"step_completed\",\"step_name\":\"summarize\","
    "\"data\":{\"output\":\"a <b>\",\"stored_variable\":\"summary\"},"
    "\"checksum\":\"59103c0be2e57773\"}\n";

/*
 * Encodes ev into a buffer of exactly evs_line_encoded_max() bytes (so
 * ASan sees any overrun) and checks what every line must satisfy. The
 * caller frees the result.
 */
static char *encode_ok(const evs_event *ev, size_t *len)
{
    size_t max = evs_line_encoded_max(ev), n = 0;
    char *buf = malloc(max ? max : 1);
    int rc;

    cr_assert_not_null(buf);
    rc = evs_line_encode(ev, buf, max, &n);
    cr_assert_eq(rc, 0, "encode failed: %d (%s)", rc, evs_err_name(rc));
    cr_assert(n > 0 && n <= max, "length %zu, bound %zu", n, max);
    cr_assert_eq(buf[n - 1], '\n');
    cr_assert_null(memchr(buf, '\n', n - 1), "raw newline inside a line");
    cr_assert(n >= 7 && memcmp(buf, "{\"v\":1,", 7) == 0);
    cr_assert(n >= 31 && memcmp(buf + n - 31, "\"checksum\":\"", 12) == 0 &&
              memcmp(buf + n - 3, "\"}\n", 3) == 0);
    *len = n;
    return buf;
}

/* Encodes and returns 0 or the error. */
static int encode_rc(const evs_event *ev)
{
    size_t max = evs_line_encoded_max(ev), n = 0;
    char *buf = malloc(max);
    int rc;

    cr_assert_not_null(buf);
    rc = evs_line_encode(ev, buf, max, &n);
    free(buf);
    return rc;
}

/* Decodes expecting success. */
static void decode_ok(evs_decoder *d, const char *line, size_t len,
                      unsigned flags, evs_event *ev)
{
    evs_error_info info;
    int rc;

    evs_error_info_clear(&info);
    rc = evs_line_decode(d, line, len, flags, ev, &info);
    cr_assert_eq(rc, 0, "decode failed: %s (%s: %s) for \"%.*s\"",
                 evs_err_name(rc), info.kind, info.msg,
                 (int)(len > 300 ? 300 : len), line);
}

/* Decodes expecting the error `code` with info->kind `kind`; the same
 * with a NULL info. */
static void decode_bad(const char *line, size_t len, unsigned flags, int code,
                       const char *kind)
{
    evs_decoder d;
    evs_error_info info;
    evs_event ev;
    char *copy = malloc(len ? len : 1);
    int rc;

    /* A copy of exactly len bytes, so reads past the end are caught. */
    cr_assert_not_null(copy);
    if (len)
        memcpy(copy, line, len);
    evs_decoder_init(&d, NULL);
    evs_error_info_clear(&info);
    rc = evs_line_decode(&d, copy, len, flags, &ev, &info);
    cr_assert_eq(rc, code, "got %s, want %s (%s: %s) for \"%.*s\"",
                 evs_err_name(rc), evs_err_name(code), info.kind, info.msg,
                 (int)(len > 300 ? 300 : len), line);
    cr_assert_eq(info.code, code);
    cr_assert_str_eq(info.kind, kind);
    cr_assert(info.msg[0] != '\0');
    cr_assert_eq(evs_line_decode(&d, copy, len, flags, &ev, NULL), code);
    evs_decoder_free(&d);
    free(copy);
}

static void decode_bad_s(const char *line, unsigned flags, int code,
                         const char *kind)
{
    decode_bad(line, strlen(line), flags, code, kind);
}

/* Seals a body that ends with a comma into a framed line (a valid
 * checksum over whatever the body says). The caller frees it. */
static char *seal(const char *body)
{
    size_t n = strlen(body);
    char *line = malloc(n + EVS__CKSUM_TAIL_LEN + 1);
    uint64_t sum = evs_checksum(body, n);

    cr_assert_not_null(line);
    memcpy(line, body, n);
    snprintf(line + n, EVS__CKSUM_TAIL_LEN + 1, "\"checksum\":\"%016llx\"}\n",
             (unsigned long long)sum);
    return line;
}

/* Body of a canonical line with the given middle (after "v":1, up to and
 * including the comma after data), sealed. */
static void sealed_bad(const char *body, int code, const char *kind)
{
    char *line = seal(body);

    decode_bad_s(line, 0, code, kind);
    free(line);
}

/* Seals and decodes expecting success; the views point into the line
 * returned, which the caller frees. */
static char *sealed_ok(const char *body, evs_event *out, evs_decoder *d)
{
    char *line = seal(body);

    decode_ok(d, line, strlen(line), 0, out);
    return line;
}

/* ------------------------------------------------------------------ */
/* Random events                                                      */
/* ------------------------------------------------------------------ */

/* Appends one random character (valid UTF-8) of the kinds that need
 * care: quotes, backslashes, controls, DEL, '/', multi-byte text. */
static void rand_char(sb *b)
{
    unsigned cp;
    char u[4];

    switch (rnd(10)) {
    case 0: sb_putc(b, '"'); return;
    case 1: sb_putc(b, '\\'); return;
    case 2: sb_putc(b, (char)rnd(0x20)); return; /* NUL included */
    case 3: sb_putc(b, rnd(2) ? 0x7f : '/'); return;
    case 4:
        cp = 0x80 + rnd(0x800 - 0x80);
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        sb_putn(b, u, 2);
        return;
    case 5:
        do
            cp = 0x800 + rnd(0x10000 - 0x800);
        while (cp >= 0xd800 && cp < 0xe000);
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        sb_putn(b, u, 3);
        return;
    case 6:
        cp = 0x10000 + rnd(0x110000 - 0x10000);
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        sb_putn(b, u, 4);
        return;
    default: sb_putc(b, (char)(' ' + rnd(95))); return;
    }
}

static void rand_str(sb *b, size_t maxlen)
{
    size_t n = rnd((unsigned)maxlen + 1);

    for (size_t i = 0; i < n; i++)
        rand_char(b);
}

/* Appends a random JSON string literal (with JSON escapes) to both the
 * compact and the spaced text. */
static void rand_json_str(sb *c, sb *s)
{
    static const char *const esc[] = {
        "\\\"",    "\\\\",   "\\/", "\\b",     "\\f",
        "\\n",     "\\r",    "\\t", "\\u00e9", "\\ud83d\\ude00",
        "\\u0000", "\\ud800"};
    sb t = {0};
    size_t n = rnd(12);

    sb_putc(&t, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned k = rnd(4);
        if (k == 0) {
            sb_puts(&t, esc[rnd(sizeof(esc) / sizeof(esc[0]))]);
        } else if (k == 1) {
            size_t before = t.len;
            rand_char(&t);
            /* Raw quotes, backslashes and controls are not JSON text. */
            if ((unsigned char)t.p[before] < 0x20 || t.p[before] == '"' ||
                t.p[before] == '\\') {
                t.len = before;
                sb_puts(&t, " x");
            }
        } else {
            sb_putc(&t, (char)('a' + rnd(26)));
        }
    }
    sb_putc(&t, '"');
    sb_putn(c, t.p, t.len);
    sb_putn(s, t.p, t.len);
    sb_free(&t);
}

static void rand_ws(sb *s)
{
    static const char *const ws[] = {"", " ", "\n", "\t", "\r\n  ", "  "};
    sb_puts(s, ws[rnd(6)]);
}

static void rand_json(sb *c, sb *s, int depth)
{
    static const char *const nums[] = {"0",
                                       "-0",
                                       "1",
                                       "-1",
                                       "1.10",
                                       "0.1",
                                       "1e400",
                                       "-1e-400",
                                       "1E+2",
                                       "12345678901234567890",
                                       "99999999999999999999999",
                                       "-9223372036854775809",
                                       "9223372036854775807",
                                       "3.14159",
                                       "-0.0",
                                       "2.5e-3"};
    unsigned k = rnd(depth > 4 ? 6 : 8);
    const char *t;
    unsigned n;

    switch (k) {
    case 0: t = "true"; break;
    case 1: t = "false"; break;
    case 2: t = "null"; break;
    case 3: t = nums[rnd(sizeof(nums) / sizeof(nums[0]))]; break;
    case 4:
    case 5: rand_json_str(c, s); return;
    case 6:
        n = rnd(5);
        sb_putc(c, '[');
        sb_putc(s, '[');
        for (unsigned i = 0; i < n; i++) {
            if (i) {
                sb_putc(c, ',');
                rand_ws(s);
                sb_putc(s, ',');
            }
            rand_ws(s);
            rand_json(c, s, depth + 1);
            rand_ws(s);
        }
        sb_putc(c, ']');
        sb_putc(s, ']');
        return;
    default:
        n = rnd(5);
        sb_putc(c, '{');
        sb_putc(s, '{');
        for (unsigned i = 0; i < n; i++) {
            if (i) {
                sb_putc(c, ',');
                sb_putc(s, ',');
            }
            rand_ws(s);
            rand_json_str(c, s);
            rand_ws(s);
            sb_putc(c, ':');
            sb_putc(s, ':');
            rand_ws(s);
            rand_json(c, s, depth + 1);
            rand_ws(s);
        }
        sb_putc(c, '}');
        sb_putc(s, '}');
        return;
    }
    sb_puts(c, t);
    sb_puts(s, t);
}

/* A random event; its strings live in the sbs of `r`. */
typedef struct rand_event {
    sb id, exec, path, type, step, data, data_spaced;
    evs_event ev;
} rand_event;

static void rand_event_make(rand_event *r)
{
    memset(r, 0, sizeof(*r));
    sb_putc(&r->id, 'i');
    rand_str(&r->id, 40);
    sb_putc(&r->exec, 'e');
    rand_str(&r->exec, 20);
    if (rnd(4))
        rand_str(&r->path, 12);
    sb_putc(&r->type, 't');
    rand_str(&r->type, 20);
    if (rnd(4))
        rand_str(&r->step, 30);
    rand_json(&r->data, &r->data_spaced, 0);

    memset(&r->ev, 0, sizeof(r->ev));
    r->ev.id = spn(r->id.p, r->id.len);
    r->ev.execution_id = spn(r->exec.p, r->exec.len);
    r->ev.path_id = spn(r->path.p, r->path.len);
    r->ev.event_type = spn(r->type.p, r->type.len);
    r->ev.step_name = spn(r->step.p, r->step.len);
    r->ev.data = rnd(2) ? spn(r->data_spaced.p, r->data_spaced.len)
                        : spn(r->data.p, r->data.len);
    r->ev.sequence = rnd(3) ? 1 + rng() % 100000 : UINT64_MAX - rnd(3);
    /* Any time in years 0000..9999. */
    r->ev.timestamp_us = INT64_C(-62167219200000000) +
                         (int64_t)(rng() % UINT64_C(315537897600000000));
    if (rnd(2)) {
        uint64_t count = 2 + rnd(10);

        r->ev.batch_count = count;
        if (r->ev.sequence > UINT64_MAX - 20) {
            /* A batch that ends exactly at UINT64_MAX. */
            r->ev.batch_first = UINT64_MAX - count + 1;
            r->ev.sequence = r->ev.batch_first + rnd((unsigned)count);
        } else if (r->ev.sequence > 1000) {
            r->ev.batch_first = r->ev.sequence - rnd((unsigned)count);
        } else {
            r->ev.batch_first = r->ev.sequence;
        }
    } else {
        r->ev.batch_count = rnd(2); /* 0 and 1 both mean alone */
        r->ev.batch_first = rng();
    }
}

static void rand_event_free(rand_event *r)
{
    sb_free(&r->id);
    sb_free(&r->exec);
    sb_free(&r->path);
    sb_free(&r->type);
    sb_free(&r->step);
    sb_free(&r->data);
    sb_free(&r->data_spaced);
}

/* ------------------------------------------------------------------ */
/* Encoding                                                           */
/* ------------------------------------------------------------------ */

Test(line_encode, writes_the_exact_canonical_bytes_of_a_known_event)
{
    evs_event e = dive_like_event();
    size_t n;
    char *line = encode_ok(&e, &n);

    cr_assert_eq(n, strlen(DIVE_LIKE_LINE));
    cr_assert(memcmp(line, DIVE_LIKE_LINE, n) == 0, "got %.*s", (int)n, line);
    free(line);
}

Test(line_encode, checksum_is_xxh3_64_with_seed_zero)
{
    /* The published XXH3-64 of the empty input. */
    cr_assert_eq(evs_checksum("", 0), UINT64_C(0x2d06800538d394c2));
}

/* Event 6 of a batch of 3 from 5, type "custom", with `data`. */
static evs_event batch_event(const char *data)
{
    evs_event e;

    memset(&e, 0, sizeof(e));
    e.id = sp("e2");
    e.execution_id = sp("exec-1");
    e.sequence = 6;
    e.batch_first = 5;
    e.batch_count = 3;
    e.timestamp_us = T_CANON;
    e.event_type = sp("custom");
    e.data = sp(data);
    return e;
}

Test(line_encode, writes_batch_escapes_and_pretty_data_canonically)
{
    static const char want[] =
        "{\"v\":1,\"id\":\"e2\",\"execution_id\":\"exec-1\",\"path_id\":\"\","
        "\"sequence\":6,\"batch\":[5,3],"
        "\"timestamp\":\"2026-11-22T10:15:30.123456Z\","
        "\"event_type\":\"custom\","
        "\"step_name\":\"a\\\"b\\\\c\\n\\u0001\x7f/\xc3\xa9\","
        "\"data\":[1,{\"k\":null}],"
        "\"checksum\":\"596efe639796a2c4\"}\n";
    evs_event e = batch_event(" [ 1 ,\n\t{\"k\" :\r\nnull} ] ");
    size_t n;
    char *line;

    e.step_name = sp("a\"b\\c\n\x01\x7f/\xc3\xa9");
    line = encode_ok(&e, &n);
    cr_assert_eq(n, strlen(want), "got %.*s", (int)n, line);
    cr_assert(memcmp(line, want, n) == 0, "got %.*s", (int)n, line);
    free(line);
}

Test(line_encode, compact_data_passed_as_checked_gives_the_same_line)
{
    static const char loose[] = " [ 1 ,\n\t{\"k\" :\r\n\"\\u00e9 \xc3\xa9\"} ] ";
    char compact[sizeof(loose)], *want, *got;
    size_t clen, wn, gn, need;
    evs_event e = batch_event(loose);

    want = encode_ok(&e, &wn);
    /* The recorder's way: data checked and compacted first, then copied
     * into the line as it is, in a buffer of the bound and in one of
     * exactly the line's length (the measuring path). */
    cr_assert_eq(evs_json_check(loose, strlen(loose), EVS_JSON_MINIFY, compact,
                                &clen, NULL),
                 0);
    e.data = (evs_span){compact, clen};
    need = evs_line_encoded_max(&e);
    for (int exact = 0; exact < 2; exact++) {
        size_t cap = exact ? wn : need;
        got = malloc(cap);
        cr_assert_not_null(got);
        cr_assert_eq(evs__line_encode_flags(&e, got, cap, &gn,
                                            EVS__LINE_DATA_COMPACT),
                     0);
        cr_assert_eq(gn, wn, "exact=%d", exact);
        cr_assert(memcmp(got, want, wn) == 0, "exact=%d: %.*s", exact, (int)gn,
                  got);
        free(got);
    }
    /* One byte short of the line: no room, not a different line. */
    got = malloc(wn - 1);
    cr_assert_not_null(got);
    cr_assert_eq(evs__line_encode_flags(&e, got, wn - 1, &gn,
                                        EVS__LINE_DATA_COMPACT),
                 -ENOBUFS);
    free(got);
    free(want);
}

Test(line_encode, leaves_out_batch_for_a_count_of_zero_or_one)
{
    evs_event e = dive_like_event();
    evs_decoder d;
    evs_event got;
    size_t n;
    char *line;

    evs_decoder_init(&d, NULL);
    for (uint64_t count = 0; count < 2; count++) {
        e.batch_count = count;
        e.batch_first = 12345; /* ignored when alone */
        line = encode_ok(&e, &n);
        cr_assert_eq(n, strlen(DIVE_LIKE_LINE));
        cr_assert(memcmp(line, DIVE_LIKE_LINE, n) == 0);
        decode_ok(&d, line, n, 0, &got);
        cr_assert_eq(got.batch_first, 7);
        cr_assert_eq(got.batch_count, 1);
        free(line);
    }
    evs_decoder_free(&d);
}

Test(line_encode, writes_empty_data_as_an_empty_object)
{
    evs_event e = dive_like_event();
    evs_decoder d;
    evs_event got;
    size_t n;
    char *line;

    e.data = spn(NULL, 0);
    e.path_id = spn(NULL, 0);
    e.step_name = spn(NULL, 0);
    line = encode_ok(&e, &n);
    cr_assert_not_null(memmem(line, n, "\"path_id\":\"\",", 13));
    cr_assert_not_null(memmem(line, n, "\"step_name\":\"\",\"data\":{},", 25));
    evs_decoder_init(&d, NULL);
    decode_ok(&d, line, n, 0, &got);
    assert_span_str(got.data, "{}", "data");
    assert_span_str(got.path_id, "", "path_id");
    assert_span_str(got.step_name, "", "step_name");
    evs_decoder_free(&d);
    free(line);
}

Test(line_encode, writes_every_kind_of_json_data_compactly)
{
    static const char *const cases[][2] = {
        {"{}", "{}"},
        {"[]", "[]"},
        {"\"just a string\"", "\"just a string\""},
        {"42", "42"},
        {"-1.5e-7", "-1.5e-7"},
        {"12345678901234567890", "12345678901234567890"},
        {"true", "true"},
        {"false", "false"},
        {"null", "null"},
        {" { \"a\" : [ 1 , 2 , { \"b\" : [ ] } ] , \"c\" : \"x y\" } ",
         "{\"a\":[1,2,{\"b\":[]}],\"c\":\"x y\"}"},
        {"[\n  \"\\u0000\\n\",\n  {\"k\\\"\":\"\\\\\"}\n]\n",
         "[\"\\u0000\\n\",{\"k\\\"\":\"\\\\\"}]"},
        {"{\"dup\":1,\"dup\":2}", "{\"dup\":1,\"dup\":2}"},
    };
    evs_decoder d;

    evs_decoder_init(&d, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        evs_event e = dive_like_event(), got;
        size_t n;
        char *line;

        e.data = sp(cases[i][0]);
        line = encode_ok(&e, &n);
        decode_ok(&d, line, n, 0, &got);
        assert_event_eq(&got, &e, sp(cases[i][1]));
        free(line);
    }
    evs_decoder_free(&d);
}

Test(line_encode, bound_is_never_below_the_real_length_and_exact_fits)
{
    rng_seed(0x5eed01);
    for (int i = 0; i < 500; i++) {
        rand_event r;
        size_t n, max, m;
        char *line, *small;

        rand_event_make(&r);
        line = encode_ok(&r.ev, &n);
        max = evs_line_encoded_max(&r.ev);
        cr_assert(max >= n);

        /* Exactly the line's length is enough... */
        small = malloc(n);
        cr_assert_not_null(small);
        m = 0;
        cr_assert_eq(evs_line_encode(&r.ev, small, n, &m), 0);
        cr_assert_eq(m, n);
        cr_assert(memcmp(small, line, n) == 0);
        free(small);

        /* ...and one byte less is not, nor are a few smaller sizes. */
        for (size_t cap = n - 1;; cap = cap / 2) {
            small = malloc(cap ? cap : 1);
            cr_assert_not_null(small);
            m = 777;
            cr_assert_eq(evs_line_encode(&r.ev, small, cap, &m), -ENOBUFS,
                         "cap %zu of %zu", cap, n);
            cr_assert_eq(m, 777, "out_len written on failure");
            free(small);
            if (cap == 0)
                break;
        }
        free(line);
        rand_event_free(&r);
    }
}

Test(line_encode, refuses_a_buffer_below_the_bound_without_writing_past_it)
{
    evs_event e = dive_like_event();
    size_t n = strlen(DIVE_LIKE_LINE), m;
    char buf[1024];

    for (size_t cap = 0; cap < n; cap++) {
        memset(buf, 'Z', sizeof(buf));
        cr_assert_eq(evs_line_encode(&e, buf, cap, &m), -ENOBUFS);
        for (size_t i = cap; i < sizeof(buf); i++)
            cr_assert_eq(buf[i], 'Z', "cap %zu: byte %zu written", cap, i);
    }
}

Test(line_encode, refuses_missing_required_fields)
{
    evs_event e;

    e = dive_like_event();
    e.id = spn(NULL, 0);
    cr_assert_eq(encode_rc(&e), -EINVAL);
    e = dive_like_event();
    e.execution_id = sp("");
    cr_assert_eq(encode_rc(&e), -EINVAL);
    e = dive_like_event();
    e.event_type = spn(NULL, 0);
    cr_assert_eq(encode_rc(&e), -EINVAL);
    e = dive_like_event();
    e.sequence = 0;
    cr_assert_eq(encode_rc(&e), -EINVAL);
}

Test(line_encode, refuses_invalid_utf8_in_every_string_field)
{
    static const char *const bad[] = {
        "\xff",             /* never in UTF-8 */
        "a\x80",            /* stray continuation */
        "\xc0\x80",         /* overlong NUL */
        "\xe0\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xe2\x82",         /* truncated */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "ok\xc3",           /* truncated at the end */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int f = 0; f < 5; f++) {
            evs_event e = dive_like_event();
            evs_span *s[] = {&e.id, &e.execution_id, &e.path_id, &e.event_type,
                             &e.step_name};

            *s[f] = sp(bad[i]);
            cr_assert_eq(encode_rc(&e), -EINVAL, "case %zu field %d", i, f);
        }
    }
}

Test(line_encode, refuses_data_that_is_not_one_json_value)
{
    static const char *const bad[] = {
        "{",          "{\"a\":}", "[1,]",
        "NaN",        "Infinity", "1.",
        ".5",         "01",       "'x'",
        "{\"a\":1}x", "{} {}",    "\"\\u12\"",
        "\"a\nb\"",   "\"\\x\"",  "[\"\xff\"]",
        "{\"a\" 1}",  "tru",      "nul",
        "  ",         "-",        "\"\xed\xa0\x80\"",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        evs_event e = dive_like_event();

        e.data = sp(bad[i]);
        cr_assert_eq(encode_rc(&e), -EINVAL, "accepted data %s", bad[i]);
    }
}

Test(line_encode, refuses_data_nested_too_deep)
{
    char deep[2 * EVS_JSON_DEPTH_MAX + 4];
    evs_event e = dive_like_event();
    size_t k;

    for (k = 0; k <= EVS_JSON_DEPTH_MAX; k++)
        deep[k] = '[';
    for (size_t j = 0; j <= EVS_JSON_DEPTH_MAX; j++)
        deep[k++] = ']';
    e.data = spn(deep, k);
    cr_assert_eq(encode_rc(&e), -EINVAL);
    /* One level less is fine. */
    e.data = spn(deep + 1, k - 2);
    cr_assert_eq(encode_rc(&e), 0);
}

Test(line_encode, refuses_inconsistent_batch_fields)
{
    static const uint64_t cases[][3] = {
        /* sequence, batch_first, batch_count */
        {5, 0, 3},                       /* no first */
        {4, 5, 3},                       /* before the batch */
        {8, 5, 3},                       /* after the batch */
        {UINT64_MAX, UINT64_MAX - 1, 5}, /* batch runs past UINT64_MAX */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        evs_event e = dive_like_event();

        e.sequence = cases[i][0];
        e.batch_first = cases[i][1];
        e.batch_count = cases[i][2];
        cr_assert_eq(encode_rc(&e), -EINVAL, "case %zu", i);
    }
    {
        evs_event e = dive_like_event();

        /* The edges are fine. */
        e.sequence = 7;
        e.batch_first = 5;
        e.batch_count = 3;
        cr_assert_eq(encode_rc(&e), 0);
        e.sequence = UINT64_MAX;
        e.batch_first = UINT64_MAX - 1;
        e.batch_count = 2;
        cr_assert_eq(encode_rc(&e), 0);
    }
}

Test(line_encode, refuses_a_timestamp_outside_years_0000_to_9999)
{
    static const int64_t bad[] = {
        INT64_C(-62167219200000001), /* 1 µs before 0000-01-01 */
        INT64_C(253402300800000000), /* 10000-01-01 */
        INT64_MIN,
        INT64_MAX,
    };
    static const int64_t good[] = {
        INT64_C(-62167219200000000),
        INT64_C(253402300799999999),
        0,
        -1,
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        evs_event e = dive_like_event();

        e.timestamp_us = bad[i];
        cr_assert_eq(encode_rc(&e), -EINVAL, "accepted %lld",
                     (long long)bad[i]);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        evs_event e = dive_like_event(), got;
        evs_decoder d;
        size_t n;
        char *line = encode_ok((e.timestamp_us = good[i], &e), &n);

        evs_decoder_init(&d, NULL);
        decode_ok(&d, line, n, 0, &got);
        cr_assert_eq(got.timestamp_us, good[i]);
        evs_decoder_free(&d);
        free(line);
    }
}

/* ------------------------------------------------------------------ */
/* Round trips                                                        */
/* ------------------------------------------------------------------ */

Test(line_roundtrip, random_events_decode_to_what_was_encoded)
{
    evs_decoder d;

    evs_decoder_init(&d, NULL);
    rng_seed(0xc0ffee);
    for (int i = 0; i < 3000; i++) {
        rand_event r;
        evs_event got;
        size_t n;
        char *line;

        rand_event_make(&r);
        line = encode_ok(&r.ev, &n);
        decode_ok(&d, line, n, 0, &got);
        assert_event_eq(&got, &r.ev, spn(r.data.p, r.data.len));
        /* The same without the newline, and with the foreign flag (a
         * canonical line never takes the foreign path). */
        decode_ok(&d, line, n - 1, 0, &got);
        assert_event_eq(&got, &r.ev, spn(r.data.p, r.data.len));
        decode_ok(&d, line, n, EVS_DECODE_FOREIGN, &got);
        assert_event_eq(&got, &r.ev, spn(r.data.p, r.data.len));
        free(line);
        rand_event_free(&r);
    }
    evs_decoder_free(&d);
}

Test(line_roundtrip, data_of_one_mebibyte_and_long_escaped_strings)
{
    evs_event e = dive_like_event(), got;
    evs_decoder d;
    sb data = {0}, spaced = {0}, step = {0};
    size_t n;
    char *line;

    sb_putc(&data, '[');
    sb_putc(&spaced, '[');
    for (int i = 0; data.len < ((size_t)1 << 20); i++) {
        char item[64];

        snprintf(item, sizeof(item), "%s{\"n\":%d,\"s\":\"x\\\"y\\u0001\"}",
                 i ? "," : "", i);
        sb_puts(&data, item);
        sb_puts(&spaced, i ? " ,\n  " : "\n  ");
        sb_puts(&spaced, item + (i ? 1 : 0));
    }
    sb_putc(&data, ']');
    sb_puts(&spaced, "\n]\n");
    /* 256 KiB of bytes that each need escaping: 6x when quoted. */
    for (int i = 0; i < (1 << 18); i++)
        sb_putc(&step, (char)(i % 0x20));
    e.data = spn(spaced.p, spaced.len);
    e.step_name = spn(step.p, step.len);

    line = encode_ok(&e, &n);
    cr_assert(n > ((size_t)1 << 20) + ((size_t)1 << 18) * 2);
    evs_decoder_init(&d, NULL);
    decode_ok(&d, line, n, 0, &got);
    assert_event_eq(&got, &e, spn(data.p, data.len));
    decode_ok(&d, line, n - 1, 0, &got);
    assert_event_eq(&got, &e, spn(data.p, data.len));
    evs_decoder_free(&d);
    free(line);
    sb_free(&data);
    sb_free(&spaced);
    sb_free(&step);
}

/* ------------------------------------------------------------------ */
/* Decoding: damage                                                   */
/* ------------------------------------------------------------------ */

Test(line_decode, reads_the_known_line)
{
    evs_event want = dive_like_event(), got;
    evs_decoder d;
    size_t n = strlen(DIVE_LIKE_LINE);

    evs_decoder_init(&d, NULL);
    decode_ok(&d, DIVE_LIKE_LINE, n, 0, &got);
    assert_event_eq(&got, &want, want.data);
    /* Without escapes, every view points into the caller's line. */
    cr_assert(got.id.ptr > DIVE_LIKE_LINE && got.data.ptr < DIVE_LIKE_LINE + n);
    cr_assert_eq(got.data.ptr + got.data.len + 1,
                 DIVE_LIKE_LINE + n - EVS__CKSUM_TAIL_LEN);
    evs_decoder_free(&d);
}

Test(line_decode, a_line_without_its_newline_decodes_the_same)
{
    evs_event want = dive_like_event(), a, b;
    evs_decoder d1, d2;
    size_t n = strlen(DIVE_LIKE_LINE);
    char *copy = malloc(n - 1);

    cr_assert_not_null(copy);
    memcpy(copy, DIVE_LIKE_LINE, n - 1);
    evs_decoder_init(&d1, NULL);
    evs_decoder_init(&d2, NULL);
    decode_ok(&d1, DIVE_LIKE_LINE, n, 0, &a);
    decode_ok(&d2, copy, n - 1, 0, &b);
    assert_event_eq(&b, &want, want.data);
    assert_event_eq(&b, &a, a.data);
    /* The views point at the caller's bytes, not a private copy. */
    cr_assert(b.data.ptr >= copy && b.data.ptr < copy + n - 1);
    evs_decoder_free(&d1);
    evs_decoder_free(&d2);
    free(copy);
}

Test(line_decode, any_changed_byte_is_a_checksum_mismatch)
{
    size_t n = strlen(DIVE_LIKE_LINE);
    size_t key = n - EVS__CKSUM_TAIL_LEN - 1; /* the comma before it */
    size_t hex = key + EVS__CKSUM_KEY_LEN;
    char *line = malloc(n);

    cr_assert_not_null(line);
    cr_assert(
        memcmp(DIVE_LIKE_LINE + key, EVS__CKSUM_KEY, EVS__CKSUM_KEY_LEN) == 0);
    for (unsigned flags = 0; flags <= EVS_DECODE_FOREIGN; flags++) {
        /* Every byte of the body after {"v":, one bit flipped. */
        for (size_t i = 5; i < key; i++) {
            memcpy(line, DIVE_LIKE_LINE, n);
            line[i] ^= 0x01;
            decode_bad(line, n, flags, EVS_ECORRUPT, "checksum");
        }
        /* Every digit of the checksum, changed to another digit. */
        for (size_t i = hex; i < hex + 16; i++) {
            memcpy(line, DIVE_LIKE_LINE, n);
            line[i] = line[i] == '0' ? 'f' : '0';
            decode_bad(line, n, flags, EVS_ECORRUPT, "checksum");
        }
    }
    free(line);
}

Test(line_decode, a_bad_checksum_is_corrupt_even_with_the_foreign_flag)
{
    size_t n = strlen(DIVE_LIKE_LINE);
    char *line = strdup(DIVE_LIKE_LINE);

    cr_assert_not_null(line);
    /* Data changed in a way that still parses as JSON. */
    memcpy(strstr(line, "a <b>"), "a <c>", 5);
    decode_bad(line, n, EVS_DECODE_FOREIGN, EVS_ECORRUPT, "checksum");
    decode_bad(line, n - 1, EVS_DECODE_FOREIGN, EVS_ECORRUPT, "checksum");
    /* Also when the change makes it look less like ours. */
    line[2] = 'w'; /* {"w":1,... */
    decode_bad(line, n, EVS_DECODE_FOREIGN, EVS_ECORRUPT, "checksum");
    decode_bad(line, n, 0, EVS_EPARSE, "syntax");
    free(line);
}

Test(line_decode, every_truncation_is_refused)
{
    evs_event e = dive_like_event();
    size_t lens[2];
    char *lines[2];

    e.step_name = sp("with \"escapes\"\n");
    lines[0] = encode_ok(&e, &lens[0]);
    e.batch_first = 6;
    e.batch_count = 4;
    lines[1] = encode_ok(&e, &lens[1]);
    for (int k = 0; k < 2; k++) {
        const char *line = lines[k];
        size_t n = lens[k];

        /* n - 1 is the line without its newline, which is fine. */
        for (size_t cut = 0; cut < n - 1; cut++) {
            for (unsigned flags = 0; flags <= EVS_DECODE_FOREIGN; flags++) {
                char *t = malloc(cut + 1);
                evs_decoder d;
                evs_event got;
                int rc, rc2;

                cr_assert_not_null(t);
                memcpy(t, line, cut);
                evs_decoder_init(&d, NULL);
                rc = evs_line_decode(&d, t, cut, flags, &got, NULL);
                /* As a torn line followed by a newline. */
                t[cut] = '\n';
                rc2 = evs_line_decode(&d, t, cut + 1, flags, &got, NULL);
                cr_assert(rc == EVS_EPARSE || rc == EVS_ECORRUPT,
                          "line %d cut at %zu flags %u: %s", k, cut, flags,
                          evs_err_name(rc));
                cr_assert(rc2 == EVS_EPARSE || rc2 == EVS_ECORRUPT,
                          "line %d cut at %zu + \\n flags %u: %s", k, cut,
                          flags, evs_err_name(rc2));
                evs_decoder_free(&d);
                free(t);
            }
        }
    }
    free(lines[0]);
    free(lines[1]);
}

Test(line_decode, bad_framing_is_a_syntax_error)
{
    size_t n = strlen(DIVE_LIKE_LINE);
    const char *ck = strstr(DIVE_LIKE_LINE, ",\"checksum\"");
    sb b = {0};
    char *line;

    /* No checksum member at all. */
    sb_putn(&b, DIVE_LIKE_LINE, (size_t)(ck - DIVE_LIKE_LINE));
    sb_puts(&b, "}\n");
    decode_bad(b.p, b.len, 0, EVS_EPARSE, "syntax");
    sb_free(&b);

    /* Upper-case hex of the right checksum. */
    line = strdup(DIVE_LIKE_LINE);
    cr_assert_not_null(line);
    for (size_t i = n - 19; i < n - 3; i++)
        if (line[i] >= 'a' && line[i] <= 'f')
            line[i] = (char)(line[i] - 'a' + 'A');
    cr_assert(strcmp(line, DIVE_LIKE_LINE) != 0);
    decode_bad_s(line, 0, EVS_EPARSE, "syntax");
    free(line);

    /* Missing closing brace, with and without the newline. */
    sb_putn(&b, DIVE_LIKE_LINE, n - 2);
    sb_putc(&b, '\n');
    decode_bad(b.p, b.len, 0, EVS_EPARSE, "syntax");
    decode_bad(b.p, b.len - 1, 0, EVS_EPARSE, "syntax");
    sb_free(&b);

    /* A byte after the brace, CRLF, two newlines, a space in the tail. */
    {
        static const char *const tails[] = {"} \n", "}\r\n", "}\n\n", "}x\n"};
        for (size_t i = 0; i < 4; i++) {
            sb_putn(&b, DIVE_LIKE_LINE, n - 2);
            sb_puts(&b, tails[i]);
            decode_bad(b.p, b.len, 0, EVS_EPARSE, "syntax");
            sb_free(&b);
        }
    }
    sb_putn(&b, DIVE_LIKE_LINE, (size_t)(ck - DIVE_LIKE_LINE) + 1);
    sb_puts(&b, "\"checksum\": \"59103c0be2e57773\"}\n");
    decode_bad(b.p, b.len, 0, EVS_EPARSE, "syntax");
    sb_free(&b);

    /* Too few and too many hex digits. */
    sb_putn(&b, DIVE_LIKE_LINE, n - 4);
    sb_puts(&b, "\"}\n");
    decode_bad(b.p, b.len, 0, EVS_EPARSE, "syntax");
    sb_free(&b);
    sb_putn(&b, DIVE_LIKE_LINE, n - 3);
    sb_puts(&b, "0\"}\n");
    decode_bad(b.p, b.len, 0, EVS_EPARSE, "syntax");
    sb_free(&b);

    /* Missing opening brace (the checksum then covers a different body,
     * so seal it properly to isolate the framing). */
    line = seal("\"v\":1,\"id\":\"a\",");
    decode_bad_s(line, 0, EVS_EPARSE, "syntax");
    free(line);

    /* Empty and tiny inputs. */
    decode_bad("", 0, 0, EVS_EPARSE, "syntax");
    decode_bad("\n", 1, 0, EVS_EPARSE, "syntax");
    decode_bad_s("{\"v\":", 0, EVS_EPARSE, "syntax");
    decode_bad_s("{\"v\":1}\n", 0, EVS_EPARSE, "syntax");
}

/* The parts of a canonical body, for building variants. */
#define B_V "{\"v\":1,"
#define B_ID "\"id\":\"a\","
#define B_EXEC "\"execution_id\":\"x\","
#define B_PATH "\"path_id\":\"p\","
#define B_SEQ "\"sequence\":5,"
#define B_TIME "\"timestamp\":\"" T_CANON_S "\","
#define B_TYPE "\"event_type\":\"t\","
#define B_STEP "\"step_name\":\"s\","
#define B_DATA "\"data\":{},"

Test(line_decode, the_sealed_helper_builds_a_valid_line)
{
    evs_decoder d;
    evs_event got;
    char *line = seal(B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA);

    evs_decoder_init(&d, NULL);
    decode_ok(&d, line, strlen(line), 0, &got);
    assert_span_str(got.id, "a", "id");
    assert_span_str(got.execution_id, "x", "execution_id");
    assert_span_str(got.path_id, "p", "path_id");
    cr_assert_eq(got.sequence, 5);
    cr_assert_eq(got.timestamp_us, T_CANON);
    assert_span_str(got.event_type, "t", "event_type");
    assert_span_str(got.step_name, "s", "step_name");
    assert_span_str(got.data, "{}", "data");
    evs_decoder_free(&d);
    free(line);
}

Test(line_decode, fields_out_of_order_or_missing_are_a_syntax_error)
{
    static const char *const bodies[] = {
        /* swapped */
        B_V B_EXEC B_ID B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_TIME B_SEQ B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_DATA B_STEP,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_STEP B_TYPE B_DATA,
        "{" B_ID "\"v\":1," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        /* missing */
        B_V B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP "\"data\":,",
        /* extra or duplicated */
        B_V B_ID B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ "\"x\":1," B_TIME B_TYPE B_STEP B_DATA,
        /* batch in the wrong place, alone, or inconsistent */
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME
        "\"batch\":[4,2]," B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH
        "\"batch\":[4,2]," B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[5,1]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[5,0]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[0,9]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[6,2]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[2,3]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[4,02]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[4, 2]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ
        "\"batch\":[4,2,1]," B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH
        "\"sequence\":18446744073709551615,"
        "\"batch\":[18446744073709551614,3]," B_TIME B_TYPE B_STEP B_DATA,
        /* whitespace between tokens */
        "{\"v\":1, " B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V "\"id\" :\"a\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        /* empty required strings */
        B_V "\"id\":\"\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID
        "\"execution_id\":\"\"," B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME
        "\"event_type\":\"\"," B_STEP B_DATA,
        /* strings that are not strings, or not valid */
        B_V "\"id\":7," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V "\"id\":null," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V "\"id\":\"a\\x\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V
        "\"id\":\"a\\u12\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V "\"id\":\"a\tb\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V "\"id\":\"a\xff\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        B_V B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE
        "\"step_name\":\"\xed\xa0\x80\"," B_DATA,
        B_V B_ID B_EXEC
        "\"path_id\":\"\xc0\xaf\"," B_SEQ B_TIME B_TYPE B_STEP B_DATA,
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        sealed_bad(bodies[i], EVS_EPARSE, "syntax");
}

Test(line_decode, sequence_must_be_a_plain_64_bit_integer)
{
    static const char *const bad[] = {
        "0",
        "00",
        "05",
        "007",
        "-1",
        "+1",
        "1.0",
        "1e3",
        "\"5\"",
        "",
        "18446744073709551616",
        "99999999999999999999",
        "0x10",
        "5 ",
    };
    evs_decoder d;
    evs_event got;
    char body[512], *line;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 B_V B_ID B_EXEC B_PATH
                 "\"sequence\":%s," B_TIME B_TYPE B_STEP B_DATA,
                 bad[i]);
        sealed_bad(body, EVS_EPARSE, "syntax");
    }
    evs_decoder_init(&d, NULL);
    line = sealed_ok(
        B_V B_ID B_EXEC B_PATH
        "\"sequence\":18446744073709551615," B_TIME B_TYPE B_STEP B_DATA,
        &got, &d);
    cr_assert_eq(got.sequence, UINT64_MAX);
    free(line);
    line = sealed_ok(B_V B_ID B_EXEC B_PATH
                     "\"sequence\":10," B_TIME B_TYPE B_STEP B_DATA,
                     &got, &d);
    cr_assert_eq(got.sequence, 10);
    free(line);
    evs_decoder_free(&d);
}

Test(line_decode, timestamp_must_be_in_the_writers_form)
{
    static const char *const bad[] = {
        "2026-11-22T10:15:30.123456z",  /* lower-case z */
        "2026-11-22t10:15:30.123456Z",  /* lower-case t */
        "2026-11-22 10:15:30.123456Z",  /* space */
        "2026-11-22T10:15:30.1+05:00",  /* 27 bytes, but an offset */
        "2026-11-22T10:15:30.12345Z",   /* five digits */
        "2026-11-22T10:15:30.1234567Z", /* seven digits */
        "2026-11-22T10:15:30Z",         /* none */
        "2026-11-22T10:15:30.123456",   /* no zone */
        "2026-11-22T10:15:60.000000Z",  /* leap second */
        "2026-02-30T10:15:30.123456Z",  /* no such day */
        "2026-13-22T10:15:30.123456Z",  /* no such month */
        "2026-11-22T24:15:30.123456Z",  /* no such hour */
        "2026-11-22T10:15:30.12345xZ",  "",
    };
    char body[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 B_V B_ID B_EXEC B_PATH B_SEQ
                 "\"timestamp\":\"%s\"," B_TYPE B_STEP B_DATA,
                 bad[i]);
        sealed_bad(body, EVS_EPARSE, "syntax");
    }
    sealed_bad(B_V B_ID B_EXEC B_PATH B_SEQ
               "\"timestamp\":1," B_TYPE B_STEP B_DATA,
               EVS_EPARSE, "syntax");
}

Test(line_decode, reads_any_valid_escape_in_strings)
{
    evs_decoder d;
    evs_event got;
    char *line;

    evs_decoder_init(&d, NULL);
    line = sealed_ok(
        B_V "\"id\":\"\\u0061\\/\\b\\f\\r\\t\\\"\\\\\\u00e9"
            "\\ud83d\\ude00\"," B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
        &got, &d);
    assert_span_str(got.id, "a/\b\f\r\t\"\\\xc3\xa9\xf0\x9f\x98\x80", "id");
    free(line);
    evs_decoder_free(&d);
}

Test(line_decode, a_newer_version_with_a_valid_checksum_is_eformat)
{
    static const char *const newer[] = {"2", "10", "0", "18446744073709551615"};
    char body[512];

    for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
        /* Whatever a newer version puts after the version number. */
        snprintf(body, sizeof(body), "{\"v\":%s,\"whatever\":[1,2],", newer[i]);
        sealed_bad(body, EVS_EFORMAT, "format");
        snprintf(
            body, sizeof(body),
            "{\"v\":%s," B_ID B_EXEC B_PATH B_SEQ B_TIME B_TYPE B_STEP B_DATA,
            newer[i]);
        sealed_bad(body, EVS_EFORMAT, "format");
    }
    /* A version that is not a plain number is not a version. */
    sealed_bad("{\"v\":01,\"x\":1,", EVS_EPARSE, "syntax");
    sealed_bad("{\"v\":\"2\",\"x\":1,", EVS_EPARSE, "syntax");
    sealed_bad("{\"v\":18446744073709551616,", EVS_EPARSE, "syntax");
    /* The checksum comes first: a damaged line of a newer version is
     * damage, not a newer version. */
    {
        char *line = seal("{\"v\":2,\"x\":1,");
        line[9] = '2';
        decode_bad_s(line, 0, EVS_ECORRUPT, "checksum");
        free(line);
    }
}

/* ------------------------------------------------------------------ */
/* Foreign lines                                                      */
/* ------------------------------------------------------------------ */

/* A line as Dive's Go code writes it with encoding/json. */
static const char DIVE_LINE[] =
    "{\"id\":\"0195f1c2-aaaa-7bbb-8ccc-0123456789ab\","
    "\"execution_id\":\"0195f1c2-0000-7000-8000-000000000001\","
    "\"path_id\":\"main\",\"sequence\":3,"
    "\"timestamp\":\"2025-03-04T10:11:12.123456789-05:00\","
    "\"event_type\":\"step_completed\",\"step_name\":\"summarize\","
    "\"data\":{\"output\":\"a \\u003cb\\u003e\","
    "\"stored_variable\":\"summary\"}}\n";

/* 2025-03-04T15:11:12.123456Z */
#define T_DIVE INT64_C(1741101072123456)

static void foreign_ok(evs_decoder *d, const char *line, evs_event *ev)
{
    decode_ok(d, line, strlen(line), EVS_DECODE_FOREIGN, ev);
}

Test(line_foreign, reads_a_line_written_by_dive)
{
    evs_decoder d;
    evs_event got;
    char ts[EVS_TIME_LEN + 1];

    evs_decoder_init(&d, NULL);
    foreign_ok(&d, DIVE_LINE, &got);
    assert_span_str(got.id, "0195f1c2-aaaa-7bbb-8ccc-0123456789ab", "id");
    assert_span_str(got.execution_id, "0195f1c2-0000-7000-8000-000000000001",
                    "execution_id");
    assert_span_str(got.path_id, "main", "path_id");
    cr_assert_eq(got.sequence, 3);
    cr_assert_eq(got.timestamp_us, T_DIVE);
    cr_assert_eq(evs_time_format(got.timestamp_us, ts), 0);
    cr_assert_str_eq(ts, "2025-03-04T15:11:12.123456Z");
    assert_span_str(got.event_type, "step_completed", "event_type");
    assert_span_str(got.step_name, "summarize", "step_name");
    /* data is the text as written, minus whitespace: Go's \u003c stays. */
    assert_span_str(got.data,
                    "{\"output\":\"a \\u003cb\\u003e\","
                    "\"stored_variable\":\"summary\"}",
                    "data");
    cr_assert_eq(got.batch_first, 3);
    cr_assert_eq(got.batch_count, 1);
    evs_decoder_free(&d);
}

Test(line_foreign, without_the_flag_a_dive_line_is_a_syntax_error)
{
    decode_bad_s(DIVE_LINE, 0, EVS_EPARSE, "syntax");
}

Test(line_foreign, a_decoded_dive_line_encodes_canonically)
{
    evs_decoder d, d2;
    evs_event got, again;
    size_t n;
    char *line;

    evs_decoder_init(&d, NULL);
    evs_decoder_init(&d2, NULL);
    foreign_ok(&d, DIVE_LINE, &got);
    line = encode_ok(&got, &n);
    decode_ok(&d2, line, n, 0, &again);
    assert_event_eq(&again, &got, got.data);
    free(line);
    evs_decoder_free(&d);
    evs_decoder_free(&d2);
}

Test(line_foreign, accepts_the_fields_in_any_order)
{
    static const char *const members[] = {
        "\"id\":\"ev-1\"",
        "\"execution_id\":\"ex\"",
        "\"path_id\":\"p\\n\"",
        "\"sequence\":42",
        "\"timestamp\":\"2026-11-22T10:15:30.123456Z\"",
        "\"event_type\":\"step_started\"",
        "\"step_name\":\"s\\u00e9\"",
        "\"data\":{ \"b\" : [1, 2.50, -0] }",
        "\"unknown\":{\"ignored\":[true]}",
    };
    enum { N = sizeof(members) / sizeof(members[0]) };
    evs_decoder d;

    evs_decoder_init(&d, NULL);
    rng_seed(77);
    for (int round = 0; round < 300; round++) {
        size_t order[N];
        evs_event got;
        sb b = {0};

        for (size_t i = 0; i < N; i++)
            order[i] = i;
        for (size_t i = N - 1; i > 0; i--) {
            size_t j = rnd((unsigned)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        sb_puts(&b, rnd(2) ? "{" : " { ");
        for (size_t i = 0; i < N; i++) {
            if (i)
                sb_puts(&b, rnd(2) ? "," : " ,\t");
            sb_puts(&b, members[order[i]]);
        }
        sb_puts(&b, rnd(2) ? "}\n" : "}\r\n");
        foreign_ok(&d, b.p, &got);
        assert_span_str(got.id, "ev-1", "id");
        assert_span_str(got.execution_id, "ex", "execution_id");
        assert_span_str(got.path_id, "p\n", "path_id");
        cr_assert_eq(got.sequence, 42);
        cr_assert_eq(got.timestamp_us, T_CANON);
        assert_span_str(got.event_type, "step_started", "event_type");
        assert_span_str(got.step_name, "s\xc3\xa9", "step_name");
        assert_span_str(got.data, "{\"b\":[1,2.50,-0]}", "data");
        sb_free(&b);
    }
    evs_decoder_free(&d);
}

Test(line_foreign, reads_an_object_with_whitespace_between_tokens)
{
    evs_decoder d;
    evs_event got;

    evs_decoder_init(&d, NULL);
    foreign_ok(&d,
               "  {  \"id\" :\t\"e\" ,  \"sequence\"  :  12 ,\t"
               "\"timestamp\" : \"2025-03-04T10:11:12Z\" , \"event_type\""
               " : \"t\" , \"data\" : [ 1 , { } ] }  \r\n",
               &got);
    assert_span_str(got.id, "e", "id");
    cr_assert_eq(got.sequence, 12);
    assert_span_str(got.data, "[1,{}]", "data");
    evs_decoder_free(&d);
}

Test(line_foreign, optional_fields_may_be_omitted_or_null)
{
    evs_decoder d;
    evs_event got;

    evs_decoder_init(&d, NULL);
    /* Go's omitempty leaves out path_id, step_name and data. */
    foreign_ok(&d,
               "{\"id\":\"e\",\"execution_id\":\"x\",\"sequence\":1,"
               "\"timestamp\":\"2025-03-04T10:11:12Z\","
               "\"event_type\":\"execution_started\"}",
               &got);
    assert_span_str(got.path_id, "", "path_id");
    assert_span_str(got.step_name, "", "step_name");
    assert_span_str(got.data, "{}", "data");
    cr_assert_eq(got.timestamp_us, INT64_C(1741083072000000));

    foreign_ok(&d,
               "{\"id\":\"e\",\"execution_id\":null,\"path_id\":null,"
               "\"sequence\":1,\"timestamp\":\"2025-03-04T10:11:12Z\","
               "\"event_type\":\"x\",\"step_name\":null,\"data\":null}",
               &got);
    assert_span_str(got.execution_id, "", "execution_id");
    assert_span_str(got.path_id, "", "path_id");
    assert_span_str(got.step_name, "", "step_name");
    assert_span_str(got.data, "{}", "data");
    evs_decoder_free(&d);
}

Test(line_foreign, converts_timestamps_to_utc_microseconds)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"2025-03-04T10:11:12.123456789-05:00", "2025-03-04T15:11:12.123456Z"},
        {"2025-03-04T10:11:12.999999999+05:30", "2025-03-04T04:41:12.999999Z"},
        {"2025-03-04T10:11:12Z", "2025-03-04T10:11:12.000000Z"},
        {"2025-03-04T10:11:12.5Z", "2025-03-04T10:11:12.500000Z"},
        {"2025-03-04T10:11:12.1234+00:00", "2025-03-04T10:11:12.123400Z"},
        {"2025-01-01T00:30:00+01:00", "2024-12-31T23:30:00.000000Z"},
        {"1969-12-31T23:59:59.9999999Z", "1969-12-31T23:59:59.999999Z"},
    };
    evs_decoder d;
    evs_event got;
    char line[512], ts[EVS_TIME_LEN + 1];

    evs_decoder_init(&d, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(line, sizeof(line),
                 "{\"id\":\"e\",\"execution_id\":\"x\",\"sequence\":1,"
                 "\"timestamp\":\"%s\",\"event_type\":\"t\"}\n",
                 cases[i].in);
        foreign_ok(&d, line, &got);
        cr_assert_eq(evs_time_format(got.timestamp_us, ts), 0);
        cr_assert_str_eq(ts, cases[i].out, "from %s", cases[i].in);
    }
    evs_decoder_free(&d);
}

Test(line_foreign, keeps_every_number_in_data_exactly)
{
    static const char *const nums[] = {
        "1.10",
        "0.1",
        "1e400",
        "-1e400",
        "1e-400",
        "1E+2",
        "-0",
        "-0.0",
        "12345678901234567890",
        "18446744073709551616",
        "99999999999999999999999",
        "-9223372036854775809",
        "9223372036854775807",
        "-9223372036854775808",
        "123456789012345678901234567890.5",
        "4.9e-324",
        "1.7976931348623157e309",
    };
    evs_decoder d;
    evs_event got;
    char line[512], want[256];

    evs_decoder_init(&d, NULL);
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        snprintf(line, sizeof(line),
                 "{\"id\":\"e\",\"execution_id\":\"x\",\"sequence\":1,"
                 "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\","
                 "\"data\":{\"n\": %s, \"a\": [ %s ]}}\n",
                 nums[i], nums[i]);
        snprintf(want, sizeof(want), "{\"n\":%s,\"a\":[%s]}", nums[i], nums[i]);
        foreign_ok(&d, line, &got);
        assert_span_str(got.data, want, "data");
        /* Data that is only a number, too. */
        snprintf(line, sizeof(line),
                 "{\"data\":%s,\"id\":\"e\",\"execution_id\":\"x\","
                 "\"sequence\":1,\"timestamp\":\"2025-03-04T10:11:12Z\","
                 "\"event_type\":\"t\"}",
                 nums[i]);
        foreign_ok(&d, line, &got);
        assert_span_str(got.data, nums[i], "data");
    }
    evs_decoder_free(&d);
}

Test(line_foreign, keeps_data_of_every_json_kind)
{
    static const char *const cases[][2] = {
        {"[ ]", "[]"},
        {"\"text \\u00e9 \\ud800\"", "\"text \\u00e9 \\ud800\""},
        {"true", "true"},
        {"false", "false"},
        {"42", "42"},
        {"[1, [2, [3, {\"d\": {}}]]]", "[1,[2,[3,{\"d\":{}}]]]"},
        /* Duplicates inside data are kept, as in a canonical line. */
        {"{\"a\": 1, \"a\": 2}", "{\"a\":1,\"a\":2}"},
        {"{\"s\": \"keep  inner   spaces\"}",
         "{\"s\":\"keep  inner   spaces\"}"},
    };
    evs_decoder d;
    evs_event got;
    char line[512];

    evs_decoder_init(&d, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(line, sizeof(line),
                 "{\"id\":\"e\",\"execution_id\":\"x\",\"sequence\":1,"
                 "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\","
                 "\"data\": %s }\n",
                 cases[i][0]);
        foreign_ok(&d, line, &got);
        assert_span_str(got.data, cases[i][1], "data");
    }
    evs_decoder_free(&d);
}

/* A valid foreign line with one member replaced; `member` is inserted
 * before the others, `skip` names the member to leave out. */
static void foreign_bad_with(const char *member, const char *skip)
{
    static const char *const base[][2] = {
        {"id", "\"id\":\"e\""},
        {"execution_id", "\"execution_id\":\"x\""},
        {"sequence", "\"sequence\":1"},
        {"timestamp", "\"timestamp\":\"2025-03-04T10:11:12Z\""},
        {"event_type", "\"event_type\":\"t\""},
        {"data", "\"data\":{}"},
    };
    sb b = {0};
    int first = 1;

    sb_putc(&b, '{');
    if (member) {
        sb_puts(&b, member);
        first = 0;
    }
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (skip && strcmp(skip, base[i][0]) == 0)
            continue;
        if (!first)
            sb_putc(&b, ',');
        sb_puts(&b, base[i][1]);
        first = 0;
    }
    sb_puts(&b, "}\n");
    decode_bad(b.p, b.len, EVS_DECODE_FOREIGN, EVS_EPARSE, "syntax");
    sb_free(&b);
}

Test(line_foreign, the_base_of_the_bad_cases_is_valid)
{
    evs_decoder d;
    evs_event got;

    evs_decoder_init(&d, NULL);
    foreign_ok(&d,
               "{\"id\":\"e\",\"execution_id\":\"x\",\"sequence\":1,"
               "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\","
               "\"data\":{}}\n",
               &got);
    cr_assert_eq(got.sequence, 1);
    evs_decoder_free(&d);
}

Test(line_foreign, refuses_missing_or_mistyped_fields)
{
    foreign_bad_with(NULL, "id");
    foreign_bad_with(NULL, "sequence");
    foreign_bad_with(NULL, "timestamp");
    foreign_bad_with(NULL, "event_type");
    foreign_bad_with("\"id\":\"\"", "id");
    foreign_bad_with("\"id\":7", "id");
    foreign_bad_with("\"id\":null", "id");
    foreign_bad_with("\"event_type\":\"\"", "event_type");
    foreign_bad_with("\"event_type\":[]", "event_type");
    foreign_bad_with("\"execution_id\":1", "execution_id");
    foreign_bad_with("\"path_id\":{}", NULL);
    foreign_bad_with("\"step_name\":false", NULL);
    foreign_bad_with("\"timestamp\":1741083072", "timestamp");
    foreign_bad_with("\"timestamp\":\"yesterday\"", "timestamp");
    foreign_bad_with("\"timestamp\":\"2025-03-04T10:11:12\"", "timestamp");
    /* Before year 0 in UTC: no canonical line can carry it. */
    foreign_bad_with("\"timestamp\":\"0000-01-01T00:30:00+01:00\"",
                     "timestamp");
}

Test(line_foreign, refuses_a_sequence_that_is_not_a_plain_positive_integer)
{
    static const char *const bad[] = {
        "0",
        "-1",
        "-0",
        "3.0",
        "1e2",
        "\"3\"",
        "null",
        "true",
        /* json-c would clamp these to the largest 64-bit values */
        "18446744073709551616",
        "99999999999999999999999",
    };
    char member[64];
    evs_decoder d;
    evs_event got;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(member, sizeof(member), "\"sequence\":%s", bad[i]);
        foreign_bad_with(member, "sequence");
    }
    evs_decoder_init(&d, NULL);
    foreign_ok(&d,
               "{\"id\":\"e\",\"sequence\":18446744073709551615,"
               "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\"}",
               &got);
    cr_assert_eq(got.sequence, UINT64_MAX);
    foreign_ok(&d,
               "{\"id\":\"e\",\"sequence\":9223372036854775808,"
               "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\"}",
               &got);
    cr_assert_eq(got.sequence, UINT64_C(9223372036854775808));
    evs_decoder_free(&d);
}

Test(line_foreign, refuses_text_that_is_not_strict_json)
{
    static const char *const bad[] = {
        "",
        "\n",
        "{",
        "{\"id\":",
        "{\"id\":\"e\",}",
        "{\"id\":\"e\"} {}",
        "{\"id\":\"e\"}x",
        "{'id':'e'}",
        /* json-c takes these in strict mode; JSON does not. */
        "{\"data\":NaN}",
        "{\"data\":Infinity}",
        "{\"data\":-Infinity}",
        "{\"data\":1.}",
        "{\"data\":[1,2,]}",
        "{\"data\":\"\xed\xa0\x80\"}",
        "{\"step_name\":\"\xed\xa0\x80\"}",
        "{\"data\":\"\xc0\xaf\"}",
        "{\"data\":\"a\tb\"}",
        "{\"data\":01}",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb b = {0};

        sb_puts(&b, bad[i]);
        /* Put the required fields in, so only the fault is at fault. */
        if (b.len > 2 && b.p[b.len - 1] == '}' &&
            strchr(bad[i], '\'') == NULL) {
            b.len--;
            sb_puts(&b, ",\"id\":\"e\",\"sequence\":1,\"timestamp\":"
                        "\"2025-03-04T10:11:12Z\",\"event_type\":\"t\"}");
        }
        decode_bad(b.p, b.len, EVS_DECODE_FOREIGN, EVS_EPARSE, "syntax");
        sb_free(&b);
    }
}

Test(line_foreign, refuses_values_that_are_not_objects)
{
    static const char *const bad[] = {
        "[]", "[{\"id\":\"e\"}]", "\"x\"", "1", "null", "true"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        decode_bad_s(bad[i], EVS_DECODE_FOREIGN, EVS_EPARSE, "syntax");
}

Test(line_foreign, refuses_an_event_field_that_occurs_twice)
{
    foreign_bad_with("\"sequence\":2", NULL);
    foreign_bad_with("\"id\":\"e\"", NULL);
    foreign_bad_with("\"data\":{\"a\":1}", NULL);
    foreign_bad_with("\"timestamp\":\"2025-03-04T10:11:12Z\"", NULL);
    foreign_bad_with("\"path_id\":\"a\",\"path_id\":\"b\"", NULL);
    /* The same name spelt with escapes. */
    foreign_bad_with("\"se\\u0071uence\":2", NULL);
    foreign_bad_with("\"\\u0069\\u0064\":\"f\"", NULL);
    /* json-c cuts names at an escaped NUL, so this is "id" to it. */
    foreign_bad_with("\"id\\u0000x\":\"f\"", NULL);
}

Test(line_foreign, ignores_other_members_even_when_repeated)
{
    evs_decoder d;
    evs_event got;

    evs_decoder_init(&d, NULL);
    foreign_ok(&d,
               "{\"extra\":1,\"id\":\"e\",\"extra\":2,\"sequence\":4,"
               "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\","
               "\"ids\":\"not id\",\"i\\u0064x\":3,\"data\":[]}",
               &got);
    assert_span_str(got.id, "e", "id");
    cr_assert_eq(got.sequence, 4);
    assert_span_str(got.data, "[]", "data");
    evs_decoder_free(&d);
}

Test(line_foreign, refuses_a_checksum_outside_the_framing)
{
    /* A checksum member that is not the last one, or not 16 hex digits
     * in the framing of FORMAT.md 2.1. */
    foreign_bad_with("\"checksum\":\"0123456789abcdef\"", NULL);
    foreign_bad_with("\"checksum\":null", NULL);
    foreign_bad_with("\"checksum\":7", NULL);
    decode_bad_s("{\"id\":\"e\",\"sequence\":1,"
                 "\"timestamp\":\"2025-03-04T10:11:12Z\",\"event_type\":\"t\","
                 "\"checksum\":\"0123456789ABCDEF\"}",
                 EVS_DECODE_FOREIGN, EVS_EPARSE, "syntax");
}

Test(line_foreign, a_framed_checksum_must_match)
{
    static const char body[] =
        "{\"event_type\":\"t\",\"id\":\"e\",\"sequence\":9,"
        "\"timestamp\":\"2025-03-04T10:11:12Z\",\"data\":{\"k\": 1},";
    evs_decoder d;
    evs_event got;
    char *line = seal(body);
    size_t n = strlen(line);

    evs_decoder_init(&d, NULL);
    decode_ok(&d, line, n, EVS_DECODE_FOREIGN, &got);
    cr_assert_eq(got.sequence, 9);
    assert_span_str(got.data, "{\"k\":1}", "data");
    decode_ok(&d, line, n - 1, EVS_DECODE_FOREIGN, &got);
    cr_assert_eq(got.sequence, 9);
    /* Not a canonical line, so only the foreign path reads it. */
    decode_bad(line, n, 0, EVS_EPARSE, "syntax");
    line[n - 5] = line[n - 5] == '0' ? '1' : '0';
    decode_bad(line, n, EVS_DECODE_FOREIGN, EVS_ECORRUPT, "checksum");
    free(line);
    line = seal(body);
    line[strlen(body) - 3] = '2'; /* "k": 2 */
    decode_bad(line, n, EVS_DECODE_FOREIGN, EVS_ECORRUPT, "checksum");
    free(line);
    evs_decoder_free(&d);
}

Test(line_foreign, a_line_that_claims_our_version_is_held_to_our_rules)
{
    /* With the foreign flag, a line beginning {"v": is still ours: a
     * canonical line stripped of its checksum must not slip in. */
    const char *ck = strstr(DIVE_LIKE_LINE, ",\"checksum\"");
    sb b = {0};

    sb_putn(&b, DIVE_LIKE_LINE, (size_t)(ck - DIVE_LIKE_LINE));
    sb_puts(&b, "}\n");
    decode_bad(b.p, b.len, EVS_DECODE_FOREIGN, EVS_EPARSE, "syntax");
    sb_free(&b);
}

/* ------------------------------------------------------------------ */
/* Decoder reuse and owned copies                                     */
/* ------------------------------------------------------------------ */

Test(line_decoder, reused_across_lines_of_many_sizes_leaves_no_stale_views)
{
    evs_decoder d;

    evs_decoder_init(&d, NULL);
    rng_seed(4242);
    for (int i = 0; i < 400; i++) {
        rand_event r;
        evs_event got;
        size_t n;
        char *line, *tmp;
        int kind = (int)rnd(4);

        rand_event_make(&r);
        if (rnd(16) == 0) {
            /* Now and then a big one, so the scratch grows and moves. */
            sb_free(&r.step);
            for (int k = 0; k < 70000; k++)
                sb_putc(&r.step, k % 3 ? '"' : '\n');
            r.ev.step_name = spn(r.step.p, r.step.len);
        }
        line = encode_ok(&r.ev, &n);
        /* A private copy of exactly the line, freed before the next
         * decode: a view left pointing at an earlier line is caught. */
        tmp = malloc(n);
        cr_assert_not_null(tmp);
        memcpy(tmp, line, n);
        if (kind == 0) {
            decode_ok(&d, tmp, n - 1, 0, &got);
            assert_event_eq(&got, &r.ev, spn(r.data.p, r.data.len));
        } else if (kind == 1) {
            decode_ok(&d, tmp, n, EVS_DECODE_FOREIGN, &got);
            assert_event_eq(&got, &r.ev, spn(r.data.p, r.data.len));
        } else if (kind == 2) {
            /* A foreign line of the same event, in Dive's shape. */
            sb f = {0};
            char ts[EVS_TIME_LEN + 1];
            char *q;

            cr_assert_eq(evs_time_format(r.ev.timestamp_us, ts), 0);
            sb_puts(&f, "{\"data\": ");
            sb_putn(&f, r.data_spaced.p, r.data_spaced.len);
            sb_printf(&f,
                      " ,\"sequence\":%llu,\"timestamp\":\"%s\","
                      "\"id\":",
                      (unsigned long long)r.ev.sequence, ts);
            q = malloc(r.ev.id.len * 6 + 2);
            cr_assert_not_null(q);
            sb_putn(&f, q, evs_json_quote(r.ev.id, q, r.ev.id.len * 6 + 2));
            sb_puts(&f, ",\"event_type\":");
            free(q);
            q = malloc(r.ev.event_type.len * 6 + 2);
            cr_assert_not_null(q);
            sb_putn(&f, q,
                    evs_json_quote(r.ev.event_type, q,
                                   r.ev.event_type.len * 6 + 2));
            free(q);
            sb_puts(&f, "}\n");
            free(tmp);
            tmp = malloc(f.len);
            cr_assert_not_null(tmp);
            memcpy(tmp, f.p, f.len);
            decode_ok(&d, tmp, f.len, EVS_DECODE_FOREIGN, &got);
            assert_span_eq(got.id, r.ev.id, "id");
            assert_span_eq(got.event_type, r.ev.event_type, "event_type");
            assert_span_str(got.path_id, "", "path_id");
            cr_assert_eq(got.sequence, r.ev.sequence);
            cr_assert_eq(got.timestamp_us, r.ev.timestamp_us);
            /* A null data is Go's nil map: no data. */
            if (strcmp(r.data.p, "null") == 0)
                assert_span_str(got.data, "{}", "data");
            else
                assert_span_eq(got.data, spn(r.data.p, r.data.len), "data");
            sb_free(&f);
        } else {
            decode_ok(&d, tmp, n, 0, &got);
            assert_event_eq(&got, &r.ev, spn(r.data.p, r.data.len));
        }
        free(tmp);
        free(line);
        rand_event_free(&r);
    }
    evs_decoder_free(&d);
    /* Freeing twice is harmless, as is freeing an unused decoder. */
    evs_decoder_free(&d);
    evs_decoder_init(&d, NULL);
    evs_decoder_free(&d);
    evs_decoder_free(NULL);
}

Test(line_event, a_copy_outlives_the_line_and_the_decoder)
{
    evs_event want = dive_like_event(), got;
    evs_event_owned own;
    evs_decoder d;
    tu_alloc cnt;
    size_t n;
    char *line;

    tu_alloc_init(&cnt);
    want.step_name = sp("needs \"unescaping\"");
    line = encode_ok(&want, &n);
    evs_decoder_init(&d, NULL);
    decode_ok(&d, line, n, 0, &got);
    cr_assert_eq(evs_event_copy(&got, &cnt.a, &own), 0);
    cr_assert_eq(cnt.live, 1, "one allocation holds every span");
    /* Wreck everything the views pointed at. */
    memset(line, 'X', n);
    decode_ok(&d, DIVE_LIKE_LINE, strlen(DIVE_LIKE_LINE), 0, &got);
    evs_decoder_free(&d);
    free(line);
    assert_event_eq(&own.ev, &want, want.data);

    evs_event_free(&own);
    cr_assert_eq(cnt.live, 0);
    cr_assert_null(own.buf_);
    evs_event_free(&own); /* a freed copy is empty */
    evs_event_free(NULL);
    cr_assert_eq(cnt.live, 0);
}

Test(line_event, copies_an_event_with_empty_spans)
{
    evs_event e;
    evs_event_owned own;

    memset(&e, 0, sizeof(e));
    e.sequence = 3;
    e.timestamp_us = -5;
    e.batch_first = 2;
    e.batch_count = 4;
    cr_assert_eq(evs_event_copy(&e, NULL, &own), 0);
    cr_assert_eq(own.ev.id.len, 0);
    cr_assert_eq(own.ev.data.len, 0);
    cr_assert_eq(own.ev.sequence, 3);
    cr_assert_eq(own.ev.timestamp_us, -5);
    cr_assert_eq(own.ev.batch_first, 2);
    cr_assert_eq(own.ev.batch_count, 4);
    evs_event_free(&own);
}

Test(line_event, a_failed_copy_leaves_nothing_to_free)
{
    evs_event e = dive_like_event();
    evs_event_owned own;
    tu_alloc cnt;

    tu_alloc_init(&cnt);
    tu_alloc_fail(&cnt, 1, TU_FAIL_FROM);
    memset(&own, 0x5a, sizeof(own));
    cr_assert_eq(evs_event_copy(&e, &cnt.a, &own), -ENOMEM);
    cr_assert_null(own.buf_);
    cr_assert_eq(own.ev.id.len, 0);
    evs_event_free(&own);
    cr_assert_eq(cnt.live, 0);
}

Test(line_event, random_decoded_events_copy_exactly)
{
    evs_decoder d;

    evs_decoder_init(&d, NULL);
    rng_seed(99);
    for (int i = 0; i < 300; i++) {
        rand_event r;
        evs_event got;
        evs_event_owned own;
        size_t n;
        char *line;

        rand_event_make(&r);
        line = encode_ok(&r.ev, &n);
        decode_ok(&d, line, n, 0, &got);
        cr_assert_eq(evs_event_copy(&got, NULL, &own), 0);
        memset(line, 0, n);
        free(line);
        assert_event_eq(&own.ev, &r.ev, spn(r.data.p, r.data.len));
        evs_event_free(&own);
        rand_event_free(&r);
    }
    evs_decoder_free(&d);
}

Test(line_decoder, a_line_without_escapes_needs_no_memory)
{
    evs_event want = dive_like_event(), got;
    evs_decoder d;
    tu_alloc cnt;

    tu_alloc_init(&cnt);
    tu_alloc_fail(&cnt, 1, TU_FAIL_FROM); /* every allocation fails */
    evs_decoder_init(&d, &cnt.a);
    decode_ok(&d, DIVE_LIKE_LINE, strlen(DIVE_LIKE_LINE), 0, &got);
    assert_event_eq(&got, &want, want.data);
    cr_assert_eq(cnt.live, 0);
    evs_decoder_free(&d);
}

Test(line_decoder, escaped_fields_all_survive_the_scratch_growing)
{
    evs_event small = dive_like_event(), big = dive_like_event(), got;
    sb f[5] = {{0}};
    evs_span *spans[] = {&big.id, &big.execution_id, &big.path_id,
                         &big.event_type, &big.step_name};
    evs_decoder d;
    size_t n1, n2;
    char *l1, *l2;

    /* First a line that sizes the scratch small... */
    small.id = sp("\"");
    l1 = encode_ok(&small, &n1);
    evs_decoder_init(&d, NULL);
    decode_ok(&d, l1, n1, 0, &got);
    assert_span_str(got.id, "\"", "id");
    /* ...then one whose every string is escaped and much longer. */
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 5000 * (i + 1); k++)
            sb_putc(&f[i], (char)(k % 7 == 0 ? '\\' : 'a' + i));
        *spans[i] = spn(f[i].p, f[i].len);
    }
    l2 = encode_ok(&big, &n2);
    decode_ok(&d, l2, n2, 0, &got);
    assert_event_eq(&got, &big, big.data);
    evs_decoder_free(&d);
    for (int i = 0; i < 5; i++)
        sb_free(&f[i]);
    free(l1);
    free(l2);
}

Test(line_decoder, out_of_memory_is_reported_as_enomem)
{
    evs_event e = dive_like_event(), got;
    evs_decoder d;
    tu_alloc cnt;
    size_t n;
    char *line;

    tu_alloc_init(&cnt);
    tu_alloc_fail(&cnt, 1, TU_FAIL_FROM);
    /* An escaped field needs the scratch. */
    e.step_name = sp("a\"b");
    line = encode_ok(&e, &n);
    evs_decoder_init(&d, &cnt.a);
    cr_assert_eq(evs_line_decode(&d, line, n, 0, &got, NULL), -ENOMEM);
    cr_assert_eq(evs_line_decode(&d, DIVE_LINE, strlen(DIVE_LINE),
                                 EVS_DECODE_FOREIGN, &got, NULL),
                 -ENOMEM);
    /* Once memory is back, the same decoder works. */
    tu_alloc_stop(&cnt);
    decode_ok(&d, line, n, 0, &got);
    assert_span_str(got.step_name, "a\"b", "step_name");
    decode_ok(&d, DIVE_LINE, strlen(DIVE_LINE), EVS_DECODE_FOREIGN, &got);
    cr_assert_eq(got.sequence, 3);
    evs_decoder_free(&d);
    cr_assert_eq(cnt.live, 0);
    free(line);
}

/* ------------------------------------------------------------------ */
/* Peeking at a line's place in its log (line_peek.c)                 */
/* ------------------------------------------------------------------ */

#define PEEK_BODY(id, seq_batch)                                               \
    "{\"v\":1,\"id\":\"0190a3e1-0000-7000-8000-000000000001\","                \
    "\"execution_id\":\"" id "\",\"path_id\":\"\",\"sequence\":" seq_batch     \
    ",\"timestamp\":\"" T_CANON_S "\",\"event_type\":\"x\",\"step_name\":"     \
    "\"\",\"data\":{\"sequence\":99},"

static int peek(const char *body, const char *id, evs__line_pos *pos)
{
    char *line = seal(body);
    int rc = evs__line_peek(line, strlen(line), id, strlen(id), pos);

    free(line);
    return rc;
}

Test(line_peek, reads_sequence_and_batch)
{
    evs__line_pos pos;

    cr_assert_eq(peek(PEEK_BODY("e1", "7"), "e1", &pos), 0);
    cr_assert_eq(pos.seq, 7);
    cr_assert_eq(pos.first, 7);
    cr_assert_eq(pos.count, 1);
    cr_assert_eq(peek(PEEK_BODY("e1", "8,\"batch\":[7,3]"), "e1", &pos), 0);
    cr_assert_eq(pos.seq, 8);
    cr_assert_eq(pos.first, 7);
    cr_assert_eq(pos.count, 3);
    /* An id written escaped by another program is the same id. */
    cr_assert_eq(peek(PEEK_BODY("\\u00651", "7"), "e1", &pos), 0);
}

Test(line_peek, refuses_what_does_not_count)
{
    evs__line_pos pos;
    char *line;

    cr_assert_eq(peek(PEEK_BODY("e2", "7"), "e1", &pos), EVS_ECORRUPT);
    cr_assert_eq(peek(PEEK_BODY("e1", "0"), "e1", &pos), EVS_EPARSE);
    cr_assert_eq(peek(PEEK_BODY("e1", "9,\"batch\":[7,2]"), "e1", &pos),
                 EVS_EPARSE);
    cr_assert_eq(peek("{\"v\":2,\"x\":1,", "e1", &pos), EVS_EFORMAT);
    line = seal(PEEK_BODY("e1", "7"));
    line[20] ^= 1;
    cr_assert_eq(evs__line_peek(line, strlen(line), "e1", 2, &pos),
                 EVS_ECORRUPT);
    free(line);
}

/* A line merged with the next by a lost newline: peeking backwards finds
 * the good line at its end. */
Test(line_peek, back_finds_the_line_a_damaged_one_ends_with)
{
    char *a = seal(PEEK_BODY("e1", "4")), *b = seal(PEEK_BODY("e1", "5"));
    size_t na = strlen(a), nb = strlen(b), skip = 99;
    char *m = malloc(na + nb);
    evs__line_pos pos;

    cr_assert_not_null(m);
    memcpy(m, a, na - 1); /* without its newline */
    memcpy(m + na - 1, b, nb);
    cr_assert_neq(evs__line_peek(m, na - 1 + nb, "e1", 2, &pos), 0);
    cr_assert_eq(evs__line_peek_back(m, na - 1 + nb, "e1", 2, &pos, &skip), 0);
    cr_assert_eq(pos.seq, 5);
    cr_assert_eq(skip, na - 1);
    cr_assert_eq(evs__line_peek_back(b, nb, "e1", 2, &pos, &skip), 0);
    cr_assert_eq(skip, 0);
    free(a);
    free(b);
    free(m);
}
