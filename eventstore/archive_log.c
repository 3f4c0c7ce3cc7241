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

/* The facts of the first event (its time, workflow and lineage) or of
 * the last (its time and whether it ends the execution), from the line
 * fully decoded. Returns 0 or what decoding returns, with li filled. */
static int line_facts(evs_decoder *d, const char *line, size_t n, int first,
                      evs__log_facts *f, evs_error_info *li)
{
    evs_event ev;
    evs_span v;
    int rc;

    if ((rc = evs_line_decode(d, line, n, 0, &ev, li)) != 0)
        return rc;
    if (first) {
        f->started_us = ev.timestamp_us;
        if (evs__span_eq_cstr(ev.event_type, EVS_EV_EXECUTION_STARTED)) {
            if (evs__json_get(ev.data, "workflow_name", &v) == 1 &&
                v.len >= 2 && v.ptr[0] == '"')
                f->workflow = v;
            if (evs__json_get(ev.data, "lineage", &v) == 1 && v.len &&
                v.ptr[0] == '{')
                f->lineage = v;
        }
    } else {
        f->status = terminal_status(ev.event_type);
        f->ended_us = f->status ? ev.timestamp_us : 0;
    }
    return 0;
}

/*
 * Every line is checked as the store's end-of-log finder checks one
 * (evs__line_peek: framing, checksum, version, execution, sequence and
 * append), which is what FORMAT.md §2.1 and §3 require of a line to
 * count; the first and the last are decoded in full besides, for the
 * facts. `data` is never looked into: the checksums vouch for it.
 */
int evs__log_check(const char *log, size_t len, const char *id, size_t id_len,
                   const evs_allocator *alloc, evs__log_facts *f,
                   evs_error_info *ei)
{
    uint64_t grp_first = 0, grp_end = 0, expect = 1;
    size_t off = 0, last_off = 0, last_n = 0;
    evs__line_pos pk;
    evs_decoder d;
    evs_error_info li;
    int rc = 0;

    memset(f, 0, sizeof(*f));
    evs_decoder_init(&d, alloc);
    while (off < len) {
        const char *nl = memchr(log + off, '\n', len - off);
        const char *why = NULL;
        size_t n;

        if (!nl) {
            rc = damage(ei, EVS_ECORRUPT, expect, off,
                        "a line without its newline");
            goto out;
        }
        n = (size_t)(nl - (log + off)) + 1;
        evs_error_info_clear(&li);
        rc = evs__line_peek(log + off, n, id, id_len, &pk);
        if (rc == 0 && off == 0)
            rc = line_facts(&d, log, n, 1, f, &li);
        if (rc == -ENOMEM)
            goto out;
        if (rc == EVS_EFORMAT)
            why = "a line of a newer format";
        else if (rc == EVS_ECORRUPT && !li.msg[0])
            why = "checksum mismatch, or a line of another execution";
        else if (rc != 0)
            why = li.msg[0] ? li.msg : "not a well-formed event";
        else if (pk.seq != expect)
            why = "sequence out of order";
        else if ((grp_end >= pk.seq && pk.first != grp_first) ||
                 (grp_end < pk.seq && pk.first != pk.seq))
            why = "append cut short or its start is missing";
        if (why) {
            rc = damage(ei, rc == EVS_EFORMAT ? rc : EVS_ECORRUPT, expect, off,
                        why);
            goto out;
        }
        grp_first = pk.first;
        grp_end = pk.first + pk.count - 1;
        f->events++;
        f->last_seq = pk.seq;
        expect = pk.seq + 1;
        last_off = off;
        last_n = n;
        off += n;
    }
    if (grp_end > f->last_seq) {
        rc = damage(ei, EVS_ECORRUPT, expect, off,
                    "the last append is incomplete");
        goto out;
    }
    if (f->events > 0 &&
        (rc = line_facts(&d, log + last_off, last_n, 0, f, &li)) != 0)
        rc = damage(ei, rc == -ENOMEM ? rc : EVS_ECORRUPT, f->last_seq,
                    last_off, li.msg[0] ? li.msg : "not a well-formed event");
out:
    evs_decoder_free(&d);
    return rc;
}
