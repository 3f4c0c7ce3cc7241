/*
 * json_read.c: reading JSON text this library already trusts (a verified
 * line's `data`, a state it wrote): unescaping strings, iterating objects
 * and arrays without building a tree, and hashing a value independently
 * of its formatting (sorted members).
 */
#include "formats_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned char uchar;

/* ------------------------------------------------------------------ */
/* Unescaping                                                         */
/* ------------------------------------------------------------------ */

/* Reads the four hex digits (either case) at s. Returns 0 or -1. */
static int hex4(const char *s, unsigned *v)
{
    unsigned r = 0;

    for (int i = 0; i < 4; i++) {
        int h = evs__hex_val((unsigned char)s[i]);
        if (h < 0)
            return -1;
        r = (r << 4) | (unsigned)h;
    }
    *v = r;
    return 0;
}

static int put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The one decoder of escapes (formats_shared.h says what it does with
 * surrogates); inline so that evs__json_unescape's loop calls nothing. */
static inline int unescape_one(const char **pp, const char *end, char *o)
{
    const char *s = *pp;
    unsigned cp, lo;

    if (end - s < 2)
        return -1;
    switch (s[1]) {
    case '"': *o = '"'; break;
    case '\\': *o = '\\'; break;
    case '/': *o = '/'; break;
    case 'b': *o = '\b'; break;
    case 'f': *o = '\f'; break;
    case 'n': *o = '\n'; break;
    case 'r': *o = '\r'; break;
    case 't': *o = '\t'; break;
    case 'u':
        if (end - s < 6 || hex4(s + 2, &cp) != 0)
            return -1;
        s += 6;
        if (cp >= 0xd800 && cp < 0xdc00 && end - s >= 6 && s[0] == '\\' &&
            s[1] == 'u' && hex4(s + 2, &lo) == 0 && lo >= 0xdc00 &&
            lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd; /* a lone surrogate */
        }
        *pp = s;
        return put_utf8(o, cp);
    default: return -1;
    }
    *pp = s + 2;
    return 1;
}

int evs__json_unescape_one(const char **pp, const char *end, char out[4])
{
    return unescape_one(pp, end, out);
}

size_t evs__json_unescape(const char *src, size_t n, char *out)
{
    const char *s = src, *end = src + n;
    char *o = out;
    int k;

    while (s < end) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        if ((k = unescape_one(&s, end, o)) < 0)
            return (size_t)-1;
        o += k;
    }
    return (size_t)(o - out);
}

/* ------------------------------------------------------------------ */
/* Reading values out of trusted JSON text                            */
/* ------------------------------------------------------------------ */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Skips one string whose opening quote is at p; returns the byte after
 * its closing quote, or NULL. */
static const char *skip_str(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        p += evs__plain_run((const uchar *)p, (const uchar *)end);
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && ++p >= end)
            return NULL;
    }
    return NULL;
}

const char *evs__json_skip(const char *p, const char *end)
{
    int depth = 0;

    p = skip_ws(p, end);
    do {
        if (p >= end)
            return NULL;
        switch (*p) {
        case '"':
            if (!(p = skip_str(p, end)))
                return NULL;
            break;
        case '{':
        case '[':
            depth++;
            p++;
            break;
        case '}':
        case ']':
            if (--depth < 0)
                return NULL;
            p++;
            break;
        default:
            /* Numbers, literals, commas, colons and whitespace: skip to
             * the next byte that matters. */
            while (p < end && *p != '"' && *p != '{' && *p != '[' &&
                   *p != '}' && *p != ']' && (depth > 0 || *p != ','))
                p++;
            break;
        }
    } while (depth > 0);
    return p;
}

int evs__json_iter_begin(evs__jit *it, evs_span v, char open)
{
    const char *p = skip_ws(v.ptr, v.ptr + v.len);
    const char *end = v.ptr + v.len;

    if (p >= end || *p != open)
        return -1;
    it->p = p + 1;
    it->end = end;
    it->close = open == '{' ? '}' : ']';
    it->first = 1;
    return 0;
}

/* Moves past the separator before the next element. 1: there is one,
 * 0: the container ended, -1: malformed. */
static int iter_sep(evs__jit *it)
{
    const char *p = skip_ws(it->p, it->end);

    if (p < it->end && *p == it->close) {
        it->p = p + 1;
        return 0;
    }
    if (!it->first) {
        if (p >= it->end || *p != ',')
            return -1;
        p = skip_ws(p + 1, it->end);
    }
    it->first = 0;
    it->p = p;
    return 1;
}

/* The value at p, without trailing whitespace; moves the iterator past
 * it. Returns 1, or -1 if it runs past the end. */
static int take_value(evs__jit *it, const char *p, evs_span *val)
{
    const char *q = evs__json_skip(p, it->end);

    if (!q)
        return -1;
    val->ptr = p;
    val->len = (size_t)(q - p);
    while (val->len && (p[val->len - 1] == ' ' || p[val->len - 1] == '\n' ||
                        p[val->len - 1] == '\t' || p[val->len - 1] == '\r'))
        val->len--;
    it->p = q;
    return 1;
}

int evs__json_obj_next(evs__jit *it, evs_span *key, evs_span *val)
{
    const char *p, *q;
    int rc = iter_sep(it);

    if (rc <= 0)
        return rc;
    p = it->p;
    if (p >= it->end || *p != '"' || !(q = skip_str(p, it->end)))
        return -1;
    key->ptr = p + 1;
    key->len = (size_t)(q - p - 2);
    p = skip_ws(q, it->end);
    if (p >= it->end || *p != ':')
        return -1;
    p = skip_ws(p + 1, it->end);
    return take_value(it, p, val);
}

int evs__json_arr_next(evs__jit *it, evs_span *val)
{
    int rc = iter_sep(it);

    if (rc <= 0)
        return rc;
    return take_value(it, it->p, val);
}

int evs__json_get(evs_span obj, const char *key, evs_span *val)
{
    size_t kl = strlen(key);
    evs__jit it;
    evs_span k;
    int rc;

    if (evs__json_iter_begin(&it, obj, '{') != 0)
        return -1;
    while ((rc = evs__json_obj_next(&it, &k, val)) == 1)
        if (k.len == kl && memcmp(k.ptr, key, kl) == 0)
            return 1;
    return rc < 0 ? -1 : 0;
}

int evs__json_int(evs_span v, int64_t *out)
{
    const char *p = v.ptr, *end = v.ptr + v.len;
    uint64_t r = 0;
    int neg = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end)
        return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (r > (UINT64_C(1) << 63) / 10)
            return -1;
        r = r * 10 + (uint64_t)(*p - '0');
    }
    if (r > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - r) : (int64_t)r;
    return 0;
}

int evs__json_is_null(evs_span v)
{
    return v.len == 4 && memcmp(v.ptr, "null", 4) == 0;
}

/* ------------------------------------------------------------------ */
/* Canonical hashing                                                  */
/* ------------------------------------------------------------------ */

typedef struct member {
    evs_span key, val;
} member;

static int member_cmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.ptr, y->key.ptr, n);

    if (c)
        return c;
    return x->key.len < y->key.len ? -1 : x->key.len > y->key.len;
}

/* Writes v with object members sorted by key, recursively; everything
 * else (strings, numbers, literals) byte for byte. `depth` bounds the
 * recursion (the input was checked, so it is at most the JSON limit). */
static void canon_value(evs__jbuf *c, evs_span v, int depth)
{
    evs__jit it;
    evs_span k, x;
    member *m = NULL;
    size_t n = 0, cap = 0;
    int rc;

    if (c->err)
        return;
    if (depth > EVS_JSON_DEPTH_MAX) {
        c->err = EVS_EPARSE;
        return;
    }
    if (evs__json_iter_begin(&it, v, '[') == 0) {
        evs__jb_raw(c, "[", 1);
        while ((rc = evs__json_arr_next(&it, &x)) == 1) {
            if (n++)
                evs__jb_raw(c, ",", 1);
            canon_value(c, x, depth + 1);
        }
        if (rc < 0)
            c->err = EVS_EPARSE;
        evs__jb_raw(c, "]", 1);
        return;
    }
    if (evs__json_iter_begin(&it, v, '{') != 0) {
        evs__jb_raw(c, v.ptr, v.len);
        return;
    }
    while ((rc = evs__json_obj_next(&it, &k, &x)) == 1) {
        if (EVS__GROW(c->alloc, &m, &cap, n + 1) != 0) {
            c->err = -ENOMEM;
            break;
        }
        m[n].key = k;
        m[n].val = x;
        n++;
    }
    if (rc < 0 && !c->err)
        c->err = EVS_EPARSE;
    if (n > 1)
        qsort(m, n, sizeof(*m), member_cmp);
    evs__jb_raw(c, "{", 1);
    for (size_t i = 0; i < n && !c->err; i++) {
        if (i)
            evs__jb_raw(c, ",", 1);
        evs__jb_raw(c, "\"", 1);
        evs__jb_raw(c, m[i].key.ptr, m[i].key.len);
        evs__jb_raw(c, "\":", 2);
        canon_value(c, m[i].val, depth + 1);
    }
    evs__jb_raw(c, "}", 1);
    evs__free(c->alloc, m);
}

int evs_json_hash(const char *buf, size_t len, const evs_allocator *alloc,
                  uint64_t *hash)
{
    evs__jbuf c = {alloc, NULL, 0, 0, 0};
    char *min;
    size_t mlen;
    int rc;

    min = evs__malloc(alloc, len ? len : 1);
    if (!min)
        return -ENOMEM;
    rc = evs_json_check(buf, len, EVS_JSON_MINIFY, min, &mlen, NULL);
    if (rc == 0) {
        canon_value(&c, (evs_span){min, mlen}, 0);
        rc = c.err;
    }
    if (rc == 0)
        *hash = evs_checksum(c.p, c.len);
    evs__jb_free(&c);
    evs__free(alloc, min);
    return rc;
}
