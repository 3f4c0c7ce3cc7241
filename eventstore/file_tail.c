/*
 * file_tail.c: the tail after the end of a log, read forwards: which of
 * its lines check out, and whether what does not is what a crash leaves
 * (torn: the writer cuts it back) or damage no crash leaves (a writer
 * refuses to cut it). FORMAT.md §4, "The tail", gives the rule and why.
 */
#include "file_int.h"

#include <errno.h>
#include <stdio.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/*
 * The unit of the zero rule (FORMAT.md §4, "The tail"): a disk writes
 * whole sectors and a file system whole blocks of them, so bytes a crash
 * kept from the disk read back as whole sectors of zeros.
 */
#define TAIL_SECTOR 512

#define TAIL_CHUNK ((size_t)16 << 10)

/* Whether some sector-aligned piece of the file bytes [from, to), each
 * clipped to [from, to), is all zeros. Returns 1, 0 or -errno. */
static int zero_sector(evs_store *s, int fd, uint64_t from, uint64_t to)
{
    char buf[4096];
    uint64_t at = from;
    int zeros = 1; /* the piece being read is all zeros so far */

    while (at < to) {
        size_t n = sizeof(buf), got;
        int rc;

        if (n > to - at)
            n = (size_t)(to - at);
        rc = IO(s)->pread(CTX(s), fd, buf, n, at, &got);
        if (rc != 0)
            return rc;
        if (got != n)
            return -EIO;
        for (size_t i = 0; i < n; i++) {
            if (at + i != from && (at + i) % TAIL_SECTOR == 0) {
                if (zeros)
                    return 1;
                zeros = 1;
            }
            if (buf[i] != 0)
                zeros = 0;
        }
        at += n;
    }
    return from < to && zeros;
}

/* Whether the bytes [from, size), which end without a newline, are a
 * whole line but for its last byte, which should be the newline: then
 * the write did not stop short there. 1, 0 or -errno. */
static int whole_but_newline(evs_store *s, int fd, uint64_t from,
                             uint64_t size, const char *id, size_t id_len,
                             evs_decoder *dec)
{
    size_t n = (size_t)(size - from), got;
    char *buf;
    evs_event ev;
    int rc;

    if (size - from < 2 || size - from > s->opts.max_line)
        return 0;
    buf = evs__malloc(s->alloc, n);
    if (!buf)
        return -ENOMEM;
    rc = IO(s)->pread(CTX(s), fd, buf, n, from, &got);
    if (rc == 0 && got != n)
        rc = -EIO;
    if (rc == 0) {
        buf[n - 1] = '\n';
        rc = evs_line_decode(dec, buf, n, 0, &ev, NULL);
        if (rc == 0)
            rc = evs__span_eq(ev.execution_id, (evs_span){id, id_len});
        else
            rc = rc == -ENOMEM ? rc : 0;
    }
    evs__free(s->alloc, buf);
    return rc;
}

int evs__walk_tail(evs_store *s, int fd, uint64_t size, const char *id,
                   size_t id_len, evs__tail *t, evs__tail_fn fn, void *arg)
{
    evs__reader rd;
    evs_decoder dec;
    evs_event ev;
    evs_error_info ei;
    const char *line;
    size_t len;
    uint64_t pieces = 0, next = t->last_seq + 1;
    int rc = 0, have_app = 0, last = 0;

    t->size = size;
    t->lines_after = 0;
    t->app_first = t->last_seq + 1;
    t->app_count = 0;
    t->damaged = 0;
    t->bad_seq = 0;
    t->bad_offset = UINT64_MAX;
    t->bad_len = 0;
    t->bad_kind = "";
    if (t->end >= size)
        return 0;
    evs__reader_init(&rd, s, fd, size);
    /* A tail is usually a few lines: start small, grow for long ones. */
    rd.chunk = TAIL_CHUNK;
    evs__reader_at(&rd, t->end);
    evs_decoder_init(&dec, s->alloc);
    while (!last) {
        evs__tail_piece p;

        memset(&p, 0, sizeof(p));
        p.offset = evs__reader_off(&rd);
        p.seq = next;
        rc = evs__reader_line(&rd, &line, &len);
        if (rc == 0)
            break;
        if (rc == 1) {
            p.len = len;
            evs_error_info_clear(&ei);
            rc = evs_line_decode(&dec, line, len, 0, &ev, &ei);
            if (rc == -ENOMEM)
                goto out;
            if (rc == 0 &&
                !evs__span_eq(ev.execution_id, (evs_span){id, id_len})) {
                rc = EVS_ECORRUPT;
                ei.kind = "execution";
                snprintf(ei.msg, sizeof(ei.msg), "line of another execution");
            }
            if (rc == 0) {
                p.ev = &ev;
                p.raw.ptr = line;
                p.raw.len = len;
                p.seq = ev.sequence;
                next = ev.sequence + 1;
                t->lines_after++;
                if (!have_app) {
                    have_app = 1;
                    t->app_first =
                        ev.batch_count ? ev.batch_first : ev.sequence;
                    t->app_count = ev.batch_count ? ev.batch_count : 1;
                }
            } else {
                p.kind = ei.kind[0] ? ei.kind : "syntax";
                p.why = ei.msg[0] ? ei.msg : "malformed line";
                rc = zero_sector(s, fd, p.offset, p.offset + len);
            }
        } else if (rc == EVS_ETORN) {
            /* The file ends inside this line: the write stopped short,
             * unless the line is whole but for its newline. */
            last = 1;
            p.len = size - p.offset;
            rc = whole_but_newline(s, fd, p.offset, size, id, id_len, &dec);
            if (rc == 1) {
                p.kind = "framing";
                p.why = "a whole line whose newline is damaged";
                rc = zero_sector(s, fd, p.offset, size);
            } else if (rc == 0) {
                p.kind = "torn";
                p.why = "a line without its newline";
                rc = 1;
            }
        } else if (rc == EVS_ETOOBIG) {
            rc = evs__reader_skip_line(&rd);
            if (rc >= 0) {
                last = rc == 0; /* no newline before the end: cut short */
                p.len = (last ? size : evs__reader_off(&rd)) - p.offset;
                p.kind = last ? "torn" : "framing";
                p.why = "no line ending within the maximum line size";
                rc = last ? 1 : zero_sector(s, fd, p.offset, p.offset + p.len);
            }
        }
        if (rc < 0)
            goto out;
        if (!p.ev) {
            p.explained = rc;
            next++;
            if (!p.explained && !t->damaged) {
                t->damaged = 1;
                t->bad_seq = p.seq;
                t->bad_offset = p.offset;
                t->bad_len = p.len;
                t->bad_kind = p.kind;
            }
        }
        pieces++;
        rc = 0;
        if (fn && (rc = fn(arg, &p)) != 0)
            goto out;
    }
    rc = 0;
    if (!have_app)
        t->app_count = pieces;
out:
    evs__reader_free(&rd);
    evs_decoder_free(&dec);
    return rc;
}

