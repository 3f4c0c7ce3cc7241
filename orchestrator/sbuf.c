/*
 * sbuf.c: a growable byte buffer for building the JSON `data` of events.
 *
 * Appends never fail loudly: a failed allocation sets `oom` and later
 * appends do nothing, so a builder checks once, at the end.
 */
#include "orch_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(sbuf *b, size_t n)
{
    size_t nc;
    char *np;

    if (b->oom)
        return -1;
    if (b->len + n <= b->cap)
        return 0;
    nc = b->cap ? b->cap : 128;
    while (nc < b->len + n)
        nc *= 2;
    np = realloc(b->p, nc);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = nc;
    return 0;
}

void sb_raw(sbuf *b, const char *s, size_t n)
{
    if (n == 0 || grow(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void sb_str(sbuf *b, const char *s)
{
    sb_raw(b, s, strlen(s));
}

void sb_quote(sbuf *b, evs_span s)
{
    size_t need = evs_json_quote(s, NULL, 0);

    if (need == (size_t)-1) {
        /* Not UTF-8: never produced by the layers below, which check
         * every name; keep the JSON valid anyway. */
        SB_LIT(b, "\"\"");
        return;
    }
    if (grow(b, need) != 0)
        return;
    b->len += evs_json_quote(s, b->p + b->len, b->cap - b->len);
}

void sb_int(sbuf *b, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRId64, v);

    sb_raw(b, t, (size_t)n);
}

void sb_json(sbuf *b, evs_span j)
{
    if (j.len == 0)
        SB_LIT(b, "null");
    else
        sb_raw(b, j.ptr, j.len);
}

void sb_time(sbuf *b, int64_t us)
{
    char t[EVS_TIME_LEN + 1];

    if (evs_time_format(us, t) != 0) {
        SB_LIT(b, "null");
        return;
    }
    sb_raw(b, "\"", 1);
    sb_raw(b, t, EVS_TIME_LEN);
    sb_raw(b, "\"", 1);
}

void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}
