/*
 * test_faults.c: I/O errors and allocation failures injected into appends,
 * snapshot saves, execution creation, the recorder and reads, as SQLite's
 * I/O-error loop does: call N fails for N = 1, 2, ... until a run meets no
 * fault. After each run the store is reopened with the plain POSIX I/O and
 * checked: nothing acknowledged is lost or changed, nothing refused shows
 * up, and nothing is left half done.
 */
#include <criterion/criterion.h>

#include "fault_io.h"
#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = tu_tmpdir("faults");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    tu_rmtree_free(dir);
}

TestSuite(faults, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static const int errs[] = {-EIO, -ENOSPC, FIO_SHORT};
#define NERRS (sizeof(errs) / sizeof(errs[0]))

/* What a caller sees for an injected error. */
static int seen_as(int err)
{
    return err == FIO_SHORT ? -EIO : err;
}

#define MAXEV 100
#define T0 1795000000000000LL

/* Events with fixed ids and timestamps, so the bytes an append must write
 * are known in advance and a retry is idempotent. */
typedef struct evset {
    size_t n;
    evs_event ev[MAXEV];
    char id[MAXEV][48];
    char data[MAXEV][80];
} evset;

static evset *evset_new(size_t n, const char *tag)
{
    evset *s = calloc(1, sizeof(*s));

    cr_assert_not_null(s);
    cr_assert_leq(n, MAXEV);
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(s->id[i], sizeof(s->id[i]), "%s-%03zu", tag, i);
        snprintf(s->data[i], sizeof(s->data[i]),
                 "{\"tag\":\"%s\",\"i\":%zu,\"output\":\"result %zu\"}", tag, i,
                 i * 7);
        s->ev[i] = tu_event(EVS_EV_STEP_COMPLETED, "faulty", s->data[i]);
        s->ev[i].id = evs_span_cstr(s->id[i]);
        s->ev[i].timestamp_us = T0 + (int64_t)i;
    }
    return s;
}

/* The bytes an append of `s` at sequence `first` of `exec` writes
 * (heap memory). */
static char *evset_lines(const evset *s, const char *exec, uint64_t first,
                         size_t *len)
{
    size_t cap = s->n * 512, off = 0, n;
    char *buf = malloc(cap);

    cr_assert_not_null(buf);
    for (size_t i = 0; i < s->n; i++) {
        evs_event e = s->ev[i];
        e.execution_id = evs_span_cstr(exec);
        e.sequence = first + i;
        e.batch_first = s->n > 1 ? first : 0;
        e.batch_count = s->n > 1 ? s->n : 0;
        cr_assert_eq(evs_line_encode(&e, buf + off, cap - off, &n), 0);
        off += n;
    }
    *len = off;
    return buf;
}

static evs_store *open_store(const evs_io *io, const evs_allocator *a)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.io = io;
    o.alloc = a;
    cr_assert_eq(evs_store_open(dir, &o, &s), 0);
    return s;
}

static char *file_of(const char *exec, const char *name, size_t *len)
{
    char *p = tu_path(dir, exec, name), *b;

    cr_assert_not_null(p);
    b = tu_read_file(p, len);
    free(p);
    return b;
}

/* What evs_log_scan reported. */
typedef struct scan_res {
    uint64_t events, problems, torn, torn_len;
    const char *kind;
} scan_res;

static int scan_cb(void *arg, const evs_scan_item *it)
{
    scan_res *r = arg;

    if (!it->is_problem) {
        r->events++;
        return 0;
    }
    r->problems++;
    r->kind = it->kind;
    if (strcmp(it->kind, "torn") == 0) {
        r->torn++;
        r->torn_len = it->length;
    }
    return 0;
}

static void scan(evs_store *s, const char *exec, scan_res *r)
{
    memset(r, 0, sizeof(*r));
    cr_assert_eq(evs_log_scan(s, exec, strlen(exec), scan_cb, r), 0);
}

/* Number of entries of the directory of `exec` whose name starts with
 * `prefix`. */
static int count_files(const char *exec, const char *prefix)
{
    char *p = tu_path(dir, exec, "");
    DIR *d = opendir(p);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    free(p);
    return n;
}

/* Every event of `exec` read by a cursor must be the line at the same
 * place in `want`; returns how many were read. */
static uint64_t read_all(evs_store *s, const char *exec, const char *want,
                         size_t want_len)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    evs_span raw;
    evs_error_info info;
    size_t off = 0;
    uint64_t n = 0;
    int rc;

    cr_assert_eq(evs_log_open(s, exec, strlen(exec), 0, &l, NULL, &info), 0,
                 "%s", info.msg);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, &raw, &info)) == 1) {
        n++;
        cr_assert_eq(ev.sequence, n);
        cr_assert_leq(off + raw.len, want_len, "an unexpected event");
        cr_assert(memcmp(raw.ptr, want + off, raw.len) == 0,
                  "event %llu differs from what was written",
                  (unsigned long long)n);
        off += raw.len;
    }
    cr_assert_eq(rc, 0, "%s", info.msg);
    cr_assert_eq(off, want_len, "events are missing");
    evs_cursor_close(c);
    evs_log_close(l);
    return n;
}

/* ------------------------------------------------------------------ */
/* Appends                                                            */
/* ------------------------------------------------------------------ */

/*
 * After an armed run of an append of `es` at base_seq+1 that returned
 * `acked` (1: returned 0): checks the log with the plain POSIX I/O.
 */
static void check_append_outcome(const char *exec, const char *prefix,
                                 size_t plen, const evset *es,
                                 uint64_t base_seq, int acked, int persist)
{
    evs_store *s = open_store(NULL, NULL);
    evs_recovery_info rec;
    evs_log *l;
    scan_res sr;
    char *want, *cur;
    size_t wlen, clen;
    int visible;

    want = evset_lines(es, exec, base_seq + 1, &wlen);
    cur = file_of(exec, EVS__LOG_NAME, &clen);
    cr_assert_not_null(cur);
    /* What was acknowledged before the run is untouched. */
    cr_assert_geq(clen, plen);
    cr_assert(memcmp(cur, prefix, plen) == 0);

    /* The log reads back cleanly: at most a torn tail, and only when the
     * cleanup of a failed append failed too. */
    scan(s, exec, &sr);
    cr_assert(sr.problems == sr.torn && sr.torn <= 1, "scan found %s", sr.kind);
    if (sr.torn) {
        cr_assert_eq(acked, 0);
        cr_assert_eq(persist, 1, "a failed append was not truncated away");
    }

    cr_assert_eq(evs_log_open(s, exec, strlen(exec), 0, &l, NULL, NULL), 0);
    visible = evs_log_last_seq(l) == base_seq + es->n;
    cr_assert(visible || evs_log_last_seq(l) == base_seq);
    evs_log_close(l);
    if (acked)
        cr_assert(visible, "an acknowledged append is missing");
    if (visible) {
        /* Either acknowledged, or its bytes stayed because truncating
         * them failed as well: then whole and exact. */
        cr_assert(acked || persist);
        cr_assert_geq(clen, plen + wlen);
        cr_assert(memcmp(cur + plen, want, wlen) == 0);
    }

    /* A writer cuts exactly the torn bytes, if any. */
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(
        evs_log_open(s, exec, strlen(exec), EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, sr.torn ? sr.torn_len : 0);
    cr_assert_eq(rec.last_seq, visible ? base_seq + es->n : base_seq);
    free(cur);
    cur = file_of(exec, EVS__LOG_NAME, &clen);
    cr_assert_eq(clen, plen + (visible ? wlen : 0));

    /* Retrying with the same ids is acknowledged; the events are then in
     * the log exactly once. */
    cr_assert_eq(evs_log_append(l, es->ev, es->n, base_seq, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), base_seq + es->n);
    evs_log_close(l);
    free(cur);
    cur = malloc(plen + wlen);
    cr_assert_not_null(cur);
    memcpy(cur, prefix, plen);
    memcpy(cur + plen, want, wlen);
    cr_assert_eq(read_all(s, exec, cur, plen + wlen), base_seq + es->n);
    scan(s, exec, &sr);
    cr_assert_eq(sr.problems, 0);
    evs_store_close(s);
    free(cur);
    free(want);
}

static void append_under_faults(size_t n)
{
    evset *es = evset_new(n, "ap");
    size_t runs = 0;

    for (size_t ei = 0; ei < NERRS; ei++) {
        for (int persist = 0; persist < 2; persist++) {
            for (long nth = 1;; nth++) {
                char exec[64], *prefix;
                size_t plen;
                evs_store *s;
                evs_log *l;
                evs_error_info info;
                fault_io f;
                int rc, acked = 0;
                long fired;

                cr_assert_lt(nth, 40, "the loop does not end");
                snprintf(exec, sizeof(exec), "a%zu-%zu-%d-%ld", n, ei, persist,
                         nth);
                s = open_store(NULL, NULL);
                cr_assert_eq(tu_make_exec(s, exec, 2), 0);
                evs_store_close(s);
                prefix = file_of(exec, EVS__LOG_NAME, &plen);
                cr_assert_not_null(prefix);

                fault_io_init(&f);
                s = open_store(&f.io, NULL);
                fault_io_arm(&f, FIO_MUTATING, nth, errs[ei], persist);
                rc = evs_log_open(s, exec, strlen(exec), EVS_LOG_WRITE, &l,
                                  NULL, &info);
                if (rc == 0) {
                    rc = evs_log_append(l, es->ev, n, 3, &info);
                    if (rc == 0) {
                        acked = 1;
                        cr_assert_eq(evs_log_last_seq(l), 3 + n);
                    } else {
                        cr_assert_eq(rc, seen_as(errs[ei]), "%s",
                                     evs_err_name(rc));
                        /* Failed once, refused until reopened. */
                        cr_assert_eq(evs_log_append(l, es->ev, n, 3, NULL),
                                     EVS_EPOISONED);
                        cr_assert_eq(evs_log_sync(l), EVS_EPOISONED);
                        cr_assert_eq(evs_log_last_seq(l), 3);
                        /* Nothing this handle synced: what it found at
                         * open is not known to be durable. */
                        cr_assert_eq(evs_log_durable_seq(l), 0);
                    }
                    evs_log_close(l);
                } else {
                    cr_assert_eq(rc, seen_as(errs[ei]), "%s", evs_err_name(rc));
                }
                fired = f.fired;
                fault_io_disarm(&f);
                evs_store_close(s);
                check_append_outcome(exec, prefix, plen, es, 3, acked, persist);
                free(prefix);
                runs++;
                if (fired == 0) {
                    cr_assert_eq(acked, 1);
                    break;
                }
                cr_assert_eq(acked, 0,
                             "a fault fired but the append and "
                             "open both succeeded");
            }
        }
    }
    /* Opening the directory, the log, the write and the sync: each
     * failed once per error and mode. */
    cr_assert_geq(runs, NERRS * 2 * 5);
    free(es);
}

Test(faults, single_event_append_survives_every_io_error)
{
    append_under_faults(1);
}

Test(faults, hundred_event_append_survives_every_io_error)
{
    append_under_faults(100);
}

/* Returns how many cut-* files `exec` has; *exact gets how many of them
 * hold exactly tail[0..tlen). */
static int count_cut_files(const char *exec, const char *tail, size_t tlen,
                           int *exact)
{
    char *p = tu_path(dir, exec, "");
    DIR *d = opendir(p);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    *exact = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len;
        char *b;

        if (strncmp(e->d_name, "cut-", 4) != 0)
            continue;
        n++;
        b = file_of(exec, e->d_name, &len);
        cr_assert_not_null(b);
        if (len == tlen && memcmp(b, tail, tlen) == 0)
            (*exact)++;
        free(b);
    }
    closedir(d);
    free(p);
    return n;
}

Test(faults, writer_open_cutting_a_torn_tail_survives_every_io_error)
{
    const char tail[] = "{\"v\":1,\"id\":\"the first half of a line";
    size_t tlen = sizeof(tail) - 1, runs = 0, cut_on_error = 0;

    for (size_t ei = 0; ei < NERRS; ei++) {
        for (int persist = 0; persist < 2; persist++) {
            for (long nth = 1;; nth++) {
                char exec[64], *prefix, *both, *cur;
                size_t plen, clen;
                evs_recovery_info rec;
                evs_store *s;
                evs_log *l;
                fault_io f;
                int rc, files, exact;
                long fired;

                cr_assert_lt(nth, 40, "the loop does not end");
                snprintf(exec, sizeof(exec), "t%zu-%d-%ld", ei, persist, nth);
                s = open_store(NULL, NULL);
                cr_assert_eq(tu_make_exec(s, exec, 3), 0);
                evs_store_close(s);
                prefix = file_of(exec, EVS__LOG_NAME, &plen);
                both = malloc(plen + tlen);
                cr_assert_not_null(both);
                memcpy(both, prefix, plen);
                memcpy(both + plen, tail, tlen);
                {
                    char *p = tu_path(dir, exec, EVS__LOG_NAME);
                    cr_assert_eq(tu_write_file(p, both, plen + tlen), 0);
                    free(p);
                }

                fault_io_init(&f);
                s = open_store(&f.io, NULL);
                fault_io_arm(&f, FIO_MUTATING, nth, errs[ei], persist);
                memset(&rec, 0, sizeof(rec));
                rc = evs_log_open(s, exec, strlen(exec), EVS_LOG_WRITE, &l,
                                  &rec, NULL);
                fired = f.fired;
                fault_io_disarm(&f);
                if (rc == 0) {
                    cr_assert_eq(rec.cut_bytes, tlen);
                    cr_assert_eq(rec.last_seq, 4);
                    evs_log_close(l);
                } else {
                    cr_assert_eq(rc, seen_as(errs[ei]), "%s", evs_err_name(rc));
                }
                evs_store_close(s);

                /* The complete appends are untouched; the tail is either
                 * still in the log or saved beside it, byte for byte. */
                cur = file_of(exec, EVS__LOG_NAME, &clen);
                cr_assert_not_null(cur);
                cr_assert(clen == plen || clen == plen + tlen);
                cr_assert(memcmp(cur, both, clen) == 0);
                files = count_cut_files(exec, tail, tlen, &exact);
                if (clen == plen) {
                    cr_assert_geq(exact, 1, "the cut bytes were not saved");
                    if (rc != 0)
                        cut_on_error++;
                }
                if (!persist)
                    cr_assert_eq(files, exact, "a partial cut file");
                free(cur);

                /* Whatever happened, the next writer finds a clean end. */
                s = open_store(NULL, NULL);
                memset(&rec, 0, sizeof(rec));
                cr_assert_eq(evs_log_open(s, exec, strlen(exec), EVS_LOG_WRITE,
                                          &l, &rec, NULL),
                             0);
                cr_assert_eq(rec.cut_bytes, clen - plen);
                cr_assert_eq(rec.last_seq, 4);
                cr_assert_eq(tu_append_n(l, 1), 0);
                evs_log_close(l);
                cr_assert_eq(tu_count_events(s, exec), 5);
                evs_store_close(s);
                free(prefix);
                free(both);
                runs++;
                if (fired == 0) {
                    cr_assert_eq(rc, 0);
                    break;
                }
                /* A fault may also land in the listing index's update,
                 * which is best effort and comes after the save is
                 * complete: then the save succeeds, with the new
                 * snapshot (checked above). */
            }
        }
    }
    /* The sync after the truncate fails with the tail already cut. */
    cr_assert_gt(cut_on_error, 0);
    cr_assert_geq(runs, NERRS * 2 * 7);
}

/* EVS_APPEND_NO_SYNC writes without a sync, even in EVS_SYNC_FULL; the
 * next synced append makes it durable with itself. */
Test(faults, a_no_sync_append_is_durable_with_the_next_synced_one)
{
    evset *es = evset_new(3, "ns");
    fault_io f;
    evs_store *s;
    evs_log *l;

    fault_io_init(&f);
    s = open_store(&f.io, NULL);
    cr_assert_eq(tu_create(s, "ns"), 0);
    cr_assert_eq(evs_log_open(s, "ns", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l, &es->ev[0], 1, 1, NULL), 0);
    cr_assert_eq(evs_log_durable_seq(l), 2);
    fault_io_arm(&f, FIO_FDATASYNC | FIO_FSYNC, 1000, -EIO, 0); /* counts */
    cr_assert_eq(evs_log_append_flags(l, &es->ev[1], 1, 2, EVS_APPEND_NO_SYNC,
                                      NULL),
                 0);
    cr_assert_eq(f.calls, 0, "no sync");
    cr_assert_eq(evs_log_last_seq(l), 3);
    cr_assert_eq(evs_log_durable_seq(l), 2);
    cr_assert_eq(evs_log_append(l, &es->ev[2], 1, 3, NULL), 0);
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(evs_log_durable_seq(l), 4);
    cr_assert_eq(evs_log_append_flags(l, &es->ev[2], 1, 4, 1u << 9, NULL),
                 -EINVAL);
    fault_io_disarm(&f);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(s, "ns"), 4);
    evs_store_close(s);
    free(es);
}

Test(faults, failed_fdatasync_poisons_the_log_until_it_is_reopened)
{
    evset *es = evset_new(3, "po");
    evs_event e = tu_event(EVS_EV_STEP_STARTED, "p", "{}");
    evs_error_info info;
    fault_io f;
    evs_store *s;
    evs_log *l;

    fault_io_init(&f);
    s = open_store(&f.io, NULL);
    cr_assert_eq(tu_create(s, "po"), 0);
    cr_assert_eq(evs_log_open(s, "po", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l, &es->ev[0], 1, 1, NULL), 0);
    fault_io_arm(&f, FIO_FDATASYNC, 1, -EIO, 0);
    cr_assert_eq(evs_log_append(l, &es->ev[1], 1, 2, &info), -EIO);
    cr_assert_eq(f.fired, 1);
    fault_io_disarm(&f);
    /* The disk works again, but this handle never trusts it again. */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(evs_log_append(l, &es->ev[1], 1, 2, &info), EVS_EPOISONED);
        cr_assert_eq(info.code, EVS_EPOISONED);
        cr_assert_eq(evs_log_append(l, &e, 1, 2, NULL), EVS_EPOISONED);
        cr_assert_eq(evs_log_sync(l), EVS_EPOISONED);
    }
    cr_assert_eq(evs_log_last_seq(l), 2);
    cr_assert_eq(evs_log_durable_seq(l), 2);
    evs_log_close(l);
    /* The unacknowledged bytes were taken back; a reopened writer goes
     * on from the last acknowledged append. */
    cr_assert_eq(evs_log_open(s, "po", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 2);
    cr_assert_eq(evs_log_append(l, &es->ev[1], 1, 2, NULL), 0);
    cr_assert_eq(evs_log_sync(l), 0);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(s, "po"), 3);
    evs_store_close(s);
    free(es);
}

Test(faults, failed_explicit_sync_poisons_a_log_without_sync)
{
    evs_store_opts o;
    fault_io f;
    evs_store *s;
    evs_log *l;

    fault_io_init(&f);
    evs_store_opts_init(&o);
    o.io = &f.io;
    o.durability = EVS_SYNC_NONE;
    cr_assert_eq(evs_store_open(dir, &o, &s), 0);
    cr_assert_eq(tu_create(s, "ns"), 0);
    cr_assert_eq(evs_log_open(s, "ns", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(l, 4), 0);
    /* Created and appended without syncs: nothing is known durable. */
    cr_assert_eq(evs_log_durable_seq(l), 0);
    fault_io_arm(&f, FIO_FDATASYNC, 1, -EIO, 0);
    cr_assert_eq(evs_log_sync(l), -EIO);
    fault_io_disarm(&f);
    cr_assert_eq(evs_log_sync(l), EVS_EPOISONED);
    cr_assert_eq(tu_append_n(l, 1), EVS_EPOISONED);
    cr_assert_eq(evs_log_sync(l), EVS_EPOISONED);
    cr_assert_eq(evs_log_durable_seq(l), 0);
    evs_log_close(l);
    /* Reopened, the log reads back whole and takes appends again. */
    cr_assert_eq(evs_log_open(s, "ns", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 5);
    cr_assert_eq(tu_append_n(l, 1), 0);
    cr_assert_eq(evs_log_sync(l), 0);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(s, "ns"), 6);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Snapshots and creation                                             */
/* ------------------------------------------------------------------ */

static evs_snapshot snap_old(void)
{
    evs_snapshot sn;

    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr("wf");
    sn.status = evs_span_cstr("running");
    sn.created_at_us = T0;
    sn.updated_at_us = T0;
    sn.inputs = evs_span_cstr("{\"q\":\"old\"}");
    return sn;
}

static evs_snapshot snap_new(void)
{
    evs_snapshot sn = snap_old();

    sn.status = evs_span_cstr("completed");
    sn.updated_at_us = T0 + 5000000;
    sn.end_time_us = T0 + 5000000;
    sn.last_event_seq = 3;
    sn.outputs = evs_span_cstr("{\"answer\":42}");
    return sn;
}

/* 1 if the loaded snapshot is `a` in every field that matters here. */
static int snap_is(const evs_snapshot *got, const evs_snapshot *a, uint64_t seq)
{
    return evs__span_eq(got->status, a->status) &&
           evs__span_eq(got->outputs, a->outputs) &&
           evs__span_eq(got->inputs, a->inputs) &&
           evs__span_eq(got->workflow_name, a->workflow_name) &&
           got->updated_at_us == a->updated_at_us &&
           got->end_time_us == a->end_time_us && got->last_event_seq == seq;
}

Test(faults, snapshot_save_leaves_the_old_or_the_new_snapshot)
{
    evset *es = evset_new(3, "sn");
    evs_snapshot old = snap_old(), nw = snap_new();
    size_t runs = 0, saw_new_on_error = 0;

    for (size_t ei = 0; ei < NERRS; ei++) {
        for (int persist = 0; persist < 2; persist++) {
            for (long nth = 1;; nth++) {
                char exec[64];
                evs_snapshot *got = NULL;
                evs_error_info info;
                evs_store *s;
                fault_io f;
                scan_res sr;
                int rc, is_new;
                long fired;

                cr_assert_lt(nth, 40, "the loop does not end");
                snprintf(exec, sizeof(exec), "s%zu-%d-%ld", ei, persist, nth);
                s = open_store(NULL, NULL);
                cr_assert_eq(
                    evs_exec_create(s, exec, strlen(exec), &old, es->ev, 3), 0);
                evs_store_close(s);

                fault_io_init(&f);
                s = open_store(&f.io, NULL);
                fault_io_arm(&f, FIO_MUTATING, nth, errs[ei], persist);
                rc = evs_snapshot_save(s, exec, strlen(exec), &nw);
                fired = f.fired;
                fault_io_disarm(&f);
                evs_store_close(s);
                cr_assert(rc == 0 || rc == seen_as(errs[ei]), "%s",
                          evs_err_name(rc));

                s = open_store(NULL, NULL);
                cr_assert_eq(
                    evs_snapshot_load(s, exec, strlen(exec), &got, &info), 0,
                    "snapshot unreadable: %s", info.msg);
                is_new = snap_is(got, &nw, 3);
                cr_assert(is_new || snap_is(got, &old, 3),
                          "neither the old nor the new snapshot");
                if (rc == 0)
                    cr_assert(is_new);
                else if (is_new)
                    saw_new_on_error++;
                evs_snapshot_free(got);
                /* A failure alone leaves no temporary file behind. */
                if (!persist)
                    cr_assert_eq(count_files(exec, EVS__TMP_PREFIX), 0);
                scan(s, exec, &sr);
                cr_assert_eq(sr.problems, 0);
                cr_assert_eq(sr.events, 3);
                evs_store_close(s);
                runs++;
                if (fired == 0) {
                    cr_assert_eq(rc, 0);
                    break;
                }
                /* A fault may also land in the listing index's update,
                 * which is best effort and comes after the save is
                 * complete: then the save succeeds, with the new
                 * snapshot (checked above). */
            }
        }
    }
    /* The directory fsync after the rename fails with the new snapshot
     * already in place. */
    cr_assert_gt(saw_new_on_error, 0);
    cr_assert_geq(runs, NERRS * 2 * 5);
    free(es);
}

Test(faults, created_execution_is_absent_or_fully_usable)
{
    evset *es = evset_new(3, "cr");
    evs_snapshot sn = snap_old();
    size_t runs = 0, absent = 0, present_on_error = 0;

    sn.status = evs_span_cstr("waiting");
    for (size_t ei = 0; ei < NERRS; ei++) {
        for (int persist = 0; persist < 2; persist++) {
            for (long nth = 1;; nth++) {
                char exec[64], *want, *cur;
                size_t wlen, clen;
                evs_snapshot *got = NULL;
                evs_exec_listing li;
                evs_recovery_info rec;
                evs_error_info info;
                evs_store *s;
                evs_log *l;
                fault_io f;
                int rc, exists;
                long fired;
                size_t listed = 0;

                cr_assert_lt(nth, 60, "the loop does not end");
                snprintf(exec, sizeof(exec), "c%zu-%d-%ld", ei, persist, nth);
                fault_io_init(&f);
                s = open_store(&f.io, NULL);
                fault_io_arm(&f, FIO_MUTATING, nth, errs[ei], persist);
                rc = evs_exec_create(s, exec, strlen(exec), &sn, es->ev, 3);
                fired = f.fired;
                fault_io_disarm(&f);
                evs_store_close(s);
                cr_assert(rc == 0 || rc == seen_as(errs[ei]), "%s",
                          evs_err_name(rc));

                s = open_store(NULL, NULL);
                exists = evs_exec_exists(s, exec, strlen(exec));
                if (rc == 0)
                    cr_assert(exists, "created but not there");
                if (!exists) {
                    absent++;
                    cr_assert_eq(
                        evs_log_open(s, exec, strlen(exec), 0, &l, NULL, NULL),
                        -ENOENT);
                    cr_assert_eq(
                        evs_snapshot_load(s, exec, strlen(exec), &got, NULL),
                        -ENOENT);
                    /* Nothing left in the way of creating it now. */
                    cr_assert_eq(
                        evs_exec_create(s, exec, strlen(exec), &sn, es->ev, 3),
                        0);
                } else if (rc != 0) {
                    present_on_error++;
                }
                /* Fully usable: the exact events, a clean log, the
                 * snapshot. */
                want = evset_lines(es, exec, 1, &wlen);
                cur = file_of(exec, EVS__LOG_NAME, &clen);
                cr_assert_not_null(cur);
                cr_assert_eq(clen, wlen);
                cr_assert(memcmp(cur, want, wlen) == 0);
                cr_assert_eq(read_all(s, exec, want, wlen), 3);
                memset(&rec, 0xa5, sizeof(rec));
                cr_assert_eq(evs_log_open(s, exec, strlen(exec), EVS_LOG_WRITE,
                                          &l, &rec, NULL),
                             0);
                cr_assert_eq(rec.cut_bytes, 0);
                cr_assert_eq(rec.last_seq, 3);
                cr_assert_eq(tu_append_n(l, 1), 0);
                evs_log_close(l);
                cr_assert_eq(
                    evs_snapshot_load(s, exec, strlen(exec), &got, &info), 0,
                    "%s", info.msg);
                cr_assert(evs__span_eq_cstr(got->status, "waiting"));
                cr_assert_eq(got->last_event_seq, 3);
                evs_snapshot_free(got);
                /* Listed once; leftovers of failed tries never are. */
                cr_assert_eq(evs_exec_list(s, NULL, &li), 0);
                for (size_t i = 0; i < li.count; i++) {
                    cr_assert(li.items[i].id.len > 0 &&
                              li.items[i].id.ptr[0] != '.');
                    listed += evs__span_eq_cstr(li.items[i].id, exec);
                }
                cr_assert_eq(listed, 1);
                evs_exec_list_free(&li);
                evs_store_close(s);
                free(want);
                free(cur);
                runs++;
                if (fired == 0) {
                    cr_assert_eq(rc, 0);
                    break;
                }
            }
        }
    }
    cr_assert_gt(absent, 0);
    cr_assert_gt(present_on_error, 0,
                 "a failed fsync of the store after "
                 "the rename leaves it in place");
    cr_assert_geq(runs, NERRS * 2 * 10);
    free(es);
}

/* ------------------------------------------------------------------ */
/* Recorder                                                           */
/* ------------------------------------------------------------------ */

static evs_recorder *recorder_on(evs_log *l)
{
    evs_recorder_opts ro;
    evs_recorder *r;

    evs_recorder_opts_init(&ro);
    ro.batch_events = 1000;
    ro.batch_bytes = (size_t)1 << 30;
    cr_assert_eq(evs_recorder_open(l, &ro, &r), 0);
    return r;
}

/* Records events first..first+n-1 of `es`. */
static void record(evs_recorder *r, const evset *es, size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t seq;
        evs_event e = es->ev[i];
        e.id.len = 0; /* the recorder gives the ids */
        cr_assert_eq(evs_recorder_record(r, &e, &seq), 0);
        cr_assert_eq(seq, evs_recorder_last_seq(r));
    }
}

/* The log of `exec` must hold execution_started and then exactly the
 * recorded events 0..n-1 of `es`, once each and in order. */
static void check_recorded(evs_store *s, const char *exec, const evset *es,
                           size_t n)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    uint64_t k = 0;
    int rc;

    cr_assert_eq(evs_log_open(s, exec, strlen(exec), 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 1 + n);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1) {
        k++;
        cr_assert_eq(ev.sequence, k);
        if (k == 1)
            continue;
        cr_assert(evs__span_eq(ev.data, es->ev[k - 2].data),
                  "event %llu holds %.*s", (unsigned long long)k,
                  (int)ev.data.len, ev.data.ptr);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(k, 1 + n);
    evs_cursor_close(c);
    evs_log_close(l);
}

/*
 * A flush fails under `mask` faults; the log is reopened and handed to the
 * recorder, which then writes its events exactly once. `more` events are
 * recorded between the failure and the reopening. `stays` says whether
 * the failed flush's bytes must still be in the file.
 */
static void recorder_flush_fails(unsigned mask, int err, int persist,
                                 size_t more, int stays)
{
    evset *es = evset_new(12, "rec");
    evs_recovery_info rec;
    fault_io f;
    evs_store *s;
    evs_log *l;
    evs_recorder *r;
    long long before;
    char *p;
    int rc;

    fault_io_init(&f);
    s = open_store(&f.io, NULL);
    cr_assert_eq(tu_create(s, "rc"), 0);
    p = tu_path(dir, "rc", EVS__LOG_NAME);
    cr_assert_eq(evs_log_open(s, "rc", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    r = recorder_on(l);
    record(r, es, 0, 5);
    cr_assert_eq(evs_recorder_pending(r), 5);
    before = tu_file_size(p);

    fault_io_arm(&f, mask, 1, err, persist);
    rc = evs_recorder_flush(r);
    cr_assert_eq(rc, seen_as(err), "%s", evs_err_name(rc));
    fault_io_disarm(&f);
    cr_assert_eq(evs_recorder_pending(r), 5, "a failed flush dropped events");
    cr_assert_eq(evs_recorder_flushed_seq(r), 1);
    cr_assert_eq(evs_recorder_flush(r), EVS_EPOISONED);
    cr_assert_eq(evs_recorder_pending(r), 5);
    if (stays)
        cr_assert_gt(tu_file_size(p), before,
                     "the bytes were expected to "
                     "stay");
    else
        cr_assert_eq(tu_file_size(p), before);
    record(r, es, 5, more);
    cr_assert_eq(evs_recorder_last_seq(r), 6 + more);

    /* The poisoned writer still holds the lock: close it, reopen. */
    evs_log_close(l);
    memset(&rec, 0xa5, sizeof(rec));
    cr_assert_eq(evs_log_open(s, "rc", 2, EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, 0);
    cr_assert_eq(rec.last_seq, stays ? 6 : 1);
    cr_assert_eq(evs_recorder_set_log(r, l), 0);
    rc = evs_recorder_flush(r);
    cr_assert_eq(rc, 0, "%s", evs_err_name(rc));
    cr_assert_eq(evs_recorder_pending(r), 0);
    cr_assert_eq(evs_recorder_flushed_seq(r), 6 + more);
    cr_assert_eq(evs_log_last_seq(l), 6 + more);
    /* Later events go on normally. */
    record(r, es, 5 + more, 2);
    cr_assert_eq(evs_recorder_flush(r), 0);
    evs_recorder_close(r);
    evs_log_close(l);
    evs_store_close(s);

    s = open_store(NULL, NULL);
    check_recorded(s, "rc", es, 7 + more);
    evs_store_close(s);
    free(p);
    free(es);
}

Test(faults, recorder_keeps_events_of_a_failed_write_and_flushes_them_once)
{
    recorder_flush_fails(FIO_WRITE, -EIO, 0, 0, 0);
}

Test(faults, recorder_keeps_events_of_a_torn_write_and_flushes_them_once)
{
    recorder_flush_fails(FIO_WRITE, FIO_SHORT, 0, 0, 0);
}

Test(faults, recorder_flush_after_a_failed_sync_is_written_once)
{
    /* The write reached the file; the poisoned log truncates it. */
    recorder_flush_fails(FIO_FDATASYNC, -EIO, 0, 0, 0);
}

Test(faults, recorder_flush_whose_bytes_stayed_is_acknowledged_once)
{
    /* The sync fails and so does the truncate: the bytes stay, and the
     * retry must be recognised as already written. */
    recorder_flush_fails(FIO_FDATASYNC | FIO_TRUNCATE, -EIO, 1, 0, 1);
}

Test(faults, recorder_flush_whose_bytes_stayed_with_more_events_recorded)
{
    /* As above, with more events recorded before the log was reopened:
     * the part already in the log is acknowledged, the rest written. */
    recorder_flush_fails(FIO_FDATASYNC | FIO_TRUNCATE, -EIO, 1, 3, 1);
}

/* ------------------------------------------------------------------ */
/* Allocation failures                                                */
/* ------------------------------------------------------------------ */

/*
 * A log that ends with a batch whose first line is much longer than its
 * last, so that reading the end of the log needs more memory part way.
 * Every line has a string with an escape, since only those make the
 * decoder allocate. Returns its complete bytes.
 */
static char *build_alloc_log(const char *exec, size_t *len, uint64_t *last)
{
    evs_store *s = open_store(NULL, NULL);
    evs_event ev[3];
    char big[1200];
    evs_log *l;
    char *b;

    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"big\":\"", 8);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    cr_assert_eq(tu_create(s, exec), 0);
    cr_assert_eq(
        evs_log_open(s, exec, strlen(exec), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        ev[0] = tu_event(EVS_EV_STEP_COMPLETED, "say \"hi\"", "{}");
        cr_assert_eq(evs_log_append(l, ev, 1, evs_log_last_seq(l), NULL), 0);
    }
    /* The step name is the data's text from its x's on: a long string
     * that ends with a quote, so it is escaped. */
    ev[0] = tu_event(EVS_EV_STEP_COMPLETED, big + 8, big);
    ev[1] = tu_event(EVS_EV_STEP_COMPLETED, "\"b\"", "{}");
    ev[2] = tu_event(EVS_EV_STEP_COMPLETED, "\"c\"", "{}");
    cr_assert_eq(evs_log_append(l, ev, 3, 4, NULL), 0);
    *last = evs_log_last_seq(l);
    evs_log_close(l);
    evs_store_close(s);
    b = file_of(exec, EVS__LOG_NAME, len);
    cr_assert_not_null(b);
    return b;
}

Test(faults, opening_a_store_and_log_survives_every_allocation_failure)
{
    const char torn[] = "{\"v\":1,\"id\":\"half an append";
    tu_alloc fa;
    uint64_t last;
    size_t len, runs = 0;
    char *good = build_alloc_log("al", &len, &last), *both, *p;

    both = malloc(len + sizeof(torn));
    cr_assert_not_null(both);
    memcpy(both, good, len);
    memcpy(both + len, torn, sizeof(torn) - 1);
    p = tu_path(dir, "al", EVS__LOG_NAME);
    tu_alloc_init(&fa);
    for (long nth = 1;; nth++) {
        evs_store_opts o;
        evs_store *s = NULL;
        evs_recovery_info rec;
        evs_log *l;
        size_t clen;
        char *cur;
        int rc;

        cr_assert_lt(nth, 200, "the loop does not end");
        cr_assert_eq(tu_write_file(p, both, len + sizeof(torn) - 1), 0);
        tu_alloc_fail(&fa, nth, TU_FAIL_ONCE);
        evs_store_opts_init(&o);
        o.alloc = &fa.a;
        rc = evs_store_open(dir, &o, &s);
        if (rc == 0) {
            rc = evs_log_open(s, "al", 2, 0, &l, NULL, NULL);
            if (rc == 0) {
                cr_assert_eq(evs_log_last_seq(l), last, "nth %ld", nth);
                cr_assert_eq(evs_log_size(l), len);
                evs_log_close(l);
                memset(&rec, 0, sizeof(rec));
                rc = evs_log_open(s, "al", 2, EVS_LOG_WRITE, &l, &rec, NULL);
            }
            if (rc == 0) {
                cr_assert_eq(rec.last_seq, last, "nth %ld", nth);
                cr_assert_eq(rec.cut_bytes, sizeof(torn) - 1);
                evs_log_close(l);
            }
            evs_store_close(s);
        }
        cr_assert(rc == 0 || rc == -ENOMEM, "nth %ld: %s", nth,
                  evs_err_name(rc));
        tu_alloc_stop(&fa);
        cr_assert_eq(fa.live, 0, "nth %ld: %ld blocks leaked", nth, fa.live);
        /* Never cut into the complete appends. */
        cur = tu_read_file(p, &clen);
        cr_assert_not_null(cur);
        cr_assert(clen == len || clen == len + sizeof(torn) - 1,
                  "nth %ld: log of %zu bytes", nth, clen);
        cr_assert(memcmp(cur, both, clen) == 0);
        free(cur);
        runs++;
        if (fa.failed == 0) {
            cr_assert_eq(rc, 0);
            break;
        }
    }
    cr_assert_geq(runs, 5);
    free(p);
    free(both);
    free(good);
}

Test(faults, append_survives_every_allocation_failure)
{
    evset *one = evset_new(1, "m1"), *many = evset_new(100, "mm");
    tu_alloc fa;
    uint64_t last;
    size_t len, runs = 0;
    char *good = build_alloc_log("am", &len, &last);

    tu_alloc_init(&fa);
    for (long nth = 1;; nth++) {
        evs_store_opts o;
        evs_store *s;
        evs_log *l;
        int rc;
        long failed;

        cr_assert_lt(nth, 200, "the loop does not end");
        evs_store_opts_init(&o);
        o.alloc = &fa.a;
        cr_assert_eq(evs_store_open(dir, &o, &s), 0);
        cr_assert_eq(evs_log_open(s, "am", 2, EVS_LOG_WRITE, &l, NULL, NULL),
                     0);
        last = evs_log_last_seq(l);
        tu_alloc_fail(&fa, nth, TU_FAIL_ONCE);
        rc = evs_log_append(l, one->ev, 1, last, NULL);
        if (rc == 0)
            rc = evs_log_append(l, many->ev, 100, last + 1, NULL);
        failed = fa.failed;
        tu_alloc_stop(&fa);
        cr_assert(rc == 0 || rc == -ENOMEM, "nth %ld: %s", nth,
                  evs_err_name(rc));
        if (rc != 0) {
            /* Nothing was written and the handle is not poisoned: the
             * same appends go through now. */
            cr_assert_lt(evs_log_last_seq(l), last + 101);
            cr_assert_eq(evs_log_append(l, one->ev, 1, last, NULL), 0);
            cr_assert_eq(evs_log_append(l, many->ev, 100, last + 1, NULL), 0);
        }
        cr_assert_eq(evs_log_last_seq(l), last + 101);
        evs_log_close(l);
        evs_store_close(s);
        cr_assert_eq(fa.live, 0, "nth %ld: %ld blocks leaked", nth, fa.live);
        /* Each run appended both once, after what was there. */
        {
            evs_store *ps = open_store(NULL, NULL);
            size_t clen, w1, wm;
            char *cur = file_of("am", EVS__LOG_NAME, &clen);
            char *l1 = evset_lines(one, "am", last + 1, &w1);
            char *lm = evset_lines(many, "am", last + 2, &wm);

            cr_assert(memcmp(cur, good, len) == 0);
            cr_assert_eq(clen, len + w1 + wm);
            cr_assert(memcmp(cur + len, l1, w1) == 0);
            cr_assert(memcmp(cur + len + w1, lm, wm) == 0);
            cr_assert_eq(read_all(ps, "am", cur, clen), last + 101);
            evs_store_close(ps);
            free(good);
            good = cur;
            len = clen;
            free(l1);
            free(lm);
        }
        runs++;
        if (failed == 0) {
            cr_assert_eq(rc, 0);
            break;
        }
    }
    cr_assert_geq(runs, 3);
    free(good);
    free(one);
    free(many);
}

Test(faults, cursor_read_survives_every_allocation_failure)
{
    tu_alloc fa;
    uint64_t last;
    size_t len, runs = 0;
    char *good = build_alloc_log("ac", &len, &last);
    uint64_t froms[2] = {1, 3};

    tu_alloc_init(&fa);
    for (long nth = 1;; nth++) {
        evs_store_opts o;
        evs_store *s;
        evs_log *l;
        long failed = 0;
        int rc = 0;

        cr_assert_lt(nth, 200, "the loop does not end");
        evs_store_opts_init(&o);
        o.alloc = &fa.a;
        cr_assert_eq(evs_store_open(dir, &o, &s), 0);
        cr_assert_eq(evs_log_open(s, "ac", 2, 0, &l, NULL, NULL), 0);
        tu_alloc_fail(&fa, nth, TU_FAIL_ONCE);
        for (int fi = 0; fi < 2 && rc == 0; fi++) {
            evs_cursor *c;
            evs_event ev;
            uint64_t want = froms[fi];
            evs_error_info info;

            evs_error_info_clear(&info);
            rc = evs_cursor_open(l, froms[fi], 0, &c, &info);
            if (rc != 0)
                break;
            for (;;) {
                rc = evs_cursor_next(c, &ev, NULL, &info);
                if (rc == -ENOMEM) {
                    /* The cursor stays put: the next call goes on. */
                    rc = evs_cursor_next(c, &ev, NULL, &info);
                }
                if (rc != 1)
                    break;
                cr_assert_eq(ev.sequence, want, "nth %ld", nth);
                want++;
            }
            evs_cursor_close(c);
            cr_assert_eq(rc, 0, "nth %ld: %s %s", nth, evs_err_name(rc),
                         info.msg);
            cr_assert_eq(want, last + 1, "nth %ld", nth);
        }
        failed = fa.failed;
        tu_alloc_stop(&fa);
        cr_assert(rc == 0 || rc == -ENOMEM, "nth %ld: %s", nth,
                  evs_err_name(rc));
        evs_log_close(l);
        evs_store_close(s);
        cr_assert_eq(fa.live, 0, "nth %ld: %ld blocks leaked", nth, fa.live);
        runs++;
        if (failed == 0) {
            cr_assert_eq(rc, 0);
            break;
        }
    }
    cr_assert_geq(runs, 3);
    free(good);
}

Test(faults, snapshot_save_and_load_survive_every_allocation_failure)
{
    evs_snapshot old = snap_old(), nw = snap_new();
    tu_alloc fa;
    uint64_t last;
    size_t len, runs = 0;
    char *good = build_alloc_log("as", &len, &last);

    old.last_event_seq = 1;
    nw.last_event_seq = last;
    {
        evs_store *s = open_store(NULL, NULL);
        cr_assert_eq(evs_snapshot_save(s, "as", 2, &old), 0);
        evs_store_close(s);
    }
    tu_alloc_init(&fa);
    for (long nth = 1;; nth++) {
        evs_store_opts o;
        evs_store *s;
        evs_snapshot *got = NULL;
        long failed;
        int rc;

        cr_assert_lt(nth, 200, "the loop does not end");
        evs_store_opts_init(&o);
        o.alloc = &fa.a;
        cr_assert_eq(evs_store_open(dir, &o, &s), 0);
        tu_alloc_fail(&fa, nth, TU_FAIL_ONCE);
        rc = evs_snapshot_save(s, "as", 2, &nw);
        if (rc == 0) {
            rc = evs_snapshot_load(s, "as", 2, &got, NULL);
            if (rc == 0) {
                cr_assert(snap_is(got, &nw, last), "nth %ld", nth);
                evs_snapshot_free(got);
            }
        }
        failed = fa.failed;
        tu_alloc_stop(&fa);
        cr_assert(rc == 0 || rc == -ENOMEM, "nth %ld: %s", nth,
                  evs_err_name(rc));
        evs_store_close(s);
        cr_assert_eq(fa.live, 0, "nth %ld: %ld blocks leaked", nth, fa.live);
        /* The old snapshot or the new one, never a damaged one. */
        s = open_store(NULL, NULL);
        cr_assert_eq(evs_snapshot_load(s, "as", 2, &got, NULL), 0);
        cr_assert(snap_is(got, &nw, last) || snap_is(got, &old, 1));
        evs_snapshot_free(got);
        /* Back to the old one for the next run. */
        cr_assert_eq(evs_snapshot_save(s, "as", 2, &old), 0);
        evs_store_close(s);
        runs++;
        if (failed == 0) {
            cr_assert_eq(rc, 0);
            break;
        }
    }
    cr_assert_geq(runs, 3);
    free(good);
}

/* Listing, with its index to read, rebuild or append to, ends in the
 * right listing or -ENOMEM whichever allocation fails, without leaks. */
Test(faults, listing_survives_every_allocation_failure)
{
    tu_alloc fa;
    char id[16], *idx;
    size_t runs = 0;

    {
        evs_store *s = open_store(NULL, NULL);
        for (int i = 0; i < 5; i++) {
            evs_snapshot sn = snap_old();
            snprintf(id, sizeof(id), "li%d", i);
            sn.status = evs_span_cstr(i % 2 ? "failed" : "running");
            cr_assert_eq(evs_exec_create(s, id, strlen(id), &sn, NULL, 0), 0);
        }
        evs_store_close(s);
    }
    idx = malloc(strlen(dir) + 16);
    cr_assert_not_null(idx);
    sprintf(idx, "%s/.index", dir);
    tu_alloc_init(&fa);
    for (int with_index = 1; with_index >= 0; with_index--) {
        for (long nth = 1;; nth++) {
            evs_store_opts o;
            evs_store *s;
            evs_exec_listing l;
            evs_list_filter f;
            long failed;
            int rc;

            cr_assert_lt(nth, 400, "the loop does not end");
            if (!with_index)
                unlink(idx); /* every listing rebuilds it */
            evs_store_opts_init(&o);
            o.alloc = &fa.a;
            cr_assert_eq(evs_store_open(dir, &o, &s), 0);
            memset(&f, 0, sizeof(f));
            f.status = evs_span_cstr("failed");
            tu_alloc_fail(&fa, nth, TU_FAIL_ONCE);
            rc = evs_exec_list(s, &f, &l);
            failed = fa.failed;
            tu_alloc_stop(&fa);
            cr_assert(rc == 0 || rc == -ENOMEM, "nth %ld: %s", nth,
                      evs_err_name(rc));
            if (rc == 0) {
                cr_assert_eq(l.total, 2, "nth %ld", nth);
                evs_exec_list_free(&l);
            }
            evs_store_close(s);
            cr_assert_eq(fa.live, 0, "nth %ld: %ld blocks leaked", nth,
                         fa.live);
            runs++;
            if (!failed)
                break;
        }
    }
    cr_assert_gt(runs, 10);
    free(idx);
}
