/*
 * test_tail.c: the last append (FORMAT.md §4, "The tail"). A complete
 * last append of 1 and of 100 events has each of its bytes flipped in
 * turn: no crash leaves that, so readers read the log up to the end
 * before it and are told where the damage is (sequence, offset, and the
 * append it belongs to), the scan reports exactly that line and hands
 * out every other line of the append as after_end events, and a writer's
 * open refuses to cut it, changing nothing. Every prefix of the same
 * append is what a crash leaves: still torn, and cut back as before; the
 * cut, and a refusal, go to the log hook with the sequences concerned.
 *
 * Under AddressSanitizer the loops over the 100-event append take every
 * STRIDE-th byte or prefix length, and the 1-event append is flipped
 * whole but not bit by bit (tests/RELIABILITY.md); the other builds check
 * everything.
 */
#include <criterion/criterion.h>

#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
/* Under ASan every STRIDE-th byte or length of the 100-event append (a
 * prime, so that the bytes checked fall all over its lines), and the
 * single-bit flips of the 1-event append are left to the other builds. */
#ifdef UNDER_ASAN
#define STRIDE 37
#define EVERY_BIT 0
#else
#define STRIDE 1
#define EVERY_BIT 1
#endif

static char *dir;
static evs_store *st;

/* Crashes are simulated by editing the file, so syncs buy nothing and
 * would make the loops slow. */
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
    dir = tu_tmpdir("tail");
    cr_assert_not_null(dir);
    st = tu_open_store(dir, &nosync_io);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    evs_store_close(st);
    tu_rmtree_free(dir);
}

TestSuite(last_append, .init = setup, .fini = teardown);

/* A log: its bytes, the offset of the line of each sequence (off[s-1]
 * .. off[s]), and where its last append begins. */
typedef struct img {
    char *buf;
    size_t len;
    size_t n; /* lines */
    size_t *off;
    uint64_t prev_end, prev_seq; /* before the last append */
    size_t last_n;               /* events of the last append */
    char *path;
} img;

/* Creates `id` with three single appends, then one append of last_n
 * events, and loads it. */
static void build(const char *id, size_t last_n, img *m)
{
    evs_event *ev = calloc(last_n, sizeof(*ev));
    char (*data)[48] = calloc(last_n, sizeof(*data));
    evs_log *l;

    cr_assert(ev && data);
    memset(m, 0, sizeof(*m));
    cr_assert_eq(tu_create(st, id), 0);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(l, 3), 0);
    m->prev_end = evs_log_size(l);
    m->prev_seq = evs_log_last_seq(l);
    for (size_t i = 0; i < last_n; i++) {
        snprintf(data[i], sizeof(data[i]), "{\"i\":%zu,\"out\":\"ok\"}", i);
        ev[i] = tu_event(EVS_EV_STEP_COMPLETED, "last", data[i]);
    }
    cr_assert_eq(evs_log_append(l, ev, last_n, m->prev_seq, NULL), 0);
    evs_log_close(l);
    free(ev);
    free(data);

    m->last_n = last_n;
    m->path = tu_path(dir, id, EVS__LOG_NAME);
    cr_assert_not_null(m->path);
    m->buf = tu_read_file(m->path, &m->len);
    cr_assert_not_null(m->buf);
    m->off = calloc(m->len + 1, sizeof(*m->off));
    cr_assert_not_null(m->off);
    for (size_t i = 0; i < m->len; i++)
        if (m->buf[i] == '\n')
            m->off[++m->n] = i + 1;
    cr_assert_eq(m->n, m->prev_seq + last_n);
    cr_assert_eq(m->off[m->prev_seq], m->prev_end);
}

static void img_free(img *m)
{
    free(m->buf);
    free(m->off);
    free(m->path);
}

/* Writes buf as the log, in place (no truncation to zero first, which
 * would make ext4 flush it at close). */
static void put_log(const img *m, const char *buf, size_t n)
{
    int fd = open(m->path, O_WRONLY | O_CLOEXEC);

    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
    cr_assert_eq(ftruncate(fd, (off_t)n), 0);
    close(fd);
}

/* The line (0-based: sequence line+1) that holds byte b. */
static size_t line_of(const img *m, size_t b)
{
    size_t line = 0;

    while (m->off[line + 1] <= b)
        line++;
    return line;
}

/* What the scan reported. */
typedef struct scan_res {
    const img *m;
    uint64_t events, after, problems;
    int code;
    const char *kind;
    uint64_t seq, off, app_first, app_count;
    int bad_bytes; /* an event whose bytes were never written */
} scan_res;

static int scan_cb(void *arg, const evs_scan_item *it)
{
    scan_res *r = arg;
    const img *m = r->m;
    uint64_t s;

    if (it->is_problem) {
        if (r->problems++ == 0) {
            r->code = it->code;
            r->kind = it->kind;
            r->seq = it->sequence;
            r->off = it->offset;
            r->app_first = it->append_first;
            r->app_count = it->append_count;
        }
        return 0;
    }
    if (it->after_end)
        r->after++;
    else
        r->events++;
    /* Salvage exports exactly these bytes: each must be a line that was
     * written, at the offset written. */
    s = it->ev->sequence;
    if (s == 0 || s > m->n || it->offset != m->off[s - 1] ||
        it->raw.len != m->off[s] - m->off[s - 1] ||
        memcmp(it->raw.ptr, m->buf + m->off[s - 1], it->raw.len) != 0)
        r->bad_bytes = 1;
    return 0;
}

static int count_cut_files(const char *id)
{
    char *p = tu_path(dir, id, ".");
    DIR *d = opendir(p);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "cut-", 4) == 0;
    closedir(d);
    free(p);
    return n;
}

/*
 * The log of m with byte b changed to b ^ mask: checks what readers,
 * the scan and a writer make of it. `lines_good` is how many lines of
 * the last append still check out, `pieces` how many pieces it is cut
 * into (they differ from last_n when the change makes or breaks a
 * newline).
 */
static void check_flip(const char *id, const img *m, char *copy, size_t b,
                       unsigned mask)
{
    size_t line = line_of(m, b), good = 0, pieces = 0;
    uint64_t seq = line + 1, bad = m->off[line];
    evs_recovery_info rec;
    evs_error_info info;
    scan_res sr;
    evs_log *l;
    size_t got;
    char *now;

    memcpy(copy, m->buf, m->len);
    copy[b] = (char)(copy[b] ^ mask);
    put_log(m, copy, m->len);
    /* The lines of the last append other than the changed one (and the
     * one a lost newline joins it to) still check out; the pieces are
     * what the newlines now cut the tail into. */
    for (size_t i = m->prev_end; i < m->len; i++)
        pieces += copy[i] == '\n';
    pieces += copy[m->len - 1] != '\n';
    good = m->last_n - 1 - (m->buf[b] == '\n' && b + 1 < m->len);

    /* A reader reads the log up to the end before the last append and
     * is told where the damage is. */
    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, &rec, &info), 0,
                 "byte %zu: %s", b, info.msg);
    cr_assert_eq(evs_log_last_seq(l), m->prev_seq);
    evs_log_close(l);
    cr_assert_eq(rec.tail_bytes, m->len - m->prev_end);
    cr_assert_eq(rec.tail_damaged, 1, "byte %zu ^ %#x taken as torn", b,
                 mask);
    cr_assert_eq(rec.bad_sequence, seq, "byte %zu", b);
    cr_assert_eq(rec.bad_offset, bad, "byte %zu", b);
    cr_assert_eq(rec.tail_first, m->prev_seq + 1);
    cr_assert_eq(rec.tail_lines, good, "byte %zu", b);
    cr_assert_eq(rec.tail_count, m->last_n > 1 ? m->last_n : pieces,
                 "byte %zu", b);

    /* The scan: the log, then exactly the changed line as damage, and
     * every other line of the append, as written, after the end. */
    memset(&sr, 0, sizeof(sr));
    sr.m = m;
    cr_assert_eq(evs_log_scan(st, id, strlen(id), scan_cb, &sr), 0);
    cr_assert_eq(sr.bad_bytes, 0, "byte %zu: the scan handed out bytes "
                                  "never written", b);
    cr_assert_eq(sr.events, m->prev_seq);
    cr_assert_eq(sr.after, good, "byte %zu", b);
    cr_assert_geq(sr.problems, 1);
    cr_assert_eq(sr.code, EVS_ECORRUPT, "byte %zu", b);
    cr_assert_neq(strcmp(sr.kind, "torn"), 0);
    cr_assert_eq(sr.seq, seq, "byte %zu", b);
    cr_assert_eq(sr.off, bad, "byte %zu", b);
    cr_assert_eq(sr.app_first, m->prev_seq + 1);
    cr_assert_eq(sr.app_count, rec.tail_count);
    /* A piece made by a new newline is a second bad line; otherwise the
     * changed line is the only problem. */
    cr_assert_eq(sr.problems, pieces - good, "byte %zu", b);

    /* A writer refuses to cut it, and changes nothing. */
    evs_error_info_clear(&info);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info),
        EVS_ECORRUPT, "byte %zu", b);
    cr_assert_eq(info.sequence, seq);
    cr_assert_eq(info.offset, bad);
    cr_assert_str_eq(info.execution_id, id);
    cr_assert_eq(rec.tail_damaged, 1);
    cr_assert_eq(rec.end_offset, m->prev_end);
    cr_assert_eq(rec.last_seq, m->prev_seq);
    cr_assert_eq(rec.bad_offset, bad);
    cr_assert_eq(rec.cut_bytes, 0);
    now = tu_read_file(m->path, &got);
    cr_assert(now && got == m->len && memcmp(now, copy, got) == 0,
              "byte %zu: a refused open changed the log", b);
    free(now);
}

static void flip_every_byte(const char *id, size_t last_n, int every_bit)
{
    size_t flips = 0, stride = last_n > 1 ? STRIDE : 1;
    char *copy;
    img m;

    build(id, last_n, &m);
    copy = malloc(m.len);
    cr_assert_not_null(copy);
    for (size_t b = m.prev_end; b < m.len; b += stride) {
        /* All eight bits: a byte the writer never writes (0xff ^ an
         * ASCII or UTF-8 byte is neither 0 nor a newline). */
        check_flip(id, &m, copy, b, 0xff);
        flips++;
        /* Each bit alone, which can also make a newline. */
        for (int bit = 0; every_bit && bit < 8; bit++) {
            check_flip(id, &m, copy, b, 1u << bit);
            flips++;
        }
    }
    cr_assert_geq(flips, (m.len - m.prev_end) / stride);
    cr_assert_eq(count_cut_files(id), 0);
    /* Restored, the log is whole again. */
    put_log(&m, m.buf, m.len);
    {
        evs_recovery_info rec;
        evs_log *l;

        cr_assert_eq(
            evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, NULL),
            0);
        cr_assert_eq(rec.tail_bytes, 0);
        cr_assert_eq(evs_log_last_seq(l), m.prev_seq + last_n);
        evs_log_close(l);
    }
    free(copy);
    img_free(&m);
}

Test(last_append, every_byte_flipped_in_a_one_event_append_is_damage)
{
    flip_every_byte("f1", 1, EVERY_BIT);
}

Test(last_append, every_byte_flipped_in_a_hundred_event_append_is_damage)
{
    flip_every_byte("f100", 100, 0);
}

/*
 * Every prefix of the last append (each length the file can be cut to)
 * is what a crash leaves: readers see the log before it and are told of
 * an unfinished append, and a writer cuts it back, saving it, and
 * reports the lines it removed.
 */
static void every_prefix_is_cut(const char *id, size_t last_n)
{
    size_t stride = last_n > 1 ? STRIDE : 1, runs = 0;
    img m;

    build(id, last_n, &m);
    for (size_t t = 1; m.prev_end + t < m.len; t += stride) {
        size_t lines = 0;
        evs_recovery_info rec;
        evs_error_info info;
        evs_log *l;
        char *p, *saved;
        size_t got;

        for (size_t i = m.prev_end; i < m.prev_end + t; i++)
            lines += m.buf[i] == '\n';
        put_log(&m, m.buf, m.prev_end + t);

        cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, &rec, &info), 0,
                     "%s", info.msg);
        cr_assert_eq(evs_log_last_seq(l), m.prev_seq);
        evs_log_close(l);
        cr_assert_eq(rec.tail_bytes, t);
        cr_assert_eq(rec.tail_damaged, 0, "prefix of %zu bytes", t);
        cr_assert_eq(rec.tail_lines, lines);
        cr_assert_eq(rec.tail_first, m.prev_seq + 1);
        cr_assert_eq(rec.tail_count, lines ? last_n : 1);

        memset(&rec, 0, sizeof(rec));
        cr_assert_eq(
            evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info),
            0, "prefix of %zu bytes: %s", t, info.msg);
        cr_assert_eq(evs_log_last_seq(l), m.prev_seq);
        evs_log_close(l);
        cr_assert_eq(rec.cut_offset, m.prev_end);
        cr_assert_eq(rec.cut_bytes, t);
        cr_assert_eq(rec.cut_events, lines);
        p = tu_path(dir, id, rec.saved_as);
        saved = tu_read_file(p, &got);
        cr_assert(saved && got == t &&
                      memcmp(saved, m.buf + m.prev_end, t) == 0,
                  "prefix of %zu bytes: the saved bytes differ", t);
        free(saved);
        cr_assert_eq(unlink(p), 0);
        free(p);
        cr_assert_eq(tu_file_size(m.path), (long long)m.prev_end);
        runs++;
    }
    cr_assert_geq(runs, (m.len - m.prev_end - 1) / stride);
    img_free(&m);
}

Test(last_append, every_prefix_of_a_one_event_append_is_cut)
{
    every_prefix_is_cut("p1", 1);
}

Test(last_append, every_prefix_of_a_hundred_event_append_is_cut)
{
    every_prefix_is_cut("p100", 100);
}

/*
 * Zeros where a sector never reached the disk are a crash's: a whole
 * aligned sector of zeros inside a complete append makes it torn, and a
 * writer cuts it. A single zero byte in the middle of a sector is not.
 */
Test(last_append, a_zeroed_sector_is_torn_and_a_zero_byte_is_damage)
{
    evs_recovery_info rec;
    evs_error_info info;
    evs_log *l;
    char *copy;
    size_t a;
    img m;

    build("z", 100, &m);
    copy = malloc(m.len);
    cr_assert_not_null(copy);
    a = (m.prev_end + 1023) / 512 * 512; /* a sector inside the append */
    cr_assert_lt(a + 512, m.len - 1);
    memcpy(copy, m.buf, m.len);
    memset(copy + a, 0, 512);
    put_log(&m, copy, m.len);
    cr_assert_eq(evs_log_open(st, "z", 1, 0, &l, &rec, &info), 0);
    evs_log_close(l);
    cr_assert_eq(rec.tail_damaged, 0);
    cr_assert_eq(
        evs_log_open(st, "z", 1, EVS_LOG_WRITE, &l, &rec, &info), 0, "%s",
        info.msg);
    evs_log_close(l);
    cr_assert_eq(rec.cut_bytes, m.len - m.prev_end);
    cr_assert_eq(rec.last_seq, m.prev_seq);

    memcpy(copy, m.buf, m.len);
    copy[a + 100] = 0;
    put_log(&m, copy, m.len);
    cr_assert_eq(evs_log_open(st, "z", 1, 0, &l, &rec, &info), 0);
    evs_log_close(l);
    cr_assert_eq(rec.tail_damaged, 1);
    cr_assert_eq(rec.bad_offset, m.off[line_of(&m, a + 100)]);
    cr_assert_eq(evs_log_open(st, "z", 1, EVS_LOG_WRITE, &l, &rec, &info),
                 EVS_ECORRUPT);
    free(copy);
    img_free(&m);
}

/* The log hook's messages, for the test below. */
typedef struct logged {
    char msg[4][512];
    char execution[4][EVS_ID_MAX + 1];
    uint64_t sequence[4];
    int err[4];
    int n;
} logged;

static void log_hook(void *ctx, const evs_log_record *rec)
{
    logged *g = ctx;

    if (g->n < 4) {
        snprintf(g->msg[g->n], sizeof(g->msg[0]), "%s", rec->msg);
        snprintf(g->execution[g->n], sizeof(g->execution[0]), "%s",
                 rec->execution ? rec->execution : "");
        g->sequence[g->n] = rec->sequence;
        g->err[g->n] = rec->err;
        g->n++;
    }
}

/*
 * A writer's cut goes to the log hook with the offset, the bytes and the
 * sequences it removed; a refusal too, with the damaged line's place.
 */
Test(last_append, a_cut_and_a_refusal_are_logged_with_their_sequences)
{
    evs_store_opts o;
    evs_store *s2;
    evs_log *l;
    logged g;
    char want[160], *copy;
    size_t t;
    img m;

    build("lg", 100, &m);
    memset(&g, 0, sizeof(g));
    evs_store_opts_init(&o);
    o.io = &nosync_io;
    o.log_fn = log_hook;
    o.log_ctx = &g;
    cr_assert_eq(evs_store_open(dir, &o, &s2), 0);

    t = m.off[m.prev_seq + 10] + 5 - m.prev_end; /* 10 lines and a bit */
    put_log(&m, m.buf, m.prev_end + t);
    cr_assert_eq(evs_log_open(s2, "lg", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    evs_log_close(l);
    cr_assert_eq(g.n, 1);
    snprintf(want, sizeof(want),
             "cut a torn tail of %zu bytes at offset %llu, removing "
             "sequences %llu..%llu (an unfinished append of 100 events, 10 "
             "of its lines complete)",
             t, (unsigned long long)m.prev_end,
             (unsigned long long)m.prev_seq + 1,
             (unsigned long long)m.prev_seq + 100);
    cr_assert(strstr(g.msg[0], want), "want '%s' in '%s'", want, g.msg[0]);
    cr_assert_str_eq(g.execution[0], "lg");
    cr_assert_eq(g.sequence[0], m.prev_seq + 1, "the first one removed");

    copy = malloc(m.len);
    cr_assert_not_null(copy);
    memcpy(copy, m.buf, m.len);
    copy[m.off[m.prev_seq + 4] + 20] ^= (char)0xff;
    put_log(&m, copy, m.len);
    cr_assert_eq(evs_log_open(s2, "lg", 2, EVS_LOG_WRITE, &l, NULL, NULL),
                 EVS_ECORRUPT);
    cr_assert_eq(g.n, 2);
    snprintf(want, sizeof(want),
             "the last append (sequences %llu..%llu) is damaged at "
             "sequence %llu, byte offset %zu",
             (unsigned long long)m.prev_seq + 1,
             (unsigned long long)m.prev_seq + 100,
             (unsigned long long)m.prev_seq + 5, m.off[m.prev_seq + 4]);
    cr_assert(strstr(g.msg[1], want), "want '%s' in '%s'", want, g.msg[1]);
    cr_assert_str_eq(g.execution[1], "lg");
    cr_assert_eq(g.sequence[1], m.prev_seq + 5, "the damaged line's");
    cr_assert_eq(g.err[1], EVS_ECORRUPT);
    evs_store_close(s2);
    free(copy);
    img_free(&m);
}
