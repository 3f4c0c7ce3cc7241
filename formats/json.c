/*
 * json.c: the strict JSON validator and minifier that guards every append,
 * the string quoter used by the line encoder, and UTF-8 validation.
 *
 * evs_json_check() is on the hot path of every append, so it is a single
 * pass over the bytes with no allocation and no recursion: nesting is
 * tracked with a fixed bit stack, which makes hostile depth a plain
 * EVS_EPARSE instead of a blown C stack.
 */
#include "formats_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned char uchar;

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

#ifdef __GNUC__
#define INLINE inline __attribute__((always_inline))
#else
#define INLINE inline
#endif

/*
 * Checks one multi-byte UTF-8 sequence starting at p (p < end, *p >= 0x80)
 * against the well-formed byte sequences of Unicode (Table 3-7): no
 * overlong forms, no surrogates, nothing above U+10FFFF. Returns its
 * length, or 0 with *bad set to the index (from p) of the first byte that
 * cannot be part of a well-formed sequence; that index is end - p when the
 * input stops in the middle of a sequence.
 */
static inline size_t utf8_seq(const uchar *p, const uchar *end, size_t *bad)
{
    size_t n = (size_t)(end - p), len, i;
    uchar c = p[0], lo = 0x80, hi = 0xBF;

    if (c < 0xC2) { /* stray continuation byte or overlong 2-byte lead */
        *bad = 0;
        return 0;
    } else if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..DFFF */
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad = 0;
        return 0;
    }
    if (n < 2 || p[1] < lo || p[1] > hi) {
        *bad = 1;
        return 0;
    }
    for (i = 2; i < len; i++) {
        if (i >= n || (p[i] & 0xC0) != 0x80) {
            *bad = i;
            return 0;
        }
    }
    return len;
}

int evs__utf8_valid(const char *s, size_t len)
{
    const uchar *p = (const uchar *)s, *end;
    uint64_t a, b;
    size_t n, bad;

    if (len == 0) /* s may be NULL, and NULL + 0 is undefined */
        return 1;
    end = p + len;
    while (p < end) {
        while (end - p >= 16) {
            memcpy(&a, p, 8);
            memcpy(&b, p + 8, 8);
            if ((a | b) & HIGHS)
                break;
            p += 16;
        }
        while (p < end && *p < 0x80)
            p++;
        if (p == end)
            break;
        if ((n = utf8_seq(p, end, &bad)) == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Checking and minifying                                             */
/* ------------------------------------------------------------------ */

static inline int is_hex(uchar c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static inline int is_digit(uchar c)
{
    return c >= '0' && c <= '9';
}

static inline int is_ws(uchar c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * Scans the string whose opening quote is at *pp. On success moves *pp
 * past the closing quote and returns 0; on failure sets *pp to the first
 * offending byte (end if the input stops first) and returns -1.
 *
 * A \u escape needs four hex digits and nothing more: a lone or unpaired
 * surrogate escape such as "\ud800" is accepted, because RFC 8259 (section
 * 8.2) allows it syntactically and the text itself stays valid UTF-8.
 * Rejecting it is the job of whoever decodes the escape into bytes.
 */
static INLINE int scan_string(const uchar **pp, const uchar *end)
{
    const uchar *p = *pp + 1;
    size_t n, bad;
    int i;

    for (;;) {
        p += evs__plain_run(p, end);
        if (p == end)
            goto fail;
        if (*p == '"') {
            *pp = p + 1;
            return 0;
        }
        if (*p == '\\') {
            if (++p == end)
                goto fail;
            switch (*p) {
            case '"': case '\\': case '/': case 'b':
            case 'f': case 'n': case 'r': case 't':
                p++;
                break;
            case 'u':
                p++;
                for (i = 0; i < 4; i++, p++)
                    if (p == end || !is_hex(*p))
                        goto fail;
                break;
            default:
                goto fail;
            }
        } else if (*p >= 0x80) {
            if ((n = utf8_seq(p, end, &bad)) == 0) {
                p += bad;
                goto fail;
            }
            p += n;
        } else {
            goto fail; /* raw control characters, NUL included */
        }
    }
fail:
    *pp = p;
    return -1;
}

/*
 * Scans a number (RFC 8259 section 6) starting at *pp. Moves *pp past it
 * and returns 0, or sets *pp to the offending byte and returns -1
 * ("1.", "-", "1e+"). Whether the byte after it may follow a value is
 * checked by the caller.
 */
static inline int scan_number(const uchar **pp, const uchar *end)
{
    const uchar *p = *pp;

    if (*p == '-')
        p++;
    if (p == end)
        goto fail;
    if (*p == '0') {
        /* No leading zeros: the '1' of "01" cannot follow a complete
         * value, so the caller refuses it, at the right offset. */
        p++;
    } else if (is_digit(*p)) {
        while (++p < end && is_digit(*p))
            ;
    } else {
        goto fail;
    }
    if (p < end && *p == '.') {
        if (++p == end || !is_digit(*p))
            goto fail;
        while (++p < end && is_digit(*p))
            ;
    }
    if (p < end && (*p | 0x20) == 'e') {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            goto fail;
        while (++p < end && is_digit(*p))
            ;
    }
    *pp = p;
    return 0;
fail:
    *pp = p;
    return -1;
}

/* Matches the n-byte literal lit at *pp, whose first byte is known. */
static inline int scan_lit(const uchar **pp, const uchar *end,
                           const char *lit, size_t n)
{
    const uchar *p = *pp + 1;
    size_t i;

    /* The common case in one comparison; the loop finds the offset. */
    if ((size_t)(end - *pp) >= n && memcmp(*pp, lit, n) == 0) {
        *pp += n;
        return 0;
    }
    for (i = 1; i < n; i++, p++) {
        if (p == end || *p != (uchar)lit[i]) {
            *pp = p;
            return -1;
        }
    }
    *pp = p;
    return 0;
}

/*
 * The minified copy is made lazily: bytes are not copied as they are
 * scanned but in runs, whenever insignificant whitespace ends a run. Input
 * without whitespace thus costs one memcpy at the end, or nothing at all
 * when minifying in place. `seg` is the start of the pending run, `w` the
 * output length so far; w <= seg - buf always, so memmove is safe in
 * place.
 */
#define SKIP_WS()                                                             \
    do {                                                                      \
        if (p < end && *p <= ' ' && is_ws(*p)) {                              \
            flush(out, &w, seg, p);                                           \
            while (++p < end && is_ws(*p))                                    \
                ;                                                             \
            seg = p;                                                          \
        }                                                                     \
    } while (0)

static inline void flush(char *out, size_t *w, const uchar *seg,
                         const uchar *p)
{
    size_t n = (size_t)(p - seg);

    if (out != NULL && n > 0 && out + *w != (const char *)seg)
        memmove(out + *w, seg, n);
    *w += n;
}

/* Bit stack of open containers, 1 for an object, 0 for an array. */
#define STACK_WORDS ((EVS_JSON_DEPTH_MAX + 63) / 64)

int evs_json_check(const char *buf, size_t len, unsigned flags, char *out,
                   size_t *out_len, size_t *err_off)
{
    const uchar *base = (const uchar *)buf, *p = base, *end, *seg;
    uint64_t stack[STACK_WORDS] = {0};
    size_t depth = 0, w = 0;
    int in_obj = 0;
    uchar c;

    /* Without MINIFY nothing is written. With it and a NULL out, only
     * *out_len is computed; counting w costs next to nothing either way. */
    if (!(flags & EVS_JSON_MINIFY))
        out = NULL;
    if (len == 0) {
        p = base = NULL;
        goto fail;
    }
    end = base + len;

    while (p < end && is_ws(*p))
        p++;
    seg = p;

value:
    /* An if-chain in rough order of frequency predicts better than the
     * jump table a switch becomes. */
    if (p == end)
        goto fail;
    c = *p;
    if (c == '"') {
        if (scan_string(&p, end) != 0)
            goto fail;
    } else if (is_digit(c) || c == '-') {
        if (scan_number(&p, end) != 0)
            goto fail;
    } else if (c == '{' || c == '[') {
        if (depth == EVS_JSON_DEPTH_MAX)
            goto fail;
        in_obj = c == '{';
        if (in_obj)
            stack[depth / 64] |= UINT64_C(1) << (depth % 64);
        else
            stack[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
        depth++;
        p++;
        SKIP_WS();
        if (p < end && *p == c + 2) { /* '}' or ']' */
            p++;
            goto close;
        }
        if (in_obj)
            goto key;
        goto value;
    } else if (c == 't') {
        if (scan_lit(&p, end, "true", 4) != 0)
            goto fail;
    } else if (c == 'f') {
        if (scan_lit(&p, end, "false", 5) != 0)
            goto fail;
    } else if (c == 'n') {
        if (scan_lit(&p, end, "null", 4) != 0)
            goto fail;
    } else {
        goto fail;
    }

after:
    /* A value just ended; what may follow depends on the container. */
    SKIP_WS();
    if (depth == 0)
        goto done;
    if (p == end)
        goto fail;
    if (*p == ',') {
        p++;
        SKIP_WS();
        if (in_obj)
            goto key;
        goto value;
    }
    if (*p != (in_obj ? '}' : ']'))
        goto fail;
    p++;
close:
    depth--;
    if (depth > 0)
        in_obj = (int)(stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
    goto after;

key:
    if (p == end || *p != '"' || scan_string(&p, end) != 0)
        goto fail;
    SKIP_WS();
    if (p == end || *p != ':')
        goto fail;
    p++;
    SKIP_WS();
    goto value;

done:
    if (p != end)
        goto fail;
    /* Trailing whitespace was skipped by SKIP_WS, so seg == end unless
     * the value ran to the end of the input; flush whatever is pending. */
    flush(out, &w, seg, p);
    if ((flags & EVS_JSON_MINIFY) && out_len != NULL)
        *out_len = w;
    return 0;

fail:
    if (err_off != NULL)
        *err_off = (size_t)(p - base);
    return EVS_EPARSE;
}

/* ------------------------------------------------------------------ */
/* Quoting                                                            */
/* ------------------------------------------------------------------ */

/*
 * Bytes needed for an ASCII byte: 1 when copied as it is, 2 for the short
 * escapes, 6 for \u00XX.
 */
static inline size_t quote_len(uchar c)
{
    if (c >= 0x20)
        return (c == '"' || c == '\\') ? 2 : 1;
    switch (c) {
    case '\b': case '\f': case '\n': case '\r': case '\t':
        return 2;
    default:
        return 6;
    }
}

/* Size of the quoted form of s, or (size_t)-1 when s is not UTF-8. */
static size_t quote_size(const uchar *p, const uchar *end)
{
    size_t need = 2, n, bad;

    while (p < end) {
        if (*p < 0x80) {
            need += quote_len(*p++);
            continue;
        }
        if ((n = utf8_seq(p, end, &bad)) == 0)
            return (size_t)-1;
        need += n;
        p += n;
    }
    return need;
}

size_t evs_json_quote(evs_span s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const uchar *p = (const uchar *)s.ptr, *end = p;
    char *o = buf;
    size_t n, bad;

    if (s.len > 0) /* ptr may be NULL when len is 0 */
        end = p + s.len;

    /* When cap covers the worst case (every byte as \u00XX), skip the
     * sizing pass; the line encoder always sizes its buffer that way. */
    if (s.len > (SIZE_MAX - 2) / 6 || cap < s.len * 6 + 2) {
        n = quote_size(p, end);
        if (n == (size_t)-1 || n > cap)
            return n;
    }

    *o++ = '"';
    while (p < end) {
        uchar c;

        n = evs__plain_run(p, end);
        memcpy(o, p, n);
        o += n;
        p += n;
        if (p == end)
            break;
        c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            if ((n = utf8_seq(p, end, &bad)) == 0)
                return (size_t)-1;
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
            break;
        }
        p++;
    }
    *o++ = '"';
    return (size_t)(o - buf);
}
