/*
 * fuzz_line.c: fuzz target for the event line decoder, evs_line_decode(),
 * on our canonical lines and on foreign (Dive) lines.
 *
 * Whatever the bytes, the decoder must not crash and must return one of
 * its documented codes. What it accepts must hold up:
 *  - a line accepted without EVS_DECODE_FOREIGN has a valid checksum
 *    (checked here with libxxhash, not with the library) and the fields a
 *    canonical line must have; the foreign decoder gives the same event;
 *  - an accepted event whose `data` is valid JSON can be written back
 *    with evs_line_encode(), and that line decodes to the same event: a
 *    line we read is a line we can write, which is what import, salvage
 *    and copying rely on; written with its data compacted beforehand
 *    (the recorder's way), the line is the same.
 */
#include "formats_shared.h"
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int known_code(int rc)
{
    return rc == 0 || rc == EVS_ECORRUPT || rc == EVS_EPARSE ||
           rc == EVS_EFORMAT;
}

static int same_event(const evs_event *a, const evs_event *b)
{
    return fuzz_span_eq(a->id, b->id) &&
           fuzz_span_eq(a->execution_id, b->execution_id) &&
           fuzz_span_eq(a->path_id, b->path_id) && a->sequence == b->sequence &&
           a->timestamp_us == b->timestamp_us &&
           fuzz_span_eq(a->event_type, b->event_type) &&
           fuzz_span_eq(a->step_name, b->step_name) &&
           a->batch_first == b->batch_first && a->batch_count == b->batch_count;
}

/* Re-encodes `ev` and decodes the result: the same event must come
 * back, with `data` minified. `ev` must stay valid meanwhile, so the
 * second decode uses its own decoder. */
static void round_trip(const evs_event *ev)
{
    evs_decoder d2;
    evs_event back, in = *ev;
    size_t cap, len, dlen, clen;
    char *buf, *mini, *cbuf;
    int rc;

    if (in.data.len &&
        evs_json_check(in.data.ptr, in.data.len, 0, NULL, NULL, NULL) != 0)
        return; /* unscanned data: FORMAT.md lets the checksum vouch */
    if (in.execution_id.len == 0)
        in.execution_id = evs_span_cstr("fz"); /* as the importer does */
    cap = evs_line_encoded_max(&in);
    buf = malloc(cap);
    mini = malloc(in.data.len + 3); /* room for "{}" */
    FUZZ_CHECK(buf && mini, "out of memory");
    rc = evs_line_encode(&in, buf, cap, &len);
    FUZZ_CHECK(rc == 0, "an accepted event cannot be encoded again");
    FUZZ_CHECK(len <= cap && buf[len - 1] == '\n',
               "encoded line overflows its bound or lacks its newline");
    FUZZ_CHECK(memchr(buf, '\n', len - 1) == NULL,
               "encoded line holds a raw newline");
    FUZZ_CHECK(fuzz_line_checksum_ok(buf, len),
               "encoded line has a bad checksum");

    evs_decoder_init(&d2, NULL);
    rc = evs_line_decode(&d2, buf, len, 0, &back, NULL);
    FUZZ_CHECK(rc == 0, "a line we wrote does not decode");
    FUZZ_CHECK(same_event(&in, &back), "re-encoded event reads back changed");
    if (in.data.len) {
        rc = evs_json_check(in.data.ptr, in.data.len, EVS_JSON_MINIFY, mini,
                            &dlen, NULL);
        FUZZ_CHECK(rc == 0, "data checked twice disagrees");
    } else {
        memcpy(mini, "{}", 2);
        dlen = 2;
    }
    FUZZ_CHECK(fuzz_span_eq(back.data, (evs_span){mini, dlen}),
               "data does not read back as its compact form");
    /* The recorder's way, data checked and compacted first and then
     * copied as it is (EVS__LINE_DATA_COMPACT): the same bytes. */
    in.data = (evs_span){mini, dlen};
    cbuf = malloc(cap);
    FUZZ_CHECK(cbuf != NULL, "out of memory");
    rc = evs__line_encode_flags(&in, cbuf, cap, &clen, EVS__LINE_DATA_COMPACT);
    FUZZ_CHECK(rc == 0 && clen == len && memcmp(cbuf, buf, len) == 0,
               "the line with checked data differs from evs_line_encode's");
    free(cbuf);
    /* The same decoder again: its cached timestamp must not leak. */
    rc = evs_line_decode(&d2, buf, len, EVS_DECODE_FOREIGN, &back, NULL);
    FUZZ_CHECK(rc == 0 && same_event(&in, &back),
               "second decode with a warm decoder differs");
    evs_decoder_free(&d2);
    free(mini);
    free(buf);
}

static void check_line(const char *line, size_t len)
{
    evs_decoder d, df;
    evs_event ev, fev;
    evs_error_info info;
    char *framed;
    int rc, frc;

    evs_decoder_init(&d, NULL);
    evs_decoder_init(&df, NULL);

    rc = evs_line_decode(&d, line, len, 0, &ev, &info);
    FUZZ_CHECK(known_code(rc), "undocumented return code (canonical)");
    frc = evs_line_decode(&df, line, len, EVS_DECODE_FOREIGN, &fev, &info);
    FUZZ_CHECK(known_code(frc), "undocumented return code (foreign)");

    if (rc == 0) {
        /* Only a framed line whose checksum matches may be accepted. */
        framed = malloc(len + 1);
        FUZZ_CHECK(framed != NULL, "out of memory");
        memcpy(framed, line, len);
        if (len == 0 || line[len - 1] != '\n')
            framed[len++] = '\n';
        FUZZ_CHECK(fuzz_line_checksum_ok(framed, len),
                   "accepted a line whose checksum does not match");
        FUZZ_CHECK(memcmp(line, "{\"v\":1,", 7) == 0,
                   "accepted a canonical line of another version");
        free(framed);
        FUZZ_CHECK(ev.sequence > 0 && ev.id.len && ev.execution_id.len &&
                       ev.event_type.len,
                   "accepted a line without its required fields");
        FUZZ_CHECK(ev.batch_count >= 1 && ev.batch_first <= ev.sequence &&
                       ev.sequence - ev.batch_first < ev.batch_count,
                   "accepted a batch that does not hold the event");
        FUZZ_CHECK(frc == 0 && same_event(&ev, &fev) &&
                       fuzz_span_eq(ev.data, fev.data),
                   "foreign decoding of a canonical line differs");
        round_trip(&ev);
    }
    /* A line that starts with {"v": is held to the canonical rules even
     * with EVS_DECODE_FOREIGN; the rest are truly foreign. */
    if (frc == 0 && !(len >= 5 && memcmp(line, "{\"v\":", 5) == 0)) {
        FUZZ_CHECK(fev.sequence > 0 && fev.id.len && fev.event_type.len,
                   "foreign line accepted without its required fields");
        FUZZ_CHECK(fev.data.len > 0 &&
                       evs_json_check(fev.data.ptr, fev.data.len, 0, NULL, NULL,
                                      NULL) == 0,
                   "foreign line gave data that is not JSON");
        round_trip(&fev);
    }
    evs_decoder_free(&df);
    evs_decoder_free(&d);
}

FUZZ_ENTRY(line)
{
    char *buf;

    if (size > 0 && data[0] == FUZZ_FIX_MARK) {
        /* A copy, so the decoder cannot read past the fixed bytes. */
        buf = malloc(size - 1 ? size - 1 : 1);
        FUZZ_CHECK(buf != NULL, "out of memory");
        memcpy(buf, data + 1, size - 1);
        fuzz_fix_lines(buf, size - 1);
        check_line(buf, size - 1);
    } else {
        buf = malloc(size ? size : 1);
        FUZZ_CHECK(buf != NULL, "out of memory");
        memcpy(buf, data, size);
        check_line(buf, size);
    }
    free(buf);
    return 0;
}
