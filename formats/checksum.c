/*
 * checksum.c: XXH3-64 and the checksum framing shared by event lines and
 * snapshot lines. Only formats/ uses xxHash directly (DESIGN.md).
 */
#include "formats_int.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t evs_checksum(const void *buf, size_t len)
{
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

int evs__unhex64(const char *s, uint64_t *v)
{
    uint64_t r = 0;

    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return -1;
        r = (r << 4) | d;
    }
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

    memcpy(p, EVS__CKSUM_KEY + 1, EVS__CKSUM_KEY_LEN - 1);
    p += EVS__CKSUM_KEY_LEN - 1;
    evs__hex64(sum, p);
    p += 16;
    *p++ = '"';
    *p++ = '}';
    *p++ = '\n';
    return (size_t)(p - buf);
}
