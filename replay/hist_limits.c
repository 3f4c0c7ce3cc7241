/*
 * hist_limits.c: an execution's history limits as its writer applies
 * them (hist_limits.h): which hold, whether the next event passes the
 * hard limit, and the history_warning due once a threshold is reached.
 */
#include "hist_limits.h"

#include <stdarg.h>
#include <stdio.h>

/* An execution's own value where it gives one (> 0), else the store's. */
static uint64_t own_or(int64_t own, uint64_t store)
{
    return own > 0 ? (uint64_t)own : store;
}

void evs__limits_resolve(const evs_store *s, const evs_wf_limits *own,
                         evs__limits *out)
{
    const evs_store_opts *o = evs_store_get_opts(s);
    evs_wf_limits none = {-1, -1, -1, -1};

    if (!own)
        own = &none;
    out->max_events = own_or(own->max_events, o->max_events);
    out->max_bytes = own_or(own->max_bytes, o->max_bytes);
    /* The store's hard limit holds whatever the execution says. */
    if (out->max_events > o->max_events)
        out->max_events = o->max_events;
    if (out->max_bytes > o->max_bytes)
        out->max_bytes = o->max_bytes;
    out->warn_events = own_or(own->warn_events, o->warn_events);
    out->warn_bytes = own_or(own->warn_bytes, o->warn_bytes);
}

int evs__limits_past(const evs__limits *l, uint64_t events, uint64_t bytes,
                     char *msg, size_t cap)
{
    if (events > l->max_events)
        snprintf(msg, cap,
                 "history of %llu events would pass the limit of %llu "
                 "events",
                 (unsigned long long)events, (unsigned long long)l->max_events);
    else if (bytes > l->max_bytes)
        snprintf(msg, cap,
                 "history of %llu bytes would pass the limit of %llu bytes",
                 (unsigned long long)bytes, (unsigned long long)l->max_bytes);
    else
        return 0;
    return 1;
}

/* A limit in JSON: null for none. */
static void jb_limit(evs__jbuf *d, uint64_t v)
{
    if (v == EVS_LIMIT_NONE)
        EVS__JB_LIT(d, "null");
    else
        evs__jb_int(d, (int64_t)v);
}

int evs__limits_warning(const evs__limits *l, const evs_exec_state *st,
                        uint64_t events, uint64_t bytes, evs__jbuf *d,
                        char *msg, size_t cap)
{
    const char *which;
    uint64_t limit;

    if (st->history_warning_seq)
        return 0; /* once */
    if (events >= l->warn_events) {
        which = "events";
        limit = l->warn_events;
    } else if (bytes >= l->warn_bytes) {
        which = "bytes";
        limit = l->warn_bytes;
    } else {
        return 0;
    }
    EVS__JB_LIT(d, "{\"threshold\":");
    evs__jb_quote(d, evs_span_cstr(which));
    EVS__JB_LIT(d, ",\"events\":");
    evs__jb_int(d, (int64_t)events);
    EVS__JB_LIT(d, ",\"bytes\":");
    evs__jb_int(d, (int64_t)bytes);
    EVS__JB_LIT(d, ",\"limit\":");
    evs__jb_int(d, (int64_t)limit);
    EVS__JB_LIT(d, ",\"max_events\":");
    jb_limit(d, l->max_events);
    EVS__JB_LIT(d, ",\"max_bytes\":");
    jb_limit(d, l->max_bytes);
    EVS__JB_LIT(d, "}");
    snprintf(msg, cap,
             "history has %llu events and %llu bytes, past its warning "
             "threshold of %llu %s",
             (unsigned long long)events, (unsigned long long)bytes,
             (unsigned long long)limit, which);
    return 1;
}

void evs__limits_error(evs__jbuf *d, const char *msg)
{
    EVS__JB_LIT(d, "{\"type\":\"" EVS__LIMIT_ERROR_TYPE "\",\"message\":");
    evs__jb_quote(d, evs_span_cstr(msg));
    EVS__JB_LIT(d, ",\"retryable\":false}");
}

void evs__limits_log(evs_store *s, evs_log_level lvl, const char *execution,
                     const char *fmt, ...)
{
    const evs_store_opts *o = evs_store_get_opts(s);
    va_list ap;

    va_start(ap, fmt);
    evs__log_emit(o->log_fn, o->log_ctx, "run", lvl,
                  EVS_LOG_FIELDS(.execution = execution), fmt, ap);
    va_end(ap);
}
