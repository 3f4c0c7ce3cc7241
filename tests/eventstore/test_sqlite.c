/*
 * test_sqlite.c: what the SQLite backend does in place of the file
 * backend's files (eventstore/BACKENDS.md): locations, the schema's
 * version, the database's modes, the writers' locks across processes
 * and after a kill, lines byte for byte as the file backend writes them,
 * damage refused, the inbox's change counter, the durability modes, and
 * acknowledged appends surviving SIGKILL. The shared store suites run on
 * SQLite as suite `sqlite` (tests/meson.build).
 */
#include "sqlite_int.h"
#include "testutil.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static char loc[4300], db[4200];
static char logged[2048];

static void hook(void *ctx, const evs_log_record *r)
{
    (void)ctx;
    snprintf(logged, sizeof(logged), "%s", r->msg);
}

static void setup(void)
{
    dir = tu_tmpdir("sqlite");
    cr_assert_not_null(dir);
    snprintf(db, sizeof(db), "%s/store.db", dir);
    snprintf(loc, sizeof(loc), "sqlite:%s", db);
    logged[0] = '\0';
}

static void teardown(void)
{
    tu_rmtree_free(dir);
    dir = NULL;
}

static evs_store *open_at(const char *where, evs_durability d, int *rc)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.durability = d;
    o.log_fn = hook;
    *rc = evs_store_open(where, &o, &s);
    return s;
}

static evs_store *open_ok(evs_durability d)
{
    int rc;
    evs_store *s = open_at(loc, d, &rc);

    cr_assert_eq(rc, 0, "open %s: %s (%s)", loc, evs_strerror(rc), logged);
    return s;
}

/* Runs one statement on the database behind the library's back. */
static void raw_sql(const char *sql)
{
    sqlite3 *h = NULL;
    char *err = NULL;

    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s",
                 sql, err ? err : "");
    sqlite3_close(h);
}

static int raw_int(const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;

    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

TestSuite(sqlite, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------------ */
/* Locations and the schema                                           */
/* ------------------------------------------------------------------ */

Test(sqlite, a_location_sqlite_with_no_path_is_einval)
{
    int rc;

    cr_assert_null(open_at("sqlite:", EVS_SYNC_FULL, &rc));
    cr_assert_eq(rc, -EINVAL, "sqlite: names no file");
}

Test(sqlite, a_new_store_is_one_private_file_at_the_current_schema)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    struct stat sb;
    char wal[4300];

    cr_assert_eq(tu_create(s, "e"), 0);
    cr_assert_eq(stat(db, &sb), 0);
    cr_assert(S_ISREG(sb.st_mode));
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    cr_assert_eq(stat(wal, &sb), 0, "WAL mode");
    cr_assert_eq(sb.st_mode & 0777, 0600);
    evs_store_close(s);
    cr_assert_eq(raw_int("SELECT version FROM evs_schema"), EVS__SQ_SCHEMA);
    cr_assert_eq(raw_int("SELECT count(*) FROM evs_schema"), 1);
}

Test(sqlite, a_newer_schema_is_refused_with_its_version_named)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    int rc;

    cr_assert_eq(tu_create(s, "e"), 0);
    evs_store_close(s);
    raw_sql("UPDATE evs_schema SET version = 99");
    cr_assert_null(open_at(loc, EVS_SYNC_FULL, &rc));
    cr_assert_eq(rc, EVS_EFORMAT);
    cr_assert(strstr(logged, "schema version 99") && strstr(logged, db),
              "%s", logged);
    /* Refused, not changed. */
    cr_assert_eq(raw_int("SELECT version FROM evs_schema"), 99);
    raw_sql("UPDATE evs_schema SET version = 2");
    s = open_ok(EVS_SYNC_FULL);
    cr_assert(evs_exec_exists(s, "e", 1));
    evs_store_close(s);
}

/* Version 2 adds the schedules table: a database of version 1, as the
 * last release made it, is migrated when opened and keeps its
 * executions; a schedule's row is its checked line. */
Test(sqlite, a_version_1_database_gains_schedules_and_damage_is_refused)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    evs_schedule *h = NULL;

    cr_assert_eq(tu_create(s, "e"), 0);
    evs_store_close(s);
    raw_sql("DROP TABLE schedules; UPDATE evs_schema SET version = 1");
    s = open_ok(EVS_SYNC_FULL);
    cr_assert_eq(raw_int("SELECT version FROM evs_schema"), 2);
    cr_assert(evs_exec_exists(s, "e", 1));
    cr_assert_eq(evs_schedule_create(s, "tick", evs_span_cstr("{\"a\":1}"),
                                     evs_span_cstr("{}")),
                 0);
    cr_assert_eq(evs_schedule_create(s, "tick", evs_span_cstr("{}"),
                                     evs_span_cstr("{}")),
                 -EEXIST);
    cr_assert_eq(raw_int("SELECT count(*) FROM schedules WHERE name = 'tick'"
                         " AND updated_at > 0"),
                 1);
    cr_assert_eq(evs_schedule_open(s, "tick", 0, &h), 0);
    cr_expect(evs__span_eq_cstr(evs_schedule_spec(h), "{\"a\":1}"));
    evs_schedule_close(h);
    /* One byte of the document changed: the checksum refuses it. */
    raw_sql("UPDATE schedules SET body = CAST(replace(CAST(body AS TEXT),"
            " '\"a\":1', '\"a\":2') AS BLOB)");
    cr_assert_eq(raw_int("SELECT count(*) FROM schedules WHERE"
                         " instr(body, '\"a\":2') > 0"),
                 1);
    h = NULL;
    cr_expect_eq(evs_schedule_open(s, "tick", 0, &h), EVS_ECORRUPT);
    cr_expect_null(h);
    /* Cut short: refused as well. */
    raw_sql("UPDATE schedules SET body = substr(body, 1, 20)");
    cr_expect_eq(evs_schedule_open(s, "tick", 0, &h), EVS_ECORRUPT);
    evs_store_close(s);
}

Test(sqlite, a_missing_database_without_create_is_enoent_and_made_with_it)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.create = 0;
    cr_assert_eq(evs_store_open(loc, &o, &s), -ENOENT);
    cr_assert_eq(access(db, F_OK), -1, "nothing made");
    o.create = 1;
    cr_assert_eq(evs_store_open(loc, &o, &s), 0);
    evs_store_close(s);
    cr_assert_eq(access(db, F_OK), 0);
}

Test(sqlite, a_database_others_may_write_is_refused_unless_allowed)
{
    evs_store_opts o;
    evs_store *s = open_ok(EVS_SYNC_FULL);

    evs_store_close(s);
    cr_assert_eq(chmod(db, 0620), 0);
    evs_store_opts_init(&o);
    s = NULL;
    cr_assert_eq(evs_store_open(loc, &o, &s), EVS_EUNSAFE);
    o.allow_unsafe_perms = 1;
    cr_assert_eq(evs_store_open(loc, &o, &s), 0);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Bytes                                                              */
/* ------------------------------------------------------------------ */

Test(sqlite, lines_and_evdump_show_are_byte_for_byte_those_of_files)
{
    char *fdir = tu_join(dir, "files"), *a, *b, *file_log, *io;
    const char *kinds[2] = {"--json", NULL};
    evs_store *s = open_ok(EVS_SYNC_FULL), *f;
    size_t na, nb, nf;
    int rc;

    f = open_at(fdir, EVS_SYNC_FULL, &rc);
    cr_assert_eq(rc, 0);
    tu_fill_fixed(s, "same");
    tu_fill_fixed(f, "same");
    a = tu_log_lines(s, "same", &na);
    b = tu_log_lines(f, "same", &nb);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(a, b, na) == 0, "sqlite:\n%.*s\nfiles:\n%.*s", (int)na,
              a, (int)nb, b);
    {
        char *lp = tu_path(fdir, "same", "events.jsonl");
        file_log = tu_read_file(lp, &nf);
        free(lp);
    }
    cr_assert_eq(nf, na);
    cr_assert(memcmp(file_log, a, na) == 0, "the file itself");
    evs_store_close(s);
    evs_store_close(f);

    io = tu_tmpdir("sqlite-io");
    cr_assert_not_null(io);
    for (int k = 0; k < 2; k++) {
        tu_result rs, rf;
        const char *sargs[] = {"show", loc, "same", kinds[k], NULL};
        const char *fargs[] = {"show", fdir, "same", kinds[k], NULL};

        rs = tu_run_tool("EVDUMP", io, "show-sqlite", sargs);
        rf = tu_run_tool("EVDUMP", io, "show-files", fargs);
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
    free(file_log);
    free(a);
    free(b);
    free(fdir);
}

Test(sqlite, a_damaged_line_is_refused_by_readers_and_writers)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    evs_error_info info;
    evs_cursor *c;
    evs_event ev;
    evs_log *l;
    int rc;

    tu_fill_fixed(s, "d");
    evs_store_close(s);
    /* One byte of the second line's data changed, its checksum kept. */
    raw_sql("UPDATE events SET line = CAST(replace(CAST(line AS TEXT),"
            " '2.50', '2.51') AS BLOB) WHERE seq = 2");
    s = open_ok(EVS_SYNC_FULL);
    cr_assert_eq(evs_log_open(s, "d", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
    rc = evs_cursor_next(c, &ev, NULL, &info);
    cr_assert_eq(rc, EVS_ECORRUPT);
    cr_assert_eq(info.sequence, 2);
    cr_assert_str_eq(info.kind, "checksum");
    evs_cursor_close(c);
    evs_log_close(l);
    /* The last line damaged: a writer does not take the log. */
    raw_sql("UPDATE events SET line = CAST(replace(CAST(line AS TEXT),"
            " '2.51', '2.50') AS BLOB) WHERE seq = 2");
    raw_sql("UPDATE events SET line = CAST(replace(CAST(line AS TEXT),"
            " '2.50', '9.50') AS BLOB) WHERE seq = 3");
    cr_assert_eq(evs_log_open(s, "d", 1, EVS_LOG_WRITE, &l, NULL, &info),
                 EVS_ECORRUPT);
    /* A missing line is a gap, not a shorter log. */
    raw_sql("DELETE FROM events WHERE seq = 2");
    cr_assert_eq(evs_log_open(s, "d", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
    cr_assert_eq(evs_cursor_next(c, &ev, NULL, &info), EVS_ECORRUPT);
    evs_cursor_close(c);
    evs_log_close(l);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Locks                                                              */
/* ------------------------------------------------------------------ */

Test(sqlite, a_writer_in_another_process_excludes_and_its_death_releases)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    int go[2], status;
    evs_log *w;
    pid_t pid;
    char c;

    cr_assert_eq(tu_create(s, "x"), 0);
    cr_assert_eq(pipe(go), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        evs_store *cs = NULL;
        evs_log *cl = NULL;
        close(go[0]);
        if (evs_store_open(loc, NULL, &cs) != 0 ||
            evs_log_open(cs, "x", 1, EVS_LOG_WRITE, &cl, NULL, NULL) != 0)
            _exit(1);
        if (write(go[1], "k", 1) != 1)
            _exit(2);
        for (;;)
            pause(); /* holds the lock until killed */
    }
    close(go[1]);
    cr_assert_eq(read(go[0], &c, 1), 1, "the child holds the writer");
    close(go[0]);
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL),
                 EVS_ELOCKED);
    cr_assert_eq(evs_exec_delete(s, "x", 1), EVS_ELOCKED);
    /* A reader needs no lock. */
    cr_assert_eq(evs_log_open(s, "x", 1, 0, &w, NULL, NULL), 0);
    evs_log_close(w);
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0,
                 "a killed writer leaves no lock");
    /* Two writers in one process exclude each other too. */
    {
        evs_log *w2;
        cr_assert_eq(evs_log_open(s, "x", 1, EVS_LOG_WRITE, &w2, NULL, NULL),
                     EVS_ELOCKED);
    }
    evs_log_close(w);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

Test(sqlite, the_inbox_is_a_table_with_a_change_counter)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    char buf[256], rid[EVS_REQUEST_ID_LEN + 1];
    evs_inbox_watch w;

    cr_assert_eq(tu_create(s, "i"), 0);
    cr_assert_eq(evs_request_dir(s, "i", 1, buf, sizeof(buf)), -ENOTSUP,
                 "no directory to watch");
    cr_assert_eq(evs_request_dir_peek(s, "i", 1, buf, sizeof(buf)), -ENOTSUP);
    memset(&w, 0, sizeof(w));
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 1);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 0);
    /* Every post and removal is seen at once: no clock to trust. */
    cr_assert_eq(evs_request_post(s, "i", 1, "{\"a\":1}", 7, rid), 0);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 1);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 0);
    cr_assert_eq(evs_request_remove(s, "i", 1, rid, strlen(rid)), 0);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 1);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 0);
    /* Removing what is gone changes nothing. */
    cr_assert_eq(evs_request_remove(s, "i", 1, rid, strlen(rid)), 0);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 0);
    /* Deleted and made again: another row, so a change. */
    cr_assert_eq(evs_exec_delete(s, "i", 1), 0);
    cr_assert_eq(tu_create(s, "i"), 0);
    cr_assert_eq(evs_request_changed(s, "i", 1, &w), 1);
    evs_store_close(s);
}

Test(sqlite, archival_says_it_needs_a_file_store)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    evs_archive_info ai;
    evs_error_info ei;

    cr_assert_eq(tu_create(s, "a"), 0);
    cr_assert_eq(evs_archive_exec(s, "a", dir, NULL, &ai, &ei), -ENOTSUP);
    cr_assert(strstr(ei.msg, "sqlite"), "%s", ei.msg);
    cr_assert(evs_exec_exists(s, "a", 1));
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Durability                                                         */
/* ------------------------------------------------------------------ */

Test(sqlite, durable_seq_follows_each_mode)
{
    static const evs_durability modes[3] = {EVS_SYNC_FULL, EVS_SYNC_BATCH,
                                            EVS_SYNC_NONE};

    for (int m = 0; m < 3; m++) {
        evs_store_opts o;
        evs_store *s = NULL;
        evs_log *w;
        char id[8];

        evs_store_opts_init(&o);
        o.durability = modes[m];
        o.sync_interval_ms = 3600 * 1000; /* BATCH: by bytes alone */
        o.sync_bytes = 4096;
        cr_assert_eq(evs_store_open(loc, &o, &s), 0);
        snprintf(id, sizeof(id), "m%d", m);
        cr_assert_eq(tu_create(s, id), 0);
        cr_assert_eq(evs_log_open(s, id, 2, EVS_LOG_WRITE, &w, NULL, NULL), 0);
        cr_assert_eq(tu_append_n(w, 1), 0);
        cr_assert_eq(evs_log_durable_seq(w), m == 0 ? 2u : 0u, "mode %d", m);
        if (m == 1) {
            /* A batch's worth of bytes: that append's commit syncs. */
            for (int i = 0; i < 200 && evs_log_durable_seq(w) == 0; i++)
                cr_assert_eq(tu_append_n(w, 1), 0);
            cr_assert_eq(evs_log_durable_seq(w), evs_log_last_seq(w));
            cr_assert_gt(evs_log_size(w), 4096);
            cr_assert_eq(tu_append_n(w, 1), 0);
            cr_assert_lt(evs_log_durable_seq(w), evs_log_last_seq(w));
        }
        /* NO_SYNC in FULL is not durable until a sync. */
        if (m == 0) {
            evs_event ev = tu_event(EVS_EV_STEP_COMPLETED, "s", "{}");
            cr_assert_eq(evs_log_append_flags(w, &ev, 1, evs_log_last_seq(w),
                                              EVS_APPEND_NO_SYNC, NULL),
                         0);
            cr_assert_eq(evs_log_durable_seq(w), evs_log_last_seq(w) - 1);
        }
        cr_assert_eq(evs_log_sync(w), 0);
        cr_assert_eq(evs_log_durable_seq(w), evs_log_last_seq(w));
        evs_log_close(w);
        evs_store_close(s);
    }
}

/* ------------------------------------------------------------------ */
/* Real kills                                                         */
/* ------------------------------------------------------------------ */

/* A child appends 1 to 4 events at a time in EVS_SYNC_FULL and writes
 * each acknowledged end to a pipe; it is SIGKILLed at a moment of the
 * parent's choosing. Nothing it acknowledged may be missing, and the log
 * must read back whole and strictly. */
Test(sqlite, sigkill_loses_no_acknowledged_append)
{
    evs_store *s = open_ok(EVS_SYNC_FULL);
    uint64_t seed = tu_seed("EVS_SQLITE_SEED", "sqlite kills");
    long rounds = tu_env_long("EVS_SQLITE_KILLS", 12);

    cr_assert_eq(tu_create(s, "k"), 0);
    evs_store_close(s);
    for (long r = 0; r < rounds; r++) {
        uint64_t acked = 0, seq;
        int pfd[2], status;
        evs_log *l;
        pid_t pid;
        long want;

        cr_assert_eq(pipe(pfd), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            evs_store *cs = NULL;
            evs_log *cl = NULL;
            close(pfd[0]);
            if (evs_store_open(loc, NULL, &cs) != 0 ||
                evs_log_open(cs, "k", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &cl,
                             NULL, NULL) != 0)
                _exit(1);
            for (unsigned k = 0;; k++) {
                evs_event ev[4];
                size_t n = 1 + k % 4; /* appends of 1 to 4 events */
                for (size_t i = 0; i < n; i++)
                    ev[i] = tu_event(EVS_EV_STEP_COMPLETED, "work",
                                     "{\"output\":\"a step's output\"}");
                if (evs_log_append(cl, ev, n, evs_log_last_seq(cl), NULL) != 0)
                    _exit(2);
                seq = evs_log_last_seq(cl);
                if (write(pfd[1], &seq, sizeof(seq)) != sizeof(seq))
                    _exit(3);
            }
        }
        close(pfd[1]);
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        want = 1 + (long)((seed >> 33) % 40);
        for (long i = 0; i < want; i++) {
            if (read(pfd[0], &seq, sizeof(seq)) != sizeof(seq))
                break;
            acked = seq;
        }
        kill(pid, SIGKILL);
        while (read(pfd[0], &seq, sizeof(seq)) == sizeof(seq))
            acked = seq; /* acknowledged before it died */
        close(pfd[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status), "round %ld: the child died by itself",
                  r);
        s = open_ok(EVS_SYNC_FULL);
        cr_assert_eq(evs_log_open(s, "k", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
        cr_assert_geq(evs_log_last_seq(l), acked, "round %ld", r);
        cr_assert_leq(evs_log_last_seq(l), acked + 4, "round %ld", r);
        cr_assert_eq(tu_count_events(s, "k"), (long)evs_log_last_seq(l));
        evs_log_close(l);
        {
            /* Reads back strictly: checksums, sequences and every
             * append's framing, so no append is there in part. */
            size_t n;
            free(tu_log_lines(s, "k", &n));
        }
        evs_store_close(s);
    }
}
