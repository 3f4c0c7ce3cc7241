/*
 * histories.c: building event histories for the replay tests (see
 * histories.h).
 */
#include <criterion/criterion.h>

#include "histories.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HIST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HIST_LSAN 1
#endif
#endif

#ifdef HIST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

void hist_init(hist *h, int hand)
{
    memset(h, 0, sizeof(*h));
    h->hand = hand;
}

void hist_free(hist *h)
{
    for (size_t i = 0; i < h->nmem; i++)
        free(h->mem[i]);
    free(h->mem);
    free(h->ev);
    memset(h, 0, sizeof(*h));
}

/* Keeps a copy of s for the events to point to. */
static evs_span keep(hist *h, const char *s, size_t len)
{
    char *p;

    if (h->nmem == h->memcap) {
        h->memcap = h->memcap ? h->memcap * 2 : 64;
        h->mem = realloc(h->mem, h->memcap * sizeof(*h->mem));
        cr_assert_not_null(h->mem);
    }
    p = malloc(len + 1);
    cr_assert_not_null(p);
    memcpy(p, s, len);
    p[len] = '\0';
    h->mem[h->nmem++] = p;
    return (evs_span){p, len};
}

uint64_t hist_add(hist *h, const char *type, const char *path, const char *step,
                  const char *fmt, ...)
{
    evs_event *e;
    char *data = NULL;
    int n = 0;

    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 32;
        h->ev = realloc(h->ev, h->cap * sizeof(*h->ev));
        cr_assert_not_null(h->ev);
    }
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        n = vasprintf(&data, fmt, ap);
        va_end(ap);
        cr_assert(n >= 0);
    }
    e = &h->ev[h->n];
    memset(e, 0, sizeof(*e));
    e->sequence = h->n + 1;
    e->event_type = keep(h, type, strlen(type));
    e->path_id = keep(h, path ? path : "main", strlen(path ? path : "main"));
    e->step_name = keep(h, step ? step : "", step ? strlen(step) : 0);
    e->data = data ? keep(h, data, (size_t)n) : keep(h, "{}", 2);
    free(data);
    if (h->hand) {
        char id[32];
        int k =
            snprintf(id, sizeof(id), "e%llu", (unsigned long long)e->sequence);
        e->id = keep(h, id, (size_t)k);
        e->execution_id = keep(h, "x", 1);
        e->timestamp_us = HIST_T0 + (int64_t)e->sequence * 1000;
    }
    return ++h->n;
}

void hist_truncate(hist *h, size_t n)
{
    if (n < h->n)
        h->n = n;
}

int hist_record(const hist *h, evs_store *s, const char *id, size_t from,
                size_t to)
{
    evs_log *log = NULL;
    evs_recorder *rec = NULL;
    size_t i = from;
    int rc;

    if (from == 0) {
        rc = evs_exec_create(s, id, strlen(id), NULL, &h->ev[0], 1);
        if (rc != 0)
            return rc;
        i = 1;
    }
    rc = evs_log_open(s, id, strlen(id), EVS_LOG_WRITE, &log, NULL, NULL);
    if (rc != 0)
        return rc;
    rc = evs_recorder_open(log, NULL, &rec);
    for (; rc == 0 && i < to; i++)
        rc = evs_recorder_record(rec, &h->ev[i], NULL);
    if (rc == 0)
        rc = evs_recorder_flush(rec);
    evs_recorder_close(rec);
    evs_log_close(log);
    return rc;
}

int hist_apply(evs_replay *r, const hist *h, size_t from, size_t to,
               evs_error_info *v)
{
    for (size_t i = from; i < to; i++) {
        int rc = evs_replay_apply(r, &h->ev[i], v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

char *hist_state(const evs_replay *r, size_t *len)
{
    char *s = NULL, *out;
    size_t n = 0;

    cr_assert_eq(evs_replay_state_json(r, &s, &n), 0);
    out = malloc(n + 1);
    cr_assert_not_null(out);
    memcpy(out, s, n);
    out[n] = '\0';
    free(s);
    if (len)
        *len = n;
    return out;
}

evs_replay *hist_replayer(void)
{
    return hist_replayer_mode(0);
}

evs_replay *hist_replayer_mode(int compact)
{
    evs_replay_opts o;
    evs_replay *r = NULL;

    evs_replay_opts_init(&o);
    o.compact = compact;
    cr_assert_eq(evs_replay_new(&o, &r), 0);
    return r;
}

evs_replay *hist_replay_by_hand(evs_store *s, const char *id, uint64_t to)
{
    evs_replay *r = hist_replayer();
    evs_log *log = NULL;
    evs_cursor *c = NULL;
    evs_event ev;
    evs_error_info v;
    int rc;

    cr_assert_eq(evs_log_open(s, id, strlen(id), 0, &log, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(log, 1, to, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1)
        cr_assert_eq(evs_replay_apply(r, &ev, &v), 0, "sequence %llu: %s",
                     (unsigned long long)ev.sequence, v.msg);
    cr_assert_eq(rc, 0);
    evs_cursor_close(c);
    evs_log_close(log);
    return r;
}

void hist_leak_check(void)
{
#ifdef HIST_LSAN
    /* An assertion in .fini is not counted; a crash is. */
    if (__lsan_do_recoverable_leak_check() != 0)
        abort();
#endif
}
