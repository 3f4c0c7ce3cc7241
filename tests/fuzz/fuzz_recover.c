/*
 * fuzz_recover.c: fuzz target for recovery, fed arbitrary file bytes.
 *
 * The input is written as STORE/fz/events.jsonl. Then, in the order a
 * process that finds the file after a crash would go:
 *  1. evs_log_scan() reports every line and problem: each event it
 *     reports must be a complete line whose checksum holds, at increasing
 *     offsets;
 *  2. a writer's evs_log_open() recovers: the log it leaves must be a
 *     prefix of the bytes given, and whatever it cut must be saved byte
 *     for byte in the file it names; if it refuses, nothing is changed;
 *  3. a cursor reads the recovered log from 1: every event is a line of
 *     the original with a valid checksum, in sequence, and they are the
 *     events the scan reported first; without damage the cursor reads up
 *     to the last sequence the open found, and a reader finds the same
 *     end;
 *  4. an append follows the last sequence, and a second writer's open
 *     finds nothing to cut and the appended event in place;
 *  5. point-in-time recovery of the same bytes leaves a prefix that is a
 *     clean log, and saves the rest.
 * A log that FORMAT.md calls clean (clean_log() below, computed with the
 * line decoder alone) must be scanned without a problem, read whole and
 * left uncut. Nothing may crash, and no line whose checksum fails may be
 * accepted.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXEC "fz"

static char *root;     /* the store directory */
static char *exec_dir; /* root/fz */
static evs_store *store;
static evs_store *pit; /* the same directory, point-in-time recovery */
/* Offsets of the events the scan reported. Kept from one input to the
 * next (and freed by fuzz_recover_done), so that an input a broken
 * check ends early leaks nothing. */
static uint64_t *scan_off;
static size_t scan_cap;

static void setup(void)
{
    evs_store_opts o;
    size_t n;

    if (store)
        return;
#ifdef EVS_FUZZING
    atexit(fuzz_recover_done);
#endif
    root = tu_tmpdir("fuzz-recover");
    FUZZ_CHECK(root != NULL, "cannot make a temporary store");
    n = strlen(root) + sizeof("/" EXEC);
    exec_dir = malloc(n);
    FUZZ_CHECK(exec_dir != NULL, "out of memory");
    snprintf(exec_dir, n, "%s/" EXEC, root);
    FUZZ_CHECK(mkdir(exec_dir, 0700) == 0, "cannot make the execution");
    evs_store_opts_init(&o);
    /* Recovery behaves the same; only fsyncs would slow the fuzzer. */
    o.durability = EVS_SYNC_NONE;
    o.io = fuzz_io_nosync();
    /* A fuzzed log may end at any sequence: the history limits, which
     * tests/eventstore/test_limits.c checks, are not what this fuzzes. */
    o.max_events = o.max_bytes = EVS_LIMIT_NONE;
    FUZZ_CHECK(evs_store_open(root, &o, &store) == 0, "cannot open store");
    o.recovery = EVS_RECOVER_POINT_IN_TIME;
    FUZZ_CHECK(evs_store_open(root, &o, &pit) == 0, "cannot open store");
}

void fuzz_recover_done(void)
{
    evs_store_close(store);
    store = NULL;
    evs_store_close(pit);
    pit = NULL;
    free(scan_off);
    scan_off = NULL;
    scan_cap = 0;
    free(exec_dir);
    exec_dir = NULL;
    tu_rmtree_free(root);
    root = NULL;
}

/* Empties the execution's directory. */
static void clear_exec(void)
{
    DIR *d = opendir(exec_dir);
    struct dirent *e;

    FUZZ_CHECK(d != NULL, "execution directory vanished");
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static char *read_in_exec(const char *name, size_t *len)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", exec_dir, name);
    return tu_read_file(path, len);
}

static void write_log(const char *buf, size_t len)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/events.jsonl", exec_dir);
    FUZZ_CHECK(tu_write_file(path, buf, len) == 0, "cannot write the log");
}

/* What the scan reported. */
typedef struct seen {
    uint64_t *off; /* offsets of the valid events (scan_off) */
    size_t n;
    size_t first_problem; /* events before the first problem */
    int problems;
    uint64_t last_off;
    int ordered;
    const char *orig;
    size_t orig_len;
} seen;

static int on_scan(void *arg, const evs_scan_item *it)
{
    seen *s = arg;

    if (it->is_problem) {
        FUZZ_CHECK(it->code == EVS_ECORRUPT || it->code == EVS_ETORN ||
                       it->code == EVS_EFORMAT,
                   "scan reported a problem with an undocumented code");
        FUZZ_CHECK(it->kind && it->msg, "scan problem without kind or msg");
        if (!s->problems++)
            s->first_problem = s->n;
        return 0;
    }
    FUZZ_CHECK(it->ev && it->raw.ptr && it->raw.len > 0,
               "scan event without its line");
    FUZZ_CHECK(fuzz_line_checksum_ok(it->raw.ptr, it->raw.len),
               "scan accepted a line whose checksum does not match");
    FUZZ_CHECK(fuzz_span_eq(it->ev->execution_id, evs_span_cstr(EXEC)),
               "scan accepted a line of another execution");
    if (s->n == scan_cap) {
        scan_cap = scan_cap ? 2 * scan_cap : 64;
        scan_off = realloc(scan_off, scan_cap * sizeof(*scan_off));
        FUZZ_CHECK(scan_off != NULL, "out of memory");
    }
    s->off = scan_off;
    /* The raw line must be where the file has it. */
    {
        const char *p = s->orig;
        uint64_t found = UINT64_MAX;
        /* the line follows the previous event, so search from there */
        uint64_t from = s->n ? s->off[s->n - 1] : 0;
        for (uint64_t o = from; o + it->raw.len <= s->orig_len; o++) {
            if ((o == 0 || p[o - 1] == '\n') &&
                memcmp(p + o, it->raw.ptr, it->raw.len) == 0 &&
                (s->n == 0 || o > s->off[s->n - 1])) {
                found = o;
                break;
            }
        }
        FUZZ_CHECK(found != UINT64_MAX,
                   "scan reported a line that is not in the file");
        s->off[s->n++] = found;
    }
    return 0;
}

/*
 * FORMAT.md's own definition of a log without damage, computed here with
 * the line decoder alone: every line complete and accepted, of this
 * execution (its execution_id once unescaped, §2.1), no longer than
 * max_line, sequences 1..n without gaps, every append complete (§3).
 * Sets *n to the number of events. Such a log must be read whole and
 * left alone by recovery.
 */
static int clean_log(const char *buf, size_t len, uint64_t *n)
{
    evs_decoder d;
    evs_event ev;
    uint64_t seq = 0, open_end = 0, open_first = 0;
    size_t s = 0;
    int ok = 1;

    *n = 0;
    if (len && buf[len - 1] != '\n')
        return 0;
    evs_decoder_init(&d, NULL);
    while (ok && s < len) {
        const char *nl = memchr(buf + s, '\n', len - s);
        size_t l = (size_t)(nl - buf) + 1 - s;
        ok = l <= EVS_LINE_MAX_DEFAULT &&
             evs_line_decode(&d, buf + s, l, 0, &ev, NULL) == 0 &&
             fuzz_span_eq(ev.execution_id, evs_span_cstr(EXEC)) &&
             ev.sequence == seq + 1;
        if (ok && open_end) /* inside an append: its next line */
            ok = ev.batch_first == open_first &&
                 ev.batch_first + ev.batch_count - 1 == open_end;
        else if (ok) /* an append starts with its first line */
            ok = ev.batch_first == ev.sequence;
        if (ok) {
            seq = ev.sequence;
            open_first = ev.batch_first;
            open_end = ev.batch_first + ev.batch_count - 1;
            if (seq == open_end)
                open_end = 0;
        }
        s += l;
    }
    evs_decoder_free(&d);
    *n = seq;
    return ok && open_end == 0;
}

/*
 * Point-in-time recovery of the same bytes: it cuts at the end of the
 * last complete append before the first damage, so what it leaves must
 * be a clean log (and a prefix of the original, the rest saved).
 */
static void check_pit(const char *orig, size_t len)
{
    evs_recovery_info rec;
    evs_error_info info;
    evs_log *l = NULL;
    char *now, *cut;
    size_t now_len = 0, cut_len = 0;
    uint64_t n;
    int rc;

    clear_exec();
    write_log(orig, len);
    memset(&rec, 0, sizeof(rec));
    rc = evs_log_open(pit, EXEC, strlen(EXEC), EVS_LOG_WRITE, &l, &rec, &info);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM,
               "point-in-time recovery refused the log");
    if (rc != 0)
        return;
    now = read_in_exec("events.jsonl", &now_len);
    FUZZ_CHECK(now != NULL, "the log is gone after recovery");
    FUZZ_CHECK(rec.end_offset == now_len && now_len <= len &&
                   memcmp(now, orig, now_len) == 0,
               "point-in-time recovery left a log that is not a prefix");
    if (now_len < len) {
        cut = read_in_exec(rec.saved_as, &cut_len);
        FUZZ_CHECK(cut && cut_len == len - now_len &&
                       memcmp(cut, orig + now_len, cut_len) == 0,
                   "point-in-time recovery did not save what it cut");
        free(cut);
    }
    FUZZ_CHECK(clean_log(now, now_len, &n) && n == rec.last_seq,
               "point-in-time recovery left damage behind");
    evs_log_close(l);
    free(now);
}

static void check(const char *orig, size_t len)
{
    evs_recovery_info rec;
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *c = NULL;
    evs_event ev;
    evs_span raw;
    seen sc = {0};
    char *now, *cut;
    size_t now_len = 0, cut_len = 0;
    uint64_t last, n = 0, at = 0, clean_n;
    int rc, crc, clean;

    clear_exec();
    write_log(orig, len);
    sc.orig = orig;
    sc.orig_len = len;

    /* 1. The tolerant scan, on the bytes as they are. */
    rc = evs_log_scan(store, EXEC, strlen(EXEC), on_scan, &sc);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM, "scan failed");
    if (!sc.problems)
        sc.first_problem = sc.n;
    clean = clean_log(orig, len, &clean_n);
    if (clean)
        FUZZ_CHECK(!sc.problems && sc.n == clean_n,
                   "scan found a problem in a log FORMAT.md calls clean");

    /* 2. A writer's open. */
    memset(&rec, 0, sizeof(rec));
    rc =
        evs_log_open(store, EXEC, strlen(EXEC), EVS_LOG_WRITE, &l, &rec, &info);
    now = read_in_exec("events.jsonl", &now_len);
    FUZZ_CHECK(now != NULL, "the log is gone after recovery");
    if (clean)
        FUZZ_CHECK(rc == 0 && rec.cut_bytes == 0 && rec.last_seq == clean_n,
                   "recovery cut or refused a log FORMAT.md calls clean");
    if (rc != 0) {
        FUZZ_CHECK(rc == EVS_ECORRUPT || rc == EVS_EFORMAT || rc == -ENOMEM,
                   "writer's open failed with an undocumented code");
        FUZZ_CHECK(now_len == len && memcmp(now, orig, len) == 0,
                   "a refused open changed the log");
        goto out;
    }
    FUZZ_CHECK(rec.end_offset == now_len && now_len <= len &&
                   memcmp(now, orig, now_len) == 0,
               "recovery left a log that is not a prefix of the original");
    if (now_len < len) {
        FUZZ_CHECK(rec.cut_bytes == len - now_len &&
                       rec.cut_offset == now_len && rec.saved_as[0],
                   "recovery cut bytes without reporting them");
        cut = read_in_exec(rec.saved_as, &cut_len);
        FUZZ_CHECK(cut != NULL, "the cut bytes were not saved");
        FUZZ_CHECK(cut_len == len - now_len &&
                       memcmp(cut, orig + now_len, cut_len) == 0,
                   "the saved cut is not the bytes that were cut");
        free(cut);
    } else {
        FUZZ_CHECK(rec.cut_bytes == 0, "recovery reported a cut it did "
                                       "not make");
    }
    last = evs_log_last_seq(l);
    FUZZ_CHECK(last == rec.last_seq, "last_seq disagrees with recovery");
    {
        /* A reader finds the same end without cutting anything. */
        evs_log *r = NULL;
        rc = evs_log_open(store, EXEC, strlen(EXEC), 0, &r, NULL, &info);
        FUZZ_CHECK(rc == 0 || rc == -ENOMEM, "a reader refused the "
                                             "recovered log");
        if (rc == 0)
            FUZZ_CHECK(evs_log_last_seq(r) == last &&
                           evs_log_size(r) == now_len,
                       "a reader sees another end than the writer");
        evs_log_close(r);
    }
    if (!sc.problems)
        FUZZ_CHECK(now_len == len && last == sc.n,
                   "recovery changed a log the scan found clean");
    FUZZ_CHECK(evs_log_size(l) == now_len, "log size disagrees");

    /* 3. Everything a cursor returns is a checked line of the original,
     * in sequence. */
    if (last > 0) {
        rc = evs_cursor_open(l, 1, 0, &c, &info);
        FUZZ_CHECK(rc == 0 || rc == EVS_ECORRUPT || rc == EVS_EFORMAT ||
                       rc == -ENOMEM,
                   "cursor open failed with an undocumented code");
        if (rc == 0) {
            while ((crc = evs_cursor_next(c, &ev, &raw, &info)) == 1) {
                n++;
                FUZZ_CHECK(ev.sequence == n, "cursor skipped a sequence");
                FUZZ_CHECK(fuzz_line_checksum_ok(raw.ptr, raw.len),
                           "cursor accepted a line whose checksum fails");
                FUZZ_CHECK(at + raw.len <= now_len &&
                               memcmp(now + at, raw.ptr, raw.len) == 0,
                           "cursor returned bytes that are not the log's");
                FUZZ_CHECK(fuzz_span_eq(ev.execution_id, evs_span_cstr(EXEC)),
                           "cursor accepted another execution's line");
                FUZZ_CHECK(n - 1 < sc.n && sc.off[n - 1] == at,
                           "cursor read an event the scan did not report");
                at += raw.len;
                FUZZ_CHECK(n <= last, "cursor read past the last sequence");
            }
            FUZZ_CHECK(crc == 0 || crc == EVS_ECORRUPT || crc == EVS_EFORMAT ||
                           crc == -ENOMEM,
                       "cursor failed with an undocumented code");
            if (crc == 0)
                FUZZ_CHECK(n == last, "cursor ended before the last "
                                      "sequence without an error");
            /* A file the scan found clean is read whole. */
            if (!sc.problems)
                FUZZ_CHECK(crc == -ENOMEM || (crc == 0 && n == sc.n),
                           "cursor failed on a log the scan found clean");
            evs_cursor_close(c);
        }
    }

    /* 4. Appending works, and a second recovery is a no-op. */
    if (last < UINT64_MAX) {
        evs_event e;
        memset(&e, 0, sizeof(e));
        e.event_type = evs_span_cstr("step_started");
        e.step_name = evs_span_cstr("after");
        e.data = evs_span_cstr("{\"fuzz\":true}");
        rc = evs_log_append(l, &e, 1, last, &info);
        FUZZ_CHECK(rc == 0 || rc == -ENOMEM, "append after recovery failed");
        evs_log_close(l);
        l = NULL;
        if (rc == 0) {
            memset(&rec, 0, sizeof(rec));
            rc = evs_log_open(store, EXEC, strlen(EXEC), EVS_LOG_WRITE, &l,
                              &rec, &info);
            FUZZ_CHECK(rc == 0, "second recovery refused the log");
            FUZZ_CHECK(rec.cut_bytes == 0, "second recovery cut again");
            FUZZ_CHECK(rec.last_seq == last + 1,
                       "the appended event is not the last");
        }
    }
out:
    evs_log_close(l);
    free(now);
    check_pit(orig, len);
}

FUZZ_ENTRY(recover)
{
    char *buf;

    setup();
    if (size > 0 && data[0] == FUZZ_FIX_MARK) {
        buf = malloc(size);
        FUZZ_CHECK(buf != NULL, "out of memory");
        memcpy(buf, data + 1, size - 1);
        fuzz_fix_lines(buf, size - 1);
        check(buf, size - 1);
        free(buf);
    } else {
        check((const char *)data, size);
    }
    return 0;
}
