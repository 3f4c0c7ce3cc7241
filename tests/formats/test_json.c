/*
 * test_json.c: the strict JSON checker and minifier, the string quoter and
 * UTF-8 validation of formats/json.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evstore/format.h"
#include "formats_int.h"

/* Checks buf[0..len) expecting success. */
static void ok_n(const char *s, size_t len)
{
    size_t off = 12345;
    int rc = evs_json_check(s, len, 0, NULL, NULL, &off);

    cr_assert_eq(rc, 0, "rejected %zu bytes \"%.*s\" at %zu", len, (int)len, s,
                 off);
    cr_assert_eq(off, 12345, "err_off written on success");
}

static void ok(const char *s)
{
    ok_n(s, strlen(s));
}

/* Checks buf[0..len) expecting EVS_EPARSE at offset `want`, the same
 * with a NULL err_off and when minifying. */
static void bad_n(const char *s, size_t len, size_t want)
{
    char *tmp = malloc(len + 1);
    size_t off = 12345, olen = 999;
    int rc = evs_json_check(s, len, 0, NULL, NULL, &off);

    cr_assert_eq(rc, EVS_EPARSE, "accepted \"%.*s\" (rc %d)", (int)len, s, rc);
    cr_assert_eq(off, want, "\"%.*s\": err_off %zu, want %zu", (int)len, s, off,
                 want);
    cr_assert_eq(evs_json_check(s, len, 0, NULL, NULL, NULL), EVS_EPARSE);

    cr_assert_not_null(tmp);
    off = 12345;
    rc = evs_json_check(s, len, EVS_JSON_MINIFY, tmp, &olen, &off);
    cr_assert_eq(rc, EVS_EPARSE);
    cr_assert_eq(off, want, "minify: err_off %zu, want %zu", off, want);
    free(tmp);
}

static void bad(const char *s, size_t want)
{
    bad_n(s, strlen(s), want);
}

/* Minifies s into a fresh buffer and compares with want. */
static void minify_eq(const char *s, const char *want)
{
    size_t len = strlen(s), olen = 0, off = 0;
    char *out = malloc(len + 1);
    int rc;

    cr_assert_not_null(out);
    rc = evs_json_check(s, len, EVS_JSON_MINIFY, out, &olen, &off);
    cr_assert_eq(rc, 0, "rejected \"%s\" at %zu", s, off);
    cr_assert_eq(olen, strlen(want), "\"%s\": out_len %zu, want %zu", s, olen,
                 strlen(want));
    cr_assert_eq(memcmp(out, want, olen), 0, "got \"%.*s\" want \"%s\"",
                 (int)olen, out, want);

    /* In place gives the same bytes. */
    memcpy(out, s, len);
    olen = 0;
    rc = evs_json_check(out, len, EVS_JSON_MINIFY, out, &olen, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(olen, strlen(want));
    cr_assert_eq(memcmp(out, want, olen), 0, "in place: got \"%.*s\"",
                 (int)olen, out);
    free(out);
}

/* ------------------------------------------------------------------ */
/* Grammar                                                            */
/* ------------------------------------------------------------------ */

Test(json_check, accepts_scalars)
{
    ok("0");
    ok("-0");
    ok("7");
    ok("-1");
    ok("1234567890");
    ok("1.5");
    ok("-0.25");
    ok("0e0");
    ok("1E5");
    ok("1e+5");
    ok("1e-5");
    ok("-0.0E-010");
    ok("123.456e789");
    ok("true");
    ok("false");
    ok("null");
    ok("\"\"");
    ok("\"abc\"");
    ok("\"\x7f\""); /* DEL is not a control character for JSON */
}

Test(json_check, accepts_containers)
{
    ok("[]");
    ok("{}");
    ok("[1,2,3]");
    ok("[[],{},[[]]]");
    ok("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}");
    ok("{\"\":\"\"}");
    ok("{\"a\":1,\"a\":2}"); /* duplicate keys are syntactically fine */
}

Test(json_check, accepts_surrounding_whitespace)
{
    ok(" 1");
    ok("1 ");
    ok(" \t\r\n1\n\r\t ");
    ok(" [ 1 , { \"x\" : \"y\" } , [ ] , { } ] ");
    ok("\n{\n  \"a\" : [\n    1,\n    2\n  ]\n}\n");
}

Test(json_check, rejects_empty)
{
    bad("", 0);
    bad(" ", 1);
    bad(" \n\t\r", 4);
    cr_assert_eq(evs_json_check(NULL, 0, 0, NULL, NULL, NULL), EVS_EPARSE);
}

Test(json_check, rejects_trailing_garbage)
{
    bad("1 2", 2);
    bad("{}x", 2);
    bad("[]]", 2);
    bad("{}}", 2);
    bad("[] []", 3);
    bad("truex", 4);
    bad("null,", 4);
    bad("\"a\"\"b\"", 3);
    bad("1 /", 2);
    bad("0 \v", 2); /* vertical tab is not JSON whitespace */
    bad("1\f", 1);
}

Test(json_check, rejects_bad_whitespace)
{
    bad("\v1", 0);
    bad("\f1", 0);
    bad("[1,\v2]", 3);
    bad("\xc2\xa0"
        "1",
        0); /* U+00A0 is not whitespace */
}

Test(json_check, rejects_bad_numbers)
{
    bad("01", 1);
    bad("00", 1);
    bad("-01", 2);
    bad("-00", 2);
    bad("+1", 0);
    bad(".5", 0);
    bad("-.5", 1);
    bad("1.", 2);
    bad("1.e5", 2);
    bad("1e", 2);
    bad("1E", 2);
    bad("1e+", 3);
    bad("1e-", 3);
    bad("1e+-1", 3);
    bad("1.5e", 4);
    bad("-", 1);
    bad("-a", 1);
    bad("- 1", 1);
    bad("0x10", 1);
    bad("1_000", 1);
    bad("[01]", 2);
    bad("[1.]", 3);
    bad("{\"a\":-}", 6);
    bad("Infinity", 0);
    bad("-Infinity", 1);
    bad("NaN", 0);
}

Test(json_check, rejects_bad_literals)
{
    bad("t", 1);
    bad("tru", 3);
    bad("trUe", 2);
    bad("True", 0);
    bad("nul", 3);
    bad("nulll", 4);
    bad("NULL", 0);
    bad("fals", 4);
    bad("falsy", 4);
    bad("[tru]", 4);
    bad("undefined", 0);
}

Test(json_check, rejects_bad_structure)
{
    bad("[", 1);
    bad("{", 1);
    bad("[1", 2);
    bad("[1,", 3);
    bad("{\"a\":1", 6);
    bad("{\"a\":", 5);
    bad("{\"a\"", 4);
    bad("]", 0);
    bad("}", 0);
    bad(":", 0);
    bad(",", 0);
    bad("[1,]", 3);
    bad("[,1]", 1);
    bad("[1,,2]", 3);
    bad("[1 2]", 3);
    bad("[1}", 2);
    bad("{\"a\":1]", 6);
    bad("{\"a\"}", 4);
    bad("{\"a\":}", 5);
    bad("{\"a\":1,}", 7);
    bad("{,}", 1);
    bad("{a:1}", 1);
    bad("{1:1}", 1);
    bad("{'a':1}", 1);
    bad("{\"a\" 1}", 5);
    bad("{\"a\"::1}", 5);
    bad("{\"a\":1 \"b\":2}", 7);
    bad("{\"a\":1,,\"b\":2}", 7);
    bad("[[]", 3);
    bad("[]]", 2);
    bad("{[]:1}", 1);
    bad("/* c */ 1", 0);
    bad("'a'", 0);
}

Test(json_check, accepts_every_escape)
{
    ok("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
    ok("\"\\u0000 \\u00e9 \\u00E9 \\uABCD \\uffff\"");
    ok("{\"\\u0041\":\"\\n\"}");
}

Test(json_check, accepts_lone_surrogate_escapes)
{
    /* RFC 8259 section 8.2: allowed by the grammar; see json.c. */
    ok("\"\\ud800\"");
    ok("\"\\udfff\"");
    ok("\"\\udc00\\ud800\"");
    ok("\"\\ud83d\\ude00\""); /* a proper pair, of course */
}

Test(json_check, rejects_bad_strings)
{
    bad("\"abc", 4);
    bad("\"", 1);
    bad("\"a\\x\"", 3);
    bad("\"\\'\"", 2);
    bad("\"\\a\"", 2);
    bad("\"\\U0041\"", 2);
    bad("\"\\0\"", 2);
    bad("\"\\", 2);
    bad("\"\\u", 3);
    bad("\"\\u12\"", 5);
    bad("\"\\u12G4\"", 5);
    bad("\"\\u 123\"", 3);
    bad("\"\\u-123\"", 3);
    bad("\"\\u123", 6);
    bad("\"a\tb\"", 2);
    bad("\"a\nb\"", 2);
    bad("\"\r\"", 1);
    bad("\"\x01\"", 1);
    bad("\"\x1f\"", 1);
    bad("[\"a\",\"b\x1b\"]", 7);
    bad("{\"k\x02\":1}", 3);
}

Test(json_check, rejects_embedded_nul)
{
    bad_n("\"a\0b\"", 5, 2);
    bad_n("1\0", 2, 1);
    bad_n("\0", 1, 0);
    bad_n("\0 1", 3, 0);
    bad_n("[1,\0]", 5, 3);
    bad_n("{\"a\0\":1}", 8, 3);
    bad_n("tr\0e", 4, 2);
    bad_n("1 \0", 3, 2);
}

Test(json_check, string_fast_path_stops_at_every_offset)
{
    /* Long plain runs go through the 8-byte loop: put the interesting
     * byte at every offset of it and check the answer and offset. */
    char buf[80];
    size_t i, n;

    for (n = 1; n < 40; n++) {
        buf[0] = '"';
        memset(buf + 1, 'a', n);
        buf[n + 1] = '"';
        ok_n(buf, n + 2);
        for (i = 1; i <= n; i++) {
            memset(buf + 1, 'a', n);
            buf[i] = '\n';
            bad_n(buf, n + 2, i);
            buf[i] = '\0';
            bad_n(buf, n + 2, i);
            buf[i] = '\x80';
            bad_n(buf, n + 2, i);
            buf[i] = '"'; /* string ends early: garbage follows */
            bad_n(buf, n + 2, i + 1);
            /* Escapes the next byte: 'a' is no escape; an escaped
             * closing quote leaves the string unterminated. */
            buf[i] = '\\';
            bad_n(buf, n + 2, i == n ? n + 2 : i + 1);
            buf[i] = '~';
            ok_n(buf, n + 2);
        }
        /* Unterminated: the error is at the end of the input. */
        bad_n(buf, n + 1, n + 1);
    }
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                              */
/* ------------------------------------------------------------------ */

Test(json_check, accepts_valid_utf8)
{
    ok("\"\xc3\xa9\"");         /* U+00E9 */
    ok("\"\xc2\x80\"");         /* U+0080, smallest 2-byte */
    ok("\"\xdf\xbf\"");         /* U+07FF */
    ok("\"\xe0\xa0\x80\"");     /* U+0800, smallest 3-byte */
    ok("\"\xe2\x82\xac\"");     /* U+20AC */
    ok("\"\xed\x9f\xbf\"");     /* U+D7FF, just below the surrogates */
    ok("\"\xee\x80\x80\"");     /* U+E000, just above them */
    ok("\"\xef\xbf\xbf\"");     /* U+FFFF */
    ok("\"\xf0\x90\x80\x80\""); /* U+10000, smallest 4-byte */
    ok("\"\xf0\x9f\x98\x80\""); /* U+1F600 */
    ok("\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF, the largest */
    ok("{\"\xe6\x97\xa5\xe6\x9c\xac\":\"\xd0\xb4\xd0\xb0\"}");
}

/* One invalid sequence inside a string, err_off relative to its start. */
static void bad_utf8(const char *seq, size_t at)
{
    char buf[32];
    size_t n = strlen(seq);

    buf[0] = '"';
    memcpy(buf + 1, seq, n);
    buf[n + 1] = '"';
    bad_n(buf, n + 2, 1 + at);
    cr_assert_eq(evs__utf8_valid(seq, n), 0, "utf8_valid accepted %zu bytes",
                 n);
}

/*
 * The offset is that of the first byte that cannot be part of a well-formed
 * sequence (Unicode Table 3-7): the lead byte for a lead that can never
 * start one, the second byte for overlongs, surrogates and code points past
 * U+10FFFF, and the byte that ends a sequence early.
 */
Test(json_check, rejects_overlong_utf8)
{
    bad_utf8("\xc0\x80", 0); /* NUL as 2 bytes */
    bad_utf8("\xc1\xbf", 0);
    bad_utf8("\xe0\x80\x80", 1);
    bad_utf8("\xe0\x9f\xbf", 1);
    bad_utf8("\xf0\x80\x80\x80", 1);
    bad_utf8("\xf0\x8f\xbf\xbf", 1);
}

Test(json_check, rejects_surrogates_in_utf8)
{
    bad_utf8("\xed\xa0\x80", 1);             /* U+D800 */
    bad_utf8("\xed\xbf\xbf", 1);             /* U+DFFF */
    bad_utf8("\xed\xa0\xbd\xed\xb8\x80", 1); /* CESU-8 pair */
}

Test(json_check, rejects_utf8_above_10ffff)
{
    bad_utf8("\xf4\x90\x80\x80", 1); /* U+110000 */
    bad_utf8("\xf5\x80\x80\x80", 0);
    bad_utf8("\xf7\xbf\xbf\xbf", 0);
    bad_utf8("\xf8\x88\x80\x80\x80", 0); /* 5-byte form */
    bad_utf8("\xfe", 0);
    bad_utf8("\xff", 0);
}

Test(json_check, rejects_truncated_utf8)
{
    bad_utf8("\xc3", 1);
    bad_utf8("\xe2\x82", 2);
    bad_utf8("\xe2", 1);
    bad_utf8("\xf0\x9f\x98", 3);
    bad_utf8("\xc3"
             "a",
             1);
    bad_utf8("\xe2"
             "ab",
             1);
    bad_utf8("\xf0\x9f"
             "a",
             2);
    /* At the very end of the input, inside an unterminated string. */
    bad_n("\"\xe2\x82", 3, 3);
    bad_n("\"\xf0", 2, 2);
}

Test(json_check, rejects_stray_continuation)
{
    bad_utf8("\x80", 0);
    bad_utf8("\xbf", 0);
    bad_utf8("a\x80", 1);
    bad_utf8("\xc3\xa9\xa9", 2);
    bad_utf8("\xe2\x82\xac\x80", 3);
}

Test(json_check, rejects_utf8_outside_strings)
{
    bad("\xc3\xa9", 0);
    bad("[\xe2\x82\xac]", 1);
}

Test(utf8_valid, accepts_and_rejects)
{
    static const char ok8[] = "plain ascii, \xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
                              "\x80 and \xf4\x8f\xbf\xbf";

    cr_assert_eq(evs__utf8_valid("", 0), 1);
    cr_assert_eq(evs__utf8_valid(NULL, 0), 1);
    cr_assert_eq(evs__utf8_valid(ok8, sizeof(ok8) - 1), 1);
    cr_assert_eq(evs__utf8_valid("a\0b", 3), 1); /* NUL is valid UTF-8 */
    cr_assert_eq(evs__utf8_valid("\xc0\x80", 2), 0);
    cr_assert_eq(evs__utf8_valid("\xed\xa0\x80", 3), 0);
    cr_assert_eq(evs__utf8_valid("\xf4\x90\x80\x80", 4), 0);
    cr_assert_eq(evs__utf8_valid("\xe2\x82", 2), 0);
    cr_assert_eq(evs__utf8_valid("\x80", 1), 0);
    /* A sequence cut by len, though the bytes continue in memory. */
    cr_assert_eq(evs__utf8_valid("\xe2\x82\xac", 2), 0);
}

Test(utf8_valid, finds_errors_behind_ascii_runs)
{
    char buf[64];
    size_t n, i;

    for (n = 1; n <= sizeof(buf); n++) {
        memset(buf, 'x', n);
        cr_assert_eq(evs__utf8_valid(buf, n), 1);
        for (i = 0; i < n; i++) {
            memset(buf, 'x', n);
            buf[i] = '\xff';
            cr_assert_eq(evs__utf8_valid(buf, n), 0, "n %zu i %zu", n, i);
            buf[i] = '\xc3'; /* a lead byte followed by 'x' or the end */
            cr_assert_eq(evs__utf8_valid(buf, n), 0, "n %zu i %zu", n, i);
            if (i + 1 < n) {
                buf[i + 1] = '\xa9';
                cr_assert_eq(evs__utf8_valid(buf, n), 1, "n %zu i %zu", n, i);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Depth                                                              */
/* ------------------------------------------------------------------ */

/* n opening brackets followed by n closing ones. */
static char *nested(size_t n, char open, char close, size_t *len)
{
    char *s = malloc(2 * n + 1);

    cr_assert_not_null(s);
    memset(s, open, n);
    memset(s + n, close, n);
    s[2 * n] = '\0';
    *len = 2 * n;
    return s;
}

Test(json_check, depth_at_limit_accepted)
{
    size_t len;
    char *s = nested(EVS_JSON_DEPTH_MAX, '[', ']', &len);

    ok_n(s, len);
    free(s);
}

Test(json_check, depth_past_limit_refused)
{
    size_t len;
    char *s = nested(EVS_JSON_DEPTH_MAX + 1, '[', ']', &len);

    bad_n(s, len, EVS_JSON_DEPTH_MAX);
    free(s);
}

/* {"a":[{"a":[ ... 1 ... ]}]} with `levels` containers; returns length. */
static size_t mixed(size_t levels, char *s)
{
    size_t d, len = 0;

    for (d = 0; d < levels; d++) {
        if (d % 2 == 0) {
            memcpy(s + len, "{\"a\":", 5);
            len += 5;
        } else {
            s[len++] = '[';
        }
    }
    s[len++] = '1';
    for (d = levels; d-- > 0;)
        s[len++] = d % 2 == 0 ? '}' : ']';
    return len;
}

Test(json_check, depth_counts_objects_and_arrays)
{
    size_t n = EVS_JSON_DEPTH_MAX;
    char *s = malloc(8 * (n + 1));

    cr_assert_not_null(s);
    ok_n(s, mixed(n, s));
    /* The opener past the limit is the object at level n (n is even),
     * after n / 2 objects of 5 bytes and n / 2 arrays of 1. */
    bad_n(s, mixed(n + 1, s), 6 * (n / 2));
    free(s);
}

Test(json_check, hostile_depth_refused_without_crash)
{
    size_t n = 1000000, off = 0, olen = 0;
    char *s = malloc(n);

    cr_assert_not_null(s);
    memset(s, '[', n);
    cr_assert_eq(evs_json_check(s, n, 0, NULL, NULL, &off), EVS_EPARSE);
    cr_assert_eq(off, EVS_JSON_DEPTH_MAX);
    memset(s, '{', n);
    cr_assert_eq(evs_json_check(s, n, EVS_JSON_MINIFY, s, &olen, &off),
                 EVS_EPARSE);
    cr_assert_eq(off, 1); /* a key must follow '{' */
    free(s);
}

/* ------------------------------------------------------------------ */
/* Minify                                                             */
/* ------------------------------------------------------------------ */

Test(json_minify, pretty_to_compact)
{
    minify_eq("{\n  \"a\" : 1 ,\n  \"b\" : [ true , false , null ],\n"
              "  \"c\" : { }\n}\n",
              "{\"a\":1,\"b\":[true,false,null],\"c\":{}}");
    minify_eq("  [ 1 , [ 2 , [ ] ] ]  ", "[1,[2,[]]]");
    minify_eq("\t\"x\"\r\n", "\"x\"");
    minify_eq(" 0 ", "0");
    minify_eq("[ ]", "[]");
    minify_eq("{ }", "{}");
}

Test(json_minify, copies_strings_and_numbers_verbatim)
{
    minify_eq("{ \"a b\" : \" spaced \\n out \\u00E9 \\/ \" }",
              "{\"a b\":\" spaced \\n out \\u00E9 \\/ \"}");
    minify_eq("[ 1E+05 , -0.50e-1 , 0 ]", "[1E+05,-0.50e-1,0]");
    minify_eq("[ \"\xc3\xa9 \xf0\x9f\x98\x80\" ]",
              "[\"\xc3\xa9 \xf0\x9f\x98\x80\"]");
}

Test(json_minify, compact_input_is_byte_identical)
{
    static const char *in[] = {
        ("{\"id\":\"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\",\"n\":[1,2.5,-3e7],"
         "\"s\":\"a \\\"quoted\\\" word\",\"o\":{\"t\":true,\"f\":null}}"),
        "[]",
        "1",
        "\"  \"",
    };
    size_t i;

    for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        minify_eq(in[i], in[i]);
}

Test(json_minify, in_place)
{
    char buf[] = " { \"k\" : [ 1 ,\n 2 ] , \"s\" : \"a  b\" } ";
    const char *want = "{\"k\":[1,2],\"s\":\"a  b\"}";
    size_t olen = 0;

    cr_assert_eq(
        evs_json_check(buf, strlen(buf), EVS_JSON_MINIFY, buf, &olen, NULL), 0);
    cr_assert_eq(olen, strlen(want));
    cr_assert_eq(memcmp(buf, want, olen), 0, "got \"%.*s\"", (int)olen, buf);
}

Test(json_minify, out_unused_without_flag)
{
    char out[8] = "zzzzzzz";
    size_t olen = 77;

    cr_assert_eq(evs_json_check(" [ 1 ] ", 7, 0, out, &olen, NULL), 0);
    cr_assert_str_eq(out, "zzzzzzz");
    cr_assert_eq(olen, 77);
}

Test(json_minify, output_is_valid_and_idempotent)
{
    /* Mutate a pretty document at random: whatever is accepted must
     * minify to something accepted that minifies to itself, and errors
     * must lie inside the input. */
    static const char doc[] =
        " { \"a\" : [ 1 , -2.5e+3 , true , false , null ] ,\n"
        "   \"b\" : { \"c\" : \"d\\n\\u00e9\xc3\xa9\" , \"e\" : [ ] } } ";
    static const char alphabet[] = " \t\n{}[]:,\"\\-+.0123456789eEtfnu\x80";
    char in[sizeof(doc)], m1[sizeof(doc)], m2[sizeof(doc)];
    size_t len = sizeof(doc) - 1, l1, l2, off;
    uint64_t x = 0x9e3779b97f4a7c15u;
    int i, j, accepted = 0;

    for (i = 0; i < 20000; i++) {
        memcpy(in, doc, len);
        for (j = 0; j < 1 + i % 3; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            in[x % len] = alphabet[(x >> 32) % (sizeof(alphabet) - 1)];
        }
        off = SIZE_MAX;
        if (evs_json_check(in, len, EVS_JSON_MINIFY, m1, &l1, &off) != 0) {
            cr_assert_leq(off, len);
            continue;
        }
        accepted++;
        cr_assert_leq(l1, len);
        cr_assert_eq(evs_json_check(m1, l1, EVS_JSON_MINIFY, m2, &l2, NULL), 0,
                     "minified output rejected: %.*s", (int)l1, m1);
        cr_assert_eq(l1, l2);
        cr_assert_eq(memcmp(m1, m2, l1), 0);
    }
    cr_assert_gt(accepted, 100);
}

/* ------------------------------------------------------------------ */
/* Quoting                                                            */
/* ------------------------------------------------------------------ */

static void quote_eq(const char *s, size_t len, const char *want)
{
    char buf[256];
    evs_span sp = {s, len};
    size_t n = evs_json_quote(sp, buf, sizeof(buf));

    cr_assert_eq(n, strlen(want), "quote of %zu bytes: %zu, want %zu", len, n,
                 strlen(want));
    cr_assert_eq(memcmp(buf, want, n), 0, "got %.*s want %s", (int)n, buf,
                 want);
    /* The same with a buffer of exactly the needed size. */
    memset(buf, 'Z', sizeof(buf));
    cr_assert_eq(evs_json_quote(sp, buf, n), n);
    cr_assert_eq(memcmp(buf, want, n), 0);
    cr_assert_eq(buf[n], 'Z', "wrote past the end");
}

Test(json_quote, plain_and_empty)
{
    evs_span e = {NULL, 0};
    char buf[4];

    quote_eq("abc", 3, "\"abc\"");
    quote_eq("", 0, "\"\"");
    cr_assert_eq(evs_json_quote(e, buf, sizeof(buf)), 2);
    cr_assert_eq(memcmp(buf, "\"\"", 2), 0);
}

Test(json_quote, escapes)
{
    quote_eq("\"", 1, "\"\\\"\"");
    quote_eq("\\", 1, "\"\\\\\"");
    quote_eq("a\nb\rc\td\be\ff", 11, "\"a\\nb\\rc\\td\\be\\ff\"");
    quote_eq("\x01\x1f\x1b", 3, "\"\\u0001\\u001f\\u001b\"");
    quote_eq("a\0b", 3, "\"a\\u0000b\"");
    quote_eq("\x0b", 1, "\"\\u000b\"");
}

Test(json_quote, leaves_slash_del_and_utf8_alone)
{
    quote_eq("a/b", 3, "\"a/b\"");
    quote_eq("\x7f", 1, "\"\x7f\"");
    quote_eq("\xc3\xa9\xe2\x82\xac\xf4\x8f\xbf\xbf", 9,
             "\"\xc3\xa9\xe2\x82\xac\xf4\x8f\xbf\xbf\"");
}

Test(json_quote, small_cap_writes_nothing)
{
    char buf[16];
    evs_span s = {"a\"b\n", 4};
    size_t need = 8; /* "a\"b\n" */
    size_t cap;

    for (cap = 0; cap < need; cap++) {
        memset(buf, 'Z', sizeof(buf));
        cr_assert_eq(evs_json_quote(s, buf, cap), need, "cap %zu", cap);
        for (size_t i = 0; i < sizeof(buf); i++)
            cr_assert_eq(buf[i], 'Z', "cap %zu wrote at %zu", cap, i);
    }
    cr_assert_eq(evs_json_quote(s, NULL, 0), need);
    cr_assert_eq(evs_json_quote(s, buf, need), need);
    cr_assert_eq(memcmp(buf, "\"a\\\"b\\n\"", need), 0);
}

Test(json_quote, rejects_invalid_utf8)
{
    static const char *badv[] = {
        "\xc0\x80",   "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "ab\xe2\x82", "\x80",         "x\xff"};
    char big[64], small[2];
    size_t i;

    for (i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
        evs_span s = evs_span_cstr(badv[i]);

        cr_assert_eq(evs_json_quote(s, big, sizeof(big)), (size_t)-1,
                     "case %zu", i);
        cr_assert_eq(evs_json_quote(s, small, sizeof(small)), (size_t)-1,
                     "case %zu (small cap)", i);
    }
}

/* Decodes a quoted string made by evs_json_quote (BMP \u00XX only). */
static size_t unquote(const char *q, size_t n, char *out)
{
    size_t i, o = 0;

    cr_assert_geq(n, 2);
    cr_assert_eq(q[0], '"');
    cr_assert_eq(q[n - 1], '"');
    for (i = 1; i < n - 1; i++) {
        if (q[i] != '\\') {
            out[o++] = q[i];
            continue;
        }
        switch (q[++i]) {
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u':
            cr_assert_eq(memcmp(q + i + 1, "00", 2), 0);
            out[o++] = (char)strtol((char[]){q[i + 3], q[i + 4], 0}, NULL, 16);
            i += 4;
            break;
        default: out[o++] = q[i]; break;
        }
    }
    return o;
}

Test(json_quote, round_trips_through_check)
{
    static const char *pieces[] = {"a",
                                   "Z",
                                   " ",
                                   "\"",
                                   "\\",
                                   "/",
                                   "\n",
                                   "\x01",
                                   "\x1f",
                                   "\x7f",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\t"};
    char s[200], q[2000], back[200], m[2000];
    uint64_t x = 88172645463325252u;
    size_t len, n, k, ml;
    int i, j;

    for (i = 0; i < 5000; i++) {
        len = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        k = x % 40;
        for (j = 0; j < (int)k; j++) {
            const char *p;

            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            p = pieces[x % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(s + len, p, strlen(p));
            len += strlen(p);
        }
        if (i % 7 == 0)
            s[len++] = '\0'; /* an embedded NUL as well */
        n = evs_json_quote((evs_span){s, len}, q, sizeof(q));
        cr_assert_neq(n, (size_t)-1);
        cr_assert_leq(n, sizeof(q));
        cr_assert_eq(evs_json_check(q, n, EVS_JSON_MINIFY, m, &ml, NULL), 0,
                     "quoted text rejected: %.*s", (int)n, q);
        cr_assert_eq(ml, n, "a quoted string is already compact");
        cr_assert_eq(unquote(q, n, back), len);
        cr_assert_eq(memcmp(back, s, len), 0);
        /* Sizing alone agrees. */
        cr_assert_eq(evs_json_quote((evs_span){s, len}, NULL, 0), n);
    }
}

/* ------------------------------------------------------------------ */
/* The one decoder of escapes                                         */
/* ------------------------------------------------------------------ */

static void unesc(const char *raw, const char *want, size_t want_len)
{
    char out[64];
    size_t n = evs__json_unescape(raw, strlen(raw), out);

    cr_assert_eq(n, want_len, "\"%s\": %zu bytes, want %zu", raw, n, want_len);
    cr_assert(memcmp(out, want, n) == 0, "\"%s\"", raw);
    cr_assert(evs__utf8_valid(out, n), "\"%s\" decodes to bad UTF-8", raw);
}

#define UNESC(raw, want) unesc((raw), (want), sizeof(want) - 1)

/* What evs_json_check accepts (json_check.accepts_lone_surrogate_escapes)
 * decodes, and always to valid UTF-8: a lone or unpaired surrogate
 * becomes U+FFFD, a proper pair its code point. */
Test(json_unescape, lone_surrogates_become_replacement_character)
{
    UNESC("\\ud800", "\xef\xbf\xbd");
    UNESC("\\udfff", "\xef\xbf\xbd");
    UNESC("a\\ud800b", "a\xef\xbf\xbd"
                       "b");
    UNESC("\\udc00\\ud800", "\xef\xbf\xbd\xef\xbf\xbd");
    UNESC("\\ud800\\u0041", "\xef\xbf\xbd"
                            "A");
    UNESC("\\ud800\\\\u0041", "\xef\xbf\xbd\\u0041");
    UNESC("\\ud83d\\ude00", "\xf0\x9f\x98\x80");
    UNESC("\\uD83D\\uDE00", "\xf0\x9f\x98\x80");
    UNESC("\\u00e9\\u2603\\u0000", "\xc3\xa9\xe2\x98\x83\0");
}

Test(json_unescape, bad_escapes_are_refused)
{
    static const char *bad[] = {"\\", "\\x", "\\u12", "\\u12g4", "a\\"};
    char out[16];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(evs__json_unescape(bad[i], strlen(bad[i]), out),
                     (size_t)-1, "\"%s\"", bad[i]);
}

Test(json_unescape, one_escape_at_a_time_decodes_the_same)
{
    const char *raw = "\\ud800\\ud83d\\ude00\\n";
    const char *p = raw, *end = raw + strlen(raw);
    char out[4];

    cr_assert_eq(evs__json_unescape_one(&p, end, out), 3);
    cr_assert(memcmp(out, "\xef\xbf\xbd", 3) == 0);
    cr_assert_eq(evs__json_unescape_one(&p, end, out), 4);
    cr_assert(memcmp(out, "\xf0\x9f\x98\x80", 4) == 0);
    cr_assert_eq(evs__json_unescape_one(&p, end, out), 1);
    cr_assert_eq(out[0], '\n');
    cr_assert_eq(p, end);
}

/* ------------------------------------------------------------------ */
/* The growth helper                                                  */
/* ------------------------------------------------------------------ */

static void *no_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return NULL;
}

static void no_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

Test(grow, doubles_from_256_bytes_and_keeps_the_contents)
{
    uint32_t *a = NULL;
    size_t cap = 0;

    cr_assert_eq(EVS__GROW(NULL, &a, &cap, 1), 0);
    cr_assert_eq(cap, 64); /* 256 bytes of uint32_t */
    a[0] = 7;
    cr_assert_eq(EVS__GROW(NULL, &a, &cap, 64), 0);
    cr_assert_eq(cap, 64, "enough room: nothing moves");
    cr_assert_eq(EVS__GROW(NULL, &a, &cap, 300), 0);
    cr_assert_eq(cap, 512);
    a[299] = 9;
    cr_assert_eq(a[0], 7);
    free(a);
}

Test(grow, refuses_overflow_and_failed_allocation_untouched)
{
    const evs_allocator none = {NULL, no_realloc, no_free};
    struct big {
        char b[1024];
    } *s = NULL;
    char *p = NULL;
    size_t cap = 0;

    cr_assert_eq(EVS__GROW(NULL, &s, &cap, SIZE_MAX / 512), -ENOMEM);
    cr_assert_null(s);
    cr_assert_eq(cap, 0);
    cr_assert_eq(EVS__GROW(NULL, &p, &cap, 10), 0);
    cr_assert_eq(cap, 256);
    cr_assert_eq(EVS__GROW(NULL, &p, &cap, SIZE_MAX), -ENOMEM);
    cr_assert_eq(cap, 256);
    cr_assert_eq(EVS__GROW(&none, &p, &cap, 257), -ENOMEM);
    cr_assert_eq(cap, 256);
    p[255] = 'x'; /* still the old block */
    free(p);
}
