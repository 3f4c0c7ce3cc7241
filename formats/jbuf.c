/*
 * jbuf.c: a growable buffer for writing JSON text (formats_int.h), shared
 * by the replay layer's state JSON and the orchestrator's event data.
 *
 * Appends never fail loudly: a failed allocation sets `err` and later
 * appends do nothing, so a writer checks once, at the end.
 */
#include "formats_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int need(evs__jbuf *b, size_t n)
{
    size_t nc;
    char *np;

    if (b->err)
        return -1;
    if (b->cap - b->len >= n)
        return 0;
    nc = b->cap ? b->cap : 256;
    while (nc - b->len < n)
        nc *= 2;
    np = evs__realloc(b->alloc, b->p, nc);
    if (!np) {
        b->err = -ENOMEM;
        return -1;
    }
    b->p = np;
    b->cap = nc;
    return 0;
}

void evs__jb_raw(evs__jbuf *b, const char *s, size_t n)
{
    if (n == 0 || need(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void evs__jb_str(evs__jbuf *b, const char *s)
{
    evs__jb_raw(b, s, strlen(s));
}

void evs__jb_quote(evs__jbuf *b, evs_span s)
{
    size_t n;

    if (need(b, s.len * 6 + 2) != 0)
        return;
    n = evs_json_quote(s, b->p + b->len, b->cap - b->len);
    if (n == (size_t)-1) {
        /* Not UTF-8: the callers quote names the layers below checked;
         * never expected, but never write invalid JSON either. */
        EVS__JB_LIT(b, "\"\"");
        return;
    }
    b->len += n;
}

void evs__jb_json(evs__jbuf *b, evs_span v)
{
    if (v.len)
        evs__jb_raw(b, v.ptr, v.len);
    else
        EVS__JB_LIT(b, "null");
}

void evs__jb_int(evs__jbuf *b, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRId64, v);

    evs__jb_raw(b, t, (size_t)n);
}

void evs__jb_time(evs__jbuf *b, int64_t us)
{
    char t[EVS_TIME_LEN + 2];

    if (evs_time_format(us, t + 1) != 0) {
        EVS__JB_LIT(b, "null");
        return;
    }
    t[0] = '"';
    t[EVS_TIME_LEN + 1] = '"';
    evs__jb_raw(b, t, EVS_TIME_LEN + 2);
}

void evs__jb_free(evs__jbuf *b)
{
    evs__free(b->alloc, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}
