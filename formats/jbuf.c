/*
 * jbuf.c: a growable buffer for writing JSON text (formats_shared.h),
 * shared by the replay layer's state JSON, the orchestrator's event data
 * and the rendering of workflow templates.
 *
 * Appends never fail loudly: a failed allocation sets `err` and later
 * appends do nothing, so a writer checks once, at the end.
 */
#include "formats_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int need(evs__jbuf *b, size_t n)
{
    if (b->err)
        return -1;
    if (b->cap - b->len >= n)
        return 0; /* the common case, without the overflow check */
    if (n > SIZE_MAX - b->len ||
        EVS__GROW(b->alloc, &b->p, &b->cap, b->len + n) != 0) {
        b->err = -ENOMEM;
        return -1;
    }
    return 0;
}

char *evs__jb_reserve(evs__jbuf *b, size_t n)
{
    return need(b, n) == 0 ? b->p + b->len : NULL;
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

int evs__jb_minify(evs__jbuf *b, evs_span v)
{
    char *w = evs__jb_reserve(b, v.len);
    size_t n;

    if (!w)
        return b->err;
    if (evs_json_check(v.ptr, v.len, EVS_JSON_MINIFY, w, &n, NULL) != 0)
        return EVS_EPARSE;
    b->len += n;
    return 0;
}

int evs__jb_unescape(evs__jbuf *b, evs_span raw)
{
    char *w = evs__jb_reserve(b, raw.len);
    size_t n;

    if (!w)
        return b->err;
    if ((n = evs__json_unescape(raw.ptr, raw.len, w)) == (size_t)-1)
        return EVS_EPARSE;
    b->len += n;
    return 0;
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

int evs__jb_finish(evs__jbuf *b, char **out, size_t *out_len)
{
    int rc;

    evs__jb_raw(b, "", 1);
    if ((rc = b->err) != 0)
        return rc;
    *out = b->p;
    if (out_len)
        *out_len = b->len - 1;
    b->p = NULL;
    b->len = b->cap = 0;
    return 0;
}

void evs__jb_free(evs__jbuf *b)
{
    evs__free(b->alloc, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}
