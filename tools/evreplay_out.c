/*
 * evreplay_out.c: how evreplay prints: one-line errors, text made safe
 * for a terminal (a history must not be able to drive it), pretty JSON,
 * key-value blocks, aligned tables and the one-line event summary that
 * moves, list and search share. The output is meant to be stable, so
 * scripts and tests can match it.
 */
#include "evreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Messages and memory                                                */
/* ------------------------------------------------------------------ */

int cmd_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline("error: ", fmt, ap);
    va_end(ap);
    return CMD_ERROR;
}

static void out_of_memory(void)
{
    note("out of memory");
    exit(EXIT_OPEN);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        out_of_memory();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void grow(void **v, size_t *cap, size_t n, size_t size)
{
    size_t c;

    if (n < *cap)
        return;
    c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / size)
        out_of_memory();
    *v = xrealloc(*v, c * size);
    *cap = c;
}

int span_is(evs_span s, const char *c)
{
    size_t n = strlen(c);

    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

int span_eq(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int parse_u64(const char *what, const char *arg, uint64_t *out)
{
    uint64_t v = 0;

    if (!*arg)
        return cmd_error("%s needs a number", what);
    for (const char *p = arg; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (*p < '0' || *p > '9')
            return cmd_error("%s must be a whole number, not '%s'", what, arg);
        if (v > (UINT64_MAX - d) / 10)
            return cmd_error("%s '%s' is too large", what, arg);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Text                                                               */
/* ------------------------------------------------------------------ */

/* Length of the UTF-8 sequence starting with byte c, or 1 for a byte
 * that cannot start one (passed through: the terminal shows a
 * replacement). */
static size_t u8len(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    if (c >= 0xe0)
        return c <= 0xef ? 3 : 1;
    if (c >= 0xc2)
        return 2;
    return 1;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n + 1)
            c *= 2;
        b->p = xrealloc(b->p, c);
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Walks `s` one displayed unit at a time, adding at most `limit`
 * columns to `b` (all of it when b is NULL, which only counts). */
static size_t text_walk(evs_span s, sbuf *b, size_t limit)
{
    size_t cols = 0, i = 0;

    while (i < s.len) {
        unsigned char c = (unsigned char)s.ptr[i];
        size_t n = u8len(c), w;
        unsigned cp = 0;
        int ctl = 0;
        char esc[8];

        if (i + n > s.len)
            n = 1;
        if (c < 0x20 || c == 0x7f) {
            ctl = 1;
            cp = c;
        } else if (c == 0xc2 && n == 2 && (unsigned char)s.ptr[i + 1] < 0xa0) {
            ctl = 1;
            cp = 0x80 | ((unsigned char)s.ptr[i + 1] & 0x3f);
        }
        w = ctl ? 6 : 1;
        if (b && cols + w > limit)
            break;
        if (b && ctl) {
            snprintf(esc, sizeof(esc), "\\u%04x", cp);
            sb_add(b, esc, 6);
        } else if (b) {
            sb_add(b, s.ptr + i, n);
        }
        cols += w;
        i += n;
    }
    return cols;
}

char *text_dup(evs_span s, size_t max_cols)
{
    sbuf b = {NULL, 0, 0};

    sb_add(&b, "", 0);
    if (max_cols && max_cols < 4)
        max_cols = 4;
    if (max_cols && text_walk(s, NULL, 0) > max_cols) {
        text_walk(s, &b, max_cols - 3);
        sb_add(&b, "...", 3);
    } else {
        text_walk(s, &b, SIZE_MAX);
    }
    return b.p;
}

size_t text_width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void out_text(evs_span s)
{
    char *t = text_dup(s, 0);

    fputs(t, stdout);
    free(t);
}

static void indent_to(int n)
{
    putchar('\n');
    for (int i = 0; i < n; i++)
        putchar(' ');
}

/* The input is compact JSON from the library, so strings are the only
 * thing to step over; whitespace outside them is dropped. */
void out_json_pretty(evs_span js, int indent)
{
    int depth = 0;
    size_t i = 0;

    if (js.len == 0) {
        putchar('-');
        return;
    }
    while (i < js.len) {
        char c = js.ptr[i];

        if (c == '"') {
            size_t j = i + 1;
            while (j < js.len && js.ptr[j] != '"')
                j += js.ptr[j] == '\\' ? 2 : 1;
            if (j >= js.len)
                j = js.len - 1; /* unterminated: never read past it */
            out_text((evs_span){js.ptr + i, j + 1 - i});
            i = j + 1;
            continue;
        }
        if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            putchar(c);
            if (i + 1 < js.len && js.ptr[i + 1] == close) {
                putchar(close);
                i += 2;
                continue;
            }
            depth++;
            indent_to(indent + 2 * depth);
        } else if (c == '}' || c == ']') {
            depth--;
            indent_to(indent + 2 * (depth > 0 ? depth : 0));
            putchar(c);
        } else if (c == ',') {
            putchar(',');
            indent_to(indent + 2 * depth);
        } else if (c == ':') {
            fputs(": ", stdout);
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            putchar(c);
        }
        i++;
    }
}

void fmt_time(int64_t us, char buf[40])
{
    if (us == 0 || evs_time_format(us, buf) != 0)
        snprintf(buf, 40, us == 0 ? "-" : "%" PRId64 "us", us);
}

/* ------------------------------------------------------------------ */
/* Key-value blocks                                                   */
/* ------------------------------------------------------------------ */

void out_kv(int width, const char *key, const char *fmt, ...)
{
    va_list ap;

    printf("%-*s  ", width, key);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void out_kv_text(int width, const char *key, evs_span v)
{
    printf("%-*s  ", width, key);
    if (v.len)
        out_text(v);
    else
        putchar('-');
    putchar('\n');
}

void out_kv_json(int width, const char *key, evs_span v)
{
    printf("%-*s  ", width, key);
    out_json_pretty(v, width + 2);
    putchar('\n');
}

/* ------------------------------------------------------------------ */
/* Tables                                                             */
/* ------------------------------------------------------------------ */

void table_init(table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    if (headers)
        table_row(t, headers);
}

void table_row(table *t, const char *const *cells)
{
    size_t need = (t->nrows + 1) * t->ncols;

    if (need > t->cap) {
        size_t c = t->cap ? t->cap * 2 : 16 * t->ncols;
        while (c < need)
            c *= 2;
        t->cells = xrealloc(t->cells, c * sizeof(*t->cells));
        t->cap = c;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        const char *c = cells[i];
        t->cells[t->nrows * t->ncols + i] = xstrdup(c && *c ? c : "-");
    }
    t->nrows++;
}

void table_print(table *t)
{
    size_t *w = xmalloc(t->ncols * sizeof(*w));

    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = text_width(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, stdout);
            if (c + 1 == t->ncols)
                break;
            for (size_t k = text_width(cell); k < w[c] + 2; k++)
                putchar(' ');
        }
        putchar('\n');
    }
    free(w);
    table_free(t);
}

void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

void out_violation(const violation_rec *v)
{
    char *m = text_dup(evs_span_cstr(v->msg), 0);

    printf("violation at seq %" PRIu64 ": %s: %s\n", v->seq, v->rule, m);
    free(m);
}

char *step_label(evs_span path, evs_span name, int64_t iteration)
{
    char *p = text_dup(path, 0), *n = text_dup(name, 0), *out;
    size_t cap = strlen(p) + strlen(n) + 32;

    out = xmalloc(cap);
    if (iteration >= 0)
        snprintf(out, cap, "%s/%s[%" PRId64 "]", p, n, iteration);
    else
        snprintf(out, cap, "%s/%s", p, n);
    free(p);
    free(n);
    return out;
}

/* ------------------------------------------------------------------ */
/* Event summaries                                                    */
/* ------------------------------------------------------------------ */

/* Data previews are cut to this many columns. */
#define PREVIEW_COLS 60

static void padded(evs_span v, int width)
{
    char *t = text_dup(v.len ? v : evs_span_cstr("-"), (size_t)width);
    size_t n = text_width(t);

    fputs(t, stdout);
    for (; n < (size_t)width + 2; n++)
        putchar(' ');
    free(t);
}

void out_summary(const session *s, uint64_t seq, int current)
{
    const evs_event *e = session_event(s, seq);
    char *data;

    printf("%s %*" PRIu64 "  ", current ? "=>" : "  ", s->w_seq, seq);
    if (!e) {
        printf("(start: no event applied)\n");
        return;
    }
    padded(e->event_type, s->w_type);
    padded(event_path(e), s->w_path);
    padded(e->step_name, s->w_step);
    data = text_dup(e->data, PREVIEW_COLS);
    printf("%s\n", data);
    free(data);
}
