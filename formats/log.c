/*
 * log.c: structured log records as JSON lines, logfmt or text
 * (evs_log_format), and the ready hook that writes them to stderr.
 *
 * A record is written into a caller's fixed buffer, so that a hook can
 * format on the stack of whatever thread logs, without allocating. Each
 * string field is cut to FIELD_MAX bytes (at a character boundary) and
 * the message takes what room is left, so the output is always whole:
 * valid JSON, or logfmt with its quotes closed.
 */
#include "formats_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FIELD_MAX 160 /* bytes of one field other than the message */
#define MIN_CAP 1024  /* room for every field at FIELD_MAX, escaped */

typedef struct writer {
    char *p;
    size_t n, cap; /* cap excludes the NUL */
    int full;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->full || n > w->cap - w->n) {
        w->full = 1;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void puts_(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and values past U+10FFFF are not). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* Whether logfmt must quote `s`: empty, or holding a blank, '"', '=',
 * a control character or anything that is not ASCII. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c >= 0x7F)
            return 1;
    }
    return 0;
}

/* Writes at most `max` bytes of `s`, escaped for a JSON (or logfmt, the
 * same escapes) string: '"', '\\' and control characters escaped, a byte
 * that is not valid UTF-8 written as U+FFFD. Stops at a character
 * boundary. For text (`quotes` 0), '"' and '\\' stay as they are. */
static void put_esc(writer *w, const char *s, size_t max, int quotes)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    char esc[8];

    if (n > max)
        n = max;
    while (i < n) {
        size_t len = utf8_len(u + i, n - i);

        if (len == 0) {
            /* A cut inside a character ends the field; any other bad
             * byte becomes U+FFFD. */
            if (n < strlen(s) && u[i] >= 0xC2 && n - i < 4)
                break;
            put(w, "\\ufffd", 6);
            i++;
        } else if (quotes && (u[i] == '"' || u[i] == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)u[i];
            put(w, esc, 2);
            i++;
        } else if (u[i] < 0x20 || u[i] == 0x7F) {
            const char *short_esc = u[i] == '\n'   ? "\\n"
                                    : u[i] == '\t' ? "\\t"
                                    : u[i] == '\r' ? "\\r"
                                                   : NULL;
            if (short_esc) {
                puts_(w, short_esc);
            } else {
                snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
                put(w, esc, 6);
            }
            i++;
        } else {
            put(w, s + i, len);
            i += len;
        }
    }
}

static void put_escaped(writer *w, const char *s, size_t max)
{
    put_esc(w, s, max, 1);
}

static void put_text(writer *w, const char *s, size_t max)
{
    put_esc(w, s, max, 0);
}

static const char *level_name(evs_log_level l)
{
    switch (l) {
    case EVS_LOG_ERROR:
        return "error";
    case EVS_LOG_WARN:
        return "warn";
    case EVS_LOG_INFO:
        return "info";
    case EVS_LOG_DEBUG:
        return "debug";
    }
    return "unknown";
}

/* One field: ,"key":"value" (JSON) or  key=value (logfmt). */
static void field_str(writer *w, evs_log_style st, const char *key,
                      const char *v, size_t max)
{
    if (!v)
        return;
    if (st == EVS_LOG_JSON) {
        put(w, ",\"", 2);
        puts_(w, key);
        put(w, "\":\"", 3);
        put_escaped(w, v, max);
        put(w, "\"", 1);
        return;
    }
    if (w->n)
        put(w, " ", 1);
    puts_(w, key);
    put(w, "=", 1);
    if (needs_quotes(v)) {
        put(w, "\"", 1);
        put_escaped(w, v, max);
        put(w, "\"", 1);
    } else {
        put(w, v, strlen(v) < max ? strlen(v) : max);
    }
}

static void field_num(writer *w, evs_log_style st, const char *key,
                      const char *num)
{
    if (st == EVS_LOG_JSON) {
        put(w, ",\"", 2);
        puts_(w, key);
        put(w, "\":", 2);
    } else {
        if (w->n)
            put(w, " ", 1);
        puts_(w, key);
        put(w, "=", 1);
    }
    puts_(w, num);
}

/* The fields after the message, in one order for every style. */
static void typed_fields(writer *w, evs_log_style st, const evs_log_record *r)
{
    char num[32];

    field_str(w, st, "execution", r->execution, FIELD_MAX);
    field_str(w, st, "path", r->path, FIELD_MAX);
    field_str(w, st, "step", r->step, FIELD_MAX);
    if (r->sequence) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)r->sequence);
        field_num(w, st, "sequence", num);
    }
    if (r->err) {
        field_str(w, st, "error", evs_err_name(r->err), FIELD_MAX);
        snprintf(num, sizeof(num), "%d", r->err);
        field_num(w, st, "code", num);
    }
    if (r->duration_us >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)r->duration_us);
        field_num(w, st, "duration_us", num);
    }
}

/* The text style's parenthesis: "(path P, step S, sequence N, EVS_X)". */
static void text_fields(writer *w, const evs_log_record *r)
{
    char num[48];
    int first = 1;
#define SEP() (put(w, first ? " (" : ", ", 2), first = 0)

    if (r->path) {
        SEP();
        puts_(w, "path ");
        put_text(w, r->path, FIELD_MAX);
    }
    if (r->step) {
        SEP();
        puts_(w, "step ");
        put_text(w, r->step, FIELD_MAX);
    }
    if (r->sequence) {
        SEP();
        snprintf(num, sizeof(num), "sequence %llu",
                 (unsigned long long)r->sequence);
        puts_(w, num);
    }
    if (r->err) {
        SEP();
        puts_(w, evs_err_name(r->err));
    }
    if (r->duration_us >= 0) {
        SEP();
        snprintf(num, sizeof(num), "%.3f ms", (double)r->duration_us / 1e3);
        puts_(w, num);
    }
    if (!first)
        put(w, ")", 1);
#undef SEP
}

static void format_with(writer *w, const evs_log_record *r, evs_log_style st,
                        size_t msg_max)
{
    char ts[EVS_TIME_LEN + 1];

    if (evs_time_format(r->time_us, ts) != 0)
        snprintf(ts, sizeof(ts), "%s", "0000-00-00T00:00:00.000000Z");
    if (st == EVS_LOG_TEXT) {
        if (r->level != EVS_LOG_ERROR) {
            puts_(w, r->level == EVS_LOG_WARN ? "warning" : level_name(r->level));
            put(w, ": ", 2);
        }
        if (r->execution) {
            puts_(w, "execution ");
            put_text(w, r->execution, FIELD_MAX);
            put(w, ": ", 2);
        }
        put_text(w, r->msg ? r->msg : "", msg_max);
        text_fields(w, r);
        return;
    }
    if (st == EVS_LOG_JSON) {
        put(w, "{\"time\":\"", 9);
        puts_(w, ts);
        put(w, "\"", 1);
        field_str(w, st, "level", level_name(r->level), FIELD_MAX);
    } else {
        field_str(w, st, "time", ts, FIELD_MAX);
        field_str(w, st, "level", level_name(r->level), FIELD_MAX);
    }
    field_str(w, st, "component", r->component, FIELD_MAX);
    field_str(w, st, "msg", r->msg ? r->msg : "", msg_max);
    typed_fields(w, st, r);
    if (st == EVS_LOG_JSON)
        put(w, "}", 1);
}

int evs_log_format(const evs_log_record *rec, evs_log_style style, char *buf,
                   size_t cap)
{
    size_t msg_max;
    writer w;

    if (!rec || !buf || cap < MIN_CAP ||
        (style != EVS_LOG_JSON && style != EVS_LOG_LOGFMT &&
         style != EVS_LOG_TEXT))
        return -EINVAL;
    msg_max = rec->msg ? strlen(rec->msg) : 0;
    for (;;) {
        w = (writer){buf, 0, cap - 1, 0};
        format_with(&w, rec, style, msg_max);
        if (!w.full)
            break;
        /* Too long: the message gives way. Every other field fits in
         * MIN_CAP by construction, so this ends. */
        msg_max = msg_max > 64 ? msg_max / 2 : 0;
    }
    buf[w.n] = '\0';
    return (int)w.n;
}

void evs_log_stderr(void *ctx, const evs_log_record *rec)
{
    static const evs_log_sink dflt = {EVS_LOG_JSON, EVS_LOG_WARN, NULL};
    const evs_log_sink *k = ctx ? ctx : &dflt;
    char line[4096];
    size_t pre = 0;
    int n;

    if (!rec || rec->level > k->max_level)
        return;
    if (k->style == EVS_LOG_TEXT && k->prefix) {
        pre = strlen(k->prefix);
        if (pre > 256)
            pre = 256;
        memcpy(line, k->prefix, pre);
    }
    n = evs_log_format(rec, k->style, line + pre, sizeof(line) - pre - 1);
    if (n < 0)
        return;
    line[pre + (size_t)n] = '\n';
    /* One write, so that lines of several threads do not interleave; a
     * short or failed write to stderr has nowhere to be reported. */
    (void)!write(STDERR_FILENO, line, pre + (size_t)n + 1);
}

void evs__log_emit(evs_log_fn fn, void *ctx, const char *component,
                   evs_log_level lvl, const evs_log_record *f,
                   const char *fmt, va_list ap)
{
    evs_log_record r = {.duration_us = -1};
    char msg[512];

    if (!fn)
        return;
    if (f)
        r = *f;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    r.time_us = evs_now_us();
    r.level = lvl;
    r.component = component;
    r.msg = msg;
    fn(ctx, &r);
}
