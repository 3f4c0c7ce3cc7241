/*
 * fuzz_snapshot.c: fuzz target for the snapshot parser,
 * evs_snapshot_decode(), whole and header-only.
 *
 * Whatever the bytes, decoding must not crash and must return one of its
 * documented codes. What it accepts must hold up:
 *  - the header line's checksum matches (checked here with libxxhash);
 *    a whole decode also means the body's checksum and binding match;
 *  - a header-only decode of an accepted snapshot gives the same header;
 *  - the id is a valid execution id (files are named after it);
 *  - a snapshot whose JSON fields are valid JSON and whose times can be
 *    written can be encoded again, and that decodes to the same fields;
 *  - evs_snapshot_copy() gives the same fields.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int known_code(int rc)
{
    return rc == 0 || rc == EVS_ECORRUPT || rc == EVS_EPARSE ||
           rc == EVS_EFORMAT;
}

static int same_header(const evs_snapshot *a, const evs_snapshot *b)
{
    return fuzz_span_eq(a->id, b->id) &&
           fuzz_span_eq(a->workflow_name, b->workflow_name) &&
           fuzz_span_eq(a->workflow_hash, b->workflow_hash) &&
           fuzz_span_eq(a->inputs_hash, b->inputs_hash) &&
           fuzz_span_eq(a->status, b->status) &&
           a->start_time_us == b->start_time_us &&
           a->end_time_us == b->end_time_us &&
           a->created_at_us == b->created_at_us &&
           a->updated_at_us == b->updated_at_us &&
           a->last_event_seq == b->last_event_seq;
}

static int same_body(const evs_snapshot *a, const evs_snapshot *b)
{
    return fuzz_span_eq(a->workflow_data, b->workflow_data) &&
           fuzz_span_eq(a->inputs, b->inputs) &&
           fuzz_span_eq(a->outputs, b->outputs) &&
           fuzz_span_eq(a->error, b->error) &&
           fuzz_span_eq(a->lineage, b->lineage) &&
           fuzz_span_eq(a->state, b->state);
}

static int json_ok(evs_span j)
{
    return j.len == 0 || evs_json_check(j.ptr, j.len, 0, NULL, NULL, NULL) == 0;
}

static int time_ok(int64_t us)
{
    char buf[EVS_TIME_LEN + 1];

    return us == 0 || evs_time_format(us, buf) == 0;
}

/* Whether the JSON field is already compact: the encoder minifies. */
static int compact(evs_span j)
{
    size_t n;

    return j.len == 0 || (evs_json_check(j.ptr, j.len, EVS_JSON_MINIFY, NULL,
                                         &n, NULL) == 0 &&
                          n == j.len);
}

static void round_trip(const evs_snapshot *s)
{
    evs_snapshot *back = NULL;
    char *enc = NULL;
    size_t len = 0;
    int rc;

    if (!json_ok(s->workflow_data) || !json_ok(s->inputs) ||
        !json_ok(s->outputs) || !json_ok(s->error) || !json_ok(s->lineage) ||
        !json_ok(s->state) || !time_ok(s->start_time_us) ||
        !time_ok(s->end_time_us) || !time_ok(s->created_at_us) ||
        !time_ok(s->updated_at_us))
        return; /* the checksums vouch for what the writer wrote */
    rc = evs_snapshot_encode(s, NULL, &enc, &len);
    FUZZ_CHECK(rc == 0, "an accepted snapshot cannot be encoded again");
    rc = evs_snapshot_decode(enc, len, 0, NULL, &back, NULL);
    FUZZ_CHECK(rc == 0, "a snapshot we wrote does not decode");
    FUZZ_CHECK(same_header(s, back), "re-encoded header reads back changed");
    if (compact(s->workflow_data) && compact(s->inputs) &&
        compact(s->outputs) && compact(s->error) && compact(s->lineage) &&
        compact(s->state))
        FUZZ_CHECK(same_body(s, back), "re-encoded body reads back changed");
    evs_snapshot_free(back);
    free(enc);
}

static void check(const char *buf, size_t len)
{
    evs_snapshot *full = NULL, *hdr = NULL, *copy = NULL;
    evs_error_info info;
    const char *nl;
    int rc, hrc;

    rc = evs_snapshot_decode(buf, len, 0, NULL, &full, &info);
    FUZZ_CHECK(known_code(rc), "undocumented return code (whole)");
    FUZZ_CHECK(rc == 0 || info.code == rc, "info does not carry the code");
    hrc = evs_snapshot_decode(buf, len, EVS_SNAPSHOT_HEADER_ONLY, NULL, &hdr,
                              &info);
    FUZZ_CHECK(known_code(hrc), "undocumented return code (header only)");
    FUZZ_CHECK(rc != 0 || hrc == 0,
               "a whole snapshot decodes but its header alone does not");

    if (hrc == 0) {
        nl = memchr(buf, '\n', len);
        FUZZ_CHECK(nl && fuzz_line_checksum_ok(buf, (size_t)(nl - buf) + 1),
                   "accepted a header whose checksum does not match");
        FUZZ_CHECK(memcmp(buf, "{\"v\":1,", 7) == 0,
                   "accepted a snapshot of another version");
        FUZZ_CHECK(evs_id_valid(hdr->id.ptr, hdr->id.len),
                   "accepted a snapshot with an invalid id");
        FUZZ_CHECK(hdr->workflow_data.len == 0 && hdr->state.len == 0,
                   "a header-only decode filled in body fields");
    }
    if (rc == 0) {
        size_t hl = (size_t)((const char *)memchr(buf, '\n', len) - buf) + 1;
        FUZZ_CHECK(fuzz_line_checksum_ok(buf + hl, len - hl),
                   "accepted a body whose checksum does not match");
        FUZZ_CHECK(same_header(full, hdr),
                   "header-only decode differs from the whole decode");
        rc = evs_snapshot_copy(full, NULL, &copy);
        FUZZ_CHECK(rc == 0 || rc == -ENOMEM, "copy failed");
        if (rc == 0) {
            FUZZ_CHECK(same_header(full, copy) && same_body(full, copy),
                       "copy differs from the original");
            evs_snapshot_free(copy);
        }
        round_trip(full);
    }
    evs_snapshot_free(hdr);
    evs_snapshot_free(full);
}

FUZZ_ENTRY(snapshot)
{
    char *buf;
    size_t len;

    if (size > 0 && data[0] == FUZZ_FIX_MARK) {
        buf = fuzz_fix_snapshot((const char *)data + 1, size - 1, &len);
        FUZZ_CHECK(buf != NULL, "out of memory");
    } else {
        buf = malloc(size ? size : 1);
        FUZZ_CHECK(buf != NULL, "out of memory");
        memcpy(buf, data, size);
        len = size;
    }
    check(buf, len);
    free(buf);
    return 0;
}
