/*
 * formats_shared.h: the part of formats' internals that the layers above
 * may use: the allocator hook, a growth helper and a growable buffer,
 * strict JSON scanning and reading of trusted JSON, the checksum framing,
 * the peeking of a log line's place in its log, and the decoding of a
 * snapshot in its read buffer. Never installed.
 *
 * The other layers include this header only; everything else formats
 * shares between its own files is in formats_int.h, which is private to
 * formats/ (and its tests).
 */
#ifndef EVS_FORMATS_SHARED_H
#define EVS_FORMATS_SHARED_H

#include "evstore/format.h"
#include "evstore/settings.h"
#include "evstore/snapshot.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/*
 * Structured logging (log.c). EVS_LOG_FIELDS(...) makes the typed fields
 * of a record, by designated initialisers (.execution = id, .sequence =
 * n, .err = rc); a duration not given is -1 ("none"). evs__log_emit
 * fills in the time, level, component and the message formatted from
 * fmt, and calls `fn` (nothing when `fn` is NULL). `f` may be NULL.
 */
#define EVS_LOG_FIELDS(...)                                                    \
    (&(const evs_log_record){.duration_us = -1, __VA_ARGS__})
void evs__log_emit(evs_log_fn fn, void *ctx, const char *component,
                   evs_log_level lvl, const evs_log_record *f,
                   const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* Allocation through an allocator hook; `a` may be NULL (the default). */
void *evs__realloc(const evs_allocator *a, void *p, size_t n);
void *evs__malloc(const evs_allocator *a, size_t n);
void *evs__calloc(const evs_allocator *a, size_t n);
void evs__free(const evs_allocator *a, void *p);

/* Fills `info` (may be NULL) with code, kind and a printf-style message;
 * evs__error_vset with a va_list. */
void evs__error_set(evs_error_info *info, int code, const char *kind,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void evs__error_vset(evs_error_info *info, int code, const char *kind,
                     const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Sets info->step (info may be NULL) from a step name, cut to fit. */
void evs__error_set_step(evs_error_info *info, evs_span step);

/* Sets info->code (info may be NULL) to a failure's code rc, the value
 * its function returns; returns rc. */
static inline int evs__error_rc(evs_error_info *info, int rc)
{
    if (info && rc != 0)
        info->code = rc;
    return rc;
}

/* Sets info->execution_id from a (ptr, len) id. */
void evs__error_set_id(evs_error_info *info, const char *id, size_t len);

static inline int evs__span_eq(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int evs__span_eq_cstr(evs_span a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

/*
 * Makes room for at least `need` elements of `elem` bytes in the array *p,
 * which has room for *cap elements, by reallocating it through `alloc`
 * (NULL: the C library). The capacity doubles, starting from 256 bytes'
 * worth of elements, until it holds `need`. On success returns 0 with *p
 * and *cap updated (untouched when *cap already sufficed); returns
 * -ENOMEM, with *p and *cap untouched, when memory runs out or the size
 * in bytes would overflow size_t. *p must be NULL or an allocation of
 * `alloc`. `p` is the address of the array's pointer, whatever its
 * type (it is read and written with memcpy); EVS__GROW supplies `elem`
 * from that type.
 *
 * Growable arrays and byte buffers grow with this, not with loops of
 * their own. (The page-aligned read buffer of eventstore/file_cursor.c
 * cannot: realloc would not keep the alignment.)
 */
int evs__grow(const evs_allocator *alloc, void *p, size_t *cap, size_t need,
              size_t elem);
/* evs__grow with the check that nothing needs to move done inline, as
 * inner loops want it; each argument is evaluated once. */
static inline int evs__grow_inline(const evs_allocator *alloc, void *p,
                                   size_t *cap, size_t need, size_t elem)
{
    return *cap >= need ? 0 : evs__grow(alloc, p, cap, need, elem);
}
#define EVS__GROW(alloc, pp, cap, need)                                        \
    evs__grow_inline((alloc), (pp), (cap), (need), sizeof(**(pp)))

/*
 * Reads the caller's options struct `src` into `dst` as common.h's rule
 * for options structs says: both begin with `size_t size`; `dst` holds
 * the library's defaults and is dst_size bytes (the library's sizeof).
 * Only the first src->size bytes of src are read, so the fields an older
 * caller does not have keep their defaults; the bytes a newer caller has
 * beyond dst_size must be zero (fields this library cannot honour, left
 * unset). Returns 0 with dst->size set to dst_size, or -EINVAL when
 * src->size is below `min` (the size of the first version: a struct not
 * filled in by its *_opts_init) or a field unknown here is set.
 */
int evs__opts_read(void *dst, size_t dst_size, const void *src, size_t min);

/* The size of the part of options struct T up to and including member m:
 * the `min` of evs__opts_read, with m the first version's last member. */
#define EVS__OPTS_SIZE(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))

/* Reads a canonical decimal uint64 at *pp (no sign, no leading zero, no
 * overflow) and moves *pp past it. Returns 0 or -1. */
int evs__take_u64(const char **pp, const char *end, uint64_t *v);

/* Writes the 16 lower-case hex digits of v into out (no NUL). */
void evs__hex64(uint64_t v, char out[16]);

/*
 * Unescapes the body of a JSON string, src[0..n) (no quotes), into out,
 * which has room for n bytes (unescaping never grows). Returns the output
 * length or (size_t)-1 on a bad escape. This and evs__json_unescape_one()
 * are the library's one decoder of JSON escapes: a \u escape of a high
 * surrogate followed by one of a low surrogate is their code point; a
 * lone or unpaired surrogate escape, which evs_json_check() accepts (RFC
 * 8259, section 8.2), becomes U+FFFD, so that the bytes decoded are
 * always valid UTF-8.
 */
size_t evs__json_unescape(const char *src, size_t n, char *out);

/* Decodes the one escape sequence at *pp (on its backslash) into out,
 * as evs__json_unescape() does, and moves *pp past it. Returns the number
 * of bytes written (1 to 4), or -1 on a bad escape. */
int evs__json_unescape_one(const char **pp, const char *end, char out[4]);

/*
 * Length of the run of plain string bytes at p: bytes that a JSON string
 * holds as they are and that need no UTF-8 check (printable ASCII other
 * than '"' and '\\'). The run ends at the first other byte, or at end.
 * This is the inner loop of JSON checking, quoting and line decoding, so
 * it looks at 16 bytes at a time with SSE2 (baseline on x86-64); a signed
 * compare below 0x20 catches both control bytes and bytes >= 0x80.
 */
static inline size_t evs__plain_run(const unsigned char *p,
                                    const unsigned char *end)
{
    const unsigned char *q = p;

#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i m = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
            _mm_cmplt_epi8(v, space));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return (size_t)(q - p) + (size_t)__builtin_ctz(bits);
        q += 16;
    }
#endif
    while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
        q++;
    return (size_t)(q - p);
}

/*
 * The scanners of the strict JSON checker (json.c), shared with readers
 * that check JSON as they walk it (the replay state's), so that both
 * accept exactly the same text. Each takes *pp on the token's first byte.
 */
#ifdef __GNUC__
#define EVS__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define EVS__ALWAYS_INLINE inline
#endif

/*
 * Checks one multi-byte UTF-8 sequence starting at p (p < end, *p >= 0x80)
 * against the well-formed byte sequences of Unicode (Table 3-7): no
 * overlong forms, no surrogates, nothing above U+10FFFF. Returns its
 * length, or 0 with *bad set to the index (from p) of the first byte that
 * cannot be part of a well-formed sequence; that index is end - p when the
 * input stops in the middle of a sequence.
 */
static inline size_t evs__utf8_seq(const unsigned char *p,
                                   const unsigned char *end, size_t *bad)
{
    size_t n = (size_t)(end - p), len, i;
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;

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

static inline int evs__is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The value of hex digit c, or -1 if it is none. */
static inline int evs__hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

static inline int evs__is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
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
static EVS__ALWAYS_INLINE int evs__json_scan_string(const unsigned char **pp,
                                                    const unsigned char *end)
{
    const unsigned char *p = *pp + 1;
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
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': p++; break;
            case 'u':
                p++;
                for (i = 0; i < 4; i++, p++)
                    if (p == end || !evs__is_hex(*p))
                        goto fail;
                break;
            default: goto fail;
            }
        } else if (*p >= 0x80) {
            if ((n = evs__utf8_seq(p, end, &bad)) == 0) {
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
static inline int evs__json_scan_number(const unsigned char **pp,
                                        const unsigned char *end)
{
    const unsigned char *p = *pp;

    if (*p == '-')
        p++;
    if (p == end)
        goto fail;
    if (*p == '0') {
        /* No leading zeros: the '1' of "01" cannot follow a complete
         * value, so the caller refuses it, at the right offset. */
        p++;
    } else if (evs__is_digit(*p)) {
        while (++p < end && evs__is_digit(*p))
            ;
    } else {
        goto fail;
    }
    if (p < end && *p == '.') {
        if (++p == end || !evs__is_digit(*p))
            goto fail;
        while (++p < end && evs__is_digit(*p))
            ;
    }
    if (p < end && (*p | 0x20) == 'e') {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !evs__is_digit(*p))
            goto fail;
        while (++p < end && evs__is_digit(*p))
            ;
    }
    *pp = p;
    return 0;
fail:
    *pp = p;
    return -1;
}

/* Matches the n-byte literal lit at *pp, whose first byte is known. */
static inline int evs__json_scan_lit(const unsigned char **pp,
                                     const unsigned char *end, const char *lit,
                                     size_t n)
{
    const unsigned char *p = *pp + 1;
    size_t i;

    /* The common case in one comparison; the loop finds the offset. */
    if ((size_t)(end - *pp) >= n && memcmp(*pp, lit, n) == 0) {
        *pp += n;
        return 0;
    }
    for (i = 1; i < n; i++, p++) {
        if (p == end || *p != (unsigned char)lit[i]) {
            *pp = p;
            return -1;
        }
    }
    *pp = p;
    return 0;
}

/*
 * Checks the one JSON value that starts at p (no whitespace before it)
 * exactly as evs_json_check() would inside a document where it sits
 * `depth` containers deep (the nesting limit counts those). Returns the
 * byte after the value (whatever follows it is not looked at), or NULL
 * when it is not valid JSON.
 */
const char *evs__json_check_value(const char *p, const char *end, size_t depth);

/*
 * Reading values out of JSON text that is already known to be valid (a
 * verified line's `data`, a state this library wrote): no validation
 * beyond what keeps the reads in bounds.
 */
typedef struct evs__jit {
    const char *p, *end;
    char close;
    int first;
} evs__jit;

/* Starts iterating the object ('{') or array ('[') v. Returns 0 or -1. */
int evs__json_iter_begin(evs__jit *it, evs_span v, char open);

/* Next member: the key's raw text (without quotes, still escaped) and
 * the value's text. Returns 1, 0 at the end, or -1 if malformed. */
int evs__json_obj_next(evs__jit *it, evs_span *key, evs_span *val);

/* Next element of an array. Returns 1, 0 at the end, or -1. */
int evs__json_arr_next(evs__jit *it, evs_span *val);

/* Value of `key` (a plain key, compared with the raw text) in object
 * obj. Returns 1 and sets *val, 0 if absent, -1 if obj is malformed. */
int evs__json_get(evs_span obj, const char *key, evs_span *val);

/* A JSON integer that fits int64. Returns 0 or -1. */
int evs__json_int(evs_span v, int64_t *out);

/* Parses a `history_limits` object (a definition's member, WORKFLOWS.md
 * §1; a run's option, RUNS.md) into *out: members warn_events,
 * warn_bytes, max_events and max_bytes, each an integer of at least 1
 * (one not given is -1); a warning threshold may not exceed the hard
 * limit given beside it. Returns 0, or EVS_EPARSE with the reason in
 * msg[0..cap), members named `what`.member. */
struct evs_wf_limits;
int evs__wf_limits_parse(evs_span v, const char *what,
                         struct evs_wf_limits *out,
                         char *msg, size_t cap);

/* True when v is the literal null. */
int evs__json_is_null(evs_span v);

/* Checks UTF-8 validity of a buffer (no overlongs, no surrogates). */
int evs__utf8_valid(const char *s, size_t len);

/*
 * The framing shared by event lines and snapshot lines (FORMAT.md): a
 * line is `{` ... `,"checksum":"<16 hex>"}\n` and the checksum is XXH3-64
 * of every byte before `"checksum"`.
 */
#define EVS__CKSUM_KEY ",\"checksum\":\""
#define EVS__CKSUM_KEY_LEN 13
/* ,"checksum":"0123456789abcdef"}\n  minus the leading comma, which the
 * checksum covers. */
#define EVS__CKSUM_TAIL_LEN (EVS__CKSUM_KEY_LEN - 1 + 16 + 3)

/*
 * Given a whole line (with '\n'), checks the framing and the checksum.
 * Returns 0, EVS_EPARSE (framing) or EVS_ECORRUPT (checksum mismatch).
 * *body_len is set to the length of the checksummed part (up to and
 * including the comma before "checksum").
 */
int evs__frame_check(const char *line, size_t len, size_t *body_len);

/* Appends the checksum tail to buf[0..body_len), which ends with a comma.
 * buf must have room for EVS__CKSUM_TAIL_LEN more bytes. Returns the new
 * length. */
size_t evs__frame_seal(char *buf, size_t body_len);

/*
 * A log line's place in its log, read without decoding the line
 * (line_peek.c): its sequence and the append it belongs to (first
 * sequence and count; a line appended alone is its own append of 1).
 */
typedef struct evs__line_pos {
    uint64_t seq, first, count;
} evs__line_pos;

/*
 * Checks the framing and checksum of the whole line line[0..len) (with
 * its newline) and reads only its execution id, sequence and batch.
 * Because the checksum vouches for the bytes and a quote inside a JSON
 * string is always escaped, the first ,"sequence": of a canonical line is
 * the field itself. An id written with escapes (by another program) is
 * compared unescaped, as readers compare it. Returns 0 with *pos set,
 * EVS_EFORMAT for a verified line of a newer version, EVS_ECORRUPT for
 * a bad checksum or another execution's line, or EVS_EPARSE.
 */
int evs__line_peek(const char *line, size_t len, const char *id, size_t id_len,
                   evs__line_pos *pos);

/*
 * As evs__line_peek, for a line read backwards from the end of a log. A
 * line that does not check out may still end with one that does: a
 * flipped newline merges a line with the next, and the good line then
 * ends where the damaged one does. That line is read instead, with *skip
 * set to where it begins in `line` (0 for an intact line), so that damage
 * followed by a complete append is not taken for a torn tail.
 */
int evs__line_peek_back(const char *line, size_t len, const char *id,
                        size_t id_len, evs__line_pos *pos, size_t *skip);

/*
 * The settings file's one line (formats/settings.c; FORMAT.md §14).
 * evs__settings_encode writes st as that line, newline and checksum
 * included, into *out (NUL-terminated, on `alloc`). Returns 0 or
 * -ENOMEM. evs__settings_decode reads buf[0..len), the whole file, into
 * new settings on `alloc`: 0, EVS_ECORRUPT, EVS_EFORMAT (ei says what)
 * or -ENOMEM.
 */
int evs__settings_encode(const evs_settings *st, const evs_allocator *alloc,
                         char **out, size_t *len);
int evs__settings_decode(const evs_allocator *alloc, const char *buf,
                         size_t len, evs_settings **out, evs_error_info *ei);

/* Checks the references of a schedule's inputs template (valid JSON):
 * ${schedule...} only (formats/schedule.c). Returns 0, EVS_EPARSE (msg
 * says why) or -ENOMEM. */
int evs__sched_check_inputs(evs_span tmpl, char *msg, size_t cap,
                            const evs_allocator *alloc);

/*
 * A growable buffer for writing JSON text (jbuf.c). Zero-initialise it
 * (alloc NULL: the C library). An append that cannot allocate sets err
 * (-ENOMEM) and later appends do nothing: check err once at the end.
 */
typedef struct evs__jbuf {
    const evs_allocator *alloc;
    char *p;
    size_t len, cap;
    int err;
} evs__jbuf;

void evs__jb_raw(evs__jbuf *b, const char *s, size_t n);
void evs__jb_str(evs__jbuf *b, const char *s); /* raw C string */
void evs__jb_quote(evs__jbuf *b, evs_span s);  /* a JSON string */
void evs__jb_json(evs__jbuf *b, evs_span v);   /* JSON; null if empty */
/* Appends the JSON text v minified, or the bytes of the raw (still
 * escaped) string body raw unescaped. Unlike the appends above, these
 * return: 0, EVS_EPARSE (v is not JSON, raw has a bad escape; nothing is
 * appended and err is not set) or err (-ENOMEM). */
int evs__jb_minify(evs__jbuf *b, evs_span v);
int evs__jb_unescape(evs__jbuf *b, evs_span raw);
void evs__jb_int(evs__jbuf *b, int64_t v);
void evs__jb_time(evs__jbuf *b, int64_t us); /* "RFC 3339", or null */
/* Room for n more bytes at b->p + b->len, which the caller fills and then
 * counts in b->len; NULL (and err set) when memory runs out. */
char *evs__jb_reserve(evs__jbuf *b, size_t n);
/* Appends a NUL (not counted in *out_len, which may be NULL) and hands
 * the text over: *out is the caller's, freed with b->alloc; b is then
 * empty. Returns 0, or b->err (b still owns its memory). */
int evs__jb_finish(evs__jbuf *b, char **out, size_t *out_len);
void evs__jb_free(evs__jbuf *b);
/* A string literal (a non-literal fails to compile: sizeof of a pointer
 * would silently cut it). */
#define EVS__JB_LIT(b, s) evs__jb_raw((b), "" s, sizeof(s) - 1)

/*
 * Decoding a snapshot in the buffer its file was read into, so that the
 * spans of a large body point at the bytes as read instead of at a copy.
 * evs__snapshot_buf() allocates room for `len` bytes (NULL when out of
 * memory); once the caller has filled them, evs__snapshot_decode_buf()
 * checks and decodes them as evs_snapshot_decode() does (same flags,
 * checks, results and errors; header strings are unescaped where they
 * stand) and on success the buffer becomes *out, freed with
 * evs_snapshot_free(). On failure the buffer is still the caller's, to
 * free with evs__snapshot_buf_free() (which accepts NULL).
 */
char *evs__snapshot_buf(const evs_allocator *alloc, size_t len);
/*
 * Optional, while filling: says that buf[0..n) now holds the file's first
 * n bytes (call it as n grows, in order). The body's checksums are then
 * computed as the bytes arrive, while they are still in the cache, and
 * decoding does not make a pass of its own for them. A read that comes
 * up short (decoding fewer bytes than the buffer was made for) is
 * checksummed the ordinary way.
 */
void evs__snapshot_buf_filled(char *buf, size_t n);
int evs__snapshot_decode_buf(char *buf, size_t len, unsigned flags,
                             evs_snapshot **out, evs_error_info *info);
void evs__snapshot_buf_free(char *buf);

/* Whether decoded snapshot s lives in memory of the C library's allocator
 * (evs_default_allocator), which outlives everything: whoever keeps it
 * then depends on no allocator's context. */
int evs__snapshot_libc(const evs_snapshot *s);

#endif /* EVS_FORMATS_SHARED_H */
