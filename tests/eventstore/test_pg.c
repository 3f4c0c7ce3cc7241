/*
 * test_pg.c: what the PostgreSQL backend does of its own
 * (eventstore/BACKENDS.md): locations libpq cannot read or reach, the
 * schema's version, writers' leases and fencing tokens, a connection
 * dropped during an append, and lines and `evdump show --json` byte for
 * byte as the file backend writes them. Run through scripts/pg-test-server
 * (EVS_TEST_PG_URI); the shared store suites run on PostgreSQL as suite
 * `postgresql` (tests/meson.build).
 */
#include "store_int.h"
#include "evstore/orchestrator.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *dir;
static char loc[4300];
static char logged[2048];
static int log_lines;

static char all_logged[8192]; /* every line since it was emptied */

static void hook(void *ctx, const evs_log_record *r)
{
    size_t n = strlen(all_logged);

    (void)ctx;
    snprintf(logged, sizeof(logged), "%s", r->msg);
    snprintf(all_logged + n, sizeof(all_logged) - n, "%s\n", r->msg);
    log_lines++;
}

static void setup(void)
{
    dir = tu_tmpdir("pg");
    cr_assert_not_null(dir);
    /* This test's own schema (tu_loc makes one per directory). */
    setenv("EVS_TEST_BACKEND", "postgresql", 1);
    snprintf(loc, sizeof(loc), "%s", tu_loc(dir));
    logged[0] = '\0';
    log_lines = 0;
}

/* A small filesystem mounted for a tablespace (the full-disk test),
 * unmounted before the directory is removed. */
static char full_base[64], full_mnt[96];

static pid_t stopped_pm; /* a_runner_goes_on_while_its_watch_cannot_connect */

static void teardown(void)
{
    /* Never leave the server stopped, whatever failed. */
    if (stopped_pm > 0) {
        kill(stopped_pm, SIGCONT);
        stopped_pm = 0;
    }
    if (full_mnt[0]) {
        umount2(full_mnt, MNT_DETACH);
        rmdir(full_mnt);
        rmdir(full_base);
        full_mnt[0] = '\0';
    }
    tu_rmtree_free(dir);
    dir = NULL;
}

static evs_store *open_at(const char *where, uint32_t lease_ms, int create,
                          int *rc)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.log_fn = hook;
    o.lease_ms = lease_ms;
    o.create = create;
    *rc = evs_store_open(where, &o, &s);
    return s;
}

static evs_store *open_ok(uint32_t lease_ms)
{
    int rc;
    evs_store *s = open_at(loc, lease_ms, 1, &rc);

    cr_assert_eq(rc, 0, "open %s: %s (%s)", loc, evs_strerror(rc), logged);
    return s;
}

/* One integer from a query on this test's schema, on its own
 * connection. */
static long long raw_int(const char *sql)
{
    PGconn *c = PQconnectdb(loc + 0);
    PGresult *r;
    long long v = -1;

    /* loc is an evstore location and a libpq URI both. */
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    if (PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

TestSuite(pg, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------------ */
/* Locations and the schema                                           */
/* ------------------------------------------------------------------ */

Test(pg, a_uri_libpq_cannot_read_is_einval_in_one_line_naming_it)
{
    static const char *bad[] = {
        "postgresql:///evstore?host=%zz",
        "postgresql:///evstore?no_such_parameter=1",
        "postgres://[::1/evstore",
    };
    int rc;

    for (size_t i = 0; i < 3; i++) {
        log_lines = 0;
        cr_assert_null(open_at(bad[i], 0, 1, &rc));
        cr_assert_eq(rc, -EINVAL, "%s: %d", bad[i], rc);
        cr_assert_eq(log_lines, 1, "%s", bad[i]);
        cr_assert(strstr(logged, bad[i]) && strstr(logged, "URI") &&
                      !strchr(logged, '\n'),
                  "one line naming the store: %s", logged);
    }
}

Test(pg, an_unreachable_server_is_refused_and_the_tools_say_so)
{
    char where[512];
    int rc;

    snprintf(where, sizeof(where),
             "postgresql:///evstore?host=%s/no-server-here", dir);
    cr_assert_null(open_at(where, 0, 1, &rc));
    cr_assert_eq(rc, -ECONNREFUSED, "%d", rc);
    cr_assert(strstr(logged, where) && strstr(logged, "cannot connect"), "%s",
              logged);
    cr_assert_null(strchr(logged, '\n'), "one line: %s", logged);
    {
        const char *args[] = {"ls", where, NULL};
        tu_result t = tu_run_tool("EVDUMP", dir, "pg", args);

        cr_assert_eq(t.status, 3, "%d: %s", t.status, t.err);
        cr_assert(strstr(t.err, where) && strstr(t.err, "cannot connect"), "%s",
                  t.err);
        tu_result_free(&t);
    }
}

Test(pg, a_new_store_is_made_at_the_current_schema_and_not_without_create)
{
    int rc;
    evs_store *s;

    cr_assert_null(open_at(loc, 0, 0, &rc));
    cr_assert_eq(rc, -ENOENT, "no tables and no create: no store");
    s = open_ok(0);
    evs_store_close(s);
    cr_assert_eq(raw_int("SELECT version FROM evs_schema"), 4);
    /* Version 4: the large columns compressed with lz4 (Debian's
     * server is built with it). */
    cr_assert_eq(raw_int("SELECT count(*) FROM pg_attribute"
                         " WHERE attcompression = 'l' AND attrelid IN"
                         " ('executions'::regclass, 'events'::regclass,"
                         " 'requests'::regclass)"),
                 3);
    s = open_at(loc, 0, 0, &rc);
    cr_assert_eq(rc, 0, "made: opens without create");
    evs_store_close(s);
}

Test(pg, a_newer_schema_is_refused_with_its_version_named)
{
    evs_store *s = open_ok(0);
    int rc;

    evs_store_close(s);
    raw_int("WITH u AS (UPDATE evs_schema SET version = 99 RETURNING 1)"
            " SELECT count(*) FROM u");
    cr_assert_null(open_at(loc, 0, 1, &rc));
    cr_assert_eq(rc, EVS_EFORMAT);
    cr_assert(strstr(logged, "schema version 99 is newer") &&
                  strstr(logged, loc),
              "%s", logged);
    cr_assert_eq(raw_int("SELECT version FROM evs_schema"), 99,
                 "left as it was");
}

/* ------------------------------------------------------------------ */
/* Leases and fencing                                                 */
/* ------------------------------------------------------------------ */

static long long fence_of(const char *id)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT fence FROM executions WHERE id = '%s'",
             id);
    return raw_int(sql);
}

/* Ends `id`'s lease now, as time would: the server's clock passing
 * lease_until, without a test waiting for it. */
static void expire(const char *id)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "WITH u AS (UPDATE executions SET lease_until = 0 WHERE"
             " id = '%s' RETURNING 1) SELECT count(*) FROM u",
             id);
    cr_assert_eq(raw_int(sql), 1);
}

/* gc's delete in two halves: its claim, then the fenced DELETE. When the
 * claim ran out between them and another writer claimed the execution,
 * the DELETE matches no row: EVS_ELEASE, and nothing is deleted. */
Test(pg, a_delete_whose_claim_ran_out_and_was_taken_deletes_nothing)
{
    evs_store *s = open_ok(300);
    evs__trashed t;
    evs_log *l = NULL;

    cr_assert_eq(tu_create(s, "d1"), 0);
    cr_assert_eq(s->ops->exec_trash(s, "d1", UINT64_MAX, &t), 0);
    cr_assert_eq(evs_log_open(s, "d1", 2, EVS_LOG_WRITE, &l, NULL, NULL),
                 EVS_ELOCKED, "the delete's claim holds");
    usleep(450 * 1000);
    cr_assert_eq(evs_log_open(s, "d1", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0,
                 "the delete's claim ran out: %s", logged);
    cr_assert_eq(s->ops->trash_commit(s, &t, 1), EVS_ELEASE);
    cr_assert(strstr(logged, "not deleted"), "said: %s", logged);
    cr_assert(evs_exec_exists(s, "d1", 2));
    cr_assert_eq(evs_log_last_seq(l), 1);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(s, "d1"), 1);
    cr_assert_eq(evs_exec_delete(s, "d1", 2), 0, "a delete that holds works");
    cr_assert(!evs_exec_exists(s, "d1", 2));
    evs_store_close(s);
}

Test(pg, a_second_writer_is_refused_while_the_lease_holds)
{
    evs_store *a = open_ok(0), *b = open_ok(0);
    evs_error_info info;
    evs_log *wa, *wb;
    int64_t until = 0;

    cr_assert_eq(tu_create(a, "x"), 0);
    cr_assert_eq(fence_of("x"), 0);
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wa, NULL, NULL), 0);
    cr_assert_eq(fence_of("x"), 1, "each claim a new token");
    memset(&info, 0, sizeof(info));
    cr_assert_eq(evs_log_open(b, "x", 1, EVS_LOG_WRITE, &wb, NULL, &info),
                 EVS_ELOCKED);
    cr_assert(strstr(info.msg, "lease"), "%s", info.msg);
    cr_assert_eq(evs_exec_delete(b, "x", 1), EVS_ELOCKED);
    /* Two writers of one store exclude each other too. */
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wb, NULL, NULL),
                 EVS_ELOCKED);
    cr_assert_eq(fence_of("x"), 1, "a refused claim takes no token");
    /* A reader needs no lease. */
    cr_assert_eq(evs_log_open(b, "x", 1, 0, &wb, NULL, NULL), 0);
    cr_assert_eq(evs_log_renew(wb, NULL), EVS_EREADONLY);
    evs_log_close(wb);
    cr_assert_eq(evs_log_renew(wa, &until), 0);
    cr_assert_gt(until, 0);
    cr_assert_eq(tu_append_n(wa, 2), 0);
    /* Closing gives the lease up: the next writer need not wait. */
    evs_log_close(wa);
    cr_assert_eq(evs_log_open(b, "x", 1, EVS_LOG_WRITE, &wb, NULL, NULL), 0);
    cr_assert_eq(fence_of("x"), 2);
    cr_assert_eq(evs_log_last_seq(wb), 3);
    evs_log_close(wb);
    evs_store_close(a);
    evs_store_close(b);
}

Test(pg, a_successor_takes_an_expired_lease_and_the_first_writer_is_fenced)
{
    /* A short lease for the first writer; the successor's own is the
     * default, which no pause of this test's outlasts. */
    evs_store *a = open_ok(200), *b = open_ok(0);
    evs_error_info info;
    evs_log *wa, *wb;

    cr_assert_eq(tu_create(a, "x"), 0);
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wa, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(wa, 1), 0);
    /* The first writer pauses past its lease; the second, waiting for
     * it, takes over. */
    cr_assert_eq(
        evs_log_open(b, "x", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &wb, NULL, NULL),
        0);
    cr_assert_eq(fence_of("x"), 2);
    cr_assert_eq(evs_log_last_seq(wb), 2);
    /* The first writer's late append is refused, then its handle. */
    memset(&info, 0, sizeof(info));
    {
        evs_event ev = tu_event(EVS_EV_STEP_COMPLETED, "late", "{}");
        cr_assert_eq(evs_log_append(wa, &ev, 1, 2, &info), EVS_ELEASE);
        cr_assert(strstr(info.msg, "another writer claimed"), "%s", info.msg);
        cr_assert_eq(evs_log_append(wa, &ev, 1, 2, NULL), EVS_EPOISONED);
    }
    cr_assert_eq(evs_log_renew(wa, NULL), EVS_EPOISONED);
    cr_assert_eq(tu_append_n(wb, 1), 0, "the successor writes");
    /* Closing the fenced handle does not end the successor's lease. */
    evs_log_close(wa);
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wa, NULL, NULL),
                 EVS_ELOCKED);
    cr_assert_eq(tu_append_n(wb, 1), 0);
    evs_log_close(wb);
    cr_assert_eq(tu_count_events(a, "x"), 4, "no late event in the log");
    evs_store_close(a);
    evs_store_close(b);
}

Test(pg, a_renewal_after_a_successor_claimed_is_refused_and_says_why)
{
    /* The first writer's renewal reaches the server before any append
     * of its (a runner continued after a pause, its timer first):
     * refused by the token, logged with why, and the handle refuses
     * its appends. */
    evs_store *a = open_ok(200), *b = open_ok(0);
    evs_log *wa, *wb;

    cr_assert_eq(tu_create(a, "x"), 0);
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wa, NULL, NULL), 0);
    cr_assert_eq(
        evs_log_open(b, "x", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &wb, NULL, NULL),
        0);
    all_logged[0] = '\0';
    cr_assert_eq(evs_log_renew(wa, NULL), EVS_ELEASE);
    cr_assert(strstr(all_logged, "x: another writer claimed the execution "
                                 "(token 2, this writer's 1); lease renewal "
                                 "refused"),
              "said: %s", all_logged);
    cr_assert_eq(tu_append_n(wa, 1), EVS_EPOISONED);
    cr_assert_eq(tu_append_n(wb, 1), 0, "the successor writes");
    evs_log_close(wa);
    evs_log_close(wb);
    /* A writer whose execution was deleted under it (by hand: a
     * delete claims the lease first) is told so at renewal. */
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wa, NULL, NULL), 0);
    cr_assert_eq(raw_int("WITH d AS (DELETE FROM executions WHERE id = 'x'"
                         " RETURNING 1) SELECT count(*) FROM d"),
                 1);
    cr_assert_eq(evs_log_renew(wa, NULL), -ENOENT);
    cr_assert_eq(evs_log_renew(wa, NULL), EVS_EPOISONED);
    evs_log_close(wa);
    evs_store_close(a);
    evs_store_close(b);
}

Test(pg, an_append_with_its_snapshot_is_fenced_as_an_append_is)
{
    /* One statement: a writer whose execution was taken over writes
     * neither the events nor the snapshot, and the successor's stand. */
    evs_store *a = open_ok(200), *b = open_ok(0);
    evs_snapshot sn, *got = NULL;
    evs_event ev = tu_event(EVS_EV_STEP_COMPLETED, "late", "{}");
    evs_error_info info;
    evs_log *wa, *wb;
    int src = 0;

    cr_assert_eq(tu_create(a, "x"), 0);
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &wa, NULL, NULL), 0);
    cr_assert_eq(
        evs_log_open(b, "x", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &wb, NULL, NULL),
        0);
    sn = tu_snapshot_at(2, "completed");
    memset(&info, 0, sizeof(info));
    cr_assert_eq(evs_log_append_snapshot(wa, &ev, 1, 1, 0, &sn, 0, &src, &info),
                 EVS_ELEASE);
    cr_assert_eq(src, 1, "no snapshot tried");
    cr_assert(strstr(info.msg, "another writer claimed"), "%s", info.msg);
    evs_log_close(wa);
    evs_log_close(wb);
    cr_assert_eq(tu_count_events(a, "x"), 1, "no late event in the log");
    cr_assert_eq(evs_snapshot_load(a, "x", 1, &got, NULL), 0);
    cr_assert(!evs__span_eq_cstr(got->status, "completed"), "no late snapshot");
    cr_assert_eq(got->last_event_seq, 1);
    evs_snapshot_free(got);
    evs_store_close(a);
    evs_store_close(b);
}

Test(pg, the_last_append_releases_the_lease_before_the_close)
{
    /* The next writer need not wait for the first's close (nor its
     * lease), whether the release was in the append's statement (an
     * ended execution) or after it (one still waiting, which the queue
     * then offers). */
    evs_store *a = open_ok(0), *b = open_ok(0);
    const char *status[] = {"completed", "waiting"};

    for (int i = 0; i < 2; i++) {
        char id[16];
        evs_snapshot sn = tu_snapshot_at(2, status[i]);
        evs_event ev = tu_event(EVS_EV_STEP_COMPLETED, "s", "{}");
        evs_log *wa, *wb;
        int64_t until;
        int src = -1;

        snprintf(id, sizeof(id), "x%d", i);
        cr_assert_eq(tu_create(a, id), 0);
        cr_assert_eq(evs_log_open(a, id, 2, EVS_LOG_WRITE, &wa, NULL, NULL),
                     0);
        cr_assert_eq(evs_log_append_snapshot(wa, &ev, 1, 1, EVS_APPEND_RELEASE,
                                             &sn, 0, &src, NULL),
                     0);
        cr_assert_eq(src, 0);
        cr_assert_eq(evs_log_renew(wa, &until), EVS_EREADONLY);
        if (i == 0) {
            cr_assert_eq(
                evs_log_open(b, id, 2, EVS_LOG_WRITE, &wb, NULL, NULL), 0,
                "%s: taken at once", id);
        } else {
            cr_assert_eq(evs_log_claim(b, 0, &wb, NULL), 0,
                         "the queue offers the waiting one");
            cr_assert_str_eq(evs_log_id(wb), id);
        }
        cr_assert_eq(fence_of(id), 2);
        /* The first's close gives up nothing of the second's. */
        evs_log_close(wa);
        cr_assert_eq(tu_append_n(wb, 1), 0);
        evs_log_close(wb);
        cr_assert_eq(tu_count_events(a, id), 3);
    }
    evs_store_close(a);
    evs_store_close(b);
}

/* The orchestrator whose store's server takes no new connection: the
 * postmaster stopped (SIGSTOP), the sessions already made still served.
 * The watch's connection hangs; the loop must go on without it. Every
 * new session of the server waits meanwhile, so this suite runs one
 * test at a time (tests/meson.build). */
static atomic_int done_ok, done_at_cont;

static void noop_action(void *arg, evs_action_req *req)
{
    (void)arg;
    evs_action_complete(req, evs_span_cstr("{}"));
}

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    (void)arg;
    (void)id;
    (void)err;
    if (oc == EVS_OUTCOME_COMPLETED && !atomic_load(&done_at_cont))
        atomic_store(&done_ok, 1);
}

/* SIGCONTs the postmaster after 5 s (and the teardown does, should the
 * test fail first). */
static void *cont_later(void *arg)
{
    (void)arg;
    sleep(5);
    atomic_store(&done_at_cont, 1);
    kill(stopped_pm, SIGCONT);
    return NULL;
}

Test(pg, a_runner_goes_on_while_its_watch_cannot_connect)
{
    const char *def = "{\"name\":\"w\",\"steps\":[{\"name\":\"a\","
                      "\"kind\":\"action\",\"action\":\"noop\"}]}";
    evs_store_opts so;
    evs_orch_opts oo;
    evs_store *s = NULL;
    evs_orch *o = NULL;
    pthread_t t;
    long long backend;
    char path[64], buf[512];
    FILE *f;

    /* One connection, made now; the postmaster is the backend's
     * parent. */
    evs_store_opts_init(&so);
    so.log_fn = hook;
    so.connections = 1;
    cr_assert_eq(evs_store_open(loc, &so, &s), 0, "%s", logged);
    cr_assert_eq(tu_create(s, "warm"), 0);
    backend = raw_int("SELECT pid FROM pg_stat_activity WHERE"
                      " pid <> pg_backend_pid()"
                      " AND backend_type = 'client backend' LIMIT 1");
    cr_assert_gt(backend, 0);
    snprintf(path, sizeof(path), "/proc/%lld/stat", backend);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    cr_assert_eq(sscanf(strrchr(buf, ')') + 2, "%*c %d", &stopped_pm), 1);
    cr_assert_gt(stopped_pm, 1);

    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.on_outcome = on_outcome;
    cr_assert_eq(evs_orch_new(s, &oo, &o), 0);
    cr_assert_eq(evs_orch_register(o, "noop", noop_action, NULL, 0), 0);
    cr_assert_eq(kill(stopped_pm, SIGSTOP), 0);
    cr_assert_eq(pthread_create(&t, NULL, cont_later, NULL), 0);
    cr_assert_eq(evs_orch_start(o, evs_span_cstr(def), evs_span_cstr("{}"),
                                evs_span_cstr("x"), NULL, NULL),
                 0);
    cr_assert_eq(evs_orch_run(o), 0);
    pthread_join(t, NULL);
    evs_orch_free(o);
    evs_store_close(s);
    cr_assert(atomic_load(&done_ok),
              "the workflow completed while the watch could not connect");
}

Test(pg, an_append_after_the_lease_ran_out_is_refused_unless_renewed)
{
    evs_store *a = open_ok(0);
    evs_error_info info;
    evs_event ev = tu_event(EVS_EV_STEP_COMPLETED, "s", "{}");
    evs_log *w;
    int64_t until = 0;

    cr_assert_eq(tu_create(a, "x"), 0);
    cr_assert_eq(evs_log_open(a, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    /* Run out with no successor: a renewal takes it back, since no
     * other writer claimed it. */
    expire("x");
    cr_assert_eq(evs_log_renew(w, &until), 0);
    cr_assert_eq(tu_append_n(w, 1), 0);
    /* Run out again: the append itself is refused. */
    expire("x");
    memset(&info, 0, sizeof(info));
    cr_assert_eq(evs_log_append(w, &ev, 1, 2, &info), EVS_ELEASE);
    cr_assert(strstr(info.msg, "lease ran out"), "%s", info.msg);
    evs_log_close(w);
    cr_assert_eq(tu_count_events(a, "x"), 2);
    evs_store_close(a);
}

/* ------------------------------------------------------------------ */
/* A connection dropped during an append                              */
/* ------------------------------------------------------------------ */

typedef struct appender {
    evs_log *l;
    evs_event ev;
    int rc;
} appender;

static void *append_main(void *arg)
{
    appender *a = arg;

    a->rc = evs_log_append(a->l, &a->ev, 1, 1, NULL);
    return NULL;
}

/* The append's session is ended while the append waits for a row lock;
 * at durability d. */
static void dropped_append(evs_durability d)
{
    evs_store_opts o;
    evs_store *s = NULL;
    PGconn *hold = PQconnectdb(loc);
    PGresult *r;
    appender a;
    pthread_t t;
    evs_log *w;
    long long killed = 0;

    evs_store_opts_init(&o);
    o.log_fn = hook;
    o.durability = d;
    cr_assert_eq(evs_store_open(loc, &o, &s), 0, "%s", logged);
    cr_assert(PQstatus(hold) == CONNECTION_OK, "%s", PQerrorMessage(hold));
    cr_assert_eq(tu_create(s, "x"), 0);
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    memset(&a, 0, sizeof(a));
    a.l = w;
    a.ev = tu_event(EVS_EV_STEP_COMPLETED, "s", "{\"n\":1}");
    a.ev.id = evs_span_cstr("0190a000-0000-7000-8000-0000000000aa");
    /* Another session holds the execution's row, so the append waits
     * inside its statement; that session then ends the append's. */
    PQclear(PQexec(hold, "BEGIN"));
    r = PQexec(hold, "SELECT 1 FROM executions WHERE id = 'x' FOR UPDATE");
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
              PQresultErrorMessage(r));
    PQclear(r);
    cr_assert_eq(pthread_create(&t, NULL, append_main, &a), 0);
    while (killed == 0) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        r = PQexec(hold, "SELECT count(pg_terminate_backend(pid)) FROM"
                         " pg_stat_activity WHERE wait_event_type = 'Lock' AND"
                         " query LIKE 'WITH e AS (UPDATE executions%'");
        cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                  PQresultErrorMessage(r));
        killed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQclear(PQexec(hold, "ROLLBACK"));
    PQfinish(hold);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(a.rc, -ECONNRESET, "%d %s", a.rc, evs_strerror(a.rc));
    cr_assert_eq(tu_count_events(s, "x"), 1,
                 "wholly out; the store connects again");
    cr_assert_eq(evs_log_append(w, &a.ev, 1, 1, NULL), EVS_EPOISONED);
    /* Closing gives the lease up through a new connection: the retry
     * on a new handle need not wait for it. */
    evs_log_close(w);
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(w, &a.ev, 1, 1, NULL), 0, "the retry");
    evs_log_close(w);
    /* Had the first landed, the retry would be acknowledged the same
     * way, without writing. */
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(w, &a.ev, 1, 1, NULL), 0, "again");
    evs_log_close(w);
    cr_assert_eq(tu_count_events(s, "x"), 2, "it landed once");
    evs_store_close(s);
}

Test(pg, a_dropped_connection_fails_the_append_whole_and_a_retry_lands_once)
{
    dropped_append(EVS_SYNC_FULL);
}

/* Unsynced, the append runs at synchronous_commit off on a connection
 * the writer's claim left at on: the SET goes in one pipeline with it,
 * and the session ended mid-pipeline is the same -ECONNRESET. */
Test(pg, a_connection_dropped_in_a_pipelined_append_fails_it_whole)
{
    dropped_append(EVS_SYNC_NONE);
}

/* ------------------------------------------------------------------ */
/* Bytes                                                              */
/* ------------------------------------------------------------------ */

Test(pg, lines_and_evdump_show_are_byte_for_byte_those_of_files)
{
    char *fdir = tu_join(dir, "files"), *a, *b, *io;
    const char *kinds[2] = {"--json", NULL};
    evs_store *s = open_ok(0), *f;
    size_t na, nb;
    int rc;

    f = open_at(fdir, 0, 1, &rc);
    cr_assert_eq(rc, 0);
    tu_fill_fixed(s, "same");
    tu_fill_fixed(f, "same");
    a = tu_log_lines(s, "same", &na);
    b = tu_log_lines(f, "same", &nb);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(a, b, na) == 0, "postgresql:\n%.*s\nfiles:\n%.*s", (int)na,
              a, (int)nb, b);
    evs_store_close(s);
    evs_store_close(f);
    io = tu_tmpdir("pg-io");
    cr_assert_not_null(io);
    for (int k = 0; k < 2; k++) {
        const char *sargs[] = {"show", loc, "same", kinds[k], NULL};
        const char *fargs[] = {"show", fdir, "same", kinds[k], NULL};
        tu_result rs = tu_run_tool("EVDUMP", io, "show-pg", sargs);
        tu_result rf = tu_run_tool("EVDUMP", io, "show-files", fargs);

        cr_assert_eq(rs.status, 0, "%s", rs.err);
        cr_assert_eq(rf.status, 0, "%s", rf.err);
        cr_assert_gt(strlen(rs.out), 100);
        cr_assert_str_eq(rs.out, rf.out);
        if (kinds[k])
            cr_assert(memcmp(rs.out, a, na) == 0 && strlen(rs.out) == na,
                      "--json prints the lines as stored");
        tu_result_free(&rs);
        tu_result_free(&rf);
    }
    tu_rmtree_free(io);
    free(a);
    free(b);
    free(fdir);
}

Test(pg, a_damaged_line_is_refused_by_readers_and_writers)
{
    evs_store *s = open_ok(0);
    evs_error_info info;
    evs_cursor *c;
    evs_event ev;
    evs_log *l;

    tu_fill_fixed(s, "d");
    /* One byte of the second line's data changed, its checksum kept. */
    raw_int("WITH u AS (UPDATE events SET line = convert_to(replace("
            "convert_from(line, 'UTF8'), '2.50', '2.51'), 'UTF8')"
            " WHERE seq = 2 RETURNING 1) SELECT count(*) FROM u");
    cr_assert_eq(evs_log_open(s, "d", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, &info), EVS_ECORRUPT);
    cr_assert_eq(info.sequence, 2);
    cr_assert_str_eq(info.kind, "checksum");
    evs_cursor_close(c);
    evs_log_close(l);
    /* The last line damaged: a writer does not take the log. */
    raw_int("WITH u AS (UPDATE events SET line = convert_to(replace("
            "convert_from(line, 'UTF8'), '2.50', '9.50'), 'UTF8')"
            " WHERE seq = 3 RETURNING 1) SELECT count(*) FROM u");
    cr_assert_eq(evs_log_open(s, "d", 1, EVS_LOG_WRITE, &l, NULL, &info),
                 EVS_ECORRUPT);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* The work queue and notifications                                   */
/* ------------------------------------------------------------------ */

/* Runs a statement that changes rows, on its own connection. */
static void raw_exec(const char *sql)
{
    char q[1024];

    snprintf(q, sizeof(q), "WITH u AS (%s RETURNING 1) SELECT count(*) FROM u",
             sql);
    cr_assert_geq(raw_int(q), 0);
}

/* A durable function's run: its first event names a code_version. */
static int create_run(evs_store *s, const char *id)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL,
                           "{\"workflow_name\":\"fn\",\"code_version\":"
                           "\"v1\",\"inputs\":{}}");

    return evs_exec_create(s, id, strlen(id), NULL, &e, 1);
}

static int create_owned(evs_store *s, const char *id)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL,
                           "{\"workflow_name\":\"test\",\"inputs\":{}}");

    return evs_exec_create_flags(s, id, strlen(id), NULL, &e, 1,
                                 EVS_CREATE_OWNED);
}

/* Claims until the queue is empty: the ids claimed, in order, as
 * "a,b,"; the writers are left open in w[] (count in *n). */
static void claim_all(evs_store *s, char *ids, size_t cap, evs_log **w,
                      size_t *n)
{
    evs_log *l;
    int rc;

    ids[0] = '\0';
    *n = 0;
    while ((rc = evs_log_claim(s, 0, &l, NULL)) == 0) {
        size_t len = strlen(ids);
        snprintf(ids + len, cap - len, "%s,", evs_log_id(l));
        w[(*n)++] = l;
        cr_assert_lt(*n, 64, "the queue never ran dry");
    }
    cr_assert_eq(rc, -ENOENT, "%s", evs_strerror(rc));
}

Test(pg, the_queue_offers_only_unfinished_unheld_executions_that_are_no_run)
{
    evs_store *a = open_ok(0), *b = open_ok(0);
    evs_log *w[64], *held, *l, *free2;
    char ids[256];
    size_t n;

    cr_assert_eq(tu_create(a, "free1"), 0);
    cr_assert_eq(tu_create(a, "free2"), 0);
    cr_assert_eq(tu_create(a, "done"), 0);
    raw_exec("UPDATE executions SET status = 'completed' WHERE id = 'done'");
    cr_assert_eq(create_run(a, "fn"), 0);
    cr_assert_eq(create_owned(a, "mine"), 0);
    cr_assert_eq(tu_create(a, "held"), 0);
    cr_assert_eq(evs_log_open(a, "held", 4, EVS_LOG_WRITE, &held, NULL, NULL),
                 0);
    cr_assert_eq(raw_int("SELECT count(*) FROM executions WHERE run"), 1,
                 "the run is marked at its creation");
    /* Never claimed ones first, then in order of their rows. */
    claim_all(b, ids, sizeof(ids), w, &n);
    cr_assert_str_eq(ids, "free1,free2,");
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tu_append_n(w[i], 1), 0, "a claimed writer appends");
        cr_assert_eq(fence_of(evs_log_id(w[i])), 1, "one token per claim");
    }
    /* The owned one's creator claims it by id at once. */
    cr_assert_eq(evs_log_open(a, "mine", 4, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    evs_log_close(l);
    /* Released unfinished: offered again, in the order they were
     * given up ("mine" by its creator, above, first). free2 stays
     * held to the end. */
    free2 = w[1];
    evs_log_close(w[0]);
    cr_assert_eq(evs_log_claim(a, 0, &l, NULL), 0);
    cr_assert_str_eq(evs_log_id(l), "mine");
    evs_log_close(l);
    claim_all(b, ids, sizeof(ids), w, &n);
    cr_assert_str_eq(ids, "free1,mine,", "free1 given up before mine again");
    cr_assert_eq(evs_log_last_seq(w[0]), 2, "the claim reads the log's end");
    evs_log_close(w[0]);
    evs_log_close(w[1]);
    /* A lease run out is offered; expire() ends it at time 0, before
     * the others were given up. */
    expire("held");
    claim_all(b, ids, sizeof(ids), w, &n);
    cr_assert_str_eq(ids, "held,free1,mine,");
    cr_assert_eq(tu_append_n(held, 1), EVS_ELEASE, "the old holder is fenced");
    evs_log_close(held);
    evs_log_close(free2);
    for (size_t i = 0; i < n; i++)
        evs_log_close(w[i]);
    cr_assert_eq(evs_log_claim(a, 1, &l, NULL), -EINVAL, "flags must be 0");
    evs_store_close(a);
    evs_store_close(b);
}

/* The queue's order is the time each became free, creations included:
 * an execution whose runner died comes before work created after its
 * lease ran out, so a stream of new work cannot starve it. */
Test(pg, work_a_dead_runner_left_is_offered_before_newer_work)
{
    evs_store *dead = open_ok(300), *b = open_ok(0);
    evs_log *lost, *w[64];
    char ids[256];
    size_t n;

    cr_assert_eq(tu_create(b, "old"), 0);
    cr_assert_eq(evs_log_claim(dead, 0, &lost, NULL), 0);
    cr_assert_str_eq(evs_log_id(lost), "old");
    /* Its runner dies: nobody renews the lease, which runs out. */
    usleep(400 * 1000);
    cr_assert_eq(tu_create(b, "new1"), 0);
    cr_assert_eq(tu_create(b, "new2"), 0);
    claim_all(b, ids, sizeof(ids), w, &n);
    cr_assert_str_eq(ids, "old,new1,new2,");
    cr_assert_eq(tu_append_n(lost, 1), EVS_ELEASE, "the dead one is fenced");
    for (size_t i = 0; i < n; i++)
        evs_log_close(w[i]);
    evs_log_close(lost);
    evs_store_close(dead);
    evs_store_close(b);
}

Test(pg, a_created_owned_execution_waits_a_lease_before_others_may_claim_it)
{
    evs_store *a = open_ok(0), *b = open_ok(0);
    evs_log *l;

    cr_assert_eq(create_owned(a, "mine"), 0);
    cr_assert_eq(evs_log_claim(b, 0, &l, NULL), -ENOENT);
    /* Its creator died before claiming it: the lease's time passes. */
    expire("mine");
    cr_assert_eq(evs_log_claim(b, 0, &l, NULL), 0);
    cr_assert_str_eq(evs_log_id(l), "mine");
    evs_log_close(l);
    evs_store_close(a);
    evs_store_close(b);
}

#define RACE_EXECS 60

typedef struct claimer {
    evs_store *s;
    evs_log *mine[RACE_EXECS];
    int n, err;
} claimer;

/* Each keeps what it claimed open until all are done: a second claim
 * of one execution could then only come from the queue giving it
 * twice. */
static void *claim_main(void *arg)
{
    claimer *c = arg;
    evs_log *l;
    int rc;

    while (c->n < RACE_EXECS && (rc = evs_log_claim(c->s, 0, &l, NULL)) == 0)
        c->mine[c->n++] = l;
    if (c->n < RACE_EXECS && rc != -ENOENT)
        c->err = rc;
    return NULL;
}

Test(pg, runners_claiming_at_once_each_take_different_executions)
{
    evs_store *a = open_ok(0);
    claimer c[3];
    pthread_t t[3];
    int seen[RACE_EXECS] = {0}, total = 0;

    for (int i = 0; i < RACE_EXECS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i);
        cr_assert_eq(tu_create(a, id), 0);
    }
    for (int k = 0; k < 3; k++) {
        memset(&c[k], 0, sizeof(c[k]));
        c[k].s = open_ok(0);
        cr_assert_eq(pthread_create(&t[k], NULL, claim_main, &c[k]), 0);
    }
    for (int k = 0; k < 3; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(c[k].err, 0, "claimer %d: %s", k, evs_strerror(c[k].err));
        for (int i = 0; i < c[k].n; i++) {
            const char *id = evs_log_id(c[k].mine[i]);
            int e = atoi(id + 1);
            cr_assert(e >= 0 && e < RACE_EXECS);
            cr_assert_eq(seen[e]++, 0, "%s claimed twice", id);
            total++;
        }
    }
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < c[k].n; i++)
            evs_log_close(c[k].mine[i]);
        evs_store_close(c[k].s);
    }
    cr_assert_eq(total, RACE_EXECS, "every execution claimed once");
    cr_assert_eq(raw_int("SELECT max(fence) FROM executions"), 1,
                 "no execution claimed twice, even briefly");
    evs_store_close(a);
}

/* The pool: a store's threads share at most evs_store_opts.connections
 * connections, and every append lands. */
typedef struct pool_writer {
    evs_store *s;
    char id[16];
    int err;
} pool_writer;

#define POOL_APPENDS 40

static void *pool_write(void *arg)
{
    pool_writer *w = arg;
    evs_log *l = NULL;

    w->err = evs_log_open(w->s, w->id, strlen(w->id), EVS_LOG_WRITE, &l, NULL,
                          NULL);
    for (int i = 0; i < POOL_APPENDS && w->err == 0; i++) {
        evs_event ev = tu_event(EVS_EV_STEP_COMPLETED, "s", "{}");
        w->err = evs_log_append(l, &ev, 1, (uint64_t)i + 1, NULL);
    }
    evs_log_close(l);
    return NULL;
}

static long long sessions_named(const char *app)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name "
             "= '%s'",
             app);
    return raw_int(sql);
}

Test(pg, a_store_s_threads_share_at_most_its_connections)
{
    char where[4400], app[32];
    evs_store_opts o;
    evs_store *s = NULL;
    pool_writer w[8];
    pthread_t t[8];
    long long most = 0;
    int running, joined[8] = {0};

    snprintf(app, sizeof(app), "evs-pool-%d", (int)getpid());
    snprintf(where, sizeof(where), "%s%sapplication_name=%s", loc,
             strchr(loc, '?') ? "&" : "?", app);
    evs_store_opts_init(&o);
    o.log_fn = hook;
    o.connections = 65;
    cr_assert_eq(evs_store_open(where, &o, &s), -EINVAL, "at most 64");
    o.connections = 2;
    cr_assert_eq(evs_store_open(where, &o, &s), 0, "%s", logged);
    cr_assert_eq(sessions_named(app), 1, "one connection made at open");
    for (int k = 0; k < 8; k++) {
        w[k] = (pool_writer){.s = s};
        snprintf(w[k].id, sizeof(w[k].id), "p%d", k);
        cr_assert_eq(tu_create(s, w[k].id), 0);
    }
    for (int k = 0; k < 8; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, pool_write, &w[k]), 0);
    /* While the eight write, and after, the store has two at most. */
    do {
        long long n = sessions_named(app);
        most = n > most ? n : most;
        running = 0;
        for (int k = 0; k < 8; k++)
            if (!joined[k] && !(joined[k] = pthread_tryjoin_np(t[k], NULL) == 0))
                running = 1;
    } while (running);
    most = sessions_named(app) > most ? sessions_named(app) : most;
    for (int k = 0; k < 8; k++) {
        cr_assert_eq(w[k].err, 0, "%s: %s", w[k].id, evs_strerror(w[k].err));
        cr_assert_eq(tu_count_events(s, w[k].id), 1 + POOL_APPENDS);
    }
    cr_assert_eq(most, 2, "the pool's two, made when the first was busy");
    evs_store_close(s);
    cr_assert_eq(sessions_named(app), 0, "all ended at close");
}

/* What a watch heard, as "kID," entries. */
static char heard[1024];

static void on_note(void *arg, int kind, const char *id, size_t len)
{
    size_t n = strlen(heard);

    (void)arg;
    snprintf(heard + n, sizeof(heard) - n, "%c%.*s,", kind, (int)len, id);
}

/* Waits (up to 10 s) for the watch's descriptor, then reads it until
 * `want` notifications came; returns the last read's result. */
static int hear(evs_watch *w, int want)
{
    int got = 0, rc = 0;

    heard[0] = '\0';
    while (got < want) {
        struct pollfd p = {.fd = evs_watch_fd(w), .events = POLLIN};
        if (poll(&p, 1, 10000) != 1)
            break;
        if ((rc = evs_watch_read(w, on_note, NULL)) < 0)
            return rc;
        got += rc;
    }
    return got;
}

Test(pg, a_watch_hears_posts_and_offered_work_at_their_commit)
{
    evs_store *a = open_ok(0), *b = open_ok(0);
    char req[EVS_REQUEST_ID_LEN + 1];
    evs_watch *w;
    evs_log *l;

    cr_assert_eq(evs_watch_open(a, &w), 0);
    cr_assert_geq(evs_watch_fd(w), 0);
    cr_assert_eq(evs_watch_read(w, on_note, NULL), 0, "nothing yet");
    /* Offered at once; an owned one, and a run, are not. */
    cr_assert_eq(create_owned(b, "mine"), 0);
    cr_assert_eq(create_run(b, "fn"), 0);
    cr_assert_eq(tu_create(b, "x"), 0);
    cr_assert_eq(hear(w, 1), 1);
    cr_assert_str_eq(heard, "fx,");
    /* A request, from any handle. */
    cr_assert_eq(evs_request_post(b, "mine", 4, "{\"type\":\"go\"}", 13, req),
                 0);
    cr_assert_eq(hear(w, 1), 1);
    cr_assert_str_eq(heard, "rmine,");
    /* Released unfinished: offered again; a request to nothing: none. */
    cr_assert_eq(evs_log_open(b, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    evs_log_close(l);
    cr_assert_eq(evs_request_post(b, "nope", 4, "{\"type\":\"go\"}", 13, req),
                 -ENOENT);
    cr_assert_eq(tu_create(b, "y"), 0);
    cr_assert_eq(hear(w, 2), 2);
    cr_assert_str_eq(heard, "fx,fy,", "in commit order, nothing else");
    /* Another store's schema in the same database is not heard. */
    {
        char other[4400];
        evs_store *c;
        int rc;
        char odir[1024];
        snprintf(odir, sizeof(odir), "%s/other", dir);
        snprintf(other, sizeof(other), "%s", tu_loc(odir));
        c = open_at(other, 0, 1, &rc);
        cr_assert_eq(rc, 0, "%s", logged);
        cr_assert_eq(tu_create(c, "z"), 0);
        evs_store_close(c);
    }
    cr_assert_eq(tu_create(b, "last"), 0);
    cr_assert_eq(hear(w, 1), 1, "%s", heard);
    cr_assert_str_eq(heard, "flast,", "only this store's");
    evs_watch_close(w);
    evs_store_close(a);
    evs_store_close(b);
}

Test(pg, a_watch_whose_session_is_ended_says_so_and_a_new_one_hears_again)
{
    evs_store *a = open_ok(0), *b = open_ok(0);
    evs_watch *w;
    int rc;

    char schema[40], sql[256];

    cr_assert_eq(evs_watch_open(a, &w), 0);
    /* This store's channel (pg_store.c): other tests listen too. */
    tu_pg_schema(dir, schema, sizeof(schema));
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE query = 'LISTEN \"evs_%016llx\"'",
             (unsigned long long)evs_checksum(schema, strlen(schema)));
    cr_assert_eq(raw_int(sql), 1, "%s", sql);
    rc = hear(w, 1);
    cr_assert_eq(rc, -ECONNRESET, "%d", rc);
    evs_watch_close(w);
    cr_assert_eq(evs_watch_open(a, &w), 0);
    cr_assert_eq(tu_create(b, "x"), 0);
    cr_assert_eq(hear(w, 1), 1);
    cr_assert_str_eq(heard, "fx,");
    evs_watch_close(w);
    evs_store_close(a);
    evs_store_close(b);
}

Test(pg, schema_1_is_migrated_and_its_runs_are_found_in_their_first_line)
{
    evs_store *a = open_ok(0);
    int rc;

    cr_assert_eq(tu_create(a, "wf"), 0);
    cr_assert_eq(create_run(a, "fn"), 0);
    evs_store_close(a);
    /* Back to version 1's shape, as a store made by the last release. */
    raw_int("WITH d AS (SELECT 1) SELECT count(*) FROM d");
    {
        PGconn *c = PQconnectdb(loc);
        PGresult *r = PQexec(c, "DROP TABLE schedules;"
                                "DROP INDEX executions_queue;"
                                "ALTER TABLE executions DROP COLUMN run;"
                                "UPDATE evs_schema SET version = 1");
        cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
                  PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
    }
    a = open_at(loc, 0, 0, &rc);
    cr_assert_eq(rc, 0, "%s", logged);
    cr_assert_eq(raw_int("SELECT version FROM evs_schema"), 4);
    cr_assert_eq(raw_int("SELECT count(*) FROM schedules"), 0,
                 "version 3's table");
    cr_assert_eq(raw_int("SELECT count(*) FROM executions WHERE run"), 1);
    cr_assert_eq(raw_int("SELECT count(*) FROM executions WHERE run AND"
                         " id = 'fn'"),
                 1);
    evs_store_close(a);
}

/* ------------------------------------------------------------------ */
/* A full disk on the server                                          */
/* ------------------------------------------------------------------ */

/* Runs sql on this test's server (no rows wanted). */
static void raw_cmd(const char *sql)
{
    PGconn *c = PQconnectdb(loc);
    PGresult *r;

    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* The store's tables in a tablespace on a 1 MiB tmpfs: the server's
 * data files fill it (its WAL is elsewhere, so the server stays up). */
Test(pg, a_full_disk_on_the_server_is_enospc_naming_the_store_and_loses_nothing)
{
    char ts[64], sql[1400], where[4500], schema[40], big[60000];
    struct passwd *pw = getpwnam("postgres");
    evs_store *s;
    evs_log *w;
    uint64_t acked = 0;
    int rc = 0;

    if (geteuid() != 0)
        cr_skip_test("mounting the small filesystem needs root (CI runs as "
                     "root)");
    /* Where the server's user may reach it: the tests' directories are
     * their owner's alone. */
    snprintf(full_base, sizeof(full_base), "/tmp/evs-full-XXXXXX");
    cr_assert_not_null(mkdtemp(full_base));
    cr_assert_eq(chmod(full_base, 0711), 0);
    snprintf(full_mnt, sizeof(full_mnt), "%s/ts", full_base);
    cr_assert_eq(mkdir(full_mnt, 0700), 0);
    cr_assert_eq(mount("evs-full", full_mnt, "tmpfs", 0, "size=1m,mode=0700"),
                 0, "mount a tmpfs: %s", strerror(errno));
    /* The server runs as postgres when the tests run as root. */
    cr_assert_not_null(pw, "no postgres user");
    cr_assert_eq(chown(full_mnt, pw->pw_uid, pw->pw_gid), 0);
    snprintf(ts, sizeof(ts), "evs_full_%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE TABLESPACE %s LOCATION '%s'", ts,
             full_mnt);
    raw_cmd(sql);
    tu_pg_schema(dir, schema, sizeof(schema));
    snprintf(where, sizeof(where),
             "%s%soptions=-csearch_path%%3D%s%%20-cdefault_tablespace%%3D%s",
             tu_pg_uri(), strchr(tu_pg_uri(), '?') ? "&" : "?", schema, ts);
    /* A short lease: the failed writer's close may find no room to
     * release it either, and the next writer then waits it out. */
    s = open_at(where, 1000, 1, &rc);
    cr_assert_eq(rc, 0, "open: %s", logged);
    cr_assert_eq(tu_create(s, "x"), 0);
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    /* Lines that do not compress (TOAST would shrink repeated bytes). */
    {
        uint64_t x = 88172645463325252ULL;
        memcpy(big, "{\"blob\":\"", 9);
        for (size_t i = 9; i < sizeof(big) - 3; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36];
        }
        memcpy(big + sizeof(big) - 3, "\"}", 3);
    }
    log_lines = 0;
    all_logged[0] = '\0';
    while (acked < 200) {
        evs_event e = tu_event(EVS_EV_STEP_COMPLETED, "work", big);
        rc = evs_log_append(w, &e, 1, evs_log_last_seq(w), NULL);
        if (rc != 0)
            break;
        acked++;
    }
    cr_assert_eq(rc, -ENOSPC, "appends end with -ENOSPC, not %s after %llu",
                 evs_strerror(rc), (unsigned long long)acked);
    cr_assert_gt(acked, 0);
    /* The server's reason, in a line naming the store. */
    {
        const char *l = strstr(all_logged, "No space left on device");
        cr_assert_not_null(l, "%s", all_logged);
        while (l > all_logged && l[-1] != '\n')
            l--;
        cr_assert(strncmp(l, "store postgresql:", 17) == 0 &&
                      strstr(l, schema) &&
                      strstr(l, schema) < strchr(l, '\n'),
                  "a line naming the store: %s", all_logged);
    }
    {
        evs_event e = tu_event(EVS_EV_STEP_COMPLETED, "work", "{}");
        cr_assert_eq(evs_log_append(w, &e, 1, evs_log_last_seq(w), NULL),
                     EVS_EPOISONED, "the failed writer is poisoned");
    }
    evs_log_close(w);
    /* Nothing acknowledged is lost; then, with room again, a new writer
     * goes on where the log ends. */
    cr_assert_eq(tu_count_events(s, "x"), (long)acked + 1);
    cr_assert_eq(mount(NULL, full_mnt, NULL, MS_REMOUNT, "size=64m"), 0,
                 "remount: %s", strerror(errno));
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &w,
                              NULL, NULL),
                 0);
    cr_assert_eq(evs_log_last_seq(w), acked + 1);
    cr_assert_eq(tu_append_n(w, 3), 0);
    evs_log_close(w);
    cr_assert_eq(tu_count_events(s, "x"), (long)acked + 4);
    evs_store_close(s);
    {
        /* DROP TABLESPACE cannot run in a transaction block: one by one. */
        char one[256];
        snprintf(one, sizeof(one), "DROP SCHEMA %s CASCADE", schema);
        raw_cmd(one);
        snprintf(one, sizeof(one), "DROP TABLESPACE %s", ts);
        raw_cmd(one);
    }
}

/* ------------------------------------------------------------------ */
/* Schedules                                                          */
/* ------------------------------------------------------------------ */

/* A schedule's lock is a lease with a fencing token (BACKENDS.md,
 * "Schedules"): a holder whose lease ran out and was claimed by another
 * writes nothing (EVS_ELEASE); a holder whose connection was dropped
 * keeps its lease on the next connection; a damaged row is refused. */
Test(pg, a_schedule_lock_is_a_fenced_lease)
{
    evs_store *a = open_ok(300), *b = open_ok(300);
    evs_schedule *ha = NULL, *hb = NULL, *r = NULL;

    cr_assert_eq(evs_schedule_create(a, "tick", evs_span_cstr("{\"a\":1}"),
                                     evs_span_cstr("{\"n\":0}")),
                 0);
    cr_assert_eq(evs_schedule_open(a, "tick", EVS_SCHEDULE_LOCK, &ha), 0);
    /* The connection dropped (a's, the only one that read schedules):
     * the lease is in the table, not the session. */
    cr_assert_eq(evs_schedule_save(ha, evs_span_cstr("{\"n\":1}")), 0);
    cr_assert_eq(raw_int("SELECT count(pg_terminate_backend(pid)) FROM"
                         " pg_stat_activity WHERE pid <> pg_backend_pid()"
                         " AND query LIKE '%FROM schedules%'"),
                 1);
    cr_expect_eq(evs_schedule_save(ha, evs_span_cstr("{\"n\":2}")),
                 -ECONNRESET);
    cr_assert_eq(evs_schedule_save(ha, evs_span_cstr("{\"n\":3}")), 0,
                 "the same lease on a new connection");
    cr_expect_eq(evs_schedule_open(b, "tick", EVS_SCHEDULE_LOCK, &hb),
                 EVS_ELOCKED);
    /* The lease runs out; b claims it; a's writes are refused. */
    nanosleep(&(struct timespec){0, 400 * 1000 * 1000}, NULL);
    cr_assert_eq(evs_schedule_open(b, "tick", EVS_SCHEDULE_LOCK, &hb), 0);
    cr_expect_eq(evs_schedule_save(ha, evs_span_cstr("{\"n\":4}")), EVS_ELEASE);
    cr_expect_eq(evs_schedule_remove(ha), EVS_ELEASE);
    cr_assert_eq(evs_schedule_open(b, "tick", 0, &r), 0);
    cr_expect(evs_schedule_state(r).len == 7 &&
                  memcmp(evs_schedule_state(r).ptr, "{\"n\":3}", 7) == 0,
              "%.*s", (int)evs_schedule_state(r).len,
              evs_schedule_state(r).ptr);
    evs_schedule_close(r);
    cr_assert_eq(evs_schedule_save(hb, evs_span_cstr("{\"n\":5}")), 0);
    evs_schedule_close(ha); /* releases nothing of b's */
    cr_expect_eq(evs_schedule_save(hb, evs_span_cstr("{\"n\":6}")), 0);
    evs_schedule_close(hb);
    /* Closed: free at once, whatever the lease's length. */
    cr_assert_eq(evs_schedule_open(a, "tick", EVS_SCHEDULE_LOCK, &ha), 0);
    evs_schedule_close(ha);

    /* A changed byte of the row: the checksum refuses it. */
    raw_int("WITH u AS (UPDATE schedules SET body = overlay(body PLACING"
            " '9'::bytea FROM position('\"n\":6'::bytea IN body) + 4)"
            " RETURNING 1) SELECT count(*) FROM u");
    r = NULL;
    cr_expect_eq(evs_schedule_open(a, "tick", 0, &r), EVS_ECORRUPT);
    cr_expect_null(r);
    evs_store_close(a);
    evs_store_close(b);
}
