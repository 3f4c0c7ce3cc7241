/*
 * line_foreign.c: decoding of event lines that are not canonical evstore
 * lines: Dive's, and any JSON object carrying the event fields in any
 * order. These go through json-c, strictly, with UTF-8 validation.
 *
 * Dive writes `path_id`, `step_name` and `data` only when they are set,
 * and timestamps as RFC 3339 with nanoseconds and a zone offset; all of
 * that is accepted here. `data` is re-serialised compactly.
 */
#include "formats_int.h"

#include <errno.h>
#include <json-c/json.h>

/* The json-c state a decoder keeps between calls. */
typedef struct foreign_state {
    struct json_tokener *tok;
    struct json_object *last; /* kept alive while views point into it */
} foreign_state;

int evs__decoder_reserve(evs_decoder *d, size_t n);

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
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(
                                                       v, json_type_null))
        return required ? -1 : 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    out->ptr = json_object_get_string(v);
    out->len = (size_t)json_object_get_string_len(v);
    return 0;
}

static int fail(evs_error_info *info, const char *what)
{
    evs__error_set(info, EVS_EPARSE, "syntax", "foreign event line: %s",
                   what);
    return EVS_EPARSE;
}

int evs__line_decode_foreign(evs_decoder *d, const char *line, size_t len,
                             evs_event *ev, evs_error_info *info)
{
    foreign_state *fs = d->priv;
    struct json_object *o, *v;
    evs_span ts;
    const char *js;
    size_t jlen, body;
    int rc;

    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    if (len > (size_t)INT32_MAX)
        return fail(info, "line too long for the JSON parser");
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

    memset(ev, 0, sizeof(*ev));
    if (get_str(o, "id", 1, &ev->id) || ev->id.len == 0)
        return fail(info, "missing or bad \"id\"");
    if (get_str(o, "execution_id", 0, &ev->execution_id))
        return fail(info, "bad \"execution_id\"");
    if (get_str(o, "path_id", 0, &ev->path_id))
        return fail(info, "bad \"path_id\"");
    if (get_str(o, "event_type", 1, &ev->event_type) ||
        ev->event_type.len == 0)
        return fail(info, "missing or bad \"event_type\"");
    if (get_str(o, "step_name", 0, &ev->step_name))
        return fail(info, "bad \"step_name\"");
    if (!json_object_object_get_ex(o, "sequence", &v) ||
        !json_object_is_type(v, json_type_int))
        return fail(info, "missing or bad \"sequence\"");
    errno = 0;
    {
        int64_t seq = json_object_get_int64(v);
        if (seq <= 0 || errno != 0)
            return fail(info, "\"sequence\" must be a positive integer");
        ev->sequence = (uint64_t)seq;
    }
    ev->batch_first = ev->sequence;
    ev->batch_count = 1;
    if (get_str(o, "timestamp", 1, &ts) ||
        evs_time_parse(ts.ptr, ts.len, &ev->timestamp_us) != 0)
        return fail(info, "missing or bad \"timestamp\"");

    /* A checksum is only meaningful with our framing; a line that claims
     * one without it has been rewritten and cannot be vouched for. */
    if (json_object_object_get_ex(o, "checksum", &v)) {
        if ((rc = evs__decoder_reserve(d, len + 1)) != 0)
            return rc;
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

    if (json_object_object_get_ex(o, "data", &v) &&
        !json_object_is_type(v, json_type_null)) {
        js = json_object_to_json_string_length(
            v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
            &jlen);
        if (!js)
            return -ENOMEM;
        ev->data.ptr = js;
        ev->data.len = jlen;
    } else {
        ev->data.ptr = "{}";
        ev->data.len = 2;
    }
    return 0;
}
