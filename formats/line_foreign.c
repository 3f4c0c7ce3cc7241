/*
 * line_foreign.c: decoding of event lines that are not canonical evstore
 * lines: Dive's, and any JSON object carrying the event fields in any
 * order (FORMAT.md, "Foreign lines").
 *
 * Dive writes `path_id`, `step_name` and `data` only when they are set,
 * and timestamps as RFC 3339 with nanoseconds and a zone offset; all of
 * that is accepted here. A null counts as absent (a nil Go map is written
 * as null), absent `data` reads as {}, and `execution_id` may be missing,
 * for the importer to supply. Members that are not event fields are
 * ignored.
 *
 * json-c alone is not strict enough to be trusted with these lines, so
 * the line is checked with evs_json_check() first and json-c is used only
 * for the string fields. json-c (0.16) accepts NaN, Infinity and "1.", lets
 * UTF-8-encoded surrogates through, clamps integers beyond 64 bits to the
 * nearest limit, turns -0 into 0, keeps the last of duplicate members and
 * cuts member names at an escaped NUL. So:
 *  - `sequence` is read from its text, and must be a plain decimal integer;
 *  - `data` is the member's exact text with insignificant whitespace
 *    removed, never json-c's reprint, so its numbers stay exact
 *    (FORMAT.md, "Numbers") and its duplicate members, if any, are kept
 *    as they are in a canonical line;
 *  - an event field that occurs twice (as json-c sees names, that is up
 *    to an escaped NUL) makes the line ambiguous, and it is refused.
 */
#include "formats_int.h"

#include <assert.h>
#include <errno.h>
#include <json-c/json.h>

/* The json-c state a decoder keeps between calls. */
typedef struct foreign_state {
    struct json_tokener *tok;
    struct json_object *last; /* kept alive while views point into it */
} foreign_state;

void evs__decoder_foreign_free(evs_decoder *d)
{
    foreign_state *fs = d->priv;

    if (!fs)
        return;
    if (fs->last)
        json_object_put(fs->last);
    if (fs->tok)
        json_tokener_free(fs->tok);
    evs__free(d->alloc, fs);
    d->priv = NULL;
}

static int get_str(struct json_object *o, const char *key, int required,
                   evs_span *out)
{
    struct json_object *v;

    out->ptr = "";
    out->len = 0;
    if (!json_object_object_get_ex(o, key, &v) ||
        json_object_is_type(v, json_type_null))
        return required ? -1 : 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    out->ptr = json_object_get_string(v);
    out->len = (size_t)json_object_get_string_len(v);
    return 0;
}

static int fail(evs_error_info *info, const char *what)
{
    evs__error_set(info, EVS_EPARSE, "syntax", "foreign event line: %s", what);
    return EVS_EPARSE;
}

/* ------------------------------------------------------------------ */
/* The members as written                                             */
/* ------------------------------------------------------------------ */

/*
 * The walk below only ever sees text that evs_json_check() accepted, so it
 * need not check syntax; it still never reads past `end`.
 */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p is at the opening quote; returns the byte after the closing one. */
static const char *skip_str(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

/* Returns the byte after the value that starts at p. */
static const char *skip_value(const char *p, const char *end)
{
    size_t depth = 0;

    while (p < end) {
        char c = *p;

        if (c == '"') {
            p = skip_str(p, end);
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            depth--;
            p++;
        } else if (depth > 0) {
            p++; /* separators, whitespace and scalars inside */
            continue;
        } else {
            while (p < end && *p != ',' && *p != '}' && *p != ']' &&
                   *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                p++;
        }
        if (depth == 0)
            break;
    }
    return p;
}

enum {
    F_ID,
    F_EXEC,
    F_PATH,
    F_SEQ,
    F_TIME,
    F_TYPE,
    F_STEP,
    F_DATA,
    F_CKSUM,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "id",         "execution_id", "path_id", "sequence", "timestamp",
    "event_type", "step_name",    "data",    "checksum",
};

/* The raw text of the event fields' values. */
typedef struct members {
    evs_span val[F_COUNT]; /* ptr NULL when absent */
} members;

/* Which field the name key[0..n) stands for, as json-c sees names (up to
 * the first NUL), or -1. `tmp` has room for n bytes. */
static int field_of(const char *key, size_t n, char *tmp)
{
    const char *nul;

    if (memchr(key, '\\', n)) {
        n = evs__json_unescape(key, n, tmp);
        if (n == (size_t)-1)
            return -1;
        key = tmp;
        if ((nul = memchr(key, '\0', n)) != NULL)
            n = (size_t)(nul - key);
    }
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(field_names[i]) == n && memcmp(key, field_names[i], n) == 0)
            return i;
    return -1;
}

/*
 * Finds the values of the event fields in the object line[0..len). `tmp`
 * has room for len bytes. Returns 0, or -1 when a field occurs twice.
 */
static int find_members(const char *line, size_t len, char *tmp, members *m)
{
    const char *p = line, *end = line + len, *k, *ke, *v;
    int f;

    memset(m, 0, sizeof(*m));
    p = skip_ws(p, end);
    if (p == end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        k = p;
        ke = skip_str(p, end);
        f = field_of(k + 1, (size_t)(ke - k) - 2, tmp);
        p = skip_ws(ke, end);
        if (p < end) /* the colon */
            p++;
        v = skip_ws(p, end);
        p = skip_value(v, end);
        if (f >= 0) {
            if (m->val[f].ptr)
                return -1;
            m->val[f].ptr = v;
            m->val[f].len = (size_t)(p - v);
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return 0;
}

/* A positive decimal integer, as FORMAT.md writes `sequence`. */
static int parse_seq(evs_span s, uint64_t *v)
{
    uint64_t r = 0;

    if (s.len == 0 || s.ptr[0] == '0')
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        unsigned dgt = (unsigned)(s.ptr[i] - '0');
        if (dgt > 9 || r > (UINT64_MAX - dgt) / 10)
            return -1;
        r = r * 10 + dgt;
    }
    *v = r;
    return 0;
}

int evs__line_decode_foreign(evs_decoder *d, const char *line, size_t len,
                             evs_event *ev, evs_error_info *info)
{
    foreign_state *fs = d->priv;
    struct json_object *o;
    char ts[EVS_TIME_LEN + 1];
    evs_span tstr, data;
    members m;
    size_t body, dlen;
    int rc;

    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    if (len > (size_t)INT32_MAX)
        return fail(info, "line too long for the JSON parser");
    if (evs_json_check(line, len, 0, NULL, NULL, NULL) != 0)
        return fail(info, "not valid JSON");
    if (!fs) {
        fs = evs__calloc(d->alloc, sizeof(*fs));
        if (!fs)
            return -ENOMEM;
        fs->tok = json_tokener_new_ex(EVS_JSON_DEPTH_MAX);
        if (!fs->tok) {
            evs__free(d->alloc, fs);
            return -ENOMEM;
        }
        json_tokener_set_flags(fs->tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);
        d->priv = fs;
    }
    if (fs->last) {
        json_object_put(fs->last);
        fs->last = NULL;
    }
    json_tokener_reset(fs->tok);
    o = json_tokener_parse_ex(fs->tok, line, (int)len);
    if (!o || json_tokener_get_error(fs->tok) != json_tokener_success ||
        json_tokener_get_parse_end(fs->tok) != len) {
        if (o)
            json_object_put(o);
        return fail(info, "not one valid JSON object");
    }
    fs->last = o;
    if (!json_object_is_type(o, json_type_object))
        return fail(info, "not a JSON object");
    if ((rc = evs__decoder_reserve(d, len + 1)) != 0)
        return rc;
    if (find_members(line, len, d->buf, &m) != 0)
        return fail(info, "an event field occurs more than once");

    memset(ev, 0, sizeof(*ev));
    if (get_str(o, "id", 1, &ev->id) || ev->id.len == 0)
        return fail(info, "missing or bad \"id\"");
    if (get_str(o, "execution_id", 0, &ev->execution_id))
        return fail(info, "bad \"execution_id\"");
    if (get_str(o, "path_id", 0, &ev->path_id))
        return fail(info, "bad \"path_id\"");
    if (get_str(o, "event_type", 1, &ev->event_type) || ev->event_type.len == 0)
        return fail(info, "missing or bad \"event_type\"");
    if (get_str(o, "step_name", 0, &ev->step_name))
        return fail(info, "bad \"step_name\"");
    if (parse_seq(m.val[F_SEQ], &ev->sequence) != 0)
        return fail(info, "\"sequence\" must be a positive integer of at "
                          "most 64 bits");
    ev->batch_first = ev->sequence;
    ev->batch_count = 1;
    /* Only times that a canonical line can carry. */
    if (get_str(o, "timestamp", 1, &tstr) ||
        evs_time_parse(tstr.ptr, tstr.len, &ev->timestamp_us) != 0 ||
        evs_time_format(ev->timestamp_us, ts) != 0)
        return fail(info, "missing or bad \"timestamp\"");

    /* A checksum is only meaningful with our framing; a line that claims
     * one without it has been rewritten and cannot be vouched for. */
    if (m.val[F_CKSUM].ptr) {
        memcpy(d->buf, line, len);
        d->buf[len] = '\n';
        rc = evs__frame_check(d->buf, len + 1, &body);
        if (rc == EVS_ECORRUPT) {
            evs__error_set(info, rc, "checksum", "checksum mismatch");
            return rc;
        }
        if (rc != 0)
            return fail(info, "\"checksum\" present but the line is not "
                              "framed as FORMAT.md requires");
    }

    /* Last, as it takes over the scratch. */
    data = m.val[F_DATA];
    if (!data.ptr || (data.len == 4 && memcmp(data.ptr, "null", 4) == 0)) {
        ev->data.ptr = "{}";
        ev->data.len = 2;
    } else {
        /* A member of the line that evs_json_check accepted above. */
        int bad = evs_json_check(data.ptr, data.len, EVS_JSON_MINIFY, d->buf,
                                 &dlen, NULL);
        assert(bad == 0);
        (void)bad;
        ev->data.ptr = d->buf;
        ev->data.len = dlen;
    }
    return 0;
}
