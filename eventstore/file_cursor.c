/*
 * file_cursor.c: reading the file backend's log: cursors (seek by
 * binary search over byte offsets, then verified streaming in bounded
 * memory), the tolerant scan behind `evdump verify` and salvage, the
 * forward scan of point-in-time recovery, and the forward walk over the
 * tail after the end that tells a torn last append from a damaged one
 * (FORMAT.md §4, "The tail").
 *
 * Seeking works because raw newlines only ever end lines (the writer
 * escapes them inside strings) and sequences grow with offsets: from any
 * offset, the next newline starts a line whose sequence says which half
 * to search.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

#define STREAM_CHUNK ((size_t)256 << 10)
#define SEEK_CHUNK ((size_t)4 << 10)
#define SEEK_LINEAR ((uint64_t)64 << 10)

void evs__reader_init(evs__reader *r, evs_store *s, int fd, uint64_t limit)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->fd = fd;
    r->limit = limit;
    r->chunk = STREAM_CHUNK;
}

void evs__reader_free(evs__reader *r)
{
    evs__free(r->s->alloc, r->raw);
    r->raw = r->buf = NULL;
}

void evs__reader_at(evs__reader *r, uint64_t off)
{
    r->boff = off;
    r->blen = r->pos = 0;
}

uint64_t evs__reader_off(const evs__reader *r)
{
    return r->boff + r->pos;
}

/* Makes room for at least `want` bytes in the buffer, keeping the unread
 * part. */
static int reader_room(evs__reader *r, size_t want)
{
    size_t keep = r->blen - r->pos, nc;
    char *raw, *buf;

    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, keep);
        r->boff += r->pos;
        r->blen = keep;
        r->pos = 0;
    }
    if (r->cap - r->blen >= want)
        return 0;
    nc = r->cap ? r->cap : r->chunk;
    while (nc - r->blen < want)
        nc *= 2;
    /* Page-aligned buffers make reads from the page cache several times
     * faster (docs/ARCHITECTURE.md §6), which is why this buffer does not
     * grow with evs__grow: realloc would not keep the alignment. */
    raw = evs__malloc(r->s->alloc, nc + 4096);
    if (!raw)
        return -ENOMEM;
    buf = (char *)(((uintptr_t)raw + 4095) & ~(uintptr_t)4095);
    if (r->blen)
        memcpy(buf, r->buf, r->blen);
    evs__free(r->s->alloc, r->raw);
    r->raw = raw;
    r->buf = buf;
    r->cap = nc;
    return 0;
}

int evs__reader_line(evs__reader *r, const char **line, size_t *len)
{
    size_t scanned = 0, max = r->s->opts.max_line;
    int rc;

    for (;;) {
        /* Before the first read buf is NULL, which memchr may not get
         * even for 0 bytes. */
        const char *nl = r->blen > r->pos + scanned
                             ? memchr(r->buf + r->pos + scanned, '\n',
                                      r->blen - r->pos - scanned)
                             : NULL;
        uint64_t at, want;
        size_t got;

        if (nl) {
            *line = r->buf + r->pos;
            *len = (size_t)(nl - *line) + 1;
            if (*len > max)
                return EVS_ETOOBIG;
            r->pos += *len;
            return 1;
        }
        scanned = r->blen - r->pos;
        if (scanned > max)
            return EVS_ETOOBIG;
        at = r->boff + r->blen;
        if (at >= r->limit)
            return scanned ? EVS_ETORN : 0;
        if ((rc = reader_room(r, r->chunk)) != 0)
            return rc;
        /* Read a chunk, not the whole buffer: after a large line the
         * buffer stays large, and a seek's probes want small reads. */
        want = r->cap - r->blen;
        if (want > r->chunk)
            want = r->chunk;
        if (want > r->limit - at)
            want = r->limit - at;
        rc = IO(r->s)->pread(CTX(r->s), r->fd, r->buf + r->blen, (size_t)want,
                             at, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return scanned ? EVS_ETORN : 0;
        r->blen += got;
    }
}

int evs__reader_skip_line(evs__reader *r)
{
    for (;;) {
        const char *nl = memchr(r->buf + r->pos, '\n', r->blen - r->pos);
        uint64_t at = r->boff + r->blen, want;
        size_t got;
        int rc;

        if (nl) {
            r->pos = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        r->boff += r->blen;
        r->blen = r->pos = 0;
        if (at >= r->limit)
            return 0;
        if ((rc = reader_room(r, r->chunk)) != 0)
            return rc;
        want = r->cap;
        if (want > r->limit - at)
            want = r->limit - at;
        rc = IO(r->s)->pread(CTX(r->s), r->fd, r->buf, (size_t)want, at, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return 0;
        r->blen = got;
    }
}

/* ------------------------------------------------------------------ */
/* Cursors                                                            */
/* ------------------------------------------------------------------ */

typedef struct file_cursor {
    struct evs_cursor base;
    evs__reader rd;
    uint64_t to;
    evs__linecheck k;
} file_cursor;

static int set_damage(evs_error_info *info, const file_cursor *c, int code,
                      const char *kind, uint64_t off, const char *what)
{
    return evs__cursor_damage(info, c->base.log, c->k.next_seq, code, kind,
                              off, what);
}

/* Reads the sequence of the line at the reader's position. Returns 0,
 * -1 for a line that does not check out, or another negative error. */
static int probe(file_cursor *c, uint64_t *seq, uint64_t *start)
{
    const char *line;
    size_t len;
    evs_event ev;
    int rc;

    *start = evs__reader_off(&c->rd);
    rc = evs__reader_line(&c->rd, &line, &len);
    if (rc == EVS_ETOOBIG || rc == EVS_ETORN)
        return -1; /* damage, which the verified read reports */
    if (rc != 1)
        return rc < 0 ? rc : -1;
    rc = evs_line_decode(&c->k.dec, line, len, 0, &ev, NULL);
    if (rc == -ENOMEM)
        return rc; /* says nothing about the line */
    if (rc != 0)
        return -1;
    *seq = ev.sequence;
    return 0;
}

/* Finds the byte offset of the line holding sequence `from`. Damage met
 * on the way only ends the binary search early; the verified read that
 * follows reports it. */
/*
 * Near the end of the log, counting newlines back from the end finds a
 * sequence's line without decoding anything: the log's lines end at
 * consecutive sequences, so the line of `from` starts after the
 * (last - from + 2)th newline from the end. Gives up (returns 1) past
 * BACK_COUNT_BYTES, when the binary search is cheaper. The cursor's
 * verified read then checks that it landed on `from`.
 */
#define BACK_COUNT_LINES 4096
#define BACK_COUNT_BYTES ((uint64_t)4 << 20)
#define BACK_COUNT_CHUNK ((size_t)64 << 10)

static int seek_back(file_cursor *c, uint64_t from, uint64_t last, uint64_t end,
                     uint64_t *off)
{
    evs_store *s = c->rd.s;
    uint64_t lines = last - from + 1, seen = 0, pos = end;
    char *buf;
    int rc = 1;

    buf = evs__malloc(s->alloc, BACK_COUNT_CHUNK);
    if (!buf)
        return -ENOMEM;
    while (pos > 0 && end - pos < BACK_COUNT_BYTES) {
        size_t n = pos > BACK_COUNT_CHUNK ? BACK_COUNT_CHUNK : (size_t)pos;
        size_t got;
        const char *q;
        int r = IO(s)->pread(CTX(s), c->rd.fd, buf, n, pos - n, &got);

        if (r != 0 || got != n) {
            rc = r != 0 ? r : -EIO;
            goto out;
        }
        for (q = buf + n; (q = memrchr(buf, '\n', (size_t)(q - buf)));) {
            /* The newline that ends the line before `from`. */
            if (++seen == lines + 1) {
                *off = pos - n + (uint64_t)(q - buf) + 1;
                rc = 0;
                goto out;
            }
        }
        pos -= n;
    }
    if (pos == 0 && seen == lines) {
        *off = 0;
        rc = 0;
    }
out:
    evs__free(s->alloc, buf);
    return rc;
}

static int seek(file_cursor *c, uint64_t from, uint64_t last, uint64_t end,
                uint64_t *off)
{
    uint64_t lo = 0, hi = end, seq, ls;
    const char *line;
    size_t len;
    int rc;

    if (from <= 1) {
        *off = 0;
        return 0;
    }
    if (from > last) {
        *off = end;
        return 0;
    }
    if (last - from < BACK_COUNT_LINES) {
        rc = seek_back(c, from, last, end, off);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            /* Damage can make the count land elsewhere; then the binary
             * search below finds the damage and the read reports it. */
            evs__reader_at(&c->rd, *off);
            rc = probe(c, &seq, &ls);
            if (rc < -1)
                return rc;
            if (rc == 0 && seq == from)
                return 0;
        }
    }
    c->rd.chunk = SEEK_CHUNK;
    while (hi - lo > SEEK_LINEAR) {
        uint64_t mid = lo + (hi - lo) / 2;

        evs__reader_at(&c->rd, mid - 1);
        rc = evs__reader_line(&c->rd, &line, &len); /* the rest of a line */
        if (rc < 0 && rc != EVS_ETOOBIG && rc != EVS_ETORN)
            return rc;
        if (rc != 1 || evs__reader_off(&c->rd) >= hi) {
            hi = mid;
            continue;
        }
        rc = probe(c, &seq, &ls);
        if (rc < -1)
            return rc;
        if (rc != 0)
            break;
        if (seq == from) {
            *off = ls;
            goto done;
        }
        if (seq < from)
            lo = ls;
        else
            hi = ls;
    }
    /* Linear scan of the last window. */
    evs__reader_at(&c->rd, lo);
    for (;;) {
        rc = probe(c, &seq, &ls);
        if (rc < -1)
            return rc;
        if (rc != 0 || seq >= from) {
            *off = ls;
            break;
        }
    }
done:
    c->rd.chunk = STREAM_CHUNK;
    return 0;
}

int evs__file_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                          evs_cursor **out, evs_error_info *info)
{
    file_log *fl = (file_log *)l;
    evs_store *s = l->store;
    file_cursor *c;
    uint64_t off, last, end;
    int rc;

    /* Called with the log's mutex held (by evs_cursor_open, and by the
     * append path's retry check), so the end cannot move meanwhile. */
    last = l->last_seq;
    end = l->end;
    c = evs__calloc(s->alloc, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->base.ops = l->ops;
    c->base.log = l;
    evs__reader_init(&c->rd, s, fl->fd, end);
    evs__linecheck_init(&c->k, s->alloc, from, 1);
    c->to = (to == 0 || to > last) ? last : to;
    rc = seek(c, from, last, end, &off);
    if (rc != 0) {
        set_damage(info, c, rc, "", 0, evs_strerror(rc));
        evs__file_cursor_close(&c->base);
        return rc;
    }
    evs__reader_at(&c->rd, off);
    *out = &c->base;
    return 0;
}

int evs__file_cursor_next(evs_cursor *cur, evs_event *ev, evs_span *raw,
                          evs_error_info *info)
{
    file_cursor *c = (file_cursor *)cur;
    const char *line;
    uint64_t off = evs__reader_off(&c->rd);
    size_t len;
    int rc;

    if (c->k.next_seq > c->to)
        return 0;
    rc = evs__reader_line(&c->rd, &line, &len);
    if (rc == 0)
        return set_damage(info, c, EVS_ECORRUPT, "sequence", off,
                          "log ends before the sequence expected");
    if (rc == EVS_ETOOBIG || rc == EVS_ETORN)
        return set_damage(info, c, EVS_ECORRUPT, "framing", off,
                          "no line ending within the maximum line size");
    if (rc < 0)
        return set_damage(info, c, rc, "", off, evs_strerror(rc));
    if ((rc = evs__linecheck_next(&c->k, cur->log, line, len, off, ev,
                                  info)) != 0) {
        c->rd.pos -= len; /* stay at the failed line */
        return rc;
    }
    if (raw) {
        raw->ptr = line;
        raw->len = len;
    }
    return 1;
}

uint64_t evs__file_cursor_offset(const evs_cursor *cur)
{
    const file_cursor *c = (const file_cursor *)cur;

    return evs__reader_off(&c->rd);
}

void evs__file_cursor_close(evs_cursor *cur)
{
    file_cursor *c = (file_cursor *)cur;
    evs_store *s = cur->log->store;

    evs__reader_free(&c->rd);
    evs__linecheck_free(&c->k);
    evs__free(s->alloc, c);
}

/* ------------------------------------------------------------------ */
/* Tolerant scan                                                      */
/* ------------------------------------------------------------------ */

typedef struct scanner {
    evs__reader rd;
    evs_decoder dec;
    const char *id;
    size_t id_len;
    uint64_t expect; /* next sequence expected */
    uint64_t grp_first, grp_end;
    int resync;          /* just after damage: take the next seq */
    uint64_t commit_end; /* end of the last complete append seen */
    uint64_t commit_seq;
} scanner;

typedef int (*scan_emit)(void *arg, const evs_scan_item *it);

static int problem(scan_emit emit, void *arg, int code, const char *kind,
                   uint64_t seq, uint64_t off, uint64_t len, const char *msg)
{
    evs_scan_item it;

    memset(&it, 0, sizeof(it));
    it.is_problem = 1;
    it.code = code;
    it.kind = kind;
    it.sequence = seq;
    it.offset = off;
    it.length = len;
    it.msg = msg;
    return emit(arg, &it);
}

/*
 * Reads every line of [0, limit) and reports each valid event and each
 * problem. With `stop` set, returns at the first problem (for recovery).
 */
static int scan_lines(scanner *sc, scan_emit emit, void *arg, int stop)
{
    const char *line;
    size_t len;
    evs_event ev;
    evs_error_info ei;
    int rc;

    for (;;) {
        uint64_t off = evs__reader_off(&sc->rd);

        rc = evs__reader_line(&sc->rd, &line, &len);
        if (rc == 0)
            return 0;
        if (rc == EVS_ETORN)
            return 0; /* the caller reports the tail */
        if (rc == EVS_ETOOBIG) {
            if (stop)
                return 1;
            rc = problem(emit, arg, EVS_ECORRUPT, "framing", sc->expect, off, 0,
                         "no line ending within the maximum line "
                         "size");
            if (rc)
                return rc;
            if ((rc = evs__reader_skip_line(&sc->rd)) < 0)
                return rc;
            sc->resync = 1;
            if (rc == 0)
                return 0;
            continue;
        }
        if (rc < 0)
            return rc;
        evs_error_info_clear(&ei);
        rc = evs_line_decode(&sc->dec, line, len, 0, &ev, &ei);
        if (rc == -ENOMEM)
            return rc;
        if (rc == 0 &&
            !evs__span_eq(ev.execution_id, (evs_span){sc->id, sc->id_len})) {
            rc = EVS_ECORRUPT;
            ei.kind = "execution";
            snprintf(ei.msg, sizeof(ei.msg), "line of another execution");
        }
        if (rc != 0) {
            if (stop)
                return 1;
            rc = problem(emit, arg, rc == EVS_EFORMAT ? rc : EVS_ECORRUPT,
                         ei.kind[0] ? ei.kind : "syntax", sc->expect, off, len,
                         ei.msg);
            if (rc)
                return rc;
            sc->resync = 1;
            continue;
        }
        if (ev.sequence != sc->expect &&
            !(sc->resync && ev.sequence > sc->expect)) {
            char msg[96];
            if (stop)
                return 1;
            snprintf(msg, sizeof(msg), "expected sequence %llu, found %llu",
                     (unsigned long long)sc->expect,
                     (unsigned long long)ev.sequence);
            rc = problem(emit, arg, EVS_ECORRUPT, "sequence", sc->expect, off,
                         len, msg);
            if (rc)
                return rc;
        }
        sc->resync = 0;
        if ((sc->grp_end >= ev.sequence && ev.batch_first != sc->grp_first) ||
            (sc->grp_end < ev.sequence && ev.batch_first != ev.sequence)) {
            if (stop)
                return 1;
            rc = problem(emit, arg, EVS_ECORRUPT, "framing", ev.sequence, off,
                         len, "append cut short or its start is missing");
            if (rc)
                return rc;
        }
        sc->grp_first = ev.batch_first;
        sc->grp_end = ev.batch_first + ev.batch_count - 1;
        sc->expect = ev.sequence + 1;
        if (ev.sequence == sc->grp_end) {
            sc->commit_end = evs__reader_off(&sc->rd);
            sc->commit_seq = ev.sequence;
        }
        if (emit) {
            evs_scan_item it;
            memset(&it, 0, sizeof(it));
            it.ev = &ev;
            it.offset = off;
            it.raw.ptr = line;
            it.raw.len = len;
            if ((rc = emit(arg, &it)) != 0)
                return rc;
        }
    }
}

static int scanner_init(scanner *sc, evs_store *s, int fd, uint64_t limit,
                        const char *id, size_t id_len)
{
    memset(sc, 0, sizeof(*sc));
    evs__reader_init(&sc->rd, s, fd, limit);
    evs_decoder_init(&sc->dec, s->alloc);
    sc->id = id;
    sc->id_len = id_len;
    sc->expect = 1;
    return 0;
}

static void scanner_free(scanner *sc)
{
    evs__reader_free(&sc->rd);
    evs_decoder_free(&sc->dec);
}

int evs__scan_prefix(evs_store *s, int fd, uint64_t size, const char *id,
                     size_t id_len, evs__tail *t)
{
    scanner sc;
    int rc;

    scanner_init(&sc, s, fd, size, id, id_len);
    rc = scan_lines(&sc, NULL, NULL, 1);
    if (rc >= 0) {
        memset(t, 0, sizeof(*t));
        t->end = sc.commit_end;
        t->last_seq = sc.commit_seq;
        /* Describe what the cut will drop, for the report. */
        rc = evs__walk_tail(s, fd, size, id, id_len, t, NULL, NULL);
    }
    scanner_free(&sc);
    return rc;
}

typedef struct scan_ctx {
    evs_scan_fn fn;
    void *arg;
    uint64_t tail_end;
} scan_ctx;

static int scan_emit_user(void *arg, const evs_scan_item *it)
{
    scan_ctx *x = arg;

    return x->fn(x->arg, it);
}

typedef struct tail_ctx {
    scan_ctx *x;
    const evs__tail *t;
} tail_ctx;

/* Reports one piece of the tail to the scan's callback. */
static int tail_item(void *arg, const evs__tail_piece *p)
{
    tail_ctx *tc = arg;
    const evs__tail *t = tc->t;
    evs_scan_item it;
    char msg[256];

    memset(&it, 0, sizeof(it));
    it.after_end = 1;
    it.append_first = t->app_first;
    it.append_count = t->app_count;
    if (p->ev) {
        it.ev = p->ev;
        it.raw = p->raw;
        it.offset = p->offset;
        return tc->x->fn(tc->x->arg, &it);
    }
    if (!t->damaged)
        return 0; /* a torn tail is reported once, as a whole */
    it.is_problem = 1;
    it.code = p->explained ? EVS_ETORN : EVS_ECORRUPT;
    it.kind = p->explained ? "torn" : p->kind;
    it.sequence = p->seq;
    it.offset = p->offset;
    it.length = p->len;
    if (p->explained)
        snprintf(msg, sizeof(msg), "%s: bytes a crash left, in the "
                 "damaged last append", p->why);
    else
        snprintf(msg, sizeof(msg),
                 "%s in the last append (sequences %llu..%llu, %llu "
                 "events): damage no crash leaves, not a torn write "
                 "(a writer's open refuses to cut it)",
                 p->why, (unsigned long long)t->app_first,
                 (unsigned long long)(t->app_first + t->app_count - 1),
                 (unsigned long long)t->app_count);
    it.msg = msg;
    return tc->x->fn(tc->x->arg, &it);
}

/*
 * Reports the tail after the end (FORMAT.md §4, "The tail"): a torn one
 * as one problem, a damaged one by each piece that does not check out;
 * either way, each of its lines that checks out as an event marked
 * after_end.
 */
static int scan_tail(evs_store *s, file_log *fl, scan_ctx *x)
{
    evs__tail t = fl->tail;
    tail_ctx tc = {x, &fl->tail};
    char msg[256];
    int rc;

    if (!t.damaged) {
        evs_scan_item it;

        snprintf(msg, sizeof(msg),
                 "torn tail: %llu bytes of an unfinished append "
                 "(sequences %llu..%llu, %llu of its lines complete) after "
                 "the last complete append; a writer's open cuts it back",
                 (unsigned long long)(t.size - t.end),
                 (unsigned long long)t.app_first,
                 (unsigned long long)(t.app_first + t.app_count - 1),
                 (unsigned long long)t.lines_after);
        memset(&it, 0, sizeof(it));
        it.is_problem = 1;
        it.code = EVS_ETORN;
        it.kind = "torn";
        it.sequence = t.app_first;
        it.offset = t.end;
        it.length = t.size - t.end;
        it.msg = msg;
        it.after_end = 1;
        it.append_first = t.app_first;
        it.append_count = t.app_count;
        if ((rc = x->fn(x->arg, &it)) != 0)
            return rc;
    }
    /* The walk again, on a copy: the description stays the open's. */
    return evs__walk_tail(s, fl->fd, t.size, fl->base.id, fl->base.id_len, &t,
                          tail_item, &tc);
}

/* Scans every line of a log whose end is unknown, up to its size, and
 * reports bytes after the last newline as torn. */
static int scan_whole_file(evs_store *s, const char *id, size_t id_len,
                           scan_ctx *x)
{
    char name[EVS_ID_MAX + 1];
    uint64_t at, seq;
    evs_stat st;
    scanner sc;
    int dfd, fd, rc;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    rc = evs__open_regular(s, dfd, EVS__LOG_NAME, O_RDONLY, 0, &fd, NULL);
    IO(s)->close(CTX(s), dfd);
    if (rc != 0)
        return rc;
    if ((rc = IO(s)->fstat(CTX(s), fd, &st)) != 0)
        goto out;
    scanner_init(&sc, s, fd, st.size, id, id_len);
    rc = scan_lines(&sc, scan_emit_user, x, 0);
    at = evs__reader_off(&sc.rd);
    seq = sc.expect;
    scanner_free(&sc);
    if (rc == 0 && at < st.size)
        rc = problem(scan_emit_user, x, EVS_ETORN, "torn", seq, at,
                     st.size - at, "torn tail: a line without its newline");
out:
    IO(s)->close(CTX(s), fd);
    return rc;
}

int evs__file_log_scan(evs_store *s, const char *id, size_t id_len,
                       evs_scan_fn fn, void *arg)
{
    evs_log *l;
    file_log *fl;
    scanner sc;
    scan_ctx x = {fn, arg, 0};
    evs_error_info info;
    int rc;

    rc = evs__file_log_open(s, id, id_len, 0, &l, NULL, &info);
    if (rc == EVS_ECORRUPT || rc == EVS_EFORMAT) {
        /* The end could not be established: scan every line there is;
         * the one that stopped the open is reported on the way. */
        return scan_whole_file(s, id, id_len, &x);
    }
    if (rc != 0)
        return rc;
    fl = (file_log *)l;
    /* Everything up to the end of the last complete append is checked
     * line by line; then what followed it when the log was opened. */
    scanner_init(&sc, s, fl->fd, l->end, id, id_len);
    rc = scan_lines(&sc, scan_emit_user, &x, 0);
    scanner_free(&sc);
    if (rc == 0 && fl->tail.size > l->end)
        rc = scan_tail(s, fl, &x);
    evs__file_log_close(l);
    return rc;
}
