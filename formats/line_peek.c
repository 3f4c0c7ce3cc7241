/*
 * line_peek.c: reading a log line's place in its log (execution id,
 * sequence, batch) without decoding it: what the store needs to find the
 * end of a log from its last bytes (eventstore/file_log.c). The framing
 * and checksum are checked as evs_line_decode() checks them; the rest of
 * the line is trusted to be canonical (FORMAT.md §2).
 */
#include "formats_int.h"

int evs__line_peek(const char *line, size_t len, const char *id, size_t id_len,
                   evs__line_pos *pk)
{
    static const char k_exec[] = ",\"execution_id\":\"";
    static const char k_seq[] = ",\"sequence\":";
    static const char k_batch[] = ",\"batch\":[";
    const char *p, *end;
    size_t body;
    uint64_t v;
    int rc;

    if ((rc = evs__frame_check(line, len, &body)) != 0)
        return rc;
    end = line + body;
    if (body < 7 || memcmp(line, "{\"v\":", 5) != 0)
        return EVS_EPARSE;
    if (line[5] != '1' || line[6] != ',')
        return EVS_EFORMAT; /* verified, but not version 1 */
    p = memmem(line, body, k_exec, sizeof(k_exec) - 1);
    if (!p || (size_t)(end - p) < sizeof(k_exec) - 1 + id_len + 1)
        return EVS_EPARSE;
    p += sizeof(k_exec) - 1;
    if (memcmp(p, id, id_len) != 0 || p[id_len] != '"') {
        /* Readers take any JSON escape in the id (FORMAT.md §2), so an
         * id written escaped, by another program, is compared unescaped
         * as they compare it. */
        char buf[EVS_ID_MAX * 6];
        const char *q = p;
        size_t n;
        while (q < end && *q != '"')
            q += *q == '\\' ? 2 : 1;
        if (q >= end)
            return EVS_EPARSE;
        if (!memchr(p, '\\', (size_t)(q - p)) || (size_t)(q - p) > sizeof(buf))
            return EVS_ECORRUPT; /* another execution's line */
        n = evs__json_unescape(p, (size_t)(q - p), buf);
        if (n == (size_t)-1)
            return EVS_EPARSE;
        if (n != id_len || memcmp(buf, id, id_len) != 0)
            return EVS_ECORRUPT;
    }
    p = memmem(p, (size_t)(end - p), k_seq, sizeof(k_seq) - 1);
    if (!p)
        return EVS_EPARSE;
    p += sizeof(k_seq) - 1;
    if (evs__take_u64(&p, end, &v) != 0 || v == 0)
        return EVS_EPARSE;
    pk->seq = v;
    pk->first = v;
    pk->count = 1;
    if ((size_t)(end - p) > sizeof(k_batch) - 1 &&
        memcmp(p, k_batch, sizeof(k_batch) - 1) == 0) {
        uint64_t f, c;
        p += sizeof(k_batch) - 1;
        if (evs__take_u64(&p, end, &f) != 0 || p >= end || *p++ != ',' ||
            evs__take_u64(&p, end, &c) != 0 || p >= end || *p != ']' || c < 2 ||
            f == 0 || v < f || v - f >= c)
            return EVS_EPARSE;
        pk->first = f;
        pk->count = c;
    }
    return 0;
}

/* Only the first EMBED_TRIES candidates are checked, which bounds the
 * cost when `data` itself holds many "{"v":". */
#define EMBED_TRIES 64

int evs__line_peek_back(const char *line, size_t len, const char *id,
                        size_t id_len, evs__line_pos *pk, size_t *skip)
{
    const char *p = line;
    int rc = evs__line_peek(line, len, id, id_len, pk), tries = 0;

    *skip = 0;
    if (rc == 0 || rc == EVS_EFORMAT)
        return rc;
    while (tries++ < EMBED_TRIES && len > (size_t)(p + 1 - line) &&
           (p = memmem(p + 1, len - (size_t)(p + 1 - line), "{\"v\":", 5)) !=
               NULL) {
        if (evs__line_peek(p, len - (size_t)(p - line), id, id_len, pk) == 0) {
            *skip = (size_t)(p - line);
            return 0;
        }
    }
    return rc;
}
