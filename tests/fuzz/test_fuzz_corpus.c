/*
 * test_fuzz_corpus.c: the fuzz targets as a regression test of the normal
 * suite. Every file under tests/fuzz/corpus/<target>/ is fed to the
 * target's function (the same code libFuzzer runs, built without
 * -fsanitize=fuzzer), then hostile inputs made here: a 64 MiB line
 * without a newline, nesting 10^6 deep, numbers out of range, invalid
 * UTF-8, embedded NUL bytes, CRLF line endings, and a flip of every bit
 * of a valid line, snapshot, log and replay state.
 *
 * The issue asks for a 1 GiB line; 64 MiB keeps CI fast and is already
 * four times the store's default max_line (16 MiB), which is what bounds
 * a line: the decoders take any length, and the store treats anything
 * longer than max_line as damage. A larger line only costs more time.
 */
#include <criterion/criterion.h>

#include "fuzz.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#if defined(__SANITIZE_ADDRESS__)
#define FZ_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_SANITIZED 1
#endif
#endif
#ifdef FZ_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef FUZZ_CORPUS_DIR
#error "FUZZ_CORPUS_DIR must name tests/fuzz/corpus"
#endif

#define MIB ((size_t)1 << 20)
#define LONG_LINE (64 * MIB)
#define DEEP 1000000

typedef int (*target_fn)(const uint8_t *, size_t);

/* ------------------------------------------------------------------ */
/* Naming the input that crashed                                      */
/* ------------------------------------------------------------------ */

/* A crash ends the test's process without a Criterion message; say
 * which input it was on. */
static void say_input(void)
{
    const char *n = fuzz_input_name();
    ssize_t r;

    if (!*n)
        return;
    r = write(2, "fuzz_corpus: died on input: ", 28);
    r = write(2, n, strlen(n));
    r = write(2, "\n", 1);
    (void)r;
}

#ifndef FZ_SANITIZED
static void on_fatal(int sig)
{
    say_input();
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

static void setup(void)
{
#ifdef FZ_SANITIZED
    __sanitizer_set_death_callback(say_input);
#else
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], on_fatal);
#endif
}

static void teardown(void)
{
    fuzz_recover_done();
    fuzz_evreplay_done();
}

TestSuite(fuzz_corpus, .init = setup, .fini = teardown, .timeout = 300);
TestSuite(fuzz_hostile, .init = setup, .fini = teardown, .timeout = 300);
TestSuite(fuzz_bitflip, .init = setup, .fini = teardown, .timeout = 300);

static jmp_buf input_end;
static int input_armed;

void fuzz_fail(const char *file, int line, const char *cond, const char *what)
{
    fuzz_unquiet();
    if (!input_armed)
        cr_assert_fail("%s:%d: %s (%s)", file, line, what, cond);
    cr_expect_fail("%s:%d: %s: %s (%s)", file, line, fuzz_input_name(), what,
                   cond);
    longjmp(input_end, 1);
}

/*
 * Runs one input. After a broken invariant the target's handles may be
 * left open (a writer's lock, a session), so its temporary stores are
 * dropped and made afresh for the next input.
 */
static void run(target_fn fn, const char *name, const void *buf, size_t len)
{
    fuzz_set_input_name(name);
    if (setjmp(input_end) == 0) {
        input_armed = 1;
        fn((const uint8_t *)buf, len);
    } else {
        fuzz_recover_done();
        fuzz_evreplay_done();
    }
    input_armed = 0;
    fuzz_set_input_name("");
}

/* ------------------------------------------------------------------ */
/* The checked-in corpus                                              */
/* ------------------------------------------------------------------ */

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static char *slurp(const char *path, size_t *len)
{
    char *buf = tu_read_file(path, len);

    cr_assert_not_null(buf, "cannot read %s", path);
    return buf;
}

static const struct {
    const char *name;
    target_fn fn;
} targets[] = {
    {"line", fuzz_line},         {"recover", fuzz_recover},
    {"snapshot", fuzz_snapshot}, {"workflow", fuzz_workflow},
    {"evreplay", fuzz_evreplay}, {"state", fuzz_state},
};

#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

/* Lists corpus/<target>/ sorted; returns the count (-1: no directory). */
static int list_corpus(size_t t, struct dirent ***ents, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%s", FUZZ_CORPUS_DIR, targets[t].name);
    return scandir(dir, ents, not_hidden, by_name);
}

/* Feeds every file of corpus/<target>/ to its target, going on after a
 * failure so that every finding is reported. */
static void replay_corpus(size_t t)
{
    char dir[1024], path[2048];
    struct dirent **ents;
    size_t len;
    int n = list_corpus(t, &ents, dir, sizeof(dir));

    cr_assert_gt(n, 10, "corpus/%s has %d files", targets[t].name, n);
    for (int i = 0; i < n; i++) {
        char *buf;
        snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
        buf = slurp(path, &len);
        run(targets[t].fn, path, buf, len);
        free(buf);
        free(ents[i]);
    }
    free(ents);
    cr_log_info("corpus/%s: %d files", targets[t].name, n);
}

Test(fuzz_corpus, line_decoder_survives_its_corpus)
{
    replay_corpus(0);
}

Test(fuzz_corpus, recovery_survives_its_corpus)
{
    replay_corpus(1);
}

Test(fuzz_corpus, snapshot_parser_survives_its_corpus)
{
    replay_corpus(2);
}

Test(fuzz_corpus, definition_parser_survives_its_corpus)
{
    replay_corpus(3);
}

Test(fuzz_corpus, evreplay_commands_survive_their_corpus)
{
    replay_corpus(4);
}

Test(fuzz_corpus, state_reader_survives_its_corpus)
{
    replay_corpus(5);
}

/* ------------------------------------------------------------------ */
/* Building valid inputs                                              */
/* ------------------------------------------------------------------ */

#define TS "2026-11-22T10:15:30.123456Z"

/* A growing byte buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putn(buf *b, char c, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = b->len + n + 1;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memset(b->p + b->len, c, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Seals b (ending with a comma) with the checksum tail and a newline. */
static void seal(buf *b)
{
    static const char dig[] = "0123456789abcdef";
    uint64_t h = XXH3_64bits(b->p, b->len);
    char hex[17];

    for (int i = 15; i >= 0; i--, h >>= 4)
        hex[i] = dig[h & 0xf];
    hex[16] = '\0';
    puts_(b, "\"checksum\":\"");
    puts_(b, hex);
    puts_(b, "\"}\n");
}

/* A canonical line of the given fields, sealed with a true checksum.
 * Every field is written as given, unchecked: `seq` may carry a batch
 * member after the number, `step` raw bytes of any kind. */
static buf line_of(const char *id, const char *exec, const char *seq,
                   const char *ts, const char *step, const char *data)
{
    buf b = {0};

    puts_(&b, "{\"v\":1,\"id\":\"");
    puts_(&b, id);
    puts_(&b, "\",\"execution_id\":\"");
    puts_(&b, exec);
    puts_(&b, "\",\"path_id\":\"main\",\"sequence\":");
    puts_(&b, seq);
    puts_(&b, ",\"timestamp\":\"");
    puts_(&b, ts);
    puts_(&b, "\",\"event_type\":\"step_started\",\"step_name\":\"");
    puts_(&b, step);
    puts_(&b, "\",\"data\":");
    puts_(&b, data);
    puts_(&b, ",");
    seal(&b);
    return b;
}

static int decode(const char *line, size_t len, unsigned flags, evs_event *ev)
{
    static evs_decoder d;
    static int init;
    evs_event tmp;

    if (!init) {
        evs_decoder_init(&d, NULL);
        init = 1;
    }
    return evs_line_decode(&d, line, len, flags, ev ? ev : &tmp, NULL);
}

/* The encoder's own line for an event with escapes, non-ASCII text and
 * a batch. */
static buf valid_line(void)
{
    evs_event ev;
    buf b = {0};
    size_t len;

    memset(&ev, 0, sizeof(ev));
    ev.id = evs_span_cstr("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    ev.execution_id = evs_span_cstr("fz");
    ev.path_id = evs_span_cstr("main.web");
    ev.sequence = 3;
    ev.batch_first = 2;
    ev.batch_count = 3;
    ev.timestamp_us = 1795342530123456;
    ev.event_type = evs_span_cstr("step_completed");
    ev.step_name = evs_span_cstr("r\xc3\xa9sum\xc3\xa9 \"q\"\t");
    ev.data = evs_span_cstr("{\"output\":{\"n\":-0.5e+3,\"s\":\"\\u00e9\\n\"},"
                            "\"stored_variable\":\"x\"}");
    b.cap = evs_line_encoded_max(&ev) + 1;
    b.p = malloc(b.cap);
    cr_assert_not_null(b.p);
    cr_assert_eq(evs_line_encode(&ev, b.p, b.cap, &len), 0);
    b.len = len;
    return b;
}

/* ------------------------------------------------------------------ */
/* Hostile inputs: the line decoder                                   */
/* ------------------------------------------------------------------ */

Test(fuzz_hostile, a_64_mib_line_without_newline_is_refused_by_the_decoder)
{
    buf b = {0};

    puts_(&b, "{\"v\":1,\"id\":\"");
    putn(&b, 'a', LONG_LINE);
    cr_assert_eq(decode(b.p, b.len, 0, NULL), EVS_EPARSE);
    cr_assert_eq(decode(b.p, b.len, EVS_DECODE_FOREIGN, NULL), EVS_EPARSE);
    run(fuzz_line, "64 MiB canonical prefix", b.p, b.len);
    b.len = 0;
    puts_(&b, "{\"id\":\"x\",\"data\":[\"");
    putn(&b, 'a', LONG_LINE);
    cr_assert_eq(decode(b.p, b.len, EVS_DECODE_FOREIGN, NULL), EVS_EPARSE);
    run(fuzz_line, "64 MiB foreign prefix", b.p, b.len);
    free(b.p);
}

Test(fuzz_hostile, nesting_a_million_deep_neither_crashes_nor_passes_checks)
{
    buf b = {0}, l;
    size_t off = 0;

    putn(&b, '[', DEEP);
    putn(&b, ']', DEEP);
    cr_assert_eq(evs_json_check(b.p, b.len, 0, NULL, NULL, &off), EVS_EPARSE);
    cr_assert_eq(off, EVS_JSON_DEPTH_MAX,
                 "refused at the first level "
                 "past the maximum");
    /* Foreign: strict JSON, so refused. */
    {
        buf f = {0};
        puts_(&f, "{\"id\":\"x\",\"event_type\":\"t\",\"sequence\":1,"
                  "\"timestamp\":\"" TS "\",\"data\":");
        put(&f, b.p, b.len);
        puts_(&f, "}");
        cr_assert_eq(decode(f.p, f.len, EVS_DECODE_FOREIGN, NULL), EVS_EPARSE);
        run(fuzz_line, "foreign line nested 10^6 deep", f.p, f.len);
        free(f.p);
    }
    /* Canonical: the checksum vouches for `data`, which is not scanned
     * (format.h); whatever the decoder says, the writer must refuse to
     * write it back. */
    l = line_of("e1", "fz", "1", TS, "s", b.p);
    {
        evs_event ev;
        int rc = decode(l.p, l.len, 0, &ev);
        char *out = malloc(l.len + 1024);
        size_t n;
        cr_assert(rc == 0 || rc == EVS_EPARSE);
        if (rc == 0) {
            cr_assert_eq(ev.data.len, b.len);
            cr_assert_eq(evs_line_encode(&ev, out, l.len + 1024, &n), -EINVAL);
        }
        free(out);
    }
    run(fuzz_line, "canonical line nested 10^6 deep", l.p, l.len);
    free(l.p);
    free(b.p);
}

Test(fuzz_hostile, numbers_out_of_range_are_refused_by_the_decoder)
{
    static const char *const bad_seq[] = {
        "18446744073709551616",
        "99999999999999999999999",
        "0",
        "007",
        "-1",
        "1e3",
        "1.0",
        "",
    };
    static const char *const bad_ts[] = {
        "10000-01-01T00:00:00.000000Z", "2026-13-01T00:00:00.000000Z",
        "2026-02-30T00:00:00.000000Z",  "2026-11-22T24:00:00.000000Z",
        "2026-11-22T10:15:60.000000Z",  "2026-11-22T10:15:30.123456+",
        "2026-11-22T10:15:30.12345Z0",  "-002-11-22T10:15:30.123456Z",
    };
    evs_event ev;
    buf l;

    for (size_t i = 0; i < sizeof(bad_seq) / sizeof(bad_seq[0]); i++) {
        l = line_of("e", "fz", bad_seq[i], TS, "s", "{}");
        cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_EPARSE,
                     "sequence '%s' was accepted", bad_seq[i]);
        run(fuzz_line, bad_seq[i], l.p, l.len);
        free(l.p);
    }
    for (size_t i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
        l = line_of("e", "fz", "1", bad_ts[i], "s", "{}");
        cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_EPARSE,
                     "timestamp '%s' was accepted", bad_ts[i]);
        run(fuzz_line, bad_ts[i], l.p, l.len);
        free(l.p);
    }
    /* The largest sequence is a sequence. */
    l = line_of("e", "fz", "18446744073709551615", TS, "s", "{}");
    cr_assert_eq(decode(l.p, l.len, 0, &ev), 0);
    cr_assert_eq(ev.sequence, UINT64_MAX);
    free(l.p);
    /* A batch that would run past 2^64 - 1. */
    l = line_of("e", "fz",
                "18446744073709551615,\"batch\":[18446744073709551615,2]", TS,
                "s", "{}");
    cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_EPARSE);
    free(l.p);
    /* Numbers in data are kept as written, whatever their range. */
    l = line_of("e", "fz", "1", TS, "s",
                "[1e400,-0,123456789012345678901234567890,-1E-400]");
    cr_assert_eq(decode(l.p, l.len, 0, &ev), 0);
    cr_assert_eq(ev.data.len, strlen("[1e400,-0,123456789012345678901234567890"
                                     ",-1E-400]"));
    run(fuzz_line, "big numbers in data", l.p, l.len);
    free(l.p);
    /* A foreign sequence out of range. */
    {
        static const char *const f[] = {
            "{\"id\":\"x\",\"event_type\":\"t\",\"sequence\":1e400,"
            "\"timestamp\":\"" TS "\"}",
            "{\"id\":\"x\",\"event_type\":\"t\","
            "\"sequence\":18446744073709551616,\"timestamp\":\"" TS "\"}",
            "{\"id\":\"x\",\"event_type\":\"t\",\"sequence\":-5,"
            "\"timestamp\":\"" TS "\"}",
            "{\"id\":\"x\",\"event_type\":\"t\",\"sequence\":1,"
            "\"timestamp\":\"99999-01-01T00:00:00Z\"}",
            "{\"id\":\"x\",\"event_type\":\"t\",\"sequence\":1,"
            "\"timestamp\":\"9999-12-31T23:59:59.999999-23:59\"}",
        };
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            cr_assert_eq(decode(f[i], strlen(f[i]), EVS_DECODE_FOREIGN, NULL),
                         EVS_EPARSE, "accepted %s", f[i]);
            run(fuzz_line, f[i], f[i], strlen(f[i]));
        }
    }
}

Test(fuzz_hostile, invalid_utf8_in_a_string_field_is_refused)
{
    static const char *const bad[] = {
        "\xff",      "\xc0\xaf", "\xed\xa0\x80",         "\xf4\x90\x80\x80",
        "a\xe2\x82", "\x80",     "\xf8\x88\x80\x80\x80",
    };
    buf l;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char f[256];
        l = line_of("e", "fz", "1", TS, bad[i], "{}");
        cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_EPARSE,
                     "invalid UTF-8 #%zu in step_name accepted", i);
        run(fuzz_line, "invalid UTF-8 (canonical)", l.p, l.len);
        free(l.p);
        snprintf(f, sizeof(f),
                 "{\"id\":\"x\",\"event_type\":\"t%s\",\"sequence\":1,"
                 "\"timestamp\":\"" TS "\"}",
                 bad[i]);
        cr_assert_eq(decode(f, strlen(f), EVS_DECODE_FOREIGN, NULL), EVS_EPARSE,
                     "invalid UTF-8 #%zu in a foreign line", i);
        run(fuzz_line, "invalid UTF-8 (foreign)", f, strlen(f));
    }
}

Test(fuzz_hostile, an_embedded_nul_is_refused_or_kept_as_escaped_text)
{
    evs_event ev;
    buf l;

    /* A raw NUL is a control character: never inside a string. */
    l = line_of("e", "fz", "1", TS, "a", "{}");
    strstr(l.p, "\"step_name\":\"a")[13] = '\0';
    cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_ECORRUPT,
                 "a changed byte must fail the checksum first");
    fuzz_fix_lines(l.p, l.len);
    cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_EPARSE);
    run(fuzz_line, "raw NUL in step_name", l.p, l.len);
    free(l.p);
    /* An escaped NUL is text; the view carries it by length. */
    l = line_of("e\\u0000x", "fz", "1", TS, "s", "{}");
    cr_assert_eq(decode(l.p, l.len, 0, &ev), 0);
    cr_assert_eq(ev.id.len, 3);
    cr_assert_eq(memcmp(ev.id.ptr, "e\0x", 3), 0);
    run(fuzz_line, "escaped NUL in id", l.p, l.len);
    free(l.p);
    /* A NUL before the line: not a line. */
    {
        static const char f[] = "\0{\"id\":\"x\",\"event_type\":\"t\","
                                "\"sequence\":1,\"timestamp\":\"" TS "\"}";
        cr_assert_eq(decode(f, sizeof(f) - 1, EVS_DECODE_FOREIGN, NULL),
                     EVS_EPARSE);
        run(fuzz_line, "leading NUL", f, sizeof(f) - 1);
    }
}

Test(fuzz_hostile, crlf_ends_no_canonical_line_but_a_foreign_one)
{
    static const char f[] = "{\"id\":\"x\",\"event_type\":\"t\",\"sequence\":1,"
                            "\"timestamp\":\"" TS "\"}\r\n";
    buf l = line_of("e", "fz", "1", TS, "s", "{}");

    /* }\n becomes }\r\n: the framing's last bytes are gone. */
    l.p[l.len - 1] = '\r';
    puts_(&l, "\n");
    cr_assert_eq(decode(l.p, l.len, 0, NULL), EVS_EPARSE);
    cr_assert_eq(decode(l.p, l.len, EVS_DECODE_FOREIGN, NULL), EVS_EPARSE);
    run(fuzz_line, "canonical line with CRLF", l.p, l.len);
    free(l.p);
    /* FORMAT.md §8: a foreign line may end with CRLF. */
    cr_assert_eq(decode(f, sizeof(f) - 1, EVS_DECODE_FOREIGN, NULL), 0);
    run(fuzz_line, "foreign line with CRLF", f, sizeof(f) - 1);
}

/* ------------------------------------------------------------------ */
/* Hostile inputs: recovery                                           */
/* ------------------------------------------------------------------ */

/* A log of valid lines for execution fz, sequences 1..n. */
static buf log_of(size_t n)
{
    buf b = {0};
    char seq[24], id[24];

    for (size_t i = 1; i <= n; i++) {
        buf l;
        snprintf(seq, sizeof(seq), "%zu", i);
        snprintf(id, sizeof(id), "e%zu", i);
        l = line_of(id, "fz", seq, TS, "s", "{\"i\":1}");
        put(&b, l.p, l.len);
        free(l.p);
    }
    return b;
}

Test(fuzz_hostile, a_64_mib_line_is_never_taken_for_an_event_by_recovery)
{
    buf b = log_of(2), big = {0};
    size_t keep = b.len;

    /* No newline at all after two good lines. */
    putn(&b, 'x', LONG_LINE);
    run(fuzz_recover, "64 MiB without newline", b.p, b.len);
    /* A well-formed, checksummed line four times max_line. */
    b.len = keep;
    puts_(&big, "\"");
    putn(&big, 'y', LONG_LINE);
    puts_(&big, "\"");
    {
        buf l = line_of("e3", "fz", "3", TS, "s", big.p);
        put(&b, l.p, l.len);
        free(l.p);
    }
    run(fuzz_recover, "64 MiB valid line", b.p, b.len);
    free(big.p);
    free(b.p);
}

Test(fuzz_hostile, hostile_logs_never_crash_recovery)
{
    buf b = log_of(3), t = {0};
    size_t n3 = b.len;

    /* Nesting 10^6 deep in a checksummed line's data. */
    putn(&t, '[', DEEP);
    putn(&t, ']', DEEP);
    {
        buf l = line_of("e4", "fz", "4", TS, "s", t.p);
        put(&b, l.p, l.len);
        free(l.p);
    }
    run(fuzz_recover, "log line nested 10^6 deep", b.p, b.len);
    b.len = n3;
    /* Sequences that wrap, jump, or start past 1. */
    {
        buf l = line_of("e4", "fz", "18446744073709551615", TS, "s", "{}");
        put(&b, l.p, l.len);
        free(l.p);
        run(fuzz_recover, "sequence 2^64-1 after 3", b.p, b.len);
        free(b.p);
        b = line_of("e1", "fz", "18446744073709551615", TS, "s", "{}");
        run(fuzz_recover, "log starting at 2^64-1", b.p, b.len);
        free(b.p);
    }
    /* Invalid UTF-8, a NUL, CRLF. */
    b = log_of(2);
    {
        buf l = line_of("e3", "fz", "3", TS, "\xc3\x28", "{}");
        put(&b, l.p, l.len);
        free(l.p);
    }
    run(fuzz_recover, "invalid UTF-8 in the last line", b.p, b.len);
    free(b.p);
    b = log_of(3);
    b.p[b.len / 2] = '\0';
    run(fuzz_recover, "NUL in the middle", b.p, b.len);
    free(b.p);
    b = log_of(3);
    {
        buf c = {0};
        for (size_t i = 0; i < b.len; i++) {
            if (b.p[i] == '\n')
                puts_(&c, "\r");
            put(&c, b.p + i, 1);
        }
        run(fuzz_recover, "CRLF log", c.p, c.len);
        free(c.p);
    }
    free(b.p);
    free(t.p);
}

/* ------------------------------------------------------------------ */
/* Hostile inputs: snapshots                                          */
/* ------------------------------------------------------------------ */

static buf valid_snapshot(const char *state)
{
    evs_snapshot s;
    buf b = {0};
    char *out;
    size_t len;

    memset(&s, 0, sizeof(s));
    s.id = evs_span_cstr("fz");
    s.workflow_name = evs_span_cstr("r\xc3\xa9search \"agent\"");
    s.workflow_hash = evs_span_cstr("0123456789abcdef");
    s.status = evs_span_cstr("running");
    s.start_time_us = 1795342530123456;
    s.created_at_us = 1795342530123456;
    s.updated_at_us = 1795342531000000;
    s.last_event_seq = 7;
    s.inputs = evs_span_cstr("{\"topic\":\"cats\"}");
    s.lineage = evs_span_cstr("{\"retry_of\":\"fy\"}");
    s.state = evs_span_cstr(state);
    cr_assert_eq(evs_snapshot_encode(&s, NULL, &out, &len), 0);
    put(&b, out, len);
    free(out);
    return b;
}

Test(fuzz_hostile, hostile_snapshots_are_refused)
{
    buf b = {0}, t = {0}, f;
    evs_snapshot *out = NULL;
    char *fx;
    size_t n;

    /* A 64 MiB header without a newline. */
    puts_(&b, "{\"v\":1,\"kind\":\"snapshot\",\"id\":\"");
    putn(&b, 'a', LONG_LINE);
    cr_assert_eq(evs_snapshot_decode(b.p, b.len, 0, NULL, &out, NULL),
                 EVS_EPARSE);
    run(fuzz_snapshot, "64 MiB header", b.p, b.len);
    free(b.p);
    /* A body nested 10^6 deep, checksums and binding fixed. */
    putn(&t, '[', DEEP);
    putn(&t, ']', DEEP);
    b = valid_snapshot("{\"n\":1}");
    f = (buf){0};
    puts_(&f, "\x01");
    {
        char *st = strstr(b.p, "\"state\":") + 8;
        put(&f, b.p, (size_t)(st - b.p));
        put(&f, t.p, t.len);
        puts_(&f, st + 7); /* past {"n":1} */
    }
    run(fuzz_snapshot, "snapshot state nested 10^6 deep", f.p, f.len);
    free(f.p);
    free(b.p);
    /* Numbers out of range, invalid UTF-8, NUL, CRLF: each fixed up so
     * only the oddity is wrong. */
    {
#define SUB(f, t)                                                              \
    {                                                                          \
        f, t, sizeof(t) - 1                                                    \
    }
        static const struct {
            const char *from, *to;
            size_t tolen;
        } subs[] = {
            SUB("\"last_event_seq\":7",
                "\"last_event_seq\":18446744073709551616"),
            SUB("\"last_event_seq\":7", "\"last_event_seq\":-7"),
            SUB("\"last_event_seq\":7", "\"last_event_seq\":07"),
            SUB("\"status\":\"running\"", "\"status\":\"run\xffing\""),
            SUB("\"status\":\"running\"", "\"status\":\"run\xed\xa0\x80\""),
            SUB("\"status\":\"running\"", "\"status\":\"run\0ing\""),
            SUB("\"id\":\"fz\"", "\"id\":\"f\\u0000z\""),
            SUB("\"id\":\"fz\"", "\"id\":\"../fz\""),
            SUB("\"start_time\":\"2026", "\"start_time\":\"10000"),
            SUB("\"v\":1,", "\"v\":18446744073709551616,"),
        };
#undef SUB
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            buf s = valid_snapshot("{}"), m = {0};
            char *at = strstr(s.p, subs[i].from);
            cr_assert_not_null(at, "%s", subs[i].from);
            put(&m, s.p, (size_t)(at - s.p));
            put(&m, subs[i].to, subs[i].tolen);
            puts_(&m, at + strlen(subs[i].from));
            fx = fuzz_fix_snapshot(m.p, m.len, &n);
            cr_assert_not_null(fx);
            cr_assert_neq(evs_snapshot_decode(fx, n, 0, NULL, &out, NULL), 0,
                          "substitution %zu accepted", i);
            cr_assert_neq(evs_snapshot_decode(fx, n, EVS_SNAPSHOT_HEADER_ONLY,
                                              NULL, &out, NULL),
                          0, "substitution %zu accepted (header)", i);
            run(fuzz_snapshot, subs[i].to, fx, n);
            free(fx);
            free(m.p);
            free(s.p);
        }
    }
    /* CRLF: the header line ends in \r before its newline. */
    b = valid_snapshot("{}");
    f = (buf){0};
    for (size_t i = 0; i < b.len; i++) {
        if (b.p[i] == '\n')
            puts_(&f, "\r");
        put(&f, b.p + i, 1);
    }
    cr_assert_neq(evs_snapshot_decode(f.p, f.len, 0, NULL, &out, NULL), 0);
    run(fuzz_snapshot, "CRLF snapshot", f.p, f.len);
    free(f.p);
    free(b.p);
    free(t.p);
}

/* ------------------------------------------------------------------ */
/* Hostile inputs: replay states                                      */
/* ------------------------------------------------------------------ */

/* Applies one event of a short hand-made history. */
static void apply_ev(evs_replay *r, uint64_t seq, const char *type,
                     const char *path, const char *step, const char *data)
{
    evs_error_info v;
    evs_event ev;
    char id[24];

    memset(&ev, 0, sizeof(ev));
    snprintf(id, sizeof(id), "e%llu", (unsigned long long)seq);
    ev.id = evs_span_cstr(id);
    ev.execution_id = evs_span_cstr("fz");
    ev.path_id = evs_span_cstr(path ? path : "main");
    ev.sequence = seq;
    ev.timestamp_us = 1795342530000000 + (int64_t)seq * 1000;
    ev.event_type = evs_span_cstr(type);
    ev.step_name = evs_span_cstr(step ? step : "");
    ev.data = evs_span_cstr(data ? data : "{}");
    cr_assert_eq(evs_replay_apply(r, &ev, &v), 0, "event %llu: %s",
                 (unsigned long long)seq, v.msg);
}

/*
 * The state of a short history with a bit of everything (a retry, a
 * branch, an `each` step, a signal, a wait, a timer, a version, a
 * variable, escapes and non-ASCII text), as the writer writes it.
 */
static buf valid_state(void)
{
    evs_replay *r;
    buf b = {0};
    char *out;
    size_t len;
    uint64_t q = 0;

    cr_assert_eq(evs_replay_new(NULL, &r), 0);
    apply_ev(r, ++q, "execution_started", NULL, NULL,
             "{\"workflow_name\":\"r\\u00e9search\",\"inputs\":{\"q\":"
             "\"tab\\there\"},\"lineage\":{\"retry_of\":\"fy\"}}");
    apply_ev(r, ++q, "step_started", NULL, "a",
             "{\"attempt\":1,\"step_hash\":\"sha\",\"kind\":\"action\"}");
    apply_ev(r, ++q, "step_failed", NULL, "a", "{\"error\":\"boom\"}");
    apply_ev(r, ++q, "retry_scheduled", NULL, "a",
             "{\"fire_at\":\"2026-11-22T10:15:31.000000Z\",\"attempt\":2}");
    apply_ev(r, ++q, "step_started", NULL, "a", "{\"attempt\":2}");
    apply_ev(r, ++q, "step_completed", NULL, "a",
             "{\"output\":{\"s\":\"\\\"q\\\"\"},\"stored_variable\":\"va\"}");
    apply_ev(r, ++q, "path_branched", NULL, "a",
             "{\"new_paths\":[{\"id\":\"p1\"},{\"id\":\"p\\u00e9\"}]}");
    apply_ev(r, ++q, "step_started", "p1", "e",
             "{\"iteration\":0,\"count\":2}");
    apply_ev(r, ++q, "step_completed", "p1", "e",
             "{\"iteration\":0,\"output\":0}");
    apply_ev(r, ++q, "signal_received", NULL, NULL,
             "{\"signal\":\"go\",\"payload\":[1,{\"a\":null}]}");
    apply_ev(r, ++q, "wait_started", "p\xc3\xa9", "w",
             "{\"signal\":\"later\"}");
    apply_ev(r, ++q, "timer_started", "p1", "t",
             "{\"timer_id\":\"t1\","
             "\"fire_at\":\"2026-11-22T10:20:00.000000Z\"}");
    apply_ev(r, ++q, "version_decision", NULL, NULL,
             "{\"change_id\":\"c1\",\"version\":1,\"min\":0,\"max\":2}");
    apply_ev(r, ++q, "variable_set", NULL, NULL,
             "{\"name\":\"v2\",\"value\":[true,-0.5e3,null]}");
    cr_assert_eq(evs_replay_state_json(r, &out, &len), 0);
    put(&b, out, len);
    free(out);
    evs_replay_free(r);
    return b;
}

/* Loads a state into a fresh replayer; returns the code. */
static int load_state(const void *p, size_t n)
{
    evs_replay *r;
    int rc;

    cr_assert_eq(evs_replay_new(NULL, &r), 0);
    rc = evs_replay_load_state(r, p, n);
    evs_replay_free(r);
    return rc;
}

/* s with the first `from` replaced by `to` (tolen bytes). */
static buf state_sub(const buf *s, const char *from, const char *to,
                     size_t tolen)
{
    char *at = memmem(s->p, s->len, from, strlen(from));
    buf m = {0};

    cr_assert_not_null(at, "%s", from);
    put(&m, s->p, (size_t)(at - s->p));
    put(&m, to, tolen);
    put(&m, at + strlen(from), s->len - (size_t)(at - s->p) - strlen(from));
    return m;
}

Test(fuzz_hostile, a_64_mib_state_is_read_or_refused_whole)
{
    buf s = valid_state(), b = {0}, m;

    /* A string that never ends. */
    puts_(&b, "{\"v\":5,\"execution_id\":\"");
    putn(&b, 'a', LONG_LINE);
    cr_assert_eq(load_state(b.p, b.len), EVS_EPARSE);
    run(fuzz_state, "64 MiB unterminated string", b.p, b.len);
    /* A valid state with a 64 MiB input, read, written back, read. */
    b.len = 0;
    puts_(&b, "\"");
    putn(&b, 'i', LONG_LINE);
    puts_(&b, "\"");
    m = state_sub(&s, "{\"q\":\"tab\\there\"}", b.p, b.len);
    cr_assert_eq(load_state(m.p, m.len), 0);
    run(fuzz_state, "64 MiB input in a valid state", m.p, m.len);
    free(m.p);
    free(s.p);
    free(b.p);
}

Test(fuzz_hostile, a_state_nested_deeper_than_json_allows_is_refused)
{
    buf s = valid_state(), t = {0}, m;
    size_t base;

    /* 10^6 deep: as the whole text, and as a value of the state. */
    putn(&t, '[', DEEP);
    putn(&t, ']', DEEP);
    cr_assert_eq(load_state(t.p, t.len), EVS_EPARSE);
    run(fuzz_state, "state text nested 10^6 deep", t.p, t.len);
    {
        buf w = {0};
        puts_(&w, "\"inputs\":");
        put(&w, t.p, t.len);
        puts_(&w, ",\"x\":");
        m = state_sub(&s, "\"inputs\":", w.p, w.len);
        free(w.p);
    }
    cr_assert_eq(load_state(m.p, m.len), EVS_EPARSE);
    run(fuzz_state, "state input nested 10^6 deep", m.p, m.len);
    free(m.p);
    /* At the limit the load agrees with evs_json_check(), one level
     * deeper too: a value in the state already sits one level down,
     * in an element of a list three. */
    for (size_t lvl = 0; lvl < 2; lvl++) {
        static const char *const at[] = {"\"inputs\":", "\"value\":"};
        static const size_t outer[] = {1, 3};
        for (size_t k = 0; k < 2; k++) {
            buf w = {0};
            base = EVS_JSON_DEPTH_MAX - outer[k] + lvl;
            puts_(&w, at[k]);
            putn(&w, '[', base);
            putn(&w, ']', base);
            puts_(&w, ",\"x\":");
            m = state_sub(&s, at[k], w.p, w.len);
            cr_assert_eq(evs_json_check(m.p, m.len, 0, NULL, NULL, NULL),
                         lvl ? EVS_EPARSE : 0, "%s at depth max + %zu", at[k],
                         lvl);
            cr_assert_eq(load_state(m.p, m.len), lvl ? EVS_EPARSE : 0,
                         "%s at depth max + %zu", at[k], lvl);
            run(fuzz_state,
                lvl ? "state past the depth limit" : "state at the depth limit",
                m.p, m.len);
            free(m.p);
            free(w.p);
        }
    }
    free(s.p);
    free(t.p);
}

Test(fuzz_hostile, numbers_out_of_range_are_refused_by_the_state_reader)
{
#define SUB(f, t)                                                              \
    {                                                                          \
        f, t, sizeof(t) - 1                                                    \
    }
    static const struct {
        const char *from, *to;
        size_t tolen;
    } subs[] = {
        SUB("\"last_seq\":14", "\"last_seq\":18446744073709551616"),
        SUB("\"last_seq\":14", "\"last_seq\":99999999999999999999999"),
        SUB("\"last_seq\":14", "\"last_seq\":-14"),
        SUB("\"last_seq\":14", "\"last_seq\":1e400"),
        SUB("\"last_seq\":14", "\"last_seq\":14.5"),
        SUB("\"last_seq\":14", "\"last_seq\":\"14\""),
        SUB("\"started_at\":", "\"started_at\":-9223372036854775809,\"x\":"),
        SUB("\"started_at\":", "\"started_at\":9223372036854775808,\"x\":"),
        SUB("\"iteration\":-1", "\"iteration\":-1e19"),
        SUB("\"v\":5", "\"v\":18446744073709551616"),
    };
#undef SUB
    buf s = valid_state();

    cr_assert_eq(load_state(s.p, s.len), 0);
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        buf m = state_sub(&s, subs[i].from, subs[i].to, subs[i].tolen);
        cr_assert_eq(evs_json_check(m.p, m.len, 0, NULL, NULL, NULL), 0);
        cr_assert_eq(load_state(m.p, m.len), EVS_EPARSE, "%s accepted",
                     subs[i].to);
        run(fuzz_state, subs[i].to, m.p, m.len);
        free(m.p);
    }
    /* Another version (older or newer), and one that is not JSON. */
    for (int v = 4; v <= 6; v += 2) {
        char to[8];
        buf m, t;
        snprintf(to, sizeof(to), "\"v\":%d", v);
        m = state_sub(&s, "\"v\":5", to, 5);
        cr_assert_eq(load_state(m.p, m.len), EVS_EFORMAT, "%s", to);
        run(fuzz_state, to, m.p, m.len);
        t = state_sub(&m, "\"waits\":[", "\"waits\":[}", 10);
        cr_assert_eq(load_state(t.p, t.len), EVS_EPARSE, "%s", to);
        run(fuzz_state, "another state version, not JSON", t.p, t.len);
        free(t.p);
        free(m.p);
    }
    free(s.p);
}

Test(fuzz_hostile, invalid_utf8_in_a_state_is_refused)
{
    static const char *const bad[] = {
        "\xff",      "\xc0\xaf", "\xed\xa0\x80",         "\xf4\x90\x80\x80",
        "a\xe2\x82", "\x80",     "\xf8\x88\x80\x80\x80",
    };
    buf s = valid_state();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        static const char *const where[] = {
            "\"execution_id\":\"fz", /* a string the state keeps */
            "\"inputs\":{\"q",       /* inside a value kept as JSON */
            "\"waits\":[{\"path",    /* a key */
        };
        for (size_t k = 0; k < 3; k++) {
            char to[64];
            buf m;
            snprintf(to, sizeof(to), "%s%s", where[k], bad[i]);
            m = state_sub(&s, where[k], to, strlen(to));
            cr_assert_eq(load_state(m.p, m.len), EVS_EPARSE,
                         "invalid UTF-8 #%zu at %s accepted", i, where[k]);
            run(fuzz_state, "invalid UTF-8 in a state", m.p, m.len);
            free(m.p);
        }
    }
    free(s.p);
}

Test(fuzz_hostile, a_nul_in_a_state_is_refused_or_kept_as_escaped_text)
{
    buf s = valid_state(), m;
    evs_replay *r;
    char *out;
    size_t len;

    /* Raw, in a string: a control character. */
    m = state_sub(&s, "\"execution_id\":\"fz\"", "\"execution_id\":\"f\0z\"",
                  20);
    cr_assert_eq(load_state(m.p, m.len), EVS_EPARSE);
    run(fuzz_state, "raw NUL in execution_id", m.p, m.len);
    free(m.p);
    /* After the state, and before it. */
    m = (buf){0};
    put(&m, s.p, s.len);
    put(&m, "\0", 1);
    cr_assert_eq(load_state(m.p, m.len), EVS_EPARSE);
    run(fuzz_state, "NUL after the state", m.p, m.len);
    free(m.p);
    m = (buf){0};
    put(&m, "\0", 1);
    put(&m, s.p, s.len);
    cr_assert_eq(load_state(m.p, m.len), EVS_EPARSE);
    run(fuzz_state, "NUL before the state", m.p, m.len);
    free(m.p);
    /* Escaped, it is text: unescaped in place, carried by length, and
     * escaped again when written back. */
    m = state_sub(&s, "\"execution_id\":\"fz\"",
                  "\"execution_id\":\"f\\u0000z\"", 25);
    cr_assert_eq(evs_replay_new(NULL, &r), 0);
    cr_assert_eq(evs_replay_load_state(r, m.p, m.len), 0);
    cr_assert_eq(evs_replay_exec(r)->execution_id.len, 3);
    cr_assert_eq(memcmp(evs_replay_exec(r)->execution_id.ptr, "f\0z", 3), 0);
    cr_assert_eq(evs_replay_state_json(r, &out, &len), 0);
    cr_assert_eq(evs_json_check(out, len, 0, NULL, NULL, NULL), 0);
    free(out);
    evs_replay_free(r);
    run(fuzz_state, "escaped NUL in execution_id", m.p, m.len);
    free(m.p);
    free(s.p);
}

Test(fuzz_hostile, a_state_with_crlf_between_tokens_reads_the_same)
{
    buf s = valid_state(), c = {0};
    evs_replay *r;
    char *out;
    size_t len;
    int in_str = 0;

    /* CRLF and a space after every comma, colon and opening bracket
     * outside strings: JSON whitespace, so the same state. */
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        put(&c, &ch, 1);
        if (in_str) {
            if (ch == '\\')
                put(&c, &s.p[++i], 1);
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (strchr(",:[{", ch)) {
            puts_(&c, "\r\n ");
        }
    }
    puts_(&c, "\r\n");
    cr_assert_eq(evs_replay_new(NULL, &r), 0);
    cr_assert_eq(evs_replay_load_state(r, c.p, c.len), 0);
    cr_assert_eq(evs_replay_state_json(r, &out, &len), 0);
    /* Values kept as JSON keep their whitespace (the reader takes them
     * as written), so the two compare minified. */
    cr_assert_eq(evs_json_check(out, len, EVS_JSON_MINIFY, out, &len, NULL), 0);
    cr_assert_eq(len, s.len);
    cr_assert_eq(memcmp(out, s.p, len), 0, "CRLF state reads as another");
    free(out);
    evs_replay_free(r);
    run(fuzz_state, "CRLF state", c.p, c.len);
    free(c.p);
    free(s.p);
}

/* ------------------------------------------------------------------ */
/* Hostile inputs: definitions and evreplay commands                  */
/* ------------------------------------------------------------------ */

static int parse_def(const char *json, size_t len)
{
    evs_wf_def *d = NULL;
    evs_error_info err;
    int rc = evs_wf_parse(json, len, NULL, NULL, NULL, &d, &err);

    evs_wf_free(d);
    return rc;
}

#define DEF_HEAD                                                               \
    "{\"name\":\"w\",\"steps\":[{\"name\":\"a\",\"kind\":\"action\","

Test(fuzz_hostile, hostile_definitions_are_refused)
{
    static const char *const bad[] = {
        "{\"name\":\"w\",\"version\":1e400,\"steps\":[{\"name\":\"a\","
        "\"kind\":\"end\"}]}",
        "{\"name\":\"w\",\"version\":9223372036854775808,\"steps\":"
        "[{\"name\":\"a\",\"kind\":\"end\"}]}",
        DEF_HEAD "\"action\":\"x\",\"timeout_ms\":9223372036854775808}]}",
        DEF_HEAD "\"action\":\"x\",\"timeout_ms\":-1}]}",
        DEF_HEAD "\"action\":\"x\",\"retry\":{\"max_attempts\":4294967296}}]}",
        DEF_HEAD "\"action\":\"x\",\"retry\":{\"backoff_coefficient\":"
                 "1e400}}]}",
        DEF_HEAD "\"action\":\"x\",\"retry\":{\"jitter\":1.0000001}}]}",
        "{\"name\":\"w\",\"steps\":[{\"name\":\"a\",\"kind\":\"sleep\","
        "\"duration_ms\":1e20}]}",
        "{\"name\":\"w\",\"steps\":[{\"name\":\"a\",\"kind\":\"sleep\","
        "\"until\":\"10000-01-01T00:00:00Z\"}]}",
        DEF_HEAD "\"action\":\"x\xff\"}]}",
        DEF_HEAD "\"action\":\"x\",\"params\":\"\xc0\x80\"}]}",
        "{\"name\":\"w\r\n\",\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}",
    };
    buf b = {0};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse_def(bad[i], strlen(bad[i])), EVS_EPARSE,
                     "definition %zu accepted", i);
        run(fuzz_workflow, bad[i], bad[i], strlen(bad[i]));
    }
    /* An embedded NUL ends nothing: the length does. */
    {
        static const char nul[] = "{\"name\":\"w\",\"steps\":[{\"name\":\"a\","
                                  "\"kind\":\"end\"}]}\0trailing";
        cr_assert_eq(parse_def(nul, sizeof(nul) - 1), EVS_EPARSE);
        run(fuzz_workflow, "NUL after the document", nul, sizeof(nul) - 1);
    }
    /* CRLF between tokens is JSON whitespace: fine. */
    {
        static const char crlf[] = "{\r\n\"name\":\"w\",\r\n\"steps\":[\r\n"
                                   "{\"name\":\"a\",\"kind\":\"end\"}]\r\n}"
                                   "\r\n";
        cr_assert_eq(parse_def(crlf, sizeof(crlf) - 1), 0);
        run(fuzz_workflow, "CRLF definition", crlf, sizeof(crlf) - 1);
    }
    /* Nesting 10^6 deep in params. */
    puts_(&b, DEF_HEAD "\"action\":\"x\",\"params\":");
    putn(&b, '[', DEEP);
    putn(&b, ']', DEEP);
    puts_(&b, "}]}");
    cr_assert_eq(parse_def(b.p, b.len), EVS_EPARSE);
    run(fuzz_workflow, "params nested 10^6 deep", b.p, b.len);
    /* A 64 MiB string that never ends. */
    b.len = 0;
    puts_(&b, "{\"name\":\"");
    putn(&b, 'n', LONG_LINE);
    cr_assert_eq(parse_def(b.p, b.len), EVS_EPARSE);
    run(fuzz_workflow, "64 MiB unterminated name", b.p, b.len);
    free(b.p);
}

Test(fuzz_hostile, hostile_evreplay_commands_fail_cleanly)
{
    static const char cmds[] = "goto 18446744073709551616\n"
                               "goto 18446744073709551615\n"
                               "step 18446744073709551615\n"
                               "back 18446744073709551615\n"
                               "next 99999999999999999999999\n"
                               "list 18446744073709551615\n"
                               "list -1\n"
                               "event 0\n"
                               "diff 0 18446744073709551615\n"
                               "diff 18446744073709551615 1\n"
                               "break seq 0\n"
                               "break seq 18446744073709551616\n"
                               "print step a main -9223372036854775809\n"
                               "print step a main 9223372036854775807\n"
                               "print path \xff\xfe\n"
                               "search \xc0\xaf\n"
                               "break step \xed\xa0\x80\n"
                               "step\r\n"
                               "print var plan\r\n"
                               "delete 99999999999999999999\n"
                               "delete 2147483648\n"
                               "info breakpoints\n"
                               "info violations\n";
    buf b = {0};

    run(fuzz_evreplay, "out-of-range and odd commands", cmds, sizeof(cmds) - 1);
    /* Embedded NUL bytes separate words. */
    {
        static const char nul[] = "goto\0"
                                  "3\0;print\0state\0\0;where";
        run(fuzz_evreplay, "NUL between words", nul, sizeof(nul) - 1);
    }
    /* A 64 MiB word. */
    puts_(&b, "search ");
    putn(&b, 's', LONG_LINE);
    puts_(&b, ";break step ");
    putn(&b, 'b', 1 << 16);
    puts_(&b, ";info breakpoints;goto ");
    putn(&b, '9', 1 << 16);
    run(fuzz_evreplay, "64 MiB command", b.p, b.len);
    free(b.p);
}

/* ------------------------------------------------------------------ */
/* Bit flips                                                          */
/* ------------------------------------------------------------------ */

Test(fuzz_bitflip, every_bit_flip_of_a_valid_line_is_rejected)
{
    buf l = valid_line();
    char name[64];

    cr_assert_eq(decode(l.p, l.len, 0, NULL), 0);
    cr_assert_eq(decode(l.p, l.len - 1, 0, NULL), 0, "without newline");
    for (size_t i = 0; i < l.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            l.p[i] ^= (char)(1 << bit);
            cr_assert_neq(decode(l.p, l.len, 0, NULL), 0,
                          "flip of bit %d at byte %zu accepted", bit, i);
            cr_assert_neq(decode(l.p, l.len, EVS_DECODE_FOREIGN, NULL), 0,
                          "flip of bit %d at byte %zu accepted as foreign", bit,
                          i);
            snprintf(name, sizeof(name), "line, byte %zu bit %d", i, bit);
            run(fuzz_line, name, l.p, l.len);
            l.p[i] ^= (char)(1 << bit);
        }
    }
    cr_log_info("line: %zu flips, all rejected", l.len * 8);
    free(l.p);
}

Test(fuzz_bitflip, every_bit_flip_of_a_valid_snapshot_is_rejected)
{
    buf s = valid_snapshot("{\"paths\":[{\"id\":\"main\",\"status\":"
                           "\"running\"}],\"vars\":{\"x\":[1,2.5,null]}}");
    size_t hlen = (size_t)(strchr(s.p, '\n') - s.p) + 1;
    evs_snapshot *out = NULL;
    char name[64];
    int rc;

    cr_assert_eq(evs_snapshot_decode(s.p, s.len, 0, NULL, &out, NULL), 0);
    evs_snapshot_free(out);
    for (size_t i = 0; i < s.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            out = NULL;
            s.p[i] ^= (char)(1 << bit);
            rc = evs_snapshot_decode(s.p, s.len, 0, NULL, &out, NULL);
            cr_assert_neq(rc, 0, "flip of bit %d at byte %zu accepted", bit, i);
            rc = evs_snapshot_decode(s.p, s.len, EVS_SNAPSHOT_HEADER_ONLY, NULL,
                                     &out, NULL);
            /* The header alone vouches only for the header. */
            if (i < hlen)
                cr_assert_neq(rc, 0,
                              "header flip of bit %d at byte %zu "
                              "accepted",
                              bit, i);
            else
                cr_assert_eq(rc, 0,
                             "body flip at byte %zu refused by a "
                             "header-only decode",
                             i);
            evs_snapshot_free(out);
            snprintf(name, sizeof(name), "snapshot, byte %zu bit %d", i, bit);
            run(fuzz_snapshot, name, s.p, s.len);
            s.p[i] ^= (char)(1 << bit);
        }
    }
    cr_log_info("snapshot: %zu flips (%zu in the header), all rejected",
                s.len * 8, hlen * 8);
    free(s.p);
}

/* Removes the cut-*.jsonl files recovery saved in dir. */
static void clear_cuts(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "cut-", 4) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/*
 * A log of four appends (one of them a batch of two), each bit flipped in
 * turn. Recovery and a cursor must never hand out the damaged line: what
 * can be read is the lines before it, byte for byte.
 */
Test(fuzz_bitflip, no_bit_flip_of_a_log_is_read_back_as_an_event)
{
    char *dir = tu_tmpdir("fuzz-bitflip");
    char path[1024], xdir[1024], name[64];
    size_t ends[8], nlines = 0, len;
    evs_store_opts o;
    evs_store *st;
    evs_event ev[2];
    evs_log *l;
    char *orig;

    cr_assert_not_null(dir);
    evs_store_opts_init(&o);
    o.durability = EVS_SYNC_NONE;
    o.io = fuzz_io_nosync();
    cr_assert_eq(evs_store_open(dir, &o, &st), 0);
    memset(ev, 0, sizeof(ev));
    ev[0].event_type = evs_span_cstr("step_started");
    ev[0].step_name = evs_span_cstr("a");
    ev[0].data = evs_span_cstr("{\"attempt\":1}");
    ev[1] = ev[0];
    ev[1].event_type = evs_span_cstr("step_completed");
    ev[1].data = evs_span_cstr("{\"output\":\"\\u00e9\"}");
    cr_assert_eq(evs_exec_create(st, "fz", 2, NULL, ev, 1), 0);
    cr_assert_eq(evs_log_open(st, "fz", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l, ev, 2, 1, NULL), 0);
    cr_assert_eq(evs_log_append(l, ev + 1, 1, 3, NULL), 0);
    evs_log_close(l);
    snprintf(path, sizeof(path), "%s/fz/events.jsonl", dir);
    snprintf(xdir, sizeof(xdir), "%s/fz", dir);
    orig = slurp(path, &len);
    for (size_t i = 0; i < len; i++)
        if (orig[i] == '\n')
            ends[nlines++] = i + 1;
    cr_assert_eq(nlines, 4);

    for (size_t i = 0; i < len; i++) {
        size_t hit = 0; /* the line the flipped byte is in */
        while (ends[hit] <= i)
            hit++;
        for (int bit = 0; bit < 8; bit++) {
            evs_cursor *c;
            evs_span raw;
            evs_event e;
            size_t at = 0, n = 0;
            int rc;

            orig[i] ^= (char)(1 << bit);
            cr_assert_eq(tu_write_file(path, orig, len), 0);
            rc = evs_log_open(st, "fz", 2, EVS_LOG_WRITE, &l, NULL, NULL);
            cr_assert(rc == 0 || rc == EVS_ECORRUPT,
                      "byte %zu bit %d: open gave %d", i, bit, rc);
            if (rc == 0) {
                if (evs_log_last_seq(l) > 0 &&
                    evs_cursor_open(l, 1, 0, &c, NULL) == 0) {
                    while (evs_cursor_next(c, &e, &raw, NULL) == 1) {
                        cr_assert(n < hit,
                                  "byte %zu bit %d: read line %zu, "
                                  "which holds the flip",
                                  i, bit, n);
                        cr_assert_eq(raw.len, ends[n] - at);
                        cr_assert_eq(memcmp(raw.ptr, orig + at, raw.len), 0);
                        at = ends[n++];
                    }
                    evs_cursor_close(c);
                }
                evs_log_close(l);
            }
            orig[i] ^= (char)(1 << bit);
            clear_cuts(xdir);
            snprintf(name, sizeof(name), "log, byte %zu bit %d", i, bit);
            {
                char *fl = malloc(len);
                cr_assert_not_null(fl);
                memcpy(fl, orig, len);
                fl[i] ^= (char)(1 << bit);
                run(fuzz_recover, name, fl, len);
                free(fl);
            }
        }
    }
    cr_log_info("log: %zu flips, no damaged line read back", len * 8);
    free(orig);
    evs_store_close(st);
    tu_rmtree_free(dir);
}

/*
 * Every bit of a valid state flipped in turn. Many flips still leave a
 * state (a letter of a name, a digit of a number), so what must hold is
 * the target's: a flip is refused with a documented code, or what loads
 * is JSON and writes back as a state that reads the same. The flips that
 * break the syntax must all be refused.
 */
Test(fuzz_bitflip, every_bit_flip_of_a_state_is_refused_or_reads_as_json)
{
    buf s = valid_state();
    size_t refused = 0, not_json = 0;
    char name[64];
    int rc;

    cr_assert_eq(load_state(s.p, s.len), 0);
    for (size_t i = 0; i < s.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            s.p[i] ^= (char)(1 << bit);
            rc = load_state(s.p, s.len);
            cr_assert(rc == 0 || rc == EVS_EPARSE || rc == EVS_EFORMAT,
                      "byte %zu bit %d: load gave %d", i, bit, rc);
            if (evs_json_check(s.p, s.len, 0, NULL, NULL, NULL) != 0) {
                not_json++;
                cr_assert_eq(rc, EVS_EPARSE,
                             "byte %zu bit %d: not JSON, "
                             "but loaded",
                             i, bit);
            }
            refused += rc != 0;
            snprintf(name, sizeof(name), "state, byte %zu bit %d", i, bit);
            run(fuzz_state, name, s.p, s.len);
            s.p[i] ^= (char)(1 << bit);
        }
    }
    cr_log_info("state: %zu flips, %zu not JSON, %zu refused", s.len * 8,
                not_json, refused);
    free(s.p);
}
