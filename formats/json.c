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
        if ((n = evs__utf8_seq(p, end, &bad)) == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Checking and minifying                                             */
/* ------------------------------------------------------------------ */

static inline int is_ws(uchar c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * The minified copy is made lazily: bytes are not copied as they are
 * scanned but in runs, whenever insignificant whitespace ends a run. Input
 * without whitespace thus costs one memcpy at the end, or nothing at all
 * when minifying in place. `seg` is the start of the pending run, `w` the
 * output length so far; w <= seg - buf always, so memmove is safe in
 * place.
 */
#define SKIP_WS()                                                              \
    do {                                                                       \
        if (p < end && *p <= ' ' && is_ws(*p)) {                               \
            flush(out, &w, seg, p);                                            \
            while (++p < end && is_ws(*p))                                     \
                ;                                                              \
            seg = p;                                                           \
        }                                                                      \
    } while (0)

static inline void flush(char *out, size_t *w, const uchar *seg, const uchar *p)
{
    size_t n = (size_t)(p - seg);

    if (out != NULL && n > 0 && out + *w != (const char *)seg)
        memmove(out + *w, seg, n);
    *w += n;
}

/* Bit stack of open containers, 1 for an object, 0 for an array. */
#define STACK_WORDS ((EVS_JSON_DEPTH_MAX + 63) / 64)

/*
 * The checker itself, for a whole document (evs_json_check) or for one
 * value inside a larger one (evs__json_check_value: `one` set, `max_depth`
 * what is left of the nesting limit). `one` and `flags` are constants in
 * each caller, so each gets its own copy with the other mode's tests
 * folded away: the append path pays nothing for the second mode.
 *
 * In `one` mode, *stop is set to the byte after the value; the caller
 * starts it on the value (p == seg, no whitespace skipped).
 */
static EVS__ALWAYS_INLINE int check(const uchar *base, const uchar *p,
                                    const uchar *end, unsigned flags, char *out,
                                    size_t *out_len, size_t *err_off, int one,
                                    size_t max_depth, const uchar **stop)
{
    const uchar *seg = p;
    uint64_t stack[STACK_WORDS] = {0};
    size_t depth = 0, w = 0;
    int in_obj = 0;
    uchar c;

value:
    /* An if-chain in rough order of frequency predicts better than the
     * jump table a switch becomes. */
    if (p == end)
        goto fail;
    c = *p;
    if (c == '"') {
        if (evs__json_scan_string(&p, end) != 0)
            goto fail;
    } else if (evs__is_digit(c) || c == '-') {
        if (evs__json_scan_number(&p, end) != 0)
            goto fail;
    } else if (c == '{' || c == '[') {
        if (depth == max_depth)
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
        if (evs__json_scan_lit(&p, end, "true", 4) != 0)
            goto fail;
    } else if (c == 'f') {
        if (evs__json_scan_lit(&p, end, "false", 5) != 0)
            goto fail;
    } else if (c == 'n') {
        if (evs__json_scan_lit(&p, end, "null", 4) != 0)
            goto fail;
    } else {
        goto fail;
    }

after:
    /* A value just ended; what may follow depends on the container. */
    if (one && depth == 0) {
        *stop = p;
        return 0;
    }
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
    if (p == end || *p != '"' || evs__json_scan_string(&p, end) != 0)
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

int evs_json_check(const char *buf, size_t len, unsigned flags, char *out,
                   size_t *out_len, size_t *err_off)
{
    const uchar *p = (const uchar *)buf, *end;

    /* Without MINIFY nothing is written. With it and a NULL out, only
     * *out_len is computed; counting w costs next to nothing either way. */
    if (!(flags & EVS_JSON_MINIFY))
        out = NULL;
    if (len == 0) {
        if (err_off != NULL)
            *err_off = 0;
        return EVS_EPARSE;
    }
    end = p + len;
    while (p < end && is_ws(*p))
        p++;
    if (flags & EVS_JSON_MINIFY)
        return check((const uchar *)buf, p, end, EVS_JSON_MINIFY, out, out_len,
                     err_off, 0, EVS_JSON_DEPTH_MAX, NULL);
    return check((const uchar *)buf, p, end, 0, NULL, NULL, err_off, 0,
                 EVS_JSON_DEPTH_MAX, NULL);
}

const char *evs__json_check_value(const char *p, const char *end, size_t depth)
{
    const uchar *q = NULL;

    if (depth > EVS_JSON_DEPTH_MAX)
        return NULL;
    if (check((const uchar *)p, (const uchar *)p, (const uchar *)end, 0, NULL,
              NULL, NULL, 1, EVS_JSON_DEPTH_MAX - depth, &q) != 0)
        return NULL;
    return (const char *)q;
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
    case '\b':
    case '\f':
    case '\n':
    case '\r':
    case '\t': return 2;
    default: return 6;
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
        if ((n = evs__utf8_seq(p, end, &bad)) == 0)
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
            if ((n = evs__utf8_seq(p, end, &bad)) == 0)
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
