/*
 * test_recover.c: what a crash or a damaged disk leaves in a log, and what
 * readers and writers make of it: torn tails cut at every byte, lost or
 * garbage blocks, a bit flipped at every position, mid-log damage, newer
 * formats and point-in-time recovery.
 */
#include <criterion/criterion.h>

#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;
static evs_store *st;

/*
 * The POSIX I/O without fsync and fdatasync. Crashes are simulated here by
 * editing the file, not by losing unsynced writes, so syncing buys nothing
 * and would make the loops over every byte offset slow.
 */
static int no_sync(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0;
}

static evs_io nosync_io;

static void setup(void)
{
    nosync_io = *evs_io_posix();
    nosync_io.fsync = no_sync;
    nosync_io.fdatasync = no_sync;
    dir = tu_tmpdir("recover");
    cr_assert_not_null(dir);
    st = tu_open_store(dir, &nosync_io);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    evs_store_close(st);
    tu_rmtree_free(dir);
}

TestSuite(log_recover, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

#define MAXL 64

/* The bytes of a log split into lines: the line of sequence i+1 is
 * buf[off[i], off[i+1]). */
typedef struct img {
    char *buf;
    size_t len;
    size_t n;
    size_t off[MAXL + 1];
} img;

static char *log_path(const char *id)
{
    char *p = tu_path(dir, id, EVS__LOG_NAME);

    cr_assert_not_null(p);
    return p;
}

static void img_load(img *m, const char *id)
{
    char *p = log_path(id);

    memset(m, 0, sizeof(*m));
    m->buf = tu_read_file(p, &m->len);
    cr_assert_not_null(m->buf);
    free(p);
    for (size_t i = 0; i < m->len; i++) {
        if (m->buf[i] == '\n') {
            cr_assert_lt(m->n, MAXL);
            m->off[++m->n] = i + 1;
        }
    }
    cr_assert_eq(m->off[m->n], m->len, "the log must end with a newline");
}

static void img_free(img *m)
{
    free(m->buf);
    m->buf = NULL;
}

/* Writes `n` bytes of `buf` as the log of `id`. The file is rewritten in
 * place rather than truncated to zero first, which would make ext4 flush
 * it at close (auto_da_alloc) and the loops below slow. */
static void put_log(const char *id, const char *buf, size_t n)
{
    char *p = log_path(id);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
    cr_assert_eq(ftruncate(fd, (off_t)n), 0);
    close(fd);
    free(p);
}

/* Appends n events in one append, each with `pad` bytes of output. */
static void append_group(evs_log *l, size_t n, size_t pad, int tag)
{
    evs_event ev[8];
    char *data[8];

    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++) {
        data[i] = malloc(pad + 64);
        cr_assert_not_null(data[i]);
        snprintf(data[i], 64, "{\"tag\":%d,\"i\":%zu,\"output\":\"", tag, i);
        size_t k = strlen(data[i]);
        for (size_t j = 0; j < pad; j++)
            data[i][k + j] = (char)('a' + (j + i) % 26);
        strcpy(data[i] + k + pad, "\"}");
        ev[i] = tu_event(EVS_EV_STEP_COMPLETED, "grp", data[i]);
    }
    cr_assert_eq(evs_log_append(l, ev, n, evs_log_last_seq(l), NULL), 0);
    for (size_t i = 0; i < n; i++)
        free(data[i]);
}

/*
 * Creates `id` with one event, then `singles` single-event appends, then
 * `mid_n` events in one append (none if 0), then `tail_singles` more
 * single appends, then `last_n` events in one final append of `pad`-byte
 * events (none if 0). Sets *prev_end and *prev_seq to the end of the log
 * before the final append.
 */
static void build(const char *id, size_t singles, size_t mid_n,
                  size_t tail_singles, size_t last_n, size_t pad,
                  uint64_t *prev_end, uint64_t *prev_seq)
{
    evs_log *l;

    cr_assert_eq(tu_create(st, id), 0);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(l, singles), 0);
    if (mid_n)
        append_group(l, mid_n, 40, 1);
    cr_assert_eq(tu_append_n(l, tail_singles), 0);
    if (prev_end)
        *prev_end = evs_log_size(l);
    if (prev_seq)
        *prev_seq = evs_log_last_seq(l);
    if (last_n)
        append_group(l, last_n, pad, 2);
    evs_log_close(l);
}

/*
 * Reads every event of `l` through a cursor and checks each raw line
 * against the line of the same sequence in `want`. Returns the number of
 * events read; *end_rc gets what ended the read (0 or an error).
 */
static uint64_t read_back(evs_log *l, const img *want, int *end_rc,
                          evs_error_info *info)
{
    evs_cursor *c;
    evs_event ev;
    evs_span raw;
    uint64_t n = 0;
    int rc;

    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, info), 0);
    while ((rc = evs_cursor_next(c, &ev, &raw, info)) == 1) {
        n++;
        cr_assert_eq(ev.sequence, n);
        cr_assert_leq(n, want->n, "an event the writer never wrote");
        cr_assert_eq(raw.len, want->off[n] - want->off[n - 1],
                     "line %llu has other bytes than were written",
                     (unsigned long long)n);
        cr_assert(memcmp(raw.ptr, want->buf + want->off[n - 1], raw.len) == 0,
                  "line %llu has other bytes than were written",
                  (unsigned long long)n);
    }
    evs_cursor_close(c);
    *end_rc = rc;
    return n;
}

/* What evs_log_scan reported. */
typedef struct scan_res {
    const img *want;
    uint64_t events;
    uint64_t after;    /* events of the tail after the end */
    uint64_t problems;
    uint64_t app_first[8], app_count[8];
    int code[8];
    const char *kind[8];
    uint64_t seq[8];
    uint64_t off[8];
    uint64_t len[8];
    uint64_t ev_seq[MAXL]; /* sequences of the events, in order */
    int bad_event;         /* an event whose bytes were never written */
} scan_res;

static int scan_cb(void *arg, const evs_scan_item *it)
{
    scan_res *r = arg;

    if (it->is_problem) {
        if (r->problems < 8) {
            r->code[r->problems] = it->code;
            r->kind[r->problems] = it->kind;
            r->seq[r->problems] = it->sequence;
            r->off[r->problems] = it->offset;
            r->len[r->problems] = it->length;
            r->app_first[r->problems] = it->append_first;
            r->app_count[r->problems] = it->append_count;
        }
        r->problems++;
        return 0;
    }
    if (it->after_end) {
        r->after++;
    } else {
        if (r->events < MAXL)
            r->ev_seq[r->events] = it->ev->sequence;
        r->events++;
    }
    if (r->want) {
        uint64_t s = it->ev->sequence;
        const img *m = r->want;
        if (s == 0 || s > m->n || it->raw.len != m->off[s] - m->off[s - 1] ||
            memcmp(it->raw.ptr, m->buf + m->off[s - 1], it->raw.len) != 0)
            r->bad_event = 1;
    }
    return 0;
}

static void scan(const char *id, const img *want, scan_res *r)
{
    memset(r, 0, sizeof(*r));
    r->want = want;
    cr_assert_eq(evs_log_scan(st, id, strlen(id), scan_cb, r), 0);
}

/* Number of files named cut-* in the directory of `id`. */
static int count_cut_files(const char *id)
{
    char *p = tu_path(dir, id, "");
    DIR *d = opendir(p);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "cut-", 4) == 0)
            n++;
    closedir(d);
    free(p);
    return n;
}

/*
 * Writes the log of `m` up to prev_end followed by `tail` (tail_len bytes
 * that are not a complete append) as the log of `id`, and checks that a
 * reader sees exactly the events before prev_end, that a writer's open
 * cuts the tail back (saving exactly those bytes) and reports it, and that
 * the log then goes on normally. cut_events < 0: not checked.
 */
static void check_recovers(const char *id, const img *m, uint64_t prev_end,
                           uint64_t prev_seq, const char *tail, size_t tail_len,
                           long cut_events)
{
    char *buf = malloc(prev_end + tail_len + 1), *p;
    evs_recovery_info rec;
    evs_error_info info;
    scan_res sr;
    evs_log *l;
    evs_event e;
    int rc;

    cr_assert_not_null(buf);
    memcpy(buf, m->buf, prev_end);
    memcpy(buf + prev_end, tail, tail_len);
    put_log(id, buf, prev_end + tail_len);

    /* A reader sees the complete appends only. */
    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, NULL, &info), 0, "%s",
                 info.msg);
    cr_assert_eq(evs_log_last_seq(l), prev_seq, "tail of %zu bytes", tail_len);
    cr_assert_eq(evs_log_size(l), prev_end);
    cr_assert_eq(read_back(l, m, &rc, &info), prev_seq);
    cr_assert_eq(rc, 0, "%s", info.msg);
    evs_log_close(l);

    /* The scan reports the tail as torn, and nothing else. */
    scan(id, m, &sr);
    cr_assert_eq(sr.events, prev_seq);
    cr_assert_eq(sr.bad_event, 0);
    if (tail_len) {
        cr_assert_eq(sr.problems, 1);
        cr_assert_str_eq(sr.kind[0], "torn");
        cr_assert_eq(sr.code[0], EVS_ETORN);
        cr_assert_eq(sr.off[0], prev_end);
        cr_assert_eq(sr.len[0], tail_len);
        cr_assert_eq(sr.app_first[0], prev_seq + 1);
        if (cut_events >= 0)
            cr_assert_eq(sr.after, (uint64_t)cut_events,
                         "the tail's good lines are reported after the end");
    } else {
        cr_assert_eq(sr.problems, 0);
    }

    /* A writer cuts it back to the previous append, saving it first. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info), 0,
        "%s", info.msg);
    cr_assert_eq(rec.cut_bytes, tail_len);
    cr_assert_eq(rec.last_seq, prev_seq);
    cr_assert_eq(rec.end_offset, prev_end);
    p = log_path(id);
    cr_assert_eq(tu_file_size(p), (long long)prev_end);
    free(p);
    if (tail_len) {
        size_t got;
        char *saved;

        cr_assert_eq(rec.cut_offset, prev_end);
        cr_assert_neq(rec.saved_as[0], '\0');
        if (cut_events >= 0)
            cr_assert_eq(rec.cut_events, (uint64_t)cut_events);
        p = tu_path(dir, id, rec.saved_as);
        saved = tu_read_file(p, &got);
        cr_assert_not_null(saved, "no file %s", rec.saved_as);
        cr_assert_eq(got, tail_len);
        cr_assert(memcmp(saved, tail, tail_len) == 0,
                  "the saved bytes differ from the cut ones");
        free(saved);
        cr_assert_eq(unlink(p), 0);
        free(p);
    } else {
        cr_assert_eq(rec.saved_as[0], '\0');
    }
    cr_assert_eq(count_cut_files(id), 0);
    cr_assert_eq(read_back(l, m, &rc, &info), prev_seq);
    cr_assert_eq(rc, 0, "%s", info.msg);
    e = tu_event(EVS_EV_STEP_STARTED, "after", "{\"again\":true}");
    cr_assert_eq(evs_log_append(l, &e, 1, prev_seq, &info), 0, "%s", info.msg);
    cr_assert_eq(evs_log_last_seq(l), prev_seq + 1);
    evs_log_close(l);

    /* Opening again finds a clean log. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, 0);
    cr_assert_eq(rec.saved_as[0], '\0');
    cr_assert_eq(rec.last_seq, prev_seq + 1);
    evs_log_close(l);
    cr_assert_eq(count_cut_files(id), 0);
    free(buf);
}

/*
 * Writes the log of `m` up to prev_end followed by `tail`, a last append
 * damaged in a way no crash leaves (FORMAT.md §4, "The tail"), and checks
 * that a reader sees the events before prev_end and is told of the
 * damage at byte `bad` (an offset in the file), that the scan reports it
 * there as EVS_ECORRUPT, that a writer's open refuses with the same
 * place and changes nothing, and that point-in-time recovery then cuts
 * it, saving it.
 */
static void check_refused(const char *id, const img *m, uint64_t prev_end,
                          uint64_t prev_seq, const char *tail, size_t tail_len,
                          uint64_t bad)
{
    char *buf = malloc(prev_end + tail_len + 1), *p, *now;
    evs_recovery_info rec;
    evs_error_info info;
    evs_store_opts o;
    evs_store *pit;
    scan_res sr;
    evs_log *l;
    size_t got;
    int rc;

    cr_assert_not_null(buf);
    memcpy(buf, m->buf, prev_end);
    memcpy(buf + prev_end, tail, tail_len);
    put_log(id, buf, prev_end + tail_len);

    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, &rec, &info), 0, "%s",
                 info.msg);
    cr_assert_eq(evs_log_last_seq(l), prev_seq);
    cr_assert_eq(read_back(l, m, &rc, &info), prev_seq);
    cr_assert_eq(rc, 0, "%s", info.msg);
    evs_log_close(l);
    cr_assert_eq(rec.tail_bytes, tail_len);
    cr_assert_eq(rec.tail_damaged, 1);
    cr_assert_eq(rec.bad_offset, bad);

    scan(id, m, &sr);
    cr_assert_eq(sr.events, prev_seq);
    cr_assert_eq(sr.bad_event, 0);
    cr_assert_geq(sr.problems, 1);
    cr_assert_eq(sr.code[0], EVS_ECORRUPT);
    cr_assert_eq(sr.off[0], bad);

    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info),
        EVS_ECORRUPT);
    cr_assert_eq(info.offset, bad);
    cr_assert_eq(info.sequence, rec.bad_sequence);
    cr_assert_str_eq(info.execution_id, id);
    p = log_path(id);
    now = tu_read_file(p, &got);
    cr_assert(now && got == prev_end + tail_len &&
                  memcmp(now, buf, got) == 0,
              "a refused open changed the log");
    free(now);
    free(p);
    cr_assert_eq(count_cut_files(id), 0);

    /* Point-in-time recovery cuts it, saving it. */
    evs_store_opts_init(&o);
    o.io = &nosync_io;
    o.recovery = EVS_RECOVER_POINT_IN_TIME;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &pit), 0);
    cr_assert_eq(
        evs_log_open(pit, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info), 0,
        "%s", info.msg);
    cr_assert_eq(rec.last_seq, prev_seq);
    cr_assert_eq(rec.cut_offset, prev_end);
    cr_assert_eq(rec.cut_bytes, tail_len);
    evs_log_close(l);
    evs_store_close(pit);
    p = tu_path(dir, id, rec.saved_as);
    now = tu_read_file(p, &got);
    cr_assert(now && got == tail_len && memcmp(now, tail, got) == 0,
              "the saved bytes differ from the cut ones");
    free(now);
    cr_assert_eq(unlink(p), 0);
    free(p);
    free(buf);
}

static size_t count_newlines(const char *p, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        k += p[i] == '\n';
    return k;
}

/* A small, reproducible pseudo-random generator (xorshift64). */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ------------------------------------------------------------------ */
/* Torn tails                                                         */
/* ------------------------------------------------------------------ */

static void torn_at_every_offset(const char *id, size_t last_n, size_t pad)
{
    uint64_t prev_end, prev_seq;
    img m;

    build(id, 3, 0, 0, last_n, pad, &prev_end, &prev_seq);
    img_load(&m, id);
    cr_assert_eq(m.n, prev_seq + last_n);
    cr_assert_gt(m.len, prev_end);
    for (uint64_t k = prev_end; k < m.len; k++) {
        size_t t = (size_t)(k - prev_end);
        check_recovers(id, &m, prev_end, prev_seq, m.buf + prev_end, t,
                       (long)count_newlines(m.buf + prev_end, t));
    }
    img_free(&m);
}

Test(log_recover, torn_multi_event_append_is_cut_at_every_byte_offset)
{
    torn_at_every_offset("torn5", 5, 60);
}

Test(log_recover, torn_single_event_append_is_cut_at_every_byte_offset)
{
    torn_at_every_offset("torn1", 1, 200);
}

/*
 * A power loss during an unsynced append can leave the file at its full
 * length with some sectors never written: zeros, in whole sectors, which
 * make the append torn (FORMAT.md §4, "The tail"). Zeros that are not a
 * whole sector of a line, and bytes that are neither what was written
 * nor zeros (garbage, never 0 here), are damage no crash leaves on the
 * file systems §4 names: the writer refuses to cut them. Every 512-byte
 * block inside the last append, aligned as a sector and also shifted, is
 * damaged in turn.
 */
static void damaged_block_in_last_append(const char *id, size_t last_n,
                                         size_t pad, int zeros)
{
    uint64_t prev_end, prev_seq, seed = 0x9e3779b97f4a7c15ull;
    char *tail;
    size_t tlen, runs = 0, cut = 0, refused = 0;
    img m;

    build(id, 3, 0, 0, last_n, pad, &prev_end, &prev_seq);
    img_load(&m, id);
    tlen = m.len - prev_end;
    cr_assert_geq(tlen, 1024, "the last append must span several blocks");
    tail = malloc(tlen);
    cr_assert_not_null(tail);
    for (size_t a = 0; a + 512 <= m.len; a += 32) {
        size_t line = 0;
        int torn;

        if (a < prev_end)
            continue;
        memcpy(tail, m.buf + prev_end, tlen);
        for (size_t i = 0; i < 512; i++) {
            char g = (char)(rnd(&seed) & 0xff);
            tail[a - prev_end + i] = zeros ? '\0' : g ? g : 'x';
        }
        /* Torn: the file no longer ends with a newline, or a whole
         * sector of the damaged line is zeros (an aligned block, or a
         * shifted one whose line starts inside it). */
        torn = tail[tlen - 1] != '\n' ||
               (zeros && (a % 512 == 0 || m.buf[a - 1] == '\n'));
        if (torn) {
            check_recovers(id, &m, prev_end, prev_seq, tail, tlen, -1);
            cut++;
        } else {
            /* The first damaged line is the one holding byte a. */
            while (m.off[line + 1] <= a)
                line++;
            check_refused(id, &m, prev_end, prev_seq, tail, tlen,
                          m.off[line]);
            refused++;
        }
        runs++;
    }
    cr_assert_gt(refused, 0);
    if (zeros)
        cr_assert_gt(cut, 0);
    /* The block that ends the file, whatever its alignment. */
    memcpy(tail, m.buf + prev_end, tlen);
    memset(tail + tlen - 512, 0, 512);
    check_recovers(id, &m, prev_end, prev_seq, tail, tlen, -1);
    cr_assert_geq(runs, 16);
    free(tail);
    img_free(&m);
}

Test(log_recover, zeroed_block_in_last_multi_event_append_is_cut_or_refused)
{
    damaged_block_in_last_append("z5", 5, 400, 1);
}

Test(log_recover, garbage_block_in_last_multi_event_append_is_refused)
{
    damaged_block_in_last_append("g5", 5, 400, 0);
}

Test(log_recover, zeroed_block_in_last_single_event_append_is_cut_or_refused)
{
    damaged_block_in_last_append("z1", 1, 2000, 1);
}

Test(log_recover, garbage_block_in_last_single_event_append_is_refused)
{
    damaged_block_in_last_append("g1", 1, 2000, 0);
}

Test(log_recover, zeros_after_a_clean_end_are_cut_and_nothing_is_lost)
{
    uint64_t prev_end, prev_seq;
    char zeros[4096];
    img m;

    /* No final append: the whole log is complete. */
    build("zx", 4, 3, 1, 0, 0, &prev_end, &prev_seq);
    img_load(&m, "zx");
    cr_assert_eq(prev_end, m.len);
    cr_assert_eq(prev_seq, m.n);
    memset(zeros, 0, sizeof(zeros));
    check_recovers("zx", &m, prev_end, prev_seq, zeros, sizeof(zeros), 0);
    check_recovers("zx", &m, prev_end, prev_seq, zeros, 1, 0);
    img_free(&m);
}

Test(log_recover, garbage_after_a_clean_end_is_refused_and_kept)
{
    uint64_t prev_end, prev_seq, seed = 42;
    char junk[3000];
    img m;

    build("gx", 4, 3, 1, 0, 0, &prev_end, &prev_seq);
    img_load(&m, "gx");
    cr_assert_eq(prev_end, m.len);
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (char)(rnd(&seed) & 0xff);
        junk[i] = junk[i] ? junk[i] : 'x';
    }
    /* Garbage with newlines in it is damage, wherever it stops. */
    cr_assert_not_null(memchr(junk, '\n', sizeof(junk) - 1));
    junk[sizeof(junk) - 1] = 'x';
    check_refused("gx", &m, prev_end, prev_seq, junk, sizeof(junk), prev_end);
    junk[sizeof(junk) - 1] = '\n';
    check_refused("gx", &m, prev_end, prev_seq, junk, sizeof(junk), prev_end);
    {
        const char *txt = "{\"v\":1,\"id\":\"x\"}\nnot json at all\n{}\n";
        check_refused("gx", &m, prev_end, prev_seq, txt, strlen(txt),
                      prev_end);
    }
    /* Without a newline it is a line the write did not finish: torn. */
    memset(junk, 'x', sizeof(junk));
    check_recovers("gx", &m, prev_end, prev_seq, junk, sizeof(junk), 0);
    img_free(&m);
}

/* ------------------------------------------------------------------ */
/* Bit flips                                                          */
/* ------------------------------------------------------------------ */

/*
 * Flips every bit of every byte of the log of `id` in turn and checks
 * that each flip is detected and that no reader ever returns bytes that
 * were not written. `last_start` is where the last append begins: damage
 * there may instead make that append invisible, as a torn one.
 */
static void flip_everywhere(const char *id, uint64_t last_start,
                            uint64_t seq_before_last)
{
    size_t detected = 0, flips = 0, as_torn = 0, as_corrupt = 0;
    evs_error_info info;
    scan_res sr;
    char *copy;
    img m;

    img_load(&m, id);
    copy = malloc(m.len);
    cr_assert_not_null(copy);
    for (size_t b = 0; b < m.len; b++) {
        for (int bit = 0; bit < 8; bit++) {
            uint64_t n = 0;
            evs_log *l;
            int rc, open_rc, seen = 0;

            memcpy(copy, m.buf, m.len);
            copy[b] = (char)(copy[b] ^ (1 << bit));
            put_log(id, copy, m.len);
            flips++;

            scan(id, &m, &sr);
            cr_assert_eq(sr.bad_event, 0,
                         "scan returned bytes never written (byte %zu bit "
                         "%d)",
                         b, bit);
            cr_assert_geq(sr.problems, 1,
                          "scan missed a flip of byte %zu bit %d", b, bit);

            evs_error_info_clear(&info);
            open_rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, &info);
            cr_assert(open_rc == 0 || open_rc == EVS_ECORRUPT,
                      "open: %s (byte %zu bit %d)", evs_err_name(open_rc), b,
                      bit);
            if (open_rc == 0) {
                evs_error_info_clear(&info);
                n = read_back(l, &m, &rc, &info);
                evs_log_close(l);
                if (rc == EVS_ECORRUPT) {
                    /* Reported where the damage begins. */
                    cr_assert_eq(info.sequence, n + 1);
                    cr_assert_eq(info.offset, m.off[n], "byte %zu bit %d", b,
                                 bit);
                    cr_assert_str_eq(info.execution_id, id);
                    cr_assert_leq(m.off[n], b);
                    as_corrupt++;
                    seen = 1;
                } else {
                    cr_assert_eq(rc, 0, "%s", evs_err_name(rc));
                    cr_assert_lt(n, m.n, "flip of byte %zu bit %d went unseen",
                                 b, bit);
                    /* Only the last append may vanish, as a torn one. */
                    cr_assert_geq(b, last_start,
                                  "flip of byte %zu bit %d hid complete "
                                  "appends (read %llu of %zu)",
                                  b, bit, (unsigned long long)n, m.n);
                    cr_assert_eq(n, seq_before_last);
                    as_torn++;
                    seen = 1;
                }
            } else {
                seen = 1;
            }
            detected += seen;
        }
    }
    cr_assert_eq(detected, flips);
    cr_assert_eq(flips, m.len * 8);
    cr_assert_gt(as_corrupt, 0);
    cr_assert_gt(as_torn, 0);
    free(copy);
    img_free(&m);
}

Test(log_recover, every_bit_flip_with_a_batch_in_the_middle_is_detected)
{
    uint64_t last_start, seq;

    /* Sequences 1, 2, [3 4 5], 6. */
    build("flipm", 1, 3, 0, 1, 30, &last_start, &seq);
    cr_assert_eq(seq, 5);
    flip_everywhere("flipm", last_start, seq);
}

Test(log_recover, every_bit_flip_with_a_batch_at_the_end_is_detected)
{
    uint64_t last_start, seq;

    /* Sequences 1, 2, 3, [4 5 6]. */
    build("flipe", 2, 0, 0, 3, 30, &last_start, &seq);
    cr_assert_eq(seq, 3);
    flip_everywhere("flipe", last_start, seq);
}

/* ------------------------------------------------------------------ */
/* Damage before the end                                              */
/* ------------------------------------------------------------------ */

/* Flips a bit inside the data of line `line` (1-based) so that only the
 * checksum can tell. */
static void flip_in_data(const char *id, const img *m, size_t line)
{
    const char *s = m->buf + m->off[line - 1];
    const char *hit = memmem(s, m->off[line] - m->off[line - 1], "step ", 5);
    char *p = log_path(id);

    cr_assert_not_null(hit);
    /* 's' becomes 'r': still valid JSON. */
    cr_assert_eq(tu_flip_bit(p, (long long)(hit - m->buf), 0), 0);
    free(p);
}

Test(log_recover, mid_log_damage_is_ecorrupt_with_sequence_and_offset)
{
    evs_recovery_info rec;
    evs_error_info info;
    scan_res sr;
    evs_log *l;
    int rc;
    char *p = log_path("mid");
    img m;

    build("mid", 9, 0, 0, 0, 0, NULL, NULL);
    img_load(&m, "mid");
    cr_assert_eq(m.n, 10);
    flip_in_data("mid", &m, 3);

    evs_error_info_clear(&info);
    cr_assert_eq(evs_log_open(st, "mid", 3, 0, &l, NULL, &info), 0);
    cr_assert_eq(evs_log_last_seq(l), 10);
    cr_assert_eq(read_back(l, &m, &rc, &info), 2);
    cr_assert_eq(rc, EVS_ECORRUPT);
    cr_assert_eq(info.code, EVS_ECORRUPT);
    cr_assert_eq(info.sequence, 3);
    cr_assert_eq(info.offset, m.off[2]);
    cr_assert_str_eq(info.execution_id, "mid");
    cr_assert_str_eq(info.kind, "checksum");
    evs_log_close(l);

    /* Not a tail: a writer cuts nothing. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(evs_log_open(st, "mid", 3, EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, 0);
    cr_assert_eq(rec.saved_as[0], '\0');
    cr_assert_eq(rec.last_seq, 10);
    cr_assert_eq(tu_file_size(p), (long long)m.len);
    evs_log_close(l);
    cr_assert_eq(count_cut_files("mid"), 0);

    /* The scan reports the damage and goes on with the later events. */
    scan("mid", &m, &sr);
    cr_assert_eq(sr.problems, 1);
    cr_assert_eq(sr.code[0], EVS_ECORRUPT);
    cr_assert_str_eq(sr.kind[0], "checksum");
    cr_assert_eq(sr.off[0], m.off[2]);
    cr_assert_eq(sr.seq[0], 3);
    cr_assert_eq(sr.len[0], m.off[3] - m.off[2]);
    cr_assert_eq(sr.events, 9);
    cr_assert_eq(sr.bad_event, 0);
    for (uint64_t i = 0; i < 9; i++)
        cr_assert_eq(sr.ev_seq[i], i < 2 ? i + 1 : i + 2);
    free(p);
    img_free(&m);
}

/* ------------------------------------------------------------------ */
/* Newer formats                                                      */
/* ------------------------------------------------------------------ */

/* Appends to the log of `id` a copy of line `line` of `m` rewritten as
 * format version 2 with sequence `seq`, with a correct checksum. */
static void append_v2_line(const char *id, const img *m, size_t line,
                           uint64_t seq)
{
    const char *s = m->buf + m->off[line - 1];
    size_t len = m->off[line] - m->off[line - 1], blen, olen;
    char out[4096], num[32], hex[17];
    const char *seqk, *after, *ck;
    char *p = log_path(id), *cur;
    size_t clen;

    cr_assert(len < sizeof(out) - 64);
    cr_assert(memcmp(s, "{\"v\":1,", 7) == 0);
    seqk = memmem(s, len, "\"sequence\":", 11);
    cr_assert_not_null(seqk);
    seqk += 11;
    for (after = seqk; *after >= '0' && *after <= '9'; after++)
        ;
    ck = memmem(s, len, ",\"checksum\":\"", 13);
    cr_assert_not_null(ck);
    /* {"v":2, ... "sequence":<seq> ... up to and including the comma. */
    snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
    olen = 0;
    memcpy(out, "{\"v\":2,", 7);
    olen = 7;
    memcpy(out + olen, s + 7, (size_t)(seqk - s) - 7);
    olen += (size_t)(seqk - s) - 7;
    memcpy(out + olen, num, strlen(num));
    olen += strlen(num);
    memcpy(out + olen, after, (size_t)(ck + 1 - after));
    olen += (size_t)(ck + 1 - after);
    blen = olen;
    snprintf(hex, sizeof(hex), "%016llx",
             (unsigned long long)evs_checksum(out, blen));
    olen += (size_t)snprintf(out + olen, sizeof(out) - olen,
                             "\"checksum\":\"%s\"}\n", hex);
    cur = tu_read_file(p, &clen);
    cr_assert_not_null(cur);
    cur = realloc(cur, clen + olen);
    cr_assert_not_null(cur);
    memcpy(cur + clen, out, olen);
    cr_assert_eq(tu_write_file(p, cur, clen + olen), 0);
    free(cur);
    free(p);
}

Test(log_recover, newer_format_line_at_the_end_fails_reader_and_writer_open)
{
    evs_error_info info;
    evs_log *l = NULL;
    scan_res sr;
    char *p = log_path("v2");
    long long size;
    img m;

    build("v2", 3, 0, 0, 0, 0, NULL, NULL);
    img_load(&m, "v2");
    append_v2_line("v2", &m, 4, 5);
    size = tu_file_size(p);
    cr_assert_gt(size, (long long)m.len);

    evs_error_info_clear(&info);
    cr_assert_eq(evs_log_open(st, "v2", 2, 0, &l, NULL, &info), EVS_EFORMAT);
    cr_assert_eq(info.code, EVS_EFORMAT);
    cr_assert_eq(info.offset, m.len);
    cr_assert_null(l);
    evs_error_info_clear(&info);
    cr_assert_eq(evs_log_open(st, "v2", 2, EVS_LOG_WRITE, &l, NULL, &info),
                 EVS_EFORMAT);
    cr_assert_null(l);
    /* Never cut: the line is not damaged, only newer. */
    cr_assert_eq(tu_file_size(p), size);
    cr_assert_eq(count_cut_files("v2"), 0);
    /* The scan still reports every line that checks out, and the newer
     * one as such. */
    scan("v2", &m, &sr);
    cr_assert_eq(sr.events, 4);
    cr_assert_eq(sr.bad_event, 0);
    cr_assert_eq(sr.problems, 1);
    cr_assert_eq(sr.code[0], EVS_EFORMAT);
    cr_assert_str_eq(sr.kind[0], "format");
    cr_assert_eq(sr.off[0], m.len);
    cr_assert_eq(sr.seq[0], 5);
    free(p);
    img_free(&m);
}

Test(log_recover, newer_format_line_inside_the_log_fails_the_cursor)
{
    evs_error_info info;
    evs_log *l, *w;
    evs_event e;
    int rc;
    img m;

    build("v2m", 3, 0, 0, 0, 0, NULL, NULL);
    img_load(&m, "v2m");
    append_v2_line("v2m", &m, 4, 5);
    /* Then a valid version 1 line with sequence 6 after it, written by
     * hand: a writer's open refuses this log. */
    {
        char line[1024], *p = log_path("v2m"), *cur;
        size_t n, clen;
        e = tu_event(EVS_EV_STEP_STARTED, "later", "{}");
        e.id = evs_span_cstr("later-1");
        e.execution_id = evs_span_cstr("v2m");
        e.sequence = 6;
        e.timestamp_us = 1795000000000000LL;
        cr_assert_eq(evs_line_encode(&e, line, sizeof(line), &n), 0);
        cur = tu_read_file(p, &clen);
        cr_assert_not_null(cur);
        cur = realloc(cur, clen + n);
        memcpy(cur + clen, line, n);
        cr_assert_eq(tu_write_file(p, cur, clen + n), 0);
        free(cur);
        free(p);
    }
    cr_assert_eq(evs_log_open(st, "v2m", 3, 0, &l, NULL, &info), 0);
    cr_assert_eq(evs_log_last_seq(l), 6);
    cr_assert_eq(read_back(l, &m, &rc, &info), 4);
    cr_assert_eq(rc, EVS_EFORMAT);
    cr_assert_eq(info.sequence, 5);
    cr_assert_eq(info.offset, m.len);
    evs_log_close(l);
    /* A writer does not take it for a torn tail either. */
    cr_assert_eq(evs_log_open(st, "v2m", 3, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(w), 6);
    evs_log_close(w);
    cr_assert_eq(count_cut_files("v2m"), 0);
    img_free(&m);
}

/* ------------------------------------------------------------------ */
/* Point-in-time recovery                                             */
/* ------------------------------------------------------------------ */

Test(log_recover, point_in_time_recovery_cuts_at_mid_log_damage)
{
    evs_store_opts o;
    evs_store *pit;
    evs_recovery_info rec;
    evs_error_info info;
    evs_log *l;
    char *p = log_path("pit"), *saved, *damaged, *sp;
    size_t dlen, slen;
    uint64_t dmg;
    int rc;
    img m;

    /* 1, [2 3 4], 5, 6, [7 8 9], 10, 11: damage in 5, complete appends
     * after it. */
    build("pit", 0, 3, 2, 0, 0, NULL, NULL);
    {
        evs_log *w;
        cr_assert_eq(evs_log_open(st, "pit", 3, EVS_LOG_WRITE, &w, NULL, NULL),
                     0);
        append_group(w, 3, 20, 3);
        cr_assert_eq(tu_append_n(w, 2), 0);
        evs_log_close(w);
    }
    img_load(&m, "pit");
    cr_assert_eq(m.n, 11);
    flip_in_data("pit", &m, 5);
    dmg = m.off[4];
    damaged = tu_read_file(p, &dlen);
    cr_assert_not_null(damaged);

    /* The default mode leaves it alone. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(evs_log_open(st, "pit", 3, EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, 0);
    cr_assert_eq(rec.last_seq, 11);
    evs_log_close(l);
    cr_assert_eq(tu_file_size(p), (long long)m.len);
    cr_assert_eq(count_cut_files("pit"), 0);

    /* A reader in point-in-time mode does not cut either. */
    evs_store_opts_init(&o);
    o.recovery = EVS_RECOVER_POINT_IN_TIME;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &pit), 0);
    cr_assert_eq(evs_log_open(pit, "pit", 3, 0, &l, NULL, NULL), 0);
    evs_log_close(l);
    cr_assert_eq(tu_file_size(p), (long long)m.len);

    /* A writer in point-in-time mode cuts at the damage, saving it. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(evs_log_open(pit, "pit", 3, EVS_LOG_WRITE, &l, &rec, &info), 0,
                 "%s", info.msg);
    cr_assert_eq(rec.cut_offset, dmg);
    cr_assert_eq(rec.cut_bytes, m.len - dmg);
    cr_assert_eq(rec.end_offset, dmg);
    cr_assert_eq(rec.last_seq, 4);
    cr_assert_eq(rec.cut_events, 6, "lines 6 to 11 were complete");
    cr_assert_neq(rec.saved_as[0], '\0');
    sp = tu_path(dir, "pit", rec.saved_as);
    saved = tu_read_file(sp, &slen);
    cr_assert_not_null(saved);
    cr_assert_eq(slen, m.len - dmg);
    cr_assert(memcmp(saved, damaged + dmg, slen) == 0);
    cr_assert_eq(tu_file_size(p), (long long)dmg);
    cr_assert_eq(read_back(l, &m, &rc, &info), 4);
    cr_assert_eq(rc, 0);
    cr_assert_eq(tu_append_n(l, 1), 0);
    cr_assert_eq(evs_log_last_seq(l), 5);
    evs_log_close(l);

    /* And finds a clean log the next time. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(evs_log_open(pit, "pit", 3, EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, 0);
    cr_assert_eq(rec.last_seq, 5);
    evs_log_close(l);
    evs_store_close(pit);
    free(saved);
    free(sp);
    free(damaged);
    free(p);
    img_free(&m);
}

Test(log_recover, point_in_time_recovery_cuts_a_torn_tail_like_the_default)
{
    evs_store_opts o;
    evs_store *pit;
    evs_recovery_info rec;
    evs_log *l;
    uint64_t prev_end, prev_seq;
    img m;

    build("pitt", 2, 0, 0, 4, 50, &prev_end, &prev_seq);
    img_load(&m, "pitt");
    /* Cut inside the third line of the last append. */
    put_log("pitt", m.buf, m.off[prev_seq + 2] + 10);
    evs_store_opts_init(&o);
    o.recovery = EVS_RECOVER_POINT_IN_TIME;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &pit), 0);
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(evs_log_open(pit, "pitt", 4, EVS_LOG_WRITE, &l, &rec, NULL),
                 0);
    cr_assert_eq(rec.cut_offset, prev_end);
    cr_assert_eq(rec.cut_bytes, m.off[prev_seq + 2] + 10 - prev_end);
    cr_assert_eq(rec.last_seq, prev_seq);
    cr_assert_eq(rec.cut_events, 2);
    evs_log_close(l);
    evs_store_close(pit);
    img_free(&m);
}

/* A flipped newline merges two lines into one longer than max_line. A
 * cursor that has to seek across it reports the damage as such; one that
 * starts after it (found by counting back from the end) reads on. */
Test(log_recover, seeking_across_an_overlong_damaged_line_is_ecorrupt)
{
    evs_store_opts o;
    evs_store *keep = st, *small;
    evs_error_info info;
    evs_cursor *c;
    evs_event ev;
    evs_log *l;
    char *p = log_path("long");
    int rc;
    img m;

    evs_store_opts_init(&o);
    o.io = &nosync_io;
    o.max_line = 300;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &small), 0);
    st = small;
    build("long", 7, 0, 0, 0, 0, NULL, NULL);
    st = keep;
    img_load(&m, "long");
    for (size_t i = 0; i < m.n; i++)
        cr_assert_lt(m.off[i + 1] - m.off[i], 300);
    cr_assert_gt(m.off[4] - m.off[2], 300);
    cr_assert_eq(tu_flip_bit(p, (long long)m.off[3] - 1, 0), 0);

    evs_error_info_clear(&info);
    cr_assert_eq(evs_log_open(small, "long", 4, 0, &l, NULL, &info), 0);
    cr_assert_eq(evs_log_last_seq(l), 8);
    cr_assert_eq(evs_cursor_open(l, 6, 0, &c, &info), 0);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, &info), 1);
    cr_assert_eq(ev.sequence, 6);
    evs_cursor_close(c);
    rc = evs_cursor_open(l, 3, 0, &c, &info);
    if (rc == 0) {
        rc = evs_cursor_next(c, &ev, NULL, &info);
        evs_cursor_close(c);
    }
    cr_assert_eq(rc, EVS_ECORRUPT, "%s", evs_err_name(rc));
    cr_assert_eq(info.offset, m.off[2]);
    cr_assert_str_eq(info.execution_id, "long");
    evs_log_close(l);
    evs_store_close(small);
    free(p);
    img_free(&m);
}
