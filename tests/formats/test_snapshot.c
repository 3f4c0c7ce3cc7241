/*
 * test_snapshot.c: the snapshot codec. Round trips, the exact bytes of
 * the format, and rejection of every kind of damage: bit flips,
 * truncation, a body from another snapshot, a newer version, and forged
 * checksums over malformed content (which must fail without reading out
 * of bounds; run under ASan to see that).
 */
#include <criterion/criterion.h>

#include "formats_int.h"
#include "workflow_int.h"
#include "tu_alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Criterion runs each test in a child that LeakSanitizer does not check
 * at exit, so under ASan every test ends with an explicit leak check.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SNAP_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SNAP_LSAN 1
#endif
#endif

#ifdef SNAP_LSAN
#include <sanitizer/lsan_interface.h>

static void leak_check(void)
{
    /* An assertion in .fini is not counted; a crash is. */
    if (__lsan_do_recoverable_leak_check() != 0)
        abort();
}
TestSuite(snapshot, .fini = leak_check);
#endif

/* 2026-11-22T10:15:30.123456Z and neighbours. */
#define T0 INT64_C(1795342530123456)

static evs_span sp(const char *s)
{
    return evs_span_cstr(s);
}

static void assert_span(evs_span got, const char *want)
{
    size_t n = strlen(want);

    cr_assert_eq(got.len, n, "length %zu, want %zu (\"%s\")", got.len, n, want);
    if (n > 0)
        cr_assert(memcmp(got.ptr, want, n) == 0, "got \"%.*s\", want \"%s\"",
                  (int)got.len, got.ptr, want);
}

static evs_snapshot full_snapshot(void)
{
    evs_snapshot s;

    memset(&s, 0, sizeof(s));
    s.id = sp("0192f1a2-7b3c-7def-8a12-3456789abcde");
    s.workflow_name = sp("say \"hi\" \\ to Zürich ☃ 😀\n\ttab\x01");
    s.workflow_hash = sp("sha256:abcdef");
    s.inputs_hash = sp("sha256:012345");
    s.status = sp("running");
    s.start_time_us = T0;
    s.end_time_us = T0 + 1;
    s.created_at_us = T0 - 1000000;
    s.updated_at_us = -1; /* 1969-12-31T23:59:59.999999Z */
    s.last_event_seq = UINT64_MAX;
    s.workflow_data = sp("{\n  \"name\": \"wf\",\n  \"steps\": [1, 2,\t3]\n}");
    s.inputs = sp("  [ \"a b\" , {\"k\" : \"v\\n\\\"\"} ]\r\n");
    s.outputs = sp("\"done\"");
    s.error = sp("{\"type\":\"Timeout\",\"msg\":\"ünïcode \\ud83d\\ude00\"}");
    s.lineage = sp("{\"continued_from\":\"exec-1\",\"retry_of\":null}");
    s.state = sp("-12.5e3");
    return s;
}

static void encode_ok(const evs_snapshot *s, char **buf, size_t *len)
{
    int rc = evs_snapshot_encode(s, NULL, buf, len);

    cr_assert_eq(rc, 0, "encode: %s", evs_err_name(rc));
}

static size_t header_len(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);

    cr_assert(nl != NULL);
    return (size_t)(nl - buf) + 1;
}

/*
 * Builds a snapshot from hand-written content with valid checksums and a
 * valid binding: `hdr` is the header up to and including the comma before
 * "body_len", `body` the body up to and including the comma before
 * "checksum". Lets the tests feed malformed content past the checksums.
 */
static size_t forge(const char *hdr, const char *body, char *out, size_t cap)
{
    size_t hn, bn, blen;
    char tail[96], hex[17];
    char *b;

    bn = strlen(body);
    hn = strlen(hdr);
    cr_assert(hn + bn + 2 * EVS__CKSUM_TAIL_LEN + 64 < cap);
    /* The body's length is needed in the header before the body is in
     * place, so seal it at the end of `out` first, then move it. */
    b = out + cap - bn - EVS__CKSUM_TAIL_LEN;
    memcpy(b, body, bn);
    blen = evs__frame_seal(b, bn);
    evs__hex64(evs_checksum(b, blen), hex);
    hex[16] = '\0';
    snprintf(tail, sizeof(tail), "\"body_len\":%zu,\"body_checksum\":\"%s\",",
             blen, hex);
    memcpy(out, hdr, hn);
    memcpy(out + hn, tail, strlen(tail));
    hn = evs__frame_seal(out, hn + strlen(tail));
    memmove(out + hn, b, blen);
    return hn + blen;
}

/* Recomputes the header's checksum after a test edited it in place. */
static void reseal_header(char *buf, size_t hdr_len)
{
    size_t n = evs__frame_seal(buf, hdr_len - EVS__CKSUM_TAIL_LEN);

    cr_assert_eq(n, hdr_len);
}

#define HDR_PRE                                                                \
    "{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":\"w\","    \
    "\"workflow_hash\":\"\",\"inputs_hash\":\"\",\"status\":\"running\","      \
    "\"start_time\":null,\"end_time\":null,\"created_at\":null,"               \
    "\"updated_at\":null,\"last_event_seq\":3,"
#define BODY_PRE                                                               \
    "{\"workflow_data\":null,\"inputs\":null,\"outputs\":null,"                \
    "\"error\":null,\"lineage\":null,\"state\":"

/* ------------------------------------------------------------------ */

Test(snapshot, round_trip_all_fields)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    evs_error_info info;
    char *buf;
    size_t len, hl;
    int rc;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    /* Exactly two lines: escapes and minifying left no raw newline. */
    cr_assert_eq(buf[len - 1], '\n');
    cr_assert(memchr(buf + hl, '\n', len - hl - 1) == NULL);

    rc = evs_snapshot_decode(buf, len, 0, NULL, &d, &info);
    cr_assert_eq(rc, 0, "decode: %s %s", evs_err_name(rc), info.msg);
    cr_assert(evs__span_eq(d->id, s.id));
    cr_assert(evs__span_eq(d->workflow_name, s.workflow_name));
    cr_assert(evs__span_eq(d->workflow_hash, s.workflow_hash));
    cr_assert(evs__span_eq(d->inputs_hash, s.inputs_hash));
    cr_assert(evs__span_eq(d->status, s.status));
    cr_assert_eq(d->start_time_us, s.start_time_us);
    cr_assert_eq(d->end_time_us, s.end_time_us);
    cr_assert_eq(d->created_at_us, s.created_at_us);
    cr_assert_eq(d->updated_at_us, s.updated_at_us);
    cr_assert_eq(d->last_event_seq, UINT64_MAX);
    assert_span(d->workflow_data, "{\"name\":\"wf\",\"steps\":[1,2,3]}");
    assert_span(d->inputs, "[\"a b\",{\"k\":\"v\\n\\\"\"}]");
    assert_span(d->outputs, "\"done\"");
    assert_span(d->error,
                "{\"type\":\"Timeout\",\"msg\":\"ünïcode \\ud83d\\ude00\"}");
    assert_span(d->lineage,
                "{\"continued_from\":\"exec-1\",\"retry_of\":null}");
    assert_span(d->state, "-12.5e3");
    evs_snapshot_free(d);
    free(buf);
}

Test(snapshot, round_trip_empty_fields)
{
    evs_snapshot s, *d = NULL;
    char *buf;
    size_t len;
    int rc;

    memset(&s, 0, sizeof(s));
    s.id = sp("x");
    encode_ok(&s, &buf, &len);
    cr_assert(memmem(buf, len, "\"workflow_name\":\"\"", 18) != NULL);
    cr_assert(memmem(buf, len, "\"start_time\":null", 17) != NULL);
    cr_assert(memmem(buf, len, "\"state\":null", 12) != NULL);

    rc = evs_snapshot_decode(buf, len, 0, NULL, &d, NULL);
    cr_assert_eq(rc, 0, "decode: %s", evs_err_name(rc));
    assert_span(d->id, "x");
    assert_span(d->workflow_name, "");
    assert_span(d->status, "");
    cr_assert_eq(d->start_time_us, 0);
    cr_assert_eq(d->updated_at_us, 0);
    cr_assert_eq(d->last_event_seq, 0);
    assert_span(d->workflow_data, "");
    assert_span(d->inputs, "");
    assert_span(d->state, "");
    evs_snapshot_free(d);
    free(buf);
}

/* The bytes, field for field, as FORMAT.md gives them. */
Test(snapshot, encode_matches_format)
{
    evs_snapshot s;
    char want[1024], hex[17], *buf;
    size_t len, n, blen;

    memset(&s, 0, sizeof(s));
    s.id = sp("e1");
    s.workflow_name = sp("w\"1");
    s.status = sp("paused");
    s.created_at_us = T0;
    s.last_event_seq = 42;
    s.inputs = sp("{ \"a\" : 1 }");
    s.state = sp("[]");
    encode_ok(&s, &buf, &len);

    n = (size_t)snprintf(want, sizeof(want), "%s",
                         "{\"workflow_data\":null,\"inputs\":{\"a\":1},"
                         "\"outputs\":null,\"error\":null,"
                         "\"lineage\":null,\"state\":[],");
    blen = evs__frame_seal(want, n);
    evs__hex64(evs_checksum(want, blen), hex);
    hex[16] = '\0';
    cr_assert_eq(len - header_len(buf, len), blen);
    cr_assert(memcmp(buf + len - blen, want, blen) == 0, "body: %.*s",
              (int)blen, buf + len - blen);

    n = (size_t)snprintf(
        want, sizeof(want),
        "{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
        "\"w\\\"1\",\"workflow_hash\":\"\",\"inputs_hash\":\"\","
        "\"status\":\"paused\",\"start_time\":null,\"end_time\":null,"
        "\"created_at\":\"2026-11-22T10:15:30.123456Z\",\"updated_at\":null,"
        "\"last_event_seq\":42,\"body_len\":%zu,\"body_checksum\":\"%s\",",
        blen, hex);
    n = evs__frame_seal(want, n);
    cr_assert_eq(header_len(buf, len), n);
    cr_assert(memcmp(buf, want, n) == 0, "header: %.*s\nwant:   %.*s", (int)n,
              buf, (int)n, want);
    free(buf);
}

Test(snapshot, header_only)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    char *buf;
    size_t len, hl;
    int rc;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    /* The whole file, the header alone and the header with part of the
     * body all give the header fields and empty JSON fields. */
    size_t lens[] = {len, hl, hl + 1, len - 1};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        rc = evs_snapshot_decode(buf, lens[i], EVS_SNAPSHOT_HEADER_ONLY, NULL,
                                 &d, NULL);
        cr_assert_eq(rc, 0, "len %zu: %s", lens[i], evs_err_name(rc));
        cr_assert(evs__span_eq(d->id, s.id));
        cr_assert(evs__span_eq(d->workflow_name, s.workflow_name));
        cr_assert(evs__span_eq(d->status, s.status));
        cr_assert_eq(d->start_time_us, s.start_time_us);
        cr_assert_eq(d->last_event_seq, s.last_event_seq);
        cr_assert_eq(d->workflow_data.len, 0);
        cr_assert_eq(d->state.len, 0);
        evs_snapshot_free(d);
        d = NULL;
    }
    /* Damage to the body goes unseen when only the header is read. */
    buf[len - 5] ^= 1;
    rc =
        evs_snapshot_decode(buf, len, EVS_SNAPSHOT_HEADER_ONLY, NULL, &d, NULL);
    cr_assert_eq(rc, 0);
    evs_snapshot_free(d);
    free(buf);
}

Test(snapshot, every_bit_flip_is_rejected)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    evs_error_info info;
    char *buf;
    size_t len, hl;
    int rc;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1u << bit);
            d = NULL;
            rc = evs_snapshot_decode(buf, len, 0, NULL, &d, &info);
            cr_assert(rc == EVS_ECORRUPT || rc == EVS_EPARSE,
                      "byte %zu bit %d: %s", i, bit, evs_err_name(rc));
            cr_assert_eq(info.code, rc);
            cr_assert_null(d);
            if (i < hl) {
                rc = evs_snapshot_decode(buf, len, EVS_SNAPSHOT_HEADER_ONLY,
                                         NULL, &d, NULL);
                cr_assert(rc == EVS_ECORRUPT || rc == EVS_EPARSE,
                          "header only, byte %zu bit %d: %s", i, bit,
                          evs_err_name(rc));
            }
            buf[i] ^= (char)(1u << bit);
        }
    }
    cr_assert_eq(evs_snapshot_decode(buf, len, 0, NULL, &d, NULL), 0);
    evs_snapshot_free(d);
    free(buf);
}

Test(snapshot, every_truncation_is_rejected)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    char *buf, *cut;
    size_t len, hl;
    int rc;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so that ASan sees any overread. */
        cut = malloc(n ? n : 1);
        cr_assert_not_null(cut);
        memcpy(cut, buf, n);
        rc = evs_snapshot_decode(cut, n, 0, NULL, &d, NULL);
        cr_assert(rc == EVS_ECORRUPT || rc == EVS_EPARSE, "len %zu: %s", n,
                  evs_err_name(rc));
        rc = evs_snapshot_decode(cut, n, EVS_SNAPSHOT_HEADER_ONLY, NULL, &d,
                                 NULL);
        if (n < hl) {
            cr_assert(rc == EVS_ECORRUPT || rc == EVS_EPARSE,
                      "header only, len %zu: %s", n, evs_err_name(rc));
        } else {
            cr_assert_eq(rc, 0, "header only, len %zu", n);
            evs_snapshot_free(d);
        }
        free(cut);
    }
    free(buf);
}

/* Trailing bytes after the body are damage too. */
Test(snapshot, trailing_bytes_are_rejected)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    evs_error_info info;
    char *buf, *big;
    size_t len;

    encode_ok(&s, &buf, &len);
    big = malloc(len + 1);
    cr_assert_not_null(big);
    memcpy(big, buf, len);
    big[len] = '\n';
    cr_assert_eq(evs_snapshot_decode(big, len + 1, 0, NULL, &d, &info),
                 EVS_ECORRUPT);
    cr_assert_str_eq(info.kind, "binding");
    free(big);
    free(buf);
}

static void swap_bodies(const char *ida, const char *idb, const char *state_b)
{
    evs_snapshot a = full_snapshot(), b = full_snapshot(), *d = NULL;
    evs_error_info info;
    char *ba, *bb, *mix;
    size_t la, lb, ha, hb;

    a.id = sp(ida);
    b.id = sp(idb);
    b.state = sp(state_b);
    encode_ok(&a, &ba, &la);
    encode_ok(&b, &bb, &lb);
    ha = header_len(ba, la);
    hb = header_len(bb, lb);
    mix = malloc(ha + lb - hb);
    cr_assert_not_null(mix);
    memcpy(mix, ba, ha);
    memcpy(mix + ha, bb + hb, lb - hb);
    cr_assert_eq(evs_snapshot_decode(mix, ha + lb - hb, 0, NULL, &d, &info),
                 EVS_ECORRUPT);
    cr_assert_str_eq(info.kind, "binding");
    cr_assert_str_eq(info.execution_id, ida);
    cr_assert_eq(info.offset, ha);
    cr_assert_null(d);
    free(mix);
    free(ba);
    free(bb);
}

Test(snapshot, swapped_body_is_rejected)
{
    /* Same length (only the checksum tells them apart), then different. */
    swap_bodies("exec-a", "exec-b", "-12.5e4");
    swap_bodies("exec-a", "exec-b", "{\"counter\":7}");
}

Test(snapshot, newer_version_is_reported)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    evs_error_info info;
    char *buf, *big;
    size_t len, hl;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    cr_assert(memcmp(buf, "{\"v\":1,", 7) == 0);
    buf[5] = '2';
    reseal_header(buf, hl);
    cr_assert_eq(evs_snapshot_decode(buf, len, 0, NULL, &d, &info),
                 EVS_EFORMAT);
    cr_assert_str_eq(info.msg,
                     "snapshot written in format 2, this library reads 1");
    cr_assert_eq(
        evs_snapshot_decode(buf, hl, EVS_SNAPSHOT_HEADER_ONLY, NULL, &d, NULL),
        EVS_EFORMAT);
    /* Without a correct checksum it is damage, not a version. */
    buf[hl - 4] = buf[hl - 4] == '0' ? '1' : '0';
    cr_assert_eq(evs_snapshot_decode(buf, len, 0, NULL, &d, &info),
                 EVS_ECORRUPT);
    cr_assert_str_eq(info.kind, "checksum");

    /* A longer version number with the rest of the header unknown. */
    big = malloc(len + 1);
    cr_assert_not_null(big);
    static const char future[] = "{\"v\":12,\"future\":true,";
    memcpy(big, future, sizeof(future) - 1);
    size_t n = evs__frame_seal(big, sizeof(future) - 1);
    cr_assert_eq(evs_snapshot_decode(big, n, 0, NULL, &d, &info), EVS_EFORMAT);
    cr_assert_str_eq(info.msg,
                     "snapshot written in format 12, this library reads 1");
    free(big);
    free(buf);
}

Test(snapshot, encode_rejects_bad_fields)
{
    evs_snapshot s;
    char *buf = (char *)0x1, id129[130];
    size_t len = 7;
    const char *bad_ids[] = {"", "-a", "../x", "a/b", "a b", "é"};
    const char *bad_json[] = {
        "{\"a\":}",         "[1,]", "{} {}",     "nul", "\"x", "01",
        "{\"a\":\"\x01\"}", "  ",   "[\"\xff\"]"};

    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        s = full_snapshot();
        s.id = sp(bad_ids[i]);
        cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL,
                     "id \"%s\"", bad_ids[i]);
    }
    memset(id129, 'a', 129);
    id129[129] = '\0';
    s = full_snapshot();
    s.id = sp(id129);
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL);
    s.id.len = 128;
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), 0);
    free(buf);
    buf = (char *)0x1;
    len = 7;

    for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        s = full_snapshot();
        s.lineage = sp(bad_json[i]);
        cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL,
                     "json \"%s\"", bad_json[i]);
        s = full_snapshot();
        s.state = sp(bad_json[i]);
        cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL,
                     "json \"%s\"", bad_json[i]);
    }

    s = full_snapshot();
    s.status = sp("run\xc3(ing");
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL);
    s = full_snapshot();
    s.workflow_hash.ptr = NULL;
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL);
    s = full_snapshot();
    s.end_time_us = INT64_MAX;
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL);
    cr_assert_eq(evs_snapshot_encode(NULL, NULL, &buf, &len), -EINVAL);

    /* Failures leave the outputs alone. */
    cr_assert_eq(buf, (char *)0x1);
    cr_assert_eq(len, 7);
}

/* A JSON null is how an empty field is written, so it reads back empty. */
Test(snapshot, json_null_reads_back_empty)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    char *buf;
    size_t len;

    s.outputs = sp(" null ");
    encode_ok(&s, &buf, &len);
    cr_assert_eq(evs_snapshot_decode(buf, len, 0, NULL, &d, NULL), 0);
    cr_assert_eq(d->outputs.len, 0);
    evs_snapshot_free(d);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* Allocation                                                         */
/* ------------------------------------------------------------------ */

Test(snapshot, failing_allocator_gives_enomem)
{
    tu_alloc c;
    evs_snapshot s = full_snapshot(), *d = (evs_snapshot *)0x1;
    evs_error_info info;
    char *buf = (char *)0x1, *good;
    size_t len = 7, glen;

    tu_alloc_init(&c);
    tu_alloc_fail(&c, 1, TU_FAIL_FROM);
    cr_assert_eq(evs_snapshot_encode(&s, &c.a, &buf, &len), -ENOMEM);
    cr_assert_eq(buf, (char *)0x1);
    cr_assert_eq(len, 7);

    encode_ok(&s, &good, &glen);
    cr_assert_eq(evs_snapshot_decode(good, glen, 0, &c.a, &d, &info), -ENOMEM);
    cr_assert_eq(info.code, -ENOMEM);
    cr_assert_eq(d, (evs_snapshot *)0x1);
    cr_assert_eq(evs_snapshot_decode(good, glen, EVS_SNAPSHOT_HEADER_ONLY, &c.a,
                                     &d, NULL),
                 -ENOMEM);
    cr_assert_eq(c.live, 0);
    free(good);
}

/* Fail allocation N for N = 1.. until the call succeeds; nothing leaks. */
Test(snapshot, allocation_failure_loop)
{
    evs_snapshot s = full_snapshot(), *d;
    char *buf = NULL;
    size_t len = 0;
    tu_alloc c;
    int rc, n;

    tu_alloc_init(&c);
    for (n = 1;; n++) {
        evs_allocator a = c.a;
        tu_alloc_fail(&c, n, TU_FAIL_ONCE);
        rc = evs_snapshot_encode(&s, &a, &buf, &len);
        if (rc == 0) {
            cr_assert_eq(c.live, 1);
            evs_free(&a, buf); /* through the hook */
            evs_free(&a, NULL);
            cr_assert_eq(c.live, 0);
            break;
        }
        cr_assert_eq(rc, -ENOMEM);
        cr_assert_eq(c.live, 0);
    }
    cr_assert_lt(n, 10);

    encode_ok(&s, &buf, &len);
    for (n = 1;; n++) {
        evs_allocator a = c.a;
        tu_alloc_fail(&c, n, TU_FAIL_ONCE);
        d = NULL;
        rc = evs_snapshot_decode(buf, len, 0, &a, &d, NULL);
        if (rc == 0) {
            cr_assert_eq(c.live, 1);
            /* Freed with the allocator it was decoded with, which the
             * snapshot remembers even though `a` is about to go away. */
            evs_snapshot_free(d);
            cr_assert_eq(c.live, 0);
            break;
        }
        cr_assert_eq(rc, -ENOMEM);
        cr_assert_eq(c.live, 0);
    }
    cr_assert_lt(n, 10);
    free(buf);
    evs_snapshot_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Content past forged checksums                                      */
/* ------------------------------------------------------------------ */

Test(snapshot, forged_canonical_content_decodes)
{
    char buf[2048];
    evs_snapshot *d = NULL;
    size_t n;
    int rc;

    n = forge(HDR_PRE, BODY_PRE "{\"a\":[1,{\"b\":\"}]\\\"\"}]},", buf,
              sizeof(buf));
    rc = evs_snapshot_decode(buf, n, 0, NULL, &d, NULL);
    cr_assert_eq(rc, 0, "%s", evs_err_name(rc));
    assert_span(d->state, "{\"a\":[1,{\"b\":\"}]\\\"\"}]}");
    assert_span(d->workflow_name, "w");
    cr_assert_eq(d->last_event_seq, 3);
    evs_snapshot_free(d);
}

/* Escapes the encoder never writes still decode, surrogates included. */
Test(snapshot, header_escapes_are_decoded)
{
    char buf[2048];
    evs_snapshot *d = NULL;
    size_t n;

    n = forge("{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
              "\"a\\/b\\u00e9\\u2603\\ud83d\\ude00\\u0000\\b\\f\\r\","
              "\"workflow_hash\":\"\\\"\\\\\",\"inputs_hash\":\"\","
              "\"status\":\"\\u0041\",\"start_time\":null,\"end_time\":null,"
              "\"created_at\":null,\"updated_at\":null,\"last_event_seq\":0,",
              BODY_PRE "null,", buf, sizeof(buf));
    cr_assert_eq(evs_snapshot_decode(buf, n, 0, NULL, &d, NULL), 0);
    cr_assert_eq(d->workflow_name.len, 16);
    cr_assert(memcmp(d->workflow_name.ptr,
                     "a/b\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80\0\b\f\r",
                     16) == 0);
    assert_span(d->workflow_hash, "\"\\");
    assert_span(d->status, "A");
    evs_snapshot_free(d);
}

Test(snapshot, forged_malformed_content_is_rejected)
{
    static const struct {
        const char *hdr, *body;
    } cases[] = {
        /* Fields out of canonical order. */
        {"{\"v\":1,\"id\":\"e1\",\"kind\":\"snapshot\",\"workflow_name\":"
         "\"w\",\"workflow_hash\":\"\",\"inputs_hash\":\"\",\"status\":\"\","
         "\"start_time\":null,\"end_time\":null,\"created_at\":null,"
         "\"updated_at\":null,\"last_event_seq\":3,",
         BODY_PRE "null,"},
        /* Whitespace, which canonical headers never have. */
        {"{\"v\": 1,\"kind\":\"snapshot\",", BODY_PRE "null,"},
        /* A missing field. */
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"last_event_seq\":3,",
         BODY_PRE "null,"},
        /* Headers that stop short after a lone or reversed surrogate
         * (which decode: see lone_surrogates_decode_as_elsewhere), bad
         * escapes, raw control bytes, bad UTF-8, an unusable id. */
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
         "\"\\ud83d\",",
         BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
         "\"\\ude00\\ud83d\",",
         BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
         "\"\\x\",",
         BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e\\u0031\",",
         BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"../e\",", BODY_PRE "null,"},
        {"{\"v\":01,\"kind\":\"snapshot\",", BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"other\",", BODY_PRE "null,"},
        /* A repeated field, a bad time, a number that overflows. */
        {HDR_PRE "\"last_event_seq\":3,", BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
         "\"w\",\"workflow_hash\":\"\",\"inputs_hash\":\"\",\"status\":\"\","
         "\"start_time\":\"yesterday\",\"end_time\":null,\"created_at\":null,"
         "\"updated_at\":null,\"last_event_seq\":3,",
         BODY_PRE "null,"},
        {"{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
         "\"w\",\"workflow_hash\":\"\",\"inputs_hash\":\"\",\"status\":\"\","
         "\"start_time\":null,\"end_time\":null,\"created_at\":null,"
         "\"updated_at\":null,\"last_event_seq\":18446744073709551616,",
         BODY_PRE "null,"},
        /* Bodies whose values do not end where they should. */
        {HDR_PRE, BODY_PRE "[[1],"},
        {HDR_PRE, BODY_PRE "\"abc,"},
        {HDR_PRE, BODY_PRE "\"abc\\\","},
        {HDR_PRE, BODY_PRE "{\"a\":\"b\"}},"},
        {HDR_PRE, BODY_PRE "],"},
        {HDR_PRE, BODY_PRE ","},
        {HDR_PRE, BODY_PRE "1,\"extra\":2,"},
        {HDR_PRE, "{\"inputs\":null,"},
        {HDR_PRE, "{,"},
    };
    char buf[4096];
    evs_error_info info;
    evs_snapshot *d = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = forge(cases[i].hdr, cases[i].body, buf, sizeof(buf));
        int rc = evs_snapshot_decode(buf, n, 0, NULL, &d, &info);
        cr_assert_eq(rc, EVS_EPARSE, "case %zu: %s (%s)", i, evs_err_name(rc),
                     info.msg);
        cr_assert_str_eq(info.kind, "syntax");
        cr_assert_null(d);
    }
}

/*
 * Random damage with the checksums and the binding made right again, so
 * that the parsers themselves see it. Anything may come back except a
 * crash or an out-of-bounds read (each input is its own exact-size
 * allocation, for ASan).
 */
Test(snapshot, forged_random_damage_is_memory_safe)
{
    evs_snapshot s = full_snapshot(), *d;
    static const char alphabet[] = "{}[]\",:\\u0n1 \x80";
    uint64_t rng = 0x9e3779b97f4a7c15u;
    char *buf, *work;
    size_t len, hl;
    int accepted = 0;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    work = malloc(len);
    cr_assert_not_null(work);
    for (int iter = 0; iter < 20000; iter++) {
        size_t at;
        int rc;

        memcpy(work, buf, len);
        for (int k = 0; k < 3; k++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            at = (size_t)(rng >> 8) % len;
            /* Leave the framing itself alone; it is checked elsewhere. */
            if (at + EVS__CKSUM_TAIL_LEN + 1 >= hl && at < hl)
                continue;
            if (at + EVS__CKSUM_TAIL_LEN + 1 >= len)
                continue;
            work[at] = alphabet[rng % (sizeof(alphabet) - 1)];
        }
        if (memchr(work, '\n', hl - 1) != NULL ||
            memchr(work + hl, '\n', len - hl - 1) != NULL)
            continue;
        /* Seal the body, bind it, seal the header. */
        evs__frame_seal(work + hl, len - hl - EVS__CKSUM_TAIL_LEN);
        {
            char *q = memmem(work, hl, "\"body_checksum\":\"", 17);
            if (q == NULL)
                continue;
            if ((size_t)(q - work) + 17 + 16 < hl)
                evs__hex64(evs_checksum(work + hl, len - hl), q + 17);
        }
        evs__frame_seal(work, hl - EVS__CKSUM_TAIL_LEN);
        d = NULL;
        rc = evs_snapshot_decode(work, len, 0, NULL, &d, NULL);
        if (rc == 0) {
            accepted++;
            cr_assert(evs_id_valid(d->id.ptr, d->id.len));
            evs_snapshot_free(d);
        } else {
            cr_assert(rc == EVS_EPARSE || rc == EVS_ECORRUPT ||
                          rc == EVS_EFORMAT,
                      "iteration %d: %s", iter, evs_err_name(rc));
        }
    }
    cr_assert_gt(accepted, 0);
    free(work);
    free(buf);
}

Test(snapshot, decode_rejects_garbage)
{
    evs_snapshot *d = NULL;
    evs_error_info info;

    cr_assert_eq(evs_snapshot_decode(NULL, 0, 0, NULL, &d, &info), EVS_EPARSE);
    cr_assert_eq(evs_snapshot_decode("\n", 1, 0, NULL, &d, &info), EVS_EPARSE);
    cr_assert_eq(evs_snapshot_decode("{}\n{}\n", 6, 0, NULL, &d, NULL),
                 EVS_EPARSE);
    cr_assert_eq(evs_snapshot_decode("x", 1, 0, NULL, NULL, &info), -EINVAL);
    cr_assert_null(d);
}

/* Listing reads headers alone, at most EVS_SNAPSHOT_HEADER_MAX bytes, so
 * the encoder never writes a longer one. */
Test(snapshot, encode_refuses_a_header_past_its_limit)
{
    size_t n = EVS_SNAPSHOT_HEADER_MAX;
    char *name = malloc(n + 1), *buf = NULL;
    size_t len = 0;
    evs_snapshot s = full_snapshot();

    cr_assert_not_null(name);
    memset(name, 'w', n);
    s.workflow_name.ptr = name;
    s.workflow_name.len = n;
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), -EINVAL);
    cr_assert_null(buf);
    s.workflow_name.len = n / 2;
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &buf, &len), 0);
    cr_assert_lt((size_t)((char *)memchr(buf, '\n', len) - buf),
                 EVS_SNAPSHOT_HEADER_MAX);
    free(buf);
    free(name);
}

/* ------------------------------------------------------------------ */
/* The state handed on unlooked-into, decoding in the read buffer      */
/* ------------------------------------------------------------------ */

/* Past matching checksums, EVS_SNAPSHOT_STATE_RAW takes the state as
 * the rest of the body, whatever it is; everything else is checked as
 * without it. */
Test(snapshot, a_raw_state_is_the_rest_of_the_body_and_all_else_is_checked)
{
    static const char *const states[] = {
        "[[1]", "\"abc",         "\"abc\\\"",          "{\"a\":\"b\"}}",
        "]",    "1,\"extra\":2", "{\"v\":1} trailing", "null",
    };
    static const char *const bad_bodies[] = {
        BODY_PRE ",",        /* no state at all */
        "{\"inputs\":null,", /* fields missing */
        "{\"workflow_data\":null,\"inputs\":[1,\"outputs\":null,"
        "\"error\":null,\"lineage\":null,\"state\":{},", /* bad inputs */
    };
    char buf[4096];
    evs_error_info info;
    evs_snapshot *d = NULL;
    char body[512];

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        size_t n;
        int rc;

        snprintf(body, sizeof(body), "%s%s,", BODY_PRE, states[i]);
        n = forge(HDR_PRE, body, buf, sizeof(buf));
        rc = evs_snapshot_decode(buf, n, EVS_SNAPSHOT_STATE_RAW, NULL, &d,
                                 &info);
        cr_assert_eq(rc, 0, "%s: %s", states[i], info.msg);
        /* "null" reads back empty, as without the flag. */
        assert_span(d->state, strcmp(states[i], "null") ? states[i] : "");
        assert_span(d->workflow_name, "w");
        evs_snapshot_free(d);
        d = NULL;
        if (strcmp(states[i], "null") != 0)
            cr_assert_eq(evs_snapshot_decode(buf, n, 0, NULL, &d, NULL),
                         EVS_EPARSE, "%s", states[i]);
    }
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
        size_t n = forge(HDR_PRE, bad_bodies[i], buf, sizeof(buf));
        cr_assert_eq(evs_snapshot_decode(buf, n, EVS_SNAPSHOT_STATE_RAW, NULL,
                                         &d, &info),
                     EVS_EPARSE, "%s", bad_bodies[i]);
        cr_assert_str_eq(info.kind, "syntax");
        cr_assert_null(d);
    }
}

Test(snapshot, a_raw_state_still_has_its_checksums_checked)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    char *buf;
    size_t len;
    int rc;

    s.state = sp("{\"v\":1,\"steps\":[{\"name\":\"a\"}]}");
    encode_ok(&s, &buf, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1u << bit);
            rc = evs_snapshot_decode(buf, len, EVS_SNAPSHOT_STATE_RAW, NULL, &d,
                                     NULL);
            cr_assert(rc == EVS_ECORRUPT || rc == EVS_EPARSE,
                      "byte %zu bit %d: %s", i, bit, evs_err_name(rc));
            buf[i] ^= (char)(1u << bit);
        }
    }
    cr_assert_eq(
        evs_snapshot_decode(buf, len, EVS_SNAPSHOT_STATE_RAW, NULL, &d, NULL),
        0);
    assert_span(d->state, "{\"v\":1,\"steps\":[{\"name\":\"a\"}]}");
    evs_snapshot_free(d);
    free(buf);
}

static void assert_same_snapshot(const evs_snapshot *a, const evs_snapshot *b)
{
    const evs_span *sa[] = {
        &a->id,     &a->workflow_name, &a->workflow_hash, &a->inputs_hash,
        &a->status, &a->workflow_data, &a->inputs,        &a->outputs,
        &a->error,  &a->lineage,       &a->state};
    const evs_span *sb[] = {
        &b->id,     &b->workflow_name, &b->workflow_hash, &b->inputs_hash,
        &b->status, &b->workflow_data, &b->inputs,        &b->outputs,
        &b->error,  &b->lineage,       &b->state};

    for (size_t i = 0; i < sizeof(sa) / sizeof(sa[0]); i++) {
        cr_assert_eq(sa[i]->len, sb[i]->len, "field %zu", i);
        cr_assert_not_null(sb[i]->ptr, "field %zu", i);
        if (sa[i]->len)
            cr_assert(memcmp(sa[i]->ptr, sb[i]->ptr, sa[i]->len) == 0,
                      "field %zu: '%.*s' / '%.*s'", i, (int)sa[i]->len,
                      sa[i]->ptr, (int)sb[i]->len, sb[i]->ptr);
    }
    cr_assert_eq(a->start_time_us, b->start_time_us);
    cr_assert_eq(a->end_time_us, b->end_time_us);
    cr_assert_eq(a->created_at_us, b->created_at_us);
    cr_assert_eq(a->updated_at_us, b->updated_at_us);
    cr_assert_eq(a->last_event_seq, b->last_event_seq);
}

/*
 * Decodes in[0..len) both ways, which must agree in everything. The read
 * buffer is made for `room` >= len bytes (more: a read that came up
 * short) and filled `chunk` bytes at a time, each piece announced with
 * evs__snapshot_buf_filled (0: not announced at all).
 */
static void decode_read(const char *in, size_t len, size_t room, unsigned flags,
                        size_t chunk)
{
    evs_error_info i1, i2;
    evs_snapshot *a = NULL, *b = NULL;
    char *buf = evs__snapshot_buf(NULL, room);
    int r1, r2;

    cr_assert_not_null(buf);
    for (size_t at = 0; at < len;) {
        size_t n = chunk == 0 || len - at < chunk ? len - at : chunk;
        memcpy(buf + at, in + at, n);
        at += n;
        if (chunk)
            evs__snapshot_buf_filled(buf, at);
    }
    r1 = evs_snapshot_decode(in, len, flags, NULL, &a, &i1);
    r2 = evs__snapshot_decode_buf(buf, len, flags, &b, &i2);
    cr_assert_eq(r1, r2, "%s / %s", evs_err_name(r1), evs_err_name(r2));
    cr_assert_eq(i1.code, i2.code);
    cr_assert_str_eq(i1.kind, i2.kind);
    cr_assert_str_eq(i1.msg, i2.msg);
    cr_assert_eq(i1.offset, i2.offset);
    if (r1 != 0) {
        cr_assert_null(b);
        evs__snapshot_buf_free(buf); /* still the caller's */
        return;
    }
    assert_same_snapshot(a, b);
    evs_snapshot_free(a);
    evs_snapshot_free(b); /* frees buf */
}

static void decode_both(const char *in, size_t len, unsigned flags)
{
    decode_read(in, len, len, flags, 0);
    decode_read(in, len, len, flags, len);
    decode_read(in, len, len, flags, 7);
}

/* A body whose own checksum is wrong but which the header binds (the
 * header's body_checksum covers the wrong one): the body's checksum is
 * still checked, with or without a raw state. */
Test(snapshot, a_bound_body_with_a_wrong_checksum_is_rejected)
{
    static const unsigned flags[] = {0, EVS_SNAPSHOT_STATE_RAW};
    evs_snapshot s = full_snapshot(), *d = NULL;
    evs_error_info info;
    char *buf, *q;
    size_t len, hl;

    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    /* The first hex digit of the body's checksum. */
    q = buf + len - EVS__CKSUM_TAIL_LEN + EVS__CKSUM_KEY_LEN - 1;
    *q = *q == '0' ? '1' : '0';
    evs__hex64(evs_checksum(buf + hl, len - hl),
               (char *)memmem(buf, hl, "\"body_checksum\":\"", 17) + 17);
    reseal_header(buf, hl);
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
        cr_assert_eq(evs_snapshot_decode(buf, len, flags[f], NULL, &d, &info),
                     EVS_ECORRUPT);
        cr_assert_str_eq(info.kind, "checksum");
        cr_assert_eq(info.offset, hl);
        decode_both(buf, len, flags[f]);
    }
    free(buf);
}

Test(snapshot, decoding_in_the_read_buffer_gives_what_decoding_gives)
{
    static const unsigned flags[] = {0, EVS_SNAPSHOT_HEADER_ONLY,
                                     EVS_SNAPSHOT_STATE_RAW};
    evs_snapshot s = full_snapshot(), e;
    char *buf, *ebuf, forged[2048];
    size_t len, elen, n;

    encode_ok(&s, &buf, &len);
    memset(&e, 0, sizeof(e));
    e.id = sp("e");
    encode_ok(&e, &ebuf, &elen);
    n = forge("{\"v\":1,\"kind\":\"snapshot\",\"id\":\"e1\",\"workflow_name\":"
              "\"a\\/b\\u00e9\\u2603\\ud83d\\ude00\\u0000\\b\\f\\r\","
              "\"workflow_hash\":\"\\\"\\\\\",\"inputs_hash\":\"\","
              "\"status\":\"\\u0041\",\"start_time\":null,\"end_time\":null,"
              "\"created_at\":null,\"updated_at\":null,\"last_event_seq\":0,",
              BODY_PRE "{\"a\":[1]},", forged, sizeof(forged));
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
        decode_both(buf, len, flags[f]);
        decode_both(ebuf, elen, flags[f]);
        decode_both(forged, n, flags[f]);
        /* Every truncation, and damage here and there. */
        for (size_t k = 0; k < len; k += 3)
            decode_both(buf, k, flags[f]);
        for (size_t k = 0; k < len; k += 5) {
            buf[k] ^= 0x20;
            decode_both(buf, len, flags[f]);
            buf[k] ^= 0x20;
        }
    }
    free(buf);
    free(ebuf);
}

/* Checksumming as the buffer fills gives what checksumming at the end
 * gives, however the file arrives, damaged or not, and whatever part of
 * it is decoded. */
Test(snapshot, checksums_taken_as_the_buffer_fills_are_the_same)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    char *buf;
    size_t len, hl;

    s.state = sp("{\"v\":1,\"steps\":[{\"name\":\"a\",\"input\":[1,2,3]}]}");
    encode_ok(&s, &buf, &len);
    hl = header_len(buf, len);
    for (size_t chunk = 1; chunk <= len; chunk += chunk < 40 ? 1 : 97) {
        decode_read(buf, len, len, 0, chunk);
        decode_read(buf, len, len, EVS_SNAPSHOT_STATE_RAW, chunk);
    }
    /* Pieces that end exactly at the header's end and at the body's
     * checksum, and reads that come up short. */
    decode_read(buf, len, len, 0, hl);
    decode_read(buf, len, len, 0, len - EVS__CKSUM_TAIL_LEN);
    for (size_t k = 0; k < len; k += 11)
        decode_read(buf, k, len, 0, 64);
    /* Damage anywhere, announced piece by piece. */
    for (size_t k = 0; k < len; k += 3) {
        buf[k] ^= 0x04;
        decode_read(buf, len, len, 0, 50);
        buf[k] ^= 0x04;
    }
    cr_assert_eq(evs_snapshot_decode(buf, len, 0, NULL, &d, NULL), 0);
    evs_snapshot_free(d);
    free(buf);
}

/* The buffer remembers its allocator, which then frees the snapshot. */
Test(snapshot, the_read_buffer_is_freed_with_its_allocator)
{
    evs_snapshot s = full_snapshot(), *d = NULL;
    char *good, *buf;
    size_t len;
    tu_alloc c;

    tu_alloc_init(&c);
    encode_ok(&s, &good, &len);
    buf = evs__snapshot_buf(&c.a, len);
    cr_assert_not_null(buf);
    cr_assert_eq(c.live, 1);
    memcpy(buf, good, len);
    cr_assert_eq(evs__snapshot_decode_buf(buf, len, 0, &d, NULL), 0);
    assert_span(d->status, "running");
    evs_snapshot_free(d);
    cr_assert_eq(c.live, 0);

    buf = evs__snapshot_buf(&c.a, len);
    memcpy(buf, good, len - 1);
    cr_assert_eq(evs__snapshot_decode_buf(buf, len - 1, 0, &d, NULL),
                 EVS_ECORRUPT);
    cr_assert_eq(c.live, 1);
    evs__snapshot_buf_free(buf);
    cr_assert_eq(c.live, 0);
    free(good);
}

/*
 * The three readers of JSON strings in formats (the unescaping of trusted
 * JSON, the snapshot header's parser, and the workflow evaluator's
 * byte-at-a-time comparison) share one decoder, so they agree on what
 * evs_json_check accepts: a lone surrogate escape is U+FFFD for each of
 * them. The snapshot header used to refuse it.
 */
Test(snapshot, lone_surrogates_decode_as_elsewhere)
{
    static const char raw[] = "a\\ud800b\\udc00\\ud83d";
    static const char want[] = "a\xef\xbf\xbd"
                               "b\xef\xbf\xbd\xef\xbf\xbd";
    const size_t wn = sizeof(want) - 1;
    const char *w = strstr(HDR_PRE, "\"w\",");
    char buf[2048], hdr[512], out[64];
    evs_snapshot *d = NULL;
    size_t n;

    cr_assert_eq(
        evs_json_check("\"a\\ud800b\\udc00\\ud83d\"", 22, 0, NULL, NULL, NULL),
        0);
    cr_assert_eq(evs__json_unescape(raw, sizeof(raw) - 1, out), wn);
    cr_assert(memcmp(out, want, wn) == 0);
    cr_assert(evs__wf_key_eq((evs_span){raw, sizeof(raw) - 1}, want, wn));

    /* HDR_PRE with its workflow name, "w", replaced by raw. */
    snprintf(hdr, sizeof(hdr), "%.*s\"%s\"%s", (int)(w - HDR_PRE), HDR_PRE, raw,
             w + 3);
    n = forge(hdr, BODY_PRE "null,", buf, sizeof(buf));
    cr_assert_eq(evs_snapshot_decode(buf, n, 0, NULL, &d, NULL), 0);
    cr_assert_eq(d->workflow_name.len, wn);
    cr_assert(memcmp(d->workflow_name.ptr, want, wn) == 0);
    evs_snapshot_free(d);
    /* Decoded in the read buffer, in place, the same. */
    {
        char *b = evs__snapshot_buf(NULL, n);
        cr_assert(b != NULL);
        memcpy(b, buf, n);
        cr_assert_eq(evs__snapshot_decode_buf(b, n, 0, &d, NULL), 0);
        cr_assert_eq(d->workflow_name.len, wn);
        cr_assert(memcmp(d->workflow_name.ptr, want, wn) == 0);
        evs_snapshot_free(d);
    }
}
