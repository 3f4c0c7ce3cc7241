/*
 * fuzz_common.c: helpers shared by the fuzz targets, in both of their
 * builds (libFuzzer and the corpus regression test): checksum repair so
 * that mutated inputs get past the checksum, an independent checksum
 * check and output silencing. Files and temporary directories are
 * tests/support/tu_file.h's.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CK_KEY ",\"checksum\":\""
#define CK_KEY_LEN (sizeof(CK_KEY) - 1)
/* ,"checksum":"<16 hex>"}  without the newline */
#define CK_TAIL_LEN (CK_KEY_LEN + 16 + 2)

static const char *input_name = "";

const char *fuzz_input_name(void)
{
    return input_name;
}

void fuzz_set_input_name(const char *name)
{
    input_name = name ? name : "";
}

#ifdef EVS_FUZZING
void fuzz_die(const char *file, int line, const char *cond, const char *what)
{
    fuzz_unquiet();
    fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", file, line, what,
            cond);
    abort();
}
#endif

static void hex64(uint64_t v, char out[16])
{
    static const char dig[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--) {
        out[i] = dig[v & 0xf];
        v >>= 4;
    }
}

/* Fixes the line buf[s..e) (no newline) if it ends with the tail. */
static void fix_one(char *buf, size_t s, size_t e)
{
    size_t comma;

    if (e - s < CK_TAIL_LEN + 1)
        return;
    comma = e - CK_TAIL_LEN;
    if (memcmp(buf + comma, CK_KEY, CK_KEY_LEN) != 0 || buf[e - 2] != '"' ||
        buf[e - 1] != '}')
        return;
    hex64(XXH3_64bits(buf + s, comma + 1 - s), buf + comma + CK_KEY_LEN);
}

void fuzz_fix_lines(char *buf, size_t len)
{
    size_t s = 0;

    while (s < len) {
        char *nl = memchr(buf + s, '\n', len - s);
        size_t e = nl ? (size_t)(nl - buf) : len;
        fix_one(buf, s, e);
        s = e + 1;
    }
}

char *fuzz_fix_snapshot(const char *buf, size_t len, size_t *out_len)
{
    static const char k_len[] = ",\"body_len\":";
    static const char k_sum[] = ",\"body_checksum\":\"";
    const char *nl = memchr(buf, '\n', len);
    size_t hlen, rest, cap;
    char *out, *p, *q, *body, num[24];
    int n;

    cap = len + 64;
    if (!(out = malloc(cap)))
        return NULL;
    if (!nl) {
        memcpy(out, buf, len);
        fuzz_fix_lines(out, len);
        *out_len = len;
        return out;
    }
    hlen = (size_t)(nl - buf) + 1;
    rest = len - hlen;
    /* The body first: the header vouches for its final bytes. */
    body = malloc(rest + 1);
    if (!body) {
        free(out);
        return NULL;
    }
    memcpy(body, buf + hlen, rest);
    fuzz_fix_lines(body, rest);

    /* Header up to and including ,"body_len":, then the true length,
     * then ,"body_checksum":"<true sum>, then the rest of the header. */
    p = memmem(buf, hlen, k_len, sizeof(k_len) - 1);
    q = p ? memmem(p, hlen - (size_t)(p - buf), k_sum, sizeof(k_sum) - 1)
          : NULL;
    if (p && q && (size_t)(buf + hlen - q) >= sizeof(k_sum) - 1 + 16) {
        size_t a = (size_t)(p - buf) + sizeof(k_len) - 1, o = 0;
        const char *after = q + sizeof(k_sum) - 1 + 16;
        memcpy(out, buf, a);
        o = a;
        n = snprintf(num, sizeof(num), "%zu", rest);
        memcpy(out + o, num, (size_t)n);
        o += (size_t)n;
        memcpy(out + o, k_sum, sizeof(k_sum) - 1);
        o += sizeof(k_sum) - 1;
        hex64(XXH3_64bits(body, rest), out + o);
        o += 16;
        memcpy(out + o, after, (size_t)(buf + hlen - after));
        o += (size_t)(buf + hlen - after);
        hlen = o;
    } else {
        memcpy(out, buf, hlen);
    }
    fuzz_fix_lines(out, hlen - 1);
    memcpy(out + hlen, body, rest);
    free(body);
    *out_len = hlen + rest;
    return out;
}

int fuzz_line_checksum_ok(const char *line, size_t len)
{
    uint64_t want = 0;
    size_t comma;

    if (len < CK_TAIL_LEN + 2 || line[0] != '{' || line[len - 1] != '\n')
        return 0;
    comma = len - 1 - CK_TAIL_LEN;
    if (memcmp(line + comma, CK_KEY, CK_KEY_LEN) != 0 || line[len - 3] != '"' ||
        line[len - 2] != '}')
        return 0;
    for (size_t i = 0; i < 16; i++) {
        char c = line[comma + CK_KEY_LEN + i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return 0; /* FORMAT.md: lower-case hex only */
        want = want << 4 | d;
    }
    return XXH3_64bits(line, comma + 1) == want;
}

static int no_sync(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0;
}

const evs_io *fuzz_io_nosync(void)
{
    static evs_io io;
    static int made;

    if (!made) {
        io = *evs_io_posix();
        io.fsync = no_sync;
        io.fdatasync = no_sync;
        made = 1;
    }
    return &io;
}

int fuzz_span_eq(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static FILE *devnull, *saved_out, *saved_err;

void fuzz_quiet(void)
{
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        return;
    fflush(stdout);
    fflush(stderr);
    saved_out = stdout;
    saved_err = stderr;
    stdout = devnull;
    stderr = devnull;
}

void fuzz_unquiet(void)
{
    if (!saved_out)
        return;
    fflush(devnull);
    stdout = saved_out;
    stderr = saved_err;
    saved_out = saved_err = NULL;
}
