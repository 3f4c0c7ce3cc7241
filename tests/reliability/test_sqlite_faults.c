/*
 * test_sqlite_faults.c: a full disk and failed I/O on the SQLite backend,
 * injected at SQLite's VFS (tests/RELIABILITY.md, section 1b): the
 * recording VFS of sqlite_plvfs.h refuses writes past a limit with
 * SQLITE_FULL, fails a sync as fsync(2) does with ENOSPC, and fails each
 * write, truncate and sync of a small workload in turn. Each failed call
 * must give a negative code and a line naming the store, poison a log,
 * lose nothing acknowledged and be wholly in or wholly out.
 *
 * Environment: EVS_SQLPL_SEED (first seed), EVS_POWERLOSS_TMP (where the
 * databases are made, default /dev/shm).
 */
#include <criterion/criterion.h>

#include "pl_common.h"
#include "sqlite_plvfs.h"
#include "sqlite_world.h"
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* A full disk                                                        */
/* ------------------------------------------------------------------ */

static char hook_lines[8][1024];
static int hook_n;

static void hook(void *ctx, const evs_log_record *r)
{
    (void)ctx;
    if (r->level == EVS_LOG_ERROR)
        snprintf(hook_lines[hook_n++ % 8], sizeof(hook_lines[0]), "%s", r->msg);
}

/* The log hook said, since the last call, in one line that starts
 * with `fmt` (whose %s is the store's location). */
static void expect_store_message(const sqw_world *W, const char *fmt,
                                 const char *what)
{
    char want[4400];
    int found = 0;

    snprintf(want, sizeof(want), fmt, W->loc);
    for (int i = 0; i < hook_n && i < 8; i++)
        if (strncmp(hook_lines[i], want, strlen(want)) == 0 &&
            !strchr(hook_lines[i], '\n'))
            found = 1;
    cr_expect(found, "%s: no line \"%s...\" in the log hook (last: \"%s\")",
              what, want, hook_n ? hook_lines[(hook_n - 1) % 8] : "");
    hook_n = 0;
}

/* The line says the store's disk is full. */
static void expect_full_message(const sqw_world *W, const char *what)
{
    expect_store_message(W, "store %s: the disk is full: ", what);
}

static void open_with_hook(sqw_world *W)
{
    evs_store_opts o;

    evs_store_opts_init(&o);
    o.log_fn = hook;
    cr_assert_eq(evs_store_open(W->loc, &o, &W->s), 0, "open %s", W->loc);
}

/* Everything acknowledged in W reads back byte for byte from a fresh
 * handle. */
static void expect_all_there(sqw_world *W)
{
    evs_store *s = NULL;
    evs_request_listing rl;

    cr_assert_eq(evs_store_open(W->loc, NULL, &s), 0);
    for (int e = 0; e < SQW_NEXEC; e++) {
        const sqw_exm *x = &W->ex[e];
        size_t len;
        char *all;
        size_t pos = 0;

        if (!x->exists)
            continue;
        all = tu_log_lines(s, x->id, &len);
        for (uint64_t q = 1; q <= x->last; q++) {
            cr_assert(pos + x->lines.v[q].len <= len &&
                          memcmp(all + pos, x->lines.v[q].raw,
                                 x->lines.v[q].len) == 0,
                      "%s: acknowledged sequence %" PRIu64 " lost", x->id, q);
            pos += x->lines.v[q].len;
        }
        cr_expect_eq(pos, len, "%s: more than was acknowledged", x->id);
        free(all);
    }
    memset(&rl, 0, sizeof(rl));
    cr_assert_eq(evs_request_list(s, W->ex[3].id, strlen(W->ex[3].id), &rl), 0);
    cr_expect_eq(rl.count, (size_t)W->nreq, "%zu requests, %d acknowledged",
                 rl.count, W->nreq);
    evs_request_list_free(&rl);
    evs_store_close(s);
}

Test(sqlite_full_disk, refused_clearly_and_nothing_acknowledged_lost)
{
    sqw_world W;
    evs_error_info ei;
    evs_event *ev;
    char id[32], body[] = "{\"late\":1}";
    char rid[EVS_REQUEST_ID_LEN + 1];
    int rc = 0, made = 0, appended;

    sqw_install();
    sqw_init(&W, EVS_SYNC_FULL, tu_seed("EVS_SQLPL_SEED", "full disk"));
    cr_assert_eq(spl_record(W.db), 0);
    open_with_hook(&W);
    sqw_create(&W, 0, 1);
    sqw_create(&W, 3, 1);
    sqw_writer(&W, 0);
    for (int i = 0; i < 20; i++)
        sqw_append(&W, 0, 1, i % 5 == 0);
    sqw_post(&W);

    /* The disk fills: appends go on while SQLite finds room in what its
     * files hold (a WAL restarted after a checkpoint), then one is
     * refused with -ENOSPC and a line naming the store. */
    spl_disk_limit((int64_t)(8000 + plc_rnd(&W.rs) % 40000));
    hook_n = 0;
    for (appended = 0; appended < 2000; appended++) {
        ev = sqw_events(&W, 0, W.ex[0].last + 1, 1, appended % 4 == 3);
        rc = evs_log_append(W.ex[0].l, ev, 1, W.ex[0].last, &ei);
        if (rc == 0)
            sqw_keep_lines(&W, 0, W.ex[0].l, W.ex[0].last + 1, 1, 0);
        plc_free_events(ev, 1);
        if (rc != 0)
            break;
        W.ex[0].last++;
    }
    cr_assert_eq(rc, -ENOSPC, "append on a full disk: %s", evs_strerror(rc));
    cr_expect_gt(spl_full_count(), 0);
    fprintf(stderr,
            "full disk: the append refused: \"%s\"; the log hook: "
            "\"%s\"\n",
            ei.msg, hook_lines[0]);
    expect_full_message(&W, "append");
    cr_expect(strstr(ei.msg, W.ex[0].id) && strstr(ei.msg, "space"),
              "the append's error names its execution and the cause: %s",
              ei.msg);
    /* The handle is poisoned (store.h, evs_log_append). */
    ev = sqw_events(&W, 0, W.ex[0].last + 1, 1, 0);
    cr_expect_eq(evs_log_append(W.ex[0].l, ev, 1, W.ex[0].last, NULL),
                 EVS_EPOISONED);
    cr_expect_eq(evs_log_sync(W.ex[0].l), EVS_EPOISONED);

    /* Creations and posts are refused too, and leave nothing. */
    for (made = 0; made < 200; made++) {
        evs_snapshot sn = sqw_snap_make(&W.ex[2], 0);
        snprintf(id, sizeof(id), "late-%d", made);
        rc = evs_exec_create(W.s, id, strlen(id), &sn, ev, 1);
        if (rc != 0)
            break;
    }
    cr_assert_eq(rc, -ENOSPC, "create on a full disk: %s", evs_strerror(rc));
    cr_expect(!evs_exec_exists(W.s, id, strlen(id)),
              "a refused creation left %s", id);
    expect_full_message(&W, "create");
    for (int i = 0; i < 200; i++) {
        rc = evs_request_post(W.s, W.ex[3].id, strlen(W.ex[3].id), body,
                              strlen(body), rid);
        if (rc != 0)
            break;
        cr_assert_lt(W.nreq, SQW_MAX_REQ, "posts never fail");
        memcpy(W.req[W.nreq++], rid, sizeof(rid));
    }
    cr_assert_eq(rc, -ENOSPC, "post on a full disk: %s", evs_strerror(rc));
    expect_full_message(&W, "post");
    {
        /* A snapshot too; the one saved before stays. */
        evs_snapshot sn = sqw_snap_make(&W.ex[0], 1);
        sn.status = evs_span_cstr("completed");
        rc = evs_snapshot_save(W.s, W.ex[0].id, strlen(W.ex[0].id), &sn);
        cr_assert_eq(rc, -ENOSPC, "snapshot on a full disk: %s",
                     evs_strerror(rc));
        expect_full_message(&W, "snapshot");
    }
    fprintf(stderr,
            "full disk: %d appends acknowledged before the first "
            "refused, %d creations after it; %" PRIu64 " writes "
            "refused\n",
            appended, made, spl_full_count());

    /* Space comes back: a new writer on the same store appends, and
     * the store creates again. */
    spl_disk_limit(-1);
    evs_log_close(W.ex[0].l);
    W.ex[0].l = NULL;
    sqw_writer(&W, 0);
    sqw_append(&W, 0, 2, 0);
    sqw_create(&W, 1, 1);
    sqw_snap(&W, 0);
    sqw_post(&W);
    sqw_close_writers(&W);
    evs_store_close(W.s);
    W.s = NULL;
    spl_stop();
    plc_free_events(ev, 1);

    /* Nothing acknowledged was lost, and nothing refused is there. */
    expect_all_there(&W);
    {
        evs_store *s = NULL;
        cr_assert_eq(evs_store_open(W.loc, NULL, &s), 0);
        for (int i = 0; i < made; i++) {
            snprintf(id, sizeof(id), "late-%d", i);
            cr_expect(evs_exec_exists(s, id, strlen(id)),
                      "acknowledged creation %s lost", id);
        }
        snprintf(id, sizeof(id), "late-%d", made);
        cr_expect(!evs_exec_exists(s, id, strlen(id)),
                  "a refused creation left %s", id);
        {
            evs_snapshot *sn = NULL;
            cr_assert_eq(
                evs_snapshot_load(s, W.ex[0].id, strlen(W.ex[0].id), &sn, NULL),
                0);
            cr_expect(sn->status.len == 7 &&
                          memcmp(sn->status.ptr, "running", 7) == 0,
                      "the refused snapshot is there");
            evs_snapshot_free(sn);
        }
        evs_store_close(s);
    }
    {
        const char *args[] = {"verify", W.loc, NULL};
        tu_result r = tu_run_tool("EVDUMP", W.dir, "verify", args);
        cr_expect_eq(r.status, 0, "evdump verify: %s", r.err);
        tu_result_free(&r);
    }
    sqw_free(&W);
}

/* A sync that finds the disk full (fsync(2) failing with ENOSPC, as on
 * a file system that allocates at writeback) reaches the backend as
 * SQLite's I/O error, its errno lost: the append fails with -EIO and a
 * line naming the store, the log is poisoned, and the same append
 * retried on a new handle is acknowledged once (its frames, written but
 * not synced, were never made visible). */
Test(sqlite_full_disk, failed_sync_poisons_and_retry_is_idempotent)
{
    sqw_world W;
    evs_error_info ei;
    evs_event *ev;
    uint64_t last;
    int rc;

    sqw_install();
    sqw_init(&W, EVS_SYNC_FULL, tu_seed("EVS_SQLPL_SEED", "fsync ENOSPC"));
    cr_assert_eq(spl_record(W.db), 0);
    open_with_hook(&W);
    sqw_create(&W, 0, 1);
    sqw_create(&W, 3, 1);
    sqw_writer(&W, 0);
    sqw_append(&W, 0, 3, 0);
    last = W.ex[0].last;
    ev = sqw_events(&W, 0, last + 1, 2, 0);
    hook_n = 0;
    spl_sync_enospc(1);
    rc = evs_log_append(W.ex[0].l, ev, 2, last, &ei);
    cr_assert_eq(rc, -EIO, "append whose sync failed: %s (%s)",
                 evs_strerror(rc), ei.msg);
    cr_expect_eq(spl_full_count(), 1, "the failing sync was not reached");
    expect_store_message(&W, "store %s: SQLite: COMMIT: ", "sync");
    cr_expect_eq(evs_log_append(W.ex[0].l, ev, 2, last, NULL), EVS_EPOISONED);
    evs_log_close(W.ex[0].l);
    W.ex[0].l = NULL;
    /* The same append again, expecting the same end. */
    sqw_writer(&W, 0);
    rc = evs_log_append(W.ex[0].l, ev, 2, last, &ei);
    cr_assert_eq(rc, 0, "the retry: %s (%s)", evs_strerror(rc), ei.msg);
    cr_expect_eq(evs_log_last_seq(W.ex[0].l), last + 2);
    sqw_keep_lines(&W, 0, W.ex[0].l, last + 1, 2, 0);
    W.ex[0].last = last + 2;
    plc_free_events(ev, 2);
    sqw_close_writers(&W);
    evs_store_close(W.s);
    W.s = NULL;
    spl_stop();
    expect_all_there(&W);
    sqw_free(&W);
}

/* ------------------------------------------------------------------ */
/* Each I/O call failed in turn                                       */
/* ------------------------------------------------------------------ */

typedef struct sweep_tally {
    long runs, failed_calls, lost, extra, bad_error, not_poisoned, other;
} sweep_tally;

static void sweep_bad(long *count, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sweep_bad(long *count, const char *fmt, ...)
{
    va_list ap;

    if ((*count)++ < 5) {
        va_start(ap, fmt);
        fputs("sqlite fault sweep: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

/* One run of a small EVS_SYNC_FULL workload with I/O call `at` failed
 * (0: none), stopping at the first call that fails; then everything
 * acknowledged is checked on a fresh handle. Returns the number of
 * recorded I/O calls the run made. */
static uint64_t sweep_run(uint64_t seed, uint64_t at, int forever, int full,
                          sweep_tally *T)
{
    sqw_world W;
    evs_error_info ei;
    char rid[EVS_REQUEST_ID_LEN + 1];
    uint64_t calls, tried = 0; /* events of the append that failed */
    int acked_create = 0, acked_post = 0, failed = 0, rc = 0, step;
    evs_store_opts o;
    evs_store *s = NULL;

    sqw_init(&W, EVS_SYNC_FULL, seed);
    cr_assert_eq(spl_record(W.db), 0);
    spl_fail(at, forever, full);
    hook_n = 0;
    evs_store_opts_init(&o);
    o.log_fn = hook;
    rc = evs_store_open(W.loc, &o, &W.s);
    for (step = 0; rc == 0 && step < 12; step++) {
        sqw_exm *x = &W.ex[0];
        if (step == 0) {
            evs_event *ev = sqw_events(&W, 0, 1, 1, 0);
            evs_snapshot sn = sqw_snap_make(x, 0);
            rc = evs_exec_create(W.s, x->id, strlen(x->id), &sn, ev, 1);
            plc_free_events(ev, 1);
            if (rc == 0) {
                acked_create = 1;
                x->last = 1;
                x->upd_base = 1;
            } else {
                tried = 1;
            }
        } else if (step == 1) {
            rc = evs_log_open(W.s, x->id, strlen(x->id), EVS_LOG_WRITE, &x->l,
                              NULL, &ei);
            if (rc == 0)
                rc = plc_keep_lines(&x->lines, x->l, 1, 1, 0);
        } else if (step < 9) {
            size_t n = step % 3 == 0 ? 3 : 1;
            evs_event *ev = sqw_events(&W, 0, x->last + 1, n, step == 5);
            rc = evs_log_append(x->l, ev, n, x->last, &ei);
            plc_free_events(ev, n);
            if (rc == 0) {
                cr_assert_eq(plc_keep_lines(&x->lines, x->l, x->last + 1, n, 0),
                             0);
                x->last += n;
            } else {
                tried = n;
                evs_event again = tu_event("step_started", "again", "{}");
                int rc2 = evs_log_append(x->l, &again, 1, x->last, NULL);
                if (rc2 != EVS_EPOISONED)
                    sweep_bad(&T->not_poisoned,
                              "at %" PRIu64 ": after %s, the next append "
                              "gave %s",
                              at, evs_strerror(rc), evs_strerror(rc2));
            }
        } else if (step == 9) {
            rc = evs_request_post(W.s, x->id, strlen(x->id), "{\"a\":1}", 7,
                                  rid);
            acked_post = rc == 0;
        } else if (step == 10) {
            evs_snapshot sn = sqw_snap_make(x, 1);
            rc = evs_snapshot_save(W.s, x->id, strlen(x->id), &sn);
        } else {
            rc = evs_log_sync(x->l);
        }
    }
    if (rc != 0) {
        char want[4400];
        int named = 0;
        failed = 1;
        snprintf(want, sizeof(want), "store %s: ", W.loc);
        for (int i = 0; i < hook_n && i < 8; i++)
            named |= strncmp(hook_lines[i], want, strlen(want)) == 0;
        if (rc >= 0 || !named)
            sweep_bad(&T->bad_error,
                      "at %" PRIu64 ": %s without a line "
                      "naming the store (last: %s)",
                      at, evs_strerror(rc),
                      hook_n ? hook_lines[(hook_n - 1) % 8] : "none");
    }
    sqw_close_writers(&W);
    evs_store_close(W.s);
    W.s = NULL;
    calls = spl_calls();
    spl_stop();
    T->runs++;
    T->failed_calls += failed;

    /* Everything acknowledged is there; of the call that failed, all of
     * it or nothing. */
    rc = evs_store_open(W.loc, NULL, &s);
    if (rc != 0) {
        if (acked_create)
            sweep_bad(&T->lost,
                      "at %" PRIu64 ": the store does not open: "
                      "%s",
                      at, evs_strerror(rc));
        sqw_free(&W);
        return calls;
    }
    if (evs_exec_exists(s, W.ex[0].id, strlen(W.ex[0].id))) {
        const sqw_exm *x = &W.ex[0];
        size_t len, pos = 0;
        char *all = tu_log_lines(s, x->id, &len);
        uint64_t q;
        for (q = 1; q <= x->last; q++) {
            if (pos + x->lines.v[q].len > len ||
                memcmp(all + pos, x->lines.v[q].raw, x->lines.v[q].len)) {
                sweep_bad(&T->lost, "at %" PRIu64 ": sequence %" PRIu64 " lost",
                          at, q);
                break;
            }
            pos += x->lines.v[q].len;
        }
        if (pos < len) {
            long n = tu_count_events(s, x->id);
            if (!tried || n != (long)(x->last + tried))
                sweep_bad(&T->extra,
                          "at %" PRIu64 ": %ld events, %" PRIu64
                          " acknowledged, %" PRIu64 " in the failed call",
                          at, n, x->last, tried);
        }
        free(all);
        if (acked_post) {
            evs_request_listing rl;
            memset(&rl, 0, sizeof(rl));
            if (evs_request_list(s, x->id, strlen(x->id), &rl) != 0 ||
                rl.count != 1)
                sweep_bad(&T->lost, "at %" PRIu64 ": the request", at);
            evs_request_list_free(&rl);
        }
        {
            evs_log *l = NULL;
            evs_event ev = tu_event("step_started", "after", "{}");
            rc = evs_log_open(s, x->id, strlen(x->id), EVS_LOG_WRITE, &l, NULL,
                              NULL);
            if (rc == 0)
                rc = evs_log_append(l, &ev, 1, evs_log_last_seq(l), NULL);
            evs_log_close(l);
            if (rc != 0)
                sweep_bad(&T->other, "at %" PRIu64 ": append after: %s", at,
                          evs_strerror(rc));
        }
    } else if (acked_create) {
        sweep_bad(&T->lost, "at %" PRIu64 ": %s is gone", at, W.ex[0].id);
    }
    evs_store_close(s);
    sqw_free(&W);
    return calls;
}

/* Every write, truncate and sync of the database's files failed in
 * turn, once and from then on, as an I/O error and as a full disk: the
 * call fails with a negative code and a line naming the store, a log is
 * poisoned, nothing acknowledged is lost, the failed call is wholly in
 * or wholly out, and a writer appends afterwards. */
Test(sqlite_faults, each_io_call_failed_in_turn)
{
    uint64_t seed = tu_seed("EVS_SQLPL_SEED", "sqlite fault sweep");
    sweep_tally T = {0};
    uint64_t k;

    sqw_install();
    k = sweep_run(seed, 0, 0, 0, &T);
    cr_assert_gt(k, 10, "the workload made %" PRIu64 " I/O calls", k);
    cr_assert_eq(T.failed_calls, 0, "the workload fails without faults");
    for (uint64_t at = 1; at <= k; at++)
        for (int mode = 0; mode < 4; mode++)
            sweep_run(seed, at, mode & 1, mode >> 1, &T);
    fprintf(stderr,
            "sqlite fault sweep: %" PRIu64 " I/O calls, %ld runs, %ld "
            "failed a call; %ld lost, %ld extra, %ld errors unclear, %ld "
            "logs not poisoned, %ld other\n",
            k, T.runs, T.failed_calls, T.lost, T.extra, T.bad_error,
            T.not_poisoned, T.other);
    cr_expect_gt(T.failed_calls, (long)k, "the faults were not reached");
    cr_expect_eq(T.lost, 0);
    cr_expect_eq(T.extra, 0);
    cr_expect_eq(T.bad_error, 0);
    cr_expect_eq(T.not_poisoned, 0);
    cr_expect_eq(T.other, 0);
}
