/*
 * test_sweep.c: the fault sweep of issue 7, section 3. One fixed workload
 * (create, appends of 1 and 100 events, a recorder flush, a snapshot save,
 * a writer's open cutting a torn tail, a listing, a delete, a request
 * post) is run once per fault: every mutating I/O call it makes fails in
 * turn, once and forever, with each error kind; then every allocation
 * fails in turn. After each run the store is reopened with the real I/O
 * and read back: nothing acknowledged may be missing, nothing else may be
 * visible. tests/RELIABILITY.md records the figures.
 */
#include <criterion/criterion.h>

#include "evstore/recorder.h"
#include "evstore/store.h"
#include "fault_io.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1795000000000000LL
#define EXEC "ex"
#define GONE "gone"
#define REQ "{\"kind\":\"signal\",\"name\":\"go\"}"

/* ------------------------------------------------------------------ */
/* The workload's appends and what became of them                     */
/* ------------------------------------------------------------------ */

enum { A_ONE, A_HUNDRED, A_RECORDER, N_APPENDS };
static const size_t append_size[N_APPENDS] = {1, 100, 5};
static const char *const append_tag[N_APPENDS] = {"one", "hundred", "rec"};

/* Status of an append: never issued, failed (its bytes may or may not
 * be there, but wholly or not at all), acknowledged. */
enum { ST_NONE, ST_MAYBE, ST_ACKED };

typedef struct appendset {
    size_t n;
    evs_event ev[100];
    char id[100][32];
    char data[100][64];
} appendset;

static appendset sets[N_APPENDS];

static void sets_init(void)
{
    for (int a = 0; a < N_APPENDS; a++) {
        appendset *s = &sets[a];

        s->n = append_size[a];
        for (size_t i = 0; i < s->n; i++) {
            snprintf(s->id[i], sizeof(s->id[i]), "%s-%03zu", append_tag[a], i);
            snprintf(s->data[i], sizeof(s->data[i]),
                     "{\"a\":\"%s\",\"i\":%zu,\"s\":\"x\\ty\"}", append_tag[a],
                     i);
            s->ev[i] = tu_event(EVS_EV_STEP_COMPLETED, "sweep", s->data[i]);
            s->ev[i].id = evs_span_cstr(s->id[i]);
            s->ev[i].timestamp_us = T0 + a * 1000 + (int64_t)i;
        }
    }
}

/* What one run did and found. */
typedef struct run {
    char *dir;
    const evs_io *io;           /* faulty or real */
    const evs_allocator *alloc; /* failing or NULL */
    int status[N_APPENDS];
    int created, gone_created, gone_deleted, snap_saved, posted;
    int torn_written;
    size_t rec_n; /* events the recorder buffered */
    char *torn;
    size_t torn_len;
    uint64_t acked_last; /* last acknowledged sequence */
    const char *where;   /* describes the fault, for messages */
} run;

/* Totals over the whole binary, printed at the end of each test. */
static long runs, acked_lost, invalid_accepted, listing_omissions;

/* A code the API may return: 0, one of evstore's, or a -errno. */
static int clean(int rc)
{
    if (rc == 0)
        return 1;
    if (rc <= EVS_ERRNO_FLOOR)
        return rc >= EVS_EFAILED;
    return rc < 0 && rc >= -4095;
}

#define CLEAN(r, rc, what)                                                     \
    cr_assert(clean(rc), "%s: %s returned %d (%s)", (r)->where, what, rc,      \
              evs_err_name(rc))

static evs_store *store_open(run *r, const evs_io *io, const evs_allocator *a,
                             int *rc)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.io = io;
    o.alloc = a;
    *rc = evs_store_open(r->dir, &o, &s);
    return *rc == 0 ? s : NULL;
}

/* After a failed append: the handle is poisoned, and reports no more
 * durable than what was acknowledged. */
static void check_poisoned(run *r, evs_log *l, int rc)
{
    if (rc == -ENOMEM || rc == -EINVAL || rc == EVS_ETOOBIG)
        return;
    cr_assert_leq(evs_log_durable_seq(l), r->acked_last,
                  "%s: durable_seq %llu past the acknowledged %llu", r->where,
                  (unsigned long long)evs_log_durable_seq(l),
                  (unsigned long long)r->acked_last);
    cr_assert_eq(
        evs_log_append(l, sets[A_ONE].ev, 1, evs_log_last_seq(l), NULL),
        EVS_EPOISONED, "%s: append after a failed append", r->where);
    cr_assert_eq(evs_log_sync(l), EVS_EPOISONED,
                 "%s: sync after a failed append", r->where);
}

static evs_log *writer(run *r, evs_store *s, evs_recovery_info *rec)
{
    evs_log *l = NULL;
    int rc = evs_log_open(s, EXEC, strlen(EXEC), EVS_LOG_WRITE, &l, rec, NULL);

    CLEAN(r, rc, "evs_log_open(WRITE)");
    return rc == 0 ? l : NULL;
}

/* One plain append of set `a` on *lp; reopens the writer after a failure.
 * Returns the writer, or NULL when it could not be reopened. */
static evs_log *do_append(run *r, evs_store *s, evs_log *l, int a)
{
    int rc =
        evs_log_append(l, sets[a].ev, sets[a].n, evs_log_last_seq(l), NULL);

    CLEAN(r, rc, "evs_log_append");
    if (rc == 0) {
        r->status[a] = ST_ACKED;
        r->acked_last = evs_log_last_seq(l);
        cr_assert_eq(evs_log_durable_seq(l), r->acked_last,
                     "%s: an acknowledged append is not durable", r->where);
        return l;
    }
    r->status[a] = ST_MAYBE;
    check_poisoned(r, l, rc);
    evs_log_close(l);
    l = writer(r, s, NULL);
    if (l)
        cr_assert_eq(evs_log_durable_seq(l) <= evs_log_last_seq(l), 1);
    return l;
}

/* The recorder's five events, flushed once; on failure, the documented
 * hand-over to a reopened writer and a second flush. */
static evs_log *do_record(run *r, evs_store *s, evs_log *l)
{
    evs_recorder_opts o;
    evs_recorder *rec = NULL;
    evs_store *real = NULL;
    evs_log *fallback = NULL;
    int rc;

    evs_recorder_opts_init(&o);
    o.batch_events = 1000;
    rc = evs_recorder_open(l, &o, &rec);
    CLEAN(r, rc, "evs_recorder_open");
    if (rc != 0)
        return l;
    for (size_t i = 0; i < sets[A_RECORDER].n; i++) {
        rc = evs_recorder_record(rec, &sets[A_RECORDER].ev[i], NULL);
        CLEAN(r, rc, "evs_recorder_record");
        if (rc != 0) {
            /* Not buffered: the flush appends those before it. */
            break;
        }
    }
    r->rec_n = evs_recorder_pending(rec);
    cr_assert_leq(r->rec_n, sets[A_RECORDER].n);
    if (r->rec_n == 0) {
        evs_recorder_close(rec);
        return l;
    }
    r->status[A_RECORDER] = ST_MAYBE;
    rc = evs_recorder_flush(rec);
    CLEAN(r, rc, "evs_recorder_flush");
    if (rc != 0 && rc != -ENOMEM) {
        check_poisoned(r, l, rc);
        evs_log_close(l);
        l = writer(r, s, NULL);
        if (!l) {
            /* The faulty store cannot reopen: hand the recorder to a
             * writer on the real I/O so that it can be closed. */
            real = store_open(r, evs_io_posix(), NULL, &rc);
            cr_assert_not_null(real);
            cr_assert_eq(evs_log_open(real, EXEC, strlen(EXEC), EVS_LOG_WRITE,
                                      &fallback, NULL, NULL),
                         0, "%s: real reopen", r->where);
        }
        rc = evs_recorder_set_log(rec, l ? l : fallback);
        cr_assert_eq(rc, 0, "%s: evs_recorder_set_log: %s", r->where,
                     evs_err_name(rc));
        rc = evs_recorder_flush(rec);
        CLEAN(r, rc, "evs_recorder_flush (retry)");
        if (rc != 0 && fallback)
            check_poisoned(r, fallback, rc);
    } else if (rc == -ENOMEM) {
        rc = evs_recorder_flush(rec);
        CLEAN(r, rc, "evs_recorder_flush (retry)");
    }
    if (rc == 0) {
        r->status[A_RECORDER] = ST_ACKED;
        r->acked_last = evs_recorder_flushed_seq(rec);
        cr_assert_eq(evs_recorder_pending(rec), 0);
    }
    evs_recorder_close(rec);
    evs_log_close(fallback);
    evs_store_close(real);
    if (l && evs_log_sync(l) == EVS_EPOISONED) {
        evs_log_close(l);
        l = writer(r, s, NULL);
    }
    return l;
}

/* A torn append after the log's end: a 2-event batch whose second line
 * is cut in half, written with the real I/O. */
static void write_torn_tail(run *r, uint64_t last)
{
    char buf[2048], *p = tu_path(r->dir, EXEC, "events.jsonl");
    size_t off = 0, n;
    int fd;

    for (int i = 0; i < 2; i++) {
        evs_event e = sets[A_ONE].ev[0];
        char id[16];

        snprintf(id, sizeof(id), "torn-%d", i);
        e.id = evs_span_cstr(id);
        e.execution_id = evs_span_cstr(EXEC);
        e.sequence = last + 1 + (uint64_t)i;
        e.batch_first = last + 1;
        e.batch_count = 2;
        cr_assert_eq(evs_line_encode(&e, buf + off, sizeof(buf) - off, &n), 0);
        off += i == 0 ? n : n / 2;
    }
    r->torn = malloc(off);
    memcpy(r->torn, buf, off);
    r->torn_len = off;
    fd = open(p, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, off), (ssize_t)off);
    close(fd);
    free(p);
    r->torn_written = 1;
}

static evs_snapshot new_snap(uint64_t last)
{
    evs_snapshot s;

    memset(&s, 0, sizeof(s));
    s.workflow_name = evs_span_cstr("swept");
    s.status = evs_span_cstr("running");
    s.start_time_us = T0;
    s.last_event_seq = last;
    return s;
}

/* The workload, with every call through the store's faulty I/O or
 * allocator. Fills r with what was acknowledged. */
static void workload(run *r)
{
    evs_store *s;
    evs_log *l = NULL;
    evs_recovery_info ri;
    evs_exec_listing lst;
    evs_snapshot snap;
    evs_event gone_ev = sets[A_ONE].ev[0];
    int rc;

    s = store_open(r, r->io, r->alloc, &rc);
    CLEAN(r, rc, "evs_store_open");
    if (!s)
        return;
    rc = evs_exec_create(s, EXEC, strlen(EXEC), NULL, NULL, 0);
    CLEAN(r, rc, "evs_exec_create");
    r->created = rc == 0;
    gone_ev.id = evs_span_cstr("gone-0");
    rc = evs_exec_create(s, GONE, strlen(GONE), NULL, &gone_ev, 1);
    CLEAN(r, rc, "evs_exec_create(gone)");
    r->gone_created = rc == 0;
    if (!r->created)
        goto out;

    l = writer(r, s, NULL);
    if (l)
        l = do_append(r, s, l, A_ONE);
    if (l)
        l = do_append(r, s, l, A_HUNDRED);
    if (l)
        l = do_record(r, s, l);
    if (l) {
        write_torn_tail(r, evs_log_last_seq(l));
        evs_log_close(l);
        memset(&ri, 0, sizeof(ri));
        l = writer(r, s, &ri);
        if (l) {
            cr_assert_eq(ri.cut_bytes, r->torn_len,
                         "%s: cut %llu bytes, torn %zu", r->where,
                         (unsigned long long)ri.cut_bytes, r->torn_len);
            cr_assert_neq(ri.saved_as[0], '\0');
        }
    }
    snap = new_snap(r->acked_last);
    rc = evs_snapshot_save(s, EXEC, strlen(EXEC), &snap);
    CLEAN(r, rc, "evs_snapshot_save");
    r->snap_saved = rc == 0;
    evs_log_close(l);
    l = NULL;

    memset(&lst, 0, sizeof(lst));
    rc = evs_exec_list(s, NULL, &lst);
    CLEAN(r, rc, "evs_exec_list");
    if (rc == 0) {
        int found = 0;
        for (size_t i = 0; i < lst.count; i++)
            found |= lst.items[i].id.len == 2 &&
                     memcmp(lst.items[i].id.ptr, EXEC, 2) == 0;
        /* Not fatal, so that the sweep goes on and counts them. */
        if (!found)
            listing_omissions++;
        cr_expect(found,
                  "%s: evs_exec_list returned 0 without the "
                  "execution",
                  r->where);
        evs_exec_list_free(&lst);
    }
    if (r->gone_created) {
        rc = evs_exec_delete(s, GONE, strlen(GONE));
        CLEAN(r, rc, "evs_exec_delete");
        r->gone_deleted = rc == 0;
    }
    rc = evs_request_post(s, EXEC, strlen(EXEC), REQ, strlen(REQ), NULL);
    CLEAN(r, rc, "evs_request_post");
    r->posted = rc == 0;
out:
    evs_log_close(l);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Reading back with the real I/O                                     */
/* ------------------------------------------------------------------ */

static int has_prefix_id(evs_span id, const char *tag)
{
    size_t n = strlen(tag);
    return id.len > n && memcmp(id.ptr, tag, n) == 0 && id.ptr[n] == '-';
}

/* Reads the log: it must be the acknowledged appends, in order, each
 * whole and byte-identical, plus only wholly present failed ones. */
static void check_log(run *r, evs_store *s)
{
    evs_log *l = NULL;
    evs_cursor *c = NULL;
    evs_event ev;
    evs_span raw;
    char buf[1024];
    size_t n;
    int next = 0, rc;
    uint64_t seq = 0;

    rc = evs_log_open(s, EXEC, strlen(EXEC), 0, &l, NULL, NULL);
    cr_assert_eq(rc, 0, "%s: reopen: %s", r->where, evs_err_name(rc));
    if (evs_log_last_seq(l) > 0) {
        rc = evs_cursor_open(l, 1, 0, &c, NULL);
        cr_assert_eq(rc, 0, "%s: cursor: %s", r->where, evs_err_name(rc));
    }
    while (c && (rc = evs_cursor_next(c, &ev, &raw, NULL)) == 1) {
        int a;
        uint64_t first = seq + 1;

        /* Which append starts here; those skipped must have failed. */
        for (a = next; a < N_APPENDS; a++)
            if (has_prefix_id(ev.id, append_tag[a]))
                break;
        if (a == N_APPENDS) {
            invalid_accepted++;
            cr_assert_fail("%s: unknown event %.*s at %llu", r->where,
                           (int)ev.id.len, ev.id.ptr,
                           (unsigned long long)ev.sequence);
        }
        for (int k = next; k < a; k++) {
            if (r->status[k] == ST_ACKED) {
                acked_lost += (long)sets[k].n;
                cr_assert_fail("%s: acknowledged append %s lost", r->where,
                               append_tag[k]);
            }
        }
        if (r->status[a] == ST_NONE) {
            invalid_accepted++;
            cr_assert_fail("%s: append %s never made is there", r->where,
                           append_tag[a]);
        }
        size_t an = a == A_RECORDER ? r->rec_n : sets[a].n;

        for (size_t i = 0; i < an; i++) {
            evs_event e = sets[a].ev[i];

            if (i > 0) {
                rc = evs_cursor_next(c, &ev, &raw, NULL);
                if (rc != 1) {
                    invalid_accepted++;
                    cr_assert_fail("%s: append %s incomplete (%d)", r->where,
                                   append_tag[a], rc);
                }
            }
            seq++;
            e.execution_id = evs_span_cstr(EXEC);
            e.sequence = seq;
            e.batch_first = an > 1 ? first : 0;
            e.batch_count = an > 1 ? an : 0;
            cr_assert_eq(evs_line_encode(&e, buf, sizeof(buf), &n), 0);
            if (raw.len != n || memcmp(raw.ptr, buf, n) != 0) {
                invalid_accepted++;
                cr_assert_fail("%s: event %llu of %s differs: %.*s", r->where,
                               (unsigned long long)seq, append_tag[a],
                               (int)raw.len, raw.ptr);
            }
        }
        next = a + 1;
    }
    cr_assert_eq(c ? rc : 0, 0, "%s: read back: %s", r->where,
                 evs_err_name(rc));
    for (int k = next; k < N_APPENDS; k++) {
        if (r->status[k] == ST_ACKED) {
            acked_lost += (long)sets[k].n;
            cr_assert_fail("%s: acknowledged append %s lost", r->where,
                           append_tag[k]);
        }
    }
    cr_assert_geq(seq, r->acked_last);
    evs_cursor_close(c);
    evs_log_close(l);
}

/* The torn bytes are never thrown away: still at the end of the log, or
 * saved byte for byte to a cut file. */
static void check_torn(run *r)
{
    char *p = tu_path(r->dir, EXEC, "."), *log, *f;
    size_t len, flen;
    int kept = 0;
    DIR *d;
    struct dirent *de;

    f = tu_path(r->dir, EXEC, "events.jsonl");
    log = tu_read_file(f, &len);
    free(f);
    cr_assert_not_null(log);
    kept = len >= r->torn_len &&
           memcmp(log + len - r->torn_len, r->torn, r->torn_len) == 0;
    free(log);
    d = opendir(p);
    cr_assert_not_null(d);
    while (!kept && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "cut-", 4) != 0)
            continue;
        f = tu_path(r->dir, EXEC, de->d_name);
        log = tu_read_file(f, &flen);
        free(f);
        kept = log && flen == r->torn_len && memcmp(log, r->torn, flen) == 0;
        free(log);
    }
    closedir(d);
    free(p);
    cr_assert(kept, "%s: the torn tail's bytes were lost", r->where);
}

static void check_after(run *r)
{
    int rc;
    evs_store *s = store_open(r, evs_io_posix(), NULL, &rc);
    evs_snapshot *snap = NULL;
    evs_request_listing rl;
    int exists;

    cr_assert_not_null(s, "%s: reopen store: %s", r->where, evs_err_name(rc));
    exists = evs_exec_exists(s, EXEC, strlen(EXEC));
    if (r->created)
        cr_assert(exists, "%s: created execution is gone", r->where);
    if (exists) {
        check_log(r, s);
        rc = evs_snapshot_load(s, EXEC, strlen(EXEC), &snap, NULL);
        cr_assert_eq(rc, 0, "%s: snapshot: %s", r->where, evs_err_name(rc));
        if (r->snap_saved)
            cr_assert_eq(snap->workflow_name.len, 5,
                         "%s: saved snapshot not there", r->where);
        if (snap->workflow_name.len == 5)
            cr_assert_eq(snap->last_event_seq, r->acked_last);
        evs_snapshot_free(snap);
        memset(&rl, 0, sizeof(rl));
        rc = evs_request_list(s, EXEC, strlen(EXEC), &rl);
        cr_assert_eq(rc, 0, "%s: request list: %s", r->where, evs_err_name(rc));
        cr_assert_eq(rl.count, (size_t)r->posted,
                     "%s: %zu requests, post returned %s", r->where, rl.count,
                     r->posted ? "0" : "an error");
        if (rl.count == 1)
            cr_assert(rl.items[0].body.len == strlen(REQ) &&
                      memcmp(rl.items[0].body.ptr, REQ, strlen(REQ)) == 0);
        evs_request_list_free(&rl);
    }
    if (r->torn_written)
        check_torn(r);
    exists = evs_exec_exists(s, GONE, strlen(GONE));
    if (r->gone_deleted)
        cr_assert(!exists, "%s: deleted execution still there", r->where);
    /* A failed delete may already have renamed the directory away (as a
     * failed create may have renamed it in): either way, it is whole. */
    if (exists)
        cr_assert_eq(tu_count_events(s, GONE), 1,
                     "%s: the other execution is not usable", r->where);
    evs_store_close(s);
}

static void run_once(const evs_io *io, const evs_allocator *a,
                     const char *where)
{
    run r;

    memset(&r, 0, sizeof(r));
    r.dir = tu_tmpdir("sweep");
    cr_assert_not_null(r.dir);
    r.io = io;
    r.alloc = a;
    r.where = where;
    workload(&r);
    check_after(&r);
    free(r.torn);
    tu_rmtree_free(r.dir);
    runs++;
}

/* ------------------------------------------------------------------ */
/* I/O fault sweep                                                    */
/* ------------------------------------------------------------------ */

static const struct {
    unsigned kind;
    const char *name;
} kinds[] = {
    {FIO_OPEN, "open"},           {FIO_WRITE, "write"},
    {FIO_FDATASYNC, "fdatasync"}, {FIO_FSYNC, "fsync"},
    {FIO_TRUNCATE, "ftruncate"},  {FIO_MKDIR, "mkdir"},
    {FIO_RENAME, "rename"},       {FIO_UNLINK, "unlink"},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct {
    int err;
    const char *name;
} errs[] = {
    {-EIO, "EIO"},     {-ENOSPC, "ENOSPC"},        {-EDQUOT, "EDQUOT"},
    {-EINTR, "EINTR"}, {FIO_SHORT, "short write"},
};
#define NERRS (sizeof(errs) / sizeof(errs[0]))

static void print_totals(const char *what, long sites, long kinds_n)
{
    printf("sweep %s: %ld call sites x %ld error kinds%s; %ld runs; "
           "acknowledged events lost: %ld; invalid events "
           "accepted: %ld; listings missing an execution: %ld\n",
           what, sites, kinds_n, kinds_n > 1 ? " x {once, forever}" : ", once",
           runs, acked_lost, invalid_accepted, listing_omissions);
    fflush(stdout);
}

Test(sweep, every_mutating_call_failing_once_or_forever_loses_nothing,
     .timeout = 600)
{
    fault_io f;
    long count[NKINDS], sites = 0, fired = 0;
    char where[128];

    sets_init();
    fault_io_init(&f);
    for (size_t k = 0; k < NKINDS; k++) {
        fault_io_arm(&f, kinds[k].kind, LONG_MAX, -EIO, 0);
        run_once(&f.io, NULL, "counting");
        count[k] = f.calls;
        sites += count[k];
    }
    cr_assert_gt(count[1], 0);
    cr_assert_gt(count[2], 0);
    for (size_t k = 0; k < NKINDS; k++) {
        for (long n = 1; n <= count[k]; n++) {
            for (size_t e = 0; e < NERRS; e++) {
                /* A short write is a write's failure; elsewhere it
                 * would be EIO again. */
                if (errs[e].err == FIO_SHORT && kinds[k].kind != FIO_WRITE)
                    continue;
                for (int persist = 0; persist < 2; persist++) {
                    snprintf(where, sizeof(where), "%s #%ld %s %s",
                             kinds[k].name, n, errs[e].name,
                             persist ? "forever" : "once");
                    fault_io_arm(&f, kinds[k].kind, n, errs[e].err, persist);
                    run_once(&f.io, NULL, where);
                    cr_assert_geq(f.fired, 1, "%s: never fired", where);
                    fired += f.fired;
                }
            }
        }
    }
    for (size_t k = 0; k < NKINDS; k++)
        printf("sweep: %-10s %ld calls\n", kinds[k].name, count[k]);
    print_totals("I/O", sites, (long)NERRS);
    cr_assert_eq(listing_omissions, 0);
    cr_assert_eq(acked_lost, 0);
    cr_assert_eq(invalid_accepted, 0);
}

/* ------------------------------------------------------------------ */
/* Allocation sweep                                                   */
/* ------------------------------------------------------------------ */

Test(sweep, every_allocation_failing_ends_clean_without_a_leak, .timeout = 600)
{
    tu_alloc f;
    long total;
    char where[64];

    sets_init();
    tu_alloc_init(&f);
    run_once(evs_io_posix(), &f.a, "counting allocations");
    total = f.calls;
    cr_assert_gt(total, 0);
    cr_assert_eq(f.live, 0, "the workload leaks %ld blocks", f.live);
    for (long n = 1; n <= total; n++) {
        snprintf(where, sizeof(where), "allocation #%ld", n);
        tu_alloc_fail(&f, n, TU_FAIL_ONCE);
        run_once(evs_io_posix(), &f.a, where);
        cr_assert_eq(f.failed, 1, "%s: never failed", where);
        cr_assert_eq(f.live, 0, "%s: %ld blocks leaked", where, f.live);
    }
    printf("sweep allocations: %ld allocation sites\n", total);
    print_totals("allocations", total, 1);
    cr_assert_eq(acked_lost, 0);
    cr_assert_eq(invalid_accepted, 0);
}
