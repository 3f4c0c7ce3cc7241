/*
 * checksum.c: XXH3-64, the checksum framing shared by event lines and
 * snapshot lines, and the hex and decimal numbers of that framing. Only
 * formats/ uses xxHash directly (docs/ARCHITECTURE.md §1).
 */
#include "formats_int.h"

#define XXH_INLINE_ALL
#include <xxhash.h>
#if defined(__x86_64__)
/* From libxxhash (xxh_x86dispatch.h, which cannot be included together
 * with the inlined implementation). */
XXH64_hash_t XXH3_64bits_dispatch(const void *input, size_t len);
#endif

/*
 * Short inputs (an event line is usually under 240 bytes of hashing
 * work per 64-byte stripe setup) take the inlined scalar/SSE2 code, which
 * has no call or dispatch cost; longer ones take libxxhash's runtime
 * dispatch, which uses AVX2 where the CPU has it (up to 2.4x faster on
 * this project's machines, docs/ARCHITECTURE.md §6). Both compute the
 * same XXH3-64.
 */
uint64_t evs_checksum(const void *buf, size_t len)
{
#if defined(__x86_64__)
    if (len > 240)
        return XXH3_64bits_dispatch(buf, len);
#endif
    return XXH3_64bits(buf, len);
}

static const char hexdig[] = "0123456789abcdef";

void evs__hex64(uint64_t v, char out[16])
{
    for (int i = 15; i >= 0; i--) {
        out[i] = hexdig[v & 0xf];
        v >>= 4;
    }
}

/* Value of each lower-case hex digit, 0xff for every other byte. */
static const unsigned char unhex_tab[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
    ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
    ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

int evs__unhex64(const char *s, uint64_t *v)
{
    uint64_t r = 0;
    unsigned bad = 0;

    /* The table stores digit+1 so that 0 marks a non-digit without a
     * branch per byte. */
    for (int i = 0; i < 16; i++) {
        unsigned d = unhex_tab[(unsigned char)s[i]];
        bad |= d == 0;
        r = (r << 4) | ((d - 1) & 0xf);
    }
    if (bad)
        return -1;
    *v = r;
    return 0;
}

int evs__frame_check(const char *line, size_t len, size_t *body_len)
{
    uint64_t want;
    size_t body;

    /* Minimal line: {,"checksum":"...."}\n is not valid, but "{" plus the
     * tail is the smallest thing the framing can describe. */
    if (len < 1 + EVS__CKSUM_KEY_LEN + 16 + 3 || line[0] != '{')
        return EVS_EPARSE;
    if (line[len - 1] != '\n' || line[len - 2] != '}' || line[len - 3] != '"')
        return EVS_EPARSE;
    body = len - EVS__CKSUM_TAIL_LEN;
    if (memcmp(line + body - 1, EVS__CKSUM_KEY, EVS__CKSUM_KEY_LEN) != 0)
        return EVS_EPARSE;
    if (evs__unhex64(line + body - 1 + EVS__CKSUM_KEY_LEN, &want) != 0)
        return EVS_EPARSE;
    if (evs_checksum(line, body) != want)
        return EVS_ECORRUPT;
    *body_len = body;
    return 0;
}

size_t evs__frame_seal(char *buf, size_t body_len)
{
    uint64_t sum = evs_checksum(buf, body_len);
    char *p = buf + body_len;

    memcpy(p, &EVS__CKSUM_KEY[1], EVS__CKSUM_KEY_LEN - 1);
    p += EVS__CKSUM_KEY_LEN - 1;
    evs__hex64(sum, p);
    p += 16;
    *p++ = '"';
    *p++ = '}';
    *p++ = '\n';
    return (size_t)(p - buf);
}

char *evs__put_u64(char *p, uint64_t v)
{
    size_t n = evs__u64_digits(v);

    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

int evs__take_u64(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;
    uint64_t r = 0;

    if (p >= end || *p < '0' || *p > '9')
        return -1;
    if (*p == '0') {
        if (p + 1 < end && p[1] >= '0' && p[1] <= '9')
            return -1; /* a leading zero */
        *pp = p + 1;
        *v = 0;
        return 0;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (r > (UINT64_MAX - d) / 10)
            return -1;
        r = r * 10 + d;
        p++;
    }
    *pp = p;
    *v = r;
    return 0;
}
