/*
 * archive_log.c: checking a whole log held in memory, as archival needs
 * it twice: before a log is written into a bundle (so that damage is
 * never archived, and never deleted as if it were safe), and when a
 * bundle is opened. The rules are FORMAT.md §2.1 and §3; the facts it
 * gathers on the way (counts, the start, the terminal event, the
 * workflow and lineage) go into the bundle's manifest.
 */
#include "archive_int.h"

#include <errno.h>
#include <stdio.h>

/* The status a terminal event gives, or NULL (FORMAT.md §6). */
static const char *terminal_status(evs_span type)
{
    if (evs__span_eq_cstr(type, EVS_EV_EXECUTION_COMPLETED))
        return "completed";
    if (evs__span_eq_cstr(type, EVS_EV_EXECUTION_FAILED))
        return "failed";
    if (evs__span_eq_cstr(type, EVS_EV_EXECUTION_TERMINATED))
        return "terminated";
    if (evs__span_eq_cstr(type, EVS_EV_EXECUTION_CONTINUE_AS_NEW))
        return "continued";
    return NULL;
}

static int damage(evs_error_info *ei, int code, uint64_t seq, uint64_t off,
                  const char *what)
{
    evs__error_set(ei, code, "log", "log damaged at sequence %llu, byte %llu: %s",
                   (unsigned long long)seq, (unsigned long long)off, what);
    if (ei) {
        ei->sequence = seq;
        ei->offset = off;
    }
    return code;
}

int evs__log_check(const char *log, size_t len, const char *id, size_t id_len,
                   const evs_allocator *alloc, evs__log_facts *f,
                   evs_error_info *ei)
{
    evs_span want = {id, id_len};
    uint64_t grp_first = 0, grp_end = 0, expect = 1;
    size_t off = 0;
    evs_decoder d;
    evs_event ev;
    evs_error_info li;
    evs_span v;
    int rc = 0;

    memset(f, 0, sizeof(*f));
    evs_decoder_init(&d, alloc);
    while (off < len) {
        const char *nl = memchr(log + off, '\n', len - off);
        size_t n;

        if (!nl) {
            rc = damage(ei, EVS_ECORRUPT, expect, off,
                        "a line without its newline");
            goto out;
        }
        n = (size_t)(nl - (log + off)) + 1;
        evs_error_info_clear(&li);
        rc = evs_line_decode(&d, log + off, n, 0, &ev, &li);
        if (rc == -ENOMEM)
            goto out;
        if (rc == 0 && !evs__span_eq(ev.execution_id, want))
            rc = EVS_ECORRUPT, snprintf(li.msg, sizeof(li.msg),
                                        "a line of another execution");
        if (rc == 0 && ev.sequence != expect)
            rc = EVS_ECORRUPT, snprintf(li.msg, sizeof(li.msg),
                                        "sequence %llu out of order",
                                        (unsigned long long)ev.sequence);
        if (rc == 0 && ((grp_end >= ev.sequence && ev.batch_first != grp_first) ||
                        (grp_end < ev.sequence && ev.batch_first != ev.sequence)))
            rc = EVS_ECORRUPT, snprintf(li.msg, sizeof(li.msg),
                                        "append cut short or its start is "
                                        "missing");
        if (rc != 0) {
            rc = damage(ei, rc == EVS_EFORMAT ? rc : EVS_ECORRUPT, expect, off,
                        li.msg[0] ? li.msg : evs_strerror(rc));
            goto out;
        }
        grp_first = ev.batch_first;
        grp_end = ev.batch_first + ev.batch_count - 1;
        if (ev.sequence == 1) {
            f->started_us = ev.timestamp_us;
            if (evs__span_eq_cstr(ev.event_type, EVS_EV_EXECUTION_STARTED)) {
                if (evs__json_get(ev.data, "workflow_name", &v) == 1 &&
                    v.len >= 2 && v.ptr[0] == '"')
                    f->workflow = v;
                if (evs__json_get(ev.data, "lineage", &v) == 1 && v.len &&
                    v.ptr[0] == '{')
                    f->lineage = v;
            }
        }
        f->status = terminal_status(ev.event_type);
        f->ended_us = f->status ? ev.timestamp_us : 0;
        f->events++;
        f->last_seq = ev.sequence;
        expect = ev.sequence + 1;
        off += n;
    }
    if (grp_end > f->last_seq)
        rc = damage(ei, EVS_ECORRUPT, expect, off,
                    "the last append is incomplete");
out:
    evs_decoder_free(&d);
    return rc;
}
