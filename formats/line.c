/*
 * line.c: the canonical event line: the writer, and the envelope decoder
 * that reads a verified line without scanning its `data`.
 *
 * The canonical line (FORMAT.md, "The event line") is
 *
 *   {"v":1,"id":S,"execution_id":S,"path_id":S,"sequence":N,
 *    ["batch":[F,C],]"timestamp":"T","event_type":S,"step_name":S,
 *    "data":J,"checksum":"H"}\n
 *
 * with every field always present and in this order. Because the order is
 * fixed and `data` is the last field before the checksum, a decoder that
 * has verified the checksum knows where `data` ends without looking at it.
 */
#include "formats_int.h"

#include <errno.h>
#include <stdio.h>

#define K_V "{\"v\":1,\"id\":"
#define K_EXEC ",\"execution_id\":"
#define K_PATH ",\"path_id\":"
#define K_SEQ ",\"sequence\":"
#define K_BATCH ",\"batch\":["
#define K_TIME ",\"timestamp\":\""
#define K_TYPE ",\"event_type\":"
#define K_STEP ",\"step_name\":"
#define K_DATA ",\"data\":"

#define LIT(s) (s), (sizeof(s) - 1)

/* Bytes of the fixed keys and punctuation of a line without a batch. */
#define FIXED_LEN                                                              \
    (sizeof(K_V) - 1 + sizeof(K_EXEC) - 1 + sizeof(K_PATH) - 1 +               \
     sizeof(K_SEQ) - 1 + sizeof(K_TIME) - 1 + EVS_TIME_LEN + 1 +               \
     sizeof(K_TYPE) - 1 + sizeof(K_STEP) - 1 + sizeof(K_DATA) - 1 + 1 +        \
     EVS__CKSUM_TAIL_LEN)

/* A quoted string is at most 6 bytes per input byte (\u00XX) plus 2. */
static size_t quoted_max(evs_span s)
{
    return s.len * 6 + 2;
}

size_t evs_line_encoded_max(const evs_event *ev)
{
    size_t data = ev->data.len ? ev->data.len : 2;

    return FIXED_LEN + quoted_max(ev->id) + quoted_max(ev->execution_id) +
           quoted_max(ev->path_id) + 20 + (sizeof(K_BATCH) - 1 + 42) +
           quoted_max(ev->event_type) + quoted_max(ev->step_name) + data;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Quotes s at p; end is the end of the buffer. NULL on bad UTF-8 or no
 * room. */
static char *put_str(char *p, const char *end, evs_span s)
{
    size_t n = evs_json_quote(s, p, (size_t)(end - p));

    if (n == (size_t)-1 || n > (size_t)(end - p))
        return NULL;
    return p + n;
}

/*
 * Sets *len to the exact length of the line for ev. This costs a pass over
 * every field, so it is only done when the caller's buffer is below the
 * bound: a buffer of exactly the line's length must still do.
 */
static int exact_len(const evs_event *ev, unsigned flags, size_t *len)
{
    const evs_span *strs[] = {&ev->id, &ev->execution_id, &ev->path_id,
                              &ev->event_type, &ev->step_name};
    size_t n = FIXED_LEN + evs__u64_digits(ev->sequence), q;

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        /* With cap 0 the quoter only measures. */
        if ((q = evs_json_quote(*strs[i], NULL, 0)) == (size_t)-1)
            return -EINVAL;
        n += q;
    }
    if (ev->batch_count > 1)
        n += sizeof(K_BATCH) - 1 + evs__u64_digits(ev->batch_first) + 1 +
             evs__u64_digits(ev->batch_count) + 1;
    if (ev->data.len == 0) {
        q = 2;
    } else if (flags & EVS__LINE_DATA_COMPACT) {
        q = ev->data.len;
    } else if (evs_json_check(ev->data.ptr, ev->data.len, EVS_JSON_MINIFY, NULL,
                              &q, NULL) != 0) {
        return -EINVAL;
    }
    *len = n + q;
    return 0;
}

/* A batch must contain the event and end at or below UINT64_MAX. */
static int batch_valid(uint64_t seq, uint64_t first, uint64_t count)
{
    return first != 0 && seq >= first && seq - first < count &&
           count - 1 <= UINT64_MAX - first;
}

int evs_line_encode(const evs_event *ev, char *buf, size_t cap, size_t *out_len)
{
    return evs__line_encode_flags(ev, buf, cap, out_len, 0);
}

int evs__line_encode_flags(const evs_event *ev, char *buf, size_t cap,
                           size_t *out_len, unsigned flags)
{
    char *p = buf, *end = buf + cap;
    char ts[EVS_TIME_LEN + 1];
    size_t need = evs_line_encoded_max(ev), dlen;
    int rc;

    if (ev->id.len == 0 || ev->execution_id.len == 0 ||
        ev->event_type.len == 0 || ev->sequence == 0)
        return -EINVAL;
    if (ev->batch_count > 1 &&
        !batch_valid(ev->sequence, ev->batch_first, ev->batch_count))
        return -EINVAL;
    if (evs_time_format(ev->timestamp_us, ts) != 0)
        return -EINVAL;
    /* With room for the bound, nothing below can run out of space. Below
     * it, the line may still fit: measure it. */
    if (cap < need) {
        if ((rc = exact_len(ev, flags, &need)) != 0)
            return rc;
        if (cap < need)
            return -ENOBUFS;
    }

    p = put(p, LIT(K_V));
    if (!(p = put_str(p, end, ev->id)))
        return -EINVAL;
    p = put(p, LIT(K_EXEC));
    if (!(p = put_str(p, end, ev->execution_id)))
        return -EINVAL;
    p = put(p, LIT(K_PATH));
    if (!(p = put_str(p, end, ev->path_id)))
        return -EINVAL;
    p = put(p, LIT(K_SEQ));
    p = evs__put_u64(p, ev->sequence);
    if (ev->batch_count > 1) {
        p = put(p, LIT(K_BATCH));
        p = evs__put_u64(p, ev->batch_first);
        *p++ = ',';
        p = evs__put_u64(p, ev->batch_count);
        *p++ = ']';
    }
    p = put(p, LIT(K_TIME));
    p = put(p, ts, EVS_TIME_LEN);
    *p++ = '"';
    p = put(p, LIT(K_TYPE));
    if (!(p = put_str(p, end, ev->event_type)))
        return -EINVAL;
    p = put(p, LIT(K_STEP));
    if (!(p = put_str(p, end, ev->step_name)))
        return -EINVAL;
    p = put(p, LIT(K_DATA));
    if (ev->data.len == 0) {
        p = put(p, "{}", 2);
    } else if (flags & EVS__LINE_DATA_COMPACT) {
        /* Checked and compacted by the caller (evs_json_check with
         * EVS_JSON_MINIFY), so its bytes are the line's. */
        p = put(p, ev->data.ptr, ev->data.len);
    } else {
        /* Validates and writes the compact form in one pass. */
        rc = evs_json_check(ev->data.ptr, ev->data.len, EVS_JSON_MINIFY, p,
                            &dlen, NULL);
        if (rc != 0)
            return -EINVAL;
        p += dlen;
    }
    *p++ = ',';
    *out_len = evs__frame_seal(buf, (size_t)(p - buf));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                           */
/* ------------------------------------------------------------------ */

void evs_decoder_init(evs_decoder *d, const evs_allocator *alloc)
{
    memset(d, 0, sizeof(*d));
    d->alloc = alloc;
}

void evs_decoder_free(evs_decoder *d)
{
    if (!d)
        return;
    evs__decoder_foreign_free(d);
    evs__free(d->alloc, d->buf);
    memset(d, 0, sizeof(*d));
}

/* Makes sure the scratch holds at least n bytes. */
int evs__decoder_reserve(evs_decoder *d, size_t n)
{
    return EVS__GROW(d->alloc, &d->buf, &d->cap, n);
}

typedef struct lcur {
    const char *p, *end;
    evs_decoder *d;
    size_t used;  /* bytes of d->buf used by this decode */
    size_t need;  /* scratch that every escaped string together fits */
    int reserved; /* the scratch has been sized for this decode */
    int oom;      /* a failure was -ENOMEM, not the line's fault */
} lcur;

static inline __attribute__((always_inline)) int
expect(lcur *c, const char *lit, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/* Reads a quoted string; escaped strings are unescaped into the scratch.
 * The view must not contain raw control bytes. */
static int read_str(lcur *c, evs_span *out)
{
    const char *s, *q;
    int esc = 0, high = 0;

    if (c->p >= c->end || *c->p != '"')
        return -1;
    s = ++c->p;
    q = s;
    /* Skip plain ASCII in bulk (ids, names and types almost always are
     * all plain); the byte loop below takes over at the first other
     * byte. */
    q +=
        evs__plain_run((const unsigned char *)q, (const unsigned char *)c->end);
    for (; q < c->end; q++) {
        unsigned char ch = (unsigned char)*q;
        if (ch == '"')
            break;
        if (ch < 0x20)
            return -1;
        high |= ch >= 0x80;
        if (ch == '\\') {
            esc = 1;
            if (++q >= c->end)
                return -1;
        }
    }
    if (q >= c->end)
        return -1;
    c->p = q + 1;
    /* Only strings with non-ASCII bytes need the UTF-8 check; escapes
     * are ASCII, so it also covers what they leave alone. */
    if (high && !evs__utf8_valid(s, (size_t)(q - s)))
        return -1;
    if (!esc) {
        out->ptr = s;
        out->len = (size_t)(q - s);
        return 0;
    }
    /* The scratch is sized once, at the first escape, for the whole line:
     * growing it later would move the views already made. Lines without
     * escapes never touch it. */
    if (!c->reserved) {
        if (evs__decoder_reserve(c->d, c->need) != 0) {
            c->oom = 1;
            return -1;
        }
        c->reserved = 1;
    }
    {
        char *o = c->d->buf + c->used;
        size_t n = evs__json_unescape(s, (size_t)(q - s), o);
        if (n == (size_t)-1)
            return -1;
        out->ptr = o;
        out->len = n;
        c->used += n;
    }
    return 0;
}

static int read_u64(lcur *c, uint64_t *v)
{
    return evs__take_u64(&c->p, c->end, v);
}

/*
 * True when s[0..EVS_TIME_LEN) has the writer's form, which
 * evs_time_parse() then checks for range. The parser alone would also take
 * "...30.1+05:00" (the same length), 't', 'z', ' ', and second 60.
 */
static int time_canonical(const char *s)
{
    static const char shape[EVS_TIME_LEN + 1] = "0000-00-00T00:00:00.000000Z";

    for (int i = 0; i < EVS_TIME_LEN; i++) {
        if (shape[i] == '0' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
            return 0;
    }
    return s[17] != '6';
}

/*
 * Reads a canonical timestamp. Events come in bursts, so the decoder
 * remembers the last "YYYY-MM-DDTHH:MM:SS" it converted and then only
 * has to read the microseconds.
 */
static int read_time(evs_decoder *d, const char *s, int64_t *us)
{
    int64_t frac = 0;

    if (d->ts_valid_ && memcmp(s, d->ts_key_, sizeof(d->ts_key_)) == 0) {
        for (int i = 20; i < 26; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            frac = frac * 10 + (s[i] - '0');
        }
        if (s[19] != '.' || s[26] != 'Z')
            return -1;
        *us = d->ts_secs_ * 1000000 + frac;
        return 0;
    }
    if (!time_canonical(s) || evs_time_parse(s, EVS_TIME_LEN, us) != 0)
        return -1;
    /* Floor, so that a time before 1970 caches the right second. */
    d->ts_secs_ = *us / 1000000 - (*us % 1000000 < 0);
    memcpy(d->ts_key_, s, sizeof(d->ts_key_));
    d->ts_valid_ = 1;
    return 0;
}

/* Parses the version number of a line that starts with {"v":. */
static int line_version(const char *line, size_t len, uint64_t *v)
{
    lcur c = {.p = line + 5, .end = line + len};

    return read_u64(&c, v);
}

int evs_line_decode(evs_decoder *d, const char *line, size_t len,
                    unsigned flags, evs_event *ev, evs_error_info *info)
{
    size_t body;
    uint64_t v;
    lcur c = {0};
    int rc;

    if (len >= 5 && memcmp(line, "{\"v\":", 5) == 0) {
        /* Ours, in some version: the framing is the same in every version
         * (FORMAT.md, "Versions"), so check it first. A line without its
         * newline is accepted for convenience. */
        if (line[len - 1] != '\n') {
            /* frame_check wants the newline; never read past len. */
            rc = EVS_EPARSE;
            if (len + 1 <= 1 + EVS__CKSUM_KEY_LEN + 16 + 3)
                goto bad;
            if ((rc = evs__decoder_reserve(d, len + 1)) != 0)
                return rc;
            memcpy(d->buf, line, len);
            d->buf[len] = '\n';
            /* Views must point at the caller's line, so only use the
             * copy for the check. */
            rc = evs__frame_check(d->buf, len + 1, &body);
        } else {
            rc = evs__frame_check(line, len, &body);
        }
        if (rc == EVS_ECORRUPT) {
            evs__error_set(info, rc, "checksum", "checksum mismatch");
            return rc;
        }
        if (rc != 0)
            goto bad;
        if (line_version(line, len, &v) != 0)
            goto bad;
        if (v != EVS_FORMAT_VERSION) {
            evs__error_set(info, EVS_EFORMAT, "format",
                           "line written in format %llu; this library "
                           "reads format %d",
                           (unsigned long long)v, EVS_FORMAT_VERSION);
            return EVS_EFORMAT;
        }
        memset(ev, 0, sizeof(*ev));
        c.p = line;
        c.end = line + body;
        c.d = d;
        c.need = body;
        if (expect(&c, LIT(K_V)) || read_str(&c, &ev->id) ||
            expect(&c, LIT(K_EXEC)) || read_str(&c, &ev->execution_id) ||
            expect(&c, LIT(K_PATH)) || read_str(&c, &ev->path_id) ||
            expect(&c, LIT(K_SEQ)) || read_u64(&c, &ev->sequence))
            goto bad;
        if (c.end - c.p > 10 && memcmp(c.p, LIT(K_BATCH)) == 0) {
            c.p += sizeof(K_BATCH) - 1;
            if (read_u64(&c, &ev->batch_first) || expect(&c, ",", 1) ||
                read_u64(&c, &ev->batch_count) || expect(&c, "]", 1))
                goto bad;
            if (ev->batch_count < 2 ||
                !batch_valid(ev->sequence, ev->batch_first, ev->batch_count))
                goto bad;
        } else {
            ev->batch_first = ev->sequence;
            ev->batch_count = 1;
        }
        if (expect(&c, LIT(K_TIME)) || c.end - c.p < EVS_TIME_LEN + 1 ||
            read_time(d, c.p, &ev->timestamp_us) != 0)
            goto bad;
        c.p += EVS_TIME_LEN;
        if (expect(&c, "\"", 1) || expect(&c, LIT(K_TYPE)) ||
            read_str(&c, &ev->event_type) || expect(&c, LIT(K_STEP)) ||
            read_str(&c, &ev->step_name) || expect(&c, LIT(K_DATA)))
            goto bad;
        /* data runs to the comma that ends the checksummed body. */
        if (c.end - c.p < 2)
            goto bad;
        ev->data.ptr = c.p;
        ev->data.len = (size_t)(c.end - 1 - c.p);
        if (ev->id.len == 0 || ev->execution_id.len == 0 ||
            ev->event_type.len == 0 || ev->sequence == 0)
            goto bad;
        return 0;
    }
    if (flags & EVS_DECODE_FOREIGN)
        return evs__line_decode_foreign(d, line, len, ev, info);
bad:
    if (c.oom)
        return -ENOMEM;
    evs__error_set(info, EVS_EPARSE, "syntax",
                   "not a well-formed evstore event line");
    return EVS_EPARSE;
}
