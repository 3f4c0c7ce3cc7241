/*
 * snapshot_decode.c: decoding snapshots (FORMAT.md, "The snapshot file"),
 * from the caller's bytes (evs_snapshot_decode) or in the buffer a file
 * was read into (evs__snapshot_decode_buf), whose body checksums can be
 * computed while the read is still arriving.
 *
 * Decoding the header alone must stay cheap, because listing 100k
 * executions reads 100k headers, so the header is read by a parser of its
 * one canonical field order rather than by a general JSON parser.
 */
#include "snapshot_int.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#if defined(__x86_64__)
/* From libxxhash (xxh_x86dispatch.h, which cannot be included together
 * with the inlined implementation): the streaming update with the
 * runtime dispatch that evs_checksum() uses for long inputs. */
XXH_errorcode XXH3_64bits_update_dispatch(XXH3_state_t *state,
                                          const void *input, size_t len);
#define SUM_UPDATE XXH3_64bits_update_dispatch
#else
#define SUM_UPDATE XXH3_64bits_update
#endif

/* ------------------------------------------------------------------ */
/* Decoding                                                           */
/* ------------------------------------------------------------------ */

/*
 * The header's fields as found in the input, before anything is copied:
 * strings are their raw (still escaped) contents, plus the length they
 * will have once unescaped.
 */
typedef struct snap_hdr {
    evs_span raw[N_STR];
    size_t ulen[N_STR];
    int64_t times[N_TIME];
    uint64_t last_event_seq;
    uint64_t body_len;
    uint64_t body_sum;
} snap_hdr;

static int take_lit(const char **pp, const char *end, lit l)
{
    if ((size_t)(end - *pp) < l.n || memcmp(*pp, l.s, l.n) != 0)
        return -1;
    *pp += l.n;
    return 0;
}

/*
 * Reads a JSON string at *pp (on its opening quote), checking its escapes
 * and its UTF-8. Sets *raw to the contents between the quotes and *ulen
 * to their length once unescaped.
 */
static int take_string(const char **pp, const char *end, evs_span *raw,
                       size_t *ulen)
{
    const char *p = *pp, *start;
    char tmp[4];
    size_t n = 0;
    int k;

    if (p == end || *p != '"')
        return -1;
    start = ++p;
    for (;;) {
        unsigned char c;
        if (p == end)
            return -1;
        c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            p++;
            n++;
            continue;
        }
        /* Escapes are decoded here only to count their bytes. */
        if ((k = evs__json_unescape_one(&p, end, tmp)) < 0)
            return -1;
        n += (size_t)k;
    }
    raw->ptr = start;
    raw->len = (size_t)(p - start);
    if (!evs__utf8_valid(raw->ptr, raw->len))
        return -1;
    *pp = p + 1;
    *ulen = n;
    return 0;
}

/* Unescapes a string that take_string() accepted; returns the end. */
static char *unescape(char *o, evs_span raw)
{
    return o + evs__json_unescape(raw.ptr, raw.len, o);
}

/* null (0) or an RFC 3339 string without escapes. */
static int take_time(const char **pp, const char *end, int64_t *us)
{
    const char *p = *pp, *q;

    if (take_lit(pp, end, null_lit) == 0) {
        *us = 0;
        return 0;
    }
    if (p == end || *p != '"')
        return -1;
    q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL || evs_time_parse(p + 1, (size_t)(q - p - 1), us) != 0)
        return -1;
    *pp = q + 1;
    return 0;
}

/*
 * Parses the header's checksummed part, [p, end) with end on the comma
 * before "checksum", after the version has been checked.
 */
static int parse_header(const char *p, const char *end, snap_hdr *h)
{
    if (take_lit(&p, end, hdr_kind) != 0)
        return -1;
    for (int i = 0; i < N_STR; i++) {
        if (take_lit(&p, end, str_fields[i].key) != 0 ||
            take_string(&p, end, &h->raw[i], &h->ulen[i]) != 0)
            return -1;
    }
    for (int i = 0; i < N_TIME; i++) {
        if (take_lit(&p, end, time_fields[i].key) != 0 ||
            take_time(&p, end, &h->times[i]) != 0)
            return -1;
    }
    if (take_lit(&p, end, seq_key) != 0 ||
        evs__take_u64(&p, end, &h->last_event_seq) != 0 ||
        take_lit(&p, end, blen_key) != 0 ||
        evs__take_u64(&p, end, &h->body_len) != 0 ||
        take_lit(&p, end, bsum_key) != 0 || end - p < 17 ||
        evs__unhex64(p, &h->body_sum) != 0 || p[16] != '"')
        return -1;
    p += 17;
    return p == end ? 0 : -1;
}

/*
 * Returns the end of the JSON value at p, or NULL. It finds boundaries
 * only (strings, brackets, scalars): the checksums vouch for the bytes,
 * and a forged body can at worst yield odd spans, never a read outside
 * [p, end).
 */
static const char *skip_value(const char *p, const char *end)
{
    size_t depth = 0;

    if (p == end)
        return NULL;
    switch (*p) {
    case '"': return skip_string(p, end);
    case '{':
    case '[':
        while (p < end) {
            switch (*p) {
            case '"':
                if ((p = skip_string(p, end)) == NULL)
                    return NULL;
                continue;
            case '{':
            case '[': depth++; break;
            case '}':
            case ']':
                if (--depth == 0)
                    return p + 1;
                break;
            default: break;
            }
            p++;
        }
        return NULL;
    case ',':
    case '}':
    case ']': return NULL;
    default:
        while (p < end && *p != ',' && *p != '}' && *p != ']')
            p++;
        return p;
    }
}

/*
 * Parses the body's checksummed part, [p, end) as for parse_header().
 * With `raw_state` the state, the last field, is all that is left, taken
 * without a look inside (EVS_SNAPSHOT_STATE_RAW).
 */
static int parse_body(const char *p, const char *end, int raw_state,
                      evs_span val[N_JSON])
{
    for (int i = 0; i < N_JSON; i++) {
        const char *q;
        if (take_lit(&p, end, json_fields[i].key) != 0)
            return -1;
        if (raw_state && i == N_JSON - 1)
            q = p < end ? end : NULL;
        else
            q = skip_value(p, end);
        if (q == NULL)
            return -1;
        val[i].ptr = p;
        val[i].len = (size_t)(q - p);
        if (val[i].len == null_lit.n && memcmp(p, null_lit.s, null_lit.n) == 0)
            val[i].len = 0;
        p = q;
    }
    return p == end ? 0 : -1;
}

/*
 * XXH3-64 of p[0..len) and, on the way, of its first `cut` bytes: the
 * body's binding checksum covers all of it and its own checksum all but
 * its tail, and a large body is read once instead of twice.
 */
/*
 * The body's checksums as a read buffer fills (evs__snapshot_buf_filled):
 * the bytes are hashed as they arrive, while they are still in the
 * cache, instead of in a pass of their own over hundreds of MiB. It lives
 * in the read buffer's allocation, after the file's bytes.
 */
struct sum_run {
    XXH3_state_t st;
    size_t len;     /* the file's length, as the buffer was made for */
    size_t body;    /* where the body starts; 0 until the header's end */
    size_t cut;     /* where the body's own checksum stops */
    size_t done;    /* bytes hashed so far, from the start of the file */
    uint64_t first; /* XXH3 of [body, cut), once done reaches cut */
};

static void sum_twice(const char *p, size_t len, size_t cut, uint64_t *whole,
                      uint64_t *first)
{
    XXH3_state_t st;

    XXH3_64bits_reset(&st);
    SUM_UPDATE(&st, p, cut);
    *first = XXH3_64bits_digest(&st);
    SUM_UPDATE(&st, p + cut, len - cut);
    *whole = XXH3_64bits_digest(&st);
}

/* Where the body's own checksum stops, for a body of len bytes. */
static size_t body_cut(size_t len)
{
    return len >= EVS__CKSUM_TAIL_LEN ? len - EVS__CKSUM_TAIL_LEN : 0;
}

/*
 * Checks the body, body[0..len): that it is the one the header binds
 * (h->body_len, h->body_sum; kind "binding"), then its framing and its
 * own checksum as evs__frame_check() would, in the same order and with
 * the same results, but from the one pass of sum_twice(), or from `run`
 * when it has hashed exactly this body already.
 */
static int check_body(const char *body, size_t len, const snap_hdr *h,
                      const sum_run *run, size_t *sum_len, evs_error_info *info)
{
    size_t cut = body_cut(len);
    uint64_t whole, first, want;

    if (len != h->body_len) {
        evs__error_set(info, EVS_ECORRUPT, "binding",
                       "snapshot body is %zu bytes, header says %" PRIu64, len,
                       h->body_len);
        return EVS_ECORRUPT;
    }
    if (run != NULL && run->body != 0 && run->done == run->body + len &&
        run->cut == run->body + cut) {
        first = run->first;
        whole = XXH3_64bits_digest(&run->st);
    } else {
        sum_twice(body, len, cut, &whole, &first);
    }
    if (whole != h->body_sum) {
        evs__error_set(info, EVS_ECORRUPT, "binding",
                       "snapshot body does not belong to its header");
        return EVS_ECORRUPT;
    }
    if (len < 1 + EVS__CKSUM_KEY_LEN + 16 + 3 || body[0] != '{' ||
        body[len - 1] != '\n' || body[len - 2] != '}' || body[len - 3] != '"' ||
        memcmp(body + cut - 1, EVS__CKSUM_KEY, EVS__CKSUM_KEY_LEN) != 0 ||
        evs__unhex64(body + cut - 1 + EVS__CKSUM_KEY_LEN, &want) != 0) {
        evs__error_set(info, EVS_EPARSE, "syntax",
                       "snapshot body is malformed");
        return EVS_EPARSE;
    }
    if (first != want) {
        evs__error_set(info, EVS_ECORRUPT, "checksum",
                       "snapshot body checksum mismatch");
        return EVS_ECORRUPT;
    }
    *sum_len = cut;
    return 0;
}

/*
 * Every check of decoding, before anything is allocated: fills *h and
 * val[] (spans into buf) or returns the error, with *off the offset to
 * report.
 */
static int check_snapshot(const char *buf, size_t len, unsigned flags,
                          const sum_run *run, snap_hdr *h, evs_span val[N_JSON],
                          size_t *off, evs_error_info *info)
{
    const char *nl, *p, *hend, *body;
    size_t hdr_len, sum_len;
    uint64_t version;
    int rc;

    *off = 0;
    nl = len > 0 ? memchr(buf, '\n', len) : NULL;
    if (nl == NULL) {
        evs__error_set(info, EVS_EPARSE, "syntax",
                       "snapshot header has no newline");
        return EVS_EPARSE;
    }
    hdr_len = (size_t)(nl - buf) + 1;
    rc = evs__frame_check(buf, hdr_len, &sum_len);
    if (rc == EVS_ECORRUPT) {
        evs__error_set(info, rc, "checksum",
                       "snapshot header checksum mismatch");
        return rc;
    }
    if (rc != 0) {
        evs__error_set(info, rc, "syntax", "snapshot header is not framed");
        return rc;
    }
    hend = buf + sum_len - 1; /* on the comma before "checksum" */

    /* The version comes first so that a newer format is reported as such,
     * not as damage, whatever the rest of its header looks like. A comma
     * must end it (*hend is one), so that "01" is not read as 0. */
    p = buf;
    if (take_lit(&p, hend, hdr_open) != 0 ||
        evs__take_u64(&p, hend, &version) != 0 || *p != ',') {
        evs__error_set(info, EVS_EPARSE, "syntax",
                       "snapshot header has no version");
        return EVS_EPARSE;
    }
    if (version != EVS_FORMAT_VERSION) {
        evs__error_set(info, EVS_EFORMAT, "version",
                       "snapshot written in format %" PRIu64
                       ", this library reads %d",
                       version, EVS_FORMAT_VERSION);
        return EVS_EFORMAT;
    }
    if (parse_header(p, hend, h) != 0) {
        evs__error_set(info, EVS_EPARSE, "syntax",
                       "snapshot header is malformed");
        return EVS_EPARSE;
    }
    /* The layers above name files after the id; never hand on a bad one.
     * A valid id needs no escapes, so its raw form is the id. */
    if (!evs_id_valid(h->raw[0].ptr, h->raw[0].len)) {
        evs__error_set(info, EVS_EPARSE, "syntax",
                       "snapshot has an invalid id");
        return EVS_EPARSE;
    }
    evs__error_set_id(info, h->raw[0].ptr, h->raw[0].len);
    if (flags & EVS_SNAPSHOT_HEADER_ONLY)
        return 0;

    *off = hdr_len;
    body = buf + hdr_len;
    if (run != NULL && run->len != len)
        run = NULL; /* the read came up short: its sums are not these */
    if ((rc = check_body(body, len - hdr_len, h, run, &sum_len, info)) != 0)
        return rc;
    if (parse_body(body, body + sum_len - 1,
                   (flags & EVS_SNAPSHOT_STATE_RAW) != 0, val) != 0) {
        evs__error_set(info, EVS_EPARSE, "syntax",
                       "snapshot body is malformed");
        return EVS_EPARSE;
    }
    return 0;
}

/* The header's times and sequence, which need no bytes. */
static void fill_numbers(evs_snapshot *s, const snap_hdr *h)
{
    s->start_time_us = h->times[0];
    s->end_time_us = h->times[1];
    s->created_at_us = h->times[2];
    s->updated_at_us = h->times[3];
    s->last_event_seq = h->last_event_seq;
}

int evs_snapshot_decode(const char *buf, size_t len, unsigned flags,
                        const evs_allocator *alloc, evs_snapshot **out,
                        evs_error_info *info)
{
    evs_span val[N_JSON] = {{0}};
    size_t size, off = 0;
    snap_hdr h;
    snap_block *blk;
    char *o;
    int rc;

    evs_error_info_clear(info);
    if (out == NULL) {
        rc = -EINVAL;
        evs__error_set(info, rc, "", "no place for the result");
        goto out;
    }
    if ((rc = check_snapshot(buf, len, flags, NULL, &h, val, &off, info)) != 0)
        goto out;

    /* Everything is checked; only now allocate, exactly. */
    size = sizeof(*blk);
    for (int i = 0; i < N_STR; i++)
        size += h.ulen[i];
    for (int i = 0; i < N_JSON; i++)
        size += val[i].len;
    blk = evs__malloc(alloc, size);
    if (blk == NULL) {
        rc = -ENOMEM;
        evs__error_set(info, rc, "", "out of memory decoding a snapshot");
        goto out;
    }
    blk->alloc = alloc != NULL ? *alloc : *evs_default_allocator();
    blk->run = NULL;
    memset(&blk->snap, 0, sizeof(blk->snap));

    o = blk->bytes;
    for (int i = 0; i < N_STR; i++) {
        evs_span *sp = span_ref(&blk->snap, str_fields[i]);
        sp->ptr = o;
        sp->len = h.ulen[i];
        o = unescape(o, h.raw[i]);
    }
    fill_numbers(&blk->snap, &h);
    for (int i = 0; i < N_JSON; i++) {
        evs_span *sp = span_ref(&blk->snap, json_fields[i]);
        sp->ptr = o;
        sp->len = val[i].len;
        if (val[i].len > 0)
            o = put(o, val[i].ptr, val[i].len);
    }
    *out = &blk->snap;
    rc = 0;
out:
    if (rc != 0 && info != NULL)
        info->offset = off;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Decoding in the buffer read                                        */
/* ------------------------------------------------------------------ */

/* Buffers this large ask for transparent huge pages (see
 * replay/replay_mem.c): a snapshot of hundreds of MiB read into fresh
 * memory otherwise spends a good part of its read faulting in 4 KiB
 * pages. Only advice, and only for the C library's allocator (the
 * default one, which a store passes on as evs_default_allocator()). */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

static snap_block *block_of(char *bytes)
{
    return (snap_block *)(bytes - offsetof(snap_block, bytes));
}

char *evs__snapshot_buf(const evs_allocator *alloc, size_t len)
{
    size_t room = sizeof(sum_run) + _Alignof(sum_run);
    snap_block *blk;
    uintptr_t at;

    if (len > SIZE_MAX - sizeof(*blk) - room)
        return NULL;
    if ((blk = evs__malloc(alloc, sizeof(*blk) + len + room)) == NULL)
        return NULL;
#ifdef MADV_HUGEPAGE
    if ((alloc == NULL || alloc == evs_default_allocator()) &&
        len >= HUGE_MIN) {
        uintptr_t a =
            ((uintptr_t)blk->bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        uintptr_t b = ((uintptr_t)blk->bytes + len) & ~(HUGE_PAGE - 1);
        if (b > a)
            (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
    }
#endif
    blk->alloc = alloc != NULL ? *alloc : *evs_default_allocator();
    at = ((uintptr_t)blk->bytes + len + _Alignof(sum_run) - 1) &
         ~(uintptr_t)(_Alignof(sum_run) - 1);
    blk->run = (sum_run *)at;
    blk->run->len = len;
    blk->run->body = 0;
    blk->run->cut = 0;
    blk->run->done = 0;
    blk->run->first = 0;
    return blk->bytes;
}

void evs__snapshot_buf_filled(char *buf, size_t n)
{
    sum_run *run = block_of(buf)->run;
    const char *nl;

    if (run == NULL || n > run->len || n <= run->done)
        return;
    if (run->body == 0) {
        /* The body starts after the header's newline: until it is
         * there, nothing can be hashed. */
        if ((nl = memchr(buf, '\n', n)) == NULL)
            return;
        run->body = (size_t)(nl - buf) + 1;
        run->cut = run->body + body_cut(run->len - run->body);
        run->done = run->body;
        XXH3_64bits_reset(&run->st);
        if (run->cut == run->done)
            run->first = XXH3_64bits_digest(&run->st);
    }
    while (run->done < n) {
        size_t to = n;
        if (run->done < run->cut && to > run->cut)
            to = run->cut;
        SUM_UPDATE(&run->st, buf + run->done, to - run->done);
        run->done = to;
        if (to == run->cut)
            run->first = XXH3_64bits_digest(&run->st);
    }
}

void evs__snapshot_buf_free(char *buf)
{
    snap_block *blk;

    if (buf == NULL)
        return;
    blk = block_of(buf);
    blk->alloc.free(blk->alloc.ctx, blk);
}

int evs__snapshot_decode_buf(char *buf, size_t len, unsigned flags,
                             evs_snapshot **out, evs_error_info *info)
{
    evs_span val[N_JSON] = {{0}};
    snap_block *blk = block_of(buf);
    size_t off = 0;
    snap_hdr h;
    int rc;

    evs_error_info_clear(info);
    if (out == NULL) {
        evs__error_set(info, -EINVAL, "", "no place for the result");
        return -EINVAL;
    }
    if ((rc = check_snapshot(buf, len, flags, blk->run, &h, val, &off, info)) !=
        0) {
        if (info != NULL)
            info->offset = off;
        return rc;
    }
    /* The spans point where the fields were read; header strings are
     * unescaped where they stand (unescaping never grows). The header
     * is not read again, so overwriting its text is harmless. */
    memset(&blk->snap, 0, sizeof(blk->snap));
    for (int i = 0; i < N_STR; i++) {
        evs_span *sp = span_ref(&blk->snap, str_fields[i]);
        char *at = buf + (h.raw[i].ptr - buf);
        sp->ptr = at;
        sp->len = h.ulen[i];
        if (h.ulen[i] != h.raw[i].len)
            unescape(at, h.raw[i]);
    }
    fill_numbers(&blk->snap, &h);
    for (int i = 0; i < N_JSON; i++) {
        evs_span *sp = span_ref(&blk->snap, json_fields[i]);
        *sp = val[i];
        if (sp->len == 0)
            sp->ptr = buf; /* never NULL, as from evs_snapshot_decode */
    }
    *out = &blk->snap;
    return 0;
}
